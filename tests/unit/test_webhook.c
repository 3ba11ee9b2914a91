/* Webhook sink: the HTTP contract, checked against the scripted HTTP/1.1
 * server of webhooktest.h.
 *
 * Covered: the body (one envelope, or an array), every header including the
 * signature (recomputed here), idempotency keys, the classification of
 * answers, Retry-After in both forms, and error pages that quote the
 * request.  The connections (refused, timed out, one per lane, the
 * max_in_flight limit, reuse, close with requests in flight) are
 * test_webhook_conn.c's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sink/change_key.h"
#include "webhooktest.h"

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
    sink_change_key(&b, "shop", "hook", ev);
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
        /* how answers are read */
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_retry_after_values),
        /* requests against the scripted server */
        cmocka_unit_test(test_single_event_request),
        cmocka_unit_test(test_batch_is_an_array),
        cmocka_unit_test(test_idempotency_keys),
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_secrets_never_quoted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
