/* Table-driven decoding of the YAML tree into the typed structs of
 * config.h.  Each struct has one table of cfg_key rows (name, type, offset,
 * flags, default, bounds); the engine applies defaults, converts values,
 * reports unknown, missing and malformed keys, then runs the struct's
 * cross-field hook.  The tables live in cfg_tables.c (pipeline, source,
 * platform), cfg_sinks.c (what every sink has), cfg_kafka.c (the platform's
 * kafka block) and, for a sink type's own block, in the type's folder under
 * src/sink/. */
#ifndef CDC_CONFIG_CFG_SCHEMA_H
#define CDC_CONFIG_CFG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg_diag.h"
#include "config/config.h"
#include "config/yamltree.h"

enum cfg_type {
    CFG_STRING,  /* char *; .names restricts the values, .check validates */
    CFG_INT,     /* int, .imin...imax */
    CFG_INT64,   /* int64_t, .imin...imax */
    CFG_FLOAT,   /* double, .fmin...fmax */
    CFG_BOOL,    /* bool */
    CFG_ENUM,    /* an enum field; .names[value] is the spelling of each value */
    CFG_STRLIST, /* char ** plus a size_t count at .count_off */
    CFG_STRMAP,  /* struct kv * plus a size_t count at .count_off */
    CFG_OBJECT,  /* an embedded struct described by .sub */
    CFG_OBJLIST, /* an array of .sub structs plus a size_t count at .count_off */
    CFG_FOREIGN, /* a key of the other file: rejected with a pointer to it */
    CFG_NOTIMPL, /* a key of the reference cdc does not implement: rejected as such,
                    .item_desc naming what it configures */
};

enum {
    CFG_REQUIRED = 1 << 0, /* missing is an error */
    CFG_SECRET = 1 << 1,   /* never shown in messages */
    CFG_NULLABLE = 1 << 2, /* string: null in the file leaves NULL */
    CFG_NOECHO = 1 << 3,   /* not secret, but do not repeat a bad value either */
    CFG_GT = 1 << 4,       /* float: strictly greater than .fmin */
};

/* Object masks have one bit per key; no table may have more keys. */
#define CFG_MAX_KEYS 64

struct cfg_ctx;
struct cfg_schema;

/* A key of the reference system that cdc accepts: NULL when it acts on it
 * in this config, else why it has no effect (`cdc validate` and `cdc run`
 * warn "accepted, has no effect: KEY (WHY)"). */
typedef const char *cfg_inert_fn(const struct config *cfg);

struct cfg_key {
    const char *name;
    enum cfg_type type;
    unsigned flags;
    size_t off;       /* the field in the struct */
    size_t count_off; /* STRLIST, STRMAP, OBJLIST: the size_t count */
    bool has_locs;    /* STRLIST, STRMAP: fill .loc_off (the key) and .locs_off (each item) */
    size_t loc_off;
    size_t locs_off;
    const char *def_str; /* STRING default (NULL: none) */
    int64_t def_int;     /* INT, INT64, BOOL, ENUM default */
    double def_float;    /* FLOAT default */
    int64_t imin, imax;
    double fmin, fmax;
    const char *const *names; /* ENUM: spelling per value (NULL: not accepted); STRING: choices */
    size_t nnames;
    /* STRING and STRLIST items: NULL when fine, else what was expected
     * ("1 to 63 characters from ..."), shown after "expected ". */
    const char *(*check)(const char *value);
    const char *item_desc; /* STRLIST: "expected a list of <item_desc>" */
    const struct cfg_schema *sub;
    /* Optional: appends what the key accepts when that depends on the load
     * ("one of file|postgres|..." for sink_type), instead of the words its
     * type and bounds give. */
    void (*expect)(const struct cfg_ctx *ctx, struct buf *out);
    /* Optional: whether the key, when present, has no effect (above). */
    cfg_inert_fn *inert;
};

/* Runs after an object's keys are decoded: map is its mapping (NULL when
 * the key had no value), line where it starts, ok has bit i set when key i
 * was present and valid.  The context path names the object. */
typedef void cfg_hook_fn(struct cfg_ctx *ctx, void *obj, const struct yamltree_node *map, int line,
                         uint64_t ok);

struct cfg_schema {
    const struct cfg_key *keys;
    size_t nkeys;
    size_t size;  /* OBJLIST items: sizeof the struct */
    bool has_loc; /* OBJLIST items: store the item's cfg_loc at .loc_off */
    size_t loc_off;
    void (*init)(struct cfg_ctx *ctx, void *obj); /* OBJLIST items: after defaults */
    cfg_hook_fn *check;
    const char *role; /* top level: "pipeline" or "platform", for CFG_FOREIGN */
    /* Optional: keys the check hook decodes itself (a sink's block, named
     * after its type): the i-th name, NULL past the last.  They are not
     * unknown keys, and a misspelling is pointed at them like at the
     * table's keys. */
    const char *(*more_keys)(const struct cfg_ctx *ctx, size_t i);
    /* Optional: frees what obj owns beyond the table's fields. */
    void (*fini)(void *obj);
};

