/* libFuzzer target for the Thrift compact decoder (the reader of Parquet
 * footers in tests): whatever decodes must re-encode to bytes that decode
 * and re-encode to the same bytes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lake/thrift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct thrift_node root, again;
    size_t used;
    if (thrift_decode(data, size, &root, &used) != 0)
        return 0;
    if (used > size)
        __builtin_trap();
    struct buf a = BUF_INIT, b = BUF_INIT;
    thrift_encode_node(&a, &root);
    if (thrift_decode((const uint8_t *)a.p, a.len, &again, &used) != 0 || used != a.len)
        __builtin_trap();
    thrift_encode_node(&b, &again);
    if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len) != 0))
        __builtin_trap();
    thrift_node_fini(&root);
    thrift_node_fini(&again);
    buf_fini(&a);
    buf_fini(&b);
    return 0;
}
