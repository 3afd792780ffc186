/*
 * check_batch.c: columnar batches: schema validation, building with every
 * type (nulls, empty and non-ASCII strings, growth), rejected rows that
 * leave the batch as it was, reading back, the wire round trip, zero-copy
 * decoding into the message and the copy fallback for misaligned bytes,
 * the message reference a decoded batch keeps, every validation of decode
 * on hand-crafted corrupt encodings, and the UTF-8 validator.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_batch.h"
#include "lm_mp.h"
#include "lm_proto.h"

/* --- the sample schema and rows ------------------------------------------ */

enum { F_FLAG, F_N, F_X, F_TS, F_NAME, F_BLOB, F_ID, F_LABEL, NF };

static const lm_field sample_fields[NF] = {
    {"flag", LM_TYPE_BOOL, true},    {"n", LM_TYPE_INT64, true},     {"x", LM_TYPE_FLOAT64, true},
    {"ts", LM_TYPE_TIMESTAMP, true}, {"name", LM_TYPE_UTF8, true},   {"blob", LM_TYPE_BINARY, true},
    {"id", LM_TYPE_INT64, false},    {"label", LM_TYPE_UTF8, false},
};

static const char unicode_text[] = "héllo wörld — 日本語 🎉";

/* One row's values and the bytes its strings point to. */
typedef struct row_buf {
    lm_value v[NF];
    char name[64];
    uint8_t blob[32];
    char label[32];
} row_buf;

/* The deterministic row i of the sample batches: every type, nulls at
 * different rates per column, empty strings and binaries, extreme values. */
static void
sample_row(uint32_t i, row_buf *rb)
{
    lm_value *v = rb->v;

    memset(rb, 0, sizeof(*rb));
    v[F_FLAG].is_null = i % 5 == 1;
    v[F_FLAG].v.b = i % 3 == 0;

    v[F_N].is_null = i % 7 == 2;
    v[F_N].v.i = i == 3 ? INT64_MIN : i == 4 ? INT64_MAX : (int64_t)(i * 2654435761u) - (1ll << 40);

    v[F_X].is_null = i % 11 == 3;
    v[F_X].v.f = i == 5 ? -0.0 : i == 6 ? INFINITY : i == 8 ? NAN : i * 0.5 - 100.25;

    v[F_TS].is_null = i % 13 == 4;
    v[F_TS].v.i = 1700000000000000ll + (int64_t)i * 1000;

    v[F_NAME].is_null = i % 6 == 5;
    if (i % 4 == 0) {
        rb->name[0] = '\0';
    } else if (i % 4 == 1) {
        memcpy(rb->name, unicode_text, sizeof(unicode_text));
    } else {
        snprintf(rb->name, sizeof(rb->name), "row-%u", i);
    }
    v[F_NAME].v.s.ptr = rb->name;
    v[F_NAME].v.s.len = (uint32_t)strlen(rb->name);

    v[F_BLOB].is_null = i % 9 == 8;
    v[F_BLOB].v.s.len = i % 3 == 0 ? 0 : i % 17;
    for (uint32_t k = 0; k < v[F_BLOB].v.s.len; k++) {
        rb->blob[k] = (uint8_t)(k % 2 == 0 ? 0x00 : 0xff - i); /* zero bytes, invalid UTF-8 */
    }
    v[F_BLOB].v.s.ptr = rb->blob;

    v[F_ID].v.i = i;

    if (i % 2 == 1) {
        rb->label[0] = '\0';
    } else {
        snprintf(rb->label, sizeof(rb->label), "ü%u", i);
    }
    v[F_LABEL].v.s.ptr = rb->label;
    v[F_LABEL].v.s.len = (uint32_t)strlen(rb->label);
}

static lm_schema *
new_schema(const lm_field *fields, uint32_t n)
{
    lm_schema *s = NULL;
    lm_error err;
    ck_assert_msg(lm_schema_new(fields, n, &s, &err) == LM_OK, "%s", err.msg);
    return s;
}

static void
append_ok(lm_batch *b, const lm_value *row)
{
    lm_error err;
    ck_assert_msg(lm_batch_append_row(b, row, &err) == LM_OK, "append: %s", err.msg);
}

/* A built batch of the sample schema with rows 0..nrows-1. */
static lm_batch *
build_sample(uint32_t nrows, uint32_t capacity)
{
    lm_schema *s = new_schema(sample_fields, NF);
    lm_batch *b = NULL;

    ck_assert_int_eq(lm_batch_new(s, capacity, &b), LM_OK);
    lm_schema_release(s);
    for (uint32_t i = 0; i < nrows; i++) {
        row_buf rb;
        sample_row(i, &rb);
        append_ok(b, rb.v);
    }
    return b;
}

static void
assert_value_eq(lm_type t, const lm_value *want, const lm_value *got, uint32_t col, uint32_t row)
{
    ck_assert_msg(want->is_null == got->is_null, "col %u row %u: null %d, want %d", col, row,
                  got->is_null, want->is_null);
    if (want->is_null) {
        return;
    }
    switch (t) {
    case LM_TYPE_BOOL:
        ck_assert_msg(want->v.b == got->v.b, "col %u row %u: bool differs", col, row);
        break;
    case LM_TYPE_INT64:
    case LM_TYPE_TIMESTAMP:
        ck_assert_msg(want->v.i == got->v.i, "col %u row %u: %lld, want %lld", col, row,
                      (long long)got->v.i, (long long)want->v.i);
        break;
    case LM_TYPE_FLOAT64:
        /* bit-exact, so that -0.0 and NaN count */
        ck_assert_msg(memcmp(&want->v.f, &got->v.f, sizeof(double)) == 0,
                      "col %u row %u: %g, want %g", col, row, got->v.f, want->v.f);
        break;
    case LM_TYPE_UTF8:
    case LM_TYPE_BINARY:
        ck_assert_msg(want->v.s.len == got->v.s.len, "col %u row %u: length %u, want %u", col, row,
                      got->v.s.len, want->v.s.len);
        ck_assert_msg(want->v.s.len == 0 || memcmp(want->v.s.ptr, got->v.s.ptr, want->v.s.len) == 0,
                      "col %u row %u: bytes differ", col, row);
        break;
    }
}

/* Asserts that b holds rows 0..nrows-1 of the sample. */
static void
assert_sample_rows(const lm_batch *b, uint32_t nrows)
{
    ck_assert_uint_eq(b->nrows, nrows);
    for (uint32_t i = 0; i < nrows; i++) {
        row_buf rb;
        sample_row(i, &rb);
        for (uint32_t c = 0; c < NF; c++) {
            lm_value got;
            lm_batch_get(b, c, i, &got);
            assert_value_eq(sample_fields[c].type, &rb.v[c], &got, c, i);
            ck_assert(lm_batch_is_null(b, c, i) == rb.v[c].is_null);
        }
    }
}

