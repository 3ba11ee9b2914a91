/* The file sink's own keys (its block's, besides the common batch_size and
 * flush_interval_seconds): sink_cfg.conf of a file sink. */
#ifndef CDC_SINK_FILE_FILE_SINK_H
#define CDC_SINK_FILE_FILE_SINK_H

#include <stdbool.h>

#include "sink/registry.h"

struct file_sink_cfg {
    char *path; /* required */
    bool fsync; /* default true: a batch counts only after fsync */
};

extern const struct sink_type sink_file_type;

#endif
