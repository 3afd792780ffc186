/*
 * check_expr.c: the expression engine. Most functions are checked through
 * one harness (check_fn) that evaluates each case in every operand form:
 * all literals (constant folded), all columns (vector-vector kernels over a
 * batch holding every case as a row), and each mix of columns and
 * literals (vector-constant kernels), with NULLs in every argument
 * position, and compares the text of each result and the errors counted.
 * Then: three-valued truth tables, division by constants against C,
 * temporal arithmetic, LIKE, UTF-8 substrings, the CAST matrix, literals,
 * CASE, error counting only on rows that matter, constant folding, compile
 * error messages with paths and suggestions, large and empty batches,
 * appending with eval_into, filter indices, the i64/f64 entry points and
 * four threads sharing one compiled expression.
 */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_batch.h"
#include "lm_expr.h"
#include "lm_expr_int.h"

/* --- helpers ------------------------------------------------------------------ */

/* Parses JSON written with single quotes (turned into double quotes). */
static json_t *
J(const char *text)
{
    char *t = strdup(text);
    json_error_t je;
    json_t *j;

    for (char *p = t; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    j = json_loads(t, JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "bad test JSON %s: %s", t, je.text);
    free(t);
    return j;
}

static lm_schema *
make_schema(const lm_field *f, uint32_t n)
{
    lm_schema *s = NULL;
    lm_error err;
    ck_assert_msg(lm_schema_new(f, n, &s, &err) == LM_OK, "%s", err.msg);
    return s;
}

/* The schema most tests use. */
enum { C_B, C_I, C_J, C_F, C_TS, C_S, C_BIN, C_NN, C_PRICE, C_URL, NCOLS };
static const lm_field std_fields[NCOLS] = {
    {"b", LM_TYPE_BOOL, true},           {"i", LM_TYPE_INT64, true},
    {"j", LM_TYPE_INT64, true},          {"f", LM_TYPE_FLOAT64, true},
    {"ts", LM_TYPE_TIMESTAMP, true},     {"s", LM_TYPE_UTF8, true},
    {"bin", LM_TYPE_BINARY, true},       {"nn", LM_TYPE_INT64, false},
    {"bid.price", LM_TYPE_INT64, false}, {"url", LM_TYPE_UTF8, false},
};

static lm_schema *
std_schema(void)
{
    return make_schema(std_fields, NCOLS);
}

/* Compiles j (taken) against s; fails the test with the message on error. */
static lm_expr *
compile_ok(json_t *j, const lm_schema *s)
{
    lm_expr *e = NULL;
    lm_error err;
    char *text = json_dumps(j, JSON_ENCODE_ANY);
    int rv = lm_expr_compile(j, s, &e, &err);

    ck_assert_msg(rv == LM_OK, "compile %s: %s", text, err.msg);
    free(text);
    json_decref(j);
    return e;
}

/* Compiling j (taken) fails with LM_EINVAL and exactly msg. */
static void
compile_fails(json_t *j, const lm_schema *s, const char *msg)
{
    lm_expr *e = NULL;
    lm_error err;
    char *text = json_dumps(j, JSON_ENCODE_ANY);
    int rv = lm_expr_compile(j, s, &e, &err);

    ck_assert_msg(rv == LM_EINVAL, "compile %s: expected failure, got %d", text, rv);
    ck_assert_msg(strcmp(err.msg, msg) == 0, "compile %s:\n got  \"%s\"\n want \"%s\"", text,
                  err.msg, msg);
    ck_assert_ptr_null(e);
    free(text);
    json_decref(j);
}

/* Shortest text of a double that reads back exactly. */
static void
fmt_double(double d, char *buf, size_t len)
{
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, d);
        if (strtod(buf, NULL) == d || isnan(d)) {
            return;
        }
    }
}

/* Text of a value: NULL, true/false, integers, shortest doubles, strings
 * as they are, binary as x'hex', timestamps as YYYY-MM-DD HH:MM:SS.ffffff. */
static char *
fmt_value(int type, const lm_value *v)
{
    char buf[256];

    if (v->is_null) {
        return strdup("NULL");
    }
    switch (type) {
    case LM_TYPE_BOOL: return strdup(v->v.b ? "true" : "false");
    case LM_TYPE_INT64:
    case LM_TYPE_INTERVAL: snprintf(buf, sizeof(buf), "%" PRId64, v->v.i); return strdup(buf);
    case LM_TYPE_FLOAT64: fmt_double(v->v.f, buf, sizeof(buf)); return strdup(buf);
    case LM_TYPE_TIMESTAMP: {
        int64_t secs = v->v.i / 1000000, us = v->v.i % 1000000;
        struct tm tm;
        if (us < 0) {
            us += 1000000;
            secs--;
        }
        time_t t = (time_t)secs;
        gmtime_r(&t, &tm);
        size_t k = strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(buf + k, sizeof(buf) - k, ".%06d", (int)us);
        return strdup(buf);
    }
    case LM_TYPE_UTF8: return strndup(v->v.s.ptr, v->v.s.len);
    default: {
        size_t k = 0;
        k += (size_t)snprintf(buf, sizeof(buf), "x'");
        for (uint32_t i = 0; i < v->v.s.len && k + 4 < sizeof(buf); i++) {
            k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%02x",
                                  ((const uint8_t *)v->v.s.ptr)[i]);
        }
        snprintf(buf + k, sizeof(buf) - k, "'");
        return strdup(buf);
    }
    }
}

/* Evaluates e over in and returns the text of every row (free with
 * free_texts); *errors gets the errors counted. */
static char **
eval_texts(const lm_expr *e, const lm_batch *in, uint64_t *errors)
{
    lm_expr_ctx *ctx = NULL;
    uint32_t n = in->nrows;
    char **out = calloc(n + 1, sizeof(char *));
    int type = lm_expr_type(e);
    lm_error err;

    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    if (type == LM_TYPE_INTERVAL) {
        int64_t *vals = malloc((n + 1) * 8);
        uint8_t *valid = malloc(n + 1);
        ck_assert_msg(lm_expr_eval_i64(ctx, e, in, vals, valid, &err) == LM_OK, "%s", err.msg);
        for (uint32_t i = 0; i < n; i++) {
            lm_value v = {.is_null = !valid[i], .v.i = vals[i]};
            out[i] = fmt_value(type, &v);
        }
        free(vals);
        free(valid);
    } else {
        lm_field f = {"out", (lm_type)type, true};
        lm_schema *s = make_schema(&f, 1);
        lm_batch *b = NULL;
        ck_assert_int_eq(lm_batch_new(s, n, &b), LM_OK);
        lm_schema_release(s);
        ck_assert_int_eq(lm_batch_reserve(b, n), LM_OK);
        ck_assert_msg(lm_expr_eval_into(ctx, e, in, b, 0, &err) == LM_OK, "%s", err.msg);
        lm_batch_commit_rows(b, n);
        for (uint32_t i = 0; i < n; i++) {
            lm_value v;
            lm_batch_get(b, 0, i, &v);
            out[i] = fmt_value(type, &v);
        }
        lm_batch_free(b);
    }
    *errors = lm_expr_ctx_errors(ctx);
    lm_expr_ctx_free(ctx);
    return out;
}

static void
free_texts(char **t, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(t[i]);
    }
    free(t);
}

/* A literal from a short spec: i:5 f:2.5 f:nan s:abc b:true
 * ts:2024-01-01 00:00:00 ts:123 (micros) iv:1000 bin:abc null:int64. */
static json_t *
lit(const char *spec)
{
    const char *v = strchr(spec, ':');
    size_t plen;

    ck_assert_msg(v != NULL, "bad spec %s", spec);
    plen = (size_t)(v - spec);
    v++;
#define P(x) (plen == strlen(x) && strncmp(spec, x, plen) == 0)
    if (P("i")) {
        return json_pack("{s:I}", "lit", (json_int_t)strtoll(v, NULL, 10));
    }
    if (P("f")) {
        if (strcmp(v, "nan") == 0 || strcmp(v, "inf") == 0 || strcmp(v, "-inf") == 0) {
            return json_pack("{s:{s:s},s:s}", "cast", "lit", v, "to", "float64");
        }
        return json_pack("{s:f,s:s}", "lit", strtod(v, NULL), "type", "float64");
    }
    if (P("s")) {
        return json_pack("{s:s}", "lit", v);
    }
    if (P("b")) {
        return json_pack("{s:b}", "lit", strcmp(v, "true") == 0);
    }
    if (P("ts")) {
        if (strchr(v, '-') == NULL || v[0] == '-') {
            return json_pack("{s:I,s:s}", "lit", (json_int_t)strtoll(v, NULL, 10), "type",
                             "timestamp");
        }
        return json_pack("{s:s,s:s}", "lit", v, "type", "timestamp");
    }
    if (P("iv")) {
        return json_pack("{s:I,s:s}", "lit", (json_int_t)strtoll(v, NULL, 10), "type", "interval");
    }
    if (P("bin")) {
        return json_pack("{s:s,s:s}", "lit", v, "type", "binary");
    }
    if (P("null")) {
        return json_pack("{s:n,s:s}", "lit", "type", v);
    }
#undef P
    ck_abort_msg("bad spec %s", spec);
    return NULL;
}

/* One case of check_fn: up to 5 argument specs and the expected text; a
 * trailing '!' means the row counts one error. */
typedef struct tc {
    const char *a[5];
    const char *want;
} tc;

/* The expression for fn over args: a call, or "cast:T" for a cast. */
static json_t *
build(const char *fn, json_t *args)
{
    if (strncmp(fn, "cast:", 5) == 0) {
        json_t *j = json_pack("{s:O,s:s}", "cast", json_array_get(args, 0), "to", fn + 5);
        json_decref(args);
        return j;
    }
    return json_pack("{s:s,s:o}", "call", fn, "args", args);
}

static bool
want_error(const char *w)
{
    size_t n = strlen(w);
    return n > 0 && w[n - 1] == '!';
}

static bool
same_text(const char *got, const char *want)
{
    size_t n = strlen(want) - (want_error(want) ? 1 : 0);
    return strlen(got) == n && strncmp(got, want, n) == 0;
}

/* Checks fn over the cases in every form: all literals, all columns, and
 * every mix. Argument positions in litonly (bits) always stay literals. */
static void
check_fn_x(const char *fn, const tc *cases, size_t ncases, unsigned litonly, const char *file,
           int line)
{
    uint32_t nargs = 0, n = (uint32_t)ncases;
    int types[5];
    lm_field fields[5];
    char names[5][16];
    lm_schema *cs;
    lm_batch *cb = NULL, *one = NULL;
    lm_schema *empty = make_schema(NULL, 0);
    lm_expr_ctx *ctx = NULL;
    lm_error err;

    while (nargs < 5 && cases[0].a[nargs] != NULL) {
        nargs++;
    }
    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    ck_assert_int_eq(lm_batch_new(empty, 1, &one), LM_OK);
    lm_batch_commit_rows(one, 1);
    /* argument types (from the first case) */
    for (uint32_t k = 0; k < nargs; k++) {
        lm_expr *e = compile_ok(lit(cases[0].a[k]), empty);
        types[k] = lm_expr_type(e);
        lm_expr_free(e);
        if (types[k] == LM_TYPE_INTERVAL) {
            litonly |= 1u << k;
        }
        snprintf(names[k], sizeof(names[k]), "c%u", k);
        fields[k].name = names[k];
        fields[k].type = types[k] == LM_TYPE_INTERVAL ? LM_TYPE_INT64 : (lm_type)types[k];
        fields[k].nullable = true;
    }
    /* the batch: case i is row i */
    cs = make_schema(fields, nargs);
    ck_assert_int_eq(lm_batch_new(cs, n, &cb), LM_OK);
    for (uint32_t i = 0; i < n; i++) {
        lm_value row[5];
        lm_batch *tmp[5] = {0};
        for (uint32_t k = 0; k < nargs; k++) {
            ck_assert_msg(cases[i].a[k] != NULL, "%s:%d: case %u lacks argument %u", file, line, i,
                          k);
            lm_expr *e = compile_ok(lit(cases[i].a[k]), empty);
            ck_assert_msg(lm_expr_type(e) == types[k], "%s:%d: case %u argument %u: type differs",
                          file, line, i, k);
            memset(&row[k], 0, sizeof(row[k]));
            if (types[k] != LM_TYPE_INTERVAL) {
                lm_schema *ts = make_schema(&fields[k], 1);
                ck_assert_int_eq(lm_batch_new(ts, 1, &tmp[k]), LM_OK);
                lm_schema_release(ts);
                ck_assert_msg(lm_expr_eval_into(ctx, e, one, tmp[k], 0, &err) == LM_OK, "%s",
                              err.msg);
                lm_batch_commit_rows(tmp[k], 1);
                lm_batch_get(tmp[k], 0, 0, &row[k]);
            }
            lm_expr_free(e);
        }
        ck_assert_msg(lm_batch_append_row(cb, row, &err) == LM_OK, "%s", err.msg);
        for (uint32_t k = 0; k < nargs; k++) {
            lm_batch_free(tmp[k]);
        }
    }
    /* every form: bit k set = argument k is the column */
    for (unsigned mask = 0; mask < (1u << nargs); mask++) {
        if (mask & litonly) {
            continue;
        }
        bool all_cols = mask == ((1u << nargs) - 1) && nargs > 0;
        for (uint32_t i = 0; i < n; i++) {
            json_t *args = json_array();
            for (uint32_t k = 0; k < nargs; k++) {
                json_array_append_new(args, (mask >> k) & 1 ? json_pack("{s:s}", "col", names[k])
                                                            : lit(cases[i].a[k]));
            }
            json_t *j = build(fn, args);
            char *text = json_dumps(j, JSON_ENCODE_ANY);
            lm_expr *e = compile_ok(j, cs);
            uint64_t errors;
            char **got = eval_texts(e, cb, &errors);
            if (all_cols) { /* one evaluation checks every row */
                uint64_t want_errs = 0;
                for (uint32_t r = 0; r < n; r++) {
                    ck_assert_msg(same_text(got[r], cases[r].want),
                                  "%s:%d: %s row %u: got '%s', want '%s'", file, line, text, r,
                                  got[r], cases[r].want);
                    want_errs += want_error(cases[r].want);
                }
                ck_assert_msg(errors == want_errs, "%s:%d: %s: %" PRIu64 " errors, want %" PRIu64,
                              file, line, text, errors, want_errs);
                free_texts(got, n);
                free(text);
                lm_expr_free(e);
                break;
            }
            ck_assert_msg(same_text(got[i], cases[i].want), "%s:%d: %s row %u: got '%s', want '%s'",
                          file, line, text, i, got[i], cases[i].want);
            if (mask == 0) { /* constant: every row the same, every row's error counted */
                for (uint32_t r = 0; r < n; r++) {
                    ck_assert_msg(strcmp(got[r], got[0]) == 0, "%s:%d: %s: rows differ", file, line,
                                  text);
                }
                ck_assert_msg(errors == (want_error(cases[i].want) ? n : 0),
                              "%s:%d: %s: %" PRIu64 " errors", file, line, text, errors);
            }
            free_texts(got, n);
            free(text);
            lm_expr_free(e);
        }
    }
    lm_batch_free(cb);
    lm_batch_free(one);
    lm_schema_release(cs);
    lm_schema_release(empty);
    lm_expr_ctx_free(ctx);
}

#define check_fn(fn, cases)                                                                        \
    check_fn_x(fn, cases, sizeof(cases) / sizeof(cases[0]), 0, __FILE__, __LINE__)
#define check_fn_lit(fn, cases, litonly)                                                           \
    check_fn_x(fn, cases, sizeof(cases) / sizeof(cases[0]), litonly, __FILE__, __LINE__)

/* Evaluates JSON text over in and checks each row's text against want. */
static void
check_rows_x(const char *json, const lm_batch *in, const char *const *want, uint64_t want_errors,
             const char *file, int line)
{
    lm_expr *e = compile_ok(J(json), in->schema);
    uint64_t errors;
    char **got = eval_texts(e, in, &errors);

    for (uint32_t r = 0; r < in->nrows; r++) {
        ck_assert_msg(strcmp(got[r], want[r]) == 0, "%s:%d: %s row %u: got '%s', want '%s'", file,
                      line, json, r, got[r], want[r]);
    }
    ck_assert_msg(errors == want_errors, "%s:%d: %s: %" PRIu64 " errors, want %" PRIu64, file, line,
                  json, errors, want_errors);
    free_texts(got, in->nrows);
    lm_expr_free(e);
}
#define check_rows(json, in, want, errs) check_rows_x(json, in, want, errs, __FILE__, __LINE__)

/* A batch of the standard schema from rows of text: each row gives b, i,
 * j, f, ts (micros), s, bin as strings, "N" for NULL; nn, bid.price and
 * url are derived from the row number. */
typedef struct srow {
    const char *b, *i, *j, *f, *ts, *s, *bin;
} srow;

