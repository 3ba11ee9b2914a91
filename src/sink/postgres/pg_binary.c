/* Source text -> COPY binary values of the mirror column's type (see
 * pg_binary.h).  The texts are parsed by core/valtext.h (PostgreSQL's
 * output formats), numeric's here; what they refuse, or what
 * the type's input function could read differently (a timestamp given
 * with an offset, which timestamp_in ignores), is refused. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "core/valtext.h"
#include "sink/postgres/pg_binary.h"
#include "util/err.h"
#include "util/str.h"

enum {
    T_BOOL = 16,
    T_BYTEA = 17,
    T_INT8 = 20,
    T_INT2 = 21,
    T_INT4 = 23,
    T_TEXT = 25,
    T_JSON = 114,
    T_FLOAT4 = 700,
    T_FLOAT8 = 701,
    T_BPCHAR = 1042,
    T_VARCHAR = 1043,
    T_DATE = 1082,
    T_TIMESTAMP = 1114,
    T_TIMESTAMPTZ = 1184,
    T_NUMERIC = 1700,
    T_UUID = 2950,
    T_JSONB = 3802,
};

/* Days and microseconds from 1970-01-01 (valtext) to 2000-01-01
 * (PostgreSQL's epoch). */
#define PG_EPOCH_DAYS   10957
#define PG_EPOCH_MICROS (10957LL * 86400 * 1000000)

/* Numeric's sign words, and the most digits taken from one text. */
#define NUM_POS    0x0000
#define NUM_NEG    0x4000
#define NUM_NAN    0xC000
#define NUM_PINF   0xD000
#define NUM_NINF   0xF000
#define NUM_DIGITS 4000
#define NUM_FRAC   1000

static void be16(struct buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, x, 2);
}

static void set_be32(char *p, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    memcpy(p, x, 4);
}

static void be32(struct buf *b, uint32_t v)
{
    char x[4];
    set_be32(x, v);
    buf_put(b, x, 4);
}

static void be64(struct buf *b, uint64_t v)
{
    be32(b, (uint32_t)(v >> 32));
    be32(b, (uint32_t)v);
}

void pgs_bin_header(struct buf *b)
{
    buf_put(b, "PGCOPY\n\377\r\n\0", 11);
    be32(b, 0); /* flags: no OIDs */
    be32(b, 0); /* no header extension */
}

void pgs_bin_tuple(struct buf *b, uint16_t ncols)
{
    be16(b, ncols);
}

void pgs_bin_null(struct buf *b)
{
    be32(b, 0xFFFFFFFFu);
}

bool pgs_bin_type_ok(uint32_t type)
{
    switch (type) {
    case T_BOOL:
    case T_BYTEA:
    case T_INT8:
    case T_INT2:
    case T_INT4:
    case T_TEXT:
    case T_JSON:
    case T_FLOAT4:
    case T_FLOAT8:
    case T_BPCHAR:
    case T_VARCHAR:
    case T_DATE:
    case T_TIMESTAMP:
    case T_TIMESTAMPTZ:
    case T_NUMERIC:
    case T_UUID:
    case T_JSONB:
        return true;
    default:
        return false;
    }
}

static void numeric_head(struct buf *b, size_t ndigits, int weight, uint16_t sign, size_t dscale)
{
    be32(b, (uint32_t)(8 + 2 * ndigits));
    be16(b, (uint16_t)ndigits);
    be16(b, (uint16_t)(int16_t)weight);
    be16(b, sign);
    be16(b, (uint16_t)dscale);
}

/* "-12.3400" -> base-10000 digits on either side of the point, the display
 * scale the digits after the point give (numeric_in's), without leading or
 * trailing zero digits.  No exponent (numeric_out never prints one). */
static int put_numeric(struct buf *b, const char *s, size_t n)
{
    if (str_is(s, n, "NaN") || str_is(s, n, "Infinity") || str_is(s, n, "-Infinity")) {
        numeric_head(b, 0, 0, s[0] == 'N' ? NUM_NAN : s[0] == '-' ? NUM_NINF : NUM_PINF, 0);
        return 0;
    }
    size_t i = 0;
    uint16_t sign = NUM_POS;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        sign = s[i++] == '-' ? NUM_NEG : NUM_POS;
    size_t is = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t ie = i, fs = i, fe = i;
    if (i < n && s[i] == '.') {
        fs = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        fe = i;
    }
    if (i != n || (ie == is && fe == fs))
        return CDC_EINVAL;
    while (is < ie && s[is] == '0')
        is++;
    size_t ni = ie - is, nf = fe - fs;
    if (ni + nf > NUM_DIGITS || nf > NUM_FRAC)
        return CDC_EINVAL;
    size_t gi = (ni + 3) / 4, gf = (nf + 3) / 4, lead = gi * 4 - ni;
    uint16_t dig[NUM_DIGITS / 4 + 2];
    size_t k = 0;
    for (size_t g = 0; g < gi; g++) {
        unsigned v = 0;
        for (size_t j = 0; j < 4; j++) {
            size_t at = g * 4 + j;
            v = v * 10 + (at >= lead ? (unsigned)(s[is + at - lead] - '0') : 0);
        }
        dig[k++] = (uint16_t)v;
    }
    for (size_t g = 0; g < gf; g++) {
        unsigned v = 0;
        for (size_t j = 0; j < 4; j++) {
            size_t at = g * 4 + j;
            v = v * 10 + (at < nf ? (unsigned)(s[fs + at] - '0') : 0);
        }
        dig[k++] = (uint16_t)v;
    }
    int weight = (int)gi - 1;
    size_t from = 0;
    while (from < k && dig[from] == 0) {
        from++;
        weight--;
    }
    while (k > from && dig[k - 1] == 0)
        k--;
    if (k == from) {
        weight = 0;
        sign = NUM_POS;
    }
    numeric_head(b, k - from, weight, sign, nf);
    for (size_t d = from; d < k; d++)
        be16(b, dig[d]);
    return 0;
}

