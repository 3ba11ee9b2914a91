#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mysql.h>

#include <errmsg.h>
#include <mariadb_rpl.h>
#include <mysqld_error.h>

#include "source/mysql/myconn.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

int myconn_fail(MYSQL *m, char *err, size_t errlen, const char *what)
{
    unsigned e = mysql_errno(m);
    bool lost = e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR ||
                e == CR_CONN_HOST_ERROR;
    return cdc_fail(err, errlen, lost ? CDC_ECONN : CDC_ERR, "%s: %s (error %u)", what,
                    mysql_error(m), e);
}

int myconn_open(MYSQL **out, const struct myconn_cfg *cfg, char *err, size_t errlen)
{
    *out = NULL;
    MYSQL *m = mysql_init(NULL);
    if (!m)
        return cdc_fail(err, errlen, CDC_ERR, "out of memory");
    unsigned ct = cfg->connect_timeout_s ? cfg->connect_timeout_s : 10;
    mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    if (cfg->read_timeout_s)
        mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &cfg->read_timeout_s);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    const char *host = cfg->host && cfg->host[0] ? cfg->host : "127.0.0.1";
    unsigned port = cfg->port ? cfg->port : 3306;
    if (!mysql_real_connect(m, host, cfg->user, cfg->password, cfg->database, port, NULL, 0)) {
        unsigned e = mysql_errno(m);
        int code =
            e == ER_ACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR || e == ER_BAD_DB_ERROR
                ? CDC_EINVAL
                : CDC_ECONN;
        cdc_fail(err, errlen, code, "cannot connect to MySQL at %s:%u as %s: %s (error %u)", host,
                 port, cfg->user ? cfg->user : "", mysql_error(m), e);
        mysql_close(m);
        return code;
    }
    *out = m;
    return 0;
}

void myconn_close(MYSQL *m)
{
    if (m)
        mysql_close(m);
}

int myconn_exec(MYSQL *m, const char *sql, char *err, size_t errlen)
{
    if (mysql_query(m, sql))
        return myconn_fail(m, err, errlen, sql);
    MYSQL_RES *res = mysql_store_result(m);
    if (res)
        mysql_free_result(res);
    return 0;
}

int myconn_query_value(MYSQL *m, const char *sql, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    if (outlen)
        out[0] = '\0';
    if (mysql_query(m, sql))
        return myconn_fail(m, err, errlen, sql);
    MYSQL_RES *res = mysql_store_result(m);
    if (!res)
        return mysql_errno(m) ? myconn_fail(m, err, errlen, sql) : 0;
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row && row[0] && outlen)
        str_copy(out, outlen, row[0]);
    mysql_free_result(res);
    return 0;
}

/* The global variables the checks read, by name; absent ones stay "". */
struct vars {
    char log_bin[16], binlog_format[16], row_image[16], row_metadata[16], compress[16],
        checksum[16], server_id[16], version[64], gtid_pos[512];
};

static int read_vars(MYSQL *m, struct vars *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    const char *sql = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', "
                      "'binlog_format', 'binlog_row_image', 'binlog_row_metadata', "
                      "'log_bin_compress', 'binlog_checksum', 'server_id', 'version', "
                      "'gtid_binlog_pos')";
    if (mysql_query(m, sql))
        return myconn_fail(m, err, errlen, "reading server variables");
    MYSQL_RES *res = mysql_store_result(m);
    if (!res)
        return myconn_fail(m, err, errlen, "reading server variables");
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        const char *k = row[0], *val = row[1] ? row[1] : "";
        char *dst = NULL;
        size_t len = 0;
#define VAR(name, field)                                                                           \
    if (strcasecmp(k, name) == 0) {                                                                \
        dst = v->field;                                                                            \
        len = sizeof v->field;                                                                     \
    }
        VAR("log_bin", log_bin)
        VAR("binlog_format", binlog_format)
        VAR("binlog_row_image", row_image)
        VAR("binlog_row_metadata", row_metadata)
        VAR("log_bin_compress", compress)
        VAR("binlog_checksum", checksum)
        VAR("server_id", server_id)
        VAR("version", version)
        VAR("gtid_binlog_pos", gtid_pos)
#undef VAR
        if (dst)
            str_copy(dst, len, val);
    }
    mysql_free_result(res);
    return 0;
}

