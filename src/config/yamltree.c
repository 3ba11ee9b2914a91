#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/yamltree.h"
#include "util/err.h"
#include "util/mem.h"

/* Deeper nesting than this is surely a mistake (and keeps every walk over
 * the tree shallow). */
#define YAMLTREE_MAX_DEPTH 64

/* An open mapping or sequence while events arrive. */
struct yt_frame {
    struct yamltree_node *node;    /* borrowed: owned by its parent or the root */
    struct yamltree_node *pending; /* owned: a mapping key waiting for its value */
    struct yamltree_node *cur_key; /* borrowed: key of the entry being built */
    bool expect_key;
};

struct yt_builder {
    const struct cfg_src *src;
    struct cfg_diag *diag;
    struct yamltree_node *root; /* owned */
    struct yt_frame frames[YAMLTREE_MAX_DEPTH];
    size_t depth;
    struct cfg_path path; /* scratch for messages */
};

static struct yamltree_node *yt_node_new(enum yamltree_kind kind, const yaml_mark_t *mark)
{
    struct yamltree_node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->line = (int)mark->line + 1;
    n->col = (int)mark->column + 1;
    return n;
}

void yamltree_free(struct yamltree_node *n)
{
    if (!n)
        return;
    free(n->str);
    for (size_t i = 0; i < n->nitems; i++)
        yamltree_free(n->items[i]);
    free(n->items);
    for (size_t i = 0; i < n->npairs; i++) {
        yamltree_free(n->pairs[i].key);
        yamltree_free(n->pairs[i].value);
    }
    free(n->pairs);
    free(n);
}

