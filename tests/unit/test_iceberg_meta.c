/* Unit tests for the Iceberg layer's pure parts: schema and spec JSON,
 * partition_by parsing, transforms (bucket hash test vectors from the spec,
 * day/month/year/hour before and after 1970), table metadata write/parse
 * round trips (ids beyond 2^53 kept exact), snapshot ids, and manifests and
 * manifest lists written and read back field by field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lake/ice_manifest.h"
#include "lake/ice_meta.h"
#include "lake/ice_schema.h"
#include "lake/ice_spec.h"
#include "util/buf.h"
#include "util/err.h"

static struct ice_schema *sample_schema(void)
{
    struct ice_schema *sc = ice_schema_new(3);
    ice_schema_add(sc, 1, "id", ICE_LONG, true);
    ice_schema_add(sc, 2, "name \"quoted\"", ICE_STRING, false);
    struct ice_field *d = ice_schema_add(sc, 3, "amount", ICE_DECIMAL, false);
    d->precision = 12;
    d->scale = 2;
    ice_schema_add(sc, 4, "ts", ICE_TIMESTAMPTZ, false);
    ice_schema_add(sc, 5, "u", ICE_UUID, false);
    ice_schema_add_identifier(sc, 1);
    return sc;
}

static void test_schema_json_roundtrip(void **state)
{
    struct ice_schema *sc = sample_schema();
    struct buf a = BUF_INIT, b = BUF_INIT;
    ice_schema_json(&a, sc);
    struct jsonv doc;
    assert_int_equal(jsonread_parse(a.p, a.len, &doc), 0);
    struct ice_schema *back;
    char err[256];
    assert_int_equal(ice_schema_from_json(&doc, &back, err, sizeof err), 0);
    ice_schema_json(&b, back);
    assert_string_equal(a.p, b.p);
    assert_int_equal(back->fields[2].precision, 12);
    assert_int_equal(back->fields[4].len, 16);
    assert_non_null(strstr(a.p, "\"type\":\"decimal(12,2)\""));
    assert_non_null(strstr(a.p, "\"identifier-field-ids\":[1]"));
    jsonv_free(&doc);
    ice_schema_free(back);
    struct ice_field f;
    const char *bad[] = {"decimal(39,2)", "decimal(5,6)", "fixed[0]", "list<int>", "Long", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ice_type_parse(bad[i], &f), CDC_EINVAL);
    assert_int_equal(ice_type_parse("fixed[7]", &f), 0);
    assert_int_equal(f.len, 7);
    ice_schema_free(sc);
    buf_fini(&a);
    buf_fini(&b);
}

static void test_partition_by_parsing(void **state)
{
    struct ice_schema *sc = sample_schema();
    struct ice_spec *sp;
    char err[256];
    assert_int_equal(ice_spec_parse(" bucket( 16 ,id ), day(ts),hour(ts), amount ", sc, 0, 1000,
                                    &sp, err, sizeof err),
                     CDC_EINVAL); /* identity of a decimal is not supported */
    assert_non_null(strstr(err, "amount"));
    assert_int_equal(ice_spec_parse(" bucket( 16 ,id ), day(ts),hour(ts), id", sc, 0, 1000, &sp,
                                    err, sizeof err),
                     0);
    assert_int_equal(sp->n, 4);
    assert_string_equal(sp->fields[0].name, "id_bucket");
    assert_int_equal(sp->fields[0].buckets, 16);
    assert_int_equal(sp->fields[1].field_id, 1001);
    assert_string_equal(sp->fields[2].name, "ts_hour");
    assert_int_equal(sp->fields[3].transform, ICE_T_IDENTITY);
    assert_int_equal(ice_spec_max_field_id(sp), 1003);
    struct buf j = BUF_INIT;
    ice_spec_json(&j, sp);
    assert_non_null(strstr(j.p, "\"transform\":\"bucket[16]\",\"source-id\":1,\"field-id\":1000"));
    struct jsonv doc;
    assert_int_equal(jsonread_parse(j.p, j.len, &doc), 0);
    struct ice_spec *back;
    assert_int_equal(ice_spec_from_json(&doc, &back, err, sizeof err), 0);
    assert_int_equal(back->fields[2].transform, ICE_T_HOUR);
    jsonv_free(&doc);
    ice_spec_free(back);
    ice_spec_free(sp);
    const char *bad[] = {"nope",     "day(name \"quoted\")", "day(id)", "month(u)",
                         "frob(id)", "bucket(0, id)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ice_spec_parse(bad[i], sc, 0, 1000, &sp, err, sizeof err), CDC_EINVAL);
    assert_int_equal(ice_spec_parse("", sc, 0, 1000, &sp, err, sizeof err), 0);
    assert_int_equal(sp->n, 0);
    assert_int_equal(ice_spec_max_field_id(sp), 999);
    ice_spec_free(sp);
    buf_fini(&j);
    ice_schema_free(sc);
}

