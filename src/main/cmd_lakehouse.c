/* `cdc lakehouse snapshots|query|rollback|maintain PIPELINE`: the Iceberg
 * tables of a pipeline's iceberg sinks, through the catalogs and storage
 * the sinks' blocks name.
 *
 *   snapshots  every snapshot of each table: id, time, operation, rows,
 *              the source position it holds (cdc.position)
 *   query      a table as of one snapshot (time travel), deletes applied,
 *              as JSON lines
 *   rollback   makes an earlier snapshot the table's current one
 *   maintain   one compaction, expiry and orphan-file pass per table
 *
 * rollback and maintain change tables: they take the pipeline lock, so
 * they never run beside the pipeline's own `cdc run` (whose background
 * maintenance does the same while it runs). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "lake/ice_scan.h"
#include "lake/lake_value.h"
#include "main/cli.h"
#include "sink/iceberg/ice_pos.h"
#include "sink/iceberg/iceberg_sink.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/redact.h"

enum lh_verb { LH_SNAPSHOTS, LH_QUERY, LH_ROLLBACK, LH_MAINTAIN };

static const char *const verb_names[] = {"snapshots", "query", "rollback", "maintain"};

/* The options each verb takes (bits of LO_*). */
enum { LO_SINK = 1, LO_TABLE = 2, LO_SNAPSHOT = 4, LO_LIMIT = 8, LO_YES = 16 };
static const unsigned verb_opts[] = {
    LO_SINK | LO_TABLE,
    LO_SINK | LO_TABLE | LO_SNAPSHOT | LO_LIMIT,
    LO_SINK | LO_TABLE | LO_SNAPSHOT | LO_YES,
    LO_SINK | LO_TABLE,
};

struct lh_opts {
    enum lh_verb verb;
    const char *platform, *sink, *table;
    int64_t snapshot_id; /* -1: not given */
    int64_t limit;
    bool yes;
    unsigned given; /* LO_* */
    int nargs;
    char **args;
};

static int parse_int(const char *opt, const char *v, int64_t min, int64_t *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || end == v || x < min) {
        fprintf(stderr, "error: --%s: expected an integer of at least %lld, got \"%s\"\n", opt,
                (long long)min, v);
        return 2;
    }
    *out = x;
    return 0;
}

/* 0, 2 (usage error, printed) or CLI_EXIT_HELP. */
static int parse_args(const struct command *cmd, int argc, char **argv, struct lh_opts *o)
{
    static const struct option longopts[] = {
        {"platform-config", required_argument, NULL, 'p'},
        {"sink-id", required_argument, NULL, 's'},
        {"table", required_argument, NULL, 't'},
        {"snapshot-id", required_argument, NULL, 'n'},
        {"limit", required_argument, NULL, 'l'},
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->snapshot_id = -1;
    o->limit = 20;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_command_usage(cmd, stdout);
            return CLI_EXIT_HELP;
        }
    if (argc < 2) {
        fprintf(stderr, "error: cdc lakehouse: expected snapshots, query, rollback or maintain\n");
        cli_command_usage(cmd, stderr);
        return 2;
    }
    int verb = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[1], verb_names[i]) == 0)
            verb = i;
    if (verb < 0) {
        fprintf(stderr, "error: cdc lakehouse: unknown subcommand \"%s\"\n", argv[1]);
        cli_command_usage(cmd, stderr);
        return 2;
    }
    o->verb = (enum lh_verb)verb;
    /* Whole option names only (getopt_long would take "--sink" for
     * "--sink-id"). */
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        size_t n = strcspn(argv[i] + 2, "=");
        bool known = false;
        for (const struct option *lo = longopts; lo->name && !known; lo++)
            known = strlen(lo->name) == n && strncmp(lo->name, argv[i] + 2, n) == 0;
        if (!known) {
            fprintf(stderr, "error: cdc lakehouse %s: unknown or incomplete option %s\n",
                    verb_names[verb], argv[i]);
            cli_command_usage(cmd, stderr);
            return 2;
        }
        const struct option *lo = longopts;
        while (strncmp(lo->name, argv[i] + 2, n) != 0 || strlen(lo->name) != n)
            lo++;
        if (lo->has_arg == required_argument && !strchr(argv[i], '='))
            i++; /* its value */
    }
    char **av = argv + 1; /* from the subcommand on */
    optind = 1;
    opterr = 0;
    int c, li, rc = 0;
    while (rc == 0 && (li = -1, c = getopt_long(argc - 1, av, "h", longopts, &li)) != -1) {
        unsigned bit = c == 's'   ? LO_SINK
                       : c == 't' ? LO_TABLE
                       : c == 'n' ? LO_SNAPSHOT
                       : c == 'l' ? LO_LIMIT
                       : c == 'y' ? LO_YES
                                  : 0;
        if (bit && !(verb_opts[verb] & bit)) {
            fprintf(stderr, "error: cdc lakehouse %s: --%s is not an option of this subcommand\n",
                    verb_names[verb], longopts[li].name);
            return 2;
        }
        o->given |= bit;
        switch (c) {
        case 'p':
            o->platform = optarg;
            break;
        case 's':
            o->sink = optarg;
            break;
        case 't':
            o->table = optarg;
            break;
        case 'n':
            rc = parse_int("snapshot-id", optarg, 1, &o->snapshot_id);
            break;
        case 'l':
            rc = parse_int("limit", optarg, 0, &o->limit);
            break;
        case 'y':
            o->yes = true;
            break;
        default:
            fprintf(stderr, "error: cdc lakehouse %s: unknown or incomplete option %s\n",
                    verb_names[verb], av[optind - 1]);
            cli_command_usage(cmd, stderr);
            return 2;
        }
    }
    if (rc)
        return rc;
    o->nargs = argc - 1 - optind;
    o->args = av + optind;
    if ((o->verb == LH_QUERY || o->verb == LH_ROLLBACK) && o->snapshot_id < 0) {
        fprintf(stderr, "error: cdc lakehouse %s: --snapshot-id N is required\n",
                verb_names[o->verb]);
        return 2;
    }
    return 0;
}

