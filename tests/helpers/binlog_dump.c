/* binlog_dump: streams a MySQL / MariaDB binlog through cdc's decoder and
 * prints one Debezium-style JSON envelope per change (with the mysql source
 * block), for the integration tests until the source runs inside `cdc run`.
 *
 *   binlog_dump --port P [--host H] [--user U] [--password-env VAR]
 *               [--server-id N] [--gtid STATE | --file F --pos N]
 *               [--tables db.t,db.u] [--name NAME]
 *               [--stop-at-gtid D-S-N] [--max-events N] [--nonblock]
 *               [--heartbeat-ms N] [--commits] [--capture FILE]
 *   binlog_dump --replay FILE [--checksum] ...      decode captured events
 *   binlog_dump --check --port P [--tables ...]     the server checks only
 *   binlog_dump --snapshot db.t[,db.u] --port P [--chunk N]
 *               consistent snapshot reads: one op "r" envelope per row
 *
 * Exit status: 0 done, 2 the binlog is gone (error 1236), 3 a server check
 * refused, 1 any other error (on stderr).  The last line on stderr is
 * "end file=F pos=N gtid_state=S" (where a restart would resume). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "source/mysql/myconn.h"
#include "source/mysql/mydecode.h"
#include "source/mysql/myjson.h"
#include "source/mysql/mysnap.h"
#include "source/mysql/mystream.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

struct opts {
    const char *host, *user, *password_env, *gtid, *file, *tables, *name, *stop_gtid;
    const char *capture, *replay, *snapshot;
    long chunk;
    unsigned port, heartbeat_ms;
    uint32_t server_id, pos;
    long long max_events;
    int nonblock, commits, check, checksum;
};

struct dump {
    struct opts *o;
    struct buf out;
    FILE *capture;
    long long nchanges;
    int done;
};

static struct mystream *volatile g_stream;

static void on_signal(int sig)
{
    (void)sig;
    if (g_stream)
        mystream_interrupt(g_stream);
}

static void put_row(struct buf *b, const struct cdc_event *ev, const struct cdc_val *row)
{
    if (!row) {
        buf_puts(b, "null");
        return;
    }
    buf_putc(b, '{');
    for (uint16_t i = 0; i < ev->tab->ncols; i++) {
        const struct cdc_column *c = &ev->tab->cols[i];
        if (i)
            buf_putc(b, ',');
        json_string(b, c->name, strlen(c->name));
        buf_putc(b, ':');
        const struct cdc_val *v = &row[i];
        if (v->kind == CDC_V_TEXT)
            json_value(b, c->type, cdc_val_ptr(ev, v), v->len);
        else if (v->kind == CDC_V_UNCHANGED)
            buf_puts(b, "\"" JSON_UNAVAILABLE_VALUE "\"");
        else
            buf_puts(b, "null");
    }
    buf_putc(b, '}');
}

static void flush_out(struct dump *d)
{
    if (d->out.len)
        fwrite(d->out.p, 1, d->out.len, stdout);
    buf_reset(&d->out);
}

static int on_change(void *arg, struct cdc_event *ev, const struct mydecode_row *row)
{
    struct dump *d = arg;
    struct buf *b = &d->out;
    /* the block from the event's source metadata, as a pipeline writes it */
    struct json_ctx jc = {.pipeline_id = d->o->name, .version = "0.1.0"};
    buf_puts(b, "{\"before\":");
    put_row(b, ev, ev->op == 'c' ? NULL : ev->before);
    buf_puts(b, ",\"after\":");
    put_row(b, ev, ev->op == 'd' ? NULL : ev->after);
    buf_puts(b, ",\"source\":");
    myjson_event_source(b, ev, &jc, true);
    buf_printf(b, ",\"op\":\"%c\",\"ts_ms\":%lld,\"transaction\":{\"id\":", ev->op,
               (long long)(ev->emit_ts / 1000));
    const char *id = row->txn->gtid_text;
    json_string(b, id, strlen(id));
    buf_printf(b, ",\"total_order\":%u,\"data_collection_order\":%u}}\n", ev->total_order,
               ev->table_order);
    /* extra fields for tests: positions and types, after the envelope */
    if (b->len > (1 << 20))
        flush_out(d);
    cdc_event_unref(ev);
    d->nchanges++;
    if (d->o->max_events > 0 && d->nchanges >= d->o->max_events)
        d->done = 1;
    return 0;
}

