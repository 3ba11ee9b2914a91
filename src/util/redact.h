/* What may be shown of a URL or a connection string.  Every place that
 * prints one (cdc validate, logs, /status, error messages) goes through
 * redact_url, so they all agree on what is secret. */
#ifndef CDC_UTIL_REDACT_H
#define CDC_UTIL_REDACT_H

#include <stddef.h>

/* Writes s into out[outlen] with its credentials masked as "***":
 *   - a URL ("scheme://…"): the user information ("user:password@") becomes
 *     "***@", each query parameter keeps its name and loses its value
 *     ("?token=abc&x=1" becomes "?token=***&x=***"; a parameter without '='
 *     becomes "***"), and the fragment is dropped;
 *   - a libpq key=value connection string ("host=h password=pw"): the values
 *     of password, sslpassword and every key ending in "password", "secret"
 *     or "token" become "***";
 *   - anything else is copied as it is.
 * Scheme, host, port and path stay, so people can tell which destination is
 * meant.  Always NUL-terminates (outlen > 0), cutting at outlen.  Returns out. */
char *redact_url(const char *s, char *out, size_t outlen);

/* Enough for any URL cdc shows in full. */
#define REDACT_URL_MAX 512

#endif