/* Asserts that two batches have the same schema, rows, nulls and bytes. */
static void
assert_batches_equal(const lm_batch *a, const lm_batch *b)
{
    ck_assert(lm_schema_equal(a->schema, b->schema));
    ck_assert_uint_eq(a->nrows, b->nrows);
    for (uint32_t c = 0; c < a->schema->nfields; c++) {
        ck_assert_uint_eq(a->cols[c].null_count, b->cols[c].null_count);
        for (uint32_t i = 0; i < a->nrows; i++) {
            lm_value va, vb;
            lm_batch_get(a, c, i, &va);
            lm_batch_get(b, c, i, &vb);
            assert_value_eq(a->schema->fields[c].type, &va, &vb, c, i);
        }
    }
}

/* Encodes b alone into a fresh message (from its byte 0). */
static lm_msg *
encode(const lm_batch *b)
{
    lm_msg *m = NULL;
    msgpack_packer pk;

    ck_assert_int_eq(lm_msg_alloc(256, &m), LM_OK);
    lm_mp_packer_init(&pk, m);
    ck_assert_int_eq(lm_batch_encode(b, &pk, m), LM_OK);
    return m;
}

/* Decodes the whole of m (which must be exactly one batch). */
static lm_batch *
decode_ok(lm_msg *m)
{
    lm_mpr r;
    lm_batch *b = NULL;
    lm_error err;

    lm_mpr_init(&r, m->data, m->len);
    ck_assert_msg(lm_batch_decode(&r, m, LM_PROTO_MAX_BATCH_ROWS, &b, &err) == LM_OK, "decode: %s",
                  err.msg);
    ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
    ck_assert_ptr_eq(b->backing, m);
    ck_assert(b->readonly);
    return b;
}

static bool
inside(const void *p, const lm_msg *m)
{
    return (const uint8_t *)p >= m->data && (const uint8_t *)p < m->data + m->len;
}

/* --- schemas ---------------------------------------------------------- */

static void
expect_schema_error(const lm_field *f, uint32_t n, const char *want)
{
    lm_schema *s = NULL;
    lm_error err;

    ck_assert_int_eq(lm_schema_new(f, n, &s, &err), LM_EINVAL);
    ck_assert_int_eq(err.code, LM_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
}

START_TEST(test_batch_schema_rejects_bad_fields)
{
    char longname[LM_FIELD_NAME_MAX + 2];
    lm_field f[3] = {{"a", LM_TYPE_INT64, false}, {"b", LM_TYPE_UTF8, true}, {"c", 0, false}};
    lm_field *many;

    f[2] = (lm_field){"", LM_TYPE_BOOL, false};
    expect_schema_error(f, 3, "field 2");
    f[2] = (lm_field){NULL, LM_TYPE_BOOL, false};
    expect_schema_error(f, 3, "field 2");
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    f[2] = (lm_field){longname, LM_TYPE_BOOL, false};
    expect_schema_error(f, 3, "field 2");
    f[2] = (lm_field){"a", LM_TYPE_BOOL, false};
    expect_schema_error(f, 3, "'a' appears twice");
    f[2] = (lm_field){"c", 0, false};
    expect_schema_error(f, 3, "'c': invalid type 0");
    f[2] = (lm_field){"c", LM_TYPE_MAX + 1, false};
    expect_schema_error(f, 3, "'c': invalid type 7");
    f[2] = (lm_field){"c", (lm_type)-1, false};
    expect_schema_error(f, 3, "'c'");

    /* the longest name is allowed */
    longname[LM_FIELD_NAME_MAX] = '\0';
    f[2] = (lm_field){longname, LM_TYPE_BOOL, false};
    lm_schema_release(new_schema(f, 3));

    many = calloc(LM_SCHEMA_MAX_FIELDS + 1, sizeof(*many));
    ck_assert_ptr_nonnull(many);
    expect_schema_error(many, LM_SCHEMA_MAX_FIELDS + 1, "4096");
    free(many);
}
END_TEST

START_TEST(test_batch_schema_copies_names_and_compares)
{
    char n0[] = "alpha", n1[] = "beta";
    lm_field f[2] = {{n0, LM_TYPE_INT64, false}, {n1, LM_TYPE_UTF8, true}};
    lm_schema *a = new_schema(f, 2), *b, *c;

    n0[0] = 'X'; /* the schema has its own copy */
    ck_assert_str_eq(a->fields[0].name, "alpha");
    ck_assert_int_eq(lm_schema_find(a, "alpha"), 0);
    ck_assert_int_eq(lm_schema_find(a, "beta"), 1);
    ck_assert_int_eq(lm_schema_find(a, "Xlpha"), -1);
    ck_assert_int_eq(lm_schema_find(a, "bet"), -1);

    n0[0] = 'a';
    b = new_schema(f, 2);
    ck_assert(lm_schema_equal(a, b));
    ck_assert(lm_schema_equal(a, a));
    f[1].nullable = false;
    c = new_schema(f, 2);
    ck_assert(!lm_schema_equal(a, c));
    lm_schema_release(c);
    f[1].nullable = true;
    f[1].type = LM_TYPE_BINARY;
    c = new_schema(f, 2);
    ck_assert(!lm_schema_equal(a, c));
    lm_schema_release(c);
    c = new_schema(f, 1);
    ck_assert(!lm_schema_equal(a, c));
    lm_schema_release(c);

    /* reference counting: a retained schema outlives one release */
    lm_schema_retain(b);
    lm_schema_release(b);
    ck_assert_str_eq(b->fields[1].name, "beta");
    lm_schema_release(b);
    lm_schema_release(a);
    lm_schema_release(NULL);
}
END_TEST

START_TEST(test_batch_type_names)
{
    ck_assert_str_eq(lm_type_name(LM_TYPE_BOOL), "bool");
    ck_assert_str_eq(lm_type_name(LM_TYPE_INT64), "int64");
    ck_assert_str_eq(lm_type_name(LM_TYPE_FLOAT64), "float64");
    ck_assert_str_eq(lm_type_name(LM_TYPE_TIMESTAMP), "timestamp");
    ck_assert_str_eq(lm_type_name(LM_TYPE_UTF8), "utf8");
    ck_assert_str_eq(lm_type_name(LM_TYPE_BINARY), "binary");
    ck_assert_str_eq(lm_type_name(0), "?");
    ck_assert_str_eq(lm_type_name(LM_TYPE_MAX + 1), "?");
    ck_assert_str_eq(lm_type_name((lm_type)-3), "?");
}
END_TEST

/* --- building and reading ---------------------------------------------- */

START_TEST(test_batch_build_every_type_and_read_back)
{
    lm_batch *b = build_sample(40, 64);
    lm_value v;
    uint32_t nulls[NF] = {0};

    assert_sample_rows(b, 40);
    /* typed access agrees with lm_batch_get */
    for (uint32_t i = 0; i < 40; i++) {
        row_buf rb;
        sample_row(i, &rb);
        ck_assert_int_eq(lm_batch_i64(b, F_ID)[i], i);
        if (!rb.v[F_N].is_null) {
            ck_assert_int_eq(lm_batch_i64(b, F_N)[i], rb.v[F_N].v.i);
        }
        if (!rb.v[F_TS].is_null) {
            ck_assert_int_eq(lm_batch_i64(b, F_TS)[i], rb.v[F_TS].v.i);
        }
        if (!rb.v[F_X].is_null && i != 8) {
            ck_assert(lm_batch_f64(b, F_X)[i] == rb.v[F_X].v.f);
        }
        if (!rb.v[F_FLAG].is_null) {
            ck_assert_uint_eq(lm_batch_bools(b, F_FLAG)[i], rb.v[F_FLAG].v.b ? 1 : 0);
        }
        for (uint32_t c = 0; c < NF; c++) {
            nulls[c] += rb.v[c].is_null;
        }
    }
    for (uint32_t c = 0; c < NF; c++) {
        ck_assert_uint_eq(b->cols[c].null_count, nulls[c]);
    }
    /* the non-nullable columns with no null keep no bitmap */
    ck_assert_ptr_null(b->cols[F_ID].validity);
    ck_assert_ptr_null(b->cols[F_LABEL].validity);
    /* the non-ASCII string is byte-exact */
    lm_batch_get(b, F_NAME, 1, &v);
    ck_assert(!v.is_null);
    ck_assert_uint_eq(v.v.s.len, strlen(unicode_text));
    ck_assert(memcmp(v.v.s.ptr, unicode_text, v.v.s.len) == 0);
    /* an empty string and an empty binary are not nulls */
    lm_batch_get(b, F_NAME, 4, &v);
    ck_assert(!v.is_null);
    ck_assert_uint_eq(v.v.s.len, 0);
    lm_batch_get(b, F_BLOB, 3, &v);
    ck_assert(!v.is_null);
    ck_assert_uint_eq(v.v.s.len, 0);
    /* var-width offsets are cumulative */
    ck_assert_int_eq(lm_batch_offsets(b, F_NAME)[0], 0);
    ck_assert_int_eq(lm_batch_offsets(b, F_NAME)[40], (int32_t)b->cols[F_NAME].data_len);
    lm_batch_free(b);
    lm_batch_free(NULL);
}
END_TEST

START_TEST(test_batch_grows_past_initial_capacity)
{
    lm_batch *b = build_sample(10000, 4);

    ck_assert_uint_ge(b->capacity, 10000);
    assert_sample_rows(b, 10000);
    lm_batch_free(b);

    /* a capacity of zero is usable too */
    b = build_sample(3, 0);
    assert_sample_rows(b, 3);
    /* reserving ahead; a smaller reservation changes nothing */
    ck_assert_int_eq(lm_batch_reserve(b, 5000), LM_OK);
    ck_assert_uint_ge(b->capacity, 5000);
    ck_assert_int_eq(lm_batch_reserve(b, 1), LM_OK);
    ck_assert_uint_ge(b->capacity, 5000);
    assert_sample_rows(b, 3);
    lm_batch_free(b);
}
END_TEST

START_TEST(test_batch_grows_for_a_value_larger_than_the_data_buffer)
{
    static const lm_field f[2] = {{"s", LM_TYPE_UTF8, false}, {"b", LM_TYPE_BINARY, false}};
    lm_schema *s = new_schema(f, 2);
    lm_batch *b = NULL;
    size_t big = 300000;
    char *text = malloc(big);
    lm_value row[2];
    lm_value v;

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < big; i++) {
        text[i] = (char)('a' + i % 26);
    }
    ck_assert_int_eq(lm_batch_new(s, 2, &b), LM_OK);
    for (uint32_t i = 0; i < 3; i++) {
        /* a short value, then one far past the doubled buffer */
        size_t len = i == 1 ? big : 3;
        row[0] = (lm_value){.v.s = {text, (uint32_t)len}};
        row[1] = (lm_value){.v.s = {text + 1, (uint32_t)len - 1}};
        append_ok(b, row);
    }
    for (uint32_t i = 0; i < 3; i++) {
        size_t len = i == 1 ? big : 3;
        lm_batch_get(b, 0, i, &v);
        ck_assert_uint_eq(v.v.s.len, len);
        ck_assert(memcmp(v.v.s.ptr, text, len) == 0);
        lm_batch_get(b, 1, i, &v);
        ck_assert_uint_eq(v.v.s.len, len - 1);
        ck_assert(memcmp(v.v.s.ptr, text + 1, len - 1) == 0);
    }
    ck_assert_uint_eq(b->cols[0].data_len, big + 6);
    lm_batch_free(b);
    lm_schema_release(s);
    free(text);
}
END_TEST

