/*
 * check_file_source.c: the file source (JSON lines and CSV) and the value
 * parsers of lm_rowfmt it reads with.
 *
 * Plans run through the real engine. Rows come out into a test sink
 * ("fs_test_collect") that keeps each row as canonical text (floats with
 * %a, so bit-exact; strings and binary as hexadecimal), compared with the
 * expected rows as sorted multisets. The round trips start from a test
 * source ("fs_test_rows") whose rows file_sink writes; file_source must
 * give the same values back. The checkpoint tests use file_sink, which is
 * transactional: only committed files count.
 */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_op.h"
#include "lm_plan.h"
#include "lm_proto.h"
#include "lm_rowfmt.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_test.h"

static char dir[256];

/* --- test operators ------------------------------------------------------- */

/* Rows the "fs_test_rows" source emits (subtask 0, one batch). */
static const lm_value *src_rows;
static size_t src_nrows;

/* What "fs_test_collect" received: canonical rows and the subtask of each. */
static pthread_mutex_t col_lock = PTHREAD_MUTEX_INITIALIZER;
static char **col_rows;
static uint32_t *col_sub;
static size_t col_n, col_cap;

/* Canonical text of one row: fields joined by '|'; null "-"; bool 0/1;
 * int64 and timestamp decimal; float64 %a ("nan" for any NaN); utf8 and
 * binary as "s:" / "x:" and hexadecimal bytes. */
static char *
canon(const lm_type *types, uint32_t n, const lm_value *v)
{
    lm_buf b;
    char *out;

    lm_buf_init(&b);
    for (uint32_t c = 0; c < n; c++) {
        if (c > 0) {
            lm_buf_append(&b, "|", 1);
        }
        if (v[c].is_null) {
            lm_buf_append(&b, "-", 1);
            continue;
        }
        switch (types[c]) {
        case LM_TYPE_BOOL: lm_buf_printf(&b, "%d", v[c].v.b ? 1 : 0); break;
        case LM_TYPE_INT64:
        case LM_TYPE_TIMESTAMP: lm_buf_printf(&b, "%" PRId64, v[c].v.i); break;
        case LM_TYPE_FLOAT64:
            if (isnan(v[c].v.f)) {
                lm_buf_printf(&b, "nan");
            } else {
                lm_buf_printf(&b, "%a", v[c].v.f);
            }
            break;
        default: {
            static const char hex[] = "0123456789abcdef";
            const uint8_t *p = v[c].v.s.ptr;
            char pair[2];
            lm_buf_printf(&b, "%s:", types[c] == LM_TYPE_UTF8 ? "s" : "x");
            for (uint32_t i = 0; i < v[c].v.s.len; i++) {
                pair[0] = hex[p[i] >> 4];
                pair[1] = hex[p[i] & 15];
                lm_buf_append(&b, pair, 2);
            }
            break;
        }
        }
    }
    lm_buf_append(&b, "", 1);
    out = strdup(b.p);
    lm_buf_fini(&b);
    return out;
}

static int
noop_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    (void)def;
    (void)err;
    *spec = NULL;
    return LM_OK;
}

static int
noop_open(lm_op *op)
{
    (void)op;
    return LM_OK;
}

static int
rows_produce(lm_op *op, uint32_t max_rows, bool *ended)
{
    lm_batch *b;
    lm_error err;
    uint32_t nf = op->def->output->nfields;

    (void)max_rows;
    *ended = true;
    if (op->subtask != 0 || src_nrows == 0) {
        return LM_OK;
    }
    ck_assert_int_eq(lm_batch_new(op->def->output, (uint32_t)src_nrows, &b), LM_OK);
    for (size_t r = 0; r < src_nrows; r++) {
        ck_assert_msg(lm_batch_append_row(b, src_rows + r * nf, &err) == LM_OK, "%s", err.msg);
    }
    *ended = false;
    src_nrows = 0; /* ends at the next call */
    return lm_op_emit(op, b);
}

static int
collect_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const lm_schema *s = b->schema;
    lm_type types[64];
    lm_value v[64];

    (void)port;
    for (uint32_t c = 0; c < s->nfields; c++) {
        types[c] = s->fields[c].type;
    }
    pthread_mutex_lock(&col_lock);
    for (uint32_t r = 0; r < b->nrows; r++) {
        for (uint32_t c = 0; c < s->nfields; c++) {
            lm_batch_get(b, c, r, &v[c]);
        }
        if (col_n == col_cap) {
            col_cap = col_cap ? col_cap * 2 : 1024;
            col_rows = realloc(col_rows, col_cap * sizeof(char *));
            col_sub = realloc(col_sub, col_cap * sizeof(uint32_t));
        }
        col_sub[col_n] = op->subtask;
        col_rows[col_n++] = canon(types, s->nfields, v);
    }
    pthread_mutex_unlock(&col_lock);
    lm_batch_free(b);
    return LM_OK;
}

static int
slow_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    int64_t *delay = malloc(sizeof(int64_t));
    int rv = lm_op_cfg_i64(def->config, "delay_us", 0, 0, 1000000, delay, err);
    if (rv != LM_OK) {
        free(delay);
        return rv;
    }
    *spec = delay;
    return LM_OK;
}

static void
slow_spec_free(void *spec)
{
    free(spec);
}

/* "fs_test_slow" sleeps per batch, holding its loop: a short sleep with
 * small batches keeps a job running long while control messages (to
 * the task manager on the same loop) still get through quickly. */
static int
slow_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const int64_t *delay = op->spec;
    struct timespec ts = {(time_t)(*delay / 1000000), (long)(*delay % 1000000) * 1000};
    (void)port;
    nanosleep(&ts, NULL);
    return lm_op_emit(op, b);
}

static const lm_op_kind rows_kind = {
    .name = "fs_test_rows",
    .prepare = noop_prepare,
    .open = noop_open,
    .produce = rows_produce,
};

static const lm_op_kind collect_kind = {
    .name = "fs_test_collect",
    .min_inputs = 1,
    .max_inputs = 1,
    .sink = true,
    .prepare = noop_prepare,
    .open = noop_open,
    .on_batch = collect_batch,
};

static const lm_op_kind slow_kind = {
    .name = "fs_test_slow",
    .min_inputs = 1,
    .max_inputs = 1,
    .prepare = slow_prepare,
    .spec_free = slow_spec_free,
    .open = noop_open,
    .on_batch = slow_batch,
};

static void
setup(void)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    lm_log_configure(&lo, NULL);
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
    lm_op_kind_register(&rows_kind);
    lm_op_kind_register(&collect_kind);
    lm_op_kind_register(&slow_kind);
    col_n = 0;
}

/* Forgets the rows collected so far. */
static void
collect_reset(void)
{
    for (size_t i = 0; i < col_n; i++) {
        free(col_rows[i]);
    }
    col_n = 0;
}

static void
teardown(void)
{
    lm_error err;
    lm_storage_remove_tree(dir, &err);
    collect_reset();
    free(col_rows);
    free(col_sub);
    col_rows = NULL;
    col_sub = NULL;
    col_cap = 0;
    lm_msg_pool_trim();
}

