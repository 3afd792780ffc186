/*
 * lm_pipeline.c: the pipeline manager actor (see lm_pipeline.h).
 *
 * Requests that need the store's answer before they can go on (create,
 * the resume list, a stop or delete of a pipeline without a live job)
 * wait in a small table keyed by the MS_CALL tag.
 */
#include "lm_pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lm_api.h"
#include "lm_api_v1.h"
#include "lm_jobctl.h"
#include "lm_log.h"
#include "lm_mem.h"
#include "lm_ms_actor.h"
#include "lm_proto.h"
#include "lm_sql.h"

enum wait_kind { W_CREATE, W_RESUME, W_STOP, W_DELETE, W_STOP_ACK };

typedef struct waiting {
    uint64_t tag;
    enum wait_kind kind;
    lm_api_pending *p;
    int64_t id;  /* pipeline id (stop, delete) */
    char *plan;  /* create: the compiled plan (JSON text), owned */
    lm_addr ctl; /* W_STOP_ACK: the job controller asked */
} waiting;

typedef struct live {
    int64_t pipeline_id, job_id;
    lm_addr ctl;
} live;

typedef struct pm {
    lm_pipeline_opts o;
    char *checkpoint_dir;
    uint64_t next_tag;
    waiting *w;
    uint32_t nw;
    size_t capw;
    live *l;
    uint32_t nl;
    size_t capl;
} pm;

/* Sends an MS_CALL whose answer comes back to this actor as kind; takes
 * args and plan (kept with the wait, may be NULL). */
static int
ask_store(lm_actor *self, pm *s, const char *op, json_t *args, enum wait_kind kind,
          lm_api_pending *p, int64_t id, char *plan)
{
    uint64_t tag = ++s->next_tag;
    int rv = LM_ENOMEM;

    if (args != NULL && lm_grow((void **)&s->w, &s->capw, s->nw + 1, sizeof(waiting)) == LM_OK) {
        rv = lm_ms_call(lm_actor_rt(self), lm_actor_addr(self), s->o.metastore, op, tag, args, NULL,
                        NULL);
    }
    json_decref(args);
    if (rv == LM_OK) {
        s->w[s->nw++] = (waiting){tag, kind, p, id, plan, LM_ADDR_NONE};
    } else {
        free(plan);
    }
    return rv;
}

static live *
live_by_pipeline(pm *s, int64_t id)
{
    for (uint32_t i = 0; i < s->nl; i++) {
        if (s->l[i].pipeline_id == id) {
            return &s->l[i];
        }
    }
    return NULL;
}

/* Spawns the controller of a stored job (J) of pipeline P with plan. */
static int
start_job(lm_actor *self, pm *s, const json_t *job, const json_t *pipe, const char *plan,
          const char *resume)
{
    lm_jobctl_opts o = {0};
    json_int_t ival = json_integer_value(json_object_get(pipe, "checkpoint_interval_ms"));
    lm_addr a;
    int rv;

    o.job_id = json_integer_value(json_object_get(job, "id"));
    o.pipeline_id = json_integer_value(json_object_get(pipe, "id"));
    o.version = json_integer_value(json_object_get(job, "version"));
    o.plan_json = plan;
    o.checkpoint_interval_ms = (uint64_t)(ival > 0 ? ival : s->o.default_checkpoint_interval_ms);
    o.checkpoint_dir = s->checkpoint_dir;
    o.restarts = json_integer_value(json_object_get(job, "restarts"));
    o.resume_reason = resume;
    o.scheduler = s->o.scheduler;
    o.metastore = s->o.metastore;
    o.restart_limit = s->o.restart_limit;
    o.backoff_min_ms = s->o.backoff_min_ms;
    o.backoff_max_ms = s->o.backoff_max_ms;
    o.deploy_timeout_ms = s->o.deploy_timeout_ms;
    o.stop_timeout_ms = s->o.stop_timeout_ms;
    o.stats_interval_ms = s->o.stats_interval_ms;
    o.live = s->o.live_jobs;
    o.board = s->o.board;
    if ((rv = lm_grow((void **)&s->l, &s->capl, s->nl + 1, sizeof(live))) != LM_OK ||
        (rv = lm_jobctl_spawn(self, &o, &a)) != LM_OK) {
        /* no controller: the job would wait for one until the next start;
         * say so in its state instead */
        char why[160];
        snprintf(why, sizeof(why), "its controller could not start: %s", lm_strerror(rv));
        LM_LOG(LM_LOG_ERROR, "job %" PRId64 ": %s", o.job_id, why);
        json_t *args = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)o.job_id, "state", "failed",
                                 "reason", why);
        if (args != NULL) {
            lm_ms_call(lm_actor_rt(self), lm_actor_addr(self), s->o.metastore, "job.set_state", 0,
                       args, NULL, NULL);
        }
        json_decref(args);
        return rv;
    }
    s->l[s->nl++] = (live){o.pipeline_id, o.job_id, a};
    return LM_OK;
}

