/*
 * check_standalone.c: `laminard standalone` (controller and one worker in
 * one process, SQLite in its data directory) run for real, as a user runs
 * it: each test starts the daemon with posix_spawn on a free loopback
 * port in a fresh temp directory, drives it with laminarctl and with raw
 * HTTP, and stops it with SIGTERM, expecting exit status 0.
 *
 * A failed check stops every process the test started (which reaps them)
 * and removes its directory before the test fails, and the failure
 * message ends with the end of the daemon's log. The binaries are those
 * of $LM_TEST_BIN (default build/bin); paths are relative to the
 * repository root (or $LM_TEST_ROOT).
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cp_test.h"
#include "lm_test.h"

/* Events of the bounded Nexmark run compared with DuckDB; emitted at
 * ORACLE_RATE per second, so that the job runs for about a second. */
#define ORACLE_EVENTS "400000"
#define ORACLE_RATE   "400000"

static char data_dir[512];    /* the daemon's --data-dir */
static lm_test_proc daemon_p; /* the laminard standalone */
static int port;              /* its API port */
static char server[64];       /* http://127.0.0.1:<port> */
static int starts;            /* daemons started: laminard-<n>.log */
static pid_t oracle = -1;     /* the DuckDB oracle while it runs */

/* The scratch directory, the daemon watched (a failure reports and kills
 * it) and failing: cp_test.h. The oracle is killed on cleanup too. */
static void
kill_oracle(void)
{
    if (oracle > 0) {
        kill(oracle, SIGKILL);
        waitpid(oracle, NULL, 0);
        oracle = -1;
    }
}

static void
setup(void)
{
    cp_setup(2000, kill_oracle);
    snprintf(data_dir, sizeof(data_dir), "%s/data", cp_dir());
    cp_watch(&daemon_p, "laminard", 1400);
    oracle = -1;
    starts = 0;
    port = lm_test_free_port();
    ck_assert_int_gt(port, 0);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", port);
}

/* --- the daemon ---------------------------------------------------------------- */

/* Starts `laminard standalone` on data_dir and port (4 slots, 2 loops, no
 * metrics port) with the extra --set values (NULL-terminated, may be NULL),
 * its output into <dir>/laminard-<n>.log. Does not wait. */
static void
spawn_daemon(const char *const *extra)
{
    char log[600], portset[64];
    const char *args[] = {"standalone", "--data-dir", data_dir, NULL};
    const char *sets[24] = {portset, "metrics.enabled=false", "worker.slots=4", "runtime.loops=2"};
    int n = 4;

    snprintf(log, sizeof(log), "%s/laminard-%d.log", cp_dir(), ++starts);
    snprintf(portset, sizeof(portset), "api.port=%d", port);
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 22; i++) {
        sets[n++] = extra[i];
    }
    sets[n] = NULL;
    cp_laminard_start(&daemon_p, log, args, sets);
}

/* Starts the daemon and waits until its API answers. */
static void
start_daemon(const char *const *extra)
{
    spawn_daemon(extra);
    CHECK(lm_test_api_wait_up(port, &daemon_p, MS(15000)),
          "laminard standalone does not answer on port %d after 15 s (%s)", port,
          lm_test_proc_describe(&daemon_p));
}

/* SIGTERM; the daemon must exit 0 (the running jobs recorded stopped). */
static void
stop_daemon(void)
{
    int st = lm_test_proc_stop(&daemon_p, SIGTERM, MS(20000));
    CHECK(st == 0, "laminard standalone after SIGTERM: %s, want exit status 0",
          lm_test_proc_describe(&daemon_p));
}

/* --- laminarctl and the API ------------------------------------------------------ */

/* Runs `laminarctl --server <server> ARGS...` (NULL-terminated) to its end. */
static void
ctl_at(lm_test_output *o, const char *srv, ...)
{
    char bin[512];
    char *argv[32];
    int n = 0;
    va_list ap;

    argv[n++] = (char *)lm_test_bin("laminarctl", bin, sizeof(bin));
    argv[n++] = "--server";
    argv[n++] = (char *)srv;
    va_start(ap, srv);
    for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    lm_test_run(argv, cp_dir(), MS(30000), o);
}

#define ctl(o, ...) ctl_at((o), server, __VA_ARGS__, (char *)NULL)

