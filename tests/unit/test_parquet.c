/* Unit tests for the Parquet encodings and writer (src/lake/parquet_*.c):
 * the RLE/bit-packed hybrid (runs, groups, padding, widths), boolean
 * packing, codecs, decimal byte forms, statistics order per type, NULL-only
 * columns, row rollback and empty files.  Files are checked by decoding
 * their footer with the Thrift decoder and their pages with the hybrid
 * decoder; the independent readers run in tests/integration. */
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
#include "lake/lake_conv.h"
#include "lake/parquet_enc.h"
#include "lake/parquet_writer.h"
#include "lake/thrift.h"
#include "util/buf.h"
#include "util/err.h"

/* Encodes v at bw, decodes it back, compares. */
static void roundtrip(const uint32_t *v, size_t n, int bw)
{
    struct buf b = BUF_INIT;
    parquet_rle_encode(&b, v, n, bw);
    uint32_t *out = calloc(n + 1, sizeof *out);
    assert_int_equal(parquet_rle_decode((const uint8_t *)b.p, b.len, bw, out, n), 0);
    assert_memory_equal(out, v, n * sizeof *v);
    free(out);
    buf_fini(&b);
}

static void test_rle_run_bytes(void **state)
{
    /* 10 times 5 at width 3: one RLE run, header varint(10 << 1) = 0x14,
     * value in one byte. */
    uint32_t v[10];
    for (int i = 0; i < 10; i++)
        v[i] = 5;
    struct buf b = BUF_INIT;
    parquet_rle_encode(&b, v, 10, 3);
    assert_int_equal(b.len, 2);
    assert_int_equal((uint8_t)b.p[0], 0x14);
    assert_int_equal((uint8_t)b.p[1], 5);
    /* width 9 needs two value bytes, little-endian */
    for (int i = 0; i < 10; i++)
        v[i] = 300;
    buf_reset(&b);
    parquet_rle_encode(&b, v, 10, 9);
    assert_int_equal(b.len, 3);
    assert_int_equal((uint8_t)b.p[1], 300 & 0xff);
    assert_int_equal((uint8_t)b.p[2], 300 >> 8);
    buf_fini(&b);
}

static void test_rle_bitpacked_bytes(void **state)
{
    /* 0..7 at width 3: one group, header (1 << 1) | 1 = 3, then the values
     * LSB first: 0b10001000 0b11000110 0b11111010 (Encodings.md example). */
    uint32_t v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    struct buf b = BUF_INIT;
    parquet_rle_encode(&b, v, 8, 3);
    assert_int_equal(b.len, 4);
    assert_int_equal((uint8_t)b.p[0], 3);
    assert_int_equal((uint8_t)b.p[1], 0x88);
    assert_int_equal((uint8_t)b.p[2], 0xc6);
    assert_int_equal((uint8_t)b.p[3], 0xfa);
    /* 3 values: one group padded with zeros */
    buf_reset(&b);
    parquet_rle_encode(&b, v, 3, 3);
    assert_int_equal(b.len, 4);
    assert_int_equal((uint8_t)b.p[0], 3);
    buf_fini(&b);
}

static void test_rle_mixed_roundtrips(void **state)
{
    static uint32_t v[20000];
    srand(7);
    int widths[] = {1, 2, 3, 7, 8, 9, 13, 16, 17, 24, 31, 32};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        int bw = widths[w];
        uint64_t max = bw == 32 ? 0xffffffffu : ((1ull << bw) - 1);
        size_t n = 0;
        while (n < 20000) {
            /* alternate odd-length runs and noise, so bit-packed sections
             * start at every offset modulo 8 */
            size_t run = (size_t)(rand() % 23) + 1;
            uint32_t x = (uint32_t)((uint64_t)rand() % (max + 1));
            for (size_t k = 0; k < run && n < 20000; k++)
                v[n++] = (rand() % 3) ? x : (uint32_t)((uint64_t)rand() % (max + 1));
        }
        for (size_t len = 0; len < 40; len++)
            roundtrip(v, len, bw);
        roundtrip(v, 20000, bw);
        roundtrip(v, 4097, bw);
    }
}

