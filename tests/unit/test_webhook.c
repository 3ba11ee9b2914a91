/* Webhook sink: the HTTP contract, checked against a small scripted HTTP/1.1
 * server that runs in a thread of this test on 127.0.0.1 (an ephemeral
 * port).  It records every request (its connection, method, path, headers,
 * body and when it was being answered) and answers per a script: a status,
 * extra header lines and a body, after a delay, or never.
 *
 * Covered: the body (one envelope, or an array), every header including the
 * signature (recomputed here), the classification of answers, Retry-After
 * in both forms, a refused connection and a timeout, concurrent lanes,
 * the max_in_flight limit, connection reuse, and close with requests in
 * flight. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/event.h"
#include "core/json.h"
#include "sink/sink.h"
#include "sink/webhook/webhook.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "source/pg/pgjson.h"

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
static bool wait_readable(struct server *srv, int fd, int ms)
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

static bool send_all(int fd, const char *p, size_t n)
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
static bool read_request(struct server *srv, int fd, struct buf *in, struct rec *r)
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

static void *conn_main(void *arg)
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

static void *accept_main(void *arg)
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

static int listen_any(int *port)
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

static struct server *server_start(void)
{
    struct server *srv = calloc(1, sizeof *srv);
    pthread_mutex_init(&srv->mu, NULL);
    atomic_init(&srv->stop, false);
    srv->lfd = listen_any(&srv->port);
    assert_true(srv->lfd >= 0);
    assert_int_equal(pthread_create(&srv->acceptor, NULL, accept_main, srv), 0);
    return srv;
}

static void server_stop(struct server *srv)
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

static void script(struct server *srv, int status, const char *extra, const char *body)
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

static void script_delay(struct server *srv, int status, int delay_ms)
{
    script(srv, status, NULL, "ok");
    pthread_mutex_lock(&srv->mu);
    srv->script[srv->nscript - 1].delay_ms = delay_ms;
    pthread_mutex_unlock(&srv->mu);
}

static void script_hang(struct server *srv)
{
    script(srv, 0, NULL, NULL);
    pthread_mutex_lock(&srv->mu);
    srv->script[srv->nscript - 1].hang = true;
    pthread_mutex_unlock(&srv->mu);
}

static size_t nrecs(struct server *srv)
{
    pthread_mutex_lock(&srv->mu);
    size_t n = srv->nrecs;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

/* Reads one of the server's counters under its lock. */
static int counter(struct server *srv, const int *field)
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

static void assert_hdr(const struct rec *r, const char *name, const char *want)
{
    char val[512];
    const char *got = hdr(r, name, val, sizeof val);
    if (!got)
        fail_msg("request has no %s header; headers:\n%s", name, r->head);
    assert_string_equal(got, want);
}

static void assert_no_hdr(const struct rec *r, const char *name)
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
static void fx_init(struct fx *f, int port, const char *path)
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

static void fx_open(struct fx *f)
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

static void fx_close(struct fx *f)
{
    f->sk.ops->close(&f->sk);
    assert_null(f->sk.priv);
}

/* Polls until want results arrived (fails after 10 s); returns how long
 * that took in microseconds. */
static int64_t collect(struct fx *f, struct sink_result *out, size_t want)
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
static struct sink_result deliver(struct fx *f, unsigned lane, struct cdc_event **evs, size_t n)
{
    struct sink_result res;
    assert_int_equal(f->sk.ops->submit(&f->sk, lane, evs, n), 0);
    collect(f, &res, 1);
    assert_int_equal(res.lane, lane);
    return res;
}

static struct cdc_table *mktab(void)
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

static void put_val(struct cdc_event *ev, struct cdc_val *v, const char *s)
{
    size_t n = strlen(s);
    v->kind = CDC_V_TEXT;
    v->off = ev->data_len;
    v->len = (uint32_t)n;
    memcpy(ev->data + ev->data_len, s, n + 1);
    ev->data_len += (uint32_t)n + 1;
}

