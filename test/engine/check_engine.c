/*
 * check_engine.c: plans, the task manager and subtasks: validation
 * messages, exact results at several parallelisms, shuffles, credit-based
 * backpressure, failures, and aligned barriers.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_op.h"
#include "lm_plan.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_test.h"

static char dir[256];

static void
setup(void)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    lm_log_configure(&lo, NULL);
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
}

static void
teardown(void)
{
    lm_error err;
    lm_storage_remove_tree(dir, &err);
    lm_msg_pool_trim();
}

/* --- validation ------------------------------------------------------- */

#define IMPULSE_SCHEMA                                                                             \
    "[{\"name\": \"counter\", \"type\": \"int64\", \"nullable\": false},"                          \
    " {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]"

/* Loads plan text and expects LM_EINVAL with every needle in the message. */
static void
expect_invalid(const char *json, const char *needle1, const char *needle2)
{
    lm_plan *plan = NULL;
    lm_error err;
    int rv = lm_plan_load_json(json, strlen(json), "p.json", NULL, &plan, &err);
    ck_assert_msg(rv == LM_EINVAL, "loaded a bad plan (rv %d): %s", rv, json);
    ck_assert_ptr_null(plan);
    ck_assert_msg(strstr(err.msg, needle1) != NULL, "'%s' lacks '%s'", err.msg, needle1);
    ck_assert_msg(needle2 == NULL || strstr(err.msg, needle2) != NULL, "'%s' lacks '%s'", err.msg,
                  needle2);
}

START_TEST(test_engine_plan_errors_name_the_operator)
{
    expect_invalid("{\"operators\": [", "p.json:1:", NULL);
    expect_invalid("{\"operators\": []}", "non-empty", NULL);
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"imuplse\", \"schema\": " IMPULSE_SCHEMA "}]}",
        "unknown operator kind 'imuplse'", "did you mean 'impulse'");
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"a\", \"kind\": \"blackhole\"}]}",
        "operator 'a'", "used twice");
    expect_invalid("{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\"}]}", "operator 'a'",
                   "schema");
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"sink\"}]}",
        "no operator 'sink'", NULL);
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}]}",
        "operator 'a'", "goes nowhere");
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}]}",
        "operator 'a'", NULL);
    /* a forward edge across parallelisms */
    expect_invalid("{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"parallelism\": 2, "
                   "\"schema\": " IMPULSE_SCHEMA
                   "}, {\"id\": \"s\", \"kind\": \"blackhole\", \"parallelism\": 3}],"
                   " \"edges\": [{\"from\": \"a\", \"to\": \"s\"}]}",
                   "edge 'a' -> 's'", "equal parallelism (2 and 3)");
    /* shuffle on a column that does not exist */
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"s\", \"kind\": \"shuffle\", \"keys\": "
        "[\"countr\"]}]}",
        "unknown column 'countr'", "did you mean 'counter'");
    /* a cycle */
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"b\", \"kind\": \"calc\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"c\", \"kind\": \"calc\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}],"
        " \"edges\": [{\"from\": \"b\", \"to\": \"c\"}, {\"from\": \"c\", \"to\": \"b\"},"
        " {\"from\": \"a\", \"to\": \"s\"}]}",
        "cycle", "'b'");
    /* an unconnected input */
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}, {\"id\": \"t\", \"kind\": "
        "\"blackhole\"}], \"edges\": [{\"from\": \"a\", \"to\": \"s\"}]}",
        "operator 't'", "needs 1 input");
    /* schema mismatch: a projection whose type differs from the declared one */
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"c\", \"kind\": \"calc\", \"config\": {\"project\": [{\"name\": "
        "\"x\", \"expr\": {\"col\": \"ts\"}}]}, \"schema\": [{\"name\": \"x\", \"type\": "
        "\"int64\"}]}, {\"id\": \"s\", \"kind\": \"blackhole\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"c\"}, {\"from\": \"c\", \"to\": "
        "\"s\"}]}",
        "operator 'c' (calc)", "timestamp");
    /* bad configuration */
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"config\": {\"cuont\": "
        "5}, \"schema\": " IMPULSE_SCHEMA "}, {\"id\": \"s\", \"kind\": \"blackhole\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"s\"}]}",
        "operator 'a' (impulse)", "did you mean 'count'");
    /* a sink with an output */
    expect_invalid(
        "{\"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}, {\"id\": \"t\", \"kind\": "
        "\"blackhole\"}], \"edges\": [{\"from\": \"a\", \"to\": \"s\"}, {\"from\": \"s\", "
        "\"to\": \"t\"}]}",
        "'s' is a sink", NULL);
}
END_TEST

