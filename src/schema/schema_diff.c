/* Comparing two shapes of one table; see schema_diff.h. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "schema/schema_diff.h"
#include "util/mem.h"
#include "util/str.h"

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

/* ---- type names ---------------------------------------------------------- */

enum family { F_OTHER, F_EXACT, F_FLOAT, F_CHAR, F_BINARY };

#define UNBOUNDED INT64_MAX

/* What a type name says about the values it holds. */
struct tinfo {
    enum family family;
    /* F_EXACT: an integer of `bits` (unsigned or not), or a numeric with
     * precision and scale (unbounded: any) */
    int bits;
    bool is_unsigned;
    bool numeric;
    bool unbounded;
    int64_t prec, scale;
    int rank;    /* F_FLOAT: 1 single, 2 double */
    int64_t len; /* F_CHAR, F_BINARY: longest value (UNBOUNDED: any) */
};

/* The name's base (lowercase, before '('), its arguments and whether it
 * says "unsigned". */
static void split_type(const char *t, char *base, size_t cap, int64_t *a1, int64_t *a2, int *nargs,
                       bool *is_unsigned)
{
    size_t n = 0;
    *nargs = 0;
    *a1 = *a2 = 0;
    const char *p = t;
    for (; *p && *p != '(' && n + 1 < cap; p++)
        base[n++] = (char)tolower((unsigned char)*p);
    while (n > 0 && base[n - 1] == ' ')
        n--;
    base[n] = '\0';
    if (*p == '(') {
        char *end;
        *a1 = strtoll(p + 1, &end, 10);
        *nargs = end > p + 1;
        if (*nargs && *end == ',') {
            *a2 = strtoll(end + 1, &end, 10);
            *nargs = 2;
        }
        p = strchr(p, ')');
        p = p ? p + 1 : "";
    }
    *is_unsigned = strstr(p, "unsigned") != NULL || strstr(base, " unsigned") != NULL;
    char *u = strstr(base, " unsigned");
    if (u)
        *u = '\0';
}

static bool is_one_of(const char *s, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(s, *names) == 0)
            return true;
    return false;
}

static struct tinfo type_info(const char *t)
{
    static const char *const int_names[][3] = {{"tinyint", NULL},
                                               {"smallint", "int2", NULL},
                                               {"mediumint", NULL},
                                               {"integer", "int", "int4"},
                                               {"bigint", "int8", NULL}};
    static const int int_bits[] = {8, 16, 24, 32, 64};
    static const char *const float4[] = {"real", "float4", "float", NULL};
    static const char *const float8[] = {"double precision", "float8", "double", NULL};
    static const char *const fixed[] = {"character", "char", "bpchar", "nchar", NULL};
    static const char *const varying[] = {"character varying", "varchar", "nvarchar", NULL};
    static const char *const any_text[] = {"text", "mediumtext", "longtext", NULL};
    static const char *const any_bytes[] = {"bytea", "blob", "mediumblob", "longblob", NULL};
    struct tinfo ti = {.family = F_OTHER};
    char base[64];
    int64_t a1, a2;
    int nargs;
    bool uns;
    split_type(t, base, sizeof base, &a1, &a2, &nargs, &uns);
    for (size_t i = 0; i < sizeof int_bits / sizeof *int_bits; i++)
        for (size_t j = 0; j < 3 && int_names[i][j]; j++)
            if (strcmp(base, int_names[i][j]) == 0) {
                ti.family = F_EXACT;
                ti.bits = int_bits[i];
                ti.is_unsigned = uns;
                return ti;
            }
    if (strcmp(base, "numeric") == 0 || strcmp(base, "decimal") == 0) {
        ti.family = F_EXACT;
        ti.numeric = true;
        /* PostgreSQL's numeric without a precision holds any number; a
         * decimal without one is MySQL's decimal(10,0). */
        ti.unbounded = nargs == 0 && base[0] == 'n';
        ti.prec = nargs ? a1 : 10;
        ti.scale = nargs == 2 ? a2 : 0;
    } else if (is_one_of(base, float4) || is_one_of(base, float8)) {
        ti.family = F_FLOAT;
        ti.rank = is_one_of(base, float4) ? 1 : 2;
    } else if (is_one_of(base, fixed)) {
        ti.family = F_CHAR;
        ti.len = nargs ? a1 : 1;
    } else if (is_one_of(base, varying)) {
        ti.family = F_CHAR;
        ti.len = nargs ? a1 : UNBOUNDED;
    } else if (is_one_of(base, any_text)) {
        ti.family = F_CHAR;
        ti.len = UNBOUNDED;
    } else if (strcmp(base, "tinytext") == 0) {
        ti.family = F_CHAR;
        ti.len = 255;
    } else if (is_one_of(base, any_bytes)) {
        ti.family = F_BINARY;
        ti.len = UNBOUNDED;
    } else if (strcmp(base, "tinyblob") == 0) {
        ti.family = F_BINARY;
        ti.len = 255;
    } else if (strcmp(base, "binary") == 0 || strcmp(base, "varbinary") == 0) {
        ti.family = F_BINARY;
        ti.len = nargs ? a1 : 1;
    }
    return ti;
}

