/* libFuzzer target for the Avro container reader (manifests, manifest
 * lists): a file that reads is rewritten (same schema, metadata and sync,
 * records re-encoded into one block) and must read back to the same
 * records; the Iceberg manifest readers run on the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lake/avro.h"
#include "lake/ice_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rewrite(const struct avro_ocf *f, struct buf *file, struct buf *body)
{
    struct avro_kv *meta = calloc(f->nmeta + 1, sizeof *meta);
    size_t n = 0;
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->keys[i], "avro.schema") != 0 && strcmp(f->keys[i], "avro.codec") != 0)
            meta[n++] = (struct avro_kv){f->keys[i], f->values[i]};
    avro_ocf_header(file, f->schema_json, meta, n, f->sync);
    for (size_t i = 0; i < f->nrecords; i++)
        avro_encode(body, &f->records[i]);
    if (f->nrecords)
        avro_ocf_block(file, body->p, body->len, (int64_t)f->nrecords, f->sync);
    free(meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct ice_entry *e;
    struct ice_manifest_file *m;
    size_t n;
    if (ice_manifest_read(data, size, &e, &n, err, sizeof err) == 0)
        ice_entries_free(e, n);
    if (ice_manifest_list_read(data, size, &m, &n, err, sizeof err) == 0)
        ice_manifest_files_free(m, n);

    struct avro_ocf f, g;
    if (avro_ocf_read(data, size, &f, err, sizeof err) != 0)
        return 0;
    struct buf file = BUF_INIT, body = BUF_INIT, body2 = BUF_INIT;
    rewrite(&f, &file, &body);
    if (avro_ocf_read((const uint8_t *)file.p, file.len, &g, err, sizeof err) != 0)
        __builtin_trap();
    if (g.nrecords != f.nrecords)
        __builtin_trap();
    for (size_t i = 0; i < g.nrecords; i++)
        avro_encode(&body2, &g.records[i]);
    if (body.len != body2.len || (body.len && memcmp(body.p, body2.p, body.len) != 0))
        __builtin_trap();
    avro_ocf_fini(&f);
    avro_ocf_fini(&g);
    buf_fini(&file);
    buf_fini(&body);
    buf_fini(&body2);
    return 0;
}
