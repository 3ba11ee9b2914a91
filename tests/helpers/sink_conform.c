/* sink_conform: drives a registered sink type through the scenarios every
 * sink must pass (tests/integration/test_sink_conformance.py judges the
 * destination with its own reader).
 *
 *   sink_conform types
 *       every registered sink type, one line each:
 *       {"type":"file","available":true,"at_least_once":false,"serial":true}
 *   sink_conform run PIPELINE PLATFORM [--txns N] [--from-zero] [--kill-when-confirmed]
 *       the first enabled sink of PIPELINE, behind the real engine and
 *       driver, fed by a scripted source with two streams numbered alike:
 *       transaction k (1..N) of either holds one change at k*1000:0 (a
 *       record, as a Kafka consumer's); stream 1 lags, one of its
 *       transactions after every two of stream 0's.  A change's row is
 *       public.conform (id = stream*100000 + k*10 + j, note).  The
 *       source resumes each stream after what was acknowledged, or with
 *       --from-zero from the beginning (committed positions older than what
 *       the sink holds).  Prints {"confirmed":{"0":P,"1":P},"dead_lettered":N}
 *       once every stream is confirmed to its end; with --kill-when-confirmed
 *       then SIGKILLs itself (no close, no final flush).
 *   sink_conform have PIPELINE PLATFORM
 *       opens the sink and prints what it reports holding, per stream:
 *       {"have":{"0":[lsn,idx],...}} (idx -1: a whole transaction)
 *   sink_conform partial PIPELINE PLATFORM
 *       opens the sink, writes stream 0's transaction 1 and the change of its
 *       transaction 2 without that one's commit, flushes, prints
 *       {"given":S,"durable":D,"durable_ids":[...]} (the ids of the changes
 *       whose seq is at most D) and SIGKILLs itself.
 *
 * Exit 2 on a usage error, 1 on a failure (message on stderr). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/json.h"
#include "pipeline/engine.h"
#include "sink/registry.h"
#include "sink/sink.h"
#include "source/driver.h"
#include "source/emitter.h"
#include "state/store.h"
#include "util/clock.h"
#include "util/err.h"

#define NSTREAMS 2

static int ntxn = 20;
static bool from_zero;

static int nchanges(uint32_t stream)
{
    (void)stream;
    return 1;
}

static uint64_t txn_end(int k)
{
    return (uint64_t)k * 1000 + 500;
}

/* ---------- the scripted source ---------- */

static struct {
    struct cdc_table *tab;
    int cursor;             /* the next transaction of order[] */
    int order_stream[4096]; /* the log's order of transactions: their stream */
    int order_k[4096];      /* and number */
    int norder;
    uint64_t from[NSTREAMS]; /* per stream: start after this end position */
} src;

static void make_order(void)
{
    int k0 = 0, k1 = 0;
    src.norder = 0;
    while ((k0 < ntxn || k1 < ntxn) && src.norder < 4094) {
        for (int i = 0; i < 2 && k0 < ntxn; i++) {
            src.order_stream[src.norder] = 0;
            src.order_k[src.norder++] = ++k0;
        }
        if (k1 < ntxn && (k0 == ntxn || k1 < k0 / 2)) {
            src.order_stream[src.norder] = 1;
            src.order_k[src.norder++] = ++k1;
        }
    }
}

static struct cdc_table *make_table(void)
{
    struct cdc_table *tab = cdc_table_new(1, "public", "conform", "cdc", 2);
    tab->cols[0].name = strdup("id");
    tab->cols[0].type_name = strdup("integer");
    tab->cols[0].type = CDC_T_INT;
    tab->cols[0].type_oid = 23;
    tab->cols[0].key = true;
    tab->cols[1].name = strdup("note");
    tab->cols[1].type_name = strdup("text");
    tab->cols[1].type = CDC_T_TEXT;
    tab->cols[1].type_oid = 25;
    tab->key_unique = true;
    cdc_table_finish(tab);
    return tab;
}

