/*
 * lm_rowfmt.c: JSON lines and CSV for batch rows, and the parsers that read
 * the text of each value back (used by file_source).
 */
#include "lm_rowfmt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_time.h"

void
lm_buf_init(lm_buf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
}

void
lm_buf_fini(lm_buf *b)
{
    free(b->p);
    lm_buf_init(b);
}

int
lm_buf_reserve(lm_buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->len + n <= b->cap) {
        return LM_OK;
    }
    cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n) {
        cap *= 2;
    }
    if ((p = realloc(b->p, cap)) == NULL) {
        return LM_ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return LM_OK;
}

int
lm_buf_append(lm_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return LM_OK;
    }
    if (lm_buf_reserve(b, n) != LM_OK) {
        return LM_ENOMEM;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return LM_OK;
}

int
lm_buf_printf(lm_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || lm_buf_reserve(b, (size_t)n + 1) != LM_OK) {
        return LM_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LM_OK;
}

int
lm_format_timestamp(int64_t us, char *buf, size_t cap)
{
    char t[40];
    size_t n = lm_time_format(us, 6, t);
    return snprintf(buf, cap, "%s", t) >= 0 ? (int)n : 0;
}

int
lm_format_double(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(buf, cap, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v) {
            return n;
        }
    }
    return 0;
}

static int
json_string(lm_buf *out, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (lm_buf_reserve(out, n * 6 + 2) != LM_OK) {
        return LM_ENOMEM;
    }
    out->p[out->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            out->p[out->len++] = '\\';
            out->p[out->len++] = (char)c;
        } else if (c == '\n') {
            out->p[out->len++] = '\\';
            out->p[out->len++] = 'n';
        } else if (c == '\r') {
            out->p[out->len++] = '\\';
            out->p[out->len++] = 'r';
        } else if (c == '\t') {
            out->p[out->len++] = '\\';
            out->p[out->len++] = 't';
        } else if (c < 0x20) {
            memcpy(out->p + out->len, "\\u00", 4);
            out->len += 4;
            out->p[out->len++] = hex[c >> 4];
            out->p[out->len++] = hex[c & 15];
        } else {
            out->p[out->len++] = (char)c;
        }
    }
    out->p[out->len++] = '"';
    return LM_OK;
}

/* The text of a non-null value, and how to write it: 0 a number or bool
 * in buf (as is), 1 a timestamp in buf (quoted in JSON), 2 UTF-8 bytes at
 * ptr, 3 a non-finite float in buf (null in JSON), 4 binary bytes at ptr
 * (hexadecimal). */
static int
value_text(const lm_batch *b, uint32_t c, uint32_t r, char *buf, size_t cap, const uint8_t **ptr,
           size_t *len)
{
    lm_value v;
    lm_batch_get(b, c, r, &v);
    switch (b->schema->fields[c].type) {
    case LM_TYPE_BOOL: *len = (size_t)snprintf(buf, cap, "%s", v.v.b ? "true" : "false"); return 0;
    case LM_TYPE_INT64: *len = (size_t)snprintf(buf, cap, "%lld", (long long)v.v.i); return 0;
    case LM_TYPE_FLOAT64:
        if (!isfinite(v.v.f)) {
            *len = (size_t)snprintf(buf, cap, "%s",
                                    isnan(v.v.f) ? "nan"
                                    : v.v.f > 0  ? "inf"
                                                 : "-inf");
            return 3;
        }
        *len = (size_t)lm_format_double(v.v.f, buf, cap);
        return 0;
    case LM_TYPE_TIMESTAMP: *len = (size_t)lm_format_timestamp(v.v.i, buf, cap); return 1;
    case LM_TYPE_UTF8:
        *ptr = v.v.s.ptr;
        *len = v.v.s.len;
        return 2;
    case LM_TYPE_BINARY:
        *ptr = v.v.s.ptr;
        *len = v.v.s.len;
        return 4;
    }
    return 0;
}

/* Hex of binary bytes into out. */
static int
hex_bytes(lm_buf *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (lm_buf_reserve(out, n * 2) != LM_OK) {
        return LM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        out->p[out->len++] = hex[p[i] >> 4];
        out->p[out->len++] = hex[p[i] & 15];
    }
    return LM_OK;
}

int
lm_rowfmt_json(lm_buf *out, const lm_batch *b, uint32_t r)
{
    const lm_schema *s = b->schema;
    char buf[64];
    int rv = lm_buf_append(out, "{", 1);

    for (uint32_t c = 0; c < s->nfields && rv == LM_OK; c++) {
        const uint8_t *ptr = NULL;
        size_t len = 0;
        if (c > 0) {
            rv = lm_buf_append(out, ",", 1);
        }
        rv = rv || json_string(out, (const uint8_t *)s->fields[c].name, strlen(s->fields[c].name));
        rv = rv || lm_buf_append(out, ":", 1);
        if (rv != LM_OK) {
            break;
        }
        if (lm_batch_is_null(b, c, r)) {
            rv = lm_buf_append(out, "null", 4);
            continue;
        }
        switch (value_text(b, c, r, buf, sizeof(buf), &ptr, &len)) {
        case 0: rv = lm_buf_append(out, buf, len); break;
        case 1: rv = json_string(out, (const uint8_t *)buf, len); break;
        case 2: rv = json_string(out, ptr, len); break;
        case 3: rv = lm_buf_append(out, "null", 4); break;
        default:
            rv = lm_buf_append(out, "\"", 1) || hex_bytes(out, ptr, len) ||
                 lm_buf_append(out, "\"", 1);
            break;
        }
    }
    return rv == LM_OK ? lm_buf_append(out, "}\n", 2) : LM_ENOMEM;
}