/* --- helpers -------------------------------------------------------------- */

#define VNULL                                                                                      \
    {                                                                                              \
        .is_null = true                                                                            \
    }
#define VB(x)                                                                                      \
    {                                                                                              \
        .v.b = (x)                                                                                 \
    }
#define VI(x)                                                                                      \
    {                                                                                              \
        .v.i = (x)                                                                                 \
    }
#define VF(x)                                                                                      \
    {                                                                                              \
        .v.f = (x)                                                                                 \
    }
#define VS(lit)                                                                                    \
    {                                                                                              \
        .v.s = {(lit), sizeof(lit) - 1 }                                                           \
    }

/* b bool, i int64 (not nullable), f float64, t timestamp, s utf8, x binary */
#define ALL_SCHEMA                                                                                 \
    "[{\"name\": \"b\", \"type\": \"bool\"}, {\"name\": \"i\", \"type\": \"int64\", "              \
    "\"nullable\": "                                                                               \
    "false}, {\"name\": \"f\", \"type\": \"float64\"}, {\"name\": \"t\", \"type\": "               \
    "\"timestamp\"}, {\"name\": \"s\", \"type\": \"utf8\"}, {\"name\": \"x\", \"type\": "          \
    "\"binary\"}]"
static const lm_type all_types[] = {LM_TYPE_BOOL,      LM_TYPE_INT64, LM_TYPE_FLOAT64,
                                    LM_TYPE_TIMESTAMP, LM_TYPE_UTF8,  LM_TYPE_BINARY};

/* i int64 (not nullable), s utf8 */
#define IS_SCHEMA                                                                                  \
    "[{\"name\": \"i\", \"type\": \"int64\", \"nullable\": false}, {\"name\": \"s\", \"type\": "   \
    "\"utf8\"}]"
static const lm_type is_types[] = {LM_TYPE_INT64, LM_TYPE_UTF8};

