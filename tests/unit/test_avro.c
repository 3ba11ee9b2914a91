/* Unit tests for the Avro encoder, schema parser, decoder and object
 * container reader (src/lake/avro.c): zigzag varints, the container layout
 * byte by byte, unions/arrays/maps/fixed/enums and named references, deflate
 * blocks, re-encoding to the same bytes, and the refusals of malformed
 * files.  avsc reads what the writer makes in tests/integration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "lake/avro.h"
#include "util/buf.h"
#include "util/err.h"

static const uint8_t SYNC[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void test_zigzag_varints(void **state)
{
    struct {
        int64_t v;
        const char *bytes;
        size_t n;
    } cases[] = {
        {0, "\x00", 1},
        {-1, "\x01", 1},
        {1, "\x02", 1},
        {-64, "\x7f", 1},
        {64, "\x80\x01", 2},
        {-65, "\x81\x01", 2},
        {INT64_MAX, "\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10},
        {INT64_MIN, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10},
    };
    struct avro_schema *s;
    char err[128];
    assert_int_equal(avro_schema_parse("\"long\"", 6, &s, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b = BUF_INIT;
        avro_put_long(&b, cases[i].v);
        assert_int_equal(b.len, cases[i].n);
        assert_memory_equal(b.p, cases[i].bytes, cases[i].n);
        const uint8_t *p = (const uint8_t *)b.p;
        struct avro_value v;
        assert_int_equal(avro_decode(s, &p, p + b.len, &v), 0);
        assert_true(v.l == cases[i].v);
        avro_value_fini(&v);
        buf_fini(&b);
    }
    /* an 11-byte varint and a truncated one are refused */
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t *p = bad;
    struct avro_value v;
    assert_int_equal(avro_decode(s, &p, bad + sizeof bad, &v), CDC_EINVAL);
    p = bad;
    assert_int_equal(avro_decode(s, &p, bad + 3, &v), CDC_EINVAL);
    avro_schema_free(s);
}

static void test_container_layout(void **state)
{
    struct buf b = BUF_INIT;
    struct avro_kv meta[] = {{"format-version", "2"}};
    avro_ocf_header(&b, "\"int\"", meta, 1, SYNC);
    const uint8_t head[] = {'O', 'b', 'j', 1,   6 /* 3 entries */,
                            22,  'a', 'v', 'r', 'o',
                            '.', 's', 'c', 'h', 'e',
                            'm', 'a', 10,  '"', 'i',
                            'n', 't', '"'};
    assert_memory_equal(b.p, head, sizeof head);
    assert_non_null(memmem(b.p, b.len,
                           "\x14"
                           "avro.codec"
                           "\x08"
                           "null",
                           16));
    assert_memory_equal(b.p + b.len - 17, "\x00", 1); /* end of the map */
    assert_memory_equal(b.p + b.len - 16, SYNC, 16);
    struct buf rec = BUF_INIT;
    avro_put_long(&rec, 7);
    avro_put_long(&rec, -7);
    avro_ocf_block(&b, rec.p, rec.len, 2, SYNC);
    struct avro_ocf f;
    char err[128];
    assert_int_equal(avro_ocf_read((const uint8_t *)b.p, b.len, &f, err, sizeof err), 0);
    assert_int_equal(f.nrecords, 2);
    assert_int_equal(f.records[1].l, -7);
    assert_string_equal(avro_ocf_meta(&f, "format-version"), "2");
    assert_string_equal(avro_ocf_meta(&f, "avro.codec"), "null");
    assert_null(avro_ocf_meta(&f, "nope"));
    avro_ocf_fini(&f);
    buf_fini(&rec);
    buf_fini(&b);
}