static int check_settings(const struct vars *v, char *err, size_t errlen)
{
    if (strcasecmp(v->log_bin, "ON") != 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "the server's binary log is off (log_bin=%s): start it with "
                        "--log-bin, binlog_format=ROW, binlog_row_image=FULL and "
                        "binlog_row_metadata=FULL",
                        v->log_bin[0] ? v->log_bin : "OFF");
    if (strcasecmp(v->binlog_format, "ROW") != 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "binlog_format is %s; cdc needs ROW (SET GLOBAL binlog_format=ROW and "
                        "binlog_format=ROW in the server's configuration)",
                        v->binlog_format);
    if (strcasecmp(v->row_image, "FULL") != 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "binlog_row_image is %s; cdc needs FULL (SET GLOBAL "
                        "binlog_row_image=FULL and the same in the server's configuration)",
                        v->row_image[0] ? v->row_image : "missing");
    if (!v->row_metadata[0])
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "binlog_row_metadata is not supported by this server (%s); cdc needs "
                        "binlog_row_metadata=FULL (MariaDB 10.5+, MySQL 8.0.1+)",
                        v->version);
    if (strcasecmp(v->row_metadata, "FULL") != 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "binlog_row_metadata is %s; cdc needs FULL so that every table map "
                        "carries column names, signedness and ENUM/SET values (SET GLOBAL "
                        "binlog_row_metadata=FULL and the same in the server's configuration)",
                        v->row_metadata);
    if (v->compress[0] && strcasecmp(v->compress, "OFF") != 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "log_bin_compress is %s; cdc cannot read compressed binlog events "
                        "(SET GLOBAL log_bin_compress=OFF)",
                        v->compress);
    if (strtoul(v->server_id, NULL, 10) == 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "server_id is 0; a server writing a binlog for replicas needs a "
                        "non-zero server_id");
    return 0;
}

static bool access_denied(unsigned e)
{
    return e == ER_SPECIFIC_ACCESS_DENIED_ERROR || e == ER_ACCESS_DENIED_ERROR ||
           e == ER_TABLEACCESS_DENIED_ERROR || e == ER_DBACCESS_DENIED_ERROR ||
           e == ER_COLUMNACCESS_DENIED_ERROR;
}

static int check_master_status(MYSQL *m, const char *user, struct myconn_server *out, char *err,
                               size_t errlen)
{
    if (mysql_query(m, "SHOW MASTER STATUS")) {
        unsigned e = mysql_errno(m);
        if (access_denied(e))
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "user %s lacks the REPLICATION CLIENT privilege (BINLOG MONITOR on "
                            "MariaDB 10.5+): SHOW MASTER STATUS failed: %s",
                            user, mysql_error(m));
        return myconn_fail(m, err, errlen, "SHOW MASTER STATUS");
    }
    MYSQL_RES *res = mysql_store_result(m);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row && row[0]) {
        str_copy(out->file, sizeof out->file, row[0]);
        out->pos = (uint32_t)strtoul(row[1] ? row[1] : "4", NULL, 10);
    }
    if (res)
        mysql_free_result(res);
    return 0;
}