static void
write_file(const char *name, const char *text, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

#define WRITE(name, lit) write_file((name), (lit), sizeof(lit) - 1)

/* Runs file_source (config cfg, schema, parallelism par) into the collect
 * sink; returns the job's result. */
static lm_job_result
run_source(const char *cfg, const char *schema, int par, int batch_rows)
{
    char *plan;
    lm_job_result res;
    lm_error err;

    ck_assert_int_gt(asprintf(&plan,
                              "{\"batch_rows\": %d, \"operators\": ["
                              "{\"id\": \"src\", \"kind\": \"file_source\", \"parallelism\": %d, "
                              "\"config\": {%s}, \"schema\": %s},"
                              "{\"id\": \"out\", \"kind\": \"fs_test_collect\", \"parallelism\": "
                              "%d}], \"edges\": [{\"from\": \"src\", \"to\": \"out\"}]}",
                              batch_rows, par, cfg, schema, par),
                     0);
    ck_assert_msg(lm_test_run_plan(plan, 2, NULL, NULL, &res, &err) == LM_OK, "%s", err.msg);
    free(plan);
    return res;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The collected rows equal the expected rows (n of them, nf fields each)
 * as multisets. */
static void
expect_rows(const lm_type *types, uint32_t nf, const lm_value *rows, size_t n)
{
    char **want = calloc(n + 1, sizeof(char *));

    for (size_t r = 0; r < n; r++) {
        want[r] = canon(types, nf, rows + r * nf);
    }
    qsort(want, n, sizeof(char *), cmp_str);
    qsort(col_rows, col_n, sizeof(char *), cmp_str);
    for (size_t r = 0; r < n && r < col_n; r++) {
        ck_assert_msg(strcmp(want[r], col_rows[r]) == 0, "row %zu: want %s, got %s", r, want[r],
                      col_rows[r]);
    }
    ck_assert_msg(col_n == n, "got %zu rows, want %zu", col_n, n);
    for (size_t r = 0; r < n; r++) {
        free(want[r]);
    }
    free(want);
}

static void
expect_failure(lm_job_result res, const char *needle1, const char *needle2)
{
    ck_assert_msg(res.state == LM_JOB_FAILED, "job did not fail (state %d): %s", res.state,
                  res.reason);
    ck_assert_msg(strstr(res.reason, needle1) != NULL, "'%s' lacks '%s'", res.reason, needle1);
    ck_assert_msg(needle2 == NULL || strstr(res.reason, needle2) != NULL, "'%s' lacks '%s'",
                  res.reason, needle2);
}

/* --- the parsers ---------------------------------------------------------- */

static int64_t
ts_ok(const char *s)
{
    int64_t us = 0;
    lm_error err;
    ck_assert_msg(lm_rowfmt_parse_timestamp(s, strlen(s), &us, &err) == LM_OK, "%s: %s", s,
                  err.msg);
    return us;
}

static void
ts_bad(const char *s, const char *needle)
{
    int64_t us;
    lm_error err;
    ck_assert_msg(lm_rowfmt_parse_timestamp(s, strlen(s), &us, &err) == LM_EINVAL, "parsed '%s'",
                  s);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s' lacks '%s'", err.msg, needle);
}

START_TEST(test_file_source_timestamp_parser)
{
    ck_assert_int_eq(ts_ok("1970-01-01 00:00:00.000000"), 0);
    ck_assert_int_eq(ts_ok("1969-12-31 23:59:59.999999"), -1);
    ck_assert_int_eq(ts_ok("2023-11-14 22:13:20.123456"), 1700000000123456);
    ck_assert_int_eq(ts_ok("2023-11-14T22:13:20Z"), 1700000000000000);
    ck_assert_int_eq(ts_ok("2023-11-14T22:13:20.5"), 1700000000500000);
    ck_assert_int_eq(ts_ok("2023-11-14 22:13:20.1234567"), 1700000000123456); /* truncated */
    ck_assert_int_eq(ts_ok("1969-12-31 23:59:59.9999999"), -1);
    ck_assert_int_eq(ts_ok("2023-11-14"), 1699920000000000);
    ck_assert_int_eq(ts_ok("2023-11-14T23:13:20+01:00"), 1700000000000000);
    ck_assert_int_eq(ts_ok("2023-11-14T21:43:20-0030"), 1700000000000000);
    ck_assert_int_eq(ts_ok("2024-02-29 00:00:00"), 1709164800000000);
    ck_assert_int_eq(ts_ok("0001-01-01 00:00:00"), -62135596800000000);
    ck_assert_int_eq(ts_ok("9999-12-31 23:59:59.999999"), 253402300799999999);
    ts_bad("2023-02-29", "no such date");
    ts_bad("1900-02-29 00:00:00", "no such date");
    ts_bad("2023-13-01", "no such date");
    ts_bad("2023-11-14 24:00:00", "no such date or time");
    ck_assert_int_eq(ts_ok("2023-11-14 22:13"), ts_ok("2023-11-14 22:13:00"));
    ts_bad("2023-11-14 22:13:20.", "'2023-11-14 22:13:20.'");
    ts_bad("2023-11-14x", "expected a timestamp");
    ts_bad(" 2023-11-14", "expected a timestamp");
    ts_bad("2023-11-14T22:13:20+1", "expected a timestamp");
    ts_bad("2023-11-14T22:13:20+25:00", "no such date or time");
    ts_bad("2023-11-14 22:13:20 ", "expected a timestamp");
    ts_bad("", "expected a timestamp");
    ts_bad("yesterday", "'yesterday'");
}
END_TEST

/* Formatting then parsing gives back the same value, over a wide spread. */
START_TEST(test_file_source_parsers_invert_the_formatters)
{
    uint64_t x = 88172645463325252ull;
    char buf[64];
    lm_error err;

    for (int k = 0; k < 200000; k++) {
        int64_t us, back = 0;
        double d, dback = 0;
        uint64_t bits;
        int n;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* timestamps over years 0001-9999 */
        us = -62135596800000000 + (int64_t)(x % (253402300799999999ull + 62135596800000000ull));
        n = lm_format_timestamp(us, buf, sizeof(buf));
        ck_assert_msg(lm_rowfmt_parse_timestamp(buf, (size_t)n, &back, &err) == LM_OK, "%s: %s",
                      buf, err.msg);
        ck_assert_msg(back == us, "%s: %" PRId64 " != %" PRId64, buf, back, us);
        /* any finite double */
        bits = x * 0x9e3779b97f4a7c15ull;
        memcpy(&d, &bits, sizeof(d));
        if (!isfinite(d)) {
            continue;
        }
        n = lm_format_double(d, buf, sizeof(buf));
        ck_assert_msg(lm_rowfmt_parse_double(buf, (size_t)n, &dback, &err) == LM_OK, "%s: %s", buf,
                      err.msg);
        ck_assert_msg(memcmp(&d, &dback, sizeof(d)) == 0, "%s: %a != %a", buf, dback, d);
    }
}
END_TEST

START_TEST(test_file_source_scalar_parsers)
{
    int64_t i = 0;
    double d = 0;
    bool b = false;
    uint8_t bin[8];
    char hex[] = "00ff10Ab";
    lm_value v;
    lm_error err;

#define I_OK(s, want)                                                                              \
    ck_assert_int_eq(lm_rowfmt_parse_int64(s, strlen(s), &i, &err), LM_OK);                        \
    ck_assert_int_eq(i, want)
#define I_BAD(s, code) ck_assert_int_eq(lm_rowfmt_parse_int64(s, strlen(s), &i, &err), code)
    I_OK("0", 0);
    I_OK("+5", 5);
    I_OK("-17", -17);
    I_OK("9223372036854775807", INT64_MAX);
    I_OK("-9223372036854775808", INT64_MIN);
    I_BAD("9223372036854775808", LM_ERANGE);
    ck_assert_msg(strstr(err.msg, "out of range") != NULL, "%s", err.msg);
    I_BAD("-9223372036854775809", LM_ERANGE);
    I_BAD("", LM_EINVAL);
    I_BAD("-", LM_EINVAL);
    I_BAD("5 ", LM_EINVAL);
    I_BAD(" 5", LM_EINVAL);
    I_BAD("1e3", LM_EINVAL);
    I_BAD("0x10", LM_EINVAL);
    I_BAD("abc", LM_EINVAL);
    ck_assert_str_eq(err.msg, "expected int64, got 'abc'");

#define D_OK(s, want)                                                                              \
    ck_assert_int_eq(lm_rowfmt_parse_double(s, strlen(s), &d, &err), LM_OK);                       \
    ck_assert_msg(d == (want), "%s: %a", s, d)
#define D_BAD(s, code) ck_assert_int_eq(lm_rowfmt_parse_double(s, strlen(s), &d, &err), code)
    D_OK("0.1", 0.1);
    D_OK("1e300", 1e300);
    D_OK("-2.5E-3", -2.5e-3);
    D_OK(".5", 0.5);
    D_OK("5.", 5.0);
    D_OK("-inf", -INFINITY);
    D_OK("Infinity", INFINITY);
    D_OK("1e-320", 1e-320); /* subnormal, not an error */
    ck_assert_int_eq(lm_rowfmt_parse_double("nan", 3, &d, &err), LM_OK);
    ck_assert(isnan(d));
    ck_assert_int_eq(lm_rowfmt_parse_double("-0", 2, &d, &err), LM_OK);
    ck_assert(d == 0 && signbit(d));
    D_BAD("1e400", LM_ERANGE);
    D_BAD("abc", LM_EINVAL);
    D_BAD("0x1p3", LM_EINVAL);
    D_BAD("1e", LM_EINVAL);
    D_BAD(" 1", LM_EINVAL);
    D_BAD("", LM_EINVAL);
    D_BAD(".", LM_EINVAL);
    D_BAD("nan(1)", LM_EINVAL);

    ck_assert_int_eq(lm_rowfmt_parse_bool("true", 4, &b, &err), LM_OK);
    ck_assert(b);
    ck_assert_int_eq(lm_rowfmt_parse_bool("FALSE", 5, &b, &err), LM_OK);
    ck_assert(!b);
    ck_assert_int_eq(lm_rowfmt_parse_bool("yes", 3, &b, &err), LM_OK);
    ck_assert(b);
    ck_assert_int_eq(lm_rowfmt_parse_bool("0", 1, &b, &err), LM_OK);
    ck_assert(!b);
    ck_assert_int_eq(lm_rowfmt_parse_bool("Off", 3, &b, &err), LM_OK);
    ck_assert(!b);
    ck_assert_int_eq(lm_rowfmt_parse_bool("maybe", 5, &b, &err), LM_EINVAL);
    ck_assert_int_eq(lm_rowfmt_parse_bool("2", 1, &b, &err), LM_EINVAL);
    ck_assert_int_eq(lm_rowfmt_parse_bool("", 0, &b, &err), LM_EINVAL);

    ck_assert_int_eq(lm_rowfmt_parse_hex("00ff10Ab", 8, bin, &err), LM_OK);
    ck_assert(memcmp(bin, "\x00\xff\x10\xab", 4) == 0);
    ck_assert_int_eq(lm_rowfmt_parse_hex(hex, 8, (uint8_t *)hex, &err), LM_OK); /* in place */
    ck_assert(memcmp(hex, "\x00\xff\x10\xab", 4) == 0);
    ck_assert_int_eq(lm_rowfmt_parse_hex("abc", 3, bin, &err), LM_EINVAL);
    ck_assert_int_eq(lm_rowfmt_parse_hex("zz", 2, bin, &err), LM_EINVAL);

    /* by type */
    ck_assert_int_eq(lm_rowfmt_parse_value(LM_TYPE_TIMESTAMP, "1700000000123", 13, NULL, &v, &err),
                     LM_OK);
    ck_assert_int_eq(v.v.i, 1700000000123000); /* an integer: milliseconds */
    ck_assert_int_eq(lm_rowfmt_parse_value(LM_TYPE_TIMESTAMP, "-1", 2, NULL, &v, &err), LM_OK);
    ck_assert_int_eq(v.v.i, -1000);
    ck_assert_int_eq(
        lm_rowfmt_parse_value(LM_TYPE_TIMESTAMP, "99999999999999999", 17, NULL, &v, &err),
        LM_ERANGE);
    ck_assert_int_eq(lm_rowfmt_parse_value(LM_TYPE_UTF8, "h\xc3\xa9llo", 6, NULL, &v, &err), LM_OK);
    ck_assert(!v.is_null && v.v.s.len == 6);
    ck_assert_int_eq(lm_rowfmt_parse_value(LM_TYPE_UTF8, "a\xff", 2, NULL, &v, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "invalid UTF-8");
    ck_assert_int_eq(lm_rowfmt_parse_value(LM_TYPE_BINARY, "0a0b", 4, bin, &v, &err), LM_OK);
    ck_assert(v.v.s.ptr == bin && v.v.s.len == 2 && bin[0] == 10 && bin[1] == 11);
    ck_assert_int_eq(lm_rowfmt_parse_value(LM_TYPE_INT64, "12x", 3, NULL, &v, &err), LM_EINVAL);
    ck_assert_str_eq(err.msg, "expected int64, got '12x'");
    ck_assert_int_eq(lm_rowfmt_parse_value(LM_TYPE_BOOL, "true", 4, NULL, &v, &err), LM_OK);
    ck_assert(v.v.b && !v.is_null);
}
END_TEST

/* --- round trips ---------------------------------------------------------- */

/* Runs fs_test_rows -> file_sink (format fmt) into dir/written. */
static void
write_with_file_sink(const char *fmt, const lm_value *rows, size_t n)
{
    char *plan;
    lm_job_result res;
    lm_error err;

    src_rows = rows;
    src_nrows = n;
    ck_assert_int_gt(asprintf(&plan,
                              "{\"operators\": [{\"id\": \"gen\", \"kind\": \"fs_test_rows\", "
                              "\"schema\": " ALL_SCHEMA "}, {\"id\": \"w\", \"kind\": "
                              "\"file_sink\", \"config\": {\"path\": \"%s/written\", \"format\": "
                              "\"%s\"}}], \"edges\": [{\"from\": \"gen\", \"to\": \"w\"}]}",
                              dir, fmt),
                     0);
    ck_assert_msg(lm_test_run_plan(plan, 1, NULL, NULL, &res, &err) == LM_OK, "%s", err.msg);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "writing: %s", res.reason);
    free(plan);
}

#define NUL_STR "quote \" backslash \\ newline \n tab \t cr \r nul \0 comma , end"
#define UNI_STR "unicode: \xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\x98\x80"

/* Rows both formats carry exactly. */
static const lm_value common_rows[][6] = {
    {VB(true), VI(0), VF(0.1), VI(0), VS("plain"), VS("\x00\xff\x10")},
    {VB(false), VI(INT64_MIN), VF(1e300), VI(-1), VS(NUL_STR), VS("")},
    {VNULL, VI(INT64_MAX), VF(-2.5e-308), VI(1700000000123456), VS(UNI_STR), VNULL},
    {VNULL, VI(-1), VNULL, VNULL, VNULL, VNULL},
    {VB(true), VI(42), VF(5.0), VI(-62135596800000000), VS(""), VS("\x01")},
    {VB(false), VI(-9007199254740993), VF(1.2345678901234568e+20), VI(253402300799999999),
     VS("line1\nline2\r\n\"quoted\",x"), VS("\xde\xad\xbe\xef")},
    {VB(true), VI(7), VF(-1e-7), VI(1000), VS("\""), VS("\x00")},
    {VB(true), VI(8), VF(9.2233720368547758e18), VI(-86400000001), VS(","), VNULL},
};

START_TEST(test_file_source_json_round_trip)
{
    lm_job_result res;
    char cfg[512];
    size_t n = sizeof(common_rows) / sizeof(common_rows[0]);

    write_with_file_sink("json", &common_rows[0][0], n);
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/written\", \"format\": \"json\"", dir);
    res = run_source(cfg, ALL_SCHEMA, 1, 3);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(all_types, 6, &common_rows[0][0], n);
}
END_TEST

START_TEST(test_file_source_csv_round_trip)
{
    /* CSV also carries NaN, infinities and the sign of zero. */
    static const lm_value csv_only[][6] = {
        {VB(true), VI(100), VF(NAN), VI(5), VS("a"), VS("b")},
        {VB(true), VI(101), VF(INFINITY), VI(5), VS("a,b"), VS("")},
        {VB(true), VI(102), VF(-INFINITY), VI(5), VS(" lead and trail "), VS("")},
        {VB(true), VI(103), VF(-0.0), VI(5), VS("\"\""), VS("")},
    };
    size_t nc = sizeof(common_rows) / sizeof(common_rows[0]), no = 4;
    lm_value *rows = malloc((nc + no) * 6 * sizeof(lm_value));
    lm_job_result res;
    char cfg[512];

    memcpy(rows, common_rows, sizeof(common_rows));
    memcpy(rows + nc * 6, csv_only, sizeof(csv_only));
    write_with_file_sink("csv", rows, nc + no);
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/written\", \"format\": \"csv\"", dir);
    res = run_source(cfg, ALL_SCHEMA, 1, 4096);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(all_types, 6, rows, nc + no);
    /* the sign of zero survived (canon prints it: -0x0p+0) */
    {
        bool seen = false;
        for (size_t r = 0; r < col_n; r++) {
            seen |= strstr(col_rows[r], "|-0x0p+0|") != NULL;
        }
        ck_assert(seen);
    }
    free(rows);
}
END_TEST

