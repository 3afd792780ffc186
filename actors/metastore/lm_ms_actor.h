/*
 * lm_ms_actor.h: the `metastore` actor. It owns the controller's one
 * metadata store handle (lm_metastore.h) and makes every database call on
 * its own loop, off the data path: other actors (the pipeline manager, job
 * controllers, the scheduler) and the REST API's handlers ask it by
 * message, never by calling the store themselves.
 *
 * A request is an MS_CALL {op, tag, args, pending, extra} (lm_ms_call
 * sends one). The actor runs op with args (a JSON object), then
 *   - when tag != 0, answers the sender with MS_REPLY {tag, code, error,
 *     result}: code LM_OK and result the JSON text of the result object,
 *     or an LM_E* code, the store's message and result "";
 *   - when pending != 0 (an lm_api_pending * of this process), completes
 *     that REST request: the result object with status 201 for
 *     "pipeline.create" and 200 otherwise, or on error
 *     lm_api_code_status(code) with {"error": {"code", "message"}}, code
 *     "invalid_request" (400), "not_found" (404), "conflict" (409),
 *     "unavailable" (503) or "internal" (500).
 * extra, when not "", is a JSON object whose members are added into the
 * result object (replacing members of the same name) before it is sent.
 * A call with tag 0 and pending 0 is run and its result dropped.
 *
 * Ops, their args and results (P, J, E and W are the objects of the REST
 * API: lm_ms_json_pipeline, lm_ms_json_job, lm_ms_json_event,
 * lm_ms_json_worker below; ids are positive integers):
 *   pipeline.create {name, query, plan (the compiled plan, JSON text),
 *                    parallelism? (default 1), checkpoint_interval_ms?
 *                    (default 0)}                               -> P
 *       makes the pipeline, its version 1 (query and plan) and a job of
 *       version 1 in state "created" (P's "job"). When a later step fails
 *       the pipeline is deleted again, so nothing half-made remains.
 *   pipeline.get {id}                                           -> P
 *   pipeline.list {}                            -> {"pipelines": [P...]}
 *   pipeline.jobs {id}                               -> {"jobs": [J...]}
 *   pipeline.set_stop {id, stop: "none"|"graceful"|"immediate"}  -> P
 *   pipeline.delete {id}                             -> {"deleted": id}
 *   job.get {id}                                                -> J
 *   job.list {}                                      -> {"jobs": [J...]}
 *   job.events {id}                  -> {"events": [E...]} (oldest first)
 *   job.set_state {id, state, reason?, expect?, restart?: bool}  -> J
 *       (lm_ms_job_set_state: LM_ESTATE when the job is not in expect)
 *   jobs.resumable {}
 *       -> {"jobs": [{"job": J, "pipeline": P, "plan": "<plan JSON text>"}...]}
 *       every pipeline whose stop is "none" and whose latest job is
 *       neither "finished" nor "failed", with that job and the plan of the
 *       job's version: what a restarted controller runs again.
 *   worker.register {address, data_address, slots}              -> W
 *   worker.heartbeat {id}                                       -> {}
 *   worker.set_state {id, state}                                -> {}
 *   worker.list {}                                -> {"workers": [W...]}
 * P's "job" is the pipeline's latest job (highest id) or null.
 *
 * Errors: the store's codes and messages (lm_metastore.h), and LM_EINVAL
 * for args that are not a JSON object, miss a required member, have one
 * of the wrong type or one the op does not know (the message names the op
 * and the member), for extra that is not a JSON object, and for an unknown
 * op. A message that does not decode, or an MS_CALL from another node, is
 * logged and dropped: bad input never fails the actor. A call that hits
 * LM_EAGAIN (database busy) is tried up to three times.
 *
 * Connection loss: when a call fails because the connection to the
 * database is lost (the store's LM_ECLOSED, lm_metastore.h), the actor
 * closes the handle and opens the URL again, first after 100 ms, then
 * doubling up to every 5 s. Meanwhile the failed request and every
 * later one wait in a queue, in order; when the store is back they run in
 * that order. At most LM_MS_ACTOR_QUEUE_MAX requests wait; beyond that a
 * new one fails at once with LM_ECLOSED ("metadata store unavailable:
 * <why>"), and so does one that has waited more than retry_max_ms (the
 * REST client gets 503 "unavailable"). The loss and the recovery are
 * logged once each, not per attempt. A request whose write is done but
 * whose result could not be read back is replayed as a read only (its
 * write is not made twice). A write whose commit was sent but whose
 * answer was lost may have been applied: replayed, it then fails as a
 * duplicate would (pipeline.create: LM_EEXIST). A pipeline.create whose
 * undo could not run because the connection was lost is undone when the
 * store is back, before the queue is replayed.
 *
 * When the actor stops, requests still queued are answered with
 * LM_ECLOSED (REST: 503) and the handle is closed.
 */
