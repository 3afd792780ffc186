/*
 * lm_agent.c: the worker's agent actor (see lm_agent.h).
 */
#include "lm_agent.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_log.h"
#include "lm_proto.h"

enum { T_REGISTER = 1, T_HEARTBEAT };

typedef struct agent {
    lm_agent_opts o;
    char *address, *data_address;
    lm_addr scheduler; /* learned from WORKER_REGISTERED; NONE before */
    uint64_t worker;   /* our id; 0: not registered */
    uint64_t reg_timer, hb_timer;
    uint64_t hb_ms;
    uint32_t watched; /* controller node whose link is monitored; 0: none */
} agent;

static void
set_flag(atomic_int *f, int v)
{
    if (f != NULL) {
        atomic_store(f, v);
    }
}

static void
send_register(lm_actor *self, agent *a)
{
    lm_worker_register_msg r = {lm_str_c(a->address), lm_str_c(a->data_address), a->o.slots,
                                a->o.taskmgr, lm_rt_incarnation(lm_actor_rt(self))};
    if (a->o.controller.node != 0 || a->o.controller.actor != 0) {
        lm_tell(self, a->o.controller, LM_MT_WORKER_REGISTER, &r);
    }
}

/* Not registered (any more): register now and every second until yes.
 * A worker the scheduler no longer knows (it restarted, or declared the
 * worker lost) has its jobs rescheduled by the controller: the ones still
 * running here are canceled, or they would run twice. */
static void
unregistered(lm_actor *self, agent *a)
{
    if (a->worker != 0) {
        lm_cancel_msg c = {lm_str_c("*")};
        LM_LOG(LM_LOG_WARN, "canceling every job of this worker: the controller reschedules them");
        lm_tell(self, a->o.taskmgr, LM_MT_CANCEL, &c);
    }
    a->worker = 0;
    set_flag(a->o.registered, 0);
    if (a->hb_timer != 0) {
        lm_timer_cancel(self, a->hb_timer);
        a->hb_timer = 0;
    }
    if (a->reg_timer == 0) {
        lm_timer_start(self, 1000, 1000, T_REGISTER, &a->reg_timer);
    }
    send_register(self, a);
}

static int
on_registered(lm_actor *self, agent *a, lm_msg *m)
{
    lm_worker_registered_msg r;

    if (lm_decode_worker_registered(m, &r, NULL) != LM_OK) {
        return LM_OK;
    }
    if (r.code == LM_ENOTFOUND) {
        if (a->worker != 0) {
            LM_LOG(LM_LOG_WARN,
                   "the scheduler does not know worker %" PRIu64 " any more; registering again",
                   a->worker);
        }
        unregistered(self, a);
        return LM_OK;
    }
    if (r.code != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "registration refused: %.*s (trying again)", (int)r.reason.len,
               r.reason.ptr);
        return LM_OK;
    }
    if (a->worker == r.worker) {
        return LM_OK;
    }
    a->worker = r.worker;
    a->scheduler = m->src;
    a->hb_ms = r.heartbeat_interval_ms > 0 ? r.heartbeat_interval_ms : 1000;
    set_flag(a->o.registered, 1);
    if (a->reg_timer != 0) {
        lm_timer_cancel(self, a->reg_timer);
        a->reg_timer = 0;
    }
    if (a->hb_timer != 0) {
        lm_timer_cancel(self, a->hb_timer);
    }
    lm_timer_start(self, a->hb_ms, a->hb_ms, T_HEARTBEAT, &a->hb_timer);
    LM_LOG(LM_LOG_INFO, "registered with the controller as worker %" PRIu64 " (%u slots)",
           a->worker, a->o.slots);
    return LM_OK;
}

/* "node=url" lines: routes to the other workers. */
static int
on_peers(lm_actor *self, agent *a, lm_msg *m)
{
    lm_worker_peers_msg p;
    char line[600];

    if (lm_decode_worker_peers(m, &p, NULL) != LM_OK || a->o.transport == NULL) {
        return LM_OK;
    }
    for (uint32_t i = 0; i < p.peers.len;) {
        uint32_t j = i;
        while (j < p.peers.len && p.peers.ptr[j] != '\n') {
            j++;
        }
        snprintf(line, sizeof(line), "%.*s", (int)(j - i), p.peers.ptr + i);
        i = j + 1;
        char *eq = strchr(line, '='), *end;
        unsigned long node = strtoul(line, &end, 10);
        if (eq == NULL || end != eq || node == 0 || node > UINT32_MAX) {
            LM_LOG(LM_LOG_WARN, "bad peer line '%s' ignored", line);
            continue;
        }
        if ((uint32_t)node != lm_rt_node(lm_actor_rt(self))) {
            lm_transport_add_route(a->o.transport, (uint32_t)node, eq + 1);
        }
    }
    return LM_OK;
}

