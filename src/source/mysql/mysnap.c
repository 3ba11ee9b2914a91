#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "source/mysql/mycharset.h"
#include "source/mysql/mysnap.h"
#include "source/mysql/mytype.h"
#include "source/mysql/myvalue.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/str.h"

struct mysnap {
    MYSQL *m;
    char file[256];
    uint32_t pos;
    char gtid[1024];
    int64_t ts_us;
};

struct mysnap_table {
    char *db, *name;
    uint32_t ncols;
    struct mycol *cols;    /* owned */
    struct cdc_table *tab; /* owned reference */
    uint32_t *key;         /* primary-key columns in key order */
    uint32_t nkey;
    struct buf select;    /* "SELECT ... FROM `db`.`t`" */
    struct buf order;     /* " ORDER BY `k1`,`k2`" */
    struct cdc_val *vals; /* scratch, ncols entries */
    char **last;          /* the last row's key values (raw), NULL before the first chunk */
    unsigned long *last_len;
    bool done;
};

int mysnap_open(struct mysnap **out, const struct myconn_cfg *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct mysnap *s = xcalloc(1, sizeof *s);
    int rc = myconn_open(&s->m, cfg, err, errlen);
    if (!rc)
        rc = myconn_exec(s->m, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", err,
                         errlen);
    if (!rc)
        rc = myconn_exec(s->m, "START TRANSACTION WITH CONSISTENT SNAPSHOT", err, errlen);
    s->ts_us = clock_wall_us();
    if (!rc && mysql_query(s->m, "SHOW STATUS LIKE 'binlog_snapshot_%'"))
        rc = myconn_fail(s->m, err, errlen, "reading the snapshot's binlog position");
    if (!rc) {
        MYSQL_RES *res = mysql_store_result(s->m);
        MYSQL_ROW row;
        while (res && (row = mysql_fetch_row(res))) {
            if (!row[0] || !row[1])
                continue;
            if (strcasecmp(row[0], "binlog_snapshot_file") == 0)
                str_copy(s->file, sizeof s->file, row[1]);
            else if (strcasecmp(row[0], "binlog_snapshot_position") == 0)
                s->pos = (uint32_t)strtoul(row[1], NULL, 10);
        }
        if (res)
            mysql_free_result(res);
        if (!s->file[0])
            rc = cdc_fail(err, errlen, CDC_ENOTSUP,
                          "the server has no binlog_snapshot_file status (MariaDB or Percona "
                          "Server needed for a lock-free consistent snapshot)");
    }
    if (!rc) {
        char sql[512];
        struct buf q = BUF_INIT;
        char esc[600];
        mysql_real_escape_string(s->m, esc, s->file, (unsigned long)strlen(s->file));
        buf_printf(&q, "SELECT BINLOG_GTID_POS('%s', %u)", esc, s->pos);
        str_copy(sql, sizeof sql, q.p);
        buf_fini(&q);
        rc = myconn_query_value(s->m, sql, s->gtid, sizeof s->gtid, err, errlen);
    }
    if (rc) {
        mysnap_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int mysnap_open_plain(struct mysnap **out, const struct myconn_cfg *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct mysnap *s = xcalloc(1, sizeof *s);
    int rc = myconn_open(&s->m, cfg, err, errlen);
    if (rc) {
        free(s);
        return rc;
    }
    s->ts_us = clock_wall_us();
    *out = s;
    return 0;
}

bool mysnap_alive(struct mysnap *s)
{
    return s && s->m && mysql_ping(s->m) == 0;
}

void mysnap_key_bound(const struct mysnap_table *t, const struct cdc_event *ev, struct buf *b)
{
    static const char hex[] = "0123456789abcdef";
    for (uint32_t k = 0; k < t->nkey; k++) {
        const struct cdc_val *v = &ev->after[t->key[k]];
        const unsigned char *p = (const unsigned char *)cdc_val_ptr(ev, v);
        buf_puts(b, k ? ",x" : "x");
        for (uint32_t i = 0; v->kind == CDC_V_TEXT && i < v->len; i++) {
            buf_putc(b, hex[p[i] >> 4]);
            buf_putc(b, hex[p[i] & 15]);
        }
    }
}

bool mysnap_key_readable(const struct mysnap_table *t)
{
    for (uint32_t k = 0; k < t->nkey; k++) {
        uint8_t ty = t->cols[t->key[k]].type;
        if (t->cols[t->key[k]].charset == MYCHARSET_BINARY &&
            (ty == MYT_STRING || ty == MYT_VARCHAR || ty == MYT_BLOB))
            return false;
        if (ty == MYT_TIMESTAMP2 || ty == MYT_BIT || ty == MYT_FLOAT || ty == MYT_DOUBLE)
            return false;
    }
    return t->nkey > 0;
}

void mysnap_close(struct mysnap *s)
{
    if (!s)
        return;
    if (s->m) {
        mysql_query(s->m, "COMMIT");
        mysql_close(s->m);
    }
    free(s);
}

const char *mysnap_file(const struct mysnap *s)
{
    return s->file;
}

uint32_t mysnap_pos(const struct mysnap *s)
{
    return s->pos;
}

const char *mysnap_gtid_state(const struct mysnap *s)
{
    return s->gtid;
}

int64_t mysnap_ts_us(const struct mysnap *s)
{
    return s->ts_us;
}

void mysnap_table_free(struct mysnap_table *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i < t->ncols; i++)
        mycol_fini(&t->cols[i]);
    if (t->last)
        for (uint32_t i = 0; i < t->nkey; i++)
            free(t->last[i]);
    free(t->last);
    free(t->last_len);
    free(t->cols);
    free(t->vals);
    free(t->key);
    free(t->db);
    free(t->name);
    cdc_table_unref(t->tab);
    buf_fini(&t->select);
    buf_fini(&t->order);
    free(t);
}

struct cdc_table *mysnap_table_shape(const struct mysnap_table *t)
{
    return t->tab;
}

static void put_ident(struct buf *b, const char *s)
{
    buf_putc(b, '`');
    for (; *s; s++) {
        if (*s == '`')
            buf_putc(b, '`');
        buf_putc(b, *s);
    }
    buf_putc(b, '`');
}

/* A key value read as text, as a literal that compares with column c the
 * way ORDER BY orders it: integers bare (a quoted one would compare as a
 * double), binary strings as bytes, other text in the column's collation. */
static void put_literal(MYSQL *m, struct buf *b, const struct mycol *c, const char *s,
                        unsigned long n)
{
    bool integer = c->type == MYT_TINY || c->type == MYT_SHORT || c->type == MYT_INT24 ||
                   c->type == MYT_LONG || c->type == MYT_LONGLONG || c->type == MYT_YEAR;
    for (unsigned long i = 0; integer && i < n; i++)
        integer = (s[i] >= '0' && s[i] <= '9') || (i == 0 && s[i] == '-' && n > 1);
    if (integer && n) {
        buf_put(b, s, n);
        return;
    }
    buf_reserve(b, 2 * (size_t)n + 16);
    buf_puts(b, c->charset == MYCHARSET_BINARY ? "_binary'" : "'");
    b->len += mysql_real_escape_string(m, b->p + b->len, s, n);
    b->p[b->len] = '\0';
    buf_putc(b, '\'');
}

/* The column description information_schema gives, in the terms of a
 * TABLE_MAP (mytype.h), so both paths map to the same types. */
static int describe_column(struct mycol *c, MYSQL_ROW r, char *err, size_t errlen)
{
    /* r: name, data_type, column_type, is_nullable, octet_length, precision,
     *    scale, datetime_precision, collation id, column_key */
    static const struct {
        const char *name;
        uint8_t type;
    } map[] = {
        {"tinyint", MYT_TINY},
        {"smallint", MYT_SHORT},
        {"mediumint", MYT_INT24},
        {"int", MYT_LONG},
        {"bigint", MYT_LONGLONG},
        {"float", MYT_FLOAT},
        {"double", MYT_DOUBLE},
        {"decimal", MYT_NEWDECIMAL},
        {"date", MYT_DATE},
        {"time", MYT_TIME2},
        {"datetime", MYT_DATETIME2},
        {"timestamp", MYT_TIMESTAMP2},
        {"year", MYT_YEAR},
        {"bit", MYT_BIT},
        {"enum", MYT_ENUM},
        {"set", MYT_SET},
        {"char", MYT_STRING},
        {"binary", MYT_STRING},
        {"varchar", MYT_VARCHAR},
        {"varbinary", MYT_VARCHAR},
        {"tinytext", MYT_BLOB},
        {"text", MYT_BLOB},
        {"mediumtext", MYT_BLOB},
        {"longtext", MYT_BLOB},
        {"json", MYT_BLOB},
        {"tinyblob", MYT_BLOB},
        {"blob", MYT_BLOB},
        {"mediumblob", MYT_BLOB},
        {"longblob", MYT_BLOB},
        {"geometry", MYT_GEOMETRY},
        {"point", MYT_GEOMETRY},
        {"linestring", MYT_GEOMETRY},
        {"polygon", MYT_GEOMETRY},
        {"multipoint", MYT_GEOMETRY},
        {"multilinestring", MYT_GEOMETRY},
        {"multipolygon", MYT_GEOMETRY},
        {"geometrycollection", MYT_GEOMETRY},
    };
    c->name = xstrdup(r[0]);
    const char *dt = r[1] ? r[1] : "";
    bool found = false;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcasecmp(dt, map[i].name) == 0) {
            c->type = map[i].type;
            found = true;
        }
    if (!found)
        return cdc_fail(err, errlen, CDC_ENOTSUP, "column %s: type %s is not supported", r[0], dt);
    c->is_unsigned = r[2] && strstr(r[2], "unsigned") != NULL;
    c->nullable = r[3] && strcasecmp(r[3], "YES") == 0;
    c->length = r[4] ? (uint32_t)strtoul(r[4], NULL, 10) : 0;
    unsigned long prec = r[5] ? strtoul(r[5], NULL, 10) : 0;
    c->scale = r[6] ? (uint8_t)strtoul(r[6], NULL, 10) : 0;
    c->fsp = r[7] ? (uint8_t)strtoul(r[7], NULL, 10) : 0;
    c->charset = r[8] ? (uint32_t)strtoul(r[8], NULL, 10) : 0;
    c->key = r[9] && strcmp(r[9], "PRI") == 0;
    if (c->type == MYT_NEWDECIMAL)
        c->precision = (uint8_t)prec;
    if (c->type == MYT_BIT)
        c->bits = (uint16_t)prec;
    if (c->type == MYT_FLOAT)
        c->pack_len = 4;
    if (c->type == MYT_DOUBLE)
        c->pack_len = 8;
    if (!r[8] && (c->type == MYT_STRING || c->type == MYT_VARCHAR || c->type == MYT_BLOB ||
                  c->type == MYT_GEOMETRY))
        c->charset = MYCHARSET_BINARY;
    return 0;
}

