/* The S3 store: s3://bucket/key URIs against an S3-compatible endpoint, with
 * path-style addressing and SigV4 signatures computed in s3_sigv4.c (see
 * lake_store.h).  Every request sends x-amz-content-sha256 = the hex SHA-256
 * of its body.  Large uploads use multipart upload (parts of part_bytes). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lake/lake_store.h"
#include "lake/lake_store_s3.h"
#include "lake/s3_sigv4.h"
#include "util/err.h"
#include "util/mem.h"

struct s3_store {
    struct lake_store st;
    char *endpoint;                 /* owned: "http://127.0.0.1:9000", no trailing slash */
    char *host;                     /* owned: host[:port] as signed */
    char *region, *ak, *sk, *token; /* owned */
    size_t part_bytes;
    CURL *curl;
};

struct s3_resp {
    long status;
    struct buf body;
    char etag[128];
};

/* s3://bucket/key -> bucket and key (pointers into a fresh copy). */
static int split_uri(const char *uri, char **bucket, const char **key)
{
    if (strncmp(uri, "s3://", 5) != 0)
        return CDC_EINVAL;
    *bucket = xstrdup(uri + 5);
    char *slash = strchr(*bucket, '/');
    if (slash) {
        *slash = '\0';
        *key = slash + 1;
    } else {
        *key = *bucket + strlen(*bucket);
    }
    return **bucket ? 0 : CDC_EINVAL;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    buf_put(&((struct s3_resp *)arg)->body, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct s3_resp *r = arg;
    size_t len = size * n;
    if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
        size_t i = 5;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t j = len;
        while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '))
            j--;
        snprintf(r->etag, sizeof r->etag, "%.*s", (int)(j - i), p + i);
    }
    return len;
}

/* One signed request.  query is canonical (sorted, encoded) or "". */
static int request(struct s3_store *s, const char *method, const char *bucket, const char *key,
                   const char *query, const void *body, size_t n, const char *extra_header,
                   struct s3_resp *resp, char *err, size_t errlen)
{
    struct buf path = BUF_INIT, url = BUF_INIT, auth = BUF_INIT, h = BUF_INIT;
    buf_putc(&path, '/');
    s3_uri_encode(&path, bucket, strlen(bucket), false);
    if (*key) {
        buf_putc(&path, '/');
        s3_uri_encode(&path, key, strlen(key), true);
    }
    buf_printf(&url, "%s%s%s%s", s->endpoint, path.p, *query ? "?" : "", query);
    char payload[65], date[20];
    s3_sha256_hex(body ? body : "", body ? n : 0, payload);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    struct s3_sign_req sr = {method, path.p,    query, s->host, payload,
                             date,   s->region, s->ak, s->sk,   s->token};
    s3_sigv4_authorization(&auth, &sr);

    struct curl_slist *hl = NULL;
    buf_printf(&h, "Authorization: %s", auth.p);
    hl = curl_slist_append(hl, h.p);
    buf_reset(&h);
    buf_printf(&h, "x-amz-content-sha256: %s", payload);
    hl = curl_slist_append(hl, h.p);
    buf_reset(&h);
    buf_printf(&h, "x-amz-date: %s", date);
    hl = curl_slist_append(hl, h.p);
    if (s->token) {
        buf_reset(&h);
        buf_printf(&h, "x-amz-security-token: %s", s->token);
        hl = curl_slist_append(hl, h.p);
    }
    hl = curl_slist_append(hl, "Content-Type: application/octet-stream");
    hl = curl_slist_append(hl, "Expect:");
    if (extra_header)
        hl = curl_slist_append(hl, extra_header);

    CURL *c = s->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.p);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? n : 0));
    }
    memset(resp, 0, sizeof *resp);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    CURLcode cc = curl_easy_perform(c);
    int rc = 0;
    if (cc != CURLE_OK)
        rc = cdc_fail(err, errlen, CDC_ECONN, "S3 %s s3://%s/%s: %s", method, bucket, key,
                      curl_easy_strerror(cc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hl);
    buf_fini(&path);
    buf_fini(&url);
    buf_fini(&auth);
    buf_fini(&h);
    return rc;
}

