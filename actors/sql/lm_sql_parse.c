/*
 * lm_sql_parse.c: the recursive-descent parser of Laminar SQL, and the
 * arena its trees live in.
 *
 * One function per rule of the grammar in lm_sql_ast.h; each returns LM_OK
 * or an error code with the diagnostic already written, so a failure just
 * unwinds (the arena takes every node with it). Tokens come from the lexer
 * on demand into a small lookahead window; a lexing error becomes an
 * ERROR token that no rule accepts, so the first error in the text is the
 * one reported, whether the lexer or the parser finds it. Every recursion
 * goes through enter(), which bounds the nesting.
 */
#include "lm_sql_ast.h"
#include "lm_sql_lex.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lm_time.h"

#define MAX_DEPTH  200
#define LOOKAHEAD  8
#define CHUNK_SIZE (64 * 1024)

/* --- the arena ----------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
} arena_chunk;

struct lm_sql_arena {
    arena_chunk *head; /* allocations come from here; big ones get a chunk of their own */
};

static void *
arena_alloc(struct lm_sql_arena *a, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    arena_chunk *c = a->head;
    void *ptr;

    if (size > SIZE_MAX / 2) {
        return NULL;
    }
    size = (size + align - 1) & ~(align - 1);
    if (size == 0) {
        size = align;
    }
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > CHUNK_SIZE ? size : CHUNK_SIZE;
        arena_chunk *nc = malloc(sizeof(*nc) + cap);
        if (nc == NULL) {
            return NULL;
        }
        nc->used = 0;
        nc->cap = cap;
        if (c != NULL && size > CHUNK_SIZE / 2) {
            /* keep the current chunk's free space for small allocations */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    ptr = (char *)c->data + c->used;
    c->used += size;
    memset(ptr, 0, size);
    return ptr;
}

void *
lm_sql_alloc(lm_sql_tree *t, size_t size)
{
    if (t == NULL || t->arena == NULL) {
        return NULL;
    }
    return arena_alloc(t->arena, size);
}

char *
lm_sql_strdup(lm_sql_tree *t, const char *s, size_t len)
{
    char *out;

    if (len == SIZE_MAX || (out = lm_sql_alloc(t, len + 1)) == NULL) {
        return NULL;
    }
    if (len > 0) {
        memcpy(out, s, len);
    }
    out[len] = '\0';
    return out;
}

void
lm_sql_tree_free(lm_sql_tree *t)
{
    struct lm_sql_arena *a;
    arena_chunk *c, *next;

    if (t == NULL) {
        return;
    }
    a = t->arena; /* t itself lives in the arena */
    for (c = a->head; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

bool
lm_sql_ident_eq(const lm_sql_ident *a, const char *name, bool quoted)
{
    if (a == NULL || a->text == NULL || name == NULL) {
        return false;
    }
    if (a->quoted || quoted) {
        return strcmp(a->text, name) == 0;
    }
    return strcasecmp(a->text, name) == 0;
}

int
lm_sql_diag_set(lm_sql_diag *d, lm_sql_pos pos, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    lm_sql_diag_vset(d, pos, fmt, ap);
    va_end(ap);
    return LM_EINVAL;
}

int
lm_sql_diag_vset(lm_sql_diag *d, lm_sql_pos pos, const char *fmt, va_list ap)
{
    if (d != NULL) {
        d->pos = pos;
        vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
        /* One line of valid UTF-8 whatever text a message quotes: control
         * bytes become spaces, bytes that are not UTF-8 '?'. */
        char *u = d->msg;
        size_t left = strlen(d->msg);
        while (left > 0) {
            size_t k = lm_sql_utf8_len(u, left);
            if (k == 0) {
                k = 1;
                *u = '?';
            } else if (k == 1 && ((unsigned char)*u < 0x20 || *u == 0x7f)) {
                *u = ' ';
            }
            u += k;
            left -= k;
        }
    }
    return LM_EINVAL;
}

/* --- the parser's state and helpers ------------------------------------- */

typedef struct parser {
    lm_sql_lexer lx;
    lm_sql_tok la[LOOKAHEAD]; /* la[0] is the current token */
    unsigned nla;
    lm_sql_tok prev; /* the last token consumed; EOF kind before the first */
    lm_sql_tree *t;
    lm_sql_diag *d;
    lm_sql_diag lexd; /* the lexer's error, once an ERROR token was made */
    unsigned depth;
} parser;

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != LM_OK) {                                                                        \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

static const lm_sql_tok *
peek(parser *p, unsigned k)
{
    while (p->nla <= k) {
        lm_sql_tok *tok = &p->la[p->nla];
        if (lm_sql_lex_next(&p->lx, tok, &p->lexd) != LM_OK) {
            tok->kind = LM_SQL_TOK_ERROR;
            tok->pos = p->lexd.pos;
            tok->start = "";
            tok->len = 0;
        }
        p->nla++;
    }
    return &p->la[k];
}

#define CUR(p) peek((p), 0)

static void
advance(parser *p)
{
    peek(p, 0);
    p->prev = p->la[0];
    memmove(&p->la[0], &p->la[1], (p->nla - 1) * sizeof(p->la[0]));
    p->nla--;
}

static bool
is_word(const lm_sql_tok *tok, const char *kw)
{
    return lm_sql_tok_is_word(tok, kw);
}

static bool
is_op(const lm_sql_tok *tok, const char *op)
{
    return lm_sql_tok_is_op(tok, op);
}

/* Words that are never names without quotes: never aliases without AS,
 * never bare column names. */
static const char *const reserved[] = {
    "ALL",      "AND",   "AS",     "BETWEEN", "BY",     "CASE",   "CREATE", "CROSS",
    "DISTINCT", "ELSE",  "END",    "ESCAPE",  "EXCEPT", "EXISTS", "FALSE",  "FETCH",
    "FROM",     "FULL",  "GROUP",  "HAVING",  "IN",     "INNER",  "INSERT", "INTERSECT",
    "INTO",     "IS",    "JOIN",   "LATERAL", "LEFT",   "LIKE",   "LIMIT",  "NATURAL",
    "NOT",      "NULL",  "OFFSET", "ON",      "OR",     "ORDER",  "OUTER",  "OVER",
    "QUALIFY",  "RIGHT", "SELECT", "TABLE",   "THEN",   "TRUE",   "UNION",  "USING",
    "VALUES",   "WHEN",  "WHERE",  "WINDOW",  "WITH",
};

static bool
is_reserved(const lm_sql_tok *tok)
{
    if (tok->kind != LM_SQL_TOK_WORD) {
        return false;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (is_word(tok, reserved[i])) {
            return true;
        }
    }
    return false;
}

/* A name: a quoted name, or a word that is not reserved. */
static bool
is_name(const lm_sql_tok *tok)
{
    return tok->kind == LM_SQL_TOK_QNAME || (tok->kind == LM_SQL_TOK_WORD && !is_reserved(tok));
}

static int fail_at(parser *p, lm_sql_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_tok(parser *p, const lm_sql_tok *tok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_at(parser *p, lm_sql_pos pos, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    lm_sql_diag_vset(p->d, pos, fmt, ap);
    va_end(ap);
    return LM_EINVAL;
}

/* An error at tok; when tok stands for a lexing error, that error instead. */
static int
fail_tok(parser *p, const lm_sql_tok *tok, const char *fmt, ...)
{
    va_list ap;

    if (tok->kind == LM_SQL_TOK_ERROR) {
        *p->d = p->lexd;
        return LM_EINVAL;
    }
    va_start(ap, fmt);
    lm_sql_diag_vset(p->d, tok->pos, fmt, ap);
    va_end(ap);
    return LM_EINVAL;
}

#define DESC(tok, buf) lm_sql_tok_describe((tok), (buf), sizeof(buf))

/* Text from the input, made fit for a one-line message: control bytes
 * escaped, long text cut with "...". */
static const char *
clean(const char *s, char *buf, size_t size)
{
    lm_sql_tok t = {0};
    t.kind = LM_SQL_TOK_QNAME; /* described as is, without quotes */
    t.start = s;
    t.len = strlen(s);
    return lm_sql_tok_describe(&t, buf, size);
}

#define CLEAN(s, buf) clean((s), (buf), sizeof(buf))

/* "expected WHAT, got TOKEN" at the current token. */
static int
expected(parser *p, const char *what)
{
    char got[96];
    const lm_sql_tok *tok = CUR(p);
    return fail_tok(p, tok, "expected %s, got %s", what, DESC(tok, got));
}

/* "expected WHAT after PREVIOUS, got TOKEN" at the current token. */
static int
expected_after(parser *p, const char *what)
{
    char got[96], after[96];
    const lm_sql_tok *tok = CUR(p);
    return fail_tok(p, tok, "expected %s after %s, got %s", what, DESC(&p->prev, after),
                    DESC(tok, got));
}

/* Consumes the word kw, or fails with "expected WHAT, got ...". */
static int
expect_word(parser *p, const char *kw, const char *what)
{
    if (!is_word(CUR(p), kw)) {
        return expected(p, what);
    }
    advance(p);
    return LM_OK;
}

static int
expect_op(parser *p, const char *op, const char *what)
{
    if (!is_op(CUR(p), op)) {
        return expected(p, what);
    }
    advance(p);
    return LM_OK;
}

static int
nomem(parser *p)
{
    fail_at(p, CUR(p)->pos, "out of memory");
    return LM_ENOMEM;
}

static void *
palloc(parser *p, size_t size)
{
    return lm_sql_alloc(p->t, size);
}

/* Makes room for element n of an array with capacity *cap; returns the
 * (maybe moved) array or NULL when out of memory. */
static void *
grow(parser *p, void *arr, uint32_t n, uint32_t *cap, size_t size)
{
    void *na;
    uint32_t ncap;

    if (n < *cap) {
        return arr;
    }
    if (*cap >= UINT32_MAX / 2) {
        return NULL;
    }
    ncap = *cap == 0 ? 4 : *cap * 2;
    if ((na = palloc(p, (size_t)ncap * size)) == NULL) {
        return NULL;
    }
    if (n > 0) {
        memcpy(na, arr, (size_t)n * size);
    }
    *cap = ncap;
    return na;
}

#define PUSH(p, arr, n, cap, elem)                                                                 \
    do {                                                                                           \
        void *g_ = grow((p), (arr), (n), &(cap), sizeof(*(arr)));                                  \
        if (g_ == NULL) {                                                                          \
            return nomem(p);                                                                       \
        }                                                                                          \
        (arr) = g_;                                                                                \
        (arr)[(n)++] = (elem);                                                                     \
    } while (0)

static int
enter(parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        return fail_tok(p, CUR(p), "expression nested too deeply (more than %d levels)", MAX_DEPTH);
    }
    return LM_OK;
}

/* The current token's text, unquoted, as a NUL-terminated arena string. */
static int
tok_text(parser *p, const lm_sql_tok *tok, const char **out)
{
    char *s = palloc(p, tok->len + 1);
    size_t n;

    if (s == NULL) {
        return nomem(p);
    }
    n = lm_sql_tok_unquote(tok, s);
    s[n] = '\0';
    *out = s;
    return LM_OK;
}

/* Consumes the current token (a word or quoted name) as an identifier. */
static int
take_ident(parser *p, lm_sql_ident *id)
{
    const lm_sql_tok *tok = CUR(p);

    TRY(tok_text(p, tok, &id->text));
    id->quoted = tok->kind == LM_SQL_TOK_QNAME;
    id->pos = tok->pos;
    advance(p);
    return LM_OK;
}

static int
expect_name(parser *p, lm_sql_ident *id, const char *what)
{
    if (!is_name(CUR(p))) {
        return expected(p, what);
    }
    return take_ident(p, id);
}

/* [AS] alias; with AS the alias must follow. */
static int
parse_alias(parser *p, lm_sql_ident *alias)
{
    if (is_word(CUR(p), "AS")) {
        advance(p);
        return expect_name(p, alias, "an alias after AS");
    }
    if (is_name(CUR(p))) {
        return take_ident(p, alias);
    }
    return LM_OK;
}

static int
new_expr(parser *p, lm_sql_expr_kind kind, lm_sql_pos pos, lm_sql_expr **out)
{
    lm_sql_expr *e = palloc(p, sizeof(*e));

    if (e == NULL) {
        return nomem(p);
    }
    e->kind = kind;
    e->pos = pos;
    *out = e;
    return LM_OK;
}

/* Sets e's operands to the n given. */
static int
set_args(parser *p, lm_sql_expr *e, uint32_t n, lm_sql_expr *a0, lm_sql_expr *a1, lm_sql_expr *a2)
{
    lm_sql_expr *a[3] = {a0, a1, a2};

    if ((e->args = palloc(p, n * sizeof(*e->args))) == NULL) {
        return nomem(p);
    }
    memcpy(e->args, a, n * sizeof(*e->args));
    e->nargs = n;
    return LM_OK;
}

static int
new_binary(parser *p, const char *op, lm_sql_expr *l, lm_sql_expr *r, lm_sql_expr **out)
{
    TRY(new_expr(p, LM_SQL_E_BINARY, l->pos, out));
    (*out)->op = op;
    return set_args(p, *out, 2, l, r, NULL);
}

/* --- types ---------------------------------------------------------------- */

static const struct {
    const char *word;
    lm_sql_type_kind kind;
    bool params; /* takes (n) or (p, s) */
} type_words[] = {
    {"BOOLEAN", LM_SQL_T_BOOLEAN, false}, {"BOOL", LM_SQL_T_BOOLEAN, false},
    {"INT", LM_SQL_T_INT, false},         {"INTEGER", LM_SQL_T_INT, false},
    {"SMALLINT", LM_SQL_T_INT, false},    {"TINYINT", LM_SQL_T_INT, false},
    {"BIGINT", LM_SQL_T_BIGINT, false},   {"DOUBLE", LM_SQL_T_DOUBLE, false},
    {"FLOAT", LM_SQL_T_DOUBLE, false},    {"REAL", LM_SQL_T_DOUBLE, false},
    {"DECIMAL", LM_SQL_T_DECIMAL, true},  {"NUMERIC", LM_SQL_T_DECIMAL, true},
    {"VARCHAR", LM_SQL_T_VARCHAR, true},  {"STRING", LM_SQL_T_VARCHAR, false},
    {"TEXT", LM_SQL_T_VARCHAR, false},    {"CHAR", LM_SQL_T_VARCHAR, true},
    {"BYTES", LM_SQL_T_BYTES, false},     {"VARBINARY", LM_SQL_T_BYTES, true},
    {"BINARY", LM_SQL_T_BYTES, true},     {"TIMESTAMP", LM_SQL_T_TIMESTAMP, true},
    {"ROW", LM_SQL_T_ROW, false},
};

#define TYPE_LIST "BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL, VARCHAR, BYTES, TIMESTAMP or ROW<...>"

static int parse_type(parser *p, lm_sql_type **out);

/* (n) or (p, s) after a type name. */
static int
parse_type_params(parser *p, lm_sql_type *ty, const char *name)
{
    char what[96];
    const lm_sql_tok *tok;

    advance(p); /* ( */
    for (int k = 0; k < 2; k++) {
        tok = CUR(p);
        if (tok->kind != LM_SQL_TOK_INT) {
            snprintf(what, sizeof(what), "a length or precision in %s(...)", name);
            return expected(p, what);
        }
        if (tok->u > INT32_MAX) {
            return fail_tok(p, tok, "%s(%.*s) is too large", name, (int)tok->len, tok->start);
        }
        if (k == 0) {
            ty->precision = (int32_t)tok->u;
        } else {
            ty->scale = (int32_t)tok->u;
        }
        advance(p);
        if (k == 0 && ty->kind == LM_SQL_T_DECIMAL && is_op(CUR(p), ",")) {
            advance(p);
            continue;
        }
        break;
    }
    snprintf(what, sizeof(what), "')' to close %s(...)", name);
    return expect_op(p, ")", what);
}

static int
parse_row_fields(parser *p, lm_sql_type *ty)
{
    const char *close = is_op(CUR(p), "<") ? ">" : ")";
    uint32_t cap = 0;

    advance(p); /* < or ( */
    for (;;) {
        lm_sql_field f = {0};
        const lm_sql_tok *tok = CUR(p);
        if (tok->kind != LM_SQL_TOK_WORD && tok->kind != LM_SQL_TOK_QNAME) {
            return expected(p, "a field name in ROW");
        }
        TRY(take_ident(p, &f.name));
        TRY(parse_type(p, &f.type));
        PUSH(p, ty->fields, ty->nfields, cap, f);
        if (is_op(CUR(p), ",")) {
            advance(p);
            continue;
        }
        if (is_op(CUR(p), close)) {
            advance(p);
            return LM_OK;
        }
        return expected(p, *close == '>' ? "',' or '>' in ROW<...>" : "',' or ')' in ROW(...)");
    }
}

static int
parse_type_inner(parser *p, lm_sql_type **out)
{
    const lm_sql_tok *tok = CUR(p);
    lm_sql_type *ty;
    char name[32];
    size_t i;

    if (tok->kind != LM_SQL_TOK_WORD) {
        return expected(p, "a type (" TYPE_LIST ")");
    }
    for (i = 0; i < sizeof(type_words) / sizeof(type_words[0]); i++) {
        if (is_word(tok, type_words[i].word)) {
            break;
        }
    }
    if (i == sizeof(type_words) / sizeof(type_words[0])) {
        char got[96];
        if (is_word(tok, "ARRAY") || is_word(tok, "MAP") || is_word(tok, "MULTISET") ||
            is_word(tok, "DATE") || is_word(tok, "TIME") || is_word(tok, "INTERVAL")) {
            return fail_tok(p, tok, "type %s is not supported; use one of " TYPE_LIST,
                            DESC(tok, got));
        }
        return fail_tok(p, tok, "unknown type %s; expected " TYPE_LIST, DESC(tok, got));
    }
    if ((ty = palloc(p, sizeof(*ty))) == NULL) {
        return nomem(p);
    }
    ty->kind = type_words[i].kind;
    ty->precision = -1;
    ty->scale = -1;
    ty->pos = tok->pos;
    snprintf(name, sizeof(name), "%s", type_words[i].word);
    advance(p);
    *out = ty;
    if (ty->kind == LM_SQL_T_DOUBLE && is_word(CUR(p), "PRECISION")) {
        advance(p);
    }
    if (ty->kind == LM_SQL_T_ROW) {
        if (!is_op(CUR(p), "<") && !is_op(CUR(p), "(")) {
            return expected(p, "'<' and the fields after ROW");
        }
        return parse_row_fields(p, ty);
    }
    if (type_words[i].params && is_op(CUR(p), "(")) {
        TRY(parse_type_params(p, ty, name));
    }
    if (ty->kind == LM_SQL_T_TIMESTAMP) {
        if (is_word(CUR(p), "WITHOUT")) {
            advance(p);
            TRY(expect_word(p, "TIME", "TIME ZONE after TIMESTAMP WITHOUT"));
            TRY(expect_word(p, "ZONE", "ZONE after TIMESTAMP WITHOUT TIME"));
        } else if (is_word(CUR(p), "WITH") &&
                   (is_word(peek(p, 1), "LOCAL") || is_word(peek(p, 1), "TIME"))) {
            return fail_tok(p, CUR(p),
                            "TIMESTAMP WITH [LOCAL] TIME ZONE is not supported; use TIMESTAMP "
                            "(times are UTC)");
        }
    }
    return LM_OK;
}

static int
parse_type(parser *p, lm_sql_type **out)
{
    int rc;

    TRY(enter(p));
    rc = parse_type_inner(p, out);
    p->depth--;
    return rc;
}

/* --- literals ------------------------------------------------------------- */

static const struct {
    const char *word;
    int64_t us;
    bool in_text_only; /* an abbreviation: only inside '10 s' */
} units[] = {
    {"MICROSECOND", 1, false},
    {"MICROSECONDS", 1, false},
    {"MILLISECOND", 1000, false},
    {"MILLISECONDS", 1000, false},
    {"SECOND", LM_US_PER_SEC, false},
    {"SECONDS", LM_US_PER_SEC, false},
    {"MINUTE", 60 * LM_US_PER_SEC, false},
    {"MINUTES", 60 * LM_US_PER_SEC, false},
    {"HOUR", 3600 * LM_US_PER_SEC, false},
    {"HOURS", 3600 * LM_US_PER_SEC, false},
    {"DAY", LM_US_PER_DAY, false},
    {"DAYS", LM_US_PER_DAY, false},
    {"US", 1, true},
    {"MS", 1000, true},
    {"S", LM_US_PER_SEC, true},
    {"SEC", LM_US_PER_SEC, true},
    {"SECS", LM_US_PER_SEC, true},
    {"M", 60 * LM_US_PER_SEC, true},
    {"MIN", 60 * LM_US_PER_SEC, true},
    {"MINS", 60 * LM_US_PER_SEC, true},
    {"H", 3600 * LM_US_PER_SEC, true},
    {"HR", 3600 * LM_US_PER_SEC, true},
    {"HRS", 3600 * LM_US_PER_SEC, true},
    {"D", LM_US_PER_DAY, true},
};

#define UNIT_LIST "MICROSECOND, MILLISECOND, SECOND, MINUTE, HOUR or DAY"

/* The unit named s[0..n), or 0. */
static int64_t
unit_us(const char *s, size_t n, bool in_text)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].word) == n && strncasecmp(units[i].word, s, n) == 0 &&
            (in_text || !units[i].in_text_only)) {
            return units[i].us;
        }
    }
    return 0;
}

