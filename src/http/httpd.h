/* A small embedded HTTP/1.1 server for health probes, metrics and the control
 * API.
 *
 * One thread multiplexes the listening socket and up to max_conns
 * connections with poll().  When every slot is taken, a new connection
 * replaces the one that has waited longest without completing a request (or
 * one already answered), so idle or slow clients cannot keep a health probe
 * out; only connections being answered are never let go.  Each connection
 * carries one request: the server
 * reads it (request line, headers, a Content-Length body of at most
 * HTTP_MAX_BODY bytes), calls the handler on its own thread, sends the answer
 * with Content-Length and `Connection: close`, and closes.  Malformed
 * requests get 400, oversized ones 413, slow ones 408, without the handler
 * being called.  A request announcing a body with `Expect: 100-continue` is
 * told to go ahead.  Handlers run one at a time and must not block for long:
 * probes time out.
 *
 * The request parser is a pure function over a byte buffer
 * (http_parse_request), so it can be tested and fuzzed on its own. */
#ifndef CDC_HTTP_HTTPD_H
#define CDC_HTTP_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define HTTP_MAX_HEAD    (16 * 1024) /* request line and headers */
#define HTTP_MAX_BODY    (64 * 1024)
#define HTTP_MAX_HEADERS 64

struct http_header {
    const char *name;  /* as sent; compare case-insensitively */
    const char *value; /* leading and trailing blanks removed */
};

/* A parsed request.  Every string points into text[] (owned by the struct),
 * except body, which points into the buffer given to http_parse_request and
 * is not NUL-terminated. */
struct http_request {
    const char *method; /* "GET", "POST", … (case-sensitive, as RFC 9110 says) */
    const char *target; /* as sent: "/metrics?name=x" */
    const char *path;   /* target's path, percent-decoded: "/metrics" */
    const char *query;  /* raw text after '?', "" if none */
    int minor;          /* HTTP/1.<minor>: 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    const char *body; /* borrowed, body_len bytes; NULL when there is none */
    size_t body_len;
    char text[2 * HTTP_MAX_HEAD + 8];
};

/* Parses one request at the start of data[0..len).  Returns:
 *   n > 0  the request is complete and took the first n bytes;
 *   0      incomplete so far (nothing wrong yet): read more and call again;
 *          if the head is complete and only body bytes are missing, the
 *          head's fields are already set, else rq->method is NULL;
 *   -code  the request cannot be served: answer with HTTP status `code`
 *          (400 malformed, 413 head or body too large, 501 a transfer coding,
 *          505 an HTTP version other than 1.x).
 * Bodies longer than max_body are refused with -413 as soon as the headers
 * announce them.  Safe on any bytes; never reads past data[len). */
int http_parse_request(struct http_request *rq, const char *data, size_t len, size_t max_body);

/* The value of the first header called name (case-insensitive), or NULL. */
const char *http_request_header(const struct http_request *rq, const char *name);
/* Finds name in the query string and copies its percent-decoded value ('+'
 * is a space) into out[outlen].  Returns false if absent, malformed or too
 * long for out. */
bool http_query_param(const struct http_request *rq, const char *name, char *out, size_t outlen);

/* What a handler fills in.  The server initializes it to 200, text/plain,
 * empty, and frees it after sending. */
struct http_response {
    int status;
    const char *content_type; /* borrowed: a literal, or valid until the handler returns */
    struct buf headers;       /* extra "Name: value\r\n" lines: use http_response_header */
    struct buf body;
};

void http_response_init(struct http_response *rs);
void http_response_fini(struct http_response *rs);
/* Adds a header line; CR and LF in name or value become spaces. */
void http_response_header(struct http_response *rs, const char *name, const char *value);
/* Replaces status, type (text/plain) and body with text. */
void http_response_text(struct http_response *rs, int status, const char *text);
/* Writes status line, headers and (unless head_only) body to out. */
void http_response_serialize(const struct http_response *rs, bool head_only, struct buf *out);
/* "OK", "Not Found", …; "Unknown" for codes it does not know. */
const char *http_status_reason(int status);

/* Called on the server thread for every well-formed request.  HEAD requests
 * reach the handler as they are; the server drops the body it produces. */
typedef void http_handler_fn(const struct http_request *rq, struct http_response *rs, void *arg);

struct httpd_opts {
    const char *bind; /* host name or address ("::1" or "[::1]"); NULL = "127.0.0.1" */
    int port;         /* 0 = any free port (see httpd_port) */
    http_handler_fn *handler;
    void *arg;      /* passed to handler */
    int max_conns;  /* open connections at most; 0 = 64 */
    int timeout_ms; /* to receive a request, and to send an answer; 0 = 10000 */
};

struct httpd;

/* Binds, listens and starts the server thread.  0 on success, or a negative
 * CDC_E* with a sentence in err (e.g. the address is in use). */
int httpd_start(struct httpd **out, const struct httpd_opts *opts, char *err, size_t errlen);
/* The port actually bound. */
int httpd_port(const struct httpd *h);
/* Stops the thread, closes every connection (answers in flight are cut) and
 * frees h.  No handler runs after it returns.  NULL is a no-op. */
void httpd_stop(struct httpd *h);

#endif
