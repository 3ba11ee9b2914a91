#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/evcodec.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/mem.h"

/* CEV3 widened transaction and table ids to 64 bits and added the
 * extension word; CEV2 added the truncate block.  Both older ones are still
 * read. */
#define MAGIC    "CEV3"
#define MAGIC_V2 "CEV2"
#define MAGIC_V1 "CEV1"

enum {
    F_BEFORE = 1,
    F_AFTER = 2,
    F_KEY_ONLY = 4,
    F_SNAPSHOT = 8,
    F_UNUSED_16 = 16, /* was "the last snapshot row", never set: ignored */
    F_MSG_TX = 32,
    F_TABLE = 64,
    F_SNAPSHOT_ID = 128,
};

/* The extension word's bits: what follows the fixed header (CEV3).  A bit
 * this build does not know is refused: the entry is from a newer cdc. */
enum {
    X_STREAM = 1,   /* u32 pos.stream (absent: stream 0) */
    X_SNAP_ROW = 2, /* u64 snapshot_chunk, u32 snapshot_row of a snapshot row */
    X_SRCMETA = 4,  /* u32 src_row, str srcmeta bytes */
    X_ORIGIN = 8,   /* u64 origin.lsn, u64 origin.idx, u32 origin.stream */
    X_KNOWN = X_STREAM | X_SNAP_ROW | X_SRCMETA | X_ORIGIN,
};

enum { K_UNIQUE = 1, K_DEFERRABLE = 2 }; /* the table's key byte */

static void put_u8(struct buf *b, uint8_t v)
{
    buf_putc(b, (char)v);
}

static void put_le(struct buf *b, uint64_t v, int n)
{
    char tmp[8];
    for (int i = 0; i < n; i++)
        tmp[i] = (char)(v >> (8 * i));
    buf_put(b, tmp, (size_t)n);
}

static void put_str(struct buf *b, const char *s, size_t n)
{
    put_le(b, n, 4);
    buf_put(b, s, n);
}

static void put_row(struct buf *b, const struct cdc_event *ev, const struct cdc_val *row,
                    uint16_t n)
{
    for (uint16_t i = 0; i < n; i++) {
        put_u8(b, row[i].kind);
        if (row[i].kind == CDC_V_TEXT)
            put_str(b, cdc_val_ptr(ev, &row[i]), row[i].len);
    }
}

void evcodec_encode(struct buf *b, const struct cdc_event *ev)
{
    buf_put(b, MAGIC, 4);
    uint8_t flags = (ev->before ? F_BEFORE : 0) | (ev->after ? F_AFTER : 0) |
                    (ev->before_key_only ? F_KEY_ONLY : 0) | (ev->snapshot ? F_SNAPSHOT : 0) |
                    (ev->msg_transactional ? F_MSG_TX : 0) | (ev->tab ? F_TABLE : 0) |
                    (ev->snapshot_id ? F_SNAPSHOT_ID : 0);
    put_u8(b, ev->op);
    put_u8(b, flags);
    put_le(b, ev->part, 2);
    put_le(b, ev->pos.lsn, 8);
    put_le(b, ev->pos.idx, 8);
    put_le(b, ev->lsn, 8);
    put_le(b, ev->end_lsn, 8);
    put_le(b, (uint64_t)ev->commit_ts, 8);
    put_le(b, (uint64_t)ev->emit_ts, 8);
    put_le(b, ev->xid, 8);
    put_le(b, ev->table_order, 4);
    put_le(b, ev->total_order, 4);
    uint32_t ext = (ev->pos.stream ? X_STREAM : 0) | (ev->snapshot ? X_SNAP_ROW : 0) |
                   (ev->srcmeta ? X_SRCMETA : 0) | (ev->has_origin ? X_ORIGIN : 0);
    put_le(b, ext, 4);
    if (ext & X_STREAM)
        put_le(b, ev->pos.stream, 4);
    if (ext & X_ORIGIN) {
        put_le(b, ev->origin.lsn, 8);
        put_le(b, ev->origin.idx, 8);
        put_le(b, ev->origin.stream, 4);
    }
    if (ext & X_SNAP_ROW) {
        put_le(b, ev->snapshot_chunk, 8);
        put_le(b, ev->snapshot_row, 4);
    }
    if (ext & X_SRCMETA) {
        put_le(b, ev->src_row, 4);
        put_str(b, (const char *)ev->srcmeta->data, ev->srcmeta->len);
    }
    if (ev->snapshot_id)
        put_le(b, ev->snapshot_id, 8);
    const struct cdc_table *tab = ev->tab;
    if (tab) {
        /* The table block is length-prefixed so a reader can hash and cache it. */
        size_t at = b->len;
        put_le(b, 0, 4);
        put_le(b, tab->id, 8);
        put_le(b, tab->version, 4);
        put_str(b, tab->schema, strlen(tab->schema));
        put_str(b, tab->name, strlen(tab->name));
        put_str(b, tab->topic, strlen(tab->topic));
        put_u8(b, (uint8_t)tab->replident);
        put_u8(b, (uint8_t)((tab->key_unique ? K_UNIQUE : 0) |
                            (tab->key_deferrable ? K_DEFERRABLE : 0)));
        put_le(b, tab->ncols, 2);
        for (uint16_t i = 0; i < tab->ncols; i++) {
            const struct cdc_column *c = &tab->cols[i];
            put_str(b, c->name, strlen(c->name));
            put_str(b, c->type_name, strlen(c->type_name));
            put_le(b, c->type_oid, 4);
            put_le(b, (uint32_t)c->typmod, 4);
            put_u8(b, (uint8_t)c->type);
            put_u8(b, c->key);
        }
        uint32_t tlen = (uint32_t)(b->len - at - 4);
        for (int i = 0; i < 4; i++)
            b->p[at + (size_t)i] = (char)(tlen >> (8 * i));
    }
    if (ev->op == CDC_OP_TRUNCATE) {
        put_u8(b, ev->trunc_opts);
        put_le(b, ev->trunc_index, 2);
        put_le(b, ev->trunc_count, 2);
        put_str(b, ev->data, ev->before || ev->after ? 0 : ev->data_len);
    }
    uint16_t n = cdc_event_nvals(ev);
    if (ev->before)
        put_row(b, ev, ev->before, n);
    if (ev->after)
        put_row(b, ev, ev->after, n);
}