static bool
is_calendar_unit(const char *s, size_t n)
{
    static const char *const cal[] = {"YEAR",  "YEARS", "MONTH", "MONTHS", "WEEK",
                                      "WEEKS", "Y",     "MON",   "MONS",   "W"};
    for (size_t i = 0; i < sizeof(cal) / sizeof(cal[0]); i++) {
        if (strlen(cal[i]) == n && strncasecmp(cal[i], s, n) == 0) {
            return true;
        }
    }
    return false;
}

/* The decimal number s[0..n) (optional sign, digits, optional fraction)
 * times unit, exactly, into *us. Returns NULL or what is wrong. */
static const char *
scaled(const char *s, size_t n, int64_t unit, int64_t *us)
{
    unsigned __int128 ip = 0, fn = 0, fd = 1, total;
    size_t i = 0;
    unsigned digits = 0;
    bool neg = false;

    if (i < n && (s[i] == '+' || s[i] == '-')) {
        neg = s[i++] == '-';
    }
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        ip = ip * 10 + (unsigned)(s[i] - '0');
        if (ip > INT64_MAX) {
            return "is out of range";
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            if (fd < (unsigned __int128)1000000000000000000ULL * 10) {
                fn = fn * 10 + (unsigned)(s[i] - '0');
                fd *= 10;
            } else if (s[i] != '0') {
                return "is not a whole number of microseconds";
            }
        }
    }
    if (digits == 0 || i != n) {
        return "is not a number";
    }
    total = ip * (unsigned __int128)unit;
    if ((fn * (unsigned __int128)unit) % fd != 0) {
        return "is not a whole number of microseconds";
    }
    total += fn * (unsigned __int128)unit / fd;
    if (total > INT64_MAX) {
        return "is out of range";
    }
    *us = neg ? -(int64_t)total : (int64_t)total;
    return NULL;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* "N unit [N unit ...]" (the unit may touch the number: '10s'). */
