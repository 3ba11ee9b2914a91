#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/mydecode.h"
#include "source/mysql/mycharset.h"
#include "source/mysql/myjson.h"
#include "source/mysql/rows.h"
#include "source/mysql/tablemap.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/str.h"

/* A table id's current map and, if captured, the cdc table built from it. */
struct tabentry {
    struct tablemap *tm;   /* owned */
    struct cdc_table *tab; /* owned reference; NULL if not captured */
    bool captured;
};

struct held {
    struct cdc_event *ev;
    struct mydecode_row row;
};

struct savepoint {
    char *name;  /* owned */
    size_t mark; /* held changes before it */
};

/* One GTID per replication domain. */
struct gtid_pos {
    uint32_t domain, server;
    uint64_t seq;
};

struct mydecode {
    struct mydecode_ops ops;
    void *arg;
    struct cdc_refbank tab_refs; /* references of the table being decoded */
    char *topic_prefix;
    char **tables;
    size_t ntables;
    size_t max_held;
    struct binlog_format fmt;
    struct mycharset_conv *cv;

    char file[MYDECODE_FILE_MAX];
    uint32_t pos; /* after the last complete group */

    struct tabentry *tabs; /* by table id, linear: few tables are live at once */
    uint64_t *tab_ids;
    size_t ntabs, captabs;
    uint32_t next_version;

    bool in_group;
    bool standalone; /* the group is one statement with no COMMIT */
    struct mydecode_txn txn;
    uint64_t next_idx;
    struct {
        uint64_t table_id;
        uint32_t n;
    } * orders;
    size_t norders, caporders;

    struct held *held;
    size_t nheld, capheld, held_bytes;
    struct savepoint *sps;
    size_t nsps, capsps;

    struct gtid_pos *gtids;
    size_t ngtids, capgtids;
    struct buf state; /* text of gtids */

    struct buf data; /* scratch: one row's values */
    struct cdc_val *vals;
    size_t capvals;
};

uint64_t mydecode_scalar(const char *file, uint32_t pos)
{
    return (uint64_t)binlog_file_seq(file, strlen(file)) << 32 | pos;
}

struct mydecode *mydecode_new(const struct mydecode_cfg *cfg, const struct mydecode_ops *ops,
                              void *arg)
{
    struct mydecode *d = xcalloc(1, sizeof *d);
    d->ops = *ops;
    d->arg = arg;
    d->topic_prefix = xstrdup(cfg->topic_prefix ? cfg->topic_prefix : "cdc");
    d->ntables = cfg->tables ? cfg->ntables : 0;
    d->tables = xcalloc(d->ntables ? d->ntables : 1, sizeof *d->tables);
    for (size_t i = 0; i < d->ntables; i++)
        d->tables[i] = xstrdup(cfg->tables[i]);
    d->max_held = cfg->max_held_bytes ? cfg->max_held_bytes : (size_t)64 << 20;
    binlog_format_init(&d->fmt, cfg->checksum);
    d->cv = mycharset_conv_new();
    return d;
}

static void drop_held(struct mydecode *d, size_t from)
{
    for (size_t i = from; i < d->nheld; i++) {
        d->held_bytes -= d->held[i].ev->size;
        cdc_event_unref(d->held[i].ev);
    }
    d->nheld = from < d->nheld ? from : d->nheld;
}

static void clear_savepoints(struct mydecode *d, size_t from)
{
    for (size_t i = from; i < d->nsps; i++)
        free(d->sps[i].name);
    d->nsps = from < d->nsps ? from : d->nsps;
}

void mydecode_free(struct mydecode *d)
{
    if (!d)
        return;
    drop_held(d, 0);
    clear_savepoints(d, 0);
    cdc_refbank_drop(&d->tab_refs);
    for (size_t i = 0; i < d->ntabs; i++) {
        tablemap_free(d->tabs[i].tm);
        cdc_table_unref(d->tabs[i].tab);
    }
    for (size_t i = 0; i < d->ntables; i++)
        free(d->tables[i]);
    free(d->tables);
    free(d->tabs);
    free(d->tab_ids);
    free(d->orders);
    free(d->held);
    free(d->sps);
    free(d->gtids);
    free(d->vals);
    free(d->topic_prefix);
    buf_fini(&d->state);
    buf_fini(&d->data);
    mycharset_conv_free(d->cv);
    free(d);
}