/* An API request with a JSON body (NULL: none); the answer in r. */
static void
api(const char *method, const char *path, const char *body, lm_test_http *r)
{
    char full[512];
    snprintf(full, sizeof(full), "/api/v1%s", path);
    lm_test_http_json("127.0.0.1", port, method, full, body, r);
}

/* Writes text into <dir>/name; returns the path (a static buffer). */
static const char *
write_file(const char *name, const char *text)
{
    static char path[700];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", cp_dir(), name);
    f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    CHECK(fclose(f) == 0, "cannot write %s: %s", path, strerror(errno));
    return path;
}

/* Nexmark query q with a file sink into out_dir and the given events
 * options, written to <dir>/<file>; returns its path (a static buffer). */
static const char *
nexmark_file(const char *q, const char *out_dir, const char *events, const char *file)
{
    lm_report r = {.len = 0, .failed = false};
    char *sql = lm_test_nexmark_sql(q, out_dir, events, &r);
    const char *path;

    CHECK(sql != NULL, "%s", r.msg);
    path = write_file(file, sql);
    free(sql);
    return path;
}

/* Submits the SQL file with laminarctl --json; returns the pipeline id and
 * its first job's id in *job. */
static long long
submit(const char *file, const char *name, const char *parallelism, const char *interval,
       long long *job)
{
    lm_test_output o;
    json_error_t jerr;
    json_t *doc;
    long long id;

    ctl(&o, "--json", "submit", file, "--name", name, "--parallelism", parallelism,
        "--checkpoint-interval", interval);
    CHECK(o.status == 0, "laminarctl submit %s: exit %d, stderr: %s", name, o.status, o.err);
    doc = json_loads(o.out, 0, &jerr);
    lm_test_output_free(&o);
    CHECK(doc != NULL, "laminarctl --json submit: not JSON: %s", jerr.text);
    id = cp_jint(doc, "id");
    *job = cp_jint(json_object_get(doc, "job"), "id");
    CHECK(id > 0 && *job > 0 && strcmp(cp_jstr(doc, "name"), name) == 0,
          "laminarctl --json submit: no pipeline id, job id or name in its answer");
    json_decref(doc);
    return id;
}

/* Waits for the job's state; returns GET /jobs/<job> then (json_decref it). */
static json_t *
wait_job(long long job, const char *state, int timeout_ms)
{
    char last[400];
    json_t *doc = lm_test_api_wait_job(port, job, state, timeout_ms, last, sizeof(last));
    CHECK(doc != NULL, "job %lld did not become %s within %d ms; last seen: %s", job, state,
          timeout_ms, last);
    return doc;
}

/* The job's events (json_decref them) and their states, comma-separated. */
static json_t *
events(long long job, char *states, size_t cap)
{
    json_t *ev = lm_test_api_events(port, job, states, cap);
    CHECK(ev != NULL, "GET /api/v1/jobs/%lld/events: no events array", job);
    return ev;
}

/* --- a) a bounded query, compared with DuckDB ---------------------------------------- */

