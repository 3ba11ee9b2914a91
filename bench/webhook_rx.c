/* webhook-rx [PORT]: a minimal HTTP/1.1 receiver for cdc's webhook sink.
 *
 * Listens on 127.0.0.1:PORT (0 or none: any free port, printed as
 * "port=N" on stdout), accepts any number of keep-alive connections, reads
 * each request (Content-Length or chunked body, answers "Expect:
 * 100-continue"), and answers 200 with an empty body as soon as the body is
 * complete.  For every envelope in a body (one envelope, or a JSON array of
 * them) it records the time from its commit (source.ts_us) to the moment the
 * whole request had arrived.  One thread, epoll, no copies beyond the
 * connection's input buffer.  GET /stats answers "requests=N events=N"
 * (text/plain) with the counts so far.  On SIGTERM or SIGINT it prints one summary line
 * (see lat_report, plus requests=N bad_requests=N) on stdout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "latency.h"

#define MAX_HEAD (64 * 1024)

struct conn {
    int fd;
    char *in;
    size_t len, cap;
    char *out;
    size_t olen, ocap, osent;
    /* the request being read */
    int have_head;
    size_t head_len;
    long long content_length; /* -1: none */
    int chunked, close_after, continue_sent, expect_continue;
    int stats; /* GET /stats: answer with the counts so far */
};

static struct lat lat;
static unsigned long long requests, bad_requests;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void out_append(struct conn *c, const char *s, size_t n)
{
    if (c->olen + n > c->ocap) {
        c->ocap = (c->olen + n) * 2;
        c->out = realloc(c->out, c->ocap);
        if (!c->out)
            die("realloc");
    }
    memcpy(c->out + c->olen, s, n);
    c->olen += n;
}

/* Sends what is queued; returns -1 if the connection broke. */
static int out_flush(struct conn *c)
{
    while (c->osent < c->olen) {
        ssize_t n = send(c->fd, c->out + c->osent, c->olen - c->osent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        c->osent += (size_t)n;
    }
    c->olen = c->osent = 0;
    return 0;
}

static int header_is(const char *line, size_t len, const char *name, const char **value,
                     size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return 0;
    const char *v = line + n + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *value = v;
    *vlen = (size_t)(e - v);
    return 1;
}

static int value_has(const char *v, size_t vlen, const char *token)
{
    size_t n = strlen(token);
    for (size_t i = 0; i + n <= vlen; i++)
        if (strncasecmp(v + i, token, n) == 0)
            return 1;
    return 0;
}

/* Parses the request head in c->in[0..head_len). */
static int parse_head(struct conn *c)
{
    const char *p = c->in, *end = c->in + c->head_len - 2;
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol)
        return -1;
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    int http10 = eol - p >= 8 && memcmp(eol - 8, "HTTP/1.0", 8) == 0;
    c->stats = eol - p >= 11 && memcmp(p, "GET /stats ", 11) == 0;
    c->content_length = -1;
    c->chunked = 0;
    c->expect_continue = 0;
    c->continue_sent = 0;
    c->close_after = http10;
    p = eol + 2;
    while (p < end) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t len = (size_t)(eol - p);
        const char *v;
        size_t vlen;
        if (header_is(p, len, "Content-Length", &v, &vlen)) {
            char tmp[32];
            if (vlen == 0 || vlen >= sizeof tmp)
                return -1;
            memcpy(tmp, v, vlen);
            tmp[vlen] = 0;
            char *e;
            c->content_length = strtoll(tmp, &e, 10);
            if (*e || c->content_length < 0)
                return -1;
        } else if (header_is(p, len, "Transfer-Encoding", &v, &vlen)) {
            c->chunked = value_has(v, vlen, "chunked");
        } else if (header_is(p, len, "Expect", &v, &vlen)) {
            c->expect_continue = value_has(v, vlen, "100-continue");
        } else if (header_is(p, len, "Connection", &v, &vlen)) {
            if (value_has(v, vlen, "close"))
                c->close_after = 1;
            else if (value_has(v, vlen, "keep-alive"))
                c->close_after = 0;
        }
        p = eol + 2;
    }
    return 0;
}

/* Finds the end of a chunked body starting at c->in + head_len.  Returns the
 * number of input bytes it spans (and, if out is not NULL, copies the decoded
 * body there and stores its length in *blen), 0 if more input is needed, -1
 * if malformed. */
static long long dechunk(const struct conn *c, char *out, size_t *blen)
{
    const char *base = c->in + c->head_len;
    size_t avail = c->len - c->head_len, pos = 0, total = 0;
    for (;;) {
        const char *eol = memchr(base + pos, '\n', avail - pos);
        if (!eol)
            return 0;
        char *e;
        unsigned long long sz = strtoull(base + pos, &e, 16);
        if (e == base + pos)
            return -1;
        pos = (size_t)(eol - base) + 1;
        if (sz == 0) {
            /* optional trailers, then an empty line */
            for (;;) {
                const char *l = memchr(base + pos, '\n', avail - pos);
                if (!l)
                    return 0;
                size_t llen = (size_t)(l - (base + pos));
                pos = (size_t)(l - base) + 1;
                if (llen == 0 || (llen == 1 && l[-1] == '\r'))
                    break;
            }
            if (blen)
                *blen = total;
            return (long long)pos;
        }
        if (avail - pos < sz + 2)
            return 0;
        if (out)
            memcpy(out + total, base + pos, sz);
        total += sz;
        pos += sz + 2;
    }
}

