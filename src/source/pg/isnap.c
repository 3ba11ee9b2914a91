/* Incremental snapshots with watermarks; see isnap.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jsonread.h"
#include "pg/pgconn.h"
#include "source/pg/copytext.h"
#include "source/pg/isnap.h"
#include "source/pg/pubrel.h"
#include "source/pg/xidsnap.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strmap.h"

#define KEY_QUEUE      "isnap.queue"
#define KEY_LAST       "isnap.key."         /* + table: last durable key (row literal) */
#define KEY_CHUNKSEQ   "snapshot.chunkseq." /* + table: shared with the initial snapshot */
#define KEY_RUN        "isnap.run."         /* + table: snapshot_id of the run in progress */
#define MAX_CHUNK_ROWS 8192

enum state { S_IDLE, S_WAIT_OPEN, S_OPEN, S_CLOSED };

/* A chunk emitted but not yet durable everywhere. */
struct pending {
    uint64_t id;
    char *table;
    char *last_key; /* NULL: the chunk was the table's last */
};

struct isnap {
    const struct config *cfg;
    struct store *store;
    struct relcache *rels;
    char *sig_schema, *sig_name;
    char nonce[32];
    char **queue; /* tables still to do, in order; persisted */
    size_t nqueue;
    unsigned gen; /* bumped by a rewind */
    uint64_t counter;

    /* the table in progress */
    char *table; /* configured name (copy) */
    struct cdc_table *tab;
    char *cols, *keys;
    struct pubrel pub; /* what the publication publishes of it: where to read */
    char *next_key;    /* row literal after which the next chunk starts, or NULL */
    uint64_t run_id;   /* the rows' snapshot_id: one per run over the table */

    /* the chunk in progress */
    enum state state;
    uint64_t chunk_seq;
    char open_id[160], close_id[160];
    struct cdc_event **rows;
    size_t nrows, caprows;
    struct strmap *by_key; /* key text -> row index + 1 */
    char *chunk_last_key;  /* literal of the chunk's last row, NULL if empty */
    struct xidsnap snap;   /* the read's snapshot: which transactions its rows reflect */

    struct pending *pend;
    size_t npend, cappend;
};

static int match_table(const struct config *cfg, const char *name, const char **configured)
{
    char *s1 = NULL, *t1 = NULL;
    if (config_split_table(name, &s1, &t1) != 0)
        return -1;
    int found = -1;
    for (size_t i = 0; i < cfg->source.ntables && found < 0; i++) {
        char *s2 = NULL, *t2 = NULL;
        if (config_split_table(cfg->source.tables[i], &s2, &t2) == 0 && strcmp(s1, s2) == 0 &&
            strcmp(t1, t2) == 0) {
            found = (int)i;
            *configured = cfg->source.tables[i];
        }
        free(s2);
        free(t2);
    }
    free(s1);
    free(t1);
    return found;
}

static int save_queue(struct isnap *is, char *err, size_t errlen)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < is->nqueue; i++) {
        buf_puts(&b, is->queue[i]);
        buf_putc(&b, '\n');
    }
    int rc = store_kv_put(is->store, KEY_QUEUE, b.p ? b.p : "", err, errlen);
    buf_fini(&b);
    return rc;
}

static void free_queue(struct isnap *is)
{
    for (size_t i = 0; i < is->nqueue; i++)
        free(is->queue[i]);
    free(is->queue);
    is->queue = NULL;
    is->nqueue = 0;
}

