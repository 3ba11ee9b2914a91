#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mysql.h>

#include <errmsg.h>
#include <mariadb_rpl.h>
#include <mysqld_error.h>

#include "source/mysql/mydecode.h"
#include "source/mysql/mystream.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

struct mystream {
    MYSQL *m;
    MARIADB_RPL *rpl;
    MARIADB_RPL_EVENT *ev; /* reused: libmariadb keeps its memory between events */
    bool checksum;
    int fd;
    atomic_bool stop;
};

/* The dump session's settings, as a replica sets them (MariaDB's
 * sql_repl.cc reads them): events with checksums as the server writes them,
 * GTID events as they are (capability 4 = MARIA_SLAVE_CAPABILITY_GTID), the
 * start state, heartbeats. */
static int prepare_session(struct mystream *s, const struct mystream_cfg *cfg, char *err,
                           size_t errlen)
{
    char v[32];
    int rc = myconn_query_value(s->m, "SELECT @@global.binlog_checksum", v, sizeof v, err, errlen);
    if (rc)
        return rc;
    s->checksum = strcmp(v, "CRC32") == 0;
    rc = myconn_exec(s->m, "SET @master_binlog_checksum = @@global.binlog_checksum", err, errlen);
    if (!rc)
        rc = myconn_exec(s->m, "SET @mariadb_slave_capability = 4", err, errlen);
    if (!rc && cfg->heartbeat_ms) {
        char sql[96];
        snprintf(sql, sizeof sql, "SET @master_heartbeat_period = %llu",
                 (unsigned long long)cfg->heartbeat_ms * 1000000ULL);
        rc = myconn_exec(s->m, sql, err, errlen);
    }
    if (!rc && cfg->gtid_state && cfg->gtid_state[0]) {
        struct buf state = BUF_INIT, sql = BUF_INIT;
        /* Parsing first also proves the text holds only digits, '-' and ','. */
        rc = mydecode_gtid_state_parse(cfg->gtid_state, &state, err, errlen);
        if (!rc) {
            buf_printf(&sql, "SET @slave_connect_state = '%s'", state.p);
            rc = myconn_exec(s->m, sql.p, err, errlen);
        }
        buf_fini(&state);
        buf_fini(&sql);
    }
    return rc;
}

int mystream_open(struct mystream **out, const struct mystream_cfg *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->server_id == 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "the replica server id must not be 0 (each reader of a server's binlog "
                        "needs its own id)");
    struct myconn_cfg cc = *cfg->conn;
    if (cfg->heartbeat_ms && !cc.read_timeout_s)
        cc.read_timeout_s = cfg->heartbeat_ms / 1000 * 3 + 10; /* a dead server is noticed */
    struct mystream *s = xcalloc(1, sizeof *s);
    atomic_init(&s->stop, false);
    s->fd = -1;
    int rc = myconn_open(&s->m, &cc, err, errlen);
    if (!rc)
        rc = prepare_session(s, cfg, err, errlen);
    if (!rc) {
        s->rpl = mariadb_rpl_init(s->m);
        if (!s->rpl)
            rc = myconn_fail(s->m, err, errlen, "mariadb_rpl_init");
    }
    if (!rc) {
        bool by_gtid = cfg->gtid_state && cfg->gtid_state[0];
        const char *file = by_gtid || !cfg->file ? "" : cfg->file;
        unsigned long start = by_gtid ? 4 : (cfg->pos ? cfg->pos : 4);
        mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FILENAME, file, strlen(file));
        mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_START, start);
        mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_SERVER_ID, cfg->server_id);
        uint32_t flags = cfg->nonblock ? MARIADB_RPL_BINLOG_DUMP_NON_BLOCK : 0;
        mariadb_rpl_optionsv(s->rpl, MARIADB_RPL_FLAGS, flags);
        if (mariadb_rpl_open(s->rpl))
            rc = myconn_fail(s->m, err, errlen, "starting the binlog dump");
    }
    if (rc) {
        mystream_close(s);
        return rc;
    }
    s->fd = (int)mysql_get_socket(s->m);
    *out = s;
    return 0;
}

bool mystream_checksum(const struct mystream *s)
{
    return s->checksum;
}

int mystream_next(struct mystream *s, const uint8_t **data, size_t *len, char *err, size_t errlen)
{
    if (atomic_load(&s->stop))
        return CDC_ESTOP;
    MARIADB_RPL_EVENT *ev = mariadb_rpl_fetch(s->rpl, s->ev);
    s->ev = ev; /* fetch frees the old event when it fails */
    if (ev) {
        *data = ev->raw_data + ev->raw_data_ofs;
        *len = ev->raw_data_size - ev->raw_data_ofs;
        return 1;
    }
    if (atomic_load(&s->stop))
        return CDC_ESTOP;
    unsigned e = mysql_errno(s->m);
    if (e == 0 && mariadb_rpl_errno(s->rpl) == 0)
        return 0; /* EOF: the end of the binlog in a non-blocking dump */
    if (e == ER_MASTER_FATAL_ERROR_READING_BINLOG)
        return cdc_fail(err, errlen, MYSTREAM_EPURGED,
                        "the server cannot send the binlog from the requested position (purged "
                        "binlog files, or a position or GTID it does not have): %s (error %u)",
                        mysql_error(s->m), e);
    if (e)
        return myconn_fail(s->m, err, errlen, "reading the binlog");
    return cdc_fail(err, errlen, CDC_ECONN, "reading the binlog: %s (error %u)",
                    mariadb_rpl_error(s->rpl), mariadb_rpl_errno(s->rpl));
}

void mystream_interrupt(struct mystream *s)
{
    atomic_store(&s->stop, true);
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR);
}

void mystream_close(struct mystream *s)
{
    if (!s)
        return;
    if (s->ev)
        mariadb_free_rpl_event(s->ev);
    if (s->rpl)
        mariadb_rpl_close(s->rpl); /* frees the handle only */
    if (s->m)
        mysql_close(s->m);
    free(s);
}
