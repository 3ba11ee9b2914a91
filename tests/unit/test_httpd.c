/* The embedded HTTP server and the pipeline's endpoints: the request parser on
 * buffers, then a real server on a loopback port driven through raw sockets
 * (routing, errors, concurrency, timeouts, stopping with clients connected),
 * then the API with a context of config, pause flag, store and engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/json.h"
#include "http/api.h"
#include "http/httpd.h"
#include "pipeline/engine.h"
#include "state/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "source/pg/pgjson.h"

/* ---------- parser ---------- */

static struct http_request rq;

static int parse(const char *s)
{
    return http_parse_request(&rq, s, strlen(s), HTTP_MAX_BODY);
}

static void test_parse_get(void **state)
{
    const char *req = "GET /metrics/a%20b?x=1&name=a+b%21 HTTP/1.1\r\n"
                      "Host: localhost:8080\r\n"
                      "X-Thing:   spaced value \t\r\n"
                      "accept: */*\r\n"
                      "\r\n";
    assert_int_equal(parse(req), (int)strlen(req));
    assert_string_equal(rq.method, "GET");
    assert_string_equal(rq.target, "/metrics/a%20b?x=1&name=a+b%21");
    assert_string_equal(rq.path, "/metrics/a b");
    assert_string_equal(rq.query, "x=1&name=a+b%21");
    assert_int_equal(rq.minor, 1);
    assert_int_equal(rq.nheaders, 3);
    assert_string_equal(http_request_header(&rq, "HOST"), "localhost:8080");
    assert_string_equal(http_request_header(&rq, "x-thing"), "spaced value");
    assert_string_equal(http_request_header(&rq, "Accept"), "*/*");
    assert_null(http_request_header(&rq, "Authorization"));
    assert_null(rq.body);
    char v[32];
    assert_true(http_query_param(&rq, "name", v, sizeof v));
    assert_string_equal(v, "a b!");
    assert_true(http_query_param(&rq, "x", v, sizeof v));
    assert_string_equal(v, "1");
    assert_false(http_query_param(&rq, "y", v, sizeof v));
    assert_false(http_query_param(&rq, "name", v, 3)); /* too long for out */
}

static void test_parse_body_and_incomplete(void **state)
{
    const char *req = "POST /control/pause HTTP/1.0\nContent-Length: 5\n\nhelloEXTRA";
    size_t full = strlen(req) - strlen("EXTRA");
    assert_int_equal(parse(req), (int)full);
    assert_int_equal(rq.minor, 0);
    assert_int_equal(rq.body_len, 5);
    assert_memory_equal(rq.body, "hello", 5);
    /* every proper prefix is "incomplete", never an error */
    for (size_t n = 0; n < full; n++)
        assert_int_equal(http_parse_request(&rq, req, n, HTTP_MAX_BODY), 0);
    /* empty lines before the request line are ignored */
    assert_int_equal(parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 22);
    assert_string_equal(rq.path, "/");
    /* absolute form */
    assert_true(parse("GET http://h:1/readyz?a=b HTTP/1.1\r\n\r\n") > 0);
    assert_string_equal(rq.path, "/readyz");
    assert_string_equal(rq.query, "a=b");
    assert_true(parse("OPTIONS * HTTP/1.1\r\n\r\n") > 0);
    assert_string_equal(rq.path, "*");
    /* the same Content-Length twice is fine */
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx") > 0);
}

