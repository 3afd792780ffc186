/*
 * check_row.c: the canonical row and key encoding (lm_row).
 *
 * Round trips of every type (nulls, empty strings, binaries with zero
 * bytes, extreme values), the documented bytes, canonical floats (-0.0 and
 * 0.0, NaNs with any sign and payload), keys of a subset of the columns
 * with has_null, decoding row after row column-wise, skipping, every
 * truncation and every kind of bad byte rejected with LM_EPROTO (the suite
 * also runs under ASan, and truncated inputs are copied to buffers of
 * exactly their length), and a batch that stays usable after a rejected
 * row.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_batch.h"
#include "lm_row.h"
#include "lm_rowfmt.h"

enum { F_B, F_I, F_F, F_TS, F_S, F_BIN, F_ID, F_NAME, NF };

static const lm_field row_fields[NF] = {
    {"b", LM_TYPE_BOOL, true},       {"i", LM_TYPE_INT64, true},    {"f", LM_TYPE_FLOAT64, true},
    {"ts", LM_TYPE_TIMESTAMP, true}, {"s", LM_TYPE_UTF8, true},     {"bin", LM_TYPE_BINARY, true},
    {"id", LM_TYPE_INT64, false},    {"name", LM_TYPE_UTF8, false},
};

static const lm_type row_types[NF] = {LM_TYPE_BOOL,      LM_TYPE_INT64, LM_TYPE_FLOAT64,
                                      LM_TYPE_TIMESTAMP, LM_TYPE_UTF8,  LM_TYPE_BINARY,
                                      LM_TYPE_INT64,     LM_TYPE_UTF8};

static const uint8_t zero_bin[] = {0, 0, 7, 0, 0xff, 0};
static const char utf8_text[] = "grüße, 世界 🎉";

enum { NROWS = 12 };

/* Row i of the sample: every type, nulls, empty values, extremes. */
static void
sample_row(uint32_t i, lm_value *v)
{
    static const double floats[NROWS] = {0.0,      -0.0, 1.5, -1e308, INFINITY, -INFINITY,
                                         4.9e-324, NAN,  2.0, -3.25,  1e-300,   6.02214076e23};
    static const int64_t ints[NROWS] = {0,   -1,        1,   INT64_MIN, INT64_MAX, 42,
                                        -42, 1ll << 40, 255, 256,       -256,      7};
    memset(v, 0, sizeof(lm_value) * NF);
    v[F_B].is_null = i % 5 == 4;
    v[F_B].v.b = i % 2 == 0;
    v[F_I].is_null = i % 4 == 3;
    v[F_I].v.i = ints[i];
    v[F_F].is_null = i == 9;
    v[F_F].v.f = floats[i];
    v[F_TS].is_null = i % 6 == 5;
    v[F_TS].v.i = 1700000000000000ll + (int64_t)i * 1000003;
    v[F_S].is_null = i % 7 == 6;
    v[F_S].v.s.ptr = i % 3 == 0 ? "" : i % 3 == 1 ? utf8_text : "plain";
    v[F_S].v.s.len = (uint32_t)strlen(v[F_S].v.s.ptr);
    v[F_BIN].is_null = i % 8 == 7;
    v[F_BIN].v.s.ptr = zero_bin;
    v[F_BIN].v.s.len = i % 3 == 1 ? 0 : (uint32_t)(i % sizeof(zero_bin)) + 1;
    v[F_ID].v.i = (int64_t)i * 1000;
    v[F_NAME].v.s.ptr = i % 2 == 0 ? "" : "name";
    v[F_NAME].v.s.len = (uint32_t)strlen(v[F_NAME].v.s.ptr);
}

static lm_schema *
new_schema(const lm_field *fields, uint32_t n)
{
    lm_schema *s = NULL;
    lm_error err;
    ck_assert_msg(lm_schema_new(fields, n, &s, &err) == LM_OK, "%s", err.msg);
    return s;
}

