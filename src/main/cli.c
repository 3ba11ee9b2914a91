/* cdc command line: argument parsing and dispatch.  Commands live in
 * cmd_*.c; this file knows only names, help texts and exit codes:
 * 0 ok, 1 runtime failure, 2 usage or configuration error. */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/cli.h"

#define OPT_PLATFORM                                                                               \
    "  --platform-config PLATFORM  platform.yaml with transport, tuning, DLQ, health\n"
#define OPT_URL                                                                                    \
    "  --url URL                   the pipeline's HTTP address (default: health_bind and\n"        \
    "                              health_port from the platform config)\n"

/* cdc consume is built with librdkafka only (the Makefile's optional modules). */
#ifdef CDC_HAVE_RDKAFKA
#define CMD_CONSUME cmd_consume
#else
#define CMD_CONSUME cmd_not_built
#endif

static const struct command commands[] = {
    {"validate", cmd_validate, "PIPELINE [--platform-config PLATFORM]",
     "Check a pipeline (and platform) config and print what it would do.",
     "\noptions:\n" OPT_PLATFORM "\nPrints a summary and exits 0, or prints every problem as\n"
     "\"error: FILE:LINE: KEY: MESSAGE\" and exits 2.\n",
     CLI_O_PLATFORM, NULL},
    {"run", cmd_run,
     "PIPELINE [--platform-config PLATFORM] [--stop-at-lsn LSN] [--role capture|deliver]",
     "Stream changes from the source to every enabled sink until stopped.",
     "\noptions:\n" OPT_PLATFORM
     "  --stop-at-lsn LSN           exit 0 once every change committed at or before LSN\n"
     "                              (e.g. 0/16B3748) is durable in every sink and confirmed\n"
     "  --role capture|deliver      with transport_mode kafka: only capture (source to\n"
     "                              topics) or only deliver (topics to the sinks, in the\n"
     "                              consumer group kafka.group_id); default both\n"
     "\nCreates the publication and the slot if missing.  SIGINT/SIGTERM stop reading,\n"
     "flush every sink, confirm the position to the source and exit 0.  A sink that\n"
     "cannot finish (its destination is down) holds the stop for at most\n"
     "shutdown_timeout_seconds (logged every few seconds, naming the sink); then cdc\n"
     "exits 1 and the next run delivers what was not confirmed.  A second signal exits\n"
     "130 at once; nothing is lost either (only what every sink holds is confirmed).\n"
     "\nOne process at a time owns a pipeline: run takes {state_dir}/{pipeline_id}/lock\n"
     "before it opens anything and exits 1, naming the holder's pid, if another process\n"
     "(a run, deploy, undeploy or dlq replay) has it.  A deliver role takes\n"
     "{state_dir}/{pipeline_id}.deliver/lock instead: deliver processes of one group\n"
     "share a state_dir only if they run on different machines.\n",
     CLI_O_PLATFORM | CLI_O_STOP_AT_LSN | CLI_O_ROLE, NULL},
    {"deploy", cmd_deploy, "PIPELINE [--platform-config PLATFORM]",
     "Create the publication and the replication slot (and Kafka topics; idempotent).",
     "\noptions:\n" OPT_PLATFORM
     "\nAlters the publication when the configured table list changed.  Refused (exit 1)\n"
     "while another process owns the pipeline: a running pipeline deploys by itself.\n"
     "\nWith transport_mode kafka, also creates the topics {topic_prefix}.{schema}.{table}\n"
     "(and their {dlq.topic_suffix} dead-letter topics with dlq.enabled) with\n"
     "kafka.topic_num_partitions and kafka.topic_replication_factor; topics that exist\n"
     "are left as they are.  When the cluster refuses (or cannot serve) CreateTopics,\n"
     "a warning on stderr names each missing topic with its settings and deploy exits 0\n"
     "(brokers with auto.create.topics.enable create them on first use); it exits 1\n"
     "when the cluster does not answer at all.\n",
     CLI_O_PLATFORM, NULL},
    {"undeploy", cmd_undeploy, "PIPELINE [--platform-config PLATFORM] --yes",
     "Drop the replication slot and the publication.",
     "\noptions:\n" OPT_PLATFORM "  --yes                       really drop them\n"
     "\nA forgotten slot keeps the server from recycling WAL, so undeploy pipelines you\n"
     "retire; but changes made while no slot exists are never captured.  Refused (exit 1)\n"
     "while another process owns the pipeline (a running `cdc run`): stop it first.\n",
     CLI_O_PLATFORM | CLI_O_YES, NULL},
    {"health", cmd_health, "[PIPELINE] [--platform-config PLATFORM] [--url URL]",
     "Ask a running pipeline's health endpoint how it is doing.",
     "\noptions:\n" OPT_PLATFORM
     "  --url URL                   the pipeline's status URL (default: health_bind and\n"
     "                              health_port from the platform config)\n"
     "\nExit status: 0 ready, 1 not ready or unreachable, 2 usage or configuration error.\n",
     CLI_O_PLATFORM | CLI_O_URL, NULL},
    {"status", cmd_status, "PIPELINE [--platform-config PLATFORM] [--url URL] [--json]",
     "Show a running pipeline's status: source, snapshot progress, per-sink lag.",
     "\noptions:\n" OPT_PLATFORM OPT_URL
     "  --json                      print the status document as the API sends it\n"
     "\nAsks the control API (GET /v1/status with control_token, else /status).  Works\n"
     "without the database passwords in the environment.  When nothing answers, says\n"
     "so and shows what the state store holds (snapshot progress, pending dead letters).\n"
     "Exit status: 0 the pipeline answered, 1 it did not, 2 usage or configuration error.\n",
     CLI_O_PLATFORM | CLI_O_URL | CLI_O_JSON, NULL},
    {"pause", cmd_pause, "PIPELINE [--platform-config PLATFORM] [--url URL]",
     "Pause a running pipeline: the source (and a snapshot's readers) stop reading.",
     "\noptions:\n" OPT_PLATFORM OPT_URL
     "\nPOST /v1/pause to the control API (with control_token).  Sinks drain what was\n"
     "read; the position keeps being confirmed.  `cdc resume` undoes it.\n",
     CLI_O_PLATFORM | CLI_O_URL, NULL},
    {"resume", cmd_pause, "PIPELINE [--platform-config PLATFORM] [--url URL]",
     "Resume a paused pipeline.",
     "\noptions:\n" OPT_PLATFORM OPT_URL
     "\nPOST /v1/resume to the control API (with control_token).\n",
     CLI_O_PLATFORM | CLI_O_URL, NULL},
    {"consume", CMD_CONSUME,
     "PIPELINE [--platform-config PLATFORM] [--max-events N] [--from-beginning] [--topic T]",
     "Print the records of the pipeline's Kafka topics as JSON lines; commits nothing.",
     CMD_CONSUME_HELP, 0 /* its own parser */, "librdkafka"},
    {"snapshot", cmd_snapshot,
     "PIPELINE --table SCHEMA.TABLE[,SCHEMA.TABLE...] [--platform-config PLATFORM]",
     "Request an incremental snapshot of tables while the pipeline streams.",
     "\noptions:\n" OPT_PLATFORM
     "  --table SCHEMA.TABLE[,...]  tables to snapshot (from source.tables)\n"
     "\nWrites an execute-snapshot row into the signal table (source.signal_table,\n"
     "default public.cdc_signal); the running pipeline reads it from the stream and\n"
     "snapshots the tables chunk by chunk without pausing the stream, and says whether\n"
     "a `cdc run` holds the pipeline now.\n",
     CLI_O_PLATFORM | CLI_O_TABLE, NULL},
    {"schema", cmd_schema, "PIPELINE [--platform-config PLATFORM] [--table T] [--json]",
     "List the versions of the captured tables' shapes (the schema history).",
     "\noptions:\n" OPT_PLATFORM
     "  --table T                   only table T (SCHEMA.TABLE, or TABLE in any schema),\n"
     "                              with each version's columns\n"
     "  --json                      one JSON object per version\n"
     "\nReads {state_dir}/{pipeline_id}/state.db: works without the database passwords\n"
     "and beside a running pipeline.  Each version says where it took effect, whether\n"
     "it is compatible with the one before, and what changed; \"no (held)\" marks an\n"
     "incompatible version stop_on_incompatible_schema refused.\n",
     CLI_O_PLATFORM | CLI_O_TABLE | CLI_O_JSON, NULL},
    {"dlq", cmd_dlq, "list|show|replay|purge PIPELINE [OPTIONS]",
     "Inspect, replay and purge the dead-letter queue.",
     "\nsubcommands:\n"
     "  list PIPELINE [--sink S] [--all] [--json]\n"
     "                  pending entries, one line each (--all: resolved ones too)\n"
     "  show PIPELINE (ID | --id N)\n"
     "                  one entry with its error, key and value\n"
     "  replay PIPELINE [--sink S] [--id N]\n"
     "                  deliver pending entries to their sinks again\n"
     "  purge PIPELINE [--all] --yes\n"
     "                  delete resolved entries (--all: every entry)\n"
     "\noptions:\n" OPT_PLATFORM "  --sink S                    only entries of sink S\n"
     "  --id N                      only entry N\n"
     "  --all                       list: resolved entries too; purge: every entry\n"
     "  --json                      list: one JSON object per line\n"
     "  --yes                       purge: really delete\n"
     "  --role capture|deliver      with transport_mode kafka: the queue of that role\n"
     "                              (default deliver, where the pipeline's sinks run;\n"
     "                              list notes pending entries of the capture role's)\n"
     "\nThe queue lives in {state_dir}/{pipeline_id}/state.db; with transport_mode kafka\n"
     "the deliver role's in {state_dir}/{pipeline_id}.deliver/state.db.  replay delivers each\n"
     "selected entry to its sink as configured now, outside the stream (a sink's\n"
     "checkpoint does not move), and marks it resolved; an entry that fails again\n"
     "stays pending.  One replay runs at a time, and no `cdc run` starts during one.\n"
     "Beside a running `cdc run` it replays into postgres and webhook sinks; entries of\n"
     "file sinks (one writer at a time) stay pending until the pipeline stops.\n"
     "list, show and purge need no lock.  Exit status: 0 ok, 1 an entry could not be\n"
     "replayed (or another replay runs), 2 usage error or no such entry.\n",
     /* each subcommand takes some of these (cmd_dlq.c) */
     CLI_O_PLATFORM | CLI_O_SINK | CLI_O_ID | CLI_O_ALL | CLI_O_JSON | CLI_O_YES | CLI_O_ROLE,
     NULL},
    {"lakehouse", cmd_lakehouse, "snapshots|query|rollback|maintain PIPELINE [OPTIONS]",
     "List, read (time travel), roll back and maintain the pipeline's Iceberg tables.",
     CMD_LAKEHOUSE_HELP, 0 /* its own parser */, NULL},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: cdc COMMAND [ARGS]\n\n"
                 "Streams committed changes from PostgreSQL to files, databases and services.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nRun `cdc COMMAND --help` for a command's options.  Exit status: 0 ok, 1 runtime "
            "failure, 2 usage or configuration error.\n");
}

