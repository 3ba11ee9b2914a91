/* Parquet writer: values per column, row groups, pages, statistics (see
 * parquet_writer.h).  Footer and page headers are in parquet_meta.c, the
 * encodings and codecs in parquet_enc.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/valtext.h"
#include "lake/lake_conv.h"
#include "lake/parquet_column.h"
#include "lake/parquet_enc.h"
#include "lake/parquet_meta.h"
#include "lake/parquet_writer.h"
#include "util/err.h"
#include "util/mem.h"

struct parquet_writer {
    struct ice_schema *sc; /* owned copy */
    struct parquet_opts o;
    parquet_write_fn fn;
    void *arg;
    uint32_t ncols;
    struct pcol *cols;
    struct parquet_leaf *leaves; /* owned copy of each cols[i].leaf for the footer */
    int64_t pos;                 /* bytes written */
    int64_t rows, rg_rows;
    size_t rg_bytes;
    struct parquet_rg_meta *rgs;
    uint32_t nrgs;
    struct buf page, comp, hdr, levels; /* scratch */
    bool failed;
};

static const char *label(const struct parquet_writer *pw)
{
    return pw->o.label ? pw->o.label : "?";
}

static int out(struct parquet_writer *pw, const void *p, size_t n, char *err, size_t errlen)
{
    int rc = pw->fn(pw->arg, p, n, err, errlen);
    if (rc < 0)
        pw->failed = true;
    else
        pw->pos += (int64_t)n;
    return rc;
}

int parquet_write_to_buf(void *arg, const void *data, size_t n, char *err, size_t errlen)
{
    buf_put(arg, data, n);
    return 0;
}

int parquet_writer_new(struct parquet_writer **outp, const struct ice_schema *sc,
                       const struct parquet_opts *opts, parquet_write_fn fn, void *arg, char *err,
                       size_t errlen)
{
    *outp = NULL;
    struct parquet_writer *pw = xcalloc(1, sizeof *pw);
    pw->sc = ice_schema_copy(sc);
    if (opts)
        pw->o = *opts;
    if (!pw->o.row_group_bytes)
        pw->o.row_group_bytes = 128u << 20;
    if (!pw->o.page_bytes)
        pw->o.page_bytes = 1u << 20;
    if (!pw->o.dict_max_bytes)
        pw->o.dict_max_bytes = 1u << 20;
    pw->fn = fn;
    pw->arg = arg;
    pw->ncols = pw->sc->nfields;
    pw->cols = xcalloc(pw->ncols ? pw->ncols : 1, sizeof *pw->cols);
    pw->leaves = xcalloc(pw->ncols ? pw->ncols : 1, sizeof *pw->leaves);
    for (uint32_t i = 0; i < pw->ncols; i++) {
        struct pcol *c = &pw->cols[i];
        const struct ice_field *f = &pw->sc->fields[i];
        if (parquet_leaf_init(&c->leaf, f) < 0) {
            cdc_fail(err, errlen, CDC_ENOTSUP, "table %s, column %s: type not supported", label(pw),
                     f->name);
            parquet_writer_free(pw);
            return CDC_ENOTSUP;
        }
        pw->leaves[i] = c->leaf;
        c->decimal = f->type == ICE_DECIMAL;
        switch (c->leaf.phys) {
        case PQ_BOOLEAN:
            c->width = 1;
            break;
        case PQ_INT32:
        case PQ_FLOAT:
            c->width = 4;
            break;
        case PQ_INT64:
        case PQ_DOUBLE:
            c->width = 8;
            break;
        case PQ_FIXED_LEN_BYTE_ARRAY:
            c->width = c->leaf.type_len;
            break;
        default:
            c->width = 0;
        }
        c->dict_allowed = !pw->o.no_dictionary && c->leaf.phys != PQ_BOOLEAN;
        c->dict_on = c->dict_allowed;
    }
    if (out(pw, "PAR1", 4, err, errlen) < 0) {
        parquet_writer_free(pw);
        return CDC_EIO;
    }
    *outp = pw;
    return 0;
}

static void chunk_meta_fini(struct parquet_chunk_meta *m)
{
    buf_fini(&m->min);
    buf_fini(&m->max);
}

void parquet_writer_free(struct parquet_writer *pw)
{
    if (!pw)
        return;
    for (uint32_t i = 0; i < pw->ncols; i++) {
        struct pcol *c = &pw->cols[i];
        parquet_column_fini(c);
    }
    for (uint32_t r = 0; r < pw->nrgs; r++) {
        for (uint32_t i = 0; i < pw->ncols; i++)
            chunk_meta_fini(&pw->rgs[r].cols[i]);
        free(pw->rgs[r].cols);
    }
    free(pw->rgs);
    free(pw->cols);
    free(pw->leaves);
    buf_fini(&pw->page);
    buf_fini(&pw->comp);
    buf_fini(&pw->hdr);
    buf_fini(&pw->levels);
    ice_schema_free(pw->sc);
    free(pw);
}

