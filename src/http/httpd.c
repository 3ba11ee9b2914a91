/* The embedded HTTP server: request parser, response writer and the poll()
 * loop.  See httpd.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/httpd.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/str.h"

/* ---------- request parser ---------- */

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-"
 * / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes allowed in a request target: visible ASCII. */
static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Bytes allowed in a header value: HTAB, SP, visible ASCII and obs-text. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Percent-decodes s[0..n) into out[cap] (NUL-terminated).  Returns the
 * decoded length, or -1 on a malformed escape, an encoded NUL, or no room. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = str_hexval((unsigned char)s[i + 1]), lo = str_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

/* Quick rejection of what cannot become a request line, so that garbage gets
 * its 400 at once instead of after the timeout.  s[0..n) is the start of the
 * request line (possibly incomplete). */
static bool request_line_prefix_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == n)
        return true;
    if (i == 0 || s[i] != ' ')
        return false;
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            return true;
        if (c == '\r')
            return i + 1 == n || s[i + 1] == '\n';
        if (c != ' ' && !is_vchar(c))
            return false;
    }
    return true;
}

/* Splits the absolute-form or origin-form target into path and query, and
 * decodes the path into dst[cap].  Returns 0 or -400. */
static int parse_target(struct http_request *rq, char *target, char *dst, size_t cap)
{
    const char *path = target;
    if (strcmp(target, "*") == 0) {
        if (strcmp(rq->method, "OPTIONS") != 0)
            return -400;
        rq->path = "*";
        rq->query = "";
        return 0;
    }
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        const char *auth = strstr(target, "//") + 2;
        size_t alen = strcspn(auth, "/?");
        if (alen == 0)
            return -400;
        path = auth + alen;
    } else if (target[0] != '/') {
        return -400;
    }
    if (strchr(target, '#'))
        return -400;
    const char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    rq->query = q ? q + 1 : "";
    if (plen == 0) {
        /* "http://host?x" */
        if (cap < 2)
            return -400;
        dst[0] = '/';
        dst[1] = '\0';
    } else if (pct_decode(path, plen, dst, cap, false) < 0) {
        return -400;
    }
    rq->path = dst;
    return 0;
}

/* Parses the request line, in place, NUL-terminating its parts. */
static int parse_request_line(struct http_request *rq, char *line)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        return -400;
    *sp1 = '\0';
    for (char *c = line; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return -400;
    rq->method = line;
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2 || sp2 == target)
        return -400;
    *sp2 = '\0';
    for (char *c = target; *c; c++)
        if (!is_vchar((unsigned char)*c))
            return -400;
    rq->target = target;
    const char *v = sp2 + 1;
    if (strncmp(v, "HTTP/", 5) != 0 || !(v[5] >= '0' && v[5] <= '9') || v[6] != '.' ||
        !(v[7] >= '0' && v[7] <= '9') || v[8] != '\0')
        return -400;
    if (v[5] != '1')
        return -505;
    rq->minor = v[7] - '0';
    return 0;
}

/* A Content-Length value: 1*DIGIT.  *n is capped just above limit. */
static int parse_content_length(const char *s, size_t limit, size_t *n)
{
    if (!*s)
        return -400;
    size_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -400;
        if (v <= limit)
            v = v * 10 + (size_t)(*s - '0');
    }
    *n = v;
    return 0;
}

