/* The S3 store (s3:// URIs); opened through lake_store_open with a struct
 * lake_s3_cfg.  Not thread-safe: one store per thread (it keeps one curl
 * handle for connection reuse). */
#ifndef CDC_LAKE_LAKE_STORE_S3_H
#define CDC_LAKE_LAKE_STORE_S3_H

#include "lake/lake_store.h"

#endif
