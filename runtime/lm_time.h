/*
 * lm_time.h: calendar arithmetic and timestamps as text, in one place.
 *
 * Timestamps are microseconds since 1970-01-01T00:00:00 UTC in the
 * proleptic Gregorian calendar (no time_t limits, no time zones other
 * than fixed offsets written in the text). The text form Laminar writes
 * is "YYYY-MM-DD HH:MM:SS.ffffff"; the parser also reads the forms people
 * and other systems write. It also reads the clocks, for every module
 * that needs "now".
 */
#ifndef LM_TIME_H
#define LM_TIME_H

#include <stddef.h>
#include <stdint.h>

#define LM_US_PER_SEC 1000000LL
#define LM_US_PER_DAY 86400000000LL

/* Now, by the monotonic clock (for intervals and deadlines; not a date). */
int64_t lm_clock_mono_ns(void);
int64_t lm_clock_mono_ms(void);

/* Now, by the real-time clock: milliseconds since the Unix epoch (for
 * times people read or that are stored). */
int64_t lm_clock_wall_ms(void);

/* Days from 1970-01-01 to y-m-d (m 1..12, d 1..31), and back. */
int64_t lm_days_from_civil(int64_t y, unsigned m, unsigned d);
void lm_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Days in month m (1..12) of year y. */
unsigned lm_days_in_month(int64_t y, unsigned m);

/* Writes us as "YYYY-MM-DD HH:MM:SS" followed by "." and the first
 * frac_digits (0..6) digits of the fraction (none when 0) into out, which
 * needs 40 bytes; NUL-terminated. Years outside 0..9999 get more digits or
 * a sign. Returns the length. */
size_t lm_time_format(int64_t us, unsigned frac_digits, char *out);

/* Reads a timestamp from exactly len bytes at s (no surrounding spaces):
 * "YYYY-MM-DD", optionally followed by ' ' or 'T' and "HH:MM", ":SS",
 * ".fraction" (digits past microseconds are dropped), then optionally "Z"
 * or a zone offset "+HH", "+HH:MM" or "+HHMM" (or '-'), which is applied.
 * Years 0000..9999. Returns LM_OK with *us, LM_EINVAL when the text is not
 * in such a form, or LM_ERANGE when it is but names no such date, time or
 * offset (2023-02-29, 24:00). Callers say which text, and where. */
int lm_time_parse(const char *s, size_t len, int64_t *us);

#endif /* LM_TIME_H */
