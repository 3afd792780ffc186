/*
 * check_api.c: the REST API server (actors/api) exercised for real: each
 * test starts a runtime and the api on 127.0.0.1 with an ephemeral port,
 * and talks to it with lm_test's small blocking HTTP/1.1 client (plain
 * sockets, one request per connection, Connection: close). Every test
 * that sends something bad checks afterwards that the server still
 * answers healthz.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lm_api.h"
#include "lm_api_v1.h"
#include "lm_log.h"
#include "lm_test.h"

static lm_rt *rt;
static lm_api *api;
static int port;
static bool half_close; /* the client shuts its side down after sending */

static void parks_reset(void);

static void
setup(void)
{
    lm_rt_opts o = {0, 2, 0, "api-test"};
    lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, false, NULL};
    lm_api_opts ao = LM_API_OPTS_DEFAULTS;
    lm_error err;

    lm_log_configure(&lo, NULL);
    half_close = true;
    parks_reset();
    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    ao.bind = "127.0.0.1";
    ao.version = "9.9.9-test";
    ck_assert_msg(lm_api_start(rt, &ao, &api, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(lm_api_v1_register(api), LM_OK);
    port = lm_api_port(api);
    ck_assert_int_gt(port, 0);
}

static void
teardown(void)
{
    lm_api_stop(api);
    api = NULL;
    lm_rt_free(rt, 5000);
    rt = NULL;
    lm_msg_pool_trim();
}

/* --- the client ----------------------------------------------------------
 * lm_test's HTTP client, aimed at this test's server; half_close as the
 * test set it. */

static int
connect_api(void)
{
    return lm_test_http_connect("127.0.0.1", port);
}

static int
http_raw(const char *data, size_t len, lm_test_http *out)
{
    return lm_test_http_raw("127.0.0.1", port, half_close, data, len, out);
}

/* One request: method, path, and a body (NULL: none, no Content-Length). */
static int
http_do(const char *method, const char *path, const char *body, size_t len, lm_test_http *out)
{
    return lm_test_http_do("127.0.0.1", port, half_close, method, path, body, len, out);
}

static int
http_json(const char *method, const char *path, const char *body, lm_test_http *out)
{
    return http_do(method, path, body, body != NULL ? strlen(body) : 0, out);
}

static const char *
err_field(const lm_test_http *r, const char *key)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), key));
}

static json_int_t
err_int(const lm_test_http *r, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(r->json, "error"), key));
}

/* Asserts an error response: status, JSON content type, error code, and a
 * message containing want (when not NULL). */
static void
assert_error(const lm_test_http *r, int status, const char *code, const char *want, int line)
{
    const char *msg;

    ck_assert_msg(r->status == status, "line %d: status %d, want %d; body %s", line, r->status,
                  status, r->body != NULL ? r->body : "(none)");
    ck_assert_msg(lm_test_http_header(r, "Content-Type") != NULL &&
                      strcmp(lm_test_http_header(r, "Content-Type"), "application/json") == 0,
                  "line %d: not JSON: %s", line, r->headers);
    ck_assert_msg(r->json != NULL, "line %d: body is not JSON: %s", line, r->body);
    ck_assert_msg(err_field(r, "code") != NULL && strcmp(err_field(r, "code"), code) == 0,
                  "line %d: code %s, want %s", line, err_field(r, "code"), code);
    msg = err_field(r, "message");
    ck_assert_msg(msg != NULL, "line %d: no message", line);
    ck_assert_msg(want == NULL || strstr(msg, want) != NULL, "line %d: message '%s' lacks '%s'",
                  line, msg, want != NULL ? want : "");
}

/* Asserts an error response: status, JSON content type, error code, and a
 * message containing want (when not NULL). */
#define ASSERT_ERROR(r, st, code, want) assert_error((r), (st), (code), (want), __LINE__)