static const char RICH[] =
    "{\"type\":\"record\",\"name\":\"r\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\",\"field-id\":1},"
    "{\"name\":\"opt\",\"type\":[\"null\",\"string\"],\"field-id\":2},"
    "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"int\",\"element-id\":4},"
    "\"field-id\":3},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"double\"},\"field-id\":5},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"f4\",\"size\":4},\"field-id\":6},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"color\",\"symbols\":[\"R\",\"G\"]}},"
    "{\"name\":\"again\",\"type\":\"f4\"},"
    "{\"name\":\"b\",\"type\":\"boolean\"},{\"name\":\"fl\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":{\"type\":\"int\",\"logicalType\":\"date\"}}]}";

static void put_rich(struct buf *b, int64_t id, bool with_opt)
{
    avro_put_long(b, id);
    if (with_opt) {
        avro_put_long(b, 1);
        avro_put_string(b, "hi");
    } else {
        avro_put_long(b, 0);
    }
    avro_put_long(b, 2); /* array block of 2 */
    avro_put_long(b, 10);
    avro_put_long(b, -20);
    avro_put_long(b, 0);
    avro_put_long(b, 1); /* map block of 1 */
    avro_put_string(b, "k");
    avro_put_double(b, 2.5);
    avro_put_long(b, 0);
    buf_put(b, "abcd", 4);
    avro_put_long(b, 1); /* G */
    buf_put(b, "wxyz", 4);
    avro_put_bool(b, true);
    avro_put_float(b, 0.5f);
    avro_put_long(b, 19000);
}

static void test_rich_roundtrip(void **state)
{
    struct buf file = BUF_INIT, body = BUF_INIT;
    avro_ocf_header(&file, RICH, NULL, 0, SYNC);
    put_rich(&body, 1, true);
    put_rich(&body, 2, false);
    avro_ocf_block(&file, body.p, body.len, 2, SYNC);
    struct avro_ocf f;
    char err[128];
    assert_int_equal(avro_ocf_read((const uint8_t *)file.p, file.len, &f, err, sizeof err), 0);
    assert_int_equal(f.nrecords, 2);
    assert_int_equal(f.schema->field_ids[2], 3);
    assert_int_equal(f.schema->field_ids[6], -1);
    const struct avro_value *r = &f.records[0];
    assert_int_equal(avro_get_long(r, "id", -1), 1);
    char *s = avro_get_string(r, "opt");
    assert_string_equal(s, "hi");
    free(s);
    assert_null(avro_get(&f.records[1], "opt")); /* the null branch */
    assert_int_equal(avro_get(r, "xs")->n, 2);
    assert_int_equal(avro_get(r, "xs")->items[1].l, -20);
    assert_string_equal(avro_get(r, "m")->keys[0], "k");
    assert_true(avro_get(r, "m")->items[0].d == 2.5);
    assert_memory_equal(avro_get(r, "again")->p, "wxyz", 4);
    assert_int_equal(avro_get(r, "e")->l, 1);
    assert_int_equal(avro_get_long(r, "d", 0), 19000);
    /* re-encoding gives the same bytes */
    struct buf again = BUF_INIT;
    for (size_t i = 0; i < f.nrecords; i++)
        avro_encode(&again, &f.records[i]);
    assert_int_equal(again.len, body.len);
    assert_memory_equal(again.p, body.p, body.len);
    avro_ocf_fini(&f);
    buf_fini(&again);
    buf_fini(&file);
    buf_fini(&body);
}

static void test_deflate_blocks_and_recursion(void **state)
{
    /* a linked list (a recursive named record), in a deflate block as
     * other writers make them */
    const char *schema = "{\"type\":\"record\",\"name\":\"node\",\"fields\":[{\"name\":\"v\","
                         "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"node\"]}]}";
    struct buf body = BUF_INIT;
    avro_put_long(&body, 1);
    avro_put_long(&body, 1);
    avro_put_long(&body, 2);
    avro_put_long(&body, 0);
    uint8_t z[256];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)body.p;
    zs.avail_in = (uInt)body.len;
    zs.next_out = z;
    zs.avail_out = sizeof z;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t zn = sizeof z - zs.avail_out;
    deflateEnd(&zs);
    struct buf file = BUF_INIT;
    avro_ocf_header(&file, schema, NULL, 0, SYNC);
    /* the header says null; make a deflate file by hand */
    char *codec = memmem(file.p, file.len, "\x08null", 5);
    assert_non_null(codec);
    struct buf f2 = BUF_INIT;
    buf_put(&f2, file.p, (size_t)(codec - file.p));
    buf_put(&f2,
            "\x0e"
            "deflate",
            8);
    buf_put(&f2, codec + 5, file.len - (size_t)(codec + 5 - file.p));
    avro_ocf_block(&f2, z, zn, 1, SYNC);
    struct avro_ocf f;
    char err[128];
    assert_int_equal(avro_ocf_read((const uint8_t *)f2.p, f2.len, &f, err, sizeof err), 0);
    assert_int_equal(f.nrecords, 1);
    const struct avro_value *next = avro_get(&f.records[0], "next");
    assert_non_null(next);
    assert_int_equal(avro_get_long(next, "v", 0), 2);
    assert_null(avro_get(next, "next"));
    avro_ocf_fini(&f);
    buf_fini(&f2);
    buf_fini(&file);
    buf_fini(&body);
}

static void test_rejects(void **state)
{
    struct avro_ocf f;
    char err[256];
    struct buf good = BUF_INIT, body = BUF_INIT;
    avro_ocf_header(&good, "\"long\"", NULL, 0, SYNC);
    avro_put_long(&body, 5);
    avro_ocf_block(&good, body.p, body.len, 1, SYNC);
    assert_int_equal(avro_ocf_read((const uint8_t *)good.p, good.len, &f, err, sizeof err), 0);
    avro_ocf_fini(&f);
    /* every truncation fails cleanly, except right after the header: a
     * container without blocks is a valid, empty file */
    size_t header = good.len - (2 + body.len + 16);
    for (size_t n = 0; n < good.len; n++) {
        int rc = avro_ocf_read((const uint8_t *)good.p, n, &f, err, sizeof err);
        assert_int_equal(rc, n == header ? 0 : CDC_EINVAL);
        if (rc == 0) {
            assert_int_equal(f.nrecords, 0);
            avro_ocf_fini(&f);
        }
    }
    /* a wrong sync marker after the block */
    good.p[good.len - 1] ^= 1;
    assert_int_equal(avro_ocf_read((const uint8_t *)good.p, good.len, &f, err, sizeof err),
                     CDC_EINVAL);
    assert_non_null(strstr(err, "sync"));
    good.p[good.len - 1] ^= 1;
    /* a block claiming more records than it holds */
    struct buf lie = BUF_INIT;
    avro_ocf_header(&lie, "\"long\"", NULL, 0, SYNC);
    avro_ocf_block(&lie, body.p, body.len, 2, SYNC);
    assert_int_equal(avro_ocf_read((const uint8_t *)lie.p, lie.len, &f, err, sizeof err),
                     CDC_EINVAL);
    /* schemas: unknown names, records without fields, empty unions */
    struct avro_schema *s;
    const char *bad[] = {"\"nope\"", "{\"type\":\"record\",\"name\":\"x\"}",
                         "[]",       "{}",
                         "12",       "{\"type\":\"fixed\",\"name\":\"f\",\"size\":-1}",
                         "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(avro_schema_parse(bad[i], strlen(bad[i]), &s, err, sizeof err),
                         CDC_EINVAL);
    buf_fini(&lie);
    buf_fini(&good);
    buf_fini(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zigzag_varints), cmocka_unit_test(test_container_layout),
        cmocka_unit_test(test_rich_roundtrip), cmocka_unit_test(test_deflate_blocks_and_recursion),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
