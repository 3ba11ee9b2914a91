/* MySQL source: the server checks, what `cdc deploy` and `cdc undeploy` do,
 * and the binlog's places the source asks the server about. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/mysrc_int.h"
#include "state/store.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/mem.h"
#include "util/str.h"

void mysrc_conn_cfg(const struct config *cfg, struct myconn_cfg *cc)
{
    double ct = cfg->source.connect_timeout_seconds;
    *cc = (struct myconn_cfg){
        .host = cfg->source.host,
        .port = (unsigned)cfg->source.port,
        .user = cfg->source.username,
        .password = cfg->source.password,
        .connect_timeout_s = ct >= 1 ? (unsigned)ct : 1,
    };
}

/* Unset (0), the id is the pipeline's own: a hash of pipeline_id in
 * [2^30, 2^31), away from the small ids people give servers (MariaDB's
 * default is 1), different for different pipelines as far as a hash can
 * make them, and the same on every run. */
uint32_t mysrc_server_id(const struct config *cfg)
{
    if (cfg->source.mysql_server_id > 0)
        return (uint32_t)cfg->source.mysql_server_id;
    const char *id = cfg->pipeline_id; /* required */
    uint64_t h = hash_finish(hash_bytes(HASH_SEED, id, strlen(id)));
    return 0x40000000u | (uint32_t)(h & 0x3fffffffu);
}

/* What follows the id where cdc names it: whether it was derived. */
static const char *server_id_origin(const struct config *cfg)
{
    return cfg->source.mysql_server_id ? "" : " (derived from pipeline_id)";
}

int mysrc_check(const struct config *cfg, struct myconn_server *srv, char *err, size_t errlen)
{
    struct myconn_cfg cc;
    mysrc_conn_cfg(cfg, &cc);
    char e[768];
    int rc = myconn_check(&cc, (const char *const *)cfg->source.tables, cfg->source.ntables, srv, e,
                          sizeof e);
    if (rc)
        return cdc_fail(err, errlen, rc, "%s", e);
    if (!srv->mariadb)
        return cdc_fail(err, errlen, CDC_ENOTSUP,
                        "the server is %s, not MariaDB: this version of cdc reads MariaDB "
                        "binlogs (Oracle MySQL's GTIDs and consistent snapshots are not "
                        "implemented; see docs/mysql.md)",
                        srv->version);
    uint32_t id = mysrc_server_id(cfg);
    if (id == srv->server_id)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "source.mysql_server_id %u%s is the server's own server_id: cdc reads "
                        "the binlog as a replica and needs an id no other server or replica uses",
                        id, server_id_origin(cfg));
    return 0;
}

int mysrc_has_binlog(const struct myconn_cfg *cc, const char *file, bool *has, char *err,
                     size_t errlen)
{
    *has = false;
    MYSQL *m;
    int rc = myconn_open(&m, cc, err, errlen);
    if (rc)
        return rc;
    if (mysql_query(m, "SHOW BINARY LOGS")) {
        rc = myconn_fail(m, err, errlen, "SHOW BINARY LOGS");
    } else {
        MYSQL_RES *res = mysql_store_result(m);
        MYSQL_ROW row;
        while (res && (row = mysql_fetch_row(res)))
            if (row[0] && strcmp(row[0], file) == 0)
                *has = true;
        if (res)
            mysql_free_result(res);
    }
    mysql_close(m);
    return rc;
}

int mysrc_current_place(const struct myconn_cfg *cc, struct mysrc_place *out, char *err,
                        size_t errlen)
{
    MYSQL *m;
    int rc = myconn_open(&m, cc, err, errlen);
    if (rc)
        return rc;
    mysrc_place_fini(out);
    if (mysql_query(m, "SHOW MASTER STATUS")) {
        rc = myconn_fail(m, err, errlen, "SHOW MASTER STATUS");
    } else {
        MYSQL_RES *res = mysql_store_result(m);
        MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
        if (row && row[0] && row[1]) {
            str_copy(out->file, sizeof out->file, row[0]);
            out->pos = (uint32_t)strtoul(row[1], NULL, 10);
        } else {
            rc = cdc_fail(err, errlen, CDC_EINVAL, "SHOW MASTER STATUS shows no binlog (log_bin)");
        }
        if (res)
            mysql_free_result(res);
    }
    char gtid[1024] = "";
    if (!rc) {
        char esc[2 * MYDECODE_FILE_MAX + 1];
        mysql_real_escape_string(m, esc, out->file, (unsigned long)strlen(out->file));
        char *sql = xasprintf("SELECT BINLOG_GTID_POS('%s', %u)", esc, out->pos);
        rc = myconn_query_value(m, sql, gtid, sizeof gtid, err, errlen);
        free(sql);
    }
    mysql_close(m);
    out->gtid = xstrdup(gtid);
    out->scalar = mydecode_scalar(out->file, out->pos);
    return rc;
}

/* Nothing is created on the server: deploy checks what capture needs and
 * says where a first run would start. */
int mysrc_deploy(const struct config *cfg, FILE *out, char *err, size_t errlen)
{
    struct myconn_server srv;
    int rc = mysrc_check(cfg, &srv, err, errlen);
    if (rc)
        return rc;
    fprintf(out,
            "server %s (server_id %u): log_bin ON, binlog_format ROW, binlog_row_image FULL, "
            "binlog_row_metadata FULL: ok\n",
            srv.version, srv.server_id);
    fprintf(out,
            "privileges of %s: REPLICATION SLAVE, REPLICATION CLIENT, SELECT on %zu "
            "table(s): ok\n",
            cfg->source.username, cfg->source.ntables);
    fprintf(out, "cdc reads as replica server_id %u%s\n", mysrc_server_id(cfg),
            server_id_origin(cfg));
    fprintf(out, "binlog: %s at %u (gtid %s); the position is kept in the state store\n", srv.file,
            srv.pos, srv.gtid_binlog_pos[0] ? srv.gtid_binlog_pos : "none");
    return 0;
}

void mysrc_undeploy_warning(const struct config *cfg, char *buf, size_t len)
{
    snprintf(buf, len,
             "undeploy forgets pipeline %s's binlog position (kept in its state store); the next "
             "run starts at the binlog's end, or reads the tables again as snapshot_mode says, "
             "and changes made until then are not captured.",
             cfg->pipeline_id);
}

int mysrc_undeploy(const struct config *cfg, FILE *out, char *err, size_t errlen)
{
    char *path = store_path(cfg->platform.state_dir, cfg->pipeline_id);
    struct store *st = NULL;
    int rc = store_open(&st, path, err, errlen);
    free(path);
    char *v = NULL;
    if (!rc)
        rc = store_kv_get(st, MYSRC_KEY_POSITION, &v, err, errlen);
    if (!rc && v)
        rc = store_kv_delete(st, MYSRC_KEY_POSITION, err, errlen);
    if (!rc)
        fprintf(out, "binlog position: %s\n", v ? "forgotten" : "absent");
    free(v);
    store_close(st);
    return rc;
}
