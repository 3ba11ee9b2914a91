/* pgoutput parser.  Field order and widths follow PostgreSQL's "Logical
 * Replication Message Formats"; each reader below advances a cursor and fails
 * if the message is too short. */
#include <string.h>

#include "source/pg/pgoutput.h"
#include "util/err.h"

struct rd {
    const uint8_t *p;
    const uint8_t *end;
    char *err;
    size_t errlen;
    const char *what; /* message name, for errors */
};

static int rd_fail(struct rd *r, const char *field)
{
    return cdc_fail(r->err, r->errlen, CDC_EINVAL,
                    "pgoutput %s message truncated or malformed at %s", r->what, field);
}

static int rd_u8(struct rd *r, uint8_t *v, const char *field)
{
    if (r->end - r->p < 1)
        return rd_fail(r, field);
    *v = *r->p++;
    return 0;
}

static int rd_u16(struct rd *r, uint16_t *v, const char *field)
{
    if (r->end - r->p < 2)
        return rd_fail(r, field);
    *v = pgo_get_u16(r->p);
    r->p += 2;
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *field)
{
    if (r->end - r->p < 4)
        return rd_fail(r, field);
    *v = pgo_get_u32(r->p);
    r->p += 4;
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v, const char *field)
{
    if (r->end - r->p < 8)
        return rd_fail(r, field);
    *v = pgo_get_u64(r->p);
    r->p += 8;
    return 0;
}

/* A NUL-terminated string inside the message. */
static int rd_str(struct rd *r, const char **s, const char *field)
{
    const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!nul)
        return rd_fail(r, field);
    *s = (const char *)r->p;
    r->p = nul + 1;
    return 0;
}

/* TupleData: Int16 column count, then per column Byte1 kind and, for 't' and
 * 'b', Int32 length and the bytes. */
static int rd_tuple(struct rd *r, struct pgo_tuple *t)
{
    if (rd_u16(r, &t->ncols, "tuple column count"))
        return CDC_EINVAL;
    t->p = r->p;
    for (uint16_t i = 0; i < t->ncols; i++) {
        uint8_t kind = 0;
        if (rd_u8(r, &kind, "tuple column kind"))
            return CDC_EINVAL;
        switch (kind) {
        case 'n':
        case 'u':
            break;
        case 't':
        case 'b': {
            uint32_t len = 0;
            if (rd_u32(r, &len, "tuple value length"))
                return CDC_EINVAL;
            if ((uint64_t)(r->end - r->p) < len)
                return rd_fail(r, "tuple value");
            r->p += len;
            break;
        }
        default:
            return cdc_fail(r->err, r->errlen, CDC_EINVAL,
                            "pgoutput %s message has unknown tuple column kind 0x%02x", r->what,
                            kind);
        }
    }
    t->len = (size_t)(r->p - t->p);
    return 0;
}

void pgo_tuple_next(const uint8_t **cursor, struct pgo_col *col)
{
    const uint8_t *p = *cursor;
    col->kind = (char)*p++;
    col->data = NULL;
    col->len = 0;
    if (col->kind == 't' || col->kind == 'b') {
        col->len = pgo_get_u32(p);
        p += 4;
        col->data = (const char *)p;
        p += col->len;
    }
    *cursor = p;
}

void pgo_relcol_next(const uint8_t **cursor, struct pgo_relcol *col)
{
    const uint8_t *p = *cursor;
    col->flags = *p++;
    col->name = (const char *)p;
    p += strlen(col->name) + 1;
    col->type_oid = pgo_get_u32(p);
    col->typmod = (int32_t)pgo_get_u32(p + 4);
    *cursor = p + 8;
}

uint32_t pgo_truncate_relid(const struct pgo_msg *m, uint32_t i)
{
    return pgo_get_u32(m->truncate.relids + 4 * (size_t)i);
}

/* Data messages inside a stream block carry the xid of the (sub)transaction
 * first (protocol version 2). */
static int rd_stream_xid(struct rd *r, bool streaming, struct pgo_msg *m)
{
    if (!streaming)
        return 0;
    return rd_u32(r, &m->xid, "xid");
}

static int parse_relation(struct rd *r, struct pgo_msg *m)
{
    uint8_t ident = 0;
    if (rd_u32(r, &m->relation.relid, "relation id") ||
        rd_str(r, &m->relation.nspname, "namespace") ||
        rd_str(r, &m->relation.relname, "relation name") || rd_u8(r, &ident, "replica identity") ||
        rd_u16(r, &m->relation.ncols, "column count"))
        return CDC_EINVAL;
    m->relation.replident = (char)ident;
    m->relation.cols = r->p;
    for (uint16_t i = 0; i < m->relation.ncols; i++) {
        uint8_t flags = 0;
        const char *name;
        uint32_t oid = 0, typmod = 0;
        if (rd_u8(r, &flags, "column flags") || rd_str(r, &name, "column name") ||
            rd_u32(r, &oid, "column type") || rd_u32(r, &typmod, "column type modifier"))
            return CDC_EINVAL;
    }
    return 0;
}

