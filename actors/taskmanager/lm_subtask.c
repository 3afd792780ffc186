/*
 * lm_subtask.c: the subtask actor: one chain of operators for one
 * parallel index.
 *
 * Inputs. Data messages (BATCH, WATERMARK, BARRIER, END_OF_STREAM) arrive
 * on input channels. A batch goes to the head operator and, once handled,
 * earns its sender one credit back. The input watermark is the minimum over
 * the channels that have neither ended nor gone idle. A barrier holds its
 * channel (later messages wait in the channel's hold queue) until every
 * live channel has delivered it; then the operators prepare (on_barrier),
 * their tables are snapshotted, the barrier goes out on every output, the
 * task manager gets an acknowledgement, and the held messages are handled
 * in order. When every channel has ended, the operators flush (on_end) and
 * END_OF_STREAM goes out.
 *
 * Outputs. The tail's batches are routed per output edge: forward to one
 * channel, broadcast to all, shuffle by the hash of the key columns into
 * one builder batch per channel, sent when full (and before anything that
 * must follow the rows: watermarks, barriers, the end). A channel sends
 * only while it has credit; otherwise messages queue on it, in order, and
 * the subtask is blocked: it handles no further input (queuing it, which
 * the credit it granted bounds) and a source stops producing, until the
 * queues drain. That is the backpressure.
 *
 * Sources produce a batch per WAKE the subtask sends itself, so that other
 * actors on the loop run between batches.
 *
 * Counters. JOB_STATS (passed on by the task manager with the asker as
 * its source) is answered with JOB_STATS_REPLY: rows in and out of each
 * operator of the chain. Once the subtask has ended (or when it stops
 * before that), it sends its final counters in the same form to the task
 * manager that spawned it, which answers for it from then on.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_job.h"
#include "lm_log.h"
#include "lm_op.h"
#include "lm_proto.h"
#include "lm_rt.h"
#include "lm_storage.h"

#define TICK_MS      100 /* period of on_tick and of flushing partial batches */
#define WAKE_PRODUCE 1   /* WAKE tag: produce the next batch */
#define TIMER_TICK   0   /* timer tags */
#define TIMER_WAKE   1

typedef struct in_chan {
    uint32_t port;     /* head input port */
    lm_addr upstream;  /* sending subtask */
    uint32_t up_chan;  /* its output channel index (for CREDIT) */
    int64_t wm;        /* last watermark; INT64_MIN before any */
    bool idle;         /* the sender said it is idle */
    bool ended;        /* END_OF_STREAM seen */
    bool held;         /* delivered the barrier being aligned */
    lm_msg *hold_head; /* messages after that barrier, in order */
    lm_msg *hold_tail;
} in_chan;

typedef struct out_chan {
    lm_addr dst;       /* receiving subtask */
    uint32_t dst_chan; /* its input channel index */
    uint32_t credit;   /* batches it may still take */
    lm_msg *q_head;    /* messages waiting for credit, in order */
    lm_msg *q_tail;
    uint32_t qbatches; /* batches among them */
    lm_batch *builder; /* shuffle: rows gathered for this channel */
} out_chan;

typedef struct out_edge {
    lm_edge_kind kind;    /* routing */
    const uint32_t *keys; /* shuffle keys */
    uint32_t nkeys;
    out_chan *ch; /* channels of this edge */
    uint32_t nch;
    lm_schema *schema; /* rows' schema */
} out_edge;

typedef struct table_reg {
    uint32_t op;         /* chain position */
    lm_table *t;         /* the table */
    uint64_t prev_epoch; /* epoch of its last snapshot file, 0: none */
} table_reg;

typedef struct lm_subtask lm_subtask;

struct lm_subtask {
    lm_job *job;     /* shared */
    lm_addr tm;      /* the task manager that spawned me (gets my final counters) */
    bool stats_sent; /* it has them */
    lm_chain *chain; /* my chain */
    uint32_t index;  /* my subtask index */
    lm_actor *self;  /* my actor */
    char label[256]; /* "op_id[3]" for messages */
    lm_op *ops;      /* chain instances, head first */
    uint32_t nops;
    in_chan *in; /* input channels */
    uint32_t nin;
    out_edge *out; /* output edges */
    uint32_t nout_edges;
    out_chan **all_out; /* output channels by global index */
    uint32_t nout;
    uint32_t blocked;  /* output channels with batches waiting */
    lm_msg *pend_head; /* inputs waiting while blocked */
    lm_msg *pend_tail;
    bool started;           /* START came: channels are wired */
    bool source;            /* the head produces */
    bool ended;             /* all input consumed (or produced), EOS sent */
    bool wake_pending;      /* a WAKE is on its way */
    int64_t in_wm;          /* input watermark given to the head */
    bool out_idle;          /* told the outputs we are idle */
    uint64_t aligning;      /* epoch being aligned, 0: none */
    uint32_t kind_aligning; /* its barrier kind */
    bool stop_after;        /* the barrier asks to stop afterwards */
    int64_t barrier_ts;     /* its trigger time */
    table_reg *tables;      /* state tables of the chain */
    uint32_t ntables;
    uint64_t tick_timer;   /* periodic tick */
    uint64_t events;       /* source events consumed (all kinds) */
    uint64_t buffered;     /* batches held now: inputs waiting, outputs waiting for credit */
    uint64_t max_buffered; /* its high-water mark */
    /* shuffle scratch, kept from batch to batch: row hashes (then channels),
     * row indices grouped by channel, per-channel counts */
    uint64_t *sh_hash;
    uint32_t *sh_idx;
    uint32_t sh_rows; /* room in sh_hash and sh_idx */
    uint32_t *sh_cnt;
    uint32_t sh_chans;           /* room in sh_cnt */
    int64_t align_max;           /* sources: produce only while the output watermark is <= this */
    int64_t reported_wm;         /* sources: last watermark sent in SOURCE_PROGRESS */
    bool reported_idle;          /* and the idleness sent with it */
    char fail[LM_ERROR_MSG_MAX]; /* why an operator failed */
};

/* --- small lists of messages (linked through qnode.next) ------------- */

static void
list_push(lm_msg **head, lm_msg **tail, lm_msg *m)
{
    atomic_store_explicit(&m->qnode.next, NULL, memory_order_relaxed);
    if (*tail != NULL) {
        atomic_store_explicit(&(*tail)->qnode.next, &m->qnode, memory_order_relaxed);
    } else {
        *head = m;
    }
    *tail = m;
}

