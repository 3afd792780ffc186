/*
 * lm_jobctl.c: the job controller actor (see lm_jobctl.h).
 *
 * The actor's phase says what it waits for; the state recorded in the
 * store follows from it (phase DEPLOYING is still "scheduling" there). All
 * store writes are MS_CALLs without an answer: the metastore actor handles
 * one sender's calls in order, so a later read (the pipeline for a PATCH
 * answer) sees them, and it keeps them through database outages.
 */
#include "lm_jobctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lm_log.h"
#include "lm_ms_actor.h"
#include "lm_plan.h"
#include "lm_proto.h"

enum phase { P_SCHEDULING, P_DEPLOYING, P_RUNNING, P_STOPPING, P_BACKOFF, P_DONE };

enum { T_BACKOFF = 1, T_DEPLOY, T_STOP, T_STATS, T_FINAL };

#define FINAL_STATS_MS 300 /* how long an ended job waits for its last counters */

typedef struct jobctl {
    lm_jobctl_opts o;
    char *plan_json, *checkpoint_dir;
    char *resume; /* why the job was resumed, for its first scheduling record; NULL: new */
    lm_plan *plan;
    lm_msg *plan_mp; /* the plan's msgpack form, for DEPLOY */
    enum phase phase;
    bool stop_requested;
    char stop_how[16];
    uint64_t attempt;
    char deploy_id[64]; /* "{id}-{incarnation}-{attempt}" of the current deployment; "" none */
    char stats_id[64];  /* the deployment whose counters are taken (kept after it ends) */
    lm_addr *workers;   /* task managers of the grant */
    uint32_t nworkers;
    char placement[512];
    char wait_reason[256];
    uint64_t timer[T_FINAL + 1]; /* by tag; 0: not running */
    uint64_t stats_seq;
    uint64_t **in, **out; /* per plan operator, per subtask: latest counters */
} jobctl;

void
lm_jobctl_name(int64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "job-%" PRId64, id);
}

/* --- helpers ------------------------------------------------------------- */

static void
timer_set(lm_actor *self, jobctl *j, int tag, int64_t after_ms, int64_t period_ms)
{
    if (j->timer[tag] != 0) {
        lm_timer_cancel(self, j->timer[tag]);
        j->timer[tag] = 0;
    }
    if (after_ms >= 0 && lm_timer_start(self, (uint64_t)after_ms, (uint64_t)period_ms,
                                        (uint64_t)tag, &j->timer[tag]) != LM_OK) {
        j->timer[tag] = 0;
    }
}

static void
timer_clear(lm_actor *self, jobctl *j, int tag)
{
    timer_set(self, j, tag, -1, 0);
}

/* Records state with reason (restart: count a restart). */
static void
record(lm_actor *self, jobctl *j, const char *state, const char *reason, bool restart)
{
    json_t *a = json_pack("{s:I, s:s, s:s, s:b}", "id", (json_int_t)j->o.job_id, "state", state,
                          "reason", reason, "restart", restart);
    LM_LOG(LM_LOG_INFO, "job %" PRId64 ": %s%s%s", j->o.job_id, state, reason[0] ? ": " : "",
           reason);
    if (a == NULL || lm_ms_call(lm_actor_rt(self), lm_actor_addr(self), j->o.metastore,
                                "job.set_state", 0, a, NULL, NULL) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "job %" PRId64 ": cannot record state %s", j->o.job_id, state);
    }
    json_decref(a);
}

static void
stats_reset(jobctl *j)
{
    for (uint32_t i = 0; j->in != NULL && i < j->plan->nops; i++) {
        uint32_t p = j->plan->ops[i].def.parallelism;
        memset(j->in[i], 0, p * sizeof(uint64_t));
        memset(j->out[i], 0, p * sizeof(uint64_t));
    }
}

/* Tells the attempt's task managers to cancel it (the coordinator stops
 * its workers' shares), forgets it, and gives the slots back. */
