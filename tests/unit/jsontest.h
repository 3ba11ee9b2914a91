/* What the JSON encoder's unit tests (test_json.c, test_json_envelope.c)
 * share: every document they produce is checked twice, by json_valid as it
 * is made, and at the end by Python's json module (when python3 is
 * installed), which also decodes strings and base64 and compares them with
 * what the input bytes mean.  Each suite registers test_python_cross_check
 * last and frees `checks` after its run.  Include <cmocka.h> first. */
#ifndef CDC_TESTS_UNIT_JSONTEST_H
#define CDC_TESTS_UNIT_JSONTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "util/buf.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* U+FFFD, what the encoder writes for a byte that is not UTF-8 */
#define FFFD "\xef\xbf\xbd"

/* ---- checking documents --------------------------------------------------- */

/* Lines for the Python cross-check: "<kind>\t<hex of input>\t<document>".
 * kind j: the document must parse; s: it is a string equal to the input
 * decoded as UTF-8 with replacement; b: it is base64 of the input bytes. */
static struct buf checks = BUF_INIT;

static inline void put_hex(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%02x", (unsigned char)s[i]);
}

static inline void note(char kind, const char *in, size_t inlen, const struct buf *doc)
{
    buf_putc(&checks, kind);
    buf_putc(&checks, '\t');
    put_hex(&checks, in, inlen);
    buf_putc(&checks, '\t');
    buf_put(&checks, doc->p, doc->len);
    buf_putc(&checks, '\n');
}

/* Asserts doc is valid JSON (and queues it for Python); returns its text. */
static inline const char *checked(const struct buf *doc)
{
    if (!json_valid(doc->p, doc->len))
        fail_msg("invalid JSON: %.*s", (int)doc->len, doc->p);
    assert_int_equal(strlen(doc->p), doc->len);
    note('j', "", 0, doc);
    return doc->p;
}

/* ---- the Python cross-check ----------------------------------------------- */

static const char py_check[] =
    "import base64, json, sys\n"
    "def bad(c): raise ValueError('non-standard constant ' + c)\n"
    "n = 0\n"
    "for no, line in enumerate(sys.stdin.buffer, 1):\n"
    "    kind, hexin, doc = line.rstrip(b'\\n').split(b'\\t', 2)\n"
    "    v = json.loads(doc.decode('utf-8'), parse_constant=bad)\n"
    "    raw = bytes.fromhex(hexin.decode())\n"
    "    if kind == b's' and v != raw.decode('utf-8', 'replace'):\n"
    "        sys.exit('line %d: string mismatch: %r -> %r' % (no, raw, v))\n"
    "    if kind == b'b' and base64.b64decode(v, validate=True) != raw:\n"
    "        sys.exit('line %d: base64 mismatch: %r -> %r' % (no, raw, v))\n"
    "    n += 1\n"
    "print('python checked %d documents' % n)\n";

static inline void test_python_cross_check(void **state)
{
    if (system("python3 -c '' >/dev/null 2>&1") != 0)
        skip();
    char path[] = "/tmp/test_json_pyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(py_check, f);
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "python3 %s", path);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    fwrite(checks.p, 1, checks.len, p);
    int rc = pclose(p);
    unlink(path);
    assert_int_equal(rc, 0);
}
#endif
