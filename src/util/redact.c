/* Redaction of URLs and connection strings (contract in redact.h). */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/redact.h"
#include "util/str.h"

#define MASK "***"

/* "scheme://": 1*( ALPHA / DIGIT / "+" / "-" / "." ) starting with a letter. */
static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    return strncmp(s + i, "://", 3) == 0 ? i + 3 : 0;
}

static void put_url(struct buf *b, const char *url, size_t scheme)
{
    buf_put(b, url, scheme);
    const char *auth = url + scheme;
    size_t auth_len = strcspn(auth, "/?#");
    /* user information ends at the last '@' of the authority */
    const char *host = auth;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    if (host != auth)
        buf_puts(b, MASK "@");
    buf_put(b, host, auth_len - (size_t)(host - auth));
    const char *path = auth + auth_len;
    size_t path_len = strcspn(path, "?#");
    buf_put(b, path, path_len);
    if (path[path_len] != '?')
        return; /* a fragment alone: dropped */
    const char *q = path + path_len + 1;
    size_t q_len = strcspn(q, "#");
    buf_putc(b, '?');
    for (size_t i = 0; i < q_len;) {
        size_t n = strcspn(q + i, "&#");
        if (n > q_len - i)
            n = q_len - i;
        const char *eq = memchr(q + i, '=', n);
        if (eq) {
            size_t name = (size_t)(eq - (q + i));
            buf_put(b, q + i, name + 1);
            if (n > name + 1)
                buf_puts(b, MASK);
        } else if (n) {
            buf_puts(b, MASK);
        }
        i += n;
        if (i < q_len && q[i] == '&') {
            buf_putc(b, '&');
            i++;
        }
    }
}

static bool secret_key(const char *k, size_t n)
{
    static const char *const ends[] = {"password", "secret", "token"};
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        size_t e = strlen(ends[i]);
        if (n >= e && strncasecmp(k + n - e, ends[i], e) == 0)
            return true;
    }
    return false;
}

/* Whether s reads as "key=value key=value": the first word is a key. */
static bool is_conninfo(const char *s)
{
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    size_t k = i;
    while (isalnum((unsigned char)s[i]) || s[i] == '_')
        i++;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    return i > k && s[i] == '=';
}

/* key = value pairs; values may be single-quoted with backslash escapes. */
static void put_conninfo(struct buf *b, const char *s)
{
    size_t i = 0;
    while (s[i]) {
        size_t start = i;
        while (s[i] && s[i] != '=')
            i++;
        size_t kend = i;
        while (kend > start && (s[kend - 1] == ' ' || s[kend - 1] == '\t'))
            kend--;
        size_t kstart = start;
        while (kstart < kend && (s[kstart] == ' ' || s[kstart] == '\t'))
            kstart++;
        buf_put(b, s + start, i - start);
        if (!s[i])
            return;
        buf_putc(b, '=');
        i++;
        while (s[i] == ' ' || s[i] == '\t')
            buf_putc(b, s[i++]);
        size_t vstart = i;
        if (s[i] == '\'') {
            for (i++; s[i] && s[i] != '\''; i++)
                if (s[i] == '\\' && s[i + 1])
                    i++;
            if (s[i])
                i++;
        } else {
            while (s[i] && s[i] != ' ' && s[i] != '\t')
                i++;
        }
        if (secret_key(s + kstart, kend - kstart))
            buf_puts(b, MASK);
        else
            buf_put(b, s + vstart, i - vstart);
    }
}

char *redact_url(const char *s, char *out, size_t outlen)
{
    struct buf b = BUF_INIT;
    if (!s)
        s = "";
    size_t scheme = scheme_len(s);
    if (scheme)
        put_url(&b, s, scheme);
    else if (is_conninfo(s))
        put_conninfo(&b, s);
    else
        buf_puts(&b, s);
    str_copy(out, outlen, b.p ? b.p : "");
    buf_fini(&b);
    return out;
}
