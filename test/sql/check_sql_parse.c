/*
 * check_sql_parse.c: the SQL lexer and parser (lm_sql_lex, lm_sql_parse):
 * the Nexmark DDL and queries parse into the expected trees, operators
 * bind as the grammar says, literals get their values, and every kind of
 * malformed input fails cleanly with the right position and message.
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_sql_ast.h"
#include "lm_sql_lex.h"

/* --- helpers -------------------------------------------------------------- */

static lm_sql_tree *
parse_ok(const char *text)
{
    lm_sql_tree *t = NULL;
    lm_sql_diag d;
    int rc = lm_sql_parse(text, strlen(text), &t, &d);
    if (rc != LM_OK) {
        ck_abort_msg("parse failed at %u:%u: %s\n%s", d.pos.line, d.pos.col, d.msg, text);
    }
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Parses text, which must fail at line:col with a message containing frag. */
static void
parse_err(const char *text, uint32_t line, uint32_t col, const char *frag)
{
    lm_sql_tree *t = NULL;
    lm_sql_diag d;
    int rc = lm_sql_parse(text, strlen(text), &t, &d);
    if (rc == LM_OK) {
        lm_sql_tree_free(t);
        ck_abort_msg("parsed, but should fail with \"%s\": %s", frag, text);
    }
    ck_assert_int_eq(rc, LM_EINVAL);
    ck_assert_ptr_null(t);
    if (strstr(d.msg, frag) == NULL || d.pos.line != line || d.pos.col != col) {
        ck_abort_msg("%s\n  got      %u:%u: %s\n  expected %u:%u: ...%s...", text, d.pos.line,
                     d.pos.col, d.msg, line, col, frag);
    }
    ck_assert_ptr_null(strchr(d.msg, '\n'));
}

typedef struct sbuf {
    char s[2048];
    size_t n;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    if (b->n >= sizeof(b->s) - 1) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
    va_end(ap);
    if (n > 0) {
        b->n += (size_t)n;
        if (b->n > sizeof(b->s) - 1) {
            b->n = sizeof(b->s) - 1;
        }
    }
}

static void
dump(sbuf *b, const lm_sql_expr *e)
{
    static const char *const types[] = {"boolean", "int",   "bigint",    "double",   "decimal",
                                        "varchar", "bytes", "timestamp", "interval", "row"};
    const char *name = NULL;

    switch (e->kind) {
    case LM_SQL_E_NAME:
    case LM_SQL_E_STAR:
        for (uint32_t i = 0; i < e->nparts; i++) {
            sb_printf(b, "%s%s", i > 0 ? "." : "", e->parts[i].text);
        }
        if (e->kind == LM_SQL_E_STAR) {
            sb_printf(b, "%s*", e->nparts > 0 ? "." : "");
        }
        return;
    case LM_SQL_E_LIT:
        switch (e->lit) {
        case LM_SQL_L_INT: sb_printf(b, "%lld", (long long)e->i); break;
        case LM_SQL_L_FLOAT: sb_printf(b, "%s", e->text); break;
        case LM_SQL_L_STRING: sb_printf(b, "'%s'", e->text); break;
        case LM_SQL_L_BOOL: sb_printf(b, "%s", e->b ? "true" : "false"); break;
        case LM_SQL_L_NULL: sb_printf(b, "null"); break;
        case LM_SQL_L_INTERVAL: sb_printf(b, "interval:%lld", (long long)e->i); break;
        case LM_SQL_L_TIMESTAMP: sb_printf(b, "ts:%lld", (long long)e->i); break;
        }
        return;
    case LM_SQL_E_CALL:
        sb_printf(b, "%s(%s%s", e->name.text, e->distinct ? "distinct " : "", e->star ? "*" : "");
        for (uint32_t i = 0; i < e->nargs; i++) {
            if (i > 0) {
                sb_printf(b, ", ");
            }
            dump(b, e->args[i]);
        }
        sb_printf(b, ")");
        return;
    case LM_SQL_E_CAST:
        sb_printf(b, "(cast ");
        dump(b, e->args[0]);
        sb_printf(b, " %s)", types[e->cast_type->kind]);
        return;
    case LM_SQL_E_UNARY:
    case LM_SQL_E_BINARY: name = e->op; break;
    case LM_SQL_E_CASE: name = e->has_operand ? "case-op" : "case"; break;
    case LM_SQL_E_BETWEEN: name = e->negated ? "not-between" : "between"; break;
    case LM_SQL_E_IN: name = e->negated ? "not-in" : "in"; break;
    case LM_SQL_E_LIKE: name = e->negated ? "not-like" : "like"; break;
    case LM_SQL_E_IS_NULL: name = e->negated ? "is-not-null" : "is-null"; break;
    }
    sb_printf(b, "(%s", name);
    for (uint32_t i = 0; i < e->nargs; i++) {
        sb_printf(b, " ");
        dump(b, e->args[i]);
    }
    if (e->kind == LM_SQL_E_CASE && e->has_else) {
        sb_printf(b, " :else");
    }
    sb_printf(b, ")");
}

/* The first select item of SELECT <expr> FROM t, dumped. */
static void
check_expr(const char *expr, const char *want)
{
    char text[1024];
    sbuf b = {.n = 0};
    lm_sql_tree *t;

    snprintf(text, sizeof(text), "SELECT %s FROM t", expr);
    t = parse_ok(text);
    ck_assert_uint_eq(t->nstmts, 1);
    dump(&b, t->stmts[0].query->items[0].expr);
    if (strcmp(b.s, want) != 0) {
        ck_abort_msg("%s\n  got  %s\n  want %s", expr, b.s, want);
    }
    lm_sql_tree_free(t);
}

/* The literal SELECT <expr> FROM t makes. */
static lm_sql_expr *
lit_of(lm_sql_tree **t, const char *expr, lm_sql_lit_kind kind)
{
    char text[1024];
    lm_sql_expr *e;

    snprintf(text, sizeof(text), "SELECT %s FROM t", expr);
    *t = parse_ok(text);
    e = (*t)->stmts[0].query->items[0].expr;
    if (e->kind != LM_SQL_E_LIT || e->lit != kind) {
        ck_abort_msg("%s: not a literal of kind %d (kind %d, lit %d)", expr, (int)kind,
                     (int)e->kind, (int)e->lit);
    }
    return e;
}

static void
check_interval(const char *expr, int64_t us)
{
    lm_sql_tree *t;
    lm_sql_expr *e = lit_of(&t, expr, LM_SQL_L_INTERVAL);
    if (e->i != us) {
        ck_abort_msg("%s: %lld us, want %lld", expr, (long long)e->i, (long long)us);
    }
    lm_sql_tree_free(t);
}

static void
check_name(const lm_sql_ident *id, const char *text)
{
    ck_assert_ptr_nonnull(id->text);
    ck_assert_str_eq(id->text, text);
}

static void
check_field(const lm_sql_field *f, const char *name, lm_sql_type_kind kind)
{
    check_name(&f->name, name);
    ck_assert_int_eq(f->type->kind, kind);
}

/* --- the Nexmark pipeline ------------------------------------------------- */

static const char nexmark_ddl[] =
    "CREATE TABLE datagen (\n"
    "    event_type int,\n"
    "    person  ROW<id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR,\n"
    "                city VARCHAR, state VARCHAR, dateTime TIMESTAMP(3), extra VARCHAR>,\n"
    "    auction ROW<id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT,\n"
    "                reserve BIGINT, dateTime TIMESTAMP(3), expires TIMESTAMP(3),\n"
    "                seller BIGINT, category BIGINT, extra VARCHAR>,\n"
    "    bid     ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR,\n"
    "                url VARCHAR, dateTime TIMESTAMP(3), extra VARCHAR>,\n"
    "    dateTime AS CASE WHEN event_type = 0 THEN person.dateTime\n"
    "                     WHEN event_type = 1 THEN auction.dateTime\n"
    "                     ELSE bid.dateTime END,\n"
    "    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND\n"
    ") WITH ('connector' = 'nexmark', 'first-event.rate' = '10000', 'events.num' = "
    "'10000000');\n"
    "\n"
    "CREATE VIEW person AS\n"
    "SELECT person.id, person.name, person.emailAddress, person.creditCard, person.city,\n"
    "       person.state, dateTime, person.extra\n"
    "FROM datagen WHERE event_type = 0;\n"
    "\n"
    "CREATE VIEW auction AS\n"
    "SELECT auction.id, auction.itemName, auction.description, auction.initialBid,\n"
    "       auction.reserve, dateTime, auction.expires, auction.seller, auction.category,\n"
    "       auction.extra\n"
    "FROM datagen WHERE event_type = 1;\n"
    "\n"
    "CREATE VIEW bid AS\n"
    "SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, dateTime, bid.extra\n"
    "FROM datagen WHERE event_type = 2;\n";

static const char *const nexmark_queries[] = {
    /* q0 */
    "SELECT auction, bidder, price, dateTime, extra FROM bid;",
    /* q1 */
    "SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid;",
    /* q2 */
    "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;",
    /* q3 */
    "SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P on A.seller "
    "= P.id\n"
    "WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');",
    /* q4 */
    "SELECT Q.category, AVG(Q.final) FROM (\n"
    "  SELECT MAX(B.price) AS final, A.category FROM auction A, bid B\n"
    "  WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires\n"
    "  GROUP BY A.id, A.category) Q GROUP BY Q.category;",
    /* q5 */
    "SELECT AuctionBids.auction, AuctionBids.num FROM (\n"
    "  SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime\n"
    "  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' "
    "SECOND))\n"
    "  GROUP BY auction, window_start, window_end) AS AuctionBids\n"
    "JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM (\n"
    "  SELECT count(*) AS num, window_start AS starttime, window_end AS endtime\n"
    "  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' "
    "SECOND))\n"
    "  GROUP BY auction, window_start, window_end) AS CountBids\n"
    "  GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids\n"
    "ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime\n"
    "   AND AuctionBids.num >= MaxBids.maxn;",
    /* q7 */
    "SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B\n"
    "JOIN (SELECT MAX(price) AS maxprice, window_end as dateTime\n"
    "      FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))\n"
    "      GROUP BY window_start, window_end) B1\n"
    "ON B.price = B1.maxprice\n"
    "WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime;",
    /* q8 */
    "SELECT P.id, P.name, P.starttime FROM (\n"
    "  SELECT id, name, window_start AS starttime, window_end AS endtime\n"
    "  FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))\n"
    "  GROUP BY id, name, window_start, window_end) P\n"
    "JOIN (SELECT seller, window_start AS starttime, window_end AS endtime\n"
    "  FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))\n"
    "  GROUP BY seller, window_start, window_end) A\n"
    "ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime;",
};

enum { Q0, Q1, Q2, Q3, Q4, Q5, Q7, Q8, NQUERIES };

static lm_sql_query *
query_of(lm_sql_tree **t, int q)
{
    *t = parse_ok(nexmark_queries[q]);
    ck_assert_uint_eq((*t)->nstmts, 1);
    ck_assert_int_eq((*t)->stmts[0].kind, LM_SQL_S_SELECT);
    return (*t)->stmts[0].query;
}

START_TEST(test_sql_nexmark_ddl)
{
    lm_sql_tree *t = parse_ok(nexmark_ddl);
    const lm_sql_stmt *st = &t->stmts[0];
    const lm_sql_type *ty;
    sbuf b = {.n = 0};
    static const char *const views[] = {"person", "auction", "bid"};
    static const uint32_t nitems[] = {8, 10, 7};

    ck_assert_uint_eq(t->nstmts, 4);
    ck_assert_int_eq(st->kind, LM_SQL_S_CREATE_TABLE);
    check_name(&st->name, "datagen");
    ck_assert_uint_eq(st->pos.line, 1);
    ck_assert_uint_eq(st->pos.col, 1);
    ck_assert_uint_eq(st->ncolumns, 5);
    check_name(&st->columns[0].name, "event_type");
    ck_assert_int_eq(st->columns[0].type->kind, LM_SQL_T_INT);
    ck_assert(!st->columns[0].not_null);
    ck_assert_uint_eq(st->columns[0].name.pos.line, 2);
    ck_assert_uint_eq(st->columns[0].name.pos.col, 5);

    check_name(&st->columns[1].name, "person");
    ty = st->columns[1].type;
    ck_assert_int_eq(ty->kind, LM_SQL_T_ROW);
    ck_assert_uint_eq(ty->nfields, 8);
    check_field(&ty->fields[0], "id", LM_SQL_T_BIGINT);
    check_field(&ty->fields[1], "name", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[2], "emailAddress", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[3], "creditCard", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[4], "city", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[5], "state", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[6], "dateTime", LM_SQL_T_TIMESTAMP);
    ck_assert_int_eq(ty->fields[6].type->precision, 3);
    ck_assert_int_eq(ty->fields[1].type->precision, -1);
    check_field(&ty->fields[7], "extra", LM_SQL_T_VARCHAR);

    check_name(&st->columns[2].name, "auction");
    ty = st->columns[2].type;
    ck_assert_uint_eq(ty->nfields, 10);
    check_field(&ty->fields[0], "id", LM_SQL_T_BIGINT);
    check_field(&ty->fields[1], "itemName", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[2], "description", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[3], "initialBid", LM_SQL_T_BIGINT);
    check_field(&ty->fields[4], "reserve", LM_SQL_T_BIGINT);
    check_field(&ty->fields[5], "dateTime", LM_SQL_T_TIMESTAMP);
    check_field(&ty->fields[6], "expires", LM_SQL_T_TIMESTAMP);
    check_field(&ty->fields[7], "seller", LM_SQL_T_BIGINT);
    check_field(&ty->fields[8], "category", LM_SQL_T_BIGINT);
    check_field(&ty->fields[9], "extra", LM_SQL_T_VARCHAR);

    check_name(&st->columns[3].name, "bid");
    ty = st->columns[3].type;
    ck_assert_uint_eq(ty->nfields, 7);
    check_field(&ty->fields[0], "auction", LM_SQL_T_BIGINT);
    check_field(&ty->fields[1], "bidder", LM_SQL_T_BIGINT);
    check_field(&ty->fields[2], "price", LM_SQL_T_BIGINT);
    check_field(&ty->fields[3], "channel", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[4], "url", LM_SQL_T_VARCHAR);
    check_field(&ty->fields[5], "dateTime", LM_SQL_T_TIMESTAMP);
    check_field(&ty->fields[6], "extra", LM_SQL_T_VARCHAR);

    /* the computed column */
    check_name(&st->columns[4].name, "dateTime");
    ck_assert_ptr_null(st->columns[4].type);
    ck_assert_ptr_nonnull(st->columns[4].computed);
    dump(&b, st->columns[4].computed);
    ck_assert_str_eq(b.s, "(case (= event_type 0) person.dateTime (= event_type 1) "
                          "auction.dateTime bid.dateTime :else)");
    ck_assert_uint_eq(st->columns[4].computed->pos.line, 10);
    ck_assert_uint_eq(st->columns[4].computed->pos.col, 17);

    /* the watermark */
    check_name(&st->watermark_col, "dateTime");
    b.n = 0;
    dump(&b, st->watermark);
    ck_assert_str_eq(b.s, "(- dateTime interval:4000000)");

    /* the options */
    ck_assert_uint_eq(st->noptions, 3);
    ck_assert_str_eq(st->options[0].key, "connector");
    ck_assert_str_eq(st->options[0].value, "nexmark");
    ck_assert_str_eq(st->options[1].key, "first-event.rate");
    ck_assert_str_eq(st->options[1].value, "10000");
    ck_assert_str_eq(st->options[2].key, "events.num");
    ck_assert_str_eq(st->options[2].value, "10000000");
    ck_assert_uint_eq(st->options[0].key_pos.line, 14);
    ck_assert_uint_eq(st->options[0].key_pos.col, 9);
    ck_assert_uint_eq(st->options[0].value_pos.col, 23);

    /* the views */
    for (int v = 0; v < 3; v++) {
        const lm_sql_stmt *vs = &t->stmts[1 + v];
        const lm_sql_query *q = vs->query;
        ck_assert_int_eq(vs->kind, LM_SQL_S_CREATE_VIEW);
        check_name(&vs->name, views[v]);
        ck_assert_uint_eq(q->nitems, nitems[v]);
        ck_assert_int_eq(q->from->kind, LM_SQL_REF_TABLE);
        check_name(&q->from->name, "datagen");
        ck_assert_ptr_null(q->from->alias.text);
        b.n = 0;
        dump(&b, q->where);
        ck_assert_str_eq(b.s, v == 0   ? "(= event_type 0)"
                              : v == 1 ? "(= event_type 1)"
                                       : "(= event_type 2)");
        ck_assert_int_eq(q->items[0].expr->kind, LM_SQL_E_NAME);
        ck_assert_uint_eq(q->items[0].expr->nparts, 2);
        check_name(&q->items[0].expr->parts[0], views[v]);
        ck_assert_ptr_null(q->items[0].alias.text);
        ck_assert_ptr_null(q->union_all);
        ck_assert_uint_eq(q->ngroup_by, 0);
    }
    b.n = 0;
    dump(&b, t->stmts[3].query->items[5].expr);
    ck_assert_str_eq(b.s, "dateTime");
    ck_assert_uint_eq(t->stmts[3].pos.line, 27);
    lm_sql_tree_free(t);
}
END_TEST

START_TEST(test_sql_nexmark_queries)
{
    lm_sql_tree *t;
    lm_sql_query *q, *sub;
    lm_sql_ref *r;
    sbuf b = {.n = 0};

    /* all of them, and all of them after the DDL in one pipeline */
    {
        static char all[16384];
        size_t n = 0;
        n += (size_t)snprintf(all + n, sizeof(all) - n, "%s", nexmark_ddl);
        for (int i = 0; i < NQUERIES; i++) {
            t = parse_ok(nexmark_queries[i]);
            lm_sql_tree_free(t);
            n += (size_t)snprintf(all + n, sizeof(all) - n, "\n%s", nexmark_queries[i]);
        }
        ck_assert_uint_lt(n, sizeof(all));
        t = parse_ok(all);
        ck_assert_uint_eq(t->nstmts, 4 + NQUERIES);
        lm_sql_tree_free(t);
    }

    /* q0 */
    q = query_of(&t, Q0);
    ck_assert_uint_eq(q->nitems, 5);
    check_name(&q->from->name, "bid");
    ck_assert_ptr_null(q->where);
    lm_sql_tree_free(t);

    /* q1: 0.908 * price as price */
    q = query_of(&t, Q1);
    dump(&b, q->items[2].expr);
    ck_assert_str_eq(b.s, "(* 0.908 price)");
    ck_assert_double_eq_tol(q->items[2].expr->args[0]->f, 0.908, 1e-12);
    check_name(&q->items[2].alias, "price");
    lm_sql_tree_free(t);

    /* q2 */
    q = query_of(&t, Q2);
    b.n = 0;
    dump(&b, q->where);
    ck_assert_str_eq(b.s, "(= MOD(auction, 123) 0)");
    lm_sql_tree_free(t);

    /* q3: INNER JOIN ... on, AND over a parenthesized OR */
    q = query_of(&t, Q3);
    r = q->from;
    ck_assert_int_eq(r->kind, LM_SQL_REF_JOIN);
    ck_assert_int_eq(r->join, LM_SQL_JOIN_INNER);
    check_name(&r->left->name, "auction");
    check_name(&r->left->alias, "A");
    check_name(&r->right->name, "person");
    check_name(&r->right->alias, "P");
    b.n = 0;
    dump(&b, r->on);
    ck_assert_str_eq(b.s, "(= A.seller P.id)");
    b.n = 0;
    dump(&b, q->where);
    ck_assert_str_eq(b.s, "(and (= A.category 10) (or (or (= P.state 'OR') (= P.state 'ID')) "
                          "(= P.state 'CA')))");
    lm_sql_tree_free(t);

    /* q4: a subquery with a comma join and BETWEEN in WHERE */
    q = query_of(&t, Q4);
    ck_assert_int_eq(q->from->kind, LM_SQL_REF_SUBQUERY);
    check_name(&q->from->alias, "Q");
    ck_assert_uint_eq(q->ngroup_by, 1);
    sub = q->from->query;
    r = sub->from;
    ck_assert_int_eq(r->kind, LM_SQL_REF_JOIN);
    ck_assert_int_eq(r->join, LM_SQL_JOIN_CROSS);
    ck_assert_ptr_null(r->on);
    check_name(&r->left->alias, "A");
    check_name(&r->right->alias, "B");
    b.n = 0;
    dump(&b, sub->where);
    ck_assert_str_eq(b.s, "(and (= A.id B.auction) (between B.dateTime A.dateTime A.expires))");
    ck_assert_uint_eq(sub->ngroup_by, 2);
    b.n = 0;
    dump(&b, sub->items[0].expr);
    ck_assert_str_eq(b.s, "MAX(B.price)");
    lm_sql_tree_free(t);

    /* q5: two HOP windows, slide 2 s and size 10 s */
    q = query_of(&t, Q5);
    r = q->from;
    ck_assert_int_eq(r->kind, LM_SQL_REF_JOIN);
    ck_assert_int_eq(r->join, LM_SQL_JOIN_INNER);
    ck_assert_int_eq(r->left->kind, LM_SQL_REF_SUBQUERY);
    check_name(&r->left->alias, "AuctionBids");
    check_name(&r->right->alias, "MaxBids");
    {
        const lm_sql_ref *w1 = r->left->query->from;
        const lm_sql_ref *cb = r->right->query->from;
        const lm_sql_ref *w2;
        ck_assert_int_eq(cb->kind, LM_SQL_REF_SUBQUERY);
        check_name(&cb->alias, "CountBids");
        w2 = cb->query->from;
        const lm_sql_ref *ws[2] = {w1, w2};
        for (int i = 0; i < 2; i++) {
            ck_assert_int_eq(ws[i]->kind, LM_SQL_REF_WINDOW);
            ck_assert_int_eq(ws[i]->win, LM_SQL_WIN_HOP);
            check_name(&ws[i]->name, "bid");
            check_name(&ws[i]->descriptor, "dateTime");
            ck_assert_uint_eq(ws[i]->nwin_args, 2);
            ck_assert_int_eq(ws[i]->win_args[0]->lit, LM_SQL_L_INTERVAL);
            ck_assert_int_eq(ws[i]->win_args[0]->i, 2000000);
            ck_assert_int_eq(ws[i]->win_args[1]->i, 10000000);
            ck_assert_ptr_null(ws[i]->alias.text);
        }
        ck_assert_uint_eq(w1->pos.line, 3);
        ck_assert_uint_eq(w1->pos.col, 8);
    }
    b.n = 0;
    dump(&b, r->left->query->items[1].expr);
    ck_assert_str_eq(b.s, "count(*)");
    ck_assert(r->left->query->items[1].expr->star);
    b.n = 0;
    dump(&b, r->on);
    ck_assert_str_eq(b.s, "(and (and (= AuctionBids.starttime MaxBids.starttime) (= "
                          "AuctionBids.endtime MaxBids.endtime)) (>= AuctionBids.num "
                          "MaxBids.maxn))");
    lm_sql_tree_free(t);

    /* q7: BETWEEN with interval arithmetic */
    q = query_of(&t, Q7);
    r = q->from;
    ck_assert_int_eq(r->kind, LM_SQL_REF_JOIN);
    check_name(&r->left->name, "bid");
    check_name(&r->left->alias, "B");
    check_name(&r->right->alias, "B1");
    ck_assert_int_eq(r->right->query->from->kind, LM_SQL_REF_WINDOW);
    ck_assert_int_eq(r->right->query->from->win, LM_SQL_WIN_TUMBLE);
    ck_assert_int_eq(r->right->query->from->win_args[0]->i, 10000000);
    check_name(&r->right->query->items[1].alias, "dateTime");
    b.n = 0;
    dump(&b, q->where);
    ck_assert_str_eq(b.s, "(between B.dateTime (- B1.dateTime interval:10000000) B1.dateTime)");
    ck_assert_uint_eq(q->where->pos.line, 6);
    ck_assert_uint_eq(q->where->pos.col, 7);
    lm_sql_tree_free(t);

    /* q8: two TUMBLE windows over different tables */
    q = query_of(&t, Q8);
    r = q->from;
    ck_assert_int_eq(r->left->query->from->win, LM_SQL_WIN_TUMBLE);
    check_name(&r->left->query->from->name, "person");
    check_name(&r->right->query->from->name, "auction");
    ck_assert_uint_eq(r->left->query->ngroup_by, 4);
    lm_sql_tree_free(t);
}
END_TEST

/* Arroyo's windows are ordinary calls in GROUP BY, for the binder. */
START_TEST(test_sql_arroyo_windows)
{
    lm_sql_tree *t = parse_ok(
        "SELECT auction, count(*) AS num, hop(interval '2 seconds', interval '10 seconds') AS w\n"
        "FROM bid GROUP BY hop(interval '2 seconds', interval '10 seconds'), auction;\n"
        "SELECT count(*) FROM bid GROUP BY tumble(interval '10 seconds');\n"
        "SELECT count(*) FROM bid GROUP BY session(INTERVAL '1' MINUTE), bidder");
    const lm_sql_query *q = t->stmts[0].query;
    const lm_sql_expr *g = q->group_by[0];
    sbuf b = {.n = 0};

    ck_assert_uint_eq(t->nstmts, 3);
    ck_assert_uint_eq(q->ngroup_by, 2);
    ck_assert_int_eq(g->kind, LM_SQL_E_CALL);
    ck_assert(lm_sql_ident_eq(&g->name, "HOP", false));
    ck_assert_uint_eq(g->nargs, 2);
    ck_assert_int_eq(g->args[0]->kind, LM_SQL_E_LIT);
    ck_assert_int_eq(g->args[0]->lit, LM_SQL_L_INTERVAL);
    ck_assert_int_eq(g->args[0]->i, 2000000);
    ck_assert_int_eq(g->args[1]->i, 10000000);
    dump(&b, t->stmts[1].query->group_by[0]);
    ck_assert_str_eq(b.s, "tumble(interval:10000000)");
    b.n = 0;
    dump(&b, t->stmts[2].query->group_by[0]);
    ck_assert_str_eq(b.s, "session(interval:60000000)");
    lm_sql_tree_free(t);
}
END_TEST

START_TEST(test_sql_precedence)
{
    check_expr("a + b * c", "(+ a (* b c))");
    check_expr("(a + b) * c", "(* (+ a b) c)");
    check_expr("a - b - c", "(- (- a b) c)");
    check_expr("a / b % c", "(% (/ a b) c)");
    check_expr("NOT a = b AND c", "(and (not (= a b)) c)");
    check_expr("NOT NOT a", "(not (not a))");
    check_expr("x BETWEEN 1 AND 2 AND y", "(and (between x 1 2) y)");
    check_expr("x NOT BETWEEN a - 1 AND b + 1 OR z", "(or (not-between x (- a 1) (+ b 1)) z)");
    check_expr("a OR b AND c", "(or a (and b c))");
    check_expr("a AND b OR c AND d", "(or (and a b) (and c d))");
    check_expr("a || b + c", "(|| a (+ b c))");
    check_expr("a || b = c", "(= (|| a b) c)");
    check_expr("-a * b", "(* (- a) b)");
    check_expr("- (a + b)", "(- (+ a b))");
    check_expr("+a", "a");
    check_expr("a != b", "(<> a b)");
    check_expr("a <> b", "(<> a b)");
    check_expr("a <= b", "(<= a b)");
    check_expr("a >= b", "(>= a b)");
    check_expr("a < b", "(< a b)");
    check_expr("a > b", "(> a b)");
    check_expr("a + 1 > b * 2", "(> (+ a 1) (* b 2))");
    check_expr("x NOT IN (1, 2, 3)", "(not-in x 1 2 3)");
    check_expr("x IN ('a')", "(in x 'a')");
    check_expr("s NOT LIKE 'a%' ESCAPE '!'", "(not-like s 'a%' '!')");
    check_expr("s LIKE 'a' || 'b'", "(like s (|| 'a' 'b'))");
    check_expr("a IS NULL", "(is-null a)");
    check_expr("a IS NOT NULL AND b", "(and (is-not-null a) b)");
    check_expr("NOT a IS NULL", "(not (is-null a))");
    check_expr("CASE x WHEN 1 THEN 'a' WHEN 2 THEN 'b' END", "(case-op x 1 'a' 2 'b')");
    check_expr("CASE WHEN a > 1 THEN 1 ELSE 0 END + 1", "(+ (case (> a 1) 1 0 :else) 1)");
    check_expr("CAST(a AS BIGINT)", "(cast a bigint)");
    check_expr("CAST(a + 1 AS VARCHAR(10))", "(cast (+ a 1) varchar)");
    check_expr("cast(x as timestamp(3))", "(cast x timestamp)");
    check_expr("count(DISTINCT x)", "count(distinct x)");
    check_expr("count(*)", "count(*)");
    check_expr("now()", "now()");
    check_expr("f(a, g(b, c), 1 + 2)", "f(a, g(b, c), (+ 1 2))");
    check_expr("t.a.b", "t.a.b");
    check_expr("\"T\".\"my col\"", "T.my col");
    check_expr("bid.price * 2 >= 10", "(>= (* bid.price 2) 10)");
    check_expr("a = b = c", "(= (= a b) c)");
    check_expr("x BETWEEN -1 AND +1", "(between x -1 1)");
    check_expr("(((a)))", "a");
}
END_TEST

START_TEST(test_sql_literals)
{
    lm_sql_tree *t;
    lm_sql_expr *e;

    /* intervals, every form */
    check_interval("INTERVAL '10' SECOND", 10000000);
    check_interval("INTERVAL '10' SECONDS", 10000000);
    check_interval("interval '10 seconds'", 10000000);
    check_interval("interval '2 second'", 2000000);
    check_interval("INTERVAL '1 minute 30 seconds'", 90000000);
    check_interval("INTERVAL '500 milliseconds'", 500000);
    check_interval("INTERVAL '10s'", 10000000);
    check_interval("INTERVAL '250 ms'", 250000);
    check_interval("INTERVAL '1h 2m 3s'", 3723000000LL);
    check_interval("INTERVAL '1.5 h'", 5400000000LL);
    check_interval("INTERVAL '2 days'", 2 * 86400000000LL);
    check_interval("INTERVAL 10 SECOND", 10000000);
    check_interval("INTERVAL 1.5 SECOND", 1500000);
    check_interval("INTERVAL -2 HOUR", -7200000000LL);
    check_interval("INTERVAL '1.5' SECOND", 1500000);
    check_interval("INTERVAL ' 3 ' MINUTE", 180000000);
    check_interval("INTERVAL '-1' MINUTE", -60000000);
    check_interval("INTERVAL '0.000001' SECOND", 1);
    check_interval("INTERVAL '7' MICROSECOND", 7);
    check_interval("INTERVAL '3' MILLISECOND", 3000);
    check_interval("INTERVAL '1' HOUR", 3600000000LL);
    check_interval("INTERVAL '1' DAY", 86400000000LL);
    check_interval("INTERVAL '-1 minute 30 seconds'", -30000000);

    /* timestamps */
    e = lit_of(&t, "TIMESTAMP '2020-01-01 00:00:00.5'", LM_SQL_L_TIMESTAMP);
    ck_assert_int_eq(e->i, 1577836800500000LL);
    lm_sql_tree_free(t);
    e = lit_of(&t, "timestamp '1970-01-01'", LM_SQL_L_TIMESTAMP);
    ck_assert_int_eq(e->i, 0);
    lm_sql_tree_free(t);

    /* strings */
    e = lit_of(&t, "'it''s'", LM_SQL_L_STRING);
    ck_assert_str_eq(e->text, "it's");
    lm_sql_tree_free(t);
    e = lit_of(&t, "''", LM_SQL_L_STRING);
    ck_assert_str_eq(e->text, "");
    lm_sql_tree_free(t);
    e = lit_of(&t, "'a\nb -- not a comment'", LM_SQL_L_STRING);
    ck_assert_str_eq(e->text, "a\nb -- not a comment");
    lm_sql_tree_free(t);

    /* numbers */
    e = lit_of(&t, "42", LM_SQL_L_INT);
    ck_assert_int_eq(e->i, 42);
    lm_sql_tree_free(t);
    e = lit_of(&t, "-5", LM_SQL_L_INT);
    ck_assert_int_eq(e->i, -5);
    ck_assert_uint_eq(e->pos.col, 8);
    lm_sql_tree_free(t);
    e = lit_of(&t, "- 7", LM_SQL_L_INT);
    ck_assert_int_eq(e->i, -7);
    lm_sql_tree_free(t);
    e = lit_of(&t, "- -7", LM_SQL_L_INT);
    ck_assert_int_eq(e->i, 7);
    lm_sql_tree_free(t);
    e = lit_of(&t, "-1.5", LM_SQL_L_FLOAT);
    ck_assert_double_eq(e->f, -1.5);
    ck_assert_str_eq(e->text, "-1.5");
    lm_sql_tree_free(t);
    e = lit_of(&t, "- -1.5", LM_SQL_L_FLOAT);
    ck_assert_double_eq(e->f, 1.5);
    ck_assert_str_eq(e->text, "1.5");
    lm_sql_tree_free(t);
    e = lit_of(&t, "-9223372036854775808", LM_SQL_L_INT);
    ck_assert_int_eq(e->i, INT64_MIN);
    lm_sql_tree_free(t);
    e = lit_of(&t, "9223372036854775807", LM_SQL_L_INT);
    ck_assert_int_eq(e->i, INT64_MAX);
    lm_sql_tree_free(t);
    e = lit_of(&t, "1e3", LM_SQL_L_FLOAT);
    ck_assert_double_eq(e->f, 1000.0);
    ck_assert_str_eq(e->text, "1e3");
    lm_sql_tree_free(t);
    e = lit_of(&t, ".5", LM_SQL_L_FLOAT);
    ck_assert_double_eq(e->f, 0.5);
    lm_sql_tree_free(t);
    e = lit_of(&t, "2.5E-1", LM_SQL_L_FLOAT);
    ck_assert_double_eq(e->f, 0.25);
    lm_sql_tree_free(t);
    e = lit_of(&t, "0.908", LM_SQL_L_FLOAT);
    ck_assert_str_eq(e->text, "0.908");
    lm_sql_tree_free(t);

    /* booleans and NULL */
    e = lit_of(&t, "TRUE", LM_SQL_L_BOOL);
    ck_assert(e->b);
    lm_sql_tree_free(t);
    e = lit_of(&t, "false", LM_SQL_L_BOOL);
    ck_assert(!e->b);
    lm_sql_tree_free(t);
    e = lit_of(&t, "Null", LM_SQL_L_NULL);
    lm_sql_tree_free(t);
}
END_TEST

START_TEST(test_sql_names)
{
    lm_sql_tree *t = parse_ok("SELECT \"Foo \"\"bar\"\"\", `back``q` AS `Al`, x \"y z\", T.* "
                              "FROM \"MyTable\" AS m, other o");
    const lm_sql_query *q = t->stmts[0].query;
    const lm_sql_ident *id;

    ck_assert_uint_eq(q->nitems, 4);
    id = &q->items[0].expr->parts[0];
    ck_assert_str_eq(id->text, "Foo \"bar\"");
    ck_assert(id->quoted);
    id = &q->items[1].expr->parts[0];
    ck_assert_str_eq(id->text, "back`q");
    ck_assert(id->quoted);
    ck_assert_str_eq(q->items[1].alias.text, "Al");
    ck_assert(q->items[1].alias.quoted);
    ck_assert_str_eq(q->items[2].alias.text, "y z");
    ck_assert_int_eq(q->items[3].expr->kind, LM_SQL_E_STAR);
    ck_assert_uint_eq(q->items[3].expr->nparts, 1);
    ck_assert_str_eq(q->items[3].expr->parts[0].text, "T");
    ck_assert_str_eq(q->from->left->name.text, "MyTable");
    ck_assert_str_eq(q->from->left->alias.text, "m");
    ck_assert_str_eq(q->from->right->alias.text, "o");

    /* case rules */
    id = &q->from->left->name;
    ck_assert(lm_sql_ident_eq(id, "MyTable", false));
    ck_assert(!lm_sql_ident_eq(id, "mytable", false));
    id = &q->from->right->name;
    ck_assert(lm_sql_ident_eq(id, "OTHER", false));
    ck_assert(lm_sql_ident_eq(id, "other", true));
    ck_assert(!lm_sql_ident_eq(id, "OTHER", true));
    ck_assert(!lm_sql_ident_eq(id, NULL, false));
    lm_sql_tree_free(t);

    /* keywords are not aliases; other words are */
    t = parse_ok("SELECT a b FROM t WHERE x; SELECT * FROM bid B JOIN auction A ON B.a = A.id; "
                 "SELECT s.* FROM x AS s");
    ck_assert_uint_eq(t->nstmts, 0 + 3);
    ck_assert_str_eq(t->stmts[0].query->items[0].alias.text, "b");
    ck_assert_ptr_null(t->stmts[0].query->from->alias.text);
    ck_assert_ptr_nonnull(t->stmts[0].query->where);
    ck_assert_int_eq(t->stmts[1].query->items[0].expr->kind, LM_SQL_E_STAR);
    ck_assert_uint_eq(t->stmts[1].query->items[0].expr->nparts, 0);
    ck_assert_str_eq(t->stmts[1].query->from->left->alias.text, "B");
    ck_assert_str_eq(t->stmts[1].query->from->right->alias.text, "A");
    lm_sql_tree_free(t);
}
END_TEST

START_TEST(test_sql_statements)
{
    lm_sql_tree *t = parse_ok(
        ";; SET pipeline.parallelism = 4;\n"
        "SET 'execution.checkpointing.interval' = '10s';\n"
        "set state.ttl = -1 ; SET x.enabled = true; SET mode = exactly_once;\n"
        "CREATE TABLE sink (id BIGINT NOT NULL, n DECIMAL(10, 2), s VARCHAR(20) NULL,\n"
        "  r ROW(a INT, b ROW<c DOUBLE, d BYTES>), ts TIMESTAMP(3) WITHOUT TIME ZONE,\n"
        "  ok BOOLEAN, f FLOAT, st STRING, tx TEXT, bi VARBINARY, ch CHAR(3), dp DOUBLE "
        "PRECISION,\n"
        "  x AS id + 1)\n"
        "WITH (connector = 'blackhole', 'rate' = 100, \"skip\" = 'no', 'neg' = -2.5, "
        "format.json = true);\n"
        "INSERT INTO sink SELECT * FROM bid;\n"
        "insert into sink (SELECT a FROM t UNION ALL SELECT b FROM u) UNION ALL SELECT c FROM v;\n"
        "SELECT a, sum(b) FROM t CROSS JOIN u LEFT OUTER JOIN v ON t.a = v.a\n"
        "  LEFT JOIN w ON w.x = v.x WHERE a > 1 GROUP BY a HAVING sum(b) > 10;\n"
        "(SELECT 1 FROM t);\n"
        "SELECT a FROM (t JOIN u ON t.a = u.a), TABLE(SESSION(TABLE bid, DESCRIPTOR(ts), "
        "INTERVAL '1' MINUTE)) AS s;;\n");
    const lm_sql_stmt *st = t->stmts;
    const lm_sql_query *q;
    const lm_sql_ref *r;

    ck_assert_uint_eq(t->nstmts, 11);
    ck_assert_int_eq(st[0].kind, LM_SQL_S_SET);
    ck_assert_str_eq(st[0].set_key, "pipeline.parallelism");
    ck_assert_str_eq(st[0].set_value, "4");
    ck_assert_uint_eq(st[0].set_value_pos.col, 31);
    ck_assert_str_eq(st[1].set_key, "execution.checkpointing.interval");
    ck_assert_str_eq(st[1].set_value, "10s");
    ck_assert_str_eq(st[2].set_key, "state.ttl");
    ck_assert_str_eq(st[2].set_value, "-1");
    ck_assert_str_eq(st[3].set_value, "true");
    ck_assert_str_eq(st[4].set_value, "exactly_once");

    ck_assert_int_eq(st[5].kind, LM_SQL_S_CREATE_TABLE);
    ck_assert_uint_eq(st[5].ncolumns, 13);
    ck_assert(st[5].columns[0].not_null);
    ck_assert_int_eq(st[5].columns[1].type->kind, LM_SQL_T_DECIMAL);
    ck_assert_int_eq(st[5].columns[1].type->precision, 10);
    ck_assert_int_eq(st[5].columns[1].type->scale, 2);
    ck_assert(!st[5].columns[2].not_null);
    ck_assert_int_eq(st[5].columns[2].type->precision, 20);
    ck_assert_int_eq(st[5].columns[3].type->kind, LM_SQL_T_ROW);
    ck_assert_uint_eq(st[5].columns[3].type->nfields, 2);
    ck_assert_int_eq(st[5].columns[3].type->fields[1].type->kind, LM_SQL_T_ROW);
    ck_assert_uint_eq(st[5].columns[3].type->fields[1].type->nfields, 2);
    ck_assert_int_eq(st[5].columns[3].type->fields[1].type->fields[1].type->kind, LM_SQL_T_BYTES);
    ck_assert_int_eq(st[5].columns[4].type->kind, LM_SQL_T_TIMESTAMP);
    ck_assert_int_eq(st[5].columns[5].type->kind, LM_SQL_T_BOOLEAN);
    ck_assert_int_eq(st[5].columns[6].type->kind, LM_SQL_T_DOUBLE);
    ck_assert_int_eq(st[5].columns[7].type->kind, LM_SQL_T_VARCHAR);
    ck_assert_int_eq(st[5].columns[9].type->kind, LM_SQL_T_BYTES);
    ck_assert_int_eq(st[5].columns[11].type->kind, LM_SQL_T_DOUBLE);
    ck_assert_ptr_nonnull(st[5].columns[12].computed);
    ck_assert_ptr_null(st[5].watermark_col.text);
    ck_assert_ptr_null(st[5].watermark);
    ck_assert_uint_eq(st[5].noptions, 5);
    ck_assert_str_eq(st[5].options[0].key, "connector");
    ck_assert_str_eq(st[5].options[0].value, "blackhole");
    ck_assert_str_eq(st[5].options[1].value, "100");
    ck_assert_str_eq(st[5].options[3].value, "-2.5");
    ck_assert_str_eq(st[5].options[4].key, "format.json");
    ck_assert_str_eq(st[5].options[4].value, "true");

    ck_assert_int_eq(st[6].kind, LM_SQL_S_INSERT);
    ck_assert_str_eq(st[6].name.text, "sink");
    ck_assert_int_eq(st[6].query->items[0].expr->kind, LM_SQL_E_STAR);

    /* UNION ALL chains flatten, in order */
    q = st[7].query;
    ck_assert_int_eq(st[7].kind, LM_SQL_S_INSERT);
    ck_assert_str_eq(q->items[0].expr->parts[0].text, "a");
    ck_assert_str_eq(q->union_all->items[0].expr->parts[0].text, "b");
    ck_assert_str_eq(q->union_all->union_all->items[0].expr->parts[0].text, "c");
    ck_assert_ptr_null(q->union_all->union_all->union_all);

    /* joins are left-deep */
    q = st[8].query;
    r = q->from;
    ck_assert_int_eq(r->join, LM_SQL_JOIN_LEFT);
    check_name(&r->right->name, "w");
    ck_assert_int_eq(r->left->join, LM_SQL_JOIN_LEFT);
    ck_assert_int_eq(r->left->left->join, LM_SQL_JOIN_CROSS);
    ck_assert_ptr_null(r->left->left->on);
    ck_assert_ptr_nonnull(q->having);
    ck_assert_uint_eq(q->ngroup_by, 1);

    ck_assert_int_eq(st[9].kind, LM_SQL_S_SELECT);
    ck_assert_ptr_nonnull(st[9].query->from);

    r = st[10].query->from;
    ck_assert_int_eq(r->join, LM_SQL_JOIN_CROSS);
    ck_assert_int_eq(r->left->kind, LM_SQL_REF_JOIN);
    ck_assert_int_eq(r->right->kind, LM_SQL_REF_WINDOW);
    ck_assert_int_eq(r->right->win, LM_SQL_WIN_SESSION);
    ck_assert_int_eq(r->right->win_args[0]->i, 60000000);
    ck_assert_str_eq(r->right->alias.text, "s");
    lm_sql_tree_free(t);

    /* empty input, comments only */
    t = parse_ok("");
    ck_assert_uint_eq(t->nstmts, 0);
    lm_sql_tree_free(t);
    t = parse_ok("-- nothing\n/* at all */ ;");
    ck_assert_uint_eq(t->nstmts, 0);
    lm_sql_tree_free(t);
}
END_TEST

START_TEST(test_sql_lexer)
{
    static const char text[] = "SELECT a1.\"b\"\"c\", 'x''y' <> 1.5e2 -- c\n/* d\n */ || >= !=;";
    lm_sql_lexer lx;
    lm_sql_tok tok;
    lm_sql_diag d;
    char buf[64];
    struct {
        lm_sql_tok_kind kind;
        uint32_t line, col;
        const char *raw;
    } want[] = {
        {LM_SQL_TOK_WORD, 1, 1, "SELECT"}, {LM_SQL_TOK_WORD, 1, 8, "a1"},
        {LM_SQL_TOK_OP, 1, 10, "."},       {LM_SQL_TOK_QNAME, 1, 11, "\"b\"\"c\""},
        {LM_SQL_TOK_OP, 1, 17, ","},       {LM_SQL_TOK_STRING, 1, 19, "'x''y'"},
        {LM_SQL_TOK_OP, 1, 26, "<>"},      {LM_SQL_TOK_DECIMAL, 1, 29, "1.5e2"},
        {LM_SQL_TOK_OP, 3, 5, "||"},       {LM_SQL_TOK_OP, 3, 8, ">="},
        {LM_SQL_TOK_OP, 3, 11, "!="},      {LM_SQL_TOK_OP, 3, 13, ";"},
        {LM_SQL_TOK_EOF, 3, 14, ""},
    };

    lm_sql_lex_init(&lx, text, strlen(text));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_int_eq(lm_sql_lex_next(&lx, &tok, &d), LM_OK);
        ck_assert_int_eq(tok.kind, want[i].kind);
        ck_assert_uint_eq(tok.pos.line, want[i].line);
        ck_assert_uint_eq(tok.pos.col, want[i].col);
        ck_assert_uint_eq(tok.len, strlen(want[i].raw));
        ck_assert_int_eq(memcmp(tok.start, want[i].raw, tok.len), 0);
        if (tok.kind == LM_SQL_TOK_QNAME) {
            size_t n = lm_sql_tok_unquote(&tok, buf);
            ck_assert_uint_eq(n, 3);
            ck_assert_int_eq(memcmp(buf, "b\"c", 3), 0);
        }
    }
    ck_assert_int_eq(lm_sql_lex_next(&lx, &tok, &d), LM_OK);
    ck_assert_int_eq(tok.kind, LM_SQL_TOK_EOF);

    /* integers up to 2^63 (for -2^63), beyond is an error; the error sticks */
    lm_sql_lex_init(&lx, "9223372036854775808 18446744073709551616", 40);
    ck_assert_int_eq(lm_sql_lex_next(&lx, &tok, &d), LM_OK);
    ck_assert_int_eq(tok.kind, LM_SQL_TOK_INT);
    ck_assert(tok.u == UINT64_C(9223372036854775808));
    ck_assert_int_eq(lm_sql_lex_next(&lx, &tok, &d), LM_EINVAL);
    ck_assert_uint_eq(d.pos.col, 21);
    ck_assert_ptr_nonnull(strstr(d.msg, "out of range"));
    ck_assert_int_eq(lm_sql_lex_next(&lx, &tok, &d), LM_EINVAL);

    /* a length that stops inside a token: never read past it */
    lm_sql_lex_init(&lx, "abc'def", 4);
    ck_assert_int_eq(lm_sql_lex_next(&lx, &tok, &d), LM_OK);
    ck_assert_uint_eq(tok.len, 3);
    ck_assert_int_eq(lm_sql_lex_next(&lx, &tok, &d), LM_EINVAL);
    ck_assert_ptr_nonnull(strstr(d.msg, "unterminated string"));

    /* descriptions for messages */
    lm_sql_lex_init(&lx, "'abc' \"Q\" x", 11);
    lm_sql_lex_next(&lx, &tok, &d);
    ck_assert_str_eq(lm_sql_tok_describe(&tok, buf, sizeof(buf)), "string 'abc'");
    lm_sql_lex_next(&lx, &tok, &d);
    ck_assert_str_eq(lm_sql_tok_describe(&tok, buf, sizeof(buf)), "\"Q\"");
    lm_sql_lex_next(&lx, &tok, &d);
    ck_assert_str_eq(lm_sql_tok_describe(&tok, buf, sizeof(buf)), "'x'");
    lm_sql_lex_next(&lx, &tok, &d);
    ck_assert_str_eq(lm_sql_tok_describe(&tok, buf, sizeof(buf)), "end of input");

    /* UTF-8 sequences: their length, or 0 when not valid (overlong,
     * surrogate, beyond U+10FFFF, cut short, a stray continuation byte) */
    static const struct {
        const char *s;
        size_t n, len;
    } seqs[] = {
        {"a", 1, 1},
        {"\xc3\xa9", 2, 2},
        {"\xe2\x82\xac", 3, 3},
        {"\xf0\x9f\x98\x80", 4, 4},
        {"\xc0\x80", 2, 0},
        {"\xe0\x80\x80", 3, 0},
        {"\xed\xa0\x80", 3, 0},
        {"\xf4\x90\x80\x80", 4, 0},
        {"\xe2\x82", 2, 0},
        {"\x80", 1, 0},
        {"\xff", 1, 0},
    };
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        ck_assert_msg(lm_sql_utf8_len(seqs[i].s, seqs[i].n) == seqs[i].len, "sequence %zu", i);
    }
    ck_assert_uint_eq(lm_sql_utf8_check("caf\xc3\xa9 \xed\xa0\x80", 9), 6);
    ck_assert_uint_eq(lm_sql_utf8_check("caf\xc3\xa9", 5), 5);
}
END_TEST