/* An insert of (id, note) at position (lsn, idx). */
static struct cdc_event *mkev(struct cdc_table *tab, int id, const char *note, uint64_t lsn,
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

/* Lowercase hex SHA-256 of p[0..n), in a static buffer. */
static const char *sha256_hex(const void *p, size_t n)
{
    static char hex[65];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    assert_true(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL));
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}

static void envelope_of(struct buf *b, const struct cdc_event *ev)
{
    buf_reset(b);
    json_envelope(b, ev, &ctx);
}

static void hmac_hex(const char *secret, const char *body, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, md, &mdlen);
    assert_int_equal(mdlen, 32);
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_single_event_request(void **state)
{
    (void)state;
    struct server *srv = server_start();
    struct fx f;
    fx_init(&f, srv->port, "/hooks/orders");
    f.w.method = "PUT";
    f.headers[0] = (struct kv){"X-Tenant", "acme"};
    f.headers[1] = (struct kv){"X-Cdc-Topic", "spoofed"}; /* computed headers win */
    f.w.headers = f.headers;
    f.w.nheaders = 2;
    f.w.auth_token = "tok-3f9a";
    f.w.signing_secret = "whsec-71c2";
    fx_open(&f);

    struct cdc_table *tab = mktab();
    struct cdc_event *ev = mkev(tab, 42, "line\nbreak \"quoted\"", 24023128, 2);
    struct sink_result res = deliver(&f, 3, &ev, 1);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.ndone, 1);
    assert_int_equal(res.http_status, 200);

    assert_int_equal(nrecs(srv), 1);
    const struct rec *r = &srv->recs[0];
    assert_string_equal(r->method, "PUT");
    assert_string_equal(r->path, "/hooks/orders");
    struct buf want = BUF_INIT;
    envelope_of(&want, ev);
    assert_string_equal(r->body, want.p);
    assert_true(json_valid(r->body, r->body_len));
    assert_hdr(r, "Content-Type", "application/json");
    assert_hdr(r, "X-Tenant", "acme");
    assert_hdr(r, "Authorization", "Bearer tok-3f9a");
    assert_hdr(r, "Idempotency-Key", "shop:hook:24023128:2");
    assert_hdr(r, "X-CDC-Event-Count", "1");
    assert_hdr(r, "X-CDC-Topic", "cdc.public.orders");
    char sig[65], sigh[80];
    hmac_hex("whsec-71c2", r->body, r->body_len, sig);
    snprintf(sigh, sizeof sigh, "sha256=%s", sig);
    assert_hdr(r, "X-CDC-Signature", sigh);
    assert_no_hdr(r, "Expect");
    /* the secret itself is never sent */
    assert_null(strstr(r->head, "whsec-71c2"));

    /* the same position again (a replay) carries the same key */
    res = deliver(&f, 3, &ev, 1);
    assert_int_equal(res.rc, 0);
    assert_int_equal(nrecs(srv), 2);
    assert_hdr(&srv->recs[1], "Idempotency-Key", "shop:hook:24023128:2");
    assert_string_equal(srv->recs[1].body, want.p);

    fx_close(&f);
    buf_fini(&want);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    server_stop(srv);
}

