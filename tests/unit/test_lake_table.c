/* Unit tests for table-level operations of src/lake on a local warehouse
 * (file:// store, filesystem catalog, in a temporary directory): scans with
 * equality and position deletes applied and time travel (ice_scan.c),
 * schema evolution (ice_evolve.c: a new schema version, old files reading
 * NULL for the new column, the metadata as stored), and compaction
 * (ice_compact.c: rows kept, delete files dropped, the data sequence number
 * of the snapshot read, carried summary properties).  icebird and DuckDB
 * read the same kinds of tables in tests/integration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lake/ice_catalog.h"
#include "lake/ice_maint.h"
#include "lake/ice_scan.h"
#include "lake/ice_table.h"
#include "lake/ice_writer.h"
#include "lake/lake_store.h"
#include "lake/lake_value.h"
#include "util/buf.h"
#include "util/err.h"

struct env {
    char dir[64];
    struct lake_store *st;
    struct ice_catalog *cat;
    struct ice_table *t;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/cdc-lake-unit-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    char wh[128], err[256];
    snprintf(wh, sizeof wh, "file://%s", e->dir);
    assert_int_equal(lake_store_open(wh, NULL, &e->st, err, sizeof err), 0);
    assert_int_equal(ice_catalog_fs_open(e->st, wh, &e->cat, err, sizeof err), 0);
    struct ice_schema *sc = ice_schema_new(0);
    ice_schema_add(sc, 1, "id", ICE_LONG, true);
    ice_schema_add(sc, 2, "v", ICE_STRING, false);
    ice_schema_add_identifier(sc, 1);
    struct ice_spec *sp = ice_spec_new(0);
    assert_int_equal(ice_table_create(e->cat, "db", "t", sc, sp, NULL, 0, &e->t, err, sizeof err),
                     0);
    ice_schema_free(sc);
    ice_spec_free(sp);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    ice_table_free(e->t);
    ice_catalog_free(e->cat);
    lake_store_free(e->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", e->dir);
    free(e);
    return 0;
}

/* Writes rows ("id", "v" or NULL pairs; for delete files the key or the
 * (path, pos) pair) of schema sc into a new file of the table. */
static void write_rows(struct env *e, const struct ice_schema *sc, enum ice_content content,
                       const char *const *rows, size_t n, struct ice_data_file *df)
{
    struct ice_file_writer w;
    struct parquet_opts o = {.codec = PARQUET_ZSTD};
    char err[256];
    assert_int_equal(ice_file_writer_open(&w, e->t, sc, &o, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t c = 0; c < sc->nfields; c++) {
            const char *v = rows[i * sc->nfields + c];
            if (v)
                assert_int_equal(parquet_add_text(w.pw, c, v, strlen(v), err, sizeof err), 0);
            else
                parquet_add_null(w.pw, c);
        }
        assert_int_equal(parquet_end_row(w.pw, err, sizeof err), 0);
    }
    assert_int_equal(ice_file_writer_finish(&w, content, NULL, 0, df, err, sizeof err), 0);
}

struct collect {
    struct buf out; /* "id=v;" per live row, in scan order */
};