/* The text with its length (text, varchar, bpchar, json); jsonb's is
 * preceded by its format version. */
static void put_text(struct buf *b, const char *s, size_t n, bool jsonb)
{
    be32(b, (uint32_t)(n + jsonb));
    if (jsonb)
        buf_putc(b, 1);
    buf_put(b, s, n);
}

/* Whether a float valtext read, v, is to be refused: a text out
 * of the type's range is left to the server's input function, which
 * refuses it (strtod's ERANGE with a zero or an infinity; a subnormal
 * result is a value, which float4in and float8in keep). */
static bool float_refused(double v, const char *s, size_t n)
{
    return (errno == ERANGE && (v == 0 || isinf(v))) ||
           (isinf(v) && !str_is(s, n, "Infinity") && !str_is(s, n, "-Infinity"));
}

/* Whether a timestamp's text carries an offset (after its date). */
static bool has_offset(const char *s, size_t n)
{
    const char *sep = memchr(s, ' ', n);
    if (!sep)
        sep = memchr(s, 'T', n);
    for (const char *p = sep ? sep : s + n; p < s + n; p++)
        if (*p == '+' || *p == '-')
            return true;
    return false;
}

static int put_value(struct buf *b, uint32_t type, const char *s, size_t n)
{
    union {
        bool b;
        int32_t i32;
        int64_t i64;
        float f32;
        double f64;
        uint8_t uuid[16];
    } v;
    uint32_t u32;
    uint64_t u64;
    switch (type) {
    case T_BOOL:
        if (valtext_bool(s, n, &v.b) < 0)
            return CDC_EINVAL;
        be32(b, 1);
        buf_putc(b, v.b ? 1 : 0);
        return 0;
    case T_INT2:
        if (valtext_i32(s, n, &v.i32) < 0 || v.i32 < INT16_MIN || v.i32 > INT16_MAX)
            return CDC_EINVAL;
        be32(b, 2);
        be16(b, (uint16_t)(int16_t)v.i32);
        return 0;
    case T_INT4:
    case T_DATE:
        if (type == T_INT4
                ? valtext_i32(s, n, &v.i32) < 0
                : valtext_date(s, n, &v.i32) < 0 || (int64_t)v.i32 - PG_EPOCH_DAYS < INT32_MIN)
            return CDC_EINVAL;
        be32(b, 4);
        be32(b, (uint32_t)(type == T_DATE ? v.i32 - PG_EPOCH_DAYS : v.i32));
        return 0;
    case T_INT8:
        if (valtext_i64(s, n, &v.i64) < 0)
            return CDC_EINVAL;
        be32(b, 8);
        be64(b, (uint64_t)v.i64);
        return 0;
    case T_TIMESTAMP:
    case T_TIMESTAMPTZ:
        /* the session's TimeZone is UTC: a timestamptz without an offset
         * is read as UTC, as valtext reads it */
        if ((type == T_TIMESTAMP && has_offset(s, n)) || valtext_timestamp(s, n, &v.i64) < 0 ||
            v.i64 < INT64_MIN + PG_EPOCH_MICROS)
            return CDC_EINVAL;
        be32(b, 8);
        be64(b, (uint64_t)(v.i64 - PG_EPOCH_MICROS));
        return 0;
    case T_FLOAT4:
        errno = 0;
        if (valtext_f32(s, n, &v.f32) < 0 || float_refused(v.f32, s, n))
            return CDC_EINVAL;
        memcpy(&u32, &v.f32, 4);
        be32(b, 4);
        be32(b, u32);
        return 0;
    case T_FLOAT8:
        errno = 0;
        if (valtext_f64(s, n, &v.f64) < 0 || float_refused(v.f64, s, n))
            return CDC_EINVAL;
        memcpy(&u64, &v.f64, 8);
        be32(b, 8);
        be64(b, u64);
        return 0;
    case T_UUID:
        if (valtext_uuid(s, n, v.uuid) < 0)
            return CDC_EINVAL;
        be32(b, 16);
        buf_put(b, v.uuid, 16);
        return 0;
    case T_BYTEA: {
        size_t at = b->len;
        be32(b, 0);
        if (valtext_bytea(s, n, b) < 0 || b->len - at - 4 > INT32_MAX)
            return CDC_EINVAL;
        /* the length, known now, over the placeholder (not with be32: a
         * buf keeps a NUL after its end, which would land on the bytes) */
        set_be32(b->p + at, (uint32_t)(b->len - at - 4));
        return 0;
    }
    case T_NUMERIC:
        return put_numeric(b, s, n);
    case T_TEXT:
    case T_VARCHAR:
    case T_BPCHAR:
    case T_JSON:
    case T_JSONB:
        if (n > INT32_MAX - 1)
            return CDC_EINVAL;
        put_text(b, s, n, type == T_JSONB);
        return 0;
    default:
        return CDC_EINVAL;
    }
}

int pgs_bin_put(struct buf *b, uint32_t type, const char *s, size_t n)
{
    size_t at = b->len;
    int rc = put_value(b, type, s, n);
    if (rc < 0)
        b->len = at;
    return rc;
}
