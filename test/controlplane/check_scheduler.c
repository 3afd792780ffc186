/*
 * check_scheduler.c: the scheduler (actors/scheduler/lm_scheduler.h) with
 * a real metastore actor on a temp SQLite file. Probes play the workers'
 * agents (their task managers are made-up addresses: the scheduler only
 * hands them on) and the job controllers, exchanging the same messages
 * the real ones do.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_log.h"
#include "lm_ms_actor.h"
#include "lm_proto.h"
#include "lm_scheduler.h"
#include "lm_test.h"

#define HB_MS      100
#define TIMEOUT_MS 600

static lm_rt *rt;
static lm_addr ms, sched;
static lm_probe *probes[16]; /* freed after the runtime */
static int nprobes;

static lm_probe *
probe(void)
{
    ck_assert_int_lt(nprobes, 16);
    return probes[nprobes++] = lm_probe_new(rt, -1);
}

/* Waits for a message of type and drops it; true when one came. */
static bool
got(lm_probe *p, uint32_t type, int ms)
{
    lm_msg *m = lm_probe_wait(p, type, ms);
    if (m != NULL) {
        lm_msg_release(m);
    }
    return m != NULL;
}

static int
wait_ms(int ms)
{
    return ms * lm_test_slowdown();
}

static void
setup(void)
{
    lm_rt_opts o = {0, 2, 0, "sched-test"};
    lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, false, NULL};
    char url[300];
    lm_error err;

    lm_log_configure(&lo, NULL);
    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    snprintf(url, sizeof(url), "sqlite://%s/ms.db", lm_test_tmpdir());
    lm_ms_actor_opts mo = {url, NULL, 0, -1};
    ck_assert_int_eq(lm_ms_actor_spawn(rt, &mo, &ms, &err), LM_OK);
    lm_scheduler_opts so = {ms, HB_MS, TIMEOUT_MS, -1};
    ck_assert_int_eq(lm_scheduler_spawn(rt, &so, &sched), LM_OK);
}

static void
teardown(void)
{
    lm_rt_free(rt, 2000);
    for (int i = 0; i < nprobes; i++) {
        lm_probe_free(probes[i]);
    }
    nprobes = 0;
}

/* A worker played by a probe: registers with `slots` and returns its id. */
typedef struct fake_worker {
    lm_probe *agent;
    lm_addr tm; /* made up */
    uint64_t id;
} fake_worker;

static void
worker_register(fake_worker *w, const char *address, uint32_t slots, uint64_t tm_actor)
{
    lm_msg *m;
    lm_worker_registered_msg r;

    w->agent = probe();
    w->tm = (lm_addr){lm_rt_node(rt), tm_actor};
    lm_worker_register_msg reg = {lm_str_c(address), lm_str_c(address), slots, w->tm, 7};
    ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(w->agent), sched, LM_MT_WORKER_REGISTER, &reg),
                     LM_OK);
    m = lm_probe_wait(w->agent, LM_MT_WORKER_REGISTERED, wait_ms(3000));
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_worker_registered(m, &r, NULL), LM_OK);
    ck_assert_int_eq(r.code, LM_OK);
    ck_assert_uint_gt(r.worker, 0);
    ck_assert_uint_eq(r.heartbeat_interval_ms, HB_MS);
    ck_assert(lm_addr_eq(m->src, sched));
    w->id = r.worker;
    lm_msg_release(m);
}

static void
heartbeat(const fake_worker *w)
{
    lm_worker_heartbeat_msg h = {w->id, 7};
    lm_rt_tell_as(rt, lm_probe_addr(w->agent), sched, LM_MT_WORKER_HEARTBEAT, &h);
}

static void
request(lm_probe *job, uint64_t id, uint32_t parallelism)
{
    lm_slot_request_msg r = {id, parallelism};
    ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(job), sched, LM_MT_SLOT_REQUEST, &r), LM_OK);
}

/* Waits for SLOT_GRANT and checks the task managers in order. */
static void
expect_grant(lm_probe *job, uint64_t id, const lm_addr *tms, uint32_t n, const char *placement)
{
    lm_msg *m = lm_probe_wait(job, LM_MT_SLOT_GRANT, wait_ms(3000));
    lm_slot_grant_msg g;

    ck_assert_msg(m != NULL, "no SLOT_GRANT for job %llu", (unsigned long long)id);
    ck_assert_int_eq(lm_decode_slot_grant(m, &g, NULL), LM_OK);
    ck_assert_uint_eq(g.job, id);
    ck_assert_uint_eq(g.workers.len, n * LM_ADDR_WIRE_SIZE);
    for (uint32_t i = 0; i < n; i++) {
        ck_assert(lm_addr_eq(lm_addr_list_get(g.workers, i), tms[i]));
    }
    ck_assert_msg(g.placement.len == strlen(placement) &&
                      memcmp(g.placement.ptr, placement, g.placement.len) == 0,
                  "placement '%.*s', want '%s'", (int)g.placement.len, g.placement.ptr, placement);
    lm_msg_release(m);
}

