/* Unit tests for the JSON encoder (core/json.c): the envelopes of every
 * kind of event, keys, and reading a position back from an envelope.  Every
 * document is also checked by Python (jsontest.h).
 *
 * CDC_JSON_BENCH=1 runs a throughput benchmark before the tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/event.h"
#include "core/json.h"
#include "util/buf.h"
#include "util/err.h"
#include "source/pg/pgjson.h"
#include "jsontest.h"

/* ---- building events ------------------------------------------------------ */

struct tcol {
    const char *name;
    enum cdc_type type;
    bool key;
};

/* A test value: kind plus text (which may hold NUL bytes). */
struct tv {
    uint8_t kind;
    const char *s;
    size_t n;
};

#define T(lit)                                                                                     \
    {                                                                                              \
        CDC_V_TEXT, (lit), sizeof(lit) - 1                                                         \
    }
#define VN                                                                                         \
    {                                                                                              \
        CDC_V_NULL, NULL, 0                                                                        \
    }
#define VU                                                                                         \
    {                                                                                              \
        CDC_V_UNCHANGED, NULL, 0                                                                   \
    }

static const struct json_ctx ctx = {.pipeline_id = "shop-cdc",
                                    .connector = "postgresql",
                                    .db = "shop",
                                    .version = "0.1.0",
                                    .source = pgjson_source};

static struct cdc_table *mktab(const char *schema, const char *name, const struct tcol *cols,
                               uint16_t ncols)
{
    struct cdc_table *tab = cdc_table_new(16384, schema, name, "cdc", ncols);
    for (uint16_t i = 0; i < ncols; i++) {
        tab->cols[i].name = strdup(cols[i].name);
        tab->cols[i].type_name = strdup("text");
        tab->cols[i].type = cols[i].type;
        tab->cols[i].key = cols[i].key;
    }
    cdc_table_finish(tab);
    return tab;
}

static void fill(struct cdc_event *ev, struct cdc_val *dst, const struct tv *src, uint16_t n,
                 uint32_t *off)
{
    for (uint16_t i = 0; i < n; i++) {
        dst[i].kind = src[i].kind;
        dst[i].off = *off;
        dst[i].len = (uint32_t)src[i].n;
        if (src[i].n)
            memcpy(ev->data + *off, src[i].s, src[i].n);
        *off += (uint32_t)src[i].n;
    }
}

/* An event on tab (a new reference is taken) with the usual test position:
 * commit LSN 1000, record LSN 990, xid 771, first in its transaction. */
static struct cdc_event *mkev(int op, struct cdc_table *tab, const struct tv *before,
                              const struct tv *after)
{
    uint16_t n = tab ? tab->ncols : 2;
    size_t data = 0;
    for (uint16_t i = 0; i < n; i++)
        data += (before ? before[i].n : 0) + (after ? after[i].n : 0);
    struct cdc_event *ev = cdc_event_new(before ? n : 0, after ? n : 0, data);
    uint32_t off = 0;
    if (before)
        fill(ev, ev->before, before, n, &off);
    if (after)
        fill(ev, ev->after, after, n, &off);
    ev->data_len = off;
    ev->op = (uint8_t)op;
    if (tab) {
        cdc_table_ref(tab);
        ev->tab = tab;
    }
    ev->pos.lsn = 1000;
    ev->pos.idx = 0;
    ev->lsn = 990;
    ev->commit_ts = 1718150400123456;
    ev->emit_ts = 1718150400456789;
    ev->xid = 771;
    ev->total_order = 1;
    ev->table_order = 1;
    return ev;
}

static struct cdc_event *mkmsg(const char *prefix, const char *content, size_t clen, bool txn)
{
    struct tv vals[2] = {{CDC_V_TEXT, prefix, strlen(prefix)}, {CDC_V_TEXT, content, clen}};
    struct cdc_event *ev = mkev(CDC_OP_MESSAGE, NULL, NULL, vals);
    ev->msg_transactional = txn;
    return ev;
}

static void assert_envelope(const struct cdc_event *ev, const char *want)
{
    struct buf b = BUF_INIT;
    json_envelope(&b, ev, &ctx);
    assert_string_equal(checked(&b), want);
    buf_fini(&b);
}