/* --- API calls ------------------------------------------------------------- */

static void
create(lm_actor *self, pm *s, lm_api_pending *p, const char *text, size_t tlen)
{
    json_error_t je;
    json_t *body = json_loadb(text, tlen, 0, &je), *plan = NULL, *args;
    const char *name, *query;
    json_int_t par = 0, ival = 0;
    lm_sql_opts so = {NULL, 0};
    lm_sql_diag d;
    int64_t ckpt = -1;
    char *plan_text;
    int rv;

    if (body == NULL || json_unpack(body, "{s:s, s:s}", "name", &name, "query", &query) != 0) {
        lm_api_complete_error(p, 400, "invalid_request", "the body needs name and query");
        json_decref(body);
        return;
    }
    json_unpack(body, "{s?I, s?I}", "parallelism", &par, "checkpoint_interval_ms", &ival);
    so.name = name;
    so.parallelism = (uint32_t)par;
    memset(&d, 0, sizeof(d));
    size_t qlen = json_string_length(json_object_get(body, "query"));
    if ((rv = lm_sql_compile(query, qlen, &so, &plan, &ckpt, &d)) != LM_OK) {
        lm_api_resp r = {200, NULL};
        lm_api_v1_sql_error(&r, rv, &d, query, qlen);
        lm_api_complete(p, r.status, r.body);
        json_decref(body);
        return;
    }
    par = json_integer_value(json_object_get(plan, "parallelism"));
    if (json_object_get(body, "checkpoint_interval_ms") == NULL && ckpt > 0) {
        ival = ckpt;
    }
    plan_text = json_dumps(plan, JSON_COMPACT);
    args = json_pack("{s:s, s:s, s:I, s:I, s:s}", "name", name, "query", query, "parallelism",
                     par > 0 ? par : 1, "checkpoint_interval_ms", ival, "plan",
                     plan_text != NULL ? plan_text : "");
    json_decref(plan);
    json_decref(body);
    if (plan_text == NULL) {
        json_decref(args);
        lm_api_complete_error(p, 500, "internal", "out of memory");
        return;
    }
    if ((rv = ask_store(self, s, "pipeline.create", args, W_CREATE, p, 0, plan_text)) != LM_OK) {
        lm_api_complete_error(p, 503, "unavailable", "the metadata store is unavailable: %s",
                              lm_strerror(rv));
    }
}

static void
stop_or_delete(lm_actor *self, pm *s, uint32_t op, int64_t id, lm_api_pending *p, const char *how,
               size_t hlen)
{
    live *l = live_by_pipeline(s, id);
    int rv;

    if (op == LM_API_OP_PIPELINE_STOP && l != NULL) {
        char word[16];
        if (!lm_grow((void **)&s->w, &s->capw, s->nw + 1, sizeof(waiting)) == LM_OK) {
            lm_api_complete_error(p, 500, "internal", "out of memory");
            return;
        }
        snprintf(word, sizeof(word), "%.*s", (int)hlen, how);
        uint64_t tag = ++s->next_tag;
        lm_api_call_msg c = {LM_API_OP_PIPELINE_STOP, tag, {word, (uint32_t)strlen(word)}, 0};
        if (lm_tell(self, l->ctl, LM_MT_API_CALL, &c) == LM_OK) {
            s->w[s->nw++] = (waiting){tag, W_STOP_ACK, p, id, NULL, l->ctl};
            return;
        }
        /* the controller is gone: the job has ended; answer as below */
    }
    if (op == LM_API_OP_PIPELINE_DELETE && l != NULL) {
        lm_api_complete_error(p, 409, "conflict",
                              "pipeline %" PRId64 "'s job %" PRId64
                              " has not stopped; stop it first (PATCH {\"stop\": ...})",
                              id, l->job_id);
        return;
    }
    rv = ask_store(self, s, op == LM_API_OP_PIPELINE_STOP ? "pipeline.get" : "pipeline.delete",
                   json_pack("{s:I}", "id", (json_int_t)id),
                   op == LM_API_OP_PIPELINE_STOP ? W_STOP : W_DELETE, p, id, NULL);
    if (rv != LM_OK) {
        lm_api_complete_error(p, 503, "unavailable", "the metadata store is unavailable");
    }
}