/* The server still answers. */
static void
assert_alive(void)
{
    lm_test_http r;

    ck_assert_int_eq(http_json("GET", "/api/v1/healthz", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    lm_test_http_free(&r);
}

/* {"query": <the file's text>, ...extra members} as text. */
static char *
validate_body(const char *sql, const char *extra)
{
    json_t *b = json_pack("{s:s}", "query", sql);
    char *text;

    if (extra != NULL) {
        json_error_t e;
        json_t *x = json_loads(extra, 0, &e);
        ck_assert_ptr_nonnull(x);
        json_object_update(b, x);
        json_decref(x);
    }
    text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return text;
}

/* --- tests --------------------------------------------------------------- */

START_TEST(test_api_healthz)
{
    lm_test_http r;

    ck_assert_int_eq(http_json("GET", "/api/v1/healthz", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(lm_test_http_header(&r, "Content-Type"), "application/json");
    ck_assert_ptr_nonnull(r.json);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "version")), "9.9.9-test");
    lm_test_http_free(&r);
    /* a trailing slash is the same path */
    ck_assert_int_eq(http_json("GET", "/api/v1/healthz/", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    lm_test_http_free(&r);
}
END_TEST

START_TEST(test_api_validate_plan)
{
    char path[1024];
    char *sql, *body;
    lm_test_http r;
    json_t *ops, *op;
    size_t i;
    bool window_join = false;

    snprintf(path, sizeof(path), "%s/scripts/nexmark/sql/q5.sql", lm_test_root());
    sql = lm_test_read_file(path, NULL);
    ck_assert_msg(sql != NULL, "cannot read %s", path);
    body = validate_body(sql, "{\"parallelism\": 2, \"name\": \"q5\"}");
    ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate", body, &r), 0);
    ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
    ck_assert_str_eq(lm_test_http_header(&r, "Content-Type"), "application/json");
    ck_assert_ptr_nonnull(r.json);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "plan"), "name")),
                     "q5");
    ops = json_object_get(json_object_get(r.json, "plan"), "operators");
    ck_assert(json_is_array(ops));
    json_array_foreach(ops, i, op)
    {
        const char *kind = json_string_value(json_object_get(op, "kind"));
        if (kind != NULL && strcmp(kind, "window_join") == 0) {
            window_join = true;
        }
    }
    ck_assert_msg(window_join, "no window_join operator in %s", r.body);
    ck_assert(json_is_string(json_object_get(r.json, "explain")));
    ck_assert_msg(strstr(json_string_value(json_object_get(r.json, "explain")), "window_join") !=
                      NULL,
                  "explain: %s", json_string_value(json_object_get(r.json, "explain")));
    lm_test_http_free(&r);
    free(body);
    free(sql);
}
END_TEST

START_TEST(test_api_validate_invalid_sql)
{
    /* "FORM" reads as an alias of 1: the mistake is "nowhere", line 3, column 15 */
    const char *sql = "CREATE TABLE sink (a BIGINT) WITH ('connector' = 'blackhole');\n"
                      "INSERT INTO sink\n"
                      "SELECT 1 FORM nowhere;\n";
    char *body = validate_body(sql, NULL);
    const char *ctx;
    lm_test_http r;

    ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate", body, &r), 0);
    ASSERT_ERROR(&r, 400, "invalid_sql", NULL);
    ck_assert_int_eq(err_int(&r, "line"), 3);
    ck_assert_int_eq(err_int(&r, "column"), 15);
    ctx = err_field(&r, "context");
    ck_assert_ptr_nonnull(ctx);
    ck_assert_str_eq(ctx, "SELECT 1 FORM nowhere;\n              ^");
    lm_test_http_free(&r);
    free(body);

    /* an unknown table: a binder error, also with its place */
    body = validate_body("CREATE TABLE t (a BIGINT) WITH ('connector' = 'blackhole');\n"
                         "INSERT INTO nothing SELECT a FROM t;",
                         NULL);
    ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate", body, &r), 0);
    ASSERT_ERROR(&r, 400, "invalid_sql", "nothing");
    ck_assert_int_eq(err_int(&r, "line"), 2);
    ck_assert_int_eq(err_int(&r, "column"), 13);
    lm_test_http_free(&r);
    free(body);
    assert_alive();
}
END_TEST

START_TEST(test_api_malformed_json)
{
    lm_test_http r;

    ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate",
                               "{\"query\": \"SELECT 1\",\n  \"parallelism\": }", &r),
                     0);
    ASSERT_ERROR(&r, 400, "malformed_json", "line 2");
    ck_assert_int_eq(err_int(&r, "line"), 2);
    ck_assert_int_eq(err_int(&r, "column"), 18);
    lm_test_http_free(&r);
    assert_alive();

    /* trailing garbage, duplicate keys */
    ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate", "{\"query\": \"x\"} x", &r),
                     0);
    ASSERT_ERROR(&r, 400, "malformed_json", "line 1");
    lm_test_http_free(&r);
    ck_assert_int_eq(
        http_json("POST", "/api/v1/pipelines/validate", "{\"query\": \"x\", \"query\": \"y\"}", &r),
        0);
    ASSERT_ERROR(&r, 400, "malformed_json", "duplicate");
    lm_test_http_free(&r);
    assert_alive();
}
END_TEST

