/* Binlog event framing and control events.  Layouts: MariaDB's
 * sql/log_event.h and the "Binary log" chapter of the MySQL internals
 * manual; every field is named where it is read. */
#include <string.h>
#include <strings.h>

#include "source/mysql/binlog.h"
#include "util/err.h"

void binlog_format_init(struct binlog_format *fmt, bool checksum)
{
    memset(fmt, 0, sizeof *fmt);
    fmt->checksum = checksum;
    fmt->header_len = BINLOG_HEADER_LEN;
    /* v4 defaults, used until the FORMAT_DESCRIPTION event overrides them. */
    fmt->post_len[BINLOG_QUERY] = 13;
    fmt->post_len[BINLOG_ROTATE] = 8;
    fmt->post_len[BINLOG_TABLE_MAP] = 8;
    for (int t = BINLOG_WRITE_ROWS_V1; t <= BINLOG_DELETE_ROWS_V1; t++)
        fmt->post_len[t] = 8;
    for (int t = BINLOG_WRITE_ROWS_V2; t <= BINLOG_DELETE_ROWS_V2; t++)
        fmt->post_len[t] = 10;
    fmt->post_len[BINLOG_GTID] = 19;
    fmt->post_len[BINLOG_GTID_LIST] = 4;
}

int binlog_frame(const struct binlog_format *fmt, const uint8_t *p, size_t n,
                 struct binlog_event *ev, char *err, size_t errlen)
{
    if (n < BINLOG_HEADER_LEN)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "binlog event of %zu bytes is shorter than its header", n);
    struct binlog_header *h = &ev->h;
    h->timestamp = binlog_u32(p);            /* 0: timestamp */
    h->type = p[4];                          /* 4: type code */
    h->server_id = binlog_u32(p + 5);        /* 5: server id */
    h->size = binlog_u32(p + 9);             /* 9: event size */
    h->next_pos = binlog_u32(p + 13);        /* 13: log position of the next event */
    h->flags = (uint16_t)binlog_u16(p + 17); /* 17: flags */
    size_t hl = fmt->header_len >= BINLOG_HEADER_LEN ? fmt->header_len : BINLOG_HEADER_LEN;
    if (h->size > n || h->size < hl)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "binlog event type %u claims %u bytes but %zu arrived", h->type, h->size,
                        n);
    size_t end = h->size;
    /* The format description carries its own checksum setting: it is
     * checksummed when it says so, whatever was in force before. */
    bool sum = fmt->checksum;
    if (h->type == BINLOG_FORMAT_DESCRIPTION) {
        sum = false; /* binlog_parse_format reads the algorithm byte itself */
    }
    if (sum) {
        if (end < hl + BINLOG_CHECKSUM_LEN)
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "binlog event type %u of %zu bytes has no room for its checksum",
                            h->type, end);
        end -= BINLOG_CHECKSUM_LEN;
    }
    ev->body = p + hl;
    ev->body_len = end - hl;
    return 0;
}

int binlog_parse_format(struct binlog_format *fmt, const struct binlog_event *ev, char *err,
                        size_t errlen)
{
    /* binlog_version(2) server_version(50) create_timestamp(4)
     * header_length(1) post_header_lengths(one per type) checksum_alg(1)
     * checksum(4).  The algorithm byte and checksum are always present. */
    const uint8_t *b = ev->body;
    size_t n = ev->body_len;
    if (n < 2 + 50 + 4 + 1 + 5)
        return cdc_fail(err, errlen, CDC_EINVAL, "format description event too short (%zu bytes)",
                        n);
    unsigned version = binlog_u16(b);
    if (version != 4)
        return cdc_fail(err, errlen, CDC_EINVAL, "binlog version %u is not supported (need 4)",
                        version);
    memcpy(fmt->server_version, b + 2, 50);
    fmt->server_version[50] = '\0';
    uint8_t hl = b[56];
    if (hl < BINLOG_HEADER_LEN)
        return cdc_fail(err, errlen, CDC_EINVAL, "format description: header length %u < 19", hl);
    size_t ntypes = n - 57 - 5;
    uint8_t alg = b[n - 5];
    memset(fmt->post_len, 0, sizeof fmt->post_len);
    for (size_t i = 0; i < ntypes && i + 1 < sizeof fmt->post_len; i++)
        fmt->post_len[i + 1] = b[57 + i];
    if (alg != 0 && alg != 1 && alg != 255)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "format description: checksum algorithm %u is not supported", alg);
    fmt->checksum = alg == 1;
    fmt->header_len = hl;
    fmt->have_description = true;
    return 0;
}

