/* Loading: read the files, build a YAML tree per file, decode it through
 * the schema tables (cfg_tables.c), and hand back either a complete config
 * or every problem found. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_diag.h"
#include "config/cfg_schema.h"
#include "config/config.h"
#include "config/yamltree.h"
#include "sink/registry.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

/* Configuration files are small; anything bigger is a wrong path. */
#define CONFIG_MAX_FILE (16u << 20)

void cfg_errors_fini(struct cfg_errors *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->n = 0;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    cfg_schema_free(&cfg_pipeline_schema, cfg);
    cfg_schema_free(&cfg_platform_schema, &cfg->platform);
    cfg_errors_fini(&cfg->inert);
    cfg_errors_fini(&cfg->unset_secrets);
    free(cfg->pipeline_file);
    free(cfg->platform_file);
    free(cfg);
}

/* Appends one part of a table name (bare, or double-quoted with "" for a
 * quote) to out; returns the rest of the string or NULL if malformed. */
static const char *split_part(const char *s, struct buf *out)
{
    if (*s == '"') {
        for (s++;; s++) {
            if (*s == '\0')
                return NULL;
            if (*s == '"') {
                if (s[1] != '"')
                    break;
                s++;
            }
            buf_putc(out, *s);
        }
        s++;
    } else {
        for (; *s && *s != '.' && *s != '"'; s++) {
            unsigned char c = (unsigned char)*s;
            if (c <= ' ' || c == 0x7f)
                return NULL;
            buf_putc(out, *s);
        }
    }
    return out->len ? s : NULL;
}

int config_split_table(const char *qualified, char **schema, char **table)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    *schema = *table = NULL;
    const char *s = split_part(qualified, &a);
    if (!s || *s != '.')
        goto bad;
    s = split_part(s + 1, &b);
    if (!s || *s)
        goto bad;
    *schema = a.p;
    *table = b.p;
    return 0;
bad:
    buf_fini(&a);
    buf_fini(&b);
    return CDC_EINVAL;
}

/* What one load decodes with: the sink types a config may name, and what
 * it notes besides errors. */
struct load {
    const struct sink_type *const *types;
    size_t ntypes;
    struct cfg_seen_list seen;
    struct cfg_diag *unset_secrets; /* NULL: strict */
};

/* Parses and decodes one file's text into obj (which holds defaults). */
static void load_one(struct config *cfg, struct cfg_diag *diag, const struct cfg_src *src,
                     const char *loc_file, const struct cfg_schema *schema, void *obj,
                     const char *text, size_t len, struct load *ld)
{
    struct yamltree_node *root = NULL;
    if (yamltree_parse(&root, text ? text : "", text ? len : 0, src, diag) != 0)
        return;
    if (root->kind != YAMLTREE_MAP) {
        cfg_diag_add(diag, src, root->line, NULL,
                     "expected a mapping of keys at the top level, got %s",
                     yamltree_kind_name(root->kind));
    } else {
        struct cfg_ctx ctx = {.diag = diag,
                              .src = src,
                              .loc_file = loc_file,
                              .cfg = cfg,
                              .sink_types = ld->types,
                              .nsink_types = ld->ntypes,
                              .seen = &ld->seen,
                              .unset_secrets = ld->unset_secrets};
        cfg_path_init(&ctx.path);
        cfg_schema_decode(&ctx, schema, obj, root, root->line);
        cfg_path_fini(&ctx.path);
    }
    yamltree_free(root);
}

/* Judges the keys seen that may have no effect, now that the whole config
 * is known, into cfg->inert. */
static void judge_inert(struct config *cfg, struct cfg_seen_list *seen)
{
    struct cfg_diag notes;
    cfg_diag_init(&notes);
    for (size_t i = 0; i < seen->n; i++) {
        const struct cfg_seen *k = &seen->v[i];
        const char *why = k->key->inert(cfg);
        struct cfg_src src = {k->file, k->order};
        if (why)
            cfg_diag_add(&notes, &src, k->line, NULL, "accepted, has no effect: %s (%s)", k->path,
                         why);
        free(k->path);
    }
    free(seen->v);
    seen->v = NULL;
    seen->n = seen->cap = 0;
    cfg_diag_flush(&notes, &cfg->inert);
}

