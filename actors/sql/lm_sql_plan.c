/*
 * lm_sql_plan.c: the planner: rewrites the logical plan and writes the
 * physical plan.
 *
 * Rewrites, in order:
 *  1. predicates go down: a WHERE over a join (comma joins put their
 *     condition there) splits into its conjuncts; those that read one side
 *     only filter that side, the others join the join's condition;
 *  2. adjacent calcs fuse into one (the outer one's expressions rewritten
 *     over the inner one's);
 *  3. a nexmark scan under a filter on event_type generates only the
 *     kinds the filter keeps; when a table is read for one kind only,
 *     event_type is that constant everywhere, and the filter and the
 *     computed columns fold;
 *  4. each join is given its operator: a window join when both inputs are
 *     windowed alike and the condition equates their windows; an interval
 *     join when a BETWEEN bounds one side's event time by the other's; an
 *     updating join otherwise; equalities between the two sides are the
 *     keys, the rest is a residual condition;
 *  5. projections go down: every node keeps only the columns some consumer
 *     reads, and a source generates only those.
 *
 * Physical plan: one source per table however many times it is read (its
 * computed columns and watermark after it), operators named after what
 * they do, shuffles on the keys of aggregates and joins. A window
 * aggregate without keys runs in two phases (partial aggregates on every
 * subtask, merged per window) when its functions allow it; other
 * aggregates without keys run on one subtask.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lm_expr.h"
#include "lm_nexmark.h"
#include "lm_plan.h"
#include "lm_sql_lp.h"

static void *
al(lm_sql_lp *lp, size_t n)
{
    return lm_sql_alloc(lp->tree, n == 0 ? 1 : n);
}

/* --- JSON expression tools -------------------------------------------- */

/* Calls f on every column id j reads. */
static void
refs(const json_t *j, void (*f)(void *, uint32_t), void *arg)
{
    int64_t id = lp_bare_col(j);
    if (id >= 0) {
        f(arg, (uint32_t)id);
        return;
    }
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            if (strcmp(k, "lit") != 0) {
                refs(v, f, arg);
            }
        }
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++) {
            refs(json_array_get(j, i), f, arg);
        }
    }
}

typedef struct idset {
    uint8_t *bits;
    uint32_t n;
} idset;

static void
set_add(void *arg, uint32_t id)
{
    idset *s = arg;
    if (id < s->n) {
        s->bits[id] = 1;
    }
}

static bool
set_has(const idset *s, uint32_t id)
{
    return id < s->n && s->bits[id];
}

typedef struct side_check {
    const lp_node *n;
    bool all_in;
} side_check;

static void
check_side(void *arg, uint32_t id)
{
    side_check *c = arg;
    if (lp_find_col(c->n, id) == NULL) {
        c->all_in = false;
    }
}

/* Whether every column j reads is an output of n. */
static bool
reads_only(const json_t *j, const lp_node *n)
{
    side_check c = {n, true};
    refs(j, check_side, &c);
    return c.all_in;
}

/* A deep copy of j with each column reference replaced by what map gives
 * (a new reference), or kept when map gives NULL. */
typedef json_t *(*col_map)(void *arg, uint32_t id);

