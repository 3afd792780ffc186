/*
 * lm_sql_ast.h: the syntax tree of a Laminar SQL pipeline, and the parser
 * that builds it.
 *
 * A pipeline is a list of statements separated by ';':
 *
 *   CREATE TABLE name (column, ..., [WATERMARK FOR col AS expr]) WITH ('k' = 'v', ...)
 *       column := name type [NOT NULL] | name AS expr
 *       type   := BOOLEAN | INT | INTEGER | BIGINT | DOUBLE | FLOAT | DECIMAL[(p[, s])]
 *               | VARCHAR[(n)] | STRING | TEXT | BYTES | VARBINARY | TIMESTAMP[(p)]
 *               | ROW<name type, ...>  (also ROW(name type, ...))
 *   CREATE VIEW name AS query
 *   INSERT INTO name query
 *   SET key = value              key: dotted words; value: literal or word
 *   query                        a bare query (its rows go to standard output)
 *
 *   query  := select [UNION ALL select ...]
 *   select := SELECT item, ... FROM from [WHERE e] [GROUP BY e, ...] [HAVING e]
 *             | '(' query ')'
 *   item   := * | name.* | e [[AS] alias]
 *   from   := ref {, ref | [INNER] JOIN ref ON e | LEFT [OUTER] JOIN ref ON e
 *                  | CROSS JOIN ref}
 *   ref    := name [[AS] alias] | '(' query ')' [AS] alias
 *           | TABLE '(' TUMBLE|HOP|SESSION '(' TABLE name, DESCRIPTOR '(' col ')',
 *                   interval, ... ')' ')' [[AS] alias]
 *
 * Expressions: literals (integers, decimals, 'strings', TRUE, FALSE, NULL,
 * INTERVAL '10' SECOND, INTERVAL '10 seconds', INTERVAL '1' MINUTE ...,
 * TIMESTAMP '2020-01-01 00:00:00'), names (a, t.a, t.a.b: resolved by the
 * binder), the operators + - * / % || = <> != < <= > >= AND OR NOT, unary
 * -, IS [NOT] NULL, [NOT] BETWEEN, [NOT] IN (list), [NOT] LIKE [ESCAPE],
 * CASE [operand] WHEN ... THEN ... [ELSE ...] END, CAST(e AS type),
 * function calls f(args), f(*), f(DISTINCT e). Precedence, low to high:
 * OR; AND; NOT; comparisons, IS, BETWEEN, IN, LIKE; || ; + -; * / %;
 * unary -. Keywords and unquoted names are case-insensitive (names are
 * kept as written and compared without case); "quoted" names keep their
 * case and are compared exactly. Comments: -- to end of line, and
 * slash-star ... star-slash.
 *
 * Constructs a streaming pipeline does not support (ORDER BY, LIMIT,
 * OFFSET, DISTINCT in SELECT, RIGHT/FULL JOIN, window functions with
 * OVER, ...) are parsed far enough to be named: "ORDER BY is not
 * supported in a streaming query".
 *
 * Every node records where it starts (line and column, 1-based, columns
 * counted in bytes) so that every later error can point at it.
 *
 * Memory: every node, string and list lives in the tree's arena and goes
 * with lm_sql_tree_free. Strings are NUL-terminated.
 */
#ifndef LM_SQL_AST_H
#define LM_SQL_AST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_err.h"

typedef struct lm_sql_pos {
    uint32_t line, col; /* 1-based; 0: unknown */
} lm_sql_pos;

/* A name as written: text without quotes, and whether it was quoted. */
typedef struct lm_sql_ident {
    const char *text;
    bool quoted;
    lm_sql_pos pos;
} lm_sql_ident;

/* --- types ---------------------------------------------------------- */

typedef enum lm_sql_type_kind {
    LM_SQL_T_BOOLEAN,
    LM_SQL_T_INT,    /* INT, INTEGER (32-bit in SQL; carried as int64) */
    LM_SQL_T_BIGINT, /* BIGINT */
    LM_SQL_T_DOUBLE, /* DOUBLE, FLOAT, REAL */
    LM_SQL_T_DECIMAL,
    LM_SQL_T_VARCHAR, /* VARCHAR, STRING, TEXT, CHAR */
    LM_SQL_T_BYTES,   /* BYTES, VARBINARY, BINARY */
    LM_SQL_T_TIMESTAMP,
    LM_SQL_T_INTERVAL, /* only as a value's type, never declared */
    LM_SQL_T_ROW,
} lm_sql_type_kind;

typedef struct lm_sql_type lm_sql_type;
typedef struct lm_sql_field lm_sql_field;

struct lm_sql_type {
    lm_sql_type_kind kind;
    int32_t precision;    /* TIMESTAMP(p), DECIMAL(p, s), VARCHAR(n); -1: not given */
    int32_t scale;        /* DECIMAL(p, s); -1: not given */
    lm_sql_field *fields; /* ROW: its fields */
    uint32_t nfields;
    lm_sql_pos pos;
};