static int load_queue(struct isnap *is, char *err, size_t errlen)
{
    free_queue(is);
    char *v = NULL;
    int rc = store_kv_get(is->store, KEY_QUEUE, &v, err, errlen);
    if (rc || !v)
        return rc;
    char *save = NULL;
    for (char *line = strtok_r(v, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        is->queue = xrealloc(is->queue, (is->nqueue + 1) * sizeof *is->queue);
        is->queue[is->nqueue++] = xstrdup(line);
    }
    free(v);
    return 0;
}

int isnap_open(struct isnap **out, const struct config *cfg, struct store *store,
               struct relcache *rels, char *err, size_t errlen)
{
    struct isnap *is = xcalloc(1, sizeof *is);
    is->cfg = cfg;
    is->store = store;
    is->rels = rels;
    const char *sig =
        cfg->source.signal_table ? cfg->source.signal_table : ISNAP_DEFAULT_SIGNAL_TABLE;
    if (config_split_table(sig, &is->sig_schema, &is->sig_name) != 0) {
        free(is);
        return cdc_fail(err, errlen, CDC_EINVAL, "source.signal_table: malformed name %s", sig);
    }
    snprintf(is->nonce, sizeof is->nonce, "%" PRIx64, (uint64_t)clock_wall_us());
    is->by_key = strmap_new();
    int rc = load_queue(is, err, errlen);
    if (rc) {
        isnap_free(is);
        return rc;
    }
    if (is->nqueue)
        log_info("snapshot.incremental_resume", "tables=%zu next=%s", is->nqueue, is->queue[0]);
    *out = is;
    return 0;
}

static void drop_rows(struct isnap *is)
{
    for (size_t i = 0; i < is->nrows; i++)
        if (is->rows[i])
            cdc_event_unref(is->rows[i]);
    is->nrows = 0;
    strmap_free(is->by_key, NULL);
    is->by_key = strmap_new();
    free(is->chunk_last_key);
    is->chunk_last_key = NULL;
}

static void drop_table(struct isnap *is)
{
    free(is->table);
    pubrel_fini(&is->pub);
    free(is->cols);
    free(is->keys);
    free(is->next_key);
    cdc_table_unref(is->tab);
    is->table = is->cols = is->keys = is->next_key = NULL;
    is->tab = NULL;
}

static void drop_pending(struct isnap *is)
{
    for (size_t i = 0; i < is->npend; i++) {
        free(is->pend[i].table);
        free(is->pend[i].last_key);
    }
    is->npend = 0;
}

void isnap_free(struct isnap *is)
{
    if (!is)
        return;
    drop_rows(is);
    strmap_free(is->by_key, NULL);
    drop_table(is);
    drop_pending(is);
    free(is->pend);
    free(is->rows);
    xidsnap_fini(&is->snap);
    free_queue(is);
    free(is->sig_schema);
    free(is->sig_name);
    free(is);
}

const char *isnap_signal_schema(const struct isnap *is)
{
    return is->sig_schema;
}

const char *isnap_signal_name(const struct isnap *is)
{
    return is->sig_name;
}

bool isnap_active(const struct isnap *is)
{
    return is->nqueue > 0 || is->tab != NULL;
}

int isnap_request(struct isnap *is, char *const *tables, size_t n, char *err, size_t errlen)
{
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        const char *configured = NULL;
        if (match_table(is->cfg, tables[i], &configured) < 0) {
            log_warn("snapshot.signal_ignored", "table=%s reason=%s", log_q(tables[i]),
                     log_q("not one of source.tables"));
            continue;
        }
        bool queued = false;
        for (size_t k = 0; k < is->nqueue && !queued; k++)
            queued = strcmp(is->queue[k], configured) == 0;
        if (queued)
            continue;
        is->queue = xrealloc(is->queue, (is->nqueue + 1) * sizeof *is->queue);
        is->queue[is->nqueue++] = xstrdup(configured);
        changed = true;
        log_info("snapshot.incremental_queued", "table=%s", configured);
    }
    return changed ? save_queue(is, err, errlen) : 0;
}

/* Key text of a row: each key column's kind and text, separated. */
static void key_text(const struct cdc_event *ev, const struct cdc_val *row, struct buf *b)
{
    buf_reset(b);
    const struct cdc_table *tab = ev->tab;
    for (uint16_t i = 0; i < tab->ncols; i++) {
        if (!tab->cols[i].key)
            continue;
        buf_putc(b, (char)('0' + row[i].kind));
        if (row[i].kind == CDC_V_TEXT)
            buf_put(b, cdc_val_ptr(ev, &row[i]), row[i].len);
        buf_putc(b, '\x1f');
    }
}

static bool same_table(const struct cdc_table *a, const struct cdc_table *b)
{
    return a && b && strcmp(a->schema, b->schema) == 0 && strcmp(a->name, b->name) == 0;
}

static const char *col_text(const struct cdc_event *ev, const char *name, size_t *len)
{
    const struct cdc_table *tab = ev->tab;
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (strcmp(tab->cols[i].name, name) == 0 && ev->after && ev->after[i].kind == CDC_V_TEXT) {
            *len = ev->after[i].len;
            return cdc_val_ptr(ev, &ev->after[i]);
        }
    return NULL;
}

