/*
 * lm_expr.c: compiling JSON expressions into typed trees.
 *
 * Compiling walks the JSON once, bottom up: it binds column names to
 * indices, checks arity and types, inserts the implicit int64 -> float64
 * casts, precompiles constant LIKE patterns and IN lists, rewrites
 * mod(x, c) = 0 and <> 0 into a divisibility test (a multiply, not a
 * division, per row), and folds every subtree whose leaves are all
 * literals by evaluating it once (unless that evaluation counts an error,
 * so that runtime error counts do not depend on folding). Errors name the
 * path in the JSON ("args[1].args[0]", "case[2].when", "else", "cast") and
 * suggest the nearest column or function name. Finally every node gets a
 * scratch slot number, which is how an evaluation context finds its
 * buffers. Evaluation is in lm_expr_eval.c.
 */
#include "lm_expr_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 256

/* --- types ----------------------------------------------------------------- */

static const struct {
    const char *name;
    int type;
} type_names[] = {
    {"bool", LM_TYPE_BOOL},           {"int64", LM_TYPE_INT64}, {"float64", LM_TYPE_FLOAT64},
    {"timestamp", LM_TYPE_TIMESTAMP}, {"utf8", LM_TYPE_UTF8},   {"binary", LM_TYPE_BINARY},
    {"interval", LM_TYPE_INTERVAL},
};

const char *
lm_expr_tname(int type)
{
    return type == LM_TYPE_INTERVAL ? "interval" : lm_type_name((lm_type)type);
}

int
lm_expr_phys(int type)
{
    switch (type) {
    case LM_TYPE_BOOL: return P_BOOL;
    case LM_TYPE_FLOAT64: return P_F64;
    case LM_TYPE_UTF8:
    case LM_TYPE_BINARY: return P_STR;
    default: return P_I64;
    }
}

static int
parse_type(const char *name)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcmp(name, type_names[i].name) == 0) {
            return type_names[i].type;
        }
    }
    return -1;
}

static bool
is_num(int t)
{
    return t == LM_TYPE_INT64 || t == LM_TYPE_FLOAT64;
}

/* --- functions ---------------------------------------------------------------- */

static const struct fn {
    const char *name;
    uint8_t op;
    int8_t min, max; /* arity; max -1: no limit */
} fns[] = {
    {"+", OP_ADD, 2, 2},
    {"-", OP_SUB, 1, 2},
    {"*", OP_MUL, 2, 2},
    {"/", OP_DIV, 2, 2},
    {"%", OP_MOD, 2, 2},
    {"mod", OP_MOD, 2, 2},
    {"neg", OP_NEG, 1, 1},
    {"abs", OP_ABS, 1, 1},
    {"=", OP_EQ, 2, 2},
    {"<>", OP_NE, 2, 2},
    {"!=", OP_NE, 2, 2},
    {"<", OP_LT, 2, 2},
    {"<=", OP_LE, 2, 2},
    {">", OP_GT, 2, 2},
    {">=", OP_GE, 2, 2},
    {"and", OP_AND, 2, -1},
    {"or", OP_OR, 2, -1},
    {"not", OP_NOT, 1, 1},
    {"is_null", OP_ISNULL, 1, 1},
    {"is_not_null", OP_ISNOTNULL, 1, 1},
    {"between", OP_BETWEEN, 3, 3},
    {"not_between", OP_NOTBETWEEN, 3, 3},
    {"in", OP_IN, 2, -1},
    {"not_in", OP_NOTIN, 2, -1},
    {"like", OP_LIKE, 2, 3},
    {"not_like", OP_NOTLIKE, 2, 3},
    {"lower", OP_LOWER, 1, 1},
    {"upper", OP_UPPER, 1, 1},
    {"substr", OP_SUBSTR, 2, 3},
    {"substring", OP_SUBSTR, 2, 3},
    {"concat", OP_CONCAT, 1, -1},
    {"||", OP_CONCAT, 2, 2},
    {"length", OP_LENGTH, 1, 1},
    {"char_length", OP_LENGTH, 1, 1},
    {"trim", OP_TRIM, 1, 1},
    {"ltrim", OP_LTRIM, 1, 1},
    {"rtrim", OP_RTRIM, 1, 1},
    {"coalesce", OP_COALESCE, 1, -1},
};
#define NFNS (sizeof(fns) / sizeof(fns[0]))

/* --- compile state and errors -------------------------------------------------- */

typedef struct cst {
    const lm_schema *in;
    lm_error *err;
    char path[1024]; /* where in the JSON we are: "args[1].case[0].when" */
    size_t plen;
    int depth;
} cst;

