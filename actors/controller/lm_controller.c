/*
 * lm_controller.c: the controller assembled (see lm_controller.h), and the
 * REST routes of the control plane.
 *
 * Route handlers run on the api actor's loop and never block: they check
 * the request, defer it, and hand it to the actor that answers it, with
 * the api actor as the message's source. Reads of stored records go
 * straight to the metastore actor; anything that changes a pipeline goes
 * to the pipeline manager; a running job's details to its controller.
 */
#include "lm_controller.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_api.h"
#include "lm_api_v1.h"
#include "lm_jobboard.h"
#include "lm_jobctl.h"
#include "lm_log.h"
#include "lm_metastore.h"
#include "lm_ms_actor.h"
#include "lm_pipeline.h"
#include "lm_proto.h"
#include "lm_scheduler.h"
#include "lm_text.h"

struct lm_controller {
    lm_rt *rt;
    lm_transport *transport;
    lm_api *api;
    lm_addr ms, sched, pm;
    atomic_int live_jobs;
    lm_jobboard *board; /* the job controllers' live figures */
};

/* --- routes ---------------------------------------------------------------- */

/* The {id} parameter as a positive integer, or a 400 in resp. */
static int
path_id(const lm_api_req *req, lm_api_resp *resp, int64_t *id)
{
    const char *v = lm_api_param(req, "id");
    char *end;
    long long n = v != NULL ? strtoll(v, &end, 10) : 0;

    if (v == NULL || *v < '0' || *v > '9' || *end != '\0' || n <= 0) {
        lm_api_error(resp, 400, "invalid_request",
                     "the id in the path must be a positive integer, not \"%.64s\"",
                     v != NULL ? v : "");
        return LM_EINVAL;
    }
    *id = n;
    return LM_OK;
}

/* Defers req and has the metastore actor answer it with op(args), extra's
 * members added (borrowed; may be NULL). Takes args. */
static int
from_store_extra(lm_controller *c, const lm_api_req *req, const char *op, json_t *args,
                 json_t *extra)
{
    lm_api_pending *p;
    int rv;

    if (args == NULL) {
        return LM_ENOMEM;
    }
    if ((rv = lm_api_defer(req, &p)) != LM_OK) {
        json_decref(args);
        return rv;
    }
    rv = lm_ms_call(c->rt, lm_api_addr(req->api), c->ms, op, 0, args, p, extra);
    json_decref(args);
    if (rv != LM_OK) {
        lm_api_complete_error(p, 503, "unavailable", "the metadata store is unavailable: %s",
                              lm_strerror(rv));
    }
    return LM_OK;
}

static int
from_store(lm_controller *c, const lm_api_req *req, lm_api_resp *resp, const char *op, json_t *args)
{
    (void)resp;
    return from_store_extra(c, req, op, args, NULL);
}

/* from_store with op({"id": the path's id}). */
static int
store_by_id(lm_controller *c, const lm_api_req *req, lm_api_resp *resp, const char *op)
{
    int64_t id;
    int rv = path_id(req, resp, &id);
    return rv != LM_OK ? rv
                       : from_store(c, req, resp, op, json_pack("{s:I}", "id", (json_int_t)id));
}

/* Defers req and sends API_CALL {op, id, body} to dst. */
static int
to_actor(lm_controller *c, const lm_api_req *req, lm_addr dst, uint32_t op, int64_t id,
         const char *body)
{
    lm_api_pending *p;
    int rv;

    if ((rv = lm_api_defer(req, &p)) != LM_OK) {
        return rv;
    }
    lm_api_call_msg m = {op, (uint64_t)id, lm_str_c(body), (uint64_t)(uintptr_t)p};
    if ((rv = lm_rt_tell_as(c->rt, lm_api_addr(req->api), dst, LM_MT_API_CALL, &m)) != LM_OK) {
        lm_api_complete_error(p, 503, "unavailable", "the controller cannot answer now: %s",
                              lm_strerror(rv));
    }
    return LM_OK;
}

static int
pipelines_create(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    static const lm_api_field fields[] = {
        {"name", LM_API_STRING, true, 0, 0},
        {"query", LM_API_STRING, true, 0, 0},
        {"parallelism", LM_API_INTEGER, false, 1, 1024},
        {"checkpoint_interval_ms", LM_API_INTEGER, false, 0, INT64_C(86400000)},
    };
    lm_controller *c = arg;
    size_t nlen;
    char *body;
    int rv;

    if ((rv = lm_api_check_body(req, fields, sizeof(fields) / sizeof(fields[0]), resp)) != LM_OK) {
        return rv;
    }
    nlen = json_string_length(json_object_get(req->body, "name"));
    if (nlen == 0 || nlen > 128) {
        lm_api_error(resp, 400, "invalid_request",
                     "field \"name\" must have 1 to 128 characters (it has %zu)", nlen);
        lm_api_error_set(resp, "field", json_string("name"));
        return LM_EINVAL;
    }
    if (json_string_length(json_object_get(req->body, "query")) == 0) {
        lm_api_error(resp, 400, "invalid_request", "field \"query\" must not be empty");
        lm_api_error_set(resp, "field", json_string("query"));
        return LM_EINVAL;
    }
    if ((body = json_dumps(req->body, JSON_COMPACT)) == NULL) {
        return LM_ENOMEM;
    }
    rv = to_actor(c, req, c->pm, LM_API_OP_PIPELINE_CREATE, 0, body);
    free(body);
    return rv;
}

