/* State store: every function on a file and in memory, persistence across
 * reopen, two connections to one file, sorted positions, purge semantics,
 * the NULL sink filter, error messages, and threads adding at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/evcodec.h"
#include "core/json.h"
#include "state/store.h"
#include "util/err.h"
#include "source/pg/pgjson.h"

static const struct json_ctx jctx = {.pipeline_id = "p",
                                     .connector = "postgresql",
                                     .db = "db",
                                     .version = "0",
                                     .source = pgjson_source};

/* ---------- fixtures ---------- */

static struct cdc_table *mk_table(void)
{
    struct cdc_table *tab = cdc_table_new(16384, "public", "orders", "cdc", 3);
    const char *names[] = {"id", "amount", "note"};
    const char *types[] = {"integer", "numeric(10,2)", "text"};
    enum cdc_type classes[] = {CDC_T_INT, CDC_T_NUMERIC, CDC_T_TEXT};
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
    return tab;
}

static void set(struct cdc_event *ev, struct cdc_val *v, const char *s)
{
    size_t n = strlen(s);
    v->kind = CDC_V_TEXT;
    v->off = ev->data_len;
    v->len = (uint32_t)n;
    memcpy(ev->data + ev->data_len, s, n + 1);
    ev->data_len += (uint32_t)n + 1;
}

/* An insert of row `id` at position (lsn, idx). */
static struct cdc_event *mk_insert(struct cdc_table *tab, int id, uint64_t lsn, uint64_t idx)
{
    struct cdc_event *ev = cdc_event_new(0, 3, 128);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(tab);
    ev->tab = tab;
    ev->pos = (struct cdc_pos){lsn, idx, 0};
    ev->lsn = lsn - 16;
    ev->xid = 900;
    ev->commit_ts = 1718150400000000;
    ev->emit_ts = 1718150400100000;
    ev->total_order = (uint32_t)idx + 1;
    ev->table_order = (uint32_t)idx + 1;
    char num[16];
    snprintf(num, sizeof num, "%d", id);
    set(ev, &ev->after[0], num);
    set(ev, &ev->after[1], "12.50");
    set(ev, &ev->after[2], "caf\xc3\xa9 \"quoted\"");
    return ev;
}

/* Dead-letters row `id` for sink at (lsn, idx); returns the entry id. */
static int64_t add(struct store *st, const char *sink, int id, uint64_t lsn, uint64_t idx)
{
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_insert(tab, id, lsn, idx);
    struct buf key = BUF_INIT, val = BUF_INIT;
    json_key(&key, ev);
    json_envelope(&val, ev, &jctx);
    struct dlq_failure f = {sink, "permanent", "HTTP 422: rejected", 3, 422, 1718150401000000};
    int64_t eid = -1;
    char err[256];
    int rc = store_dlq_add(st, ev, key.p, val.p, &f, &eid, err, sizeof err);
    if (rc != 0)
        fail_msg("store_dlq_add: %s", err);
    buf_fini(&key);
    buf_fini(&val);
    cdc_event_unref(ev);
    cdc_table_unref(tab);
    return eid;
}

struct tmp {
    char dir[256];
    char path[512];
};

