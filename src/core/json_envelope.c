/* The Debezium-compatible envelope of a change event, and reading its
 * position back from a line (contract in json.h, layout for users in
 * docs/envelope.md: change the two together). */
#include <stdint.h>
#include <string.h>

#include "core/json_int.h"
#include "util/err.h"

/* ---- the source block --------------------------------------------------- */

static void put_head(struct buf *b, const struct json_ctx *ctx)
{
    PUT_LIT(b, "{\"version\":");
    json_put_cstr(b, ctx->version);
    PUT_LIT(b, ",\"connector\":");
    json_put_cstr(b, ctx->connector);
    PUT_LIT(b, ",\"name\":");
    json_put_cstr(b, ctx->pipeline_id);
    buf_putc(b, ',');
}

void json_ctx_prepare(struct json_ctx *ctx)
{
    ctx->head_len = ctx->db_len = 0;
    struct buf b = BUF_INIT;
    put_head(&b, ctx);
    if (b.len <= sizeof ctx->head) {
        memcpy(ctx->head, b.p, b.len);
        ctx->head_len = (uint16_t)b.len;
    }
    buf_reset(&b);
    json_put_cstr(&b, ctx->db);
    if (b.len <= sizeof ctx->db_json) {
        memcpy(ctx->db_json, b.p, b.len);
        ctx->db_len = (uint16_t)b.len;
    }
    buf_fini(&b);
}

void json_source_common(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx)
{
    if (ctx->head_len)
        buf_put(b, ctx->head, ctx->head_len);
    else
        put_head(b, ctx);
    json_put_ts(b, ev->commit_ts);
    if (ev->snapshot)
        PUT_LIT(b, ",\"snapshot\":\"true\",\"db\":");
    else
        PUT_LIT(b, ",\"snapshot\":\"false\",\"db\":");
    if (ctx->db_len)
        buf_put(b, ctx->db_json, ctx->db_len);
    else
        json_put_cstr(b, ctx->db);
}

void json_source_schema_version(struct buf *b, const struct cdc_event *ev)
{
    if (!ev->tab || !ev->tab->version)
        return;
    PUT_LIT(b, ",\"schema_version\":");
    json_put_u64(b, ev->tab->version);
}

/* The rows of one snapshot read of a table share their whole source block
 * (one snapshot position, one time, one table): each thread keeps the last
 * one it wrote, with what it was made of, and copies it while those stay
 * the same.  A table is told by its id and version as well as its address,
 * which a freed table's successor may reuse. */
#define SOURCE_MEMO_MAX 1024
struct source_memo {
    const struct json_ctx *ctx;
    const struct cdc_table *tab;
    uint64_t tab_id;
    uint32_t tab_version;
    int64_t commit_ts;
    uint64_t pos_lsn, lsn, xid;
    bool in_txn;
    size_t len; /* 0: nothing kept */
    char bytes[SOURCE_MEMO_MAX];
};
static __thread struct source_memo memo;

static bool memo_matches(const struct cdc_event *ev, const struct json_ctx *ctx, bool in_txn)
{
    return memo.len && memo.ctx == ctx && memo.tab == ev->tab && memo.tab_id == ev->tab->id &&
           memo.tab_version == ev->tab->version && memo.commit_ts == ev->commit_ts &&
           memo.pos_lsn == ev->pos.lsn && memo.lsn == ev->lsn && memo.xid == ev->xid &&
           memo.in_txn == in_txn;
}

static void put_source_block(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                             int has_txn);

/* "source":{...}: the source type's block, or the shared fields and the
 * table.  Messages carry no table, so schema and table are null. */
static void put_source(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                       int has_txn)
{
    PUT_LIT(b, "\"source\":");
    /* Snapshot rows without source metadata: the block depends on nothing
     * the memo does not compare (json_source_fn). */
    if (!ev->snapshot || ev->srcmeta || !ev->tab) {
        put_source_block(b, ev, ctx, has_txn);
        return;
    }
    if (memo_matches(ev, ctx, has_txn != 0)) {
        buf_put(b, memo.bytes, memo.len);
        return;
    }
    size_t start = b->len;
    put_source_block(b, ev, ctx, has_txn);
    size_t len = b->len - start;
    memo.len = 0;
    if (len > sizeof memo.bytes)
        return;
    memcpy(memo.bytes, b->p + start, len);
    memo.len = len;
    memo.ctx = ctx;
    memo.tab = ev->tab;
    memo.tab_id = ev->tab->id;
    memo.tab_version = ev->tab->version;
    memo.commit_ts = ev->commit_ts;
    memo.pos_lsn = ev->pos.lsn;
    memo.lsn = ev->lsn;
    memo.xid = ev->xid;
    memo.in_txn = has_txn != 0;
}