START_TEST(test_batch_append_rejects_bad_rows_and_leaves_batch_unchanged)
{
    lm_batch *b = build_sample(4, 4); /* full: the next row would grow it */
    uint32_t nulls[NF];
    uint32_t data_len[NF];
    lm_error err;
    row_buf rb;
    lm_msg *m;
    lm_batch *d;

    for (uint32_t c = 0; c < NF; c++) {
        nulls[c] = b->cols[c].null_count;
        data_len[c] = b->cols[c].data_len;
    }

    /* a null in the non-nullable 'id', with a null in 'n' as well (which
     * has had none) */
    sample_row(4, &rb);
    rb.v[F_N].is_null = true;
    rb.v[F_ID].is_null = true;
    ck_assert_int_eq(lm_batch_append_row(b, rb.v, &err), LM_EINVAL);
    ck_assert_int_eq(err.code, LM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "'id'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "not nullable"));

    /* invalid UTF-8 in the last field, after valid strings in others */
    sample_row(4, &rb);
    rb.v[F_LABEL].v.s.ptr = "ok\xc3\x28";
    rb.v[F_LABEL].v.s.len = 4;
    ck_assert_int_eq(lm_batch_append_row(b, rb.v, &err), LM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "'label'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "UTF-8"));

    /* a truncated sequence in a nullable utf8 field */
    sample_row(4, &rb);
    rb.v[F_NAME].is_null = false;
    rb.v[F_NAME].v.s.ptr = "abc\xe6\x97";
    rb.v[F_NAME].v.s.len = 5;
    ck_assert_int_eq(lm_batch_append_row(b, rb.v, &err), LM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "'name'"));

    /* nothing changed */
    ck_assert_uint_eq(b->nrows, 4);
    for (uint32_t c = 0; c < NF; c++) {
        ck_assert_uint_eq(b->cols[c].null_count, nulls[c]);
        ck_assert_uint_eq(b->cols[c].data_len, data_len[c]);
    }
    ck_assert_ptr_null(b->cols[F_ID].validity);
    assert_sample_rows(b, 4);

    /* the same bytes are fine in a binary column */
    sample_row(4, &rb);
    rb.v[F_BLOB].is_null = false;
    rb.v[F_BLOB].v.s.ptr = "abc\xe6\x97";
    rb.v[F_BLOB].v.s.len = 5;
    append_ok(b, rb.v);
    lm_batch_free(b);

    /* after rejected rows, appending goes on, and the batch encodes and
     * decodes (decode checks each null count against its bitmap) */
    b = build_sample(4, 4);
    sample_row(4, &rb);
    rb.v[F_ID].is_null = true;
    rb.v[F_N].is_null = true;
    ck_assert_int_eq(lm_batch_append_row(b, rb.v, &err), LM_EINVAL);
    for (uint32_t i = 4; i < 300; i++) {
        sample_row(i, &rb);
        append_ok(b, rb.v);
        if (i == 100) {
            rb.v[F_LABEL].v.s.ptr = "\xff";
            rb.v[F_LABEL].v.s.len = 1;
            ck_assert_int_eq(lm_batch_append_row(b, rb.v, &err), LM_EINVAL);
        }
    }
    assert_sample_rows(b, 300);
    m = encode(b);
    d = decode_ok(m);
    assert_batches_equal(b, d);
    /* a decoded batch is read-only */
    sample_row(0, &rb);
    ck_assert_int_eq(lm_batch_append_row(d, rb.v, &err), LM_ESTATE);
    ck_assert_int_eq(lm_batch_reserve(d, 1000), LM_ESTATE);
    ck_assert_uint_eq(d->nrows, 300);
    lm_batch_free(d);
    lm_msg_release(m);
    lm_batch_free(b);
}
END_TEST

START_TEST(test_batch_clear_empties_for_reuse)
{
    lm_batch *b = build_sample(50, 8);
    lm_msg *m;
    lm_batch *d;

    lm_batch_clear(b);
    ck_assert_uint_eq(b->nrows, 0);
    for (uint32_t c = 0; c < NF; c++) {
        ck_assert_uint_eq(b->cols[c].null_count, 0);
        ck_assert_uint_eq(b->cols[c].data_len, 0);
    }
    /* refill with rows that have no nulls where the old rows had them */
    for (uint32_t i = 0; i < 20; i++) {
        row_buf rb;
        sample_row(i, &rb);
        for (uint32_t c = 0; c < NF; c++) {
            rb.v[c].is_null = false;
        }
        append_ok(b, rb.v);
        for (uint32_t c = 0; c < NF; c++) {
            ck_assert(!lm_batch_is_null(b, c, i));
        }
    }
    m = encode(b);
    d = decode_ok(m);
    assert_batches_equal(b, d);
    for (uint32_t c = 0; c < NF; c++) {
        ck_assert_uint_eq(d->cols[c].null_count, 0);
    }
    lm_batch_free(d);
    lm_msg_release(m);
    lm_batch_free(b);
}
END_TEST

/* --- the wire round trip -------------------------------------------------- */

START_TEST(test_batch_round_trip_preserves_every_value)
{
    static const uint32_t sizes[] = {0, 1, 7, 8, 9, 100, 4096};

    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        lm_batch *b = build_sample(sizes[k], 16);
        lm_msg *m = encode(b);
        lm_batch *d = decode_ok(m);

        assert_batches_equal(b, d);
        assert_sample_rows(d, sizes[k]);
        for (uint32_t c = 0; c < NF; c++) {
            ck_assert_str_eq(d->schema->fields[c].name, sample_fields[c].name);
            ck_assert_int_eq(d->schema->fields[c].type, sample_fields[c].type);
            ck_assert(d->schema->fields[c].nullable == sample_fields[c].nullable);
        }
        lm_batch_free(d);
        lm_msg_release(m);
        lm_batch_free(b);
    }
}
END_TEST

