/* libFuzzer target for the configuration loader.  The input is a pipeline
 * file, optionally followed by a NUL byte and a platform file. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t pipe_len = nul ? (size_t)(nul - text) : size;
    const char *plat = nul ? nul + 1 : NULL;
    size_t plat_len = nul ? size - pipe_len - 1 : 0;

    struct config *cfg = NULL;
    struct cfg_errors errs = {0};
    int rc = config_load_text(&cfg, "pipeline.yaml", text, pipe_len, "platform.yaml", plat,
                              plat_len, &errs);
    /* the contract: either a config and no errors, or errors and no config */
    if ((rc == 0) != (cfg != NULL) || (rc == 0) != (errs.n == 0))
        __builtin_trap();
    for (size_t i = 0; i < errs.n; i++)
        if (strchr(errs.msgs[i], '\n'))
            __builtin_trap(); /* every message is one line */
    config_free(cfg);
    cfg_errors_fini(&errs);
    return 0;
}