struct lm_sql_field {
    lm_sql_ident name;
    lm_sql_type *type;
};

/* --- expressions ---------------------------------------------------- */

typedef enum lm_sql_expr_kind {
    LM_SQL_E_NAME,    /* a, t.a, t.a.b: parts[0..nparts) */
    LM_SQL_E_LIT,     /* lit */
    LM_SQL_E_STAR,    /* * or t.* (select lists; count(*) is a CALL with star) */
    LM_SQL_E_UNARY,   /* op: "-" or "not"; args[0] */
    LM_SQL_E_BINARY,  /* op: + - * / % || = <> < <= > >= and or; args[0], args[1]
                         ("!=" is turned into "<>") */
    LM_SQL_E_CALL,    /* name(args...); star: f(*); distinct: f(DISTINCT ...) */
    LM_SQL_E_CASE,    /* args: [operand?] when1 then1 when2 then2 ... [else];
                         has_operand, has_else say which are there */
    LM_SQL_E_CAST,    /* args[0] AS cast_type */
    LM_SQL_E_BETWEEN, /* args[0] BETWEEN args[1] AND args[2]; negated */
    LM_SQL_E_IN,      /* args[0] IN (args[1..]); negated */
    LM_SQL_E_LIKE,    /* args[0] LIKE args[1] [ESCAPE args[2]]; negated */
    LM_SQL_E_IS_NULL, /* args[0] IS NULL; negated: IS NOT NULL */
} lm_sql_expr_kind;

typedef enum lm_sql_lit_kind {
    LM_SQL_L_INT,       /* i */
    LM_SQL_L_FLOAT,     /* f; text keeps the digits as written */
    LM_SQL_L_STRING,    /* text (quotes removed, '' turned into ') */
    LM_SQL_L_BOOL,      /* b */
    LM_SQL_L_NULL,      /* */
    LM_SQL_L_INTERVAL,  /* i: microseconds */
    LM_SQL_L_TIMESTAMP, /* i: microseconds since the epoch, UTC */
} lm_sql_lit_kind;

typedef struct lm_sql_expr lm_sql_expr;
typedef struct lm_sql_query lm_sql_query;

struct lm_sql_expr {
    lm_sql_expr_kind kind;
    lm_sql_pos pos;
    /* NAME, STAR (qualifier: parts[0..nparts), none for a bare *) */
    lm_sql_ident *parts;
    uint32_t nparts;
    /* LIT */
    lm_sql_lit_kind lit;
    int64_t i;
    double f;
    bool b;
    const char *text;
    /* UNARY, BINARY */
    const char *op; /* lower case */
    /* CALL */
    lm_sql_ident name; /* function name */
    bool star, distinct;
    /* CASE */
    bool has_operand, has_else;
    /* CAST */
    lm_sql_type *cast_type;
    /* BETWEEN, IN, LIKE, IS_NULL */
    bool negated;
    /* operands of every kind that has them */
    lm_sql_expr **args;
    uint32_t nargs;
};

/* --- queries -------------------------------------------------------- */

typedef enum lm_sql_ref_kind {
    LM_SQL_REF_TABLE,    /* name [alias] */
    LM_SQL_REF_SUBQUERY, /* (query) alias */
    LM_SQL_REF_JOIN,     /* left JOIN right [ON on] */
    LM_SQL_REF_WINDOW,   /* TABLE(TUMBLE|HOP|SESSION(TABLE name, DESCRIPTOR(col), ...)) */
} lm_sql_ref_kind;

typedef enum lm_sql_join_kind {
    LM_SQL_JOIN_INNER, /* [INNER] JOIN ... ON */
    LM_SQL_JOIN_LEFT,  /* LEFT [OUTER] JOIN ... ON */
    LM_SQL_JOIN_CROSS, /* a comma or CROSS JOIN: no ON (the condition is in WHERE) */
} lm_sql_join_kind;

typedef enum lm_sql_window_fn {
    LM_SQL_WIN_TUMBLE, /* args: size */
    LM_SQL_WIN_HOP,    /* args: slide, size (Flink's order) */
    LM_SQL_WIN_SESSION /* args: gap */
} lm_sql_window_fn;

typedef struct lm_sql_ref lm_sql_ref;

struct lm_sql_ref {
    lm_sql_ref_kind kind;
    lm_sql_pos pos;
    lm_sql_ident name;   /* TABLE, WINDOW: the table */
    lm_sql_ident alias;  /* text NULL: none */
    lm_sql_query *query; /* SUBQUERY */
    /* JOIN */
    lm_sql_join_kind join;
    lm_sql_ref *left, *right;
    lm_sql_expr *on; /* NULL for CROSS */
    /* WINDOW */
    lm_sql_window_fn win;
    lm_sql_ident descriptor; /* the time column */
    lm_sql_expr **win_args;  /* the interval arguments, in the order written */
    uint32_t nwin_args;
};