static void test_bucket_vectors(void **state)
{
    /* Iceberg spec, "Appendix B: 32-bit Hash Requirements" */
    uint8_t l34[8] = {34, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(ice_murmur3(l34, 8), 2017239379u);
    assert_int_equal(ice_murmur3("iceberg", 7), 1210000089u);
    uint8_t bin[4] = {0, 1, 2, 3};
    assert_int_equal((int32_t)ice_murmur3(bin, 4), -188683207);
    struct ice_pfield b16 = {1, 1000, "b", ICE_T_BUCKET, 16};
    struct ice_field lng = {1, "id", ICE_LONG, true, 0, 0, 0};
    struct ice_pvalue v;
    assert_int_equal(ice_partition_value(&b16, &lng, "34", 2, &v), 0);
    assert_int_equal(v.l, 2017239379 % 16);
    struct ice_field in = {1, "id", ICE_INT, true, 0, 0, 0};
    assert_int_equal(ice_partition_value(&b16, &in, "34", 2, &v), 0); /* ints hash as longs */
    assert_int_equal(v.l, 2017239379 % 16);
    struct ice_field str = {1, "s", ICE_STRING, true, 0, 0, 0};
    assert_int_equal(ice_partition_value(&b16, &str, "iceberg", 7, &v), 0);
    assert_int_equal(v.l, 1210000089 % 16);
    assert_int_equal(ice_partition_value(&b16, &lng, NULL, 0, &v), 0);
    assert_true(v.null);
    assert_int_equal(ice_partition_value(&b16, &lng, "x", 1, &v), CDC_EINVAL);
}

static void test_time_transforms(void **state)
{
    struct ice_field ts = {1, "ts", ICE_TIMESTAMPTZ, false, 0, 0, 0};
    struct ice_field dt = {2, "d", ICE_DATE, false, 0, 0, 0};
    struct {
        enum ice_transform t;
        const struct ice_field *f;
        const char *text;
        int64_t want;
    } cases[] = {
        {ICE_T_DAY, &ts, "1970-01-01 00:00:00+00", 0},
        {ICE_T_DAY, &ts, "1969-12-31 23:59:59.999999+00", -1},
        {ICE_T_DAY, &ts, "1970-01-01 01:00:00+02", -1},
        {ICE_T_HOUR, &ts, "1969-12-31 23:30:00+00", -1},
        {ICE_T_HOUR, &ts, "1970-01-02 00:00:00+00", 24},
        {ICE_T_MONTH, &ts, "1969-12-15 00:00:00+00", -1},
        {ICE_T_MONTH, &ts, "2024-03-01 00:00:00+00", 54 * 12 + 2},
        {ICE_T_YEAR, &ts, "1969-06-01 00:00:00+00", -1},
        {ICE_T_YEAR, &dt, "2024-02-29", 54},
        {ICE_T_DAY, &dt, "2024-02-29", 19782},
        {ICE_T_MONTH, &dt, "0001-01-01 BC", (0 - 1970) * 12}, /* 1 BC is year 0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ice_pfield pf = {cases[i].f->id, 1000, "p", cases[i].t, 0};
        struct ice_pvalue v;
        assert_int_equal(
            ice_partition_value(&pf, cases[i].f, cases[i].text, strlen(cases[i].text), &v), 0);
        if (v.l != cases[i].want)
            fail_msg("%s of %s: %lld, want %lld", cases[i].t == ICE_T_DAY ? "day" : "transform",
                     cases[i].text, (long long)v.l, (long long)cases[i].want);
    }
}

static struct ice_meta *sample_meta(void)
{
    struct ice_schema *sc = sample_schema();
    struct ice_spec *sp;
    char err[128];
    assert_int_equal(ice_spec_parse("bucket(4, id)", sc, 0, 1000, &sp, err, sizeof err), 0);
    struct ice_meta *m = ice_meta_new("s3://lake/db/t", sc, sp, 1700000000000);
    ice_kv_set(&m->props, &m->nprops, "write.format.default", "parquet");
    for (int i = 0; i < 3; i++) {
        struct ice_snapshot s = {.id = 9007199254740993LL + i, /* beyond 2^53 */
                                 .parent_id = i ? 9007199254740993LL + i - 1 : -1,
                                 .seq = i + 1,
                                 .ts_ms = 1700000000000 + i,
                                 .schema_id = 3,
                                 .manifest_list = strdup("s3://lake/db/t/metadata/snap.avro")};
        ice_kv_set(&s.summary, &s.nsummary, "operation", "append");
        ice_kv_set(&s.summary, &s.nsummary, "cdc.position", "0/16B3748:3");
        m->snapshots = realloc(m->snapshots, (m->nsnapshots + 1) * sizeof *m->snapshots);
        m->snapshots[m->nsnapshots++] = s;
        m->snaplog = realloc(m->snaplog, (m->nsnaplog + 1) * sizeof *m->snaplog);
        m->snaplog[m->nsnaplog++] = (struct ice_log_entry){s.ts_ms, s.id, NULL};
    }
    m->metalog = calloc(1, sizeof *m->metalog);
    m->metalog[m->nmetalog++] = (struct ice_log_entry){1, -1, strdup("s3://x/v1.metadata.json")};
    m->last_seq = 3;
    ice_meta_set_main(m, 9007199254740995LL);
    ice_schema_free(sc);
    ice_spec_free(sp);
    return m;
}

