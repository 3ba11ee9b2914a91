/* Column chunks of the Parquet writer: statistics, dictionary, pages (see
 * parquet_column.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lake/lake_conv.h"
#include "lake/parquet_column.h"
#include "lake/parquet_enc.h"
#include "util/err.h"
#include "util/mem.h"

static int bytes_cmp(const void *a, size_t an, const void *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    return r ? r : (an < bn ? -1 : an > bn);
}

void parquet_stats_int(struct pstats *s, int64_t v)
{
    if (!s->has || v < s->imin)
        s->imin = v;
    if (!s->has || v > s->imax)
        s->imax = v;
    s->has = true;
}

void parquet_stats_dbl(struct pstats *s, double v)
{
    if (isnan(v))
        return;
    /* -0.0 sorts below +0.0 here, so min is -0 and max +0 when both occur,
     * as the Parquet spec asks for zero bounds. */
    if (!s->has || v < s->dmin || (v == 0 && s->dmin == 0 && signbit(v)))
        s->dmin = v;
    if (!s->has || v > s->dmax || (v == 0 && s->dmax == 0 && !signbit(v)))
        s->dmax = v;
    s->has = true;
}

void parquet_stats_dec(struct pstats *s, __int128 v)
{
    if (!s->has || v < s->qmin)
        s->qmin = v;
    if (!s->has || v > s->qmax)
        s->qmax = v;
    s->has = true;
}

void parquet_stats_bytes(struct pstats *s, const void *p, size_t n)
{
    if (!s->has || bytes_cmp(p, n, s->bmin.p, s->bmin.len) < 0) {
        buf_reset(&s->bmin);
        buf_put(&s->bmin, p, n);
    }
    if (!s->has || bytes_cmp(p, n, s->bmax.p, s->bmax.len) > 0) {
        buf_reset(&s->bmax);
        buf_put(&s->bmax, p, n);
    }
    s->has = true;
}

/* Folds chunk statistics into the file's. */
void parquet_stats_merge(const struct pcol *c, struct pstats *f, const struct pstats *s)
{
    if (!s->has)
        return;
    if (c->decimal) {
        parquet_stats_dec(f, s->qmin);
        parquet_stats_dec(f, s->qmax);
    } else if (c->leaf.phys == PQ_FLOAT || c->leaf.phys == PQ_DOUBLE) {
        parquet_stats_dbl(f, s->dmin);
        parquet_stats_dbl(f, s->dmax);
    } else if (c->leaf.phys == PQ_BYTE_ARRAY || c->leaf.phys == PQ_FIXED_LEN_BYTE_ARRAY) {
        parquet_stats_bytes(f, s->bmin.p, s->bmin.len);
        parquet_stats_bytes(f, s->bmax.p, s->bmax.len);
    } else {
        parquet_stats_int(f, s->imin);
        parquet_stats_int(f, s->imax);
    }
}

static void put_le(struct buf *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        buf_putc(b, (char)(v >> (8 * i)));
}

static void put_f32(struct buf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_le(b, u, 4);
}

static void put_f64(struct buf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    put_le(b, u, 8);
}

/* PLAIN bytes of a statistic for the Parquet footer (min when is_min). */
void parquet_stats_plain(const struct pcol *c, const struct pstats *s, bool is_min, struct buf *b)
{
    buf_reset(b);
    switch (c->leaf.phys) {
    case PQ_BOOLEAN:
        buf_putc(b, (char)(is_min ? s->imin : s->imax));
        break;
    case PQ_INT32:
        put_le(b,
               (uint64_t)(c->decimal ? (int64_t)(is_min ? s->qmin : s->qmax)
                                     : (is_min ? s->imin : s->imax)),
               4);
        break;
    case PQ_INT64:
        put_le(b,
               (uint64_t)(c->decimal ? (int64_t)(is_min ? s->qmin : s->qmax)
                                     : (is_min ? s->imin : s->imax)),
               8);
        break;
    case PQ_FLOAT:
        put_f32(b, (float)(is_min ? s->dmin : s->dmax));
        break;
    case PQ_DOUBLE:
        put_f64(b, is_min ? s->dmin : s->dmax);
        break;
    case PQ_FIXED_LEN_BYTE_ARRAY:
        if (c->decimal) {
            buf_reserve(b, c->width);
            lake_decimal_be(is_min ? s->qmin : s->qmax, (uint8_t *)b->p, c->width);
            b->len = c->width;
            break;
        }
        /* fall through */
    case PQ_BYTE_ARRAY: {
        const struct buf *v = is_min ? &s->bmin : &s->bmax;
        buf_put(b, v->p, v->len);
        break;
    }
    }
}