START_TEST(test_batch_round_trip_all_null_and_no_field_batches)
{
    lm_field f[2] = {{"s", LM_TYPE_UTF8, true}, {"i", LM_TYPE_INT64, true}};
    lm_schema *s = new_schema(f, 2);
    lm_value row[2] = {{.is_null = true}, {.is_null = true}};
    lm_batch *b = NULL, *d;
    lm_msg *m;

    ck_assert_int_eq(lm_batch_new(s, 1, &b), LM_OK);
    for (int i = 0; i < 17; i++) {
        append_ok(b, row);
    }
    m = encode(b);
    d = decode_ok(m);
    assert_batches_equal(b, d);
    ck_assert_uint_eq(d->cols[0].null_count, 17);
    ck_assert_uint_eq(d->cols[0].data_len, 0);
    lm_batch_free(d);
    lm_msg_release(m);
    lm_batch_free(b);
    lm_schema_release(s);

    /* no fields: only a row count */
    s = new_schema(NULL, 0);
    ck_assert_int_eq(lm_batch_new(s, 0, &b), LM_OK);
    for (int i = 0; i < 5; i++) {
        append_ok(b, NULL);
    }
    m = encode(b);
    d = decode_ok(m);
    ck_assert_uint_eq(d->nrows, 5);
    ck_assert_uint_eq(d->schema->nfields, 0);
    lm_batch_free(d);
    lm_msg_release(m);
    lm_batch_free(b);
    lm_schema_release(s);
}
END_TEST

/* Encodes b as a BATCH message on channel 3. */
static lm_msg *
encode_batch_msg(lm_batch *b)
{
    lm_batch_msg p = {.channel = 3, .batch = b};
    lm_msg *m = NULL;
    ck_assert_int_eq(lm_proto_encode(LM_MT_BATCH, (lm_addr){1, 2}, (lm_addr){3, 4}, &p, &m), LM_OK);
    return m;
}

