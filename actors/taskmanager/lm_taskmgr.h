/*
 * lm_taskmgr.h: the task manager: runs jobs (physical plans) on this
 * node's loops.
 *
 * A task manager actor takes DEPLOY (a plan and how to run it), cuts the
 * plan into chains, spawns one subtask actor per chain and parallel index
 * (subtask i on loop i mod loops), starts them once all exist, and reports
 * the job's state (JOB_STATUS) to the deploy's observer: RUNNING, then
 * FINISHED when every subtask has consumed all its input, or FAILED with
 * the failing operator and reason (the job's other subtasks are stopped;
 * other jobs go on).
 *
 * Checkpoints: TRIGGER_CHECKPOINT (or the job's interval) sends barrier N
 * into the sources; when every subtask has acknowledged N, the task
 * manager writes checkpoint-N/metadata next to the subtasks' table files
 * and sends CHECKPOINT_DONE to the subtasks (sinks commit) and the
 * observer. A job deployed with restore_epoch N starts every operator from
 * checkpoint N, which must be complete (have its metadata).
 *
 * Counters: JOB_STATS {job, seq} asks for the live per-operator counters
 * of a job this task manager runs (DEPLOY) or runs a share of (SPAWN).
 * Each of its subtasks of the job here answers the asker (the source of
 * JOB_STATS) with one JOB_STATS_REPLY {job, seq, chain, subtask, ops}:
 * for each operator of its chain, head first, the plan operator index,
 * the rows it received and the rows it emitted (20 bytes, little-endian;
 * a source receives nothing: its rows in are the rows it produced; a
 * sink emits nothing). Running subtasks answer themselves (the task
 * manager passes the message on, keeping its source); a subtask that has
 * ended hands its final counters to the task manager, which answers for
 * it, also after the job is over (for the last 16 jobs that ended here),
 * so a poller gets every subtask's latest counters, one reply per
 * subtask of this node: a job spread over several task managers is
 * polled at each. A JOB_STATS for a job unknown here gets no answer.
 *
 * CANCEL {job} ends the job CANCELED; CANCEL {"*"} cancels every job
 * the task manager coordinates and stops its subtasks of every share it
 * hosts (a worker whose controller has forgotten it: the controller runs
 * those jobs elsewhere).
 *
 * The distributed control plane of a later issue drives the same messages
 * from a controller; lm_job_run drives them from a thread of this process
 * (laminard run-plan, tests, benchmarks).
 */
#ifndef LM_TASKMGR_H
#define LM_TASKMGR_H

#include <stdint.h>

#include "lm_err.h"
#include "lm_plan.h"
#include "lm_rt.h"

/* Spawns a task manager actor on rt, registered as "taskmanager". */
int lm_taskmgr_spawn(lm_rt *rt, lm_addr *out);

typedef struct lm_job_opts {
    const char *job_id;              /* names the job and its checkpoint directory */
    const char *checkpoint_dir;      /* local directory for checkpoints; NULL/"": none */
    uint64_t checkpoint_interval_ms; /* 0: only checkpoints asked for */
    uint64_t restore_epoch;          /* 0: fresh; else start from that checkpoint */
    uint32_t credit;                 /* batches in flight per channel; 0: default (4) */
    const lm_addr *workers;          /* other task managers to run subtasks on (NULL: none):
                                        subtask i of every chain goes to task manager
                                        i mod (nworkers + 1), this one being the first */
    uint32_t nworkers;
} lm_job_opts;

typedef struct lm_job_result {
    int state; /* LM_JOB_FINISHED, LM_JOB_FAILED, LM_JOB_STOPPED, LM_JOB_CANCELED */
    char reason[LM_ERROR_MSG_MAX]; /* for FAILED: which operator and why */
    uint64_t last_epoch;           /* last completed checkpoint */
    double seconds;                /* wall time from deploy to the end */
    uint64_t max_buffered;         /* most batches any subtask held at once */
    uint64_t events;               /* events the sources read (all kinds, as benchmarks count) */
    uint64_t late_rows;            /* rows dropped as late, all operators */
    uint64_t bad_rows;             /* input records dropped as unparseable (sources) */
    uint64_t expr_errors;          /* values made NULL by expression errors */
} lm_job_result;

/* A job running under lm_job_start, watched from the calling thread. */
typedef struct lm_job_handle lm_job_handle;

/* Deploys plan (which the caller keeps) on the task manager tm. Returns
 * LM_OK with *out, or an error (LM_ENOMEM, or what sending returned). */
int lm_job_start(lm_rt *rt, lm_addr tm, const lm_plan *plan, const lm_job_opts *opts,
                 lm_job_handle **out);

/* Asks for a checkpoint (epoch 0: the next) and waits up to timeout_ms for
 * it to complete. Returns LM_OK with *epoch, LM_ETIMEDOUT, or the error the
 * checkpoint failed with (err says why). */
int lm_job_checkpoint(lm_job_handle *h, uint32_t kind, bool then_stop, int timeout_ms,
                      uint64_t *epoch, lm_error *err);

/* Waits up to timeout_ms (<0: forever) for the job to end. Returns LM_OK
 * with *res, or LM_ETIMEDOUT. */
int lm_job_wait(lm_job_handle *h, int timeout_ms, lm_job_result *res);

/* Cancels the job (it ends CANCELED). */
int lm_job_cancel(lm_job_handle *h);

/* Frees the handle (after the job ended, or after lm_rt_free). */
void lm_job_handle_free(lm_job_handle *h);

/* Deploys, waits for the end, and frees: the whole of `run-plan`. */
int lm_job_run(lm_rt *rt, lm_addr tm, const lm_plan *plan, const lm_job_opts *opts,
               lm_job_result *res);

#endif /* LM_TASKMGR_H */
