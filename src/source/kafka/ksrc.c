/* The deliver role's consumer; see ksrc.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/evcodec.h"
#include "source/emitter.h"
#include "source/kafka/ksrc.h"
#include "transport/kafka/kclient.h"
#include "transport/kafka/kenc.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define BATCH_MAX         1000     /* records one poll emits at most */
#define COMMIT_MIN_US     200000   /* offsets are committed at most this often */
#define LAG_LOG_US        15000000 /* per-partition lag in the log this often */
#define COMMITTED_WAIT_MS 10000    /* reading the group's offsets at an assignment */
#define OPEN_WAIT_MS      10000    /* the cluster must answer open this fast */
#define ERROR_LOG_US      5000000  /* a repeated consumer error is logged this often */
#define TOPIC_TEMPLATE    "{topic_prefix}.{schema}.{table}"
#define MAX_PARTITIONS    65536

/* One topic partition this process has seen assigned. */
struct kstream {
    uint32_t id;
    int32_t partition;
    size_t topic; /* index into topics */
    bool assigned;
    int64_t next;      /* the next offset to emit (0: nothing read yet) */
    int64_t acked;     /* what every sink holds: the next offset to read again */
    int64_t committed; /* what the group holds, as far as we know (-1: unknown) */
    int64_t high;      /* the partition's end, from the last fetch (-1: unknown) */
};

struct ksrc {
    struct kclient_ctx kctx; /* first: librdkafka's opaque */
    const struct config *cfg;
    rd_kafka_t *rk;
    char **topics; /* owned; index i is source.tables[i]'s topic */
    size_t ntopics;
    struct kstream *st; /* owned; sorted by id */
    size_t nst;
    bool subscribed;
    struct evcodec_cache cache;
    int64_t commit_every_us, next_commit_us, next_lag_log_us, next_error_log_us;
    uint64_t records, tombstones, commits, commit_failures, rebalances;
    char fatal[512];    /* set by a callback: poll stops the pipeline with it */
    struct emitter *em; /* borrowed: set by poll, for the rebalance callback it serves */
};

static struct ksrc *ks_of(struct source *s)
{
    return s->priv;
}

static int topic_index(const struct ksrc *ks, const char *topic)
{
    for (size_t i = 0; i < ks->ntopics; i++)
        if (strcmp(ks->topics[i], topic) == 0)
            return (int)i;
    return -1;
}

/* The stream of a topic partition, created on first sight; NULL for a topic
 * that is not ours or a partition number beyond what a stream id holds. */
static struct kstream *stream_of(struct ksrc *ks, const char *topic, int32_t partition)
{
    int t = topic_index(ks, topic);
    if (t < 0 || partition < 0 || partition >= MAX_PARTITIONS)
        return NULL;
    uint32_t id = ksrc_stream_id((size_t)t, partition);
    size_t lo = 0, hi = ks->nst;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ks->st[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ks->nst && ks->st[lo].id == id)
        return &ks->st[lo];
    ks->st = xrealloc(ks->st, (ks->nst + 1) * sizeof *ks->st);
    memmove(&ks->st[lo + 1], &ks->st[lo], (ks->nst - lo) * sizeof *ks->st);
    ks->nst++;
    ks->st[lo] = (struct kstream){
        .id = id, .partition = partition, .topic = (size_t)t, .committed = -1, .high = -1};
    return &ks->st[lo];
}

static struct kstream *stream_by_id(struct ksrc *ks, uint32_t id)
{
    for (size_t i = 0; i < ks->nst; i++)
        if (ks->st[i].id == id)
            return &ks->st[i];
    return NULL;
}

/* Commits what every sink holds of the assigned partitions (only: a revoked
 * partition's offset is its new owner's to move).  sync: wait for the
 * answer (a revoke, the end); else the answer comes to on_commit. */
