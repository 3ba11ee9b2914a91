/* libFuzzer target for the Parquet reader (what scans, compaction and the
 * Iceberg sink read back): arbitrary bytes are refused or decoded, never a
 * crash or a runaway allocation (decoded data is capped).  A file that
 * decodes whole is written again with cdc's writer from the values read,
 * and reading that copy must give the same values (by their key form),
 * column by column. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lake/lake_value.h"
#include "lake/parquet_reader.h"
#include "lake/parquet_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_COLS 64

/* Decodes row group g of every column into d; false if any fails. */
static bool read_all(struct parquet_reader *rd, uint32_t g, struct parquet_column_data *d,
                     uint32_t n)
{
    char err[256];
    bool ok = true;
    for (uint32_t c = 0; c < n; c++)
        if (parquet_reader_read(rd, g, c, &d[c], err, sizeof err) != 0)
            ok = false;
    return ok;
}

static void fini_all(struct parquet_column_data *d, uint32_t n)
{
    for (uint32_t c = 0; c < n; c++)
        parquet_column_data_fini(&d[c]);
}

/* The key form of every value of the file, in order. */
static bool keys_of(struct parquet_reader *rd, struct buf *out)
{
    const struct ice_schema *sc = parquet_reader_schema(rd);
    uint32_t n = sc->nfields;
    if (n > MAX_COLS)
        return false;
    struct parquet_column_data d[MAX_COLS];
    bool ok = true;
    for (uint32_t g = 0; ok && g < parquet_reader_row_groups(rd); g++) {
        ok = read_all(rd, g, d, n);
        for (int64_t r = 0; ok && r < parquet_reader_rg_rows(rd, g); r++)
            for (uint32_t c = 0; c < n; c++) {
                lake_value_key(&sc->fields[c], &d[c], r, out);
                struct buf txt = BUF_INIT;
                if (!parquet_data_null(&d[c], r))
                    lake_value_text(&sc->fields[c], &d[c], r, &txt);
                buf_fini(&txt);
            }
        fini_all(d, n);
    }
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct parquet_reader *rd;
    char err[256];
    struct parquet_reader_opts ro = {.max_bytes = 16u << 20};
    if (parquet_reader_open(&rd, data, size, &ro, "fuzz", err, sizeof err) != 0)
        return 0;
    struct buf keys = BUF_INIT, again = BUF_INIT, copy = BUF_INIT;
    const struct ice_schema *sc = parquet_reader_schema(rd);
    uint32_t n = sc->nfields;
    struct parquet_writer *pw = NULL;
    if (keys_of(rd, &keys) && n > 0 && parquet_reader_rows(rd) < 100000 &&
        parquet_writer_new(&pw, sc, NULL, parquet_write_to_buf, &copy, err, sizeof err) == 0) {
        struct parquet_column_data d[MAX_COLS];
        bool ok = true;
        for (uint32_t g = 0; ok && g < parquet_reader_row_groups(rd); g++) {
            ok = read_all(rd, g, d, n);
            for (int64_t r = 0; ok && r < parquet_reader_rg_rows(rd, g); r++) {
                for (uint32_t c = 0; c < n; c++)
                    lake_value_add(pw, c, &sc->fields[c], &d[c], r);
                /* a NULL in a required column or a fixed value of
                 * another length: the writer refuses the row */
                ok = parquet_end_row(pw, err, sizeof err) == 0;
            }
            fini_all(d, n);
        }
        struct parquet_file_info info;
        if (ok && parquet_writer_finish(pw, &info, err, sizeof err) == 0) {
            parquet_file_info_fini(&info);
            struct parquet_reader *rd2;
            if (parquet_reader_open(&rd2, copy.p, copy.len, NULL, "copy", err, sizeof err) != 0)
                __builtin_trap();
            if (!keys_of(rd2, &again) || again.len != keys.len ||
                memcmp(again.p, keys.p, keys.len) != 0)
                __builtin_trap();
            parquet_reader_free(rd2);
        }
        parquet_writer_free(pw);
    }
    buf_fini(&keys);
    buf_fini(&again);
    buf_fini(&copy);
    parquet_reader_free(rd);
    return 0;
}