/* ---- GTID state ------------------------------------------------------ */

static void gtid_set(struct gtid_pos **arr, size_t *n, size_t *cap, struct gtid_pos g)
{
    size_t i = 0;
    while (i < *n && (*arr)[i].domain < g.domain)
        i++;
    if (i < *n && (*arr)[i].domain == g.domain) {
        (*arr)[i] = g;
        return;
    }
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        *arr = xrealloc(*arr, *cap * sizeof **arr);
    }
    memmove(*arr + i + 1, *arr + i, (*n - i) * sizeof **arr);
    (*arr)[i] = g;
    (*n)++;
}

static void gtid_text(struct buf *b, const struct gtid_pos *g, size_t n)
{
    buf_reset(b);
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s%u-%u-%llu", i ? "," : "", g[i].domain, g[i].server,
                   (unsigned long long)g[i].seq);
    if (!b->p)
        buf_puts(b, "");
}

static int gtid_parse(const char *text, struct gtid_pos **arr, size_t *n, size_t *cap, char *err,
                      size_t errlen)
{
    const char *s = text ? text : "";
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\n')
            s++;
        if (!*s)
            break;
        unsigned long long dom, srv, seq;
        int used = 0;
        if (sscanf(s, "%llu-%llu-%llu%n", &dom, &srv, &seq, &used) != 3 || dom > UINT32_MAX ||
            srv > UINT32_MAX || (s[used] && s[used] != ',' && s[used] != ' '))
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "GTID state \"%s\": expected domain-server-sequence[,...]", text);
        gtid_set(arr, n, cap, (struct gtid_pos){(uint32_t)dom, (uint32_t)srv, seq});
        s += used;
    }
    return 0;
}

int mydecode_gtid_state_parse(const char *text, struct buf *canonical, char *err, size_t errlen)
{
    struct gtid_pos *arr = NULL;
    size_t n = 0, cap = 0;
    int rc = gtid_parse(text, &arr, &n, &cap, err, errlen);
    if (rc == 0)
        gtid_text(canonical, arr, n);
    free(arr);
    return rc;
}

int mydecode_set_start(struct mydecode *d, const char *file, uint32_t pos, const char *gtid_state,
                       char *err, size_t errlen)
{
    str_copy(d->file, sizeof d->file, file ? file : "");
    d->pos = pos;
    d->ngtids = 0;
    int rc = gtid_parse(gtid_state, &d->gtids, &d->ngtids, &d->capgtids, err, errlen);
    gtid_text(&d->state, d->gtids, d->ngtids);
    return rc;
}

const char *mydecode_gtid_state(const struct mydecode *d)
{
    return d->state.p ? d->state.p : "";
}

const char *mydecode_file(const struct mydecode *d)
{
    return d->file;
}

uint32_t mydecode_pos(const struct mydecode *d)
{
    return d->pos;
}

bool mydecode_in_group(const struct mydecode *d)
{
    return d->in_group;
}

/* ---- tables ------------------------------------------------------------ */

static bool is_captured(const struct mydecode *d, const char *db, const char *table)
{
    if (!d->ntables) {
        static const char *const system[] = {"mysql", "information_schema", "performance_schema",
                                             "sys"};
        for (size_t i = 0; i < sizeof system / sizeof *system; i++)
            if (strcmp(db, system[i]) == 0)
                return false;
        return true;
    }
    size_t dl = strlen(db);
    for (size_t i = 0; i < d->ntables; i++) {
        const char *t = d->tables[i];
        if (strncmp(t, db, dl) == 0 && t[dl] == '.' && strcmp(t + dl + 1, table) == 0)
            return true;
    }
    return false;
}