static const char *
interval_text(const char *s, size_t n, int64_t *us, char *detail, size_t dsize)
{
    int64_t total = 0;
    size_t i = 0;
    bool any = false;

    for (;;) {
        size_t ns, ne, us0, ue;
        int64_t unit, v;
        const char *why;

        while (i < n && is_space(s[i])) {
            i++;
        }
        if (i == n) {
            break;
        }
        ns = i;
        if (s[i] == '+' || s[i] == '-') {
            i++;
        }
        while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) {
            i++;
        }
        ne = i;
        while (i < n && is_space(s[i])) {
            i++;
        }
        us0 = i;
        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) {
            i++;
        }
        ue = i;
        if (ne == ns || (ne - ns == 1 && (s[ns] == '+' || s[ns] == '-'))) {
            snprintf(detail, dsize, "expected a number and a unit, as in '10 seconds'");
            return "";
        }
        if (ue == us0) {
            snprintf(detail, dsize,
                     "expected a unit (" UNIT_LIST ") after %.*s, as in '10 seconds'",
                     (int)(ne - ns > 24 ? 24 : ne - ns), s + ns);
            return "";
        }
        if ((unit = unit_us(s + us0, ue - us0, true)) == 0) {
            if (is_calendar_unit(s + us0, ue - us0)) {
                snprintf(detail, dsize,
                         "weeks, months and years are not supported (use DAY, HOUR, MINUTE or "
                         "SECOND)");
            } else {
                snprintf(detail, dsize, "unknown unit '%.*s' (expected " UNIT_LIST ")",
                         (int)(ue - us0 > 24 ? 24 : ue - us0), s + us0);
            }
            return "";
        }
        if ((why = scaled(s + ns, ne - ns, unit, &v)) != NULL) {
            return why;
        }
        if (__builtin_add_overflow(total, v, &total)) {
            return "is out of range";
        }
        any = true;
    }
    if (!any) {
        snprintf(detail, dsize, "expected a number and a unit, as in '10 seconds'");
        return "";
    }
    *us = total;
    return NULL;
}

int
lm_sql_interval_parse(const char *s, size_t n, int64_t *us)
{
    char detail[160];

    return interval_text(s, n, us, detail, sizeof(detail)) == NULL ? LM_OK : LM_EINVAL;
}

/* Quotes text for a message: at most 40 bytes, control bytes escaped. */
static const char *
quote_text(const char *s, size_t n, char *buf, size_t size)
{
    lm_sql_tok t = {0};
    t.kind = LM_SQL_TOK_WORD;
    t.start = s;
    t.len = n;
    return lm_sql_tok_describe(&t, buf, size);
}

/* INTERVAL '10' SECOND, INTERVAL '10 seconds', INTERVAL 10 SECOND. */
static int
parse_interval(parser *p, lm_sql_expr **out)
{
    lm_sql_pos pos = CUR(p)->pos;
    const lm_sql_tok *tok;
    lm_sql_tok vt;
    const char *text, *why;
    char shown[96], detail[160] = "";
    int64_t us = 0, unit = 0;
    bool neg = false;

    advance(p); /* INTERVAL */
    tok = CUR(p);
    if (is_op(tok, "-") || is_op(tok, "+")) {
        neg = is_op(tok, "-");
        advance(p);
        tok = CUR(p);
        if (tok->kind != LM_SQL_TOK_INT && tok->kind != LM_SQL_TOK_DECIMAL) {
            return expected_after(p, "a number");
        }
    }
    vt = *tok;
    TRY(tok_text(p, &vt, &text));
    advance(p);
    tok = CUR(p);
    if (tok->kind == LM_SQL_TOK_WORD && unit_us(tok->start, tok->len, false) != 0) {
        unit = unit_us(tok->start, tok->len, false);
    } else if (tok->kind == LM_SQL_TOK_WORD && is_calendar_unit(tok->start, tok->len)) {
        return fail_tok(p, tok,
                        "intervals of weeks, months or years are not supported (they have no "
                        "fixed length); use DAY, HOUR, MINUTE or SECOND");
    }
    quote_text(text, strlen(text), shown, sizeof(shown));
    if (vt.kind != LM_SQL_TOK_STRING) {
        /* a bare number: the unit must follow */
        char what[160];
        if (unit == 0) {
            char num[96];
            snprintf(what, sizeof(what), "a unit (" UNIT_LIST ") after INTERVAL %s%s",
                     neg ? "-" : "", CLEAN(text, num));
            return expected(p, what);
        }
        why = scaled(text, strlen(text), unit, &us);
        if (why == NULL && neg) {
            us = -us;
        }
    } else if (unit != 0) {
        size_t b = 0, e = strlen(text);
        while (b < e && is_space(text[b])) {
            b++;
        }
        while (e > b && is_space(text[e - 1])) {
            e--;
        }
        why = scaled(text + b, e - b, unit, &us);
        if (why != NULL && strcmp(why, "is not a number") == 0) {
            snprintf(detail, sizeof(detail),
                     "with a unit after it, the text must be a number, as in INTERVAL '10' "
                     "SECOND");
            why = "";
        }
    } else {
        why = interval_text(text, strlen(text), &us, detail, sizeof(detail));
    }
    if (why != NULL) {
        if (*why == '\0') {
            return fail_at(p, vt.pos, "invalid interval %s: %s", shown, detail);
        }
        return fail_at(p, vt.pos, "interval %s %s", shown, why);
    }
    if (unit != 0) {
        advance(p);
        if (is_word(CUR(p), "TO")) {
            return fail_tok(p, CUR(p),
                            "interval ranges (such as DAY TO SECOND) are not supported; write "
                            "INTERVAL '1 day 2 hours'");
        }
    }
    TRY(new_expr(p, LM_SQL_E_LIT, pos, out));
    (*out)->lit = LM_SQL_L_INTERVAL;
    (*out)->i = us;
    (*out)->text = text;
    return LM_OK;
}