static int load_columns(struct mysnap *s, struct mysnap_table *t, char *err, size_t errlen)
{
    char edb[256 * 2 + 1], etab[256 * 2 + 1];
    if (strlen(t->db) > 255 || strlen(t->name) > 255)
        return cdc_fail(err, errlen, CDC_EINVAL, "table name too long");
    mysql_real_escape_string(s->m, edb, t->db, (unsigned long)strlen(t->db));
    mysql_real_escape_string(s->m, etab, t->name, (unsigned long)strlen(t->name));
    struct buf q = BUF_INIT;
    buf_printf(&q,
               "SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE, "
               "c.CHARACTER_OCTET_LENGTH, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, "
               "c.DATETIME_PRECISION, co.ID, c.COLUMN_KEY "
               "FROM information_schema.COLUMNS c LEFT JOIN information_schema.COLLATIONS co "
               "ON co.COLLATION_NAME = c.COLLATION_NAME "
               "WHERE c.TABLE_SCHEMA = '%s' AND c.TABLE_NAME = '%s' ORDER BY c.ORDINAL_POSITION",
               edb, etab);
    int q_rc = mysql_query(s->m, q.p);
    MYSQL_RES *res = q_rc ? NULL : mysql_store_result(s->m);
    int rc = 0;
    if (!res) {
        rc = myconn_fail(s->m, err, errlen, "reading the table's columns");
        goto out;
    }
    t->ncols = (uint32_t)mysql_num_rows(res);
    if (t->ncols == 0) {
        rc = cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s does not exist", t->db, t->name);
        goto out;
    }
    t->cols = xcalloc(t->ncols, sizeof *t->cols);
    MYSQL_ROW r;
    for (uint32_t i = 0; (r = mysql_fetch_row(res)) && !rc; i++) {
        char e[256];
        rc = describe_column(&t->cols[i], r, e, sizeof e);
        if (rc)
            cdc_fail(err, errlen, rc, "table %s.%s %s", t->db, t->name, e);
    }
    if (rc)
        goto out;
    mysql_free_result(res);
    res = NULL;
    /* Primary-key columns in key order. */
    buf_reset(&q);
    buf_printf(&q,
               "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE "
               "TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' AND CONSTRAINT_NAME = 'PRIMARY' "
               "ORDER BY ORDINAL_POSITION",
               edb, etab);
    if (mysql_query(s->m, q.p) || !(res = mysql_store_result(s->m))) {
        rc = myconn_fail(s->m, err, errlen, "reading the table's primary key");
        goto out;
    }
    t->key = xcalloc(t->ncols, sizeof *t->key);
    while ((r = mysql_fetch_row(res)))
        for (uint32_t i = 0; i < t->ncols; i++)
            if (strcmp(t->cols[i].name, r[0]) == 0)
                t->key[t->nkey++] = i;
out:
    if (res)
        mysql_free_result(res);
    buf_fini(&q);
    return rc;
}