static void commit_acked(struct ksrc *ks, bool sync, const char *why)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < ks->nst; i++) {
        struct kstream *s = &ks->st[i];
        if (s->assigned && s->acked > 0 && s->acked > s->committed)
            rd_kafka_topic_partition_list_add(l, ks->topics[s->topic], s->partition)->offset =
                s->acked;
    }
    if (l->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_commit(ks->rk, l, sync ? 0 : 1);
        if (sync && e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ks->commits++;
            for (int i = 0; i < l->cnt; i++) {
                struct kstream *s = stream_of(ks, l->elems[i].topic, l->elems[i].partition);
                if (s && !l->elems[i].err && l->elems[i].offset > s->committed)
                    s->committed = l->elems[i].offset;
            }
        } else if (e) {
            ks->commit_failures++;
            log_warn("kafka.commit_failed", "why=%s error=%s", why, log_q(rd_kafka_err2str(e)));
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* The answer to an asynchronous commit: what the group now holds. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct ksrc *ks = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return; /* nothing to commit */
    if (err) {
        ks->commit_failures++;
        log_warn("kafka.commit_failed", "error=%s", log_q(rd_kafka_err2str(err)));
        return;
    }
    ks->commits++;
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        struct kstream *s = stream_of(ks, tp->topic, tp->partition);
        if (s && !tp->err && tp->offset > s->committed)
            s->committed = tp->offset;
    }
}

/* Partitions assigned: each starts at the group's offset, or after what
 * this process already read of it when that is further. */
static void on_assign(struct ksrc *ks, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t e = rd_kafka_committed(ks->rk, parts, COMMITTED_WAIT_MS);
    if (e)
        log_warn("kafka.committed_unknown", "error=%s", log_q(rd_kafka_err2str(e)));
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct kstream *s = stream_of(ks, tp->topic, tp->partition);
        if (!s) {
            snprintf(ks->fatal, sizeof ks->fatal,
                     "topic %s partition %d: more partitions than a stream id holds (%d)",
                     tp->topic, (int)tp->partition, MAX_PARTITIONS);
            continue;
        }
        if (e || tp->err)
            tp->offset = RD_KAFKA_OFFSET_INVALID; /* librdkafka reads it when it fetches */
        if (tp->offset >= 0)
            s->committed = tp->offset;
        if (s->next > 0 && s->next > tp->offset)
            tp->offset = s->next;
        s->assigned = true;
        log_info("kafka.assigned", "topic=%s partition=%d stream=%u offset=%" PRId64, tp->topic,
                 (int)tp->partition, s->id, tp->offset);
    }
    ks->rebalances++;
    e = rd_kafka_assign(ks->rk, parts);
    if (e)
        snprintf(ks->fatal, sizeof ks->fatal, "cannot take the assigned partitions: %s",
                 rd_kafka_err2str(e));
}

/* Waits until every sink holds what this process read of the revoked
 * partitions.  Letting them go earlier would let this process's sinks
 * write older changes of a partition after its next owner wrote newer
 * ones (a mirror would keep the older row).  Bounded by half of
 * max.poll.interval.ms: the group evicts a member that takes longer. */
static void drain_revoked(struct ksrc *ks, rd_kafka_topic_partition_list_t *parts)
{
    if (!ks->em || emitter_flush(ks->em) != 0)
        return;
    int64_t deadline =
        clock_mono_us() + (int64_t)ks->cfg->platform.kafka.max_poll_interval_ms * 500;
    struct cdc_acks acks = {0};
    bool all = false;
    while (!all) {
        emitter_confirmed(ks->em, &acks);
        all = true;
        for (int i = 0; i < parts->cnt; i++) {
            struct kstream *s = stream_of(ks, parts->elems[i].topic, parts->elems[i].partition);
            if (!s)
                continue;
            const struct cdc_ack *a = cdc_acks_get(&acks, s->id);
            if (a && (int64_t)a->pos > s->acked)
                s->acked = (int64_t)a->pos;
            all &= s->next == 0 || s->acked >= s->next;
        }
        if (all || emitter_stopping(ks->em))
            break;
        if (clock_mono_us() >= deadline) {
            log_warn("kafka.revoke_undrained", "hint=%s",
                     log_q("the sinks did not finish the revoked partitions in time: "
                           "their next owner may deliver some changes again, and this "
                           "process may write older ones after it"));
            break;
        }
        clock_sleep_us(5000);
    }
    cdc_acks_fini(&acks);
}

