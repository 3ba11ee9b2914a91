/* Private to the webhook sink: its own keys (webhook_config.c) and the
 * pieces of its HTTP contract that are pure functions (webhook.c), exposed
 * so the unit tests can pin them down. */
#ifndef CDC_SINK_WEBHOOK_WEBHOOK_H
#define CDC_SINK_WEBHOOK_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink/sink.h"
#include "util/buf.h"

/* The webhook sink's own keys (its block's, besides the common batch_size:
 * envelopes per request, 1 sending a lone envelope, more a JSON array):
 * sink_cfg.conf of a webhook sink. */
struct webhook_sink_cfg {
    char *url;          /* required, http:// or https:// */
    char *method;       /* POST | PUT | PATCH; default POST */
    struct kv *headers; /* extra request headers */
    size_t nheaders;
    double timeout_seconds; /* default 10 */
    char *auth_token;       /* secret; or NULL: sent as "Authorization: Bearer …" */
    char *signing_secret;   /* secret; or NULL: HMAC-SHA256 signature header */
    int max_in_flight;      /* default 8 concurrent requests */
};

extern const struct sink_type sink_webhook_type;
extern const struct sink_ops sink_webhook_ops; /* webhook.c */

/* Bytes of a failed response's body quoted in the error message. */
#define WEBHOOK_BODY_QUOTE 200

/* Whether an HTTP status means the batch was delivered (2xx). */
bool webhook_status_ok(long status);

/* How a status that is not 2xx is treated: 408, 429 and 5xx are worth
 * retrying; 3xx (redirects are not followed) and every other 4xx mean the
 * receiver rejects the data.  Anything else (1xx as a final answer, >= 600)
 * is a broken receiver, retried like a 5xx. */
enum sink_errclass webhook_status_class(long status);

/* The wait a Retry-After value asks for, in microseconds from now_us (wall
 * clock, microseconds since the Unix epoch): delta-seconds ("120", a
 * fraction is tolerated) or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT",
 * or the obsolete RFC 850 and asctime forms).  Surrounding whitespace is
 * ignored.  0 when the value is empty, malformed or a date in the past. */
int64_t webhook_retry_after_us(const char *value, size_t len, int64_t now_us);

/* The Idempotency-Key of a request carrying evs[0..n) (control events are
 * not counted; idem_key.c): appended to b.  A change's own key is
 * sink_change_key's (sink/change_key.h). */
void webhook_request_key(struct buf *b, const char *pipeline_id, const char *sink_id,
                         struct cdc_event *const *evs, size_t n);

#endif