static lm_batch *
std_batch(const srow *rows, uint32_t n)
{
    lm_schema *s = std_schema();
    lm_batch *b = NULL;
    lm_error err;
    char url[64];

    ck_assert_int_eq(lm_batch_new(s, n, &b), LM_OK);
    lm_schema_release(s);
    for (uint32_t r = 0; r < n; r++) {
        lm_value v[NCOLS];
        const char *t[7] = {rows[r].b,  rows[r].i, rows[r].j,  rows[r].f,
                            rows[r].ts, rows[r].s, rows[r].bin};
        memset(v, 0, sizeof(v));
        for (int k = 0; k < 7; k++) {
            v[k].is_null = t[k] == NULL || strcmp(t[k], "N") == 0;
        }
        if (!v[C_B].is_null) {
            v[C_B].v.b = strcmp(rows[r].b, "true") == 0;
        }
        if (!v[C_I].is_null) {
            v[C_I].v.i = strtoll(rows[r].i, NULL, 10);
        }
        if (!v[C_J].is_null) {
            v[C_J].v.i = strtoll(rows[r].j, NULL, 10);
        }
        if (!v[C_F].is_null) {
            v[C_F].v.f = strtod(rows[r].f, NULL);
        }
        if (!v[C_TS].is_null) {
            v[C_TS].v.i = strtoll(rows[r].ts, NULL, 10);
        }
        if (!v[C_S].is_null) {
            v[C_S].v.s.ptr = rows[r].s;
            v[C_S].v.s.len = (uint32_t)strlen(rows[r].s);
        }
        if (!v[C_BIN].is_null) {
            v[C_BIN].v.s.ptr = rows[r].bin;
            v[C_BIN].v.s.len = (uint32_t)strlen(rows[r].bin);
        }
        v[C_NN].v.i = r;
        v[C_PRICE].v.i = 100 * (int64_t)r;
        snprintf(url, sizeof(url), "http://example.com/item/%u?q=nexmark", r);
        v[C_URL].v.s.ptr = url;
        v[C_URL].v.s.len = (uint32_t)strlen(url);
        ck_assert_msg(lm_batch_append_row(b, v, &err) == LM_OK, "%s", err.msg);
    }
    return b;
}

/* --- arithmetic ------------------------------------------------------------------ */

START_TEST(test_expr_arith_int64_with_nulls_overflow_and_division_by_zero)
{
    static const tc add[] = {
        {{"i:1", "i:2"}, "3"},
        {{"i:-5", "i:3"}, "-2"},
        {{"i:9223372036854775807", "i:1"}, "NULL!"},
        {{"i:-9223372036854775808", "i:-1"}, "NULL!"},
        {{"i:9223372036854775807", "i:-9223372036854775808"}, "-1"},
        {{"null:int64", "i:1"}, "NULL"},
        {{"i:1", "null:int64"}, "NULL"},
        {{"null:int64", "null:int64"}, "NULL"},
    };
    static const tc sub[] = {
        {{"i:5", "i:7"}, "-2"},
        {{"i:-9223372036854775808", "i:1"}, "NULL!"},
        {{"i:9223372036854775807", "i:-1"}, "NULL!"},
        {{"i:0", "i:-9223372036854775807"}, "9223372036854775807"},
        {{"i:0", "i:-9223372036854775808"}, "NULL!"},
        {{"null:int64", "i:1"}, "NULL"},
        {{"i:1", "null:int64"}, "NULL"},
    };
    static const tc mul[] = {
        {{"i:6", "i:7"}, "42"},
        {{"i:-6", "i:7"}, "-42"},
        {{"i:4611686018427387904", "i:2"}, "NULL!"},
        {{"i:-4611686018427387904", "i:2"}, "-9223372036854775808"},
        {{"i:-9223372036854775808", "i:-1"}, "NULL!"},
        {{"i:0", "i:-9223372036854775808"}, "0"},
        {{"null:int64", "i:0"}, "NULL"},
        {{"i:0", "null:int64"}, "NULL"},
    };
    static const tc div[] = {
        {{"i:7", "i:2"}, "3"},
        {{"i:-7", "i:2"}, "-3"},
        {{"i:7", "i:-2"}, "-3"},
        {{"i:-7", "i:-2"}, "3"},
        {{"i:1", "i:0"}, "NULL!"},
        {{"i:0", "i:0"}, "NULL!"},
        {{"i:-9223372036854775808", "i:-1"}, "NULL!"},
        {{"i:-9223372036854775808", "i:1"}, "-9223372036854775808"},
        {{"i:9223372036854775807", "i:-1"}, "-9223372036854775807"},
        {{"null:int64", "i:0"}, "NULL"},
        {{"i:5", "null:int64"}, "NULL"},
    };
    static const tc mod[] = {
        {{"i:7", "i:3"}, "1"},
        {{"i:-7", "i:3"}, "-1"},
        {{"i:7", "i:-3"}, "1"},
        {{"i:-7", "i:-3"}, "-1"},
        {{"i:6", "i:3"}, "0"},
        {{"i:5", "i:0"}, "NULL!"},
        {{"i:-9223372036854775808", "i:-1"}, "0"},
        {{"i:-9223372036854775808", "i:10"}, "-8"},
        {{"null:int64", "i:0"}, "NULL"},
        {{"i:5", "null:int64"}, "NULL"},
    };
    static const tc neg[] = {
        {{"i:5"}, "-5"},
        {{"i:0"}, "0"},
        {{"i:9223372036854775807"}, "-9223372036854775807"},
        {{"i:-9223372036854775808"}, "NULL!"},
        {{"null:int64"}, "NULL"},
    };
    static const tc abs_[] = {
        {{"i:-5"}, "5"},
        {{"i:5"}, "5"},
        {{"i:-9223372036854775807"}, "9223372036854775807"},
        {{"i:-9223372036854775808"}, "NULL!"},
        {{"null:int64"}, "NULL"},
    };
    check_fn("+", add);
    check_fn("-", sub);
    check_fn("*", mul);
    check_fn("/", div);
    check_fn("%", mod);
    check_fn("mod", mod);
    check_fn("MOD", mod);
    check_fn("neg", neg);
    check_fn("-", neg);
    check_fn("abs", abs_);
}
END_TEST

START_TEST(test_expr_arith_float64_and_int_promotion)
{
    static const tc add[] = {
        {{"f:1.5", "f:2.25"}, "3.75"},     {{"f:0.1", "f:0.2"}, "0.30000000000000004"},
        {{"f:1e308", "f:1e308"}, "inf"},   {{"f:nan", "f:1"}, "nan"},
        {{"null:float64", "f:1"}, "NULL"}, {{"f:1", "null:float64"}, "NULL"},
    };
    static const tc add_if[] = {
        {{"i:1", "f:0.5"}, "1.5"},
        {{"i:-3", "f:0.25"}, "-2.75"},
        {{"null:int64", "f:0.5"}, "NULL"},
        {{"i:1", "null:float64"}, "NULL"},
    };
    static const tc sub_fi[] = {
        {{"f:0.5", "i:2"}, "-1.5"},
        {{"null:float64", "i:2"}, "NULL"},
        {{"f:0.5", "null:int64"}, "NULL"},
    };
    static const tc mul_fi[] = {
        {{"f:0.5", "i:3"}, "1.5"},
        {{"f:0.908", "i:0"}, "0"},
        {{"f:-2", "i:4"}, "-8"},
        {{"null:float64", "i:3"}, "NULL"},
    };
    static const tc div_ff[] = {
        {{"f:1", "f:4"}, "0.25"},          {{"f:-1", "f:4"}, "-0.25"},
        {{"f:1", "f:0"}, "NULL!"},         {{"f:-1", "f:-0.0"}, "NULL!"},
        {{"f:0", "f:0"}, "NULL!"},         {{"f:inf", "f:2"}, "inf"},
        {{"null:float64", "f:0"}, "NULL"}, {{"f:1", "null:float64"}, "NULL"},
    };
    static const tc div_if[] = {
        {{"i:7", "f:2"}, "3.5"},
        {{"i:1", "f:0"}, "NULL!"},
        {{"null:int64", "f:0"}, "NULL"},
    };
    static const tc mod_ff[] = {
        {{"f:5.5", "f:2"}, "1.5"}, {{"f:-5.5", "f:2"}, "-1.5"},       {{"f:5.5", "f:-2"}, "1.5"},
        {{"f:1", "f:0"}, "NULL!"}, {{"null:float64", "f:0"}, "NULL"},
    };
    static const tc neg_f[] = {
        {{"f:1.5"}, "-1.5"},
        {{"f:-inf"}, "inf"},
        {{"null:float64"}, "NULL"},
    };
    static const tc abs_f[] = {
        {{"f:-2.5"}, "2.5"},
        {{"f:2.5"}, "2.5"},
        {{"null:float64"}, "NULL"},
    };
    check_fn("+", add);
    check_fn("+", add_if);
    check_fn("-", sub_fi);
    check_fn("*", mul_fi);
    check_fn("/", div_ff);
    check_fn("/", div_if);
    check_fn("%", mod_ff);
    check_fn("neg", neg_f);
    check_fn("abs", abs_f);
}
END_TEST

/* C's x / d and x % d, NULL (false) where SQL says so. */
static bool
c_div(int64_t x, int64_t d, bool mod, int64_t *r)
{
    if (d == 0) {
        return false;
    }
    if (d == -1) {
        if (mod) {
            *r = 0;
            return true;
        }
        if (x == INT64_MIN) {
            return false;
        }
        *r = -x;
        return true;
    }
    *r = mod ? x % d : x / d;
    return true;
}

static uint64_t
rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(test_expr_div_mod_by_constants_match_c)
{
    lm_field f[2] = {{"x", LM_TYPE_INT64, true}, {"y", LM_TYPE_INT64, true}};
    lm_schema *s = make_schema(f, 2);
    lm_batch *b = NULL;
    lm_expr_ctx *ctx = NULL;
    lm_error err;
    uint64_t seed = 88172645463325252ull;
    enum { N = 3000 };
    int64_t xs[N], vals[N];
    uint8_t valid[N];
    int64_t divisors[64 + 400];
    size_t nd = 0;
    static const int64_t fixed[] = {1,
                                    -1,
                                    2,
                                    -2,
                                    3,
                                    -3,
                                    5,
                                    6,
                                    7,
                                    -7,
                                    10,
                                    -10,
                                    12,
                                    123,
                                    641,
                                    1000,
                                    1 << 20,
                                    -(1 << 20),
                                    1000000007,
                                    12345678901ll,
                                    (int64_t)1 << 62,
                                    -((int64_t)1 << 62),
                                    INT64_MAX,
                                    INT64_MIN,
                                    INT64_MIN + 1,
                                    INT64_MAX - 1,
                                    3037000499ll,
                                    0};

    ck_assert_int_eq(lm_batch_new(s, N, &b), LM_OK);
    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    for (uint32_t i = 0; i < N; i++) {
        static const int64_t edge[] = {INT64_MIN,     INT64_MIN + 1, -1,  0,   1,   INT64_MAX,
                                       INT64_MAX - 1, -123,          123, 122, 124, -124};
        uint64_t r = rng(&seed);
        int64_t x = i < 12 ? edge[i] : (int64_t)(i % 3 == 0 ? r : r >> (r % 63));
        if (i % 2 == 1 && i >= 12) {
            x = -x;
        }
        xs[i] = x;
        lm_value row[2] = {{.is_null = i == 40, .v.i = x}, {.is_null = false, .v.i = 0}};
        int64_t y = (int64_t)(rng(&seed) >> (rng(&seed) % 64));
        row[1].v.i = i % 10 == 0 ? 0 : i % 10 == 1 ? -1 : (i % 2 ? -y : y);
        row[1].is_null = i == 41;
        ck_assert_int_eq(lm_batch_append_row(b, row, &err), LM_OK);
    }
    for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++) {
        divisors[nd++] = fixed[k];
    }
    for (int k = 0; k < 400; k++) {
        uint64_t r = rng(&seed);
        divisors[nd++] = (int64_t)(r >> (r % 64)) * (k % 2 ? -1 : 1);
    }
    /* mod(x, d) = 0 and <> 0 become a divisibility test */
    for (size_t k = 0; k < nd; k++) {
        int64_t d = divisors[k];
        for (int form = 0; form < 3; form++) {
            char js[200];
            static const char *const fmts[] = {
                "{'call':'=','args':[{'call':'%%','args':[{'col':'x'},{'lit':%" PRId64
                "}]},{'lit':0}]}",
                "{'call':'=','args':[{'lit':0},{'call':'mod','args':[{'col':'x'},{'lit':%" PRId64
                "}]}]}",
                "{'call':'<>','args':[{'call':'%%','args':[{'col':'x'},{'lit':%" PRId64
                "}]},{'lit':0}]}",
            };
            snprintf(js, sizeof(js), fmts[form], d);
            lm_expr *e = compile_ok(J(js), s);
            if (d != 0) {
                ck_assert_int_eq(e->op, form == 2 ? OP_NDIVBY : OP_DIVBY);
            }
            lm_field of = {"o", LM_TYPE_BOOL, true};
            lm_schema *os = make_schema(&of, 1);
            lm_batch *out = NULL;
            ck_assert_int_eq(lm_batch_new(os, N, &out), LM_OK);
            ck_assert_int_eq(lm_expr_eval_into(ctx, e, b, out, 0, &err), LM_OK);
            lm_batch_commit_rows(out, N);
            for (uint32_t i = 0; i < N; i++) {
                int64_t r = 0;
                lm_value v;
                bool ok = i != 40 && c_div(xs[i], d, true, &r);
                lm_batch_get(out, 0, i, &v);
                ck_assert_msg(v.is_null == !ok && (!ok || v.v.b == ((r == 0) != (form == 2))),
                              "%" PRId64 " divisible by %" PRId64 " (form %d): got %d/%d", xs[i], d,
                              form, v.is_null, v.v.b);
            }
            lm_batch_free(out);
            lm_schema_release(os);
            lm_expr_free(e);
        }
    }
    for (int mod = 0; mod < 2; mod++) {
        for (size_t k = 0; k < nd; k++) {
            char js[160];
            int64_t d = divisors[k];
            snprintf(js, sizeof(js), "{'call':'%s','args':[{'col':'x'},{'lit':%" PRId64 "}]}",
                     mod ? "%" : "/", d);
            lm_expr *e = compile_ok(J(js), s);
            uint64_t before = lm_expr_ctx_errors(ctx), want_err = 0;
            ck_assert_int_eq(lm_expr_eval_i64(ctx, e, b, vals, valid, &err), LM_OK);
            for (uint32_t i = 0; i < N; i++) {
                int64_t r = 0;
                bool ok = i != 40 && c_div(xs[i], d, mod, &r);
                want_err += i != 40 && !ok;
                ck_assert_msg(valid[i] == ok && (!ok || vals[i] == r),
                              "%" PRId64 " %s %" PRId64 ": got %" PRId64
                              " (valid %d), want %" PRId64,
                              xs[i], mod ? "%" : "/", d, vals[i], valid[i], r);
            }
            ck_assert_uint_eq(lm_expr_ctx_errors(ctx) - before, want_err);
            lm_expr_free(e);
        }
        /* vector by vector */
        lm_expr *e = compile_ok(J(mod ? "{'call':'mod','args':[{'col':'x'},{'col':'y'}]}"
                                      : "{'call':'/','args':[{'col':'x'},{'col':'y'}]}"),
                                s);
        ck_assert_int_eq(lm_expr_eval_i64(ctx, e, b, vals, valid, &err), LM_OK);
        for (uint32_t i = 0; i < N; i++) {
            lm_value y;
            int64_t r = 0;
            lm_batch_get(b, 1, i, &y);
            bool ok = i != 40 && !y.is_null && c_div(xs[i], y.v.i, mod, &r);
            ck_assert_msg(valid[i] == ok && (!ok || vals[i] == r), "row %u", i);
        }
        lm_expr_free(e);
    }
    lm_expr_ctx_free(ctx);
    lm_batch_free(b);
    lm_schema_release(s);
}
END_TEST

