/*
 * lm_ctl_fmt.h: how laminarctl reads numbers from the command line and
 * writes durations and times for people (it reads durations as the
 * configuration does: lm_config_parse_duration).
 *
 * The API's times are integer milliseconds since the Unix epoch; the
 * client shows them as ISO-8601 UTC ("2024-05-01T12:00:00.123Z") or as an
 * age relative to now ("5s ago").
 */
#ifndef LM_CTL_FMT_H
#define LM_CTL_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Reads a decimal integer in [min, max] from all of s (no sign, spaces or
 * other text). Returns LM_OK with *out, LM_EINVAL when s is not such a
 * number, LM_ERANGE when it is one outside the range. */
int lm_ctl_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* Writes ms as a duration, largest units first ("1h2m", "10s", "1s500ms",
 * "0s"); out needs 64 bytes. Returns out. */
char *lm_ctl_fmt_duration(int64_t ms, char *out, size_t cap);

/* Writes the epoch milliseconds ms as ISO-8601 UTC with milliseconds
 * ("2024-05-01T12:00:00.123Z"); out needs 48 bytes. Returns out. */
char *lm_ctl_fmt_time(int64_t ms, char *out, size_t cap);

/* Writes how long before now_ms the time then_ms was, in its largest
 * whole unit: "12s ago", "5m ago", "3h ago", "2d ago" (a time in the
 * future, from clocks apart, is "0s ago"); "-" when then_ms is 0 or
 * below (never). Returns out. */
char *lm_ctl_fmt_age(int64_t then_ms, int64_t now_ms, char *out, size_t cap);

#endif /* LM_CTL_FMT_H */
