/* The record encoder.  What is the same for every event of one table
 * version (its topic name, its Connect schemas) is computed once and kept
 * in a small cache keyed by the table version, which the cache holds a
 * reference to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evcodec.h"
#include "transport/kafka/kenc.h"
#include "transport/kafka/kschema.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

#define CACHE_MAX 4096 /* table versions remembered before starting over */

struct tabinfo {
    struct cdc_table *tab; /* owned reference; NULL = free slot */
    char *topic;           /* owned */
    size_t topic_len;
    char *key_schema;   /* owned; NULL unless schemas_enable */
    char *value_schema; /* owned; NULL unless schemas_enable */
};

struct kenc {
    struct kenc_opts o;
    struct tabinfo *slots;
    size_t cap, used; /* cap a power of two */
    char *message_topic;
    char *message_schema;
    struct buf key, oldkey, value, envelope, position, event;
    struct kproducer_header headers[2]; /* cdc.position, cdc.event */
    /* event_header: the delete of the old key a key-moving update becomes */
    struct buf delvalue, delevent;
    struct kproducer_header delheaders[2];
};

size_t kenc_topic(const char *tmpl, const char *topic_prefix, const char *db, const char *schema,
                  const char *table, char *dst, size_t n)
{
    static const char *const fields[] = {"topic_prefix", "schema", "table", "db"};
    const char *vals[] = {topic_prefix, schema, table, db};
    size_t o = 0;
    for (const char *p = tmpl; *p; p++) {
        const char *v = NULL;
        size_t skip = 0;
        if (*p == '{') {
            for (size_t i = 0; i < 4 && !skip; i++) {
                size_t len = strlen(fields[i]);
                if (strncmp(p + 1, fields[i], len) == 0 && p[1 + len] == '}') {
                    v = vals[i] ? vals[i] : "";
                    skip = len + 1;
                }
            }
        }
        char one[2] = {*p, '\0'};
        if (!skip)
            v = one;
        for (; *v; v++, o++) {
            char c = *v;
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
            if (o + 1 < n)
                dst[o] = ok ? c : '_';
        }
        p += skip;
    }
    if (n)
        dst[o < n ? o : n - 1] = '\0';
    return o;
}

struct kenc *kenc_new(const struct kenc_opts *o)
{
    struct kenc *e = xcalloc(1, sizeof *e);
    e->o = *o;
    if (!e->o.topic_template)
        e->o.topic_template = "{topic_prefix}.{schema}.{table}";
    if (!e->o.topic_prefix)
        e->o.topic_prefix = "cdc";
    size_t need =
        kenc_topic("{topic_prefix}.message", e->o.topic_prefix, NULL, NULL, NULL, NULL, 0);
    e->message_topic = xmalloc(need + 1);
    kenc_topic("{topic_prefix}.message", e->o.topic_prefix, NULL, NULL, NULL, e->message_topic,
               need + 1);
    if (o->schemas_enable) {
        struct buf b = BUF_INIT;
        kschema_message(&b, o->json ? o->json->connector : NULL);
        e->message_schema = b.p;
    }
    return e;
}

static void cache_clear(struct kenc *e)
{
    for (size_t i = 0; i < e->cap; i++) {
        struct tabinfo *t = &e->slots[i];
        if (!t->tab)
            continue;
        cdc_table_unref(t->tab);
        free(t->topic);
        free(t->key_schema);
        free(t->value_schema);
        memset(t, 0, sizeof *t);
    }
    e->used = 0;
}

void kenc_free(struct kenc *e)
{
    if (!e)
        return;
    cache_clear(e);
    free(e->slots);
    free(e->message_topic);
    free(e->message_schema);
    buf_fini(&e->key);
    buf_fini(&e->oldkey);
    buf_fini(&e->value);
    buf_fini(&e->envelope);
    buf_fini(&e->position);
    buf_fini(&e->event);
    buf_fini(&e->delvalue);
    buf_fini(&e->delevent);
    free(e);
}