int http_parse_request(struct http_request *rq, const char *data, size_t len, size_t max_body)
{
    rq->method = NULL;
    /* A server ignores empty lines before the request line (RFC 9112 2.2). */
    size_t start = 0;
    while (start < len && (data[start] == '\r' || data[start] == '\n')) {
        if (data[start] == '\r' && start + 1 < len && data[start + 1] != '\n')
            return -400;
        start++;
    }
    /* The head ends at the first empty line. */
    size_t head_end = 0;
    for (size_t i = start; i < len; i++) {
        if (data[i] != '\n')
            continue;
        if (i + 1 < len && data[i + 1] == '\n') {
            head_end = i + 2;
            break;
        }
        if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n') {
            head_end = i + 3;
            break;
        }
    }
    if (!head_end) {
        if (len > HTTP_MAX_HEAD)
            return -413;
        const char *nl = memchr(data + start, '\n', len - start);
        size_t line_len = nl ? (size_t)(nl - (data + start)) + 1 : len - start;
        return request_line_prefix_ok(data + start, line_len) ? 0 : -400;
    }
    if (head_end > HTTP_MAX_HEAD)
        return -413;

    size_t hlen = head_end - start;
    if (memchr(data + start, '\0', hlen))
        return -400;
    memset(rq, 0, offsetof(struct http_request, text));
    memcpy(rq->text, data + start, hlen);
    rq->text[hlen] = '\0';
    char *decoded = rq->text + hlen + 1;
    size_t decoded_cap = sizeof rq->text - hlen - 1;

    /* Split into lines: NUL at each line end, a CR only right before LF. */
    char *line = rq->text;
    char *nl = strchr(line, '\n');
    if (!nl)
        return -400;
    int rc = 0;
    size_t content_length = 0;
    bool have_length = false;
    bool first = true;
    while (nl) {
        *nl = '\0';
        if (nl > line && nl[-1] == '\r')
            nl[-1] = '\0';
        if (strchr(line, '\r'))
            return -400;
        if (first) {
            if ((rc = parse_request_line(rq, line)) != 0)
                return rc;
            first = false;
        } else if (*line == '\0') {
            break; /* the empty line ending the head */
        } else {
            if (*line == ' ' || *line == '\t')
                return -400; /* obsolete line folding */
            char *colon = strchr(line, ':');
            if (!colon || colon == line)
                return -400;
            *colon = '\0';
            for (char *c = line; *c; c++)
                if (!is_tchar((unsigned char)*c))
                    return -400;
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            char *e = v + strlen(v);
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = '\0';
            for (char *c = v; *c; c++)
                if (!is_field_char((unsigned char)*c))
                    return -400;
            if (rq->nheaders == HTTP_MAX_HEADERS)
                return -413;
            rq->headers[rq->nheaders].name = line;
            rq->headers[rq->nheaders].value = v;
            rq->nheaders++;
            if (strcasecmp(line, "Content-Length") == 0) {
                size_t n = 0;
                if ((rc = parse_content_length(v, max_body, &n)) != 0)
                    return rc;
                if (have_length && n != content_length)
                    return -400;
                content_length = n;
                have_length = true;
            } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
                return -501;
            }
        }
        line = nl + 1;
        nl = strchr(line, '\n');
    }
    if ((rc = parse_target(rq, (char *)rq->target, decoded, decoded_cap)) != 0)
        return rc;
    if (content_length > max_body)
        return -413;
    if (len - head_end < content_length)
        return 0;
    rq->body = content_length ? data + head_end : NULL;
    rq->body_len = content_length;
    return (int)(head_end + content_length);
}