/* Partitions revoked: wait for the sinks to hold what was read of them,
 * commit that, then let go. */
static void on_revoke(struct ksrc *ks, rd_kafka_topic_partition_list_t *parts)
{
    drain_revoked(ks, parts);
    commit_acked(ks, true, "revoke");
    for (int i = 0; i < parts->cnt; i++) {
        struct kstream *s = stream_of(ks, parts->elems[i].topic, parts->elems[i].partition);
        if (s) {
            s->assigned = false;
            log_info("kafka.revoked", "topic=%s partition=%d stream=%u committed=%" PRId64,
                     parts->elems[i].topic, (int)parts->elems[i].partition, s->id, s->committed);
        }
    }
    ks->rebalances++;
    rd_kafka_assign(ks->rk, NULL);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)rk;
    struct ksrc *ks = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(ks, parts);
    else
        on_revoke(ks, parts);
}

static int set(rd_kafka_conf_t *conf, const struct kafka_client_cfg *c, const char *name,
               const char *value, char *err, size_t errlen)
{
    if (kclient_has_property(c, name))
        return 0; /* the user's properties win */
    return kclient_set(conf, name, value, err, errlen);
}

static int build_conf(struct ksrc *ks, rd_kafka_conf_t **out, char *err, size_t errlen)
{
    const struct kafka_cfg *k = &ks->cfg->platform.kafka;
    rd_kafka_conf_t *conf = NULL;
    int rc = kclient_conf(&conf, &k->client, "kafka", &ks->kctx, err, errlen);
    if (rc)
        return rc;
    char n[4][24];
    snprintf(n[0], sizeof n[0], "%d", k->session_timeout_ms);
    snprintf(n[1], sizeof n[1], "%d", k->max_poll_interval_ms);
    snprintf(n[2], sizeof n[2], "%d", k->fetch_min_bytes);
    snprintf(n[3], sizeof n[3], "%d", k->fetch_max_wait_ms);
    if ((rc = kclient_set(conf, "group.id", k->group_id, err, errlen)) ||
        (rc = kclient_set(conf, "enable.auto.commit", "false", err, errlen)) ||
        (rc = kclient_set(conf, "enable.auto.offset.store", "false", err, errlen)) ||
        (rc = set(conf, &k->client, "auto.offset.reset", k->auto_offset_reset, err, errlen)) ||
        (rc = set(conf, &k->client, "session.timeout.ms", n[0], err, errlen)) ||
        (rc = set(conf, &k->client, "max.poll.interval.ms", n[1], err, errlen)) ||
        (rc = set(conf, &k->client, "fetch.min.bytes", n[2], err, errlen)) ||
        (rc = set(conf, &k->client, "fetch.wait.max.ms", n[3], err, errlen)) ||
        (rc = set(conf, &k->client, "partition.assignment.strategy", "range", err, errlen))) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    *out = conf;
    return 0;
}

static void ks_free(struct ksrc *ks)
{
    if (!ks)
        return;
    if (ks->rk)
        rd_kafka_destroy(ks->rk);
    for (size_t i = 0; i < ks->ntopics; i++)
        free(ks->topics[i]);
    free(ks->topics);
    free(ks->st);
    evcodec_cache_fini(&ks->cache);
    free(ks);
}