enum isnap_signal isnap_on_signal(struct isnap *is, const struct cdc_event *ev)
{
    if (ev->op != CDC_OP_INSERT || !ev->tab)
        return ISNAP_IGNORED;
    size_t idl = 0, tl = 0, dl = 0;
    const char *id = col_text(ev, "id", &idl);
    const char *type = col_text(ev, "type", &tl);
    const char *data = col_text(ev, "data", &dl);
    if (!id || !type)
        return ISNAP_IGNORED;
    if (strcmp(type, "execute-snapshot") == 0 && data) {
        char **tables = NULL;
        size_t n = 0;
        char err[256];
        if (jsonread_string_array(data, dl, "data-collections", &tables, &n) != 0) {
            log_warn("snapshot.signal_malformed", "id=%s", log_q(id));
            return ISNAP_IGNORED;
        }
        int rc = isnap_request(is, tables, n, err, sizeof err);
        jsonread_free_strings(tables, n);
        if (rc)
            log_error("snapshot.signal_failed", "id=%s error=%s", log_q(id), log_q(err));
        return ISNAP_QUEUED;
    }
    if (strcmp(type, "snapshot-window-open") == 0 && is->state == S_WAIT_OPEN &&
        strcmp(id, is->open_id) == 0) {
        is->state = S_OPEN;
        return ISNAP_WINDOW_OPEN;
    }
    if (strcmp(type, "snapshot-window-close") == 0 && is->state == S_OPEN &&
        strcmp(id, is->close_id) == 0) {
        is->state = S_CLOSED;
        return ISNAP_WINDOW_CLOSE;
    }
    return ISNAP_IGNORED;
}

static void drop_key(struct isnap *is, const struct cdc_event *ev, const struct cdc_val *row,
                     struct buf *kb)
{
    key_text(ev, row, kb);
    uintptr_t at = (uintptr_t)strmap_get(is->by_key, kb->p ? kb->p : "");
    if (at && is->rows[at - 1]) {
        cdc_event_unref(is->rows[at - 1]);
        is->rows[at - 1] = NULL;
    }
}

void isnap_on_change(struct isnap *is, const struct cdc_event *ev)
{
    if ((is->state != S_OPEN && is->state != S_WAIT_OPEN) || !same_table(ev->tab, is->tab))
        return;
    /* Inside the window every change wins over the read row (DBLog); before
     * it, changes the read could not see do too: a commit record can precede
     * the low watermark while its transaction is not yet visible to a
     * snapshot taken after it. */
    if (is->state != S_OPEN && xidsnap_sees(&is->snap, ev->xid))
        return;
    if (ev->op == CDC_OP_TRUNCATE) {
        for (size_t i = 0; i < is->nrows; i++)
            if (is->rows[i]) {
                cdc_event_unref(is->rows[i]);
                is->rows[i] = NULL;
            }
        return;
    }
    struct buf kb = BUF_INIT;
    if (ev->after)
        drop_key(is, ev, ev->after, &kb);
    if (ev->before)
        drop_key(is, ev, ev->before, &kb);
    buf_fini(&kb);
}

size_t isnap_take_rows(struct isnap *is, struct cdc_event ***rows)
{
    size_t k = 0;
    for (size_t i = 0; i < is->nrows; i++)
        if (is->rows[i]) {
            struct cdc_event *ev = is->rows[i];
            ev->pos.idx = isnap_row_idx(is->chunk_seq, k);
            is->rows[k++] = ev;
        }
    is->nrows = k;
    *rows = is->rows;
    return k;
}

uint64_t isnap_emitted(struct isnap *is)
{
    /* The rows now belong to the caller. */
    is->nrows = 0;
    strmap_free(is->by_key, NULL);
    is->by_key = strmap_new();
    if (is->npend == is->cappend) {
        is->cappend = is->cappend ? 2 * is->cappend : 8;
        is->pend = xrealloc(is->pend, is->cappend * sizeof *is->pend);
    }
    uint64_t id = ((uint64_t)is->gen << 32) | (is->counter & 0xffffffffu);
    is->pend[is->npend++] = (struct pending){id, xstrdup(is->table), is->chunk_last_key};
    if (is->chunk_last_key) {
        free(is->next_key);
        is->next_key = xstrdup(is->chunk_last_key);
    } else {
        /* The table is read to its end: the next step moves on. */
        log_info("snapshot.incremental_read", "table=%s", is->table);
        drop_table(is);
        if (is->nqueue) {
            free(is->queue[0]);
            memmove(is->queue, is->queue + 1, (is->nqueue - 1) * sizeof *is->queue);
            is->nqueue--;
        }
    }
    is->chunk_last_key = NULL;
    is->state = S_IDLE;
    return id;
}