/* Texts the parser refuses: where (line, column) and what the message says. */
static const struct {
    const char *text;
    uint32_t line, col;
    const char *frag;
} parse_errors[] = {
    /* unsupported constructs, named */
    {"SELECT a FROM t ORDER BY a", 1, 17, "ORDER BY is not supported in a streaming"},
    {"SELECT a FROM t LIMIT 10", 1, 17, "LIMIT is not supported"},
    {"SELECT a FROM t OFFSET 5", 1, 17, "OFFSET is not supported"},
    {"SELECT a FROM t WHERE x ORDER BY a", 1, 25, "ORDER BY is not supported"},
    {"(SELECT a FROM t) ORDER BY a", 1, 19, "ORDER BY is not supported"},
    {"SELECT DISTINCT a FROM t", 1, 8, "SELECT DISTINCT is not supported"},
    {"SELECT a FROM t RIGHT JOIN u ON a = b", 1, 17, "RIGHT JOIN is not supported"},
    {"SELECT a FROM t FULL OUTER JOIN u ON a = b", 1, 17, "FULL JOIN is not supported"},
    {"SELECT a FROM t NATURAL JOIN u", 1, 17, "NATURAL JOIN is not supported"},
    {"SELECT a FROM t JOIN u USING (a)", 1, 24, "USING is not supported"},
    {"SELECT a FROM t UNION SELECT b FROM u", 1, 17,
     "UNION without ALL is not supported in a streaming query; use UNION ALL"},
    {"SELECT a FROM t EXCEPT SELECT a FROM u", 1, 17, "EXCEPT is not supported"},
    {"SELECT a FROM t INTERSECT SELECT a FROM u", 1, 17, "INTERSECT is not supported"},
    {"SELECT rank() OVER (ORDER BY a) FROM t", 1, 15, "OVER ...) are not supported"},
    {"SELECT a FROM t WHERE x IN (SELECT y FROM u)", 1, 29, "IN (SELECT ...) is not supported"},
    {"SELECT a FROM t WHERE EXISTS (SELECT y FROM u)", 1, 23, "EXISTS"},
    {"SELECT a FROM t WHERE NOT EXISTS (SELECT y FROM u)", 1, 27, "EXISTS"},
    {"SELECT (SELECT 1 FROM u) FROM t", 1, 9, "subqueries in expressions"},
    {"SELECT a FROM t WHERE a > ANY (SELECT 1 FROM u)", 1, 27, "ANY, ALL, SOME"},
    {"WITH x AS (SELECT 1 FROM t) SELECT * FROM x", 1, 1, "WITH (common table"},
    {"SELECT f(x) FILTER (WHERE x > 1) FROM t", 1, 13, "FILTER"},
    {"CREATE TABLE t (a INT, PRIMARY KEY (a) NOT ENFORCED)", 1, 24, "PRIMARY KEY"},
    {"SELECT a FROM TABLE(CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND, "
     "INTERVAL '1' MINUTE))",
     1, 21, "CUMULATE"},
    {"SELECT a FROM TABLE(TUMBLE(DATA => TABLE bid, TIMECOL => DESCRIPTOR(ts), SIZE "
     "=> INTERVAL '1' SECOND))",
     1, 28, "named arguments"},

    /* what was expected, and what came */
    {"SELECT a FROM (SELECT b FROM u)", 1, 32, "a subquery in FROM needs an alias"},
    {"SELECT a FROM (SELECT b FROM u) WHERE x", 1, 33, "a subquery in FROM needs an alias"},
    {"SELECT count(a, b FROM t", 1, 19,
     "expected ')' to close the argument list of count, got 'FROM'"},
    {"SELECT count(a b) FROM t", 1, 16,
     "expected ')' to close the argument list of count, got 'b'"},
    {"SELECT count(a, FROM t", 1, 17, "expected an expression after ',', got 'FROM'"},
    {"SELECT a\nFROM", 2, 5, "expected a table name after FROM, got end of input"},
    {"SELECT a FROM t WHERE", 1, 22, "expected an expression after 'WHERE', got end of input"},
    {"SELECT FROM t", 1, 8, "expected an expression after 'SELECT', got 'FROM'"},
    {"SELECT a, FROM t", 1, 11, "expected an expression after ',', got 'FROM'"},
    {"SELECT a b c FROM t", 1, 12, "expected ',' or FROM after the select list, got 'c'"},
    {"SELECT a AS FROM t", 1, 13, "expected an alias after AS, got 'FROM'"},
    {"SELECT a FROM t JOIN u", 1, 23,
     "expected ON and the join condition after the joined table, got end of input"},
    {"SELECT a FROM t JOIN WHERE", 1, 22, "expected a table name after JOIN, got 'WHERE'"},
    {"SELECT a FROM t, ", 1, 18, "expected a table name after ',', got end of input"},
    {"SELECT a FROM t GROUP a", 1, 23, "expected BY after GROUP, got 'a'"},
    {"SELECT (a + b FROM t", 1, 15,
     "expected ')' to close the '(' at line 1, column 8, got 'FROM'"},
    {"SELECT CASE WHEN a THEN b FROM t", 1, 27, "expected WHEN, ELSE or END in CASE, got 'FROM'"},
    {"SELECT CASE a END FROM t", 1, 15, "expected WHEN after the CASE operand"},
    {"SELECT CAST(a BIGINT) FROM t", 1, 15, "expected AS and a type in CAST"},
    {"SELECT a FROM t WHERE a BETWEEN 1 OR 2", 1, 35,
     "expected AND in BETWEEN ... AND ..., got 'OR'"},
    {"SELECT a FROM t WHERE a NOT = b", 1, 29, "expected BETWEEN, IN or LIKE after NOT, got '='"},
    {"SELECT a FROM t WHERE a IS 5", 1, 28, "expected NULL or NOT NULL after IS"},
    {"SELECT a FROM t WHERE a IN (1, 2", 1, 33,
     "expected ',' or ')' to close the IN list, got end of input"},
    {"SELECT t.* + 1 FROM t", 1, 12, "expected ',' or FROM after the select list"},
    {"SELECT 1 + t.* FROM t", 1, 14, "'t.*' can only be a whole item"},
    {"SELECT a.f(1) FROM t", 1, 8, "a function name cannot be qualified"},
    {"SELECT a. FROM t", 1, 11, "expected a field name after '.', got 'FROM'"},
    {"SELECT a FROM tumble(bid)", 1, 15, "written TABLE('tumble'(...))"},
    {"SELECT a FROM t x y", 1, 19, "expected ';' or end of input after the statement, got 'y'"},
    {"INSERT sink SELECT 1 FROM t", 1, 8, "expected INTO after INSERT, got 'sink'"},
    {"INSERT INTO sink VALUES (1)", 1, 18, "VALUES is not supported"},
    {"INSERT INTO sink (a, b) SELECT 1 FROM t", 1, 18, "column list in INSERT"},
    {"SELECT a FROM t; DROP TABLE t", 1, 18, "expected a statement (CREATE TABLE"},
    {"CREATE INDEX i", 1, 8, "expected TABLE or VIEW after CREATE, got 'INDEX'"},
    {"CREATE VIEW v SELECT 1 FROM t", 1, 15, "expected AS and a query after the view"},
    {"CREATE VIEW v AS", 1, 17, "expected a query (SELECT ...) after 'AS', got end of input"},
    {"SET = 3", 1, 5, "expected a setting name after SET, got '='"},
    {"SET a.b 3", 1, 9, "expected '=' after the setting name, got '3'"},
    {"SET a.b =", 1, 10, "expected a value after '=', got end of input"},

    /* tables and types */
    {"CREATE TABLE t (a INT, b FOO)", 1, 26, "unknown type 'FOO'"},
    {"CREATE TABLE t (a ARRAY<INT>)", 1, 19, "type 'ARRAY' is not supported"},
    {"CREATE TABLE t (a INT", 1, 22, "expected ',' or ')' in the column list, got end of input"},
    {"CREATE TABLE t (a INT,)", 1, 23, "expected a column name, got ')'"},
    {"CREATE TABLE t a INT", 1, 16, "expected '(' and the columns after the table"},
    {"CREATE TABLE (a INT)", 1, 14, "expected a table name after CREATE TABLE"},
    {"CREATE TABLE t (a INT NOT)", 1, 26, "expected NULL after NOT, got ')'"},
    {"CREATE TABLE t (\n  a INT,\n  b ROW<x INT, y>\n)", 3, 17, "expected a type (BOOLEAN, INT"},
    {"CREATE TABLE t (b ROW<x INT)", 1, 28, "expected ',' or '>' in ROW<...>"},
    {"CREATE TABLE t (d DECIMAL(10, x))", 1, 31, "expected a length or precision in DECIMAL(...)"},
    {"CREATE TABLE t (a INT, WATERMARK FOR a AS a, WATERMARK FOR a AS a)", 1, 46,
     "at most one WATERMARK"},
    {"CREATE TABLE t (a INT, WATERMARK FOR a a)", 1, 40,
     "expected AS and an expression after WATERMARK FOR column"},
    {"CREATE TABLE t (a INT) WITH ('k' 'v')", 1, 34,
     "expected '=' after the option name 'k', got string 'v'"},
    {"CREATE TABLE t (a INT) WITH ('k' = )", 1, 36, "expected a value for the option 'k', got ')'"},
    {"CREATE TABLE t (a INT) WITH ('k' = 'v'", 1, 39,
     "expected ',' or ')' in WITH (...), got end of input"},
    {"CREATE TABLE t (ts TIMESTAMP(3) WITH LOCAL TIME ZONE)", 1, 33,
     "WITH [LOCAL] TIME ZONE is not supported"},

    /* windows */
    {"SELECT a FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime)))", 1, 21,
     "TUMBLE takes one interval (the window size) after DESCRIPTOR(...), got 0"},
    {"SELECT a FROM TABLE(HOP(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' SECOND))", 1, 21,
     "HOP takes two intervals (the slide, then the size)"},
    {"SELECT a FROM TABLE(SESSION(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' SECOND, 2))", 1, 21,
     "SESSION takes one interval (the gap)"},
    {"SELECT a FROM TABLE(TUMBLE(bid, DESCRIPTOR(ts), INTERVAL '1' SECOND))", 1, 28,
     "expected TABLE and a table name as the first argument of TUMBLE, got 'bid'"},
    {"SELECT a FROM TABLE(TUMBLE(TABLE bid, ts, INTERVAL '1' SECOND))", 1, 39,
     "expected DESCRIPTOR(column) as the second argument of TUMBLE, got 'ts'"},
    {"SELECT a FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' SECOND)", 1, 75,
     "expected ')' to close TABLE(...), got end of input"},
    {"SELECT a FROM TABLE bid", 1, 21, "expected '(' after TABLE"},
    {"SELECT a FROM TABLE(FOO(TABLE bid))", 1, 21,
     "expected TUMBLE, HOP or SESSION in TABLE(...), got 'FOO'"},

    /* literals */
    {"SELECT INTERVAL '10 parsecs' FROM t", 1, 17,
     "invalid interval '10 parsecs': unknown unit 'parsecs'"},
    {"SELECT INTERVAL 'ten' SECOND FROM t", 1, 17,
     "invalid interval 'ten': with a unit after it, the text must be a number"},
    {"SELECT INTERVAL 'soon' FROM t", 1, 17,
     "invalid interval 'soon': expected a number and a unit"},
    {"SELECT INTERVAL '10' FROM t", 1, 17, "expected a unit (MICROSECOND"},
    {"SELECT INTERVAL '' FROM t", 1, 17, "invalid interval ''"},
    {"SELECT INTERVAL 10 FROM t", 1, 20,
     "expected a unit (MICROSECOND, MILLISECOND, SECOND, MINUTE, HOUR or DAY) after "
     "INTERVAL 10, got 'FROM'"},
    {"SELECT INTERVAL '1' MONTH FROM t", 1, 21, "months or years are not supported"},
    {"SELECT INTERVAL '1 year' FROM t", 1, 17, "months and years are not supported"},
    {"SELECT INTERVAL '0.0000001' SECOND FROM t", 1, 17, "is not a whole number of microseconds"},
    {"SELECT INTERVAL '9999999999999999' DAY FROM t", 1, 17, "is out of range"},
    {"SELECT INTERVAL '1' DAY TO SECOND FROM t", 1, 25, "interval ranges"},
    {"SELECT TIMESTAMP '2020-13-01' FROM t", 1, 18, "timestamp '2020-13-01' names no such date"},
    {"SELECT TIMESTAMP 'yesterday' FROM t", 1, 18, "invalid timestamp 'yesterday'"},
    {"SELECT DATE '2020-01-01' FROM t", 1, 8, "'DATE' literals are not supported"},
    {"SELECT 9223372036854775808 FROM t", 1, 8, "integer 9223372036854775808 is out of range"},
    {"SELECT 99999999999999999999 FROM t", 1, 8, "is out of range"},
    {"SELECT - -9223372036854775808 FROM t", 1, 8, "is out of range"},
    {"SELECT 1e999 FROM t", 1, 8, "number '1e999' is out of range"},
    {"SELECT 12abc FROM t", 1, 8, "malformed number '12abc'"},

    /* the lexer */
    {"SELECT 'abc FROM t", 1, 8, "unterminated string"},
    {"SELECT \"abc FROM t", 1, 8, "unterminated quoted name"},
    {"SELECT `abc FROM t", 1, 8, "unterminated quoted name"},
    {"SELECT a /* comment\n FROM t", 1, 10, "unterminated comment"},
    {"SELECT a # b FROM t", 1, 10, "unexpected character '#'"},
    {"SELECT a FROM t\n WHERE a ! b", 2, 10, "unexpected character '!'"},
    {"SELECT a FROM t WHERE a | b", 1, 25, "unexpected character '|'"},
    {"SELECT a\x01 FROM t", 1, 9, "unexpected character '\\x01'"},
    {"SELECT \"\" FROM t", 1, 8, "empty quoted name"},
    /* messages stay valid UTF-8 on one line whatever the input holds */
    {"SELECT a b \xff\xfe FROM t", 1, 12, "not valid UTF-8 here (byte 0xff)"},
    {"-- caf\xc3\n SELECT 1", 1, 7, "not valid UTF-8"}, /* even in a comment */
    {"SELECT a b caf\xc3\xa9 FROM t", 1, 12, "got 'caf\xc3\xa9'"},
    {"SELECT a b \"x\ny\" FROM t", 1, 12, "got \"x\\x0ay\""},
    {"CREATE TABLE t (a INT) WITH ('a\nb' 1)", 2, 4, "option name 'a\\x0ab'"},
    /* the first error wins, the lexer's or the parser's */
    {"SELECT FROM 'x", 1, 8, "expected an expression"},
    {"SELECT a FROM t WHERE 'x", 1, 23, "unterminated string"},

    /* positions across lines */
    {"SELECT a,\n       b\n  FROM t\n WHERE a = \n", 5, 1,
     "expected an expression after '=', got end of input"},
    {"CREATE TABLE t (\n  a INT,\n  b BIGINT\n) WITH ('k' = 'v');\n"
     "SELECT a FROM t\n\tWHERE b LIKE;",
     6, 14, "expected an expression after 'LIKE', got ';'"},
};

