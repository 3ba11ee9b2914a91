/* Iceberg REST catalog client (apache/iceberg open-api/rest-catalog-open-api
 * .yaml): GET /v1/config for the path prefix, then namespaces and tables
 * under /v1/{prefix}/.  The server writes metadata files; a commit sends the
 * table layer's requirements (assert-table-uuid, assert-ref-snapshot-id) and
 * updates (add-snapshot, set-snapshot-ref, remove-snapshots).  409 is a
 * conflict (CDC_EAGAIN); 500, 502, 503 and 504 leave the outcome unknown
 * (CDC_ECONN: reload before deciding anything). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/jsonread.h"
#include "lake/ice_catalog.h"
#include "lake/ice_catalog_rest.h"
#include "lake/s3_sigv4.h"
#include "util/err.h"
#include "util/mem.h"

struct rest_catalog {
    struct ice_catalog cat;
    char *base;  /* owned: "http://host:port/v1" + "/prefix" when configured */
    char *token; /* owned, may be NULL */
    CURL *curl;
};

#define REST(c) ((struct rest_catalog *)(c))

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    buf_put(arg, p, size * n);
    return size * n;
}

/* One JSON request; *status gets the HTTP status, body the answer. */
static int call(struct rest_catalog *r, const char *method, const char *url, const char *json,
                long *status, struct buf *body, char *err, size_t errlen)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Expect:");
    if (r->token) {
        char *a = xasprintf("Authorization: Bearer %s", r->token);
        h = curl_slist_append(h, a);
        free(a);
    }
    CURL *c = r->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (json) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    if (cc != CURLE_OK)
        return cdc_fail(err, errlen, CDC_ECONN, "REST catalog %s %s: %s", method, url,
                        curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

/* The error message of an ErrorModel answer, or the status. */
static int answer_fail(const char *what, long status, const struct buf *body, int code, char *err,
                       size_t errlen)
{
    struct jsonv doc;
    const char *msg = NULL;
    bool parsed = body->p && jsonread_parse(body->p, body->len, &doc) == 0;
    if (parsed)
        msg = jsonv_str(jsonv_get(&doc, "error"), "message", NULL);
    int rc = cdc_fail(err, errlen, code, "REST catalog: %s: HTTP %ld%s%s", what, status,
                      msg ? ": " : "", msg ? msg : "");
    if (parsed)
        jsonv_free(&doc);
    return rc;
}

/* <base>/namespaces/<ns parts joined by %1F>[/tables[/<table>]] */
static char *ns_url(const struct rest_catalog *r, const char *ns, const char *table, bool tables)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/namespaces/", r->base);
    const char *p = ns;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        s3_uri_encode(&b, p, n, false);
        if (!dot)
            break;
        buf_puts(&b, "%1F");
        p = dot + 1;
    }
    if (tables)
        buf_puts(&b, "/tables");
    if (table) {
        buf_putc(&b, '/');
        s3_uri_encode(&b, table, strlen(table), false);
    }
    return b.p;
}

/* Parses a LoadTableResult. */
static int load_result(const struct buf *body, char **location, struct ice_meta **meta, char *err,
                       size_t errlen)
{
    struct jsonv doc;
    if (!body->p || jsonread_parse(body->p, body->len, &doc) < 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "REST catalog: the answer is not JSON");
    const char *loc = jsonv_str(&doc, "metadata-location", NULL);
    int rc = 0;
    if (!loc)
        rc = cdc_fail(err, errlen, CDC_EINVAL, "REST catalog: no metadata-location in the answer");
    else
        rc = ice_meta_from_json(jsonv_get(&doc, "metadata"), meta, err, errlen);
    if (rc == 0)
        *location = xstrdup(loc);
    jsonv_free(&doc);
    return rc;
}

