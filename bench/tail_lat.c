/* tail-lat FILE: follows a JSONL file as cdc's file sink appends to it and
 * measures, for every line, the time from the commit (source.ts_us) to the
 * moment the line could be read from the file.
 *
 * The file is read whenever inotify reports a modification (and at least
 * every 100 ms), so a line's arrival time is the wall-clock time right after
 * the read() that returned it: the write that made it visible happened at
 * most one wake-up earlier.  On SIGTERM or SIGINT it reads what is left and
 * prints one summary line (see lat_report) on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "latency.h"

struct tail {
    int fd;
    char *buf;
    size_t len, cap;
    struct lat lat;
    unsigned long long bad_lines;
};

/* Handles the complete lines in the buffer, all of which arrived at `at`. */
static void consume_lines(struct tail *t, int64_t at)
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(t->buf + start, '\n', t->len - start);
        if (!nl)
            break;
        const char *line = t->buf + start, *end = nl;
        int64_t ts;
        if (end > line) {
            if (envelope_scan(line, end, &ts))
                lat_add(&t->lat, ts, at);
            else
                t->bad_lines++;
        }
        start = (size_t)(nl - t->buf) + 1;
    }
    memmove(t->buf, t->buf + start, t->len - start);
    t->len -= start;
}

/* Reads everything the file holds beyond what was read before. */
static int drain(struct tail *t)
{
    for (;;) {
        if (t->cap - t->len < 65536) {
            t->cap = t->cap ? t->cap * 2 : 1 << 20;
            t->buf = realloc(t->buf, t->cap);
            if (!t->buf) {
                perror("realloc");
                return -1;
            }
        }
        ssize_t n = read(t->fd, t->buf + t->len, t->cap - t->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("read");
            return -1;
        }
        if (n == 0)
            return 0;
        int64_t at = now_us();
        t->len += (size_t)n;
        consume_lines(t, at);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    struct tail t;
    memset(&t, 0, sizeof t);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        perror("sigprocmask");
        return 1;
    }
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (sfd < 0 || ifd < 0) {
        perror("signalfd/inotify");
        return 1;
    }
    /* Watch before the first read so that no append goes unnoticed. */
    if (inotify_add_watch(ifd, argv[1], IN_MODIFY) < 0) {
        fprintf(stderr, "%s: inotify_add_watch %s: %s\n", argv[0], argv[1], strerror(errno));
        return 1;
    }
    t.fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (t.fd < 0) {
        fprintf(stderr, "%s: open %s: %s\n", argv[0], argv[1], strerror(errno));
        return 1;
    }
    if (drain(&t) != 0)
        return 1;
    for (;;) {
        struct pollfd pf[2] = {{.fd = ifd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int r = poll(pf, 2, 100);
        if (r < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        if (pf[0].revents & POLLIN) {
            char ev[4096];
            while (read(ifd, ev, sizeof ev) > 0) {
            }
        }
        if (drain(&t) != 0)
            return 1;
        if (pf[1].revents & POLLIN)
            break;
    }
    if (drain(&t) != 0)
        return 1;
    if (t.bad_lines)
        fprintf(stderr, "%s: %llu lines were not envelopes\n", argv[0], t.bad_lines);
    lat_report(&t.lat, stdout);
    lat_free(&t.lat);
    free(t.buf);
    close(t.fd);
    return 0;
}