static void test_parse_rejects(void **state)
{
    static const struct {
        const char *req;
        int want;
    } cases[] = {
        {"GARBAGE\x01\x02\r\n\r\n", -400},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", -400}, /* a TLS hello, incomplete */
        {"GET  / HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1 \r\n\r\n", -400},
        {"GET / http/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n\r\n", 18},
        {"GET / HTTP/2.0\r\n\r\n", -505},
        {"GET noslash HTTP/1.1\r\n\r\n", -400},
        {"GET * HTTP/1.1\r\n\r\n", -400},
        {"GET /a%zz HTTP/1.1\r\n\r\n", -400},
        {"GET /a%00 HTTP/1.1\r\n\r\n", -400},
        {"GET /a% HTTP/1.1\r\n\r\n", -400},
        {"GET /a#frag HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nNo colon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n: empty\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nA: \x7f\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", -400},
        {"POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", -413},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", -413},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -501},
    };
    /* a NUL anywhere in the head */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\nX: y\r\n\r\n";
    assert_int_equal(http_parse_request(&rq, nul, sizeof nul - 1, HTTP_MAX_BODY), -400);
    static const char nul2[] = "GET /\0 HTTP/1.1\r\n";
    assert_int_equal(http_parse_request(&rq, nul2, sizeof nul2 - 1, HTTP_MAX_BODY), -400);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int got = parse(cases[i].req);
        if (got != cases[i].want)
            fail_msg("case %zu: %s: got %d, want %d", i, cases[i].req, got, cases[i].want);
    }
    /* too many headers, and a head that never ends */
    struct buf b = BUF_INIT;
    buf_puts(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
        buf_printf(&b, "H%d: v\r\n", i);
    buf_puts(&b, "\r\n");
    assert_int_equal(http_parse_request(&rq, b.p, b.len, HTTP_MAX_BODY), -413);
    buf_reset(&b);
    buf_puts(&b, "GET / HTTP/1.1\r\n");
    while (b.len <= HTTP_MAX_HEAD)
        buf_puts(&b, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    assert_int_equal(http_parse_request(&rq, b.p, b.len, HTTP_MAX_BODY), -413);
    buf_fini(&b);
}

static void test_response_serialize(void **state)
{
    struct http_response rs;
    http_response_init(&rs);
    http_response_text(&rs, 404, "nope\n");
    http_response_header(&rs, "X-Evil", "a\r\nSet-Cookie: x=1");
    struct buf out = BUF_INIT;
    http_response_serialize(&rs, false, &out);
    assert_non_null(strstr(out.p, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(out.p, "Content-Length: 5\r\n"));
    assert_non_null(strstr(out.p, "Connection: close\r\n"));
    assert_non_null(strstr(out.p, "X-Evil: a  Set-Cookie: x=1\r\n")); /* no header injection */
    assert_non_null(strstr(out.p, "\r\n\r\nnope\n"));
    buf_reset(&out);
    http_response_serialize(&rs, true, &out);
    assert_non_null(strstr(out.p, "Content-Length: 5\r\n"));
    assert_int_equal(out.p[out.len - 1], '\n');
    assert_null(strstr(out.p, "nope"));
    buf_fini(&out);
    http_response_fini(&rs);
}

/* ---------- a raw-socket client ---------- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early (413): the answer is still readable */
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until EOF.  Returns the status code (0 if none), body in *body. */
static int read_response(int fd, struct buf *all, const char **body)
{
    char tmp[4096];
    ssize_t n;
    while ((n = recv(fd, tmp, sizeof tmp, 0)) > 0)
        buf_put(all, tmp, (size_t)n);
    close(fd);
    *body = "";
    if (all->len < 12 || strncmp(all->p, "HTTP/1.1 ", 9) != 0)
        return 0;
    const char *sep = strstr(all->p, "\r\n\r\n");
    if (sep)
        *body = sep + 4;
    return atoi(all->p + 9);
}

/* One request/response on a fresh connection; the response (head and body)
 * is left in *all. */
static int roundtrip(int port, const char *req, size_t len, struct buf *all, const char **body)
{
    int fd = dial(port);
    if (fd < 0)
        return -1;
    buf_reset(all);
    send_all(fd, req, len);
    return read_response(fd, all, body);
}

static int get(int port, const char *path, const char *extra, struct buf *all, const char **body)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, extra ? extra : "");
    return roundtrip(port, req, strlen(req), all, body);
}

