/* Unit tests for the envelope encoder's source-block memo (core/json_envelope.c):
 * snapshot rows reuse the block the thread wrote last while what it is made
 * of stays the same.  Every envelope (and key) here must equal the one a
 * thread with nothing kept writes (a fresh thread), whatever was encoded
 * before it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/event.h"
#include "core/json.h"
#include "source/pg/pgjson.h"
#include "util/buf.h"

static const struct json_ctx ctx_a = {.pipeline_id = "shop-cdc",
                                      .connector = "postgresql",
                                      .db = "shop",
                                      .version = "0.1.0",
                                      .source = pgjson_source};
static const struct json_ctx ctx_b = {.pipeline_id = "other",
                                      .connector = "postgresql",
                                      .db = "shop",
                                      .version = "0.1.0",
                                      .source = pgjson_source};
static const struct json_ctx ctx_common = {
    .pipeline_id = "plain", .connector = "mysql", .db = "shop", .version = "0.1.0"};

static struct cdc_table *mktab(uint64_t id, const char *name)
{
    struct cdc_table *tab = cdc_table_new(id, "public", name, "cdc", 1);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("bigint");
    tab->cols[0].type = CDC_T_INT;
    tab->cols[0].key = true;
    cdc_table_finish(tab);
    return tab;
}

/* A snapshot row of tab (one more reference) with id = v. */
static struct cdc_event *mkrow(struct cdc_table *tab, const char *v)
{
    size_t n = strlen(v);
    struct cdc_event *ev = cdc_event_new(0, 1, n + 1);
    memcpy(ev->data, v, n + 1);
    ev->after[0] = (struct cdc_val){.off = 0, .len = (uint32_t)n, .kind = CDC_V_TEXT};
    ev->data_len = (uint32_t)n;
    ev->op = CDC_OP_READ;
    ev->snapshot = true;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->pos.lsn = ev->lsn = ev->snapshot_id = 5000;
    ev->commit_ts = 1718150400123456;
    ev->emit_ts = 1718150400456789;
    return ev;
}

struct fresh {
    const struct cdc_event *ev;
    const struct json_ctx *ctx;
    struct buf out;
};

/* The envelope, then the key. */
static void encode(struct buf *out, const struct cdc_event *ev, const struct json_ctx *ctx)
{
    json_envelope(out, ev, ctx);
    buf_putc(out, '\n');
    json_key(out, ev);
}

static void *fresh_main(void *arg)
{
    struct fresh *f = arg;
    encode(&f->out, f->ev, f->ctx);
    return NULL;
}

/* ev encoded here equals ev encoded on a thread that kept nothing. */
static void check(const struct cdc_event *ev, const struct json_ctx *ctx)
{
    struct buf here = BUF_INIT;
    encode(&here, ev, ctx);
    struct fresh f = {.ev = ev, .ctx = ctx, .out = BUF_INIT};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fresh_main, &f), 0);
    pthread_join(t, NULL);
    assert_int_equal(here.len, f.out.len);
    assert_memory_equal(here.p, f.out.p, here.len);
    buf_fini(&here);
    buf_fini(&f.out);
}

/* Every field the block is made of, changed one at a time between rows. */
static void test_memo_follows_every_field(void **state)
{
    (void)state;
    struct cdc_table *t1 = mktab(100, "orders"), *t2 = mktab(200, "lines");
    struct cdc_event *ev = mkrow(t1, "1");
    check(ev, &ctx_a);
    check(ev, &ctx_a); /* the same again: from the memo */
    struct cdc_event *other = mkrow(t2, "2");
    check(other, &ctx_a); /* another table */
    check(ev, &ctx_b);    /* another context */
    check(ev, &ctx_common);
    ev->commit_ts += 1000;
    check(ev, &ctx_a);
    ev->pos.lsn += 8;
    check(ev, &ctx_a);
    ev->lsn += 16;
    check(ev, &ctx_a);
    ev->xid = 42;
    check(ev, &ctx_a);
    ev->snapshot = false; /* a change: never from the memo */
    ev->op = CDC_OP_INSERT;
    check(ev, &ctx_a);
    cdc_event_unref(ev);
    cdc_event_unref(other);
    cdc_table_unref(t1);
    cdc_table_unref(t2);
}

/* A new version of a table in the same memory (a freed table's successor
 * at its address): its new name, not the kept block. */
static void test_memo_new_table_at_same_address(void **state)
{
    (void)state;
    struct cdc_table *t = mktab(100, "orders");
    struct cdc_event *ev = mkrow(t, "1");
    check(ev, &ctx_a);
    free(t->name);
    t->name = strdup("orders_renamed");
    t->version++;
    check(ev, &ctx_a);
    free(t->name);
    t->name = strdup("elsewhere");
    t->id = 300;
    t->version = 0;
    check(ev, &ctx_a);
    cdc_event_unref(ev);
    cdc_table_unref(t);
}

/* Rows of one table in a row: each as a fresh thread writes it. */
static void test_memo_many_rows(void **state)
{
    (void)state;
    struct cdc_table *t = mktab(100, "orders");
    char v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(v, sizeof v, "%d", i);
        struct cdc_event *ev = mkrow(t, v);
        ev->emit_ts += i;
        check(ev, &ctx_a);
        cdc_event_unref(ev);
    }
    cdc_table_unref(t);
}

/* A context made ready (json_ctx_prepare) encodes what the same context
 * without it does: strings that need escaping, a name too long for what
 * is kept (built for every event then), and times around the boundaries
 * where ts_ms stops being ts_us without its last three digits. */
static void test_prepared_context(void **state)
{
    (void)state;
    char longname[400];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *names[] = {"shop-cdc", "sh\"op\\cdc\n\x01 \xc3\xa9", longname};
    const int64_t times[] = {0,
                             1,
                             999,
                             1000,
                             1001,
                             123456,
                             -1,
                             -999,
                             -1000,
                             -1001,
                             1718150400123456,
                             INT64_MAX,
                             INT64_MIN + 1};
    struct cdc_table *t = mktab(100, "orders");
    struct cdc_event *ev = mkrow(t, "7");
    ev->snapshot = false;
    ev->op = CDC_OP_INSERT;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct json_ctx plain = {.pipeline_id = names[i],
                                 .connector = "postgresql",
                                 .db = names[i],
                                 .version = "0.1.0",
                                 .source = pgjson_source};
        struct json_ctx ready = plain;
        json_ctx_prepare(&ready);
        assert_true((ready.head_len > 0) == (i < 2));
        for (size_t k = 0; k < sizeof times / sizeof times[0]; k++) {
            ev->commit_ts = times[k];
            ev->emit_ts = times[k];
            struct buf a = BUF_INIT, b = BUF_INIT;
            json_envelope(&a, ev, &plain);
            json_envelope(&b, ev, &ready);
            assert_int_equal(a.len, b.len);
            assert_memory_equal(a.p, b.p, a.len);
            /* ts_ms is the floor of the microseconds over 1000 */
            int64_t us = times[k], ms = us / 1000 - (us % 1000 < 0);
            char want[96];
            snprintf(want, sizeof want, "\"ts_ms\":%lld,\"ts_us\":%lld,", (long long)ms,
                     (long long)us);
            assert_non_null(strstr(b.p, want));
            buf_fini(&a);
            buf_fini(&b);
        }
    }
    cdc_event_unref(ev);
    cdc_table_unref(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepared_context),
        cmocka_unit_test(test_memo_follows_every_field),
        cmocka_unit_test(test_memo_new_table_at_same_address),
        cmocka_unit_test(test_memo_many_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
