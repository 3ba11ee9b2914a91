/* libFuzzer target for the mirror's COPY binary values (pg_binary.c): the
 * first byte picks a column type, the rest is the text.  Arbitrary bytes
 * never crash it; a refused text leaves the buffer as it was; an accepted
 * one is its declared length; a numeric decodes back to the text it came
 * from (without a '+', leading zeros or the sign of a zero), and an integer
 * to the number the text spells. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sink/postgres/pg_binary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t TYPES[] = {16,   17,   20,   21,   23,   25,   114,  700, 701,
                                 1042, 1043, 1082, 1114, 1184, 1700, 2950, 3802};

static uint32_t rd(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The input's numeric text as numeric_out would print the value: sign only
 * when not zero, no leading zeros, the digits after the point as given. */
static void normalize(const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    size_t is = i;
    while (i < n && s[i] != '.')
        i++;
    size_t ie = i;
    while (is < ie && s[is] == '0')
        is++;
    bool zero = is == ie;
    for (size_t k = ie; k < n; k++)
        if (s[k] >= '1' && s[k] <= '9')
            zero = false;
    if (neg && !zero)
        buf_putc(out, '-');
    if (is == ie)
        buf_putc(out, '0');
    buf_put(out, s + is, ie - is);
    if (ie + 1 < n)
        buf_put(out, s + ie, n - ie);
}

static void decode_numeric(const uint8_t *p, struct buf *out)
{
    uint32_t nd = rd(p, 2), sign = rd(p + 4, 2), dscale = rd(p + 6, 2);
    int weight = (int16_t)rd(p + 2, 2);
    if (sign == 0xC000 || sign == 0xD000 || sign == 0xF000) {
        buf_puts(out, sign == 0xC000 ? "NaN" : sign == 0xD000 ? "Infinity" : "-Infinity");
        return;
    }
    const uint8_t *d = p + 8;
    if (sign == 0x4000)
        buf_putc(out, '-');
    if (weight < 0) {
        buf_putc(out, '0');
    } else {
        for (int w = weight; w >= 0; w--) {
            int at = weight - w;
            uint32_t g = at < (int)nd ? rd(d + 2 * at, 2) : 0;
            buf_printf(out, w == weight ? "%u" : "%04u", g);
        }
    }
    if (dscale == 0)
        return;
    buf_putc(out, '.');
    struct buf frac = BUF_INIT;
    for (int w = -1; frac.len < dscale; w--) {
        int at = weight - w;
        uint32_t g = at >= 0 && at < (int)nd ? rd(d + 2 * at, 2) : 0;
        buf_printf(&frac, "%04u", g);
    }
    buf_put(out, frac.p, dscale);
    buf_fini(&frac);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t type = TYPES[data[0] % (sizeof TYPES / sizeof TYPES[0])];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    struct buf b = BUF_INIT;
    buf_puts(&b, "x");
    if (pgs_bin_put(&b, type, s, n) < 0) {
        if (b.len != 1)
            abort();
        buf_fini(&b);
        return 0;
    }
    const uint8_t *p = (const uint8_t *)b.p + 1;
    if (b.len < 5 || rd(p, 4) != b.len - 5)
        abort();
    p += 4;
    if (type == 1700) {
        struct buf want = BUF_INIT, got = BUF_INIT;
        if (n >= 3 && (s[n - 1] == 'N' || s[n - 1] == 'y'))
            buf_put(&want, s, n); /* NaN, Infinity, -Infinity */
        else
            normalize(s, n, &want);
        decode_numeric(p, &got);
        if (want.len != got.len || memcmp(want.p, got.p, want.len) != 0)
            abort();
        buf_fini(&want);
        buf_fini(&got);
    } else if (type == 20 || type == 21 || type == 23) {
        char *tmp = malloc(n + 1);
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        long long want = strtoll(tmp, NULL, 10);
        free(tmp);
        size_t len = b.len - 5;
        uint64_t v = len == 8 ? (uint64_t)rd(p, 4) << 32 | rd(p + 4, 4) : rd(p, (int)len);
        long long got = len == 8   ? (long long)(int64_t)v
                        : len == 4 ? (long long)(int32_t)v
                                   : (long long)(int16_t)v;
        if (got != want)
            abort();
    }
    buf_fini(&b);
    return 0;
}