/* TIMESTAMP '2020-01-01 00:00:00' */
static int
parse_timestamp(parser *p, lm_sql_expr **out)
{
    lm_sql_pos pos = CUR(p)->pos;
    const lm_sql_tok *tok;
    const char *text;
    char shown[96];
    int64_t us;
    int rc;

    advance(p); /* TIMESTAMP */
    tok = CUR(p);
    TRY(tok_text(p, tok, &text));
    rc = lm_time_parse(text, strlen(text), &us);
    if (rc == LM_EINVAL) {
        return fail_tok(p, tok, "invalid timestamp %s: expected 'YYYY-MM-DD HH:MM:SS[.ffffff]'",
                        quote_text(text, strlen(text), shown, sizeof(shown)));
    }
    if (rc != LM_OK) {
        return fail_tok(p, tok, "timestamp %s names no such date or time",
                        quote_text(text, strlen(text), shown, sizeof(shown)));
    }
    advance(p);
    TRY(new_expr(p, LM_SQL_E_LIT, pos, out));
    (*out)->lit = LM_SQL_L_TIMESTAMP;
    (*out)->i = us;
    (*out)->text = text;
    return LM_OK;
}

static int
parse_number(parser *p, lm_sql_expr **out)
{
    const lm_sql_tok *tok = CUR(p);
    char shown[96];
    lm_sql_expr *e;

    TRY(new_expr(p, LM_SQL_E_LIT, tok->pos, &e));
    TRY(tok_text(p, tok, &e->text));
    if (tok->kind == LM_SQL_TOK_INT) {
        if (tok->u > INT64_MAX) {
            return fail_tok(p, tok,
                            "integer %s is out of range (a 64-bit integer is at most "
                            "9223372036854775807)",
                            e->text);
        }
        e->lit = LM_SQL_L_INT;
        e->i = (int64_t)tok->u;
    } else {
        e->lit = LM_SQL_L_FLOAT;
        e->f = strtod(e->text, NULL);
        if (isinf(e->f)) {
            return fail_tok(p, tok, "number %s is out of range", DESC(tok, shown));
        }
    }
    advance(p);
    *out = e;
    return LM_OK;
}

/* --- expressions ---------------------------------------------------------- */

static int parse_expr(parser *p, lm_sql_expr **out);
static int parse_type(parser *p, lm_sql_type **out);

/* CASE [operand] WHEN c THEN r ... [ELSE e] END */
static int
parse_case(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *e, *x;
    uint32_t cap = 0;

    TRY(new_expr(p, LM_SQL_E_CASE, CUR(p)->pos, &e));
    advance(p); /* CASE */
    if (!is_word(CUR(p), "WHEN")) {
        TRY(parse_expr(p, &x));
        PUSH(p, e->args, e->nargs, cap, x);
        e->has_operand = true;
        if (!is_word(CUR(p), "WHEN")) {
            return expected(p, "WHEN after the CASE operand");
        }
    }
    while (is_word(CUR(p), "WHEN")) {
        advance(p);
        TRY(parse_expr(p, &x));
        PUSH(p, e->args, e->nargs, cap, x);
        TRY(expect_word(p, "THEN", "THEN after the WHEN condition"));
        TRY(parse_expr(p, &x));
        PUSH(p, e->args, e->nargs, cap, x);
    }
    if (is_word(CUR(p), "ELSE")) {
        advance(p);
        TRY(parse_expr(p, &x));
        PUSH(p, e->args, e->nargs, cap, x);
        e->has_else = true;
    }
    TRY(expect_word(p, "END", e->has_else ? "END to close CASE" : "WHEN, ELSE or END in CASE"));
    *out = e;
    return LM_OK;
}

/* CAST(e AS type) */
static int
parse_cast(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *e, *x;

    TRY(new_expr(p, LM_SQL_E_CAST, CUR(p)->pos, &e));
    advance(p); /* CAST */
    advance(p); /* ( */
    TRY(parse_expr(p, &x));
    TRY(expect_word(p, "AS", "AS and a type in CAST(... AS type)"));
    TRY(parse_type(p, &e->cast_type));
    TRY(expect_op(p, ")", "')' to close CAST(... AS type)"));
    TRY(set_args(p, e, 1, x, NULL, NULL));
    *out = e;
    return LM_OK;
}

/* f(args), f(*), f(DISTINCT e); the name is taken, '(' is current. */
static int
parse_call(parser *p, lm_sql_ident name, lm_sql_expr **out)
{
    lm_sql_expr *e, *x;
    uint32_t cap = 0;
    char what[160];

    TRY(new_expr(p, LM_SQL_E_CALL, name.pos, &e));
    e->name = name;
    advance(p); /* ( */
    if (is_op(CUR(p), "*") && is_op(peek(p, 1), ")")) {
        e->star = true;
        advance(p);
    } else if (!is_op(CUR(p), ")")) {
        if (is_word(CUR(p), "DISTINCT")) {
            e->distinct = true;
            advance(p);
        } else if (is_word(CUR(p), "ALL")) {
            advance(p);
        }
        for (;;) {
            TRY(parse_expr(p, &x));
            PUSH(p, e->args, e->nargs, cap, x);
            if (!is_op(CUR(p), ",")) {
                break;
            }
            advance(p);
        }
    }
    {
        char shown[96];
        snprintf(what, sizeof(what), "')' to close the argument list of %s",
                 CLEAN(name.text, shown));
    }
    TRY(expect_op(p, ")", what));
    if (is_word(CUR(p), "OVER")) {
        return fail_tok(p, CUR(p),
                        "window functions (OVER ...) are not supported in a streaming query; "
                        "use GROUP BY with a window");
    }
    if (is_word(CUR(p), "FILTER") && is_op(peek(p, 1), "(")) {
        return fail_tok(p, CUR(p), "FILTER (WHERE ...) is not supported in a streaming query");
    }
    *out = e;
    return LM_OK;
}

/* a, t.a, t.a.b, or f(...) */
static int
parse_name_or_call(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *e;
    lm_sql_ident id = {0};
    uint32_t cap = 0;

    TRY(take_ident(p, &id));
    if (is_op(CUR(p), "(")) {
        return parse_call(p, id, out);
    }
    TRY(new_expr(p, LM_SQL_E_NAME, id.pos, &e));
    PUSH(p, e->parts, e->nparts, cap, id);
    while (is_op(CUR(p), ".")) {
        const lm_sql_tok *next = peek(p, 1);
        if (is_op(next, "*")) {
            char shown[96];
            return fail_tok(p, next, "'%s.*' can only be a whole item of a SELECT list",
                            CLEAN(e->parts[e->nparts - 1].text, shown));
        }
        advance(p); /* . */
        if (!is_name(CUR(p))) {
            return expected_after(p, "a field name");
        }
        TRY(take_ident(p, &id));
        PUSH(p, e->parts, e->nparts, cap, id);
    }
    if (is_op(CUR(p), "(")) {
        char a[96], b[96];
        return fail_at(p, e->pos, "a function name cannot be qualified ('%s.%s(...)')",
                       CLEAN(e->parts[0].text, a), CLEAN(e->parts[e->nparts - 1].text, b));
    }
    *out = e;
    return LM_OK;
}

static int
parse_primary(parser *p, lm_sql_expr **out)
{
    const lm_sql_tok *tok = CUR(p), *next;
    lm_sql_expr *e;

    switch (tok->kind) {
    case LM_SQL_TOK_INT:
    case LM_SQL_TOK_DECIMAL: return parse_number(p, out);
    case LM_SQL_TOK_STRING:
        TRY(new_expr(p, LM_SQL_E_LIT, tok->pos, &e));
        e->lit = LM_SQL_L_STRING;
        TRY(tok_text(p, tok, &e->text));
        advance(p);
        *out = e;
        return LM_OK;
    case LM_SQL_TOK_QNAME: return parse_name_or_call(p, out);
    case LM_SQL_TOK_OP:
        if (is_op(tok, "(")) {
            lm_sql_pos open = tok->pos;
            char what[96];
            if (is_word(peek(p, 1), "SELECT") || is_word(peek(p, 1), "VALUES")) {
                return fail_tok(p, peek(p, 1),
                                "subqueries in expressions are not supported in a streaming "
                                "query; join with the subquery in FROM");
            }
            advance(p);
            TRY(parse_expr(p, out));
            snprintf(what, sizeof(what), "')' to close the '(' at line %u, column %u", open.line,
                     open.col);
            return expect_op(p, ")", what);
        }
        return expected_after(p, "an expression");
    case LM_SQL_TOK_WORD: break;
    default: return expected_after(p, "an expression");
    }
    next = peek(p, 1);
    if (is_word(tok, "TRUE") || is_word(tok, "FALSE") || is_word(tok, "NULL")) {
        TRY(new_expr(p, LM_SQL_E_LIT, tok->pos, &e));
        e->lit = is_word(tok, "NULL") ? LM_SQL_L_NULL : LM_SQL_L_BOOL;
        e->b = is_word(tok, "TRUE");
        advance(p);
        *out = e;
        return LM_OK;
    }
    if (is_word(tok, "INTERVAL") &&
        (next->kind == LM_SQL_TOK_STRING || next->kind == LM_SQL_TOK_INT ||
         next->kind == LM_SQL_TOK_DECIMAL || is_op(next, "-") || is_op(next, "+"))) {
        return parse_interval(p, out);
    }
    if (is_word(tok, "TIMESTAMP") && next->kind == LM_SQL_TOK_STRING) {
        return parse_timestamp(p, out);
    }
    if ((is_word(tok, "DATE") || is_word(tok, "TIME")) && next->kind == LM_SQL_TOK_STRING) {
        char got[96];
        return fail_tok(p, tok, "%s literals are not supported; use TIMESTAMP '...'",
                        DESC(tok, got));
    }
    if (is_word(tok, "CASE")) {
        return parse_case(p, out);
    }
    if (is_word(tok, "CAST") && is_op(next, "(")) {
        return parse_cast(p, out);
    }
    if (is_word(tok, "EXISTS")) {
        return fail_tok(p, tok,
                        "EXISTS (subqueries in expressions) is not supported in a streaming "
                        "query");
    }
    if (is_reserved(tok)) {
        return expected_after(p, "an expression");
    }
    return parse_name_or_call(p, out);
}