static void
undeploy(lm_actor *self, jobctl *j)
{
    if (j->deploy_id[0] != '\0' && j->nworkers > 0) {
        lm_cancel_msg c = {lm_str_c(j->deploy_id)};
        lm_tell(self, j->workers[0], LM_MT_CANCEL, &c);
    }
    j->deploy_id[0] = '\0';
    free(j->workers);
    j->workers = NULL;
    j->nworkers = 0;
    j->placement[0] = '\0';
    timer_clear(self, j, T_DEPLOY);
    timer_clear(self, j, T_STATS);
    lm_slot_release_msg r = {(uint64_t)j->o.job_id};
    lm_tell(self, j->o.scheduler, LM_MT_SLOT_RELEASE, &r);
}

static void poll_stats(lm_actor *self, jobctl *j);
static void publish(jobctl *j);

/* The job is over: records state. When it had run, one more JOB_STATS
 * round (the task managers keep an ended job's counters) and, after
 * FINAL_STATS_MS, the last figures go to the board (on_timer); then the
 * actor stops. */
static void
finish(lm_actor *self, jobctl *j, const char *state, const char *reason)
{
    bool ran = j->stats_id[0] != '\0' && j->nworkers > 0;

    if (ran) {
        poll_stats(self, j);
    }
    undeploy(self, j);
    record(self, j, state, reason, false);
    j->phase = P_DONE;
    if (ran) {
        timer_set(self, j, T_FINAL, FINAL_STATS_MS, 0);
    } else {
        lm_actor_stop(self);
    }
}

static void
schedule(lm_actor *self, jobctl *j)
{
    lm_slot_request_msg r = {(uint64_t)j->o.job_id, 0};
    char why[256];

    for (uint32_t i = 0; i < j->plan->nops; i++) {
        if (j->plan->ops[i].def.parallelism > r.parallelism) {
            r.parallelism = j->plan->ops[i].def.parallelism;
        }
    }
    j->phase = P_SCHEDULING;
    snprintf(why, sizeof(why), "%s%sasking for %u slot%s", j->resume != NULL ? j->resume : "",
             j->resume != NULL ? "; " : "", r.parallelism, r.parallelism == 1 ? "" : "s");
    free(j->resume);
    j->resume = NULL;
    snprintf(j->wait_reason, sizeof(j->wait_reason), "%s", why);
    record(self, j, "scheduling", why, false);
    if (lm_tell(self, j->o.scheduler, LM_MT_SLOT_REQUEST, &r) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "job %" PRId64 ": the scheduler is unreachable", j->o.job_id);
    }
}

/* The attempt failed: restart after a backoff, or give up. */
static void
failed(lm_actor *self, jobctl *j, const char *why)
{
    char reason[LM_ERROR_MSG_MAX + 64];

    undeploy(self, j);
    if (j->stop_requested) {
        snprintf(reason, sizeof(reason), "stopped by request (%s); it was failing: %s", j->stop_how,
                 why);
        finish(self, j, "stopped", reason);
        return;
    }
    if (j->o.restarts >= j->o.restart_limit) {
        snprintf(reason, sizeof(reason), "%s; gave up after %" PRId64 " restart%s", why,
                 j->o.restarts, j->o.restarts == 1 ? "" : "s");
        finish(self, j, "failed", reason);
        return;
    }
    int64_t delay = j->o.backoff_min_ms;
    for (int64_t i = 0; i < j->o.restarts && delay < j->o.backoff_max_ms; i++) {
        delay *= 2;
    }
    if (delay > j->o.backoff_max_ms) {
        delay = j->o.backoff_max_ms;
    }
    j->o.restarts++;
    snprintf(reason, sizeof(reason), "%s; restart %" PRId64 " of %" PRId64 " in %.1f s", why,
             j->o.restarts, j->o.restart_limit, (double)delay / 1000.0);
    record(self, j, "restarting", reason, true);
    j->phase = P_BACKOFF;
    timer_set(self, j, T_BACKOFF, delay, 0);
}

