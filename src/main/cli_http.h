/* Talking to a running pipeline's HTTP endpoints (`cdc health`, `cdc
 * status`, `cdc pause`, `cdc resume`): where they are, and one request. */
#ifndef CDC_MAIN_CLI_HTTP_H
#define CDC_MAIN_CLI_HTTP_H

#include "config/config.h"
#include "main/cli.h"
#include "util/buf.h"

/* "http://HOST:PORT" of a pipeline serving on pl's health_bind and
 * health_port (a wildcard bind is reached on loopback).  NULL after
 * printing why not: health_enabled is false (1), or health_port is 0 (2);
 * *rc says which. */
char *cli_api_base(const struct platform_cfg *pl, int *rc);
/* The base of a --url: the URL without a trailing slash and without the
 * given suffix ("/status") when it ends with it. */
char *cli_api_base_from_url(const char *url, const char *suffix);

/* Sends METHOD base+path (a bearer token when token is non-empty; an empty
 * body for POST) and reads the answer into body.  0 with *status set, or -1
 * with a sentence in err (nothing answers; the URL's password, if any, is
 * never shown). */
int cli_http(const char *method, const char *base, const char *path, const char *token,
             struct buf *body, long *status, char *err, size_t errlen);

/* Releases what cli_http set up (at the end of a command). */
void cli_http_done(void);

/* The platform settings alone (`cdc health --platform-config P` without a
 * pipeline): platform.yaml is loaded with a minimal stand-in pipeline, so it
 * is validated exactly as `cdc run` would.  0, or 2 with errors printed. */
int cli_load_platform_only(const char *path, struct config **cfg);

#endif
