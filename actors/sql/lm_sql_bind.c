/*
 * lm_sql_bind.c: the binder: from the syntax tree to the logical plan.
 *
 * Statements are taken in order. CREATE TABLE checks the connector and
 * its options, flattens ROW columns into "row.field" columns, binds the
 * computed columns and the watermark; CREATE VIEW is bound once to report
 * its mistakes and again, fresh, wherever it is used; INSERT and a bare
 * query become sinks.
 *
 * A query is bound FROM first (tables, views, subqueries, joins, window
 * table functions), then WHERE, then either a projection or an
 * aggregation: GROUP BY keys and aggregate calls are gathered, computed
 * below the aggregate when they are not bare columns, and the SELECT list
 * and HAVING are bound over the aggregate's output. A GROUP BY on the
 * window columns of a window table function, or on Arroyo's tumble() /
 * hop() / session(), makes a window aggregate; a GROUP BY on both bounds
 * of windows computed earlier makes a window aggregate over those windows;
 * anything else is an updating aggregate.
 *
 * Expressions become lm_expr JSON, node by node, each node compiled
 * against its input columns as it is built: its type comes from the
 * engine's own rules, and a type error points at the node.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lm_expr.h"
#include "lm_nexmark.h"
#include "lm_sql_lp.h"
#include "lm_text.h"

typedef struct scope {
    lp_col *cols;
    uint32_t n;
} scope;

typedef struct binder binder;
typedef struct bctx bctx;

/* A hook sees every expression node before it is bound: it returns 1
 * with *out set when it bound the node itself, 0 to go on as usual, or
 * an error. */
typedef int (*bind_hook)(binder *b, const bctx *c, const lm_sql_expr *e, json_t **out);

struct bctx {
    const scope *names;  /* what names resolve to */
    const lp_col *tcols; /* the columns the expression is typed against */
    uint32_t ntcols;
    const char *clause; /* "WHERE", "ON", ... for messages */
    bind_hook hook;
    void *arg;
    bool allow_virtual; /* window_start/window_end may be referenced (GROUP BY) */
};

struct binder {
    lm_sql_lp *lp;
    lm_sql_tree *t;
    lm_sql_diag *d;
    const char *views_in_use[64]; /* view expansion stack, against cycles */
    uint32_t nviews_in_use;
    uint32_t depth;
    lp_window *wins[64]; /* windows made so far, for their ids */
    uint32_t nwins;
};

static int bind_query(binder *b, const lm_sql_query *q, lp_node **out, scope *sc);

/* --- small things ------------------------------------------------------ */

static void *
al(binder *b, size_t n)
{
    return lm_sql_alloc(b->t, n == 0 ? 1 : n);
}

static const char *
sdup(binder *b, const char *s)
{
    return lm_sql_strdup(b->t, s, strlen(s));
}

static bool
name_eq(const char *have, const char *want, bool exact)
{
    return have != NULL && (exact ? strcmp(have, want) == 0 : strcasecmp(have, want) == 0);
}

const char *
lp_type_sql(int type)
{
    switch (type) {
    case LM_TYPE_BOOL: return "BOOLEAN";
    case LM_TYPE_INT64: return "BIGINT";
    case LM_TYPE_FLOAT64: return "DOUBLE";
    case LM_TYPE_TIMESTAMP: return "TIMESTAMP";
    case LM_TYPE_UTF8: return "VARCHAR";
    case LM_TYPE_BINARY: return "BYTES";
    case LM_TYPE_INTERVAL: return "INTERVAL";
    default: return "?";
    }
}

static const char *
type_json(int type)
{
    switch (type) {
    case LM_TYPE_BOOL: return "bool";
    case LM_TYPE_INT64: return "int64";
    case LM_TYPE_FLOAT64: return "float64";
    case LM_TYPE_TIMESTAMP: return "timestamp";
    case LM_TYPE_UTF8: return "utf8";
    case LM_TYPE_BINARY: return "binary";
    default: return "interval";
    }
}

json_t *
lp_own(lm_sql_lp *lp, json_t *j)
{
    if (j == NULL) {
        return NULL;
    }
    if (lp->nowned == lp->owned_cap) {
        size_t cap = lp->owned_cap ? lp->owned_cap * 2 : 64;
        json_t **o = realloc(lp->owned, cap * sizeof(*o));
        if (o == NULL) {
            json_decref(j);
            return NULL;
        }
        lp->owned = o;
        lp->owned_cap = cap;
    }
    lp->owned[lp->nowned++] = j;
    return j;
}

json_t *
lp_col_ref(lm_sql_lp *lp, uint32_t id)
{
    char name[16];
    snprintf(name, sizeof(name), "#%" PRIu32, id);
    return lp_own(lp, json_pack("{s:s}", "col", name));
}

const lp_col *
lp_find_col(const lp_node *n, uint32_t id)
{
    for (uint32_t i = 0; i < n->ncols; i++) {
        if (n->cols[i].id == id) {
            return &n->cols[i];
        }
    }
    return NULL;
}

int64_t
lp_bare_col(const json_t *j)
{
    const char *s = json_string_value(json_object_get(j, "col"));
    return s != NULL && s[0] == '#' && json_object_size(j) == 1 ? strtoll(s + 1, NULL, 10) : -1;
}

static lp_node *
new_node(binder *b, lp_kind kind, lm_sql_pos pos, uint32_t nin, uint32_t ncols)
{
    lp_node *n = al(b, sizeof(*n));
    if (n == NULL) {
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    n->phys = -1;
    n->nin = nin;
    n->in = al(b, nin * sizeof(*n->in));
    n->cols = al(b, ncols * sizeof(*n->cols));
    n->ncols = ncols;
    if (n->in == NULL || n->cols == NULL) {
        return NULL;
    }
    return n;
}

static lp_col
fresh_col(binder *b, const char *name, const char *qual, int type, bool nullable)
{
    lp_col c = {0};
    c.id = b->lp->next_col++;
    c.name = name;
    c.qual = qual;
    c.type = (lm_type)type;
    c.nullable = nullable;
    c.tcol = -1;
    return c;
}

/* Edit distance ignoring case, for "did you mean" (names compare without
 * case unless quoted). */
static size_t
distance(const char *a, const char *b)
{
    char la[LM_TEXT_MAX + 1], lb[LM_TEXT_MAX + 1];
    size_t na = strlen(a), nb = strlen(b);

    if (na > LM_TEXT_MAX || nb > LM_TEXT_MAX) {
        return SIZE_MAX;
    }
    for (size_t i = 0; i <= na; i++) {
        la[i] = (char)tolower((unsigned char)a[i]);
    }
    for (size_t i = 0; i <= nb; i++) {
        lb[i] = (char)tolower((unsigned char)b[i]);
    }
    return lm_text_distance(la, lb);
}

typedef struct suggest {
    const char *best;
    size_t dist;
    char buf[256];
} suggest;

static void
suggest_try(suggest *s, const char *want, const char *cand)
{
    size_t d = distance(want, cand), limit = strlen(want) / 3 + 1;
    if (d <= limit && d > 0 && (s->best == NULL || d < s->dist)) {
        snprintf(s->buf, sizeof(s->buf), "%s", cand);
        s->best = s->buf;
        s->dist = d;
    } else if (d == 0 && s->best == NULL) { /* same name, other case or quoting */
        snprintf(s->buf, sizeof(s->buf), "%s", cand);
        s->best = s->buf;
        s->dist = 0;
    }
}

/* " (did you mean 'x'?)" or "". */
static const char *
suggest_text(const suggest *s, char *buf, size_t len)
{
    if (s->best == NULL) {
        return "";
    }
    snprintf(buf, len, " (did you mean '%s'?)", s->best);
    return buf;
}

/* --- typing ------------------------------------------------------------ */

/* Copies an engine message with its type names in SQL's words ("int64"
 * becomes "BIGINT"), so that users read the types they declare. */
static void
sql_type_words(const char *m, char *out, size_t cap)
{
    static const char *const words[][2] = {
        {"int64", "BIGINT"},        {"float64", "DOUBLE"}, {"utf8", "VARCHAR"},
        {"timestamp", "TIMESTAMP"}, {"binary", "BYTES"},   {"interval", "INTERVAL"},
        {"bool", "BOOLEAN"},        {NULL, NULL},
    };
    size_t o = 0;
    while (*m != '\0' && o + 1 < cap) {
        bool done = false;
        bool start = o == 0 || !(isalnum((unsigned char)m[-1]) || m[-1] == '_');
        for (int i = 0; start && words[i][0] != NULL && !done; i++) {
            size_t n = strlen(words[i][0]);
            if (strncmp(m, words[i][0], n) == 0 && !isalnum((unsigned char)m[n]) && m[n] != '_') {
                size_t k = strlen(words[i][1]);
                if (o + k + 1 < cap) {
                    memcpy(out + o, words[i][1], k);
                    o += k;
                }
                m += n;
                done = true;
            }
        }
        if (!done) {
            out[o++] = *m++;
        }
    }
    out[o] = '\0';
}

/* Compiles j against cols to learn its type. On a type error, the diag
 * points at pos. */
static int
type_of(binder *b, const json_t *j, const lp_col *cols, uint32_t n, lm_sql_pos pos, int *type,
        bool *nullable)
{
    lm_field *f = calloc(n ? n : 1, sizeof(*f));
    char *names = calloc(n ? n : 1, 16);
    lm_schema *s = NULL;
    lm_expr *e = NULL;
    lm_error err;
    int rv;

    if (f == NULL || names == NULL) {
        free(f);
        free(names);
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names + 16 * i, 16, "#%" PRIu32, cols[i].id);
        f[i] = (lm_field){names + 16 * i, cols[i].type, cols[i].nullable};
    }
    rv = lm_schema_new(f, n, &s, &err);
    free(f);
    free(names);
    if (rv != LM_OK) {
        return lm_sql_diag_set(b->d, pos, "internal: %s", err.msg);
    }
    rv = lm_expr_compile(j, s, &e, &err);
    lm_schema_release(s);
    if (rv == LM_ENOMEM) {
        return rv;
    }
    if (rv != LM_OK) {
        /* The children compiled already: the fault is this node's. Drop
         * the JSON path the engine puts first. */
        const char *m = err.msg;
        while (strncmp(m, "args[", 5) == 0 || strncmp(m, "case[", 5) == 0) {
            const char *colon = strstr(m, ": ");
            if (colon == NULL) {
                break;
            }
            m = colon + 2;
        }
        char sql[sizeof(err.msg) + 64];
        sql_type_words(m, sql, sizeof(sql));
        return lm_sql_diag_set(b->d, pos, "%s", sql);
    }
    *type = lm_expr_type(e);
    if (nullable != NULL) {
        *nullable = lm_expr_nullable(e);
    }
    lm_expr_free(e);
    return LM_OK;
}

/* --- names ------------------------------------------------------------- */

static bool
col_matches(const lp_col *c, const lm_sql_ident *p, uint32_t np)
{
    char joined[512];
    if (np == 1) {
        return name_eq(c->name, p[0].text, p[0].quoted);
    }
    if (np == 2) {
        snprintf(joined, sizeof(joined), "%s.%s", p[0].text, p[1].text);
        if (c->qual != NULL && name_eq(c->qual, p[0].text, p[0].quoted) &&
            name_eq(c->name, p[1].text, p[1].quoted)) {
            return true;
        }
        return name_eq(c->name, joined, p[0].quoted || p[1].quoted);
    }
    if (np == 3) {
        snprintf(joined, sizeof(joined), "%s.%s", p[1].text, p[2].text);
        return c->qual != NULL && name_eq(c->qual, p[0].text, p[0].quoted) &&
               name_eq(c->name, joined, p[1].quoted || p[2].quoted);
    }
    return false;
}

static void
ref_text(const lm_sql_expr *e, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < e->nparts && o < len; i++) {
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "." : "", e->parts[i].text);
    }
}

static void
col_text(const lp_col *c, char *buf, size_t len)
{
    if (c->qual != NULL) {
        snprintf(buf, len, "%s.%s", c->qual, c->name);
    } else {
        snprintf(buf, len, "%s", c->name);
    }
}

