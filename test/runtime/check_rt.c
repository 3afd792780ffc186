/*
 * check_rt.c: the actor runtime: lifecycle, failure notification, local
 * delivery under many producers, fair turns, timers, names, addresses.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_rt.h"
#include "lm_test.h"

#define WAIT_MS (5000 * lm_test_slowdown())

static lm_rt *rt;
static lm_probe *probe;

static void
setup(void)
{
    lm_rt_opts o = {7, 2, 0, "test"};
    lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, false, NULL};
    lm_log_configure(&lo, NULL);
    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    probe = lm_probe_new(rt, 0);
    ck_assert_ptr_nonnull(probe);
}

static void
teardown(void)
{
    lm_rt_free(rt, 5000);
    lm_probe_free(probe);
    lm_msg_pool_trim();
}

/* Sends a PING with seq from the probe (so that bounces come back to it). */
static int
ping_from_probe(lm_addr dst, uint64_t seq)
{
    lm_ping_msg p = {seq, 0, {NULL, 0}};
    return lm_rt_tell_as(rt, lm_probe_addr(probe), dst, LM_MT_PING, &p);
}

/* Tells the probe something: a PONG with seq and sent_ns as two numbers. */
static void
report(lm_actor *self, uint64_t a, int64_t b)
{
    lm_pong_msg p = {a, b, {NULL, 0}};
    lm_tell(self, lm_probe_addr(probe), LM_MT_PONG, &p);
}

static lm_pong_msg
wait_report(void)
{
    lm_msg *m = lm_probe_wait(probe, LM_MT_PONG, WAIT_MS);
    lm_pong_msg p = {0};
    ck_assert_msg(m != NULL, "no report within %d ms", WAIT_MS);
    ck_assert_int_eq(lm_decode_pong(m, &p, NULL), LM_OK);
    lm_msg_release(m);
    return p;
}

/* --- lifecycle ------------------------------------------------------- */

static _Atomic int events[8];
static _Atomic int nevents;

static void
record(int e)
{
    events[atomic_fetch_add(&nevents, 1)] = e;
}

static int
life_init(lm_actor *self, void *arg)
{
    (void)self;
    record((int)(intptr_t)arg);
    return LM_OK;
}

static int
life_handle(lm_actor *self, lm_msg *m)
{
    (void)self;
    record(m->type == LM_MT_PING ? 2 : 9);
    return LM_OK;
}

static void
life_fini(lm_actor *self)
{
    (void)self;
    record(3);
}

static const lm_actor_type life_type = {"life", life_init, life_handle, life_fini};

