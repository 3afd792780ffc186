/*
 * lm_log.c: formats log lines and writes each with a single write(2).
 *
 * The settings are atomics so that lm_log_configure may run while other
 * threads log (to change the level, or to reopen the file after log
 * rotation). The log file keeps one descriptor number for the life of the
 * process: a reopen dup2()s the new file onto it, so a thread writing
 * concurrently writes to the old file or the new one, never to a closed or
 * reused descriptor. The per-thread context (component, actor) lives in
 * thread-local storage.
 */
#include "lm_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int lm_log_threshold_g = LM_LOG_INFO;

#define DEST_STDOUT 0x1
#define DEST_STDERR 0x2
#define DEST_FILE   0x4

/* relaxed everywhere: each is read independently for one line, and a
 * line written with a just-replaced setting is harmless. */
static _Atomic int log_format = LM_LOG_TEXT;
static _Atomic int log_dest = DEST_STDERR;
static _Atomic int log_fd = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER; /* configure vs configure */

static _Thread_local const char *ctx_component;
static _Thread_local const char *ctx_actor;

static const char *level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

const char *
lm_log_level_name(lm_log_level level)
{
    if ((int)level < 0 || level > LM_LOG_OFF) {
        return "?";
    }
    return level_names[level];
}

int
lm_log_level_parse(const char *s, lm_log_level *out)
{
    for (int i = 0; i <= LM_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (lm_log_level)i;
            return LM_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LM_LOG_WARN;
        return LM_OK;
    }
    return LM_EINVAL;
}

int
lm_log_configure(const lm_log_opts *opts, lm_error *err)
{
    int dest = (opts->to_stdout ? DEST_STDOUT : 0) | (opts->to_stderr ? DEST_STDERR : 0);

    pthread_mutex_lock(&log_lock);
    if (opts->file != NULL && opts->file[0] != '\0') {
        int fd = open(opts->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int cur = atomic_load_explicit(&log_fd, memory_order_relaxed);
        if (fd < 0) {
            pthread_mutex_unlock(&log_lock);
            return lm_error_set(err, LM_EIO, "cannot open log file '%s': %s", opts->file,
                                strerror(errno));
        }
        if (cur < 0) {
            atomic_store_explicit(&log_fd, fd, memory_order_release);
        } else {
            /* Same descriptor number, new file. */
            dup2(fd, cur);
            close(fd);
        }
        dest |= DEST_FILE;
    }
    atomic_store_explicit(&log_format, (int)opts->format, memory_order_relaxed);
    atomic_store_explicit(&log_dest, dest, memory_order_relaxed);
    atomic_store_explicit(&lm_log_threshold_g, (int)opts->level, memory_order_relaxed);
    pthread_mutex_unlock(&log_lock);
    return LM_OK;
}

void
lm_log_shutdown(void)
{
    int fd;

    pthread_mutex_lock(&log_lock);
    atomic_fetch_and_explicit(&log_dest, ~DEST_FILE, memory_order_relaxed);
    fd = atomic_exchange_explicit(&log_fd, -1, memory_order_acq_rel);
    pthread_mutex_unlock(&log_lock);
    if (fd >= 0) {
        close(fd);
    }
}

void
lm_log_set_context(const char *component, const char *actor)
{
    ctx_component = component;
    ctx_actor = actor;
}

/* Appends s to buf[*len..cap) as the inside of a JSON string. */
static void
json_escape(char *buf, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = *len;

    for (; *s != '\0' && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
            buf[n++] = '\\';
            buf[n++] = '"';
            break;
        case '\\':
            buf[n++] = '\\';
            buf[n++] = '\\';
            break;
        case '\n':
            buf[n++] = '\\';
            buf[n++] = 'n';
            break;
        case '\r':
            buf[n++] = '\\';
            buf[n++] = 'r';
            break;
        case '\t':
            buf[n++] = '\\';
            buf[n++] = 't';
            break;
        default:
            if (c < 0x20) {
                buf[n++] = '\\';
                buf[n++] = 'u';
                buf[n++] = '0';
                buf[n++] = '0';
                buf[n++] = hex[c >> 4];
                buf[n++] = hex[c & 15];
            } else {
                buf[n++] = (char)c;
            }
        }
    }
    *len = n;
}

static void
append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*len >= cap) {
        return;
    }
    va_start(ap, fmt);
    w = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (w > 0) {
        *len += (size_t)w < cap - *len ? (size_t)w : cap - *len - 1;
    }
}

static void
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* nowhere left to report a failing log write */
        }
        buf += w;
        len -= (size_t)w;
    }
}

void
lm_log_write(lm_log_level level, const char *component, const char *fmt, ...)
{
    char msg[2048];
    char line[4096];
    char ts[96];
    size_t len = 0;
    struct timespec now;
    struct tm tm;
    va_list ap;
    const char *comp = component != NULL ? component : ctx_component;
    const char *actor = ctx_actor;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now.tv_nsec / 1000000));

    int dest = atomic_load_explicit(&log_dest, memory_order_relaxed);
    if (atomic_load_explicit(&log_format, memory_order_relaxed) == LM_LOG_JSON) {
        append(line, sizeof(line), &len, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"", ts,
               lm_log_level_name(level));
        json_escape(line, sizeof(line), &len, comp != NULL ? comp : "-");
        append(line, sizeof(line), &len, "\"");
        if (actor != NULL) {
            append(line, sizeof(line), &len, ",\"actor\":\"");
            json_escape(line, sizeof(line), &len, actor);
            append(line, sizeof(line), &len, "\"");
        }
        append(line, sizeof(line), &len, ",\"msg\":\"");
        json_escape(line, sizeof(line), &len, msg);
        append(line, sizeof(line), &len, "\"}");
    } else {
        char upper[8];
        const char *name = lm_log_level_name(level);
        size_t i;
        for (i = 0; name[i] != '\0' && i < sizeof(upper) - 1; i++) {
            upper[i] = (char)(name[i] - 'a' + 'A');
        }
        upper[i] = '\0';
        append(line, sizeof(line), &len, "%s %-5s %s", ts, upper, comp != NULL ? comp : "-");
        if (actor != NULL) {
            append(line, sizeof(line), &len, "[%s]", actor);
        }
        append(line, sizeof(line), &len, " %s", msg);
    }
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len++] = '\n';

    if (dest & DEST_STDOUT) {
        write_all(STDOUT_FILENO, line, len);
    }
    if (dest & DEST_STDERR) {
        write_all(STDERR_FILENO, line, len);
    }
    if (dest & DEST_FILE) {
        int fd = atomic_load_explicit(&log_fd, memory_order_acquire);
        if (fd >= 0) {
            write_all(fd, line, len);
        }
    }
}
