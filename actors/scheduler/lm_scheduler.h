/*
 * lm_scheduler.h: the scheduler: the controller's registry of workers and
 * of who uses their task slots.
 *
 * Workers: a worker's agent sends WORKER_REGISTER (its RPC address, data
 * address, slots, task manager and incarnation). The scheduler records it
 * in the metadata store (which gives its id), answers WORKER_REGISTERED
 * with the id and the heartbeat interval, and tells every live worker how
 * to reach the others (WORKER_PEERS); the same process registering again
 * (same address and incarnation, while alive) is answered again and keeps
 * its slots and jobs. Then the agent sends
 * WORKER_HEARTBEAT every interval; a heartbeat from an unknown or lost
 * worker is answered WORKER_REGISTERED with LM_ENOTFOUND, and the agent
 * registers again. A worker that sends no heartbeat for heartbeat_timeout
 * is declared lost, as is one that says WORKER_LEAVE ("left"), and one
 * whose address registers again from another process: its slots are freed
 * and every job controller holding slots on it gets WORKER_LOST (its
 * allocation is dropped; the job asks again).
 *
 * Slots: a job controller sends SLOT_REQUEST {job, parallelism}: one slot
 * per parallel subtask index (every chain's subtask i shares slot i). The
 * scheduler spreads the slots over as many live workers as it can: with
 * the workers by free slots, most first, it takes the largest n (at most
 * the parallelism) such that the k-th of the first n has at least
 * ceil((parallelism - k) / n) free slots, and grants them as SLOT_GRANT:
 * the n workers' task managers in that order, subtask i going to the
 * (i mod n)th. When no n fits, the request waits, in order of arrival, and
 * the job controller gets SLOT_WAIT saying what is missing (again only
 * when that changes); waiting requests are retried whenever a worker
 * registers or slots are freed. SLOT_RELEASE frees a job's slots (or
 * withdraws its waiting request); a new SLOT_REQUEST of a job replaces
 * the old one.
 *
 * REST: API_CALL with op LM_API_OP_WORKERS answers its pending request with
 * {"workers": [...]} from the registry (lost workers included).
 */
#ifndef LM_SCHEDULER_H
#define LM_SCHEDULER_H

#include <stdint.h>

#include "lm_err.h"
#include "lm_rt.h"

typedef struct lm_scheduler_opts {
    lm_addr metastore;             /* the metastore actor */
    int64_t heartbeat_interval_ms; /* what workers are told; > 0 */
    int64_t heartbeat_timeout_ms;  /* silence after which a worker is lost; > 0 */
    int loop;                      /* loop to run on, -1: any */
} lm_scheduler_opts;

/* Spawns the scheduler on rt, registered as "scheduler". LM_OK with *out,
 * LM_EINVAL (bad options), or what lm_spawn returns. */
int lm_scheduler_spawn(lm_rt *rt, const lm_scheduler_opts *opts, lm_addr *out);

#endif /* LM_SCHEDULER_H */
