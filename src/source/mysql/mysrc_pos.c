/* MySQL source: positions (see mysrc_int.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/mysrc_int.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/str.h"

void mysrc_place_fini(struct mysrc_place *p)
{
    free(p->gtid);
    memset(p, 0, sizeof *p);
}

void mysrc_place_copy(struct mysrc_place *dst, const struct mysrc_place *src)
{
    if (dst == src)
        return;
    free(dst->gtid);
    dst->scalar = src->scalar;
    str_copy(dst->file, sizeof dst->file, src->file);
    dst->pos = src->pos;
    dst->gtid = xstrdup(src->gtid ? src->gtid : "");
}

int mysrc_load_position(struct mysrc *src, char *err, size_t errlen)
{
    char *v = NULL;
    int rc = store_kv_get(src->store, MYSRC_KEY_POSITION, &v, err, errlen);
    if (rc || !v)
        return rc;
    unsigned long long scalar = 0;
    unsigned pos = 0;
    char file[MYDECODE_FILE_MAX], gtid[1024];
    if (sscanf(v, "%llu %511s %u %1023s", &scalar, file, &pos, gtid) != 4) {
        rc = cdc_fail(err, errlen, CDC_EINVAL,
                      "state store: %s holds \"%s\", not a binlog position", MYSRC_KEY_POSITION, v);
        free(v);
        return rc;
    }
    free(v);
    mysrc_place_fini(&src->stored);
    src->stored.scalar = scalar;
    str_copy(src->stored.file, sizeof src->stored.file, file);
    src->stored.pos = pos;
    src->stored.gtid = xstrdup(strcmp(gtid, "-") == 0 ? "" : gtid);
    src->have_stored = true;
    return 0;
}

int mysrc_store_position(struct mysrc *src, const struct mysrc_place *place, char *err,
                         size_t errlen)
{
    char *v = xasprintf("%" PRIu64 " %s %u %s", place->scalar, place->file, place->pos,
                        place->gtid && place->gtid[0] ? place->gtid : "-");
    int rc = store_kv_put(src->store, MYSRC_KEY_POSITION, v, err, errlen);
    free(v);
    if (!rc) {
        mysrc_place_copy(&src->stored, place);
        src->have_stored = true;
    }
    return rc;
}

/* ---------- commits not yet confirmed: a ring, oldest at headpend ---------- */

static struct mysrc_place *pend_at(const struct mysrc *src, size_t i)
{
    return &src->pend[(src->headpend + i) % src->cappend];
}

void mysrc_pending_push(struct mysrc *src, const struct mysrc_place *place)
{
    if (src->npend == src->cappend) {
        size_t cap = src->cappend ? src->cappend * 2 : 64;
        struct mysrc_place *p = xcalloc(cap, sizeof *p);
        for (size_t i = 0; i < src->npend; i++)
            p[i] = *pend_at(src, i);
        free(src->pend);
        src->pend = p;
        src->cappend = cap;
        src->headpend = 0;
    }
    struct mysrc_place *slot = pend_at(src, src->npend);
    memset(slot, 0, sizeof *slot);
    mysrc_place_copy(slot, place);
    src->npend++;
}

const struct mysrc_place *mysrc_pending_take(struct mysrc *src, uint64_t scalar)
{
    const struct mysrc_place *best = NULL;
    while (src->npend && pend_at(src, 0)->scalar <= scalar) {
        /* Keep the newest one taken where the next push cannot reach it:
         * in src->stored's place the caller copies it at once. */
        if (src->npend > 1 && pend_at(src, 1)->scalar <= scalar) {
            mysrc_place_fini(pend_at(src, 0));
            src->headpend = (src->headpend + 1) % src->cappend;
            src->npend--;
            continue;
        }
        best = pend_at(src, 0);
        break;
    }
    return best;
}

const struct mysrc_place *mysrc_pending_find(const struct mysrc *src, uint64_t scalar)
{
    for (size_t i = src->npend; i-- > 0;)
        if (pend_at(src, i)->scalar == scalar)
            return pend_at(src, i);
    return NULL;
}

void mysrc_pending_drop_after(struct mysrc *src, uint64_t scalar)
{
    while (src->npend && pend_at(src, src->npend - 1)->scalar > scalar) {
        mysrc_place_fini(pend_at(src, src->npend - 1));
        src->npend--;
    }
}

void mysrc_pending_clear(struct mysrc *src)
{
    for (size_t i = 0; i < src->npend; i++)
        mysrc_place_fini(pend_at(src, i));
    src->npend = 0;
    src->headpend = 0;
}

/* ---------- positions as text: "<file sequence>:<offset>" ---------- */

int mysrc_parse_pos(const char *text, struct cdc_ack *pos, char *err, size_t errlen)
{
    pos->stream = 0; /* one stream */
    const char *colon = text ? strrchr(text, ':') : NULL;
    char *end = NULL;
    if (colon && colon > text) {
        uint32_t seq = binlog_file_seq(text, (size_t)(colon - text));
        if (seq == 0) {
            unsigned long long n = strtoull(text, &end, 10);
            if (end == colon && n <= UINT32_MAX)
                seq = (uint32_t)n;
        }
        unsigned long long off = strtoull(colon + 1, &end, 10);
        if (seq && colon[1] && *end == '\0' && off <= UINT32_MAX) {
            pos->pos = (uint64_t)seq << 32 | off;
            return 0;
        }
    }
    return cdc_fail(err, errlen, CDC_EINVAL,
                    "expected a binlog position like mysql-bin.000042:1234 (or 42:1234)");
}

void mysrc_format_pos(uint64_t pos, char *buf, size_t len)
{
    snprintf(buf, len, "%u:%u", (unsigned)(pos >> 32), (unsigned)pos);
}
