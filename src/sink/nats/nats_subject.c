/* Subject names: the template's check and its rendering for a table.
 *
 * A NATS subject is tokens separated by '.', each non-empty, without
 * whitespace; '*' and '>' are wildcards, which a published subject must not
 * hold.  The template's literal text and topic_prefix may hold dots (more
 * tokens); a database, schema or table name is one token, whatever it holds. */
#include <string.h>

#include "sink/nats/nats_sink.h"

static const char *const fields[] = {"topic_prefix", "schema", "table", "db"};

/* A character a subject may never hold. */
static bool bad_char(unsigned char c)
{
    return c <= ' ' || c == 0x7f || c == '*' || c == '>';
}

/* The placeholder at p ('{'), as an index into fields, or -1. */
static int field_at(const char *p, const char **end)
{
    *end = strchr(p, '}');
    if (!*end)
        return -1;
    size_t n = (size_t)(*end - p - 1);
    for (int i = 0; i < (int)(sizeof fields / sizeof *fields); i++)
        if (strlen(fields[i]) == n && memcmp(fields[i], p + 1, n) == 0)
            return i;
    return -1;
}

const char *nats_subject_check(const char *tmpl)
{
    const char *what = "a subject template: tokens separated by '.', none empty, without "
                       "spaces, '*' or '>', using {topic_prefix}, {schema}, {table} and {db}";
    bool token_empty = true;
    for (const char *p = tmpl; *p; p++) {
        if (*p == '{') {
            const char *end;
            if (field_at(p, &end) < 0)
                return what;
            p = end;
            token_empty = false;
        } else if (*p == '.') {
            if (token_empty)
                return what;
            token_empty = true;
        } else if (*p == '}' || bad_char((unsigned char)*p)) {
            return what;
        } else {
            token_empty = false;
        }
    }
    return token_empty ? what : NULL;
}

bool nats_subject_valid(const char *s)
{
    bool token_empty = true;
    for (; *s; s++) {
        if (*s == '.') {
            if (token_empty)
                return false;
            token_empty = true;
        } else if (bad_char((unsigned char)*s)) {
            return false;
        } else {
            token_empty = false;
        }
    }
    return !token_empty;
}

/* Appends v; dots kept when they separate tokens (the prefix). */
static void put_value(struct buf *out, const char *v, bool dots)
{
    if (!v || !*v) {
        buf_putc(out, '_');
        return;
    }
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        buf_putc(out, bad_char(*p) || (*p == '.' && (!dots || p[1] == '.' || p[1] == '\0' ||
                                                     p == (const unsigned char *)v))
                          ? '_'
                          : (char)*p);
}

void nats_subject(struct buf *out, const char *tmpl, const char *topic_prefix, const char *db,
                  const char *schema, const char *table)
{
    const char *vals[] = {topic_prefix, schema, table, db};
    for (const char *p = tmpl; *p; p++) {
        const char *end;
        int f = *p == '{' ? field_at(p, &end) : -1;
        if (f < 0) {
            buf_putc(out, *p);
            continue;
        }
        put_value(out, vals[f], f == 0);
        p = end;
    }
}