START_TEST(test_sql_errors)
{
    for (size_t i = 0; i < sizeof(parse_errors) / sizeof(parse_errors[0]); i++) {
        parse_err(parse_errors[i].text, parse_errors[i].line, parse_errors[i].col,
                  parse_errors[i].frag);
    }
}
END_TEST

/* NUL bytes and a buffer with no terminator: the parser stays inside len. */
START_TEST(test_sql_exact_buffers)
{
    static const char text[] = "SELECT a FROM t WHERE b = 'x'";
    size_t n = strlen(text);
    char *buf = malloc(n);
    lm_sql_tree *t;
    lm_sql_diag d;

    memcpy(buf, text, n);
    ck_assert_int_eq(lm_sql_parse(buf, n, &t, &d), LM_OK);
    lm_sql_tree_free(t);
    /* cut inside the string */
    ck_assert_int_eq(lm_sql_parse(buf, n - 1, &t, &d), LM_EINVAL);
    ck_assert_ptr_nonnull(strstr(d.msg, "unterminated string"));
    free(buf);

    ck_assert_int_eq(lm_sql_parse("SELECT 'a\0b' FROM t", 19, &t, &d), LM_EINVAL);
    ck_assert_ptr_nonnull(strstr(d.msg, "NUL"));
    ck_assert_int_eq(lm_sql_parse("SELECT a\0 FROM t", 16, &t, &d), LM_EINVAL);
    ck_assert_ptr_nonnull(strstr(d.msg, "unexpected character '\\x00'"));
    ck_assert_int_eq(lm_sql_parse(NULL, 0, &t, NULL), LM_OK);
    ck_assert_uint_eq(t->nstmts, 0);
    lm_sql_tree_free(t);
    ck_assert_int_eq(lm_sql_parse(NULL, 3, &t, &d), LM_EINVAL);
    lm_sql_tree_free(NULL);
}
END_TEST