int isnap_marks_done(struct isnap *is, const uint64_t *ids, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if ((ids[i] >> 32) != is->gen)
            continue; /* from before a rewind: that chunk is read again */
        size_t k = 0;
        while (k < is->npend && is->pend[k].id != ids[i])
            k++;
        if (k == is->npend)
            continue;
        struct pending *p = &is->pend[k];
        char *key = xasprintf("%s%s", KEY_LAST, p->table);
        int rc;
        if (p->last_key) {
            rc = store_kv_put(is->store, key, p->last_key, err, errlen);
        } else {
            rc = store_kv_delete(is->store, key, err, errlen);
            char *run = xasprintf("%s%s", KEY_RUN, p->table);
            if (!rc)
                rc = store_kv_delete(is->store, run, err, errlen);
            free(run);
            char *done = xasprintf("snapshot.table.%s", p->table);
            if (!rc)
                rc = store_kv_put(is->store, done, "incremental", err, errlen);
            free(done);
            if (!rc)
                rc = save_queue(is, err, errlen);
            if (!rc)
                log_info("snapshot.incremental_done", "table=%s", p->table);
        }
        free(key);
        free(p->table);
        free(p->last_key);
        memmove(p, p + 1, (is->npend - k - 1) * sizeof *p);
        is->npend--;
        if (rc)
            return rc;
    }
    return 0;
}

void isnap_rewind(struct isnap *is)
{
    is->gen++;
    drop_rows(is);
    drop_table(is);
    drop_pending(is);
    is->state = S_IDLE;
    char err[256];
    if (load_queue(is, err, sizeof err) != 0)
        log_error("snapshot.incremental_reload_failed", "error=%s", log_q(err));
}

/* The run's snapshot id: kept across restarts and rewinds until the table is
 * done, so re-read rows carry the same identity (webhook idempotency keys). */
static int load_run_id(struct isnap *is, char *err, size_t errlen)
{
    char *key = xasprintf("%s%s", KEY_RUN, is->table);
    char *v = NULL;
    int rc = store_kv_get(is->store, key, &v, err, errlen);
    is->run_id = v ? strtoull(v, NULL, 10) : 0;
    if (!rc && !is->run_id) {
        char num[32];
        is->run_id = (uint64_t)clock_wall_us();
        snprintf(num, sizeof num, "%" PRIu64, is->run_id);
        rc = store_kv_put(is->store, key, num, err, errlen);
    }
    free(v);
    free(key);
    return rc;
}

/* Describes the table at the head of the queue and where to resume. */
static int start_table(struct isnap *is, PGconn *conn, char *err, size_t errlen)
{
    is->table = xstrdup(is->queue[0]);
    char *schema = NULL, *name = NULL;
    if (config_split_table(is->table, &schema, &name) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "malformed table %s", is->table);
    int rc =
        pubrel_lookup(conn, is->cfg->source.publication_name, schema, name, &is->pub, err, errlen);
    if (rc == 0)
        rc = relcache_describe(is->rels, conn, schema, name, is->pub.cols, is->pub.ncols, &is->tab,
                               err, errlen);
    if (rc == 0 && !is->tab->key_unique)
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "incremental snapshot of %s needs a primary key (or a unique replica "
                      "identity index)",
                      is->table);
    if (rc) {
        free(schema);
        free(name);
        return rc;
    }
    free(schema);
    free(name);
    struct buf cols = BUF_INIT, keys = BUF_INIT;
    for (uint16_t i = 0; i < is->tab->ncols; i++) {
        char *q = pgconn_quote_ident(is->tab->cols[i].name);
        buf_printf(&cols, "%s%s", i ? ", " : "", q);
        if (is->tab->cols[i].key)
            buf_printf(&keys, "%s%s", keys.len ? ", " : "", q);
        free(q);
    }
    is->cols = cols.p ? cols.p : xstrdup("");
    is->keys = keys.p;
    char *key = xasprintf("%s%s", KEY_LAST, is->table);
    rc = store_kv_get(is->store, key, &is->next_key, err, errlen);
    free(key);
    if (!rc)
        rc = load_run_id(is, err, errlen);
    log_info("snapshot.incremental_table", "table=%s resume=%s", is->table,
             is->next_key ? "yes" : "no");
    return rc;
}