START_TEST(test_standalone_submit_matches_duckdb)
{
    lm_report r = {.len = 0, .failed = false};
    char out[600], dump[600], oracle_out[700], oracle_log[700], bin[512], states[300];
    char *dump_argv[5], *want_text = NULL, **want = NULL;
    const char *sql;
    size_t want_len = 0, nwant = 0;
    lm_test_output o;
    long long pipeline, job;
    bool retract = false, saw_running = false;
    int64_t deadline;
    json_t *doc;

    cp_make_dir("out", out, sizeof(out));
    cp_make_dir("dump", dump, sizeof(dump));
    snprintf(oracle_out, sizeof(oracle_out), "%s/oracle.jsonl", cp_dir());
    snprintf(oracle_log, sizeof(oracle_log), "%s/oracle.log", cp_dir());

    /* the events, dumped by laminard; DuckDB answers while Laminar runs */
    dump_argv[0] = (char *)lm_test_bin("laminard", bin, sizeof(bin));
    dump_argv[1] = "nexmark-dump";
    dump_argv[2] = dump;
    dump_argv[3] = "events.num=" ORACLE_EVENTS;
    dump_argv[4] = NULL;
    lm_test_run(dump_argv, cp_dir(), MS(60000), &o);
    CHECK(o.status == 0, "laminard nexmark-dump: exit %d: %s", o.status, o.err);
    lm_test_output_free(&o);
    oracle = lm_test_oracle_start("q5", dump, oracle_out, oracle_log, &r);
    CHECK(oracle > 0, "%s", r.msg);

    /* q5 (hopping windows and a join) with a file sink, bounded */
    sql = nexmark_file(
        "q5", out, "'events.num' = '" ORACLE_EVENTS "', 'emit.rate' = '" ORACLE_RATE "'", "q5.sql");
    doc = lm_test_nexmark_plan("q5.sql", out, &retract, &r);
    CHECK(doc != NULL, "%s", r.msg);
    json_decref(doc);

    start_daemon(NULL);
    pipeline = submit(sql, "q5", "2", "0", &job);

    /* running (with its operators and placement), then finished */
    deadline = lm_test_now_ms() + MS(60000);
    for (;;) {
        char path[64];
        const char *st;
        snprintf(path, sizeof(path), "/jobs/%lld", job);
        doc = cp_get(port, path);
        st = cp_jstr(doc, "state");
        if (strcmp(st, "running") == 0) {
            json_t *ops = json_object_get(doc, "operators");
            CHECK(json_is_array(ops) && json_array_size(ops) > 0,
                  "GET /jobs/%lld while running: no operators", job);
            CHECK(strstr(cp_jstr(doc, "placement"), "worker") != NULL &&
                      strstr(cp_jstr(doc, "placement"), "x2") != NULL,
                  "GET /jobs/%lld while running: placement '%s', want one worker x2", job,
                  cp_jstr(doc, "placement"));
            saw_running = true;
        }
        if (strcmp(st, "finished") == 0) {
            break;
        }
        CHECK(strcmp(st, "failed") != 0 && strcmp(st, "stopped") != 0, "job %lld ended %s: %s", job,
              st, cp_jstr(doc, "reason"));
        CHECK(lm_test_now_ms() < deadline, "job %lld still %s (%s) after 60 s", job, st,
              cp_jstr(doc, "reason"));
        json_decref(doc);
        usleep(50000);
    }
    CHECK(strcmp(cp_jstr(doc, "reason"), "all input consumed") == 0,
          "job %lld finished with reason '%s', want 'all input consumed'", job,
          cp_jstr(doc, "reason"));
    json_decref(doc);
    CHECK(saw_running, "never saw job %lld running (at %s events/s it runs for about a second)",
          job, ORACLE_RATE);
    json_decref(events(job, states, sizeof(states)));
    CHECK(strcmp(states, "created,scheduling,running,finished") == 0,
          "job %lld went through %s, want created,scheduling,running,finished", job, states);

    /* laminarctl says so too */
    {
        char id[32];
        json_error_t jerr;
        snprintf(id, sizeof(id), "%lld", pipeline);
        ctl(&o, "--json", "status", id);
        CHECK(o.status == 0, "laminarctl status %s: exit %d: %s", id, o.status, o.err);
        doc = json_loads(o.out, 0, &jerr);
        lm_test_output_free(&o);
        CHECK(doc != NULL, "laminarctl --json status: not JSON: %s", jerr.text);
        CHECK(strcmp(cp_jstr(json_object_get(doc, "job"), "state"), "finished") == 0 &&
                  cp_jint(json_object_get(doc, "job"), "id") == job,
              "laminarctl --json status %s: job %lld %s, want job %lld finished", id,
              cp_jint(json_object_get(doc, "job"), "id"),
              cp_jstr(json_object_get(doc, "job"), "state"), job);
        json_decref(doc);
    }

    /* the same rows as DuckDB's */
    {
        bool answered = lm_test_oracle_wait(oracle, oracle_log, MS(120000), &r);
        oracle = -1;
        CHECK(answered, "%s", r.msg);
    }
    want_text = lm_test_read_file(oracle_out, &want_len);
    CHECK(want_text != NULL, "cannot read the oracle's answer %s", oracle_out);
    want = lm_test_split_lines(want_text, want_len, &nwant);
    CHECK(want != NULL && nwant > 0, "the oracle's answer is empty");
    lm_test_compare_dir(out, retract, want, nwant, "q5 run by laminard standalone", "Laminar",
                        "DuckDB", &r);
    free(want);
    free(want_text);
    CHECK(!r.failed, "%s", r.msg);

    stop_daemon();
    cp_cleanup();
}
END_TEST

/* --- b) cancel, history, restart ------------------------------------------------------- */

/* The line of laminarctl list's text that names the pipeline, into line;
 * NULL when none does. */
