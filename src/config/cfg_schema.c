#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfg_env.h"
#include "config/cfg_schema.h"
#include "util/mem.h"

#define FIELD(obj, off, type) ((type *)((char *)(obj) + (off)))

void cfg_error(struct cfg_ctx *ctx, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_diag_vadd(ctx->diag, ctx->src, line, cfg_path_str(&ctx->path), fmt, ap);
    va_end(ap);
}

void cfg_error_key(struct cfg_ctx *ctx, int line, const char *key, const char *fmt, ...)
{
    size_t mark = cfg_path_push_key(&ctx->path, key, strlen(key));
    va_list ap;
    va_start(ap, fmt);
    cfg_diag_vadd(ctx->diag, ctx->src, line, cfg_path_str(&ctx->path), fmt, ap);
    va_end(ap);
    cfg_path_pop(&ctx->path, mark);
}

int cfg_key_line(const struct yamltree_node *map, const char *key, int dflt)
{
    const struct yamltree_pair *p = yamltree_map_find(map, key);
    return p ? p->key->line : dflt;
}

bool cfg_schema_ok(const struct cfg_schema *s, uint64_t ok, const char *name)
{
    for (size_t i = 0; i < s->nkeys && i < CFG_MAX_KEYS; i++)
        if (strcmp(s->keys[i].name, name) == 0)
            return (ok >> i) & 1;
    return false;
}

size_t cfg_edit_distance(const char *a, const char *b, size_t cap)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN)
        return cap + 1;
    unsigned char d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = (size_t)d[i - 1][j] + 1;
            if ((size_t)d[i][j - 1] + 1 < v)
                v = (size_t)d[i][j - 1] + 1;
            if ((size_t)d[i - 1][j - 1] + cost < v)
                v = (size_t)d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                (size_t)d[i - 2][j - 2] + 1 < v)
                v = (size_t)d[i - 2][j - 2] + 1;
            d[i][j] = (unsigned char)v;
        }
    }
    return d[la][lb] > cap ? cap + 1 : d[la][lb];
}

/* ---- defaults and freeing ---- */

void cfg_schema_defaults(const struct cfg_schema *s, void *obj)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct cfg_key *k = &s->keys[i];
        switch (k->type) {
        case CFG_STRING:
            *FIELD(obj, k->off, char *) = k->def_str ? xstrdup(k->def_str) : NULL;
            break;
        case CFG_INT:
        case CFG_ENUM:
            *FIELD(obj, k->off, int) = (int)k->def_int;
            break;
        case CFG_INT64:
            *FIELD(obj, k->off, int64_t) = k->def_int;
            break;
        case CFG_FLOAT:
            *FIELD(obj, k->off, double) = k->def_float;
            break;
        case CFG_BOOL:
            *FIELD(obj, k->off, bool) = k->def_int != 0;
            break;
        case CFG_OBJECT:
            cfg_schema_defaults(k->sub, FIELD(obj, k->off, char));
            break;
        default:
            break; /* lists and maps start empty */
        }
    }
}

/* Frees one field's value and leaves it empty. */
static void key_free(const struct cfg_key *k, void *obj)
{
    switch (k->type) {
    case CFG_STRING: {
        char **p = FIELD(obj, k->off, char *);
        free(*p);
        *p = NULL;
        break;
    }
    case CFG_STRLIST: {
        char ***v = FIELD(obj, k->off, char **);
        size_t *n = FIELD(obj, k->count_off, size_t);
        for (size_t i = 0; *v && i < *n; i++)
            free((*v)[i]);
        free(*v);
        *v = NULL;
        *n = 0;
        if (k->has_locs) {
            struct cfg_loc **locs = FIELD(obj, k->locs_off, struct cfg_loc *);
            free(*locs);
            *locs = NULL;
        }
        break;
    }
    case CFG_STRMAP: {
        struct kv **v = FIELD(obj, k->off, struct kv *);
        size_t *n = FIELD(obj, k->count_off, size_t);
        for (size_t i = 0; *v && i < *n; i++) {
            free((*v)[i].key);
            free((*v)[i].value);
        }
        free(*v);
        *v = NULL;
        *n = 0;
        if (k->has_locs) {
            struct cfg_loc **locs = FIELD(obj, k->locs_off, struct cfg_loc *);
            free(*locs);
            *locs = NULL;
        }
        break;
    }
    case CFG_OBJECT:
        cfg_schema_free(k->sub, FIELD(obj, k->off, char));
        break;
    case CFG_OBJLIST: {
        char **v = FIELD(obj, k->off, char *);
        size_t *n = FIELD(obj, k->count_off, size_t);
        for (size_t i = 0; *v && i < *n; i++)
            cfg_schema_free(k->sub, *v + i * k->sub->size);
        free(*v);
        *v = NULL;
        *n = 0;
        break;
    }
    default:
        break;
    }
}

