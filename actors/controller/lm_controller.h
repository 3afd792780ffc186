/*
 * lm_controller.h: the controller of a Laminar cluster, assembled: the
 * metastore actor, the scheduler, the pipeline manager (which spawns one
 * job controller per job) and the REST API with all of /api/v1.
 *
 * lm_controller_start opens the metadata store first (schema migrations
 * included) and binds the API port, so that an unreachable database or a
 * taken port stop the start with a clear error, then spawns the actors.
 * With a transport, the scheduler becomes the node's desk (workers that
 * know only the controller's URL register through it).
 *
 * lm_controller_stop is the clean shutdown: the API stops taking requests,
 * the job controllers cancel their jobs and record them stopped ("the
 * controller shut down": they resume at the next start), the metadata
 * store writes all it was given, then everything stops.
 *
 * Routes added (see /api/v1 in README.md): POST/GET /pipelines,
 * GET/PATCH/DELETE /pipelines/{id}, GET /pipelines/{id}/jobs, GET /jobs,
 * GET /jobs/{id}, GET /jobs/{id}/events, GET /workers, next to the healthz
 * and validate routes of lm_api_v1.h.
 */
#ifndef LM_CONTROLLER_H
#define LM_CONTROLLER_H

#include <stdint.h>

#include "lm_config.h"
#include "lm_err.h"
#include "lm_rt.h"
#include "lm_transport.h"

typedef struct lm_controller lm_controller;

typedef struct lm_controller_opts {
    const lm_config *cfg;          /* database, api, controller and checkpointing sections */
    lm_transport *transport;       /* the node's transport; NULL: workers are local only */
    int64_t stats_interval_ms;     /* job counter polling; 0: 1000 */
    int64_t heartbeat_interval_ms; /* what workers are told; 0: worker.heartbeat_interval */
} lm_controller_opts;

/* Starts the controller on rt. LM_OK with *out; else err says what
 * failed: LM_EIO/LM_ECONFIG (the database), LM_EADDRINUSE (the API port),
 * LM_ENOMEM, or a spawn's error. Call from a thread outside the runtime's
 * loops. */
int lm_controller_start(lm_rt *rt, const lm_controller_opts *opts, lm_controller **out,
                        lm_error *err);

/* The scheduler's address, for a worker agent in the same process. */
lm_addr lm_controller_scheduler(const lm_controller *c);

/* The API's bound port. */
int lm_controller_api_port(const lm_controller *c);

/* Shuts down as described above (waits up to a few seconds) and frees c.
 * Call before lm_transport_free and lm_rt_free. NULL is a no-op. */
void lm_controller_stop(lm_controller *c);

#endif /* LM_CONTROLLER_H */