static void test_rle_u8_long_levels(void **state)
{
    /* Definition levels longer than any internal slice, with a run of odd
     * length first so bit-packed groups do not line up with slice ends: a
     * padded group in the middle of the stream would shift every later
     * value (found by comparing with DuckDB). */
    static uint8_t lv[30000];
    static uint32_t out[30000];
    for (size_t i = 0; i < 30000; i++)
        lv[i] = i < 9 ? 1 : (i % 10 != 7);
    struct buf b = BUF_INIT;
    parquet_rle_encode_u8(&b, lv, 30000, 1);
    assert_int_equal(parquet_rle_decode((const uint8_t *)b.p, b.len, 1, out, 30000), 0);
    for (size_t i = 0; i < 30000; i++)
        assert_int_equal(out[i], lv[i]);
    buf_fini(&b);
}

static void test_rle_decode_rejects(void **state)
{
    uint32_t out[16];
    const uint8_t truncated_group[] = {0x03, 0x88};
    assert_int_equal(parquet_rle_decode(truncated_group, 2, 3, out, 8), CDC_EINVAL);
    const uint8_t too_wide[] = {0x14, 0x09}; /* value 9 at width 3 */
    assert_int_equal(parquet_rle_decode(too_wide, 2, 3, out, 10), CDC_EINVAL);
    const uint8_t empty_run[] = {0x00, 0x01};
    assert_int_equal(parquet_rle_decode(empty_run, 2, 3, out, 1), CDC_EINVAL);
    assert_int_equal(parquet_rle_decode(empty_run, 2, 33, out, 1), CDC_EINVAL);
}

static void test_bit_width(void **state)
{
    assert_int_equal(parquet_bit_width(0), 1);
    assert_int_equal(parquet_bit_width(1), 1);
    assert_int_equal(parquet_bit_width(2), 2);
    assert_int_equal(parquet_bit_width(255), 8);
    assert_int_equal(parquet_bit_width(256), 9);
    assert_int_equal(parquet_bit_width(0xffffffffu), 32);
}

static void test_pack_bools(void **state)
{
    uint8_t v[10] = {1, 0, 1, 1, 0, 0, 0, 1, 1, 0};
    struct buf b = BUF_INIT;
    parquet_pack_bools(&b, v, 10);
    assert_int_equal(b.len, 2);
    assert_int_equal((uint8_t)b.p[0], 0x8d);
    assert_int_equal((uint8_t)b.p[1], 0x01);
    buf_fini(&b);
}

static void test_codecs_roundtrip(void **state)
{
    struct buf src = BUF_INIT, c = BUF_INIT, d = BUF_INIT;
    for (int i = 0; i < 5000; i++)
        buf_printf(&src, "row %d value %d;", i, i % 17);
    enum parquet_codec codecs[] = {PARQUET_UNCOMPRESSED, PARQUET_SNAPPY, PARQUET_ZSTD};
    for (int k = 0; k < 3; k++) {
        char err[128];
        assert_int_equal(parquet_compress(codecs[k], 0, src.p, src.len, &c, err, sizeof err), 0);
        if (codecs[k] != PARQUET_UNCOMPRESSED)
            assert_true(c.len < src.len / 2);
        assert_int_equal(parquet_decompress(codecs[k], c.p, c.len, src.len, &d), 0);
        assert_int_equal(d.len, src.len);
        assert_memory_equal(d.p, src.p, src.len);
        /* corrupt input is refused, not crashed on */
        if (codecs[k] != PARQUET_UNCOMPRESSED) {
            c.p[c.len / 2] ^= 0x5a;
            c.p[1] ^= 0x33;
            int rc = parquet_decompress(codecs[k], c.p, c.len, src.len, &d);
            assert_true(rc == CDC_EINVAL || (d.len == src.len));
        }
    }
    buf_fini(&src);
    buf_fini(&c);
    buf_fini(&d);
}

/* ---- whole files ------------------------------------------------------------ */

struct file {
    struct buf bytes;
    struct thrift_node meta; /* FileMetaData */
    struct parquet_file_info info;
};

/* Decodes the footer of f->bytes. */
static void decode_footer(struct file *f)
{
    const uint8_t *p = (const uint8_t *)f->bytes.p;
    size_t n = f->bytes.len;
    assert_true(n >= 12);
    assert_memory_equal(p, "PAR1", 4);
    assert_memory_equal(p + n - 4, "PAR1", 4);
    uint32_t len = (uint32_t)p[n - 8] | (uint32_t)p[n - 7] << 8 | (uint32_t)p[n - 6] << 16 |
                   (uint32_t)p[n - 5] << 24;
    assert_true(len <= n - 12);
    size_t used = 0;
    assert_int_equal(thrift_decode(p + n - 8 - len, len, &f->meta, &used), 0);
    assert_int_equal(used, len);
}

