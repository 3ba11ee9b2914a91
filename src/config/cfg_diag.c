#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/cfg_diag.h"
#include "util/mem.h"

/* Values longer than this are cut in messages. */
#define CFG_QUOTE_MAX 60

void cfg_diag_init(struct cfg_diag *d)
{
    d->v = NULL;
    d->n = d->cap = 0;
}

void cfg_diag_fini(struct cfg_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].text);
    free(d->v);
    cfg_diag_init(d);
}

static void diag_push(struct cfg_diag *d, const struct cfg_src *src, int line, char *text)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    d->v[d->n].order = src->order;
    d->v[d->n].line = line;
    d->v[d->n].seq = d->n;
    d->v[d->n].text = text;
    d->n++;
}

void cfg_diag_vadd(struct cfg_diag *d, const struct cfg_src *src, int line, const char *path,
                   const char *fmt, va_list ap)
{
    struct buf b = BUF_INIT;
    if (line > 0)
        buf_printf(&b, "%s:%d: ", src->name, line);
    else
        buf_printf(&b, "%s: ", src->name);
    if (path && *path)
        buf_printf(&b, "%s: ", path);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    buf_puts(&b, msg ? msg : "(out of memory)");
    free(msg);
    diag_push(d, src, line, b.p);
}

void cfg_diag_add(struct cfg_diag *d, const struct cfg_src *src, int line, const char *path,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_diag_vadd(d, src, line, path, fmt, ap);
    va_end(ap);
}

void cfg_diag_syntax(struct cfg_diag *d, const struct cfg_src *src, int line, int col,
                     const char *problem)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s:%d:%d: YAML syntax error: ", src->name, line, col);
    /* libyaml's texts are plain ASCII, but keep the one-line promise anyway */
    for (const char *p = problem ? problem : "unknown problem"; *p; p++)
        buf_putc(&b, (*p == '\n' || *p == '\r') ? ' ' : *p);
    diag_push(d, src, line, b.p);
}

static int diag_cmp(const void *a, const void *b)
{
    const struct cfg_diag_msg *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void cfg_diag_flush(struct cfg_diag *d, struct cfg_errors *errs)
{
    if (d->n > 1)
        qsort(d->v, d->n, sizeof *d->v, diag_cmp);
    if (errs && d->n) {
        errs->msgs = xrealloc(errs->msgs, (errs->n + d->n) * sizeof *errs->msgs);
        for (size_t i = 0; i < d->n; i++) {
            errs->msgs[errs->n++] = d->v[i].text;
            d->v[i].text = NULL;
        }
    }
    cfg_diag_fini(d);
}

void cfg_path_init(struct cfg_path *p)
{
    buf_init(&p->b);
}

void cfg_path_fini(struct cfg_path *p)
{
    buf_fini(&p->b);
}

size_t cfg_path_push_key(struct cfg_path *p, const char *key, size_t len)
{
    size_t mark = p->b.len;
    if (p->b.len)
        buf_putc(&p->b, '.');
    if (len == 0)
        buf_puts(&p->b, "\"\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f)
            buf_printf(&p->b, "\\x%02x", c);
        else
            buf_putc(&p->b, (char)c);
    }
    buf_reserve(&p->b, 0); /* an empty key still leaves a valid string */
    p->b.p[p->b.len] = '\0';
    return mark;
}

size_t cfg_path_push_index(struct cfg_path *p, size_t i)
{
    size_t mark = p->b.len;
    buf_printf(&p->b, "[%zu]", i);
    return mark;
}

void cfg_path_pop(struct cfg_path *p, size_t mark)
{
    if (mark < p->b.len) {
        p->b.len = mark;
        p->b.p[mark] = '\0';
    }
}

const char *cfg_path_str(const struct cfg_path *p)
{
    return p->b.len ? p->b.p : "";
}

void cfg_quote(struct buf *b, const char *s, size_t len)
{
    size_t cut = len;
    if (cut > CFG_QUOTE_MAX) {
        cut = CFG_QUOTE_MAX;
        /* do not split a UTF-8 sequence */
        while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
            cut--;
    }
    buf_putc(b, '"');
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            buf_puts(b, "\\\"");
            break;
        case '\\':
            buf_puts(b, "\\\\");
            break;
        case '\n':
            buf_puts(b, "\\n");
            break;
        case '\r':
            buf_puts(b, "\\r");
            break;
        case '\t':
            buf_puts(b, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                buf_printf(b, "\\x%02x", c);
            else
                buf_putc(b, (char)c);
        }
    }
    if (cut < len)
        buf_puts(b, "...");
    buf_putc(b, '"');
}