/* --- messages --------------------------------------------------------------- */

static int
on_grant(lm_actor *self, jobctl *j, lm_msg *m)
{
    lm_slot_grant_msg g;
    char id[sizeof(j->deploy_id)];
    int rv;

    if (lm_decode_slot_grant(m, &g, NULL) != LM_OK || g.job != (uint64_t)j->o.job_id ||
        g.workers.len == 0 || g.workers.len % LM_ADDR_WIRE_SIZE != 0) {
        return LM_OK;
    }
    if (j->phase != P_SCHEDULING) {
        /* not wanted any more (stopped meanwhile): give them back */
        lm_slot_release_msg r = {(uint64_t)j->o.job_id};
        lm_tell(self, j->o.scheduler, LM_MT_SLOT_RELEASE, &r);
        return LM_OK;
    }
    if ((j->workers = calloc(g.workers.len / LM_ADDR_WIRE_SIZE, sizeof(lm_addr))) == NULL) {
        failed(self, j, "out of memory"); /* gives the slots back */
        return LM_OK;
    }
    j->nworkers = g.workers.len / LM_ADDR_WIRE_SIZE;
    for (uint32_t i = 0; i < j->nworkers; i++) {
        j->workers[i] = lm_addr_list_get(g.workers, i);
    }
    snprintf(j->placement, sizeof(j->placement), "%.*s", (int)g.placement.len, g.placement.ptr);
    j->attempt++;
    /* the controller's incarnation keeps the ids of a restarted controller new */
    snprintf(id, sizeof(id), "%" PRId64 "-%08" PRIx32 "-%" PRIu64, j->o.job_id,
             (uint32_t)lm_rt_incarnation(lm_actor_rt(self)), j->attempt);
    /* the first task manager coordinates the others: the grant's list after it */
    lm_deploy_msg d = {lm_str_c(id),
                       {j->plan_mp->data, (uint32_t)j->plan_mp->len},
                       lm_str_c(j->checkpoint_dir),
                       j->o.checkpoint_interval_ms,
                       0,
                       0,
                       lm_actor_addr(self),
                       {g.workers.ptr + LM_ADDR_WIRE_SIZE, g.workers.len - LM_ADDR_WIRE_SIZE}};
    if ((rv = lm_tell(self, j->workers[0], LM_MT_DEPLOY, &d)) != LM_OK) {
        char why[160];
        snprintf(why, sizeof(why), "cannot deploy to node %u: %s", j->workers[0].node,
                 lm_strerror(rv));
        failed(self, j, why); /* nothing deployed: nothing to cancel */
        return LM_OK;
    }
    snprintf(j->deploy_id, sizeof(j->deploy_id), "%s", id);
    snprintf(j->stats_id, sizeof(j->stats_id), "%s", id);
    stats_reset(j); /* the counters are those of this attempt */
    j->phase = P_DEPLOYING;
    timer_set(self, j, T_DEPLOY, j->o.deploy_timeout_ms, 0);
    LM_LOG(LM_LOG_INFO, "job %" PRId64 ": deployed attempt %" PRIu64 " on %s", j->o.job_id,
           j->attempt, j->placement);
    return LM_OK;
}

static int
on_wait(lm_actor *self, jobctl *j, lm_msg *m)
{
    lm_slot_wait_msg w;
    char why[256];

    if (lm_decode_slot_wait(m, &w, NULL) != LM_OK || j->phase != P_SCHEDULING) {
        return LM_OK;
    }
    snprintf(why, sizeof(why), "%.*s", (int)w.reason.len, w.reason.ptr);
    if (strcmp(why, j->wait_reason) != 0) {
        snprintf(j->wait_reason, sizeof(j->wait_reason), "%s", why);
        record(self, j, "scheduling", why, false);
    }
    return LM_OK;
}

