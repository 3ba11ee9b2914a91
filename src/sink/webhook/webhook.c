/* Webhook sink: every batch the engine submits for a lane becomes one HTTP
 * request to the configured URL.  A per-key sink (submit/poll): lanes are
 * delivered concurrently, and this file only sends requests and classifies
 * their outcomes; retrying, backoff and dead-lettering are the engine's.
 *
 * One libcurl multi handle carries every request, so connections are kept
 * alive and reused across batches.  At most max_in_flight requests are
 * handed to curl at a time; further batches wait in a FIFO here and start as
 * earlier ones finish.  They wait here rather than inside curl because curl
 * starts a request's timeout clock when the request is added, and a batch
 * that waited behind slow ones would time out before it was ever sent.
 *
 * There is no durable position to report (open says {0,0}): delivery is at
 * least once, and the Idempotency-Key header, derived from what identifies
 * the request's changes (idem_key.c, sink/change_key.c), lets a receiver drop the repeats a
 * retry, a replay or a resumed snapshot sends.
 *
 * Secrets (auth_token, signing_secret, a password or token in the URL) only
 * ever go into requests; messages name the URL as redact_url shows it. */
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/json.h"
#include "sink/sink.h"
#include "sink/webhook/webhook.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/redact.h"

enum req_state {
    REQ_IDLE,    /* on the free list */
    REQ_WAITING, /* submitted, waiting for a free slot (max_in_flight) */
    REQ_ACTIVE,  /* added to the multi handle */
    REQ_DONE,    /* finished; the result waits for poll() */
};

/* One batch's request.  Reused through a free list; the easy handle is kept
 * (reset before each use) and the connection pool lives in the multi
 * handle, so reuse across requests does not depend on it. */
struct wh_req {
    enum req_state state;
    CURL *easy;              /* owned */
    struct curl_slist *hdrs; /* owned: this request's header lines */
    struct buf body;         /* owned: what is sent */
    size_t nevents;          /* events in the batch (result's ndone on success) */
    char resp[WEBHOOK_BODY_QUOTE];
    size_t resp_len;        /* bytes of the response body kept in resp */
    int64_t retry_after_us; /* from the response's Retry-After */
    char curl_err[CURL_ERROR_SIZE];
    struct sink_result res;  /* filled when the request finishes */
    struct wh_req *next;     /* free list, wait queue or done queue */
    struct wh_req *all_next; /* every request of the sink, for close */
};

struct wh_queue {
    struct wh_req *head, *tail;
};

struct webhook {
    CURLM *multi;                  /* owned */
    struct wh_req *all;            /* every request struct ever made (owned) */
    struct wh_req *idle;           /* free list */
    struct wh_queue waiting;       /* submitted, not yet handed to curl */
    struct wh_queue done;          /* finished, not yet reported */
    unsigned active;               /* requests in the multi handle */
    unsigned max_active;           /* webhook.max_in_flight */
    char url_text[REDACT_URL_MAX]; /* the URL as messages show it (redact_url) */
    char **fixed;                  /* owned: header lines every request carries */
    size_t nfixed;
    const char *secrets[2]; /* borrowed from the config: never quoted in messages */
};

static void q_push(struct wh_queue *q, struct wh_req *rq)
{
    rq->next = NULL;
    if (q->tail)
        q->tail->next = rq;
    else
        q->head = rq;
    q->tail = rq;
}

static struct wh_req *q_pop(struct wh_queue *q)
{
    struct wh_req *rq = q->head;
    if (rq) {
        q->head = rq->next;
        if (!q->head)
            q->tail = NULL;
        rq->next = NULL;
    }
    return rq;
}

/* ---------- the pure parts of the contract ---------- */

bool webhook_status_ok(long status)
{
    return status >= 200 && status <= 299;
}

enum sink_errclass webhook_status_class(long status)
{
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        return SINK_ERR_RETRYABLE;
    if (status >= 300 && status <= 499)
        return SINK_ERR_PERMANENT;
    return SINK_ERR_RETRYABLE;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int64_t webhook_retry_after_us(const char *value, size_t len, int64_t now_us)
{
    while (len && is_ows(*value)) {
        value++;
        len--;
    }
    while (len && is_ows(value[len - 1]))
        len--;
    if (len == 0)
        return 0;
    if (isdigit((unsigned char)value[0])) {
        /* delta-seconds; a fraction is not in the grammar but costs nothing */
        double secs = 0, scale = 0;
        for (size_t i = 0; i < len; i++) {
            char c = value[i];
            if (c == '.' && scale == 0) {
                scale = 1;
            } else if (isdigit((unsigned char)c)) {
                if (scale == 0) {
                    secs = secs * 10 + (c - '0');
                } else {
                    scale /= 10;
                    secs += (c - '0') * scale;
                }
            } else {
                return 0;
            }
            if (secs > 1e7) /* past any sensible advice; keeps the product in range */
                secs = 1e7;
        }
        return (int64_t)(secs * 1e6);
    }
    char date[64];
    if (len >= sizeof date)
        return 0;
    memcpy(date, value, len);
    date[len] = '\0';
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1)
        return 0;
    int64_t us = (int64_t)t * 1000000 - now_us;
    return us > 0 ? us : 0;
}

