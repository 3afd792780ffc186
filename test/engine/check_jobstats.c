/*
 * check_jobstats.c: live per-operator counters of a job (JOB_STATS to a
 * task manager): one JOB_STATS_REPLY per subtask, counts that only grow
 * while the job runs, exact totals once it has ended (the task manager
 * answers for its ended subtasks), counters kept for a canceled job, no
 * answer for an unknown job, and, for a job over two processes, each
 * task manager answering for its own share.
 *
 * The plan: impulse (count N, parallelism 2) -> calc keeping counter % 3
 * = 0 (chained) -> shuffle -> file sink (parallelism 2), so operator 0 and
 * 1 share a chain and operator 2 has its own.
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

#define WAIT_MS  (10000 * lm_test_slowdown())
#define QUIET_MS 300 /* how long "no answer" is waited for */
#define NOPS     3   /* operators of the plan */
#define PAR      2   /* parallelism of each */

static char dir[128];
static lm_rt *rt;
static lm_transport *tr;
static lm_addr tm;
static lm_probe *probe;
static lm_peer peer = {.out = -1};

static void
setup_common(void)
{
    lm_log_opts lo = {getenv("LM_TEST_LOG") ? LM_LOG_DEBUG : LM_LOG_ERROR, LM_LOG_TEXT, false, true,
                      NULL};
    lm_log_configure(&lo, NULL);
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
}

static void
setup(void)
{
    lm_rt_opts o = {1, 2, 0, "test"};

    setup_common();
    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    ck_assert_int_eq(lm_taskmgr_spawn(rt, &tm), LM_OK);
    probe = lm_probe_new(rt, 0);
    ck_assert_ptr_nonnull(probe);
}

/* This process (node 1) and a peer process (node 2) over ipc. */
static void
setup_two(void)
{
    lm_rt_opts o = {1, 2, 0, "test"};
    lm_transport_opts to = {0};
    char url1[200], url2[200], route[220];
    lm_error err;

    setup_common();
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
    probe = lm_probe_new(rt, 0);
    ck_assert_ptr_nonnull(probe);
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
    lm_probe_free(probe);
    probe = NULL;
    lm_storage_remove_tree(dir, &err);
    lm_msg_pool_trim();
}

/* impulse(count, rate) -> calc(counter % 3 = 0) -> shuffle -> file sink */
static lm_plan *
plan_new(long long count, long long rate)
{
    char json[4096];
    lm_plan *p;
    lm_error err;

    snprintf(json, sizeof(json),
             "{\"name\": \"stats\", \"parallelism\": %d, \"operators\": ["
             "{\"id\": \"src\", \"kind\": \"impulse\", \"config\": {\"count\": %lld, \"rate\": "
             "%lld}, \"schema\": [{\"name\": \"counter\", \"type\": \"int64\", \"nullable\": "
             "false}, {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]},"
             "{\"id\": \"f\", \"kind\": \"calc\", \"config\": {\"filter\": {\"call\": \"=\", "
             "\"args\": [{\"call\": \"%%\", \"args\": [{\"col\": \"counter\"}, {\"lit\": 3}]}, "
             "{\"lit\": 0}]}, \"project\": [{\"name\": \"n\", \"expr\": {\"col\": \"counter\"}}]},"
             " \"schema\": [{\"name\": \"n\", \"type\": \"int64\", \"nullable\": false}]},"
             "{\"id\": \"out\", \"kind\": \"file_sink\", \"config\": {\"path\": \"%s/out\"}}],"
             "\"edges\": [{\"from\": \"src\", \"to\": \"f\"}, {\"from\": \"f\", \"to\": \"out\", "
             "\"kind\": \"shuffle\", \"keys\": [\"n\"]}]}",
             PAR, count, rate, dir);
    ck_assert_msg(lm_plan_load_json(json, strlen(json), "stats", NULL, &p, &err) == LM_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(p->nops, NOPS);
    return p;
}

/* One reply, decoded. */
typedef struct sub_stats {
    uint32_t chain, subtask;
    uint32_t nops;
    uint32_t op[NOPS];
    uint64_t in[NOPS], out[NOPS];
    lm_addr from; /* who answered */
} sub_stats;

/* A round's replies, and the totals per plan operator. */
typedef struct poll_round {
    sub_stats sub[PAR * NOPS];
    int n;
    uint64_t in[NOPS], out[NOPS];
} poll_round;

static uint64_t
le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int b = bytes - 1; b >= 0; b--) {
        v = v << 8 | p[b];
    }
    return v;
}