static void file_fini(struct file *f)
{
    thrift_node_fini(&f->meta);
    parquet_file_info_fini(&f->info);
    buf_fini(&f->bytes);
}

/* Writes rows given as text (NULL = SQL NULL), ncols per row. */
static void write_text(struct file *f, const struct ice_schema *sc, const struct parquet_opts *o,
                       const char *const *vals, size_t nrows)
{
    memset(f, 0, sizeof *f);
    struct parquet_writer *pw;
    char err[256];
    assert_int_equal(
        parquet_writer_new(&pw, sc, o, parquet_write_to_buf, &f->bytes, err, sizeof err), 0);
    for (size_t r = 0; r < nrows; r++) {
        for (uint32_t c = 0; c < sc->nfields; c++) {
            const char *v = vals[r * sc->nfields + c];
            if (v)
                assert_int_equal(parquet_add_text(pw, c, v, strlen(v), err, sizeof err), 0);
            else
                parquet_add_null(pw, c);
        }
        assert_int_equal(parquet_end_row(pw, err, sizeof err), 0);
    }
    assert_int_equal(parquet_writer_finish(pw, &f->info, err, sizeof err), 0);
    parquet_writer_free(pw);
    decode_footer(f);
}

/* Statistics of column c in row group rg. */
static const struct thrift_node *stats(const struct file *f, uint32_t rg, uint32_t c)
{
    const struct thrift_node *rgs = thrift_get(&f->meta, 4);
    assert_non_null(rgs);
    assert_true(rg < rgs->nkids);
    const struct thrift_node *cols = thrift_get(&rgs->kids[rg], 1);
    assert_true(c < cols->nkids);
    const struct thrift_node *md = thrift_get(&cols->kids[c], 3);
    return thrift_get(md, 12);
}

static void assert_bin(const struct thrift_node *n, const void *want, size_t len)
{
    assert_non_null(n);
    assert_int_equal(n->len, len);
    assert_memory_equal(n->bin, want, len);
}

static struct ice_schema *schema1(enum ice_type t, bool required)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "c", t, required);
    return sc;
}

