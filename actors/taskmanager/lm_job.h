/*
 * lm_job.h: a job as a task manager runs it: the plan cut into chains,
 * and how the chains' subtasks are wired. Shared, read-only once the job
 * is deployed, by the task manager and the job's subtask actors (all in
 * one process), each of which holds a reference: the job goes when the
 * last of them lets go, whichever stops first. Internal to
 * actors/taskmanager.
 *
 * Chains: operators joined by a forward edge at equal parallelism, where
 * the upstream has that one output and the downstream that one input, run
 * in one subtask actor as plain calls. Each chain has `parallelism`
 * subtasks.
 *
 * Channels: subtask j of a chain numbers its input channels port by port:
 * a forward edge gives one channel (from upstream subtask j), a shuffle or
 * broadcast edge one per upstream subtask. Subtask i of a chain numbers its
 * output channels edge by edge: a forward edge gives one (to downstream
 * subtask i), a shuffle or broadcast edge one per downstream subtask.
 */
#ifndef LM_JOB_H
#define LM_JOB_H

#include <stdatomic.h>
#include <stdint.h>

#include "lm_msg.h"
#include "lm_plan.h"
#include "lm_rt.h"
#include "lm_state.h"

typedef struct lm_chain {
    uint32_t index; /* position in job->chains */
    uint32_t *ops;  /* plan operator indices, head first */
    uint32_t nops;
    uint32_t parallelism;               /* subtasks */
    lm_addr *subtasks;                  /* their addresses (set as they are spawned) */
    uint32_t nports;                    /* input ports of the head */
    uint32_t port_off[LM_OP_MAX_PORTS]; /* first input channel of each port */
    uint32_t port_cnt[LM_OP_MAX_PORTS]; /* channels of each port */
    uint32_t nin;                       /* input channels per subtask */
    uint32_t nout_edges;                /* edges leaving the tail */
    uint32_t *out_edges;                /* their plan edge indices */
    uint32_t *out_off;                  /* first output channel of each such edge */
    uint32_t nout;                      /* output channels per subtask */
} lm_chain;

typedef struct lm_job {
    char *id;         /* job id */
    lm_plan *plan;    /* the plan */
    lm_chain *chains; /* topological order: upstream chains first */
    uint32_t nchains;
    uint32_t *chain_of_op;  /* plan operator index -> chain index */
    char *checkpoint_dir;   /* "" when checkpoints are off */
    uint64_t restore_epoch; /* 0: fresh start */
    uint32_t credit;        /* batches in flight per channel */
    lm_addr tm;             /* the task manager */
    _Atomic uint32_t refs;  /* references (lm_job_retain / lm_job_release) */
} lm_job;

/* Cuts plan into chains and computes the channel layout. Takes the plan.
 * Returns LM_OK with *out holding one reference, or LM_ENOMEM. */
int lm_job_new(const char *id, lm_plan *plan, lm_job **out);

/* Takes one more reference (any thread). */
void lm_job_retain(lm_job *job);

/* Drops a reference; the last one frees the job. NULL is ignored. */
void lm_job_release(lm_job *job);

/* The chain of the operator feeding port `port` of chain c's head, and the
 * plan edge. */
const lm_plan_edge *lm_job_in_edge(const lm_job *job, const lm_chain *c, uint32_t port);

/* Path of a table snapshot:
 * {dir}/{job}/checkpoints/checkpoint-{epoch:07}/operator-{op}/table-{name}-{subtask:03} */
int lm_job_table_path(const lm_job *job, uint64_t epoch, const char *op, const char *table,
                      uint32_t subtask, char *buf, size_t cap);

/* Path of a checkpoint's directory and metadata file. */
int lm_job_checkpoint_dir(const lm_job *job, uint64_t epoch, char *buf, size_t cap);

/* The subtask actor (lm_subtask.c). Its init arg is an lm_subtask_arg. */
typedef struct lm_subtask_arg {
    lm_job *job;      /* a reference, which the subtask takes over (and drops at its end) */
    uint32_t chain;   /* chain index */
    uint32_t subtask; /* subtask index */
    lm_addr tm;       /* the task manager spawning it (here; job->tm is the coordinator):
                         gets its final per-operator counters */
} lm_subtask_arg;

extern const lm_actor_type lm_subtask_type;

#endif /* LM_JOB_H */
