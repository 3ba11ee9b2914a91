/* The binlog decoder on events captured from MariaDB 10.11
 * (tests/unit/data/mysql/capture.py): the type matrix's values, NULLs,
 * DDL between row events, savepoint rollbacks; plus truncated and
 * corrupted events, which must be refused, never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/evcodec.h"

#include "source/mysql/binlog.h"
#include "source/mysql/mydecode.h"
#include "source/mysql/myjson.h"
#include "util/buf.h"
#include "util/err.h"

#define EVENTS_FILE "tests/unit/data/mysql/events.hex"

struct raw {
    uint8_t *p;
    size_t n;
};
static struct raw *evs;
static size_t nevs;

/* What the decoder produced, flattened: one entry per change. */
struct change {
    char op;
    char table[32];
    struct cdc_event *ev;
    uint32_t row;
    char gtid[64];
};
static struct change changes[256];
static size_t nchanges, ncommits;

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int load(void **state)
{
    (void)state;
    FILE *f = fopen(EVENTS_FILE, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s (run tests from the repository root)\n", EVENTS_FILE);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        size_t hl = strcspn(line, "\r\n");
        evs = realloc(evs, (nevs + 1) * sizeof *evs);
        struct raw *r = &evs[nevs++];
        r->n = hl / 2;
        r->p = malloc(r->n + 1);
        for (size_t i = 0; i < r->n; i++)
            r->p[i] = (uint8_t)(hexval(line[2 * i]) << 4 | hexval(line[2 * i + 1]));
    }
    free(line);
    fclose(f);
    return nevs > 0 ? 0 : -1;
}

static int unload(void **state)
{
    (void)state;
    for (size_t i = 0; i < nevs; i++)
        free(evs[i].p);
    free(evs);
    for (size_t i = 0; i < nchanges; i++)
        cdc_event_unref(changes[i].ev);
    return 0;
}

/* The source block from the event's source metadata is the one the
 * decoder's facts about the row give, also after the event went through
 * the event codec (the dead-letter queue). */
static void check_source_block(struct cdc_event *ev, const struct mydecode_row *row)
{
    assert_non_null(ev->srcmeta);
    assert_int_equal(ev->src_row, row->row);
    struct myjson_source s = {0};
    myjson_source_from_row(&s, ev, row);
    s.version = "0.1.0";
    s.name = "shop";
    struct buf want = BUF_INIT, got = BUF_INIT, back = BUF_INIT, enc = BUF_INIT;
    myjson_source(&want, &s);
    const struct json_ctx jc = {.pipeline_id = "shop", .version = "0.1.0"};
    myjson_event_source(&got, ev, &jc, true);
    assert_string_equal(got.p, want.p);
    evcodec_encode(&enc, ev);
    struct cdc_event *copy;
    char err[128];
    assert_int_equal(evcodec_decode((uint8_t *)enc.p, enc.len, NULL, &copy, err, sizeof err), 0);
    myjson_event_source(&back, copy, &jc, true);
    assert_string_equal(back.p, want.p);
    cdc_event_unref(copy);
    buf_fini(&want);
    buf_fini(&got);
    buf_fini(&back);
    buf_fini(&enc);
}

static int on_change(void *arg, struct cdc_event *ev, const struct mydecode_row *row)
{
    (void)arg;
    check_source_block(ev, row);
    if (nchanges == sizeof changes / sizeof *changes) {
        cdc_event_unref(ev);
        return 0;
    }
    struct change *c = &changes[nchanges++];
    c->op = (char)ev->op;
    snprintf(c->table, sizeof c->table, "%s.%s", ev->tab->schema, ev->tab->name);
    c->ev = ev;
    c->row = row->row;
    snprintf(c->gtid, sizeof c->gtid, "%s", row->txn->gtid_text);
    return 0;
}

static int on_commit(void *arg, struct cdc_event *ev, const struct mydecode_txn *t)
{
    (void)arg;
    (void)t;
    assert_int_equal(ev->op, CDC_OP_COMMIT);
    assert_true(ev->end_lsn > ev->pos.lsn);
    ncommits++;
    cdc_event_unref(ev);
    return 0;
}

static int ignore_change(void *arg, struct cdc_event *ev, const struct mydecode_row *row)
{
    (void)arg;
    (void)row;
    cdc_event_unref(ev);
    return 0;
}

