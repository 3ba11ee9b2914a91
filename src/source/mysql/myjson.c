#include <string.h>

#include "core/json.h"
#include "source/mysql/myjson.h"

#define PUT_LIT(b, lit) buf_put((b), (lit), sizeof(lit) - 1)

static void put_str(struct buf *b, const char *s)
{
    if (s)
        json_string(b, s, strlen(s));
    else
        PUT_LIT(b, "null");
}

void myjson_source(struct buf *b, const struct myjson_source *s)
{
    int64_t us = s->ts_us;
    int64_t ms = us / 1000 - (us % 1000 < 0); /* rounded down, as the envelope's ts_ms */
    PUT_LIT(b, "{\"version\":");
    json_string(b, s->version ? s->version : "", s->version ? strlen(s->version) : 0);
    PUT_LIT(b, ",\"connector\":\"mysql\",\"name\":");
    json_string(b, s->name ? s->name : "", s->name ? strlen(s->name) : 0);
    PUT_LIT(b, ",\"ts_ms\":");
    buf_put_i64(b, ms);
    PUT_LIT(b, ",\"snapshot\":");
    put_str(b, s->snapshot ? s->snapshot : "false");
    PUT_LIT(b, ",\"db\":");
    json_string(b, s->db ? s->db : "", s->db ? strlen(s->db) : 0);
    PUT_LIT(b, ",\"sequence\":null,\"ts_us\":");
    buf_put_i64(b, us);
    PUT_LIT(b, ",\"ts_ns\":");
    buf_put_i64(b, us);
    if (us != 0)
        PUT_LIT(b, "000");
    PUT_LIT(b, ",\"table\":");
    put_str(b, s->table);
    PUT_LIT(b, ",\"server_id\":");
    buf_put_u64(b, s->server_id);
    PUT_LIT(b, ",\"gtid\":");
    put_str(b, s->gtid && s->gtid[0] ? s->gtid : NULL);
    PUT_LIT(b, ",\"file\":");
    json_string(b, s->file ? s->file : "", s->file ? strlen(s->file) : 0);
    PUT_LIT(b, ",\"pos\":");
    buf_put_u64(b, s->pos);
    PUT_LIT(b, ",\"row\":");
    buf_put_u64(b, s->row);
    PUT_LIT(b, ",\"thread\":");
    if (s->have_thread)
        buf_put_u64(b, s->thread);
    else
        PUT_LIT(b, "null");
    PUT_LIT(b, ",\"query\":");
    put_str(b, s->query);
    if (s->schema_version) {
        PUT_LIT(b, ",\"schema_version\":");
        buf_put_u64(b, s->schema_version);
    }
    buf_putc(b, '}');
}

void myjson_source_from_row(struct myjson_source *s, const struct cdc_event *ev,
                            const struct mydecode_row *row)
{
    const struct mydecode_txn *t = row->txn;
    s->ts_us = row->ts_us;
    s->snapshot = ev->snapshot ? "true" : "false";
    s->db = ev->tab ? ev->tab->schema : "";
    s->table = ev->tab ? ev->tab->name : NULL;
    s->schema_version = ev->tab ? ev->tab->version : 0;
    s->server_id = t->server_id;
    s->gtid = t->gtid_text;
    s->file = t->file;
    s->pos = row->pos;
    s->row = row->row;
    s->have_thread = t->have_thread;
    s->thread = t->thread_id;
    s->query = NULL;
}

/* ---- source metadata ------------------------------------------------------
 *
 * Layout (little-endian), version 1:
 *   u8 version, u8 flags (1: have_thread), u32 server_id, u32 pos,
 *   u32 thread, i64 ts_us, u16 file length, file, NUL, u16 gtid length,
 *   gtid, NUL */

#define META_VERSION 1
#define META_HEAD    22 /* up to the file's length */

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

struct cdc_srcmeta *myjson_meta_new(const struct mydecode_row *row)
{
    const struct mydecode_txn *t = row->txn;
    size_t flen = strnlen(t->file, sizeof t->file),
           glen = strnlen(t->gtid_text, sizeof t->gtid_text);
    unsigned char m[META_HEAD + 2 + MYDECODE_FILE_MAX + 1 + 2 + MYDECODE_GTID_MAX + 1];
    m[0] = META_VERSION;
    m[1] = t->have_thread ? 1 : 0;
    put_le(m + 2, t->server_id, 4);
    put_le(m + 6, row->pos, 4);
    put_le(m + 10, t->thread_id, 4);
    put_le(m + 14, (uint64_t)row->ts_us, 8);
    size_t at = META_HEAD;
    put_le(m + at, flen, 2);
    memcpy(m + at + 2, t->file, flen);
    m[at + 2 + flen] = '\0';
    at += 2 + flen + 1;
    put_le(m + at, glen, 2);
    memcpy(m + at + 2, t->gtid_text, glen);
    m[at + 2 + glen] = '\0';
    at += 2 + glen + 1;
    return cdc_srcmeta_new(m, at);
}

/* Reads a NUL-terminated string of u16 length at *at; NULL if it does not
 * fit. */
static const char *meta_str(const struct cdc_srcmeta *m, size_t *at)
{
    if (*at + 2 > m->len)
        return NULL;
    size_t n = (size_t)get_le(m->data + *at, 2);
    if (*at + 2 + n + 1 > m->len || m->data[*at + 2 + n] != '\0')
        return NULL;
    const char *s = (const char *)m->data + *at + 2;
    *at += 2 + n + 1;
    return s;
}

/* Fills the binlog facts of s from m; false if m is not ours (then s keeps
 * what it had). */
static bool meta_read(const struct cdc_srcmeta *m, struct myjson_source *s)
{
    if (m->len < META_HEAD || m->data[0] != META_VERSION)
        return false;
    size_t at = META_HEAD;
    const char *file = meta_str(m, &at), *gtid = file ? meta_str(m, &at) : NULL;
    if (!gtid)
        return false;
    s->have_thread = (m->data[1] & 1) != 0;
    s->server_id = (uint32_t)get_le(m->data + 2, 4);
    s->pos = get_le(m->data + 6, 4);
    s->thread = (uint32_t)get_le(m->data + 10, 4);
    s->ts_us = (int64_t)get_le(m->data + 14, 8);
    s->file = file;
    s->gtid = gtid;
    return true;
}

void myjson_event_source(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                         bool in_txn)
{
    (void)in_txn;
    struct myjson_source s = {
        .version = ctx->version,
        .name = ctx->pipeline_id,
        .ts_us = ev->commit_ts,
        .snapshot = ev->snapshot ? "true" : "false",
        .db = ev->tab ? ev->tab->schema : ctx->db,
        .table = ev->tab ? ev->tab->name : NULL,
        .file = "",
        .schema_version = ev->tab ? ev->tab->version : 0,
    };
    if (ev->srcmeta && meta_read(ev->srcmeta, &s))
        s.row = ev->src_row;
    myjson_source(b, &s);
}
