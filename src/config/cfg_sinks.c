/* What every sink has: sink_id, sink_type, enabled, ordering, retry, and
 * the block named after its type.  The block holds the type's own keys,
 * decoded with the type's schema into sink_cfg.conf, and the common keys
 * (batch_size, flush_interval_seconds) the type takes, decoded into
 * sink_cfg with the type's defaults.
 *
 * The types come from the registry (sink/registry.h), or from the caller of
 * config_load_text_types: nothing here knows a particular sink.  A block is
 * decoded once the whole item is read (sink_check), since sink_type may
 * come after it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_keys.h"
#include "config/cfg_schema.h"
#include "sink/registry.h"
#include "util/buf.h"
#include "util/mem.h"

static const char *const ordering_names[] = {NULL, "key", "transaction"};

/* The common keys, one table each, so that a block gets only those its type
 * takes (sink_type.common_keys).  Their defaults are the type's. */
#define T struct sink_cfg
static const struct cfg_key batch_size_keys[] = {K_INT(T, batch_size, 1, 1, INT32_MAX)};
static const struct cfg_key flush_interval_keys[] = {K_FLT(T, flush_interval_seconds, 0.0, 0)};
#undef T
static const struct cfg_schema batch_size_schema = {KEYS(batch_size_keys)};
static const struct cfg_schema flush_interval_schema = {KEYS(flush_interval_keys)};

static const struct sink_type *type_at(const struct cfg_ctx *ctx, size_t i)
{
    return i < ctx->nsink_types ? ctx->sink_types[i] : NULL;
}

/* The names of the blocks: one per type.  sink_check decodes them. */
static const char *block_name(const struct cfg_ctx *ctx, size_t i)
{
    const struct sink_type *t = type_at(ctx, i);
    return t ? t->name : NULL;
}

/* A new sink starts from the platform's retry policy (decoded first); a
 * retry block in the sink then overrides key by key. */
static void sink_init(struct cfg_ctx *ctx, void *obj)
{
    struct sink_cfg *sk = obj;
    sk->retry = ctx->cfg->platform.retry;
}

/* Frees the type's own config (the table's fields are freed by the table). */
static void sink_fini(void *obj)
{
    struct sink_cfg *sk = obj;
    if (sk->conf && sk->type && sk->type->schema)
        cfg_schema_free(sk->type->schema, sk->conf);
    free(sk->conf);
    sk->conf = NULL;
}

/* Decodes the block of sk's type (p, or NULL when it has none; line is the
 * item's): the type's own keys into a new sk->conf, the common keys it
 * takes into sk.  A type this build lacks has no schema: its block is left
 * unchecked (using such a sink is refused later, with the reason). */
static void decode_block(struct cfg_ctx *ctx, struct sink_cfg *sk, const struct yamltree_pair *p,
                         int line)
{
    const struct sink_type *t = sk->type;
    sk->batch_size = t->batch_size > 0 ? t->batch_size : 1;
    sk->flush_interval_seconds = t->flush_interval_seconds;
    if (t->schema) {
        sk->conf = xcalloc(1, t->conf_size ? t->conf_size : 1);
        cfg_schema_defaults(t->schema, sk->conf);
    }
    if (t->availability == SINK_NOT_BUILT)
        return;
    const struct yamltree_node *map = p ? p->value : NULL;
    size_t mark = cfg_path_push_key(&ctx->path, t->name, strlen(t->name));
    if (map && !yamltree_is_null(map) && map->kind != YAMLTREE_MAP) {
        cfg_error(ctx, map->line, "expected a mapping");
    } else {
        struct cfg_part parts[3];
        size_t n = 0;
        if (t->schema)
            parts[n++] = (struct cfg_part){t->schema, sk->conf, 0};
        if (t->common_keys & SINK_KEY_BATCH_SIZE)
            parts[n++] = (struct cfg_part){&batch_size_schema, sk, 0};
        if (t->common_keys & SINK_KEY_FLUSH_INTERVAL)
            parts[n++] = (struct cfg_part){&flush_interval_schema, sk, 0};
        cfg_schema_decode_parts(ctx, parts, n, map && map->kind == YAMLTREE_MAP ? map : NULL,
                                p ? p->key->line : line);
    }
    cfg_path_pop(&ctx->path, mark);
}

/* "one of file|postgres|...": the types the loader knows. */
static void expect_sink_type(const struct cfg_ctx *ctx, struct buf *out)
{
    buf_puts(out, "one of ");
    for (size_t i = 0; i < ctx->nsink_types; i++)
        buf_printf(out, "%s%s", i ? "|" : "", ctx->sink_types[i]->name);
}

/* sink_type names a known type; the sink has the block named after it
 * (when the type needs one) and no other type's. */
static void sink_check(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                       uint64_t ok)
{
    struct sink_cfg *sk = obj;
    sk->has_retry = yamltree_map_find(map, "retry") != NULL;
    if (!cfg_schema_ok(&cfg_sink_schema, ok, "sink_type"))
        return;
    const struct sink_type *t = NULL;
    for (size_t i = 0; !t && i < ctx->nsink_types; i++)
        if (strcmp(ctx->sink_types[i]->name, sk->type_name) == 0)
            t = ctx->sink_types[i];
    if (!t) {
        struct buf b = BUF_INIT;
        buf_puts(&b, "expected ");
        expect_sink_type(ctx, &b);
        buf_puts(&b, ", got ");
        cfg_quote(&b, sk->type_name, strlen(sk->type_name));
        cfg_error_key(ctx, cfg_key_line(map, "sink_type", line), "sink_type", "%s", b.p);
        buf_fini(&b);
        return;
    }
    sk->type = t;
    const struct yamltree_pair *own = yamltree_map_find(map, t->name);
    if (!own && t->block_required)
        cfg_error(ctx, line, "sink_type \"%s\" needs a \"%s:\" block", t->name, t->name);
    for (size_t i = 0; i < ctx->nsink_types; i++) {
        const struct sink_type *other = ctx->sink_types[i];
        const struct yamltree_pair *p = yamltree_map_find(map, other->name);
        if (p && other != t)
            cfg_error(ctx, p->key->line, "sink_type \"%s\" must not have a \"%s:\" block", t->name,
                      other->name);
    }
    if (own || !t->block_required)
        decode_block(ctx, sk, own, line);
}

#define T struct sink_cfg
static const struct cfg_key sink_keys[] = {
    K_STR(T, sink_id, NULL, .flags = CFG_REQUIRED, .check = cfg_check_id),
    {.name = "sink_type",
     .type = CFG_STRING,
     .flags = CFG_REQUIRED,
     .off = offsetof(T, type_name),
     .expect = expect_sink_type},
    K_BOOL(T, enabled, 1),
    K_ENUM(T, ordering, ORDER_DEFAULT, ordering_names),
    K_OBJ(T, retry, cfg_retry_schema),
};
#undef T
const struct cfg_schema cfg_sink_schema = {
    KEYS(sink_keys),         .size = sizeof(struct sink_cfg),
    .has_loc = true,         .loc_off = offsetof(struct sink_cfg, loc),
    .init = sink_init,       .check = sink_check,
    .more_keys = block_name, .fini = sink_fini,
};

bool config_ordered_snapshot(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nsinks; i++)
        if (cfg->sinks[i].enabled && cfg->sinks[i].type && cfg->sinks[i].type->ordered_snapshot)
            return true;
    return false;
}
