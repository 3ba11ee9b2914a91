/* Test helper: a Kafka cluster in one process, built on librdkafka's mock
 * cluster (rdkafka_mock.h), so tests can point cdc and independent clients
 * (kcat) at real Kafka protocol over TCP.
 *
 *   kafka_mock [--brokers N] [--topic NAME:PARTITIONS[:REPLICATION]]...
 *
 * The brokers listen on 127.0.0.1 at free ports.  The mock has no
 * CreateTopics, so topics are created here, with their partition counts;
 * topics a client asks for that do not exist are auto-created with the
 * mock's default of 4 partitions.  When ready it prints one JSON line:
 *
 *   {"bootstrap":"127.0.0.1:P1,127.0.0.1:P2","brokers":[1,2]}
 *
 * then reads commands from stdin, one per line, and answers each with one
 * line on stdout: "ok", "ok VALUE" or "error MESSAGE".  End of input,
 * SIGTERM or SIGINT stop the cluster.  Commands (API is a request name such
 * as Produce, Fetch, OffsetCommit; ERR an error name as librdkafka spells
 * it without "RD_KAFKA_RESP_ERR_", e.g. NOT_LEADER_FOR_PARTITION or
 * _TRANSPORT, or its number; ERR*N repeats it N times):
 *
 *   errors API ERR...                 cluster-wide request errors, in order
 *   clear API                         drop the cluster-wide errors of API
 *   broker_errors ID API ERR[@MS]...  errors for one broker (each answered
 *                                     after MS milliseconds)
 *   pending ID API                    "ok N": broker errors not yet used
 *   down ID | up ID                   refuse / accept connections
 *   rtt ID MS                         delay every answer of a broker
 *   leader TOPIC PARTITION ID         move a partition's leader (-1: none)
 *   topic NAME PARTITIONS [REPL]      create a topic
 *   topic_error TOPIC ERR             error for the topic in metadata
 *   quit
 *
 * Everything lives in memory; the mock keeps at most 5 MiB or 100000
 * messages per partition and drops the oldest batches beyond that. */
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_ERRS 4096

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = sig;
}

/* Kafka protocol request keys (the ApiKey of each request type). */
static const struct {
    const char *name;
    int16_t key;
} apis[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"ApiVersion", 18},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

static int parse_api(const char *s, int16_t *key)
{
    for (size_t i = 0; i < sizeof apis / sizeof *apis; i++)
        if (strcmp(s, apis[i].name) == 0) {
            *key = apis[i].key;
            return 0;
        }
    return -1;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "NAME", "_NAME" or a number -> error code. */
static int parse_err(const char *s, rd_kafka_resp_err_t *out)
{
    long v;
    if (parse_int(s, -200, 1000, &v) == 0) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    return -1;
}

/* Splits "ERR[@MS][*N]" and appends N copies to errs/rtts. */
static int parse_err_item(char *item, rd_kafka_resp_err_t *errs, int *rtts, size_t *n)
{
    long times = 1, rtt = 0;
    char *star = strchr(item, '*');
    if (star) {
        *star = '\0';
        if (parse_int(star + 1, 1, MAX_ERRS, &times) != 0)
            return -1;
    }
    char *at = strchr(item, '@');
    if (at) {
        *at = '\0';
        if (parse_int(at + 1, 0, 3600000, &rtt) != 0)
            return -1;
    }
    rd_kafka_resp_err_t err;
    if (parse_err(item, &err) != 0 || *n + (size_t)times > MAX_ERRS)
        return -1;
    for (long i = 0; i < times; i++) {
        errs[*n] = err;
        rtts[*n] = (int)rtt;
        (*n)++;
    }
    return 0;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void reply_rc(rd_kafka_resp_err_t err)
{
    if (err)
        reply("error %s", rd_kafka_err2str(err));
    else
        reply("ok");
}

/* Runs one command line; returns 1 when told to quit. */
static int command(rd_kafka_mock_cluster_t *mc, char *line)
{
    char *argv[MAX_ERRS + 4];
    int argc = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok && argc < (int)(sizeof argv / sizeof *argv);
         tok = strtok(NULL, " \t\r\n"))
        argv[argc++] = tok;
    if (argc == 0) {
        reply("error empty command");
        return 0;
    }
    const char *cmd = argv[0];
    static rd_kafka_resp_err_t errs[MAX_ERRS];
    static int rtts[MAX_ERRS];
    size_t n = 0;
    int16_t api;
    long id, v;

    if (strcmp(cmd, "quit") == 0) {
        reply("ok");
        return 1;
    }
    if (strcmp(cmd, "errors") == 0 && argc >= 3) {
        if (parse_api(argv[1], &api) != 0) {
            reply("error unknown API %s", argv[1]);
            return 0;
        }
        for (int i = 2; i < argc; i++)
            if (parse_err_item(argv[i], errs, rtts, &n) != 0) {
                reply("error bad error %s", argv[i]);
                return 0;
            }
        rd_kafka_mock_push_request_errors_array(mc, api, n, errs);
        reply("ok");
        return 0;
    }
    if (strcmp(cmd, "clear") == 0 && argc == 2) {
        if (parse_api(argv[1], &api) != 0) {
            reply("error unknown API %s", argv[1]);
            return 0;
        }
        rd_kafka_mock_clear_request_errors(mc, api);
        reply("ok");
        return 0;
    }
    if (strcmp(cmd, "broker_errors") == 0 && argc >= 4) {
        if (parse_int(argv[1], 1, 1000, &id) != 0 || parse_api(argv[2], &api) != 0) {
            reply("error usage: broker_errors ID API ERR[@MS]...");
            return 0;
        }
        for (int i = 3; i < argc; i++)
            if (parse_err_item(argv[i], errs, rtts, &n) != 0) {
                reply("error bad error %s", argv[i]);
                return 0;
            }
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_mock_broker_push_request_error_rtts(
                mc, (int32_t)id, api, 1, errs[i], rtts[i]);
            if (e) {
                reply_rc(e);
                return 0;
            }
        }
        reply("ok");
        return 0;
    }
    if (strcmp(cmd, "pending") == 0 && argc == 3) {
        size_t cnt = 0;
        if (parse_int(argv[1], 1, 1000, &id) != 0 || parse_api(argv[2], &api) != 0) {
            reply("error usage: pending ID API");
            return 0;
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_error_stack_cnt(mc, (int32_t)id, api, &cnt);
        if (e)
            reply_rc(e);
        else
            reply("ok %zu", cnt);
        return 0;
    }
    if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && argc == 2) {
        if (parse_int(argv[1], 1, 1000, &id) != 0) {
            reply("error usage: %s ID", cmd);
            return 0;
        }
        reply_rc(cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)id)
                               : rd_kafka_mock_broker_set_up(mc, (int32_t)id));
        return 0;
    }
    if (strcmp(cmd, "rtt") == 0 && argc == 3) {
        if (parse_int(argv[1], 1, 1000, &id) != 0 || parse_int(argv[2], 0, 3600000, &v) != 0) {
            reply("error usage: rtt ID MS");
            return 0;
        }
        reply_rc(rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)v));
        return 0;
    }
    if (strcmp(cmd, "leader") == 0 && argc == 4) {
        long part;
        if (parse_int(argv[2], 0, 1000000, &part) != 0 || parse_int(argv[3], -1, 1000, &id) != 0) {
            reply("error usage: leader TOPIC PARTITION ID");
            return 0;
        }
        reply_rc(rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)part, (int32_t)id));
        return 0;
    }
    if (strcmp(cmd, "topic") == 0 && (argc == 3 || argc == 4)) {
        long repl = 1;
        if (parse_int(argv[2], 1, 100000, &v) != 0 ||
            (argc == 4 && parse_int(argv[3], 1, 1000, &repl) != 0)) {
            reply("error usage: topic NAME PARTITIONS [REPLICATION]");
            return 0;
        }
        reply_rc(rd_kafka_mock_topic_create(mc, argv[1], (int)v, (int)repl));
        return 0;
    }
    if (strcmp(cmd, "topic_error") == 0 && argc == 3) {
        rd_kafka_resp_err_t e;
        if (parse_err(argv[2], &e) != 0) {
            reply("error bad error %s", argv[2]);
            return 0;
        }
        rd_kafka_mock_topic_set_error(mc, argv[1], e);
        reply("ok");
        return 0;
    }
    reply("error unknown command or wrong arguments: %s", cmd);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: kafka_mock [--brokers N] [--topic NAME:PARTITIONS[:REPLICATION]]...\n");
}