static const char *
list_line(const char *text, const char *name, char *line, size_t cap)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        snprintf(line, cap, "%.*s", (int)len, p);
        if (strstr(line, name) != NULL) {
            return line;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return NULL;
}

START_TEST(test_standalone_cancel_and_history)
{
    static const char unbounded[] = "'events.num' = '0', 'emit.rate' = '20000'";
    char out_a[600], out_b[600], id_a[32], states[400], line[300], path[64];
    lm_test_output o;
    lm_test_http h;
    long long pa, pb, ja, jb;
    size_t n_a, n_b;
    json_t *doc, *ev_a, *ev_b, *ev;
    const char *msg;
    int64_t deadline;

    cp_make_dir("out-a", out_a, sizeof(out_a));
    cp_make_dir("out-b", out_b, sizeof(out_b));
    start_daemon(NULL);
    /* a is canceled by the user; b runs until the daemon stops */
    pa =
        submit(nexmark_file("q2", out_a, unbounded, "a.sql"), "stopped-by-user", "1", "500ms", &ja);
    pb = submit(nexmark_file("q2", out_b, unbounded, "b.sql"), "running-at-shutdown", "1", "500ms",
                &jb);
    json_decref(wait_job(ja, "running", MS(20000)));
    json_decref(wait_job(jb, "running", MS(20000)));
    cp_wait_lines_above(out_a, 0, MS(20000), "pipeline a");

    /* cancel a */
    snprintf(id_a, sizeof(id_a), "%lld", pa);
    ctl(&o, "cancel", id_a);
    CHECK(o.status == 0, "laminarctl cancel %s: exit %d: %s", id_a, o.status, o.err);
    lm_test_output_free(&o);
    json_decref(wait_job(ja, "stopped", MS(20000)));
    ev_a = events(ja, states, sizeof(states));
    CHECK(strcmp(states, "created,scheduling,running,stopping,stopped") == 0,
          "job %lld of the canceled pipeline went through %s, want "
          "created,scheduling,running,stopping,stopped",
          ja, states);

    /* again: 409, and laminarctl says what the server said */
    snprintf(path, sizeof(path), "/pipelines/%lld", pa);
    api("PATCH", path, "{\"stop\": \"immediate\"}", &h);
    msg = json_string_value(json_object_get(json_object_get(h.json, "error"), "message"));
    CHECK(h.status == 409 && msg != NULL, "PATCH %s again: status %d (%s), want 409", path,
          h.status, h.body != NULL ? h.body : "no answer");
    ctl(&o, "cancel", id_a);
    CHECK(o.status == 1 && strstr(o.err, msg) != NULL,
          "laminarctl cancel %s again: exit %d, stderr '%s'; want exit 1 and '%s'", id_a, o.status,
          o.err, msg);
    lm_test_output_free(&o);
    lm_test_http_free(&h);
    /* b cannot be deleted while it runs */
    snprintf(path, sizeof(path), "/pipelines/%lld", pb);
    api("DELETE", path, NULL, &h);
    CHECK(h.status == 409, "DELETE %s while running: status %d, want 409", path, h.status);
    lm_test_http_free(&h);

    /* stop the daemon with b running; start it again on the same data */
    ev_b = events(jb, NULL, 0);
    n_a = cp_count_lines(out_a);
    stop_daemon();
    start_daemon(NULL);

    /* the history is intact: a's events exactly (laminarctl shows them
     * too), b's as a prefix */
    ev = events(ja, states, sizeof(states));
    CHECK(json_equal(ev, ev_a), "the canceled job's events changed across the restart: now %s",
          states);
    json_decref(ev);
    {
        char id[32];
        json_error_t jerr;
        snprintf(id, sizeof(id), "%lld", ja);
        ctl(&o, "--json", "events", id);
        CHECK(o.status == 0, "laminarctl events %s: exit %d: %s", id, o.status, o.err);
        doc = json_loads(o.out, 0, &jerr);
        lm_test_output_free(&o);
        CHECK(json_equal(json_object_get(doc, "events"), ev_a),
              "laminarctl --json events %s after the restart: not the job's events before it", id);
        json_decref(doc);
    }
    doc = cp_get(port, path);
    CHECK(cp_jint(json_object_get(doc, "job"), "id") == jb,
          "pipeline %lld's job is %lld after the restart, want %lld (resumed, not new)", pb,
          cp_jint(json_object_get(doc, "job"), "id"), jb);
    json_decref(doc);

    /* b runs again: resumed, the same job */
    deadline = lm_test_now_ms() + MS(30000);
    for (;;) {
        size_t nb = json_array_size(ev_b);
        ev = events(jb, states, sizeof(states));
        if (json_array_size(ev) > nb + 1 &&
            strcmp(cp_jstr(json_array_get(ev, json_array_size(ev) - 1), "state"), "running") == 0) {
            break;
        }
        CHECK(lm_test_now_ms() < deadline,
              "job %lld was not running again 30 s after the restart; its events: %s", jb, states);
        json_decref(ev);
        usleep(50000);
    }
    for (size_t i = 0; i < json_array_size(ev_b); i++) {
        CHECK(json_equal(json_array_get(ev, i), json_array_get(ev_b, i)),
              "job %lld's event %zu changed across the restart; its events now: %s", jb, i, states);
    }
    {
        json_t *stopped = json_array_get(ev, json_array_size(ev_b));
        CHECK(strcmp(cp_jstr(stopped, "state"), "stopped") == 0 &&
                  strstr(cp_jstr(stopped, "reason"), "controller shut down") != NULL,
              "job %lld: after its events before the restart comes %s (%s), want stopped "
              "(controller shut down ...); events: %s",
              jb, cp_jstr(stopped, "state"), cp_jstr(stopped, "reason"), states);
        for (size_t i = json_array_size(ev_b) + 1; i + 1 < json_array_size(ev); i++) {
            CHECK(strcmp(cp_jstr(json_array_get(ev, i), "state"), "scheduling") == 0,
                  "job %lld resumed through %s, want stopped, scheduling..., running", jb, states);
        }
        CHECK(json_array_size(ev) >= json_array_size(ev_b) + 3,
              "job %lld: events %s, want scheduling between stopped and running", jb, states);
    }
    json_decref(ev);
    json_decref(ev_b);

    /* laminarctl lists both: b running, a stopped */
    ctl(&o, "list");
    CHECK(o.status == 0, "laminarctl list: exit %d: %s", o.status, o.err);
    CHECK(list_line(o.out, "running-at-shutdown", line, sizeof(line)) != NULL &&
              strstr(line, " running ") != NULL &&
              list_line(o.out, "stopped-by-user", line, sizeof(line)) != NULL &&
              strstr(line, " stopped ") != NULL,
          "laminarctl list after the restart:\n%s\nwant running-at-shutdown running and "
          "stopped-by-user stopped",
          o.out);
    lm_test_output_free(&o);

    /* b writes again; a stays stopped and writes nothing */
    n_b = cp_count_lines(out_b);
    cp_wait_lines_above(out_b, n_b, MS(20000), "the resumed pipeline");
    doc = wait_job(ja, "stopped", MS(1000));
    json_decref(doc);
    CHECK(cp_count_lines(out_a) == n_a,
          "the stopped pipeline wrote %zu lines more after the restart",
          cp_count_lines(out_a) - n_a);
    json_decref(ev_a);

    stop_daemon();
    cp_cleanup();
}
END_TEST

