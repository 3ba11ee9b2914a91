/* Parquet reader (see parquet_reader.h).  The footer is decoded with the
 * generic Thrift decoder and copied into plain arrays; pages are read
 * column chunk by column chunk.  Field numbers are parquet.thrift's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/parquet_enc.h"
#include "lake/parquet_reader.h"
#include "lake/thrift.h"
#include "util/err.h"
#include "util/mem.h"

#define DEFAULT_MAX_BYTES ((size_t)1 << 30)

struct chunk {
    int codec;
    int64_t num_values;
    int64_t data_off, dict_off; /* dict_off -1: none */
    int64_t size;               /* total_compressed_size */
};

struct rgroup {
    int64_t rows;
    struct chunk *cols; /* owned: one per column */
};

struct parquet_reader {
    const uint8_t *data; /* borrowed */
    size_t len;
    char *label;
    size_t max_bytes;
    struct thrift_node root; /* FileMetaData; borrows data */
    struct ice_schema *sc;
    enum parquet_phys *phys;
    uint32_t *type_len;
    int64_t rows;
    uint32_t nrgs;
    struct rgroup *rgs;
};

/* ---- footer -------------------------------------------------------------- */

static bool t_int(const struct thrift_node *s, int16_t id, int64_t *v)
{
    const struct thrift_node *f = s ? thrift_get(s, id) : NULL;
    if (!f || f->type < THRIFT_TRUE || f->type > THRIFT_I64)
        return false;
    *v = f->i;
    return true;
}

static const struct thrift_node *t_kind(const struct thrift_node *s, int16_t id, int type)
{
    const struct thrift_node *f = s ? thrift_get(s, id) : NULL;
    return f && f->type == type ? f : NULL;
}

static int bad(const struct parquet_reader *rd, char *err, size_t errlen, const char *what)
{
    return cdc_fail(err, errlen, CDC_EINVAL, "%s: not a Parquet file cdc can read: %s", rd->label,
                    what);
}

/* Converted types and logical type members (parquet.thrift). */
enum { CT_UTF8 = 0, CT_ENUM = 4, CT_DECIMAL = 5, CT_DATE = 6, CT_TIME_MICROS = 8 };
enum { CT_TIMESTAMP_MICROS = 10, CT_JSON = 19 };
enum { LT_STRING = 1, LT_ENUM = 4, LT_DECIMAL = 5, LT_DATE = 6, LT_TIME = 7, LT_TIMESTAMP = 8 };
enum { LT_JSON = 12, LT_UUID = 14 };

/* The Iceberg type of a leaf from its physical type and annotations;
 * false if it has none cdc reads. */