static int cfail(cst *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
cfail(cst *s, const char *fmt, ...)
{
    char msg[LM_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->plen > 200) { /* a deep path: keep its two ends */
        return lm_error_set(s->err, LM_EINVAL, "%.60s...%s: %s", s->path, s->path + s->plen - 120,
                            msg);
    }
    if (s->plen > 0) {
        return lm_error_set(s->err, LM_EINVAL, "%s: %s", s->path, msg);
    }
    return lm_error_set(s->err, LM_EINVAL, "%s", msg);
}

static int
coom(cst *s)
{
    return lm_error_set(s->err, LM_ENOMEM, "out of memory compiling an expression");
}

/* Appends a segment to the path; returns the length to restore. */
static size_t push(cst *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t
push(cst *s, const char *fmt, ...)
{
    size_t save = s->plen, room = sizeof(s->path) - s->plen;
    va_list ap;
    int w = 0;

    if (s->plen > 0 && room > 1) {
        s->path[s->plen] = '.';
        w = 1;
    }
    va_start(ap, fmt);
    w += vsnprintf(s->path + s->plen + w, room - (size_t)w, fmt, ap);
    va_end(ap);
    s->plen += (size_t)w < room ? (size_t)w : room - 1;
    return save;
}

static void
pop(cst *s, size_t save)
{
    s->plen = save;
    s->path[save] = '\0';
}

/* Levenshtein distance, case-insensitive; large when either is long. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];

    if (la > 64 || lb > 64) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) && a[i - 1] != '\0' ? 0 : 1;
            if ((unsigned char)a[i - 1] < 0x40 || (unsigned char)b[j - 1] < 0x40) {
                cost = a[i - 1] == b[j - 1] ? 0 : 1; /* no folding for digits, punctuation */
            }
            size_t best = diag + cost;
            if (row[j] + 1 < best) {
                best = row[j] + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Whether d is close enough for a name of length len to suggest. */
static bool
close_enough(size_t d, size_t len)
{
    return d <= (len <= 4 ? 1 : len <= 8 ? 2 : 3);
}

/* The schema field nearest to name, or NULL. A field whose last dotted
 * part is name ("bid.price" for "price") counts as nearest. */
static const char *
suggest_column(const lm_schema *in, const char *name)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;

    for (uint32_t i = 0; i < in->nfields; i++) {
        const char *f = in->fields[i].name, *dot = strrchr(f, '.');
        size_t d = dot != NULL && strcmp(dot + 1, name) == 0 ? 0 : edit_distance(name, f);
        if (d < bestd) {
            bestd = d;
            best = f;
        }
    }
    return best != NULL && close_enough(bestd, strlen(name)) ? best : NULL;
}

static const char *
suggest_function(const char *name)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;

    if (strlen(name) < 3) {
        return NULL;
    }
    for (size_t i = 0; i < NFNS; i++) {
        size_t d = edit_distance(name, fns[i].name);
        if (d < bestd) {
            bestd = d;
            best = fns[i].name;
        }
    }
    return best != NULL && bestd <= (strlen(name) <= 5 ? 1 : 2) ? best : NULL;
}

/* --- nodes ------------------------------------------------------------------------ */

static void
inset_free(lm_inset *s)
{
    if (s != NULL) {
        free(s->i);
        free(s->f);
        free(s->s);
        free(s->bytes);
        free(s);
    }
}

void
lm_expr_free(lm_expr *e)
{
    if (e == NULL) {
        return;
    }
    for (uint32_t i = 0; i < e->nargs; i++) {
        lm_expr_free(e->args[i]);
    }
    free(e->args);
    free(e->litbuf);
    lm_like_free(e->like);
    inset_free(e->inset);
    free(e);
}

static lm_expr *
node_new(int kind, int type)
{
    lm_expr *e = calloc(1, sizeof(*e));

    if (e != NULL) {
        e->kind = (uint8_t)kind;
        e->type = type;
        e->phys = (uint8_t)lm_expr_phys(type);
    }
    return e;
}

/* A literal of type with value v (string bytes are copied). */
static lm_expr *
lit_new(int type, const lm_scalar *v)
{
    lm_expr *e = node_new(K_LIT, type);

    if (e == NULL) {
        return NULL;
    }
    e->lit = *v;
    e->nullable = v->null;
    if (e->phys == P_STR) {
        uint32_t n = v->null ? 0 : v->s.n;
        if ((e->litbuf = malloc(n + 1)) == NULL) {
            free(e);
            return NULL;
        }
        if (n > 0) {
            memcpy(e->litbuf, v->s.p, n);
        }
        e->litbuf[n] = '\0';
        e->lit.s.p = e->litbuf;
        e->lit.s.n = n;
    }
    return e;
}

static bool
is_lit(const lm_expr *e)
{
    return e->kind == K_LIT;
}

/* Numbers the slots of the tree under e from *next. */
static void
number(lm_expr *e, uint32_t *next)
{
    uint32_t first = *next;

    e->slot = (*next)++;
    for (uint32_t i = 0; i < e->nargs; i++) {
        number(e->args[i], next);
    }
    e->nslots = *next - first;
}

/* Replaces *pe by a literal when its children are all literals and one
 * evaluation counts no error. */
static int
fold(cst *s, lm_expr **pe)
{
    lm_expr *e = *pe, *lit;
    lm_expr_ctx *ctx = NULL;
    lm_scalar sc;
    lm_vec v;
    uint32_t next = 0;
    int rv;

    if (e->kind == K_LIT || e->kind == K_COL || e->nargs == 0) {
        return LM_OK;
    }
    for (uint32_t i = 0; i < e->nargs; i++) {
        if (!is_lit(e->args[i])) {
            return LM_OK;
        }
    }
    number(e, &next);
    if (lm_expr_ctx_new(&ctx) != LM_OK) {
        return coom(s);
    }
    if ((rv = lm_expr_run(ctx, e, NULL, 1, &v, s->err)) != LM_OK || ctx->errors > 0) {
        lm_expr_ctx_free(ctx);
        return rv == LM_ENOMEM ? rv : LM_OK; /* other failures: keep the tree */
    }
    memset(&sc, 0, sizeof(sc));
    if (v.cst) {
        sc = v.c;
    } else {
        sc.null = v.valid != NULL && !v.valid[0];
        switch (v.phys) {
        case P_BOOL: sc.i = ((const uint8_t *)v.v)[0]; break;
        case P_I64: sc.i = ((const int64_t *)v.v)[0]; break;
        case P_F64: sc.f = ((const double *)v.v)[0]; break;
        default:
            if (v.off != NULL) {
                sc.s.p = v.data + v.off[0];
                sc.s.n = (uint32_t)(v.off[1] - v.off[0]);
            } else {
                sc.s = ((const lm_sv *)v.v)[0];
            }
            break;
        }
    }
    if (sc.null) {
        memset(&sc, 0, sizeof(sc));
        sc.null = true;
    }
    lit = lit_new(e->type, &sc);
    lm_expr_ctx_free(ctx);
    if (lit == NULL) {
        return coom(s);
    }
    lm_expr_free(e);
    *pe = lit;
    return LM_OK;
}