/* Starts a value of column col; false if the row already has one. */
static struct pcol *begin(struct parquet_writer *pw, uint32_t col, bool null)
{
    if (col >= pw->ncols)
        return NULL;
    struct pcol *c = &pw->cols[col];
    if (c->set) {
        c->bad = PCOL_TWICE;
        return NULL;
    }
    c->set = true;
    if (!c->leaf.f->required)
        buf_putc(&c->defs, null ? 0 : 1);
    return c;
}

void parquet_add_null(struct parquet_writer *pw, uint32_t col)
{
    struct pcol *c = begin(pw, col, true);
    if (!c)
        return;
    if (c->leaf.f->required)
        c->bad = PCOL_NULL;
    c->nulls++;
}

/* Checks that a value's kind fits the column; marks the row bad if not. */
static struct pcol *begin_kind(struct parquet_writer *pw, uint32_t col, enum parquet_phys phys,
                               bool decimal)
{
    if (col < pw->ncols && (pw->cols[col].leaf.phys != phys || pw->cols[col].decimal != decimal)) {
        pw->cols[col].bad = PCOL_KIND;
        pw->cols[col].set = true;
        return NULL;
    }
    return begin(pw, col, false);
}

void parquet_add_bool(struct parquet_writer *pw, uint32_t col, bool v)
{
    struct pcol *c = begin_kind(pw, col, PQ_BOOLEAN, false);
    if (!c)
        return;
    uint8_t b = v;
    parquet_column_push(c, &b, 1, 0);
}

void parquet_add_i32(struct parquet_writer *pw, uint32_t col, int32_t v)
{
    struct pcol *c = begin_kind(pw, col, PQ_INT32, false);
    if (!c)
        return;
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    parquet_column_push(c, le, 4, pw->o.dict_max_bytes);
}

void parquet_add_i64(struct parquet_writer *pw, uint32_t col, int64_t v)
{
    struct pcol *c = begin_kind(pw, col, PQ_INT64, false);
    if (!c)
        return;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)((uint64_t)v >> (8 * i));
    parquet_column_push(c, le, 8, pw->o.dict_max_bytes);
}

void parquet_add_f32(struct parquet_writer *pw, uint32_t col, float v)
{
    struct pcol *c = begin_kind(pw, col, PQ_FLOAT, false);
    if (!c)
        return;
    parquet_column_push(c, &v, 4, pw->o.dict_max_bytes); /* x86-64 and arm64 are little-endian */
    if (isnan(v))
        c->nans++;
}

void parquet_add_f64(struct parquet_writer *pw, uint32_t col, double v)
{
    struct pcol *c = begin_kind(pw, col, PQ_DOUBLE, false);
    if (!c)
        return;
    parquet_column_push(c, &v, 8, pw->o.dict_max_bytes);
    if (isnan(v))
        c->nans++;
}

void parquet_add_bytes(struct parquet_writer *pw, uint32_t col, const void *p, size_t n)
{
    if (col < pw->ncols && pw->cols[col].leaf.phys == PQ_FIXED_LEN_BYTE_ARRAY &&
        !pw->cols[col].decimal && n != pw->cols[col].width) {
        pw->cols[col].bad = PCOL_KIND;
        pw->cols[col].set = true;
        return;
    }
    enum parquet_phys phys = col < pw->ncols && pw->cols[col].leaf.phys == PQ_FIXED_LEN_BYTE_ARRAY
                                 ? PQ_FIXED_LEN_BYTE_ARRAY
                                 : PQ_BYTE_ARRAY;
    struct pcol *c = begin_kind(pw, col, phys, false);
    if (!c)
        return;
    parquet_column_push(c, p, n, pw->o.dict_max_bytes);
}