static bool leaf_type(const struct thrift_node *el, enum parquet_phys phys, uint32_t type_len,
                      struct ice_field *f)
{
    int64_t ct = -1, v;
    t_int(el, 6, &ct);
    const struct thrift_node *lt = t_kind(el, 10, THRIFT_STRUCT);
    int16_t member = lt && lt->nkids ? lt->kids[0].id : 0;
    const struct thrift_node *lm = member ? t_kind(lt, member, THRIFT_STRUCT) : NULL;
    bool decimal = ct == CT_DECIMAL || member == LT_DECIMAL;
    if (decimal) {
        int64_t p = 0, s = 0;
        if (!t_int(el, 8, &p))
            t_int(lm, 2, &p);
        if (!t_int(el, 7, &s))
            t_int(lm, 1, &s);
        if (p < 1 || p > 38 || s < 0 || s > p)
            return false;
        f->type = ICE_DECIMAL;
        f->precision = (uint8_t)p;
        f->scale = (uint8_t)s;
        return phys == PQ_INT32 || phys == PQ_INT64 || phys == PQ_FIXED_LEN_BYTE_ARRAY;
    }
    /* A time or timestamp unit other than microseconds is refused. */
    if (member == LT_TIME || member == LT_TIMESTAMP) {
        const struct thrift_node *unit = t_kind(lm, 2, THRIFT_STRUCT);
        if (!unit || !unit->nkids || unit->kids[0].id != 2)
            return false;
    }
    switch (phys) {
    case PQ_BOOLEAN:
        f->type = ICE_BOOLEAN;
        return true;
    case PQ_INT32:
        f->type = ct == CT_DATE || member == LT_DATE ? ICE_DATE : ICE_INT;
        return true;
    case PQ_INT64:
        if (member == LT_TIMESTAMP) {
            f->type = t_int(lm, 1, &v) && v ? ICE_TIMESTAMPTZ : ICE_TIMESTAMP;
        } else if (ct == CT_TIMESTAMP_MICROS) {
            f->type = ICE_TIMESTAMP;
        } else if (member == LT_TIME || ct == CT_TIME_MICROS) {
            f->type = ICE_TIME;
        } else if (ct == 7 || ct == 9) { /* TIME_MILLIS, TIMESTAMP_MILLIS */
            return false;
        } else {
            f->type = ICE_LONG;
        }
        return true;
    case PQ_FLOAT:
        f->type = ICE_FLOAT;
        return true;
    case PQ_DOUBLE:
        f->type = ICE_DOUBLE;
        return true;
    case PQ_BYTE_ARRAY:
        f->type = ct == CT_UTF8 || ct == CT_ENUM || ct == CT_JSON || member == LT_STRING ||
                          member == LT_ENUM || member == LT_JSON
                      ? ICE_STRING
                      : ICE_BINARY;
        return true;
    case PQ_FIXED_LEN_BYTE_ARRAY:
        if (member == LT_UUID && type_len == 16) {
            f->type = ICE_UUID;
        } else {
            f->type = ICE_FIXED;
        }
        f->len = type_len;
        return true;
    }
    return false;
}

static int read_schema(struct parquet_reader *rd, char *err, size_t errlen)
{
    const struct thrift_node *list = t_kind(&rd->root, 2, THRIFT_LIST);
    if (!list || list->nkids < 1 || list->elem_type != THRIFT_STRUCT)
        return bad(rd, err, errlen, "no schema");
    int64_t n = 0;
    if (!t_int(&list->kids[0], 5, &n) || n != (int64_t)list->nkids - 1)
        return bad(rd, err, errlen, "nested columns are not supported");
    uint32_t ncols = list->nkids - 1;
    rd->sc = ice_schema_new(0);
    rd->phys = xcalloc(ncols ? ncols : 1, sizeof *rd->phys);
    rd->type_len = xcalloc(ncols ? ncols : 1, sizeof *rd->type_len);
    for (uint32_t i = 0; i < ncols; i++) {
        const struct thrift_node *el = &list->kids[i + 1];
        int64_t type = -1, rep = 0, id = 0, tl = 0, kids = 0;
        const struct thrift_node *name = t_kind(el, 4, THRIFT_BINARY);
        if ((t_int(el, 5, &kids) && kids > 0) || !t_int(el, 1, &type))
            return bad(rd, err, errlen, "nested columns are not supported");
        t_int(el, 3, &rep);
        t_int(el, 9, &id);
        t_int(el, 2, &tl);
        if (!name || name->len == 0 || memchr(name->bin, 0, name->len) || rep < 0 || rep > 1)
            return bad(rd, err, errlen, "a column is unnamed or repeated");
        if (type != PQ_BOOLEAN && type != PQ_INT32 && type != PQ_INT64 && type != PQ_FLOAT &&
            type != PQ_DOUBLE && type != PQ_BYTE_ARRAY && type != PQ_FIXED_LEN_BYTE_ARRAY)
            return bad(rd, err, errlen, "a column has a physical type cdc does not read");
        if (type == PQ_FIXED_LEN_BYTE_ARRAY && (tl < 1 || tl > (1 << 20)))
            return bad(rd, err, errlen, "a fixed-length column has no valid length");
        char *nm = xstrndup((const char *)name->bin, name->len);
        struct ice_field f = {0};
        bool ok = leaf_type(el, (enum parquet_phys)type, (uint32_t)tl, &f);
        if (!ok) {
            int rc =
                cdc_fail(err, errlen, CDC_EINVAL,
                         "%s: column %s has a type annotation cdc does not read", rd->label, nm);
            free(nm);
            return rc;
        }
        struct ice_field *g = ice_schema_add(rd->sc, (int32_t)(id > 0 && id <= INT32_MAX ? id : 0),
                                             nm, f.type, rep == 0);
        g->precision = f.precision;
        g->scale = f.scale;
        g->len = f.len;
        free(nm);
        rd->phys[i] = (enum parquet_phys)type;
        rd->type_len[i] = (uint32_t)tl;
    }
    return 0;
}

