/* ${VAR} and ${VAR:-default} substitution in configuration values. */
#ifndef CDC_CONFIG_CFG_ENV_H
#define CDC_CONFIG_CFG_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* Expands every ${NAME} and ${NAME:-default} in in[0..len) from the process
 * environment; "$${" stands for a literal "${".  Like the shell, the default
 * is used when NAME is unset or empty; ${NAME} with NAME unset is an error.
 * NAME is [A-Za-z_][A-Za-z0-9_]*; the default is literal text up to the
 * first "}".  Returns 0 and a fresh string in *out (the caller frees it), or
 * CDC_EINVAL with one sentence in msg that never repeats the input text, so
 * it is safe for secrets.
 *
 * With unset non-NULL, a ${NAME} whose NAME is unset is tolerated instead:
 * it expands to nothing, *unset becomes true and msg says which variable
 * (the first one) was missing; *unset is false otherwise. */
int cfg_env_expand(const char *in, size_t len, char **out, struct buf *msg, bool *unset);

#endif