bool yamltree_is_null(const struct yamltree_node *n)
{
    if (!n || n->kind != YAMLTREE_SCALAR || n->quoted)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const struct yamltree_pair *yamltree_map_find(const struct yamltree_node *map, const char *key)
{
    if (!map || map->kind != YAMLTREE_MAP)
        return NULL;
    for (size_t i = 0; i < map->npairs; i++) {
        const struct yamltree_node *k = map->pairs[i].key;
        if (k->kind == YAMLTREE_SCALAR && strcmp(k->str, key) == 0)
            return &map->pairs[i];
    }
    return NULL;
}

const char *yamltree_kind_name(enum yamltree_kind k)
{
    switch (k) {
    case YAMLTREE_SEQ:
        return "a list";
    case YAMLTREE_MAP:
        return "a mapping";
    default:
        return "a scalar";
    }
}

/* Builds the key path of frames[0..nframes) into bd->path. */
static const char *yt_path(struct yt_builder *bd, size_t nframes)
{
    cfg_path_pop(&bd->path, 0);
    for (size_t i = 0; i < nframes; i++) {
        const struct yt_frame *f = &bd->frames[i];
        if (f->node->kind == YAMLTREE_SEQ && f->node->nitems)
            cfg_path_push_index(&bd->path, f->node->nitems - 1);
        else if (f->node->kind == YAMLTREE_MAP && f->cur_key && f->cur_key->kind == YAMLTREE_SCALAR)
            cfg_path_push_key(&bd->path, f->cur_key->str, f->cur_key->len);
    }
    return cfg_path_str(&bd->path);
}

/* Hangs a new node under the innermost open container (or makes it the
 * root).  After this the tree (or a frame's pending key) owns n. */
static void yt_attach(struct yt_builder *bd, struct yamltree_node *n)
{
    if (bd->depth == 0) {
        if (!bd->root)
            bd->root = n;
        else
            yamltree_free(n); /* cannot happen within one document */
        return;
    }
    struct yt_frame *f = &bd->frames[bd->depth - 1];
    struct yamltree_node *c = f->node;
    if (c->kind == YAMLTREE_SEQ) {
        c->items = xrealloc(c->items, (c->nitems + 1) * sizeof *c->items);
        c->items[c->nitems++] = n;
    } else if (f->expect_key) {
        f->pending = n;
        f->cur_key = n;
        f->expect_key = false;
    } else {
        c->pairs = xrealloc(c->pairs, (c->npairs + 1) * sizeof *c->pairs);
        c->pairs[c->npairs].key = f->pending;
        c->pairs[c->npairs].value = n;
        c->npairs++;
        f->pending = NULL;
        f->expect_key = true;
    }
}

/* True when n is about to become a mapping key (call before yt_attach). */
static bool yt_next_is_key(const struct yt_builder *bd)
{
    if (bd->depth == 0)
        return false;
    const struct yt_frame *f = &bd->frames[bd->depth - 1];
    return f->node->kind == YAMLTREE_MAP && f->expect_key;
}

/* The key of the innermost mapping entry under construction is rejected. */
static bool yt_pending_key_bad(const struct yt_builder *bd)
{
    if (bd->depth == 0)
        return false;
    const struct yt_frame *f = &bd->frames[bd->depth - 1];
    return f->node->kind == YAMLTREE_MAP && !f->expect_key && f->pending && f->pending->dropped;
}

/* Reports what this loader refuses on a node start: anchors and tags. */
static void yt_check_props(struct yt_builder *bd, const yaml_char_t *anchor, const yaml_char_t *tag,
                           int line)
{
    if (anchor)
        cfg_diag_add(bd->diag, bd->src, line, yt_path(bd, bd->depth),
                     "YAML anchors (&name) are not supported; repeat the values instead");
    if (tag)
        cfg_diag_add(bd->diag, bd->src, line, yt_path(bd, bd->depth),
                     "YAML tags (!tag) are not supported");
}

static void yt_on_scalar(struct yt_builder *bd, const yaml_event_t *ev)
{
    bool is_key = yt_next_is_key(bd);
    struct yamltree_node *n = yt_node_new(YAMLTREE_SCALAR, &ev->start_mark);
    n->str = xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
    n->len = ev->data.scalar.length;
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    yt_attach(bd, n);
    yt_check_props(bd, ev->data.scalar.anchor, ev->data.scalar.tag, n->line);
    if (memchr(n->str, '\0', n->len)) {
        n->len = strlen(n->str);
        cfg_diag_add(bd->diag, bd->src, n->line, yt_path(bd, bd->depth),
                     "NUL characters are not allowed");
        n->dropped = true;
    } else if (is_key && !n->quoted && strcmp(n->str, "<<") == 0) {
        cfg_diag_add(bd->diag, bd->src, n->line, yt_path(bd, bd->depth - 1),
                     "YAML merge keys (<<) are not supported; repeat the values instead");
        n->dropped = true;
    }
}

static void yt_on_alias(struct yt_builder *bd, const yaml_event_t *ev)
{
    struct yamltree_node *n = yt_node_new(YAMLTREE_SCALAR, &ev->start_mark);
    n->str = xstrdup("");
    bool quiet = yt_pending_key_bad(bd); /* "<<: *x" was already reported */
    yt_attach(bd, n);
    n->dropped = true;
    if (!quiet)
        cfg_diag_add(bd->diag, bd->src, n->line, yt_path(bd, bd->depth),
                     "YAML aliases (*name) are not supported; repeat the values instead");
}

/* Opens a mapping or sequence.  Returns CDC_EINVAL when nested too deep. */
static int yt_on_start(struct yt_builder *bd, const yaml_event_t *ev, enum yamltree_kind kind)
{
    bool is_key = yt_next_is_key(bd);
    struct yamltree_node *n = yt_node_new(kind, &ev->start_mark);
    yt_attach(bd, n);
    if (kind == YAMLTREE_MAP)
        yt_check_props(bd, ev->data.mapping_start.anchor, ev->data.mapping_start.tag, n->line);
    else
        yt_check_props(bd, ev->data.sequence_start.anchor, ev->data.sequence_start.tag, n->line);
    if (is_key) {
        cfg_diag_add(bd->diag, bd->src, n->line, yt_path(bd, bd->depth - 1),
                     "mapping keys must be plain values, not %s", yamltree_kind_name(kind));
        n->dropped = true;
    }
    if (bd->depth == YAMLTREE_MAX_DEPTH) {
        cfg_diag_add(bd->diag, bd->src, n->line, yt_path(bd, bd->depth),
                     "nesting is deeper than %d levels", YAMLTREE_MAX_DEPTH);
        return CDC_EINVAL;
    }
    struct yt_frame *f = &bd->frames[bd->depth++];
    f->node = n;
    f->pending = NULL;
    f->cur_key = NULL;
    f->expect_key = true;
    return 0;
}

static int yt_pair_cmp(const void *a, const void *b)
{
    const struct yamltree_pair *x = *(const struct yamltree_pair *const *)a;
    const struct yamltree_pair *y = *(const struct yamltree_pair *const *)b;
    size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
    int c = memcmp(x->key->str, y->key->str, n);
    if (c)
        return c;
    if (x->key->len != y->key->len)
        return x->key->len < y->key->len ? -1 : 1;
    return x < y ? -1 : x > y; /* file order among equal keys */
}

/* Reports repeated keys of the innermost mapping (each naming the first
 * occurrence) and marks the repeats for removal. */
static void yt_check_dups(struct yt_builder *bd, struct yamltree_node *map)
{
    size_t n = 0;
    struct yamltree_pair **v = xmalloc(map->npairs * sizeof *v);
    for (size_t i = 0; i < map->npairs; i++)
        if (map->pairs[i].key->kind == YAMLTREE_SCALAR && !map->pairs[i].key->dropped)
            v[n++] = &map->pairs[i];
    if (n > 1)
        qsort(v, n, sizeof *v, yt_pair_cmp);
    const char *base = NULL;
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        const struct yamltree_node *k0 = v[first]->key, *k = v[i]->key;
        if (k0->len != k->len || memcmp(k0->str, k->str, k->len) != 0) {
            first = i;
            continue;
        }
        if (!base)
            base = yt_path(bd, bd->depth - 1);
        size_t mark = cfg_path_push_key(&bd->path, k->str, k->len);
        cfg_diag_add(bd->diag, bd->src, k->line, cfg_path_str(&bd->path),
                     "duplicate key (first defined at line %d)", k0->line);
        cfg_path_pop(&bd->path, mark);
        v[i]->key->dropped = true;
    }
    free(v);
}

