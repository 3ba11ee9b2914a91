/* Unit tests for the Thrift compact protocol (src/lake/thrift.c): field
 * header deltas and long forms, zigzag varints at the limits, bools in
 * headers and lists, list headers short and long, nested structs, and the
 * decoder's round trip and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lake/thrift.h"
#include "util/buf.h"
#include "util/err.h"

static void assert_bytes(const struct buf *b, const uint8_t *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->p, want, n);
}

static void test_field_headers(void **state)
{
    struct buf b = BUF_INIT;
    struct thrift_w w;
    thrift_w_init(&w, &b);
    thrift_field_i32(&w, 1, 1);       /* delta 1: 0x15, zigzag(1) = 2 */
    thrift_field_i32(&w, 16, -1);     /* delta 15: 0xf5, zigzag(-1) = 1 */
    thrift_field_i64(&w, 40, 0);      /* delta 24: long form 0x06, zigzag i16 40 = 80 */
    thrift_field_bool(&w, 41, true);  /* 0x11 */
    thrift_field_bool(&w, 42, false); /* 0x12 */
    thrift_field_i32(&w, 3, 5);       /* going back: long form 0x05, zigzag(3) = 6 */
    thrift_struct_end(&w);
    const uint8_t want[] = {0x15, 0x02, 0xf5, 0x01, 0x06, 0x50, 0x00,
                            0x11, 0x12, 0x05, 0x06, 0x0a, 0x00};
    assert_bytes(&b, want, sizeof want);
    buf_fini(&b);
}

static void test_zigzag_limits(void **state)
{
    assert_int_equal(thrift_zigzag(0), 0);
    assert_int_equal(thrift_zigzag(-1), 1);
    assert_int_equal(thrift_zigzag(1), 2);
    assert_int_equal(thrift_zigzag(INT64_MAX), UINT64_MAX - 1);
    assert_int_equal(thrift_zigzag(INT64_MIN), UINT64_MAX);
    struct buf b = BUF_INIT;
    thrift_put_uvarint(&b, UINT64_MAX);
    assert_int_equal(b.len, 10);
    assert_int_equal((uint8_t)b.p[9], 0x01);
    buf_reset(&b);
    thrift_put_uvarint(&b, 300);
    const uint8_t want[] = {0xac, 0x02};
    assert_bytes(&b, want, 2);
    buf_fini(&b);
}

static void test_lists_and_nesting(void **state)
{
    struct buf b = BUF_INIT;
    struct thrift_w w;
    thrift_w_init(&w, &b);
    thrift_field_list(&w, 1, THRIFT_I32, 3); /* 0x19, (3 << 4) | 5 */
    thrift_elem_i32(&w, 0);
    thrift_elem_i32(&w, 3);
    thrift_elem_i32(&w, 8);
    thrift_field_list(&w, 2, THRIFT_BINARY, 15); /* 0x19; long form: 0xf8, varint 15 */
    for (int i = 0; i < 15; i++)
        thrift_elem_binary(&w, "x", 1);
    thrift_field_struct(&w, 3); /* 0x1c */
    thrift_field_i32(&w, 1, 7); /* ids restart inside */
    thrift_struct_end(&w);
    thrift_field_i32(&w, 4, 1); /* delta from 3, not from the inner 1 */
    thrift_struct_end(&w);
    const uint8_t *p = (const uint8_t *)b.p;
    assert_int_equal(p[0], 0x19);
    assert_int_equal(p[1], 0x35);
    assert_int_equal(p[5], 0x19);
    assert_int_equal(p[6], 0xf8);
    assert_int_equal(p[7], 15);
    size_t at = 8 + 15 * 2;
    assert_int_equal(p[at], 0x1c);
    assert_int_equal(p[at + 1], 0x15);
    assert_int_equal(p[at + 3], 0x00);
    assert_int_equal(p[at + 4], 0x15);

    struct thrift_node root;
    size_t used;
    assert_int_equal(thrift_decode(p, b.len, &root, &used), 0);
    assert_int_equal(used, b.len);
    assert_int_equal(thrift_get(&root, 1)->nkids, 3);
    assert_int_equal(thrift_get(&root, 1)->kids[2].i, 8);
    assert_int_equal(thrift_get(&root, 2)->nkids, 15);
    assert_int_equal(thrift_get(thrift_get(&root, 3), 1)->i, 7);
    assert_int_equal(thrift_get(&root, 4)->i, 1);
    struct buf again = BUF_INIT;
    thrift_encode_node(&again, &root);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.p, b.p, b.len);
    thrift_node_fini(&root);
    buf_fini(&again);
    buf_fini(&b);
}