static void test_batch_is_an_array(void **state)
{
    (void)state;
    struct server *srv = server_start();
    struct fx f;
    fx_init(&f, srv->port, "/h");
    f.sc.batch_size = 3;
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *evs[3] = {mkev(tab, 1, "a", 5000, 0), mkev(tab, 1, "b", 5000, 1),
                                mkev(tab, 1, "c", 6000, 0)};
    struct sink_result res = deliver(&f, 0, evs, 3);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.ndone, 3);
    const struct rec *r = &srv->recs[0];
    assert_string_equal(r->method, "POST");
    struct buf want = BUF_INIT, one = BUF_INIT;
    buf_putc(&want, '[');
    for (int i = 0; i < 3; i++) {
        envelope_of(&one, evs[i]);
        if (i)
            buf_putc(&want, ',');
        buf_put(&want, one.p, one.len);
    }
    buf_putc(&want, ']');
    assert_string_equal(r->body, want.p);
    assert_true(json_valid(r->body, r->body_len));
    assert_hdr(r, "X-CDC-Event-Count", "3");
    /* a batch's key: the SHA-256 of its changes' keys, each NUL-terminated */
    static const char members[] = "shop:hook:5000:0\0shop:hook:5000:1\0shop:hook:6000:0";
    char batch_key[128];
    snprintf(batch_key, sizeof batch_key, "shop:hook:batch:3:%s",
             sha256_hex(members, sizeof members));
    assert_hdr(r, "Idempotency-Key", batch_key);
    assert_hdr(r, "Content-Type", "application/json");
    assert_no_hdr(r, "X-CDC-Topic");
    assert_no_hdr(r, "Authorization");
    assert_no_hdr(r, "X-CDC-Signature");

    /* one event with batch_size > 1 is still an array, and names its topic */
    res = deliver(&f, 1, &evs[2], 1);
    assert_int_equal(res.rc, 0);
    r = &srv->recs[1];
    envelope_of(&one, evs[2]);
    buf_reset(&want);
    buf_printf(&want, "[%s]", one.p);
    assert_string_equal(r->body, want.p);
    assert_hdr(r, "X-CDC-Event-Count", "1");
    assert_hdr(r, "X-CDC-Topic", "cdc.public.orders");
    assert_hdr(r, "Idempotency-Key", "shop:hook:6000:0");

    /* control events carry no change: nothing is sent, the batch is done */
    struct cdc_event *commit = cdc_event_new(0, 0, 0);
    commit->op = CDC_OP_COMMIT;
    res = deliver(&f, 2, &commit, 1);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.ndone, 1);
    assert_int_equal(nrecs(srv), 2);

    fx_close(&f);
    buf_fini(&want);
    buf_fini(&one);
    for (int i = 0; i < 3; i++)
        cdc_event_unref(evs[i]);
    cdc_event_unref(commit);
    cdc_table_unref(tab);
    server_stop(srv);
}

/* A snapshot row of tab: (id, note) read by snapshot snap at lsn, as row
 * (idx & 0xffffffff) of chunk read (idx >> 32). */
static struct cdc_event *mkrow(struct cdc_table *tab, int id, const char *note, uint64_t snap,
                               uint64_t lsn, uint64_t idx)
{
    struct cdc_event *ev = mkev(tab, id, note, lsn, 0);
    ev->op = CDC_OP_READ;
    ev->snapshot = true;
    ev->snapshot_id = snap;
    ev->snapshot_chunk = idx >> 32;
    ev->snapshot_row = (uint32_t)idx;
    return ev;
}

static char *event_key(const struct cdc_event *ev)
{
    struct buf b = BUF_INIT;
    webhook_event_key(&b, "shop", "hook", ev);
    return b.p;
}

static char *request_key(struct cdc_event *const *evs, size_t n)
{
    struct buf b = BUF_INIT;
    webhook_request_key(&b, "shop", "hook", evs, n);
    return b.p;
}

/* Keys identify changes: streamed ones by position, snapshot rows by
 * snapshot, table and primary key (position only without a unique key),
 * requests by their changes. */