/* --- reading JSON lines --------------------------------------------------- */

/* The other forms a JSON value may take; blank lines, CRLF, a byte order
 * mark, fields not in the schema, a last line without a line end; read 5
 * bytes at a time so records cross every kind of chunk boundary. */
START_TEST(test_file_source_json_value_forms)
{
    static const char text[] =
        "\xef\xbb\xbf{\"i\": 1, \"t\": 1700000000123, \"f\": 3, \"b\": true}\r\n"
        "\n"
        "   \t \r\n"
        "{\"extra\": {\"nested\": [1, 2]}, \"i\": 1e3, \"t\": \"2023-11-14T22:13:20Z\", \"x\": "
        "\"ABcd\"}\n"
        "{\"i\": -2.0, \"t\": \"2023-11-14\", \"s\": \"esc \\u00e9\\n\\u0000\\\"\"}\n"
        "{\"i\": 3, \"t\": \"2023-11-14T23:13:20.25+01:00\", \"f\": null, \"s\": null}\n"
        "{\"i\": 4, \"f\": -1.5e-3, \"b\": false}";
    static const lm_value want[][6] = {
        {VB(true), VI(1), VF(3.0), VI(1700000000123000), VNULL, VNULL},
        {VNULL, VI(1000), VNULL, VI(1700000000000000), VNULL, VS("\xab\xcd")},
        {VNULL, VI(-2), VNULL, VI(1699920000000000), VS("esc \xc3\xa9\n\0\""), VNULL},
        {VNULL, VI(3), VNULL, VI(1700000000250000), VNULL, VNULL},
        {VB(false), VI(4), VF(-1.5e-3), VNULL, VNULL, VNULL},
    };
    lm_job_result res;
    char cfg[512];

    WRITE("forms.json", text);
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/forms.json\", \"read_bytes\": 5", dir);
    res = run_source(cfg, ALL_SCHEMA, 1, 2);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(all_types, 6, &want[0][0], 5);
}
END_TEST

