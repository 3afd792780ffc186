/*
 * lm_pipeline.h: the pipeline manager: turns pipeline requests of the
 * REST API into stored pipelines and running job controllers.
 *
 * API_CALL ops it answers (the pending request gets the answer):
 *   LM_API_OP_PIPELINE_CREATE  body {name, query, parallelism?,
 *       checkpoint_interval_ms?} (checked by the API handler): compiles
 *       the query (400 invalid_sql with line, column and context), stores
 *       the pipeline, its version 1 with the plan and its first job
 *       (metastore "pipeline.create"; 409 when the name is taken), spawns
 *       the job's controller and answers 201 with the pipeline.
 *   LM_API_OP_PIPELINE_STOP    id, body "immediate" | "graceful": records
 *       the stop in the pipeline, asks its job's controller to stop the
 *       job and, once it has recorded that (STOP_ACK), answers with the
 *       pipeline; 409 when no controller runs for it (its job has ended,
 *       also when it ends before it takes the request).
 *   LM_API_OP_PIPELINE_DELETE  id: 409 while a controller runs for it,
 *       else deletes it with its versions, jobs and events.
 *
 * At start it asks the store for the jobs to resume ("jobs.resumable":
 * pipelines meant to run whose latest job had not ended when the last
 * controller stopped) and spawns their controllers. Job controllers are
 * its children; the map from pipelines to them is kept from their spawns
 * and CHILD_EXITs.
 */
#ifndef LM_PIPELINE_H
#define LM_PIPELINE_H

#include <stdatomic.h>
#include <stdint.h>

#include "lm_err.h"
#include "lm_jobboard.h"
#include "lm_rt.h"

typedef struct lm_pipeline_opts {
    lm_addr metastore, scheduler;
    const char *checkpoint_dir;             /* local directory for jobs' snapshots; "" none */
    int64_t default_checkpoint_interval_ms; /* for pipelines that set 0 */
    int64_t restart_limit;                  /* job controller options (lm_jobctl.h) */
    int64_t backoff_min_ms, backoff_max_ms;
    int64_t deploy_timeout_ms, stop_timeout_ms, stats_interval_ms;
    atomic_int *live_jobs; /* counts live job controllers; may be NULL */
    lm_jobboard *board;    /* the job board for the job controllers; may be NULL */
    int loop;              /* -1: any */
} lm_pipeline_opts;

/* Spawns the pipeline manager on rt, registered as "pipelines"; the
 * strings of opts are copied. LM_OK with *out, LM_ENOMEM, or what
 * lm_spawn returns. */
int lm_pipeline_spawn(lm_rt *rt, const lm_pipeline_opts *opts, lm_addr *out);

#endif /* LM_PIPELINE_H */