/* Decimal digits the largest value of an integer type has. */
static int64_t int_digits(int bits, bool is_unsigned)
{
    switch (bits) {
    case 8:
        return 3;
    case 16:
        return 5;
    case 24:
        return 8;
    case 32:
        return 10;
    default:
        return is_unsigned ? 20 : 19;
    }
}

/* Whether every value of o fits in n (both F_EXACT). */
static bool exact_fits(const struct tinfo *o, const struct tinfo *n)
{
    if (!o->numeric && !n->numeric) {
        if (o->is_unsigned)
            return n->is_unsigned ? n->bits >= o->bits : n->bits > o->bits;
        return !n->is_unsigned && n->bits >= o->bits;
    }
    if (!n->numeric)
        return false; /* a numeric into an integer: fractions or range lost */
    if (n->unbounded)
        return true;
    if (!o->numeric)
        return n->prec - n->scale >= int_digits(o->bits, o->is_unsigned);
    if (o->unbounded)
        return false;
    return n->scale >= o->scale && n->prec - n->scale >= o->prec - o->scale;
}

int schema_type_cmp(const char *old_type, const char *new_type)
{
    if (strcmp(old_type, new_type) == 0)
        return 0;
    struct tinfo o = type_info(old_type), n = type_info(new_type);
    if (o.family == F_OTHER || o.family != n.family)
        return 2;
    bool fits;
    switch (o.family) {
    case F_EXACT:
        fits = exact_fits(&o, &n);
        break;
    case F_FLOAT:
        fits = n.rank >= o.rank;
        break;
    default:
        fits = n.len >= o.len;
        break;
    }
    return fits ? 1 : -1;
}

/* ---- shapes -------------------------------------------------------------- */

static const char *type_of(const struct cdc_column *c)
{
    return c->type_name ? c->type_name : "text";
}

bool schema_same_shape(const struct cdc_table *a, const struct cdc_table *b)
{
    if (a->ncols != b->ncols || a->key_unique != b->key_unique)
        return false;
    for (uint16_t i = 0; i < a->ncols; i++) {
        const struct cdc_column *x = &a->cols[i], *y = &b->cols[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(type_of(x), type_of(y)) != 0 ||
            x->key != y->key)
            return false;
    }
    return true;
}

const char *schema_change_kind_name(enum schema_change_kind kind)
{
    switch (kind) {
    case SCHEMA_ADDED:
        return "added";
    case SCHEMA_DROPPED:
        return "dropped";
    case SCHEMA_RENAMED:
        return "renamed";
    case SCHEMA_WIDENED:
        return "widened";
    case SCHEMA_NARROWED:
        return "narrowed";
    case SCHEMA_RETYPED:
        return "retyped";
    case SCHEMA_KEY_CHANGED:
        return "key_changed";
    }
    return "changed";
}

static int find_col(const struct cdc_table *tab, const char *name)
{
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (strcmp(tab->cols[i].name, name) == 0)
            return i;
    return -1;
}

struct changes {
    struct schema_change *v;
    size_t n, cap;
};

static void add_change(struct changes *cs, enum schema_change_kind kind, bool compatible,
                       const char *column, const char *old_val, const char *new_val)
{
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 8;
        cs->v = xrealloc(cs->v, cs->cap * sizeof *cs->v);
    }
    struct schema_change *c = &cs->v[cs->n++];
    c->kind = kind;
    c->compatible = compatible;
    str_copy(c->column, sizeof c->column, column);
    str_copy(c->old_val, sizeof c->old_val, old_val);
    str_copy(c->new_val, sizeof c->new_val, new_val);
}

static void type_change(struct changes *cs, const char *column, const char *old_type,
                        const char *new_type)
{
    int cmp = schema_type_cmp(old_type, new_type);
    if (cmp == 1)
        add_change(cs, SCHEMA_WIDENED, true, column, old_type, new_type);
    else if (cmp == -1)
        add_change(cs, SCHEMA_NARROWED, false, column, old_type, new_type);
    else if (cmp == 2)
        add_change(cs, SCHEMA_RETYPED, false, column, old_type, new_type);
}

/* The old column a new column not found by name was renamed from, or -1:
 * the same attnum when both shapes know theirs, else the same place in
 * shapes of as many columns. */
static int renamed_from(const struct cdc_table *o, const struct cdc_table *n, int j,
                        const int *new_of_old)
{
    const struct cdc_column *nc = &n->cols[j];
    for (uint16_t i = 0; i < o->ncols; i++) {
        if (new_of_old[i] >= 0)
            continue;
        const struct cdc_column *oc = &o->cols[i];
        if (oc->attnum && nc->attnum) {
            if (oc->attnum == nc->attnum)
                return i;
        } else if (o->ncols == n->ncols && i == j && find_col(n, oc->name) < 0) {
            return i;
        }
    }
    return -1;
}