static void put_source_block(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx,
                             int has_txn)
{
    if (ctx->source) {
        ctx->source(b, ev, ctx, has_txn != 0);
        return;
    }
    json_source_common(b, ev, ctx);
    PUT_LIT(b, ",\"schema\":");
    if (ev->tab) {
        json_put_cstr(b, ev->tab->schema);
        PUT_LIT(b, ",\"table\":");
        json_put_cstr(b, ev->tab->name);
    } else {
        PUT_LIT(b, "null,\"table\":null");
    }
    json_source_schema_version(b, ev);
    buf_putc(b, '}');
}

/* "transaction":{...} or null; always the envelope's last field, which is
 * what json_envelope_position relies on. */
static void put_transaction(struct buf *b, const struct cdc_event *ev, int has_txn)
{
    if (!has_txn) {
        PUT_LIT(b, "\"transaction\":null");
        return;
    }
    PUT_LIT(b, "\"transaction\":{\"id\":\"");
    json_put_u64(b, ev->xid);
    buf_putc(b, ':');
    json_put_u64(b, cdc_event_origin(ev).lsn);
    PUT_LIT(b, "\",\"total_order\":");
    json_put_u64(b, ev->total_order);
    PUT_LIT(b, ",\"data_collection_order\":");
    json_put_u64(b, ev->table_order);
    buf_putc(b, '}');
}

/* {"op":"m",...}: a logical decoding message.  Prefix and content are values
 * 0 and 1 of after; the content is raw bytes, hence base64. */
/* The truncate block: the statement's options and every captured table it
 * truncated together (one event per table carries the same block). */
static void put_truncate(struct buf *b, const struct cdc_event *ev)
{
    PUT_LIT(b, "\"truncate\":{\"cascade\":");
    if (ev->trunc_opts & CDC_TRUNC_CASCADE)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
    PUT_LIT(b, ",\"restart_identity\":");
    if (ev->trunc_opts & CDC_TRUNC_RESTART_IDENTITY)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
    PUT_LIT(b, ",\"tables\":[");
    uint16_t n = ev->trunc_count ? ev->trunc_count : 1;
    for (uint16_t i = 0; i < n; i++) {
        const char *schema = ev->tab->schema, *name = ev->tab->name;
        if (ev->trunc_count && !cdc_event_trunc_table(ev, i, &schema, &name))
            break;
        if (i)
            buf_putc(b, ',');
        PUT_LIT(b, "{\"schema\":");
        json_string(b, schema, strlen(schema));
        PUT_LIT(b, ",\"table\":");
        json_string(b, name, strlen(name));
        buf_putc(b, '}');
    }
    PUT_LIT(b, "]},");
}

static void put_message(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx)
{
    int has_txn = ev->msg_transactional;
    PUT_LIT(b, "{\"op\":\"m\",");
    json_put_ts(b, ev->emit_ts);
    buf_putc(b, ',');
    put_source(b, ev, ctx, has_txn);
    PUT_LIT(b, ",\"message\":{\"prefix\":");
    const struct cdc_val *v = ev->after;
    if (v && v[0].kind == CDC_V_TEXT)
        json_string(b, cdc_val_ptr(ev, &v[0]), v[0].len);
    else
        PUT_LIT(b, "\"\"");
    PUT_LIT(b, ",\"content\":");
    if (v && v[1].kind == CDC_V_TEXT)
        json_base64(b, cdc_val_ptr(ev, &v[1]), v[1].len);
    else
        PUT_LIT(b, "\"\"");
    PUT_LIT(b, "},");
    put_transaction(b, ev, has_txn);
    buf_putc(b, '}');
}

