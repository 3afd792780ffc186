/*
 * lm_expr_eval.c: vectorized evaluation of compiled expressions.
 *
 * Every node evaluates all rows of a batch at once into an lm_vec: a
 * column's buffers (borrowed), a constant, or arrays in the node's scratch
 * slot of the context. Validity travels as one byte per row (1 = not
 * null), which turns null propagation into byte-wise ANDs the compiler
 * vectorizes. Each node dispatches on its operator and types once per
 * batch and then runs a loop specialised for vector-vector and
 * vector-constant operands; nothing is allocated per row.
 *
 * An "act" byte array (NULL: all rows) travels down the tree: the rows
 * whose value matters. Values are computed for every row (that is cheaper
 * than gathering), but errors are counted only on active rows, so that
 * CASE WHEN x = 0 THEN 0 ELSE 1 / x END counts nothing.
 */
#include "lm_expr_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* GCC 12 at -O2 vectorizes only loops it can prove need no epilogue and
 * no alias check ("very cheap" cost model), which excludes nearly every
 * loop over a batch; the kernels ask for the dynamic model instead. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

typedef struct ectx {
    lm_expr_ctx *ctx;
    const lm_batch *in;
    uint32_t n;
    lm_error *err;
} ectx;

static const uint8_t empty_bytes[1] = {0};

static int ev(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out);

/* --- context and scratch ---------------------------------------------------- */

int
lm_expr_ctx_new(lm_expr_ctx **out)
{
    lm_expr_ctx *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return LM_ENOMEM;
    }
    *out = c;
    return LM_OK;
}

void
lm_expr_ctx_free(lm_expr_ctx *ctx)
{
    if (ctx == NULL) {
        return;
    }
    for (uint32_t i = 0; i < ctx->nslots; i++) {
        for (int k = 0; k < B_NBUF; k++) {
            free(ctx->slots[i].b[k]);
        }
    }
    free(ctx->slots);
    free(ctx);
}

uint64_t
lm_expr_ctx_errors(const lm_expr_ctx *ctx)
{
    return ctx->errors;
}

static int
oom(ectx *x)
{
    return lm_error_set(x->err, LM_ENOMEM, "out of memory for expression scratch");
}

/* Scratch buffer `which` of e's slot with room for bytes (contents are not
 * kept when it grows). */
static void *
sbuf(ectx *x, const lm_expr *e, int which, size_t bytes)
{
    lm_slot *s = &x->ctx->slots[e->slot];

    if (s->b[which] == NULL || bytes > s->cap[which]) {
        size_t cap = s->cap[which] * 2;
        void *p;
        if (cap < bytes) {
            cap = bytes;
        }
        if (cap < 64) {
            cap = 64;
        }
        if ((p = malloc(cap)) == NULL) {
            return NULL;
        }
        free(s->b[which]);
        s->b[which] = p;
        s->cap[which] = cap;
    }
    return s->b[which];
}

#define SBUF(ptr, node, which, bytes)                                                              \
    do {                                                                                           \
        if (((ptr) = sbuf(x, (node), (which), (bytes))) == NULL) {                                 \
            return oom(x);                                                                         \
        }                                                                                          \
    } while (0)

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rv_ = (call);                                                                          \
        if (rv_ != LM_OK) {                                                                        \
            return rv_;                                                                            \
        }                                                                                          \
    } while (0)

/* --- vector helpers --------------------------------------------------------- */

static inline bool
vvalid(const lm_vec *v, uint32_t i)
{
    return v->cst ? !v->c.null : (v->valid == NULL || v->valid[i]);
}

static inline int64_t
vi64(const lm_vec *v, uint32_t i)
{
    return v->cst ? v->c.i : ((const int64_t *)v->v)[i];
}

static inline double
vf64(const lm_vec *v, uint32_t i)
{
    return v->cst ? v->c.f : ((const double *)v->v)[i];
}

static inline uint8_t
vbool(const lm_vec *v, uint32_t i)
{
    return v->cst ? (uint8_t)v->c.i : ((const uint8_t *)v->v)[i];
}

static inline lm_sv
vsv(const lm_vec *v, uint32_t i)
{
    if (v->cst) {
        return v->c.s;
    }
    if (v->off != NULL) {
        lm_sv s = {v->data + v->off[i], (uint32_t)(v->off[i + 1] - v->off[i])};
        return s;
    }
    return ((const lm_sv *)v->v)[i];
}

static inline bool
cnull(const lm_vec *v)
{
    return v->cst && v->c.null;
}

static inline uint8_t
act_at(const uint8_t *act, uint32_t i)
{
    return act != NULL ? act[i] : 1;
}

static void
set_null(lm_vec *out, uint8_t phys)
{
    memset(out, 0, sizeof(*out));
    out->phys = phys;
    out->cst = true;
    out->c.null = true;
    out->c.s.p = empty_bytes;
}

static void
set_const_bool(lm_vec *out, bool v)
{
    memset(out, 0, sizeof(*out));
    out->phys = P_BOOL;
    out->cst = true;
    out->c.i = v;
}

static int
svcmp(lm_sv a, lm_sv b)
{
    uint32_t m = a.n < b.n ? a.n : b.n;
    int c = m > 0 ? memcmp(a.p, b.p, m) : 0;
    if (c != 0) {
        return c;
    }
    return (a.n > b.n) - (a.n < b.n);
}