/* Wraps *pe in a cast to type `to` (folded when *pe is a literal). */
static int
coerce(cst *s, lm_expr **pe, int to)
{
    lm_expr *c;

    if ((*pe)->type == to) {
        return LM_OK;
    }
    if ((c = node_new(K_CAST, to)) == NULL || (c->args = malloc(sizeof(lm_expr *))) == NULL) {
        free(c);
        return coom(s);
    }
    c->args[0] = *pe;
    c->nargs = 1;
    c->nullable = (*pe)->nullable;
    c->may_err = (*pe)->may_err;
    *pe = c;
    return fold(s, pe);
}

/* Promotes int64 to float64 among args[from..to) when any is float64 and
 * all are numbers; returns the shared type or -1 when they differ. */
static int
unify(cst *s, lm_expr **args, uint32_t from, uint32_t to, int *rv)
{
    bool all_num = true, any_float = false;
    int t = args[from]->type;

    *rv = LM_OK;
    for (uint32_t i = from; i < to; i++) {
        all_num &= is_num(args[i]->type);
        any_float |= args[i]->type == LM_TYPE_FLOAT64;
    }
    if (all_num) {
        t = any_float ? LM_TYPE_FLOAT64 : LM_TYPE_INT64;
        for (uint32_t i = from; i < to && *rv == LM_OK; i++) {
            *rv = coerce(s, &args[i], t);
        }
        return t;
    }
    for (uint32_t i = from; i < to; i++) {
        if (args[i]->type != t) {
            return -1;
        }
    }
    return t;
}

/* The first type among args[from..to) differing from args[from]'s, for
 * messages. */
static int
other_type(lm_expr **args, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        if (args[i]->type != args[from]->type) {
            return args[i]->type;
        }
    }
    return args[from]->type;
}

/* --- calls ------------------------------------------------------------------------------ */

static bool
nonzero_lit(const lm_expr *e)
{
    return is_lit(e) && !e->lit.null && (e->phys == P_F64 ? e->lit.f != 0 : e->lit.i != 0);
}

static int
check_arith(cst *s, lm_expr *e, const char *name)
{
    lm_expr **a = e->args;
    int ta = a[0]->type, tb = a[1]->type, rv;
    bool any_null = a[0]->nullable || a[1]->nullable;

    if (e->op == OP_MOD && (!is_num(ta) || !is_num(tb))) {
        return cfail(s, "'%s' needs numbers, got %s and %s", name, lm_expr_tname(ta),
                     lm_expr_tname(tb));
    }
#define TEMPORAL(t) ((t) == LM_TYPE_TIMESTAMP || (t) == LM_TYPE_INTERVAL)
    if ((!is_num(ta) && !TEMPORAL(ta)) || (!is_num(tb) && !TEMPORAL(tb))) {
        return cfail(s, "'%s' needs numbers, timestamps or intervals, got %s and %s", name,
                     lm_expr_tname(ta), lm_expr_tname(tb));
    }
#undef TEMPORAL
    if (is_num(ta) && is_num(tb)) {
        int t = unify(s, a, 0, 2, &rv);
        if (rv != LM_OK) {
            return rv;
        }
        e->type = t;
        e->phys = e->argphys = (uint8_t)lm_expr_phys(t);
        if (t == LM_TYPE_FLOAT64) {
            e->may_err = (e->op == OP_DIV || e->op == OP_MOD) && !nonzero_lit(a[1]);
        } else if (e->op == OP_MOD) {
            e->may_err = !nonzero_lit(a[1]);
        } else if (e->op == OP_DIV) {
            e->may_err = !nonzero_lit(a[1]) || a[1]->lit.i == -1;
        } else {
            e->may_err = true; /* overflow */
        }
        e->nullable = any_null || e->may_err;
        return LM_OK;
    }
    const int TS = LM_TYPE_TIMESTAMP, IV = LM_TYPE_INTERVAL, I = LM_TYPE_INT64;
    int t = -1;
    switch (e->op) {
    case OP_ADD:
        t = (ta == TS && tb == IV) || (ta == IV && tb == TS) ? TS : ta == IV && tb == IV ? IV : -1;
        break;
    case OP_SUB:
        t = ta == TS && tb == IV ? TS : ta == TS && tb == TS ? IV : ta == IV && tb == IV ? IV : -1;
        break;
    case OP_MUL: t = (ta == IV && tb == I) || (ta == I && tb == IV) ? IV : -1; break;
    case OP_DIV: t = ta == IV && tb == I ? IV : -1; break;
    default: break;
    }
    if (t < 0) {
        return cfail(s, "'%s' is not defined for %s and %s", name, lm_expr_tname(ta),
                     lm_expr_tname(tb));
    }
    e->type = t;
    e->phys = e->argphys = P_I64;
    e->nullable = e->may_err = true;
    return LM_OK;
}