START_TEST(test_api_bad_bodies)
{
    static const struct {
        const char *body;
        const char *field; /* NULL: none named */
        const char *want;  /* in the message */
    } cases[] = {
        {"[\"SELECT 1\"]", NULL, "must be a JSON object, not an array"},
        {"\"SELECT 1\"", NULL, "must be a JSON object, not a string"},
        {"{\"query\": 5}", "query", "field \"query\" must be a string, not an integer"},
        {"{\"query\": null}", "query", "must be a string, not null"},
        {"{\"query\": \"x\", \"paralelism\": 2}", "paralelism", "unknown field \"paralelism\""},
        {"{\"name\": \"a\"}", "query", "missing required field \"query\""},
        {"{}", "query", "missing required field \"query\""},
        {"{\"query\": \"x\", \"parallelism\": 0}", "parallelism", "between 1 and 1024, not 0"},
        {"{\"query\": \"x\", \"parallelism\": 1025}", "parallelism", "between 1 and 1024"},
        {"{\"query\": \"x\", \"parallelism\": -3}", "parallelism", "between 1 and 1024"},
        {"{\"query\": \"x\", \"parallelism\": 2.5}", "parallelism", "must be an integer"},
        {"{\"query\": \"x\", \"parallelism\": \"2\"}", "parallelism", "must be an integer"},
        {"{\"query\": \"x\", \"name\": 7}", "name", "must be a string"},
        {"{\"query\": \"x\", \"name\": \"\"}", "name", "must not be empty"},
        {"", NULL, "a JSON object body is required"},
        {"  \r\n", NULL, "a JSON object body is required"},
    };
    lm_test_http r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate", cases[i].body, &r), 0);
        ASSERT_ERROR(&r, 400, "invalid_request", cases[i].want);
        if (cases[i].field != NULL) {
            ck_assert_str_eq(err_field(&r, "field"), cases[i].field);
        }
        lm_test_http_free(&r);
        assert_alive();
    }
    /* no Content-Length at all: an empty body */
    ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate", NULL, &r), 0);
    ASSERT_ERROR(&r, 400, "invalid_request", "body is required");
    lm_test_http_free(&r);
    assert_alive();
}
END_TEST

START_TEST(test_api_body_too_large)
{
    size_t len = LM_API_DEFAULT_MAX_BODY + 1;
    char *big = malloc(3 * LM_API_DEFAULT_MAX_BODY);
    lm_test_http r;

    /* a valid JSON document one byte over the limit */
    memset(big, ' ', len);
    memcpy(big, "{\"query\": \"x\"}", 14);
    ck_assert_int_eq(http_do("POST", "/api/v1/pipelines/validate", big, len, &r), 0);
    ASSERT_ERROR(&r, 413, "too_large", "limit is 1048576");
    lm_test_http_free(&r);
    assert_alive();

    /* exactly at the limit: accepted and checked */
    ck_assert_int_eq(http_do("POST", "/api/v1/pipelines/validate", big, len - 1, &r), 0);
    ck_assert_int_eq(r.status, 400); /* "x" is no pipeline */
    ck_assert_str_eq(err_field(&r, "code"), "invalid_sql");
    lm_test_http_free(&r);

    /* far over: evhttp's own backstop still says 413 */
    memset(big, ' ', 3 * LM_API_DEFAULT_MAX_BODY);
    ck_assert_int_eq(
        http_do("POST", "/api/v1/pipelines/validate", big, 3 * LM_API_DEFAULT_MAX_BODY, &r), 0);
    ck_assert_int_eq(r.status, 413);
    lm_test_http_free(&r);
    free(big);
    assert_alive();
}
END_TEST

START_TEST(test_api_unknown_route)
{
    lm_test_http r;

    ck_assert_int_eq(http_json("GET", "/api/v1/nope", NULL, &r), 0);
    ASSERT_ERROR(&r, 404, "not_found", "/api/v1/nope");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("GET", "/", NULL, &r), 0);
    ASSERT_ERROR(&r, 404, "not_found", NULL);
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("POST", "/api/v1/pipelines/validate/more", "{}", &r), 0);
    ASSERT_ERROR(&r, 404, "not_found", NULL);
    lm_test_http_free(&r);
    assert_alive();
}
END_TEST