static json_t *
rewrite(const json_t *j, col_map map, void *arg)
{
    int64_t id = lp_bare_col(j);
    if (id >= 0) {
        json_t *r = map(arg, (uint32_t)id);
        return r != NULL ? r : json_deep_copy(j);
    }
    if (json_is_object(j)) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        if (o == NULL) {
            return NULL;
        }
        json_object_foreach((json_t *)j, k, v)
        {
            json_t *c = strcmp(k, "lit") == 0 ? json_deep_copy(v) : rewrite(v, map, arg);
            if (c == NULL || json_object_set_new(o, k, c) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    if (json_is_array(j)) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < json_array_size(j); i++) {
            json_t *c = rewrite(json_array_get(j, i), map, arg);
            if (c == NULL || json_array_append_new(a, c) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    return json_deep_copy(j);
}

/* Counts, or with out writes, the conjuncts of j. */
static uint32_t
split_and(json_t *j, json_t **out)
{
    const char *call = json_string_value(json_object_get(j, "call"));
    if (call != NULL && strcmp(call, "and") == 0) {
        json_t *args = json_object_get(j, "args");
        uint32_t n = 0;
        for (size_t i = 0; i < json_array_size(args); i++) {
            n += split_and(json_array_get(args, i), out != NULL ? out + n : NULL);
        }
        return n;
    }
    if (out != NULL) {
        out[0] = j;
    }
    return 1;
}

/* The conjuncts of an "and" (borrowed references), all of them, in an
 * array from lp's arena; *n gets the count. NULL when out of memory. */
static json_t **
conjuncts(lm_sql_lp *lp, json_t *j, uint32_t *n)
{
    json_t **c = al(lp, (*n = split_and(j, NULL)) * sizeof(json_t *));
    if (c != NULL) {
        split_and(j, c);
    }
    return c;
}

/* The conjunction of n conjuncts (owned by lp), NULL when n == 0. */
static json_t *
conjoin(lm_sql_lp *lp, json_t **c, uint32_t n)
{
    if (n == 0) {
        return NULL;
    }
    if (n == 1) {
        return c[0];
    }
    json_t *args = json_array();
    for (uint32_t i = 0; args != NULL && i < n; i++) {
        json_array_append(args, c[i]);
    }
    return lp_own(lp, json_pack("{s:s,s:o}", "call", "and", "args", args));
}

static bool
is_lit(const json_t *j)
{
    return json_is_object(j) && json_object_get(j, "lit") != NULL && json_object_size(j) <= 2;
}

static bool
lit_bool(const json_t *j, bool *v)
{
    json_t *l = json_object_get(j, "lit");
    if (is_lit(j) && json_is_boolean(l)) {
        *v = json_is_true(l);
        return true;
    }
    return false;
}

/* Folds what a rewrite made constant: comparisons of two literals,
 * and/or/not with constant arguments, CASE branches whose condition is
 * constant. Returns a new reference. */
static json_t *
simplify(const json_t *j)
{
    if (!json_is_object(j) || is_lit(j) || lp_bare_col(j) >= 0) {
        return json_deep_copy(j);
    }
    json_t *c = json_deep_copy(j);
    if (c == NULL) {
        return NULL;
    }
    json_t *args = json_object_get(c, "args");
    for (size_t i = 0; i < json_array_size(args); i++) {
        json_t *s = simplify(json_array_get(args, i));
        if (s == NULL) {
            json_decref(c);
            return NULL;
        }
        json_array_set_new(args, i, s);
    }
    const char *call = json_string_value(json_object_get(c, "call"));
    if (call != NULL && (strcmp(call, "=") == 0 || strcmp(call, "<>") == 0) &&
        json_array_size(args) == 2 && is_lit(json_array_get(args, 0)) &&
        is_lit(json_array_get(args, 1))) {
        json_t *a = json_object_get(json_array_get(args, 0), "lit");
        json_t *b = json_object_get(json_array_get(args, 1), "lit");
        if (json_is_integer(a) && json_is_integer(b)) {
            bool eq = json_integer_value(a) == json_integer_value(b);
            bool v = strcmp(call, "=") == 0 ? eq : !eq; /* call lives in c */
            json_decref(c);
            return json_pack("{s:b}", "lit", v);
        }
    }
    if (call != NULL && (strcmp(call, "and") == 0 || strcmp(call, "or") == 0)) {
        bool is_and = strcmp(call, "and") == 0, v;
        json_t *keep = json_array();
        for (size_t i = 0; keep != NULL && i < json_array_size(args); i++) {
            json_t *a = json_array_get(args, i);
            if (lit_bool(a, &v)) {
                if (v != is_and) { /* false in an and, true in an or */
                    json_decref(keep);
                    json_decref(c);
                    return json_pack("{s:b}", "lit", v);
                }
                continue;
            }
            json_array_append(keep, a);
        }
        if (keep == NULL) {
            json_decref(c);
            return NULL;
        }
        if (json_array_size(keep) == 0) {
            json_decref(keep);
            json_decref(c);
            return json_pack("{s:b}", "lit", is_and);
        }
        if (json_array_size(keep) == 1) {
            json_t *one = json_incref(json_array_get(keep, 0));
            json_decref(keep);
            json_decref(c);
            return one;
        }
        json_object_set_new(c, "args", keep);
        return c;
    }
    json_t *cases = json_object_get(c, "case");
    if (json_is_array(cases)) {
        json_t *keep = json_array();
        bool v;
        for (size_t i = 0; keep != NULL && i < json_array_size(cases); i++) {
            json_t *br = json_array_get(cases, i);
            json_t *w = simplify(json_object_get(br, "when"));
            json_t *t = simplify(json_object_get(br, "then"));
            if (w == NULL || t == NULL) {
                json_decref(w);
                json_decref(t);
                json_decref(keep);
                json_decref(c);
                return NULL;
            }
            if (lit_bool(w, &v) && !v) {
                json_decref(w);
                json_decref(t);
                continue;
            }
            if (lit_bool(w, &v) && v && json_array_size(keep) == 0) {
                json_decref(w);
                json_decref(keep);
                json_decref(c);
                return t;
            }
            json_array_append_new(keep, json_pack("{s:o,s:o}", "when", w, "then", t));
        }
        if (keep == NULL) {
            json_decref(c);
            return NULL;
        }
        json_t *els = json_object_get(c, "else");
        if (json_array_size(keep) == 0 && els != NULL) {
            json_t *e = simplify(els);
            json_decref(keep);
            json_decref(c);
            return e;
        }
        json_object_set_new(c, "case", keep);
        if (els != NULL) {
            json_object_set_new(c, "else", simplify(els));
        }
        return c;
    }
    return c;
}

/* --- 1. predicates down ------------------------------------------------ */

static int
filter_over(lm_sql_lp *lp, lp_node *in, json_t *pred, lp_node **out)
{
    lp_node *f = al(lp, sizeof(*f));
    NOMEM(f);
    f->kind = LP_CALC;
    f->pos = in->pos;
    f->phys = -1;
    f->nin = 1;
    NOMEM(f->in = al(lp, sizeof(lp_node *)));
    f->in[0] = in;
    f->ncols = in->ncols;
    NOMEM(f->cols = al(lp, in->ncols * sizeof(lp_col)));
    memcpy(f->cols, in->cols, in->ncols * sizeof(lp_col));
    NOMEM(f->exprs = al(lp, in->ncols * sizeof(json_t *)));
    for (uint32_t i = 0; i < in->ncols; i++) {
        NOMEM(f->exprs[i] = lp_col_ref(lp, in->cols[i].id));
    }
    f->filter = pred;
    f->changelog = in->changelog;
    *out = f;
    return LM_OK;
}

/* Sends the conjuncts of pred that read one side of an inner join j down
 * that side; returns the rest. */
static int
push_into_join(lm_sql_lp *lp, lp_node *j, json_t *pred, json_t **rest)
{
    uint32_t n, nk = 0, ns[2] = {0, 0};
    json_t **c = conjuncts(lp, pred, &n);
    json_t **keep = al(lp, n * sizeof(json_t *));
    json_t **side[2] = {al(lp, n * sizeof(json_t *)), al(lp, n * sizeof(json_t *))};
    int rv;

    if (c == NULL || keep == NULL || side[0] == NULL || side[1] == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (reads_only(c[i], j->in[0])) {
            side[0][ns[0]++] = c[i];
        } else if (reads_only(c[i], j->in[1]) && !j->left_outer) {
            side[1][ns[1]++] = c[i];
        } else {
            keep[nk++] = c[i];
        }
    }
    for (int s = 0; s < 2; s++) {
        if (ns[s] > 0) {
            json_t *p = conjoin(lp, side[s], ns[s]);
            NOMEM(p);
            if ((rv = filter_over(lp, j->in[s], p, &j->in[s])) != LM_OK) {
                return rv;
            }
        }
    }
    *rest = conjoin(lp, keep, nk);
    return LM_OK;
}

static int
push_down(lm_sql_lp *lp, lp_node *n)
{
    int rv;
    if (n->kind == LP_CALC && n->filter != NULL && n->in[0]->kind == LP_JOIN &&
        !n->in[0]->left_outer) {
        lp_node *j = n->in[0];
        json_t *rest;
        if ((rv = push_into_join(lp, j, n->filter, &rest)) != LM_OK) {
            return rv;
        }
        if (rest != NULL) {
            json_t *both[2] = {j->cond, rest};
            j->cond = j->cond != NULL ? conjoin(lp, both, 2) : rest;
            NOMEM(j->cond);
        }
        n->filter = NULL;
    }
    if (n->kind == LP_JOIN && n->cond != NULL && !n->left_outer) {
        json_t *rest;
        if ((rv = push_into_join(lp, n, n->cond, &rest)) != LM_OK) {
            return rv;
        }
        n->cond = rest;
    }
    for (uint32_t i = 0; i < n->nin; i++) {
        if ((rv = push_down(lp, n->in[i])) != LM_OK) {
            return rv;
        }
    }
    return LM_OK;
}

/* --- 2. calcs fuse ----------------------------------------------------- */

typedef struct subst {
    const lp_node *inner;
} subst;

static json_t *
subst_map(void *arg, uint32_t id)
{
    const lp_node *in = ((subst *)arg)->inner;
    for (uint32_t i = 0; i < in->ncols; i++) {
        if (in->cols[i].id == id) {
            return json_deep_copy(in->exprs[i]);
        }
    }
    return NULL;
}

static int
fuse(lm_sql_lp *lp, lp_node *n)
{
    int rv;
    for (uint32_t i = 0; i < n->nin; i++) {
        if ((rv = fuse(lp, n->in[i])) != LM_OK) {
            return rv;
        }
    }
    if (n->kind != LP_CALC || n->in[0]->kind != LP_CALC) {
        return LM_OK;
    }
    lp_node *in = n->in[0];
    subst s = {in};
    for (uint32_t i = 0; i < n->ncols; i++) {
        NOMEM(n->exprs[i] = lp_own(lp, rewrite(n->exprs[i], subst_map, &s)));
    }
    if (n->filter != NULL) {
        NOMEM(n->filter = lp_own(lp, rewrite(n->filter, subst_map, &s)));
    }
    if (in->filter != NULL) {
        json_t *both[2] = {in->filter, n->filter};
        n->filter = n->filter != NULL ? conjoin(lp, both, 2) : in->filter;
        NOMEM(n->filter);
    }
    n->in[0] = in->in[0];
    return LM_OK;
}

/* --- 3. nexmark kinds -------------------------------------------------- */

static const char *const KIND_NAMES[3] = {"person", "auction", "bid"};

static bool
is_nexmark(const lm_sql_table *t)
{
    return t != NULL && t->connector != NULL && strcasecmp(t->connector, "nexmark") == 0;
}

static int32_t
event_type_col(const lm_sql_table *t)
{
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (!t->cols[i].computed && strcmp(t->cols[i].name, "event_type") == 0) {
            return (int32_t)i;
        }
    }
    return -1;
}

/* The kinds a conjunct "event_type = k" (or IN) over scan s admits, 0: not such a conjunct. */
static uint32_t
kinds_of(const json_t *c, const lp_node *s)
{
    const char *call = json_string_value(json_object_get(c, "call"));
    json_t *args = json_object_get(c, "args");
    int32_t et = event_type_col(s->table);
    uint32_t mask = 0;

    if (call == NULL || et < 0 || json_array_size(args) < 2) {
        return 0;
    }
    bool eq = strcmp(call, "=") == 0, in = strcmp(call, "in") == 0;
    if (!eq && !in) {
        return 0;
    }
    size_t col = 0;
    if (eq && lp_bare_col(json_array_get(args, 1)) >= 0) {
        col = 1;
    }
    int64_t id = lp_bare_col(json_array_get(args, col));
    const lp_col *pc = id >= 0 ? lp_find_col(s, (uint32_t)id) : NULL;
    if (pc == NULL || pc->tcol != et) {
        return 0;
    }
    for (size_t i = 0; i < json_array_size(args); i++) {
        if (i == col) {
            continue;
        }
        json_t *l = json_object_get(json_array_get(args, i), "lit");
        if (!json_is_integer(l)) {
            return 0;
        }
        json_int_t k = json_integer_value(l);
        if (k >= 0 && k <= 2) {
            mask |= 1u << k;
        }
    }
    return mask == 0 ? 0 : mask | 0x80000000u; /* the high bit: "no kind at all" is possible */
}

static void
find_kinds(lm_sql_lp *lp, lp_node *n)
{
    if (n->kind == LP_CALC && n->in[0]->kind == LP_SCAN && is_nexmark(n->in[0]->table)) {
        uint32_t nc = 0, mask = 7;
        json_t **c = n->filter != NULL ? conjuncts(lp, n->filter, &nc) : NULL;
        if (c == NULL) {
            nc = 0; /* no filter, or no memory: every kind (still correct) */
        }
        for (uint32_t i = 0; i < nc; i++) {
            uint32_t k = kinds_of(c[i], n->in[0]);
            if (k != 0) {
                mask &= k;
            }
        }
        mask &= 7;
        n->in[0]->kinds = mask == 0 ? 7 : mask; /* a contradiction: let the filter say so */
        n->in[0]->table->kinds |= n->in[0]->kinds;
        return;
    }
    if (n->kind == LP_SCAN && is_nexmark(n->table)) {
        n->kinds = 7;
        n->table->kinds |= 7;
    }
    for (uint32_t i = 0; i < n->nin; i++) {
        find_kinds(lp, n->in[i]);
    }
}

typedef struct const_col {
    uint32_t id;
    int64_t value;
} const_col;

static json_t *
const_map(void *arg, uint32_t id)
{
    const const_col *c = arg;
    return id == c->id ? json_pack("{s:I}", "lit", (json_int_t)c->value) : NULL;
}

static int
single_kind(const lm_sql_table *t)
{
    return t->kinds == 1 ? 0 : t->kinds == 2 ? 1 : t->kinds == 4 ? 2 : -1;
}

/* Where a table is read for one kind only, event_type is a constant. */
static int
fold_kinds(lm_sql_lp *lp, lp_node *n)
{
    int rv;
    for (uint32_t i = 0; i < n->nin; i++) {
        if ((rv = fold_kinds(lp, n->in[i])) != LM_OK) {
            return rv;
        }
    }
    if (n->kind != LP_CALC || n->in[0]->kind != LP_SCAN || !is_nexmark(n->in[0]->table)) {
        return LM_OK;
    }
    lp_node *s = n->in[0];
    int k = single_kind(s->table);
    int32_t et = event_type_col(s->table);
    if (k < 0 || et < 0) {
        return LM_OK;
    }
    const_col cc = {s->cols[et].id, k};
    for (uint32_t i = 0; i < n->ncols; i++) {
        json_t *r = rewrite(n->exprs[i], const_map, &cc), *sim;
        NOMEM(r);
        sim = simplify(r);
        json_decref(r);
        NOMEM(n->exprs[i] = lp_own(lp, sim));
    }
    if (n->filter != NULL) {
        json_t *r = rewrite(n->filter, const_map, &cc), *sim;
        bool v;
        NOMEM(r);
        sim = simplify(r);
        json_decref(r);
        NOMEM(n->filter = lp_own(lp, sim));
        if (lit_bool(n->filter, &v) && v) {
            n->filter = NULL;
        }
    }
    return LM_OK;
}

/* --- 4. joins ---------------------------------------------------------- */

static const lp_col *
side_col(const lp_node *j, uint32_t id, int *side)
{
    for (int s = 0; s < 2; s++) {
        const lp_col *c = lp_find_col(j->in[s], id);
        if (c != NULL) {
            *side = s;
            return c;
        }
    }
    return NULL;
}

static bool
is_time_attr(const lp_col *c)
{
    return c != NULL && c->type == LM_TYPE_TIMESTAMP &&
           (c->role == LP_ROWTIME || c->role == LP_WEND);
}

/* "col" or "col + interval" or "col - interval" over one side: the column and the offset. */
static bool
time_offset(const json_t *e, uint32_t *col, int64_t *off)
{
    int64_t id = lp_bare_col(e);
    if (id >= 0) {
        *col = (uint32_t)id;
        *off = 0;
        return true;
    }
    const char *call = json_string_value(json_object_get(e, "call"));
    json_t *args = json_object_get(e, "args");
    if (call == NULL || json_array_size(args) != 2 || (strcmp(call, "+") && strcmp(call, "-"))) {
        return false;
    }
    json_t *a = json_array_get(args, 0), *b = json_array_get(args, 1);
    json_t *lit = json_object_get(b, "lit");
    const char *type = json_string_value(json_object_get(b, "type"));
    if (lp_bare_col(a) < 0 || !json_is_integer(lit) || type == NULL ||
        strcmp(type, "interval") != 0) {
        return false;
    }
    *col = (uint32_t)lp_bare_col(a);
    *off = strcmp(call, "+") == 0 ? json_integer_value(lit) : -json_integer_value(lit);
    return true;
}

/* Looks for "x.t BETWEEN lo AND hi" with t a time attribute of one side
 * and lo, hi over the other side's time: an interval join. */
static bool
interval_shape(lp_node *j, const json_t *c)
{
    const char *call = json_string_value(json_object_get(c, "call"));
    json_t *args = json_object_get(c, "args");
    int sx, sl, sh;
    uint32_t lo_col, hi_col;
    int64_t lo_off, hi_off;

    if (call == NULL || strcmp(call, "between") != 0 || json_array_size(args) != 3) {
        return false;
    }
    int64_t x = lp_bare_col(json_array_get(args, 0));
    const lp_col *xc = x >= 0 ? side_col(j, (uint32_t)x, &sx) : NULL;
    if (!is_time_attr(xc) || !time_offset(json_array_get(args, 1), &lo_col, &lo_off) ||
        !time_offset(json_array_get(args, 2), &hi_col, &hi_off)) {
        return false;
    }
    const lp_col *lc = side_col(j, lo_col, &sl), *hc = side_col(j, hi_col, &sh);
    if (lc == NULL || hc == NULL || sl == sx || sh != sl || lc->type != LM_TYPE_TIMESTAMP ||
        hc->type != LM_TYPE_TIMESTAMP || !is_time_attr(lc)) {
        return false;
    }
    if (lo_off % 1000 != 0 || hi_off % 1000 != 0) {
        return false;
    }
    /* the engine's left side is the one the bounds come from */
    j->swap = sl == 1;
    j->ltime = lo_col;
    j->rtime = (uint32_t)x;
    j->lower_us = lo_off;
    if (hi_col == lo_col) {
        j->upper_col = -1;
        j->upper_us = hi_off;
    } else if (hi_off == 0) {
        j->upper_col = hi_col;
    } else {
        return false;
    }
    return true;
}

static int
plan_join(lm_sql_lp *lp, lp_node *j, lm_sql_diag *d)
{
    uint32_t n = 0, nr = 0, nk = 0;
    json_t **c = j->cond != NULL ? conjuncts(lp, j->cond, &n) : NULL;
    json_t **rest = al(lp, n * sizeof(json_t *));
    uint32_t *lk = al(lp, n * sizeof(uint32_t)), *rk = al(lp, n * sizeof(uint32_t));
    bool interval = false;

    if ((j->cond != NULL && c == NULL) || rest == NULL || lk == NULL || rk == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *call = json_string_value(json_object_get(c[i], "call"));
        json_t *args = json_object_get(c[i], "args");
        if (call != NULL && strcmp(call, "=") == 0 && json_array_size(args) == 2) {
            int64_t a = lp_bare_col(json_array_get(args, 0)),
                    b = lp_bare_col(json_array_get(args, 1));
            int sa = -1, sb = -1;
            const lp_col *ca = a >= 0 ? side_col(j, (uint32_t)a, &sa) : NULL;
            const lp_col *cb = b >= 0 ? side_col(j, (uint32_t)b, &sb) : NULL;
            if (ca != NULL && cb != NULL && sa != sb && ca->type == cb->type) {
                lk[nk] = (uint32_t)(sa == 0 ? a : b);
                rk[nk] = (uint32_t)(sa == 0 ? b : a);
                nk++;
                continue;
            }
        }
        if (!interval && !j->left_outer && interval_shape(j, c[i])) {
            interval = true;
            continue;
        }
        rest[nr++] = c[i];
    }
    if (nk == 0) {
        return lm_sql_diag_set(d, j->pos,
                               "this join has no equality between columns of its two inputs: a "
                               "streaming join needs one (a.x = b.y)");
    }
    /* a window join: both sides windowed alike, their windows equated */
    int32_t lwend = -1, rwend = -1;
    bool same_window = false;
    for (uint32_t i = 0; i < nk && !interval; i++) {
        const lp_col *a = lp_find_col(j->in[0], lk[i]), *b = lp_find_col(j->in[1], rk[i]);
        if ((a->role == LP_WEND || a->role == LP_WSTART) && a->role == b->role && a->win != NULL &&
            b->win != NULL && a->win->id == b->win->id) {
            same_window = true;
        }
    }
    if (same_window && !j->left_outer && !j->in[0]->changelog && !j->in[1]->changelog) {
        for (int s = 0; s < 2; s++) {
            const lp_node *in = j->in[s];
            for (uint32_t i = 0; i < in->ncols; i++) {
                if (in->cols[i].role == LP_WEND) {
                    *(s == 0 ? &lwend : &rwend) = (int32_t)in->cols[i].id;
                }
            }
        }
    }
    j->swap = interval ? j->swap : false;
    if (interval) {
        j->jkind = LP_J_INTERVAL;
    } else if (lwend >= 0 && rwend >= 0) {
        j->jkind = LP_J_WINDOW;
        j->lwend = (uint32_t)lwend;
        j->rwend = (uint32_t)rwend;
    } else {
        j->jkind = LP_J_UPDATING;
    }
    if (j->jkind != LP_J_UPDATING && (j->in[0]->changelog || j->in[1]->changelog)) {
        return lm_sql_diag_set(d, j->pos,
                               "a %s join needs append-only inputs, but one of these is updated",
                               j->jkind == LP_J_WINDOW ? "window" : "interval");
    }
    j->njkeys = nk;
    NOMEM(j->lkeys = al(lp, nk * sizeof(uint32_t)));
    NOMEM(j->rkeys = al(lp, nk * sizeof(uint32_t)));
    for (uint32_t i = 0; i < nk; i++) {
        j->lkeys[i] = j->swap ? rk[i] : lk[i];
        j->rkeys[i] = j->swap ? lk[i] : rk[i];
    }
    j->residual = conjoin(lp, rest, nr);
    if (nr > 0 && j->residual == NULL) {
        return LM_ENOMEM;
    }
    j->changelog =
        j->jkind == LP_J_UPDATING && (j->left_outer || j->in[0]->changelog || j->in[1]->changelog);
    return LM_OK;
}

static int
plan_joins(lm_sql_lp *lp, lp_node *n, lm_sql_diag *d)
{
    int rv;
    for (uint32_t i = 0; i < n->nin; i++) {
        if ((rv = plan_joins(lp, n->in[i], d)) != LM_OK) {
            return rv;
        }
    }
    if (n->kind == LP_JOIN) {
        return plan_join(lp, n, d);
    }
    return LM_OK;
}

/* Whether an operator of the tree works on event time: windows, interval
 * and window joins, and state that expires with the watermark. Without
 * one, sources need no watermark. */
static bool
uses_event_time(const lm_sql_lp *lp, const lp_node *n)
{
    if (n->kind == LP_WAGG || (n->kind == LP_JOIN && n->jkind != LP_J_UPDATING) ||
        ((n->kind == LP_AGG || n->kind == LP_JOIN) && lp->state_ttl_ms > 0)) {
        return true;
    }
    for (uint32_t i = 0; i < n->nin; i++) {
        if (uses_event_time(lp, n->in[i])) {
            return true;
        }
    }
    return false;
}

/* --- 5. projections down ----------------------------------------------- */

static int
prune(lm_sql_lp *lp, lp_node *n, const idset *need)
{
    idset in = {calloc(lp->next_col, 1), lp->next_col};
    int rv = LM_OK;

    NOMEM(in.bits);
    switch (n->kind) {
    case LP_SINK:
        for (uint32_t i = 0; i < n->in[0]->ncols; i++) {
            set_add(&in, n->in[0]->cols[i].id);
        }
        break;
    case LP_CALC: {
        uint32_t k = 0;
        for (uint32_t i = 0; i < n->ncols; i++) {
            if (set_has(need, n->cols[i].id) || (k == 0 && i == n->ncols - 1)) {
                n->cols[k] = n->cols[i];
                n->exprs[k++] = n->exprs[i];
            }
        }
        n->ncols = k;
        for (uint32_t i = 0; i < n->ncols; i++) {
            refs(n->exprs[i], set_add, &in);
        }
        if (n->filter != NULL) {
            refs(n->filter, set_add, &in);
        }
        break;
    }
    case LP_SCAN: {
        uint32_t k = 0;
        for (uint32_t i = 0; i < n->ncols; i++) {
            if (set_has(need, n->cols[i].id) ||
                (lp->event_time && n->cols[i].tcol == n->table->wm_col)) {
                n->table->col_used[n->cols[i].tcol] = true;
                n->cols[k++] = n->cols[i];
            }
        }
        n->ncols = k;
        break;
    }
    case LP_WAGG:
    case LP_AGG:
        for (uint32_t i = 0; i < n->nkeys; i++) {
            set_add(&in, n->keys[i]);
        }
        for (uint32_t i = 0; i < n->naggs; i++) {
            if (n->aggs[i].fn != LP_COUNT_STAR) {
                set_add(&in, n->aggs[i].arg);
            }
        }
        if (n->kind == LP_AGG && lp->state_ttl_ms > 0) {
            for (uint32_t i = 0; i < n->in[0]->ncols; i++) { /* the TTL follows event time */
                if (n->in[0]->cols[i].role == LP_ROWTIME) {
                    set_add(&in, n->in[0]->cols[i].id);
                    break;
                }
            }
        }
        if (n->win != NULL) {
            if (n->win->type == LP_WIN_GIVEN) {
                set_add(&in, n->win->start_col);
                set_add(&in, n->win->end_col);
            } else {
                set_add(&in, n->win->time_col);
            }
        }
        break;
    case LP_JOIN: {
        uint32_t k = 0;
        for (uint32_t i = 0; i < n->ncols; i++) {
            if (set_has(need, n->cols[i].id) || (k == 0 && i == n->ncols - 1)) {
                n->cols[k++] = n->cols[i];
            }
        }
        n->ncols = k;
        for (uint32_t i = 0; i < n->ncols; i++) {
            set_add(&in, n->cols[i].id);
        }
        for (uint32_t i = 0; i < n->njkeys; i++) {
            set_add(&in, n->lkeys[i]);
            set_add(&in, n->rkeys[i]);
        }
        if (n->residual != NULL) {
            refs(n->residual, set_add, &in);
        }
        if (n->jkind == LP_J_UPDATING && lp->state_ttl_ms > 0) {
            for (int s = 0; s < 2; s++) { /* the TTL follows event time */
                for (uint32_t i = 0; i < n->in[s]->ncols; i++) {
                    if (n->in[s]->cols[i].role == LP_ROWTIME) {
                        set_add(&in, n->in[s]->cols[i].id);
                    }
                }
            }
        }
        if (n->jkind == LP_J_INTERVAL) {
            set_add(&in, n->ltime);
            set_add(&in, n->rtime);
            if (n->upper_col >= 0) {
                set_add(&in, (uint32_t)n->upper_col);
            }
        } else if (n->jkind == LP_J_WINDOW) {
            set_add(&in, n->lwend);
            set_add(&in, n->rwend);
        }
        break;
    }
    case LP_UNION:
        for (uint32_t i = 0; i < n->ncols; i++) {
            for (uint32_t k = 0; k < n->nin; k++) {
                set_add(&in, n->in[k]->cols[i].id);
            }
        }
        break;
    }
    for (uint32_t i = 0; i < n->nin && rv == LM_OK; i++) {
        rv = prune(lp, n->in[i], &in);
    }
    free(in.bits);
    return rv;
}

/* --- physical plan ----------------------------------------------------- */

typedef struct pout {
    json_t *op; /* the operator (borrowed from the plan) */
    const char *id;
    uint32_t n;
    uint32_t *ids;      /* LP column ids */
    const char **names; /* their physical names */
    lm_type *types;
    bool *nullable;
    bool changelog; /* a trailing _retract column */
    uint32_t par;
    bool view;  /* a selection of op's columns, not its schema as it is */
    bool fixed; /* its parallelism must not change (one subtask for a global result) */
} pout;

typedef struct planner {
    lm_sql_lp *lp;
    lm_sql_diag *d;
    json_t *ops, *edges;
    uint32_t par;
    uint32_t counter;
    pout *tables; /* per table, the shared source's output */
} planner;

static int
pout_alloc(planner *pl, pout *o, uint32_t n)
{
    memset(o, 0, sizeof(*o));
    o->n = n;
    o->ids = al(pl->lp, n * sizeof(uint32_t));
    o->names = al(pl->lp, n * sizeof(char *));
    o->types = al(pl->lp, n * sizeof(lm_type));
    o->nullable = al(pl->lp, n * sizeof(bool));
    return o->ids && o->names && o->types && o->nullable ? LM_OK : LM_ENOMEM;
}

static int32_t
pout_find(const pout *o, uint32_t id)
{
    for (uint32_t i = 0; i < o->n; i++) {
        if (o->ids[i] == id) {
            return (int32_t)i;
        }
    }
    return -1;
}

/* Makes names[0..n) unique and legal (no "_retract"). */
static int
uniq_names(planner *pl, const char **names, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *base = names[i];
        if (strcmp(base, "_retract") == 0) {
            base = "retract";
        }
        for (uint32_t suffix = 1;; suffix++) {
            char buf[300];
            const char *cand = base;
            if (suffix > 1) {
                snprintf(buf, sizeof(buf), "%s_%" PRIu32, base, suffix);
                cand = buf;
            }
            bool clash = false;
            for (uint32_t k = 0; k < i && !clash; k++) {
                clash = strcasecmp(names[k], cand) == 0;
            }
            if (!clash) {
                names[i] = lm_sql_strdup(pl->lp->tree, cand, strlen(cand));
                NOMEM(names[i]);
                break;
            }
        }
    }
    return LM_OK;
}

static const char *
jtype(lm_type t)
{
    static const char *const n[] = {"", "bool", "int64", "float64", "timestamp", "utf8", "binary"};
    return t >= 1 && t <= 6 ? n[t] : "int64";
}

static json_t *
schema_json(const pout *o)
{
    json_t *s = json_array();
    for (uint32_t i = 0; s != NULL && i < o->n; i++) {
        bool seen = false; /* an alias (a second name for a column) is not a column */
        for (uint32_t k = 0; k < i && !seen; k++) {
            seen = strcmp(o->names[k], o->names[i]) == 0;
        }
        if (seen) {
            continue;
        }
        json_array_append_new(s, json_pack("{s:s,s:s,s:b}", "name", o->names[i], "type",
                                           jtype(o->types[i]), "nullable", o->nullable[i]));
    }
    if (s != NULL && o->changelog) {
        json_array_append_new(
            s, json_pack("{s:s,s:s,s:b}", "name", "_retract", "type", "bool", "nullable", 0));
    }
    return s;
}

/* Adds an operator; *id gets its name. */
static json_t *
add_op(planner *pl, const char *prefix, const char *kind, uint32_t par, bool fixed, json_t *config,
       const char **id)
{
    char buf[300];
    snprintf(buf, sizeof(buf), "%s_%" PRIu32, prefix, ++pl->counter);
    json_t *op = json_pack("{s:s,s:s,s:I,s:o}", "id", buf, "kind", kind, "parallelism",
                           (json_int_t)par, "config", config ? config : json_object());
    if (op == NULL) {
        return NULL;
    }
    if (fixed || par != pl->par) {
        json_object_set_new(op, "fixed_parallelism", json_true());
    }
    json_array_append_new(pl->ops, op);
    *id = json_string_value(json_object_get(op, "id"));
    return op;
}

static int
add_edge(planner *pl, const char *from, const char *to, uint32_t port, const char *kind,
         json_t *keys)
{
    json_t *e = json_pack("{s:s,s:s}", "from", from, "to", to);
    NOMEM(e);
    if (port != 0) {
        json_object_set_new(e, "port", json_integer(port));
    }
    if (kind != NULL) {
        json_object_set_new(e, "kind", json_string(kind));
    }
    if (keys != NULL) {
        json_object_set_new(e, "keys", keys);
    }
    return json_array_append_new(pl->edges, e) == 0 ? LM_OK : LM_ENOMEM;
}

/* Connects in to an operator of parallelism par (fixed: it keeps it
 * whatever parallelism the job runs at). With keys, a shuffle on them.
 * Without: forward when the two always have the same parallelism; into a
 * fixed single subtask, a broadcast (each row goes to it once); otherwise
 * a shuffle on the first column, to spread the rows. */
static int
link_ops(planner *pl, const pout *in, const char *to, uint32_t port, uint32_t par, bool fixed,
         json_t *keys)
{
    if (keys != NULL && json_array_size(keys) > 0) {
        return add_edge(pl, in->id, to, port, "shuffle", keys);
    }
    json_decref(keys);
    if (in->par == par && in->fixed == fixed) {
        return add_edge(pl, in->id, to, port, NULL, NULL);
    }
    if (fixed && par == 1) {
        return add_edge(pl, in->id, to, port, "broadcast", NULL);
    }
    json_t *first = json_pack("[s]", in->n > 0 ? in->names[0] : "_retract");
    NOMEM(first);
    return add_edge(pl, in->id, to, port, "shuffle", first);
}

typedef struct xl {
    const pout *a, *b;   /* b: the second input of a join, NULL otherwise */
    const char *pa, *pb; /* prefixes "left." / "right." */
    bool missing;
} xl;

static json_t *
xl_map(void *arg, uint32_t id)
{
    xl *x = arg;
    char buf[400];
    int32_t i = pout_find(x->a, id);
    if (i >= 0) {
        snprintf(buf, sizeof(buf), "%s%s", x->pa ? x->pa : "", x->a->names[i]);
        return json_pack("{s:s}", "col", buf);
    }
    if (x->b != NULL && (i = pout_find(x->b, id)) >= 0) {
        snprintf(buf, sizeof(buf), "%s%s", x->pb ? x->pb : "", x->b->names[i]);
        return json_pack("{s:s}", "col", buf);
    }
    x->missing = true;
    return NULL;
}

/* j over the LP ids of in, in the physical names (a new reference). */
static json_t *
xlate(planner *pl, const json_t *j, const pout *a, const char *pa, const pout *b, const char *pb)
{
    xl x = {a, b, pa, pb, false};
    json_t *r = rewrite(j, xl_map, &x);
    if (r != NULL && x.missing) {
        lm_sql_diag_set(pl->d, (lm_sql_pos){0, 0}, "internal: a column was lost in planning");
        json_decref(r);
        return NULL;
    }
    return r;
}

/* The type and nullability of e (physical) over the schema of in. */
static int
phys_type(planner *pl, const json_t *e, const pout *a, const char *pa, const pout *b,
          const char *pb, lm_type *type, bool *nullable)
{
    uint32_t n = a->n + (b ? b->n : 0) + 2;
    lm_field *f = calloc(n, sizeof(*f));
    char(*names)[400] = calloc(n, sizeof(*names));
    lm_schema *s = NULL;
    lm_expr *x = NULL;
    lm_error err;
    uint32_t k = 0;
    int rv;

    if (f == NULL || names == NULL) {
        free(f);
        free(names);
        return LM_ENOMEM;
    }
    for (int side = 0; side < 2; side++) {
        const pout *o = side == 0 ? a : b;
        const char *prefix = side == 0 ? pa : pb;
        for (uint32_t i = 0; o != NULL && i < o->n; i++) {
            bool seen = false; /* aliases */
            snprintf(names[k], sizeof(names[k]), "%s%s", prefix ? prefix : "", o->names[i]);
            for (uint32_t m = 0; m < k && !seen; m++) {
                seen = strcmp(names[m], names[k]) == 0;
            }
            if (!seen) {
                f[k] = (lm_field){names[k], o->types[i], o->nullable[i]};
                k++;
            }
        }
    }
    rv = lm_schema_new(f, k, &s, &err);
    if (rv == LM_OK) {
        rv = lm_expr_compile(e, s, &x, &err);
    }
    if (rv == LM_OK) {
        *type = (lm_type)lm_expr_type(x);
        *nullable = lm_expr_nullable(x);
    } else if (rv != LM_ENOMEM) {
        rv = lm_sql_diag_set(pl->d, (lm_sql_pos){0, 0}, "internal: %s", err.msg);
    }
    lm_expr_free(x);
    lm_schema_release(s);
    free(f);
    free(names);
    return rv;
}

static int emit(planner *pl, lp_node *n, pout *out);

static int
option(const lm_sql_table *t, const char *key, const char **value)
{
    for (uint32_t i = 0; i < t->noptions; i++) {
        if (strcmp(t->options[i].key, key) == 0) {
            *value = t->options[i].value;
            return 1;
        }
    }
    return 0;
}

static json_t *
options_json(const lm_sql_table *t)
{
    json_t *c = json_object();
    for (uint32_t i = 0; c != NULL && i < t->noptions; i++) {
        if (strcmp(t->options[i].key, "connector") != 0) {
            json_object_set_new(c, t->options[i].key, json_string(t->options[i].value));
        }
    }
    return c;
}

/* A table's source, computed columns and watermark, shared by its scans. */
static int
emit_table(planner *pl, lm_sql_table *t, pout *out)
{
    const char *kind = strcasecmp(t->connector, "nexmark") == 0   ? "nexmark"
                       : strcasecmp(t->connector, "impulse") == 0 ? "impulse"
                                                                  : "file_source";
    json_t *config = options_json(t), *op;
    pout src = {0};
    uint32_t nphys = 0;
    int rv;
    char prefix[300];

    NOMEM(config);
    if (strcmp(kind, "file_source") == 0) {
        json_object_del(config, "rolling_bytes");
        json_object_del(config, "rolling_ms");
        const char *v;
        if (option(t, "csv_header", &v)) {
            json_object_set_new(config, "csv_header", json_boolean(strcasecmp(v, "true") == 0));
        }
    }
    if (strcmp(kind, "impulse") == 0) {
        const char *keys[] = {"count", "rate", "start_ms", "interval_us"};
        for (int i = 0; i < 4; i++) {
            const char *v;
            if (option(t, keys[i], &v)) {
                json_object_set_new(config, keys[i], json_integer(strtoll(v, NULL, 10)));
            }
        }
    }
    /* a table read for one nexmark kind: event_type is a constant there */
    int k0 = single_kind(t), et = event_type_col(t);
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (t->cols[i].computed && is_nexmark(t) && k0 >= 0 && et >= 0) {
            const_col cc = {t->col_ids[et], k0};
            json_t *r = rewrite(t->computed[i], const_map, &cc);
            NOMEM(r);
            t->computed[i] = lp_own(pl->lp, simplify(r));
            json_decref(r);
            NOMEM(t->computed[i]);
        }
    }
    /* a computed column that is, kind by kind, the kind's own dateTime is
     * the generator's dateTime column: the source makes it */
    for (uint32_t i = 0; i < t->ncols && is_nexmark(t) && et >= 0; i++) {
        bool same = t->cols[i].computed && t->kinds != 0;
        for (int k = 0; k < 3 && same; k++) {
            if (!(t->kinds & (1u << k))) {
                continue;
            }
            const_col cc = {t->col_ids[et], k};
            json_t *r = rewrite(t->computed[i], const_map, &cc), *sim = r ? simplify(r) : NULL;
            int64_t id = sim != NULL ? lp_bare_col(sim) : -1;
            char want[32];
            snprintf(want, sizeof(want), "%s.dateTime", KIND_NAMES[k]);
            same = false;
            for (uint32_t c = 0; c < t->ncols && id >= 0; c++) {
                same |= t->col_ids[c] == (uint32_t)id && strcmp(t->cols[c].name, want) == 0;
            }
            json_decref(r);
            json_decref(sim);
        }
        if (same) {
            t->cols[i].computed = false;
            t->cols[i].source_name = "dateTime";
            t->cols[i].type = LM_TYPE_TIMESTAMP;
            t->cols[i].nullable = false;
        }
    }
    /* a source that cannot leave columns out makes them all: impulse, and
     * CSV without a header (its fields are matched by position) */
    const char *fmt = NULL, *hdr = NULL;
    option(t, "format", &fmt);
    option(t, "csv_header", &hdr);
    if (strcmp(kind, "impulse") == 0 || (fmt != NULL && strcasecmp(fmt, "csv") == 0 &&
                                         hdr != NULL && strcasecmp(hdr, "false") == 0)) {
        for (uint32_t i = 0; i < t->ncols; i++) {
            t->col_used[i] |= !t->cols[i].computed;
        }
    }
    /* computed columns need their inputs; the watermark column is made
     * when something works on event time */
    bool watermark = t->wm_col >= 0 && pl->lp->event_time;
    if (watermark) {
        t->col_used[t->wm_col] = true;
    }
    idset deps = {calloc(pl->lp->next_col, 1), pl->lp->next_col};
    NOMEM(deps.bits);
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (t->cols[i].computed && t->col_used[i]) {
            refs(t->computed[i], set_add, &deps);
        }
    }
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (set_has(&deps, t->col_ids[i])) {
            t->col_used[i] = true;
        }
    }
    free(deps.bits);
    for (uint32_t i = 0; i < t->ncols; i++) {
        nphys += !t->cols[i].computed && t->col_used[i];
    }
    if (nphys == 0) { /* a source must produce something */
        for (uint32_t i = 0; i < t->ncols; i++) {
            if (!t->cols[i].computed) {
                t->col_used[i] = true;
                nphys = 1;
                break;
            }
        }
    }
    NOMEM(pout_alloc(pl, &src, nphys) == LM_OK ? &src : NULL);
    json_t *columns = json_array();
    NOMEM(columns);
    for (uint32_t i = 0, k = 0; i < t->ncols; i++) {
        if (t->cols[i].computed || !t->col_used[i]) {
            continue;
        }
        src.ids[k] = t->col_ids[i];
        src.names[k] = t->cols[i].name;
        src.types[k] = t->cols[i].type;
        src.nullable[k] = t->cols[i].nullable;
        json_array_append_new(
            columns,
            json_string(t->cols[i].source_name != NULL ? t->cols[i].source_name : t->cols[i].name));
        k++;
    }
    if (strcmp(kind, "nexmark") == 0) {
        json_object_set_new(config, "columns", columns);
        if (t->kinds != 0 && t->kinds != 7) {
            json_t *kinds = json_array();
            for (int k = 0; k < 3; k++) {
                if (t->kinds & (1u << k)) {
                    json_array_append_new(kinds, json_string(KIND_NAMES[k]));
                }
            }
            json_object_set_new(config, "kinds", kinds);
        }
    } else {
        json_decref(columns);
    }
    snprintf(prefix, sizeof(prefix), "source_%s", t->name);
    NOMEM(op = add_op(pl, prefix, kind, pl->par, false, config, &src.id));
    src.op = op;
    src.par = pl->par;
    json_object_set_new(op, "schema", schema_json(&src));
    pout cur = src;
    /* computed columns: one that is just another column is that column
     * under a second name; the others are computed by a calc */
    uint32_t ncomp = 0, nalias = 0;
    for (uint32_t i = 0; i < t->ncols; i++) {
        if (t->cols[i].computed && t->col_used[i]) {
            if (lp_bare_col(t->computed[i]) >= 0) {
                nalias++;
            } else {
                ncomp++;
            }
        }
    }
    if (ncomp > 0) {
        pout c = {0};
        json_t *proj = json_array();
        NOMEM(proj);
        NOMEM(pout_alloc(pl, &c, nphys + ncomp) == LM_OK ? &c : NULL);
        uint32_t k = 0;
        for (uint32_t i = 0; i < t->ncols; i++) {
            if (!t->col_used[i] || (t->cols[i].computed && lp_bare_col(t->computed[i]) >= 0)) {
                continue;
            }
            json_t *e;
            if (t->cols[i].computed) {
                if ((e = xlate(pl, t->computed[i], &cur, NULL, NULL, NULL)) == NULL) {
                    return LM_ENOMEM;
                }
                if ((rv = phys_type(pl, e, &cur, NULL, NULL, NULL, &c.types[k], &c.nullable[k])) !=
                    LM_OK) {
                    json_decref(e);
                    return rv;
                }
            } else {
                e = json_pack("{s:s}", "col", t->cols[i].name);
                c.types[k] = t->cols[i].type;
                c.nullable[k] = t->cols[i].nullable;
            }
            c.ids[k] = t->col_ids[i];
            c.names[k] = t->cols[i].name;
            json_array_append_new(proj, json_pack("{s:s,s:o}", "name", t->cols[i].name, "expr", e));
            k++;
        }
        snprintf(prefix, sizeof(prefix), "computed_%s", t->name);
        NOMEM(op = add_op(pl, prefix, "calc", pl->par, false, json_pack("{s:o}", "project", proj),
                          &c.id));
        c.op = op;
        c.par = pl->par;
        json_object_set_new(op, "schema", schema_json(&c));
        if ((rv = add_edge(pl, cur.id, c.id, 0, NULL, NULL)) != LM_OK) {
            return rv;
        }
        cur = c;
    }
    if (nalias > 0) {
        pout c;
        NOMEM(pout_alloc(pl, &c, cur.n + nalias) == LM_OK ? &c : NULL);
        c.op = cur.op;
        c.id = cur.id;
        c.par = cur.par;
        c.view = true;
        memcpy(c.ids, cur.ids, cur.n * sizeof(uint32_t));
        memcpy(c.names, cur.names, cur.n * sizeof(char *));
        memcpy(c.types, cur.types, cur.n * sizeof(lm_type));
        memcpy(c.nullable, cur.nullable, cur.n * sizeof(bool));
        c.n = cur.n;
        for (uint32_t i = 0; i < t->ncols; i++) {
            if (t->cols[i].computed && t->col_used[i] && lp_bare_col(t->computed[i]) >= 0) {
                int32_t at = pout_find(&cur, (uint32_t)lp_bare_col(t->computed[i]));
                if (at < 0) {
                    return lm_sql_diag_set(pl->d, t->pos, "internal: computed column lost");
                }
                c.ids[c.n] = t->col_ids[i];
                c.names[c.n] = cur.names[at];
                c.types[c.n] = cur.types[at];
                c.nullable[c.n] = cur.nullable[at];
                c.n++;
            }
        }
        cur = c;
    }
    if (watermark) {
        pout w = cur;
        snprintf(prefix, sizeof(prefix), "watermark_%s", t->name);
        NOMEM(op = add_op(pl, prefix, "watermark", pl->par, false,
                          json_pack("{s:s,s:I}", "column",
                                    cur.names[pout_find(&cur, t->col_ids[t->wm_col])], "delay_ms",
                                    (json_int_t)(t->wm_delay / 1000)),
                          &w.id));
        w.op = op;
        json_object_set_new(op, "schema", schema_json(&w));
        if ((rv = add_edge(pl, cur.id, w.id, 0, NULL, NULL)) != LM_OK) {
            return rv;
        }
        cur = w;
    }
    *out = cur;
    return LM_OK;
}

