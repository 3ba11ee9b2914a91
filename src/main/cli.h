/* Shared by the command implementations in src/main. */
#ifndef CDC_MAIN_CLI_H
#define CDC_MAIN_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config/config.h"
#include "state/pipelock.h"

#define CDC_VERSION   "0.1.0"
#define CLI_EXIT_HELP 1000 /* cli_parse_common printed help: exit 0 */

struct command;
typedef int (*command_fn)(const struct command *cmd, int argc, char **argv);

/* The options cli_parse_common knows, as bits of struct command.opts. */
enum {
    CLI_O_PLATFORM = 1 << 0,    /* --platform-config PLATFORM */
    CLI_O_STOP_AT_LSN = 1 << 1, /* --stop-at-lsn LSN */
    CLI_O_YES = 1 << 2,         /* --yes */
    CLI_O_TABLE = 1 << 3,       /* --table T */
    CLI_O_URL = 1 << 4,         /* --url URL */
    CLI_O_SINK = 1 << 5,        /* --sink S */
    CLI_O_ID = 1 << 6,          /* --id N */
    CLI_O_ALL = 1 << 7,         /* --all */
    CLI_O_JSON = 1 << 8,        /* --json */
    CLI_O_ROLE = 1 << 9,        /* --role capture|deliver */
};

struct command {
    const char *name;
    command_fn fn;
    const char *args;
    const char *summary;
    const char *help;  /* extra text, or NULL */
    unsigned opts;     /* CLI_O_*: the options it takes; cli_parse_common refuses the others */
    const char *needs; /* the optional library it is built with, or NULL */
};

struct cli_opts {
    const char *platform;
    const char *stop_at_lsn;
    const char *table;
    const char *url;
    const char *sink; /* --sink S */
    const char *id;   /* --id N, checked by the command */
    const char *role; /* --role R, checked by the command */
    int yes;
    int all;
    int json;
    int nargs;
    char **args;
};

/* Parses the options of cmd (cmd->opts; --help always).  Returns 0, 2 on a
 * usage error (an unknown option, or one that is not cmd's: message
 * printed), or CLI_EXIT_HELP after printing the command's help. */
int cli_parse_common(const struct command *cmd, int argc, char **argv, struct cli_opts *o);
void cli_command_usage(const struct command *cmd, FILE *out);

/* Loads PIPELINE (+ platform) for a command: prints every config error as
 * "error: …" and returns 2, or 0 with *cfg set.  Also sets up logging. */
int cli_load_config(const struct command *cmd, const struct cli_opts *o, struct config **cfg);
/* The same with config_load_flags options (CONFIG_SECRETS_OPTIONAL for
 * commands that never connect). */
int cli_load_config_flags(const struct command *cmd, const struct cli_opts *o, unsigned flags,
                          struct config **cfg);
/* Warns about the keys the config holds that have no effect (cfg->inert):
 * "warning: …" lines on stderr, or config.no_effect log events. */
void cli_warn_inert(const struct config *cfg, bool to_log);
/* 2 with a plain message if the config asks for something not built yet. */
int cli_check_supported(const struct config *cfg);
/* Takes the pipeline lock (state/pipelock.h) for `cdc COMMAND` before the
 * command opens anything.  Returns 0 with *lk set (release it with
 * pipelock_release), or 1 after printing why not: another process owns the
 * pipeline (its pid named), or the state directory is unusable. */
int cli_lock_pipeline(const struct config *cfg, const char *command, struct pipelock **lk);
/* The same for the state of name (a pipeline id, or "ID.deliver"). */
int cli_lock_named(const struct config *cfg, const char *name, const char *command,
                   struct pipelock **lk);

int cmd_validate(const struct command *cmd, int argc, char **argv);
int cmd_run(const struct command *cmd, int argc, char **argv);
int cmd_deploy(const struct command *cmd, int argc, char **argv);
int cmd_undeploy(const struct command *cmd, int argc, char **argv);
int cmd_health(const struct command *cmd, int argc, char **argv);
int cmd_status(const struct command *cmd, int argc, char **argv);
/* `cdc pause` and `cdc resume` (by cmd->name). */
int cmd_pause(const struct command *cmd, int argc, char **argv);
int cmd_dlq(const struct command *cmd, int argc, char **argv);
int cmd_snapshot(const struct command *cmd, int argc, char **argv);
int cmd_schema(const struct command *cmd, int argc, char **argv);
int cmd_consume(const struct command *cmd, int argc, char **argv);
int cmd_lakehouse(const struct command *cmd, int argc, char **argv);
/* A command whose library this build lacks (the Makefile's optional
 * modules): --help works, anything else says so and exits 2. */
int cmd_not_built(const struct command *cmd, int argc, char **argv);

/* cdc consume's help text (cmd_consume.c owns its options). */
#define CMD_CONSUME_HELP                                                                           \
    "\noptions:\n"                                                                                 \
    "  --platform-config PLATFORM  platform.yaml with transport, tuning, DLQ, health\n"            \
    "  --max-events N              exit 0 after printing N records\n"                              \
    "  --from-beginning            start every partition at its beginning (default: the\n"         \
    "                              group's committed offsets, else kafka.auto_offset_reset)\n"     \
    "  --topic T[,T...]            read these topics (default: the pipeline's topics)\n"           \
    "\nReads from the platform's kafka cluster when transport_mode is kafka, else from the\n"      \
    "pipeline's first kafka sink.  Prints one JSON object per record: topic, partition,\n"         \
    "offset, timestamp, key, value (JSON documents as they are, other bytes as strings,\n"         \
    "null as null) and headers.  Never joins the consumer group and never commits.\n"

/* cdc lakehouse's help text (cmd_lakehouse.c owns its options). */
#define CMD_LAKEHOUSE_HELP                                                                         \
    "\nsubcommands:\n"                                                                             \
    "  snapshots PIPELINE [--sink-id S] [--table T]\n"                                             \
    "                  every snapshot of the tables: time, operation, rows, position\n"            \
    "  query PIPELINE --snapshot-id N [--sink-id S] [--table T] [--limit N]\n"                     \
    "                  the table as of snapshot N, deletes applied, as JSON lines\n"               \
    "  rollback PIPELINE --snapshot-id N [--sink-id S] [--table T] --yes\n"                        \
    "                  make snapshot N the table's current snapshot again\n"                       \
    "  maintain PIPELINE [--sink-id S] [--table T]\n"                                              \
    "                  compact, expire snapshots, remove orphan files (once)\n"                    \
    "\noptions:\n"                                                                                 \
    "  --platform-config PLATFORM  platform.yaml with transport, tuning, DLQ, health\n"            \
    "  --sink-id S                 only the tables of iceberg sink S\n"                            \
    "  --table T                   only table T (its Iceberg name, or a source schema.table)\n"    \
    "  --snapshot-id N             the snapshot (see `snapshots`)\n"                               \
    "  --limit N                   query: print at most N rows (default 20; 0: all)\n"             \
    "  --yes                       rollback: really do it\n"                                       \
    "\nThe tables are those of the pipeline's iceberg sinks (source.tables through each\n"         \
    "sink's table_name), read through the sink's catalog and storage.  rollback and\n"             \
    "maintain take the pipeline lock: not while `cdc run` holds the pipeline (its\n"               \
    "background maintenance compacts and expires while it runs).  Exit status: 0 ok,\n"            \
    "1 a catalog or storage failure, 2 usage error or no such sink, table or snapshot.\n"

#endif