static const char *header_of(const struct buf *all, const char *name)
{
    static char v[256];
    char pat[64];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strstr(all->p, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t n = strcspn(p, "\r");
    snprintf(v, sizeof v, "%.*s", (int)n, p);
    return v;
}

/* ---------- the server with a test handler ---------- */

static atomic_int handled;

/* /echo answers with method, path, query and body; anything else is 404. */
static void echo_handler(const struct http_request *r, struct http_response *rs, void *arg)
{
    atomic_fetch_add(&handled, 1);
    if (strcmp(r->path, "/echo") != 0) {
        http_response_text(rs, 404, "not here\n");
        return;
    }
    char q[64] = "";
    http_query_param(r, "q", q, sizeof q);
    buf_printf(&rs->body, "%s %s q=%s body=%.*s", r->method, r->path, q, (int)r->body_len,
               r->body ? r->body : "");
}

static struct httpd *start_echo(int timeout_ms, int max_conns)
{
    struct httpd_opts o = {.bind = "127.0.0.1",
                           .port = 0,
                           .handler = echo_handler,
                           .timeout_ms = timeout_ms,
                           .max_conns = max_conns};
    struct httpd *h = NULL;
    char err[256];
    assert_int_equal(httpd_start(&h, &o, err, sizeof err), 0);
    assert_true(httpd_port(h) > 0);
    return h;
}

static void test_server_routing_and_errors(void **state)
{
    struct httpd *h = start_echo(0, 0);
    int port = httpd_port(h);
    struct buf all = BUF_INIT;
    const char *body;

    assert_int_equal(get(port, "/echo?q=hi%21", NULL, &all, &body), 200);
    assert_string_equal(body, "GET /echo q=hi! body=");
    assert_string_equal(header_of(&all, "Content-Length"), "21");
    assert_string_equal(header_of(&all, "Connection"), "close");

    assert_int_equal(get(port, "/nowhere", NULL, &all, &body), 404);
    assert_string_equal(body, "not here\n");

    const char post[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd";
    assert_int_equal(roundtrip(port, post, sizeof post - 1, &all, &body), 200);
    assert_string_equal(body, "POST /echo q= body=abcd");

    /* a client that waits for "100 Continue" before sending its body */
    int fd = dial(port);
    const char exp[] = "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\n"
                       "Content-Length: 3\r\n\r\n";
    send_all(fd, exp, sizeof exp - 1);
    char cont[64];
    ssize_t got = recv(fd, cont, sizeof cont - 1, 0);
    assert_true(got > 0);
    cont[got] = '\0';
    assert_string_equal(cont, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, "xyz", 3);
    buf_reset(&all);
    assert_int_equal(read_response(fd, &all, &body), 200);
    assert_string_equal(body, "POST /echo q= body=xyz");

    /* HEAD: the length of what the handler produced, no body */
    const char head[] = "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(port, head, sizeof head - 1, &all, &body), 200);
    assert_string_equal(header_of(&all, "Content-Length"), "19"); /* "HEAD /echo q= body=" */
    assert_string_equal(body, "");

    /* garbage: 400 at once, the handler never sees it */
    int before = atomic_load(&handled);
    const char junk[] = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage";
    int64_t t0 = clock_mono_us();
    assert_int_equal(roundtrip(port, junk, sizeof junk - 1, &all, &body), 400);
    assert_true(clock_mono_us() - t0 < 2000000);
    const char badhdr[] = "GET / HTTP/1.1\r\nBad Header\r\n\r\n";
    assert_int_equal(roundtrip(port, badhdr, sizeof badhdr - 1, &all, &body), 400);
    assert_int_equal(atomic_load(&handled), before);

    /* a body over the limit: 413, even while the client is still sending */
    struct buf big = BUF_INIT;
    buf_printf(&big, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n",
               HTTP_MAX_BODY + 1);
    for (int i = 0; i <= HTTP_MAX_BODY; i++)
        buf_putc(&big, 'x');
    assert_int_equal(roundtrip(port, big.p, big.len, &all, &body), 413);
    /* a head over the limit */
    buf_reset(&big);
    buf_puts(&big, "GET /echo HTTP/1.1\r\n");
    while (big.len < 2 * HTTP_MAX_HEAD)
        buf_puts(&big, "X-Filler: 0123456789012345678901234567890123456789\r\n");
    assert_int_equal(roundtrip(port, big.p, big.len, &all, &body), 413);
    buf_fini(&big);

    /* the server still works */
    assert_int_equal(get(port, "/echo", NULL, &all, &body), 200);
    buf_fini(&all);
    httpd_stop(h);
}

static void test_server_bind_errors(void **state)
{
    struct httpd *h = start_echo(0, 0);
    struct httpd_opts o = {.bind = "127.0.0.1", .port = httpd_port(h), .handler = echo_handler};
    struct httpd *h2 = NULL;
    char err[256];
    assert_int_equal(httpd_start(&h2, &o, err, sizeof err), CDC_EIO);
    assert_null(h2);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
    o.bind = "256.1.1.1";
    o.port = 0;
    assert_true(httpd_start(&h2, &o, err, sizeof err) < 0);
    assert_null(h2);
    httpd_stop(h);
    httpd_stop(NULL);
}

struct client_arg {
    int port;
    int ok;
    int id;
};

static void *client_main(void *p)
{
    struct client_arg *a = p;
    struct buf all = BUF_INIT;
    for (int i = 0; i < 25; i++) {
        char path[64], want[128];
        snprintf(path, sizeof path, "/echo?q=c%dr%d", a->id, i);
        snprintf(want, sizeof want, "GET /echo q=c%dr%d body=", a->id, i);
        const char *body;
        if (get(a->port, path, NULL, &all, &body) == 200 && strcmp(body, want) == 0)
            a->ok++;
    }
    buf_fini(&all);
    return NULL;
}

static void test_server_concurrent_clients(void **state)
{
    struct httpd *h = start_echo(0, 0);
    int port = httpd_port(h);
    /* Slow clients holding connections with half a request must not stop
     * others from being served. */
    int slow[6];
    for (int i = 0; i < 6; i++) {
        slow[i] = dial(port);
        assert_true(slow[i] >= 0);
        send_all(slow[i], "GET /echo HTTP/1.1\r\nHo", 22);
    }
    enum { N = 8 };
    pthread_t th[N];
    struct client_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct client_arg){port, 0, i};
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, 25);
    }
    /* the slow ones finish their requests and get their answers */
    struct buf all = BUF_INIT;
    const char *body;
    for (int i = 0; i < 6; i++) {
        send_all(slow[i], "st: t\r\n\r\n", 9);
        assert_int_equal(read_response(slow[i], &all, &body), 200);
        buf_reset(&all);
    }
    buf_fini(&all);
    httpd_stop(h);
}