static int read_row_groups(struct parquet_reader *rd, char *err, size_t errlen)
{
    const struct thrift_node *list = t_kind(&rd->root, 4, THRIFT_LIST);
    if (!list)
        return bad(rd, err, errlen, "no row groups");
    rd->nrgs = list->nkids;
    rd->rgs = xcalloc(rd->nrgs ? rd->nrgs : 1, sizeof *rd->rgs);
    int64_t total = 0;
    for (uint32_t r = 0; r < rd->nrgs; r++) {
        const struct thrift_node *rg = &list->kids[r];
        struct rgroup *g = &rd->rgs[r];
        const struct thrift_node *cols = t_kind(rg, 1, THRIFT_LIST);
        if (!cols || cols->nkids != rd->sc->nfields || !t_int(rg, 3, &g->rows) || g->rows < 0 ||
            g->rows > INT32_MAX)
            return bad(rd, err, errlen, "a row group does not match the schema");
        total += g->rows;
        g->cols = xcalloc(cols->nkids ? cols->nkids : 1, sizeof *g->cols);
        for (uint32_t c = 0; c < cols->nkids; c++) {
            const struct thrift_node *md = t_kind(&cols->kids[c], 3, THRIFT_STRUCT);
            struct chunk *ch = &g->cols[c];
            int64_t type = -1, codec = -1;
            ch->dict_off = -1;
            if (!md || !t_int(md, 1, &type) || type != rd->phys[c] || !t_int(md, 4, &codec) ||
                !t_int(md, 5, &ch->num_values) || !t_int(md, 7, &ch->size) ||
                !t_int(md, 9, &ch->data_off))
                return bad(rd, err, errlen, "a column chunk lacks its metadata");
            t_int(md, 11, &ch->dict_off);
            ch->codec = (int)codec;
            int64_t start = ch->dict_off >= 0 ? ch->dict_off : ch->data_off;
            if (start < 4 || ch->size < 0 || (uint64_t)start > rd->len ||
                (uint64_t)ch->size > rd->len - (uint64_t)start || ch->num_values != g->rows)
                return bad(rd, err, errlen, "a column chunk lies outside the file");
        }
    }
    if (!t_int(&rd->root, 3, &rd->rows) || rd->rows != total)
        return bad(rd, err, errlen, "the row count differs from the row groups'");
    return 0;
}

int parquet_reader_open(struct parquet_reader **out, const void *data, size_t len,
                        const struct parquet_reader_opts *opts, const char *label, char *err,
                        size_t errlen)
{
    *out = NULL;
    struct parquet_reader *rd = xcalloc(1, sizeof *rd);
    rd->data = data;
    rd->len = len;
    rd->label = xstrdup(label ? label : "parquet file");
    rd->max_bytes = opts && opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
    const uint8_t *p = data;
    int rc = 0;
    if (len < 12 || memcmp(p, "PAR1", 4) != 0 || memcmp(p + len - 4, "PAR1", 4) != 0) {
        rc = bad(rd, err, errlen, "no PAR1 magic at both ends");
        goto out;
    }
    uint32_t flen = (uint32_t)p[len - 8] | (uint32_t)p[len - 7] << 8 | (uint32_t)p[len - 6] << 16 |
                    (uint32_t)p[len - 5] << 24;
    if (flen > len - 12) {
        rc = bad(rd, err, errlen, "the footer length exceeds the file");
        goto out;
    }
    size_t used = 0;
    if (thrift_decode(p + len - 8 - flen, flen, &rd->root, &used) != 0) {
        rc = bad(rd, err, errlen, "the footer is not valid Thrift");
        goto out;
    }
    if ((rc = read_schema(rd, err, errlen)) == 0)
        rc = read_row_groups(rd, err, errlen);
out:
    if (rc) {
        parquet_reader_free(rd);
        return rc;
    }
    *out = rd;
    return 0;
}