static struct cdc_event *make_change(uint32_t s, int k, int j, uint64_t seq)
{
    char id[32], note[64];
    int ilen = snprintf(id, sizeof id, "%d", (int)s * 100000 + k * 10 + j);
    int nlen = snprintf(note, sizeof note, "stream %u transaction %d change %d", s, k, j);
    struct cdc_event *ev = cdc_event_new(0, 2, (size_t)ilen + (size_t)nlen + 2);
    ev->op = CDC_OP_INSERT;
    cdc_table_ref(src.tab);
    ev->tab = src.tab;
    memcpy(ev->data, id, (size_t)ilen + 1);
    memcpy(ev->data + ilen + 1, note, (size_t)nlen + 1);
    ev->after[0] = (struct cdc_val){0, (uint32_t)ilen, CDC_V_TEXT};
    ev->after[1] = (struct cdc_val){(uint32_t)ilen + 1, (uint32_t)nlen, CDC_V_TEXT};
    ev->data_len = (uint32_t)(ilen + nlen + 2);
    ev->pos = (struct cdc_pos){(uint64_t)k * 1000, (uint64_t)j, s};
    ev->lsn = (uint64_t)k * 1000 + (uint64_t)j;
    ev->xid = (uint64_t)k;
    ev->commit_ts = 1718150400000000 + k;
    ev->emit_ts = clock_wall_us();
    ev->total_order = (uint32_t)j + 1;
    ev->table_order = (uint32_t)j + 1;
    ev->seq = seq;
    return ev;
}

static struct cdc_event *make_commit(uint32_t s, int k, uint64_t seq)
{
    struct cdc_event *c = cdc_event_new(0, 0, 0);
    c->op = CDC_OP_COMMIT;
    c->pos = (struct cdc_pos){(uint64_t)k * 1000, CDC_POS_TXN_END, s};
    c->end_lsn = txn_end(k);
    c->commit_ts = 1718150400000000 + k;
    c->total_order = (uint32_t)nchanges(s);
    c->seq = seq;
    return c;
}

static int src_open(struct source *s, char *err, size_t errlen)
{
    src.tab = make_table();
    make_order();
    return 0;
}

static int src_prepare(struct source *s, const struct cdc_posmap *held, struct cdc_acks *start,
                       char *err, size_t errlen)
{
    for (uint32_t i = 0; i < NSTREAMS; i++)
        cdc_acks_set(start, i, 0);
    return 0;
}

static int src_start(struct source *s, const struct cdc_ack *from, size_t n, char *err,
                     size_t errlen)
{
    memset(src.from, 0, sizeof src.from);
    for (size_t i = 0; i < n && !from_zero; i++)
        if (from[i].stream < NSTREAMS)
            src.from[from[i].stream] = from[i].pos;
    src.cursor = 0;
    return 0;
}

static int src_poll(struct source *s, struct emitter *em, int timeout_ms, char *err, size_t errlen)
{
    while (src.cursor < src.norder &&
           txn_end(src.order_k[src.cursor]) <= src.from[src.order_stream[src.cursor]])
        src.cursor++;
    if (src.cursor == src.norder) {
        int rc = emitter_flush(em);
        for (uint32_t i = 0; i < NSTREAMS; i++)
            emitter_keepalive(em, i, txn_end(ntxn) + 10);
        clock_sleep_us(2000);
        return rc;
    }
    uint32_t st = (uint32_t)src.order_stream[src.cursor];
    int k = src.order_k[src.cursor];
    for (int j = 0; j < nchanges(st); j++) {
        int rc = emitter_event(em, make_change(st, k, j, 0));
        if (rc)
            return rc;
    }
    int rc = emitter_commit(em, make_commit(st, k, 0));
    src.cursor++;
    return rc ? rc : 1;
}

static int src_ack(struct source *s, const struct cdc_ack *acks, size_t n, bool now)
{
    return 0;
}

static void src_disconnect(struct source *s, bool rewind)
{
}

static void src_finish(struct source *s, const struct cdc_ack *acks, size_t n)
{
}

static void src_stats(struct source *s, struct source_stats *st)
{
}

static void src_close(struct source *s)
{
    cdc_table_unref(src.tab);
    src.tab = NULL;
}

static void src_format(uint64_t pos, char *buf, size_t len)
{
    snprintf(buf, len, "%llu", (unsigned long long)pos);
}

static const struct source_ops scripted = {
    .name = "scripted",
    .connector = "postgresql",
    .multi_stream = true,
    .format_pos = src_format,
    .open = src_open,
    .prepare = src_prepare,
    .start = src_start,
    .poll = src_poll,
    .ack = src_ack,
    .disconnect = src_disconnect,
    .finish = src_finish,
    .stats = src_stats,
    .close = src_close,
};

/* ---------- commands ---------- */