static void assert_key(const struct cdc_event *ev, const char *want)
{
    struct buf b = BUF_INIT;
    json_key(&b, ev);
    assert_string_equal(checked(&b), want);
    buf_fini(&b);
}

/* ---- envelopes ------------------------------------------------------------ */

static const struct tcol customer_cols[] = {
    {"id", CDC_T_INT, true},    {"email", CDC_T_TEXT, false},  {"score", CDC_T_FLOAT, false},
    {"vip", CDC_T_BOOL, false}, {"photo", CDC_T_BYTES, false}, {"balance", CDC_T_NUMERIC, false},
};

#define SOURCE_TAIL(snap)                                                                          \
    "\"source\":{\"version\":\"0.1.0\",\"connector\":\"postgresql\",\"name\":\"shop-cdc\","        \
    "\"ts_ms\":1718150400123,\"ts_us\":1718150400123456,\"ts_ns\":1718150400123456000,"            \
    "\"snapshot\":\"" snap "\",\"db\":\"shop\","                                                   \
    "\"sequence\":\"[\\\"1000\\\",\\\"990\\\"]\",\"schema\":\"public\",\"table\":\"customers\","   \
    "\"txId\":771,\"lsn\":990,\"xmin\":null}"
#define TXN "\"transaction\":{\"id\":\"771:1000\",\"total_order\":1,\"data_collection_order\":1}"