START_TEST(test_expr_timestamp_interval_arithmetic)
{
    static const tc ts_plus_iv[] = {
        {{"ts:2024-01-01 00:00:00", "iv:1500000"}, "2024-01-01 00:00:01.500000"},
        {{"ts:2024-02-28 23:00:00", "iv:7200000000"}, "2024-02-29 01:00:00.000000"},
        {{"ts:1970-01-01 00:00:00", "iv:-1"}, "1969-12-31 23:59:59.999999"},
        {{"ts:9223372036854775807", "iv:1"}, "NULL!"},
        {{"null:timestamp", "iv:1"}, "NULL"},
        {{"ts:2024-01-01 00:00:00", "null:interval"}, "NULL"},
    };
    static const tc iv_plus_ts[] = {
        {{"iv:60000000", "ts:2024-01-01 00:00:00"}, "2024-01-01 00:01:00.000000"},
        {{"null:interval", "ts:2024-01-01 00:00:00"}, "NULL"},
    };
    static const tc ts_minus_iv[] = {
        {{"ts:2024-03-01 00:00:00", "iv:86400000000"}, "2024-02-29 00:00:00.000000"},
        {{"ts:-9223372036854775808", "iv:1"}, "NULL!"},
        {{"null:timestamp", "iv:1"}, "NULL"},
    };
    static const tc ts_minus_ts[] = {
        {{"ts:2024-01-01 00:00:01", "ts:2024-01-01 00:00:00"}, "1000000"},
        {{"ts:2024-01-01 00:00:00", "ts:2024-01-02 00:00:00"}, "-86400000000"},
        {{"ts:9223372036854775807", "ts:-1"}, "NULL!"},
        {{"null:timestamp", "ts:2024-01-01 00:00:00"}, "NULL"},
        {{"ts:2024-01-01 00:00:00", "null:timestamp"}, "NULL"},
    };
    static const tc iv_iv_add[] = {
        {{"iv:5", "iv:7"}, "12"},
        {{"iv:9223372036854775807", "iv:1"}, "NULL!"},
        {{"null:interval", "iv:1"}, "NULL"},
    };
    static const tc iv_iv_sub[] = {{{"iv:5", "iv:7"}, "-2"}, {{"iv:1", "null:interval"}, "NULL"}};
    static const tc iv_mul[] = {
        {{"iv:1000", "i:3"}, "3000"},
        {{"iv:4611686018427387904", "i:2"}, "NULL!"},
        {{"iv:1000", "null:int64"}, "NULL"},
    };
    static const tc mul_iv[] = {{{"i:-2", "iv:1000"}, "-2000"}, {{"null:int64", "iv:1"}, "NULL"}};
    static const tc iv_div[] = {
        {{"iv:1000", "i:3"}, "333"},
        {{"iv:1000", "i:0"}, "NULL!"},
    };
    static const tc iv_neg[] = {{{"iv:5"}, "-5"}, {{"iv:-9223372036854775808"}, "NULL!"}};
    static const tc iv_abs[] = {{{"iv:-5"}, "5"}, {{"null:interval"}, "NULL"}};
    static const tc iv_lt[] = {
        {{"iv:1", "iv:2"}, "true"},
        {{"iv:2", "iv:1"}, "false"},
        {{"iv:1", "null:interval"}, "NULL"},
    };
    static const tc iv_to_int[] = {{{"iv:1500"}, "1500"}, {{"null:interval"}, "NULL"}};
    static const tc int_to_iv[] = {{{"i:1500"}, "1500"}, {{"null:int64"}, "NULL"}};
    check_fn("+", ts_plus_iv);
    check_fn("+", iv_plus_ts);
    check_fn("-", ts_minus_iv);
    check_fn("-", ts_minus_ts);
    check_fn("+", iv_iv_add);
    check_fn("-", iv_iv_sub);
    check_fn("*", iv_mul);
    check_fn("*", mul_iv);
    check_fn("/", iv_div);
    check_fn("neg", iv_neg);
    check_fn("abs", iv_abs);
    check_fn("<", iv_lt);
    check_fn("cast:int64", iv_to_int);
    check_fn("cast:interval", int_to_iv);

    /* interval vectors: (ts2 - ts) * 2 + ts over columns */
    lm_field f[2] = {{"a", LM_TYPE_TIMESTAMP, true}, {"b", LM_TYPE_TIMESTAMP, true}};
    lm_schema *s = make_schema(f, 2);
    lm_batch *b = NULL;
    lm_error err;
    ck_assert_int_eq(lm_batch_new(s, 4, &b), LM_OK);
    lm_value r0[2] = {{.v.i = 1000}, {.v.i = 4000}};
    lm_value r1[2] = {{.v.i = 0}, {.is_null = true}};
    lm_value r2[2] = {{.v.i = INT64_MAX - 10}, {.v.i = INT64_MAX}};
    ck_assert_int_eq(lm_batch_append_row(b, r0, &err), LM_OK);
    ck_assert_int_eq(lm_batch_append_row(b, r1, &err), LM_OK);
    ck_assert_int_eq(lm_batch_append_row(b, r2, &err), LM_OK);
    static const char *const want[] = {"1970-01-01 00:00:00.007000", "NULL", "NULL"};
    check_rows(
        "{'call':'+','args':[{'call':'*','args':[{'call':'-','args':[{'col':'b'},{'col':'a'}]},"
        "{'lit':2}]},{'col':'a'}]}",
        b, want, 1);
    static const char *const want_us[] = {"3000", "NULL", "10"};
    check_rows("{'cast':{'call':'-','args':[{'col':'b'},{'col':'a'}]},'to':'int64'}", b, want_us,
               0);
    lm_batch_free(b);
    lm_schema_release(s);
}
END_TEST

/* --- comparison ---------------------------------------------------------------------- */

/* Checks all six comparisons (and !=) over lo < hi, with NULLs. */
static void
check_order(const char *lo, const char *hi, const char *lo2, const char *nul)
{
    /* pairs: (lo,hi) (hi,lo) (lo,lo2 equal) (nul,lo) (lo,nul) (nul,nul) */
    static const char *const ops[] = {"=", "<>", "!=", "<", "<=", ">", ">="};
    static const char *const want[][6] = {
        {"false", "false", "true", "NULL", "NULL", "NULL"},
        {"true", "true", "false", "NULL", "NULL", "NULL"},
        {"true", "true", "false", "NULL", "NULL", "NULL"},
        {"true", "false", "false", "NULL", "NULL", "NULL"},
        {"true", "false", "true", "NULL", "NULL", "NULL"},
        {"false", "true", "false", "NULL", "NULL", "NULL"},
        {"false", "true", "true", "NULL", "NULL", "NULL"},
    };
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        tc cases[6] = {
            {{lo, hi}, want[o][0]},  {{hi, lo}, want[o][1]},  {{lo, lo2}, want[o][2]},
            {{nul, lo}, want[o][3]}, {{lo, nul}, want[o][4]}, {{nul, nul}, want[o][5]},
        };
        check_fn_x(ops[o], cases, 6, 0, __FILE__, __LINE__);
    }
}

START_TEST(test_expr_compare_every_type_and_promotion)
{
    check_order("i:-5", "i:3", "i:-5", "null:int64");
    check_order("f:-0.5", "f:2.25", "f:-0.5", "null:float64");
    check_order("ts:2024-01-01 00:00:00", "ts:2024-01-01 00:00:00.000001", "ts:1704067200000000",
                "null:timestamp");
    check_order("s:abc", "s:abd", "s:abc", "null:utf8");
    check_order("s:ab", "s:abc", "s:ab", "null:utf8");
    check_order("s:", "s:a", "s:", "null:utf8");
    check_order("s:Zebra", "s:apple", "s:Zebra", "null:utf8");
    check_order("s:z", "s:é", "s:z", "null:utf8");
    check_order("s:héllo", "s:hêllo", "s:héllo", "null:utf8");
    check_order("b:false", "b:true", "b:false", "null:bool");
    check_order("bin:ab", "bin:b", "bin:ab", "null:binary");
    check_order("f:1", "f:nan", "f:1", "null:float64");
    check_order("f:inf", "f:nan", "f:inf", "null:float64");
    check_order("f:-inf", "f:-1e308", "f:-inf", "null:float64");
    static const tc nan_eq[] = {
        {{"f:nan", "f:nan"}, "true"},
        {{"f:-0.0", "f:0"}, "true"},
    };
    check_fn("=", nan_eq);
    /* int64 with float64 compares as float64 */
    static const tc mixed_lt[] = {
        {{"i:1", "f:1.5"}, "true"},
        {{"i:2", "f:1.5"}, "false"},
        {{"i:-1", "f:-1"}, "false"},
        {{"null:int64", "f:1"}, "NULL"},
    };
    static const tc mixed_eq[] = {
        {{"f:3", "i:3"}, "true"},
        {{"f:3.5", "i:3"}, "false"},
        {{"f:3", "null:int64"}, "NULL"},
    };
    check_fn("<", mixed_lt);
    check_fn("=", mixed_eq);
}
END_TEST

/* --- logic ---------------------------------------------------------------------- */

START_TEST(test_expr_logic_three_valued_truth_tables)
{
    static const tc and_[] = {
        {{"b:true", "b:true"}, "true"},       {{"b:true", "b:false"}, "false"},
        {{"b:true", "null:bool"}, "NULL"},    {{"b:false", "b:true"}, "false"},
        {{"b:false", "b:false"}, "false"},    {{"b:false", "null:bool"}, "false"},
        {{"null:bool", "b:true"}, "NULL"},    {{"null:bool", "b:false"}, "false"},
        {{"null:bool", "null:bool"}, "NULL"},
    };
    static const tc or_[] = {
        {{"b:true", "b:true"}, "true"},       {{"b:true", "b:false"}, "true"},
        {{"b:true", "null:bool"}, "true"},    {{"b:false", "b:true"}, "true"},
        {{"b:false", "b:false"}, "false"},    {{"b:false", "null:bool"}, "NULL"},
        {{"null:bool", "b:true"}, "true"},    {{"null:bool", "b:false"}, "NULL"},
        {{"null:bool", "null:bool"}, "NULL"},
    };
    static const tc not_[] = {
        {{"b:true"}, "false"},
        {{"b:false"}, "true"},
        {{"null:bool"}, "NULL"},
    };
    static const tc and3[] = {
        {{"b:true", "b:true", "b:true"}, "true"},
        {{"b:true", "b:true", "null:bool"}, "NULL"},
        {{"b:true", "null:bool", "b:false"}, "false"},
        {{"null:bool", "null:bool", "null:bool"}, "NULL"},
        {{"b:false", "null:bool", "b:true"}, "false"},
    };
    static const tc or3[] = {
        {{"b:false", "b:false", "b:false"}, "false"},
        {{"b:false", "null:bool", "b:true"}, "true"},
        {{"b:false", "b:false", "null:bool"}, "NULL"},
        {{"null:bool", "b:true", "null:bool"}, "true"},
    };
    check_fn("and", and_);
    check_fn("AND", and_);
    check_fn("or", or_);
    check_fn("not", not_);
    check_fn("and", and3);
    check_fn("or", or3);
}
END_TEST

START_TEST(test_expr_is_null_and_is_not_null)
{
    static const tc isnull_i[] = {{{"i:5"}, "false"}, {{"null:int64"}, "true"}};
    static const tc isnull_s[] = {{{"s:"}, "false"}, {{"null:utf8"}, "true"}};
    static const tc notnull_f[] = {{{"f:nan"}, "true"}, {{"null:float64"}, "false"}};
    static const tc notnull_b[] = {{{"b:false"}, "true"}, {{"null:bool"}, "false"}};
    check_fn("is_null", isnull_i);
    check_fn("is_null", isnull_s);
    check_fn("is_not_null", notnull_f);
    check_fn("is_not_null", notnull_b);
}
END_TEST

START_TEST(test_expr_between_with_nulls)
{
    static const tc bt[] = {
        {{"i:5", "i:1", "i:10"}, "true"},          {{"i:0", "i:1", "i:10"}, "false"},
        {{"i:11", "i:1", "i:10"}, "false"},        {{"i:1", "i:1", "i:10"}, "true"},
        {{"i:10", "i:1", "i:10"}, "true"},         {{"i:5", "i:10", "i:1"}, "false"},
        {{"null:int64", "i:1", "i:10"}, "NULL"},   {{"i:5", "null:int64", "i:10"}, "NULL"},
        {{"i:11", "null:int64", "i:10"}, "false"}, {{"i:5", "i:1", "null:int64"}, "NULL"},
        {{"i:0", "i:1", "null:int64"}, "false"},   {{"i:5", "null:int64", "null:int64"}, "NULL"},
    };
    static const tc nbt[] = {
        {{"i:5", "i:1", "i:10"}, "false"},        {{"i:0", "i:1", "i:10"}, "true"},
        {{"null:int64", "i:1", "i:10"}, "NULL"},  {{"i:5", "null:int64", "i:10"}, "NULL"},
        {{"i:11", "null:int64", "i:10"}, "true"}, {{"i:0", "i:1", "null:int64"}, "true"},
    };
    static const tc bt_mixed[] = {
        {{"f:2.5", "i:1", "i:3"}, "true"},
        {{"f:3.5", "i:1", "i:3"}, "false"},
        {{"null:float64", "i:1", "i:3"}, "NULL"},
    };
    static const tc bt_s[] = {
        {{"s:b", "s:a", "s:c"}, "true"},
        {{"s:d", "s:a", "s:c"}, "false"},
        {{"s:c", "s:a", "s:c"}, "true"},
    };
    static const tc bt_ts[] = {
        {{"ts:2024-01-02 00:00:00", "ts:2024-01-01 00:00:00", "ts:2024-01-03 00:00:00"}, "true"},
        {{"ts:2024-01-04 00:00:00", "ts:2024-01-01 00:00:00", "ts:2024-01-03 00:00:00"}, "false"},
    };
    check_fn("between", bt);
    check_fn("not_between", nbt);
    check_fn("between", bt_mixed);
    check_fn("between", bt_s);
    check_fn("between", bt_ts);
}
END_TEST

START_TEST(test_expr_in_and_not_in_with_nulls)
{
    static const tc in_[] = {
        {{"i:2", "i:1", "i:2", "i:3"}, "true"},
        {{"i:5", "i:1", "i:2", "i:3"}, "false"},
        {{"i:5", "i:1", "null:int64", "i:3"}, "NULL"},
        {{"i:1", "i:1", "null:int64", "i:3"}, "true"},
        {{"null:int64", "i:1", "i:2", "i:3"}, "NULL"},
        {{"i:3", "i:3", "i:3", "i:3"}, "true"},
        {{"i:-9223372036854775808", "i:9223372036854775807", "i:-9223372036854775808", "i:0"},
         "true"},
    };
    static const tc notin[] = {
        {{"i:2", "i:1", "i:2", "i:3"}, "false"},
        {{"i:5", "i:1", "i:2", "i:3"}, "true"},
        {{"i:5", "i:1", "null:int64", "i:3"}, "NULL"},
        {{"i:1", "i:1", "null:int64", "i:3"}, "false"},
        {{"null:int64", "i:1", "i:2", "i:3"}, "NULL"},
    };
    static const tc in_s[] = {
        {{"s:b", "s:a", "s:b"}, "true"},
        {{"s:héllo", "s:a", "s:héllo"}, "true"},
        {{"s:ab", "s:a", "s:abc"}, "false"},
        {{"s:x", "null:utf8", "s:y"}, "NULL"},
    };
    static const tc in_f[] = {
        {{"f:nan", "f:1", "f:nan"}, "true"},
        {{"f:1", "f:-0.5", "f:1"}, "true"},
        {{"f:0", "f:-0.0", "f:2"}, "true"},
        {{"f:2", "f:1", "f:nan"}, "false"},
    };
    static const tc in_mixed[] = {
        {{"i:2", "f:1.5", "f:2"}, "true"},
        {{"i:2", "f:1.5", "f:2.5"}, "false"},
    };
    static const tc in_b[] = {
        {{"b:true", "b:false"}, "false"},
        {{"b:true", "b:true"}, "true"},
        {{"null:bool", "b:true"}, "NULL"},
    };
    static const tc in_ts[] = {
        {{"ts:2024-01-01 00:00:00", "ts:1704067200000000"}, "true"},
        {{"ts:2024-01-01 00:00:01", "ts:1704067200000000"}, "false"},
    };
    check_fn("in", in_);
    check_fn("not_in", notin);
    check_fn("in", in_s);
    check_fn("in", in_f);
    check_fn("in", in_mixed);
    check_fn("in", in_b);
    check_fn("in", in_ts);
}
END_TEST

/* --- strings ---------------------------------------------------------------------- */

