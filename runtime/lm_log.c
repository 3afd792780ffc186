/*
 * lm_log.c: formats log lines and writes each with a single write(2).
 *
 * The configuration (format, destinations) is set once at start; the level
 * is an atomic so that LM_LOG can test it without a lock. The per-thread
 * context (component, actor) lives in thread-local storage.
 */
#include "lm_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int lm_log_threshold_g = LM_LOG_INFO;

static lm_log_format log_format = LM_LOG_TEXT;
static bool log_stdout = false;
static bool log_stderr = true;
static int log_fd = -1;

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
    int fd = -1;

    if (opts->file != NULL && opts->file[0] != '\0') {
        fd = open(opts->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            return lm_error_set(err, LM_EIO, "cannot open log file '%s': %s", opts->file,
                                strerror(errno));
        }
    }
    if (log_fd >= 0) {
        close(log_fd);
    }
    log_fd = fd;
    log_format = opts->format;
    log_stdout = opts->to_stdout;
    log_stderr = opts->to_stderr;
    atomic_store_explicit(&lm_log_threshold_g, (int)opts->level, memory_order_relaxed);
    return LM_OK;
}

void
lm_log_shutdown(void)
{
    if (log_fd >= 0) {
        close(log_fd);
        log_fd = -1;
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

    if (log_format == LM_LOG_JSON) {
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

    if (log_stdout) {
        write_all(STDOUT_FILENO, line, len);
    }
    if (log_stderr) {
        write_all(STDERR_FILENO, line, len);
    }
    if (log_fd >= 0) {
        write_all(log_fd, line, len);
    }
}