static void test_meta_roundtrip(void **state)
{
    struct ice_meta *m = sample_meta();
    struct buf a = BUF_INIT, b = BUF_INIT;
    ice_meta_json(&a, m);
    struct ice_meta *back;
    char err[256];
    assert_int_equal(ice_meta_parse(a.p, a.len, &back, err, sizeof err), 0);
    ice_meta_json(&b, back);
    assert_string_equal(a.p, b.p);
    assert_true(back->current_snapshot_id == 9007199254740995LL);
    assert_true(ice_meta_current(back)->parent_id == 9007199254740994LL);
    assert_string_equal(ice_snapshot_get(ice_meta_current(back), "cdc.position"), "0/16B3748:3");
    assert_int_equal(back->last_partition_id, 1000);
    assert_string_equal(back->table_uuid, m->table_uuid);
    assert_non_null(strstr(a.p, "\"refs\":{\"main\":{\"snapshot-id\":9007199254740995,"));
    struct ice_meta *copy = ice_meta_copy(back);
    buf_reset(&b);
    ice_meta_json(&b, copy);
    assert_string_equal(a.p, b.p);
    ice_meta_free(copy);
    ice_meta_free(back);
    /* refusals name what is wrong */
    char *v1 = strdup(a.p);
    memcpy(strstr(v1, "\"format-version\":2") + 17, "1", 1);
    assert_int_equal(ice_meta_parse(v1, strlen(v1), &back, err, sizeof err), CDC_ENOTSUP);
    assert_non_null(strstr(err, "format-version 1"));
    free(v1);
    char *bad = strdup(a.p);
    char *cur = strstr(bad, "\"current-snapshot-id\":9007199254740995");
    memcpy(cur + 22, "1234567890123456", 16);
    assert_int_equal(ice_meta_parse(bad, strlen(bad), &back, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "is not a snapshot"));
    free(bad);
    assert_int_equal(ice_meta_parse("{}", 2, &back, err, sizeof err), CDC_EINVAL);
    assert_int_equal(ice_meta_parse("[", 1, &back, err, sizeof err), CDC_EINVAL);
    ice_meta_free(m);
    buf_fini(&a);
    buf_fini(&b);
}

static void test_snapshot_ids_and_uuids(void **state)
{
    for (int i = 0; i < 2000; i++) {
        int64_t id = ice_new_snapshot_id();
        assert_true(id > 0 && id < (1LL << 53));
    }
    char u[37];
    ice_uuid(u);
    assert_int_equal(strlen(u), 36);
    assert_int_equal(u[14], '4');
    assert_true(strchr("89ab", u[19]) != NULL);
}

