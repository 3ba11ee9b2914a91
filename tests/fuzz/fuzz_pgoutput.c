/* libFuzzer target for the pgoutput parser: any bytes, streamed or not, must
 * parse or be rejected, and whatever parses must be walkable. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "source/pg/pgoutput.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool streaming = data[0] & 1;
    struct pgo_msg m;
    char err[256];
    if (pgo_parse(data + 1, size - 1, streaming, &m, err, sizeof err) != 0)
        return 0;
    volatile size_t sink = 0;
    switch (m.type) {
    case PGO_RELATION: {
        const uint8_t *cur = m.relation.cols;
        for (uint16_t i = 0; i < m.relation.ncols; i++) {
            struct pgo_relcol c;
            pgo_relcol_next(&cur, &c);
            sink += strlen(c.name) + c.type_oid;
        }
        break;
    }
    case PGO_INSERT:
    case PGO_UPDATE:
    case PGO_DELETE: {
        const struct pgo_tuple *tuples[2] = {m.change.old_kind ? &m.change.old : NULL,
                                             m.type != PGO_DELETE ? &m.change.new : NULL};
        for (int t = 0; t < 2; t++) {
            if (!tuples[t])
                continue;
            const uint8_t *cur = tuples[t]->p;
            for (uint16_t i = 0; i < tuples[t]->ncols; i++) {
                struct pgo_col c;
                pgo_tuple_next(&cur, &c);
                if (c.len)
                    sink += (unsigned char)c.data[c.len - 1];
            }
            if (cur != tuples[t]->p + tuples[t]->len)
                __builtin_trap();
        }
        break;
    }
    case PGO_TRUNCATE:
        for (uint32_t i = 0; i < m.truncate.nrels; i++)
            sink += pgo_truncate_relid(&m, i);
        break;
    case PGO_MESSAGE:
        if (m.message.len)
            sink += m.message.content[m.message.len - 1] + strlen(m.message.prefix);
        break;
    default:
        break;
    }
    (void)sink;
    return 0;
}