static void test_server_timeout_and_limits(void **state)
{
    struct httpd *h = start_echo(300, 2);
    int port = httpd_port(h);
    struct buf all = BUF_INIT;
    const char *body;
    /* a partial request times out with 408 */
    int fd = dial(port);
    send_all(fd, "GET /echo HTTP/1.1\r\n", 20);
    int64_t t0 = clock_mono_us();
    assert_int_equal(read_response(fd, &all, &body), 408);
    assert_true(clock_mono_us() - t0 < 3000000);
    /* an idle connection is closed without an answer */
    fd = dial(port);
    buf_reset(&all);
    assert_int_equal(read_response(fd, &all, &body), 0);
    assert_int_equal(all.len, 0);
    buf_fini(&all);
    httpd_stop(h);
}

/* Slow or idle clients holding every slot: a probe is answered at once (the
 * longest-waiting slow client is let go), not after a request timeout. */
static void test_server_slow_clients_do_not_block_probes(void **state)
{
    enum { SLOW = 64 };
    struct httpd *h = start_echo(60000, SLOW); /* a probe waiting for a slot would wait 60 s */
    int port = httpd_port(h);
    int fds[SLOW];
    for (int i = 0; i < SLOW; i++) {
        fds[i] = dial(port);
        assert_true(fds[i] >= 0);
        if (i % 2)
            send_all(fds[i], "GET /echo HTTP/1.1\r\nHost", 24); /* never finished */
    }
    struct buf all = BUF_INIT;
    const char *body;
    int64_t worst = 0;
    for (int k = 0; k < 8; k++) {
        int64_t t0 = clock_mono_us();
        assert_int_equal(get(port, "/echo?q=probe", NULL, &all, &body), 200);
        int64_t took = clock_mono_us() - t0;
        if (took > worst)
            worst = took;
        assert_non_null(strstr(body, "q=probe"));
    }
    /* generous: a waiting probe would take the whole 60 s timeout */
    assert_true(worst < 5000000);
    print_message("%d slow clients: slowest of 8 probes answered in %.1f ms\n", SLOW,
                  (double)worst / 1000.0);
    /* the oldest slow clients were let go: they read EOF, not an answer */
    char c;
    assert_true(recv(fds[0], &c, 1, 0) <= 0);
    for (int i = 0; i < SLOW; i++)
        close(fds[i]);
    buf_fini(&all);
    httpd_stop(h);
}