static int rest_load(struct ice_catalog *cat, const char *ns, const char *table, char **location,
                     struct ice_meta **meta, char *err, size_t errlen)
{
    struct rest_catalog *r = REST(cat);
    *location = NULL;
    *meta = NULL;
    char *url = ns_url(r, ns, table, true);
    struct buf body = BUF_INIT;
    long status = 0;
    int rc = call(r, "GET", url, NULL, &status, &body, err, errlen);
    if (rc == 0 && status == 404)
        rc = LAKE_STORE_ABSENT;
    else if (rc == 0 && status != 200)
        rc = answer_fail("load table", status, &body, CDC_EIO, err, errlen);
    else if (rc == 0)
        rc = load_result(&body, location, meta, err, errlen);
    buf_fini(&body);
    free(url);
    return rc;
}

static void json_ns_array(struct buf *b, const char *ns)
{
    buf_putc(b, '[');
    const char *p = ns;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        json_string(b, p, n);
        if (!dot)
            break;
        buf_putc(b, ',');
        p = dot + 1;
    }
    buf_putc(b, ']');
}

static int rest_create(struct ice_catalog *cat, const char *ns, const char *table,
                       const struct ice_meta *meta, char **location, struct ice_meta **out,
                       char *err, size_t errlen)
{
    struct rest_catalog *r = REST(cat);
    struct buf req = BUF_INIT, body = BUF_INIT;
    long status = 0;
    /* The namespace first (409: it exists). */
    char *url = xasprintf("%s/namespaces", r->base);
    buf_puts(&req, "{\"namespace\":");
    json_ns_array(&req, ns);
    buf_puts(&req, ",\"properties\":{}}");
    int rc = call(r, "POST", url, req.p, &status, &body, err, errlen);
    free(url);
    if (rc == 0 && status != 200 && status != 409)
        rc = answer_fail("create namespace", status, &body, CDC_EIO, err, errlen);
    if (rc == 0) {
        buf_reset(&req);
        buf_reset(&body);
        buf_puts(&req, "{\"name\":");
        json_string(&req, table, strlen(table));
        buf_puts(&req, ",\"location\":");
        json_string(&req, meta->location, strlen(meta->location));
        buf_puts(&req, ",\"schema\":");
        ice_schema_json(&req, ice_meta_schema(meta));
        buf_puts(&req, ",\"partition-spec\":");
        ice_spec_json(&req, ice_meta_spec(meta, meta->default_spec_id));
        buf_puts(&req, ",\"write-order\":{\"order-id\":0,\"fields\":[]},\"stage-create\":false,"
                       "\"properties\":{");
        for (size_t i = 0; i < meta->nprops; i++) {
            buf_puts(&req, i ? "," : "");
            json_string(&req, meta->props[i].key, strlen(meta->props[i].key));
            buf_putc(&req, ':');
            json_string(&req, meta->props[i].value, strlen(meta->props[i].value));
        }
        buf_puts(&req, "}}");
        url = ns_url(r, ns, NULL, true);
        rc = call(r, "POST", url, req.p, &status, &body, err, errlen);
        free(url);
        if (rc == 0 && status == 409)
            rc = answer_fail("create table", status, &body, CDC_EAGAIN, err, errlen);
        else if (rc == 0 && status != 200)
            rc = answer_fail("create table", status, &body, CDC_EIO, err, errlen);
        else if (rc == 0)
            rc = load_result(&body, location, out, err, errlen);
    }
    buf_fini(&req);
    buf_fini(&body);
    return rc;
}

