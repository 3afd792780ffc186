/*
 * op_calc.c: filter and projection, fused: "calc".
 *
 * Config: "filter" (a boolean expression; rows where it is not TRUE are
 * dropped), "project" (an array of {"name", "expr"}: the output columns;
 * absent: all input columns as they are). Expressions are lm_expr JSON.
 * The declared output schema must have the projected names and types, in
 * order; a column that can be null must be declared nullable.
 *
 * When every output column is an input column as it is, the output batch
 * takes the input's buffers without copying; otherwise each column is
 * evaluated (vectorized) into a new batch.
 */
#include <stdlib.h>
#include <string.h>

#include "lm_expr.h"
#include "lm_op.h"

typedef struct calc_spec {
    lm_expr *filter; /* or NULL */
    lm_expr **proj;  /* nproj expressions, or NULL: pass all */
    uint32_t nproj;
    uint32_t *cols;   /* when every projection is a bare column: its index */
    bool all_columns; /* every projection is a bare column */
} calc_spec;

typedef struct calc_state {
    lm_expr_ctx *ctx;
    uint32_t *sel; /* filter selection */
    uint32_t selcap;
} calc_state;

static void
spec_free(void *p)
{
    calc_spec *s = p;
    if (s == NULL) {
        return;
    }
    lm_expr_free(s->filter);
    for (uint32_t i = 0; s->proj != NULL && i < s->nproj; i++) {
        lm_expr_free(s->proj[i]);
    }
    free(s->proj);
    free(s->cols);
    free(s);
}

static const char *const keys[] = {"filter", "project", NULL};

static int
calc_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    const json_t *filter = json_object_get(def->config, "filter");
    const json_t *proj = json_object_get(def->config, "project");
    const lm_schema *in = def->inputs[0], *out = def->output;
    calc_spec *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK) {
        goto fail;
    }
    if (filter != NULL) {
        if ((rv = lm_expr_compile(filter, in, &s->filter, err)) != LM_OK) {
            lm_error_prefix(err, "filter");
            goto fail;
        }
        if (lm_expr_type(s->filter) != LM_TYPE_BOOL) {
            rv = lm_error_set(err, LM_EINVAL, "filter: must be a boolean expression");
            goto fail;
        }
    }
    if (proj == NULL) {
        if (!lm_schema_equal(in, out)) {
            rv = lm_error_set(err, LM_EINVAL,
                              "without \"project\" the output schema must be the input's");
            goto fail;
        }
        *spec = s;
        return LM_OK;
    }
    if (!json_is_array(proj) || json_array_size(proj) != out->nfields) {
        rv = lm_error_set(err, LM_EINVAL,
                          "\"project\" must be an array of %u {\"name\", \"expr\"} "
                          "(one per output column)",
                          out->nfields);
        goto fail;
    }
    s->nproj = out->nfields;
    s->proj = calloc(s->nproj + 1, sizeof(lm_expr *));
    s->cols = calloc(s->nproj + 1, sizeof(uint32_t));
    if (s->proj == NULL || s->cols == NULL) {
        rv = LM_ENOMEM;
        goto fail;
    }
    s->all_columns = true;
    for (uint32_t i = 0; i < s->nproj; i++) {
        const json_t *p = json_array_get(proj, i);
        const json_t *name = json_object_get(p, "name"), *expr = json_object_get(p, "expr");
        const lm_field *f = &out->fields[i];
        int t;
        if (!json_is_string(name) || expr == NULL) {
            rv = lm_error_set(err, LM_EINVAL, "project[%u]: needs \"name\" and \"expr\"", i);
            goto fail;
        }
        if (strcmp(json_string_value(name), f->name) != 0) {
            rv =
                lm_error_set(err, LM_EINVAL, "project[%u]: named '%s' but output column %u is '%s'",
                             i, json_string_value(name), i, f->name);
            goto fail;
        }
        if ((rv = lm_expr_compile(expr, in, &s->proj[i], err)) != LM_OK) {
            lm_error_prefix(err, "project[%u] '%s'", i, f->name);
            goto fail;
        }
        t = lm_expr_type(s->proj[i]);
        if (t != (int)f->type) {
            rv = lm_error_set(err, LM_EINVAL,
                              "project[%u] '%s': the expression is %s, the column "
                              "%s",
                              i, f->name, t == LM_TYPE_INTERVAL ? "interval" : lm_type_name(t),
                              lm_type_name(f->type));
            goto fail;
        }
        if (lm_expr_nullable(s->proj[i]) && !f->nullable) {
            rv = lm_error_set(err, LM_EINVAL,
                              "project[%u] '%s': the expression can be null but the column is not "
                              "nullable",
                              i, f->name);
            goto fail;
        }
        if (lm_expr_column(s->proj[i]) >= 0) {
            s->cols[i] = (uint32_t)lm_expr_column(s->proj[i]);
        } else {
            s->all_columns = false;
        }
    }
    *spec = s;
    return LM_OK;
