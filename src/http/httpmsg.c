/* HTTP messages: the request parser and the response writer, pure functions
 * over byte buffers (tested and fuzzed on their own).  The server loop that
 * uses them is httpd.c; the contract is in httpd.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/httpd.h"
#include "util/str.h"

/* ---------- request parser ---------- */

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-"
 * / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes allowed in a request target: visible ASCII. */
static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Bytes allowed in a header value: HTAB, SP, visible ASCII and obs-text. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Percent-decodes s[0..n) into out[cap] (NUL-terminated).  Returns the
 * decoded length, or -1 on a malformed escape, an encoded NUL, or no room. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = str_hexval((unsigned char)s[i + 1]), lo = str_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

/* Quick rejection of what cannot become a request line, so that garbage gets
 * its 400 at once instead of after the timeout.  s[0..n) is the start of the
 * request line (possibly incomplete). */
static bool request_line_prefix_ok(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == n)
        return true;
    if (i == 0 || s[i] != ' ')
        return false;
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            return true;
        if (c == '\r')
            return i + 1 == n || s[i + 1] == '\n';
        if (c != ' ' && !is_vchar(c))
            return false;
    }
    return true;
}

/* Splits the absolute-form or origin-form target into path and query, and
 * decodes the path into dst[cap].  Returns 0 or -400. */
static int parse_target(struct http_request *rq, char *target, char *dst, size_t cap)
{
    const char *path = target;
    if (strcmp(target, "*") == 0) {
        if (strcmp(rq->method, "OPTIONS") != 0)
            return -400;
        rq->path = "*";
        rq->query = "";
        return 0;
    }
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        const char *auth = strstr(target, "//") + 2;
        size_t alen = strcspn(auth, "/?");
        if (alen == 0)
            return -400;
        path = auth + alen;
    } else if (target[0] != '/') {
        return -400;
    }
    if (strchr(target, '#'))
        return -400;
    const char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    rq->query = q ? q + 1 : "";
    if (plen == 0) {
        /* "http://host?x" */
        if (cap < 2)
            return -400;
        dst[0] = '/';
        dst[1] = '\0';
    } else if (pct_decode(path, plen, dst, cap, false) < 0) {
        return -400;
    }
    rq->path = dst;
    return 0;
}

/* Parses the request line, in place, NUL-terminating its parts. */
static int parse_request_line(struct http_request *rq, char *line)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        return -400;
    *sp1 = '\0';
    for (char *c = line; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return -400;
    rq->method = line;
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2 || sp2 == target)
        return -400;
    *sp2 = '\0';
    for (char *c = target; *c; c++)
        if (!is_vchar((unsigned char)*c))
            return -400;
    rq->target = target;
    const char *v = sp2 + 1;
    if (strncmp(v, "HTTP/", 5) != 0 || !(v[5] >= '0' && v[5] <= '9') || v[6] != '.' ||
        !(v[7] >= '0' && v[7] <= '9') || v[8] != '\0')
        return -400;
    if (v[5] != '1')
        return -505;
    rq->minor = v[7] - '0';
    return 0;
}

/* A Content-Length value: 1*DIGIT.  *n is capped just above limit. */
static int parse_content_length(const char *s, size_t limit, size_t *n)
{
    if (!*s)
        return -400;
    size_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -400;
        if (v <= limit)
            v = v * 10 + (size_t)(*s - '0');
    }
    *n = v;
    return 0;
}

