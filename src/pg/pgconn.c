#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgconn.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

/* Copies the first line of a libpq message, dropping "ERROR:  "/"FATAL:  ". */
static const char *first_line(const char *msg, char *buf, size_t buflen)
{
    if (!msg || !*msg)
        msg = "unknown error";
    for (const char *pfx = NULL; (pfx = strstr(msg, ":  ")) && pfx - msg < 10;)
        msg = pfx + 3;
    size_t n = strcspn(msg, "\n");
    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    return buf;
}

const char *pgconn_error(PGconn *conn, char *buf, size_t buflen)
{
    return first_line(conn ? PQerrorMessage(conn) : NULL, buf, buflen);
}

const char *pgconn_result_error(const PGresult *res, char *buf, size_t buflen)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (primary)
        return first_line(primary, buf, buflen);
    return first_line(res ? PQresultErrorMessage(res) : NULL, buf, buflen);
}

const char *pgconn_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* Server NOTICEs ("relation already exists, skipping") go to the debug log
 * instead of raw stderr lines. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    log_debug("postgres.notice", "message=%s", log_q(first_line(message, line, sizeof line)));
}

PGconn *pgconn_connect(const struct pgconn_params *p, char *err, size_t errlen)
{
    char port[16], timeout[16];
    snprintf(port, sizeof port, "%d", p->port);
    int t = (int)(p->connect_timeout_seconds + 0.999);
    snprintf(timeout, sizeof timeout, "%d", t < 1 ? 1 : t);
    const char *keys[12], *vals[12];
    int n = 0;
    const char *const pairs[][2] = {
        {"host", p->host},
        {"port", port},
        {"dbname", p->dbname},
        {"user", p->user},
        {"password", p->password},
        {"sslmode", p->sslmode},
        {"connect_timeout", timeout},
        {"application_name", p->application_name},
        {"client_encoding", "UTF8"},
        {"options", PGCONN_FORMAT_OPTIONS},
        {"replication", p->replication ? "database" : NULL},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        if (!pairs[i][1])
            continue;
        keys[n] = pairs[i][0];
        vals[n] = pairs[i][1];
        n++;
    }
    keys[n] = vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        char line[512];
        snprintf(err, errlen, "cannot connect to %s:%d/%s as %s: %s", p->host, p->port, p->dbname,
                 p->user, pgconn_error(conn, line, sizeof line));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, notice_to_log, NULL);
    return conn;
}

PGresult *pgconn_exec(PGconn *conn, char *err, size_t errlen, const char *sql, int nparams,
                      const char *const *params)
{
    PGresult *res =
        nparams ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    char line[512];
    if (res)
        pgconn_result_error(res, line, sizeof line);
    else
        pgconn_error(conn, line, sizeof line);
    snprintf(err, errlen, "%s", line);
    PQclear(res);
    return NULL;
}

char *pgconn_quote_ident(const char *name)
{
    struct buf b = BUF_INIT;
    buf_putc(&b, '"');
    for (const char *c = name; *c; c++) {
        if (*c == '"')
            buf_putc(&b, '"');
        buf_putc(&b, *c);
    }
    buf_putc(&b, '"');
    return b.p;
}

char *pgconn_quote_qualified(const char *schema, const char *name)
{
    char *s = pgconn_quote_ident(schema), *t = pgconn_quote_ident(name);
    char *q = xasprintf("%s.%s", s, t);
    free(s);
    free(t);
    return q;
}

int pgconn_parse_lsn(const char *s, uint64_t *lsn)
{
    unsigned hi, lo;
    char tail;
    if (!s || sscanf(s, "%X/%X%c", &hi, &lo, &tail) != 2)
        return -1;
    *lsn = ((uint64_t)hi << 32) | lo;
    return 0;
}

void pgconn_format_lsn(uint64_t lsn, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}