static int
parse_unary(parser *p, lm_sql_expr **out)
{
    const lm_sql_tok *tok = CUR(p);
    lm_sql_pos pos = tok->pos;
    bool minus = is_op(tok, "-");
    lm_sql_expr *a, *e;
    int rc;

    if (!minus && !is_op(tok, "+")) {
        return parse_primary(p, out);
    }
    if (minus && peek(p, 1)->kind == LM_SQL_TOK_INT) {
        /* folded here, so that -9223372036854775808 is a literal */
        uint64_t u = peek(p, 1)->u; /* at most 2^63: the lexer's limit */
        char buf[32];
        advance(p);
        TRY(new_expr(p, LM_SQL_E_LIT, pos, &e));
        e->lit = LM_SQL_L_INT;
        e->i = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
        snprintf(buf, sizeof(buf), "%lld", (long long)e->i);
        if ((e->text = lm_sql_strdup(p->t, buf, strlen(buf))) == NULL) {
            return nomem(p);
        }
        advance(p);
        *out = e;
        return LM_OK;
    }
    advance(p);
    TRY(enter(p));
    if ((rc = parse_unary(p, &a)) != LM_OK) {
        return rc;
    }
    p->depth--;
    if (!minus) {
        *out = a;
        return LM_OK;
    }
    if (a->kind == LM_SQL_E_LIT && a->lit == LM_SQL_L_INT) {
        if (a->i == INT64_MIN) {
            return fail_at(p, pos, "-(%lld) is out of range for a 64-bit integer", (long long)a->i);
        }
        a->i = -a->i;
    }
    if (a->kind == LM_SQL_E_LIT && (a->lit == LM_SQL_L_INT || a->lit == LM_SQL_L_FLOAT)) {
        if (a->lit == LM_SQL_L_FLOAT) {
            a->f = -a->f;
        }
        a->pos = pos;
        if (a->text != NULL && a->text[0] == '-') {
            a->text++;
        } else if (a->text != NULL) {
            size_t n = strlen(a->text);
            char *t = palloc(p, n + 2);
            if (t == NULL) {
                return nomem(p);
            }
            t[0] = '-';
            memcpy(t + 1, a->text, n + 1);
            a->text = t;
        }
        *out = a;
        return LM_OK;
    }
    TRY(new_expr(p, LM_SQL_E_UNARY, pos, &e));
    e->op = "-";
    TRY(set_args(p, e, 1, a, NULL, NULL));
    *out = e;
    return LM_OK;
}

static int
parse_mul(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *l, *r;

    TRY(parse_unary(p, &l));
    for (;;) {
        const lm_sql_tok *tok = CUR(p);
        const char *op = is_op(tok, "*")   ? "*"
                         : is_op(tok, "/") ? "/"
                         : is_op(tok, "%") ? "%"
                                           : NULL;
        if (op == NULL) {
            break;
        }
        advance(p);
        TRY(parse_unary(p, &r));
        TRY(new_binary(p, op, l, r, &l));
    }
    *out = l;
    return LM_OK;
}

static int
parse_add(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *l, *r;

    TRY(parse_mul(p, &l));
    for (;;) {
        const lm_sql_tok *tok = CUR(p);
        const char *op = is_op(tok, "+") ? "+" : is_op(tok, "-") ? "-" : NULL;
        if (op == NULL) {
            break;
        }
        advance(p);
        TRY(parse_mul(p, &r));
        TRY(new_binary(p, op, l, r, &l));
    }
    *out = l;
    return LM_OK;
}

static int
parse_concat(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *l, *r;

    TRY(parse_add(p, &l));
    while (is_op(CUR(p), "||")) {
        advance(p);
        TRY(parse_add(p, &r));
        TRY(new_binary(p, "||", l, r, &l));
    }
    *out = l;
    return LM_OK;
}

static const char *
comparison(const lm_sql_tok *tok)
{
    static const char *const ops[] = {"=", "<>", "<", "<=", ">", ">="};

    if (is_op(tok, "!=")) {
        return "<>";
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (is_op(tok, ops[i])) {
            return ops[i];
        }
    }
    return NULL;
}

/* x [NOT] BETWEEN lo AND hi, [NOT] IN (list), [NOT] LIKE p [ESCAPE e];
 * the current token is BETWEEN, IN or LIKE. */
static int
parse_pred_tail(parser *p, lm_sql_expr *l, bool negated, lm_sql_expr **out)
{
    const lm_sql_tok *tok = CUR(p);
    lm_sql_expr *e, *a, *b, *c = NULL;
    uint32_t cap = 0;

    if (is_word(tok, "BETWEEN")) {
        TRY(new_expr(p, LM_SQL_E_BETWEEN, l->pos, &e));
        advance(p);
        if (is_word(CUR(p), "SYMMETRIC") || is_word(CUR(p), "ASYMMETRIC")) {
            return fail_tok(p, CUR(p), "BETWEEN SYMMETRIC/ASYMMETRIC is not supported");
        }
        TRY(parse_concat(p, &a));
        TRY(expect_word(p, "AND", "AND in BETWEEN ... AND ..."));
        TRY(parse_concat(p, &b));
        TRY(set_args(p, e, 3, l, a, b));
    } else if (is_word(tok, "IN")) {
        TRY(new_expr(p, LM_SQL_E_IN, l->pos, &e));
        advance(p);
        TRY(expect_op(p, "(", "'(' and a list of values after IN"));
        if (is_word(CUR(p), "SELECT")) {
            return fail_tok(p, CUR(p),
                            "IN (SELECT ...) is not supported in a streaming query: subqueries "
                            "in expressions are not supported; use a JOIN");
        }
        PUSH(p, e->args, e->nargs, cap, l);
        for (;;) {
            TRY(parse_expr(p, &a));
            PUSH(p, e->args, e->nargs, cap, a);
            if (!is_op(CUR(p), ",")) {
                break;
            }
            advance(p);
        }
        TRY(expect_op(p, ")", "',' or ')' to close the IN list"));
    } else {
        TRY(new_expr(p, LM_SQL_E_LIKE, l->pos, &e));
        advance(p);
        TRY(parse_concat(p, &a));
        if (is_word(CUR(p), "ESCAPE")) {
            advance(p);
            TRY(parse_concat(p, &c));
        }
        TRY(set_args(p, e, c != NULL ? 3 : 2, l, a, c));
    }
    e->negated = negated;
    *out = e;
    return LM_OK;
}

/* comparisons, IS [NOT] NULL, [NOT] BETWEEN / IN / LIKE */
static int
parse_pred(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *l, *r, *e;

    TRY(parse_concat(p, &l));
    for (;;) {
        const lm_sql_tok *tok = CUR(p), *next;
        const char *op = comparison(tok);
        if (op != NULL) {
            advance(p);
            if (is_word(CUR(p), "ANY") || is_word(CUR(p), "ALL") || is_word(CUR(p), "SOME")) {
                return fail_tok(p, CUR(p),
                                "subqueries in expressions (ANY, ALL, SOME) are not supported "
                                "in a streaming query");
            }
            TRY(parse_concat(p, &r));
            TRY(new_binary(p, op, l, r, &l));
            continue;
        }
        if (is_word(tok, "IS")) {
            bool neg = false;
            advance(p);
            if (is_word(CUR(p), "NOT")) {
                neg = true;
                advance(p);
            }
            if (!is_word(CUR(p), "NULL")) {
                return expected(p, neg ? "NULL after IS NOT" : "NULL or NOT NULL after IS");
            }
            advance(p);
            TRY(new_expr(p, LM_SQL_E_IS_NULL, l->pos, &e));
            e->negated = neg;
            TRY(set_args(p, e, 1, l, NULL, NULL));
            l = e;
            continue;
        }
        if (is_word(tok, "NOT")) {
            next = peek(p, 1);
            if (!is_word(next, "BETWEEN") && !is_word(next, "IN") && !is_word(next, "LIKE")) {
                advance(p);
                return expected(p, "BETWEEN, IN or LIKE after NOT");
            }
            advance(p);
            TRY(parse_pred_tail(p, l, true, &l));
            continue;
        }
        if (is_word(tok, "BETWEEN") || is_word(tok, "IN") || is_word(tok, "LIKE")) {
            TRY(parse_pred_tail(p, l, false, &l));
            continue;
        }
        if (is_word(tok, "ILIKE") || is_word(tok, "SIMILAR")) {
            char got[96];
            return fail_tok(p, tok, "%s is not supported; use LIKE", DESC(tok, got));
        }
        break;
    }
    *out = l;
    return LM_OK;
}