static int
on_status(lm_actor *self, jobctl *j, lm_msg *m)
{
    lm_job_status_msg st;
    char reason[LM_ERROR_MSG_MAX + 64];

    if (lm_decode_job_status(m, &st, NULL) != LM_OK || j->deploy_id[0] == '\0' ||
        st.job.len != strlen(j->deploy_id) || memcmp(st.job.ptr, j->deploy_id, st.job.len) != 0) {
        return LM_OK; /* an earlier attempt's */
    }
    snprintf(reason, sizeof(reason), "%.*s", (int)st.reason.len, st.reason.ptr);
    switch (st.state) {
    case LM_JOB_RUNNING: {
        char why[600];
        timer_clear(self, j, T_DEPLOY);
        if (j->phase == P_DEPLOYING) {
            j->phase = P_RUNNING;
            publish(j); /* the placement is on the board before the store says running */
            snprintf(why, sizeof(why), "running on %s", j->placement);
            record(self, j, "running", why, false);
            timer_set(self, j, T_STATS, 0, j->o.stats_interval_ms);
        }
        return LM_OK;
    }
    case LM_JOB_FINISHED: finish(self, j, "finished", "all input consumed"); return LM_OK;
    case LM_JOB_STOPPED:
        snprintf(reason, sizeof(reason), "stopped by request (graceful) after savepoint %" PRIu64,
                 st.epoch);
        finish(self, j, "stopped", reason);
        return LM_OK;
    case LM_JOB_CANCELED:
        if (j->stop_requested) {
            snprintf(reason, sizeof(reason), "stopped by request (%s)", j->stop_how);
            finish(self, j, "stopped", reason);
        } else {
            j->deploy_id[0] = '\0';
            failed(self, j, "the job was canceled on its worker");
        }
        return LM_OK;
    case LM_JOB_FAILED:
    default:
        j->deploy_id[0] = '\0'; /* it ended by itself: nothing to cancel */
        failed(self, j, reason[0] ? reason : "failed");
        return LM_OK;
    }
}

static int
on_worker_lost(lm_actor *self, jobctl *j, lm_msg *m)
{
    lm_worker_lost_msg l;
    char why[400];

    if (lm_decode_worker_lost(m, &l, NULL) != LM_OK ||
        (j->phase != P_DEPLOYING && j->phase != P_RUNNING && j->phase != P_STOPPING)) {
        return LM_OK;
    }
    snprintf(why, sizeof(why), "worker %" PRIu64 " (node %u) lost: %.*s", l.worker, l.node,
             (int)l.reason.len, l.reason.ptr);
    /* the scheduler dropped our slots already; undeploy's release is harmless */
    if (j->nworkers > 0 && j->workers[0].node == l.node) {
        j->deploy_id[0] = '\0'; /* the coordinator is gone: its workers stop their shares */
    }
    failed(self, j, why);
    return LM_OK;
}

static int
on_stats(jobctl *j, lm_msg *m)
{
    lm_job_stats_reply_msg r;

    if (lm_decode_job_stats_reply(m, &r, NULL) != LM_OK || j->in == NULL ||
        r.job.len != strlen(j->stats_id) || memcmp(r.job.ptr, j->stats_id, r.job.len) != 0) {
        return LM_OK;
    }
    for (uint32_t k = 0; k < r.ops.len / LM_OP_COUNTS_WIRE_SIZE; k++) {
        lm_op_counts c = lm_op_counts_get(r.ops, k);
        if (c.op < j->plan->nops && r.subtask < j->plan->ops[c.op].def.parallelism) {
            j->in[c.op][r.subtask] = c.in;
            j->out[c.op][r.subtask] = c.out;
        }
    }
    return LM_OK;
}