int mysnap_table_open(struct mysnap *s, const char *db, const char *table, const char *topic_prefix,
                      struct mysnap_table **out, char *err, size_t errlen)
{
    *out = NULL;
    struct mysnap_table *t = xcalloc(1, sizeof *t);
    t->db = xstrdup(db);
    t->name = xstrdup(table);
    int rc = load_columns(s, t, err, errlen);
    if (rc) {
        mysnap_table_free(t);
        return rc;
    }
    t->vals = xcalloc(t->ncols, sizeof *t->vals);
    t->tab = cdc_table_new(0, db, table, topic_prefix, (uint16_t)t->ncols);
    t->tab->replident = 'f';
    buf_puts(&t->select, "SELECT ");
    for (uint32_t i = 0; i < t->ncols; i++) {
        const struct mycol *c = &t->cols[i];
        struct cdc_column *col = &t->tab->cols[i];
        char tn[64];
        col->name = xstrdup(c->name);
        col->type_name = xstrdup(mytype_pg_name(c, tn, sizeof tn));
        col->type = mytype_class(c);
        col->type_oid = c->type;
        col->typmod =
            c->type == MYT_NEWDECIMAL ? (int32_t)(c->precision << 8 | c->scale) : (int32_t)c->fsp;
        col->key = c->key;
        if (i)
            buf_puts(&t->select, ", ");
        myvalue_select_expr(c, &t->select);
    }
    cdc_table_finish(t->tab);
    t->tab->key_unique = t->tab->nkeys > 0;
    /* the raw key columns, after the converted ones, for the next chunk's bound */
    for (uint32_t k = 0; k < t->nkey; k++) {
        buf_puts(&t->select, ", ");
        put_ident(&t->select, t->cols[t->key[k]].name);
    }
    buf_puts(&t->select, " FROM ");
    put_ident(&t->select, db);
    buf_putc(&t->select, '.');
    put_ident(&t->select, table);
    if (t->nkey) {
        buf_puts(&t->order, " ORDER BY ");
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (k)
                buf_putc(&t->order, ',');
            put_ident(&t->order, t->cols[t->key[k]].name);
        }
    }
    *out = t;
    return 0;
}