/* ---------- requests ---------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct wh_req *rq = arg;
    size_t n = size * nmemb;
    size_t room = sizeof rq->resp - rq->resp_len;
    size_t take = n < room ? n : room;
    memcpy(rq->resp + rq->resp_len, data, take);
    rq->resp_len += take;
    return n; /* the rest is read and dropped, so the connection stays usable */
}

static size_t on_header(char *data, size_t size, size_t nitems, void *arg)
{
    struct wh_req *rq = arg;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx): forget the previous one's headers */
        rq->retry_after_us = 0;
    } else if (n >= sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        rq->retry_after_us =
            webhook_retry_after_us(data + sizeof name - 1, n - (sizeof name - 1), clock_wall_us());
    }
    return n;
}

static bool header_is(const char *name, const char *want)
{
    return strcasecmp(name, want) == 0;
}

/* Headers the sink computes per request: a configured header of the same
 * name would contradict them, so it is not sent. */
static bool header_reserved(const char *name, const struct webhook_sink_cfg *w)
{
    return header_is(name, "Idempotency-Key") || header_is(name, "X-CDC-Event-Count") ||
           header_is(name, "X-CDC-Topic") || header_is(name, "X-CDC-Signature") ||
           header_is(name, "Content-Length") || header_is(name, "Transfer-Encoding") ||
           header_is(name, "Expect") || (w->auth_token && header_is(name, "Authorization"));
}

static bool header_configured(const struct webhook_sink_cfg *w, const char *name)
{
    for (size_t i = 0; i < w->nheaders; i++)
        if (header_is(w->headers[i].key, name))
            return true;
    return false;
}

static void fixed_add(struct webhook *wh, char *line)
{
    wh->fixed = xrealloc(wh->fixed, (wh->nfixed + 1) * sizeof *wh->fixed);
    wh->fixed[wh->nfixed++] = line;
}

/* The header lines that are the same for every request.  Content-Type and
 * User-Agent may be overridden by configured headers. */
static void fixed_headers(struct sink *sk, struct webhook *wh)
{
    const struct webhook_sink_cfg *w = sk->cfg->conf;
    if (!header_configured(w, "Content-Type"))
        fixed_add(wh, xstrdup("Content-Type: application/json"));
    if (!header_configured(w, "User-Agent"))
        fixed_add(wh, xasprintf("User-Agent: cdc/%s",
                                sk->json && sk->json->version ? sk->json->version : "0"));
    for (size_t i = 0; i < w->nheaders; i++) {
        const struct kv *h = &w->headers[i];
        if (header_reserved(h->key, w))
            continue;
        /* curl drops a header written "Name:"; "Name;" sends it empty */
        if (h->value[0])
            fixed_add(wh, xasprintf("%s: %s", h->key, h->value));
        else
            fixed_add(wh, xasprintf("%s;", h->key));
    }
    if (w->auth_token)
        fixed_add(wh, xasprintf("Authorization: Bearer %s", w->auth_token));
    /* No "Expect: 100-continue" round trip before large bodies. */
    fixed_add(wh, xstrdup("Expect:"));
}

static bool hdr_append(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return false;
    *list = l;
    return true;
}

/* Lowercase hex HMAC-SHA256 of the body under secret; false if OpenSSL
 * failed. */
static bool sign_body(const char *secret, const struct buf *body, char hex[2 * 32 + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body->p, body->len,
              md, &mdlen) ||
        mdlen != 32)
        return false;
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * mdlen] = '\0';
    return true;
}

/* The body: the envelope itself for a lone event when batches are of one,
 * else a JSON array of envelopes.  Control events carry no change and are
 * left out.  Returns how many envelopes it holds; *only (NULL unless exactly
 * one) points into evs. */
