/* The file sink's checkpoint, for sources with several streams.
 *
 * With one stream the file is its own checkpoint: every line carries its
 * position, and the sink reads the newest back at open.  A source with
 * several streams (a Kafka consumer: one per partition) defeats that: its
 * events' stream positions are Kafka offsets while the lines show the
 * original source's positions, and positions of different streams cannot be
 * ordered.  Such a file gets a checkpoint beside it, "<path>.cdc-checkpoint",
 * written after every flush once the data is fdatasync'd:
 *
 *   two slots of FILE_CKPT_SLOT bytes, written in turn in place (a torn
 *   write leaves the other one valid), each
 *     "CDCK"  u32 version (1)  u64 generation  u64 data_len  u32 nstreams
 *     nstreams x (u32 stream, u64 lsn, u64 idx)
 *     u64 checksum of everything before it
 *   (little-endian).  The valid slot of the highest generation counts:
 *   the file's first data_len bytes hold everything up to each stream's
 *   position, and nothing after data_len was ever acknowledged (a crash
 *   between the data's fdatasync and the checkpoint's), so the sink cuts it
 *   off at open.
 *
 * The checkpoint is created whole under a temporary name and renamed, so
 * one that exists always has a valid slot.  The extra fdatasync is paid
 * only by such pipelines; single-stream files have no checkpoint and are
 * read as before. */
#ifndef CDC_SINK_FILE_FILE_CKPT_H
#define CDC_SINK_FILE_FILE_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/posmap.h"

#define FILE_CKPT_SUFFIX ".cdc-checkpoint"
#define FILE_CKPT_SLOT   65536u
/* Streams one slot holds (about 3,270). */
#define FILE_CKPT_MAX_STREAMS ((FILE_CKPT_SLOT - 36u) / 20u)

struct file_ckpt;

/* "<data_path>.cdc-checkpoint", heap. */
char *file_ckpt_path(const char *data_path);
/* Opens the checkpoint of data_path.  *found says whether it existed;
 * create: create it if not (its first slot then holds data_len and pos, and
 * the file and its directory entry are durable on return).  Without create
 * and without a file, *out is NULL and 0 is returned.  err names the file. */
int file_ckpt_open(struct file_ckpt **out, const char *data_path, bool create, off_t data_len,
                   const struct cdc_posmap *pos, bool *found, char *err, size_t errlen);
/* The newest valid slot: *data_len and *pos (cleared first).  CDC_EINVAL
 * with err when neither slot is valid. */
int file_ckpt_read(struct file_ckpt *ck, off_t *data_len, struct cdc_posmap *pos, char *err,
                   size_t errlen);
/* Writes the next slot: the file's first data_len bytes hold everything up
 * to pos.  Durable on return when sync (fdatasync).  err names the file. */
int file_ckpt_write(struct file_ckpt *ck, off_t data_len, const struct cdc_posmap *pos, bool sync,
                    char *err, size_t errlen);
/* NULL is a no-op. */
void file_ckpt_close(struct file_ckpt *ck);

#endif