/* The text of the first <tag>…</tag> in xml after *pos, or NULL. */
static char *xml_next(const char *xml, const char *tag, const char **pos)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(*pos, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return NULL;
    *pos = b + strlen(close);
    (void)xml;
    return xstrndup(a, (size_t)(b - a));
}

static int http_fail(const char *method, const char *uri, const struct s3_resp *r, char *err,
                     size_t errlen)
{
    const char *pos = r->body.p ? r->body.p : "";
    char *code = xml_next(pos, "Code", &pos);
    int rc = cdc_fail(err, errlen, r->status >= 500 ? CDC_ECONN : CDC_EIO, "S3 %s %s: HTTP %ld%s%s",
                      method, uri, r->status, code ? " " : "", code ? code : "");
    free(code);
    return rc;
}

#define S3 ((struct s3_store *)st)

static int s3_put(struct lake_store *st, const char *uri, const void *data, size_t n, int flags,
                  char *err, size_t errlen)
{
    char *bucket;
    const char *key;
    if (split_uri(uri, &bucket, &key) < 0) {
        free(bucket);
        return cdc_fail(err, errlen, CDC_EINVAL, "not an s3:// URI: %s", uri);
    }
    struct s3_resp r;
    /* S3 refuses the PUT with 412 when the key exists (conditional write). */
    int rc = request(S3, "PUT", bucket, key, "", data ? data : "", n,
                     (flags & LAKE_PUT_NOREPLACE) ? "If-None-Match: *" : NULL, &r, err, errlen);
    if (rc == 0 && r.status == 412)
        rc = LAKE_STORE_EXISTS;
    else if (rc == 0 && r.status != 200)
        rc = http_fail("PUT", uri, &r, err, errlen);
    buf_fini(&r.body);
    free(bucket);
    return rc;
}

static int s3_get(struct lake_store *st, const char *uri, struct buf *out, char *err, size_t errlen)
{
    char *bucket;
    const char *key;
    if (split_uri(uri, &bucket, &key) < 0) {
        free(bucket);
        return cdc_fail(err, errlen, CDC_EINVAL, "not an s3:// URI: %s", uri);
    }
    struct s3_resp r;
    int rc = request(S3, "GET", bucket, key, "", NULL, 0, NULL, &r, err, errlen);
    if (rc == 0 && r.status == 404)
        rc = LAKE_STORE_ABSENT;
    else if (rc == 0 && r.status != 200)
        rc = http_fail("GET", uri, &r, err, errlen);
    else if (rc == 0)
        buf_put(out, r.body.p ? r.body.p : "", r.body.len);
    buf_fini(&r.body);
    free(bucket);
    return rc;
}

