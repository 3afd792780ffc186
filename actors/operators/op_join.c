/*
 * op_join.c: the joins: "join" (updating equi-join), "interval_join"
 * (event-time bounded equi-join) and "window_join" (rows of one window).
 *
 * Shared configuration. Port 0 is the left input, port 1 the right one.
 * "left_keys" / "right_keys" (arrays of column names, same length, the
 * i-th columns of the same type) are the equi-join condition; a null key
 * never matches. The joined ("combined") row has the left columns named
 * "left.<name>" then the right ones named "right.<name>"; "condition"
 * (optional, boolean) is a residual predicate over it and "project"
 * (required, [{"name", "expr"}...]) gives the output columns, checked
 * against the declared output schema as calc checks its projection. A
 * stream whose last column is a bool "_retract" is a changelog (true: the
 * removal of one earlier identical row); a changelog output ends with
 * "_retract" after the projected columns.
 *
 * join: "type" "inner" (default) or "left" (left outer). Inputs may be
 *   changelogs. The output is a changelog when the type is "left" or an
 *   input is one, else append-only. A left row without a match comes out
 *   with nulls for the right columns; when its first match arrives that
 *   row is retracted, and when its last match goes away (a right
 *   retraction) it comes back. Optional "ttl_ms" with "left_time" and
 *   "right_time" (timestamp columns): a stored row goes once the watermark
 *   passes its time + ttl (it no longer joins; nothing is retracted), and
 *   rows whose time is behind the watermark are late. Without a TTL rows
 *   are kept forever.
 * interval_join: inner, append-only. "left_time", "right_time"; a pair
 *   matches when the keys are equal and lower <= right.time <= upper with
 *   lower = left.time + "lower_ms" (default 0) and upper = left.time +
 *   "upper_ms" or the left timestamp column "upper_column" (one of the
 *   two). A left row is kept until the watermark passes its upper bound, a
 *   right row until it passes right.time - lower_ms.
 * window_join: inner, append-only. "left_window_end", "right_window_end"
 *   (timestamp columns). Rows wait per window end; when the watermark
 *   reaches a window's end, its left and right rows are hash-joined and
 *   emitted, and the window is dropped.
 *
 * Time: a row whose time is behind the watermark at arrival (window join:
 * whose window end is at or behind it) is late: dropped and counted in
 * stats.late_rows.
 *
 * State: every stored row is in a table ("left", "right"), encoded with
 * lm_row; "meta" holds the next sequence number and the watermark.
 *  - join and window join: under the key [join key bytes][8-byte
 *    big-endian sequence number]. A left outer join's left rows carry
 *    their match count (8 bytes, little-endian) before the row. The join
 *    finds the rows of a key through an in-memory index (key -> entries)
 *    derived from the tables: rebuilt from them in open() and kept in step
 *    with every insertion, deletion and expiry.
 *  - interval join: APPEND tables, the rows numbered in arrival order and
 *    expired in that order as the watermark passes them; each row is led
 *    by the number of the previous row with its key (a chain, newest
 *    first), its time bounds and its key, and an in-memory map gives each
 *    key's newest row (rebuilt in open()). Rows that expire leave the map
 *    and the chains alone: a chain ends at a number the table no longer
 *    holds. So a row costs an append and a map update, and leaving costs
 *    nothing.
 *
 * The watermark is kept too, so that a restored operator judges lateness
 * as the one it replaces did.
 *
 * Evaluation: the pairs a batch (or a window) produces are gathered into a
 * combined batch (the probing side's columns copied column by column, the
 * stored side's rows decoded), then the condition and the projection run
 * vectorized over it. Join keys are encoded and hashed column by column
 * per batch. A batch goes in chunks of about batch_rows candidate pairs:
 * first every row of the chunk looks its key up in the other side's index
 * (the interval join also checks the time range) and the condition is
 * evaluated over all the chunk's pairs; then, for "join", the rows apply
 * to the state one by one in order (stored; or, for a retraction, found by
 * its bytes and removed; left outer match counts updated), listing what
 * comes out in that order (pairs, their retractions, null-padded rows);
 * the listed rows are gathered and projected. The interval join stores a
 * batch's rows after all of them probed (rows of one side never match each
 * other). Scratch buffers live as long as the operator.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "lm_expr.h"
#include "lm_op.h"
#include "lm_row.h"

#define NONE       UINT32_MAX
#define MAX_KEYS   32 /* key columns */
#define SEQ_LEN    8  /* sequence number bytes at the end of a table key */
#define COUNT_LEN  8  /* match count before a left outer join's left rows */
#define INLINE_KEY 24 /* index keys up to this long live in the group */

enum { KIND_JOIN = 0, KIND_INTERVAL = 1, KIND_WINDOW = 2 };

static const char *const kind_names[] = {"join", "interval_join", "window_join"};

/* --- spec -------------------------------------------------------------- */

typedef struct side_spec {
    uint32_t nkeys;          /* key columns */
    uint32_t keys[MAX_KEYS]; /* their input column indices */
    uint32_t ndata;          /* input columns other than _retract */
    bool changelog;          /* the input ends with _retract */
    int32_t time_col;        /* ttl time, interval time or window end; -1: none */
    int32_t upper_col;       /* interval join, left: the upper bound column; -1: none */
    uint32_t off;            /* first column in the combined row */
    uint32_t *ccols;         /* off .. off + ndata - 1 (decoding into the combined batch) */
    uint32_t *dcols;         /* 0 .. ndata - 1 (encoding rows) */
    lm_type *types;          /* types of the data columns */
} side_spec;

typedef struct join_spec {
    int kind;            /* KIND_* */
    side_spec side[2];   /* left, right */
    lm_schema *combined; /* left.* then right.* */
    lm_expr *cond;       /* residual predicate, or NULL */
    lm_expr **proj;      /* nproj output columns over the combined row */
    uint32_t nproj;
    bool out_retract; /* the output ends with _retract */
    bool left_outer;  /* join "type": "left" */
    bool ttl;         /* join: rows expire */
    int64_t ttl_us;   /* join: how long after their time */
    int64_t lower_us; /* interval join: lower bound offset */
    int64_t upper_us; /* interval join: upper bound offset (without upper_column) */
} join_spec;

static void
spec_free(void *p)
{
    join_spec *s = p;

    if (s == NULL) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        free(s->side[i].ccols);
        free(s->side[i].dcols);
        free(s->side[i].types);
    }
    lm_schema_release(s->combined);
    lm_expr_free(s->cond);
    for (uint32_t i = 0; s->proj != NULL && i < s->nproj; i++) {
        lm_expr_free(s->proj[i]);
    }
    free(s->proj);
    free(s);
}

static const char *const side_name[] = {"left", "right"};

/* Reads one side's keys and shape. */
static int
side_prepare(const lm_op_def *def, uint32_t port, side_spec *sd, lm_error *err)
{
    const lm_schema *in = def->inputs[port];
    char key[32];
    const json_t *a;
    uint32_t nf = in->nfields;
    int rv;

    snprintf(key, sizeof(key), "%s_keys", side_name[port]);
    a = json_object_get(def->config, key);
    sd->time_col = sd->upper_col = -1;
    sd->changelog = nf > 0 && strcmp(in->fields[nf - 1].name, "_retract") == 0;
    if (sd->changelog && in->fields[nf - 1].type != LM_TYPE_BOOL) {
        return lm_error_set(err, LM_EINVAL, "the %s input's '_retract' column must be bool, not %s",
                            side_name[port], lm_type_name(in->fields[nf - 1].type));
    }
    sd->ndata = nf - (sd->changelog ? 1 : 0);
    if (sd->ndata == 0) {
        return lm_error_set(err, LM_EINVAL, "the %s input has no data columns", side_name[port]);
    }
    sd->ccols = calloc(sd->ndata, sizeof(uint32_t));
    sd->dcols = calloc(sd->ndata, sizeof(uint32_t));
    sd->types = calloc(sd->ndata, sizeof(lm_type));
    if (sd->ccols == NULL || sd->dcols == NULL || sd->types == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < sd->ndata; i++) {
        sd->dcols[i] = i;
        sd->types[i] = in->fields[i].type;
    }
    if (a == NULL) {
        return lm_error_set(err, LM_ENOTFOUND, "config: \"%s\" is required", key);
    }
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > MAX_KEYS) {
        return lm_error_set(err, LM_EINVAL,
                            "config: \"%s\" must be an array of 1 to %d column names", key,
                            MAX_KEYS);
    }
    sd->nkeys = (uint32_t)json_array_size(a);
    for (uint32_t i = 0; i < sd->nkeys; i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_string(v)) {
            return lm_error_set(err, LM_EINVAL, "config: \"%s\"[%u] must be a column name", key, i);
        }
        if ((rv = lm_op_column(in, json_string_value(v), &sd->keys[i], err)) != LM_OK) {
            lm_error_prefix(err, "config: \"%s\"[%u]", key, i);
            return rv;
        }
        if (sd->keys[i] >= sd->ndata) {
            return lm_error_set(err, LM_EINVAL, "config: \"%s\"[%u]: '_retract' cannot be a key",
                                key, i);
        }
    }
    return LM_OK;
}

/* Reads a timestamp column named by config key `key` of input port. */
static int
time_column(const lm_op_def *def, uint32_t port, const char *key, int32_t *out, lm_error *err)
{
    const char *name;
    uint32_t c;
    int rv;

    if ((rv = lm_op_cfg_str(def->config, key, NULL, &name, err)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_op_column(def->inputs[port], name, &c, err)) != LM_OK) {
        lm_error_prefix(err, "config: \"%s\"", key);
        return rv;
    }
    if (def->inputs[port]->fields[c].type != LM_TYPE_TIMESTAMP) {
        return lm_error_set(err, LM_EINVAL, "config: \"%s\": column '%s' is %s, not a timestamp",
                            key, name, lm_type_name(def->inputs[port]->fields[c].type));
    }
    *out = (int32_t)c;
    return LM_OK;
}

/* The combined schema: left.<name>..., right.<name>... */
static int
combined_schema(const lm_op_def *def, join_spec *s, lm_error *err)
{
    uint32_t nl = s->side[0].ndata, nr = s->side[1].ndata, n = nl + nr;
    lm_field *f = calloc(n, sizeof(lm_field));
    char **names = calloc(n, sizeof(char *));
    int rv = LM_OK;

    if (f == NULL || names == NULL) {
        rv = LM_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t port = i < nl ? 0 : 1, c = i < nl ? i : i - nl;
        const lm_field *in = &def->inputs[port]->fields[c];
        size_t len = strlen(in->name) + 7;
        if ((names[i] = malloc(len)) == NULL) {
            rv = LM_ENOMEM;
            goto out;
        }
        snprintf(names[i], len, "%s.%s", side_name[port], in->name);
        f[i].name = names[i];
        f[i].type = in->type;
        f[i].nullable = in->nullable || (port == 1 && s->left_outer);
        s->side[port].ccols[c] = i;
    }
    s->side[0].off = 0;
    s->side[1].off = nl;
    rv = lm_schema_new(f, n, &s->combined, err);
out:
    for (uint32_t i = 0; names != NULL && i < n; i++) {
        free(names[i]);
    }
    free(names);
    free(f);
    return rv;
}

/* Keys, the combined row, the condition and the projection: the part
 * every kind shares. */