START_TEST(test_rt_init_handle_fini_in_order)
{
    lm_addr a;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    lm_msg *m;

    so.parent = lm_probe_addr(probe);
    ck_assert_int_eq(lm_spawn(rt, &life_type, (void *)(intptr_t)1, &so, &a), LM_OK);
    ck_assert_int_eq(ping_from_probe(a, 1), LM_OK);
    ck_assert_int_eq(lm_stop(rt, a, "test over"), LM_OK);
    m = lm_probe_wait(probe, LM_MT_CHILD_EXIT, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    lm_child_exit_msg ce;
    ck_assert_int_eq(lm_decode_child_exit(m, &ce, NULL), LM_OK);
    ck_assert(lm_addr_eq(ce.child, a));
    ck_assert(!ce.failed);
    ck_assert_int_eq(ce.code, LM_OK);
    ck_assert_int_eq(ce.reason.len, strlen("test over"));
    ck_assert(memcmp(ce.reason.ptr, "test over", ce.reason.len) == 0);
    lm_msg_release(m);
    ck_assert_int_eq(atomic_load(&nevents), 3);
    ck_assert_int_eq(events[0], 1);
    ck_assert_int_eq(events[1], 2);
    ck_assert_int_eq(events[2], 3);
    /* A send after the stop fails and leaves the message to the caller. */
    ck_assert_int_eq(ping_from_probe(a, 2), LM_ENOACTOR);
}
END_TEST

/* --- failure --------------------------------------------------------- */

static int
fragile_handle(lm_actor *self, lm_msg *m)
{
    lm_ping_msg p;
    if (lm_decode_ping(m, &p, NULL) == LM_OK && p.seq == 666) {
        return lm_actor_fail(self, LM_EPROTO, "cannot digest ping %llu", (unsigned long long)p.seq);
    }
    report(self, p.seq, 0);
    return LM_OK;
}

static _Atomic int fragile_fini;

static void
fragile_fini_cb(lm_actor *self)
{
    (void)self;
    atomic_fetch_add(&fragile_fini, 1);
}

static const lm_actor_type fragile_type = {"fragile", NULL, fragile_handle, fragile_fini_cb};

START_TEST(test_rt_failure_notifies_parent_and_others_keep_running)
{
    lm_addr bad, good;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    lm_rt_stats st;
    lm_child_exit_msg ce;
    lm_msg *m;

    so.parent = lm_probe_addr(probe);
    so.loop = 1;
    ck_assert_int_eq(lm_spawn(rt, &fragile_type, NULL, &so, &bad), LM_OK);
    ck_assert_int_eq(lm_spawn(rt, &fragile_type, NULL, &so, &good), LM_OK); /* same loop */
    ck_assert_int_eq(ping_from_probe(bad, 666), LM_OK);
    m = lm_probe_wait(probe, LM_MT_CHILD_EXIT, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_child_exit(m, &ce, NULL), LM_OK);
    ck_assert(lm_addr_eq(ce.child, bad));
    ck_assert(ce.failed);
    ck_assert_int_eq(ce.code, LM_EPROTO);
    ck_assert(memmem(ce.reason.ptr, ce.reason.len, "cannot digest ping 666", 22) != NULL);
    lm_msg_release(m);
    ck_assert_int_eq(atomic_load(&fragile_fini), 1);
    /* The other actor on the same loop still answers. */
    ck_assert_int_eq(ping_from_probe(good, 5), LM_OK);
    ck_assert_int_eq(wait_report().seq, 5);
    lm_rt_get_stats(rt, &st);
    ck_assert_uint_eq(st.actors_failed, 1);
}
END_TEST

static int
bad_init(lm_actor *self, void *arg)
{
    (void)arg;
    return lm_actor_fail(self, LM_ECONFIG, "missing option 'x'");
}

static _Atomic int bad_init_fini;

static void
bad_init_fini_cb(lm_actor *self)
{
    (void)self;
    atomic_fetch_add(&bad_init_fini, 1);
}

static const lm_actor_type bad_init_type = {"badinit", bad_init, life_handle, bad_init_fini_cb};

START_TEST(test_rt_init_failure_notifies_parent_without_fini)
{
    lm_addr a;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    lm_child_exit_msg ce;
    lm_msg *m;

    so.parent = lm_probe_addr(probe);
    ck_assert_int_eq(lm_spawn(rt, &bad_init_type, NULL, &so, &a), LM_OK);
    m = lm_probe_wait(probe, LM_MT_CHILD_EXIT, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_child_exit(m, &ce, NULL), LM_OK);
    ck_assert(ce.failed);
    ck_assert_int_eq(ce.code, LM_ECONFIG);
    ck_assert(memmem(ce.reason.ptr, ce.reason.len, "missing option 'x'", 18) != NULL);
    lm_msg_release(m);
    ck_assert_int_eq(atomic_load(&bad_init_fini), 0);
}
END_TEST

/* --- supervision ----------------------------------------------------- */

static _Atomic int child_finis;

static void
child_fini(lm_actor *self)
{
    (void)self;
    atomic_fetch_add(&child_finis, 1);
}

static const lm_actor_type child_type = {"child", NULL, life_handle, child_fini};

/* On PING: spawn seq children and report how many. */
static int
parent_handle(lm_actor *self, lm_msg *m)
{
    lm_ping_msg p;

    if (lm_decode_ping(m, &p, NULL) == LM_OK) {
        for (uint64_t i = 0; i < p.seq; i++) {
            lm_addr c;
            int rv = lm_actor_spawn(self, &child_type, NULL, NULL, &c);
            if (rv != LM_OK) {
                return rv;
            }
        }
        report(self, p.seq, 0);
    }
    return LM_OK;
}

static const lm_actor_type parent_type = {"parent", NULL, parent_handle, NULL};

START_TEST(test_rt_stopping_a_parent_stops_its_children)
{
    lm_addr par;
    int64_t end;

    ck_assert_int_eq(lm_spawn(rt, &parent_type, NULL, NULL, &par), LM_OK);
    ck_assert_int_eq(ping_from_probe(par, 10), LM_OK);
    ck_assert_int_eq(wait_report().seq, 10);
    ck_assert_uint_eq(lm_rt_actor_count(rt), 12); /* probe, parent, 10 children */
    ck_assert_int_eq(lm_stop(rt, par, "done"), LM_OK);
    end = lm_test_now_ms() + WAIT_MS;
    while (lm_rt_actor_count(rt) > 1 && lm_test_now_ms() < end) {
        usleep(1000);
    }
    ck_assert_uint_eq(lm_rt_actor_count(rt), 1);
    ck_assert_int_eq(atomic_load(&child_finis), 10);
}
END_TEST

/* --- undeliverable --------------------------------------------------- */

static int
quitter_handle(lm_actor *self, lm_msg *m)
{
    (void)m;
    lm_actor_stop(self);
    return LM_OK;
}

static const lm_actor_type quitter_type = {"quitter", NULL, quitter_handle, NULL};

/* Messages accepted for an actor that stops before handling them come
 * back to their sender; none is silently lost. */
START_TEST(test_rt_messages_left_behind_bounce_to_sender)
{
    lm_addr q;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    int refused = 0, bounced = 0;
    const int n = 200;

    so.loop = 1;
    ck_assert_int_eq(lm_spawn(rt, &quitter_type, NULL, &so, &q), LM_OK);
    for (int i = 0; i < n; i++) {
        if (ping_from_probe(q, (uint64_t)i) == LM_ENOACTOR) {
            refused++;
        }
    }
    while (refused + bounced < n - 1) {
        lm_msg *m = lm_probe_wait(probe, LM_MT_UNDELIVERABLE, WAIT_MS);
        lm_undeliverable_msg u;
        ck_assert_msg(m != NULL, "only %d refused + %d bounced of %d", refused, bounced, n - 1);
        ck_assert_int_eq(lm_decode_undeliverable(m, &u, NULL), LM_OK);
        ck_assert(lm_addr_eq(u.dst, q));
        ck_assert_uint_eq(u.type, LM_MT_PING);
        ck_assert_int_eq(u.code, LM_ENOACTOR);
        lm_msg_release(m);
        bounced++;
    }
    ck_assert_int_eq(refused + bounced, n - 1); /* the first one was handled */
    ck_assert_ptr_null(lm_probe_wait(probe, LM_MT_UNDELIVERABLE, 100));
}
END_TEST

START_TEST(test_rt_unknown_and_stale_addresses_are_refused)
{
    lm_addr a, b;

    ck_assert_int_eq(ping_from_probe((lm_addr){7, 12345}, 1), LM_ENOACTOR);
    ck_assert_int_eq(ping_from_probe((lm_addr){7, 0}, 1), LM_ENOACTOR);
    ck_assert_int_eq(ping_from_probe((lm_addr){8, 1}, 1), LM_ENOROUTE); /* no transport */
    /* A slot reused by a new actor does not accept the old address. */
    ck_assert_int_eq(lm_spawn(rt, &quitter_type, NULL, NULL, &a), LM_OK);
    ck_assert_int_eq(ping_from_probe(a, 1), LM_OK);
    while (lm_rt_actor_count(rt) > 1) {
        usleep(1000);
    }
    ck_assert_int_eq(lm_spawn(rt, &fragile_type, NULL, NULL, &b), LM_OK);
    ck_assert((uint32_t)a.actor == (uint32_t)b.actor); /* same slot */
    ck_assert(!lm_addr_eq(a, b));
    ck_assert_int_eq(ping_from_probe(a, 1), LM_ENOACTOR);
    ck_assert_int_eq(ping_from_probe(b, 3), LM_OK);
    ck_assert_int_eq(wait_report().seq, 3);
}
END_TEST

/* --- many producers -------------------------------------------------- */

#define SENDERS    4
#define PER_SENDER 50000

typedef struct counter {
    uint64_t next[SENDERS];
    uint64_t got;
    int64_t out_of_order;
} counter;

static int
counter_init(lm_actor *self, void *arg)
{
    (void)arg;
    counter *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return LM_ENOMEM;
    }
    lm_actor_set_state(self, c);
    return LM_OK;
}