/* One table of one sink. */
struct lh_table {
    const struct sink_cfg *sc;
    const struct iceberg_sink_cfg *ic;
    struct lake_store *st;
    struct ice_catalog *cat;
    char *name;
    struct ice_table *t; /* NULL: not created yet */
};

struct lh_ctx {
    struct lh_table *v;
    size_t n;
};

static void ctx_free(struct lh_ctx *x)
{
    for (size_t i = 0; i < x->n; i++) {
        ice_table_free(x->v[i].t);
        free(x->v[i].name);
        /* catalogs and stores are shared by a sink's tables: freed once */
        if (i + 1 == x->n || x->v[i + 1].cat != x->v[i].cat) {
            ice_catalog_free(x->v[i].cat);
            lake_store_free(x->v[i].st);
        }
    }
    free(x->v);
}

/* Whether --table T names this table (the Iceberg name, or a source table
 * "schema.table" the sink maps to it). */
static bool table_matches(const struct iceberg_sink_cfg *ic, const char *name, const char *t)
{
    if (!t || strcmp(t, name) == 0)
        return true;
    char *schema, *table;
    if (config_split_table(t, &schema, &table) != 0)
        return false;
    char *mapped = iceberg_table_for(ic, schema, table);
    bool same = strcmp(mapped, name) == 0;
    free(mapped);
    free(schema);
    free(table);
    return same;
}

/* Opens the selected sinks' catalogs and loads the selected tables.
 * 0, 1 (runtime failure, printed) or 2 (nothing matches, printed). */
static int open_tables(const struct config *cfg, const struct lh_opts *o, struct lh_ctx *x)
{
    memset(x, 0, sizeof *x);
    size_t nsinks = 0;
    for (size_t s = 0; s < cfg->nsinks; s++) {
        const struct iceberg_sink_cfg *ic = iceberg_sink_conf(&cfg->sinks[s]);
        if (!ic || (o->sink && strcmp(o->sink, cfg->sinks[s].sink_id) != 0))
            continue;
        nsinks++;
        char err[1024];
        struct lake_store *st;
        struct ice_catalog *cat;
        if (iceberg_open_catalog(ic, &st, &cat, err, sizeof err) != 0) {
            fprintf(stderr, "error: sink %s: %s\n", cfg->sinks[s].sink_id, err);
            return 1;
        }
        size_t n;
        char **names = iceberg_configured_tables(ic, cfg, &n);
        size_t first = x->n;
        for (size_t i = 0; i < n; i++) {
            if (!table_matches(ic, names[i], o->table))
                continue;
            x->v = xrealloc(x->v, (x->n + 1) * sizeof *x->v);
            struct lh_table *lt = &x->v[x->n++];
            *lt = (struct lh_table){&cfg->sinks[s], ic, st, cat, xstrdup(names[i]), NULL};
            int rc = ice_table_load(cat, ic->table_namespace, names[i], &lt->t, err, sizeof err);
            if (rc < 0) {
                fprintf(stderr, "error: sink %s: table %s.%s: %s\n", cfg->sinks[s].sink_id,
                        ic->table_namespace, names[i], err);
                iceberg_free_names(names, n);
                return 1;
            }
        }
        iceberg_free_names(names, n);
        if (x->n == first) {
            ice_catalog_free(cat);
            lake_store_free(st);
        }
    }
    if (nsinks == 0) {
        if (o->sink)
            fprintf(stderr, "error: %s has no iceberg sink %s\n", cfg->pipeline_file, o->sink);
        else
            fprintf(stderr, "error: %s has no iceberg sink\n", cfg->pipeline_file);
        return 2;
    }
    if (x->n == 0) {
        fprintf(stderr, "error: no iceberg table of %s is %s\n", cfg->pipeline_file,
                o->table ? o->table : "configured");
        return 2;
    }
    return 0;
}

