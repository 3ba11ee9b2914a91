/* What identifies a change to a destination that drops repeats: the
 * webhook's Idempotency-Key and the NATS sink's Nats-Msg-Id.  A receiver can
 * drop what a retry, a replay or a resumed snapshot sends again, and never
 * drops two different changes as one.
 *
 *   streamed change  <pipeline>:<sink>:<commit_lsn>:<index>, and :<stream>
 *                    after it for a stream other than 0 (a source with
 *                    several streams: their positions may coincide)
 *                    the position: unique in the stream, and the same every
 *                    time PostgreSQL decodes the transaction again;
 *   snapshot row     <pipeline>:<sink>:snapshot:<snapshot_id>:<digest>
 *                    digest = SHA-256 of the table and the row's primary key
 *                    (its place in the read, chunk read and row, for a table
 *                    without a unique key, whose rows cannot be told apart
 *                    otherwise), so the
 *                    same row of the same snapshot has the same key after a
 *                    resume, a rewind or a dead-letter replay, and rows of
 *                    different tables never share one.
 * A webhook request's key is made of its changes' keys (webhook/idem_key.c). */
#include <inttypes.h>
#include <openssl/evp.h>
#include <string.h>

#include "core/json.h"
#include "sink/change_key.h"

void sink_digest_hex(const char *const *parts, const size_t *lens, size_t n,
                     char hex[SINK_DIGEST_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], lens[i]) && EVP_DigestUpdate(ctx, "", 1);
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        /* OpenSSL failing to hash is out of memory: a key of zeros then
         * still never matches a real digest. */
        unsigned char c = ok ? md[i] : 0;
        hex[2 * i] = digits[c >> 4];
        hex[2 * i + 1] = digits[c & 15];
    }
    hex[SINK_DIGEST_HEX] = '\0';
}

void sink_change_key(struct buf *b, const char *pipeline_id, const char *sink_id,
                     const struct cdc_event *ev)
{
    buf_printf(b, "%s:%s:", pipeline_id, sink_id);
    if (!ev->snapshot || !ev->tab) {
        buf_printf(b, "%" PRIu64 ":%" PRIu64, ev->pos.lsn, ev->pos.idx);
        if (ev->pos.stream)
            buf_printf(b, ":%" PRIu32, ev->pos.stream);
        return;
    }
    /* An event stored before snapshot ids existed: an initial snapshot's
     * rows carry its consistent point as their LSN. */
    uint64_t snap = ev->snapshot_id ? ev->snapshot_id : ev->pos.lsn;
    struct buf id = BUF_INIT;
    const struct cdc_table *tab = ev->tab;
    if (ev->op == CDC_OP_READ && tab->key_unique && tab->nkeys > 0) {
        buf_putc(&id, 'k');
        json_key(&id, ev);
    } else {
        /* the same text as when the place in the read was kept in pos.idx */
        buf_printf(&id, "p%" PRIu64 ":%" PRIu64, ev->pos.lsn,
                   ev->snapshot_chunk << 32 | ev->snapshot_row);
    }
    const char *parts[3] = {tab->schema, tab->name, id.p};
    size_t lens[3] = {strlen(tab->schema), strlen(tab->name), id.len};
    char hex[SINK_DIGEST_HEX + 1];
    sink_digest_hex(parts, lens, 3, hex);
    buf_printf(b, "snapshot:%" PRIu64 ":%s", snap, hex);
    buf_fini(&id);
}