static int
parse_not(parser *p, lm_sql_expr **out)
{
    lm_sql_pos pos = CUR(p)->pos;
    lm_sql_expr *a, *e;
    int rc;

    if (!is_word(CUR(p), "NOT")) {
        return parse_pred(p, out);
    }
    if (is_word(peek(p, 1), "EXISTS")) {
        return fail_tok(p, peek(p, 1),
                        "NOT EXISTS (subqueries in expressions) is not supported in a "
                        "streaming query");
    }
    advance(p);
    TRY(enter(p));
    if ((rc = parse_not(p, &a)) != LM_OK) {
        return rc;
    }
    p->depth--;
    TRY(new_expr(p, LM_SQL_E_UNARY, pos, &e));
    e->op = "not";
    TRY(set_args(p, e, 1, a, NULL, NULL));
    *out = e;
    return LM_OK;
}

static int
parse_and(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *l, *r;

    TRY(parse_not(p, &l));
    while (is_word(CUR(p), "AND")) {
        advance(p);
        TRY(parse_not(p, &r));
        TRY(new_binary(p, "and", l, r, &l));
    }
    *out = l;
    return LM_OK;
}

static int
parse_or(parser *p, lm_sql_expr **out)
{
    lm_sql_expr *l, *r;

    TRY(parse_and(p, &l));
    while (is_word(CUR(p), "OR")) {
        advance(p);
        TRY(parse_and(p, &r));
        TRY(new_binary(p, "or", l, r, &l));
    }
    *out = l;
    return LM_OK;
}

static int
parse_expr(parser *p, lm_sql_expr **out)
{
    int rc;

    TRY(enter(p));
    rc = parse_or(p, out);
    p->depth--;
    return rc;
}

/* --- queries -------------------------------------------------------------- */

static int parse_query(parser *p, lm_sql_query **out);
static int parse_from(parser *p, lm_sql_ref **out, const char *what);

/* Names a clause a streaming query does not have, if one is next. */
static int
check_unsupported_tail(parser *p)
{
    static const struct {
        const char *word, *next, *msg;
    } clauses[] = {
        {"ORDER", "BY", "ORDER BY is not supported in a streaming query"},
        {"LIMIT", NULL, "LIMIT is not supported in a streaming query"},
        {"OFFSET", NULL, "OFFSET is not supported in a streaming query"},
        {"FETCH", NULL, "FETCH is not supported in a streaming query"},
        {"EXCEPT", NULL, "EXCEPT is not supported in a streaming query"},
        {"INTERSECT", NULL, "INTERSECT is not supported in a streaming query"},
        {"MINUS", NULL, "MINUS (EXCEPT) is not supported in a streaming query"},
        {"WINDOW", NULL, "a WINDOW clause is not supported in a streaming query"},
        {"QUALIFY", NULL, "QUALIFY is not supported in a streaming query"},
    };
    const lm_sql_tok *tok = CUR(p);

    for (size_t i = 0; i < sizeof(clauses) / sizeof(clauses[0]); i++) {
        if (is_word(tok, clauses[i].word) &&
            (clauses[i].next == NULL || is_word(peek(p, 1), clauses[i].next))) {
            return fail_tok(p, tok, "%s", clauses[i].msg);
        }
    }
    return LM_OK;
}

/* Whether t.* (or s.t.*) starts at the current token; its length in names. */
static uint32_t
qualified_star(parser *p)
{
    for (unsigned k = 0; k + 2 < LOOKAHEAD; k += 2) {
        const lm_sql_tok *tok = peek(p, k);
        if (tok->kind != LM_SQL_TOK_WORD && tok->kind != LM_SQL_TOK_QNAME) {
            return 0;
        }
        if (!is_op(peek(p, k + 1), ".")) {
            return 0;
        }
        if (is_op(peek(p, k + 2), "*")) {
            return k / 2 + 1;
        }
    }
    return 0;
}

static int
parse_item(parser *p, lm_sql_item *item)
{
    const lm_sql_tok *tok = CUR(p);
    uint32_t n;

    if (is_op(tok, "*")) {
        TRY(new_expr(p, LM_SQL_E_STAR, tok->pos, &item->expr));
        advance(p);
        return LM_OK;
    }
    if ((n = qualified_star(p)) > 0) {
        uint32_t cap = 0;
        TRY(new_expr(p, LM_SQL_E_STAR, tok->pos, &item->expr));
        for (uint32_t i = 0; i < n; i++) {
            lm_sql_ident id = {0};
            TRY(take_ident(p, &id));
            PUSH(p, item->expr->parts, item->expr->nparts, cap, id);
            advance(p); /* . */
        }
        advance(p); /* * */
        return LM_OK;
    }
    TRY(parse_expr(p, &item->expr));
    return parse_alias(p, &item->alias);
}

/* TABLE(TUMBLE|HOP|SESSION(TABLE name, DESCRIPTOR(col), args...)) [[AS] alias] */
static int
parse_window_ref(parser *p, lm_sql_ref *ref)
{
    const lm_sql_tok *tok;
    static const char *const fns[] = {"TUMBLE", "HOP", "SESSION"};
    static const uint32_t nargs[] = {1, 2, 1};
    static const char *const argdoc[] = {"one interval (the window size)",
                                         "two intervals (the slide, then the size)",
                                         "one interval (the gap)"};
    const char *fn;
    lm_sql_pos fnpos;
    uint32_t cap = 0;
    char what[160];

    ref->kind = LM_SQL_REF_WINDOW;
    advance(p); /* TABLE */
    if (!is_op(CUR(p), "(")) {
        return expected(p, "'(' after TABLE (a window: TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), "
                           "INTERVAL '10' SECOND)))");
    }
    advance(p);
    tok = CUR(p);
    if (is_word(tok, "TUMBLE")) {
        ref->win = LM_SQL_WIN_TUMBLE;
    } else if (is_word(tok, "HOP")) {
        ref->win = LM_SQL_WIN_HOP;
    } else if (is_word(tok, "SESSION")) {
        ref->win = LM_SQL_WIN_SESSION;
    } else if (is_word(tok, "CUMULATE")) {
        return fail_tok(p, tok, "CUMULATE windows are not supported; use TUMBLE or HOP");
    } else {
        return expected(p, "TUMBLE, HOP or SESSION in TABLE(...)");
    }
    fn = fns[ref->win];
    fnpos = tok->pos;
    advance(p);
    snprintf(what, sizeof(what), "'(' after %s", fn);
    TRY(expect_op(p, "(", what));
    if (CUR(p)->kind == LM_SQL_TOK_WORD && is_op(peek(p, 1), "=") && is_op(peek(p, 2), ">")) {
        return fail_tok(p, CUR(p),
                        "named arguments (NAME => value) are not supported; write %s(TABLE t, "
                        "DESCRIPTOR(ts), ...)",
                        fn);
    }
    snprintf(what, sizeof(what), "TABLE and a table name as the first argument of %s", fn);
    TRY(expect_word(p, "TABLE", what));
    TRY(expect_name(p, &ref->name, "a table name after TABLE"));
    if (is_word(CUR(p), "PARTITION")) {
        return fail_tok(p, CUR(p), "PARTITION BY in a window function is not supported");
    }
    snprintf(what, sizeof(what), "',' and DESCRIPTOR(column) after the table of %s", fn);
    TRY(expect_op(p, ",", what));
    snprintf(what, sizeof(what), "DESCRIPTOR(column) as the second argument of %s", fn);
    TRY(expect_word(p, "DESCRIPTOR", what));
    TRY(expect_op(p, "(", "'(' after DESCRIPTOR"));
    TRY(expect_name(p, &ref->descriptor, "a time column in DESCRIPTOR(...)"));
    TRY(expect_op(p, ")", "')' to close DESCRIPTOR(...)"));
    while (is_op(CUR(p), ",")) {
        lm_sql_expr *a;
        advance(p);
        TRY(parse_expr(p, &a));
        PUSH(p, ref->win_args, ref->nwin_args, cap, a);
    }
    snprintf(what, sizeof(what), "',' or ')' to close the arguments of %s", fn);
    TRY(expect_op(p, ")", what));
    if (ref->nwin_args != nargs[ref->win]) {
        return fail_at(p, fnpos, "%s takes %s after DESCRIPTOR(...), got %u", fn, argdoc[ref->win],
                       ref->nwin_args);
    }
    TRY(expect_op(p, ")", "')' to close TABLE(...)"));
    return parse_alias(p, &ref->alias);
}