START_TEST(test_api_wrong_method)
{
    lm_test_http r;

    ck_assert_int_eq(http_json("GET", "/api/v1/pipelines/validate", NULL, &r), 0);
    ASSERT_ERROR(&r, 405, "method_not_allowed", NULL);
    ck_assert_str_eq(lm_test_http_header(&r, "Allow"), "POST");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("DELETE", "/api/v1/healthz", NULL, &r), 0);
    ASSERT_ERROR(&r, 405, "method_not_allowed", NULL);
    ck_assert_str_eq(lm_test_http_header(&r, "Allow"), "GET");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("PATCH", "/api/v1/healthz", "{}", &r), 0);
    ASSERT_ERROR(&r, 405, "method_not_allowed", NULL);
    lm_test_http_free(&r);
    assert_alive();
}
END_TEST

START_TEST(test_api_not_http)
{
    static const char junk[] = "\x01\x02 this is not HTTP\r\n\r\n";
    lm_test_http r;

    http_raw(junk, sizeof(junk) - 1, &r);
    lm_test_http_free(&r);
    http_raw("GET /api/v1/healthz HTTP/1.1\r\nHost", 34, &r); /* cut short */
    lm_test_http_free(&r);
    assert_alive();
}
END_TEST

/* --- routes of the test's own ---------------------------------------------- */

static int
echo_handler(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    json_t *params = json_object();

    for (int i = 0; i < req->nparams; i++) {
        json_object_set_new(params, req->params[i].name, json_string(req->params[i].value));
    }
    return lm_api_reply(resp, 201,
                        json_pack("{s:s, s:o, s:s?, s:s?, s:O?, s:s}", "method", req->method,
                                  "params", params, "q", lm_api_query(req, "q"), "id",
                                  lm_api_param(req, "id"), "body", req->body, "arg",
                                  (const char *)arg));
}

static int
fail_handler(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    const char *how = lm_api_param(req, "how");

    (void)arg;
    if (strcmp(how, "state") == 0) {
        return LM_ESTATE;
    }
    if (strcmp(how, "missing") == 0) {
        return LM_ENOTFOUND;
    }
    if (strcmp(how, "conflict") == 0) {
        int rv = lm_api_error(resp, 409, "wrong_state", "job %s is stopped", "7");
        ck_assert_int_eq(rv, LM_ESTATE);
        return rv;
    }
    if (strcmp(how, "bytes") == 0) {
        /* valid characters stay, a stray byte becomes '?' */
        return lm_api_error(resp, 400, "bad_name", "name %s is bad", "caf\xc3\xa9 \xff");
    }
    if (strcmp(how, "nomem") == 0) {
        return LM_ENOMEM;
    }
    return LM_OK; /* nothing set: 200 {} */
}

