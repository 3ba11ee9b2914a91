/* Unit tests for the NATS sink's subjects (src/sink/nats/nats_subject.c):
 * which templates are accepted, and how names that hold what a subject
 * token cannot become one token each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sink/nats/nats_sink.h"
#include "util/buf.h"

static void test_templates(void **state)
{
    (void)state;
    const char *ok[] = {"{topic_prefix}.{schema}.{table}", "cdc.{db}.{table}", "x",
                        "a.b-c_d.{table}", "events.{schema}_{table}"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        assert_null(nats_subject_check(ok[i]));
    const char *bad[] = {
        "",        ".{table}", "{table}.", "a..{table}",   "a.*.{table}", "a.>", "a b.{table}",
        "{tabel}", "{table",   "table}",   "a.\t.{table}", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *why = nats_subject_check(bad[i]);
        if (!why)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static char *render(const char *tmpl, const char *prefix, const char *db, const char *schema,
                    const char *table)
{
    struct buf b = BUF_INIT;
    nats_subject(&b, tmpl, prefix, db, schema, table);
    buf_putc(&b, '\0');
    return b.p;
}

/* Every rendered subject is one a client may publish to: tokens non-empty,
 * no wildcards, no spaces. */
static void expect(const char *tmpl, const char *prefix, const char *db, const char *schema,
                   const char *table, const char *want)
{
    char *got = render(tmpl, prefix, db, schema, table);
    assert_string_equal(got, want);
    assert_true(nats_subject_valid(got));
    free(got);
}

static void test_rendering(void **state)
{
    (void)state;
    const char *t = "{topic_prefix}.{schema}.{table}";
    expect(t, "cdc", "shop", "public", "orders", "cdc.public.orders");
    expect("{db}.{table}", "cdc", "shop", "public", "orders", "shop.orders");
    /* a name is one token whatever it holds */
    expect(t, "cdc", "d", "my.schema", "a b*c>d", "cdc.my_schema.a_b_c_d");
    expect(t, "cdc", "d", "s", "tab\x01le", "cdc.s.tab_le");
    expect(t, "cdc", "d", "", "t", "cdc._.t");
    expect(t, "cdc", "d", "s", "Zürich", "cdc.s.Zürich");
    /* the prefix may be several tokens, never an empty one */
    expect(t, "prod.cdc", "d", "s", "t", "prod.cdc.s.t");
    expect(t, ".a..b.", "d", "s", "t", "_a_.b_.s.t");
    expect(t, NULL, "d", "s", "t", "_.s.t");
    expect(t, "cdc", "d", "s", "t>}", "cdc.s.t_}"); /* braces are subject characters */
    assert_false(nats_subject_valid("a..b"));
    assert_false(nats_subject_valid("a.*"));
    assert_false(nats_subject_valid(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_rendering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
