/* Changes into a table's batch.
 *
 * append: every change is a row: the new image (the old one for deletes)
 * and the change columns _cdc_op, _cdc_ts_ms, _cdc_position, _cdc_topic,
 * _cdc_unchanged (the columns whose value the change did not carry).
 *
 * upsert: the table mirrors the source table by primary key.  A change
 * that replaces or removes a row deletes its key: if the batch itself
 * wrote a row with that key (the newest one alive; for a deferrable key,
 * the one whose whole image matches), a position delete of that row;
 * otherwise, once per key and only if the table has rows, an equality
 * delete of the key, which removes the row from every earlier snapshot.
 * Inserts delete nothing (the source's key is unique), except when
 * replaying dead-lettered changes, and snapshot rows (read again after a
 * restart) replace what the key has.  An update whose new image lacks a
 * value (unchanged TOAST) takes it from the old image when that has it,
 * else is deferred until the commit, which finds the value where the key's
 * previous row is (ice_fill.c).  A TRUNCATE drops the batch and makes the
 * commit remove every file the table has. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/lake_value.h"
#include "sink/iceberg/icesink.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/mem.h"

/* One row as texts by field index of the current schema. */
struct row {
    const char **vals;
    uint32_t *lens;
    uint32_t n;
    bool *unchanged; /* per source column: the change did not carry it */
    bool any_unchanged;
};

/* An empty row in the table's scratch space (valid until the next). */
static void row_init(struct row *r, struct itable *it)
{
    size_t need = (it->nfields > it->shape->ncols ? it->nfields : it->shape->ncols) + 1u;
    if (need > it->s_cap) {
        it->s_cap = need;
        it->s_vals = xrealloc(it->s_vals, need * sizeof *it->s_vals);
        it->s_lens = xrealloc(it->s_lens, need * sizeof *it->s_lens);
        it->s_unchanged = xrealloc(it->s_unchanged, need * sizeof *it->s_unchanged);
    }
    r->n = it->nfields;
    r->vals = it->s_vals;
    r->lens = it->s_lens;
    r->unchanged = it->s_unchanged;
    memset(r->vals, 0, need * sizeof *r->vals);
    memset(r->lens, 0, need * sizeof *r->lens);
    memset(r->unchanged, 0, need * sizeof *r->unchanged);
    r->any_unchanged = false;
}

/* The key scratch: texts and lengths for nkey columns. */
static void key_scratch(struct itable *it, const char ***vals, uint32_t **lens)
{
    if (it->nkey + 1u > it->s_kcap) {
        it->s_kcap = it->nkey + 1u;
        it->s_kvals = xrealloc(it->s_kvals, it->s_kcap * sizeof *it->s_kvals);
        it->s_klens = xrealloc(it->s_klens, it->s_kcap * sizeof *it->s_klens);
    }
    *vals = it->s_kvals;
    *lens = it->s_klens;
}

/* Fills r from image `img` of ev (NULL: every column NULL); a value the
 * change did not carry comes from `old` when that has it. */
static void row_from(struct row *r, const struct itable *it, const struct cdc_event *ev,
                     const struct cdc_val *img, const struct cdc_val *old)
{
    for (uint16_t c = 0; img && c < it->shape->ncols; c++) {
        int j = it->field_of[c];
        const struct cdc_val *v = &img[c];
        if (v->kind == CDC_V_UNCHANGED && old && old[c].kind == CDC_V_TEXT)
            v = &old[c];
        if (v->kind == CDC_V_TEXT) {
            r->vals[j] = cdc_val_ptr(ev, v);
            r->lens[j] = v->len;
        } else if (v->kind == CDC_V_UNCHANGED) {
            r->unchanged[c] = true;
            r->any_unchanged = true;
        }
    }
}

/* Hash of a whole row image (deferrable keys match rows by it). */
static uint64_t image_of(const struct itable *it, const struct cdc_event *ev,
                         const struct cdc_val *img)
{
    if (!it->deferrable || !img)
        return 0;
    uint64_t h = HASH_SEED;
    for (uint16_t c = 0; c < it->shape->ncols; c++) {
        uint8_t k = img[c].kind;
        h = hash_bytes(h, &k, 1);
        if (k == CDC_V_TEXT)
            h = hash_bytes(h, cdc_val_ptr(ev, &img[c]), img[c].len);
    }
    return hash_finish(h) | 1;
}

/* The key of image img: normalized bytes into kb, texts into vals/lens (by
 * key column). */