START_TEST(test_api_router)
{
    lm_test_http r;

    ck_assert_int_eq(
        lm_api_route(api, "GET", "/api/v1/things/{id}/parts/{part}", echo_handler, "parts"), LM_OK);
    ck_assert_int_eq(lm_api_route(api, "PATCH", "/api/v1/things/{id}", echo_handler, "patch"),
                     LM_OK);
    ck_assert_int_eq(lm_api_route(api, "GET", "/api/v1/things/special", echo_handler, "special"),
                     LM_OK);
    ck_assert_int_eq(lm_api_route(api, "GET", "/api/v1/things/{x}", echo_handler, "get"), LM_OK);
    ck_assert_int_eq(lm_api_route(api, "POST", "/api/v1/fail/{how}", fail_handler, NULL), LM_OK);
    /* the same shape twice, bad patterns */
    ck_assert_int_eq(lm_api_route(api, "GET", "/api/v1/things/{y}", echo_handler, NULL), LM_EEXIST);
    ck_assert_int_eq(lm_api_route(api, "GET", "api/v1", echo_handler, NULL), LM_EINVAL);
    ck_assert_int_eq(lm_api_route(api, "GET", "/api/{}", echo_handler, NULL), LM_EINVAL);
    ck_assert_int_eq(lm_api_route(api, "GET", "/api/{a", echo_handler, NULL), LM_EINVAL);
    ck_assert_int_eq(lm_api_route(api, "GET", "/api//x", echo_handler, NULL), LM_EINVAL);
    ck_assert_int_eq(lm_api_route(api, "GET", "/api/x{a}", echo_handler, NULL), LM_EINVAL);
    ck_assert_int_eq(lm_api_route(api, "", "/api/x", echo_handler, NULL), LM_EINVAL);
    ck_assert_int_eq(lm_api_route(api, "GET", "/api/x", NULL, NULL), LM_EINVAL);

    /* parameters, percent-decoded, and the query */
    ck_assert_int_eq(
        http_json("GET", "/api/v1/things/a%20b/parts/p%2F1?q=hello%20there&z=1", NULL, &r), 0);
    ck_assert_msg(r.status == 201, "%d %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "arg")), "parts");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "id")), "a b");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "params"), "part")),
                     "p/1");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "q")), "hello there");
    ck_assert(json_is_null(json_object_get(r.json, "body")));
    lm_test_http_free(&r);

    /* the literal route wins over the parameter */
    ck_assert_int_eq(http_json("GET", "/api/v1/things/special", NULL, &r), 0);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "arg")), "special");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("GET", "/api/v1/things/other", NULL, &r), 0);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "arg")), "get");
    lm_test_http_free(&r);

    /* a body reaches the handler parsed */
    ck_assert_int_eq(http_json("PATCH", "/api/v1/things/42", "{\"stop\": \"graceful\"}", &r), 0);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "method")), "PATCH");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "id")), "42");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "body"), "stop")),
                     "graceful");
    lm_test_http_free(&r);

    /* methods of every route on the path in Allow */
    ck_assert_int_eq(http_json("DELETE", "/api/v1/things/42", NULL, &r), 0);
    ASSERT_ERROR(&r, 405, "method_not_allowed", NULL);
    ck_assert_str_eq(lm_test_http_header(&r, "Allow"), "PATCH, GET");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("GET", "/api/v1/things/42/parts", NULL, &r), 0);
    ASSERT_ERROR(&r, 404, "not_found", NULL);
    lm_test_http_free(&r);

    /* handler errors */
    ck_assert_int_eq(http_json("POST", "/api/v1/fail/state", NULL, &r), 0);
    ASSERT_ERROR(&r, 409, "conflict", NULL);
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("POST", "/api/v1/fail/missing", NULL, &r), 0);
    ASSERT_ERROR(&r, 404, "not_found", NULL);
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("POST", "/api/v1/fail/conflict", NULL, &r), 0);
    ASSERT_ERROR(&r, 409, "wrong_state", "job 7 is stopped");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("POST", "/api/v1/fail/bytes", NULL, &r), 0);
    ASSERT_ERROR(&r, 400, "bad_name", "name caf\xc3\xa9 ? is bad");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("POST", "/api/v1/fail/nomem", NULL, &r), 0);
    ASSERT_ERROR(&r, 500, "internal", NULL);
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("POST", "/api/v1/fail/fine", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{}\n");
    lm_test_http_free(&r);
    /* a path with %00 in it */
    ck_assert_int_eq(http_json("GET", "/api/v1/things/a%00b", NULL, &r), 0);
    ASSERT_ERROR(&r, 400, "invalid_request", "path");
    lm_test_http_free(&r);
    assert_alive();
}
END_TEST

/* --- many clients at once ---------------------------------------------------- */

#define CLIENTS 20

typedef struct client {
    int ok;     /* answers as expected */
    char *body; /* the validate request */
} client;

static void *
client_main(void *arg)
{
    client *c = arg;
    lm_test_http r;

    for (int i = 0; i < 5; i++) {
        if (http_json("GET", "/api/v1/healthz", NULL, &r) == 0 && r.status == 200) {
            c->ok++;
        }
        lm_test_http_free(&r);
        if (http_json("POST", "/api/v1/pipelines/validate", c->body, &r) == 0 && r.status == 200 &&
            json_is_object(json_object_get(r.json, "plan"))) {
            c->ok++;
        }
        lm_test_http_free(&r);
    }
    return NULL;
}

START_TEST(test_api_concurrent_clients)
{
    pthread_t th[CLIENTS];
    client cl[CLIENTS];
    char path[1024], *sql;

    snprintf(path, sizeof(path), "%s/scripts/nexmark/sql/q5.sql", lm_test_root());
    sql = lm_test_read_file(path, NULL);
    ck_assert_ptr_nonnull(sql);
    for (int i = 0; i < CLIENTS; i++) {
        cl[i].ok = 0;
        cl[i].body = validate_body(sql, NULL);
        ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < CLIENTS; i++) {
        ck_assert_msg(cl[i].ok == 10, "client %d: %d of 10 answers right", i, cl[i].ok);
        free(cl[i].body);
    }
    free(sql);
}
END_TEST

/* --- deferred answers ------------------------------------------------------ */

/* Requests parked by park_handler, for the test to complete. */
typedef struct parked {
    lm_api_pending *p;
    char id[64];
} parked;

#define MAX_PARKS 128

static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;
static parked parks[MAX_PARKS];
static int nparks;

static void
parks_reset(void)
{
    pthread_mutex_lock(&park_mu);
    nparks = 0;
    pthread_mutex_unlock(&park_mu);
}