static void test_server_stop_with_clients(void **state)
{
    struct httpd *h = start_echo(60000, 0);
    int port = httpd_port(h);
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = dial(port);
        assert_true(fds[i] >= 0);
        if (i % 2)
            send_all(fds[i], "GET /echo HTTP/1.1\r\n", 20);
    }
    /* make sure the server has accepted them */
    struct buf all = BUF_INIT;
    const char *body;
    assert_int_equal(get(port, "/echo", NULL, &all, &body), 200);
    int64_t t0 = clock_mono_us();
    httpd_stop(h);
    assert_true(clock_mono_us() - t0 < 2000000);
    for (int i = 0; i < 5; i++) {
        char c;
        ssize_t n = recv(fds[i], &c, 1, 0);
        assert_true(n <= 0); /* EOF or reset, not a hang */
        close(fds[i]);
    }
    /* nobody listens any more */
    assert_int_equal(dial(port), -1);
    buf_fini(&all);
}

/* ---------- the API ---------- */

#define PIPE                                                                                       \
    "pipeline_id: p1\n"                                                                            \
    "source:\n  database: db\n  tables: [public.t]\n"                                              \
    "sinks:\n  - sink_id: out\n    sink_type: file\n    file:\n      path: %s\n"

static struct config *load_cfg(const char *platform, const char *sink_path)
{
    char pipe[1024];
    snprintf(pipe, sizeof pipe, PIPE, sink_path ? sink_path : "/nonexistent/out.jsonl");
    struct config *cfg = NULL;
    struct cfg_errors errs = {0};
    int rc = config_load_text(&cfg, "pipeline.yaml", pipe, strlen(pipe), "platform.yaml", platform,
                              strlen(platform), &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("config: %s\n", errs.msgs[i]);
    cfg_errors_fini(&errs);
    assert_int_equal(rc, 0);
    return cfg;
}

static const char token_platform[] = "health_port: 0\ncontrol_token: s3cr3t-T0ken\n";

static void test_api_health_and_control(void **state)
{
    struct config *cfg = load_cfg(token_platform, NULL);
    struct store *st = NULL;
    char err[256];
    assert_int_equal(store_open(&st, ":memory:", err, sizeof err), 0);
    atomic_bool paused;
    atomic_init(&paused, false);
    struct api_ctx ctx = {.cfg = cfg, .store = st, .paused = &paused};
    struct api *api = NULL;
    assert_int_equal(api_start(&api, &ctx, err, sizeof err), 0);
    int port = api_port(api);
    assert_true(port > 0);
    struct buf all = BUF_INIT;
    const char *body;

    assert_int_equal(get(port, "/healthz", NULL, &all, &body), 200);
    assert_string_equal(body, "ok\n");

    /* starting: no source, no engine */
    assert_int_equal(get(port, "/readyz", NULL, &all, &body), 503);
    assert_true(json_valid(body, strlen(body)));
    assert_non_null(strstr(body, "\"pipeline_id\":\"p1\""));
    assert_non_null(strstr(body, "\"state\":\"CONNECTING\""));
    assert_non_null(strstr(body, "\"sink_id\":\"out\""));
    assert_non_null(strstr(body, "\"status\":\"starting\""));
    assert_string_equal(header_of(&all, "Content-Type"), "application/json");

    assert_int_equal(get(port, "/status", NULL, &all, &body), 200);
    assert_true(json_valid(body, strlen(body)));
    assert_non_null(strstr(body, "\"ready\":false"));
    assert_non_null(strstr(body, "\"dlq_pending\":0"));

    assert_int_equal(get(port, "/metrics", NULL, &all, &body), 200);
    assert_string_equal(header_of(&all, "Content-Type"),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(body, "# TYPE cdc_source_events_total counter\n"));
    assert_non_null(strstr(body, "# TYPE cdc_sink_up gauge\n"));
    assert_non_null(strstr(body, "cdc_sink_up{sink=\"out\",type=\"file\"} 0\n"));
    assert_non_null(strstr(body, "cdc_sink_dlq_pending{sink=\"out\",type=\"file\"} 0\n"));
    assert_null(strstr(body, "\ncdc_source_events_total ")); /* no source yet: no sample */

    assert_int_equal(get(port, "/nope", NULL, &all, &body), 404);
    const char post[] = "POST /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(port, post, sizeof post - 1, &all, &body), 405);
    assert_string_equal(header_of(&all, "Allow"), "GET, HEAD");

    /* control: 401 without a token, 403 with a wrong one, 200 with it */
    const char pause_noauth[] = "POST /control/pause HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(roundtrip(port, pause_noauth, sizeof pause_noauth - 1, &all, &body), 401);
    assert_non_null(header_of(&all, "WWW-Authenticate"));
    assert_null(strstr(all.p, "s3cr3t"));
    const char pause_basic[] =
        "POST /control/pause HTTP/1.1\r\nHost: t\r\nAuthorization: Basic czNjcjN0\r\n\r\n";
    assert_int_equal(roundtrip(port, pause_basic, sizeof pause_basic - 1, &all, &body), 401);
    static const char *wrong[] = {"s3cr3t-T0ke", "s3cr3t-T0ken1", "S3cr3t-T0ken", "x"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        char req[256];
        snprintf(req, sizeof req,
                 "POST /control/pause HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n",
                 wrong[i]);
        assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 403);
        assert_null(strstr(all.p, "s3cr3t-T0ken"));
    }
    assert_false(atomic_load(&paused));
    const char auth[] = "Authorization: bearer s3cr3t-T0ken\r\n";
    char req[256];
    snprintf(req, sizeof req, "POST /control/pause HTTP/1.1\r\nHost: t\r\n%s\r\n", auth);
    assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 200);
    assert_true(json_valid(body, strlen(body)));
    assert_non_null(strstr(body, "\"paused\":true"));
    assert_true(atomic_load(&paused));
    assert_int_equal(get(port, "/control/status", auth, &all, &body), 200);
    assert_non_null(strstr(body, "\"pause_requested\":true"));
    assert_int_equal(get(port, "/control/status", NULL, &all, &body), 401);
    assert_int_equal(get(port, "/control/pause", auth, &all, &body), 405); /* GET */
    assert_int_equal(get(port, "/control/other", auth, &all, &body), 404);
    snprintf(req, sizeof req,
             "POST /control/resume HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n%s\r\n{}", auth);
    assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 200);
    assert_non_null(strstr(body, "\"paused\":false"));
    assert_false(atomic_load(&paused));

    /* without the pause flag, pausing is refused */
    ctx.paused = NULL;
    api_update(api, &ctx);
    snprintf(req, sizeof req, "POST /control/pause HTTP/1.1\r\nHost: t\r\n%s\r\n", auth);
    assert_int_equal(roundtrip(port, req, strlen(req), &all, &body), 503);

    buf_fini(&all);
    api_stop(api);
    store_close(st);
    config_free(cfg);
}

