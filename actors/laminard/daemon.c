/*
 * daemon.c: laminard's long-running modes: standalone, controller and
 * worker.
 *
 * Each blocks SIGTERM and SIGINT in every thread before any starts, runs
 * its parts, and waits for one of them on the main thread; then it shuts
 * down in order: the controller first (its job controllers cancel their
 * jobs and record them stopped), then the worker's agent (which hands the
 * worker's slots back), then the transport and the runtime.
 *
 * A worker's main thread also finds the controller: it asks the front
 * door at worker.controller_url for its node id (lm_transport_identify),
 * adds the route and tells the agent (CONTROLLER_AT); when the agent
 * reports the link lost, it looks again, since a restarted controller may
 * have a new node id.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "laminard.h"
#include "lm_agent.h"
#include "lm_controller.h"
#include "lm_log.h"
#include "lm_proto.h"
#include "lm_taskmgr.h"

static void
block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Waits up to ms for SIGTERM or SIGINT; returns the signal or 0. */
static int
wait_signal(const sigset_t *set, int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    int sig = ms < 0 ? 0 : sigtimedwait(set, NULL, &ts);

    if (ms < 0) {
        while (sigwait(set, &sig) != 0) {
        }
    }
    return sig > 0 ? sig : 0;
}

/* The worker's slots: worker.slots, else the runtime's loops. */
static uint32_t
slots_of(const lm_config *cfg, lm_rt *rt)
{
    return cfg->worker.slots > 0 ? (uint32_t)cfg->worker.slots : (uint32_t)lm_rt_loop_count(rt);
}

static void
finish(lm_rt *rt, lm_transport *t, const char *what)
{
    if (t != NULL) {
        lm_transport_free(t);
    }
    lm_rt_free(rt, 5000);
    LM_LOGC(LM_LOG_INFO, "laminard", "%s stopped", what);
    lm_log_shutdown();
}

int
laminard_standalone(const lm_config *cfg)
{
    lm_controller *ctl;
    lm_addr tm, agent;
    lm_error err = {0};
    sigset_t set;
    lm_rt *rt;
    int sig, rv;

    block_signals(&set);
    if (laminard_start_rt(cfg, (uint32_t)cfg->node.id, &rt) != 0) {
        return 1;
    }
    lm_controller_opts co = {cfg, NULL, 0, 0};
    if ((rv = lm_controller_start(rt, &co, &ctl, &err)) != LM_OK) {
        fprintf(stderr, "laminard: standalone: %s\n", err.msg);
        finish(rt, NULL, "standalone");
        return 1;
    }
    if ((rv = lm_taskmgr_spawn(rt, &tm)) != LM_OK) {
        fprintf(stderr, "laminard: cannot start the task manager: %s\n", lm_strerror(rv));
        lm_controller_stop(ctl);
        finish(rt, NULL, "standalone");
        return 1;
    }
    lm_agent_opts ao = {
        lm_controller_scheduler(ctl), tm, "local", "local", slots_of(cfg, rt), NULL, NULL, NULL};
    if ((rv = lm_agent_spawn(rt, &ao, &agent)) != LM_OK) {
        fprintf(stderr, "laminard: cannot start the worker agent: %s\n", lm_strerror(rv));
        lm_controller_stop(ctl);
        finish(rt, NULL, "standalone");
        return 1;
    }
    LM_LOGC(LM_LOG_INFO, "laminard",
            "standalone: REST API at http://%s:%d/api/v1, %u slots, metadata %s; stop with "
            "SIGTERM",
            cfg->api.bind, lm_controller_api_port(ctl), ao.slots,
            cfg->database.type == LM_CONFIG_DB_SQLITE ? cfg->database.sqlite.path : "postgres");
    sig = wait_signal(&set, -1);
    LM_LOGC(LM_LOG_INFO, "laminard", "%s: shutting down", strsignal(sig));
    lm_controller_stop(ctl);
    lm_stop(rt, agent, "shutting down");
    finish(rt, NULL, "standalone");
    return 0;
}