void cfg_schema_free(const struct cfg_schema *s, void *obj)
{
    if (s->fini)
        s->fini(obj);
    for (size_t i = 0; i < s->nkeys; i++)
        key_free(&s->keys[i], obj);
}

/* ---- scalar conversion ---- */

/* Appends what a key accepts: "an integer 1..65535", "one of a|b", ... */
static void key_expect(const struct cfg_ctx *ctx, struct buf *b, const struct cfg_key *k)
{
    if (k->expect) {
        k->expect(ctx, b);
        return;
    }
    switch (k->type) {
    case CFG_INT:
    case CFG_INT64: {
        int64_t top = k->type == CFG_INT ? INT_MAX : INT64_MAX;
        if (k->imax >= top)
            buf_printf(b, "an integer >= %lld", (long long)k->imin);
        else
            buf_printf(b, "an integer %lld..%lld", (long long)k->imin, (long long)k->imax);
        break;
    }
    case CFG_FLOAT:
        if (isinf(k->fmax))
            buf_printf(b, "a number %s %g", (k->flags & CFG_GT) ? ">" : ">=", k->fmin);
        else
            buf_printf(b, "a number %g..%g", k->fmin, k->fmax);
        break;
    case CFG_BOOL:
        buf_puts(b, "true or false");
        break;
    case CFG_ENUM:
    case CFG_STRING:
        if (k->names) {
            buf_puts(b, "one of ");
            const char *sep = "";
            for (size_t i = 0; i < k->nnames; i++) {
                if (!k->names[i])
                    continue;
                buf_printf(b, "%s%s", sep, k->names[i]);
                sep = "|";
            }
        } else {
            buf_puts(b, "a string");
        }
        break;
    case CFG_STRLIST:
        buf_printf(b, "a list of %s", k->item_desc ? k->item_desc : "strings");
        break;
    case CFG_STRMAP:
        buf_puts(b, "a mapping of names to strings");
        break;
    case CFG_OBJECT:
        buf_puts(b, "a mapping");
        break;
    case CFG_OBJLIST:
        buf_puts(b, "a list of mappings");
        break;
    case CFG_FOREIGN:
    case CFG_NOTIMPL:
        break;
    }
}

static bool key_quiet(const struct cfg_key *k)
{
    return (k->flags & (CFG_SECRET | CFG_NOECHO)) != 0;
}

/* Reports "expected <what>, got <value>" at the current path; the value is
 * left out for secrets (and for keys holding lists or mappings, where the
 * kind alone says enough).  got may be NULL to describe node instead. */
static void report_expected(struct cfg_ctx *ctx, const struct cfg_key *k, const char *what,
                            const struct yamltree_node *node, const char *got)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "expected ");
    if (what)
        buf_puts(&b, what);
    else
        key_expect(ctx, &b, k);
    bool container = !what && (k->type == CFG_STRLIST || k->type == CFG_STRMAP ||
                               k->type == CFG_OBJECT || k->type == CFG_OBJLIST);
    if (!key_quiet(k) && !container) {
        buf_puts(&b, ", got ");
        if (got)
            cfg_quote(&b, got, strlen(got));
        else if (node->kind == YAMLTREE_SCALAR)
            cfg_quote(&b, node->str, node->len);
        else
            buf_puts(&b, yamltree_kind_name(node->kind));
    }
    cfg_error(ctx, node->line, "%s", b.p);
    buf_fini(&b);
}