/* Resolves a name in sc: *out the index. */
static int
resolve(binder *b, const scope *sc, const lm_sql_expr *e, uint32_t *out)
{
    int64_t found = -1;
    char want[256], a[300], c2[300], sbuf[300];

    for (uint32_t i = 0; i < sc->n; i++) {
        if (!col_matches(&sc->cols[i], e->parts, e->nparts)) {
            continue;
        }
        if (found >= 0) {
            ref_text(e, want, sizeof(want));
            col_text(&sc->cols[found], a, sizeof(a));
            col_text(&sc->cols[i], c2, sizeof(c2));
            return lm_sql_diag_set(b->d, e->pos,
                                   "column reference '%s' is ambiguous: it could be %s or %s", want,
                                   a, c2);
        }
        found = i;
    }
    if (found >= 0) {
        *out = (uint32_t)found;
        return LM_OK;
    }
    ref_text(e, want, sizeof(want));
    suggest s = {0};
    for (uint32_t i = 0; i < sc->n; i++) {
        if (e->nparts >= 2) {
            col_text(&sc->cols[i], a, sizeof(a));
            suggest_try(&s, want, a);
        }
        suggest_try(&s, want, sc->cols[i].name);
    }
    if (e->nparts == 2) {
        /* a.b where a is a column: a field of a column that is not a ROW */
        for (uint32_t i = 0; i < sc->n; i++) {
            if (name_eq(sc->cols[i].name, e->parts[0].text, e->parts[0].quoted)) {
                return lm_sql_diag_set(
                    b->d, e->pos, "'%s' is a %s column, not a ROW: it has no field '%s'",
                    sc->cols[i].name, lp_type_sql(sc->cols[i].type), e->parts[1].text);
            }
        }
    }
    if (e->nparts == 1 && e->parts[0].quoted) {
        return lm_sql_diag_set(b->d, e->pos,
                               "unknown column \"%s\"%s (a double-quoted word is a name; a string "
                               "takes single quotes: '%s')",
                               want, suggest_text(&s, sbuf, sizeof(sbuf)), want);
    }
    if (e->nparts == 1 &&
        (strcasecmp(want, "window_start") == 0 || strcasecmp(want, "window_end") == 0)) {
        return lm_sql_diag_set(b->d, e->pos,
                               "unknown column '%s': window bounds come from a window, FROM "
                               "TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL ...)) with GROUP BY "
                               "window_start, window_end, or GROUP BY tumble(...)",
                               want);
    }
    if (e->nparts >= 2) {
        bool qual_known = false;
        for (uint32_t i = 0; i < sc->n; i++) {
            qual_known |= name_eq(sc->cols[i].qual, e->parts[0].text, e->parts[0].quoted);
        }
        if (!qual_known && e->nparts == 2) {
            bool row_known = false;
            for (uint32_t i = 0; i < sc->n && !row_known; i++) {
                size_t l = strlen(e->parts[0].text);
                row_known = strncasecmp(sc->cols[i].name, e->parts[0].text, l) == 0 &&
                            sc->cols[i].name[l] == '.';
            }
            if (!row_known) {
                return lm_sql_diag_set(b->d, e->pos, "unknown table or alias '%s' in '%s'%s",
                                       e->parts[0].text, want,
                                       suggest_text(&s, sbuf, sizeof(sbuf)));
            }
        }
    }
    return lm_sql_diag_set(b->d, e->pos, "unknown column '%s'%s", want,
                           suggest_text(&s, sbuf, sizeof(sbuf)));
}

/* --- expressions ------------------------------------------------------- */

