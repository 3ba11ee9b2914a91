/* Dead-letter entries as JSON; see dlq_json.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "state/dlq_json.h"

const char *dlq_entry_table(const char *topic, const char *topic_prefix)
{
    size_t n = topic_prefix ? strlen(topic_prefix) : 0;
    if (n && strncmp(topic, topic_prefix, n) == 0 && topic[n] == '.' && topic[n + 1])
        return topic + n + 1;
    return topic;
}

static void put_str(struct buf *b, const char *key, const char *s)
{
    buf_printf(b, ",\"%s\":", key);
    json_string(b, s, strlen(s));
}

void dlq_entry_json(struct buf *b, const struct dlq_entry *e, const char *topic_prefix)
{
    char pos[CDC_POS_TEXT_MAX];
    cdc_pos_format(e->pos, pos, sizeof pos);
    char op[2] = {e->op, '\0'};
    char lsn[32];
    snprintf(lsn, sizeof lsn, "%X/%X", (unsigned)(e->pos.lsn >> 32), (unsigned)e->pos.lsn);
    buf_printf(b, "{\"id\":%" PRId64, e->id);
    put_str(b, "sink_id", e->sink_id);
    put_str(b, "position", pos);
    put_str(b, "commit_lsn", lsn);
    buf_printf(b, ",\"event_index\":%" PRIu64 ",\"stream\":%" PRIu32, e->pos.idx, e->pos.stream);
    put_str(b, "topic", e->topic);
    put_str(b, "table", dlq_entry_table(e->topic, topic_prefix));
    buf_puts(b, ",\"key\":");
    if (e->key_json && json_valid(e->key_json, strlen(e->key_json)))
        buf_puts(b, e->key_json);
    else
        buf_puts(b, "null");
    put_str(b, "op", op);
    put_str(b, "error_class", e->error_class);
    buf_printf(b, ",\"attempts\":%d,\"http_status\":%d", e->attempts, e->http_status);
    put_str(b, "status", e->status == DLQ_RESOLVED ? "resolved" : "pending");
    put_str(b, "error", e->error);
    buf_printf(b,
               ",\"first_failed_us\":%" PRId64 ",\"dead_lettered_us\":%" PRId64 ",\"resolved_us\":",
               e->first_failed_us, e->dead_lettered_us);
    if (e->status == DLQ_RESOLVED)
        buf_printf(b, "%" PRId64 "}", e->resolved_us);
    else
        buf_puts(b, "null}");
}