static int ignore_commit(void *arg, struct cdc_event *ev, const struct mydecode_txn *t)
{
    (void)arg;
    (void)t;
    cdc_event_unref(ev);
    return 0;
}

static struct mydecode *decoder(bool collect)
{
    struct mydecode_ops ops = {collect ? on_change : ignore_change,
                               collect ? on_commit : ignore_commit, NULL, NULL};
    struct mydecode_cfg cfg = {.topic_prefix = "t", .checksum = true};
    return mydecode_new(&cfg, &ops, NULL);
}

/* The text of column `name` in the change's after (or before) image; NULL
 * for SQL NULL. */
static const char *val(const struct change *c, bool after, const char *name)
{
    const struct cdc_event *ev = c->ev;
    const struct cdc_val *row = after ? ev->after : ev->before;
    assert_non_null(row);
    for (uint16_t i = 0; i < ev->tab->ncols; i++)
        if (strcmp(ev->tab->cols[i].name, name) == 0)
            return row[i].kind == CDC_V_TEXT ? cdc_val_ptr(ev, &row[i]) : NULL;
    fail_msg("no column %s", name);
    return NULL;
}

static const struct change *nth(const char *table, char op, int k)
{
    for (size_t i = 0; i < nchanges; i++)
        if (strcmp(changes[i].table, table) == 0 && changes[i].op == op && k-- == 0)
            return &changes[i];
    fail_msg("no change %c #%d on %s", op, k, table);
    return NULL;
}

static void test_decode_all(void **state)
{
    (void)state;
    struct mydecode *d = decoder(true);
    char err[512];
    for (size_t i = 0; i < nevs; i++) {
        int rc = mydecode_feed(d, evs[i].p, evs[i].n, err, sizeof err);
        if (rc)
            fail_msg("event %zu: %s", i, err);
    }
    assert_false(mydecode_in_group(d));
    assert_true(strncmp(mydecode_gtid_state(d), "0-1-", 4) == 0);
    mydecode_free(d);
    assert_true(nchanges >= 16);
    assert_true(ncommits > 10);
}

