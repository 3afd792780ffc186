/*
 * check_cli.c: laminarctl (cli/) run for real: each test starts a runtime
 * and the REST API (healthz, validate) on 127.0.0.1 with an ephemeral
 * port in this process, runs the laminarctl binary ($LM_TEST_BIN, default
 * build/bin) against it (lm_test_run), and checks its exit status,
 * stdout and stderr. The commands whose endpoints that server lacks
 * (submit, cancel, list, status), and answers the API never gives (not
 * JSON, a chunked body), are tried against a server thread that answers
 * each connection with a canned response and keeps the requests.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lm_api.h"
#include "lm_api_v1.h"
#include "lm_log.h"
#include "lm_storage.h"
#include "lm_test.h"

static lm_rt *rt;
static lm_api *api;
static char server[64]; /* "http://127.0.0.1:PORT" */
static char dir[512];   /* this test's scratch directory */

static void
setup(void)
{
    lm_rt_opts o = {0, 1, 0, "cli-test"};
    lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, false, NULL};
    lm_api_opts ao = LM_API_OPTS_DEFAULTS;
    lm_error err;

    lm_log_configure(&lo, NULL);
    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    ao.bind = "127.0.0.1";
    ao.version = "9.9.9-test";
    ck_assert_msg(lm_api_start(rt, &ao, &api, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_eq(lm_api_v1_register(api), LM_OK);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", lm_api_port(api));
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
}

static void
teardown(void)
{
    lm_error err;

    lm_api_stop(api);
    api = NULL;
    lm_rt_free(rt, 5000);
    rt = NULL;
    lm_msg_pool_trim();
    lm_storage_remove_tree(dir, &err);
}

/* --- running laminarctl ---------------------------------------------------- */

typedef lm_test_output run;

static const char *
ctl_path(void)
{
    static char path[1024];
    const char *bin = getenv("LM_TEST_BIN");
    snprintf(path, sizeof(path), "%s/laminarctl",
             bin != NULL && bin[0] != '\0' ? bin : "build/bin");
    return path;
}

/* Runs laminarctl with the NULL-terminated arguments and LAMINAR_API set
 * to api_env (unset when NULL), waiting up to 30 s (times the slowdown)
 * for it to exit. The variable is set in this process, which spawns with
 * its environment: no other thread of the test reads the environment. */
static run
ctl_env(const char *api_env, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    run r;

    argv[argc++] = (char *)ctl_path();
    va_start(ap, api_env);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    if (api_env != NULL) {
        ck_assert_int_eq(setenv("LAMINAR_API", api_env, 1), 0);
    } else {
        ck_assert_int_eq(unsetenv("LAMINAR_API"), 0);
    }
    lm_test_run(argv, dir, 30000 * lm_test_slowdown(), &r);
    ck_assert_msg(r.status >= 0, "%s %s did not run to its end: %s", argv[0],
                  argc > 1 ? argv[1] : "", r.err != NULL ? r.err : "");
    ck_assert(r.out != NULL && r.err != NULL);
    return r;
}

static void
run_free(run *r)
{
    lm_test_output_free(r);
}

/* laminarctl --server <the test's api> ARGS... */
#define ctl(...) ctl_env(NULL, "--server", server, __VA_ARGS__, (char *)NULL)

/* Writes text into the file name in the test's directory; returns its path
 * (a static buffer). */
static const char *
sql_file(const char *name, const char *text)
{
    static char path[700];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert(f != NULL);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* A Nexmark query of the repository, for valid input. */
static const char *
nexmark_sql(const char *q)
{
    static char path[700];
    snprintf(path, sizeof(path), "%s/scripts/nexmark/sql/%s.sql", lm_test_root(), q);
    return path;
}

/* A port on 127.0.0.1 that nothing listens on (bound, then closed). */
static int
closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert(fd >= 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* --- a server with canned answers ------------------------------------------------ */

#define CANNED_MAX 4

/* Answers the first connection with answers[0], the next with answers[1],
 * and so on, keeping each request (head and body) for the test. */
typedef struct canned {
    int fd;                     /* listening socket */
    const char *const *answers; /* NULL-terminated, at most CANNED_MAX */
    pthread_t thread;
    char requests[CANNED_MAX][8192]; /* each request as received */
} canned;

/* Reads one request: the head, then Content-Length bytes of body. */
static void
read_request(int fd, char *req, size_t cap)
{
    size_t n = 0, want = SIZE_MAX;
    char *end, *cl;

    req[0] = '\0';
    while (n + 1 < cap && n < want) {
        ssize_t k = recv(fd, req + n, cap - 1 - n, 0);
        if (k <= 0) {
            break;
        }
        n += (size_t)k;
        req[n] = '\0';
        if (want == SIZE_MAX && (end = strstr(req, "\r\n\r\n")) != NULL) {
            cl = strcasestr(req, "\r\nContent-Length:");
            want =
                (size_t)(end + 4 - req) + (cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
    }
}

static void *
canned_main(void *arg)
{
    canned *c = arg;

    for (int i = 0; i < CANNED_MAX && c->answers[i] != NULL; i++) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int fd;
        if (poll(&pfd, 1, 30000 * lm_test_slowdown()) != 1 ||
            (fd = accept(c->fd, NULL, NULL)) < 0) {
            return NULL;
        }
        read_request(fd, c->requests[i], sizeof(c->requests[i]));
        if (send(fd, c->answers[i], strlen(c->answers[i]), MSG_NOSIGNAL) < 0) {
            /* the client's complaint will say what it missed */
        }
        close(fd);
    }
    return NULL;
}

/* Starts the server; url gets its address ("127.0.0.1:PORT"). */
static void
canned_start(canned *c, const char *const *answers, char *url, size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);

    memset(c, 0, sizeof(*c));
    c->answers = answers;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert(c->fd >= 0);
    ck_assert_int_eq(bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(c->fd, 4), 0);
    ck_assert_int_eq(getsockname(c->fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(url, cap, "127.0.0.1:%d", ntohs(sa.sin_port));
    ck_assert_int_eq(pthread_create(&c->thread, NULL, canned_main, c), 0);
}

/* Waits for the server to answer all it was given (or give up). */
static void
canned_stop(canned *c)
{
    pthread_join(c->thread, NULL);
    close(c->fd);
}

/* The body of a canned request, parsed (the caller releases it). */
static json_t *
canned_body(const canned *c, int i)
{
    const char *body = strstr(c->requests[i], "\r\n\r\n");
    json_t *doc = body != NULL ? json_loads(body + 4, 0, NULL) : NULL;
    ck_assert_msg(doc != NULL, "request %d has no JSON body: %s", i, c->requests[i]);
    return doc;
}

/* A 200 (or other) answer with a JSON body; returns a static buffer of the
 * slot given (so that several can be alive at once). */
static const char *
json_answer(int slot, int status, const char *body)
{
    static char bufs[CANNED_MAX][8192];
    int n = snprintf(bufs[slot], sizeof(bufs[slot]),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);

    ck_assert(n > 0 && (size_t)n < sizeof(bufs[slot]));
    return bufs[slot];
}

/* --- tests ---------------------------------------------------------------------- */

/* A valid pipeline: exit 0 and the summary line. */
START_TEST(test_cli_validate_ok)
{
    char want[1024];
    run r = ctl("validate", nexmark_sql("q1"));

    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof(want), "ok: %s compiles to 3 operators (parallelism 1)\n",
             nexmark_sql("q1"));
    ck_assert_str_eq(r.out, want);
    ck_assert_str_eq(r.err, "");
    run_free(&r);

    r = ctl("validate", nexmark_sql("q5"), "--parallelism", "4");
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "(parallelism 4)") != NULL, "stdout: %s", r.out);
    run_free(&r);
}
END_TEST

/* A syntax error: exit 1, the server's message, where, the SQL line and a
 * caret under the column, on stderr; nothing on stdout. */
START_TEST(test_cli_validate_syntax_error)
{
    const char *path = sql_file("bad.sql", "CREATE TABLE t (x BIGINT) WITH ('connector' = "
                                           "'impulse');\nSELECT x FROM t WHERE;\n");
    run r = ctl("validate", path);

    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "laminarctl: expected an expression after 'WHERE', got ';'\n"
                            "  at line 2, column 22:\n"
                            "  SELECT x FROM t WHERE;\n"
                            "                       ^\n");
    run_free(&r);
}
END_TEST

/* explain prints the plans the server explains. */
START_TEST(test_cli_explain)
{
    run r = ctl("explain", nexmark_sql("q1"));

    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "== logical plan ==") != NULL &&
                      strstr(r.out, "== physical plan (parallelism 1) ==") != NULL &&
                      strstr(r.out, "nexmark") != NULL,
                  "stdout: %s", r.out);
    ck_assert(r.out[strlen(r.out) - 1] == '\n');
    run_free(&r);
}
END_TEST