START_TEST(test_engine_plan_msgpack_round_trip)
{
    const char *json =
        "{\"name\": \"rt\", \"operators\": [{\"id\": \"a\", \"kind\": \"impulse\", \"config\": "
        "{\"count\": 10}, \"schema\": " IMPULSE_SCHEMA
        "}, {\"id\": \"s\", \"kind\": \"blackhole\"}],"
        " \"edges\": [{\"from\": \"a\", \"to\": \"s\", \"kind\": \"shuffle\", \"keys\": "
        "[\"counter\"]}]}";
    lm_plan *p1, *p2;
    lm_msg *m;
    lm_error err;

    ck_assert_int_eq(lm_plan_load_json(json, strlen(json), "p", NULL, &p1, &err), LM_OK);
    ck_assert_int_eq(lm_msg_alloc(256, &m), LM_OK);
    ck_assert_int_eq(lm_plan_to_msgpack(p1, m), LM_OK);
    ck_assert_int_eq(lm_plan_load_msgpack(m->data, m->len, NULL, &p2, &err), LM_OK);
    ck_assert_str_eq(p2->name, "rt");
    ck_assert_uint_eq(p2->nops, 2);
    ck_assert_uint_eq(p2->edges[0].kind, LM_EDGE_SHUFFLE);
    ck_assert(lm_schema_equal(p1->ops[0].def.output, p2->ops[0].def.output));
    /* garbage is an error, not a crash */
    {
        lm_plan *p3 = NULL;
        ck_assert_int_eq(lm_plan_load_msgpack(m->data, m->len / 2, NULL, &p3, &err), LM_EINVAL);
        ck_assert_ptr_null(p3);
    }
    lm_msg_release(m);
    lm_plan_free(p1);
    lm_plan_free(p2);
}
END_TEST

/* --- running ------------------------------------------------------------ */

/* impulse(count) -> calc(counter % 3 = 0; project n, n * 2) -> file sink,
 * with a shuffle into the sink. */
static char *
even_plan(int64_t count, int src_par, int sink_par, const char *extra_sink_cfg)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"operators\": ["
             "{\"id\": \"src\", \"kind\": \"impulse\", \"parallelism\": %d, \"config\": "
             "{\"count\": %lld}, \"schema\": " IMPULSE_SCHEMA "},"
             "{\"id\": \"f\", \"kind\": \"calc\", \"parallelism\": %d, \"config\": {\"filter\": "
             "{\"call\": \"=\", \"args\": [{\"call\": \"%%\", \"args\": [{\"col\": \"counter\"}, "
             "{\"lit\": 3}]}, {\"lit\": 0}]}, \"project\": [{\"name\": \"n\", \"expr\": {\"col\": "
             "\"counter\"}}, {\"name\": \"d\", \"expr\": {\"call\": \"*\", \"args\": [{\"col\": "
             "\"counter\"}, {\"lit\": 2}]}}]},"
             " \"schema\": [{\"name\": \"n\", \"type\": \"int64\", \"nullable\": false}, "
             "{\"name\": \"d\", \"type\": \"int64\"}]},"
             "{\"id\": \"out\", \"kind\": \"file_sink\", \"parallelism\": %d, \"config\": "
             "{\"path\": \"%s/out\"%s}}],"
             "\"edges\": [{\"from\": \"src\", \"to\": \"f\"}, {\"from\": \"f\", \"to\": \"out\", "
             "\"kind\": \"shuffle\", \"keys\": [\"n\"]}]}",
             src_par, (long long)count, src_par, sink_par, dir, extra_sink_cfg);
    return buf;
}

/* The output has exactly the rows {n, 2n} for n % 3 == 0, n < count. */
static void
check_even_output(int64_t count)
{
    char outdir[300];
    size_t n;
    char **lines;
    int64_t expect = (count + 2) / 3, seen = 0;
    uint8_t *hit = calloc((size_t)count + 1, 1);

    snprintf(outdir, sizeof(outdir), "%s/out", dir);
    lines = lm_test_read_lines(outdir, &n);
    ck_assert_ptr_nonnull(lines);
    ck_assert_uint_eq(n, (size_t)expect);
    for (size_t i = 0; i < n; i++) {
        long long a, b;
        ck_assert_int_eq(sscanf(lines[i], "{\"n\":%lld,\"d\":%lld}", &a, &b), 2);
        ck_assert_int_eq(a % 3, 0);
        ck_assert_int_eq(b, 2 * a);
        ck_assert(a >= 0 && a < count && !hit[a]);
        hit[a] = 1;
        seen++;
    }
    ck_assert_int_eq(seen, expect);
    lm_test_free_lines(lines, n);
    free(hit);
}

