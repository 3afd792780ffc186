/*
 * op_aggregate.c: aggregates: "window_aggregate" (tumbling, hopping,
 * session, or given windows, on event time) and "aggregate" (an updating
 * GROUP BY without windows, emitting retractions).
 *
 * Shared config: "keys" (group columns, possibly none), "aggregates" (an
 * array of {"name", "fn", "arg"}; fn count (arg optional: count(*) without
 * it, else non-null values), count_distinct, sum, avg, min, max; arg a
 * column of the input). Results follow SQL: sum/avg/min/max of no non-null
 * value are null; count is never null. sum of int64 is int64 (an overflow
 * makes it null and counts an error), of float64 float64; avg is float64
 * and equals sum / count computed in double after an exact int64 sum.
 * min/max work on bool, int64, float64 and timestamp columns (float64 in
 * the total order of comparisons: NaN above every number).
 *
 * window_aggregate config: "time" (the timestamp column), "window":
 * {"type": "tumble", "size_ms"} | {"type": "hop", "size_ms", "slide_ms"}
 * (size a multiple of slide) | {"type": "session", "gap_ms"} |
 * {"type": "given", "start": col, "end": col} (rows that already carry a
 * window: grouping the results of another window aggregate);
 * "window_start", "window_end": output column names for the bounds
 * (optional). A window [start, end) is emitted once the watermark reaches
 * its end; rows arriving for windows already emitted are late (dropped,
 * counted). Output columns are matched by name: the keys, the aggregates,
 * and the bounds.
 *
 * aggregate config: "ttl_ms" with "time" (event time: a group not updated
 * for ttl_ms of watermark progress is forgotten; optional). Input may be a
 * changelog (last column "_retract"); output is a changelog: for each
 * group a batch changed, its previous result is retracted and the new one
 * inserted. min/max over a changelog input are not supported.
 *
 * State: accumulators of each group live in place in an EXPIRING table
 * (windows: time = window end; aggregate: GLOBAL, or EXPIRING by last
 * update with a TTL); count_distinct keeps its values in a second table;
 * session windows keep one entry per session keyed by group and start.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_op.h"
#include "lm_row.h"

enum agg_fn { FN_COUNT, FN_COUNT_STAR, FN_COUNT_DISTINCT, FN_SUM, FN_AVG, FN_MIN, FN_MAX };
enum win_type { WIN_TUMBLE, WIN_HOP, WIN_SESSION, WIN_GIVEN, WIN_NONE };

static const char *const fn_names[] = {"count", "count(*)", "count_distinct", "sum", "avg",
                                       "min",   "max"};

typedef struct agg_def {
    enum agg_fn fn;
    uint32_t arg; /* input column (not for count(*)) */
    lm_type arg_type;
    uint32_t off; /* offset of its accumulator in the value */
    uint32_t out; /* output column */
} agg_def;

/* Accumulators (all 16 bytes, 8-byte aligned):
 *   count, count(*), count_distinct: int64 n, -
 *   sum/avg of int64:  int64 sum, int64 n | flag bit 62 of n: overflowed
 *   sum/avg of float64: double sum, int64 n
 *   min/max: value (int64 bits or double), int64 n (0: none yet) */
#define ACC_SIZE      16
#define OVERFLOW_FLAG (1ll << 62)

typedef struct agg_spec {
    enum win_type win;
    int64_t size_us, slide_us, gap_us; /* window parameters */
    uint32_t time_col;                 /* time column (not for given windows) */
    uint32_t start_col, end_col;       /* given windows */
    uint32_t *keys;                    /* group columns */
    uint32_t nkeys;
    uint32_t *key_out; /* output column of each key */
    agg_def *aggs;
    uint32_t naggs;
    int32_t out_start, out_end; /* output columns of the bounds, -1: none */
    uint32_t value_size;        /* header (start, session end) + accumulators */
    bool distinct;              /* some count_distinct */
    bool changelog_in;          /* aggregate: input ends with _retract */
    int64_t ttl_us;             /* aggregate: 0 = keep forever */
    bool updating;              /* the "aggregate" kind */
    uint32_t nout;              /* output columns (aggregate: with _retract) */
} agg_spec;

/* Value header: window start (int64), session end / last update (int64). */
#define HDR 16

typedef struct agg_state {
    lm_table *groups;   /* group (+window) -> header + accumulators */
    lm_table *distinct; /* count_distinct values */
    lm_table *meta;     /* watermark */
    int64_t wm;         /* input watermark */
    lm_buf key;         /* scratch */
    lm_buf key2;
    lm_buf sess;   /* session windows: a group's new session list */
    lm_batch *out; /* rows being emitted */
    /* aggregate: groups changed by the current batch, with their output
     * before it (encoded, empty when the group did not exist) */
    lm_buf *touched_keys;
    lm_buf *touched_old;
    uint32_t ntouched, captouched;
    lm_table *touched_set; /* membership (non-persistent use: cleared each batch) */
    uint64_t errors;
} agg_state;

static void
spec_free(void *p)
{
    agg_spec *s = p;
    if (s != NULL) {
        free(s->keys);
        free(s->key_out);
        free(s->aggs);
        free(s);
    }
}

/* --- prepare --------------------------------------------------------- */

static int
out_col(const lm_schema *out, const char *name, uint32_t *idx, lm_error *err)
{
    int i = lm_schema_find(out, name);
    if (i < 0) {
        return lm_error_set(err, LM_EINVAL, "the output schema has no column '%s'", name);
    }
    *idx = (uint32_t)i;
    return LM_OK;
}

static int
check_out_type(const lm_schema *out, uint32_t col, lm_type t, const char *what, lm_error *err)
{
    const lm_field *f = &out->fields[col];
    if (f->type != t) {
        return lm_error_set(err, LM_EINVAL, "output column '%s' (%s) must be %s", f->name, what,
                            lm_type_name(t));
    }
    return LM_OK;
}