static int on_commit(void *arg, struct cdc_event *ev, const struct mydecode_txn *t)
{
    struct dump *d = arg;
    if (d->o->commits) {
        struct buf *b = &d->out;
        buf_puts(b, "{\"commit\":{\"gtid\":");
        json_string(b, t->gtid_text, strlen(t->gtid_text));
        buf_puts(b, ",\"file\":");
        json_string(b, t->file, strlen(t->file));
        buf_printf(b, ",\"begin_pos\":%u,\"end_pos\":%u,\"begin\":%llu,\"end\":%llu,", t->begin_pos,
                   t->end_pos, (unsigned long long)t->begin, (unsigned long long)t->end);
        buf_printf(b, "\"xid\":%s%llu%s,\"changes\":%llu,\"ddl\":%s,\"gtid_state\":",
                   t->have_xid ? "" : "\"", (unsigned long long)t->xid, t->have_xid ? "" : "\"",
                   (unsigned long long)t->nchanges, t->ddl ? "true" : "false");
        json_string(b, t->gtid_state, strlen(t->gtid_state));
        buf_puts(b, "}}\n");
    }
    if (d->o->stop_gtid && strcmp(d->o->stop_gtid, t->gtid_text) == 0)
        d->done = 1;
    cdc_event_unref(ev);
    return 0;
}

