/* The nats sink's own keys (its block's, besides the common batch_size and
 * flush_interval_seconds), and the subject names it publishes to. */
#ifndef CDC_SINK_NATS_NATS_SINK_H
#define CDC_SINK_NATS_NATS_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "sink/sink.h"
#include "util/buf.h"

struct nats_sink_cfg {
    char *url;      /* nats://host:port, comma-separated for several servers */
    char *user;     /* with password, or NULL */
    char *password; /* secret */
    char *token;    /* secret, instead of user and password */
    /* Subject template: {topic_prefix}, {schema}, {table} and {db} are
     * replaced; default "{topic_prefix}.{schema}.{table}". */
    char *subject;
    /* The JetStream stream that must take the subjects, checked at open;
     * NULL: whichever stream takes them (none: the pipeline stops). */
    char *stream;
    double publish_timeout_seconds; /* how long acknowledgements may take */
    int max_pending;                /* publishes awaiting their acknowledgement at most */
};

extern const struct sink_type sink_nats_type;
extern const struct sink_ops sink_nats_ops; /* nats_sink.c */

/* Whether tmpl is a subject template: known placeholders, tokens of
 * printable characters without the wildcards * and >, none empty.  NULL if
 * so, else what is expected. */
const char *nats_subject_check(const char *tmpl);

/* Whether s is a subject one may publish to: tokens separated by '.', none
 * empty, without spaces, control characters, '*' or '>'. */
bool nats_subject_valid(const char *s);

/* Appends the subject of tmpl for a table to out.  A placeholder's value
 * becomes part of one token: a '.', '*', '>', space or control character in
 * it is written as '_', and an empty value as '_'. */
void nats_subject(struct buf *out, const char *tmpl, const char *topic_prefix, const char *db,
                  const char *schema, const char *table);

#endif
