/* Structured logs: one event per line on stderr, logfmt by default
 * (`ts=… level=info event=source.connected slot=cdc_slot`) or JSON.
 * fmt holds the event's key=value pairs; wrap any free text in log_q() so
 * spaces and quotes survive.  Safe to call from any thread. */
#ifndef CDC_UTIL_LOG_H
#define CDC_UTIL_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_setup(enum log_level min, bool json);
/* Parses "debug" | "info" | "warn" | "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
bool log_enabled(enum log_level lvl);
void log_emit(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A status line that stays below the log lines on a terminal (a snapshot's
 * progress): drawn in place, lifted out of the way and redrawn by every log
 * line.  Nothing happens when stderr is not a terminal.  "" clears it (do
 * that before writing to stderr other than through the log). */
void log_status(const char *text);
/* Whether stderr is a terminal, so log_status shows something. */
bool log_status_available(void);
/* Returns s quoted for logfmt when needed.  The result lives in a small
 * per-thread ring, valid for the next few calls on the same thread. */
const char *log_q(const char *s);

#define log_debug(event, ...)                                                                      \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_emit(LOG_DEBUG, event, __VA_ARGS__);                                               \
    } while (0)
#define log_info(event, ...)  log_emit(LOG_INFO, event, __VA_ARGS__)
#define log_warn(event, ...)  log_emit(LOG_WARN, event, __VA_ARGS__)
#define log_error(event, ...) log_emit(LOG_ERROR, event, __VA_ARGS__)

#endif
