/*
 * lm_ms_actor.c: the `metastore` actor (lm_ms_actor.h): runs the metadata
 * store operations other actors and the REST API's handlers ask for in
 * MS_CALL messages, on its own loop, and answers with MS_REPLY and/or by
 * completing the deferred REST request.
 *
 * Each op is a function of the table `ops` that checks its args (a JSON
 * object), calls the store and builds the result object. While the store
 * is up, a request runs as soon as it is handled. When a call finds the
 * connection lost, the request is kept (the message retained) at the head
 * of a FIFO and the actor goes down: later requests join the FIFO, a
 * RECONNECT timer reopens the store with exponential backoff, and an
 * EXPIRE timer, set for the oldest request's deadline, fails requests
 * that waited longer than retry_max_ms. Once the store opens again the
 * FIFO is replayed in order, each request decoded again from its message.
 */
#include "lm_ms_actor.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_log.h"
#include "lm_proto.h"
#include "lm_text.h"
#include "lm_time.h"

#define BACKOFF_START_MS 100
#define BACKOFF_MAX_MS   5000
#define EAGAIN_TRIES     3
#define ORPHANS_MAX      1024 /* pipelines whose undo waits for the store */

enum {
    TAG_RECONNECT = 1,
    TAG_EXPIRE = 2,
};

/* A request waiting for the store. */
typedef struct waiting {
    lm_msg *m;      /* the MS_CALL, retained */
    int64_t since;  /* when it was first handled, monotonic ms */
    bool committed; /* its write is done; only the result is to be read */
} waiting;

typedef struct ms_state {
    lm_actor *self;
    char *url;                  /* to reopen; NULL: retry on the same handle */
    lm_ms *ms;                  /* NULL while down with url set */
    int64_t retry_max_ms;       /* how long a request may wait */
    bool down;                  /* the store is lost; requests wait */
    int64_t down_since;         /* when it was lost, monotonic ms */
    char why[LM_ERROR_MSG_MAX]; /* the last reason it is down */
    int64_t backoff_ms;         /* the next reconnect delay */
    uint64_t reconnect_timer;   /* 0: none armed */
    uint64_t expire_timer;      /* 0: none armed */
    waiting *q;                 /* ring of waiting requests */
    size_t qcap, qhead, qlen;
    int64_t orphans[ORPHANS_MAX]; /* pipelines a failed create must still delete */
    size_t norphans;
} ms_state;

/* --- records as JSON ----------------------------------------------------- */

#define S(x) ((x) != NULL ? (x) : "")

json_t *
lm_ms_json_job(const lm_ms_job *j)
{
    return json_pack("{s:I, s:I, s:I, s:s, s:s, s:I, s:I, s:I}", "id", (json_int_t)j->id,
                     "pipeline_id", (json_int_t)j->pipeline_id, "version", (json_int_t)j->version,
                     "state", S(j->state), "reason", S(j->reason), "restarts",
                     (json_int_t)j->restarts, "created_at", (json_int_t)j->created_ms, "updated_at",
                     (json_int_t)j->updated_ms);
}

json_t *
lm_ms_json_pipeline(const lm_ms_pipeline *p, const lm_ms_job *latest)
{
    json_t *job = latest != NULL ? lm_ms_json_job(latest) : json_null();

    if (job == NULL) {
        return NULL;
    }
    return json_pack(
        "{s:I, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:o}", "id", (json_int_t)p->id, "name",
        S(p->name), "query", S(p->query), "parallelism", (json_int_t)p->parallelism,
        "checkpoint_interval_ms", (json_int_t)p->checkpoint_interval_ms, "stop",
        lm_ms_stop_word(p->stop), "version", (json_int_t)p->latest_version, "created_at",
        (json_int_t)p->created_ms, "updated_at", (json_int_t)p->updated_ms, "job", job);
}

json_t *
lm_ms_json_event(const lm_ms_job_event *e)
{
    return json_pack("{s:I, s:I, s:I, s:s, s:s}", "id", (json_int_t)e->id, "job_id",
                     (json_int_t)e->job_id, "at", (json_int_t)e->at_ms, "state", S(e->state),
                     "reason", S(e->reason));
}

json_t *
lm_ms_json_worker(const lm_ms_worker *w)
{
    return json_pack("{s:I, s:s, s:s, s:I, s:s, s:I, s:I}", "id", (json_int_t)w->id, "address",
                     S(w->address), "data_address", S(w->data_address), "slots",
                     (json_int_t)w->slots, "state", S(w->state), "last_heartbeat_at",
                     (json_int_t)w->last_heartbeat_ms, "registered_at",
                     (json_int_t)w->registered_ms);
}

/* --- args ------------------------------------------------------------------ */

/* One call being run: its op's name, its args object, where errors go. */
typedef struct call {
    const char *op;
    json_t *args;
    lm_error *err;
    bool committed; /* the op's write is done (set by the op; kept while the
                     * call waits for the store, so that a replay only reads
                     * the result back instead of writing twice) */
} call;

static int
arg_missing(call *c, const char *name)
{
    return lm_error_set(c->err, LM_EINVAL, "%s: member \"%s\" is required", c->op, name);
}

/* A required positive integer (an id). */
static int
arg_id(call *c, const char *name, int64_t *out)
{
    json_t *v = json_object_get(c->args, name);

    if (v == NULL) {
        return arg_missing(c, name);
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        return lm_error_set(c->err, LM_EINVAL, "%s: member \"%s\" must be a positive integer",
                            c->op, name);
    }
    *out = (int64_t)json_integer_value(v);
    return LM_OK;
}

