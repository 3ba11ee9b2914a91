/* Typed configuration: pipeline.yaml (what to capture, where to send it) and
 * the optional platform.yaml (transport, tuning, DLQ, health), with the
 * reference CDC Platform's key names plus ours.
 *
 * config_load parses both files, substitutes ${VAR} and ${VAR:-default} in
 * scalar values, merges built-in defaults, and validates strictly: unknown
 * keys, duplicate keys, wrong types, out-of-range values and missing required
 * fields are errors naming `file:line`, the key path and what was expected.
 * Secrets (passwords, tokens) are never copied into error messages.
 *
 * Every string in these structs is owned by the struct config and freed by
 * config_free.  Strings are never NULL unless the field says "or NULL". */
#ifndef CDC_CONFIG_CONFIG_H
#define CDC_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum source_type { SOURCE_POSTGRES, SOURCE_MYSQL, SOURCE_MONGODB, SOURCE_SQLSERVER };

enum snapshot_mode {
    SNAPSHOT_INITIAL,      /* snapshot when the pipeline first starts, then stream */
    SNAPSHOT_NEVER,        /* stream only, from the slot's creation */
    SNAPSHOT_WHEN_NEEDED,  /* snapshot whenever there is no usable slot/position */
    SNAPSHOT_NO_DATA,      /* capture schema only, no rows */
    SNAPSHOT_INITIAL_ONLY, /* snapshot, then stop without streaming */
};

enum transport_mode { TRANSPORT_EMBEDDED, TRANSPORT_KAFKA, TRANSPORT_PUBSUB, TRANSPORT_KINESIS };

enum sink_ordering {
    ORDER_DEFAULT,     /* what the sink type prefers */
    ORDER_KEY,         /* per-key commit order; partitions delivered in parallel */
    ORDER_TRANSACTION, /* whole source transactions, in commit order */
};

/* Where a value came from, for errors found after loading (e.g. a table that
 * does not exist): "pipeline.yaml:12". */
struct cfg_loc {
    const char *file; /* borrowed from struct config */
    int line;
};

struct kv {
    char *key;
    char *value;
};

struct retry_cfg {
    int max_attempts;            /* default 5, >= 1 */
    double initial_wait_seconds; /* default 1.0, >= 0 */
    double max_wait_seconds;     /* default 60.0, >= initial */
    double multiplier;           /* default 2.0, >= 1 */
    bool jitter;                 /* default true */
};

struct source_cfg {
    enum source_type source_type; /* default postgres */
    char *host;                   /* default "localhost" */
    int port;                     /* default 5432 (3306 mysql, 27017 mongodb, 1433 sqlserver) */
    char *database;               /* required */
    char *username;               /* default "cdc_user" */
    char *password;               /* secret; default "cdc_password" */
    char **tables;                /* "schema.table"; at least one */
    size_t ntables;
    struct cfg_loc tables_loc;
    struct cfg_loc *table_locs;       /* ntables entries: where each table was named */
    enum snapshot_mode snapshot_mode; /* default initial */
    char *slot_name;                  /* default "cdc_slot"; [a-z0-9_]{1,63} */
    char *publication_name;           /* default "cdc_publication" */
    int mysql_server_id;              /* 0 (default): derived from pipeline_id */
    char *replica_set_name;           /* or NULL */
    char *auth_source;                /* default "admin" */
    /* ours */
    char *sslmode;                     /* default "prefer" */
    double connect_timeout_seconds;    /* default 10 */
    double status_interval_seconds;    /* default 10: standby status update period */
    double heartbeat_interval_seconds; /* default 0 = off: emit a logical message this often */
    int snapshot_parallelism;          /* default 2: reader connections for snapshots */
    int64_t snapshot_chunk_rows;       /* default 50000 rows per chunk */
    char *signal_table;                /* or NULL: "schema.table" for remote snapshot triggers */
};

/* How to reach and authenticate to a Kafka cluster: the platform's kafka
 * block and a kafka sink's block share these keys. */