static int fail(const char *what, const char *err)
{
    fprintf(stderr, "sink_conform: %s: %s\n", what, err);
    return 1;
}

static int load(struct config **cfg, const char *pipeline, const char *platform)
{
    struct cfg_errors errs = {0};
    int rc = config_load(cfg, pipeline, platform, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    return rc;
}

static const struct sink_cfg *first_sink(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nsinks; i++)
        if (cfg->sinks[i].enabled)
            return &cfg->sinks[i];
    return NULL;
}

static struct json_ctx json_of(const struct config *cfg)
{
    struct json_ctx j;
    source_json_ctx(cfg, "0.1.0", &j);
    j.multi_stream = true; /* the scripted source's streams */
    return j;
}

static void print_posmap(const char *name, const struct cdc_posmap *m)
{
    printf("{\"%s\":{", name);
    for (size_t i = 0; i < m->n; i++)
        printf("%s\"%u\":[%llu,%lld]", i ? "," : "", m->v[i].stream,
               (unsigned long long)m->v[i].lsn,
               m->v[i].idx == CDC_POS_TXN_END ? -1LL : (long long)m->v[i].idx);
    printf("}}\n");
    fflush(stdout);
}

static int cmd_types(void)
{
    for (size_t i = 0; i < sink_type_count(); i++) {
        const struct sink_type *t = sink_type_at(i);
        printf("{\"type\":\"%s\",\"available\":%s,\"at_least_once\":%s,\"serial\":%s}\n", t->name,
               t->availability == SINK_AVAILABLE ? "true" : "false",
               t->at_least_once ? "true" : "false", t->ops && t->ops->write ? "true" : "false");
    }
    return 0;
}

static bool all_confirmed(struct engine *eng)
{
    for (uint32_t s = 0; s < NSTREAMS; s++)
        if (engine_confirmed_of(eng, s) < txn_end(ntxn))
            return false;
    return true;
}

struct run {
    struct driver *drv;
    struct engine *eng;
    struct driver_opts o;
    volatile sig_atomic_t stop;
    int rc;
    char err[1024];
};

static void *run_main(void *arg)
{
    struct run *r = arg;
    r->rc = driver_run(r->drv, r->eng, &r->o, r->err, sizeof r->err);
    return NULL;
}

static int cmd_run(struct config *cfg, bool kill_when_confirmed)
{
    struct json_ctx json = json_of(cfg);
    struct store *store = NULL;
    char err[1024];
    if (store_open(&store, ":memory:", err, sizeof err) != 0)
        return fail("state store", err);
    struct run r;
    memset(&r, 0, sizeof r);
    if (driver_new(&r.drv, &scripted, cfg, store, err, sizeof err) != 0)
        return fail("source", err);
    if (engine_new(&r.eng, cfg, &json, store, err, sizeof err) != 0)
        return fail("engine", err);
    struct cdc_posmap held = {0};
    engine_held(r.eng, &held);
    if (driver_prepare(r.drv, &held, err, sizeof err) != 0)
        return fail("prepare", err);
    cdc_posmap_fini(&held);
    const struct cdc_acks *start = driver_start(r.drv);
    if (engine_start(r.eng, start->v, start->n) != 0)
        return fail("engine", "cannot start");
    struct cdc_ack stop_at[NSTREAMS];
    for (uint32_t s = 0; s < NSTREAMS; s++)
        stop_at[s] = (struct cdc_ack){s, txn_end(ntxn)};
    r.o = (struct driver_opts){.stop_at = stop_at, .nstop_at = NSTREAMS, .stop = &r.stop};
    pthread_t th;
    pthread_create(&th, NULL, run_main, &r);
    if (kill_when_confirmed) {
        /* Everything durable in the sink, as the tracker says: die without
         * closing anything, the way a crash would. */
        while (!all_confirmed(r.eng))
            clock_sleep_us(2000);
        printf("{\"confirmed\":{\"0\":%llu,\"1\":%llu},\"dead_lettered\":0}\n",
               (unsigned long long)engine_confirmed_of(r.eng, 0),
               (unsigned long long)engine_confirmed_of(r.eng, 1));
        fflush(stdout);
        kill(getpid(), SIGKILL);
    }
    pthread_join(th, NULL);
    engine_close(r.eng);
    int wrc = engine_wait(r.eng, 60000000);
    driver_finish(r.drv);
    struct engine_sink_stats st;
    engine_sink_stats(r.eng, 0, &st);
    printf("{\"confirmed\":{\"0\":%llu,\"1\":%llu},\"dead_lettered\":%llu}\n",
           (unsigned long long)engine_confirmed_of(r.eng, 0),
           (unsigned long long)engine_confirmed_of(r.eng, 1), (unsigned long long)st.dead_lettered);
    bool failed = engine_failed(r.eng, err, sizeof err);
    engine_free(r.eng);
    driver_free(r.drv);
    store_close(store);
    if (r.rc)
        return fail("run", r.err);
    if (failed)
        return fail("sink", err);
    return wrc ? fail("sink", "did not finish") : 0;
}

