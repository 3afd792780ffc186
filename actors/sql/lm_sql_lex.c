/*
 * lm_sql_lex.c: the tokenizer of Laminar SQL.
 *
 * A hand-written scanner over a byte range: every read is checked against
 * len, so the text need not be NUL-terminated and may hold any bytes.
 * Positions are tracked as the scanner moves (line, and the offset where
 * the line starts, so a column is one subtraction).
 */
#include "lm_sql_lex.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lm_batch.h"
#include "lm_err.h"

void
lm_sql_lex_init(lm_sql_lexer *lx, const char *text, size_t len)
{
    memset(lx, 0, sizeof(*lx));
    lx->text = text;
    lx->len = len;
    lx->line = 1;
}

static lm_sql_pos
pos_at(const lm_sql_lexer *lx, size_t off)
{
    lm_sql_pos pos;
    pos.line = lx->line;
    pos.col = (uint32_t)(off - lx->line_start + 1);
    return pos;
}

static int lex_fail(lm_sql_lexer *lx, lm_sql_diag *d, lm_sql_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
lex_fail(lm_sql_lexer *lx, lm_sql_diag *d, lm_sql_pos pos, const char *fmt, ...)
{
    va_list ap;

    lx->failed = true;
    va_start(ap, fmt);
    lm_sql_diag_vset(&lx->err, pos, fmt, ap);
    va_end(ap);
    if (d != NULL) {
        *d = lx->err;
    }
    return LM_EINVAL;
}

static bool
is_word_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool
is_word_char(unsigned char c)
{
    return is_word_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Skips whitespace and comments. Returns LM_OK, or an error for an
 * unterminated comment. */
static int
skip_space(lm_sql_lexer *lx, lm_sql_diag *d)
{
    const char *s = lx->text;
    size_t n = lx->len;

    while (lx->off < n) {
        unsigned char c = (unsigned char)s[lx->off];
        if (c == '\n') {
            lx->off++;
            lx->line++;
            lx->line_start = lx->off;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            lx->off++;
        } else if (c == '-' && lx->off + 1 < n && s[lx->off + 1] == '-') {
            while (lx->off < n && s[lx->off] != '\n') {
                lx->off++;
            }
        } else if (c == '/' && lx->off + 1 < n && s[lx->off + 1] == '*') {
            lm_sql_pos start = pos_at(lx, lx->off);
            bool closed = false;
            lx->off += 2;
            while (lx->off < n) {
                if (s[lx->off] == '*' && lx->off + 1 < n && s[lx->off + 1] == '/') {
                    lx->off += 2;
                    closed = true;
                    break;
                }
                if (s[lx->off] == '\n') {
                    lx->line++;
                    lx->line_start = lx->off + 1;
                }
                lx->off++;
            }
            if (!closed) {
                return lex_fail(lx, d, start, "unterminated comment (no closing */)");
            }
        } else {
            break;
        }
    }
    return LM_OK;
}

/* A quoted run: 'string', "name" or `name`, where a doubled quote stands
 * for one. The opening quote is at lx->off. */
static int
lex_quoted(lm_sql_lexer *lx, lm_sql_tok *tok, lm_sql_diag *d)
{
    const char *s = lx->text;
    char q = s[lx->off];
    const char *what = q == '\'' ? "string" : "quoted name";
    size_t i = lx->off + 1;

    for (;;) {
        if (i >= lx->len) {
            return lex_fail(lx, d, tok->pos, "unterminated %s", what);
        }
        if (s[i] == '\0') {
            return lex_fail(lx, d, tok->pos, "NUL byte in a %s", what);
        }
        if (s[i] == q) {
            if (i + 1 < lx->len && s[i + 1] == q) {
                i += 2;
                continue;
            }
            i++;
            break;
        }
        if (s[i] == '\n') {
            lx->line++;
            lx->line_start = i + 1;
        }
        i++;
    }
    tok->kind = q == '\'' ? LM_SQL_TOK_STRING : LM_SQL_TOK_QNAME;
    tok->len = i - lx->off;
    if (q != '\'' && tok->len == 2) {
        return lex_fail(lx, d, tok->pos, "empty quoted name");
    }
    lx->off = i;
    return LM_OK;
}

static int
lex_number(lm_sql_lexer *lx, lm_sql_tok *tok, lm_sql_diag *d)
{
    const char *s = lx->text;
    size_t n = lx->len, i = lx->off;
    bool decimal = false;

    while (i < n && is_digit((unsigned char)s[i])) {
        i++;
    }
    if (i < n && s[i] == '.') {
        decimal = true;
        i++;
        while (i < n && is_digit((unsigned char)s[i])) {
            i++;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-')) {
            j++;
        }
        if (j < n && is_digit((unsigned char)s[j])) {
            decimal = true;
            i = j;
            while (i < n && is_digit((unsigned char)s[i])) {
                i++;
            }
        }
    }
    tok->len = i - lx->off;
    if (i < n && is_word_char((unsigned char)s[i])) {
        char buf[48];
        size_t j = i;
        while (j < n && is_word_char((unsigned char)s[j]) && j - lx->off < 40) {
            j++;
        }
        snprintf(buf, sizeof(buf), "%.*s%s", (int)(j - lx->off), s + lx->off,
                 j < n && is_word_char((unsigned char)s[j]) ? "..." : "");
        for (char *c = buf; *c != '\0'; c++) {
            if ((unsigned char)*c >= 0x80) {
                *c = '?';
            }
        }
        return lex_fail(lx, d, tok->pos, "malformed number '%s'", buf);
    }
    if (decimal) {
        tok->kind = LM_SQL_TOK_DECIMAL;
    } else {
        uint64_t v = 0;
        for (size_t k = lx->off; k < i; k++) {
            unsigned dg = (unsigned)(s[k] - '0');
            if (v > (UINT64_C(1) << 63) / 10 ||
                (v == (UINT64_C(1) << 63) / 10 && dg > (UINT64_C(1) << 63) % 10)) {
                char buf[48];
                snprintf(buf, sizeof(buf), "%.*s%s", (int)(tok->len > 40 ? 40 : tok->len),
                         s + lx->off, tok->len > 40 ? "..." : "");
                return lex_fail(lx, d, tok->pos,
                                "integer %s is out of range (a 64-bit integer is at most "
                                "9223372036854775807)",
                                buf);
            }
            v = v * 10 + dg;
        }
        tok->kind = LM_SQL_TOK_INT;
        tok->u = v;
    }
    lx->off = i;
    return LM_OK;
}

int
lm_sql_lex_next(lm_sql_lexer *lx, lm_sql_tok *tok, lm_sql_diag *d)
{
    const char *s = lx->text;
    size_t n = lx->len;
    unsigned char c, c2;
    int rc;

    memset(tok, 0, sizeof(*tok));
    if (lx->failed) {
        if (d != NULL) {
            *d = lx->err;
        }
        return LM_EINVAL;
    }
    if ((rc = skip_space(lx, d)) != LM_OK) {
        return rc;
    }
    tok->pos = pos_at(lx, lx->off);
    tok->start = s + lx->off;
    if (lx->off >= n) {
        tok->kind = LM_SQL_TOK_EOF;
        return LM_OK;
    }
    c = (unsigned char)s[lx->off];
    c2 = lx->off + 1 < n ? (unsigned char)s[lx->off + 1] : 0;
    if (is_word_start(c)) {
        size_t i = lx->off + 1;
        while (i < n && is_word_char((unsigned char)s[i])) {
            i++;
        }
        tok->kind = LM_SQL_TOK_WORD;
        tok->len = i - lx->off;
        lx->off = i;
        return LM_OK;
    }
    if (is_digit(c) || (c == '.' && is_digit(c2))) {
        return lex_number(lx, tok, d);
    }
    if (c == '\'' || c == '"' || c == '`') {
        return lex_quoted(lx, tok, d);
    }
    tok->kind = LM_SQL_TOK_OP;
    tok->len = 1;
    switch (c) {
    case '(':
    case ')':
    case ',':
    case '.':
    case ';':
    case '*':
    case '+':
    case '-':
    case '/':
    case '%':
    case '=': break;
    case '<':
    case '>':
        if (c2 == '=' || (c == '<' && c2 == '>')) {
            tok->len = 2;
        }
        break;
    case '!':
    case '|':
        if (c2 == (c == '!' ? '=' : '|')) {
            tok->len = 2;
            break;
        }
        /* fall through */
    default: {
        char buf[8];
        if (c >= 0x20 && c < 0x7f) {
            snprintf(buf, sizeof(buf), "%c", c);
        } else {
            snprintf(buf, sizeof(buf), "\\x%02x", c);
        }
        return lex_fail(lx, d, tok->pos, "unexpected character '%s'", buf);
    }
    }
    memcpy(tok->op, s + lx->off, tok->len);
    tok->op[tok->len] = '\0';
    lx->off += tok->len;
    return LM_OK;
}

size_t
lm_sql_tok_unquote(const lm_sql_tok *tok, char *out)
{
    size_t n = 0;

    if (tok->kind != LM_SQL_TOK_STRING && tok->kind != LM_SQL_TOK_QNAME) {
        memcpy(out, tok->start, tok->len);
        return tok->len;
    }
    for (size_t i = 1; i + 1 < tok->len; i++) {
        out[n++] = tok->start[i];
        if (tok->start[i] == tok->start[0]) {
            i++; /* the second of a doubled quote */
        }
    }
    return n;
}

bool
lm_sql_tok_is_word(const lm_sql_tok *tok, const char *kw)
{
    return tok->kind == LM_SQL_TOK_WORD && strlen(kw) == tok->len &&
           strncasecmp(tok->start, kw, tok->len) == 0;
}

bool
lm_sql_tok_is_op(const lm_sql_tok *tok, const char *op)
{
    return tok->kind == LM_SQL_TOK_OP && strcmp(tok->op, op) == 0;
}

size_t
lm_sql_utf8_len(const char *text, size_t n)
{
    const unsigned char c = (unsigned char)text[0];
    size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

    /* which sequences are valid is the runtime's rule (lm_batch.h) */
    return k <= n && lm_utf8_valid((const uint8_t *)text, k) ? k : 0;
}

const char *
lm_sql_tok_describe(const lm_sql_tok *tok, char *buf, size_t size)
{
    const unsigned char *s = (const unsigned char *)tok->start;
    const char *prefix = "'", *suffix = "'";
    size_t n, max = 40;

    if (size < 16) {
        if (size > 0) {
            buf[0] = '\0';
        }
        return buf;
    }
    switch (tok->kind) {
    case LM_SQL_TOK_EOF: snprintf(buf, size, "end of input"); return buf;
    case LM_SQL_TOK_ERROR: snprintf(buf, size, "an invalid token"); return buf;
    case LM_SQL_TOK_STRING:
        prefix = "string ";
        suffix = "";
        break;
    case LM_SQL_TOK_QNAME:
        prefix = "";
        suffix = "";
        break;
    default: break;
    }
    n = (size_t)snprintf(buf, size, "%s", prefix);
    for (size_t i = 0; i < tok->len;) {
        size_t k = lm_sql_utf8_len((const char *)s + i, tok->len - i);
        if (i >= max || n + 12 > size) {
            n += (size_t)snprintf(buf + n, size - n, "...");
            break;
        }
        if (k == 0 || s[i] < 0x20 || s[i] == 0x7f) {
            n += (size_t)snprintf(buf + n, size - n, "\\x%02x", s[i]);
            i++;
        } else {
            memcpy(buf + n, s + i, k);
            n += k;
            buf[n] = '\0';
            i += k;
        }
    }
    snprintf(buf + n, size - n, "%s", suffix);
    return buf;
}

size_t
lm_sql_utf8_check(const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t k = lm_sql_utf8_len(text + i, len - i);
        if (k == 0) {
            return i;
        }
        i += k;
    }
    return len;
}