/* The text of a scalar with ${...} expanded, or NULL after reporting why
 * (not a scalar, or a bad reference).  The caller frees the result. */
static char *scalar_text(struct cfg_ctx *ctx, const struct cfg_key *k,
                         const struct yamltree_node *node)
{
    if (node->kind != YAMLTREE_SCALAR) {
        report_expected(ctx, k, NULL, node, NULL);
        return NULL;
    }
    char *out = NULL;
    struct buf msg = BUF_INIT;
    bool lenient = ctx->unset_secrets && (k->flags & CFG_SECRET);
    bool unset = false;
    if (cfg_env_expand(node->str, node->len, &out, &msg, lenient ? &unset : NULL) != 0) {
        cfg_error(ctx, node->line, "%s", msg.p ? msg.p : "bad variable reference");
        buf_fini(&msg);
        return NULL;
    }
    if (unset) /* msg names the variable, never a value */
        cfg_diag_add(ctx->unset_secrets, ctx->src, node->line, cfg_path_str(&ctx->path), "%s",
                     msg.p);
    buf_fini(&msg);
    return out;
}

/* Strips ASCII blanks at both ends in place (numbers may be quoted " 5 "). */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Decimal integer with an optional sign; false on anything else or
 * overflow. */
static bool parse_i64(const char *s, int64_t *out)
{
    bool neg = false;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* A finite decimal number (integer, fraction, exponent); no hex, inf, nan. */
static bool parse_double(const char *s, double *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return false;
    char *end = NULL;
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Converts one scalar for a STRING/INT/INT64/FLOAT/BOOL/ENUM key and stores
 * it.  Returns false after reporting a problem. */
static bool decode_scalar(struct cfg_ctx *ctx, const struct cfg_key *k, void *obj,
                          const struct yamltree_node *node)
{
    char *text = scalar_text(ctx, k, node);
    if (!text)
        return false;
    bool ok = false;
    const char *t = k->type == CFG_STRING ? text : trim(text);

    switch (k->type) {
    case CFG_STRING: {
        if (k->names) {
            for (size_t i = 0; i < k->nnames && !ok; i++)
                ok = k->names[i] && strcmp(k->names[i], t) == 0;
            if (!ok) {
                report_expected(ctx, k, NULL, node, t);
                break;
            }
        }
        const char *what = k->check ? k->check(t) : NULL;
        if (what) {
            report_expected(ctx, k, what, node, t);
            ok = false;
            break;
        }
        char **p = FIELD(obj, k->off, char *);
        free(*p);
        *p = text;
        text = NULL;
        ok = true;
        break;
    }
    case CFG_INT:
    case CFG_INT64: {
        int64_t v;
        ok = parse_i64(t, &v) && v >= k->imin && v <= k->imax;
        if (!ok)
            report_expected(ctx, k, NULL, node, t);
        else if (k->type == CFG_INT)
            *FIELD(obj, k->off, int) = (int)v;
        else
            *FIELD(obj, k->off, int64_t) = v;
        break;
    }
    case CFG_FLOAT: {
        double v;
        ok = parse_double(t, &v) && ((k->flags & CFG_GT) ? v > k->fmin : v >= k->fmin) &&
             v <= k->fmax;
        if (!ok)
            report_expected(ctx, k, NULL, node, t);
        else
            *FIELD(obj, k->off, double) = v;
        break;
    }
    case CFG_BOOL: {
        bool v;
        ok = parse_bool(t, &v);
        if (!ok)
            report_expected(ctx, k, NULL, node, t);
        else
            *FIELD(obj, k->off, bool) = v;
        break;
    }
    case CFG_ENUM:
        for (size_t i = 0; i < k->nnames && !ok; i++) {
            if (k->names[i] && strcmp(k->names[i], t) == 0) {
                *FIELD(obj, k->off, int) = (int)i;
                ok = true;
            }
        }
        if (!ok)
            report_expected(ctx, k, NULL, node, t);
        break;
    default:
        break;
    }
    free(text);
    return ok;
}

/* ---- containers ---- */

static bool decode_strlist(struct cfg_ctx *ctx, const struct cfg_key *k, void *obj,
                           const struct yamltree_node *node, int key_line)
{
    key_free(k, obj);
    if (k->has_locs)
        *FIELD(obj, k->loc_off, struct cfg_loc) = (struct cfg_loc){ctx->loc_file, key_line};
    if (yamltree_is_null(node))
        return true;
    if (node->kind != YAMLTREE_SEQ) {
        report_expected(ctx, k, NULL, node, NULL);
        return false;
    }
    char **v = xcalloc(node->nitems, sizeof *v);
    struct cfg_loc *locs = k->has_locs ? xcalloc(node->nitems, sizeof *locs) : NULL;
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; i < node->nitems; i++) {
        const struct yamltree_node *item = node->items[i];
        size_t mark = cfg_path_push_index(&ctx->path, i);
        char *text = NULL;
        if (item->kind != YAMLTREE_SCALAR) {
            cfg_error(ctx, item->line, "expected a string, got %s", yamltree_kind_name(item->kind));
        } else if ((text = scalar_text(ctx, k, item)) != NULL) {
            const char *what = k->check ? k->check(text) : NULL;
            if (what) {
                report_expected(ctx, k, what, item, text);
                free(text);
                text = NULL;
            }
        }
        cfg_path_pop(&ctx->path, mark);
        if (!text) {
            ok = false;
            continue;
        }
        if (locs)
            locs[n] = (struct cfg_loc){ctx->loc_file, item->line};
        v[n++] = text;
    }
    *FIELD(obj, k->off, char **) = v;
    *FIELD(obj, k->count_off, size_t) = n;
    if (k->has_locs)
        *FIELD(obj, k->locs_off, struct cfg_loc *) = locs;
    return ok;
}

static bool decode_strmap(struct cfg_ctx *ctx, const struct cfg_key *k, void *obj,
                          const struct yamltree_node *node, int key_line)
{
    key_free(k, obj);
    if (k->has_locs)
        *FIELD(obj, k->loc_off, struct cfg_loc) = (struct cfg_loc){ctx->loc_file, key_line};
    if (yamltree_is_null(node))
        return true;
    if (node->kind != YAMLTREE_MAP) {
        report_expected(ctx, k, NULL, node, NULL);
        return false;
    }
    struct kv *v = xcalloc(node->npairs, sizeof *v);
    struct cfg_loc *locs = k->has_locs ? xcalloc(node->npairs, sizeof *locs) : NULL;
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; i < node->npairs; i++) {
        const struct yamltree_pair *p = &node->pairs[i];
        size_t mark = cfg_path_push_key(&ctx->path, p->key->str, p->key->len);
        char *text = NULL;
        if (yamltree_is_null(p->value))
            text = xstrdup("");
        else if (p->value->kind != YAMLTREE_SCALAR)
            cfg_error(ctx, p->value->line, "expected a string, got %s",
                      yamltree_kind_name(p->value->kind));
        else
            text = scalar_text(ctx, k, p->value);
        cfg_path_pop(&ctx->path, mark);
        if (!text) {
            ok = false;
            continue;
        }
        if (locs)
            locs[n] = (struct cfg_loc){ctx->loc_file, p->key->line};
        v[n].key = xstrdup(p->key->str);
        v[n].value = text;
        n++;
    }
    *FIELD(obj, k->off, struct kv *) = v;
    *FIELD(obj, k->count_off, size_t) = n;
    if (k->has_locs)
        *FIELD(obj, k->locs_off, struct cfg_loc *) = locs;
    return ok;
}

