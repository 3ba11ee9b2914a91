/* Unit tests for Kafka records (transport/kafka/kenc.c, kschema.c) and the
 * partitioning they rely on.
 *
 * Partitioning: a murmur2 written here from the description of Kafka's
 * Java client (Utils.murmur2) is checked against values derived with it and
 * confirmed against a real partition assignment (kcat producing with
 * partitioner=murmur2_random to an 8-partition topic put "21" in 4,
 * "foobar" in 6, "abc" in 3, "a-little-bit-long-string" in 0, {"id":1} in
 * 4, {"id":2} in 0), then librdkafka's murmur2 partitioner, which the
 * producer uses, is checked against it for many keys and partition counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "core/event.h"
#include "core/json.h"
#include "core/evcodec.h"
#include "transport/kafka/kenc.h"
#include "transport/kafka/kschema.h"
#include "util/buf.h"
#include "util/err.h"
#include "source/pg/pgjson.h"

/* ---- murmur2 as Kafka's Java client computes it ---- */

static int32_t java_murmur2(const void *key, size_t n)
{
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)n;
    size_t i = 0;
    for (; n - i >= 4; i += 4) {
        uint32_t k = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16 |
                     (uint32_t)d[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (n - i) {
    case 3:
        h ^= (uint32_t)d[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)d[i + 1] << 8;
        /* fall through */
    case 1:
        h ^= d[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

static int32_t java_partition(const char *key, int32_t partitions)
{
    return (int32_t)((uint32_t)java_murmur2(key, strlen(key)) & 0x7fffffffu) % partitions;
}

static void test_murmur2_java_values(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int32_t hash;
        int32_t part8; /* the partition of 8 kcat reported */
    } cases[] = {
        {"21", -973932308, 4},
        {"foobar", -790332482, 6},
        {"abc", 479470107, 3},
        {"a-little-bit-long-string", -985981536, 0},
        {"a-little-bit-longer-string", -1486304829, -1},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, -1},
        {"{\"id\":1}", -56768732, 4},
        {"{\"id\":2}", -1705675864, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(java_murmur2(cases[i].key, strlen(cases[i].key)), cases[i].hash);
        if (cases[i].part8 >= 0)
            assert_int_equal(java_partition(cases[i].key, 8), cases[i].part8);
    }
}

/* librdkafka's partitioner (what partitioner=murmur2_random runs for keyed
 * messages) puts every key where Java would. */
static void test_murmur2_librdkafka_agrees(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    char key[64];
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = (size_t)(x % sizeof key);
        for (size_t j = 0; j < len; j++)
            key[j] = (char)(x >> (j % 8 * 8)) ^ (char)j;
        int32_t parts = (int32_t)(x % 64) + 1;
        int32_t want = (int32_t)((uint32_t)java_murmur2(key, len) & 0x7fffffffu) % parts;
        int32_t got = rd_kafka_msg_partitioner_murmur2(NULL, key, len, parts, NULL, NULL);
        if (got != want)
            fail_msg("key of %zu bytes, %d partitions: librdkafka %d, Java %d", len, parts, got,
                     want);
    }
}

/* ---- building events ---- */

struct tcol {
    const char *name;
    const char *type_name;
    enum cdc_type type;
    bool key;
};

static const struct json_ctx jctx = {.pipeline_id = "shop-cdc",
                                     .connector = "postgresql",
                                     .db = "shop",
                                     .version = "0.1.0",
                                     .source = pgjson_source};

static struct cdc_table *mktab(const char *name, const struct tcol *cols, uint16_t ncols,
                               bool unique)
{
    struct cdc_table *tab = cdc_table_new(16384, "public", name, "cdc", ncols);
    for (uint16_t i = 0; i < ncols; i++) {
        tab->cols[i].name = strdup(cols[i].name);
        tab->cols[i].type_name = strdup(cols[i].type_name);
        tab->cols[i].type = cols[i].type;
        tab->cols[i].key = cols[i].key;
    }
    cdc_table_finish(tab);
    tab->key_unique = unique && tab->nkeys > 0;
    return tab;
}

/* An event with rows given as NUL-separated texts ("1\0a"), NULL values as
 * "\x01" (so "1\0\x01" is (1, NULL)). */
static struct cdc_event *mkev(int op, struct cdc_table *tab, const char *before, size_t blen,
                              const char *after, size_t alen)
{
    uint16_t n = tab->ncols;
    struct cdc_event *ev = cdc_event_new(before ? n : 0, after ? n : 0, blen + alen + 2 * n);
    uint32_t off = 0;
    const char *rows[2] = {before, after};
    size_t lens[2] = {blen, alen};
    struct cdc_val *dst[2] = {ev->before, ev->after};
    for (int r = 0; r < 2; r++) {
        if (!rows[r])
            continue;
        const char *p = rows[r], *end = rows[r] + lens[r];
        for (uint16_t i = 0; i < n; i++) {
            size_t len = strnlen(p, (size_t)(end - p));
            if (len == 1 && *p == '\x01') {
                dst[r][i] = (struct cdc_val){off, 0, CDC_V_NULL};
            } else {
                memcpy(ev->data + off, p, len);
                ev->data[off + len] = '\0';
                dst[r][i] = (struct cdc_val){off, (uint32_t)len, CDC_V_TEXT};
                off += (uint32_t)len + 1;
            }
            p += len + 1;
        }
    }
    ev->data_len = off;
    ev->op = (uint8_t)op;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->pos = (struct cdc_pos){1000, 2, 0};
    ev->lsn = 990;
    ev->commit_ts = 1718150400123456;
    ev->emit_ts = 1718150400456789;
    ev->xid = 771;
    ev->total_order = 3;
    ev->table_order = 1;
    ev->seq = 7;
    return ev;
}

#define ROW(lit) (lit), sizeof(lit)

static const struct tcol item_cols[] = {
    {"id", "integer", CDC_T_INT, true},
    {"name", "text", CDC_T_TEXT, false},
};

static char *str_of(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void assert_bytes(const void *p, size_t n, const char *want)
{
    char *s = str_of(p, n);
    if (strcmp(s, want) != 0)
        fail_msg("got  %s\nwant %s", s, want);
    free(s);
}

static void assert_envelope(const struct kproducer_msg *m, const struct cdc_event *ev)
{
    struct buf b = BUF_INIT;
    json_envelope(&b, ev, &jctx);
    assert_non_null(m->value);
    assert_bytes(m->value, m->valuelen, b.p);
    buf_fini(&b);
}

/* ---- records ---- */

static void test_records_of_each_op(void **state)
{
    (void)state;
    struct cdc_table *tab = mktab("items", item_cols, 2, true);
    struct kenc_opts o = {.topic_prefix = "shop", .json = &jctx, .tombstones_on_delete = true};
    struct kenc *e = kenc_new(&o);
    struct kproducer_msg m[KENC_MAX_RECORDS];
    char err[256];

    struct cdc_event *ins = mkev(CDC_OP_INSERT, tab, NULL, 0, ROW("42\0bolt"));
    assert_int_equal(kenc_event(e, ins, m, err, sizeof err), 1);
    assert_string_equal(m[0].topic, "shop.public.items");
    assert_bytes(m[0].key, m[0].keylen, "{\"id\":42}");
    assert_envelope(&m[0], ins);
    assert_int_equal(m[0].nheaders, 1);
    assert_string_equal(m[0].headers[0].name, "cdc.position");
    assert_bytes(m[0].headers[0].value, m[0].headers[0].len, "1000:2");

    /* a delete: the change, then a tombstone with the same key */
    struct cdc_event *del = mkev(CDC_OP_DELETE, tab, ROW("42\0\x01"), NULL, 0);
    assert_int_equal(kenc_event(e, del, m, err, sizeof err), 2);
    assert_bytes(m[0].key, m[0].keylen, "{\"id\":42}");
    assert_envelope(&m[0], del);
    assert_bytes(m[1].key, m[1].keylen, "{\"id\":42}");
    assert_null(m[1].value);
    assert_int_equal(m[1].valuelen, 0);
    assert_string_equal(m[1].topic, "shop.public.items");

    /* an update that moved the key: a tombstone of the old key first */
    struct cdc_event *mv = mkev(CDC_OP_UPDATE, tab, ROW("42\0\x01"), ROW("43\0bolt"));
    assert_int_equal(kenc_event(e, mv, m, err, sizeof err), 2);
    assert_bytes(m[0].key, m[0].keylen, "{\"id\":42}");
    assert_null(m[0].value);
    assert_bytes(m[1].key, m[1].keylen, "{\"id\":43}");
    assert_envelope(&m[1], mv);

    /* an update in place (full old row, same key): one record */
    struct cdc_event *up = mkev(CDC_OP_UPDATE, tab, ROW("43\0bolt"), ROW("43\0nut"));
    assert_int_equal(kenc_event(e, up, m, err, sizeof err), 1);
    assert_bytes(m[0].key, m[0].keylen, "{\"id\":43}");

    /* a truncate: null key, no tombstone */
    struct cdc_event *tr = mkev(CDC_OP_TRUNCATE, tab, NULL, 0, NULL, 0);
    assert_int_equal(kenc_event(e, tr, m, err, sizeof err), 1);
    assert_null(m[0].key);
    assert_envelope(&m[0], tr);

    /* a snapshot row: no position header */
    struct cdc_event *rd = mkev(CDC_OP_READ, tab, NULL, 0, ROW("5\0x"));
    rd->snapshot = true;
    assert_int_equal(kenc_event(e, rd, m, err, sizeof err), 1);
    assert_int_equal(m[0].nheaders, 0);
    assert_bytes(m[0].key, m[0].keylen, "{\"id\":5}");

    /* a commit marker: nothing */
    struct cdc_event *cm = cdc_event_new(0, 0, 0);
    cm->op = CDC_OP_COMMIT;
    assert_int_equal(kenc_event(e, cm, m, err, sizeof err), 0);

    struct cdc_event *evs[] = {ins, del, mv, up, tr, rd, cm};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++)
        cdc_event_unref(evs[i]);
    kenc_free(e);
    cdc_table_unref(tab);
}

/* Without tombstones_on_delete, deletes and key moves are one record; a
 * table whose key does not identify a row (REPLICA IDENTITY FULL without a
 * primary key) gets null keys, and never a tombstone. */
static void test_no_tombstones_and_keyless(void **state)
{
    (void)state;
    struct cdc_table *tab = mktab("items", item_cols, 2, true);
    static const struct tcol full_cols[] = {{"a", "integer", CDC_T_INT, true},
                                            {"b", "text", CDC_T_TEXT, true}};
    struct cdc_table *full = mktab("loose", full_cols, 2, false);
    struct kenc_opts o = {.json = &jctx};
    struct kenc *e = kenc_new(&o);
    struct kproducer_msg m[KENC_MAX_RECORDS];
    char err[256];

    struct cdc_event *del = mkev(CDC_OP_DELETE, tab, ROW("42\0\x01"), NULL, 0);
    assert_int_equal(kenc_event(e, del, m, err, sizeof err), 1);
    assert_string_equal(m[0].topic, "cdc.public.items");
    struct cdc_event *mv = mkev(CDC_OP_UPDATE, tab, ROW("42\0\x01"), ROW("43\0bolt"));
    assert_int_equal(kenc_event(e, mv, m, err, sizeof err), 1);
    assert_bytes(m[0].key, m[0].keylen, "{\"id\":43}");

    o.tombstones_on_delete = true;
    struct kenc *e2 = kenc_new(&o);
    struct cdc_event *fdel = mkev(CDC_OP_DELETE, full, ROW("1\0x"), NULL, 0);
    assert_int_equal(kenc_event(e2, fdel, m, err, sizeof err), 1);
    assert_null(m[0].key);
    assert_envelope(&m[0], fdel);

    cdc_event_unref(del);
    cdc_event_unref(mv);
    cdc_event_unref(fdel);
    kenc_free(e);
    kenc_free(e2);
    cdc_table_unref(tab);
    cdc_table_unref(full);
}

static void test_topic_template(void **state)
{
    (void)state;
    char t[64];
    assert_int_equal(
        kenc_topic("{topic_prefix}.{schema}.{table}", "cdc", "db", "public", "items", t, sizeof t),
        16);
    assert_string_equal(t, "cdc.public.items");
    kenc_topic("{db}/{schema}.{table}-x", "p", "shop", "My Schema", "Order Items\xc3\xa9", t,
               sizeof t);
    assert_string_equal(t, "shop_My_Schema.Order_Items__-x");
    /* an unknown brace is kept (as "_"): the config refuses such templates */
    kenc_topic("a{b}", "p", NULL, NULL, NULL, t, sizeof t);
    assert_string_equal(t, "a_b_");
    /* truncated output, full length reported */
    assert_int_equal(kenc_topic("{table}", "p", NULL, NULL, "abcdefgh", t, 4), 8);
    assert_string_equal(t, "abc");

    /* a name longer than Kafka allows makes the event fail */
    char longname[64]; /* PostgreSQL's longest name */
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    static const struct tcol cols[] = {{"id", "integer", CDC_T_INT, true}};
    struct cdc_table *tab = cdc_table_new(1, "public", longname, "cdc", 1);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("integer");
    tab->cols[0].type = cols[0].type;
    tab->cols[0].key = true;
    cdc_table_finish(tab);
    tab->key_unique = true;
    struct kenc_opts o = {.topic_template = "{table}.{table}.{table}.{table}", .json = &jctx};
    struct kenc *e = kenc_new(&o);
    struct kproducer_msg m[KENC_MAX_RECORDS];
    char err[256];
    struct cdc_event *ins = mkev(CDC_OP_INSERT, tab, NULL, 0, ROW("1"));
    assert_int_equal(kenc_event(e, ins, m, err, sizeof err), CDC_EINVAL);
    if (!strstr(err, "Kafka allows 249"))
        fail_msg("%s", err);
    cdc_event_unref(ins);
    kenc_free(e);
    cdc_table_unref(tab);
}

/* ---- Connect schemas ---- */

static void test_column_types(void **state)
{
    (void)state;
    static const struct {
        struct cdc_column col;
        const char *type, *name;
    } cases[] = {
        {{.type = CDC_T_INT, .type_name = "smallint"}, "int16", NULL},
        {{.type = CDC_T_INT, .type_name = "integer"}, "int32", NULL},
        {{.type = CDC_T_INT, .type_name = "bigint"}, "int64", NULL},
        {{.type = CDC_T_INT, .type_name = "oid"}, "int64", NULL},
        {{.type = CDC_T_FLOAT, .type_name = "real"}, "float32", NULL},
        {{.type = CDC_T_FLOAT, .type_name = "double precision"}, "float64", NULL},
        {{.type = CDC_T_BOOL, .type_name = "boolean"}, "boolean", NULL},
        {{.type = CDC_T_BYTES, .type_name = "bytea"}, "bytes", NULL},
        {{.type = CDC_T_UUID, .type_name = "uuid"}, "string", "io.debezium.data.Uuid"},
        {{.type = CDC_T_JSON, .type_name = "jsonb"}, "string", "io.debezium.data.Json"},
        {{.type = CDC_T_NUMERIC, .type_name = "numeric(10,2)"}, "string", NULL},
        {{.type = CDC_T_TIMESTAMPTZ, .type_name = "timestamp with time zone"}, "string", NULL},
        {{.type = CDC_T_DATE, .type_name = "date"}, "string", NULL},
        {{.type = CDC_T_INTERVAL, .type_name = "interval"}, "string", NULL},
        {{.type = CDC_T_ARRAY, .type_name = "integer[]"}, "string", NULL},
        {{.type = CDC_T_TEXT, .type_name = NULL}, "string", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *type, *name;
        kschema_column_type(&cases[i].col, &type, &name);
        assert_string_equal(type, cases[i].type);
        if (cases[i].name)
            assert_string_equal(name, cases[i].name);
        else
            assert_null(name);
    }
}

/* The whole schema of a small table, as Kafka Connect's JsonConverter
 * would read it, and the records wrapped with it. */
static void test_connect_schemas(void **state)
{
    (void)state;
    static const struct tcol cols[] = {
        {"id", "bigint", CDC_T_INT, true},
        {"doc", "jsonb", CDC_T_JSON, false},
        {"price", "numeric(10,2)", CDC_T_NUMERIC, false},
    };
    struct cdc_table *tab = mktab("items", cols, 3, true);
    struct buf key = BUF_INIT, env = BUF_INIT;
    kschema_key(&key, tab);
    assert_string_equal(key.p, "{\"type\":\"struct\",\"fields\":[{\"type\":\"int64\",\"optional\":"
                               "false,\"field\":\"id\"}],\"optional\":false,\"name\":"
                               "\"cdc.public.items.Key\"}");
    kschema_envelope(&env, tab, "postgresql");
    static const char row[] =
        "[{\"type\":\"int64\",\"optional\":false,\"field\":\"id\"},"
        "{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Json\",\"version\":1,"
        "\"field\":\"doc\"},"
        "{\"type\":\"string\",\"optional\":true,\"field\":\"price\"}]";
    static const char source[] =
        "{\"type\":\"struct\",\"fields\":["
        "{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},"
        "{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"
        "{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},"
        "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},"
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
        "{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\"version\":1,"
        "\"parameters\":{\"allowed\":\"true,last,false,incremental\"},\"default\":\"false\","
        "\"field\":\"snapshot\"},"
        "{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},"
        "{\"type\":\"string\",\"optional\":true,\"field\":\"sequence\"},"
        "{\"type\":\"string\",\"optional\":false,\"field\":\"schema\"},"
        "{\"type\":\"string\",\"optional\":false,\"field\":\"table\"},"
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"txId\"},"
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"lsn\"},"
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"xmin\"},"
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"schema_version\"}],"
        "\"optional\":false,\"name\":\"io.debezium.connector.postgresql.Source\","
        "\"field\":\"source\"}";
    struct buf want = BUF_INIT;
    buf_printf(&want,
               "{\"type\":\"struct\",\"fields\":["
               "{\"type\":\"struct\",\"fields\":%s,\"optional\":true,\"name\":"
               "\"cdc.public.items.Value\",\"field\":\"before\"},"
               "{\"type\":\"struct\",\"fields\":%s,\"optional\":true,\"name\":"
               "\"cdc.public.items.Value\",\"field\":\"after\"},"
               "%s,"
               "{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},"
               "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},"
               "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
               "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
               "{\"type\":\"struct\",\"fields\":["
               "{\"type\":\"boolean\",\"optional\":false,\"field\":\"cascade\"},"
               "{\"type\":\"boolean\",\"optional\":false,\"field\":\"restart_identity\"},"
               "{\"type\":\"array\",\"items\":{\"type\":\"struct\",\"fields\":["
               "{\"type\":\"string\",\"optional\":false,\"field\":\"schema\"},"
               "{\"type\":\"string\",\"optional\":false,\"field\":\"table\"}],"
               "\"optional\":false},\"optional\":false,\"field\":\"tables\"}],"
               "\"optional\":true,\"field\":\"truncate\"},"
               "{\"type\":\"struct\",\"fields\":["
               "{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"
               "{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},"
               "{\"type\":\"int64\",\"optional\":false,\"field\":\"data_collection_order\"}],"
               "\"optional\":true,\"name\":\"event.block\",\"version\":1,"
               "\"field\":\"transaction\"}],"
               "\"optional\":false,\"name\":\"cdc.public.items.Envelope\",\"version\":2}",
               row, row, source);
    assert_string_equal(env.p, want.p);
    assert_true(json_valid(env.p, env.len));

    /* the records: {"schema":S,"payload":P} with P exactly the plain ones */
    struct kenc_opts o = {.json = &jctx, .schemas_enable = true, .tombstones_on_delete = true};
    struct kenc *e = kenc_new(&o);
    struct kproducer_msg m[KENC_MAX_RECORDS];
    char err[256];
    struct cdc_event *del = mkev(CDC_OP_DELETE, tab, ROW("9\0\x01\0\x01"), NULL, 0);
    assert_int_equal(kenc_event(e, del, m, err, sizeof err), 2);
    struct buf k = BUF_INIT, v = BUF_INIT, payload = BUF_INIT;
    buf_printf(&k, "{\"schema\":%s,\"payload\":{\"id\":9}}", key.p);
    assert_bytes(m[0].key, m[0].keylen, k.p);
    json_envelope(&payload, del, &jctx);
    buf_printf(&v, "{\"schema\":%s,\"payload\":%s}", env.p, payload.p);
    assert_bytes(m[0].value, m[0].valuelen, v.p);
    assert_true(json_valid(m[0].value, m[0].valuelen));
    /* the tombstone: the wrapped key, a null value (not a wrapped null) */
    assert_bytes(m[1].key, m[1].keylen, k.p);
    assert_null(m[1].value);

    buf_fini(&k);
    buf_fini(&v);
    buf_fini(&payload);
    buf_fini(&want);
    buf_fini(&key);
    buf_fini(&env);
    cdc_event_unref(del);
    kenc_free(e);
    cdc_table_unref(tab);
}

/* Messages go to {topic_prefix}.message with a null key; wrapped, their
 * schema describes the message block. */
static void test_message_records(void **state)
{
    (void)state;
    struct kenc_opts o = {.topic_prefix = "shop", .json = &jctx, .schemas_enable = true};
    struct kenc *e = kenc_new(&o);
    struct cdc_event *ev = cdc_event_new(0, 2, 16);
    ev->op = CDC_OP_MESSAGE;
    memcpy(ev->data, "audit\0hello", 12);
    ev->after[0] = (struct cdc_val){0, 5, CDC_V_TEXT};
    ev->after[1] = (struct cdc_val){6, 5, CDC_V_TEXT};
    ev->data_len = 12;
    ev->msg_transactional = true;
    ev->pos = (struct cdc_pos){500, 0, 0};
    struct kproducer_msg m[KENC_MAX_RECORDS];
    char err[256];
    assert_int_equal(kenc_event(e, ev, m, err, sizeof err), 1);
    assert_string_equal(m[0].topic, "shop.message");
    assert_null(m[0].key);
    assert_true(json_valid(m[0].value, m[0].valuelen));
    char *s = str_of(m[0].value, m[0].valuelen);
    assert_non_null(strstr(s, "\"name\":\"io.debezium.connector.postgresql.MessageValue\"}"));
    assert_non_null(strstr(s, "{\"type\":\"bytes\",\"optional\":true,\"field\":\"content\"}"));
    assert_non_null(strstr(s, "\"payload\":{\"op\":\"m\""));
    assert_bytes(m[0].headers[0].value, m[0].headers[0].len, "500:0");
    free(s);
    cdc_event_unref(ev);
    kenc_free(e);
}

/* The capture role (event_header): every value carries the event itself,
 * which decodes back to what was encoded; a key-moving update becomes the
 * old key's delete (its own cdc.event), the old key's tombstone, then the
 * update under the new key; without tombstones the tombstone is left out
 * but the delete is not. */
static const char *header_of(const struct kproducer_msg *m, const char *name, size_t *len)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (strcmp(m->headers[i].name, name) == 0) {
            *len = m->headers[i].len;
            return m->headers[i].value;
        }
    return NULL;
}

static struct cdc_event *decode_header(const struct kproducer_msg *m)
{
    size_t len = 0;
    const char *p = header_of(m, KENC_EVENT_HEADER, &len);
    assert_non_null(p);
    struct cdc_event *ev = NULL;
    char err[256];
    assert_int_equal(evcodec_decode((const uint8_t *)p, len, NULL, &ev, err, sizeof err), 0);
    return ev;
}

static void test_capture_records(void **state)
{
    (void)state;
    struct cdc_table *tab = mktab("items", item_cols, 2, true);
    for (int tombs = 1; tombs >= 0; tombs--) {
        struct kenc_opts o = {.topic_prefix = "shop",
                              .json = &jctx,
                              .tombstones_on_delete = tombs,
                              .event_header = true};
        struct kenc *e = kenc_new(&o);
        struct kproducer_msg m[KENC_MAX_RECORDS];
        char err[256];

        struct cdc_event *ins = mkev(CDC_OP_INSERT, tab, NULL, 0, ROW("42\0bolt"));
        assert_int_equal(kenc_event(e, ins, m, err, sizeof err), 1);
        assert_int_equal(m[0].nheaders, 2);
        struct cdc_event *back = decode_header(&m[0]);
        assert_int_equal(back->op, CDC_OP_INSERT);
        assert_string_equal(back->tab->cols[0].type_name, "integer");
        assert_string_equal(back->tab->name, "items");
        assert_true(back->tab->cols[0].key);
        assert_int_equal(back->pos.lsn, 1000);
        assert_int_equal(back->pos.idx, 2);
        assert_string_equal(cdc_val_ptr(back, &back->after[1]), "bolt");
        cdc_event_unref(back);

        struct cdc_event *mv = mkev(CDC_OP_UPDATE, tab, ROW("42\0\x01"), ROW("43\0bolt"));
        int n = kenc_event(e, mv, m, err, sizeof err);
        assert_int_equal(n, tombs ? 3 : 2);
        /* the old key's delete */
        assert_bytes(m[0].key, m[0].keylen, "{\"id\":42}");
        assert_non_null(m[0].value);
        char *dv = str_of(m[0].value, m[0].valuelen);
        assert_non_null(strstr(dv, "\"op\":\"d\""));
        free(dv);
        back = decode_header(&m[0]);
        assert_int_equal(back->op, CDC_OP_DELETE);
        assert_null(back->after);
        assert_string_equal(cdc_val_ptr(back, &back->before[0]), "42");
        cdc_event_unref(back);
        if (tombs) {
            assert_bytes(m[1].key, m[1].keylen, "{\"id\":42}");
            assert_null(m[1].value);
            size_t len;
            assert_null(header_of(&m[1], KENC_EVENT_HEADER, &len));
        }
        /* the update under the new key */
        struct kproducer_msg *u = &m[n - 1];
        assert_bytes(u->key, u->keylen, "{\"id\":43}");
        assert_envelope(u, mv);
        back = decode_header(u);
        assert_int_equal(back->op, CDC_OP_UPDATE);
        assert_true(cdc_event_key_changed(back));
        cdc_event_unref(back);

        cdc_event_unref(ins);
        cdc_event_unref(mv);
        kenc_free(e);
    }
    cdc_table_unref(tab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_java_values),
        cmocka_unit_test(test_murmur2_librdkafka_agrees),
        cmocka_unit_test(test_records_of_each_op),
        cmocka_unit_test(test_no_tombstones_and_keyless),
        cmocka_unit_test(test_topic_template),
        cmocka_unit_test(test_column_types),
        cmocka_unit_test(test_connect_schemas),
        cmocka_unit_test(test_message_records),
        cmocka_unit_test(test_capture_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