/* Keys present that may have no effect, judged once the whole config is
 * loaded (cfg_key.inert). */
struct cfg_seen {
    const struct cfg_key *key;
    const char *file; /* borrowed from struct config */
    int order, line;
    char *path; /* owned */
};
struct cfg_seen_list {
    struct cfg_seen *v;
    size_t n, cap;
};

/* State of one file's decoding. */
struct cfg_ctx {
    struct cfg_diag *diag;     /* borrowed */
    const struct cfg_src *src; /* borrowed */
    const char *loc_file;      /* borrowed from cfg: the file name for struct cfg_loc */
    struct config *cfg;        /* borrowed: the config being built */
    struct cfg_path path;      /* owned: names the value being looked at */
    /* The sink types a sink_type may name (borrowed: the registry's, or a
     * test's). */
    const struct sink_type *const *sink_types;
    size_t nsink_types;
    struct cfg_seen_list *seen; /* borrowed: present keys with an inert hook; NULL = ignore */
    /* CONFIG_SECRETS_OPTIONAL: a secret whose ${VAR} is unset is left empty
     * and noted here ("FILE:LINE: KEY: environment variable V is not set")
     * instead of failing the load.  NULL = strict. */
    struct cfg_diag *unset_secrets;
};

/* Parts one mapping may be split into (cfg_schema_decode_parts). */
#define CFG_MAX_PARTS 4

/* One table's share of a mapping whose keys belong to several tables, each
 * filling its own object: a sink's block holds the sink type's own keys and
 * the keys every sink has. */
struct cfg_part {
    const struct cfg_schema *s;
    void *obj;   /* holds defaults */
    uint64_t ok; /* out: the mask of s's keys present and valid */
};

extern const struct cfg_schema cfg_pipeline_schema; /* struct config */
extern const struct cfg_schema cfg_platform_schema; /* struct platform_cfg */
extern const struct cfg_schema cfg_kafka_schema;    /* struct kafka_cfg (cfg_kafka.c) */
extern const struct cfg_schema cfg_retry_schema;    /* struct retry_cfg */
extern const struct cfg_schema cfg_sink_schema;     /* struct sink_cfg (cfg_sinks.c) */

/* Value checks shared by the tables (cfg_key.check): NULL when v is fine,
 * else what was expected. */
const char *cfg_check_id(const char *v);    /* letters, digits, "_", "." or "-" */
const char *cfg_check_url(const char *v);   /* an http:// or https:// URL */
const char *cfg_check_table(const char *v); /* "schema.table" */
/* libpq's sslmode values. */
extern const char *const cfg_sslmode_names[6];

/* Sets every field of obj (zeroed memory) to its default. */
void cfg_schema_defaults(const struct cfg_schema *s, void *obj);
/* Decodes the mapping `map` (or NULL: no keys) into obj, which holds
 * defaults; `line` is where missing keys are reported.  Returns the mask of
 * keys present and valid. */
uint64_t cfg_schema_decode(struct cfg_ctx *ctx, const struct cfg_schema *s, void *obj,
                           const struct yamltree_node *map, int line);
/* The same for a mapping whose keys belong to parts[0..n): each key is
 * looked up in the parts in order; a key none has is unknown.  Required
 * keys are reported and check hooks run part by part. */
void cfg_schema_decode_parts(struct cfg_ctx *ctx, struct cfg_part *parts, size_t n,
                             const struct yamltree_node *map, int line);
/* Frees what obj owns per the table (not obj itself); half-built is fine. */
void cfg_schema_free(const struct cfg_schema *s, void *obj);
/* Whether key `name` has its bit in ok. */
bool cfg_schema_ok(const struct cfg_schema *s, uint64_t ok, const char *name);

/* Reports "FILE:LINE: PATH: MESSAGE" with the context's current path. */
void cfg_error(struct cfg_ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with ".key" appended to the path for this one message. */
void cfg_error_key(struct cfg_ctx *ctx, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Line of `key` in map, else `dflt`. */
int cfg_key_line(const struct yamltree_node *map, const char *key, int dflt);

/* Optimal-string-alignment edit distance, capped: returns cap + 1 when the
 * distance is larger (or either string is long). */
size_t cfg_edit_distance(const char *a, const char *b, size_t cap);

#endif
