#include <string.h>

#include "source/mysql/myvalue.h"
#include "source/mysql/rows.h"
#include "util/err.h"

bool rows_is_rows_event(uint8_t type)
{
    return (type >= BINLOG_WRITE_ROWS_V1 && type <= BINLOG_DELETE_ROWS_V1) ||
           (type >= BINLOG_WRITE_ROWS_V2 && type <= BINLOG_DELETE_ROWS_V2);
}

bool rows_is_compressed(uint8_t type)
{
    return type >= BINLOG_WRITE_ROWS_COMPRESSED_V1 && type <= BINLOG_DELETE_ROWS_COMPRESSED;
}

static inline bool bit_set(const uint8_t *bm, uint32_t i)
{
    return (bm[i / 8] >> (i % 8)) & 1;
}

int rows_parse(const struct binlog_format *fmt, const struct binlog_event *ev,
               struct rows_event *out, char *err, size_t errlen)
{
    uint8_t t = ev->h.type;
    bool v2 = t >= BINLOG_WRITE_ROWS_V2;
    int kind = v2 ? t - BINLOG_WRITE_ROWS_V2 : t - BINLOG_WRITE_ROWS_V1;
    out->op = kind == 0 ? 'c' : kind == 1 ? 'u' : 'd';
    size_t pl = fmt->post_len[t] ? fmt->post_len[t] : (v2 ? 10 : 8);
    const uint8_t *p = ev->body, *end = ev->body + ev->body_len;
    if (ev->body_len < pl || pl < 8)
        return cdc_fail(err, errlen, CDC_EINVAL, "rows event too short");
    out->table_id = pl == 6 ? binlog_u32(p) : binlog_u48(p);
    out->flags = (uint16_t)binlog_u16(p + pl - (v2 ? 4 : 2));
    p += pl;
    if (v2) {
        /* extra_data_len(2) counts itself */
        size_t extra = binlog_u16(ev->body + pl - 2);
        if (extra < 2 || (size_t)(end - p) < extra - 2)
            return cdc_fail(err, errlen, CDC_EINVAL, "rows event: bad extra data length");
        p += extra - 2;
    }
    uint64_t ncols;
    if (binlog_lenenc(&p, end, &ncols) || ncols == 0 || ncols > 4096)
        return cdc_fail(err, errlen, CDC_EINVAL, "rows event: bad column count");
    out->ncols = (uint32_t)ncols;
    size_t nb = (out->ncols + 7) / 8;
    if ((size_t)(end - p) < nb * (out->op == 'u' ? 2 : 1))
        return cdc_fail(err, errlen, CDC_EINVAL, "rows event: no column bitmap");
    out->present = p;
    p += nb;
    out->present_after = out->present;
    if (out->op == 'u') {
        out->present_after = p;
        p += nb;
    }
    out->rows = p;
    out->end = end;
    return 0;
}

int rows_read_image(const struct rows_event *re, const struct tablemap *tm, const uint8_t *present,
                    const uint8_t **cur, struct cdc_val *vals, struct buf *data,
                    struct mycharset_conv *cv, char *err, size_t errlen)
{
    if (re->ncols != tm->ncols)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "table %s.%s: rows event has %u columns but its table map %u", tm->db,
                        tm->table, re->ncols, tm->ncols);
    uint32_t npresent = 0;
    for (uint32_t i = 0; i < re->ncols; i++)
        npresent += bit_set(present, i);
    const uint8_t *p = *cur;
    size_t nb = (npresent + 7) / 8;
    if ((size_t)(re->end - p) < nb)
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s: row image truncated", tm->db,
                        tm->table);
    const uint8_t *nulls = p;
    p += nb;
    uint32_t k = 0; /* index among the present columns */
    for (uint32_t i = 0; i < re->ncols; i++) {
        struct cdc_val *v = &vals[i];
        v->off = 0;
        v->len = 0;
        if (!bit_set(present, i)) {
            v->kind = CDC_V_UNCHANGED;
            continue;
        }
        if (bit_set(nulls, k++)) {
            v->kind = CDC_V_NULL;
            continue;
        }
        size_t start = data->len, used = 0;
        char e[160];
        int rc = myvalue_decode(&tm->cols[i], p, re->end, &used, data, cv, e, sizeof e);
        if (rc)
            return cdc_fail(err, errlen, rc, "table %s.%s column %s: %s", tm->db, tm->table,
                            tm->cols[i].name, e);
        p += used;
        if (data->len - start > UINT32_MAX)
            return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s column %s: value over 4 GB",
                            tm->db, tm->table, tm->cols[i].name);
        v->kind = CDC_V_TEXT;
        v->off = (uint32_t)start;
        v->len = (uint32_t)(data->len - start);
        buf_putc(data, '\0');
    }
    *cur = p;
    return 0;
}