/* --- c) bad requests change nothing ------------------------------------------------------ */

/* One bad request: its status, error code and a part of its message
 * (NULL: any). */
static void
expect_error(const char *method, const char *path, const char *body, int status, const char *code,
             const char *want, int line)
{
    char full[256];
    lm_test_http h;
    const char *c, *m;

    snprintf(full, sizeof(full), "/api/v1%s", path);
    lm_test_http_json("127.0.0.1", port, method, full, body, &h);
    c = json_string_value(json_object_get(json_object_get(h.json, "error"), "code"));
    m = json_string_value(json_object_get(json_object_get(h.json, "error"), "message"));
    if (h.status != status || c == NULL || strcmp(c, code) != 0 || m == NULL ||
        (want != NULL && strstr(m, want) == NULL)) {
        char got[600];
        int st = h.status;
        snprintf(got, sizeof(got), "%.500s", h.body != NULL ? h.body : "(no answer)");
        lm_test_http_free(&h);
        cp_fail_at(NULL, line, "%s %s: status %d, body %s; want %d %s with '%s'", method, path, st,
                   got, status, code, want != NULL ? want : "");
    }
    lm_test_http_free(&h);
}

#define EXPECT_ERROR(method, path, body, status, code, want)                                       \
    expect_error((method), (path), (body), (status), (code), (want), __LINE__)

