/* The schema history; see schema_hist.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_diff.h"
#include "schema/schema_hist.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strmap.h"

/* Tables observed lately per table, held so their addresses are not reused
 * by a different shape while the history remembers them. */
#define SEEN_MAX 4

/* One table's versions, oldest first, as the store has them. */
struct tabhist {
    struct schema_version *v;
    size_t n, cap;
    struct cdc_table *seen[SEEN_MAX]; /* owned references */
    unsigned seen_next;
};

struct schemahist {
    pthread_mutex_t mu;
    struct store *store; /* borrowed */
    bool stop_on_incompatible;
    struct strmap *tables; /* "schema\x1fname" -> struct tabhist */
};

static void tabhist_free(void *p)
{
    struct tabhist *th = p;
    for (size_t i = 0; i < th->n; i++)
        schema_version_fini(&th->v[i]);
    for (unsigned i = 0; i < SEEN_MAX; i++)
        cdc_table_unref(th->seen[i]);
    free(th->v);
    free(th);
}

struct schemahist *schemahist_new(struct store *store, bool stop_on_incompatible)
{
    struct schemahist *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    h->store = store;
    h->stop_on_incompatible = stop_on_incompatible;
    h->tables = strmap_new();
    return h;
}

void schemahist_free(struct schemahist *h)
{
    if (!h)
        return;
    strmap_free(h->tables, tabhist_free);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static struct schema_version *tabhist_push(struct tabhist *th)
{
    if (th->n == th->cap) {
        th->cap = th->cap ? th->cap * 2 : 4;
        th->v = xrealloc(th->v, th->cap * sizeof *th->v);
    }
    struct schema_version *v = &th->v[th->n++];
    memset(v, 0, sizeof *v);
    return v;
}

static int load_one(const struct schema_version *v, void *arg)
{
    struct schema_version *copy = tabhist_push(arg);
    *copy = *v;
    copy->changes = xstrdup(v->changes ? v->changes : "[]");
    copy->summary = xstrdup(v->summary ? v->summary : "");
    cdc_table_ref(v->shape);
    return 0;
}

/* The table's history, read from the store the first time it is asked for. */
static int tabhist_get(struct schemahist *h, const struct cdc_table *tab, struct tabhist **out,
                       char *err, size_t errlen)
{
    struct buf key = BUF_INIT;
    buf_printf(&key, "%s\x1f%s", tab->schema, tab->name);
    struct tabhist *th = strmap_get(h->tables, key.p);
    int rc = 0;
    if (!th) {
        th = xcalloc(1, sizeof *th);
        rc = store_schema_list(h->store, tab->schema, tab->name, load_one, th, err, errlen);
        if (rc)
            tabhist_free(th);
        else
            strmap_put(h->tables, key.p, th);
    }
    buf_fini(&key);
    *out = rc ? NULL : th;
    return rc;
}

static bool seen(const struct tabhist *th, const struct cdc_table *tab)
{
    for (unsigned i = 0; i < SEEN_MAX; i++)
        if (th->seen[i] == tab)
            return true;
    return false;
}

static void remember(struct tabhist *th, struct cdc_table *tab)
{
    cdc_table_ref(tab);
    cdc_table_unref(th->seen[th->seen_next]);
    th->seen[th->seen_next] = tab;
    th->seen_next = (th->seen_next + 1) % SEEN_MAX;
}

/* Whether v took effect at or before pos.  Positions of different streams
 * are not ordered: a version of another stream counts as in effect. */
static bool in_effect_at(const struct schema_version *v, struct cdc_pos pos)
{
    return v->pos.stream != pos.stream || cdc_pos_cmp(v->pos, pos) <= 0;
}

/* The version tab's shape already is at pos, or NULL: the version in
 * effect there, or (a replay reaching a change it recorded) a later one of
 * the same shape. */
static struct schema_version *known_version(struct tabhist *th, const struct cdc_table *tab,
                                            struct cdc_pos pos, struct schema_version **effect)
{
    *effect = NULL;
    for (size_t i = th->n; i-- > 0;)
        if (in_effect_at(&th->v[i], pos)) {
            *effect = &th->v[i];
            break;
        }
    if (*effect && schema_same_shape((*effect)->shape, tab))
        return *effect;
    for (size_t i = 0; i < th->n; i++)
        if (!in_effect_at(&th->v[i], pos) && schema_same_shape(th->v[i].shape, tab))
            return &th->v[i];
    return NULL;
}

/* A copy of what a version keeps of tab. */
static struct cdc_table *shape_copy(const struct cdc_table *tab, uint32_t version)
{
    struct cdc_table *s = cdc_table_new(tab->id, tab->schema, tab->name, NULL, tab->ncols);
    for (uint16_t i = 0; i < tab->ncols; i++) {
        const struct cdc_column *c = &tab->cols[i];
        struct cdc_column *d = &s->cols[i];
        d->name = xstrdup(c->name);
        d->type_name = xstrdup(c->type_name ? c->type_name : "text");
        d->type = c->type;
        d->type_oid = c->type_oid;
        d->typmod = c->typmod;
        d->key = c->key;
        d->attnum = c->attnum;
        d->not_null = c->not_null;
        d->has_default = c->has_default;
    }
    cdc_table_finish(s);
    s->key_unique = tab->key_unique;
    s->replident = tab->replident;
    s->version = version;
    return s;
}

/* The operator's answer to a held version: refuse it again, or (the setting
 * is off now) let it through. */
static int held_again(struct schemahist *h, const struct cdc_table *tab, struct schema_version *v,
                      char *err, size_t errlen)
{
    if (h->stop_on_incompatible)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "schema: table %s.%s: version %u is an incompatible change (%s) and "
                        "stop_on_incompatible_schema is true; nothing of it was delivered. "
                        "`cdc schema` lists it; set stop_on_incompatible_schema: false to let it "
                        "through",
                        tab->schema, tab->name, v->version, v->summary);
    int rc = store_schema_release(h->store, tab->schema, tab->name, v->version, err, errlen);
    if (rc)
        return rc;
    v->held = false;
    log_warn("schema.version_accepted", "table=%s.%s version=%u", tab->schema, tab->name,
             v->version);
    return 0;
}

