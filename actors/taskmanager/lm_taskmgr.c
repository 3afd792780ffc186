/*
 * lm_taskmgr.c: the task manager actor, and lm_job_* which drive it from
 * a thread.
 */
#include "lm_taskmgr.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_job.h"
#include "lm_log.h"
#include "lm_proto.h"
#include "lm_storage.h"

#define DEFAULT_CREDIT 4
#define TAG_CHECKPOINT 1 /* periodic checkpoint timer */

typedef struct tm_job {
    struct tm_job *next;
    lm_job *job;                               /* plan, chains, wiring */
    lm_addr observer;                          /* gets JOB_STATUS, CHECKPOINT_DONE */
    uint32_t nsubtasks;                        /* in all */
    uint32_t live;                             /* spawned and not yet exited */
    uint32_t ndone;                            /* reported SUBTASK_DONE */
    uint64_t max_buffered;                     /* most batches a subtask held */
    uint64_t events;                           /* events read by the sources of finished subtasks */
    uint64_t late_rows, bad_rows, expr_errors; /* their counters, summed */
    /* watermark alignment (plan->watermark_alignment_ms > 0) */
    uint32_t *src_off; /* per chain: its sources' first slot, UINT32_MAX: not a source */
    int64_t *src_wm;   /* per source subtask: last reported watermark */
    uint8_t *src_idle; /* per source subtask: idle */
    uint32_t nsrc;
    int64_t align_max;   /* last WATERMARK_ALIGN sent */
    uint32_t final_acks; /* subtasks that committed the end (LM_EPOCH_FINAL) */
    bool over;           /* finished, failed or canceled */
    uint64_t next_epoch; /* for the next checkpoint */
    uint64_t last_epoch; /* last completed */
    uint64_t ckpt_epoch; /* in progress, 0: none */
    uint32_t ckpt_kind;
    bool ckpt_stop; /* stop the job once it completes */
    uint32_t acks;  /* received for ckpt_epoch */
    uint64_t ckpt_bytes;
    int ckpt_code; /* first failure */
    char ckpt_reason[LM_ERROR_MSG_MAX];
    uint64_t interval_ms;
    uint64_t timer; /* periodic checkpoint timer, 0: none */
} tm_job;

typedef struct tm_state {
    tm_job *jobs;
} tm_state;

static void
tm_job_free(tm_job *j)
{
    lm_job_release(j->job);
    free(j->src_off);
    free(j->src_wm);
    free(j->src_idle);
    free(j);
}

static tm_job *
find_job(tm_state *s, const char *id, size_t len)
{
    for (tm_job *j = s->jobs; j != NULL; j = j->next) {
        if (!j->over && strlen(j->job->id) == len && memcmp(j->job->id, id, len) == 0) {
            return j;
        }
    }
    return NULL;
}

/* Which job a subtask address belongs to, and its chain/index. */
static tm_job *
job_of_subtask(tm_state *s, lm_addr a)
{
    for (tm_job *j = s->jobs; j != NULL; j = j->next) {
        for (uint32_t c = 0; c < j->job->nchains; c++) {
            for (uint32_t i = 0; i < j->job->chains[c].parallelism; i++) {
                if (lm_addr_eq(j->job->chains[c].subtasks[i], a)) {
                    return j;
                }
            }
        }
    }
    return NULL;
}

static void
status(lm_actor *self, tm_job *j, uint32_t state, const char *reason)
{
    lm_job_status_msg st = {lm_str_c(j->job->id), state,           lm_str_c(reason),
                            j->last_epoch,        j->max_buffered, j->events,
                            j->late_rows,         j->bad_rows,     j->expr_errors};
    if (j->observer.node != 0) {
        lm_tell(self, j->observer, LM_MT_JOB_STATUS, &st);
    }
}

