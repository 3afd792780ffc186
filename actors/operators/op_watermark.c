/*
 * op_watermark.c: the watermark assigner (bounded out-of-orderness).
 *
 * Config: "column" (a timestamp column), "delay_ms" (how far out of order
 * rows may come; the watermark is the largest time seen minus this),
 * "period_ms" (how often a watermark is emitted, default 200),
 * "every_batches" (also after this many batches, default 1: every batch,
 * so that downstream state waits for as little as possible),
 * "idle_timeout_ms" (when no row came for this long, the input is marked
 * idle so that downstream does not wait for it; 0: never).
 * Rows pass unchanged; the output schema is the input's.
 */
#include <stdlib.h>
#include <string.h>

#include "lm_op.h"

typedef struct wm_spec {
    uint32_t col;
    int64_t delay_us, period_ms, every, idle_ms;
} wm_spec;

typedef struct wm_state {
    int64_t max_ts;       /* largest time seen */
    int64_t last_emit_ms; /* wall clock of the last emission */
    int64_t last_row_ms;  /* wall clock of the last row */
    int64_t batches;      /* since the last emission */
    bool idle;            /* said idle */
} wm_state;

static const char *const keys[] = {"column",        "delay_ms",        "period_ms",
                                   "every_batches", "idle_timeout_ms", NULL};

static int
wm_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    wm_spec *s = calloc(1, sizeof(*s));
    const char *col;
    int64_t delay;
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK ||
        (rv = lm_op_cfg_str(def->config, "column", NULL, &col, err)) != LM_OK ||
        (rv = lm_op_column(def->inputs[0], col, &s->col, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "delay_ms", 0, 0, INT64_MAX / 1000, &delay, err)) !=
            LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "period_ms", 200, 1, 3600000, &s->period_ms, err)) !=
            LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "every_batches", 1, 1, 1 << 20, &s->every, err)) !=
            LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "idle_timeout_ms", 0, 0, INT64_MAX, &s->idle_ms, err)) !=
            LM_OK) {
        free(s);
        return rv;
    }
    if (def->inputs[0]->fields[s->col].type != LM_TYPE_TIMESTAMP) {
        lm_type t = def->inputs[0]->fields[s->col].type;
        free(s);
        return lm_error_set(err, LM_EINVAL, "column '%s' is %s, not a timestamp", col,
                            lm_type_name(t));
    }
    if (!lm_schema_equal(def->inputs[0], def->output)) {
        free(s);
        return lm_error_set(err, LM_EINVAL, "the output schema must be the input's");
    }
    s->delay_us = delay * 1000;
    *spec = s;
    return LM_OK;
}

static int
wm_open(lm_op *op)
{
    wm_state *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return LM_ENOMEM;
    }
    w->max_ts = INT64_MIN;
    op->state = w;
    return LM_OK;
}

static int
emit(lm_op *op)
{
    const wm_spec *s = op->spec;
    wm_state *w = op->state;

    w->batches = 0;
    if (w->max_ts < INT64_MIN + s->delay_us + 1) {
        return LM_OK; /* nothing seen, or no watermark past INT64_MIN yet */
    }
    return lm_op_emit_watermark(op, w->max_ts - s->delay_us);
}

static int
wm_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const wm_spec *s = op->spec;
    wm_state *w = op->state;
    const int64_t *ts = lm_batch_i64(b, s->col);
    int64_t max = w->max_ts;
    int rv;

    (void)port;
    for (uint32_t r = 0; r < b->nrows; r++) {
        if (ts[r] > max && !lm_batch_is_null(b, s->col, r)) {
            max = ts[r];
        }
    }
    w->max_ts = max;
    w->idle = false;
    w->last_row_ms = 0; /* set on the next tick */
    if ((rv = lm_op_emit(op, b)) != LM_OK) {
        return rv;
    }
    return ++w->batches >= s->every ? emit(op) : LM_OK;
}

static int
wm_tick(lm_op *op, int64_t now_ms)
{
    const wm_spec *s = op->spec;
    wm_state *w = op->state;

    if (w->last_row_ms == 0) {
        w->last_row_ms = now_ms;
    }
    if (s->idle_ms > 0 && !w->idle && now_ms - w->last_row_ms >= s->idle_ms) {
        w->idle = true;
        return lm_op_emit_idle(op);
    }
    if (now_ms - w->last_emit_ms >= s->period_ms) {
        w->last_emit_ms = now_ms;
        return emit(op);
    }
    return LM_OK;
}

static void
wm_close(lm_op *op)
{
    free(op->state);
}

static void
spec_free(void *spec)
{
    free(spec);
}

const lm_op_kind lm_op_watermark = {
    .name = "watermark",
    .min_inputs = 1,
    .max_inputs = 1,
    .prepare = wm_prepare,
    .spec_free = spec_free,
    .open = wm_open,
    .on_batch = wm_batch,
    .on_tick = wm_tick,
    .close = wm_close,
};