static int
counter_handle(lm_actor *self, lm_msg *m)
{
    counter *c = lm_actor_state(self);
    lm_ping_msg p;

    if (lm_decode_ping(m, &p, NULL) != LM_OK) {
        return LM_EPROTO;
    }
    uint64_t who = p.seq >> 32, seq = p.seq & 0xffffffffu;
    if (who >= SENDERS || seq != c->next[who]) {
        c->out_of_order++;
    } else {
        c->next[who]++;
    }
    if (++c->got == (uint64_t)SENDERS * PER_SENDER) {
        report(self, c->got, c->out_of_order);
    }
    return LM_OK;
}

static void
counter_fini(lm_actor *self)
{
    free(lm_actor_state(self));
}

static const lm_actor_type counter_type = {"counter", counter_init, counter_handle, counter_fini};

typedef struct sender_arg {
    lm_addr dst;
    uint64_t id;
    int failures;
} sender_arg;

static void *
sender_main(void *arg)
{
    sender_arg *sa = arg;
    for (uint64_t i = 0; i < PER_SENDER; i++) {
        lm_ping_msg p = {(sa->id << 32) | i, 0, {NULL, 0}};
        if (lm_rt_tell(rt, sa->dst, LM_MT_PING, &p) != LM_OK) {
            sa->failures++;
        }
    }
    return NULL;
}

