/* A scripted HTTP/1.1 server and a webhook sink fixture for the unit tests
 * of the webhook sink (test_webhook.c, test_webhook_conn.c).  The server
 * runs in a thread of the test on 127.0.0.1 (an ephemeral port).  It records
 * every request (its connection, method, path, headers, body and when it was
 * being answered) and answers per a script: a status, extra header lines
 * and a body, after a delay, or never.  Include <cmocka.h> first. */
#ifndef CDC_TESTS_UNIT_WEBHOOKTEST_H
#define CDC_TESTS_UNIT_WEBHOOKTEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/event.h"
#include "core/json.h"
#include "sink/sink.h"
#include "sink/webhook/webhook.h"
#include "source/pg/pgjson.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

/* ---- the scripted server -------------------------------------------------- */

#define MAX_RECS    128
#define MAX_SCRIPT  32
#define MAX_THREADS 64

struct reply {
    int status;
    char extra[160]; /* extra header lines, each ending in \r\n */
    char body[512];
    int delay_ms;
    bool hang; /* read the request, never answer */
};

struct rec {
    int conn; /* 1, 2, … in accept order */
    char method[16];
    char path[256];
    char *head; /* heap: the header lines */
    char *body; /* heap, NUL-terminated */
    size_t body_len;
};

struct server {
    int lfd;
    int port;
    atomic_bool stop;
    pthread_t acceptor;
    pthread_mutex_t mu; /* guards everything below */
    struct reply script[MAX_SCRIPT];
    size_t nscript, next;
    struct rec recs[MAX_RECS];
    size_t nrecs;
    int nconns;
    int busy, max_busy; /* requests between arrival and answer */
    pthread_t threads[MAX_THREADS];
    size_t nthreads;
};

struct conn {
    struct server *srv;
    int fd;
    int id;
};

/* Waits until fd is readable, the server stops (false) or ms pass. */
static inline bool wait_readable(struct server *srv, int fd, int ms)
{
    int64_t end = clock_mono_us() + (int64_t)ms * 1000;
    while (!atomic_load(&srv->stop)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20) > 0)
            return true;
        if (ms >= 0 && clock_mono_us() >= end)
            return false;
    }
    return false;
}

static inline bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads one request into rec; false when the peer closed or the server stops. */
static inline bool read_request(struct server *srv, int fd, struct buf *in, struct rec *r)
{
    char *end;
    while (!(in->p && (end = strstr(in->p, "\r\n\r\n")) != NULL)) {
        if (!wait_readable(srv, fd, -1))
            return false;
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            return false;
        buf_put(in, chunk, (size_t)n);
    }
    size_t head_len = (size_t)(end - in->p) + 4;
    char *line_end = strstr(in->p, "\r\n");
    sscanf(in->p, "%15s %255s", r->method, r->path);
    r->head = strndup(line_end + 2, (size_t)(end - line_end));
    size_t clen = 0;
    for (char *h = r->head; h && *h;) {
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            clen = strtoul(h + 15, NULL, 10);
        h = strstr(h, "\r\n");
        if (h)
            h += 2;
    }
    while (in->len < head_len + clen) {
        if (!wait_readable(srv, fd, -1))
            return false;
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            return false;
        buf_put(in, chunk, (size_t)n);
    }
    r->body = strndup(in->p + head_len, clen);
    r->body_len = clen;
    memmove(in->p, in->p + head_len + clen, in->len - head_len - clen);
    in->len -= head_len + clen;
    in->p[in->len] = '\0';
    return true;
}

static inline void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    struct buf in = BUF_INIT;
    for (;;) {
        struct rec r = {.conn = c->id};
        if (!read_request(srv, c->fd, &in, &r)) {
            free(r.head);
            free(r.body);
            break;
        }
        struct reply rep = {.status = 200};
        pthread_mutex_lock(&srv->mu);
        if (srv->next < srv->nscript)
            rep = srv->script[srv->next++];
        if (srv->nrecs < MAX_RECS) {
            srv->recs[srv->nrecs++] = r;
        } else {
            free(r.head);
            free(r.body);
        }
        if (++srv->busy > srv->max_busy)
            srv->max_busy = srv->busy;
        pthread_mutex_unlock(&srv->mu);
        bool alive = true;
        if (rep.hang) {
            /* until the client gives up or the server stops */
            while (wait_readable(srv, c->fd, -1)) {
                char chunk[256];
                if (recv(c->fd, chunk, sizeof chunk, 0) <= 0)
                    break;
            }
            alive = false;
        } else if (rep.delay_ms) {
            clock_sleep_us((int64_t)rep.delay_ms * 1000);
        }
        if (alive) {
            char head[512];
            int n =
                snprintf(head, sizeof head, "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n%s\r\n",
                         rep.status, strlen(rep.body), rep.extra);
            alive = send_all(c->fd, head, (size_t)n) && send_all(c->fd, rep.body, strlen(rep.body));
        }
        pthread_mutex_lock(&srv->mu);
        srv->busy--;
        pthread_mutex_unlock(&srv->mu);
        if (!alive)
            break;
    }
    buf_fini(&in);
    close(c->fd);
    free(c);
    return NULL;
}