/* Closes the innermost container: drops rejected entries, and for a mapping
 * reports duplicate keys first. */
static void yt_on_end(struct yt_builder *bd)
{
    struct yt_frame *f = &bd->frames[bd->depth - 1];
    struct yamltree_node *c = f->node;
    if (c->kind == YAMLTREE_MAP) {
        yt_check_dups(bd, c);
        size_t j = 0;
        for (size_t i = 0; i < c->npairs; i++) {
            struct yamltree_pair *p = &c->pairs[i];
            if (p->key->kind != YAMLTREE_SCALAR || p->key->dropped || p->value->dropped) {
                yamltree_free(p->key);
                yamltree_free(p->value);
            } else {
                c->pairs[j++] = *p;
            }
        }
        c->npairs = j;
    } else {
        size_t j = 0;
        for (size_t i = 0; i < c->nitems; i++) {
            if (c->items[i]->dropped)
                yamltree_free(c->items[i]);
            else
                c->items[j++] = c->items[i];
        }
        c->nitems = j;
    }
    yamltree_free(f->pending); /* only after a parse problem */
    f->pending = NULL;
    bd->depth--;
}

/* Turns libyaml's error into "file:line:col: YAML syntax error: ...". */
static void yt_syntax_error(struct yt_builder *bd, const yaml_parser_t *parser, const char *text,
                            size_t len)
{
    int line, col;
    if (parser->error == YAML_READER_ERROR) {
        size_t off = parser->problem_offset < len ? parser->problem_offset : len;
        line = 1;
        size_t bol = 0;
        for (size_t i = 0; i < off; i++)
            if (text[i] == '\n') {
                line++;
                bol = i + 1;
            }
        col = (int)(off - bol) + 1;
    } else {
        line = (int)parser->problem_mark.line + 1;
        col = (int)parser->problem_mark.column + 1;
    }
    const char *problem = parser->problem;
    if (parser->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    cfg_diag_syntax(bd->diag, bd->src, line, col, problem);
}

int yamltree_parse(struct yamltree_node **out, const char *text, size_t len,
                   const struct cfg_src *src, struct cfg_diag *diag)
{
    struct yt_builder bd = {.src = src, .diag = diag};
    cfg_path_init(&bd.path);
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = CDC_EINVAL, ndocs = 0;
    bool done = false;

    *out = NULL;
    if (!yaml_parser_initialize(&parser)) {
        cfg_diag_add(diag, src, 0, NULL, "cannot initialize the YAML parser");
        cfg_path_fini(&bd.path);
        return CDC_EINVAL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            yt_syntax_error(&bd, &parser, text, len);
            goto out;
        }
        int erc = 0;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (ndocs++ > 0) {
                cfg_diag_add(diag, src, (int)ev.start_mark.line + 1, NULL,
                             "multiple YAML documents in one file are not supported");
                erc = CDC_EINVAL;
            }
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_ALIAS_EVENT:
            yt_on_alias(&bd, &ev);
            break;
        case YAML_SCALAR_EVENT:
            yt_on_scalar(&bd, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            erc = yt_on_start(&bd, &ev, YAMLTREE_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            erc = yt_on_start(&bd, &ev, YAMLTREE_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (bd.depth)
                yt_on_end(&bd);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (erc)
            goto out;
    }

    if (!bd.root || yamltree_is_null(bd.root) || bd.root->dropped) {
        cfg_diag_add(diag, src, 1, NULL, "empty document");
        goto out;
    }
    *out = bd.root;
    bd.root = NULL;
    rc = 0;
out:
    while (bd.depth) {
        yamltree_free(bd.frames[bd.depth - 1].pending);
        bd.depth--;
    }
    yamltree_free(bd.root);
    cfg_path_fini(&bd.path);
    yaml_parser_delete(&parser);
    return rc;
}