static int rest_commit(struct ice_catalog *cat, const struct ice_commit_req *q, char **location,
                       struct ice_meta **stored, char *err, size_t errlen)
{
    *stored = NULL;
    struct rest_catalog *r = REST(cat);
    struct buf req = BUF_INIT, body = BUF_INIT;
    buf_puts(&req, "{\"identifier\":{\"namespace\":");
    json_ns_array(&req, q->ns);
    buf_puts(&req, ",\"name\":");
    json_string(&req, q->table, strlen(q->table));
    buf_printf(&req, "},\"requirements\":%s,\"updates\":%s}",
               q->requirements_json ? q->requirements_json : "[]",
               q->updates_json ? q->updates_json : "[]");
    char *url = ns_url(r, q->ns, q->table, true);
    long status = 0;
    int rc = call(r, "POST", url, req.p, &status, &body, err, errlen);
    free(url);
    if (rc == 0 && status == 409) {
        rc = answer_fail("commit", status, &body, CDC_EAGAIN, err, errlen);
    } else if (rc == 0 && (status == 500 || status == 502 || status == 503 || status == 504)) {
        rc = answer_fail("commit state unknown", status, &body, CDC_ECONN, err, errlen);
    } else if (rc == 0 && status != 200) {
        rc = answer_fail("commit", status, &body, CDC_EIO, err, errlen);
    } else if (rc == 0) {
        rc = load_result(&body, location, stored, err, errlen);
    }
    buf_fini(&req);
    buf_fini(&body);
    return rc;
}

static void rest_free(struct ice_catalog *cat)
{
    struct rest_catalog *r = REST(cat);
    if (r->curl)
        curl_easy_cleanup(r->curl);
    free(r->base);
    free(r->token);
    free(cat->name);
    free(cat->warehouse);
    free(r);
}

static const struct ice_catalog_ops rest_ops = {"rest", rest_load, rest_create, rest_commit,
                                                rest_free};

int ice_catalog_rest_open(struct lake_store *store, const char *catalog_name, const char *uri,
                          const char *warehouse, const char *token, struct ice_catalog **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    if (strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0)
        return cdc_fail(err, errlen, CDC_EINVAL, "catalog_uri %s: expected http(s)://host[:port]",
                        uri);
    struct rest_catalog *r = xcalloc(1, sizeof *r);
    r->cat.ops = &rest_ops;
    r->cat.store = store;
    r->cat.name = xstrdup(catalog_name ? catalog_name : "rest");
    r->cat.warehouse = xstrdup(warehouse ? warehouse : "");
    size_t n = strlen(r->cat.warehouse);
    while (n && r->cat.warehouse[n - 1] == '/')
        r->cat.warehouse[--n] = '\0';
    r->token = token ? xstrdup(token) : NULL;
    r->curl = curl_easy_init();
    char *root = xstrdup(uri);
    n = strlen(root);
    while (n && root[n - 1] == '/')
        root[--n] = '\0';
    struct buf url = BUF_INIT, body = BUF_INIT;
    buf_printf(&url, "%s/v1/config", root);
    if (warehouse && *warehouse) {
        buf_puts(&url, "?warehouse=");
        s3_uri_encode(&url, warehouse, strlen(warehouse), false);
    }
    long status = 0;
    int rc = r->curl ? call(r, "GET", url.p, NULL, &status, &body, err, errlen)
                     : cdc_fail(err, errlen, CDC_ERR, "cannot initialise libcurl");
    if (rc == 0 && status != 200)
        rc = answer_fail("config", status, &body, CDC_EIO, err, errlen);
    const char *prefix = NULL;
    struct jsonv doc;
    bool parsed = false;
    if (rc == 0) {
        parsed = body.p && jsonread_parse(body.p, body.len, &doc) == 0;
        if (!parsed)
            rc = cdc_fail(err, errlen, CDC_EINVAL, "REST catalog: config answer is not JSON");
        else
            prefix = jsonv_str(jsonv_get(&doc, "overrides"), "prefix", NULL);
    }
    if (rc == 0)
        r->base =
            prefix && *prefix ? xasprintf("%s/v1/%s", root, prefix) : xasprintf("%s/v1", root);
    if (parsed)
        jsonv_free(&doc);
    buf_fini(&url);
    buf_fini(&body);
    free(root);
    if (rc < 0) {
        rest_free(&r->cat);
        return rc;
    }
    *out = &r->cat;
    return 0;
}