static size_t slot_of(const struct cdc_table *tab, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)tab * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 32) & (cap - 1);
}

static void cache_grow(struct kenc *e)
{
    size_t ncap = e->cap ? e->cap * 2 : 64;
    struct tabinfo *n = xcalloc(ncap, sizeof *n);
    for (size_t i = 0; i < e->cap; i++) {
        if (!e->slots[i].tab)
            continue;
        size_t j = slot_of(e->slots[i].tab, ncap);
        while (n[j].tab)
            j = (j + 1) & (ncap - 1);
        n[j] = e->slots[i];
    }
    free(e->slots);
    e->slots = n;
    e->cap = ncap;
}

static const struct tabinfo *table_info(struct kenc *e, struct cdc_table *tab)
{
    if (e->cap) {
        for (size_t j = slot_of(tab, e->cap); e->slots[j].tab; j = (j + 1) & (e->cap - 1))
            if (e->slots[j].tab == tab)
                return &e->slots[j];
    }
    if (e->used >= CACHE_MAX)
        cache_clear(e);
    if ((e->used + 1) * 2 > e->cap)
        cache_grow(e);
    size_t j = slot_of(tab, e->cap);
    while (e->slots[j].tab)
        j = (j + 1) & (e->cap - 1);
    struct tabinfo *t = &e->slots[j];
    cdc_table_ref(tab);
    t->tab = tab;
    const char *db = e->o.json ? e->o.json->db : NULL;
    size_t need =
        kenc_topic(e->o.topic_template, e->o.topic_prefix, db, tab->schema, tab->name, NULL, 0);
    t->topic = xmalloc(need + 1);
    kenc_topic(e->o.topic_template, e->o.topic_prefix, db, tab->schema, tab->name, t->topic,
               need + 1);
    t->topic_len = need;
    if (e->o.schemas_enable) {
        struct buf b = BUF_INIT;
        kschema_key(&b, tab);
        t->key_schema = b.p;
        buf_init(&b);
        kschema_envelope(&b, tab, e->o.json ? e->o.json->connector : NULL);
        t->value_schema = b.p;
    }
    e->used++;
    return t;
}

/* {"schema":S,"payload":P} of payload p[0..n) into out, or p itself. */
static void wrap(struct buf *out, const char *schema, const char *p, size_t n)
{
    buf_reset(out);
    buf_put(out, "{\"schema\":", 10);
    buf_puts(out, schema);
    buf_put(out, ",\"payload\":", 11);
    buf_put(out, p, n);
    buf_putc(out, '}');
}

/* The key of a row of ev into dst (wrapped with the key schema when
 * configured); false when the event has a null key. */
static bool encode_key(struct kenc *e, const struct tabinfo *t, const struct cdc_event *ev,
                       const struct cdc_val *row, struct buf *dst)
{
    if (!ev->tab || !ev->tab->key_unique || ev->op == CDC_OP_TRUNCATE || !row)
        return false;
    struct buf *raw = e->o.schemas_enable ? &e->envelope : dst;
    buf_reset(raw);
    json_key_row(raw, ev, row);
    if (raw->len == 4 && memcmp(raw->p, "null", 4) == 0)
        return false;
    if (e->o.schemas_enable)
        wrap(dst, t->key_schema, raw->p, raw->len);
    return true;
}

static struct kproducer_msg record(const char *topic, const struct buf *key, bool has_key,
                                   const struct buf *value, const struct kproducer_header *h,
                                   size_t nh)
{
    return (struct kproducer_msg){
        .topic = topic,
        .key = has_key ? key->p : NULL,
        .keylen = has_key ? key->len : 0,
        .value = value ? value->p : NULL,
        .valuelen = value ? value->len : 0,
        .headers = nh ? h : NULL,
        .nheaders = nh,
    };
}

