/*
 * check_operators.c: end-to-end tests of the operators' documented
 * behaviour (watermark, calc, window_aggregate, aggregate, the sinks,
 * impulse) and of the subtask's watermark handling, each run as a real plan
 * in this process and checked against exact output rows.
 *
 * Rows come from a test source, "ops_script", that plays a script per
 * subtask: batches of given rows (one batch per step, so batch boundaries
 * are exact), watermarks, idleness, pauses, waits for a checkpoint barrier
 * or for a file the test creates, and failures. Its position is kept in a
 * GLOBAL table, so a restored job goes on where its checkpoint was. Late
 * rows are observed in the job's result (lm_job_result.late_rows).
 * "ops_fail_barrier" is a sink
 * that fails at a barrier, for a checkpoint that never completes. Results
 * are written by file_sink and read back as text: multisets of lines, or
 * whole files where the order or the exact bytes matter.
 *
 * Timing: pauses in scripts (and the waits on them) are scaled by
 * $LM_TEST_SLOWDOWN; only the idle-input tests depend on pauses being
 * roughly kept (an input silent for 1 s with a 400 ms timeout).
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
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
#include "lm_state.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_test.h"

static char dir[256];

/* Strings made for one test, freed in teardown. */
static char *kept[4096];
static size_t nkept;

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static const char *
fmt(const char *f, ...)
{
    va_list ap;
    char *s;
    va_start(ap, f);
    ck_assert_int_ge(vasprintf(&s, f, ap), 0);
    va_end(ap);
    ck_assert_uint_lt(nkept, sizeof(kept) / sizeof(kept[0]));
    kept[nkept++] = s;
    return s;
}

/* Milliseconds scaled by $LM_TEST_SLOWDOWN (pauses in scripts). */
static int
ms(int v)
{
    return v * lm_test_slowdown();
}

/* --- the script source ------------------------------------------------------
 * Config: {"steps": [[step...] for subtask 0, [step...] for subtask 1, ...]}
 * (subtasks without a list end at once). Steps:
 *   {"rows": [[v, ...], ...]}   one batch; values in schema order: null,
 *                               true/false, integers (int64; timestamps in
 *                               ms), numbers or "nan"/"inf" (float64),
 *                               strings (utf8; timestamps as text; binary
 *                               in hexadecimal)
 *   {"wm": ms}                  a watermark
 *   {"idle": true}              tell downstream this input is idle
 *   {"sleep_ms": n}             produce nothing for n ms
 *   {"wait_barrier": n}         produce nothing until barrier n passed (or
 *                               the job was restored from n or later)
 *   {"touch": path}             create a file (the test waits for it)
 *   {"wait_file": path}         produce nothing until the file exists
 *   {"fail": "why"}             fail the operator
 */

typedef struct script_spec {
    json_t *steps; /* one reference */
} script_spec;

typedef struct script {
    lm_table *pos;       /* "pos" -> index of the next step */
    int64_t next;        /* index of the next step */
    int64_t deadline_ns; /* sleep_ms: when it ends, 0: not sleeping */
    uint64_t barrier;    /* last barrier seen */
} script;

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
script_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    const json_t *steps = json_object_get(def->config, "steps");
    script_spec *s;

    if (!json_is_array(steps)) {
        return lm_error_set(err, LM_EINVAL, "config: \"steps\" must be an array of arrays");
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        return LM_ENOMEM;
    }
    s->steps = json_incref((json_t *)steps);
    *spec = s;
    return LM_OK;
}

static void
script_spec_free(void *p)
{
    script_spec *s = p;
    if (s != NULL) {
        json_decref(s->steps);
        free(s);
    }
}

static int
script_open(lm_op *op)
{
    script *sc = calloc(1, sizeof(*sc));
    const void *v;
    int rv;

    if (sc == NULL) {
        return LM_ENOMEM;
    }
    op->state = sc;
    if ((rv = lm_op_table(op, LM_TABLE_GLOBAL, "pos", sizeof(int64_t), &sc->pos)) != LM_OK) {
        return rv;
    }
    if (lm_table_get(sc->pos, "pos", 3, &v, NULL, NULL) == LM_OK) {
        memcpy(&sc->next, v, sizeof(int64_t));
    }
    return LM_OK;
}

static void
script_close(lm_op *op)
{
    free(op->state);
}

static int
script_barrier(lm_op *op, uint64_t epoch)
{
    script *sc = op->state;
    sc->barrier = epoch;
    return lm_table_put(sc->pos, "pos", 3, 0, &sc->next, sizeof(sc->next));
}

/* Converts one JSON value to a value of type t (strings point into j). */
static int
script_value(lm_op *op, const json_t *j, lm_type t, uint8_t *bin, lm_value *v)
{
    lm_error err;

    memset(v, 0, sizeof(*v));
    if (json_is_null(j)) {
        v->is_null = true;
        return LM_OK;
    }
    switch (t) {
    case LM_TYPE_BOOL: v->v.b = json_is_true(j); return LM_OK;
    case LM_TYPE_INT64: v->v.i = (int64_t)json_integer_value(j); return LM_OK;
    case LM_TYPE_FLOAT64:
        if (json_is_string(j)) {
            return lm_rowfmt_parse_double(json_string_value(j), json_string_length(j), &v->v.f,
                                          &err);
        }
        v->v.f = json_number_value(j);
        return LM_OK;
    case LM_TYPE_TIMESTAMP:
        if (json_is_string(j)) {
            return lm_rowfmt_parse_timestamp(json_string_value(j), json_string_length(j), &v->v.i,
                                             &err);
        }
        v->v.i = (int64_t)json_integer_value(j) * 1000;
        return LM_OK;
    case LM_TYPE_UTF8:
        v->v.s.ptr = json_string_value(j);
        v->v.s.len = (uint32_t)json_string_length(j);
        return LM_OK;
    case LM_TYPE_BINARY:
        v->v.s.ptr = bin;
        v->v.s.len = (uint32_t)(json_string_length(j) / 2);
        return lm_rowfmt_parse_hex(json_string_value(j), json_string_length(j), bin, &err);
    }
    return lm_op_fail(op, LM_EINVAL, "bad type");
}

static int
script_rows(lm_op *op, const json_t *rows)
{
    lm_schema *s = op->def->output;
    lm_batch *b;
    size_t i;
    const json_t *row;
    int rv;

    if ((rv = lm_batch_new(s, (uint32_t)json_array_size(rows) + 1, &b)) != LM_OK) {
        return rv;
    }
    json_array_foreach(rows, i, row)
    {
        lm_value vals[LM_SCHEMA_MAX_FIELDS];
        uint8_t bins[LM_SCHEMA_MAX_FIELDS][64];
        lm_error err;
        if (json_array_size(row) != s->nfields) {
            lm_batch_free(b);
            return lm_op_fail(op, LM_EINVAL, "row %zu: %zu values for %u fields", i,
                              json_array_size(row), s->nfields);
        }
        for (uint32_t c = 0; c < s->nfields; c++) {
            if (script_value(op, json_array_get(row, c), s->fields[c].type, bins[c], &vals[c]) !=
                LM_OK) {
                lm_batch_free(b);
                return lm_op_fail(op, LM_EINVAL, "row %zu: bad value for '%s'", i,
                                  s->fields[c].name);
            }
        }
        if ((rv = lm_batch_append_row(b, vals, &err)) != LM_OK) {
            lm_batch_free(b);
            return lm_op_fail(op, rv, "row %zu: %s", i, err.msg);
        }
    }
    return lm_op_emit(op, b);
}

static int
script_produce(lm_op *op, uint32_t max_rows, bool *ended)
{
    const script_spec *spec = op->spec;
    script *sc = op->state;
    const json_t *steps = json_array_get(spec->steps, op->subtask);

    (void)max_rows;
    for (;;) {
        const json_t *step, *v;
        if (steps == NULL || sc->next >= (int64_t)json_array_size(steps)) {
            *ended = true;
            return LM_OK;
        }
        step = json_array_get(steps, (size_t)sc->next);
        if ((v = json_object_get(step, "rows")) != NULL) {
            sc->next++;
            return script_rows(op, v);
        }
        if ((v = json_object_get(step, "wm")) != NULL) {
            int rv;
            sc->next++;
            if ((rv = lm_op_emit_watermark(op, json_integer_value(v) * 1000)) != LM_OK) {
                return rv;
            }
            continue;
        }
        if (json_object_get(step, "idle") != NULL) {
            int rv;
            sc->next++;
            if ((rv = lm_op_emit_idle(op)) != LM_OK) {
                return rv;
            }
            continue;
        }
        if ((v = json_object_get(step, "sleep_ms")) != NULL) {
            int64_t now = mono_ns();
            if (sc->deadline_ns == 0) {
                sc->deadline_ns = now + json_integer_value(v) * 1000000;
            }
            if (now < sc->deadline_ns) {
                return LM_OK;
            }
            sc->deadline_ns = 0;
            sc->next++;
            continue;
        }
        if ((v = json_object_get(step, "wait_barrier")) != NULL) {
            uint64_t n = (uint64_t)json_integer_value(v);
            if (sc->barrier < n && lm_op_restore_epoch(op) < n) {
                return LM_OK;
            }
            sc->next++;
            continue;
        }
        if ((v = json_object_get(step, "touch")) != NULL) {
            FILE *f = fopen(json_string_value(v), "w");
            if (f != NULL) {
                fclose(f);
            }
            sc->next++;
            continue;
        }
        if ((v = json_object_get(step, "wait_file")) != NULL) {
            if (access(json_string_value(v), F_OK) != 0) {
                return LM_OK;
            }
            sc->next++;
            continue;
        }
        if ((v = json_object_get(step, "fail")) != NULL) {
            return lm_op_fail(op, LM_EIO, "%s", json_string_value(v));
        }
        return lm_op_fail(op, LM_EINVAL, "unknown step %lld", (long long)sc->next);
    }
}

static const lm_op_kind script_kind = {
    .name = "ops_script",
    .prepare = script_prepare,
    .spec_free = script_spec_free,
    .open = script_open,
    .on_barrier = script_barrier,
    .produce = script_produce,
    .close = script_close,
};

/* "ops_fail_barrier": a sink that fails at a checkpoint barrier, after a
 * pause (so that other subtasks have handled the barrier by then). */
static int
fb_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    (void)def;
    (void)err;
    *spec = NULL;
    return LM_OK;
}

static int
fb_open(lm_op *op)
{
    (void)op;
    return LM_OK;
}

static int
fb_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    (void)op;
    (void)port;
    lm_batch_free(b);
    return LM_OK;
}

static int
fb_barrier(lm_op *op, uint64_t epoch)
{
    usleep(300000);
    return lm_op_fail(op, LM_EIO, "refusing barrier %llu", (unsigned long long)epoch);
}

static const lm_op_kind fail_barrier_kind = {
    .name = "ops_fail_barrier",
    .min_inputs = 1,
    .max_inputs = 1,
    .sink = true,
    .prepare = fb_prepare,
    .open = fb_open,
    .on_batch = fb_batch,
    .on_barrier = fb_barrier,
};

static void
setup(void)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    lm_log_configure(&lo, NULL);
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
    lm_op_kind_register(&script_kind);
    lm_op_kind_register(&fail_barrier_kind);
}

static void
teardown(void)
{
    lm_error err;
    if (getenv("LM_TEST_KEEP") == NULL) {
        lm_storage_remove_tree(dir, &err);
    }
    lm_msg_pool_trim();
    for (size_t i = 0; i < nkept; i++) {
        free(kept[i]);
    }
    nkept = 0;
}

/* --- plan text ------------------------------------------------------------------
 * Plans are written with single quotes for readability: J() turns every '
 * into " (no test value holds a single quote). Schemas and aggregate lists
 * have a short notation: S("k utf8, n int64!") ('!': not nullable) and
 * A("n count, s sum v") (count without an argument is count(*)). */

/* text with every ' made " */
static const char *
J(const char *text)
{
    char *s = (char *)fmt("%s", text);
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return s;
}

/* "name type[!], ..." -> a JSON schema */
static const char *
S(const char *spec)
{
    const char *out = "[";
    char *copy = strdup(spec), *save = NULL;

    ck_assert_ptr_nonnull(copy);
    for (char *f = strtok_r(copy, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save)) {
        char name[64], type[32];
        size_t n;
        ck_assert_int_eq(sscanf(f, " %63s %31s", name, type), 2);
        n = strlen(type);
        out = fmt("%s%s{'name': '%s', 'type': '%.*s'%s}", out, out[1] != '\0' ? ", " : "", name,
                  (int)(type[n - 1] == '!' ? n - 1 : n), type,
                  type[n - 1] == '!' ? ", 'nullable': false" : "");
    }
    free(copy);
    return fmt("%s]", out);
}