struct kafka_client_cfg {
    char *bootstrap_servers; /* "host:port,..."; platform default "localhost:9092" */
    /* PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL, or NULL: PLAINTEXT, or
     * SASL_SSL with a SASL auth_mechanism (config_kafka_security_protocol) */
    char *security_protocol;
    /* none | sasl_plain | sasl_scram_256 | sasl_scram_512; default none.
     * sasl_mechanism (PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512, librdkafka's
     * spelling) says the same and is folded into it. */
    char *auth_mechanism;
    char *sasl_mechanism;           /* or NULL */
    char *sasl_username;            /* or NULL; required with SASL */
    char *sasl_password;            /* secret; or NULL; required with SASL */
    char *ssl_ca_location;          /* or NULL: CA certificates (PEM file or directory) */
    char *ssl_certificate_location; /* or NULL: client certificate (PEM) */
    char *ssl_key_location;         /* or NULL: client private key (PEM) */
    char *ssl_key_password;         /* secret; or NULL */
    /* librdkafka properties passed through as given ("linger.ms": "20"); the
     * names and values are checked by librdkafka when a client is built. */
    struct kv *properties;
    size_t nproperties;
    struct cfg_loc properties_loc; /* the properties key */
    struct cfg_loc *property_locs; /* nproperties entries */
};

/* A sink type: its name, its block's keys and how it delivers; defined in
 * its folder under src/sink/ and listed by the registry (sink/registry.h). */
struct sink_type;

/* What every sink has.  The block named after its type (`file:`, …) holds
 * the common keys, decoded here with the type's defaults, and the type's
 * own keys, decoded into conf (docs/configuration.md lists which are
 * which). */
struct sink_cfg {
    char *sink_id;                 /* required, unique */
    const struct sink_type *type;  /* borrowed from the registry; never NULL once loaded */
    bool enabled;                  /* default true */
    enum sink_ordering ordering;   /* default: the sink's own preference */
    bool has_retry;                /* a per-sink retry block overrides platform retry */
    struct retry_cfg retry;        /* effective retry policy (platform default merged) */
    struct cfg_loc loc;            /* the list item */
    int batch_size;                /* common key; default from the type */
    double flush_interval_seconds; /* common key; default from the type */
    void *conf;      /* owned: the type's own keys (its typed struct), or NULL when it has none */
    char *type_name; /* owned: sink_type as written (use type) */
};

struct kafka_cfg {
    struct kafka_client_cfg client;
    char *schema_registry_url;      /* default "http://localhost:8081" */
    char *group_id;                 /* default "cdc-platform" */
    char *auto_offset_reset;        /* earliest | latest; default earliest */
    bool enable_idempotence;        /* default true */
    char *acks;                     /* default "all" */
    int topic_num_partitions;       /* default 1 */
    int topic_replication_factor;   /* default 1 */
    int session_timeout_ms;         /* default 45000 */
    int max_poll_interval_ms;       /* default 300000, >= session_timeout_ms */
    int fetch_min_bytes;            /* default 1 */
    int fetch_max_wait_ms;          /* default 500 */
    int poll_batch_size;            /* default 1 */
    int deser_pool_size;            /* default 1 */
    double commit_interval_seconds; /* default 0 */
    bool schemas_enable;            /* default false */
    bool tombstones_on_delete;      /* default true */
};

struct connector_cfg { /* the reference's Debezium Connect settings; accepted, unused */
    char *connect_url;
    double timeout_seconds;
    int retry_max_attempts;
    double retry_wait_seconds;
};

struct dlq_cfg {
    bool enabled;                  /* default true */
    char *topic_suffix;            /* default "dlq" */
    int max_retries;               /* default 3 */
    bool include_headers;          /* default true */
    double flush_interval_seconds; /* default 0 */
};

struct platform_cfg {
    enum transport_mode transport_mode; /* default embedded */
    struct kafka_cfg kafka;
    struct connector_cfg connector;
    struct dlq_cfg dlq;
    struct retry_cfg retry;
    int max_buffered_messages;              /* default 10000 per partition */
    int64_t max_buffered_bytes;             /* default 64 MiB across the pipeline */
    int64_t max_event_bytes;                /* one row's data; 0 (default) = no ceiling */
    int partitions;                         /* default 0 = 4 x online CPUs */
    double schema_monitor_interval_seconds; /* default 30 */
    double lag_monitor_interval_seconds;    /* default 15 */
    bool stop_on_incompatible_schema;       /* default false */
    int health_port;                        /* default 8080; 0 = any free port */
    bool health_enabled;                    /* default true */
    char *health_bind;                      /* default "127.0.0.1" */
    char *control_token;                    /* secret; or NULL: control API disabled */
    char *state_dir;                        /* default ".cdc-state"; per pipeline below it */
    char *log_level;                        /* debug | info | warn | error; default info */
    char *log_format;                       /* logfmt | json; default logfmt */
    double shutdown_timeout_seconds;        /* default 30 */
};

/* Messages, each one complete line without the trailing newline: errors
 * of a load, or notes that are not errors. */
