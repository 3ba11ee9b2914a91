/* The key-hash set the mirror uses to end a group at a repeated key
 * (util/keyset.c): members stay members across growth, a clear empties it
 * whatever its size, and the hash 0 is a member like any other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/hash.h"
#include "util/keyset.h"

static uint64_t h_of(uint64_t i)
{
    return hash_finish(hash_bytes(HASH_SEED, &i, sizeof i));
}

static void test_members(void **state)
{
    (void)state;
    struct keyset ks = {0};
    for (uint64_t i = 0; i < 100000; i++)
        assert_true(keyset_add(&ks, h_of(i)));
    assert_int_equal(ks.used, 100000);
    for (uint64_t i = 0; i < 100000; i++)
        assert_false(keyset_add(&ks, h_of(i)));
    /* 0 and 1 are one member (0 marks an empty slot) */
    assert_true(keyset_add(&ks, 0));
    assert_false(keyset_add(&ks, 0));
    assert_false(keyset_add(&ks, 1));
    keyset_fini(&ks);
}

static void test_clear(void **state)
{
    (void)state;
    struct keyset ks = {0};
    keyset_clear(&ks); /* never used */
    /* a large, well-used table is kept and emptied */
    for (uint64_t i = 0; i < 65536; i++)
        keyset_add(&ks, h_of(i));
    size_t cap = ks.cap;
    keyset_clear(&ks);
    assert_int_equal(ks.used, 0);
    assert_int_equal(ks.cap, cap);
    for (uint64_t i = 0; i < 65536; i++)
        assert_true(keyset_add(&ks, h_of(i)));
    keyset_clear(&ks);
    /* a large table holding a few keys is given back */
    for (uint64_t i = 0; i < 10; i++)
        keyset_add(&ks, h_of(i));
    keyset_clear(&ks);
    assert_int_equal(ks.cap, 0);
    assert_null(ks.slots);
    for (uint64_t i = 0; i < 10; i++)
        assert_true(keyset_add(&ks, h_of(i)));
    /* a small one is emptied in place */
    cap = ks.cap;
    keyset_clear(&ks);
    assert_int_equal(ks.cap, cap);
    for (uint64_t i = 0; i < 10; i++)
        assert_true(keyset_add(&ks, h_of(i)));
    keyset_fini(&ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