static int
parse_window(const json_t *w, const lm_schema *in, agg_spec *s, lm_error *err)
{
    const json_t *type = json_object_get(w, "type");
    const char *t = json_is_string(type) ? json_string_value(type) : "";
    int64_t size = 0, slide = 0, gap = 0;
    int rv;

    if (!json_is_object(w)) {
        return lm_error_set(err, LM_EINVAL, "config: \"window\" must be an object");
    }
    if (strcmp(t, "tumble") == 0) {
        static const char *const k[] = {"type", "size_ms", NULL};
        s->win = WIN_TUMBLE;
        if ((rv = lm_op_cfg_only(w, k, err)) != LM_OK ||
            (rv = lm_op_cfg_i64(w, "size_ms", 0, 1, INT64_MAX / 1000, &size, err)) != LM_OK) {
            return rv;
        }
        if (size == 0) {
            return lm_error_set(err, LM_EINVAL, "window: \"size_ms\" is required");
        }
        s->size_us = s->slide_us = size * 1000;
    } else if (strcmp(t, "hop") == 0) {
        static const char *const k[] = {"type", "size_ms", "slide_ms", NULL};
        s->win = WIN_HOP;
        if ((rv = lm_op_cfg_only(w, k, err)) != LM_OK ||
            (rv = lm_op_cfg_i64(w, "size_ms", 0, 1, INT64_MAX / 1000, &size, err)) != LM_OK ||
            (rv = lm_op_cfg_i64(w, "slide_ms", 0, 1, INT64_MAX / 1000, &slide, err)) != LM_OK) {
            return rv;
        }
        if (size == 0 || slide == 0 || size % slide != 0 || size / slide > 1000) {
            return lm_error_set(err, LM_EINVAL,
                                "window: a hop needs \"size_ms\" and \"slide_ms\", "
                                "the size a multiple of the slide (at most 1000 "
                                "times)");
        }
        s->size_us = size * 1000;
        s->slide_us = slide * 1000;
    } else if (strcmp(t, "session") == 0) {
        static const char *const k[] = {"type", "gap_ms", NULL};
        s->win = WIN_SESSION;
        if ((rv = lm_op_cfg_only(w, k, err)) != LM_OK ||
            (rv = lm_op_cfg_i64(w, "gap_ms", 0, 1, INT64_MAX / 1000, &gap, err)) != LM_OK) {
            return rv;
        }
        if (gap == 0) {
            return lm_error_set(err, LM_EINVAL, "window: a session needs \"gap_ms\"");
        }
        s->gap_us = gap * 1000;
    } else if (strcmp(t, "given") == 0) {
        static const char *const k[] = {"type", "start", "end", NULL};
        const char *sc, *ec;
        s->win = WIN_GIVEN;
        if ((rv = lm_op_cfg_only(w, k, err)) != LM_OK ||
            (rv = lm_op_cfg_str(w, "start", NULL, &sc, err)) != LM_OK ||
            (rv = lm_op_cfg_str(w, "end", NULL, &ec, err)) != LM_OK ||
            (rv = lm_op_column(in, sc, &s->start_col, err)) != LM_OK ||
            (rv = lm_op_column(in, ec, &s->end_col, err)) != LM_OK) {
            return lm_error_prefix(err, "window");
        }
        if (in->fields[s->start_col].type != LM_TYPE_TIMESTAMP ||
            in->fields[s->end_col].type != LM_TYPE_TIMESTAMP) {
            return lm_error_set(err, LM_EINVAL, "window: 'start' and 'end' must be timestamps");
        }
    } else {
        return lm_error_set(err, LM_EINVAL,
                            "window: \"type\" must be tumble, hop, session or given");
    }
    return LM_OK;
}

