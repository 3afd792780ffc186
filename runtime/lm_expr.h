/*
 * lm_expr.h: SQL expressions compiled from JSON and evaluated over whole
 * batches (vectorized).
 *
 * Operators (filter, projection, aggregate arguments, join conditions)
 * compile an expression once against their input schema and evaluate it
 * batch by batch. Compiling binds column names to indices, checks and
 * infers types, inserts the implicit int64 -> float64 promotions and
 * folds constant subexpressions. The compiled tree is immutable: one tree
 * is shared by every subtask and thread. Each evaluating thread has its
 * own lm_expr_ctx (scratch buffers reused from batch to batch, the error
 * counter); evaluation dispatches on types once per node and batch and
 * then runs tight loops over the rows, with no per-row allocation.
 *
 * JSON grammar
 *   expr := {"col": NAME}                      column of the input schema
 *         | {"lit": 42} | {"lit": 0.5} | {"lit": "s"} | {"lit": true}
 *                                              int64, float64, utf8, bool
 *         | {"lit": null, "type": T}           a null literal needs a type
 *         | {"lit": VALUE, "type": T}          T: bool int64 float64 timestamp
 *                                              utf8 binary interval
 *         | {"call": NAME, "args": [expr...]}
 *         | {"case": [{"when": expr, "then": expr}...], "else": expr}
 *         | {"cast": expr, "to": T}
 *   Typed literals: timestamp as "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC; also
 *   the forms CAST(utf8 AS timestamp) accepts) or integer microseconds;
 *   interval as integer microseconds; float64 from an integer or a real;
 *   binary from a string (its UTF-8 bytes). Objects may hold no other keys.
 *   Function names are case-insensitive. Nesting is limited to 256 levels.
 *
 * Types: the batch types (lm_type) plus LM_TYPE_INTERVAL, a duration in
 * microseconds that exists only inside expressions (an output column
 * cannot have it; CAST(interval AS int64) gives the microseconds).
 *
 * Functions
 *   + - * / % mod neg abs ("-" with one argument is neg)
 *       int64 with int64 gives int64; int64 with float64 promotes to
 *       float64. timestamp + interval, interval + timestamp, timestamp -
 *       interval: timestamp; timestamp - timestamp: interval; interval +/-
 *       interval, interval * int64, int64 * interval, interval / int64:
 *       interval. neg and abs take int64, float64 or interval. % and mod
 *       take numbers. Integer division truncates toward zero; % and mod
 *       take the sign of the dividend (float: fmod).
 *   = <> != < <= > >=   numeric with numeric (int64 promoted to float64
 *       when mixed), timestamp, interval, bool (false < true), utf8 and
 *       binary (bytewise, a prefix sorts first) each with its own kind.
 *       float64 follows a total order: NaN equals NaN and is greater than
 *       every other value; -0.0 equals 0.0.
 *   and or (2 or more arguments), not: SQL three-valued logic.
 *   is_null is_not_null: never NULL.
 *   between not_between (x, lo, hi): x >= lo AND x <= hi, three-valued.
 *   in not_in (x, v1, ...): TRUE if x equals some vi; else NULL if x or
 *       some vi is NULL; else FALSE. not_in is NOT in.
 *   like not_like (s, pattern[, escape]): % any run of characters, _ one
 *       UTF-8 character; no escape character unless the third argument
 *       (a constant string of one character; '' means none) gives one. A
 *       constant pattern ending in the escape character is a compile error;
 *       a per-row one gives NULL and counts an error.
 *   lower upper (utf8): ASCII letters only, other bytes unchanged.
 *   substr substring (s, start[, len]): characters (bytes for binary),
 *       1-based, the window [start, start + len) clipped to the string, so
 *       substr('hello', 0, 2) = 'h', substr('hello', -1) = 'hello'. A
 *       negative len gives NULL and counts an error.
 *   concat (1 or more) || (2): all utf8 or all binary; NULL if any
 *       argument is NULL.
 *   length char_length: characters of utf8, bytes of binary.
 *   trim ltrim rtrim (utf8): strip spaces (U+0020 only).
 *   coalesce (1 or more, same types; int64 and float64 promote).
 *   case: 'when' must be bool (NULL counts as not taken); the 'then's and
 *       'else' share a type (int64/float64 promote); no else gives NULL.
 *
 * CAST (to the same type is a no-op)
 *   int64 -> float64; float64 -> int64 truncates toward zero (NaN or out
 *   of range: NULL, counted); bool <-> int64 (nonzero is true); int64 <->
 *   timestamp (microseconds); int64 <-> interval (microseconds); int64,
 *   float64, bool, timestamp -> utf8 (float64 as the shortest text that
 *   reads back exactly, with ".0" when integral, and "nan", "inf", "-inf";
 *   bool as "true"/"false"; timestamp as "YYYY-MM-DD HH:MM:SS.ffffff");
 *   utf8 -> int64 (optional sign and decimal digits), float64 (decimal or
 *   exponent form, inf, nan; no hex), bool (true false t f yes no y n on
 *   off 1 0, any case), timestamp ("YYYY-MM-DD", optionally followed by
 *   ' ' or 'T' and "HH:MM[:SS[.fraction]]", optionally by "Z" or an offset
 *   "+HH[:MM]"/"-HH[:MM]", which is applied), each allowing surrounding
 *   spaces, unparsable text giving NULL (counted); utf8 -> binary (the
 *   bytes); binary -> utf8 (NULL, counted, when not valid UTF-8). Every
 *   other pair is a compile error.
 *
 * Errors while evaluating: one rule. Integer overflow in + - * neg abs
 * (int64, timestamp and interval arithmetic), division or modulo by zero
 * (integer or float), a failed CAST and a negative substr length make that
 * row's result NULL and count one error in the context
 * (lm_expr_ctx_errors); evaluation goes on. Float overflow is not an error
 * (it gives +-inf). Only rows whose value matters are counted: a 'then'
 * counts only for rows its 'when' selects, an 'and' argument only for rows
 * not already FALSE (an 'or' argument: not already TRUE), a coalesce
 * argument only for rows still NULL. Constant folding never folds a
 * subexpression whose evaluation counts an error, so the counts do not
 * depend on folding.
 */
