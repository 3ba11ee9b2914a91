/* Iceberg table metadata JSON (see ice_meta.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/json.h"
#include "lake/ice_meta.h"
#include "util/err.h"
#include "util/mem.h"

static void random_bytes(void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)p + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (errno != EINTR)
            break;
    }
}

int64_t ice_new_snapshot_id(void)
{
    uint64_t v = 0;
    while (v == 0) {
        random_bytes(&v, sizeof v);
        v &= (1ULL << 53) - 1;
    }
    return (int64_t)v;
}

void ice_uuid(char out[37])
{
    uint8_t b[16];
    random_bytes(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

bool ice_json_i64(const struct jsonv *v, int64_t *out)
{
    if (!v || v->t != JSONV_NUM || !v->s)
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(v->s, &end, 10);
    if (errno || *end || end == v->s)
        return false;
    *out = x;
    return true;
}

void ice_kv_set(struct ice_kv **kv, size_t *n, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*kv)[i].key, key) == 0) {
            free((*kv)[i].value);
            (*kv)[i].value = xstrdup(value);
            return;
        }
    }
    *kv = xrealloc(*kv, (*n + 1) * sizeof **kv);
    (*kv)[*n].key = xstrdup(key);
    (*kv)[*n].value = xstrdup(value);
    (*n)++;
}

void ice_kvs_free(struct ice_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static struct ice_kv *kvs_copy(const struct ice_kv *kv, size_t n)
{
    struct ice_kv *c = xcalloc(n ? n : 1, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        c[i].key = xstrdup(kv[i].key);
        c[i].value = xstrdup(kv[i].value);
    }
    return c;
}

struct ice_meta *ice_meta_new(const char *location, const struct ice_schema *sc,
                              const struct ice_spec *sp, int64_t now_ms)
{
    struct ice_meta *m = xcalloc(1, sizeof *m);
    ice_uuid(m->table_uuid);
    m->location = xstrdup(location);
    m->last_updated_ms = now_ms;
    m->last_column_id = ice_schema_max_id(sc);
    m->schemas = xcalloc(1, sizeof *m->schemas);
    m->schemas[m->nschemas++] = ice_schema_copy(sc);
    m->current_schema_id = sc->schema_id;
    m->specs = xcalloc(1, sizeof *m->specs);
    m->specs[m->nspecs++] = ice_spec_copy(sp);
    m->default_spec_id = sp->spec_id;
    m->last_partition_id = ice_spec_max_field_id(sp);
    m->current_snapshot_id = -1;
    return m;
}

static void snapshot_fini(struct ice_snapshot *s)
{
    free(s->manifest_list);
    ice_kvs_free(s->summary, s->nsummary);
}

void ice_meta_free(struct ice_meta *m)
{
    if (!m)
        return;
    free(m->location);
    for (size_t i = 0; i < m->nschemas; i++)
        ice_schema_free(m->schemas[i]);
    free(m->schemas);
    for (size_t i = 0; i < m->nspecs; i++)
        ice_spec_free(m->specs[i]);
    free(m->specs);
    ice_kvs_free(m->props, m->nprops);
    for (size_t i = 0; i < m->nsnapshots; i++)
        snapshot_fini(&m->snapshots[i]);
    free(m->snapshots);
    for (size_t i = 0; i < m->nrefs; i++)
        free(m->refs[i].name);
    free(m->refs);
    free(m->snaplog);
    for (size_t i = 0; i < m->nmetalog; i++)
        free(m->metalog[i].file);
    free(m->metalog);
    free(m);
}

struct ice_meta *ice_meta_copy(const struct ice_meta *m)
{
    struct ice_meta *c = xcalloc(1, sizeof *c);
    *c = *m;
    c->location = xstrdup(m->location);
    c->schemas = xcalloc(m->nschemas ? m->nschemas : 1, sizeof *c->schemas);
    for (size_t i = 0; i < m->nschemas; i++)
        c->schemas[i] = ice_schema_copy(m->schemas[i]);
    c->specs = xcalloc(m->nspecs ? m->nspecs : 1, sizeof *c->specs);
    for (size_t i = 0; i < m->nspecs; i++)
        c->specs[i] = ice_spec_copy(m->specs[i]);
    c->props = kvs_copy(m->props, m->nprops);
    c->snapshots = xcalloc(m->nsnapshots ? m->nsnapshots : 1, sizeof *c->snapshots);
    for (size_t i = 0; i < m->nsnapshots; i++) {
        c->snapshots[i] = m->snapshots[i];
        c->snapshots[i].manifest_list = xstrdup(m->snapshots[i].manifest_list);
        c->snapshots[i].summary = kvs_copy(m->snapshots[i].summary, m->snapshots[i].nsummary);
    }
    c->refs = xcalloc(m->nrefs ? m->nrefs : 1, sizeof *c->refs);
    for (size_t i = 0; i < m->nrefs; i++) {
        c->refs[i] = m->refs[i];
        c->refs[i].name = xstrdup(m->refs[i].name);
    }
    c->snaplog = xcalloc(m->nsnaplog ? m->nsnaplog : 1, sizeof *c->snaplog);
    if (m->nsnaplog)
        memcpy(c->snaplog, m->snaplog, m->nsnaplog * sizeof *c->snaplog);
    c->metalog = xcalloc(m->nmetalog ? m->nmetalog : 1, sizeof *c->metalog);
    for (size_t i = 0; i < m->nmetalog; i++) {
        c->metalog[i] = m->metalog[i];
        c->metalog[i].file = xstrdup(m->metalog[i].file);
    }
    return c;
}

const struct ice_schema *ice_meta_schema(const struct ice_meta *m)
{
    for (size_t i = 0; i < m->nschemas; i++)
        if (m->schemas[i]->schema_id == m->current_schema_id)
            return m->schemas[i];
    return m->nschemas ? m->schemas[m->nschemas - 1] : NULL;
}

const struct ice_spec *ice_meta_spec(const struct ice_meta *m, int32_t spec_id)
{
    for (size_t i = 0; i < m->nspecs; i++)
        if (m->specs[i]->spec_id == spec_id)
            return m->specs[i];
    return NULL;
}

const struct ice_snapshot *ice_meta_snapshot(const struct ice_meta *m, int64_t id)
{
    for (size_t i = 0; i < m->nsnapshots; i++)
        if (m->snapshots[i].id == id)
            return &m->snapshots[i];
    return NULL;
}

const struct ice_snapshot *ice_meta_current(const struct ice_meta *m)
{
    return m->current_snapshot_id < 0 ? NULL : ice_meta_snapshot(m, m->current_snapshot_id);
}

const char *ice_snapshot_get(const struct ice_snapshot *s, const char *key)
{
    for (size_t i = 0; s && i < s->nsummary; i++)
        if (strcmp(s->summary[i].key, key) == 0)
            return s->summary[i].value;
    return NULL;
}

void ice_meta_set_main(struct ice_meta *m, int64_t id)
{
    m->current_snapshot_id = id;
    for (size_t i = 0; i < m->nrefs; i++) {
        if (strcmp(m->refs[i].name, "main") == 0) {
            m->refs[i].snapshot_id = id;
            return;
        }
    }
    m->refs = xrealloc(m->refs, (m->nrefs + 1) * sizeof *m->refs);
    m->refs[m->nrefs++] = (struct ice_ref){xstrdup("main"), id, false, -1};
}

/* ---- writing ---------------------------------------------------------------- */