static struct cdc_event *make_row(struct mysnap *s, struct mysnap_table *t, MYSQL_ROW r,
                                  unsigned long *lens, struct buf *data, int *rc, char *err,
                                  size_t errlen)
{
    buf_reset(data);
    struct cdc_val *vals = t->vals;
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (!r[i]) {
            vals[i] = (struct cdc_val){0, 0, CDC_V_NULL};
            continue;
        }
        size_t start = data->len;
        char e[200];
        *rc = myvalue_from_text(&t->cols[i], r[i], lens[i], data, e, sizeof e);
        if (*rc) {
            cdc_fail(err, errlen, *rc, "table %s.%s column %s: %s", t->db, t->name, t->cols[i].name,
                     e);
            return NULL;
        }
        vals[i] = (struct cdc_val){(uint32_t)start, (uint32_t)(data->len - start), CDC_V_TEXT};
        buf_putc(data, '\0');
    }
    struct cdc_event *ev = cdc_event_new(0, (uint16_t)t->ncols, data->len);
    memcpy(ev->data, data->p, data->len);
    ev->data_len = (uint32_t)data->len;
    memcpy(ev->after, vals, t->ncols * sizeof *vals);
    ev->op = CDC_OP_READ;
    ev->snapshot = true;
    cdc_table_ref(t->tab);
    ev->tab = t->tab;
    ev->commit_ts = s->ts_us;
    ev->emit_ts = clock_wall_us();
    return ev;
}