/* Records tab's shape as a new version after effect (NULL: the first). */
static int record(struct schemahist *h, struct tabhist *th, struct cdc_table *tab,
                  struct cdc_pos pos, const struct schema_version *effect, char *err, size_t errlen)
{
    uint32_t number = th->n ? th->v[th->n - 1].version + 1 : 1;
    uint32_t old_version = effect ? effect->version : 0; /* effect moves with th->v */
    struct schema_change *ch = NULL;
    size_t nch = 0;
    int compatible = -1;
    if (effect)
        compatible = schema_diff(effect->shape, tab, &ch, &nch);
    struct buf json = BUF_INIT, text = BUF_INIT;
    schema_changes_json(&json, ch, nch);
    schema_changes_text(&text, ch, nch);
    struct schema_version v = {
        .version = number,
        .pos = pos,
        .compatible = compatible,
        .held = compatible == 0 && h->stop_on_incompatible,
        .recorded_us = clock_wall_us(),
        .changes = json.p,
        .summary = xstrdup(text.p ? text.p : ""),
        .shape = shape_copy(tab, number),
    };
    int rc = store_schema_add(h->store, &v, err, errlen);
    char where[CDC_POS_TEXT_MAX];
    cdc_pos_format(pos, where, sizeof where);
    if (rc) {
        schema_version_fini(&v);
    } else {
        *tabhist_push(th) = v;
        if (!effect)
            log_info("schema.version_recorded", "table=%s.%s version=%u columns=%u position=%s",
                     tab->schema, tab->name, number, tab->ncols, where);
        else
            log_emit(compatible ? LOG_INFO : LOG_WARN, "schema.version_changed",
                     "table=%s.%s old_version=%u new_version=%u compatible=%s position=%s "
                     "changes=%s",
                     tab->schema, tab->name, old_version, number, compatible ? "true" : "false",
                     where, log_q(text.p ? text.p : ""));
        if (v.held) {
            log_error("schema.incompatible_change_detected",
                      "table=%s.%s version=%u changes=%s action=stop", tab->schema, tab->name,
                      number, log_q(text.p));
            rc = cdc_fail(err, errlen, CDC_EINVAL,
                          "schema: table %s.%s changed incompatibly at %s (version %u -> %u): "
                          "%s; stop_on_incompatible_schema is true, so the pipeline stops "
                          "before delivering any change of version %u. Set "
                          "stop_on_incompatible_schema: false to let it through",
                          tab->schema, tab->name, where, old_version, number, text.p, number);
        }
    }
    buf_fini(&text);
    free(ch);
    if (rc == 0)
        tab->version = number;
    return rc;
}

int schemahist_observe(struct schemahist *h, struct cdc_table *tab, struct cdc_pos pos, char *err,
                       size_t errlen)
{
    pthread_mutex_lock(&h->mu);
    struct tabhist *th;
    int rc = tabhist_get(h, tab, &th, err, errlen);
    if (rc || seen(th, tab))
        goto out;
    struct schema_version *effect;
    struct schema_version *v = known_version(th, tab, pos, &effect);
    if (v) {
        if (v->held && (rc = held_again(h, tab, v, err, errlen)) != 0)
            goto out;
        /* Written only when it changes: a table observed before may be in
         * the pipeline already, read by sink threads. */
        if (tab->version != v->version)
            tab->version = v->version;
    } else if ((rc = record(h, th, tab, pos, effect ? effect : (th->n ? &th->v[th->n - 1] : NULL),
                            err, errlen)) != 0) {
        goto out;
    }
    remember(th, tab);
out:
    pthread_mutex_unlock(&h->mu);
    return rc;
}