static inline bool
sveq(lm_sv a, lm_sv b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Turns a constant into per-row arrays in e's buffers wv (values) and
 * wvl (validity). */
static int
flatten(ectx *x, const lm_expr *e, int wv, int wvl, lm_vec *v)
{
    uint32_t n = x->n;

    if (!v->cst) {
        return LM_OK;
    }
    if (v->c.null) {
        uint8_t *vl;
        SBUF(vl, e, wvl, n);
        memset(vl, 0, n);
        v->valid = vl;
    } else {
        v->valid = NULL;
    }
    switch (v->phys) {
    case P_BOOL: {
        uint8_t *p;
        SBUF(p, e, wv, n);
        memset(p, (int)v->c.i, n);
        v->v = p;
        break;
    }
    case P_I64: {
        int64_t *p;
        SBUF(p, e, wv, (size_t)n * 8);
        for (uint32_t i = 0; i < n; i++) {
            p[i] = v->c.i;
        }
        v->v = p;
        break;
    }
    case P_F64: {
        double *p;
        SBUF(p, e, wv, (size_t)n * 8);
        for (uint32_t i = 0; i < n; i++) {
            p[i] = v->c.f;
        }
        v->v = p;
        break;
    }
    default: {
        lm_sv *p;
        lm_sv s = v->c.null ? (lm_sv){empty_bytes, 0} : v->c.s;
        SBUF(p, e, wv, (size_t)n * sizeof(lm_sv));
        for (uint32_t i = 0; i < n; i++) {
            p[i] = s;
        }
        v->v = p;
        break;
    }
    }
    v->cst = false;
    v->off = NULL;
    return LM_OK;
}

/* *out = a AND b of two validity arrays (NULL: all valid). */
static int
and_valid(ectx *x, const lm_expr *e, const uint8_t *a, const uint8_t *b, const uint8_t **out)
{
    uint8_t *v;

    if (a == NULL || b == NULL) {
        *out = a != NULL ? a : b;
        return LM_OK;
    }
    SBUF(v, e, B_VALID, x->n);
    for (uint32_t i = 0; i < x->n; i++) {
        v[i] = a[i] & b[i];
    }
    *out = v;
    return LM_OK;
}

/* Rows where bad, valid and act are all set. */
static uint64_t
count_bad(const uint8_t *bad, const uint8_t *valid, const uint8_t *act, uint32_t n)
{
    uint64_t c = 0;

    for (uint32_t i = 0; i < n; i++) {
        c += bad[i] & (valid != NULL ? valid[i] : 1) & act_at(act, i);
    }
    return c;
}

/* Finishes a kernel that flagged rows in bad[]: those become NULL and
 * count as errors (when they were valid and active). */
static int
finish_bad(ectx *x, const lm_expr *e, const uint8_t *inv, const uint8_t *bad, const uint8_t *act,
           lm_vec *out)
{
    uint32_t n = x->n;
    uint8_t any = 0, *v;

    for (uint32_t i = 0; i < n; i++) {
        any |= bad[i];
    }
    if (!any) {
        out->valid = inv;
        return LM_OK;
    }
    x->ctx->errors += count_bad(bad, inv, act, n);
    SBUF(v, e, B_VALID, n); /* may be inv itself: updated in place */
    if (inv != NULL) {
        for (uint32_t i = 0; i < n; i++) {
            v[i] = inv[i] & (bad[i] ^ 1);
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            v[i] = bad[i] ^ 1;
        }
    }
    out->valid = v;
    return LM_OK;
}

/* Counts an error for every valid, active row (a constant that fails for
 * every row) and makes the result NULL. */
static void
all_bad(ectx *x, const uint8_t *inv, const uint8_t *act, lm_vec *out, uint8_t phys)
{
    uint64_t c = 0;

    for (uint32_t i = 0; i < x->n; i++) {
        c += (inv != NULL ? inv[i] : 1) & act_at(act, i);
    }
    x->ctx->errors += c;
    set_null(out, phys);
}

/* --- columns ------------------------------------------------------------------ */

static int
ev_col(ectx *x, const lm_expr *e, lm_vec *out)
{
    const lm_batch *in = x->in;
    const lm_column *c;
    uint32_t n = x->n;

    if (in == NULL || e->col >= in->schema->nfields ||
        (int)in->schema->fields[e->col].type != e->type) {
        return lm_error_set(x->err, LM_EINVAL,
                            "input batch does not fit the expression: column %u is not %s", e->col,
                            lm_expr_tname(e->type));
    }
    c = &in->cols[e->col];
    if (c->validity != NULL && c->null_count > 0) {
        uint8_t *v;
        SBUF(v, e, B_VALID, n);
        for (uint32_t i = 0; i < n; i++) {
            v[i] = (c->validity[i >> 3] >> (i & 7)) & 1;
        }
        out->valid = v;
    }
    if (e->phys == P_STR) {
        out->off = (const int32_t *)c->values;
        out->data = c->data != NULL ? c->data : empty_bytes;
    } else {
        out->v = c->values;
    }
    return LM_OK;
}

/* --- arithmetic --------------------------------------------------------------- */

/* Loops over vector-vector, vector-constant and constant-vector operands
 * with A and B bound to the operands of row i. */
#define BIN_LOOPS(T, av, bv, ac, bc, BODY)                                                         \
    do {                                                                                           \
        if (!a->cst && !b->cst) {                                                                  \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                T A = (av)[i], B = (bv)[i];                                                        \
                BODY;                                                                              \
            }                                                                                      \
        } else if (!a->cst) {                                                                      \
            const T B = (bc);                                                                      \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                T A = (av)[i];                                                                     \
                BODY;                                                                              \
            }                                                                                      \
        } else {                                                                                   \
            const T A = (ac);                                                                      \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                T B = (bv)[i];                                                                     \
                BODY;                                                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Division and modulo of a vector by a constant: no zero check per row,
 * and a multiply instead of a divide. */
static int
divmod_const(ectx *x, const lm_expr *e, const lm_vec *a, int64_t d, const uint8_t *inv,
             const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    const int64_t *av = a->v;
    int64_t *r;
    bool div = e->op == OP_DIV;

    if (d == 0) {
        all_bad(x, inv, act, out, P_I64);
        return LM_OK;
    }
    SBUF(r, e, B_VAL, (size_t)n * 8);
    out->v = r;
    if (d == -1) {
        uint8_t *bad;
        if (!div) {
            memset(r, 0, (size_t)n * 8);
            out->valid = inv;
            return LM_OK;
        }
        SBUF(bad, e, B_T1, n);
        for (uint32_t i = 0; i < n; i++) {
            r[i] = (int64_t)(0 - (uint64_t)av[i]);
            bad[i] = av[i] == INT64_MIN;
        }
        return finish_bad(x, e, inv, bad, act, out);
    }
    lm_sdiv dv;
    lm_sdiv_gen(d, &dv);
    uint64_t ud = (uint64_t)d;
#define DIVLOOP(Q)                                                                                 \
    do {                                                                                           \
        if (div) {                                                                                 \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                int64_t X = av[i];                                                                 \
                r[i] = (Q);                                                                        \
            }                                                                                      \
        } else {                                                                                   \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                int64_t X = av[i];                                                                 \
                r[i] = (int64_t)((uint64_t)X - (uint64_t)(Q)*ud);                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)
    uint8_t shift = dv.more & 0x3f;
    uint64_t sign = (uint64_t)(int64_t)((int8_t)dv.more >> 7);
    int64_t m = dv.magic;
    if (m == 0) {
        uint64_t mask = ((uint64_t)1 << shift) - 1;
        DIVLOOP(lm_sdiv_pow2(X, shift, mask, sign));
    } else if (dv.more & 0x40) {
        DIVLOOP(lm_sdiv_add(X, m, shift, sign));
    } else {
        DIVLOOP(lm_sdiv_mul(X, m, shift));
    }
#undef DIVLOOP
    out->valid = inv;
    return LM_OK;
}

static int
arith_i64(ectx *x, const lm_expr *e, const lm_vec *a, const lm_vec *b, const uint8_t *inv,
          const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    const int64_t *av = a->v, *bv = b->v;
    int64_t *r;
    uint8_t *bad;

    if ((e->op == OP_DIV || e->op == OP_MOD) && !a->cst && b->cst) {
        return divmod_const(x, e, a, b->c.i, inv, act, out);
    }
    SBUF(r, e, B_VAL, (size_t)n * 8);
    SBUF(bad, e, B_T1, n);
    switch (e->op) {
    case OP_ADD:
        BIN_LOOPS(int64_t, av, bv, a->c.i, b->c.i, {
            uint64_t R = (uint64_t)A + (uint64_t)B;
            r[i] = (int64_t)R;
            bad[i] = (uint8_t)((((uint64_t)A ^ R) & ((uint64_t)B ^ R)) >> 63);
        });
        break;
    case OP_SUB:
        BIN_LOOPS(int64_t, av, bv, a->c.i, b->c.i, {
            uint64_t R = (uint64_t)A - (uint64_t)B;
            r[i] = (int64_t)R;
            bad[i] = (uint8_t)((((uint64_t)A ^ (uint64_t)B) & ((uint64_t)A ^ R)) >> 63);
        });
        break;
    case OP_MUL:
        BIN_LOOPS(int64_t, av, bv, a->c.i, b->c.i, {
            int64_t R;
            bad[i] = (uint8_t)__builtin_mul_overflow(A, B, &R);
            r[i] = R;
        });
        break;
    case OP_DIV:
        BIN_LOOPS(int64_t, av, bv, a->c.i, b->c.i, {
            uint8_t z = (uint8_t)((B == 0) | ((A == INT64_MIN) & (B == -1)));
            r[i] = A / (z ? 1 : B);
            bad[i] = z;
        });
        break;
    default: /* OP_MOD */
        BIN_LOOPS(int64_t, av, bv, a->c.i, b->c.i, {
            uint8_t z = B == 0;
            r[i] = A % ((z | (B == -1)) ? 1 : B);
            bad[i] = z;
        });
        break;
    }
    out->v = r;
    return finish_bad(x, e, inv, bad, act, out);
}

static int
arith_f64(ectx *x, const lm_expr *e, const lm_vec *a, const lm_vec *b, const uint8_t *inv,
          const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    const double *av = a->v, *bv = b->v;
    double *r;
    uint8_t *bad;

    if ((e->op == OP_DIV || e->op == OP_MOD) && b->cst && b->c.f == 0) {
        all_bad(x, inv, act, out, P_F64);
        return LM_OK;
    }
    SBUF(r, e, B_VAL, (size_t)n * 8);
    out->v = r;
    out->valid = inv;
    switch (e->op) {
    case OP_ADD: BIN_LOOPS(double, av, bv, a->c.f, b->c.f, r[i] = A + B); return LM_OK;
    case OP_SUB: BIN_LOOPS(double, av, bv, a->c.f, b->c.f, r[i] = A - B); return LM_OK;
    case OP_MUL: BIN_LOOPS(double, av, bv, a->c.f, b->c.f, r[i] = A * B); return LM_OK;
    default: break;
    }
    if (b->cst) { /* non-zero constant divisor */
        const double B = b->c.f;
        if (e->op == OP_DIV) {
            for (uint32_t i = 0; i < n; i++) {
                r[i] = av[i] / B;
            }
        } else {
            for (uint32_t i = 0; i < n; i++) {
                r[i] = fmod(av[i], B);
            }
        }
        return LM_OK;
    }
    SBUF(bad, e, B_T1, n);
    if (e->op == OP_DIV) {
        BIN_LOOPS(double, av, bv, a->c.f, b->c.f, {
            uint8_t z = B == 0;
            r[i] = A / (z ? 1.0 : B);
            bad[i] = z;
        });
    } else {
        BIN_LOOPS(double, av, bv, a->c.f, b->c.f, {
            uint8_t z = B == 0;
            r[i] = fmod(A, z ? 1.0 : B);
            bad[i] = z;
        });
    }
    return finish_bad(x, e, inv, bad, act, out);
}

static int
ev_arith(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    lm_vec a, b;
    const uint8_t *inv;

    TRY(ev(x, e->args[0], act, &a));
    TRY(ev(x, e->args[1], act, &b));
    if (cnull(&a) || cnull(&b)) {
        set_null(out, e->phys);
        return LM_OK;
    }
    if (a.cst && b.cst) {
        TRY(flatten(x, e, B_T2, B_T3, &a));
    }
    TRY(and_valid(x, e, a.valid, b.valid, &inv));
    if (e->argphys == P_F64) {
        return arith_f64(x, e, &a, &b, inv, act, out);
    }
    return arith_i64(x, e, &a, &b, inv, act, out);
}

static int
ev_negabs(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    lm_vec a;
    uint32_t n = x->n;

    TRY(ev(x, e->args[0], act, &a));
    if (cnull(&a)) {
        set_null(out, e->phys);
        return LM_OK;
    }
    TRY(flatten(x, e, B_T2, B_T3, &a));
    if (e->phys == P_F64) {
        const double *av = a.v;
        double *r;
        SBUF(r, e, B_VAL, (size_t)n * 8);
        if (e->op == OP_NEG) {
            for (uint32_t i = 0; i < n; i++) {
                r[i] = -av[i];
            }
        } else {
            for (uint32_t i = 0; i < n; i++) {
                r[i] = fabs(av[i]);
            }
        }
        out->v = r;
        out->valid = a.valid;
        return LM_OK;
    }
    const int64_t *av = a.v;
    int64_t *r;
    uint8_t *bad;
    SBUF(r, e, B_VAL, (size_t)n * 8);
    SBUF(bad, e, B_T1, n);
    for (uint32_t i = 0; i < n; i++) {
        int64_t A = av[i];
        bool neg = e->op == OP_NEG || A < 0;
        r[i] = neg ? (int64_t)(0 - (uint64_t)A) : A;
        bad[i] = A == INT64_MIN;
    }
    out->v = r;
    return finish_bad(x, e, a.valid, bad, act, out);
}

/* --- comparison --------------------------------------------------------------- */

/* Total order on doubles: NaN equals NaN and sorts after everything. */
static inline uint8_t
feq(double a, double b)
{
    return (uint8_t)((a == b) | ((a != a) & (b != b)));
}

static inline uint8_t
flt(double a, double b)
{
    return (uint8_t)((a < b) | ((b != b) & (a == a)));
}

static int
mirror(int op)
{
    switch (op) {
    case OP_LT: return OP_GT;
    case OP_LE: return OP_GE;
    case OP_GT: return OP_LT;
    case OP_GE: return OP_LE;
    default: return op;
    }
}

#define CMP_LOOPS(T, av, bv, bc, EXPR)                                                             \
    do {                                                                                           \
        if (b->cst) {                                                                              \
            const T B = (bc);                                                                      \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                T A = (av)[i];                                                                     \
                r[i] = (uint8_t)(EXPR);                                                            \
            }                                                                                      \
        } else {                                                                                   \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                T A = (av)[i], B = (bv)[i];                                                        \
                r[i] = (uint8_t)(EXPR);                                                            \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define CMP_OPS(T, av, bv, bc, EQ, LT)                                                             \
    do {                                                                                           \
        switch (op) {                                                                              \
        case OP_EQ: CMP_LOOPS(T, av, bv, bc, EQ(A, B)); break;                                     \
        case OP_NE: CMP_LOOPS(T, av, bv, bc, !EQ(A, B)); break;                                    \
        case OP_LT: CMP_LOOPS(T, av, bv, bc, LT(A, B)); break;                                     \
        case OP_LE: CMP_LOOPS(T, av, bv, bc, !LT(B, A)); break;                                    \
        case OP_GT: CMP_LOOPS(T, av, bv, bc, LT(B, A)); break;                                     \
        default: CMP_LOOPS(T, av, bv, bc, !LT(A, B)); break;                                       \
        }                                                                                          \
    } while (0)

/* int64 comparisons as arithmetic on the bits: unlike == and <, these
 * vectorize without SSE4's 64-bit compares. */
static inline uint8_t
ieq(int64_t a, int64_t b)
{
    uint64_t x = (uint64_t)a ^ (uint64_t)b;
    return (uint8_t)(((x | (0 - x)) >> 63) ^ 1);
}

static inline uint8_t
ilt(int64_t a, int64_t b)
{
    uint64_t x = (uint64_t)a, y = (uint64_t)b, d = x - y;
    return (uint8_t)((d ^ ((x ^ y) & (d ^ x))) >> 63);
}

#define IEQ(A, B) ((A) == (B))
#define ILT(A, B) ((A) < (B))

/* r[i] = a[i] op b[i] over values only (validity is the caller's); a is
 * not constant, b may be. */
static void
cmp_kernel(int op, int phys, const lm_vec *a, const lm_vec *b, uint32_t n, uint8_t *r)
{
    switch (phys) {
    case P_I64: {
        const int64_t *av = a->v, *bv = b->v;
        CMP_OPS(int64_t, av, bv, b->c.i, ieq, ilt);
        return;
    }
    case P_F64: {
        const double *av = a->v, *bv = b->v;
        CMP_OPS(double, av, bv, b->c.f, feq, flt);
        return;
    }
    case P_BOOL: {
        const uint8_t *av = a->v, *bv = b->v;
        CMP_OPS(uint8_t, av, bv, (uint8_t)b->c.i, IEQ, ILT);
        return;
    }
    default: break;
    }
    for (uint32_t i = 0; i < n; i++) {
        lm_sv A = vsv(a, i), B = vsv(b, i);
        int c;
        switch (op) {
        case OP_EQ: r[i] = sveq(A, B); continue;
        case OP_NE: r[i] = !sveq(A, B); continue;
        default: break;
        }
        c = svcmp(A, B);
        r[i] = op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
    }
}

static int
ev_cmp(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    lm_vec a, b;
    int op = e->op;
    uint8_t *r;

    TRY(ev(x, e->args[0], act, &a));
    TRY(ev(x, e->args[1], act, &b));
    if (cnull(&a) || cnull(&b)) {
        set_null(out, P_BOOL);
        return LM_OK;
    }
    if (a.cst && !b.cst) {
        lm_vec t = a;
        a = b;
        b = t;
        op = mirror(op);
    } else if (a.cst) {
        TRY(flatten(x, e, B_T1, B_T2, &a));
    }
    SBUF(r, e, B_VAL, x->n);
    cmp_kernel(op, e->argphys, &a, &b, x->n, r);
    out->v = r;
    return and_valid(x, e, a.valid, b.valid, &out->valid);
}

/* mod(x, c) = 0 as a divisibility test: |x| is a multiple of |c| = c0 * 2^k
 * (c0 odd) exactly when rotr(|x| * inv(c0), k) <= (2^64 - 1) / |c|, with
 * inv(c0) the inverse of c0 modulo 2^64 (Granlund and Montgomery). */
static int
ev_divby(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    uint64_t c = e->lit.i < 0 ? 0 - (uint64_t)e->lit.i : (uint64_t)e->lit.i;
    unsigned k = (unsigned)__builtin_ctzll(c), kl = (64 - k) & 63;
    uint64_t c0 = c >> k, inv = c0, lim = UINT64_MAX / c;
    uint8_t flip = e->op == OP_NDIVBY;
    lm_vec a;
    uint8_t *r;

    for (int i = 0; i < 5; i++) {
        inv *= 2 - c0 * inv; /* Newton: doubles the correct low bits */
    }
#if defined(__GNUC__)
    /* Left visible, GCC turns m <= lim back into an overflow-checked
     * multiply by c: a second multiply per row. */
    __asm__("" : "+r"(lim));
#endif
    TRY(ev(x, e->args[0], act, &a));
    if (cnull(&a)) {
        set_null(out, P_BOOL);
        return LM_OK;
    }
    TRY(flatten(x, e, B_T1, B_T2, &a));
    SBUF(r, e, B_VAL, n);
    const int64_t *av = a.v;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t u = av[i] < 0 ? 0 - (uint64_t)av[i] : (uint64_t)av[i];
        uint64_t m = u * inv;
        m = (m >> k) | (m << kl);
        r[i] = (uint8_t)((m <= lim) ^ flip);
    }
    out->v = r;
    out->valid = a.valid;
    return LM_OK;
}

/* --- logic ------------------------------------------------------------------- */

static int
ev_andor(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    uint8_t ia = e->op == OP_AND; /* 1: and, 0: or */
    uint8_t *rv, *rvl, *m;
    bool allv; /* no NULL in the result so far (rvl not filled) */
    lm_vec a;

    SBUF(rv, e, B_VAL, n);
    SBUF(rvl, e, B_VALID, n);
    TRY(ev(x, e->args[0], act, &a));
    TRY(flatten(x, e, B_T1, B_T2, &a));
    memcpy(rv, a.v, n);
    allv = a.valid == NULL;
    if (!allv) {
        memcpy(rvl, a.valid, n);
    }
    for (uint32_t k = 1; k < e->nargs; k++) {
        const uint8_t *cact = act;
        lm_vec b;
        if (e->args[k]->may_err) {
            /* Rows still undecided (and: not FALSE; or: not TRUE) are the
             * ones where the argument's errors count. */
            uint8_t any = 0;
            SBUF(m, e, B_MASK, n);
            if (allv) {
                for (uint32_t i = 0; i < n; i++) {
                    m[i] = rv[i] ^ ia ^ 1;
                }
            } else {
                for (uint32_t i = 0; i < n; i++) {
                    m[i] = (rvl[i] & (rv[i] ^ ia)) ^ 1;
                }
            }
            if (act != NULL) {
                for (uint32_t i = 0; i < n; i++) {
                    m[i] &= act[i];
                }
            }
            for (uint32_t i = 0; i < n; i++) {
                any |= m[i];
            }
            if (!any) {
                break;
            }
            cact = m;
        }
        TRY(ev(x, e->args[k], cact, &b));
        TRY(flatten(x, e, B_T1, B_T2, &b));
        const uint8_t *bv = b.v, *bvl = b.valid;
        if (allv && bvl == NULL) {
            if (ia) {
                for (uint32_t i = 0; i < n; i++) {
                    rv[i] &= bv[i];
                }
            } else {
                for (uint32_t i = 0; i < n; i++) {
                    rv[i] |= bv[i];
                }
            }
            continue;
        }
        if (allv) {
            memset(rvl, 1, n);
            allv = false;
        }
        if (bvl == NULL && ia) { /* b never NULL: NULL stays only where b is TRUE */
            for (uint32_t i = 0; i < n; i++) {
                rvl[i] |= bv[i] ^ 1;
                rv[i] &= bv[i];
            }
        } else if (bvl == NULL) { /* or: NULL stays only where b is FALSE */
            for (uint32_t i = 0; i < n; i++) {
                rvl[i] |= bv[i];
                rv[i] |= bv[i];
            }
        } else if (ia) {
            for (uint32_t i = 0; i < n; i++) {
                rvl[i] = (rvl[i] & bvl[i]) | (rvl[i] & (rv[i] ^ 1)) | (bvl[i] & (bv[i] ^ 1));
                rv[i] &= bv[i];
            }
        } else {
            for (uint32_t i = 0; i < n; i++) {
                rvl[i] = (rvl[i] & bvl[i]) | (rvl[i] & rv[i]) | (bvl[i] & bv[i]);
                rv[i] |= bv[i];
            }
        }
    }
    out->v = rv;
    out->valid = allv ? NULL : rvl;
    return LM_OK;
}

static int
ev_not(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    lm_vec a;
    uint8_t *r;

    TRY(ev(x, e->args[0], act, &a));
    if (a.cst) {
        *out = a;
        out->c.i = !a.c.i;
        return LM_OK;
    }
    SBUF(r, e, B_VAL, x->n);
    const uint8_t *av = a.v;
    for (uint32_t i = 0; i < x->n; i++) {
        r[i] = av[i] ^ 1;
    }
    out->v = r;
    out->valid = a.valid;
    return LM_OK;
}

static int
ev_isnull(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    lm_vec a;
    uint8_t want = e->op == OP_ISNULL ? 0 : 1; /* the validity that gives TRUE */
    uint8_t *r;

    TRY(ev(x, e->args[0], act, &a));
    if (a.cst || a.valid == NULL) {
        set_const_bool(out, vvalid(&a, 0) == want);
        return LM_OK;
    }
    SBUF(r, e, B_VAL, x->n);
    for (uint32_t i = 0; i < x->n; i++) {
        r[i] = a.valid[i] ^ want ^ 1;
    }
    out->v = r;
    return LM_OK;
}

/* One 3VL comparison of x with y into r (values) and rvl (validity). */
static int
cmp3(ectx *x, const lm_expr *e, int op, int phys, const lm_vec *a, const lm_vec *b, uint8_t *r,
     uint8_t *rvl)
{
    uint32_t n = x->n;

    if (cnull(b)) {
        memset(r, 0, n);
        memset(rvl, 0, n);
        return LM_OK;
    }
    cmp_kernel(op, phys, a, b, n, r);
    for (uint32_t i = 0; i < n; i++) {
        rvl[i] = (uint8_t)(vvalid(a, i) & vvalid(b, i));
    }
    (void)e;
    return LM_OK;
}

static int
ev_between(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    lm_vec v, lo, hi;
    uint8_t *ge, *gel, *le, *lel;

    TRY(ev(x, e->args[0], act, &v));
    TRY(ev(x, e->args[1], act, &lo));
    TRY(ev(x, e->args[2], act, &hi));
    if (cnull(&v)) {
        set_null(out, P_BOOL);
        return LM_OK;
    }
    TRY(flatten(x, e, B_T4, B_MASK, &v));
    SBUF(ge, e, B_T1, n);
    SBUF(le, e, B_T2, n);
    SBUF(gel, e, B_T3, n);
    SBUF(lel, e, B_VALID, n);
    TRY(cmp3(x, e, OP_GE, e->argphys, &v, &lo, ge, gel));
    TRY(cmp3(x, e, OP_LE, e->argphys, &v, &hi, le, lel));
    uint8_t flip = e->op == OP_NOTBETWEEN;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t vl = (gel[i] & lel[i]) | (gel[i] & (ge[i] ^ 1)) | (lel[i] & (le[i] ^ 1));
        ge[i] = (ge[i] & le[i]) ^ flip;
        lel[i] = vl;
    }
    out->v = ge;
    out->valid = lel;
    return LM_OK;
}