long mysnap_read_chunk(struct mysnap *s, struct mysnap_table *t, size_t limit,
                       int (*row)(void *arg, struct cdc_event *ev), void *arg, char *err,
                       size_t errlen)
{
    if (t->done)
        return 0;
    struct buf q = BUF_INIT;
    buf_put(&q, t->select.p, t->select.len);
    if (t->nkey && t->last) {
        buf_puts(&q, " WHERE (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (k)
                buf_putc(&q, ',');
            put_ident(&q, t->cols[t->key[k]].name);
        }
        buf_puts(&q, ") > (");
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (k)
                buf_putc(&q, ',');
            put_literal(s->m, &q, &t->cols[t->key[k]], t->last[k], t->last_len[k]);
        }
        buf_putc(&q, ')');
    }
    if (t->nkey) {
        buf_put(&q, t->order.p, t->order.len);
        buf_printf(&q, " LIMIT %zu", limit);
    }
    int rc = 0;
    long n = 0;
    if (mysql_real_query(s->m, q.p, (unsigned long)q.len)) {
        buf_fini(&q);
        return myconn_fail(s->m, err, errlen, "reading a snapshot chunk");
    }
    buf_fini(&q);
    MYSQL_RES *res = mysql_use_result(s->m);
    if (!res)
        return myconn_fail(s->m, err, errlen, "reading a snapshot chunk");
    struct buf data = BUF_INIT;
    MYSQL_ROW r;
    while ((r = mysql_fetch_row(res))) {
        unsigned long *lens = mysql_fetch_lengths(res);
        if (rc) /* drain the result after an error */
            continue;
        struct cdc_event *ev = make_row(s, t, r, lens, &data, &rc, err, errlen);
        if (!ev)
            continue;
        if (t->nkey) {
            if (!t->last) {
                t->last = xcalloc(t->nkey, sizeof *t->last);
                t->last_len = xcalloc(t->nkey, sizeof *t->last_len);
            }
            for (uint32_t k = 0; k < t->nkey; k++) {
                uint32_t c = t->ncols + k;
                free(t->last[k]);
                t->last[k] = xmalloc(lens[c] + 1);
                memcpy(t->last[k], r[c] ? r[c] : "", lens[c]);
                t->last_len[k] = lens[c];
            }
        }
        n++;
        rc = row(arg, ev);
    }
    if (!rc && mysql_errno(s->m))
        rc = myconn_fail(s->m, err, errlen, "reading a snapshot chunk");
    mysql_free_result(res);
    buf_fini(&data);
    if (rc)
        return rc;
    if (!t->nkey || (size_t)n < limit)
        t->done = true;
    return n;
}