static void tmp_make(struct tmp *t)
{
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/test_store.XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/state/p1/state.db", t->dir);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
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

struct collect {
    int64_t ids[1024];
    char sinks[1024][128];
    char keys[1024][32];
    size_t n;
    size_t stop_after; /* 0 = never */
};

static int collect_fn(const struct dlq_entry *e, void *arg)
{
    struct collect *c = arg;
    /* Listings carry the key (people look for the row), not the payloads. */
    assert_non_null(e->key_json);
    assert_null(e->value_json);
    assert_null(e->event);
    snprintf(c->keys[c->n], sizeof c->keys[c->n], "%s", e->key_json);
    c->ids[c->n] = e->id;
    snprintf(c->sinks[c->n], sizeof c->sinks[c->n], "%s", e->sink_id);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static size_t list(struct store *st, const char *sink, bool all, struct collect *c)
{
    memset(c, 0, sizeof *c);
    char err[256];
    assert_int_equal(store_dlq_list(st, sink, all, collect_fn, c, err, sizeof err), 0);
    return c->n;
}

/* ---------- tests ---------- */

static void test_path(void **state)
{
    (void)state;
    char *p = store_path(".cdc-state", "orders-sync");
    assert_string_equal(p, ".cdc-state/orders-sync/state.db");
    free(p);
    p = store_path("/var/lib/cdc/", "x");
    assert_string_equal(p, "/var/lib/cdc/x/state.db");
    free(p);
}

/* Everything one entry carries comes back from store_dlq_get, and the stored
 * event decodes to the same envelope. */
static void check_roundtrip(struct store *st)
{
    int64_t id = add(st, "hook", 7, 0x16B3748, 2);
    assert_true(id > 0);
    struct dlq_entry e;
    char err[256];
    assert_int_equal(store_dlq_get(st, id, &e, err, sizeof err), 0);
    assert_int_equal(e.id, id);
    assert_string_equal(e.sink_id, "hook");
    assert_int_equal(e.pos.lsn, 0x16B3748);
    assert_int_equal(e.pos.idx, 2);
    assert_string_equal(e.topic, "cdc.public.orders");
    assert_int_equal(e.op, 'c');
    assert_string_equal(e.error_class, "permanent");
    assert_string_equal(e.error, "HTTP 422: rejected");
    assert_int_equal(e.attempts, 3);
    assert_int_equal(e.http_status, 422);
    assert_int_equal(e.first_failed_us, 1718150401000000);
    assert_true(e.dead_lettered_us > 1600000000000000);
    assert_int_equal(e.status, DLQ_PENDING);
    assert_int_equal(e.resolved_us, 0);
    assert_string_equal(e.key_json, "{\"id\":7}");
    assert_true(json_valid(e.value_json, strlen(e.value_json)));

    struct cdc_event *ev;
    assert_int_equal(evcodec_decode(e.event, e.event_len, NULL, &ev, err, sizeof err), 0);
    struct buf val = BUF_INIT;
    json_envelope(&val, ev, &jctx);
    assert_string_equal(val.p, e.value_json);
    buf_fini(&val);
    cdc_event_unref(ev);
    dlq_entry_fini(&e);
    assert_null(e.key_json);
    dlq_entry_fini(&e); /* twice is harmless */
    dlq_entry_fini(NULL);

    assert_int_equal(store_dlq_get(st, id + 1000, &e, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "no dead-letter entry"));
}

static void test_memory_roundtrip(void **state)
{
    (void)state;
    struct store *st = open_ok(":memory:");
    check_roundtrip(st);
    store_close(st);
    store_close(NULL);
}

/* Directories and file are created private; entries survive a reopen. */
static void test_file_create_and_reopen(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    struct store *st = open_ok(t.path);
    check_roundtrip(st);
    int64_t second = add(st, "jsonl", 8, 0x200, 0);
    store_close(st);

    struct stat sb;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/state/p1", t.dir);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(dir, sizeof dir, "%s/state", t.dir);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(t.path, &sb), 0);
    assert_int_equal(sb.st_mode & 0077, 0);

    st = open_ok(t.path);
    struct collect c;
    assert_int_equal(list(st, NULL, false, &c), 2);
    assert_int_equal(c.ids[1], second);
    assert_string_equal(c.keys[0], "{\"id\":7}");
    assert_string_equal(c.keys[1], "{\"id\":8}");
    assert_int_equal(store_dlq_count(st, NULL), 2);
    char err[256];
    char *v;
    assert_int_equal(store_kv_put(st, "snapshot/public.orders", "chunk=7", err, sizeof err), 0);
    store_close(st);
    st = open_ok(t.path);
    assert_int_equal(store_kv_get(st, "snapshot/public.orders", &v, err, sizeof err), 0);
    assert_string_equal(v, "chunk=7");
    free(v);
    store_close(st);
    tmp_remove(&t);
}

/* Listing: oldest first, pending only unless asked, NULL = every sink, a
 * sink filter, early stop, and more entries than one page. */
static void test_list(void **state)
{
    (void)state;
    struct store *st = open_ok(":memory:");
    int64_t ids[300];
    for (int i = 0; i < 300; i++)
        ids[i] = add(st, i % 3 == 0 ? "a" : "b", i, 0x1000 + (uint64_t)i, 0);
    struct collect c;
    assert_int_equal(list(st, NULL, false, &c), 300);
    for (int i = 0; i < 300; i++)
        assert_int_equal(c.ids[i], ids[i]);
    assert_int_equal(list(st, "a", false, &c), 100);
    for (size_t i = 0; i < c.n; i++) {
        assert_string_equal(c.sinks[i], "a");
        assert_int_equal(c.ids[i], ids[3 * i]);
    }
    assert_int_equal(list(st, "nosuch", true, &c), 0);

    char err[256];
    assert_int_equal(store_dlq_resolve(st, ids[0], err, sizeof err), 0);
    assert_int_equal(store_dlq_resolve(st, ids[1], err, sizeof err), 0);
    assert_int_equal(list(st, NULL, false, &c), 298);
    assert_int_equal(c.ids[0], ids[2]);
    assert_int_equal(list(st, NULL, true, &c), 300);
    assert_int_equal(c.ids[0], ids[0]);
    assert_int_equal(list(st, "a", false, &c), 99);
    assert_int_equal(list(st, "a", true, &c), 100);

    memset(&c, 0, sizeof c);
    c.stop_after = 5;
    assert_int_equal(store_dlq_list(st, NULL, true, collect_fn, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 5);

    assert_int_equal(store_dlq_count(st, NULL), 298);
    assert_int_equal(store_dlq_count(st, "a"), 99);
    assert_int_equal(store_dlq_count(st, "b"), 199);
    assert_int_equal(store_dlq_count(st, "nosuch"), 0);
    store_close(st);
}

/* The callback may call the store (the lock is not held during fn). */
static int resolve_fn(const struct dlq_entry *e, void *arg)
{
    char err[256];
    assert_int_equal(store_dlq_resolve(arg, e->id, err, sizeof err), 0);
    return 0;
}

static void test_resolve(void **state)
{
    (void)state;
    struct store *st = open_ok(":memory:");
    int64_t a = add(st, "s", 1, 10, 0);
    add(st, "s", 2, 10, 1);
    char err[256];
    assert_int_equal(store_dlq_resolve(st, a, err, sizeof err), 0);
    struct dlq_entry e;
    assert_int_equal(store_dlq_get(st, a, &e, err, sizeof err), 0);
    assert_int_equal(e.status, DLQ_RESOLVED);
    assert_true(e.resolved_us > 0);
    int64_t when = e.resolved_us;
    dlq_entry_fini(&e);
    /* Resolving again changes nothing and is not an error. */
    assert_int_equal(store_dlq_resolve(st, a, err, sizeof err), 0);
    assert_int_equal(store_dlq_get(st, a, &e, err, sizeof err), 0);
    assert_int_equal(e.resolved_us, when);
    dlq_entry_fini(&e);
    assert_int_equal(store_dlq_resolve(st, 999, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "999"));

    assert_int_equal(store_dlq_list(st, NULL, false, resolve_fn, st, err, sizeof err), 0);
    assert_int_equal(store_dlq_count(st, NULL), 0);
    store_close(st);
}

/* Purge deletes resolved entries only, or everything with all; ids are not
 * reused afterwards. */
static void test_purge(void **state)
{
    (void)state;
    struct store *st = open_ok(":memory:");
    int64_t ids[6];
    for (int i = 0; i < 6; i++)
        ids[i] = add(st, i % 2 ? "x" : "y", i, 100, (uint64_t)i);
    char err[256];
    int64_t n = -1;
    assert_int_equal(store_dlq_purge(st, false, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_dlq_resolve(st, ids[1], err, sizeof err), 0);
    assert_int_equal(store_dlq_resolve(st, ids[4], err, sizeof err), 0);
    assert_int_equal(store_dlq_purge(st, false, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    struct collect c;
    assert_int_equal(list(st, NULL, true, &c), 4);
    assert_int_equal(c.ids[0], ids[0]);
    assert_int_equal(c.ids[1], ids[2]);
    struct dlq_entry e;
    assert_int_equal(store_dlq_get(st, ids[1], &e, err, sizeof err), CDC_EINVAL);
    assert_int_equal(store_dlq_purge(st, true, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(list(st, NULL, true, &c), 0);
    assert_int_equal(store_dlq_purge(st, true, NULL, err, sizeof err), 0);
    int64_t next = add(st, "x", 9, 200, 0);
    assert_true(next > ids[5]);
    store_close(st);
}

/* Pending positions per sink: sorted (unsigned, TXN_END last), without
 * duplicates, without resolved entries or other sinks' entries. */
static void test_positions_sorted(void **state)
{
    (void)state;
    struct store *st = open_ok(":memory:");
    char err[256];
    struct cdc_pos *pos;
    size_t n = 99;
    assert_int_equal(store_dlq_pending_positions(st, "a", &pos, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    free(pos);

    const uint64_t big = 0x8000000000000010ULL; /* negative as a signed integer */
    add(st, "a", 1, 500, 3);
    add(st, "a", 2, big, 0);
    add(st, "a", 3, 500, CDC_POS_TXN_END);
    add(st, "b", 4, 50, 0);
    add(st, "a", 5, 20, 9);
    int64_t gone = add(st, "a", 6, 10, 0);
    add(st, "a", 7, 500, 3); /* the same position twice */
    add(st, "a", 8, 500, 1);
    assert_int_equal(store_dlq_resolve(st, gone, err, sizeof err), 0);

    assert_int_equal(store_dlq_pending_positions(st, "a", &pos, &n, err, sizeof err), 0);
    const struct cdc_pos want[] = {
        {20, 9, 0}, {500, 1, 0}, {500, 3, 0}, {500, CDC_POS_TXN_END, 0}, {big, 0, 0}};
    assert_int_equal(n, sizeof want / sizeof *want);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(pos[i].lsn, want[i].lsn);
        assert_int_equal(pos[i].idx, want[i].idx);
    }
    free(pos);

    assert_int_equal(store_dlq_pending_positions(st, "b", &pos, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(pos[0].lsn, 50);
    free(pos);
    assert_int_equal(store_dlq_pending_positions(st, NULL, &pos, &n, err, sizeof err), 0);
    assert_int_equal(n, 6);
    for (size_t i = 1; i < n; i++)
        assert_true(cdc_pos_cmp(pos[i - 1], pos[i]) < 0);
    free(pos);
    store_close(st);
}

/* A store written before positions carried streams: opening it adds the
 * column, its entries are stream 0's, and entries of other streams at the
 * same positions are told apart. */
static void test_dlq_streams(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    char err[256];
    /* the schema of that version, with one entry (its event as that
     * version encoded it) */
    struct store *st = open_ok(t.path);
    store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE dlq; DROP TABLE schema_versions;"
                                  "DROP TABLE schema_columns; CREATE TABLE dlq ("
                                  " id INTEGER PRIMARY KEY AUTOINCREMENT, sink_id TEXT NOT NULL,"
                                  " commit_lsn INTEGER NOT NULL, event_index INTEGER NOT NULL,"
                                  " topic TEXT NOT NULL, op TEXT NOT NULL, key_json TEXT,"
                                  " value_json TEXT, event BLOB NOT NULL,"
                                  " error_class TEXT NOT NULL, error TEXT NOT NULL,"
                                  " attempts INTEGER NOT NULL, http_status INTEGER NOT NULL,"
                                  " first_failed_us INTEGER NOT NULL,"
                                  " dead_lettered_us INTEGER NOT NULL,"
                                  " status TEXT NOT NULL DEFAULT 'pending',"
                                  " resolved_us INTEGER NOT NULL DEFAULT 0);"
                                  "PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    uint8_t blob[1024];
    FILE *f = fopen("tests/unit/data/evcodec/cev2_update.bin", "rb");
    assert_non_null(f);
    size_t blen = fread(blob, 1, sizeof blob, f);
    fclose(f);
    sqlite3_stmt *ins;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO dlq (sink_id, commit_lsn, event_index, "
                                        "topic, op, event, error_class, error, attempts, "
                                        "http_status, first_failed_us, dead_lettered_us) VALUES "
                                        "('a', 500, 3, 'cdc.public.t', 'u', ?1, 'permanent', "
                                        "'x', 1, 0, 1, 2)",
                                        -1, &ins, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(ins, 1, blob, (int)blen, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_finalize(ins);
    sqlite3_close(db);

    st = open_ok(t.path);
    struct dlq_entry e;
    assert_int_equal(store_dlq_get(st, 1, &e, err, sizeof err), 0);
    assert_int_equal(e.pos.stream, 0);
    assert_int_equal(e.pos.lsn, 500);
    assert_int_equal(e.pos.idx, 3);
    struct cdc_event *old;
    assert_int_equal(evcodec_decode(e.event, e.event_len, NULL, &old, err, sizeof err), 0);
    cdc_event_unref(old);
    dlq_entry_fini(&e);

    /* stream 3 at the same position, and at another */
    struct cdc_table *tab = mk_table();
    struct cdc_event *ev = mk_insert(tab, 9, 500, 3);
    ev->pos.stream = 3;
    struct dlq_failure fl = {"a", "permanent", "no", 1, 0, 1};
    int64_t id;
    assert_int_equal(store_dlq_add(st, ev, NULL, NULL, &fl, &id, err, sizeof err), 0);
    ev->pos = (struct cdc_pos){20, 0, 3};
    assert_int_equal(store_dlq_add(st, ev, NULL, NULL, &fl, NULL, err, sizeof err), 0);
    /* a snapshot row: skipped by content, never by position (which it
     * shares with the changes of the transaction it came with) */
    ev->op = CDC_OP_READ;
    ev->snapshot = true;
    ev->pos = (struct cdc_pos){700, 0, 0};
    assert_int_equal(store_dlq_add(st, ev, NULL, NULL, &fl, NULL, err, sizeof err), 0);
    ev->op = CDC_OP_INSERT;
    ev->snapshot = false;
    assert_int_equal(store_dlq_get(st, id, &e, err, sizeof err), 0);
    assert_int_equal(e.pos.stream, 3);
    struct cdc_event *back;
    assert_int_equal(evcodec_decode(e.event, e.event_len, NULL, &back, err, sizeof err), 0);
    assert_int_equal(back->pos.stream, 3);
    cdc_event_unref(back);
    dlq_entry_fini(&e);
    cdc_event_unref(ev);
    cdc_table_unref(tab);

    struct cdc_pos *pos;
    size_t n;
    assert_int_equal(store_dlq_pending_positions(st, "a", &pos, &n, err, sizeof err), 0);
    const struct cdc_pos want[] = {{500, 3, 0}, {20, 0, 3}, {500, 3, 3}};
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cdc_pos_cmp(pos[i], want[i]), 0);
    free(pos);
    store_close(st);
    tmp_remove(&t);
}

static void test_kv(void **state)
{
    (void)state;
    struct store *st = open_ok(":memory:");
    char err[256];
    char *v = (char *)"unset";
    assert_int_equal(store_kv_get(st, "nope", &v, err, sizeof err), 0);
    assert_null(v);
    const char *keys[] = {"snap/a", "snap/b", "snap", "snap0", "snaq", "snap/\xff\xff", "other"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(store_kv_put(st, keys[i], keys[i], err, sizeof err), 0);
    assert_int_equal(store_kv_put(st, "snap/a", "replaced", err, sizeof err), 0);
    assert_int_equal(store_kv_get(st, "snap/a", &v, err, sizeof err), 0);
    assert_string_equal(v, "replaced");
    free(v);

    assert_int_equal(store_kv_delete_prefix(st, "snap/", err, sizeof err), 0);
    const char *gone[] = {"snap/a", "snap/b", "snap/\xff\xff"};
    const char *kept[] = {"snap", "snap0", "snaq", "other"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        assert_int_equal(store_kv_get(st, gone[i], &v, err, sizeof err), 0);
        assert_null(v);
    }
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        assert_int_equal(store_kv_get(st, kept[i], &v, err, sizeof err), 0);
        assert_string_equal(v, kept[i]);
        free(v);
    }
    /* A prefix ending in 0xff bytes has no simple upper bound. */
    assert_int_equal(store_kv_put(st, "z\xff", "1", err, sizeof err), 0);
    assert_int_equal(store_kv_put(st, "z\xff\x01", "2", err, sizeof err), 0);
    assert_int_equal(store_kv_delete_prefix(st, "z\xff", err, sizeof err), 0);
    assert_int_equal(store_kv_get(st, "z\xff\x01", &v, err, sizeof err), 0);
    assert_null(v);
    assert_int_equal(store_kv_get(st, "snaq", &v, err, sizeof err), 0);
    assert_non_null(v);
    free(v);
    assert_int_equal(store_kv_delete_prefix(st, "", err, sizeof err), 0);
    assert_int_equal(store_kv_get(st, "other", &v, err, sizeof err), 0);
    assert_null(v);
    store_close(st);
}

/* Two connections to one file (as `cdc run` and `cdc dlq` are) see each
 * other's committed changes. */
static void test_two_connections(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    struct store *a = open_ok(t.path);
    struct store *b = open_ok(t.path);
    int64_t id = add(a, "s", 1, 77, 0);
    struct collect c;
    assert_int_equal(list(b, NULL, false, &c), 1);
    assert_int_equal(c.ids[0], id);
    char err[256];
    assert_int_equal(store_dlq_resolve(b, id, err, sizeof err), 0);
    assert_int_equal(store_dlq_count(a, "s"), 0);
    int64_t id2 = add(b, "s", 2, 78, 0);
    assert_true(id2 > id);
    assert_int_equal(list(a, NULL, true, &c), 2);
    assert_int_equal(store_kv_put(a, "k", "v", err, sizeof err), 0);
    char *v;
    assert_int_equal(store_kv_get(b, "k", &v, err, sizeof err), 0);
    assert_string_equal(v, "v");
    free(v);
    store_close(a);
    store_close(b);
    tmp_remove(&t);
}

/* Failures are one sentence naming the file. */
static void test_errors(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    char err[512], path[700];
    struct store *st = (struct store *)&err; /* must be reset to NULL */

    /* A file where a directory should be. */
    snprintf(path, sizeof path, "%s/blocker", t.dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a database, not at all, really not one\n", 43), 43);
    close(fd);
    snprintf(path, sizeof path, "%s/blocker/p/state.db", t.dir);
    assert_int_not_equal(store_open(&st, path, err, sizeof err), 0);
    assert_null(st);
    assert_non_null(strstr(err, "blocker"));

    /* Not a SQLite file. */
    snprintf(path, sizeof path, "%s/blocker", t.dir);
    assert_int_not_equal(store_open(&st, path, err, sizeof err), 0);
    assert_null(st);
    assert_non_null(strstr(err, path));

    /* A schema from a newer cdc. */
    st = open_ok(t.path);
    store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(&st, t.path, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, t.path));
    assert_non_null(strstr(err, "99"));

    assert_int_not_equal(store_open(&st, "", err, sizeof err), 0);

    /* A control event cannot be dead-lettered. */
    st = open_ok(":memory:");
    struct cdc_event *ev = cdc_event_new(0, 0, 0);
    ev->op = CDC_OP_COMMIT;
    struct dlq_failure f = {"s", "permanent", "x", 1, 0, 0};
    assert_int_equal(store_dlq_add(st, ev, NULL, NULL, &f, NULL, err, sizeof err), CDC_EINVAL);
    cdc_event_unref(ev);
    store_close(st);
    tmp_remove(&t);
}

/* ---------- concurrency ---------- */

#define THREADS    4
#define PER_THREAD 40

struct worker {
    struct store *st;
    int n;
    int64_t ids[PER_THREAD];
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char sink[16];
    snprintf(sink, sizeof sink, "sink%d", w->n);
    struct cdc_table *tab = mk_table();
    for (int i = 0; i < PER_THREAD; i++) {
        struct cdc_event *ev =
            mk_insert(tab, w->n * 1000 + i, 0x5000 + (uint64_t)i, (uint64_t)w->n);
        struct dlq_failure f = {sink, "retryable", "HTTP 503", 5, 503, 1};
        char err[256];
        if (store_dlq_add(w->st, ev, "{}", "{}", &f, &w->ids[i], err, sizeof err) != 0)
            w->failures++;
        cdc_event_unref(ev);
        if (i % 10 == 0) {
            /* Readers interleave with writers. */
            struct cdc_pos *pos;
            size_t n;
            if (store_dlq_pending_positions(w->st, sink, &pos, &n, err, sizeof err) != 0 ||
                n != (size_t)i + 1)
                w->failures++;
            free(pos);
        }
    }
    cdc_table_unref(tab);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Four threads add at once: through one shared store, and through two
 * connections to the same file (two threads each). */
static void run_workers(struct store *s0, struct store *s1)
{
    struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].st = i % 2 ? s1 : s0;
        w[i].n = i;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    int64_t all[THREADS * PER_THREAD];
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
        memcpy(all + i * PER_THREAD, w[i].ids, sizeof w[i].ids);
    }
    qsort(all, THREADS * PER_THREAD, sizeof *all, cmp_i64);
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        assert_true(all[i] > all[i - 1]);
    assert_int_equal(store_dlq_count(s0, NULL), THREADS * PER_THREAD);
    assert_int_equal(store_dlq_count(s1, "sink3"), PER_THREAD);
    struct collect c;
    assert_int_equal(list(s0, NULL, false, &c), THREADS * PER_THREAD);
}

static void test_threads_one_store(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    struct store *st = open_ok(t.path);
    run_workers(st, st);
    store_close(st);
    tmp_remove(&t);
}

static void test_threads_two_connections(void **state)
{
    (void)state;
    struct tmp t;
    tmp_make(&t);
    struct store *a = open_ok(t.path);
    struct store *b = open_ok(t.path);
    run_workers(a, b);
    store_close(a);
    store_close(b);
    tmp_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_memory_roundtrip),
        cmocka_unit_test(test_file_create_and_reopen),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_purge),
        cmocka_unit_test(test_positions_sorted),
        cmocka_unit_test(test_dlq_streams),
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_two_connections),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_threads_one_store),
        cmocka_unit_test(test_threads_two_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
