/*
 * lm_row.c: the canonical row and key encoding.
 */
#include "lm_row.h"

#include <math.h>
#include <string.h>

static inline void
store8(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);
#else
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
#endif
}

static uint64_t
get8(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* The 4-byte little-endian length of a var-width value. */
static uint32_t
get4(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The bytes value (c, r) of b takes encoded, its tag included. */
static inline size_t
value_size(const lm_batch *b, uint32_t c, lm_type t, uint32_t r)
{
    if (lm_batch_is_null(b, c, r)) {
        return 1;
    }
    if (t == LM_TYPE_BOOL) {
        return 2;
    }
    if (lm_type_is_varwidth(t)) {
        const int32_t *off = b->cols[c].values;
        return 5 + (size_t)(off[r + 1] - off[r]);
    }
    return 9;
}

/* Writes value (c, r) of b at w (value_size bytes); returns the end. */
static inline uint8_t *
value_put(uint8_t *w, const lm_batch *b, uint32_t c, lm_type t, uint32_t r)
{
    const lm_column *col = &b->cols[c];

    if (lm_batch_is_null(b, c, r)) {
        *w++ = 0;
        return w;
    }
    *w++ = 1;
    switch (t) {
    case LM_TYPE_BOOL: *w++ = ((const uint8_t *)col->values)[r]; break;
    case LM_TYPE_FLOAT64: {
        double d = ((const double *)col->values)[r];
        uint64_t bits;
        if (d == 0.0) {
            d = 0.0; /* -0.0 and 0.0 are one key */
        }
        if (isnan(d)) {
            d = NAN;
        }
        memcpy(&bits, &d, 8);
        store8(w, bits);
        w += 8;
        break;
    }
    case LM_TYPE_UTF8:
    case LM_TYPE_BINARY: {
        const int32_t *off = col->values;
        uint32_t len = (uint32_t)(off[r + 1] - off[r]);
        w[0] = (uint8_t)len;
        w[1] = (uint8_t)(len >> 8);
        w[2] = (uint8_t)(len >> 16);
        w[3] = (uint8_t)(len >> 24);
        w += 4;
        if (len > 0) {
            memcpy(w, col->data + off[r], len);
            w += len;
        }
        break;
    }
    default:
        store8(w, (uint64_t)((const int64_t *)col->values)[r]);
        w += 8;
        break;
    }
    return w;
}

int
lm_row_encode(const lm_batch *b, const uint32_t *cols, uint32_t n, uint32_t r, lm_buf *out,
              bool *has_null)
{
    bool any_null = false;
    size_t need = 0;
    uint8_t *w;

    /* the size first, so that the bytes go in with one reservation */
    for (uint32_t i = 0; i < n; i++) {
        need += value_size(b, cols[i], b->schema->fields[cols[i]].type, r);
    }
    if (lm_buf_reserve(out, need) != LM_OK) {
        return LM_ENOMEM;
    }
    w = (uint8_t *)out->p + out->len;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = cols[i];
        any_null |= lm_batch_is_null(b, c, r);
        w = value_put(w, b, c, b->schema->fields[c].type, r);
    }
    out->len += need;
    if (has_null != NULL) {
        *has_null = any_null;
    }
    return LM_OK;
}

int
lm_row_encode_rows(const lm_batch *b, const uint32_t *cols, uint32_t n, uint32_t *off,
                   uint8_t *has_null, lm_buf *out)
{
    uint32_t nrows = b->nrows;
    uint64_t total = 0;
    uint8_t *base;

    /* Column by column (each column's buffers are read in order): the
     * lengths into off[r + 1], then the starts, then the bytes, with
     * off[r] as row r's write cursor, which ends at row r + 1's start. */
    memset(off, 0, sizeof(uint32_t) * ((size_t)nrows + 1));
    if (has_null != NULL) {
        memset(has_null, 0, nrows);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = cols[i];
        lm_type t = b->schema->fields[c].type;
        for (uint32_t r = 0; r < nrows; r++) {
            off[r + 1] += (uint32_t)value_size(b, c, t, r);
        }
        if (has_null != NULL && b->cols[c].validity != NULL) {
            for (uint32_t r = 0; r < nrows; r++) {
                has_null[r] |= lm_batch_is_null(b, c, r);
            }
        }
    }
    for (uint32_t r = 0; r < nrows; r++) {
        total += off[r + 1];
        if (total > UINT32_MAX) {
            return LM_ETOOBIG;
        }
        off[r + 1] = (uint32_t)total;
    }
    out->len = 0;
    if (lm_buf_reserve(out, total + 1) != LM_OK) {
        return LM_ENOMEM;
    }
    base = (uint8_t *)out->p;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = cols[i];
        lm_type t = b->schema->fields[c].type;
        for (uint32_t r = 0; r < nrows; r++) {
            off[r] = (uint32_t)(value_put(base + off[r], b, c, t, r) - base);
        }
    }
    for (uint32_t r = nrows; r > 0; r--) {
        off[r] = off[r - 1];
    }
    off[0] = 0;
    out->len = total;
    return LM_OK;
}