const char *http_request_header(const struct http_request *rq, const char *name)
{
    for (size_t i = 0; i < rq->nheaders; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

bool http_query_param(const struct http_request *rq, const char *name, char *out, size_t outlen)
{
    const char *s = rq->query ? rq->query : "";
    char key[256];
    while (*s) {
        size_t n = strcspn(s, "&");
        const char *eq = memchr(s, '=', n);
        size_t klen = eq ? (size_t)(eq - s) : n;
        if (pct_decode(s, klen, key, sizeof key, true) >= 0 && strcmp(key, name) == 0) {
            if (!eq)
                return outlen > 0 && (out[0] = '\0', true);
            return pct_decode(eq + 1, n - klen - 1, out, outlen, true) >= 0;
        }
        s += n;
        if (*s == '&')
            s++;
    }
    return false;
}

/* ---------- responses ---------- */

const char *http_status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void http_response_init(struct http_response *rs)
{
    rs->status = 200;
    rs->content_type = "text/plain; charset=utf-8";
    buf_init(&rs->headers);
    buf_init(&rs->body);
}

void http_response_fini(struct http_response *rs)
{
    buf_fini(&rs->headers);
    buf_fini(&rs->body);
}

static void put_header_text(struct buf *b, const char *s)
{
    for (; *s; s++)
        buf_putc(b, (*s == '\r' || *s == '\n') ? ' ' : *s);
}

void http_response_header(struct http_response *rs, const char *name, const char *value)
{
    put_header_text(&rs->headers, name);
    buf_puts(&rs->headers, ": ");
    put_header_text(&rs->headers, value);
    buf_puts(&rs->headers, "\r\n");
}

void http_response_text(struct http_response *rs, int status, const char *text)
{
    rs->status = status;
    rs->content_type = "text/plain; charset=utf-8";
    buf_reset(&rs->body);
    buf_puts(&rs->body, text);
}

void http_response_serialize(const struct http_response *rs, bool head_only, struct buf *out)
{
    int status = rs->status >= 100 && rs->status <= 999 ? rs->status : 500;
    buf_printf(out, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
    buf_puts(out, "Content-Type: ");
    put_header_text(out, rs->content_type ? rs->content_type : "text/plain; charset=utf-8");
    buf_printf(out, "\r\nContent-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n",
               rs->body.len);
    if (rs->headers.len)
        buf_put(out, rs->headers.p, rs->headers.len);
    buf_puts(out, "\r\n");
    if (!head_only && rs->body.len)
        buf_put(out, rs->body.p, rs->body.len);
}

/* ---------- the server ---------- */

enum conn_state {
    CONN_READ,  /* receiving the request */
    CONN_WRITE, /* sending the answer */
    CONN_DRAIN, /* answer sent and write side shut: discarding input until EOF */
};

/* After answering, input is discarded for this long (or this much) before
 * closing, so that a client still sending (a refused large body) reads the
 * answer instead of a reset. */
#define DRAIN_US    1000000
#define DRAIN_BYTES (256 * 1024)

struct conn {
    int fd;
    enum conn_state state;
    struct buf in;
    struct buf out;
    size_t out_off;
    size_t drained;
    int64_t accepted_us;
    int64_t deadline_us;
    bool continued; /* "100 Continue" sent */
};

struct httpd {
    int lfd;
    int wake[2]; /* self-pipe: httpd_stop writes, the thread wakes */
    int port;
    int max_conns;
    int64_t timeout_us;
    http_handler_fn *handler;
    void *arg;
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    struct conn *conns; /* max_conns slots; fd < 0 = free */
    int nconns;
    struct http_request *rq; /* scratch, reused: one request is handled at a time */
};

static void conn_close(struct httpd *h, struct conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    buf_fini(&c->in);
    buf_fini(&c->out);
    h->nconns--;
}

/* Moves c to sending rs. */
static void conn_answer(struct httpd *h, struct conn *c, const struct http_response *rs,
                        bool head_only)
{
    buf_reset(&c->out);
    http_response_serialize(rs, head_only, &c->out);
    c->out_off = 0;
    c->state = CONN_WRITE;
    c->deadline_us = clock_mono_us() + h->timeout_us;
}

static void conn_error(struct httpd *h, struct conn *c, int status)
{
    struct http_response rs;
    http_response_init(&rs);
    char text[64];
    snprintf(text, sizeof text, "%d %s\n", status, http_status_reason(status));
    http_response_text(&rs, status, text);
    conn_answer(h, c, &rs, false);
    http_response_fini(&rs);
    log_debug("http.rejected", "status=%d", status);
}

/* Looks at what c has received: answers once the request is complete or
 * known to be bad. */
static void conn_parse(struct httpd *h, struct conn *c)
{
    int rc = http_parse_request(h->rq, c->in.p, c->in.len, HTTP_MAX_BODY);
    if (rc == 0) {
        /* The head is in and announces a body: a client that asked
         * whether to send it is told to go ahead. */
        const char *expect = h->rq->method ? http_request_header(h->rq, "Expect") : NULL;
        if (expect && !c->continued && h->rq->minor >= 1 &&
            strcasecmp(expect, "100-continue") == 0) {
            static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
            c->continued = true;
            if (send(c->fd, go, sizeof go - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof go - 1))
                conn_close(h, c); /* a fresh socket takes 25 bytes: the peer is gone */
        }
        return;
    }
    if (rc < 0) {
        conn_error(h, c, -rc);
        return;
    }
    struct http_response rs;
    http_response_init(&rs);
    h->handler(h->rq, &rs, h->arg);
    conn_answer(h, c, &rs, strcmp(h->rq->method, "HEAD") == 0);
    log_debug("http.request", "method=%s path=%s status=%d", log_q(h->rq->method),
              log_q(h->rq->path), rs.status);
    http_response_fini(&rs);
}

static void conn_readable(struct httpd *h, struct conn *c)
{
    char tmp[16384];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(h, c); /* peer went away (or an error): nothing to answer */
            return;
        }
        if (c->state == CONN_DRAIN) {
            c->drained += (size_t)n;
            if (c->drained > DRAIN_BYTES) {
                conn_close(h, c);
                return;
            }
            continue;
        }
        if (c->state != CONN_READ)
            return; /* already answering: the rest is ignored */
        /* Never hold more than the largest acceptable request: the parser
         * refuses anything longer once it sees it. */
        size_t room = HTTP_MAX_HEAD + HTTP_MAX_BODY + 1 - c->in.len;
        buf_put(&c->in, tmp, (size_t)n < room ? (size_t)n : room);
        conn_parse(h, c);
        if (c->fd < 0 || c->state != CONN_READ)
            return;
    }
}

static void conn_writable(struct httpd *h, struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(h, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_DRAIN;
    c->drained = 0;
    c->deadline_us = clock_mono_us() + DRAIN_US;
    buf_fini(&c->in);
    buf_fini(&c->out);
}

static void conn_timeout(struct httpd *h, struct conn *c)
{
    if (c->state == CONN_READ && c->in.len > 0)
        conn_error(h, c, 408);
    else
        conn_close(h, c);
}

/* The connection to let go when every slot is taken and another client
 * knocks: one already answered (draining), else the longest-waiting one still
 * sending its request (an idle or slow client: a prober sends its request at
 * once).  Connections being answered are kept.  NULL if every one is. */
static struct conn *pick_victim(struct httpd *h)
{
    struct conn *best = NULL;
    for (int i = 0; i < h->max_conns; i++) {
        struct conn *c = &h->conns[i];
        if (c->fd < 0 || c->state == CONN_WRITE)
            continue;
        if (!best || (c->state == CONN_DRAIN && best->state != CONN_DRAIN) ||
            (c->state == best->state && c->accepted_us < best->accepted_us))
            best = c;
    }
    return best;
}

/* Accepts every pending connection.  When the slots are all taken, a new
 * connection replaces the idlest one (pick_victim), so idle or slow clients
 * can never keep a health probe out for a whole request timeout. */
static void accept_all(struct httpd *h)
{
    for (;;) {
        int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_debug("http.accept_failed", "error=%s", log_q(strerror(errno)));
            return;
        }
        if (h->nconns == h->max_conns) {
            struct conn *v = pick_victim(h);
            if (!v) {
                close(fd); /* every slot is sending an answer: try again soon */
                return;
            }
            log_debug("http.evicted", "state=%s waited_ms=%lld",
                      v->state == CONN_DRAIN ? "answered" : "reading",
                      (long long)((clock_mono_us() - v->accepted_us) / 1000));
            conn_close(h, v);
        }
        struct conn *c = NULL;
        for (int i = 0; i < h->max_conns; i++)
            if (h->conns[i].fd < 0) {
                c = &h->conns[i];
                break;
            }
        c->fd = fd;
        c->state = CONN_READ;
        buf_init(&c->in);
        buf_init(&c->out);
        c->out_off = 0;
        c->drained = 0;
        c->continued = false;
        c->accepted_us = clock_mono_us();
        c->deadline_us = c->accepted_us + h->timeout_us;
        h->nconns++;
    }
}

/* Whether a new connection could be taken now (a free slot, or one to let
 * go): otherwise the listening socket is left out of poll(). */
static bool can_accept(struct httpd *h)
{
    return h->nconns < h->max_conns || pick_victim(h) != NULL;
}

/* The server thread: one poll() over the wake pipe, the listening socket
 * (while there is room for another connection) and every connection. */
static void *httpd_main(void *arg)
{
    struct httpd *h = arg;
    struct pollfd *pfds = xcalloc((size_t)h->max_conns + 2, sizeof *pfds);
    int *slot = xcalloc((size_t)h->max_conns + 2, sizeof *slot);
    while (!atomic_load(&h->stopping)) {
        int n = 0;
        pfds[n++] = (struct pollfd){.fd = h->wake[0], .events = POLLIN};
        if (can_accept(h))
            pfds[n++] = (struct pollfd){.fd = h->lfd, .events = POLLIN};
        int64_t now = clock_mono_us(), next = now + 1000000;
        for (int i = 0; i < h->max_conns; i++) {
            struct conn *c = &h->conns[i];
            if (c->fd < 0)
                continue;
            if (c->deadline_us < next)
                next = c->deadline_us;
            slot[n] = i;
            pfds[n++] =
                (struct pollfd){.fd = c->fd, .events = c->state == CONN_WRITE ? POLLOUT : POLLIN};
        }
        int timeout_ms = next > now ? (int)((next - now + 999) / 1000) : 0;
        int rc = poll(pfds, (nfds_t)n, timeout_ms);
        if (rc < 0 && errno != EINTR) {
            log_error("http.poll_failed", "error=%s", log_q(strerror(errno)));
            break;
        }
        if (atomic_load(&h->stopping))
            break;
        for (int k = 0; rc > 0 && k < n; k++) {
            if (!pfds[k].revents)
                continue;
            if (pfds[k].fd == h->wake[0]) {
                char drain[16];
                while (read(h->wake[0], drain, sizeof drain) > 0) {
                }
            } else if (pfds[k].fd == h->lfd) {
                accept_all(h);
            } else {
                struct conn *c = &h->conns[slot[k]];
                if (c->fd != pfds[k].fd)
                    continue;
                if (c->state == CONN_WRITE)
                    conn_writable(h, c);
                else
                    conn_readable(h, c);
                /* An answer produced while reading goes out at once. */
                if (c->fd >= 0 && c->state == CONN_WRITE)
                    conn_writable(h, c);
            }
        }
        now = clock_mono_us();
        for (int i = 0; i < h->max_conns; i++) {
            struct conn *c = &h->conns[i];
            if (c->fd >= 0 && c->deadline_us <= now) {
                conn_timeout(h, c);
                if (c->fd >= 0 && c->state == CONN_WRITE)
                    conn_writable(h, c);
            }
        }
    }
    free(pfds);
    free(slot);
    return NULL;
}

/* Creates the listening socket on bind:port. */
static int listen_on(struct httpd *h, const char *bind_addr, int port, char *err, size_t errlen)
{
    char host[256];
    size_t blen = strlen(bind_addr);
    if (blen >= 2 && bind_addr[0] == '[' && bind_addr[blen - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(blen - 2), bind_addr + 1);
    else
        snprintf(host, sizeof host, "%s", bind_addr);
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, service, &hints, &res);
    if (gai != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "cannot listen on %s:%d: %s", bind_addr, port,
                        gai_strerror(gai));
    int saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            h->lfd = fd;
            break;
        }
        saved = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (h->lfd < 0)
        return cdc_fail(err, errlen, CDC_EIO, "cannot listen on %s:%d: %s", bind_addr, port,
                        strerror(saved ? saved : EADDRNOTAVAIL));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(h->lfd, (struct sockaddr *)&ss, &sl) == 0) {
        char serv[16];
        if (getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, serv, sizeof serv, NI_NUMERICSERV) ==
            0)
            h->port = atoi(serv);
    }
    return 0;
}