static int key_of(struct sink *sk, struct itable *it, const struct cdc_event *ev,
                  const struct cdc_val *img, struct buf *kb, const char **vals, uint32_t *lens)
{
    const struct ice_schema *sc = ice_meta_schema(it->t->meta);
    buf_reset(kb);
    for (uint32_t k = 0; k < it->nkey; k++) {
        int c = it->key_cols[k];
        const struct cdc_val *v = img ? &img[c] : NULL;
        const struct ice_field *f = &sc->fields[it->field_of[c]];
        if (!v || v->kind != CDC_V_TEXT) {
            sk->err_seq = ev->seq;
            return sink_set_error(sk, SINK_ERR_PERMANENT,
                                  "table %s, column %s: the change carries no value of this key "
                                  "column",
                                  it->label, f->name);
        }
        const char *s = cdc_val_ptr(ev, v);
        if (lake_key_from_text(f, s, v->len, kb) < 0) {
            char t[40];
            ice_type_format(f, t, sizeof t);
            sk->err_seq = ev->seq;
            return sink_set_error(sk, SINK_ERR_PERMANENT,
                                  "table %s, column %s: \"%.*s\" is not a %s value", it->label,
                                  f->name, (int)(v->len > 64 ? 64 : v->len), s, t);
        }
        vals[k] = s;
        lens[k] = v->len;
    }
    return 0;
}

static uint32_t slot_of(struct batch *b, const struct buf *kb)
{
    if (!b->keys)
        b->keys = lake_keymap_new();
    bool added;
    uint32_t i = lake_keymap_put(b->keys, kb->p, kb->len, &added);
    if (i >= b->capslots) {
        b->capslots = b->capslots ? b->capslots * 2 : 1024;
        b->slots = xrealloc(b->slots, b->capslots * sizeof *b->slots);
    }
    if (added)
        b->slots[i] = (struct kslot){-1, false};
    return i;
}

static void push_row(struct batch *b, uint32_t slot, uint32_t file, int64_t pos, uint64_t image)
{
    if (b->nrows == b->caprows) {
        b->caprows = b->caprows ? b->caprows * 2 : 1024;
        b->rows = xrealloc(b->rows, b->caprows * sizeof *b->rows);
    }
    b->rows[b->nrows] = (struct krow){file, pos, image, b->slots[slot].head, true};
    b->slots[slot].head = (int32_t)b->nrows++;
}

/* Deletes the row with the key of img (see the file's comment); *killed
 * gets the row of the batch it removed, or -1. */
static int delete_key(struct sink *sk, struct itable *it, const struct cdc_event *ev,
                      const struct cdc_val *img, uint64_t image, uint32_t *slot, int64_t *killed)
{
    struct batch *b = &it->b;
    const char **vals;
    uint32_t *lens;
    key_scratch(it, &vals, &lens);
    int rc = key_of(sk, it, ev, img, &it->s_key, vals, lens);
    *killed = -1;
    if (rc == 0) {
        *slot = slot_of(b, &it->s_key);
        for (int32_t r = b->slots[*slot].head; r >= 0; r = b->rows[r].next) {
            struct krow *k = &b->rows[r];
            if (!k->alive || (image && k->image && k->image != image))
                continue;
            k->alive = false;
            if (k->file == ICESINK_DEFERRED)
                b->def[k->pos].alive = false;
            else
                icesink_put_pos_delete(it, k->file, k->pos);
            *killed = r;
            break;
        }
        if (*killed < 0 && !b->slots[*slot].eqdel && it->has_rows && !b->truncated) {
            rc = icesink_put_eq_delete(sk, it, vals, lens);
            b->slots[*slot].eqdel = true;
        }
    }
    return rc;
}

/* Writes the row and records it under its key (slot). */
static int write_row(struct sink *sk, struct itable *it, const struct row *r, uint32_t slot,
                     uint64_t image)
{
    uint32_t file;
    int64_t pos;
    int rc = icesink_put_row(sk, it, r->vals, r->lens, &file, &pos);
    if (rc == 0 && it->b.keys)
        push_row(&it->b, slot, file, pos, image);
    return rc;
}

/* Keeps an update's new row until the commit finds what it lacks. */
static void defer_row(struct itable *it, const struct cdc_event *ev, const struct cdc_val *img,
                      const struct cdc_val *old, uint32_t slot, uint32_t old_slot, int64_t killed)
{
    struct batch *b = &it->b;
    if (b->ndef == b->capdef) {
        b->capdef = b->capdef ? b->capdef * 2 : 16;
        b->def = xrealloc(b->def, b->capdef * sizeof *b->def);
    }
    struct deferred *d = &b->def[b->ndef];
    memset(d, 0, sizeof *d);
    const struct ice_schema *sc = ice_meta_schema(it->t->meta);
    uint16_t n = it->shape->ncols;
    d->n = n;
    d->ids = xcalloc(n + 1u, sizeof *d->ids);
    d->kind = xcalloc(n + 1u, sizeof *d->kind);
    d->off = xcalloc(n + 1u, sizeof *d->off);
    d->len = xcalloc(n + 1u, sizeof *d->len);
    for (uint16_t c = 0; c < n; c++) {
        const struct cdc_val *v = &img[c];
        if (v->kind == CDC_V_UNCHANGED && old && old[c].kind == CDC_V_TEXT)
            v = &old[c];
        d->ids[c] = sc->fields[it->field_of[c]].id;
        d->kind[c] = v->kind;
        if (v->kind == CDC_V_TEXT) {
            d->off[c] = (uint32_t)d->text.len;
            d->len[c] = v->len;
            buf_put(&d->text, cdc_val_ptr(ev, v), v->len);
        }
    }
    d->alive = true;
    d->slot = old_slot;
    if (killed >= 0 && b->rows[killed].file == ICESINK_DEFERRED) {
        d->src = FILL_DEFERRED;
        d->pos = b->rows[killed].pos;
    } else if (killed >= 0) {
        d->src = FILL_FILE;
        d->file = b->rows[killed].file;
        d->pos = b->rows[killed].pos;
    } else {
        d->src = it->has_rows && !b->truncated ? FILL_TABLE : FILL_NONE;
    }
    push_row(b, slot, ICESINK_DEFERRED, (int64_t)b->ndef, 0);
    b->ndef++;
}

