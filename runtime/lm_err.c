/*
 * lm_err.c: error texts, and the lm_error helpers that carry a message
 * naming what went wrong and where.
 */
#include "lm_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
lm_strerror(int code)
{
    if (code == LM_OK) {
        return "success";
    }
    switch (code) {
#define LM_ERR_TEXT(name, value, text)                                                             \
    case name: return text;
        LM_ERRORS(LM_ERR_TEXT)
#undef LM_ERR_TEXT
    default: return "unknown error";
    }
}

const char *
lm_errname(int code)
{
    if (code == LM_OK) {
        return "LM_OK";
    }
    switch (code) {
#define LM_ERR_NAME(name, value, text)                                                             \
    case name: return #name;
        LM_ERRORS(LM_ERR_NAME)
#undef LM_ERR_NAME
    default: return "LM_E?";
    }
}

int
lm_error_set(lm_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int
lm_error_prefix(lm_error *err, const char *fmt, ...)
{
    char joined[LM_ERROR_MSG_MAX];
    size_t n;
    va_list ap;

    if (err == NULL) {
        return LM_OK;
    }
    va_start(ap, fmt);
    vsnprintf(joined, sizeof(joined), fmt, ap);
    va_end(ap);
    n = strlen(joined);
    if (n + 2 < sizeof(joined)) {
        joined[n++] = ':';
        joined[n++] = ' ';
        /* copy as much of the old message as fits, always terminated */
        size_t rest = strlen(err->msg);
        if (rest > sizeof(joined) - 1 - n) {
            rest = sizeof(joined) - 1 - n;
        }
        memcpy(joined + n, err->msg, rest);
        joined[n + rest] = '\0';
    }
    memcpy(err->msg, joined, sizeof(err->msg));
    return err->code;
}

void
lm_error_clear(lm_error *err)
{
    if (err != NULL) {
        err->code = LM_OK;
        err->msg[0] = '\0';
    }
}

int
lm_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0: return LM_OK;
    case ENOMEM: return LM_ENOMEM;
    case EINVAL: return LM_EINVAL;
    case EAGAIN: return LM_EAGAIN;
    case ENOENT: return LM_ENOTFOUND;
    case EEXIST: return LM_EEXIST;
    case ETIMEDOUT: return LM_ETIMEDOUT;
    case EADDRINUSE: return LM_EADDRINUSE;
    case ERANGE: return LM_ERANGE;
    case E2BIG:
    case EFBIG: return LM_ETOOBIG;
    default: return LM_EIO;
    }
}