int binlog_parse_rotate(const struct binlog_format *fmt, const struct binlog_event *ev,
                        struct binlog_rotate *out, char *err, size_t errlen)
{
    /* position(8) then the new file's name to the end. */
    size_t pl = fmt->post_len[BINLOG_ROTATE] ? fmt->post_len[BINLOG_ROTATE] : 8;
    if (ev->body_len < pl || pl < 8)
        return cdc_fail(err, errlen, CDC_EINVAL, "rotate event too short (%zu bytes)",
                        ev->body_len);
    out->pos = binlog_u64(ev->body);
    out->file = (const char *)ev->body + pl;
    out->file_len = ev->body_len - pl;
    if (out->file_len == 0 || out->file_len > 512 || memchr(out->file, '\0', out->file_len))
        return cdc_fail(err, errlen, CDC_EINVAL, "rotate event has a bad file name");
    return 0;
}

int binlog_parse_gtid(const struct binlog_event *ev, struct binlog_gtid *out, char *err,
                      size_t errlen)
{
    /* seq_no(8) domain_id(4) flags2(1) [commit_id(8) if FL_GROUP_COMMIT_ID] */
    const uint8_t *b = ev->body;
    if (ev->body_len < 13)
        return cdc_fail(err, errlen, CDC_EINVAL, "GTID event too short (%zu bytes)", ev->body_len);
    out->seq = binlog_u64(b);
    out->domain = binlog_u32(b + 8);
    out->flags = b[12];
    out->server_id = ev->h.server_id;
    out->commit_id = 0;
    if ((out->flags & BINLOG_GTID_GROUP_COMMIT) && ev->body_len >= 21)
        out->commit_id = binlog_u64(b + 13);
    return 0;
}

int binlog_parse_gtid_list(const struct binlog_event *ev, struct binlog_gtid_list *out, char *err,
                           size_t errlen)
{
    /* count(4; the top 4 bits are flags) then count x {domain(4) server(4) seq(8)} */
    if (ev->body_len < 4)
        return cdc_fail(err, errlen, CDC_EINVAL, "GTID list event too short");
    out->count = binlog_u32(ev->body) & 0x0fffffffu;
    if ((ev->body_len - 4) / 16 < out->count)
        return cdc_fail(err, errlen, CDC_EINVAL, "GTID list of %u entries in %zu bytes", out->count,
                        ev->body_len);
    out->p = ev->body + 4;
    return 0;
}

void binlog_gtid_list_at(const struct binlog_gtid_list *l, uint32_t i, struct binlog_gtid *g)
{
    const uint8_t *p = l->p + (size_t)i * 16;
    memset(g, 0, sizeof *g);
    g->domain = binlog_u32(p);
    g->server_id = binlog_u32(p + 4);
    g->seq = binlog_u64(p + 8);
}

int binlog_parse_xid(const struct binlog_event *ev, uint64_t *xid, char *err, size_t errlen)
{
    if (ev->body_len < 8)
        return cdc_fail(err, errlen, CDC_EINVAL, "XID event too short");
    *xid = binlog_u64(ev->body);
    return 0;
}

int binlog_parse_query(const struct binlog_format *fmt, const struct binlog_event *ev,
                       struct binlog_query *out, char *err, size_t errlen)
{
    /* post-header: thread_id(4) exec_time(4) db_len(1) error_code(2)
     * status_vars_len(2); body: status vars, db name, NUL, statement. */
    size_t pl = fmt->post_len[BINLOG_QUERY] ? fmt->post_len[BINLOG_QUERY] : 13;
    const uint8_t *b = ev->body;
    size_t n = ev->body_len;
    if (pl < 13 || n < pl)
        return cdc_fail(err, errlen, CDC_EINVAL, "query event too short (%zu bytes)", n);
    out->thread_id = binlog_u32(b);
    out->exec_time = binlog_u32(b + 4);
    size_t db_len = b[8];
    out->error_code = (uint16_t)binlog_u16(b + 9);
    size_t status_len = binlog_u16(b + 11);
    size_t at = pl;
    if (n - at < status_len || n - at - status_len < db_len + 1)
        return cdc_fail(err, errlen, CDC_EINVAL, "query event: lengths exceed the event");
    at += status_len;
    out->db = (const char *)b + at;
    out->db_len = db_len;
    at += db_len + 1; /* the NUL */
    out->sql = (const char *)b + at;
    out->sql_len = n - at;
    return 0;
}