/* Defers and parks the request, answered later by the test. */
static int
park_handler(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    lm_api_pending *p;
    int rv;

    (void)resp;
    (void)arg;
    if ((rv = lm_api_defer(req, &p)) != LM_OK) {
        return rv;
    }
    ck_assert_int_eq(lm_api_defer(req, &p), LM_EINVAL); /* once only */
    pthread_mutex_lock(&park_mu);
    ck_assert_int_lt(nparks, MAX_PARKS);
    parks[nparks].p = p;
    snprintf(parks[nparks].id, sizeof(parks[nparks].id), "%s", lm_api_param(req, "id"));
    nparks++;
    pthread_cond_broadcast(&park_cv);
    pthread_mutex_unlock(&park_mu);
    return LM_OK;
}

/* Defers and completes at once, from inside the handler. */
static int
now_handler(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    lm_api_pending *p;

    (void)arg;
    lm_api_reply(resp, 500, json_object()); /* ignored once deferred */
    ck_assert_int_eq(lm_api_defer(req, &p), LM_OK);
    ck_assert_int_eq(lm_api_complete(p, 202, json_pack("{s:s}", "id", lm_api_param(req, "id"))),
                     LM_OK);
    return LM_EFAILED; /* ignored too */
}

/* Waits until n requests are parked; returns how many are. */
static int
parks_wait(int n)
{
    struct timespec deadline;
    int have;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10 * lm_test_slowdown();
    pthread_mutex_lock(&park_mu);
    while (nparks < n && pthread_cond_timedwait(&park_cv, &park_mu, &deadline) == 0) {
    }
    have = nparks;
    pthread_mutex_unlock(&park_mu);
    return have;
}

/* Waits until the api holds no deferred request. */
static void
assert_no_pending(void)
{
    for (int i = 0; i < 5000 * lm_test_slowdown() && lm_api_pending_count(api) > 0; i++) {
        usleep(1000);
    }
    ck_assert_uint_eq(lm_api_pending_count(api), 0);
}

static void
add_defer_routes(void)
{
    ck_assert_int_eq(lm_api_route(api, "GET", "/t/park/{id}", park_handler, NULL), LM_OK);
    ck_assert_int_eq(lm_api_route(api, "POST", "/t/now/{id}", now_handler, NULL), LM_OK);
}

static void *
complete_later(void *arg)
{
    (void)arg;
    if (parks_wait(1) < 1) {
        return NULL;
    }
    usleep(50000);
    pthread_mutex_lock(&park_mu);
    parked pk = parks[0];
    pthread_mutex_unlock(&park_mu);
    lm_api_complete(pk.p, 200, json_pack("{s:s, s:b}", "id", pk.id, "late", 1));
    return NULL;
}

START_TEST(test_api_defer_later)
{
    pthread_t th;
    lm_test_http r;

    add_defer_routes();
    half_close = false;
    ck_assert_int_eq(pthread_create(&th, NULL, complete_later, NULL), 0);
    ck_assert_int_eq(http_json("GET", "/t/park/abc", NULL, &r), 0);
    pthread_join(th, NULL);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert_str_eq(lm_test_http_header(&r, "Content-Type"), "application/json");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "id")), "abc");
    ck_assert(json_is_true(json_object_get(r.json, "late")));
    lm_test_http_free(&r);
    assert_no_pending();

    /* completed inside the handler; a deferred error */
    ck_assert_int_eq(http_json("POST", "/t/now/7", "{}", &r), 0);
    ck_assert_msg(r.status == 202, "%d %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "id")), "7");
    lm_test_http_free(&r);
    ck_assert_int_eq(lm_api_complete(NULL, 200, json_object()), LM_EINVAL);
    assert_no_pending();
    assert_alive();
}
END_TEST

static void *
complete_error_later(void *arg)
{
    (void)arg;
    if (parks_wait(1) >= 1) {
        lm_api_complete_error(parks[0].p, 409, "wrong_state", "pipeline %s is stopped",
                              parks[0].id);
    }
    return NULL;
}

START_TEST(test_api_defer_error)
{
    pthread_t th;
    lm_test_http r;

    add_defer_routes();
    half_close = false;
    ck_assert_int_eq(pthread_create(&th, NULL, complete_error_later, NULL), 0);
    ck_assert_int_eq(http_json("GET", "/t/park/p1", NULL, &r), 0);
    pthread_join(th, NULL);
    ASSERT_ERROR(&r, 409, "wrong_state", "pipeline p1 is stopped");
    lm_test_http_free(&r);
    assert_no_pending();
}
END_TEST