/* ---------- planned chunks: key ranges ---------- */

/* A chunk line: "<lo>|<hi>", each bound "-" (none) or the key's values as
 * "x<hex>" joined by ','; rows with lo < key <= hi. */
static void put_bound(struct buf *b, MYSQL_ROW r, unsigned long *lens, uint32_t n)
{
    if (!r) {
        buf_putc(b, '-');
        return;
    }
    static const char hex[] = "0123456789abcdef";
    for (uint32_t k = 0; k < n; k++) {
        buf_puts(b, k ? ",x" : "x");
        for (unsigned long i = 0; i < lens[k]; i++) {
            buf_putc(b, hex[(unsigned char)r[k][i] >> 4]);
            buf_putc(b, hex[(unsigned char)r[k][i] & 15]);
        }
    }
}

static void put_key_list(struct buf *q, const struct mysnap_table *t)
{
    buf_putc(q, '(');
    for (uint32_t k = 0; k < t->nkey; k++) {
        if (k)
            buf_putc(q, ',');
        put_ident(q, t->cols[t->key[k]].name);
    }
    buf_putc(q, ')');
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends "(key) <op> (literals)" for a bound of a chunk line; *p advances
 * past it.  -1 if it does not parse. */
static int put_bound_cond(MYSQL *m, struct buf *q, const struct mysnap_table *t, const char **p,
                          const char *op)
{
    put_key_list(q, t);
    buf_printf(q, " %s (", op);
    struct buf v = BUF_INIT;
    int rc = 0;
    for (uint32_t k = 0; k < t->nkey && !rc; k++) {
        if (**p != 'x') {
            rc = -1;
            break;
        }
        (*p)++;
        buf_reset(&v);
        while (hexval((*p)[0]) >= 0 && hexval((*p)[1]) >= 0) {
            buf_putc(&v, (char)(hexval((*p)[0]) << 4 | hexval((*p)[1])));
            *p += 2;
        }
        if (k)
            buf_putc(q, ',');
        put_literal(m, q, &t->cols[t->key[k]], v.p ? v.p : "", (unsigned long)v.len);
        if (k + 1 < t->nkey && *(*p)++ != ',')
            rc = -1;
    }
    buf_fini(&v);
    buf_putc(q, ')');
    return rc;
}

int mysnap_plan(struct mysnap *s, struct mysnap_table *t, int64_t chunk_rows, struct buf *chunks,
                uint64_t *estimate, char *err, size_t errlen)
{
    *estimate = 0;
    char edb[512], etab[512], v[32] = "";
    mysql_real_escape_string(s->m, edb, t->db, (unsigned long)strlen(t->db));
    mysql_real_escape_string(s->m, etab, t->name, (unsigned long)strlen(t->name));
    struct buf q = BUF_INIT;
    buf_printf(&q,
               "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s' AND "
               "TABLE_NAME = '%s'",
               edb, etab);
    int rc = myconn_query_value(s->m, q.p, v, sizeof v, err, errlen);
    *estimate = strtoull(v, NULL, 10);
    if (rc || !t->nkey) {
        if (!rc)
            buf_puts(chunks, "-|-\n");
        buf_fini(&q);
        return rc;
    }
    /* Keyset steps: the key chunk_rows rows on from the last bound. */
    struct buf lo = BUF_INIT;
    buf_putc(&lo, '-');
    for (;;) {
        buf_reset(&q);
        buf_puts(&q, "SELECT ");
        for (uint32_t k = 0; k < t->nkey; k++) {
            if (k)
                buf_putc(&q, ',');
            put_ident(&q, t->cols[t->key[k]].name);
        }
        buf_puts(&q, " FROM ");
        put_ident(&q, t->db);
        buf_putc(&q, '.');
        put_ident(&q, t->name);
        if (lo.p[0] != '-') {
            buf_puts(&q, " WHERE ");
            const char *p = lo.p;
            put_bound_cond(s->m, &q, t, &p, ">");
        }
        buf_put(&q, t->order.p, t->order.len);
        buf_printf(&q, " LIMIT 1 OFFSET %lld", (long long)(chunk_rows > 0 ? chunk_rows - 1 : 0));
        if (mysql_real_query(s->m, q.p, (unsigned long)q.len)) {
            rc = myconn_fail(s->m, err, errlen, "planning snapshot chunks");
            break;
        }
        MYSQL_RES *res = mysql_store_result(s->m);
        if (!res) {
            rc = myconn_fail(s->m, err, errlen, "planning snapshot chunks");
            break;
        }
        MYSQL_ROW r = mysql_fetch_row(res);
        struct buf hi = BUF_INIT;
        put_bound(&hi, r, r ? mysql_fetch_lengths(res) : NULL, t->nkey);
        mysql_free_result(res);
        buf_printf(chunks, "%s|%s\n", lo.p, hi.p);
        buf_reset(&lo);
        buf_put(&lo, hi.p, hi.len);
        buf_fini(&hi);
        if (!r)
            break;
    }
    buf_fini(&lo);
    buf_fini(&q);
    return rc;
}

int mysnap_read_range(struct mysnap *s, struct mysnap_table *t, const char *chunk, size_t limit,
                      int (*row)(void *arg, struct cdc_event *ev), void *arg, char *err,
                      size_t errlen)
{
    struct buf q = BUF_INIT;
    buf_put(&q, t->select.p, t->select.len);
    const char *p = chunk;
    int bad = 0;
    if (t->nkey) {
        bool lo = *p != '-', hi;
        if (lo) {
            buf_puts(&q, " WHERE ");
            bad = put_bound_cond(s->m, &q, t, &p, ">");
        } else {
            p++;
        }
        if (!bad && *p++ != '|')
            bad = -1;
        hi = !bad && *p != '-';
        if (hi) {
            buf_puts(&q, lo ? " AND " : " WHERE ");
            bad = put_bound_cond(s->m, &q, t, &p, "<=");
        }
        buf_put(&q, t->order.p, t->order.len);
        if (limit)
            buf_printf(&q, " LIMIT %zu", limit);
    }
    if (bad) {
        buf_fini(&q);
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s: malformed snapshot chunk \"%s\"",
                        t->db, t->name, chunk);
    }
    if (mysql_real_query(s->m, q.p, (unsigned long)q.len)) {
        buf_fini(&q);
        return myconn_fail(s->m, err, errlen, "reading a snapshot chunk");
    }
    buf_fini(&q);
    MYSQL_RES *res = mysql_use_result(s->m);
    if (!res)
        return myconn_fail(s->m, err, errlen, "reading a snapshot chunk");
    struct buf data = BUF_INIT;
    MYSQL_ROW r;
    int rc = 0;
    while ((r = mysql_fetch_row(res))) {
        if (rc) /* drain the result after an error */
            continue;
        struct cdc_event *ev = make_row(s, t, r, mysql_fetch_lengths(res), &data, &rc, err, errlen);
        if (ev)
            rc = row(arg, ev);
    }
    if (!rc && mysql_errno(s->m))
        rc = myconn_fail(s->m, err, errlen, "reading a snapshot chunk");
    mysql_free_result(res);
    buf_fini(&data);
    return rc;
}