static int
parse_ref(parser *p, lm_sql_ref **out, const char *what)
{
    const lm_sql_tok *tok = CUR(p);
    lm_sql_ref *ref;

    if (is_op(tok, "(")) {
        unsigned k = 1;
        while (k + 1 < LOOKAHEAD && is_op(peek(p, k), "(")) {
            k++;
        }
        if (!is_word(peek(p, k), "SELECT")) {
            /* ( a JOIN b ON ... ) */
            int rc;
            advance(p);
            TRY(enter(p));
            if ((rc = parse_from(p, out, "a table name after '('")) != LM_OK) {
                return rc;
            }
            p->depth--;
            return expect_op(p, ")", "')' to close the parenthesized FROM clause");
        }
    }
    if ((ref = palloc(p, sizeof(*ref))) == NULL) {
        return nomem(p);
    }
    ref->pos = tok->pos;
    *out = ref;
    if (is_op(tok, "(")) {
        ref->kind = LM_SQL_REF_SUBQUERY;
        advance(p);
        TRY(parse_query(p, &ref->query));
        TRY(expect_op(p, ")", "')' to close the subquery"));
        TRY(parse_alias(p, &ref->alias));
        if (ref->alias.text == NULL) {
            char got[96];
            return fail_tok(p, CUR(p),
                            "a subquery in FROM needs an alias, as in (SELECT ...) AS name; "
                            "got %s",
                            DESC(CUR(p), got));
        }
        return LM_OK;
    }
    if (is_word(tok, "TABLE")) {
        return parse_window_ref(p, ref);
    }
    if (is_word(tok, "LATERAL") || is_word(tok, "UNNEST")) {
        char got[96];
        return fail_tok(p, tok, "%s is not supported in a streaming query", DESC(tok, got));
    }
    if (!is_name(tok)) {
        return expected(p, what);
    }
    if (is_op(peek(p, 1), "(")) {
        char shown[96];
        return fail_tok(p, tok,
                        "a table function in FROM is written TABLE(%s(...)), as in "
                        "TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))",
                        DESC(tok, shown));
    }
    ref->kind = LM_SQL_REF_TABLE;
    TRY(take_ident(p, &ref->name));
    if (is_op(CUR(p), ".")) {
        return fail_tok(p, CUR(p), "qualified table names (catalog.table) are not supported");
    }
    return parse_alias(p, &ref->alias);
}

/* ref {, ref | [INNER] JOIN ref ON e | LEFT [OUTER] JOIN ref ON e | CROSS JOIN ref} */
static int
parse_from(parser *p, lm_sql_ref **out, const char *what)
{
    lm_sql_ref *left;

    TRY(parse_ref(p, &left, what));
    for (;;) {
        const lm_sql_tok *tok = CUR(p);
        lm_sql_pos pos = tok->pos;
        lm_sql_join_kind kind;
        lm_sql_ref *j;
        const char *after;

        if (is_op(tok, ",")) {
            kind = LM_SQL_JOIN_CROSS;
            after = "a table name after ','";
            advance(p);
        } else if (is_word(tok, "CROSS")) {
            kind = LM_SQL_JOIN_CROSS;
            after = "a table name after CROSS JOIN";
            advance(p);
            TRY(expect_word(p, "JOIN", "JOIN after CROSS"));
        } else if (is_word(tok, "JOIN") || is_word(tok, "INNER")) {
            kind = LM_SQL_JOIN_INNER;
            after = "a table name after JOIN";
            if (is_word(tok, "INNER")) {
                advance(p);
                if (!is_word(CUR(p), "JOIN")) {
                    return expected(p, "JOIN after INNER");
                }
            }
            advance(p);
        } else if (is_word(tok, "LEFT")) {
            kind = LM_SQL_JOIN_LEFT;
            after = "a table name after LEFT JOIN";
            advance(p);
            if (is_word(CUR(p), "OUTER")) {
                advance(p);
            }
            TRY(expect_word(p, "JOIN", "JOIN after LEFT"));
        } else if (is_word(tok, "RIGHT") || is_word(tok, "FULL")) {
            return fail_tok(p, tok, "%s JOIN is not supported in a streaming query",
                            is_word(tok, "RIGHT") ? "RIGHT" : "FULL");
        } else if (is_word(tok, "NATURAL")) {
            return fail_tok(p, tok, "NATURAL JOIN is not supported; use JOIN ... ON");
        } else {
            break;
        }
        if ((j = palloc(p, sizeof(*j))) == NULL) {
            return nomem(p);
        }
        j->kind = LM_SQL_REF_JOIN;
        j->pos = pos;
        j->join = kind;
        j->left = left;
        TRY(parse_ref(p, &j->right, after));
        if (kind != LM_SQL_JOIN_CROSS) {
            if (is_word(CUR(p), "USING")) {
                return fail_tok(p, CUR(p), "JOIN ... USING is not supported; use JOIN ... ON");
            }
            TRY(expect_word(p, "ON", "ON and the join condition after the joined table"));
            TRY(parse_expr(p, &j->on));
        }
        left = j;
    }
    *out = left;
    return LM_OK;
}

static int
parse_select(parser *p, lm_sql_query **out)
{
    lm_sql_query *q;
    uint32_t cap = 0;

    if ((q = palloc(p, sizeof(*q))) == NULL) {
        return nomem(p);
    }
    q->pos = CUR(p)->pos;
    *out = q;
    advance(p); /* SELECT */
    if (is_word(CUR(p), "DISTINCT")) {
        return fail_tok(p, CUR(p),
                        "SELECT DISTINCT is not supported in a streaming query; use GROUP BY");
    }
    if (is_word(CUR(p), "ALL")) {
        advance(p);
    }
    for (;;) {
        lm_sql_item item = {0};
        TRY(parse_item(p, &item));
        PUSH(p, q->items, q->nitems, cap, item);
        if (!is_op(CUR(p), ",")) {
            break;
        }
        advance(p);
    }
    if (!is_word(CUR(p), "FROM")) {
        TRY(check_unsupported_tail(p));
        return expected(p, "',' or FROM after the select list");
    }
    advance(p);
    TRY(parse_from(p, &q->from, "a table name after FROM"));
    if (is_word(CUR(p), "WHERE")) {
        advance(p);
        TRY(parse_expr(p, &q->where));
    }
    if (is_word(CUR(p), "GROUP")) {
        cap = 0;
        advance(p);
        TRY(expect_word(p, "BY", "BY after GROUP"));
        for (;;) {
            lm_sql_expr *e;
            TRY(parse_expr(p, &e));
            PUSH(p, q->group_by, q->ngroup_by, cap, e);
            if (!is_op(CUR(p), ",")) {
                break;
            }
            advance(p);
        }
    }
    if (is_word(CUR(p), "HAVING")) {
        advance(p);
        TRY(parse_expr(p, &q->having));
    }
    return check_unsupported_tail(p);
}

/* SELECT ... | '(' query ')' */
static int
parse_query_term(parser *p, lm_sql_query **out)
{
    const lm_sql_tok *tok = CUR(p);

    if (is_op(tok, "(")) {
        lm_sql_pos open = tok->pos;
        char what[96];
        advance(p);
        TRY(parse_query(p, out));
        snprintf(what, sizeof(what), "')' to close the '(' at line %u, column %u", open.line,
                 open.col);
        return expect_op(p, ")", what);
    }
    if (is_word(tok, "SELECT")) {
        return parse_select(p, out);
    }
    if (is_word(tok, "VALUES")) {
        return fail_tok(p, tok, "VALUES is not supported in a streaming query");
    }
    if (is_word(tok, "WITH")) {
        return fail_tok(p, tok,
                        "WITH (common table expressions) is not supported; use CREATE VIEW");
    }
    if (p->prev.kind == LM_SQL_TOK_EOF) {
        return expected(p, "a query (SELECT ...)");
    }
    return expected_after(p, "a query (SELECT ...)");
}

static int
parse_query_inner(parser *p, lm_sql_query **out)
{
    lm_sql_query *q, *tail, *next;

    TRY(parse_query_term(p, &q));
    for (tail = q; tail->union_all != NULL; tail = tail->union_all) {
    }
    while (is_word(CUR(p), "UNION")) {
        if (!is_word(peek(p, 1), "ALL")) {
            return fail_tok(p, CUR(p),
                            "UNION without ALL is not supported in a streaming query; use "
                            "UNION ALL");
        }
        advance(p);
        advance(p);
        TRY(parse_query_term(p, &next));
        tail->union_all = next;
        for (tail = next; tail->union_all != NULL; tail = tail->union_all) {
        }
    }
    TRY(check_unsupported_tail(p));
    *out = q;
    return LM_OK;
}

static int
parse_query(parser *p, lm_sql_query **out)
{
    int rc;

    TRY(enter(p));
    rc = parse_query_inner(p, out);
    p->depth--;
    return rc;
}

/* --- statements ----------------------------------------------------------- */

/* A dotted key as written, such as pipeline.parallelism or
 * first-event.rate: words joined by '.' or '-' with no space between. */
static int
parse_dotted(parser *p, const char **out)
{
    const lm_sql_tok *tok = CUR(p);
    const char *start = tok->start, *end = tok->start + tok->len;

    advance(p);
    for (;;) {
        const lm_sql_tok *sep = CUR(p), *next;
        if ((!is_op(sep, ".") && !is_op(sep, "-")) || sep->start != end) {
            break;
        }
        next = peek(p, 1);
        if ((next->kind != LM_SQL_TOK_WORD && next->kind != LM_SQL_TOK_INT) ||
            next->start != sep->start + 1) {
            break;
        }
        end = next->start + next->len;
        advance(p);
        advance(p);
    }
    if ((*out = lm_sql_strdup(p->t, start, (size_t)(end - start))) == NULL) {
        return nomem(p);
    }
    return LM_OK;
}

