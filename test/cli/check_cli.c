/*
 * check_cli.c: laminarctl (cli/) run for real: the laminarctl binary
 * ($LM_TEST_BIN, default build/bin) runs to its end (lm_test_run) and the
 * tests check its exit status, stdout and stderr.
 *
 * The tests of the tcase "core" start a runtime and the REST API (healthz,
 * validate) on 127.0.0.1 with an ephemeral port in this process. Those of
 * the tcase "daemon" (submit, cancel, list, status: pipelines and jobs)
 * start a real `laminard standalone` and check what laminarctl printed
 * against what its API answers. Both use the control-plane suites'
 * fixture (controlplane/cp_test.h): its scratch directory, and for the
 * daemon, its watched process, CHECK and API helpers. Answers a foreign server may give and
 * Laminar's never does (an HTML 502 from a proxy, a chunked body) come
 * from a server thread that answers each connection with a canned
 * response and keeps the requests.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "lm_api.h"
#include "lm_api_v1.h"
#include "lm_log.h"
#include "controlplane/cp_test.h"

static lm_rt *rt;
static lm_api *api;
static char server[64]; /* "http://127.0.0.1:PORT" */

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
    cp_setup(2000, NULL);
}

static void
teardown(void)
{
    lm_api_stop(api);
    api = NULL;
    lm_rt_free(rt, 5000);
    rt = NULL;
    lm_msg_pool_trim();
    cp_cleanup();
}

/* --- running laminarctl ---------------------------------------------------- */

typedef lm_test_output run;

/* Runs `laminarctl [--server server] ARGS...` (server NULL: no option; the
 * arguments from ap, NULL-terminated) to its end in the scratch
 * directory, waiting up to 30 s (times the slowdown). Returns a
 * description of the run for messages when it did not run to its end,
 * else NULL. */
static const char *
ctl_vrun(const char *server_url, va_list ap, run *r)
{
    static char what[300];
    char bin[512], *argv[32];
    int argc = 0;

    argv[argc++] = (char *)lm_test_bin("laminarctl", bin, sizeof(bin));
    if (server_url != NULL) {
        argv[argc++] = "--server";
        argv[argc++] = (char *)server_url;
    }
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    lm_test_run(argv, cp_dir(), MS(30000), r);
    if (r->status >= 0 && r->out != NULL && r->err != NULL) {
        return NULL;
    }
    snprintf(what, sizeof(what), "laminarctl %s did not run to its end: %s",
             argc > 1 ? argv[server_url != NULL ? 3 : 1] : "", r->err != NULL ? r->err : "");
    return what;
}

/* Runs laminarctl with the NULL-terminated arguments and LAMINAR_API set
 * to api_env (unset when NULL). The variable is set in this process,
 * which spawns with its environment: no other thread of the test reads
 * the environment. */