START_TEST(test_expr_like_wildcards_escape_and_multibyte)
{
    static const tc like[] = {
        {{"s:hello", "s:hello"}, "true"},
        {{"s:hello", "s:hell"}, "false"},
        {{"s:hello", "s:h%"}, "true"},
        {{"s:hello", "s:%llo"}, "true"},
        {{"s:hello", "s:%ell%"}, "true"},
        {{"s:hello", "s:%xyz%"}, "false"},
        {{"s:hello", "s:h%o"}, "true"},
        {{"s:hello", "s:h%l%o"}, "true"},
        {{"s:ho", "s:h%l%o"}, "false"},
        {{"s:hello", "s:h_llo"}, "true"},
        {{"s:hello", "s:_____"}, "true"},
        {{"s:hello", "s:____"}, "false"},
        {{"s:hello", "s:%_"}, "true"},
        {{"s:Hello", "s:h%"}, "false"},
        {{"s:héllo", "s:h_llo"}, "true"},
        {{"s:héllo", "s:h__llo"}, "false"},
        {{"s:héllo", "s:h%é%o"}, "true"},
        {{"s:日本語", "s:%本%"}, "true"},
        {{"s:日本語", "s:_本_"}, "true"},
        {{"s:日本語", "s:__"}, "false"},
        {{"s:a🎉b", "s:a_b"}, "true"},
        {{"s:", "s:%"}, "true"},
        {{"s:", "s:"}, "true"},
        {{"s:", "s:_"}, "false"},
        {{"s:abc", "s:%%"}, "true"},
        {{"s:abc", "s:"}, "false"},
        {{"s:a.c", "s:a.c"}, "true"},
        {{"s:abc", "s:a.c"}, "false"},
        {{"s:a\\c", "s:a\\c"}, "true"}, /* no escape character by default */
        {{"s:aaab", "s:%ab"}, "true"},
        {{"s:abcabd", "s:%abd"}, "true"},
        {{"s:abcabd", "s:%ab_"}, "true"},
        {{"s:mississippi", "s:m%ss%ss%"}, "true"},
        {{"s:mississippi", "s:m%ss%ss%ss%"}, "false"},
        {{"s:mississippi", "s:%issip%"}, "true"},
        {{"s:aXbXc", "s:a%b%c"}, "true"},
        {{"s:ab", "s:a%b%c"}, "false"},
        {{"s:abab", "s:ab%ab"}, "true"},
        {{"s:aba", "s:ab%ab"}, "false"},
        {{"null:utf8", "s:a%"}, "NULL"},
        {{"s:a", "null:utf8"}, "NULL"},
        {{"null:utf8", "null:utf8"}, "NULL"},
    };
    static const tc notlike[] = {
        {{"s:hello", "s:h%"}, "false"},    {{"s:hello", "s:x%"}, "true"},
        {{"s:héllo", "s:h_llo"}, "false"}, {{"null:utf8", "s:%"}, "NULL"},
        {{"s:a", "null:utf8"}, "NULL"},
    };
    static const tc esc[] = {
        {{"s:a%c", "s:a!%c", "s:!"}, "true"},    {{"s:abc", "s:a!%c", "s:!"}, "false"},
        {{"s:a_c", "s:a!_c", "s:!"}, "true"},    {{"s:abc", "s:a!_c", "s:!"}, "false"},
        {{"s:a!c", "s:a!!c", "s:!"}, "true"},    {{"s:100%", "s:%!%", "s:!"}, "true"},
        {{"s:100", "s:%!%", "s:!"}, "false"},    {{"s:x_y%z", "s:%!_%!%%", "s:!"}, "true"},
        {{"s:a!c", "s:a!c", "s:"}, "true"},      {{"s:a%b", "s:aé%b", "s:é"}, "true"},
        {{"s:axb", "s:aé%b", "s:é"}, "false"},   {{"s:a%b", "s:a\\%b", "s:\\"}, "true"},
        {{"null:utf8", "s:a!%", "s:!"}, "NULL"}, {{"s:a", "null:utf8", "s:!"}, "NULL"},
        {{"s:a", "s:a", "null:utf8"}, "NULL"},
    };
    check_fn("like", like);
    check_fn("not_like", notlike);
    check_fn_lit("like", esc, 4);

    /* a pattern ending in the escape character: compile error when
     * constant, NULL and an error per row when not */
    lm_schema *s = std_schema();
    compile_fails(J("{'call':'like','args':[{'col':'s'},{'lit':'ab!'},{'lit':'!'}]}"), s,
                  "'like' pattern ends with the escape character");
    compile_fails(J("{'call':'like','args':[{'col':'s'},{'lit':'a'},{'lit':'!!'}]}"), s,
                  "'like' escape must be one character, got '!!'");
    compile_fails(J("{'call':'like','args':[{'col':'s'},{'lit':'a'},{'col':'s'}]}"), s,
                  "'like' escape must be a constant utf8 string");
    compile_fails(J("{'call':'like','args':[{'col':'s'},{'col':'i'}]}"), s,
                  "'like' needs utf8 strings, got utf8 and int64");
    lm_schema_release(s);
    static const srow rows[] = {
        {.s = "ab!", .bin = "x"},
        {.s = "ab!!", .bin = "x"},
        {.s = "N", .bin = "x"},
        {.s = "a_", .bin = "x"},
    };
    lm_batch *b = std_batch(rows, 4);
    static const char *const want[] = {"NULL", "true", "NULL", "false"};
    check_rows("{'call':'like','args':[{'lit':'ab!'},{'col':'s'},{'lit':'!'}]}", b, want, 1);
    lm_batch_free(b);
}
END_TEST

START_TEST(test_expr_lower_upper_ascii_only)
{
    static const tc lower[] = {
        {{"s:Hello World 123"}, "hello world 123"},
        {{"s:ÀÉ STRAßE"}, "ÀÉ straße"},
        {{"s:@[`{"}, "@[`{"},
        {{"s:"}, ""},
        {{"null:utf8"}, "NULL"},
    };
    static const tc upper[] = {
        {{"s:straße éa"}, "STRAßE éA"},
        {{"s:aZz09"}, "AZZ09"},
        {{"null:utf8"}, "NULL"},
    };
    check_fn("lower", lower);
    check_fn("upper", upper);
}
END_TEST

START_TEST(test_expr_substr_and_length_multibyte)
{
    static const tc sub3[] = {
        {{"s:héllo wörld", "i:1", "i:5"}, "héllo"},
        {{"s:héllo wörld", "i:2", "i:3"}, "éll"},
        {{"s:héllo wörld", "i:0", "i:3"}, "hé"},
        {{"s:héllo wörld", "i:-2", "i:5"}, "hé"},
        {{"s:héllo wörld", "i:-2", "i:3"}, ""},
        {{"s:héllo wörld", "i:11", "i:5"}, "d"},
        {{"s:héllo wörld", "i:12", "i:1"}, ""},
        {{"s:héllo wörld", "i:100", "i:2"}, ""},
        {{"s:héllo wörld", "i:3", "i:0"}, ""},
        {{"s:héllo wörld", "i:8", "i:2"}, "ör"},
        {{"s:héllo wörld", "i:3", "i:-1"}, "NULL!"},
        {{"s:héllo wörld", "i:1", "i:9223372036854775807"}, "héllo wörld"},
        {{"s:héllo wörld", "i:-9223372036854775808", "i:9223372036854775807"}, ""},
        {{"s:日本語", "i:2", "i:1"}, "本"},
        {{"s:a🎉b", "i:2", "i:1"}, "🎉"},
        {{"s:", "i:1", "i:1"}, ""},
        {{"null:utf8", "i:1", "i:2"}, "NULL"},
        {{"s:abc", "null:int64", "i:2"}, "NULL"},
        {{"s:abc", "i:1", "null:int64"}, "NULL"},
    };
    static const tc sub2[] = {
        {{"s:héllo wörld", "i:7"}, "wörld"},
        {{"s:héllo wörld", "i:0"}, "héllo wörld"},
        {{"s:héllo wörld", "i:-1"}, "héllo wörld"},
        {{"s:héllo wörld", "i:11"}, "d"},
        {{"s:héllo wörld", "i:12"}, ""},
        {{"null:utf8", "i:1"}, "NULL"},
        {{"s:abc", "null:int64"}, "NULL"},
    };
    static const tc subbin[] = {
        {{"bin:abcdef", "i:2", "i:3"}, "x'626364'"},
        {{"bin:héllo", "i:2", "i:2"}, "x'c3a9'"},
        {{"bin:abc", "i:0", "i:2"}, "x'61'"},
    };
    static const tc len[] = {
        {{"s:héllo wörld"}, "11"}, {{"s:"}, "0"},           {{"s:日本語"}, "3"},
        {{"s:a🎉b"}, "3"},          {{"null:utf8"}, "NULL"},
    };
    static const tc lenbin[] = {{{"bin:héllo"}, "6"}, {{"null:binary"}, "NULL"}};
    check_fn("substr", sub3);
    check_fn("SUBSTRING", sub3);
    check_fn("substr", sub2);
    check_fn("substr", subbin);
    check_fn("length", len);
    check_fn("char_length", len);
    check_fn("length", lenbin);
}
END_TEST

START_TEST(test_expr_concat_with_nulls)
{
    static const tc c2[] = {
        {{"s:a", "s:b"}, "ab"},
        {{"s:hé", "s:llo"}, "héllo"},
        {{"s:", "s:"}, ""},
        {{"s:a", "null:utf8"}, "NULL"},
        {{"null:utf8", "s:b"}, "NULL"},
        {{"null:utf8", "null:utf8"}, "NULL"},
    };
    static const tc c3[] = {
        {{"s:a", "s:b", "s:c"}, "abc"},
        {{"s:a", "null:utf8", "s:c"}, "NULL"},
        {{"s:", "s:x", "s:"}, "x"},
    };
    static const tc c1[] = {{{"s:x"}, "x"}, {{"null:utf8"}, "NULL"}};
    static const tc cb[] = {{{"bin:ab", "bin:c"}, "x'616263'"}, {{"bin:a", "null:binary"}, "NULL"}};
    check_fn("concat", c2);
    check_fn("||", c2);
    check_fn("concat", c3);
    check_fn("concat", c1);
    check_fn("concat", cb);
    /* many arguments (past the stack array) */
    lm_schema *s = std_schema();
    static const srow rows[] = {{.s = "x", .bin = "b"}, {.s = "N", .bin = "b"}};
    lm_batch *b = std_batch(rows, 2);
    static const char *const want[] = {"x1x2x3x4x5", "NULL"};
    check_rows(
        "{'call':'concat','args':[{'col':'s'},{'lit':'1'},{'col':'s'},{'lit':'2'},{'col':'s'},"
        "{'lit':'3'},{'col':'s'},{'lit':'4'},{'col':'s'},{'lit':'5'}]}",
        b, want, 0);
    compile_fails(J("{'call':'concat','args':[{'col':'s'},{'col':'bin'}]}"), s,
                  "'concat' needs strings of one type, got utf8 and binary");
    lm_batch_free(b);
    lm_schema_release(s);
}
END_TEST

START_TEST(test_expr_trims)
{
    static const tc trim[] = {
        {{"s:  a b  "}, "a b"}, {{"s:\ta \t"}, "\ta \t"}, {{"s:   "}, ""},
        {{"s:"}, ""},           {{"s: é "}, "é"},         {{"null:utf8"}, "NULL"},
    };
    static const tc ltrim[] = {{{"s:  a b  "}, "a b  "}, {{"null:utf8"}, "NULL"}};
    static const tc rtrim[] = {{{"s:  a b  "}, "  a b"}, {{"s:   "}, ""}, {{"null:utf8"}, "NULL"}};
    check_fn("trim", trim);
    check_fn("ltrim", ltrim);
    check_fn("rtrim", rtrim);
}
END_TEST

START_TEST(test_expr_coalesce)
{
    static const tc c2[] = {
        {{"null:int64", "i:1"}, "1"},
        {{"i:2", "i:1"}, "2"},
        {{"i:2", "null:int64"}, "2"},
        {{"null:int64", "null:int64"}, "NULL"},
    };
    static const tc c3[] = {
        {{"null:utf8", "null:utf8", "s:c"}, "c"},
        {{"null:utf8", "s:b", "s:c"}, "b"},
        {{"s:a", "s:b", "s:c"}, "a"},
        {{"null:utf8", "null:utf8", "null:utf8"}, "NULL"},
    };
    static const tc cmix[] = {
        {{"null:int64", "f:1.5"}, "1.5"},
        {{"i:2", "f:1.5"}, "2"},
    };
    static const tc c1[] = {{{"b:true"}, "true"}, {{"null:bool"}, "NULL"}};
    static const tc cts[] = {
        {{"null:timestamp", "ts:2024-01-01 00:00:00"}, "2024-01-01 00:00:00.000000"},
    };
    check_fn("coalesce", c2);
    check_fn("coalesce", c3);
    check_fn("coalesce", cmix);
    check_fn("coalesce", c1);
    check_fn("coalesce", cts);
}
END_TEST

/* --- cast ---------------------------------------------------------------------- */

START_TEST(test_expr_cast_matrix_with_failures)
{
    static const tc i2f[] = {
        {{"i:3"}, "3"}, {{"i:-9007199254740993"}, "-9007199254740992"}, {{"null:int64"}, "NULL"}};
    static const tc f2i[] = {
        {{"f:3.9"}, "3"},
        {{"f:-3.9"}, "-3"},
        {{"f:-0.0"}, "0"},
        {{"f:nan"}, "NULL!"},
        {{"f:inf"}, "NULL!"},
        {{"f:-inf"}, "NULL!"},
        {{"f:9.3e18"}, "NULL!"},
        {{"f:9223372036854775808"}, "NULL!"},
        {{"f:-9223372036854775808"}, "-9223372036854775808"},
        {{"f:9223372036854774784"}, "9223372036854774784"},
        {{"null:float64"}, "NULL"},
    };
    static const tc b2i[] = {{{"b:true"}, "1"}, {{"b:false"}, "0"}, {{"null:bool"}, "NULL"}};
    static const tc i2b[] = {
        {{"i:0"}, "false"}, {{"i:5"}, "true"}, {{"i:-1"}, "true"}, {{"null:int64"}, "NULL"}};
    static const tc i2ts[] = {{{"i:0"}, "1970-01-01 00:00:00.000000"},
                              {{"i:-1"}, "1969-12-31 23:59:59.999999"},
                              {{"null:int64"}, "NULL"}};
    static const tc ts2i[] = {{{"ts:2024-01-01 00:00:00"}, "1704067200000000"},
                              {{"null:timestamp"}, "NULL"}};
    static const tc i2s[] = {{{"i:-42"}, "-42"},
                             {{"i:0"}, "0"},
                             {{"i:-9223372036854775808"}, "-9223372036854775808"},
                             {{"i:9223372036854775807"}, "9223372036854775807"},
                             {{"null:int64"}, "NULL"}};
    static const tc f2s[] = {
        {{"f:1.5"}, "1.5"},
        {{"f:1"}, "1.0"},
        {{"f:0.1"}, "0.1"},
        {{"f:-0.0"}, "-0.0"},
        {{"f:1e20"}, "1e+20"},
        {{"f:1e-7"}, "1e-07"},
        {{"f:nan"}, "nan"},
        {{"f:inf"}, "inf"},
        {{"f:-inf"}, "-inf"},
        {{"f:0.3333333333333333"}, "0.3333333333333333"},
        {{"f:123456.789"}, "123456.789"},
        {{"f:0.30000000000000004"}, "0.30000000000000004"},
        {{"null:float64"}, "NULL"},
    };
    static const tc b2s[] = {{{"b:true"}, "true"}, {{"b:false"}, "false"}, {{"null:bool"}, "NULL"}};
    static const tc ts2s[] = {
        {{"ts:2024-02-29 13:45:06.123456"}, "2024-02-29 13:45:06.123456"},
        {{"ts:-1"}, "1969-12-31 23:59:59.999999"},
        {{"ts:0"}, "1970-01-01 00:00:00.000000"},
        {{"ts:0001-01-01 00:00:00"}, "0001-01-01 00:00:00.000000"},
        {{"ts:9999-12-31 23:59:59.999999"}, "9999-12-31 23:59:59.999999"},
        {{"null:timestamp"}, "NULL"},
    };
    static const tc s2i[] = {
        {{"s:42"}, "42"},
        {{"s: -7 "}, "-7"},
        {{"s:+5"}, "5"},
        {{"s:9223372036854775807"}, "9223372036854775807"},
        {{"s:-9223372036854775808"}, "-9223372036854775808"},
        {{"s:9223372036854775808"}, "NULL!"},
        {{"s:abc"}, "NULL!"},
        {{"s:"}, "NULL!"},
        {{"s:-"}, "NULL!"},
        {{"s:1.5"}, "NULL!"},
        {{"s:12a"}, "NULL!"},
        {{"null:utf8"}, "NULL"},
    };
    static const tc s2f[] = {
        {{"s:1.5"}, "1.5"},    {{"s: 2e3 "}, "2000"},   {{"s:-0.25"}, "-0.25"}, {{"s:inf"}, "inf"},
        {{"s:nan"}, "nan"},    {{"s:abc"}, "NULL!"},    {{"s:0x10"}, "NULL!"},  {{"s:"}, "NULL!"},
        {{"s:1.5x"}, "NULL!"}, {{"null:utf8"}, "NULL"},
    };
    static const tc s2b[] = {
        {{"s:true"}, "true"},   {{"s:TRUE"}, "true"},    {{"s:t"}, "true"},
        {{"s:yes"}, "true"},    {{"s:1"}, "true"},       {{"s: on "}, "true"},
        {{"s:false"}, "false"}, {{"s:F"}, "false"},      {{"s:no"}, "false"},
        {{"s:0"}, "false"},     {{"s:off"}, "false"},    {{"s:maybe"}, "NULL!"},
        {{"s:"}, "NULL!"},      {{"null:utf8"}, "NULL"},
    };
    static const tc s2ts[] = {
        {{"s:2024-01-01 00:00:00"}, "2024-01-01 00:00:00.000000"},
        {{"s:2024-01-01"}, "2024-01-01 00:00:00.000000"},
        {{"s:2024-01-01T12:30:00Z"}, "2024-01-01 12:30:00.000000"},
        {{"s:2024-01-01 12:30"}, "2024-01-01 12:30:00.000000"},
        {{"s:2024-01-01 12:30:00.5"}, "2024-01-01 12:30:00.500000"},
        {{"s:2024-01-01 12:30:00.1234567"}, "2024-01-01 12:30:00.123456"},
        {{"s:2024-01-01 12:30:00+02:00"}, "2024-01-01 10:30:00.000000"},
        {{"s:2024-01-01 00:30:00-01"}, "2024-01-01 01:30:00.000000"},
        {{"s: 2024-02-29 23:59:59.999999 "}, "2024-02-29 23:59:59.999999"},
        {{"s:1969-07-20 20:17:40"}, "1969-07-20 20:17:40.000000"},
        {{"s:2024-02-30 00:00:00"}, "NULL!"},
        {{"s:2023-02-29"}, "NULL!"},
        {{"s:2024-13-01"}, "NULL!"},
        {{"s:2024-01-01 24:00:00"}, "NULL!"},
        {{"s:2024-01-01 12:60:00"}, "NULL!"},
        {{"s:2024-1-1"}, "NULL!"},
        {{"s:2024-01-01 12:00:00.x"}, "NULL!"},
        {{"s:nope"}, "NULL!"},
        {{"s:"}, "NULL!"},
        {{"null:utf8"}, "NULL"},
    };
    static const tc s2bin[] = {
        {{"s:héllo"}, "x'68c3a96c6c6f'"}, {{"s:"}, "x''"}, {{"null:utf8"}, "NULL"}};
    static const tc bin2s[] = {{{"bin:abc"}, "abc"}, {{"bin:é"}, "é"}, {{"null:binary"}, "NULL"}};
    static const tc same[] = {{{"i:7"}, "7"}, {{"null:int64"}, "NULL"}};
    check_fn("cast:float64", i2f);
    check_fn("cast:int64", f2i);
    check_fn("cast:int64", b2i);
    check_fn("cast:bool", i2b);
    check_fn("cast:timestamp", i2ts);
    check_fn("cast:int64", ts2i);
    check_fn("cast:utf8", i2s);
    check_fn("cast:utf8", f2s);
    check_fn("cast:utf8", b2s);
    check_fn("cast:utf8", ts2s);
    check_fn("cast:int64", s2i);
    check_fn("cast:float64", s2f);
    check_fn("cast:bool", s2b);
    check_fn("cast:timestamp", s2ts);
    check_fn("cast:binary", s2bin);
    check_fn("cast:utf8", bin2s);
    check_fn("cast:int64", same);

    /* binary that is not UTF-8 becomes NULL, counted */
    lm_field f = {"raw", LM_TYPE_BINARY, true};
    lm_schema *s = make_schema(&f, 1);
    lm_batch *b = NULL;
    lm_error err;
    ck_assert_int_eq(lm_batch_new(s, 4, &b), LM_OK);
    static const uint8_t bad1[] = {0xff, 0x41}, bad2[] = {0xc3}, good[] = {0xc3, 0xa9};
    lm_value r[4] = {{.v.s = {bad1, 2}}, {.v.s = {bad2, 1}}, {.v.s = {good, 2}}, {.is_null = true}};
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(lm_batch_append_row(b, &r[k], &err), LM_OK);
    }
    static const char *const want[] = {"NULL", "NULL", "é", "NULL"};
    check_rows("{'cast':{'col':'raw'},'to':'utf8'}", b, want, 2);
    static const char *const wantlen[] = {"NULL", "NULL", "1", "NULL"};
    check_rows("{'call':'length','args':[{'cast':{'col':'raw'},'to':'utf8'}]}", b, wantlen, 2);
    lm_batch_free(b);
    lm_schema_release(s);

    /* casts that do not exist */
    s = std_schema();
    compile_fails(J("{'cast':{'col':'bin'},'to':'timestamp'}"), s,
                  "cast: cannot cast binary to timestamp");
    compile_fails(J("{'cast':{'col':'f'},'to':'timestamp'}"), s,
                  "cast: cannot cast float64 to timestamp");
    compile_fails(J("{'cast':{'col':'b'},'to':'float64'}"), s, "cast: cannot cast bool to float64");
    compile_fails(J("{'cast':{'lit':1,'type':'interval'},'to':'utf8'}"), s,
                  "cast: cannot cast interval to utf8");
    compile_fails(J("{'cast':{'col':'i'},'to':'decimal'}"), s, "cast: unknown type 'decimal'");
    compile_fails(J("{'cast':{'col':'i'}}"), s, "cast: 'to' must be a type name");
    /* a cast to the same type is the operand itself */
    lm_expr *e = compile_ok(J("{'cast':{'col':'i'},'to':'int64'}"), s);
    ck_assert_int_eq(lm_expr_column(e), C_I);
    lm_expr_free(e);
    lm_schema_release(s);
}
END_TEST

