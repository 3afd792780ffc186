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
#include "lm_time.h"

#define DEFAULT_CREDIT 4
#define TAG_CHECKPOINT 1 /* periodic checkpoint timer */
#define TAG_HEARTBEAT  2 /* liveness of the other task managers of distributed jobs */
#define HEARTBEAT_MS   250
#define LOST_MS        3000 /* a node that answers no PING for this long is lost */
#define KEEP_ENDED     16   /* counters of ended jobs kept for JOB_STATS */

/* One subtask of this node, for JOB_STATS. */
typedef struct tm_sub {
    uint32_t chain, index; /* which */
    lm_addr addr;          /* the subtask actor */
    uint8_t *ops;          /* its final counters (JOB_STATS_REPLY form); NULL while it runs */
    uint32_t len;          /* bytes at ops */
} tm_sub;

/* The subtasks of one job this node runs (all of a job deployed here, or
 * the share of one hosted here), kept KEEP_ENDED jobs past its end. */
typedef struct tm_stats {
    struct tm_stats *next; /* newer first */
    char *job;             /* job id */
    tm_sub *subs;
    uint32_t nsubs, cap;
    bool ended; /* every subtask here has exited: answers come from ops only */
} tm_stats;

/* Another task manager running part of a job this one coordinates. */
typedef struct tm_worker {
    lm_addr tm;      /* its address */
    bool spawned;    /* its SPAWNED came */
    uint32_t live;   /* its subtasks not yet exited */
    int64_t seen_ms; /* when its node last answered */
} tm_worker;

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
    /* placement over several task managers (worker 0 is this one) */
    tm_worker *workers; /* the others, workers 1.. */
    uint32_t nworkers;  /* how many others */
    uint32_t pending;   /* SPAWNED still to come */
    tm_stats *stats;    /* counters of its subtasks here (in tm_state.stats) */
} tm_job;

/* Part of a job another task manager coordinates, run here. */
typedef struct tm_hosted {
    struct tm_hosted *next;
    lm_job *job;     /* this node's copy; job->tm is the coordinator */
    lm_addr coord;   /* the coordinating task manager */
    uint32_t live;   /* subtasks here not yet exited */
    int64_t seen_ms; /* when the coordinator's node last answered */
    tm_stats *stats; /* counters of its subtasks here (in tm_state.stats) */
    bool wired;      /* WIRE came: our subtasks have their START */
} tm_hosted;

typedef struct tm_state {
    tm_job *jobs;
    tm_hosted *hosted;
    tm_stats *stats;    /* per job run here, newest first */
    uint64_t heartbeat; /* timer while distributed jobs exist, 0: none */
    uint64_t ping_seq;
} tm_state;

/* --- counters (JOB_STATS) ---------------------------------------------- */

static void
stats_free(tm_stats *r)
{
    for (uint32_t i = 0; i < r->nsubs; i++) {
        free(r->subs[i].ops);
    }
    free(r->subs);
    free(r->job);
    free(r);
}

static tm_stats *
stats_find(tm_state *s, const char *id, size_t len)
{
    for (tm_stats *r = s->stats; r != NULL; r = r->next) {
        if (strlen(r->job) == len && memcmp(r->job, id, len) == 0) {
            return r;
        }
    }
    return NULL;
}

/* A record for the n subtasks of job id this node is about to spawn (an
 * ended record of an earlier job of that id goes). NULL when out of
 * memory: the job then runs without one. */
static tm_stats *
stats_new(tm_state *s, const char *id, uint32_t n)
{
    tm_stats *r = calloc(1, sizeof(*r)), *old = stats_find(s, id, strlen(id));

    if (old != NULL && old->ended) {
        tm_stats **pp;
        for (pp = &s->stats; *pp != old; pp = &(*pp)->next) {
        }
        *pp = old->next;
        stats_free(old);
    }
    if (r == NULL || (r->job = strdup(id)) == NULL ||
        (r->subs = calloc(n + 1, sizeof(tm_sub))) == NULL) {
        if (r != NULL) {
            free(r->job);
            free(r);
        }
        LM_LOG(LM_LOG_WARN, "job %s: out of memory: no counters for JOB_STATS", id);
        return NULL;
    }
    r->cap = n;
    r->next = s->stats;
    s->stats = r;
    return r;
}

