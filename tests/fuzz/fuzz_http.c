/* libFuzzer target for the HTTP request parser (http/httpmsg.c).
 *
 * Whatever the bytes, http_parse_request must not crash or read outside the
 * buffer, and its answers must hang together:
 *   - a complete request takes at most the input, and parsing exactly the
 *     bytes it took gives the same request;
 *   - no proper prefix of the input is complete, and a prefix is never
 *     refused when the whole input turns out fine;
 *   - every field is set and sane (method and header names are tokens,
 *     the body lies inside the input and within the limit).
 * Headers from the request are echoed into a response, which must keep its
 * head intact (no CR/LF smuggled in). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/httpd.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_request rq, rq2;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http: %s\n", what);
    abort();
}

static void check_token(const char *s, const char *what)
{
    if (!s || !*s)
        die(what);
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
            strchr("\"(),/:;<=>?@[\\]{}", *s))
            die(what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A small body limit reaches the 413 paths with short inputs. */
    size_t max_body = size ? data[0] % 64 : 16;
    /* An exact-size heap copy, so that AddressSanitizer sees any overread. */
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    int rc = http_parse_request(&rq, in, size, max_body);
    if (rc == 0 && rq.method && (!rq.path || !rq.target || !rq.query))
        die("a complete head with fields unset");
    if (rc > 0 && memchr(in, '\0', (size_t)rc - rq.body_len))
        die("a NUL in an accepted head");
    if (rc > 0) {
        if ((size_t)rc > size)
            die("took more than the input");
        check_token(rq.method, "method is not a token");
        if (!rq.target || !rq.path || !rq.query || (rq.minor < 0 || rq.minor > 9))
            die("field unset");
        if (rq.nheaders > HTTP_MAX_HEADERS)
            die("too many headers");
        for (size_t i = 0; i < rq.nheaders; i++) {
            check_token(rq.headers[i].name, "header name is not a token");
            for (const char *v = rq.headers[i].value; *v; v++)
                if (*v == '\r' || *v == '\n' || *v == '\0')
                    die("line break in a header value");
        }
        if (rq.body_len > max_body)
            die("body over the limit");
        if (rq.body && (rq.body < in || rq.body + rq.body_len > in + size))
            die("body outside the input");
        /* the same bytes alone give the same request */
        if (http_parse_request(&rq2, in, (size_t)rc, max_body) != rc)
            die("not the same request on exactly its bytes");
        if (strcmp(rq.method, rq2.method) != 0 || strcmp(rq.path, rq2.path) != 0 ||
            rq.nheaders != rq2.nheaders || rq.body_len != rq2.body_len)
            die("a different request on exactly its bytes");

        char v[64];
        (void)http_query_param(&rq, "q", v, sizeof v);
        (void)http_query_param(&rq, rq.path, v, sizeof v);

        struct http_response rs;
        http_response_init(&rs);
        rs.status = 100 + (int)(size % 900);
        for (size_t i = 0; i < rq.nheaders; i++)
            http_response_header(&rs, rq.headers[i].name, rq.headers[i].value);
        http_response_header(&rs, "X-Path", rq.path);
        if (rq.body)
            buf_put(&rs.body, rq.body, rq.body_len);
        struct buf out = BUF_INIT;
        http_response_serialize(&rs, false, &out);
        const char *end = strstr(out.p, "\r\n\r\n");
        if (!end)
            die("response head not terminated");
        /* inside the head, every LF is part of a CRLF */
        for (const char *c = out.p; c < end; c++)
            if ((*c == '\n' && (c == out.p || c[-1] != '\r')) || (*c == '\r' && c[1] != '\n'))
                die("stray line break in the response head");
        buf_fini(&out);
        http_response_fini(&rs);
    }
    /* prefixes: never complete, and not refused when the whole is fine */
    size_t step = size > 512 ? size / 64 : 1;
    for (size_t n = 0; n < size; n += step) {
        int p = http_parse_request(&rq2, in, n, max_body);
        if (p > 0 && rc > 0 && p != rc)
            die("a prefix holds a different complete request");
        if (p > 0 && (size_t)p > n)
            die("prefix took more than it had");
        if (p < 0 && rc >= 0)
            die("a prefix was refused but the whole input is fine");
    }
    free(in);
    return 0;
}