#ifndef LM_MS_ACTOR_H
#define LM_MS_ACTOR_H

#include <stdint.h>

#include <jansson.h>

#include "lm_api.h"
#include "lm_err.h"
#include "lm_metastore.h"
#include "lm_msg.h"
#include "lm_rt.h"

/* The name the actor registers under (lm_rt_whereis). */
#define LM_MS_ACTOR_NAME "metastore"

/* Requests that may wait for the store to come back. */
#define LM_MS_ACTOR_QUEUE_MAX 10000

/* retry_max_ms when 0 is given: below the REST API's default time limit
 * for a deferred answer (30 s), so a waiting client gets 503, not 504. */
#define LM_MS_ACTOR_RETRY_MAX_DEFAULT 20000

typedef struct lm_ms_actor_opts {
    const char *url;      /* the store's URL (lm_ms_open); copied. Needed when ms is NULL,
                           * and to reopen after a connection loss (without it the actor
                           * retries on the same handle, which reconnects by itself) */
    lm_ms *ms;            /* an open handle the actor takes over on success; NULL: the
                           * actor opens url itself in its init */
    int64_t retry_max_ms; /* how long a request may wait for a lost store; 0 = default */
    int loop;             /* the runtime loop to run on; -1 = any */
} lm_ms_actor_opts;

#define LM_MS_ACTOR_OPTS_DEFAULTS ((lm_ms_actor_opts){NULL, NULL, 0, -1})

/* Spawns the metastore actor on rt, registered as LM_MS_ACTOR_NAME, and
 * writes its address to *out. With o->ms NULL the actor opens o->url in its
 * init: when the database cannot be reached (LM_EIO) it retries with the
 * backoff above, queueing requests meanwhile; any other open error (a URL
 * of no known form, a schema newer than this build) fails the actor,
 * logged. Callable from any thread. Returns LM_OK; LM_EINVAL (NULL rt, o
 * or out, neither url nor ms, a negative retry_max_ms), LM_ENOMEM, or
 * lm_spawn's error (LM_EEXIST: a "metastore" already runs; LM_ECLOSED).
 * On error o->ms is still the caller's; on success the actor owns it and
 * closes it when it stops. */
int lm_ms_actor_spawn(lm_rt *rt, const lm_ms_actor_opts *o, lm_addr *out, lm_error *err);

/* Sends an MS_CALL for op with args (borrowed; NULL = {}) and extra
 * (borrowed; NULL = none) to the metastore actor at ms, with src as its
 * source (answers go there: actors pass lm_actor_addr(self), REST handlers
 * lm_api_addr). tag != 0 asks for an MS_REPLY; pending, when not NULL, is
 * completed by the actor. Callable from any thread. Returns LM_OK (the
 * actor now completes pending); LM_EINVAL (NULL rt or op, args or extra
 * not an object); LM_ENOMEM; or lm_send's error (LM_ENOACTOR: no actor at
 * ms). On any error the caller still owns pending and must complete it. */
int lm_ms_call(lm_rt *rt, lm_addr src, lm_addr ms, const char *op, uint64_t tag, json_t *args,
               lm_api_pending *pending, json_t *extra);

/* Decodes an MS_REPLY: its tag, code, error message (*error: a new string,
 * "" when none; free it) and result (*result: the parsed object, a new
 * reference; NULL when code != LM_OK). Any out-parameter may be NULL.
 * Returns LM_OK; LM_EINVAL for a NULL m; LM_ETYPE when m is not an
 * MS_REPLY; LM_EPROTO when its payload or its result text (not a JSON
 * object) is malformed; LM_ENOMEM. On error nothing needs freeing. */
int lm_ms_reply_decode(const lm_msg *m, uint64_t *tag, int *code, char **error, json_t **result);

/* --- records as JSON ---------------------------------------------------
 * The objects of the REST API (/api/v1), from store records. Each returns
 * a new reference, or NULL when out of memory. Times are ms since the
 * epoch; the record is borrowed. */

/* P: {"id", "name", "query", "parallelism", "checkpoint_interval_ms",
 * "stop", "version", "created_at", "updated_at", "job": J or null}, with
 * latest (may be NULL) the pipeline's latest job. */
json_t *lm_ms_json_pipeline(const lm_ms_pipeline *p, const lm_ms_job *latest);

/* J: {"id", "pipeline_id", "version", "state", "reason", "restarts",
 * "created_at", "updated_at"}. */
json_t *lm_ms_json_job(const lm_ms_job *j);

/* E: {"id", "job_id", "at", "state", "reason"}. */
json_t *lm_ms_json_event(const lm_ms_job_event *e);

/* W as the store has it: {"id", "address", "data_address", "slots",
 * "state", "last_heartbeat_at", "registered_at"} (the scheduler adds what
 * only it knows: "node", "slots_used"). */
json_t *lm_ms_json_worker(const lm_ms_worker *w);

#endif /* LM_MS_ACTOR_H */