/* Asks the task manager at dst for poll_round seq of job and adds its n
 * replies to r, checking each: the job and poll_round echoed, whole operator
 * records of known operators, a (chain, subtask) not seen before; and
 * that no further reply comes. */
static void
ask(lm_addr dst, const char *job, uint64_t seq, int n, poll_round *r)
{
    lm_job_stats_msg q = {lm_str_c(job), seq};

    ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(probe), dst, LM_MT_JOB_STATS, &q), LM_OK);
    for (int k = 0; k < n; k++) {
        lm_msg *m = lm_probe_wait(probe, LM_MT_JOB_STATS_REPLY, WAIT_MS);
        lm_job_stats_reply_msg rp;
        sub_stats *s;
        ck_assert_msg(m != NULL, "reply %d of %d to poll_round %llu missing", k + 1, n,
                      (unsigned long long)seq);
        ck_assert_int_eq(lm_decode_job_stats_reply(m, &rp, NULL), LM_OK);
        ck_assert_uint_eq(rp.seq, seq);
        ck_assert(rp.job.len == strlen(job) && memcmp(rp.job.ptr, job, rp.job.len) == 0);
        ck_assert_msg(rp.ops.len > 0 && rp.ops.len % 20 == 0 && rp.ops.len / 20 <= NOPS,
                      "ops of %u bytes", rp.ops.len);
        ck_assert_uint_lt(rp.subtask, PAR);
        ck_assert_int_lt(r->n, PAR * NOPS);
        for (int i = 0; i < r->n; i++) {
            ck_assert_msg(r->sub[i].chain != rp.chain || r->sub[i].subtask != rp.subtask,
                          "two replies for chain %u subtask %u", rp.chain, rp.subtask);
        }
        s = &r->sub[r->n++];
        s->chain = rp.chain;
        s->subtask = rp.subtask;
        s->nops = rp.ops.len / 20;
        s->from = m->src;
        for (uint32_t i = 0; i < s->nops; i++) {
            const uint8_t *p = rp.ops.ptr + 20 * i;
            s->op[i] = (uint32_t)le(p, 4);
            s->in[i] = le(p + 4, 8);
            s->out[i] = le(p + 12, 8);
            ck_assert_uint_lt(s->op[i], NOPS);
            r->in[s->op[i]] += s->in[i];
            r->out[s->op[i]] += s->out[i];
        }
        lm_msg_release(m);
    }
    {
        lm_msg *extra = lm_probe_wait(probe, LM_MT_JOB_STATS_REPLY, QUIET_MS);
        ck_assert_msg(extra == NULL, "more than %d replies", n);
    }
}

/* The reply of chain/subtask in r, or NULL. */
static const sub_stats *
find_sub(const poll_round *r, uint32_t chain, uint32_t subtask)
{
    for (int i = 0; i < r->n; i++) {
        if (r->sub[i].chain == chain && r->sub[i].subtask == subtask) {
            return &r->sub[i];
        }
    }
    return NULL;
}

/* Checks what a whole poll_round (every subtask) says about the plan's shape
 * and within each subtask: the chain src -> f with src's rows in and out
 * equal (a source) and f receiving what src emitted; the sink alone,
 * emitting nothing; each operator reported by PAR subtasks. */
static void
check_shape(const poll_round *r)
{
    int seen[NOPS] = {0};

    ck_assert_int_eq(r->n, PAR * 2);
    for (int i = 0; i < r->n; i++) {
        const sub_stats *s = &r->sub[i];
        for (uint32_t k = 0; k < s->nops; k++) {
            seen[s->op[k]]++;
        }
        if (s->op[0] == 0) {
            ck_assert_uint_eq(s->nops, 2);
            ck_assert_uint_eq(s->op[1], 1);
            ck_assert_uint_eq(s->in[0], s->out[0]);
            ck_assert_uint_eq(s->in[1], s->out[0]);
            ck_assert_uint_le(s->out[1], s->in[1]);
        } else {
            ck_assert_uint_eq(s->nops, 1);
            ck_assert_uint_eq(s->op[0], 2);
            ck_assert_uint_eq(s->out[0], 0);
        }
    }
    for (int op = 0; op < NOPS; op++) {
        ck_assert_int_eq(seen[op], PAR);
    }
}

