/* libFuzzer target for the binlog decoder: the input is a sequence of
 * events, each preceded by its length (2 bytes, little-endian), fed to one
 * decoder, so table maps, rows events and group boundaries interact.  The
 * first byte says whether events carry checksums.  Anything must decode or
 * be refused with an error; no crash, no leak, no endless loop.  Seeds:
 * tests/fuzz/corpus/binlog (from tests/unit/data/mysql/events.hex). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "source/mysql/mydecode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_change(void *arg, struct cdc_event *ev, const struct mydecode_row *row)
{
    (void)arg;
    volatile size_t sink = row->row;
    for (uint16_t i = 0; ev->after && i < ev->tab->ncols; i++)
        if (ev->after[i].kind == CDC_V_TEXT)
            sink += (unsigned char)cdc_val_ptr(ev, &ev->after[i])[ev->after[i].len];
    (void)sink;
    cdc_event_unref(ev);
    return 0;
}

static int on_commit(void *arg, struct cdc_event *ev, const struct mydecode_txn *t)
{
    (void)arg;
    (void)t;
    cdc_event_unref(ev);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct mydecode_ops ops = {on_change, on_commit, NULL, NULL};
    struct mydecode_cfg cfg = {.checksum = data[0] & 1, .max_held_bytes = 1 << 20};
    struct mydecode *d = mydecode_new(&cfg, &ops, NULL);
    char err[256];
    size_t i = 1;
    while (i + 2 <= size) {
        size_t n = (size_t)data[i] | (size_t)data[i + 1] << 8;
        i += 2;
        if (n > size - i)
            n = size - i;
        mydecode_feed(d, data + i, n, err, sizeof err);
        i += n;
    }
    mydecode_free(d);
    return 0;
}