static bool decode_objlist(struct cfg_ctx *ctx, const struct cfg_key *k, void *obj,
                           const struct yamltree_node *node)
{
    const struct cfg_schema *s = k->sub;
    key_free(k, obj);
    if (yamltree_is_null(node))
        return true;
    if (node->kind != YAMLTREE_SEQ) {
        report_expected(ctx, k, NULL, node, NULL);
        return false;
    }
    char *v = xcalloc(node->nitems, s->size);
    *FIELD(obj, k->off, char *) = v;
    *FIELD(obj, k->count_off, size_t) = node->nitems;
    bool ok = true;
    for (size_t i = 0; i < node->nitems; i++) {
        const struct yamltree_node *item = node->items[i];
        void *elem = v + i * s->size;
        cfg_schema_defaults(s, elem);
        if (s->init)
            s->init(ctx, elem);
        if (s->has_loc)
            *FIELD(elem, s->loc_off, struct cfg_loc) = (struct cfg_loc){ctx->loc_file, item->line};
        size_t mark = cfg_path_push_index(&ctx->path, i);
        if (item->kind != YAMLTREE_MAP && !yamltree_is_null(item)) {
            cfg_error(ctx, item->line, "expected a mapping, got %s",
                      item->kind == YAMLTREE_SEQ ? "a list" : "a scalar");
            ok = false;
        } else {
            cfg_schema_decode(ctx, s, elem, item->kind == YAMLTREE_MAP ? item : NULL, item->line);
        }
        cfg_path_pop(&ctx->path, mark);
    }
    return ok;
}