/* --- literals ---------------------------------------------------------------------- */

START_TEST(test_expr_literals_of_every_type)
{
    static const struct {
        const char *json;
        int type;
        bool nullable;
        const char *text;
    } cases[] = {
        {"{'lit':42}", LM_TYPE_INT64, false, "42"},
        {"{'lit':-9223372036854775808}", LM_TYPE_INT64, false, "-9223372036854775808"},
        {"{'lit':0.908}", LM_TYPE_FLOAT64, false, "0.908"},
        {"{'lit':'OR'}", LM_TYPE_UTF8, false, "OR"},
        {"{'lit':'héllo'}", LM_TYPE_UTF8, false, "héllo"},
        {"{'lit':''}", LM_TYPE_UTF8, false, ""},
        {"{'lit':true}", LM_TYPE_BOOL, false, "true"},
        {"{'lit':false}", LM_TYPE_BOOL, false, "false"},
        {"{'lit':null,'type':'int64'}", LM_TYPE_INT64, true, "NULL"},
        {"{'lit':null,'type':'utf8'}", LM_TYPE_UTF8, true, "NULL"},
        {"{'lit':null,'type':'bool'}", LM_TYPE_BOOL, true, "NULL"},
        {"{'lit':null,'type':'float64'}", LM_TYPE_FLOAT64, true, "NULL"},
        {"{'lit':null,'type':'timestamp'}", LM_TYPE_TIMESTAMP, true, "NULL"},
        {"{'lit':null,'type':'binary'}", LM_TYPE_BINARY, true, "NULL"},
        {"{'lit':null,'type':'interval'}", LM_TYPE_INTERVAL, true, "NULL"},
        {"{'lit':true,'type':'bool'}", LM_TYPE_BOOL, false, "true"},
        {"{'lit':5,'type':'int64'}", LM_TYPE_INT64, false, "5"},
        {"{'lit':5,'type':'float64'}", LM_TYPE_FLOAT64, false, "5"},
        {"{'lit':2.5,'type':'float64'}", LM_TYPE_FLOAT64, false, "2.5"},
        {"{'lit':'2024-01-01 00:00:00','type':'timestamp'}", LM_TYPE_TIMESTAMP, false,
         "2024-01-01 00:00:00.000000"},
        {"{'lit':'2024-06-30 12:34:56.789012','type':'timestamp'}", LM_TYPE_TIMESTAMP, false,
         "2024-06-30 12:34:56.789012"},
        {"{'lit':1704067200000001,'type':'timestamp'}", LM_TYPE_TIMESTAMP, false,
         "2024-01-01 00:00:00.000001"},
        {"{'lit':'OR','type':'utf8'}", LM_TYPE_UTF8, false, "OR"},
        {"{'lit':'ab','type':'binary'}", LM_TYPE_BINARY, false, "x'6162'"},
        {"{'lit':3600000000,'type':'interval'}", LM_TYPE_INTERVAL, false, "3600000000"},
    };
    lm_schema *s = std_schema();
    static const srow rows[] = {{.s = "x", .bin = "b"}, {.s = "y", .bin = "b"}};
    lm_batch *b = std_batch(rows, 2);

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        lm_expr *e = compile_ok(J(cases[k].json), s);
        uint64_t errors;
        ck_assert_msg(lm_expr_type(e) == cases[k].type, "%s: type %d", cases[k].json,
                      lm_expr_type(e));
        ck_assert_msg(lm_expr_nullable(e) == cases[k].nullable, "%s: nullable", cases[k].json);
        ck_assert_int_eq(lm_expr_column(e), -1);
        char **got = eval_texts(e, b, &errors);
        for (int r = 0; r < 2; r++) {
            ck_assert_msg(strcmp(got[r], cases[k].text) == 0, "%s: got '%s', want '%s'",
                          cases[k].json, got[r], cases[k].text);
        }
        free_texts(got, 2);
        lm_expr_free(e);
    }
    compile_fails(J("{'lit':null}"), s, "literal: null needs a type");
    compile_fails(J("{'lit':'x','type':'int64'}"), s,
                  "literal: a string is not a valid int64 value");
    compile_fails(J("{'lit':1.5,'type':'int64'}"), s,
                  "literal: a real number is not a valid int64 value");
    compile_fails(J("{'lit':1,'type':'bool'}"), s, "literal: an integer is not a valid bool value");
    compile_fails(J("{'lit':'1h','type':'interval'}"), s,
                  "literal: a string is not a valid interval value");
    compile_fails(J("{'lit':'2024-13-01','type':'timestamp'}"), s,
                  "literal: invalid timestamp '2024-13-01'");
    compile_fails(J("{'lit':1,'type':'decimal'}"), s, "literal: unknown type 'decimal'");
    compile_fails(J("{'lit':[1]}"), s, "literal: unsupported value (an array)");
    compile_fails(J("{'lit':1,'type':5}"), s, "literal: 'type' must be a string, got an integer");
    lm_batch_free(b);
    lm_schema_release(s);
}
END_TEST

/* --- case ---------------------------------------------------------------------- */

START_TEST(test_expr_case_with_and_without_else)
{
    static const srow rows[] = {
        {.i = "5", .j = "1", .s = "five", .f = "0.5", .bin = "x"},
        {.i = "-3", .j = "0", .s = "N", .f = "1.5", .bin = "x"},
        {.i = "0", .j = "2", .s = "zero", .f = "N", .bin = "x"},
        {.i = "N", .j = "N", .s = "null", .f = "2.5", .bin = "x"},
    };
    lm_batch *b = std_batch(rows, 4);
    static const char *const w1[] = {"pos", "neg", "zero", "zero"};
    check_rows("{'case':[{'when':{'call':'>','args':[{'col':'i'},{'lit':0}]},'then':{'lit':'pos'}},"
               "{'when':{'call':'<','args':[{'col':'i'},{'lit':0}]},'then':{'lit':'neg'}}],"
               "'else':{'lit':'zero'}}",
               b, w1, 0);
    static const char *const w2[] = {"pos", "neg", "NULL", "NULL"};
    check_rows("{'case':[{'when':{'call':'>','args':[{'col':'i'},{'lit':0}]},'then':{'lit':'pos'}},"
               "{'when':{'call':'<','args':[{'col':'i'},{'lit':0}]},'then':{'lit':'neg'}}]}",
               b, w2, 0);
    /* then values from columns (with nulls), else from another column */
    static const char *const w3[] = {"five", "NULL", "zero", "x"};
    check_rows(
        "{'case':[{'when':{'call':'>=','args':[{'col':'i'},{'lit':-3}]},'then':{'col':'s'}}],"
        "'else':{'cast':{'col':'bin'},'to':'utf8'}}",
        b, w3, 0);
    /* int then, float else: float64 */
    static const char *const w4[] = {"5", "1.5", "NULL", "2.5"};
    check_rows("{'case':[{'when':{'call':'>','args':[{'col':'i'},{'lit':0}]},'then':{'col':'i'}}],"
               "'else':{'col':'f'}}",
               b, w4, 0);
    /* a first matching branch wins; a NULL when is not taken */
    static const char *const w5[] = {"1", "3", "2", "3"};
    check_rows("{'case':[{'when':{'call':'>','args':[{'col':'i'},{'lit':1}]},'then':{'lit':1}},"
               "{'when':{'call':'>','args':[{'col':'i'},{'lit':-1}]},'then':{'lit':2}}],"
               "'else':{'lit':3}}",
               b, w5, 0);
    /* bool and int results */
    static const char *const w6[] = {"true", "false", "true", "NULL"};
    check_rows(
        "{'case':[{'when':{'call':'is_not_null','args':[{'col':'s'}]},'then':{'call':'>','args':"
        "[{'col':'j'},{'lit':0}]}},{'when':{'lit':true},'then':{'lit':false}}]}",
        b, w6, 0);
    /* the division by zero in the else is not on a taken row: no error */
    static const char *const w7[] = {"5", "0", "0", "NULL"};
    check_rows("{'case':[{'when':{'call':'=','args':[{'col':'j'},{'lit':0}]},'then':{'lit':0}}],"
               "'else':{'call':'/','args':[{'col':'i'},{'col':'j'}]}}",
               b, w7, 0);
    lm_schema *s = std_schema();
    compile_fails(J("{'case':[{'when':{'col':'i'},'then':{'lit':1}}]}"), s,
                  "case: 'when' must be boolean, got int64");
    compile_fails(J("{'case':[{'when':{'lit':true},'then':{'lit':1}}],'else':{'lit':'x'}}"), s,
                  "case: 'then' and 'else' types differ: int64 and utf8");
    compile_fails(J("{'case':[]}"), s,
                  "case: 'case' must be a non-empty array of {\"when\", \"then\"}");
    compile_fails(J("{'case':[{'when':{'lit':true}}]}"), s,
                  "case[0]: a branch must be an object with 'when' and 'then'");
    compile_fails(J("{'case':[{'when':{'lit':true},'then':{'lit':1},'x':1}]}"), s,
                  "case[0]: unexpected key 'x' in a 'when' expression");
    lm_schema_release(s);
    lm_batch_free(b);
}
END_TEST

START_TEST(test_expr_errors_counted_only_on_rows_that_matter)
{
    static const srow rows[] = {
        {.i = "10", .j = "0", .s = "a", .bin = "x"},
        {.i = "10", .j = "5", .s = "a", .bin = "x"},
        {.i = "N", .j = "0", .s = "a", .bin = "x"},
        {.i = "7", .j = "0", .s = "a", .bin = "x"},
    };
    lm_batch *b = std_batch(rows, 4);
    /* plain: the two zero divisors with a non-null dividend count */
    static const char *const w0[] = {"NULL", "2", "NULL", "NULL"};
    check_rows("{'call':'/','args':[{'col':'i'},{'col':'j'}]}", b, w0, 2);
    /* and: the second argument is only evaluated-for-errors where the first is not FALSE */
    static const char *const w1[] = {"false", "true", "false", "false"};
    check_rows("{'call':'and','args':[{'call':'<>','args':[{'col':'j'},{'lit':0}]},"
               "{'call':'>','args':[{'call':'/','args':[{'col':'i'},{'col':'j'}]},{'lit':1}]}]}",
               b, w1, 0);
    /* or: only where the first is not TRUE */
    static const char *const w2[] = {"true", "true", "true", "true"};
    check_rows("{'call':'or','args':[{'call':'=','args':[{'col':'j'},{'lit':0}]},"
               "{'call':'>','args':[{'call':'/','args':[{'col':'i'},{'col':'j'}]},{'lit':1}]}]}",
               b, w2, 0);
    /* and with a first argument TRUE everywhere: the second matters everywhere */
    static const char *const w3[] = {"NULL", "true", "NULL", "NULL"};
    check_rows("{'call':'and','args':[{'call':'is_not_null','args':[{'col':'s'}]},"
               "{'call':'>','args':[{'call':'/','args':[{'col':'i'},{'col':'j'}]},{'lit':1}]}]}",
               b, w3, 2);
    /* coalesce: later arguments only where earlier ones are NULL */
    static const char *const w4[] = {"10", "10", "NULL", "7"};
    check_rows(
        "{'call':'coalesce','args':[{'col':'i'},{'call':'/','args':[{'lit':1},{'col':'j'}]}]}", b,
        w4, 1);
    /* cast failures in an untaken branch do not count */
    static const char *const w5[] = {"0", "NULL", "0", "0"};
    check_rows("{'case':[{'when':{'call':'=','args':[{'col':'j'},{'lit':0}]},'then':{'lit':0}}],"
               "'else':{'call':'+','args':[{'cast':{'col':'s'},'to':'int64'},{'lit':1}]}}",
               b, w5, 1);
    lm_batch_free(b);
}
END_TEST

/* --- folding ---------------------------------------------------------------------- */

/* A copy of j where every literal L becomes CASE WHEN nn IS NOT NULL THEN
 * L END: the same value on every row, but a vector that cannot fold, so
 * the tree runs through the vector kernels. */