/* "name fn [arg], ..." -> a JSON array of aggregates */
static const char *
A(const char *spec)
{
    const char *out = "[";
    char *copy = strdup(spec), *save = NULL;

    ck_assert_ptr_nonnull(copy);
    for (char *f = strtok_r(copy, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save)) {
        char name[64], fn[32], arg[64];
        int k = sscanf(f, " %63s %31s %63s", name, fn, arg);
        ck_assert_int_ge(k, 2);
        out = fmt("%s%s{'name': '%s', 'fn': '%s'%s%s%s}", out, out[1] != '\0' ? ", " : "", name, fn,
                  k == 3 ? ", 'arg': '" : "", k == 3 ? arg : "", k == 3 ? "'" : "");
    }
    free(copy);
    return fmt("%s]", out);
}

/* An operator object (schema NULL for sinks). */
static const char *
op_json(const char *id, const char *kind, int par, const char *config, const char *schema)
{
    return fmt("{'id': '%s', 'kind': '%s', 'parallelism': %d, 'config': %s%s%s}", id, kind, par,
               config, schema != NULL ? ", 'schema': " : "", schema != NULL ? schema : "");
}

/* A file sink writing into dir/name (JSON lines unless extra says). */
static const char *
sink_json(const char *id, int par, const char *name, const char *extra)
{
    return op_json(id, "file_sink", par,
                   fmt("{'path': '%s/%s'%s}", dir, name, extra != NULL ? extra : ""), NULL);
}

/* The script source with steps (a JSON array of per-subtask arrays). */
static const char *
script_json(int par, const char *steps, const char *schema)
{
    return op_json("src", "ops_script", par, fmt("{'steps': %s}", steps), schema);
}

static const char *
edge(const char *from, const char *to)
{
    return fmt("{'from': '%s', 'to': '%s'}", from, to);
}

static const char *
shuffle(const char *from, const char *to, const char *key)
{
    return fmt("{'from': '%s', 'to': '%s', 'kind': 'shuffle', 'keys': ['%s']}", from, to, key);
}

/* {"operators": [ops...], "edges": [edges...]}: lists joined with ", ". */
static const char *
plan_json(const char *ops, const char *edges)
{
    return J(fmt("{'operators': [%s], 'edges': [%s]}", ops, edges));
}

/* The result of the last run_ok. */
static lm_job_result last_res;

/* Runs a plan that must finish. */
static void
run_ok(const char *plan, const lm_plan_opts *po, const lm_job_opts *jo)
{
    lm_error err;
    int rv = lm_test_run_plan(plan, 2, po, jo, &last_res, &err);

    ck_assert_msg(rv == LM_OK, "plan: %s\n%s", err.msg, plan);
    ck_assert_msg(last_res.state == LM_JOB_FINISHED, "job: %s", last_res.reason);
}

/* The late rows the operators of the last run dropped, as the job's
 * result reports them. */