/* A record far longer than a read (3 MiB with 1 MiB reads) still works,
 * in both formats; files with nothing in them give nothing. */
START_TEST(test_file_source_long_records_and_empty_files)
{
    size_t big = 3u << 20;
    char *s = malloc(big + 1), *text = malloc(big + 256);
    lm_value want[2][2] = {{VI(1), {.v.s = {s, (uint32_t)big}}}, {VI(2), VS("after")}};
    lm_job_result res;
    char cfg[512];
    int n;

    for (size_t k = 0; k < big; k++) {
        s[k] = (char)('a' + k % 26);
    }
    s[big] = '\0';
    n = snprintf(text, big + 256, "{\"i\": 1, \"s\": \"%s\"}\n{\"i\": 2, \"s\": \"after\"}\n", s);
    mkdir(strcat(strcpy(cfg, dir), "/j"), 0755);
    write_file("j/big.json", text, (size_t)n);
    write_file("j/empty.json", "", 0);
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/j\"", dir);
    res = run_source(cfg, IS_SCHEMA, 1, 4096);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(is_types, 2, &want[0][0], 2);

    /* CSV: the long value quoted, with a line break inside */
    collect_reset();
    s[1000] = '\n';
    want[0][1].v.s.ptr = s;
    n = snprintf(text, big + 256, "s,i\r\n\"%s\",1\r\nafter,2\r\n", s);
    mkdir(strcat(strcpy(cfg, dir), "/c"), 0755);
    write_file("c/big.csv", text, (size_t)n);
    write_file("c/empty.csv", "", 0);
    write_file("c/header_only.csv", "i,s\n", 4);
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/c\", \"format\": \"csv\"", dir);
    res = run_source(cfg, IS_SCHEMA, 1, 4096);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(is_types, 2, &want[0][0], 2);
    free(s);
    free(text);
}
END_TEST

/* --- reading CSV ---------------------------------------------------------- */

START_TEST(test_file_source_csv_by_position)
{
    /* CRLF, quoted commas, doubled quotes and line breaks, "" versus an
     * empty field, a last record without a line end; 3-byte reads. */
    static const char text[] = "true,1,0.5,2023-11-14 22:13:20.000001,hello,00ff\r\n"
                               ",2,,,\"\",\r\n"
                               "false,3,-1e3,1700000000000,\"a,b \"\"c\"\"\r\nd\",\"0A\"\r\n"
                               "TRUE,4,inf,2023-11-14,,\n"
                               "false,5,1,1969-12-31T23:59:59.5Z,\"\"\"\",";
    static const lm_value want[][6] = {
        {VB(true), VI(1), VF(0.5), VI(1700000000000001), VS("hello"), VS("\x00\xff")},
        {VNULL, VI(2), VNULL, VNULL, VS(""), VNULL},
        {VB(false), VI(3), VF(-1e3), VI(1700000000000000), VS("a,b \"c\"\r\nd"), VS("\x0a")},
        {VB(true), VI(4), VF(INFINITY), VI(1699920000000000), VNULL, VNULL},
        {VB(false), VI(5), VF(1), VI(-500000), VS("\""), VNULL},
    };
    lm_job_result res;
    char cfg[512];

    WRITE("pos.csv", text);
    snprintf(cfg, sizeof(cfg),
             "\"path\": \"%s/pos.csv\", \"format\": \"csv\", \"csv_header\": false, "
             "\"read_bytes\": 3",
             dir);
    res = run_source(cfg, ALL_SCHEMA, 1, 2);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(all_types, 6, &want[0][0], 5);
}
END_TEST

START_TEST(test_file_source_csv_header_by_name)
{
    /* columns in another order, an extra one, a quoted header name */
    static const char text[] = "extra,\"s\",x,t,f,i,b\n"
                               "ignored,one,01,2023-11-14,1.5,1,true\n"
                               "\"ignored, too\",,,,,2,\n";
    static const lm_value want[][6] = {
        {VB(true), VI(1), VF(1.5), VI(1699920000000000), VS("one"), VS("\x01")},
        {VNULL, VI(2), VNULL, VNULL, VNULL, VNULL},
    };
    lm_job_result res;
    char cfg[512];

    WRITE("named.csv", text);
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/named.csv\", \"format\": \"csv\"", dir);
    res = run_source(cfg, ALL_SCHEMA, 1, 4096);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(all_types, 6, &want[0][0], 2);

    /* a schema column the header lacks fails the job, whatever the policy */
    WRITE("lacks.csv", "s,x,t,f,b\none,01,2023-11-14,1.5,true\n");
    snprintf(cfg, sizeof(cfg),
             "\"path\": \"%s/lacks.csv\", \"format\": \"csv\", \"bad_lines\": \"drop\"", dir);
    expect_failure(run_source(cfg, ALL_SCHEMA, 1, 4096),
                   "lacks.csv:1: the CSV header has no "
                   "column \"i\"",
                   "operator 'src' subtask 0");
    WRITE("twice.csv", "i,s,i\n1,a,1\n");
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/twice.csv\", \"format\": \"csv\"", dir);
    expect_failure(run_source(cfg, IS_SCHEMA, 1, 4096), "twice.csv:1: column \"i\" appears twice",
                   NULL);
}
END_TEST

/* --- bad lines ------------------------------------------------------------ */

typedef struct bad_case {
    const char *file;   /* name */
    const char *text;   /* content */
    const char *cfg;    /* extra config */
    const char *needle; /* in the reason */
} bad_case;