static int
emit_scan(planner *pl, lp_node *n, pout *out)
{
    lm_sql_table *t = n->table;
    uint32_t ti = (uint32_t)(t - pl->lp->tables);
    int rv;

    if (pl->tables[ti].id == NULL) {
        if ((rv = emit_table(pl, t, &pl->tables[ti])) != LM_OK) {
            return rv;
        }
    }
    const pout *tp = &pl->tables[ti];
    NOMEM(pout_alloc(pl, out, n->ncols) == LM_OK ? out : NULL);
    out->op = tp->op;
    out->id = tp->id;
    out->par = tp->par;
    out->fixed = tp->fixed;
    out->view = true;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n->ncols; i++) {
        int32_t at = pout_find(tp, t->col_ids[n->cols[i].tcol]);
        if (at < 0) {
            continue; /* not needed */
        }
        out->ids[k] = n->cols[i].id;
        out->names[k] = tp->names[at];
        out->types[k] = tp->types[at];
        out->nullable[k] = tp->nullable[at];
        k++;
    }
    out->n = k;
    return LM_OK;
}

/* A calc; with exact (sinks) the output names must be the LP names. */
static int
emit_calc_over(planner *pl, lp_node *n, const pout *in, bool exact, pout *out)
{
    bool pure = n->filter == NULL && !exact;
    int rv;

    for (uint32_t i = 0; pure && i < n->ncols; i++) {
        pure =
            lp_bare_col(n->exprs[i]) >= 0 && pout_find(in, (uint32_t)lp_bare_col(n->exprs[i])) >= 0;
    }
    NOMEM(pout_alloc(pl, out, n->ncols) == LM_OK ? out : NULL);
    if (pure) { /* a selection of columns: no operator */
        out->op = in->op;
        out->id = in->id;
        out->par = in->par;
        out->fixed = in->fixed;
        out->changelog = in->changelog;
        out->view = true;
        bool identity = !in->view && n->ncols == in->n;
        for (uint32_t i = 0; i < n->ncols; i++) {
            int32_t at = pout_find(in, (uint32_t)lp_bare_col(n->exprs[i]));
            out->ids[i] = n->cols[i].id;
            out->names[i] = in->names[at];
            out->types[i] = in->types[at];
            out->nullable[i] = in->nullable[at];
            identity &= at == (int32_t)i;
        }
        out->view = !identity; /* all of in's columns, in order: its schema */
        return LM_OK;
    }
    json_t *proj = json_array(), *config = json_object();
    if (proj == NULL || config == NULL) {
        json_decref(proj);
        json_decref(config);
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < n->ncols; i++) {
        out->ids[i] = n->cols[i].id;
        out->names[i] = n->cols[i].name;
    }
    if (!exact && (rv = uniq_names(pl, out->names, out->n)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < n->ncols; i++) {
        json_t *e = xlate(pl, n->exprs[i], in, NULL, NULL, NULL);
        if (e == NULL || (rv = phys_type(pl, e, in, NULL, NULL, NULL, &out->types[i],
                                         &out->nullable[i])) != LM_OK) {
            json_decref(e);
            json_decref(proj);
            json_decref(config);
            return e == NULL ? LM_ENOMEM : rv;
        }
        json_array_append_new(proj, json_pack("{s:s,s:o}", "name", out->names[i], "expr", e));
    }
    out->changelog = in->changelog;
    if (in->changelog) {
        json_array_append_new(
            proj, json_pack("{s:s,s:{s:s}}", "name", "_retract", "expr", "col", "_retract"));
    }
    json_object_set_new(config, "project", proj);
    if (n->filter != NULL) {
        json_t *f = xlate(pl, n->filter, in, NULL, NULL, NULL);
        if (f == NULL) {
            json_decref(config);
            return LM_ENOMEM;
        }
        json_object_set_new(config, "filter", f);
    }
    json_t *op = add_op(pl, n->filter != NULL ? "filter" : "project", "calc", in->par, in->fixed,
                        config, &out->id);
    NOMEM(op);
    out->op = op;
    out->par = in->par;
    out->fixed = in->fixed;
    json_object_set_new(op, "schema", schema_json(out));
    return add_edge(pl, in->id, out->id, 0, NULL, NULL);
}

static const char *
fn_json(enum lp_fn fn)
{
    static const char *const names[] = {"count", "count", "count_distinct", "sum", "avg",
                                        "min",   "max"};
    return names[fn];
}

static json_t *
names_json(const pout *in, const uint32_t *ids, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < n; i++) {
        int32_t at = pout_find(in, ids[i]);
        json_array_append_new(a, json_string(at >= 0 ? in->names[at] : "?"));
    }
    return a;
}