struct cfg_errors {
    char **msgs;
    size_t n;
};

struct config {
    char *pipeline_file; /* owned path as given */
    char *platform_file; /* owned path, or NULL when defaults only */
    char *pipeline_id;   /* required; [A-Za-z0-9_.-]+ */
    char *topic_prefix;  /* default "cdc" */
    struct source_cfg source;
    struct sink_cfg *sinks;
    size_t nsinks;
    struct platform_cfg platform;
    /* Keys of the reference present in the files that cdc accepts but does
     * not act on: "FILE:LINE: accepted, has no effect: KEY (WHY)", in file
     * order; `cdc validate` and `cdc run` show them as warnings. */
    struct cfg_errors inert;
    /* CONFIG_SECRETS_OPTIONAL only: secrets left empty because their
     * variable is unset, "FILE:LINE: KEY: environment variable V is not set"
     * (never a value). */
    struct cfg_errors unset_secrets;
};

/* config_load_flags options. */
enum {
    /* For commands that never connect (`cdc status`, `cdc dlq list`): a
     * secret (password, token) written as ${VAR} with VAR unset is left
     * empty and listed in cfg->unset_secrets instead of failing the load. */
    CONFIG_SECRETS_OPTIONAL = 1 << 0,
};

/* Loads and validates.  platform_path may be NULL.  On success returns 0 and
 * *out owns everything.  On failure returns CDC_EINVAL (config problems, all
 * in errs) or CDC_EIO (a file cannot be read, in errs) and *out is NULL. */
int config_load(struct config **out, const char *pipeline_path, const char *platform_path,
                struct cfg_errors *errs);
/* config_load with CONFIG_* flags. */
int config_load_flags(struct config **out, const char *pipeline_path, const char *platform_path,
                      unsigned flags, struct cfg_errors *errs);
/* The same from memory: pipeline_name and platform_name are what error
 * messages and struct cfg_loc call the texts (NULL: "pipeline.yaml" /
 * "platform.yaml").  platform_text NULL means built-in platform defaults.
 * Texts need not be NUL-terminated.  Errors are appended to errs (which may
 * be NULL); returns 0 or CDC_EINVAL. */
int config_load_text(struct config **out, const char *pipeline_name, const char *pipeline_text,
                     size_t pipeline_len, const char *platform_name, const char *platform_text,
                     size_t platform_len, struct cfg_errors *errs);
/* config_load_text for a config whose sink_type may name types[0..ntypes)
 * instead of the registry's (a test's own sink types). */
int config_load_text_types(struct config **out, const char *pipeline_name,
                           const char *pipeline_text, size_t pipeline_len,
                           const char *platform_name, const char *platform_text,
                           size_t platform_len, struct cfg_errors *errs,
                           const struct sink_type *const *types, size_t ntypes);
/* config_load_text with CONFIG_* flags. */
int config_load_text_flags(struct config **out, const char *pipeline_name,
                           const char *pipeline_text, size_t pipeline_len,
                           const char *platform_name, const char *platform_text,
                           size_t platform_len, unsigned flags, struct cfg_errors *errs);
/* Frees cfg and everything it owns; NULL is a no-op. */
void config_free(struct config *cfg);
/* Frees the messages and leaves errs empty (it may then be reused). */
void cfg_errors_fini(struct cfg_errors *errs);

/* Names for printing. */
const char *config_source_type_name(enum source_type t);
const char *config_snapshot_mode_name(enum snapshot_mode m);
const char *config_transport_name(enum transport_mode t);

/* The security protocol a Kafka client uses: the configured one, or the
 * default for its auth_mechanism. */
const char *config_kafka_security_protocol(const struct kafka_client_cfg *c);

/* Appends where and how a Kafka client connects, without secrets (the
 * names of passed-through properties only: a value may be one). */
struct buf;
void config_kafka_client_describe(const struct kafka_client_cfg *c, struct buf *out);

/* Whether an address to listen on is a loopback one (127.0.0.0/8, ::1,
 * "localhost"); a host name or a wildcard is not. */
bool config_bind_is_loopback(const char *bind);
/* Whether an enabled sink wants each table's snapshot rows in the order of
 * its chunks (sink_type.ordered_snapshot). */
bool config_ordered_snapshot(const struct config *cfg);

/* Splits "schema.table" (either part may be double-quoted) into freshly
 * allocated parts; returns 0, or CDC_EINVAL if malformed. */
int config_split_table(const char *qualified, char **schema, char **table);

#endif