static void json_str(struct buf *b, const char *s)
{
    json_string(b, s, strlen(s));
}

static void json_kvs(struct buf *b, const struct ice_kv *kv, size_t n)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(b, ',');
        json_str(b, kv[i].key);
        buf_putc(b, ':');
        json_str(b, kv[i].value);
    }
    buf_putc(b, '}');
}

void ice_snapshot_json(struct buf *b, const struct ice_snapshot *s)
{
    buf_printf(b, "{\"snapshot-id\":%lld,", (long long)s->id);
    if (s->parent_id >= 0)
        buf_printf(b, "\"parent-snapshot-id\":%lld,", (long long)s->parent_id);
    buf_printf(b,
               "\"sequence-number\":%lld,\"timestamp-ms\":%lld,\"schema-id\":%d,"
               "\"manifest-list\":",
               (long long)s->seq, (long long)s->ts_ms, s->schema_id);
    json_str(b, s->manifest_list);
    buf_puts(b, ",\"summary\":");
    json_kvs(b, s->summary, s->nsummary);
    buf_putc(b, '}');
}

void ice_meta_json(struct buf *b, const struct ice_meta *m)
{
    buf_puts(b, "{\"format-version\":2,\"table-uuid\":");
    json_str(b, m->table_uuid);
    buf_puts(b, ",\"location\":");
    json_str(b, m->location);
    buf_printf(b,
               ",\"last-sequence-number\":%lld,\"last-updated-ms\":%lld,\"last-column-id\":%d,"
               "\"current-schema-id\":%d,\"schemas\":[",
               (long long)m->last_seq, (long long)m->last_updated_ms, m->last_column_id,
               m->current_schema_id);
    for (size_t i = 0; i < m->nschemas; i++) {
        if (i)
            buf_putc(b, ',');
        ice_schema_json(b, m->schemas[i]);
    }
    buf_printf(b, "],\"default-spec-id\":%d,\"partition-specs\":[", m->default_spec_id);
    for (size_t i = 0; i < m->nspecs; i++) {
        if (i)
            buf_putc(b, ',');
        ice_spec_json(b, m->specs[i]);
    }
    buf_printf(b,
               "],\"last-partition-id\":%d,\"default-sort-order-id\":0,"
               "\"sort-orders\":[{\"order-id\":0,\"fields\":[]}],\"properties\":",
               m->last_partition_id);
    json_kvs(b, m->props, m->nprops);
    buf_printf(b, ",\"current-snapshot-id\":%lld,\"refs\":{",
               (long long)(m->current_snapshot_id < 0 ? -1 : m->current_snapshot_id));
    for (size_t i = 0; i < m->nrefs; i++) {
        const struct ice_ref *r = &m->refs[i];
        if (i)
            buf_putc(b, ',');
        json_str(b, r->name);
        buf_printf(b, ":{\"snapshot-id\":%lld,\"type\":\"%s\"", (long long)r->snapshot_id,
                   r->tag ? "tag" : "branch");
        if (r->max_ref_age_ms >= 0)
            buf_printf(b, ",\"max-ref-age-ms\":%lld", (long long)r->max_ref_age_ms);
        buf_putc(b, '}');
    }
    buf_puts(b, "},\"snapshots\":[");
    for (size_t i = 0; i < m->nsnapshots; i++) {
        if (i)
            buf_putc(b, ',');
        ice_snapshot_json(b, &m->snapshots[i]);
    }
    buf_puts(b, "],\"snapshot-log\":[");
    for (size_t i = 0; i < m->nsnaplog; i++)
        buf_printf(b, "%s{\"snapshot-id\":%lld,\"timestamp-ms\":%lld}", i ? "," : "",
                   (long long)m->snaplog[i].snapshot_id, (long long)m->snaplog[i].ts_ms);
    buf_puts(b, "],\"metadata-log\":[");
    for (size_t i = 0; i < m->nmetalog; i++) {
        buf_puts(b, i ? ",{\"metadata-file\":" : "{\"metadata-file\":");
        json_str(b, m->metalog[i].file);
        buf_printf(b, ",\"timestamp-ms\":%lld}", (long long)m->metalog[i].ts_ms);
    }
    buf_puts(b, "]}");
}

