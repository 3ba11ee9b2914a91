/* Decimal byte forms and the Iceberg type of a source column (see
 * lake_conv.h). */

#include "lake/lake_conv.h"

void lake_decimal_be(__int128 v, uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        out[len - 1 - i] = (uint8_t)(v & 0xff);
        v >>= 8; /* arithmetic: sign-extends */
    }
}

size_t lake_decimal_min_bytes(__int128 v, uint8_t out[16])
{
    size_t len = 1;
    /* Smallest len such that v fits in len signed bytes. */
    while (len < 16) {
        __int128 lim = (__int128)1 << (8 * len - 1);
        if (v >= -lim && v < lim)
            break;
        len++;
    }
    lake_decimal_be(v, out, len);
    return len;
}

uint32_t lake_decimal_fixed_len(int precision)
{
    /* The smallest n with 10^precision - 1 < 2^(8n-1). */
    __int128 max = 1;
    for (int i = 0; i < precision; i++)
        max *= 10;
    max -= 1;
    uint32_t n = 1;
    while (n < 16 && max >= ((__int128)1 << (8 * n - 1)))
        n++;
    return n;
}

void lake_type_for_column(const struct cdc_column *col, struct ice_field *f)
{
    f->precision = f->scale = 0;
    f->len = 0;
    switch (col->type_oid) {
    case 16:
        f->type = ICE_BOOLEAN;
        return;
    case 17:
        f->type = ICE_BINARY;
        return;
    case 21:
    case 23:
        f->type = ICE_INT;
        return;
    case 20:
    case 26: /* oid is unsigned 32-bit: a long holds it */
        f->type = ICE_LONG;
        return;
    case 700:
        f->type = ICE_FLOAT;
        return;
    case 701:
        f->type = ICE_DOUBLE;
        return;
    case 1082:
        f->type = ICE_DATE;
        return;
    case 1083:
        f->type = ICE_TIME;
        return;
    case 1114:
        f->type = ICE_TIMESTAMP;
        return;
    case 1184:
        f->type = ICE_TIMESTAMPTZ;
        return;
    case 2950:
        f->type = ICE_UUID;
        f->len = 16;
        return;
    case 1700:
        /* numeric(p,s): typmod = ((p << 16) | s) + 4; unconstrained numeric,
         * p > 38 and negative scales have no Iceberg decimal: string. */
        if (col->typmod >= 4) {
            int p = ((col->typmod - 4) >> 16) & 0xffff, s = (col->typmod - 4) & 0xffff;
            if (p >= 1 && p <= 38 && s <= p) {
                f->type = ICE_DECIMAL;
                f->precision = (uint8_t)p;
                f->scale = (uint8_t)s;
                return;
            }
        }
        f->type = ICE_STRING;
        return;
    default:
        f->type = ICE_STRING;
        return;
    }
}

void lake_type_for_class(const struct cdc_column *col, struct ice_field *f)
{
    f->precision = f->scale = 0;
    f->len = 0;
    switch (col->type) {
    case CDC_T_INT:
        f->type = ICE_LONG;
        return;
    case CDC_T_FLOAT:
        f->type = ICE_DOUBLE;
        return;
    case CDC_T_BOOL:
        f->type = ICE_BOOLEAN;
        return;
    case CDC_T_BYTES:
        f->type = ICE_BINARY;
        return;
    case CDC_T_UUID:
        f->type = ICE_UUID;
        f->len = 16;
        return;
    case CDC_T_DATE:
        f->type = ICE_DATE;
        return;
    case CDC_T_TIMESTAMP:
        f->type = ICE_TIMESTAMP;
        return;
    case CDC_T_TIMESTAMPTZ:
        f->type = ICE_TIMESTAMPTZ;
        return;
    default:
        f->type = ICE_STRING;
        return;
    }
}
