/* New Parquet files of a table (see ice_writer.h). */
#include <stdlib.h>
#include <string.h>

#include "lake/ice_writer.h"
#include "util/mem.h"

static int to_upload(void *arg, const void *data, size_t n, char *err, size_t errlen)
{
    return lake_upload_write(arg, data, n, err, errlen);
}

int ice_file_writer_open(struct ice_file_writer *w, struct ice_table *t,
                         const struct ice_schema *sc, const struct parquet_opts *o, char *err,
                         size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->path = ice_table_new_path(t, "data", ".parquet");
    int rc = lake_upload_open(t->store, w->path, &w->up, err, errlen);
    if (rc == 0)
        rc = parquet_writer_new(&w->pw, sc, o, to_upload, w->up, err, errlen);
    if (rc)
        ice_file_writer_abort(w);
    return rc;
}

int ice_file_writer_finish(struct ice_file_writer *w, enum ice_content content,
                           const struct ice_pvalue *part, uint32_t npart, struct ice_data_file *df,
                           char *err, size_t errlen)
{
    struct parquet_file_info info;
    int rc = parquet_writer_finish(w->pw, &info, err, errlen);
    parquet_writer_free(w->pw);
    w->pw = NULL;
    if (rc) {
        ice_file_writer_abort(w);
        return rc;
    }
    struct lake_upload *up = w->up;
    w->up = NULL;
    rc = lake_upload_commit(up, err, errlen);
    if (rc == 0) {
        ice_data_file_init(df, content, w->path, &info);
        df->npart = npart;
        df->part = xcalloc(npart ? npart : 1, sizeof *df->part);
        for (uint32_t k = 0; k < npart; k++) {
            df->part[k] = part[k];
            df->part[k].s = part[k].s ? xstrdup(part[k].s) : NULL;
        }
    }
    parquet_file_info_fini(&info);
    free(w->path);
    w->path = NULL;
    return rc;
}

void ice_file_writer_abort(struct ice_file_writer *w)
{
    parquet_writer_free(w->pw);
    if (w->up)
        lake_upload_abort(w->up);
    free(w->path);
    memset(w, 0, sizeof *w);
}
