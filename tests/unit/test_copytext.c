/* COPY text rows: escapes, NULLs, column counts; and a round trip of every
 * byte value through PostgreSQL's escaping rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "source/pg/copytext.h"
#include "util/err.h"

static void expect(const char *line, uint16_t ncols, const char *const *want)
{
    struct cdc_val vals[8];
    char data[512];
    uint32_t dl = 0;
    assert_int_equal(copytext_row(line, strlen(line), ncols, vals, data, &dl, NULL, 0), 0);
    for (uint16_t i = 0; i < ncols; i++) {
        if (!want[i]) {
            assert_int_equal(vals[i].kind, CDC_V_NULL);
            continue;
        }
        assert_int_equal(vals[i].kind, CDC_V_TEXT);
        assert_int_equal(vals[i].len, strlen(want[i]));
        assert_memory_equal(data + vals[i].off, want[i], vals[i].len);
        assert_int_equal(data[vals[i].off + vals[i].len], '\0');
    }
}

static void test_rows(void **state)
{
    (void)state;
    expect("1\tabc\t\\N", 3, (const char *[]){"1", "abc", NULL});
    expect("\t\t", 3, (const char *[]){"", "", ""});
    expect("a\\tb\\nc\\\\d\\re", 1, (const char *[]){"a\tb\nc\\d\re"});
    expect("\\b\\f\\v\\x41\\x4a2\\101", 1, (const char *[]){"\b\f\vAJ2A"});
    expect("\\\\N", 1, (const char *[]){"\\N"}); /* an escaped backslash, not NULL */
    expect("x\\N", 1, (const char *[]){"xN"});
    expect("caf\xc3\xa9\t\\\\x00ff", 2, (const char *[]){"caf\xc3\xa9", "\\x00ff"});
}

static void test_bad_rows(void **state)
{
    (void)state;
    struct cdc_val vals[4];
    char data[64];
    uint32_t dl = 0;
    char err[128];
    assert_int_equal(copytext_row("1\t2", 3, 3, vals, data, &dl, err, sizeof err), CDC_EINVAL);
    assert_non_null(strstr(err, "2 columns, expected 3"));
    dl = 0;
    assert_int_equal(copytext_row("1\t2\t3", 5, 2, vals, data, &dl, err, sizeof err), CDC_EINVAL);
    dl = 0;
    /* A trailing lone backslash is taken literally, never read past the end. */
    assert_int_equal(copytext_row("a\\", 2, 1, vals, data, &dl, NULL, 0), 0);
    assert_int_equal(vals[0].len, 2);
    /* A table without columns: its rows are empty lines, nothing else. */
    dl = 0;
    assert_int_equal(copytext_row("", 0, 0, vals, data, &dl, err, sizeof err), 0);
    assert_int_equal(dl, 0);
    assert_int_equal(copytext_row("\\N", 2, 0, vals, data, &dl, err, sizeof err), CDC_EINVAL);
}

/* Escape the way PostgreSQL's COPY TO does, parse back, compare. */
static void test_every_byte(void **state)
{
    (void)state;
    char raw[256], line[1024];
    for (int i = 0; i < 255; i++)
        raw[i] = (char)(i + 1);
    size_t o = 0;
    for (int i = 0; i < 255; i++) {
        char c = raw[i];
        const char *esc = c == '\\'   ? "\\\\"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\v' ? "\\v"
                                      : NULL;
        if (esc) {
            memcpy(line + o, esc, 2);
            o += 2;
        } else {
            line[o++] = c;
        }
    }
    struct cdc_val v;
    char data[1024];
    uint32_t dl = 0;
    assert_int_equal(copytext_row(line, o, 1, &v, data, &dl, NULL, 0), 0);
    assert_int_equal(v.len, 255);
    assert_memory_equal(data, raw, 255);
}

/* The encoder: escapes exactly what COPY text needs, and reads back. */
static void test_put(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    const char v[] = "a\tb\nc\rd\\e\\N";
    copytext_put(&b, v, sizeof v - 1);
    buf_putc(&b, '\t');
    copytext_put(&b, NULL, 0);
    buf_putc(&b, '\t');
    copytext_put(&b, "", 0);
    assert_string_equal(b.p, "a\\tb\\nc\\rd\\\\e\\\\N\t\\N\t");
    struct cdc_val vals[3];
    char data[64];
    uint32_t dl = 0;
    assert_int_equal(copytext_row(b.p, b.len, 3, vals, data, &dl, NULL, 0), 0);
    assert_int_equal(vals[0].kind, CDC_V_TEXT);
    assert_int_equal(vals[0].len, sizeof v - 1);
    assert_memory_equal(data + vals[0].off, v, sizeof v - 1);
    assert_int_equal(vals[1].kind, CDC_V_NULL);
    assert_int_equal(vals[2].kind, CDC_V_TEXT);
    assert_int_equal(vals[2].len, 0);
    buf_fini(&b);
}

/* The parser and the encoder skip ahead eight bytes at a time: a byte that
 * needs work is found at every offset within and across words, in values
 * of every length up to five words, next to bytes that need none (0x20,
 * 0x7f, 0x80, 0xff sit on both sides of the tests' thresholds). */
static void test_word_boundaries(void **state)
{
    (void)state;
    const char specials[] = {'\t', '\\', '\n', '\r', 0x01, 0x1f};
    const char fillers[] = {'a', ' ', 0x7f, (char)0x80, (char)0xff};
    for (size_t f = 0; f < sizeof fillers; f++)
        for (size_t len = 1; len <= 40; len++)
            for (size_t pos = 0; pos < len; pos++)
                for (size_t k = 0; k < sizeof specials; k++) {
                    char v[48];
                    memset(v, fillers[f], len);
                    v[pos] = specials[k];
                    struct buf b = BUF_INIT, want = BUF_INIT;
                    buf_put(&b, "x\t", 2);
                    copytext_put(&b, v, len);
                    buf_put(&want, "x\t", 2);
                    for (size_t i = 0; i < len; i++) {
                        char e = v[i] == '\t'   ? 't'
                                 : v[i] == '\\' ? '\\'
                                 : v[i] == '\n' ? 'n'
                                 : v[i] == '\r' ? 'r'
                                                : 0;
                        if (e) {
                            buf_putc(&want, '\\');
                            buf_putc(&want, e);
                        } else {
                            buf_putc(&want, v[i]);
                        }
                    }
                    assert_int_equal(b.len, want.len);
                    assert_memory_equal(b.p, want.p, b.len);
                    /* and back: the parser finds the tab and the escapes */
                    struct cdc_val vals[2];
                    char data[2 * 48 + 4];
                    uint32_t dl = 0;
                    assert_int_equal(copytext_row(b.p, b.len, 2, vals, data, &dl, NULL, 0), 0);
                    assert_int_equal(vals[1].len, len);
                    assert_memory_equal(data + vals[1].off, v, len);
                    /* a raw tab in the line splits it there */
                    if (specials[k] == '\t') {
                        dl = 0;
                        assert_int_equal(copytext_row(v, len, 2, vals, data, &dl, NULL, 0), 0);
                        assert_int_equal(vals[0].len, pos);
                        assert_int_equal(vals[1].len, len - pos - 1);
                    }
                    buf_fini(&b);
                    buf_fini(&want);
                }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_word_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