static run
ctl_env(const char *api_env, ...)
{
    const char *failed;
    va_list ap;
    run r;

    if (api_env != NULL) {
        ck_assert_int_eq(setenv("LAMINAR_API", api_env, 1), 0);
    } else {
        ck_assert_int_eq(unsetenv("LAMINAR_API"), 0);
    }
    va_start(ap, api_env);
    failed = ctl_vrun(NULL, ap, &r);
    va_end(ap);
    ck_assert_msg(failed == NULL, "%s", failed);
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

    snprintf(path, sizeof(path), "%s/%s", cp_dir(), name);
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
    int port = lm_test_free_port();

    ck_assert_int_gt(port, 0);
    return port;
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

    snprintf(path, sizeof(path), "%s/nope.sql", cp_dir());
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

/* --- laminarctl against a real laminard standalone ----------------------------------
 * submit, cancel, list and status need pipelines and jobs: each of these
 * tests starts `laminard standalone` (controller and worker in one
 * process, SQLite in the test's directory) on a free loopback port, drives
 * it with laminarctl, checks what laminarctl printed against what the
 * daemon's API answers, and stops it with SIGTERM (exit status 0). A failed
 * check kills the daemon and removes the directory before the test fails
 * (the message ends with the daemon's log); teardown does the same. */

/* An unbounded Nexmark source at 20,000 events a second: runs until stopped. */
#define UNBOUNDED "'events.num' = '0', 'emit.rate' = '20000'"
/* A bounded one: finishes within a second. */
#define BOUNDED "'events.num' = '1000'"

static lm_test_proc daemon_p; /* the laminard standalone of the test (watched) */
static int dport;             /* its API port */
static char daemon_url[64];   /* http://127.0.0.1:<dport> */

static void
daemon_setup(void)
{
    cp_setup(2000, NULL);
    cp_watch(&daemon_p, "laminard", 1000);
    dport = lm_test_free_port();
    ck_assert_int_gt(dport, 0);
    snprintf(daemon_url, sizeof(daemon_url), "http://127.0.0.1:%d", dport);
}

/* Starts `laminard standalone` (4 slots, 2 loops, no metrics port) with
 * its data in <dir>/data and its output in <dir>/laminard.log, and waits
 * until its API answers. A daemon that exits at once (the free port was
 * taken meanwhile by another test's server) is tried again on another. */
static void
start_daemon(void)
{
    char log[700], data[700], portset[64];
    const char *args[] = {"standalone", "--data-dir", data, NULL};
    const char *sets[] = {portset, "metrics.enabled=false", "worker.slots=4", "runtime.loops=2",
                          NULL};

    snprintf(log, sizeof(log), "%s/laminard.log", cp_dir());
    snprintf(data, sizeof(data), "%s/data", cp_dir());
    for (int attempt = 1;; attempt++) {
        bool up;
        snprintf(portset, sizeof(portset), "api.port=%d", dport);
        cp_laminard_start(&daemon_p, log, args, sets);
        up = lm_test_api_wait_up(dport, &daemon_p, MS(15000));
        if (up && !lm_test_proc_wait(&daemon_p, 0)) {
            break;
        }
        CHECK(attempt < 3 && lm_test_proc_wait(&daemon_p, 0),
              "laminard standalone does not answer on port %d after 15 s (%s)", dport,
              lm_test_proc_describe(&daemon_p));
        dport = lm_test_free_port();
        CHECK(dport > 0, "no free loopback port");
        snprintf(daemon_url, sizeof(daemon_url), "http://127.0.0.1:%d", dport);
    }
}

/* SIGTERM: the daemon must exit 0 (its running jobs recorded stopped);
 * then the directory goes. */
static void
stop_daemon(void)
{
    int st = lm_test_proc_stop(&daemon_p, SIGTERM, MS(20000));
    CHECK(st == 0, "laminard standalone after SIGTERM: %s, want exit status 0",
          lm_test_proc_describe(&daemon_p));
    cp_cleanup();
}

/* Runs `laminarctl --server <the daemon> ARGS...` (NULL-terminated) to its
 * end; free the result with run_free. */
static run
dctl(const char *server_url, ...)
{
    const char *failed;
    va_list ap;
    run r;

    va_start(ap, server_url);
    failed = ctl_vrun(server_url, ap, &r);
    va_end(ap);
    CHECK(failed == NULL, "%s", failed);
    return r;
}

#define DCTL(...) dctl(daemon_url, __VA_ARGS__, (char *)NULL)

/* GET /api/v1<fmt...>: the JSON of its 200 answer (json_decref it). */
static json_t *__attribute__((format(printf, 1, 2))) api_get(const char *fmt, ...)
{
    char path[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return cp_get(dport, path);
}

/* Waits up to 20 s for the job's state; returns GET /jobs/<job> then
 * (json_decref it). */
static json_t *
wait_job(long long job, const char *state)
{
    char last[400];
    json_t *doc = lm_test_api_wait_job(dport, job, state, MS(20000), last, sizeof(last));
    CHECK(doc != NULL, "job %lld did not become %s within 20 s; last seen: %s", job, state, last);
    return doc;
}

/* Writes Nexmark query q, its sink writing JSON lines into the new
 * directory <dir>/<name>-out and its source's events.num option replaced
 * by events, into <dir>/<name>.sql; path gets its path. */
static const char *
nexmark_file(const char *q, const char *name, const char *events, char *path, size_t cap)
{
    lm_report rep = {.len = 0, .failed = false};
    char sub[300], out[700];
    char *sql;
    FILE *f;

    snprintf(sub, sizeof(sub), "%s-out", name);
    sql = lm_test_nexmark_sql(q, cp_make_dir(sub, out, sizeof(out)), events, &rep);
    CHECK(sql != NULL, "%s", rep.msg);
    snprintf(path, cap, "%s/%s.sql", cp_dir(), name);
    f = fopen(path, "w");
    if (f != NULL) {
        fputs(sql, f);
    }
    free(sql);
    CHECK(f != NULL && fclose(f) == 0, "cannot write %s: %s", path, strerror(errno));
    return path;
}

/* Submits the file with `laminarctl --json submit` (with a checkpoint
 * interval unless interval is NULL); returns the pipeline's id and its
 * job's in *job. */
static long long
submit(const char *file, const char *name, const char *parallelism, const char *interval,
       long long *job)
{
    json_error_t jerr;
    json_t *doc;
    long long id;
    run r = interval != NULL
                ? DCTL("--json", "submit", file, "--name", name, "--parallelism", parallelism,
                       "--checkpoint-interval", interval)
                : DCTL("--json", "submit", file, "--name", name, "--parallelism", parallelism);

    CHECK(r.status == 0, "laminarctl submit %s: exit %d, stderr: %s", name, r.status, r.err);
    doc = json_loads(r.out, 0, &jerr);
    run_free(&r);
    CHECK(doc != NULL, "laminarctl --json submit %s: not JSON: %s", name, jerr.text);
    id = cp_jint(doc, "id");
    *job = cp_jint(json_object_get(doc, "job"), "id");
    json_decref(doc);
    CHECK(id > 0 && *job > 0, "laminarctl --json submit %s: no pipeline or job id", name);
    return id;
}

/* PATCH /api/v1/pipelines/<id> {"stop": how}: the status, and the error
 * message of a refusal into msg. */
static int
api_stop(long long id, const char *how, char *msg, size_t cap)
{
    char path[64], body[64];
    lm_test_http h;
    int status;

    snprintf(path, sizeof(path), "/api/v1/pipelines/%lld", id);
    snprintf(body, sizeof(body), "{\"stop\": \"%s\"}", how);
    lm_test_http_json("127.0.0.1", dport, "PATCH", path, body, &h);
    snprintf(msg, cap, "%s",
             cp_jstr(json_object_get(h.json, "error"), "message")[0] != '\0'
                 ? cp_jstr(json_object_get(h.json, "error"), "message")
                 : (h.body != NULL ? h.body : h.problem));
    status = h.status;
    lm_test_http_free(&h);
    return status;
}

/* The idx-th line of text (without its '\n') into line; false when there
 * is none. */
static bool
nth_line(const char *text, int idx, char *line, size_t cap)
{
    const char *p = text;

    for (int i = 0; i < idx && p != NULL; i++) {
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    if (p == NULL || *p == '\0') {
        return false;
    }
    snprintf(line, cap, "%.*s", (int)strcspn(p, "\n"), p);
    return true;
}

/* An age as laminarctl prints one for a recent time: "12s ago", "1m ago". */
static bool
is_age(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && (strcmp(s + n, "s ago") == 0 || strcmp(s + n, "m ago") == 0);
}

/* submit sends the file's query, the name and the options given: the
 * pipeline stored has them; laminarctl prints the pipeline and its job. */
START_TEST(test_cli_submit_request)
{
    char file[700], want[300];
    json_t *list, *p;
    long long id, job;
    char *sql;
    run r;

    start_daemon();
    nexmark_file("q5", "q5", BOUNDED, file, sizeof(file));
    r = DCTL("submit", file, "--name", "hot items", "--parallelism", "3", "--checkpoint-interval",
             "1m30s");
    CHECK(r.status == 0 && r.err[0] == '\0', "laminarctl submit: exit %d, stderr: %s", r.status,
          r.err);

    /* the one pipeline there is */
    list = api_get("/pipelines");
    CHECK(json_array_size(json_object_get(list, "pipelines")) == 1,
          "GET /pipelines after one submit: %zu pipelines, want 1",
          json_array_size(json_object_get(list, "pipelines")));
    p = json_array_get(json_object_get(list, "pipelines"), 0);
    id = cp_jint(p, "id");
    job = cp_jint(json_object_get(p, "job"), "id");
    json_decref(list);
    snprintf(want, sizeof(want), "pipeline %lld (hot items) submitted: job %lld created\n", id,
             job);
    CHECK(strcmp(r.out, want) == 0, "laminarctl submit printed '%s', want '%s'", r.out, want);
    run_free(&r);

    /* stored as given */
    p = api_get("/pipelines/%lld", id);
    sql = lm_test_read_file(file, NULL);
    CHECK(sql != NULL, "cannot read %s", file);
    CHECK(strcmp(cp_jstr(p, "name"), "hot items") == 0 && cp_jint(p, "parallelism") == 3 &&
              cp_jint(p, "checkpoint_interval_ms") == 90000,
          "pipeline %lld stored with name '%s', parallelism %lld, checkpoint_interval_ms %lld; "
          "want 'hot items', 3, 90000",
          id, cp_jstr(p, "name"), cp_jint(p, "parallelism"), cp_jint(p, "checkpoint_interval_ms"));
    CHECK(strcmp(cp_jstr(p, "query"), sql) == 0,
          "pipeline %lld stored a query of %zu bytes, not the file's %zu bytes", id,
          strlen(cp_jstr(p, "query")), strlen(sql));
    free(sql);
    json_decref(p);

    /* and it runs to its end */
    json_decref(wait_job(job, "finished"));
    stop_daemon();
}
END_TEST

/* cancel (immediate, and --graceful) stops a running pipeline and prints
 * its job stopping (a graceful stop waits for a savepoint; an immediate
 * one may be over, "stopped", when the server answers); a pipeline
 * stopped already is refused (409) in the server's words, exit 1. */
START_TEST(test_cli_cancel)
{
    char fa[700], fb[700], ida[32], idb[32], want[500], msg[400];
    long long pa, pb, ja, jb;
    json_t *doc;
    int st;
    run r;

    start_daemon();
    pa = submit(nexmark_file("q1", "now", UNBOUNDED, fa, sizeof(fa)), "now", "1", NULL, &ja);
    pb = submit(nexmark_file("q1", "gently", UNBOUNDED, fb, sizeof(fb)), "gently", "1", NULL, &jb);
    json_decref(wait_job(ja, "running"));
    json_decref(wait_job(jb, "running"));
    snprintf(ida, sizeof(ida), "%lld", pa);
    snprintf(idb, sizeof(idb), "%lld", pb);

    /* the answer is the pipeline as stored once the job controller took
     * the stop: an immediate stop may have ended the job by then */
    r = DCTL("cancel", ida);
    snprintf(want, sizeof(want), "pipeline %lld (now): job %lld stopping\n", pa, ja);
    snprintf(msg, sizeof(msg), "pipeline %lld (now): job %lld stopped\n", pa, ja);
    CHECK(r.status == 0 && (strcmp(r.out, want) == 0 || strcmp(r.out, msg) == 0) &&
              r.err[0] == '\0',
          "laminarctl cancel %s: exit %d, stdout '%s', stderr '%s'; want 0 and '%s' (or stopped)",
          ida, r.status, r.out, r.err, want);
    run_free(&r);
    r = DCTL("cancel", idb, "--graceful");
    snprintf(want, sizeof(want), "pipeline %lld (gently): job %lld stopping\n", pb, jb);
    CHECK(r.status == 0 && strcmp(r.out, want) == 0 && r.err[0] == '\0',
          "laminarctl cancel %s --graceful: exit %d, stdout '%s', stderr '%s'; want 0 and '%s'",
          idb, r.status, r.out, r.err, want);
    run_free(&r);

    /* stopped, each the way it was asked */
    doc = wait_job(ja, "stopped");
    CHECK(strcmp(cp_jstr(doc, "reason"), "stopped by request (immediate)") == 0,
          "job %lld stopped with reason '%s', want 'stopped by request (immediate)'", ja,
          cp_jstr(doc, "reason"));
    json_decref(doc);
    doc = wait_job(jb, "stopped");
    CHECK(strstr(cp_jstr(doc, "reason"), "stopped by request (graceful) after savepoint") ==
              cp_jstr(doc, "reason"),
          "job %lld stopped with reason '%s', want 'stopped by request (graceful) after "
          "savepoint ...'",
          jb, cp_jstr(doc, "reason"));
    json_decref(doc);
    doc = api_get("/pipelines/%lld", pa);
    CHECK(strcmp(cp_jstr(doc, "stop"), "immediate") == 0,
          "pipeline %lld: stop '%s', want immediate", pa, cp_jstr(doc, "stop"));
    json_decref(doc);
    doc = api_get("/pipelines/%lld", pb);
    CHECK(strcmp(cp_jstr(doc, "stop"), "graceful") == 0, "pipeline %lld: stop '%s', want graceful",
          pb, cp_jstr(doc, "stop"));
    json_decref(doc);

    /* again: refused, in the server's words */
    r = DCTL("cancel", ida);
    st = api_stop(pa, "immediate", msg, sizeof(msg));
    CHECK(st == 409, "PATCH /pipelines/%lld of a stopped pipeline: status %d (%s), want 409", pa,
          st, msg);
    snprintf(want, sizeof(want), "laminarctl: %s\n", msg);
    CHECK(r.status == 1 && strcmp(r.err, want) == 0 && r.out[0] == '\0',
          "laminarctl cancel %s of a stopped pipeline: exit %d, stdout '%s', stderr '%s'; want 1 "
          "and '%s'",
          ida, r.status, r.out, r.err, want);
    run_free(&r);
    stop_daemon();
}
END_TEST

/* list: "no pipelines" on an empty server, then a table with a header row
 * and columns as wide as their cells, one row per pipeline with its
 * latest job's state. */
START_TEST(test_cli_list_table)
{
    char f[700], line[300], want[300];
    long long p[3], j[3];
    char msg[400];
    int st;
    run r;

    start_daemon();
    r = DCTL("list");
    CHECK(r.status == 0 && strcmp(r.out, "no pipelines\n") == 0,
          "laminarctl list on an empty server: exit %d, stdout '%s', stderr '%s'; want 0 and 'no "
          "pipelines'",
          r.status, r.out, r.err);
    run_free(&r);

    /* one running, one finished, one stopped */
    p[0] = submit(nexmark_file("q1", "q1", UNBOUNDED, f, sizeof(f)), "q1", "2", NULL, &j[0]);
    p[1] = submit(nexmark_file("q2", "longer", BOUNDED, f, sizeof(f)), "a longer name", "1", NULL,
                  &j[1]);
    p[2] = submit(nexmark_file("q1", "canceled", UNBOUNDED, f, sizeof(f)), "canceled", "1", NULL,
                  &j[2]);
    json_decref(wait_job(j[0], "running"));
    json_decref(wait_job(j[1], "finished"));
    json_decref(wait_job(j[2], "running"));
    st = api_stop(p[2], "immediate", msg, sizeof(msg));
    CHECK(st == 200, "PATCH /pipelines/%lld {\"stop\": \"immediate\"}: status %d (%s), want 200",
          p[2], st, msg);
    json_decref(wait_job(j[2], "stopped"));
    for (int i = 0; i < 3; i++) {
        CHECK(p[i] < 10 && j[i] < 10,
              "pipeline %lld, job %lld: the table below is for one-digit "
              "ids (a fresh daemon's first)",
              p[i], j[i]);
    }

    r = DCTL("list");
    CHECK(r.status == 0, "laminarctl list: exit %d, stderr '%s'", r.status, r.err);
    {
        /* each row without its age, which is checked apart */
        char rows[4][200];
        snprintf(rows[0], sizeof(rows[0]), "%s",
                 "ID  NAME           STATE     JOB  PARALLELISM  RESTARTS  UPDATED");
        snprintf(rows[1], sizeof(rows[1]),
                 "%lld   q1             running   %lld    2            0         ", p[0], j[0]);
        snprintf(rows[2], sizeof(rows[2]),
                 "%lld   a longer name  finished  %lld    1            0         ", p[1], j[1]);
        snprintf(rows[3], sizeof(rows[3]),
                 "%lld   canceled       stopped   %lld    1            0         ", p[2], j[2]);
        for (int i = 0; i < 4; i++) {
            size_t n = strlen(rows[i]);
            snprintf(want, sizeof(want), "%s%s", rows[i], i > 0 ? "<age>" : "");
            CHECK(nth_line(r.out, i, line, sizeof(line)) && strncmp(line, rows[i], n) == 0 &&
                      (i == 0 ? line[n] == '\0' : is_age(line + n)),
                  "laminarctl list, line %d: '%s', want '%s'; its output:\n%s", i + 1, line, want,
                  r.out);
        }
        CHECK(!nth_line(r.out, 4, line, sizeof(line)) && r.out[strlen(r.out) - 1] == '\n',
              "laminarctl list: more than a header and 3 rows, or no final newline:\n%s", r.out);
    }
    run_free(&r);
    stop_daemon();
}
END_TEST

/* The line of text that is exactly line, or NULL. */
static const char *
find_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) {
            return p;
        }
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return NULL;
}

/* Splits a table row at the column starts at[0..n-1] (the header's): true
 * when each cell starts there after a space, is one word, and is followed
 * only by spaces up to the next column (the last one by nothing). */
static bool
row_cells(const char *line, const size_t *at, size_t n, char cells[][80])
{
    size_t len = strlen(line);

    for (size_t k = 0; k < n; k++) {
        size_t end = k + 1 < n ? at[k + 1] : len;
        size_t w;
        if (at[k] >= len || line[at[k]] == ' ' || (k > 0 && line[at[k] - 1] != ' ')) {
            return false;
        }
        w = strcspn(line + at[k], " ");
        if (at[k] + w > end || w >= 80 || strspn(line + at[k] + w, " ") != end - at[k] - w) {
            return false;
        }
        snprintf(cells[k], 80, "%.*s", (int)w, line + at[k]);
    }
    return true;
}

/* A count laminarctl printed: its value, or -1 when it is not a number. */
static long long
count_cell(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return s[0] >= '0' && s[0] <= '9' && *end == '\0' ? v : -1;
}

/* status shows the pipeline, its job and the job's operators with their
 * counts; --json shows the pipeline with the job's full answer in "job". */
START_TEST(test_cli_status)
{
    static const char *const head[] = {"ID", "KIND", "PARALLELISM", "RECORDS_IN", "RECORDS_OUT"};
    char f[700], id[32], want[400], line[300], cells[5][80];
    json_t *job, *ops, *doc;
    long long pid, jid;
    int64_t deadline;
    size_t nops, at[5], first;
    json_error_t jerr;
    run r;

    start_daemon();
    pid =
        submit(nexmark_file("q1", "q1", UNBOUNDED, f, sizeof(f)), "status-q1", "2", "1m30s", &jid);
    snprintf(id, sizeof(id), "%lld", pid);

    /* running, and every operator has counted records: q1's plan is a
     * line (source, calc, sink), so all but the source have some in and
     * all but the sink some out */
    json_decref(wait_job(jid, "running"));
    deadline = lm_test_now_ms() + MS(20000);
    for (;;) {
        bool counted;
        job = api_get("/jobs/%lld", jid);
        ops = json_object_get(job, "operators");
        nops = json_array_size(ops);
        counted = nops >= 2 && strcmp(cp_jstr(job, "state"), "running") == 0;
        for (size_t i = 0; counted && i < nops; i++) {
            json_t *op = json_array_get(ops, i);
            counted = (i == 0 || cp_jint(op, "records_in") > 0) &&
                      (i + 1 == nops || cp_jint(op, "records_out") > 0);
        }
        if (counted) {
            break;
        }
        if (lm_test_now_ms() >= deadline) {
            char *text = json_dumps(job, JSON_COMPACT);
            snprintf(want, sizeof(want), "%.390s", text != NULL ? text : "?");
            free(text);
            json_decref(job);
            cp_fail_at(NULL, __LINE__,
                       "job %lld: not every operator counted records within 20 s: %s", jid, want);
        }
        json_decref(job);
        usleep(50000);
    }
    CHECK(strstr(cp_jstr(job, "placement"), "x2") != NULL,
          "job %lld: placement '%s', want its 2 slots", jid, cp_jstr(job, "placement"));

    /* the fields */
    r = DCTL("status", id);
    CHECK(r.status == 0 && r.err[0] == '\0', "laminarctl status %s: exit %d, stderr '%s'", id,
          r.status, r.err);
    {
        char fields[9][300];
        snprintf(fields[0], sizeof(fields[0]), "pipeline     %lld (status-q1)", pid);
        snprintf(fields[1], sizeof(fields[1]), "version      1");
        snprintf(fields[2], sizeof(fields[2]), "parallelism  2");
        snprintf(fields[3], sizeof(fields[3]), "checkpoints  every 1m30s");
        snprintf(fields[4], sizeof(fields[4]), "stop         none");
        snprintf(fields[5], sizeof(fields[5]), "job          %lld (version 1)", jid);
        snprintf(fields[6], sizeof(fields[6]), "state        running");
        snprintf(fields[7], sizeof(fields[7]), "restarts     0");
        snprintf(fields[8], sizeof(fields[8]), "placement    %.250s", cp_jstr(job, "placement"));
        for (int i = 0; i < 9; i++) {
            CHECK(find_line(r.out, fields[i]) != NULL,
                  "laminarctl status %s: no line '%s' in its output:\n%s", id, fields[i], r.out);
        }
    }

    /* the operators: the header after an empty line, a row for each of
     * the job's operators in the plan's order, columns aligned */
    {
        const char *blank = strstr(r.out, "\n\n");
        int n = 0;
        CHECK(blank != NULL, "laminarctl status %s: no empty line before the operators:\n%s", id,
              r.out);
        while (nth_line(r.out, n, line, sizeof(line)) && line[0] != '\0') {
            n++;
        }
        first = (size_t)n + 1;
        CHECK(nth_line(r.out, (int)first, line, sizeof(line)),
              "laminarctl status %s: no header:\n%s", id, r.out);
        for (size_t k = 0, pos = 0; k < 5; k++) {
            pos += strspn(line + pos, " ");
            at[k] = pos;
            CHECK(strncmp(line + pos, head[k], strlen(head[k])) == 0 &&
                      (k == 0 || (pos >= 2 && strncmp(line + pos - 2, "  ", 2) == 0)),
                  "laminarctl status %s: header '%s', want ID KIND PARALLELISM RECORDS_IN "
                  "RECORDS_OUT",
                  id, line);
            pos += strlen(head[k]);
        }
        CHECK(at[0] == 0 && line[at[4] + strlen(head[4])] == '\0',
              "laminarctl status %s: header '%s', want ID KIND PARALLELISM RECORDS_IN RECORDS_OUT",
              id, line);
        for (size_t i = 0; i < nops; i++) {
            json_t *op = json_array_get(ops, i);
            long long in, out;
            CHECK(nth_line(r.out, (int)(first + 1 + i), line, sizeof(line)) &&
                      row_cells(line, at, 5, cells),
                  "laminarctl status %s: operator row %zu '%s' is not aligned with the header; its "
                  "output:\n%s",
                  id, i + 1, line, r.out);
            in = count_cell(cells[3]);
            out = count_cell(cells[4]);
            CHECK(strcmp(cells[0], cp_jstr(op, "id")) == 0 &&
                      strcmp(cells[1], cp_jstr(op, "kind")) == 0 && strcmp(cells[2], "2") == 0 &&
                      in >= cp_jint(op, "records_in") && out >= cp_jint(op, "records_out") &&
                      (i == 0 || in > 0) && (i + 1 == nops || out > 0),
                  "laminarctl status %s: operator row '%s', want %s %s 2 with counts at least "
                  "%lld in, %lld out; its output:\n%s",
                  id, line, cp_jstr(op, "id"), cp_jstr(op, "kind"), cp_jint(op, "records_in"),
                  cp_jint(op, "records_out"), r.out);
        }
        CHECK(!nth_line(r.out, (int)(first + 1 + nops), line, sizeof(line)),
              "laminarctl status %s: a line after the %zu operators: '%s'", id, nops, line);
    }
    run_free(&r);

    /* --json: the pipeline, the job's whole answer in "job" */
    r = DCTL("--json", "status", id);
    CHECK(r.status == 0, "laminarctl --json status %s: exit %d, stderr '%s'", id, r.status, r.err);
    doc = json_loads(r.out, 0, &jerr);
    CHECK(doc != NULL, "laminarctl --json status %s: not JSON (%s): %.300s", id, jerr.text, r.out);
    CHECK(cp_jint(doc, "id") == pid && strcmp(cp_jstr(doc, "name"), "status-q1") == 0 &&
              cp_jint(json_object_get(doc, "job"), "id") == jid &&
              strcmp(cp_jstr(json_object_get(doc, "job"), "state"), "running") == 0 &&
              json_array_size(json_object_get(json_object_get(doc, "job"), "operators")) == nops,
          "laminarctl --json status %s: want pipeline %lld (status-q1) with job %lld running and "
          "its %zu operators: %.300s",
          id, pid, jid, nops, r.out);
    json_decref(doc);
    json_decref(job);
    run_free(&r);
    stop_daemon();
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
    suite_add_tcase(s, tc);

    /* one laminard standalone per test */
    tc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, daemon_setup, cp_cleanup);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cli_submit_request);
    tcase_add_test(tc, test_cli_cancel);
    tcase_add_test(tc, test_cli_list_table);
    tcase_add_test(tc, test_cli_status);
    suite_add_tcase(s, tc);
    return s;
}