START_TEST(test_file_source_bad_lines_fail_the_job)
{
    static const bad_case cases[] = {
        {"a.json", "{\"i\": 1}\n{\"i\": 2}\n{\"i\": 3,}\n{\"i\": 4}\n", "",
         "a.json:3: invalid JSON at column"},
        {"b.json",
         "{\"i\": 1}\n{\"i\": 2}\n{\"i\": 3}\n{\"i\": 4}\n{\"i\": 5}\n{\"i\": 6}\n{\"i\": 7}\n"
         "{\"i\": 8}\n{\"i\": 9}\n{\"i\": 10}\n{\"i\": 11}\n{\"i\": 12}\n{\"i\": 13}\n"
         "{\"i\": 14}\n{\"i\": 15}\n{\"i\": 16}\n{\"i\": \"abc\"}\n",
         "", "b.json:17: field \"i\": expected int64, got string \"abc\""},
        {"c.json", "{\"i\": 1}\n\n{\"s\": \"no i\"}\n", "",
         "c.json:3: field \"i\": missing but the column is not nullable"},
        {"d.json", "{\"i\": null}\n", "", "d.json:1: field \"i\": null but the column"},
        {"e.json", "{\"i\": 1}\r\n[1, 2]\r\n", "",
         "e.json:2: expected a JSON object, got an array"},
        {"f.json", "{\"i\": 1e19}\n", "", "f.json:1: field \"i\": expected int64 (out of range)"},
        {"g.json", "{\"i\": 1.5}\n", "", "g.json:1: field \"i\": expected int64, got number 1.5"},
        {"h.json", "{\"i\": 99999999999999999999}\n", "", "h.json:1: invalid JSON"},
        {"i.json", "{\"i\": 1, \"s\": 5}\n", "",
         "i.json:1: field \"s\": expected utf8, got number 5"},
        {"j.json", "{\"i\": 1, \"s\": \"\xff\"}\n", "", "j.json:1: invalid JSON"},
        {"k.json", "{\"i\": 1}\n{\"i\": 2, \"s\": \"0123456789012345678901234567890123456789\"}\n",
         ", \"max_record_bytes\": 40", "k.json:2: record longer than 40 bytes"},
        {"l.csv", "i,s\n1,a\n2,\"unterminated\n3,c\n", ", \"format\": \"csv\"",
         "l.csv:3: unterminated quoted field at the end of the file"},
        {"m.csv", "i,s\n1,\"two\nlines\"\nx,y\n", ", \"format\": \"csv\"",
         "m.csv:4: field \"i\": expected int64, got 'x'"},
        {"n.csv", "1,a\n2,b,c\n", ", \"format\": \"csv\", \"csv_header\": false",
         "n.csv:2: expected 2 fields, got 3"},
        {"o.csv", "i,s\n1,ab\"c\n", ", \"format\": \"csv\"", "o.csv:2: field 2: a quote inside"},
        {"p.csv", "i,s\n1,\"ab\"c\n", ", \"format\": \"csv\"",
         "p.csv:2: field 2: unexpected character after a closing quote"},
        {"q.csv", "i,s\n1,\xc3\x28\n", ", \"format\": \"csv\"",
         "q.csv:2: field \"s\": invalid UTF-8"},
        {"r.csv", "i,s\n,a\n", ", \"format\": \"csv\"",
         "r.csv:2: field \"i\": empty (null) but the column is not nullable"},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char cfg[512];
        collect_reset();
        write_file(cases[k].file, cases[k].text, strlen(cases[k].text));
        snprintf(cfg, sizeof(cfg), "\"path\": \"%s/%s\"%s", dir, cases[k].file, cases[k].cfg);
        expect_failure(run_source(cfg, IS_SCHEMA, 1, 4096), cases[k].needle,
                       "operator 'src' subtask 0: /");
    }
}
END_TEST

static char *
read_text(const char *path)
{
    uint8_t *buf;
    size_t len;
    lm_error err;
    char *s;

    ck_assert_msg(lm_storage_read(path, &buf, &len, &err) == LM_OK, "%s", err.msg);
    s = malloc(len + 1);
    memcpy(s, buf, len);
    s[len] = '\0';
    free(buf);
    return s;
}

static int
count_substr(const char *s, const char *needle)
{
    int n = 0;
    while ((s = strstr(s, needle)) != NULL) {
        n++;
        s++;
    }
    return n;
}

/* With "drop", every good line comes out and the bad ones are counted:
 * the first 10 logged with file:line and why, then the total. (The
 * operator's bad_rows counter is not reported outside the subtask yet; the
 * log is how a test, and a user, sees it.) */
START_TEST(test_file_source_bad_lines_dropped_and_counted)
{
    static const char text[] =
        "{\"i\": 1, \"s\": \"a\"}\n"                                                   /* 1 */
        "{\"i\": \"x\"}\n"                                                             /* 2 bad */
        "not json\n"                                                                   /* 3 bad */
        "{\"i\": 2, \"s\": \"b\"}\n"                                                   /* 4 */
        "{\"s\": \"no i\"}\n"                                                          /* 5 bad */
        "{\"i\": 3, \"s\": \"this line is far too long for the limit of 64 bytes\"}\n" /* 6 bad */
        "{\"i\": 4}\n"                                                                 /* 7 */
        "[]\n"                                                                         /* 8 bad */
        "\n"                                                                           /* 9 blank */
        "{\"i\": 5.5}\n"                                                               /* 10 bad */
        "{\"i\": 5, \"s\": null}\n"                                                    /* 11 */
        "{\"i\": 6, \"s\": 6}\n"                                                       /* 12 bad */
        "{\"i\": 7, \"i\": 8}\n"                                                       /* 13 bad */
        "{\"i\": 9, \"s\": \"\xf0\x28\"}\n"                                            /* 14 bad */
        "{\"i\": 1e30}\n"                                                              /* 15 bad */
        "{\"i\": true}\n"                                                              /* 16 bad */
        "{\"i\": 10, \"s\": \"c\"}\n"                                                  /* 17 */
        "{\"i\": null}\n"                                                              /* 18 bad */
        "{\"i\": 11, \"s\": \"d\"}"; /* 19, no line end */
    static const lm_value want[][2] = {
        {VI(1), VS("a")}, {VI(2), VS("b")},  {VI(4), VNULL},
        {VI(5), VNULL},   {VI(10), VS("c")}, {VI(11), VS("d")},
    };
    lm_log_opts lo = {LM_LOG_WARN, LM_LOG_TEXT, false, false, NULL};
    char logpath[300], cfg[512];
    lm_job_result res;
    lm_error err;
    char *log;

    snprintf(logpath, sizeof(logpath), "%s/log.txt", dir);
    lo.file = logpath;
    ck_assert_int_eq(lm_log_configure(&lo, &err), LM_OK);
    WRITE("drop.json", text);
    snprintf(cfg, sizeof(cfg),
             "\"path\": \"%s/drop.json\", \"bad_lines\": \"drop\", \"max_record_bytes\": 64, "
             "\"read_bytes\": 7",
             dir);
    res = run_source(cfg, IS_SCHEMA, 1, 2);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(is_types, 2, &want[0][0], 6);
    log = read_text(logpath);
    ck_assert_int_eq(count_substr(log, "dropped bad line"), 10);
    ck_assert_msg(strstr(log, "drop.json:2: field \"i\": expected int64, got string \"x\"") != NULL,
                  "%s", log);
    ck_assert_msg(strstr(log, "drop.json:3: invalid JSON") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "drop.json:6: record longer than 64 bytes") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "drop.json:13: invalid JSON") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "drop.json:16:") == NULL, "logged more than 10: %s", log);
    ck_assert_msg(strstr(log, "further bad lines are counted, not logged") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "file_source 'src' subtask 0: 12 bad lines dropped in all") != NULL,
                  "%s", log);
    free(log);
}
END_TEST

