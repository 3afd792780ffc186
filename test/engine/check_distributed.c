/*
 * check_distributed.c: one job over two processes: subtask i of every
 * chain runs on task manager i mod 2, the second in a peer process
 * (lm-test-peer, node 2), and the channels between them go over nng.
 *
 * The job's output must be the output of the same job in one process; a
 * checkpoint taken over both and restored over both gives exactly that
 * output too; and when the peer dies, the job fails saying so instead of
 * waiting forever.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_plan.h"
#include "lm_proto.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_test.h"
#include "lm_transport.h"

#define WAIT_MS (10000 * lm_test_slowdown())

static char dir[128];
static lm_rt *rt;
static lm_transport *tr;
static lm_addr tm;
static lm_peer peer = {.out = -1};

static void
setup(void)
{
    lm_log_opts lo = {getenv("LM_TEST_LOG") ? LM_LOG_DEBUG : LM_LOG_ERROR, LM_LOG_TEXT, false, true,
                      NULL};
    lm_rt_opts o = {1, 2, 0, "test"};
    lm_transport_opts to = {0};
    char url1[200], url2[200], route[220];
    lm_error err;

    lm_log_configure(&lo, NULL);
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
    snprintf(url1, sizeof(url1), "ipc://%s/n1.sock", dir);
    snprintf(url2, sizeof(url2), "ipc://%s/n2.sock", dir);
    snprintf(route, sizeof(route), "1=%s", url1);
    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    to.listen_url = url1;
    to.reconnect_min_ms = 20;
    to.reconnect_max_ms = 200;
    to.connect_timeout_ms = 2000;
    to.loop = -1;
    ck_assert_msg(lm_transport_new(rt, &to, &tr, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(lm_taskmgr_spawn(rt, &tm), LM_OK);
    ck_assert_int_eq(lm_peer_start(&peer, 2, url2, route, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
}

static void
teardown(void)
{
    lm_error err;
    lm_peer_kill(&peer, SIGKILL);
    lm_transport_free(tr);
    tr = NULL;
    lm_rt_free(rt, 5000);
    rt = NULL;
    lm_storage_remove_tree(dir, &err);
    lm_msg_pool_trim();
}

/* impulse (count, rate) -> key k = counter mod 7 -> watermark -> shuffle on
 * k -> tumbling 1 s count and sum per k -> file sink at out_dir; all at
 * parallelism 2. */
static char *
plan_text(long long count, long long rate, const char *out_dir)
{
    char *s = NULL;
    int n = asprintf(
        &s,
        "{\"name\": \"dist\", \"parallelism\": 2, \"operators\": ["
        "{\"id\": \"src\", \"kind\": \"impulse\", \"config\": {\"count\": %lld, \"rate\": %lld,"
        " \"interval_us\": 1000},"
        " \"schema\": [{\"name\": \"counter\", \"type\": \"int64\", \"nullable\": false},"
        "  {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]},"
        "{\"id\": \"key\", \"kind\": \"calc\", \"config\": {\"project\": ["
        "  {\"name\": \"k\", \"expr\": {\"call\": \"mod\", \"args\": [{\"col\": \"counter\"},"
        "   {\"lit\": 7}]}},"
        "  {\"name\": \"v\", \"expr\": {\"col\": \"counter\"}},"
        "  {\"name\": \"ts\", \"expr\": {\"col\": \"ts\"}}]},"
        " \"schema\": [{\"name\": \"k\", \"type\": \"int64\", \"nullable\": false},"
        "  {\"name\": \"v\", \"type\": \"int64\", \"nullable\": false},"
        "  {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]},"
        "{\"id\": \"wm\", \"kind\": \"watermark\", \"config\": {\"column\": \"ts\", \"delay_ms\": "
        "0},"
        " \"schema\": [{\"name\": \"k\", \"type\": \"int64\", \"nullable\": false},"
        "  {\"name\": \"v\", \"type\": \"int64\", \"nullable\": false},"
        "  {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]},"
        "{\"id\": \"agg\", \"kind\": \"window_aggregate\", \"config\": {\"time\": \"ts\","
        " \"window\": {\"type\": \"tumble\", \"size_ms\": 1000}, \"keys\": [\"k\"],"
        " \"window_end\": \"we\", \"aggregates\": [{\"name\": \"n\", \"fn\": \"count\"},"
        "  {\"name\": \"total\", \"fn\": \"sum\", \"arg\": \"v\"}]},"
        " \"schema\": [{\"name\": \"k\", \"type\": \"int64\", \"nullable\": false},"
        "  {\"name\": \"we\", \"type\": \"timestamp\", \"nullable\": false},"
        "  {\"name\": \"n\", \"type\": \"int64\", \"nullable\": false},"
        "  {\"name\": \"total\", \"type\": \"int64\"}]},"
        "{\"id\": \"out\", \"kind\": \"file_sink\", \"config\": {\"path\": \"%s\"}}],"
        " \"edges\": [{\"from\": \"src\", \"to\": \"key\"}, {\"from\": \"key\", \"to\": \"wm\"},"
        "  {\"from\": \"wm\", \"to\": \"agg\", \"kind\": \"shuffle\", \"keys\": [\"k\"]},"
        "  {\"from\": \"agg\", \"to\": \"out\"}]}",
        count, rate, out_dir);
    ck_assert_int_gt(n, 0);
    return s;
}

/* Starts the plan over this process and the peer. */
static lm_job_handle *
start_two(const char *json, const char *ckdir, uint64_t restore)
{
    lm_plan *p;
    lm_job_handle *h;
    lm_error err;
    lm_job_opts jo = {.job_id = "dist"};

    jo.workers = &peer.tm;
    jo.nworkers = 1;
    jo.checkpoint_dir = ckdir;
    jo.restore_epoch = restore;
    ck_assert_msg(lm_plan_load_json(json, strlen(json), "dist", NULL, &p, &err) == LM_OK, "%s",
                  err.msg);
    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    lm_plan_free(p);
    return h;
}