int http_parse_request(struct http_request *rq, const char *data, size_t len, size_t max_body)
{
    rq->method = NULL;
    /* A server ignores empty lines before the request line (RFC 9112 2.2). */
    size_t start = 0;
    while (start < len && (data[start] == '\r' || data[start] == '\n')) {
        if (data[start] == '\r' && start + 1 < len && data[start + 1] != '\n')
            return -400;
        start++;
    }
    /* The head ends at the first empty line. */
    size_t head_end = 0;
    for (size_t i = start; i < len; i++) {
        if (data[i] != '\n')
            continue;
        if (i + 1 < len && data[i + 1] == '\n') {
            head_end = i + 2;
            break;
        }
        if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n') {
            head_end = i + 3;
            break;
        }
    }
    if (!head_end) {
        if (len > HTTP_MAX_HEAD)
            return -413;
        const char *nl = memchr(data + start, '\n', len - start);
        size_t line_len = nl ? (size_t)(nl - (data + start)) + 1 : len - start;
        return request_line_prefix_ok(data + start, line_len) ? 0 : -400;
    }
    if (head_end > HTTP_MAX_HEAD)
        return -413;

    size_t hlen = head_end - start;
    if (memchr(data + start, '\0', hlen))
        return -400;
    memset(rq, 0, offsetof(struct http_request, text));
    memcpy(rq->text, data + start, hlen);
    rq->text[hlen] = '\0';
    char *decoded = rq->text + hlen + 1;
    size_t decoded_cap = sizeof rq->text - hlen - 1;

    /* Split into lines: NUL at each line end, a CR only right before LF. */
    char *line = rq->text;
    char *nl = strchr(line, '\n');
    if (!nl)
        return -400;
    int rc = 0;
    size_t content_length = 0;
    bool have_length = false;
    bool first = true;
    while (nl) {
        *nl = '\0';
        if (nl > line && nl[-1] == '\r')
            nl[-1] = '\0';
        if (strchr(line, '\r'))
            return -400;
        if (first) {
            if ((rc = parse_request_line(rq, line)) != 0)
                return rc;
            first = false;
        } else if (*line == '\0') {
            break; /* the empty line ending the head */
        } else {
            if (*line == ' ' || *line == '\t')
                return -400; /* obsolete line folding */
            char *colon = strchr(line, ':');
            if (!colon || colon == line)
                return -400;
            *colon = '\0';
            for (char *c = line; *c; c++)
                if (!is_tchar((unsigned char)*c))
                    return -400;
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            char *e = v + strlen(v);
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = '\0';
            for (char *c = v; *c; c++)
                if (!is_field_char((unsigned char)*c))
                    return -400;
            if (rq->nheaders == HTTP_MAX_HEADERS)
                return -413;
            rq->headers[rq->nheaders].name = line;
            rq->headers[rq->nheaders].value = v;
            rq->nheaders++;
            if (strcasecmp(line, "Content-Length") == 0) {
                size_t n = 0;
                if ((rc = parse_content_length(v, max_body, &n)) != 0)
                    return rc;
                if (have_length && n != content_length)
                    return -400;
                content_length = n;
                have_length = true;
            } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
                return -501;
            }
        }
        line = nl + 1;
        nl = strchr(line, '\n');
    }
    if ((rc = parse_target(rq, (char *)rq->target, decoded, decoded_cap)) != 0)
        return rc;
    if (content_length > max_body)
        return -413;
    if (len - head_end < content_length)
        return 0;
    rq->body = content_length ? data + head_end : NULL;
    rq->body_len = content_length;
    return (int)(head_end + content_length);
}

const char *http_request_header(const struct http_request *rq, const char *name)
{
    for (size_t i = 0; i < rq->nheaders; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

bool http_query_param(const struct http_request *rq, const char *name, char *out, size_t outlen)
{
    const char *s = rq->query ? rq->query : "";
    char key[256];
    while (*s) {
        size_t n = strcspn(s, "&");
        const char *eq = memchr(s, '=', n);
        size_t klen = eq ? (size_t)(eq - s) : n;
        if (pct_decode(s, klen, key, sizeof key, true) >= 0 && strcmp(key, name) == 0) {
            if (!eq)
                return outlen > 0 && (out[0] = '\0', true);
            return pct_decode(eq + 1, n - klen - 1, out, outlen, true) >= 0;
        }
        s += n;
        if (*s == '&')
            s++;
    }
    return false;
}

/* ---------- responses ---------- */

const char *http_status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void http_response_init(struct http_response *rs)
{
    rs->status = 200;
    rs->content_type = "text/plain; charset=utf-8";
    buf_init(&rs->headers);
    buf_init(&rs->body);
}

void http_response_fini(struct http_response *rs)
{
    buf_fini(&rs->headers);
    buf_fini(&rs->body);
}

static void put_header_text(struct buf *b, const char *s)
{
    for (; *s; s++)
        buf_putc(b, (*s == '\r' || *s == '\n') ? ' ' : *s);
}

void http_response_header(struct http_response *rs, const char *name, const char *value)
{
    put_header_text(&rs->headers, name);
    buf_puts(&rs->headers, ": ");
    put_header_text(&rs->headers, value);
    buf_puts(&rs->headers, "\r\n");
}

void http_response_text(struct http_response *rs, int status, const char *text)
{
    rs->status = status;
    rs->content_type = "text/plain; charset=utf-8";
    buf_reset(&rs->body);
    buf_puts(&rs->body, text);
}

void http_response_serialize(const struct http_response *rs, bool head_only, struct buf *out)
{
    int status = rs->status >= 100 && rs->status <= 999 ? rs->status : 500;
    buf_printf(out, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
    buf_puts(out, "Content-Type: ");
    put_header_text(out, rs->content_type ? rs->content_type : "text/plain; charset=utf-8");
    buf_printf(out, "\r\nContent-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n",
               rs->body.len);
    if (rs->headers.len)
        buf_put(out, rs->headers.p, rs->headers.len);
    buf_puts(out, "\r\n");
    if (!head_only && rs->body.len)
        buf_put(out, rs->body.p, rs->body.len);
}