START_TEST(test_batch_decode_points_into_the_message)
{
    static const lm_field one[1] = {{"v", LM_TYPE_INT64, false}};
    lm_schema *s = new_schema(one, 1);
    lm_batch *small = NULL;
    lm_value v = {.v.i = -42};
    lm_batch *big = build_sample(1000, 16);
    lm_error err;

    /* a small message keeps its bytes inline, a big one in an nng message:
     * both are aligned so that 8-aligned offsets are aligned in memory */
    ck_assert_int_eq(lm_batch_new(s, 1, &small), LM_OK);
    append_ok(small, &v);
    for (int which = 0; which < 2; which++) {
        lm_batch *b = which == 0 ? small : big;
        lm_msg *m = encode_batch_msg(b);
        lm_batch_msg out;

        ck_assert(which == 0 ? m->nmsg == NULL : m->nmsg != NULL);
        ck_assert_msg(lm_proto_decode(m, &out, &err) == LM_OK, "%s", err.msg);
        ck_assert_uint_eq(out.channel, 3);
        ck_assert_ptr_nonnull(out.batch);
        ck_assert_ptr_eq(out.batch->backing, m);
        ck_assert_uint_eq(atomic_load(&m->refs), 2);
        assert_batches_equal(b, out.batch);
        for (uint32_t c = 0; c < out.batch->schema->nfields; c++) {
            const lm_column *col = &out.batch->cols[c];
            lm_type t = out.batch->schema->fields[c].type;
            ck_assert_msg(inside(col->values, m), "column %u values were copied", c);
            ck_assert_msg((col->own & LM_COL_OWN_VALUES) == 0, "column %u owns its values", c);
            if (t == LM_TYPE_INT64 || t == LM_TYPE_TIMESTAMP || t == LM_TYPE_FLOAT64) {
                ck_assert_uint_eq((uintptr_t)col->values % 8, 0);
            }
            if (lm_type_is_varwidth(t)) {
                ck_assert(inside(col->data, m));
            }
            if (col->validity != NULL) {
                ck_assert(inside(col->validity, m));
            }
        }
        if (which == 0) {
            ck_assert(inside(lm_batch_i64(out.batch, 0), m));
            ck_assert_int_eq(lm_batch_i64(out.batch, 0)[0], -42);
        } else {
            ck_assert(inside(lm_batch_i64(out.batch, F_N), m));
            ck_assert(inside(lm_batch_f64(out.batch, F_X), m));
            ck_assert(inside(lm_batch_i64(out.batch, F_TS), m));
            ck_assert(inside(lm_batch_i64(out.batch, F_ID), m));
        }
        lm_proto_fini(LM_MT_BATCH, &out);
        ck_assert_ptr_null(out.batch);
        ck_assert_uint_eq(atomic_load(&m->refs), 1);
        lm_msg_release(m);
    }
    lm_batch_free(small);
    lm_batch_free(big);
    lm_schema_release(s);
}
END_TEST

START_TEST(test_batch_decode_copies_misaligned_buffers)
{
    static const size_t shifts[] = {1, 2, 3, 4, 5, 7, 0};
    lm_batch *b = build_sample(257, 16);
    lm_msg *m = encode(b);

    for (size_t k = 0; k < sizeof(shifts) / sizeof(shifts[0]); k++) {
        size_t shift = shifts[k];
        uint8_t *base = aligned_alloc(16, (m->len + 16 + 15) / 16 * 16);
        uint8_t *bytes = base + shift;
        lm_mpr r;
        lm_batch *d = NULL;
        lm_error err;

        ck_assert_ptr_nonnull(base);
        memcpy(bytes, m->data, m->len);
        lm_mpr_init(&r, bytes, m->len);
        ck_assert_msg(lm_batch_decode(&r, NULL, 10000, &d, &err) == LM_OK, "shift %zu: %s", shift,
                      err.msg);
        ck_assert_ptr_null(d->backing);
        assert_batches_equal(b, d);
        for (uint32_t c = 0; c < NF; c++) {
            const lm_column *col = &d->cols[c];
            lm_type t = sample_fields[c].type;
            size_t align = lm_type_is_varwidth(t) ? 4 : t == LM_TYPE_BOOL ? 1 : 8;
            bool in = (const uint8_t *)col->values >= bytes &&
                      (const uint8_t *)col->values < bytes + m->len;
            /* values a column reads as int64/double/int32 are aligned,
             * borrowed when they were already */
            ck_assert_uint_eq((uintptr_t)col->values % align, 0);
            if (t != LM_TYPE_BOOL) {
                ck_assert_msg(in == (shift % align == 0), "shift %zu column %u: borrowed %d", shift,
                              c, in);
                ck_assert(((col->own & LM_COL_OWN_VALUES) != 0) == !in);
            }
        }
        lm_batch_free(d);
        free(base);
    }
    lm_msg_release(m);
    lm_batch_free(b);
}
END_TEST

START_TEST(test_batch_decoded_batch_retains_its_message)
{
    lm_batch *b = build_sample(3000, 64);
    lm_msg *m = encode_batch_msg(b);
    lm_batch_msg out;
    lm_error err;

    ck_assert_ptr_nonnull(m->nmsg); /* freed for real when the last reference goes */
    ck_assert_int_eq(lm_proto_decode(m, &out, &err), LM_OK);
    lm_msg_release(m); /* the caller's reference */
    ck_assert_uint_eq(atomic_load(&out.batch->backing->refs), 1);
    /* every value is still readable: the batch holds the message */
    assert_batches_equal(b, out.batch);
    assert_sample_rows(out.batch, 3000);
    lm_proto_fini(LM_MT_BATCH, &out);
    lm_batch_free(b);
}
END_TEST

/* --- decode validation --------------------------------------------------- */

/* One column of a hand-made encoding. */
typedef struct raw_col {
    const char *name;     /* field name */
    uint32_t name_len;    /* 0: strlen(name) */
    int64_t type;         /* wire type code */
    bool nullable;        /* field nullability */
    uint64_t null_count;  /* as sent */
    const void *validity; /* bitmap bytes, or NULL for nil */
    size_t vlen;          /* bitmap length */
    const void *values;   /* values buffer */
    size_t nvalues;       /* its length in bytes */
    const void *data;     /* data buffer */
    size_t ndata;         /* its length */
} raw_col;

/* Packs [nrows, [[name, type, nullable] x nfields], [[null_count,
 * validity|nil, pad, values, pad, data] x ncols]] as lm_batch_encode does,
 * from cols (which has max(nfields, ncols) entries). */
static lm_msg *
raw_batch(uint64_t nrows, const raw_col *cols, uint32_t nfields, uint32_t ncols)
{
    lm_msg *m = NULL;
    msgpack_packer pk;

    ck_assert_int_eq(lm_msg_alloc(256, &m), LM_OK);
    lm_mp_packer_init(&pk, m);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&pk, nrows), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, nfields), 0);
    for (uint32_t i = 0; i < nfields; i++) {
        const raw_col *c = &cols[i];
        ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
        ck_assert_int_eq(
            lm_mp_pack_str(&pk, c->name, c->name_len != 0 ? c->name_len : strlen(c->name)), 0);
        ck_assert_int_eq(msgpack_pack_int64(&pk, c->type), 0);
        ck_assert_int_eq(c->nullable ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk), 0);
    }
    ck_assert_int_eq(msgpack_pack_array(&pk, ncols), 0);
    for (uint32_t i = 0; i < ncols; i++) {
        const raw_col *c = &cols[i];
        ck_assert_int_eq(msgpack_pack_array(&pk, 6), 0);
        ck_assert_int_eq(msgpack_pack_uint64(&pk, c->null_count), 0);
        if (c->validity == NULL) {
            ck_assert_int_eq(msgpack_pack_nil(&pk), 0);
        } else {
            ck_assert_int_eq(msgpack_pack_bin(&pk, c->vlen), 0);
            ck_assert_int_eq(c->vlen == 0 ? 0 : msgpack_pack_bin_body(&pk, c->validity, c->vlen),
                             0);
        }
        ck_assert_int_eq(lm_mp_pack_bin_aligned(&pk, m, c->values, c->nvalues, 8), 0);
        ck_assert_int_eq(lm_mp_pack_bin_aligned(&pk, m, c->data, c->ndata, 8), 0);
    }
    return m;
}

