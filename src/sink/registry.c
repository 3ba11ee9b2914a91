/* The sink registry: every sink type, one line each, in the order messages
 * list them ("expected one of file|postgres|...").
 *
 *   SINK(name)                 the type sink_<name>_type of src/sink/<name>/
 *   SINK_NOT_BUILT(name, lib)  a type whose library this build lacks: wrap
 *                              its SINK line in #if and name it here, so a
 *                              config using it is told so (not "unknown")
 *
 * A type cdc does not implement yet would be a SINK line too, its type
 * marked SINK_NOT_IMPLEMENTED. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sink/registry.h"
#include "sink/sink.h"
#include "util/err.h"

#define MAX_TYPES 32

/* Fills out[0..n) (out may be NULL) and returns n.  The declarations sit in
 * the list so that a type is one line. */
static size_t list_types(const struct sink_type **out)
{
    size_t n = 0;
#define SINK(name)                                                                                 \
    do {                                                                                           \
        extern const struct sink_type sink_##name##_type;                                          \
        if (out && n < MAX_TYPES)                                                                  \
            out[n] = &sink_##name##_type;                                                          \
        n++;                                                                                       \
    } while (0)
#define SINK_NOT_BUILT(nm, lib)                                                                    \
    do {                                                                                           \
        static const struct sink_type absent = {                                                   \
            .name = #nm, .availability = SINK_NOT_BUILT, .library = (lib)};                        \
        if (out && n < MAX_TYPES)                                                                  \
            out[n] = &absent;                                                                      \
        n++;                                                                                       \
    } while (0)

    SINK(file);
    SINK(postgres);
    SINK(webhook);
    SINK(iceberg);
#ifdef CDC_HAVE_RDKAFKA
    SINK(kafka);
#else
    SINK_NOT_BUILT(kafka, "librdkafka");
#endif
#ifdef CDC_HAVE_NATS
    SINK(nats);
#else
    SINK_NOT_BUILT(nats, "libnats");
#endif

#undef SINK
#undef SINK_NOT_BUILT
    return n < MAX_TYPES ? n : MAX_TYPES;
}

size_t sink_type_count(void)
{
    return list_types(NULL);
}

const struct sink_type *sink_type_at(size_t i)
{
    const struct sink_type *v[MAX_TYPES];
    size_t n = list_types(v);
    return i < n ? v[i] : NULL;
}

const struct sink_type *sink_type_find(const char *name)
{
    const struct sink_type *v[MAX_TYPES];
    size_t n = list_types(v);
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(v[i]->name, name) == 0)
            return v[i];
    return NULL;
}

const char *sink_type_unavailable(const struct sink_type *t, char *buf, size_t len)
{
    switch (t->availability) {
    case SINK_AVAILABLE:
        return NULL;
    case SINK_NOT_IMPLEMENTED:
        snprintf(buf, len, "%s sinks are not implemented in this version of cdc", t->name);
        break;
    case SINK_NOT_BUILT:
        snprintf(buf, len, "sink type %s is not available in this build (built without %s)",
                 t->name, t->library ? t->library : "its library");
        break;
    }
    return buf;
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
