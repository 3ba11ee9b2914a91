/* Unit tests for the Parquet reader (src/lake/parquet_reader.c) and the
 * value forms of src/lake/lake_value.c: files written by cdc's writer, of
 * every type, NULLs, each codec, with and without dictionaries, many row
 * groups and pages, read back to the exact canonical text they were
 * written from; key forms that agree between text and stored values; and
 * malformed files refused with an error, never a crash.  Independent
 * readers check the writer in tests/integration. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lake/ice_schema.h"
#include "lake/lake_value.h"
#include "lake/parquet_reader.h"
#include "lake/parquet_writer.h"
#include "util/buf.h"
#include "util/err.h"

#define NCOLS 15

static struct ice_schema *all_types(bool required)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "b", ICE_BOOLEAN, required);
    ice_schema_add(sc, 2, "i", ICE_INT, required);
    ice_schema_add(sc, 3, "l", ICE_LONG, required);
    ice_schema_add(sc, 4, "f", ICE_FLOAT, required);
    ice_schema_add(sc, 5, "d", ICE_DOUBLE, required);
    struct ice_field *q = ice_schema_add(sc, 6, "q9", ICE_DECIMAL, required);
    q->precision = 9;
    q->scale = 2;
    q = ice_schema_add(sc, 7, "q18", ICE_DECIMAL, required);
    q->precision = 18;
    q->scale = 4;
    q = ice_schema_add(sc, 8, "q30", ICE_DECIMAL, required);
    q->precision = 30;
    q->scale = 5;
    ice_schema_add(sc, 9, "dt", ICE_DATE, required);
    ice_schema_add(sc, 10, "tm", ICE_TIME, required);
    ice_schema_add(sc, 11, "ts", ICE_TIMESTAMP, required);
    ice_schema_add(sc, 12, "tz", ICE_TIMESTAMPTZ, required);
    ice_schema_add(sc, 13, "s", ICE_STRING, required);
    ice_schema_add(sc, 14, "u", ICE_UUID, required)->len = 16;
    ice_schema_add(sc, 15, "bin", ICE_BINARY, required);
    return sc;
}

/* The canonical text of column c in row k (NULL for some rows when
 * nulls); values vary enough to defeat or use dictionaries. */