/* The lines the same plan gives in one process. */
static char **
reference(long long count, size_t *n)
{
    char out[300];
    char *json;
    lm_job_result res;
    lm_error err;
    char **lines;

    snprintf(out, sizeof(out), "%s/reference", dir);
    json = plan_text(count, 0, out);
    ck_assert_msg(lm_test_run_plan(json, 2, NULL, NULL, &res, &err) == LM_OK, "%s", err.msg);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "reference: %s", res.reason);
    free(json);
    lines = lm_test_read_lines(out, n);
    ck_assert_ptr_nonnull(lines);
    ck_assert_uint_gt(*n, 100);
    return lines;
}

static void
expect_same(const char *out_dir, char **want, size_t nwant)
{
    size_t ngot = 0;
    char **got = lm_test_read_lines(out_dir, &ngot);
    lm_report r = {.len = 0, .failed = false};

    ck_assert_ptr_nonnull(got);
    lm_test_compare_lines(got, ngot, want, nwant, "two processes", "the spread job", "one process",
                          &r);
    lm_test_free_lines(got, ngot);
    ck_assert_msg(!r.failed, "%s", r.msg);
}

START_TEST(test_distributed_job_over_two_processes_is_exact)
{
    char out[300];
    char *json;
    size_t nwant;
    char **want = reference(40000, &nwant);
    lm_job_handle *h;
    lm_job_result res;

    snprintf(out, sizeof(out), "%s/out", dir);
    json = plan_text(40000, 0, out);
    h = start_two(json, NULL, 0);
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    ck_assert_uint_eq(res.events, 40000); /* both sources read their half */
    lm_job_handle_free(h);
    expect_same(out, want, nwant);
    {
        /* the data went both ways between the processes: rows shuffled to
         * the peer's aggregate and back from it */
        lm_link_info li;
        ck_assert_int_eq(lm_transport_link_info(tr, 2, &li), LM_OK);
        ck_assert_msg(li.bytes_out > 100000 && li.bytes_in > 100000,
                      "%llu bytes to node 2, %llu from it", (unsigned long long)li.bytes_out,
                      (unsigned long long)li.bytes_in);
    }
    lm_test_free_lines(want, nwant);
    free(json);
}
END_TEST

START_TEST(test_distributed_checkpoint_and_restore_over_two_processes)
{
    char out[300], ckdir[300];
    char *json;
    size_t nwant, nfirst = 0;
    char **want = reference(40000, &nwant), **first;
    lm_job_handle *h;
    lm_job_result res;
    lm_error err;
    uint64_t epoch = 0;

    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(ckdir, sizeof(ckdir), "%s/ckpt", dir);
    json = plan_text(40000, 20000, out); /* about 2 s */
    h = start_two(json, ckdir, 0);
    usleep(700000);
    ck_assert_msg(lm_job_checkpoint(h, LM_BARRIER_CHECKPOINT, false, WAIT_MS, &epoch, &err) ==
                      LM_OK,
                  "%s", err.msg);
    ck_assert_int_eq(lm_job_cancel(h), LM_OK);
    ck_assert_int_eq(lm_job_wait(h, WAIT_MS, &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_CANCELED, "first run: %d %s", res.state, res.reason);
    lm_job_handle_free(h);
    first = lm_test_read_lines(out, &nfirst);
    lm_test_free_lines(first, nfirst);
    ck_assert_msg(nfirst > 0 && nfirst < nwant, "the checkpoint should fall mid-way: %zu of %zu",
                  nfirst, nwant);
    /* the peer's subtasks of the canceled job are gone before the restart */
    usleep(200000);
    free(json);
    json = plan_text(40000, 0, out);
    h = start_two(json, ckdir, epoch);
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "restored run: %s", res.reason);
    lm_job_handle_free(h);
    expect_same(out, want, nwant);
    lm_test_free_lines(want, nwant);
    free(json);
}
END_TEST

START_TEST(test_distributed_job_fails_when_a_worker_dies)
{
    char out[300];
    char *json;
    lm_job_handle *h;
    lm_job_result res;
    int64_t t0;

    snprintf(out, sizeof(out), "%s/out", dir);
    json = plan_text(1000000, 10000, out); /* far longer than the test */
    h = start_two(json, NULL, 0);
    /* running on both sides: rows come back from the peer */
    t0 = lm_test_now_ms();
    for (lm_link_info li = {0}; li.bytes_in < 20000;) {
        ck_assert_msg(lm_test_now_ms() - t0 < WAIT_MS, "no rows from the peer");
        usleep(20000);
        lm_transport_link_info(tr, 2, &li);
    }
    t0 = lm_test_now_ms();
    lm_peer_kill(&peer, SIGKILL);
    ck_assert_int_eq(lm_job_wait(h, 20000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FAILED, "state %d: %s", res.state, res.reason);
    ck_assert_msg(strstr(res.reason, "node 2") != NULL, "reason: %s", res.reason);
    ck_assert_int_lt(lm_test_now_ms() - t0, 10000 * lm_test_slowdown());
    lm_job_handle_free(h);
    free(json);
}
END_TEST

Suite *
distributed_suite(void)
{
    Suite *s = suite_create("distributed");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_distributed_job_over_two_processes_is_exact);
    tcase_add_test(tc, test_distributed_checkpoint_and_restore_over_two_processes);
    tcase_add_test(tc, test_distributed_job_fails_when_a_worker_dies);
    suite_add_tcase(s, tc);
    return s;
}
