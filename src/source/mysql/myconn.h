/* Connections to a MySQL / MariaDB server (libmariadb) and the checks cdc
 * makes before it reads a binlog: the settings row-based capture depends on
 * and the privileges it needs.  `cdc run` and `cdc deploy` call
 * myconn_check alike; each refusal names the setting or privilege and says
 * how to fix it. */
#ifndef CDC_SOURCE_MYSQL_MYCONN_H
#define CDC_SOURCE_MYSQL_MYCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

struct myconn_cfg {
    const char *host; /* "127.0.0.1" if NULL */
    unsigned port;    /* 3306 if 0 */
    const char *user;
    const char *password;       /* never logged */
    const char *database;       /* default schema; may be NULL */
    unsigned connect_timeout_s; /* 10 if 0 */
    unsigned read_timeout_s;    /* 0: none */
};

/* Opens a connection in utf8mb4 with time_zone '+00:00'.  err never holds
 * the password. */
int myconn_open(MYSQL **out, const struct myconn_cfg *cfg, char *err, size_t errlen);
void myconn_close(MYSQL *m);

/* Runs sql; the first column of the first row goes to out (empty if NULL
 * or no row).  Returns 0, CDC_ECONN, or CDC_ERR with the server's error. */
int myconn_query_value(MYSQL *m, const char *sql, char *out, size_t outlen, char *err,
                       size_t errlen);
/* Runs sql and discards any result. */
int myconn_exec(MYSQL *m, const char *sql, char *err, size_t errlen);

/* Error for a failed call on m: CDC_ECONN when the connection is lost. */
int myconn_fail(MYSQL *m, char *err, size_t errlen, const char *what);

/* What the checks found out. */
struct myconn_server {
    char version[64];
    bool mariadb;
    uint32_t server_id;
    bool checksum;  /* binlog_checksum = CRC32 */
    char file[256]; /* current binlog file (SHOW MASTER STATUS) */
    uint32_t pos;
    char gtid_binlog_pos[512];
};

/* Checks the server for binlog capture: log_bin=ON, binlog_format=ROW,
 * binlog_row_image=FULL, binlog_row_metadata=FULL, log_bin_compress=OFF
 * (MariaDB), a non-zero server_id; the privileges REPLICATION CLIENT
 * (SHOW MASTER STATUS), REPLICATION SLAVE (a binlog dump from the current
 * position, on a second connection) and SELECT on each of tables
 * ("db.table").  Returns 0, CDC_EINVAL with a sentence naming the setting
 * or privilege, or CDC_ECONN. */
int myconn_check(const struct myconn_cfg *cfg, const char *const *tables, size_t ntables,
                 struct myconn_server *out, char *err, size_t errlen);

#endif