static void test_api_control_disabled(void **state)
{
    struct config *cfg = load_cfg("health_port: 0\n", NULL);
    atomic_bool paused;
    atomic_init(&paused, false);
    struct api_ctx ctx = {.cfg = cfg, .paused = &paused};
    struct api *api = NULL;
    char err[256];
    assert_int_equal(api_start(&api, &ctx, err, sizeof err), 0);
    struct buf all = BUF_INIT;
    const char *body;
    const char req[] = "POST /control/pause HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer x\r\n\r\n";
    assert_int_equal(roundtrip(api_port(api), req, sizeof req - 1, &all, &body), 404);
    assert_int_equal(get(api_port(api), "/control/status", NULL, &all, &body), 404);
    assert_false(atomic_load(&paused));
    /* no DLQ store: the figure is unknown, not 0 */
    assert_int_equal(get(api_port(api), "/status", NULL, &all, &body), 200);
    assert_non_null(strstr(body, "\"dlq_pending\":null"));
    buf_fini(&all);
    api_stop(api);
    config_free(cfg);

    /* no config at all: loopback, any port */
    struct api_ctx none = {0};
    assert_int_equal(api_start(&api, &none, err, sizeof err), 0);
    assert_int_equal(get(api_port(api), "/readyz", NULL, &all, &body), 503);
    assert_true(json_valid(body, strlen(body)));
    buf_fini(&all);
    api_stop(api);
}

