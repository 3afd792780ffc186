/*
 * op_nexmark.c: the nexmark source operator.
 *
 * Config: the generator's options with their connector names, as strings
 * or numbers ("events.num", "first-event.rate", "next-event.rate",
 * "emit.rate", "person.proportion", "auction.proportion",
 * "bid.proportion", "seed", "base-time", "out-of-order.group"); "kinds":
 * which event kinds become rows (["person", "auction", "bid"], default
 * all: the planner narrows it for a view filtered on event_type; other
 * events are skipped, not generated, and still counted); "columns":
 * the generator column behind each output column, in order (default: the
 * output column names are generator column names).
 *
 * Subtask i of p reads events i, i+p, ...; the next event number is kept
 * in a GLOBAL table, so a restored source resumes exactly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lm_nexmark.h"
#include "lm_op.h"

typedef struct nx_spec {
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *gen;   /* shared: read-only after creation */
    lm_nexmark_cols cols;  /* generated columns */
    lm_schema *gen_schema; /* their schema (generator names) */
    uint32_t kinds_mask;
    bool relabel; /* output schema differs from gen_schema (names, nullability) */
} nx_spec;

typedef struct nx_state {
    lm_nexmark_cursor cur;
    lm_table *offset;  /* "next" -> u64 */
    uint64_t produced; /* events, for emit.rate */
    struct timespec t0;
} nx_state;

static void
spec_free(void *p)
{
    nx_spec *s = p;
    if (s != NULL) {
        lm_nexmark_gen_free(s->gen);
        lm_schema_release(s->gen_schema);
        free(s);
    }
}

static int
nx_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    nx_spec *s = calloc(1, sizeof(*s));
    const json_t *kinds = json_object_get(def->config, "kinds");
    const json_t *cols = json_object_get(def->config, "columns");
    const char *names[LM_SCHEMA_MAX_FIELDS];
    const lm_schema *out = def->output;
    const char *key;
    json_t *v;
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    {
        /* the generator's options, "kinds" and "columns" */
        const char *keys[32];
        uint32_t n = 0;
        while (n < 29 && (keys[n] = lm_nexmark_option(n)) != NULL) {
            n++;
        }
        keys[n++] = "kinds";
        keys[n++] = "columns";
        keys[n] = NULL;
        if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK) {
            goto fail;
        }
    }
    lm_nexmark_cfg_defaults(&s->cfg);
    json_object_foreach((json_t *)def->config, key, v)
    {
        char text[64];
        if (strcmp(key, "kinds") == 0 || strcmp(key, "columns") == 0) {
            continue;
        }
        if (json_is_string(v)) {
            snprintf(text, sizeof(text), "%s", json_string_value(v));
        } else if (json_is_integer(v)) {
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
        } else {
            rv = lm_error_set(err, LM_EINVAL, "config: '%s' must be a number or a string", key);
            goto fail;
        }
        if ((rv = lm_nexmark_cfg_set(&s->cfg, key, text, err)) != LM_OK) {
            lm_error_prefix(err, "config");
            rv = LM_EINVAL;
            goto fail;
        }
    }
    if ((rv = lm_nexmark_cfg_check(&s->cfg, err)) != LM_OK) {
        rv = LM_EINVAL;
        goto fail;
    }
    s->kinds_mask = 7;
    if (kinds != NULL) {
        size_t i;
        json_t *k;
        if (!json_is_array(kinds) || json_array_size(kinds) == 0) {
            rv = lm_error_set(err, LM_EINVAL, "config: \"kinds\" must be a non-empty array");
            goto fail;
        }
        s->kinds_mask = 0;
        json_array_foreach(kinds, i, k)
        {
            const char *n = json_is_string(k) ? json_string_value(k) : "";
            int bit = strcmp(n, "person") == 0    ? 0
                      : strcmp(n, "auction") == 0 ? 1
                      : strcmp(n, "bid") == 0     ? 2
                                                  : -1;
            if (bit < 0) {
                rv = lm_error_set(err, LM_EINVAL,
                                  "config: kinds[%zu]: expected person, auction or bid", i);
                goto fail;
            }
            s->kinds_mask |= 1u << bit;
        }
    }
    if (cols != NULL) {
        if (!json_is_array(cols) || json_array_size(cols) != out->nfields) {
            rv = lm_error_set(err, LM_EINVAL,
                              "config: \"columns\" must name the generator column "
                              "of each of the %u output columns",
                              out->nfields);
            goto fail;
        }
        for (uint32_t i = 0; i < out->nfields; i++) {
            const json_t *c = json_array_get(cols, i);
            if (!json_is_string(c)) {
                rv = lm_error_set(err, LM_EINVAL, "config: columns[%u] must be a string", i);
                goto fail;
            }
            names[i] = json_string_value(c);
        }
    } else {
        for (uint32_t i = 0; i < out->nfields; i++) {
            names[i] = out->fields[i].name;
        }
    }
    if ((rv = lm_nexmark_columns(names, out->nfields, &s->cols, err)) != LM_OK ||
        (rv = lm_nexmark_schema(&s->cols, &s->gen_schema, err)) != LM_OK) {
        goto fail;
    }
    for (uint32_t i = 0; i < out->nfields; i++) {
        const lm_field *g = &s->gen_schema->fields[i], *o = &out->fields[i];
        if (g->type != o->type) {
            rv = lm_error_set(err, LM_EINVAL, "output column '%s' is %s but '%s' is %s", o->name,
                              lm_type_name(o->type), g->name, lm_type_name(g->type));
            goto fail;
        }
        /* A generator column is null in the rows of other kinds: only with
         * its own kind alone may the output say "not nullable". */
        if (!o->nullable && g->nullable) {
            int own = strncmp(g->name, "person.", 7) == 0    ? 1
                      : strncmp(g->name, "auction.", 8) == 0 ? 2
                      : strncmp(g->name, "bid.", 4) == 0     ? 4
                                                             : 0;
            if (own == 0 || s->kinds_mask != (uint32_t)own) {
                rv = lm_error_set(err, LM_EINVAL,
                                  "output column '%s' must be nullable: '%s' is "
                                  "null in events of other kinds",
                                  o->name, g->name);
                goto fail;
            }
        }
    }
    s->relabel = !lm_schema_equal(s->gen_schema, out);
    if ((rv = lm_nexmark_gen_new(&s->cfg, &s->gen, err)) != LM_OK) {
        goto fail;
    }
    *spec = s;
    return LM_OK;
