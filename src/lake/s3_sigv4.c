/* AWS SigV4 (see s3_sigv4.h): canonical request, string to sign, signing key
 * HMAC chain, Authorization header. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "lake/s3_sigv4.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void s3_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(p, n, d);
    hex(d, sizeof d, out);
}

void s3_uri_encode(struct buf *b, const char *s, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'))
            buf_putc(b, (char)c);
        else
            buf_printf(b, "%%%02X", c);
    }
}

static const char *signed_headers(const struct s3_sign_req *r)
{
    return r->session_token ? "host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
                            : "host;x-amz-content-sha256;x-amz-date";
}

static void canonical_request(struct buf *b, const struct s3_sign_req *r)
{
    buf_printf(b, "%s\n%s\n%s\n", r->method, r->canonical_uri, r->canonical_query);
    buf_printf(b, "host:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n", r->host, r->payload_hash,
               r->amz_date);
    if (r->session_token)
        buf_printf(b, "x-amz-security-token:%s\n", r->session_token);
    buf_printf(b, "\n%s\n%s", signed_headers(r), r->payload_hash);
}

static void string_to_sign(struct buf *b, const struct s3_sign_req *r)
{
    struct buf cr = BUF_INIT;
    canonical_request(&cr, r);
    char h[65];
    s3_sha256_hex(cr.p, cr.len, h);
    buf_fini(&cr);
    buf_printf(b, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/s3/aws4_request\n%s", r->amz_date, r->amz_date,
               r->region, h);
}

void s3_sigv4_canonical(struct buf *b, const struct s3_sign_req *r)
{
    canonical_request(b, r);
    buf_puts(b, "\n----\n");
    string_to_sign(b, r);
}

static void hmac(const void *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &n);
}

void s3_sigv4_authorization(struct buf *b, const struct s3_sign_req *r)
{
    char k0[300];
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    int n = snprintf(k0, sizeof k0, "AWS4%s", r->secret_key);
    if (n < 0 || (size_t)n >= sizeof k0)
        n = (int)sizeof k0 - 1;
    hmac(k0, (size_t)n, r->amz_date, 8, k1);
    hmac(k1, 32, r->region, strlen(r->region), k2);
    hmac(k2, 32, "s3", 2, k3);
    hmac(k3, 32, "aws4_request", 12, k4);
    struct buf sts = BUF_INIT;
    string_to_sign(&sts, r);
    hmac(k4, 32, sts.p, sts.len, sig);
    buf_fini(&sts);
    char sighex[65];
    hex(sig, 32, sighex);
    buf_printf(b,
               "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/aws4_request, SignedHeaders=%s, "
               "Signature=%s",
               r->access_key, r->amz_date, r->region, signed_headers(r), sighex);
    memset(k0, 0, sizeof k0);
}