/* An integer, def when absent and not required. */
static int
arg_int(call *c, const char *name, bool required, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(c->args, name);

    if (v == NULL) {
        *out = def;
        return required ? arg_missing(c, name) : LM_OK;
    }
    if (!json_is_integer(v)) {
        return lm_error_set(c->err, LM_EINVAL, "%s: member \"%s\" must be an integer", c->op, name);
    }
    *out = (int64_t)json_integer_value(v);
    return LM_OK;
}

/* A string (borrowed from args), NULL when absent and not required. */
static int
arg_str(call *c, const char *name, bool required, const char **out)
{
    json_t *v = json_object_get(c->args, name);

    *out = NULL;
    if (v == NULL) {
        return required ? arg_missing(c, name) : LM_OK;
    }
    if (!json_is_string(v)) {
        return lm_error_set(c->err, LM_EINVAL, "%s: member \"%s\" must be a string", c->op, name);
    }
    *out = json_string_value(v);
    return LM_OK;
}

static int
arg_bool(call *c, const char *name, bool def, bool *out)
{
    json_t *v = json_object_get(c->args, name);

    *out = def;
    if (v == NULL) {
        return LM_OK;
    }
    if (!json_is_boolean(v)) {
        return lm_error_set(c->err, LM_EINVAL, "%s: member \"%s\" must be true or false", c->op,
                            name);
    }
    *out = json_is_true(v);
    return LM_OK;
}

/* Every member of args must be one of the NULL-terminated names. */
static int
args_known(call *c, const char *const *names)
{
    const char *key;
    json_t *v;

    json_object_foreach(c->args, key, v)
    {
        bool known = false;
        for (size_t i = 0; names[i] != NULL && !known; i++) {
            known = strcmp(key, names[i]) == 0;
        }
        if (!known) {
            return lm_error_set(c->err, LM_EINVAL, "%s: unknown member \"%s\"", c->op, key);
        }
    }
    return LM_OK;
}

/* --- store helpers ----------------------------------------------------------- */

static int
oom(call *c)
{
    return lm_error_set(c->err, LM_ENOMEM, "%s: out of memory", c->op);
}

/* The end of a list op: *result = {key: a} when rv is LM_OK; takes a. */
static int
wrap_list(call *c, int rv, const char *key, json_t *a, json_t **result)
{
    if (rv != LM_OK) {
        json_decref(a);
        return rv;
    }
    /* "o" takes a, also when json_pack fails */
    return (*result = json_pack("{s:o}", key, a)) == NULL ? oom(c) : LM_OK;
}

/* The latest job (highest id) of pipeline pid into *out; *found false when
 * it has none. */
static int
latest_job(lm_ms *ms, int64_t pid, lm_ms_job *out, bool *found, lm_error *err)
{
    lm_ms_job *jobs = NULL;
    size_t n = 0;
    int rv = lm_ms_job_list(ms, pid, &jobs, &n, err);

    *found = false;
    if (rv != LM_OK) {
        return rv;
    }
    if (n > 0) {
        *out = jobs[n - 1];
        memset(&jobs[n - 1], 0, sizeof(jobs[n - 1])); /* moved out */
        *found = true;
    }
    lm_ms_job_list_free(jobs, n);
    return LM_OK;
}

/* P of pipeline pid. */
static int
pipeline_json(lm_ms *ms, call *c, int64_t pid, json_t **result)
{
    lm_ms_pipeline p;
    lm_ms_job j;
    bool found;
    int rv;

    if ((rv = lm_ms_pipeline_get(ms, pid, &p, c->err)) != LM_OK) {
        return rv;
    }
    if ((rv = latest_job(ms, pid, &j, &found, c->err)) != LM_OK) {
        lm_ms_pipeline_fini(&p);
        return rv;
    }
    *result = lm_ms_json_pipeline(&p, found ? &j : NULL);
    lm_ms_pipeline_fini(&p);
    if (found) {
        lm_ms_job_fini(&j);
    }
    return *result != NULL ? LM_OK : oom(c);
}

static int
job_json(lm_ms *ms, call *c, int64_t id, json_t **result)
{
    lm_ms_job j;
    int rv;

    if ((rv = lm_ms_job_get(ms, id, &j, c->err)) != LM_OK) {
        return rv;
    }
    *result = lm_ms_json_job(&j);
    lm_ms_job_fini(&j);
    return *result != NULL ? LM_OK : oom(c);
}

/* Appends v (stolen) to array a; false when out of memory. */
static bool
push(json_t *a, json_t *v)
{
    return v != NULL && json_array_append_new(a, v) == 0;
}

/* Every pipeline with its latest job: pl[i] and latest[i] (NULL: none),
 * from two queries. Free with lm_ms_pipeline_list_free, then
 * lm_ms_job_list_free(*jobs, *nj) and free(*latest). */
static int
pipelines_with_jobs(lm_ms *ms, call *c, lm_ms_pipeline **pl, size_t *np, lm_ms_job **jobs,
                    size_t *nj, lm_ms_job ***latest)
{
    int rv;

    *pl = NULL;
    *jobs = NULL;
    *latest = NULL;
    *np = *nj = 0;
    if ((rv = lm_ms_pipeline_list(ms, pl, np, c->err)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_ms_job_list(ms, 0, jobs, nj, c->err)) != LM_OK) {
        goto fail;
    }
    if (*np > 0 && (*latest = calloc(*np, sizeof(**latest))) == NULL) {
        rv = oom(c);
        goto fail;
    }
    /* Jobs come by id, so the last one seen of a pipeline is its latest;
     * pipelines come by id too, so a binary search finds a job's. */
    for (size_t k = 0; k < *nj; k++) {
        size_t lo = 0, hi = *np;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if ((*pl)[mid].id < (*jobs)[k].pipeline_id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo < *np && (*pl)[lo].id == (*jobs)[k].pipeline_id) {
            (*latest)[lo] = &(*jobs)[k];
        }
    }
    return LM_OK;
fail:
    lm_ms_pipeline_list_free(*pl, *np);
    lm_ms_job_list_free(*jobs, *nj);
    *pl = NULL;
    *jobs = NULL;
    *np = *nj = 0;
    return rv;
}