START_TEST(test_api_defer_timeout)
{
    lm_api_opts ao = LM_API_OPTS_DEFAULTS;
    lm_api_route_def routes[] = {{"GET", "/t/park/{id}", park_handler, NULL}};
    lm_error err;
    lm_test_http r;

    lm_api_stop(api);
    api = NULL;
    ao.routes = routes;
    ao.nroutes = 1;
    ao.defer_timeout_ms = 200;
    ck_assert_msg(lm_api_start(rt, &ao, &api, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(lm_api_v1_register(api), LM_OK);
    port = lm_api_port(api);
    half_close = false;
    ck_assert_int_eq(http_json("GET", "/t/park/never", NULL, &r), 0);
    ASSERT_ERROR(&r, 504, "timeout", "200 ms");
    lm_test_http_free(&r);
    ck_assert_int_eq(parks_wait(1), 1);
    assert_no_pending();
    /* the late completion is dropped */
    ck_assert_int_eq(lm_api_complete(parks[0].p, 200, json_object()), LM_ETIMEDOUT);
    assert_alive();
}
END_TEST

START_TEST(test_api_defer_client_gone)
{
    static const char req[] = "GET /t/park/gone HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    int fd;

    add_defer_routes();
    fd = connect_api();
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
    ck_assert_int_eq(parks_wait(1), 1);
    ck_assert_uint_eq(lm_api_pending_count(api), 1);
    close(fd);
    assert_no_pending(); /* the hang-up was noticed */
    ck_assert_int_eq(lm_api_complete(parks[0].p, 200, json_object()), LM_ECLOSED);
    assert_alive();

    /* a client that goes away after the completion was queued */
    parks_reset();
    fd = connect_api();
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
    ck_assert_int_eq(parks_wait(1), 1);
    close(fd);
    lm_api_complete(parks[0].p, 200, json_object()); /* LM_OK or LM_ECLOSED: a race */
    assert_no_pending();
    assert_alive();
}
END_TEST

#define DEFERRED 50

typedef struct deferred_client {
    int i;
    int status;
    bool right; /* got its own answer */
} deferred_client;

static void *
deferred_client_main(void *arg)
{
    deferred_client *c = arg;
    char path[64];
    lm_test_http r;

    snprintf(path, sizeof(path), "/t/park/%d", c->i);
    if (http_json("GET", path, NULL, &r) == 0) {
        const char *id = json_string_value(json_object_get(r.json, "id"));
        c->status = r.status;
        c->right = r.status == 200 && id != NULL && atoi(id) == c->i &&
                   json_integer_value(json_object_get(r.json, "n")) == c->i;
    }
    lm_test_http_free(&r);
    return NULL;
}

static void *
complete_shuffled(void *arg)
{
    int order[DEFERRED];
    unsigned seed = 12345;

    (void)arg;
    if (parks_wait(DEFERRED) < DEFERRED) {
        return NULL;
    }
    for (int i = 0; i < DEFERRED; i++) {
        order[i] = i;
    }
    for (int i = DEFERRED - 1; i > 0; i--) {
        int j = rand_r(&seed) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < DEFERRED; k++) {
        parked *pk = &parks[order[k]];
        lm_api_complete(pk->p, 200, json_pack("{s:s, s:i}", "id", pk->id, "n", atoi(pk->id)));
        if (k % 7 == 0) {
            usleep(1000);
        }
    }
    return NULL;
}

START_TEST(test_api_defer_many)
{
    pthread_t th[DEFERRED], worker;
    deferred_client cl[DEFERRED];

    add_defer_routes();
    half_close = false;
    ck_assert_int_eq(pthread_create(&worker, NULL, complete_shuffled, NULL), 0);
    for (int i = 0; i < DEFERRED; i++) {
        cl[i] = (deferred_client){i, -1, false};
        ck_assert_int_eq(pthread_create(&th[i], NULL, deferred_client_main, &cl[i]), 0);
    }
    for (int i = 0; i < DEFERRED; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_join(worker, NULL);
    for (int i = 0; i < DEFERRED; i++) {
        ck_assert_msg(cl[i].right, "client %d: status %d, not its answer", i, cl[i].status);
    }
    assert_no_pending();
    assert_alive();
}
END_TEST

START_TEST(test_api_defer_stop)
{
    pthread_t th[3];
    deferred_client cl[3];

    add_defer_routes();
    half_close = false;
    for (int i = 0; i < 3; i++) {
        cl[i] = (deferred_client){i, -1, false};
        ck_assert_int_eq(pthread_create(&th[i], NULL, deferred_client_main, &cl[i]), 0);
    }
    ck_assert_int_eq(parks_wait(3), 3);
    lm_api_stop(api);
    api = NULL;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(cl[i].status == 503, "client %d: status %d", i, cl[i].status);
    }
    /* the handles outlive the api; completing them frees them */
    ck_assert_int_eq(lm_api_complete(parks[0].p, 200, json_object()), LM_ECLOSED);
    ck_assert_int_eq(lm_api_complete_error(parks[1].p, 500, "internal", "late"), LM_ECLOSED);
    lm_rt_free(rt, 5000);
    rt = NULL;
    ck_assert_int_eq(lm_api_complete(parks[2].p, 200, NULL), LM_ECLOSED);
}
END_TEST

/* --- start and stop ------------------------------------------------------- */

START_TEST(test_api_port_taken)
{
    lm_api_opts ao = LM_API_OPTS_DEFAULTS;
    lm_api *other = NULL;
    lm_error err;

    ao.port = port;
    ao.name = "api2";
    ck_assert_int_eq(lm_api_start(rt, &ao, &other, &err), LM_EADDRINUSE);
    ck_assert_ptr_null(other);
    ck_assert_msg(strstr(err.msg, "cannot listen") != NULL, "%s", err.msg);
    ao.port = 70000;
    ck_assert_int_eq(lm_api_start(rt, &ao, &other, &err), LM_EINVAL);
    ao.port = 0;
    ao.bind = "no-such-host.invalid";
    ck_assert_int_eq(lm_api_start(rt, &ao, &other, &err), LM_EIO);
    assert_alive();
}
END_TEST

START_TEST(test_api_restart)
{
    lm_api_opts ao = LM_API_OPTS_DEFAULTS;
    lm_api_route_def routes[] = {{"GET", "/x/{id}", echo_handler, "table"}};
    lm_error err;
    lm_test_http r;
    int old = port;

    /* stopped while a client holds an idle connection open */
    int idle = connect_api();
    ck_assert_int_ge(idle, 0);
    lm_api_stop(api);
    api = NULL;
    close(idle);
    ck_assert_int_eq(http_json("GET", "/api/v1/healthz", NULL, &r), -1);
    lm_test_http_free(&r);

    /* again on the same port, with a route table and a small body limit */
    ao.port = old;
    ao.routes = routes;
    ao.nroutes = 1;
    ao.max_body_bytes = 16;
    ck_assert_msg(lm_api_start(rt, &ao, &api, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(lm_api_port(api), old);
    ck_assert_int_eq(http_json("GET", "/x/7", NULL, &r), 0);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "id")), "7");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("GET", "/x/7", "{\"a\": \"0123456789\"}", &r), 0);
    ASSERT_ERROR(&r, 413, "too_large", "limit is 16");
    lm_test_http_free(&r);
    ck_assert_int_eq(http_json("GET", "/api/v1/healthz", NULL, &r), 0);
    ASSERT_ERROR(&r, 404, "not_found", NULL);
    lm_test_http_free(&r);
}
END_TEST