/* A setting or option value: 'text', a number (maybe negative) or a word. */
static int
parse_value(parser *p, const char **out, lm_sql_pos *pos, const char *what)
{
    const lm_sql_tok *tok = CUR(p);

    *pos = tok->pos;
    if (tok->kind == LM_SQL_TOK_STRING) {
        TRY(tok_text(p, tok, out));
        advance(p);
        return LM_OK;
    }
    if (tok->kind == LM_SQL_TOK_WORD) {
        return parse_dotted(p, out);
    }
    if (is_op(tok, "-") &&
        (peek(p, 1)->kind == LM_SQL_TOK_INT || peek(p, 1)->kind == LM_SQL_TOK_DECIMAL) &&
        peek(p, 1)->start == tok->start + 1) {
        tok = peek(p, 1);
        if ((*out = lm_sql_strdup(p->t, tok->start - 1, tok->len + 1)) == NULL) {
            return nomem(p);
        }
        advance(p);
        advance(p);
        return LM_OK;
    }
    if (tok->kind == LM_SQL_TOK_INT || tok->kind == LM_SQL_TOK_DECIMAL) {
        TRY(tok_text(p, tok, out));
        advance(p);
        return LM_OK;
    }
    return expected(p, what);
}

static int
parse_options(parser *p, lm_sql_stmt *st)
{
    uint32_t cap = 0;

    advance(p); /* WITH */
    TRY(expect_op(p, "(", "'(' and the options ('key' = 'value', ...) after WITH"));
    if (is_op(CUR(p), ")")) {
        advance(p);
        return LM_OK;
    }
    for (;;) {
        lm_sql_option o = {0};
        const lm_sql_tok *tok = CUR(p);
        char what[160], shown[96];
        o.key_pos = tok->pos;
        if (tok->kind == LM_SQL_TOK_STRING) {
            TRY(tok_text(p, tok, &o.key));
            advance(p);
        } else if (tok->kind == LM_SQL_TOK_QNAME) {
            TRY(tok_text(p, tok, &o.key));
            advance(p);
        } else if (tok->kind == LM_SQL_TOK_WORD) {
            TRY(parse_dotted(p, &o.key));
        } else {
            return expected(p, "an option name ('key' = 'value') in WITH (...)");
        }
        snprintf(what, sizeof(what), "'=' after the option name '%s'", CLEAN(o.key, shown));
        TRY(expect_op(p, "=", what));
        snprintf(what, sizeof(what), "a value for the option '%s'", shown);
        TRY(parse_value(p, &o.value, &o.value_pos, what));
        PUSH(p, st->options, st->noptions, cap, o);
        if (is_op(CUR(p), ",")) {
            advance(p);
            continue;
        }
        return expect_op(p, ")", "',' or ')' in WITH (...)");
    }
}

static int
parse_create_table(parser *p, lm_sql_stmt *st)
{
    uint32_t cap = 0;

    st->kind = LM_SQL_S_CREATE_TABLE;
    if (is_word(CUR(p), "IF") && is_word(peek(p, 1), "NOT")) {
        return fail_tok(p, CUR(p), "IF NOT EXISTS is not supported");
    }
    TRY(expect_name(p, &st->name, "a table name after CREATE TABLE"));
    TRY(expect_op(p, "(", "'(' and the columns after the table name"));
    for (;;) {
        const lm_sql_tok *tok = CUR(p);
        if (is_word(tok, "WATERMARK") && is_word(peek(p, 1), "FOR")) {
            lm_sql_pos pos = tok->pos;
            if (st->watermark_col.text != NULL) {
                return fail_at(p, pos, "a table has at most one WATERMARK clause");
            }
            advance(p);
            advance(p);
            TRY(expect_name(p, &st->watermark_col, "a column name after WATERMARK FOR"));
            TRY(expect_word(p, "AS", "AS and an expression after WATERMARK FOR column"));
            TRY(parse_expr(p, &st->watermark));
        } else if ((is_word(tok, "PRIMARY") && is_word(peek(p, 1), "KEY")) ||
                   is_word(tok, "CONSTRAINT")) {
            return fail_tok(p, tok, "PRIMARY KEY constraints are not supported");
        } else {
            lm_sql_column col = {0};
            TRY(expect_name(p, &col.name, "a column name"));
            if (is_word(CUR(p), "AS")) {
                advance(p);
                TRY(parse_expr(p, &col.computed));
            } else {
                TRY(parse_type(p, &col.type));
                if (is_word(CUR(p), "NOT")) {
                    advance(p);
                    TRY(expect_word(p, "NULL", "NULL after NOT"));
                    col.not_null = true;
                } else if (is_word(CUR(p), "NULL")) {
                    advance(p);
                }
            }
            PUSH(p, st->columns, st->ncolumns, cap, col);
        }
        if (is_op(CUR(p), ",")) {
            advance(p);
            continue;
        }
        TRY(expect_op(p, ")", "',' or ')' in the column list"));
        break;
    }
    if (is_word(CUR(p), "WITH")) {
        TRY(parse_options(p, st));
    }
    return LM_OK;
}

static int
parse_stmt(parser *p, lm_sql_stmt *st)
{
    const lm_sql_tok *tok = CUR(p);

    st->pos = tok->pos;
    if (is_word(tok, "CREATE")) {
        advance(p);
        if (is_word(CUR(p), "TABLE")) {
            advance(p);
            return parse_create_table(p, st);
        }
        if (is_word(CUR(p), "VIEW")) {
            st->kind = LM_SQL_S_CREATE_VIEW;
            advance(p);
            TRY(expect_name(p, &st->name, "a view name after CREATE VIEW"));
            TRY(expect_word(p, "AS", "AS and a query after the view name"));
            return parse_query(p, &st->query);
        }
        return expected(p, "TABLE or VIEW after CREATE");
    }
    if (is_word(tok, "INSERT")) {
        st->kind = LM_SQL_S_INSERT;
        advance(p);
        TRY(expect_word(p, "INTO", "INTO after INSERT"));
        TRY(expect_name(p, &st->name, "a table name after INSERT INTO"));
        if (is_op(CUR(p), "(") && !is_word(peek(p, 1), "SELECT") && !is_op(peek(p, 1), "(")) {
            return fail_tok(p, CUR(p), "a column list in INSERT INTO is not supported");
        }
        return parse_query(p, &st->query);
    }
    if (is_word(tok, "SET")) {
        st->kind = LM_SQL_S_SET;
        advance(p);
        tok = CUR(p);
        st->set_key_pos = tok->pos;
        if (tok->kind == LM_SQL_TOK_STRING) {
            TRY(tok_text(p, tok, &st->set_key));
            advance(p);
        } else if (tok->kind == LM_SQL_TOK_WORD) {
            TRY(parse_dotted(p, &st->set_key));
        } else {
            return expected(p, "a setting name after SET");
        }
        TRY(expect_op(p, "=", "'=' after the setting name"));
        return parse_value(p, &st->set_value, &st->set_value_pos, "a value after '='");
    }
    if (is_word(tok, "SELECT") || is_op(tok, "(") || is_word(tok, "VALUES") ||
        is_word(tok, "WITH")) {
        st->kind = LM_SQL_S_SELECT;
        return parse_query(p, &st->query);
    }
    return expected(p, "a statement (CREATE TABLE, CREATE VIEW, INSERT INTO, SET or SELECT)");
}

static int
parse_pipeline(parser *p)
{
    lm_sql_tree *t = p->t;
    uint32_t cap = 0;

    for (;;) {
        lm_sql_stmt st = {0};
        while (is_op(CUR(p), ";")) {
            advance(p);
        }
        if (CUR(p)->kind == LM_SQL_TOK_EOF) {
            return LM_OK;
        }
        TRY(parse_stmt(p, &st));
        PUSH(p, t->stmts, t->nstmts, cap, st);
        if (is_op(CUR(p), ";")) {
            continue;
        }
        if (CUR(p)->kind != LM_SQL_TOK_EOF) {
            return expected(p, "';' or end of input after the statement");
        }
    }
}

int
lm_sql_parse(const char *text, size_t len, lm_sql_tree **out, lm_sql_diag *d)
{
    lm_sql_diag local;
    struct lm_sql_arena *a;
    parser *p;
    lm_sql_tree *t;
    int rc;

    if (d == NULL) {
        d = &local;
    }
    memset(d, 0, sizeof(*d));
    if (out == NULL || (text == NULL && len > 0)) {
        return lm_sql_diag_set(d, (lm_sql_pos){0, 0}, "no text to parse");
    }
    *out = NULL;
    /* names and strings go into plans as JSON text: the pipeline must be UTF-8 */
    size_t bad = lm_sql_utf8_check(text, len);
    if (bad < len) {
        lm_sql_pos at = {1, 1};
        for (size_t i = 0; i < bad; i++) {
            if (text[i] == '\n') {
                at.line++;
                at.col = 1;
            } else {
                at.col++;
            }
        }
        return lm_sql_diag_set(d, at, "the text is not valid UTF-8 here (byte 0x%02x)",
                               (unsigned char)text[bad]);
    }
    if ((a = calloc(1, sizeof(*a))) == NULL || (t = arena_alloc(a, sizeof(*t))) == NULL) {
        free(a);
        lm_sql_diag_set(d, (lm_sql_pos){0, 0}, "out of memory");
        return LM_ENOMEM;
    }
    t->arena = a;
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        lm_sql_tree_free(t);
        lm_sql_diag_set(d, (lm_sql_pos){0, 0}, "out of memory");
        return LM_ENOMEM;
    }
    lm_sql_lex_init(&p->lx, text != NULL ? text : "", len);
    p->t = t;
    p->d = d;
    p->prev.kind = LM_SQL_TOK_EOF;
    rc = parse_pipeline(p);
    free(p);
    if (rc != LM_OK) {
        lm_sql_tree_free(t);
        return rc;
    }
    memset(d, 0, sizeof(*d));
    *out = t;
    return LM_OK;
}
