/* redact_url: user information, query values and fragments of URLs, and
 * secret values of key=value connection strings, never survive; what tells
 * a person which destination is meant does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/redact.h"

static void check(const char *in, const char *want)
{
    char out[REDACT_URL_MAX];
    redact_url(in, out, sizeof out);
    if (strcmp(out, want) != 0)
        fail_msg("redact_url(\"%s\") = \"%s\", want \"%s\"", in, out, want);
}

static void test_urls(void **state)
{
    (void)state;
    check("http://h/p", "http://h/p");
    check("https://user:secret@hooks.example.com:8443/a/b?token=x#frag",
          "https://***@hooks.example.com:8443/a/b?token=***");
    check("http://u@h", "http://***@h");
    check("http://a:b@c@h/p@q", "http://***@h/p@q");
    check("http://h?x=1", "http://h?x=***");
    check("http://h/p#f", "http://h/p");
    check("http://h/p?api_key=s3cr3t&sig=abc&flag&empty=",
          "http://h/p?api_key=***&sig=***&***&empty=");
    check("http://h/p?", "http://h/p?");
    check("HTTPS://[::1]:8080/x?k=v", "HTTPS://[::1]:8080/x?k=***");
    check("postgresql://cdc:pw@db.internal:5432/shop?sslpassword=x",
          "postgresql://***@db.internal:5432/shop?sslpassword=***");
    check("http://h/a%40b?q=%26x", "http://h/a%40b?q=***");
}

static void test_conninfo(void **state)
{
    (void)state;
    check("host=db port=5432 password=secret dbname=shop",
          "host=db port=5432 password=*** dbname=shop");
    check("host=db password = 'it\\'s x y' user=u", "host=db password = *** user=u");
    check("sslpassword=a auth_token=b signing_secret=c user=u",
          "sslpassword=*** auth_token=*** signing_secret=*** user=u");
}

static void test_other_text(void **state)
{
    (void)state;
    check("db.internal", "db.internal");
    check("127.0.0.1", "127.0.0.1");
    check("", "");
    check("not a url: x=1", "not a url: x=1");
    char out[REDACT_URL_MAX];
    assert_string_equal(redact_url(NULL, out, sizeof out), "");
    /* cut at outlen, NUL-terminated, never a credential */
    redact_url("http://user:pw@example.com/long/path", out, 12);
    assert_string_equal(out, "http://***@");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_conninfo),
        cmocka_unit_test(test_other_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