START_TEST(test_standalone_api_bad_input)
{
    static const char *const small_body[] = {"api.max_body_bytes=4KiB", NULL};
    static const char bad_sql[] = "CREATE TABLE t (a INT) WITH ('connector' = 'nexmark');\n"
                                  "INSERT INTO sink SELEC a FROM t;";
    char out[600], path[64], *sql, *body, *big;
    lm_report r = {.len = 0, .failed = false};
    lm_test_http h;
    json_t *pipelines, *jobs, *doc, *err;
    long long id, job;

    cp_make_dir("out", out, sizeof(out));
    start_daemon(small_body);

    /* one good pipeline, finished */
    sql = lm_test_nexmark_sql("q2", out, "'events.num' = '1000'", &r);
    CHECK(sql != NULL, "%s", r.msg);
    doc = json_pack("{s:s, s:s, s:i}", "name", "good", "query", sql, "parallelism", 1);
    free(sql);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    CHECK(body != NULL && strlen(body) < 4096, "the good pipeline's body does not fit in 4 KiB");
    api("POST", "/pipelines", body, &h);
    CHECK(h.status == 201, "POST /pipelines: status %d (%s), want 201", h.status,
          h.body != NULL ? h.body : "no answer");
    id = cp_jint(h.json, "id");
    job = cp_jint(json_object_get(h.json, "job"), "id");
    lm_test_http_free(&h);
    json_decref(wait_job(job, "finished", MS(20000)));
    pipelines = cp_get(port, "/pipelines");
    jobs = cp_get(port, "/jobs");

    /* bodies: not JSON, wrong types, unknown and missing fields, out of range */
    EXPECT_ERROR("POST", "/pipelines", "{\"name\": \"x\", ", 400, "malformed_json", NULL);
    EXPECT_ERROR("POST", "/pipelines", "{\"name\": 5, \"query\": \"x\"}", 400, "invalid_request",
                 "\"name\"");
    EXPECT_ERROR("POST", "/pipelines",
                 "{\"name\": \"x\", \"query\": \"x\", \"parallelism\": \"2\"}", 400,
                 "invalid_request", "\"parallelism\"");
    EXPECT_ERROR("POST", "/pipelines", "{\"name\": \"x\", \"query\": 7}", 400, "invalid_request",
                 "\"query\"");
    EXPECT_ERROR("POST", "/pipelines", "{\"name\": \"x\", \"query\": \"x\", \"bogus\": 1}", 400,
                 "invalid_request", "\"bogus\"");
    EXPECT_ERROR("POST", "/pipelines", "{\"query\": \"x\"}", 400, "invalid_request", "\"name\"");
    EXPECT_ERROR("POST", "/pipelines", "{\"name\": \"x\"}", 400, "invalid_request", "\"query\"");
    EXPECT_ERROR("POST", "/pipelines", "{\"name\": \"\", \"query\": \"x\"}", 400, "invalid_request",
                 "\"name\"");
    EXPECT_ERROR("POST", "/pipelines", "{\"name\": \"x\", \"query\": \"x\", \"parallelism\": 0}",
                 400, "invalid_request", "\"parallelism\"");
    EXPECT_ERROR("POST", "/pipelines",
                 "{\"name\": \"x\", \"query\": \"x\", \"checkpoint_interval_ms\": -1}", 400,
                 "invalid_request", "\"checkpoint_interval_ms\"");
    EXPECT_ERROR("POST", "/pipelines", "[1, 2]", 400, "invalid_request", NULL);

    /* larger than api.max_body_bytes */
    big = malloc(5000 + 64);
    CHECK(big != NULL, "out of memory");
    snprintf(big, 64, "{\"name\": \"big\", \"query\": \"");
    memset(big + strlen(big), 'a', 5000);
    strcpy(big + strlen("{\"name\": \"big\", \"query\": \"") + 5000, "\"}");
    EXPECT_ERROR("POST", "/pipelines", big, 413, "too_large", NULL);
    free(big);

    /* unknown ids, a bad id, a bad stop */
    EXPECT_ERROR("GET", "/pipelines/999", NULL, 404, "not_found", NULL);
    EXPECT_ERROR("GET", "/jobs/999", NULL, 404, "not_found", NULL);
    EXPECT_ERROR("GET", "/jobs/999/events", NULL, 404, "not_found", NULL);
    EXPECT_ERROR("GET", "/pipelines/999/jobs", NULL, 404, "not_found", NULL);
    EXPECT_ERROR("PATCH", "/pipelines/999", "{\"stop\": \"immediate\"}", 404, "not_found", NULL);
    EXPECT_ERROR("DELETE", "/pipelines/999", NULL, 404, "not_found", NULL);
    EXPECT_ERROR("GET", "/pipelines/abc", NULL, 400, "invalid_request", NULL);
    snprintf(path, sizeof(path), "/pipelines/%lld", id);
    EXPECT_ERROR("PATCH", path, "{\"stop\": \"later\"}", 400, "invalid_request", "\"stop\"");
    EXPECT_ERROR("PATCH", path, "{\"stop\": \"immediate\"}", 409, "conflict", NULL);

    /* invalid SQL: where */
    doc = json_pack("{s:s, s:s}", "name", "bad-sql", "query", bad_sql);
    free(body);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    api("POST", "/pipelines", body, &h);
    err = json_object_get(h.json, "error");
    CHECK(h.status == 400 && strcmp(cp_jstr(err, "code"), "invalid_sql") == 0 &&
              cp_jint(err, "line") == 2 && cp_jint(err, "column") == 18 &&
              strchr(cp_jstr(err, "context"), '^') != NULL,
          "POST invalid SQL: status %d, body %s; want 400 invalid_sql at line 2, column 18 with "
          "a caret",
          h.status, h.body != NULL ? h.body : "(no answer)");
    lm_test_http_free(&h);

    /* the name is taken */
    free(body);
    sql = lm_test_nexmark_sql("q2", out, "'events.num' = '1000'", &r);
    CHECK(sql != NULL, "%s", r.msg);
    doc = json_pack("{s:s, s:s}", "name", "good", "query", sql);
    free(sql);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    EXPECT_ERROR("POST", "/pipelines", body, 409, "conflict", "good");
    free(body);

    /* nothing changed */
    doc = cp_get(port, "/pipelines");
    CHECK(json_equal(doc, pipelines), "GET /pipelines changed after the bad requests");
    json_decref(doc);
    doc = cp_get(port, "/jobs");
    CHECK(json_equal(doc, jobs), "GET /jobs changed after the bad requests");
    json_decref(doc);
    json_decref(pipelines);
    json_decref(jobs);

    stop_daemon();
    cp_cleanup();
}
END_TEST