static int
agg_prepare_common(const lm_op_def *def, bool updating, void **spec, lm_error *err)
{
    static const char *const wkeys[] = {"time",         "window",     "keys", "aggregates",
                                        "window_start", "window_end", NULL};
    static const char *const ukeys[] = {"keys", "aggregates", "ttl_ms", "time", NULL};
    const lm_schema *in = def->inputs[0], *out = def->output;
    const json_t *keys = json_object_get(def->config, "keys");
    const json_t *aggs = json_object_get(def->config, "aggregates");
    agg_spec *s = calloc(1, sizeof(*s));
    uint8_t used[LM_SCHEMA_MAX_FIELDS] = {0};
    uint32_t nused = 0;
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    s->updating = updating;
    s->out_start = s->out_end = -1;
    if ((rv = lm_op_cfg_only(def->config, updating ? ukeys : wkeys, err)) != LM_OK) {
        goto fail;
    }
    s->changelog_in = in->nfields > 0 &&
                      strcmp(in->fields[in->nfields - 1].name, "_retract") == 0 &&
                      in->fields[in->nfields - 1].type == LM_TYPE_BOOL;
    if (s->changelog_in && !updating) {
        rv = lm_error_set(err, LM_EINVAL,
                          "a window aggregate takes an append-only input, not a "
                          "changelog");
        goto fail;
    }
    if (!updating) {
        const char *tc;
        if ((rv = parse_window(json_object_get(def->config, "window"), in, s, err)) != LM_OK) {
            goto fail;
        }
        if (s->win != WIN_GIVEN) {
            if ((rv = lm_op_cfg_str(def->config, "time", NULL, &tc, err)) != LM_OK ||
                (rv = lm_op_column(in, tc, &s->time_col, err)) != LM_OK) {
                goto fail;
            }
            if (in->fields[s->time_col].type != LM_TYPE_TIMESTAMP) {
                rv = lm_error_set(err, LM_EINVAL, "\"time\" column '%s' is not a timestamp", tc);
                goto fail;
            }
        }
    } else {
        int64_t ttl;
        s->win = WIN_NONE;
        if ((rv = lm_op_cfg_i64(def->config, "ttl_ms", 0, 0, INT64_MAX / 1000, &ttl, err)) !=
            LM_OK) {
            goto fail;
        }
        s->ttl_us = ttl * 1000;
        if (s->ttl_us > 0) {
            const char *tc;
            if ((rv = lm_op_cfg_str(def->config, "time", NULL, &tc, err)) != LM_OK ||
                (rv = lm_op_column(in, tc, &s->time_col, err)) != LM_OK) {
                lm_error_prefix(err, "\"ttl_ms\" needs \"time\"");
                goto fail;
            }
        }
    }
    /* keys */
    if (keys != NULL && !json_is_array(keys)) {
        rv = lm_error_set(err, LM_EINVAL, "config: \"keys\" must be an array of column names");
        goto fail;
    }
    s->nkeys = keys != NULL ? (uint32_t)json_array_size(keys) : 0;
    s->keys = calloc(s->nkeys + 1, sizeof(uint32_t));
    s->key_out = calloc(s->nkeys + 1, sizeof(uint32_t));
    if (s->keys == NULL || s->key_out == NULL) {
        rv = LM_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < s->nkeys; i++) {
        const json_t *k = json_array_get(keys, i);
        if (!json_is_string(k)) {
            rv = lm_error_set(err, LM_EINVAL, "config: keys[%u] must be a column name", i);
            goto fail;
        }
        if ((rv = lm_op_column(in, json_string_value(k), &s->keys[i], err)) != LM_OK ||
            (rv = out_col(out, json_string_value(k), &s->key_out[i], err)) != LM_OK) {
            lm_error_prefix(err, "keys[%u]", i);
            goto fail;
        }
        if (out->fields[s->key_out[i]].type != in->fields[s->keys[i]].type) {
            rv = lm_error_set(err, LM_EINVAL, "output column '%s' must have the key's type %s",
                              json_string_value(k), lm_type_name(in->fields[s->keys[i]].type));
            goto fail;
        }
        if (in->fields[s->keys[i]].nullable && !out->fields[s->key_out[i]].nullable) {
            rv = lm_error_set(err, LM_EINVAL, "output column '%s' must be nullable (the key is)",
                              json_string_value(k));
            goto fail;
        }
        used[s->key_out[i]] = 1;
    }
    /* aggregates */
    if (!json_is_array(aggs)) {
        rv = lm_error_set(err, LM_EINVAL,
                          "config: \"aggregates\" must be an array (possibly "
                          "empty)");
        goto fail;
    }
    s->naggs = (uint32_t)json_array_size(aggs);
    if ((s->aggs = calloc(s->naggs + 1, sizeof(agg_def))) == NULL) {
        rv = LM_ENOMEM;
        goto fail;
    }
    s->value_size = HDR;
    for (uint32_t i = 0; i < s->naggs; i++) {
        static const char *const akeys[] = {"name", "fn", "arg", NULL};
        const json_t *a = json_array_get(aggs, i);
        const char *name, *fn, *arg = NULL;
        agg_def *ad = &s->aggs[i];
        lm_type outt;
        bool nullable_out = true;
        int f = -1;
        if (!json_is_object(a) || (rv = lm_op_cfg_only(a, akeys, err)) != LM_OK ||
            (rv = lm_op_cfg_str(a, "name", NULL, &name, err)) != LM_OK ||
            (rv = lm_op_cfg_str(a, "fn", NULL, &fn, err)) != LM_OK ||
            (rv = lm_op_cfg_str(a, "arg", "", &arg, err)) != LM_OK) {
            if (rv == LM_OK) {
                rv = lm_error_set(err, LM_EINVAL, "must be an object");
            }
            lm_error_prefix(err, "aggregates[%u]", i);
            goto fail;
        }
        for (int k = 0; k < 7; k++) {
            if (k != FN_COUNT_STAR && strcmp(fn, fn_names[k]) == 0) {
                f = k;
            }
        }
        if (f < 0) {
            rv = lm_error_set(err, LM_EINVAL,
                              "aggregates[%u]: unknown function '%s' (count, "
                              "count_distinct, sum, avg, min, max)",
                              i, fn);
            goto fail;
        }
        ad->fn = (enum agg_fn)f;
        if (ad->fn == FN_COUNT && arg[0] == '\0') {
            ad->fn = FN_COUNT_STAR;
        } else {
            if (arg[0] == '\0') {
                rv = lm_error_set(err, LM_EINVAL, "aggregates[%u]: %s needs \"arg\"", i, fn);
                goto fail;
            }
            if ((rv = lm_op_column(in, arg, &ad->arg, err)) != LM_OK) {
                lm_error_prefix(err, "aggregates[%u]", i);
                goto fail;
            }
            ad->arg_type = in->fields[ad->arg].type;
        }
        switch (ad->fn) {
        case FN_COUNT:
        case FN_COUNT_STAR:
        case FN_COUNT_DISTINCT:
            outt = LM_TYPE_INT64;
            nullable_out = false;
            s->distinct |= ad->fn == FN_COUNT_DISTINCT;
            break;
        case FN_SUM:
        case FN_AVG:
            if (ad->arg_type != LM_TYPE_INT64 && ad->arg_type != LM_TYPE_FLOAT64) {
                rv = lm_error_set(err, LM_EINVAL,
                                  "aggregates[%u]: %s needs an int64 or float64 "
                                  "column, '%s' is %s",
                                  i, fn, arg, lm_type_name(ad->arg_type));
                goto fail;
            }
            outt = ad->fn == FN_AVG ? LM_TYPE_FLOAT64 : ad->arg_type;
            break;
        default:
            if (lm_type_is_varwidth(ad->arg_type)) {
                rv = lm_error_set(err, LM_EINVAL,
                                  "aggregates[%u]: %s over %s columns is not "
                                  "supported",
                                  i, fn, lm_type_name(ad->arg_type));
                goto fail;
            }
            if (s->changelog_in) {
                rv = lm_error_set(err, LM_EINVAL,
                                  "aggregates[%u]: %s over a changelog input is "
                                  "not supported",
                                  i, fn);
                goto fail;
            }
            outt = ad->arg_type;
            break;
        }
        if (ad->fn == FN_COUNT_DISTINCT && s->win == WIN_SESSION) {
            rv = lm_error_set(err, LM_EINVAL,
                              "aggregates[%u]: count_distinct in session windows is not supported",
                              i);
            goto fail;
        }
        if ((rv = out_col(out, name, &ad->out, err)) != LM_OK ||
            (rv = check_out_type(out, ad->out, outt, fn, err)) != LM_OK) {
            lm_error_prefix(err, "aggregates[%u]", i);
            goto fail;
        }
        if (nullable_out && !out->fields[ad->out].nullable) {
            rv = lm_error_set(err, LM_EINVAL,
                              "output column '%s' must be nullable (%s of no "
                              "value is null)",
                              name, fn);
            goto fail;
        }
        used[ad->out] = 1;
        ad->off = s->value_size;
        s->value_size += ACC_SIZE;
    }
    /* window bounds */
    if (!updating) {
        const char *ws, *we;
        if ((rv = lm_op_cfg_str(def->config, "window_start", "", &ws, err)) != LM_OK ||
            (rv = lm_op_cfg_str(def->config, "window_end", "", &we, err)) != LM_OK) {
            goto fail;
        }
        if (ws[0] != '\0') {
            uint32_t c = 0;
            if ((rv = out_col(out, ws, &c, err)) != LM_OK ||
                (rv = check_out_type(out, c, LM_TYPE_TIMESTAMP, "window start", err)) != LM_OK) {
                goto fail;
            }
            s->out_start = (int32_t)c;
            used[c] = 1;
        }
        if (we[0] != '\0') {
            uint32_t c = 0;
            if ((rv = out_col(out, we, &c, err)) != LM_OK ||
                (rv = check_out_type(out, c, LM_TYPE_TIMESTAMP, "window end", err)) != LM_OK) {
                goto fail;
            }
            s->out_end = (int32_t)c;
            used[c] = 1;
        }
    } else {
        if (out->nfields == 0 || strcmp(out->fields[out->nfields - 1].name, "_retract") != 0 ||
            out->fields[out->nfields - 1].type != LM_TYPE_BOOL) {
            rv = lm_error_set(err, LM_EINVAL,
                              "an updating aggregate's output is a changelog: its "
                              "last column must be \"_retract\" (bool)");
            goto fail;
        }
        used[out->nfields - 1] = 1;
    }
    for (uint32_t c = 0; c < out->nfields; c++) {
        nused += used[c];
        if (!used[c]) {
            rv = lm_error_set(err, LM_EINVAL,
                              "output column '%s' is not a key, an aggregate or "
                              "a window bound",
                              out->fields[c].name);
            goto fail;
        }
    }
    s->nout = out->nfields;
    (void)nused;
    *spec = s;
    return LM_OK;
fail:
    spec_free(s);
    return rv;
}

static int
window_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    return agg_prepare_common(def, false, spec, err);
}

static int
update_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    return agg_prepare_common(def, true, spec, err);
}

/* --- accumulators ---------------------------------------------------- */

static inline int64_t *
acc64(uint8_t *val, const agg_def *ad)
{
    return (int64_t *)(void *)(val + ad->off);
}

static void
acc_init(const agg_spec *s, uint8_t *val)
{
    for (uint32_t i = 0; i < s->naggs; i++) {
        const agg_def *ad = &s->aggs[i];
        int64_t *a = acc64(val, ad);
        a[0] = 0;
        a[1] = 0;
        if (ad->arg_type == LM_TYPE_FLOAT64 && (ad->fn == FN_SUM || ad->fn == FN_AVG)) {
            double z = 0.0;
            memcpy(&a[0], &z, 8);
        }
    }
}