static void test_idempotency_keys(void **state)
{
    (void)state;
    struct cdc_table *orders = mktab();
    struct cdc_table *items = cdc_table_new(16385, "public", "items", "cdc", 2);
    items->cols[0].name = strdup("id");
    items->cols[0].type_name = strdup("integer");
    items->cols[0].type = CDC_T_INT;
    items->cols[0].key = true;
    items->cols[1].name = strdup("note");
    items->cols[1].type_name = strdup("text");
    cdc_table_finish(items);
    items->key_unique = true;
    struct cdc_table *keyless = cdc_table_new(16386, "public", "log", "cdc", 2);
    keyless->cols[0].name = strdup("id");
    keyless->cols[0].type_name = strdup("integer");
    keyless->cols[1].name = strdup("note");
    keyless->cols[1].type_name = strdup("text");
    cdc_table_finish(keyless);

    /* streamed: the position */
    struct cdc_event *ins = mkev(orders, 7, "x", 24023128, 2);
    char *k = event_key(ins);
    assert_string_equal(k, "shop:hook:24023128:2");
    free(k);

    /* the same row id, chunk and position in two tables of one snapshot:
     * the old position-based key collided; now they differ */
    uint64_t snap = 0x1000000;
    struct cdc_event *a = mkrow(orders, 1, "a", snap, snap, (1ull << 32) | 0);
    struct cdc_event *b = mkrow(items, 1, "a", snap, snap, (1ull << 32) | 0);
    char *ka = event_key(a), *kb = event_key(b);
    assert_string_not_equal(ka, kb);
    assert_int_equal(strncmp(ka, "shop:hook:snapshot:16777216:", 28), 0);
    assert_int_equal(strlen(ka), 28 + 64);
    /* resumed: the row is read again in another chunk read, with other
     * values: same snapshot, table and key, same key */
    struct cdc_event *again = mkrow(orders, 1, "changed", snap, snap, (9ull << 32) | 41);
    char *kagain = event_key(again);
    assert_string_equal(ka, kagain);
    /* another snapshot of the same row: another key */
    struct cdc_event *later = mkrow(orders, 1, "a", snap + 1, snap + 1, (1ull << 32) | 0);
    char *klater = event_key(later);
    assert_string_not_equal(ka, klater);
    /* an event stored before snapshot ids: the initial snapshot's LSN */
    struct cdc_event *old = mkrow(orders, 1, "a", 0, snap, (3ull << 32) | 5);
    char *kold = event_key(old);
    assert_string_equal(ka, kold);
    /* no unique key: two identical rows are told apart by their position */
    struct cdc_event *l1 = mkrow(keyless, 1, "same", snap, snap, (1ull << 32) | 0);
    struct cdc_event *l2 = mkrow(keyless, 1, "same", snap, snap, (1ull << 32) | 1);
    char *kl1 = event_key(l1), *kl2 = event_key(l2);
    assert_string_not_equal(kl1, kl2);

    /* requests: one change is its key; a batch hashes its changes' keys */
    struct cdc_event *commit = cdc_event_new(0, 0, 0);
    commit->op = CDC_OP_COMMIT;
    struct cdc_event *one[2] = {ins, commit};
    char *r1 = request_key(one, 2);
    assert_string_equal(r1, "shop:hook:24023128:2");
    struct cdc_event *ab[3] = {a, commit, b}, *ab2[2] = {a, b}, *ba[2] = {b, a},
                     *abl[3] = {a, b, l1};
    char *rab = request_key(ab, 3), *rab2 = request_key(ab2, 2), *rba = request_key(ba, 2),
         *rabl = request_key(abl, 3);
    assert_string_equal(rab, rab2); /* control events do not count */
    assert_int_equal(strncmp(rab, "shop:hook:batch:2:", 18), 0);
    assert_string_not_equal(rab, rba);
    assert_string_not_equal(rab, rabl);
    assert_int_equal(strncmp(rabl, "shop:hook:batch:3:", 18), 0);

    char *all[] = {ka, kb, kagain, klater, kold, kl1, kl2, r1, rab, rab2, rba, rabl};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]);
    struct cdc_event *evs[] = {ins, a, b, again, later, old, l1, l2, commit};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++)
        cdc_event_unref(evs[i]);
    cdc_table_unref(orders);
    cdc_table_unref(items);
    cdc_table_unref(keyless);
}