static int op_open(struct source *s, char *err, size_t errlen)
{
    const struct config *cfg = s->cfg;
    struct ksrc *ks = xcalloc(1, sizeof *ks);
    ks->cfg = cfg;
    ks->kctx.name = "deliver";
    ks->kctx.secrets[0] = cfg->platform.kafka.client.sasl_password;
    ks->kctx.secrets[1] = cfg->platform.kafka.client.ssl_key_password;
    double every = cfg->platform.kafka.commit_interval_seconds;
    ks->commit_every_us = every * 1e6 > COMMIT_MIN_US ? (int64_t)(every * 1e6) : COMMIT_MIN_US;
    ks->topics = xcalloc(cfg->source.ntables ? cfg->source.ntables : 1, sizeof *ks->topics);
    for (size_t j = 0; j < cfg->source.ntables; j++) {
        char *schema = NULL, *table = NULL;
        (void)config_split_table(cfg->source.tables[j], &schema, &table);
        size_t need = kenc_topic(TOPIC_TEMPLATE, cfg->topic_prefix, cfg->source.database, schema,
                                 table, NULL, 0);
        ks->topics[j] = xmalloc(need + 1);
        kenc_topic(TOPIC_TEMPLATE, cfg->topic_prefix, cfg->source.database, schema, table,
                   ks->topics[j], need + 1);
        ks->ntopics++;
        free(schema);
        free(table);
    }
    rd_kafka_conf_t *conf = NULL;
    int rc = build_conf(ks, &conf, err, errlen);
    if (rc) {
        ks_free(ks);
        return rc;
    }
    char e[512];
    ks->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!ks->rk) {
        rd_kafka_conf_destroy(conf);
        ks_free(ks);
        return cdc_fail(err, errlen, CDC_EINVAL, "kafka: cannot create a consumer: %s", e);
    }
    rd_kafka_poll_set_consumer(ks->rk);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t me = rd_kafka_metadata(ks->rk, 0, NULL, &md, OPEN_WAIT_MS);
    if (me) {
        ks_free(ks);
        return cdc_fail(err, errlen, CDC_ECONN, "kafka: no answer from %s: %s",
                        cfg->platform.kafka.client.bootstrap_servers, rd_kafka_err2str(me));
    }
    rd_kafka_metadata_destroy(md);
    s->priv = ks;
    return 0;
}

static int op_prepare(struct source *s, const struct cdc_posmap *held, struct cdc_acks *start,
                      char *err, size_t errlen)
{
    /* Where each partition starts is the group's to say, at assignment. */
    (void)s, (void)held, (void)start, (void)err, (void)errlen;
    return 0;
}

/* The first start subscribes; a later one (a sink asked for a replay)
 * seeks every assigned partition back to from, or to the group's offset
 * for a stream from does not name. */
static int op_start(struct source *s, const struct cdc_ack *from, size_t n, char *err,
                    size_t errlen)
{
    struct ksrc *ks = ks_of(s);
    if (!ks->subscribed) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new((int)(ks->ntopics ? ks->ntopics : 1));
        for (size_t i = 0; i < ks->ntopics; i++)
            rd_kafka_topic_partition_list_add(l, ks->topics[i], RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(ks->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e)
            return cdc_fail(err, errlen, CDC_EINVAL, "kafka: cannot subscribe to the topics: %s",
                            rd_kafka_err2str(e));
        ks->subscribed = true;
        log_info("kafka.subscribed", "group=%s topics=%zu first=%s",
                 ks->cfg->platform.kafka.group_id, ks->ntopics, ks->ntopics ? ks->topics[0] : "");
        return 0;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < ks->nst; i++) {
        struct kstream *st = &ks->st[i];
        if (!st->assigned)
            continue;
        int64_t off = RD_KAFKA_OFFSET_INVALID;
        for (size_t j = 0; j < n; j++)
            if (from[j].stream == st->id && from[j].pos > 0)
                off = (int64_t)from[j].pos;
        if (off < 0 && st->committed >= 0)
            off = st->committed;
        st->next = off >= 0 ? off : 0;
        rd_kafka_topic_partition_list_add(l, ks->topics[st->topic], st->partition)->offset = off;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(ks->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        return cdc_fail(err, errlen, CDC_ECONN, "kafka: cannot seek back: %s", rd_kafka_err2str(e));
    return 0;
}

/* A record as an event of its stream, and the commit that ends it. */
static int emit_record(struct ksrc *ks, struct emitter *em, const rd_kafka_message_t *m,
                       struct kstream *st, char *err, size_t errlen)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    uint64_t pos = (uint64_t)m->offset + 1;
    st->next = m->offset + 1;
    if (!m->payload) { /* a tombstone: nothing to deliver */
        ks->tombstones++;
        emitter_keepalive(em, st->id, pos);
        return 0;
    }
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, KENC_EVENT_HEADER, &val, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "topic %s partition %d offset %" PRId64
                        ": the record has no %s header: it was not written by cdc's capture "
                        "role, and the deliver role cannot rebuild its column types",
                        topic, (int)m->partition, m->offset, KENC_EVENT_HEADER);
    struct cdc_event *ev = NULL;
    char e[256];
    if (evcodec_decode(val, len, &ks->cache, &ev, e, sizeof e) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "topic %s partition %d offset %" PRId64 ": header %s: %s", topic,
                        (int)m->partition, m->offset, KENC_EVENT_HEADER, e);
    if (!ev->has_origin) {
        ev->origin = ev->pos;
        ev->has_origin = true;
    }
    ev->pos = (struct cdc_pos){pos, 0, st->id};
    /* An update that moved its row to another key: the capture role sent
     * the old key's delete to the old key's partition, where it is applied
     * in order with that key's changes; here only the new row remains to
     * be written (applying the move here could delete a row the old key
     * got again later, in a partition read ahead of this one). */
    if (ev->op == CDC_OP_UPDATE && cdc_event_key_changed(ev)) {
        ev->before = NULL;
        ev->before_key_only = false;
    }
    /* A truncate of several tables arrives as one record per table, each
     * on its own topic: here each stands alone. */
    ev->trunc_index = 0;
    ev->trunc_count = 0;
    uint64_t xid = ev->xid;
    int64_t ts = ev->commit_ts;
    ks->records++;
    int rc = emitter_event(em, ev);
    if (rc)
        return rc;
    struct cdc_event *c = cdc_event_new(0, 0, 0);
    c->op = CDC_OP_COMMIT;
    c->pos = (struct cdc_pos){pos, CDC_POS_TXN_END, st->id};
    c->end_lsn = pos;
    c->xid = xid;
    c->commit_ts = ts;
    c->total_order = 1;
    return emitter_commit(em, c);
}