/* The record's job is over here: keep it (for pollers) among the last
 * KEEP_ENDED. */
static void
stats_end(tm_state *s, tm_stats *r)
{
    uint32_t kept = 0;

    if (r == NULL) {
        return;
    }
    r->ended = true;
    for (tm_stats **pp = &s->stats; *pp != NULL;) {
        tm_stats *x = *pp;
        if (x->ended && ++kept > KEEP_ENDED) {
            *pp = x->next;
            stats_free(x);
        } else {
            pp = &x->next;
        }
    }
}

/* A subtask of ours handed in its final counters. */
static void
stats_final(tm_state *s, lm_msg *m)
{
    lm_job_stats_reply_msg rp;
    uint8_t *ops;

    if (lm_decode_job_stats_reply(m, &rp, NULL) != LM_OK ||
        rp.ops.len % LM_OP_COUNTS_WIRE_SIZE != 0) {
        return;
    }
    for (tm_stats *r = s->stats; r != NULL; r = r->next) {
        for (uint32_t i = 0; i < r->nsubs; i++) {
            tm_sub *sb = &r->subs[i];
            if (!lm_addr_eq(sb->addr, m->src)) {
                continue;
            }
            if ((ops = malloc(rp.ops.len + 1)) == NULL) {
                return;
            }
            memcpy(ops, rp.ops.ptr, rp.ops.len);
            free(sb->ops);
            sb->ops = ops;
            sb->len = rp.ops.len;
            return;
        }
    }
}

/* JOB_STATS: the subtasks still running answer the asker themselves (the
 * message goes on with the asker as its source); for those that ended,
 * this task manager answers from their final counters. */
static void
job_stats(lm_actor *self, tm_state *s, lm_msg *m)
{
    lm_job_stats_msg q;
    tm_stats *r;

    if (lm_decode_job_stats(m, &q, NULL) != LM_OK) {
        return;
    }
    if ((r = stats_find(s, q.job.ptr, q.job.len)) == NULL) {
        LM_LOG(LM_LOG_DEBUG, "JOB_STATS from %u:%llu for unknown job '%.*s' ignored", m->src.node,
               (unsigned long long)m->src.actor, (int)q.job.len, q.job.ptr);
        return;
    }
    for (uint32_t i = 0; i < r->nsubs; i++) {
        tm_sub *sb = &r->subs[i];
        if (sb->ops != NULL) {
            lm_job_stats_reply_msg rp = {q.job, q.seq, sb->chain, sb->index, {sb->ops, sb->len}};
            lm_tell(self, m->src, LM_MT_JOB_STATS_REPLY, &rp);
        } else if (!r->ended) {
            /* gone without final counters (it failed at its start): no answer */
            lm_rt_tell_as(lm_actor_rt(self), m->src, sb->addr, LM_MT_JOB_STATS, &q);
        }
    }
}

static void
tm_job_free(tm_job *j)
{
    lm_job_release(j->job);
    free(j->workers);
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
            if (ch->subtasks[i].actor != 0) { /* 0: not spawned (yet) */
                lm_tell(self, ch->subtasks[i], type, payload);
            }
        }
    }
}