static inline void *accept_main(void *arg)
{
    struct server *srv = arg;
    while (!atomic_load(&srv->stop)) {
        struct pollfd p = {srv->lfd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(srv->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct conn *c = calloc(1, sizeof *c);
        c->srv = srv;
        c->fd = fd;
        pthread_mutex_lock(&srv->mu);
        c->id = ++srv->nconns;
        bool room = srv->nthreads < MAX_THREADS;
        if (room && pthread_create(&srv->threads[srv->nthreads], NULL, conn_main, c) == 0)
            srv->nthreads++;
        else
            room = false;
        pthread_mutex_unlock(&srv->mu);
        if (!room) {
            close(fd);
            free(c);
        }
    }
    return NULL;
}

static inline int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static inline struct server *server_start(void)
{
    struct server *srv = calloc(1, sizeof *srv);
    pthread_mutex_init(&srv->mu, NULL);
    atomic_init(&srv->stop, false);
    srv->lfd = listen_any(&srv->port);
    assert_true(srv->lfd >= 0);
    assert_int_equal(pthread_create(&srv->acceptor, NULL, accept_main, srv), 0);
    return srv;
}

static inline void server_stop(struct server *srv)
{
    atomic_store(&srv->stop, true);
    pthread_join(srv->acceptor, NULL);
    for (size_t i = 0; i < srv->nthreads; i++)
        pthread_join(srv->threads[i], NULL);
    close(srv->lfd);
    for (size_t i = 0; i < srv->nrecs; i++) {
        free(srv->recs[i].head);
        free(srv->recs[i].body);
    }
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}

static inline void script(struct server *srv, int status, const char *extra, const char *body)
{
    pthread_mutex_lock(&srv->mu);
    assert_true(srv->nscript < MAX_SCRIPT);
    struct reply *r = &srv->script[srv->nscript++];
    memset(r, 0, sizeof *r);
    r->status = status;
    snprintf(r->extra, sizeof r->extra, "%s", extra ? extra : "");
    snprintf(r->body, sizeof r->body, "%s", body ? body : "");
    pthread_mutex_unlock(&srv->mu);
}

static inline void script_delay(struct server *srv, int status, int delay_ms)
{
    script(srv, status, NULL, "ok");
    pthread_mutex_lock(&srv->mu);
    srv->script[srv->nscript - 1].delay_ms = delay_ms;
    pthread_mutex_unlock(&srv->mu);
}

static inline void script_hang(struct server *srv)
{
    script(srv, 0, NULL, NULL);
    pthread_mutex_lock(&srv->mu);
    srv->script[srv->nscript - 1].hang = true;
    pthread_mutex_unlock(&srv->mu);
}

static inline size_t nrecs(struct server *srv)
{
    pthread_mutex_lock(&srv->mu);
    size_t n = srv->nrecs;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* Reads one of the server's counters under its lock. */
static inline int counter(struct server *srv, const int *field)
{
    pthread_mutex_lock(&srv->mu);
    int v = *field;
    pthread_mutex_unlock(&srv->mu);
    return v;
}

/* The value of header name in r (copied into val), or NULL if absent. */
static const char *hdr(const struct rec *r, const char *name, char *val, size_t vallen)
{
    size_t nlen = strlen(name);
    for (const char *h = r->head; h && *h;) {
        const char *eol = strstr(h, "\r\n");
        if (!eol)
            break;
        if ((size_t)(eol - h) > nlen && strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
            const char *v = h + nlen + 1;
            while (*v == ' ')
                v++;
            snprintf(val, vallen, "%.*s", (int)(eol - v), v);
            return val;
        }
        h = eol + 2;
    }
    return NULL;
}

static inline void assert_hdr(const struct rec *r, const char *name, const char *want)
{
    char val[512];
    const char *got = hdr(r, name, val, sizeof val);
    if (!got)
        fail_msg("request has no %s header; headers:\n%s", name, r->head);
    assert_string_equal(got, want);
}

static inline void assert_no_hdr(const struct rec *r, const char *name)
{
    char val[512];
    if (hdr(r, name, val, sizeof val))
        fail_msg("request has a %s header (%s) it should not have", name, val);
}

/* ---- the sink under test ---------------------------------------------------- */

static const struct json_ctx ctx = {.pipeline_id = "shop",
                                    .connector = "postgresql",
                                    .db = "shopdb",
                                    .version = "0.1.0",
                                    .source = pgjson_source};

struct fx {
    struct config config;
    struct sink_cfg sc;
    struct webhook_sink_cfg w; /* sc.conf */
    struct sink sk;
    char url[256];
    struct kv headers[3];
};

/* A webhook sink config pointing at path on port, with the defaults. */
static inline void fx_init(struct fx *f, int port, const char *path)
{
    memset(f, 0, sizeof *f);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", port, path);
    f->config.pipeline_id = "shop";
    f->sc.sink_id = "hook";
    f->sc.type = sink_type_find("webhook");
    f->sc.enabled = true;
    f->sc.conf = &f->w;
    struct webhook_sink_cfg *w = &f->w;
    w->url = f->url;
    w->method = "POST";
    w->timeout_seconds = 5;
    f->sc.batch_size = 1;
    w->max_in_flight = 8;
    f->sk.ops = f->sc.type->ops;
    f->sk.cfg = &f->sc;
    f->sk.config = &f->config;
    f->sk.json = &ctx;
}

static inline void fx_open(struct fx *f)
{
    assert_non_null(f->sk.ops);
    assert_string_equal(f->sc.type->name, "webhook");
    assert_int_equal(f->sc.type->ordering, ORDER_KEY);
    assert_null(f->sk.ops->write);
    assert_null(f->sk.ops->flush);
    struct cdc_posmap have = {0};
    assert_int_equal(f->sk.ops->open(&f->sk, &have), 0);
    assert_int_equal(have.n, 0); /* holds nothing it could tell */
    cdc_posmap_fini(&have);
}

static inline void fx_close(struct fx *f)
{
    f->sk.ops->close(&f->sk);
    assert_null(f->sk.priv);
}

/* Polls until want results arrived (fails after 10 s); returns how long
 * that took in microseconds. */
static inline int64_t collect(struct fx *f, struct sink_result *out, size_t want)
{
    int64_t t0 = clock_mono_us();
    size_t got = 0;
    while (got < want) {
        if (clock_mono_us() - t0 > 10000000)
            fail_msg("only %zu of %zu results within 10 s", got, want);
        int n = f->sk.ops->poll(&f->sk, 100, out + got, want - got);
        assert_true(n >= 0);
        got += (size_t)n;
    }
    return clock_mono_us() - t0;
}

/* submit one batch and wait for its result */
static inline struct sink_result deliver(struct fx *f, unsigned lane, struct cdc_event **evs,
                                         size_t n)
{
    struct sink_result res;
    assert_int_equal(f->sk.ops->submit(&f->sk, lane, evs, n), 0);
    collect(f, &res, 1);
    assert_int_equal(res.lane, lane);
    return res;
}

static inline struct cdc_table *mktab(void)
{
    struct cdc_table *tab = cdc_table_new(16384, "public", "orders", "cdc", 2);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("integer");
    tab->cols[0].type = CDC_T_INT;
    tab->cols[0].key = true;
    tab->cols[1].name = strdup("note");
    tab->cols[1].type_name = strdup("text");
    tab->cols[1].type = CDC_T_TEXT;
    cdc_table_finish(tab);
    tab->key_unique = true;
    return tab;
}

static inline void put_val(struct cdc_event *ev, struct cdc_val *v, const char *s)
{
    size_t n = strlen(s);
    v->kind = CDC_V_TEXT;
    v->off = ev->data_len;
    v->len = (uint32_t)n;
    memcpy(ev->data + ev->data_len, s, n + 1);
    ev->data_len += (uint32_t)n + 1;
}

/* An insert of (id, note) at position (lsn, idx). */
static inline struct cdc_event *mkev(struct cdc_table *tab, int id, const char *note, uint64_t lsn,
                                     uint64_t idx)
{
    char ids[16];
    snprintf(ids, sizeof ids, "%d", id);
    struct cdc_event *ev = cdc_event_new(0, 2, strlen(ids) + strlen(note) + 2);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(tab);
    ev->tab = tab;
    put_val(ev, &ev->after[0], ids);
    put_val(ev, &ev->after[1], note);
    ev->pos = (struct cdc_pos){lsn, idx, 0};
    ev->lsn = lsn - 100 + idx;
    ev->xid = 771;
    ev->commit_ts = 1718150400123456;
    ev->emit_ts = 1718150400456789;
    ev->total_order = (uint32_t)idx + 1;
    ev->table_order = (uint32_t)idx + 1;
    ev->seq = lsn + idx;
    return ev;
}

#endif