static struct tabentry *find_table(struct mydecode *d, uint64_t id)
{
    for (size_t i = 0; i < d->ntabs; i++)
        if (d->tab_ids[i] == id)
            return &d->tabs[i];
    return NULL;
}

static struct cdc_table *build_table(struct mydecode *d, const struct tablemap *tm)
{
    struct cdc_table *tab =
        cdc_table_new(tm->table_id, tm->db, tm->table, d->topic_prefix, (uint16_t)tm->ncols);
    tab->version = ++d->next_version;
    tab->replident = 'f'; /* row images are full (binlog_row_image=FULL) */
    for (uint32_t i = 0; i < tm->ncols; i++) {
        const struct mycol *c = &tm->cols[i];
        struct cdc_column *col = &tab->cols[i];
        char tn[64];
        col->name = xstrdup(c->name);
        col->type_name = xstrdup(mytype_pg_name(c, tn, sizeof tn));
        col->type = mytype_class(c);
        col->type_oid = c->type;
        col->typmod =
            c->type == MYT_NEWDECIMAL ? (int32_t)(c->precision << 8 | c->scale) : (int32_t)c->fsp;
        col->key = c->key;
    }
    cdc_table_finish(tab);
    tab->key_unique = tab->nkeys > 0;
    return tab;
}

static int on_table_map(struct mydecode *d, const struct binlog_event *ev, char *err, size_t errlen)
{
    uint64_t id;
    if (tablemap_peek_id(&d->fmt, ev, &id))
        return cdc_fail(err, errlen, CDC_EINVAL, "table map event too short");
    struct tabentry *e = find_table(d, id);
    size_t pl = d->fmt.post_len[BINLOG_TABLE_MAP] ? d->fmt.post_len[BINLOG_TABLE_MAP] : 8;
    if (e && e->tm->shape_len == ev->body_len - pl &&
        memcmp(e->tm->shape, ev->body + pl, e->tm->shape_len) == 0)
        return 0; /* the same shape as before: keep the table and its version */
    struct tablemap *tm;
    int rc = tablemap_parse(&d->fmt, ev, d->cv, &tm, err, errlen);
    if (rc)
        return rc;
    if (!e) {
        if (d->ntabs == d->captabs) {
            d->captabs = d->captabs ? 2 * d->captabs : 16;
            d->tabs = xrealloc(d->tabs, d->captabs * sizeof *d->tabs);
            d->tab_ids = xrealloc(d->tab_ids, d->captabs * sizeof *d->tab_ids);
        }
        e = &d->tabs[d->ntabs];
        d->tab_ids[d->ntabs++] = id;
        memset(e, 0, sizeof *e);
    }
    tablemap_free(e->tm);
    cdc_table_unref(e->tab);
    e->tm = tm;
    e->tab = NULL;
    e->captured = is_captured(d, tm->db, tm->table);
    if (e->captured) {
        bool charsets = true;
        for (uint32_t i = 0; i < tm->ncols; i++)
            charsets &= !mytype_is_character(tm->cols[i].type) || tm->cols[i].charset != 0;
        if (!tm->have_names || !charsets)
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "table %s.%s: the binlog at %s:%u has no column names or charsets "
                            "(it was written while binlog_row_metadata was not FULL)",
                            tm->db, tm->table, d->file, ev->h.next_pos - ev->h.size);
        e->tab = build_table(d, tm);
    }
    return 0;
}

/* ---- emitting ----------------------------------------------------------- */

static uint32_t table_order(struct mydecode *d, uint64_t table_id)
{
    for (size_t i = 0; i < d->norders; i++)
        if (d->orders[i].table_id == table_id)
            return ++d->orders[i].n;
    if (d->norders == d->caporders) {
        d->caporders = d->caporders ? 2 * d->caporders : 8;
        d->orders = xrealloc(d->orders, d->caporders * sizeof *d->orders);
    }
    d->orders[d->norders].table_id = table_id;
    d->orders[d->norders++].n = 1;
    return 1;
}