static int
csv_field(lm_buf *out, const uint8_t *p, size_t n)
{
    bool quote = n == 0 || memchr(p, ',', n) != NULL || memchr(p, '"', n) != NULL ||
                 memchr(p, '\n', n) != NULL || memchr(p, '\r', n) != NULL;
    if (!quote) {
        return lm_buf_append(out, p, n);
    }
    if (lm_buf_reserve(out, n * 2 + 2) != LM_OK) {
        return LM_ENOMEM;
    }
    out->p[out->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') {
            out->p[out->len++] = '"';
        }
        out->p[out->len++] = (char)p[i];
    }
    out->p[out->len++] = '"';
    return LM_OK;
}

int
lm_rowfmt_csv(lm_buf *out, const lm_batch *b, uint32_t r)
{
    const lm_schema *s = b->schema;
    char buf[64];
    int rv = LM_OK;

    for (uint32_t c = 0; c < s->nfields && rv == LM_OK; c++) {
        const uint8_t *ptr = NULL;
        size_t len = 0;
        if (c > 0) {
            rv = lm_buf_append(out, ",", 1);
        }
        if (rv != LM_OK || lm_batch_is_null(b, c, r)) {
            continue;
        }
        switch (value_text(b, c, r, buf, sizeof(buf), &ptr, &len)) {
        case 0:
        case 1:
        case 3: rv = lm_buf_append(out, buf, len); break;
        case 2: rv = csv_field(out, ptr, len); break;
        default:
            /* an empty value is quoted, as for strings: an empty field is null */
            rv = len == 0 ? lm_buf_append(out, "\"\"", 2) : hex_bytes(out, ptr, len);
            break;
        }
    }
    return rv == LM_OK ? lm_buf_append(out, "\n", 1) : LM_ENOMEM;
}

int
lm_rowfmt_csv_header(lm_buf *out, const lm_schema *s)
{
    int rv = LM_OK;
    for (uint32_t c = 0; c < s->nfields && rv == LM_OK; c++) {
        if (c > 0) {
            rv = lm_buf_append(out, ",", 1);
        }
        rv = rv || csv_field(out, (const uint8_t *)s->fields[c].name, strlen(s->fields[c].name));
    }
    return rv == LM_OK ? lm_buf_append(out, "\n", 1) : LM_ENOMEM;
}

/* --- reading values back ------------------------------------------------- */

const char *
lm_rowfmt_quote(const char *s, size_t len, char q, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, show = len > 40 ? 40 : len;

    if (cap < 16) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return buf;
    }
    buf[n++] = q;
    for (size_t i = 0; i < show && n + 9 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != (unsigned char)q && c != '\\') {
            buf[n++] = (char)c;
        } else if (c == (unsigned char)q || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else {
            buf[n++] = '\\';
            buf[n++] = 'x';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        }
    }
    buf[n++] = q;
    if (show < len && n + 4 < cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static int
bad_text(lm_error *err, int code, const char *what, const char *s, size_t len)
{
    char q[200];
    return lm_error_set(err, code, "%s, got %s", what, lm_rowfmt_quote(s, len, '\'', q, sizeof(q)));
}

#define TS_EXPECTED "expected a timestamp (YYYY-MM-DD[ HH:MM:SS[.ffffff]])"

int
lm_rowfmt_parse_timestamp(const char *s, size_t len, int64_t *us, lm_error *err)
{
    int rv = lm_time_parse(s, len, us);

    if (rv == LM_ERANGE) {
        return bad_text(err, LM_EINVAL, "expected a timestamp (no such date or time)", s, len);
    }
    return rv == LM_OK ? LM_OK : bad_text(err, LM_EINVAL, TS_EXPECTED, s, len);
}

/* Optional sign then only digits (at least one). */
static bool
is_integer_text(const char *s, size_t len)
{
    size_t i = len > 0 && (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i == len) {
        return false;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

int
lm_rowfmt_parse_int64(const char *s, size_t len, int64_t *out, lm_error *err)
{
    bool neg = len > 0 && s[0] == '-';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

    if (!is_integer_text(s, len)) {
        return bad_text(err, LM_EINVAL, "expected int64", s, len);
    }
    for (size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0; i < len; i++) {
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (limit - dgt) / 10) {
            return bad_text(err, LM_ERANGE, "expected int64 (out of range)", s, len);
        }
        v = v * 10 + dgt;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return LM_OK;
}

/* Case-insensitive comparison of s[0..len) with the lower-case word w. */
static bool
word_eq(const char *s, size_t len, const char *w)
{
    size_t n = strlen(w);
    if (len != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (tolower((unsigned char)s[i]) != w[i]) {
            return false;
        }
    }
    return true;
}

/* Decimal notation: [+-] (d+[.d*] | .d+) [(e|E)[+-]d+]. */
static bool
is_decimal_text(const char *s, size_t len)
{
    size_t i = 0, nd = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        i++;
    }
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        nd++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            nd++;
        }
    }
    if (nd == 0) {
        return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t ne = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            ne++;
        }
        if (ne == 0) {
            return false;
        }
    }
    return i == len;
}

