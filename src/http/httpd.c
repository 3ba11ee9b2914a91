/* The embedded HTTP server: the poll() loop over the listening socket and
 * the connections.  Requests are parsed and answers written by httpmsg.c;
 * see httpd.h for the contract. */
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