static int write_watermark(struct isnap *is, PGconn *conn, const char *id, const char *type,
                           char *err, size_t errlen)
{
    char *q = pgconn_quote_qualified(is->sig_schema, is->sig_name);
    char *sql = xasprintf("INSERT INTO %s (id, type, data) VALUES ($1, $2, $3)", q);
    free(q);
    char data[256];
    snprintf(data, sizeof data, "{\"table\":\"%s\"}", is->table);
    const char *params[3] = {id, type, data};
    char e[512];
    PGresult *res = pgconn_exec(conn, e, sizeof e, sql, 3, params);
    free(sql);
    if (!res)
        return cdc_fail(err, errlen, CDC_ECONN, "cannot write snapshot watermark: %s", e);
    PQclear(res);
    return 0;
}

/* Row literal "(v1::t1, …)" of the row's key, for the next chunk's bound. */
static char *key_literal(PGconn *conn, const struct cdc_event *ev)
{
    struct buf b = BUF_INIT;
    buf_putc(&b, '(');
    bool first = true;
    for (uint16_t i = 0; i < ev->tab->ncols; i++) {
        if (!ev->tab->cols[i].key)
            continue;
        const struct cdc_val *v = &ev->after[i];
        char *lit =
            v->kind == CDC_V_TEXT ? PQescapeLiteral(conn, cdc_val_ptr(ev, v), v->len) : NULL;
        buf_printf(&b, "%s%s::%s", first ? "" : ", ", lit ? lit : "NULL",
                   ev->tab->cols[i].type_name);
        PQfreemem(lit);
        first = false;
    }
    buf_putc(&b, ')');
    return b.p;
}

/* Reads the chunk after next_key with COPY into rows. */
static int read_chunk(struct isnap *is, PGconn *conn, char *err, size_t errlen)
{
    int64_t limit = is->cfg->source.snapshot_chunk_rows;
    if (limit > MAX_CHUNK_ROWS)
        limit = MAX_CHUNK_ROWS;
    /* The published rows (the row filter) after the last key done. */
    char *after = is->next_key ? xasprintf("(%s) > %s", is->keys, is->next_key) : NULL;
    char *fw = pubrel_from_where(&is->pub, after);
    char *sql = xasprintf("COPY (SELECT %s %s ORDER BY %s LIMIT %" PRId64 ") TO STDOUT", is->cols,
                          fw, is->keys, limit);
    free(after);
    free(fw);
    char e[512];
    /* One snapshot for the read and for knowing what it saw. */
    PGresult *res =
        pgconn_exec(conn, e, sizeof e, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    PQclear(res);
    if (res)
        res = pgconn_exec(conn, e, sizeof e, "SELECT pg_current_snapshot()::text", 0, NULL);
    if (!res) {
        free(sql);
        PQclear(pgconn_exec(conn, e, sizeof e, "ROLLBACK", 0, NULL));
        return cdc_fail(err, errlen, CDC_ECONN, "incremental snapshot of %s: %s", is->table, e);
    }
    xidsnap_fini(&is->snap);
    xidsnap_parse(&is->snap, PQgetvalue(res, 0, 0));
    PQclear(res);
    res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        pgconn_result_error(res, e, sizeof e);
        PQclear(res);
        return cdc_fail(err, errlen, CDC_ECONN, "incremental snapshot of %s: %s", is->table, e);
    }
    PQclear(res);
    int rc = 0, n;
    char *line = NULL;
    struct buf kb = BUF_INIT;
    int64_t now = clock_wall_us();
    while ((n = PQgetCopyData(conn, &line, 0)) > 0) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        int64_t max = is->cfg->platform.max_event_bytes;
        if (!rc && max > 0 && len > (uint64_t)max)
            rc = cdc_fail(err, errlen, CDC_ERR, /* stops the pipeline */
                          "incremental snapshot of %s: a row of %zu bytes exceeds max_event_bytes "
                          "(%lld): raise it in platform.yaml to let it through",
                          is->table, len, (long long)max);
        if (rc) {
            PQfreemem(line);
            continue;
        }
        struct cdc_event *ev = cdc_event_new(0, is->tab->ncols, len + is->tab->ncols);
        cdc_event_empty_rows(ev, false, true);
        uint32_t dl = 0;
        if (!rc && copytext_row(line, len, is->tab->ncols, ev->after, ev->data, &dl, e, sizeof e)) {
            rc = cdc_fail(err, errlen, CDC_EINVAL, "incremental snapshot of %s: %s", is->table, e);
        }
        PQfreemem(line);
        if (rc) {
            cdc_event_unref(ev);
            continue;
        }
        ev->data_len = dl;
        ev->op = CDC_OP_READ;
        ev->snapshot = true;
        ev->snapshot_id = is->run_id;
        cdc_table_ref(is->tab);
        ev->tab = is->tab;
        ev->commit_ts = now;
        ev->emit_ts = now;
        if (is->nrows == is->caprows) {
            is->caprows = is->caprows ? 2 * is->caprows : 256;
            is->rows = xrealloc(is->rows, is->caprows * sizeof *is->rows);
        }
        is->rows[is->nrows++] = ev;
        key_text(ev, ev->after, &kb);
        strmap_put(is->by_key, kb.p ? kb.p : "", (void *)(uintptr_t)is->nrows);
    }
    buf_fini(&kb);
    if (n == -2 && !rc)
        rc = cdc_fail(err, errlen, CDC_ECONN, "incremental snapshot of %s: %s", is->table,
                      pgconn_error(conn, e, sizeof e));
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
            rc = cdc_fail(err, errlen, CDC_ECONN, "incremental snapshot of %s: %s", is->table,
                          pgconn_result_error(res, e, sizeof e));
        PQclear(res);
    }
    if (!rc && is->nrows > 0 && (int64_t)is->nrows == limit)
        is->chunk_last_key = key_literal(conn, is->rows[is->nrows - 1]);
    res = pgconn_exec(conn, e, sizeof e, "COMMIT", 0, NULL);
    if (!res && !rc)
        rc = cdc_fail(err, errlen, CDC_ECONN, "incremental snapshot of %s: %s", is->table, e);
    PQclear(res);
    return rc;
}