static void
poll_stats(lm_actor *self, jobctl *j)
{
    lm_job_stats_msg q = {lm_str_c(j->stats_id), ++j->stats_seq};

    for (uint32_t i = 0; i < j->nworkers; i++) {
        lm_tell(self, j->workers[i], LM_MT_JOB_STATS, &q);
    }
}

static json_t *
operators_json(const jobctl *j)
{
    json_t *arr = json_array();

    for (uint32_t i = 0; arr != NULL && i < j->plan->nops; i++) {
        const lm_plan_op *op = &j->plan->ops[i];
        uint64_t in = 0, out = 0;
        for (uint32_t s = 0; s < op->def.parallelism; s++) {
            in += j->in[i][s];
            out += j->out[i][s];
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:I, s:I}", "id", op->def.id, "kind",
                                             op->kind->name, "parallelism",
                                             (int)op->def.parallelism, "records_in", (json_int_t)in,
                                             "records_out", (json_int_t)out));
    }
    return arr;
}

/* Posts the figures to the job board. */
static void
publish(jobctl *j)
{
    json_t *o;
    char *text;

    if (j->o.board == NULL || j->in == NULL) {
        return;
    }
    o = json_pack("{s:o, s:s}", "operators", operators_json(j), "placement", j->placement);
    if (o != NULL && (text = json_dumps(o, JSON_COMPACT)) != NULL) {
        lm_jobboard_put(j->o.board, j->o.job_id, text);
        free(text);
    }
    json_decref(o);
}

/* A stop request: returns the state word recorded. */
static const char *
stop_request(lm_actor *self, jobctl *j, const char *how)
{
    char why[64];

    if (j->stop_requested || j->phase == P_DONE) {
        return j->phase == P_DONE ? "stopped" : "stopping";
    }
    j->stop_requested = true;
    snprintf(j->stop_how, sizeof(j->stop_how), "%s", how);
    /* the pipeline's intent first: a controller started later keeps it stopped */
    json_t *a = json_pack("{s:I, s:s}", "id", (json_int_t)j->o.pipeline_id, "stop", how);
    if (a == NULL || lm_ms_call(lm_actor_rt(self), lm_actor_addr(self), j->o.metastore,
                                "pipeline.set_stop", 0, a, NULL, NULL) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "job %" PRId64 ": cannot record the stop of pipeline %" PRId64,
               j->o.job_id, j->o.pipeline_id);
    }
    json_decref(a);
    snprintf(why, sizeof(why), "stop requested (%s)", how);
    if (j->phase == P_RUNNING || j->phase == P_DEPLOYING) {
        record(self, j, "stopping", why, false);
        if (strcmp(how, "graceful") == 0 && j->phase == P_RUNNING) {
            lm_trigger_checkpoint_msg t = {lm_str_c(j->deploy_id), 0, LM_BARRIER_SAVEPOINT, true};
            lm_tell(self, j->workers[0], LM_MT_TRIGGER_CHECKPOINT, &t);
        } else {
            lm_cancel_msg c = {lm_str_c(j->deploy_id)};
            lm_tell(self, j->workers[0], LM_MT_CANCEL, &c);
        }
        j->phase = P_STOPPING;
        timer_clear(self, j, T_STATS);
        timer_set(self, j, T_STOP, j->o.stop_timeout_ms, 0);
        return "stopping";
    }
    snprintf(why, sizeof(why), "stopped by request (%s) before it ran", how);
    timer_clear(self, j, T_BACKOFF);
    finish(self, j, "stopped", why);
    return "stopped";
}

