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
    s->server_id = t->server_id;
    s->gtid = t->gtid_text;
    s->file = t->file;
    s->pos = row->pos;
    s->row = row->row;
    s->have_thread = t->have_thread;
    s->thread = t->thread_id;
    s->query = NULL;
}