static void iso_time(int64_t ms, char *out, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03dZ", base, (int)(ms % 1000));
}

static const char *summary(const struct ice_snapshot *s, const char *key)
{
    const char *v = ice_snapshot_get(s, key);
    return v ? v : "-";
}

static int do_snapshots(struct lh_ctx *x)
{
    for (size_t i = 0; i < x->n; i++) {
        const struct lh_table *lt = &x->v[i];
        char loc[REDACT_URL_MAX];
        printf("%ssink %s, table %s.%s", i ? "\n" : "", lt->sc->sink_id, lt->ic->table_namespace,
               lt->name);
        if (!lt->t) {
            printf(": not created yet\n");
            continue;
        }
        printf(" at %s\n", redact_url(lt->t->meta->location, loc, sizeof loc));
        printf("  %-18s %-24s %-9s %5s %10s %12s  %s\n", "SNAPSHOT", "TIME (UTC)", "OPERATION",
               "SEQ", "ADDED", "TOTAL ROWS", "POSITION");
        const struct ice_meta *m = lt->t->meta;
        for (size_t k = 0; k < m->nsnapshots; k++) {
            const struct ice_snapshot *s = &m->snapshots[k];
            char ts[40];
            iso_time(s->ts_ms, ts, sizeof ts);
            printf("%c %-18" PRId64 " %-24s %-9s %5" PRId64 " %10s %12s  %s\n",
                   s->id == m->current_snapshot_id ? '*' : ' ', s->id, ts, summary(s, "operation"),
                   s->seq, summary(s, "added-records"), summary(s, "total-records"),
                   summary(s, ICEPOS_PROP));
        }
        if (!m->nsnapshots)
            printf("  (no snapshots)\n");
    }
    return 0;
}

/* The table holding the snapshot, or NULL (printed). */
static struct lh_table *find_snapshot(struct lh_ctx *x, int64_t id)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->v[i].t && ice_meta_snapshot(x->v[i].t->meta, id))
            return &x->v[i];
    fprintf(stderr,
            "error: no table of the selected sinks has a snapshot %" PRId64
            " (see cdc lakehouse snapshots)\n",
            id);
    return NULL;
}

struct query_out {
    const struct ice_schema *sc;
    int64_t left; /* rows still to print; -1: all */
    struct buf line;
};

static int print_rows(void *arg, const struct ice_rows *rs)
{
    struct query_out *q = arg;
    for (int64_t k = 0; k < rs->n; k++) {
        if (q->left == 0)
            return 1; /* stops the scan */
        buf_reset(&q->line);
        buf_putc(&q->line, '{');
        for (uint32_t c = 0; c < rs->ncols; c++) {
            const struct ice_field *f = &q->sc->fields[c];
            if (c)
                buf_putc(&q->line, ',');
            json_string(&q->line, f->name, strlen(f->name));
            buf_putc(&q->line, ':');
            lake_value_json(f, rs->cols[c], rs->idx[k], &q->line);
        }
        buf_puts(&q->line, "}\n");
        fwrite(q->line.p, 1, q->line.len, stdout);
        if (q->left > 0)
            q->left--;
    }
    return 0;
}