/* ---- reading ---------------------------------------------------------------- */

static int need_i64(const struct jsonv *o, const char *key, int64_t *out, char *err, size_t errlen)
{
    if (!ice_json_i64(jsonv_get(o, key), out))
        return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: \"%s\" missing or not an integer",
                        key);
    return 0;
}

static int read_kvs(const struct jsonv *o, struct ice_kv **kv, size_t *n)
{
    if (!o)
        return 0;
    if (o->t != JSONV_OBJ)
        return CDC_EINVAL;
    for (size_t i = 0; i < o->n; i++) {
        if (o->items[i].t != JSONV_STR)
            return CDC_EINVAL;
        ice_kv_set(kv, n, o->keys[i], o->items[i].s);
    }
    return 0;
}

static int read_snapshots(const struct jsonv *arr, struct ice_meta *m, char *err, size_t errlen)
{
    for (size_t i = 0; arr && i < arr->n; i++) {
        const struct jsonv *o = &arr->items[i];
        struct ice_snapshot s = {.parent_id = -1};
        int64_t schema_id = 0;
        const char *ml = jsonv_str(o, "manifest-list", NULL);
        if (need_i64(o, "snapshot-id", &s.id, err, errlen) < 0 ||
            need_i64(o, "timestamp-ms", &s.ts_ms, err, errlen) < 0)
            return CDC_EINVAL;
        if (!ml)
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "table metadata: snapshot %lld has no manifest-list "
                            "(v1 manifests lists are not read)",
                            (long long)s.id);
        ice_json_i64(jsonv_get(o, "parent-snapshot-id"), &s.parent_id);
        ice_json_i64(jsonv_get(o, "sequence-number"), &s.seq);
        ice_json_i64(jsonv_get(o, "schema-id"), &schema_id);
        s.schema_id = (int32_t)schema_id;
        m->snapshots = xrealloc(m->snapshots, (m->nsnapshots + 1) * sizeof *m->snapshots);
        s.manifest_list = xstrdup(ml);
        if (read_kvs(jsonv_get(o, "summary"), &s.summary, &s.nsummary) < 0) {
            snapshot_fini(&s);
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "table metadata: snapshot %lld: summary values must be strings",
                            (long long)s.id);
        }
        m->snapshots[m->nsnapshots++] = s;
    }
    return 0;
}