/* Decodes one present key; the context path already names it. */
static bool decode_key(struct cfg_ctx *ctx, const struct cfg_key *k, void *obj,
                       const struct yamltree_pair *p)
{
    const struct yamltree_node *v = p->value;
    switch (k->type) {
    case CFG_STRLIST:
        return decode_strlist(ctx, k, obj, v, p->key->line);
    case CFG_STRMAP:
        return decode_strmap(ctx, k, obj, v, p->key->line);
    case CFG_OBJLIST:
        if (yamltree_is_null(v) && (k->flags & CFG_REQUIRED)) {
            cfg_error(ctx, p->key->line, "required key has no value");
            return false;
        }
        return decode_objlist(ctx, k, obj, v);
    case CFG_OBJECT:
        if (yamltree_is_null(v)) {
            cfg_schema_decode(ctx, k->sub, FIELD(obj, k->off, char), NULL, p->key->line);
            return true;
        }
        if (v->kind != YAMLTREE_MAP) {
            report_expected(ctx, k, NULL, v, NULL);
            return false;
        }
        cfg_schema_decode(ctx, k->sub, FIELD(obj, k->off, char), v, p->key->line);
        return true;
    case CFG_FOREIGN:
    case CFG_NOTIMPL:
        return false;
    default:
        break;
    }
    if (yamltree_is_null(v)) {
        if (k->flags & CFG_REQUIRED) {
            cfg_error(ctx, p->key->line, "required key has no value");
            return false;
        }
        if (k->type == CFG_STRING && (k->flags & CFG_NULLABLE))
            key_free(k, obj);
        return true; /* otherwise null keeps the default */
    }
    return decode_scalar(ctx, k, obj, v);
}

/* Reports an unknown key, suggesting the closest known one. */
static void report_unknown(struct cfg_ctx *ctx, const struct cfg_part *parts, size_t nparts,
                           const struct yamltree_node *key)
{
    size_t len = key->len;
    size_t cap = len < 4 ? 1 : len < 8 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = cap + 1;
    for (size_t p = 0; p < nparts; p++) {
        const struct cfg_schema *s = parts[p].s;
        for (size_t i = 0;; i++) {
            const char *name = NULL;
            if (i < s->nkeys) {
                if (s->keys[i].type == CFG_FOREIGN)
                    continue;
                name = s->keys[i].name;
            } else if (!s->more_keys || !(name = s->more_keys(ctx, i - s->nkeys))) {
                break;
            }
            size_t d = cfg_edit_distance(key->str, name, cap);
            if (d < best_d) {
                best_d = d;
                best = name;
            }
        }
    }
    if (best)
        cfg_error(ctx, key->line, "unknown key (did you mean \"%s\"?)", best);
    else
        cfg_error(ctx, key->line, "unknown key");
}