/* Asserts that decoding m fails with LM_EPROTO, a message containing
 * want1 and want2, and nothing kept (no batch, no message reference). */
static void
expect_bad(lm_msg *m, uint32_t max_rows, const char *want1, const char *want2)
{
    lm_mpr r;
    lm_batch *b = NULL;
    lm_error err;

    lm_mpr_init(&r, m->data, m->len);
    ck_assert_int_eq(lm_batch_decode(&r, m, max_rows, &b, &err), LM_EPROTO);
    ck_assert_int_eq(err.code, LM_EPROTO);
    ck_assert_ptr_null(b);
    ck_assert_uint_eq(atomic_load(&m->refs), 1);
    ck_assert_msg(strstr(err.msg, want1) != NULL, "message '%s' lacks '%s'", err.msg, want1);
    ck_assert_msg(want2 == NULL || strstr(err.msg, want2) != NULL, "message '%s' lacks '%s'",
                  err.msg, want2);
    lm_msg_release(m);
}

/* Decodes m, which must be good, and returns the batch (m released). */
static lm_batch *
expect_good(lm_msg *m, uint32_t max_rows)
{
    lm_mpr r;
    lm_batch *b = NULL;
    lm_error err;

    lm_mpr_init(&r, m->data, m->len);
    ck_assert_msg(lm_batch_decode(&r, m, max_rows, &b, &err) == LM_OK, "%s", err.msg);
    ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
    lm_msg_release(m); /* the batch keeps it */
    return b;
}

/* A good three-row utf8 column "s": "a", "bc", "def". */
static const int32_t s_offsets[4] = {0, 1, 3, 6};
static const char s_data[] = "abcdef";
/* A good three-row int64 column "v". */
static const int64_t v_values[3] = {1, -2, 3};

static raw_col
col_s(void)
{
    return (raw_col){.name = "s",
                     .type = LM_TYPE_UTF8,
                     .nullable = true,
                     .values = s_offsets,
                     .nvalues = sizeof(s_offsets),
                     .data = s_data,
                     .ndata = 6};
}

static raw_col
col_v(void)
{
    return (raw_col){.name = "v",
                     .type = LM_TYPE_INT64,
                     .nullable = false,
                     .values = v_values,
                     .nvalues = sizeof(v_values)};
}

START_TEST(test_batch_decode_hand_made_encoding)
{
    /* the hand-made layout is the real one: unchanged, it decodes */
    raw_col c[2] = {col_s(), col_v()};
    static const uint8_t one_null = 0x05; /* row 1 null */
    lm_batch *b;
    lm_value v;

    b = expect_good(raw_batch(3, c, 2, 2), 3);
    ck_assert_uint_eq(b->nrows, 3);
    lm_batch_get(b, 0, 1, &v);
    ck_assert_uint_eq(v.v.s.len, 2);
    ck_assert(memcmp(v.v.s.ptr, "bc", 2) == 0);
    lm_batch_get(b, 1, 1, &v);
    ck_assert_int_eq(v.v.i, -2);
    lm_batch_free(b);

    /* nulls with their bitmap; nrows equal to max_rows */
    c[0].validity = &one_null;
    c[0].vlen = 1;
    c[0].null_count = 1;
    b = expect_good(raw_batch(3, c, 2, 2), 3);
    ck_assert(lm_batch_is_null(b, 0, 1));
    ck_assert(!lm_batch_is_null(b, 0, 0));
    lm_batch_free(b);
}
END_TEST

START_TEST(test_batch_decode_rejects_bad_offsets)
{
    static const int32_t decreasing[4] = {0, 4, 2, 6};
    static const int32_t late_start[4] = {1, 2, 3, 6};
    static const int32_t short_end[4] = {0, 1, 3, 5};
    static const int32_t past_end[4] = {0, 1, 3, 9};
    static const int32_t negative_end[4] = {0, 1, 3, -1};
    static const int32_t dip_below_zero[4] = {0, -4, 3, 6};
    raw_col c[2] = {col_v(), col_s()};

    c[1].values = decreasing;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "offsets decrease");
    c[1].values = dip_below_zero;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "offsets decrease");
    c[1].values = late_start;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "do not span");
    c[1].values = short_end;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "do not span");
    c[1].values = past_end;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "do not span");
    c[1].values = negative_end;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "do not span");
    /* the same checks hold for binary columns */
    c[1].type = LM_TYPE_BINARY;
    c[1].values = decreasing;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "offsets decrease");
    c[1].values = past_end;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "do not span");
}
END_TEST

START_TEST(test_batch_decode_rejects_bad_utf8)
{
    /* "a", "é", "x": the middle value made to start on the continuation byte */
    static const char e_data[] = "a\xc3\xa9x";
    static const int32_t e_good[4] = {0, 1, 3, 4};
    static const int32_t e_split[4] = {0, 2, 3, 4};
    static const char bad_data[] = "ab\xff";
    static const char overlong[] = "a\xc0\x80";
    static const char surrogate[] = "\xed\xa0\x80";
    static const int32_t one_each[4] = {0, 1, 2, 3};
    static const int32_t all_in_last[4] = {0, 0, 0, 3};
    raw_col c[1] = {col_s()};
    lm_batch *b;

    c[0].data = e_data;
    c[0].ndata = 4;
    c[0].values = e_good;
    b = expect_good(raw_batch(3, c, 1, 1), 3);
    lm_batch_free(b);
    c[0].values = e_split;
    expect_bad(raw_batch(3, c, 1, 1), 3, "batch column 's'", "inside a UTF-8 character");

    c[0].values = one_each;
    c[0].data = bad_data;
    c[0].ndata = 3;
    expect_bad(raw_batch(3, c, 1, 1), 3, "batch column 's'", "not valid UTF-8");
    c[0].data = overlong;
    c[0].values = all_in_last;
    expect_bad(raw_batch(3, c, 1, 1), 3, "batch column 's'", "not valid UTF-8");
    c[0].data = surrogate;
    expect_bad(raw_batch(3, c, 1, 1), 3, "batch column 's'", "not valid UTF-8");

    /* a binary column takes any bytes, split anywhere */
    c[0].type = LM_TYPE_BINARY;
    c[0].data = e_data;
    c[0].ndata = 4;
    c[0].values = e_split;
    b = expect_good(raw_batch(3, c, 1, 1), 3);
    lm_batch_free(b);
    c[0].data = bad_data;
    c[0].ndata = 3;
    c[0].values = one_each;
    b = expect_good(raw_batch(3, c, 1, 1), 3);
    lm_batch_free(b);
}
END_TEST