/* Builds the sorted constant list of an IN whose items are all literals. */
static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int
cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    bool nx = x != x, ny = y != y;
    if (nx || ny) {
        return nx - ny;
    }
    return (x > y) - (x < y);
}

static int
cmp_sv(const void *a, const void *b)
{
    const lm_sv *x = a, *y = b;
    uint32_t m = x->n < y->n ? x->n : y->n;
    int c = m > 0 ? memcmp(x->p, y->p, m) : 0;
    return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

static int
build_inset(cst *s, lm_expr *e)
{
    uint32_t n = e->nargs - 1, k = 0;
    size_t bytes = 0;
    lm_inset *set;

    for (uint32_t i = 1; i < e->nargs; i++) {
        if (!is_lit(e->args[i])) {
            return LM_OK;
        }
        bytes += e->args[i]->lit.s.n;
    }
    if ((set = calloc(1, sizeof(*set))) == NULL) {
        return coom(s);
    }
    switch (e->argphys) {
    case P_F64: set->f = malloc(n * sizeof(double)); break;
    case P_STR:
        set->s = malloc(n * sizeof(lm_sv));
        set->bytes = malloc(bytes + 1);
        break;
    default: set->i = malloc(n * sizeof(int64_t)); break;
    }
    if (set->f == NULL && set->s == NULL && set->i == NULL) {
        inset_free(set);
        return coom(s);
    }
    if (e->argphys == P_STR && set->bytes == NULL) {
        inset_free(set);
        return coom(s);
    }
    bytes = 0;
    for (uint32_t i = 1; i < e->nargs; i++) {
        const lm_scalar *v = &e->args[i]->lit;
        if (v->null) {
            set->has_null = true;
            continue;
        }
        switch (e->argphys) {
        case P_F64: set->f[k++] = v->f; break;
        case P_STR:
            if (v->s.n > 0) {
                memcpy(set->bytes + bytes, v->s.p, v->s.n);
            }
            set->s[k].p = set->bytes + bytes;
            set->s[k++].n = v->s.n;
            bytes += v->s.n;
            break;
        default: set->i[k++] = v->i; break;
        }
    }
    /* sort and drop duplicates */
    uint32_t m = 0;
    switch (e->argphys) {
    case P_F64:
        qsort(set->f, k, sizeof(double), cmp_f64);
        for (uint32_t i = 0; i < k; i++) {
            if (m == 0 || cmp_f64(&set->f[m - 1], &set->f[i]) != 0) {
                set->f[m++] = set->f[i];
            }
        }
        break;
    case P_STR:
        qsort(set->s, k, sizeof(lm_sv), cmp_sv);
        for (uint32_t i = 0; i < k; i++) {
            if (m == 0 || cmp_sv(&set->s[m - 1], &set->s[i]) != 0) {
                set->s[m++] = set->s[i];
            }
        }
        break;
    default:
        qsort(set->i, k, sizeof(int64_t), cmp_i64);
        for (uint32_t i = 0; i < k; i++) {
            if (m == 0 || set->i[m - 1] != set->i[i]) {
                set->i[m++] = set->i[i];
            }
        }
        break;
    }
    set->n = m;
    e->inset = set;
    return LM_OK;
}

static int
check_like(cst *s, lm_expr *e, const char *name)
{
    lm_expr **a = e->args;
    const uint8_t *esc = NULL;
    uint32_t esclen = 0;

    if (a[0]->type != LM_TYPE_UTF8 || a[1]->type != LM_TYPE_UTF8) {
        return cfail(s, "'%s' needs utf8 strings, got %s and %s", name, lm_expr_tname(a[0]->type),
                     lm_expr_tname(a[1]->type));
    }
    e->type = LM_TYPE_BOOL;
    e->phys = P_BOOL;
    e->nullable = a[0]->nullable || a[1]->nullable;
    if (e->nargs == 3) {
        if (!is_lit(a[2]) || a[2]->type != LM_TYPE_UTF8) {
            return cfail(s, "'%s' escape must be a constant utf8 string", name);
        }
        if (a[2]->lit.null) {
            e->like_null = true;
            e->nullable = true;
            return LM_OK;
        }
        esc = a[2]->lit.s.p;
        esclen = a[2]->lit.s.n;
        if (esclen > 0 && (lm_u8count(esc, esclen) != 1 || esclen > 4)) {
            return cfail(s, "'%s' escape must be one character, got '%s'", name, (const char *)esc);
        }
    }
    if (!is_lit(a[1])) {
        e->may_err = esclen > 0; /* a per-row pattern may end with the escape */
        e->nullable |= e->may_err;
        return LM_OK;
    }
    if (a[1]->lit.null) {
        e->like_null = true;
        e->nullable = true;
        return LM_OK;
    }
    int rv = lm_like_compile(a[1]->lit.s.p, a[1]->lit.s.n, esc, esclen, &e->like);
    if (rv == LM_EINVAL) {
        return cfail(s, "'%s' pattern ends with the escape character", name);
    }
    return rv == LM_OK ? LM_OK : coom(s);
}

/* Rewrites mod(x, c) = 0 and mod(x, c) <> 0 (either side, c a non-zero
 * int64 literal) into a divisibility test on x, which takes a multiply
 * instead of a division. */
static void
try_divisible(lm_expr *e)
{
    if ((e->op != OP_EQ && e->op != OP_NE) || e->argphys != P_I64) {
        return;
    }
    for (int side = 0; side < 2; side++) {
        lm_expr *m = e->args[side], *z = e->args[1 - side];
        if (is_lit(z) && z->type == LM_TYPE_INT64 && !z->lit.null && z->lit.i == 0 &&
            m->kind == K_CALL && m->op == OP_MOD && m->type == LM_TYPE_INT64 &&
            is_lit(m->args[1]) && !m->args[1]->lit.null && m->args[1]->lit.i != 0) {
            e->lit.i = m->args[1]->lit.i;
            e->args[0] = m->args[0];
            e->nargs = 1;
            m->args[0] = NULL;
            lm_expr_free(m);
            lm_expr_free(z);
            e->op = e->op == OP_EQ ? OP_DIVBY : OP_NDIVBY;
            return;
        }
    }
}

static int
check_call(cst *s, lm_expr *e, const char *name)
{
    lm_expr **a = e->args;
    uint32_t na = e->nargs;
    bool any_null = false;
    int rv = LM_OK, t;

    for (uint32_t i = 0; i < na; i++) {
        any_null |= a[i]->nullable;
    }
    e->nullable = any_null;
    switch (e->op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_MOD: return check_arith(s, e, name);
    case OP_NEG:
    case OP_ABS:
        t = a[0]->type;
        if (t != LM_TYPE_INT64 && t != LM_TYPE_FLOAT64 && t != LM_TYPE_INTERVAL) {
            return cfail(s, "'%s' needs a number or an interval, got %s", name, lm_expr_tname(t));
        }
        e->type = t;
        e->phys = e->argphys = (uint8_t)lm_expr_phys(t);
        e->may_err = t != LM_TYPE_FLOAT64;
        e->nullable = any_null || e->may_err;
        return LM_OK;
    case OP_EQ:
    case OP_NE:
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
    case OP_BETWEEN:
    case OP_NOTBETWEEN:
        t = unify(s, a, 0, na, &rv);
        if (rv != LM_OK) {
            return rv;
        }
        if (t < 0) {
            return cfail(s, "'%s' cannot compare %s with %s", name, lm_expr_tname(a[0]->type),
                         lm_expr_tname(other_type(a, 0, na)));
        }
        e->argphys = (uint8_t)lm_expr_phys(t);
        try_divisible(e);
        break;
    case OP_IN:
    case OP_NOTIN:
        t = unify(s, a, 0, na, &rv);
        if (rv != LM_OK) {
            return rv;
        }
        if (t < 0) {
            return cfail(s, "'%s' cannot compare %s with %s", name, lm_expr_tname(a[0]->type),
                         lm_expr_tname(other_type(a, 0, na)));
        }
        e->argphys = (uint8_t)lm_expr_phys(t);
        if ((rv = build_inset(s, e)) != LM_OK) {
            return rv;
        }
        break;
    case OP_AND:
    case OP_OR:
    case OP_NOT:
        for (uint32_t i = 0; i < na; i++) {
            if (a[i]->type != LM_TYPE_BOOL) {
                return cfail(s, "'%s' arguments must be boolean, got %s", name,
                             lm_expr_tname(a[i]->type));
            }
        }
        break;
    case OP_ISNULL:
    case OP_ISNOTNULL: e->nullable = false; break;
    case OP_LIKE:
    case OP_NOTLIKE: return check_like(s, e, name);
    case OP_LOWER:
    case OP_UPPER:
    case OP_TRIM:
    case OP_LTRIM:
    case OP_RTRIM:
        if (a[0]->type != LM_TYPE_UTF8) {
            return cfail(s, "'%s' needs utf8, got %s", name, lm_expr_tname(a[0]->type));
        }
        e->type = LM_TYPE_UTF8;
        e->phys = P_STR;
        return LM_OK;
    case OP_SUBSTR:
        if ((a[0]->type != LM_TYPE_UTF8 && a[0]->type != LM_TYPE_BINARY) ||
            a[1]->type != LM_TYPE_INT64 || (na == 3 && a[2]->type != LM_TYPE_INT64)) {
            return cfail(s, "'%s' needs a string and int64 positions, got %s, %s%s%s", name,
                         lm_expr_tname(a[0]->type), lm_expr_tname(a[1]->type), na == 3 ? ", " : "",
                         na == 3 ? lm_expr_tname(a[2]->type) : "");
        }
        e->type = a[0]->type;
        e->phys = P_STR;
        if (na == 3 && !(is_lit(a[2]) && !a[2]->lit.null && a[2]->lit.i >= 0)) {
            e->nullable = e->may_err = true; /* a negative length gives NULL */
        }
        return LM_OK;
    case OP_CONCAT:
        t = a[0]->type;
        for (uint32_t i = 0; i < na; i++) {
            if ((a[i]->type != LM_TYPE_UTF8 && a[i]->type != LM_TYPE_BINARY) || a[i]->type != t) {
                return cfail(s, "'%s' needs strings of one type, got %s and %s", name,
                             lm_expr_tname(t), lm_expr_tname(a[i]->type));
            }
        }
        e->type = t;
        e->phys = P_STR;
        return LM_OK;
    case OP_LENGTH:
        if (a[0]->type != LM_TYPE_UTF8 && a[0]->type != LM_TYPE_BINARY) {
            return cfail(s, "'%s' needs a string, got %s", name, lm_expr_tname(a[0]->type));
        }
        e->type = LM_TYPE_INT64;
        e->phys = P_I64;
        return LM_OK;
    case OP_COALESCE:
        t = unify(s, a, 0, na, &rv);
        if (rv != LM_OK) {
            return rv;
        }
        if (t < 0) {
            return cfail(s, "'%s' arguments have different types: %s and %s", name,
                         lm_expr_tname(a[0]->type), lm_expr_tname(other_type(a, 0, na)));
        }
        e->type = t;
        e->phys = (uint8_t)lm_expr_phys(t);
        e->nullable = true;
        for (uint32_t i = 0; i < na; i++) {
            e->nullable &= a[i]->nullable;
        }
        return LM_OK;
    default: break;
    }
    /* predicates */
    e->type = LM_TYPE_BOOL;
    e->phys = P_BOOL;
    return LM_OK;
}

/* --- JSON ------------------------------------------------------------------------ */

static const char *
jtype(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int compile(cst *s, const json_t *j, lm_expr **out);

/* Only the keys in allowed (NULL-terminated) may appear in j. */
static int
check_keys(cst *s, const json_t *j, const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)j, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            ok |= strcmp(key, allowed[i]) == 0;
        }
        if (!ok) {
            return cfail(s, "unexpected key '%s' in a '%s' expression", key, allowed[0]);
        }
    }
    return LM_OK;
}