/* No counter of any subtask went down from a to b. */
static void
check_monotone(const poll_round *a, const poll_round *b)
{
    for (int i = 0; i < a->n; i++) {
        const sub_stats *x = &a->sub[i], *y = find_sub(b, x->chain, x->subtask);
        ck_assert_ptr_nonnull(y);
        ck_assert_uint_eq(x->nops, y->nops);
        for (uint32_t k = 0; k < x->nops; k++) {
            ck_assert_uint_eq(x->op[k], y->op[k]);
            ck_assert_msg(y->in[k] >= x->in[k] && y->out[k] >= x->out[k],
                          "operator %u of chain %u subtask %u went from %llu/%llu to %llu/%llu",
                          x->op[k], x->chain, x->subtask, (unsigned long long)x->in[k],
                          (unsigned long long)x->out[k], (unsigned long long)y->in[k],
                          (unsigned long long)y->out[k]);
        }
    }
}

/* Rows below count whose counter % 3 is 0, counted one by one. */
static uint64_t
kept(long long count)
{
    uint64_t n = 0;
    for (long long c = 0; c < count; c++) {
        n += c % 3 == 0;
    }
    return n;
}

/* The totals of an ended job are exact, and the sink wrote that many rows. */
static void
check_totals(const poll_round *r, long long count)
{
    char out[300];
    size_t nlines;
    char **lines;

    ck_assert_uint_eq(r->out[0], (uint64_t)count);
    ck_assert_uint_eq(r->in[0], (uint64_t)count);
    ck_assert_uint_eq(r->in[1], (uint64_t)count);
    ck_assert_uint_eq(r->out[1], kept(count));
    ck_assert_uint_eq(r->in[2], kept(count));
    ck_assert_uint_eq(r->out[2], 0);
    snprintf(out, sizeof(out), "%s/out", dir);
    lines = lm_test_read_lines(out, &nlines);
    ck_assert_ptr_nonnull(lines);
    ck_assert_uint_eq(nlines, kept(count));
    lm_test_free_lines(lines, nlines);
}

START_TEST(test_jobstats_running_then_final_counts)
{
    const long long count = 60000;
    lm_plan *p = plan_new(count, 30000); /* about 2 s */
    lm_job_opts jo = {.job_id = "stats"};
    lm_job_handle *h;
    lm_job_result res;
    poll_round r1 = {.n = 0}, r2 = {.n = 0}, r3 = {.n = 0};

    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    usleep(300000);
    ask(tm, "stats", 1, PAR * 2, &r1);
    check_shape(&r1);
    for (int i = 0; i < r1.n; i++) {
        /* running subtasks answer themselves */
        ck_assert(!lm_addr_eq(r1.sub[i].from, tm) && r1.sub[i].from.node == 1);
    }
    usleep(300000);
    ask(tm, "stats", 2, PAR * 2, &r2);
    check_shape(&r2);
    check_monotone(&r1, &r2);
    ck_assert_msg(r2.out[0] > 0 && r2.out[0] < (uint64_t)count, "the source made %llu rows",
                  (unsigned long long)r2.out[0]);
    ck_assert_uint_le(r2.in[2], r2.out[1]); /* the sink has at most what f sent */
    /* a job nobody runs here: no answer, and nothing else disturbed */
    {
        lm_job_stats_msg q = {lm_str_c("no-such-job"), 9};
        ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(probe), tm, LM_MT_JOB_STATS, &q), LM_OK);
        ck_assert_ptr_null(lm_probe_wait(probe, LM_MT_JOB_STATS_REPLY, QUIET_MS));
    }
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    ck_assert_uint_eq(res.events, (uint64_t)count);
    /* over: the task manager answers for every subtask from their final
     * counters */
    ask(tm, "stats", 3, PAR * 2, &r3);
    check_shape(&r3);
    check_monotone(&r2, &r3);
    for (int i = 0; i < r3.n; i++) {
        ck_assert(lm_addr_eq(r3.sub[i].from, tm));
    }
    check_totals(&r3, count);
    lm_job_handle_free(h);
    lm_plan_free(p);
}
END_TEST

/* An unknown job gets no answer, before any job and with a job running
 * under another id; a JOB_STATS that is not one breaks nothing. */
START_TEST(test_jobstats_unknown_job_gets_no_answer)
{
    const long long count = 3000;
    lm_job_stats_msg q = {lm_str_c("nope"), 1};
    lm_plan *p = plan_new(count, 0);
    lm_job_opts jo = {.job_id = "known"};
    lm_job_handle *h;
    lm_job_result res;
    poll_round r = {.n = 0};
    lm_msg *m;

    ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(probe), tm, LM_MT_JOB_STATS, &q), LM_OK);
    ck_assert_ptr_null(lm_probe_wait(probe, LM_MT_JOB_STATS_REPLY, QUIET_MS));
    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(probe), tm, LM_MT_JOB_STATS, &q), LM_OK);
    /* a malformed one: a JOB_STATS envelope around a PING's payload */
    {
        lm_ping_msg ping = {1, 0, {NULL, 0}};
        ck_assert_int_eq(lm_proto_encode(LM_MT_PING, lm_probe_addr(probe), tm, &ping, &m), LM_OK);
        m->type = LM_MT_JOB_STATS;
        m->data[2] = LM_MT_JOB_STATS; /* the envelope's type (a positive fixint) */
        ck_assert_int_eq(lm_send(rt, m), LM_OK);
    }
    ck_assert_ptr_null(lm_probe_wait(probe, LM_MT_JOB_STATS_REPLY, QUIET_MS));
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    ask(tm, "known", 5, PAR * 2, &r);
    check_shape(&r);
    check_totals(&r, count);
    lm_job_handle_free(h);
    lm_plan_free(p);
}
END_TEST