static json_t *
window_json(const lp_window *w, const pout *in)
{
    switch (w->type) {
    case LP_WIN_TUMBLE:
        return json_pack("{s:s,s:I}", "type", "tumble", "size_ms", (json_int_t)(w->size_us / 1000));
    case LP_WIN_HOP:
        return json_pack("{s:s,s:I,s:I}", "type", "hop", "size_ms", (json_int_t)(w->size_us / 1000),
                         "slide_ms", (json_int_t)(w->slide_us / 1000));
    case LP_WIN_SESSION:
        return json_pack("{s:s,s:I}", "type", "session", "gap_ms", (json_int_t)(w->gap_us / 1000));
    case LP_WIN_GIVEN:
        return json_pack("{s:s,s:s,s:s}", "type", "given", "start",
                         in->names[pout_find(in, w->start_col)], "end",
                         in->names[pout_find(in, w->end_col)]);
    }
    return NULL;
}

/* An aggregate operator over in. Partial: the first phase of two (count
 * stays count, the others as they are); merge: the second (count becomes
 * a sum of counts). */
static int
emit_agg_op(planner *pl, lp_node *n, const pout *in, const lp_window *win, int phase, uint32_t par,
            bool fixed, json_t *keys_edge, pout *out)
{
    json_t *config = json_object(), *aggs = json_array();
    int rv;

    if (config == NULL || aggs == NULL) {
        json_decref(config);
        json_decref(aggs);
        return LM_ENOMEM;
    }
    uint32_t nk = phase == 2 ? 0 : n->nkeys;
    uint32_t nout = nk + n->naggs + (win != NULL ? 2 : 0);
    NOMEM(pout_alloc(pl, out, nout) == LM_OK ? out : NULL);
    uint32_t k = 0;
    for (uint32_t i = 0; i < nk; i++, k++) {
        int32_t at = pout_find(in, n->keys[i]);
        out->ids[k] = n->cols[i].id;
        out->names[k] = in->names[at]; /* keys keep their names */
        out->types[k] = in->types[at];
        out->nullable[k] = in->nullable[at];
    }
    for (uint32_t i = 0; i < n->naggs; i++, k++) {
        const lp_agg *a = &n->aggs[i];
        const lp_col *c = lp_find_col(n, a->out);
        out->ids[k] = a->out;
        out->names[k] = c != NULL ? c->name : "agg";
        out->types[k] =
            a->fn == LP_AVG ? LM_TYPE_FLOAT64
            : (a->fn == LP_COUNT || a->fn == LP_COUNT_STAR || a->fn == LP_COUNT_DISTINCT)
                ? LM_TYPE_INT64
                : in->types[pout_find(in, phase == 2 ? a->out : a->arg)];
        out->nullable[k] = !(phase != 2 && (a->fn == LP_COUNT || a->fn == LP_COUNT_STAR ||
                                            a->fn == LP_COUNT_DISTINCT));
    }
    if (win != NULL) {
        for (int b = 0; b < 2; b++, k++) {
            const lp_col *c = NULL;
            for (uint32_t i = 0; i < n->ncols; i++) {
                if (n->cols[i].role == (b == 0 ? LP_WSTART : LP_WEND) && n->cols[i].win == n->win) {
                    c = &n->cols[i];
                }
            }
            out->ids[k] = c != NULL ? c->id : UINT32_MAX - (uint32_t)b;
            out->names[k] = b == 0 ? "window_start" : "window_end";
            out->types[k] = LM_TYPE_TIMESTAMP;
            out->nullable[k] = false;
        }
    }
    /* names unique, keys first (they cannot change) */
    if ((rv = uniq_names(pl, out->names, out->n)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < n->naggs; i++) {
        const lp_agg *a = &n->aggs[i];
        json_t *ag = json_pack(
            "{s:s,s:s}", "name", out->names[nk + i], "fn",
            phase == 2 && (a->fn == LP_COUNT || a->fn == LP_COUNT_STAR) ? "sum" : fn_json(a->fn));
        NOMEM(ag);
        if (phase == 2) {
            json_object_set_new(ag, "arg", json_string(in->names[pout_find(in, a->out)]));
        } else if (a->fn != LP_COUNT_STAR) {
            json_object_set_new(ag, "arg", json_string(in->names[pout_find(in, a->arg)]));
        }
        json_array_append_new(aggs, ag);
    }
    json_object_set_new(config, "keys", names_json(in, n->keys, nk));
    json_object_set_new(config, "aggregates", aggs);
    if (win != NULL) {
        if (win->type != LP_WIN_GIVEN) {
            json_object_set_new(config, "time",
                                json_string(in->names[pout_find(in, win->time_col)]));
        }
        json_object_set_new(config, "window", window_json(win, in));
        json_object_set_new(config, "window_start", json_string(out->names[nout - 2]));
        json_object_set_new(config, "window_end", json_string(out->names[nout - 1]));
    } else if (pl->lp->state_ttl_ms > 0) {
        for (uint32_t i = 0; i < in->n; i++) {
            const lp_col *c = lp_find_col(n->in[0], in->ids[i]);
            if (c != NULL && c->role == LP_ROWTIME) {
                json_object_set_new(config, "ttl_ms", json_integer(pl->lp->state_ttl_ms));
                json_object_set_new(config, "time", json_string(in->names[i]));
                break;
            }
        }
    }
    out->changelog = win == NULL;
    json_t *op =
        add_op(pl, win != NULL ? "window" : "aggregate",
               win != NULL ? "window_aggregate" : "aggregate", par, fixed, config, &out->id);
    NOMEM(op);
    out->op = op;
    out->fixed = fixed;
    out->par = par;
    json_object_set_new(op, "schema", schema_json(out));
    return link_ops(pl, in, out->id, 0, par, fixed, keys_edge);
}

static bool
decomposable(const lp_node *n)
{
    for (uint32_t i = 0; i < n->naggs; i++) {
        if (n->aggs[i].fn == LP_AVG || n->aggs[i].fn == LP_COUNT_DISTINCT) {
            return false;
        }
    }
    return true;
}

static int
emit_agg(planner *pl, lp_node *n, const pout *in, pout *out)
{
    if (n->kind == LP_AGG) {
        for (uint32_t i = 0; in->changelog && i < n->naggs; i++) {
            if (n->aggs[i].fn == LP_MIN || n->aggs[i].fn == LP_MAX) {
                return lm_sql_diag_set(pl->d, n->pos,
                                       "MIN and MAX over an updated input (the result of an "
                                       "updating aggregate or outer join) are not supported");
            }
        }
        if (n->nkeys > 0) {
            return emit_agg_op(pl, n, in, NULL, 0, pl->par, false,
                               names_json(in, n->keys, n->nkeys), out);
        }
        return emit_agg_op(pl, n, in, NULL, 0, 1, true, NULL, out);
    }
    const lp_window *w = n->win;
    if (n->nkeys > 0) {
        return emit_agg_op(pl, n, in, w, 0, pl->par, false, names_json(in, n->keys, n->nkeys), out);
    }
    if (w->type == LP_WIN_GIVEN) {
        uint32_t b[2] = {w->start_col, w->end_col};
        return emit_agg_op(pl, n, in, w, 0, pl->par, false, names_json(in, b, 2), out);
    }
    if (w->type == LP_WIN_SESSION || !decomposable(n)) {
        return emit_agg_op(pl, n, in, w, 0, 1, true, NULL, out);
    }
    /* two phases: partial aggregates where the rows are, merged per window */
    pout part;
    int rv;
    if ((rv = emit_agg_op(pl, n, in, w, 1, in->par, in->fixed, NULL, &part)) != LM_OK) {
        return rv;
    }
    lp_window given = *w;
    given.type = LP_WIN_GIVEN;
    given.start_col = part.ids[part.n - 2];
    given.end_col = part.ids[part.n - 1];
    uint32_t b[2] = {given.start_col, given.end_col};
    return emit_agg_op(pl, n, &part, &given, 2, pl->par, false, names_json(&part, b, 2), out);
}

static int
emit_join(planner *pl, lp_node *n, const pout *lin, const pout *rin, pout *out)
{
    const pout *L = n->swap ? rin : lin, *R = n->swap ? lin : rin;
    json_t *config = json_object(), *proj = json_array();
    int rv;

    if (config == NULL || proj == NULL) {
        json_decref(config);
        json_decref(proj);
        return LM_ENOMEM;
    }
    NOMEM(pout_alloc(pl, out, n->ncols) == LM_OK ? out : NULL);
    for (uint32_t i = 0; i < n->ncols; i++) {
        out->ids[i] = n->cols[i].id;
        out->names[i] = n->cols[i].name;
    }
    if ((rv = uniq_names(pl, out->names, out->n)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < n->ncols; i++) {
        json_t *e = xlate(pl, lp_col_ref(pl->lp, n->cols[i].id), L, "left.", R, "right.");
        NOMEM(e);
        if ((rv = phys_type(pl, e, L, "left.", R, "right.", &out->types[i], &out->nullable[i])) !=
            LM_OK) {
            json_decref(e);
            return rv;
        }
        if (n->left_outer && pout_find(L, n->cols[i].id) < 0) {
            out->nullable[i] = true;
        }
        json_array_append_new(proj, json_pack("{s:s,s:o}", "name", out->names[i], "expr", e));
    }
    json_object_set_new(config, "left_keys", names_json(L, n->lkeys, n->njkeys));
    json_object_set_new(config, "right_keys", names_json(R, n->rkeys, n->njkeys));
    if (n->residual != NULL) {
        json_t *c = xlate(pl, n->residual, L, "left.", R, "right.");
        NOMEM(c);
        json_object_set_new(config, "condition", c);
    }
    json_object_set_new(config, "project", proj);
    const char *kind = "join";
    if (n->jkind == LP_J_INTERVAL) {
        kind = "interval_join";
        json_object_set_new(config, "left_time", json_string(L->names[pout_find(L, n->ltime)]));
        json_object_set_new(config, "right_time", json_string(R->names[pout_find(R, n->rtime)]));
        json_object_set_new(config, "lower_ms", json_integer(n->lower_us / 1000));
        if (n->upper_col >= 0) {
            json_object_set_new(config, "upper_column",
                                json_string(L->names[pout_find(L, (uint32_t)n->upper_col)]));
        } else {
            json_object_set_new(config, "upper_ms", json_integer(n->upper_us / 1000));
        }
    } else if (n->jkind == LP_J_WINDOW) {
        kind = "window_join";
        json_object_set_new(config, "left_window_end",
                            json_string(L->names[pout_find(L, n->lwend)]));
        json_object_set_new(config, "right_window_end",
                            json_string(R->names[pout_find(R, n->rwend)]));
    } else {
        if (n->left_outer) {
            json_object_set_new(config, "type", json_string("left"));
        }
        /* SET state.ttl: rows leave once the watermark passes their time
         * plus the TTL (each side needs an event-time column) */
        const char *tl = NULL, *tr = NULL;
        for (int s = 0; s < 2 && pl->lp->state_ttl_ms > 0; s++) {
            const pout *side = s == 0 ? L : R;
            for (uint32_t i = 0; i < side->n; i++) {
                const lp_col *c = lp_find_col(n->in[n->swap ? 1 - s : s], side->ids[i]);
                if (c != NULL && c->role == LP_ROWTIME && side->types[i] == LM_TYPE_TIMESTAMP) {
                    *(s == 0 ? &tl : &tr) = side->names[i];
                }
            }
        }
        if (tl != NULL && tr != NULL) {
            json_object_set_new(config, "ttl_ms", json_integer(pl->lp->state_ttl_ms));
            json_object_set_new(config, "left_time", json_string(tl));
            json_object_set_new(config, "right_time", json_string(tr));
        }
    }
    out->changelog = n->changelog;
    json_t *op = add_op(pl, "join", kind, pl->par, false, config, &out->id);
    NOMEM(op);
    out->op = op;
    out->par = pl->par;
    json_object_set_new(op, "schema", schema_json(out));
    if ((rv = link_ops(pl, L, out->id, 0, pl->par, false, names_json(L, n->lkeys, n->njkeys))) !=
        LM_OK) {
        return rv;
    }
    return link_ops(pl, R, out->id, 1, pl->par, false, names_json(R, n->rkeys, n->njkeys));
}

static int
emit_sink(planner *pl, lp_node *n, pout *in)
{
    const lm_sql_table *t = n->table;
    const char *kind = "stdout", *name = "stdout";
    json_t *config = json_object();
    const char *v;

    NOMEM(config);
    if (t != NULL) {
        name = t->name;
        if (strcasecmp(t->connector, "blackhole") == 0) {
            kind = "blackhole";
            if (option(t, "delay_us", &v)) {
                json_object_set_new(config, "delay_us", json_integer(strtoll(v, NULL, 10)));
            }
        } else if (strcasecmp(t->connector, "filesystem") == 0) {
            kind = "file_sink";
            const char *keys[] = {"path", "format"};
            for (int i = 0; i < 2; i++) {
                if (option(t, keys[i], &v)) {
                    json_object_set_new(config, keys[i], json_string(v));
                }
            }
            const char *nums[] = {"rolling_bytes", "rolling_ms"};
            for (int i = 0; i < 2; i++) {
                if (option(t, nums[i], &v)) {
                    json_object_set_new(config, nums[i], json_integer(strtoll(v, NULL, 10)));
                }
            }
        }
    }
    char prefix[300];
    const char *id;
    snprintf(prefix, sizeof(prefix), "sink_%s", name);
    json_t *op = add_op(pl, prefix, kind, in->par, in->fixed, config, &id);
    NOMEM(op);
    if (t != NULL) { /* a table is written by one sink: name it after the table alone */
        json_object_set_new(op, "id", json_string(prefix));
        id = json_string_value(json_object_get(op, "id"));
    }
    return add_edge(pl, in->id, id, 0, NULL, NULL);
}

/* UNION ALL: each input renamed and widened to the union's schema by a
 * calc, then one union operator. */
static int
emit_union(planner *pl, lp_node *n, pout *out)
{
    pout ins[LM_OP_MAX_PORTS];
    int rv;

    if (n->nin > LM_OP_MAX_PORTS) {
        return lm_sql_diag_set(pl->d, n->pos, "UNION ALL of more than %d queries is not supported",
                               LM_OP_MAX_PORTS);
    }
    for (uint32_t i = 0; i < n->nin; i++) {
        if ((rv = emit(pl, n->in[i], &ins[i])) != LM_OK) {
            return rv;
        }
    }
    NOMEM(pout_alloc(pl, out, n->ncols) == LM_OK ? out : NULL);
    for (uint32_t c = 0; c < n->ncols; c++) {
        out->ids[c] = n->cols[c].id;
        out->names[c] = n->cols[c].name;
        out->types[c] = n->cols[c].type;
        out->nullable[c] = false;
        for (uint32_t i = 0; i < n->nin; i++) {
            int32_t at = pout_find(&ins[i], n->in[i]->cols[c].id);
            out->nullable[c] |= at < 0 || ins[i].nullable[at];
        }
    }
    if ((rv = uniq_names(pl, out->names, out->n)) != LM_OK) {
        return rv;
    }
    out->changelog = n->changelog;
    out->par = pl->par;
    json_t *op = add_op(pl, "union", "union", pl->par, false, NULL, &out->id);
    NOMEM(op);
    out->op = op;
    json_object_set_new(op, "schema", schema_json(out));
    for (uint32_t i = 0; i < n->nin; i++) {
        json_t *proj = json_array();
        pout branch = *out;
        NOMEM(proj);
        for (uint32_t c = 0; c < n->ncols; c++) {
            json_t *e =
                xlate(pl, lp_col_ref(pl->lp, n->in[i]->cols[c].id), &ins[i], NULL, NULL, NULL);
            NOMEM(e);
            json_array_append_new(proj, json_pack("{s:s,s:o}", "name", out->names[c], "expr", e));
        }
        if (out->changelog) {
            json_array_append_new(
                proj,
                ins[i].changelog
                    ? json_pack("{s:s,s:{s:s}}", "name", "_retract", "expr", "col", "_retract")
                    : json_pack("{s:s,s:{s:b}}", "name", "_retract", "expr", "lit", 0));
        }
        json_t *c = add_op(pl, "to_union", "calc", ins[i].par, ins[i].fixed,
                           json_pack("{s:o}", "project", proj), &branch.id);
        NOMEM(c);
        json_object_set_new(c, "schema", schema_json(out));
        if ((rv = add_edge(pl, ins[i].id, branch.id, 0, NULL, NULL)) != LM_OK) {
            return rv;
        }
        branch.par = ins[i].par;
        branch.fixed = ins[i].fixed;
        if ((rv = link_ops(pl, &branch, out->id, i, pl->par, false, NULL)) != LM_OK) {
            return rv;
        }
    }
    return LM_OK;
}

static int
emit(planner *pl, lp_node *n, pout *out)
{
    pout in[2];
    int rv;

    if (n->kind == LP_UNION) {
        return emit_union(pl, n, out);
    }
    for (uint32_t i = 0; i < n->nin && i < 2; i++) {
        if ((rv = emit(pl, n->in[i], &in[i])) != LM_OK) {
            return rv;
        }
    }
    switch (n->kind) {
    case LP_SCAN: return emit_scan(pl, n, out);
    case LP_CALC: return emit_calc_over(pl, n, &in[0], false, out);
    case LP_WAGG:
    case LP_AGG: return emit_agg(pl, n, &in[0], out);
    case LP_JOIN: return emit_join(pl, n, &in[0], &in[1], out);
    case LP_SINK: {
        /* the sink's columns are named as its table's (or the query's);
         * a blackhole reads no column, so it takes the rows as they are */
        lp_node *q = n->in[0];
        bool blackhole = n->table != NULL && strcasecmp(n->table->connector, "blackhole") == 0;
        bool exact = blackhole || (!in[0].view && in[0].n == q->ncols);
        for (uint32_t i = 0; exact && !blackhole && i < q->ncols; i++) {
            exact = strcmp(in[0].names[i], q->cols[i].name) == 0;
        }
        if (!exact) {
            /* a projection that names them */
            lp_node named = *q;
            named.kind = LP_CALC;
            named.filter = NULL;
            named.in = &q;
            named.nin = 1;
            named.exprs = al(pl->lp, q->ncols * sizeof(json_t *));
            NOMEM(named.exprs);
            for (uint32_t i = 0; i < q->ncols; i++) {
                NOMEM(named.exprs[i] = lp_col_ref(pl->lp, q->cols[i].id));
            }
            pout o;
            if ((rv = emit_calc_over(pl, &named, &in[0], true, &o)) != LM_OK) {
                return rv;
            }
            in[0] = o;
        }
        return emit_sink(pl, n, &in[0]);
    }
    case LP_UNION: break;
    }
    return LM_OK;
}

/* --- shared work ------------------------------------------------------- */

/* Whether operator a does what b does: the same kind, configuration,
 * schema and parallelism, fed the same way from the same operators. */
static bool
same_op(const json_t *ops, const json_t *edges, size_t a, size_t b)
{
    const json_t *x = json_array_get(ops, a), *y = json_array_get(ops, b);
    const char *xid = json_string_value(json_object_get(x, "id"));
    const char *yid = json_string_value(json_object_get(y, "id"));
    static const char *const keys[] = {"kind", "config", "schema", "parallelism",
                                       "fixed_parallelism"};
    size_t nx = 0, ny = 0;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const json_t *u = json_object_get(x, keys[i]), *v = json_object_get(y, keys[i]);
        if ((u == NULL) != (v == NULL) || (u != NULL && !json_equal(u, v))) {
            return false;
        }
    }
    for (size_t i = 0; i < json_array_size(edges); i++) {
        const json_t *e = json_array_get(edges, i);
        if (strcmp(json_string_value(json_object_get(e, "to")), xid) != 0) {
            continue;
        }
        nx++;
        bool found = false;
        for (size_t k = 0; k < json_array_size(edges) && !found; k++) {
            const json_t *f = json_array_get(edges, k);
            if (strcmp(json_string_value(json_object_get(f, "to")), yid) != 0) {
                continue;
            }
            json_t *fe = json_deep_copy(f);
            json_object_set_new(fe, "to", json_string(xid));
            found = json_equal(e, fe);
            json_decref(fe);
        }
        if (!found) {
            return false;
        }
    }
    for (size_t i = 0; i < json_array_size(edges); i++) {
        ny += strcmp(json_string_value(json_object_get(json_array_get(edges, i), "to")), yid) == 0;
    }
    return nx == ny && nx > 0;
}

/* Operators that compute the same thing twice (a view or subquery used
 * twice, as q5 counts bids per window twice) are merged into one that
 * feeds every consumer. Sinks stay apart. */
static void
merge_duplicates(json_t *ops, json_t *edges)
{
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t b = 0; b < json_array_size(ops) && !changed; b++) {
            const json_t *ob = json_array_get(ops, b);
            const char *bid = json_string_value(json_object_get(ob, "id"));
            if (strncmp(bid, "sink_", 5) == 0) {
                continue;
            }
            for (size_t a = 0; a < b && !changed; a++) {
                if (!same_op(ops, edges, a, b)) {
                    continue;
                }
                char *keep =
                    strdup(json_string_value(json_object_get(json_array_get(ops, a), "id")));
                char *drop = strdup(bid);
                if (keep == NULL || drop == NULL) {
                    free(keep);
                    free(drop);
                    return; /* out of memory: leave the plan as it is, it is correct */
                }
                for (size_t i = json_array_size(edges); i-- > 0;) {
                    json_t *e = json_array_get(edges, i);
                    if (strcmp(json_string_value(json_object_get(e, "to")), drop) == 0) {
                        json_array_remove(edges, i);
                    } else if (strcmp(json_string_value(json_object_get(e, "from")), drop) == 0) {
                        json_object_set_new(e, "from", json_string(keep));
                    }
                }
                json_array_remove(ops, b);
                free(keep);
                free(drop);
                changed = true;
            }
        }
    }
}

