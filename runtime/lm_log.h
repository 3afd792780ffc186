/*
 * lm_log.h: leveled logging, as text or JSON lines, to stdout and/or a file.
 *
 * Every line names its component (an actor type such as "link" or
 * "taskmanager", or a subsystem such as "config") and, inside an actor, the
 * actor's address. The runtime sets the actor context on the thread before
 * it calls an actor's callbacks, so code inside an actor just writes
 * LM_LOG(LM_LOG_INFO, "..."). Code outside actors names its component with
 * LM_LOGC.
 *
 * LM_LOG does not evaluate its arguments when the level is below the
 * threshold. Each line is written with one write(2), so lines from
 * different threads never interleave. lm_log_configure may be called again
 * at any time (a new level, or the same file reopened after rotation)
 * while other threads log.
 */
#ifndef LM_LOG_H
#define LM_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

#include "lm_err.h"

typedef enum lm_log_level {
    LM_LOG_TRACE = 0,
    LM_LOG_DEBUG = 1,
    LM_LOG_INFO = 2,
    LM_LOG_WARN = 3,
    LM_LOG_ERROR = 4,
    LM_LOG_OFF = 5,
} lm_log_level;

typedef enum lm_log_format {
    LM_LOG_TEXT = 0, /* 2026-11-21T10:00:00.123Z INFO  link[1:4.1] message */
    LM_LOG_JSON =
        1, /* {"ts":"...","level":"info","component":"link","actor":"1:4.1","msg":"..."} */
} lm_log_format;

typedef struct lm_log_opts {
    lm_log_level level;   /* lines below this level are skipped */
    lm_log_format format; /* text or JSON lines */
    bool to_stdout;       /* write lines to standard output */
    bool to_stderr;       /* write lines to standard error (tools, tests) */
    const char *file;     /* append lines to this file too; NULL or "" for none */
} lm_log_opts;

/* The current threshold; read by LM_LOG without a lock. Relaxed ordering:
 * a level change may be seen a little late by other threads, which is
 * harmless. */
extern _Atomic int lm_log_threshold_g;

/* Applies opts. Opens (creating, appending) opts->file when given; a file
 * opened before is replaced in place (its descriptor number is kept).
 * Returns LM_OK, or LM_EIO with err naming the file when it cannot be
 * opened; the previous configuration stays in force then. */
int lm_log_configure(const lm_log_opts *opts, lm_error *err);

/* Stops writing to the log file and closes it; logging goes on to
 * stdout/stderr only. Call when no other thread logs (at exit). */
void lm_log_shutdown(void);

/* Parses "trace", "debug", "info", "warn", "error", "off" into *out.
 * Returns LM_OK or LM_EINVAL. */
int lm_log_level_parse(const char *s, lm_log_level *out);
const char *lm_log_level_name(lm_log_level level);

/* Sets the calling thread's context: the component and actor that later
 * LM_LOG lines on this thread name. Either may be NULL. The strings are
 * borrowed and must outlive the context (the runtime passes the actor's
 * own name buffers). */
void lm_log_set_context(const char *component, const char *actor);

/* Writes one line at level with the thread's context; component, when not
 * NULL, overrides the context's component. Use the macros below. */
void lm_log_write(lm_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LM_LOG_ENABLED(level)                                                                      \
    ((int)(level) >= atomic_load_explicit(&lm_log_threshold_g, memory_order_relaxed))

#define LM_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if (LM_LOG_ENABLED(level)) {                                                               \
            lm_log_write((level), NULL, __VA_ARGS__);                                              \
        }                                                                                          \
    } while (0)

#define LM_LOGC(level, component, ...)                                                             \
    do {                                                                                           \
        if (LM_LOG_ENABLED(level)) {                                                               \
            lm_log_write((level), (component), __VA_ARGS__);                                       \
        }                                                                                          \
    } while (0)

#endif /* LM_LOG_H */