/* A canceled job's subtasks hand in their counters as they stop: they are
 * there to read afterwards, consistent within each subtask. */
START_TEST(test_jobstats_kept_after_cancel)
{
    lm_plan *p = plan_new(0, 20000); /* unbounded */
    lm_job_opts jo = {.job_id = "endless"};
    lm_job_handle *h;
    lm_job_result res;
    poll_round r1 = {.n = 0}, r2 = {.n = 0};

    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    usleep(300000);
    ask(tm, "endless", 1, PAR * 2, &r1);
    ck_assert_int_eq(lm_job_cancel(h), LM_OK);
    ck_assert_int_eq(lm_job_wait(h, WAIT_MS, &res), LM_OK);
    ck_assert_int_eq(res.state, LM_JOB_CANCELED);
    /* the record is complete once every subtask has exited */
    for (int64_t end = lm_test_now_ms() + WAIT_MS;; usleep(20000)) {
        lm_job_stats_msg q = {lm_str_c("endless"), 2};
        int got = 0;
        lm_msg *m;
        ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(probe), tm, LM_MT_JOB_STATS, &q), LM_OK);
        while ((m = lm_probe_wait(probe, LM_MT_JOB_STATS_REPLY, QUIET_MS)) != NULL) {
            got += lm_addr_eq(m->src, tm);
            lm_msg_release(m);
        }
        if (got == PAR * 2) {
            break;
        }
        ck_assert_msg(lm_test_now_ms() < end, "only %d subtasks handed in their counters", got);
    }
    ask(tm, "endless", 3, PAR * 2, &r2);
    check_shape(&r2);
    check_monotone(&r1, &r2);
    ck_assert_uint_gt(r2.out[0], 0);
    lm_job_handle_free(h);
    lm_plan_free(p);
}
END_TEST

/* A job over two task managers: each answers for the subtasks it runs
 * (subtask i of every chain on task manager i mod 2), while the job runs
 * and after it ended; together they add up to the job. */
START_TEST(test_jobstats_each_task_manager_answers_for_its_share)
{
    const long long count = 40000;
    lm_plan *p = plan_new(count, 40000); /* about 1 s */
    lm_job_opts jo = {.job_id = "spread", .workers = &peer.tm, .nworkers = 1};
    lm_job_handle *h;
    lm_job_result res;
    poll_round run = {.n = 0}, fin = {.n = 0};

    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    usleep(300000);
    ask(tm, "spread", 1, 2, &run);
    ask(peer.tm, "spread", 1, 2, &run);
    check_shape(&run);
    for (int i = 0; i < run.n; i++) {
        /* running subtasks answer themselves, from their node */
        ck_assert_uint_eq(run.sub[i].subtask + 1, run.sub[i].from.node);
    }
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    ask(tm, "spread", 2, 2, &fin);
    ask(peer.tm, "spread", 2, 2, &fin);
    check_shape(&fin);
    check_monotone(&run, &fin);
    for (int i = 0; i < fin.n; i++) {
        ck_assert(lm_addr_eq(fin.sub[i].from, fin.sub[i].subtask == 0 ? tm : peer.tm));
    }
    check_totals(&fin, count);
    lm_job_handle_free(h);
    lm_plan_free(p);
}
END_TEST

Suite *
jobstats_suite(void)
{
    Suite *s = suite_create("jobstats");
    TCase *tc = tcase_create("core");
    TCase *two = tcase_create("two_processes");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_jobstats_running_then_final_counts);
    tcase_add_test(tc, test_jobstats_unknown_job_gets_no_answer);
    tcase_add_test(tc, test_jobstats_kept_after_cancel);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(two, setup_two, teardown);
    tcase_set_timeout(two, 60);
    tcase_add_test(two, test_jobstats_each_task_manager_answers_for_its_share);
    suite_add_tcase(s, two);
    return s;
}