static void test_matrix_extremes(void **state)
{
    (void)state;
    const struct change *r1 = nth("mx.m", 'c', 0), *r2 = nth("mx.m", 'c', 1);
    assert_string_equal(val(r1, true, "tu"), "255");
    assert_string_equal(val(r1, true, "su"), "65535");
    assert_string_equal(val(r1, true, "mu"), "16777215");
    assert_string_equal(val(r1, true, "iu"), "4294967295");
    assert_string_equal(val(r1, true, "bu"), "18446744073709551615");
    assert_string_equal(val(r1, true, "bi"), "9223372036854775807");
    assert_string_equal(val(r1, true, "f"), "3.4028e+38");
    assert_string_equal(val(r1, true, "d"), "1.7976931348623157e+308");
    assert_string_equal(val(r1, true, "dc"),
                        "99999999999999999999999999999999999.999999999999999999999999999999");
    assert_string_equal(val(r1, true, "dn"), "99999999.99");
    assert_string_equal(val(r1, true, "dt"), "9999-12-31");
    assert_string_equal(val(r1, true, "tm"), "838:59:59");
    assert_string_equal(val(r1, true, "tm3"), "-838:59:59.000");
    assert_string_equal(val(r1, true, "dt6"), "9999-12-31 23:59:59.999999");
    assert_string_equal(val(r1, true, "ts"), "2038-01-19 03:14:07+00");
    assert_string_equal(val(r1, true, "ts3"), "2038-01-19 03:14:07.999+00");
    assert_string_equal(val(r1, true, "y"), "2155");
    assert_string_equal(val(r1, true, "e"), "ünï");
    assert_string_equal(val(r1, true, "st"), "x,y,z");
    assert_string_equal(val(r1, true, "b1"), "1");
    assert_string_equal(val(r1, true, "b10"), "1111111111");
    assert_string_equal(val(r1, true, "vc"), "Ελληνικά 😀 \t tab");
    assert_string_equal(val(r1, true, "vl"), "café Ü ½ € ‚ ÿ"); /* latin1 -> UTF-8 */
    assert_string_equal(val(r1, true, "tl"), "latin ÿ");
    assert_string_equal(val(r1, true, "bn"), "\\x00ff0a00"); /* BINARY(4) padding restored */
    assert_string_equal(val(r1, true, "vb"), "\\x000102ff");
    assert_string_equal(val(r1, true, "j"), "{\"a\": [1, 2.5, \"x\"], \"ü\": null}");
    assert_int_equal(strlen(val(r1, true, "lb")), 2 + 2 * 70000);

    assert_string_equal(val(r2, true, "ti"), "-128");
    assert_string_equal(val(r2, true, "bi"), "-9223372036854775808");
    assert_string_equal(val(r2, true, "mi"), "-8388608");
    assert_string_equal(val(r2, true, "f"), "-1.17549e-38");
    assert_string_equal(val(r2, true, "d"), "-2.2250738585072014e-308");
    assert_string_equal(val(r2, true, "dn"), "-0.01");
    assert_string_equal(val(r2, true, "tm"), "-838:59:59");
    assert_string_equal(val(r2, true, "tm3"), "-00:00:00.001");
    assert_string_equal(val(r2, true, "dt6"), "1000-01-01 00:00:00.000001");
    assert_string_equal(val(r2, true, "ts3"), "1970-01-01 00:00:01.001+00");
    assert_string_equal(val(r2, true, "st"), "");
    assert_string_equal(val(r2, true, "b64"),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    assert_string_equal(val(r2, true, "bl"), "\\x");
}

static void test_matrix_zeros_and_nulls(void **state)
{
    (void)state;
    const struct change *r3 = nth("mx.m", 'c', 2), *r4 = nth("mx.m", 'c', 3);
    const char *cols[] = {"ti", "bu", "f",   "dc", "dt", "tm6", "ts", "y",
                          "e",  "st", "b64", "j",  "vl", "bn",  "lb"};
    for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
        assert_null(val(r3, true, cols[i]));
    assert_string_equal(val(r4, true, "y"), "0"); /* YEAR 0, not 1900 */
    assert_string_equal(val(r4, true, "e"), "");  /* the invalid ENUM value */
    assert_string_equal(val(r4, true, "dt"), "0000-00-00");
    assert_string_equal(val(r4, true, "ts"), "0000-00-00 00:00:00");
    assert_string_equal(val(r4, true, "tm6"), "-00:00:01.500000");
    assert_string_equal(val(r4, true, "f"), "1.0000001");
    assert_string_equal(val(r4, true, "dc"), "0.000000000000000000000000000001");
    assert_string_equal(val(r4, true, "dn"), "0.00");
    assert_string_equal(val(r4, true, "b10"), "0101010101");
    assert_string_equal(val(r4, true, "ch"), "a b");
    assert_string_equal(val(r4, true, "bn"), "\\x01000000");
    /* an update to all NULLs, and the deletes' before images */
    const struct change *u = nth("mx.m", 'u', 3);
    assert_string_equal(val(u, false, "bu"), "18446744073709551615");
    assert_null(val(u, true, "bu"));
    assert_null(val(u, true, "lb"));
    const struct change *del = nth("mx.m", 'd', 0);
    assert_null(del->ev->after);
    assert_non_null(del->ev->before);
}

static void test_ddl_and_savepoint(void **state)
{
    (void)state;
    const struct change *ins = nth("dd.t", 'c', 0), *upd = nth("dd.t", 'u', 0);
    assert_int_equal(ins->ev->tab->ncols, 3);
    assert_int_equal(upd->ev->tab->ncols, 4); /* after ADD COLUMN c */
    assert_string_equal(val(upd, false, "a"), "10");
    assert_string_equal(val(upd, true, "a"), "11");
    assert_string_equal(val(upd, true, "c"), "5");
    assert_true(upd->ev->tab->cols[0].key && !upd->ev->tab->cols[1].key);
    assert_int_equal(upd->ev->tab->nkeys, 1);
    /* BEGIN; insert 3; SAVEPOINT; insert 4; ROLLBACK TO: only 3 remains */
    const struct change *three = nth("dd.t", 'c', 1);
    assert_string_equal(val(three, true, "id"), "3");
    assert_string_equal(val(three, true, "bb"), "c"); /* after RENAME COLUMN */
    for (size_t i = 0; i < nchanges; i++)
        if (strcmp(changes[i].table, "dd.t") == 0 && changes[i].op == 'c')
            assert_string_not_equal(val(&changes[i], true, "id"), "4");
    assert_string_equal(val(nth("dd.tm", 'c', 0), true, "id"), "40");
}

/* Every event cut short, and every event with bytes flipped, after the
 * events before it: a clean error or a clean decode, never a crash. */
static void test_truncated_and_corrupt(void **state)
{
    (void)state;
    char err[512];
    for (size_t i = 0; i < nevs; i++) {
        size_t lens[] = {0,  1,  18, 19,           20,           23,
                         27, 30, 40, evs[i].n / 2, evs[i].n - 5, evs[i].n - 1};
        for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
            if (lens[k] >= evs[i].n)
                continue;
            struct mydecode *d = decoder(false);
            for (size_t j = 0; j < i; j++)
                mydecode_feed(d, evs[j].p, evs[j].n, err, sizeof err);
            uint8_t *copy = malloc(lens[k] ? lens[k] : 1);
            memcpy(copy, evs[i].p, lens[k]);
            int rc = mydecode_feed(d, copy, lens[k], err, sizeof err);
            (void)rc;
            free(copy);
            mydecode_free(d);
        }
        for (size_t pos = 19; pos < evs[i].n && pos < 120; pos += 3) {
            struct mydecode *d = decoder(false);
            for (size_t j = 0; j < i; j++)
                mydecode_feed(d, evs[j].p, evs[j].n, err, sizeof err);
            uint8_t *copy = malloc(evs[i].n);
            memcpy(copy, evs[i].p, evs[i].n);
            copy[pos] ^= 0xa5;
            mydecode_feed(d, copy, evs[i].n, err, sizeof err);
            free(copy);
            mydecode_free(d);
        }
    }
}

