/*
 * lm_sql_lex.h: the tokenizer of Laminar SQL.
 *
 * The lexer turns text[0..len) (not necessarily NUL-terminated) into
 * tokens, one at a time, on demand. A token points into the text (start,
 * len: its raw bytes, quotes included) and records where it starts
 * (line and column, 1-based, columns counted in bytes). Keywords are not
 * tokens of their own: they are words the parser compares without case.
 *
 * Tokens: words ([A-Za-z_] or any byte >= 0x80, then also digits and $),
 * quoted names ("a ""b""" and `a ``b```), integers (value in u, at most
 * 2^63 so that the parser can fold -9223372036854775808), decimals (1.5,
 * .5, 1., 1e3, 2.5E-3), 'strings' ('' inside is one quote), operators and
 * punctuation ( ) , . ; * + - / % || = <> != < <= > >=. Whitespace and
 * comments (-- to end of line, slash-star ... star-slash) are skipped.
 *
 * Errors (LM_EINVAL with the diagnostic at the offending position): an
 * unterminated string, quoted name or comment, an unexpected character,
 * a malformed number (12abc) and an integer beyond 2^63. After an error the
 * lexer stays failed: every later call returns the same error.
 */
#ifndef LM_SQL_LEX_H
#define LM_SQL_LEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_sql_ast.h"

typedef enum lm_sql_tok_kind {
    LM_SQL_TOK_EOF,     /* end of input (repeats) */
    LM_SQL_TOK_WORD,    /* an unquoted name or keyword */
    LM_SQL_TOK_QNAME,   /* a "quoted" or `quoted` name */
    LM_SQL_TOK_INT,     /* u */
    LM_SQL_TOK_DECIMAL, /* the text is the number */
    LM_SQL_TOK_STRING,  /* a 'string' */
    LM_SQL_TOK_OP,      /* op */
    LM_SQL_TOK_ERROR,   /* not produced by the lexer: the parser's mark for a lexing error */
} lm_sql_tok_kind;

typedef struct lm_sql_tok {
    lm_sql_tok_kind kind;
    lm_sql_pos pos;
    const char *start; /* raw text, quotes included */
    size_t len;
    uint64_t u; /* INT: the value (at most 2^63) */
    char op[3]; /* OP: the operator, NUL-terminated ("!=" stays "!=") */
} lm_sql_tok;

typedef struct lm_sql_lexer {
    const char *text;
    size_t len;
    size_t off;        /* next byte to read */
    uint32_t line;     /* line of text[off] */
    size_t line_start; /* offset of the first byte of that line */
    bool failed;
    lm_sql_diag err; /* the error, once failed */
} lm_sql_lexer;

void lm_sql_lex_init(lm_sql_lexer *lx, const char *text, size_t len);

/* The length of the valid UTF-8 sequence (no overlong forms, no
 * surrogates) at text[0..n), or 0 when there is none. */
size_t lm_sql_utf8_len(const char *text, size_t n);

/* The offset of the first byte of text[0..len) that is not part of valid
 * UTF-8, or len when all of it is valid. */
size_t lm_sql_utf8_check(const char *text, size_t len);

/* Reads the next token into *tok. Returns LM_OK, or LM_EINVAL with d set
 * (d may be NULL) and the lexer failed for good. */
int lm_sql_lex_next(lm_sql_lexer *lx, lm_sql_tok *tok, lm_sql_diag *d);

/* The contents of a STRING or QNAME token without its quotes and with
 * doubled quotes made single, written to out (at least tok->len bytes;
 * not NUL-terminated). For other tokens, the raw text. Returns the
 * length written. */
size_t lm_sql_tok_unquote(const lm_sql_tok *tok, char *out);

/* Whether tok is the word kw (an unquoted word, compared without case). */
bool lm_sql_tok_is_word(const lm_sql_tok *tok, const char *kw);

/* Whether tok is the operator op. */
bool lm_sql_tok_is_op(const lm_sql_tok *tok, const char *op);

/* Describes tok for an error message, on one line, into buf: "end of
 * input", "','", "'FROM'", "string 'abc'"; long text is cut with "...".
 * Returns buf. */
const char *lm_sql_tok_describe(const lm_sql_tok *tok, char *buf, size_t size);

#endif /* LM_SQL_LEX_H */
