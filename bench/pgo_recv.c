/* pgo-recv CONNINFO SLOT PUBLICATION ENDPOS [LOWAT]: the "limit" client.
 *
 * Streams a logical slot with exactly the options cdc uses (pgoutput
 * protocol 2, streaming on, messages on), receives every message, counts
 * them by type and throws them away; answers keepalives that ask for a
 * reply.  It stops at the first message at or past ENDPOS (an LSN like
 * 0/16B3748), or at a keepalive reporting the server has sent everything up
 * to ENDPOS, the same condition under which `cdc run --stop-at-lsn` stops.
 * Prints one line of key=value counts on stdout.  CONNINFO must include
 * replication=database.
 *
 * LOWAT (bytes, default 0): 0 reads every message as soon as it arrives.
 * Otherwise the socket's SO_RCVLOWAT is set to it, so that the client wakes
 * up only once that much has arrived (or after 5 ms), as a consumer that is
 * busy with the previous batch would: the server then sends into a socket
 * whose reader is not waiting, which costs it less per message. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/socket.h>

#include <libpq-fe.h>

static uint64_t get_u64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | u[i];
    return v;
}

static void put_u64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

static int64_t now_pg_us(void)
{
    /* microseconds since 2000-01-01, the server's epoch */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - 946684800) * 1000000 + ts.tv_nsec / 1000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Standby status update: everything received is written, flushed and
 * applied (this client keeps nothing). */
static int send_status(PGconn *conn, uint64_t lsn)
{
    char msg[34];
    msg[0] = 'r';
    put_u64(msg + 1, lsn);
    put_u64(msg + 9, lsn);
    put_u64(msg + 17, lsn);
    put_u64(msg + 25, (uint64_t)now_pg_us());
    msg[33] = 0;
    if (PQputCopyData(conn, msg, sizeof msg) != 1 || PQflush(conn) < 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s CONNINFO SLOT PUBLICATION ENDPOS [LOWAT]\n", argv[0]);
        return 2;
    }
    int lowat = argc == 6 ? atoi(argv[5]) : 0;
    unsigned hi, lo;
    if (sscanf(argv[4], "%X/%X", &hi, &lo) != 2) {
        fprintf(stderr, "%s: bad ENDPOS %s\n", argv[0], argv[4]);
        return 2;
    }
    uint64_t endpos = ((uint64_t)hi << 32) | lo;
    double t0 = mono_s();

    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
        return 1;
    }
    char *slot = PQescapeIdentifier(conn, argv[2], strlen(argv[2]));
    char *pub = PQescapeIdentifier(conn, argv[3], strlen(argv[3]));
    char sql[1024];
    snprintf(sql, sizeof sql,
             "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '2', publication_names "
             "'%s', streaming 'on', messages 'true')",
             slot, pub);
    PQfreemem(slot);
    PQfreemem(pub);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
        return 1;
    }
    PQclear(res);
    double t_stream = mono_s();
    /* In chunks: also a fixed 4 MiB receive buffer, as cdc sets (the
     * kernel's autotuning does not grow it for a reader that sleeps). */
    int rcvbuf = 4 * 1024 * 1024;
    if (lowat > 0 &&
        (setsockopt(PQsocket(conn), SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0 ||
         setsockopt(PQsocket(conn), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0 ||
         PQsetnonblocking(conn, 1) != 0)) {
        fprintf(stderr, "%s: cannot set SO_RCVLOWAT or SO_RCVBUF\n", argv[0]);
        return 1;
    }

    /* counts by pgoutput message type */
    unsigned long long types[256] = {0};
    unsigned long long frames = 0, keepalives = 0, bytes = 0;
    uint64_t last = 0;
    const char *why = "end";
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(conn, &buf, lowat > 0);
        if (n == 0) {
            /* lowat mode: nothing complete buffered; wait for LOWAT bytes */
            struct pollfd pf = {.fd = PQsocket(conn), .events = POLLIN};
            poll(&pf, 1, 5);
            if (PQconsumeInput(conn) == 0) {
                fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
                return 1;
            }
            continue;
        }
        if (n == -1) {
            why = "server-ended";
            break;
        }
        if (n < 0) {
            fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
            return 1;
        }
        if (buf[0] == 'w' && n >= 26) {
            uint64_t start = get_u64(buf + 1);
            frames++;
            bytes += (unsigned long long)n - 25;
            types[(unsigned char)buf[25]]++;
            if (start > last)
                last = start;
            if (start >= endpos) {
                why = "data";
                PQfreemem(buf);
                break;
            }
        } else if (buf[0] == 'k' && n >= 18) {
            uint64_t walend = get_u64(buf + 1);
            keepalives++;
            if (walend >= endpos) {
                why = "keepalive";
                PQfreemem(buf);
                break;
            }
            if (buf[17] && send_status(conn, last) != 0) {
                fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
                return 1;
            }
        }
        PQfreemem(buf);
    }
    double t_end = mono_s();
    PQfinish(conn);
    unsigned long long rows = types['I'] + types['U'] + types['D'];
    printf("stop=%s rows=%llu inserts=%llu updates=%llu deletes=%llu begins=%llu commits=%llu "
           "stream_starts=%llu stream_commits=%llu relations=%llu frames=%llu keepalives=%llu "
           "bytes=%llu lowat=%d connect_s=%.4f stream_s=%.4f\n",
           why, rows, types['I'], types['U'], types['D'], types['B'], types['C'], types['S'],
           types['c'], types['R'], frames, keepalives, bytes, lowat, t_stream - t0,
           t_end - t_stream);
    return 0;
}
