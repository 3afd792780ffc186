/*
 * lm_expr_int.h: internals shared by the expression engine's files
 * (lm_expr.c compiles, lm_expr_eval.c evaluates, lm_expr_fn.c holds the
 * string, pattern, time and number-text helpers). Not for other modules.
 */
#ifndef LM_EXPR_INT_H
#define LM_EXPR_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lm_expr.h"

/* Node kinds. */
enum { K_COL, K_LIT, K_CALL, K_CASE, K_CAST };

/* Operators of K_CALL nodes. */
enum {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_NEG,
    OP_ABS,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_AND,
    OP_OR,
    OP_NOT,
    OP_ISNULL,
    OP_ISNOTNULL,
    OP_BETWEEN,
    OP_NOTBETWEEN,
    OP_IN,
    OP_NOTIN,
    OP_LIKE,
    OP_NOTLIKE,
    OP_LOWER,
    OP_UPPER,
    OP_SUBSTR,
    OP_CONCAT,
    OP_LENGTH,
    OP_TRIM,
    OP_LTRIM,
    OP_RTRIM,
    OP_COALESCE,
    OP_DIVBY,  /* internal: mod(x, c) = 0 with c in lit.i (compiled from = and %) */
    OP_NDIVBY, /* internal: mod(x, c) <> 0 */
};

/* Physical representation of a value. */
enum { P_BOOL, P_I64, P_F64, P_STR };

/* A string value: bytes borrowed from a batch, a literal or scratch. */
typedef struct lm_sv {
    const uint8_t *p; /* bytes (never NULL when the value is not null) */
    uint32_t n;       /* length */
} lm_sv;

/* One value of any type. */
typedef struct lm_scalar {
    bool null; /* the SQL NULL */
    int64_t i; /* bool (0/1), int64, timestamp, interval */
    double f;  /* float64 */
    lm_sv s;   /* utf8, binary */
} lm_scalar;

/* A compiled LIKE pattern. */
enum { LK_EXACT, LK_PREFIX, LK_SUFFIX, LK_CONTAINS, LK_SEGS, LK_ALL, LK_GENERAL };
typedef struct lm_like {
    uint8_t kind;      /* LK_* */
    bool anchor_start; /* LK_SEGS: first segment is a prefix */
    bool anchor_end;   /* LK_SEGS: last segment is a suffix */
    uint32_t nseg;     /* literal segments between %s */
    uint32_t *seg_off; /* segment k is lit[seg_off[k] .. + seg_len[k]) */
    uint32_t *seg_len;
    uint8_t *lit; /* unescaped segment bytes */
    uint32_t len; /* LK_EXACT/PREFIX/SUFFIX/CONTAINS: the one segment's length */
    uint8_t *raw; /* LK_GENERAL: the pattern as written */
    uint32_t rawlen;
    uint8_t esc[4]; /* escape character bytes (esclen 0: none) */
    uint8_t esclen;
} lm_like;

/* The constant list of an IN, sorted and without duplicates. */
typedef struct lm_inset {
    uint32_t n;     /* non-null values */
    bool has_null;  /* a NULL was listed */
    int64_t *i;     /* P_BOOL / P_I64 */
    double *f;      /* P_F64 (total order: NaN last) */
    lm_sv *s;       /* P_STR */
    uint8_t *bytes; /* storage of the strings */
} lm_inset;

struct lm_expr {
    uint8_t kind;    /* K_* */
    uint8_t op;      /* K_CALL: OP_* */
    uint8_t phys;    /* P_* of the result */
    uint8_t argphys; /* K_CALL: P_* the operands share (comparisons, arithmetic, in) */
    int type;        /* lm_type or LM_TYPE_INTERVAL */
    bool nullable;   /* may be NULL */
    bool may_err;    /* evaluating this subtree can count errors */
    bool has_else;   /* K_CASE: last arg is the else */
    uint32_t slot;   /* scratch slot of this node in a context */
    uint32_t nslots; /* slots of the tree below and including this node */
    uint32_t col;    /* K_COL: input column */
    lm_scalar lit;   /* K_LIT: the value (strings point into litbuf) */
    uint8_t *litbuf; /* K_LIT: owned string bytes */
    uint32_t nargs;  /* children */
    lm_expr **args;  /* K_CALL: arguments; K_CASE: when, then, ..., [else]; K_CAST: operand */
    lm_like *like;   /* OP_LIKE/NOTLIKE with a constant pattern */
    lm_inset *inset; /* OP_IN/NOTIN with constant values */
    bool like_null;  /* like: constant pattern or escape is NULL */
};

/* Scratch buffers of one slot. */
enum { B_VAL, B_VALID, B_DATA, B_MASK, B_T1, B_T2, B_T3, B_T4, B_NBUF };
typedef struct lm_slot {
    void *b[B_NBUF];    /* buffers */
    size_t cap[B_NBUF]; /* their sizes in bytes */
} lm_slot;

struct lm_expr_ctx {
    uint64_t errors; /* rows made NULL by errors */
    uint32_t nslots; /* slots allocated */
    lm_slot *slots;  /* one per node of the largest tree seen */
};

/* Type helpers. */
const char *lm_expr_tname(int type);
int lm_expr_phys(int type);

/* Internal evaluation of a whole tree over n rows of in (in may be NULL
 * for a constant tree). On success *out describes the result; its
 * buffers live in ctx (or in, or e) until the next evaluation. */