static char *
expect_wait(lm_probe *job)
{
    lm_msg *m = lm_probe_wait(job, LM_MT_SLOT_WAIT, wait_ms(3000));
    lm_slot_wait_msg w;
    char *why;

    ck_assert_msg(m != NULL, "no SLOT_WAIT");
    ck_assert_int_eq(lm_decode_slot_wait(m, &w, NULL), LM_OK);
    why = strndup(w.reason.ptr, w.reason.len);
    lm_msg_release(m);
    return why;
}

START_TEST(test_scheduler_spreads_slots)
{
    fake_worker a, b;
    lm_probe *job = probe(), *job2 = probe();

    worker_register(&a, "tcp://a:6669", 4, 101);
    worker_register(&b, "tcp://b:6669", 2, 102);
    ck_assert_uint_ne(a.id, b.id);

    /* 3 slots over 2 workers: the one with more free slots first, 2 + 1 */
    request(job, 1, 3);
    {
        lm_addr want[] = {a.tm, b.tm};
        char placement[128];
        snprintf(placement, sizeof(placement), "worker %llu x2, worker %llu x1",
                 (unsigned long long)a.id, (unsigned long long)b.id);
        expect_grant(job, 1, want, 2, placement);
    }
    /* 2 free on a, 1 on b: 3 more fit (a x2, b x1) but 4 do not */
    request(job2, 2, 4);
    char *why = expect_wait(job2);
    ck_assert_msg(strstr(why, "needs 4, 3 free on 2 live workers") != NULL, "%s", why);
    free(why);
    /* job 1 gives its slots back: job 2 gets a x2, b x2 */
    lm_slot_release_msg rel = {1};
    lm_rt_tell_as(rt, lm_probe_addr(job), sched, LM_MT_SLOT_RELEASE, &rel);
    {
        lm_addr want[] = {a.tm, b.tm};
        char placement[128];
        snprintf(placement, sizeof(placement), "worker %llu x2, worker %llu x2",
                 (unsigned long long)a.id, (unsigned long long)b.id);
        expect_grant(job2, 2, want, 2, placement);
    }
}
END_TEST

START_TEST(test_scheduler_waits_for_a_worker)
{
    fake_worker a;
    lm_probe *job = probe();

    request(job, 5, 2);
    char *why = expect_wait(job);
    ck_assert_msg(strstr(why, "needs 2, 0 free on 0 live workers") != NULL, "%s", why);
    free(why);
    /* a worker registering gives the waiting job its slots */
    worker_register(&a, "tcp://a:6669", 2, 201);
    lm_addr want[] = {a.tm};
    char placement[64];
    snprintf(placement, sizeof(placement), "worker %llu x2", (unsigned long long)a.id);
    expect_grant(job, 5, want, 1, placement);
}
END_TEST

START_TEST(test_scheduler_declares_silent_worker_lost)
{
    fake_worker a, b;
    lm_probe *job = probe();
    lm_worker_lost_msg l;
    lm_msg *m;
    int64_t t0;

    worker_register(&a, "tcp://a:6669", 1, 301);
    worker_register(&b, "tcp://b:6669", 1, 302);
    request(job, 9, 2);
    ck_assert(got(job, LM_MT_SLOT_GRANT, wait_ms(3000)));
    /* a keeps beating, b falls silent */
    t0 = lm_test_now_ms();
    m = NULL;
    while (m == NULL && lm_test_now_ms() - t0 < wait_ms(5000)) {
        heartbeat(&a);
        m = lm_probe_wait(job, LM_MT_WORKER_LOST, HB_MS);
    }
    ck_assert_msg(m != NULL, "no WORKER_LOST within 5 s");
    ck_assert_int_eq(lm_decode_worker_lost(m, &l, NULL), LM_OK);
    ck_assert_uint_eq(l.worker, b.id);
    ck_assert_msg(l.reason.len > 0 && memmem(l.reason.ptr, l.reason.len, "no heartbeat", 12),
                  "reason '%.*s'", (int)l.reason.len, l.reason.ptr);
    ck_assert_int_ge(lm_test_now_ms() - t0, TIMEOUT_MS - HB_MS);
    lm_msg_release(m);
    /* b's heartbeat now gets "register again" */
    heartbeat(&b);
    m = lm_probe_wait(b.agent, LM_MT_WORKER_REGISTERED, wait_ms(2000));
    ck_assert_ptr_nonnull(m);
    lm_worker_registered_msg r;
    ck_assert_int_eq(lm_decode_worker_registered(m, &r, NULL), LM_OK);
    ck_assert_int_eq(r.code, LM_ENOTFOUND);
    lm_msg_release(m);
    /* the job asks again: a alone cannot hold 2, then b comes back */
    request(job, 9, 2);
    char *why = expect_wait(job);
    ck_assert_msg(strstr(why, "needs 2, 1 free on 1 live worker") != NULL, "%s", why);
    free(why);
}
END_TEST

