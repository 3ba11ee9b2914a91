/* libpq helpers shared by the PostgreSQL source and the PostgreSQL sink:
 * connecting from config fields (the password never enters a string we could
 * log), one-line error texts, and parameterized queries. */
#ifndef CDC_PG_PGCONN_H
#define CDC_PG_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pgconn_params {
    const char *host;
    int port;
    const char *dbname;
    const char *user;
    const char *password; /* or NULL */
    const char *sslmode;  /* or NULL */
    double connect_timeout_seconds;
    const char *application_name;
    bool replication; /* a logical replication (walsender) connection */
};

/* The session settings every connection starts with, whatever a role or
 * database sets (ALTER ROLE/DATABASE ... SET): values travel as text
 * (pgoutput, COPY, query results) and are parsed and passed on in these
 * formats only (ISO dates, hex byte strings, exact floats, UTC). */
#define PGCONN_FORMAT_OPTIONS                                                                      \
    "-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c TimeZone=UTC -c bytea_output=hex "          \
    "-c extra_float_digits=3"

/* Connects with PGCONN_FORMAT_OPTIONS.  Returns NULL and fills err ("cannot connect to host:port/db
 * as user: <server's reason>") on failure. */
PGconn *pgconn_connect(const struct pgconn_params *p, char *err, size_t errlen);

/* The connection's last error as one line (libpq's text up to its first
 * newline, without the "ERROR:" prefix). */
const char *pgconn_error(PGconn *conn, char *buf, size_t buflen);
/* Like pgconn_error for a failed result. */
const char *pgconn_result_error(const PGresult *res, char *buf, size_t buflen);

/* Runs a statement with text parameters.  Returns the result if its status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK, else NULL with err filled (the caller
 * PQclear()s a non-NULL result). */
PGresult *pgconn_exec(PGconn *conn, char *err, size_t errlen, const char *sql, int nparams,
                      const char *const *params);

/* Double-quotes an identifier (doubling embedded quotes) into a heap string. */
char *pgconn_quote_ident(const char *name);
/* "schema"."table" */
char *pgconn_quote_qualified(const char *schema, const char *name);

/* LSN text "16/B374D848" <-> integer. */
int pgconn_parse_lsn(const char *s, uint64_t *lsn);
void pgconn_format_lsn(uint64_t lsn, char *buf, size_t buflen);

/* The SQLSTATE of a failed result, or "" */
const char *pgconn_sqlstate(const PGresult *res);

#endif