void parquet_reader_free(struct parquet_reader *rd)
{
    if (!rd)
        return;
    for (uint32_t r = 0; r < rd->nrgs; r++)
        free(rd->rgs[r].cols);
    free(rd->rgs);
    thrift_node_fini(&rd->root);
    ice_schema_free(rd->sc);
    free(rd->phys);
    free(rd->type_len);
    free(rd->label);
    free(rd);
}

int64_t parquet_reader_rows(const struct parquet_reader *rd)
{
    return rd->rows;
}

uint32_t parquet_reader_row_groups(const struct parquet_reader *rd)
{
    return rd->nrgs;
}

int64_t parquet_reader_rg_rows(const struct parquet_reader *rd, uint32_t rg)
{
    return rg < rd->nrgs ? rd->rgs[rg].rows : 0;
}

const struct ice_schema *parquet_reader_schema(const struct parquet_reader *rd)
{
    return rd->sc;
}

int parquet_reader_find(const struct parquet_reader *rd, int32_t id)
{
    return id > 0 ? ice_schema_index(rd->sc, id) : -1;
}

const char *parquet_reader_kv(const struct parquet_reader *rd, const char *key, size_t *n)
{
    const struct thrift_node *list = t_kind(&rd->root, 5, THRIFT_LIST);
    size_t klen = strlen(key);
    for (uint32_t i = 0; list && i < list->nkids; i++) {
        const struct thrift_node *k = t_kind(&list->kids[i], 1, THRIFT_BINARY);
        const struct thrift_node *v = t_kind(&list->kids[i], 2, THRIFT_BINARY);
        if (k && v && k->len == klen && memcmp(k->bin, key, klen) == 0) {
            *n = v->len;
            return (const char *)v->bin;
        }
    }
    return NULL;
}

/* ---- pages --------------------------------------------------------------- */

/* Decoding state of one column chunk. */
struct colread {
    struct parquet_reader *rd;
    uint32_t col;
    bool optional;
    struct parquet_column_data *out;
    int64_t row; /* next row slot to fill */
    size_t budget;
    /* the dictionary, PLAIN values split up */
    uint32_t ndict;
    struct buf dict;    /* fixed: ndict * width bytes; BYTE_ARRAY: values back to back */
    uint32_t *dict_off; /* BYTE_ARRAY: ndict + 1 offsets */
    bool has_dict;
    uint32_t *defs, *idx; /* scratch */
    size_t cap_defs, cap_idx;
};

static int col_fail(const struct colread *cr, char *err, size_t errlen, const char *what)
{
    return cdc_fail(err, errlen, CDC_EINVAL, "%s: column %s: %s", cr->rd->label,
                    cr->rd->sc->fields[cr->col].name, what);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t *scratch(uint32_t **p, size_t *cap, size_t n)
{
    if (n > *cap) {
        *cap = n;
        *p = xrealloc(*p, (n ? n : 1) * sizeof **p);
    }
    return *p;
}

/* The dictionary page: n PLAIN values. */
static int read_dict(struct colread *cr, const uint8_t *p, size_t len, int64_t n, char *err,
                     size_t errlen)
{
    uint32_t w = cr->out->width;
    if (cr->has_dict || n < 0 || n > INT32_MAX || cr->out->phys == PQ_BOOLEAN)
        return col_fail(cr, err, errlen, "unexpected dictionary page");
    cr->has_dict = true;
    cr->ndict = (uint32_t)n;
    if (w) {
        if ((uint64_t)n * w > len)
            return col_fail(cr, err, errlen, "dictionary page too short");
        buf_put(&cr->dict, p, (size_t)n * w);
        return 0;
    }
    cr->dict_off = xcalloc((size_t)n + 1, sizeof *cr->dict_off);
    size_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (len - at < 4 || le32(p + at) > len - at - 4)
            return col_fail(cr, err, errlen, "dictionary page too short");
        uint32_t vl = le32(p + at);
        buf_put(&cr->dict, p + at + 4, vl);
        cr->dict_off[i + 1] = (uint32_t)cr->dict.len;
        at += 4 + (size_t)vl;
    }
    return 0;
}