static int s3_head(struct lake_store *st, const char *uri, int64_t *size, char *err, size_t errlen)
{
    char *bucket;
    const char *key;
    if (split_uri(uri, &bucket, &key) < 0) {
        free(bucket);
        return cdc_fail(err, errlen, CDC_EINVAL, "not an s3:// URI: %s", uri);
    }
    struct s3_resp r;
    int rc = request(S3, "HEAD", bucket, key, "", NULL, 0, NULL, &r, err, errlen);
    if (rc == 0 && r.status == 404) {
        rc = LAKE_STORE_ABSENT;
    } else if (rc == 0 && r.status != 200) {
        rc = http_fail("HEAD", uri, &r, err, errlen);
    } else if (rc == 0) {
        curl_off_t len = -1;
        curl_easy_getinfo(S3->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        *size = (int64_t)len;
    }
    buf_fini(&r.body);
    free(bucket);
    return rc;
}

static int s3_del(struct lake_store *st, const char *uri, char *err, size_t errlen)
{
    char *bucket;
    const char *key;
    if (split_uri(uri, &bucket, &key) < 0) {
        free(bucket);
        return cdc_fail(err, errlen, CDC_EINVAL, "not an s3:// URI: %s", uri);
    }
    struct s3_resp r;
    int rc = request(S3, "DELETE", bucket, key, "", NULL, 0, NULL, &r, err, errlen);
    if (rc == 0 && r.status != 204 && r.status != 200 && r.status != 404)
        rc = http_fail("DELETE", uri, &r, err, errlen);
    buf_fini(&r.body);
    free(bucket);
    return rc;
}

/* Milliseconds since the epoch of an ISO 8601 UTC time as S3 lists them
 * ("2024-01-02T03:04:05.000Z"), or 0 if unreadable. */
static int64_t iso_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return 0;
    int64_t ms = (int64_t)timegm(&tm) * 1000;
    if (rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9')
        ms += atoi(rest + 1) % 1000;
    return ms;
}

/* ListObjectsV2, following continuation tokens; mtime from LastModified. */
static int s3_list(struct lake_store *st, const char *prefix, lake_list_fn fn, void *arg, char *err,
                   size_t errlen)
{
    char *bucket;
    const char *key;
    if (split_uri(prefix, &bucket, &key) < 0) {
        free(bucket);
        return cdc_fail(err, errlen, CDC_EINVAL, "not an s3:// URI: %s", prefix);
    }
    char *token = NULL;
    int rc = 0;
    for (;;) {
        struct buf q = BUF_INIT;
        if (token) {
            buf_puts(&q, "continuation-token=");
            s3_uri_encode(&q, token, strlen(token), false);
            buf_putc(&q, '&');
        }
        buf_puts(&q, "list-type=2&prefix=");
        s3_uri_encode(&q, key, strlen(key), false);
        struct s3_resp r;
        rc = request(S3, "GET", bucket, "", q.p, NULL, 0, NULL, &r, err, errlen);
        buf_fini(&q);
        if (rc == 0 && r.status != 200)
            rc = http_fail("LIST", prefix, &r, err, errlen);
        if (rc < 0) {
            buf_fini(&r.body);
            break;
        }
        const char *pos = r.body.p ? r.body.p : "";
        char *c;
        while (rc == 0 && (c = xml_next(pos, "Contents", &pos)) != NULL) {
            const char *cp = c;
            char *k = xml_next(c, "Key", &cp);
            cp = c;
            char *size = xml_next(c, "Size", &cp);
            cp = c;
            char *mod = xml_next(c, "LastModified", &cp);
            if (k) {
                char *uri = xasprintf("s3://%s/%s", bucket, k);
                rc = fn(arg, uri, size ? atoll(size) : -1, mod ? iso_ms(mod) : 0);
                free(uri);
            }
            free(k);
            free(size);
            free(mod);
            free(c);
        }
        free(token);
        token = NULL;
        pos = r.body.p ? r.body.p : "";
        char *trunc = xml_next(pos, "IsTruncated", &pos);
        pos = r.body.p ? r.body.p : "";
        if (trunc && strcmp(trunc, "true") == 0)
            token = xml_next(pos, "NextContinuationToken", &pos);
        free(trunc);
        buf_fini(&r.body);
        if (rc != 0 || !token)
            break;
    }
    free(token);
    free(bucket);
    return rc < 0 ? rc : 0;
}

/* ---- multipart upload ------------------------------------------------------------ */

struct s3_upload {
    struct lake_upload up;
    struct s3_store *s; /* borrowed */
    char *uri, *bucket; /* owned */
    const char *key;    /* into bucket */
    struct buf pending;
    char *upload_id;  /* owned, once initiated */
    struct buf etags; /* "<Part><PartNumber>n</PartNumber><ETag>e</ETag></Part>"… */
    int nparts;
};

static int mp_initiate(struct s3_upload *u, char *err, size_t errlen)
{
    struct s3_resp r;
    int rc = request(u->s, "POST", u->bucket, u->key, "uploads=", "", 0, NULL, &r, err, errlen);
    if (rc == 0 && r.status != 200)
        rc = http_fail("POST ?uploads", u->uri, &r, err, errlen);
    if (rc == 0) {
        const char *pos = r.body.p ? r.body.p : "";
        u->upload_id = xml_next(pos, "UploadId", &pos);
        if (!u->upload_id)
            rc = cdc_fail(err, errlen, CDC_EIO, "S3 %s: no UploadId in the answer", u->uri);
    }
    buf_fini(&r.body);
    return rc;
}

static int mp_part(struct s3_upload *u, const void *data, size_t n, char *err, size_t errlen)
{
    struct buf q = BUF_INIT;
    buf_printf(&q, "partNumber=%d&uploadId=", u->nparts + 1);
    s3_uri_encode(&q, u->upload_id, strlen(u->upload_id), false);
    struct s3_resp r;
    int rc = request(u->s, "PUT", u->bucket, u->key, q.p, data, n, NULL, &r, err, errlen);
    buf_fini(&q);
    if (rc == 0 && r.status != 200)
        rc = http_fail("PUT part", u->uri, &r, err, errlen);
    if (rc == 0 && !r.etag[0])
        rc = cdc_fail(err, errlen, CDC_EIO, "S3 %s: part %d has no ETag", u->uri, u->nparts + 1);
    if (rc == 0) {
        u->nparts++;
        buf_printf(&u->etags, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", u->nparts,
                   r.etag);
    }
    buf_fini(&r.body);
    return rc;
}

static int mp_write(struct lake_upload *up, const void *data, size_t n, char *err, size_t errlen)
{
    struct s3_upload *u = (struct s3_upload *)up;
    buf_put(&u->pending, data, n);
    up->bytes += (int64_t)n;
    size_t part = u->s->part_bytes, off = 0;
    int rc = 0;
    while (rc == 0 && u->pending.len - off >= part) {
        if (!u->upload_id)
            rc = mp_initiate(u, err, errlen);
        if (rc == 0)
            rc = mp_part(u, u->pending.p + off, part, err, errlen);
        off += part;
    }
    if (off) {
        memmove(u->pending.p, u->pending.p + off, u->pending.len - off);
        u->pending.len -= off;
    }
    return rc;
}

static void mp_free(struct s3_upload *u)
{
    buf_fini(&u->pending);
    buf_fini(&u->etags);
    free(u->upload_id);
    free(u->uri);
    free(u->bucket);
    free(u);
}

static void mp_abort(struct lake_upload *up)
{
    struct s3_upload *u = (struct s3_upload *)up;
    if (u->upload_id) {
        struct buf q = BUF_INIT;
        buf_puts(&q, "uploadId=");
        s3_uri_encode(&q, u->upload_id, strlen(u->upload_id), false);
        struct s3_resp r;
        char err[256];
        if (request(u->s, "DELETE", u->bucket, u->key, q.p, NULL, 0, NULL, &r, err, sizeof err) ==
            0)
            buf_fini(&r.body);
        buf_fini(&q);
    }
    mp_free(u);
}

static int mp_commit(struct lake_upload *up, char *err, size_t errlen)
{
    struct s3_upload *u = (struct s3_upload *)up;
    int rc;
    if (!u->upload_id) {
        rc = s3_put(&u->s->st, u->uri, u->pending.p ? u->pending.p : "", u->pending.len, 0, err,
                    errlen);
        mp_free(u);
        return rc;
    }
    rc = u->pending.len ? mp_part(u, u->pending.p, u->pending.len, err, errlen) : 0;
    if (rc == 0) {
        struct buf x = BUF_INIT, q = BUF_INIT;
        buf_printf(&x, "<CompleteMultipartUpload>%s</CompleteMultipartUpload>", u->etags.p);
        buf_puts(&q, "uploadId=");
        s3_uri_encode(&q, u->upload_id, strlen(u->upload_id), false);
        struct s3_resp r;
        rc = request(u->s, "POST", u->bucket, u->key, q.p, x.p, x.len, NULL, &r, err, errlen);
        /* S3 may answer 200 with an <Error> body. */
        if (rc == 0 && (r.status != 200 || (r.body.p && strstr(r.body.p, "<Error>"))))
            rc = http_fail("POST complete", u->uri, &r, err, errlen);
        if (rc == 0)
            buf_fini(&r.body);
        else if (r.body.p)
            buf_fini(&r.body);
        buf_fini(&x);
        buf_fini(&q);
    }
    if (rc < 0) {
        mp_abort(up);
        return rc;
    }
    mp_free(u);
    return 0;
}

static const struct lake_upload_ops s3_upload_ops = {mp_write, mp_commit, mp_abort};

static int s3_upload_open(struct lake_store *st, const char *uri, struct lake_upload **out,
                          char *err, size_t errlen)
{
    struct s3_upload *u = xcalloc(1, sizeof *u);
    if (split_uri(uri, &u->bucket, &u->key) < 0) {
        free(u->bucket);
        free(u);
        return cdc_fail(err, errlen, CDC_EINVAL, "not an s3:// URI: %s", uri);
    }
    u->up.ops = &s3_upload_ops;
    u->s = S3;
    u->uri = xstrdup(uri);
    *out = &u->up;
    return 0;
}

static void s3_free(struct lake_store *st)
{
    struct s3_store *s = S3;
    curl_easy_cleanup(s->curl);
    free(s->endpoint);
    free(s->host);
    free(s->region);
    free(s->ak);
    if (s->sk)
        memset(s->sk, 0, strlen(s->sk));
    free(s->sk);
    free(s->token);
    free(s);
}

static const struct lake_store_ops s3_ops = {
    .scheme = "s3",
    .put = s3_put,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .list = s3_list,
    .upload_open = s3_upload_open,
    .free = s3_free,
};

int lake_store_s3_open(const struct lake_s3_cfg *cfg, struct lake_store **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (!cfg->access_key_id || !cfg->secret_access_key)
        return cdc_fail(err, errlen, CDC_EINVAL, "S3: access key id and secret are required");
    struct s3_store *s = xcalloc(1, sizeof *s);
    s->st.ops = &s3_ops;
    s->region = xstrdup(cfg->region ? cfg->region : "us-east-1");
    if (cfg->endpoint)
        s->endpoint = xstrdup(cfg->endpoint);
    else
        s->endpoint = xasprintf("https://s3.%s.amazonaws.com", s->region);
    size_t n = strlen(s->endpoint);
    while (n && s->endpoint[n - 1] == '/')
        s->endpoint[--n] = '\0';
    const char *h = strstr(s->endpoint, "://");
    if (!h || !h[3]) {
        s3_free(&s->st);
        return cdc_fail(err, errlen, CDC_EINVAL, "S3 endpoint %s: expected http(s)://host[:port]",
                        cfg->endpoint);
    }
    s->host = xstrdup(h + 3);
    char *slash = strchr(s->host, '/');
    if (slash)
        *slash = '\0';
    s->ak = xstrdup(cfg->access_key_id);
    s->sk = xstrdup(cfg->secret_access_key);
    s->token = cfg->session_token ? xstrdup(cfg->session_token) : NULL;
    s->part_bytes = cfg->part_bytes ? cfg->part_bytes : (size_t)8 << 20;
    if (s->part_bytes < ((size_t)5 << 20) && !cfg->endpoint)
        s->part_bytes = (size_t)5 << 20; /* AWS minimum for all but the last part */
    s->curl = curl_easy_init();
    if (!s->curl) {
        s3_free(&s->st);
        return cdc_fail(err, errlen, CDC_ERR, "S3: cannot initialise libcurl");
    }
    *out = &s->st;
    return 0;
}