static int
common_prepare(const lm_op_def *def, join_spec *s, lm_error *err)
{
    const json_t *cond = json_object_get(def->config, "condition");
    const json_t *proj = json_object_get(def->config, "project");
    const lm_schema *out = def->output;
    int rv;

    for (uint32_t p = 0; p < 2; p++) {
        if ((rv = side_prepare(def, p, &s->side[p], err)) != LM_OK) {
            return rv;
        }
    }
    if (s->side[0].nkeys != s->side[1].nkeys) {
        return lm_error_set(err, LM_EINVAL,
                            "config: \"left_keys\" has %u columns but \"right_keys\" has %u",
                            s->side[0].nkeys, s->side[1].nkeys);
    }
    for (uint32_t i = 0; i < s->side[0].nkeys; i++) {
        const lm_field *l = &def->inputs[0]->fields[s->side[0].keys[i]];
        const lm_field *r = &def->inputs[1]->fields[s->side[1].keys[i]];
        if (l->type != r->type) {
            return lm_error_set(err, LM_EINVAL,
                                "config: key %u: left '%s' is %s but right '%s' is %s", i, l->name,
                                lm_type_name(l->type), r->name, lm_type_name(r->type));
        }
    }
    if (s->kind != KIND_JOIN) {
        for (uint32_t p = 0; p < 2; p++) {
            if (s->side[p].changelog) {
                return lm_error_set(err, LM_EINVAL,
                                    "%s takes append-only inputs, but the %s input is a changelog "
                                    "(ends with '_retract')",
                                    kind_names[s->kind], side_name[p]);
            }
        }
    }
    if ((rv = combined_schema(def, s, err)) != LM_OK) {
        return rv;
    }
    if (cond != NULL) {
        if ((rv = lm_expr_compile(cond, s->combined, &s->cond, err)) != LM_OK) {
            lm_error_prefix(err, "condition");
            return rv;
        }
        if (lm_expr_type(s->cond) != LM_TYPE_BOOL) {
            return lm_error_set(err, LM_EINVAL, "condition: must be a boolean expression");
        }
    }
    /* The output. */
    if (s->out_retract) {
        const lm_field *last = out->nfields > 0 ? &out->fields[out->nfields - 1] : NULL;
        if (last == NULL || strcmp(last->name, "_retract") != 0 || last->type != LM_TYPE_BOOL) {
            return lm_error_set(err, LM_EINVAL,
                                "the output is a changelog (%s): the output schema must end with "
                                "\"_retract\" (bool)",
                                s->left_outer ? "a left outer join" : "an input is a changelog");
        }
        s->nproj = out->nfields - 1;
    } else {
        if (out->nfields > 0 && strcmp(out->fields[out->nfields - 1].name, "_retract") == 0) {
            return lm_error_set(err, LM_EINVAL,
                                "the output is append-only (inner join of append-only inputs): "
                                "the output schema must not end with \"_retract\"");
        }
        s->nproj = out->nfields;
    }
    if (s->nproj == 0) {
        return lm_error_set(err, LM_EINVAL, "the output schema has no projected columns");
    }
    if (proj == NULL) {
        return lm_error_set(err, LM_ENOTFOUND, "config: \"project\" is required");
    }
    if (!json_is_array(proj) || json_array_size(proj) != s->nproj) {
        return lm_error_set(err, LM_EINVAL,
                            "\"project\" must be an array of %u {\"name\", \"expr\"} (one per "
                            "output column%s)",
                            s->nproj, s->out_retract ? " before _retract" : "");
    }
    if ((s->proj = calloc(s->nproj, sizeof(lm_expr *))) == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < s->nproj; i++) {
        const json_t *p = json_array_get(proj, i);
        const json_t *name = json_object_get(p, "name"), *expr = json_object_get(p, "expr");
        const lm_field *f = &out->fields[i];
        int t;
        if (!json_is_string(name) || expr == NULL) {
            return lm_error_set(err, LM_EINVAL, "project[%u]: needs \"name\" and \"expr\"", i);
        }
        if (strcmp(json_string_value(name), f->name) != 0) {
            return lm_error_set(err, LM_EINVAL,
                                "project[%u]: named '%s' but output column %u is '%s'", i,
                                json_string_value(name), i, f->name);
        }
        if ((rv = lm_expr_compile(expr, s->combined, &s->proj[i], err)) != LM_OK) {
            lm_error_prefix(err, "project[%u] '%s'", i, f->name);
            return rv;
        }
        t = lm_expr_type(s->proj[i]);
        if (t != (int)f->type) {
            return lm_error_set(
                err, LM_EINVAL, "project[%u] '%s': the expression is %s, the column %s", i, f->name,
                t == LM_TYPE_INTERVAL ? "interval" : lm_type_name(t), lm_type_name(f->type));
        }
        if (lm_expr_nullable(s->proj[i]) && !f->nullable) {
            return lm_error_set(err, LM_EINVAL,
                                "project[%u] '%s': the expression can be null but the column is "
                                "not nullable",
                                i, f->name);
        }
    }
    return LM_OK;
}

static int
join_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    static const char *const keys[] = {"left_keys", "right_keys", "type",
                                       "condition", "project",    "ttl_ms",
                                       "left_time", "right_time", NULL};
    join_spec *s = calloc(1, sizeof(*s));
    const char *type;
    bool has_lt, has_rt;
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    s->kind = KIND_JOIN;
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK ||
        (rv = lm_op_cfg_str(def->config, "type", "inner", &type, err)) != LM_OK) {
        goto fail;
    }
    if (strcmp(type, "left") == 0) {
        s->left_outer = true;
    } else if (strcmp(type, "inner") != 0) {
        rv = lm_error_set(err, LM_EINVAL,
                          "config: \"type\" must be \"inner\" or \"left\", not \"%s\"", type);
        goto fail;
    }
    s->ttl = json_object_get(def->config, "ttl_ms") != NULL;
    has_lt = json_object_get(def->config, "left_time") != NULL;
    has_rt = json_object_get(def->config, "right_time") != NULL;
    if (s->ttl != has_lt || s->ttl != has_rt) {
        rv = lm_error_set(err, LM_EINVAL,
                          "config: \"ttl_ms\", \"left_time\" and \"right_time\" go "
                          "together (a TTL needs both time columns)");
        goto fail;
    }
    if (s->ttl) {
        int64_t ttl;
        if ((rv = lm_op_cfg_i64(def->config, "ttl_ms", 0, 0, INT64_MAX / 1000, &ttl, err)) !=
            LM_OK) {
            goto fail;
        }
        s->ttl_us = ttl * 1000;
    }
    s->out_retract =
        s->left_outer ||
        lm_schema_find(def->inputs[0], "_retract") == (int)def->inputs[0]->nfields - 1 ||
        lm_schema_find(def->inputs[1], "_retract") == (int)def->inputs[1]->nfields - 1;
    if ((rv = common_prepare(def, s, err)) != LM_OK) {
        goto fail;
    }
    if (s->ttl && ((rv = time_column(def, 0, "left_time", &s->side[0].time_col, err)) != LM_OK ||
                   (rv = time_column(def, 1, "right_time", &s->side[1].time_col, err)) != LM_OK)) {
        goto fail;
    }
    *spec = s;
    return LM_OK;
fail:
    spec_free(s);
    return rv;
}

static int
interval_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    static const char *const keys[] = {"left_keys", "right_keys", "left_time",    "right_time",
                                       "lower_ms",  "upper_ms",   "upper_column", "condition",
                                       "project",   NULL};
    const int64_t lim = INT64_MAX / 1000;
    join_spec *s = calloc(1, sizeof(*s));
    bool has_upper, has_col;
    int64_t lower, upper;
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    s->kind = KIND_INTERVAL;
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK ||
        (rv = common_prepare(def, s, err)) != LM_OK ||
        (rv = time_column(def, 0, "left_time", &s->side[0].time_col, err)) != LM_OK ||
        (rv = time_column(def, 1, "right_time", &s->side[1].time_col, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "lower_ms", 0, -lim, lim, &lower, err)) != LM_OK) {
        goto fail;
    }
    has_upper = json_object_get(def->config, "upper_ms") != NULL;
    has_col = json_object_get(def->config, "upper_column") != NULL;
    if (has_upper == has_col) {
        rv = lm_error_set(err, LM_EINVAL,
                          "config: give exactly one of \"upper_ms\" and \"upper_column\"");
        goto fail;
    }
    if (has_upper) {
        if ((rv = lm_op_cfg_i64(def->config, "upper_ms", 0, -lim, lim, &upper, err)) != LM_OK) {
            goto fail;
        }
        if (upper < lower) {
            rv = lm_error_set(err, LM_EINVAL,
                              "config: \"upper_ms\" (%" PRId64 ") is below \"lower_ms\" (%" PRId64
                              "): nothing could match",
                              upper, lower);
            goto fail;
        }
        s->upper_us = upper * 1000;
    } else if ((rv = time_column(def, 0, "upper_column", &s->side[0].upper_col, err)) != LM_OK) {
        goto fail;
    }
    s->lower_us = lower * 1000;
    *spec = s;
    return LM_OK;
fail:
    spec_free(s);
    return rv;
}

static int
window_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    static const char *const keys[] = {
        "left_keys", "right_keys", "left_window_end", "right_window_end", "condition",
        "project",   NULL};
    join_spec *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    s->kind = KIND_WINDOW;
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK ||
        (rv = common_prepare(def, s, err)) != LM_OK ||
        (rv = time_column(def, 0, "left_window_end", &s->side[0].time_col, err)) != LM_OK ||
        (rv = time_column(def, 1, "right_window_end", &s->side[1].time_col, err)) != LM_OK) {
        spec_free(s);
        return rv;
    }
    *spec = s;
    return LM_OK;
}

/* --- helpers ------------------------------------------------------------ */

static inline int64_t
sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        return b > 0 ? INT64_MAX : INT64_MIN;
    }
    return r;
}

static inline void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint64_t
get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t
get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Grows *p (elements of elem bytes, *cap of them) to hold need. */
static int
grow(void **p, uint32_t *cap, uint64_t need, size_t elem)
{
    uint64_t c = *cap ? *cap : 64;
    void *np;

    if (need <= *cap) {
        return LM_OK;
    }
    while (c < need) {
        c *= 2;
    }
    if (c > UINT32_MAX || (np = realloc(*p, (size_t)c * elem)) == NULL) {
        return LM_ENOMEM;
    }
    *p = np;
    *cap = (uint32_t)c;
    return LM_OK;
}

#define ENSURE(arr, cap, need) grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

/* --- the index: join key -> stored entries ----------------------------- */

typedef struct ix_entry {
    uint64_t seq;        /* the row's sequence number (its table key's end) */
    int64_t a, b;        /* interval join: left [lower, upper], right: a = time */
    uint32_t next, prev; /* in the group's list, oldest first; next links the free list */
    uint32_t group;      /* its group */
} ix_entry;

typedef struct ix_group {
    uint64_t hash;           /* of the key bytes */
    uint8_t *heap;           /* key bytes when longer than INLINE_KEY */
    uint8_t inl[INLINE_KEY]; /* else here */
    uint32_t klen;           /* key length */
    uint32_t head, tail;     /* entries; head links the free list when unused */
    uint32_t count;          /* entries (0: an empty group, still indexed, or unused) */
    uint8_t used;            /* in the slots (else on the free list) */
} ix_group;

typedef struct jindex {
    ix_entry *e; /* entries */
    uint32_t ne, ecap, efree;
    uint64_t *sk;    /* entries by sequence number: open addressing, seq + 1 (0: empty) */
    uint32_t *sv;    /* the entry of each sk slot */
    uint32_t nsk;    /* slots, a power of two */
    uint32_t nsused; /* entries in them */
    ix_group *g;     /* groups (one per distinct key) */
    uint32_t ng, gcap, gfree;
    uint64_t *slots; /* open addressing over groups: hash >> 32 << 32 | group + 1; 0 empty */
    uint32_t nslots; /* power of two */
    uint32_t nused;  /* groups in slots */
    uint32_t nempty; /* of those, groups without entries (dropped in bulk: ix_compact) */
} jindex;