/* a < b in the total order of float64 comparisons (lm_expr.h): NaN is
 * above every other value, so that min and max do not depend on the
 * order of the rows. */
static inline bool
f64_less(double a, double b)
{
    return isnan(b) ? !isnan(a) : a < b;
}

/* Adds (sign 1) or removes (sign -1) row r of b into the accumulators. */
static void
acc_update(const agg_spec *s, uint8_t *val, const lm_batch *b, uint32_t r, int sign,
           uint64_t *errors)
{
    for (uint32_t i = 0; i < s->naggs; i++) {
        const agg_def *ad = &s->aggs[i];
        int64_t *a = acc64(val, ad);
        if (ad->fn == FN_COUNT_STAR) {
            a[0] += sign;
            continue;
        }
        if (ad->fn == FN_COUNT_DISTINCT) {
            continue; /* counted through the distinct table */
        }
        if (lm_batch_is_null(b, ad->arg, r)) {
            continue;
        }
        switch (ad->fn) {
        case FN_COUNT: a[0] += sign; break;
        case FN_SUM:
        case FN_AVG:
            if (ad->arg_type == LM_TYPE_FLOAT64) {
                double sum;
                memcpy(&sum, &a[0], 8);
                sum += sign * lm_batch_f64(b, ad->arg)[r];
                memcpy(&a[0], &sum, 8);
            } else {
                int64_t v = lm_batch_i64(b, ad->arg)[r], res;
                bool ovf = sign > 0 ? __builtin_add_overflow(a[0], v, &res)
                                    : __builtin_sub_overflow(a[0], v, &res);
                if (ovf && !(a[1] & OVERFLOW_FLAG)) {
                    a[1] |= OVERFLOW_FLAG;
                    (*errors)++;
                }
                a[0] = res;
            }
            a[1] += sign;
            break;
        case FN_MIN:
        case FN_MAX: {
            bool is_min = ad->fn == FN_MIN;
            if (ad->arg_type == LM_TYPE_FLOAT64) {
                double v = lm_batch_f64(b, ad->arg)[r], cur;
                memcpy(&cur, &a[0], 8);
                if (a[1] == 0 || (is_min ? f64_less(v, cur) : f64_less(cur, v))) {
                    memcpy(&a[0], &v, 8);
                }
            } else {
                int64_t v = ad->arg_type == LM_TYPE_BOOL ? lm_batch_bools(b, ad->arg)[r]
                                                         : lm_batch_i64(b, ad->arg)[r];
                if (a[1] == 0 || (is_min ? v < a[0] : v > a[0])) {
                    a[0] = v;
                }
            }
            a[1]++;
            break;
        }
        default: break;
        }
    }
}

/* Writes the accumulators' results into row `row` of out (fixed-width
 * columns only: every aggregate result is). */
static int
acc_emit(const agg_spec *s, const uint8_t *val, lm_batch *out, uint32_t row)
{
    for (uint32_t i = 0; i < s->naggs; i++) {
        const agg_def *ad = &s->aggs[i];
        const int64_t *a = (const int64_t *)(const void *)(val + ad->off);
        int64_t n = a[1] & ~OVERFLOW_FLAG;
        switch (ad->fn) {
        case FN_COUNT:
        case FN_COUNT_STAR:
        case FN_COUNT_DISTINCT: lm_batch_i64(out, ad->out)[row] = a[0]; break;
        case FN_SUM:
            if (n == 0 || (a[1] & OVERFLOW_FLAG)) {
                if (lm_batch_put_null(out, ad->out, row) != LM_OK) {
                    return LM_ENOMEM;
                }
            } else {
                lm_batch_i64(out, ad->out)[row] = a[0]; /* bits of the double too */
            }
            break;
        case FN_AVG:
            if (n == 0 || (a[1] & OVERFLOW_FLAG)) {
                if (lm_batch_put_null(out, ad->out, row) != LM_OK) {
                    return LM_ENOMEM;
                }
            } else if (ad->arg_type == LM_TYPE_FLOAT64) {
                double sum;
                memcpy(&sum, &a[0], 8);
                lm_batch_f64(out, ad->out)[row] = sum / (double)n;
            } else {
                lm_batch_f64(out, ad->out)[row] = (double)a[0] / (double)n;
            }
            break;
        default:
            if (a[1] == 0) {
                if (lm_batch_put_null(out, ad->out, row) != LM_OK) {
                    return LM_ENOMEM;
                }
            } else if (ad->arg_type == LM_TYPE_BOOL) {
                lm_batch_bools(out, ad->out)[row] = (uint8_t)a[0];
            } else {
                lm_batch_i64(out, ad->out)[row] = a[0];
            }
            break;
        }
    }
    return LM_OK;
}

/* Merges accumulators src into dst (session windows merging). */
static void
acc_merge(const agg_spec *s, uint8_t *dst, const uint8_t *src)
{
    for (uint32_t i = 0; i < s->naggs; i++) {
        const agg_def *ad = &s->aggs[i];
        int64_t *d = acc64(dst, ad);
        const int64_t *x = (const int64_t *)(const void *)(src + ad->off);
        switch (ad->fn) {
        case FN_SUM:
        case FN_AVG:
            if (ad->arg_type == LM_TYPE_FLOAT64) {
                double a, b;
                memcpy(&a, &d[0], 8);
                memcpy(&b, &x[0], 8);
                a += b;
                memcpy(&d[0], &a, 8);
            } else {
                int64_t res;
                if (__builtin_add_overflow(d[0], x[0], &res)) {
                    d[1] |= OVERFLOW_FLAG;
                }
                d[0] = res;
            }
            d[1] += x[1] & ~OVERFLOW_FLAG;
            d[1] |= x[1] & OVERFLOW_FLAG;
            break;
        case FN_MIN:
        case FN_MAX:
            if (x[1] > 0) {
                bool take = d[1] == 0;
                if (!take && ad->arg_type == LM_TYPE_FLOAT64) {
                    double a, b;
                    memcpy(&a, &d[0], 8);
                    memcpy(&b, &x[0], 8);
                    take = ad->fn == FN_MIN ? f64_less(b, a) : f64_less(a, b);
                } else if (!take) {
                    take = ad->fn == FN_MIN ? x[0] < d[0] : x[0] > d[0];
                }
                if (take) {
                    d[0] = x[0];
                }
                d[1] += x[1];
            }
            break;
        default: d[0] += x[0]; break;
        }
    }
}

/* --- running ----------------------------------------------------------- */