static lm_batch *
new_batch(const lm_field *fields, uint32_t n, uint32_t cap)
{
    lm_schema *s = new_schema(fields, n);
    lm_batch *b = NULL;
    ck_assert_int_eq(lm_batch_new(s, cap, &b), LM_OK);
    lm_schema_release(s);
    return b;
}

static void
append_ok(lm_batch *b, const lm_value *row)
{
    lm_error err;
    ck_assert_msg(lm_batch_append_row(b, row, &err) == LM_OK, "append: %s", err.msg);
}

static lm_batch *
sample_batch(void)
{
    lm_batch *b = new_batch(row_fields, NF, 4);
    for (uint32_t i = 0; i < NROWS; i++) {
        lm_value v[NF];
        sample_row(i, v);
        append_ok(b, v);
    }
    return b;
}

/* The value a round trip must give: the canonical one (floats: -0.0 is
 * 0.0 and every NaN is a NaN). */
static void
assert_value(lm_type t, const lm_value *want, const lm_value *got, uint32_t c, uint32_t r)
{
    ck_assert_msg(want->is_null == got->is_null, "col %u row %u: null %d, want %d", c, r,
                  got->is_null, want->is_null);
    if (want->is_null) {
        return;
    }
    switch (t) {
    case LM_TYPE_BOOL: ck_assert_msg(want->v.b == got->v.b, "col %u row %u", c, r); break;
    case LM_TYPE_INT64:
    case LM_TYPE_TIMESTAMP:
        ck_assert_msg(want->v.i == got->v.i, "col %u row %u: %lld, want %lld", c, r,
                      (long long)got->v.i, (long long)want->v.i);
        break;
    case LM_TYPE_FLOAT64:
        if (isnan(want->v.f)) {
            ck_assert_msg(isnan(got->v.f), "col %u row %u: NaN lost", c, r);
        } else {
            double w = want->v.f == 0.0 ? 0.0 : want->v.f;
            ck_assert_msg(memcmp(&w, &got->v.f, 8) == 0, "col %u row %u: %g, want %g", c, r,
                          got->v.f, w);
        }
        break;
    case LM_TYPE_UTF8:
    case LM_TYPE_BINARY:
        ck_assert_msg(want->v.s.len == got->v.s.len, "col %u row %u: length %u, want %u", c, r,
                      got->v.s.len, want->v.s.len);
        ck_assert_msg(want->v.s.len == 0 || memcmp(want->v.s.ptr, got->v.s.ptr, want->v.s.len) == 0,
                      "col %u row %u: bytes differ", c, r);
        break;
    }
}

/* Asserts that row r of b is sample row i. */
static void
assert_sample_row(const lm_batch *b, uint32_t r, uint32_t i)
{
    lm_value want[NF];
    sample_row(i, want);
    for (uint32_t c = 0; c < NF; c++) {
        lm_value got;
        lm_batch_get(b, c, r, &got);
        assert_value(row_types[c], &want[c], &got, c, r);
    }
}

/* The encoding of sample row i (caller frees). */
static uint8_t *
encode_sample(uint32_t i, size_t *len)
{
    lm_batch *b = sample_batch();
    lm_buf buf;
    uint8_t *p;

    lm_buf_init(&buf);
    ck_assert_int_eq(lm_row_encode_all(b, i, &buf), LM_OK);
    p = malloc(buf.len > 0 ? buf.len : 1);
    memcpy(p, buf.p, buf.len);
    *len = buf.len;
    lm_buf_fini(&buf);
    lm_batch_free(b);
    return p;
}

/* --- round trips ------------------------------------------------------------- */

