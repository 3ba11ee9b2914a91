/* A small YAML document tree built from libyaml's event API: mappings,
 * sequences and scalars, each with the line it starts on.  Only what a
 * configuration file needs: one document, no anchors, aliases, merge keys or
 * tags (each is reported as an error), mapping keys must be scalars and may
 * not repeat. */
#ifndef CDC_CONFIG_YAMLTREE_H
#define CDC_CONFIG_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/cfg_diag.h"

enum yamltree_kind { YAMLTREE_SCALAR, YAMLTREE_SEQ, YAMLTREE_MAP };

struct yamltree_pair {
    struct yamltree_node *key; /* always a scalar */
    struct yamltree_node *value;
};

struct yamltree_node {
    enum yamltree_kind kind;
    int line; /* 1-based */
    int col;  /* 1-based */
    /* scalar */
    char *str; /* owned, NUL-terminated; never contains a NUL itself */
    size_t len;
    bool quoted; /* written quoted or as a block literal, so never null */
    /* sequence */
    struct yamltree_node **items; /* owned */
    size_t nitems;
    /* mapping, in file order */
    struct yamltree_pair *pairs; /* owned */
    size_t npairs;
    bool dropped; /* internal to the parser: removed when its container ends */
};

/* Parses text[0..len) (a file named src->name) into *out.  Problems go to
 * diag.  Returns 0 with a tree (or *out NULL for a stream without a document,
 * reported as "empty document") when the text could be read as one YAML
 * document, even if anchors, tags or duplicate keys were reported (those are
 * dropped from the tree); CDC_EINVAL with *out NULL on a syntax error or a
 * second document. */
int yamltree_parse(struct yamltree_node **out, const char *text, size_t len,
                   const struct cfg_src *src, struct cfg_diag *diag);
void yamltree_free(struct yamltree_node *n);

/* A plain scalar that YAML reads as null: empty, "~", "null". */
bool yamltree_is_null(const struct yamltree_node *n);
/* The pair whose key is `key`, or NULL (also when map is not a mapping). */
const struct yamltree_pair *yamltree_map_find(const struct yamltree_node *map, const char *key);
/* "a list", "a mapping" or "a scalar", for messages. */
const char *yamltree_kind_name(enum yamltree_kind k);

#endif