typedef struct lm_sql_item {
    lm_sql_expr *expr;  /* a STAR for * and t.* */
    lm_sql_ident alias; /* text NULL: none */
} lm_sql_item;

struct lm_sql_query {
    lm_sql_pos pos;
    lm_sql_item *items;
    uint32_t nitems;
    lm_sql_ref *from;
    lm_sql_expr *where; /* or NULL */
    lm_sql_expr **group_by;
    uint32_t ngroup_by;
    lm_sql_expr *having;     /* or NULL */
    lm_sql_query *union_all; /* the next SELECT of a UNION ALL chain, or NULL */
};

/* --- statements ----------------------------------------------------- */

typedef enum lm_sql_stmt_kind {
    LM_SQL_S_CREATE_TABLE,
    LM_SQL_S_CREATE_VIEW,
    LM_SQL_S_INSERT,
    LM_SQL_S_SET,
    LM_SQL_S_SELECT,
} lm_sql_stmt_kind;

typedef struct lm_sql_column {
    lm_sql_ident name;
    lm_sql_type *type;     /* NULL for a computed column */
    bool not_null;         /* NOT NULL given */
    lm_sql_expr *computed; /* name AS expr, or NULL */
} lm_sql_column;

typedef struct lm_sql_option {
    const char *key, *value; /* 'key' = 'value' (quotes removed) */
    lm_sql_pos key_pos, value_pos;
} lm_sql_option;

typedef struct lm_sql_stmt {
    lm_sql_stmt_kind kind;
    lm_sql_pos pos;
    lm_sql_ident name; /* CREATE TABLE/VIEW name, INSERT INTO name */
    /* CREATE TABLE */
    lm_sql_column *columns;
    uint32_t ncolumns;
    lm_sql_ident watermark_col; /* text NULL: no WATERMARK clause */
    lm_sql_expr *watermark;     /* its expression */
    lm_sql_option *options;
    uint32_t noptions;
    /* CREATE VIEW, INSERT, SELECT */
    lm_sql_query *query;
    /* SET key = value */
    const char *set_key;    /* dotted, as written */
    lm_sql_pos set_key_pos; /* where the key starts */
    const char *set_value;  /* literal text (quotes removed) or word */
    lm_sql_pos set_value_pos;
} lm_sql_stmt;

/* A parsed pipeline. */
typedef struct lm_sql_tree {
    lm_sql_stmt *stmts;
    uint32_t nstmts;
    struct lm_sql_arena *arena; /* owns everything */
} lm_sql_tree;

/* --- errors --------------------------------------------------------- */

/* A compile error: where (line and column of the offending token or node)
 * and what, e.g. "expected ')' after the arguments of count, got ','". */
typedef struct lm_sql_diag {
    lm_sql_pos pos;
    char msg[512];
} lm_sql_diag;

/* Sets d (pos, printf-style message made one line of valid UTF-8) and
 * returns LM_EINVAL. d may be NULL. */
int lm_sql_diag_set(lm_sql_diag *d, lm_sql_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int lm_sql_diag_vset(lm_sql_diag *d, lm_sql_pos pos, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* --- the parser ----------------------------------------------------- */

/* Parses the pipeline text[0..len) (need not be NUL-terminated). Returns
 * LM_OK with *out (free with lm_sql_tree_free), LM_EINVAL with d saying
 * where and what was expected, or LM_ENOMEM. Never reads past len, never
 * recurses without bound: nesting deeper than 200 levels is an error. */
int lm_sql_parse(const char *text, size_t len, lm_sql_tree **out, lm_sql_diag *d);

void lm_sql_tree_free(lm_sql_tree *t);

/* Allocation in a tree's arena (zeroed; NULL when out of memory), for the
 * parser and for passes that rewrite the tree. */
void *lm_sql_alloc(lm_sql_tree *t, size_t size);
char *lm_sql_strdup(lm_sql_tree *t, const char *s, size_t len);

/* Whether two identifiers name the same thing: quoted ones compare
 * exactly, otherwise without case. */
bool lm_sql_ident_eq(const lm_sql_ident *a, const char *name, bool quoted);

/* Reads an interval written as text, the form INTERVAL '...' takes:
 * "N unit [N unit ...]" ('10 seconds', '1 min 30 s', '500ms'), units from
 * microseconds to days, into *us. Returns LM_OK, or LM_EINVAL when s[0..n)
 * is not such a text or is out of range. */
int lm_sql_interval_parse(const char *s, size_t n, int64_t *us);

#endif /* LM_SQL_AST_H */
