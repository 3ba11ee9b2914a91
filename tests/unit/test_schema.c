/* The schema history: the type comparison and the shape classifier
 * (schema/schema_diff.h), the store's schema tables (a version and its
 * columns survive a reopen), and schemahist_observe (a new shape makes a
 * version, a shape seen again does not, also after a restart and in a
 * replay from before a recorded change; an incompatible version is refused
 * and held under stop_on_incompatible_schema until a history without it
 * lets it through). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <unistd.h>

#include "schema/schema_diff.h"
#include "schema/schema_hist.h"
#include "schema/schema_json.h"
#include "state/store.h"
#include "util/err.h"
#include "util/mem.h"

/* ---------- fixtures ---------- */

struct col {
    const char *name, *type;
    bool key, not_null, has_default;
    int16_t attnum;
};

static struct cdc_table *shape(const struct col *cols, uint16_t n)
{
    struct cdc_table *tab = cdc_table_new(16384, "public", "items", "cdc", n);
    for (uint16_t i = 0; i < n; i++) {
        tab->cols[i].name = xstrdup(cols[i].name);
        tab->cols[i].type_name = xstrdup(cols[i].type);
        tab->cols[i].key = cols[i].key;
        tab->cols[i].not_null = cols[i].not_null;
        tab->cols[i].has_default = cols[i].has_default;
        tab->cols[i].attnum = cols[i].attnum;
    }
    cdc_table_finish(tab);
    tab->key_unique = tab->nkeys > 0;
    return tab;
}

#define SHAPE(...)                                                                                 \
    shape((const struct col[]){__VA_ARGS__},                                                       \
          sizeof((const struct col[]){__VA_ARGS__}) / sizeof(struct col))

static const struct col C_ID = {"id", "integer", true, true, false, 1};
static const struct col C_QTY = {"qty", "integer", false, false, false, 2};
static const struct col C_NAME = {"name", "character varying(10)", false, false, false, 3};

static struct cdc_table *base(void)
{
    return SHAPE(C_ID, C_QTY, C_NAME);
}

/* The differences from a to b as "column:change:compatible;…"; frees both. */
static char *diff_text(struct cdc_table *a, struct cdc_table *b, bool *compatible)
{
    struct schema_change *ch;
    size_t n;
    *compatible = schema_diff(a, b, &ch, &n);
    char *out = xcalloc(1, 1024);
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), 1024 - strlen(out), "%s%s:%s:%d", i ? ";" : "", ch[i].column,
                 schema_change_kind_name(ch[i].kind), ch[i].compatible);
    free(ch);
    cdc_table_unref(a);
    cdc_table_unref(b);
    return out;
}

#define EXPECT_DIFF(a, b, want_compat, want)                                                       \
    do {                                                                                           \
        bool compat_;                                                                              \
        char *got_ = diff_text(a, b, &compat_);                                                    \
        assert_string_equal(got_, want);                                                           \
        assert_int_equal(compat_, want_compat);                                                    \
        free(got_);                                                                                \
    } while (0)

/* ---------- types ---------- */

