/* Schema evolution: adding columns (see ice_table_add_columns in
 * ice_table.h).  Iceberg v2 gives a column added to a table no value for
 * the rows written before it: readers match columns by field id and read
 * NULL where a data file lacks one, which is why only optional columns can
 * be added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "lake/ice_table.h"
#include "util/err.h"
#include "util/mem.h"

static bool name_taken(const struct ice_schema *sc, const struct ice_field *fields, size_t upto,
                       const char *name)
{
    for (uint32_t i = 0; i < sc->nfields; i++)
        if (strcmp(sc->fields[i].name, name) == 0)
            return true;
    for (size_t i = 0; i < upto; i++)
        if (strcmp(fields[i].name, name) == 0)
            return true;
    return false;
}

int ice_table_add_columns(struct ice_table *t, struct ice_field *fields, size_t n, char *err,
                          size_t errlen)
{
    const struct ice_meta *old = t->meta;
    const struct ice_schema *cur = ice_meta_schema(old);
    if (!cur)
        return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s has no schema", t->ns, t->name);
    for (size_t i = 0; i < n; i++) {
        if (fields[i].required)
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "table %s.%s, column %s: a column added to a table must be optional "
                            "(older rows have no value for it)",
                            t->ns, t->name, fields[i].name);
        if (name_taken(cur, fields, i, fields[i].name))
            return cdc_fail(err, errlen, CDC_EINVAL, "table %s.%s already has a column %s", t->ns,
                            t->name, fields[i].name);
    }
    int32_t sid = 0;
    for (size_t i = 0; i < old->nschemas; i++)
        if (old->schemas[i]->schema_id >= sid)
            sid = old->schemas[i]->schema_id + 1;
    struct ice_schema *sc = ice_schema_copy(cur);
    sc->schema_id = sid;
    int32_t last = old->last_column_id;
    for (size_t i = 0; i < n; i++) {
        fields[i].id = ++last;
        struct ice_field *g =
            ice_schema_add(sc, fields[i].id, fields[i].name, fields[i].type, false);
        g->precision = fields[i].precision;
        g->scale = fields[i].scale;
        g->len = fields[i].len;
    }

    struct ice_meta *m = ice_meta_copy(old);
    m->schemas = xrealloc(m->schemas, (m->nschemas + 1) * sizeof *m->schemas);
    m->schemas[m->nschemas++] = ice_schema_copy(sc);
    m->current_schema_id = sid;
    m->last_column_id = last;
    m->last_updated_ms = ice_now_ms();
    if (m->nmetalog >= 100) {
        free(m->metalog[0].file);
        memmove(m->metalog, m->metalog + 1, (m->nmetalog - 1) * sizeof *m->metalog);
        m->nmetalog--;
    }
    m->metalog = xrealloc(m->metalog, (m->nmetalog + 1) * sizeof *m->metalog);
    m->metalog[m->nmetalog++] =
        (struct ice_log_entry){old->last_updated_ms, -1, xstrdup(t->meta_location)};

    struct buf reqs = BUF_INIT, upds = BUF_INIT;
    buf_puts(&reqs, "[{\"type\":\"assert-table-uuid\",\"uuid\":");
    json_string(&reqs, old->table_uuid, strlen(old->table_uuid));
    buf_printf(&reqs,
               "},{\"type\":\"assert-current-schema-id\",\"current-schema-id\":%d},"
               "{\"type\":\"assert-last-assigned-field-id\",\"last-assigned-field-id\":%d}]",
               (int)old->current_schema_id, (int)old->last_column_id);
    buf_puts(&upds, "[{\"action\":\"add-schema\",\"schema\":");
    ice_schema_json(&upds, sc);
    buf_printf(&upds,
               ",\"last-column-id\":%d},{\"action\":\"set-current-schema\",\"schema-id\":-1}]",
               (int)last);
    ice_schema_free(sc);

    struct ice_commit_req req = {t->ns, t->name, t->meta_location, t->meta, m, reqs.p, upds.p};
    char *loc = NULL;
    struct ice_meta *stored = NULL;
    int rc = t->cat->ops->commit(t->cat, &req, &loc, &stored, err, errlen);
    buf_fini(&reqs);
    buf_fini(&upds);
    if (rc != 0) {
        ice_meta_free(m);
        return rc;
    }
    if (stored) {
        ice_meta_free(m);
        m = stored;
    }
    free(t->meta_location);
    ice_meta_free(t->meta);
    t->meta_location = loc;
    t->meta = m;
    return 0;
}