static int parse_change(struct rd *r, struct pgo_msg *m)
{
    uint8_t tag = 0;
    m->change.old_kind = 0;
    if (rd_u32(r, &m->change.relid, "relation id") || rd_u8(r, &tag, "tuple tag"))
        return CDC_EINVAL;
    if (m->type == PGO_INSERT) {
        if (tag != 'N')
            return rd_fail(r, "new tuple tag");
        return rd_tuple(r, &m->change.new);
    }
    if (tag == 'K' || tag == 'O') {
        m->change.old_kind = (char)tag;
        if (rd_tuple(r, &m->change.old))
            return CDC_EINVAL;
        if (m->type == PGO_DELETE)
            return 0;
        if (rd_u8(r, &tag, "new tuple tag"))
            return CDC_EINVAL;
    } else if (m->type == PGO_DELETE) {
        return rd_fail(r, "old tuple tag");
    }
    if (tag != 'N')
        return rd_fail(r, "new tuple tag");
    return rd_tuple(r, &m->change.new);
}

int pgo_parse(const uint8_t *buf, size_t len, bool streaming, struct pgo_msg *m, char *err,
              size_t errlen)
{
    memset(m, 0, sizeof *m);
    struct rd r = {buf, buf + len, err, errlen, "empty"};
    if (len == 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "pgoutput message is empty");
    m->type = (enum pgo_type) * r.p++;
    uint64_t u64 = 0;
    int rc = 0;

    switch (m->type) {
    case PGO_BEGIN:
        r.what = "Begin";
        rc = rd_u64(&r, &m->begin.final_lsn, "final LSN") || rd_u64(&r, &u64, "commit time") ||
             rd_u32(&r, &m->begin.xid, "xid");
        m->begin.commit_ts = (int64_t)u64;
        break;
    case PGO_COMMIT:
    case PGO_STREAM_COMMIT:
        r.what = m->type == PGO_COMMIT ? "Commit" : "Stream Commit";
        if (m->type == PGO_STREAM_COMMIT && rd_u32(&r, &m->xid, "xid"))
            return CDC_EINVAL;
        rc = rd_u8(&r, &m->commit.flags, "flags") ||
             rd_u64(&r, &m->commit.commit_lsn, "commit LSN") ||
             rd_u64(&r, &m->commit.end_lsn, "end LSN") || rd_u64(&r, &u64, "commit time");
        m->commit.commit_ts = (int64_t)u64;
        break;
    case PGO_ORIGIN:
        r.what = "Origin";
        rc = rd_u64(&r, &m->origin.lsn, "origin LSN") || rd_str(&r, &m->origin.name, "origin name");
        break;
    case PGO_RELATION:
        r.what = "Relation";
        rc = rd_stream_xid(&r, streaming, m) || parse_relation(&r, m);
        break;
    case PGO_TYPE:
        r.what = "Type";
        rc = rd_stream_xid(&r, streaming, m) || rd_u32(&r, &m->typeinfo.oid, "type id") ||
             rd_str(&r, &m->typeinfo.nspname, "namespace") ||
             rd_str(&r, &m->typeinfo.typname, "type name");
        break;
    case PGO_INSERT:
    case PGO_UPDATE:
    case PGO_DELETE:
        r.what = m->type == PGO_INSERT ? "Insert" : m->type == PGO_UPDATE ? "Update" : "Delete";
        rc = rd_stream_xid(&r, streaming, m) || parse_change(&r, m);
        break;
    case PGO_TRUNCATE:
        r.what = "Truncate";
        rc = rd_stream_xid(&r, streaming, m) || rd_u32(&r, &m->truncate.nrels, "relation count") ||
             rd_u8(&r, &m->truncate.options, "options");
        if (rc)
            break;
        if ((uint64_t)(r.end - r.p) < (uint64_t)m->truncate.nrels * 4)
            return rd_fail(&r, "relation ids");
        m->truncate.relids = r.p;
        r.p += (size_t)m->truncate.nrels * 4;
        break;
    case PGO_MESSAGE:
        r.what = "Message";
        rc = rd_stream_xid(&r, streaming, m) || rd_u8(&r, &m->message.flags, "flags") ||
             rd_u64(&r, &m->message.lsn, "LSN") || rd_str(&r, &m->message.prefix, "prefix") ||
             rd_u32(&r, &m->message.len, "content length");
        if (rc)
            break;
        if ((uint64_t)(r.end - r.p) < m->message.len)
            return rd_fail(&r, "content");
        m->message.content = r.p;
        r.p += m->message.len;
        break;
    case PGO_STREAM_START:
        r.what = "Stream Start";
        rc = rd_u32(&r, &m->xid, "xid") || rd_u8(&r, &m->stream_start.first_segment, "flags");
        break;
    case PGO_STREAM_STOP:
        r.what = "Stream Stop";
        break;
    case PGO_STREAM_ABORT:
        r.what = "Stream Abort";
        rc = rd_u32(&r, &m->xid, "xid") || rd_u32(&r, &m->stream_abort.subxid, "subxid");
        /* Protocol 4 (PostgreSQL 16) appends abort LSN and time; ignore them. */
        r.p = r.end;
        break;
    default:
        return cdc_fail(err, errlen, CDC_EINVAL, "pgoutput message type 0x%02x is unknown",
                        (unsigned)buf[0]);
    }
    if (rc)
        return CDC_EINVAL;
    if (r.p != r.end)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "pgoutput %s message has %zu unexpected trailing bytes", r.what,
                        (size_t)(r.end - r.p));
    return 0;
}