START_TEST(test_engine_same_rows_at_every_parallelism)
{
    static const int pars[][2] = {{1, 1}, {2, 1}, {1, 3}, {2, 3}, {3, 2}};
    for (size_t i = 0; i < sizeof(pars) / sizeof(pars[0]); i++) {
        lm_job_result res;
        lm_error err;
        char cmd[300];
        ck_assert_int_eq(lm_test_run_plan(even_plan(100003, pars[i][0], pars[i][1], ""), 2, NULL,
                                          NULL, &res, &err),
                         LM_OK);
        ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
        check_even_output(100003);
        snprintf(cmd, sizeof(cmd), "rm -rf %s/out", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* Each sink subtask gets exactly the keys that hash to it. */
START_TEST(test_engine_shuffle_sends_each_key_to_one_subtask)
{
    char outdir[300], path[400];
    lm_job_result res;
    lm_error err;

    ck_assert_int_eq(lm_test_run_plan(even_plan(30000, 2, 3, ""), 2, NULL, NULL, &res, &err),
                     LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    snprintf(outdir, sizeof(outdir), "%s/out", dir);
    for (int sub = 0; sub < 3; sub++) {
        FILE *f;
        char line[256];
        long long a, b;
        int rows = 0;
        snprintf(path, sizeof(path), "%s/part-%03d-000000.jsonl", outdir, sub);
        f = fopen(path, "r");
        ck_assert_msg(f != NULL, "no output from sink subtask %d", sub);
        while (fgets(line, sizeof(line), f) != NULL) {
            /* Recompute where the key should have gone. */
            lm_field fd = {"n", LM_TYPE_INT64, false};
            lm_schema *s;
            lm_batch *bt;
            lm_value v = {.is_null = false};
            uint64_t h;
            uint32_t col = 0;
            ck_assert_int_eq(sscanf(line, "{\"n\":%lld,\"d\":%lld}", &a, &b), 2);
            ck_assert_int_eq(lm_schema_new(&fd, 1, &s, NULL), LM_OK);
            ck_assert_int_eq(lm_batch_new(s, 1, &bt), LM_OK);
            v.v.i = a;
            ck_assert_int_eq(lm_batch_append_row(bt, &v, NULL), LM_OK);
            lm_batch_hash_rows(bt, &col, 1, &h);
            ck_assert_int_eq((int)(((unsigned __int128)h * 3) >> 64), sub);
            lm_batch_free(bt);
            lm_schema_release(s);
            rows++;
        }
        fclose(f);
        ck_assert_int_gt(rows, 2000); /* roughly a third each */
    }
    check_even_output(30000);
}
END_TEST

/* A sink that takes 2 ms per batch holds the source back: what is queued
 * anywhere stays within the credit, however much the source could make. */
START_TEST(test_engine_slow_sink_backpressure_bounds_buffers)
{
    char plan[2048];
    lm_job_opts jo = {.job_id = "slow", .credit = 2};
    lm_plan_opts po = {0, 256, NULL}; /* small batches: many of them */
    lm_job_result res;
    lm_error err;

    snprintf(plan, sizeof(plan),
             "{\"operators\": ["
             "{\"id\": \"src\", \"kind\": \"impulse\", \"parallelism\": 2, \"config\": {\"count\": "
             "60000}, \"schema\": " IMPULSE_SCHEMA "},"
             "{\"id\": \"slow\", \"kind\": \"blackhole\", \"parallelism\": 1, \"config\": "
             "{\"delay_us\": 2000}}],"
             "\"edges\": [{\"from\": \"src\", \"to\": \"slow\", \"kind\": \"shuffle\", \"keys\": "
             "[\"counter\"]}]}");
    ck_assert_int_eq(lm_test_run_plan(plan, 2, &po, &jo, &res, &err), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    /* 235 batches of 256 rows at 2 ms each: the source could have made them
     * all at once; it did not. The sink holds at most the 2 x 2 credits it
     * granted, a source at most the batch it could not send and the
     * partial one being built. */
    ck_assert_msg(res.max_buffered <= 4, "a subtask held %" PRIu64 " batches", res.max_buffered);
    ck_assert_msg(res.seconds > 0.4, "took %.3f s, max_buffered %" PRIu64, res.seconds,
                  res.max_buffered);
}
END_TEST

/* An operator that fails fails its job with the operator, the subtask and
 * the reason; another job on the same task manager goes on. */
START_TEST(test_engine_failure_is_reported_and_isolated)
{
    const char *bad = "{\"operators\": ["
                      "{\"id\": \"src\", \"kind\": \"impulse\", \"config\": {\"count\": 1000}, "
                      "\"schema\": " IMPULSE_SCHEMA "},"
                      "{\"id\": \"out\", \"kind\": \"file_sink\", \"config\": {\"path\": "
                      "\"/proc/laminar-cannot-write\"}}],"
                      "\"edges\": [{\"from\": \"src\", \"to\": \"out\"}]}";
    lm_rt_opts ro = {1, 2, 0, "test"};
    lm_plan *pb, *pg;
    lm_rt *rt;
    lm_addr tm;
    lm_job_handle *hb, *hg;
    lm_job_opts jb = {.job_id = "bad"}, jg = {.job_id = "good"};
    lm_job_result rb, rg;
    lm_error err;
    const char *good = even_plan(200000, 2, 2, "");

    ck_assert_int_eq(lm_plan_load_json(bad, strlen(bad), "bad", NULL, &pb, &err), LM_OK);
    ck_assert_int_eq(lm_plan_load_json(good, strlen(good), "good", NULL, &pg, &err), LM_OK);
    ck_assert_int_eq(lm_rt_new(&ro, &rt), LM_OK);
    ck_assert_int_eq(lm_taskmgr_spawn(rt, &tm), LM_OK);
    ck_assert_int_eq(lm_job_start(rt, tm, pg, &jg, &hg), LM_OK);
    ck_assert_int_eq(lm_job_start(rt, tm, pb, &jb, &hb), LM_OK);
    ck_assert_int_eq(lm_job_wait(hb, 10000 * lm_test_slowdown(), &rb), LM_OK);
    ck_assert_int_eq(rb.state, LM_JOB_FAILED);
    ck_assert_msg(strstr(rb.reason, "operator 'out' subtask 0") != NULL &&
                      strstr(rb.reason, "/proc/laminar-cannot-write") != NULL,
                  "reason: %s", rb.reason);
    ck_assert_int_eq(lm_job_wait(hg, 30000 * lm_test_slowdown(), &rg), LM_OK);
    ck_assert_msg(rg.state == LM_JOB_FINISHED, "good job: %s", rg.reason);
    lm_rt_free(rt, 5000);
    lm_job_handle_free(hb);
    lm_job_handle_free(hg);
    lm_plan_free(pb);
    lm_plan_free(pg);
    check_even_output(200000);
}
END_TEST

/* --- aligned barriers ------------------------------------------------------ */

/* A two-input test operator recording, in order, every batch it gets (the
 * port and the largest counter in it) and every barrier. */
typedef struct rec_event {
    int port;    /* -1 for a barrier */
    int64_t max; /* largest counter of the batch, or the epoch */
} rec_event;

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static rec_event rec[200000];
static size_t nrec;

static int
rec_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    (void)def;
    (void)err;
    *spec = NULL;
    return LM_OK;
}

static int
rec_open(lm_op *op)
{
    (void)op;
    return LM_OK;
}

static int
rec_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    int64_t max = -1;
    (void)op;
    for (uint32_t r = 0; r < b->nrows; r++) {
        if (lm_batch_i64(b, 0)[r] > max) {
            max = lm_batch_i64(b, 0)[r];
        }
    }
    pthread_mutex_lock(&rec_lock);
    if (nrec < sizeof(rec) / sizeof(rec[0])) {
        rec[nrec++] = (rec_event){(int)port, max};
    }
    pthread_mutex_unlock(&rec_lock);
    lm_batch_free(b);
    return LM_OK;
}

static int
rec_barrier(lm_op *op, uint64_t epoch)
{
    (void)op;
    pthread_mutex_lock(&rec_lock);
    rec[nrec++] = (rec_event){-1, (int64_t)epoch};
    pthread_mutex_unlock(&rec_lock);
    return LM_OK;
}

static const lm_op_kind rec_kind = {
    .name = "test_record",
    .min_inputs = 2,
    .max_inputs = 2,
    .sink = true,
    .prepare = rec_prepare,
    .open = rec_open,
    .on_batch = rec_batch,
    .on_barrier = rec_barrier,
};

/* The counter a source's snapshot says comes next. */
static int64_t
snapshot_next(const char *op, uint64_t epoch)
{
    char path[600];
    uint8_t *buf;
    size_t len;
    lm_table *t;
    const void *v;
    int64_t next;
    lm_error err;

    snprintf(path, sizeof(path),
             "%s/ckpt/align/checkpoints/checkpoint-%07" PRIu64 "/operator-%s/table-offset-000", dir,
             epoch, op);
    ck_assert_int_eq(lm_storage_read(path, &buf, &len, &err), LM_OK);
    ck_assert_int_eq(lm_table_new(LM_TABLE_GLOBAL, "offset", 8, &t), LM_OK);
    ck_assert_msg(lm_table_restore(t, buf, len, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(lm_table_get(t, "next", 4, &v, NULL, NULL), LM_OK);
    memcpy(&next, v, sizeof(next));
    lm_table_free(t);
    free(buf);
    return next;
}

/* Two sources at different speeds feed one operator. While it aligns a
 * barrier, it handles nothing that a source produced after that barrier:
 * everything before the barrier is from before each source's snapshot, and
 * everything after it from after. */
START_TEST(test_engine_barrier_alignment_holds_the_early_input)
{
    char plan[2048], ckpt[300];
    lm_rt_opts ro = {1, 2, 0, "test"};
    lm_plan *p;
    lm_rt *rt;
    lm_addr tm;
    lm_job_handle *h;
    lm_job_opts jo = {.job_id = "align"};
    lm_job_result res;
    lm_error err;
    uint64_t epoch;
    int64_t next_fast, next_slow;
    size_t barrier_at = SIZE_MAX;

    lm_op_kind_register(&rec_kind);
    snprintf(ckpt, sizeof(ckpt), "%s/ckpt", dir);
    snprintf(plan, sizeof(plan),
             "{\"batch_rows\": 64, \"operators\": ["
             "{\"id\": \"fast\", \"kind\": \"impulse\", \"config\": {\"count\": 400000, \"rate\": "
             "400000}, \"schema\": " IMPULSE_SCHEMA "},"
             "{\"id\": \"slow\", \"kind\": \"impulse\", \"config\": {\"count\": 40000, \"rate\": "
             "40000}, \"schema\": " IMPULSE_SCHEMA "},"
             "{\"id\": \"rec\", \"kind\": \"test_record\"}],"
             "\"edges\": [{\"from\": \"fast\", \"to\": \"rec\", \"kind\": \"shuffle\", \"keys\": "
             "[\"counter\"], \"port\": 0}, {\"from\": \"slow\", \"to\": \"rec\", \"kind\": "
             "\"shuffle\", \"keys\": [\"counter\"], \"port\": 1}]}");
    ck_assert_int_eq(lm_plan_load_json(plan, strlen(plan), "align", NULL, &p, &err), LM_OK);
    ck_assert_int_eq(lm_rt_new(&ro, &rt), LM_OK);
    ck_assert_int_eq(lm_taskmgr_spawn(rt, &tm), LM_OK);
    jo.checkpoint_dir = ckpt;
    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    usleep(300000);
    ck_assert_msg(lm_job_checkpoint(h, LM_BARRIER_CHECKPOINT, false, 10000 * lm_test_slowdown(),
                                    &epoch, &err) == LM_OK,
                  "%s", err.msg);
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    lm_rt_free(rt, 5000);
    lm_job_handle_free(h);
    lm_plan_free(p);

    next_fast = snapshot_next("fast", epoch);
    next_slow = snapshot_next("slow", epoch);
    ck_assert_int_gt(next_fast, 0);
    ck_assert_int_gt(next_slow, 0);
    for (size_t i = 0; i < nrec; i++) {
        if (rec[i].port < 0) {
            ck_assert_int_eq(rec[i].max, (int64_t)epoch);
            barrier_at = i;
            continue;
        }
        int64_t next = rec[i].port == 0 ? next_fast : next_slow;
        if (barrier_at == SIZE_MAX) {
            ck_assert_msg(rec[i].max < next,
                          "port %d: counter %lld before the barrier, but the "
                          "snapshot was taken at %lld",
                          rec[i].port, (long long)rec[i].max, (long long)next);
        } else {
            ck_assert_msg(rec[i].max >= next,
                          "port %d: counter %lld after the barrier, but the "
                          "snapshot includes it (next %lld)",
                          rec[i].port, (long long)rec[i].max, (long long)next);
        }
    }
    ck_assert_uint_ne(barrier_at, SIZE_MAX);
}
END_TEST

Suite *
engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_engine_plan_errors_name_the_operator);
    tcase_add_test(tc, test_engine_plan_msgpack_round_trip);
    tcase_add_test(tc, test_engine_same_rows_at_every_parallelism);
    tcase_add_test(tc, test_engine_shuffle_sends_each_key_to_one_subtask);
    tcase_add_test(tc, test_engine_slow_sink_backpressure_bounds_buffers);
    tcase_add_test(tc, test_engine_failure_is_reported_and_isolated);
    tcase_add_test(tc, test_engine_barrier_alignment_holds_the_early_input);
    suite_add_tcase(s, tc);
    return s;
}