/* Total order for the float IN list. */
static inline int
fcmp(double a, double b)
{
    return flt(a, b) ? -1 : flt(b, a) ? 1 : 0;
}

static bool
inset_has(const lm_inset *s, int phys, const lm_vec *v, uint32_t i)
{
    uint32_t lo = 0, hi = s->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c;
        switch (phys) {
        case P_F64: c = fcmp(s->f[mid], vf64(v, i)); break;
        case P_STR: c = svcmp(s->s[mid], vsv(v, i)); break;
        case P_BOOL: {
            int64_t a = s->i[mid], b = vbool(v, i);
            c = (a > b) - (a < b);
            break;
        }
        default: {
            int64_t a = s->i[mid], b = vi64(v, i);
            c = (a > b) - (a < b);
            break;
        }
        }
        if (c == 0) {
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

static int
ev_in(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    uint8_t flip = e->op == OP_NOTIN;
    uint8_t *r, *rvl;
    lm_vec v;

    TRY(ev(x, e->args[0], act, &v));
    if (cnull(&v)) {
        set_null(out, P_BOOL);
        return LM_OK;
    }
    SBUF(r, e, B_VAL, n);
    SBUF(rvl, e, B_VALID, n);
    if (e->inset != NULL) {
        const lm_inset *s = e->inset;
        uint8_t nul = s->has_null;
        if (e->argphys == P_I64 && !v.cst) {
            const int64_t *xv = v.v;
            for (uint32_t i = 0; i < n; i++) {
                uint32_t lo = 0, hi = s->n;
                int64_t k = xv[i];
                while (lo < hi) {
                    uint32_t mid = lo + (hi - lo) / 2;
                    if (s->i[mid] < k) {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                uint8_t f = lo < s->n && s->i[lo] == k;
                r[i] = f ^ flip;
                rvl[i] = (uint8_t)((v.valid != NULL ? v.valid[i] : 1) & (f | (nul ^ 1)));
            }
        } else {
            for (uint32_t i = 0; i < n; i++) {
                uint8_t f = inset_has(s, e->argphys, &v, i);
                r[i] = f ^ flip;
                rvl[i] = (uint8_t)(vvalid(&v, i) & (f | (nul ^ 1)));
            }
        }
        out->v = r;
        out->valid = rvl;
        return LM_OK;
    }
    /* General: OR of the equalities, three-valued. */
    uint8_t *eq, *eql;
    SBUF(eq, e, B_T1, n);
    SBUF(eql, e, B_T2, n);
    TRY(flatten(x, e, B_T3, B_T4, &v));
    memset(r, 0, n);
    memset(rvl, 1, n);
    for (uint32_t k = 1; k < e->nargs; k++) {
        lm_vec item;
        TRY(ev(x, e->args[k], act, &item));
        TRY(cmp3(x, e, OP_EQ, e->argphys, &v, &item, eq, eql));
        for (uint32_t i = 0; i < n; i++) {
            rvl[i] = (rvl[i] & eql[i]) | (rvl[i] & r[i]) | (eql[i] & eq[i]);
            r[i] |= eq[i];
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        r[i] ^= flip;
    }
    out->v = r;
    out->valid = rvl;
    return LM_OK;
}

/* --- strings ----------------------------------------------------------------- */

static int
ev_like(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    uint8_t flip = e->op == OP_NOTLIKE;
    lm_vec s, p;
    uint8_t *r;

    if (e->like_null) {
        set_null(out, P_BOOL);
        return LM_OK;
    }
    TRY(ev(x, e->args[0], act, &s));
    if (cnull(&s)) {
        set_null(out, P_BOOL);
        return LM_OK;
    }
    TRY(flatten(x, e, B_T1, B_T2, &s));
    SBUF(r, e, B_VAL, n);
    out->v = r;
    if (e->like != NULL) {
        const lm_like *l = e->like;
        const uint8_t *lit = l->lit;
        uint32_t len = l->len;
        out->valid = s.valid;
        /* The common shapes get their own loops; the rest call the matcher. */
#define LIKE_LOOP(MATCH)                                                                           \
    do {                                                                                           \
        if (s.off != NULL) {                                                                       \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                const uint8_t *P = s.data + s.off[i];                                              \
                uint32_t N = (uint32_t)(s.off[i + 1] - s.off[i]);                                  \
                r[i] = (uint8_t)((MATCH) ^ flip);                                                  \
            }                                                                                      \
        } else {                                                                                   \
            const lm_sv *sv = s.v;                                                                 \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                const uint8_t *P = sv[i].p;                                                        \
                uint32_t N = sv[i].n;                                                              \
                r[i] = (uint8_t)((MATCH) ^ flip);                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)
        switch (l->kind) {
        case LK_ALL: LIKE_LOOP(((void)P, (void)N, 1)); break;
        case LK_EXACT: LIKE_LOOP(N == len && (len == 0 || memcmp(P, lit, len) == 0)); break;
        case LK_PREFIX: LIKE_LOOP(N >= len && memcmp(P, lit, len) == 0); break;
        case LK_SUFFIX: LIKE_LOOP(N >= len && memcmp(P + N - len, lit, len) == 0); break;
        case LK_CONTAINS:
            if (len == 0) {
                LIKE_LOOP(((void)P, (void)N, 1));
            } else if (len == 1) {
                LIKE_LOOP(N > 0 && memchr(P, lit[0], N) != NULL);
            } else {
                LIKE_LOOP(lm_find(P, N, lit, len) != NULL);
            }
            break;
        default: LIKE_LOOP(lm_like_match(l, P, N)); break;
        }
#undef LIKE_LOOP
        return LM_OK;
    }
    /* Per-row pattern. */
    const uint8_t *esc = NULL;
    uint32_t esclen = 0;
    uint8_t *rvl, *bad;
    if (e->nargs == 3) {
        esc = e->args[2]->lit.s.p;
        esclen = e->args[2]->lit.s.n;
    }
    TRY(ev(x, e->args[1], act, &p));
    if (cnull(&p)) {
        set_null(out, P_BOOL);
        return LM_OK;
    }
    SBUF(rvl, e, B_VALID, n);
    SBUF(bad, e, B_T3, n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t vl = (uint8_t)(vvalid(&s, i) & vvalid(&p, i));
        int m = 0;
        bad[i] = 0;
        if (vl) {
            lm_sv a = vsv(&s, i), b = vsv(&p, i);
            m = lm_like_match_raw(a.p, a.n, b.p, b.n, esc, esclen);
            if (m < 0) {
                bad[i] = 1;
                m = 0;
            }
        }
        r[i] = (uint8_t)(m ^ flip);
        rvl[i] = vl;
    }
    return finish_bad(x, e, rvl, bad, act, out);
}

/* Upper bound of the bytes of the valid rows of a string vector. */
static size_t
str_bytes(const lm_vec *v, uint32_t n)
{
    size_t t = 0;

    if (v->off != NULL) {
        return n > 0 ? (size_t)(v->off[n] - v->off[0]) : 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        t += vvalid(v, i) ? vsv(v, i).n : 0;
    }
    return t;
}

static int
ev_case_conv(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    uint8_t base = e->op == OP_LOWER ? 'A' : 'a';
    lm_vec s;
    uint8_t *d;
    lm_sv *o;
    size_t pos = 0;

    TRY(ev(x, e->args[0], act, &s));
    if (cnull(&s)) {
        set_null(out, P_STR);
        return LM_OK;
    }
    TRY(flatten(x, e, B_T1, B_T2, &s));
    SBUF(d, e, B_DATA, str_bytes(&s, n) + 1);
    SBUF(o, e, B_VAL, (size_t)n * sizeof(lm_sv));
    for (uint32_t i = 0; i < n; i++) {
        lm_sv v = vvalid(&s, i) ? vsv(&s, i) : (lm_sv){empty_bytes, 0};
        uint8_t *dst = d + pos;
        for (uint32_t j = 0; j < v.n; j++) {
            uint8_t c = v.p[j];
            dst[j] = (uint8_t)(c ^ ((uint8_t)((uint8_t)(c - base) < 26) << 5));
        }
        o[i].p = dst;
        o[i].n = v.n;
        pos += v.n;
    }
    out->v = o;
    out->valid = s.valid;
    return LM_OK;
}

/* The bytes of characters [from, to) (1-based, from >= 1) of s. */
static lm_sv
u8_slice(lm_sv s, uint64_t from, uint64_t to, bool bytes)
{
    const uint8_t *p = s.p, *end = s.p + s.n, *q;

    if (bytes) {
        uint64_t a = from - 1 < s.n ? from - 1 : s.n;
        uint64_t b = to - 1 < s.n ? to - 1 : s.n;
        return (lm_sv){s.p + a, (uint32_t)(b - a)};
    }
    p = lm_u8_skip(p, end, from - 1);
    q = lm_u8_skip(p, end, to - from);
    return (lm_sv){p, (uint32_t)(q - p)};
}

static int
ev_substr(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    bool has_len = e->nargs == 3, bytes = e->args[0]->type == LM_TYPE_BINARY;
    lm_vec s, st, ln;
    lm_sv *o;
    uint8_t *vl, *bad;

    TRY(ev(x, e->args[0], act, &s));
    TRY(ev(x, e->args[1], act, &st));
    if (has_len) {
        TRY(ev(x, e->args[2], act, &ln));
    } else {
        set_null(&ln, P_I64);
        ln.c.null = false;
        ln.c.i = INT64_MAX;
    }
    if (cnull(&s) || cnull(&st) || cnull(&ln)) {
        set_null(out, P_STR);
        return LM_OK;
    }
    SBUF(o, e, B_VAL, (size_t)n * sizeof(lm_sv));
    if (st.cst && ln.cst && ln.c.i >= 0) { /* the usual substr(s, 1, 10): one window */
        int64_t start = st.c.i, len = ln.c.i;
        int64_t to = start > INT64_MAX - len ? INT64_MAX : start + len;
        int64_t from = start < 1 ? 1 : start;
        TRY(flatten(x, e, B_T1, B_T2, &s));
        for (uint32_t i = 0; i < n; i++) {
            o[i] = to > from ? u8_slice(vsv(&s, i), (uint64_t)from, (uint64_t)to, bytes)
                             : (lm_sv){empty_bytes, 0};
        }
        out->v = o;
        out->valid = s.valid;
        return LM_OK;
    }
    SBUF(vl, e, B_VALID, n);
    SBUF(bad, e, B_T1, n);
    for (uint32_t i = 0; i < n; i++) {
        int64_t start = vi64(&st, i), len = vi64(&ln, i);
        vl[i] = (uint8_t)(vvalid(&s, i) & vvalid(&st, i) & vvalid(&ln, i));
        bad[i] = has_len && len < 0;
        o[i] = (lm_sv){empty_bytes, 0};
        if (!vl[i] || bad[i]) {
            continue;
        }
        /* window [start, start + len) clipped to [1, inf) */
        int64_t to = !has_len ? INT64_MAX : start > INT64_MAX - len ? INT64_MAX : start + len;
        int64_t from = start < 1 ? 1 : start;
        if (to > from) {
            o[i] = u8_slice(vsv(&s, i), (uint64_t)from, (uint64_t)to, bytes);
        }
    }
    out->v = o;
    return finish_bad(x, e, vl, bad, act, out);
}

static int
ev_concat(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n, na = e->nargs;
    lm_vec *a;
    uint8_t *vl, *d, any_null = 0;
    lm_sv *o;
    size_t total = 0, pos = 0;
    lm_vec argv[8];

    /* Argument vectors: a few on the stack, more in scratch. */
    if (na <= 8) {
        a = argv;
    } else {
        SBUF(a, e, B_T2, na * sizeof(lm_vec));
    }
    for (uint32_t k = 0; k < na; k++) {
        TRY(ev(x, e->args[k], act, &a[k]));
        if (cnull(&a[k])) {
            set_null(out, P_STR);
            return LM_OK;
        }
    }
    SBUF(vl, e, B_VALID, n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t v = 1;
        size_t len = 0;
        for (uint32_t k = 0; k < na; k++) {
            v &= vvalid(&a[k], i);
            len += vsv(&a[k], i).n;
        }
        vl[i] = v;
        any_null |= v ^ 1;
        total += v ? len : 0;
    }
    if (total > INT32_MAX) {
        return lm_error_set(x->err, LM_ETOOBIG, "concat: result of %zu bytes is too large", total);
    }
    SBUF(d, e, B_DATA, total + 1);
    SBUF(o, e, B_VAL, (size_t)n * sizeof(lm_sv));
    for (uint32_t i = 0; i < n; i++) {
        size_t start = pos;
        if (vl[i]) {
            for (uint32_t k = 0; k < na; k++) {
                lm_sv v = vsv(&a[k], i);
                if (v.n > 0) {
                    memcpy(d + pos, v.p, v.n);
                }
                pos += v.n;
            }
        }
        o[i] = (lm_sv){d + start, (uint32_t)(pos - start)};
    }
    out->v = o;
    out->valid = any_null ? vl : NULL;
    return LM_OK;
}

static int
ev_length(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    bool bytes = e->args[0]->type == LM_TYPE_BINARY;
    lm_vec s;
    int64_t *r;

    TRY(ev(x, e->args[0], act, &s));
    if (cnull(&s)) {
        set_null(out, P_I64);
        return LM_OK;
    }
    SBUF(r, e, B_VAL, (size_t)n * 8);
    for (uint32_t i = 0; i < n; i++) {
        lm_sv v = vsv(&s, i);
        r[i] = bytes ? v.n : lm_u8count(v.p, v.n);
    }
    out->v = r;
    out->valid = s.cst ? NULL : s.valid;
    return LM_OK;
}

static int
ev_trim(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    bool left = e->op != OP_RTRIM, right = e->op != OP_LTRIM;
    lm_vec s;
    lm_sv *o;

    TRY(ev(x, e->args[0], act, &s));
    if (cnull(&s)) {
        set_null(out, P_STR);
        return LM_OK;
    }
    SBUF(o, e, B_VAL, (size_t)n * sizeof(lm_sv));
    for (uint32_t i = 0; i < n; i++) {
        lm_sv v = vsv(&s, i);
        while (left && v.n > 0 && v.p[0] == ' ') {
            v.p++;
            v.n--;
        }
        while (right && v.n > 0 && v.p[v.n - 1] == ' ') {
            v.n--;
        }
        o[i] = v;
    }
    out->v = o;
    out->valid = s.cst ? NULL : s.valid;
    return LM_OK;
}

/* --- case and coalesce ------------------------------------------------------------ */

static size_t
phys_width(int phys)
{
    return phys == P_BOOL ? 1 : phys == P_STR ? sizeof(lm_sv) : 8;
}

/* For the rows with sel[i] (all rows when sel is NULL), copies the value
 * and validity of v into dst and dvl. */
static void
blend(int phys, void *dst, uint8_t *dvl, const lm_vec *v, const uint8_t *sel, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (sel != NULL && !sel[i]) {
            continue;
        }
        bool ok = vvalid(v, i);
        dvl[i] = ok;
        switch (phys) {
        case P_BOOL: ((uint8_t *)dst)[i] = ok ? vbool(v, i) : 0; break;
        case P_I64: ((int64_t *)dst)[i] = ok ? vi64(v, i) : 0; break;
        case P_F64: ((double *)dst)[i] = ok ? vf64(v, i) : 0; break;
        default: ((lm_sv *)dst)[i] = ok ? vsv(v, i) : (lm_sv){empty_bytes, 0}; break;
        }
    }
}

/* Zeroes (or empties) every value of dst and nulls every row of dvl. */
static void
clear_values(int phys, void *dst, uint8_t *dvl, uint32_t n)
{
    memset(dvl, 0, n);
    if (phys == P_STR) {
        for (uint32_t i = 0; i < n; i++) {
            ((lm_sv *)dst)[i] = (lm_sv){empty_bytes, 0};
        }
    } else {
        memset(dst, 0, phys_width(phys) * n);
    }
}

static int
ev_case(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n, npairs = (e->nargs - (e->has_else ? 1 : 0)) / 2;
    void *res;
    uint8_t *rvl, *rem, *cond, left = 0;

    SBUF(res, e, B_VAL, phys_width(e->phys) * n);
    SBUF(rvl, e, B_VALID, n);
    SBUF(rem, e, B_MASK, n);
    SBUF(cond, e, B_T1, n);
    clear_values(e->phys, res, rvl, n);
    for (uint32_t i = 0; i < n; i++) {
        rem[i] = act_at(act, i);
        left |= rem[i];
    }
    for (uint32_t k = 0; k < npairs && left; k++) {
        lm_vec w, t;
        uint8_t anyc = 0;
        TRY(ev(x, e->args[2 * k], rem, &w));
        for (uint32_t i = 0; i < n; i++) {
            cond[i] = (uint8_t)(rem[i] & vvalid(&w, i) & vbool(&w, i));
            anyc |= cond[i];
        }
        if (!anyc) {
            continue;
        }
        TRY(ev(x, e->args[2 * k + 1], cond, &t));
        blend(e->phys, res, rvl, &t, cond, n);
        left = 0;
        for (uint32_t i = 0; i < n; i++) {
            rem[i] &= cond[i] ^ 1;
            left |= rem[i];
        }
    }
    if (e->has_else && left) {
        lm_vec el;
        TRY(ev(x, e->args[e->nargs - 1], rem, &el));
        blend(e->phys, res, rvl, &el, rem, n);
    }
    out->v = res;
    out->valid = rvl;
    return LM_OK;
}

static int
ev_coalesce(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    void *res;
    uint8_t *rvl, *rem;
    lm_vec a;

    TRY(ev(x, e->args[0], act, &a));
    if (e->nargs == 1 || (a.cst && !a.c.null) || (!a.cst && a.valid == NULL)) {
        *out = a;
        return LM_OK;
    }
    SBUF(res, e, B_VAL, phys_width(e->phys) * n);
    SBUF(rvl, e, B_VALID, n);
    SBUF(rem, e, B_MASK, n);
    blend(e->phys, res, rvl, &a, NULL, n);
    for (uint32_t k = 1; k < e->nargs; k++) {
        uint8_t left = 0;
        for (uint32_t i = 0; i < n; i++) {
            rem[i] = act_at(act, i) & (rvl[i] ^ 1);
            left |= rem[i];
        }
        if (!left) {
            break;
        }
        TRY(ev(x, e->args[k], rem, &a));
        blend(e->phys, res, rvl, &a, rem, n);
    }
    out->v = res;
    out->valid = rvl;
    return LM_OK;
}

/* --- cast -------------------------------------------------------------------------- */

static int
ev_cast(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    uint32_t n = x->n;
    int from = e->args[0]->type, to = e->type;
    lm_vec a;
    uint8_t *bad = NULL;

    TRY(ev(x, e->args[0], act, &a));
    if (cnull(&a)) {
        set_null(out, e->phys);
        return LM_OK;
    }
    if (e->args[0]->phys == e->phys && !(from == LM_TYPE_BINARY && to == LM_TYPE_UTF8)) {
        *out = a; /* int64/timestamp/interval; utf8 -> binary */
        out->phys = e->phys;
        return LM_OK;
    }
    TRY(flatten(x, e, B_T2, B_T3, &a));
    out->valid = a.valid;
    if (to == LM_TYPE_UTF8 && from != LM_TYPE_BINARY) {
        uint8_t *d;
        lm_sv *o;
        size_t pos = 0;
        SBUF(d, e, B_DATA, (size_t)n * LM_FMT_MAX + 1);
        SBUF(o, e, B_VAL, (size_t)n * sizeof(lm_sv));
        for (uint32_t i = 0; i < n; i++) {
            uint32_t len = 0;
            if (vvalid(&a, i)) {
                switch (from) {
                case LM_TYPE_INT64: len = lm_fmt_i64(vi64(&a, i), d + pos); break;
                case LM_TYPE_FLOAT64: len = lm_fmt_f64(vf64(&a, i), d + pos); break;
                case LM_TYPE_TIMESTAMP: len = lm_fmt_ts(vi64(&a, i), d + pos); break;
                default:
                    len = vbool(&a, i) ? 4 : 5;
                    memcpy(d + pos, vbool(&a, i) ? "true" : "false", len);
                    break;
                }
            }
            o[i] = (lm_sv){d + pos, len};
            pos += len;
        }
        out->v = o;
        return LM_OK;
    }
    if (from == LM_TYPE_BINARY) { /* to utf8: only valid UTF-8 */
        SBUF(bad, e, B_T1, n);
        for (uint32_t i = 0; i < n; i++) {
            lm_sv v = vsv(&a, i);
            bad[i] = !lm_utf8_valid(v.p, v.n);
        }
        out->v = a.v;
        out->off = a.off;
        out->data = a.data;
        return finish_bad(x, e, a.valid, bad, act, out);
    }
    if (from == LM_TYPE_UTF8) {
        void *r;
        SBUF(r, e, B_VAL, (size_t)n * 8);
        SBUF(bad, e, B_T1, n);
        for (uint32_t i = 0; i < n; i++) {
            lm_sv v = vsv(&a, i);
            bool ok = false, bv = false;
            int64_t iv = 0;
            double fv = 0;
            switch (to) {
            case LM_TYPE_INT64: ok = lm_parse_i64(v.p, v.n, &iv); break;
            case LM_TYPE_FLOAT64: ok = lm_parse_f64(v.p, v.n, &fv); break;
            case LM_TYPE_TIMESTAMP: ok = lm_parse_ts(v.p, v.n, &iv); break;
            default:
                ok = lm_parse_bool(v.p, v.n, &bv);
                iv = bv;
                break;
            }
            bad[i] = !ok;
            if (to == LM_TYPE_BOOL) {
                ((uint8_t *)r)[i] = (uint8_t)(ok && iv);
            } else if (to == LM_TYPE_FLOAT64) {
                ((double *)r)[i] = ok ? fv : 0;
            } else {
                ((int64_t *)r)[i] = ok ? iv : 0;
            }
        }
        out->v = r;
        return finish_bad(x, e, a.valid, bad, act, out);
    }
    if (from == LM_TYPE_FLOAT64) { /* to int64 */
        const double *av = a.v;
        int64_t *r;
        SBUF(r, e, B_VAL, (size_t)n * 8);
        SBUF(bad, e, B_T1, n);
        for (uint32_t i = 0; i < n; i++) {
            double f = av[i];
            uint8_t ok = (uint8_t)((f >= -9223372036854775808.0) & (f < 9223372036854775808.0));
            r[i] = ok ? (int64_t)f : 0;
            bad[i] = ok ^ 1;
        }
        out->v = r;
        return finish_bad(x, e, a.valid, bad, act, out);
    }
    if (to == LM_TYPE_FLOAT64) { /* from int64 */
        const int64_t *av = a.v;
        double *r;
        SBUF(r, e, B_VAL, (size_t)n * 8);
        for (uint32_t i = 0; i < n; i++) {
            r[i] = (double)av[i];
        }
        out->v = r;
        return LM_OK;
    }
    if (to == LM_TYPE_BOOL) { /* from int64 */
        const int64_t *av = a.v;
        uint8_t *r;
        SBUF(r, e, B_VAL, n);
        for (uint32_t i = 0; i < n; i++) {
            r[i] = av[i] != 0;
        }
        out->v = r;
        return LM_OK;
    }
    /* bool -> int64 */
    const uint8_t *av = a.v;
    int64_t *r;
    SBUF(r, e, B_VAL, (size_t)n * 8);
    for (uint32_t i = 0; i < n; i++) {
        r[i] = av[i];
    }
    out->v = r;
    return LM_OK;
}

/* --- dispatch ---------------------------------------------------------------------- */

static int
ev(ectx *x, const lm_expr *e, const uint8_t *act, lm_vec *out)
{
    memset(out, 0, sizeof(*out));
    out->phys = e->phys;
    switch (e->kind) {
    case K_LIT:
        out->cst = true;
        out->c = e->lit;
        return LM_OK;
    case K_COL: return ev_col(x, e, out);
    case K_CAST: return ev_cast(x, e, act, out);
    case K_CASE: return ev_case(x, e, act, out);
    default: break;
    }
    switch (e->op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_MOD: return ev_arith(x, e, act, out);
    case OP_NEG:
    case OP_ABS: return ev_negabs(x, e, act, out);
    case OP_EQ:
    case OP_NE:
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: return ev_cmp(x, e, act, out);
    case OP_AND:
    case OP_OR: return ev_andor(x, e, act, out);
    case OP_NOT: return ev_not(x, e, act, out);
    case OP_ISNULL:
    case OP_ISNOTNULL: return ev_isnull(x, e, act, out);
    case OP_BETWEEN:
    case OP_NOTBETWEEN: return ev_between(x, e, act, out);
    case OP_IN:
    case OP_NOTIN: return ev_in(x, e, act, out);
    case OP_LIKE:
    case OP_NOTLIKE: return ev_like(x, e, act, out);
    case OP_LOWER:
    case OP_UPPER: return ev_case_conv(x, e, act, out);
    case OP_SUBSTR: return ev_substr(x, e, act, out);
    case OP_CONCAT: return ev_concat(x, e, act, out);
    case OP_LENGTH: return ev_length(x, e, act, out);
    case OP_TRIM:
    case OP_LTRIM:
    case OP_RTRIM: return ev_trim(x, e, act, out);
    case OP_COALESCE: return ev_coalesce(x, e, act, out);
    case OP_DIVBY:
    case OP_NDIVBY: return ev_divby(x, e, act, out);
    default: return lm_error_set(x->err, LM_EINVAL, "unknown operator %d", e->op);
    }
}

int
lm_expr_run(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, uint32_t n, lm_vec *out,
            lm_error *err)
{
    ectx x = {ctx, in, n, err};

    if (ctx->nslots < e->nslots) {
        lm_slot *s = realloc(ctx->slots, e->nslots * sizeof(lm_slot));
        if (s == NULL) {
            return lm_error_set(err, LM_ENOMEM, "out of memory for expression scratch");
        }
        memset(s + ctx->nslots, 0, (e->nslots - ctx->nslots) * sizeof(lm_slot));
        ctx->slots = s;
        ctx->nslots = e->nslots;
    }
    return ev(&x, e, NULL, out);
}

/* --- public evaluation ------------------------------------------------------------------ */

/* Sets or clears the validity bits of rows [base, base + n) of column col
 * from v, creating the bitmap through lm_batch_put_null at the first null. */
static int
put_validity(lm_batch *out, uint32_t col, uint32_t base, const lm_vec *v, uint32_t n)
{
    lm_column *c = &out->cols[col];
    uint32_t i = 0;

    if (c->validity == NULL) {
        while (i < n && vvalid(v, i)) {
            i++;
        }
        if (i == n) {
            return LM_OK;
        }
        if (lm_batch_put_null(out, col, base + i) != LM_OK) {
            return LM_ENOMEM;
        }
        i++;
    }
    for (; i < n; i++) {
        uint32_t r = base + i;
        if (vvalid(v, i)) {
            c->validity[r >> 3] |= (uint8_t)(1u << (r & 7));
        } else {
            c->validity[r >> 3] &= (uint8_t) ~(1u << (r & 7));
            c->null_count++;
        }
    }
    return LM_OK;
}

/* Checks that in and e fit, then evaluates. */
static int
run_checked(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, lm_vec *v, lm_error *err)
{
    if (ctx == NULL || e == NULL || in == NULL) {
        return lm_error_set(err, LM_EINVAL, "expression, context and batch are required");
    }
    return lm_expr_run(ctx, e, in, in->nrows, v, err);
}

int
lm_expr_eval_into(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, lm_batch *out,
                  uint32_t col, lm_error *err)
{
    uint32_t n = in != NULL ? in->nrows : 0, base;
    const lm_field *f;
    lm_vec v;
    int rv;

    if (out == NULL || col >= out->schema->nfields) {
        return lm_error_set(err, LM_EINVAL, "output column %u does not exist", col);
    }
    f = &out->schema->fields[col];
    base = out->nrows;
    if (e != NULL && (int)f->type != e->type) {
        return lm_error_set(err, LM_EINVAL, "output column '%s' is %s but the expression gives %s",
                            f->name, lm_type_name(f->type), lm_expr_tname(e->type));
    }
    if (out->readonly || (uint64_t)base + n > out->capacity) {
        return lm_error_set(err, LM_EINVAL,
                            "output batch has no room for %u rows after %u (reserve first)", n,
                            base);
    }
    if (lm_type_is_varwidth(f->type) && out->cols[col].vcount != base) {
        return lm_error_set(err, LM_EINVAL, "output column '%s' has %u values for %u rows", f->name,
                            out->cols[col].vcount, base);
    }
    if ((rv = run_checked(ctx, e, in, &v, err)) != LM_OK) {
        return rv;
    }
    if (!f->nullable) {
        for (uint32_t i = 0; i < n; i++) {
            if (!vvalid(&v, i)) {
                return lm_error_set(err, LM_EINVAL,
                                    "expression gives NULL (row %u) for non-nullable column '%s'",
                                    i, f->name);
            }
        }
    }
    lm_column *c = &out->cols[col];
    if (v.phys == P_STR) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t r = base + i;
            if (!vvalid(&v, i)) {
                rv = lm_batch_put_null(out, col, r);
            } else {
                lm_sv s = vsv(&v, i);
                rv = lm_batch_put_bytes(out, col, r, s.p, s.n);
                if (rv == LM_OK && c->validity != NULL) {
                    c->validity[r >> 3] |= (uint8_t)(1u << (r & 7));
                }
            }
            if (rv != LM_OK) {
                return lm_error_set(err, rv, "output column '%s': %s", f->name, lm_strerror(rv));
            }
        }
        return LM_OK;
    }
    if (v.cst) {
        for (uint32_t i = 0; i < n; i++) {
            switch (v.phys) {
            case P_BOOL: lm_batch_bools(out, col)[base + i] = (uint8_t)v.c.i; break;
            case P_F64: lm_batch_f64(out, col)[base + i] = v.c.f; break;
            default: lm_batch_i64(out, col)[base + i] = v.c.i; break;
            }
        }
    } else {
        size_t w = phys_width(v.phys);
        memcpy((uint8_t *)c->values + (size_t)base * w, v.v, (size_t)n * w);
    }
    if ((v.cst && v.c.null) || v.valid != NULL || c->validity != NULL) {
        if (put_validity(out, col, base, &v, n) != LM_OK) {
            return lm_error_set(err, LM_ENOMEM, "out of memory for a validity bitmap");
        }
    }
    return LM_OK;
}

int
lm_expr_filter(lm_expr_ctx *ctx, const lm_expr *pred, const lm_batch *in, uint32_t *sel,
               uint32_t *n, lm_error *err)
{
    lm_vec v;
    uint32_t k = 0;
    int rv;

    *n = 0;
    if (pred != NULL && pred->type != LM_TYPE_BOOL) {
        return lm_error_set(err, LM_EINVAL, "filter predicate is %s, not bool",
                            lm_expr_tname(pred->type));
    }
    if ((rv = run_checked(ctx, pred, in, &v, err)) != LM_OK) {
        return rv;
    }
    uint32_t rows = in->nrows;
    if (v.cst) {
        if (!v.c.null && v.c.i) {
            for (uint32_t i = 0; i < rows; i++) {
                sel[i] = i;
            }
            k = rows;
        }
    } else {
        const uint8_t *b = v.v, *vl = v.valid;
        uint32_t i = 0;
        /* eight rows at a time: skip words with no TRUE row, take full ones */
        for (; i + 8 <= rows; i += 8) {
            uint64_t w, x;
            memcpy(&w, b + i, 8);
            if (vl != NULL) {
                memcpy(&x, vl + i, 8);
                w &= x;
            }
            if (w == 0) {
                continue;
            }
            if (w == 0x0101010101010101ull) {
                for (uint32_t j = 0; j < 8; j++) {
                    sel[k + j] = i + j;
                }
                k += 8;
                continue;
            }
            for (uint32_t j = 0; j < 8; j++) {
                sel[k] = i + j;
                k += (uint32_t)(w >> (8 * j)) & 1;
            }
        }
        for (; i < rows; i++) {
            sel[k] = i;
            k += b[i] & (vl != NULL ? vl[i] : 1);
        }
    }
    *n = k;
    return LM_OK;
}

int
lm_expr_eval_i64(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, int64_t *vals,
                 uint8_t *valid, lm_error *err)
{
    lm_vec v;
    int rv;

    if (e != NULL && e->phys != P_I64) {
        return lm_error_set(err, LM_EINVAL, "expression is %s, not a 64-bit integer type",
                            lm_expr_tname(e->type));
    }
    if ((rv = run_checked(ctx, e, in, &v, err)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < in->nrows; i++) {
        valid[i] = vvalid(&v, i);
        vals[i] = valid[i] ? vi64(&v, i) : 0;
    }
    return LM_OK;
}

int
lm_expr_eval_f64(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, double *vals,
                 uint8_t *valid, lm_error *err)
{
    lm_vec v;
    int rv;

    if (e != NULL && e->type != LM_TYPE_FLOAT64 && e->type != LM_TYPE_INT64) {
        return lm_error_set(err, LM_EINVAL, "expression is %s, not float64 or int64",
                            lm_expr_tname(e->type));
    }
    if ((rv = run_checked(ctx, e, in, &v, err)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < in->nrows; i++) {
        valid[i] = vvalid(&v, i);
        vals[i] = !valid[i] ? 0.0 : v.phys == P_F64 ? vf64(&v, i) : (double)vi64(&v, i);
    }
    return LM_OK;
}