static json_t *
unfold(const json_t *j)
{
    const char *key;
    json_t *v, *out;

    if (json_is_array(j)) {
        out = json_array();
        for (size_t i = 0; i < json_array_size(j); i++) {
            json_array_append_new(out, unfold(json_array_get(j, i)));
        }
        return out;
    }
    if (!json_is_object(j)) {
        return json_deep_copy(j);
    }
    if (json_object_get(j, "lit") != NULL) {
        return json_pack("{s:[{s:{s:s,s:[{s:s}]},s:O}]}", "case", "when", "call", "is_not_null",
                         "args", "col", "nn", "then", j);
    }
    out = json_object();
    json_object_foreach((json_t *)j, key, v)
    {
        json_object_set_new(out, key, unfold(v));
    }
    return out;
}

START_TEST(test_expr_constant_folding_gives_the_same_results)
{
    static const char *const exprs[] = {
        "{'call':'+','args':[{'lit':1},{'lit':2}]}",
        "{'call':'*','args':[{'lit':0.5},{'call':'+','args':[{'lit':1},{'lit':2}]}]}",
        "{'call':'upper','args':[{'call':'concat','args':[{'lit':'a'},{'lit':'bé'}]}]}",
        "{'call':'substr','args':[{'lit':'héllo'},{'lit':2},{'lit':3}]}",
        "{'call':'like','args':[{'lit':'héllo'},{'lit':'h_l%'}]}",
        "{'case':[{'when':{'call':'>','args':[{'lit':1},{'lit':2}]},'then':{'lit':'a'}}],"
        "'else':{'lit':'b'}}",
        "{'cast':{'lit':'2024-01-01 00:00:00'},'to':'timestamp'}",
        "{'call':'coalesce','args':[{'lit':null,'type':'int64'},{'lit':3}]}",
        "{'call':'in','args':[{'lit':3},{'lit':1},{'lit':null,'type':'int64'}]}",
        "{'call':'and','args':[{'lit':true},{'lit':null,'type':'bool'}]}",
        "{'call':'-','args':[{'lit':'2024-01-02 00:00:00','type':'timestamp'},"
        "{'lit':'2024-01-01 00:00:00','type':'timestamp'}]}",
    };
    lm_schema *s = std_schema();
    static const srow rows[] = {
        {.s = "x", .bin = "b"}, {.s = "y", .bin = "b"}, {.s = "z", .bin = "b"}};
    lm_batch *b = std_batch(rows, 3);
    for (size_t k = 0; k < sizeof(exprs) / sizeof(exprs[0]); k++) {
        lm_expr *e = compile_ok(J(exprs[k]), s);
        ck_assert_msg(e->kind == K_LIT, "%s was not folded", exprs[k]);
        uint64_t e1, e2;
        char **folded = eval_texts(e, b, &e1);
        /* unfolded: the same tree with every literal a vector */
        json_t *orig = J(exprs[k]);
        lm_expr *u = compile_ok(unfold(orig), s);
        json_decref(orig);
        ck_assert_int_ne(u->kind, K_LIT);
        char **plain = eval_texts(u, b, &e2);
        for (int r = 0; r < 3; r++) {
            ck_assert_msg(strcmp(folded[r], plain[r]) == 0, "%s: folded '%s', plain '%s'", exprs[k],
                          folded[r], plain[r]);
        }
        ck_assert_uint_eq(e1, 0);
        ck_assert_uint_eq(e2, 0);
        free_texts(folded, 3);
        free_texts(plain, 3);
        lm_expr_free(e);
        lm_expr_free(u);
    }
    /* an expression whose evaluation counts an error is not folded, so it
     * still counts once per row */
    lm_expr *e = compile_ok(J("{'call':'/','args':[{'lit':1},{'lit':0}]}"), s);
    ck_assert_int_eq(e->kind, K_CALL);
    uint64_t errors;
    char **got = eval_texts(e, b, &errors);
    ck_assert_str_eq(got[0], "NULL");
    ck_assert_uint_eq(errors, 3);
    free_texts(got, 3);
    lm_expr_free(e);
    /* inner constant subtrees fold inside a non-constant tree */
    e = compile_ok(J("{'call':'+','args':[{'col':'i'},{'call':'*','args':[{'lit':2},{'lit':3}]}]}"),
                   s);
    ck_assert_int_eq(e->kind, K_CALL);
    ck_assert_int_eq(e->args[1]->kind, K_LIT);
    ck_assert_int_eq(e->args[1]->lit.i, 6);
    lm_expr_free(e);
    lm_batch_free(b);
    lm_schema_release(s);
}
END_TEST

/* --- compile errors ---------------------------------------------------------------------- */

START_TEST(test_expr_compile_errors_name_path_and_suggest)
{
    lm_field f[] = {{"price", LM_TYPE_INT64, false},     {"auction", LM_TYPE_INT64, false},
                    {"bid.bidder", LM_TYPE_INT64, true}, {"name", LM_TYPE_UTF8, true},
                    {"ts", LM_TYPE_TIMESTAMP, true},     {"raw", LM_TYPE_BINARY, true}};
    lm_schema *s = make_schema(f, 6);
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {"{'call':'+','args':[{'col':'price'},{'col':'prce'}]}",
         "args[1]: unknown column 'prce' (did you mean 'price'?)"},
        {"{'col':'prce'}", "unknown column 'prce' (did you mean 'price'?)"},
        {"{'col':'Price'}", "unknown column 'Price' (did you mean 'price'?)"},
        {"{'col':'bidder'}", "unknown column 'bidder' (did you mean 'bid.bidder'?)"},
        {"{'col':'aucton'}", "unknown column 'aucton' (did you mean 'auction'?)"},
        {"{'col':'zzzzzz'}", "unknown column 'zzzzzz'"},
        {"{'call':'+','args':[{'col':'name'},{'lit':1}]}",
         "'+' needs numbers, timestamps or intervals, got utf8 and int64"},
        {"{'call':'and','args':[{'call':'=','args':[{'col':'price'},{'lit':1}]},{'call':'=','args':"
         "[{'col':'price'},{'call':'+','args':[{'col':'name'},{'lit':1}]}]}]}",
         "args[1].args[1]: '+' needs numbers, timestamps or intervals, got utf8 and int64"},
        {"{'call':'not','args':[{'call':'>','args':[{'col':'price'},{'col':'prise'}]}]}",
         "args[0].args[1]: unknown column 'prise' (did you mean 'price'?)"},
        {"{'call':'substr','args':[{'col':'name'}]}", "'substr' takes 2 or 3 arguments, got 1"},
        {"{'call':'substr','args':[{'col':'name'},{'lit':1},{'lit':2},{'lit':3}]}",
         "'substr' takes 2 or 3 arguments, got 4"},
        {"{'call':'sqrtx','args':[{'col':'price'}]}", "unknown function 'sqrtx'"},
        {"{'call':'lowr','args':[{'col':'name'}]}",
         "unknown function 'lowr' (did you mean 'lower'?)"},
        {"{'call':'and','args':[{'lit':true}]}", "'and' takes 2 or more arguments, got 1"},
        {"{'call':'neg','args':[{'lit':1},{'lit':2}]}", "'neg' takes 1 argument, got 2"},
        {"{'call':'+','args':[{'lit':1}]}", "'+' takes 2 arguments, got 1"},
        {"{'call':'coalesce'}", "'coalesce' takes 1 or more arguments, got 0"},
        {"{'case':[{'when':{'col':'price'},'then':{'lit':1}}]}",
         "case: 'when' must be boolean, got int64"},
        {"{'call':'not','args':[{'case':[{'when':{'col':'price'},'then':{'lit':true}}]}]}",
         "args[0]: case: 'when' must be boolean, got int64"},
        {"{'case':[{'when':{'lit':true},'then':{'lit':1}},{'when':{'col':'nme'},'then':{'lit':2}}]"
         "}",
         "case[1].when: unknown column 'nme' (did you mean 'name'?)"},
        {"{'case':[{'when':{'lit':true},'then':{'col':'nme'}}]}",
         "case[0].then: unknown column 'nme' (did you mean 'name'?)"},
        {"{'case':[{'when':{'lit':true},'then':{'lit':1}}],'else':{'col':'prce'}}",
         "else: unknown column 'prce' (did you mean 'price'?)"},
        {"{'lit':null}", "literal: null needs a type"},
        {"{'call':'=','args':[{'col':'price'},{'lit':null}]}",
         "args[1]: literal: null needs a type"},
        {"{'cast':{'col':'raw'},'to':'timestamp'}", "cast: cannot cast binary to timestamp"},
        {"{'cast':{'col':'prce'},'to':'utf8'}",
         "cast: unknown column 'prce' (did you mean 'price'?)"},
        {"{'call':'=','args':[{'col':'name'},{'col':'price'}]}",
         "'=' cannot compare utf8 with int64"},
        {"{'call':'between','args':[{'col':'price'},{'lit':1},{'lit':'x'}]}",
         "'between' cannot compare int64 with utf8"},
        {"{'call':'in','args':[{'col':'name'},{'lit':'a'},{'lit':2}]}",
         "'in' cannot compare utf8 with int64"},
        {"{'call':'not','args':[{'col':'price'}]}", "'not' arguments must be boolean, got int64"},
        {"{'call':'or','args':[{'lit':true},{'col':'name'}]}",
         "'or' arguments must be boolean, got utf8"},
        {"{'call':'+','args':[{'col':'ts'},{'col':'ts'}]}",
         "'+' is not defined for timestamp and timestamp"},
        {"{'call':'*','args':[{'col':'ts'},{'lit':2}]}",
         "'*' is not defined for timestamp and int64"},
        {"{'call':'%','args':[{'col':'ts'},{'lit':2}]}",
         "'%' needs numbers, got timestamp and int64"},
        {"{'call':'neg','args':[{'col':'name'}]}", "'neg' needs a number or an interval, got utf8"},
        {"{'call':'lower','args':[{'col':'price'}]}", "'lower' needs utf8, got int64"},
        {"{'call':'length','args':[{'col':'price'}]}", "'length' needs a string, got int64"},
        {"{'call':'substr','args':[{'col':'name'},{'lit':'1'}]}",
         "'substr' needs a string and int64 positions, got utf8, utf8"},
        {"{'call':'coalesce','args':[{'col':'name'},{'col':'price'}]}",
         "'coalesce' arguments have different types: utf8 and int64"},
        {"{'col':'price','typo':1}", "unexpected key 'typo' in a 'col' expression"},
        {"{'col':5}", "'col' must be a string, got an integer"},
        {"{'call':5}", "'call' must be a string, got an integer"},
        {"{'call':'abs','args':{'x':1}}", "'args' must be an array, got an object"},
        {"[1]", "expected an expression object, got an array"},
        {"{}", "expected one of the keys 'col', 'lit', 'call', 'case', 'cast'"},
        {"{'call':'abs','args':[5]}", "args[0]: expected an expression object, got an integer"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        compile_fails(J(cases[k].json), s, cases[k].msg);
    }
    /* nesting limit */
    json_t *j = json_pack("{s:s}", "col", "price");
    for (int d = 0; d < 300; d++) {
        j = json_pack("{s:s,s:[o]}", "call", "neg", "args", j);
    }
    lm_expr *e = NULL;
    lm_error err;
    ck_assert_int_eq(lm_expr_compile(j, s, &e, &err), LM_EINVAL);
    ck_assert_msg(strstr(err.msg, "expression nested deeper than 256 levels") != NULL, "%s",
                  err.msg);
    json_decref(j);
    lm_schema_release(s);
}
END_TEST

/* --- API -------------------------------------------------------------------------- */