static int
c_col(cst *s, const json_t *j, lm_expr **out)
{
    static const char *const keys[] = {"col", NULL};
    const json_t *v = json_object_get(j, "col");
    const char *name, *hint;
    lm_expr *e;
    int idx;

    if (check_keys(s, j, keys) != LM_OK) {
        return LM_EINVAL;
    }
    if (!json_is_string(v)) {
        return cfail(s, "'col' must be a string, got %s", jtype(v));
    }
    name = json_string_value(v);
    if ((idx = lm_schema_find(s->in, name)) < 0) {
        if ((hint = suggest_column(s->in, name)) != NULL) {
            return cfail(s, "unknown column '%s' (did you mean '%s'?)", name, hint);
        }
        return cfail(s, "unknown column '%s'", name);
    }
    if ((e = node_new(K_COL, (int)s->in->fields[idx].type)) == NULL) {
        return coom(s);
    }
    e->col = (uint32_t)idx;
    e->nullable = s->in->fields[idx].nullable;
    *out = e;
    return LM_OK;
}

static int
c_lit(cst *s, const json_t *j, lm_expr **out)
{
    static const char *const keys[] = {"lit", "type", NULL};
    const json_t *v = json_object_get(j, "lit"), *tj = json_object_get(j, "type");
    lm_scalar sc;
    int t;

    if (check_keys(s, j, keys) != LM_OK) {
        return LM_EINVAL;
    }
    memset(&sc, 0, sizeof(sc));
    if (tj != NULL) {
        if (!json_is_string(tj)) {
            return cfail(s, "literal: 'type' must be a string, got %s", jtype(tj));
        }
        if ((t = parse_type(json_string_value(tj))) < 0) {
            return cfail(s, "literal: unknown type '%s'", json_string_value(tj));
        }
    } else {
        switch (json_typeof(v)) {
        case JSON_INTEGER: t = LM_TYPE_INT64; break;
        case JSON_REAL: t = LM_TYPE_FLOAT64; break;
        case JSON_STRING: t = LM_TYPE_UTF8; break;
        case JSON_TRUE:
        case JSON_FALSE: t = LM_TYPE_BOOL; break;
        case JSON_NULL: return cfail(s, "literal: null needs a type");
        default: return cfail(s, "literal: unsupported value (%s)", jtype(v));
        }
    }
    if (json_is_null(v)) {
        sc.null = true;
    } else {
        bool ok = false;
        switch (t) {
        case LM_TYPE_BOOL:
            ok = json_is_boolean(v);
            sc.i = json_is_true(v);
            break;
        case LM_TYPE_INT64:
        case LM_TYPE_INTERVAL:
            ok = json_is_integer(v);
            sc.i = ok ? (int64_t)json_integer_value(v) : 0;
            break;
        case LM_TYPE_FLOAT64:
            ok = json_is_number(v);
            sc.f = ok ? json_number_value(v) : 0;
            break;
        case LM_TYPE_TIMESTAMP:
            if (json_is_integer(v)) {
                ok = true;
                sc.i = (int64_t)json_integer_value(v);
            } else if (json_is_string(v)) {
                if (!lm_parse_ts((const uint8_t *)json_string_value(v),
                                 (uint32_t)json_string_length(v), &sc.i)) {
                    return cfail(s, "literal: invalid timestamp '%s'", json_string_value(v));
                }
                ok = true;
            }
            break;
        default: /* utf8, binary */
            ok = json_is_string(v);
            if (ok) {
                size_t len = json_string_length(v);
                if (len > INT32_MAX) {
                    return cfail(s, "literal: string too long");
                }
                sc.s.p = (const uint8_t *)json_string_value(v);
                sc.s.n = (uint32_t)len;
            }
            break;
        }
        if (!ok) {
            return cfail(s, "literal: %s is not a valid %s value", jtype(v), lm_expr_tname(t));
        }
    }
    if ((*out = lit_new(t, &sc)) == NULL) {
        return coom(s);
    }
    return LM_OK;
}

