/*
 * op_impulse.c: the impulse source: a counter, at a rate.
 *
 * Config: "count" (events in all, 0: unbounded), "rate" (events per second
 * of wall-clock time over all subtasks, 0: as fast as possible),
 * "start_ms" (event time of event 0, ms since the epoch, default 0),
 * "interval_us" (event time between events, default 1000). Output:
 * counter int64, ts timestamp. Subtask i of p emits counters i, i+p, ...
 * The next counter is kept in a GLOBAL table, so a restored source goes on
 * exactly where its checkpoint was.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_op.h"

typedef struct impulse_spec {
    int64_t count, rate, start_ms, interval_us;
} impulse_spec;

typedef struct impulse {
    lm_table *offset;   /* "next" -> the next counter of this subtask */
    int64_t next;       /* next counter */
    int64_t produced;   /* since start (for the rate) */
    struct timespec t0; /* start, for the rate */
} impulse;

static const char *const keys[] = {"count", "rate", "start_ms", "interval_us", NULL};

static int
impulse_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    impulse_spec *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "count", 0, 0, INT64_MAX, &s->count, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "rate", 0, 0, INT64_MAX, &s->rate, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "start_ms", 0, 0, INT64_MAX / 1000, &s->start_ms, err)) !=
            LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "interval_us", 1000, 0, 1000000000000, &s->interval_us,
                            err)) != LM_OK) {
        free(s);
        return rv;
    }
    if (def->output->nfields != 2 || strcmp(def->output->fields[0].name, "counter") != 0 ||
        def->output->fields[0].type != LM_TYPE_INT64 ||
        strcmp(def->output->fields[1].name, "ts") != 0 ||
        def->output->fields[1].type != LM_TYPE_TIMESTAMP) {
        free(s);
        return lm_error_set(err, LM_EINVAL,
                            "the output schema must be [counter int64, ts timestamp]");
    }
    *spec = s;
    return LM_OK;
}

static int
impulse_open(lm_op *op)
{
    impulse *im = calloc(1, sizeof(*im));
    const void *v;
    int rv;

    if (im == NULL) {
        return LM_ENOMEM;
    }
    op->state = im;
    im->next = op->subtask;
    if ((rv = lm_op_table(op, LM_TABLE_GLOBAL, "offset", sizeof(int64_t), &im->offset)) != LM_OK) {
        return rv;
    }
    if (lm_table_get(im->offset, "next", 4, &v, NULL, NULL) == LM_OK) {
        memcpy(&im->next, v, sizeof(int64_t));
    }
    clock_gettime(CLOCK_MONOTONIC, &im->t0);
    return LM_OK;
}

static int
impulse_produce(lm_op *op, uint32_t max_rows, bool *ended)
{
    const impulse_spec *s = op->spec;
    impulse *im = op->state;
    uint32_t n = max_rows;
    lm_batch *b;
    int64_t *ctr, *ts;
    int rv;

    if (s->count > 0 && im->next >= s->count) {
        *ended = true;
        return LM_OK;
    }
    if (s->count > 0) {
        int64_t left = (s->count - im->next + op->parallelism - 1) / op->parallelism;
        if (left < n) {
            n = (uint32_t)left;
        }
    }
    if (s->rate > 0) {
        struct timespec now;
        double secs;
        int64_t allowed;
        clock_gettime(CLOCK_MONOTONIC, &now);
        secs = (double)(now.tv_sec - im->t0.tv_sec) + (double)(now.tv_nsec - im->t0.tv_nsec) / 1e9;
        allowed = (int64_t)(secs * (double)s->rate / op->parallelism) + 1 - im->produced;
        if (allowed <= 0) {
            return LM_OK; /* not yet */
        }
        if (allowed < n) {
            n = (uint32_t)allowed;
        }
    }
    if ((rv = lm_batch_new(op->def->output, n, &b)) != LM_OK) {
        return rv;
    }
    ctr = lm_batch_i64(b, 0);
    ts = lm_batch_i64(b, 1);
    for (uint32_t i = 0; i < n; i++) {
        int64_t c = im->next + (int64_t)i * op->parallelism;
        ctr[i] = c;
        ts[i] = s->start_ms * 1000 + c * s->interval_us;
    }
    lm_batch_commit_rows(b, n);
    im->next += (int64_t)n * op->parallelism;
    im->produced += n;
    lm_op_count_events(op, n);
    return lm_op_emit(op, b);
}

static int
impulse_barrier(lm_op *op, uint64_t epoch)
{
    impulse *im = op->state;
    (void)epoch;
    return lm_table_put(im->offset, "next", 4, 0, &im->next, sizeof(im->next));
}

static void
impulse_close(lm_op *op)
{
    free(op->state);
}

static void
spec_free(void *spec)
{
    free(spec);
}

const lm_op_kind lm_op_impulse = {
    .name = "impulse",
    .prepare = impulse_prepare,
    .spec_free = spec_free,
    .open = impulse_open,
    .on_barrier = impulse_barrier,
    .produce = impulse_produce,
    .close = impulse_close,
};
