/* A raw-socket HTTP client for the unit tests of the server (test_httpd.c)
 * and of the pipeline's endpoints (test_api.c): one request per connection,
 * the whole answer read until the server closes.  Include <cmocka.h>
 * first. */
#ifndef CDC_TESTS_UNIT_HTTPTEST_H
#define CDC_TESTS_UNIT_HTTPTEST_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/buf.h"

static inline int dial(int port)
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

static inline void send_all(int fd, const char *p, size_t n)
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
static inline int read_response(int fd, struct buf *all, const char **body)
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
static inline int roundtrip(int port, const char *req, size_t len, struct buf *all,
                            const char **body)
{
    *body = "";
    int fd = dial(port);
    if (fd < 0)
        return -1;
    buf_reset(all);
    send_all(fd, req, len);
    return read_response(fd, all, body);
}

static inline int get(int port, const char *path, const char *extra, struct buf *all,
                      const char **body)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", path, extra ? extra : "");
    return roundtrip(port, req, strlen(req), all, body);
}

static inline const char *header_of(const struct buf *all, const char *name)
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

#endif
