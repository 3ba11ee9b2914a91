#include <stdlib.h>
#include <string.h>

#include "config/cfg_env.h"
#include "util/err.h"
#include "util/mem.h"

static int env_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int env_name_char(char c)
{
    return env_name_start(c) || (c >= '0' && c <= '9');
}

/* Expands one reference starting just after "${" at in[*pos]; on success
 * appends the value to b and leaves *pos after the closing brace. */
static int env_expand_ref(const char *in, size_t len, size_t *pos, struct buf *b, struct buf *msg,
                          bool *unset)
{
    size_t i = *pos, name_start = i;
    if (i >= len || !env_name_start(in[i]))
        goto malformed;
    while (i < len && env_name_char(in[i]))
        i++;
    size_t name_len = i - name_start;
    if (i >= len)
        goto unterminated;

    const char *def = NULL;
    size_t def_len = 0;
    if (in[i] == ':') {
        if (i + 1 >= len || in[i + 1] != '-')
            goto malformed;
        i += 2;
        def = in + i;
        while (i < len && in[i] != '}') {
            if (in[i] == '$' && i + 1 < len && in[i + 1] == '{') {
                buf_puts(msg, "a ${...} reference inside a default value is not supported");
                return CDC_EINVAL;
            }
            i++;
        }
        if (i >= len)
            goto unterminated;
        def_len = (size_t)(in + i - def);
    } else if (in[i] != '}') {
        goto malformed;
    }

    char *name = xstrndup(in + name_start, name_len);
    const char *val = getenv(name);
    if (def && (!val || !*val)) {
        buf_put(b, def, def_len);
    } else if (!val) {
        if (!unset || !*unset)
            buf_printf(msg, "environment variable %s is not set", name);
        free(name);
        if (!unset)
            return CDC_EINVAL;
        *unset = true; /* tolerated: expands to nothing, msg names it */
        *pos = i + 1;
        return 0;
    } else {
        buf_puts(b, val);
    }
    free(name);
    *pos = i + 1;
    return 0;

unterminated:
    buf_puts(msg, "unterminated ${ (write $${ for a literal ${)");
    return CDC_EINVAL;
malformed:
    buf_puts(msg, "malformed variable reference: expected ${NAME} or ${NAME:-default}");
    return CDC_EINVAL;
}

int cfg_env_expand(const char *in, size_t len, char **out, struct buf *msg, bool *unset)
{
    *out = NULL;
    if (unset)
        *unset = false;
    if (!memchr(in, '$', len)) {
        *out = xstrndup(in, len);
        return 0;
    }
    struct buf b = BUF_INIT;
    size_t i = 0;
    while (i < len) {
        if (in[i] == '$' && i + 2 < len && in[i + 1] == '$' && in[i + 2] == '{') {
            buf_put(&b, "${", 2);
            i += 3;
        } else if (in[i] == '$' && i + 1 < len && in[i + 1] == '{') {
            i += 2;
            int rc = env_expand_ref(in, len, &i, &b, msg, unset);
            if (rc) {
                buf_fini(&b);
                return rc;
            }
        } else {
            buf_putc(&b, in[i++]);
        }
    }
    buf_reserve(&b, 0); /* the result may be empty: "${X:-}" */
    b.p[b.len] = '\0';
    *out = b.p;
    return 0;
}