static int
on_api(lm_actor *self, jobctl *j, lm_msg *m)
{
    lm_api_call_msg c;
    char how[16];

    if (lm_decode_api_call(m, &c, NULL) != LM_OK || c.op != LM_API_OP_PIPELINE_STOP) {
        LM_LOG(LM_LOG_WARN, "job %" PRId64 ": unexpected API_CALL dropped", j->o.job_id);
        return LM_OK;
    }
    if (j->phase == P_DONE) {
        return LM_OK; /* ended: the asker learns it from this actor's exit */
    }
    snprintf(how, sizeof(how), "%.*s", (int)c.body.len, c.body.ptr);
    lm_stop_ack_msg a = {c.id, lm_str_c(stop_request(self, j, how))};
    lm_tell(self, m->src, LM_MT_STOP_ACK, &a);
    return LM_OK;
}

static int
on_timer(lm_actor *self, jobctl *j, lm_msg *m)
{
    lm_timer_msg t;
    char why[128];

    if (lm_decode_timer(m, &t, NULL) != LM_OK || t.tag > T_FINAL || j->timer[t.tag] != t.id) {
        return LM_OK;
    }
    if (t.tag != T_STATS) {
        j->timer[t.tag] = 0;
    }
    switch (t.tag) {
    case T_BACKOFF:
        if (j->phase == P_BACKOFF) {
            schedule(self, j);
        }
        break;
    case T_DEPLOY:
        if (j->phase == P_DEPLOYING) {
            snprintf(why, sizeof(why), "the deployment did not start within %.1f s",
                     (double)j->o.deploy_timeout_ms / 1000.0);
            failed(self, j, why);
        }
        break;
    case T_STOP:
        if (j->phase == P_STOPPING) {
            snprintf(why, sizeof(why), "stopped by request (%s); canceled after %.1f s",
                     j->stop_how, (double)j->o.stop_timeout_ms / 1000.0);
            finish(self, j, "stopped", why);
        }
        break;
    case T_FINAL:
        publish(j); /* the job's last figures stay on the board */
        lm_actor_stop(self);
        break;
    case T_STATS:
        if (j->phase == P_RUNNING) {
            publish(j); /* the sums of the last round's answers */
            poll_stats(self, j);
        }
        break;
    }
    return LM_OK;
}

/* --- the actor ----------------------------------------------------------------- */

static void
jobctl_free(jobctl *j)
{
    for (uint32_t i = 0; j->in != NULL && j->out != NULL && i < j->plan->nops; i++) {
        free(j->in[i]);
        free(j->out[i]);
    }
    free(j->in);
    free(j->out);
    if (j->plan_mp != NULL) {
        lm_msg_release(j->plan_mp);
    }
    lm_plan_free(j->plan);
    free(j->workers);
    free(j->plan_json);
    free(j->checkpoint_dir);
    free(j->resume);
    free(j);
}

static int
jobctl_init(lm_actor *self, void *arg)
{
    jobctl *j = arg;
    lm_error err = {0};
    char why[LM_ERROR_MSG_MAX + 64];

    lm_actor_set_state(self, j);
    if (j->o.live != NULL) {
        atomic_fetch_add(j->o.live, 1); /* dropped at the end of fini */
    }
    if (lm_plan_load_json(j->plan_json, strlen(j->plan_json), "plan", NULL, &j->plan, &err) !=
            LM_OK ||
        lm_msg_alloc(4096, &j->plan_mp) != LM_OK ||
        lm_plan_to_msgpack(j->plan, j->plan_mp) != LM_OK) {
        snprintf(why, sizeof(why), "its plan does not load: %s",
                 err.msg[0] ? err.msg : "out of memory");
        record(self, j, "failed", why, false);
        j->phase = P_DONE;
        lm_actor_stop(self);
        return LM_OK;
    }
    j->in = calloc(j->plan->nops, sizeof(uint64_t *));
    j->out = calloc(j->plan->nops, sizeof(uint64_t *));
    bool ok = j->in != NULL && j->out != NULL;
    for (uint32_t i = 0; ok && i < j->plan->nops; i++) {
        j->in[i] = calloc(j->plan->ops[i].def.parallelism, sizeof(uint64_t));
        j->out[i] = calloc(j->plan->ops[i].def.parallelism, sizeof(uint64_t));
        ok = j->in[i] != NULL && j->out[i] != NULL;
    }
    if (!ok) {
        if (j->o.live != NULL) {
            atomic_fetch_sub(j->o.live, 1);
        }
        jobctl_free(j); /* a failing init cleans up after itself */
        return lm_actor_fail(self, LM_ENOMEM, "out of memory");
    }
    schedule(self, j);
    return LM_OK;
}