START_TEST(test_row_roundtrip_every_type)
{
    lm_batch *b = sample_batch();
    lm_batch *out = new_batch(row_fields, NF, 0);

    for (uint32_t i = 0; i < NROWS; i++) {
        lm_buf buf;
        lm_error err;
        lm_buf_init(&buf);
        ck_assert_int_eq(lm_row_encode_all(b, i, &buf), LM_OK);
        lm_error_clear(&err);
        ck_assert_msg(lm_row_append(out, (const uint8_t *)buf.p, buf.len, &err) == LM_OK,
                      "row %u: %s", i, err.msg);
        lm_buf_fini(&buf);
    }
    ck_assert_uint_eq(out->nrows, NROWS);
    for (uint32_t i = 0; i < NROWS; i++) {
        assert_sample_row(out, i, i);
    }
    /* Re-encoding the decoded rows gives the same bytes. */
    for (uint32_t i = 0; i < NROWS; i++) {
        lm_buf x, y;
        lm_buf_init(&x);
        lm_buf_init(&y);
        ck_assert_int_eq(lm_row_encode_all(b, i, &x), LM_OK);
        ck_assert_int_eq(lm_row_encode_all(out, i, &y), LM_OK);
        ck_assert_uint_eq(x.len, y.len);
        ck_assert(memcmp(x.p, y.p, x.len) == 0);
        lm_buf_fini(&x);
        lm_buf_fini(&y);
    }
    lm_batch_free(b);
    lm_batch_free(out);
}
END_TEST

/* The bytes are exactly the documented ones. */
START_TEST(test_row_encoding_is_the_documented_bytes)
{
    lm_batch *b = new_batch(row_fields, NF, 1);
    lm_value v[NF];
    lm_buf buf;
    double f = 1.5;
    uint64_t fb;
    uint8_t want[128];
    size_t n = 0;
    bool has_null = false;
    uint32_t cols[NF];

    memset(v, 0, sizeof(v));
    v[F_B].v.b = true;
    v[F_I].v.i = -2;
    v[F_F].v.f = f;
    v[F_TS].is_null = true;
    v[F_S].v.s.ptr = "h\xc3\xa9";
    v[F_S].v.s.len = 3;
    v[F_BIN].v.s.ptr = zero_bin;
    v[F_BIN].v.s.len = 3;
    v[F_ID].v.i = 0x0102030405060708ll;
    v[F_NAME].v.s.ptr = "";
    v[F_NAME].v.s.len = 0;
    append_ok(b, v);

    want[n++] = 1; /* bool */
    want[n++] = 1;
    want[n++] = 1; /* int64 -2 */
    for (int k = 0; k < 8; k++) {
        want[n++] = k == 0 ? 0xfe : 0xff;
    }
    want[n++] = 1; /* float64 1.5 */
    memcpy(&fb, &f, 8);
    for (int k = 0; k < 8; k++) {
        want[n++] = (uint8_t)(fb >> (8 * k));
    }
    want[n++] = 0; /* null timestamp: the tag alone */
    want[n++] = 1; /* utf8 */
    want[n++] = 3;
    want[n++] = 0;
    want[n++] = 0;
    want[n++] = 0;
    want[n++] = 'h';
    want[n++] = 0xc3;
    want[n++] = 0xa9;
    want[n++] = 1; /* binary */
    want[n++] = 3;
    want[n++] = 0;
    want[n++] = 0;
    want[n++] = 0;
    want[n++] = 0;
    want[n++] = 0;
    want[n++] = 7;
    want[n++] = 1; /* int64, little-endian */
    for (int k = 0; k < 8; k++) {
        want[n++] = (uint8_t)(8 - k);
    }
    want[n++] = 1; /* empty utf8 */
    for (int k = 0; k < 4; k++) {
        want[n++] = 0;
    }

    lm_buf_init(&buf);
    for (uint32_t c = 0; c < NF; c++) {
        cols[c] = c;
    }
    ck_assert_int_eq(lm_row_encode(b, cols, NF, 0, &buf, &has_null), LM_OK);
    ck_assert(has_null);
    ck_assert_uint_eq(buf.len, n);
    ck_assert_mem_eq(buf.p, want, n);

    /* encode appends; encode_all is the same bytes. */
    ck_assert_int_eq(lm_row_encode_all(b, 0, &buf), LM_OK);
    ck_assert_uint_eq(buf.len, 2 * n);
    ck_assert_mem_eq(buf.p + n, want, n);
    lm_buf_fini(&buf);
    lm_batch_free(b);
}
END_TEST