/* Remembers a present key whose effect depends on the whole config. */
static void note_seen(struct cfg_ctx *ctx, const struct cfg_key *k, int line)
{
    struct cfg_seen_list *l = ctx->seen;
    if (!l)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (struct cfg_seen){.key = k,
                                     .file = ctx->loc_file,
                                     .order = ctx->src->order,
                                     .line = line,
                                     .path = xstrdup(cfg_path_str(&ctx->path))};
}

/* Whether the check hook of s decodes `name` itself (more_keys). */
static bool is_more_key(const struct cfg_ctx *ctx, const struct cfg_schema *s, const char *name)
{
    const char *m;
    for (size_t i = 0; s->more_keys && (m = s->more_keys(ctx, i)) != NULL; i++)
        if (strcmp(m, name) == 0)
            return true;
    return false;
}

void cfg_schema_decode_parts(struct cfg_ctx *ctx, struct cfg_part *parts, size_t n,
                             const struct yamltree_node *map, int line)
{
    uint64_t present[CFG_MAX_PARTS];
    if (n > CFG_MAX_PARTS)
        n = CFG_MAX_PARTS;
    for (size_t p = 0; p < n; p++)
        present[p] = parts[p].ok = 0;
    for (size_t i = 0; map && i < map->npairs; i++) {
        const struct yamltree_pair *pair = &map->pairs[i];
        size_t mark = cfg_path_push_key(&ctx->path, pair->key->str, pair->key->len);
        size_t p = 0, ki = 0;
        bool more = false;
        for (; p < n; p++) {
            const struct cfg_schema *s = parts[p].s;
            for (ki = 0; ki < s->nkeys && strcmp(s->keys[ki].name, pair->key->str) != 0; ki++)
                ;
            if (ki < s->nkeys || (more = is_more_key(ctx, s, pair->key->str)))
                break;
        }
        if (p == n) {
            report_unknown(ctx, parts, n, pair->key);
        } else if (more) {
            /* the check hook's */
        } else if (parts[p].s->keys[ki].type == CFG_NOTIMPL) {
            cfg_error(ctx, pair->key->line, "not implemented in this version of cdc (%s)",
                      parts[p].s->keys[ki].item_desc);
        } else if (parts[p].s->keys[ki].type == CFG_FOREIGN) {
            const struct cfg_schema *s = parts[p].s;
            bool here_pipeline = s->role && strcmp(s->role, "pipeline") == 0;
            cfg_error(ctx, pair->key->line, "\"%s\" belongs in the %s config, not the %s config",
                      s->keys[ki].name, here_pipeline ? "platform" : "pipeline",
                      here_pipeline ? "pipeline" : "platform");
        } else {
            if (ki < CFG_MAX_KEYS)
                present[p] |= UINT64_C(1) << ki;
            const struct cfg_key *k = &parts[p].s->keys[ki];
            if (decode_key(ctx, k, parts[p].obj, pair) && ki < CFG_MAX_KEYS)
                parts[p].ok |= UINT64_C(1) << ki;
            if (k->inert)
                note_seen(ctx, k, pair->key->line);
        }
        cfg_path_pop(&ctx->path, mark);
    }
    for (size_t p = 0; p < n; p++) {
        const struct cfg_schema *s = parts[p].s;
        for (size_t i = 0; i < s->nkeys && i < CFG_MAX_KEYS; i++) {
            if ((s->keys[i].flags & CFG_REQUIRED) && !((present[p] >> i) & 1))
                cfg_error_key(ctx, line, s->keys[i].name, "required key is missing");
        }
    }
    for (size_t p = 0; p < n; p++)
        if (parts[p].s->check)
            parts[p].s->check(ctx, parts[p].obj, map, line, parts[p].ok);
}

uint64_t cfg_schema_decode(struct cfg_ctx *ctx, const struct cfg_schema *s, void *obj,
                           const struct yamltree_node *map, int line)
{
    struct cfg_part part = {s, obj, 0};
    cfg_schema_decode_parts(ctx, &part, 1, map, line);
    return part.ok;
}