/* --- ops ---------------------------------------------------------------------- */

typedef int (*op_fn)(ms_state *st, call *c, json_t **result);

static const char *const no_args[] = {NULL};

/* The args of an op that takes only {id}. */
static int
only_id(call *c, int64_t *id)
{
    static const char *const names[] = {"id", NULL};
    int rv = args_known(c, names);

    return rv != LM_OK ? rv : arg_id(c, "id", id);
}

static int
op_pipeline_create(ms_state *st, call *c, json_t **result)
{
    static const char *const names[] = {
        "name", "query", "plan", "parallelism", "checkpoint_interval_ms", NULL};
    lm_ms_pipeline p = {0};
    const char *name, *query, *plan;
    int64_t pid = 0, version = 0, jid = 0;
    lm_error undo;
    int rv;

    if ((rv = args_known(c, names)) != LM_OK || (rv = arg_str(c, "name", true, &name)) != LM_OK ||
        (rv = arg_str(c, "query", true, &query)) != LM_OK ||
        (rv = arg_str(c, "plan", true, &plan)) != LM_OK ||
        (rv = arg_int(c, "parallelism", false, 1, &p.parallelism)) != LM_OK ||
        (rv = arg_int(c, "checkpoint_interval_ms", false, 0, &p.checkpoint_interval_ms)) != LM_OK) {
        return rv;
    }
    p.name = (char *)name;
    p.query = (char *)query;
    if ((rv = lm_ms_pipeline_create(st->ms, &p, &pid, c->err)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_ms_version_add(st->ms, pid, query, plan, &version, c->err)) != LM_OK ||
        (rv = lm_ms_job_create(st->ms, pid, version, &jid, c->err)) != LM_OK ||
        (rv = pipeline_json(st->ms, c, pid, result)) != LM_OK) {
        /* Undo: deleting the pipeline deletes its versions and jobs too.
         * When that fails for the same lost connection, it is retried
         * before anything else once the store is back. */
        int urv = lm_ms_pipeline_delete(st->ms, pid, &undo);
        if (urv != LM_OK && urv != LM_ENOTFOUND) {
            if (st->norphans < ORPHANS_MAX) {
                st->orphans[st->norphans++] = pid;
                LM_LOG(LM_LOG_WARN,
                       "pipeline.create: cannot undo pipeline %" PRId64 " now (%s); will retry",
                       pid, undo.msg);
            } else {
                LM_LOG(LM_LOG_ERROR, "pipeline.create: pipeline %" PRId64 " left half-made: %s",
                       pid, undo.msg);
            }
        }
        return rv;
    }
    return LM_OK;
}

static int
op_pipeline_get(ms_state *st, call *c, json_t **result)
{
    int64_t id;
    int rv = only_id(c, &id);

    return rv != LM_OK ? rv : pipeline_json(st->ms, c, id, result);
}

static int
op_pipeline_list(ms_state *st, call *c, json_t **result)
{
    lm_ms_pipeline *pl;
    lm_ms_job *jobs, **latest;
    size_t np, nj;
    json_t *a;
    int rv;

    if ((rv = args_known(c, no_args)) != LM_OK ||
        (rv = pipelines_with_jobs(st->ms, c, &pl, &np, &jobs, &nj, &latest)) != LM_OK) {
        return rv;
    }
    rv = LM_OK;
    if ((a = json_array()) == NULL) {
        rv = oom(c);
    }
    for (size_t i = 0; i < np && rv == LM_OK; i++) {
        if (!push(a, lm_ms_json_pipeline(&pl[i], latest[i]))) {
            rv = oom(c);
        }
    }
    rv = wrap_list(c, rv, "pipelines", a, result);
    lm_ms_pipeline_list_free(pl, np);
    lm_ms_job_list_free(jobs, nj);
    free(latest);
    return rv;
}

/* {"jobs": [J...]} of pipeline pid (0: all). */
static int
jobs_json(lm_ms *ms, call *c, int64_t pid, json_t **result)
{
    lm_ms_job *jobs;
    size_t n;
    json_t *a;
    int rv;

    if ((rv = lm_ms_job_list(ms, pid, &jobs, &n, c->err)) != LM_OK) {
        return rv;
    }
    if ((a = json_array()) == NULL) {
        rv = oom(c);
    }
    for (size_t i = 0; i < n && rv == LM_OK; i++) {
        if (!push(a, lm_ms_json_job(&jobs[i]))) {
            rv = oom(c);
        }
    }
    rv = wrap_list(c, rv, "jobs", a, result);
    lm_ms_job_list_free(jobs, n);
    return rv;
}

static int
op_pipeline_jobs(ms_state *st, call *c, json_t **result)
{
    int64_t id;
    int rv = only_id(c, &id);

    return rv != LM_OK ? rv : jobs_json(st->ms, c, id, result);
}

