/* The SQL catalog (SQLite); declared with the others in ice_catalog.h. */
#ifndef CDC_LAKE_ICE_CATALOG_SQL_H
#define CDC_LAKE_ICE_CATALOG_SQL_H

#include "lake/ice_catalog.h"

#endif