static void http_date(char *out, size_t len, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_classification(void **state)
{
    (void)state;
    struct server *srv = server_start();
    char long_body[400];
    memset(long_body, 'x', sizeof long_body - 1);
    long_body[sizeof long_body - 1] = '\0';
    memcpy(long_body, "first\r\nsecond\t", 14);
    char date_hdr[96], date[64];
    http_date(date, sizeof date, time(NULL) + 30);
    snprintf(date_hdr, sizeof date_hdr, "Retry-After: %s\r\n", date);

    struct {
        int status;
        const char *extra;
        const char *body;
        int rc_zero;
        enum sink_errclass cls;
        int64_t ra_min, ra_max; /* retry_after_us */
    } cases[] = {
        {200, NULL, "fine", 1, 0, 0, 0},
        {204, NULL, "", 1, 0, 0, 0},
        {400, NULL, "{\"error\":\"bad key\"}", 0, SINK_ERR_PERMANENT, 0, 0},
        {401, NULL, "", 0, SINK_ERR_PERMANENT, 0, 0},
        {404, NULL, "no such hook", 0, SINK_ERR_PERMANENT, 0, 0},
        {409, NULL, "", 0, SINK_ERR_PERMANENT, 0, 0},
        {422, NULL, "", 0, SINK_ERR_PERMANENT, 0, 0},
        {408, NULL, "", 0, SINK_ERR_RETRYABLE, 0, 0},
        {429, "Retry-After: 7\r\n", "slow down", 0, SINK_ERR_RETRYABLE, 7000000, 7000000},
        {429, date_hdr, "", 0, SINK_ERR_RETRYABLE, 27000000, 31000000},
        {500, NULL, long_body, 0, SINK_ERR_RETRYABLE, 0, 0},
        {503, "retry-after:  2 \r\n", "", 0, SINK_ERR_RETRYABLE, 2000000, 2000000},
        {301, "Location: /elsewhere\r\n", "", 0, SINK_ERR_PERMANENT, 0, 0},
    };
    size_t ncases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < ncases; i++)
        script(srv, cases[i].status, cases[i].extra, cases[i].body);

    /* user information and query values must not reach messages */
    struct fx f;
    char path[64];
    fx_init(&f, srv->port, "/hook");
    snprintf(f.url, sizeof f.url, "http://alice:pa55word@127.0.0.1:%d/hook?token=qq77", srv->port);
    snprintf(path, sizeof path, "http://***@127.0.0.1:%d/hook?token=***", srv->port);
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *ev = mkev(tab, 1, "n", 9000, 0);
    for (size_t i = 0; i < ncases; i++) {
        struct sink_result res = deliver(&f, (unsigned)i, &ev, 1);
        char what[32];
        snprintf(what, sizeof what, "HTTP %d", cases[i].status);
        if (cases[i].rc_zero != (res.rc == 0))
            fail_msg("%s: rc %d (%s)", what, res.rc, res.err);
        assert_int_equal(res.http_status, cases[i].status);
        assert_int_equal(nrecs(srv), i + 1); /* one request each: no redirect followed */
        if (res.rc == 0) {
            assert_int_equal(res.ndone, 1);
            continue;
        }
        assert_int_equal(res.ndone, 0);
        if ((int)res.errclass != (int)cases[i].cls)
            fail_msg("%s: class %d, want %d", what, res.errclass, cases[i].cls);
        if (res.retry_after_us < cases[i].ra_min || res.retry_after_us > cases[i].ra_max)
            fail_msg("%s: retry_after_us %lld not in [%lld, %lld]", what,
                     (long long)res.retry_after_us, (long long)cases[i].ra_min,
                     (long long)cases[i].ra_max);
        char prefix[160];
        snprintf(prefix, sizeof prefix, "HTTP %d from %s: ", cases[i].status, path);
        if (strncmp(res.err, prefix, strlen(prefix)) != 0)
            fail_msg("%s: error %s does not start with %s", what, res.err, prefix);
        assert_null(strchr(res.err, '\n'));
        assert_null(strchr(res.err, '\r'));
        assert_null(strstr(res.err, "pa55word"));
        assert_null(strstr(res.err, "alice"));
        assert_null(strstr(res.err, "qq77"));
        const char *quoted = res.err + strlen(prefix);
        if (cases[i].status == 500) {
            assert_int_equal(strlen(quoted), WEBHOOK_BODY_QUOTE);
            assert_true(strncmp(quoted, "first  second x", 15) == 0);
        } else if (cases[i].status == 404) {
            assert_string_equal(quoted, "no such hook");
        }
    }
    /* the credentials in the URL were used as HTTP basic auth */
    assert_hdr(&srv->recs[0], "Authorization", "Basic YWxpY2U6cGE1NXdvcmQ=");
    fx_close(&f);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    server_stop(srv);
}