static int read_logs(const struct jsonv *doc, struct ice_meta *m)
{
    const struct jsonv *sl = jsonv_get(doc, "snapshot-log"), *ml = jsonv_get(doc, "metadata-log");
    for (size_t i = 0; sl && sl->t == JSONV_ARR && i < sl->n; i++) {
        struct ice_log_entry e = {0};
        if (!ice_json_i64(jsonv_get(&sl->items[i], "snapshot-id"), &e.snapshot_id) ||
            !ice_json_i64(jsonv_get(&sl->items[i], "timestamp-ms"), &e.ts_ms))
            return CDC_EINVAL;
        m->snaplog = xrealloc(m->snaplog, (m->nsnaplog + 1) * sizeof *m->snaplog);
        m->snaplog[m->nsnaplog++] = e;
    }
    for (size_t i = 0; ml && ml->t == JSONV_ARR && i < ml->n; i++) {
        struct ice_log_entry e = {0};
        const char *f = jsonv_str(&ml->items[i], "metadata-file", NULL);
        if (!f || !ice_json_i64(jsonv_get(&ml->items[i], "timestamp-ms"), &e.ts_ms))
            return CDC_EINVAL;
        e.file = xstrdup(f);
        m->metalog = xrealloc(m->metalog, (m->nmetalog + 1) * sizeof *m->metalog);
        m->metalog[m->nmetalog++] = e;
    }
    return 0;
}