START_TEST(test_rt_mailbox_many_producers_in_order_and_complete)
{
    lm_addr c;
    pthread_t th[SENDERS];
    sender_arg sa[SENDERS];
    lm_pong_msg r;

    ck_assert_int_eq(lm_spawn(rt, &counter_type, NULL, NULL, &c), LM_OK);
    for (int i = 0; i < SENDERS; i++) {
        sa[i] = (sender_arg){c, (uint64_t)i, 0};
        pthread_create(&th[i], NULL, sender_main, &sa[i]);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(sa[i].failures, 0);
    }
    r = wait_report();
    ck_assert_uint_eq(r.seq, (uint64_t)SENDERS * PER_SENDER);
    ck_assert_int_eq(r.sent_ns, 0); /* nothing out of order */
}
END_TEST

/* --- fair turns ------------------------------------------------------ */

static _Atomic int hog_turns;

static int
hog_handle(lm_actor *self, lm_msg *m)
{
    (void)m;
    atomic_fetch_add(&hog_turns, 1);
    lm_ping_msg p = {0, 0, {NULL, 0}};
    return lm_tell(self, lm_actor_addr(self), LM_MT_PING, &p); /* never idle */
}

static const lm_actor_type hog_type = {"hog", NULL, hog_handle, NULL};

/* An actor that always has another message cannot starve the actors of
 * its loop: each gets a bounded number of messages per turn. */
START_TEST(test_rt_busy_actor_does_not_starve_its_loop)
{
    lm_addr hog, other;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;

    so.loop = 1;
    ck_assert_int_eq(lm_spawn(rt, &hog_type, NULL, &so, &hog), LM_OK);
    ck_assert_int_eq(lm_spawn(rt, &fragile_type, NULL, &so, &other), LM_OK);
    ck_assert_int_eq(ping_from_probe(hog, 0), LM_OK);
    while (atomic_load(&hog_turns) < 1000) {
        usleep(100);
    }
    for (uint64_t i = 1; i <= 20; i++) {
        ck_assert_int_eq(ping_from_probe(other, i), LM_OK);
        ck_assert_int_eq(wait_report().seq, i);
    }
    ck_assert_int_eq(lm_stop(rt, hog, "enough"), LM_OK);
}
END_TEST