fail:
    spec_free(s);
    return rv;
}

static int
nx_open(lm_op *op)
{
    const nx_spec *s = op->spec;
    nx_state *n = calloc(1, sizeof(*n));
    const void *v;
    int rv;

    if (n == NULL) {
        return LM_ENOMEM;
    }
    op->state = n;
    lm_nexmark_cursor_init(&n->cur, &s->cfg, op->subtask, op->parallelism, s->kinds_mask);
    if ((rv = lm_op_table(op, LM_TABLE_GLOBAL, "offset", sizeof(uint64_t), &n->offset)) != LM_OK) {
        return rv;
    }
    if (lm_table_get(n->offset, "next", 4, &v, NULL, NULL) == LM_OK) {
        uint64_t next;
        memcpy(&next, v, sizeof(next));
        lm_nexmark_cursor_seek(&n->cur, next);
    }
    clock_gettime(CLOCK_MONOTONIC, &n->t0);
    return LM_OK;
}

static int
nx_produce(lm_op *op, uint32_t max_rows, bool *ended)
{
    const nx_spec *s = op->spec;
    nx_state *n = op->state;
    uint64_t consumed = 0;
    lm_batch *b, *out;
    int rv;

    if (lm_nexmark_cursor_ended(&n->cur)) {
        *ended = true;
        return LM_OK;
    }
    if (s->cfg.emit_rate > 0) {
        struct timespec now;
        double secs;
        int64_t allowed;
        clock_gettime(CLOCK_MONOTONIC, &now);
        secs = (double)(now.tv_sec - n->t0.tv_sec) + (double)(now.tv_nsec - n->t0.tv_nsec) / 1e9;
        allowed =
            (int64_t)(secs * (double)s->cfg.emit_rate / op->parallelism) + 1 - (int64_t)n->produced;
        if (allowed <= 0) {
            return LM_OK;
        }
        if (allowed < (int64_t)max_rows) {
            max_rows = (uint32_t)allowed;
        }
    }
    if ((rv = lm_batch_new(s->gen_schema, max_rows, &b)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_nexmark_fill(s->gen, &s->cols, &n->cur, b, max_rows, &consumed, ended)) != LM_OK) {
        lm_batch_free(b);
        return lm_op_fail(op, rv, "generating events: %s", lm_strerror(rv));
    }
    n->produced += consumed;
    lm_op_count_events(op, consumed);
    if (!s->relabel) {
        return lm_op_emit(op, b);
    }
    {
        uint32_t cols[LM_SCHEMA_MAX_FIELDS];
        for (uint32_t i = 0; i < s->gen_schema->nfields; i++) {
            cols[i] = i;
        }
        rv = lm_batch_take_columns(b, cols, s->gen_schema->nfields, op->def->output, &out);
        lm_batch_free(b);
        if (rv != LM_OK) {
            return rv;
        }
        /* rows that produced nothing (all skipped) still end as a batch of
         * 0 rows, which emit drops */
        return lm_op_emit(op, out);
    }
}

static int
nx_barrier(lm_op *op, uint64_t epoch)
{
    nx_state *n = op->state;
    (void)epoch;
    return lm_table_put(n->offset, "next", 4, 0, &n->cur.next, sizeof(n->cur.next));
}

static void
nx_close(lm_op *op)
{
    free(op->state);
}

const lm_op_kind lm_op_nexmark = {
    .name = "nexmark",
    .prepare = nx_prepare,
    .spec_free = spec_free,
    .open = nx_open,
    .on_barrier = nx_barrier,
    .produce = nx_produce,
    .close = nx_close,
};