START_TEST(test_batch_decode_rejects_bad_validity)
{
    static const uint8_t bits[2] = {0x05, 0xff}; /* row 1 of 3 null */
    static const uint8_t none_null = 0xff;
    raw_col c[2] = {col_v(), col_s()};
    static const int64_t nine[9] = {0};
    raw_col w = col_v();

    /* the bitmap must be ceil(nrows / 8) bytes */
    c[1].validity = bits;
    c[1].vlen = 2;
    c[1].null_count = 1;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'",
               "validity bitmap has the wrong length");
    c[1].vlen = 0;
    c[1].null_count = 0;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'",
               "validity bitmap has the wrong length");
    w.values = nine;
    w.nvalues = sizeof(nine);
    w.nullable = true;
    w.validity = bits;
    w.vlen = 1;
    w.null_count = 1;
    expect_bad(raw_batch(9, &w, 1, 1), 100, "batch column 'v'",
               "validity bitmap has the wrong length");
    w.vlen = 2;
    w.null_count = 1; /* 0x05 0xff over 9 rows: rows 1, 3..7 are null: 6 nulls */
    expect_bad(raw_batch(9, &w, 1, 1), 100, "batch column 'v'", "null count differs");
    w.null_count = 6;
    lm_batch_free(expect_good(raw_batch(9, &w, 1, 1), 100));

    /* the null count must match the bitmap */
    c[1].vlen = 1;
    c[1].null_count = 2;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "null count differs");
    c[1].null_count = 0;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "null count differs");
    c[1].validity = &none_null;
    c[1].null_count = 1;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "null count differs");
    /* nulls counted with no bitmap */
    c[1].validity = NULL;
    c[1].vlen = 0;
    c[1].null_count = 1;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "no validity bitmap");
    /* more nulls than rows */
    c[1].null_count = 4;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'", "out of range");

    /* nulls in a non-nullable field */
    c[1] = col_s();
    c[0].validity = bits;
    c[0].vlen = 1;
    c[0].null_count = 1;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 'v'", "nulls in a non-nullable field");
    /* a bitmap without nulls is fine there */
    c[0].validity = &none_null;
    c[0].null_count = 0;
    lm_batch_free(expect_good(raw_batch(3, c, 2, 2), 100));
}
END_TEST

START_TEST(test_batch_decode_rejects_bad_values)
{
    static const uint8_t bools_ok[4] = {0, 1, 1, 0};
    static const uint8_t bools_bad[4] = {0, 2, 1, 0};
    static const uint8_t bools_ff[4] = {0xff, 0, 0, 0};
    raw_col c[2] = {col_s(), col_v()};
    raw_col bc = {.name = "flag", .type = LM_TYPE_BOOL, .values = bools_ok, .nvalues = 3};

    /* the values buffer must hold exactly nrows values */
    c[1].nvalues = 16;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 'v'",
               "values buffer has the wrong length");
    c[1].nvalues = 0;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 'v'",
               "values buffer has the wrong length");
    c[1] = col_v();
    c[0].nvalues = 12; /* nrows offsets, without the last */
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 's'",
               "values buffer has the wrong length");
    c[0] = col_s();
    bc.nvalues = 4;
    expect_bad(raw_batch(3, &bc, 1, 1), 100, "batch column 'flag'",
               "values buffer has the wrong length");
    bc.nvalues = 3;

    /* data on a fixed-width column */
    c[1].data = "z";
    c[1].ndata = 1;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch column 'v'",
               "data buffer on a fixed-width column");
    c[1] = col_v();

    /* a boolean is 0 or 1 */
    lm_batch_free(expect_good(raw_batch(3, &bc, 1, 1), 100));
    bc.values = bools_bad;
    expect_bad(raw_batch(3, &bc, 1, 1), 100, "batch column 'flag'",
               "boolean value other than 0 or 1");
    bc.values = bools_ff;
    expect_bad(raw_batch(3, &bc, 1, 1), 100, "batch column 'flag'", "boolean value");
}
END_TEST

START_TEST(test_batch_decode_rejects_bad_schema)
{
    raw_col c[3] = {col_v(), col_s(), col_v()};
    lm_msg *m;
    msgpack_packer pk;

    /* duplicate field names */
    c[1].name = "v";
    expect_bad(raw_batch(3, c, 2, 2), 100, "field 'v' appears twice", NULL);
    c[1] = col_s();
    /* type codes: unknown, zero, negative, not an integer */
    c[1].type = LM_TYPE_MAX + 1;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch schema field 1", "invalid type 7");
    c[1].type = 200;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch schema field 1", "invalid type 200");
    c[1].type = 0;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch schema field 1", "invalid type 0");
    c[1].type = -1;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch schema field", "negative");
    c[1].type = LM_TYPE_UTF8;
    /* names: empty, with a NUL, not UTF-8 */
    c[1].name = "";
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch schema field 1", "invalid name");
    c[1].name = "a\0b";
    c[1].name_len = 3;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch schema field 1", "invalid name");
    c[1].name = "\xff";
    c[1].name_len = 0;
    expect_bad(raw_batch(3, c, 2, 2), 100, "batch schema field 1", "invalid name");
    c[1] = col_s();

    /* column count differs from field count */
    expect_bad(raw_batch(3, c, 2, 1), 100, "1 columns for 2 fields", NULL);
    c[2].name = "w";
    expect_bad(raw_batch(3, c, 2, 3), 100, "3 columns for 2 fields", NULL);
    expect_bad(raw_batch(3, c, 2, 0), 100, "0 columns for 2 fields", NULL);

    /* more fields than a schema may have */
    ck_assert_int_eq(lm_msg_alloc(8192, &m), LM_OK);
    lm_mp_packer_init(&pk, m);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, LM_SCHEMA_MAX_FIELDS + 1), 0);
    for (int i = 0; i < LM_SCHEMA_MAX_FIELDS + 1; i++) {
        ck_assert_int_eq(msgpack_pack_nil(&pk), 0);
    }
    expect_bad(m, 100, "4097 fields", NULL);
}
END_TEST

START_TEST(test_batch_decode_rejects_too_many_rows)
{
    raw_col c[2] = {col_s(), col_v()};
    lm_msg *m;
    msgpack_packer pk;

    lm_batch_free(expect_good(raw_batch(3, c, 2, 2), 3));
    expect_bad(raw_batch(3, c, 2, 2), 2, "batch header", "out of range");
    expect_bad(raw_batch(3, c, 2, 2), 0, "batch header", "out of range");

    /* a huge row count over no columns is refused by the bound alone */
    expect_bad(raw_batch(UINT32_MAX, c, 0, 0), LM_PROTO_MAX_BATCH_ROWS, "batch header",
               "out of range");
    expect_bad(raw_batch(1ull << 40, c, 0, 0), UINT32_MAX, "batch header", "out of range");

    /* not an array, or an array of the wrong size */
    ck_assert_int_eq(lm_msg_alloc(16, &m), LM_OK);
    lm_mp_packer_init(&pk, m);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
    expect_bad(m, 100, "batch header", "wrong number of elements");
}
END_TEST