static int
c_call(cst *s, const json_t *j, lm_expr **out)
{
    static const char *const keys[] = {"call", "args", NULL};
    const json_t *cj = json_object_get(j, "call"), *aj = json_object_get(j, "args");
    const struct fn *f = NULL;
    const char *name, *hint;
    lm_expr *e = NULL;
    size_t na;
    int rv;

    if (check_keys(s, j, keys) != LM_OK) {
        return LM_EINVAL;
    }
    if (!json_is_string(cj)) {
        return cfail(s, "'call' must be a string, got %s", jtype(cj));
    }
    name = json_string_value(cj);
    if (aj != NULL && !json_is_array(aj)) {
        return cfail(s, "'args' must be an array, got %s", jtype(aj));
    }
    for (size_t i = 0; i < NFNS && f == NULL; i++) {
        if (strcasecmp(name, fns[i].name) == 0) {
            f = &fns[i];
        }
    }
    if (f == NULL) {
        if ((hint = suggest_function(name)) != NULL) {
            return cfail(s, "unknown function '%s' (did you mean '%s'?)", name, hint);
        }
        return cfail(s, "unknown function '%s'", name);
    }
    na = aj != NULL ? json_array_size(aj) : 0;
    if (na < (size_t)f->min || (f->max >= 0 && na > (size_t)f->max)) {
        if (f->min == f->max) {
            return cfail(s, "'%s' takes %d argument%s, got %zu", name, f->min,
                         f->min == 1 ? "" : "s", na);
        }
        if (f->max < 0) {
            return cfail(s, "'%s' takes %d or more arguments, got %zu", name, f->min, na);
        }
        return cfail(s, "'%s' takes %d or %d arguments, got %zu", name, f->min, f->max, na);
    }
    if (na > UINT32_MAX / 2) {
        return cfail(s, "'%s' has too many arguments", name);
    }
    if ((e = node_new(K_CALL, LM_TYPE_BOOL)) == NULL ||
        (e->args = calloc(na, sizeof(lm_expr *))) == NULL) {
        free(e);
        return coom(s);
    }
    e->op = f->op == OP_SUB && na == 1 ? OP_NEG : f->op;
    for (size_t i = 0; i < na; i++) {
        size_t save = push(s, "args[%zu]", i);
        rv = compile(s, json_array_get(aj, i), &e->args[i]);
        pop(s, save);
        if (rv != LM_OK) {
            goto fail;
        }
        e->nargs++;
    }
    if ((rv = check_call(s, e, name)) != LM_OK) {
        goto fail;
    }
    for (uint32_t i = 0; i < e->nargs; i++) {
        e->may_err |= e->args[i]->may_err;
    }
    if ((rv = fold(s, &e)) != LM_OK) {
        goto fail;
    }
    *out = e;
    return LM_OK;
fail:
    lm_expr_free(e);
    return rv;
}

