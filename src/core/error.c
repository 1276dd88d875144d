/* error.c - status names and the fn_error helpers. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

const char *facenet_status_str(facenet_status status) {
    switch (status) {
    case FACENET_OK: return "success";
    case FACENET_ERR_INVALID_ARGUMENT: return "invalid argument";
    case FACENET_ERR_NO_MEMORY: return "out of memory";
    case FACENET_ERR_IO: return "input/output error";
    case FACENET_ERR_FORMAT: return "corrupt or malformed data";
    case FACENET_ERR_UNSUPPORTED: return "unsupported format or feature";
    case FACENET_ERR_TOO_LARGE: return "input too large";
    case FACENET_ERR_MODEL: return "model does not fit its network";
    case FACENET_ERR_NOT_FOUND: return "not found";
    case FACENET_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

facenet_status fn_fail(fn_error *e, facenet_status status, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->status = status;
    }
    return status;
}

void fn_error_prefix(fn_error *e, const char *fmt, ...) {
    if (!e) return;
    char prefix[FN_ERROR_MAX], joined[2 * FN_ERROR_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(joined, sizeof joined, "%s: %s", prefix, e->msg);
    memcpy(e->msg, joined, sizeof e->msg - 1);
    e->msg[sizeof e->msg - 1] = '\0';
}

void fn_error_clear(fn_error *e) {
    if (!e) return;
    e->status = FACENET_OK;
    e->msg[0] = '\0';
}