/* --- d) laminarctl's errors --------------------------------------------------------------- */

START_TEST(test_standalone_cli_errors)
{
    char down[64], line[300];
    const char *bad, *caret;
    lm_test_output o;
    lm_test_http h;
    const char *msg;
    int free_port = lm_test_free_port();

    /* nobody there */
    snprintf(down, sizeof(down), "http://127.0.0.1:%d", free_port);
    ctl_at(&o, down, "list", (char *)NULL);
    CHECK(o.status == 1 && strstr(o.err, "cannot reach") != NULL,
          "laminarctl list with the server down: exit %d, stderr '%s'; want 1, 'cannot reach'",
          o.status, o.err);
    lm_test_output_free(&o);

    start_daemon(NULL);

    /* an unknown pipeline: the server's 404 message */
    api("GET", "/pipelines/999", NULL, &h);
    msg = json_string_value(json_object_get(json_object_get(h.json, "error"), "message"));
    CHECK(h.status == 404 && msg != NULL, "GET /pipelines/999: status %d, want 404", h.status);
    ctl(&o, "status", "999");
    CHECK(o.status == 1 && strstr(o.err, msg) != NULL,
          "laminarctl status 999: exit %d, stderr '%s'; want 1 and '%s'", o.status, o.err, msg);
    lm_test_output_free(&o);
    lm_test_http_free(&h);

    /* a syntax error: where, with a caret under it */
    bad = write_file("bad.sql", "CREATE TABLE t (a INT) WITH ('connector' = 'nexmark');\n"
                                "INSERT INTO sink SELEC a FROM t;\n");
    ctl(&o, "submit", bad);
    CHECK(o.status == 1 && strstr(o.err, "line 2") != NULL && strstr(o.err, "column 18") != NULL,
          "laminarctl submit bad.sql: exit %d, stderr '%s'; want 1, line 2, column 18", o.status,
          o.err);
    /* the offending line, then a caret under column 18 */
    {
        const char *at = strstr(o.err, "INSERT INTO sink SELEC a FROM t;");
        const char *nl = at != NULL ? strchr(at, '\n') : NULL;
        const char *bol = at;
        while (bol != NULL && bol > o.err && bol[-1] != '\n') {
            bol--;
        }
        caret = nl != NULL ? strchr(nl + 1, '^') : NULL;
        snprintf(line, sizeof(line), "%s", o.err);
        CHECK(at != NULL && caret != NULL && caret - (nl + 1) == (at - bol) + 17,
              "laminarctl submit bad.sql: no caret under column 18 of the line in stderr:\n%s",
              line);
    }
    lm_test_output_free(&o);

    /* no such file: a usage error */
    {
        char missing[700];
        snprintf(missing, sizeof(missing), "%s/missing.sql", cp_dir());
        ctl(&o, "submit", missing);
        CHECK(o.status == 2, "laminarctl submit of a missing file: exit %d (stderr '%s'), want 2",
              o.status, o.err);
        lm_test_output_free(&o);
    }

    /* none of these made a pipeline */
    {
        json_t *doc = cp_get(port, "/pipelines");
        CHECK(json_array_size(json_object_get(doc, "pipelines")) == 0,
              "pipelines exist after failed submits");
        json_decref(doc);
    }

    stop_daemon();
    cp_cleanup();
}
END_TEST

