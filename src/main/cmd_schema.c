/* `cdc schema PIPELINE [--table T] [--json]`: the schema history of one
 * pipeline (schema/schema_hist.h), read from its state store like
 * `cdc dlq list`: no passwords needed, and safe beside a running pipeline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "main/cli.h"
#include "schema/schema_json.h"
#include "state/store.h"
#include "util/buf.h"

struct schema_print {
    const struct cli_opts *o;
    size_t n;
    struct buf line;
};

static const char *compat_text(const struct schema_version *v)
{
    if (v->compatible < 0)
        return "-";
    if (v->held)
        return "no (held)";
    return v->compatible ? "yes" : "no";
}

static int print_version(const struct schema_version *v, void *arg)
{
    struct schema_print *p = arg;
    if (!schema_table_matches(v, p->o->table))
        return 0;
    struct buf *b = &p->line;
    buf_reset(b);
    if (p->o->json) {
        schema_version_json(b, v);
        puts(b->p);
        p->n++;
        return 0;
    }
    if (p->n++ == 0)
        printf("%-32s %-7s %-20s %-10s %s\n", "TABLE", "VERSION", "SINCE", "COMPATIBLE", "CHANGES");
    const struct cdc_table *tab = v->shape;
    char where[CDC_POS_TEXT_MAX], name[300];
    cdc_pos_format(v->pos, where, sizeof where);
    snprintf(name, sizeof name, "%s.%s", tab->schema, tab->name);
    printf("%-32s %-7u %-20s %-10s %s\n", name, v->version, where, compat_text(v),
           v->compatible < 0 ? "first version" : v->summary);
    if (p->o->table) {
        /* One table: its columns too. */
        for (uint16_t i = 0; i < tab->ncols; i++) {
            const struct cdc_column *c = &tab->cols[i];
            buf_printf(b, "%s%s %s%s%s", i ? ", " : "    columns: ", c->name, c->type_name,
                       c->key ? " key" : "", c->not_null ? " not null" : "");
        }
        if (b->p)
            puts(b->p);
    }
    return 0;
}

int cmd_schema(const struct command *cmd, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_common(cmd, argc, argv, &o);
    if (rc)
        return rc == CLI_EXIT_HELP ? 0 : rc;
    if (o.nargs != 1) {
        fprintf(stderr, "error: cdc schema: expected one PIPELINE file, got %d arguments\n",
                o.nargs);
        cli_command_usage(cmd, stderr);
        return 2;
    }
    struct config *cfg;
    if ((rc = cli_load_config_flags(cmd, &o, CONFIG_SECRETS_OPTIONAL, &cfg)))
        return rc;
    char *path = store_path(cfg->platform.state_dir, cfg->pipeline_id);
    struct schema_print p = {.o = &o, .line = BUF_INIT};
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        rc = 0; /* nothing recorded yet: no run has started */
    } else {
        struct store *st = NULL;
        char err[1024];
        rc = store_open(&st, path, err, sizeof err);
        if (rc == 0)
            rc = store_schema_list(st, NULL, NULL, print_version, &p, err, sizeof err);
        store_close(st);
        if (rc) {
            fprintf(stderr, "error: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0 && p.n == 0)
        fprintf(o.json ? stderr : stdout, "no schema versions recorded%s%s\n",
                o.table ? " for " : "", o.table ? o.table : "");
    buf_fini(&p.line);
    free(path);
    config_free(cfg);
    return rc;
}