static void
check_depth_error(const char *prefix, const char *unit, const char *mid, const char *close,
                  const char *suffix, int n, bool ok)
{
    size_t cap = strlen(prefix) + (strlen(unit) + strlen(close)) * (size_t)n + strlen(mid) +
                 strlen(suffix) + 1;
    char *s = malloc(cap);
    size_t len = 0;
    lm_sql_tree *t = NULL;
    lm_sql_diag d;
    int rc;

    len += (size_t)snprintf(s + len, cap - len, "%s", prefix);
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s", unit);
    }
    len += (size_t)snprintf(s + len, cap - len, "%s", mid);
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s", close);
    }
    len += (size_t)snprintf(s + len, cap - len, "%s", suffix);
    rc = lm_sql_parse(s, len, &t, &d);
    if (ok) {
        if (rc != LM_OK) {
            ck_abort_msg("%d x %s: %s", n, unit, d.msg);
        }
        lm_sql_tree_free(t);
    } else {
        ck_assert_int_eq(rc, LM_EINVAL);
        if (strstr(d.msg, "nested too deeply") == NULL) {
            ck_abort_msg("%d x %s: %s", n, unit, d.msg);
        }
    }
    free(s);
}

START_TEST(test_sql_depth)
{
    static const struct {
        const char *prefix, *unit, *mid, *close, *suffix;
        int ok_n;
    } cases[] = {
        {"SELECT ", "(", "1", ")", " FROM t", 150},
        {"SELECT ", "f(", "1", ")", " FROM t", 150},
        {"SELECT ", "NOT ", "a", "", " FROM t", 150},
        {"SELECT ", "- ", "a", "", " FROM t", 150},
        {"SELECT ", "CASE WHEN a THEN ", "1", " END", " FROM t", 150},
        {"SELECT ", "CAST(", "a", " AS INT)", " FROM t", 150},
        {"SELECT a FROM t WHERE x IN (", "", "1", "", ")", 1},
        {"", "(", "SELECT a FROM t", ")", "", 150},
        {"SELECT a FROM ", "(SELECT a FROM ", "t", ") x", "", 150},
        {"SELECT a FROM ", "(", "t", ")", "", 150},
        {"CREATE TABLE t (a ", "ROW<a ", "INT", ">", ")", 150},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_depth_error(cases[i].prefix, cases[i].unit, cases[i].mid, cases[i].close,
                          cases[i].suffix, cases[i].ok_n, true);
        if (cases[i].ok_n > 1) {
            check_depth_error(cases[i].prefix, cases[i].unit, cases[i].mid, cases[i].close,
                              cases[i].suffix, 250, false);
            check_depth_error(cases[i].prefix, cases[i].unit, cases[i].mid, cases[i].close,
                              cases[i].suffix, 100000, false);
        }
    }
    /* long flat lists are not nesting */
    {
        size_t cap = 600000, len = 0;
        char *s = malloc(cap);
        lm_sql_tree *t;
        lm_sql_diag d;
        len += (size_t)snprintf(s + len, cap - len, "SELECT 0");
        for (int i = 1; i < 50000; i++) {
            len += (size_t)snprintf(s + len, cap - len, " + %d", i);
        }
        len += (size_t)snprintf(s + len, cap - len, " FROM t");
        ck_assert_int_eq(lm_sql_parse(s, len, &t, &d), LM_OK);
        lm_sql_tree_free(t);
        free(s);
    }
}
END_TEST