static int
agg_open(lm_op *op)
{
    const agg_spec *s = op->spec;
    agg_state *a = calloc(1, sizeof(*a));
    const void *v;
    int rv;
    lm_table_kind gk = s->updating && s->ttl_us == 0 ? LM_TABLE_GLOBAL : LM_TABLE_EXPIRING;

    if (a == NULL) {
        return LM_ENOMEM;
    }
    op->state = a;
    a->wm = INT64_MIN;
    lm_buf_init(&a->key);
    lm_buf_init(&a->key2);
    lm_buf_init(&a->sess);
    /* Give the key buffer room at once: without keys a group key is empty,
     * and its bytes must still be a valid pointer (memcpy, tables). */
    if (lm_buf_append(&a->key, "", 1) != LM_OK) {
        return LM_ENOMEM;
    }
    a->key.len = 0;
    if ((rv = lm_op_table(op, gk, "groups", s->win == WIN_SESSION ? 0 : s->value_size,
                          &a->groups)) != LM_OK ||
        (rv = lm_op_table(op, LM_TABLE_GLOBAL, "meta", sizeof(int64_t), &a->meta)) != LM_OK) {
        return rv;
    }
    if (s->distinct &&
        (rv = lm_op_table(op, gk, "distinct", sizeof(int64_t), &a->distinct)) != LM_OK) {
        return rv;
    }
    if (s->updating && (rv = lm_table_new(LM_TABLE_GLOBAL, "touched", sizeof(int64_t),
                                          &a->touched_set)) != LM_OK) {
        return rv;
    }
    if (lm_table_get(a->meta, "wm", 2, &v, NULL, NULL) == LM_OK) {
        memcpy(&a->wm, v, sizeof(int64_t));
    }
    return LM_OK;
}

static void
agg_close(lm_op *op)
{
    agg_state *a = op->state;
    lm_buf_fini(&a->key);
    lm_buf_fini(&a->key2);
    lm_buf_fini(&a->sess);
    lm_batch_free(a->out);
    for (uint32_t i = 0; i < a->captouched; i++) {
        lm_buf_fini(&a->touched_keys[i]);
        lm_buf_fini(&a->touched_old[i]);
    }
    free(a->touched_keys);
    free(a->touched_old);
    lm_table_free(a->touched_set);
    free(a);
}

static int
agg_barrier(lm_op *op, uint64_t epoch)
{
    agg_state *a = op->state;
    (void)epoch;
    return lm_table_put(a->meta, "wm", 2, 0, &a->wm, sizeof(a->wm));
}

/* The output batch being filled (made on demand), with room for a row. */
static int
out_row(lm_op *op, uint32_t *row)
{
    agg_state *a = op->state;
    int rv;

    if (a->out == NULL && (rv = lm_batch_new(op->def->output, op->batch_rows, &a->out)) != LM_OK) {
        return rv;
    }
    if (a->out->nrows >= a->out->capacity &&
        (rv = lm_batch_reserve(a->out, a->out->capacity * 2)) != LM_OK) {
        return rv;
    }
    *row = a->out->nrows;
    return LM_OK;
}

static int
flush_out(lm_op *op)
{
    agg_state *a = op->state;
    lm_batch *b = a->out;

    if (b == NULL || b->nrows == 0) {
        return LM_OK;
    }
    a->out = NULL;
    return lm_op_emit(op, b);
}

/* Appends an output row: the keys decoded from key bytes, the bounds, the
 * accumulators, and (updating) the retract flag. */
static int
emit_row(lm_op *op, const uint8_t *keybytes, size_t keylen, int64_t start, int64_t end,
         const uint8_t *val, int retract)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;
    const uint8_t *p = keybytes;
    uint32_t row;
    lm_error err;
    int rv;

    if ((rv = out_row(op, &row)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_row_decode(a->out, s->key_out, s->nkeys, row, &p, keybytes + keylen, &err)) !=
        LM_OK) {
        return lm_op_fail(op, rv, "decoding a group key: %s", err.msg);
    }
    if (s->out_start >= 0) {
        lm_batch_i64(a->out, (uint32_t)s->out_start)[row] = start;
    }
    if (s->out_end >= 0) {
        lm_batch_i64(a->out, (uint32_t)s->out_end)[row] = end;
    }
    if ((rv = acc_emit(s, val, a->out, row)) != LM_OK) {
        return rv;
    }
    if (retract >= 0) {
        lm_batch_bools(a->out, s->nout - 1)[row] = (uint8_t)retract;
    }
    lm_batch_commit_rows(a->out, 1);
    if (a->out->nrows >= op->batch_rows) {
        return flush_out(op);
    }
    return LM_OK;
}

static inline int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Adds row r to the window [start, end) of its group (key bytes in kb). */
static int
add_to_window(lm_op *op, const lm_batch *b, uint32_t r, int64_t start, int64_t end,
              const uint8_t *kb, size_t klen)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;
    uint8_t stack[512];
    uint8_t *key = klen + 16 <= sizeof(stack) ? stack : malloc(klen + 16);
    uint8_t *val;
    bool created;

    if (key == NULL) {
        return LM_ENOMEM;
    }
    memcpy(key, &end, 8);
    memcpy(key + 8, &start, 8);
    memcpy(key + 16, kb, klen);
    val = lm_table_upsert(a->groups, key, (uint32_t)(klen + 16), end, &created);
    if (val == NULL) {
        if (key != stack) {
            free(key);
        }
        return LM_ENOMEM;
    }
    if (created) {
        memcpy(val, &start, 8);
        acc_init(s, val);
    }
    acc_update(s, val, b, r, 1, &a->errors);
    if (s->distinct) {
        for (uint32_t i = 0; i < s->naggs; i++) {
            const agg_def *ad = &s->aggs[i];
            uint8_t idx = (uint8_t)i;
            int64_t *cnt;
            bool fresh;
            if (ad->fn != FN_COUNT_DISTINCT || lm_batch_is_null(b, ad->arg, r)) {
                continue;
            }
            a->key2.len = 0;
            if (lm_buf_append(&a->key2, key, klen + 16) != LM_OK ||
                lm_buf_append(&a->key2, &idx, 1) != LM_OK ||
                lm_row_encode(b, &ad->arg, 1, r, &a->key2, NULL) != LM_OK) {
                if (key != stack) {
                    free(key);
                }
                return LM_ENOMEM;
            }
            if ((cnt = lm_table_upsert(a->distinct, a->key2.p, (uint32_t)a->key2.len, end,
                                       &fresh)) == NULL) {
                if (key != stack) {
                    free(key);
                }
                return LM_ENOMEM;
            }
            if (fresh) {
                /* the group's value may have moved: find it again */
                uint8_t *gv = lm_table_find(a->groups, key, (uint32_t)(klen + 16));
                acc64(gv, ad)[0]++;
            }
            (*cnt)++;
        }
    }
    if (key != stack) {
        free(key);
    }
    return LM_OK;
}

/* --- session windows ------------------------------------------------- */

/* A session entry's value: int64 n, then n records of
 * [int64 start][int64 end (exclusive)][accumulators]. */
static size_t
sess_rec(const agg_spec *s)
{
    return 16 + (s->value_size - HDR);
}