START_TEST(test_cli_health)
{
    char want[256];
    run r = ctl("health");

    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof(want), "ok: Laminar API 9.9.9-test at %s\n", server);
    ck_assert_str_eq(r.out, want);
    run_free(&r);
}
END_TEST

/* Nothing listens: exit 1 and a message naming the address and why. */
START_TEST(test_cli_server_down)
{
    char url[64], want[256];
    run r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    r = ctl_env(NULL, "--server", url, "list", (char *)NULL);
    ck_assert_int_eq(r.status, 1);
    snprintf(want, sizeof(want),
             "laminarctl: cannot reach the Laminar API at %s: Connection refused (is laminard "
             "running?)\n",
             url);
    ck_assert_str_eq(r.err, want);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}
END_TEST

/* LAMINAR_API names the server when --server does not; --server wins. */
START_TEST(test_cli_env_server)
{
    char hostport[64], down[64];
    run r;

    snprintf(hostport, sizeof(hostport), "%s", server + strlen("http://"));
    r = ctl_env(hostport, "health", (char *)NULL); /* the "host:port" form */
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert(strstr(r.out, "ok: ") == r.out);
    run_free(&r);

    snprintf(down, sizeof(down), "http://127.0.0.1:%d", closed_port());
    r = ctl_env(down, "health", (char *)NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, down) != NULL, "stderr: %s", r.err);
    run_free(&r);

    r = ctl_env(down, "--server", server, "health", (char *)NULL);
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    run_free(&r);

    r = ctl_env("https://127.0.0.1:1", "health", (char *)NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "LAMINAR_API") != NULL && strstr(r.err, "not supported") != NULL,
                  "stderr: %s", r.err);
    run_free(&r);
}
END_TEST

