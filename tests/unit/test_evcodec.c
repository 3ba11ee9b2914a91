/* Event codec: round trips (checked through the JSON envelope, which shows
 * every field a sink can see), the table cache, and rejection of garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/evcodec.h"
#include "core/json.h"
#include "util/err.h"
#include "source/pg/pgjson.h"

static const struct json_ctx ctx = {.pipeline_id = "p",
                                    .connector = "postgresql",
                                    .db = "db",
                                    .version = "0",
                                    .source = pgjson_source};

static struct cdc_table *mk_table(void)
{
    struct cdc_table *tab = cdc_table_new(42, "public", "t", "cdc", 3);
    const char *names[] = {"id", "blob", "note"};
    const char *types[] = {"integer", "bytea", "text"};
    enum cdc_type classes[] = {CDC_T_INT, CDC_T_BYTES, CDC_T_TEXT};
    for (int i = 0; i < 3; i++) {
        tab->cols[i].name = strdup(names[i]);
        tab->cols[i].type_name = strdup(types[i]);
        tab->cols[i].type = classes[i];
        tab->cols[i].type_oid = (uint32_t)(23 + i);
        tab->cols[i].typmod = -1;
        tab->cols[i].key = i == 0;
    }
    cdc_table_finish(tab);
    tab->key_unique = true;
    tab->version = 7;
    return tab;
}

static void set(struct cdc_event *ev, struct cdc_val *v, const char *s, size_t n)
{
    v->kind = CDC_V_TEXT;
    v->off = ev->data_len;
    v->len = (uint32_t)n;
    memcpy(ev->data + ev->data_len, s, n);
    ev->data[ev->data_len + n] = '\0';
    ev->data_len += (uint32_t)n + 1;
}

static struct cdc_event *mk_update(struct cdc_table *tab)
{
    struct cdc_event *ev = cdc_event_new(3, 3, 256);
    ev->op = CDC_OP_UPDATE;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->pos = (struct cdc_pos){0x1234567890ULL, 3, 0};
    ev->lsn = 0x1234567000ULL;
    ev->xid = 771;
    ev->commit_ts = 1718150400123000;
    ev->emit_ts = 1718150400456000;
    ev->total_order = 4;
    ev->table_order = 2;
    ev->part = 5;
    ev->before_key_only = true;
    set(ev, &ev->before[0], "1", 1);
    set(ev, &ev->after[0], "2", 1);
    set(ev, &ev->after[1], "\\x00ff", 6);
    ev->after[2].kind = CDC_V_UNCHANGED;
    set(ev, &ev->before[2], "caf\xc3\xa9\0nul", 8); /* embedded NUL survives */
    return ev;
}

static void assert_same(const struct cdc_event *a, const struct cdc_event *b)
{
    struct buf ja = BUF_INIT, jb = BUF_INIT;
    json_envelope(&ja, a, &ctx);
    json_envelope(&jb, b, &ctx);
    assert_string_equal(ja.p, jb.p);
    buf_fini(&ja);
    buf_fini(&jb);
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->part, b->part);
    assert_int_equal(a->pos.lsn, b->pos.lsn);
    assert_int_equal(a->pos.idx, b->pos.idx);
    assert_int_equal(a->before_key_only, b->before_key_only);
    assert_int_equal(a->trunc_opts, b->trunc_opts);
    assert_int_equal(a->trunc_index, b->trunc_index);
    assert_int_equal(a->trunc_count, b->trunc_count);
    assert_int_equal(a->data_len, b->data_len);
    assert_int_equal(a->snapshot, b->snapshot);
    assert_int_equal(a->snapshot_id, b->snapshot_id);
    assert_int_equal(a->snapshot_chunk, b->snapshot_chunk);
    assert_int_equal(a->snapshot_row, b->snapshot_row);
    assert_int_equal(a->pos.stream, b->pos.stream);
    if (a->tab) {
        assert_int_equal(a->tab->id, b->tab->id);
        assert_int_equal(a->tab->version, b->tab->version);
        assert_int_equal(a->tab->key_unique, b->tab->key_unique);
        assert_int_equal(a->tab->key_deferrable, b->tab->key_deferrable);
        assert_string_equal(a->tab->topic, b->tab->topic);
        for (uint16_t i = 0; i < a->tab->ncols; i++) {
            assert_string_equal(a->tab->cols[i].type_name, b->tab->cols[i].type_name);
            assert_int_equal(a->tab->cols[i].key, b->tab->cols[i].key);
        }
    }
    uint16_t n = cdc_event_nvals(a);
    for (int r = 0; r < 2; r++) {
        const struct cdc_val *ra = r ? a->after : a->before, *rb = r ? b->after : b->before;
        assert_true((ra == NULL) == (rb == NULL));
        for (uint16_t i = 0; ra && i < n; i++) {
            assert_int_equal(ra[i].kind, rb[i].kind);
            if (ra[i].kind == CDC_V_TEXT) {
                assert_int_equal(ra[i].len, rb[i].len);
                assert_memory_equal(cdc_val_ptr(a, &ra[i]), cdc_val_ptr(b, &rb[i]), ra[i].len);
                assert_int_equal(cdc_val_ptr(b, &rb[i])[rb[i].len], '\0');
            }
        }
    }
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_update(tab);
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    struct cdc_event *back;
    char err[128];
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_same(ev, back);
    cdc_event_unref(back);
    /* CDC_WRITE_SEED=file writes this encoding as a fuzzing seed. */
    const char *seed = getenv("CDC_WRITE_SEED");
    if (seed) {
        FILE *f = fopen(seed, "wb");
        if (f) {
            fwrite(b.p, 1, b.len, f);
            fclose(f);
        }
    }

    /* A snapshot row keeps the id of the snapshot that read it. */
    struct cdc_event *row = mk_update(tab);
    row->op = CDC_OP_READ;
    row->snapshot = true;
    row->snapshot_id = 0x16B3748ULL;
    row->snapshot_chunk = 0x100000005ULL; /* and where it was read */
    row->snapshot_row = 0xfffffff0u;
    row->pos = (struct cdc_pos){0x16B3748ULL, 0, 0};
    buf_reset(&b);
    evcodec_encode(&b, row);
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_same(row, back);
    cdc_event_unref(back);
    cdc_event_unref(row);

    /* Messages carry no table. */
    struct cdc_event *msg = cdc_event_new(0, 2, 32);
    msg->op = CDC_OP_MESSAGE;
    msg->msg_transactional = true;
    set(msg, &msg->after[0], "app", 3);
    set(msg, &msg->after[1], "\x00\x01", 2);
    buf_reset(&b);
    evcodec_encode(&b, msg);
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_same(msg, back);
    cdc_event_unref(back);
    cdc_event_unref(msg);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