fail:
    spec_free(s);
    return rv;
}

static int
calc_open(lm_op *op)
{
    calc_state *c = calloc(1, sizeof(*c));
    if (c == NULL || lm_expr_ctx_new(&c->ctx) != LM_OK) {
        free(c);
        return LM_ENOMEM;
    }
    op->state = c;
    return LM_OK;
}

static int
calc_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const calc_spec *s = op->spec;
    calc_state *c = op->state;
    lm_error err;
    lm_batch *out;
    int rv;

    (void)port;
    if (s->filter != NULL) {
        uint32_t n;
        if (c->selcap < b->nrows) {
            uint32_t *sel = realloc(c->sel, sizeof(uint32_t) * b->nrows);
            if (sel == NULL) {
                lm_batch_free(b);
                return LM_ENOMEM;
            }
            c->sel = sel;
            c->selcap = b->nrows;
        }
        if ((rv = lm_expr_filter(c->ctx, s->filter, b, c->sel, &n, &err)) != LM_OK) {
            lm_batch_free(b);
            return lm_op_fail(op, rv, "filter: %s", err.msg);
        }
        if (n == 0) {
            lm_batch_free(b);
            return LM_OK;
        }
        if (n < b->nrows) {
            lm_batch *f = NULL;
            if ((rv = lm_batch_new(b->schema, n, &f)) != LM_OK ||
                (rv = lm_batch_gather(f, b, c->sel, n)) != LM_OK) {
                lm_batch_free(f);
                lm_batch_free(b);
                return rv;
            }
            lm_batch_free(b);
            b = f;
        }
    }
    if (s->proj == NULL) {
        return lm_op_emit(op, b);
    }
    if (s->all_columns) {
        rv = lm_batch_take_columns(b, s->cols, s->nproj, op->def->output, &out);
    } else if ((rv = lm_batch_new(op->def->output, b->nrows, &out)) == LM_OK) {
        for (uint32_t i = 0; i < s->nproj && rv == LM_OK; i++) {
            if ((rv = lm_expr_eval_into(c->ctx, s->proj[i], b, out, i, &err)) != LM_OK) {
                rv = lm_op_fail(op, rv, "project '%s': %s", op->def->output->fields[i].name,
                                err.msg);
            }
        }
        if (rv == LM_OK) {
            lm_batch_commit_rows(out, b->nrows);
        } else {
            lm_batch_free(out);
        }
    }
    op->stats.expr_errors = lm_expr_ctx_errors(c->ctx);
    lm_batch_free(b);
    return rv == LM_OK ? lm_op_emit(op, out) : rv;
}

static void
calc_close(lm_op *op)
{
    calc_state *c = op->state;
    lm_expr_ctx_free(c->ctx);
    free(c->sel);
    free(c);
}

const lm_op_kind lm_op_calc = {
    .name = "calc",
    .min_inputs = 1,
    .max_inputs = 1,
    .prepare = calc_prepare,
    .spec_free = spec_free,
    .open = calc_open,
    .on_batch = calc_batch,
    .close = calc_close,
};