START_TEST(test_expr_type_nullable_and_column)
{
    lm_schema *s = std_schema();
    static const struct {
        const char *json;
        int type;
        bool nullable;
        int column;
    } cases[] = {
        {"{'col':'nn'}", LM_TYPE_INT64, false, C_NN},
        {"{'col':'i'}", LM_TYPE_INT64, true, C_I},
        {"{'col':'bid.price'}", LM_TYPE_INT64, false, C_PRICE},
        {"{'col':'url'}", LM_TYPE_UTF8, false, C_URL},
        {"{'call':'is_null','args':[{'col':'i'}]}", LM_TYPE_BOOL, false, -1},
        {"{'call':'is_not_null','args':[{'col':'s'}]}", LM_TYPE_BOOL, false, -1},
        {"{'call':'+','args':[{'col':'nn'},{'lit':1}]}", LM_TYPE_INT64, true, -1},
        {"{'call':'*','args':[{'lit':0.908},{'col':'bid.price'}]}", LM_TYPE_FLOAT64, false, -1},
        {"{'call':'/','args':[{'col':'f'},{'lit':2}]}", LM_TYPE_FLOAT64, true, -1},
        {"{'call':'/','args':[{'cast':{'col':'nn'},'to':'float64'},{'lit':2}]}", LM_TYPE_FLOAT64,
         false, -1},
        {"{'call':'/','args':[{'cast':{'col':'nn'},'to':'float64'},{'col':'bid.price'}]}",
         LM_TYPE_FLOAT64, true, -1},
        {"{'call':'%','args':[{'col':'nn'},{'lit':123}]}", LM_TYPE_INT64, false, -1},
        {"{'call':'=','args':[{'call':'mod','args':[{'col':'bid.price'},{'lit':123}]},{'lit':0}]}",
         LM_TYPE_BOOL, false, -1},
        {"{'call':'/','args':[{'col':'nn'},{'lit':-1}]}", LM_TYPE_INT64, true, -1},
        {"{'call':'=','args':[{'col':'nn'},{'col':'i'}]}", LM_TYPE_BOOL, true, -1},
        {"{'call':'lower','args':[{'col':'url'}]}", LM_TYPE_UTF8, false, -1},
        {"{'call':'substr','args':[{'col':'url'},{'lit':1},{'lit':10}]}", LM_TYPE_UTF8, false, -1},
        {"{'call':'substr','args':[{'col':'url'},{'lit':1},{'col':'nn'}]}", LM_TYPE_UTF8, true, -1},
        {"{'call':'like','args':[{'col':'url'},{'lit':'%nexmark%'}]}", LM_TYPE_BOOL, false, -1},
        {"{'call':'coalesce','args':[{'col':'i'},{'col':'nn'}]}", LM_TYPE_INT64, false, -1},
        {"{'call':'coalesce','args':[{'col':'i'},{'col':'j'}]}", LM_TYPE_INT64, true, -1},
        {"{'case':[{'when':{'col':'b'},'then':{'lit':1}}]}", LM_TYPE_INT64, true, -1},
        {"{'case':[{'when':{'col':'b'},'then':{'lit':1}}],'else':{'lit':2.5}}", LM_TYPE_FLOAT64,
         false, -1},
        {"{'cast':{'col':'url'},'to':'int64'}", LM_TYPE_INT64, true, -1},
        {"{'cast':{'col':'nn'},'to':'utf8'}", LM_TYPE_UTF8, false, -1},
        {"{'cast':{'col':'url'},'to':'binary'}", LM_TYPE_BINARY, false, -1},
        {"{'call':'-','args':[{'col':'ts'},{'col':'ts'}]}", LM_TYPE_INTERVAL, true, -1},
        {"{'call':'length','args':[{'col':'bin'}]}", LM_TYPE_INT64, true, -1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        lm_expr *e = compile_ok(J(cases[k].json), s);
        ck_assert_msg(lm_expr_type(e) == cases[k].type, "%s: type %d", cases[k].json,
                      lm_expr_type(e));
        ck_assert_msg(lm_expr_nullable(e) == cases[k].nullable, "%s: nullable %d", cases[k].json,
                      lm_expr_nullable(e));
        ck_assert_msg(lm_expr_column(e) == cases[k].column, "%s: column", cases[k].json);
        lm_expr_free(e);
    }
    lm_expr_free(NULL);
    lm_expr_ctx_free(NULL);
    lm_schema_release(s);
}
END_TEST

/* Row r of the big batch, as the reference computations see it. */
static void
big_row(uint32_t r, lm_value *v, char *sbuf, char *ubuf)
{
    memset(v, 0, NCOLS * sizeof(lm_value));
    v[C_B].is_null = r % 7 == 0;
    v[C_B].v.b = r % 3 == 0;
    v[C_I].is_null = r % 5 == 0;
    v[C_I].v.i = (int64_t)r * 37 - 5000;
    v[C_J].is_null = r % 11 == 0;
    v[C_J].v.i = (int64_t)(r % 13) - 6;
    v[C_F].is_null = r % 9 == 0;
    v[C_F].v.f = r * 0.25;
    v[C_TS].v.i = 1700000000000000ll + (int64_t)r * 1000;
    snprintf(sbuf, 32, r % 4 == 0 ? "Ünïcode-%u" : "row-%u", r);
    v[C_S].is_null = r % 6 == 0;
    v[C_S].v.s.ptr = sbuf;
    v[C_S].v.s.len = (uint32_t)strlen(sbuf);
    v[C_BIN].is_null = true;
    v[C_NN].v.i = r;
    v[C_PRICE].v.i = (int64_t)r * 100 + 1;
    snprintf(ubuf, 96, "https://www.example.com/%s/item/%u?id=%u", r % 3 ? "nexmark" : "other", r,
             r * 7);
    v[C_URL].v.s.ptr = ubuf;
    v[C_URL].v.s.len = (uint32_t)strlen(ubuf);
}

static lm_batch *
big_batch(uint32_t n)
{
    lm_schema *s = std_schema();
    lm_batch *b = NULL;
    lm_error err;

    ck_assert_int_eq(lm_batch_new(s, n, &b), LM_OK);
    lm_schema_release(s);
    for (uint32_t r = 0; r < n; r++) {
        lm_value v[NCOLS];
        char sbuf[32], ubuf[96];
        big_row(r, v, sbuf, ubuf);
        ck_assert_msg(lm_batch_append_row(b, v, &err) == LM_OK, "%s", err.msg);
    }
    return b;
}

START_TEST(test_expr_large_and_empty_batches)
{
    enum { N = 10000 };
    lm_batch *b = big_batch(N);
    lm_expr_ctx *ctx = NULL;
    lm_error err;
    uint32_t *sel = malloc(N * sizeof(uint32_t)), nsel;
    double *fv = malloc(N * sizeof(double));
    int64_t *iv = malloc(N * sizeof(int64_t));
    uint8_t *valid = malloc(N);

    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    /* 0.908 * price */
    lm_expr *e =
        compile_ok(J("{'call':'*','args':[{'lit':0.908},{'col':'bid.price'}]}"), b->schema);
    ck_assert_int_eq(lm_expr_eval_f64(ctx, e, b, fv, valid, &err), LM_OK);
    for (uint32_t r = 0; r < N; r++) {
        ck_assert(valid[r] && fv[r] == 0.908 * (double)((int64_t)r * 100 + 1));
    }
    lm_expr_free(e);
    /* i * j + nn with nulls */
    e = compile_ok(
        J("{'call':'+','args':[{'call':'*','args':[{'col':'i'},{'col':'j'}]},{'col':'nn'}]}"),
        b->schema);
    ck_assert_int_eq(lm_expr_eval_i64(ctx, e, b, iv, valid, &err), LM_OK);
    for (uint32_t r = 0; r < N; r++) {
        bool ok = r % 5 != 0 && r % 11 != 0;
        ck_assert(valid[r] == ok);
        if (ok) {
            ck_assert_int_eq(iv[r], ((int64_t)r * 37 - 5000) * ((int64_t)(r % 13) - 6) + r);
        }
    }
    lm_expr_free(e);
    /* filter: mod(price, 3) = 1 and url like '%nexmark%' and b is not false */
    e = compile_ok(
        J("{'call':'and','args':[{'call':'=','args':[{'call':'mod','args':[{'col':'nn'},"
          "{'lit':3}]},{'lit':1}]},{'call':'like','args':[{'col':'url'},{'lit':'%nexmark%'}]},"
          "{'call':'not','args':[{'call':'=','args':[{'col':'b'},{'lit':false}]}]}]}"),
        b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &nsel, &err), LM_OK);
    ck_assert_uint_eq(nsel, 0); /* b is r % 3 == 0: where mod = 1, b is FALSE or NULL */
    lm_expr_free(e);
    e = compile_ok(
        J("{'call':'and','args':[{'call':'=','args':[{'call':'mod','args':[{'col':'nn'},"
          "{'lit':3}]},{'lit':1}]},{'call':'like','args':[{'col':'url'},{'lit':'%nexmark%'}]}]}"),
        b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &nsel, &err), LM_OK);
    uint32_t k = 0;
    for (uint32_t r = 0; r < N; r++) {
        if (r % 3 == 1) {
            ck_assert_uint_eq(sel[k++], r);
        }
    }
    ck_assert_uint_eq(nsel, k);
    lm_expr_free(e);
    /* every row, and every row but the NULL ones (whole words of eight) */
    e = compile_ok(J("{'call':'>=','args':[{'col':'nn'},{'lit':0}]}"), b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &nsel, &err), LM_OK);
    ck_assert_uint_eq(nsel, N);
    ck_assert_uint_eq(sel[N - 1], N - 1);
    lm_expr_free(e);
    e = compile_ok(J("{'call':'>','args':[{'col':'i'},{'lit':-1000000}]}"), b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &nsel, &err), LM_OK);
    k = 0;
    for (uint32_t r = 0; r < N; r++) {
        if (r % 5 != 0) {
            ck_assert_uint_eq(sel[k++], r);
        }
    }
    ck_assert_uint_eq(nsel, k);
    lm_expr_free(e);
    /* strings: upper(substr(s, 2, 4)) || '!' */
    e = compile_ok(
        J("{'call':'||','args':[{'call':'upper','args':[{'call':'substr','args':[{'col':'s'},"
          "{'lit':2},{'lit':4}]}]},{'lit':'!'}]}"),
        b->schema);
    uint64_t errors;
    char **got = eval_texts(e, b, &errors);
    for (uint32_t r = 0; r < N; r++) {
        char want[64];
        if (r % 6 == 0) {
            strcpy(want, "NULL");
        } else if (r % 4 == 0) {
            strcpy(want, "NïCO!");
        } else {
            char num[16];
            snprintf(num, sizeof(num), "%u", r);
            snprintf(want, sizeof(want), "OW-%c!", num[0]);
        }
        ck_assert_msg(strcmp(got[r], want) == 0, "row %u: got %s want %s", r, got[r], want);
    }
    free_texts(got, N);
    ck_assert_uint_eq(errors, 0);

    /* an empty batch: every entry point works and writes nothing */
    lm_batch *empty = big_batch(0);
    got = eval_texts(e, empty, &errors);
    free_texts(got, 0);
    lm_expr_free(e);
    e = compile_ok(J("{'call':'>','args':[{'col':'i'},{'lit':1}]}"), empty->schema);
    nsel = 99;
    ck_assert_int_eq(lm_expr_filter(ctx, e, empty, sel, &nsel, &err), LM_OK);
    ck_assert_uint_eq(nsel, 0);
    lm_expr_free(e);
    e = compile_ok(J("{'lit':1}"), empty->schema);
    ck_assert_int_eq(lm_expr_eval_i64(ctx, e, empty, iv, valid, &err), LM_OK);
    ck_assert_int_eq(lm_expr_eval_f64(ctx, e, empty, fv, valid, &err), LM_OK);
    lm_expr_free(e);
    lm_batch_free(empty);

    lm_expr_ctx_free(ctx);
    lm_batch_free(b);
    free(sel);
    free(fv);
    free(iv);
    free(valid);
}
END_TEST