static int
c_case(cst *s, const json_t *j, lm_expr **out)
{
    static const char *const keys[] = {"case", "else", NULL};
    static const char *const bkeys[] = {"when", "then", NULL};
    const json_t *cj = json_object_get(j, "case"), *ej = json_object_get(j, "else");
    size_t nb, na;
    lm_expr *e = NULL;
    int rv, t;

    if (check_keys(s, j, keys) != LM_OK) {
        return LM_EINVAL;
    }
    if (!json_is_array(cj) || json_array_size(cj) == 0) {
        return cfail(s, "case: 'case' must be a non-empty array of {\"when\", \"then\"}");
    }
    nb = json_array_size(cj);
    if (nb > UINT32_MAX / 4) {
        return cfail(s, "case: too many branches");
    }
    na = nb * 2 + (ej != NULL ? 1 : 0);
    if ((e = node_new(K_CASE, LM_TYPE_BOOL)) == NULL ||
        (e->args = calloc(na, sizeof(lm_expr *))) == NULL) {
        free(e);
        return coom(s);
    }
    e->has_else = ej != NULL;
    for (size_t k = 0; k < nb; k++) {
        const json_t *b = json_array_get(cj, k);
        size_t save = push(s, "case[%zu]", k);
        if (!json_is_object(b) || json_object_get(b, "when") == NULL ||
            json_object_get(b, "then") == NULL) {
            rv = cfail(s, "a branch must be an object with 'when' and 'then'");
        } else if ((rv = check_keys(s, b, bkeys)) == LM_OK) {
            size_t save2 = push(s, "when");
            rv = compile(s, json_object_get(b, "when"), &e->args[2 * k]);
            pop(s, save2);
            if (rv == LM_OK) {
                e->nargs++;
                save2 = push(s, "then");
                rv = compile(s, json_object_get(b, "then"), &e->args[2 * k + 1]);
                pop(s, save2);
                e->nargs += rv == LM_OK;
            }
        }
        pop(s, save);
        if (rv != LM_OK) {
            goto fail;
        }
    }
    if (ej != NULL) {
        size_t save = push(s, "else");
        rv = compile(s, ej, &e->args[na - 1]);
        pop(s, save);
        if (rv != LM_OK) {
            goto fail;
        }
        e->nargs++;
    }
    for (size_t k = 0; k < nb; k++) {
        if (e->args[2 * k]->type != LM_TYPE_BOOL) {
            rv = cfail(s, "case: 'when' must be boolean, got %s",
                       lm_expr_tname(e->args[2 * k]->type));
            goto fail;
        }
    }
    /* the thens and the else share one type: gather them, unify, put back */
    lm_expr **vals = malloc((nb + 1) * sizeof(lm_expr *));
    size_t nv = 0;
    if (vals == NULL) {
        rv = coom(s);
        goto fail;
    }
    for (size_t k = 0; k < nb; k++) {
        vals[nv++] = e->args[2 * k + 1];
    }
    if (e->has_else) {
        vals[nv++] = e->args[na - 1];
    }
    t = unify(s, vals, 0, (uint32_t)nv, &rv);
    for (size_t k = 0; k < nb; k++) {
        e->args[2 * k + 1] = vals[k];
    }
    if (e->has_else) {
        e->args[na - 1] = vals[nb];
    }
    if (rv == LM_OK && t < 0) {
        rv = cfail(s, "case: 'then' and 'else' types differ: %s and %s",
                   lm_expr_tname(vals[0]->type), lm_expr_tname(other_type(vals, 0, (uint32_t)nv)));
    }
    free(vals);
    if (rv != LM_OK) {
        goto fail;
    }
    e->type = t;
    e->phys = (uint8_t)lm_expr_phys(t);
    e->nullable = !e->has_else;
    for (size_t k = 0; k < nb; k++) {
        e->nullable |= e->args[2 * k + 1]->nullable;
    }
    if (e->has_else) {
        e->nullable |= e->args[na - 1]->nullable;
    }
    for (uint32_t i = 0; i < e->nargs; i++) {
        e->may_err |= e->args[i]->may_err;
    }
    if ((rv = fold(s, &e)) != LM_OK) {
        goto fail;
    }
    *out = e;
    return LM_OK;
fail:
    lm_expr_free(e);
    return rv;
}

