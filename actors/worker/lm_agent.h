/*
 * lm_agent.h: a worker's agent: registers the worker's task manager and
 * slots with the controller's scheduler and keeps it known there.
 *
 * The agent sends WORKER_REGISTER to the controller (its scheduler's
 * address, or {node, 0} of the controller's node, whose desk is the
 * scheduler) every second until WORKER_REGISTERED says yes; the answer's
 * source is the scheduler's own address, used from then on. Then it sends
 * WORKER_HEARTBEAT every interval the scheduler asked for. An answer
 * LM_ENOTFOUND (the scheduler does not know it: it restarted, or declared
 * this worker lost) makes it cancel every job of its task manager (CANCEL
 * "*": the controller runs them elsewhere or again) and register again. WORKER_PEERS gives the
 * routes to the other workers, handed to the transport (when there is one), so that task managers
 * can reach each other.
 *
 * CONTROLLER_AT {node} (from the process's main thread, which finds the
 * controller's node id with lm_transport_identify) points the agent at a
 * controller node; it then watches the link to it and sets *lost when the
 * link goes down, so that the main thread looks again (a restarted
 * controller may have a new node id).
 *
 * Stopping the agent (SIGTERM of the worker) sends WORKER_LEAVE: the
 * scheduler hands the worker's jobs to the other workers at once instead
 * of waiting for the heartbeat timeout.
 */
#ifndef LM_AGENT_H
#define LM_AGENT_H

#include <stdatomic.h>
#include <stdint.h>

#include "lm_err.h"
#include "lm_rt.h"
#include "lm_transport.h"

typedef struct lm_agent_opts {
    lm_addr controller;       /* where to register; LM_ADDR_NONE: wait for CONTROLLER_AT */
    lm_addr taskmgr;          /* this worker's task manager */
    const char *address;      /* the worker's RPC URL, which names it (copied) */
    const char *data_address; /* where its data channels listen (copied) */
    uint32_t slots;           /* task slots offered */
    lm_transport *transport;  /* for peer routes and the controller link; NULL: none */
    atomic_int *lost;         /* set to 1 when the controller link goes down; may be NULL */
    atomic_int *registered;   /* 1 while the scheduler knows the worker, else 0; may be NULL */
} lm_agent_opts;

/* Spawns the agent on rt, registered as "agent". LM_OK with *out,
 * LM_EINVAL, LM_ENOMEM, or what lm_spawn returns. */
int lm_agent_spawn(lm_rt *rt, const lm_agent_opts *opts, lm_addr *out);

#endif /* LM_AGENT_H */