static int
jobctl_handle(lm_actor *self, lm_msg *m)
{
    jobctl *j = lm_actor_state(self);

    if (j->phase == P_DONE && m->type != LM_MT_API_CALL && m->type != LM_MT_TIMER &&
        m->type != LM_MT_JOB_STATS_REPLY) {
        return LM_OK; /* ended: waits only for its last counters */
    }
    switch (m->type) {
    case LM_MT_SLOT_GRANT: return on_grant(self, j, m);
    case LM_MT_SLOT_WAIT: return on_wait(self, j, m);
    case LM_MT_JOB_STATUS: return on_status(self, j, m);
    case LM_MT_WORKER_LOST: return on_worker_lost(self, j, m);
    case LM_MT_JOB_STATS_REPLY: return on_stats(j, m);
    case LM_MT_API_CALL: return on_api(self, j, m);
    case LM_MT_TIMER: return on_timer(self, j, m);
    case LM_MT_UNDELIVERABLE: {
        lm_undeliverable_msg u;
        if (lm_decode_undeliverable(m, &u, NULL) == LM_OK) {
            LM_LOG(LM_LOG_WARN, "job %" PRId64 ": %s to node %u undeliverable: %.*s", j->o.job_id,
                   lm_proto_type_name(u.type), u.dst.node, (int)u.reason.len, u.reason.ptr);
            if (u.type == LM_MT_DEPLOY && j->phase == P_DEPLOYING) {
                j->deploy_id[0] = '\0';
                failed(self, j, "the deployment could not reach its worker");
            }
        }
        return LM_OK;
    }
    default: return LM_OK;
    }
}

static void
jobctl_fini(lm_actor *self)
{
    jobctl *j = lm_actor_state(self);

    if (j->phase != P_DONE) {
        /* stopped from outside: the controller is shutting down */
        undeploy(self, j);
        record(self, j, "stopped", "controller shut down; the job resumes when it starts again",
               false);
    }
    atomic_int *live = j->o.live;
    jobctl_free(j);
    if (live != NULL) {
        atomic_fetch_sub(live, 1); /* after the last message this controller sends */
    }
}

static const lm_actor_type jobctl_type = {"job", jobctl_init, jobctl_handle, jobctl_fini};

int
lm_jobctl_spawn(lm_actor *parent, const lm_jobctl_opts *o, lm_addr *out)
{
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    char name[64];
    jobctl *j;
    int rv;

    if (o == NULL || o->plan_json == NULL || o->job_id <= 0) {
        return LM_EINVAL;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        return LM_ENOMEM;
    }
    j->o = *o;
    j->o.plan_json = j->o.checkpoint_dir = j->o.resume_reason = NULL; /* copied below */
    j->plan_json = strdup(o->plan_json);
    j->checkpoint_dir = strdup(o->checkpoint_dir != NULL ? o->checkpoint_dir : "");
    j->resume = o->resume_reason != NULL ? strdup(o->resume_reason) : NULL;
    if (j->plan_json == NULL || j->checkpoint_dir == NULL ||
        (o->resume_reason != NULL && j->resume == NULL)) {
        jobctl_free(j);
        return LM_ENOMEM;
    }
    lm_jobctl_name(o->job_id, name, sizeof(name));
    so.name = name;
    if ((rv = lm_actor_spawn(parent, &jobctl_type, j, &so, out)) != LM_OK) {
        jobctl_free(j);
    }
    return rv;
}