/* Usage errors exit 2 and say what is wrong. */
START_TEST(test_cli_usage_errors)
{
    run r = ctl("frobnicate");

    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "unknown command 'frobnicate'") != NULL, "stderr: %s", r.err);
    run_free(&r);

    r = ctl("lsit");
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "did you mean 'list'?") != NULL, "stderr: %s", r.err);
    run_free(&r);

    r = ctl("status");
    ck_assert_int_eq(r.status, 2);
    run_free(&r);

    r = ctl("status", "abc");
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "bad pipeline id 'abc'") != NULL, "stderr: %s", r.err);
    run_free(&r);

    r = ctl("validate", nexmark_sql("q1"), "--parallelism", "two");
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "--parallelism") != NULL, "stderr: %s", r.err);
    run_free(&r);

    r = ctl("submit", nexmark_sql("q1"), "--checkpoint-interval", "10 parsecs");
    ck_assert_int_eq(r.status, 2);
    run_free(&r);

    r = ctl("list", "--graceful");
    ck_assert_int_eq(r.status, 2);
    run_free(&r);

    r = ctl_env(NULL, (char *)NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "usage:") != NULL, "stderr: %s", r.err);
    run_free(&r);

    r = ctl_env(NULL, "--help", (char *)NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "usage: laminarctl") != NULL && strstr(r.out, "submit") != NULL);
    run_free(&r);
}
END_TEST