int main(int argc, char **argv)
{
    long nbrokers = 3;
    const char *topics[256];
    int ntopics = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 64, &nbrokers) != 0) {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc && ntopics < 256) {
            topics[ntopics++] = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    /* The handle only hosts the cluster's thread; it never connects. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)nbrokers);
    if (!mc) {
        fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics; i++) {
        char name[512];
        long parts = 0, repl = 1;
        const char *c1 = strchr(topics[i], ':');
        if (!c1 || (size_t)(c1 - topics[i]) >= sizeof name) {
            usage();
            rc = 2;
            goto out;
        }
        memcpy(name, topics[i], (size_t)(c1 - topics[i]));
        name[c1 - topics[i]] = '\0';
        char rest[64];
        snprintf(rest, sizeof rest, "%s", c1 + 1);
        char *c2 = strchr(rest, ':');
        if (c2)
            *c2++ = '\0';
        if (parse_int(rest, 1, 100000, &parts) != 0 ||
            (c2 && parse_int(c2, 1, nbrokers, &repl) != 0)) {
            usage();
            rc = 2;
            goto out;
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, (int)parts, (int)repl);
        if (e) {
            fprintf(stderr, "kafka_mock: topic %s: %s\n", name, rd_kafka_err2str(e));
            rc = 1;
            goto out;
        }
    }
    printf("{\"bootstrap\":\"%s\",\"brokers\":[", rd_kafka_mock_cluster_bootstraps(mc));
    for (long b = 1; b <= nbrokers; b++)
        printf("%s%ld", b > 1 ? "," : "", b);
    printf("]}\n");
    fflush(stdout);

    char line[65536];
    size_t len = 0;
    while (!stop_flag) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int pr = poll(&pfd, 1, 200);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        ssize_t r = read(0, line + len, sizeof line - 1 - len);
        if (r <= 0)
            break; /* end of input: the test is gone */
        len += (size_t)r;
        char *nl;
        int quit = 0;
        while (!quit && (nl = memchr(line, '\n', len)) != NULL) {
            *nl = '\0';
            size_t used = (size_t)(nl - line) + 1;
            quit = command(mc, line);
            memmove(line, line + used, len - used);
            len -= used;
        }
        if (quit)
            break;
        if (len == sizeof line - 1) {
            reply("error command too long");
            len = 0;
        }
    }
out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
