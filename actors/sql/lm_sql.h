/*
 * lm_sql.h: the SQL compiler: a pipeline's text in, a physical plan out.
 *
 *   text --lm_sql_parse--> syntax tree --lm_sql_bind--> logical plan
 *        --planner--> physical plan (the JSON document lm_plan.h describes)
 *
 * The physical plan is what the workers run (lm_plan_load_json takes it
 * as it is). The compiler checks everything it can before that: names,
 * types, connector options, which operators can run a construct. Every
 * error names the line and column of the mistake; lm_sql_diag_print
 * shows the line with a caret under it.
 */
#ifndef LM_SQL_H
#define LM_SQL_H

#include <stdio.h>

#include <jansson.h>

#include "lm_sql_ast.h"

typedef struct lm_sql_opts {
    const char *name;     /* the plan's name (NULL: "pipeline") */
    uint32_t parallelism; /* 0: as the pipeline SETs it, else 1 */
} lm_sql_opts;

/* Compiles the pipeline text[0..len). On LM_OK *plan is a new reference
 * to the physical plan document (the caller's), already checked by
 * loading it. Returns LM_EINVAL with d (line, column, message), or
 * LM_ENOMEM. Settings the plan format has no place for (the checkpoint
 * interval) are returned in *checkpoint_ms (-1: not set) when it is not
 * NULL. */
int lm_sql_compile(const char *text, size_t len, const lm_sql_opts *opts, json_t **plan,
                   int64_t *checkpoint_ms, lm_sql_diag *d);

/* Writes the logical plan and the physical plan of the pipeline as
 * indented trees, with columns, types, parallelism and edge kinds. Errors
 * as lm_sql_compile. */
int lm_sql_explain(const char *text, size_t len, const lm_sql_opts *opts, FILE *out,
                   lm_sql_diag *d);

/* Prints d as "origin:line:col: error: message", then the line of text it
 * points into and a caret under the column. */
void lm_sql_diag_print(const lm_sql_diag *d, const char *origin, const char *text, size_t len,
                       FILE *out);

#endif /* LM_SQL_H */