/* Loads both texts with the sink types types[0..ntypes). */
static int load_texts(struct config **out, const char *pipeline_name, const char *pipeline_text,
                      size_t pipeline_len, const char *platform_name, const char *platform_text,
                      size_t platform_len, unsigned flags, struct cfg_errors *errs,
                      const struct sink_type *const *types, size_t ntypes)
{
    struct cfg_diag diag, unset;
    cfg_diag_init(&diag);
    cfg_diag_init(&unset);
    struct load ld = {.types = types,
                      .ntypes = ntypes,
                      .unset_secrets = (flags & CONFIG_SECRETS_OPTIONAL) ? &unset : NULL};
    *out = NULL;

    struct config *cfg = xcalloc(1, sizeof *cfg);
    cfg->pipeline_file = xstrdup(pipeline_name ? pipeline_name : "pipeline.yaml");
    if (platform_text)
        cfg->platform_file = xstrdup(platform_name ? platform_name : "platform.yaml");
    cfg_schema_defaults(&cfg_platform_schema, &cfg->platform);
    cfg_schema_defaults(&cfg_pipeline_schema, cfg);

    /* the platform first: sinks start from its retry policy */
    if (platform_text) {
        struct cfg_src src = {cfg->platform_file, 1};
        load_one(cfg, &diag, &src, cfg->platform_file, &cfg_platform_schema, &cfg->platform,
                 platform_text, platform_len, &ld);
    }
    struct cfg_src src = {cfg->pipeline_file, 0};
    load_one(cfg, &diag, &src, cfg->pipeline_file, &cfg_pipeline_schema, cfg, pipeline_text,
             pipeline_len, &ld);

    int rc = diag.n ? CDC_EINVAL : 0;
    cfg_diag_flush(&diag, errs);
    cfg_diag_flush(&unset, &cfg->unset_secrets);
    judge_inert(cfg, &ld.seen);
    if (rc)
        config_free(cfg);
    else
        *out = cfg;
    return rc;
}

int config_load_text_types(struct config **out, const char *pipeline_name,
                           const char *pipeline_text, size_t pipeline_len,
                           const char *platform_name, const char *platform_text,
                           size_t platform_len, struct cfg_errors *errs,
                           const struct sink_type *const *types, size_t ntypes)
{
    return load_texts(out, pipeline_name, pipeline_text, pipeline_len, platform_name, platform_text,
                      platform_len, 0, errs, types, ntypes);
}

int config_load_text_flags(struct config **out, const char *pipeline_name,
                           const char *pipeline_text, size_t pipeline_len,
                           const char *platform_name, const char *platform_text,
                           size_t platform_len, unsigned flags, struct cfg_errors *errs)
{
    size_t n = sink_type_count();
    const struct sink_type **v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = sink_type_at(i);
    int rc = load_texts(out, pipeline_name, pipeline_text, pipeline_len, platform_name,
                        platform_text, platform_len, flags, errs, v, n);
    free(v);
    return rc;
}

int config_load_text(struct config **out, const char *pipeline_name, const char *pipeline_text,
                     size_t pipeline_len, const char *platform_name, const char *platform_text,
                     size_t platform_len, struct cfg_errors *errs)
{
    return config_load_text_flags(out, pipeline_name, pipeline_text, pipeline_len, platform_name,
                                  platform_text, platform_len, 0, errs);
}

/* Reads a whole file; on failure records "PATH: cannot read: REASON". */
static int read_file(const char *path, int order, char **text, size_t *len, struct cfg_diag *diag)
{
    struct cfg_src src = {path, order};
    struct buf b = BUF_INIT;
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg_diag_add(diag, &src, 0, NULL, "cannot read: %s", strerror(errno));
        return CDC_EIO;
    }
    for (;;) {
        buf_reserve(&b, 65536);
        size_t n = fread(b.p + b.len, 1, 65536, f);
        b.len += n;
        b.p[b.len] = '\0';
        if (n < 65536)
            break;
        if (b.len > CONFIG_MAX_FILE)
            break;
    }
    int rc = 0;
    if (ferror(f)) {
        cfg_diag_add(diag, &src, 0, NULL, "cannot read: %s", strerror(errno));
        rc = CDC_EIO;
    } else if (b.len > CONFIG_MAX_FILE) {
        cfg_diag_add(diag, &src, 0, NULL, "cannot read: larger than %u MiB", CONFIG_MAX_FILE >> 20);
        rc = CDC_EIO;
    }
    fclose(f);
    if (rc) {
        buf_fini(&b);
        return rc;
    }
    *text = b.p;
    *len = b.len;
    return 0;
}

int config_load(struct config **out, const char *pipeline_path, const char *platform_path,
                struct cfg_errors *errs)
{
    return config_load_flags(out, pipeline_path, platform_path, 0, errs);
}

int config_load_flags(struct config **out, const char *pipeline_path, const char *platform_path,
                      unsigned flags, struct cfg_errors *errs)
{
    struct cfg_diag diag;
    cfg_diag_init(&diag);
    char *pipe_text = NULL, *plat_text = NULL;
    size_t pipe_len = 0, plat_len = 0;
    *out = NULL;

    int rc = read_file(pipeline_path, 0, &pipe_text, &pipe_len, &diag);
    if (platform_path && read_file(platform_path, 1, &plat_text, &plat_len, &diag) != 0)
        rc = CDC_EIO;
    if (rc == 0)
        rc = config_load_text_flags(out, pipeline_path, pipe_text, pipe_len, platform_path,
                                    platform_path ? plat_text : NULL, plat_len, flags, errs);
    cfg_diag_flush(&diag, errs);
    free(pipe_text);
    free(plat_text);
    return rc;
}