/* Per partition: how far this process is behind the partition's end. */
static void log_lag(struct ksrc *ks)
{
    for (size_t i = 0; i < ks->nst; i++) {
        struct kstream *s = &ks->st[i];
        if (!s->assigned)
            continue;
        int64_t lo = 0, hi = -1;
        if (rd_kafka_get_watermark_offsets(ks->rk, ks->topics[s->topic], s->partition, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0)
            s->high = hi;
        if (s->high < 0)
            continue;
        int64_t at = s->acked > s->committed ? s->acked : s->committed;
        log_info("kafka.lag",
                 "topic=%s partition=%d read_lag=%" PRId64 " committed_lag=%" PRId64
                 " committed=%" PRId64,
                 ks->topics[s->topic], (int)s->partition, s->high > s->next ? s->high - s->next : 0,
                 s->high > at ? s->high - at : 0, s->committed);
    }
}

static int op_poll(struct source *s, struct emitter *em, int timeout_ms, char *err, size_t errlen)
{
    struct ksrc *ks = ks_of(s);
    ks->em = em;
    int n = 0;
    int wait = timeout_ms;
    int max = ks->cfg->platform.kafka.poll_batch_size > BATCH_MAX
                  ? ks->cfg->platform.kafka.poll_batch_size
                  : BATCH_MAX;
    while (n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ks->rk, wait);
        wait = 0;
        if (ks->fatal[0]) {
            if (m)
                rd_kafka_message_destroy(m);
            return cdc_fail(err, errlen, CDC_EINVAL, "kafka: %s", ks->fatal);
        }
        if (!m)
            break;
        if (m->err) {
            bool fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
            int64_t now = clock_mono_us();
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && now >= ks->next_error_log_us) {
                ks->next_error_log_us = now + ERROR_LOG_US;
                log_warn("kafka.consumer_error", "error=%s", log_q(rd_kafka_message_errstr(m)));
            }
            if (fatal) {
                cdc_fail(err, errlen, CDC_EINVAL, "kafka: %s", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                return CDC_EINVAL;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        struct kstream *st = stream_of(ks, rd_kafka_topic_name(m->rkt), m->partition);
        if (!st || !st->assigned || m->offset < st->next) {
            /* not ours (any more), or already in the log: skip */
            rd_kafka_message_destroy(m);
            continue;
        }
        int rc = emit_record(ks, em, m, st, err, errlen);
        rd_kafka_message_destroy(m);
        if (rc)
            return rc;
        n++;
    }
    /* What this poll emitted goes to the sinks now: the next poll may wait. */
    int rc = emitter_flush(em);
    if (rc)
        return rc;
    int64_t now = clock_mono_us();
    if (now >= ks->next_lag_log_us) {
        ks->next_lag_log_us = now + LAG_LOG_US;
        log_lag(ks);
    }
    return n;
}

static int op_ack(struct source *s, const struct cdc_ack *acks, size_t n, bool now)
{
    struct ksrc *ks = ks_of(s);
    if (!ks)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct kstream *st = stream_by_id(ks, acks[i].stream);
        if (st && (int64_t)acks[i].pos > st->acked)
            st->acked = (int64_t)acks[i].pos;
    }
    int64_t t = clock_mono_us();
    if (now || t >= ks->next_commit_us) {
        ks->next_commit_us = t + ks->commit_every_us;
        commit_acked(ks, now, "interval");
    }
    return 0;
}

static void op_disconnect(struct source *s, bool rewind)
{
    (void)s, (void)rewind; /* start seeks back; the group membership stays */
}

static void op_finish(struct source *s, const struct cdc_ack *acks, size_t n)
{
    struct ksrc *ks = ks_of(s);
    if (!ks || !ks->rk)
        return;
    (void)op_ack(s, acks, n, true);
    ks->em = NULL;                   /* the sinks are done: nothing to wait for */
    rd_kafka_consumer_close(ks->rk); /* revokes: a last commit there */
}

static void op_stats(struct source *s, struct source_stats *st)
{
    struct ksrc *ks = ks_of(s);
    if (!ks)
        return;
    uint64_t lag = 0, assigned = 0;
    st->has_parts = true;
    for (size_t i = 0; i < ks->nst; i++) {
        struct kstream *k = &ks->st[i];
        if (!k->assigned)
            continue;
        assigned++;
        int64_t lo = 0, hi = -1;
        if (rd_kafka_get_watermark_offsets(ks->rk, ks->topics[k->topic], k->partition, &lo, &hi) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            hi >= 0)
            k->high = hi;
        int64_t at = k->acked > k->committed ? k->acked : k->committed;
        uint64_t behind = k->high > at ? (uint64_t)(k->high - at) : 0;
        lag += behind;
        if (st->nparts < SOURCE_PARTS_MAX) {
            struct source_part_lag *p = &st->parts[st->nparts++];
            snprintf(p->topic, sizeof p->topic, "%s", ks->topics[k->topic]);
            p->partition = k->partition;
            p->lag = behind;
        }
    }
    st->metrics[0] = (struct source_metric){"kafka_consumer_lag", "gauge",
                                            "records of the assigned partitions not yet "
                                            "durable in every sink",
                                            lag};
    st->metrics[1] = (struct source_metric){"kafka_assigned_partitions", "gauge",
                                            "partitions this process owns", assigned};
    st->metrics[2] = (struct source_metric){"kafka_offset_commits_total", "counter",
                                            "offset commits the group accepted", ks->commits};
    st->metrics[3] = (struct source_metric){
        "kafka_offset_commit_failures_total", "counter",
        "offset commits that failed (retried at the next interval)", ks->commit_failures};
    st->nmetrics = 4;
}

static void op_close(struct source *s)
{
    ks_free(ks_of(s));
    s->priv = NULL;
}

static int parse_pos(const char *text, struct cdc_ack *pos, char *err, size_t errlen)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end)
        return cdc_fail(err, errlen, CDC_EINVAL, "expected an offset");
    *pos = (struct cdc_ack){0, v};
    return 0;
}

static void format_pos(uint64_t pos, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRIu64, pos);
}

const struct source_ops ksrc_ops = {
    .name = "kafka",
    .connector = "kafka",
    .multi_stream = true,
    .parse_pos = parse_pos,
    .format_pos = format_pos,
    .open = op_open,
    .prepare = op_prepare,
    .start = op_start,
    .poll = op_poll,
    .ack = op_ack,
    .disconnect = op_disconnect,
    .finish = op_finish,
    .stats = op_stats,
    .close = op_close,
};
