/* Error collection for the configuration loader.  Every problem becomes one
 * line "FILE:LINE: KEY.PATH: MESSAGE"; the lines are gathered here while both
 * files are checked and handed to the caller sorted in file order. */
#ifndef CDC_CONFIG_CFG_DIAG_H
#define CDC_CONFIG_CFG_DIAG_H

#include <stdarg.h>
#include <stddef.h>

#include "config/config.h"
#include "util/buf.h"

/* One input file: its name as the user gave it and its place in the output
 * order (the pipeline file's errors come before the platform file's). */
struct cfg_src {
    const char *name; /* borrowed */
    int order;
};

struct cfg_diag_msg {
    int order;
    int line;
    size_t seq;
    char *text; /* owned */
};

struct cfg_diag {
    struct cfg_diag_msg *v;
    size_t n, cap;
};

void cfg_diag_init(struct cfg_diag *d);
void cfg_diag_fini(struct cfg_diag *d);

/* Records "NAME:LINE: PATH: MESSAGE" (or "NAME:LINE: MESSAGE" when path is
 * empty or NULL, and "NAME: MESSAGE" when line is 0). */
void cfg_diag_add(struct cfg_diag *d, const struct cfg_src *src, int line, const char *path,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

void cfg_diag_vadd(struct cfg_diag *d, const struct cfg_src *src, int line, const char *path,
                   const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* Records "NAME:LINE:COL: YAML syntax error: PROBLEM". */
void cfg_diag_syntax(struct cfg_diag *d, const struct cfg_src *src, int line, int col,
                     const char *problem);

/* Sorts the collected lines into file order and moves them to the end of
 * errs (if errs is NULL they are dropped).  Leaves d empty. */
void cfg_diag_flush(struct cfg_diag *d, struct cfg_errors *errs);

/* A key path such as "sinks[1].postgres.port", built while walking a tree. */
struct cfg_path {
    struct buf b;
};

void cfg_path_init(struct cfg_path *p);
void cfg_path_fini(struct cfg_path *p);
/* Append ".key" ("key" at the top) or "[i]"; both return a mark for
 * cfg_path_pop.  Unprintable bytes of a key are written as \xHH and an
 * empty key as "". */
size_t cfg_path_push_key(struct cfg_path *p, const char *key, size_t len);
size_t cfg_path_push_index(struct cfg_path *p, size_t i);
void cfg_path_pop(struct cfg_path *p, size_t mark);
/* The current path; "" when empty.  Valid until the next push or pop. */
const char *cfg_path_str(const struct cfg_path *p);

/* Appends s as a double-quoted, escaped string, cut to a readable length, so
 * a value with line breaks still yields a one-line message. */
void cfg_quote(struct buf *b, const char *s, size_t len);

#endif