static int do_query(struct lh_ctx *x, const struct lh_opts *o)
{
    struct lh_table *lt = find_snapshot(x, o->snapshot_id);
    if (!lt)
        return 2;
    struct ice_scan *s;
    char err[1024];
    if (ice_scan_open(lt->t, o->snapshot_id, &s, err, sizeof err) != 0) {
        fprintf(stderr, "error: table %s.%s: %s\n", lt->ic->table_namespace, lt->name, err);
        return 1;
    }
    struct query_out q = {ice_scan_schema(s), o->limit > 0 ? o->limit : -1, BUF_INIT};
    int rc = 0;
    for (size_t i = 0; i < ice_scan_ndata(s) && rc == 0; i++)
        rc = ice_scan_file(s, i, print_rows, &q, err, sizeof err);
    buf_fini(&q.line);
    ice_scan_free(s);
    if (rc < 0) {
        fprintf(stderr, "error: table %s.%s: %s\n", lt->ic->table_namespace, lt->name, err);
        return 1;
    }
    return 0;
}

static int do_rollback(struct lh_ctx *x, const struct lh_opts *o)
{
    struct lh_table *lt = find_snapshot(x, o->snapshot_id);
    if (!lt)
        return 2;
    if (lt->t->meta->current_snapshot_id == o->snapshot_id) {
        printf("table %s.%s: snapshot %" PRId64 " is already current\n", lt->ic->table_namespace,
               lt->name, o->snapshot_id);
        return 0;
    }
    char err[1024];
    int64_t was = lt->t->meta->current_snapshot_id;
    if (ice_table_rollback(lt->t, o->snapshot_id, err, sizeof err) != 0) {
        fprintf(stderr, "error: table %s.%s: %s\n", lt->ic->table_namespace, lt->name, err);
        return 1;
    }
    const char *pos = ice_snapshot_get(ice_meta_current(lt->t->meta), ICEPOS_PROP);
    printf("table %s.%s: snapshot %" PRId64 " is current again (was %" PRId64
           "); the table holds the source up to %s\n",
           lt->ic->table_namespace, lt->name, o->snapshot_id, was, pos ? pos : "(unknown)");
    return 0;
}

static int do_maintain(struct lh_ctx *x)
{
    int rc = 0;
    for (size_t i = 0; i < x->n; i++) {
        const struct lh_table *lt = &x->v[i];
        struct iceberg_maint_report r;
        char err[1024];
        if (iceberg_maintain(lt->cat, lt->ic, lt->name,
                             ICEBERG_MAINT_COMPACT | ICEBERG_MAINT_EXPIRE | ICEBERG_MAINT_ORPHANS,
                             &r, NULL, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "error: table %s.%s: %s\n", lt->ic->table_namespace, lt->name, err);
            rc = 1;
            continue;
        }
        printf("table %s.%s: ", lt->ic->table_namespace, lt->name);
        if (r.compact.snapshot_id >= 0)
            printf("compacted %zu data files and %zu delete files into %zu (%" PRId64
                   " rows, snapshot %" PRId64 ")",
                   r.compact.data_files, r.compact.delete_files, r.compact.new_files,
                   r.compact.rows, r.compact.snapshot_id);
        else
            printf("nothing to compact");
        printf("; expired %zu snapshots (%zu manifest lists, %zu manifests, %zu files removed); "
               "%zu orphan files removed\n",
               r.expire.snapshots, r.expire.manifest_lists, r.expire.manifests, r.expire.files,
               r.orphans);
    }
    return rc;
}

int cmd_lakehouse(const struct command *cmd, int argc, char **argv)
{
    struct lh_opts o;
    int rc = parse_args(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    if (o.verb == LH_ROLLBACK && !o.yes) {
        fprintf(stderr, "error: cdc lakehouse rollback changes the table's current snapshot; "
                        "add --yes to do it\n");
        return 2;
    }
    struct cli_opts co = {.platform = o.platform, .nargs = o.nargs, .args = o.args};
    struct config *cfg;
    if ((rc = cli_load_config(cmd, &co, &cfg)))
        return rc;
    struct pipelock *lock = NULL;
    if (o.verb == LH_ROLLBACK || o.verb == LH_MAINTAIN) {
        char what[40];
        snprintf(what, sizeof what, "lakehouse %s", verb_names[o.verb]);
        if ((rc = cli_lock_pipeline(cfg, what, &lock))) {
            config_free(cfg);
            return rc;
        }
    }
    struct lh_ctx x;
    rc = open_tables(cfg, &o, &x);
    if (rc == 0) {
        switch (o.verb) {
        case LH_SNAPSHOTS:
            rc = do_snapshots(&x);
            break;
        case LH_QUERY:
            rc = do_query(&x, &o);
            break;
        case LH_ROLLBACK:
            rc = do_rollback(&x, &o);
            break;
        case LH_MAINTAIN:
            rc = do_maintain(&x);
            break;
        }
    }
    ctx_free(&x);
    pipelock_release(lock);
    config_free(cfg);
    return rc;
}