static int
op_pipeline_set_stop(ms_state *st, call *c, json_t **result)
{
    static const char *const names[] = {"id", "stop", NULL};
    lm_ms_pipeline p = {0};
    const char *stop;
    int64_t id;
    int rv;

    if ((rv = args_known(c, names)) != LM_OK || (rv = arg_id(c, "id", &id)) != LM_OK ||
        (rv = arg_str(c, "stop", true, &stop)) != LM_OK) {
        return rv;
    }
    if (lm_ms_stop_parse(stop, &p.stop) != LM_OK) {
        return lm_error_set(c->err, LM_EINVAL,
                            "%s: member \"stop\" must be \"none\", \"graceful\" or \"immediate\"",
                            c->op);
    }
    if (!c->committed) {
        if ((rv = lm_ms_pipeline_update(st->ms, id, &p, LM_MS_SET_STOP, c->err)) != LM_OK) {
            return rv;
        }
        c->committed = true;
    }
    return pipeline_json(st->ms, c, id, result);
}

static int
op_pipeline_delete(ms_state *st, call *c, json_t **result)
{
    int64_t id;
    int rv;

    if ((rv = only_id(c, &id)) != LM_OK ||
        (rv = lm_ms_pipeline_delete(st->ms, id, c->err)) != LM_OK) {
        return rv;
    }
    *result = json_pack("{s:I}", "deleted", (json_int_t)id);
    return *result != NULL ? LM_OK : oom(c);
}

static int
op_job_get(ms_state *st, call *c, json_t **result)
{
    int64_t id;
    int rv = only_id(c, &id);

    return rv != LM_OK ? rv : job_json(st->ms, c, id, result);
}

static int
op_job_list(ms_state *st, call *c, json_t **result)
{
    int rv;

    if ((rv = args_known(c, no_args)) != LM_OK) {
        return rv;
    }
    return jobs_json(st->ms, c, 0, result);
}

static int
op_job_events(ms_state *st, call *c, json_t **result)
{
    lm_ms_job_event *ev;
    size_t n;
    int64_t id;
    json_t *a;
    int rv;

    if ((rv = only_id(c, &id)) != LM_OK ||
        (rv = lm_ms_job_events(st->ms, id, &ev, &n, c->err)) != LM_OK) {
        return rv;
    }
    if ((a = json_array()) == NULL) {
        rv = oom(c);
    }
    for (size_t i = 0; i < n && rv == LM_OK; i++) {
        if (!push(a, lm_ms_json_event(&ev[i]))) {
            rv = oom(c);
        }
    }
    rv = wrap_list(c, rv, "events", a, result);
    lm_ms_job_event_list_free(ev, n);
    return rv;
}

static int
op_job_set_state(ms_state *st, call *c, json_t **result)
{
    static const char *const names[] = {"id", "state", "reason", "expect", "restart", NULL};
    const char *state, *reason, *expect;
    bool restart;
    int64_t id;
    int rv;

    if ((rv = args_known(c, names)) != LM_OK || (rv = arg_id(c, "id", &id)) != LM_OK ||
        (rv = arg_str(c, "state", true, &state)) != LM_OK ||
        (rv = arg_str(c, "reason", false, &reason)) != LM_OK ||
        (rv = arg_str(c, "expect", false, &expect)) != LM_OK ||
        (rv = arg_bool(c, "restart", false, &restart)) != LM_OK) {
        return rv;
    }
    if (!c->committed) {
        /* a replay must not change the state twice (expect would fail,
         * restarts would count two) */
        if ((rv = lm_ms_job_set_state(st->ms, id, expect, state, reason, restart, c->err)) !=
            LM_OK) {
            return rv;
        }
        c->committed = true;
    }
    return job_json(st->ms, c, id, result);
}

static int
op_jobs_resumable(ms_state *st, call *c, json_t **result)
{
    lm_ms_pipeline *pl;
    lm_ms_job *jobs, **latest;
    size_t np, nj;
    json_t *a;
    int rv;

    if ((rv = args_known(c, no_args)) != LM_OK ||
        (rv = pipelines_with_jobs(st->ms, c, &pl, &np, &jobs, &nj, &latest)) != LM_OK) {
        return rv;
    }
    if ((a = json_array()) == NULL) {
        rv = oom(c);
    }
    for (size_t i = 0; i < np && rv == LM_OK; i++) {
        const lm_ms_job *j = latest[i];
        lm_ms_version v;
        lm_error verr;
        if (pl[i].stop != LM_MS_STOP_NONE || j == NULL ||
            strcmp(j->state, LM_MS_JOB_FINISHED) == 0 || strcmp(j->state, LM_MS_JOB_FAILED) == 0) {
            continue;
        }
        if ((rv = lm_ms_version_get(st->ms, pl[i].id, j->version, &v, &verr)) != LM_OK) {
            if (rv == LM_ENOTFOUND) {
                /* cannot happen while jobs reference versions; never let
                 * one bad pipeline keep the others from resuming */
                LM_LOG(LM_LOG_ERROR, "jobs.resumable: job %" PRId64 " skipped: %s", j->id,
                       verr.msg);
                rv = LM_OK;
                continue;
            }
            lm_error_set(c->err, rv, "%s", verr.msg);
            break;
        }
        if (!push(a, json_pack("{s:o, s:o, s:s}", "job", lm_ms_json_job(j), "pipeline",
                               lm_ms_json_pipeline(&pl[i], j), "plan", v.plan_json))) {
            rv = oom(c);
        }
        lm_ms_version_fini(&v);
    }
    rv = wrap_list(c, rv, "jobs", a, result);
    lm_ms_pipeline_list_free(pl, np);
    lm_ms_job_list_free(jobs, nj);
    free(latest);
    return rv;
}