int
lm_row_encode_all(const lm_batch *b, uint32_t r, lm_buf *out)
{
    uint32_t cols[LM_SCHEMA_MAX_FIELDS];
    for (uint32_t c = 0; c < b->schema->nfields; c++) {
        cols[c] = c;
    }
    return lm_row_encode(b, cols, b->schema->nfields, r, out, NULL);
}

int
lm_row_decode(lm_batch *out, const uint32_t *out_cols, uint32_t n, uint32_t row, const uint8_t **p,
              const uint8_t *end, lm_error *err)
{
    const uint8_t *q = *p;

    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = out_cols[i];
        lm_type t = out->schema->fields[c].type;
        int rv;
        if (q >= end || *q > 1) {
            return lm_error_set(err, LM_EPROTO, "encoded row: bad tag for column %u", c);
        }
        if (*q++ == 0) {
            if (!out->schema->fields[c].nullable) {
                return lm_error_set(err, LM_EPROTO, "encoded row: null in non-nullable column %u",
                                    c);
            }
            if (lm_batch_put_null(out, c, row) != LM_OK) {
                return lm_error_set(err, LM_ENOMEM, "out of memory");
            }
            continue;
        }
        switch (t) {
        case LM_TYPE_BOOL:
            if (end - q < 1 || *q > 1) {
                return lm_error_set(err, LM_EPROTO, "encoded row: bad bool in column %u", c);
            }
            lm_batch_bools(out, c)[row] = *q++;
            break;
        case LM_TYPE_UTF8:
        case LM_TYPE_BINARY: {
            uint32_t len;
            if (end - q < 4) {
                return lm_error_set(err, LM_EPROTO, "encoded row: truncated column %u", c);
            }
            len = get4(q);
            q += 4;
            if ((size_t)(end - q) < len) {
                return lm_error_set(err, LM_EPROTO, "encoded row: truncated column %u", c);
            }
            if (t == LM_TYPE_UTF8 && !lm_utf8_valid(q, len)) {
                return lm_error_set(err, LM_EPROTO, "encoded row: bad UTF-8 in column %u", c);
            }
            if ((rv = lm_batch_put_bytes(out, c, row, q, len)) != LM_OK) {
                return lm_error_set(err, rv, "%s", lm_strerror(rv));
            }
            q += len;
            break;
        }
        default:
            if (end - q < 8) {
                return lm_error_set(err, LM_EPROTO, "encoded row: truncated column %u", c);
            }
            lm_batch_i64(out, c)[row] = (int64_t)get8(q);
            q += 8;
            break;
        }
    }
    *p = q;
    return LM_OK;
}

int
lm_row_append(lm_batch *out, const uint8_t *p, size_t len, lm_error *err)
{
    uint32_t cols[LM_SCHEMA_MAX_FIELDS];
    uint32_t row = out->nrows;
    const uint8_t *q = p, *end = p + len;
    int rv;

    for (uint32_t c = 0; c < out->schema->nfields; c++) {
        cols[c] = c;
    }
    if (row + 1 > out->capacity &&
        (rv = lm_batch_reserve(out, out->capacity * 2 > row + 1 ? out->capacity * 2 : row + 1)) !=
            LM_OK) {
        return lm_error_set(err, rv, "%s", lm_strerror(rv));
    }
    if ((rv = lm_row_decode(out, cols, out->schema->nfields, row, &q, end, err)) != LM_OK) {
        lm_batch_discard_uncommitted(out);
        return rv;
    }
    if (q != end) {
        lm_batch_discard_uncommitted(out);
        return lm_error_set(err, LM_EPROTO, "encoded row: %zu trailing bytes", (size_t)(end - q));
    }
    lm_batch_commit_rows(out, 1);
    return LM_OK;
}

int
lm_row_skip(const lm_type *types, uint32_t n, const uint8_t **p, const uint8_t *end)
{
    const uint8_t *q = *p;

    for (uint32_t i = 0; i < n; i++) {
        if (q >= end || *q > 1) {
            return LM_EPROTO;
        }
        if (*q++ == 0) {
            continue;
        }
        if (types[i] == LM_TYPE_BOOL) {
            if (end - q < 1 || *q > 1) {
                return LM_EPROTO;
            }
            q += 1;
        } else if (lm_type_is_varwidth(types[i])) {
            uint32_t len;
            if (end - q < 4) {
                return LM_EPROTO;
            }
            len = get4(q);
            q += 4;
            if ((size_t)(end - q) < len) {
                return LM_EPROTO;
            }
            q += len;
        } else {
            if (end - q < 8) {
                return LM_EPROTO;
            }
            q += 8;
        }
    }
    *p = q;
    return LM_OK;
}