/* -0.0 and 0.0 are one key; every NaN is one key; and they are distinct
 * from other values. */
START_TEST(test_row_floats_are_canonical)
{
    static const lm_field ff[1] = {{"x", LM_TYPE_FLOAT64, true}};
    static const uint64_t nan_bits[] = {
        0x7ff8000000000000ull, /* the usual quiet NaN */
        0xfff8000000000000ull, /* negative */
        0x7ff0000000000001ull, /* signalling, payload 1 */
        0x7ff800000000beefull, /* payload */
        0xffffffffffffffffull, /* all ones */
    };
    lm_batch *b = new_batch(ff, 1, 8);
    uint32_t col = 0;
    lm_buf k[8];
    size_t nk = 0;
    lm_value v;

    memset(&v, 0, sizeof(v));
    v.v.f = 0.0;
    append_ok(b, &v);
    v.v.f = -0.0;
    append_ok(b, &v);
    for (size_t i = 0; i < sizeof(nan_bits) / sizeof(nan_bits[0]); i++) {
        memcpy(&v.v.f, &nan_bits[i], 8);
        ck_assert(isnan(v.v.f));
        append_ok(b, &v);
    }
    v.v.f = 1.0;
    append_ok(b, &v);
    for (uint32_t r = 0; r < b->nrows; r++) {
        bool has_null = true;
        lm_buf_init(&k[nk]);
        ck_assert_int_eq(lm_row_encode(b, &col, 1, r, &k[nk], &has_null), LM_OK);
        ck_assert(!has_null);
        ck_assert_uint_eq(k[nk].len, 9);
        nk++;
    }
    ck_assert_msg(memcmp(k[0].p, k[1].p, 9) == 0, "-0.0 and 0.0 encode differently");
    for (size_t i = 3; i < 2 + sizeof(nan_bits) / sizeof(nan_bits[0]); i++) {
        ck_assert_msg(memcmp(k[2].p, k[i].p, 9) == 0, "NaN %zu encodes differently", i - 2);
    }
    ck_assert(memcmp(k[0].p, k[2].p, 9) != 0);
    ck_assert(memcmp(k[0].p, k[nk - 1].p, 9) != 0);
    ck_assert(memcmp(k[2].p, k[nk - 1].p, 9) != 0);

    /* Decoded: +0.0 (sign cleared), a NaN. */
    {
        lm_batch *out = new_batch(ff, 1, 0);
        lm_error err;
        ck_assert_int_eq(lm_row_append(out, (const uint8_t *)k[1].p, 9, &err), LM_OK);
        ck_assert_int_eq(lm_row_append(out, (const uint8_t *)k[3].p, 9, &err), LM_OK);
        ck_assert(lm_batch_f64(out, 0)[0] == 0.0 && !signbit(lm_batch_f64(out, 0)[0]));
        ck_assert(isnan(lm_batch_f64(out, 0)[1]));
        lm_batch_free(out);
    }
    for (size_t i = 0; i < nk; i++) {
        lm_buf_fini(&k[i]);
    }
    lm_batch_free(b);
}
END_TEST

/* Keys of some columns, in the caller's order: equal values in different
 * batches and rows give equal bytes; has_null says whether any key column
 * is null; string boundaries are part of the key. */