void parquet_add_decimal(struct parquet_writer *pw, uint32_t col, __int128 v)
{
    struct pcol *c = col < pw->ncols ? &pw->cols[col] : NULL;
    if (!c || !c->decimal) {
        if (c) {
            c->bad = PCOL_KIND;
            c->set = true;
        }
        return;
    }
    if (!begin(pw, col, false))
        return;
    uint8_t tmp[16];
    if (c->leaf.phys == PQ_INT32) {
        int32_t x = (int32_t)v;
        uint8_t le[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
        parquet_column_push(c, le, 4, pw->o.dict_max_bytes);
    } else if (c->leaf.phys == PQ_INT64) {
        for (int i = 0; i < 8; i++)
            tmp[i] = (uint8_t)((uint64_t)(int64_t)v >> (8 * i));
        parquet_column_push(c, tmp, 8, pw->o.dict_max_bytes);
    } else {
        lake_decimal_be(v, tmp, c->width);
        parquet_column_push(c, tmp, c->width, pw->o.dict_max_bytes);
    }
}

int parquet_add_text(struct parquet_writer *pw, uint32_t col, const char *s, size_t n, char *err,
                     size_t errlen)
{
    if (col >= pw->ncols)
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s: no column %u", label(pw), col);
    const struct ice_field *f = pw->cols[col].leaf.f;
    bool b;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    __int128 q;
    uint8_t u[16];
    int rc = 0;
    switch (f->type) {
    case ICE_BOOLEAN:
        if (!(rc = valtext_bool(s, n, &b)))
            parquet_add_bool(pw, col, b);
        break;
    case ICE_INT:
        if (!(rc = valtext_i32(s, n, &i32)))
            parquet_add_i32(pw, col, i32);
        break;
    case ICE_DATE:
        if (!(rc = valtext_date(s, n, &i32)))
            parquet_add_i32(pw, col, i32);
        break;
    case ICE_LONG:
        if (!(rc = valtext_i64(s, n, &i64)))
            parquet_add_i64(pw, col, i64);
        break;
    case ICE_TIME:
        if (!(rc = valtext_time(s, n, &i64)))
            parquet_add_i64(pw, col, i64);
        break;
    case ICE_TIMESTAMP:
    case ICE_TIMESTAMPTZ:
        if (!(rc = valtext_timestamp(s, n, &i64)))
            parquet_add_i64(pw, col, i64);
        break;
    case ICE_FLOAT:
        if (!(rc = valtext_f32(s, n, &f32)))
            parquet_add_f32(pw, col, f32);
        break;
    case ICE_DOUBLE:
        if (!(rc = valtext_f64(s, n, &f64)))
            parquet_add_f64(pw, col, f64);
        break;
    case ICE_DECIMAL:
        if (!(rc = valtext_decimal(s, n, f->precision, f->scale, &q)))
            parquet_add_decimal(pw, col, q);
        break;
    case ICE_UUID:
        if (!(rc = valtext_uuid(s, n, u)))
            parquet_add_bytes(pw, col, u, 16);
        break;
    case ICE_BINARY: {
        struct buf tmp = BUF_INIT;
        if (!(rc = valtext_bytea(s, n, &tmp)))
            parquet_add_bytes(pw, col, tmp.p, tmp.len);
        buf_fini(&tmp);
        break;
    }
    case ICE_STRING:
    case ICE_FIXED:
        parquet_add_bytes(pw, col, s, n);
        break;
    }
    if (rc < 0) {
        char t[40];
        ice_type_format(f, t, sizeof t);
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s, column %s: \"%.*s\" is not a %s value",
                        label(pw), f->name, (int)(n > 64 ? 64 : n), s, t);
    }
    return 0;
}

/* Drops the values the current row added, after a bad row. */
static void rollback(struct pcol *c)
{
    c->defs.len = c->ok_defs;
    c->vals.len = c->ok_vals;
    c->nvals = c->ok_nvals;
    c->nulls = c->ok_nulls;
    c->nans = c->ok_nans;
}

static size_t open_bytes(const struct parquet_writer *pw)
{
    size_t n = 0;
    for (uint32_t i = 0; i < pw->ncols; i++)
        n += pw->cols[i].vals.len + pw->cols[i].defs.len;
    return n;
}

static int writer_out(void *arg, const void *p, size_t n, char *err, size_t errlen)
{
    return out(arg, p, n, err, errlen);
}

static int flush_row_group(struct parquet_writer *pw, char *err, size_t errlen)
{
    if (pw->rg_rows == 0)
        return 0;
    pw->rgs = xrealloc(pw->rgs, (pw->nrgs + 1) * sizeof *pw->rgs);
    struct parquet_rg_meta *rg = &pw->rgs[pw->nrgs++];
    memset(rg, 0, sizeof *rg);
    rg->cols = xcalloc(pw->ncols ? pw->ncols : 1, sizeof *rg->cols);
    rg->num_rows = pw->rg_rows;
    rg->file_offset = pw->pos;
    struct parquet_page_out o = {
        .codec = pw->o.codec,
        .level = pw->o.zstd_level,
        .page_bytes = pw->o.page_bytes,
        .write = writer_out,
        .arg = pw,
        .pos = &pw->pos,
        .page = &pw->page,
        .comp = &pw->comp,
        .hdr = &pw->hdr,
        .levels = &pw->levels,
    };
    for (uint32_t i = 0; i < pw->ncols; i++) {
        int rc = parquet_column_write(&pw->cols[i], &o, pw->rg_rows, &rg->cols[i], err, errlen);
        if (rc < 0) {
            pw->failed = true;
            return rc;
        }
        rg->total_byte_size += rg->cols[i].uncompressed;
        rg->total_compressed += rg->cols[i].compressed;
    }
    pw->rg_rows = 0;
    return 0;
}