/* A running engine with one file sink: per-sink metrics and readiness of
 * the sinks (the source is still missing, so not ready). */
static void test_api_with_engine(void **state)
{
    char dir[] = "/tmp/cdc-httpd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/out.jsonl", dir);
    struct config *cfg = load_cfg("health_port: 0\n", path);
    struct json_ctx json = {.pipeline_id = "p",
                            .connector = "postgresql",
                            .db = "db",
                            .version = "0",
                            .source = pgjson_source};
    struct engine *eng = NULL;
    char err[512];
    assert_int_equal(engine_new(&eng, cfg, &json, NULL, err, sizeof err), 0);
    assert_int_equal(engine_start(eng, &(struct cdc_ack){0, 0x16B3748}, 1), 0);
    struct api_ctx ctx = {.cfg = cfg};
    struct api *api = NULL;
    assert_int_equal(api_start(&api, &ctx, err, sizeof err), 0);
    ctx.eng = eng;
    api_update(api, &ctx);
    struct buf all = BUF_INIT;
    const char *body;
    int64_t deadline = clock_mono_us() + 5000000;
    for (;;) {
        assert_int_equal(get(api_port(api), "/metrics", NULL, &all, &body), 200);
        if (strstr(body, "cdc_sink_up{sink=\"out\",type=\"file\"} 1\n") ||
            clock_mono_us() > deadline)
            break;
        usleep(20000);
    }
    assert_non_null(strstr(body, "cdc_sink_up{sink=\"out\",type=\"file\"} 1\n"));
    assert_non_null(strstr(body, "cdc_sink_events_total{sink=\"out\",type=\"file\"} 0\n"));
    assert_non_null(strstr(body, "cdc_sink_dead_lettered_total{sink=\"out\",type=\"file\"} 0\n"));
    assert_null(strstr(body, "cdc_sink_dlq_pending{")); /* no store: no figure */
    assert_non_null(strstr(body, "cdc_buffer_full 0\n"));
    assert_non_null(strstr(body, "cdc_commit_watermark_lsn 23803720\n"));
    assert_int_equal(get(api_port(api), "/readyz", NULL, &all, &body), 503);
    assert_non_null(strstr(body, "\"status\":\"running\""));
    assert_non_null(strstr(body, "source is connecting"));
    /* withdraw the engine before freeing it */
    ctx.eng = NULL;
    api_update(api, &ctx);
    engine_close(eng);
    assert_int_equal(engine_wait(eng, 5000000), 0);
    engine_free(eng);
    assert_int_equal(get(api_port(api), "/status", NULL, &all, &body), 200);
    assert_true(json_valid(body, strlen(body)));
    buf_fini(&all);
    api_stop(api);
    config_free(cfg);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_get),
        cmocka_unit_test(test_parse_body_and_incomplete),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_response_serialize),
        cmocka_unit_test(test_server_routing_and_errors),
        cmocka_unit_test(test_server_bind_errors),
        cmocka_unit_test(test_server_concurrent_clients),
        cmocka_unit_test(test_server_timeout_and_limits),
        cmocka_unit_test(test_server_slow_clients_do_not_block_probes),
        cmocka_unit_test(test_server_stop_with_clients),
        cmocka_unit_test(test_api_health_and_control),
        cmocka_unit_test(test_api_control_disabled),
        cmocka_unit_test(test_api_with_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
