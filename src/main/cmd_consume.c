/* `cdc consume`: prints the records of a pipeline's topics, one JSON object
 * per line, and commits nothing.
 *
 * Which cluster and topics: with transport_mode kafka, the platform's kafka
 * block and {topic_prefix}.{schema}.{table} of every source table; else the
 * pipeline's first enabled kafka sink and its topic template; --topic names
 * topics instead.  Where each partition starts: at its beginning with
 * --from-beginning, else at the offset the consumer group (kafka.group_id)
 * committed, or where kafka.auto_offset_reset says when it committed none.
 * The group is only read: the consumer is assigned the partitions, it never
 * joins the group, so running deliver processes are not disturbed. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/json.h"
#include "main/cli.h"
#include "sink/kafka/kafka_sink.h"
#include "transport/kafka/kclient.h"
#include "transport/kafka/kenc.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/mem.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = sig;
}

struct consume_opts {
    const char *platform;
    long long max_events; /* 0: until stopped */
    int from_beginning;
    char **topics; /* owned strings */
    size_t ntopics;
    int nargs;
    char **args;
};

static void add_topics(struct consume_opts *o, const char *list)
{
    char *copy = xstrdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        o->topics = xrealloc(o->topics, (o->ntopics + 1) * sizeof *o->topics);
        o->topics[o->ntopics++] = xstrdup(t);
    }
    free(copy);
}

static void free_topics(struct consume_opts *o)
{
    for (size_t i = 0; i < o->ntopics; i++)
        free(o->topics[i]);
    free(o->topics);
    o->topics = NULL;
    o->ntopics = 0;
}

/* 0, 2 (usage error, printed) or CLI_EXIT_HELP. */
static int parse_args(const struct command *cmd, int argc, char **argv, struct consume_opts *o)
{
    static const struct option longopts[] = {
        {"platform-config", required_argument, NULL, 'p'},
        {"max-events", required_argument, NULL, 'n'},
        {"from-beginning", no_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->platform = optarg;
            break;
        case 'n': {
            char *end;
            o->max_events = strtoll(optarg, &end, 10);
            if (*end || end == optarg || o->max_events < 1) {
                fprintf(stderr, "error: --max-events: expected a positive integer, got \"%s\"\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'b':
            o->from_beginning = 1;
            break;
        case 't':
            add_topics(o, optarg);
            break;
        case 'h':
            cli_command_usage(cmd, stdout);
            return CLI_EXIT_HELP;
        default:
            fprintf(stderr, "error: cdc %s: unknown or incomplete option %s\n", cmd->name,
                    argv[optind - 1]);
            cli_command_usage(cmd, stderr);
            return 2;
        }
    }
    o->nargs = argc - optind;
    o->args = argv + optind;
    return 0;
}

/* Appends bytes as JSON: themselves when they are one JSON document (cdc's
 * keys and values are), else a string; null when absent. */
static void put_payload(struct buf *b, const void *p, size_t n)
{
    if (!p)
        buf_puts(b, "null");
    else if (n && json_valid(p, n))
        buf_put(b, p, n);
    else
        json_string(b, p, n);
}

static void print_record(struct buf *b, const rd_kafka_message_t *m)
{
    buf_reset(b);
    buf_puts(b, "{\"topic\":");
    const char *topic = rd_kafka_topic_name(m->rkt);
    json_string(b, topic, strlen(topic));
    buf_printf(b, ",\"partition\":%" PRId32 ",\"offset\":%" PRId64, m->partition, m->offset);
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    buf_printf(b, ",\"timestamp\":%" PRId64 ",\"key\":", ts);
    put_payload(b, m->key, m->key_len);
    buf_puts(b, ",\"value\":");
    put_payload(b, m->payload, m->len);
    buf_puts(b, ",\"headers\":{");
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == 0; i++) {
            if (i)
                buf_putc(b, ',');
            json_string(b, name, strlen(name));
            buf_putc(b, ':');
            if (val)
                json_string(b, val, len);
            else
                buf_puts(b, "null");
        }
    }
    buf_puts(b, "}}\n");
    fwrite(b->p, 1, b->len, stdout);
}

/* The cluster and topics to read, per the rules at the top. */
static int pick_source(const struct config *cfg, struct consume_opts *o,
                       const struct kafka_client_cfg **client, const char **path)
{
    static char sink_path[48];
    const char *tmpl = "{topic_prefix}.{schema}.{table}";
    *client = NULL;
    if (cfg->platform.transport_mode == TRANSPORT_KAFKA) {
        *client = &cfg->platform.kafka.client;
        *path = "kafka";
    } else {
        for (size_t i = 0; i < cfg->nsinks && !*client; i++) {
            const struct kafka_sink_cfg *kc = kafka_sink_conf(&cfg->sinks[i]);
            if (cfg->sinks[i].enabled && kc) {
                *client = &kc->client;
                snprintf(sink_path, sizeof sink_path, "sinks[%zu].kafka", i);
                *path = sink_path;
                tmpl = kc->topic;
            }
        }
    }
    if (!*client) {
        fprintf(stderr,
                "error: %s: nothing to consume: transport_mode is not kafka and no "
                "kafka sink is enabled\n",
                cfg->pipeline_file);
        return 2;
    }
    if (o->ntopics)
        return 0; /* --topic */
    for (size_t j = 0; j < cfg->source.ntables; j++) {
        char *schema, *table;
        if (config_split_table(cfg->source.tables[j], &schema, &table) != 0)
            continue;
        size_t need =
            kenc_topic(tmpl, cfg->topic_prefix, cfg->source.database, schema, table, NULL, 0);
        char *name = xmalloc(need + 1);
        kenc_topic(tmpl, cfg->topic_prefix, cfg->source.database, schema, table, name, need + 1);
        bool dup = false;
        for (size_t k = 0; k < o->ntopics; k++)
            dup |= strcmp(o->topics[k], name) == 0;
        if (!dup)
            add_topics(o, name);
        free(name);
        free(schema);
        free(table);
    }
    return 0;
}

/* Every partition of the topics, starting where the options say. */
static int plan_assignment(rd_kafka_t *rk, const struct config *cfg, const struct consume_opts *o,
                           rd_kafka_topic_partition_list_t **out)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < o->ntopics; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (!e && (md->topic_cnt != 1 || md->topics[0].err))
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (e) {
            fprintf(stderr, "error: topic %s: %s\n", o->topics[i], rd_kafka_err2str(e));
            if (md)
                rd_kafka_metadata_destroy(md);
            rd_kafka_topic_partition_list_destroy(parts);
            return 1;
        }
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, o->topics[i], md->topics[0].partitions[p].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
    }
    if (!o->from_beginning) {
        rd_kafka_resp_err_t e = rd_kafka_committed(rk, parts, 10000);
        if (e) {
            fprintf(stderr, "error: cannot read the committed offsets of group %s: %s\n",
                    cfg->platform.kafka.group_id, rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(parts);
            return 1;
        }
        bool latest = strcmp(cfg->platform.kafka.auto_offset_reset, "latest") == 0;
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t lo, hi;
            if (tp->offset >= 0)
                continue;
            tp->offset = RD_KAFKA_OFFSET_BEGINNING;
            /* "latest" is the end now, not whenever fetching starts */
            if (latest) {
                e = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi, 10000);
                if (e) {
                    fprintf(stderr, "error: topic %s [%d]: %s\n", tp->topic, (int)tp->partition,
                            rd_kafka_err2str(e));
                    rd_kafka_topic_partition_list_destroy(parts);
                    return 1;
                }
                tp->offset = hi;
            }
        }
    }
    *out = parts;
    return 0;
}

