/*
 * lm_api_v1.c: GET /api/v1/healthz and POST /api/v1/pipelines/validate.
 *
 * Validation compiles the query with the SQL compiler on the api actor's
 * loop: compiling is pure computation over a text of at most the body
 * limit, no I/O. A compile error becomes 400 invalid_sql with the line,
 * the column and the two lines lm_sql_diag_print shows (the SQL line and
 * the caret under the column), without its indentation.
 */
#include "lm_api_v1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_sql.h"

static int
healthz(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    (void)arg;
    return lm_api_reply(
        resp, 200, json_pack("{s:s, s:s}", "status", "ok", "version", lm_api_version(req->api)));
}

/* The text lm_sql_diag_print writes after its first line, without the
 * two-space indent of each line and the last newline: "SQL line\n   ^".
 * NULL when there is none (or out of memory). */
static char *
diag_context(const lm_sql_diag *d, const char *text, size_t len)
{
    char *buf = NULL, *out = NULL, *p, *q;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    if (f == NULL) {
        return NULL;
    }
    lm_sql_diag_print(d, "query", text, len, f);
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        return NULL;
    }
    if ((p = strchr(buf, '\n')) == NULL || p[1] == '\0' || (out = malloc(size + 1)) == NULL) {
        free(buf);
        return NULL;
    }
    q = out;
    for (p++; *p != '\0';) {
        char *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (n >= 2 && p[0] == ' ' && p[1] == ' ') {
            p += 2;
            n -= 2;
        }
        if (q != out) {
            *q++ = '\n';
        }
        memcpy(q, p, n);
        q += n;
        p += n + (eol != NULL);
    }
    *q = '\0';
    free(buf);
    return out;
}

int
lm_api_v1_sql_error(lm_api_resp *resp, int rv, const lm_sql_diag *d, const char *text, size_t len)
{
    char *ctx;

    if (rv != LM_EINVAL) {
        return lm_api_error(resp, 500, "internal", "compiling the query: %s", lm_strerror(rv));
    }
    lm_api_error(resp, 400, "invalid_sql", "%s", d->msg);
    if (d->pos.line > 0) {
        lm_api_error_set(resp, "line", json_integer(d->pos.line));
        lm_api_error_set(resp, "column", json_integer(d->pos.col));
        if ((ctx = diag_context(d, text, len)) != NULL) {
            lm_api_error_set(resp, "context", json_string(ctx));
            free(ctx);
        }
    }
    return LM_EINVAL;
}

static int
pipelines_validate(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    static const lm_api_field fields[] = {
        {"query", LM_API_STRING, true, 0, 0},
        {"parallelism", LM_API_INTEGER, false, 1, 1024},
        {"name", LM_API_STRING, false, 0, 0},
    };
    lm_sql_opts so = {NULL, 0};
    lm_sql_diag d;
    json_t *q, *name, *par, *plan = NULL, *body;
    char *explain = NULL;
    size_t explain_len = 0, len;
    const char *text;
    int64_t checkpoint_ms = -1;
    FILE *f;
    int rv;

    (void)arg;
    if ((rv = lm_api_check_body(req, fields, sizeof(fields) / sizeof(fields[0]), resp)) != LM_OK) {
        return rv;
    }
    q = json_object_get(req->body, "query");
    text = json_string_value(q);
    len = json_string_length(q);
    if ((name = json_object_get(req->body, "name")) != NULL) {
        if (json_string_length(name) == 0) {
            lm_api_error(resp, 400, "invalid_request", "field \"name\" must not be empty");
            lm_api_error_set(resp, "field", json_string("name"));
            return LM_EINVAL;
        }
        so.name = json_string_value(name);
    }
    if ((par = json_object_get(req->body, "parallelism")) != NULL) {
        so.parallelism = (uint32_t)json_integer_value(par);
    }
    memset(&d, 0, sizeof(d));
    if ((rv = lm_sql_compile(text, len, &so, &plan, &checkpoint_ms, &d)) != LM_OK) {
        return lm_api_v1_sql_error(resp, rv, &d, text, len);
    }
    if ((f = open_memstream(&explain, &explain_len)) == NULL) {
        json_decref(plan);
        return LM_ENOMEM;
    }
    memset(&d, 0, sizeof(d));
    rv = lm_sql_explain(text, len, &so, f, &d);
    if (fclose(f) != 0 && rv == LM_OK) {
        rv = LM_ENOMEM;
    }
    if (rv != LM_OK) {
        free(explain);
        json_decref(plan);
        return lm_api_v1_sql_error(resp, rv, &d, text, len);
    }
    body = json_pack("{s:o, s:s}", "plan", plan, "explain", explain != NULL ? explain : "");
    free(explain);
    if (body != NULL && checkpoint_ms >= 0) {
        json_object_set_new(body, "checkpoint_interval_ms", json_integer(checkpoint_ms));
    }
    /* json_pack's "o" took plan, also on failure */
    return lm_api_reply(resp, 200, body);
}

int
lm_api_v1_register(lm_api *api)
{
    int rv;

    if ((rv = lm_api_route(api, "GET", "/api/v1/healthz", healthz, NULL)) != LM_OK) {
        return rv;
    }
    return lm_api_route(api, "POST", "/api/v1/pipelines/validate", pipelines_validate, NULL);
}