/* A receiver that echoes the request in its error page must not get the
 * token or the signing secret into our messages. */
static void test_secrets_never_quoted(void **state)
{
    (void)state;
    struct server *srv = server_start();
    script(srv, 401, NULL, "rejected Bearer tok-leak-5150 (signed with sig-leak-77)");
    struct fx f;
    fx_init(&f, srv->port, "/s");
    f.w.auth_token = "tok-leak-5150";
    f.w.signing_secret = "sig-leak-77";
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *ev = mkev(tab, 1, "n", 9000, 0);
    struct sink_result res = deliver(&f, 0, &ev, 1);
    assert_int_equal(res.http_status, 401);
    assert_int_equal(res.errclass, SINK_ERR_PERMANENT);
    assert_non_null(strstr(res.err, "rejected Bearer "));
    assert_null(strstr(res.err, "tok-leak-5150"));
    assert_null(strstr(res.err, "sig-leak-77"));
    assert_hdr(&srv->recs[0], "Authorization", "Bearer tok-leak-5150");
    fx_close(&f);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    server_stop(srv);
}

static void test_refused_and_timeout_are_unreachable(void **state)
{
    (void)state;
    struct cdc_table *tab = mktab();
    struct cdc_event *ev = mkev(tab, 1, "n", 9000, 0);

    /* a port nobody listens on */
    int port;
    int fd = listen_any(&port);
    assert_true(fd >= 0);
    close(fd);
    struct fx f;
    fx_init(&f, port, "/x");
    fx_open(&f);
    struct sink_result res = deliver(&f, 5, &ev, 1);
    assert_int_not_equal(res.rc, 0);
    assert_int_equal(res.errclass, SINK_ERR_UNREACHABLE);
    assert_int_equal(res.http_status, 0);
    assert_int_equal(res.ndone, 0);
    assert_non_null(strstr(res.err, "127.0.0.1"));
    fx_close(&f);

    /* a server that accepts and never answers */
    struct server *srv = server_start();
    script_hang(srv);
    fx_init(&f, srv->port, "/slow");
    f.w.timeout_seconds = 0.3;
    fx_open(&f);
    assert_int_equal(f.sk.ops->submit(&f.sk, 6, &ev, 1), 0);
    int64_t took = collect(&f, &res, 1);
    assert_int_equal(res.lane, 6);
    assert_int_not_equal(res.rc, 0);
    assert_int_equal(res.errclass, SINK_ERR_UNREACHABLE);
    assert_int_equal(res.http_status, 0);
    assert_non_null(strstr(res.err, "/slow"));
    if (took < 250000 || took > 3000000)
        fail_msg("timeout after %lld us, want about 300 ms", (long long)took);
    assert_int_equal(nrecs(srv), 1);
    fx_close(&f);
    server_stop(srv);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

static void test_lanes_are_concurrent(void **state)
{
    (void)state;
    struct server *srv = server_start();
    enum { LANES = 6 };
    for (int i = 0; i < LANES; i++)
        script_delay(srv, 200, 300);
    struct fx f;
    fx_init(&f, srv->port, "/c");
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *evs[LANES];
    int64_t t0 = clock_mono_us();
    for (int i = 0; i < LANES; i++) {
        evs[i] = mkev(tab, i, "n", 7000, (uint64_t)i);
        assert_int_equal(f.sk.ops->submit(&f.sk, (unsigned)(10 + i), &evs[i], 1), 0);
    }
    struct sink_result res[LANES];
    collect(&f, res, LANES);
    int64_t took = clock_mono_us() - t0;
    unsigned seen = 0;
    for (int i = 0; i < LANES; i++) {
        assert_int_equal(res[i].rc, 0);
        assert_true(res[i].lane >= 10 && res[i].lane < 10 + LANES);
        seen |= 1u << (res[i].lane - 10);
    }
    assert_int_equal(seen, (1u << LANES) - 1);
    /* all were being answered at once, on as many connections */
    assert_int_equal(counter(srv, &srv->max_busy), LANES);
    assert_int_equal(counter(srv, &srv->nconns), LANES);
    if (took > 1500000)
        fail_msg("%d concurrent 300 ms requests took %lld us", LANES, (long long)took);
    fx_close(&f);
    for (int i = 0; i < LANES; i++)
        cdc_event_unref(evs[i]);
    cdc_table_unref(tab);
    server_stop(srv);
}

/* Beyond max_in_flight batches wait in the sink, and their timeout starts
 * only when they are sent: five 200 ms requests two at a time take 600 ms,
 * longer than the 500 ms timeout, and none times out. */
static void test_max_in_flight(void **state)
{
    (void)state;
    struct server *srv = server_start();
    enum { LANES = 5 };
    for (int i = 0; i < LANES; i++)
        script_delay(srv, 200, 200);
    struct fx f;
    fx_init(&f, srv->port, "/m");
    f.w.max_in_flight = 2;
    f.w.timeout_seconds = 0.5;
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *evs[LANES];
    for (int i = 0; i < LANES; i++) {
        evs[i] = mkev(tab, i, "n", 8000, (uint64_t)i);
        assert_int_equal(f.sk.ops->submit(&f.sk, (unsigned)i, &evs[i], 1), 0);
    }
    struct sink_result res[LANES];
    int64_t took = collect(&f, res, LANES);
    for (int i = 0; i < LANES; i++)
        if (res[i].rc != 0)
            fail_msg("lane %u failed: %s", res[i].lane, res[i].err);
    assert_int_equal(counter(srv, &srv->max_busy), 2);
    assert_true(counter(srv, &srv->nconns) <= 2);
    assert_true(took >= 550000);
    fx_close(&f);
    for (int i = 0; i < LANES; i++)
        cdc_event_unref(evs[i]);
    cdc_table_unref(tab);
    server_stop(srv);
}

static void test_connection_reuse(void **state)
{
    (void)state;
    struct server *srv = server_start();
    struct fx f;
    fx_init(&f, srv->port, "/r");
    fx_open(&f);
    struct cdc_table *tab = mktab();
    for (int i = 0; i < 6; i++) {
        struct cdc_event *ev = mkev(tab, i, "n", 9000 + (uint64_t)i, 0);
        struct sink_result res = deliver(&f, (unsigned)(i % 3), &ev, 1);
        assert_int_equal(res.rc, 0);
        cdc_event_unref(ev);
    }
    assert_int_equal(nrecs(srv), 6);
    assert_int_equal(counter(srv, &srv->nconns), 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(srv->recs[i].conn, 1);
    fx_close(&f);
    cdc_table_unref(tab);
    server_stop(srv);
}

/* close() abandons what is in flight; the sink can be opened again. */
static void test_close_in_flight_and_reopen(void **state)
{
    (void)state;
    struct server *srv = server_start();
    script_hang(srv);
    script_hang(srv);
    struct fx f;
    fx_init(&f, srv->port, "/z");
    fx_open(&f);
    struct cdc_table *tab = mktab();
    struct cdc_event *evs[3] = {mkev(tab, 1, "n", 100, 0), mkev(tab, 2, "n", 100, 1),
                                mkev(tab, 3, "n", 100, 2)};
    for (unsigned i = 0; i < 2; i++)
        assert_int_equal(f.sk.ops->submit(&f.sk, i, &evs[i], 1), 0);
    struct sink_result res;
    assert_int_equal(f.sk.ops->poll(&f.sk, 200, &res, 1), 0);
    int64_t t0 = clock_mono_us();
    fx_close(&f);
    assert_true(clock_mono_us() - t0 < 1000000);
    /* nothing in flight: poll returns at once */
    fx_open(&f);
    t0 = clock_mono_us();
    assert_int_equal(f.sk.ops->poll(&f.sk, 2000, &res, 1), 0);
    assert_true(clock_mono_us() - t0 < 500000);
    res = deliver(&f, 0, &evs[2], 1);
    assert_int_equal(res.rc, 0);
    assert_int_equal(nrecs(srv), 3);
    fx_close(&f);
    for (int i = 0; i < 3; i++)
        cdc_event_unref(evs[i]);
    cdc_table_unref(tab);
    server_stop(srv);
}

static void test_status_classes(void **state)
{
    (void)state;
    for (long s = 200; s <= 299; s++)
        assert_true(webhook_status_ok(s));
    long not_ok[] = {0, 100, 199, 300, 304, 400, 408, 429, 500, 599, 600};
    for (size_t i = 0; i < sizeof not_ok / sizeof not_ok[0]; i++)
        assert_false(webhook_status_ok(not_ok[i]));
    long retry[] = {408, 429, 500, 502, 503, 504, 599};
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
        assert_int_equal(webhook_status_class(retry[i]), SINK_ERR_RETRYABLE);
    long perm[] = {300, 301, 302, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 422, 499};
    for (size_t i = 0; i < sizeof perm / sizeof perm[0]; i++)
        assert_int_equal(webhook_status_class(perm[i]), SINK_ERR_PERMANENT);
}

static void test_retry_after_values(void **state)
{
    (void)state;
    /* Wed, 21 Oct 2015 07:28:00 GMT */
    const int64_t t = 1445412480LL * 1000000;
    const int64_t now = t - 30 * 1000000LL;
#define RA(s) webhook_retry_after_us((s), strlen(s), now)
    assert_int_equal(RA("120"), 120000000);
    assert_int_equal(RA("  3\r\n"), 3000000);
    assert_int_equal(RA("0"), 0);
    assert_int_equal(RA("1.5"), 1500000);
    assert_int_equal(RA(""), 0);
    assert_int_equal(RA("soon"), 0);
    assert_int_equal(RA("12abc"), 0);
    assert_int_equal(RA("-5"), 0);
    assert_int_equal(RA("Wed, 21 Oct 2015 07:28:00 GMT"), 30000000);
    assert_int_equal(RA(" Wed, 21 Oct 2015 07:28:00 GMT\r\n"), 30000000);
    assert_int_equal(RA("Wednesday, 21-Oct-15 07:28:00 GMT"), 30000000);
    assert_int_equal(RA("Wed Oct 21 07:28:00 2015"), 30000000);
    assert_int_equal(RA("Wed, 21 Oct 2015 07:27:00 GMT"), 0); /* in the past */
    assert_true(RA("99999999999999999999") > 0);
#undef RA
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_retry_after_values),
        cmocka_unit_test(test_single_event_request),
        cmocka_unit_test(test_batch_is_an_array),
        cmocka_unit_test(test_idempotency_keys),
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_secrets_never_quoted),
        cmocka_unit_test(test_refused_and_timeout_are_unreachable),
        cmocka_unit_test(test_lanes_are_concurrent),
        cmocka_unit_test(test_max_in_flight),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_close_in_flight_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