static int
add_to_session(lm_op *op, const lm_batch *b, uint32_t r, int64_t t, const uint8_t *kb, size_t klen)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;
    const void *old;
    uint32_t oldlen = 0;
    int64_t n = 0, ts;
    size_t rec = sess_rec(s);
    uint8_t *nv, *merged;
    int64_t ms = t, me = t + s->gap_us;
    int64_t nkeep = 0, min_end = INT64_MAX;
    int rv;

    if (lm_table_get(a->groups, kb, (uint32_t)klen, &old, &oldlen, &ts) == LM_OK) {
        memcpy(&n, old, 8);
    }
    /* new list: the merged session first, then those that do not overlap */
    a->sess.len = 0;
    if (lm_buf_reserve(&a->sess, 8 + (size_t)(n + 1) * rec) != LM_OK) {
        return LM_ENOMEM;
    }
    nv = (uint8_t *)a->sess.p;
    merged = nv + 8;
    memset(merged, 0, rec);
    {
        uint8_t tmp[HDR + 1024];
        uint8_t *accs = s->value_size <= sizeof(tmp) ? tmp : malloc(s->value_size);
        if (accs == NULL) {
            return LM_ENOMEM;
        }
        acc_init(s, accs);
        acc_update(s, accs, b, r, 1, &a->errors);
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *sr = (const uint8_t *)old + 8 + (size_t)i * rec;
            int64_t st, en;
            memcpy(&st, sr, 8);
            memcpy(&en, sr + 8, 8);
            if (st < me && ms < en) {
                /* overlaps: merge */
                uint8_t tmp2[HDR + 1024];
                uint8_t *other = s->value_size <= sizeof(tmp2) ? tmp2 : malloc(s->value_size);
                if (other == NULL) {
                    if (accs != tmp) {
                        free(accs);
                    }
                    return LM_ENOMEM;
                }
                memcpy(other + HDR, sr + 16, s->value_size - HDR);
                acc_merge(s, accs, other);
                if (other != tmp2) {
                    free(other);
                }
                ms = st < ms ? st : ms;
                me = en > me ? en : me;
            } else {
                memcpy(nv + 8 + (size_t)(1 + nkeep) * rec, sr, rec);
                nkeep++;
                min_end = en < min_end ? en : min_end;
            }
        }
        memcpy(merged, &ms, 8);
        memcpy(merged + 8, &me, 8);
        memcpy(merged + 16, accs + HDR, s->value_size - HDR);
        if (accs != tmp) {
            free(accs);
        }
    }
    n = nkeep + 1;
    memcpy(nv, &n, 8);
    min_end = me < min_end ? me : min_end;
    rv = lm_table_put(a->groups, kb, (uint32_t)klen, min_end, nv, (uint32_t)(8 + (size_t)n * rec));
    return rv;
}

/* Whether [t, t + gap) overlaps a session of the group that is still open
 * (every session kept ends after the watermark): a row whose own session
 * would already be over is not late when it falls into one of those. */
static bool
in_open_session(lm_op *op, int64_t t, const uint8_t *kb, size_t klen)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;
    const void *v;
    uint32_t vlen = 0;
    int64_t n = 0;
    size_t rec = sess_rec(s);

    if (lm_table_get(a->groups, kb, (uint32_t)klen, &v, &vlen, NULL) != LM_OK || vlen < 8) {
        return false;
    }
    memcpy(&n, v, 8);
    for (int64_t i = 0; i < n && 8 + (size_t)(i + 1) * rec <= vlen; i++) {
        int64_t st, en;
        memcpy(&st, (const uint8_t *)v + 8 + (size_t)i * rec, 8);
        memcpy(&en, (const uint8_t *)v + 8 + (size_t)i * rec + 8, 8);
        if (st < t + s->gap_us && t < en) {
            return true;
        }
    }
    return false;
}

typedef struct sess_ctx {
    lm_op *op;
    int64_t wm;
    lm_buf keep_keys; /* [u32 klen][key][u32 vlen][value] of lists with open sessions */
    int rv;
} sess_ctx;

static int
sess_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    sess_ctx *c = arg;
    const agg_spec *s = c->op->spec;
    size_t rec = sess_rec(s);
    int64_t n;
    uint8_t *keep;
    int64_t nkeep = 0;
    uint8_t tmp[HDR + 1024];

    (void)ts;
    memcpy(&n, val, 8);
    if ((size_t)vlen != 8 + (size_t)n * rec || s->value_size > sizeof(tmp)) {
        return c->rv = LM_EPROTO;
    }
    if ((keep = malloc(8 + (size_t)n * rec)) == NULL) {
        return c->rv = LM_ENOMEM;
    }
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *sr = (const uint8_t *)val + 8 + (size_t)i * rec;
        int64_t st, en;
        memcpy(&st, sr, 8);
        memcpy(&en, sr + 8, 8);
        if (en <= c->wm) {
            memcpy(tmp + HDR, sr + 16, s->value_size - HDR);
            if ((c->rv = emit_row(c->op, key, klen, st, en, tmp, -1)) != LM_OK) {
                free(keep);
                return c->rv;
            }
        } else {
            memcpy(keep + 8 + (size_t)nkeep * rec, sr, rec);
            nkeep++;
        }
    }
    if (nkeep > 0) {
        uint32_t kl = klen, vl = (uint32_t)(8 + (size_t)nkeep * rec);
        memcpy(keep, &nkeep, 8);
        if (lm_buf_append(&c->keep_keys, &kl, 4) != LM_OK ||
            lm_buf_append(&c->keep_keys, key, klen) != LM_OK ||
            lm_buf_append(&c->keep_keys, &vl, 4) != LM_OK ||
            lm_buf_append(&c->keep_keys, keep, vl) != LM_OK) {
            free(keep);
            return c->rv = LM_ENOMEM;
        }
    }
    free(keep);
    return 0;
}

static int
fire_sessions(lm_op *op, int64_t wm)
{
    agg_state *a = op->state;
    const agg_spec *s = op->spec;
    sess_ctx c = {op, wm, {NULL, 0, 0}, LM_OK};
    size_t rec = sess_rec(s);
    int rv;

    lm_table_expire(a->groups, wm == INT64_MAX ? INT64_MAX : wm + 1, sess_visit, &c);
    rv = c.rv;
    /* put back the lists that still have open sessions */
    for (size_t off = 0; rv == LM_OK && off < c.keep_keys.len;) {
        uint32_t kl, vl;
        const uint8_t *k, *v;
        int64_t n, min_end = INT64_MAX;
        memcpy(&kl, c.keep_keys.p + off, 4);
        k = (const uint8_t *)c.keep_keys.p + off + 4;
        memcpy(&vl, k + kl, 4);
        v = k + kl + 4;
        memcpy(&n, v, 8);
        for (int64_t i = 0; i < n; i++) {
            int64_t en;
            memcpy(&en, v + 8 + (size_t)i * rec + 8, 8);
            min_end = en < min_end ? en : min_end;
        }
        rv = lm_table_put(a->groups, k, kl, min_end, v, vl);
        off += 4 + kl + 4 + vl;
    }
    lm_buf_fini(&c.keep_keys);
    return rv;
}

/* --- window aggregate ------------------------------------------------ */