/* Every prefix of a long valid pipeline parses or fails cleanly, inside
 * the text, with a one-line message. */
START_TEST(test_sql_truncated)
{
    static char all[16384];
    size_t n = 0, lines = 1, fails = 0;

    n += (size_t)snprintf(all + n, sizeof(all) - n,
                          "SET pipeline.parallelism = 2;\n%s\n/* the queries */\n", nexmark_ddl);
    for (int i = 0; i < NQUERIES; i++) {
        n += (size_t)snprintf(all + n, sizeof(all) - n, "-- q%d\n%s\n", i, nexmark_queries[i]);
    }
    n += (size_t)snprintf(all + n, sizeof(all) - n,
                          "INSERT INTO out SELECT `a`, \"b\", 'c''d', -1.5e3, CAST(x AS "
                          "DOUBLE), x NOT IN (1, 2), y NOT LIKE 'z' ESCAPE '!', z IS NOT NULL "
                          "FROM t LEFT JOIN u ON t.a = u.a UNION ALL SELECT * FROM v;");
    ck_assert_uint_lt(n, sizeof(all));
    for (size_t i = 0; i < n; i++) {
        lines += all[i] == '\n';
    }
    for (size_t len = 0; len <= n; len++) {
        char *buf = malloc(len + 1);
        lm_sql_tree *t = NULL;
        lm_sql_diag d;
        int rc;
        memcpy(buf, all, len);
        rc = lm_sql_parse(buf, len, &t, &d);
        if (rc == LM_OK) {
            lm_sql_tree_free(t);
        } else {
            fails++;
            if (rc != LM_EINVAL || t != NULL || d.msg[0] == '\0' || strchr(d.msg, '\n') ||
                d.pos.line < 1 || d.pos.line > lines || d.pos.col < 1) {
                ck_abort_msg("prefix %zu: rc %d at %u:%u: %s", len, rc, d.pos.line, d.pos.col,
                             d.msg);
            }
        }
        free(buf);
    }
    ck_assert_uint_gt(fails, n / 2);
}
END_TEST

Suite *
sql_parse_suite(void)
{
    Suite *s = suite_create("sql_parse");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_sql_nexmark_ddl);
    tcase_add_test(tc, test_sql_nexmark_queries);
    tcase_add_test(tc, test_sql_arroyo_windows);
    tcase_add_test(tc, test_sql_precedence);
    tcase_add_test(tc, test_sql_literals);
    tcase_add_test(tc, test_sql_names);
    tcase_add_test(tc, test_sql_statements);
    tcase_add_test(tc, test_sql_lexer);
    tcase_add_test(tc, test_sql_errors);
    tcase_add_test(tc, test_sql_exact_buffers);
    tcase_add_test(tc, test_sql_depth);
    tcase_add_test(tc, test_sql_truncated);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
