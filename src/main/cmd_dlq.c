/* `cdc dlq list|show|replay|purge`: the dead-letter queue of one pipeline,
 * read from its state store ({state_dir}/{pipeline_id}/state.db); with
 * transport_mode kafka, the deliver role's ({pipeline_id}.deliver), where
 * the pipeline's sinks run, or with --role capture the capture role's.
 *
 * list, show and purge may run while `cdc run` of the same pipeline is
 * running: the store is SQLite in WAL mode, so readers never block the
 * pipeline and writers take turns.  replay (cmd_dlq_replay.c) takes the
 * pipeline's locks. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/evcodec.h"
#include "core/json.h"
#include "main/cli.h"
#include "main/dlq.h"
#include "sink/sink.h"
#include "state/dlq_json.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

#define ERROR_COLUMN_MAX 160 /* bytes of the error shown by `dlq list` */

/* Options each subcommand accepts (besides --platform-config and --help);
 * the command's (cli.c) are all of these. */
enum { O_SINK = 1, O_ID = 2, O_ALL = 4, O_JSON = 8, O_YES = 16 };

/* ---------- output helpers ---------- */

/* Appends s with control characters replaced by spaces, cut at the first line
 * break and at max bytes (on a UTF-8 boundary); "..." marks a cut. */
static void put_line(struct buf *b, const char *s, size_t max)
{
    size_t n = strcspn(s, "\r\n");
    bool cut = s[n] != '\0';
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = true;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_putc(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
    if (cut)
        buf_puts(b, "...");
}

/* put_line, then spaces up to width bytes: a column of `dlq list`. */
static void put_cell(struct buf *b, const char *s, size_t max, size_t width)
{
    size_t start = b->len;
    put_line(b, s, max);
    while (b->len - start < width)
        buf_putc(b, ' ');
    buf_putc(b, ' ');
}

static void print_line(const char *s, size_t max)
{
    struct buf b = BUF_INIT;
    put_line(&b, s, max);
    fputs(b.p ? b.p : "", stdout);
    buf_fini(&b);
}

/* "2024-06-12 00:00:01.000000 UTC", or "-" for 0. */
static const char *format_time(int64_t us, char *buf, size_t len)
{
    if (us <= 0)
        return "-";
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%06d UTC", (int)(us % 1000000));
    return buf;
}

static const char *op_name(char op)
{
    switch (op) {
    case CDC_OP_INSERT:
        return "insert";
    case CDC_OP_UPDATE:
        return "update";
    case CDC_OP_DELETE:
        return "delete";
    case CDC_OP_READ:
        return "snapshot read";
    case CDC_OP_TRUNCATE:
        return "truncate";
    case CDC_OP_MESSAGE:
        return "message";
    default:
        return "unknown";
    }
}

static void newline_indent(FILE *out, int depth)
{
    fputc('\n', out);
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

/* Prints a valid JSON text indented by two spaces per level. */
static void print_json_pretty(FILE *out, const char *s)
{
    int depth = 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        switch (c) {
        case '"':
            fputc('"', out);
            for (i++; s[i] && s[i] != '"'; i++) {
                if (s[i] == '\\' && s[i + 1])
                    fputc(s[i++], out);
                fputc(s[i], out);
            }
            fputc('"', out);
            if (!s[i])
                i--;
            break;
        case '{':
        case '[': {
            size_t j = i + 1 + strspn(s + i + 1, " \t\r\n");
            fputc(c, out);
            if (s[j] == '}' || s[j] == ']') {
                fputc(s[j], out);
                i = j;
            } else {
                newline_indent(out, ++depth);
            }
            break;
        }
        case '}':
        case ']':
            newline_indent(out, --depth);
            fputc(c, out);
            break;
        case ',':
            fputc(',', out);
            newline_indent(out, depth);
            break;
        case ':':
            fputs(": ", out);
            break;
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            break;
        default:
            fputc(c, out);
        }
    }
    fputc('\n', out);
}

const struct sink_cfg *dlq_find_sink(const struct config *cfg, const char *sink_id)
{
    for (size_t i = 0; i < cfg->nsinks; i++)
        if (strcmp(cfg->sinks[i].sink_id, sink_id) == 0)
            return &cfg->sinks[i];
    return NULL;
}

bool dlq_state_file_exists(const struct dlq_cmd *c)
{
    return access(c->path, F_OK) == 0 || errno != ENOENT;
}

int dlq_open_store(const struct dlq_cmd *c, struct store **st)
{
    char err[1024];
    if (store_open(st, c->path, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    return 0;
}

/* ---------- list ---------- */

#define KEY_COLUMN_MAX 48 /* bytes of the key shown by `dlq list` */

struct list_state {
    const struct config *cfg;
    bool json;
    size_t n, pending, resolved;
    struct buf line;
};

static int list_one(const struct dlq_entry *e, void *arg)
{
    struct list_state *ls = arg;
    struct buf *b = &ls->line;
    char pos[CDC_POS_TEXT_MAX];
    cdc_pos_format(e->pos, pos, sizeof pos);
    const char *status = e->status == DLQ_RESOLVED ? "resolved" : "pending";
    ls->n++;
    if (e->status == DLQ_RESOLVED)
        ls->resolved++;
    else
        ls->pending++;
    buf_reset(b);
    if (ls->json) {
        dlq_entry_json(b, e, ls->cfg->topic_prefix);
    } else {
        buf_printf(b, "%-5" PRId64 " ", e->id);
        put_cell(b, e->sink_id, 64, 12);
        buf_printf(b, "%-18s ", pos);
        put_cell(b, dlq_entry_table(e->topic, ls->cfg->topic_prefix), 128, 16);
        buf_printf(b, "%c  ", e->op ? e->op : '?');
        put_cell(b, e->key_json ? e->key_json : "-", KEY_COLUMN_MAX, 12);
        put_cell(b, e->error_class, 16, 9);
        buf_printf(b, "%3d  %-8s  ", e->attempts, status);
        put_line(b, e->error, ERROR_COLUMN_MAX);
    }
    buf_putc(b, '\n');
    fwrite(b->p, 1, b->len, stdout);
    return 0;
}

struct counts {
    size_t pending, resolved;
};

static int count_one(const struct dlq_entry *e, void *arg)
{
    struct counts *n = arg;
    if (e->status == DLQ_RESOLVED)
        n->resolved++;
    else
        n->pending++;
    return 0;
}

/* After `list` of the deliver role's queue: a note on stderr when the
 * capture role's queue holds pending entries too, which --role capture
 * shows. */
static void note_other_queue(const struct dlq_cmd *c)
{
    struct dlq_cmd other = *c;
    other.path = c->other_path;
    struct store *st;
    char err[1024];
    struct counts n = {0, 0};
    if (!c->other_path || !dlq_state_file_exists(&other) ||
        store_open(&st, other.path, err, sizeof err) != 0)
        return;
    if (store_dlq_list(st, NULL, false, count_one, &n, err, sizeof err) == 0 && n.pending > 0)
        fprintf(stderr,
                "note: the capture role's queue holds %zu pending entr%s too (cdc dlq list "
                "--role capture)\n",
                n.pending, n.pending == 1 ? "y" : "ies");
    store_close(st);
}

static int dlq_list(const struct dlq_cmd *c)
{
    const struct cli_opts *o = c->o;
    note_other_queue(c);
    if (!dlq_state_file_exists(c)) {
        fprintf(o->json ? stderr : stdout, "no dead-letter entries\n");
        return 0;
    }
    struct store *st;
    if (dlq_open_store(c, &st))
        return 1;
    struct list_state ls = {.cfg = c->cfg, .json = o->json, .line = BUF_INIT};
    char err[1024];
    int rc = 0;
    if (store_dlq_list(st, o->sink, o->all, list_one, &ls, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        rc = 1;
    } else if (!o->json) {
        if (ls.n == 0)
            printf("no %sdead-letter entries\n", o->all ? "" : "pending ");
        else if (o->all)
            printf("entries: %zu (%zu pending, %zu resolved)\n", ls.n, ls.pending, ls.resolved);
        else
            printf("entries: %zu pending\n", ls.n);
    }
    buf_fini(&ls.line);
    store_close(st);
    return rc;
}

/* ---------- show ---------- */

static void show_json(const char *label, const char *json)
{
    if (json && json_valid(json, strlen(json)) && strlen(json) > 60) {
        printf("%s\n", label);
        print_json_pretty(stdout, json);
        return;
    }
    printf("%-15s", label);
    if (!json) {
        printf("(none)\n");
    } else if (json_valid(json, strlen(json))) {
        printf("%s\n", json); /* short enough for one line */
    } else {
        printf("(not valid JSON) ");
        print_line(json, 4096);
        printf("\n");
    }
}

static int dlq_show(const struct dlq_cmd *c)
{
    if (!dlq_state_file_exists(c)) {
        fprintf(stderr, "error: there is no dead-letter entry %" PRId64 ": %s does not exist\n",
                c->id, c->path);
        return 2;
    }
    struct store *st;
    if (dlq_open_store(c, &st))
        return 1;
    struct dlq_entry e;
    char err[1024];
    int rc = store_dlq_get(st, c->id, &e, err, sizeof err);
    store_close(st);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return rc == CDC_EINVAL ? 2 : 1;
    }
    char pos[CDC_POS_TEXT_MAX], t1[64], t2[64], t3[64];
    const struct sink_cfg *sc = dlq_find_sink(c->cfg, e.sink_id);
    printf("%-15s%" PRId64 "\n", "id", e.id);
    printf("%-15s", "sink");
    print_line(e.sink_id, 128);
    if (!sc)
        printf(" (not in %s any more)\n", c->cfg->pipeline_file);
    else
        printf(" (%s%s)\n", sc->type->name, sc->enabled ? "" : ", disabled");
    printf("%-15s%s\n", "status", e.status == DLQ_RESOLVED ? "resolved" : "pending");
    printf("%-15s%s\n", "position", cdc_pos_format(e.pos, pos, sizeof pos));
    printf("%-15s", "topic");
    print_line(e.topic, 256);
    printf("\n%-15s", "table");
    print_line(dlq_entry_table(e.topic, c->cfg->topic_prefix), 256);
    printf("\n%-15s%c (%s)\n", "op", e.op ? e.op : '?', op_name(e.op));
    printf("%-15s%s\n", "error class", e.error_class);
    printf("%-15s%d\n", "attempts", e.attempts);
    if (e.http_status)
        printf("%-15s%d\n", "http status", e.http_status);
    printf("%-15s%s\n", "first failed", format_time(e.first_failed_us, t1, sizeof t1));
    printf("%-15s%s\n", "dead-lettered", format_time(e.dead_lettered_us, t2, sizeof t2));
    printf("%-15s%s\n", "resolved", format_time(e.resolved_us, t3, sizeof t3));
    printf("%-15s", "error");
    print_line(e.error, sizeof e.error);
    printf("\n");
    struct cdc_event *ev = NULL;
    char derr[256];
    if (evcodec_decode(e.event, e.event_len, NULL, &ev, derr, sizeof derr) == 0)
        printf("%-15s%zu bytes stored, replayable\n", "event", e.event_len);
    else
        printf("%-15s%zu bytes stored, cannot be decoded (%s)\n", "event", e.event_len, derr);
    if (ev)
        cdc_event_unref(ev);
    show_json("key", e.key_json);
    show_json("value", e.value_json);
    dlq_entry_fini(&e);
    return 0;
}

/* ---------- purge ---------- */

static int dlq_purge(const struct dlq_cmd *c)
{
    const struct cli_opts *o = c->o;
    bool exists = dlq_state_file_exists(c);
    struct store *st = NULL;
    if (exists && dlq_open_store(c, &st))
        return 1;
    char err[1024];
    int rc = 0;
    if (!o->yes) {
        struct counts n = {0, 0};
        if (st && store_dlq_list(st, NULL, true, count_one, &n, err, sizeof err) != 0)
            fprintf(stderr, "error: %s\n", err);
        if (o->all)
            fprintf(stderr,
                    "error: purge --all deletes every dead-letter entry of pipeline %s (%zu "
                    "pending, never delivered, and %zu resolved). Run again with --yes to "
                    "proceed.\n",
                    c->cfg->pipeline_id, n.pending, n.resolved);
        else
            fprintf(stderr,
                    "error: purge deletes the %zu resolved dead-letter entries of pipeline %s "
                    "(the %zu pending ones stay). Run again with --yes to proceed.\n",
                    n.resolved, c->cfg->pipeline_id, n.pending);
        rc = 2;
    } else if (!st) {
        printf("no dead-letter entries\n");
    } else {
        int64_t n = 0;
        if (store_dlq_purge(st, o->all, &n, err, sizeof err) != 0) {
            fprintf(stderr, "error: %s\n", err);
            rc = 1;
        } else {
            printf("deleted %" PRId64 " %sentr%s\n", n, o->all ? "" : "resolved ",
                   n == 1 ? "y" : "ies");
        }
    }
    store_close(st);
    return rc;
}

/* ---------- dispatch ---------- */

/* Only replay connects to a sink: the others read the state store and work
 * without the passwords in the environment. */
static const struct {
    const char *name;
    int (*fn)(const struct dlq_cmd *c);
    unsigned opts;       /* accepted options */
    unsigned load_flags; /* config_load_flags */
} subs[] = {
    {"list", dlq_list, O_SINK | O_ALL | O_JSON, CONFIG_SECRETS_OPTIONAL},
    {"show", dlq_show, O_ID, CONFIG_SECRETS_OPTIONAL},
    {"replay", dlq_replay, O_SINK | O_ID, 0},
    {"purge", dlq_purge, O_ALL | O_YES, CONFIG_SECRETS_OPTIONAL},
};

static int usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const struct command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: cdc dlq ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_command_usage(cmd, stderr);
    return 2;
}

static int parse_id(const char *s, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || s[0] == '+' || s[0] == ' ')
        return -1;
    *id = v;
    return 0;
}

int cmd_dlq(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_common(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    if (o.nargs < 1)
        return usage_error(cmd, "expects a subcommand: list, show, replay or purge");
    size_t k = 0;
    while (k < sizeof subs / sizeof *subs && strcmp(subs[k].name, o.args[0]) != 0)
        k++;
    if (k == sizeof subs / sizeof *subs)
        return usage_error(cmd, "%s: unknown subcommand (list, show, replay or purge)", o.args[0]);
    const char *sub = subs[k].name;
    const struct {
        bool given;
        unsigned bit;
        const char *name;
    } given[] = {
        {o.sink != NULL, O_SINK, "--sink"}, {o.id != NULL, O_ID, "--id"}, {o.all, O_ALL, "--all"},
        {o.json, O_JSON, "--json"},         {o.yes, O_YES, "--yes"},
    };
    for (size_t i = 0; i < sizeof given / sizeof *given; i++)
        if (given[i].given && !(subs[k].opts & given[i].bit))
            return usage_error(cmd, "%s does not take %s", sub, given[i].name);
    struct dlq_cmd c = {.o = &o};
    const char *id_text = o.id;
    int want = 2; /* subcommand and PIPELINE */
    if (strcmp(sub, "show") == 0 && !o.id) {
        want = 3;
        id_text = o.nargs >= 3 ? o.args[2] : NULL;
    }
    if (o.nargs != want)
        return usage_error(cmd, "%s: expected %s, got %d argument%s", sub,
                           want == 3 ? "PIPELINE and ID" : "one PIPELINE file", o.nargs - 1,
                           o.nargs == 2 ? "" : "s");
    if (id_text && parse_id(id_text, &c.id) != 0)
        return usage_error(cmd, "%s: expected an entry id (a positive integer), got \"%s\"", sub,
                           id_text);

    if (o.role && strcmp(o.role, "capture") != 0 && strcmp(o.role, "deliver") != 0)
        return usage_error(cmd, "--role: expected capture or deliver, got \"%s\"", o.role);

    struct cli_opts po = o; /* what cli_load_config expects: just PIPELINE */
    po.args = o.args + 1;
    po.nargs = 1;
    struct config *cfg;
    if ((rc = cli_load_config_flags(cmd, &po, subs[k].load_flags, &cfg)))
        return rc;
    bool kafka = cfg->platform.transport_mode == TRANSPORT_KAFKA;
    if (o.role && !kafka) {
        config_free(cfg);
        return usage_error(cmd, "--role: only with transport_mode kafka (this pipeline has one "
                                "queue)");
    }
    /* With the Kafka transport the sinks run in the deliver role: its queue
     * is the one that matters unless --role capture asks for the other. */
    bool deliver = kafka && !(o.role && strcmp(o.role, "capture") == 0);
    char *name = deliver ? xasprintf("%s.deliver", cfg->pipeline_id) : xstrdup(cfg->pipeline_id);
    char *path = store_path(cfg->platform.state_dir, name);
    char *capture_path =
        kafka && !o.role ? store_path(cfg->platform.state_dir, cfg->pipeline_id) : NULL;
    c.cfg = cfg;
    c.name = name;
    c.path = path;
    c.other_path = capture_path;
    rc = subs[k].fn(&c);
    free(capture_path);
    free(path);
    free(name);
    config_free(cfg);
    return rc;
}