static void test_type_cmp(void **state)
{
    (void)state;
    static const struct {
        const char *from, *to;
        int want;
    } cases[] = {
        {"integer", "integer", 0},
        {"smallint", "integer", 1},
        {"integer", "bigint", 1},
        {"int", "bigint", 1},
        {"bigint", "integer", -1},
        {"tinyint", "smallint", 1},
        {"int unsigned", "bigint", 1},
        {"int unsigned", "int", -1},
        {"int", "int unsigned", -1},
        {"integer", "numeric", 1},
        {"integer", "numeric(12,2)", 1},
        {"integer", "numeric(10,2)", -1},
        {"bigint", "numeric(19,0)", 1},
        {"numeric(10,2)", "numeric(12,2)", 1},
        {"numeric(10,2)", "numeric(12,4)", 1},
        {"numeric(10,2)", "numeric(10,4)", -1},
        {"numeric(10,2)", "numeric", 1},
        {"numeric", "numeric(30,10)", -1},
        {"numeric(10,2)", "integer", -1},
        {"real", "double precision", 1},
        {"double precision", "real", -1},
        {"character varying(10)", "character varying(50)", 1},
        {"character varying(50)", "character varying(5)", -1},
        {"character varying(10)", "text", 1},
        {"character varying(10)", "character varying", 1},
        {"text", "character varying(10)", -1},
        {"varchar(20)", "varchar(255)", 1},
        {"varchar(20)", "mediumtext", 1},
        {"character(4)", "character varying(4)", 1},
        {"varbinary(16)", "varbinary(32)", 1},
        {"varbinary(16)", "blob", 1},
        {"bytea", "varbinary(16)", -1},
        {"integer", "text", 2},
        {"text", "integer", 2},
        {"timestamp without time zone", "timestamp with time zone", 2},
        {"uuid", "text", 2},
        {"integer", "real", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int got = schema_type_cmp(cases[i].from, cases[i].to);
        if (got != cases[i].want)
            fail_msg("%s -> %s: got %d, want %d", cases[i].from, cases[i].to, got, cases[i].want);
    }
}

/* ---------- shapes ---------- */

static void test_same_shape(void **state)
{
    (void)state;
    struct cdc_table *a = base(), *b = base();
    assert_true(schema_same_shape(a, b));
    /* what does not make a version: catalog facts beside the shape */
    b->cols[1].attnum = 9;
    b->cols[1].not_null = true;
    b->cols[1].has_default = true;
    assert_true(schema_same_shape(a, b));
    b->cols[2].key = true;
    assert_false(schema_same_shape(a, b));
    cdc_table_unref(b);
    b = base();
    b->key_unique = false;
    assert_false(schema_same_shape(a, b));
    cdc_table_unref(b);
    b = SHAPE(C_ID, C_QTY, {"name", "character varying(11)", false, false, false, 3});
    assert_false(schema_same_shape(a, b));
    cdc_table_unref(a);
    cdc_table_unref(b);
}

static void test_diff(void **state)
{
    (void)state;
    /* added: nullable, defaulted, NOT NULL without a default */
    EXPECT_DIFF(base(), SHAPE(C_ID, C_QTY, C_NAME, {"extra", "integer", false, false, false, 4}),
                true, "extra:added:1");
    EXPECT_DIFF(base(), SHAPE(C_ID, C_QTY, C_NAME, {"flag", "boolean", false, true, true, 4}), true,
                "flag:added:1");
    EXPECT_DIFF(base(), SHAPE(C_ID, C_QTY, C_NAME, {"flag", "boolean", false, true, false, 4}),
                false, "flag:added:0");
    /* widened, narrowed, retyped */
    EXPECT_DIFF(base(),
                SHAPE(C_ID, {"qty", "bigint", false, false, false, 2},
                      {"name", "text", false, false, false, 3}),
                true, "qty:widened:1;name:widened:1");
    EXPECT_DIFF(base(),
                SHAPE(C_ID, C_QTY, {"name", "character varying(5)", false, false, false, 3}), false,
                "name:narrowed:0");
    EXPECT_DIFF(base(), SHAPE(C_ID, {"qty", "text", false, false, false, 2}, C_NAME), false,
                "qty:retyped:0");
    /* dropped */
    EXPECT_DIFF(base(), SHAPE(C_ID, C_NAME), false, "qty:dropped:0");
    /* renamed: by attnum, also with another column added */
    EXPECT_DIFF(base(), SHAPE(C_ID, {"amount", "integer", false, false, false, 2}, C_NAME), false,
                "qty:renamed:0");
    EXPECT_DIFF(base(),
                SHAPE(C_ID, {"amount", "integer", false, false, false, 2}, C_NAME,
                      {"extra", "integer", false, false, false, 4}),
                false, "qty:renamed:0;extra:added:1");
    /* renamed without column numbers: by place, in shapes of as many columns */
    EXPECT_DIFF(SHAPE({"id", "int", true, true, false, 0}, {"qty", "int", false, false, false, 0}),
                SHAPE({"id", "int", true, true, false, 0}, {"n", "int", false, false, false, 0}),
                false, "qty:renamed:0");
    /* without numbers and with another count: a drop and an add */
    EXPECT_DIFF(SHAPE({"id", "int", true, true, false, 0}, {"qty", "int", false, false, false, 0}),
                SHAPE({"id", "int", true, true, false, 0}, {"n", "int", false, false, false, 0},
                      {"m", "int", false, false, false, 0}),
                false, "qty:dropped:0;n:added:1;m:added:1");
    /* the key */
    EXPECT_DIFF(base(), SHAPE(C_ID, {"qty", "integer", true, true, false, 2}, C_NAME), false,
                "id, qty:key_changed:0");
    /* a whole-row identity grows with its columns: no key change */
    struct cdc_table *full = SHAPE({"a", "int", true, false, false, 1});
    struct cdc_table *full2 =
        SHAPE({"a", "int", true, false, false, 1}, {"b", "int", true, false, false, 2});
    full->key_unique = full2->key_unique = false;
    EXPECT_DIFF(full, full2, true, "b:added:1");
}

static void test_changes_text_and_json(void **state)
{
    (void)state;
    struct cdc_table *a = base();
    struct cdc_table *b = SHAPE(C_ID, {"qty", "bigint", false, false, false, 2});
    struct schema_change *ch;
    size_t n;
    assert_false(schema_diff(a, b, &ch, &n));
    struct buf t = BUF_INIT, j = BUF_INIT;
    schema_changes_text(&t, ch, n);
    schema_changes_json(&j, ch, n);
    assert_string_equal(t.p, "column name dropped; column qty widened integer -> bigint");
    assert_string_equal(j.p, "[{\"column\":\"name\",\"change\":\"dropped\",\"from\":"
                             "\"character varying(10)\",\"to\":\"\",\"compatible\":false},"
                             "{\"column\":\"qty\",\"change\":\"widened\",\"from\":\"integer\","
                             "\"to\":\"bigint\",\"compatible\":true}]");
    buf_fini(&t);
    buf_fini(&j);
    free(ch);
    cdc_table_unref(a);
    cdc_table_unref(b);
}

/* ---------- the store ---------- */

struct tmp {
    char dir[64];
    char path[128];
};

static void tmp_make(struct tmp *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/test_schema.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/state.db", t->dir);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void tmp_remove(struct tmp *t)
{
    nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_ok(const char *path)
{
    struct store *st = NULL;
    char err[512];
    if (store_open(&st, path, err, sizeof err) != 0)
        fail_msg("store_open(%s): %s", path, err);
    return st;
}

struct got {
    size_t n;
    uint32_t versions[16];
    int compatible[16];
    bool held[16];
    struct cdc_pos pos[16];
    char json[4096];
};

static int collect(const struct schema_version *v, void *arg)
{
    struct got *g = arg;
    if (g->n < 16) {
        g->versions[g->n] = v->version;
        g->compatible[g->n] = v->compatible;
        g->held[g->n] = v->held;
        g->pos[g->n] = v->pos;
        struct buf b = BUF_INIT;
        schema_version_json(&b, v);
        snprintf(g->json, sizeof g->json, "%s", b.p);
        buf_fini(&b);
    }
    g->n++;
    return 0;
}

static struct got list_all(struct store *st, const char *schema, const char *name)
{
    struct got g;
    memset(&g, 0, sizeof g);
    char err[512];
    if (store_schema_list(st, schema, name, collect, &g, err, sizeof err) != 0)
        fail_msg("store_schema_list: %s", err);
    return g;
}

static void test_store_roundtrip(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    struct store *st = open_ok(t.path);
    char err[512];
    struct schema_version v = {.version = 1,
                               .pos = {.lsn = 0x16B3748, .idx = 2, .stream = 0},
                               .compatible = -1,
                               .changes = xstrdup("[]"),
                               .summary = xstrdup(""),
                               .shape = base()};
    assert_int_equal(store_schema_add(st, &v, err, sizeof err), 0);
    /* the same version again is refused */
    assert_int_equal(store_schema_add(st, &v, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "public.items"));
    schema_version_fini(&v);
    store_close(st);

    st = open_ok(t.path);
    struct got g = list_all(st, "public", "items");
    assert_int_equal(g.n, 1);
    assert_int_equal(g.versions[0], 1);
    assert_int_equal(g.compatible[0], -1);
    assert_int_equal(g.pos[0].lsn, 0x16B3748);
    assert_int_equal(g.pos[0].idx, 2);
    assert_non_null(strstr(g.json, "\"table\":\"public.items\",\"version\":1,\"position\":"
                                   "\"0/16B3748:2\""));
    assert_non_null(strstr(g.json, "\"compatible\":null,\"held\":false"));
    assert_non_null(strstr(g.json, "{\"name\":\"id\",\"type\":\"integer\",\"key\":true,"
                                   "\"not_null\":true,\"has_default\":false}"));
    assert_int_equal(list_all(st, "public", "other").n, 0);
    assert_int_equal(list_all(st, NULL, NULL).n, 1);
    store_close(st);
    tmp_remove(&t);
}

/* ---------- the history ---------- */

static int observe(struct schemahist *h, struct cdc_table *tab, uint64_t lsn, char *err,
                   size_t errlen)
{
    return schemahist_observe(h, tab, (struct cdc_pos){.lsn = lsn}, err, errlen);
}

static void test_history(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    struct store *st = open_ok(t.path);
    char err[1024];
    struct schemahist *h = schemahist_new(st, false);
    struct cdc_table *v1 = base();
    v1->version = 77; /* what a source may have set: the history decides */
    assert_int_equal(observe(h, v1, 100, err, sizeof err), 0);
    assert_int_equal(v1->version, 1);
    /* the same table object again: nothing to do */
    assert_int_equal(observe(h, v1, 110, err, sizeof err), 0);
    /* the same shape in another object (a reconnect): the same version */
    struct cdc_table *again = base();
    assert_int_equal(observe(h, again, 120, err, sizeof err), 0);
    assert_int_equal(again->version, 1);
    struct cdc_table *v2 = SHAPE(C_ID, {"qty", "bigint", false, false, false, 2}, C_NAME);
    assert_int_equal(observe(h, v2, 200, err, sizeof err), 0);
    assert_int_equal(v2->version, 2);
    struct cdc_table *v3 = SHAPE(C_ID, {"qty", "bigint", false, false, false, 2});
    assert_int_equal(observe(h, v3, 300, err, sizeof err), 0); /* incompatible, not stopping */
    assert_int_equal(v3->version, 3);
    schemahist_free(h);
    struct got g = list_all(st, NULL, NULL);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.compatible[1], 1);
    assert_int_equal(g.compatible[2], 0);
    assert_false(g.held[2]);

    /* a restart replaying from before the changes: the versions recorded,
     * each where it took effect; nothing new */
    h = schemahist_new(st, false);
    struct cdc_table *r1 = base(),
                     *r2 = SHAPE(C_ID, {"qty", "bigint", false, false, false, 2}, C_NAME),
                     *r3 = SHAPE(C_ID, {"qty", "bigint", false, false, false, 2});
    assert_int_equal(observe(h, r1, 150, err, sizeof err), 0);
    assert_int_equal(r1->version, 1);
    assert_int_equal(observe(h, r2, 200, err, sizeof err), 0);
    assert_int_equal(r2->version, 2);
    assert_int_equal(observe(h, r3, 300, err, sizeof err), 0);
    assert_int_equal(r3->version, 3);
    /* the table changed back to an earlier shape later on: a new version */
    struct cdc_table *r4 = base();
    assert_int_equal(observe(h, r4, 400, err, sizeof err), 0);
    assert_int_equal(r4->version, 4);
    schemahist_free(h);
    assert_int_equal(list_all(st, NULL, NULL).n, 4);
    cdc_table_unref(v1);
    cdc_table_unref(again);
    cdc_table_unref(v2);
    cdc_table_unref(v3);
    cdc_table_unref(r1);
    cdc_table_unref(r2);
    cdc_table_unref(r3);
    cdc_table_unref(r4);
    store_close(st);
    tmp_remove(&t);
}

static void test_stop_on_incompatible(void **state)
{
    (void)state;
    struct store *st = open_ok(":memory:");
    char err[1024];
    struct schemahist *h = schemahist_new(st, true);
    struct cdc_table *v1 = base();
    assert_int_equal(observe(h, v1, 100, err, sizeof err), 0);
    /* compatible: through */
    struct cdc_table *v2 = SHAPE(C_ID, C_QTY, C_NAME, {"extra", "integer", false, false, false, 4});
    assert_int_equal(observe(h, v2, 200, err, sizeof err), 0);
    assert_int_equal(v2->version, 2);
    /* incompatible: refused, recorded as held, named */
    struct cdc_table *v3 = SHAPE(C_ID, C_NAME, {"extra", "integer", false, false, false, 4});
    assert_int_equal(observe(h, v3, 300, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "public.items"));
    assert_non_null(strstr(err, "column qty dropped"));
    assert_non_null(strstr(err, "stop_on_incompatible_schema"));
    assert_int_equal(v3->version, 0);
    /* refused again by the same history, and by the next run's */
    assert_int_equal(observe(h, v3, 300, err, sizeof err), CDC_EINVAL);
    schemahist_free(h);
    h = schemahist_new(st, true);
    struct cdc_table *again = SHAPE(C_ID, C_NAME, {"extra", "integer", false, false, false, 4});
    assert_int_equal(observe(h, again, 300, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "version 3"));
    schemahist_free(h);
    struct got g = list_all(st, NULL, NULL);
    assert_int_equal(g.n, 3);
    assert_true(g.held[2]);
    /* a run with the setting off lets it through: the same version */
    h = schemahist_new(st, false);
    assert_int_equal(observe(h, again, 300, err, sizeof err), 0);
    assert_int_equal(again->version, 3);
    schemahist_free(h);
    g = list_all(st, NULL, NULL);
    assert_int_equal(g.n, 3);
    assert_false(g.held[2]);
    cdc_table_unref(v1);
    cdc_table_unref(v2);
    cdc_table_unref(v3);
    cdc_table_unref(again);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_cmp),
        cmocka_unit_test(test_same_shape),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_changes_text_and_json),
        cmocka_unit_test(test_store_roundtrip),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_stop_on_incompatible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