static int
pipelines_list(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    return from_store(arg, req, resp, "pipeline.list", json_object());
}

static int
pipeline_get(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    return store_by_id(arg, req, resp, "pipeline.get");
}

static int
pipeline_patch(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    static const lm_api_field fields[] = {{"stop", LM_API_STRING, true, 0, 0}};
    lm_controller *c = arg;
    const char *how;
    int64_t id;
    int rv;

    if ((rv = path_id(req, resp, &id)) != LM_OK ||
        (rv = lm_api_check_body(req, fields, 1, resp)) != LM_OK) {
        return rv;
    }
    how = json_string_value(json_object_get(req->body, "stop"));
    if (strcmp(how, "immediate") != 0 && strcmp(how, "graceful") != 0) {
        lm_api_error(resp, 400, "invalid_request",
                     "field \"stop\" must be \"immediate\" or \"graceful\", not \"%.32s\"", how);
        lm_api_error_set(resp, "field", json_string("stop"));
        return LM_EINVAL;
    }
    return to_actor(c, req, c->pm, LM_API_OP_PIPELINE_STOP, id, how);
}

static int
pipeline_delete(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    lm_controller *c = arg;
    int64_t id;
    int rv = path_id(req, resp, &id);
    return rv != LM_OK ? rv : to_actor(c, req, c->pm, LM_API_OP_PIPELINE_DELETE, id, "");
}

static int
pipeline_jobs(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    return store_by_id(arg, req, resp, "pipeline.jobs");
}

static int
jobs_list(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    return from_store(arg, req, resp, "job.list", json_object());
}

static int
job_get(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    lm_controller *c = arg;
    json_t *extra = NULL;
    char *live;
    int64_t id;
    int rv;

    if ((rv = path_id(req, resp, &id)) != LM_OK) {
        return rv;
    }
    /* the stored job, with its controller's latest figures when there are */
    if ((live = lm_jobboard_get(c->board, id)) != NULL) {
        extra = json_loads(live, 0, NULL);
        free(live);
    }
    rv = from_store_extra(c, req, "job.get", json_pack("{s:I}", "id", (json_int_t)id), extra);
    json_decref(extra);
    return rv;
}

static int
job_events(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    return store_by_id(arg, req, resp, "job.events");
}

static int
workers_list(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    lm_controller *c = arg;
    (void)resp;
    return to_actor(c, req, c->sched, LM_API_OP_WORKERS, 0, "");
}

static int
add_routes(lm_controller *c)
{
    static const struct {
        const char *method, *pattern;
        lm_api_handler fn;
    } routes[] = {
        {"POST", "/api/v1/pipelines", pipelines_create},
        {"GET", "/api/v1/pipelines", pipelines_list},
        {"GET", "/api/v1/pipelines/{id}", pipeline_get},
        {"PATCH", "/api/v1/pipelines/{id}", pipeline_patch},
        {"DELETE", "/api/v1/pipelines/{id}", pipeline_delete},
        {"GET", "/api/v1/pipelines/{id}/jobs", pipeline_jobs},
        {"GET", "/api/v1/jobs", jobs_list},
        {"GET", "/api/v1/jobs/{id}", job_get},
        {"GET", "/api/v1/jobs/{id}/events", job_events},
        {"GET", "/api/v1/workers", workers_list},
    };
    int rv = lm_api_v1_register(c->api);

    for (size_t i = 0; rv == LM_OK && i < sizeof(routes) / sizeof(routes[0]); i++) {
        rv = lm_api_route(c->api, routes[i].method, routes[i].pattern, routes[i].fn, c);
    }
    return rv;
}

/* --- start and stop ---------------------------------------------------------- */

/* The local directory of a file:// checkpoint URL; "" for others. */
static const char *
checkpoint_path(const char *url)
{
    if (strncmp(url, "file://", 7) == 0) {
        return url + 7;
    }
    LM_LOGC(LM_LOG_WARN, "controller",
            "checkpointing.url %s: only file:// checkpoints can be written yet; jobs run "
            "without checkpoints",
            url);
    return "";
}