/* The sink alone, as the engine sets it up. */
static int open_sink(struct sink *sk, const struct config *cfg, const struct json_ctx *json,
                     struct cdc_posmap *have)
{
    const struct sink_cfg *sc = first_sink(cfg);
    memset(sk, 0, sizeof *sk);
    sk->ops = sc->type->ops;
    sk->cfg = sc;
    sk->config = cfg;
    sk->json = json;
    return sk->ops->open(sk, have);
}

static int cmd_have(struct config *cfg)
{
    struct json_ctx json = json_of(cfg);
    struct sink sk;
    struct cdc_posmap have = {0};
    if (open_sink(&sk, cfg, &json, &have) != 0)
        return fail("open", sk.err);
    print_posmap("have", &have);
    sk.ops->close(&sk);
    cdc_posmap_fini(&have);
    return 0;
}

static int cmd_partial(struct config *cfg)
{
    struct json_ctx json = json_of(cfg);
    struct sink sk;
    struct cdc_posmap have = {0};
    src.tab = make_table();
    if (open_sink(&sk, cfg, &json, &have) != 0)
        return fail("open", sk.err);
    if (!sk.ops->write)
        return fail("partial", "not a serial sink");
    struct cdc_event *evs[3] = {make_change(0, 1, 0, 1), make_commit(0, 1, 2),
                                make_change(0, 2, 0, 3)};
    if (sk.ops->write(&sk, evs, 3) != 0)
        return fail("write", sk.err);
    uint64_t durable = 0;
    if (sk.ops->flush(&sk, &durable) != 0)
        return fail("flush", sk.err);
    printf("{\"given\":3,\"durable\":%llu,\"durable_ids\":[", (unsigned long long)durable);
    bool first = true;
    for (int i = 0; i < 3; i++)
        if (evs[i]->seq <= durable && evs[i]->op != CDC_OP_COMMIT) {
            printf("%s%s", first ? "" : ",", cdc_val_ptr(evs[i], &evs[i]->after[0]));
            first = false;
        }
    printf("]}\n");
    fflush(stdout);
    kill(getpid(), SIGKILL);
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: sink_conform types\n"
                    "       sink_conform run PIPELINE PLATFORM [--txns N] [--from-zero] "
                    "[--kill-when-confirmed]\n"
                    "       sink_conform have PIPELINE PLATFORM\n"
                    "       sink_conform partial PIPELINE PLATFORM\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "types") == 0)
        return cmd_types();
    if (argc < 4)
        return usage();
    bool kill_when_confirmed = false;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--from-zero") == 0)
            from_zero = true;
        else if (strcmp(argv[i], "--kill-when-confirmed") == 0)
            kill_when_confirmed = true;
        else if (strcmp(argv[i], "--txns") == 0 && i + 1 < argc)
            ntxn = atoi(argv[++i]);
        else
            return usage();
    }
    if (ntxn < 1 || ntxn > 1000)
        return usage();
    signal(SIGPIPE, SIG_IGN);
    struct config *cfg;
    if (load(&cfg, argv[2], argv[3]) != 0)
        return 1;
    const struct sink_cfg *sc = first_sink(cfg);
    char why[160];
    if (!sc)
        return fail("config", "no enabled sink");
    if (sink_type_unavailable(sc->type, why, sizeof why))
        return fail("config", why);
    int rc;
    if (strcmp(argv[1], "run") == 0)
        rc = cmd_run(cfg, kill_when_confirmed);
    else if (strcmp(argv[1], "have") == 0)
        rc = cmd_have(cfg);
    else if (strcmp(argv[1], "partial") == 0)
        rc = cmd_partial(cfg);
    else
        rc = usage();
    config_free(cfg);
    return rc;
}
