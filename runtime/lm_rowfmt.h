/*
 * lm_rowfmt.h: rows of a batch as text: JSON lines and CSV.
 *
 * JSON: one object per row, fields in schema order, keys the field names;
 * int64 as numbers, float64 as the shortest decimal that reads back the
 * same (NaN and infinities as null), bool as true/false, timestamps as
 * "YYYY-MM-DD HH:MM:SS.ffffff" (UTC), utf8 as strings, binary as
 * hexadecimal strings, null as null.
 * CSV (RFC 4180): the same text for each value; a field is quoted when it
 * holds a comma, a quote or a line break, or is an empty string (an empty
 * binary value too: ""); null is
 * an empty field.
 *
 * The lm_rowfmt_parse_* functions are the inverse: they read back the
 * text of one value as written here (and a few common variants, listed
 * with each), so that file_source reads exactly what file_sink writes.
 */
#ifndef LM_ROWFMT_H
#define LM_ROWFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_batch.h"
#include "lm_err.h"

/* A growable byte buffer. */
typedef struct lm_buf {
    char *p;    /* bytes (not NUL-terminated) */
    size_t len; /* used */
    size_t cap; /* allocated */
} lm_buf;

void lm_buf_init(lm_buf *b);
void lm_buf_fini(lm_buf *b);
int lm_buf_append(lm_buf *b, const void *p, size_t n); /* LM_OK or LM_ENOMEM */
/* Makes room for n more bytes (b->p + b->len .. + n). LM_OK or LM_ENOMEM. */
int lm_buf_reserve(lm_buf *b, size_t n);
int lm_buf_printf(lm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends row r of b as a JSON object and a newline. LM_OK or LM_ENOMEM. */
int lm_rowfmt_json(lm_buf *out, const lm_batch *b, uint32_t r);

/* Appends row r of b as a CSV line (no header). LM_OK or LM_ENOMEM. */
int lm_rowfmt_csv(lm_buf *out, const lm_batch *b, uint32_t r);

/* Appends the CSV header line of schema s. */
int lm_rowfmt_csv_header(lm_buf *out, const lm_schema *s);

/* Formats a timestamp (microseconds) as "YYYY-MM-DD HH:MM:SS.ffffff" into
 * buf (at least 32 bytes); returns its length. */
int lm_format_timestamp(int64_t us, char *buf, size_t cap);

/* Formats a double as the shortest decimal that parses back to it. */
int lm_format_double(double v, char *buf, size_t cap);

/* --- reading values back ------------------------------------------------
 * Each parser takes len bytes at s (not NUL-terminated) and the whole text
 * must be the value: no surrounding spaces. Each returns LM_OK, or LM_EINVAL
 * with err saying what is wrong and quoting (a prefix of) the text. */

/* A timestamp as microseconds since the epoch, UTC: the forms
 * lm_time_parse reads ("YYYY-MM-DD HH:MM:SS[.f...]" as
 * lm_format_timestamp writes it, 'T' for the space, seconds optional, a
 * "Z" or "+HH[:MM]" zone, or a plain date). */
int lm_rowfmt_parse_timestamp(const char *s, size_t len, int64_t *us, lm_error *err);

/* A decimal int64: optional sign, digits. LM_ERANGE (with err) when it does
 * not fit. */
int lm_rowfmt_parse_int64(const char *s, size_t len, int64_t *out, lm_error *err);

/* A float64 in decimal notation (digits, optional fraction and exponent),
 * or nan, inf, infinity (any case, optional sign), as lm_format_double and
 * the CSV writer write them. LM_ERANGE when its magnitude overflows. */
int lm_rowfmt_parse_double(const char *s, size_t len, double *out, lm_error *err);

/* true, t, yes, y, on, 1 or false, f, no, n, off, 0, in any case. */
int lm_rowfmt_parse_bool(const char *s, size_t len, bool *out, lm_error *err);

/* Hexadecimal (either case, even length) into len / 2 bytes at out; out
 * may be s itself (decoding in place is safe). */
int lm_rowfmt_parse_hex(const char *s, size_t len, uint8_t *out, lm_error *err);

/* The value of type t from its text, as the CSV writer writes it (never
 * null: the caller decides what text means null). bool, int64, float64 and
 * binary as the parsers above; timestamp as lm_rowfmt_parse_timestamp or,
 * when the text is an integer, milliseconds since the epoch; utf8 is the
 * text itself (checked to be valid UTF-8). utf8 values point into s;
 * binary values are decoded into bin (room for len / 2 bytes; may be s
 * itself) and point there. Returns LM_OK, LM_EINVAL or LM_ERANGE (or
 * LM_ETOOBIG past 2 GiB) with err saying what is wrong ("expected int64,
 * got 'abc'"). */
int lm_rowfmt_parse_value(lm_type t, const char *s, size_t len, uint8_t *bin, lm_value *out,
                          lm_error *err);

/* Quotes (a prefix of) text for a message between two q characters ('abc'
 * or "abc"), with q, backslash and bytes outside printable ASCII escaped
 * and "..." after 40 bytes. buf needs at least 16 bytes (200 hold any
 * text). Returns buf. */
const char *lm_rowfmt_quote(const char *s, size_t len, char q, char *buf, size_t cap);

#endif /* LM_ROWFMT_H */
