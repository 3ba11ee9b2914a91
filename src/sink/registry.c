/* Sink registry: one line per sink type. */
#include <stdarg.h>
#include <stdio.h>

#include "sink/sink.h"
#include "util/err.h"

extern const struct sink_ops sink_file_ops;
extern const struct sink_ops sink_postgres_ops;
extern const struct sink_ops sink_webhook_ops;
extern const struct sink_ops sink_kafka_ops;

const struct sink_ops *sink_ops_find(enum sink_type type)
{
    switch (type) {
    case SINK_FILE:
        return &sink_file_ops;
    case SINK_POSTGRES:
        return &sink_postgres_ops;
    case SINK_WEBHOOK:
        return &sink_webhook_ops;
    case SINK_KAFKA:
        return &sink_kafka_ops;
    case SINK_ICEBERG:
        return NULL;
    }
    return NULL;
}

int sink_set_error(struct sink *sk, enum sink_errclass cls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sk->err, sizeof sk->err, fmt, ap);
    va_end(ap);
    sk->errclass = cls;
    return CDC_ERR;
}