static lm_msg *
list_pop(lm_msg **head, lm_msg **tail)
{
    lm_msg *m = *head;
    if (m != NULL) {
        *head = (lm_msg *)atomic_load_explicit(&m->qnode.next, memory_order_relaxed);
        if (*head == NULL) {
            *tail = NULL;
        }
    }
    return m;
}

static void
list_free(lm_msg **head, lm_msg **tail)
{
    lm_msg *m;
    while ((m = list_pop(head, tail)) != NULL) {
        lm_msg_release(m);
    }
}

/* Keeps an input message for later (counted when it is a batch). */
static void
keep_input(lm_subtask *st, lm_msg **head, lm_msg **tail, lm_msg *m)
{
    list_push(head, tail, m);
    if (m->type == LM_MT_BATCH && ++st->buffered > st->max_buffered) {
        st->max_buffered = st->buffered;
    }
}

/* Takes back the oldest kept input message, or NULL. */
static lm_msg *
take_input(lm_subtask *st, lm_msg **head, lm_msg **tail)
{
    lm_msg *m = list_pop(head, tail);
    if (m != NULL && m->type == LM_MT_BATCH) {
        st->buffered--;
    }
    return m;
}

/* --- failures -------------------------------------------------------- */

int
lm_op_fail(lm_op *op, int code, const char *fmt, ...)
{
    lm_subtask *st = op->task;
    char what[LM_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(st->fail, sizeof(st->fail), "operator '%.100s' subtask %u: %.380s", op->id,
             op->subtask, what);
    return code;
}

/* Fails the actor with the recorded reason (or a generic one). */
static int
failed(lm_subtask *st, int code, const char *what)
{
    if (st->fail[0] == '\0') {
        snprintf(st->fail, sizeof(st->fail), "%.100s subtask %u: %.200s: %s", st->label, st->index,
                 what, lm_strerror(code));
    }
    return lm_actor_fail(st->self, code, "%s", st->fail);
}

/* --- sending --------------------------------------------------------- */

static int
send_msg(lm_subtask *st, lm_msg *m)
{
    int rv = lm_send(lm_actor_rt(st->self), m);
    if (rv != LM_OK) {
        lm_msg_release(m);
    }
    return rv;
}

/* Sends m on channel c now if it may, else queues it. Consumes m. A
 * batch needs credit; anything else only needs the queue to be empty. */
static int
chan_send(lm_subtask *st, out_chan *c, lm_msg *m)
{
    bool batch = m->type == LM_MT_BATCH;

    if (c->q_head == NULL && (!batch || c->credit > 0)) {
        if (batch) {
            c->credit--;
        }
        return send_msg(st, m);
    }
    list_push(&c->q_head, &c->q_tail, m);
    if (batch && c->qbatches++ == 0) {
        st->blocked++;
    }
    if (batch && ++st->buffered > st->max_buffered) {
        st->max_buffered = st->buffered;
    }
    return LM_OK;
}

/* Sends what credit now allows from c's queue. */
static int
chan_drain(lm_subtask *st, out_chan *c)
{
    while (c->q_head != NULL) {
        bool batch = c->q_head->type == LM_MT_BATCH;
        int rv;
        if (batch && c->credit == 0) {
            return LM_OK;
        }
        lm_msg *m = list_pop(&c->q_head, &c->q_tail);
        if (batch) {
            c->credit--;
            st->buffered--;
            if (--c->qbatches == 0) {
                st->blocked--;
            }
        }
        if ((rv = send_msg(st, m)) != LM_OK) {
            return rv;
        }
    }
    return LM_OK;
}

static int
send_batch(lm_subtask *st, out_chan *c, const lm_batch *b)
{
    lm_batch_msg bm = {c->dst_chan, (lm_batch *)b};
    lm_msg *m;
    int rv = lm_proto_encode(LM_MT_BATCH, lm_actor_addr(st->self), c->dst, &bm, &m);

    return rv != LM_OK ? rv : chan_send(st, c, m);
}

/* Sends the rows gathered for c, if any. */
static int
flush_builder(lm_subtask *st, out_chan *c)
{
    int rv;

    if (c->builder == NULL || c->builder->nrows == 0) {
        return LM_OK;
    }
    rv = send_batch(st, c, c->builder);
    lm_batch_clear(c->builder);
    return rv;
}

static int
flush_builders(lm_subtask *st)
{
    for (uint32_t i = 0; i < st->nout; i++) {
        int rv = flush_builder(st, st->all_out[i]);
        if (rv != LM_OK) {
            return rv;
        }
    }
    return LM_OK;
}

/* Makes the shuffle scratch hold rows rows and chans channels. */
static int
shuffle_room(lm_subtask *st, uint32_t rows, uint32_t chans)
{
    if (rows + 1 > st->sh_rows) {
        uint64_t *h = realloc(st->sh_hash, sizeof(uint64_t) * (rows + 1));
        if (h == NULL) {
            return LM_ENOMEM;
        }
        st->sh_hash = h;
        uint32_t *idx = realloc(st->sh_idx, sizeof(uint32_t) * (rows + 1));
        if (idx == NULL) {
            return LM_ENOMEM;
        }
        st->sh_idx = idx;
        st->sh_rows = rows + 1;
    }
    if (chans + 1 > st->sh_chans) {
        uint32_t *cnt = realloc(st->sh_cnt, sizeof(uint32_t) * (chans + 1));
        if (cnt == NULL) {
            return LM_ENOMEM;
        }
        st->sh_cnt = cnt;
        st->sh_chans = chans + 1;
    }
    return LM_OK;
}

/* Routes a batch of the tail to the outputs. Consumes b. */
static int
route(lm_subtask *st, lm_batch *b)
{
    int rv = LM_OK;
    uint32_t nrows = b->nrows;

    for (uint32_t e = 0; e < st->nout_edges && rv == LM_OK; e++) {
        out_edge *oe = &st->out[e];
        if (oe->kind == LM_EDGE_FORWARD || (oe->kind == LM_EDGE_SHUFFLE && oe->nch == 1)) {
            rv = send_batch(st, &oe->ch[0], b);
        } else if (oe->kind == LM_EDGE_BROADCAST) {
            for (uint32_t k = 0; k < oe->nch && rv == LM_OK; k++) {
                rv = send_batch(st, &oe->ch[k], b);
            }
        } else {
            /* Shuffle: group the row indices by channel, then gather. */
            if ((rv = shuffle_room(st, nrows, oe->nch)) != LM_OK) {
                break;
            }
            uint64_t *h = st->sh_hash;
            uint32_t *idx = st->sh_idx, *cnt = st->sh_cnt;
            memset(cnt, 0, sizeof(uint32_t) * (oe->nch + 1));
            lm_batch_hash_rows(b, oe->keys, oe->nkeys, h);
            for (uint32_t r = 0; r < nrows; r++) {
                /* multiply-shift: the high bits of the hash pick the channel */
                h[r] = (uint64_t)(((unsigned __int128)h[r] * oe->nch) >> 64);
                cnt[h[r] + 1]++;
            }
            for (uint32_t k = 0; k < oe->nch; k++) {
                cnt[k + 1] += cnt[k];
            }
            for (uint32_t r = 0; r < nrows; r++) {
                idx[cnt[h[r]]++] = r;
            }
            /* cnt[k] is now the end of channel k's run */
            for (uint32_t k = 0, from = 0; k < oe->nch && rv == LM_OK; k++) {
                out_chan *c = &oe->ch[k];
                uint32_t n = cnt[k] - from;
                while (n > 0 && rv == LM_OK) {
                    uint32_t room, take;
                    if (c->builder == NULL &&
                        (rv = lm_batch_new(oe->schema, st->job->plan->batch_rows, &c->builder)) !=
                            LM_OK) {
                        break;
                    }
                    room = st->job->plan->batch_rows - c->builder->nrows;
                    take = n < room ? n : room;
                    if ((rv = lm_batch_gather(c->builder, b, idx + from, take)) != LM_OK) {
                        break;
                    }
                    from += take;
                    n -= take;
                    if (c->builder->nrows >= st->job->plan->batch_rows) {
                        rv = flush_builder(st, c);
                    }
                }
                from = cnt[k];
            }
        }
    }
    lm_batch_free(b);
    return rv;
}

/* Sends a control message (watermark, barrier, end) on every output,
 * after the rows gathered so far. */
static int
broadcast_ctl(lm_subtask *st, uint32_t type, void *payload, uint32_t *chan_field)
{
    int rv = flush_builders(st);

    for (uint32_t i = 0; i < st->nout && rv == LM_OK; i++) {
        out_chan *c = st->all_out[i];
        lm_msg *m;
        *chan_field = c->dst_chan;
        if ((rv = lm_proto_encode(type, lm_actor_addr(st->self), c->dst, payload, &m)) == LM_OK) {
            rv = chan_send(st, c, m);
        }
    }
    return rv;
}

static int
out_watermark(lm_subtask *st, int64_t wm, bool idle)
{
    lm_watermark_msg w = {0, wm, idle};
    return broadcast_ctl(st, LM_MT_WATERMARK, &w, &w.channel);
}

/* --- the chain ------------------------------------------------------- */

int
lm_op_emit(lm_op *op, lm_batch *b)
{
    lm_op *next = op->next;

    if (b->nrows == 0) {
        lm_batch_free(b);
        return LM_OK;
    }
    op->stats.rows_out += b->nrows;
    op->stats.batches_out++;
    if (next != NULL) {
        next->stats.rows_in += b->nrows;
        next->stats.batches_in++;
        return next->kind->on_batch(next, 0, b);
    }
    if (op->kind->sink) {
        lm_batch_free(b);
        return LM_OK;
    }
    /* Rows take the channel back into the receivers' minimum: it may say
     * it is idle again later. */
    op->task->out_idle = false;
    return route(op->task, b);
}

int
lm_op_emit_watermark(lm_op *op, int64_t wm)
{
    lm_op *next = op->next;

    if (wm <= op->watermark) {
        return LM_OK;
    }
    op->watermark = wm;
    if (next != NULL) {
        return next->kind->on_watermark != NULL ? next->kind->on_watermark(next, wm)
                                                : lm_op_emit_watermark(next, wm);
    }
    if (op->kind->sink) {
        return LM_OK;
    }
    op->task->out_idle = false;
    return out_watermark(op->task, wm, false);
}

int
lm_op_emit_idle(lm_op *op)
{
    lm_subtask *st = op->task;
    lm_op *tail = &st->ops[st->nops - 1];

    if (tail->kind->sink || st->out_idle) {
        return LM_OK;
    }
    st->out_idle = true;
    return out_watermark(st, tail->watermark, true);
}

static int
head_watermark(lm_subtask *st, int64_t wm)
{
    lm_op *h = &st->ops[0];
    return h->kind->on_watermark != NULL ? h->kind->on_watermark(h, wm)
                                         : lm_op_emit_watermark(h, wm);
}

int
lm_op_table(lm_op *op, lm_table_kind kind, const char *name, uint32_t value_size, lm_table **out)
{
    lm_subtask *st = op->task;
    table_reg *tr;
    lm_table *t;
    int rv;

    for (uint32_t i = 0; i < st->ntables; i++) {
        if (&st->ops[st->tables[i].op] == op && strcmp(lm_table_name(st->tables[i].t), name) == 0) {
            return lm_op_fail(op, LM_EEXIST, "table '%s' registered twice", name);
        }
    }
    if ((rv = lm_table_new(kind, name, value_size, &t)) != LM_OK) {
        return rv;
    }
    if ((tr = realloc(st->tables, (st->ntables + 1) * sizeof(*tr))) == NULL) {
        lm_table_free(t);
        return LM_ENOMEM;
    }
    st->tables = tr;
    tr = &st->tables[st->ntables++];
    tr->op = (uint32_t)(op - st->ops);
    tr->t = t;
    tr->prev_epoch = 0;
    if (st->job->restore_epoch > 0) {
        /* Read the chain of snapshot files back to a full one, then apply
         * them oldest first. */
        uint64_t chain[LM_TABLE_FULL_EVERY * 4];
        uint32_t n = 0;
        uint64_t e = st->job->restore_epoch;
        lm_error err;
        while (e > 0 && n < sizeof(chain) / sizeof(chain[0])) {
            char path[4096];
            uint8_t *buf;
            size_t len;
            bool full;
            uint64_t prev, ep;
            lm_job_table_path(st->job, e, op->id, name, op->subtask, path, sizeof(path));
            if ((rv = lm_storage_read(path, &buf, &len, &err)) != LM_OK) {
                if (rv == LM_ENOTFOUND && n == 0) {
                    /* The operator had no such table at that checkpoint
                     * (e.g. a new operator): start empty. */
                    e = 0;
                    break;
                }
                return lm_op_fail(op, rv, "restoring table '%s': %s", name, err.msg);
            }
            rv = lm_table_snapshot_info(buf, len, &ep, &full, &prev, &err);
            free(buf);
            if (rv != LM_OK) {
                return lm_op_fail(op, rv, "restoring table '%s' from %s: %s", name, path, err.msg);
            }
            chain[n++] = e;
            e = full ? 0 : prev;
        }
        if (e != 0) {
            return lm_op_fail(op, LM_EPROTO, "restoring table '%s': snapshot chain too long", name);
        }
        for (uint32_t i = n; i > 0; i--) {
            char path[4096];
            uint8_t *buf;
            size_t len;
            lm_job_table_path(st->job, chain[i - 1], op->id, name, op->subtask, path, sizeof(path));
            if ((rv = lm_storage_read(path, &buf, &len, &err)) != LM_OK) {
                return lm_op_fail(op, rv, "restoring table '%s': %s", name, err.msg);
            }
            rv = lm_table_restore(t, buf, len, &err);
            free(buf);
            if (rv != LM_OK) {
                return lm_op_fail(op, rv, "restoring table '%s' from %s: %s", name, path, err.msg);
            }
        }
        if (n > 0) {
            tr->prev_epoch = st->job->restore_epoch;
        }
    }
    *out = t;
    return LM_OK;
}

void
lm_op_count_events(lm_op *op, uint64_t n)
{
    op->task->events += n;
}

uint64_t
lm_op_restore_epoch(const lm_op *op)
{
    return op->task->job->restore_epoch;
}

const char *
lm_op_job_id(const lm_op *op)
{
    return op->task->job->id;
}

const char *
lm_op_checkpoint_dir(const lm_op *op)
{
    return op->task->job->checkpoint_dir;
}

/* --- checkpoints ----------------------------------------------------- */

/* Prepares the operators, snapshots the tables, sends the barrier on, and
 * acknowledges. */
static int
take_checkpoint(lm_subtask *st, uint64_t epoch, uint32_t kind, bool then_stop, int64_t ts)
{
    lm_checkpoint_ack_msg ack = {epoch, st->chain->index, st->index, 0, LM_OK, lm_str_c("")};
    lm_barrier_msg b = {0, epoch, kind, then_stop, ts};
    char reason[LM_ERROR_MSG_MAX] = "";
    int rv;

    for (uint32_t i = 0; i < st->nops; i++) {
        lm_op *op = &st->ops[i];
        if (op->kind->on_barrier != NULL && (rv = op->kind->on_barrier(op, epoch)) != LM_OK) {
            return failed(st, rv, "preparing a checkpoint");
        }
    }
    for (uint32_t i = 0; i < st->ntables && ack.code == LM_OK; i++) {
        table_reg *tr = &st->tables[i];
        char path[4096];
        uint8_t *buf;
        size_t len;
        bool full;
        lm_error err;
        if (st->job->checkpoint_dir[0] == '\0') {
            snprintf(reason, sizeof(reason), "checkpoints are not configured for this job");
            ack.code = LM_ESTATE;
            break;
        }
        if ((rv = lm_table_snapshot(tr->t, epoch, tr->prev_epoch, &buf, &len, &full)) != LM_OK) {
            snprintf(reason, sizeof(reason), "table '%s': %s", lm_table_name(tr->t),
                     lm_strerror(rv));
            ack.code = rv;
            break;
        }
        lm_job_table_path(st->job, epoch, st->ops[tr->op].id, lm_table_name(tr->t), st->index, path,
                          sizeof(path));
        rv = lm_storage_write(path, buf, len, &err);
        free(buf);
        if (rv != LM_OK) {
            /* The table's change set went into the lost file: the next
             * snapshot must be a full one. */
            tr->prev_epoch = 0;
            snprintf(reason, sizeof(reason), "%s", err.msg);
            ack.code = rv;
            break;
        }
        tr->prev_epoch = epoch;
        ack.bytes += len;
    }
    if ((rv = broadcast_ctl(st, LM_MT_BARRIER, &b, &b.channel)) != LM_OK) {
        return failed(st, rv, "sending a barrier");
    }
    ack.reason = lm_str_c(reason);
    if ((rv = lm_tell(st->self, st->job->tm, LM_MT_CHECKPOINT_ACK, &ack)) != LM_OK) {
        LM_LOG(LM_LOG_WARN, "%s[%u]: cannot acknowledge checkpoint %llu: %s", st->label, st->index,
               (unsigned long long)epoch, lm_strerror(rv));
    }
    return LM_OK;
}

/* --- inputs ---------------------------------------------------------- */

static int handle_input(lm_subtask *st, lm_msg *m);

/* The minimum watermark over live channels; recomputes idleness. */
static int
update_watermark(lm_subtask *st)
{
    int64_t min = INT64_MAX;
    bool any_live = false, all_idle = true;

    for (uint32_t i = 0; i < st->nin; i++) {
        in_chan *c = &st->in[i];
        if (c->ended) {
            continue;
        }
        any_live = true;
        if (c->idle) {
            continue;
        }
        all_idle = false;
        if (c->wm < min) {
            min = c->wm;
        }
    }
    if (any_live && all_idle) {
        /* Every live input is idle: so are we. */
        if (!st->out_idle) {
            st->out_idle = true;
            return out_watermark(st, st->ops[st->nops - 1].watermark, true);
        }
        return LM_OK;
    }
    if (!any_live) {
        return LM_OK; /* the end will flush */
    }
    if (min > st->in_wm) {
        st->in_wm = min;
        return head_watermark(st, min);
    }
    return LM_OK;
}

static uint32_t
live_channels(const lm_subtask *st, uint32_t *held)
{
    uint32_t live = 0;
    *held = 0;
    for (uint32_t i = 0; i < st->nin; i++) {
        if (!st->in[i].ended) {
            live++;
            *held += st->in[i].held;
        }
    }
    return live;
}

/* Alignment done (or no live input left): checkpoint, release holds. */
static int
maybe_aligned(lm_subtask *st)
{
    uint32_t held, live;
    uint64_t epoch = st->aligning;
    int rv;

    if (epoch == 0) {
        return LM_OK;
    }
    live = live_channels(st, &held);
    if (held < live) {
        return LM_OK;
    }
    st->aligning = 0;
    if ((rv = take_checkpoint(st, epoch, st->kind_aligning, st->stop_after, st->barrier_ts)) !=
        LM_OK) {
        return rv;
    }
    /* Handle what each channel held, in order. A held message may be
     * another barrier, which starts a new alignment and holds again. */
    for (uint32_t i = 0; i < st->nin; i++) {
        st->in[i].held = false;
    }
    for (uint32_t i = 0; i < st->nin; i++) {
        in_chan *c = &st->in[i];
        lm_msg *m;
        while (!c->held && (m = take_input(st, &c->hold_head, &c->hold_tail)) != NULL) {
            rv = handle_input(st, m);
            lm_msg_release(m);
            if (rv != LM_OK) {
                return rv;
            }
        }
    }
    return LM_OK;
}

/* --- counters ---------------------------------------------------------- */

/* Sends JOB_STATS_REPLY with the chain's counters to dst: per operator,
 * its plan index, the rows it received and the rows it emitted (a source
 * receives none: its rows in are the rows it produced). */
static int
send_stats(lm_subtask *st, lm_addr dst, lm_str job, uint64_t seq)
{
    uint8_t *ops = malloc((size_t)st->nops * LM_OP_COUNTS_WIRE_SIZE + 1);
    lm_job_stats_reply_msg r = {
        job, seq, st->chain->index, st->index, {ops, st->nops * LM_OP_COUNTS_WIRE_SIZE}};
    int rv;

    if (ops == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t k = 0; k < st->nops; k++) {
        const lm_op_stats *os = &st->ops[k].stats;
        uint64_t in = k == 0 && st->source ? os->rows_out : os->rows_in;
        lm_op_counts_put(ops + (size_t)LM_OP_COUNTS_WIRE_SIZE * k,
                         (lm_op_counts){st->chain->ops[k], in, os->rows_out});
    }
    rv = lm_tell(st->self, dst, LM_MT_JOB_STATS_REPLY, &r);
    free(ops);
    return rv;
}

/* The final counters go to the task manager, once. */
static void
send_final_stats(lm_subtask *st)
{
    int rv;

    if (st->stats_sent || st->tm.actor == 0) {
        return;
    }
    st->stats_sent = true;
    if ((rv = send_stats(st, st->tm, lm_str_c(st->job->id), 0)) != LM_OK) {
        LM_LOG(LM_LOG_DEBUG, "%s[%u]: cannot hand in the final counters: %s", st->label, st->index,
               lm_strerror(rv));
    }
}

/* All inputs (or the source) ended: flush and send END_OF_STREAM. */
static int
finish(lm_subtask *st)
{
    lm_end_of_stream_msg eos = {0};
    lm_subtask_done_msg done = {st->chain->index,
                                st->index,
                                st->ops[0].stats.rows_in,
                                st->ops[st->nops - 1].stats.rows_out,
                                st->events,
                                st->max_buffered,
                                0,
                                0,
                                0};
    int rv;

    if (st->ended) {
        return LM_OK;
    }
    st->ended = true;
    /* The end of input is the end of event time. */
    if ((rv = head_watermark(st, INT64_MAX)) != LM_OK) {
        return failed(st, rv, "final watermark");
    }
    for (uint32_t i = 0; i < st->nops; i++) {
        lm_op *op = &st->ops[i];
        if (op->kind->on_end != NULL && (rv = op->kind->on_end(op)) != LM_OK) {
            return failed(st, rv, "end of input");
        }
    }
    if ((rv = broadcast_ctl(st, LM_MT_END_OF_STREAM, &eos, &eos.channel)) != LM_OK) {
        return failed(st, rv, "sending the end of stream");
    }
    if (st->ops[0].kind->produce != NULL) {
        done.rows_in = st->ops[0].stats.rows_out;
    }
    for (uint32_t i = 0; i < st->nops; i++) {
        done.late_rows += st->ops[i].stats.late_rows;
        done.bad_rows += st->ops[i].stats.bad_rows;
        done.expr_errors += st->ops[i].stats.expr_errors;
    }
    /* counters first: the job may be over once the coordinator has heard */
    send_final_stats(st);
    if ((rv = lm_tell(st->self, st->job->tm, LM_MT_SUBTASK_DONE, &done)) != LM_OK) {
        LM_LOG(LM_LOG_WARN, "%s[%u]: cannot report the end: %s", st->label, st->index,
               lm_strerror(rv));
    }
    /* Stay alive until the queues drain: credits still come back. */
    return LM_OK;
}

/* Handles one input message (borrowed). */
static int
handle_input(lm_subtask *st, lm_msg *m)
{
    lm_error err;
    uint32_t ch;
    int rv;

    switch (m->type) {
    case LM_MT_BATCH: {
        lm_batch_msg bm;
        lm_credit_msg cr;
        in_chan *c;
        lm_op *h = &st->ops[0];
        if ((rv = lm_decode_batch(m, &bm, &err)) != LM_OK) {
            return lm_actor_fail(st->self, rv, "%s[%u]: bad batch from %u:%llu: %s", st->label,
                                 st->index, m->src.node, (unsigned long long)m->src.actor, err.msg);
        }
        if (bm.channel >= st->nin || bm.batch == NULL) {
            lm_proto_fini(LM_MT_BATCH, &bm);
            return lm_actor_fail(st->self, LM_EPROTO, "%s[%u]: batch on unknown channel %u",
                                 st->label, st->index, bm.channel);
        }
        c = &st->in[bm.channel];
        if (c->held) {
            /* Cannot happen: held channels' messages are queued before we
             * get here. */
            lm_proto_fini(LM_MT_BATCH, &bm);
            return LM_ESTATE;
        }
        c->idle = false;
        h->stats.rows_in += bm.batch->nrows;
        h->stats.batches_in++;
        if ((rv = h->kind->on_batch(h, c->port, bm.batch)) != LM_OK) {
            return failed(st, rv, "handling a batch");
        }
        cr = (lm_credit_msg){c->up_chan, 1};
        lm_tell(st->self, c->upstream, LM_MT_CREDIT, &cr);
        return LM_OK;
    }
    case LM_MT_WATERMARK: {
        lm_watermark_msg w;
        if ((rv = lm_decode_watermark(m, &w, &err)) != LM_OK || w.channel >= st->nin) {
            return lm_actor_fail(st->self, LM_EPROTO, "%s[%u]: bad watermark: %s", st->label,
                                 st->index, rv != LM_OK ? err.msg : "unknown channel");
        }
        if (w.idle) {
            st->in[w.channel].idle = true;
        } else {
            st->in[w.channel].idle = false;
            if (w.ts > st->in[w.channel].wm) {
                st->in[w.channel].wm = w.ts;
            }
        }
        if ((rv = update_watermark(st)) != LM_OK) {
            return failed(st, rv, "advancing the watermark");
        }
        return LM_OK;
    }
    case LM_MT_BARRIER: {
        lm_barrier_msg b;
        if ((rv = lm_decode_barrier(m, &b, &err)) != LM_OK || b.channel >= st->nin) {
            return lm_actor_fail(st->self, LM_EPROTO, "%s[%u]: bad barrier: %s", st->label,
                                 st->index, rv != LM_OK ? err.msg : "unknown channel");
        }
        if (st->aligning != 0 && st->aligning != b.epoch) {
            return lm_actor_fail(
                st->self, LM_EPROTO, "%s[%u]: barrier %llu while aligning barrier %llu", st->label,
                st->index, (unsigned long long)b.epoch, (unsigned long long)st->aligning);
        }
        st->aligning = b.epoch;
        st->kind_aligning = b.kind;
        st->stop_after = b.then_stop;
        st->barrier_ts = b.ts;
        st->in[b.channel].held = true;
        return maybe_aligned(st);
    }
    case LM_MT_END_OF_STREAM: {
        lm_end_of_stream_msg e;
        if ((rv = lm_decode_end_of_stream(m, &e, &err)) != LM_OK || e.channel >= st->nin) {
            return lm_actor_fail(st->self, LM_EPROTO, "%s[%u]: bad end of stream", st->label,
                                 st->index);
        }
        st->in[e.channel].ended = true;
        if ((rv = maybe_aligned(st)) != LM_OK) {
            return rv;
        }
        for (ch = 0; ch < st->nin && st->in[ch].ended; ch++) {
        }
        if (ch == st->nin) {
            return finish(st);
        }
        if ((rv = update_watermark(st)) != LM_OK) {
            return failed(st, rv, "advancing the watermark");
        }
        return LM_OK;
    }
    default:
        LM_LOG(LM_LOG_WARN, "%s[%u]: unexpected %s dropped", st->label, st->index,
               lm_proto_type_name(m->type));
        return LM_OK;
    }
}

/* The input channel a data message is on, or -1. Reads the first payload
 * field (every data message starts with its channel). */
static int
msg_channel(lm_subtask *st, lm_msg *m)
{
    lm_mpr r;
    uint32_t n;
    uint64_t ch;

    lm_mpr_init(&r, m->data, m->len);
    r.p = m->data + m->payload_off;
    if (lm_mpr_array(&r, &n) != LM_OK || n == 0 || lm_mpr_u64(&r, &ch) != LM_OK || ch >= st->nin) {
        return -1;
    }
    return (int)ch;
}

/* Handles queued inputs while not blocked. */
static int
pump_inputs(lm_subtask *st)
{
    lm_msg *m;

    while (st->blocked == 0 && !st->ended &&
           (m = take_input(st, &st->pend_head, &st->pend_tail)) != NULL) {
        int ch = msg_channel(st, m);
        int rv;
        if (ch >= 0 && st->in[ch].held) {
            keep_input(st, &st->in[ch].hold_head, &st->in[ch].hold_tail, m);
            continue;
        }
        rv = handle_input(st, m);
        lm_msg_release(m);
        if (rv != LM_OK) {
            return rv;
        }
    }
    return LM_OK;
}

/* --- sources ----------------------------------------------------------- */

/* Watermark alignment: tells the task manager where this source's output
 * watermark is, when it moved by a quarter of the allowed drift, went idle
 * or came back, or ended. */
static void
report_progress(lm_subtask *st, bool force)
{
    int64_t drift = st->job->plan->watermark_alignment_ms * 1000;
    int64_t wm = st->ended ? INT64_MAX : st->ops[st->nops - 1].watermark;
    lm_source_progress_msg p = {st->chain->index, st->index, wm, st->out_idle};

    if (drift <= 0 || (!force && wm == st->reported_wm && st->out_idle == st->reported_idle)) {
        return;
    }
    if (!force && st->out_idle == st->reported_idle && st->reported_wm != INT64_MIN &&
        wm != INT64_MAX && wm - st->reported_wm < drift / 4) {
        return;
    }
    st->reported_wm = wm;
    st->reported_idle = st->out_idle;
    lm_tell(st->self, st->job->tm, LM_MT_SOURCE_PROGRESS, &p);
}

static void
wake(lm_subtask *st)
{
    lm_wake_msg w = {WAKE_PRODUCE};
    lm_msg *m;

    if (st->wake_pending || st->ended || !st->source) {
        return;
    }
    if (lm_proto_encode(LM_MT_WAKE, lm_actor_addr(st->self), lm_actor_addr(st->self), &w, &m) ==
        LM_OK) {
        m->flags |= LM_MSGF_LOCAL_ONLY;
        if (lm_send(lm_actor_rt(st->self), m) == LM_OK) {
            st->wake_pending = true;
        } else {
            lm_msg_release(m);
        }
    }
}

static int
produce(lm_subtask *st)
{
    lm_op *h = &st->ops[0];
    uint64_t before = h->stats.rows_out;
    bool ended = false;
    int rv;

    if (st->blocked > 0 || st->ended || st->aligning != 0) {
        return LM_OK;
    }
    if (st->ops[st->nops - 1].watermark > st->align_max && !st->out_idle) {
        /* ahead of the slowest source: wait for a WATERMARK_ALIGN */
        report_progress(st, false);
        return LM_OK;
    }
    if ((rv = h->kind->produce(h, st->job->plan->batch_rows, &ended)) != LM_OK) {
        return failed(st, rv, "producing");
    }
    if (ended) {
        rv = finish(st);
        report_progress(st, true);
        return rv;
    }
    report_progress(st, false);
    if (h->stats.rows_out == before) {
        /* Nothing now (a rate limit, an input not ready): ask again in a
         * millisecond instead of spinning. */
        uint64_t id;
        if (!st->wake_pending && lm_timer_start(st->self, 1, 0, TIMER_WAKE, &id) == LM_OK) {
            st->wake_pending = true;
        }
        return LM_OK;
    }
    wake(st);
    return LM_OK;
}

/* --- the actor ------------------------------------------------------- */

static void
free_state(lm_subtask *st)
{
    free(st->sh_hash);
    free(st->sh_idx);
    free(st->sh_cnt);
    for (uint32_t i = 0; i < st->nops; i++) {
        if (st->ops[i].state != NULL && st->ops[i].kind->close != NULL) {
            st->ops[i].kind->close(&st->ops[i]);
        }
    }
    for (uint32_t i = 0; i < st->ntables; i++) {
        lm_table_free(st->tables[i].t);
    }
    for (uint32_t i = 0; i < st->nin; i++) {
        list_free(&st->in[i].hold_head, &st->in[i].hold_tail);
    }
    for (uint32_t i = 0; i < st->nout; i++) {
        if (st->all_out[i] != NULL) { /* NULL: stopped before it was wired */
            list_free(&st->all_out[i]->q_head, &st->all_out[i]->q_tail);
            lm_batch_free(st->all_out[i]->builder);
        }
    }
    for (uint32_t e = 0; e < st->nout_edges; e++) {
        free(st->out[e].ch);
    }
    list_free(&st->pend_head, &st->pend_tail);
    free(st->tables);
    free(st->ops);
    free(st->in);
    free(st->out);
    free(st->all_out);
    lm_job_release(st->job);
    free(st);
}

/* Wires the channels (every subtask of the job exists now) and starts. */
static int
wire(lm_subtask *st)
{
    lm_job *job = st->job;
    lm_chain *c = st->chain;
    lm_plan *plan = job->plan;
    int rv;

    /* Input channels: who sends on each, and their output channel index. */
    for (uint32_t p = 0; p < c->nports; p++) {
        const lm_plan_edge *e = lm_job_in_edge(job, c, p);
        const lm_chain *up = &job->chains[job->chain_of_op[e->from]];
        uint32_t k;
        for (k = 0; k < up->nout_edges && job->plan->edges + up->out_edges[k] != e; k++) {
        }
        for (uint32_t i = 0; i < c->port_cnt[p]; i++) {
            in_chan *ic = &st->in[c->port_off[p] + i];
            uint32_t sender = e->kind == LM_EDGE_FORWARD ? st->index : i;
            ic->port = p;
            ic->upstream = up->subtasks[sender];
            ic->up_chan = up->out_off[k] + (e->kind == LM_EDGE_FORWARD ? 0 : st->index);
            ic->wm = INT64_MIN;
        }
    }
    /* Output edges and channels, with their initial credit. */
    for (uint32_t k = 0; k < c->nout_edges; k++) {
        const lm_plan_edge *e = &plan->edges[c->out_edges[k]];
        const lm_chain *down = &job->chains[job->chain_of_op[e->to]];
        out_edge *oe = &st->out[k];
        oe->kind = e->kind;
        oe->keys = e->keys;
        oe->nkeys = e->nkeys;
        oe->schema = plan->ops[e->from].def.output;
        oe->nch = e->kind == LM_EDGE_FORWARD ? 1 : down->parallelism;
        if ((oe->ch = calloc(oe->nch, sizeof(out_chan))) == NULL) {
            return LM_ENOMEM;
        }
        for (uint32_t j = 0; j < oe->nch; j++) {
            uint32_t dst = e->kind == LM_EDGE_FORWARD ? st->index : j;
            oe->ch[j].dst = down->subtasks[dst];
            oe->ch[j].dst_chan =
                down->port_off[e->port] + (e->kind == LM_EDGE_FORWARD ? 0 : st->index);
            oe->ch[j].credit = job->credit;
            st->all_out[c->out_off[k] + j] = &oe->ch[j];
        }
    }
    if ((rv = lm_timer_start(st->self, TICK_MS, TICK_MS, TIMER_TICK, &st->tick_timer)) != LM_OK) {
        return rv;
    }
    st->started = true;
    if (st->source) {
        wake(st);
    }
    return pump_inputs(st);
}

/* Makes the operators and opens them (restoring their tables when the job
 * starts from a checkpoint). Channels are wired on START. */
static int
st_init(lm_actor *self, void *arg)
{
    lm_subtask_arg a = *(lm_subtask_arg *)arg;
    lm_job *job = a.job;
    lm_chain *c = &job->chains[a.chain];
    lm_plan *plan = job->plan;
    lm_subtask *st = calloc(1, sizeof(*st));
    int rv;

    free(arg); /* init owns it, and the job reference in it */
    if (st == NULL) {
        lm_job_release(job);
        return LM_ENOMEM;
    }
    st->job = job;
    st->tm = a.tm;
    st->chain = c;
    st->index = a.subtask;
    st->self = self;
    st->nops = c->nops;
    st->nin = c->nin;
    st->nout = c->nout;
    st->nout_edges = c->nout_edges;
    st->in_wm = INT64_MIN;
    st->align_max = INT64_MAX;
    st->reported_wm = INT64_MIN;
    snprintf(st->label, sizeof(st->label), "%s", plan->ops[c->ops[0]].def.id);
    st->ops = calloc(c->nops, sizeof(lm_op));
    st->in = calloc(c->nin + 1, sizeof(in_chan));
    st->out = calloc(c->nout_edges + 1, sizeof(out_edge));
    st->all_out = calloc(c->nout + 1, sizeof(out_chan *));
    if (st->ops == NULL || st->in == NULL || st->out == NULL || st->all_out == NULL) {
        free_state(st);
        return LM_ENOMEM;
    }
    lm_actor_set_state(self, st);
    for (uint32_t i = 0; i < c->nops; i++) {
        lm_plan_op *pop = &plan->ops[c->ops[i]];
        lm_op *op = &st->ops[i];
        op->kind = pop->kind;
        op->id = pop->def.id;
        op->spec = pop->spec;
        op->def = &pop->def;
        op->task = st;
        op->next = i + 1 < c->nops ? &st->ops[i + 1] : NULL;
        op->subtask = st->index;
        op->parallelism = c->parallelism;
        op->batch_rows = plan->batch_rows;
        op->watermark = INT64_MIN;
    }
    for (uint32_t i = 0; i < c->nops; i++) {
        lm_op *op = &st->ops[i];
        if (op->kind->open != NULL && (rv = op->kind->open(op)) != LM_OK) {
            /* The actor does not start, so fini will not run: free here
             * (close runs for every operator that has a state, including
             * this one if it left one). */
            rv = failed(st, rv, "opening");
            lm_actor_set_state(self, NULL);
            free_state(st);
            return rv;
        }
    }
    st->source = st->ops[0].kind->produce != NULL;
    if (!st->source && st->nin == 0) {
        rv = lm_actor_fail(self, LM_EINVAL, "%s: not a source and no inputs", st->label);
        lm_actor_set_state(self, NULL);
        free_state(st);
        return rv;
    }
    return LM_OK;
}

static int
st_handle(lm_actor *self, lm_msg *m)
{
    lm_subtask *st = lm_actor_state(self);
    int rv;

    if (m->type == LM_MT_JOB_STATS) {
        lm_job_stats_msg q;
        if (lm_decode_job_stats(m, &q, NULL) == LM_OK &&
            (rv = send_stats(st, m->src, q.job, q.seq)) != LM_OK) {
            LM_LOG(LM_LOG_DEBUG, "%s[%u]: cannot answer JOB_STATS: %s", st->label, st->index,
                   lm_strerror(rv));
        }
        return LM_OK;
    }
    if (!st->started && m->type != LM_MT_START) {
        /* Data from a subtask that started before us: keep it in order. */
        if (m->type == LM_MT_BATCH || m->type == LM_MT_WATERMARK || m->type == LM_MT_BARRIER ||
            m->type == LM_MT_END_OF_STREAM) {
            keep_input(st, &st->pend_head, &st->pend_tail, lm_actor_take(self, m));
            return LM_OK;
        }
        if (m->type != LM_MT_CREDIT) {
            return LM_OK;
        }
        /* credit before START cannot be: we have not sent anything */
        return LM_OK;
    }
    switch (m->type) {
    case LM_MT_START:
        if (!st->started && (rv = wire(st)) != LM_OK) {
            return failed(st, rv, "starting");
        }
        return LM_OK;
    case LM_MT_CREDIT: {
        lm_credit_msg c;
        if (lm_decode_credit(m, &c, NULL) != LM_OK || c.channel >= st->nout) {
            return lm_actor_fail(self, LM_EPROTO, "%s[%u]: bad credit", st->label, st->index);
        }
        st->all_out[c.channel]->credit += c.batches;
        if ((rv = chan_drain(st, st->all_out[c.channel])) != LM_OK) {
            return failed(st, rv, "sending");
        }
        if (st->blocked == 0) {
            if ((rv = pump_inputs(st)) != LM_OK) {
                return rv;
            }
            wake(st);
        }
        return LM_OK;
    }
    case LM_MT_WAKE: st->wake_pending = false; return st->source ? produce(st) : LM_OK;
    case LM_MT_WATERMARK_ALIGN: {
        lm_watermark_align_msg a;
        if (lm_decode_watermark_align(m, &a, NULL) == LM_OK && st->source) {
            st->align_max = a.max_wm;
            wake(st);
        }
        return LM_OK;
    }
    case LM_MT_TIMER: {
        int64_t now;
        struct timespec ts;
        lm_timer_msg tm;
        if (lm_decode_timer(m, &tm, NULL) == LM_OK && tm.tag == TIMER_WAKE) {
            st->wake_pending = false;
            return st->source ? produce(st) : LM_OK;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        for (uint32_t i = 0; i < st->nops && !st->ended; i++) {
            lm_op *op = &st->ops[i];
            if (op->kind->on_tick != NULL && (rv = op->kind->on_tick(op, now)) != LM_OK) {
                return failed(st, rv, "tick");
            }
        }
        if (!st->ended && (rv = flush_builders(st)) != LM_OK) {
            return failed(st, rv, "sending");
        }
        return LM_OK;
    }
    case LM_MT_TRIGGER_CHECKPOINT: {
        lm_trigger_checkpoint_msg t;
        struct timespec ts;
        if (!st->source || st->ended) {
            return LM_OK; /* an ended source has nothing more to snapshot */
        }
        if (lm_decode_trigger_checkpoint(m, &t, NULL) != LM_OK) {
            return LM_OK;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        return take_checkpoint(st, t.epoch, t.kind, t.then_stop,
                               (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    }
    case LM_MT_CHECKPOINT_DONE: {
        lm_checkpoint_done_msg d;
        if (lm_decode_checkpoint_done(m, &d, NULL) != LM_OK) {
            return LM_OK;
        }
        for (uint32_t i = 0; i < st->nops; i++) {
            lm_op *op = &st->ops[i];
            if (op->kind->on_checkpoint_done != NULL &&
                (rv = op->kind->on_checkpoint_done(op, d.epoch)) != LM_OK) {
                return failed(st, rv, "committing a checkpoint");
            }
        }
        if (d.epoch == LM_EPOCH_FINAL) {
            /* the job's end is committed here: say so */
            lm_checkpoint_ack_msg ack = {LM_EPOCH_FINAL, st->chain->index, st->index, 0,
                                         LM_OK,          lm_str_c("")};
            if ((rv = lm_tell(st->self, st->job->tm, LM_MT_CHECKPOINT_ACK, &ack)) != LM_OK) {
                return failed(st, rv, "acknowledging the end");
            }
        }
        return LM_OK;
    }
    case LM_MT_BATCH:
    case LM_MT_WATERMARK:
    case LM_MT_BARRIER:
    case LM_MT_END_OF_STREAM: {
        int ch = msg_channel(st, m);
        if (st->blocked > 0 || st->pend_head != NULL) {
            keep_input(st, &st->pend_head, &st->pend_tail, lm_actor_take(self, m));
            return LM_OK;
        }
        if (ch >= 0 && st->in[ch].held) {
            keep_input(st, &st->in[ch].hold_head, &st->in[ch].hold_tail, lm_actor_take(self, m));
            return LM_OK;
        }
        return handle_input(st, m);
    }
    case LM_MT_UNDELIVERABLE:
        /* A peer subtask is gone (its job is failing); the task manager
         * handles the job. */
        return LM_OK;
    default:
        LM_LOG(LM_LOG_WARN, "%s[%u]: unexpected %s", st->label, st->index,
               lm_proto_type_name(m->type));
        return LM_OK;
    }
}

static void
st_fini(lm_actor *self)
{
    lm_subtask *st = lm_actor_state(self);
    if (st != NULL) {
        send_final_stats(st); /* stopped before the end (cancel, failure) */
        free_state(st);
    }
}

const lm_actor_type lm_subtask_type = {"subtask", st_init, st_handle, st_fini};
