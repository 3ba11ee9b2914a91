/* Picks the store implementation for a warehouse URI (see lake_store.h). */
#include <string.h>

#include "lake/lake_store.h"
#include "util/err.h"

int lake_store_open(const char *warehouse, const struct lake_s3_cfg *s3, struct lake_store **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (strncmp(warehouse, "file:///", 8) == 0)
        return lake_store_file_open(out, err, errlen);
    if (strncmp(warehouse, "s3://", 5) == 0) {
        if (!s3)
            return cdc_fail(err, errlen, CDC_EINVAL, "warehouse %s: S3 settings missing",
                            warehouse);
        return lake_store_s3_open(s3, out, err, errlen);
    }
    return cdc_fail(err, errlen, CDC_EINVAL,
                    "warehouse %s: expected file:///absolute/path or s3://bucket/prefix",
                    warehouse);
}

void lake_store_free(struct lake_store *st)
{
    if (st)
        st->ops->free(st);
}
