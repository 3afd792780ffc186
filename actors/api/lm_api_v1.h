/*
 * lm_api_v1.h: the endpoints of the REST API's version 1 (/api/v1) that
 * need nothing but the SQL compiler; the pipeline and job endpoints,
 * which talk to other actors, are added by their own modules.
 *
 *   GET  /api/v1/healthz
 *        200 {"status": "ok", "version": "0.1.0"}
 *   POST /api/v1/pipelines/validate
 *        body {"query": string (required), "parallelism": 1..1024,
 *              "name": non-empty string}
 *        200 {"plan": <the physical plan document (lm_plan.h)>,
 *             "explain": "<lm_sql_explain's text>",
 *             "checkpoint_interval_ms": N (only when the query SETs it)}
 *        400 {"error": {"code": "invalid_sql", "message": "...",
 *             "line": L, "column": C,
 *             "context": "<the line of SQL>\n<spaces and a caret>"}}
 *            (line, column and context only when the error has a place)
 *        400 invalid_request / malformed_json for a bad body (lm_api.h)
 */
#ifndef LM_API_V1_H
#define LM_API_V1_H

#include "lm_api.h"
#include "lm_sql.h"

/* Adds the routes above to api. Returns LM_OK or what lm_api_route
 * returns (LM_EEXIST when they are there already, LM_ENOMEM). */
int lm_api_v1_register(lm_api *api);

/* Makes resp the answer to a failed lm_sql_compile or lm_sql_explain of
 * text: for rv == LM_EINVAL, 400 invalid_sql with d's message and, when d
 * has a place, "line", "column" and "context" as above; else 500
 * internal. Returns the LM_E* code of the status. For every endpoint that
 * compiles SQL. */
int lm_api_v1_sql_error(lm_api_resp *resp, int rv, const lm_sql_diag *d, const char *text,
                        size_t len);

#endif /* LM_API_V1_H */