/* Iceberg single-value serialization of a bound (spec App. D). */
void parquet_stats_iceberg(const struct pcol *c, const struct pstats *s, bool is_min, struct buf *b)
{
    buf_reset(b);
    if (c->decimal) {
        uint8_t tmp[16];
        size_t n = lake_decimal_min_bytes(is_min ? s->qmin : s->qmax, tmp);
        buf_put(b, tmp, n);
        return;
    }
    parquet_stats_plain(c, s, is_min, b);
}

/* ---- adding values -------------------------------------------------------- */

static void dict_drop(struct pcol *c);

static uint32_t hash_bytes32(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* Size of the PLAIN value starting at p (BYTE_ARRAY: length prefix). */
static size_t plain_size(const struct pcol *c, const uint8_t *p)
{
    if (c->width)
        return c->width;
    uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 4 + (size_t)n;
}

static void dict_rehash(struct pcol *c)
{
    uint32_t cap = c->ht_cap ? c->ht_cap * 2 : 1024;
    uint32_t *ht = xcalloc(cap, sizeof *ht);
    for (uint32_t id = 0; id < c->ndict; id++) {
        const uint8_t *v = (const uint8_t *)c->dict.p + c->dict_off[id];
        uint32_t h = hash_bytes32(v, plain_size(c, v)) & (cap - 1);
        while (ht[h])
            h = (h + 1) & (cap - 1);
        ht[h] = id + 1;
    }
    free(c->ht);
    c->ht = ht;
    c->ht_cap = cap;
}

/* Records the PLAIN value v[0..n) in the chunk's dictionary and its id. */
static void dict_add(struct pcol *c, const void *v, size_t n, size_t dict_max)
{
    if (!c->dict_on)
        return;
    if ((c->ndict + 1) * 2 > c->ht_cap)
        dict_rehash(c);
    uint32_t h = hash_bytes32(v, n) & (c->ht_cap - 1), id;
    for (;;) {
        uint32_t e = c->ht[h];
        if (!e) {
            if (c->dict.len + n > dict_max) {
                /* Too many distinct values: this chunk will be PLAIN. */
                c->dict_on = false;
                dict_drop(c);
                return;
            }
            if (c->ndict == c->dict_cap) {
                c->dict_cap = c->dict_cap ? c->dict_cap * 2 : 256;
                c->dict_off = xrealloc(c->dict_off, c->dict_cap * sizeof *c->dict_off);
            }
            id = c->ndict++;
            c->dict_off[id] = (uint32_t)c->dict.len;
            buf_put(&c->dict, v, n);
            c->ht[h] = id + 1;
            break;
        }
        const uint8_t *d = (const uint8_t *)c->dict.p + c->dict_off[e - 1];
        if (plain_size(c, d) == n && memcmp(d, v, n) == 0) {
            id = e - 1;
            break;
        }
        h = (h + 1) & (c->ht_cap - 1);
    }
    if (c->nvals >= c->ids_cap) {
        c->ids_cap = c->ids_cap ? c->ids_cap * 2 : 1024;
        c->ids = xrealloc(c->ids, c->ids_cap * sizeof *c->ids);
    }
    c->ids[c->nvals] = id;
}

static void dict_drop(struct pcol *c)
{
    buf_fini(&c->dict);
    free(c->dict_off);
    free(c->ht);
    free(c->ids);
    c->dict_off = c->ht = c->ids = NULL;
    c->ndict = c->dict_cap = c->ht_cap = c->ids_cap = 0;
}

void parquet_column_push(struct pcol *c, const void *p, size_t n, size_t dict_max)
{
    size_t at = c->vals.len;
    if (!c->width) {
        uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
        buf_put(&c->vals, len, 4);
    }
    buf_put(&c->vals, p, n);
    dict_add(c, c->vals.p + at, c->vals.len - at, dict_max);
    c->nvals++;
}

void parquet_column_fini(struct pcol *c)
{
    buf_fini(&c->defs);
    buf_fini(&c->vals);
    dict_drop(c);
    buf_fini(&c->st.bmin);
    buf_fini(&c->st.bmax);
    buf_fini(&c->fst.bmin);
    buf_fini(&c->fst.bmax);
}

/* Compresses one page body and writes header and body. */
static int put_page(const struct parquet_page_out *o, int type, const struct buf *body,
                    int32_t num_values, int32_t encoding, struct parquet_chunk_meta *m, char *err,
                    size_t errlen)
{
    int rc = parquet_compress(o->codec, o->level, body->p, body->len, o->comp, err, errlen);
    if (rc < 0)
        return rc;
    if (body->len > INT32_MAX || o->comp->len > INT32_MAX)
        return cdc_fail(err, errlen, CDC_EINVAL, "a Parquet page exceeds 2 GiB");
    buf_reset(o->hdr);
    parquet_meta_page_header(o->hdr, type, (int32_t)body->len, (int32_t)o->comp->len, num_values,
                             encoding);
    if ((rc = o->write(o->arg, o->hdr->p, o->hdr->len, err, errlen)) < 0 ||
        (rc = o->write(o->arg, o->comp->p, o->comp->len, err, errlen)) < 0)
        return rc;
    m->uncompressed += (int64_t)(o->hdr->len + body->len);
    m->compressed += (int64_t)(o->hdr->len + o->comp->len);
    return 0;
}

static void put_le32(struct buf *b, uint32_t v)
{
    char le[4] = {(char)v, (char)(v >> 8), (char)(v >> 16), (char)(v >> 24)};
    buf_put(b, le, 4);
}

/* Empties the chunk for the next row group, keeping allocations. */
static void chunk_reset(struct pcol *c)
{
    buf_reset(&c->defs);
    buf_reset(&c->vals);
    c->nvals = 0;
    c->nulls = c->nans = 0;
    c->st.has = false;
    c->ok_defs = c->ok_vals = 0;
    c->ok_nvals = 0;
    c->ok_nulls = c->ok_nans = 0;
    if (c->dict_on) {
        buf_reset(&c->dict);
        c->ndict = 0;
        if (c->ht)
            memset(c->ht, 0, c->ht_cap * sizeof *c->ht);
    }
    c->dict_on = c->dict_allowed;
}

int parquet_column_write(struct pcol *c, const struct parquet_page_out *o, int64_t rows,
                         struct parquet_chunk_meta *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->num_values = rows;
    m->dict_page_offset = -1;
    m->data_page_offset = -1;
    m->null_count = c->nulls;
    bool optional = !c->leaf.f->required;
    const uint8_t *defs = (const uint8_t *)c->defs.p;
    const uint8_t *vals = (const uint8_t *)c->vals.p;
    int rc = 0;

    /* Dictionary encoding only where it is smaller than PLAIN. */
    bool use_dict = c->dict_on && c->ndict > 0;
    int bw = use_dict ? parquet_bit_width(c->ndict - 1) : 0;
    if (use_dict && c->dict.len + ((size_t)c->nvals * (size_t)bw + 7) / 8 + 16 >= c->vals.len)
        use_dict = false;
    if (use_dict) {
        m->dict = true;
        m->dict_page_offset = *o->pos;
        if ((rc = put_page(o, PQ_PAGE_DICTIONARY, &c->dict, (int32_t)c->ndict, PQ_ENC_PLAIN, m, err,
                           errlen)) < 0)
            return rc;
    }
    int64_t r = 0;
    uint32_t v = 0;
    size_t off = 0;
    do {
        int64_t r0 = r;
        uint32_t v0 = v;
        size_t off0 = off, bytes = 0;
        while (r < rows && bytes < o->page_bytes) {
            if (!optional || defs[r]) {
                size_t sz = plain_size(c, vals + off);
                off += sz;
                bytes += use_dict ? 4 : sz;
                v++;
            } else {
                bytes++;
            }
            r++;
        }
        struct buf *page = o->page;
        buf_reset(page);
        if (optional) {
            buf_reset(o->levels);
            parquet_rle_encode_u8(o->levels, defs + r0, (size_t)(r - r0), 1);
            put_le32(page, (uint32_t)o->levels->len);
            buf_put(page, o->levels->p, o->levels->len);
        }
        if (use_dict) {
            buf_putc(page, (char)bw);
            parquet_rle_encode(page, c->ids ? c->ids + v0 : NULL, v - v0, bw);
        } else if (c->leaf.phys == PQ_BOOLEAN) {
            if (v > v0) /* a page of NULLs only has no values (and vals may be NULL) */
                parquet_pack_bools(page, vals + v0, v - v0);
        } else if (off > off0) {
            buf_put(page, vals + off0, off - off0);
        }
        if (m->data_page_offset < 0)
            m->data_page_offset = *o->pos;
        if ((rc = put_page(o, PQ_PAGE_DATA, page, (int32_t)(r - r0),
                           use_dict ? PQ_ENC_RLE_DICTIONARY : PQ_ENC_PLAIN, m, err, errlen)) < 0)
            return rc;
    } while (r < rows);

    m->has_minmax = c->st.has;
    if (c->st.has) {
        parquet_stats_plain(c, &c->st, true, &m->min);
        parquet_stats_plain(c, &c->st, false, &m->max);
    }
    parquet_stats_merge(c, &c->fst, &c->st);
    c->fvalues += rows;
    c->fnulls += c->nulls;
    c->fnans += c->nans;
    c->fsize += m->compressed;
    chunk_reset(c);
    return 0;
}

/* Signed value of `width` little-endian bytes. */
static int64_t le_signed(const uint8_t *p, int width)
{
    uint64_t u = 0;
    for (int i = 0; i < width; i++)
        u |= (uint64_t)p[i] << (8 * i);
    if (width < 8 && (u >> (8 * width - 1)) & 1)
        u |= ~0ULL << (8 * width);
    return (int64_t)u;
}

void parquet_column_commit_row(struct pcol *c)
{
    if (c->nvals > c->ok_nvals) {
        /* Statistics from the value the row stored (PLAIN at ok_vals), so a
         * rejected row never widens them. */
        const uint8_t *p = (const uint8_t *)c->vals.p + c->ok_vals;
        switch (c->leaf.phys) {
        case PQ_BOOLEAN:
            parquet_stats_int(&c->st, p[0]);
            break;
        case PQ_INT32:
        case PQ_INT64: {
            int64_t v = le_signed(p, (int)c->width);
            if (c->decimal)
                parquet_stats_dec(&c->st, v);
            else
                parquet_stats_int(&c->st, v);
            break;
        }
        case PQ_FLOAT: {
            float f;
            memcpy(&f, p, 4);
            parquet_stats_dbl(&c->st, f);
            break;
        }
        case PQ_DOUBLE: {
            double d;
            memcpy(&d, p, 8);
            parquet_stats_dbl(&c->st, d);
            break;
        }
        case PQ_FIXED_LEN_BYTE_ARRAY:
            if (c->decimal) {
                __int128 v = (p[0] & 0x80) ? -1 : 0;
                for (uint32_t i = 0; i < c->width; i++)
                    v = (__int128)((unsigned __int128)v << 8) | p[i];
                parquet_stats_dec(&c->st, v);
            } else {
                parquet_stats_bytes(&c->st, p, c->width);
            }
            break;
        case PQ_BYTE_ARRAY:
            parquet_stats_bytes(&c->st, p + 4, c->vals.len - c->ok_vals - 4);
            break;
        }
    }
    c->set = false;
    c->ok_defs = c->defs.len;
    c->ok_vals = c->vals.len;
    c->ok_nvals = c->nvals;
    c->ok_nulls = c->nulls;
    c->ok_nans = c->nans;
}
