/*
 * lm_sql_lp.h: the logical plan, between the binder (lm_sql_bind.c) and
 * the planner (lm_sql_plan.c). Internal to the SQL compiler.
 *
 * The binder turns the syntax tree into a tree of logical nodes whose
 * columns are resolved and typed; the planner rewrites it (pushes
 * predicates and projections down, narrows sources, fuses calcs) and
 * writes the physical plan.
 *
 * Every column that any node produces has a number unique in the
 * pipeline; expressions are lm_expr JSON whose column references are
 * "#<number>", so rewrites never capture names. The planner gives the
 * physical operators readable names.
 *
 * Ownership: nodes, columns and strings live in the compiler's arena (the
 * syntax tree's); the JSON expressions are reference-counted jansson
 * values, released with the plan (lm_sql_lp_free).
 */
#ifndef LM_SQL_LP_H
#define LM_SQL_LP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "lm_batch.h"
#include "lm_sql_ast.h"

typedef enum lp_role {
    LP_PLAIN = 0,
    LP_ROWTIME, /* an event-time attribute: the watermark follows it */
    LP_WSTART,  /* a window's start */
    LP_WEND,    /* a window's end (also an event-time attribute) */
} lp_role;

typedef enum lp_win_type { LP_WIN_TUMBLE, LP_WIN_HOP, LP_WIN_SESSION, LP_WIN_GIVEN } lp_win_type;

typedef struct lp_window {
    lp_win_type type;
    int64_t size_us, slide_us, gap_us;
    uint32_t time_col;           /* TUMBLE/HOP/SESSION: the rows' time column */
    uint32_t start_col, end_col; /* GIVEN: the columns that carry the window */
    uint32_t id; /* windows with equal parameters over the same time have equal ids */
} lp_window;

typedef struct lp_col {
    uint32_t id;      /* unique in the pipeline */
    const char *name; /* SQL name: for resolution and output */
    const char *qual; /* qualifier (table name or alias), NULL: none */
    bool quoted;      /* the name was quoted (compare exactly) */
    lm_type type;
    bool nullable;
    lp_role role;
    lp_window *win; /* LP_WSTART, LP_WEND: which window */
    bool virt;      /* window_start/end of a window table function: exists only for GROUP BY */
    int32_t tcol;   /* SCAN: the table column it is; -1 elsewhere */
} lp_col;

typedef enum lp_kind {
    LP_SCAN,  /* a table's connector: every physical column of the table */
    LP_CALC,  /* filter and projection */
    LP_WAGG,  /* window aggregate */
    LP_AGG,   /* updating aggregate (changelog output) */
    LP_JOIN,  /* two inputs, equi-keys and a residual condition */
    LP_UNION, /* UNION ALL of n inputs */
    LP_SINK,  /* a table written by INSERT, or standard output */
} lp_kind;

enum lp_fn { LP_COUNT, LP_COUNT_STAR, LP_COUNT_DISTINCT, LP_SUM, LP_AVG, LP_MIN, LP_MAX };

typedef struct lp_agg {
    enum lp_fn fn;
    uint32_t arg; /* input column (not for count(*)) */
    uint32_t out; /* output column id */
} lp_agg;

struct lm_sql_table;

typedef struct lp_node lp_node;

struct lp_node {
    lp_kind kind;
    lm_sql_pos pos;
    lp_node **in; /* inputs */
    uint32_t nin;
    lp_col *cols; /* output columns */
    uint32_t ncols;
    bool changelog; /* the output carries retractions */
    /* SCAN, SINK */
    struct lm_sql_table *table;
    /* CALC: filter (NULL: none) and one expression per output column */
    json_t *filter;
    json_t **exprs;
    /* WATERMARK */
    uint32_t wm_col;
    int64_t delay_us;
    /* WAGG, AGG: output = keys, then aggregates, then (WAGG) start, end */
    lp_window *win;
    uint32_t *keys; /* input column ids */
    uint32_t nkeys;
    lp_agg *aggs;
    uint32_t naggs;
    /* JOIN: output = left columns then right columns */
    bool left_outer;
    json_t *cond; /* NULL: none (cross) */
    /* planner: how a JOIN runs */
    int jkind;               /* LP_J_UPDATING, LP_J_WINDOW, LP_J_INTERVAL */
    uint32_t *lkeys, *rkeys; /* equi-join columns, pairwise */
    uint32_t njkeys;
    json_t *residual;           /* the rest of the condition, or NULL */
    bool swap;                  /* the engine's left input is this node's right one */
    uint32_t ltime, rtime;      /* interval: the time columns (engine's left, right) */
    int64_t lower_us, upper_us; /* interval: bounds relative to the left time */
    int64_t upper_col;          /* interval: a left column as the upper bound, -1: upper_us */
    uint32_t lwend, rwend;      /* window: each side's window end */
    uint32_t kinds;             /* SCAN (nexmark): event kinds this scan wants (bit k), 0: all */
    int phys;                   /* planner scratch */
};