/* A truncate keeps its options and its group's table names; a deferrable
 * key stays deferrable. */
static void test_roundtrip_truncate(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    tab->key_deferrable = true;
    static const char names[] = "public\0a\0public\0t";
    struct cdc_event *ev = cdc_event_new(0, 0, sizeof names);
    memcpy(ev->data, names, sizeof names);
    ev->data_len = sizeof names;
    ev->op = CDC_OP_TRUNCATE;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->pos = (struct cdc_pos){0x99, 5, 0};
    ev->trunc_opts = CDC_TRUNC_RESTART_IDENTITY;
    ev->trunc_index = 1;
    ev->trunc_count = 2;
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    struct cdc_event *back;
    char err[128];
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_same(ev, back);
    const char *schema, *name;
    assert_true(cdc_event_trunc_table(back, 0, &schema, &name));
    assert_string_equal(name, "a");
    cdc_event_unref(back);
    /* An index outside its group is malformed. */
    ev->trunc_index = 2;
    buf_reset(&b);
    evcodec_encode(&b, ev);
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, NULL, 0), CDC_EINVAL);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

static void test_cache_shares_tables(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_update(tab);
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    struct evcodec_cache cache;
    memset(&cache, 0, sizeof cache);
    struct cdc_event *x, *y;
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, &cache, &x, NULL, 0), 0);
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, &cache, &y, NULL, 0), 0);
    assert_ptr_equal(x->tab, y->tab);
    cdc_event_unref(x);
    cdc_event_unref(y);
    evcodec_cache_fini(&cache);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

/* Transaction and table ids take 64 bits (a MariaDB GTID sequence number,
 * a 48-bit table id) and come back whole. */
