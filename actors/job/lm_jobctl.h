/*
 * lm_jobctl.h: the job controller: one actor per job, which drives the job
 * through its states and records every transition, with its reason, in
 * the metadata store.
 *
 *   created ──▶ scheduling ──▶ running ──▶ finished        (all input consumed)
 *                  ▲   │          │  └───▶ stopping ──▶ stopped   (PATCH stop)
 *                  │   │          ▼
 *                  └── restarting ◀── (a subtask failed, a worker was lost,
 *                                      the deployment did not start)
 *                        └──▶ failed   (restart_limit restarts used up)
 *
 * Scheduling: the controller asks the scheduler for `parallelism` slots
 * (SLOT_REQUEST) and stays in scheduling while the scheduler says why it
 * cannot have them (SLOT_WAIT, recorded as the state's reason when it
 * changes). With SLOT_GRANT it deploys the plan (DEPLOY) to the first
 * granted worker's task manager, which coordinates the others, as job
 * "{id}-{controller incarnation, 8 hex digits}-{attempt}" (every attempt a
 * fresh id, also after a controller restart: a late message of an earlier
 * attempt is recognised and ignored); the job is running when that task
 * manager says so (JOB_STATUS), and must be within deploy_timeout_ms.
 *
 * Restarts: on a failure (JOB_STATUS failed, WORKER_LOST for a worker the
 * job runs on, the deploy timeout) the controller cancels what is left of
 * the attempt, gives the slots back, records restarting (the restart
 * count goes up) and schedules again after a backoff that doubles from
 * backoff_min_ms to backoff_max_ms; after restart_limit restarts the job
 * is failed. For now a restart starts from scratch (restore_epoch 0).
 *
 * Stopping (API_CALL LM_API_OP_PIPELINE_STOP, body "immediate" or
 * "graceful", id a tag): immediate cancels the job; graceful asks for a
 * savepoint that then stops it (then_stop), so sinks commit what they
 * hold. A job not deployed yet is stopped at once. The controller records
 * the new state and answers the sender STOP_ACK {tag, state}: a store
 * read the sender makes after that sees the new state. If the job has not
 * stopped after stop_timeout_ms it is canceled.
 *
 * Live counters: while running, the controller polls the task managers it
 * deployed to with JOB_STATS every stats_interval_ms, keeps each
 * subtask's latest per-operator counts, and posts their sums to the job
 * board (lm_jobboard.h) as {"operators": [{id, kind, parallelism,
 * records_in, records_out}, ...], "placement": "..."}; the last figures
 * stay there when the job ends.
 *
 * The actor is named "job-{id}" (lm_jobctl_name) and stops itself once the
 * job is finished, stopped or failed. Stopped from outside (controller
 * shutdown) it cancels the attempt and records stopped, "controller shut
 * down": the pipeline's stop intent is unchanged, so the next controller
 * resumes it.
 */
#ifndef LM_JOBCTL_H
#define LM_JOBCTL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_err.h"
#include "lm_jobboard.h"
#include "lm_rt.h"

typedef struct lm_jobctl_opts {
    int64_t job_id, pipeline_id, version;
    const char *plan_json;           /* the compiled plan (copied) */
    uint64_t checkpoint_interval_ms; /* 0: checkpoints only when asked */
    const char *checkpoint_dir;      /* local directory for snapshots (copied); "": none */
    int64_t restarts;                /* restarts the job has had */
    const char *resume_reason;       /* NULL: a new job (in created); else why it is resumed */
    lm_addr scheduler, metastore;
    int64_t restart_limit;     /* restarts allowed before the job fails */
    int64_t backoff_min_ms;    /* first restart delay */
    int64_t backoff_max_ms;    /* longest restart delay */
    int64_t deploy_timeout_ms; /* from the grant to running */
    int64_t stop_timeout_ms;   /* from a stop request to stopped */
    int64_t stats_interval_ms; /* JOB_STATS polling while running */
    atomic_int *live;          /* counts live job controllers (for shutdown); may be NULL */
    lm_jobboard *board;        /* where the live figures go; may be NULL */
} lm_jobctl_opts;

/* Spawns the controller of job o->job_id as a child of parent (which gets
 * CHILD_EXIT when the job is over). LM_OK with *out; LM_EINVAL (no plan
 * or ids), LM_ENOMEM, or what lm_actor_spawn returns (LM_EEXIST: a
 * controller of that job runs already). */
int lm_jobctl_spawn(lm_actor *parent, const lm_jobctl_opts *o, lm_addr *out);

/* The registered name of job id's controller, "job-{id}", into buf. */
void lm_jobctl_name(int64_t id, char *buf, size_t cap);

#endif /* LM_JOBCTL_H */