#ifndef LM_EXPR_H
#define LM_EXPR_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lm_batch.h"
#include "lm_err.h"

#define LM_TYPE_INTERVAL 32 /* expression-only type: microseconds */

/* A compiled expression: immutable, shareable between threads. */
typedef struct lm_expr lm_expr;

/* Per-thread evaluation state: scratch buffers and the error counter. */
typedef struct lm_expr_ctx lm_expr_ctx;

/* Compiles the JSON expression j against the input schema in (which is
 * only read during the call; the expression keeps no reference to it or
 * to j). On success *out is the caller's, to free with lm_expr_free.
 * Returns LM_OK, LM_ENOMEM, or LM_EINVAL with err saying where in the JSON
 * and what, e.g. "args[1]: unknown column 'prce' (did you mean
 * 'price'?)" or "args[0].args[1]: '+' needs numbers, timestamps or
 * intervals, got utf8 and int64". */
int lm_expr_compile(const json_t *j, const lm_schema *in, lm_expr **out, lm_error *err);

/* Frees a compiled expression. NULL is ignored. No context may be
 * evaluating it. */
void lm_expr_free(lm_expr *e);

/* The result type: an lm_type or LM_TYPE_INTERVAL. */
int lm_expr_type(const lm_expr *e);

/* Whether the result can be NULL. False only when it can never be
 * (non-nullable column, non-null literal, is_null(...), ...); true when
 * unsure (e.g. any int64 arithmetic, which can overflow). */
bool lm_expr_nullable(const lm_expr *e);

/* The input column index when e is a bare column reference, else -1. */
int lm_expr_column(const lm_expr *e);

/* Creates an evaluation context for one thread (it may serve any number
 * of expressions, one call at a time). Returns LM_OK or LM_ENOMEM. */
int lm_expr_ctx_new(lm_expr_ctx **out);

/* Frees a context and its scratch. NULL is ignored. */
void lm_expr_ctx_free(lm_expr_ctx *ctx);

/* Rows made NULL by an evaluation error since the context was made. */
uint64_t lm_expr_ctx_errors(const lm_expr_ctx *ctx);

/* Writes e's value for every row of in as column col of out: rows
 * out->nrows .. out->nrows + in->nrows - 1. The caller has called
 * lm_batch_reserve(out, out->nrows + in->nrows) and calls
 * lm_batch_commit_rows(out, in->nrows) after filling all its columns (a
 * var-width column must have exactly out->nrows values before the call).
 * out's field col must have e's type; NULLs need the field nullable.
 * in must have the schema e was compiled against (same types at the
 * referenced columns). Returns LM_OK; LM_ENOMEM; LM_ETOOBIG (string column
 * past 2 GiB); LM_EINVAL with err when the types or the batches do not
 * fit or a NULL would go into a non-nullable field (out's rows past nrows
 * are then partly written: discard them). Neither batch is kept. */
int lm_expr_eval_into(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, lm_batch *out,
                      uint32_t col, lm_error *err);

/* Evaluates the bool predicate pred over in and writes the indices of the
 * rows where it is TRUE (not FALSE, not NULL), ascending, into sel (room
 * for in->nrows), and their count into *n. Returns LM_OK, LM_ENOMEM, or
 * LM_EINVAL (pred not bool, or in does not fit). */
int lm_expr_filter(lm_expr_ctx *ctx, const lm_expr *pred, const lm_batch *in, uint32_t *sel,
                   uint32_t *n, lm_error *err);

/* Evaluates an int64, timestamp or interval expression into
 * vals[0..in->nrows) with valid[i] = 1 when row i is not NULL, else 0
 * (vals[i] is then 0). For operators' keys and timestamps without building
 * a batch. Returns LM_OK, LM_ENOMEM or LM_EINVAL (wrong type, or in does
 * not fit). */
int lm_expr_eval_i64(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, int64_t *vals,
                     uint8_t *valid, lm_error *err);

/* As lm_expr_eval_i64 for a float64 expression (an int64 one is
 * converted). NULL rows get 0.0. */
int lm_expr_eval_f64(lm_expr_ctx *ctx, const lm_expr *e, const lm_batch *in, double *vals,
                     uint8_t *valid, lm_error *err);

#endif /* LM_EXPR_H */
