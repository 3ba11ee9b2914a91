/* Test helper: fills a pipeline's state store with dead-lettered events, as a
 * sink thread of `cdc run` would, so the `cdc dlq` commands can be tested
 * without provoking real delivery failures.
 *
 *   dlq_seed STATE_DB SINK_ID N [--pipeline ID] [--db NAME] [--prefix P]
 *            [--first-id K] [--lsn X/Y] [--ops mix|insert] [--error TEXT]
 *
 * The events are changes of a table public.items (id integer primary key,
 * name text, price numeric(10,2), active boolean, created_at timestamptz,
 * tags text[]): row ids K, K+1, ..., two per source transaction; with
 * --ops mix the operations cycle insert, update, delete.  For each entry it
 * prints one JSON object: {"id":ENTRY_ID,"position":"X/Y:I","key":KEY,
 * "envelope":ENVELOPE}, the envelope being exactly what was stored (and what
 * a file sink writes for the pipeline and database given). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "main/cli.h"
#include "state/store.h"
#include "util/buf.h"
#include "source/pg/pgjson.h"

#define NCOLS 6

static struct cdc_table *items_table(const char *prefix)
{
    static const struct {
        const char *name, *type;
        uint32_t oid;
        int32_t typmod;
        enum cdc_type cls;
    } cols[NCOLS] = {
        {"id", "integer", 23, -1, CDC_T_INT},
        {"name", "text", 25, -1, CDC_T_TEXT},
        {"price", "numeric(10,2)", 1700, (10 << 16 | 2) + 4, CDC_T_NUMERIC},
        {"active", "boolean", 16, -1, CDC_T_BOOL},
        {"created_at", "timestamp with time zone", 1184, -1, CDC_T_TIMESTAMPTZ},
        {"tags", "text[]", 1009, -1, CDC_T_ARRAY},
    };
    struct cdc_table *tab = cdc_table_new(16500, "public", "items", prefix, NCOLS);
    for (int i = 0; i < NCOLS; i++) {
        tab->cols[i].name = strdup(cols[i].name);
        tab->cols[i].type_name = strdup(cols[i].type);
        tab->cols[i].type_oid = cols[i].oid;
        tab->cols[i].typmod = cols[i].typmod;
        tab->cols[i].type = cols[i].cls;
        tab->cols[i].key = i == 0;
    }
    tab->replident = 'd';
    tab->key_unique = true;
    tab->version = 1;
    cdc_table_finish(tab);
    return tab;
}

static void set_text(struct cdc_event *ev, struct cdc_val *v, const char *s)
{
    size_t n = strlen(s);
    v->kind = CDC_V_TEXT;
    v->off = ev->data_len;
    v->len = (uint32_t)n;
    memcpy(ev->data + ev->data_len, s, n + 1);
    ev->data_len += (uint32_t)n + 1;
}

/* The full row for id, version v (updates change name, price and active). */
static void set_row(struct cdc_event *ev, struct cdc_val *row, int id, int v)
{
    char s[128];
    snprintf(s, sizeof s, "%d", id);
    set_text(ev, &row[0], s);
    snprintf(s, sizeof s, "item %d v%d: caf\xc3\xa9 \"quoted\" \\ tab\tend", id, v);
    set_text(ev, &row[1], s);
    snprintf(s, sizeof s, "%d.%02d", id * 3 + v, (id * 7) % 100);
    set_text(ev, &row[2], s);
    set_text(ev, &row[3], (id + v) % 2 ? "t" : "f");
    snprintf(s, sizeof s, "2024-06-12 10:%02d:%02d.123456+00", id % 60, v % 60);
    set_text(ev, &row[4], s);
    snprintf(s, sizeof s, "{red,\"with space\",%d}", id);
    set_text(ev, &row[5], s);
}

static void set_key_only(struct cdc_event *ev, struct cdc_val *row, int id)
{
    char s[32];
    snprintf(s, sizeof s, "%d", id);
    set_text(ev, &row[0], s);
    for (int i = 1; i < NCOLS; i++)
        row[i].kind = CDC_V_NULL;
}