void cli_command_usage(const struct command *cmd, FILE *out)
{
    fprintf(out, "usage: cdc %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
    if (cmd->help)
        fputs(cmd->help, out);
}

int cli_parse_common(const struct command *cmd, int argc, char **argv, struct cli_opts *o)
{
    static const struct option longopts[] = {
        {"platform-config", required_argument, NULL, 'p'},
        {"stop-at-lsn", required_argument, NULL, 's'},
        {"yes", no_argument, NULL, 'y'},
        {"table", required_argument, NULL, 't'},
        {"url", required_argument, NULL, 'u'},
        {"sink", required_argument, NULL, 'S'},
        {"id", required_argument, NULL, 'i'},
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"role", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* The bit of each option above, in order (--help is every command's). */
    static const unsigned bits[] = {CLI_O_PLATFORM, CLI_O_STOP_AT_LSN, CLI_O_YES, CLI_O_TABLE,
                                    CLI_O_URL,      CLI_O_SINK,        CLI_O_ID,  CLI_O_ALL,
                                    CLI_O_JSON,     CLI_O_ROLE};
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c, li;
    while ((li = -1, c = getopt_long(argc, argv, "h", longopts, &li)) != -1) {
        if (c != 'h' && c != '?' && c != ':' && li >= 0 && !(cmd->opts & bits[li])) {
            fprintf(stderr, "error: cdc %s: --%s is not an option of this command\n", cmd->name,
                    longopts[li].name);
            cli_command_usage(cmd, stderr);
            return 2;
        }
        switch (c) {
        case 'p':
            o->platform = optarg;
            break;
        case 's':
            o->stop_at_lsn = optarg;
            break;
        case 'y':
            o->yes = 1;
            break;
        case 't':
            o->table = optarg;
            break;
        case 'u':
            o->url = optarg;
            break;
        case 'S':
            o->sink = optarg;
            break;
        case 'i':
            o->id = optarg;
            break;
        case 'a':
            o->all = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'r':
            o->role = optarg;
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

/* Free memory the allocator keeps at the top of its heaps before it gives
 * it back to the system.  Events are freed in bursts (a sink releases a
 * flushed batch at once); with glibc's default (128 KiB, growing only with
 * large allocations) each burst shrank the heap and the next events paid a
 * page fault for every 4 KiB again.  What it keeps was in use at the peak
 * anyway: the event log's byte budget bounds it. */
#define TRIM_THRESHOLD (64 << 20)

int main(int argc, char **argv)
{
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("cdc %s\n", CDC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(&commands[i], argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command \"%s\" (see cdc --help)\n", argv[1]);
    return 2;
}