static void reset_request(struct conn *c, size_t used)
{
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
    c->have_head = 0;
}

/* Handles every complete request in the input buffer.  Returns -1 to close. */
static int process(struct conn *c)
{
    for (;;) {
        if (!c->have_head) {
            char *h = NULL;
            for (size_t i = 0; i + 4 <= c->len; i++)
                if (c->in[i] == '\r' && memcmp(c->in + i, "\r\n\r\n", 4) == 0) {
                    h = c->in + i;
                    break;
                }
            if (!h)
                return c->len > MAX_HEAD ? -1 : 0;
            c->head_len = (size_t)(h - c->in) + 4;
            if (parse_head(c) != 0)
                return -1;
            c->have_head = 1;
        }
        size_t body_len = 0;
        size_t used;
        char *body = c->in + c->head_len;
        char *decoded = NULL;
        if (c->chunked) {
            long long r = dechunk(c, NULL, NULL);
            if (r < 0)
                return -1;
            if (r == 0)
                goto need_more;
            decoded = malloc((size_t)r + 1);
            if (!decoded)
                die("malloc");
            dechunk(c, decoded, &body_len);
            body = decoded;
            used = c->head_len + (size_t)r;
        } else {
            size_t cl = c->content_length < 0 ? 0 : (size_t)c->content_length;
            if (c->len - c->head_len < cl)
                goto need_more;
            body_len = cl;
            used = c->head_len + cl;
        }
        int64_t at = now_us();
        if (c->stats) {
            char text[128], head[128];
            int tn = snprintf(text, sizeof text, "requests=%llu events=%llu\n", requests,
                              (unsigned long long)lat.events);
            int hn = snprintf(head, sizeof head,
                              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              "Content-Length: %d\r\n%s\r\n",
                              tn, c->close_after ? "Connection: close\r\n" : "");
            out_append(c, head, (size_t)hn);
            out_append(c, text, (size_t)tn);
            free(decoded);
            int closing = c->close_after;
            reset_request(c, used);
            if (out_flush(c) != 0 || closing)
                return -1;
            continue;
        }
        requests++;
        if (body_len && lat_add_body(&lat, body, body_len, at) < 0)
            bad_requests++;
        free(decoded);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        static const char ok_close[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        int closing = c->close_after;
        if (closing)
            out_append(c, ok_close, sizeof ok_close - 1);
        else
            out_append(c, ok, sizeof ok - 1);
        reset_request(c, used);
        if (out_flush(c) != 0 || closing)
            return -1;
        continue;
    need_more:
        if (c->expect_continue && !c->continue_sent) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            out_append(c, cont, sizeof cont - 1);
            c->continue_sent = 1;
            if (out_flush(c) != 0)
                return -1;
        }
        return 0;
    }
}

static void conn_free(struct conn *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
        die("sigprocmask");
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        die("signalfd");

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0)
        die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("bind");
    if (listen(ls, 1024) != 0)
        die("listen");
    socklen_t slen = sizeof sa;
    if (getsockname(ls, (struct sockaddr *)&sa, &slen) != 0)
        die("getsockname");
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) != 0)
        die("epoll_ctl");
    static int sig_tag;
    ev.data.ptr = &sig_tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) != 0)
        die("epoll_ctl");

    for (int running = 1; running;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &sig_tag) {
                running = 0;
                continue;
            }
            if (tag == NULL) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    if (!c)
                        die("calloc");
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                              .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) != 0)
                        die("epoll_ctl");
                }
                continue;
            }
            struct conn *c = tag;
            int broken = 0;
            if (evs[i].events & EPOLLOUT)
                broken = out_flush(c) != 0;
            if (!broken && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                for (;;) {
                    if (c->cap - c->len < 65536) {
                        c->cap = c->cap ? c->cap * 2 : 256 * 1024;
                        c->in = realloc(c->in, c->cap);
                        if (!c->in)
                            die("realloc");
                    }
                    ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len, 0);
                    if (r > 0) {
                        c->len += (size_t)r;
                        continue;
                    }
                    if (r < 0 && errno == EINTR)
                        continue;
                    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                    broken = 1; /* EOF or error */
                    break;
                }
                if (process(c) != 0)
                    broken = 1;
            }
            if (broken)
                conn_free(c); /* close() also removes it from the epoll set */
        }
    }
    printf("requests=%llu bad_requests=%llu ", requests, bad_requests);
    lat_report(&lat, stdout);
    lat_free(&lat);
    return 0;
}