/* "a, b": the key's column names, in new names. */
static void key_list(char *out, size_t cap, const struct cdc_table *tab)
{
    struct buf b = BUF_INIT;
    for (uint16_t i = 0; i < tab->ncols; i++)
        if (tab->cols[i].key) {
            if (b.len)
                PUT_LIT(&b, ", ");
            buf_puts(&b, tab->cols[i].name);
        }
    str_copy(out, cap, b.len ? b.p : "");
    buf_fini(&b);
}

bool schema_diff(const struct cdc_table *o, const struct cdc_table *n, struct schema_change **out,
                 size_t *nout)
{
    struct changes cs = {0};
    /* new_of_old[i]: the new column old column i became, or -1 (dropped) */
    int *new_of_old = xcalloc(o->ncols ? o->ncols : 1, sizeof *new_of_old);
    int *old_of_new = xcalloc(n->ncols ? n->ncols : 1, sizeof *old_of_new);
    for (uint16_t i = 0; i < o->ncols; i++)
        new_of_old[i] = find_col(n, o->cols[i].name);
    for (uint16_t j = 0; j < n->ncols; j++)
        old_of_new[j] = find_col(o, n->cols[j].name);
    for (uint16_t j = 0; j < n->ncols; j++) {
        if (old_of_new[j] >= 0)
            continue;
        int i = renamed_from(o, n, j, new_of_old);
        if (i >= 0) {
            new_of_old[i] = j;
            old_of_new[j] = i;
            add_change(&cs, SCHEMA_RENAMED, false, o->cols[i].name, o->cols[i].name,
                       n->cols[j].name);
        }
    }
    for (uint16_t i = 0; i < o->ncols; i++)
        if (new_of_old[i] < 0)
            add_change(&cs, SCHEMA_DROPPED, false, o->cols[i].name, type_of(&o->cols[i]), "");
    for (uint16_t j = 0; j < n->ncols; j++) {
        const struct cdc_column *nc = &n->cols[j];
        if (old_of_new[j] < 0) {
            add_change(&cs, SCHEMA_ADDED, !nc->not_null || nc->has_default, nc->name, "",
                       type_of(nc));
            continue;
        }
        type_change(&cs, nc->name, type_of(&o->cols[old_of_new[j]]), type_of(nc));
    }
    /* The key: compared in new names.  A whole-row identity (no unique
     * key on either side) grows and shrinks with the columns. */
    bool key_changed = o->key_unique != n->key_unique;
    if (o->key_unique || n->key_unique) {
        for (uint16_t j = 0; j < n->ncols && !key_changed; j++) {
            int i = old_of_new[j];
            key_changed = n->cols[j].key != (i >= 0 && o->cols[i].key);
        }
        for (uint16_t i = 0; i < o->ncols && !key_changed; i++)
            key_changed = o->cols[i].key && new_of_old[i] < 0;
    }
    if (key_changed) {
        char ok[SCHEMA_NAME_MAX], nk[SCHEMA_NAME_MAX];
        key_list(ok, sizeof ok, o);
        key_list(nk, sizeof nk, n);
        add_change(&cs, SCHEMA_KEY_CHANGED, false, nk[0] ? nk : ok, ok, nk);
    }
    free(new_of_old);
    free(old_of_new);
    bool compatible = true;
    for (size_t k = 0; k < cs.n; k++)
        compatible &= cs.v[k].compatible;
    *out = cs.v;
    *nout = cs.n;
    return compatible;
}

/* ---- writing them -------------------------------------------------------- */

void schema_changes_json(struct buf *b, const struct schema_change *ch, size_t n)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        const struct schema_change *c = &ch[i];
        if (i)
            buf_putc(b, ',');
        PUT_LIT(b, "{\"column\":");
        json_cstr(b, c->column);
        PUT_LIT(b, ",\"change\":");
        json_cstr(b, schema_change_kind_name(c->kind));
        PUT_LIT(b, ",\"from\":");
        json_cstr(b, c->old_val);
        PUT_LIT(b, ",\"to\":");
        json_cstr(b, c->new_val);
        if (c->compatible)
            PUT_LIT(b, ",\"compatible\":true}");
        else
            PUT_LIT(b, ",\"compatible\":false}");
    }
    buf_putc(b, ']');
}

void schema_changes_text(struct buf *b, const struct schema_change *ch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct schema_change *c = &ch[i];
        if (i)
            PUT_LIT(b, "; ");
        switch (c->kind) {
        case SCHEMA_ADDED:
            buf_printf(b, "column %s added (%s%s)", c->column, c->new_val,
                       c->compatible ? "" : ", NOT NULL without a default");
            break;
        case SCHEMA_DROPPED:
            buf_printf(b, "column %s dropped", c->column);
            break;
        case SCHEMA_RENAMED:
            buf_printf(b, "column %s renamed to %s", c->column, c->new_val);
            break;
        case SCHEMA_KEY_CHANGED:
            buf_printf(b, "key changed from (%s) to (%s)", c->old_val, c->new_val);
            break;
        default:
            buf_printf(b, "column %s %s %s -> %s", c->column, schema_change_kind_name(c->kind),
                       c->old_val, c->new_val);
            break;
        }
    }
}