static void test_manifest_roundtrip(void **state)
{
    struct ice_schema *sc = sample_schema();
    struct ice_spec *sp;
    char err[256];
    assert_int_equal(
        ice_spec_parse("bucket(4, id), name \"quoted\"", sc, 0, 1000, &sp, err, sizeof err),
        CDC_EINVAL); /* names with spaces cannot be written in partition_by */
    assert_int_equal(ice_spec_parse("bucket(4, id)", sc, 0, 1000, &sp, err, sizeof err), 0);
    struct ice_entry e[2];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 2; i++) {
        struct ice_data_file *df = &e[i].df;
        e[i].status = i ? ICE_EXISTING : ICE_ADDED;
        e[i].snapshot_id = 77;
        e[i].seq = i ? 5 : -1;
        e[i].file_seq = i ? 5 : -1;
        df->content = i ? ICE_CONTENT_EQ_DELETES : ICE_CONTENT_DATA;
        df->path = strdup(i ? "s3://b/d2.parquet" : "s3://b/d1.parquet");
        df->records = 10 + i;
        df->size = 1000 + i;
        df->npart = 1;
        df->part = calloc(1, sizeof *df->part);
        df->part[0].l = 2 + i;
        df->ncols = 1;
        df->cols = calloc(1, sizeof *df->cols);
        df->cols[0] = (struct ice_col_stat){
            .id = 1, .size = 50, .values = 10, .nulls = 0, .nans = 0, .has_bounds = true};
        buf_put(&df->cols[0].lower, "\x01\0\0\0\0\0\0\0", 8);
        buf_put(&df->cols[0].upper, "\x09\0\0\0\0\0\0\0", 8);
        df->nsplits = 1;
        df->splits = calloc(1, sizeof *df->splits);
        df->splits[0] = 4;
        if (i) {
            df->neq = 1;
            df->eq_ids = calloc(1, sizeof *df->eq_ids);
            df->eq_ids[0] = 1;
        }
    }
    uint8_t sync[16] = {9};
    struct buf out = BUF_INIT;
    struct ice_manifest_file mf;
    ice_manifest_write(&out, sc, sp, 0, e, 2, sync, &mf);
    assert_int_equal(mf.added_files, 1);
    assert_int_equal(mf.existing_files, 1);
    assert_int_equal(mf.added_rows, 10);
    assert_int_equal(mf.npart, 1);
    assert_true(mf.parts[0].has_bounds);
    assert_memory_equal(mf.parts[0].lower.p, "\x02\0\0\0", 4);
    assert_memory_equal(mf.parts[0].upper.p, "\x03\0\0\0", 4);
    struct ice_entry *back;
    size_t n;
    assert_int_equal(ice_manifest_read((const uint8_t *)out.p, out.len, &back, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(back[0].seq, -1); /* inherited */
    assert_int_equal(back[1].seq, 5);
    assert_string_equal(back[1].df.path, "s3://b/d2.parquet");
    assert_int_equal(back[1].df.neq, 1);
    assert_int_equal(back[1].df.part[0].l, 3);
    assert_int_equal(back[0].df.cols[0].values, 10);
    assert_memory_equal(back[0].df.cols[0].upper.p, "\x09", 1);
    assert_int_equal(back[0].df.splits[0], 4);
    ice_entries_free(back, n);

    mf.path = strdup("s3://b/m.avro");
    mf.length = (int64_t)out.len;
    mf.seq = 5;
    mf.min_seq = 5;
    mf.added_snapshot_id = 77;
    struct buf list = BUF_INIT;
    ice_manifest_list_write(&list, 77, -1, 5, &mf, 1, sync);
    struct ice_manifest_file *ml;
    assert_int_equal(
        ice_manifest_list_read((const uint8_t *)list.p, list.len, &ml, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ml[0].path, "s3://b/m.avro");
    assert_int_equal(ml[0].length, (int64_t)out.len);
    assert_int_equal(ml[0].existing_files, 1);
    assert_true(ml[0].parts[0].has_bounds);
    ice_manifest_files_free(ml, n);
    /* a manifest with a broken entry is refused with a message */
    out.p[out.len - 20] ^= 0x40;
    int rc = ice_manifest_read((const uint8_t *)out.p, out.len, &back, &n, err, sizeof err);
    if (rc == 0)
        ice_entries_free(back, n);
    ice_manifest_file_fini(&mf);
    for (int i = 0; i < 2; i++)
        ice_data_file_fini(&e[i].df);
    ice_spec_free(sp);
    ice_schema_free(sc);
    buf_fini(&out);
    buf_fini(&list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_json_roundtrip), cmocka_unit_test(test_partition_by_parsing),
        cmocka_unit_test(test_bucket_vectors),        cmocka_unit_test(test_time_transforms),
        cmocka_unit_test(test_meta_roundtrip),        cmocka_unit_test(test_snapshot_ids_and_uuids),
        cmocka_unit_test(test_manifest_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