static int on_rows(void *arg, const struct ice_rows *rs)
{
    struct collect *c = arg;
    for (int64_t k = 0; k < rs->n; k++) {
        for (uint32_t i = 0; i < rs->ncols; i++) {
            const struct parquet_column_data *d = rs->cols[i];
            if (i)
                buf_putc(&c->out, '=');
            if (!d || parquet_data_null(d, rs->idx[k]))
                buf_puts(&c->out, "NULL");
            else {
                struct ice_field f = {.type = d->width ? ICE_LONG : ICE_STRING};
                lake_value_text(&f, d, rs->idx[k], &c->out);
            }
        }
        buf_putc(&c->out, ';');
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rows of "r1;r2;…" sorted, in place. */
static void sort_rows(char *s)
{
    char *parts[64], *save = NULL;
    size_t n = 0;
    char *copy = strdup(s);
    for (char *p = strtok_r(copy, ";", &save); p && n < 64; p = strtok_r(NULL, ";", &save))
        parts[n++] = p;
    qsort(parts, n, sizeof *parts, cmp_str);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(s, parts[i]);
        strcat(s, ";");
    }
    free(copy);
}

/* The table's rows as of a snapshot (< 0: current), "id=v;…" sorted. */
static char *scan(struct env *e, int64_t snapshot)
{
    struct ice_scan *s;
    char err[256];
    assert_int_equal(ice_scan_open(e->t, snapshot, &s, err, sizeof err), 0);
    struct collect c = {BUF_INIT};
    buf_puts(&c.out, "");
    for (size_t i = 0; i < ice_scan_ndata(s); i++)
        assert_int_equal(ice_scan_file(s, i, on_rows, &c, err, sizeof err), 0);
    ice_scan_free(s);
    sort_rows(c.out.p);
    return c.out.p;
}

static int64_t commit(struct env *e, struct ice_data_file *data, size_t nd,
                      struct ice_data_file *dels, size_t nx, const char *pos)
{
    struct ice_kv kv = {"cdc.position", (char *)pos};
    struct ice_change c = {.data = data,
                           .ndata = nd,
                           .deletes = dels,
                           .ndeletes = nx,
                           .data_seq = -1,
                           .props = &kv,
                           .nprops = 1};
    int64_t id;
    char err[256];
    assert_int_equal(ice_table_commit(e->t, &c, &id, err, sizeof err), 0);
    for (size_t i = 0; i < nd; i++)
        ice_data_file_fini(&data[i]);
    for (size_t i = 0; i < nx; i++)
        ice_data_file_fini(&dels[i]);
    return id;
}

/* Two appends, then a row delta with an equality delete of ids 1 and 3
 * and a position delete of the delta's own first row (a key written twice
 * in one batch). */
static int64_t fill(struct env *e, int64_t *first)
{
    /* the schema as of now: each commit replaces the table's metadata */
#define SC ice_meta_schema(e->t->meta)
    const char *r1[] = {"1", "a", "2", "b", "3", NULL};
    const char *r2[] = {"4", "d"};
    struct ice_data_file f[2], x[2];
    write_rows(e, SC, ICE_CONTENT_DATA, r1, 3, &f[0]);
    *first = commit(e, f, 1, NULL, 0, "0/A:end");
    write_rows(e, SC, ICE_CONTENT_DATA, r2, 1, &f[0]);
    commit(e, f, 1, NULL, 0, "0/B:end");
    const char *r3[] = {"3", "c-old", "3", "c", "5", "e"};
    write_rows(e, SC, ICE_CONTENT_DATA, r3, 3, &f[0]);
#undef SC
    struct ice_schema *eq = ice_schema_new(0);
    ice_schema_add(eq, 1, "id", ICE_LONG, true);
    const char *k[] = {"1", "3"};
    write_rows(e, eq, ICE_CONTENT_EQ_DELETES, k, 2, &x[0]);
    x[0].neq = 1;
    x[0].eq_ids = calloc(1, sizeof *x[0].eq_ids);
    x[0].eq_ids[0] = 1;
    ice_schema_free(eq);
    struct ice_schema *ps = ice_schema_new(0);
    ice_schema_add(ps, ICE_POS_FILE_PATH_ID, "file_path", ICE_STRING, true);
    ice_schema_add(ps, ICE_POS_POS_ID, "pos", ICE_LONG, true);
    const char *pd[] = {f[0].path, "0"};
    write_rows(e, ps, ICE_CONTENT_POS_DELETES, pd, 1, &x[1]);
    ice_schema_free(ps);
    return commit(e, f, 1, x, 2, "0/C:end");
}

static void test_scan_applies_deletes_and_time_travel(void **state)
{
    struct env *e = *state;
    int64_t first;
    fill(e, &first);
    char *rows = scan(e, -1);
    /* 1 and the old 3 deleted by key; the delta's "3=c-old" by position;
     * the delta's own 3 and 5 are newer than the equality delete's reach */
    assert_string_equal(rows, "2=b;3=c;4=d;5=e;");
    free(rows);
    rows = scan(e, first);
    assert_string_equal(rows, "1=a;2=b;3=NULL;");
    free(rows);
    struct ice_scan *s;
    char err[256];
    assert_int_equal(ice_scan_open(e->t, 12345, &s, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "no snapshot 12345"));
}

static void test_add_columns(void **state)
{
    struct env *e = *state;
    int64_t first;
    fill(e, &first);
    char err[256];
    struct ice_field add[2] = {
        {.name = "extra", .type = ICE_INT},
        {.name = "amount", .type = ICE_DECIMAL, .precision = 10, .scale = 2}};
    assert_int_equal(ice_table_add_columns(e->t, add, 2, err, sizeof err), 0);
    assert_int_equal(add[0].id, 3);
    assert_int_equal(add[1].id, 4);
    const struct ice_schema *sc = ice_meta_schema(e->t->meta);
    assert_int_equal(sc->schema_id, 1);
    assert_int_equal(sc->nfields, 4);
    assert_int_equal(sc->nident, 1);
    assert_int_equal(e->t->meta->last_column_id, 4);
    assert_int_equal(e->t->meta->nschemas, 2);
    /* a new file with the new column; old files read NULL for it */
    const char *r[] = {"9", "i", "77", "12.50"};
    struct ice_data_file f;
    write_rows(e, sc, ICE_CONTENT_DATA, r, 1, &f);
    commit(e, &f, 1, NULL, 0, "0/D:end");
    assert_int_equal(ice_meta_current(e->t->meta)->schema_id, 1);
    struct ice_scan *s;
    assert_int_equal(ice_scan_open(e->t, -1, &s, err, sizeof err), 0);
    assert_int_equal(ice_scan_schema(s)->nfields, 4);
    ice_scan_free(s);
    /* as stored: a fresh load sees the same */
    struct ice_table *t2;
    assert_int_equal(ice_table_load(e->cat, "db", "t", &t2, err, sizeof err), 0);
    assert_int_equal(t2->meta->current_schema_id, 1);
    assert_int_equal(ice_meta_schema(t2->meta)->fields[3].precision, 10);
    ice_table_free(t2);
    /* the first snapshot still scans with its own schema */
    char *rows = scan(e, first);
    assert_string_equal(rows, "1=a;2=b;3=NULL;");
    free(rows);
    /* refused: a name taken, a required column */
    struct ice_field dup = {.name = "v", .type = ICE_INT};
    assert_int_equal(ice_table_add_columns(e->t, &dup, 1, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "already has a column v"));
    struct ice_field req = {.name = "r", .type = ICE_INT, .required = true};
    assert_int_equal(ice_table_add_columns(e->t, &req, 1, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "must be optional"));
    /* a writer holding the old version loses the race */
    struct ice_table *stale;
    assert_int_equal(ice_table_load(e->cat, "db", "t", &stale, err, sizeof err), 0);
    struct ice_field a1 = {.name = "x1", .type = ICE_LONG}, a2 = {.name = "x2", .type = ICE_LONG};
    assert_int_equal(ice_table_add_columns(e->t, &a1, 1, err, sizeof err), 0);
    assert_int_equal(ice_table_add_columns(stale, &a2, 1, err, sizeof err), CDC_EAGAIN);
    ice_table_free(stale);
}

static void test_compaction(void **state)
{
    struct env *e = *state;
    int64_t first;
    int64_t delta = fill(e, &first);
    int64_t seq = ice_meta_snapshot(e->t->meta, delta)->seq;
    const char *carry[] = {"cdc.position"};
    struct ice_compact_opts o = {.min_files = 1,
                                 .target_bytes = 1 << 20,
                                 .codec = PARQUET_ZSTD,
                                 .carry = carry,
                                 .ncarry = 1};
    struct ice_compact_stats st;
    char err[256];
    assert_int_equal(ice_table_compact(e->t, &o, &st, err, sizeof err), 0);
    assert_int_equal(st.data_files, 3);
    assert_int_equal(st.delete_files, 2);
    assert_int_equal(st.new_files, 1);
    assert_int_equal(st.rows, 4);
    const struct ice_snapshot *cur = ice_meta_current(e->t->meta);
    assert_int_equal(cur->id, st.snapshot_id);
    assert_string_equal(ice_snapshot_get(cur, "operation"), "replace");
    assert_string_equal(ice_snapshot_get(cur, "cdc.position"), "0/C:end");
    assert_string_equal(ice_snapshot_get(cur, "total-delete-files"), "0");
    char *rows = scan(e, -1);
    assert_string_equal(rows, "2=b;3=c;4=d;5=e;");
    free(rows);
    struct ice_entry *f;
    size_t n;
    assert_int_equal(ice_table_files(e->t, -1, &f, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(f[0].seq, seq); /* the data sequence number it read */
    ice_entries_free(f, n);
    /* nothing more to do: no new snapshot */
    assert_int_equal(ice_table_compact(e->t, &o, &st, err, sizeof err), 0);
    assert_int_equal(st.snapshot_id, -1);
    assert_int_equal(ice_meta_current(e->t->meta)->id, cur->id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_applies_deletes_and_time_travel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