START_TEST(test_row_keys_of_some_columns)
{
    static const lm_field kf[3] = {
        {"a", LM_TYPE_UTF8, true}, {"n", LM_TYPE_INT64, true}, {"b", LM_TYPE_UTF8, true}};
    lm_batch *x = new_batch(kf, 3, 2), *y = new_batch(kf, 3, 2);
    const uint32_t key[2] = {2, 0}, key_n[1] = {1};
    lm_value v[3];
    lm_buf kx, ky;
    bool has_null;

    memset(v, 0, sizeof(v));
    /* x: row 0 is filler, row 1 is ("ab", 5, "c"). */
    v[0].v.s.ptr = "zzzzzz";
    v[0].v.s.len = 6;
    v[1].is_null = true;
    v[2].v.s.ptr = "";
    append_ok(x, v);
    v[0].v.s.ptr = "ab";
    v[0].v.s.len = 2;
    v[1].is_null = false;
    v[1].v.i = 5;
    v[2].v.s.ptr = "c";
    v[2].v.s.len = 1;
    append_ok(x, v);
    /* y: row 0 is ("ab", 9, "c"), row 1 is ("a", 5, "bc"). */
    v[1].v.i = 9;
    append_ok(y, v);
    v[0].v.s.len = 1;
    v[1].v.i = 5;
    v[2].v.s.ptr = "bc";
    v[2].v.s.len = 2;
    append_ok(y, v);

    lm_buf_init(&kx);
    lm_buf_init(&ky);
    ck_assert_int_eq(lm_row_encode(x, key, 2, 1, &kx, &has_null), LM_OK);
    ck_assert(!has_null);
    ck_assert_int_eq(lm_row_encode(y, key, 2, 0, &ky, NULL), LM_OK);
    ck_assert_uint_eq(kx.len, ky.len);
    ck_assert_msg(memcmp(kx.p, ky.p, kx.len) == 0, "equal keys, different bytes");
    ck_assert_uint_eq(kx.len, (1 + 4 + 1) + (1 + 4 + 2)); /* "c" then "ab" */
    ck_assert_int_eq(((const uint8_t *)kx.p)[5], 'c');

    /* ("a", "bc") is another key than ("ab", "c"). */
    ky.len = 0;
    ck_assert_int_eq(lm_row_encode(y, key, 2, 1, &ky, NULL), LM_OK);
    ck_assert(kx.len != ky.len || memcmp(kx.p, ky.p, kx.len) != 0);

    /* A null key column. */
    kx.len = 0;
    ck_assert_int_eq(lm_row_encode(x, key_n, 1, 0, &kx, &has_null), LM_OK);
    ck_assert(has_null);
    ck_assert_uint_eq(kx.len, 1);
    ck_assert_int_eq(((const uint8_t *)kx.p)[0], 0);

    /* Decoding the key into a batch of the key's own schema. */
    {
        static const lm_field outf[2] = {{"b", LM_TYPE_UTF8, true}, {"a", LM_TYPE_UTF8, true}};
        lm_batch *out = new_batch(outf, 2, 0);
        lm_value got;
        lm_error err;
        kx.len = 0;
        ck_assert_int_eq(lm_row_encode(x, key, 2, 1, &kx, NULL), LM_OK);
        ck_assert_int_eq(lm_row_append(out, (const uint8_t *)kx.p, kx.len, &err), LM_OK);
        lm_batch_get(out, 0, 0, &got);
        ck_assert_uint_eq(got.v.s.len, 1);
        ck_assert_mem_eq(got.v.s.ptr, "c", 1);
        lm_batch_get(out, 1, 0, &got);
        ck_assert_uint_eq(got.v.s.len, 2);
        ck_assert_mem_eq(got.v.s.ptr, "ab", 2);
        lm_batch_free(out);
    }
    lm_buf_fini(&kx);
    lm_buf_fini(&ky);
    lm_batch_free(x);
    lm_batch_free(y);
}
END_TEST

/* A whole batch's keys at once: row for row the bytes of lm_row_encode,
 * with the rows that have a null among them marked. */