int binlog_parse_heartbeat(const struct binlog_event *ev, struct binlog_heartbeat *out)
{
    out->file = (const char *)ev->body;
    out->file_len = ev->body_len;
    return 0;
}

/* True if s[0..n) starts with the keyword kw (case-insensitive) followed by
 * the end, a space or a backquote; *rest is what follows. */
static bool keyword(const char *s, size_t n, const char *kw, size_t *rest)
{
    size_t k = strlen(kw);
    if (n < k || strncasecmp(s, kw, k) != 0)
        return false;
    if (n > k && s[k] != ' ' && s[k] != '\t' && s[k] != '\n' && s[k] != '`')
        return false;
    *rest = k;
    return true;
}

static size_t skip_space(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The savepoint name after position i: `quoted` (`` doubles a backquote,
 * kept as is: names are compared, never shown) or a bare word. */
static void savepoint_name(const char *s, size_t n, size_t i, const char **name, size_t *len)
{
    i = skip_space(s, n, i);
    size_t j = i;
    if (j < n && s[j] == '`') {
        for (j++; j < n; j++) {
            if (s[j] != '`')
                continue;
            if (j + 1 < n && s[j + 1] == '`')
                j++; /* a doubled backquote inside the name */
            else
                break;
        }
        j = j < n ? j + 1 : n;
    } else {
        while (j < n && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' && s[j] != ';')
            j++;
    }
    *name = s + i;
    *len = j - i;
}

enum binlog_stmt binlog_query_kind(const char *sql, size_t len, const char **name, size_t *name_len)
{
    size_t i = skip_space(sql, len, 0), r;
    const char *s = sql + i;
    size_t n = len - i;
    *name = NULL;
    *name_len = 0;
    if (keyword(s, n, "BEGIN", &r))
        return BINLOG_STMT_BEGIN;
    if (keyword(s, n, "COMMIT", &r))
        return BINLOG_STMT_COMMIT;
    if (keyword(s, n, "XA", &r))
        return BINLOG_STMT_XA;
    if (keyword(s, n, "SAVEPOINT", &r)) {
        savepoint_name(s, n, r, name, name_len);
        return BINLOG_STMT_SAVEPOINT;
    }
    if (keyword(s, n, "RELEASE", &r)) {
        size_t k = skip_space(s, n, r), r2;
        if (keyword(s + k, n - k, "SAVEPOINT", &r2)) {
            savepoint_name(s, n, k + r2, name, name_len);
            return BINLOG_STMT_RELEASE;
        }
        return BINLOG_STMT_OTHER;
    }
    if (keyword(s, n, "ROLLBACK", &r)) {
        size_t k = skip_space(s, n, r), r2;
        if (keyword(s + k, n - k, "TO", &r2)) {
            size_t k2 = skip_space(s, n, k + r2), r3;
            if (keyword(s + k2, n - k2, "SAVEPOINT", &r3))
                k2 += r3;
            savepoint_name(s, n, k2, name, name_len);
            return BINLOG_STMT_ROLLBACK_TO;
        }
        return BINLOG_STMT_ROLLBACK;
    }
    return BINLOG_STMT_OTHER;
}

int binlog_lenenc(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    if (q >= end)
        return -1;
    uint8_t c = *q++;
    size_t k;
    if (c < 0xfb) {
        *v = c;
        *p = q;
        return 0;
    }
    if (c == 0xfc)
        k = 2;
    else if (c == 0xfd)
        k = 3;
    else if (c == 0xfe)
        k = 8;
    else
        return -1; /* 0xfb NULL, 0xff error */
    if ((size_t)(end - q) < k)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < k; i++)
        x |= (uint64_t)q[i] << (8 * i);
    *v = x;
    *p = q + k;
    return 0;
}

uint32_t binlog_file_seq(const char *name, size_t len)
{
    size_t dot = len;
    while (dot > 0 && name[dot - 1] != '.')
        dot--;
    if (dot == 0 || dot == len)
        return 0;
    uint64_t v = 0;
    for (size_t i = dot; i < len; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
        if (v > UINT32_MAX)
            return 0;
    }
    return (uint32_t)v;
}
