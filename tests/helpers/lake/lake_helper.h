/* Shared by the lake_write test helper's files. */
#ifndef CDC_TESTS_LAKE_HELPER_H
#define CDC_TESTS_LAKE_HELPER_H

#include "core/jsonread.h"
#include "lake/parquet_writer.h"
#include "util/buf.h"

int lake_read_file(const char *path, struct buf *b);
enum parquet_codec lake_codec(const char *s);
void lake_print_info(const struct parquet_file_info *info);
int lake_add_rows(struct parquet_writer *pw, const struct jsonv *rows, char *err, size_t errlen);
struct ice_schema *lake_bench_schema(void);
/* `lake_write table SPEC.json` */
int lake_table_main(const char *spec_path);

#endif