/* Stores the next row's value (or NULL when v is NULL). */
static int put_value(struct colread *cr, const uint8_t *v, size_t vlen, char *err, size_t errlen)
{
    struct parquet_column_data *d = cr->out;
    int64_t r = cr->row++;
    if (!v) {
        d->nulls[r] = 1;
        if (!d->width)
            d->off[r + 1] = d->off[r];
        return 0;
    }
    if (d->width) {
        memcpy(d->fixed + (size_t)r * d->width, v, d->width);
        return 0;
    }
    if (d->bytes.len + vlen > cr->budget || d->bytes.len + vlen > UINT32_MAX)
        return col_fail(cr, err, errlen, "more data than cdc reads at once");
    buf_put(&d->bytes, v, vlen);
    d->off[r + 1] = (uint32_t)d->bytes.len;
    return 0;
}

/* One v1 data page of n rows (levels, then values). */
static int read_data(struct colread *cr, const uint8_t *p, size_t len, int64_t n, int64_t enc,
                     char *err, size_t errlen)
{
    struct parquet_column_data *d = cr->out;
    if (n < 0 || n > d->rows - cr->row)
        return col_fail(cr, err, errlen, "more values than the row group has rows");
    uint32_t *defs = NULL;
    size_t at = 0, k = (size_t)n;
    if (cr->optional) {
        if (len < 4 || le32(p) > len - 4)
            return col_fail(cr, err, errlen, "definition levels cut short");
        uint32_t dl = le32(p);
        defs = scratch(&cr->defs, &cr->cap_defs, (size_t)n);
        if (parquet_rle_decode(p + 4, dl, 1, defs, (size_t)n) != 0)
            return col_fail(cr, err, errlen, "malformed definition levels");
        at = 4 + (size_t)dl;
        k = 0;
        for (int64_t i = 0; i < n; i++)
            k += defs[i] != 0;
    }
    const uint8_t *v = p + at;
    size_t vlen = len - at, w = d->width;
    if (enc == PQ_ENC_RLE_DICTIONARY || enc == 2 /* PLAIN_DICTIONARY */) {
        if (!cr->has_dict)
            return col_fail(cr, err, errlen, "dictionary-encoded page without a dictionary");
        uint32_t *idx = scratch(&cr->idx, &cr->cap_idx, k);
        if (k > 0) {
            if (vlen < 1 || v[0] > 32)
                return col_fail(cr, err, errlen, "malformed dictionary indices");
            if (v[0] == 0)
                memset(idx, 0, k * sizeof *idx);
            else if (parquet_rle_decode(v + 1, vlen - 1, v[0], idx, k) != 0)
                return col_fail(cr, err, errlen, "malformed dictionary indices");
        }
        size_t j = 0;
        for (int64_t i = 0; i < n; i++) {
            int rc;
            if (defs && !defs[i]) {
                rc = put_value(cr, NULL, 0, err, errlen);
            } else {
                uint32_t x = idx[j++];
                if (x >= cr->ndict)
                    return col_fail(cr, err, errlen, "dictionary index out of range");
                if (w)
                    rc = put_value(cr, (const uint8_t *)cr->dict.p + (size_t)x * w, w, err, errlen);
                else
                    rc = put_value(cr, (const uint8_t *)cr->dict.p + cr->dict_off[x],
                                   cr->dict_off[x + 1] - cr->dict_off[x], err, errlen);
            }
            if (rc)
                return rc;
        }
        return 0;
    }
    if (enc != PQ_ENC_PLAIN)
        return col_fail(cr, err, errlen, "an encoding cdc does not read");
    size_t off = 0, bit = 0;
    if (d->phys == PQ_BOOLEAN && (k + 7) / 8 > vlen)
        return col_fail(cr, err, errlen, "values cut short");
    if (w && d->phys != PQ_BOOLEAN && (uint64_t)k * w > vlen)
        return col_fail(cr, err, errlen, "values cut short");
    for (int64_t i = 0; i < n; i++) {
        int rc;
        if (defs && !defs[i]) {
            rc = put_value(cr, NULL, 0, err, errlen);
        } else if (d->phys == PQ_BOOLEAN) {
            uint8_t b = (v[bit / 8] >> (bit % 8)) & 1;
            bit++;
            rc = put_value(cr, &b, 1, err, errlen);
        } else if (w) {
            rc = put_value(cr, v + off, w, err, errlen);
            off += w;
        } else {
            if (vlen - off < 4 || le32(v + off) > vlen - off - 4)
                return col_fail(cr, err, errlen, "values cut short");
            uint32_t l = le32(v + off);
            rc = put_value(cr, v + off + 4, l, err, errlen);
            off += 4 + (size_t)l;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int page(struct colread *cr, const struct chunk *ch, size_t *pos, size_t end,
                struct buf *raw, char *err, size_t errlen)
{
    const uint8_t *data = cr->rd->data;
    struct thrift_node hdr = {0};
    size_t used = 0;
    if (*pos >= end || thrift_decode(data + *pos, end - *pos, &hdr, &used) != 0)
        return col_fail(cr, err, errlen, "malformed page header");
    int64_t type = -1, usize = -1, csize = -1;
    t_int(&hdr, 1, &type);
    t_int(&hdr, 2, &usize);
    t_int(&hdr, 3, &csize);
    size_t body = *pos + used;
    int rc = 0;
    if (usize < 0 || csize < 0 || (uint64_t)csize > end - body || (size_t)usize > cr->budget) {
        rc = col_fail(cr, err, errlen, "page sizes out of range");
        goto out;
    }
    const uint8_t *p = data + body;
    if (ch->codec != PARQUET_UNCOMPRESSED || usize != csize) {
        if (ch->codec != PARQUET_UNCOMPRESSED && ch->codec != PARQUET_SNAPPY &&
            ch->codec != PARQUET_ZSTD) {
            rc = col_fail(cr, err, errlen, "a compression codec cdc does not read");
            goto out;
        }
        if (parquet_decompress((enum parquet_codec)ch->codec, p, (size_t)csize, (size_t)usize,
                               raw) != 0) {
            rc = col_fail(cr, err, errlen, "a page does not decompress");
            goto out;
        }
        p = (const uint8_t *)raw->p;
    }
    int64_t n = -1, enc = -1;
    if (type == PQ_PAGE_DICTIONARY) {
        const struct thrift_node *dh = t_kind(&hdr, 7, THRIFT_STRUCT);
        if (!dh || !t_int(dh, 1, &n) || (t_int(dh, 2, &enc) && enc != PQ_ENC_PLAIN && enc != 2))
            rc = col_fail(cr, err, errlen, "malformed dictionary page header");
        else
            rc = read_dict(cr, p, (size_t)usize, n, err, errlen);
    } else if (type == PQ_PAGE_DATA) {
        const struct thrift_node *dh = t_kind(&hdr, 5, THRIFT_STRUCT);
        if (!dh || !t_int(dh, 1, &n) || !t_int(dh, 2, &enc))
            rc = col_fail(cr, err, errlen, "malformed data page header");
        else
            rc = read_data(cr, p, (size_t)usize, n, enc, err, errlen);
    } else {
        rc = col_fail(cr, err, errlen, "a page type cdc does not read (only v1 data pages)");
    }
    *pos = body + (size_t)csize;
out:
    thrift_node_fini(&hdr);
    return rc;
}

/* Every decimal has at most its column's precision in digits (a value
 * that does not could not be written again). */
static int check_decimals(const struct colread *cr, char *err, size_t errlen)
{
    const struct parquet_column_data *d = cr->out;
    __int128 lim = 1;
    for (int i = 0; i < cr->rd->sc->fields[cr->col].precision; i++)
        lim *= 10;
    for (int64_t r = 0; r < d->rows; r++) {
        if (d->nulls[r])
            continue;
        __int128 v;
        if (d->phys == PQ_FIXED_LEN_BYTE_ARRAY) {
            const uint8_t *p = d->fixed + (size_t)r * d->width;
            if (d->width > 16)
                return col_fail(cr, err, errlen, "a decimal wider than 16 bytes");
            v = p[0] & 0x80 ? -1 : 0;
            for (uint32_t i = 0; i < d->width; i++)
                v = (__int128)((unsigned __int128)v << 8) | p[i];
        } else {
            v = parquet_data_int(d, r);
        }
        if (v >= lim || v <= -lim)
            return col_fail(cr, err, errlen, "a decimal with more digits than its precision");
    }
    return 0;
}

int parquet_reader_read(struct parquet_reader *rd, uint32_t rg, uint32_t col,
                        struct parquet_column_data *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (rg >= rd->nrgs || col >= rd->sc->nfields)
        return cdc_fail(err, errlen, CDC_EINVAL, "%s: no row group %u, column %u", rd->label, rg,
                        col);
    const struct chunk *ch = &rd->rgs[rg].cols[col];
    struct colread cr = {.rd = rd, .col = col, .out = out, .budget = rd->max_bytes};
    cr.optional = !rd->sc->fields[col].required;
    out->rows = rd->rgs[rg].rows;
    out->phys = rd->phys[col];
    out->width = out->phys == PQ_BOOLEAN                ? 1
                 : out->phys == PQ_INT32                ? 4
                 : out->phys == PQ_FLOAT                ? 4
                 : out->phys == PQ_INT64                ? 8
                 : out->phys == PQ_DOUBLE               ? 8
                 : out->phys == PQ_FIXED_LEN_BYTE_ARRAY ? rd->type_len[col]
                                                        : 0;
    size_t rows = (size_t)out->rows;
    if ((uint64_t)rows * ((uint64_t)out->width + 5) > rd->max_bytes)
        return col_fail(&cr, err, errlen, "more data than cdc reads at once");
    out->nulls = xcalloc(rows ? rows : 1, 1);
    if (out->width)
        out->fixed = xcalloc(rows ? rows : 1, out->width);
    else
        out->off = xcalloc(rows + 1, sizeof *out->off);
    size_t pos = (size_t)(ch->dict_off >= 0 ? ch->dict_off : ch->data_off);
    size_t end = pos + (size_t)ch->size;
    struct buf raw = BUF_INIT;
    int rc = 0;
    while (rc == 0 && cr.row < out->rows)
        rc = page(&cr, ch, &pos, end, &raw, err, errlen);
    buf_fini(&raw);
    buf_fini(&cr.dict);
    free(cr.dict_off);
    free(cr.defs);
    free(cr.idx);
    if (rc == 0 && rd->sc->fields[col].type == ICE_DECIMAL)
        rc = check_decimals(&cr, err, errlen);
    return rc;
}

void parquet_column_data_fini(struct parquet_column_data *d)
{
    free(d->nulls);
    free(d->fixed);
    free(d->off);
    buf_fini(&d->bytes);
    memset(d, 0, sizeof *d);
}

int64_t parquet_data_int(const struct parquet_column_data *d, int64_t r)
{
    const uint8_t *p = d->fixed + (size_t)r * d->width;
    if (d->phys == PQ_BOOLEAN)
        return p[0] != 0;
    uint64_t u = 0;
    for (uint32_t i = 0; i < d->width && i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    if (d->width == 4)
        return (int32_t)(uint32_t)u;
    return (int64_t)u;
}

double parquet_data_double(const struct parquet_column_data *d, int64_t r)
{
    const uint8_t *p = d->fixed + (size_t)r * d->width;
    if (d->phys == PQ_FLOAT) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    double x;
    memcpy(&x, p, 8);
    return x;
}

const uint8_t *parquet_data_bytes(const struct parquet_column_data *d, int64_t r, size_t *n)
{
    if (d->width) {
        *n = d->width;
        return d->fixed + (size_t)r * d->width;
    }
    *n = d->off[r + 1] - d->off[r];
    return (const uint8_t *)d->bytes.p + d->off[r];
}