/* Sends a message to every subtask of the job. */
static void
to_all(lm_actor *self, tm_job *j, uint32_t type, const void *payload, bool sources_only)
{
    for (uint32_t c = 0; c < j->job->nchains; c++) {
        const lm_chain *ch = &j->job->chains[c];
        if (sources_only && j->job->plan->ops[ch->ops[0]].kind->produce == NULL) {
            continue;
        }
        for (uint32_t i = 0; i < ch->parallelism; i++) {
            lm_tell(self, ch->subtasks[i], type, payload);
        }
    }
}

static void
stop_all(lm_actor *self, tm_job *j, const char *why)
{
    for (uint32_t c = 0; c < j->job->nchains; c++) {
        for (uint32_t i = 0; i < j->job->chains[c].parallelism; i++) {
            lm_stop(lm_actor_rt(self), j->job->chains[c].subtasks[i], why);
        }
    }
}

/* Forgets a job once it is over and none of its subtasks runs any more
 * (they share the job's plan and wiring). */
static void
maybe_free(tm_state *s, tm_job *j)
{
    tm_job **pp;

    if (!j->over || j->live > 0) {
        return;
    }
    for (pp = &s->jobs; *pp != j; pp = &(*pp)->next) {
    }
    *pp = j->next;
    tm_job_free(j);
}

/* The job is over: tell the observer and stop its subtasks. The caller
 * then calls maybe_free (the job stays while subtasks still run). */
static void
end_job(lm_actor *self, tm_job *j, uint32_t state, const char *reason)
{
    if (j->over) {
        return;
    }
    j->over = true;
    if (j->timer != 0) {
        lm_timer_cancel(self, j->timer);
    }
    LM_LOG(state == LM_JOB_FAILED ? LM_LOG_ERROR : LM_LOG_INFO, "job %s %s%s%s", j->job->id,
           state == LM_JOB_FINISHED  ? "finished"
           : state == LM_JOB_FAILED  ? "failed"
           : state == LM_JOB_STOPPED ? "stopped"
                                     : "canceled",
           reason[0] != '\0' ? ": " : "", reason);
    status(self, j, state, reason);
    stop_all(self, j, reason[0] != '\0' ? reason : "job over");
}

static int
trigger(lm_actor *self, tm_job *j, uint64_t epoch, uint32_t kind, bool then_stop, lm_addr asker)
{
    lm_trigger_checkpoint_msg t = {lm_str_c(j->job->id), 0, kind, then_stop};

    if (j->ckpt_epoch != 0 || j->ndone > 0 || j->job->checkpoint_dir[0] == '\0') {
        lm_checkpoint_done_msg d = {lm_str_c(j->job->id), epoch, 0, LM_ESTATE,
                                    lm_str_c(j->ckpt_epoch != 0 ? "a checkpoint is in progress"
                                             : j->ndone > 0     ? "the job is finishing"
                                                                : "no checkpoint directory")};
        if (asker.node != 0) {
            lm_tell(self, asker, LM_MT_CHECKPOINT_DONE, &d);
        }
        return LM_OK;
    }
    if (epoch == 0 || epoch <= j->last_epoch) {
        epoch = j->next_epoch;
    }
    j->next_epoch = epoch + 1;
    j->ckpt_epoch = epoch;
    j->ckpt_kind = kind;
    j->ckpt_stop = then_stop;
    j->acks = 0;
    j->ckpt_bytes = 0;
    j->ckpt_code = LM_OK;
    j->ckpt_reason[0] = '\0';
    t.epoch = epoch;
    to_all(self, j, LM_MT_TRIGGER_CHECKPOINT, &t, true);
    return LM_OK;
}