static int parse_lsn(const char *s, uint64_t *lsn)
{
    unsigned hi, lo;
    char tail;
    if (sscanf(s, "%X/%X%c", &hi, &lo, &tail) != 2)
        return -1;
    *lsn = (uint64_t)hi << 32 | lo;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: dlq_seed STATE_DB SINK_ID N [--pipeline ID] [--db NAME] "
                    "[--prefix P] [--first-id K] [--lsn X/Y] [--ops mix|insert] "
                    "[--error TEXT]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    const char *path = argv[1], *sink_id = argv[2];
    int n = atoi(argv[3]);
    const char *pipeline = "t1", *db = "src", *prefix = "cdc", *ops = "mix";
    const char *error = "destination rejected the row (seeded failure)";
    int first_id = 1;
    uint64_t lsn0 = 0x3000000;
    for (int i = 4; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            return usage();
        i++;
        if (strcmp(opt, "--pipeline") == 0)
            pipeline = val;
        else if (strcmp(opt, "--db") == 0)
            db = val;
        else if (strcmp(opt, "--prefix") == 0)
            prefix = val;
        else if (strcmp(opt, "--first-id") == 0)
            first_id = atoi(val);
        else if (strcmp(opt, "--ops") == 0 && (!strcmp(val, "mix") || !strcmp(val, "insert")))
            ops = val;
        else if (strcmp(opt, "--error") == 0)
            error = val;
        else if (strcmp(opt, "--lsn") != 0 || parse_lsn(val, &lsn0) != 0)
            return usage();
    }
    if (n < 0)
        return usage();

    struct store *st;
    char err[1024];
    if (store_open(&st, path, err, sizeof err) != 0) {
        fprintf(stderr, "dlq_seed: %s\n", err);
        return 1;
    }
    const struct json_ctx ctx = {.pipeline_id = pipeline,
                                 .connector = "postgresql",
                                 .db = db,
                                 .version = CDC_VERSION,
                                 .source = pgjson_source};
    struct cdc_table *tab = items_table(prefix);
    struct buf key = BUF_INIT, val = BUF_INIT;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int id = first_id + i, txn = i / 2;
        char op = CDC_OP_INSERT;
        if (strcmp(ops, "mix") == 0)
            op = "cud"[i % 3];
        struct cdc_event *ev =
            cdc_event_new(op == CDC_OP_INSERT ? 0 : NCOLS, op == CDC_OP_DELETE ? 0 : NCOLS, 1024);
        ev->op = (uint8_t)op;
        cdc_table_ref(tab);
        ev->tab = tab;
        ev->pos.lsn = lsn0 + (uint64_t)txn * 0x1000;
        ev->pos.idx = (uint64_t)(i % 2);
        ev->lsn = ev->pos.lsn - 0x200 + ev->pos.idx * 0x48;
        ev->xid = 1000 + (uint32_t)txn;
        ev->commit_ts = 1718186400000000 + (int64_t)txn * 1000000;
        ev->emit_ts = 1718186400250000 + (int64_t)i * 1000;
        ev->total_order = (uint32_t)ev->pos.idx + 1;
        ev->table_order = ev->total_order;
        if (op != CDC_OP_INSERT) {
            ev->before_key_only = true;
            set_key_only(ev, ev->before, id);
        }
        if (op != CDC_OP_DELETE)
            set_row(ev, ev->after, id, op == CDC_OP_UPDATE ? 2 : 1);
        buf_reset(&key);
        buf_reset(&val);
        json_key(&key, ev);
        json_envelope(&val, ev, &ctx);
        struct dlq_failure f = {
            .sink_id = sink_id,
            .error_class = i % 4 == 3 ? "retryable" : "permanent",
            .error = error,
            .attempts = i % 4 == 3 ? 5 : 1,
            .http_status = 0,
            .first_failed_us = ev->emit_ts + 500000,
        };
        int64_t eid;
        if (store_dlq_add(st, ev, key.p, val.p, &f, &eid, err, sizeof err) != 0) {
            fprintf(stderr, "dlq_seed: %s\n", err);
            rc = 1;
        } else {
            char pos[CDC_POS_TEXT_MAX];
            printf("{\"id\":%" PRId64 ",\"position\":\"%s\",\"key\":%s,\"envelope\":%s}\n", eid,
                   cdc_pos_format(ev->pos, pos, sizeof pos), key.p, val.p);
        }
        cdc_event_unref(ev);
    }
    buf_fini(&key);
    buf_fini(&val);
    cdc_table_unref(tab);
    store_close(st);
    return rc;
}