/* A file that cannot be read is a usage error naming the file and why. */
START_TEST(test_cli_missing_file)
{
    char path[700], want[800];
    run r;

    snprintf(path, sizeof(path), "%s/nope.sql", dir);
    r = ctl("validate", path);
    ck_assert_int_eq(r.status, 2);
    snprintf(want, sizeof(want), "laminarctl: cannot read %s: No such file or directory\n", path);
    ck_assert_str_eq(r.err, want);
    run_free(&r);

    r = ctl("submit", path, "--name", "x");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, want);
    run_free(&r);
}
END_TEST

/* --json prints the server's answer as JSON. */
START_TEST(test_cli_json)
{
    json_error_t je;
    json_t *doc;
    run r = ctl("--json", "validate", nexmark_sql("q1"));

    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    doc = json_loads(r.out, 0, &je);
    ck_assert_msg(doc != NULL, "not JSON (%s): %s", je.text, r.out);
    ck_assert(json_is_string(json_object_get(doc, "explain")));
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(doc, "plan"), "operators")),
                     3);
    json_decref(doc);
    run_free(&r);

    r = ctl("health", "--json");
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    doc = json_loads(r.out, 0, &je);
    ck_assert_msg(doc != NULL, "not JSON (%s): %s", je.text, r.out);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "version")), "9.9.9-test");
    json_decref(doc);
    run_free(&r);
}
END_TEST

/* An error answer without a place (the router's 404 for an endpoint this
 * server lacks) is printed in the server's words, exit 1. */
START_TEST(test_cli_server_error)
{
    run r = ctl("status", "3");

    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "laminarctl: no such endpoint: GET /api/v1/pipelines/3\n");
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}
END_TEST

/* An answer that is not JSON: exit 1, naming the status. */
START_TEST(test_cli_not_json)
{
    canned c;
    char url[64];
    run r;

    const char *answers[] = {"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                             "Content-Length: 21\r\n\r\n<html>oh dear</html>\n",
                             NULL};

    canned_start(&c, answers, url, sizeof(url));
    r = ctl_env(url, "list", (char *)NULL);
    canned_stop(&c);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, "answered 502 Bad Gateway with a body that is not JSON") != NULL,
                  "stderr: %s", r.err);
    ck_assert_msg(strncmp(c.requests[0], "GET /api/v1/pipelines HTTP/1.1\r\n", 32) == 0,
                  "request: %s", c.requests[0]);
    run_free(&r);
}
END_TEST

/* A chunked answer (with an extension and a trailer) is read whole. */
START_TEST(test_cli_chunked_answer)
{
    canned c;
    char url[64];
    run r;

    const char *answers[] = {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"
                             "c\r\n{\"pipelines\"\r\n"
                             "5;ext=1\r\n: []}\r\n"
                             "0\r\nX-Trailer: yes\r\n\r\n",
                             NULL};

    canned_start(&c, answers, url, sizeof(url));
    r = ctl_env(NULL, "--server", url, "list", (char *)NULL);
    canned_stop(&c);
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_str_eq(r.out, "no pipelines\n");
    run_free(&r);
}
END_TEST

/* A pipeline with its job, as the API answers it (times: now). */
#define PIPELINE_JSON(job_state)                                                                   \
    "{\"id\": 3, \"name\": \"q5\", \"query\": \"...\", \"parallelism\": 2, "                       \
    "\"checkpoint_interval_ms\": 90000, \"stop\": \"none\", \"version\": 1, "                      \
    "\"created_at\": %lld, \"updated_at\": %lld, \"job\": {\"id\": 7, \"pipeline_id\": 3, "        \
    "\"version\": 1, \"state\": \"" job_state "\", \"reason\": \"\", \"restarts\": 0, "            \
    "\"created_at\": %lld, \"updated_at\": %lld}}"

static long long
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* submit sends the file's query, its base name and the options; prints
 * the pipeline and its job. */
