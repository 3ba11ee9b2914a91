/* The NATS peer of the bench (bench_nats.py): a libnats JetStream client
 * publishing COUNT messages of SIZE bytes asynchronously on SUBJECT, each
 * with a Nats-Msg-Id and two more headers as cdc's nats sink sends, at most
 * MAX_PENDING unacknowledged, then waiting for every acknowledgement.
 * Prints {"seconds": S, "acked": N}.
 *
 *   nats_pub URL SUBJECT COUNT SIZE MAX_PENDING */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long acked, failed;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)closure;
    if (pa)
        __atomic_add_fetch(&acked, 1, __ATOMIC_RELAXED);
    if (pae)
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
    natsMsg_Destroy(msg);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: nats_pub URL SUBJECT COUNT SIZE MAX_PENDING\n");
        return 2;
    }
    long count = atol(argv[3]), size = atol(argv[4]);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = atol(argv[5]);
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.StallWait = 60000; /* wait while the server catches up, as the sink does */
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_pub: %s\n", natsStatus_GetText(s));
        return 1;
    }
    char *data = malloc((size_t)size);
    memset(data, 'x', (size_t)size);
    char id[64];
    double t0 = now();
    for (long i = 0; i < count && s == NATS_OK; i++) {
        natsMsg *m = NULL;
        snprintf(id, sizeof id, "bench:peer:%ld:0", i);
        s = natsMsg_Create(&m, argv[2], NULL, data, (int)size);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Cdc-Op", "c");
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Cdc-Key", "{\"id\":1}");
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, &po);
        natsMsg_Destroy(m);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 600000;
    if (s == NATS_OK)
        s = js_PublishAsyncComplete(js, &po);
    double secs = now() - t0;
    if (s != NATS_OK || failed) {
        fprintf(stderr, "nats_pub: %s, %ld failed\n", natsStatus_GetText(s), failed);
        return 1;
    }
    printf("{\"seconds\": %.6f, \"acked\": %ld}\n", secs, acked);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(data);
    return 0;
}