static int
on_api(lm_actor *self, pm *s, lm_msg *m)
{
    lm_api_call_msg c;

    if (lm_decode_api_call(m, &c, NULL) != LM_OK || c.pending == 0) {
        LM_LOG(LM_LOG_WARN, "bad API_CALL dropped");
        return LM_OK;
    }
    lm_api_pending *p = (lm_api_pending *)(uintptr_t)c.pending;
    switch (c.op) {
    case LM_API_OP_PIPELINE_CREATE: create(self, s, p, c.body.ptr, c.body.len); break;
    case LM_API_OP_PIPELINE_STOP:
    case LM_API_OP_PIPELINE_DELETE:
        stop_or_delete(self, s, c.op, (int64_t)c.id, p, c.body.ptr, c.body.len);
        break;
    default:
        lm_api_complete_error(p, 500, "internal", "the pipeline manager does not answer op %u",
                              c.op);
    }
    return LM_OK;
}

/* --- the store's answers ----------------------------------------------------- */

/* Answers p with the store's error code and message (may be NULL). */
static void
store_error(lm_api_pending *p, int code, const char *error)
{
    int st = lm_api_code_status(code);
    lm_api_complete_error(p, st, lm_api_status_name(st), "%s",
                          error != NULL ? error : lm_strerror(code));
}

/* Answers a create; takes res (the REST answer gets it: this thread must
 * not touch it afterwards). */
static void
created(lm_actor *self, pm *s, waiting *w, int code, const char *error, json_t *res)
{
    json_t *job = json_object_get(res, "job");

    if (code != LM_OK) {
        store_error(w->p, code, error);
        json_decref(res);
        return;
    }
    if (job != NULL) {
        start_job(self, s, job, res, w->plan, NULL);
    }
    lm_api_complete(w->p, 201, res);
}

static void
resumed(lm_actor *self, pm *s, int code, const char *error, json_t *res)
{
    size_t i;
    json_t *e;

    if (code != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "cannot read the jobs to resume: %s", error);
        return;
    }
    json_array_foreach(json_object_get(res, "jobs"), i, e)
    {
        const json_t *job = json_object_get(e, "job");
        const char *plan = json_string_value(json_object_get(e, "plan"));
        char why[200];
        snprintf(why, sizeof(why), "resumed by the controller (it was %s)",
                 json_string_value(json_object_get(job, "state")) != NULL
                     ? json_string_value(json_object_get(job, "state"))
                     : "?");
        if (plan != NULL) {
            start_job(self, s, job, json_object_get(e, "pipeline"), plan, why);
        }
    }
    if (i > 0) {
        LM_LOG(LM_LOG_INFO, "resumed %zu job%s", i, i == 1 ? "" : "s");
    }
}

static int
on_reply(lm_actor *self, pm *s, lm_msg *m)
{
    uint64_t tag;
    int code;
    char *error = NULL;
    json_t *res = NULL;
    waiting w;
    uint32_t i;

    if (lm_ms_reply_decode(m, &tag, &code, &error, &res) != LM_OK) {
        return LM_OK;
    }
    for (i = 0; i < s->nw && s->w[i].tag != tag; i++) {
    }
    if (i == s->nw) {
        goto out;
    }
    w = s->w[i];
    s->w[i] = s->w[--s->nw];
    switch (w.kind) {
    case W_CREATE:
        created(self, s, &w, code, error != NULL ? error : "", res);
        res = NULL;
        break;
    case W_RESUME: resumed(self, s, code, error != NULL ? error : "", res); break;
    case W_STOP:
        if (code != LM_OK) {
            store_error(w.p, code, error);
        } else {
            json_t *job = json_object_get(res, "job");
            const char *st = json_string_value(json_object_get(job, "state"));
            lm_api_complete_error(w.p, 409, "conflict",
                                  "pipeline %" PRId64 " is not running: its job %" PRId64 " is %s",
                                  w.id, (int64_t)json_integer_value(json_object_get(job, "id")),
                                  st != NULL ? st : "gone");
        }
        break;
    case W_STOP_ACK: break; /* answered by STOP_ACK, not the store */
    case W_DELETE:
        if (code != LM_OK) {
            store_error(w.p, code, error);
        } else {
            lm_api_complete(w.p, 200, res);
            res = NULL; /* the REST answer's now */
        }
        break;
    }
    free(w.plan);
out:
    free(error);
    json_decref(res);
    return LM_OK;
}