/* All acknowledgements are in: write the metadata, tell everyone. */
static void
checkpoint_complete(lm_actor *self, tm_state *s, tm_job *j)
{
    char dir[4096], path[4200], meta[8192];
    lm_error err;
    struct timespec ts;
    int n;
    lm_checkpoint_done_msg d = {lm_str_c(j->job->id), j->ckpt_epoch, j->ckpt_bytes, j->ckpt_code,
                                lm_str_c(j->ckpt_reason)};

    if (j->ckpt_code == LM_OK) {
        clock_gettime(CLOCK_REALTIME, &ts);
        lm_job_checkpoint_dir(j->job, j->ckpt_epoch, dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/metadata", dir);
        n = snprintf(
            meta, sizeof(meta),
            "{\"job\": \"%s\", \"epoch\": %" PRIu64 ", \"kind\": \"%s\", \"time_ms\": %lld, "
            "\"subtasks\": %u, \"bytes\": %" PRIu64 ", \"operators\": [",
            j->job->id, j->ckpt_epoch,
            j->ckpt_kind == LM_BARRIER_SAVEPOINT ? "savepoint" : "checkpoint",
            (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, j->nsubtasks, j->ckpt_bytes);
        for (uint32_t o = 0; o < j->job->plan->nops && n < (int)sizeof(meta) - 300; o++) {
            n += snprintf(meta + n, sizeof(meta) - (size_t)n,
                          "%s{\"id\": \"%s\", \"parallelism\": %u}", o > 0 ? ", " : "",
                          j->job->plan->ops[o].def.id, j->job->plan->ops[o].def.parallelism);
        }
        n += snprintf(meta + n, sizeof(meta) - (size_t)n, "]}\n");
        if (lm_storage_write(path, meta, (size_t)n, &err) != LM_OK) {
            d.code = err.code;
            d.reason = lm_str_c(err.msg);
        } else {
            j->last_epoch = j->ckpt_epoch;
            LM_LOG(LM_LOG_INFO, "job %s: checkpoint %" PRIu64 " complete (%" PRIu64 " bytes)",
                   j->job->id, j->ckpt_epoch, j->ckpt_bytes);
        }
    } else {
        LM_LOG(LM_LOG_WARN, "job %s: checkpoint %" PRIu64 " failed: %s", j->job->id, j->ckpt_epoch,
               j->ckpt_reason);
    }
    j->ckpt_epoch = 0;
    if (d.code == LM_OK) {
        to_all(self, j, LM_MT_CHECKPOINT_DONE, &d, false);
    }
    if (j->observer.node != 0) {
        lm_tell(self, j->observer, LM_MT_CHECKPOINT_DONE, &d);
    }
    if (d.code == LM_OK && j->ckpt_stop) {
        char why[96];
        snprintf(why, sizeof(why), "stopped after savepoint %" PRIu64, d.epoch);
        end_job(self, j, LM_JOB_STOPPED, why);
        maybe_free(s, j);
    }
}

/* --- watermark alignment -------------------------------------------------
 * Source subtasks report their output watermark (SOURCE_PROGRESS); the
 * task manager tells them all the highest watermark any of them may run
 * to (WATERMARK_ALIGN): the slowest one's plus the plan's drift. Sources without a
 * watermark yet, ended or idle do not hold the others back. */

static int
align_init(tm_job *j)
{
    const lm_job *job = j->job;

    j->align_max = INT64_MAX;
    if (job->plan->watermark_alignment_ms <= 0) {
        return LM_OK;
    }
    if ((j->src_off = malloc(job->nchains * sizeof(uint32_t))) == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t c = 0; c < job->nchains; c++) {
        const lm_chain *ch = &job->chains[c];
        j->src_off[c] = UINT32_MAX;
        if (job->plan->ops[ch->ops[0]].kind->produce != NULL) {
            j->src_off[c] = j->nsrc;
            j->nsrc += ch->parallelism;
        }
    }
    j->src_wm = malloc((j->nsrc + 1) * sizeof(int64_t));
    j->src_idle = calloc(j->nsrc + 1, 1);
    if (j->src_wm == NULL || j->src_idle == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < j->nsrc; i++) {
        j->src_wm[i] = INT64_MIN;
    }
    return LM_OK;
}

static void
align_progress(lm_actor *self, tm_job *j, const lm_source_progress_msg *p)
{
    int64_t min = INT64_MAX, drift, max;
    uint32_t k;

    if (j->src_off == NULL || p->chain >= j->job->nchains || j->src_off[p->chain] == UINT32_MAX ||
        p->subtask >= j->job->chains[p->chain].parallelism) {
        return;
    }
    k = j->src_off[p->chain] + p->subtask;
    j->src_wm[k] = p->wm;
    j->src_idle[k] = p->idle;
    for (uint32_t i = 0; i < j->nsrc; i++) {
        if (!j->src_idle[i] && j->src_wm[i] != INT64_MIN && j->src_wm[i] != INT64_MAX &&
            j->src_wm[i] < min) {
            min = j->src_wm[i];
        }
    }
    drift = j->job->plan->watermark_alignment_ms * 1000;
    max = min > INT64_MAX - drift ? INT64_MAX : min + drift;
    if (max != j->align_max) {
        lm_watermark_align_msg a = {max};
        j->align_max = max;
        to_all(self, j, LM_MT_WATERMARK_ALIGN, &a, true);
    }
}

static int
deploy(lm_actor *self, tm_state *s, lm_msg *m)
{
    lm_deploy_msg d;
    lm_error err;
    lm_plan *plan;
    lm_job *job;
    tm_job *j;
    char id[256], reason[LM_ERROR_MSG_MAX + 700];
    int rv;

    if ((rv = lm_decode_deploy(m, &d, &err)) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "bad DEPLOY from %u: %s", m->src.node, err.msg);
        return LM_OK;
    }
    snprintf(id, sizeof(id), "%.*s", (int)d.job.len, d.job.ptr);
    if (id[0] == '\0' || strchr(id, '/') != NULL || find_job(s, d.job.ptr, d.job.len) != NULL) {
        lm_job_status_msg st = {d.job,
                                LM_JOB_FAILED,
                                lm_str_c(id[0] == '\0' || strchr(id, '/') != NULL
                                             ? "bad job id"
                                             : "a job with this id is running"),
                                0,
                                0,
                                0,
                                0,
                                0,
                                0};
        lm_tell(self, d.observer, LM_MT_JOB_STATUS, &st);
        return LM_OK;
    }
    if ((rv = lm_plan_load_msgpack(d.plan.ptr, d.plan.len, NULL, &plan, &err)) != LM_OK ||
        (rv = lm_job_new(id, plan, &job)) != LM_OK) {
        lm_job_status_msg st = {d.job,
                                LM_JOB_FAILED,
                                lm_str_c(rv == LM_EINVAL ? err.msg : lm_strerror(rv)),
                                0,
                                0,
                                0,
                                0,
                                0,
                                0};
        lm_tell(self, d.observer, LM_MT_JOB_STATUS, &st);
        return LM_OK;
    }
    free(job->checkpoint_dir);
    job->checkpoint_dir = strndup(d.checkpoint_dir.ptr, d.checkpoint_dir.len);
    job->restore_epoch = d.restore_epoch;
    job->credit = d.credit > 0 ? d.credit : DEFAULT_CREDIT;
    job->tm = lm_actor_addr(self);
    if ((j = calloc(1, sizeof(*j))) == NULL || job->checkpoint_dir == NULL) {
        free(j);
        lm_job_release(job);
        return LM_ENOMEM;
    }
    j->job = job;
    j->observer = d.observer;
    j->interval_ms = d.checkpoint_interval_ms;
    j->next_epoch = d.restore_epoch + 1;
    j->last_epoch = d.restore_epoch;
    j->next = s->jobs;
    s->jobs = j;
    if (align_init(j) != LM_OK) {
        end_job(self, j, LM_JOB_FAILED, "out of memory");
        maybe_free(s, j);
        return LM_OK;
    }
    if (d.restore_epoch > 0) {
        char dir[4096], path[4200];
        lm_job_checkpoint_dir(job, d.restore_epoch, dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/metadata", dir);
        if (job->checkpoint_dir[0] == '\0' || !lm_storage_exists(path)) {
            snprintf(reason, sizeof(reason),
                     "cannot restore: checkpoint %" PRIu64 " of job %s is not complete (no %.300s)",
                     d.restore_epoch, id, path);
            end_job(self, j, LM_JOB_FAILED, reason);
            maybe_free(s, j);
            return LM_OK;
        }
    }
    /* Phase one: every subtask exists (and opens its operators, restoring
     * their tables); phase two: START, once all addresses are known. */
    for (uint32_t c = 0; c < job->nchains; c++) {
        lm_chain *ch = &job->chains[c];
        for (uint32_t i = 0; i < ch->parallelism; i++) {
            lm_subtask_arg *a = malloc(sizeof(*a));
            lm_spawn_opts so = LM_SPAWN_DEFAULTS;
            if (a == NULL) {
                end_job(self, j, LM_JOB_FAILED, "out of memory");
                maybe_free(s, j);
                return LM_OK;
            }
            lm_job_retain(job); /* the subtask's reference */
            *a = (lm_subtask_arg){job, c, i};
            so.loop = (int)(i % (uint32_t)lm_rt_loop_count(lm_actor_rt(self)));
            if ((rv = lm_actor_spawn(self, &lm_subtask_type, a, &so, &ch->subtasks[i])) != LM_OK) {
                lm_job_release(job);
                free(a);
                snprintf(reason, sizeof(reason), "cannot start a subtask: %s", lm_strerror(rv));
                end_job(self, j, LM_JOB_FAILED, reason);
                maybe_free(s, j);
                return LM_OK;
            }
            j->nsubtasks++;
            j->live++;
        }
    }
    {
        lm_start_msg st = {lm_str_c(id)};
        to_all(self, j, LM_MT_START, &st, false);
    }
    if (j->interval_ms > 0 && job->checkpoint_dir[0] != '\0') {
        lm_timer_start(self, j->interval_ms, j->interval_ms,
                       ((uint64_t)TAG_CHECKPOINT << 32) | (uint32_t)(uintptr_t)j, &j->timer);
    }
    LM_LOG(LM_LOG_INFO, "job %s: %u operators in %u chains, %u subtasks%s", id, job->plan->nops,
           job->nchains, j->nsubtasks, d.restore_epoch > 0 ? " (restoring)" : "");
    status(self, j, LM_JOB_RUNNING, d.restore_epoch > 0 ? "restored" : "");
    return LM_OK;
}

static int
tm_init(lm_actor *self, void *arg)
{
    tm_state *s = calloc(1, sizeof(*s));
    (void)arg;
    if (s == NULL) {
        return LM_ENOMEM;
    }
    lm_actor_set_state(self, s);
    return LM_OK;
}

static int
tm_handle(lm_actor *self, lm_msg *m)
{
    tm_state *s = lm_actor_state(self);
    tm_job *j;

    switch (m->type) {
    case LM_MT_DEPLOY: return deploy(self, s, m);
    case LM_MT_SUBTASK_DONE: {
        lm_subtask_done_msg d;
        if (lm_decode_subtask_done(m, &d, NULL) != LM_OK ||
            (j = job_of_subtask(s, m->src)) == NULL || j->over) {
            return LM_OK;
        }
        if (d.max_buffered > j->max_buffered) {
            j->max_buffered = d.max_buffered;
        }
        j->events += d.events;
        j->late_rows += d.late_rows;
        j->bad_rows += d.bad_rows;
        j->expr_errors += d.expr_errors;
        if (++j->ndone == j->nsubtasks) {
            if (j->job->checkpoint_dir[0] != '\0') {
                /* Every subtask is done: the sinks may commit what they
                 * hold for the end; the job is over once they have. */
                lm_checkpoint_done_msg fin = {lm_str_c(j->job->id), LM_EPOCH_FINAL, 0, LM_OK,
                                              lm_str_c("")};
                j->final_acks = 0;
                to_all(self, j, LM_MT_CHECKPOINT_DONE, &fin, false);
            } else {
                end_job(self, j, LM_JOB_FINISHED, "");
                maybe_free(s, j);
            }
        }
        return LM_OK;
    }
    case LM_MT_CHILD_EXIT: {
        lm_child_exit_msg ce;
        if (lm_decode_child_exit(m, &ce, NULL) != LM_OK ||
            (j = job_of_subtask(s, ce.child)) == NULL) {
            return LM_OK;
        }
        j->live--;
        if (ce.failed) {
            char reason[LM_ERROR_MSG_MAX];
            snprintf(reason, sizeof(reason), "%.*s", (int)ce.reason.len, ce.reason.ptr);
            end_job(self, j, LM_JOB_FAILED, reason);
        } else if (!j->over) {
            end_job(self, j, LM_JOB_FAILED, "a subtask stopped unexpectedly");
        }
        maybe_free(s, j);
        return LM_OK;
    }
    case LM_MT_SOURCE_PROGRESS: {
        lm_source_progress_msg p;
        if (lm_decode_source_progress(m, &p, NULL) == LM_OK &&
            (j = job_of_subtask(s, m->src)) != NULL && !j->over) {
            align_progress(self, j, &p);
        }
        return LM_OK;
    }
    case LM_MT_CHECKPOINT_ACK: {
        lm_checkpoint_ack_msg a;
        if (lm_decode_checkpoint_ack(m, &a, NULL) != LM_OK ||
            (j = job_of_subtask(s, m->src)) == NULL) {
            return LM_OK;
        }
        if (a.epoch == LM_EPOCH_FINAL && j->ndone == j->nsubtasks && !j->over) {
            if (++j->final_acks == j->nsubtasks) {
                end_job(self, j, LM_JOB_FINISHED, "");
                maybe_free(s, j);
            }
            return LM_OK;
        }
        if (a.epoch != j->ckpt_epoch) {
            return LM_OK;
        }
        j->acks++;
        j->ckpt_bytes += a.bytes;
        if (a.code != LM_OK && j->ckpt_code == LM_OK) {
            j->ckpt_code = (int)a.code;
            snprintf(j->ckpt_reason, sizeof(j->ckpt_reason), "%.*s", (int)a.reason.len,
                     a.reason.ptr);
        }
        if (j->acks == j->nsubtasks) {
            checkpoint_complete(self, s, j);
        }
        return LM_OK;
    }
    case LM_MT_TRIGGER_CHECKPOINT: {
        lm_trigger_checkpoint_msg t;
        if (lm_decode_trigger_checkpoint(m, &t, NULL) != LM_OK) {
            return LM_OK;
        }
        if ((j = find_job(s, t.job.ptr, t.job.len)) == NULL) {
            lm_checkpoint_done_msg d = {t.job, t.epoch, 0, LM_ENOTFOUND, lm_str_c("no such job")};
            lm_tell(self, m->src, LM_MT_CHECKPOINT_DONE, &d);
            return LM_OK;
        }
        return trigger(self, j, t.epoch, t.kind, t.then_stop, m->src);
    }
    case LM_MT_CANCEL: {
        lm_cancel_msg c;
        if (lm_decode_cancel(m, &c, NULL) == LM_OK &&
            (j = find_job(s, c.job.ptr, c.job.len)) != NULL) {
            end_job(self, j, LM_JOB_CANCELED, "canceled");
            maybe_free(s, j);
        }
        return LM_OK;
    }
    case LM_MT_TIMER: {
        lm_timer_msg t;
        if (lm_decode_timer(m, &t, NULL) != LM_OK) {
            return LM_OK;
        }
        for (j = s->jobs; j != NULL; j = j->next) {
            if (j->timer == t.id && j->ckpt_epoch == 0 && j->ndone == 0) {
                trigger(self, j, 0, LM_BARRIER_CHECKPOINT, false, LM_ADDR_NONE);
            }
        }
        return LM_OK;
    }
    default: return LM_OK;
    }
}

static void
tm_fini(lm_actor *self)
{
    tm_state *s = lm_actor_state(self);
    while (s->jobs != NULL) {
        tm_job *j = s->jobs;
        s->jobs = j->next;
        tm_job_free(j);
    }
    free(s);
}

static const lm_actor_type taskmgr_type = {"taskmanager", tm_init, tm_handle, tm_fini};

int
lm_taskmgr_spawn(lm_rt *rt, lm_addr *out)
{
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    so.name = "taskmanager";
    so.loop = 0;
    return lm_spawn(rt, &taskmgr_type, NULL, &so, out);
}

/* --- driving a job from a thread ---------------------------------------- */

struct lm_job_handle {
    lm_rt *rt;
    lm_addr tm;
    lm_addr watcher; /* the actor receiving JOB_STATUS for us */
    char job[256];
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool over;
    lm_job_result res;
    uint64_t done_epoch; /* last CHECKPOINT_DONE seen */
    int done_code;
    char done_reason[LM_ERROR_MSG_MAX];
    uint64_t done_seq; /* CHECKPOINT_DONEs seen */
    struct timespec t0;
};

static int
watch_init(lm_actor *self, void *arg)
{
    lm_actor_set_state(self, arg);
    return LM_OK;
}

static int
watch_handle(lm_actor *self, lm_msg *m)
{
    lm_job_handle *h = lm_actor_state(self);

    pthread_mutex_lock(&h->lock);
    if (m->type == LM_MT_JOB_STATUS) {
        lm_job_status_msg st;
        if (lm_decode_job_status(m, &st, NULL) == LM_OK && st.state != LM_JOB_RUNNING) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            h->over = true;
            h->res.state = (int)st.state;
            snprintf(h->res.reason, sizeof(h->res.reason), "%.*s", (int)st.reason.len,
                     st.reason.ptr);
            h->res.last_epoch = st.epoch;
            h->res.max_buffered = st.max_buffered;
            h->res.events = st.events;
            h->res.late_rows = st.late_rows;
            h->res.bad_rows = st.bad_rows;
            h->res.expr_errors = st.expr_errors;
            h->res.seconds =
                (double)(now.tv_sec - h->t0.tv_sec) + (double)(now.tv_nsec - h->t0.tv_nsec) / 1e9;
            lm_actor_stop(self);
        }
    } else if (m->type == LM_MT_CHECKPOINT_DONE) {
        lm_checkpoint_done_msg d;
        if (lm_decode_checkpoint_done(m, &d, NULL) == LM_OK) {
            h->done_epoch = d.epoch;
            h->done_code = (int)d.code;
            snprintf(h->done_reason, sizeof(h->done_reason), "%.*s", (int)d.reason.len,
                     d.reason.ptr);
            h->done_seq++;
        }
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->lock);
    return LM_OK;
}

static const lm_actor_type watch_type = {"jobwatch", watch_init, watch_handle, NULL};

int
lm_job_start(lm_rt *rt, lm_addr tm, const lm_plan *plan, const lm_job_opts *opts,
             lm_job_handle **out)
{
    lm_job_handle *h = calloc(1, sizeof(*h));
    lm_msg *pm;
    int rv;

    if (h == NULL) {
        return LM_ENOMEM;
    }
    h->rt = rt;
    h->tm = tm;
    snprintf(h->job, sizeof(h->job), "%s", opts->job_id != NULL ? opts->job_id : "job");
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cv, NULL);
    clock_gettime(CLOCK_MONOTONIC, &h->t0);
    if ((rv = lm_msg_alloc(4096, &pm)) != LM_OK || (rv = lm_plan_to_msgpack(plan, pm)) != LM_OK) {
        free(h);
        return rv;
    }
    if ((rv = lm_spawn(rt, &watch_type, h, NULL, &h->watcher)) != LM_OK) {
        lm_msg_release(pm);
        free(h);
        return rv;
    }
    {
        lm_deploy_msg d = {lm_str_c(h->job),
                           {pm->data, (uint32_t)pm->len},
                           lm_str_c(opts->checkpoint_dir != NULL ? opts->checkpoint_dir : ""),
                           opts->checkpoint_interval_ms,
                           opts->restore_epoch,
                           opts->credit,
                           h->watcher};
        rv = lm_rt_tell_as(rt, h->watcher, tm, LM_MT_DEPLOY, &d);
    }
    lm_msg_release(pm);
    if (rv != LM_OK) {
        lm_stop(rt, h->watcher, "deploy failed");
        /* the watcher may still run once: leak-free only after it stops */
        return rv;
    }
    *out = h;
    return LM_OK;
}