/* ---------- decoding ---------- */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t get_le(struct rd *r, int n)
{
    if (r->end - r->p < n) {
        r->bad = true;
        r->p = r->end;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

/* A string as a fresh heap copy (or NULL when malformed). */
static char *get_str(struct rd *r)
{
    uint32_t n = (uint32_t)get_le(r, 4);
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    char *s = xstrndup((const char *)r->p, n);
    r->p += n;
    return s;
}

/* enc_version: the encoding's (1 to 3); before 3 the table id had 32 bits. */
static struct cdc_table *decode_table(struct rd *r, int enc_version)
{
    uint64_t id = get_le(r, enc_version >= 3 ? 8 : 4);
    uint32_t version = (uint32_t)get_le(r, 4);
    char *schema = get_str(r), *name = get_str(r), *topic = get_str(r);
    uint8_t replident = (uint8_t)get_le(r, 1);
    uint8_t key_unique = (uint8_t)get_le(r, 1);
    uint16_t ncols = (uint16_t)get_le(r, 2);
    struct cdc_table *tab = NULL;
    if (!r->bad && ncols <= (size_t)(r->end - r->p) / 18) {
        tab = cdc_table_new(id, schema, name, "", ncols);
        free(tab->topic);
        tab->topic = topic;
        topic = NULL;
        tab->version = version;
        tab->replident = (char)replident;
        for (uint16_t i = 0; i < ncols && !r->bad; i++) {
            struct cdc_column *c = &tab->cols[i];
            c->name = get_str(r);
            c->type_name = get_str(r);
            c->type_oid = (uint32_t)get_le(r, 4);
            c->typmod = (int32_t)(uint32_t)get_le(r, 4);
            uint8_t t = (uint8_t)get_le(r, 1);
            c->type = t <= CDC_T_ARRAY ? (enum cdc_type)t : CDC_T_TEXT;
            c->key = get_le(r, 1) != 0;
            if (!c->name)
                c->name = xstrdup("");
            if (!c->type_name)
                c->type_name = xstrdup("text");
        }
        cdc_table_finish(tab);
        tab->key_unique = (key_unique & K_UNIQUE) != 0;
        tab->key_deferrable = (key_unique & K_DEFERRABLE) != 0;
    } else {
        r->bad = true;
    }
    free(schema);
    free(name);
    free(topic);
    if (r->bad) {
        cdc_table_unref(tab);
        return NULL;
    }
    return tab;
}

static struct cdc_table *cached_table(struct rd *r, uint32_t tlen, int version,
                                      struct evcodec_cache *cache)
{
    const uint8_t *start = r->p;
    /* The same bytes read as another version are another table. */
    uint64_t h = hash_bytes(HASH_SEED + (uint64_t)version, start, tlen);
    if (cache)
        for (unsigned i = 0; i < 16; i++)
            if (cache->slot[i].tab && cache->slot[i].hash == h && cache->slot[i].len == tlen) {
                r->p += tlen;
                cdc_table_ref(cache->slot[i].tab);
                return cache->slot[i].tab;
            }
    struct rd sub = {start, start + tlen, false};
    struct cdc_table *tab = decode_table(&sub, version);
    if (!tab || sub.p != sub.end) {
        cdc_table_unref(tab);
        r->bad = true;
        return NULL;
    }
    r->p += tlen;
    if (cache) {
        struct evcodec_cached *s = &cache->slot[cache->next++ % 16];
        cdc_table_unref(s->tab);
        cdc_table_ref(tab);
        *s = (struct evcodec_cached){h, tlen, tab};
    }
    return tab;
}

void evcodec_cache_fini(struct evcodec_cache *cache)
{
    for (unsigned i = 0; i < 16; i++) {
        cdc_table_unref(cache->slot[i].tab);
        cache->slot[i].tab = NULL;
    }
}

/* Total bytes of a row's values, checking its framing. */
static bool scan_row(struct rd *r, uint16_t n, size_t *bytes)
{
    for (uint16_t i = 0; i < n; i++) {
        uint8_t kind = (uint8_t)get_le(r, 1);
        if (r->bad || kind > CDC_V_TEXT)
            return false;
        if (kind == CDC_V_TEXT) {
            uint32_t len = (uint32_t)get_le(r, 4);
            if (r->bad || (uint64_t)(r->end - r->p) < len)
                return false;
            r->p += len;
            *bytes += (size_t)len + 1;
        }
    }
    return true;
}

static void fill_row(struct rd *r, struct cdc_event *ev, struct cdc_val *row, uint16_t n)
{
    for (uint16_t i = 0; i < n; i++) {
        row[i].kind = (uint8_t)get_le(r, 1);
        if (row[i].kind != CDC_V_TEXT)
            continue;
        uint32_t len = (uint32_t)get_le(r, 4);
        row[i].off = ev->data_len;
        row[i].len = len;
        memcpy(ev->data + ev->data_len, r->p, len);
        ev->data[ev->data_len + len] = '\0';
        ev->data_len += len + 1;
        r->p += len;
    }
}

int evcodec_decode(const uint8_t *p, size_t len, struct evcodec_cache *cache,
                   struct cdc_event **out, char *err, size_t errlen)
{
    *out = NULL;
    int version = len < 4                       ? 0
                  : memcmp(p, MAGIC, 4) == 0    ? 3
                  : memcmp(p, MAGIC_V2, 4) == 0 ? 2
                  : memcmp(p, MAGIC_V1, 4) == 0 ? 1
                                                : 0;
    if (!version)
        return cdc_fail(err, errlen, CDC_EINVAL, "not an encoded event of this version");
    struct rd r = {p + 4, p + len, false};
    uint8_t op = (uint8_t)get_le(&r, 1);
    uint8_t flags = (uint8_t)get_le(&r, 1);
    struct cdc_event h;
    memset(&h, 0, sizeof h);
    h.part = (uint16_t)get_le(&r, 2);
    h.pos.lsn = get_le(&r, 8);
    h.pos.idx = get_le(&r, 8);
    h.lsn = get_le(&r, 8);
    h.end_lsn = get_le(&r, 8);
    h.commit_ts = (int64_t)get_le(&r, 8);
    h.emit_ts = (int64_t)get_le(&r, 8);
    h.xid = get_le(&r, version >= 3 ? 8 : 4);
    h.table_order = (uint32_t)get_le(&r, 4);
    h.total_order = (uint32_t)get_le(&r, 4);
    uint32_t ext = version >= 3 ? (uint32_t)get_le(&r, 4) : 0;
    if (ext & ~(uint32_t)X_KNOWN)
        return cdc_fail(err, errlen, CDC_EINVAL, "encoded event is from a newer version of cdc");
    if (ext & X_STREAM)
        h.pos.stream = (uint32_t)get_le(&r, 4);
    if (ext & X_ORIGIN) {
        h.has_origin = true;
        h.origin.lsn = get_le(&r, 8);
        h.origin.idx = get_le(&r, 8);
        h.origin.stream = (uint32_t)get_le(&r, 4);
    }
    if (ext & X_SNAP_ROW) {
        h.snapshot_chunk = get_le(&r, 8);
        h.snapshot_row = (uint32_t)get_le(&r, 4);
    } else if (flags & F_SNAPSHOT) {
        /* Written before snapshot rows had an identity of their own: their
         * position was (the snapshot's point, chunk read << 32 | row). */
        h.snapshot_chunk = h.pos.idx >> 32;
        h.snapshot_row = (uint32_t)h.pos.idx;
        h.pos.idx = 0;
    }
    struct cdc_srcmeta *meta = NULL;
    if (ext & X_SRCMETA) {
        h.src_row = (uint32_t)get_le(&r, 4);
        uint32_t mlen = (uint32_t)get_le(&r, 4);
        if (r.bad || (uint64_t)(r.end - r.p) < mlen)
            return cdc_fail(err, errlen, CDC_EINVAL, "encoded event is malformed");
        meta = cdc_srcmeta_new(r.p, mlen);
        r.p += mlen;
    }
    if (flags & F_SNAPSHOT_ID)
        h.snapshot_id = get_le(&r, 8);
    struct cdc_table *tab = NULL;
    if (!r.bad && (flags & F_TABLE)) {
        uint32_t tlen = (uint32_t)get_le(&r, 4);
        if (!r.bad && (uint64_t)(r.end - r.p) >= tlen)
            tab = cached_table(&r, tlen, version, cache);
        else
            r.bad = true;
    }
    bool known_op = op == CDC_OP_INSERT || op == CDC_OP_UPDATE || op == CDC_OP_DELETE ||
                    op == CDC_OP_READ || op == CDC_OP_TRUNCATE || op == CDC_OP_MESSAGE;
    if (r.bad || !known_op || (op != CDC_OP_MESSAGE && !tab)) {
        cdc_table_unref(tab);
        cdc_srcmeta_unref(meta);
        return cdc_fail(err, errlen, CDC_EINVAL, "encoded event is malformed");
    }
    uint8_t topts = 0;
    uint16_t tindex = 0, tcount = 0;
    const uint8_t *names = NULL;
    uint32_t names_len = 0;
    if (op == CDC_OP_TRUNCATE && version >= 2) {
        topts = (uint8_t)get_le(&r, 1);
        tindex = (uint16_t)get_le(&r, 2);
        tcount = (uint16_t)get_le(&r, 2);
        names_len = (uint32_t)get_le(&r, 4);
        if (r.bad || (uint64_t)(r.end - r.p) < names_len || (tcount && tindex >= tcount)) {
            cdc_table_unref(tab);
            cdc_srcmeta_unref(meta);
            return cdc_fail(err, errlen, CDC_EINVAL, "encoded truncate is malformed");
        }
        names = r.p;
        r.p += names_len;
    }
    uint16_t n = tab ? tab->ncols : 2;
    struct rd scan = r;
    size_t bytes = names_len;
    bool ok = (!(flags & F_BEFORE) || scan_row(&scan, n, &bytes)) &&
              (!(flags & F_AFTER) || scan_row(&scan, n, &bytes)) && scan.p == scan.end;
    if (!ok) {
        cdc_table_unref(tab);
        cdc_srcmeta_unref(meta);
        return cdc_fail(err, errlen, CDC_EINVAL, "encoded event has a malformed row");
    }
    struct cdc_event *ev =
        cdc_event_new((flags & F_BEFORE) ? n : 0, (flags & F_AFTER) ? n : 0, bytes);
    ev->op = op;
    ev->part = h.part;
    ev->pos = h.pos;
    ev->origin = h.origin;
    ev->has_origin = h.has_origin;
    ev->lsn = h.lsn;
    ev->end_lsn = h.end_lsn;
    ev->commit_ts = h.commit_ts;
    ev->emit_ts = h.emit_ts;
    ev->xid = h.xid;
    ev->table_order = h.table_order;
    ev->total_order = h.total_order;
    ev->before_key_only = (flags & F_KEY_ONLY) != 0;
    ev->snapshot = (flags & F_SNAPSHOT) != 0;
    ev->snapshot_id = h.snapshot_id;
    ev->snapshot_chunk = h.snapshot_chunk;
    ev->snapshot_row = h.snapshot_row;
    ev->srcmeta = meta;
    ev->src_row = h.src_row;
    ev->msg_transactional = (flags & F_MSG_TX) != 0;
    ev->tab = tab;
    ev->trunc_opts = topts;
    ev->trunc_index = tindex;
    ev->trunc_count = tcount;
    if (names_len) {
        memcpy(ev->data, names, names_len);
        ev->data_len = names_len;
    }
    if (ev->before)
        fill_row(&r, ev, ev->before, n);
    if (ev->after)
        fill_row(&r, ev, ev->after, n);
    *out = ev;
    return 0;
}