/* --- e) refusing to start ----------------------------------------------------------------- */

START_TEST(test_standalone_refuses_taken_port)
{
    static const char *const pg[] = {"database.type=postgres",
                                     "database.postgres.url=postgresql://x@127.0.0.1:1/db",
                                     "database.retry_max=2s", NULL};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    char want[32], *text;
    int64_t t0;
    int fd;

    /* the API port is held by a listening socket of ours */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 4) == 0 &&
              getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
          "cannot listen on a loopback port: %s", strerror(errno));
    port = ntohs(sa.sin_port);
    t0 = lm_test_now_ms();
    spawn_daemon(NULL);
    if (!lm_test_proc_wait(&daemon_p, MS(10000))) {
        close(fd);
        cp_fail_at(NULL, __LINE__,
                   "laminard standalone still runs 10 s after it was given a taken port %d", port);
    }
    close(fd);
    snprintf(want, sizeof(want), "%d", port);
    text = lm_test_read_file(daemon_p.log, NULL);
    CHECK(WIFEXITED(daemon_p.status) && WEXITSTATUS(daemon_p.status) != 0,
          "laminard standalone on a taken port: %s, want a non-zero exit status",
          lm_test_proc_describe(&daemon_p));
    CHECK(text != NULL && strstr(text, want) != NULL,
          "laminard standalone on a taken port: its message does not name port %d", port);
    free(text);
    CHECK(lm_test_now_ms() - t0 < MS(10000), "laminard took %lld ms to give up",
          (long long)(lm_test_now_ms() - t0));

    /* a metadata store that cannot be reached */
    port = lm_test_free_port();
    spawn_daemon(pg);
    CHECK(lm_test_proc_wait(&daemon_p, MS(30000)),
          "laminard standalone still runs 30 s after it was given an unreachable database");
    text = lm_test_read_file(daemon_p.log, NULL);
    CHECK(WIFEXITED(daemon_p.status) && WEXITSTATUS(daemon_p.status) != 0,
          "laminard standalone with an unreachable database: %s, want a non-zero exit status",
          lm_test_proc_describe(&daemon_p));
    CHECK(text != NULL && strstr(text, "127.0.0.1:1/db") != NULL,
          "laminard standalone with an unreachable database: its message does not name it");
    free(text);
    CHECK(lm_test_api_get(port, "/healthz", NULL, NULL, 0) == NULL,
          "something answers on the API port of a laminard that could not start");
    cp_cleanup();
}
END_TEST

Suite *
standalone_suite(void)
{
    Suite *s = suite_create("standalone");
    TCase *tc = tcase_create("standalone");

    tcase_add_checked_fixture(tc, setup, cp_cleanup);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_standalone_submit_matches_duckdb);
    tcase_add_test(tc, test_standalone_cancel_and_history);
    tcase_add_test(tc, test_standalone_api_bad_input);
    tcase_add_test(tc, test_standalone_cli_errors);
    tcase_add_test(tc, test_standalone_refuses_taken_port);
    suite_add_tcase(s, tc);
    return s;
}