int httpd_start(struct httpd **out, const struct httpd_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    if (!opts->handler || opts->port < 0 || opts->port > 65535)
        return cdc_fail(err, errlen, CDC_EINVAL, "invalid HTTP server options");
    struct httpd *h = xcalloc(1, sizeof *h);
    h->lfd = -1;
    h->wake[0] = h->wake[1] = -1;
    h->handler = opts->handler;
    h->arg = opts->arg;
    h->max_conns = opts->max_conns > 0 ? opts->max_conns : 64;
    h->timeout_us = (int64_t)(opts->timeout_ms > 0 ? opts->timeout_ms : 10000) * 1000;
    atomic_init(&h->stopping, false);
    h->conns = xcalloc((size_t)h->max_conns, sizeof *h->conns);
    for (int i = 0; i < h->max_conns; i++)
        h->conns[i].fd = -1;
    h->rq = xmalloc(sizeof *h->rq);
    int rc = listen_on(h, opts->bind ? opts->bind : "127.0.0.1", opts->port, err, errlen);
    if (rc)
        goto fail;
    if (pipe2(h->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        rc = cdc_fail(err, errlen, CDC_EIO, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&h->thread, NULL, httpd_main, h) != 0) {
        rc = cdc_fail(err, errlen, CDC_ERR, "cannot start the HTTP server thread");
        goto fail;
    }
    h->started = true;
    *out = h;
    return 0;
fail:
    httpd_stop(h);
    return rc;
}

int httpd_port(const struct httpd *h)
{
    return h->port;
}

void httpd_stop(struct httpd *h)
{
    if (!h)
        return;
    if (h->started) {
        atomic_store(&h->stopping, true);
        ssize_t w;
        do {
            w = write(h->wake[1], "x", 1);
        } while (w < 0 && errno == EINTR);
        pthread_join(h->thread, NULL);
    }
    for (int i = 0; h->conns && i < h->max_conns; i++)
        conn_close(h, &h->conns[i]);
    if (h->lfd >= 0)
        close(h->lfd);
    for (int i = 0; i < 2; i++)
        if (h->wake[i] >= 0)
            close(h->wake[i]);
    free(h->conns);
    free(h->rq);
    free(h);
}