static void test_decode_other_types(void **state)
{
    /* i8 -3, i16 -300, double 1.5, bool list [true, false], map {1: "a"},
     * set of one i64 */
    const uint8_t in[] = {0x13, 0xfd,                                       /* 1: i8 */
                          0x14, 0xd7, 0x04,                                 /* 2: i16 */
                          0x17, 0,    0,    0,    0,    0,   0, 0xf8, 0x3f, /* 3: double */
                          0x19, 0x21, 0x01, 0x02,                           /* 4: list<bool> */
                          0x1b, 0x01, 0x58, 0x02, 0x01, 'a',                /* 5: map<i32,bin> */
                          0x1a, 0x16, 0x04,                                 /* 6: set<i64> */
                          0x00};
    struct thrift_node root;
    size_t used;
    assert_int_equal(thrift_decode(in, sizeof in, &root, &used), 0);
    assert_int_equal(used, sizeof in);
    assert_int_equal(thrift_get(&root, 1)->i, -3);
    assert_int_equal(thrift_get(&root, 2)->i, -300);
    assert_true(thrift_get(&root, 3)->d == 1.5);
    assert_int_equal(thrift_get(&root, 4)->kids[0].i, 1);
    assert_int_equal(thrift_get(&root, 4)->kids[1].i, 0);
    assert_int_equal(thrift_get(&root, 5)->kids[0].i, 1);
    assert_int_equal(thrift_get(&root, 5)->kids[1].len, 1);
    assert_int_equal(thrift_get(&root, 6)->kids[0].i, 2);
    struct buf again = BUF_INIT;
    thrift_encode_node(&again, &root);
    assert_int_equal(again.len, sizeof in);
    assert_memory_equal(again.p, in, sizeof in);
    buf_fini(&again);
    thrift_node_fini(&root);
}

static void test_decode_rejects(void **state)
{
    struct thrift_node root;
    const uint8_t truncated[] = {0x15};
    assert_int_equal(thrift_decode(truncated, 1, &root, NULL), CDC_EINVAL);
    const uint8_t no_stop[] = {0x15, 0x02};
    assert_int_equal(thrift_decode(no_stop, 2, &root, NULL), CDC_EINVAL);
    const uint8_t bad_type[] = {0x1d, 0x00};
    assert_int_equal(thrift_decode(bad_type, 2, &root, NULL), CDC_EINVAL);
    const uint8_t huge_list[] = {0x19, 0xf5, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    assert_int_equal(thrift_decode(huge_list, sizeof huge_list, &root, NULL), CDC_EINVAL);
    const uint8_t long_binary[] = {0x18, 0x10, 'a', 0x00};
    assert_int_equal(thrift_decode(long_binary, sizeof long_binary, &root, NULL), CDC_EINVAL);
    const uint8_t i32_overflow[] = {0x15, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00};
    assert_int_equal(thrift_decode(i32_overflow, sizeof i32_overflow, &root, NULL), CDC_EINVAL);
    uint8_t deep[80];
    for (int i = 0; i < 80; i++)
        deep[i] = 0x1c; /* struct in struct in … */
    assert_int_equal(thrift_decode(deep, sizeof deep, &root, NULL), CDC_EINVAL);
    assert_int_equal(root.nkids, 0); /* left empty */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_headers),     cmocka_unit_test(test_zigzag_limits),
        cmocka_unit_test(test_lists_and_nesting), cmocka_unit_test(test_decode_other_types),
        cmocka_unit_test(test_decode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