START_TEST(test_file_source_csv_bad_lines_dropped)
{
    static const char text[] = "i,s\n"
                               "1,a\n"
                               "x,b\n" /* bad */
                               "2,\"two\nlines\"\n"
                               "3,c,extra\n" /* bad */
                               "4,ab\"c\n"   /* bad */
                               "\n"          /* blank */
                               "5,\"e\"\n"
                               "6,\"open\n" /* bad: never closed */
                               "7,g\n";
    static const lm_value want[][2] = {
        {VI(1), VS("a")}, {VI(2), VS("two\nlines")}, {VI(5), VS("e")}};
    lm_job_result res;
    char cfg[512];

    WRITE("drop.csv", text);
    snprintf(cfg, sizeof(cfg),
             "\"path\": \"%s/drop.csv\", \"format\": \"csv\", \"bad_lines\": \"drop\"", dir);
    res = run_source(cfg, IS_SCHEMA, 1, 4096);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_rows(is_types, 2, &want[0][0], 3);
}
END_TEST

/* --- directories and parallelism ------------------------------------------ */

START_TEST(test_file_source_directory_at_parallelism_2)
{
    static const int sizes[] = {1000, 0, 2500, 1, 777}; /* rows per file */
    lm_value *want = malloc(5000 * 2 * sizeof(lm_value));
    char(*names)[16] = malloc(5000 * 16);
    char path[512], cfg[512];
    lm_job_result res;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/in", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/in/sub", dir);
    mkdir(path, 0755); /* a directory inside: skipped */
    WRITE("in/.hidden", "not json at all\n");
    WRITE("in/sub/deep.json", "{\"i\": -1}\n");
    for (int k = 0; k < 5; k++) {
        char name[64];
        lm_buf b;
        lm_buf_init(&b);
        for (int r = 0; r < sizes[k]; r++) {
            int id = k * 10000 + r;
            lm_buf_printf(&b, "{\"i\": %d, \"s\": \"f%d\"}\n", id, k);
            snprintf(names[n], 16, "f%d", k);
            want[2 * n] = (lm_value){.v.i = id};
            want[2 * n + 1] = (lm_value){.v.s = {names[n], 2}};
            n++;
        }
        /* named so that name order differs from creation order */
        snprintf(name, sizeof(name), "in/part-%c.json", "ecabd"[k]);
        write_file(name, b.p != NULL ? b.p : "", b.len);
        lm_buf_fini(&b);
    }
    snprintf(cfg, sizeof(cfg), "\"path\": \"file://%s/in\"", dir);
    res = run_source(cfg, IS_SCHEMA, 2, 100);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    /* which subtask read each row: file k in name order goes to k % 2;
     * in name order the files are a(k=2) b(k=3) c(k=1) d(k=4) e(k=0) */
    {
        static const int order_of_k[] = {4, 2, 0, 1, 3}; /* position of file k in name order */
        for (size_t r = 0; r < col_n; r++) {
            long long id = strtoll(col_rows[r], NULL, 10);
            int k = (int)(id / 10000);
            ck_assert_msg(col_sub[r] == (uint32_t)(order_of_k[k] % 2),
                          "row %lld of file %d read by subtask %u", id, k, col_sub[r]);
        }
    }
    expect_rows(is_types, 2, want, n);
    free(want);
    free(names);
}
END_TEST

/* --- checkpoints ---------------------------------------------------------- */

/* Rows per file: subtask 0 reads files 0, 2, 4 and subtask 1 files 1, 3,
 * 5 (about 1000 batches of 4 rows each, at 1 ms a batch); the first ones
 * end before the checkpoint, the last ones start after it. */
static const int ck_sizes[] = {60, 60, 4000, 4000, 50, 0};
#define CK_FILES 6
#define CK_TOTAL 8170

/* The name of row id, with a comma in some and a line break in others. */
static void
ck_name(int id, char *buf, size_t cap, bool json)
{
    if (id % 11 == 0) {
        snprintf(buf, cap, json ? "n\\n%d" : "n\n%d", id);
    } else if (id % 7 == 0) {
        snprintf(buf, cap, "n,%d", id);
    } else {
        snprintf(buf, cap, "n%d", id);
    }
}

/* Writes the input files (JSON lines or CSV with a header naming the
 * columns in another order) and returns the expected output lines, as
 * file_sink writes them, sorted. */
static char **
ck_input(bool csv)
{
    char **want = malloc(CK_TOTAL * sizeof(char *));
    char path[512];
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/in", dir);
    mkdir(path, 0755);
    for (int k = 0; k < CK_FILES; k++) {
        char name[64];
        lm_buf b;
        lm_buf_init(&b);
        if (csv) {
            lm_buf_printf(&b, "s,i\r\n");
        }
        for (int r = 0; r < ck_sizes[k]; r++) {
            int id = (int)n;
            char nm[64], js[64];
            ck_name(id, nm, sizeof(nm), false);
            ck_name(id, js, sizeof(js), true);
            if (csv) {
                lm_buf_printf(&b, id % 7 == 0 || id % 11 == 0 ? "\"%s\",%d\r\n" : "%s,%d\r\n", nm,
                              id);
            } else {
                lm_buf_printf(&b, "{\"i\":%d,\"s\":\"%s\"}\n", id, js);
            }
            ck_assert_int_gt(asprintf(&want[n++], "{\"i\":%d,\"s\":\"%s\"}", id, js), 0);
        }
        snprintf(name, sizeof(name), "in/%d.%s", k, csv ? "csv" : "json");
        write_file(name, b.p != NULL ? b.p : "", b.len);
        lm_buf_fini(&b);
    }
    ck_assert_uint_eq(n, CK_TOTAL);
    qsort(want, n, sizeof(char *), cmp_str);
    return want;
}

static char *
ck_plan(bool csv)
{
    char *plan;
    ck_assert_int_gt(asprintf(&plan,
                              "{\"batch_rows\": 4, \"parallelism\": 2, \"operators\": ["
                              "{\"id\": \"src\", \"kind\": \"file_source\", \"config\": {\"path\": "
                              "\"%s/in\", \"format\": \"%s\"}, \"schema\": " IS_SCHEMA "},"
                              "{\"id\": \"slow\", \"kind\": \"fs_test_slow\", \"config\": "
                              "{\"delay_us\": %d}, \"schema\": " IS_SCHEMA "},"
                              "{\"id\": \"out\", \"kind\": \"file_sink\", \"config\": {\"path\": "
                              "\"%s/out\"}}],"
                              "\"edges\": [{\"from\": \"src\", \"to\": \"slow\"}, {\"from\": "
                              "\"slow\", \"to\": \"out\"}]}",
                              dir, csv ? "csv" : "json", 1000 * lm_test_slowdown(), dir),
                     0);
    return plan;
}

/* Runs the plan with checkpoints, takes one mid-way, then ends the job
 * (cancel, or stop with the checkpoint), restores from it into the same
 * output, and checks that the committed output is exactly the input. */