static void test_query_kinds(void **state)
{
    (void)state;
    const char *name;
    size_t len;
#define KIND(s) binlog_query_kind(s, strlen(s), &name, &len)
    assert_int_equal(KIND("BEGIN"), BINLOG_STMT_BEGIN);
    assert_int_equal(KIND("COMMIT"), BINLOG_STMT_COMMIT);
    assert_int_equal(KIND("ROLLBACK"), BINLOG_STMT_ROLLBACK);
    assert_int_equal(KIND("SAVEPOINT `s 1`"), BINLOG_STMT_SAVEPOINT);
    assert_int_equal(len, 5);
    assert_int_equal(KIND("ROLLBACK TO `s`"), BINLOG_STMT_ROLLBACK_TO);
    assert_memory_equal(name, "`s`", 3);
    assert_int_equal(KIND("rollback to savepoint s2"), BINLOG_STMT_ROLLBACK_TO);
    assert_memory_equal(name, "s2", 2);
    assert_int_equal(KIND("RELEASE SAVEPOINT `s`"), BINLOG_STMT_RELEASE);
    assert_int_equal(KIND("COMMITTED_TABLE"), BINLOG_STMT_OTHER);
    assert_int_equal(KIND("ALTER TABLE t ADD c INT"), BINLOG_STMT_OTHER);
    assert_int_equal(KIND("XA COMMIT X'31'"), BINLOG_STMT_XA);
#undef KIND
    assert_int_equal(binlog_file_seq("mysql-bin.000042", 16), 42);
    assert_int_equal(binlog_file_seq("nodot", 5), 0);
    struct buf b = BUF_INIT;
    char err[128];
    assert_int_equal(mydecode_gtid_state_parse("1-5-7, 0-1-100", &b, err, sizeof err), 0);
    assert_string_equal(b.p, "0-1-100,1-5-7");
    assert_int_equal(mydecode_gtid_state_parse("0-1-x", &b, err, sizeof err), CDC_EINVAL);
    assert_int_equal(mydecode_gtid_state_parse("0-1-1'; DROP", &b, err, sizeof err), CDC_EINVAL);
    buf_fini(&b);
    assert_int_equal(mydecode_scalar("mysql-bin.000003", 1234), (3ULL << 32) | 1234);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_all),
        cmocka_unit_test(test_matrix_extremes),
        cmocka_unit_test(test_matrix_zeros_and_nulls),
        cmocka_unit_test(test_ddl_and_savepoint),
        cmocka_unit_test(test_truncated_and_corrupt),
        cmocka_unit_test(test_query_kinds),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