static const char *value_text(int c, int k, bool nulls, bool distinct, char *out, size_t len)
{
    if (nulls && (k * 7 + c) % 5 == 0)
        return NULL;
    int v = distinct ? k : k % 7;
    switch (c) {
    case 0:
        snprintf(out, len, "%s", v % 3 ? "t" : "f");
        break;
    case 1:
        snprintf(out, len, "%d", v * 37 - 1000);
        break;
    case 2:
        snprintf(out, len, "%lld", (long long)v * 123456789011LL - 5);
        break;
    case 3:
        snprintf(out, len, "%s", v % 2 ? "1.5" : "-0.25");
        break;
    case 4:
        snprintf(out, len, "%s", v % 4 == 1 ? "NaN" : v % 4 == 2 ? "-Infinity" : "0.1");
        break;
    case 5:
        snprintf(out, len, "%s%d.%02d", v % 2 ? "-" : "", v, v % 100);
        break;
    case 6:
        snprintf(out, len, "%d.%04d", v * 1000, v % 10000);
        break;
    case 7:
        snprintf(out, len, "-12345678901234567890.%05d", v % 100000);
        break;
    case 8:
        if (v % 3 == 0)
            snprintf(out, len, "0044-03-15 BC");
        else
            snprintf(out, len, "2024-02-%02d", 1 + v % 28);
        break;
    case 9:
        snprintf(out, len, "%02d:30:0%d.%d", v % 24, v % 10, 1 + v % 9);
        break;
    case 10:
        snprintf(out, len, "1969-12-31 23:59:%02d.00001", v % 60);
        break;
    case 11:
        if (v % 2)
            snprintf(out, len, "2024-01-01 00:00:%02d+00", v % 60);
        else
            snprintf(out, len, "0001-01-01 00:00:00+00 BC");
        break;
    case 12:
        snprintf(out, len, "text %d with ünïcödé", v);
        break;
    case 13:
        snprintf(out, len, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd38%04x", v & 0xffff);
        break;
    case 14:
        snprintf(out, len, "\\x%04x00ff", v & 0xffff);
        break;
    }
    return out;
}

static void write_file(struct buf *file, const struct ice_schema *sc, int rows,
                       const struct parquet_opts *o, bool nulls, bool distinct)
{
    struct parquet_writer *pw;
    char err[256], tmp[96];
    assert_int_equal(parquet_writer_new(&pw, sc, o, parquet_write_to_buf, file, err, sizeof err),
                     0);
    for (int k = 0; k < rows; k++) {
        for (int c = 0; c < NCOLS; c++) {
            const char *t = value_text(c, k, nulls, distinct, tmp, sizeof tmp);
            if (!t)
                parquet_add_null(pw, (uint32_t)c);
            else
                assert_int_equal(parquet_add_text(pw, (uint32_t)c, t, strlen(t), err, sizeof err),
                                 0);
        }
        assert_int_equal(parquet_end_row(pw, err, sizeof err), 0);
    }
    struct parquet_file_info info;
    assert_int_equal(parquet_writer_finish(pw, &info, err, sizeof err), 0);
    parquet_file_info_fini(&info);
    parquet_writer_free(pw);
}

/* Reads the file back and compares every value's text with what was
 * written, row group by row group. */
static void check_file(const struct buf *file, const struct ice_schema *sc, int rows, bool nulls,
                       bool distinct, uint32_t min_groups)
{
    struct parquet_reader *rd;
    char err[256], tmp[96];
    assert_int_equal(
        parquet_reader_open(&rd, file->p, file->len, NULL, "t.parquet", err, sizeof err), 0);
    assert_int_equal(parquet_reader_rows(rd), rows);
    assert_true(parquet_reader_row_groups(rd) >= min_groups);
    const struct ice_schema *fs = parquet_reader_schema(rd);
    assert_int_equal(fs->nfields, NCOLS);
    for (uint32_t c = 0; c < NCOLS; c++) {
        assert_int_equal(fs->fields[c].id, sc->fields[c].id);
        assert_string_equal(fs->fields[c].name, sc->fields[c].name);
        assert_int_equal(fs->fields[c].type, sc->fields[c].type);
        assert_int_equal(fs->fields[c].required, sc->fields[c].required);
        assert_int_equal(fs->fields[c].precision, sc->fields[c].precision);
        assert_int_equal(fs->fields[c].scale, sc->fields[c].scale);
        assert_int_equal(parquet_reader_find(rd, sc->fields[c].id), (int)c);
    }
    size_t kvn = 0;
    assert_non_null(parquet_reader_kv(rd, "iceberg.schema", &kvn));
    assert_true(kvn > 10);
    struct buf got = BUF_INIT, k1 = BUF_INIT, k2 = BUF_INIT;
    int k = 0;
    for (uint32_t g = 0; g < parquet_reader_row_groups(rd); g++) {
        struct parquet_column_data d[NCOLS];
        for (uint32_t c = 0; c < NCOLS; c++)
            assert_int_equal(parquet_reader_read(rd, g, c, &d[c], err, sizeof err), 0);
        for (int64_t r = 0; r < parquet_reader_rg_rows(rd, g); r++, k++) {
            for (int c = 0; c < NCOLS; c++) {
                const char *want = value_text(c, k, nulls, distinct, tmp, sizeof tmp);
                if (!want) {
                    assert_true(parquet_data_null(&d[c], r));
                    continue;
                }
                assert_false(parquet_data_null(&d[c], r));
                buf_reset(&got);
                lake_value_text(&fs->fields[c], &d[c], r, &got);
                assert_string_equal(got.p, want);
                /* the key of the stored value equals the key of the text */
                buf_reset(&k1);
                buf_reset(&k2);
                lake_value_key(&fs->fields[c], &d[c], r, &k1);
                assert_int_equal(lake_key_from_text(&sc->fields[c], want, strlen(want), &k2), 0);
                assert_int_equal(k1.len, k2.len);
                assert_memory_equal(k1.p, k2.p, k1.len);
            }
        }
        for (uint32_t c = 0; c < NCOLS; c++)
            parquet_column_data_fini(&d[c]);
    }
    assert_int_equal(k, rows);
    buf_fini(&got);
    buf_fini(&k1);
    buf_fini(&k2);
    parquet_reader_free(rd);
}

static void test_roundtrip_every_type_and_codec(void **state)
{
    static const enum parquet_codec codecs[] = {PARQUET_UNCOMPRESSED, PARQUET_SNAPPY, PARQUET_ZSTD};
    for (int req = 0; req < 2; req++) {
        struct ice_schema *sc = all_types(req);
        for (size_t ci = 0; ci < 3; ci++) {
            for (int dict = 0; dict < 2; dict++) {
                /* small row groups and pages: many of each */
                struct parquet_opts o = {.codec = codecs[ci],
                                         .row_group_bytes = 20000,
                                         .page_bytes = 1500,
                                         .no_dictionary = !dict};
                struct buf file = BUF_INIT;
                write_file(&file, sc, 1500, &o, !req, !dict);
                check_file(&file, sc, 1500, !req, !dict, 3);
                buf_fini(&file);
            }
        }
        ice_schema_free(sc);
    }
}

static void test_dictionary_fallback_and_empty(void **state)
{
    struct ice_schema *sc = all_types(false);
    /* distinct values under a tiny dictionary cap: PLAIN pages */
    struct parquet_opts o = {.codec = PARQUET_ZSTD, .dict_max_bytes = 64};
    struct buf file = BUF_INIT;
    write_file(&file, sc, 700, &o, true, true);
    check_file(&file, sc, 700, true, true, 1);
    buf_reset(&file);
    write_file(&file, sc, 0, &o, true, true);
    check_file(&file, sc, 0, true, true, 0);
    buf_fini(&file);
    ice_schema_free(sc);
}

static void test_values_as_json(void **state)
{
    struct ice_schema *sc = all_types(false);
    struct parquet_opts o = {.codec = PARQUET_SNAPPY};
    struct buf file = BUF_INIT, j = BUF_INIT;
    write_file(&file, sc, 3, &o, false, true);
    struct parquet_reader *rd;
    char err[256];
    assert_int_equal(parquet_reader_open(&rd, file.p, file.len, NULL, NULL, err, sizeof err), 0);
    const char *want[NCOLS] = {"true",
                               "-963",
                               "123456789006",
                               "1.5",
                               "NaN",
                               "-1.01",
                               "1000.0001",
                               "\"-12345678901234567890.00001\"",
                               "\"2024-02-02\"",
                               "\"01:30:01.2\""};
    for (uint32_t c = 0; c < 10; c++) {
        struct parquet_column_data d;
        assert_int_equal(parquet_reader_read(rd, 0, c, &d, err, sizeof err), 0);
        buf_reset(&j);
        lake_value_json(&sc->fields[c], &d, 1, &j);
        if (c == 4) /* NaN is a string, as in the change envelope */
            assert_string_equal(j.p, "\"NaN\"");
        else if (c == 5 || c == 6) /* decimals are strings */
            assert_true(j.p[0] == '"' && strncmp(j.p + 1, want[c], strlen(want[c])) == 0);
        else
            assert_string_equal(j.p, want[c]);
        parquet_column_data_fini(&d);
    }
    parquet_reader_free(rd);
    buf_fini(&file);
    buf_fini(&j);
    ice_schema_free(sc);
}

static void test_malformed_files_refused(void **state)
{
    struct ice_schema *sc = all_types(false);
    struct parquet_opts o = {.codec = PARQUET_ZSTD};
    struct buf file = BUF_INIT;
    write_file(&file, sc, 50, &o, true, false);
    struct parquet_reader *rd;
    char err[256];
    /* every truncation: refused at open or at read, never a crash */
    for (size_t cut = 0; cut < file.len; cut += 1 + cut / 16) {
        if (parquet_reader_open(&rd, file.p, cut, NULL, "cut", err, sizeof err) != 0) {
            assert_non_null(strstr(err, "cut"));
            continue;
        }
        parquet_reader_free(rd);
    }
    /* flipped bytes in the pages: reads fail or give values, never crash */
    struct buf bad = BUF_INIT;
    for (size_t at = 4; at < file.len - 8; at += 3) {
        buf_reset(&bad);
        buf_put(&bad, file.p, file.len);
        bad.p[at] ^= 0x5a;
        if (parquet_reader_open(&rd, bad.p, bad.len, NULL, "x", err, sizeof err) != 0)
            continue;
        for (uint32_t c = 0; c < parquet_reader_schema(rd)->nfields; c++) {
            struct parquet_column_data d;
            parquet_reader_read(rd, 0, c, &d, err, sizeof err);
            parquet_column_data_fini(&d);
        }
        parquet_reader_free(rd);
    }
    assert_int_equal(parquet_reader_open(&rd, "PAR1xxxxPAR1", 12, NULL, "tiny", err, sizeof err),
                     CDC_EINVAL);
    buf_fini(&bad);
    buf_fini(&file);
    ice_schema_free(sc);
}

static void test_decoded_bytes_capped(void **state)
{
    struct ice_schema *sc = all_types(false);
    struct parquet_opts o = {.codec = PARQUET_ZSTD};
    struct buf file = BUF_INIT;
    write_file(&file, sc, 2000, &o, false, true);
    struct parquet_reader *rd;
    char err[256];
    struct parquet_reader_opts ro = {.max_bytes = 1000};
    assert_int_equal(parquet_reader_open(&rd, file.p, file.len, &ro, "f", err, sizeof err), 0);
    struct parquet_column_data d;
    assert_int_equal(parquet_reader_read(rd, 0, 2, &d, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "more data than cdc reads at once"));
    parquet_column_data_fini(&d);
    parquet_reader_free(rd);
    buf_fini(&file);
    ice_schema_free(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type_and_codec),
        cmocka_unit_test(test_dictionary_fallback_and_empty),
        cmocka_unit_test(test_values_as_json),
        cmocka_unit_test(test_malformed_files_refused),
        cmocka_unit_test(test_decoded_bytes_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