static void test_stats_signed_ints(void **state)
{
    struct ice_schema *sc = schema1(ICE_INT, false);
    const char *v[] = {"-5", "3", NULL, "-100", "7"};
    struct file f;
    write_text(&f, sc, NULL, v, 5);
    const struct thrift_node *s = stats(&f, 0, 0);
    int32_t mn = -100, mx = 7;
    assert_bin(thrift_get(s, 6), &mn, 4);
    assert_bin(thrift_get(s, 5), &mx, 4);
    assert_int_equal(thrift_get(s, 3)->i, 1);
    /* Iceberg bounds: the same little-endian ints */
    assert_true(f.info.cols[0].has_bounds);
    assert_memory_equal(f.info.cols[0].lower.p, &mn, 4);
    assert_int_equal(f.info.cols[0].values, 5);
    assert_int_equal(f.info.cols[0].nulls, 1);
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_stats_unsigned_strings_and_uuid(void **state)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "s", ICE_STRING, false);
    ice_schema_add(sc, 2, "u", ICE_UUID, false);
    /* "\xc3\xa4" (ä) sorts after "b" and "Z" bytewise unsigned; a signed
     * comparison would put it first.  The same for uuid bytes 0x80 vs 0x7f. */
    const char *v[] = {"b",        "7fffffff-0000-0000-0000-000000000000",
                       "\xc3\xa4", "80000000-0000-0000-0000-000000000000",
                       "Z",        NULL,
                       "b",        "00000000-0000-0000-0000-000000000001"};
    struct file f;
    write_text(&f, sc, NULL, v, 4);
    assert_bin(thrift_get(stats(&f, 0, 0), 6), "Z", 1);
    assert_bin(thrift_get(stats(&f, 0, 0), 5), "\xc3\xa4", 2);
    uint8_t lo[16] = {0}, hi[16] = {0x80};
    lo[15] = 1;
    assert_bin(thrift_get(stats(&f, 0, 1), 6), lo, 16);
    assert_bin(thrift_get(stats(&f, 0, 1), 5), hi, 16);
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_stats_decimals(void **state)
{
    struct ice_schema *sc = ice_schema_new(0);
    struct ice_field *a = ice_schema_add(sc, 1, "a", ICE_DECIMAL, true);
    a->precision = 9;
    a->scale = 2;
    struct ice_field *b = ice_schema_add(sc, 2, "b", ICE_DECIMAL, true);
    b->precision = 38;
    b->scale = 2;
    const char *v[] = {"1.00",  "1.00", "-1.00",
                       "-1.00", "0.50", "99999999999999999999999999999999999.99"};
    struct file f;
    write_text(&f, sc, NULL, v, 3);
    /* INT32 decimal: signed little-endian unscaled values */
    int32_t mn = -100, mx = 100;
    assert_bin(thrift_get(stats(&f, 0, 0), 6), &mn, 4);
    assert_bin(thrift_get(stats(&f, 0, 0), 5), &mx, 4);
    /* FIXED decimal: signed big-endian; -1.00 is ff…ff9c, the max 10^37-1 */
    uint8_t want[16];
    lake_decimal_be(-100, want, 16);
    assert_bin(thrift_get(stats(&f, 0, 1), 6), want, 16);
    assert_int_equal(want[0], 0xff);
    assert_int_equal(want[15], 0x9c);
    /* Iceberg bounds use the minimal big-endian form: -100 is one byte 0x9c */
    assert_int_equal(f.info.cols[1].lower.len, 1);
    assert_int_equal((uint8_t)f.info.cols[1].lower.p[0], 0x9c);
    assert_int_equal(f.info.cols[0].lower.len, 1);
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_stats_floats_nan_and_zero(void **state)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "d", ICE_DOUBLE, false);
    ice_schema_add(sc, 2, "f", ICE_FLOAT, false);
    const char *v[] = {"0", "NaN", "NaN", "NaN", "-0", NULL, "-Infinity", "NaN"};
    struct file f;
    write_text(&f, sc, NULL, v, 4);
    /* NaN never is a bound; zeros give min -0.0 and max +0.0, so -inf..+0 */
    double mn = -INFINITY, mx = 0.0;
    assert_bin(thrift_get(stats(&f, 0, 0), 6), &mn, 8);
    assert_bin(thrift_get(stats(&f, 0, 0), 5), &mx, 8);
    assert_int_equal(f.info.cols[0].nans, 1);
    /* a column of NaN and NULL only has no min/max at all */
    assert_null(thrift_get(stats(&f, 0, 1), 6));
    assert_null(thrift_get(stats(&f, 0, 1), 5));
    assert_int_equal(thrift_get(stats(&f, 0, 1), 3)->i, 1);
    assert_false(f.info.cols[1].has_bounds);
    assert_int_equal(f.info.cols[1].nans, 3);
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_null_only_column(void **state)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "id", ICE_LONG, true);
    ice_schema_add(sc, 2, "n", ICE_STRING, false);
    const char *v[] = {"1", NULL, "2", NULL, "3", NULL};
    struct file f;
    write_text(&f, sc, NULL, v, 3);
    const struct thrift_node *s = stats(&f, 0, 1);
    assert_int_equal(thrift_get(s, 3)->i, 3);
    assert_null(thrift_get(s, 5));
    assert_int_equal(f.info.cols[1].values, 3);
    assert_int_equal(f.info.cols[1].nulls, 3);
    assert_false(f.info.cols[1].has_bounds);
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_empty_file(void **state)
{
    struct ice_schema *sc = schema1(ICE_LONG, true);
    struct file f;
    write_text(&f, sc, NULL, NULL, 0);
    assert_int_equal(thrift_get(&f.meta, 3)->i, 0);        /* num_rows */
    assert_int_equal(thrift_get(&f.meta, 4)->nkids, 0);    /* row_groups */
    assert_int_equal(thrift_get(&f.meta, 2)->nkids, 2);    /* root + one column */
    assert_int_equal(thrift_get(&f.meta, 7)->nkids, 1);    /* column_orders */
    const struct thrift_node *kv = thrift_get(&f.meta, 5); /* key_value_metadata */
    assert_int_equal(kv->nkids, 1);
    assert_bin(thrift_get(&kv->kids[0], 1), "iceberg.schema", 14);
    assert_int_equal(f.info.rows, 0);
    assert_int_equal(f.info.nrow_groups, 0);
    assert_int_equal(f.info.size, (int64_t)f.bytes.len);
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_schema_annotations(void **state)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 7, "ts", ICE_TIMESTAMPTZ, false);
    struct ice_field *d = ice_schema_add(sc, 9, "d", ICE_DECIMAL, true);
    d->precision = 20;
    d->scale = 4;
    const char *v[] = {"2024-01-01 00:00:00+00", "1.5"};
    struct file f;
    write_text(&f, sc, NULL, v, 1);
    const struct thrift_node *schema = thrift_get(&f.meta, 2);
    const struct thrift_node *ts = &schema->kids[1], *dec = &schema->kids[2];
    assert_int_equal(thrift_get(ts, 1)->i, 2);                        /* INT64 */
    assert_int_equal(thrift_get(ts, 6)->i, 10);                       /* TIMESTAMP_MICROS */
    assert_int_equal(thrift_get(ts, 9)->i, 7);                        /* field_id */
    const struct thrift_node *lt = thrift_get(thrift_get(ts, 10), 8); /* TIMESTAMP */
    assert_int_equal(thrift_get(lt, 1)->i, 1);                        /* isAdjustedToUTC */
    assert_non_null(thrift_get(thrift_get(lt, 2), 2));                /* MICROS */
    assert_int_equal(thrift_get(dec, 1)->i, 7);                       /* FIXED_LEN_BYTE_ARRAY */
    assert_int_equal(thrift_get(dec, 2)->i, 9);                       /* 20 digits need 9 bytes */
    assert_int_equal(thrift_get(dec, 3)->i, 0);                       /* REQUIRED */
    assert_int_equal(thrift_get(dec, 7)->i, 4);                       /* scale */
    assert_int_equal(thrift_get(dec, 8)->i, 20);                      /* precision */
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_bad_rows_roll_back(void **state)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "id", ICE_LONG, true);
    ice_schema_add(sc, 2, "amount", ICE_INT, true);
    struct parquet_opts o = {.label = "public.orders"};
    struct buf out = BUF_INIT;
    struct parquet_writer *pw;
    char err[256];
    assert_int_equal(parquet_writer_new(&pw, sc, &o, parquet_write_to_buf, &out, err, sizeof err),
                     0);
    /* a value that is not an int names the table and column */
    assert_int_equal(parquet_add_text(pw, 0, "1", 1, err, sizeof err), 0);
    assert_int_equal(parquet_add_text(pw, 1, "12x", 3, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "table public.orders, column amount"));
    assert_int_equal(parquet_end_row(pw, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "column amount: no value given"));
    /* NULL in a required column */
    parquet_add_i64(pw, 0, 2);
    parquet_add_null(pw, 1);
    assert_int_equal(parquet_end_row(pw, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "NULL in a required column"));
    /* a value twice, and one of the wrong kind */
    parquet_add_i64(pw, 0, 3);
    parquet_add_i64(pw, 0, 3);
    parquet_add_i32(pw, 1, 3);
    assert_int_equal(parquet_end_row(pw, err, sizeof err), CDC_EINVAL);
    parquet_add_i32(pw, 0, 3);
    parquet_add_i32(pw, 1, 3);
    assert_int_equal(parquet_end_row(pw, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "wrong type"));
    /* then a good row: the file holds exactly it */
    parquet_add_i64(pw, 0, 42);
    parquet_add_i32(pw, 1, 7);
    assert_int_equal(parquet_end_row(pw, err, sizeof err), 0);
    struct file f = {.bytes = out};
    assert_int_equal(parquet_writer_finish(pw, &f.info, err, sizeof err), 0);
    parquet_writer_free(pw);
    f.bytes = out;
    decode_footer(&f);
    assert_int_equal(thrift_get(&f.meta, 3)->i, 1);
    int64_t v42 = 42;
    assert_bin(thrift_get(stats(&f, 0, 0), 6), &v42, 8);
    assert_bin(thrift_get(stats(&f, 0, 0), 5), &v42, 8);
    file_fini(&f);
    ice_schema_free(sc);
}