/* A job controller recorded a stop: answer with the pipeline as stored
 * now (this read comes after its write). */
static int
on_stop_ack(lm_actor *self, pm *s, lm_msg *m)
{
    lm_stop_ack_msg a;

    if (lm_decode_stop_ack(m, &a, NULL) != LM_OK) {
        return LM_OK;
    }
    for (uint32_t i = 0; i < s->nw; i++) {
        if (s->w[i].tag == a.tag && s->w[i].kind == W_STOP_ACK) {
            waiting w = s->w[i];
            s->w[i] = s->w[--s->nw];
            json_t *args = json_pack("{s:I}", "id", (json_int_t)w.id);
            if (args == NULL || lm_ms_call(lm_actor_rt(self), lm_actor_addr(self), s->o.metastore,
                                           "pipeline.get", 0, args, w.p, NULL) != LM_OK) {
                lm_api_complete_error(w.p, 503, "unavailable", "the metadata store is unavailable");
            }
            json_decref(args);
            break;
        }
    }
    return LM_OK;
}

static int
on_child_exit(lm_actor *self, pm *s, lm_msg *m)
{
    lm_child_exit_msg ce;

    if (lm_decode_child_exit(m, &ce, NULL) != LM_OK) {
        return LM_OK;
    }
    /* stop requests it never took (it ended first; its STOP_ACKs would
     * have come before this): the job is not running */
    for (uint32_t i = 0; i < s->nw;) {
        if (s->w[i].kind != W_STOP_ACK || !lm_addr_eq(s->w[i].ctl, ce.child)) {
            i++;
        } else {
            waiting w = s->w[i];
            s->w[i] = s->w[--s->nw];
            if (ask_store(self, s, "pipeline.get", json_pack("{s:I}", "id", (json_int_t)w.id),
                          W_STOP, w.p, w.id, NULL) != LM_OK) {
                lm_api_complete_error(w.p, 503, "unavailable", "the metadata store is unavailable");
            }
        }
    }
    for (uint32_t i = 0; i < s->nl; i++) {
        if (lm_addr_eq(s->l[i].ctl, ce.child)) {
            if (ce.failed) {
                LM_LOG(LM_LOG_ERROR, "the controller of job %" PRId64 " failed: %.*s",
                       s->l[i].job_id, (int)ce.reason.len, ce.reason.ptr);
            }
            s->l[i] = s->l[--s->nl];
            break;
        }
    }
    return LM_OK;
}

/* --- the actor ------------------------------------------------------------------ */

static int
pm_init(lm_actor *self, void *arg)
{
    pm *s = arg;

    lm_actor_set_state(self, s);
    if (ask_store(self, s, "jobs.resumable", json_object(), W_RESUME, NULL, 0, NULL) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "cannot ask the metadata store for the jobs to resume");
    }
    return LM_OK;
}

static int
pm_handle(lm_actor *self, lm_msg *m)
{
    pm *s = lm_actor_state(self);

    switch (m->type) {
    case LM_MT_API_CALL: return on_api(self, s, m);
    case LM_MT_MS_REPLY: return on_reply(self, s, m);
    case LM_MT_CHILD_EXIT: return on_child_exit(self, s, m);
    case LM_MT_STOP_ACK: return on_stop_ack(self, s, m);
    default: return LM_OK;
    }
}

static void
pm_fini(lm_actor *self)
{
    pm *s = lm_actor_state(self);

    for (uint32_t i = 0; i < s->nw; i++) {
        if (s->w[i].p != NULL) {
            lm_api_complete_error(s->w[i].p, 503, "unavailable", "the controller is stopping");
        }
        free(s->w[i].plan);
    }
    free(s->w);
    free(s->l);
    free(s->checkpoint_dir);
    free(s);
}

static const lm_actor_type pm_type = {"pipelines", pm_init, pm_handle, pm_fini};

int
lm_pipeline_spawn(lm_rt *rt, const lm_pipeline_opts *opts, lm_addr *out)
{
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    pm *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    s->o = *opts;
    s->checkpoint_dir = strdup(opts->checkpoint_dir != NULL ? opts->checkpoint_dir : "");
    s->o.checkpoint_dir = NULL;
    if (s->checkpoint_dir == NULL) {
        free(s);
        return LM_ENOMEM;
    }
    so.loop = opts->loop;
    so.name = "pipelines";
    if ((rv = lm_spawn(rt, &pm_type, s, &so, out)) != LM_OK) {
        free(s->checkpoint_dir);
        free(s);
    }
    return rv;
}
