/* Iceberg REST catalog client: placeholder replaced below. */
#include "lake/ice_catalog.h"
#include "util/err.h"

int ice_catalog_rest_open(struct lake_store *store, const char *catalog_name, const char *uri,
                          const char *warehouse, const char *token, struct ice_catalog **out,
                          char *err, size_t errlen)
{
    *out = NULL;
    return cdc_fail(err, errlen, CDC_ENOTSUP, "REST catalog: not built");
}