START_TEST(test_api_opts_from_config)
{
    lm_config cfg;
    lm_api_opts ao;

    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    lm_api_opts_from_config(&cfg, &ao);
    ck_assert_str_eq(ao.bind, "127.0.0.1");
    ck_assert_int_eq(ao.port, 8001);
    ck_assert_uint_eq(ao.max_body_bytes, 1u << 20);
    ck_assert_int_eq(ao.loop, -1);
    lm_config_fini(&cfg);
}
END_TEST

Suite *
api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_api_healthz);
    tcase_add_test(tc, test_api_validate_plan);
    tcase_add_test(tc, test_api_validate_invalid_sql);
    tcase_add_test(tc, test_api_malformed_json);
    tcase_add_test(tc, test_api_bad_bodies);
    tcase_add_test(tc, test_api_body_too_large);
    tcase_add_test(tc, test_api_unknown_route);
    tcase_add_test(tc, test_api_wrong_method);
    tcase_add_test(tc, test_api_not_http);
    tcase_add_test(tc, test_api_router);
    tcase_add_test(tc, test_api_concurrent_clients);
    tcase_add_test(tc, test_api_defer_later);
    tcase_add_test(tc, test_api_defer_error);
    tcase_add_test(tc, test_api_defer_timeout);
    tcase_add_test(tc, test_api_defer_client_gone);
    tcase_add_test(tc, test_api_defer_many);
    tcase_add_test(tc, test_api_defer_stop);
    tcase_add_test(tc, test_api_port_taken);
    tcase_add_test(tc, test_api_restart);
    tcase_add_test(tc, test_api_opts_from_config);
    suite_add_tcase(s, tc);
    return s;
}