static size_t build_body(struct sink *sk, struct buf *b, struct cdc_event *const *evs, size_t n,
                         const struct cdc_event **only)
{
    size_t ndata = 0;
    const struct cdc_event *first = NULL;
    *only = NULL;
    for (size_t i = 0; i < n; i++)
        if (!cdc_op_is_control(evs[i]->op)) {
            if (!ndata)
                first = evs[i];
            ndata++;
        }
    buf_reset(b);
    if (ndata == 0)
        return 0;
    if (ndata == 1)
        *only = first;
    bool array = !(ndata == 1 && sk->cfg->batch_size == 1);
    if (array)
        buf_putc(b, '[');
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (cdc_op_is_control(evs[i]->op))
            continue;
        if (k++)
            buf_putc(b, ',');
        json_envelope(b, evs[i], sk->json);
    }
    if (array)
        buf_putc(b, ']');
    return ndata;
}

/* Sets up rq's easy handle for its body; returns 0, or CDC_ERR with
 * sink_set_error called. */
static int req_prepare(struct sink *sk, struct webhook *wh, struct wh_req *rq,
                       struct cdc_event *const *evs, size_t n, const struct cdc_event *only,
                       size_t ndata)
{
    const struct webhook_sink_cfg *w = sk->cfg->conf;
    char line[512];
    bool ok = true;
    for (size_t i = 0; i < wh->nfixed && ok; i++)
        ok = hdr_append(&rq->hdrs, wh->fixed[i]);
    struct buf key = BUF_INIT;
    buf_puts(&key, "Idempotency-Key: ");
    webhook_request_key(&key, sk->config && sk->config->pipeline_id ? sk->config->pipeline_id : "",
                        sk->cfg->sink_id, evs, n);
    ok = ok && hdr_append(&rq->hdrs, key.p);
    buf_fini(&key);
    snprintf(line, sizeof line, "X-CDC-Event-Count: %zu", ndata);
    ok = ok && hdr_append(&rq->hdrs, line);
    if (ok && only && only->tab && only->tab->topic) {
        snprintf(line, sizeof line, "X-CDC-Topic: %s", only->tab->topic);
        ok = hdr_append(&rq->hdrs, line);
    }
    if (ok && w->signing_secret) {
        char hex[65];
        if (!sign_body(w->signing_secret, &rq->body, hex))
            return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s: cannot compute the signature",
                                  wh->url_text);
        snprintf(line, sizeof line, "X-CDC-Signature: sha256=%s", hex);
        ok = hdr_append(&rq->hdrs, line);
    }
    if (!ok)
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s: out of memory for request headers",
                              wh->url_text);

    if (!rq->easy) {
        rq->easy = curl_easy_init();
        if (!rq->easy)
            return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s: cannot create a curl handle",
                                  wh->url_text);
    } else {
        curl_easy_reset(rq->easy);
    }
    long timeout_ms = (long)(w->timeout_seconds * 1000.0 + 0.5);
    if (timeout_ms < 1)
        timeout_ms = 1;
    CURL *e = rq->easy;
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                              \
    if (cc == CURLE_OK)                                                                            \
    cc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_URL, w->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body.len);
    SET(CURLOPT_POSTFIELDS, rq->body.p);
    if (strcmp(w->method, "POST") != 0)
        SET(CURLOPT_CUSTOMREQUEST, w->method);
    SET(CURLOPT_HTTPHEADER, rq->hdrs);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, rq);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, rq);
    SET(CURLOPT_ERRORBUFFER, rq->curl_err);
    SET(CURLOPT_PRIVATE, rq);
#undef SET
    if (cc != CURLE_OK)
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s: %s", wh->url_text,
                              curl_easy_strerror(cc));
    return 0;
}

/* A request struct for a new batch: from the free list or new. */
static struct wh_req *req_get(struct webhook *wh)
{
    struct wh_req *rq = wh->idle;
    if (rq) {
        wh->idle = rq->next;
    } else {
        rq = xcalloc(1, sizeof *rq);
        buf_init(&rq->body);
        rq->all_next = wh->all;
        wh->all = rq;
    }
    rq->next = NULL;
    rq->nevents = 0;
    rq->resp_len = 0;
    rq->retry_after_us = 0;
    rq->curl_err[0] = '\0';
    memset(&rq->res, 0, sizeof rq->res);
    return rq;
}

/* Back to the free list; the body's memory is given back (batches can be
 * large and the engine does not account for these copies). */
static void req_put(struct webhook *wh, struct wh_req *rq)
{
    curl_slist_free_all(rq->hdrs);
    rq->hdrs = NULL;
    buf_fini(&rq->body);
    rq->state = REQ_IDLE;
    rq->next = wh->idle;
    wh->idle = rq;
}