START_TEST(test_scheduler_leave_and_reregister)
{
    fake_worker a;
    lm_probe *job = probe();
    lm_msg *m;

    worker_register(&a, "tcp://a:6669", 2, 401);
    request(job, 3, 2);
    ck_assert(got(job, LM_MT_SLOT_GRANT, wait_ms(3000)));
    lm_worker_leave_msg l = {a.id, lm_str_c("shutting down")};
    lm_rt_tell_as(rt, lm_probe_addr(a.agent), sched, LM_MT_WORKER_LEAVE, &l);
    m = lm_probe_wait(job, LM_MT_WORKER_LOST, wait_ms(2000));
    ck_assert_ptr_nonnull(m);
    lm_worker_lost_msg lost;
    ck_assert_int_eq(lm_decode_worker_lost(m, &lost, NULL), LM_OK);
    ck_assert_msg(memmem(lost.reason.ptr, lost.reason.len, "shutting down", 13) != NULL,
                  "reason '%.*s'", (int)lost.reason.len, lost.reason.ptr);
    lm_msg_release(m);
    /* the same address registers again (a restarted worker): same id */
    uint64_t old = a.id;
    worker_register(&a, "tcp://a:6669", 2, 402);
    ck_assert_uint_eq(a.id, old);
}
END_TEST

START_TEST(test_scheduler_repeated_register_keeps_slots)
{
    fake_worker a;
    lm_probe *job = probe(), *job2 = probe();
    uint64_t id;

    worker_register(&a, "tcp://a:6669", 2, 601);
    id = a.id;
    request(job, 6, 2);
    ck_assert(got(job, LM_MT_SLOT_GRANT, wait_ms(3000)));
    /* the same process registers again (its answer crossed a retry): the
     * same worker, whose slots stay taken */
    worker_register(&a, "tcp://a:6669", 2, 601);
    ck_assert_uint_eq(a.id, id);
    request(job2, 7, 1);
    char *why = expect_wait(job2);
    ck_assert_msg(strstr(why, "needs 1, 0 free on 1 live worker") != NULL, "%s", why);
    free(why);
    ck_assert(!got(job, LM_MT_WORKER_LOST, wait_ms(200)));
}
END_TEST

START_TEST(test_scheduler_bad_messages)
{
    fake_worker a;
    lm_probe *job = probe();
    lm_msg *m;

    /* payloads of the wrong shape are dropped; the scheduler serves on */
    lm_ping_msg p = {1, 0, {NULL, 0}};
    ck_assert_int_eq(lm_proto_encode(LM_MT_PING, lm_probe_addr(job), sched, &p, &m), LM_OK);
    m->type = LM_MT_SLOT_REQUEST;
    ck_assert_int_eq(lm_send(rt, m), LM_OK);
    request(job, 4, 0); /* parallelism 0 */
    worker_register(&a, "tcp://a:6669", 1, 501);
    request(job, 4, 1);
    lm_addr want[] = {a.tm};
    char placement[64];
    snprintf(placement, sizeof(placement), "worker %llu x1", (unsigned long long)a.id);
    expect_grant(job, 4, want, 1, placement);
}
END_TEST

Suite *
scheduler_suite(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_scheduler_spreads_slots);
    tcase_add_test(tc, test_scheduler_waits_for_a_worker);
    tcase_add_test(tc, test_scheduler_declares_silent_worker_lost);
    tcase_add_test(tc, test_scheduler_leave_and_reregister);
    tcase_add_test(tc, test_scheduler_repeated_register_keeps_slots);
    tcase_add_test(tc, test_scheduler_bad_messages);
    suite_add_tcase(s, tc);
    return s;
}