/* --- timers ---------------------------------------------------------- */

typedef struct ticker {
    uint64_t once, every; /* timer ids */
    int timers_seen;      /* TIMER messages handled */
    int pings;            /* PINGs handled */
} ticker;

static int
ticker_init(lm_actor *self, void *arg)
{
    ticker *t = calloc(1, sizeof(*t));
    (void)arg;
    if (t == NULL) {
        return LM_ENOMEM;
    }
    lm_actor_set_state(self, t);
    return LM_OK;
}

/* PING seq 1: start a one-shot (tag 1, 20 ms) and a periodic timer (tag 2,
 * every 10 ms). seq 2: cancel the periodic one and report. seq 3: start a
 * one-shot of 5 ms (tag 3) then work 2 ms. seq 4: cancel it. seq 5: report
 * TIMER count. Other seqs: work 1 ms. Every TIMER is reported as its tag. */
static int
ticker_handle(lm_actor *self, lm_msg *m)
{
    ticker *t = lm_actor_state(self);
    struct timespec ms = {0, 1000000};

    if (m->type == LM_MT_TIMER) {
        lm_timer_msg tm;
        ck_assert_int_eq(lm_decode_timer(m, &tm, NULL), LM_OK);
        t->timers_seen++;
        report(self, tm.tag, (int64_t)tm.id);
        return LM_OK;
    }
    lm_ping_msg p;
    ck_assert_int_eq(lm_decode_ping(m, &p, NULL), LM_OK);
    switch (p.seq) {
    case 1:
        ck_assert_int_eq(lm_timer_start(self, 20, 0, 1, &t->once), LM_OK);
        ck_assert_int_eq(lm_timer_start(self, 10, 10, 2, &t->every), LM_OK);
        break;
    case 2:
        ck_assert_int_eq(lm_timer_cancel(self, t->every), LM_OK);
        ck_assert_int_eq(lm_timer_cancel(self, t->every), LM_ENOTFOUND);
        report(self, 100, 0);
        break;
    case 3: ck_assert_int_eq(lm_timer_start(self, 5, 0, 3, &t->once), LM_OK); /* fallthrough */
    default: nanosleep(&ms, NULL); break;
    case 4: ck_assert_int_eq(lm_timer_cancel(self, t->once), LM_OK); break;
    case 5: report(self, 200, t->timers_seen); break;
    }
    return LM_OK;
}

static void
ticker_fini(lm_actor *self)
{
    free(lm_actor_state(self));
}

static const lm_actor_type ticker_type = {"ticker", ticker_init, ticker_handle, ticker_fini};

START_TEST(test_rt_timers_fire_once_periodically_and_stop_on_cancel)
{
    lm_addr a;
    int once = 0, every = 0;
    lm_pong_msg r;

    ck_assert_int_eq(lm_spawn(rt, &ticker_type, NULL, NULL, &a), LM_OK);
    ck_assert_int_eq(ping_from_probe(a, 1), LM_OK);
    while (once == 0 || every < 4) {
        r = wait_report();
        once += r.seq == 1;
        every += r.seq == 2;
    }
    ck_assert_int_eq(ping_from_probe(a, 2), LM_OK);
    do {
        r = wait_report();
        ck_assert(r.seq == 2 || r.seq == 100);
    } while (r.seq != 100);
    /* After the cancel, no periodic tick and no second one-shot. */
    ck_assert_ptr_null(lm_probe_wait(probe, LM_MT_PONG, 100));
    ck_assert_int_eq(once, 1);
}
END_TEST

/* A timer that has fired but whose TIMER is still queued behind other
 * messages is not handled once cancelled. */