/* A chunk sequence number no other snapshot of the table used. */
static int next_chunk_seq(struct isnap *is, char *err, size_t errlen)
{
    char *key = xasprintf("%s%s", KEY_CHUNKSEQ, is->table);
    char *v = NULL;
    int rc = store_kv_get(is->store, key, &v, err, errlen);
    is->chunk_seq = v ? strtoull(v, NULL, 10) : 0;
    free(v);
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, is->chunk_seq + 1);
    if (!rc)
        rc = store_kv_put(is->store, key, num, err, errlen);
    free(key);
    return rc;
}

int isnap_step(struct isnap *is, PGconn *conn, char *err, size_t errlen)
{
    if (is->state != S_IDLE)
        return 0;
    while (!is->tab && is->nqueue) {
        int rc = start_table(is, conn, err, errlen);
        if (rc == 0)
            break;
        if (rc == CDC_ECONN) {
            drop_table(is);
            return rc;
        }
        /* A table that cannot be snapshotted incrementally is dropped from
         * the queue, loudly; the others go on. */
        log_error("snapshot.incremental_failed", "table=%s error=%s", is->queue[0], log_q(err));
        drop_table(is);
        free(is->queue[0]);
        memmove(is->queue, is->queue + 1, (is->nqueue - 1) * sizeof *is->queue);
        is->nqueue--;
        if ((rc = save_queue(is, err, errlen)))
            return rc;
    }
    if (!is->tab)
        return 0;
    is->counter++;
    snprintf(is->open_id, sizeof is->open_id, "%s|%s|%" PRIu64 "|open", is->cfg->pipeline_id,
             is->nonce, is->counter);
    snprintf(is->close_id, sizeof is->close_id, "%s|%s|%" PRIu64 "|close", is->cfg->pipeline_id,
             is->nonce, is->counter);
    int rc = next_chunk_seq(is, err, errlen);
    if (!rc)
        rc = write_watermark(is, conn, is->open_id, "snapshot-window-open", err, errlen);
    if (!rc)
        rc = read_chunk(is, conn, err, errlen);
    if (!rc)
        rc = write_watermark(is, conn, is->close_id, "snapshot-window-close", err, errlen);
    if (rc) {
        PQclear(PQexec(conn, "ROLLBACK")); /* if the read's transaction is still open */
        drop_rows(is);
        is->state = S_IDLE;
        return rc;
    }
    is->state = S_WAIT_OPEN;
    return 0;
}