static int
window_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;
    const int64_t *tcol = s->win == WIN_GIVEN ? NULL : lm_batch_i64(b, s->time_col);
    int rv = LM_OK;

    (void)port;
    for (uint32_t r = 0; r < b->nrows && rv == LM_OK; r++) {
        int64_t t;
        bool any = false;
        a->key.len = 0;
        if ((rv = lm_row_encode(b, s->keys, s->nkeys, r, &a->key, NULL)) != LM_OK) {
            break;
        }
        switch (s->win) {
        case WIN_TUMBLE: {
            int64_t start;
            if (lm_batch_is_null(b, s->time_col, r)) {
                continue;
            }
            t = tcol[r];
            start = floor_div(t, s->size_us) * s->size_us;
            if (start + s->size_us > a->wm) {
                any = true;
                rv = add_to_window(op, b, r, start, start + s->size_us, (uint8_t *)a->key.p,
                                   a->key.len);
            }
            break;
        }
        case WIN_HOP: {
            int64_t last;
            if (lm_batch_is_null(b, s->time_col, r)) {
                continue;
            }
            t = tcol[r];
            last = floor_div(t, s->slide_us) * s->slide_us;
            for (int64_t st = last; st > t - s->size_us && rv == LM_OK; st -= s->slide_us) {
                if (st + s->size_us > a->wm) {
                    any = true;
                    rv = add_to_window(op, b, r, st, st + s->size_us, (uint8_t *)a->key.p,
                                       a->key.len);
                }
            }
            break;
        }
        case WIN_GIVEN: {
            int64_t st = lm_batch_i64(b, s->start_col)[r], en = lm_batch_i64(b, s->end_col)[r];
            if (lm_batch_is_null(b, s->start_col, r) || lm_batch_is_null(b, s->end_col, r)) {
                continue;
            }
            if (en > a->wm) {
                any = true;
                rv = add_to_window(op, b, r, st, en, (uint8_t *)a->key.p, a->key.len);
            }
            break;
        }
        case WIN_SESSION:
            if (lm_batch_is_null(b, s->time_col, r)) {
                continue;
            }
            t = tcol[r];
            if (t + s->gap_us > a->wm || in_open_session(op, t, (uint8_t *)a->key.p, a->key.len)) {
                any = true;
                rv = add_to_session(op, b, r, t, (uint8_t *)a->key.p, a->key.len);
            }
            break;
        default: break;
        }
        if (!any) {
            op->stats.late_rows++;
        }
    }
    op->stats.expr_errors = a->errors;
    lm_batch_free(b);
    return rv;
}

typedef struct fire_ctx {
    lm_op *op;
    int rv;
} fire_ctx;

static int
fire_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    fire_ctx *c = arg;
    int64_t start;
    (void)vlen;
    memcpy(&start, val, 8);
    c->rv = emit_row(c->op, (const uint8_t *)key + 16, klen - 16, start, ts, val, -1);
    return c->rv;
}

static int
window_watermark(lm_op *op, int64_t wm)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;
    int64_t upto = wm == INT64_MAX ? INT64_MAX : wm + 1;
    int rv;

    if (wm <= a->wm) {
        return LM_OK;
    }
    a->wm = wm;
    if (s->win == WIN_SESSION) {
        rv = fire_sessions(op, wm);
    } else {
        fire_ctx c = {op, LM_OK};
        lm_table_expire(a->groups, upto, fire_visit, &c);
        rv = c.rv;
        if (rv == LM_OK && a->distinct != NULL) {
            lm_table_expire(a->distinct, upto, NULL, NULL);
        }
    }
    if (rv == LM_OK) {
        rv = flush_out(op);
    }
    return rv == LM_OK ? lm_op_emit_watermark(op, wm) : rv;
}

/* --- updating aggregate ------------------------------------------------- */

/* Remembers that the group with these key bytes changed in this batch,
 * with its value before (or none). */
static int
touch(agg_state *a, const agg_spec *s, const uint8_t *key, size_t klen, const uint8_t *old)
{
    bool fresh;
    int64_t *idx;

    if ((idx = lm_table_upsert(a->touched_set, key, (uint32_t)klen, 0, &fresh)) == NULL) {
        return LM_ENOMEM;
    }
    if (!fresh) {
        return LM_OK;
    }
    if (a->ntouched == a->captouched) {
        uint32_t cap = a->captouched ? a->captouched * 2 : 64;
        lm_buf *k = realloc(a->touched_keys, cap * sizeof(lm_buf));
        lm_buf *o;
        if (k == NULL) {
            return LM_ENOMEM;
        }
        a->touched_keys = k;
        if ((o = realloc(a->touched_old, cap * sizeof(lm_buf))) == NULL) {
            return LM_ENOMEM;
        }
        a->touched_old = o;
        for (uint32_t i = a->captouched; i < cap; i++) {
            lm_buf_init(&a->touched_keys[i]);
            lm_buf_init(&a->touched_old[i]);
        }
        a->captouched = cap;
    }
    /* an empty key (no keys) must still have a valid pointer */
    if (a->touched_keys[a->ntouched].p == NULL &&
        lm_buf_append(&a->touched_keys[a->ntouched], "", 1) != LM_OK) {
        return LM_ENOMEM;
    }
    a->touched_keys[a->ntouched].len = 0;
    a->touched_old[a->ntouched].len = 0;
    if (lm_buf_append(&a->touched_keys[a->ntouched], key, klen) != LM_OK ||
        (old != NULL && lm_buf_append(&a->touched_old[a->ntouched], old, s->value_size) != LM_OK)) {
        return LM_ENOMEM;
    }
    a->ntouched++;
    return LM_OK;
}