/* Encodings list of column c in row group rg contains enc. */
static bool has_encoding(const struct file *f, uint32_t rg, uint32_t c, int64_t enc)
{
    const struct thrift_node *cols = thrift_get(&thrift_get(&f->meta, 4)->kids[rg], 1);
    const struct thrift_node *encs = thrift_get(thrift_get(&cols->kids[c], 3), 2);
    for (uint32_t i = 0; i < encs->nkids; i++)
        if (encs->kids[i].i == enc)
            return true;
    return false;
}

static void test_row_groups_and_dictionary_fallback(void **state)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "id", ICE_LONG, true);
    ice_schema_add(sc, 2, "low", ICE_STRING, false);
    ice_schema_add(sc, 3, "high", ICE_STRING, false);
    enum { N = 20000 };
    char **v = calloc(3 * N, sizeof *v);
    for (int i = 0; i < N; i++) {
        v[3 * i] = malloc(16);
        snprintf(v[3 * i], 16, "%d", i);
        v[3 * i + 1] = i % 7 == 3 ? NULL : (i % 2 ? "odd" : "even");
        v[3 * i + 2] = malloc(32);
        snprintf(v[3 * i + 2], 32, "distinct-value-%08d", i * 7919);
    }
    struct parquet_opts o = {.row_group_bytes = 256 << 10,
                             .page_bytes = 16 << 10,
                             .dict_max_bytes = 32 << 10,
                             .codec = PARQUET_ZSTD};
    struct file f;
    write_text(&f, sc, &o, (const char *const *)v, N);
    const struct thrift_node *rgs = thrift_get(&f.meta, 4);
    assert_true(rgs->nkids > 1);
    int64_t rows = 0, prev = 0;
    for (uint32_t r = 0; r < rgs->nkids; r++) {
        rows += thrift_get(&rgs->kids[r], 3)->i;
        int64_t off = thrift_get(&rgs->kids[r], 5)->i;
        assert_true(off > prev);
        assert_int_equal(off, f.info.row_group_offsets[r]);
        prev = off;
        assert_true(has_encoding(&f, r, 1, 8));  /* low cardinality: RLE_DICTIONARY */
        assert_false(has_encoding(&f, r, 2, 8)); /* outgrew the dictionary: PLAIN */
    }
    assert_int_equal(rows, N);
    assert_int_equal(f.info.nrow_groups, rgs->nkids);
    assert_int_equal(f.info.cols[1].nulls, (N + 3) / 7);
    for (int i = 0; i < N; i++) {
        free(v[3 * i]);
        free(v[3 * i + 2]);
    }
    free(v);
    file_fini(&f);
    ice_schema_free(sc);
}