static int check_select(MYSQL *m, const char *user, const char *const *tables, size_t ntables,
                        char *err, size_t errlen)
{
    for (size_t i = 0; i < ntables; i++) {
        const char *t = tables[i];
        const char *dot = strchr(t, '.');
        if (!dot)
            return cdc_fail(err, errlen, CDC_EINVAL, "table \"%s\": expected db.table", t);
        struct buf sql = BUF_INIT;
        buf_puts(&sql, "SELECT 1 FROM `");
        for (const char *s = t; *s; s++) {
            if (s == dot) {
                buf_puts(&sql, "`.`");
                continue;
            }
            if (*s == '`')
                buf_putc(&sql, '`');
            buf_putc(&sql, *s);
        }
        buf_puts(&sql, "` LIMIT 0");
        int q = mysql_query(m, sql.p);
        buf_fini(&sql);
        if (q) {
            unsigned e = mysql_errno(m);
            if (access_denied(e))
                return cdc_fail(err, errlen, CDC_EINVAL,
                                "user %s lacks the SELECT privilege on %s: %s", user, t,
                                mysql_error(m));
            if (e == ER_NO_SUCH_TABLE || e == ER_BAD_DB_ERROR)
                return cdc_fail(err, errlen, CDC_EINVAL, "table %s does not exist: %s", t,
                                mysql_error(m));
            return myconn_fail(m, err, errlen, "checking SELECT");
        }
        MYSQL_RES *res = mysql_store_result(m);
        if (res)
            mysql_free_result(res);
    }
    return 0;
}

/* REPLICATION SLAVE: a non-blocking dump from the current position on a
 * second connection gets a ROTATE and a FORMAT_DESCRIPTION, then EOF; a user
 * without the privilege is refused at the first read. */
static int check_dump(const struct myconn_cfg *cfg, const struct myconn_server *srv, char *err,
                      size_t errlen)
{
    MYSQL *m;
    int rc = myconn_open(&m, cfg, err, errlen);
    if (rc)
        return rc;
    char e[256];
    rc = myconn_exec(m, "SET @master_binlog_checksum = @@global.binlog_checksum", e, sizeof e);
    if (!rc)
        rc = myconn_exec(m, "SET @mariadb_slave_capability = 4", e, sizeof e);
    MARIADB_RPL *rpl = rc ? NULL : mariadb_rpl_init(m);
    if (!rc && !rpl)
        rc = cdc_fail(e, sizeof e, CDC_ERR, "mariadb_rpl_init failed");
    if (!rc) {
        const char *file = srv->file[0] ? srv->file : "";
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, file, strlen(file));
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, (unsigned long)(srv->pos ? srv->pos : 4));
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID, (uint32_t)0);
        mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, (uint32_t)MARIADB_RPL_BINLOG_DUMP_NON_BLOCK);
        if (mariadb_rpl_open(rpl) == 0) {
            MARIADB_RPL_EVENT *ev = NULL;
            while ((ev = mariadb_rpl_fetch(rpl, ev)))
                ;
        }
        unsigned en = mysql_errno(m);
        if (en && access_denied(en))
            rc = cdc_fail(err, errlen, CDC_EINVAL,
                          "user %s lacks the REPLICATION SLAVE privilege: a binlog dump was "
                          "refused: %s",
                          cfg->user ? cfg->user : "", mysql_error(m));
        else if (en)
            rc = myconn_fail(m, err, errlen, "binlog dump");
    } else {
        cdc_fail(err, errlen, rc, "%s", e);
    }
    if (rpl)
        mariadb_rpl_close(rpl);
    mysql_close(m);
    return rc;
}

int myconn_check(const struct myconn_cfg *cfg, const char *const *tables, size_t ntables,
                 struct myconn_server *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    MYSQL *m;
    int rc = myconn_open(&m, cfg, err, errlen);
    if (rc)
        return rc;
    const char *user = cfg->user ? cfg->user : "";
    struct vars v;
    rc = read_vars(m, &v, err, errlen);
    if (!rc)
        rc = check_settings(&v, err, errlen);
    if (!rc) {
        str_copy(out->version, sizeof out->version, v.version);
        out->mariadb = strstr(v.version, "MariaDB") != NULL;
        out->server_id = (uint32_t)strtoul(v.server_id, NULL, 10);
        out->checksum = strcasecmp(v.checksum, "CRC32") == 0;
        str_copy(out->gtid_binlog_pos, sizeof out->gtid_binlog_pos, v.gtid_pos);
        rc = check_master_status(m, user, out, err, errlen);
    }
    if (!rc)
        rc = check_select(m, user, tables, ntables, err, errlen);
    mysql_close(m);
    if (!rc)
        rc = check_dump(cfg, out, err, errlen);
    return rc;
}