START_TEST(test_cli_submit_request)
{
    long long now = wall_ms();
    char body[2048], url[64];
    const char *answers[2];
    json_t *req, *query;
    canned c;
    run r;
    char *sql;

    snprintf(body, sizeof(body), PIPELINE_JSON("created"), now, now, now, now);
    answers[0] = json_answer(0, 201, body);
    answers[1] = NULL;
    canned_start(&c, answers, url, sizeof(url));
    r = ctl_env(url, "submit", nexmark_sql("q5"), "--parallelism", "2", "--checkpoint-interval",
                "1m30s", (char *)NULL);
    canned_stop(&c);
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_str_eq(r.out, "pipeline 3 (q5) submitted: job 7 created\n");
    ck_assert_msg(strncmp(c.requests[0], "POST /api/v1/pipelines HTTP/1.1\r\n", 33) == 0,
                  "request: %s", c.requests[0]);
    req = canned_body(&c, 0);
    ck_assert_str_eq(json_string_value(json_object_get(req, "name")), "q5");
    ck_assert_int_eq(json_integer_value(json_object_get(req, "parallelism")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(req, "checkpoint_interval_ms")), 90000);
    query = json_object_get(req, "query");
    sql = lm_test_read_file(nexmark_sql("q5"), NULL);
    ck_assert(sql != NULL && json_is_string(query));
    ck_assert_str_eq(json_string_value(query), sql);
    free(sql);
    json_decref(req);
    run_free(&r);
}
END_TEST

/* cancel --graceful PATCHes the stop and prints the job's new state;
 * a refusal (409) is printed in the server's words, exit 1. */
START_TEST(test_cli_cancel)
{
    long long now = wall_ms();
    char body[2048], url[64];
    const char *answers[3];
    json_t *req;
    canned c;
    run r;

    snprintf(body, sizeof(body), PIPELINE_JSON("stopping"), now, now, now, now);
    answers[0] = json_answer(0, 200, body);
    answers[1] = json_answer(1, 409,
                             "{\"error\": {\"code\": \"conflict\", \"message\": \"pipeline 3 is "
                             "not running\"}}");
    answers[2] = NULL;
    canned_start(&c, answers, url, sizeof(url));
    r = ctl_env(url, "cancel", "3", "--graceful", (char *)NULL);
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_str_eq(r.out, "pipeline 3 (q5): job 7 stopping\n");
    run_free(&r);
    r = ctl_env(url, "cancel", "3", (char *)NULL);
    canned_stop(&c);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "laminarctl: pipeline 3 is not running\n");
    ck_assert_msg(strncmp(c.requests[0], "PATCH /api/v1/pipelines/3 HTTP/1.1\r\n", 36) == 0,
                  "request: %s", c.requests[0]);
    req = canned_body(&c, 0);
    ck_assert_str_eq(json_string_value(json_object_get(req, "stop")), "graceful");
    json_decref(req);
    req = canned_body(&c, 1);
    ck_assert_str_eq(json_string_value(json_object_get(req, "stop")), "immediate");
    json_decref(req);
    run_free(&r);
}
END_TEST

/* list: a table with a header row and columns as wide as their cells. */
START_TEST(test_cli_list_table)
{
    long long now = wall_ms();
    char body[4096], p[2048], url[64];
    const char *answers[3];
    canned c;
    run r;

    snprintf(p, sizeof(p), PIPELINE_JSON("running"), now - 600000, now - 600000, now - 600000,
             now - 300000); /* "5m ago" for a minute, however slow the run */
    snprintf(body, sizeof(body),
             "{\"pipelines\": [%s, {\"id\": 12, \"name\": \"a longer name\", \"parallelism\": 1, "
             "\"updated_at\": %lld, \"job\": null}]}",
             p, now - 3 * 86400000LL);
    answers[0] = json_answer(0, 200, body);
    answers[1] = json_answer(1, 200, "{\"pipelines\": []}");
    answers[2] = NULL;
    canned_start(&c, answers, url, sizeof(url));
    r = ctl_env(url, "list", (char *)NULL);
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_str_eq(r.out, "ID  NAME           STATE    JOB  PARALLELISM  RESTARTS  UPDATED\n"
                            "3   q5             running  7    2            0         5m ago\n"
                            "12  a longer name  -        -    1            -         3d ago\n");
    run_free(&r);
    r = ctl_env(url, "list", (char *)NULL);
    canned_stop(&c);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "no pipelines\n");
    run_free(&r);
}
END_TEST