typedef struct lm_vec {
    uint8_t phys;         /* P_* */
    bool cst;             /* one value for all rows: c */
    lm_scalar c;          /* the value when cst */
    const uint8_t *valid; /* per row 1 = not null; NULL: no nulls (when !cst) */
    const void *v;        /* uint8_t[] / int64_t[] / double[] / lm_sv[]; NULL for column strings */
    const int32_t *off;   /* P_STR taken from a column: offsets */
    const uint8_t *data;  /* and bytes */
} lm_vec;
int lm_expr_run(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, uint32_t n, lm_vec *out,
                lm_error *err);

/* --- lm_expr_fn.c ------------------------------------------------------ */

/* Bytes of the UTF-8 character starting with byte c (1 for a stray byte). */
static inline uint32_t
lm_u8len(uint8_t c)
{
    return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Characters in a UTF-8 string (bytes not continuation bytes). */
uint32_t lm_u8count(const uint8_t *p, uint32_t n);

/* The first occurrence of needle in hay, or NULL. */
const uint8_t *lm_find(const uint8_t *hay, uint32_t hn, const uint8_t *needle, uint32_t nn);

/* The position after k UTF-8 characters from p (or end): the k+1-th
 * character's first byte. */
static inline const uint8_t *
lm_u8_skip(const uint8_t *p, const uint8_t *end, uint64_t k)
{
    /* ASCII runs eight bytes (characters) at a time */
    while (k >= 8 && end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if ((w & 0x8080808080808080ull) != 0) {
            break;
        }
        p += 8;
        k -= 8;
    }
    /* then character by character: stop at the k+1-th lead byte */
    while (p < end) {
        if ((*p & 0xc0) != 0x80) {
            if (k == 0) {
                break;
            }
            k--;
        }
        p++;
    }
    return p;
}

/* Compiles a constant LIKE pattern. Returns LM_OK, LM_ENOMEM, or LM_EINVAL
 * when the pattern ends with the escape character. */
int lm_like_compile(const uint8_t *pat, uint32_t n, const uint8_t *esc, uint32_t esclen,
                    lm_like **out);
void lm_like_free(lm_like *l);
/* Matches s against a compiled pattern. */
bool lm_like_match(const lm_like *l, const uint8_t *s, uint32_t n);
/* Matches s against a pattern as written: 1, 0, or -1 when the pattern
 * ends with the escape character. */
int lm_like_match_raw(const uint8_t *s, uint32_t sn, const uint8_t *p, uint32_t pn,
                      const uint8_t *esc, uint32_t esclen);

/* Text <-> values. Parsers take the bytes (not NUL-terminated), allow
 * surrounding spaces and return false when the text does not parse. */
bool lm_parse_i64(const uint8_t *p, uint32_t n, int64_t *out);
bool lm_parse_f64(const uint8_t *p, uint32_t n, double *out);
bool lm_parse_bool(const uint8_t *p, uint32_t n, bool *out);
bool lm_parse_ts(const uint8_t *p, uint32_t n, int64_t *out);
/* Formatters write at most LM_FMT_MAX bytes (no NUL) and return the length. */
#define LM_FMT_MAX 40
uint32_t lm_fmt_i64(int64_t v, uint8_t *out);
uint32_t lm_fmt_f64(double v, uint8_t *out);
uint32_t lm_fmt_ts(int64_t v, uint8_t *out);

/* Signed 64-bit division by a constant through a multiplier (libdivide's
 * algorithm): d must not be 0 or -1. */
typedef struct lm_sdiv {
    int64_t magic;
    uint8_t more;
} lm_sdiv;
void lm_sdiv_gen(int64_t d, lm_sdiv *out);
/* The three shapes of lm_sdiv_do, for loops that pick one per batch:
 * a power of two, a multiplier that needs the dividend added, and a plain
 * multiplier. sign is all ones for a negative divisor. */
static inline int64_t
lm_sdiv_pow2(int64_t x, uint8_t shift, uint64_t mask, uint64_t sign)
{
    uint64_t uq = (uint64_t)x + ((uint64_t)(x >> 63) & mask);
    int64_t q = (int64_t)uq >> shift;
    return (int64_t)(((uint64_t)q ^ sign) - sign);
}

static inline int64_t
lm_sdiv_add(int64_t x, int64_t magic, uint8_t shift, uint64_t sign)
{
    uint64_t uq = (uint64_t)(int64_t)(((__int128)magic * x) >> 64);
    uq += ((uint64_t)x ^ sign) - sign;
    int64_t q = (int64_t)uq >> shift;
    return (int64_t)((uint64_t)q + (q < 0));
}

static inline int64_t
lm_sdiv_mul(int64_t x, int64_t magic, uint8_t shift)
{
    int64_t q = (int64_t)(((__int128)magic * x) >> 64) >> shift;
    return (int64_t)((uint64_t)q + (q < 0));
}

/* x / d truncated toward zero, for the d that dv was made from. */
static inline int64_t
lm_sdiv_do(int64_t x, lm_sdiv dv)
{
    uint8_t shift = dv.more & 0x3f;
    uint64_t sign = (uint64_t)(int64_t)((int8_t)dv.more >> 7);

    if (dv.magic == 0) {
        return lm_sdiv_pow2(x, shift, ((uint64_t)1 << shift) - 1, sign);
    }
    if (dv.more & 0x40) {
        return lm_sdiv_add(x, dv.magic, shift, sign);
    }
    return lm_sdiv_mul(x, dv.magic, shift);
}

#endif /* LM_EXPR_INT_H */
