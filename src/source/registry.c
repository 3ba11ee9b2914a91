/* Source registry: one line per source type.  NULL: this build does not
 * implement it, and the CLI refuses the pipeline plainly. */
#include "source/source.h"

extern const struct source_ops pgsrc_ops;
#ifdef CDC_HAVE_MARIADB
extern const struct source_ops mysrc_ops;
#define MYSQL_OPS (&mysrc_ops)
#else
#define MYSQL_OPS NULL /* built without libmariadb */
#endif

static const struct {
    enum source_type type;
    const struct source_ops *ops;
} sources[] = {
    {SOURCE_POSTGRES, &pgsrc_ops},
    {SOURCE_MYSQL, MYSQL_OPS},
    {SOURCE_MONGODB, NULL},
    {SOURCE_SQLSERVER, NULL},
};

const struct source_ops *source_ops_find(enum source_type type)
{
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++)
        if (sources[i].type == type)
            return sources[i].ops;
    return NULL;
}

void source_json_ctx(const struct config *cfg, const char *version, struct json_ctx *out)
{
    const struct source_ops *ops = source_ops_find(cfg->source.source_type);
    *out = (struct json_ctx){
        .pipeline_id = cfg->pipeline_id,
        .connector = ops ? ops->connector : config_source_type_name(cfg->source.source_type),
        .db = cfg->source.database,
        .version = version,
        .source = ops ? ops->json_source : NULL,
        .multi_stream = ops && ops->multi_stream,
    };
    json_ctx_prepare(out);
}