/* status asks for the pipeline, then its job, and shows the operators;
 * --json shows the pipeline with the job's full answer in "job". */
START_TEST(test_cli_status)
{
    long long now = wall_ms();
    char p[2048], job[2048], url[64];
    const char *answers[5];
    json_t *doc;
    canned c;
    run r;

    snprintf(p, sizeof(p), PIPELINE_JSON("running"), now, now, now, now);
    snprintf(job, sizeof(job),
             "{\"id\": 7, \"pipeline_id\": 3, \"version\": 1, \"state\": \"running\", "
             "\"reason\": \"\", \"restarts\": 0, \"created_at\": %lld, \"updated_at\": %lld, "
             "\"placement\": \"worker 1 x2\", \"operators\": ["
             "{\"id\": \"bids\", \"kind\": \"nexmark\", \"parallelism\": 2, "
             "\"records_in\": 0, \"records_out\": 1000},"
             "{\"id\": \"sink_sink\", \"kind\": \"blackhole\", \"parallelism\": 2, "
             "\"records_in\": 1000, \"records_out\": 0}]}",
             now, now);
    answers[0] = json_answer(0, 200, p);
    answers[1] = json_answer(1, 200, job);
    answers[2] = json_answer(2, 200, p);
    answers[3] = json_answer(3, 200, job);
    answers[4] = NULL;
    canned_start(&c, answers, url, sizeof(url));
    r = ctl_env(url, "status", "3", (char *)NULL);
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_msg(strstr(r.out, "pipeline     3 (q5)\n") != NULL &&
                      strstr(r.out, "checkpoints  every 1m30s\n") != NULL &&
                      strstr(r.out, "job          7 (version 1)\n") != NULL &&
                      strstr(r.out, "state        running\n") != NULL &&
                      strstr(r.out, "placement    worker 1 x2\n") != NULL &&
                      strstr(r.out, "ID         KIND       PARALLELISM  RECORDS_IN  RECORDS_OUT\n"
                                    "bids       nexmark    2            0           1000\n"
                                    "sink_sink  blackhole  2            1000        0\n") != NULL,
                  "stdout:\n%s", r.out);
    run_free(&r);
    r = ctl_env(url, "--json", "status", "3", (char *)NULL);
    canned_stop(&c);
    ck_assert_msg(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    ck_assert_msg(strncmp(c.requests[1], "GET /api/v1/jobs/7 HTTP/1.1\r\n", 29) == 0, "request: %s",
                  c.requests[1]);
    doc = json_loads(r.out, 0, NULL);
    ck_assert_msg(doc != NULL, "not JSON: %s", r.out);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "name")), "q5");
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(doc, "job"), "operators")), 2);
    json_decref(doc);
    run_free(&r);
}
END_TEST

Suite *
cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cli_validate_ok);
    tcase_add_test(tc, test_cli_validate_syntax_error);
    tcase_add_test(tc, test_cli_explain);
    tcase_add_test(tc, test_cli_health);
    tcase_add_test(tc, test_cli_server_down);
    tcase_add_test(tc, test_cli_env_server);
    tcase_add_test(tc, test_cli_usage_errors);
    tcase_add_test(tc, test_cli_missing_file);
    tcase_add_test(tc, test_cli_json);
    tcase_add_test(tc, test_cli_server_error);
    tcase_add_test(tc, test_cli_not_json);
    tcase_add_test(tc, test_cli_chunked_answer);
    tcase_add_test(tc, test_cli_submit_request);
    tcase_add_test(tc, test_cli_cancel);
    tcase_add_test(tc, test_cli_list_table);
    tcase_add_test(tc, test_cli_status);
    suite_add_tcase(s, tc);
    return s;
}