enum { LP_J_UPDATING, LP_J_WINDOW, LP_J_INTERVAL };

/* A connector table (CREATE TABLE). */
typedef struct lm_sql_col_def {
    const char *name; /* flattened: ROW fields as "row.field" */
    lm_type type;
    bool nullable;
    bool computed;
    const lm_sql_expr *expr; /* computed: its expression */
    const char *source_name; /* the connector's name for it, when not name (planner) */
} lm_sql_col_def;

typedef struct lm_sql_table {
    const char *name;
    lm_sql_pos pos;
    const char *connector;
    const lm_sql_option *options;
    uint32_t noptions;
    lm_sql_col_def *cols;
    uint32_t ncols;
    int32_t wm_col;   /* column index of the watermark, -1: none */
    int64_t wm_delay; /* microseconds */
    bool used_as_source, used_as_sink;
    uint32_t *col_ids; /* the table's own column ids (computed expressions use them) */
    json_t **computed; /* computed columns' expressions over col_ids, else NULL */
    int phys;          /* the physical source operator, -1: none yet (sources are shared) */
    uint32_t kinds;    /* nexmark: event kinds wanted by some scan (bit k) */
    bool *col_used;    /* physical columns some scan needs */
} lm_sql_table;

typedef struct lm_sql_view {
    const char *name;
    const lm_sql_query *query;
    lm_sql_pos pos;
} lm_sql_view;

/* A bound pipeline: the sinks, each the root of its tree. */
typedef struct lm_sql_lp {
    lm_sql_tree *tree; /* the arena */
    lm_sql_table *tables;
    uint32_t ntables;
    lm_sql_view *views;
    uint32_t nviews;
    lp_node **sinks;
    uint32_t nsinks;
    uint32_t next_col; /* column ids */
    uint32_t next_win;
    /* SET */
    uint32_t parallelism;  /* 0: not set */
    int64_t checkpoint_ms; /* -1: not set */
    int64_t state_ttl_ms;  /* -1: not set */
    bool event_time;       /* planner: some operator works on event time (watermarks needed) */
    json_t **owned;        /* every JSON expression made, released with the plan */
    size_t nowned, owned_cap;
} lm_sql_lp;

/* Returns LM_ENOMEM from the calling function when p is NULL. */
#define NOMEM(p)                                                                                   \
    do {                                                                                           \
        if ((p) == NULL) {                                                                         \
            return LM_ENOMEM;                                                                      \
        }                                                                                          \
    } while (0)

/* Binds every statement of t. On LM_OK *out is the caller's (free with
 * lm_sql_lp_free; t must outlive it). LM_EINVAL with d, LM_ENOMEM. */
int lm_sql_bind(lm_sql_tree *t, lm_sql_lp **out, lm_sql_diag *d);

void lm_sql_lp_free(lm_sql_lp *lp);

/* Rewrites the bound plan and writes the physical plan document (a new
 * reference). parallelism: the operators' default. LM_EINVAL with d when
 * a construct has no operator to run it. */
int lm_sql_plan(lm_sql_lp *lp, uint32_t parallelism, const char *name, json_t **out,
                lm_sql_diag *d);

/* Prints the logical plan (after the rewrites) as an indented tree. */
void lm_sql_lp_print(const lm_sql_lp *lp, FILE *out);

/* JSON expression helpers (the result is owned by lp). */
json_t *lp_col_ref(lm_sql_lp *lp, uint32_t id);
json_t *lp_own(lm_sql_lp *lp, json_t *j);

/* The column id j refers to when it is a bare column reference (as
 * lp_col_ref makes), or -1. */
int64_t lp_bare_col(const json_t *j);

/* The column of n with id, or NULL. */
const lp_col *lp_find_col(const lp_node *n, uint32_t id);

/* Type names for messages ("BIGINT", "VARCHAR", ...). */
const char *lp_type_sql(int type);

#endif /* LM_SQL_LP_H */