/* The response body as one line of at most WEBHOOK_BODY_QUOTE bytes:
 * control characters become spaces, an incomplete UTF-8 sequence cut off
 * at the end is dropped, trailing spaces are trimmed. */
static size_t body_line(const struct wh_req *rq, char *out, size_t outlen)
{
    size_t n = rq->resp_len < outlen - 1 ? rq->resp_len : outlen - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)rq->resp[i];
        out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    /* drop a trailing partial UTF-8 character */
    size_t lead = n, k = 0;
    while (lead > 0 && k < 4 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80) {
        lead--;
        k++;
    }
    if (lead > 0) {
        unsigned char c = (unsigned char)out[lead - 1];
        size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (want > 1 && k + 1 < want)
            n = lead - 1;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return n;
}

/* Masks every occurrence of a secret in s (a receiver may echo the request
 * back in its error page). */
static void redact(char *s, const char *secret)
{
    size_t len = secret ? strlen(secret) : 0;
    if (len == 0)
        return;
    for (char *p = strstr(s, secret); p; p = strstr(p + len, secret))
        memset(p, '*', len);
}

/* Fills rq->res from how the transfer ended. */
static void req_finish(struct webhook *wh, struct wh_req *rq, CURLcode cc)
{
    struct sink_result *res = &rq->res;
    long status = 0;
    curl_off_t took_us = 0;
    if (rq->easy) {
        curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(rq->easy, CURLINFO_TOTAL_TIME_T, &took_us);
    }
    res->duration_us = took_us > 0 ? (int64_t)took_us : 0;
    res->retry_after_us = rq->retry_after_us;
    if (cc != CURLE_OK) {
        /* No complete answer: the receiver is down or unreachable, not the
         * data wrong. */
        res->rc = CDC_ECONN;
        res->errclass = SINK_ERR_UNREACHABLE;
        res->http_status = 0;
        snprintf(res->err, sizeof res->err, "%.200s: %.300s", wh->url_text,
                 rq->curl_err[0] ? rq->curl_err : curl_easy_strerror(cc));
        return;
    }
    res->http_status = (int)status;
    if (webhook_status_ok(status)) {
        res->rc = 0;
        res->ndone = rq->nevents;
        return;
    }
    char quote[WEBHOOK_BODY_QUOTE + 1];
    body_line(rq, quote, sizeof quote);
    for (size_t i = 0; i < sizeof wh->secrets / sizeof wh->secrets[0]; i++)
        redact(quote, wh->secrets[i]);
    res->rc = CDC_ERR;
    res->errclass = webhook_status_class(status);
    snprintf(res->err, sizeof res->err, "HTTP %ld from %.200s: %s", status, wh->url_text, quote);
}

/* Hands a request to curl; on failure it finishes at once as unreachable. */
static void req_start(struct webhook *wh, struct wh_req *rq)
{
    CURLMcode mc = curl_multi_add_handle(wh->multi, rq->easy);
    if (mc != CURLM_OK) {
        rq->state = REQ_DONE;
        rq->res.rc = CDC_ECONN;
        rq->res.errclass = SINK_ERR_UNREACHABLE;
        snprintf(rq->res.err, sizeof rq->res.err, "%.300s: libcurl: %s", wh->url_text,
                 curl_multi_strerror(mc));
        q_push(&wh->done, rq);
        return;
    }
    rq->state = REQ_ACTIVE;
    wh->active++;
}

/* Lets curl make progress without waiting, moves finished transfers to the
 * done queue and starts waiting requests in the slots they free.  Returns 0,
 * or CDC_ERR (sink_set_error called) if the multi handle broke. */
static int drive(struct sink *sk, struct webhook *wh)
{
    for (;;) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(wh->multi, &running);
        if (mc != CURLM_OK)
            return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s: libcurl: %s", wh->url_text,
                                  curl_multi_strerror(mc));
        CURLMsg *m;
        int left = 0;
        while ((m = curl_multi_info_read(wh->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            CURLcode cc = m->data.result; /* m is invalid after remove_handle */
            char *priv = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
            struct wh_req *rq = (struct wh_req *)(void *)priv;
            curl_multi_remove_handle(wh->multi, e);
            wh->active--;
            req_finish(wh, rq, cc);
            rq->state = REQ_DONE;
            q_push(&wh->done, rq);
        }
        bool started = false;
        while (wh->active < wh->max_active && wh->waiting.head) {
            req_start(wh, q_pop(&wh->waiting));
            started = true;
        }
        if (!started)
            return 0;
    }
}