static void
checkpoint_and_restore(bool csv, bool stop)
{
    char **want = ck_input(csv);
    char *plan = ck_plan(csv);
    char ckpt[300], out[300];
    lm_rt_opts ro = {1, 2, 0, "test"};
    lm_job_opts jo = {.job_id = "fsrc"};
    lm_plan *p;
    lm_rt *rt;
    lm_addr tm;
    lm_job_handle *h;
    lm_job_result res;
    lm_error err;
    uint64_t epoch = 0;
    size_t n1, n;
    char **lines;

    snprintf(ckpt, sizeof(ckpt), "%s/ckpt", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    jo.checkpoint_dir = ckpt;
    ck_assert_int_eq(lm_plan_load_json(plan, strlen(plan), "fsrc", NULL, &p, &err), LM_OK);
    ck_assert_int_eq(lm_rt_new(&ro, &rt), LM_OK);
    ck_assert_int_eq(lm_taskmgr_spawn(rt, &tm), LM_OK);
    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    usleep(200000);
    ck_assert_msg(lm_job_checkpoint(h, LM_BARRIER_CHECKPOINT, stop, 10000 * lm_test_slowdown(),
                                    &epoch, &err) == LM_OK,
                  "%s", err.msg);
    if (!stop) {
        usleep(100000); /* rows after the checkpoint: written, never committed */
        ck_assert_int_eq(lm_job_cancel(h), LM_OK);
    }
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == (stop ? LM_JOB_STOPPED : LM_JOB_CANCELED), "first run: %d %s",
                  res.state, res.reason);
    lm_rt_free(rt, 5000);
    lm_job_handle_free(h);
    lm_plan_free(p);

    lines = lm_test_read_lines(out, &n1);
    ck_assert_ptr_nonnull(lines);
    lm_test_free_lines(lines, n1);
    ck_assert_msg(n1 > 0 && n1 < CK_TOTAL, "the checkpoint should fall mid-way: %zu rows committed",
                  n1);

    jo.restore_epoch = epoch;
    ck_assert_msg(lm_test_run_plan(plan, 2, NULL, &jo, &res, &err) == LM_OK, "%s", err.msg);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "restored run: %s", res.reason);

    lines = lm_test_read_lines(out, &n);
    ck_assert_ptr_nonnull(lines);
    for (size_t k = 0; k < n && k < CK_TOTAL; k++) {
        ck_assert_msg(strcmp(lines[k], want[k]) == 0, "line %zu: got %s, want %s", k, lines[k],
                      want[k]);
    }
    ck_assert_msg(n == CK_TOTAL, "%zu rows in all, want %d (first run %zu)", n, CK_TOTAL, n1);
    lm_test_free_lines(lines, n);
    lm_test_free_lines(want, CK_TOTAL);
    free(plan);
}

START_TEST(test_file_source_restores_exactly_after_cancel)
{
    checkpoint_and_restore(false, false);
}
END_TEST

START_TEST(test_file_source_restores_csv_after_stop)
{
    checkpoint_and_restore(true, true);
}
END_TEST

/* --- configuration -------------------------------------------------------- */

static void
config_invalid(const char *cfg, const char *needle1, const char *needle2)
{
    char *plan;
    lm_plan *p = NULL;
    lm_error err;
    int rv;

    ck_assert_int_gt(asprintf(&plan,
                              "{\"operators\": [{\"id\": \"src\", \"kind\": \"file_source\", "
                              "\"config\": {%s}, \"schema\": " IS_SCHEMA "},"
                              "{\"id\": \"out\", \"kind\": \"blackhole\"}],"
                              "\"edges\": [{\"from\": \"src\", \"to\": \"out\"}]}",
                              cfg),
                     0);
    rv = lm_plan_load_json(plan, strlen(plan), "p.json", NULL, &p, &err);
    ck_assert_msg(rv == LM_EINVAL, "loaded (rv %d): %s", rv, cfg);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.msg, "operator 'src' (file_source)") != NULL, "'%s'", err.msg);
    ck_assert_msg(strstr(err.msg, needle1) != NULL, "'%s' lacks '%s'", err.msg, needle1);
    ck_assert_msg(needle2 == NULL || strstr(err.msg, needle2) != NULL, "'%s' lacks '%s'", err.msg,
                  needle2);
    free(plan);
}

START_TEST(test_file_source_config_errors)
{
    char cfg[512];

    config_invalid("\"paht\": \"/tmp\"", "unknown key 'paht'", "did you mean 'path'");
    config_invalid("\"path\": \"/tmp\", \"fromat\": \"csv\"", "unknown key 'fromat'", "format");
    config_invalid("\"path\": \"/tmp\", \"format\": \"xml\"",
                   "\"format\" must be json or csv, got 'xml'", NULL);
    config_invalid("\"format\": \"csv\"", "\"path\" is required", NULL);
    config_invalid("\"path\": 5", "\"path\" must be a string", NULL);
    config_invalid("\"path\": \"/tmp\", \"bad_lines\": \"skip\"",
                   "\"bad_lines\" must be fail or drop, got 'skip'", NULL);
    config_invalid("\"path\": \"/tmp\", \"csv_header\": false",
                   "\"csv_header\" applies to format csv only", NULL);
    config_invalid("\"path\": \"/tmp\", \"format\": \"csv\", \"csv_header\": \"yes\"", "csv_header",
                   NULL);
    config_invalid("\"path\": \"s3://bucket/in\"", "\"path\" must be a local file or directory",
                   NULL);
    config_invalid("\"path\": \"/tmp\", \"read_bytes\": 0", "read_bytes", NULL);

    /* a path that does not exist fails the job when it opens */
    snprintf(cfg, sizeof(cfg), "\"path\": \"%s/no-such-dir\"", dir);
    expect_failure(run_source(cfg, IS_SCHEMA, 1, 4096), "operator 'src' subtask 0: cannot open",
                   "no-such-dir': No such file or directory");
}
END_TEST

Suite *
file_source_suite(void)
{
    Suite *s = suite_create("file_source");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_file_source_timestamp_parser);
    tcase_add_test(tc, test_file_source_parsers_invert_the_formatters);
    tcase_add_test(tc, test_file_source_scalar_parsers);
    tcase_add_test(tc, test_file_source_json_round_trip);
    tcase_add_test(tc, test_file_source_csv_round_trip);
    tcase_add_test(tc, test_file_source_json_value_forms);
    tcase_add_test(tc, test_file_source_long_records_and_empty_files);
    tcase_add_test(tc, test_file_source_csv_by_position);
    tcase_add_test(tc, test_file_source_csv_header_by_name);
    tcase_add_test(tc, test_file_source_bad_lines_fail_the_job);
    tcase_add_test(tc, test_file_source_bad_lines_dropped_and_counted);
    tcase_add_test(tc, test_file_source_csv_bad_lines_dropped);
    tcase_add_test(tc, test_file_source_directory_at_parallelism_2);
    tcase_add_test(tc, test_file_source_restores_exactly_after_cancel);
    tcase_add_test(tc, test_file_source_restores_csv_after_stop);
    tcase_add_test(tc, test_file_source_config_errors);
    suite_add_tcase(s, tc);
    return s;
}