/* Numbers the change in its group and hands it over. */
static int emit_change(struct mydecode *d, struct cdc_event *ev, const struct mydecode_row *row)
{
    ev->pos.lsn = d->txn.begin;
    ev->pos.idx = d->next_idx++;
    ev->total_order = (uint32_t)ev->pos.idx + 1;
    ev->table_order = table_order(d, ev->tab ? ev->tab->id : 0);
    d->txn.nchanges++;
    return d->ops.change(d->arg, ev, row);
}

static int flush_held(struct mydecode *d)
{
    int rc = 0;
    size_t i = 0;
    for (; i < d->nheld && rc == 0; i++) {
        d->held_bytes -= d->held[i].ev->size;
        rc = emit_change(d, d->held[i].ev, &d->held[i].row);
    }
    for (; i < d->nheld; i++) {
        d->held_bytes -= d->held[i].ev->size;
        cdc_event_unref(d->held[i].ev);
    }
    d->nheld = 0;
    return rc;
}

static int push_change(struct mydecode *d, struct cdc_event *ev, const struct mydecode_row *row,
                       char *err, size_t errlen)
{
    if (d->nsps == 0)
        return emit_change(d, ev, row);
    if (d->held_bytes + ev->size > d->max_held) {
        cdc_event_unref(ev);
        return cdc_fail(err, errlen, CDC_ENOTSUP,
                        "transaction %s at %s:%u: more than %zu bytes of changes after a "
                        "SAVEPOINT; raise the limit or avoid savepoints in transactions that "
                        "also change non-transactional tables",
                        d->txn.gtid_text, d->txn.file, d->txn.begin_pos, d->max_held);
    }
    if (d->nheld == d->capheld) {
        d->capheld = d->capheld ? 2 * d->capheld : 64;
        d->held = xrealloc(d->held, d->capheld * sizeof *d->held);
    }
    d->held[d->nheld].ev = ev;
    d->held[d->nheld++].row = *row;
    d->held_bytes += ev->size;
    return 0;
}

static void begin_group(struct mydecode *d, const struct binlog_event *ev, uint32_t start)
{
    memset(&d->txn, 0, sizeof d->txn);
    d->in_group = true;
    d->standalone = false;
    d->next_idx = 0;
    d->norders = 0;
    str_copy(d->txn.file, sizeof d->txn.file, d->file);
    d->txn.begin_pos = start;
    d->txn.begin = mydecode_scalar(d->file, start);
    d->txn.server_id = ev->h.server_id;
    d->txn.ts_us = (int64_t)ev->h.timestamp * 1000000;
}

static int end_group(struct mydecode *d, const struct binlog_event *ev, char *err, size_t errlen)
{
    int rc = flush_held(d);
    clear_savepoints(d, 0);
    if (rc)
        return rc;
    d->in_group = false;
    d->txn.end_pos = ev->h.next_pos;
    d->txn.end = mydecode_scalar(d->file, ev->h.next_pos);
    d->pos = ev->h.next_pos;
    if (d->txn.have_gtid) {
        gtid_set(&d->gtids, &d->ngtids, &d->capgtids,
                 (struct gtid_pos){d->txn.gtid.domain, d->txn.gtid.server_id, d->txn.gtid.seq});
        gtid_text(&d->state, d->gtids, d->ngtids);
    }
    d->txn.gtid_state = mydecode_gtid_state(d);
    struct cdc_event *c = cdc_event_new(0, 0, 0);
    c->op = CDC_OP_COMMIT;
    c->pos = (struct cdc_pos){d->txn.begin, CDC_POS_TXN_END, 0};
    c->end_lsn = d->txn.end;
    c->lsn = mydecode_scalar(d->file, ev->h.next_pos - ev->h.size);
    c->xid = d->txn.have_gtid ? d->txn.gtid.seq : d->txn.xid;
    c->commit_ts = d->txn.ts_us;
    c->emit_ts = clock_wall_us();
    c->total_order = (uint32_t)d->next_idx;
    (void)err;
    (void)errlen;
    return d->ops.commit(d->arg, c, &d->txn);
}

/* ---- rows ----------------------------------------------------------------- */