static inline const uint8_t *
gkey(const ix_group *g)
{
    return g->klen > INLINE_KEY ? g->heap : g->inl;
}

static int
ix_init(jindex *ix)
{
    ix->efree = ix->gfree = NONE;
    ix->nslots = 64;
    ix->slots = calloc(ix->nslots, sizeof(uint64_t));
    ix->nsk = 64;
    ix->sk = calloc(ix->nsk, sizeof(uint64_t));
    ix->sv = calloc(ix->nsk, sizeof(uint32_t));
    return ix->slots != NULL && ix->sk != NULL && ix->sv != NULL ? LM_OK : LM_ENOMEM;
}

/* --- entries by sequence number (expiry and retraction find an entry
 * without walking its group) --- */

static inline uint32_t
seq_home(uint64_t seq, uint32_t mask)
{
    return (uint32_t)((seq * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static void
seq_place(uint64_t *sk, uint32_t *sv, uint32_t n, uint64_t seq, uint32_t ei)
{
    uint32_t mask = n - 1, i = seq_home(seq, mask);
    while (sk[i] != 0) {
        i = (i + 1) & mask;
    }
    sk[i] = seq + 1;
    sv[i] = ei;
}

static int
seq_put(jindex *ix, uint64_t seq, uint32_t ei)
{
    if ((ix->nsused + 1) * 2 > ix->nsk) {
        uint32_t n = ix->nsk * 2;
        uint64_t *nk = calloc(n, sizeof(uint64_t));
        uint32_t *nv = calloc(n, sizeof(uint32_t));
        if (nk == NULL || nv == NULL) {
            free(nk);
            free(nv);
            return LM_ENOMEM;
        }
        for (uint32_t i = 0; i < ix->nsk; i++) {
            if (ix->sk[i] != 0) {
                seq_place(nk, nv, n, ix->sk[i] - 1, ix->sv[i]);
            }
        }
        free(ix->sk);
        free(ix->sv);
        ix->sk = nk;
        ix->sv = nv;
        ix->nsk = n;
    }
    seq_place(ix->sk, ix->sv, ix->nsk, seq, ei);
    ix->nsused++;
    return LM_OK;
}

/* The slot of seq, or NONE. */
static uint32_t
seq_slot(const jindex *ix, uint64_t seq)
{
    uint32_t mask = ix->nsk - 1;
    for (uint32_t i = seq_home(seq, mask);; i = (i + 1) & mask) {
        if (ix->sk[i] == seq + 1) {
            return i;
        }
        if (ix->sk[i] == 0) {
            return NONE;
        }
    }
}

/* Removes slot i (backward-shift deletion: no tombstones). */
static void
seq_del(jindex *ix, uint32_t i)
{
    uint32_t mask = ix->nsk - 1, j = i;

    for (;;) {
        uint32_t home;
        ix->sk[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (ix->sk[j] == 0) {
                ix->nsused--;
                return;
            }
            home = seq_home(ix->sk[j] - 1, mask);
            if (!(i <= j ? (home > i && home <= j) : (home > i || home <= j))) {
                break;
            }
        }
        ix->sk[i] = ix->sk[j];
        ix->sv[i] = ix->sv[j];
        i = j;
    }
}

static void
ix_fini(jindex *ix)
{
    for (uint32_t i = 0; i < ix->ng; i++) {
        if (ix->g[i].used && ix->g[i].klen > INLINE_KEY) {
            free(ix->g[i].heap);
        }
    }
    free(ix->e);
    free(ix->g);
    free(ix->slots);
    free(ix->sk);
    free(ix->sv);
    memset(ix, 0, sizeof(*ix));
}

static uint32_t
ix_find(const jindex *ix, uint64_t h, const uint8_t *k, uint32_t klen)
{
    uint32_t mask = ix->nslots - 1;
    uint64_t tag = h >> 32;

    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint64_t s = ix->slots[i];
        const ix_group *g;
        if (s == 0) {
            return NONE;
        }
        if ((s >> 32) != tag) {
            continue;
        }
        g = &ix->g[(uint32_t)s - 1];
        if (g->hash == h && g->klen == klen && memcmp(gkey(g), k, klen) == 0) {
            return (uint32_t)s - 1;
        }
    }
}

/* Brings the slot a key hashes to into the cache ahead of its lookup. */
static inline void
ix_prefetch(const jindex *ix, uint64_t h)
{
    __builtin_prefetch(&ix->slots[(uint32_t)h & (ix->nslots - 1)]);
}

static void group_remove(jindex *ix, uint32_t gi);

/* Puts group gi, whose key hashes to h, in the first free slot from its
 * home. */
static void
slot_place(uint64_t *slots, uint32_t nslots, uint64_t h, uint32_t gi)
{
    uint32_t mask = nslots - 1, i = (uint32_t)h & mask;
    while (slots[i] != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = (h >> 32) << 32 | (gi + 1);
}

static int
ix_add(jindex *ix, uint64_t h, const uint8_t *k, uint32_t klen, uint64_t seq, int64_t a, int64_t b)
{
    uint32_t gi = ix_find(ix, h, k, klen), ei;
    ix_group *g;
    ix_entry *e;

    if (gi != NONE && ix->g[gi].count == 0) {
        ix->nempty--; /* an empty group filled again */
    }
    if (gi == NONE) {
        if ((ix->nused + 1) * 2 > ix->nslots) {
            uint32_t n = ix->nslots * 2;
            uint64_t *ns = calloc(n, sizeof(uint64_t));
            if (ns == NULL) {
                return LM_ENOMEM;
            }
            for (uint32_t i = 0; i < ix->nslots; i++) {
                if (ix->slots[i] != 0) {
                    uint32_t g = (uint32_t)ix->slots[i] - 1;
                    slot_place(ns, n, ix->g[g].hash, g);
                }
            }
            free(ix->slots);
            ix->slots = ns;
            ix->nslots = n;
        }
        if (ix->gfree != NONE) {
            gi = ix->gfree;
            ix->gfree = ix->g[gi].head;
        } else {
            if (ENSURE(ix->g, ix->gcap, (uint64_t)ix->ng + 1) != LM_OK) {
                return LM_ENOMEM;
            }
            gi = ix->ng++;
        }
        g = &ix->g[gi];
        memset(g, 0, sizeof(*g));
        if (klen > INLINE_KEY) {
            if ((g->heap = malloc(klen)) == NULL) {
                g->head = ix->gfree;
                ix->gfree = gi;
                return LM_ENOMEM;
            }
            memcpy(g->heap, k, klen);
        } else if (klen > 0) {
            memcpy(g->inl, k, klen);
        }
        g->hash = h;
        g->klen = klen;
        g->head = g->tail = NONE;
        g->used = 1;
        slot_place(ix->slots, ix->nslots, h, gi);
        ix->nused++;
    }
    if (ix->efree != NONE) {
        ei = ix->efree;
        ix->efree = ix->e[ei].next;
    } else {
        if (ENSURE(ix->e, ix->ecap, (uint64_t)ix->ne + 1) != LM_OK) {
            if (ix->g[gi].count == 0) {
                group_remove(ix, gi); /* made for this entry */
            }
            return LM_ENOMEM;
        }
        ei = ix->ne++;
    }
    if (seq_put(ix, seq, ei) != LM_OK) {
        ix->e[ei].next = ix->efree;
        ix->efree = ei;
        if (ix->g[gi].count == 0) {
            group_remove(ix, gi);
        }
        return LM_ENOMEM;
    }
    g = &ix->g[gi];
    e = &ix->e[ei];
    e->seq = seq;
    e->a = a;
    e->b = b;
    e->group = gi;
    e->next = NONE;
    e->prev = g->tail;
    if (g->tail != NONE) {
        ix->e[g->tail].next = ei;
    } else {
        g->head = ei;
    }
    g->tail = ei;
    g->count++;
    return LM_OK;
}

/* Removes group gi from the slots (backward-shift deletion: no
 * tombstones) and frees it. */
static void
group_remove(jindex *ix, uint32_t gi)
{
    uint32_t mask = ix->nslots - 1, i = (uint32_t)ix->g[gi].hash & mask;

    while ((uint32_t)ix->slots[i] != gi + 1) {
        i = (i + 1) & mask;
    }
    for (;;) {
        uint32_t j = i;
        ix->slots[i] = 0;
        for (;;) {
            uint32_t home;
            j = (j + 1) & mask;
            if (ix->slots[j] == 0) {
                goto done;
            }
            home = (uint32_t)ix->g[(uint32_t)ix->slots[j] - 1].hash & mask;
            /* slots[j] may fill the hole at i unless its home lies
             * cyclically in (i, j]. */
            if (i <= j ? (home > i && home <= j) : (home > i || home <= j)) {
                continue;
            }
            break;
        }
        ix->slots[i] = ix->slots[j];
        i = j;
    }
done:
    if (ix->g[gi].klen > INLINE_KEY) {
        free(ix->g[gi].heap);
    }
    ix->g[gi].heap = NULL;
    ix->g[gi].count = 0;
    ix->g[gi].used = 0;
    ix->g[gi].head = ix->gfree;
    ix->gfree = gi;
    ix->nused--;
}

/* Drops every empty group at once and rebuilds the slots: cheaper than
 * removing groups one by one when keys come and go (a join on prices,
 * say, where most keys hold a row or two for a while). */
static void
ix_compact(jindex *ix)
{
    memset(ix->slots, 0, (size_t)ix->nslots * sizeof(uint64_t));
    ix->nused = 0;
    for (uint32_t gi = 0; gi < ix->ng; gi++) {
        ix_group *g = &ix->g[gi];
        if (!g->used) {
            continue;
        }
        if (g->count == 0) {
            if (g->klen > INLINE_KEY) {
                free(g->heap);
            }
            g->heap = NULL;
            g->used = 0;
            g->head = ix->gfree;
            ix->gfree = gi;
            continue;
        }
        slot_place(ix->slots, ix->nslots, g->hash, gi);
        ix->nused++;
    }
    ix->nempty = 0;
}

static void
ix_unlink(jindex *ix, uint32_t ei)
{
    ix_entry *e = &ix->e[ei];
    uint32_t gi = e->group;
    ix_group *g = &ix->g[gi];

    if (e->prev != NONE) {
        ix->e[e->prev].next = e->next;
    } else {
        g->head = e->next;
    }
    if (e->next != NONE) {
        ix->e[e->next].prev = e->prev;
    } else {
        g->tail = e->prev;
    }
    {
        uint32_t si = seq_slot(ix, e->seq);
        if (si != NONE) {
            seq_del(ix, si);
        }
    }
    e->group = NONE;
    e->next = ix->efree;
    ix->efree = ei;
    if (--g->count == 0 && ++ix->nempty > 1024 && ix->nempty * 2 > ix->nused) {
        ix_compact(ix);
    }
}

/* The entry with sequence number seq, or NONE. */
static uint32_t
ix_find_seq(const jindex *ix, uint64_t seq)
{
    uint32_t si = seq_slot(ix, seq);
    return si != NONE ? ix->sv[si] : NONE;
}

/* --- the interval join's key map ------------------------------------------
 * The interval join keeps each side's rows in an APPEND table (rows come
 * about in time order and leave in that order), each row's bytes led by
 * the number of the previous row with the same key: a chain, newest
 * first. The map gives a key's newest row. A chain ends at a number the
 * table no longer holds (below its first), so expiry touches neither the
 * map nor the chains: a map slot whose row is gone is dead, reused by the
 * next new key that lands on it, and dropped when the map is rebuilt. */

#define KM_INLINE 16 /* keys up to this long are kept in the slot */

typedef struct km_slot {
    uint64_t hash;          /* of the key */
    uint64_t seq;           /* its newest row; 0: empty slot */
    uint32_t klen;          /* key length */
    uint8_t key[KM_INLINE]; /* the key when it is short */
} km_slot;

typedef struct kmap {
    km_slot *s;
    uint32_t n;    /* slots, a power of two */
    uint32_t used; /* slots not empty (dead ones too) */
} kmap;

/* A stored row: [prev u64][a i64][b i64][klen u32][key][row] */
#define IROW_HDR 28

static int
km_init(kmap *m)
{
    m->n = 64;
    m->used = 0;
    m->s = calloc(m->n, sizeof(km_slot));
    return m->s != NULL ? LM_OK : LM_ENOMEM;
}

static void
km_fini(kmap *m)
{
    free(m->s);
    memset(m, 0, sizeof(*m));
}

/* Whether slot sl holds key k: short keys are compared in the slot, long
 * ones against the stored row. */
static bool
km_same(lm_table *t, const km_slot *sl, uint64_t h, const uint8_t *k, uint32_t klen)
{
    const void *v;
    uint32_t vlen;

    if (sl->hash != h || sl->klen != klen) {
        return false;
    }
    if (klen <= KM_INLINE) {
        return memcmp(sl->key, k, klen) == 0;
    }
    return lm_table_at(t, sl->seq, &v, &vlen, NULL) == LM_OK && vlen >= IROW_HDR + klen &&
           memcmp((const uint8_t *)v + IROW_HDR, k, klen) == 0;
}

/* The slot of key k (*found), or where it would go (a dead slot first). */
static uint32_t
km_find(const kmap *m, lm_table *t, uint64_t h, const uint8_t *k, uint32_t klen, bool *found)
{
    uint32_t mask = m->n - 1, reuse = UINT32_MAX;
    uint64_t first = lm_table_first_seq(t);

    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        const km_slot *sl = &m->s[i];
        if (sl->seq == 0) {
            *found = false;
            return reuse != UINT32_MAX ? reuse : i;
        }
        if (sl->seq < first) {
            if (reuse == UINT32_MAX) {
                reuse = i; /* dead: its rows are gone */
            }
            continue;
        }
        if (km_same(t, sl, h, k, klen)) {
            *found = true;
            return i;
        }
    }
}

/* Rebuilds the map without its dead slots, at a size for the live ones. */
static int
km_rehash(kmap *m, lm_table *t)
{
    uint64_t first = lm_table_first_seq(t);
    uint32_t live = 0, n = 64;
    km_slot *ns;

    for (uint32_t i = 0; i < m->n; i++) {
        live += m->s[i].seq >= first;
    }
    while ((uint64_t)live * 4 >= (uint64_t)n) {
        n *= 2;
    }
    if ((ns = calloc(n, sizeof(km_slot))) == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < m->n; i++) {
        if (m->s[i].seq >= first) {
            uint32_t k = (uint32_t)m->s[i].hash & (n - 1);
            while (ns[k].seq != 0) {
                k = (k + 1) & (n - 1);
            }
            ns[k] = m->s[i];
        }
    }
    free(m->s);
    m->s = ns;
    m->n = n;
    m->used = live;
    return LM_OK;
}

/* Records seq as key k's newest row; *prev gets the one before (0: none). */
static int
km_put(kmap *m, lm_table *t, uint64_t h, const uint8_t *k, uint32_t klen, uint64_t seq,
       uint64_t *prev)
{
    bool found;
    uint32_t i;
    km_slot *sl;
    int rv;

    if ((m->used + 1) * 10 > m->n * 6 && (rv = km_rehash(m, t)) != LM_OK) {
        return rv;
    }
    i = km_find(m, t, h, k, klen, &found);
    sl = &m->s[i];
    *prev = found ? sl->seq : 0;
    if (!found) {
        if (sl->seq == 0) {
            m->used++;
        }
        sl->hash = h;
        sl->klen = klen;
        if (klen <= KM_INLINE && klen > 0) {
            memcpy(sl->key, k, klen);
        }
    }
    sl->seq = seq;
    return LM_OK;
}

/* --- instance ------------------------------------------------------------- */

enum { ROW_OK = 0, ROW_NULLKEY = 1, ROW_LATE = 2, ROW_SKIP = 3 };

typedef struct cand {
    uint32_t row;     /* the probing row of the batch */
    uint32_t entry;   /* the stored row's index entry */
    const uint8_t *p; /* the stored row's bytes (valid until the table changes) */
    uint32_t len;
} cand;

typedef struct wside {
    lm_batch *rows; /* the window's rows */
    uint8_t *kb;    /* their join keys */
    uint32_t kblen, kbcap;
    uint32_t *koff; /* key i: kb[koff[i], koff[i + 1]) */
    uint64_t *kh;   /* key hashes */
    uint32_t cap;   /* of koff (rows + 1) and kh */
} wside;

typedef struct join_state {
    lm_table *tab[2];  /* stored rows: left, right */
    lm_table *meta;    /* "seq", "wm" */
    jindex ix[2];      /* join: key -> entries */
    kmap km[2];        /* interval join: key -> its newest stored row */
    uint64_t next_seq; /* next sequence number */
    int64_t wm;        /* current watermark */
    lm_expr_ctx *ctx;  /* evaluation scratch */
    lm_error err;      /* details of the last failure */

    /* per batch: keys (lm_row_encode_rows) and row facts */
    lm_buf kb;        /* key bytes */
    uint32_t *koff;   /* row r's key: kb.p[koff[r], koff[r + 1]) */
    uint64_t *kh;     /* key hashes */
    uint8_t *kst;     /* ROW_* */
    int64_t *t0;      /* join: time (INT64_MAX: none); interval: left lower bound, right
                         time; window: window end */
    int64_t *t1;      /* interval, left: upper bound */
    uint32_t *rstart; /* first candidate of each row */
    uint32_t rcap;    /* of the arrays above (rows + 1) */

    cand *cands; /* candidate pairs of the chunk */
    uint32_t ccap;
    uint32_t *rows;  /* probing rows of the candidates (copy list) */
    uint32_t *rows2; /* window join: right rows */
    uint32_t *sel;   /* condition selection */
    uint8_t *ok;     /* candidate matched (keys and condition) */
    uint32_t scap;   /* of rows, rows2, sel, ok */
    uint32_t *eidx;  /* output rows: indices into the combined batch */
    uint8_t *eret;   /* and their retract flags */
    uint32_t ecap, nemit;
    bool ident; /* eidx is 0, 1, 2, ... */

    lm_buf rowbuf; /* an encoded row */
    lm_buf tkey;   /* a table key */
    lm_buf vbuf;   /* a table value */
    lm_batch *C;   /* combined rows of the chunk's candidates */
    lm_batch *N;   /* null-padded rows (left outer) */
    lm_batch *G;   /* the output rows gathered */

    wside w[2];      /* window join: one window's rows */
    uint32_t *hhead; /* window join hash table */
    uint32_t hcap;
    uint32_t *hnext;
    uint32_t hncap;
} join_state;

static void
join_close(lm_op *op)
{
    join_state *j = op->state;

    if (j == NULL) {
        return;
    }
    ix_fini(&j->ix[0]);
    ix_fini(&j->ix[1]);
    km_fini(&j->km[0]);
    km_fini(&j->km[1]);
    lm_expr_ctx_free(j->ctx);
    lm_buf_fini(&j->kb);
    free(j->koff);
    free(j->kh);
    free(j->kst);
    free(j->t0);
    free(j->t1);
    free(j->rstart);
    free(j->cands);
    free(j->rows);
    free(j->rows2);
    free(j->sel);
    free(j->ok);
    free(j->eidx);
    free(j->eret);
    lm_buf_fini(&j->rowbuf);
    lm_buf_fini(&j->tkey);
    lm_buf_fini(&j->vbuf);
    lm_batch_free(j->C);
    lm_batch_free(j->N);
    lm_batch_free(j->G);
    for (int i = 0; i < 2; i++) {
        lm_batch_free(j->w[i].rows);
        free(j->w[i].kb);
        free(j->w[i].koff);
        free(j->w[i].kh);
    }
    free(j->hhead);
    free(j->hnext);
    free(j);
    op->state = NULL;
}

/* The table key of a stored row: the join key, then seq big-endian. */
static int
table_key(lm_buf *kb, const uint8_t *jk, uint32_t klen, uint64_t seq)
{
    uint8_t s[SEQ_LEN];

    for (int i = 0; i < SEQ_LEN; i++) {
        s[i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    kb->len = 0;
    if ((klen > 0 && lm_buf_append(kb, jk, klen) != LM_OK) ||
        lm_buf_append(kb, s, SEQ_LEN) != LM_OK) {
        return LM_ENOMEM;
    }
    return kb->len <= LM_TABLE_KEY_MAX ? LM_OK : LM_ETOOBIG;
}

/* Reads the int64/timestamp value of column col of an encoded row. */
static int
row_i64(const side_spec *sd, const uint8_t *p, uint32_t len, uint32_t col, int64_t *v,
        bool *is_null)
{
    const uint8_t *q = p, *end = p + len;

    if (lm_row_skip(sd->types, col, &q, end) != LM_OK || q >= end) {
        return LM_EPROTO;
    }
    if (*q == 0) {
        *is_null = true;
        *v = 0;
        return LM_OK;
    }
    if (end - q < 9) {
        return LM_EPROTO;
    }
    *is_null = false;
    *v = (int64_t)get_le64(q + 1);
    return LM_OK;
}

/* The index entry's bounds of a stored row (interval join). */
static int
entry_bounds(const join_spec *s, uint32_t port, const uint8_t *p, uint32_t len, int64_t *a,
             int64_t *b)
{
    const side_spec *sd = &s->side[port];
    int64_t t, u;
    bool null, unull;

    *a = *b = 0;
    if (s->kind != KIND_INTERVAL) {
        return LM_OK;
    }
    if (row_i64(sd, p, len, (uint32_t)sd->time_col, &t, &null) != LM_OK || null) {
        return LM_EPROTO;
    }
    if (port == 1) {
        *a = t;
        return LM_OK;
    }
    *a = sat_add(t, s->lower_us);
    if (sd->upper_col >= 0) {
        if (row_i64(sd, p, len, (uint32_t)sd->upper_col, &u, &unull) != LM_OK || unull) {
            return LM_EPROTO;
        }
        *b = u;
    } else {
        *b = sat_add(t, s->upper_us);
    }
    return LM_OK;
}

/* Rebuilding the index from a restored table: entries collected, then
 * added in sequence order so that each key's list is oldest first. */
typedef struct rb_entry {
    uint64_t seq;
    const uint8_t *key;
    uint32_t klen;
    const uint8_t *val;
    uint32_t vlen;
} rb_entry;

typedef struct rb_arg {
    rb_entry *v;
    uint32_t n, cap;
    int rv;
} rb_arg;

static int
rb_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    rb_arg *a = arg;
    (void)ts;
    if (klen < SEQ_LEN) {
        a->rv = LM_EPROTO;
        return 1;
    }
    if (ENSURE(a->v, a->cap, (uint64_t)a->n + 1) != LM_OK) {
        a->rv = LM_ENOMEM;
        return 1;
    }
    a->v[a->n++] =
        (rb_entry){get_be64((const uint8_t *)key + klen - SEQ_LEN), key, klen, val, vlen};
    return 0;
}

static int
cmp_seq(const void *x, const void *y)
{
    const rb_entry *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int
rebuild_index(lm_op *op, join_state *j, uint32_t port)
{
    const join_spec *s = op->spec;
    uint32_t skip = s->left_outer && port == 0 ? COUNT_LEN : 0;
    rb_arg a = {0};
    int rv = LM_OK;

    if (lm_table_scan(j->tab[port], rb_visit, &a) != 0) {
        free(a.v);
        return lm_op_fail(op, a.rv, "rebuilding the %s index: %s", side_name[port],
                          a.rv == LM_EPROTO ? "a stored key is too short" : lm_strerror(a.rv));
    }
    if (a.n > 1) {
        qsort(a.v, a.n, sizeof(rb_entry), cmp_seq);
    }
    for (uint32_t i = 0; i < a.n && rv == LM_OK; i++) {
        const rb_entry *e = &a.v[i];
        uint32_t jl = e->klen - SEQ_LEN;
        int64_t lo, hi;
        if (e->seq >= j->next_seq) {
            j->next_seq = e->seq + 1;
        }
        if (e->vlen < skip ||
            entry_bounds(s, port, e->val + skip, e->vlen - skip, &lo, &hi) != LM_OK) {
            rv = lm_op_fail(op, LM_EPROTO, "rebuilding the %s index: a stored row is corrupt",
                            side_name[port]);
            break;
        }
        rv = ix_add(&j->ix[port], XXH3_64bits(e->key, jl), e->key, jl, e->seq, lo, hi);
    }
    free(a.v);
    return rv;
}

static int irow_rebuild(lm_op *op, join_state *j, uint32_t port);

static int
join_open(lm_op *op)
{
    const join_spec *s = op->spec;
    lm_table_kind tk = s->kind == KIND_INTERVAL          ? LM_TABLE_APPEND
                       : s->kind == KIND_JOIN && !s->ttl ? LM_TABLE_GLOBAL
                                                         : LM_TABLE_EXPIRING;
    join_state *j = calloc(1, sizeof(*j));
    const void *v;
    uint32_t vlen;
    int rv;

    if (j == NULL) {
        return LM_ENOMEM;
    }
    op->state = j;
    j->wm = INT64_MIN;
    j->next_seq = 1;
    j->ident = true;
    lm_buf_init(&j->rowbuf);
    lm_buf_init(&j->tkey);
    lm_buf_init(&j->kb);
    lm_buf_init(&j->vbuf);
    if ((rv = lm_expr_ctx_new(&j->ctx)) != LM_OK || (rv = ix_init(&j->ix[0])) != LM_OK ||
        (rv = ix_init(&j->ix[1])) != LM_OK || (rv = km_init(&j->km[0])) != LM_OK ||
        (rv = km_init(&j->km[1])) != LM_OK ||
        (rv = lm_batch_new(s->combined, op->batch_rows, &j->C)) != LM_OK ||
        (rv = lm_batch_new(s->combined, 16, &j->N)) != LM_OK ||
        (rv = lm_batch_new(s->combined, op->batch_rows, &j->G)) != LM_OK) {
        goto fail;
    }
    if (s->kind == KIND_WINDOW &&
        ((rv = lm_batch_new(op->def->inputs[0], 64, &j->w[0].rows)) != LM_OK ||
         (rv = lm_batch_new(op->def->inputs[1], 64, &j->w[1].rows)) != LM_OK)) {
        goto fail;
    }
    if ((rv = lm_op_table(op, tk, "left", 0, &j->tab[0])) != LM_OK ||
        (rv = lm_op_table(op, tk, "right", 0, &j->tab[1])) != LM_OK ||
        (rv = lm_op_table(op, LM_TABLE_GLOBAL, "meta", 0, &j->meta)) != LM_OK) {
        goto fail;
    }
    if (lm_table_get(j->meta, "seq", 3, &v, &vlen, NULL) == LM_OK && vlen == 8) {
        j->next_seq = get_le64(v);
    }
    if (lm_table_get(j->meta, "wm", 2, &v, &vlen, NULL) == LM_OK && vlen == 8) {
        j->wm = (int64_t)get_le64(v);
    }
    if (s->kind == KIND_INTERVAL &&
        ((rv = irow_rebuild(op, j, 0)) != LM_OK || (rv = irow_rebuild(op, j, 1)) != LM_OK)) {
        goto fail;
    }
    if (s->kind == KIND_JOIN &&
        ((rv = rebuild_index(op, j, 0)) != LM_OK || (rv = rebuild_index(op, j, 1)) != LM_OK)) {
        goto fail;
    }
    if (s->kind == KIND_WINDOW) {
        /* Sequence numbers only need to be unique: past any restored one. */
        for (uint32_t p = 0; p < 2; p++) {
            rb_arg a = {0};
            if (lm_table_scan(j->tab[p], rb_visit, &a) != 0) {
                free(a.v);
                rv = lm_op_fail(op, a.rv, "reading the %s table", side_name[p]);
                goto fail;
            }
            for (uint32_t i = 0; i < a.n; i++) {
                if (a.v[i].seq >= j->next_seq) {
                    j->next_seq = a.v[i].seq + 1;
                }
            }
            free(a.v);
        }
    }
    return LM_OK;
fail:
    join_close(op);
    return rv;
}

static int
join_barrier(lm_op *op, uint64_t epoch)
{
    join_state *j = op->state;
    uint8_t b[8];
    int rv;

    (void)epoch;
    put_le64(b, j->next_seq);
    if ((rv = lm_table_put(j->meta, "seq", 3, 0, b, 8)) != LM_OK) {
        return rv;
    }
    put_le64(b, (uint64_t)j->wm);
    return lm_table_put(j->meta, "wm", 2, 0, b, 8);
}

/* --- per-batch preparation ------------------------------------------------ */

/* Row r's join key (of the batch being prepared). */
static inline const uint8_t *
key_of(const join_state *j, uint32_t r)
{
    return (const uint8_t *)j->kb.p + j->koff[r];
}

/* Encodes the join keys of every row of b (lm_row's canonical form) into
 * j->kb, hashes them, and marks rows with a null key ROW_NULLKEY (the
 * others ROW_OK). */
static int
encode_keys(join_state *j, const side_spec *sd, const lm_batch *b)
{
    int rv;

    _Static_assert(ROW_OK == 0 && ROW_NULLKEY == 1, "lm_row_encode_rows writes 0 or 1");
    if ((rv = lm_row_encode_rows(b, sd->keys, sd->nkeys, j->koff, j->kst, &j->kb)) != LM_OK) {
        return rv;
    }
    for (uint32_t r = 0; r < b->nrows; r++) {
        j->kh[r] = XXH3_64bits(key_of(j, r), j->koff[r + 1] - j->koff[r]);
    }
    return LM_OK;
}

/* Sizes the per-row scratch for n rows, encodes the keys, reads the times
 * and marks late and unusable rows. */
static int
batch_prep(lm_op *op, join_state *j, uint32_t port, const lm_batch *b)
{
    const join_spec *s = op->spec;
    const side_spec *sd = &s->side[port];
    uint32_t n = b->nrows, cap = j->rcap;
    int rv;

    if (n + 1 > j->rcap) {
        if ((rv = ENSURE(j->koff, cap, (uint64_t)n + 1)) != LM_OK) {
            return rv;
        }
#define RESIZE(arr)                                                                                \
    do {                                                                                           \
        void *np_ = realloc((arr), (size_t)cap * sizeof(*(arr)));                                  \
        if (np_ == NULL) {                                                                         \
            return LM_ENOMEM;                                                                      \
        }                                                                                          \
        (arr) = np_;                                                                               \
    } while (0)
        RESIZE(j->kh);
        RESIZE(j->kst);
        RESIZE(j->t0);
        RESIZE(j->t1);
        RESIZE(j->rstart);
#undef RESIZE
        j->rcap = cap;
    }
    if ((rv = encode_keys(j, sd, b)) != LM_OK) {
        return lm_op_fail(op, rv, "encoding the %s keys: %s", side_name[port], lm_strerror(rv));
    }
    for (uint32_t r = 0; r < n; r++) {
        if (j->koff[r + 1] - j->koff[r] > LM_TABLE_KEY_MAX - SEQ_LEN) {
            return lm_op_fail(op, LM_ETOOBIG, "a %s join key takes %u bytes; the limit is %d",
                              side_name[port], j->koff[r + 1] - j->koff[r],
                              LM_TABLE_KEY_MAX - SEQ_LEN);
        }
    }
    if (sd->time_col < 0) {
        return LM_OK;
    }
    {
        uint32_t tc = (uint32_t)sd->time_col;
        const int64_t *t = lm_batch_i64(b, tc);
        const int64_t *u = sd->upper_col >= 0 ? lm_batch_i64(b, (uint32_t)sd->upper_col) : NULL;
        uint64_t late = 0;
        for (uint32_t r = 0; r < n; r++) {
            bool tnull = lm_batch_is_null(b, tc, r);
            if (tnull) {
                /* No time: a join row never expires; elsewhere it cannot
                 * be placed in time. */
                j->t0[r] = INT64_MAX;
                if (s->kind != KIND_JOIN) {
                    j->kst[r] = ROW_SKIP;
                }
                continue;
            }
            if (s->kind == KIND_WINDOW ? t[r] <= j->wm : t[r] < j->wm) {
                j->kst[r] = ROW_LATE;
                late++;
                continue;
            }
            if (s->kind != KIND_JOIN && j->kst[r] == ROW_NULLKEY) {
                j->kst[r] = ROW_SKIP;
                continue;
            }
            if (s->kind == KIND_INTERVAL && port == 0) {
                j->t0[r] = sat_add(t[r], s->lower_us);
                if (u != NULL) {
                    if (lm_batch_is_null(b, (uint32_t)sd->upper_col, r)) {
                        j->kst[r] = ROW_SKIP;
                        continue;
                    }
                    j->t1[r] = u[r];
                } else {
                    j->t1[r] = sat_add(t[r], s->upper_us);
                }
            } else {
                j->t0[r] = t[r];
                j->t1[r] = 0;
            }
        }
        op->stats.late_rows += late;
    }
    if (s->kind != KIND_JOIN) {
        for (uint32_t r = 0; r < n; r++) {
            if (j->kst[r] == ROW_NULLKEY) {
                j->kst[r] = ROW_SKIP;
            }
        }
    }
    return LM_OK;
}

/* --- building combined rows ---------------------------------------------- */

/* Writes columns 0..ncols-1 of src at rows rows[0..n) as columns d0.. of
 * dst, rows dst->nrows.. (reserved by the caller, who commits them). */
static int
copy_cols(lm_batch *dst, uint32_t d0, const lm_batch *src, uint32_t ncols, const uint32_t *rows,
          uint32_t n)
{
    uint32_t base = dst->nrows;
    int rv;

    for (uint32_t c = 0; c < ncols; c++) {
        const lm_column *sc = &src->cols[c];
        uint32_t dc = d0 + c;
        lm_type t = src->schema->fields[c].type;
        bool nulls = sc->validity != NULL;
        if (lm_type_is_varwidth(t)) {
            const int32_t *off = sc->values;
            for (uint32_t i = 0; i < n; i++) {
                uint32_t r = rows[i], len = (uint32_t)(off[r + 1] - off[r]);
                if (nulls && lm_batch_is_null(src, c, r)) {
                    rv = lm_batch_put_null(dst, dc, base + i);
                } else {
                    rv = lm_batch_put_bytes(dst, dc, base + i,
                                            len > 0 ? (const void *)(sc->data + off[r]) : "", len);
                }
                if (rv != LM_OK) {
                    return rv;
                }
            }
            continue;
        }
        if (t == LM_TYPE_BOOL) {
            const uint8_t *sv = sc->values;
            uint8_t *dv = lm_batch_bools(dst, dc) + base;
            for (uint32_t i = 0; i < n; i++) {
                dv[i] = sv[rows[i]];
            }
        } else {
            const int64_t *sv = sc->values;
            int64_t *dv = lm_batch_i64(dst, dc) + base;
            for (uint32_t i = 0; i < n; i++) {
                dv[i] = sv[rows[i]];
            }
        }
        if (nulls) {
            for (uint32_t i = 0; i < n; i++) {
                if (lm_batch_is_null(src, c, rows[i]) &&
                    (rv = lm_batch_put_null(dst, dc, base + i)) != LM_OK) {
                    return rv;
                }
            }
        }
    }
    return LM_OK;
}

/* Builds j->C from the chunk's candidates: the probing side's columns
 * from b, the stored side's decoded. */
static int
build_candidates(lm_op *op, join_state *j, uint32_t port, const lm_batch *b, uint32_t ncand)
{
    const join_spec *s = op->spec;
    const side_spec *sd = &s->side[port], *od = &s->side[1 - port];
    lm_batch *C = j->C;
    int rv;

    lm_batch_clear(C);
    if (ncand == 0) {
        return LM_OK;
    }
    if ((rv = lm_batch_reserve(C, ncand)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < ncand; i++) {
        j->rows[i] = j->cands[i].row;
    }
    if ((rv = copy_cols(C, sd->off, b, sd->ndata, j->rows, ncand)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < ncand; i++) {
        const uint8_t *p = j->cands[i].p, *end = p + j->cands[i].len;
        if ((rv = lm_row_decode(C, od->ccols, od->ndata, i, &p, end, &j->err)) != LM_OK) {
            return lm_op_fail(op, rv, "a stored %s row: %s", side_name[1 - port], j->err.msg);
        }
        if (p != end) {
            return lm_op_fail(op, LM_EPROTO, "a stored %s row has trailing bytes",
                              side_name[1 - port]);
        }
    }
    lm_batch_commit_rows(C, ncand);
    return LM_OK;
}

/* Sizes the per-candidate scratch. */
static int
cand_scratch(join_state *j, uint64_t n)
{
    uint32_t cap = j->scap;
    if (n <= j->scap) {
        return LM_OK;
    }
    void *p;
    if (ENSURE(j->rows, cap, n) != LM_OK) {
        return LM_ENOMEM;
    }
    if ((p = realloc(j->rows2, (size_t)cap * sizeof(uint32_t))) == NULL) {
        return LM_ENOMEM;
    }
    j->rows2 = p;
    if ((p = realloc(j->sel, (size_t)cap * sizeof(uint32_t))) == NULL) {
        return LM_ENOMEM;
    }
    j->sel = p;
    if ((p = realloc(j->ok, (size_t)cap)) == NULL) {
        return LM_ENOMEM;
    }
    j->ok = p;
    j->scap = cap;
    return LM_OK;
}

/* j->ok[i] for each row of C: the condition holds. */
static int
eval_condition(lm_op *op, join_state *j)
{
    const join_spec *s = op->spec;
    uint32_t n = j->C->nrows, m;
    int rv;

    if (n == 0) {
        return LM_OK;
    }
    if ((rv = cand_scratch(j, n)) != LM_OK) {
        return rv;
    }
    if (s->cond == NULL) {
        memset(j->ok, 1, n);
        return LM_OK;
    }
    if ((rv = lm_expr_filter(j->ctx, s->cond, j->C, j->sel, &m, &j->err)) != LM_OK) {
        return lm_op_fail(op, rv, "condition: %s", j->err.msg);
    }
    memset(j->ok, 0, n);
    for (uint32_t i = 0; i < m; i++) {
        j->ok[j->sel[i]] = 1;
    }
    return LM_OK;
}

static int
push_emit(join_state *j, uint32_t idx, bool retract)
{
    if (j->nemit + 1 > j->ecap) {
        uint32_t cap = j->ecap;
        if (ENSURE(j->eidx, cap, (uint64_t)j->nemit + 1) != LM_OK) {
            return LM_ENOMEM;
        }
        void *p = realloc(j->eret, cap);
        if (p == NULL) {
            return LM_ENOMEM;
        }
        j->eret = p;
        j->ecap = cap;
    }
    if (idx != j->nemit) {
        j->ident = false;
    }
    j->eidx[j->nemit] = idx;
    j->eret[j->nemit++] = retract;
    return LM_OK;
}

/* Evaluates the projection over in and emits the result, with the retract
 * flags ret[0..in->nrows) when the output is a changelog. */
static int
project_emit(lm_op *op, join_state *j, const lm_batch *in, const uint8_t *ret)
{
    const join_spec *s = op->spec;
    lm_batch *o;
    int rv;

    if (in->nrows == 0) {
        return LM_OK;
    }
    if ((rv = lm_batch_new(op->def->output, in->nrows, &o)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < s->nproj; i++) {
        if ((rv = lm_expr_eval_into(j->ctx, s->proj[i], in, o, i, &j->err)) != LM_OK) {
            lm_batch_free(o);
            return lm_op_fail(op, rv, "project '%s': %s", op->def->output->fields[i].name,
                              j->err.msg);
        }
    }
    if (s->out_retract) {
        uint8_t *rc = lm_batch_bools(o, s->nproj);
        if (ret != NULL) {
            memcpy(rc, ret, in->nrows);
        } else {
            memset(rc, 0, in->nrows);
        }
    }
    lm_batch_commit_rows(o, in->nrows);
    op->stats.expr_errors = lm_expr_ctx_errors(j->ctx);
    return lm_op_emit(op, o);
}

/* Emits the rows listed in eidx/eret: C (with N appended) as it is when
 * the list is all of it in order, else gathered. */
static int
emit_listed(lm_op *op, join_state *j)
{
    lm_batch *C = j->C;
    int rv;

    if (j->N->nrows > 0 && (rv = lm_batch_append_range(C, j->N, 0, j->N->nrows)) != LM_OK) {
        return rv;
    }
    if (j->nemit == 0) {
        return LM_OK;
    }
    if (j->ident && j->nemit == C->nrows) {
        return project_emit(op, j, C, j->eret);
    }
    lm_batch_clear(j->G);
    if ((rv = lm_batch_gather(j->G, C, j->eidx, j->nemit)) != LM_OK) {
        return rv;
    }
    return project_emit(op, j, j->G, j->eret);
}

static void
emit_reset(join_state *j)
{
    j->nemit = 0;
    j->ident = true;
    lm_batch_clear(j->N);
}

/* Emits the rows of C whose ok flag is set. */
static int
emit_ok(lm_op *op, join_state *j)
{
    int rv;

    emit_reset(j);
    for (uint32_t i = 0; i < j->C->nrows; i++) {
        if (j->ok[i] && (rv = push_emit(j, i, false)) != LM_OK) {
            return rv;
        }
    }
    return emit_listed(op, j);
}

/* --- probing ---------------------------------------------------------- */

/* Adds row r's candidates from the other side's stored rows (its key's
 * entries; for the interval join those in time range). */
static int
probe_row(lm_op *op, join_state *j, uint32_t port, uint32_t r, uint32_t *ncand)
{
    const join_spec *s = op->spec;
    uint32_t o = 1 - port, skip = s->left_outer && o == 0 ? COUNT_LEN : 0;
    const jindex *ix = &j->ix[o];
    const uint8_t *jk = key_of(j, r);
    uint32_t klen = j->koff[r + 1] - j->koff[r];
    uint32_t g = ix_find(ix, j->kh[r], jk, klen);
    int rv;

    if (g == NONE) {
        return LM_OK;
    }
    for (uint32_t e = ix->g[g].head; e != NONE; e = ix->e[e].next) {
        const ix_entry *en = &ix->e[e];
        const void *v;
        uint32_t vlen;
        if (s->kind == KIND_INTERVAL && (port == 0 ? (en->a < j->t0[r] || en->a > j->t1[r])
                                                   : (j->t0[r] < en->a || j->t0[r] > en->b))) {
            continue;
        }
        if ((rv = table_key(&j->tkey, jk, klen, en->seq)) != LM_OK) {
            return rv;
        }
        if (lm_table_get(j->tab[o], j->tkey.p, (uint32_t)j->tkey.len, &v, &vlen, NULL) != LM_OK ||
            vlen < skip) {
            return lm_op_fail(op, LM_ESTATE, "the %s index names a row its table lacks",
                              side_name[o]);
        }
        if (ENSURE(j->cands, j->ccap, (uint64_t)*ncand + 1) != LM_OK) {
            return LM_ENOMEM;
        }
        j->cands[(*ncand)++] = (cand){r, e, (const uint8_t *)v + skip, vlen - skip};
    }
    return LM_OK;
}

/* Stores row r of b (side port) with prefix bytes before it, at time ts. */
static int
store_row(lm_op *op, join_state *j, uint32_t port, const lm_batch *b, uint32_t r,
          const uint8_t *prefix, uint32_t plen, int64_t ts, int64_t a, int64_t bb)
{
    const join_spec *s = op->spec;
    const side_spec *sd = &s->side[port];
    const uint8_t *jk = key_of(j, r);
    uint32_t klen = j->koff[r + 1] - j->koff[r];
    uint64_t seq = j->next_seq++;
    int rv;

    if ((rv = table_key(&j->tkey, jk, klen, seq)) != LM_OK) {
        return rv == LM_ETOOBIG ? lm_op_fail(op, rv, "a %s join key is longer than %d bytes",
                                             side_name[port], LM_TABLE_KEY_MAX - SEQ_LEN)
                                : rv;
    }
    j->vbuf.len = 0;
    if ((plen > 0 && lm_buf_append(&j->vbuf, prefix, plen) != LM_OK) ||
        lm_row_encode(b, sd->dcols, sd->ndata, r, &j->vbuf, NULL) != LM_OK) {
        return LM_ENOMEM;
    }
    if (j->vbuf.len > UINT32_MAX ||
        (rv = lm_table_put(j->tab[port], j->tkey.p, (uint32_t)j->tkey.len, ts, j->vbuf.p,
                           (uint32_t)j->vbuf.len)) != LM_OK) {
        return rv != LM_OK ? rv : LM_ETOOBIG;
    }
    if (s->kind == KIND_WINDOW) {
        return LM_OK;
    }
    return ix_add(&j->ix[port], j->kh[r], jk, klen, seq, a, bb);
}

/* Interval join: stores row r of b (side port) with its time bounds a, bb,
 * to expire at exp, chained to its key's previous row. */
static int
irow_store(lm_op *op, join_state *j, uint32_t port, const lm_batch *b, uint32_t r, int64_t exp,
           int64_t a, int64_t bb)
{
    const side_spec *sd = &((const join_spec *)op->spec)->side[port];
    const uint8_t *jk = key_of(j, r);
    uint32_t klen = j->koff[r + 1] - j->koff[r];
    lm_table *t = j->tab[port];
    uint64_t seq = lm_table_next_seq(t), prev, got;
    uint8_t hdr[IROW_HDR];
    int rv;

    if ((rv = km_put(&j->km[port], t, j->kh[r], jk, klen, seq, &prev)) != LM_OK) {
        return rv;
    }
    put_le64(hdr, prev);
    put_le64(hdr + 8, (uint64_t)a);
    put_le64(hdr + 16, (uint64_t)bb);
    hdr[24] = (uint8_t)klen;
    hdr[25] = (uint8_t)(klen >> 8);
    hdr[26] = (uint8_t)(klen >> 16);
    hdr[27] = (uint8_t)(klen >> 24);
    j->vbuf.len = 0;
    if (lm_buf_append(&j->vbuf, hdr, IROW_HDR) != LM_OK ||
        lm_buf_append(&j->vbuf, jk, klen) != LM_OK ||
        lm_row_encode(b, sd->dcols, sd->ndata, r, &j->vbuf, NULL) != LM_OK) {
        return LM_ENOMEM;
    }
    if (j->vbuf.len > UINT32_MAX) {
        return LM_ETOOBIG;
    }
    if ((rv = lm_table_append(t, exp, j->vbuf.p, (uint32_t)j->vbuf.len, &got)) != LM_OK) {
        return rv;
    }
    return got == seq ? LM_OK
                      : lm_op_fail(op, LM_ESTATE, "the %s rows are numbered out of order",
                                   side_name[port]);
}

/* Reads a stored interval row's header. */
static int
irow_parse(const uint8_t *v, uint32_t vlen, uint64_t *prev, int64_t *a, int64_t *b,
           const uint8_t **key, uint32_t *klen)
{
    uint32_t kl;

    if (vlen < IROW_HDR) {
        return LM_EPROTO;
    }
    kl = (uint32_t)v[24] | (uint32_t)v[25] << 8 | (uint32_t)v[26] << 16 | (uint32_t)v[27] << 24;
    if (kl > vlen - IROW_HDR) {
        return LM_EPROTO;
    }
    *prev = get_le64(v);
    *a = (int64_t)get_le64(v + 8);
    *b = (int64_t)get_le64(v + 16);
    *key = v + IROW_HDR;
    *klen = kl;
    return LM_OK;
}

/* Interval join: adds row r's candidates from the other side: the rows of
 * its key (the chain from the newest) whose time bounds fit. */
static int
irow_probe(lm_op *op, join_state *j, uint32_t port, uint32_t r, uint32_t *ncand)
{
    uint32_t o = 1 - port;
    lm_table *t = j->tab[o];
    const uint8_t *jk = key_of(j, r);
    uint32_t klen = j->koff[r + 1] - j->koff[r];
    uint64_t first = lm_table_first_seq(t), seq;
    bool found;
    uint32_t i = km_find(&j->km[o], t, j->kh[r], jk, klen, &found);

    if (!found) {
        return LM_OK;
    }
    for (seq = j->km[o].s[i].seq; seq >= first && seq != 0;) {
        const void *v;
        uint32_t vlen, kl;
        const uint8_t *key;
        int64_t a, b;
        uint64_t prev;
        if (lm_table_at(t, seq, &v, &vlen, NULL) != LM_OK ||
            irow_parse(v, vlen, &prev, &a, &b, &key, &kl) != LM_OK) {
            return lm_op_fail(op, LM_ESTATE, "a stored %s row is missing or corrupt (number %llu)",
                              side_name[o], (unsigned long long)seq);
        }
        if (port == 0 ? (a >= j->t0[r] && a <= j->t1[r]) : (j->t0[r] >= a && j->t0[r] <= b)) {
            if (ENSURE(j->cands, j->ccap, (uint64_t)*ncand + 1) != LM_OK) {
                return LM_ENOMEM;
            }
            j->cands[(*ncand)++] =
                (cand){r, 0, (const uint8_t *)v + IROW_HDR + kl, vlen - IROW_HDR - kl};
        }
        if (prev >= seq) {
            return lm_op_fail(op, LM_ESTATE, "a stored %s row's chain goes forward", side_name[o]);
        }
        seq = prev;
    }
    return LM_OK;
}

/* Interval join, at the start: the key maps from the restored tables. */
static int
irow_rebuild(lm_op *op, join_state *j, uint32_t port)
{
    lm_table *t = j->tab[port];

    for (uint64_t seq = lm_table_first_seq(t); seq < lm_table_next_seq(t); seq++) {
        const void *v;
        uint32_t vlen, kl;
        const uint8_t *key;
        int64_t a, b;
        uint64_t prev, p2;
        int rv;
        if (lm_table_at(t, seq, &v, &vlen, NULL) != LM_OK) {
            continue;
        }
        if (irow_parse(v, vlen, &prev, &a, &b, &key, &kl) != LM_OK) {
            return lm_op_fail(op, LM_EPROTO, "a restored %s row is corrupt", side_name[port]);
        }
        if ((rv = km_put(&j->km[port], t, XXH3_64bits(key, kl), key, kl, seq, &p2)) != LM_OK) {
            return rv;
        }
    }
    return LM_OK;
}

/* Expiry: the entry leaves the index with its row. */
static int
unindex_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    jindex *ix = arg;
    uint32_t e;

    (void)ts;
    (void)val;
    (void)vlen;
    if (klen < SEQ_LEN) {
        return 0;
    }
    if ((e = ix_find_seq(ix, get_be64((const uint8_t *)key + klen - SEQ_LEN))) != NONE) {
        ix_unlink(ix, e);
    }
    return 0;
}

/* --- join ----------------------------------------------------------------- */

/* Left outer join: the left row of candidate c has one match more (delta
 * 1) or less (-1). Returns its previous count in *old. */
static int
left_count_add(lm_op *op, join_state *j, uint32_t r, uint32_t c, int delta, uint64_t *old)
{
    const uint8_t *jk = key_of(j, r);
    uint32_t klen = j->koff[r + 1] - j->koff[r];
    const void *v;
    uint32_t vlen;
    int64_t ts;
    uint64_t cnt;
    int rv;

    if ((rv = table_key(&j->tkey, jk, klen, j->ix[0].e[j->cands[c].entry].seq)) != LM_OK) {
        return rv;
    }
    if (lm_table_get(j->tab[0], j->tkey.p, (uint32_t)j->tkey.len, &v, &vlen, &ts) != LM_OK ||
        vlen < COUNT_LEN) {
        return lm_op_fail(op, LM_ESTATE, "the left index names a row its table lacks");
    }
    cnt = get_le64(v);
    *old = cnt;
    if (delta < 0 && cnt == 0) {
        return LM_OK; /* cannot happen without a TTL; stay at 0 */
    }
    j->vbuf.len = 0;
    if (lm_buf_append(&j->vbuf, v, vlen) != LM_OK) {
        return LM_ENOMEM;
    }
    put_le64((uint8_t *)j->vbuf.p, delta > 0 ? cnt + 1 : cnt - 1);
    return lm_table_put(j->tab[0], j->tkey.p, (uint32_t)j->tkey.len, ts, j->vbuf.p, vlen);
}

/* Left outer join: a null-padded row from row `row` of src (whose first
 * columns are the left ones: the left input or C). */
static int
null_padded(lm_op *op, join_state *j, const lm_batch *src, uint32_t row, bool retract)
{
    const join_spec *s = op->spec;
    lm_batch *N = j->N;
    uint32_t k = N->nrows, nl = s->side[0].ndata;
    int rv;

    if ((rv = lm_batch_reserve(N, k + 1 > N->capacity ? N->capacity * 2 : k + 1)) != LM_OK ||
        (rv = copy_cols(N, 0, src, nl, &row, 1)) != LM_OK) {
        return rv;
    }
    for (uint32_t c = 0; c < s->side[1].ndata; c++) {
        if ((rv = lm_batch_put_null(N, nl + c, k)) != LM_OK) {
            return rv;
        }
    }
    lm_batch_commit_rows(N, 1);
    return push_emit(j, j->C->nrows + k, retract);
}

/* Finds and removes the stored row of side port equal to row r of b.
 * *found tells; *count gets a left outer left row's match count. */
static int
remove_row(lm_op *op, join_state *j, uint32_t port, const lm_batch *b, uint32_t r, bool *found,
           uint64_t *count)
{
    const join_spec *s = op->spec;
    const side_spec *sd = &s->side[port];
    uint32_t skip = s->left_outer && port == 0 ? COUNT_LEN : 0;
    const uint8_t *jk = key_of(j, r);
    uint32_t klen = j->koff[r + 1] - j->koff[r];
    jindex *ix = &j->ix[port];
    uint32_t g = ix_find(ix, j->kh[r], jk, klen);
    int rv;

    *found = false;
    *count = 0;
    if (g == NONE) {
        return LM_OK;
    }
    j->rowbuf.len = 0;
    if (lm_row_encode(b, sd->dcols, sd->ndata, r, &j->rowbuf, NULL) != LM_OK) {
        return LM_ENOMEM;
    }
    for (uint32_t e = ix->g[g].head; e != NONE; e = ix->e[e].next) {
        const void *v;
        uint32_t vlen;
        if ((rv = table_key(&j->tkey, jk, klen, ix->e[e].seq)) != LM_OK) {
            return rv;
        }
        if (lm_table_get(j->tab[port], j->tkey.p, (uint32_t)j->tkey.len, &v, &vlen, NULL) !=
                LM_OK ||
            vlen < skip) {
            return lm_op_fail(op, LM_ESTATE, "the %s index names a row its table lacks",
                              side_name[port]);
        }
        if (vlen - skip == j->rowbuf.len &&
            memcmp((const uint8_t *)v + skip, j->rowbuf.p, j->rowbuf.len) == 0) {
            *count = skip > 0 ? get_le64(v) : 0;
            lm_table_delete(j->tab[port], j->tkey.p, (uint32_t)j->tkey.len);
            ix_unlink(ix, e);
            *found = true;
            return LM_OK;
        }
    }
    return LM_OK;
}

/* The second phase of a chunk: rows r0..r1 of b in order update the state
 * and list what comes out (C's matched candidates, null-padded rows). */
static int
join_apply(lm_op *op, join_state *j, uint32_t port, const lm_batch *b, uint32_t r0, uint32_t r1)
{
    const join_spec *s = op->spec;
    const side_spec *sd = &s->side[port];
    bool lo_left = s->left_outer && port == 0, lo_right = s->left_outer && port == 1;
    const uint8_t *ret = sd->changelog ? lm_batch_bools(b, sd->ndata) : NULL;
    int rv;

    emit_reset(j);
    for (uint32_t r = r0; r < r1; r++) {
        uint32_t c0 = j->rstart[r], c1 = j->rstart[r + 1];
        bool is_ret = ret != NULL && ret[r] && !lm_batch_is_null(b, sd->ndata, r);
        uint8_t st = j->kst[r];
        if (r + 8 < r1) {
            ix_prefetch(&j->ix[port], j->kh[r + 8]);
        }
        if (st == ROW_LATE || st == ROW_SKIP) {
            continue;
        }
        if (st == ROW_NULLKEY) {
            /* Never matches; a left outer join's left row still comes out
             * (and goes, when retracted). Nothing is stored. */
            if (lo_left && (rv = null_padded(op, j, b, r, is_ret)) != LM_OK) {
                return rv;
            }
            continue;
        }
        if (!is_ret) {
            uint64_t m = 0, old;
            uint8_t cnt[COUNT_LEN];
            for (uint32_t c = c0; c < c1; c++) {
                if (!j->ok[c]) {
                    continue;
                }
                if (lo_right) {
                    if ((rv = left_count_add(op, j, r, c, 1, &old)) != LM_OK) {
                        return rv;
                    }
                    if (old == 0 && (rv = null_padded(op, j, j->C, c, true)) != LM_OK) {
                        return rv;
                    }
                }
                if ((rv = push_emit(j, c, false)) != LM_OK) {
                    return rv;
                }
                m++;
            }
            put_le64(cnt, m);
            if ((rv = store_row(op, j, port, b, r, cnt, lo_left ? COUNT_LEN : 0,
                                s->ttl ? sat_add(j->t0[r], s->ttl_us) : 0, 0, 0)) != LM_OK) {
                return rv;
            }
            if (lo_left && m == 0 && (rv = null_padded(op, j, b, r, false)) != LM_OK) {
                return rv;
            }
        } else {
            bool found;
            uint64_t count, old;
            if ((rv = remove_row(op, j, port, b, r, &found, &count)) != LM_OK) {
                return rv;
            }
            if (!found) {
                continue; /* never stored, or expired: nothing to take back */
            }
            for (uint32_t c = c0; c < c1; c++) {
                if (!j->ok[c]) {
                    continue;
                }
                if ((rv = push_emit(j, c, true)) != LM_OK) {
                    return rv;
                }
                if (lo_right) {
                    if ((rv = left_count_add(op, j, r, c, -1, &old)) != LM_OK) {
                        return rv;
                    }
                    if (old == 1 && (rv = null_padded(op, j, j->C, c, false)) != LM_OK) {
                        return rv;
                    }
                }
            }
            if (lo_left && count == 0 && (rv = null_padded(op, j, b, r, true)) != LM_OK) {
                return rv;
            }
        }
    }
    return LM_OK;
}

/* Rows in chunks of about batch_rows candidates: probe, build the
 * combined rows, evaluate the condition, then the kind's second phase. */
static int
join_on_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const join_spec *s = op->spec;
    join_state *j = op->state;
    uint32_t n = b->nrows, cap = op->batch_rows > 0 ? op->batch_rows : 4096;
    int rv = LM_OK;

    if (n == 0) {
        goto out;
    }
    if ((rv = batch_prep(op, j, port, b)) != LM_OK) {
        goto out;
    }
    for (uint32_t r0 = 0; r0 < n;) {
        uint32_t r1 = r0, ncand = 0;
        while (r1 < n && (r1 == r0 || ncand < cap)) {
            if (r1 + 8 < n) {
                ix_prefetch(&j->ix[1 - port], j->kh[r1 + 8]);
            }
            j->rstart[r1] = ncand;
            if (j->kst[r1] == ROW_OK &&
                (rv = s->kind == KIND_INTERVAL ? irow_probe(op, j, port, r1, &ncand)
                                               : probe_row(op, j, port, r1, &ncand)) != LM_OK) {
                goto out;
            }
            r1++;
        }
        j->rstart[r1] = ncand;
        if ((rv = cand_scratch(j, ncand)) != LM_OK ||
            (rv = build_candidates(op, j, port, b, ncand)) != LM_OK ||
            (rv = eval_condition(op, j)) != LM_OK) {
            goto out;
        }
        if (s->kind == KIND_JOIN) {
            if ((rv = join_apply(op, j, port, b, r0, r1)) != LM_OK ||
                (rv = emit_listed(op, j)) != LM_OK) {
                goto out;
            }
        } else if ((rv = emit_ok(op, j)) != LM_OK) {
            goto out;
        }
        r0 = r1;
    }
    if (s->kind == KIND_INTERVAL) {
        /* Rows of one side never match each other: store them all after
         * probing. A row no future row of the other side can reach (its
         * expiry already behind the watermark) is not kept. */
        for (uint32_t r = 0; r < n; r++) {
            int64_t exp;
            if (j->kst[r] != ROW_OK) {
                continue;
            }
            exp = port == 0 ? j->t1[r] : sat_add(j->t0[r], -s->lower_us);
            if (exp < j->wm) {
                continue;
            }
            if ((rv = irow_store(op, j, port, b, r, exp, j->t0[r], j->t1[r])) != LM_OK) {
                goto out;
            }
        }
    }
out:
    lm_batch_free(b);
    return rv;
}

static int
join_on_watermark(lm_op *op, int64_t wm)
{
    const join_spec *s = op->spec;
    join_state *j = op->state;
    int rv;

    if (wm > j->wm) {
        j->wm = wm;
    }
    if (s->kind == KIND_INTERVAL || (s->kind == KIND_JOIN && s->ttl)) {
        for (uint32_t p = 0; p < 2; p++) {
            /* the interval join's chains and key map need nothing: rows
             * below the table's first number are simply gone */
            if ((rv = lm_table_expire(j->tab[p], j->wm,
                                      s->kind == KIND_INTERVAL ? NULL : unindex_visit,
                                      &j->ix[p])) != 0) {
                return rv;
            }
        }
    }
    return lm_op_emit_watermark(op, wm);
}

/* --- window join ---------------------------------------------------------- */

static int
window_on_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    join_state *j = op->state;
    int rv = LM_OK;

    if (b->nrows == 0 || (rv = batch_prep(op, j, port, b)) != LM_OK) {
        goto out;
    }
    for (uint32_t r = 0; r < b->nrows; r++) {
        if (j->kst[r] == ROW_OK &&
            (rv = store_row(op, j, port, b, r, NULL, 0, j->t0[r], 0, 0)) != LM_OK) {
            goto out;
        }
    }
out:
    lm_batch_free(b);
    return rv;
}

typedef struct collect_arg {
    wside *w;
    lm_error *err;
} collect_arg;

/* Expiry of a window: its rows go into the side's batch, their keys
 * (from the table keys) into the side's key buffer. */
static int
collect_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    collect_arg *a = arg;
    wside *w = a->w;
    uint32_t n = w->rows->nrows, jl;
    int rv;

    (void)ts;
    if (klen < SEQ_LEN) {
        return lm_error_set(a->err, LM_EPROTO, "a stored key is too short");
    }
    jl = klen - SEQ_LEN;
    if ((rv = lm_row_append(w->rows, val, vlen, a->err)) != LM_OK) {
        return rv;
    }
    if (n + 2 > w->cap) {
        uint32_t cap = w->cap;
        if (ENSURE(w->koff, cap, (uint64_t)n + 2) != LM_OK ||
            (w->kh = realloc(w->kh, (size_t)cap * sizeof(uint64_t))) == NULL) {
            return lm_error_set(a->err, LM_ENOMEM, "out of memory");
        }
        w->cap = cap;
    }
    if (ENSURE(w->kb, w->kbcap, (uint64_t)w->kblen + jl + 1) != LM_OK) {
        return lm_error_set(a->err, LM_ENOMEM, "out of memory");
    }
    if (n == 0) {
        w->koff[0] = 0;
    }
    if (jl > 0) {
        memcpy(w->kb + w->kblen, key, jl);
    }
    w->kblen += jl;
    w->koff[n + 1] = w->kblen;
    w->kh[n] = XXH3_64bits(key, jl);
    return 0;
}

/* Builds C from pairs (rows[i] of the left rows, rows2[i] of the right)
 * and emits those meeting the condition. */
static int
window_flush(lm_op *op, join_state *j, uint32_t n)
{
    const join_spec *s = op->spec;
    int rv;

    if (n == 0) {
        return LM_OK;
    }
    lm_batch_clear(j->C);
    if ((rv = lm_batch_reserve(j->C, n)) != LM_OK ||
        (rv = copy_cols(j->C, 0, j->w[0].rows, s->side[0].ndata, j->rows, n)) != LM_OK ||
        (rv = copy_cols(j->C, s->side[1].off, j->w[1].rows, s->side[1].ndata, j->rows2, n)) !=
            LM_OK) {
        return rv;
    }
    lm_batch_commit_rows(j->C, n);
    if ((rv = eval_condition(op, j)) != LM_OK) {
        return rv;
    }
    return emit_ok(op, j);
}

/* The window ending at end is complete: join its rows, drop them. */
static int
fire_window(lm_op *op, join_state *j, int64_t end)
{
    uint32_t cap = op->batch_rows > 0 ? op->batch_rows : 4096, np = 0, nl, nr, mask, nslots;
    wside *L = &j->w[0], *R = &j->w[1];
    int rv;

    for (uint32_t p = 0; p < 2; p++) {
        collect_arg a = {&j->w[p], &j->err};
        lm_batch_clear(j->w[p].rows);
        j->w[p].kblen = 0;
        if ((rv = lm_table_expire(j->tab[p], end + 1, collect_visit, &a)) != 0) {
            return lm_op_fail(op, rv, "reading window rows: %s", j->err.msg);
        }
    }
    nl = L->rows->nrows;
    nr = R->rows->nrows;
    if (nl == 0 || nr == 0) {
        return LM_OK;
    }
    /* Hash table over the left rows: heads per slot, chains ascending. */
    for (nslots = 16; nslots < 2 * (uint64_t)nl; nslots *= 2) {
    }
    mask = nslots - 1;
    if (ENSURE(j->hhead, j->hcap, nslots) != LM_OK || ENSURE(j->hnext, j->hncap, nl) != LM_OK ||
        (rv = cand_scratch(j, cap)) != LM_OK) {
        return LM_ENOMEM;
    }
    memset(j->hhead, 0xff, (size_t)nslots * sizeof(uint32_t));
    for (uint32_t i = nl; i-- > 0;) {
        uint32_t sl = (uint32_t)L->kh[i] & mask;
        j->hnext[i] = j->hhead[sl];
        j->hhead[sl] = i;
    }
    for (uint32_t ri = 0; ri < nr; ri++) {
        uint64_t h = R->kh[ri];
        const uint8_t *rk = R->kb + R->koff[ri];
        uint32_t rl = R->koff[ri + 1] - R->koff[ri];
        for (uint32_t li = j->hhead[(uint32_t)h & mask]; li != NONE; li = j->hnext[li]) {
            if (L->kh[li] != h || L->koff[li + 1] - L->koff[li] != rl ||
                memcmp(L->kb + L->koff[li], rk, rl) != 0) {
                continue;
            }
            j->rows[np] = li;
            j->rows2[np++] = ri;
            if (np == cap) {
                if ((rv = window_flush(op, j, np)) != LM_OK) {
                    return rv;
                }
                np = 0;
            }
        }
    }
    return window_flush(op, j, np);
}

static int
window_on_watermark(lm_op *op, int64_t wm)
{
    join_state *j = op->state;
    int rv;

    if (wm > j->wm) {
        j->wm = wm;
    }
    for (;;) {
        int64_t t0 = lm_table_min_time(j->tab[0]), t1 = lm_table_min_time(j->tab[1]);
        int64_t end = t0 < t1 ? t0 : t1;
        if (end == INT64_MAX || end > j->wm) {
            break;
        }
        if ((rv = fire_window(op, j, end)) != LM_OK) {
            return rv;
        }
    }
    return lm_op_emit_watermark(op, wm);
}

/* --- kinds -------------------------------------------------------------- */

const lm_op_kind lm_op_join = {
    .name = "join",
    .min_inputs = 2,
    .max_inputs = 2,
    .prepare = join_prepare,
    .spec_free = spec_free,
    .open = join_open,
    .on_batch = join_on_batch,
    .on_watermark = join_on_watermark,
    .on_barrier = join_barrier,
    .close = join_close,
};

const lm_op_kind lm_op_interval_join = {
    .name = "interval_join",
    .min_inputs = 2,
    .max_inputs = 2,
    .prepare = interval_prepare,
    .spec_free = spec_free,
    .open = join_open,
    .on_batch = join_on_batch,
    .on_watermark = join_on_watermark,
    .on_barrier = join_barrier,
    .close = join_close,
};

const lm_op_kind lm_op_window_join = {
    .name = "window_join",
    .min_inputs = 2,
    .max_inputs = 2,
    .prepare = window_prepare,
    .spec_free = spec_free,
    .open = join_open,
    .on_batch = window_on_batch,
    .on_watermark = window_on_watermark,
    .on_barrier = join_barrier,
    .close = join_close,
};