static void test_wide_ids(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    tab->id = 0xABCDEF012345ULL;
    struct cdc_event *ev = mk_update(tab);
    ev->xid = 0x123456789ABCULL;
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    struct cdc_event *back;
    char err[128];
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_same(ev, back);
    assert_int_equal(back->xid, 0x123456789ABCULL);
    assert_int_equal(back->tab->id, 0xABCDEF012345ULL);
    assert_int_equal(back->pos.stream, 0);
    /* an event of another stream keeps it */
    cdc_event_unref(back);
    ev->pos.stream = 77;
    buf_reset(&b);
    evcodec_encode(&b, ev);
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_int_equal(back->pos.stream, 77);
    assert_int_equal(cdc_pos_cmp(back->pos, ev->pos), 0);
    /* and the envelope's transaction id shows all of it */
    struct buf j = BUF_INIT;
    json_envelope(&j, back, &ctx);
    assert_non_null(strstr(j.p, "\"txId\":20015998343868,"));
    assert_non_null(strstr(j.p, "\"id\":\"20015998343868:"));
    buf_fini(&j);
    cdc_event_unref(back);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

/* An event that came through Kafka (the deliver role) keeps where it was
 * captured: its origin survives the dead-letter queue, and the envelope
 * shows it, not the offset its pos holds. */
static void test_origin(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_update(tab);
    struct cdc_pos captured = ev->pos;
    ev->origin = captured;
    ev->has_origin = true;
    ev->pos = (struct cdc_pos){12, 0, 65537};
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    struct cdc_event *back;
    char err[128];
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_true(back->has_origin);
    assert_int_equal(cdc_pos_cmp(back->origin, captured), 0);
    assert_int_equal(cdc_pos_cmp(back->pos, ev->pos), 0);
    struct buf j = BUF_INIT, want = BUF_INIT;
    json_envelope(&j, back, &ctx);
    back->has_origin = false;
    back->pos = captured;
    json_envelope(&want, back, &ctx);
    assert_string_equal(j.p, want.p);
    buf_fini(&j);
    buf_fini(&want);
    cdc_event_unref(back);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* Entries the dead-letter queue holds from before CEV3 (the files were
 * written by cdc's encoder as it was then: "CEV2", 32-bit ids) still
 * decode. */
static void test_reads_cev2(void **state)
{
    (void)state;
    uint8_t raw[1024];
    size_t n = read_file("tests/unit/data/evcodec/cev2_update.bin", raw, sizeof raw);
    assert_memory_equal(raw, "CEV2", 4);
    struct cdc_event *ev;
    char err[128];
    assert_int_equal(evcodec_decode(raw, n, NULL, &ev, err, sizeof err), 0);
    assert_int_equal(ev->op, CDC_OP_UPDATE);
    assert_int_equal(ev->pos.lsn, 0x16B3748ULL);
    assert_int_equal(ev->pos.idx, 2);
    assert_int_equal(ev->pos.stream, 0);
    assert_int_equal(ev->xid, 4000000001u);
    assert_int_equal(ev->tab->id, 42);
    assert_int_equal(ev->tab->version, 3);
    assert_int_equal(ev->total_order, 3);
    assert_string_equal(cdc_val_ptr(ev, &ev->after[1]), "new");
    assert_string_equal(cdc_val_ptr(ev, &ev->before[1]), "old");
    /* written again, it is the current encoding and reads back the same */
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    assert_memory_equal(b.p, "CEV3", 4);
    struct cdc_event *back;
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_same(ev, back);
    cdc_event_unref(back);
    cdc_event_unref(ev);

    n = read_file("tests/unit/data/evcodec/cev2_snapshot_row.bin", raw, sizeof raw);
    assert_int_equal(evcodec_decode(raw, n, NULL, &ev, err, sizeof err), 0);
    assert_int_equal(ev->op, CDC_OP_READ);
    assert_true(ev->snapshot);
    assert_int_equal(ev->snapshot_id, 0x16B0000ULL);
    /* its identity was its position then: (point, chunk read << 32 | row) */
    assert_int_equal(ev->snapshot_chunk, 5);
    assert_int_equal(ev->snapshot_row, 9);
    assert_int_equal(ev->pos.lsn, 0x16B0000ULL);
    assert_int_equal(ev->pos.idx, 0);
    assert_string_equal(cdc_val_ptr(ev, &ev->after[1]), "row");
    cdc_event_unref(ev);
    buf_fini(&b);
}

/* The source type's metadata (bytes only it reads) and the event's row in
 * its record come back as they were. */
static void test_source_metadata(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_update(tab);
    static const unsigned char meta[] = {1, 0, 'f', 'i', 'l', 'e', 0, 0xff};
    ev->srcmeta = cdc_srcmeta_new(meta, sizeof meta);
    ev->src_row = 41;
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    struct cdc_event *back;
    char err[128];
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err), 0);
    assert_same(ev, back);
    assert_non_null(back->srcmeta);
    assert_int_equal(back->srcmeta->len, sizeof meta);
    assert_memory_equal(back->srcmeta->data, meta, sizeof meta);
    assert_int_equal(back->src_row, 41);
    cdc_event_unref(back);
    /* every cut is refused, the metadata too */
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(evcodec_decode((uint8_t *)b.p, cut, NULL, &back, NULL, 0), CDC_EINVAL);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

/* An encoding from a newer cdc (an extension this build does not know) is
 * refused, not misread. */
static void test_rejects_newer(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_update(tab);
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    /* the extension word follows the fixed header: magic, op, flags, part,
     * six 64-bit fields, xid, two 32-bit orders */
    size_t at = 4 + 1 + 1 + 2 + 6 * 8 + 8 + 4 + 4;
    b.p[at + 3] = (char)0x80;
    struct cdc_event *back;
    char err[128];
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, err, sizeof err),
                     CDC_EINVAL);
    assert_non_null(strstr(err, "newer"));
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

static void test_rejects_damage(void **state)
{
    (void)state;
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_update(tab);
    struct buf b = BUF_INIT;
    evcodec_encode(&b, ev);
    struct cdc_event *back;
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(evcodec_decode((uint8_t *)b.p, cut, NULL, &back, NULL, 0), CDC_EINVAL);
    /* A longer buffer is also wrong: trailing bytes are not ignored. */
    buf_putc(&b, 'x');
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len, NULL, &back, NULL, 0), CDC_EINVAL);
    b.p[0] = 'X';
    assert_int_equal(evcodec_decode((uint8_t *)b.p, b.len - 1, NULL, &back, NULL, 0), CDC_EINVAL);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_roundtrip_truncate),
        cmocka_unit_test(test_cache_shares_tables),
        cmocka_unit_test(test_rejects_damage),
        cmocka_unit_test(test_wide_ids),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_reads_cev2),
        cmocka_unit_test(test_rejects_newer),
        cmocka_unit_test(test_source_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
