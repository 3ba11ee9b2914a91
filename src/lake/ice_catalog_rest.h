/* The REST catalog client; declared with the others in ice_catalog.h.
 * Not thread-safe: one curl handle per catalog. */
#ifndef CDC_LAKE_ICE_CATALOG_REST_H
#define CDC_LAKE_ICE_CATALOG_REST_H

#include "lake/ice_catalog.h"

#endif
