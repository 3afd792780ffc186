/*
 * fuzz_sql.c: libFuzzer target for the SQL lexer and parser.
 *
 * Every input is parsed as a pipeline, from an exact-size copy (no NUL
 * after it, so the address sanitizer sees any read past the length). A
 * rejected input must come with a one-line message and a position inside
 * the text; an accepted one has its whole tree walked, every node checked
 * for the shape lm_sql_ast.h promises (operand counts, names, types), so
 * that a half-built node or a dangling pointer shows up here rather than
 * in the binder.
 *
 * Build and run: make fuzz (FUZZ_SECONDS=...); seeds in
 * test/fuzz/corpus/fuzz_sql (the Nexmark DDL and queries).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_sql_ast.h"
#include "lm_sql_lex.h"

static void walk_query(const lm_sql_query *q);

static void
need(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "bad tree: %s\n", what);
        abort();
    }
}

static void
check_ident(const lm_sql_ident *id)
{
    need(id->text != NULL, "identifier without text");
    need(id->pos.line >= 1 && id->pos.col >= 1, "identifier without a position");
    (void)strlen(id->text);
}

static void
walk_type(const lm_sql_type *ty)
{
    need(ty != NULL, "missing type");
    need(ty->pos.line >= 1, "type without a position");
    need(ty->kind != LM_SQL_T_ROW || ty->nfields > 0, "empty ROW");
    for (uint32_t i = 0; i < ty->nfields; i++) {
        check_ident(&ty->fields[i].name);
        walk_type(ty->fields[i].type);
    }
}

static void
walk_expr(const lm_sql_expr *e)
{
    need(e != NULL, "missing expression");
    need(e->pos.line >= 1 && e->pos.col >= 1, "expression without a position");
    for (uint32_t i = 0; i < e->nargs; i++) {
        walk_expr(e->args[i]);
    }
    for (uint32_t i = 0; i < e->nparts; i++) {
        check_ident(&e->parts[i]);
    }
    switch (e->kind) {
    case LM_SQL_E_NAME: need(e->nparts >= 1, "name without parts"); break;
    case LM_SQL_E_LIT:
        need(e->lit != LM_SQL_L_STRING || e->text != NULL, "string literal without text");
        need(e->lit != LM_SQL_L_FLOAT || e->text != NULL, "decimal literal without text");
        break;
    case LM_SQL_E_STAR: break;
    case LM_SQL_E_UNARY:
        need(e->nargs == 1 && e->op != NULL, "unary operator shape");
        need(strcmp(e->op, "-") == 0 || strcmp(e->op, "not") == 0, "unary operator name");
        break;
    case LM_SQL_E_BINARY: need(e->nargs == 2 && e->op != NULL, "binary operator shape"); break;
    case LM_SQL_E_CALL:
        check_ident(&e->name);
        need(!e->star || e->nargs == 0, "f(*) with arguments");
        break;
    case LM_SQL_E_CASE:
        need(e->nargs >= (uint32_t)(2 + e->has_operand + e->has_else), "CASE too short");
        need((e->nargs - e->has_operand - e->has_else) % 2 == 0, "CASE without pairs");
        break;
    case LM_SQL_E_CAST:
        need(e->nargs == 1, "CAST shape");
        walk_type(e->cast_type);
        break;
    case LM_SQL_E_BETWEEN: need(e->nargs == 3, "BETWEEN shape"); break;
    case LM_SQL_E_IN: need(e->nargs >= 2, "IN shape"); break;
    case LM_SQL_E_LIKE: need(e->nargs == 2 || e->nargs == 3, "LIKE shape"); break;
    case LM_SQL_E_IS_NULL: need(e->nargs == 1, "IS NULL shape"); break;
    }
}

static void
walk_ref(const lm_sql_ref *r)
{
    need(r != NULL, "missing FROM item");
    if (r->alias.text != NULL) {
        check_ident(&r->alias);
    }
    switch (r->kind) {
    case LM_SQL_REF_TABLE: check_ident(&r->name); break;
    case LM_SQL_REF_SUBQUERY:
        need(r->alias.text != NULL, "subquery without alias");
        walk_query(r->query);
        break;
    case LM_SQL_REF_JOIN:
        walk_ref(r->left);
        walk_ref(r->right);
        need((r->join == LM_SQL_JOIN_CROSS) == (r->on == NULL), "join condition");
        if (r->on != NULL) {
            walk_expr(r->on);
        }
        break;
    case LM_SQL_REF_WINDOW:
        check_ident(&r->name);
        check_ident(&r->descriptor);
        need(r->nwin_args == (r->win == LM_SQL_WIN_HOP ? 2u : 1u), "window arguments");
        for (uint32_t i = 0; i < r->nwin_args; i++) {
            walk_expr(r->win_args[i]);
        }
        break;
    }
}

static void
walk_query(const lm_sql_query *q)
{
    for (; q != NULL; q = q->union_all) {
        need(q->nitems > 0, "query without items");
        for (uint32_t i = 0; i < q->nitems; i++) {
            walk_expr(q->items[i].expr);
            if (q->items[i].alias.text != NULL) {
                check_ident(&q->items[i].alias);
            }
        }
        walk_ref(q->from);
        if (q->where != NULL) {
            walk_expr(q->where);
        }
        for (uint32_t i = 0; i < q->ngroup_by; i++) {
            walk_expr(q->group_by[i]);
        }
        if (q->having != NULL) {
            walk_expr(q->having);
        }
    }
}

static void
walk_stmt(const lm_sql_stmt *st)
{
    switch (st->kind) {
    case LM_SQL_S_CREATE_TABLE:
        check_ident(&st->name);
        need(st->ncolumns > 0, "table without columns");
        for (uint32_t i = 0; i < st->ncolumns; i++) {
            check_ident(&st->columns[i].name);
            need((st->columns[i].type == NULL) != (st->columns[i].computed == NULL),
                 "column with both or neither of type and expression");
            if (st->columns[i].type != NULL) {
                walk_type(st->columns[i].type);
            } else {
                walk_expr(st->columns[i].computed);
            }
        }
        need((st->watermark_col.text == NULL) == (st->watermark == NULL), "watermark shape");
        if (st->watermark != NULL) {
            walk_expr(st->watermark);
        }
        for (uint32_t i = 0; i < st->noptions; i++) {
            need(st->options[i].key != NULL && st->options[i].value != NULL, "option shape");
        }
        break;
    case LM_SQL_S_CREATE_VIEW:
    case LM_SQL_S_INSERT:
        check_ident(&st->name);
        walk_query(st->query);
        break;
    case LM_SQL_S_SELECT: walk_query(st->query); break;
    case LM_SQL_S_SET: need(st->set_key != NULL && st->set_value != NULL, "SET shape"); break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size > 0 ? size : 1);
    lm_sql_tree *t = NULL;
    lm_sql_diag d;
    int rc;

    if (text == NULL) {
        return 0;
    }
    if (size > 0) {
        memcpy(text, data, size);
    }
    rc = lm_sql_parse(text, size, &t, &d);
    if (rc == LM_OK) {
        for (uint32_t i = 0; i < t->nstmts; i++) {
            walk_stmt(&t->stmts[i]);
        }
        lm_sql_tree_free(t);
    } else {
        uint32_t lines = 1;
        for (size_t i = 0; i < size; i++) {
            lines += text[i] == '\n';
        }
        need(rc == LM_EINVAL || rc == LM_ENOMEM, "error code");
        need(t == NULL, "a tree with an error");
        need(d.msg[0] != '\0' && strchr(d.msg, '\n') == NULL, "error message on one line");
        need(lm_sql_utf8_check(d.msg, strlen(d.msg)) == strlen(d.msg), "error message in UTF-8");
        need(d.pos.line >= 1 && d.pos.line <= lines && d.pos.col >= 1, "error position");
    }
    free(text);
    return 0;
}