static int parse_doc(const struct jsonv *doc, struct ice_meta *m, char *err, size_t errlen)
{
    if (!doc || doc->t != JSONV_OBJ)
        return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: expected a JSON object");
    int64_t fv, v;
    const char *uuid = jsonv_str(doc, "table-uuid", NULL), *loc = jsonv_str(doc, "location", NULL);
    if (need_i64(doc, "format-version", &fv, err, errlen) < 0)
        return CDC_EINVAL;
    if (fv != 2)
        return cdc_fail(err, errlen, CDC_ENOTSUP,
                        "table metadata: format-version %lld (only 2 is supported)", (long long)fv);
    if (!uuid || strlen(uuid) >= sizeof m->table_uuid || !loc)
        return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: no table-uuid or location");
    snprintf(m->table_uuid, sizeof m->table_uuid, "%s", uuid);
    m->location = xstrdup(loc);
    if (need_i64(doc, "last-sequence-number", &m->last_seq, err, errlen) < 0 ||
        need_i64(doc, "last-updated-ms", &m->last_updated_ms, err, errlen) < 0 ||
        need_i64(doc, "last-column-id", &v, err, errlen) < 0)
        return CDC_EINVAL;
    m->last_column_id = (int32_t)v;
    if (need_i64(doc, "current-schema-id", &v, err, errlen) < 0)
        return CDC_EINVAL;
    m->current_schema_id = (int32_t)v;
    const struct jsonv *schemas = jsonv_get(doc, "schemas");
    if (!schemas || schemas->t != JSONV_ARR || schemas->n == 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: no schemas");
    m->schemas = xcalloc(schemas->n, sizeof *m->schemas);
    for (size_t i = 0; i < schemas->n; i++) {
        if (ice_schema_from_json(&schemas->items[i], &m->schemas[i], err, errlen) < 0)
            return CDC_EINVAL;
        m->nschemas++;
    }
    const struct jsonv *specs = jsonv_get(doc, "partition-specs");
    if (!specs || specs->t != JSONV_ARR || specs->n == 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: no partition-specs");
    m->specs = xcalloc(specs->n, sizeof *m->specs);
    for (size_t i = 0; i < specs->n; i++) {
        if (ice_spec_from_json(&specs->items[i], &m->specs[i], err, errlen) < 0)
            return CDC_EINVAL;
        m->nspecs++;
    }
    if (need_i64(doc, "default-spec-id", &v, err, errlen) < 0)
        return CDC_EINVAL;
    m->default_spec_id = (int32_t)v;
    if (need_i64(doc, "last-partition-id", &v, err, errlen) < 0)
        return CDC_EINVAL;
    m->last_partition_id = (int32_t)v;
    if (read_kvs(jsonv_get(doc, "properties"), &m->props, &m->nprops) < 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: properties must be strings");
    m->current_snapshot_id = -1;
    ice_json_i64(jsonv_get(doc, "current-snapshot-id"), &m->current_snapshot_id);
    if (read_snapshots(jsonv_get(doc, "snapshots"), m, err, errlen) < 0)
        return CDC_EINVAL;
    const struct jsonv *refs = jsonv_get(doc, "refs");
    for (size_t i = 0; refs && refs->t == JSONV_OBJ && i < refs->n; i++) {
        struct ice_ref r = {.max_ref_age_ms = -1};
        if (!ice_json_i64(jsonv_get(&refs->items[i], "snapshot-id"), &r.snapshot_id))
            return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: ref %s has no snapshot-id",
                            refs->keys[i]);
        r.tag = strcmp(jsonv_str(&refs->items[i], "type", "branch"), "tag") == 0;
        ice_json_i64(jsonv_get(&refs->items[i], "max-ref-age-ms"), &r.max_ref_age_ms);
        r.name = xstrdup(refs->keys[i]);
        m->refs = xrealloc(m->refs, (m->nrefs + 1) * sizeof *m->refs);
        m->refs[m->nrefs++] = r;
    }
    if (m->current_snapshot_id >= 0 && !ice_meta_current(m))
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "table metadata: current-snapshot-id %lld is not a snapshot",
                        (long long)m->current_snapshot_id);
    if (m->current_snapshot_id >= 0 && m->nrefs == 0)
        ice_meta_set_main(m, m->current_snapshot_id);
    if (read_logs(doc, m) < 0)
        return cdc_fail(err, errlen, CDC_EINVAL,
                        "table metadata: malformed snapshot-log or "
                        "metadata-log");
    return 0;
}

int ice_meta_from_json(const struct jsonv *doc, struct ice_meta **out, char *err, size_t errlen)
{
    struct ice_meta *m = xcalloc(1, sizeof *m);
    int rc = parse_doc(doc, m, err, errlen);
    if (rc < 0) {
        ice_meta_free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

int ice_meta_parse(const char *json, size_t len, struct ice_meta **out, char *err, size_t errlen)
{
    struct jsonv doc;
    *out = NULL;
    if (jsonread_parse(json, len, &doc) < 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "table metadata: not valid JSON");
    struct ice_meta *m = xcalloc(1, sizeof *m);
    int rc = parse_doc(&doc, m, err, errlen);
    jsonv_free(&doc);
    if (rc < 0) {
        ice_meta_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