static bool
is_agg_name(const char *n)
{
    static const char *const aggs[] = {"count", "sum", "avg", "min", "max", NULL};
    for (int i = 0; aggs[i]; i++) {
        if (strcasecmp(n, aggs[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool
is_window_name(const char *n)
{
    return strcasecmp(n, "tumble") == 0 || strcasecmp(n, "hop") == 0 ||
           strcasecmp(n, "session") == 0;
}

static bool
is_agg_call(const lm_sql_expr *e)
{
    return e->kind == LM_SQL_E_CALL && is_agg_name(e->name.text);
}

static bool
has_agg(const lm_sql_expr *e)
{
    if (e == NULL) {
        return false;
    }
    if (is_agg_call(e)) {
        return true;
    }
    for (uint32_t i = 0; i < e->nargs; i++) {
        if (has_agg(e->args[i])) {
            return true;
        }
    }
    return false;
}

static int sql_type_to_lm(binder *b, const lm_sql_type *t, int *out);

static int bind_expr(binder *b, const bctx *c, const lm_sql_expr *e, json_t **out, int *type,
                     bool *nullable);

/* Whether j is an untyped NULL literal (typed later from its neighbours). */
static bool
is_untyped_null(const json_t *j)
{
    return json_object_get(j, "lit") != NULL && json_is_null(json_object_get(j, "lit")) &&
           json_object_get(j, "untyped") != NULL;
}

/* Gives untyped NULL arguments the type of their first typed neighbour. */
static void
type_nulls(json_t **args, const int *types, uint32_t n)
{
    int t = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!is_untyped_null(args[i])) {
            t = types[i];
            break;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (is_untyped_null(args[i])) {
            json_object_del(args[i], "untyped");
            json_object_set_new(args[i], "type", json_string(type_json(t < 0 ? LM_TYPE_INT64 : t)));
        }
    }
}

static const char *
fn_name(const char *sql)
{
    static const char *const map[][2] = {
        {"char_length", "char_length"},
        {"character_length", "char_length"},
        {"ucase", "upper"},
        {"lcase", "lower"},
        {NULL, NULL},
    };
    for (int i = 0; map[i][0]; i++) {
        if (strcasecmp(sql, map[i][0]) == 0) {
            return map[i][1];
        }
    }
    return sql;
}

static int
bind_args(binder *b, const bctx *c, const lm_sql_expr *e, uint32_t from, json_t *arr, int *types)
{
    json_t *tmp[256];
    uint32_t n = 0;
    int rv;

    if (e->nargs - from > 256) {
        return lm_sql_diag_set(b->d, e->pos, "too many arguments (at most 256)");
    }
    for (uint32_t i = from; i < e->nargs; i++, n++) {
        if ((rv = bind_expr(b, c, e->args[i], &tmp[n], &types[n], NULL)) != LM_OK) {
            return rv;
        }
    }
    type_nulls(tmp, types, n);
    for (uint32_t i = 0; i < n; i++) {
        json_array_append(arr, tmp[i]);
    }
    return LM_OK;
}

static int
bind_expr(binder *b, const bctx *c, const lm_sql_expr *e, json_t **out, int *type, bool *nullable)
{
    json_t *j = NULL, *args;
    int rv, types[256];
    bool dummy;

    if (++b->depth > 400) {
        b->depth--;
        return lm_sql_diag_set(b->d, e->pos, "expression nested too deeply");
    }
    if (nullable == NULL) {
        nullable = &dummy;
    }
    if (c->hook != NULL) {
        rv = c->hook(b, c, e, &j);
        if (rv < 0) {
            b->depth--;
            return rv;
        }
        if (rv == 1) {
            goto typed;
        }
    }
    switch (e->kind) {
    case LM_SQL_E_NAME: {
        uint32_t i;
        if ((rv = resolve(b, c->names, e, &i)) != LM_OK) {
            b->depth--;
            return rv;
        }
        const lp_col *col = &c->names->cols[i];
        if (col->virt && !c->allow_virtual) {
            b->depth--;
            return lm_sql_diag_set(b->d, e->pos,
                                   "%s of a window table function can only be used in GROUP BY "
                                   "and in the SELECT list and HAVING of a query grouped by it",
                                   col->name);
        }
        j = lp_col_ref(b->lp, col->id);
        break;
    }
    case LM_SQL_E_LIT:
        switch (e->lit) {
        case LM_SQL_L_INT: j = json_pack("{s:I}", "lit", (json_int_t)e->i); break;
        case LM_SQL_L_FLOAT: j = json_pack("{s:f}", "lit", e->f); break;
        case LM_SQL_L_STRING: j = json_pack("{s:s}", "lit", e->text); break;
        case LM_SQL_L_BOOL: j = json_pack("{s:b}", "lit", e->b); break;
        case LM_SQL_L_NULL:
            j = json_pack("{s:n,s:b}", "lit", "untyped", 1);
            b->depth--;
            NOMEM(lp_own(b->lp, j));
            *out = j;
            *type = LM_TYPE_INT64;
            *nullable = true;
            return LM_OK;
        case LM_SQL_L_INTERVAL:
            j = json_pack("{s:I,s:s}", "lit", (json_int_t)e->i, "type", "interval");
            break;
        case LM_SQL_L_TIMESTAMP:
            j = json_pack("{s:I,s:s}", "lit", (json_int_t)e->i, "type", "timestamp");
            break;
        }
        j = lp_own(b->lp, j);
        break;
    case LM_SQL_E_STAR:
        b->depth--;
        return lm_sql_diag_set(
            b->d, e->pos, "* can only stand for all columns in the SELECT list, or in count(*)");
    case LM_SQL_E_UNARY:
    case LM_SQL_E_BINARY:
        NOMEM(args = json_array());
        j = lp_own(b->lp, json_pack("{s:s,s:o}", "call", strcmp(e->op, "<>") == 0 ? "<>" : e->op,
                                    "args", args));
        if (j != NULL && (rv = bind_args(b, c, e, 0, args, types)) != LM_OK) {
            b->depth--;
            return rv;
        }
        if (strcmp(e->op, "and") == 0 || strcmp(e->op, "or") == 0 || strcmp(e->op, "not") == 0) {
            for (uint32_t k = 0; k < e->nargs; k++) { /* point at the operand that is wrong */
                if (types[k] != LM_TYPE_BOOL && !is_untyped_null(json_array_get(args, k))) {
                    b->depth--;
                    char up[8];
                    snprintf(up, sizeof(up), "%s", e->op);
                    for (char *u = up; *u; u++) {
                        *u = (char)toupper((unsigned char)*u);
                    }
                    return lm_sql_diag_set(b->d, e->args[k]->pos,
                                           "%s needs BOOLEAN operands, this one is %s", up,
                                           lp_type_sql(types[k]));
                }
            }
        }
        if (strcmp(e->op, "and") == 0 || strcmp(e->op, "or") == 0) {
            /* a AND b AND c is one call of three arguments, not a chain as
             * deep as it is long */
            json_t *flat = json_array();
            NOMEM(flat);
            for (size_t k = 0; k < json_array_size(args); k++) {
                json_t *a = json_array_get(args, k);
                const char *call = json_string_value(json_object_get(a, "call"));
                if (call != NULL && strcmp(call, e->op) == 0) {
                    json_array_extend(flat, json_object_get(a, "args"));
                } else {
                    json_array_append(flat, a);
                }
            }
            json_object_set_new(j, "args", flat);
        }
        break;
    case LM_SQL_E_CALL:
        if (is_agg_name(e->name.text)) {
            b->depth--;
            return lm_sql_diag_set(b->d, e->pos, "aggregate function %s is not allowed in %s",
                                   e->name.text, c->clause);
        }
        if (is_window_name(e->name.text)) {
            b->depth--;
            return lm_sql_diag_set(b->d, e->pos,
                                   "window function %s() can only be used in GROUP BY; its "
                                   "bounds are window_start and window_end",
                                   e->name.text);
        }
        if (e->star || e->distinct) {
            b->depth--;
            return lm_sql_diag_set(b->d, e->pos,
                                   "%s is not an aggregate function: %s is not allowed",
                                   e->name.text, e->star ? "*" : "DISTINCT");
        }
        NOMEM(args = json_array());
        j = lp_own(b->lp, json_pack("{s:s,s:o}", "call", fn_name(e->name.text), "args", args));
        if (j != NULL && (rv = bind_args(b, c, e, 0, args, types)) != LM_OK) {
            b->depth--;
            return rv;
        }
        break;
    case LM_SQL_E_CASE: {
        /* args: [operand] when then ... [else]; the results share a type */
        uint32_t first = e->has_operand ? 1 : 0, end = e->nargs - (e->has_else ? 1 : 0);
        json_t *whens = lp_own(b->lp, json_array()), *operand = NULL;
        json_t **vals = calloc(e->nargs + 1, sizeof(json_t *));
        int *vt = calloc(e->nargs + 1, sizeof(int)), ot, wt;
        uint32_t nv = 0;
        rv = whens == NULL || vals == NULL || vt == NULL ? LM_ENOMEM : LM_OK;
        if (rv == LM_OK && e->has_operand) {
            rv = bind_expr(b, c, e->args[0], &operand, &ot, NULL);
        }
        for (uint32_t i = first; rv == LM_OK && i + 1 < end; i += 2) {
            json_t *w, *t;
            if ((rv = bind_expr(b, c, e->args[i], &w, &wt, NULL)) != LM_OK ||
                (rv = bind_expr(b, c, e->args[i + 1], &t, &vt[nv], NULL)) != LM_OK) {
                break;
            }
            if (operand != NULL && (w = lp_own(b->lp, json_pack("{s:s,s:[OO]}", "call", "=", "args",
                                                                operand, w))) == NULL) {
                rv = LM_ENOMEM;
                break;
            }
            vals[nv++] = t;
            json_array_append_new(whens, json_pack("{s:O,s:O}", "when", w, "then", t));
        }
        if (rv == LM_OK && e->has_else) {
            rv = bind_expr(b, c, e->args[e->nargs - 1], &vals[nv], &vt[nv], NULL);
            nv++;
        }
        if (rv == LM_OK) {
            type_nulls(vals, vt, nv);
            j = lp_own(b->lp, json_pack("{s:O}", "case", whens));
            if (j != NULL && e->has_else) {
                json_object_set(j, "else", vals[nv - 1]);
            }
        }
        free(vals);
        free(vt);
        if (rv != LM_OK) {
            b->depth--;
            return rv;
        }
        break;
    }
    case LM_SQL_E_CAST: {
        json_t *x;
        int xt, to;
        if ((rv = bind_expr(b, c, e->args[0], &x, &xt, NULL)) != LM_OK ||
            (rv = sql_type_to_lm(b, e->cast_type, &to)) != LM_OK) {
            b->depth--;
            return rv;
        }
        if (is_untyped_null(x)) {
            json_object_del(x, "untyped");
            json_object_set_new(x, "type", json_string(type_json(to)));
        }
        j = lp_own(b->lp, json_pack("{s:O,s:s}", "cast", x, "to", type_json(to)));
        break;
    }
    case LM_SQL_E_BETWEEN:
    case LM_SQL_E_IN:
    case LM_SQL_E_LIKE:
    case LM_SQL_E_IS_NULL: {
        static const char *const pos_names[] = {"between", "in", "like", "is_null"};
        static const char *const neg_names[] = {"not_between", "not_in", "not_like", "is_not_null"};
        int k = e->kind == LM_SQL_E_BETWEEN ? 0
                : e->kind == LM_SQL_E_IN    ? 1
                : e->kind == LM_SQL_E_LIKE  ? 2
                                            : 3;
        NOMEM(args = json_array());
        j = lp_own(b->lp, json_pack("{s:s,s:o}", "call", e->negated ? neg_names[k] : pos_names[k],
                                    "args", args));
        if (j != NULL && (rv = bind_args(b, c, e, 0, args, types)) != LM_OK) {
            b->depth--;
            return rv;
        }
        break;
    }
    }
    if (j == NULL) {
        b->depth--;
        return LM_ENOMEM;
    }
typed:
    b->depth--;
    if (is_untyped_null(j)) {
        *out = j;
        *type = LM_TYPE_INT64;
        *nullable = true;
        return LM_OK;
    }
    if ((rv = type_of(b, j, c->tcols, c->ntcols, e->pos, type, nullable)) != LM_OK) {
        return rv;
    }
    *out = j;
    return LM_OK;
}

/* A JSON expression with NULL literals typed (for expressions that stand alone). */
static void
settle_null(json_t *j, int type)
{
    if (is_untyped_null(j)) {
        json_object_del(j, "untyped");
        json_object_set_new(j, "type", json_string(type_json(type)));
    }
}

static int
sql_type_to_lm(binder *b, const lm_sql_type *t, int *out)
{
    switch (t->kind) {
    case LM_SQL_T_BOOLEAN: *out = LM_TYPE_BOOL; return LM_OK;
    case LM_SQL_T_INT:
    case LM_SQL_T_BIGINT: *out = LM_TYPE_INT64; return LM_OK;
    case LM_SQL_T_DOUBLE:
    case LM_SQL_T_DECIMAL: *out = LM_TYPE_FLOAT64; return LM_OK;
    case LM_SQL_T_VARCHAR: *out = LM_TYPE_UTF8; return LM_OK;
    case LM_SQL_T_BYTES: *out = LM_TYPE_BINARY; return LM_OK;
    case LM_SQL_T_TIMESTAMP: *out = LM_TYPE_TIMESTAMP; return LM_OK;
    case LM_SQL_T_INTERVAL: *out = LM_TYPE_INTERVAL; return LM_OK;
    case LM_SQL_T_ROW: break;
    }
    return lm_sql_diag_set(b->d, t->pos, "a ROW type is only allowed for a table's columns");
}

/* --- tables ------------------------------------------------------------ */

static lm_sql_table *
find_table(lm_sql_lp *lp, const lm_sql_ident *name)
{
    for (uint32_t i = 0; i < lp->ntables; i++) {
        if (name_eq(lp->tables[i].name, name->text, name->quoted)) {
            return &lp->tables[i];
        }
    }
    return NULL;
}

static lm_sql_view *
find_view(lm_sql_lp *lp, const lm_sql_ident *name)
{
    for (uint32_t i = 0; i < lp->nviews; i++) {
        if (name_eq(lp->views[i].name, name->text, name->quoted)) {
            return &lp->views[i];
        }
    }
    return NULL;
}

static int
unknown_relation(binder *b, const lm_sql_ident *name)
{
    suggest s = {0};
    char sbuf[300];
    for (uint32_t i = 0; i < b->lp->ntables; i++) {
        suggest_try(&s, name->text, b->lp->tables[i].name);
    }
    for (uint32_t i = 0; i < b->lp->nviews; i++) {
        suggest_try(&s, name->text, b->lp->views[i].name);
    }
    return lm_sql_diag_set(b->d, name->pos, "unknown table or view '%s'%s", name->text,
                           suggest_text(&s, sbuf, sizeof(sbuf)));
}

/* Flattens a column of type t into cols, as prefix(.field)*. */
static int
flatten(binder *b, const char *prefix, const lm_sql_type *t, bool nullable, lm_sql_col_def **cols,
        uint32_t *n, uint32_t *cap)
{
    int rv;
    if (t->kind == LM_SQL_T_ROW) {
        for (uint32_t i = 0; i < t->nfields; i++) {
            char name[512];
            snprintf(name, sizeof(name), "%s.%s", prefix, t->fields[i].name.text);
            if ((rv = flatten(b, name, t->fields[i].type, true, cols, n, cap)) != LM_OK) {
                return rv;
            }
        }
        return LM_OK;
    }
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 16;
        lm_sql_col_def *c = al(b, nc * sizeof(*c));
        NOMEM(c);
        if (*n) {
            memcpy(c, *cols, *n * sizeof(*c));
        }
        *cols = c;
        *cap = nc;
    }
    lm_sql_col_def *c = &(*cols)[(*n)++];
    int type;
    if ((rv = sql_type_to_lm(b, t, &type)) != LM_OK) {
        return rv;
    }
    NOMEM(c->name = sdup(b, prefix));
    c->type = (lm_type)type;
    c->nullable = nullable;
    return LM_OK;
}

typedef struct connector_info {
    const char *name;
    bool source, sink;
    const char *const *options; /* NULL: checked elsewhere (nexmark) */
    const char *const *required;
} connector_info;

static const char *const fs_options[] = {
    "connector",        "path",          "format",     "csv_header", "bad_lines", "read_bytes",
    "max_record_bytes", "rolling_bytes", "rolling_ms", NULL};
static const char *const fs_required[] = {"path", NULL};
static const char *const bh_options[] = {"connector", "delay_us", NULL};
static const char *const plain_options[] = {"connector", NULL};
static const char *const impulse_options[] = {"connector", "count",       "rate",
                                              "start_ms",  "interval_us", NULL};
static const char *const none[] = {NULL};

static const connector_info connectors[] = {
    {"nexmark", true, false, NULL, none},
    {"filesystem", true, true, fs_options, fs_required},
    {"blackhole", false, true, bh_options, none},
    {"stdout", false, true, plain_options, none},
    {"print", false, true, plain_options, none},
    {"impulse", true, false, impulse_options, none},
};

/* What an option's value may be: one of the words in "a|b|c", or "#": a
 * whole number, 0 or more; other options take any text that is not empty. */
static const char *const option_values[][2] = {
    {"format", "json|csv"},
    {"csv_header", "true|false"},
    {"bad_lines", "fail|drop"},
    {"read_bytes", "#"},
    {"max_record_bytes", "#"},
    {"rolling_bytes", "#"},
    {"rolling_ms", "#"},
    {"delay_us", "#"},
    {"count", "#"},
    {"rate", "#"},
    {"start_ms", "#"},
    {"interval_us", "#"},
    {NULL, NULL},
};

static int
check_value(binder *b, const lm_sql_option *o)
{
    const char *rule = NULL, *v = o->value;
    for (int i = 0; option_values[i][0] != NULL; i++) {
        if (strcmp(option_values[i][0], o->key) == 0) {
            rule = option_values[i][1];
        }
    }
    if (v[0] == '\0') {
        return lm_sql_diag_set(b->d, o->value_pos, "option '%s' is empty", o->key);
    }
    if (rule == NULL) {
        return LM_OK;
    }
    if (strcmp(rule, "#") == 0) {
        size_t n = strspn(v, "0123456789");
        if (v[n] != '\0' || n > 18) {
            return lm_sql_diag_set(b->d, o->value_pos,
                                   "option '%s' must be a whole number (0 or more), got '%s'",
                                   o->key, v);
        }
        return LM_OK;
    }
    for (const char *w = rule; *w != '\0';) {
        size_t n = strcspn(w, "|");
        if (strlen(v) == n && strncasecmp(v, w, n) == 0) {
            return LM_OK;
        }
        w += n + (w[n] == '|');
    }
    char words[64];
    snprintf(words, sizeof(words), "%s", rule);
    for (char *c = words; *c; c++) {
        if (*c == '|') {
            *c = '/';
        }
    }
    return lm_sql_diag_set(b->d, o->value_pos, "option '%s' must be one of %s, got '%s'", o->key,
                           words, v);
}

static const connector_info *
find_connector(const char *name)
{
    for (size_t i = 0; i < sizeof(connectors) / sizeof(connectors[0]); i++) {
        if (strcasecmp(connectors[i].name, name) == 0) {
            return &connectors[i];
        }
    }
    return NULL;
}

static int
check_options(binder *b, lm_sql_table *t, const lm_sql_stmt *s, const connector_info *ci)
{
    char sbuf[300];
    lm_error err;

    for (uint32_t i = 0; i < s->noptions; i++) {
        const lm_sql_option *o = &s->options[i];
        for (uint32_t k = 0; k < i; k++) {
            if (strcmp(s->options[k].key, o->key) == 0) {
                return lm_sql_diag_set(b->d, o->key_pos, "option '%s' is given twice", o->key);
            }
        }
        if (strcmp(o->key, "connector") == 0) {
            continue;
        }
        if (ci->options == NULL) { /* nexmark: the generator knows its options */
            lm_nexmark_cfg cfg;
            lm_nexmark_cfg_defaults(&cfg);
            if (lm_nexmark_cfg_set(&cfg, o->key, o->value, &err) != LM_OK) {
                bool known = false;
                suggest sg = {0};
                for (uint32_t k = 0; lm_nexmark_option(k) != NULL; k++) {
                    known |= strcmp(lm_nexmark_option(k), o->key) == 0;
                    suggest_try(&sg, o->key, lm_nexmark_option(k));
                }
                if (!known) {
                    return lm_sql_diag_set(b->d, o->key_pos,
                                           "unknown option '%s' for connector 'nexmark'%s", o->key,
                                           suggest_text(&sg, sbuf, sizeof(sbuf)));
                }
                return lm_sql_diag_set(b->d, o->value_pos, "%s", err.msg); /* names the option */
            }
            continue;
        }
        bool known = false;
        suggest sg = {0};
        for (uint32_t k = 0; ci->options[k] != NULL; k++) {
            known |= strcmp(ci->options[k], o->key) == 0;
            suggest_try(&sg, o->key, ci->options[k]);
        }
        int vr;
        if (known && (vr = check_value(b, o)) != LM_OK) {
            return vr;
        }
        if (!known) {
            char list[400];
            size_t used = 0;
            list[0] = '\0';
            for (uint32_t k = 0; ci->options[k] != NULL && used < sizeof(list); k++) {
                if (strcmp(ci->options[k], "connector") != 0) {
                    used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                             used ? ", " : "", ci->options[k]);
                }
            }
            return lm_sql_diag_set(
                b->d, o->key_pos, "unknown option '%s' for connector '%s'%s (its options: %s)",
                o->key, ci->name, suggest_text(&sg, sbuf, sizeof(sbuf)), list[0] ? list : "none");
        }
    }
    for (uint32_t k = 0; ci->required[k] != NULL; k++) {
        bool have = false;
        for (uint32_t i = 0; i < s->noptions; i++) {
            have |= strcmp(s->options[i].key, ci->required[k]) == 0;
        }
        if (!have) {
            return lm_sql_diag_set(b->d, s->pos, "table '%s': connector '%s' needs option '%s'",
                                   t->name, ci->name, ci->required[k]);
        }
    }
    return LM_OK;
}

static int
bind_create_table(binder *b, const lm_sql_stmt *s)
{
    lm_sql_lp *lp = b->lp;
    lm_sql_table *t;
    const connector_info *ci = NULL;
    uint32_t cap = 0;
    int rv;

    if (find_table(lp, &s->name) != NULL || find_view(lp, &s->name) != NULL) {
        return lm_sql_diag_set(b->d, s->name.pos, "a table or view named '%s' already exists",
                               s->name.text);
    }
    t = &lp->tables[lp->ntables];
    memset(t, 0, sizeof(*t));
    t->name = s->name.text;
    t->pos = s->pos;
    t->options = s->options;
    t->noptions = s->noptions;
    t->wm_col = -1;
    t->phys = -1;
    for (uint32_t i = 0; i < s->noptions; i++) {
        if (strcmp(s->options[i].key, "connector") == 0) {
            t->connector = s->options[i].value;
            if ((ci = find_connector(t->connector)) == NULL) {
                suggest sg = {0};
                char sbuf[300];
                for (size_t k = 0; k < sizeof(connectors) / sizeof(connectors[0]); k++) {
                    suggest_try(&sg, t->connector, connectors[k].name);
                }
                return lm_sql_diag_set(b->d, s->options[i].value_pos,
                                       "unknown connector '%s'%s (connectors: nexmark, filesystem, "
                                       "impulse, blackhole, stdout, print)",
                                       t->connector, suggest_text(&sg, sbuf, sizeof(sbuf)));
            }
        }
    }
    if (ci == NULL) {
        return lm_sql_diag_set(b->d, s->name.pos, "table '%s' needs WITH ('connector' = '...')",
                               t->name);
    }
    if ((rv = check_options(b, t, s, ci)) != LM_OK) {
        return rv;
    }
    /* columns */
    for (uint32_t i = 0; i < s->ncolumns; i++) {
        const lm_sql_column *c = &s->columns[i];
        for (uint32_t k = 0; k < i; k++) {
            if (name_eq(s->columns[k].name.text, c->name.text, false)) {
                return lm_sql_diag_set(b->d, c->name.pos, "column '%s' is declared twice",
                                       c->name.text);
            }
        }
        if (c->computed != NULL) {
            if (t->ncols == cap) {
                uint32_t nc = cap ? cap * 2 : 16;
                lm_sql_col_def *d2 = al(b, nc * sizeof(*d2));
                NOMEM(d2);
                if (t->ncols) {
                    memcpy(d2, t->cols, t->ncols * sizeof(*d2));
                }
                t->cols = d2;
                cap = nc;
            }
            lm_sql_col_def *d = &t->cols[t->ncols++];
            d->name = c->name.text;
            d->computed = true;
            d->expr = c->computed;
            continue;
        }
        if ((rv = flatten(b, c->name.text, c->type, !c->not_null, &t->cols, &t->ncols, &cap)) !=
            LM_OK) {
            return rv;
        }
    }
    if (t->ncols == 0) {
        return lm_sql_diag_set(b->d, s->name.pos, "table '%s' has no columns", t->name);
    }
    if (strcasecmp(ci->name, "nexmark") == 0) {
        for (uint32_t i = 0; i < t->ncols; i++) {
            bool known = false;
            suggest sg = {0};
            char sbuf[300];
            if (t->cols[i].computed) {
                continue;
            }
            for (uint32_t k = 0; k < LM_NEXMARK_NCOLS; k++) {
                const lm_field *f = lm_nexmark_column_field((lm_nexmark_col)k);
                if (strcasecmp(f->name, t->cols[i].name) == 0) {
                    known = true;
                    t->cols[i].name = f->name; /* the generator's spelling */
                    if (f->type != t->cols[i].type) {
                        return lm_sql_diag_set(
                            b->d, s->name.pos, "table '%s': nexmark column '%s' is %s, not %s",
                            t->name, f->name, lp_type_sql(f->type), lp_type_sql(t->cols[i].type));
                    }
                }
                suggest_try(&sg, t->cols[i].name, f->name);
            }
            if (!known) {
                return lm_sql_diag_set(
                    b->d, s->name.pos, "table '%s': the nexmark connector has no column '%s'%s",
                    t->name, t->cols[i].name, suggest_text(&sg, sbuf, sizeof(sbuf)));
            }
        }
    }
    /* ids, then computed columns over the physical ones */
    NOMEM(t->col_ids = al(b, t->ncols * sizeof(uint32_t)));
    NOMEM(t->computed = al(b, t->ncols * sizeof(json_t *)));
    lp_col *cols = al(b, t->ncols * sizeof(lp_col));
    NOMEM(cols);
    uint32_t nphys = 0;
    for (uint32_t i = 0; i < t->ncols; i++) {
        t->col_ids[i] = lp->next_col++;
        if (!t->cols[i].computed) {
            cols[nphys] =
                (lp_col){t->col_ids[i],       t->cols[i].name, t->name, false, t->cols[i].type,
                         t->cols[i].nullable, LP_PLAIN,        NULL,    false, (int32_t)i};
            nphys++;
        }
    }
    scope sc = {cols, nphys};
    bctx c = {&sc, cols, nphys, "a computed column", NULL, NULL, false};
    for (uint32_t i = 0; i < t->ncols; i++) {
        int type;
        bool nullable;
        if (!t->cols[i].computed) {
            continue;
        }
        if (has_agg(t->cols[i].expr)) {
            return lm_sql_diag_set(b->d, t->cols[i].expr->pos,
                                   "a computed column cannot use an aggregate function");
        }
        if ((rv = bind_expr(b, &c, t->cols[i].expr, &t->computed[i], &type, &nullable)) != LM_OK) {
            return rv;
        }
        settle_null(t->computed[i], type);
        if (type == LM_TYPE_INTERVAL) {
            return lm_sql_diag_set(b->d, t->cols[i].expr->pos,
                                   "computed column '%s' is an INTERVAL: a column cannot be one",
                                   t->cols[i].name);
        }
        t->cols[i].type = (lm_type)type;
        t->cols[i].nullable = nullable;
    }
    /* watermark */
    if (s->watermark_col.text != NULL) {
        const lm_sql_expr *w = s->watermark;
        for (uint32_t i = 0; i < t->ncols; i++) {
            if (name_eq(t->cols[i].name, s->watermark_col.text, s->watermark_col.quoted)) {
                t->wm_col = (int32_t)i;
            }
        }
        if (t->wm_col < 0) {
            return lm_sql_diag_set(b->d, s->watermark_col.pos,
                                   "WATERMARK FOR '%s': no such column in table '%s'",
                                   s->watermark_col.text, t->name);
        }
        if (t->cols[t->wm_col].type != LM_TYPE_TIMESTAMP) {
            return lm_sql_diag_set(b->d, s->watermark_col.pos,
                                   "WATERMARK FOR '%s': the column is %s, it must be a TIMESTAMP",
                                   s->watermark_col.text, lp_type_sql(t->cols[t->wm_col].type));
        }
        bool col_ok = false;
        if (w->kind == LM_SQL_E_NAME && w->nparts == 1) {
            col_ok = name_eq(t->cols[t->wm_col].name, w->parts[0].text, w->parts[0].quoted);
            t->wm_delay = 0;
        } else if (w->kind == LM_SQL_E_BINARY && strcmp(w->op, "-") == 0 &&
                   w->args[0]->kind == LM_SQL_E_NAME && w->args[0]->nparts == 1 &&
                   w->args[1]->kind == LM_SQL_E_LIT && w->args[1]->lit == LM_SQL_L_INTERVAL &&
                   w->args[1]->i >= 0) {
            col_ok = name_eq(t->cols[t->wm_col].name, w->args[0]->parts[0].text,
                             w->args[0]->parts[0].quoted);
            t->wm_delay = w->args[1]->i;
        }
        if (!col_ok) {
            return lm_sql_diag_set(b->d, w->pos,
                                   "the WATERMARK expression must be the column itself or the "
                                   "column minus a constant INTERVAL ('%s - INTERVAL '5' SECOND')",
                                   t->cols[t->wm_col].name);
        }
    }
    if (!ci->source && !ci->sink) {
        return lm_sql_diag_set(b->d, s->pos, "connector '%s' can neither read nor write", ci->name);
    }
    lp->ntables++;
    return LM_OK;
}

/* --- FROM -------------------------------------------------------------- */

/* sc gets from's columns under the qualifier qual (a view's or a
 * subquery's name in the query that reads it). */
static int
requalify(binder *b, const char *qual, scope *sc, const scope *from)
{
    const scope *src = from;
    sc->n = src->n;
    NOMEM(sc->cols = al(b, sc->n * sizeof(lp_col)));
    for (uint32_t i = 0; i < sc->n; i++) {
        sc->cols[i] = src->cols[i];
        sc->cols[i].qual = qual;
    }
    return LM_OK;
}

static int
scan_table(binder *b, lm_sql_table *t, const lm_sql_ident *alias, lm_sql_pos pos, lp_node **out,
           scope *sc)
{
    const connector_info *ci = find_connector(t->connector);
    const char *qual = alias != NULL && alias->text != NULL ? alias->text : t->name;
    lp_node *n;

    if (!ci->source) {
        return lm_sql_diag_set(b->d, pos, "table '%s' (connector '%s') cannot be read from",
                               t->name, ci->name);
    }
    NOMEM(n = new_node(b, LP_SCAN, pos, 0, t->ncols));
    n->table = t;
    t->used_as_source = true;
    for (uint32_t i = 0; i < t->ncols; i++) {
        n->cols[i] = fresh_col(b, t->cols[i].name, qual, t->cols[i].type, t->cols[i].nullable);
        n->cols[i].tcol = (int32_t)i;
        if ((int32_t)i == t->wm_col) {
            n->cols[i].role = LP_ROWTIME;
        }
    }
    sc->cols = n->cols;
    sc->n = n->ncols;
    *out = n;
    return LM_OK;
}

static int
bind_named(binder *b, const lm_sql_ident *name, const lm_sql_ident *alias, lm_sql_pos pos,
           lp_node **out, scope *sc)
{
    lm_sql_table *t = find_table(b->lp, name);
    lm_sql_view *v;
    scope inner;
    int rv;

    if (t != NULL) {
        return scan_table(b, t, alias, pos, out, sc);
    }
    if ((v = find_view(b->lp, name)) == NULL) {
        for (uint32_t i = 0; i < b->nviews_in_use; i++) {
            if (name_eq(b->views_in_use[i], name->text, name->quoted)) {
                return lm_sql_diag_set(b->d, name->pos, "view '%s' refers to itself",
                                       b->views_in_use[i]);
            }
        }
        return unknown_relation(b, name);
    }
    for (uint32_t i = 0; i < b->nviews_in_use; i++) {
        if (b->views_in_use[i] == v->name) {
            return lm_sql_diag_set(b->d, name->pos, "view '%s' refers to itself", v->name);
        }
    }
    if (b->nviews_in_use == 64) {
        return lm_sql_diag_set(b->d, name->pos, "views nested too deeply");
    }
    b->views_in_use[b->nviews_in_use++] = v->name;
    rv = bind_query(b, v->query, out, &inner);
    b->nviews_in_use--;
    if (rv != LM_OK) {
        return rv;
    }
    return requalify(b, alias != NULL && alias->text != NULL ? alias->text : v->name, sc, &inner);
}

static int bind_ref(binder *b, const lm_sql_ref *r, lp_node **out, scope *sc);

static int
interval_arg(binder *b, const lm_sql_expr *e, const char *what, int64_t *us)
{
    if (e->kind != LM_SQL_E_LIT || e->lit != LM_SQL_L_INTERVAL) {
        return lm_sql_diag_set(b->d, e->pos, "the %s must be an INTERVAL literal", what);
    }
    if (e->i <= 0 || e->i % 1000 != 0) {
        return lm_sql_diag_set(b->d, e->pos,
                               "the %s must be a positive whole number of milliseconds", what);
    }
    *us = e->i;
    return LM_OK;
}

/* A window over time column id. Windows with equal parameters are the
 * same windows (all are aligned to the epoch) and share an id, so that a
 * join can tell that its inputs were windowed alike. */
static lp_window *
make_window(binder *b, lp_win_type type, int64_t size, int64_t slide, int64_t gap, uint32_t time)
{
    lp_window *w = al(b, sizeof(*w));
    uint32_t id = UINT32_MAX;
    for (uint32_t i = 0; i < b->nwins; i++) {
        const lp_window *o = b->wins[i];
        if (type != LP_WIN_SESSION && o->type == type && o->size_us == size &&
            o->slide_us == slide && o->gap_us == gap) {
            id = o->id;
        }
    }
    if (w != NULL) {
        *w = (lp_window){type, size, slide, gap, time, 0, 0, id};
        if (id == UINT32_MAX) {
            w->id = b->lp->next_win++;
            if (b->nwins < 64) {
                b->wins[b->nwins++] = w;
            }
        }
    }
    return w;
}

static int
window_params(binder *b, lm_sql_window_fn fn, lm_sql_expr *const *args, uint32_t nargs,
              lm_sql_pos pos, const char *fname, int64_t p[3])
{
    uint32_t want = fn == LM_SQL_WIN_HOP ? 2 : 1;
    int rv;
    if (nargs != want) {
        return lm_sql_diag_set(b->d, pos, "%s takes %u interval%s (%s), got %u", fname, want,
                               want > 1 ? "s" : "",
                               fn == LM_SQL_WIN_TUMBLE ? "the size"
                               : fn == LM_SQL_WIN_HOP  ? "the slide, then the size"
                                                       : "the gap",
                               nargs);
    }
    p[0] = p[1] = p[2] = 0;
    if (fn == LM_SQL_WIN_TUMBLE) {
        return interval_arg(b, args[0], "window size", &p[0]);
    }
    if (fn == LM_SQL_WIN_SESSION) {
        return interval_arg(b, args[0], "session gap", &p[2]);
    }
    if ((rv = interval_arg(b, args[0], "slide", &p[1])) != LM_OK ||
        (rv = interval_arg(b, args[1], "window size", &p[0])) != LM_OK) {
        return rv;
    }
    if (p[0] % p[1] != 0) {
        return lm_sql_diag_set(b->d, args[1]->pos,
                               "the window size must be a multiple of the slide");
    }
    return LM_OK;
}

static lp_win_type
win_type(lm_sql_window_fn fn)
{
    return fn == LM_SQL_WIN_TUMBLE ? LP_WIN_TUMBLE
           : fn == LM_SQL_WIN_HOP  ? LP_WIN_HOP
                                   : LP_WIN_SESSION;
}

static int
bind_ref(binder *b, const lm_sql_ref *r, lp_node **out, scope *sc)
{
    int rv;
    switch (r->kind) {
    case LM_SQL_REF_TABLE: return bind_named(b, &r->name, &r->alias, r->pos, out, sc);
    case LM_SQL_REF_SUBQUERY: {
        scope inner;
        if ((rv = bind_query(b, r->query, out, &inner)) != LM_OK) {
            return rv;
        }
        return requalify(b, r->alias.text, sc, &inner);
    }
    case LM_SQL_REF_JOIN: {
        lp_node *l, *rr, *n;
        scope ls, rs;
        if ((rv = bind_ref(b, r->left, &l, &ls)) != LM_OK ||
            (rv = bind_ref(b, r->right, &rr, &rs)) != LM_OK) {
            return rv;
        }
        for (uint32_t i = 0; i < rs.n; i++) {
            for (uint32_t k = 0; k < ls.n && rs.cols[i].qual != NULL; k++) {
                if (ls.cols[k].qual != NULL && strcasecmp(ls.cols[k].qual, rs.cols[i].qual) == 0) {
                    const lm_sql_ref *rr2 = r->right;
                    lm_sql_pos at = rr2->alias.text != NULL  ? rr2->alias.pos
                                    : rr2->name.text != NULL ? rr2->name.pos
                                                             : rr2->pos;
                    return lm_sql_diag_set(b->d, at,
                                           "'%s' names two inputs of this FROM: give one of them "
                                           "another alias",
                                           rs.cols[i].qual);
                }
            }
        }
        NOMEM(n = new_node(b, LP_JOIN, r->pos, 2, l->ncols + rr->ncols));
        n->in[0] = l;
        n->in[1] = rr;
        n->left_outer = r->join == LM_SQL_JOIN_LEFT;
        n->changelog = l->changelog || rr->changelog || n->left_outer;
        memcpy(n->cols, l->cols, l->ncols * sizeof(lp_col));
        memcpy(n->cols + l->ncols, rr->cols, rr->ncols * sizeof(lp_col));
        sc->n = ls.n + rs.n;
        NOMEM(sc->cols = al(b, sc->n * sizeof(lp_col)));
        memcpy(sc->cols, ls.cols, ls.n * sizeof(lp_col));
        memcpy(sc->cols + ls.n, rs.cols, rs.n * sizeof(lp_col));
        if (n->left_outer) {
            for (uint32_t i = l->ncols; i < n->ncols; i++) {
                n->cols[i].nullable = true;
            }
            for (uint32_t i = ls.n; i < sc->n; i++) {
                sc->cols[i].nullable = true;
            }
        }
        if (r->on != NULL) {
            bctx c = {sc, n->cols, n->ncols, "ON", NULL, NULL, false};
            int type;
            if (has_agg(r->on)) {
                return lm_sql_diag_set(b->d, r->on->pos,
                                       "aggregate functions are not allowed in ON");
            }
            /* types against the inputs' own columns (nullability before the outer join) */
            lp_col *both = al(b, n->ncols * sizeof(lp_col));
            NOMEM(both);
            memcpy(both, l->cols, l->ncols * sizeof(lp_col));
            memcpy(both + l->ncols, rr->cols, rr->ncols * sizeof(lp_col));
            c.tcols = both;
            if ((rv = bind_expr(b, &c, r->on, &n->cond, &type, NULL)) != LM_OK) {
                return rv;
            }
            if (type != LM_TYPE_BOOL) {
                return lm_sql_diag_set(b->d, r->on->pos, "ON needs a BOOLEAN condition, got %s",
                                       lp_type_sql(type));
            }
        }
        *out = n;
        return LM_OK;
    }
    case LM_SQL_REF_WINDOW: {
        static const char *const fnames[] = {"TUMBLE", "HOP", "SESSION"};
        scope inner;
        int64_t p[3];
        uint32_t tc;
        lm_sql_expr name = {0};
        if ((rv = bind_named(b, &r->name, &r->alias, r->pos, out, &inner)) != LM_OK) {
            return rv;
        }
        if ((*out)->changelog) {
            return lm_sql_diag_set(b->d, r->name.pos,
                                   "'%s' is updated (it comes from a GROUP BY without a window, "
                                   "an updating join or an outer join): only an append-only "
                                   "input can be windowed",
                                   r->name.text);
        }
        name.kind = LM_SQL_E_NAME;
        name.parts = (lm_sql_ident *)&r->descriptor;
        name.nparts = 1;
        name.pos = r->descriptor.pos;
        if ((rv = resolve(b, &inner, &name, &tc)) != LM_OK) {
            return rv;
        }
        if (inner.cols[tc].type != LM_TYPE_TIMESTAMP ||
            (inner.cols[tc].role != LP_ROWTIME && inner.cols[tc].role != LP_WEND)) {
            return lm_sql_diag_set(b->d, r->descriptor.pos,
                                   "DESCRIPTOR(%s): windows need an event-time column (a "
                                   "TIMESTAMP with a WATERMARK in its table, or a window's end)",
                                   r->descriptor.text);
        }
        if ((rv = window_params(b, r->win, r->win_args, r->nwin_args, r->pos, fnames[r->win], p)) !=
            LM_OK) {
            return rv;
        }
        lp_window *w = make_window(b, win_type(r->win), p[0], p[1], p[2], inner.cols[tc].id);
        NOMEM(w);
        sc->n = inner.n + 2;
        NOMEM(sc->cols = al(b, sc->n * sizeof(lp_col)));
        memcpy(sc->cols, inner.cols, inner.n * sizeof(lp_col));
        const char *qual = r->alias.text != NULL ? r->alias.text : inner.cols[0].qual;
        for (int k = 0; k < 2; k++) {
            lp_col *c = &sc->cols[inner.n + k];
            *c = fresh_col(b, k == 0 ? "window_start" : "window_end", qual, LM_TYPE_TIMESTAMP,
                           false);
            c->role = k == 0 ? LP_WSTART : LP_WEND;
            c->win = w;
            c->virt = true;
        }
        return LM_OK;
    }
    }
    return lm_sql_diag_set(b->d, r->pos, "internal: unknown FROM item");
}

/* --- SELECT without aggregates ----------------------------------------- */

/* The output name of a SELECT item. */
static const char *
item_name(binder *b, const lm_sql_item *it, uint32_t i)
{
    char buf[32];
    if (it->alias.text != NULL) {
        return it->alias.text;
    }
    if (it->expr->kind == LM_SQL_E_NAME) {
        return it->expr->parts[it->expr->nparts - 1].text;
    }
    snprintf(buf, sizeof(buf), "EXPR$%" PRIu32, i);
    return sdup(b, buf);
}

/* Projects the items of q over input n (columns typed as tcols), names
 * resolved through c. */
static int
project(binder *b, const lm_sql_query *q, lp_node *in, const bctx *c, lp_node **out)
{
    uint32_t n = 0, cap = 16;
    lp_col *cols = al(b, cap * sizeof(lp_col));
    json_t **exprs = al(b, cap * sizeof(json_t *));
    int rv;

    NOMEM(cols);
    NOMEM(exprs);
    for (uint32_t i = 0; i < q->nitems; i++) {
        const lm_sql_item *it = &q->items[i];
        const lp_col *src[LM_SCHEMA_MAX_FIELDS];
        uint32_t ns = 0;
        if (it->expr->kind == LM_SQL_E_STAR) {
            if (c->hook != NULL) {
                return lm_sql_diag_set(b->d, it->expr->pos,
                                       "SELECT * cannot be used with GROUP BY or aggregates");
            }
            bool any = false;
            for (uint32_t k = 0; k < c->names->n && ns < LM_SCHEMA_MAX_FIELDS; k++) {
                const lp_col *sc = &c->names->cols[k];
                if (it->expr->nparts > 0) {
                    if (!name_eq(sc->qual, it->expr->parts[0].text, it->expr->parts[0].quoted)) {
                        continue;
                    }
                    any = true;
                }
                if (!sc->virt) {
                    src[ns++] = sc;
                }
            }
            if (it->expr->nparts > 0 && !any) {
                return lm_sql_diag_set(b->d, it->expr->pos, "unknown table or alias '%s' in %s.*",
                                       it->expr->parts[0].text, it->expr->parts[0].text);
            }
        }
        uint32_t adding = it->expr->kind == LM_SQL_E_STAR ? ns : 1;
        while (n + adding > cap) {
            lp_col *nc = al(b, 2 * cap * sizeof(lp_col));
            json_t **ne = al(b, 2 * cap * sizeof(json_t *));
            NOMEM(nc);
            NOMEM(ne);
            memcpy(nc, cols, n * sizeof(lp_col));
            memcpy(ne, exprs, n * sizeof(json_t *));
            cols = nc;
            exprs = ne;
            cap *= 2;
        }
        if (it->expr->kind == LM_SQL_E_STAR) {
            for (uint32_t k = 0; k < ns; k++) {
                cols[n] = *src[k];
                cols[n].qual = NULL;
                NOMEM(exprs[n] = lp_col_ref(b->lp, src[k]->id));
                cols[n].id = b->lp->next_col++;
                n++;
            }
            continue;
        }
        int type;
        bool nullable;
        json_t *j;
        if ((rv = bind_expr(b, c, it->expr, &j, &type, &nullable)) != LM_OK) {
            return rv;
        }
        settle_null(j, type);
        if (type == LM_TYPE_INTERVAL) {
            return lm_sql_diag_set(b->d, it->expr->pos,
                                   "an INTERVAL cannot be an output column; CAST it to BIGINT "
                                   "(microseconds)");
        }
        cols[n] = fresh_col(b, item_name(b, it, i), NULL, type, nullable);
        int64_t bare = lp_bare_col(j);
        if (bare >= 0) {
            for (uint32_t k = 0; k < c->ntcols; k++) {
                if (c->tcols[k].id == (uint32_t)bare) {
                    cols[n].role = c->tcols[k].role;
                    cols[n].win = c->tcols[k].win;
                }
            }
        }
        exprs[n++] = j;
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < i; k++) {
            if (strcasecmp(cols[i].name, cols[k].name) == 0) {
                return lm_sql_diag_set(b->d, q->items[i < q->nitems ? i : q->nitems - 1].expr->pos,
                                       "the output column name '%s' is used twice: give one an "
                                       "alias (AS ...)",
                                       cols[i].name);
            }
        }
    }
    lp_node *p = new_node(b, LP_CALC, q->pos, 1, 0);
    NOMEM(p);
    p->in[0] = in;
    p->cols = cols;
    p->ncols = n;
    p->exprs = exprs;
    p->changelog = in->changelog;
    *out = p;
    return LM_OK;
}

/* A filter over n, passing its columns through. */
static int
filter_node(binder *b, lp_node *in, json_t *pred, lm_sql_pos pos, lp_node **out)
{
    lp_node *f = new_node(b, LP_CALC, pos, 1, in->ncols);
    NOMEM(f);
    f->in[0] = in;
    memcpy(f->cols, in->cols, in->ncols * sizeof(lp_col));
    NOMEM(f->exprs = al(b, in->ncols * sizeof(json_t *)));
    for (uint32_t i = 0; i < in->ncols; i++) {
        NOMEM(f->exprs[i] = lp_col_ref(b->lp, in->cols[i].id));
    }
    f->filter = pred;
    f->changelog = in->changelog;
    *out = f;
    return LM_OK;
}

/* --- aggregation ------------------------------------------------------- */

typedef struct agg_item {
    enum lp_fn fn;
    json_t *arg; /* bound over the input, NULL for count(*) */
    uint32_t arg_col;
    uint32_t out; /* output column id */
} agg_item;

typedef struct grouping {
    const scope *in;       /* the input's names */
    lp_node *node;         /* the aggregate */
    json_t *keys[256];     /* key expressions over the input */
    uint32_t key_out[256]; /* their output columns */
    uint32_t nkeys;
    agg_item aggs[256];
    uint32_t naggs;
    lp_window *win;            /* NULL: updating aggregate */
    uint32_t wstart, wend;     /* output columns of the bounds */
    uint32_t in_start, in_end; /* input columns that are the window (virtual or given) */
    bool arroyo;
    bool in_changelog; /* the input is updated */
} grouping;

static int
agg_fn(binder *b, const lm_sql_expr *e, enum lp_fn *fn)
{
    const char *n = e->name.text;
    if (strcasecmp(n, "count") == 0) {
        *fn = e->star ? LP_COUNT_STAR : e->distinct ? LP_COUNT_DISTINCT : LP_COUNT;
        if (!e->star && e->nargs != 1) {
            return lm_sql_diag_set(b->d, e->pos, "count takes one argument or *");
        }
        return LM_OK;
    }
    if (e->star) {
        return lm_sql_diag_set(b->d, e->pos, "%s(*) is not allowed: only count(*)", n);
    }
    if (e->distinct) {
        return lm_sql_diag_set(b->d, e->pos,
                               "%s(DISTINCT ...) is not supported; count(DISTINCT) is", n);
    }
    if (e->nargs != 1) {
        return lm_sql_diag_set(b->d, e->pos, "%s takes one argument", n);
    }
    *fn = strcasecmp(n, "sum") == 0   ? LP_SUM
          : strcasecmp(n, "avg") == 0 ? LP_AVG
          : strcasecmp(n, "min") == 0 ? LP_MIN
                                      : LP_MAX;
    return LM_OK;
}

/* Collects the aggregate calls of e into g (arguments bound over the input). */
static int
collect_aggs(binder *b, grouping *g, const bctx *in, const lm_sql_expr *e)
{
    int rv;
    if (e == NULL) {
        return LM_OK;
    }
    if (!is_agg_call(e)) {
        for (uint32_t i = 0; i < e->nargs; i++) {
            if ((rv = collect_aggs(b, g, in, e->args[i])) != LM_OK) {
                return rv;
            }
        }
        return LM_OK;
    }
    enum lp_fn fn;
    json_t *arg = NULL;
    int type = LM_TYPE_INT64;
    if ((rv = agg_fn(b, e, &fn)) != LM_OK) {
        return rv;
    }
    if ((fn == LP_MIN || fn == LP_MAX) && g->in_changelog) {
        return lm_sql_diag_set(b->d, e->pos,
                               "%s over an updated input (the result of a GROUP BY without a "
                               "window, an updating join or an outer join) is not supported",
                               fn == LP_MIN ? "MIN" : "MAX");
    }
    if (fn != LP_COUNT_STAR) {
        if (has_agg(e->args[0])) {
            return lm_sql_diag_set(b->d, e->args[0]->pos, "aggregate functions cannot be nested");
        }
        bctx c = *in;
        c.clause = "an aggregate's argument";
        if ((rv = bind_expr(b, &c, e->args[0], &arg, &type, NULL)) != LM_OK) {
            return rv;
        }
        settle_null(arg, type);
        if ((fn == LP_SUM || fn == LP_AVG) && type != LM_TYPE_INT64 && type != LM_TYPE_FLOAT64) {
            return lm_sql_diag_set(b->d, e->args[0]->pos, "%s needs a number, got %s", e->name.text,
                                   lp_type_sql(type));
        }
        if ((fn == LP_MIN || fn == LP_MAX) && type != LM_TYPE_INT64 && type != LM_TYPE_FLOAT64 &&
            type != LM_TYPE_TIMESTAMP && type != LM_TYPE_BOOL) {
            return lm_sql_diag_set(b->d, e->args[0]->pos,
                                   "%s of %s is not supported (numbers, timestamps and booleans "
                                   "are)",
                                   e->name.text, lp_type_sql(type));
        }
    }
    for (uint32_t i = 0; i < g->naggs; i++) {
        if (g->aggs[i].fn == fn &&
            (arg == NULL ? g->aggs[i].arg == NULL
                         : g->aggs[i].arg != NULL && json_equal(arg, g->aggs[i].arg))) {
            return LM_OK;
        }
    }
    if (g->naggs == 256) {
        return lm_sql_diag_set(b->d, e->pos, "too many aggregates (at most 256)");
    }
    g->aggs[g->naggs++] = (agg_item){fn, arg, 0, 0};
    return LM_OK;
}

/* Binds, over the aggregate's output, expressions of a grouped query. */
static int
post_hook(binder *b, const bctx *c, const lm_sql_expr *e, json_t **out)
{
    grouping *g = c->arg;
    bctx in = {g->in, NULL, 0, "GROUP BY", NULL, NULL, true};
    json_t *j;
    int type, rv;

    if (is_agg_call(e)) {
        enum lp_fn fn;
        json_t *arg = NULL;
        if ((rv = agg_fn(b, e, &fn)) != LM_OK) {
            return rv;
        }
        in.tcols = g->node->in[0]->cols;
        in.ntcols = g->node->in[0]->ncols;
        if (fn != LP_COUNT_STAR) {
            if ((rv = bind_expr(b, &in, e->args[0], &arg, &type, NULL)) != LM_OK) {
                return rv;
            }
            settle_null(arg, type);
        }
        for (uint32_t i = 0; i < g->naggs; i++) {
            if (g->aggs[i].fn == fn &&
                (arg == NULL ? g->aggs[i].arg == NULL
                             : g->aggs[i].arg != NULL && json_equal(arg, g->aggs[i].arg))) {
                NOMEM(*out = lp_col_ref(b->lp, g->aggs[i].out));
                return 1;
            }
        }
        return lm_sql_diag_set(b->d, e->pos, "internal: aggregate not collected");
    }
    if (e->kind == LM_SQL_E_CALL && is_window_name(e->name.text) && g->arroyo) {
        return lm_sql_diag_set(b->d, e->pos,
                               "the window's bounds are window_start and window_end: select "
                               "those instead of %s(...)",
                               e->name.text);
    }
    if (has_agg(e)) {
        return 0; /* bind the parts */
    }
    if (e->kind == LM_SQL_E_NAME && e->nparts == 1 && g->win != NULL && g->arroyo) {
        if (strcasecmp(e->parts[0].text, "window_start") == 0 ||
            strcasecmp(e->parts[0].text, "window_end") == 0) {
            bool start = strcasecmp(e->parts[0].text, "window_start") == 0;
            NOMEM(*out = lp_col_ref(b->lp, start ? g->wstart : g->wend));
            return 1;
        }
    }
    /* a subexpression over the input: a key, a window bound, or a constant */
    in.tcols = g->in->cols;
    in.ntcols = g->in->n;
    if (e->kind != LM_SQL_E_NAME && e->kind != LM_SQL_E_LIT && e->kind != LM_SQL_E_CALL &&
        e->kind != LM_SQL_E_BINARY && e->kind != LM_SQL_E_UNARY && e->kind != LM_SQL_E_CASE &&
        e->kind != LM_SQL_E_CAST && e->kind != LM_SQL_E_BETWEEN && e->kind != LM_SQL_E_IN &&
        e->kind != LM_SQL_E_LIKE && e->kind != LM_SQL_E_IS_NULL) {
        return 0;
    }
    if (e->kind == LM_SQL_E_LIT) {
        return 0;
    }
    if ((rv = bind_expr(b, &in, e, &j, &type, NULL)) != LM_OK) {
        return rv;
    }
    int64_t bare = lp_bare_col(j);
    if (g->win != NULL && bare >= 0 && (uint32_t)bare == g->in_start) {
        NOMEM(*out = lp_col_ref(b->lp, g->wstart));
        return 1;
    }
    if (g->win != NULL && bare >= 0 && (uint32_t)bare == g->in_end) {
        NOMEM(*out = lp_col_ref(b->lp, g->wend));
        return 1;
    }
    for (uint32_t k = 0; k < g->nkeys; k++) {
        if (json_equal(j, g->keys[k])) {
            NOMEM(*out = lp_col_ref(b->lp, g->key_out[k]));
            return 1;
        }
    }
    if (e->kind == LM_SQL_E_NAME) {
        char want[256];
        ref_text(e, want, sizeof(want));
        return lm_sql_diag_set(b->d, e->pos,
                               "column '%s' must appear in GROUP BY or be used in an aggregate "
                               "function",
                               want);
    }
    return 0;
}

/* The event-time column of a scope, for Arroyo's window functions. */
static int
rowtime_of(binder *b, const scope *sc, lm_sql_pos pos, uint32_t *id)
{
    int found = -1;
    for (uint32_t i = 0; i < sc->n; i++) {
        if (!sc->cols[i].virt && (sc->cols[i].role == LP_ROWTIME || sc->cols[i].role == LP_WEND)) {
            if (found >= 0 && sc->cols[found].id != sc->cols[i].id) {
                return lm_sql_diag_set(b->d, pos,
                                       "the input has several event-time columns (%s, %s): use "
                                       "TABLE(TUMBLE(TABLE t, DESCRIPTOR(col), ...)) to say which",
                                       sc->cols[found].name, sc->cols[i].name);
            }
            found = (int)i;
        }
    }
    if (found < 0) {
        return lm_sql_diag_set(b->d, pos,
                               "windows need an event-time column: declare WATERMARK FOR a "
                               "TIMESTAMP column in the source table");
    }
    *id = sc->cols[found].id;
    return LM_OK;
}

static int
bind_aggregate(binder *b, const lm_sql_query *q, lp_node *in, const scope *sc, lp_node **out)
{
    grouping *g = calloc(1, sizeof(*g));
    bctx c = {sc, in->cols, in->ncols, "GROUP BY", NULL, NULL, true};
    lp_col *tcols;
    int rv = LM_OK;
    uint32_t given_start = UINT32_MAX, given_end = UINT32_MAX;
    lp_window *given = NULL;

    NOMEM(g);
    g->in = sc;
    /* the typing context sees virtual columns too */
    NOMEM(tcols = al(b, (sc->n + in->ncols) * sizeof(lp_col)));
    memcpy(tcols, in->cols, in->ncols * sizeof(lp_col));
    uint32_t nt = in->ncols;
    for (uint32_t i = 0; i < sc->n; i++) {
        if (sc->cols[i].virt) {
            tcols[nt++] = sc->cols[i];
        }
    }
    c.tcols = tcols;
    c.ntcols = nt;
    for (uint32_t i = 0; i < q->ngroup_by; i++) {
        const lm_sql_expr *e = q->group_by[i];
        json_t *j;
        int type;
        if (has_agg(e)) {
            rv = lm_sql_diag_set(b->d, e->pos, "aggregate functions are not allowed in GROUP BY");
            goto done;
        }
        if (e->kind == LM_SQL_E_CALL && is_window_name(e->name.text)) {
            int64_t p[3];
            uint32_t time = 0;
            lm_sql_window_fn fn = strcasecmp(e->name.text, "tumble") == 0 ? LM_SQL_WIN_TUMBLE
                                  : strcasecmp(e->name.text, "hop") == 0  ? LM_SQL_WIN_HOP
                                                                          : LM_SQL_WIN_SESSION;
            if (g->win != NULL) {
                rv = lm_sql_diag_set(b->d, e->pos, "a query can group by one window only");
                goto done;
            }
            if ((rv = window_params(b, fn, e->args, e->nargs, e->pos, e->name.text, p)) != LM_OK ||
                (rv = rowtime_of(b, sc, e->pos, &time)) != LM_OK) {
                goto done;
            }
            g->win = make_window(b, win_type(fn), p[0], p[1], p[2], time);
            g->arroyo = true;
            g->in_start = g->in_end = UINT32_MAX;
            continue;
        }
        if ((rv = bind_expr(b, &c, e, &j, &type, NULL)) != LM_OK) {
            goto done;
        }
        settle_null(j, type);
        int64_t bare = lp_bare_col(j);
        const lp_col *col = NULL;
        for (uint32_t k = 0; bare >= 0 && k < nt; k++) {
            if (tcols[k].id == (uint32_t)bare) {
                col = &tcols[k];
            }
        }
        if (col != NULL && col->virt) {
            if (g->win != NULL && g->win != col->win) {
                rv = lm_sql_diag_set(b->d, e->pos, "a query can group by one window only");
                goto done;
            }
            if (g->win == NULL) {
                g->win = col->win;
                g->in_start = g->in_end = UINT32_MAX;
            }
            if (col->role == LP_WSTART) {
                g->in_start = col->id;
            } else {
                g->in_end = col->id;
            }
            continue;
        }
        if (col != NULL && (col->role == LP_WSTART || col->role == LP_WEND) && col->win != NULL) {
            if (col->role == LP_WSTART) {
                given_start = col->id;
            } else {
                given_end = col->id;
            }
            if (given == NULL || given == col->win) {
                given = col->win;
            }
        }
        if (type == LM_TYPE_INTERVAL) {
            rv = lm_sql_diag_set(b->d, e->pos, "cannot group by an INTERVAL");
            goto done;
        }
        bool again = false; /* GROUP BY a, a: one key */
        for (uint32_t k = 0; k < g->nkeys && !again; k++) {
            again = json_equal(g->keys[k], j);
        }
        if (again) {
            continue;
        }
        if (g->nkeys == 256) {
            rv = lm_sql_diag_set(b->d, e->pos, "too many GROUP BY keys");
            goto done;
        }
        g->keys[g->nkeys++] = j;
    }
    if (g->win != NULL && !g->arroyo) {
        /* the bounds of a window table function: fill in the other one's id */
        for (uint32_t i = 0; i < sc->n; i++) {
            if (sc->cols[i].virt && sc->cols[i].win == g->win) {
                if (sc->cols[i].role == LP_WSTART && g->in_start == UINT32_MAX) {
                    g->in_start = sc->cols[i].id;
                } else if (sc->cols[i].role == LP_WEND && g->in_end == UINT32_MAX) {
                    g->in_end = sc->cols[i].id;
                }
            }
        }
    }
    if (g->win == NULL && given_start != UINT32_MAX && given_end != UINT32_MAX) {
        /* GROUP BY both bounds of windows computed before: a window
         * aggregate over those windows */
        lp_window *w =
            make_window(b, LP_WIN_GIVEN, given->size_us, given->slide_us, given->gap_us, given_end);
        NOMEM(w);
        w->type = LP_WIN_GIVEN;
        w->start_col = given_start;
        w->end_col = given_end;
        w->id = given->id; /* the same windows */
        g->win = w;
        g->in_start = given_start;
        g->in_end = given_end;
        uint32_t k = 0;
        for (uint32_t i = 0; i < g->nkeys; i++) {
            int64_t bare = lp_bare_col(g->keys[i]);
            if (bare != (int64_t)given_start && bare != (int64_t)given_end) {
                g->keys[k++] = g->keys[i];
            }
        }
        g->nkeys = k;
    }
    if (g->win != NULL && in->changelog) {
        rv = lm_sql_diag_set(b->d, q->pos,
                             "a window aggregate needs an append-only input, but this one is "
                             "updated (it comes from an updating aggregate or outer join)");
        goto done;
    }
    /* aggregate calls */
    g->in_changelog = in->changelog;
    bctx ac = c;
    ac.allow_virtual = false;
    for (uint32_t i = 0; i < q->nitems; i++) {
        if ((rv = collect_aggs(b, g, &ac, q->items[i].expr)) != LM_OK) {
            goto done;
        }
    }
    if ((rv = collect_aggs(b, g, &ac, q->having)) != LM_OK) {
        goto done;
    }
    /* pre-projection when a key or an argument is not a bare column */
    bool pre = false;
    for (uint32_t i = 0; i < g->nkeys; i++) {
        pre |= lp_bare_col(g->keys[i]) < 0;
    }
    for (uint32_t i = 0; i < g->naggs; i++) {
        pre |= g->aggs[i].arg != NULL && lp_bare_col(g->aggs[i].arg) < 0;
    }
    lp_node *src = in;
    uint32_t key_col[256];
    if (pre) {
        uint32_t n = in->ncols + g->nkeys + g->naggs;
        lp_node *p = new_node(b, LP_CALC, q->pos, 1, n);
        NOMEM(p);
        p->in[0] = in;
        NOMEM(p->exprs = al(b, n * sizeof(json_t *)));
        p->ncols = 0;
        for (uint32_t i = 0; i < in->ncols; i++) {
            p->cols[p->ncols] = in->cols[i];
            NOMEM(p->exprs[p->ncols++] = lp_col_ref(b->lp, in->cols[i].id));
        }
        for (uint32_t i = 0; i < g->nkeys + g->naggs; i++) {
            json_t *j = i < g->nkeys ? g->keys[i] : g->aggs[i - g->nkeys].arg;
            uint32_t *dst = i < g->nkeys ? &key_col[i] : &g->aggs[i - g->nkeys].arg_col;
            int type;
            bool nullable;
            if (j == NULL) {
                continue;
            }
            if (lp_bare_col(j) >= 0) {
                *dst = (uint32_t)lp_bare_col(j);
                continue;
            }
            if ((rv = type_of(b, j, tcols, nt, q->pos, &type, &nullable)) != LM_OK) {
                goto done;
            }
            p->cols[p->ncols] = fresh_col(b, i < g->nkeys ? "key" : "arg", NULL, type, nullable);
            *dst = p->cols[p->ncols].id;
            p->exprs[p->ncols++] = j;
        }
        p->changelog = in->changelog;
        src = p;
    } else {
        for (uint32_t i = 0; i < g->nkeys; i++) {
            key_col[i] = (uint32_t)lp_bare_col(g->keys[i]);
        }
        for (uint32_t i = 0; i < g->naggs; i++) {
            if (g->aggs[i].arg != NULL) {
                g->aggs[i].arg_col = (uint32_t)lp_bare_col(g->aggs[i].arg);
            }
        }
    }
    /* the aggregate */
    uint32_t ncols = g->nkeys + g->naggs + (g->win != NULL ? 2 : 0);
    lp_node *a = new_node(b, g->win != NULL ? LP_WAGG : LP_AGG, q->pos, 1, ncols);
    NOMEM(a);
    a->in[0] = src;
    a->win = g->win;
    a->nkeys = g->nkeys;
    NOMEM(a->keys = al(b, (g->nkeys ? g->nkeys : 1) * sizeof(uint32_t)));
    a->naggs = g->naggs;
    NOMEM(a->aggs = al(b, (g->naggs ? g->naggs : 1) * sizeof(lp_agg)));
    a->changelog = g->win == NULL;
    g->node = a;
    uint32_t oc = 0;
    for (uint32_t i = 0; i < g->nkeys; i++) {
        const lp_col *kc = lp_find_col(src, key_col[i]);
        a->keys[i] = key_col[i];
        a->cols[oc] = *kc;
        a->cols[oc].id = b->lp->next_col++;
        a->cols[oc].virt = false;
        a->cols[oc].tcol = -1;
        if (a->cols[oc].role == LP_ROWTIME) {
            a->cols[oc].role = LP_PLAIN; /* a key is not event time any more */
        }
        g->key_out[i] = a->cols[oc++].id;
    }
    for (uint32_t i = 0; i < g->naggs; i++) {
        agg_item *ag = &g->aggs[i];
        int type = LM_TYPE_INT64;
        bool nullable = true;
        if (ag->fn != LP_COUNT_STAR) {
            const lp_col *ac2 = lp_find_col(src, ag->arg_col);
            type = ac2->type;
        }
        if (ag->fn == LP_COUNT || ag->fn == LP_COUNT_STAR || ag->fn == LP_COUNT_DISTINCT) {
            type = LM_TYPE_INT64;
            nullable = false;
        } else if (ag->fn == LP_AVG) {
            type = LM_TYPE_FLOAT64;
        }
        char name[16];
        snprintf(name, sizeof(name), "agg%" PRIu32, i);
        a->cols[oc] = fresh_col(b, sdup(b, name), NULL, type, nullable);
        ag->out = a->cols[oc].id;
        a->aggs[i] = (lp_agg){ag->fn, ag->arg_col, ag->out};
        oc++;
    }
    if (g->win != NULL) {
        for (int k = 0; k < 2; k++) {
            a->cols[oc] = fresh_col(b, k == 0 ? "window_start" : "window_end", NULL,
                                    LM_TYPE_TIMESTAMP, false);
            a->cols[oc].role = k == 0 ? LP_WSTART : LP_WEND;
            a->cols[oc].win = g->win;
            if (k == 0) {
                g->wstart = a->cols[oc].id;
            } else {
                g->wend = a->cols[oc].id;
            }
            oc++;
        }
    }
    /* HAVING, then the SELECT list, over the aggregate's output */
    lp_node *top = a;
    bctx pc = {sc, a->cols, a->ncols, "HAVING", post_hook, g, false};
    if (q->having != NULL) {
        json_t *h;
        int type;
        if ((rv = bind_expr(b, &pc, q->having, &h, &type, NULL)) != LM_OK) {
            goto done;
        }
        if (type != LM_TYPE_BOOL) {
            rv = lm_sql_diag_set(b->d, q->having->pos, "HAVING needs a BOOLEAN condition, got %s",
                                 lp_type_sql(type));
            goto done;
        }
        if ((rv = filter_node(b, a, h, q->having->pos, &top)) != LM_OK) {
            goto done;
        }
    }
    pc.clause = "the SELECT list";
    if ((rv = project(b, q, top, &pc, out)) != LM_OK) {
        goto done;
    }
    /* an aggregate selected under a name takes that name (plans read better) */
    for (uint32_t i = 0; i < (*out)->ncols; i++) {
        int64_t id = lp_bare_col((*out)->exprs[i]);
        for (uint32_t k = g->nkeys; id >= 0 && k < g->nkeys + g->naggs; k++) {
            bool taken = false;
            for (uint32_t m = 0; m < a->ncols; m++) {
                taken |= strcasecmp(a->cols[m].name, (*out)->cols[i].name) == 0;
            }
            if (a->cols[k].id == (uint64_t)id && !taken) {
                a->cols[k].name = (*out)->cols[i].name;
            }
        }
    }
done:
    free(g);
    return rv;
}

/* --- queries ----------------------------------------------------------- */

static bool
query_has_agg(const lm_sql_query *q)
{
    if (q->ngroup_by > 0 || q->having != NULL) {
        return true;
    }
    for (uint32_t i = 0; i < q->nitems; i++) {
        if (has_agg(q->items[i].expr)) {
            return true;
        }
    }
    return false;
}

static int
bind_select(binder *b, const lm_sql_query *q, lp_node **out, scope *sc)
{
    lp_node *n;
    scope from;
    int rv;

    if (q->from == NULL) {
        return lm_sql_diag_set(b->d, q->pos, "a query needs FROM: Laminar reads from tables");
    }
    if ((rv = bind_ref(b, q->from, &n, &from)) != LM_OK) {
        return rv;
    }
    if (q->where != NULL) {
        json_t *w;
        int type;
        bctx c = {&from, n->cols, n->ncols, "WHERE", NULL, NULL, false};
        if ((rv = bind_expr(b, &c, q->where, &w, &type, NULL)) != LM_OK) {
            return rv;
        }
        if (type != LM_TYPE_BOOL) {
            return lm_sql_diag_set(b->d, q->where->pos, "WHERE needs a BOOLEAN condition, got %s",
                                   lp_type_sql(type));
        }
        if ((rv = filter_node(b, n, w, q->where->pos, &n)) != LM_OK) {
            return rv;
        }
    }
    if (query_has_agg(q)) {
        rv = bind_aggregate(b, q, n, &from, out);
    } else {
        bctx c = {&from, n->cols, n->ncols, "the SELECT list", NULL, NULL, false};
        rv = project(b, q, n, &c, out);
    }
    if (rv != LM_OK) {
        return rv;
    }
    sc->cols = (*out)->cols;
    sc->n = (*out)->ncols;
    return LM_OK;
}

static int
bind_query(binder *b, const lm_sql_query *q, lp_node **out, scope *sc)
{
    lp_node *parts[64] = {0};
    uint32_t n = 0;
    scope s;
    int rv;

    if (++b->depth > 200) {
        b->depth--;
        return lm_sql_diag_set(b->d, q->pos, "queries nested too deeply");
    }
    for (const lm_sql_query *p = q; p != NULL; p = p->union_all) {
        if (n == 64) {
            b->depth--;
            return lm_sql_diag_set(b->d, p->pos, "too many UNION ALL branches (at most 64)");
        }
        if ((rv = bind_select(b, p, &parts[n], &s)) != LM_OK) {
            b->depth--;
            return rv;
        }
        if (n > 0) {
            if (parts[n]->ncols != parts[0]->ncols) {
                b->depth--;
                return lm_sql_diag_set(b->d, p->pos,
                                       "UNION ALL: this query gives %" PRIu32
                                       " column(s), the first gives %" PRIu32,
                                       parts[n]->ncols, parts[0]->ncols);
            }
            for (uint32_t i = 0; i < parts[0]->ncols; i++) {
                if (parts[n]->cols[i].type != parts[0]->cols[i].type) {
                    b->depth--;
                    return lm_sql_diag_set(
                        b->d, p->pos,
                        "UNION ALL: column %" PRIu32 " (%s) is %s here but %s in the first query",
                        i + 1, parts[0]->cols[i].name, lp_type_sql(parts[n]->cols[i].type),
                        lp_type_sql(parts[0]->cols[i].type));
                }
            }
        }
        n++;
    }
    b->depth--;
    if (n == 1) {
        *out = parts[0];
        *sc = s;
        return LM_OK;
    }
    lp_node *u = new_node(b, LP_UNION, q->pos, n, parts[0]->ncols);
    NOMEM(u);
    for (uint32_t i = 0; i < n; i++) {
        u->in[i] = parts[i];
        u->changelog |= parts[i]->changelog;
    }
    for (uint32_t i = 0; i < u->ncols; i++) {
        u->cols[i] = fresh_col(b, parts[0]->cols[i].name, NULL, parts[0]->cols[i].type, false);
        for (uint32_t k = 0; k < n; k++) {
            u->cols[i].nullable |= parts[k]->cols[i].nullable;
        }
    }
    *out = u;
    sc->cols = u->cols;
    sc->n = u->ncols;
    return LM_OK;
}

/* --- statements -------------------------------------------------------- */

static int
add_sink(binder *b, lp_node *n)
{
    lp_node **s = al(b, (b->lp->nsinks + 1) * sizeof(*s));
    NOMEM(s);
    if (b->lp->nsinks) {
        memcpy(s, b->lp->sinks, b->lp->nsinks * sizeof(*s));
    }
    s[b->lp->nsinks++] = n;
    b->lp->sinks = s;
    return LM_OK;
}

static int
bind_insert(binder *b, const lm_sql_stmt *s)
{
    lm_sql_table *t = find_table(b->lp, &s->name);
    lp_node *q, *sink;
    scope sc;
    uint32_t nphys = 0;
    int rv;

    if (t == NULL) {
        if (find_view(b->lp, &s->name) != NULL) {
            return lm_sql_diag_set(b->d, s->name.pos, "cannot INSERT INTO view '%s'", s->name.text);
        }
        return unknown_relation(b, &s->name);
    }
    if (!find_connector(t->connector)->sink) {
        return lm_sql_diag_set(b->d, s->name.pos,
                               "table '%s' (connector '%s') cannot be written to", t->name,
                               t->connector);
    }
    if (t->used_as_sink) {
        return lm_sql_diag_set(b->d, s->name.pos,
                               "table '%s' is already written by an INSERT: one INSERT per sink "
                               "table",
                               t->name);
    }
    if ((rv = bind_query(b, s->query, &q, &sc)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < t->ncols; i++) {
        nphys += !t->cols[i].computed;
    }
    if (q->ncols != nphys) {
        return lm_sql_diag_set(b->d, s->query->pos,
                               "INSERT INTO %s: the query gives %" PRIu32
                               " column(s), the table has %" PRIu32,
                               t->name, q->ncols, nphys);
    }
    /* a calc that names the columns as the table does, converting where allowed */
    lp_node *p = new_node(b, LP_CALC, s->pos, 1, nphys);
    NOMEM(p);
    p->in[0] = q;
    NOMEM(p->exprs = al(b, nphys * sizeof(json_t *)));
    for (uint32_t i = 0, k = 0; i < t->ncols; i++) {
        const lm_sql_col_def *cd = &t->cols[i];
        if (cd->computed) {
            continue;
        }
        json_t *j = lp_col_ref(b->lp, q->cols[k].id);
        NOMEM(j);
        if (q->cols[k].type != cd->type) {
            if (q->cols[k].type == LM_TYPE_INT64 && cd->type == LM_TYPE_FLOAT64) {
                NOMEM(j = lp_own(b->lp, json_pack("{s:O,s:s}", "cast", j, "to", "float64")));
            } else {
                lm_sql_pos at = s->query->pos;
                bool stars = false;
                for (uint32_t m = 0; m < s->query->nitems; m++) {
                    stars |= s->query->items[m].expr->kind == LM_SQL_E_STAR;
                }
                if (!stars && k < s->query->nitems) {
                    at = s->query->items[k].expr->pos; /* the item that gives it */
                }
                return lm_sql_diag_set(b->d, at,
                                       "INSERT INTO %s: column %" PRIu32
                                       " (%s) is %s in the table but the query gives %s",
                                       t->name, k + 1, cd->name, lp_type_sql(cd->type),
                                       lp_type_sql(q->cols[k].type));
            }
        }
        p->cols[k] = fresh_col(b, cd->name, NULL, cd->type, q->cols[k].nullable);
        p->exprs[k] = j;
        k++;
    }
    p->changelog = q->changelog;
    NOMEM(sink = new_node(b, LP_SINK, s->pos, 1, 0));
    sink->in[0] = p;
    sink->table = t;
    sink->changelog = q->changelog;
    t->used_as_sink = true;
    return add_sink(b, sink);
}

/* A setting's duration: a whole number of milliseconds ('500'), or an
 * interval's text ('10s', '1 min', '2 hours'), up to 10^15 ms. */
static int
parse_duration_ms(const char *s, int64_t *ms)
{
    size_t n = strlen(s), digits = strspn(s, "0123456789");
    int64_t us;

    if (digits == n && n > 0 && n <= 15) {
        *ms = strtoll(s, NULL, 10);
        return LM_OK;
    }
    if (lm_sql_interval_parse(s, n, &us) != LM_OK || us < 0 || us / 1000 > 1000000000000000LL) {
        return LM_EINVAL;
    }
    *ms = us / 1000;
    return LM_OK;
}

static int
bind_set(binder *b, const lm_sql_stmt *s)
{
    static const char *const par[] = {"parallelism", "parallelism.default", "pipeline.parallelism",
                                      NULL};
    static const char *const cp[] = {"checkpoint.interval", "execution.checkpointing.interval",
                                     NULL};
    static const char *const ttl[] = {"state.ttl", "table.exec.state.ttl", NULL};
    const char *k = s->set_key, *v = s->set_value;
    suggest sg = {0};
    char sbuf[300];

    for (int i = 0; par[i]; i++) {
        if (strcasecmp(k, par[i]) == 0) {
            char *end;
            long p = strtol(v, &end, 10);
            if (*end != '\0' || p < 1 || p > 1024) {
                return lm_sql_diag_set(b->d, s->set_value_pos,
                                       "%s must be a whole number from 1 to 1024, got '%s'", k, v);
            }
            b->lp->parallelism = (uint32_t)p;
            return LM_OK;
        }
        suggest_try(&sg, k, par[i]);
    }
    for (int i = 0; cp[i]; i++) {
        if (strcasecmp(k, cp[i]) == 0) {
            if (parse_duration_ms(v, &b->lp->checkpoint_ms) != LM_OK) {
                return lm_sql_diag_set(b->d, s->set_value_pos,
                                       "%s must be a duration ('10s', '500ms', '1 min'), got '%s'",
                                       k, v);
            }
            return LM_OK;
        }
        suggest_try(&sg, k, cp[i]);
    }
    for (int i = 0; ttl[i]; i++) {
        if (strcasecmp(k, ttl[i]) == 0) {
            if (parse_duration_ms(v, &b->lp->state_ttl_ms) != LM_OK) {
                return lm_sql_diag_set(b->d, s->set_value_pos,
                                       "%s must be a duration ('1h', '10 min'), got '%s'", k, v);
            }
            return LM_OK;
        }
        suggest_try(&sg, k, ttl[i]);
    }
    return lm_sql_diag_set(b->d, s->set_key_pos,
                           "unknown setting '%s'%s (settings: parallelism, checkpoint.interval, "
                           "state.ttl, and Flink's names for them)",
                           k, suggest_text(&sg, sbuf, sizeof(sbuf)));
}

int
lm_sql_bind(lm_sql_tree *t, lm_sql_lp **out, lm_sql_diag *d)
{
    lm_sql_lp *lp = calloc(1, sizeof(*lp));
    binder b = {0};
    int rv = LM_OK;

    NOMEM(lp);
    lp->tree = t;
    lp->checkpoint_ms = -1;
    lp->state_ttl_ms = -1;
    lp->next_col = 1;
    b.lp = lp;
    b.t = t;
    b.d = d;
    lp->tables = al(&b, (t->nstmts + 1) * sizeof(lm_sql_table));
    lp->views = al(&b, (t->nstmts + 1) * sizeof(lm_sql_view));
    if (lp->tables == NULL || lp->views == NULL) {
        lm_sql_lp_free(lp);
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < t->nstmts && rv == LM_OK; i++) {
        const lm_sql_stmt *s = &t->stmts[i];
        switch (s->kind) {
        case LM_SQL_S_CREATE_TABLE: rv = bind_create_table(&b, s); break;
        case LM_SQL_S_CREATE_VIEW: {
            lp_node *n;
            scope sc;
            if (find_table(lp, &s->name) != NULL || find_view(lp, &s->name) != NULL) {
                rv = lm_sql_diag_set(d, s->name.pos, "a table or view named '%s' already exists",
                                     s->name.text);
                break;
            }
            lm_sql_view *v = &lp->views[lp->nviews];
            *v = (lm_sql_view){s->name.text, s->query, s->pos};
            b.views_in_use[0] = v->name;
            b.nviews_in_use = 1;
            rv = bind_query(&b, s->query, &n, &sc); /* to report its mistakes now */
            b.nviews_in_use = 0;
            if (rv == LM_OK) {
                lp->nviews++;
            }
            break;
        }
        case LM_SQL_S_INSERT: rv = bind_insert(&b, s); break;
        case LM_SQL_S_SET: rv = bind_set(&b, s); break;
        case LM_SQL_S_SELECT: {
            lp_node *q, *sink;
            scope sc;
            if ((rv = bind_query(&b, s->query, &q, &sc)) != LM_OK) {
                break;
            }
            if ((sink = new_node(&b, LP_SINK, s->pos, 1, 0)) == NULL) {
                rv = LM_ENOMEM;
                break;
            }
            sink->in[0] = q;
            sink->changelog = q->changelog;
            rv = add_sink(&b, sink);
            break;
        }
        }
    }
    if (rv == LM_OK && lp->nsinks == 0) {
        lm_sql_pos end = {1, 1};
        if (t->nstmts > 0) {
            end = t->stmts[t->nstmts - 1].pos;
        }
        rv =
            lm_sql_diag_set(d, end, "the pipeline has no INSERT INTO and no query: nothing to run");
    }
    if (rv != LM_OK) {
        lm_sql_lp_free(lp);
        return rv;
    }
    /* the scan nodes made while checking views are unused: forget their marks */
    *out = lp;
    return LM_OK;
}

void
lm_sql_lp_free(lm_sql_lp *lp)
{
    if (lp == NULL) {
        return;
    }
    for (size_t i = 0; i < lp->nowned; i++) {
        json_decref(lp->owned[i]);
    }
    free(lp->owned);
    free(lp);
}