static void test_decimal_bytes(void **state)
{
    uint8_t b[16];
    assert_int_equal(lake_decimal_min_bytes(0, b), 1);
    assert_int_equal(b[0], 0);
    assert_int_equal(lake_decimal_min_bytes(127, b), 1);
    assert_int_equal(lake_decimal_min_bytes(128, b), 2);
    assert_int_equal(b[0], 0x00);
    assert_int_equal(b[1], 0x80);
    assert_int_equal(lake_decimal_min_bytes(-128, b), 1);
    assert_int_equal(b[0], 0x80);
    assert_int_equal(lake_decimal_min_bytes(-129, b), 2);
    assert_int_equal(b[0], 0xff);
    assert_int_equal(b[1], 0x7f);
    __int128 big = (__int128)1 << 100;
    assert_int_equal(lake_decimal_min_bytes(big, b), 13);
    assert_int_equal(b[0], 0x10);
    assert_int_equal(lake_decimal_fixed_len(1), 1);
    assert_int_equal(lake_decimal_fixed_len(2), 1);
    assert_int_equal(lake_decimal_fixed_len(3), 2);
    assert_int_equal(lake_decimal_fixed_len(10), 5);
    assert_int_equal(lake_decimal_fixed_len(18), 8);
    assert_int_equal(lake_decimal_fixed_len(19), 9);
    assert_int_equal(lake_decimal_fixed_len(38), 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rle_run_bytes),
        cmocka_unit_test(test_rle_bitpacked_bytes),
        cmocka_unit_test(test_rle_mixed_roundtrips),
        cmocka_unit_test(test_rle_u8_long_levels),
        cmocka_unit_test(test_rle_decode_rejects),
        cmocka_unit_test(test_bit_width),
        cmocka_unit_test(test_pack_bools),
        cmocka_unit_test(test_codecs_roundtrip),
        cmocka_unit_test(test_stats_signed_ints),
        cmocka_unit_test(test_stats_unsigned_strings_and_uuid),
        cmocka_unit_test(test_stats_decimals),
        cmocka_unit_test(test_stats_floats_nan_and_zero),
        cmocka_unit_test(test_null_only_column),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_schema_annotations),
        cmocka_unit_test(test_bad_rows_roll_back),
        cmocka_unit_test(test_row_groups_and_dictionary_fallback),
        cmocka_unit_test(test_decimal_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