static int upsert(struct sink *sk, struct itable *it, const struct cdc_event *ev)
{
    struct batch *b = &it->b;
    if (!b->keys)
        b->keys = lake_keymap_new();
    if (ev->op == CDC_OP_TRUNCATE) {
        struct icesink *s = sk->priv;
        icesink_batch_discard(s, it);
        it->b.truncated = true;
        it->b.changes = 1;
        return 0;
    }
    const struct cdc_val *old = ev->before, *img = ev->after;
    bool full_old = old && !ev->before_key_only;
    uint32_t slot = 0, old_slot = 0;
    int64_t killed = -1;
    int rc = 0;
    /* What the change replaces or removes: the old key when the change
     * carries one (deletes, key changes), else the new row's key. */
    bool deletes =
        ev->op == CDC_OP_DELETE || ev->op == CDC_OP_UPDATE || ev->op == CDC_OP_READ || sk->replay;
    if (deletes) {
        const struct cdc_val *which = old ? old : img;
        rc = delete_key(sk, it, ev, which, full_old ? image_of(it, ev, old) : 0, &slot, &killed);
        old_slot = slot;
    }
    if (rc || ev->op == CDC_OP_DELETE)
        return rc;
    struct row r;
    row_init(&r, it);
    row_from(&r, it, ev, img, full_old ? old : NULL);
    if (old || !deletes) {
        /* the new row's key (a key change, or an insert) */
        const char **vals;
        uint32_t *lens;
        key_scratch(it, &vals, &lens);
        rc = key_of(sk, it, ev, img, &it->s_key, vals, lens);
        if (rc == 0)
            slot = slot_of(b, &it->s_key);
    }
    if (rc == 0 && r.any_unchanged)
        defer_row(it, ev, img, full_old ? old : NULL, slot, old_slot, killed);
    else if (rc == 0)
        rc = write_row(sk, it, &r, slot, image_of(it, ev, img));
    return rc;
}

static const char *op_name(int op)
{
    switch (op) {
    case CDC_OP_INSERT:
        return "c";
    case CDC_OP_UPDATE:
        return "u";
    case CDC_OP_DELETE:
        return "d";
    case CDC_OP_READ:
        return "r";
    default:
        return "t";
    }
}

static int append(struct sink *sk, struct itable *it, const struct cdc_event *ev)
{
    struct row r;
    row_init(&r, it);
    const struct cdc_val *img = ev->op == CDC_OP_DELETE     ? (ev->before ? ev->before : ev->after)
                                : ev->op == CDC_OP_TRUNCATE ? NULL
                                                            : ev->after;
    row_from(&r, it, ev, img, ev->op == CDC_OP_DELETE ? NULL : ev->before);
    char ts[24], pos[CDC_POS_TEXT_MAX];
    snprintf(ts, sizeof ts, "%lld", (long long)(ev->commit_ts / 1000));
    cdc_pos_format(ev->pos, pos, sizeof pos);
    struct buf unch = BUF_INIT;
    for (uint16_t c = 0; c < it->shape->ncols; c++)
        if (r.unchanged[c])
            buf_printf(&unch, "%s%s", unch.len ? "," : "", it->shape->cols[c].name);
    const char *extra[ICESINK_NEXTRA] = {op_name(ev->op), ts, pos, ev->tab->topic,
                                         unch.len ? unch.p : NULL};
    for (int k = 0; k < ICESINK_NEXTRA; k++) {
        r.vals[it->extra[k]] = extra[k];
        r.lens[it->extra[k]] = extra[k] ? (uint32_t)strlen(extra[k]) : 0;
    }
    uint32_t file;
    int64_t p;
    int rc = icesink_put_row(sk, it, r.vals, r.lens, &file, &p);
    buf_fini(&unch);
    return rc;
}

int icesink_apply(struct sink *sk, struct itable *it, const struct cdc_event *ev)
{
    int rc = icesink_table_prepare(sk, it, ev->tab);
    if (rc)
        return rc;
    it->b.changes++;
    rc = icesink_conf(sk)->write_mode == ICEBERG_UPSERT ? upsert(sk, it, ev) : append(sk, it, ev);
    if (rc && sk->errclass == SINK_ERR_PERMANENT && !sk->err_seq)
        sk->err_seq = ev->seq;
    return rc;
}
