/*
 * lm_ctl_fmt.c: laminarctl's numbers, durations and times (see
 * lm_ctl_fmt.h). Calendar work is lm_time's.
 */
#include "lm_ctl_fmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lm_err.h"
#include "lm_time.h"

/* Reads the digits at *s into *v, advancing *s past all of them.
 * LM_EINVAL without digits, LM_ERANGE past INT64_MAX. */
static int
digits(const char **s, int64_t *v)
{
    const char *p = *s;
    int rv = LM_OK;

    *v = 0;
    if (!isdigit((unsigned char)*p)) {
        return LM_EINVAL;
    }
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (*v > (INT64_MAX - d) / 10) {
            rv = LM_ERANGE;
        } else {
            *v = *v * 10 + d;
        }
    }
    *s = p;
    return rv;
}

int
lm_ctl_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;
    int rv = digits(&s, &v);

    if (rv == LM_EINVAL || *s != '\0') {
        return LM_EINVAL;
    }
    if (rv != LM_OK || v < min || v > max) {
        return LM_ERANGE;
    }
    *out = v;
    return LM_OK;
}

char *
lm_ctl_fmt_duration(int64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t len = 0;

    out[0] = '\0';
    if (ms <= 0) {
        snprintf(out, cap, "0s");
        return out;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && len < cap; i++) {
        if (ms >= units[i].ms) {
            int n = snprintf(out + len, cap - len, "%lld%s", (long long)(ms / units[i].ms),
                             units[i].name);
            len += n > 0 ? (size_t)n : 0;
            ms %= units[i].ms;
        }
    }
    return out;
}

char *
lm_ctl_fmt_time(int64_t ms, char *out, size_t cap)
{
    char text[48];
    size_t n;

    /* clamped so that the microseconds cannot overflow */
    if (ms > INT64_MAX / 1000) {
        ms = INT64_MAX / 1000;
    } else if (ms < INT64_MIN / 1000) {
        ms = INT64_MIN / 1000;
    }
    n = lm_time_format(ms * 1000, 3, text); /* "YYYY-MM-DD HH:MM:SS.mmm" */
    char *sp = memchr(text, ' ', n);
    if (sp != NULL) {
        *sp = 'T';
    }
    snprintf(out, cap, "%sZ", text);
    return out;
}

char *
lm_ctl_fmt_age(int64_t then_ms, int64_t now_ms, char *out, size_t cap)
{
    int64_t s = then_ms < now_ms ? (now_ms - then_ms) / 1000 : 0;

    if (then_ms <= 0) {
        snprintf(out, cap, "-");
    } else if (s < 60) {
        snprintf(out, cap, "%llds ago", (long long)s);
    } else if (s < 3600) {
        snprintf(out, cap, "%lldm ago", (long long)(s / 60));
    } else if (s < 48 * 3600) {
        snprintf(out, cap, "%lldh ago", (long long)(s / 3600));
    } else {
        snprintf(out, cap, "%lldd ago", (long long)(s / 86400));
    }
    return out;
}