START_TEST(test_rt_cancelled_timer_already_queued_is_not_handled)
{
    lm_addr a;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    lm_pong_msg r;

    so.loop = 1;
    ck_assert_int_eq(lm_spawn(rt, &ticker_type, NULL, &so, &a), LM_OK);
    /* seq 3 arms a 5 ms timer and works 2 ms; 300 more 1 ms messages keep
     * the actor busy; the loop fires the timer between turns, queueing
     * TIMER behind them; seq 4 (queued before the TIMER) cancels it. */
    ck_assert_int_eq(ping_from_probe(a, 3), LM_OK);
    for (int i = 0; i < 150; i++) {
        ck_assert_int_eq(ping_from_probe(a, 10), LM_OK);
    }
    ck_assert_int_eq(ping_from_probe(a, 4), LM_OK);
    for (int i = 0; i < 150; i++) {
        ck_assert_int_eq(ping_from_probe(a, 10), LM_OK);
    }
    ck_assert_int_eq(ping_from_probe(a, 5), LM_OK);
    r = wait_report();
    ck_assert_uint_eq(r.seq, 200);
    ck_assert_int_eq(r.sent_ns, 0);
}
END_TEST

/* --- names and shutdown ---------------------------------------------- */

START_TEST(test_rt_names_are_unique_and_released)
{
    lm_addr a, b, found;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;

    so.name = "svc";
    ck_assert_int_eq(lm_spawn(rt, &quitter_type, NULL, &so, &a), LM_OK);
    ck_assert_int_eq(lm_rt_whereis(rt, "svc", &found), LM_OK);
    ck_assert(lm_addr_eq(found, a));
    ck_assert_int_eq(lm_spawn(rt, &quitter_type, NULL, &so, &b), LM_EEXIST);
    ck_assert_int_eq(lm_rt_whereis(rt, "nope", &found), LM_ENOTFOUND);
    ck_assert_int_eq(ping_from_probe(a, 1), LM_OK); /* it quits */
    while (lm_rt_whereis(rt, "svc", &found) == LM_OK) {
        usleep(1000);
    }
    ck_assert_int_eq(lm_spawn(rt, &quitter_type, NULL, &so, &b), LM_OK);
}
END_TEST

START_TEST(test_rt_free_stops_every_actor)
{
    lm_addr a;

    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(lm_spawn(rt, &child_type, NULL, NULL, &a), LM_OK);
    }
    lm_rt_free(rt, 5000);
    rt = NULL;
    ck_assert_int_eq(atomic_load(&child_finis), 100);
    lm_probe_free(probe);
    probe = NULL;
}
END_TEST

START_TEST(test_rt_spawn_rejects_bad_options)
{
    lm_addr a;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;

    so.loop = 2; /* there are two loops: 0 and 1 */
    ck_assert_int_eq(lm_spawn(rt, &quitter_type, NULL, &so, &a), LM_EINVAL);
    so.loop = -2;
    ck_assert_int_eq(lm_spawn(rt, &quitter_type, NULL, &so, &a), LM_EINVAL);
}
END_TEST

Suite *
rt_suite(void)
{
    Suite *s = suite_create("rt");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_rt_init_handle_fini_in_order);
    tcase_add_test(tc, test_rt_failure_notifies_parent_and_others_keep_running);
    tcase_add_test(tc, test_rt_init_failure_notifies_parent_without_fini);
    tcase_add_test(tc, test_rt_stopping_a_parent_stops_its_children);
    tcase_add_test(tc, test_rt_messages_left_behind_bounce_to_sender);
    tcase_add_test(tc, test_rt_unknown_and_stale_addresses_are_refused);
    tcase_add_test(tc, test_rt_mailbox_many_producers_in_order_and_complete);
    tcase_add_test(tc, test_rt_busy_actor_does_not_starve_its_loop);
    tcase_add_test(tc, test_rt_timers_fire_once_periodically_and_stop_on_cancel);
    tcase_add_test(tc, test_rt_cancelled_timer_already_queued_is_not_handled);
    tcase_add_test(tc, test_rt_names_are_unique_and_released);
    tcase_add_test(tc, test_rt_free_stops_every_actor);
    tcase_add_test(tc, test_rt_spawn_rejects_bad_options);
    suite_add_tcase(s, tc);
    return s;
}