int cmd_consume(const struct command *cmd, int argc, char **argv)
{
    struct consume_opts o;
    int rc = parse_args(cmd, argc, argv, &o);
    if (rc) {
        free_topics(&o);
        return rc == CLI_EXIT_HELP ? 0 : rc;
    }
    struct cli_opts common = {.platform = o.platform, .nargs = o.nargs, .args = o.args};
    struct config *cfg = NULL;
    const struct kafka_client_cfg *client = NULL;
    const char *path = NULL;
    if ((rc = cli_load_config(cmd, &common, &cfg)) || (rc = pick_source(cfg, &o, &client, &path))) {
        free_topics(&o);
        config_free(cfg);
        return rc;
    }

    char err[1024];
    struct kclient_ctx kctx = {.name = "consume"};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (kclient_conf(&conf, client, path, &kctx, err, sizeof err) != 0 ||
        kclient_set(conf, "group.id", cfg->platform.kafka.group_id, err, sizeof err) != 0 ||
        kclient_set(conf, "enable.auto.commit", "false", err, sizeof err) != 0 ||
        kclient_set(conf, "enable.auto.offset.store", "false", err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        if (conf)
            rd_kafka_conf_destroy(conf);
        rc = 2;
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        char clean[1024];
        kclient_scrub(&kctx, err, clean, sizeof clean);
        fprintf(stderr, "error: %s: librdkafka: %s\n", path, clean);
        rd_kafka_conf_destroy(conf);
        rc = 2;
        goto out;
    }
    if ((rc = plan_assignment(rk, cfg, &o, &parts)) != 0)
        goto out;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
    if (e) {
        fprintf(stderr, "error: cannot assign the partitions: %s\n", rd_kafka_err2str(e));
        rc = 1;
        goto out;
    }
    log_info("consume.started", "topics=%zu partitions=%d", o.ntopics, parts->cnt);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct buf line = BUF_INIT;
    long long printed = 0;
    while (!stop_flag && (o.max_events == 0 || printed < o.max_events)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "warning: %s\n", rd_kafka_message_errstr(m));
        } else {
            print_record(&line, m);
            printed++;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    buf_fini(&line);
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free_topics(&o);
    config_free(cfg);
    return rc;
}