/* --- the whole ---------------------------------------------------------- */

int
lm_sql_plan(lm_sql_lp *lp, uint32_t parallelism, const char *name, json_t **out, lm_sql_diag *d)
{
    planner pl = {lp, d, json_array(), json_array(), parallelism, 0, NULL};
    int rv = LM_OK;
    bool watermarks = false;

    if (pl.ops == NULL || pl.edges == NULL) {
        json_decref(pl.ops);
        json_decref(pl.edges);
        return LM_ENOMEM;
    }
    if ((pl.tables = al(lp, lp->ntables * sizeof(pout))) == NULL) {
        rv = LM_ENOMEM;
    }
    for (uint32_t i = 0; i < lp->ntables; i++) {
        lp->tables[i].col_used = al(lp, lp->tables[i].ncols * sizeof(bool));
        lp->tables[i].kinds = 0;
        if (lp->tables[i].col_used == NULL) {
            rv = LM_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < lp->nsinks && rv == LM_OK; i++) {
        if ((rv = push_down(lp, lp->sinks[i])) == LM_OK && (rv = fuse(lp, lp->sinks[i])) == LM_OK) {
            find_kinds(lp, lp->sinks[i]);
        }
    }
    for (uint32_t i = 0; i < lp->nsinks && rv == LM_OK; i++) {
        if ((rv = fold_kinds(lp, lp->sinks[i])) == LM_OK) {
            rv = plan_joins(lp, lp->sinks[i], d);
        }
    }
    for (uint32_t i = 0; i < lp->nsinks && rv == LM_OK; i++) {
        lp->event_time |= uses_event_time(lp, lp->sinks[i]);
    }
    for (uint32_t i = 0; i < lp->nsinks && rv == LM_OK; i++) {
        idset none = {NULL, 0};
        rv = prune(lp, lp->sinks[i], &none);
    }
    for (uint32_t i = 0; i < lp->nsinks && rv == LM_OK; i++) {
        pout o;
        rv = emit(&pl, lp->sinks[i], &o);
    }
    if (rv != LM_OK) {
        json_decref(pl.ops);
        json_decref(pl.edges);
        return rv;
    }
    for (uint32_t i = 0; i < lp->ntables; i++) {
        watermarks |= lp->event_time && lp->tables[i].wm_col >= 0 && pl.tables[i].id != NULL;
    }
    merge_duplicates(pl.ops, pl.edges);
    json_t *plan = json_pack("{s:s,s:I,s:o,s:o}", "name", name, "parallelism",
                             (json_int_t)parallelism, "operators", pl.ops, "edges", pl.edges);
    NOMEM(plan);
    if (watermarks) {
        json_object_set_new(plan, "watermark_alignment_ms", json_integer(1000));
    }
    *out = plan;
    return LM_OK;
}

/* --- printing ---------------------------------------------------------- */

static void
print_cols(const lp_node *n, FILE *out)
{
    fputs(" [", out);
    for (uint32_t i = 0; i < n->ncols; i++) {
        fprintf(out, "%s%s %s%s", i ? ", " : "", n->cols[i].name, lp_type_sql(n->cols[i].type),
                n->cols[i].nullable ? "" : " NOT NULL");
    }
    fputs("]", out);
}

/* The name of column id among n's inputs, for printing. */
static const char *
input_name(const lp_node *n, uint32_t id, char *buf, size_t len)
{
    for (uint32_t k = 0; k < n->nin; k++) {
        const lp_col *c = lp_find_col(n->in[k], id);
        if (c != NULL) {
            if (c->qual != NULL) {
                snprintf(buf, len, "%s.%s", c->qual, c->name);
            } else {
                snprintf(buf, len, "%s", c->name);
            }
            return buf;
        }
    }
    snprintf(buf, len, "#%" PRIu32, id);
    return buf;
}

/* Writes an expression as SQL-like text, its columns by name. */
static void
print_expr(const json_t *e, const lp_node *n, FILE *out, int depth)
{
    static const char *const infix[] = {"+",  "-", "*",  "/",   "%",  "=",  "<>", "<",
                                        "<=", ">", ">=", "and", "or", "||", NULL};
    const char *call = json_string_value(json_object_get(e, "call"));
    const json_t *args = json_object_get(e, "args");
    char buf[300];

    if (depth > 50) {
        fputs("...", out);
        return;
    }
    if (lp_bare_col(e) >= 0) {
        fputs(input_name(n, (uint32_t)lp_bare_col(e), buf, sizeof(buf)), out);
        return;
    }
    if (json_object_get(e, "lit") != NULL) {
        const json_t *l = json_object_get(e, "lit");
        const char *type = json_string_value(json_object_get(e, "type"));
        char *t = json_dumps(l, JSON_ENCODE_ANY);
        if (json_is_string(l)) {
            fprintf(out, "'%s'", json_string_value(l));
        } else if (type != NULL && strcmp(type, "interval") == 0) {
            fprintf(out, "INTERVAL %s us", t ? t : "?");
        } else {
            fputs(t ? t : "?", out);
        }
        free(t);
        return;
    }
    if (json_object_get(e, "cast") != NULL) {
        fputs("CAST(", out);
        print_expr(json_object_get(e, "cast"), n, out, depth + 1);
        fprintf(out, " AS %s)", json_string_value(json_object_get(e, "to")));
        return;
    }
    if (json_object_get(e, "case") != NULL) {
        const json_t *cs = json_object_get(e, "case");
        fputs("CASE", out);
        for (size_t i = 0; i < json_array_size(cs); i++) {
            fputs(" WHEN ", out);
            print_expr(json_object_get(json_array_get(cs, i), "when"), n, out, depth + 1);
            fputs(" THEN ", out);
            print_expr(json_object_get(json_array_get(cs, i), "then"), n, out, depth + 1);
        }
        if (json_object_get(e, "else") != NULL) {
            fputs(" ELSE ", out);
            print_expr(json_object_get(e, "else"), n, out, depth + 1);
        }
        fputs(" END", out);
        return;
    }
    if (call == NULL) {
        fputs("?", out);
        return;
    }
    for (int i = 0; infix[i] != NULL && json_array_size(args) >= 2; i++) {
        if (strcmp(call, infix[i]) == 0) {
            fputc('(', out);
            for (size_t k = 0; k < json_array_size(args); k++) {
                if (k > 0) {
                    fprintf(out, " %s ", call);
                }
                print_expr(json_array_get(args, k), n, out, depth + 1);
            }
            fputc(')', out);
            return;
        }
    }
    fprintf(out, "%s(", call);
    for (size_t k = 0; k < json_array_size(args); k++) {
        if (k > 0) {
            fputs(", ", out);
        }
        print_expr(json_array_get(args, k), n, out, depth + 1);
    }
    fputc(')', out);
}

static void
print_node(const lm_sql_lp *lp, const lp_node *n, int depth, FILE *out)
{
    static const char *const win_names[] = {"TUMBLE", "HOP", "SESSION", "GIVEN"};
    fprintf(out, "%*s", depth * 2, "");
    switch (n->kind) {
    case LP_SCAN:
        fprintf(out, "Scan %s (connector %s", n->table->name, n->table->connector);
        if (n->kinds != 0 && (n->kinds & 7) != 7) {
            fprintf(out, ", kinds");
            for (int k = 0; k < 3; k++) {
                if (n->kinds & (1u << k)) {
                    fprintf(out, " %s", KIND_NAMES[k]);
                }
            }
        }
        if (n->table->wm_col >= 0) {
            fprintf(out, ", watermark %s - %" PRId64 " ms", n->table->cols[n->table->wm_col].name,
                    n->table->wm_delay / 1000);
        }
        fputs(")", out);
        break;
    case LP_CALC:
        fputs("Calc", out);
        if (n->filter != NULL) {
            fputs(" filter ", out);
            print_expr(n->filter, n, out, 0);
        }
        break;
    case LP_WAGG:
    case LP_AGG:
        fprintf(out, "%s", n->kind == LP_WAGG ? "WindowAggregate" : "UpdatingAggregate");
        if (n->win != NULL) {
            fprintf(out, " %s", win_names[n->win->type]);
            if (n->win->type == LP_WIN_TUMBLE || n->win->type == LP_WIN_HOP) {
                fprintf(out, " size %" PRId64 " ms", n->win->size_us / 1000);
            }
            if (n->win->type == LP_WIN_HOP) {
                fprintf(out, " slide %" PRId64 " ms", n->win->slide_us / 1000);
            }
            if (n->win->type == LP_WIN_SESSION) {
                fprintf(out, " gap %" PRId64 " ms", n->win->gap_us / 1000);
            }
        }
        fprintf(out, " keys %" PRIu32 " aggregates %" PRIu32, n->nkeys, n->naggs);
        break;
    case LP_JOIN:
        fprintf(out, "%s%s keys %" PRIu32,
                n->jkind == LP_J_WINDOW     ? "WindowJoin"
                : n->jkind == LP_J_INTERVAL ? "IntervalJoin"
                                            : "Join",
                n->left_outer ? " LEFT" : "", n->njkeys);
        if (n->residual != NULL) {
            fputs(" condition ", out);
            print_expr(n->residual, n, out, 0);
        }
        for (uint32_t i = 0; i < n->njkeys; i++) {
            char a[300], b2[300];
            fprintf(out, "%s%s = %s", i ? ", " : " on ", input_name(n, n->lkeys[i], a, sizeof(a)),
                    input_name(n, n->rkeys[i], b2, sizeof(b2)));
        }
        break;
    case LP_UNION: fputs("UnionAll", out); break;
    case LP_SINK:
        fprintf(out, "Sink %s", n->table != NULL ? n->table->name : "(standard output)");
        break;
    }
    if (n->kind != LP_SINK) {
        print_cols(n, out);
    }
    if (n->changelog) {
        fputs(" (updating)", out);
    }
    fputc('\n', out);
    for (uint32_t i = 0; i < n->nin; i++) {
        print_node(lp, n->in[i], depth + 1, out);
    }
}

void
lm_sql_lp_print(const lm_sql_lp *lp, FILE *out)
{
    for (uint32_t i = 0; i < lp->nsinks; i++) {
        print_node(lp, lp->sinks[i], 1, out);
    }
}
