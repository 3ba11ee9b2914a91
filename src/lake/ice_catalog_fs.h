/* The filesystem catalog; declared with the others in ice_catalog.h. */
#ifndef CDC_LAKE_ICE_CATALOG_FS_H
#define CDC_LAKE_ICE_CATALOG_FS_H

#include "lake/ice_catalog.h"

#endif