static void
deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int
lm_job_checkpoint(lm_job_handle *h, uint32_t kind, bool then_stop, int timeout_ms, uint64_t *epoch,
                  lm_error *err)
{
    lm_trigger_checkpoint_msg t = {lm_str_c(h->job), 0, kind, then_stop};
    struct timespec dl;
    uint64_t seq;
    int rv;

    pthread_mutex_lock(&h->lock);
    seq = h->done_seq;
    pthread_mutex_unlock(&h->lock);
    if ((rv = lm_rt_tell_as(h->rt, h->watcher, h->tm, LM_MT_TRIGGER_CHECKPOINT, &t)) != LM_OK) {
        return lm_error_set(err, rv, "cannot ask for a checkpoint: %s", lm_strerror(rv));
    }
    deadline_in(&dl, timeout_ms);
    pthread_mutex_lock(&h->lock);
    while (h->done_seq == seq && !h->over) {
        if (pthread_cond_timedwait(&h->cv, &h->lock, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&h->lock);
            return lm_error_set(err, LM_ETIMEDOUT, "the checkpoint did not complete in %d ms",
                                timeout_ms);
        }
    }
    if (h->done_seq == seq) {
        pthread_mutex_unlock(&h->lock);
        return lm_error_set(err, LM_ESTATE, "the job ended first");
    }
    rv = h->done_code;
    *epoch = h->done_epoch;
    if (rv != LM_OK) {
        lm_error_set(err, rv, "checkpoint failed: %s", h->done_reason);
    }
    pthread_mutex_unlock(&h->lock);
    return rv;
}

