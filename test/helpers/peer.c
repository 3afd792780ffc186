/*
 * peer.c: lm-test-peer, a node for the cross-process tests.
 *
 *   lm-test-peer NODE_ID LISTEN_URL [PEER_ID=URL ...]
 *
 * Starts a runtime with that node id and a transport on that URL, spawns
 * an "echo" actor that answers every PING with a PONG carrying the same
 * sequence number and body, and every BATCH with a BATCH holding the same
 * rows, and a task manager (to run parts of jobs another node
 * coordinates), connects to the peers given, then prints
 * "READY <node> <echo actor id> <front door url> <task manager actor id>" and
 * serves until it gets SIGTERM or SIGINT (or its parent dies).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_rt.h"
#include "lm_taskmgr.h"
#include "lm_transport.h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int
echo_handle(lm_actor *self, lm_msg *m)
{
    lm_error err;

    if (m->type == LM_MT_PING) {
        lm_ping_msg p;
        if (lm_decode_ping(m, &p, &err) != LM_OK) {
            return lm_actor_fail(self, err.code, "%s", err.msg);
        }
        lm_pong_msg r = {p.seq, p.sent_ns, p.body};
        lm_tell(self, m->src, LM_MT_PONG, &r);
    } else if (m->type == LM_MT_BATCH) {
        lm_batch_msg b;
        if (lm_decode_batch(m, &b, &err) != LM_OK) {
            return lm_actor_fail(self, err.code, "%s", err.msg);
        }
        lm_tell(self, m->src, LM_MT_BATCH, &b);
        lm_proto_fini(LM_MT_BATCH, &b);
    }
    return LM_OK;
}

static const lm_actor_type echo_type = {"echo", NULL, echo_handle, NULL};

int
main(int argc, char **argv)
{
    lm_rt_opts ro = {0, 2, 0, "peer"};
    lm_transport_opts to = {0};
    lm_log_opts lo = {LM_LOG_WARN, LM_LOG_TEXT, false, true, NULL};
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    lm_rt *rt;
    lm_transport *t;
    lm_addr echo, tm;
    lm_error err;

    if (argc < 3) {
        fprintf(stderr, "usage: lm-test-peer NODE_ID LISTEN_URL [PEER_ID=URL ...]\n");
        return 2;
    }
    lm_msg_tune_allocator();
    prctl(PR_SET_PDEATHSIG, SIGKILL);    /* never outlive the test */
    if (getenv("LM_TEST_LOG") != NULL) { /* the tests' debugging switch */
        lo.level = LM_LOG_DEBUG;
    }
    lm_log_configure(&lo, NULL);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    ro.node_id = (uint32_t)strtoul(argv[1], NULL, 10);
    if (lm_rt_new(&ro, &rt) != LM_OK) {
        fprintf(stderr, "lm-test-peer: cannot start the runtime\n");
        return 1;
    }
    to.listen_url = argv[2];
    to.reconnect_min_ms = 20;
    to.reconnect_max_ms = 200;
    to.connect_timeout_ms = 2000;
    if (lm_transport_new(rt, &to, &t, &err) != LM_OK) {
        fprintf(stderr, "lm-test-peer: %s\n", err.msg);
        lm_rt_free(rt, 1000);
        return 1;
    }
    so.name = "echo";
    if (lm_spawn(rt, &echo_type, NULL, &so, &echo) != LM_OK || lm_taskmgr_spawn(rt, &tm) != LM_OK) {
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL ||
            lm_transport_add_route(t, (uint32_t)strtoul(argv[i], NULL, 10), eq + 1) != LM_OK) {
            fprintf(stderr, "lm-test-peer: bad route '%s'\n", argv[i]);
            return 2;
        }
    }
    printf("READY %u %llu %s %llu\n", lm_rt_node(rt), (unsigned long long)echo.actor,
           lm_transport_url(t), (unsigned long long)tm.actor);
    fflush(stdout);
    while (!stop) {
        pause();
    }
    lm_transport_free(t);
    lm_rt_free(rt, 2000);
    lm_msg_pool_trim();
    return 0;
}