/* Waits up to ms for the named actor to be gone. */
static void
wait_gone(lm_rt *rt, const char *name, int ms)
{
    lm_addr a;
    for (int i = 0; i < ms / 10 && lm_rt_whereis(rt, name, &a) == LM_OK; i++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
}

int
lm_controller_start(lm_rt *rt, const lm_controller_opts *opts, lm_controller **out, lm_error *err)
{
    const lm_config *cfg = opts->cfg;
    lm_controller *c = calloc(1, sizeof(*c));
    lm_ms *ms = NULL;
    char *url = NULL, masked[512];
    lm_api_opts ao;
    int rv;

    if (c == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    c->rt = rt;
    c->transport = opts->transport;
    atomic_init(&c->live_jobs, 0);
    if (lm_jobboard_new(&c->board) != LM_OK) {
        rv = lm_error_set(err, LM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rv = lm_ms_config_url(cfg, &url, err)) != LM_OK) {
        goto fail;
    }
    lm_text_mask_password(url, masked, sizeof(masked));
    if ((rv = lm_ms_open(url, &ms, err)) != LM_OK) {
        free(url);
        goto fail;
    }
    LM_LOGC(LM_LOG_INFO, "controller", "metadata store: %s (%s)", masked, lm_ms_backend(ms));
    lm_ms_actor_opts mo = {url, ms, cfg->database.retry_max_ms, -1};
    rv = lm_ms_actor_spawn(rt, &mo, &c->ms, err);
    free(url);
    if (rv != LM_OK) {
        lm_ms_close(ms); /* still ours when the actor did not start */
        goto fail;
    }
    lm_scheduler_opts so = {c->ms,
                            opts->heartbeat_interval_ms > 0 ? opts->heartbeat_interval_ms
                                                            : cfg->worker.heartbeat_interval_ms,
                            cfg->controller.heartbeat_timeout_ms, -1};
    if ((rv = lm_scheduler_spawn(rt, &so, &c->sched)) != LM_OK) {
        lm_error_set(err, rv, "cannot start the scheduler: %s", lm_strerror(rv));
        goto fail;
    }
    lm_pipeline_opts po = {c->ms,
                           c->sched,
                           checkpoint_path(cfg->checkpointing.url),
                           cfg->checkpointing.interval_ms,
                           cfg->controller.restart_limit,
                           cfg->controller.restart_backoff_ms,
                           cfg->controller.restart_backoff_max_ms,
                           cfg->controller.deploy_timeout_ms,
                           60000,
                           opts->stats_interval_ms > 0 ? opts->stats_interval_ms : 1000,
                           &c->live_jobs,
                           c->board,
                           -1};
    if ((rv = lm_pipeline_spawn(rt, &po, &c->pm)) != LM_OK) {
        lm_error_set(err, rv, "cannot start the pipeline manager: %s", lm_strerror(rv));
        goto fail;
    }
    lm_api_opts_from_config(cfg, &ao);
    if ((rv = lm_api_start(rt, &ao, &c->api, err)) != LM_OK) {
        goto fail;
    }
    if ((rv = add_routes(c)) != LM_OK) {
        lm_error_set(err, rv, "cannot add the API routes: %s", lm_strerror(rv));
        goto fail;
    }
    if (c->transport != NULL) {
        lm_transport_set_desk(c->transport, c->sched);
    }
    *out = c;
    return LM_OK;
fail:
    lm_controller_stop(c);
    return rv;
}

lm_addr
lm_controller_scheduler(const lm_controller *c)
{
    return c->sched;
}

int
lm_controller_api_port(const lm_controller *c)
{
    return lm_api_port(c->api);
}

void
lm_controller_stop(lm_controller *c)
{
    if (c == NULL) {
        return;
    }
    if (c->transport != NULL) {
        lm_transport_set_desk(c->transport, LM_ADDR_NONE);
    }
    lm_api_stop(c->api);
    c->api = NULL;
    if (c->pm.actor != 0) {
        lm_stop(c->rt, c->pm, "controller shutting down");
        wait_gone(c->rt, "pipelines", 5000);
        /* its job controllers cancel their jobs and record it */
        for (int i = 0; i < 500 && atomic_load(&c->live_jobs) > 0; i++) {
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
    }
    if (c->sched.actor != 0) {
        lm_stop(c->rt, c->sched, "controller shutting down");
        wait_gone(c->rt, "scheduler", 2000);
    }
    if (c->ms.actor != 0) {
        /* after everything it was given */
        lm_stop(c->rt, c->ms, "controller shutting down");
        wait_gone(c->rt, "metastore", 10000);
    }
    if (atomic_load(&c->live_jobs) == 0) {
        lm_jobboard_free(c->board); /* no job controller is left to post */
    } else {
        LM_LOGC(LM_LOG_WARN, "controller", "%d job controllers still stopping; left to the exit",
                atomic_load(&c->live_jobs));
    }
    free(c);
}