static int on_rows(struct mydecode *d, const struct binlog_event *ev, uint32_t start, char *err,
                   size_t errlen)
{
    struct rows_event re;
    int rc = rows_parse(&d->fmt, ev, &re, err, errlen);
    if (rc)
        return rc;
    struct tabentry *e = find_table(d, re.table_id);
    if (!e)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "rows event at %s:%u for table id %llu without a table map", d->file, start,
                        (unsigned long long)re.table_id);
    if (!e->captured)
        return 0;
    if (!e->tab) /* its table map was refused: never skip the rows silently */
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "rows event at %s:%u for %s.%s, whose table map could not be used", d->file,
                        start, e->tm->db, e->tm->table);
    if (!d->in_group)
        return cdc_fail(err, errlen, CDC_EINVAL, "rows event at %s:%u outside a transaction",
                        d->file, start);
    struct tablemap *tm = e->tm;
    size_t n = tm->ncols;
    if (d->capvals < 2 * n) {
        d->capvals = 2 * n;
        d->vals = xrealloc(d->vals, d->capvals * sizeof *d->vals);
    }
    struct cdc_val *before = d->vals, *after = d->vals + n;
    const uint8_t *cur = re.rows;
    /* Where the rows came from, shared by them (each holds a reference). */
    struct mydecode_row where = {&d->txn, start, 0, (int64_t)ev->h.timestamp * 1000000};
    struct cdc_srcmeta *sm = myjson_meta_new(&where);
    for (uint32_t row = 0; cur < re.end && rc == 0; row++) {
        const uint8_t *row_start = cur;
        buf_reset(&d->data);
        bool has_before = re.op != 'c', has_after = re.op != 'd';
        if (has_before && (rc = rows_read_image(&re, tm, re.present, &cur, before, &d->data, d->cv,
                                                err, errlen)) != 0)
            break;
        if (has_after && (rc = rows_read_image(&re, tm, re.present_after, &cur, after, &d->data,
                                               d->cv, err, errlen)) != 0)
            break;
        if (cur == row_start) { /* an image of no columns: the event is damaged */
            rc = cdc_fail(err, errlen, CDC_EINVAL,
                          "rows event at %s:%u for %s.%s carries rows without columns", d->file,
                          start, tm->db, tm->table);
            break;
        }
        struct cdc_event *out =
            cdc_event_new(has_before ? (uint16_t)n : 0, has_after ? (uint16_t)n : 0, d->data.len);
        if (d->data.len) /* all values NULL or empty: no bytes, maybe no buffer */
            memcpy(out->data, d->data.p, d->data.len);
        out->data_len = (uint32_t)d->data.len;
        if (has_before && n)
            memcpy(out->before, before, n * sizeof *before);
        if (has_after && n)
            memcpy(out->after, after, n * sizeof *after);
        out->op = (uint8_t)re.op;
        out->tab = cdc_refbank_take(&d->tab_refs, e->tab);
        out->lsn = mydecode_scalar(d->file, start);
        out->xid = d->txn.have_gtid ? d->txn.gtid.seq : 0;
        out->commit_ts = d->txn.ts_us;
        out->emit_ts = clock_wall_us();
        cdc_srcmeta_ref(sm);
        out->srcmeta = sm;
        out->src_row = row;
        where.row = row;
        rc = push_change(d, out, &where, err, errlen);
    }
    cdc_srcmeta_unref(sm);
    return rc;
}

/* ---- queries -------------------------------------------------------------- */