int
lm_job_wait(lm_job_handle *h, int timeout_ms, lm_job_result *res)
{
    struct timespec dl;

    deadline_in(&dl, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&h->lock);
    while (!h->over) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&h->cv, &h->lock);
        } else if (pthread_cond_timedwait(&h->cv, &h->lock, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&h->lock);
            return LM_ETIMEDOUT;
        }
    }
    *res = h->res;
    pthread_mutex_unlock(&h->lock);
    return LM_OK;
}

int
lm_job_cancel(lm_job_handle *h)
{
    lm_cancel_msg c = {lm_str_c(h->job)};
    return lm_rt_tell_as(h->rt, h->watcher, h->tm, LM_MT_CANCEL, &c);
}

void
lm_job_handle_free(lm_job_handle *h)
{
    if (h != NULL) {
        pthread_mutex_destroy(&h->lock);
        pthread_cond_destroy(&h->cv);
        free(h);
    }
}

int
lm_job_run(lm_rt *rt, lm_addr tm, const lm_plan *plan, const lm_job_opts *opts, lm_job_result *res)
{
    lm_job_handle *h;
    int rv = lm_job_start(rt, tm, plan, opts, &h);

    if (rv != LM_OK) {
        return rv;
    }
    rv = lm_job_wait(h, -1, res);
    lm_job_handle_free(h);
    return rv;
}