void json_envelope(struct buf *b, const struct cdc_event *ev, const struct json_ctx *ctx)
{
    int op = ev->op;
    if (cdc_op_is_control(op))
        return;
    if (op == CDC_OP_MESSAGE) {
        put_message(b, ev, ctx);
        return;
    }
    int has_txn = op != CDC_OP_READ && !ev->snapshot;
    const struct cdc_val *before = NULL, *after = NULL;
    if (op == CDC_OP_UPDATE || op == CDC_OP_DELETE)
        before = ev->before;
    if (op == CDC_OP_INSERT || op == CDC_OP_UPDATE || op == CDC_OP_READ)
        after = ev->after;

    PUT_LIT(b, "{\"before\":");
    json_put_row(b, ev, before, 0);
    PUT_LIT(b, ",\"after\":");
    json_put_row(b, ev, after, 0);
    buf_putc(b, ',');
    put_source(b, ev, ctx, has_txn);
    PUT_LIT(b, ",\"op\":");
    if (op == CDC_OP_INSERT || op == CDC_OP_UPDATE || op == CDC_OP_DELETE || op == CDC_OP_READ ||
        op == CDC_OP_TRUNCATE) {
        char lit[5] = {'"', (char)op, '"', ','};
        buf_put(b, lit, 4);
    } else {
        char c = (char)op; /* not a known op: still valid JSON */
        json_string(b, &c, 1);
        buf_putc(b, ',');
    }
    json_put_ts(b, ev->emit_ts);
    buf_putc(b, ',');
    if (op == CDC_OP_TRUNCATE && ev->tab)
        put_truncate(b, ev);
    put_transaction(b, ev, has_txn);
    buf_putc(b, '}');
}

/* ---- reading a position back -------------------------------------------- */

/* Parses 1..20 decimal digits at s[*i..n) into *v, rejecting overflow and
 * leading zeros (the encoder never writes them). */
static int parse_u64(const char *s, size_t n, size_t *i, uint64_t *v)
{
    size_t j = *i;
    uint64_t x = 0;
    while (j < n && json_is_digit((unsigned char)s[j])) {
        unsigned d = (unsigned)(s[j] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
        j++;
    }
    if (j == *i || (s[*i] == '0' && j - *i > 1))
        return -1;
    *v = x;
    *i = j;
    return 0;
}

static int expect(const char *s, size_t n, size_t *i, const char *lit, size_t litlen)
{
    if (n - *i < litlen || memcmp(s + *i, lit, litlen) != 0)
        return -1;
    *i += litlen;
    return 0;
}

#define EXPECT(lit) expect(line, len, &i, (lit), sizeof(lit) - 1)

/* The transaction block is the envelope's last field and its fields are
 * fixed, so the line is read from its last "transaction" key to the end: text
 * inside row values cannot fake it, because a string value cannot contain an
 * unescaped '"' and no row value is an object. */
int json_envelope_position(const char *line, size_t len, struct cdc_pos *pos)
{
    static const char key[] = ",\"transaction\":{\"id\":\"";
    const size_t klen = sizeof key - 1;
    if (!line)
        return CDC_EINVAL;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (!(len >= 11 && memcmp(line, "{\"before\":", 10) == 0) &&
        !(len >= 10 && memcmp(line, "{\"op\":\"m\",", 10) == 0))
        return CDC_EINVAL;
    if (len < klen + 2)
        return CDC_EINVAL;
    size_t at = len - klen;
    for (;;) {
        if (line[at] == ',' && memcmp(line + at, key, klen) == 0)
            break;
        if (at == 0)
            return CDC_EINVAL;
        at--;
    }
    size_t i = at + klen;
    uint64_t xid, lsn, total, dco;
    if (parse_u64(line, len, &i, &xid) || EXPECT(":") || parse_u64(line, len, &i, &lsn) ||
        EXPECT("\",\"total_order\":") || parse_u64(line, len, &i, &total) || total == 0 ||
        total > UINT32_MAX || EXPECT(",\"data_collection_order\":") ||
        parse_u64(line, len, &i, &dco) || dco > UINT32_MAX || EXPECT("}}") || i != len)
        return CDC_EINVAL;
    pos->lsn = lsn;
    pos->idx = total - 1;
    pos->stream = 0; /* a line shows a position of a single-stream source */
    return 0;
}
