/* AWS Signature Version 4 for S3 requests, computed here (not by libcurl) so
 * that the payload hash header, the query canonicalization and the signed
 * headers are exactly what we send.  Pure functions: unit-tested against a
 * reference computed independently. */
#ifndef CDC_LAKE_S3_SIGV4_H
#define CDC_LAKE_S3_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct s3_sign_req {
    const char *method;          /* "PUT" */
    const char *canonical_uri;   /* URI-encoded path: "/bucket/a%20b/c" */
    const char *canonical_query; /* sorted, encoded "k=v&k2=v2" or "" */
    const char *host;            /* "127.0.0.1:9000" */
    const char *payload_hash;    /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *amz_date;        /* "20240102T030405Z" */
    const char *region;
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL: none */
};

/* Hex SHA-256 of p[0..n). */
void s3_sha256_hex(const void *p, size_t n, char out[65]);
/* Appends s[0..n) percent-encoded: everything but A-Z a-z 0-9 - . _ ~ (and
 * '/' when keep_slash). */
void s3_uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash);
/* Appends the Authorization header value for r. */
void s3_sigv4_authorization(struct buf *b, const struct s3_sign_req *r);
/* The canonical request and string to sign (for tests and debugging). */
void s3_sigv4_canonical(struct buf *b, const struct s3_sign_req *r);

#endif