int
lm_rowfmt_parse_double(const char *s, size_t len, double *out, lm_error *err)
{
    char small[128], *text = small, *end;
    size_t skip = len > 0 && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    double v;

    if (word_eq(s + skip, len - skip, "nan")) {
        *out = NAN;
        return LM_OK;
    }
    if (word_eq(s + skip, len - skip, "inf") || word_eq(s + skip, len - skip, "infinity")) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return LM_OK;
    }
    if (!is_decimal_text(s, len)) {
        return bad_text(err, LM_EINVAL, "expected float64", s, len);
    }
    if (len >= sizeof(small) && (text = malloc(len + 1)) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    memcpy(text, s, len);
    text[len] = '\0';
    errno = 0;
    v = strtod(text, &end);
    if (text != small) {
        free(text);
    }
    if (errno == ERANGE && isinf(v)) {
        return bad_text(err, LM_ERANGE, "expected float64 (out of range)", s, len);
    }
    *out = v;
    return LM_OK;
}

int
lm_rowfmt_parse_bool(const char *s, size_t len, bool *out, lm_error *err)
{
    static const char *const yes[] = {"true", "t", "yes", "y", "on", "1"};
    static const char *const no[] = {"false", "f", "no", "n", "off", "0"};

    for (size_t k = 0; k < sizeof(yes) / sizeof(yes[0]); k++) {
        if (word_eq(s, len, yes[k])) {
            *out = true;
            return LM_OK;
        }
        if (word_eq(s, len, no[k])) {
            *out = false;
            return LM_OK;
        }
    }
    return bad_text(err, LM_EINVAL, "expected bool (true or false)", s, len);
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
lm_rowfmt_parse_hex(const char *s, size_t len, uint8_t *out, lm_error *err)
{
    if (len % 2 != 0) {
        return bad_text(err, LM_EINVAL, "expected binary as hexadecimal (odd length)", s, len);
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return bad_text(err, LM_EINVAL, "expected binary as hexadecimal", s, len);
        }
        /* out[i / 2] is written after s[i] and s[i + 1] are read, and
         * i / 2 <= i: decoding in place never overwrites unread text. */
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return LM_OK;
}

int
lm_rowfmt_parse_value(lm_type t, const char *s, size_t len, uint8_t *bin, lm_value *out,
                      lm_error *err)
{
    int rv;

    out->is_null = false;
    switch (t) {
    case LM_TYPE_BOOL: return lm_rowfmt_parse_bool(s, len, &out->v.b, err);
    case LM_TYPE_INT64: return lm_rowfmt_parse_int64(s, len, &out->v.i, err);
    case LM_TYPE_FLOAT64: return lm_rowfmt_parse_double(s, len, &out->v.f, err);
    case LM_TYPE_TIMESTAMP:
        if (is_integer_text(s, len)) {
            int64_t ms;
            if ((rv = lm_rowfmt_parse_int64(s, len, &ms, NULL)) != LM_OK || ms > INT64_MAX / 1000 ||
                ms < INT64_MIN / 1000) {
                return bad_text(err, LM_ERANGE,
                                "expected a timestamp (milliseconds since the epoch, out of range)",
                                s, len);
            }
            out->v.i = ms * 1000;
            return LM_OK;
        }
        return lm_rowfmt_parse_timestamp(s, len, &out->v.i, err);
    case LM_TYPE_UTF8:
        if (!lm_utf8_valid((const uint8_t *)s, len)) {
            return lm_error_set(err, LM_EINVAL, "invalid UTF-8");
        }
        if (len > INT32_MAX) {
            return lm_error_set(err, LM_ETOOBIG, "string longer than 2 GiB");
        }
        out->v.s.ptr = s;
        out->v.s.len = (uint32_t)len;
        return LM_OK;
    case LM_TYPE_BINARY:
        if (len / 2 > INT32_MAX) {
            return lm_error_set(err, LM_ETOOBIG, "binary value longer than 2 GiB");
        }
        if ((rv = lm_rowfmt_parse_hex(s, len, bin, err)) != LM_OK) {
            return rv;
        }
        out->v.s.ptr = bin;
        out->v.s.len = (uint32_t)(len / 2);
        return LM_OK;
    }
    return lm_error_set(err, LM_EINVAL, "unknown type %d", (int)t);
}
