/*
 * lm_err.h: Laminar's error codes and error details.
 *
 * Every function that can fail returns an int: LM_OK (0) on success or a
 * negative LM_E* code. Results travel through out-parameters. Library
 * errors (nng, libevent, libyaml, errno) are translated into these codes at
 * the module boundary that calls the library.
 *
 * Where the caller needs to know *what* went wrong in bad input (a config
 * file, a message from a peer, a record), the function also takes an
 * `lm_error *` which it fills with the code and a one-line human message
 * naming what and where. The lm_error argument may be NULL when the caller
 * does not want the text.
 */
#ifndef LM_ERR_H
#define LM_ERR_H

#include <stddef.h>

#define LM_OK 0

/* The error catalogue: name, value, text. One place, so lm_strerror and the
 * enum can never disagree. */
#define LM_ERRORS(X)                                                                               \
    X(LM_ENOMEM, -1, "out of memory")                                                              \
    X(LM_EINVAL, -2, "invalid argument")                                                           \
    X(LM_ENOACTOR, -3, "no such actor (unknown or stopped)")                                       \
    X(LM_ENOROUTE, -4, "no route to node")                                                         \
    X(LM_EAGAIN, -5, "resource temporarily unavailable")                                           \
    X(LM_ECLOSED, -6, "closed")                                                                    \
    X(LM_EPROTO, -7, "malformed message")                                                          \
    X(LM_ETOOBIG, -8, "too large")                                                                 \
    X(LM_ETYPE, -9, "unknown message type")                                                        \
    X(LM_EVERSION, -10, "protocol version mismatch")                                               \
    X(LM_ECONFIG, -11, "invalid configuration")                                                    \
    X(LM_EIO, -12, "input/output error")                                                           \
    X(LM_ETIMEDOUT, -13, "timed out")                                                              \
    X(LM_ENOTFOUND, -14, "not found")                                                              \
    X(LM_EEXIST, -15, "already exists")                                                            \
    X(LM_ESTATE, -16, "operation not valid in the current state")                                  \
    X(LM_EFAILED, -17, "actor failed")                                                             \
    X(LM_ETRANSPORT, -18, "transport error")                                                       \
    X(LM_EADDRINUSE, -19, "address in use")                                                        \
    X(LM_ERANGE, -20, "value out of range")

enum lm_errcode {
#define LM_ERR_ENUM(name, value, text) name = value,
    LM_ERRORS(LM_ERR_ENUM)
#undef LM_ERR_ENUM
};

/* Returns a static, human-readable text for code (never NULL); for an
 * unknown code, "unknown error". */
const char *lm_strerror(int code);

/* Returns the symbolic name of code ("LM_EPROTO"), or "LM_OK"; for an
 * unknown code, "LM_E?". */
const char *lm_errname(int code);

#define LM_ERROR_MSG_MAX 512

/* An error with its message. Embedded by callers (usually on the stack). */
typedef struct lm_error {
    int code;                   /* LM_OK or an LM_E* code */
    char msg[LM_ERROR_MSG_MAX]; /* one line, no trailing newline; "" when code == LM_OK */
} lm_error;

/* Sets err (when not NULL) to code and the printf-formatted message, and
 * returns code, so that a failing path can `return lm_error_set(...)`.
 * The message is truncated to fit. */
int lm_error_set(lm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with the printf-formatted context and ": ", so
 * that an error gains the "where" as it travels up. Returns err->code
 * (LM_OK when err is NULL). */
int lm_error_prefix(lm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to LM_OK and an empty message. */
void lm_error_clear(lm_error *err);

/* Translates an errno value into an LM_E* code. */
int lm_err_from_errno(int errnum);

#endif /* LM_ERR_H */
