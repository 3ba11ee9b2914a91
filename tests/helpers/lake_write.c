/* Test helper: writes Parquet files and Iceberg tables with src/lake so that
 * independent readers (tests/js, run by tests/integration/test_lake_formats.py)
 * can check them.
 *
 *   lake_write parquet SPEC.json OUT.parquet
 *       SPEC: {"codec":"zstd"|"snappy"|"none", "row_group_bytes":N,
 *              "page_bytes":N, "dict_max_bytes":N, "dictionary":true,
 *              "table":"name for messages", "schema":{Iceberg schema},
 *              "rows":[[text|null, …], …]}  (values as PostgreSQL prints them)
 *       prints the file's Iceberg metrics as JSON.
 *   lake_write gen N CODEC OUT.parquet
 *       writes N rows of the benchmark table (see gen_row) and prints rows/s
 *       of the writer alone.
 *   lake_write table SPEC.json
 *       runs the table operations of SPEC (see lake_table.c's comment). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/jsonread.h"
#include "lake/ice_schema.h"
#include "lake/parquet_writer.h"
#include "util/buf.h"
#include "util/err.h"

#include "lake/lake_helper.h"

int lake_read_file(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_put(b, tmp, n);
    fclose(f);
    return 0;
}

static int write_file_cb(void *arg, const void *data, size_t n, char *err, size_t errlen)
{
    if (fwrite(data, 1, n, arg) != n)
        return cdc_fail(err, errlen, CDC_EIO, "write failed");
    return 0;
}

enum parquet_codec lake_codec(const char *s)
{
    if (s && strcmp(s, "zstd") == 0)
        return PARQUET_ZSTD;
    if (s && strcmp(s, "snappy") == 0)
        return PARQUET_SNAPPY;
    return PARQUET_UNCOMPRESSED;
}

static void hex(struct buf *b, const struct buf *v)
{
    for (size_t i = 0; i < v->len; i++)
        buf_printf(b, "%02x", (unsigned char)v->p[i]);
}

void lake_print_info(const struct parquet_file_info *info)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "{\"rows\":%lld,\"size\":%lld,\"row_groups\":%u,\"columns\":[",
               (long long)info->rows, (long long)info->size, info->nrow_groups);
    for (uint32_t i = 0; i < info->ncols; i++) {
        const struct parquet_col_metrics *m = &info->cols[i];
        buf_printf(&b, "%s{\"id\":%d,\"values\":%lld,\"nulls\":%lld,\"nans\":%lld,\"size\":%lld",
                   i ? "," : "", m->field_id, (long long)m->values, (long long)m->nulls,
                   (long long)m->nans, (long long)m->size);
        if (m->has_bounds) {
            buf_puts(&b, ",\"lower\":\"");
            hex(&b, &m->lower);
            buf_puts(&b, "\",\"upper\":\"");
            hex(&b, &m->upper);
            buf_puts(&b, "\"");
        }
        buf_puts(&b, "}");
    }
    buf_puts(&b, "]}\n");
    fputs(b.p, stdout);
    buf_fini(&b);
}

/* Adds the rows of a JSON array of arrays of strings/nulls. */
int lake_add_rows(struct parquet_writer *pw, const struct jsonv *rows, char *err, size_t errlen)
{
    for (size_t r = 0; rows && r < rows->n; r++) {
        const struct jsonv *row = &rows->items[r];
        for (size_t c = 0; c < row->n; c++) {
            const struct jsonv *v = &row->items[c];
            if (v->t == JSONV_NULL) {
                parquet_add_null(pw, (uint32_t)c);
            } else if (v->t == JSONV_STR) {
                int rc = parquet_add_text(pw, (uint32_t)c, v->s, strlen(v->s), err, errlen);
                if (rc < 0)
                    return rc;
            } else {
                return cdc_fail(err, errlen, CDC_EINVAL, "row %zu: values must be strings", r);
            }
        }
        int rc = parquet_end_row(pw, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmd_parquet(const char *spec_path, const char *out_path)
{
    char err[512] = "";
    struct buf spec = BUF_INIT;
    struct jsonv doc;
    if (lake_read_file(spec_path, &spec) < 0 || jsonread_parse(spec.p, spec.len, &doc) < 0) {
        fprintf(stderr, "lake_write: cannot read %s\n", spec_path);
        return 2;
    }
    struct ice_schema *sc = NULL;
    if (ice_schema_from_json(jsonv_get(&doc, "schema"), &sc, err, sizeof err) < 0) {
        fprintf(stderr, "lake_write: %s\n", err);
        return 2;
    }
    struct parquet_opts o = {
        .codec = lake_codec(jsonv_str(&doc, "codec", "none")),
        .row_group_bytes = (size_t)jsonv_num(&doc, "row_group_bytes", 0),
        .page_bytes = (size_t)jsonv_num(&doc, "page_bytes", 0),
        .dict_max_bytes = (size_t)jsonv_num(&doc, "dict_max_bytes", 0),
        .no_dictionary = jsonv_get(&doc, "dictionary") && !jsonv_get(&doc, "dictionary")->b,
        .label = jsonv_str(&doc, "table", "t"),
    };
    FILE *f = fopen(out_path, "wb");
    struct parquet_writer *pw = NULL;
    struct parquet_file_info info;
    int rc = f ? 0 : CDC_EIO;
    if (!rc)
        rc = parquet_writer_new(&pw, sc, &o, write_file_cb, f, err, sizeof err);
    if (!rc)
        rc = lake_add_rows(pw, jsonv_get(&doc, "rows"), err, sizeof err);
    if (!rc && (rc = parquet_writer_finish(pw, &info, err, sizeof err)) == 0) {
        lake_print_info(&info);
        parquet_file_info_fini(&info);
    }
    parquet_writer_free(pw);
    if (f && fclose(f) != 0 && !rc)
        rc = CDC_EIO;
    ice_schema_free(sc);
    jsonv_free(&doc);
    buf_fini(&spec);
    if (rc < 0) {
        fprintf(stderr, "lake_write: %s\n", err[0] ? err : "failed");
        return 1;
    }
    return 0;
}

/* The benchmark table: the same rows tests/js/bench_duckdb.mjs makes with SQL. */
struct ice_schema *lake_bench_schema(void)
{
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "id", ICE_LONG, true);
    ice_schema_add(sc, 2, "name", ICE_STRING, false);
    struct ice_field *f = ice_schema_add(sc, 3, "amount", ICE_DECIMAL, false);
    f->precision = 12;
    f->scale = 2;
    ice_schema_add(sc, 4, "ts", ICE_TIMESTAMPTZ, false);
    ice_schema_add(sc, 5, "flag", ICE_BOOLEAN, false);
    ice_schema_add(sc, 6, "qty", ICE_INT, false);
    ice_schema_add_identifier(sc, 1);
    return sc;
}

/* Row i as canonical PostgreSQL text, so the benchmark includes conversion:
 * id = i, name = 'customer-' || (i % 5000), amount = (i * 37 % 1000000) / 100,
 * ts = 2024-01-01 00:00:00+00 + i seconds, flag = i % 3 = 0, qty = i % 100,
 * and name is NULL when i % 10 = 7. */
static int gen_row(struct parquet_writer *pw, int64_t i, char *err, size_t errlen)
{
    char t[64];
    int n = snprintf(t, sizeof t, "%lld", (long long)i);
    int rc = parquet_add_text(pw, 0, t, (size_t)n, err, errlen);
    if (i % 10 == 7) {
        parquet_add_null(pw, 1);
    } else {
        n = snprintf(t, sizeof t, "customer-%lld", (long long)(i % 5000));
        rc |= parquet_add_text(pw, 1, t, (size_t)n, err, errlen);
    }
    int64_t cents = i * 37 % 1000000;
    n = snprintf(t, sizeof t, "%lld.%02lld", (long long)(cents / 100), (long long)(cents % 100));
    rc |= parquet_add_text(pw, 2, t, (size_t)n, err, errlen);
    time_t secs = 1704067200 + (time_t)i;
    struct tm tm;
    gmtime_r(&secs, &tm);
    n = (int)strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S+00", &tm);
    rc |= parquet_add_text(pw, 3, t, (size_t)n, err, errlen);
    rc |= parquet_add_text(pw, 4, i % 3 == 0 ? "t" : "f", 1, err, errlen);
    n = snprintf(t, sizeof t, "%lld", (long long)(i % 100));
    rc |= parquet_add_text(pw, 5, t, (size_t)n, err, errlen);
    return rc ? CDC_EINVAL : parquet_end_row(pw, err, errlen);
}

static int cmd_gen(long long nrows, const char *codec, const char *out_path)
{
    char err[512] = "";
    struct ice_schema *sc = lake_bench_schema();
    struct parquet_opts o = {.codec = lake_codec(codec), .label = "bench"};
    struct buf file = BUF_INIT;
    struct parquet_writer *pw = NULL;
    struct parquet_file_info info;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = parquet_writer_new(&pw, sc, &o, parquet_write_to_buf, &file, err, sizeof err);
    for (long long i = 0; !rc && i < nrows; i++)
        rc = gen_row(pw, i, err, sizeof err);
    if (!rc)
        rc = parquet_writer_finish(pw, &info, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    parquet_writer_free(pw);
    ice_schema_free(sc);
    if (rc < 0) {
        fprintf(stderr, "lake_write: %s\n", err);
        buf_fini(&file);
        return 1;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    FILE *f = fopen(out_path, "wb");
    if (!f || fwrite(file.p, 1, file.len, f) != file.len || fclose(f) != 0) {
        fprintf(stderr, "lake_write: cannot write %s\n", out_path);
        buf_fini(&file);
        return 1;
    }
    printf("{\"rows\":%lld,\"bytes\":%lld,\"seconds\":%.3f,\"rows_per_s\":%.0f}\n",
           (long long)info.rows, (long long)info.size, secs, (double)info.rows / secs);
    parquet_file_info_fini(&info);
    buf_fini(&file);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "parquet") == 0)
        return cmd_parquet(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return cmd_gen(atoll(argv[2]), argv[3], argv[4]);
    if (argc == 3 && strcmp(argv[1], "table") == 0)
        return lake_table_main(argv[2]);
    fprintf(stderr,
            "usage: lake_write parquet SPEC.json OUT | gen N CODEC OUT | table SPEC.json\n");
    return 2;
}