START_TEST(test_row_encode_rows_matches_row_by_row)
{
    static const uint32_t keys[][NF] = {{F_S, F_I, F_F}, {F_B, F_TS, F_BIN, F_NAME}, {F_ID}};
    static const uint32_t nkeys[] = {3, 4, 1};
    lm_batch *b = sample_batch();
    uint32_t off[NROWS + 1];
    uint8_t has_null[NROWS];
    lm_buf all, one;

    lm_buf_init(&all);
    lm_buf_init(&one);
    for (size_t k = 0; k < sizeof(nkeys) / sizeof(nkeys[0]); k++) {
        ck_assert_int_eq(lm_row_encode_rows(b, keys[k], nkeys[k], off, has_null, &all), LM_OK);
        ck_assert_uint_eq(off[0], 0);
        ck_assert_uint_eq(off[NROWS], all.len);
        for (uint32_t r = 0; r < NROWS; r++) {
            bool null;
            one.len = 0;
            ck_assert_int_eq(lm_row_encode(b, keys[k], nkeys[k], r, &one, &null), LM_OK);
            ck_assert_msg(off[r + 1] - off[r] == one.len, "key %zu row %u: %u bytes, want %zu", k,
                          r, off[r + 1] - off[r], one.len);
            ck_assert_msg(memcmp(all.p + off[r], one.p, one.len) == 0,
                          "key %zu row %u: bytes differ", k, r);
            ck_assert_int_eq(has_null[r], null);
        }
    }
    /* without null flags, and an empty batch */
    ck_assert_int_eq(lm_row_encode_rows(b, keys[0], nkeys[0], off, NULL, &all), LM_OK);
    ck_assert_uint_eq(off[NROWS], all.len);
    lm_batch_clear(b);
    ck_assert_int_eq(lm_row_encode_rows(b, keys[0], nkeys[0], off, has_null, &all), LM_OK);
    ck_assert_uint_eq(off[0], 0);
    ck_assert_uint_eq(all.len, 0);
    lm_buf_fini(&all);
    lm_buf_fini(&one);
    lm_batch_free(b);
}
END_TEST

/* Column-wise: many rows decoded one after another into reserved rows,
 * committed at once; then the same bytes read through lm_row_skip. */
START_TEST(test_row_decode_and_skip_row_after_row)
{
    enum { N = 600 };
    lm_batch *b = sample_batch();
    lm_batch *out = new_batch(row_fields, NF, 0);
    lm_buf all;
    const uint8_t *p, *end;
    uint32_t cols[NF];
    lm_error err;

    lm_buf_init(&all);
    for (uint32_t r = 0; r < N; r++) {
        ck_assert_int_eq(lm_row_encode_all(b, r % NROWS, &all), LM_OK);
    }
    for (uint32_t c = 0; c < NF; c++) {
        cols[c] = c;
    }
    ck_assert_int_eq(lm_batch_reserve(out, N), LM_OK);
    p = (const uint8_t *)all.p;
    end = p + all.len;
    for (uint32_t r = 0; r < N; r++) {
        ck_assert_msg(lm_row_decode(out, cols, NF, r, &p, end, &err) == LM_OK, "row %u: %s", r,
                      err.msg);
    }
    ck_assert_ptr_eq(p, end);
    lm_batch_commit_rows(out, N);
    ck_assert_uint_eq(out->nrows, N);
    for (uint32_t r = 0; r < N; r++) {
        assert_sample_row(out, r, r % NROWS);
    }

    /* Skip whole rows, or the first three values then decode the rest. */
    p = (const uint8_t *)all.p;
    for (uint32_t r = 0; r < N; r++) {
        const uint8_t *q = p;
        ck_assert_int_eq(lm_row_skip(row_types, NF, &p, end), LM_OK);
        ck_assert_int_eq(lm_row_skip(row_types, 3, &q, end), LM_OK);
        ck_assert_int_eq(lm_row_skip(row_types + 3, NF - 3, &q, end), LM_OK);
        ck_assert_ptr_eq(p, q);
    }
    ck_assert_ptr_eq(p, end);
    {
        static const lm_field tail[NF - 3] = {
            {"ts", LM_TYPE_TIMESTAMP, true}, {"s", LM_TYPE_UTF8, true},
            {"bin", LM_TYPE_BINARY, true},   {"id", LM_TYPE_INT64, false},
            {"name", LM_TYPE_UTF8, false},
        };
        lm_batch *t = new_batch(tail, NF - 3, 1);
        lm_value want[NF], got;
        p = (const uint8_t *)all.p;
        for (uint32_t r = 0; r < 2 * NROWS; r++) {
            ck_assert_int_eq(lm_row_skip(row_types, 3, &p, end), LM_OK);
            ck_assert_int_eq(lm_batch_reserve(t, r + 1), LM_OK);
            ck_assert_int_eq(lm_row_decode(t, cols, NF - 3, r, &p, end, &err), LM_OK);
            lm_batch_commit_rows(t, 1);
        }
        for (uint32_t r = 0; r < 2 * NROWS; r++) {
            sample_row(r % NROWS, want);
            for (uint32_t c = 3; c < NF; c++) {
                lm_batch_get(t, c - 3, r, &got);
                assert_value(row_types[c], &want[c], &got, c, r);
            }
        }
        lm_batch_free(t);
    }
    lm_buf_fini(&all);
    lm_batch_free(b);
    lm_batch_free(out);
}
END_TEST