static int find_savepoint(const struct mydecode *d, const char *name, size_t len)
{
    for (size_t i = d->nsps; i-- > 0;)
        if (strlen(d->sps[i].name) == len && memcmp(d->sps[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int on_query(struct mydecode *d, const struct binlog_event *ev, uint32_t start, char *err,
                    size_t errlen)
{
    struct binlog_query q;
    int rc = binlog_parse_query(&d->fmt, ev, &q, err, errlen);
    if (rc)
        return rc;
    const char *name;
    size_t name_len;
    enum binlog_stmt kind = binlog_query_kind(q.sql, q.sql_len, &name, &name_len);
    if (d->in_group) {
        d->txn.have_thread = true;
        d->txn.thread_id = q.thread_id;
    }
    switch (kind) {
    case BINLOG_STMT_BEGIN:
        if (!d->in_group)
            begin_group(d, ev, start); /* servers without GTIDs */
        d->txn.have_thread = true;
        d->txn.thread_id = q.thread_id;
        return 0;
    case BINLOG_STMT_COMMIT:
        return d->in_group ? end_group(d, ev, err, errlen) : 0;
    case BINLOG_STMT_ROLLBACK:
        if (!d->in_group)
            return 0;
        if (d->txn.nchanges > 0)
            return cdc_fail(err, errlen, CDC_ENOTSUP,
                            "transaction %s at %s:%u was rolled back after %llu of its changes "
                            "were delivered",
                            d->txn.gtid_text, d->txn.file, d->txn.begin_pos,
                            (unsigned long long)d->txn.nchanges);
        drop_held(d, 0);
        clear_savepoints(d, 0);
        return end_group(d, ev, err, errlen);
    case BINLOG_STMT_SAVEPOINT:
        if (d->in_group) {
            if (d->nsps == d->capsps) {
                d->capsps = d->capsps ? 2 * d->capsps : 4;
                d->sps = xrealloc(d->sps, d->capsps * sizeof *d->sps);
            }
            d->sps[d->nsps].name = xstrndup(name, name_len);
            d->sps[d->nsps++].mark = d->nheld;
        }
        return 0;
    case BINLOG_STMT_ROLLBACK_TO: {
        int i = d->in_group ? find_savepoint(d, name, name_len) : -1;
        if (i < 0) {
            if (d->in_group && d->nheld == 0 && d->txn.nchanges == 0)
                return 0; /* nothing of this group went out or is held */
            return cdc_fail(err, errlen, CDC_ENOTSUP,
                            "transaction %s at %s:%u rolls back to savepoint %.*s, which is not "
                            "known",
                            d->txn.gtid_text, d->txn.file, d->txn.begin_pos, (int)name_len, name);
        }
        drop_held(d, d->sps[i].mark);
        clear_savepoints(d, (size_t)i + 1);
        return 0;
    }
    case BINLOG_STMT_RELEASE: {
        int i = d->in_group ? find_savepoint(d, name, name_len) : -1;
        if (i >= 0)
            clear_savepoints(d, (size_t)i);
        return d->nsps == 0 ? flush_held(d) : 0;
    }
    case BINLOG_STMT_XA:
        if (d->in_group && d->standalone)
            return end_group(d, ev, err, errlen);
        return 0;
    default:
        break;
    }
    /* DDL and other statements. */
    if (d->in_group)
        d->txn.ddl = true;
    if (d->ops.query) {
        rc = d->ops.query(d->arg, &q, d->in_group ? &d->txn : NULL);
        if (rc)
            return rc;
    }
    if (d->in_group && d->standalone)
        return end_group(d, ev, err, errlen);
    return 0;
}

/* ---- the event switch ------------------------------------------------------ */

int mydecode_feed(struct mydecode *d, const uint8_t *p, size_t n, char *err, size_t errlen)
{
    struct binlog_event ev;
    int rc = binlog_frame(&d->fmt, p, n, &ev, err, errlen);
    if (rc)
        return rc;
    /* Offset of this event in its file; artificial events have none. */
    uint32_t start = ev.h.next_pos >= ev.h.size ? ev.h.next_pos - ev.h.size : 0;
    switch (ev.h.type) {
    case BINLOG_FORMAT_DESCRIPTION:
        return binlog_parse_format(&d->fmt, &ev, err, errlen);
    case BINLOG_ROTATE: {
        struct binlog_rotate r;
        rc = binlog_parse_rotate(&d->fmt, &ev, &r, err, errlen);
        if (rc)
            return rc;
        if (d->in_group && !(ev.h.flags & BINLOG_F_ARTIFICIAL))
            return cdc_fail(err, errlen, CDC_EINVAL, "binlog rotates inside transaction %s",
                            d->txn.gtid_text);
        if (r.file_len >= sizeof d->file)
            return cdc_fail(err, errlen, CDC_EINVAL, "binlog file name too long");
        memcpy(d->file, r.file, r.file_len);
        d->file[r.file_len] = '\0';
        d->pos = (uint32_t)r.pos;
        if (d->in_group) { /* a reconnect restarted the dump mid-group */
            drop_held(d, 0);
            clear_savepoints(d, 0);
            d->in_group = false;
        }
        return 0;
    }
    case BINLOG_GTID: {
        struct binlog_gtid g;
        rc = binlog_parse_gtid(&ev, &g, err, errlen);
        if (rc)
            return rc;
        if (d->in_group)
            return cdc_fail(
                err, errlen, CDC_EINVAL, "GTID %u-%u-%llu at %s:%u starts inside transaction %s",
                g.domain, g.server_id, (unsigned long long)g.seq, d->file, start, d->txn.gtid_text);
        if (g.flags & BINLOG_GTID_PREPARED_XA)
            return cdc_fail(err, errlen, CDC_ENOTSUP,
                            "XA transaction %u-%u-%llu at %s:%u: XA PREPARE is not supported",
                            g.domain, g.server_id, (unsigned long long)g.seq, d->file, start);
        begin_group(d, &ev, start);
        d->txn.have_gtid = true;
        d->txn.gtid = g;
        snprintf(d->txn.gtid_text, sizeof d->txn.gtid_text, "%u-%u-%llu", g.domain, g.server_id,
                 (unsigned long long)g.seq);
        d->standalone = (g.flags & BINLOG_GTID_STANDALONE) != 0;
        return 0;
    }
    case BINLOG_GTID_LIST: {
        struct binlog_gtid_list l;
        rc = binlog_parse_gtid_list(&ev, &l, err, errlen);
        if (rc || d->ngtids)
            return rc;
        for (uint32_t i = 0; i < l.count; i++) {
            struct binlog_gtid g;
            binlog_gtid_list_at(&l, i, &g);
            gtid_set(&d->gtids, &d->ngtids, &d->capgtids,
                     (struct gtid_pos){g.domain, g.server_id, g.seq});
        }
        gtid_text(&d->state, d->gtids, d->ngtids);
        return 0;
    }
    case BINLOG_TABLE_MAP:
        return on_table_map(d, &ev, err, errlen);
    case BINLOG_QUERY:
        return on_query(d, &ev, start, err, errlen);
    case BINLOG_XID:
        rc = binlog_parse_xid(&ev, &d->txn.xid, err, errlen);
        if (rc || !d->in_group)
            return rc;
        d->txn.have_xid = true;
        return end_group(d, &ev, err, errlen);
    case BINLOG_XA_PREPARE:
        return cdc_fail(err, errlen, CDC_ENOTSUP, "XA PREPARE at %s:%u is not supported", d->file,
                        start);
    case BINLOG_HEARTBEAT:
        if (d->in_group || !d->ops.idle)
            return 0;
        return d->ops.idle(d->arg, d->file, ev.h.next_pos ? ev.h.next_pos : d->pos);
    case BINLOG_QUERY_COMPRESSED:
    case BINLOG_TRANSACTION_PAYLOAD:
    case BINLOG_PARTIAL_UPDATE_ROWS:
        return cdc_fail(err, errlen, CDC_ENOTSUP,
                        "binlog event type %u at %s:%u is not supported (compressed or partial "
                        "events: set log_bin_compress=OFF)",
                        ev.h.type, d->file, start);
    default:
        if (rows_is_rows_event(ev.h.type))
            return on_rows(d, &ev, start, err, errlen);
        if (rows_is_compressed(ev.h.type))
            return cdc_fail(err, errlen, CDC_ENOTSUP,
                            "compressed rows event at %s:%u is not supported: set "
                            "log_bin_compress=OFF",
                            d->file, start);
        return 0; /* ANNOTATE_ROWS, BINLOG_CHECKPOINT, INTVAR, ...: nothing to do */
    }
}
