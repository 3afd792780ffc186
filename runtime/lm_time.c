/*
 * lm_time.c: calendar arithmetic (Howard Hinnant's civil-date algorithms)
 * and the text form of timestamps.
 */
#include "lm_time.h"

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "lm_err.h"

int64_t
lm_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void
lm_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

unsigned
lm_days_in_month(int64_t y, unsigned m)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

size_t
lm_time_format(int64_t us, unsigned frac_digits, char *out)
{
    int64_t days = us / LM_US_PER_DAY, rem = us % LM_US_PER_DAY, y, secs, frac;
    unsigned m, d;
    int n;

    if (rem < 0) {
        rem += LM_US_PER_DAY;
        days--;
    }
    lm_civil_from_days(days, &y, &m, &d);
    secs = rem / LM_US_PER_SEC;
    frac = rem % LM_US_PER_SEC;
    n = snprintf(out, 40, "%04lld-%02u-%02u %02d:%02d:%02d", (long long)y, m, d, (int)(secs / 3600),
                 (int)(secs / 60 % 60), (int)(secs % 60));
    if (frac_digits > 0 && n > 0) {
        if (frac_digits > 6) {
            frac_digits = 6;
        }
        for (unsigned k = frac_digits; k < 6; k++) {
            frac /= 10;
        }
        n += snprintf(out + n, 40 - (size_t)n, ".%0*lld", (int)frac_digits, (long long)frac);
    }
    return n > 0 ? (size_t)n : 0;
}

/* Reads exactly k digits at s[*i]. */
static bool
digits(const char *s, size_t len, size_t *i, unsigned k, unsigned *out)
{
    unsigned v = 0;

    if (len - *i < k) {
        return false;
    }
    for (unsigned j = 0; j < k; j++) {
        char c = s[*i + j];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(c - '0');
    }
    *i += k;
    *out = v;
    return true;
}

int
lm_time_parse(const char *s, size_t len, int64_t *us)
{
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    int64_t frac = 0, off = 0;
    size_t i = 0;

    if (!digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || !digits(s, len, &i, 2, &mo) ||
        i >= len || s[i++] != '-' || !digits(s, len, &i, 2, &d)) {
        return LM_EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > lm_days_in_month(y, mo)) {
        return LM_ERANGE;
    }
    if (i < len && (s[i] == ' ' || s[i] == 'T')) {
        i++;
        if (!digits(s, len, &i, 2, &h) || i >= len || s[i++] != ':' ||
            !digits(s, len, &i, 2, &mi)) {
            return LM_EINVAL;
        }
        if (i < len && s[i] == ':') {
            i++;
            if (!digits(s, len, &i, 2, &sec)) {
                return LM_EINVAL;
            }
            if (i < len && s[i] == '.') {
                int64_t scale = 100000;
                i++;
                if (i >= len || s[i] < '0' || s[i] > '9') {
                    return LM_EINVAL;
                }
                for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
                    frac += (s[i] - '0') * scale; /* past microseconds: dropped */
                    scale /= 10;
                }
            }
        }
        if (h > 23 || mi > 59 || sec > 59) {
            return LM_ERANGE;
        }
    }
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        if (!digits(s, len, &i, 2, &oh)) {
            return LM_EINVAL;
        }
        if (i < len && s[i] == ':') {
            i++;
            if (!digits(s, len, &i, 2, &om)) {
                return LM_EINVAL;
            }
        } else if (i < len && !digits(s, len, &i, 2, &om)) {
            return LM_EINVAL;
        }
        if (oh > 23 || om > 59) {
            return LM_ERANGE;
        }
        off = sign * ((int64_t)oh * 3600 + om * 60) * LM_US_PER_SEC;
    }
    if (i != len) {
        return LM_EINVAL;
    }
    *us = lm_days_from_civil(y, mo, d) * LM_US_PER_DAY +
          ((int64_t)h * 3600 + mi * 60 + sec) * LM_US_PER_SEC + frac - off;
    return LM_OK;
}

/* --- clocks ------------------------------------------------------------ */

int64_t
lm_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
lm_clock_mono_ms(void)
{
    return lm_clock_mono_ns() / 1000000;
}

int64_t
lm_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