static int
op_worker_register(ms_state *st, call *c, json_t **result)
{
    static const char *const names[] = {"address", "data_address", "slots", NULL};
    const char *address, *data_address;
    int64_t slots, id;
    lm_ms_worker w;
    int rv;

    if ((rv = args_known(c, names)) != LM_OK ||
        (rv = arg_str(c, "address", true, &address)) != LM_OK ||
        (rv = arg_str(c, "data_address", true, &data_address)) != LM_OK ||
        (rv = arg_int(c, "slots", true, 0, &slots)) != LM_OK ||
        (rv = lm_ms_worker_register(st->ms, address, data_address, slots, &id, c->err)) != LM_OK ||
        (rv = lm_ms_worker_get(st->ms, id, &w, c->err)) != LM_OK) {
        return rv;
    }
    *result = lm_ms_json_worker(&w);
    lm_ms_worker_fini(&w);
    return *result != NULL ? LM_OK : oom(c);
}

static int
op_worker_heartbeat(ms_state *st, call *c, json_t **result)
{
    int64_t id;
    int rv;

    if ((rv = only_id(c, &id)) != LM_OK ||
        (rv = lm_ms_worker_heartbeat(st->ms, id, c->err)) != LM_OK) {
        return rv;
    }
    *result = json_object();
    return *result != NULL ? LM_OK : oom(c);
}

static int
op_worker_set_state(ms_state *st, call *c, json_t **result)
{
    static const char *const names[] = {"id", "state", NULL};
    const char *state;
    int64_t id;
    int rv;

    if ((rv = args_known(c, names)) != LM_OK || (rv = arg_id(c, "id", &id)) != LM_OK ||
        (rv = arg_str(c, "state", true, &state)) != LM_OK ||
        (rv = lm_ms_worker_set_state(st->ms, id, state, c->err)) != LM_OK) {
        return rv;
    }
    *result = json_object();
    return *result != NULL ? LM_OK : oom(c);
}

static int
op_worker_list(ms_state *st, call *c, json_t **result)
{
    lm_ms_worker *ws;
    size_t n;
    json_t *a;
    int rv;

    if ((rv = args_known(c, no_args)) != LM_OK ||
        (rv = lm_ms_worker_list(st->ms, &ws, &n, c->err)) != LM_OK) {
        return rv;
    }
    if ((a = json_array()) == NULL) {
        rv = oom(c);
    }
    for (size_t i = 0; i < n && rv == LM_OK; i++) {
        if (!push(a, lm_ms_json_worker(&ws[i]))) {
            rv = oom(c);
        }
    }
    rv = wrap_list(c, rv, "workers", a, result);
    lm_ms_worker_list_free(ws, n);
    return rv;
}

static const struct {
    const char *name;
    op_fn fn;
    int status; /* HTTP status of a success */
} ops[] = {
    {"pipeline.create", op_pipeline_create, 201},
    {"pipeline.get", op_pipeline_get, 200},
    {"pipeline.list", op_pipeline_list, 200},
    {"pipeline.jobs", op_pipeline_jobs, 200},
    {"pipeline.set_stop", op_pipeline_set_stop, 200},
    {"pipeline.delete", op_pipeline_delete, 200},
    {"job.get", op_job_get, 200},
    {"job.list", op_job_list, 200},
    {"job.events", op_job_events, 200},
    {"job.set_state", op_job_set_state, 200},
    {"jobs.resumable", op_jobs_resumable, 200},
    {"worker.register", op_worker_register, 200},
    {"worker.heartbeat", op_worker_heartbeat, 200},
    {"worker.set_state", op_worker_set_state, 200},
    {"worker.list", op_worker_list, 200},
};

/* --- answering --------------------------------------------------------------- */

/* Sends the answers a call asked for: result on success, else code and
 * msg. Takes result: a REST answer gets the object itself, which this
 * thread must not touch afterwards (jansson's reference counts are not
 * meant to be shared between threads). */
static void
answer(ms_state *st, lm_addr to, const lm_ms_call_msg *mc, int status, int code, const char *msg,
       json_t *result)
{
    char *text = NULL;
    int rv;

    if (code == LM_OK && mc->tag != 0 && (text = json_dumps(result, JSON_COMPACT)) == NULL) {
        code = LM_ENOMEM;
        msg = "out of memory";
    }
    if (mc->tag != 0) {
        lm_ms_reply_msg r = {mc->tag, code, lm_str_c(code == LM_OK ? "" : msg),
                             lm_str_c(code == LM_OK ? text : "")};
        if ((rv = lm_tell(st->self, to, LM_MT_MS_REPLY, &r)) != LM_OK) {
            LM_LOG(LM_LOG_DEBUG, "%.*s: cannot reply: %s", (int)mc->op.len, mc->op.ptr,
                   lm_strerror(rv));
        }
    }
    free(text);
    if (mc->pending != 0) {
        lm_api_pending *p = (lm_api_pending *)(uintptr_t)mc->pending;
        if (code == LM_OK) {
            rv = lm_api_complete(p, status, result);
            result = NULL;
        } else {
            int hs = lm_api_code_status(code);
            if (hs < 400) {
                hs = 500;
            }
            rv = lm_api_complete_error(p, hs, lm_api_status_name(hs), "%s", msg);
        }
        if (rv != LM_OK) {
            LM_LOG(LM_LOG_DEBUG, "%.*s: the REST request is gone: %s", (int)mc->op.len, mc->op.ptr,
                   lm_strerror(rv));
        }
    }
    json_decref(result);
}

/* Decodes an MS_CALL; false (logged) when it cannot be used. */
static bool
decode_call(ms_state *st, lm_msg *m, lm_ms_call_msg *mc)
{
    lm_error err;

    if (lm_decode_ms_call(m, mc, &err) != LM_OK) {
        LM_LOG(LM_LOG_WARN, "dropped a malformed MS_CALL from %u: %s", m->src.node, err.msg);
        return false;
    }
    /* pending is a pointer of this process: never take one from elsewhere */
    if (m->src.node != lm_rt_node(lm_actor_rt(st->self))) {
        LM_LOG(LM_LOG_WARN, "dropped an MS_CALL from another node (%u)", m->src.node);
        return false;
    }
    return true;
}

