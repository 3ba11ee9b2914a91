/* Error codes shared by every module.  Functions return 0 on success and a
 * negative CDC_E* on failure; where a person must read the reason, the caller
 * passes `char *err, size_t errlen` and gets one sentence naming the thing. */
#ifndef CDC_UTIL_ERR_H
#define CDC_UTIL_ERR_H

enum {
    CDC_OK = 0,
    CDC_ERR = -1,     /* generic failure, see the error text */
    CDC_EINVAL = -2,  /* malformed input (config, protocol frame, data) */
    CDC_EIO = -3,     /* local I/O failed (file, fsync) */
    CDC_ECONN = -4,   /* a network peer is unreachable or the connection broke */
    CDC_EAGAIN = -5,  /* flow control: try again later; not an error */
    CDC_EFULL = -6,   /* flow control: a bounded queue is full; not an error */
    CDC_ESTOP = -7,   /* shutdown requested while waiting */
    CDC_ENOTSUP = -8, /* asked for something this build does not implement */
    CDC_EBUSY = -9,   /* another process holds what was asked for (a lock) */
};

/* Formats into err (if non-NULL) and returns code, so error paths are one line:
 *     return cdc_fail(err, errlen, CDC_EINVAL, "bad %s", what);              */
int cdc_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