int parquet_end_row(struct parquet_writer *pw, char *err, size_t errlen)
{
    const struct pcol *bad = NULL;
    for (uint32_t i = 0; i < pw->ncols && !bad; i++)
        if (!pw->cols[i].set || pw->cols[i].bad)
            bad = &pw->cols[i];
    if (bad) {
        const char *why = !bad->set                ? "no value given"
                          : bad->bad == PCOL_NULL  ? "NULL in a required column"
                          : bad->bad == PCOL_TWICE ? "two values in one row"
                                                   : "value of the wrong type";
        int rc = cdc_fail(err, errlen, CDC_EINVAL, "table %s, column %s: %s", label(pw),
                          bad->leaf.f->name, why);
        for (uint32_t i = 0; i < pw->ncols; i++) {
            rollback(&pw->cols[i]);
            pw->cols[i].set = false;
            pw->cols[i].bad = PCOL_OK;
        }
        return rc;
    }
    for (uint32_t i = 0; i < pw->ncols; i++)
        parquet_column_commit_row(&pw->cols[i]);
    pw->rows++;
    pw->rg_rows++;
    if ((pw->rg_rows & 255) == 0 && open_bytes(pw) >= pw->o.row_group_bytes)
        return flush_row_group(pw, err, errlen);
    return 0;
}

int64_t parquet_writer_rows(const struct parquet_writer *pw)
{
    return pw->rows;
}

int64_t parquet_writer_bytes(const struct parquet_writer *pw)
{
    return pw->pos + (int64_t)open_bytes(pw);
}

int parquet_writer_finish(struct parquet_writer *pw, struct parquet_file_info *info, char *err,
                          size_t errlen)
{
    memset(info, 0, sizeof *info);
    if (pw->failed)
        return cdc_fail(err, errlen, CDC_EIO, "table %s: an earlier write failed", label(pw));
    int rc = flush_row_group(pw, err, errlen);
    if (rc < 0)
        return rc;
    struct buf json = BUF_INIT, foot = BUF_INIT;
    ice_schema_json(&json, pw->sc);
    parquet_meta_footer(&foot, pw->leaves, pw->ncols, pw->rgs, pw->nrgs, pw->rows, pw->o.codec,
                        json.p);
    uint32_t n = (uint32_t)foot.len;
    char tail[8] = {(char)n, (char)(n >> 8), (char)(n >> 16), (char)(n >> 24), 'P', 'A', 'R', '1'};
    if ((rc = out(pw, foot.p, foot.len, err, errlen)) < 0 ||
        (rc = out(pw, tail, 8, err, errlen)) < 0) {
        buf_fini(&json);
        buf_fini(&foot);
        return rc;
    }
    buf_fini(&json);
    buf_fini(&foot);

    info->rows = pw->rows;
    info->size = pw->pos;
    info->ncols = pw->ncols;
    info->cols = xcalloc(pw->ncols ? pw->ncols : 1, sizeof *info->cols);
    for (uint32_t i = 0; i < pw->ncols; i++) {
        const struct pcol *c = &pw->cols[i];
        struct parquet_col_metrics *m = &info->cols[i];
        m->field_id = c->leaf.f->id;
        m->values = c->fvalues;
        m->nulls = c->fnulls;
        m->nans = c->fnans;
        m->size = c->fsize;
        if (c->fst.has) {
            parquet_stats_iceberg(c, &c->fst, true, &m->lower);
            parquet_stats_iceberg(c, &c->fst, false, &m->upper);
            /* Long strings and binaries would bloat manifests: no bounds
             * (they are optional) rather than truncated ones. */
            m->has_bounds = m->lower.len <= 64 && m->upper.len <= 64;
            if (!m->has_bounds) {
                buf_fini(&m->lower);
                buf_fini(&m->upper);
            }
        }
    }
    info->nrow_groups = pw->nrgs;
    info->row_group_offsets = xcalloc(pw->nrgs ? pw->nrgs : 1, sizeof *info->row_group_offsets);
    for (uint32_t r = 0; r < pw->nrgs; r++)
        info->row_group_offsets[r] = pw->rgs[r].file_offset;
    return 0;
}

void parquet_file_info_fini(struct parquet_file_info *info)
{
    for (uint32_t i = 0; i < info->ncols; i++) {
        buf_fini(&info->cols[i].lower);
        buf_fini(&info->cols[i].upper);
    }
    free(info->cols);
    free(info->row_group_offsets);
    memset(info, 0, sizeof *info);
}