/* --- bad input ------------------------------------------------------------------ */

/* Every prefix of a row is rejected by append, decode and skip, which
 * leave the cursor where it was. */
START_TEST(test_row_truncated_input_is_eproto_at_every_cut)
{
    uint32_t cols[NF];

    for (uint32_t c = 0; c < NF; c++) {
        cols[c] = c;
    }
    for (uint32_t i = 0; i < NROWS; i++) {
        size_t len;
        uint8_t *enc = encode_sample(i, &len);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *p = malloc(cut > 0 ? cut : 1);
            const uint8_t *q;
            lm_batch *out = new_batch(row_fields, NF, 0);
            lm_error err;
            int rv;

            memcpy(p, enc, cut);
            lm_error_clear(&err);
            rv = lm_row_append(out, p, cut, &err);
            ck_assert_msg(rv == LM_EPROTO, "row %u cut at %zu of %zu: append gave %s", i, cut, len,
                          lm_errname(rv));
            ck_assert(err.code == LM_EPROTO && err.msg[0] != '\0');
            ck_assert_uint_eq(out->nrows, 0);
            lm_batch_free(out);

            out = new_batch(row_fields, NF, 1);
            q = p;
            lm_error_clear(&err);
            rv = lm_row_decode(out, cols, NF, 0, &q, p + cut, &err);
            ck_assert_msg(rv == LM_EPROTO, "row %u cut at %zu: decode gave %s", i, cut,
                          lm_errname(rv));
            ck_assert(err.msg[0] != '\0');
            ck_assert_ptr_eq(q, p);
            lm_batch_free(out);

            q = p;
            rv = lm_row_skip(row_types, NF, &q, p + cut);
            ck_assert_msg(rv == LM_EPROTO, "row %u cut at %zu: skip gave %s", i, cut,
                          lm_errname(rv));
            ck_assert_ptr_eq(q, p);
            free(p);
        }
        free(enc);
    }
}
END_TEST