static void test_envelope_insert(void **state)
{
    struct cdc_table *tab = mktab("public", "customers", customer_cols, 6);
    struct tv row[] = {T("42"), T("a@example.com"), T("1.5"), T("t"), T("\\x666f"), T("10.50")};
    struct cdc_event *ev = mkev(CDC_OP_INSERT, tab, NULL, row);
    assert_envelope(
        ev, "{\"before\":null,\"after\":{\"id\":42,\"email\":\"a@example.com\","
            "\"score\":1.5,\"vip\":true,\"photo\":\"Zm8=\",\"balance\":\"10.50\"},"
            "" SOURCE_TAIL("false") ",\"op\":\"c\",\"ts_ms\":1718150400456,\"ts_us\":"
                                    "1718150400456789,\"ts_ns\":1718150400456789000," TXN "}");
    assert_key(ev, "{\"id\":42}");

    /* Appends: existing content is kept. */
    struct buf b = BUF_INIT;
    buf_puts(&b, "[");
    json_envelope(&b, ev, &ctx);
    buf_putc(&b, ',');
    json_envelope(&b, ev, &ctx);
    buf_putc(&b, ']');
    checked(&b);
    buf_fini(&b);

    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

static void test_envelope_update_nulls_unchanged(void **state)
{
    struct cdc_table *tab = mktab("public", "customers", customer_cols, 6);
    struct tv before[] = {T("42"), T("old@example.com"), VN, T("f"), VU, T("1")};
    struct tv after[] = {T("42"), T("new@example.com"), T("NaN"), T("t"), VU, VN};
    struct cdc_event *ev = mkev(CDC_OP_UPDATE, tab, before, after);
    ev->pos.idx = 4;
    ev->total_order = 5;
    ev->table_order = 3;
    assert_envelope(
        ev, "{\"before\":{\"id\":42,\"email\":\"old@example.com\",\"score\":null,"
            "\"vip\":false,\"photo\":\"__debezium_unavailable_value\",\"balance\":\"1\"},"
            "\"after\":{\"id\":42,\"email\":\"new@example.com\",\"score\":\"NaN\","
            "\"vip\":true,\"photo\":\"__debezium_unavailable_value\",\"balance\":null},"
            "" SOURCE_TAIL("false") ",\"op\":\"u\",\"ts_ms\":1718150400456,\"ts_us\":"
                                    "1718150400456789,\"ts_ns\":1718150400456789000,"
                                    "\"transaction\":{\"id\":\"771:1000\",\"total_order\":5,"
                                    "\"data_collection_order\":3}}");
    cdc_event_unref(ev);

    /* No old row (REPLICA IDENTITY DEFAULT, key unchanged): before is null. */
    ev = mkev(CDC_OP_UPDATE, tab, NULL, after);
    assert_envelope(ev, "{\"before\":null,\"after\":{\"id\":42,\"email\":\"new@example.com\","
                        "\"score\":\"NaN\",\"vip\":true,\"photo\":\"__debezium_unavailable_value\","
                        "\"balance\":null}," SOURCE_TAIL(
                            "false") ",\"op\":\"u\","
                                     "\"ts_ms\":1718150400456,\"ts_us\":1718150400456789,\"ts_ns\":"
                                     "1718150400456789000," TXN "}");
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

static void test_envelope_delete(void **state)
{
    struct cdc_table *tab = mktab("public", "customers", customer_cols, 6);
    /* Key-only old row: the other columns are null. */
    struct tv before[] = {T("42"), VN, VN, VN, VN, VN};
    struct cdc_event *ev = mkev(CDC_OP_DELETE, tab, before, NULL);
    ev->before_key_only = true;
    assert_envelope(ev, "{\"before\":{\"id\":42,\"email\":null,\"score\":null,\"vip\":null,"
                        "\"photo\":null,\"balance\":null},\"after\":null," SOURCE_TAIL(
                            "false") ",\"op\":\"d\",\"ts_ms\":1718150400456,\"ts_us\":"
                                     "1718150400456789,\"ts_ns\":1718150400456789000," TXN "}");
    assert_key(ev, "{\"id\":42}");
    cdc_event_unref(ev);

    /* REPLICA IDENTITY NOTHING: no old row at all. */
    ev = mkev(CDC_OP_DELETE, tab, NULL, NULL);
    assert_envelope(ev, "{\"before\":null,\"after\":null," SOURCE_TAIL(
                            "false") ",\"op\":\"d\",\"ts_ms\":1718150400456,\"ts_us\":"
                                     "1718150400456789,\"ts_ns\":1718150400456789000," TXN "}");
    assert_key(ev, "null");
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

static void test_envelope_snapshot(void **state)
{
    struct cdc_table *tab = mktab("public", "customers", customer_cols, 6);
    struct tv row[] = {T("1"), T("x"), T("-Infinity"), T("f"), T("\\x"), T("0")};
    struct cdc_event *ev = mkev(CDC_OP_READ, tab, NULL, row);
    ev->snapshot = true;
    const char *after = "{\"before\":null,\"after\":{\"id\":1,\"email\":\"x\","
                        "\"score\":\"-Infinity\",\"vip\":false,\"photo\":\"\",\"balance\":\"0\"},";
    char want[2048];
    snprintf(want, sizeof want,
             "%s%s,\"op\":\"r\",\"ts_ms\":1718150400456,\"ts_us\":1718150400456789,\"ts_ns\":"
             "1718150400456789000,\"transaction\":null}",
             after, SOURCE_TAIL("true"));
    assert_envelope(ev, want);
    assert_key(ev, "{\"id\":1}");
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

static void test_envelope_truncate(void **state)
{
    struct cdc_table *tab = mktab("public", "customers", customer_cols, 6);
    struct cdc_event *ev = mkev(CDC_OP_TRUNCATE, tab, NULL, NULL);
    assert_envelope(ev, "{\"before\":null,\"after\":null," SOURCE_TAIL(
                            "false") ",\"op\":\"t\",\"ts_ms\":1718150400456,\"ts_us\":"
                                     "1718150400456789,\"ts_ns\":1718150400456789000,"
                                     "\"truncate\":{\"cascade\":false,\"restart_identity\":false,"
                                     "\"tables\":[{\"schema\":\"public\",\"table\":"
                                     "\"customers\"}]}," TXN "}");
    assert_key(ev, "null");
    cdc_event_unref(ev);

    /* One TRUNCATE of two tables, with both options: the second table's
     * event names both, in the statement's order. */
    static const char names[] = "public\0orders\0public\0customers";
    ev = cdc_event_new(0, 0, sizeof names);
    memcpy(ev->data, names, sizeof names);
    ev->data_len = sizeof names;
    ev->op = CDC_OP_TRUNCATE;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->pos = (struct cdc_pos){1000, 0, 0};
    ev->lsn = 990;
    ev->commit_ts = 1718150400123456;
    ev->emit_ts = 1718150400456789;
    ev->xid = 771;
    ev->total_order = ev->table_order = 1;
    ev->trunc_opts = CDC_TRUNC_CASCADE | CDC_TRUNC_RESTART_IDENTITY;
    ev->trunc_index = 1;
    ev->trunc_count = 2;
    const char *sch, *nm;
    assert_true(cdc_event_trunc_table(ev, 0, &sch, &nm));
    assert_string_equal(nm, "orders");
    assert_false(cdc_event_trunc_table(ev, 2, &sch, &nm));
    assert_envelope(ev, "{\"before\":null,\"after\":null," SOURCE_TAIL(
                            "false") ",\"op\":\"t\",\"ts_ms\":1718150400456,\"ts_us\":"
                                     "1718150400456789,\"ts_ns\":1718150400456789000,"
                                     "\"truncate\":{\"cascade\":true,\"restart_identity\":true,"
                                     "\"tables\":[{\"schema\":\"public\",\"table\":\"orders\"},"
                                     "{\"schema\":\"public\",\"table\":\"customers\"}]}," TXN "}");
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

#define MSG_SOURCE(txid)                                                                           \
    "\"source\":{\"version\":\"0.1.0\",\"connector\":\"postgresql\",\"name\":\"shop-cdc\","        \
    "\"ts_ms\":1718150400123,\"ts_us\":1718150400123456,\"ts_ns\":1718150400123456000,"            \
    "\"snapshot\":\"false\",\"db\":\"shop\","                                                      \
    "\"sequence\":\"[\\\"1000\\\",\\\"990\\\"]\",\"schema\":null,\"table\":null,"                  \
    "\"txId\":" txid ",\"lsn\":990,\"xmin\":null}"

static void test_envelope_message(void **state)
{
    struct cdc_event *ev = mkmsg("audit", "hello\0\xff", 7, true);
    assert_envelope(
        ev, "{\"op\":\"m\",\"ts_ms\":1718150400456,\"ts_us\":1718150400456789,\"ts_ns\":"
            "1718150400456789000," MSG_SOURCE(
                "771") ",\"message\":{\"prefix\":\"audit\",\"content\":\"aGVsbG8A/w==\"}," TXN "}");
    assert_key(ev, "null");
    cdc_event_unref(ev);

    ev = mkmsg("p\"x", "", 0, false);
    assert_envelope(ev, "{\"op\":\"m\",\"ts_ms\":1718150400456,\"ts_us\":1718150400456789,\"ts_"
                        "ns\":1718150400456789000," MSG_SOURCE(
                            "null") ",\"message\":{\"prefix\":\"p\\\"x\",\"content\":\"\"},"
                                    "\"transaction\":null}");
    cdc_event_unref(ev);

    /* A message without values still encodes. */
    ev = mkev(CDC_OP_MESSAGE, NULL, NULL, NULL);
    ev->msg_transactional = true;
    assert_envelope(ev, "{\"op\":\"m\",\"ts_ms\":1718150400456,\"ts_us\":1718150400456789,\"ts_"
                        "ns\":1718150400456789000," MSG_SOURCE(
                            "771") ",\"message\":{\"prefix\":\"\",\"content\":\"\"}," TXN "}");
    cdc_event_unref(ev);
}

static void test_envelope_control(void **state)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "keep");
    for (int k = 0; k < 2; k++) {
        struct cdc_event *ev = mkev(k ? CDC_OP_REWIND : CDC_OP_COMMIT, NULL, NULL, NULL);
        json_envelope(&b, ev, &ctx);
        assert_string_equal(b.p, "keep");
        json_key(&b, ev);
        assert_string_equal(b.p, "keepnull");
        b.len = 4;
        b.p[4] = '\0';
        cdc_event_unref(ev);
    }
    buf_fini(&b);
}

/* Odd names, an unknown op, NULL context strings, extreme numbers: still
 * valid JSON. */
static void test_envelope_odd(void **state)
{
    static const struct tcol cols[] = {{"we\"ird\n", CDC_T_TEXT, true}, {"", CDC_T_INT, false}};
    struct cdc_table *tab = mktab("s\\x", "t\xff", cols, 2);
    struct tv row[] = {T("\xf0\x9f\x98\x80"), T("x")};
    struct cdc_event *ev = mkev('x', tab, row, row);
    ev->pos.lsn = UINT64_MAX;
    ev->lsn = UINT64_MAX;
    ev->commit_ts = INT64_MIN;
    ev->emit_ts = -1;
    ev->xid = UINT32_MAX;
    ev->total_order = UINT32_MAX;
    ev->table_order = UINT32_MAX;
    struct json_ctx nulls = {0};
    struct buf b = BUF_INIT;
    json_envelope(&b, ev, &nulls);
    checked(&b);
    assert_non_null(strstr(b.p, "\"ts_ms\":-9223372036854776,"));
    assert_non_null(strstr(b.p, "\"ts_ms\":-1,"));
    /* A zero time is "0" at every precision, never "0000". */
    buf_reset(&b);
    ev->commit_ts = 0;
    json_envelope(&b, ev, &nulls);
    checked(&b);
    assert_non_null(strstr(b.p, "\"ts_ms\":0,\"ts_us\":0,\"ts_ns\":0,"));
    assert_non_null(strstr(b.p, "\"op\":\"x\""));
    assert_non_null(strstr(b.p, "\"schema\":\"s\\\\x\",\"table\":\"t" FFFD "\""));
    assert_non_null(strstr(b.p, "\"version\":\"\",\"connector\":\"\",\"name\":\"\""));
    struct cdc_pos pos;
    assert_int_equal(json_envelope_position(b.p, b.len, &pos), 0);
    assert_true(pos.lsn == UINT64_MAX);
    assert_true(pos.idx == (uint64_t)UINT32_MAX - 1);
    buf_reset(&b);
    json_key(&b, ev);
    assert_string_equal(checked(&b), "{\"we\\\"ird\\n\":\"\xf0\x9f\x98\x80\"}");
    buf_fini(&b);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

/* ---- keys ----------------------------------------------------------------- */

static void test_key_composite_and_none(void **state)
{
    static const struct tcol cols[] = {{"region", CDC_T_TEXT, true},
                                       {"qty", CDC_T_INT, false},
                                       {"id", CDC_T_INT, true},
                                       {"tag", CDC_T_UUID, true}};
    struct cdc_table *tab = mktab("public", "orders", cols, 4);
    struct tv row[] = {T("eu"), T("3"), T("7"), T("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")};
    struct cdc_event *ev = mkev(CDC_OP_INSERT, tab, NULL, row);
    assert_key(ev, "{\"region\":\"eu\",\"id\":7,\"tag\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}");
    cdc_event_unref(ev);

    /* Deletes take the key from before; a NULL key value is null. */
    struct tv old[] = {VN, VN, T("8"), T("x")};
    ev = mkev(CDC_OP_DELETE, tab, old, NULL);
    assert_key(ev, "{\"region\":null,\"id\":8,\"tag\":\"x\"}");
    cdc_event_unref(ev);
    cdc_table_unref(tab);

    static const struct tcol nokey[] = {{"a", CDC_T_INT, false}, {"b", CDC_T_TEXT, false}};
    tab = mktab("public", "log", nokey, 2);
    struct tv r2[] = {T("1"), T("b")};
    ev = mkev(CDC_OP_INSERT, tab, NULL, r2);
    assert_key(ev, "null");
    cdc_event_unref(ev);
    cdc_table_unref(tab);

    ev = mkmsg("p", "c", 1, true);
    assert_key(ev, "null");
    cdc_event_unref(ev);
}

/* ---- positions ------------------------------------------------------------ */

static int position_of(const char *s, size_t n, struct cdc_pos *pos)
{
    /* Copy to an exact-size heap block so ASan sees any over-read. */
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    int rc = json_envelope_position(copy, n, pos);
    free(copy);
    return rc;
}

static void assert_round_trip(struct cdc_event *ev, uint64_t lsn, uint32_t total)
{
    ev->pos.lsn = lsn;
    ev->pos.idx = total - 1;
    ev->total_order = total;
    struct buf b = BUF_INIT;
    json_envelope(&b, ev, &ctx);
    checked(&b);
    struct cdc_pos pos = {0, 0, 0};
    assert_int_equal(position_of(b.p, b.len, &pos), 0);
    assert_true(pos.lsn == lsn);
    assert_true(pos.idx == (uint64_t)total - 1);
    assert_int_equal(cdc_pos_cmp(pos, ev->pos), 0);

    /* With a line ending. */
    buf_puts(&b, "\r\n");
    assert_int_equal(position_of(b.p, b.len, &pos), 0);
    b.len -= 2;

    /* Every truncation is rejected and leaves pos alone. */
    for (size_t n = 0; n < b.len; n++) {
        struct cdc_pos untouched = {7, 7, 0};
        assert_int_equal(position_of(b.p, n, &untouched), CDC_EINVAL);
        assert_true(untouched.lsn == 7 && untouched.idx == 7);
    }
    buf_fini(&b);
}

static void test_position_round_trip(void **state)
{
    struct cdc_table *tab = mktab("public", "customers", customer_cols, 6);
    struct tv row[] = {
        T("42"), T("\",\"transaction\":{\"id\":\"1:2\",\"total_order\":9}}"), VN, VN, VN, VN};
    static const int ops[] = {CDC_OP_INSERT, CDC_OP_UPDATE, CDC_OP_DELETE, CDC_OP_TRUNCATE};
    for (size_t k = 0; k < NELEM(ops); k++) {
        struct cdc_event *ev = mkev(ops[k], tab, row, row);
        assert_round_trip(ev, 1000, 1);
        assert_round_trip(ev, 0, 2);
        assert_round_trip(ev, 24023128, 77);
        assert_round_trip(ev, UINT64_MAX, UINT32_MAX);
        cdc_event_unref(ev);
    }
    struct cdc_event *ev = mkmsg("p", "c", 1, true);
    assert_round_trip(ev, 123456789, 3);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

static void test_position_rejects(void **state)
{
    struct cdc_pos pos;
    /* Events without a transaction block. */
    struct cdc_table *tab = mktab("public", "customers", customer_cols, 6);
    struct tv row[] = {T("1"), VN, VN, VN, VN, VN};
    struct cdc_event *ev = mkev(CDC_OP_READ, tab, NULL, row);
    ev->snapshot = true;
    struct buf b = BUF_INIT;
    json_envelope(&b, ev, &ctx);
    assert_int_equal(position_of(b.p, b.len, &pos), CDC_EINVAL);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    ev = mkmsg("p", "c", 1, false);
    buf_reset(&b);
    json_envelope(&b, ev, &ctx);
    assert_int_equal(position_of(b.p, b.len, &pos), CDC_EINVAL);
    cdc_event_unref(ev);
    buf_fini(&b);

#define OK_HEAD "{\"before\":null,\"after\":null,\"op\":\"c\""
    static const char *bad[] = {
        "",
        "{",
        "null",
        "{}",
        "\n",
        "{\"before\":",
        "{\"op\":\"m\",",
        OK_HEAD ",\"transaction\":null}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:2\",\"total_order\":0,\"data_collection_order\":1}}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:2\",\"total_order\":4294967296,"
                "\"data_collection_order\":1}}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:18446744073709551616\",\"total_order\":1,"
                "\"data_collection_order\":1}}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:02\",\"total_order\":1,\"data_collection_order\":1}}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:2\",\"total_order\":-1,\"data_collection_order\":1}}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:2\",\"total_order\":1,\"data_collection_order\":1}}x",
        OK_HEAD ",\"transaction\":{\"id\":\"1:2\",\"total_order\":1,\"data_collection_order\":1}",
        OK_HEAD ",\"transaction\":{\"id\":\":2\",\"total_order\":1,\"data_collection_order\":1}}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:\",\"total_order\":1,\"data_collection_order\":1}}",
        OK_HEAD ",\"transaction\":{\"id\":\"1:2\",\"total_order\":1}}",
        OK_HEAD ", \"transaction\":{\"id\":\"1:2\",\"total_order\":1,\"data_collection_order\":1}}",
        ("{\"after\":null,\"transaction\":{\"id\":\"1:2\",\"total_order\":1,"
         "\"data_collection_order\":1}}"),
        ",\"transaction\":{\"id\":\"1:2\",\"total_order\":1,\"data_collection_order\":1}}",
    };
    for (size_t i = 0; i < NELEM(bad); i++) {
        if (position_of(bad[i], strlen(bad[i]), &pos) != CDC_EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    const char *good = OK_HEAD
        ",\"transaction\":{\"id\":\"1:2\",\"total_order\":3,\"data_collection_order\":1}}\n";
    assert_int_equal(position_of(good, strlen(good), &pos), 0);
    assert_true(pos.lsn == 2 && pos.idx == 2);
    /* Transaction ids have 64 bits (a MariaDB GTID sequence number). */
    const char *wide = OK_HEAD ",\"transaction\":{\"id\":\"18446744073709551615:2\","
                               "\"total_order\":1,\"data_collection_order\":1}}";
    assert_int_equal(position_of(wide, strlen(wide), &pos), 0);
    assert_true(pos.lsn == 2 && pos.idx == 0);
    assert_int_equal(json_envelope_position(NULL, 0, &pos), CDC_EINVAL);

    /* Random bytes, some with a valid-looking tail. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char junk[300];
    for (int iter = 0; iter < 20000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = x % 200;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk[i] = x & 1 ? "{}\":,0123456789transcio_dlbefrop"[(x >> 1) % 32] : (char)(x >> 9);
        }
        if (iter & 1) {
            memcpy(junk, OK_HEAD, 10);
            n = n < 10 ? 10 : n;
        }
        position_of(junk, n, &pos);
    }
}

/* ---- benchmark ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1,000,000 inserts into a typical 6-column table, one envelope plus newline
 * each, into a buffer drained every 1 MB as a file sink would. */
static void bench(void)
{
    static const struct tcol cols[] = {
        {"id", CDC_T_INT, true},       {"name", CDC_T_TEXT, false},
        {"email", CDC_T_TEXT, false},  {"balance", CDC_T_NUMERIC, false},
        {"active", CDC_T_BOOL, false}, {"created_at", CDC_T_TIMESTAMPTZ, false},
    };
    struct cdc_table *tab = mktab("public", "customers", cols, 6);
    struct tv row[] = {T("1234567"), T("Zoë Smith"), T("zoe.smith@example.com"),
                       T("1234.50"), T("t"),         T("2024-06-12 10:15:30.123456+00")};
    struct cdc_event *ev = mkev(CDC_OP_INSERT, tab, NULL, row);
    const int n = 1000000;
    struct buf b = BUF_INIT;
    uint64_t bytes = 0;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        ev->pos.lsn++;
        json_envelope(&b, ev, &ctx);
        buf_putc(&b, '\n');
        if (b.len >= (1u << 20)) {
            bytes += b.len;
            buf_reset(&b);
        }
    }
    bytes += b.len;
    double dt = now_s() - t0;
    printf("json bench: %d events, %.1f bytes/event, %.3f s: %.0f events/s, %.1f MB/s\n", n,
           (double)bytes / n, dt, n / dt, (double)bytes / dt / 1e6);
    buf_fini(&b);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
}

int main(void)
{
    const char *b = getenv("CDC_JSON_BENCH");
    if (b && strcmp(b, "1") == 0)
        bench();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_insert),
        cmocka_unit_test(test_envelope_update_nulls_unchanged),
        cmocka_unit_test(test_envelope_delete),
        cmocka_unit_test(test_envelope_snapshot),
        cmocka_unit_test(test_envelope_truncate),
        cmocka_unit_test(test_envelope_message),
        cmocka_unit_test(test_envelope_control),
        cmocka_unit_test(test_envelope_odd),
        cmocka_unit_test(test_key_composite_and_none),
        cmocka_unit_test(test_position_round_trip),
        cmocka_unit_test(test_position_rejects),
        /* Last: checks every document the tests above produced. */
        cmocka_unit_test(test_python_cross_check),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    buf_fini(&checks);
    return rc;
}