static int
on_controller_at(lm_actor *self, agent *a, lm_msg *m)
{
    lm_controller_at_msg c;

    if (lm_decode_controller_at(m, &c, NULL) != LM_OK || c.node == 0) {
        return LM_OK;
    }
    if (c.node == a->o.controller.node && a->worker != 0) {
        set_flag(a->o.lost, 0); /* the same controller, and it knows us */
        return LM_OK;
    }
    if (a->o.transport != NULL && a->o.controller.node != 0 && a->o.controller.node != c.node) {
        /* the controller came back as another node: stop calling the old one */
        lm_transport_forget_route(a->o.transport, a->o.controller.node);
    }
    a->o.controller = (lm_addr){c.node, 0};
    a->scheduler = LM_ADDR_NONE;
    set_flag(a->o.lost, 0);
    if (a->o.transport != NULL && a->watched != c.node) {
        lm_transport_monitor(a->o.transport, c.node, lm_actor_addr(self));
        a->watched = c.node;
    }
    LM_LOG(LM_LOG_INFO, "the controller is node %u", c.node);
    unregistered(self, a);
    return LM_OK;
}

static int
on_node_status(lm_actor *self, agent *a, lm_msg *m)
{
    lm_node_status_msg n;

    (void)self;
    if (lm_decode_node_status(m, &n, NULL) == LM_OK && !n.up && n.node == a->o.controller.node) {
        LM_LOG(LM_LOG_WARN, "lost the link to the controller (node %u): %.*s", n.node,
               (int)n.reason.len, n.reason.ptr);
        set_flag(a->o.lost, 1);
    }
    return LM_OK;
}

static int
on_timer(lm_actor *self, agent *a, lm_msg *m)
{
    lm_timer_msg t;

    if (lm_decode_timer(m, &t, NULL) != LM_OK) {
        return LM_OK;
    }
    if (t.tag == T_REGISTER && a->worker == 0) {
        send_register(self, a);
    } else if (t.tag == T_HEARTBEAT && a->worker != 0) {
        lm_worker_heartbeat_msg h = {a->worker, lm_rt_incarnation(lm_actor_rt(self))};
        lm_tell(self, a->scheduler, LM_MT_WORKER_HEARTBEAT, &h);
    }
    return LM_OK;
}

static int
agent_init(lm_actor *self, void *arg)
{
    agent *a = arg;

    lm_actor_set_state(self, a);
    unregistered(self, a);
    return LM_OK;
}

static int
agent_handle(lm_actor *self, lm_msg *m)
{
    agent *a = lm_actor_state(self);

    switch (m->type) {
    case LM_MT_WORKER_REGISTERED: return on_registered(self, a, m);
    case LM_MT_WORKER_PEERS: return on_peers(self, a, m);
    case LM_MT_CONTROLLER_AT: return on_controller_at(self, a, m);
    case LM_MT_NODE_STATUS: return on_node_status(self, a, m);
    case LM_MT_TIMER: return on_timer(self, a, m);
    default: return LM_OK; /* UNDELIVERABLE: the timers try again */
    }
}

static void
agent_fini(lm_actor *self)
{
    agent *a = lm_actor_state(self);

    if (a->worker != 0) {
        lm_worker_leave_msg l = {a->worker, lm_str_c("the worker is shutting down")};
        lm_tell(self, a->scheduler, LM_MT_WORKER_LEAVE, &l);
    }
    set_flag(a->o.registered, 0);
    free(a->address);
    free(a->data_address);
    free(a);
}

static const lm_actor_type agent_type = {"agent", agent_init, agent_handle, agent_fini};

int
lm_agent_spawn(lm_rt *rt, const lm_agent_opts *opts, lm_addr *out)
{
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    agent *a;
    int rv;

    if (opts == NULL || opts->address == NULL || opts->address[0] == '\0') {
        return LM_EINVAL;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        return LM_ENOMEM;
    }
    a->o = *opts;
    a->address = strdup(opts->address);
    a->data_address = strdup(opts->data_address != NULL ? opts->data_address : opts->address);
    if (a->address == NULL || a->data_address == NULL) {
        free(a->address);
        free(a->data_address);
        free(a);
        return LM_ENOMEM;
    }
    a->o.address = a->o.data_address = NULL;
    so.name = "agent";
    if ((rv = lm_spawn(rt, &agent_type, a, &so, out)) != LM_OK) {
        free(a->address);
        free(a->data_address);
        free(a);
    }
    return rv;
}