START_TEST(test_batch_decode_rejects_truncation_everywhere)
{
    lm_batch *b = build_sample(20, 16);
    lm_msg *m = encode(b);

    for (size_t cut = 0; cut < m->len; cut++) {
        uint8_t *buf = malloc(cut > 0 ? cut : 1);
        lm_mpr r;
        lm_batch *d = NULL;
        lm_error err;

        ck_assert_ptr_nonnull(buf);
        memcpy(buf, m->data, cut);
        lm_mpr_init(&r, buf, cut);
        ck_assert_msg(lm_batch_decode(&r, NULL, 100, &d, &err) == LM_EPROTO,
                      "cut at %zu of %zu decoded", cut, m->len);
        ck_assert_ptr_null(d);
        ck_assert(err.msg[0] != '\0');
        free(buf);
    }
    lm_msg_release(m);
    lm_batch_free(b);
}
END_TEST

/* --- UTF-8 -------------------------------------------------------------- */

START_TEST(test_batch_utf8_valid_edge_cases)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"a", 1, true},
        {"plain ascii, longer than eight bytes", 36, true},
        {"\xc2\x80", 2, true},         /* U+0080, the smallest 2-byte */
        {"\xdf\xbf", 2, true},         /* U+07FF */
        {"\xe0\xa0\x80", 3, true},     /* U+0800, the smallest 3-byte */
        {"\xed\x9f\xbf", 3, true},     /* U+D7FF, just below the surrogates */
        {"\xee\x80\x80", 3, true},     /* U+E000, just above */
        {"\xef\xbf\xbf", 3, true},     /* U+FFFF */
        {"\xf0\x90\x80\x80", 4, true}, /* U+10000, the smallest 4-byte */
        {"\xf4\x8f\xbf\xbf", 4, true}, /* U+10FFFF, the largest */
        {"1234567\xe6\x97\xa5"
         "89abcdef",
         18, true},                     /* straddles the 8-byte fast path */
        {"\0\0\0", 3, true},            /* NUL is valid UTF-8 */
        {"\xc0\x80", 2, false},         /* overlong NUL */
        {"\xc1\xbf", 2, false},         /* overlong 2-byte */
        {"\xe0\x80\x80", 3, false},     /* overlong 3-byte */
        {"\xe0\x9f\xbf", 3, false},     /* overlong U+07FF */
        {"\xf0\x80\x80\x80", 4, false}, /* overlong 4-byte */
        {"\xf0\x8f\xbf\xbf", 4, false}, /* overlong U+FFFF */
        {"\xed\xa0\x80", 3, false},     /* U+D800 surrogate */
        {"\xed\xbf\xbf", 3, false},     /* U+DFFF surrogate */
        {"\xf4\x90\x80\x80", 4, false}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, false}, /* lead byte beyond U+10FFFF */
        {"\xf7\xbf\xbf\xbf", 4, false},
        {"\xf8\x88\x80\x80\x80", 5, false}, /* 5-byte form */
        {"\xfe", 1, false},
        {"\xff", 1, false},
        {"\x80", 1, false}, /* lone continuation */
        {"a\xbf", 2, false},
        {"\xc3", 1, false},                 /* truncated 2-byte */
        {"\xe2\x82", 2, false},             /* truncated 3-byte */
        {"\xf0\x9f\x98", 3, false},         /* truncated 4-byte */
        {"abcdefg\xf0\x9f\x98", 10, false}, /* truncated after the fast path */
        {"\xc3\x28", 2, false},             /* bad continuation */
        {"\xe2\x28\xa1", 3, false},
        {"\xf0\x9f\x98\x28", 4, false},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint8_t *buf = malloc(cases[k].len > 0 ? cases[k].len : 1);
        ck_assert_ptr_nonnull(buf);
        memcpy(buf, cases[k].s, cases[k].len); /* exact size: no peeking past the end */
        ck_assert_msg(lm_utf8_valid(buf, cases[k].len) == cases[k].ok, "case %zu: expected %s", k,
                      cases[k].ok ? "valid" : "invalid");
        free(buf);
    }
    /* every code point encodes to valid UTF-8, every surrogate does not */
    for (uint32_t cp = 0; cp <= 0x10ffff; cp += cp < 0x3000 ? 1 : 97) {
        uint8_t b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xc0 | cp >> 6);
            b[1] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xe0 | cp >> 12);
            b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            b[2] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            b[0] = (uint8_t)(0xf0 | cp >> 18);
            b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            b[3] = (uint8_t)(0x80 | (cp & 0x3f));
            n = 4;
        }
        ck_assert_msg(lm_utf8_valid(b, n) == (cp < 0xd800 || cp > 0xdfff), "U+%04X", cp);
    }
}
END_TEST

Suite *
batch_suite(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_batch_schema_rejects_bad_fields);
    tcase_add_test(tc, test_batch_schema_copies_names_and_compares);
    tcase_add_test(tc, test_batch_type_names);
    tcase_add_test(tc, test_batch_build_every_type_and_read_back);
    tcase_add_test(tc, test_batch_grows_past_initial_capacity);
    tcase_add_test(tc, test_batch_grows_for_a_value_larger_than_the_data_buffer);
    tcase_add_test(tc, test_batch_append_rejects_bad_rows_and_leaves_batch_unchanged);
    tcase_add_test(tc, test_batch_clear_empties_for_reuse);
    tcase_add_test(tc, test_batch_round_trip_preserves_every_value);
    tcase_add_test(tc, test_batch_round_trip_all_null_and_no_field_batches);
    tcase_add_test(tc, test_batch_decode_points_into_the_message);
    tcase_add_test(tc, test_batch_decode_copies_misaligned_buffers);
    tcase_add_test(tc, test_batch_decoded_batch_retains_its_message);
    tcase_add_test(tc, test_batch_decode_hand_made_encoding);
    tcase_add_test(tc, test_batch_decode_rejects_bad_offsets);
    tcase_add_test(tc, test_batch_decode_rejects_bad_utf8);
    tcase_add_test(tc, test_batch_decode_rejects_bad_validity);
    tcase_add_test(tc, test_batch_decode_rejects_bad_values);
    tcase_add_test(tc, test_batch_decode_rejects_bad_schema);
    tcase_add_test(tc, test_batch_decode_rejects_too_many_rows);
    tcase_add_test(tc, test_batch_decode_rejects_truncation_everywhere);
    tcase_add_test(tc, test_batch_utf8_valid_edge_cases);
    suite_add_tcase(s, tc);
    return s;
}