START_TEST(test_expr_eval_into_appends_after_existing_rows)
{
    static const srow rows[] = {
        {.i = "1", .s = "a", .bin = "x"},
        {.i = "N", .s = "N", .bin = "x"},
        {.i = "3", .s = "héllo", .bin = "x"},
    };
    lm_batch *in = std_batch(rows, 3);
    lm_field of[] = {{"n", LM_TYPE_INT64, true},
                     {"t", LM_TYPE_UTF8, true},
                     {"ok", LM_TYPE_BOOL, false},
                     {"c", LM_TYPE_FLOAT64, true}};
    lm_schema *os = make_schema(of, 4);
    lm_batch *out = NULL;
    lm_expr_ctx *ctx = NULL;
    lm_error err;

    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    ck_assert_int_eq(lm_batch_new(os, 2, &out), LM_OK);
    /* two rows already there: one without nulls, one with */
    lm_value r0[4] = {{.v.i = 100}, {.v.s = {"old", 3}}, {.v.b = true}, {.v.f = 1.5}};
    lm_value r1[4] = {{.is_null = true}, {.is_null = true}, {.v.b = false}, {.is_null = true}};
    ck_assert_int_eq(lm_batch_append_row(out, r0, &err), LM_OK);
    ck_assert_int_eq(lm_batch_append_row(out, r1, &err), LM_OK);
    ck_assert_int_eq(lm_batch_reserve(out, out->nrows + in->nrows), LM_OK);

    lm_expr *en = compile_ok(J("{'call':'*','args':[{'col':'i'},{'lit':10}]}"), in->schema);
    lm_expr *et = compile_ok(J("{'call':'upper','args':[{'col':'s'}]}"), in->schema);
    lm_expr *eok = compile_ok(J("{'call':'is_null','args':[{'col':'i'}]}"), in->schema);
    lm_expr *ec = compile_ok(J("{'lit':2.5}"), in->schema);
    ck_assert_int_eq(lm_expr_eval_into(ctx, en, in, out, 0, &err), LM_OK);
    ck_assert_int_eq(lm_expr_eval_into(ctx, et, in, out, 1, &err), LM_OK);
    ck_assert_int_eq(lm_expr_eval_into(ctx, eok, in, out, 2, &err), LM_OK);
    ck_assert_int_eq(lm_expr_eval_into(ctx, ec, in, out, 3, &err), LM_OK);
    lm_batch_commit_rows(out, in->nrows);
    ck_assert_uint_eq(out->nrows, 5);
    static const char *const want[5][4] = {
        {"100", "old", "true", "1.5"},   {"NULL", "NULL", "false", "NULL"},
        {"10", "A", "false", "2.5"},     {"NULL", "NULL", "true", "2.5"},
        {"30", "HéLLO", "false", "2.5"},
    };
    for (uint32_t r = 0; r < 5; r++) {
        for (uint32_t c = 0; c < 4; c++) {
            lm_value v;
            lm_batch_get(out, c, r, &v);
            char *t = fmt_value(of[c].type, &v);
            ck_assert_msg(strcmp(t, want[r][c]) == 0, "row %u col %u: got %s want %s", r, c, t,
                          want[r][c]);
            free(t);
        }
    }
    ck_assert_uint_eq(out->cols[0].null_count, 2);
    ck_assert_uint_eq(out->cols[1].null_count, 2);
    ck_assert_uint_eq(out->cols[2].null_count, 0);
    ck_assert_uint_eq(out->cols[3].null_count, 1);

    /* refusals: type mismatch, NULL into a non-nullable field, no room,
     * interval results */
    lm_batch_clear(out);
    ck_assert_int_eq(lm_batch_reserve(out, 3), LM_OK);
    ck_assert_int_eq(lm_expr_eval_into(ctx, et, in, out, 0, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "output column 'n' is int64 but the expression gives utf8");
    lm_expr *bad = compile_ok(J("{'call':'>','args':[{'col':'i'},{'lit':1}]}"), in->schema);
    ck_assert_int_eq(lm_expr_eval_into(ctx, bad, in, out, 2, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "expression gives NULL (row 1) for non-nullable column 'ok'");
    lm_expr_free(bad);
    bad = compile_ok(J("{'call':'-','args':[{'col':'ts'},{'col':'ts'}]}"), in->schema);
    ck_assert_int_eq(lm_expr_eval_into(ctx, bad, in, out, 0, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "output column 'n' is int64 but the expression gives interval");
    lm_expr_free(bad);
    ck_assert_int_eq(lm_expr_eval_into(ctx, en, in, out, 7, &err), LM_EINVAL);
    lm_batch_free(out);
    ck_assert_int_eq(lm_batch_new(os, 1, &out), LM_OK);
    ck_assert_int_eq(lm_expr_eval_into(ctx, en, in, out, 0, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "output batch has no room for 3 rows after 0 (reserve first)");
    /* a batch that does not fit the compiled schema */
    lm_schema *other = make_schema(of, 4);
    lm_batch *wrong = NULL;
    ck_assert_int_eq(lm_batch_new(other, 1, &wrong), LM_OK);
    uint32_t sel[4], n;
    lm_expr *pred =
        compile_ok(J("{'call':'>','args':[{'col':'bid.price'},{'lit':1}]}"), in->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, pred, wrong, sel, &n, &err), LM_EINVAL);
    ck_assert_int_eq(lm_expr_filter(ctx, en, in, sel, &n, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "filter predicate is int64, not bool");
    lm_expr_free(pred);
    lm_batch_free(wrong);
    lm_schema_release(other);

    lm_expr_free(en);
    lm_expr_free(et);
    lm_expr_free(eok);
    lm_expr_free(ec);
    lm_batch_free(out);
    lm_schema_release(os);
    lm_batch_free(in);
    lm_expr_ctx_free(ctx);
}
END_TEST

START_TEST(test_expr_filter_indices)
{
    static const srow rows[] = {
        {.i = "1", .s = "apple", .bin = "x"},   {.i = "5", .s = "avocado", .bin = "x"},
        {.i = "N", .s = "apricot", .bin = "x"}, {.i = "7", .s = "N", .bin = "x"},
        {.i = "9", .s = "banana", .bin = "x"},  {.i = "3", .s = "almond", .bin = "x"},
    };
    lm_batch *b = std_batch(rows, 6);
    lm_expr_ctx *ctx = NULL;
    lm_error err;
    uint32_t sel[6], n;

    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    lm_expr *e = compile_ok(J("{'call':'and','args':[{'call':'>','args':[{'col':'i'},{'lit':2}]},"
                              "{'call':'like','args':[{'col':'s'},{'lit':'a%'}]}]}"),
                            b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &n, &err), LM_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(sel[0], 1);
    ck_assert_uint_eq(sel[1], 5);
    lm_expr_free(e);
    /* NULL rows are not selected, and neither are FALSE ones */
    e = compile_ok(J("{'call':'>','args':[{'col':'i'},{'lit':4}]}"), b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &n, &err), LM_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(sel[0], 1);
    ck_assert_uint_eq(sel[1], 3);
    ck_assert_uint_eq(sel[2], 4);
    lm_expr_free(e);
    /* constants */
    e = compile_ok(J("{'lit':true}"), b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &n, &err), LM_OK);
    ck_assert_uint_eq(n, 6);
    ck_assert_uint_eq(sel[5], 5);
    lm_expr_free(e);
    e = compile_ok(J("{'lit':null,'type':'bool'}"), b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &n, &err), LM_OK);
    ck_assert_uint_eq(n, 0);
    lm_expr_free(e);
    /* or over columns without NULLs */
    e = compile_ok(J("{'call':'or','args':[{'call':'<','args':[{'col':'nn'},{'lit':2}]},"
                     "{'call':'>','args':[{'col':'nn'},{'lit':4}]}]}"),
                   b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &n, &err), LM_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(sel[0], 0);
    ck_assert_uint_eq(sel[1], 1);
    ck_assert_uint_eq(sel[2], 5);
    lm_expr_free(e);
    /* a bool column */
    e = compile_ok(J("{'call':'is_null','args':[{'col':'s'}]}"), b->schema);
    ck_assert_int_eq(lm_expr_filter(ctx, e, b, sel, &n, &err), LM_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(sel[0], 3);
    lm_expr_free(e);
    lm_expr_ctx_free(ctx);
    lm_batch_free(b);
}
END_TEST

START_TEST(test_expr_eval_i64_and_f64)
{
    static const srow rows[] = {
        {.i = "1", .f = "0.5", .ts = "1000", .bin = "x"},
        {.i = "N", .f = "N", .ts = "N", .bin = "x"},
        {.i = "-3", .f = "-2", .ts = "-5", .bin = "x"},
    };
    lm_batch *b = std_batch(rows, 3);
    lm_expr_ctx *ctx = NULL;
    lm_error err;
    int64_t iv[3];
    double fv[3];
    uint8_t valid[3];

    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    lm_expr *e = compile_ok(J("{'col':'ts'}"), b->schema);
    ck_assert_int_eq(lm_expr_eval_i64(ctx, e, b, iv, valid, &err), LM_OK);
    ck_assert(valid[0] && iv[0] == 1000 && !valid[1] && iv[1] == 0 && valid[2] && iv[2] == -5);
    ck_assert_int_eq(lm_expr_eval_f64(ctx, e, b, fv, valid, &err), LM_EINVAL);
    lm_expr_free(e);
    e = compile_ok(
        J("{'call':'-','args':[{'col':'ts'},{'lit':'1970-01-01 00:00:00','type':'timestamp'}]}"),
        b->schema);
    ck_assert_int_eq(lm_expr_type(e), LM_TYPE_INTERVAL);
    ck_assert_int_eq(lm_expr_eval_i64(ctx, e, b, iv, valid, &err), LM_OK);
    ck_assert(valid[0] && iv[0] == 1000 && !valid[1] && valid[2] && iv[2] == -5);
    lm_expr_free(e);
    e = compile_ok(J("{'col':'i'}"), b->schema);
    ck_assert_int_eq(lm_expr_eval_f64(ctx, e, b, fv, valid, &err), LM_OK);
    ck_assert(valid[0] && fv[0] == 1.0 && !valid[1] && fv[1] == 0.0 && fv[2] == -3.0);
    lm_expr_free(e);
    e = compile_ok(J("{'call':'*','args':[{'col':'f'},{'lit':2}]}"), b->schema);
    ck_assert_int_eq(lm_expr_eval_f64(ctx, e, b, fv, valid, &err), LM_OK);
    ck_assert(valid[0] && fv[0] == 1.0 && !valid[1] && valid[2] && fv[2] == -4.0);
    ck_assert_int_eq(lm_expr_eval_i64(ctx, e, b, iv, valid, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "expression is float64, not a 64-bit integer type");
    lm_expr_free(e);
    e = compile_ok(J("{'lit':null,'type':'int64'}"), b->schema);
    ck_assert_int_eq(lm_expr_eval_i64(ctx, e, b, iv, valid, &err), LM_OK);
    ck_assert(!valid[0] && !valid[1] && !valid[2]);
    lm_expr_free(e);
    lm_expr_ctx_free(ctx);
    lm_batch_free(b);
}
END_TEST

/* --- randomized against references ------------------------------------------------ */

static uint32_t
u8len_ref(uint8_t c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* LIKE by recursion: the obvious definition. */
static bool
ref_like(const char *s, size_t sn, const char *p, size_t pn, char esc)
{
    if (pn == 0) {
        return sn == 0;
    }
    if (esc != 0 && p[0] == esc) {
        return sn > 0 && s[0] == p[1] && ref_like(s + 1, sn - 1, p + 2, pn - 2, esc);
    }
    if (p[0] == '%') {
        for (size_t k = 0;; k += u8len_ref((uint8_t)s[k])) {
            if (ref_like(s + k, sn - k, p + 1, pn - 1, esc)) {
                return true;
            }
            if (k >= sn) {
                return false;
            }
        }
    }
    if (p[0] == '_') {
        size_t c = sn > 0 ? u8len_ref((uint8_t)s[0]) : 0;
        return sn > 0 && ref_like(s + c, sn - c, p + 1, pn - 1, esc);
    }
    return sn > 0 && s[0] == p[0] && ref_like(s + 1, sn - 1, p + 1, pn - 1, esc);
}

/* A random string over a small alphabet (so that patterns match often),
 * sometimes long, sometimes with multibyte characters. */
static void
rand_text(uint64_t *seed, char *out, size_t cap, bool multibyte)
{
    static const char *const alpha[] = {"a", "b", "c", "ab", "é", "日", "🎉"};
    size_t len = rng(seed) % 4 == 0 ? rng(seed) % 90 : rng(seed) % 20, n = 0;
    out[0] = '\0';
    for (size_t k = 0; k < len; k++) {
        const char *t = alpha[rng(seed) % (multibyte ? 7 : 4)];
        if (n + strlen(t) + 1 >= cap) {
            break;
        }
        memcpy(out + n, t, strlen(t) + 1);
        n += strlen(t);
    }
}

static void
rand_pattern(uint64_t *seed, char *out, size_t cap, bool escape)
{
    static const char *const toks[] = {"a", "b", "c", "%", "_", "ab", "é", "!%", "!_", "abcab"};
    size_t len = 1 + rng(seed) % 6, n = 0, ntok = escape ? 10 : 7;
    out[0] = '\0';
    for (size_t k = 0; k < len; k++) {
        const char *t = toks[rng(seed) % ntok];
        if (!escape && t[0] == '!') {
            continue;
        }
        if (n + strlen(t) + 1 >= cap) {
            break;
        }
        memcpy(out + n, t, strlen(t) + 1);
        n += strlen(t);
    }
}

START_TEST(test_expr_like_matches_a_reference_on_random_strings)
{
    enum { NS = 300, NP = 400 };
    lm_field f[2] = {{"s", LM_TYPE_UTF8, true}, {"p", LM_TYPE_UTF8, true}};
    lm_schema *sc = make_schema(f, 2);
    lm_batch *b = NULL;
    lm_expr_ctx *ctx = NULL;
    lm_error err;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    static char texts[NS][400], pats[NS][64];

    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    ck_assert_int_eq(lm_batch_new(sc, NS, &b), LM_OK);
    for (int i = 0; i < NS; i++) {
        rand_text(&seed, texts[i], sizeof(texts[i]), i % 3 == 0);
        rand_pattern(&seed, pats[i], sizeof(pats[i]), i % 2 == 0);
        lm_value row[2] = {{.v.s = {texts[i], (uint32_t)strlen(texts[i])}},
                           {.v.s = {pats[i], (uint32_t)strlen(pats[i])}}};
        ck_assert_int_eq(lm_batch_append_row(b, row, &err), LM_OK);
    }
    /* constant patterns over every string */
    for (int k = 0; k < NP; k++) {
        char pat[64];
        bool esc = k % 2 == 0;
        rand_pattern(&seed, pat, sizeof(pat), esc);
        json_t *j = json_pack("{s:s,s:[{s:s},{s:s},{s:s}]}", "call", "like", "args", "col", "s",
                              "lit", pat, "lit", esc ? "!" : "");
        lm_expr *e = compile_ok(j, sc);
        uint64_t errors;
        char **got = eval_texts(e, b, &errors);
        for (int i = 0; i < NS; i++) {
            bool want = ref_like(texts[i], strlen(texts[i]), pat, strlen(pat), esc ? '!' : 0);
            ck_assert_msg(strcmp(got[i], want ? "true" : "false") == 0,
                          "'%s' LIKE '%s' (kind %d): got %s", texts[i], pat,
                          e->like != NULL ? e->like->kind : -1, got[i]);
        }
        free_texts(got, NS);
        lm_expr_free(e);
    }
    /* per-row patterns */
    for (int esc = 0; esc < 2; esc++) {
        json_t *j = json_pack("{s:s,s:[{s:s},{s:s},{s:s}]}", "call", "like", "args", "col", "s",
                              "col", "p", "lit", esc ? "!" : "");
        lm_expr *e = compile_ok(j, sc);
        uint64_t errors;
        char **got = eval_texts(e, b, &errors);
        for (int i = 0; i < NS; i++) {
            if (!esc && strchr(pats[i], '!') != NULL) {
                continue;
            }
            bool want =
                ref_like(texts[i], strlen(texts[i]), pats[i], strlen(pats[i]), esc ? '!' : 0);
            ck_assert_msg(strcmp(got[i], want ? "true" : "false") == 0, "'%s' LIKE '%s': got %s",
                          texts[i], pats[i], got[i]);
        }
        ck_assert_uint_eq(errors, 0);
        free_texts(got, NS);
        lm_expr_free(e);
    }
    lm_expr_ctx_free(ctx);
    lm_batch_free(b);
    lm_schema_release(sc);
}
END_TEST

/* SQL substring by code points. */
static void
ref_substr(const char *s, int64_t start, bool has_len, int64_t len, char *out)
{
    size_t pos[512], nc = 0, n = strlen(s);
    for (size_t k = 0; k < n; k += u8len_ref((uint8_t)s[k])) {
        pos[nc++] = k;
    }
    pos[nc] = n;
    /* characters i (1-based) with start <= i < start + len */
    size_t a = 0, b = 0;
    bool any = false;
    for (size_t i = 1; i <= nc; i++) {
        bool in = (int64_t)i >= start && (!has_len || (__int128)i < (__int128)start + len);
        if (in && !any) {
            a = pos[i - 1];
            any = true;
        }
        if (in) {
            b = pos[i];
        }
    }
    if (!any) {
        a = b = 0;
    }
    memcpy(out, s + a, b - a);
    out[b - a] = '\0';
}

START_TEST(test_expr_substr_and_length_match_a_reference_on_random_strings)
{
    enum { NS = 400 };
    lm_field f[3] = {
        {"s", LM_TYPE_UTF8, false}, {"a", LM_TYPE_INT64, false}, {"l", LM_TYPE_INT64, false}};
    lm_schema *sc = make_schema(f, 3);
    lm_batch *b = NULL;
    lm_error err;
    uint64_t seed = 0x2545f4914f6cdd1dull;
    static char texts[NS][400];
    int64_t starts[NS], lens[NS];

    ck_assert_int_eq(lm_batch_new(sc, NS, &b), LM_OK);
    for (int i = 0; i < NS; i++) {
        rand_text(&seed, texts[i], sizeof(texts[i]), i % 2 == 0);
        starts[i] = (int64_t)(rng(&seed) % 60) - 10;
        lens[i] = (int64_t)(rng(&seed) % 50);
        lm_value row[3] = {
            {.v.s = {texts[i], (uint32_t)strlen(texts[i])}}, {.v.i = starts[i]}, {.v.i = lens[i]}};
        ck_assert_int_eq(lm_batch_append_row(b, row, &err), LM_OK);
    }
    uint64_t errors;
    lm_expr *e =
        compile_ok(J("{'call':'substr','args':[{'col':'s'},{'col':'a'},{'col':'l'}]}"), sc);
    char **got = eval_texts(e, b, &errors);
    for (int i = 0; i < NS; i++) {
        char want[400];
        ref_substr(texts[i], starts[i], true, lens[i], want);
        ck_assert_msg(strcmp(got[i], want) == 0,
                      "substr('%s', %" PRId64 ", %" PRId64 "): got '%s' want '%s'", texts[i],
                      starts[i], lens[i], got[i], want);
    }
    free_texts(got, NS);
    lm_expr_free(e);
    e = compile_ok(J("{'call':'substr','args':[{'col':'s'},{'col':'a'}]}"), sc);
    got = eval_texts(e, b, &errors);
    for (int i = 0; i < NS; i++) {
        char want[400];
        ref_substr(texts[i], starts[i], false, 0, want);
        ck_assert_msg(strcmp(got[i], want) == 0, "substr('%s', %" PRId64 "): got '%s' want '%s'",
                      texts[i], starts[i], got[i], want);
    }
    free_texts(got, NS);
    lm_expr_free(e);
    /* constant windows */
    for (int64_t st = -3; st < 30; st += 4) {
        for (int64_t ln = 0; ln < 40; ln += 7) {
            char js[160];
            snprintf(js, sizeof(js),
                     "{'call':'substr','args':[{'col':'s'},{'lit':%" PRId64 "},{'lit':%" PRId64
                     "}]}",
                     st, ln);
            e = compile_ok(J(js), sc);
            got = eval_texts(e, b, &errors);
            for (int i = 0; i < NS; i++) {
                char want[400];
                ref_substr(texts[i], st, true, ln, want);
                ck_assert_msg(strcmp(got[i], want) == 0, "%s on '%s': got '%s' want '%s'", js,
                              texts[i], got[i], want);
            }
            free_texts(got, NS);
            lm_expr_free(e);
        }
    }
    e = compile_ok(J("{'call':'length','args':[{'col':'s'}]}"), sc);
    got = eval_texts(e, b, &errors);
    for (int i = 0; i < NS; i++) {
        size_t nc = 0;
        for (size_t k = 0; texts[i][k] != '\0'; k += u8len_ref((uint8_t)texts[i][k])) {
            nc++;
        }
        char want[32];
        snprintf(want, sizeof(want), "%zu", nc);
        ck_assert_str_eq(got[i], want);
    }
    free_texts(got, NS);
    lm_expr_free(e);
    lm_batch_free(b);
    lm_schema_release(sc);
}
END_TEST

/* --- threads ---------------------------------------------------------------------- */

typedef struct thr {
    const lm_expr *e;
    const lm_expr *pred;
    const lm_batch *in;
    char **want;
    uint32_t want_sel;
    int failures;
} thr;

static const char *thread_expr =
    "{'case':[{'when':{'call':'like','args':[{'col':'url'},{'lit':'%nexmark%'}]},"
    "'then':{'call':'concat','args':[{'call':'upper','args':[{'call':'substr','args':[{'col':'url'}"
    ","
    "{'lit':9},{'lit':3}]}]},{'lit':':'},{'cast':{'call':'+','args':[{'call':'*','args':[{'lit':0."
    "5},"
    "{'col':'bid.price'}]},{'col':'f'}]},'to':'utf8'}]}},{'when':{'call':'is_null','args':[{'col':'"
    "i'}]},"
    "'then':{'lit':'none'}}],'else':{'cast':{'call':'/"
    "','args':[{'col':'i'},{'col':'j'}]},'to':'utf8'}}";

static void *
thread_main(void *arg)
{
    thr *t = arg;
    lm_expr_ctx *ctx = NULL;
    lm_field f = {"out", LM_TYPE_UTF8, true};
    lm_schema *s = NULL;
    lm_batch *out = NULL;
    uint32_t *sel = malloc(t->in->nrows * sizeof(uint32_t)), n;
    lm_error err;

    if (lm_expr_ctx_new(&ctx) != LM_OK || lm_schema_new(&f, 1, &s, &err) != LM_OK ||
        lm_batch_new(s, t->in->nrows, &out) != LM_OK) {
        t->failures++;
        return NULL;
    }
    for (int iter = 0; iter < 30; iter++) {
        lm_batch_clear(out);
        if (lm_batch_reserve(out, t->in->nrows) != LM_OK ||
            lm_expr_eval_into(ctx, t->e, t->in, out, 0, &err) != LM_OK ||
            lm_expr_filter(ctx, t->pred, t->in, sel, &n, &err) != LM_OK) {
            t->failures++;
            break;
        }
        lm_batch_commit_rows(out, t->in->nrows);
        for (uint32_t r = 0; r < t->in->nrows; r++) {
            lm_value v;
            lm_batch_get(out, 0, r, &v);
            char *text = fmt_value(LM_TYPE_UTF8, &v);
            t->failures += strcmp(text, t->want[r]) != 0;
            free(text);
        }
        t->failures += n != t->want_sel;
    }
    free(sel);
    lm_batch_free(out);
    lm_schema_release(s);
    lm_expr_ctx_free(ctx);
    return NULL;
}

START_TEST(test_expr_same_expression_from_four_threads)
{
    lm_batch *b = big_batch(5000);
    lm_expr *e = compile_ok(J(thread_expr), b->schema);
    lm_expr *pred =
        compile_ok(J("{'call':'and','args':[{'call':'=','args':[{'call':'mod','args':"
                     "[{'col':'bid.price'},{'lit':7}]},{'lit':1}]},{'call':'like','args':"
                     "[{'col':'url'},{'lit':'%nexmark%'}]}]}"),
                   b->schema);
    uint64_t errors;
    char **want = eval_texts(e, b, &errors);
    lm_expr_ctx *ctx = NULL;
    uint32_t *sel = malloc(b->nrows * sizeof(uint32_t)), n;
    lm_error err;
    pthread_t th[4];
    thr t[4];

    ck_assert_int_eq(lm_expr_ctx_new(&ctx), LM_OK);
    ck_assert_int_eq(lm_expr_filter(ctx, pred, b, sel, &n, &err), LM_OK);
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(want[1], "WWW:50.75");
    for (int k = 0; k < 4; k++) {
        t[k] = (thr){e, pred, b, want, n, 0};
        ck_assert_int_eq(pthread_create(&th[k], NULL, thread_main, &t[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        ck_assert_int_eq(t[k].failures, 0);
    }
    free(sel);
    free_texts(want, b->nrows);
    lm_expr_ctx_free(ctx);
    lm_expr_free(e);
    lm_expr_free(pred);
    lm_batch_free(b);
}
END_TEST

Suite *
expr_suite(void)
{
    Suite *s = suite_create("expr");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_expr_arith_int64_with_nulls_overflow_and_division_by_zero);
    tcase_add_test(tc, test_expr_arith_float64_and_int_promotion);
    tcase_add_test(tc, test_expr_div_mod_by_constants_match_c);
    tcase_add_test(tc, test_expr_timestamp_interval_arithmetic);
    tcase_add_test(tc, test_expr_compare_every_type_and_promotion);
    tcase_add_test(tc, test_expr_logic_three_valued_truth_tables);
    tcase_add_test(tc, test_expr_is_null_and_is_not_null);
    tcase_add_test(tc, test_expr_between_with_nulls);
    tcase_add_test(tc, test_expr_in_and_not_in_with_nulls);
    tcase_add_test(tc, test_expr_like_wildcards_escape_and_multibyte);
    tcase_add_test(tc, test_expr_lower_upper_ascii_only);
    tcase_add_test(tc, test_expr_substr_and_length_multibyte);
    tcase_add_test(tc, test_expr_concat_with_nulls);
    tcase_add_test(tc, test_expr_trims);
    tcase_add_test(tc, test_expr_coalesce);
    tcase_add_test(tc, test_expr_cast_matrix_with_failures);
    tcase_add_test(tc, test_expr_literals_of_every_type);
    tcase_add_test(tc, test_expr_case_with_and_without_else);
    tcase_add_test(tc, test_expr_errors_counted_only_on_rows_that_matter);
    tcase_add_test(tc, test_expr_constant_folding_gives_the_same_results);
    tcase_add_test(tc, test_expr_compile_errors_name_path_and_suggest);
    tcase_add_test(tc, test_expr_type_nullable_and_column);
    tcase_add_test(tc, test_expr_large_and_empty_batches);
    tcase_add_test(tc, test_expr_eval_into_appends_after_existing_rows);
    tcase_add_test(tc, test_expr_filter_indices);
    tcase_add_test(tc, test_expr_eval_i64_and_f64);
    tcase_add_test(tc, test_expr_like_matches_a_reference_on_random_strings);
    tcase_add_test(tc, test_expr_substr_and_length_match_a_reference_on_random_strings);
    tcase_add_test(tc, test_expr_same_expression_from_four_threads);
    suite_add_tcase(s, tc);
    return s;
}