int kenc_event(struct kenc *e, const struct cdc_event *ev, struct kproducer_msg *out, char *err,
               size_t errlen)
{
    if (cdc_op_is_control(ev->op))
        return 0;
    const struct tabinfo *t = NULL;
    const char *topic = e->message_topic;
    const char *schema = e->message_schema;
    if (ev->tab && ev->op != CDC_OP_MESSAGE) {
        t = table_info(e, ev->tab);
        topic = t->topic;
        schema = t->value_schema;
        if (t->topic_len > KENC_TOPIC_MAX)
            return cdc_fail(err, errlen, CDC_EINVAL,
                            "the topic name for %s.%s is %zu characters long; Kafka allows %d "
                            "(shorten the topic template)",
                            ev->tab->schema, ev->tab->name, t->topic_len, KENC_TOPIC_MAX);
    }

    /* the value */
    struct buf *value = &e->value;
    if (e->o.schemas_enable) {
        buf_reset(&e->envelope);
        json_envelope(&e->envelope, ev, e->o.json);
        wrap(value, schema, e->envelope.p, e->envelope.len);
    } else {
        buf_reset(value);
        json_envelope(value, ev, e->o.json);
    }

    /* the position header, for events that have one; the event itself
     * for the deliver role, on the record that carries the value */
    size_t nh = 0;
    bool positioned =
        ev->op == CDC_OP_MESSAGE ? ev->msg_transactional : (!ev->snapshot && ev->op != CDC_OP_READ);
    if (positioned) {
        buf_reset(&e->position);
        buf_put_u64(&e->position, ev->pos.lsn);
        buf_putc(&e->position, ':');
        buf_put_u64(&e->position, ev->pos.idx);
        if (ev->pos.stream) { /* a source with several streams */
            buf_putc(&e->position, ':');
            buf_put_u64(&e->position, ev->pos.stream);
        }
        e->headers[nh++] =
            (struct kproducer_header){"cdc.position", e->position.p, e->position.len};
    }
    size_t nh_value = nh;
    if (e->o.event_header) {
        buf_reset(&e->event);
        evcodec_encode(&e->event, ev);
        e->headers[nh_value++] =
            (struct kproducer_header){KENC_EVENT_HEADER, e->event.p, e->event.len};
    }
    const struct kproducer_header *h = e->headers;

    /* the key, and the tombstones it calls for */
    int n = 0;
    bool has_key = t && encode_key(e, t, ev, cdc_event_key_row(ev), &e->key);
    bool moved = has_key && ev->op == CDC_OP_UPDATE && ev->before &&
                 encode_key(e, t, ev, ev->before, &e->oldkey) &&
                 (e->oldkey.len != e->key.len || memcmp(e->oldkey.p, e->key.p, e->key.len) != 0);
    bool tomb = e->o.tombstones_on_delete && has_key;
    if (moved && e->o.event_header) {
        /* The deliver role: the old key's row is deleted in the old key's
         * partition, in order with that key's other changes. */
        struct cdc_event del;
        memcpy(&del, ev, sizeof del);
        del.op = CDC_OP_DELETE;
        del.after = NULL;
        buf_reset(&e->delvalue);
        buf_reset(&e->envelope);
        json_envelope(&e->envelope, &del, e->o.json);
        if (e->o.schemas_enable)
            wrap(&e->delvalue, schema, e->envelope.p, e->envelope.len);
        else
            buf_put(&e->delvalue, e->envelope.p, e->envelope.len);
        buf_reset(&e->delevent);
        evcodec_encode(&e->delevent, &del);
        size_t nd = 0;
        if (nh)
            e->delheaders[nd++] = e->headers[0];
        e->delheaders[nd++] =
            (struct kproducer_header){KENC_EVENT_HEADER, e->delevent.p, e->delevent.len};
        out[n++] = record(topic, &e->oldkey, true, &e->delvalue, e->delheaders, nd);
    }
    if (tomb && moved)
        out[n++] = record(topic, &e->oldkey, true, NULL, h, nh);
    out[n++] = record(topic, &e->key, has_key, value, h, nh_value);
    if (tomb && ev->op == CDC_OP_DELETE)
        out[n++] = record(topic, &e->key, true, NULL, h, nh);
    return n;
}
