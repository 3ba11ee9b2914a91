/* The Kafka transport's topics (ktopics.h): which, and creating them. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "transport/kafka/kclient.h"
#include "transport/kafka/kenc.h"
#include "transport/kafka/ktopics.h"
#include "util/err.h"
#include "util/mem.h"

#define ADMIN_TIMEOUT_MS 10000 /* as long as `cdc run` waits for the cluster */

static void add(struct ktopics *t, char *name, bool dlq)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0) {
            free(name);
            return;
        }
    t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
    t->v[t->n++] = (struct ktopic){.name = name, .dlq = dlq, .state = KTOPIC_UNKNOWN};
}

void ktopics_list(const struct config *cfg, struct ktopics *out)
{
    const char *tmpl = "{topic_prefix}.{schema}.{table}"; /* the capture role's */
    *out = (struct ktopics){NULL, 0};
    size_t ncapture;
    for (size_t j = 0; j < cfg->source.ntables; j++) {
        char *schema, *table;
        if (config_split_table(cfg->source.tables[j], &schema, &table) != 0)
            continue;
        size_t need =
            kenc_topic(tmpl, cfg->topic_prefix, cfg->source.database, schema, table, NULL, 0);
        char *name = xmalloc(need + 1);
        kenc_topic(tmpl, cfg->topic_prefix, cfg->source.database, schema, table, name, need + 1);
        add(out, name, false);
        free(schema);
        free(table);
    }
    ncapture = out->n;
    if (!cfg->platform.dlq.enabled)
        return;
    for (size_t i = 0; i < ncapture; i++)
        add(out, xasprintf("%s.%s", out->v[i].name, cfg->platform.dlq.topic_suffix), true);
}

void ktopics_fini(struct ktopics *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
    *t = (struct ktopics){NULL, 0};
}

/* Marks the topics the cluster already has (a metadata request for every
 * topic: asking for the missing ones by name could make brokers with
 * auto.create.topics.enable create them with their defaults). */
static int mark_existing(rd_kafka_t *rk, struct ktopics *t, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, ADMIN_TIMEOUT_MS);
    if (e) {
        snprintf(err, errlen, "the cluster did not answer a metadata request within %d s: %s",
                 ADMIN_TIMEOUT_MS / 1000, rd_kafka_err2str(e));
        return CDC_ECONN;
    }
    for (int k = 0; k < md->topic_cnt; k++)
        for (size_t i = 0; i < t->n; i++)
            if (!md->topics[k].err && strcmp(md->topics[k].topic, t->v[i].name) == 0)
                t->v[i].state = KTOPIC_EXISTS;
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* One CreateTopics request for the topics not marked yet; sets their state. */
static int create_missing(rd_kafka_t *rk, const struct kafka_cfg *k, struct ktopics *t,
                          const struct kclient_ctx *ctx, char *err, size_t errlen)
{
    size_t n = 0;
    rd_kafka_NewTopic_t **nt = xcalloc(t->n ? t->n : 1, sizeof *nt);
    char why[512];
    int rc = 0;
    for (size_t i = 0; i < t->n && !rc; i++) {
        if (t->v[i].state != KTOPIC_UNKNOWN)
            continue;
        nt[n] = rd_kafka_NewTopic_new(t->v[i].name, k->topic_num_partitions,
                                      k->topic_replication_factor, why, sizeof why);
        if (!nt[n]) {
            snprintf(err, errlen, "topic %s: %s", t->v[i].name, why);
            rc = CDC_EINVAL;
        } else {
            n++;
        }
    }
    if (rc || n == 0)
        goto out;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, ADMIN_TIMEOUT_MS, why, sizeof why);
    rd_kafka_AdminOptions_set_operation_timeout(opts, ADMIN_TIMEOUT_MS, why, sizeof why);
    rd_kafka_CreateTopics(rk, nt, n, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS * 2);
    const char *whole = NULL; /* the request failed as a whole */
    if (!ev)
        whole = "no answer to CreateTopics";
    else if (rd_kafka_event_error(ev))
        whole = rd_kafka_event_error_string(ev);
    const rd_kafka_CreateTopics_result_t *res =
        ev && !whole ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    size_t nres = 0;
    const rd_kafka_topic_result_t **tr =
        res ? rd_kafka_CreateTopics_result_topics(res, &nres) : NULL;
    for (size_t i = 0; i < t->n; i++) {
        struct ktopic *kt = &t->v[i];
        if (kt->state != KTOPIC_UNKNOWN)
            continue;
        kt->state = KTOPIC_REFUSED;
        const char *msg = whole ? whole : "not in the cluster's answer";
        for (size_t r = 0; r < nres; r++) {
            if (strcmp(rd_kafka_topic_result_name(tr[r]), kt->name) != 0)
                continue;
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[r]);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                kt->state = KTOPIC_CREATED;
            else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                kt->state = KTOPIC_EXISTS;
            msg = rd_kafka_topic_result_error_string(tr[r]);
            if (!msg || !*msg)
                msg = rd_kafka_err2str(e);
        }
        if (kt->state == KTOPIC_REFUSED)
            kclient_scrub(ctx, msg, kt->error, sizeof kt->error);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
out:
    rd_kafka_NewTopic_destroy_array(nt, n);
    free(nt);
    return rc;
}

int ktopics_create(const struct config *cfg, struct ktopics *t, FILE *out, char *err, size_t errlen)
{
    const struct kafka_cfg *k = &cfg->platform.kafka;
    struct kclient_ctx ctx = {.name = "deploy"};
    rd_kafka_conf_t *conf;
    int rc = kclient_conf(&conf, &k->client, "kafka", &ctx, err, errlen);
    if (rc)
        return rc;
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        kclient_scrub(&ctx, why, err, errlen);
        return CDC_EINVAL;
    }
    if ((rc = mark_existing(rk, t, err, errlen)) == 0 &&
        (rc = create_missing(rk, k, t, &ctx, err, errlen)) == 0) {
        size_t refused = 0;
        for (size_t i = 0; i < t->n; i++) {
            const struct ktopic *kt = &t->v[i];
            if (kt->state == KTOPIC_CREATED)
                fprintf(out, "created topic %s (%d partitions, replication factor %d)\n", kt->name,
                        k->topic_num_partitions, k->topic_replication_factor);
            else if (kt->state == KTOPIC_EXISTS)
                fprintf(out, "topic %s exists (left as it is)\n", kt->name);
            else if (refused++ == 0)
                snprintf(err, errlen, "%s", kt->error);
        }
        rc = refused ? CDC_ERR : 0;
    }
    rd_kafka_destroy(rk);
    return rc;
}
