#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"

static enum log_level log_min = LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The status line (log_status): shown below the log lines while stderr is a
 * terminal.  The mutex keeps a log line and the redrawing of the status
 * line together. */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static char status_text[256];
static int status_tty = -1; /* isatty(2), asked once */

#define CLEAR_LINE "\r\033[K"

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(2, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Writes one complete log line, lifting the status line out of its way. */
static void emit_line(const char *line, size_t n)
{
    pthread_mutex_lock(&out_mu);
    if (status_text[0]) {
        write_all(CLEAR_LINE, sizeof CLEAR_LINE - 1);
        write_all(line, n);
        write_all(status_text, strlen(status_text));
    } else {
        write_all(line, n);
    }
    pthread_mutex_unlock(&out_mu);
}

bool log_status_available(void)
{
    pthread_mutex_lock(&out_mu);
    if (status_tty < 0)
        status_tty = isatty(2) ? 1 : 0;
    bool tty = status_tty == 1;
    pthread_mutex_unlock(&out_mu);
    return tty;
}

void log_status(const char *text)
{
    if (!log_status_available())
        return;
    pthread_mutex_lock(&out_mu);
    size_t n = 0;
    /* One line, no control characters: it is redrawn in place. */
    for (const char *p = text ? text : ""; *p && n + 1 < sizeof status_text; p++)
        status_text[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    status_text[n] = '\0';
    write_all(CLEAR_LINE, sizeof CLEAR_LINE - 1);
    write_all(status_text, n);
    pthread_mutex_unlock(&out_mu);
}

void log_setup(enum log_level min, bool json)
{
    log_min = min;
    log_json = json;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

bool log_enabled(enum log_level lvl)
{
    return lvl >= log_min;
}

const char *log_q(const char *s)
{
    static __thread char ring[4][512];
    static __thread unsigned slot;
    if (!s)
        return "\"\"";
    bool plain = *s != '\0';
    for (const char *c = s; *c && plain; c++)
        if (*c == ' ' || *c == '"' || *c == '=' || *c == '\\' || (unsigned char)*c < 0x20)
            plain = false;
    if (plain)
        return s;
    char *out = ring[slot++ % 4];
    size_t o = 0, cap = sizeof ring[0];
    out[o++] = '"';
    for (const char *c = s; *c && o + 4 < cap; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (ch < 0x20) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Re-emits logfmt pairs as JSON members: k=v -> "k":"v", quoted values unescaped
 * then escaped again for JSON.  Values are strings; readers parse numbers. */
static void logfmt_to_json(struct buf *b, const char *s)
{
    while (*s) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        const char *k = s;
        while (*s && *s != '=' && *s != ' ')
            s++;
        size_t klen = (size_t)(s - k);
        buf_puts(b, ",\"");
        buf_put(b, k, klen);
        buf_puts(b, "\":\"");
        if (*s == '=') {
            s++;
            if (*s == '"') {
                s++;
                while (*s && *s != '"') {
                    if (*s == '\\' && s[1])
                        s++;
                    if (*s == '"' || *s == '\\')
                        buf_putc(b, '\\');
                    buf_putc(b, *s++);
                }
                if (*s == '"')
                    s++;
            } else {
                while (*s && *s != ' ') {
                    if (*s == '"' || *s == '\\')
                        buf_putc(b, '\\');
                    buf_putc(b, *s++);
                }
            }
        }
        buf_putc(b, '"');
    }
}

void log_emit(enum log_level lvl, const char *event, const char *fmt, ...)
{
    if (lvl < log_min)
        return;
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[80];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

    char line[2600];
    struct buf b = {line, 0, sizeof line};
    if (log_json) {
        b.len =
            (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\"",
                             ts, level_names[lvl], event);
        /* logfmt_to_json may outgrow the stack buffer: move to the heap then. */
        struct buf h = BUF_INIT;
        buf_put(&h, line, b.len);
        logfmt_to_json(&h, body);
        buf_puts(&h, "}\n");
        emit_line(h.p, h.len);
        buf_fini(&h);
        return;
    }
    int n = snprintf(line, sizeof line, "ts=%s level=%s event=%s%s%s\n", ts, level_names[lvl],
                     event, body[0] ? " " : "", body);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line;
        line[n - 1] = '\n';
    }
    emit_line(line, (size_t)n);
}