int
laminard_controller(const lm_config *cfg)
{
    lm_controller *ctl;
    lm_transport *t;
    lm_error err = {0};
    sigset_t set;
    lm_rt *rt;
    int sig;

    block_signals(&set);
    if (laminard_start_node(cfg, cfg->controller.rpc_url, (uint32_t)cfg->node.id, &rt, &t) != 0) {
        return 1;
    }
    lm_controller_opts co = {cfg, t, 0, 0};
    if (lm_controller_start(rt, &co, &ctl, &err) != LM_OK) {
        fprintf(stderr, "laminard: controller: %s\n", err.msg);
        finish(rt, t, "controller");
        return 1;
    }
    LM_LOGC(LM_LOG_INFO, "laminard",
            "controller: node %u, RPC at %s, REST API at http://%s:%d/api/v1; stop with SIGTERM",
            lm_rt_node(rt), lm_transport_url(t), cfg->api.bind, lm_controller_api_port(ctl));
    sig = wait_signal(&set, -1);
    LM_LOGC(LM_LOG_INFO, "laminard", "%s: shutting down", strsignal(sig));
    lm_controller_stop(ctl);
    finish(rt, t, "controller");
    return 0;
}

int
laminard_worker(const lm_config *cfg, const char *listen)
{
    const char *url = cfg->worker.controller_url;
    atomic_int lost, registered;
    lm_transport *t;
    lm_addr tm, agent;
    lm_error err;
    sigset_t set;
    lm_rt *rt;
    uint32_t node = 0;
    bool waiting_logged = false;
    int sig = 0, rv;

    block_signals(&set);
    atomic_init(&lost, 1);
    atomic_init(&registered, 0);
    if (laminard_start_node(cfg, listen != NULL ? listen : cfg->worker.rpc_url,
                            (uint32_t)cfg->node.id, &rt, &t) != 0) {
        return 1;
    }
    if ((rv = lm_taskmgr_spawn(rt, &tm)) != LM_OK) {
        fprintf(stderr, "laminard: cannot start the task manager: %s\n", lm_strerror(rv));
        finish(rt, t, "worker");
        return 1;
    }
    lm_agent_opts ao = {
        LM_ADDR_NONE, tm,         lm_transport_url(t), lm_transport_url(t), slots_of(cfg, rt), t,
        &lost,        &registered};
    if ((rv = lm_agent_spawn(rt, &ao, &agent)) != LM_OK) {
        fprintf(stderr, "laminard: cannot start the worker agent: %s\n", lm_strerror(rv));
        finish(rt, t, "worker");
        return 1;
    }
    LM_LOGC(LM_LOG_INFO, "laminard", "worker: node %u at %s, %u slots, controller at %s",
            lm_rt_node(rt), lm_transport_url(t), ao.slots, url);
    while (sig == 0) {
        if (atomic_load(&lost)) {
            uint32_t n;
            if (lm_transport_identify(url, 2000, &n, &err) == LM_OK) {
                lm_controller_at_msg c = {n};
                waiting_logged = false;
                if (n != node) {
                    lm_transport_add_route(t, n, url);
                    node = n;
                }
                atomic_store(&lost, 0);
                if (lm_rt_tell_as(rt, agent, agent, LM_MT_CONTROLLER_AT, &c) != LM_OK) {
                    atomic_store(&lost, 1);
                }
            } else if (!waiting_logged) {
                LM_LOGC(LM_LOG_WARN, "laminard", "waiting for the controller at %s: %s", url,
                        err.msg);
                waiting_logged = true;
            }
        }
        sig = wait_signal(&set, 1000);
    }
    LM_LOGC(LM_LOG_INFO, "laminard", "%s: shutting down", strsignal(sig));
    /* the agent hands the slots back before the jobs here stop */
    lm_stop(rt, agent, "shutting down");
    for (int i = 0; i < 100 && atomic_load(&registered); i++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    finish(rt, t, "worker");
    return 0;
}