/* ---------- sink ops ---------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void webhook_close(struct sink *sk);

/* Reports holding nothing: the receiver drops what comes again by its
 * Idempotency-Key. */
static int webhook_open(struct sink *sk, struct cdc_posmap *have)
{
    const struct webhook_sink_cfg *w = sk->cfg->conf;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "cannot initialize libcurl: %s",
                              curl_easy_strerror(curl_init_rc));
    struct webhook *wh = xcalloc(1, sizeof *wh);
    redact_url(w->url, wh->url_text, sizeof wh->url_text);
    wh->max_active = w->max_in_flight > 0 ? (unsigned)w->max_in_flight : 1;
    wh->secrets[0] = w->auth_token;
    wh->secrets[1] = w->signing_secret;
    sk->priv = wh;
    wh->multi = curl_multi_init();
    if (!wh->multi) {
        webhook_close(sk);
        return sink_set_error(sk, SINK_ERR_UNREACHABLE, "cannot create a libcurl multi handle");
    }
    curl_multi_setopt(wh->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)wh->max_active);
    curl_multi_setopt(wh->multi, CURLMOPT_MAXCONNECTS, (long)wh->max_active);
    fixed_headers(sk, wh);
    return 0;
}

/* Aborts what is in flight (those batches are never reported) and frees
 * everything. */
static void webhook_close(struct sink *sk)
{
    struct webhook *wh = sk->priv;
    if (!wh)
        return;
    struct wh_req *rq = wh->all;
    while (rq) {
        struct wh_req *next = rq->all_next;
        if (rq->state == REQ_ACTIVE)
            curl_multi_remove_handle(wh->multi, rq->easy);
        if (rq->easy)
            curl_easy_cleanup(rq->easy);
        curl_slist_free_all(rq->hdrs);
        buf_fini(&rq->body);
        free(rq);
        rq = next;
    }
    if (wh->multi)
        curl_multi_cleanup(wh->multi);
    for (size_t i = 0; i < wh->nfixed; i++)
        free(wh->fixed[i]);
    free(wh->fixed);
    free(wh);
    sk->priv = NULL;
}

static int webhook_submit(struct sink *sk, unsigned lane, struct cdc_event *const *evs, size_t n)
{
    struct webhook *wh = sk->priv;
    struct wh_req *rq = req_get(wh);
    rq->res.lane = lane;
    rq->nevents = n;
    const struct cdc_event *only;
    size_t ndata = build_body(sk, &rq->body, evs, n, &only);
    if (ndata == 0) {
        /* nothing to send: done as soon as asked */
        rq->res.ndone = n;
        rq->state = REQ_DONE;
        q_push(&wh->done, rq);
        return 0;
    }
    if (req_prepare(sk, wh, rq, evs, n, only, ndata) != 0) {
        req_put(wh, rq);
        return CDC_ERR;
    }
    if (wh->active < wh->max_active) {
        req_start(wh, rq);
    } else {
        rq->state = REQ_WAITING;
        q_push(&wh->waiting, rq);
    }
    /* get the request on the wire now rather than at the next poll */
    return drive(sk, wh);
}

static size_t take_done(struct webhook *wh, struct sink_result *out, size_t max)
{
    size_t k = 0;
    while (k < max && wh->done.head) {
        struct wh_req *rq = q_pop(&wh->done);
        out[k++] = rq->res;
        req_put(wh, rq);
    }
    return k;
}

/* Waits up to timeout_ms (< 0: until a batch finishes) for finished
 * batches; returns at once when some are ready or nothing is in flight. */
static int webhook_poll(struct sink *sk, int timeout_ms, struct sink_result *out, size_t max)
{
    struct webhook *wh = sk->priv;
    if (drive(sk, wh) != 0)
        return CDC_ERR;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (!wh->done.head && wh->active > 0) {
        int64_t left = deadline == INT64_MAX ? 1000000 : deadline - clock_mono_us();
        if (left <= 0)
            break;
        int wait_ms = left > 1000000 ? 1000 : (int)((left + 999) / 1000);
        CURLMcode mc = curl_multi_poll(wh->multi, NULL, 0, wait_ms, NULL);
        if (mc != CURLM_OK)
            return sink_set_error(sk, SINK_ERR_UNREACHABLE, "%s: libcurl: %s", wh->url_text,
                                  curl_multi_strerror(mc));
        if (drive(sk, wh) != 0)
            return CDC_ERR;
    }
    return (int)take_done(wh, out, max);
}

const struct sink_ops sink_webhook_ops = {
    .open = webhook_open,
    .close = webhook_close,
    .submit = webhook_submit,
    .poll = webhook_poll,
};