static void
stop_all(lm_actor *self, tm_job *j, const char *why)
{
    for (uint32_t c = 0; c < j->job->nchains; c++) {
        for (uint32_t i = 0; i < j->job->chains[c].parallelism; i++) {
            if (j->job->chains[c].subtasks[i].actor != 0) {
                lm_stop(lm_actor_rt(self), j->job->chains[c].subtasks[i], why);
            }
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
    stats_end(s, j->stats);
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

/* --- deploying ------------------------------------------------------------ */

/* SPAWNED's list of subtasks: 20 bytes each, chain u32, index u32 and the
 * address (LM_ADDR_WIRE_SIZE bytes), little-endian. */
#define SPAWNED_REC (8 + LM_ADDR_WIRE_SIZE)

static void
spawned_rec_put(uint8_t *p, uint32_t chain, uint32_t index, lm_addr a)
{
    for (int b = 0; b < 4; b++) {
        p[b] = (uint8_t)(chain >> (8 * b));
        p[4 + b] = (uint8_t)(index >> (8 * b));
    }
    lm_addr_list_put(p + 8, &a, 1);
}

/* Record k of the list (the caller checks k < list.len / SPAWNED_REC). */
static void
spawned_rec_get(lm_bytes list, uint32_t k, uint32_t *chain, uint32_t *index, lm_addr *a)
{
    const uint8_t *p = list.ptr + (size_t)k * SPAWNED_REC;

    *chain = *index = 0;
    for (int b = 0; b < 4; b++) {
        *chain |= (uint32_t)p[b] << (8 * b);
        *index |= (uint32_t)p[4 + b] << (8 * b);
    }
    *a = lm_addr_list_get((lm_bytes){p + 8, LM_ADDR_WIRE_SIZE}, 0);
}

/* Makes this node's copy of a job from its plan and settings. */
static int
job_make(const char *id, lm_bytes plan_bin, lm_str ckdir, uint64_t restore_epoch, uint32_t credit,
         lm_addr tm, lm_job **out, lm_error *err)
{
    lm_plan *plan;
    lm_job *job;
    int rv;

    if ((rv = lm_plan_load_msgpack(plan_bin.ptr, plan_bin.len, NULL, &plan, err)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_job_new(id, plan, &job)) != LM_OK) {
        return lm_error_set(err, rv, "%s", lm_strerror(rv));
    }
    free(job->checkpoint_dir);
    job->checkpoint_dir = strndup(ckdir.ptr, ckdir.len);
    job->restore_epoch = restore_epoch;
    job->credit = credit > 0 ? credit : DEFAULT_CREDIT;
    job->tm = tm;
    if (job->checkpoint_dir == NULL) {
        lm_job_release(job);
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    *out = job;
    return LM_OK;
}

/* Subtasks of worker w's share of the job (nw workers). */
static uint32_t
share_size(const lm_job *job, uint32_t nw, uint32_t w)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < job->nchains; c++) {
        for (uint32_t i = 0; i < job->chains[c].parallelism; i++) {
            n += i % nw == w;
        }
    }
    return n;
}

/* Spawns this node's share of the job's subtasks: subtask i of every chain
 * where i mod nw is w (so forward edges stay on one node), recording
 * their addresses. *count gets how many. Subtask i goes on loop i mod
 * loops, with subtask i of the other chains, which it mostly talks to
 * (phase one: they exist and open their operators, restoring their
 * tables; phase two, once every address is known: START). */
static int
spawn_share(lm_actor *self, lm_job *job, uint32_t nw, uint32_t w, tm_stats *rec, uint32_t *count,
            char *why, size_t cap)
{
    uint32_t loops = (uint32_t)lm_rt_loop_count(lm_actor_rt(self));

    *count = 0;
    for (uint32_t c = 0; c < job->nchains; c++) {
        lm_chain *ch = &job->chains[c];
        for (uint32_t i = 0; i < ch->parallelism; i++) {
            lm_subtask_arg *a;
            lm_spawn_opts so = LM_SPAWN_DEFAULTS;
            int rv;
            if (i % nw != w) {
                continue;
            }
            if ((a = malloc(sizeof(*a))) == NULL) {
                snprintf(why, cap, "out of memory");
                return LM_ENOMEM;
            }
            lm_job_retain(job); /* the subtask's reference */
            *a = (lm_subtask_arg){job, c, i, lm_actor_addr(self)};
            so.loop = (int)(i % loops); /* subtask i of every chain on one loop */
            if ((rv = lm_actor_spawn(self, &lm_subtask_type, a, &so, &ch->subtasks[i])) != LM_OK) {
                lm_job_release(job);
                free(a);
                snprintf(why, cap, "cannot start a subtask: %s", lm_strerror(rv));
                return rv;
            }
            if (rec != NULL && rec->nsubs < rec->cap) {
                rec->subs[rec->nsubs++] = (tm_sub){c, i, ch->subtasks[i], NULL, 0};
            }
            (*count)++;
        }
    }
    return LM_OK;
}

/* Sends START to the job's subtasks on this node. */
static void
start_local(lm_actor *self, lm_job *job)
{
    lm_start_msg st = {lm_str_c(job->id)};
    uint32_t node = lm_rt_node(lm_actor_rt(self));

    for (uint32_t c = 0; c < job->nchains; c++) {
        for (uint32_t i = 0; i < job->chains[c].parallelism; i++) {
            if (job->chains[c].subtasks[i].node == node) {
                lm_tell(self, job->chains[c].subtasks[i], LM_MT_START, &st);
            }
        }
    }
}

/* Keeps the heartbeat timer running while distributed jobs exist. */
static void
heartbeat_need(lm_actor *self, tm_state *s)
{
    if (s->heartbeat == 0) {
        lm_timer_start(self, HEARTBEAT_MS, HEARTBEAT_MS, (uint64_t)TAG_HEARTBEAT << 32,
                       &s->heartbeat);
    }
}

/* Every subtask exists: wire the other workers, start ours, run. */
static void
job_run(lm_actor *self, tm_job *j)
{
    lm_job *job = j->job;

    if (j->nworkers > 0) {
        uint32_t n = 0, k = 0;
        uint8_t *tab;
        for (uint32_t c = 0; c < job->nchains; c++) {
            n += job->chains[c].parallelism;
        }
        if ((tab = malloc((size_t)n * LM_ADDR_WIRE_SIZE + 1)) == NULL) {
            end_job(self, j, LM_JOB_FAILED, "out of memory");
            return;
        }
        for (uint32_t c = 0; c < job->nchains; c++) {
            lm_addr_list_put(tab + (size_t)k * LM_ADDR_WIRE_SIZE, job->chains[c].subtasks,
                             job->chains[c].parallelism);
            k += job->chains[c].parallelism;
        }
        for (uint32_t w = 0; w < j->nworkers; w++) {
            lm_wire_msg wm = {lm_str_c(job->id), {tab, n * LM_ADDR_WIRE_SIZE}};
            lm_tell(self, j->workers[w].tm, LM_MT_WIRE, &wm);
        }
        free(tab);
    }
    start_local(self, job);
    if (j->interval_ms > 0 && job->checkpoint_dir[0] != '\0') {
        lm_timer_start(self, j->interval_ms, j->interval_ms,
                       ((uint64_t)TAG_CHECKPOINT << 32) | (uint32_t)(uintptr_t)j, &j->timer);
    }
    LM_LOG(LM_LOG_INFO, "job %s: %u operators in %u chains, %u subtasks on %u task managers%s",
           job->id, job->plan->nops, job->nchains, j->nsubtasks, j->nworkers + 1,
           job->restore_epoch > 0 ? " (restoring)" : "");
    status(self, j, LM_JOB_RUNNING, job->restore_epoch > 0 ? "restored" : "");
}

static void
deploy_refuse(lm_actor *self, lm_addr observer, lm_str job, const char *why)
{
    lm_job_status_msg st = {job, LM_JOB_FAILED, lm_str_c(why), 0, 0, 0, 0, 0, 0};
    lm_tell(self, observer, LM_MT_JOB_STATUS, &st);
}

static int
deploy(lm_actor *self, tm_state *s, lm_msg *m)
{
    lm_deploy_msg d;
    lm_error err;
    lm_job *job;
    tm_job *j;
    uint32_t nw, mine;
    char id[256], reason[LM_ERROR_MSG_MAX + 700];
    int rv;

    if ((rv = lm_decode_deploy(m, &d, &err)) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "bad DEPLOY from %u: %s", m->src.node, err.msg);
        return LM_OK;
    }
    snprintf(id, sizeof(id), "%.*s", (int)d.job.len, d.job.ptr);
    if (id[0] == '\0' || strchr(id, '/') != NULL || find_job(s, d.job.ptr, d.job.len) != NULL) {
        deploy_refuse(self, d.observer, d.job,
                      id[0] == '\0' || strchr(id, '/') != NULL ? "bad job id"
                                                               : "a job with this id is running");
        return LM_OK;
    }
    if (d.workers.len % LM_ADDR_WIRE_SIZE != 0 || d.workers.len / LM_ADDR_WIRE_SIZE > 1024) {
        deploy_refuse(self, d.observer, d.job, "bad list of workers");
        return LM_OK;
    }
    if ((rv = job_make(id, d.plan, d.checkpoint_dir, d.restore_epoch, d.credit, lm_actor_addr(self),
                       &job, &err)) != LM_OK) {
        deploy_refuse(self, d.observer, d.job, rv == LM_EINVAL ? err.msg : lm_strerror(rv));
        return LM_OK;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
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
    j->nworkers = d.workers.len / LM_ADDR_WIRE_SIZE;
    if ((j->nworkers > 0 && (j->workers = calloc(j->nworkers, sizeof(tm_worker))) == NULL) ||
        align_init(j) != LM_OK) {
        end_job(self, j, LM_JOB_FAILED, "out of memory");
        maybe_free(s, j);
        return LM_OK;
    }
    for (uint32_t w = 0; w < j->nworkers; w++) {
        j->workers[w].tm = lm_addr_list_get(d.workers, w);
        j->workers[w].seen_ms = lm_clock_mono_ms();
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
    nw = j->nworkers + 1;
    j->stats = stats_new(s, id, share_size(job, nw, 0));
    rv = spawn_share(self, job, nw, 0, j->stats, &mine, reason, sizeof(reason));
    j->nsubtasks += mine;
    j->live += mine;
    if (rv != LM_OK) {
        end_job(self, j, LM_JOB_FAILED, reason);
        maybe_free(s, j);
        return LM_OK;
    }
    if (j->nworkers == 0) {
        job_run(self, j);
        return LM_OK;
    }
    /* The other workers spawn their shares and say where they are. */
    {
        lm_spawn_msg sp = {d.job, d.plan, d.checkpoint_dir, d.restore_epoch, d.credit, nw, 0};
        for (uint32_t w = 0; w < j->nworkers; w++) {
            sp.worker = w + 1;
            lm_tell(self, j->workers[w].tm, LM_MT_SPAWN, &sp);
        }
        j->pending = j->nworkers;
        heartbeat_need(self, s);
    }
    return LM_OK;
}

/* Stops the subtasks of a SPAWNED list that are on node (the sender's:
 * a bad list must not stop actors elsewhere). */
static void
stop_listed(lm_actor *self, lm_bytes list, uint32_t node, const char *why)
{
    for (uint32_t k = 0; k < list.len / SPAWNED_REC; k++) {
        uint32_t c, i;
        lm_addr a;
        spawned_rec_get(list, k, &c, &i, &a);
        if (a.node == node && a.actor != 0) {
            lm_stop(lm_actor_rt(self), a, why);
        }
    }
}

/* Coordinator: a worker's share exists (or could not). */
static int
spawned(lm_actor *self, tm_state *s, lm_msg *m)
{
    lm_spawned_msg sp;
    tm_job *j;
    uint32_t w, n, c, i;
    lm_addr a;

    if (lm_decode_spawned(m, &sp, NULL) != LM_OK) {
        return LM_OK;
    }
    n = sp.subtasks.len / SPAWNED_REC;
    if ((j = find_job(s, sp.job.ptr, sp.job.len)) == NULL) {
        /* the job ended before this share was made: stop it, or its
         * subtasks wait for a START for good */
        stop_listed(self, sp.subtasks, m->src.node, "job over");
        return LM_OK;
    }
    for (w = 0; w < j->nworkers && !lm_addr_eq(j->workers[w].tm, m->src); w++) {
    }
    if (w == j->nworkers || j->workers[w].spawned) {
        return LM_OK;
    }
    j->workers[w].spawned = true;
    j->workers[w].seen_ms = lm_clock_mono_ms();
    j->pending--;
    if (sp.code != LM_OK || sp.subtasks.len % SPAWNED_REC != 0) {
        char reason[LM_ERROR_MSG_MAX];
        snprintf(reason, sizeof(reason), "task manager on node %u: %.*s", m->src.node,
                 (int)sp.reason.len, sp.reason.ptr);
        end_job(self, j, LM_JOB_FAILED, sp.code != LM_OK ? reason : "bad SPAWNED");
    }
    for (uint32_t k = 0; k < n; k++) {
        spawned_rec_get(sp.subtasks, k, &c, &i, &a);
        /* only slots of this worker's share, each once: a bad list must
         * not overwrite other subtasks or count one twice */
        if (c >= j->job->nchains || i >= j->job->chains[c].parallelism ||
            i % (j->nworkers + 1) != w + 1 || j->job->chains[c].subtasks[i].actor != 0) {
            continue;
        }
        j->job->chains[c].subtasks[i] = a;
        j->nsubtasks++;
        j->live++;
        j->workers[w].live++;
    }
    if (j->over) {
        /* failed meanwhile: stop what this worker made */
        stop_listed(self, sp.subtasks, m->src.node, "job over");
        maybe_free(s, j);
        return LM_OK;
    }
    if (j->pending == 0) {
        job_run(self, j);
    }
    return LM_OK;
}

/* Stops this node's subtasks of a hosted share (once). */
static void
hosted_stop(lm_actor *self, tm_hosted *h, const char *why)
{
    for (uint32_t c = 0; c < h->job->nchains; c++) {
        for (uint32_t i = 0; i < h->job->chains[c].parallelism; i++) {
            lm_addr a = h->job->chains[c].subtasks[i];
            if (a.node == lm_rt_node(lm_actor_rt(self))) {
                lm_stop(lm_actor_rt(self), a, why);
            }
        }
    }
    h->seen_ms = INT64_MAX / 2;
}

/* Forgets a hosted share (its subtasks here have exited, or none was made). */
static void
hosted_free(tm_state *s, tm_hosted *h)
{
    tm_hosted **pp;

    for (pp = &s->hosted; *pp != h; pp = &(*pp)->next) {
    }
    *pp = h->next;
    stats_end(s, h->stats);
    lm_job_release(h->job);
    free(h);
}

/* Worker: run a share of a job another task manager coordinates. */
static int
spawn_here(lm_actor *self, tm_state *s, lm_msg *m)
{
    lm_spawn_msg sp;
    lm_error err;
    lm_job *job = NULL;
    tm_hosted *h;
    uint32_t mine = 0, k = 0;
    uint8_t *list = NULL;
    char id[256], reason[LM_ERROR_MSG_MAX];
    int rv;

    if (lm_decode_spawn(m, &sp, &err) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "bad SPAWN from %u: %s", m->src.node, err.msg);
        return LM_OK;
    }
    snprintf(id, sizeof(id), "%.*s", (int)sp.job.len, sp.job.ptr);
    reason[0] = '\0';
    if (sp.nworkers < 2 || sp.worker == 0 || sp.worker >= sp.nworkers) {
        rv = LM_EINVAL;
        snprintf(reason, sizeof(reason), "bad placement (worker %u of %u)", sp.worker, sp.nworkers);
    } else if ((rv = job_make(id, sp.plan, sp.checkpoint_dir, sp.restore_epoch, sp.credit, m->src,
                              &job, &err)) != LM_OK) {
        snprintf(reason, sizeof(reason), "%s", err.msg);
    } else if ((h = calloc(1, sizeof(*h))) == NULL) {
        rv = LM_ENOMEM;
        snprintf(reason, sizeof(reason), "out of memory");
    } else {
        h->job = job;
        h->coord = m->src;
        h->seen_ms = lm_clock_mono_ms();
        h->next = s->hosted;
        s->hosted = h;
        h->stats = stats_new(s, id, share_size(job, sp.nworkers, sp.worker));
        rv =
            spawn_share(self, job, sp.nworkers, sp.worker, h->stats, &mine, reason, sizeof(reason));
        h->live = mine;
        job = NULL; /* the record holds it */
        if (rv == LM_OK && (list = malloc((size_t)mine * SPAWNED_REC + 1)) == NULL) {
            rv = LM_ENOMEM;
            snprintf(reason, sizeof(reason), "out of memory");
        }
        if (rv != LM_OK) {
            /* The coordinator fails the job on hearing: stop what was made
             * here (the record goes with the last of it), or drop the
             * record now when nothing was. */
            hosted_stop(self, h, "the job could not start");
            if (mine == 0) {
                hosted_free(s, h);
            }
        } else {
            heartbeat_need(self, s);
            for (uint32_t c = 0; c < h->job->nchains; c++) {
                for (uint32_t i = 0; i < h->job->chains[c].parallelism; i++) {
                    if (i % sp.nworkers == sp.worker && k < mine) {
                        spawned_rec_put(list + (size_t)k * SPAWNED_REC, c, i,
                                        h->job->chains[c].subtasks[i]);
                        k++;
                    }
                }
            }
        }
    }
    lm_job_release(job);
    {
        lm_spawned_msg rep = {sp.job, rv, lm_str_c(reason), {list, k * SPAWNED_REC}};
        lm_tell(self, m->src, LM_MT_SPAWNED, &rep);
    }
    free(list);
    return LM_OK;
}

static tm_hosted *
hosted_find(tm_state *s, const char *id, size_t len, lm_addr coord)
{
    for (tm_hosted *h = s->hosted; h != NULL; h = h->next) {
        if (lm_addr_eq(h->coord, coord) && strlen(h->job->id) == len &&
            memcmp(h->job->id, id, len) == 0) {
            return h;
        }
    }
    return NULL;
}

/* Worker: the coordinator says where every subtask is: start ours. */
static int
wire_here(lm_actor *self, tm_state *s, lm_msg *m)
{
    lm_wire_msg w;
    tm_hosted *h;
    uint32_t n = 0, k = 0;

    if (lm_decode_wire(m, &w, NULL) != LM_OK ||
        (h = hosted_find(s, w.job.ptr, w.job.len, m->src)) == NULL) {
        return LM_OK;
    }
    if (h->wired) {
        return LM_OK; /* a repeat: our subtasks have their START */
    }
    for (uint32_t c = 0; c < h->job->nchains; c++) {
        n += h->job->chains[c].parallelism;
    }
    if (w.subtasks.len != (uint64_t)n * LM_ADDR_WIRE_SIZE) {
        LM_LOG(LM_LOG_ERROR, "job %s: WIRE from %u lists %u bytes of subtasks, not %u", h->job->id,
               m->src.node, w.subtasks.len, n * LM_ADDR_WIRE_SIZE);
        return LM_OK;
    }
    for (uint32_t c = 0; c < h->job->nchains; c++) {
        for (uint32_t i = 0; i < h->job->chains[c].parallelism; i++, k++) {
            h->job->chains[c].subtasks[i] = lm_addr_list_get(w.subtasks, k);
        }
    }
    h->wired = true;
    start_local(self, h->job);
    return LM_OK;
}

/* Worker: one of our subtasks of a hosted job exited: the coordinator
 * hears of it as of its own; the record goes with the last one. */
static bool
hosted_child_exit(lm_actor *self, tm_state *s, const lm_child_exit_msg *ce)
{
    for (tm_hosted *h = s->hosted; h != NULL; h = h->next) {
        for (uint32_t c = 0; c < h->job->nchains; c++) {
            for (uint32_t i = 0; i < h->job->chains[c].parallelism; i++) {
                if (lm_addr_eq(h->job->chains[c].subtasks[i], ce->child)) {
                    lm_tell(self, h->coord, LM_MT_CHILD_EXIT, ce);
                    if (--h->live == 0) {
                        hosted_free(s, h);
                    }
                    return true;
                }
            }
        }
    }
    return false;
}

/* Heartbeat: PING the nodes of the other task managers of distributed
 * jobs; a node that has not answered for LOST_MS is lost. */
static void
heartbeat(lm_actor *self, tm_state *s)
{
    int64_t now = lm_clock_mono_ms();
    lm_ping_msg p = {++s->ping_seq, 0, {NULL, 0}};
    bool any = false;

    for (tm_job *j = s->jobs, *nx; j != NULL; j = nx) {
        nx = j->next; /* j may go */
        for (uint32_t w = 0; w < j->nworkers && !j->over; w++) {
            tm_worker *wk = &j->workers[w];
            any = true;
            if (now - wk->seen_ms > LOST_MS) {
                char reason[128];
                snprintf(reason, sizeof(reason), "worker node %u stopped answering", wk->tm.node);
                /* its subtasks will not say they exited */
                j->live -= wk->live;
                wk->live = 0;
                end_job(self, j, LM_JOB_FAILED, reason);
                maybe_free(s, j);
                break;
            }
            lm_tell(self, (lm_addr){wk->tm.node, 0}, LM_MT_PING, &p);
        }
    }
    for (tm_hosted *h = s->hosted; h != NULL; h = h->next) {
        any = true;
        if (now - h->seen_ms > LOST_MS) {
            /* the coordinator is gone: stop our part (once) */
            hosted_stop(self, h, "the coordinating node was lost");
            continue;
        }
        lm_tell(self, (lm_addr){h->coord.node, 0}, LM_MT_PING, &p);
    }
    if (!any && s->heartbeat != 0) {
        lm_timer_cancel(self, s->heartbeat);
        s->heartbeat = 0;
    }
}

/* A node answered: every job that waits on it hears. */
static void
node_seen(tm_state *s, uint32_t node)
{
    int64_t now = lm_clock_mono_ms();
    for (tm_job *j = s->jobs; j != NULL; j = j->next) {
        for (uint32_t w = 0; w < j->nworkers; w++) {
            if (j->workers[w].tm.node == node) {
                j->workers[w].seen_ms = now;
            }
        }
    }
    for (tm_hosted *h = s->hosted; h != NULL; h = h->next) {
        if (h->coord.node == node && h->seen_ms != INT64_MAX / 2) {
            h->seen_ms = now;
        }
    }
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
    case LM_MT_SPAWN: return spawn_here(self, s, m);
    case LM_MT_SPAWNED: return spawned(self, s, m);
    case LM_MT_WIRE: return wire_here(self, s, m);
    case LM_MT_PONG: node_seen(s, m->src.node); return LM_OK;
    case LM_MT_JOB_STATS: job_stats(self, s, m); return LM_OK;
    case LM_MT_JOB_STATS_REPLY: stats_final(s, m); return LM_OK;
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
        if (lm_decode_child_exit(m, &ce, NULL) != LM_OK || hosted_child_exit(self, s, &ce) ||
            (j = job_of_subtask(s, ce.child)) == NULL) {
            return LM_OK;
        }
        j->live--;
        for (uint32_t w = 0; w < j->nworkers; w++) {
            if (j->workers[w].tm.node == ce.child.node && j->workers[w].live > 0) {
                j->workers[w].live--;
                break;
            }
        }
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
        if (lm_decode_cancel(m, &c, NULL) != LM_OK) {
            return LM_OK;
        }
        if (c.job.len == 1 && c.job.ptr[0] == '*') {
            /* every job here: the ones coordinated and the shares hosted */
            tm_job *next;
            for (j = s->jobs; j != NULL; j = next) {
                next = j->next;
                end_job(self, j, LM_JOB_CANCELED, "canceled with every job of the worker");
                maybe_free(s, j);
            }
            for (tm_hosted *h = s->hosted; h != NULL; h = h->next) {
                hosted_stop(self, h, "canceled with every job of the worker");
            }
        } else if ((j = find_job(s, c.job.ptr, c.job.len)) != NULL) {
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
        if (t.id == s->heartbeat) {
            heartbeat(self, s);
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
    while (s->hosted != NULL) {
        tm_hosted *h = s->hosted;
        s->hosted = h->next;
        lm_job_release(h->job);
        free(h);
    }
    while (s->stats != NULL) {
        tm_stats *r = s->stats;
        s->stats = r->next;
        stats_free(r);
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
        uint8_t *w = calloc((size_t)opts->nworkers * LM_ADDR_WIRE_SIZE + 1, 1);
        lm_deploy_msg d = {lm_str_c(h->job),
                           {pm->data, (uint32_t)pm->len},
                           lm_str_c(opts->checkpoint_dir != NULL ? opts->checkpoint_dir : ""),
                           opts->checkpoint_interval_ms,
                           opts->restore_epoch,
                           opts->credit,
                           h->watcher,
                           {w, opts->nworkers * LM_ADDR_WIRE_SIZE}};
        if (w != NULL && opts->nworkers > 0) {
            lm_addr_list_put(w, opts->workers, opts->nworkers);
        }
        rv = w == NULL ? LM_ENOMEM : lm_rt_tell_as(rt, h->watcher, tm, LM_MT_DEPLOY, &d);
        free(w);
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