/* One-column rows of bytes that do not hold such a value. */
START_TEST(test_row_rejects_bad_bytes)
{
    static const struct {
        lm_field f;
        uint8_t bytes[12];
        size_t len;
        const char *why;
    } bad[] = {
        {{"x", LM_TYPE_INT64, true}, {2, 1, 2, 3, 4, 5, 6, 7, 8}, 9, "tag 2"},
        {{"x", LM_TYPE_INT64, true}, {0xff}, 1, "tag 255"},
        {{"x", LM_TYPE_BOOL, true}, {1, 2}, 2, "bool 2"},
        {{"x", LM_TYPE_INT64, false}, {0}, 1, "null in a non-nullable column"},
        {{"x", LM_TYPE_UTF8, false}, {0}, 1, "null in a non-nullable string"},
        {{"x", LM_TYPE_UTF8, true}, {1, 2, 0, 0, 0, 0xc3, 0x28}, 7, "bad UTF-8"},
        {{"x", LM_TYPE_UTF8, true}, {1, 1, 0, 0, 0, 0x80}, 6, "lone continuation byte"},
        {{"x", LM_TYPE_BINARY, true}, {1, 0xff, 0xff, 0xff, 0xff, 0}, 6, "length 4 GiB"},
        {{"x", LM_TYPE_BINARY, true}, {1, 0, 0, 0, 0x80, 1}, 6, "length 2 GiB"},
        {{"x", LM_TYPE_INT64, true}, {1, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 10, "a trailing byte"},
        {{"x", LM_TYPE_BOOL, true}, {0, 0}, 2, "a trailing byte after a null"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lm_batch *out = new_batch(&bad[i].f, 1, 0);
        uint8_t *p = malloc(bad[i].len);
        lm_error err;
        int rv;
        memcpy(p, bad[i].bytes, bad[i].len);
        lm_error_clear(&err);
        rv = lm_row_append(out, p, bad[i].len, &err);
        ck_assert_msg(rv == LM_EPROTO, "%s: %s", bad[i].why, lm_errname(rv));
        ck_assert_msg(err.msg[0] != '\0', "%s: no message", bad[i].why);
        ck_assert_uint_eq(out->nrows, 0);
        free(p);
        lm_batch_free(out);
    }
}
END_TEST

/* A rejected row leaves the batch as it was: the rows appended before and
 * after it are intact (no bytes, nulls or counts of the rejected row
 * leak into the next one). */
START_TEST(test_row_rejected_row_leaves_the_batch_usable)
{
    lm_batch *out = new_batch(row_fields, NF, 0);
    size_t l0, l1, l3;
    uint8_t *r0 = encode_sample(0, &l0);
    uint8_t *r1 = encode_sample(1, &l1); /* its strings are non-empty */
    uint8_t *r3 = encode_sample(3, &l3); /* nulls where row 1 has values */
    lm_error err;

    ck_assert_int_eq(lm_row_append(out, r0, l0, &err), LM_OK);
    /* Row 3 with its last byte missing: fails at the last column, after the
     * earlier ones (nulls and strings) went into the batch. */
    ck_assert_int_eq(lm_row_append(out, r3, l3 - 1, &err), LM_EPROTO);
    ck_assert_uint_eq(out->nrows, 1);
    ck_assert_int_eq(lm_row_append(out, r1, l1, &err), LM_OK);
    ck_assert_uint_eq(out->nrows, 2);
    assert_sample_row(out, 0, 0);
    assert_sample_row(out, 1, 1);
    {
        lm_value want[NF];
        uint32_t nulls = 0;
        sample_row(0, want);
        nulls += want[F_I].is_null;
        sample_row(1, want);
        nulls += want[F_I].is_null;
        ck_assert_uint_eq(out->cols[F_I].null_count, nulls);
    }
    free(r0);
    free(r1);
    free(r3);
    lm_batch_free(out);
}
END_TEST

Suite *
row_suite(void)
{
    Suite *s = suite_create("row");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_row_roundtrip_every_type);
    tcase_add_test(tc, test_row_encoding_is_the_documented_bytes);
    tcase_add_test(tc, test_row_floats_are_canonical);
    tcase_add_test(tc, test_row_keys_of_some_columns);
    tcase_add_test(tc, test_row_encode_rows_matches_row_by_row);
    tcase_add_test(tc, test_row_decode_and_skip_row_after_row);
    tcase_add_test(tc, test_row_truncated_input_is_eproto_at_every_cut);
    tcase_add_test(tc, test_row_rejects_bad_bytes);
    tcase_add_test(tc, test_row_rejected_row_leaves_the_batch_usable);
    suite_add_tcase(s, tc);
    return s;
}
