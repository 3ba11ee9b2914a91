/* libFuzzer target for the JSON encoder (core/json.c).
 *
 * The input is used twice: as a line for json_envelope_position, which must
 * never crash, and as the description of an event (op, flags, position,
 * columns with type class, kind and bytes) whose envelope, key and values
 * must be valid JSON and whose position must read back exactly.
 *
 * Input layout: op, flags, 8 bytes of position material, then per column
 * (at most 8): type, kind, key flag, value length, value bytes.  Whatever is
 * left names the table.  Short input is padded with zeros. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/json.h"
#include "util/buf.h"
#include "util/err.h"
#include "source/pg/pgjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t next_byte(struct reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static void die(const char *what, const struct buf *b)
{
    fprintf(stderr, "fuzz_json: %s: %.*s\n", what, (int)(b ? b->len : 0), b ? b->p : "");
    abort();
}

static void check_valid(const char *what, const struct buf *b)
{
    if (!json_valid(b->p, b->len))
        die(what, b);
}

static const uint8_t ops[] = {CDC_OP_INSERT,   CDC_OP_UPDATE,  CDC_OP_DELETE, CDC_OP_READ,
                              CDC_OP_TRUNCATE, CDC_OP_MESSAGE, CDC_OP_COMMIT, CDC_OP_REWIND};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cdc_pos pos = {0, 0, 0};
    struct buf b = BUF_INIT;
    /* Whatever the bytes, reading a position must be safe. */
    if (json_envelope_position((const char *)data, size, &pos) == 0) {
        if (pos.idx >= UINT32_MAX)
            abort();
    }

    struct reader r = {data, size};
    uint8_t opb = next_byte(&r);
    uint8_t op = opb < 0xf0 ? ops[opb % sizeof ops] : opb; /* sometimes an unknown op */
    uint8_t flags = next_byte(&r);
    uint8_t mix[8];
    for (int i = 0; i < 8; i++)
        mix[i] = next_byte(&r);

    /* Columns: type, kind, key and value bytes straight from the input. */
    enum { MAXC = 8 };
    uint8_t ctype[MAXC], ckind[MAXC], ckey[MAXC];
    const uint8_t *cval[MAXC];
    size_t clen[MAXC];
    uint16_t ncols = 0;
    size_t data_cap = 0;
    uint16_t want = op == CDC_OP_MESSAGE ? 2 : (uint16_t)(mix[7] % (MAXC + 1));
    while (ncols < want) {
        ctype[ncols] = next_byte(&r) % 16; /* 15 is out of range: treated as text */
        ckind[ncols] = next_byte(&r) % 3;
        ckey[ncols] = next_byte(&r) & 1;
        size_t len = next_byte(&r);
        if (len > r.n)
            len = r.n;
        cval[ncols] = r.p;
        clen[ncols] = len;
        r.p += len;
        r.n -= len;
        data_cap += len;
        ncols++;
    }
    char *tname = malloc(r.n + 1);
    memcpy(tname, r.p, r.n);
    tname[r.n] = '\0'; /* may be cut short by a NUL in the input: fine */

    struct cdc_table *tab = NULL;
    if (op != CDC_OP_MESSAGE && !cdc_op_is_control(op)) {
        tab = cdc_table_new(1, "public", tname, "cdc", ncols);
        for (uint16_t i = 0; i < ncols; i++) {
            char name[8];
            snprintf(name, sizeof name, "c%u", (unsigned)i);
            tab->cols[i].name = strdup(i == 0 && (flags & 0x80) ? tname : name);
            tab->cols[i].type_name = strdup("text");
            tab->cols[i].type = (enum cdc_type)ctype[i];
            tab->cols[i].key = ckey[i];
        }
        cdc_table_finish(tab);
    }
    uint16_t nvals = tab ? ncols : (op == CDC_OP_MESSAGE ? 2 : 0);
    uint16_t nb = (flags & 8) ? nvals : 0, na = (flags & 16) ? nvals : 0;
    if (op == CDC_OP_MESSAGE)
        na = 2;
    struct cdc_event *ev = cdc_event_new(nb, na, 2 * data_cap);
    uint32_t off = 0;
    for (int side = 0; side < 2; side++) {
        struct cdc_val *row = side ? ev->after : ev->before;
        if (!row)
            continue;
        for (uint16_t i = 0; i < nvals; i++) {
            row[i].kind = op == CDC_OP_MESSAGE ? CDC_V_TEXT : ckind[i];
            row[i].off = off;
            row[i].len = (uint32_t)clen[i];
            if (clen[i])
                memcpy(ev->data + off, cval[i], clen[i]);
            off += (uint32_t)clen[i];
        }
    }
    ev->data_len = off;
    ev->op = op;
    ev->tab = tab;
    ev->snapshot = flags & 1;
    ev->msg_transactional = (flags & 4) != 0;
    uint64_t m = 0;
    for (int i = 0; i < 8; i++)
        m = m << 8 | mix[i];
    ev->pos.lsn = (flags & 32) ? UINT64_MAX - m : m;
    ev->lsn = m >> 3;
    ev->xid = (uint32_t)(m >> 17);
    ev->total_order = (uint32_t)m;
    ev->pos.idx = ev->total_order ? ev->total_order - 1u : 0;
    ev->table_order = mix[3];
    ev->commit_ts = (int64_t)m;
    ev->emit_ts = -(int64_t)(m >> 1);

    struct json_ctx ctx = {.pipeline_id = tname,
                           .connector = "postgresql",
                           .db = "d",
                           .version = (flags & 64) ? NULL : "0.1.0",
                           .source = (mix[5] & 1) ? NULL : pgjson_source};

    /* The envelope: valid JSON, and its position reads back. */
    buf_puts(&b, "x");
    json_envelope(&b, ev, &ctx);
    if (cdc_op_is_control(op)) {
        if (b.len != 1)
            die("control event encoded", &b);
    } else {
        struct buf doc = {b.p + 1, b.len - 1, b.cap - 1};
        check_valid("envelope", &doc);
        int has_txn =
            op == CDC_OP_MESSAGE ? ev->msg_transactional : (op != CDC_OP_READ && !ev->snapshot);
        int rc = json_envelope_position(doc.p, doc.len, &pos);
        if (has_txn && ev->total_order) {
            if (rc != 0 || pos.lsn != ev->pos.lsn || pos.idx != (uint64_t)ev->total_order - 1)
                die("position does not read back", &doc);
        } else if (rc != CDC_EINVAL) {
            die("position read from an event without one", &doc);
        }
    }

    buf_reset(&b);
    json_key(&b, ev);
    check_valid("key", &b);

    /* Each value on its own, under every type class. */
    for (uint16_t i = 0; i < ncols; i++) {
        for (int t = 0; t <= CDC_T_ARRAY; t++) {
            buf_reset(&b);
            json_value(&b, (enum cdc_type)t, (const char *)cval[i], clen[i]);
            check_valid("value", &b);
        }
    }
    buf_reset(&b);
    json_string(&b, (const char *)data, size);
    check_valid("string", &b);
    buf_reset(&b);
    json_base64(&b, data, size);
    check_valid("base64", &b);

    /* The validator must agree with itself on the raw input. */
    (void)json_valid((const char *)data, size);

    buf_fini(&b);
    cdc_event_unref(ev); /* and the table it owns */
    free(tname);
    return 0;
}