static void
expect_late(uint64_t n)
{
    ck_assert_uint_eq(last_res.late_rows, n);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compares the committed lines under dir/name with want (any order). */
static void
expect_lines(const char *name, const char *const *want, size_t nwant)
{
    char path[400];
    size_t n;
    char **got;
    char **w = malloc((nwant + 1) * sizeof(char *));
    lm_report r = {.len = 0};

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    got = lm_test_read_lines(path, &n);
    ck_assert_msg(got != NULL, "no output directory %s", path);
    for (size_t i = 0; i < nwant; i++) {
        w[i] = (char *)want[i];
    }
    qsort(w, nwant, sizeof(char *), cmp_str);
    lm_test_compare_lines(got, n, w, nwant, name, "output", "expected", &r);
    lm_test_free_lines(got, n);
    free(w);
    ck_assert_msg(!r.failed, "%s", r.msg);
}

/* The files committed under dir/name (not hidden), sorted; *n their count.
 * Free with lm_test_free_lines. */
static char **
committed_files(const char *name, size_t *n)
{
    char path[400];
    DIR *d;
    struct dirent *e;
    char **files = calloc(256, sizeof(char *));
    size_t count = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_ptr_nonnull(files);
    if ((d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL && count < 255) {
            if (e->d_name[0] != '.') {
                files[count++] = strdup(e->d_name);
            }
        }
        closedir(d);
    }
    qsort(files, count, sizeof(char *), cmp_str);
    *n = count;
    return files;
}

/* The whole text of dir/name/file ("" when it cannot be read). */
static const char *
file_text(const char *name, const char *file)
{
    char *t = lm_test_read_file(fmt("%s/%s/%s", dir, name, file), NULL);
    if (t == NULL) {
        return "";
    }
    ck_assert_uint_lt(nkept, sizeof(kept) / sizeof(kept[0]));
    kept[nkept++] = t;
    return t;
}

/* Event time text of ms since the epoch. */
static const char *
ts_text(int64_t ms_)
{
    char buf[64];
    lm_format_timestamp(ms_ * 1000, buf, sizeof(buf));
    return fmt("%s", buf);
}

/* {'rows': [[t, t], ...]}: rows of (timestamp t ms, int64 t). */
static const char *
tv_rows(const int64_t *t, size_t n)
{
    const char *s = "{'rows': [";
    for (size_t i = 0; i < n; i++) {
        s = fmt("%s%s[%" PRId64 ", %" PRId64 "]", s, i > 0 ? ", " : "", t[i], t[i]);
    }
    return fmt("%s]}", s);
}

#define TV_ROWS(...)                                                                               \
    tv_rows((const int64_t[]){__VA_ARGS__},                                                        \
            sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

#define TV_SCHEMA S("t timestamp, v int64")

/* A tumbling count and sum of v per window (no keys), with the bounds. */
#define TUMBLE_NS_SCHEMA S("ws timestamp!, we timestamp!, n int64!, s int64")

static const char *
tumble_ns_config(int size_ms)
{
    return fmt("{'time': 't', 'window': {'type': 'tumble', 'size_ms': %d}, 'keys': [], "
               "'aggregates': %s, 'window_start': 'ws', 'window_end': 'we'}",
               size_ms, A("n count, s sum v"));
}

/* An output line of that aggregate. */
static const char *
ns_line(int64_t start_ms, int64_t end_ms, int64_t n, int64_t s)
{
    return fmt("{\"ws\":\"%s\",\"we\":\"%s\",\"n\":%" PRId64 ",\"s\":%" PRId64 "}",
               ts_text(start_ms), ts_text(end_ms), n, s);
}

/* script (1 subtask, the given steps) -> watermark(wm_config) ->
 * tumbling aggregate -> sink "out", all chained. */
static const char *
wm_plan(const char *steps, const char *wm_config, int size_ms)
{
    return plan_json(
        fmt("%s, %s, %s, %s", script_json(1, fmt("[[%s]]", steps), TV_SCHEMA),
            op_json("wm", "watermark", 1, wm_config, TV_SCHEMA),
            op_json("agg", "window_aggregate", 1, tumble_ns_config(size_ms), TUMBLE_NS_SCHEMA),
            sink_json("out", 1, "out", NULL)),
        fmt("%s, %s, %s", edge("src", "wm"), edge("wm", "agg"), edge("agg", "out")));
}

/* --- watermarks ------------------------------------------------------------- */

/* Bounded out-of-orderness: the watermark is the largest time seen minus
 * delay_ms, emitted after every batch here. Rows out of order within the
 * delay count in their window; a row whose window the watermark already
 * passed is dropped and counted as late. */
START_TEST(test_operators_watermark_out_of_order_within_delay)
{
    const char *steps = fmt("%s, %s, %s, %s, %s", TV_ROWS(100, 900, 1200), /* wm 700 */
                            TV_ROWS(800, 1500),  /* 800 in time; wm 1000: [0,1) fires */
                            TV_ROWS(950, 1999),  /* 950 late; wm 1499 */
                            TV_ROWS(1001, 2600), /* 1001 in time; wm 2100: [1,2) fires */
                            TV_ROWS(1999, 2050) /* 1999 late */);
    const char *want[] = {ns_line(0, 1000, 3, 1800), ns_line(1000, 2000, 4, 5700),
                          ns_line(2000, 3000, 2, 4650)};

    run_ok(wm_plan(steps,
                   "{'column': 't', 'delay_ms': 500, 'every_batches': 1, 'period_ms': 3600000}",
                   1000),
           NULL, NULL);
    expect_lines("out", want, 3);
    expect_late(2);
}
END_TEST

/* With every_batches out of reach, the watermark still goes out every
 * period_ms: a row that comes after a pause is late for the window that
 * the periodic watermark closed. */
START_TEST(test_operators_watermark_periodic_emission)
{
    const char *steps =
        fmt("%s, %s, {'sleep_ms': %d}, %s", TV_ROWS(100), TV_ROWS(5000), ms(600), TV_ROWS(200));
    const char *want[] = {ns_line(0, 1000, 1, 100), ns_line(5000, 6000, 1, 5000)};

    run_ok(wm_plan(steps,
                   "{'column': 't', 'delay_ms': 0, 'every_batches': 1000000, 'period_ms': 100}",
                   1000),
           NULL, NULL);
    expect_lines("out", want, 2);
    expect_late(1);
}
END_TEST

/* Without any watermark before it, the end of input is the final
 * watermark: every window of every key comes out. */
START_TEST(test_operators_watermark_end_of_input_flushes_every_window)
{
    const char *plan = plan_json(
        fmt("%s, %s, %s",
            script_json(1,
                        "[[{'rows': [['a', 100, 1], ['b', 700, 2], ['a', 2500, 3]]},"
                        "  {'rows': [['b', 99999, 4], ['a', 5000, 5], ['a', 5999, 6]]}]]",
                        S("k utf8, t timestamp, v int64")),
            op_json("agg", "window_aggregate", 1,
                    fmt("{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, 'keys': "
                        "['k'], 'aggregates': %s, 'window_start': 'ws'}",
                        A("n count, s sum v")),
                    S("ws timestamp!, k utf8, n int64!, s int64")),
            sink_json("out", 1, "out", NULL)),
        fmt("%s, %s", edge("src", "agg"), edge("agg", "out")));
    const char *want[] = {
        fmt("{\"ws\":\"%s\",\"k\":\"a\",\"n\":1,\"s\":1}", ts_text(0)),
        fmt("{\"ws\":\"%s\",\"k\":\"b\",\"n\":1,\"s\":2}", ts_text(0)),
        fmt("{\"ws\":\"%s\",\"k\":\"a\",\"n\":1,\"s\":3}", ts_text(2000)),
        fmt("{\"ws\":\"%s\",\"k\":\"b\",\"n\":1,\"s\":4}", ts_text(99000)),
        fmt("{\"ws\":\"%s\",\"k\":\"a\",\"n\":2,\"s\":11}", ts_text(5000)),
    };

    run_ok(plan, NULL, NULL);
    expect_lines("out", want, 5);
    expect_late(0);
}
END_TEST

/* Two source subtasks shuffled into one aggregate subtask: its input
 * watermark is the minimum over its input channels. Subtask 0 says 5000
 * at once; subtask 1 says nothing for a while, then sends a row at 500,
 * which is on time. */
START_TEST(test_operators_watermark_is_the_minimum_of_the_inputs)
{
    const char *steps = fmt("[[%s, {'wm': 5000}], [{'sleep_ms': %d}, %s, {'wm': 500}]]",
                            TV_ROWS(100, 5000), ms(300), TV_ROWS(500));
    const char *plan = plan_json(
        fmt("%s, %s, %s", script_json(2, steps, TV_SCHEMA),
            op_json("agg", "window_aggregate", 1, tumble_ns_config(1000), TUMBLE_NS_SCHEMA),
            sink_json("out", 1, "out", NULL)),
        fmt("%s, %s", shuffle("src", "agg", "v"), edge("agg", "out")));
    const char *want[] = {ns_line(0, 1000, 2, 600), ns_line(5000, 6000, 1, 5000)};

    run_ok(plan, NULL, NULL);
    expect_lines("out", want, 2);
    expect_late(0);
}
END_TEST

/* script (2 subtasks) -> watermark (idle_timeout_ms) -> shuffle -> one
 * tumbling aggregate -> sink "out". */
static const char *
idle_plan(const char *s0, const char *s1, int idle_ms)
{
    return plan_json(
        fmt("%s, %s, %s, %s", script_json(2, fmt("[[%s], [%s]]", s0, s1), TV_SCHEMA),
            op_json("wm", "watermark", 2,
                    fmt("{'column': 't', 'delay_ms': 0, 'every_batches': 1, "
                        "'idle_timeout_ms': %d}",
                        idle_ms),
                    TV_SCHEMA),
            op_json("agg", "window_aggregate", 1, tumble_ns_config(1000), TUMBLE_NS_SCHEMA),
            sink_json("out", 1, "out", NULL)),
        fmt("%s, %s, %s", edge("src", "wm"), shuffle("wm", "agg", "v"), edge("agg", "out")));
}

/* idle_timeout_ms: subtask 1 sends one row and falls silent; its
 * watermark operator marks it idle, and the aggregate's watermark follows
 * subtask 0 alone (a row subtask 1 then sends for an old window is late).
 * Sending again brings it back into the minimum: the watermark waits for
 * it again (its next row, for a window subtask 0 has long passed, is on
 * time). */
START_TEST(test_operators_watermark_idle_input_released_then_back)
{
    const char *s0 = "", *s1;
    const char *want[14];

    /* subtask 0: a row every 100 ms, 1 s of event time apart */
    for (int i = 0; i < 14; i++) {
        s0 = fmt("%s%s%s, {'sleep_ms': %d}", s0, i > 0 ? ", " : "", TV_ROWS(100 + 1000 * i),
                 ms(100));
    }
    s1 = fmt("%s, {'sleep_ms': %d}, %s, {'sleep_ms': %d}, %s", TV_ROWS(200), ms(1000), TV_ROWS(300),
             ms(300), TV_ROWS(11500));
    for (int i = 0; i < 14; i++) {
        int64_t s = 100 + 1000 * i;
        want[i] = ns_line(1000 * i, 1000 * i + 1000, i == 0 || i == 11 ? 2 : 1,
                          i == 0    ? 300
                          : i == 11 ? s + 11500
                                    : s);
    }
    run_ok(idle_plan(s0, s1, ms(400)), NULL, NULL);
    expect_lines("out", want, 14);
    expect_late(1);
}
END_TEST

/* An input that came back from idleness and falls silent again is idle
 * again: subtask 1 returns with a row that does not advance its watermark
 * (so no watermark follows it), then pauses past the timeout; the
 * aggregate's watermark must follow subtask 0 again, so that subtask 1's
 * last row, for a window subtask 0 has passed, is late.
 * (The sending subtask must clear its "told downstream we are idle" flag
 * when rows go out, as the receiver takes the channel back on any batch.) */
START_TEST(test_operators_watermark_idle_twice)
{
    const char *s0 = "", *s1;
    const char *want[40];

    for (int i = 0; i < 40; i++) {
        s0 =
            fmt("%s%s%s, {'sleep_ms': %d}", s0, i > 0 ? ", " : "", TV_ROWS(100 + 1000 * i), ms(50));
    }
    s1 = fmt("%s, {'sleep_ms': %d}, %s, {'sleep_ms': %d}, %s", TV_ROWS(200), ms(700), TV_ROWS(150),
             ms(700), TV_ROWS(20500));
    for (int i = 0; i < 40; i++) {
        want[i] = ns_line(1000 * i, 1000 * i + 1000, i == 0 ? 2 : 1, i == 0 ? 300 : 100 + 1000 * i);
    }
    run_ok(idle_plan(s0, s1, ms(300)), NULL, NULL);
    expect_lines("out", want, 40);
    expect_late(2);
}
END_TEST

/* --- calc ------------------------------------------------------------------- */

#define CALC_IN_SCHEMA S("a int64, b int64, s utf8, t timestamp")

/* Rows r1..r6 of CALC_IN_SCHEMA, one batch. */
#define CALC_ROWS                                                                                  \
    "[[{'rows': [[1, 2, 'x', 1000], [null, 3, 'y', 2000], [5, null, null, 3000],"                  \
    "            [7, 9, 'zz', 4000], [null, null, '', 5000], [4, 0, 'w', 6000]]}]]"

static const char *const calc_in_lines[] = {
    "{\"a\":1,\"b\":2,\"s\":\"x\",\"t\":\"1970-01-01 00:00:01.000000\"}",
    "{\"a\":null,\"b\":3,\"s\":\"y\",\"t\":\"1970-01-01 00:00:02.000000\"}",
    "{\"a\":5,\"b\":null,\"s\":null,\"t\":\"1970-01-01 00:00:03.000000\"}",
    "{\"a\":7,\"b\":9,\"s\":\"zz\",\"t\":\"1970-01-01 00:00:04.000000\"}",
    "{\"a\":null,\"b\":null,\"s\":\"\",\"t\":\"1970-01-01 00:00:05.000000\"}",
    "{\"a\":4,\"b\":0,\"s\":\"w\",\"t\":\"1970-01-01 00:00:06.000000\"}",
};

/* script(CALC_ROWS) -> calc(config, schema) -> sink "name". */
static void
run_calc(const char *name, const char *config, const char *schema)
{
    run_ok(plan_json(fmt("%s, %s, %s", script_json(1, CALC_ROWS, CALC_IN_SCHEMA),
                         op_json("f", "calc", 1, config, schema), sink_json("out", 1, name, NULL)),
                     fmt("%s, %s", edge("src", "f"), edge("f", "out"))),
           NULL, NULL);
}

/* The input rows whose numbers (1-based) are listed, 0-terminated. */
static void
expect_calc_rows(const char *name, const int *rows)
{
    const char *want[6];
    size_t n = 0;
    for (; rows[n] != 0; n++) {
        want[n] = calc_in_lines[rows[n] - 1];
    }
    expect_lines(name, want, n);
}

/* A filter keeps the rows where it is TRUE: NULL (unknown) is not TRUE, and
 * AND, OR, NOT and IN follow SQL's three-valued logic. */
START_TEST(test_operators_calc_filter_three_valued_logic)
{
#define GT(c, v) "{'call': '>', 'args': [{'col': '" c "'}, {'lit': " #v "}]}"
#define LT(c, v) "{'call': '<', 'args': [{'col': '" c "'}, {'lit': " #v "}]}"
    static const struct {
        const char *name, *filter;
        int rows[7];
    } cases[] = {
        /* NULL OR TRUE is TRUE; NULL OR NULL is NULL */
        {"or", "{'call': 'or', 'args': [" GT("a", 1) ", " LT("b", 5) "]}", {1, 2, 3, 4, 6, 0}},
        /* NOT NULL is NULL */
        {"not", "{'call': 'not', 'args': [" GT("a", 1) "]}", {1, 0}},
        /* TRUE AND NULL is NULL */
        {"and", "{'call': 'and', 'args': [" GT("a", 1) ", " LT("b", 10) "]}", {4, 6, 0}},
        /* NULL AND FALSE is FALSE, so NOT of it is TRUE */
        {"not_and",
         "{'call': 'not', 'args': [{'call': 'and', 'args': [" GT("a", 1) ", " GT("b", 100) "]}]}",
         {1, 2, 4, 6, 0}},
        /* a comparison with NULL is NULL */
        {"ne", "{'call': '<>', 'args': [{'col': 'a'}, {'lit': 1}]}", {3, 4, 6, 0}},
        /* is_null is never NULL; '' is not NULL */
        {"is_null",
         "{'call': 'or', 'args': [{'call': 'is_null', 'args': [{'col': 's'}]},"
         " {'call': '=', 'args': [{'col': 's'}, {'lit': ''}]}]}",
         {3, 5, 0}},
        /* IN with a NULL in the list: TRUE when found, else NULL */
        {"in",
         "{'call': 'in', 'args': [{'col': 'b'}, {'lit': 2}, {'lit': 9},"
         " {'lit': null, 'type': 'int64'}]}",
         {1, 4, 0}},
    };
#undef GT
#undef LT

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_calc(cases[i].name, fmt("{'filter': %s}", cases[i].filter), CALC_IN_SCHEMA);
        expect_calc_rows(cases[i].name, cases[i].rows);
    }
    /* no configuration: every row as it is */
    run_calc("all", "{}", CALC_IN_SCHEMA);
    expect_calc_rows("all", (const int[]){1, 2, 3, 4, 5, 6, 0});
}
END_TEST

#define CALC_PROJECT                                                                               \
    "[{'name': 'a', 'expr': {'col': 'a'}},"                                                        \
    " {'name': 'a2', 'expr': {'call': '*', 'args': [{'col': 'a'}, {'lit': 2}]}},"                  \
    " {'name': 'ba', 'expr': {'call': '/', 'args': [{'col': 'b'}, {'col': 'a'}]}},"                \
    " {'name': 'ab', 'expr': {'call': '/', 'args': [{'col': 'a'}, {'col': 'b'}]}},"                \
    " {'name': 'label', 'expr': {'case': [{'when': {'call': '>', 'args': [{'col': 'a'},"           \
    "   {'lit': 1}]}, 'then': {'lit': 'big'}}], 'else': {'lit': 'small'}}},"                       \
    " {'name': 'cs', 'expr': {'call': 'concat', 'args': [{'col': 's'}, {'lit': '!'}]}},"           \
    " {'name': 't2', 'expr': {'call': '+', 'args': [{'col': 't'},"                                 \
    "   {'lit': 1500000, 'type': 'interval'}]}},"                                                  \
    " {'name': 'fl', 'expr': {'call': '/', 'args': [{'cast': {'col': 'a'}, 'to': 'float64'},"      \
    "   {'lit': 4}]}},"                                                                            \
    " {'name': 'nn', 'expr': {'call': 'is_null', 'args': [{'col': 'a'}]}}]"

#define CALC_OUT_SCHEMA                                                                            \
    S("a int64, a2 int64, ba int64, ab int64, label utf8, cs utf8, t2 timestamp, fl float64, "     \
      "nn bool!")

static const char *const calc_out_lines[] = {
    "{\"a\":1,\"a2\":2,\"ba\":2,\"ab\":0,\"label\":\"small\",\"cs\":\"x!\",\"t2\":\"1970-01-01 "
    "00:00:02.500000\",\"fl\":0.25,\"nn\":false}",
    "{\"a\":null,\"a2\":null,\"ba\":null,\"ab\":null,\"label\":\"small\",\"cs\":\"y!\",\"t2\":"
    "\"1970-01-01 00:00:03.500000\",\"fl\":null,\"nn\":true}",
    "{\"a\":5,\"a2\":10,\"ba\":null,\"ab\":null,\"label\":\"big\",\"cs\":null,\"t2\":\"1970-01-01 "
    "00:00:04.500000\",\"fl\":1.25,\"nn\":false}",
    "{\"a\":7,\"a2\":14,\"ba\":1,\"ab\":0,\"label\":\"big\",\"cs\":\"zz!\",\"t2\":\"1970-01-01 "
    "00:00:05.500000\",\"fl\":1.75,\"nn\":false}",
    "{\"a\":null,\"a2\":null,\"ba\":null,\"ab\":null,\"label\":\"small\",\"cs\":\"!\",\"t2\":"
    "\"1970-01-01 00:00:06.500000\",\"fl\":null,\"nn\":true}",
    "{\"a\":4,\"a2\":8,\"ba\":0,\"ab\":null,\"label\":\"big\",\"cs\":\"w!\",\"t2\":\"1970-01-01 "
    "00:00:07.500000\",\"fl\":1,\"nn\":false}",
};

/* Projection computes each output column for every row (nulls propagate,
 * division by zero gives NULL, a CASE whose WHEN is NULL takes the ELSE);
 * with a filter, only the kept rows are projected. */
START_TEST(test_operators_calc_projection_and_fused_filter)
{
    const char *want[4];

    run_calc("proj", "{'project': " CALC_PROJECT "}", CALC_OUT_SCHEMA);
    expect_lines("proj", calc_out_lines, 6);

    run_calc("fused",
             "{'filter': {'call': 'is_not_null', 'args': [{'col': 'a'}]}, 'project': " CALC_PROJECT
             "}",
             CALC_OUT_SCHEMA);
    want[0] = calc_out_lines[0];
    want[1] = calc_out_lines[2];
    want[2] = calc_out_lines[3];
    want[3] = calc_out_lines[5];
    expect_lines("fused", want, 4);

    /* only bare columns, reordered: the columns are moved, not evaluated */
    run_calc("cols",
             "{'filter': {'call': '<', 'args': [{'col': 'b'}, {'lit': 5}]}, 'project': [{'name': "
             "'s', 'expr': {'col': 's'}}, {'name': 'a', 'expr': {'col': 'a'}}]}",
             S("s utf8, a int64"));
    want[0] = "{\"s\":\"x\",\"a\":1}";
    want[1] = "{\"s\":\"y\",\"a\":null}";
    want[2] = "{\"s\":\"w\",\"a\":4}";
    expect_lines("cols", want, 3);
}
END_TEST

/* Loads plan text and expects LM_EINVAL with every needle in the message. */
static void
expect_invalid(const char *json, const char *const *needles)
{
    lm_plan *plan = NULL;
    lm_error err;
    int rv = lm_plan_load_json(json, strlen(json), "p.json", NULL, &plan, &err);

    ck_assert_msg(rv == LM_EINVAL, "loaded a bad plan (rv %d): %s", rv, json);
    ck_assert_ptr_null(plan);
    for (size_t i = 0; needles[i] != NULL; i++) {
        ck_assert_msg(strstr(err.msg, needles[i]) != NULL, "'%s' lacks '%s'", err.msg, needles[i]);
    }
}

/* script -> x(kind, config, schema) -> sink: a plan for config checks. */
static const char *
one_op_plan(const char *kind, const char *config, const char *in_schema, const char *schema)
{
    return plan_json(fmt("%s, %s, %s", script_json(1, "[]", in_schema),
                         op_json("x", kind, 1, config, schema), sink_json("out", 1, "out", NULL)),
                     fmt("%s, %s", edge("src", "x"), edge("x", "out")));
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A configuration error names the operator, its kind and the key; a
 * missing required key is a configuration error too (LM_EINVAL). */
START_TEST(test_operators_config_errors_name_operator_and_key)
{
    const char *tv = TV_SCHEMA, *price = S("price int64");

    /* calc */
    expect_invalid(
        one_op_plan("calc", "{'filter': {'call': '>', 'args': [{'col': 'prce'}, {'lit': 1}]}}",
                    price, price),
        NEEDLES("operator 'x' (calc)", "filter", "unknown column 'prce'", "did you mean 'price'"));
    expect_invalid(one_op_plan("calc",
                               "{'project': [{'name': 'y', 'expr': {'call': '+', 'args': [{'col': "
                               "'price'}, {'col': 'qty'}]}}]}",
                               price, S("y int64")),
                   NEEDLES("operator 'x' (calc)", "project[0] 'y'", "unknown column 'qty'"));
    expect_invalid(one_op_plan("calc", "{'filter': {'col': 'price'}}", price, price),
                   NEEDLES("operator 'x' (calc)", "filter", "boolean"));
    expect_invalid(one_op_plan("calc", "{'filtre': {'lit': true}}", price, price),
                   NEEDLES("operator 'x' (calc)", "unknown key 'filtre'", "did you mean 'filter'"));
    /* watermark */
    expect_invalid(one_op_plan("watermark", "{'column': 'v'}", tv, tv),
                   NEEDLES("operator 'x' (watermark)", "column 'v' is int64, not a timestamp"));
    expect_invalid(
        one_op_plan("watermark", "{'column': 't', 'dealy_ms': 5}", tv, tv),
        NEEDLES("operator 'x' (watermark)", "unknown key 'dealy_ms'", "did you mean 'delay_ms'"));
    expect_invalid(one_op_plan("watermark", "{'delay_ms': 5}", tv, tv),
                   NEEDLES("operator 'x' (watermark)", "\"column\" is required"));
    expect_invalid(one_op_plan("watermark", "{'column': 'tt'}", tv, tv),
                   NEEDLES("operator 'x' (watermark)", "unknown column 'tt'"));
    /* window_aggregate */
    expect_invalid(one_op_plan("window_aggregate",
                               "{'window': {'type': 'tumble', 'size_ms': 1000}, 'aggregates': []}",
                               tv, "[]"),
                   NEEDLES("operator 'x' (window_aggregate)", "\"time\" is required"));
    expect_invalid(
        one_op_plan("window_aggregate",
                    "{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, "
                    "'aggregates': [{'name': 'n'}]}",
                    tv, S("n int64!")),
        NEEDLES("operator 'x' (window_aggregate)", "aggregates[0]", "\"fn\" is required"));
    expect_invalid(one_op_plan("window_aggregate",
                               "{'time': 't', 'window': {'type': 'hop', 'size_ms': 2500, "
                               "'slide_ms': 1000}, 'aggregates': []}",
                               tv, "[]"),
                   NEEDLES("operator 'x' (window_aggregate)", "multiple of the slide"));
    expect_invalid(
        one_op_plan("window_aggregate",
                    "{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, "
                    "'aggregates': [{'name': 'm', 'fn': 'median', 'arg': 'v'}]}",
                    tv, S("m int64")),
        NEEDLES("operator 'x' (window_aggregate)", "aggregates[0]", "unknown function 'median'"));
    expect_invalid(
        one_op_plan("window_aggregate",
                    "{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, "
                    "'aggregates': [{'name': 'm', 'fn': 'sum', 'arg': 'w'}]}",
                    tv, S("m int64")),
        NEEDLES("operator 'x' (window_aggregate)", "aggregates[0]", "unknown column 'w'"));
    expect_invalid(one_op_plan("window_aggregate",
                               "{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, "
                               "'aggregates': [{'name': 'm', 'fn': 'sum', 'arg': 'v'}]}",
                               tv, S("m int64!")),
                   NEEDLES("operator 'x' (window_aggregate)", "'m' must be nullable"));
    expect_invalid(one_op_plan("window_aggregate",
                               "{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, "
                               "'aggregates': []}",
                               S("t timestamp, _retract bool!"), "[]"),
                   NEEDLES("operator 'x' (window_aggregate)", "not a changelog"));
    /* aggregate */
    expect_invalid(one_op_plan("aggregate",
                               "{'keys': ['v'], 'aggregates': [{'name': 'n', 'fn': 'count'}]}", tv,
                               S("v int64, n int64!")),
                   NEEDLES("operator 'x' (aggregate)", "_retract"));
    expect_invalid(one_op_plan("aggregate",
                               "{'keys': ['v'], 'ttl_ms': 1000, 'aggregates': [{'name': 'n', "
                               "'fn': 'count'}]}",
                               tv, S("v int64, n int64!, _retract bool!")),
                   NEEDLES("operator 'x' (aggregate)", "\"ttl_ms\" needs \"time\""));
    /* file_sink */
    expect_invalid(plan_json(fmt("%s, %s", script_json(1, "[]", tv),
                                 sink_json("out", 1, "out", ", 'format': 'xml'")),
                             edge("src", "out")),
                   NEEDLES("operator 'out' (file_sink)", "\"format\" must be json or csv"));
    expect_invalid(plan_json(fmt("%s, %s", script_json(1, "[]", tv),
                                 op_json("out", "file_sink", 1, "{'format': 'csv'}", NULL)),
                             edge("src", "out")),
                   NEEDLES("operator 'out' (file_sink)", "\"path\" is required"));
    /* impulse */
    expect_invalid(plan_json(fmt("%s, %s", op_json("src", "impulse", 1, "{'count': 5}", tv),
                                 sink_json("out", 1, "out", NULL)),
                             edge("src", "out")),
                   NEEDLES("operator 'src' (impulse)", "[counter int64, ts timestamp]"));
}
END_TEST

/* --- window_aggregate ------------------------------------------------------- */

/* Every aggregate function, over values with nulls: count(*) counts rows,
 * count(x) and count_distinct(x) non-null values (never null themselves);
 * sum, avg, min and max of no non-null value are null. A null key is a
 * group of its own. */
START_TEST(test_operators_window_every_aggregate_with_nulls)
{
    const char *config = fmt("{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, "
                             "'keys': ['k'], 'window_start': 'ws', 'window_end': 'we', "
                             "'aggregates': %s}",
                             A("n count, ni count i, nd count_distinct s, si sum i, sf sum f, "
                               "ai avg i, af avg f, mi min i, xi max i, mf min f, xf max f, "
                               "mb min b, xb max b, mt min ts2, xt max ts2"));
    const char *steps = "[[{'rows': [['a', 100, 5, 1.5, true, 10, 'x'],"
                        "            ['a', 200, null, null, null, null, null],"
                        "            ['a', 300, -3, -0.25, false, 5, 'x'],"
                        "            ['a', 400, 10, 2.5, true, 20, 'y'],"
                        "            ['b', 500, null, null, null, null, null],"
                        "            [null, 600, 1, 1.0, true, 2, 'q'],"
                        "            ['a', 1100, 7, 0.5, false, 1, 'z']]}]]";
    const char *w0 = "'ws':'1970-01-01 00:00:00.000000','we':'1970-01-01 00:00:01.000000'";
    const char *want[] = {
        J(fmt("{%s,'k':'a','n':4,'ni':3,'nd':2,'si':12,'sf':3.75,'ai':4,'af':1.25,'mi':-3,"
              "'xi':10,'mf':-0.25,'xf':2.5,'mb':false,'xb':true,"
              "'mt':'1970-01-01 00:00:00.005000','xt':'1970-01-01 00:00:00.020000'}",
              w0)),
        J(fmt("{%s,'k':'b','n':1,'ni':0,'nd':0,'si':null,'sf':null,'ai':null,'af':null,"
              "'mi':null,'xi':null,'mf':null,'xf':null,'mb':null,'xb':null,'mt':null,'xt':null}",
              w0)),
        J(fmt("{%s,'k':null,'n':1,'ni':1,'nd':1,'si':1,'sf':1,'ai':1,'af':1,'mi':1,'xi':1,"
              "'mf':1,'xf':1,'mb':true,'xb':true,"
              "'mt':'1970-01-01 00:00:00.002000','xt':'1970-01-01 00:00:00.002000'}",
              w0)),
        J("{'ws':'1970-01-01 00:00:01.000000','we':'1970-01-01 00:00:02.000000','k':'a','n':1,"
          "'ni':1,'nd':1,'si':7,'sf':0.5,'ai':7,'af':0.5,'mi':7,'xi':7,'mf':0.5,'xf':0.5,"
          "'mb':false,'xb':false,'mt':'1970-01-01 00:00:00.001000',"
          "'xt':'1970-01-01 00:00:00.001000'}"),
    };

    run_ok(plan_json(fmt("%s, %s, %s",
                         script_json(1, steps,
                                     S("k utf8, t timestamp, i int64, f float64, b bool, "
                                       "ts2 timestamp, s utf8")),
                         op_json("agg", "window_aggregate", 1, config,
                                 S("ws timestamp!, we timestamp!, k utf8, n int64!, ni int64!, "
                                   "nd int64!, si int64, sf float64, ai float64, af float64, "
                                   "mi int64, xi int64, mf float64, xf float64, mb bool, xb bool, "
                                   "mt timestamp, xt timestamp")),
                         sink_json("out", 1, "out", NULL)),
                     fmt("%s, %s", edge("src", "agg"), edge("agg", "out"))),
           NULL, NULL);
    expect_lines("out", want, 4);
}
END_TEST

/* script(rows of g, t, x) -> tumbling aggregate r = fn(x) by g -> sink
 * "name". */
static void
run_group_agg(const char *name, const char *rows, const char *x_type, const char *fn,
              const char *out_type)
{
    run_ok(plan_json(fmt("%s, %s, %s",
                         script_json(1, fmt("[[{'rows': %s}]]", rows),
                                     S(fmt("g int64, t timestamp, x %s", x_type))),
                         op_json("agg", "window_aggregate", 1,
                                 fmt("{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, "
                                     "'keys': ['g'], 'aggregates': %s}",
                                     A(fmt("r %s x", fn))),
                                 S(fmt("g int64, r %s", out_type))),
                         sink_json("out", 1, name, NULL)),
                     fmt("%s, %s", edge("src", "agg"), edge("agg", "out"))),
           NULL, NULL);
}

/* sum of int64 is exact or null when the result overflows; avg of int64
 * is the exact int64 sum divided in double (a running double sum would
 * lose the two 1s next to 2^53: 3002399751580330.5). */
START_TEST(test_operators_window_int64_sum_overflow_and_exact_avg)
{
    const char *sums[] = {
        "{\"g\":1,\"r\":null}", "{\"g\":2,\"r\":9223372036854775807}",
        "{\"g\":3,\"r\":null}", "{\"g\":4,\"r\":-9223372036854775808}",
        "{\"g\":5,\"r\":1}",
    };
    const char *avgs[] = {
        "{\"g\":1,\"r\":3002399751580331.5}",
        "{\"g\":2,\"r\":1.5}",
        "{\"g\":3,\"r\":-2.5}",
    };

    run_group_agg("sum",
                  "[[1, 0, 9223372036854775807], [1, 0, 1], [2, 0, 9223372036854775806], [2, 0, 1],"
                  " [3, 0, -9223372036854775808], [3, 0, -1], [4, 0, -9223372036854775808],"
                  " [4, 0, 0], [5, 0, 1], [5, 0, null]]",
                  "int64", "sum", "int64");
    expect_lines("sum", sums, 5);
    run_group_agg("avg",
                  "[[1, 0, 9007199254740992], [1, 0, 1], [1, 0, 1], [2, 0, 1], [2, 0, 2],"
                  " [3, 0, -7], [3, 0, 2]]",
                  "int64", "avg", "float64");
    expect_lines("avg", avgs, 3);
}
END_TEST

/* min and max of float64 follow the total order of comparisons (NaN
 * above every number), whatever order the rows come in. */
START_TEST(test_operators_window_min_max_with_nan)
{
    const char *rows = "[[1, 0, 'nan'], [1, 0, 1.5], [1, 0, -1], [2, 0, 1.5], [2, 0, -1],"
                       " [2, 0, 'nan'], [3, 0, 'nan'], [4, 0, 7], [4, 0, null], [4, 0, -2.5]]";
    const char *mins[] = {"{\"g\":1,\"r\":-1}", "{\"g\":2,\"r\":-1}", "{\"g\":3,\"r\":null}",
                          "{\"g\":4,\"r\":-2.5}"};
    const char *maxs[] = {"{\"g\":1,\"r\":null}", "{\"g\":2,\"r\":null}", "{\"g\":3,\"r\":null}",
                          "{\"g\":4,\"r\":7}"}; /* NaN is written as null */

    run_group_agg("min", rows, "float64", "min", "float64");
    expect_lines("min", mins, 4);
    run_group_agg("max", rows, "float64", "max", "float64");
    expect_lines("max", maxs, 4);
}
END_TEST

#define KTV_SCHEMA     S("k utf8, t timestamp, v int64")
#define WIN_KNS_SCHEMA S("ws timestamp!, we timestamp!, k utf8, n int64!, s int64")

/* script(steps) -> window aggregate(window) of count and sum(v)
 * by k -> sink "out". */
static void
run_window(const char *steps, const char *window)
{
    run_ok(plan_json(fmt("%s, %s, %s", script_json(1, fmt("[[%s]]", steps), KTV_SCHEMA),
                         op_json("agg", "window_aggregate", 1,
                                 fmt("{'time': 't', 'window': %s, 'keys': ['k'], 'aggregates': "
                                     "%s, 'window_start': 'ws', 'window_end': 'we'}",
                                     window, A("n count, s sum v")),
                                 WIN_KNS_SCHEMA),
                         sink_json("out", 1, "out", NULL)),
                     fmt("%s, %s", edge("src", "agg"), edge("agg", "out"))),
           NULL, NULL);
}

static const char *
kns_line(int64_t start_ms, int64_t end_ms, const char *k, int64_t n, int64_t s)
{
    return fmt("{\"ws\":\"%s\",\"we\":\"%s\",\"k\":\"%s\",\"n\":%" PRId64 ",\"s\":%" PRId64 "}",
               ts_text(start_ms), ts_text(end_ms), k, n, s);
}

/* A hop of 3 s every 1 s puts each row in the 3 windows that contain it
 * (bounds before the epoch too); after a watermark, a row goes only into
 * its windows that are still open, and is not late while one is. */
START_TEST(test_operators_window_hop)
{
    const char *want[] = {
        kns_line(-2000, 1000, "a", 1, 500), kns_line(-1000, 2000, "a", 2, 2000),
        kns_line(0, 3000, "a", 3, 4500),    kns_line(1000, 4000, "a", 3, 6600),
        kns_line(2000, 5000, "a", 3, 9300), kns_line(3000, 6000, "a", 1, 4200),
        kns_line(4000, 7000, "a", 1, 4200),
    };

    run_window("{'rows': [['a', 500, 500], ['a', 1500, 1500], ['a', 2500, 2500]]}, {'wm': 3000},"
               " {'rows': [['a', 2600, 2600], ['a', 4200, 4200]]}",
               "{'type': 'hop', 'size_ms': 3000, 'slide_ms': 1000}");
    expect_lines("out", want, 7);
    expect_late(0);
}
END_TEST

/* Session windows: a row starts or extends its key's session to
 * [first, last + gap); a row within the gap of two sessions merges them;
 * keys are independent; a row is late only when it would make a session
 * of its own that ends before the watermark, not when it falls into a
 * session still open. */
START_TEST(test_operators_window_session)
{
    const char *want[] = {
        kns_line(100, 3400, "a", 4, 4600),
        kns_line(1500, 2500, "b", 1, 1500),
        kns_line(5000, 6500, "a", 2, 10500),
        kns_line(2400, 4000, "c", 2, 5400),
    };

    /* a: [100, 1600) and [2400, 3400), bridged by 1500; a 2000 is late;
     * c 2400 ends its own session before the watermark, but joins c's
     * session [3000, 4000), which is still open */
    run_window("{'rows': [['a', 100, 100], ['a', 600, 600], ['a', 2400, 2400], ['b', 1500, 1500]]},"
               " {'rows': [['a', 1500, 1500], ['a', 5000, 5000], ['c', 3000, 3000]]}, {'wm': 3500},"
               " {'rows': [['a', 2000, 2000], ['a', 5500, 5500], ['c', 2400, 2400]]}",
               "{'type': 'session', 'gap_ms': 1000}");
    expect_lines("out", want, 4);
    expect_late(1);
}
END_TEST

/* Given windows: a second aggregate groups the results of a first one by
 * the window they carry, firing each as the watermark passes its end. */
START_TEST(test_operators_window_given)
{
    const char *plan = plan_json(
        fmt("%s, %s, %s, %s",
            script_json(
                1,
                "[[{'rows': [['a', 100, 1], ['a', 200, 1], ['b', 300, 1]]}, {'wm': 1200},"
                "  {'rows': [['a', 1500, 1], ['c', 1600, 1], ['c', 1700, 1], ['c', 1800, 1],"
                "            ['b', 2500, 1]]}]]",
                KTV_SCHEMA),
            op_json("per_key", "window_aggregate", 1,
                    "{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, 'keys': ['k'], "
                    "'aggregates': [{'name': 'n', 'fn': 'count'}], 'window_start': 'ws', "
                    "'window_end': 'we'}",
                    S("ws timestamp!, we timestamp!, k utf8, n int64!")),
            op_json("all", "window_aggregate", 1,
                    fmt("{'window': {'type': 'given', 'start': 'ws', 'end': 'we'}, 'aggregates': "
                        "%s, 'window_start': 'start', 'window_end': 'end'}",
                        A("total sum n, groups count, mx max n")),
                    S("start timestamp!, end timestamp!, total int64, groups int64!, mx int64")),
            sink_json("out", 1, "out", NULL)),
        fmt("%s, %s, %s", edge("src", "per_key"), edge("per_key", "all"), edge("all", "out")));
    const char *want[] = {
        fmt("{\"start\":\"%s\",\"end\":\"%s\",\"total\":3,\"groups\":2,\"mx\":2}", ts_text(0),
            ts_text(1000)),
        fmt("{\"start\":\"%s\",\"end\":\"%s\",\"total\":4,\"groups\":2,\"mx\":3}", ts_text(1000),
            ts_text(2000)),
        fmt("{\"start\":\"%s\",\"end\":\"%s\",\"total\":1,\"groups\":1,\"mx\":1}", ts_text(2000),
            ts_text(3000)),
    };

    run_ok(plan, NULL, NULL);
    expect_lines("out", want, 3);
    expect_late(0);
}
END_TEST

#define IMPULSE_SCHEMA S("counter int64!, ts timestamp!")

/* impulse(20000 rows, 1 ms apart) -> key counter % 7 -> watermark ->
 * shuffle by key -> tumbling count, sum, min, max by key: the same exact
 * rows at parallelism 1 and 2. */
START_TEST(test_operators_window_same_rows_at_parallelism_1_and_2)
{
    enum { N = 20000, K = 7 };
    const char *kvt = S("k int64, v int64!, t timestamp!");
    const char *plan = plan_json(
        fmt("%s, %s, %s, %s, %s",
            op_json("src", "impulse", 1, fmt("{'count': %d, 'interval_us': 1000}", N),
                    IMPULSE_SCHEMA),
            op_json("key", "calc", 1,
                    "{'project': [{'name': 'k', 'expr': {'call': '%', 'args': [{'col': "
                    "'counter'}, {'lit': 7}]}}, {'name': 'v', 'expr': {'col': 'counter'}}, "
                    "{'name': 't', 'expr': {'col': 'ts'}}]}",
                    kvt),
            op_json("wm", "watermark", 1, "{'column': 't'}", kvt),
            op_json("agg", "window_aggregate", 1,
                    fmt("{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, 'keys': "
                        "['k'], 'aggregates': %s, 'window_start': 'ws'}",
                        A("n count, s sum v, mn min v, mx max v")),
                    S("ws timestamp!, k int64, n int64!, s int64, mn int64, mx int64")),
            sink_json("out", 1, "out", NULL)),
        fmt("%s, %s, %s, %s", edge("src", "key"), edge("key", "wm"), shuffle("wm", "agg", "k"),
            edge("agg", "out")));
    const char **want = calloc(N / 1000 * K, sizeof(char *));
    size_t nwant = 0;

    for (int w = 0; w < N / 1000; w++) {
        for (int k = 0; k < K; k++) {
            int64_t n = 0, s = 0, mn = INT64_MAX, mx = INT64_MIN;
            for (int64_t c = w * 1000; c < w * 1000 + 1000; c++) {
                if (c % K == k) {
                    n++;
                    s += c;
                    mn = c < mn ? c : mn;
                    mx = c > mx ? c : mx;
                }
            }
            want[nwant++] = fmt("{\"ws\":\"%s\",\"k\":%d,\"n\":%" PRId64 ",\"s\":%" PRId64
                                ",\"mn\":%" PRId64 ",\"mx\":%" PRId64 "}",
                                ts_text(w * 1000), k, n, s, mn, mx);
        }
    }
    for (uint32_t p = 1; p <= 2; p++) {
        lm_plan_opts po = {p, 512, NULL};
        char cmd[400];
        run_ok(plan, &po, NULL);
        expect_lines("out", want, nwant);
        snprintf(cmd, sizeof(cmd), "rm -rf %s/out", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
    expect_late(0);
    free(want);
}
END_TEST

/* --- aggregate (updating) ----------------------------------------------------- */

/* script(steps, schema) -> aggregate(config, out schema) -> sink "out",
 * chained: the changelog comes out in order, in one file. */
static const char *
run_update(const char *steps, const char *in_schema, const char *config, const char *out_schema)
{
    run_ok(plan_json(fmt("%s, %s, %s", script_json(1, fmt("[[%s]]", steps), in_schema),
                         op_json("agg", "aggregate", 1, config, out_schema),
                         sink_json("out", 1, "out", NULL)),
                     fmt("%s, %s", edge("src", "agg"), edge("agg", "out"))),
           NULL, NULL);
    return file_text("out", "part-000-000000.jsonl");
}

/* Lines (single quotes for double quotes), each with a newline. */
static const char *
text_of(const char *const *lines, size_t n)
{
    const char *s = "";
    for (size_t i = 0; i < n; i++) {
        s = fmt("%s%s\n", s, J(lines[i]));
    }
    return s;
}

/* For each group a batch changed, the changelog retracts its previous
 * result and inserts the new one (several changes in a batch make one
 * pair); the changelog reduces to the final result. */
START_TEST(test_operators_aggregate_changelog)
{
    static const char *const want[] = {
        "{'k':'a','n':1,'s':1,'_retract':false}", "{'k':'a','n':1,'s':1,'_retract':true}",
        "{'k':'a','n':2,'s':3,'_retract':false}", "{'k':'b','n':1,'s':5,'_retract':false}",
        "{'k':'a','n':2,'s':3,'_retract':true}",  "{'k':'a','n':4,'s':10,'_retract':false}",
        "{'k':'b','n':1,'s':5,'_retract':true}",  "{'k':'b','n':2,'s':6,'_retract':false}",
        "{'k':'b','n':2,'s':6,'_retract':true}",  "{'k':'b','n':3,'s':0,'_retract':false}",
    };
    const char *got = run_update("{'rows': [['a', 1]]}, {'rows': [['a', 2]]}, {'rows': [['b', 5]]},"
                                 " {'rows': [['a', 3], ['a', 4], ['b', 1]]}, {'rows': [['b', -6]]}",
                                 S("k utf8, v int64"),
                                 fmt("{'keys': ['k'], 'aggregates': %s}", A("n count, s sum v")),
                                 S("k utf8, n int64!, s int64, _retract bool!"));
    char *copy[10], **final;
    size_t nfinal;
    lm_report r = {.len = 0};

    ck_assert_str_eq(got, text_of(want, 10));
    for (size_t i = 0; i < 10; i++) {
        copy[i] = strdup(J(want[i]));
    }
    qsort(copy, 10, sizeof(char *), cmp_str);
    ck_assert_msg(lm_test_apply_retractions(copy, 10, &final, &nfinal, "changelog", &r), "%s",
                  r.msg);
    ck_assert_uint_eq(nfinal, 2);
    ck_assert_str_eq(final[0], "{\"k\":\"a\",\"n\":4,\"s\":10}");
    ck_assert_str_eq(final[1], "{\"k\":\"b\",\"n\":3,\"s\":0}");
    free(final);
    for (size_t i = 0; i < 10; i++) {
        free(copy[i]);
    }
}
END_TEST

/* Without keys, one group; shuffled by key over 2 subtasks, the
 * changelogs of the subtasks reduce to the result per key. */
START_TEST(test_operators_aggregate_global_and_parallel)
{
    static const char *const global[] = {
        "{'n':2,'s':3,'_retract':false}",
        "{'n':2,'s':3,'_retract':true}",
        "{'n':3,'s':6,'_retract':false}",
    };
    const char *got =
        run_update("{'rows': [['a', 1], ['b', 2]]}, {'rows': [['a', 3]]}", S("k utf8, v int64"),
                   fmt("{'keys': [], 'aggregates': %s}", A("n count, s sum v")),
                   S("n int64!, s int64, _retract bool!"));
    const char *steps = "";
    const char *want[9];
    char **lines, **final;
    size_t n, nfinal;
    lm_report r = {.len = 0};

    ck_assert_str_eq(got, text_of(global, 3));

    /* 30 batches of rows (k<b % 9>, b) and (k<7b % 9>, 1) */
    for (int b = 0; b < 30; b++) {
        steps = fmt("%s%s{'rows': [['k%d', %d], ['k%d', 1]]}", steps, b > 0 ? ", " : "", b % 9, b,
                    (b * 7) % 9);
    }
    for (int k = 0; k < 9; k++) {
        int64_t cnt = 0, sum = 0;
        for (int b = 0; b < 30; b++) {
            cnt += (b % 9 == k) + ((b * 7) % 9 == k);
            sum += (b % 9 == k ? b : 0) + ((b * 7) % 9 == k ? 1 : 0);
        }
        want[k] = fmt("{\"k\":\"k%d\",\"n\":%" PRId64 ",\"s\":%" PRId64 "}", k, cnt, sum);
    }
    run_ok(plan_json(fmt("%s, %s, %s", script_json(1, fmt("[[%s]]", steps), S("k utf8, v int64")),
                         op_json("agg", "aggregate", 2,
                                 fmt("{'keys': ['k'], 'aggregates': %s}", A("n count, s sum v")),
                                 S("k utf8, n int64!, s int64, _retract bool!")),
                         sink_json("out", 2, "par", NULL)),
                     fmt("%s, %s", shuffle("src", "agg", "k"), edge("agg", "out"))),
           NULL, NULL);
    lines = lm_test_read_lines(fmt("%s/par", dir), &n);
    ck_assert_ptr_nonnull(lines);
    ck_assert_msg(lm_test_apply_retractions(lines, n, &final, &nfinal, "changelog", &r), "%s",
                  r.msg);
    qsort((char **)want, 9, sizeof(char *), cmp_str);
    lm_test_compare_lines(final, nfinal, (char **)want, 9, "final", "reduced", "expected", &r);
    free(final);
    lm_test_free_lines(lines, n);
    ck_assert_msg(!r.failed, "%s", r.msg);
}
END_TEST

/* A changelog input (last column _retract): retractions take rows out of
 * every aggregate (count_distinct counts a value while any copy is left);
 * a group whose rows are all retracted is retracted and not inserted; a
 * retraction of a row never seen changes nothing; a batch that leaves a
 * group as it was emits nothing for it. */
START_TEST(test_operators_aggregate_changelog_input)
{
    static const char *const want[] = {
        "{'k':'a','n':3,'s':4,'d':2,'c':3,'_retract':false}",
        "{'k':'a','n':3,'s':4,'d':2,'c':3,'_retract':true}",
        "{'k':'a','n':2,'s':3,'d':2,'c':2,'_retract':false}",
        "{'k':'a','n':2,'s':3,'d':2,'c':2,'_retract':true}",
        "{'k':'a','n':1,'s':2,'d':1,'c':1,'_retract':false}",
        "{'k':'b','n':1,'s':null,'d':0,'c':0,'_retract':false}",
        "{'k':'a','n':1,'s':2,'d':1,'c':1,'_retract':true}",
        "{'k':'a','n':1,'s':7,'d':1,'c':1,'_retract':false}",
    };
    const char *got =
        run_update("{'rows': [['a', 1, false], ['a', 1, false], ['a', 2, false]]},"
                   " {'rows': [['a', 1, true]]}, {'rows': [['a', 1, true]]},"
                   " {'rows': [['z', 9, true], ['b', null, false]]}, {'rows': [['a', 2, true]]},"
                   " {'rows': [['a', 7, false], ['b', 3, false], ['b', 3, true]]}",
                   S("k utf8, v int64, _retract bool!"),
                   fmt("{'keys': ['k'], 'aggregates': %s}",
                       A("n count, s sum v, d count_distinct v, c count v")),
                   S("k utf8, n int64!, s int64, d int64!, c int64!, _retract bool!"));

    ck_assert_str_eq(got, text_of(want, 8));
}
END_TEST

/* ttl_ms: a group not updated for ttl_ms of watermark progress is
 * forgotten (without a retraction), and not before: its next row starts
 * it afresh. Its count_distinct values are forgotten with it, not
 * earlier. A row older than the TTL allows is dropped. */
START_TEST(test_operators_aggregate_ttl)
{
    static const char *const want[] = {
        "{'k':'a','n':1,'d':1,'_retract':false}", "{'k':'a','n':1,'d':1,'_retract':true}",
        "{'k':'a','n':2,'d':2,'_retract':false}", "{'k':'a','n':2,'d':2,'_retract':true}",
        "{'k':'a','n':3,'d':2,'_retract':false}", "{'k':'a','n':1,'d':1,'_retract':false}",
    };
    /* a: updated at 0, 600 and 1550; kept at watermark 1500 (900 ms after
     * its last update, x seen 1500 ms before), forgotten at 2550 */
    const char *got =
        run_update("{'rows': [['a', 0, 'x']]}, {'wm': 500}, {'rows': [['a', 600, 'y']]},"
                   " {'wm': 1500}, {'rows': [['a', 1550, 'x']]}, {'wm': 2550},"
                   " {'rows': [['a', 2600, 'x'], ['b', 1000, 'x']]}",
                   S("k utf8, t timestamp, v utf8"),
                   fmt("{'keys': ['k'], 'ttl_ms': 1000, 'time': 't', 'aggregates': %s}",
                       A("n count, d count_distinct v")),
                   S("k utf8, n int64!, d int64!, _retract bool!"));

    ck_assert_str_eq(got, text_of(want, 6));
    ck_assert_uint_eq(last_res.late_rows, 1); /* b at 1000 */
}
END_TEST

/* --- file_sink -------------------------------------------------------------- */

/* Values with the cases each format must get right: extreme integers,
 * floats (shortest text, exponents, NaN and infinities), strings with
 * quotes, backslashes, line breaks, tabs, a control character, non-ASCII
 * text and commas, empty strings vs nulls, timestamps with microseconds
 * (before the epoch too), binary; a column name with a comma. */
#define FMT_ROWS                                                                                   \
    "[[{'rows': [[42, 0.1, true, 'plain', '2024-02-29 23:59:59.123456', '6162'],"                  \
    "            [-9223372036854775808, 1e21, false, 'q\\\"uote\\\\ back\\nnl\\ttab "              \
    "\xc3\xa9\\u0001',"                                                                            \
    "             '1969-12-31 23:59:59.999999', '00ff'],"                                          \
    "            [null, null, null, null, null, null],"                                            \
    "            [0, 'nan', true, '', 0, null],"                                                   \
    "            [1, '-inf', false, 'a,b', '2000-01-01 00:00:00', '00']]}]]"

static void
run_format(const char *name, const char *format)
{
    run_ok(plan_json(fmt("%s, %s",
                         script_json(1, FMT_ROWS,
                                     "[{'name': 'i', 'type': 'int64'}, {'name': 'f', 'type': "
                                     "'float64'}, {'name': 'b', 'type': 'bool'}, {'name': 's,x', "
                                     "'type': 'utf8'}, {'name': 't', 'type': 'timestamp'}, "
                                     "{'name': 'bin', 'type': 'binary'}]"),
                         sink_json("out", 1, name, fmt(", 'format': '%s'", format))),
                     edge("src", "out")),
           NULL, NULL);
}

/* JSON lines: one object per row, keys in schema order, the documented
 * text of each value; NaN and infinities are null. */
START_TEST(test_operators_file_sink_json_text)
{
    const char *want =
        "{\"i\":42,\"f\":0.1,\"b\":true,\"s,x\":\"plain\",\"t\":\"2024-02-29 "
        "23:59:59.123456\",\"bin\":\"6162\"}\n"
        "{\"i\":-9223372036854775808,\"f\":1e+21,\"b\":false,\"s,x\":\"q\\\"uote\\\\ "
        "back\\nnl\\ttab \xc3\xa9\\u0001\",\"t\":\"1969-12-31 23:59:59.999999\",\"bin\":\"00ff\"}\n"
        "{\"i\":null,\"f\":null,\"b\":null,\"s,x\":null,\"t\":null,\"bin\":null}\n"
        "{\"i\":0,\"f\":null,\"b\":true,\"s,x\":\"\",\"t\":\"1970-01-01 "
        "00:00:00.000000\",\"bin\":null}\n"
        "{\"i\":1,\"f\":null,\"b\":false,\"s,x\":\"a,b\",\"t\":\"2000-01-01 "
        "00:00:00.000000\",\"bin\":\"00\"}\n";
    size_t n;
    char **files;

    run_format("json", "json");
    files = committed_files("json", &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(files[0], "part-000-000000.jsonl");
    ck_assert_str_eq(file_text("json", files[0]), want);
    lm_test_free_lines(files, n);
}
END_TEST

/* CSV: a header, the same text for each value; a field is quoted when it
 * holds a comma, a quote or a line break, or is an empty string (quotes
 * doubled); null is an empty field. */
START_TEST(test_operators_file_sink_csv_text)
{
    const char *want =
        "i,f,b,\"s,x\",t,bin\n"
        "42,0.1,true,plain,2024-02-29 23:59:59.123456,6162\n"
        "-9223372036854775808,1e+21,false,\"q\"\"uote\\ back\nnl\ttab \xc3\xa9\x01\","
        "1969-12-31 23:59:59.999999,00ff\n"
        ",,,,,\n"
        "0,nan,true,\"\",1970-01-01 00:00:00.000000,\n"
        "1,-inf,false,\"a,b\",2000-01-01 00:00:00.000000,00\n";
    size_t n;
    char **files;

    run_format("csv", "csv");
    files = committed_files("csv", &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(files[0], "part-000-000000.csv");
    ck_assert_str_eq(file_text("csv", files[0]), want);
    lm_test_free_lines(files, n);
}
END_TEST

/* 10 batches of 10 rows [0]..[99]. */
static const char *
hundred_rows(void)
{
    const char *steps = "";
    for (int b = 0; b < 10; b++) {
        steps = fmt("%s%s{'rows': [", steps, b > 0 ? ", " : "");
        for (int j = 0; j < 10; j++) {
            steps = fmt("%s%s[%d]", steps, j > 0 ? ", " : "", b * 10 + j);
        }
        steps = fmt("%s]}", steps);
    }
    return fmt("[[%s]]", steps);
}

/* rolling_bytes: a file is closed once it holds that many bytes (checked
 * after each batch), the next batch opens the next one; the committed
 * files together hold every row once (CSV: each file with its header). */
START_TEST(test_operators_file_sink_rolls_by_size)
{
    const char *want[100];
    size_t n, nlines;
    char **files, **lines;

    for (int i = 0; i < 100; i++) {
        want[i] = fmt("{\"v\":%d}", i);
    }
    /* each batch is 80-90 bytes of JSON, 22-32 of CSV with the header */
    run_ok(plan_json(fmt("%s, %s, %s", script_json(1, hundred_rows(), S("v int64")),
                         sink_json("json", 1, "json", ", 'rolling_bytes': 50"),
                         sink_json("csv", 1, "csv", ", 'rolling_bytes': 20, 'format': 'csv'")),
                     fmt("%s, %s", edge("src", "json"), edge("src", "csv"))),
           NULL, NULL);
    files = committed_files("json", &n);
    ck_assert_uint_eq(n, 10);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(files[i], fmt("part-000-%06zu.jsonl", i));
        ck_assert_uint_ge(strlen(file_text("json", files[i])), 50);
    }
    lm_test_free_lines(files, n);
    expect_lines("json", want, 100);

    files = committed_files("csv", &n);
    ck_assert_uint_eq(n, 10);
    for (size_t i = 0; i < n; i++) {
        const char *body = "v\n";
        for (int j = 0; j < 10; j++) {
            body = fmt("%s%zu\n", body, i * 10 + (size_t)j);
        }
        ck_assert_str_eq(file_text("csv", files[i]), body);
    }
    lm_test_free_lines(files, n);
    /* nothing left behind in progress */
    lines = lm_test_read_lines(fmt("%s/json/.inprogress", dir), &nlines);
    ck_assert_ptr_nonnull(lines);
    ck_assert_uint_eq(nlines, 0);
    lm_test_free_lines(lines, nlines);
}
END_TEST

/* rolling_ms: a file open that long is closed, even with no row coming. */
START_TEST(test_operators_file_sink_rolls_by_time)
{
    size_t n;
    char **files;

    run_ok(plan_json(fmt("%s, %s",
                         script_json(1,
                                     fmt("[[{'rows': [[1], [2]]}, {'sleep_ms': %d}, "
                                         "{'rows': [[3]]}]]",
                                         ms(800)),
                                     S("v int64")),
                         sink_json("out", 1, "out", ", 'rolling_ms': 150")),
                     edge("src", "out")),
           NULL, NULL);
    files = committed_files("out", &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(file_text("out", files[0]), "{\"v\":1}\n{\"v\":2}\n");
    ck_assert_str_eq(file_text("out", files[1]), "{\"v\":3}\n");
    lm_test_free_lines(files, n);
}
END_TEST

/* stdout writes each row as a JSON line to standard output; blackhole
 * drops rows, taking delay_us per batch. */
START_TEST(test_operators_stdout_and_blackhole_sinks)
{
    const char *path = fmt("%s/stdout.txt", dir);
    int fd, saved, rv;
    lm_job_result res;
    lm_error err;

    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
    close(fd);
    rv = lm_test_run_plan(
        plan_json(
            fmt("%s, %s",
                script_json(1, "[[{'rows': [[1, 'a'], [null, '\\\"']]}, {'rows': [[3, null]]}]]",
                            S("v int64, s utf8")),
                op_json("out", "stdout", 1, "{}", NULL)),
            edge("src", "out")),
        2, NULL, NULL, &res, &err);
    dup2(saved, STDOUT_FILENO); /* before any assertion */
    close(saved);
    ck_assert_msg(rv == LM_OK, "%s", err.msg);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    ck_assert_str_eq(file_text("", "stdout.txt"),
                     "{\"v\":1,\"s\":\"a\"}\n{\"v\":null,\"s\":\"\\\"\"}\n{\"v\":3,\"s\":null}\n");

    /* 10 batches at 40 ms each: at least 0.4 s */
    ck_assert_int_eq(
        lm_test_run_plan(plan_json(fmt("%s, %s", script_json(1, hundred_rows(), S("v int64")),
                                       op_json("out", "blackhole", 1, "{'delay_us': 40000}", NULL)),
                                   edge("src", "out")),
                         2, NULL, NULL, &res, &err),
        LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    ck_assert_msg(res.seconds >= 0.35, "10 batches at 40 ms took %.3f s", res.seconds);
}
END_TEST

/* A job run with lm_job_start, watched from the test. */
typedef struct job {
    lm_rt *rt;
    lm_plan *plan;
    lm_job_handle *h;
} job;

static void
job_start(job *j, const char *json, const lm_job_opts *jo)
{
    lm_rt_opts ro = {1, 2, 0, "test"};
    lm_addr tm;
    lm_error err;

    ck_assert_msg(lm_plan_load_json(json, strlen(json), "plan", NULL, &j->plan, &err) == LM_OK,
                  "%s", err.msg);
    ck_assert_int_eq(lm_rt_new(&ro, &j->rt), LM_OK);
    ck_assert_int_eq(lm_taskmgr_spawn(j->rt, &tm), LM_OK);
    ck_assert_int_eq(lm_job_start(j->rt, tm, j->plan, jo, &j->h), LM_OK);
}

static void
job_end(job *j, lm_job_result *res)
{
    ck_assert_int_eq(lm_job_wait(j->h, 30000 * lm_test_slowdown(), res), LM_OK);
    lm_rt_free(j->rt, 5000);
    lm_job_handle_free(j->h);
    lm_plan_free(j->plan);
}

static uint64_t
job_checkpoint(job *j, bool then_stop)
{
    uint64_t epoch = 0;
    lm_error err;
    ck_assert_msg(lm_job_checkpoint(j->h, LM_BARRIER_CHECKPOINT, then_stop,
                                    10000 * lm_test_slowdown(), &epoch, &err) == LM_OK,
                  "checkpoint: %s", err.msg);
    return epoch;
}

/* Waits up to 10 s for a file to exist. */
static void
wait_file(const char *path)
{
    for (int i = 0; i < 1000 * lm_test_slowdown() && access(path, F_OK) != 0; i++) {
        usleep(10000);
    }
    ck_assert_msg(access(path, F_OK) == 0, "%s never came", path);
}

static void
touch(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
}

/* Lines in the files of dir/name (committed) or dir/name/.inprogress. */
static size_t
count_lines(const char *name, bool inprogress)
{
    size_t n;
    char **l = lm_test_read_lines(fmt("%s/%s%s", dir, name, inprogress ? "/.inprogress" : ""), &n);
    if (l == NULL) {
        return 0;
    }
    lm_test_free_lines(l, n);
    return n;
}

/* Waits up to 10 s for dir/name to hold n committed lines. */
static void
wait_committed(const char *name, size_t n)
{
    for (int i = 0; i < 1000 * lm_test_slowdown() && count_lines(name, false) != n; i++) {
        usleep(10000);
    }
    ck_assert_uint_eq(count_lines(name, false), n);
}

static const char *const v_lines[] = {"{\"v\":1}", "{\"v\":2}", "{\"v\":3}",
                                      "{\"v\":4}", "{\"v\":5}", "{\"v\":6}"};

/* With checkpoints, the sink's files become visible when a checkpoint
 * completes, or at the end of input, and not before. */
START_TEST(test_operators_file_sink_commits_with_checkpoints)
{
    job j;
    lm_job_opts jo = {.job_id = "vis", .checkpoint_dir = fmt("%s/ckpt", dir)};
    lm_job_result res;
    const char *steps = fmt("[[{'rows': [[1], [2], [3]]}, {'touch': '%s/b1'}, {'wait_barrier': 1},"
                            "  {'rows': [[4], [5], [6]]}, {'touch': '%s/b2'},"
                            "  {'wait_file': '%s/go'}]]",
                            dir, dir, dir);

    job_start(&j,
              plan_json(fmt("%s, %s", script_json(1, steps, S("v int64")),
                            sink_json("out", 1, "out", NULL)),
                        edge("src", "out")),
              &jo);
    wait_file(fmt("%s/b1", dir));
    usleep(200000); /* ticks pass: still nothing visible */
    ck_assert_uint_eq(count_lines("out", true), 3);
    ck_assert_uint_eq(count_lines("out", false), 0);
    ck_assert_uint_eq(job_checkpoint(&j, false), 1);
    wait_committed("out", 3);
    expect_lines("out", v_lines, 3);
    wait_file(fmt("%s/b2", dir));
    usleep(200000);
    ck_assert_uint_eq(count_lines("out", true), 3); /* rows 4-6, waiting */
    expect_lines("out", v_lines, 3);
    touch(fmt("%s/go", dir));
    job_end(&j, &res);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_lines("out", v_lines, 6);
    ck_assert_uint_eq(count_lines("out", true), 0);
}
END_TEST

/* A job that fails leaves only what its completed checkpoints committed;
 * restored from the checkpoint, it writes every row exactly once. */
START_TEST(test_operators_file_sink_failed_job_leaves_only_committed_files)
{
    job j;
    lm_job_opts jo = {.job_id = "fail", .checkpoint_dir = fmt("%s/ckpt", dir)};
    lm_job_result res;
    const char *plans[2];

    for (int k = 0; k < 2; k++) {
        const char *steps = fmt("[[{'rows': [[1], [2]]}, {'touch': '%s/b1'}, {'wait_barrier': 1},"
                                "  {'wait_file': '%s/go'}, {'rows': [[3], [4]]},"
                                "  {'rows': [[5], [6]]}%s]]",
                                dir, dir, k == 0 ? ", {'fail': 'boom after row 6'}" : "");
        plans[k] = plan_json(fmt("%s, %s, %s", script_json(1, steps, S("v int64")),
                                 op_json("c", "calc", 1, "{}", S("v int64")),
                                 sink_json("out", 1, "out", ", 'rolling_bytes': 10")),
                             fmt("%s, %s", edge("src", "c"), edge("c", "out")));
    }
    {
        /* the failure is expected: do not log it */
        lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, true, NULL};
        lm_log_configure(&lo, NULL);
    }
    job_start(&j, plans[0], &jo);
    wait_file(fmt("%s/b1", dir));
    ck_assert_uint_eq(job_checkpoint(&j, false), 1);
    wait_committed("out", 2);
    touch(fmt("%s/go", dir));
    job_end(&j, &res);
    ck_assert_int_eq(res.state, LM_JOB_FAILED);
    ck_assert_msg(strstr(res.reason, "operator 'src' subtask 0") != NULL &&
                      strstr(res.reason, "boom after row 6") != NULL,
                  "reason: %s", res.reason);
    expect_lines("out", v_lines, 2);
    ck_assert_uint_eq(count_lines("out", true), 4); /* written, rolled, never committed */

    jo.restore_epoch = 1;
    job_start(&j, plans[1], &jo);
    job_end(&j, &res);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_lines("out", v_lines, 6);
    ck_assert_uint_eq(count_lines("out", true), 0);
}
END_TEST

/* A checkpoint that does not complete (an operator fails at its barrier
 * after the sink pre-committed) commits nothing. */
START_TEST(test_operators_file_sink_incomplete_checkpoint_commits_nothing)
{
    job j;
    lm_job_opts jo = {.job_id = "incomplete", .checkpoint_dir = fmt("%s/ckpt", dir)};
    lm_job_result res;
    uint64_t epoch;
    lm_error err;
    const char *steps = fmt("[[{'rows': [[1], [2], [3]]}, {'touch': '%s/b1'}, {'wait_barrier': 1},"
                            "  {'wait_file': '%s/never'}]]",
                            dir, dir);

    {
        /* the failure is expected: do not log it */
        lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, true, NULL};
        lm_log_configure(&lo, NULL);
    }
    job_start(&j,
              plan_json(fmt("%s, %s, %s", script_json(1, steps, S("v int64")),
                            sink_json("out", 1, "out", NULL),
                            op_json("bad", "ops_fail_barrier", 1, "{}", NULL)),
                        fmt("%s, %s", edge("src", "out"), shuffle("src", "bad", "v"))),
              &jo);
    wait_file(fmt("%s/b1", dir));
    usleep(100000);
    ck_assert_uint_eq(count_lines("out", true), 3);
    ck_assert_int_ne(lm_job_checkpoint(j.h, LM_BARRIER_CHECKPOINT, false,
                                       10000 * lm_test_slowdown(), &epoch, &err),
                     LM_OK);
    job_end(&j, &res);
    ck_assert_int_eq(res.state, LM_JOB_FAILED);
    ck_assert_msg(strstr(res.reason, "refusing barrier 1") != NULL, "reason: %s", res.reason);
    ck_assert_uint_eq(count_lines("out", false), 0);
    ck_assert_uint_eq(count_lines("out", true), 3);
}
END_TEST

/* --- impulse ------------------------------------------------------------------ */

/* Subtask i of p emits counters i, i + p, ... below count, at event time
 * start_ms + counter * interval_us; rate is over all subtasks. */
START_TEST(test_operators_impulse_counts_and_times_across_subtasks)
{
    static const char *const want[3] = {
        "{\"counter\":0,\"ts\":\"1970-01-01 00:00:01.000000\"}\n"
        "{\"counter\":3,\"ts\":\"1970-01-01 00:00:01.001500\"}\n"
        "{\"counter\":6,\"ts\":\"1970-01-01 00:00:01.003000\"}\n"
        "{\"counter\":9,\"ts\":\"1970-01-01 00:00:01.004500\"}\n",
        "{\"counter\":1,\"ts\":\"1970-01-01 00:00:01.000500\"}\n"
        "{\"counter\":4,\"ts\":\"1970-01-01 00:00:01.002000\"}\n"
        "{\"counter\":7,\"ts\":\"1970-01-01 00:00:01.003500\"}\n",
        "{\"counter\":2,\"ts\":\"1970-01-01 00:00:01.001000\"}\n"
        "{\"counter\":5,\"ts\":\"1970-01-01 00:00:01.002500\"}\n"
        "{\"counter\":8,\"ts\":\"1970-01-01 00:00:01.004000\"}\n",
    };
    lm_job_result res;
    lm_error err;
    size_t n;
    char **files;

    run_ok(plan_json(
               fmt("%s, %s",
                   op_json("src", "impulse", 3,
                           "{'count': 10, 'start_ms': 1000, 'interval_us': 500}", IMPULSE_SCHEMA),
                   sink_json("out", 3, "out", NULL)),
               edge("src", "out")),
           NULL, NULL);
    files = committed_files("out", &n);
    ck_assert_uint_eq(n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(files[i], fmt("part-%03d-000000.jsonl", i));
        ck_assert_str_eq(file_text("out", files[i]), want[i]);
    }
    lm_test_free_lines(files, n);

    /* 300 events at 1000/s over 2 subtasks take 0.3 s, not 0.15 s */
    ck_assert_int_eq(
        lm_test_run_plan(plan_json(fmt("%s, %s",
                                       op_json("src", "impulse", 2, "{'count': 300, 'rate': 1000}",
                                               IMPULSE_SCHEMA),
                                       sink_json("out", 2, "rate", NULL)),
                                   edge("src", "out")),
                         2, NULL, NULL, &res, &err),
        LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    ck_assert_uint_eq(count_lines("rate", false), 300);
    ck_assert_msg(res.seconds >= 0.25, "300 events at 1000/s took %.3f s", res.seconds);
}
END_TEST

/* A restored impulse goes on from the counters its checkpoint recorded:
 * stopped with a checkpoint part-way and restored, it emits every counter
 * exactly once. */
START_TEST(test_operators_impulse_restore_goes_on_where_it_stopped)
{
    enum { N = 3000 };
    job j;
    lm_job_opts jo = {.job_id = "imp", .checkpoint_dir = fmt("%s/ckpt", dir)};
    lm_job_result res;
    const char *plan = plan_json(
        fmt("%s, %s, %s",
            op_json("src", "impulse", 2,
                    fmt("{'count': %d, 'rate': %d}", N, 3000 / lm_test_slowdown()), IMPULSE_SCHEMA),
            op_json("c", "calc", 2,
                    "{'project': [{'name': 'counter', 'expr': {'col': 'counter'}}]}",
                    S("counter int64!")),
            sink_json("out", 2, "out", NULL)),
        fmt("%s, %s", edge("src", "c"), edge("c", "out")));
    const char *want[N];

    for (int i = 0; i < N; i++) {
        want[i] = fmt("{\"counter\":%d}", i);
    }
    job_start(&j, plan, &jo);
    usleep(200000);
    ck_assert_uint_eq(job_checkpoint(&j, true), 1);
    job_end(&j, &res);
    ck_assert_msg(res.state == LM_JOB_STOPPED, "job: %d %s", res.state, res.reason);
    ck_assert_uint_lt(count_lines("out", false), N);
    jo.restore_epoch = 1;
    job_start(&j, plan, &jo);
    job_end(&j, &res);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_lines("out", want, N);
}
END_TEST

/* --- restore ------------------------------------------------------------------ */

/* Rows i = 0..199 in 10 batches: key k(i % 5), time i * 37 ms plus a
 * second after every 40 rows (so that sessions end), value i * 13 % 101.
 * With `stop`, the script waits for barrier 1 after batch 5, and then for
 * dir/go. */
static const char *
restore_steps(bool stop)
{
    const char *steps = "";
    for (int b = 0; b < 10; b++) {
        if (stop && b == 5) {
            steps = fmt("%s, {'touch': '%s/mid'}, {'wait_barrier': 1}, {'wait_file': '%s/go'}",
                        steps, dir, dir);
        }
        steps = fmt("%s%s{'rows': [", steps, b > 0 ? ", " : "");
        for (int j = 0; j < 20; j++) {
            int i = b * 20 + j;
            steps = fmt("%s%s['k%d', %d, %d]", steps, j > 0 ? ", " : "", i % 5,
                        i * 37 + (i / 40) * 1000, i * 13 % 101);
        }
        steps = fmt("%s]}", steps);
    }
    return fmt("[[%s]]", steps);
}

/* script -> watermark -> shuffle -> tumbling aggregate -> sink P_tum, and
 * -> shuffle -> session aggregate -> sink P_ses, at parallelism 2. */
static const char *
restore_plan(const char *prefix, bool stop)
{
    return plan_json(
        fmt("%s, %s, %s, %s, %s, %s", script_json(1, restore_steps(stop), KTV_SCHEMA),
            op_json("wm", "watermark", 1, "{'column': 't', 'delay_ms': 100, 'every_batches': 1}",
                    KTV_SCHEMA),
            op_json("tum", "window_aggregate", 2,
                    fmt("{'time': 't', 'window': {'type': 'tumble', 'size_ms': 1000}, 'keys': "
                        "['k'], 'window_start': 'ws', 'aggregates': %s}",
                        A("n count, s sum v, d count_distinct v, mn min v, mx max v")),
                    S("ws timestamp!, k utf8, n int64!, s int64, d int64!, mn int64, mx int64")),
            op_json("ses", "window_aggregate", 2,
                    fmt("{'time': 't', 'window': {'type': 'session', 'gap_ms': 500}, 'keys': "
                        "['k'], 'window_start': 'ws', 'window_end': 'we', 'aggregates': %s}",
                        A("n count, s sum v")),
                    WIN_KNS_SCHEMA),
            sink_json("tum_out", 2, fmt("%s_tum", prefix), NULL),
            sink_json("ses_out", 2, fmt("%s_ses", prefix), NULL)),
        fmt("%s, %s, %s, %s, %s", edge("src", "wm"), shuffle("wm", "tum", "k"),
            shuffle("wm", "ses", "k"), edge("tum", "tum_out"), edge("ses", "ses_out")));
}

/* A job stopped with a checkpoint taken while windows and sessions are
 * open, then restored from it, gives exactly the output of a run without
 * the stop. */
START_TEST(test_operators_window_restore_mid_window_equals_uninterrupted)
{
    job j;
    lm_job_opts jo = {.job_id = "restore", .checkpoint_dir = fmt("%s/ckpt", dir)};
    lm_job_result res;
    const char *want[200];
    size_t nwant = 0;
    lm_report r = {.len = 0};
    size_t na, nb;
    char **a, **b;

    /* the tumbling windows, computed here */
    for (int w = 0; w < 12; w++) {
        for (int k = 0; k < 5; k++) {
            int64_t n = 0, s = 0, mn = INT64_MAX, mx = INT64_MIN, d = 0;
            bool seen[101] = {false};
            for (int i = k; i < 200; i += 5) {
                int64_t t = i * 37 + (i / 40) * 1000, v = i * 13 % 101;
                if (t / 1000 == w) {
                    n++;
                    s += v;
                    mn = v < mn ? v : mn;
                    mx = v > mx ? v : mx;
                    d += !seen[v];
                    seen[v] = true;
                }
            }
            if (n > 0) {
                want[nwant++] = fmt("{\"ws\":\"%s\",\"k\":\"k%d\",\"n\":%" PRId64 ",\"s\":%" PRId64
                                    ",\"d\":%" PRId64 ",\"mn\":%" PRId64 ",\"mx\":%" PRId64 "}",
                                    ts_text(w * 1000), k, n, s, d, mn, mx);
            }
        }
    }

    run_ok(restore_plan("a", false), NULL, NULL);
    expect_lines("a_tum", want, nwant);

    job_start(&j, restore_plan("b", true), &jo);
    wait_file(fmt("%s/mid", dir));
    ck_assert_uint_eq(job_checkpoint(&j, true), 1);
    job_end(&j, &res);
    ck_assert_msg(res.state == LM_JOB_STOPPED, "job: %d %s", res.state, res.reason);
    touch(fmt("%s/go", dir));
    jo.restore_epoch = 1;
    job_start(&j, restore_plan("b", true), &jo);
    job_end(&j, &res);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    expect_lines("b_tum", want, nwant);

    a = lm_test_read_lines(fmt("%s/a_ses", dir), &na);
    b = lm_test_read_lines(fmt("%s/b_ses", dir), &nb);
    ck_assert_uint_eq(na, 25); /* 5 keys, 5 bursts */
    lm_test_compare_lines(b, nb, a, na, "sessions", "restored", "uninterrupted", &r);
    lm_test_free_lines(a, na);
    lm_test_free_lines(b, nb);
    ck_assert_msg(!r.failed, "%s", r.msg);
}
END_TEST

Suite *
operators_suite(void)
{
    Suite *s = suite_create("operators");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_operators_watermark_out_of_order_within_delay);
    tcase_add_test(tc, test_operators_watermark_periodic_emission);
    tcase_add_test(tc, test_operators_watermark_end_of_input_flushes_every_window);
    tcase_add_test(tc, test_operators_watermark_is_the_minimum_of_the_inputs);
    tcase_add_test(tc, test_operators_watermark_idle_input_released_then_back);
    tcase_add_test(tc, test_operators_calc_filter_three_valued_logic);
    tcase_add_test(tc, test_operators_calc_projection_and_fused_filter);
    tcase_add_test(tc, test_operators_config_errors_name_operator_and_key);
    tcase_add_test(tc, test_operators_window_every_aggregate_with_nulls);
    tcase_add_test(tc, test_operators_window_int64_sum_overflow_and_exact_avg);
    tcase_add_test(tc, test_operators_window_min_max_with_nan);
    tcase_add_test(tc, test_operators_window_hop);
    tcase_add_test(tc, test_operators_window_session);
    tcase_add_test(tc, test_operators_window_given);
    tcase_add_test(tc, test_operators_window_same_rows_at_parallelism_1_and_2);
    tcase_add_test(tc, test_operators_aggregate_changelog);
    tcase_add_test(tc, test_operators_aggregate_global_and_parallel);
    tcase_add_test(tc, test_operators_aggregate_changelog_input);
    tcase_add_test(tc, test_operators_aggregate_ttl);
    tcase_add_test(tc, test_operators_file_sink_json_text);
    tcase_add_test(tc, test_operators_file_sink_csv_text);
    tcase_add_test(tc, test_operators_file_sink_rolls_by_size);
    tcase_add_test(tc, test_operators_file_sink_rolls_by_time);
    tcase_add_test(tc, test_operators_stdout_and_blackhole_sinks);
    tcase_add_test(tc, test_operators_file_sink_commits_with_checkpoints);
    tcase_add_test(tc, test_operators_file_sink_failed_job_leaves_only_committed_files);
    tcase_add_test(tc, test_operators_file_sink_incomplete_checkpoint_commits_nothing);
    tcase_add_test(tc, test_operators_impulse_counts_and_times_across_subtasks);
    tcase_add_test(tc, test_operators_impulse_restore_goes_on_where_it_stopped);
    tcase_add_test(tc, test_operators_window_restore_mid_window_equals_uninterrupted);
    tcase_add_test(tc, test_operators_watermark_idle_twice);
    suite_add_tcase(s, tc);
    return s;
}