/* Which casts exist, and which can fail per row. */
static bool
cast_ok(int from, int to, bool *can_fail)
{
    const int B = LM_TYPE_BOOL, I = LM_TYPE_INT64, F = LM_TYPE_FLOAT64, TS = LM_TYPE_TIMESTAMP,
              S = LM_TYPE_UTF8, BIN = LM_TYPE_BINARY, IV = LM_TYPE_INTERVAL;

    *can_fail = false;
    switch (from) {
    case LM_TYPE_INT64: return to == F || to == B || to == TS || to == IV || to == S;
    case LM_TYPE_FLOAT64: *can_fail = to == I; return to == I || to == S;
    case LM_TYPE_BOOL: return to == I || to == S;
    case LM_TYPE_TIMESTAMP: return to == I || to == S;
    case LM_TYPE_INTERVAL: return to == I;
    case LM_TYPE_UTF8:
        *can_fail = to != BIN;
        return to == I || to == F || to == B || to == TS || to == BIN;
    case LM_TYPE_BINARY: *can_fail = true; return to == S;
    default: return false;
    }
}

static int
c_cast(cst *s, const json_t *j, lm_expr **out)
{
    static const char *const keys[] = {"cast", "to", NULL};
    const json_t *tj = json_object_get(j, "to");
    lm_expr *arg = NULL, *e;
    bool can_fail;
    size_t save;
    int t, rv;

    if (check_keys(s, j, keys) != LM_OK) {
        return LM_EINVAL;
    }
    if (!json_is_string(tj)) {
        return cfail(s, "cast: 'to' must be a type name");
    }
    if ((t = parse_type(json_string_value(tj))) < 0) {
        return cfail(s, "cast: unknown type '%s'", json_string_value(tj));
    }
    save = push(s, "cast");
    rv = compile(s, json_object_get(j, "cast"), &arg);
    pop(s, save);
    if (rv != LM_OK) {
        return rv;
    }
    if (arg->type == t) {
        *out = arg;
        return LM_OK;
    }
    if (!cast_ok(arg->type, t, &can_fail)) {
        rv = cfail(s, "cast: cannot cast %s to %s", lm_expr_tname(arg->type), lm_expr_tname(t));
        lm_expr_free(arg);
        return rv;
    }
    if ((e = node_new(K_CAST, t)) == NULL || (e->args = malloc(sizeof(lm_expr *))) == NULL) {
        free(e);
        lm_expr_free(arg);
        return coom(s);
    }
    e->args[0] = arg;
    e->nargs = 1;
    e->nullable = arg->nullable || can_fail;
    e->may_err = arg->may_err || can_fail;
    if ((rv = fold(s, &e)) != LM_OK) {
        lm_expr_free(e);
        return rv;
    }
    *out = e;
    return LM_OK;
}

static int
compile(cst *s, const json_t *j, lm_expr **out)
{
    int rv;

    if (j == NULL || !json_is_object(j)) {
        return cfail(s, "expected an expression object, got %s", j != NULL ? jtype(j) : "nothing");
    }
    if (s->depth >= MAX_DEPTH) {
        return cfail(s, "expression nested deeper than %d levels", MAX_DEPTH);
    }
    s->depth++;
    if (json_object_get(j, "col") != NULL) {
        rv = c_col(s, j, out);
    } else if (json_object_get(j, "lit") != NULL) {
        rv = c_lit(s, j, out);
    } else if (json_object_get(j, "call") != NULL) {
        rv = c_call(s, j, out);
    } else if (json_object_get(j, "case") != NULL) {
        rv = c_case(s, j, out);
    } else if (json_object_get(j, "cast") != NULL) {
        rv = c_cast(s, j, out);
    } else {
        rv = cfail(s, "expected one of the keys 'col', 'lit', 'call', 'case', 'cast'");
    }
    s->depth--;
    return rv;
}

/* --- public ------------------------------------------------------------------------- */

int
lm_expr_compile(const json_t *j, const lm_schema *in, lm_expr **out, lm_error *err)
{
    cst s;
    lm_expr *e = NULL;
    uint32_t next = 0;
    int rv;

    memset(&s, 0, sizeof(s));
    s.in = in;
    s.err = err;
    if (in == NULL || out == NULL) {
        return lm_error_set(err, LM_EINVAL, "an input schema and an output pointer are required");
    }
    if ((rv = compile(&s, j, &e)) != LM_OK) {
        return rv;
    }
    number(e, &next);
    *out = e;
    return LM_OK;
}

int
lm_expr_type(const lm_expr *e)
{
    return e->type;
}

bool
lm_expr_nullable(const lm_expr *e)
{
    return e->nullable;
}

int
lm_expr_column(const lm_expr *e)
{
    return e->kind == K_COL ? (int)e->col : -1;
}