static int
update_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;
    uint32_t rcol = b->schema->nfields - 1;
    int rv = LM_OK;

    (void)port;
    for (uint32_t r = 0; r < b->nrows && rv == LM_OK; r++) {
        int sign = s->changelog_in && lm_batch_bools(b, rcol)[r] ? -1 : 1;
        int64_t t = s->ttl_us > 0 ? lm_batch_i64(b, s->time_col)[r] : 0;
        uint8_t *val;
        bool created;
        int64_t *hdr;
        if (s->ttl_us > 0 && t + s->ttl_us <= a->wm) {
            op->stats.late_rows++;
            continue;
        }
        a->key.len = 0;
        if ((rv = lm_row_encode(b, s->keys, s->nkeys, r, &a->key, NULL)) != LM_OK) {
            break;
        }
        val = lm_table_find(a->groups, a->key.p, (uint32_t)a->key.len);
        if ((rv = touch(a, s, (uint8_t *)a->key.p, a->key.len,
                        val != NULL && ((int64_t *)(void *)val)[1] > 0 ? val : NULL)) != LM_OK) {
            break;
        }
        if (sign < 0 && val == NULL) {
            continue; /* a retraction of a row we never saw (or forgot: TTL) */
        }
        if (s->ttl_us > 0) {
            /* a new time: re-put the entry (times are part of expiring tables;
             * an upsert keeps the time an entry was created with) */
            const void *cv;
            int64_t cts;
            if (lm_table_get(a->groups, a->key.p, (uint32_t)a->key.len, &cv, NULL, &cts) == LM_OK &&
                cts < t &&
                (rv = lm_table_put(a->groups, a->key.p, (uint32_t)a->key.len, t, cv,
                                   s->value_size)) != LM_OK) {
                break;
            }
            val = lm_table_upsert(a->groups, a->key.p, (uint32_t)a->key.len, t, &created);
        } else {
            val = lm_table_upsert(a->groups, a->key.p, (uint32_t)a->key.len, 0, &created);
        }
        if (val == NULL) {
            rv = LM_ENOMEM;
            break;
        }
        hdr = (int64_t *)(void *)val;
        if (created) {
            memset(val, 0, HDR);
            acc_init(s, val);
        }
        hdr[0] = t > hdr[0] ? t : hdr[0];
        hdr[1] += sign;
        acc_update(s, val, b, r, sign, &a->errors);
        for (uint32_t i = 0; s->distinct && i < s->naggs && rv == LM_OK; i++) {
            const agg_def *ad = &s->aggs[i];
            uint8_t idx = (uint8_t)i;
            int64_t *cnt;
            bool fresh;
            if (ad->fn != FN_COUNT_DISTINCT || lm_batch_is_null(b, ad->arg, r)) {
                continue;
            }
            a->key2.len = 0;
            if (lm_buf_append(&a->key2, a->key.p, a->key.len) != LM_OK ||
                lm_buf_append(&a->key2, &idx, 1) != LM_OK ||
                lm_row_encode(b, &ad->arg, 1, r, &a->key2, NULL) != LM_OK ||
                (cnt = lm_table_upsert(a->distinct, a->key2.p, (uint32_t)a->key2.len, t, &fresh)) ==
                    NULL) {
                rv = LM_ENOMEM;
                break;
            }
            val = lm_table_find(a->groups, a->key.p, (uint32_t)a->key.len);
            if (sign > 0 && (*cnt)++ == 0) {
                acc64(val, ad)[0]++;
            } else if (sign < 0 && *cnt > 0 && --(*cnt) == 0) {
                acc64(val, ad)[0]--;
                lm_table_delete(a->distinct, a->key2.p, (uint32_t)a->key2.len);
            }
        }
    }
    lm_batch_free(b);
    /* Emit the changes: for each touched group, retract the old result and
     * insert the new one (nothing when they are the same). */
    for (uint32_t i = 0; i < a->ntouched && rv == LM_OK; i++) {
        lm_buf *k = &a->touched_keys[i], *old = &a->touched_old[i];
        uint8_t *cur = lm_table_find(a->groups, k->p, (uint32_t)k->len);
        bool alive = cur != NULL && ((int64_t *)(void *)cur)[1] > 0;
        lm_table_delete(a->touched_set, k->p, (uint32_t)k->len);
        if (old->len > 0 && alive && memcmp(old->p + HDR, cur + HDR, s->value_size - HDR) == 0) {
            continue;
        }
        if (old->len > 0) {
            rv = emit_row(op, (uint8_t *)k->p, k->len, 0, 0, (uint8_t *)old->p, 1);
        }
        if (rv == LM_OK && alive) {
            rv = emit_row(op, (uint8_t *)k->p, k->len, 0, 0, cur, 0);
        }
        if (rv == LM_OK && cur != NULL && !alive) {
            lm_table_delete(a->groups, k->p, (uint32_t)k->len);
        }
    }
    a->ntouched = 0;
    op->stats.expr_errors = a->errors;
    return rv == LM_OK ? flush_out(op) : rv;
}

/* TTL: the count_distinct values whose entries expire. An entry keeps the
 * time its value was first seen, which may be older than its group's last
 * update: the values of a group still alive are kept (given the group's
 * time), the others forgotten with their group. */
typedef struct ttl_ctx {
    lm_op *op;
    lm_buf keep; /* [u32 klen][key][int64 group time][int64 count] */
    int rv;
} ttl_ctx;

static int
ttl_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    ttl_ctx *c = arg;
    const agg_spec *s = c->op->spec;
    agg_state *a = c->op->state;
    lm_type types[LM_SCHEMA_MAX_FIELDS];
    const uint8_t *p = key;
    const void *gv;
    int64_t gts;

    (void)ts;
    for (uint32_t i = 0; i < s->nkeys; i++) {
        types[i] = c->op->def->inputs[0]->fields[s->keys[i]].type;
    }
    if (vlen != sizeof(int64_t) ||
        lm_row_skip(types, s->nkeys, &p, (const uint8_t *)key + klen) != LM_OK ||
        lm_table_get(a->groups, key, (uint32_t)(p - (const uint8_t *)key), &gv, NULL, &gts) !=
            LM_OK) {
        return 0; /* its group is gone */
    }
    if (lm_buf_append(&c->keep, &klen, 4) != LM_OK || lm_buf_append(&c->keep, key, klen) != LM_OK ||
        lm_buf_append(&c->keep, &gts, 8) != LM_OK || lm_buf_append(&c->keep, val, 8) != LM_OK) {
        return c->rv = LM_ENOMEM;
    }
    return 0;
}

static int
update_watermark(lm_op *op, int64_t wm)
{
    const agg_spec *s = op->spec;
    agg_state *a = op->state;

    if (wm <= a->wm) {
        return LM_OK;
    }
    a->wm = wm;
    if (s->ttl_us > 0 && wm != INT64_MAX && wm > INT64_MIN + s->ttl_us) {
        /* forget groups not updated within the TTL, i.e. last updated at
         * or before wm - ttl, as late rows are (nothing is retracted) */
        int64_t upto = wm - s->ttl_us + 1;
        lm_table_expire(a->groups, upto, NULL, NULL);
        if (a->distinct != NULL) {
            ttl_ctx c = {op, {NULL, 0, 0}, LM_OK};
            int rv;
            lm_table_expire(a->distinct, upto, ttl_visit, &c);
            rv = c.rv;
            for (size_t off = 0; rv == LM_OK && off < c.keep.len;) {
                uint32_t kl;
                int64_t gts;
                memcpy(&kl, c.keep.p + off, 4);
                memcpy(&gts, c.keep.p + off + 4 + kl, 8);
                rv = lm_table_put(a->distinct, c.keep.p + off + 4, kl, gts,
                                  c.keep.p + off + 12 + kl, 8);
                off += 4 + kl + 16;
            }
            lm_buf_fini(&c.keep);
            if (rv != LM_OK) {
                return rv;
            }
        }
    }
    return lm_op_emit_watermark(op, wm);
}

const lm_op_kind lm_op_window_aggregate = {
    .name = "window_aggregate",
    .min_inputs = 1,
    .max_inputs = 1,
    .prepare = window_prepare,
    .spec_free = spec_free,
    .open = agg_open,
    .on_batch = window_batch,
    .on_watermark = window_watermark,
    .on_barrier = agg_barrier,
    .close = agg_close,
};

const lm_op_kind lm_op_aggregate = {
    .name = "aggregate",
    .min_inputs = 1,
    .max_inputs = 1,
    .prepare = update_prepare,
    .spec_free = spec_free,
    .open = agg_open,
    .on_batch = update_batch,
    .on_watermark = update_watermark,
    .on_barrier = agg_barrier,
    .close = agg_close,
};