/* Fails a call without running it. */
static void fail_call(ms_state *st, lm_msg *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
fail_call(ms_state *st, lm_msg *m, int code, const char *fmt, ...)
{
    lm_ms_call_msg mc;
    char msg[LM_ERROR_MSG_MAX];
    va_list ap;

    if (!decode_call(st, m, &mc)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    answer(st, m->src, &mc, 0, code, msg, NULL);
}

/* Runs the call in m. Returns false when the store was lost on the way:
 * nothing was answered and the call must run again later; *committed
 * (in and out) tells whether its write is already done. */
static bool
run_call(ms_state *st, lm_msg *m, bool *committed)
{
    lm_ms_call_msg mc;
    char op[64];
    json_t *args = NULL, *extra = NULL, *result = NULL;
    json_error_t je;
    lm_error err;
    int code = LM_OK, status = 200;
    op_fn fn = NULL;

    if (!decode_call(st, m, &mc)) {
        return true;
    }
    lm_error_clear(&err);
    snprintf(op, sizeof(op), "%.*s", (int)mc.op.len, mc.op.ptr);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (mc.op.len == strlen(ops[i].name) && memcmp(mc.op.ptr, ops[i].name, mc.op.len) == 0) {
            fn = ops[i].fn;
            status = ops[i].status;
        }
    }
    if (fn == NULL) {
        code = lm_error_set(&err, LM_EINVAL, "unknown metastore op \"%.*s\"",
                            (int)(mc.op.len > 100 ? 100 : mc.op.len), mc.op.ptr);
    } else if (mc.args.len == 0) {
        args = json_object();
    } else if ((args = json_loadb(mc.args.ptr, mc.args.len, JSON_REJECT_DUPLICATES, &je)) == NULL ||
               !json_is_object(args)) {
        code = lm_error_set(&err, LM_EINVAL, "%s: args are not a JSON object%s%s", op,
                            args == NULL ? ": " : "", args == NULL ? je.text : "");
    }
    if (code == LM_OK && mc.extra.len > 0 &&
        ((extra = json_loadb(mc.extra.ptr, mc.extra.len, 0, &je)) == NULL ||
         !json_is_object(extra))) {
        code = lm_error_set(&err, LM_EINVAL, "%s: extra is not a JSON object", op);
    }
    if (code == LM_OK && args == NULL) {
        code = lm_error_set(&err, LM_ENOMEM, "%s: out of memory", op);
    }
    if (code == LM_OK && st->ms == NULL) {
        code = lm_error_set(&err, LM_ECLOSED, "metadata store unavailable: %s", st->why);
    }
    for (int attempt = 0; code == LM_OK && attempt < EAGAIN_TRIES; attempt++) {
        call c = {op, args, &err, *committed};
        json_decref(result);
        result = NULL;
        lm_error_clear(&err);
        code = fn(st, &c, &result);
        *committed = c.committed;
        if (code != LM_EAGAIN || attempt + 1 == EAGAIN_TRIES) {
            break;
        }
        code = LM_OK; /* busy: again */
    }
    if (code == LM_ECLOSED) { /* the connection is lost */
        snprintf(st->why, sizeof(st->why), "%s", err.msg);
        json_decref(args);
        json_decref(extra);
        json_decref(result);
        return false;
    }
    if (code == LM_OK && extra != NULL && json_object_update(result, extra) != 0) {
        code = lm_error_set(&err, LM_ENOMEM, "%s: out of memory", op);
    }
    if (code != LM_OK) {
        LM_LOG(LM_LOG_DEBUG, "%s: %s", op, err.msg);
    }
    answer(st, m->src, &mc, status, code, err.msg, result); /* takes result */
    json_decref(args);
    json_decref(extra);
    return true;
}

/* --- waiting for the store ------------------------------------------------ */

static bool
queue_push(ms_state *st, lm_msg *m, int64_t since, bool committed)
{
    if (st->qlen == st->qcap) {
        size_t cap = st->qcap != 0 ? st->qcap * 2 : 64;
        waiting *q;
        if (cap > LM_MS_ACTOR_QUEUE_MAX) {
            cap = LM_MS_ACTOR_QUEUE_MAX;
        }
        if (cap <= st->qcap || (q = malloc(cap * sizeof(*q))) == NULL) {
            return false;
        }
        for (size_t i = 0; i < st->qlen; i++) {
            q[i] = st->q[(st->qhead + i) % st->qcap];
        }
        free(st->q);
        st->q = q;
        st->qcap = cap;
        st->qhead = 0;
    }
    st->q[(st->qhead + st->qlen++) % st->qcap] = (waiting){m, since, committed};
    return true;
}

static waiting *
queue_head(ms_state *st)
{
    return st->qlen > 0 ? &st->q[st->qhead] : NULL;
}

static void
queue_pop(ms_state *st)
{
    lm_msg_release(st->q[st->qhead].m);
    st->qhead = (st->qhead + 1) % st->qcap;
    st->qlen--;
}

/* Arms the EXPIRE timer for the oldest waiting request's deadline. */
static void
arm_expire(ms_state *st)
{
    waiting *w = queue_head(st);
    int64_t due;

    if (st->expire_timer != 0) {
        lm_timer_cancel(st->self, st->expire_timer);
        st->expire_timer = 0;
    }
    if (w == NULL) {
        return;
    }
    due = w->since + st->retry_max_ms - lm_clock_mono_ms();
    if (lm_timer_start(st->self, (uint64_t)(due > 0 ? due : 0) + 1, 0, TAG_EXPIRE,
                       &st->expire_timer) != LM_OK) {
        st->expire_timer = 0; /* out of memory: the next reconnect attempt expires them */
    }
}

static void
arm_reconnect(ms_state *st)
{
    if (lm_timer_start(st->self, (uint64_t)st->backoff_ms, 0, TAG_RECONNECT,
                       &st->reconnect_timer) != LM_OK) {
        st->reconnect_timer = 0;
        LM_LOG(LM_LOG_ERROR, "cannot arm the reconnect timer: out of memory");
    }
    if (st->backoff_ms < BACKOFF_MAX_MS) {
        st->backoff_ms = st->backoff_ms * 2 < BACKOFF_MAX_MS ? st->backoff_ms * 2 : BACKOFF_MAX_MS;
    }
}

/* The store was lost (st->why says how), or could not be opened at start:
 * close it and start reconnecting. */
static void
go_down(ms_state *st, bool at_start)
{
    st->down = true;
    st->down_since = lm_clock_mono_ms();
    st->backoff_ms = BACKOFF_START_MS;
    LM_LOG(LM_LOG_WARN, "metadata store %s: %s; reconnecting, requests wait up to %" PRId64 " ms",
           at_start ? "unavailable at start" : "lost", st->why, st->retry_max_ms);
    if (st->url != NULL) {
        lm_ms_close(st->ms);
        st->ms = NULL;
    }
    arm_reconnect(st);
    arm_expire(st);
}

/* Fails every waiting request older than retry_max_ms. */
static void
expire(ms_state *st)
{
    int64_t now = lm_clock_mono_ms();
    size_t n = 0;
    waiting *w;

    while ((w = queue_head(st)) != NULL && now - w->since >= st->retry_max_ms) {
        fail_call(st, w->m, LM_ECLOSED, "metadata store unavailable for %" PRId64 " ms: %s",
                  now - w->since, st->why);
        queue_pop(st);
        n++;
    }
    if (n > 0) {
        LM_LOG(LM_LOG_WARN,
               "%zu requests failed after waiting %" PRId64 " ms for the metadata store", n,
               st->retry_max_ms);
    }
    arm_expire(st);
}

/* Runs the waiting requests in order while the store stays up. */
static void
replay(ms_state *st)
{
    waiting *w;

    while (st->norphans > 0) {
        int64_t pid = st->orphans[st->norphans - 1];
        lm_error err;
        int rv = lm_ms_pipeline_delete(st->ms, pid, &err);
        if (rv == LM_ECLOSED) {
            snprintf(st->why, sizeof(st->why), "%s", err.msg);
            go_down(st, false);
            return;
        }
        if (rv != LM_OK && rv != LM_ENOTFOUND) {
            LM_LOG(LM_LOG_ERROR, "pipeline.create: pipeline %" PRId64 " left half-made: %s", pid,
                   err.msg);
        }
        st->norphans--;
    }
    while ((w = queue_head(st)) != NULL) {
        if (!run_call(st, w->m, &w->committed)) {
            go_down(st, false);
            return;
        }
        queue_pop(st);
    }
    arm_expire(st); /* cancels it */
}

static void
reconnect(ms_state *st)
{
    lm_error err;
    int rv;

    st->reconnect_timer = 0;
    expire(st);
    if (st->url != NULL) {
        rv = lm_ms_open(st->url, &st->ms, &err);
    } else {
        int64_t v;
        rv = lm_ms_schema_version(st->ms, &v, &err); /* the handle reconnects by itself */
    }
    if (rv != LM_OK) {
        LM_LOG(LM_LOG_DEBUG, "metadata store still unavailable: %s", err.msg);
        snprintf(st->why, sizeof(st->why), "%s", err.msg);
        arm_reconnect(st);
        return;
    }
    st->down = false;
    LM_LOG(LM_LOG_INFO, "metadata store back after %" PRId64 " ms; running %zu waiting requests",
           lm_clock_mono_ms() - st->down_since, st->qlen);
    replay(st);
}

/* --- the actor --------------------------------------------------------------- */

static void
state_free(ms_state *st)
{
    while (st->qlen > 0) {
        queue_pop(st);
    }
    free(st->q);
    lm_ms_close(st->ms);
    free(st->url);
    free(st);
}

static int
ms_init(lm_actor *self, void *arg)
{
    ms_state *st = arg;
    char masked[512];
    lm_error err;
    int rv;

    st->self = self;
    lm_actor_set_state(self, st);
    if (st->ms != NULL) {
        return LM_OK;
    }
    if ((rv = lm_ms_open(st->url, &st->ms, &err)) == LM_OK) {
        lm_text_mask_password(st->url, masked, sizeof(masked));
        LM_LOG(LM_LOG_INFO, "metadata store %s open (%s)", masked, lm_ms_backend(st->ms));
        return LM_OK;
    }
    if (rv == LM_EIO || rv == LM_ECLOSED || rv == LM_EAGAIN) {
        snprintf(st->why, sizeof(st->why), "%s", err.msg);
        go_down(st, true);
        return LM_OK;
    }
    lm_actor_set_state(self, NULL);
    state_free(st);
    return lm_actor_fail(self, rv, "cannot open the metadata store: %s", err.msg);
}

static int
ms_handle(lm_actor *self, lm_msg *m)
{
    ms_state *st = lm_actor_state(self);

    if (m->type == LM_MT_TIMER) {
        lm_timer_msg t;
        if (lm_decode_timer(m, &t, NULL) != LM_OK) {
            return LM_OK;
        }
        if (t.tag == TAG_RECONNECT && t.id == st->reconnect_timer) {
            reconnect(st);
        } else if (t.tag == TAG_EXPIRE && t.id == st->expire_timer) {
            st->expire_timer = 0;
            expire(st);
        }
        return LM_OK;
    }
    if (m->type != LM_MT_MS_CALL) {
        if (m->type != LM_MT_UNDELIVERABLE) {
            LM_LOG(LM_LOG_DEBUG, "ignored a %s message", lm_proto_type_name(m->type));
        }
        return LM_OK;
    }
    if (!st->down) {
        bool committed = false;
        if (run_call(st, m, &committed)) {
            return LM_OK;
        }
        /* lost on the way: this one waits first */
        lm_msg_retain(m);
        if (!queue_push(st, m, lm_clock_mono_ms(), committed)) {
            lm_msg_release(m);
            fail_call(st, m, LM_ECLOSED, "metadata store unavailable (out of memory): %s", st->why);
        }
        go_down(st, false);
        return LM_OK;
    }
    if (st->qlen >= LM_MS_ACTOR_QUEUE_MAX) {
        fail_call(st, m, LM_ECLOSED, "metadata store unavailable: %s", st->why);
        return LM_OK;
    }
    lm_msg_retain(m);
    if (!queue_push(st, m, lm_clock_mono_ms(), false)) {
        lm_msg_release(m);
        fail_call(st, m, LM_ECLOSED, "metadata store unavailable (out of memory): %s", st->why);
        return LM_OK;
    }
    if (st->expire_timer == 0) {
        arm_expire(st);
    }
    return LM_OK;
}

static void
ms_fini(lm_actor *self)
{
    ms_state *st = lm_actor_state(self);
    waiting *w;

    if (st == NULL) {
        return;
    }
    while ((w = queue_head(st)) != NULL) {
        fail_call(st, w->m, LM_ECLOSED, "metadata store stopped: %s", st->why);
        queue_pop(st);
    }
    state_free(st);
}

static const lm_actor_type ms_type = {"metastore", ms_init, ms_handle, ms_fini};

int
lm_ms_actor_spawn(lm_rt *rt, const lm_ms_actor_opts *o, lm_addr *out, lm_error *err)
{
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    ms_state *st;
    int rv;

    if (rt == NULL || o == NULL || out == NULL || (o->url == NULL && o->ms == NULL) ||
        o->retry_max_ms < 0) {
        return lm_error_set(err, LM_EINVAL, "metastore: %s",
                            o != NULL && o->retry_max_ms < 0 ? "negative retry_max_ms"
                                                             : "no store URL or handle");
    }
    if ((st = calloc(1, sizeof(*st))) == NULL ||
        (o->url != NULL && (st->url = strdup(o->url)) == NULL)) {
        free(st);
        return lm_error_set(err, LM_ENOMEM, "metastore: out of memory");
    }
    st->retry_max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : LM_MS_ACTOR_RETRY_MAX_DEFAULT;
    st->ms = o->ms;
    snprintf(st->why, sizeof(st->why), "not opened yet");
    so.loop = o->loop;
    so.name = LM_MS_ACTOR_NAME;
    if ((rv = lm_spawn(rt, &ms_type, st, &so, out)) != LM_OK) {
        st->ms = NULL; /* still the caller's */
        state_free(st);
        return lm_error_set(err, rv, "metastore: cannot start its actor: %s", lm_strerror(rv));
    }
    return LM_OK;
}

/* --- callers' side --------------------------------------------------------- */

int
lm_ms_call(lm_rt *rt, lm_addr src, lm_addr ms, const char *op, uint64_t tag, json_t *args,
           lm_api_pending *pending, json_t *extra)
{
    char *a = NULL, *x = NULL;
    int rv;

    if (rt == NULL || op == NULL || (args != NULL && !json_is_object(args)) ||
        (extra != NULL && !json_is_object(extra))) {
        return LM_EINVAL;
    }
    if ((args != NULL && (a = json_dumps(args, JSON_COMPACT)) == NULL) ||
        (extra != NULL && (x = json_dumps(extra, JSON_COMPACT)) == NULL)) {
        free(a);
        return LM_ENOMEM;
    }
    lm_ms_call_msg m = {lm_str_c(op), tag, lm_str_c(a != NULL ? a : "{}"),
                        (uint64_t)(uintptr_t)pending, lm_str_c(x != NULL ? x : "")};
    rv = lm_rt_tell_as(rt, src, ms, LM_MT_MS_CALL, &m);
    free(a);
    free(x);
    return rv;
}

int
lm_ms_reply_decode(const lm_msg *m, uint64_t *tag, int *code, char **error, json_t **result)
{
    lm_ms_reply_msg r;
    json_t *res = NULL;
    char *e = NULL;
    int rv;

    if (m == NULL) {
        return LM_EINVAL;
    }
    /* decoding reads the message only (MS_REPLY holds no batch) */
    if ((rv = lm_decode_ms_reply((lm_msg *)m, &r, NULL)) != LM_OK) {
        return rv;
    }
    if (result != NULL && r.code == LM_OK) {
        if ((res = json_loadb(r.result.ptr, r.result.len, 0, NULL)) == NULL) {
            return LM_EPROTO;
        }
        if (!json_is_object(res)) {
            json_decref(res);
            return LM_EPROTO;
        }
    }
    if (error != NULL && (e = strndup(r.error.ptr, r.error.len)) == NULL) {
        json_decref(res);
        return LM_ENOMEM;
    }
    if (tag != NULL) {
        *tag = r.tag;
    }
    if (code != NULL) {
        *code = (int)r.code;
    }
    if (error != NULL) {
        *error = e;
    }
    if (result != NULL) {
        *result = res;
    }
    return LM_OK;
}