static int capture_event(struct dump *d, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(d->capture, "%02x", p[i]);
    fputc('\n', d->capture);
    return ferror(d->capture) ? -1 : 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int replay(struct dump *d, struct mydecode *dec, char *err, size_t errlen)
{
    FILE *f = fopen(d->o->replay, "r");
    if (!f)
        return cdc_fail(err, errlen, CDC_EIO, "%s: %s", d->o->replay, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    uint8_t *bytes = NULL;
    while (!rc && !d->done && (n = getline(&line, &cap, f)) > 0) {
        size_t hl = strcspn(line, "\r\n");
        bytes = realloc(bytes, hl / 2 + 1);
        size_t k = 0;
        for (size_t i = 0; i + 1 < hl; i += 2)
            bytes[k++] = (uint8_t)(hexval(line[i]) << 4 | hexval(line[i + 1]));
        rc = mydecode_feed(dec, bytes, k, err, errlen);
    }
    free(bytes);
    free(line);
    fclose(f);
    return rc;
}

static int stream(struct dump *d, const struct myconn_cfg *cc, struct mydecode **decp,
                  const struct mydecode_cfg *dcfg, const struct mydecode_ops *ops, char *err,
                  size_t errlen)
{
    struct opts *o = d->o;
    struct mystream_cfg sc = {.conn = cc,
                              .server_id = o->server_id,
                              .gtid_state = o->gtid,
                              .file = o->file,
                              .pos = o->pos,
                              .heartbeat_ms = o->heartbeat_ms,
                              .nonblock = o->nonblock};
    struct mystream *s;
    int rc = mystream_open(&s, &sc, err, errlen);
    if (rc)
        return rc;
    struct mydecode_cfg c = *dcfg;
    c.checksum = mystream_checksum(s);
    *decp = mydecode_new(&c, ops, d);
    rc = mydecode_set_start(*decp, o->file, o->pos, o->gtid, err, errlen);
    g_stream = s;
    while (!rc && !d->done) {
        const uint8_t *p;
        size_t n;
        rc = mystream_next(s, &p, &n, err, errlen);
        if (rc <= 0)
            break;
        rc = 0;
        if (d->capture && capture_event(d, p, n))
            rc = cdc_fail(err, errlen, CDC_EIO, "writing %s failed", o->capture);
        if (!rc)
            rc = mydecode_feed(*decp, p, n, err, errlen);
    }
    g_stream = NULL;
    mystream_close(s);
    return rc;
}

struct snap_ctx {
    struct dump *d;
    struct mysnap *s;
};

static int on_snap_row(void *arg, struct cdc_event *ev)
{
    struct snap_ctx *sc = arg;
    struct buf *b = &sc->d->out;
    struct myjson_source src = {.version = "0.1.0",
                                .name = sc->d->o->name,
                                .ts_us = mysnap_ts_us(sc->s),
                                .snapshot = "true",
                                .db = ev->tab->schema,
                                .table = ev->tab->name,
                                .gtid = mysnap_gtid_state(sc->s),
                                .file = mysnap_file(sc->s),
                                .pos = mysnap_pos(sc->s)};
    buf_puts(b, "{\"before\":null,\"after\":");
    put_row(b, ev, ev->after);
    buf_puts(b, ",\"source\":");
    myjson_source(b, &src);
    buf_printf(b, ",\"op\":\"r\",\"ts_ms\":%lld,\"transaction\":null}\n",
               (long long)(ev->emit_ts / 1000));
    if (b->len > (1 << 20))
        flush_out(sc->d);
    cdc_event_unref(ev);
    sc->d->nchanges++;
    return 0;
}

static int snapshot(struct dump *d, const struct myconn_cfg *cc, const char *const *tables,
                    size_t ntables, char *err, size_t errlen)
{
    struct snap_ctx sc = {d, NULL};
    int rc = mysnap_open(&sc.s, cc, err, errlen);
    for (size_t i = 0; !rc && i < ntables; i++) {
        char db[256];
        const char *dot = strchr(tables[i], '.');
        if (!dot || (size_t)(dot - tables[i]) >= sizeof db) {
            rc = cdc_fail(err, errlen, CDC_EINVAL, "%s: expected db.table", tables[i]);
            break;
        }
        snprintf(db, sizeof db, "%.*s", (int)(dot - tables[i]), tables[i]);
        struct mysnap_table *t;
        rc = mysnap_table_open(sc.s, db, dot + 1, d->o->name, &t, err, errlen);
        long n = 1;
        while (!rc && n > 0) {
            n = mysnap_read_chunk(sc.s, t, d->o->chunk > 0 ? (size_t)d->o->chunk : 1000,
                                  on_snap_row, &sc, err, errlen);
            if (n < 0)
                rc = (int)n;
        }
        mysnap_table_free(t);
    }
    if (sc.s)
        fprintf(stderr, "snapshot file=%s pos=%u gtid_state=%s rows=%lld\n", mysnap_file(sc.s),
                mysnap_pos(sc.s), mysnap_gtid_state(sc.s), d->nchanges);
    mysnap_close(sc.s);
    return rc;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (ARG("--host"))
            o->host = v;
        else if (ARG("--port"))
            o->port = (unsigned)atoi(v);
        else if (ARG("--user"))
            o->user = v;
        else if (ARG("--password-env"))
            o->password_env = v;
        else if (ARG("--server-id"))
            o->server_id = (uint32_t)strtoul(v, NULL, 10);
        else if (ARG("--gtid"))
            o->gtid = v;
        else if (ARG("--file"))
            o->file = v;
        else if (ARG("--pos"))
            o->pos = (uint32_t)strtoul(v, NULL, 10);
        else if (ARG("--tables"))
            o->tables = v;
        else if (ARG("--name"))
            o->name = v;
        else if (ARG("--stop-at-gtid"))
            o->stop_gtid = v;
        else if (ARG("--max-events"))
            o->max_events = atoll(v);
        else if (ARG("--heartbeat-ms"))
            o->heartbeat_ms = (unsigned)atoi(v);
        else if (ARG("--capture"))
            o->capture = v;
        else if (ARG("--snapshot"))
            o->snapshot = v;
        else if (ARG("--chunk"))
            o->chunk = atol(v);
        else if (ARG("--replay"))
            o->replay = v;
        else if (strcmp(a, "--nonblock") == 0)
            o->nonblock = 1;
        else if (strcmp(a, "--commits") == 0)
            o->commits = 1;
        else if (strcmp(a, "--check") == 0)
            o->check = 1;
        else if (strcmp(a, "--checksum") == 0)
            o->checksum = 1;
        else {
            fprintf(stderr, "binlog_dump: unknown or incomplete option %s\n", a);
            return -1;
        }
#undef ARG
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.user = "root", .name = "cdc", .server_id = 4242};
    if (parse_args(argc, argv, &o))
        return 1;
    char err[1024] = "";
    /* tables: split "a.b,c.d" */
    char *tables_copy = o.tables ? strdup(o.tables) : NULL;
    const char *tables[256];
    size_t ntables = 0;
    for (char *t = tables_copy ? strtok(tables_copy, ",") : NULL; t && ntables < 256;
         t = strtok(NULL, ","))
        tables[ntables++] = t;
    struct myconn_cfg cc = {.host = o.host,
                            .port = o.port,
                            .user = o.user,
                            .password = o.password_env ? getenv(o.password_env) : NULL};
    int rc;
    if (o.check) {
        struct myconn_server srv;
        rc = myconn_check(&cc, tables, ntables, &srv, err, sizeof err);
        free(tables_copy);
        if (rc) {
            fprintf(stderr, "binlog_dump: %s\n", err);
            return rc == CDC_EINVAL ? 3 : 1;
        }
        printf("{\"version\":\"%s\",\"server_id\":%u,\"file\":\"%s\",\"pos\":%u,"
               "\"gtid_binlog_pos\":\"%s\",\"checksum\":%s}\n",
               srv.version, srv.server_id, srv.file, srv.pos, srv.gtid_binlog_pos,
               srv.checksum ? "true" : "false");
        return 0;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct dump d = {.o = &o, .out = BUF_INIT};
    if (o.capture && !(d.capture = fopen(o.capture, "w"))) {
        fprintf(stderr, "binlog_dump: %s: %s\n", o.capture, strerror(errno));
        return 1;
    }
    struct mydecode_ops ops = {.change = on_change, .commit = on_commit};
    struct mydecode_cfg dcfg = {.topic_prefix = o.name,
                                .tables = ntables ? tables : NULL,
                                .ntables = ntables,
                                .checksum = o.checksum};
    struct mydecode *dec = NULL;
    if (o.snapshot) {
        char *copy = strdup(o.snapshot);
        const char *snap[256];
        size_t nsnap = 0;
        for (char *t = strtok(copy, ","); t && nsnap < 256; t = strtok(NULL, ","))
            snap[nsnap++] = t;
        rc = snapshot(&d, &cc, snap, nsnap, err, sizeof err);
        flush_out(&d);
        fflush(stdout);
        free(copy);
        buf_fini(&d.out);
        free(tables_copy);
        if (rc)
            fprintf(stderr, "binlog_dump: %s\n", err);
        return rc ? 1 : 0;
    }
    if (o.replay) {
        dec = mydecode_new(&dcfg, &ops, &d);
        rc = mydecode_set_start(dec, o.file, o.pos, o.gtid, err, sizeof err);
        if (!rc)
            rc = replay(&d, dec, err, sizeof err);
    } else {
        rc = stream(&d, &cc, &dec, &dcfg, &ops, err, sizeof err);
    }
    flush_out(&d);
    fflush(stdout);
    if (d.capture)
        fclose(d.capture);
    if (dec)
        fprintf(stderr, "end file=%s pos=%u gtid_state=%s changes=%lld\n", mydecode_file(dec),
                mydecode_pos(dec), mydecode_gtid_state(dec), d.nchanges);
    mydecode_free(dec);
    buf_fini(&d.out);
    free(tables_copy);
    if (rc == CDC_ESTOP)
        rc = 0;
    if (rc) {
        fprintf(stderr, "binlog_dump: %s\n", err);
        return rc == MYSTREAM_EPURGED ? 2 : 1;
    }
    return 0;
}
