/*
 * check_cluster.c: a Laminar cluster on loopback, run for real: one
 * `laminard controller` and two `laminard worker` processes (posix_spawn),
 * a pipeline spread over both workers, and one worker killed with
 * SIGKILL: the controller must declare it lost within about its
 * heartbeat timeout, restart the job (saying which worker was lost) on
 * the remaining worker, and the job must keep writing output. Then the
 * pipeline is stopped and every process is stopped with SIGTERM,
 * expecting exit status 0.
 *
 * A failed check stops every process the test started (which reaps them)
 * and removes its directory before the test fails; the failure message
 * ends with the end of each daemon's log. The binaries are those of
 * $LM_TEST_BIN (default build/bin).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cp_test.h"
#include "lm_test.h"

#define HEARTBEAT_TIMEOUT_MS 3000
#define NWORKERS             2

static lm_test_proc ctl_p;           /* the controller */
static lm_test_proc wrk_p[NWORKERS]; /* the workers */
static int api_port, rpc_port;

/* The scratch directory, the processes watched (a failure reports and
 * kills them) and failing: cp_test.h. */
static void
setup(void)
{
    cp_setup(1200, NULL);
    cp_watch(&ctl_p, "controller", 1000);
    for (int i = 0; i < NWORKERS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "worker process %d", i + 1);
        cp_watch(&wrk_p[i], name, 600);
    }
}

/* --- helpers ------------------------------------------------------------------ */

/* Starts laminard with the command and --set values (NULL-terminated),
 * its output into <dir>/<name>.log. */
static void
spawn(lm_test_proc *p, const char *name, const char *const *args)
{
    char log[600], run_dir[600], runset[700], ckpt[700];

    snprintf(log, sizeof(log), "%s/%s.log", cp_dir(), name);
    snprintf(run_dir, sizeof(run_dir), "%s/run-%s", cp_dir(), name);
    CHECK(mkdir(run_dir, 0755) == 0, "mkdir %s: %s", run_dir, strerror(errno));
    snprintf(runset, sizeof(runset), "node.run_dir=%s", run_dir);
    snprintf(ckpt, sizeof(ckpt), "checkpointing.url=file://%s/checkpoints", cp_dir());
    {
        const char *sets[] = {"metrics.enabled=false", runset, ckpt, NULL};
        cp_laminard_start(p, log, args, sets);
    }
}

/* The workers in GET /workers, by address: ids, nodes and states. */
typedef struct worker_info {
    char url[64];    /* its worker.rpc_url */
    long long id;    /* its worker id; 0 when not registered */
    long long node;  /* its node id */
    char state[16];  /* alive, lost, left */
    long long slots; /* its slots */
    long long used;  /* used */
} worker_info;

static void
read_workers(worker_info *w, int n)
{
    json_t *doc = cp_get(api_port, "/workers"), *ws = json_object_get(doc, "workers"), *e;
    size_t i;

    for (int k = 0; k < n; k++) {
        w[k].id = 0;
        w[k].state[0] = '\0';
    }
    json_array_foreach(ws, i, e)
    {
        for (int k = 0; k < n; k++) {
            if (strcmp(cp_jstr(e, "address"), w[k].url) == 0) {
                w[k].id = cp_jint(e, "id");
                w[k].node = cp_jint(e, "node");
                w[k].slots = cp_jint(e, "slots");
                w[k].used = cp_jint(e, "slots_used");
                snprintf(w[k].state, sizeof(w[k].state), "%s", cp_jstr(e, "state"));
            }
        }
    }
    json_decref(doc);
}

/* Does text name worker w: "worker <id>" (not a longer number) or its node? */
static bool
names_worker(const char *text, const worker_info *w)
{
    char pat[64];
    const char *at;

    snprintf(pat, sizeof(pat), "%lld", w->node);
    if (strstr(text, pat) != NULL) {
        return true;
    }
    snprintf(pat, sizeof(pat), "worker %lld", w->id);
    for (at = strstr(text, pat); at != NULL; at = strstr(at + 1, pat)) {
        char next = at[strlen(pat)];
        if (next < '0' || next > '9') {
            return true;
        }
    }
    return false;
}

/* --- the test ------------------------------------------------------------------ */

START_TEST(test_cluster_worker_lost)
{
    char ctl_dir[600], out[600], apiset[64], rpcset[96], hbset[64], rpc_addr[64], path[64];
    char states[600], want_a[64], want_b[64], want_all[64];
    worker_info w[NWORKERS];
    const worker_info *victim = &w[1], *survivor = &w[0];
    lm_report r = {.len = 0, .failed = false};
    lm_test_http h;
    json_t *doc, *ev;
    char *sql, *body;
    long long pipeline, job;
    int64_t deadline, t_kill, lost_after = -1;
    size_t n;

    api_port = lm_test_free_port();
    rpc_port = lm_test_free_port();
    CHECK(api_port > 0 && rpc_port > 0 && api_port != rpc_port, "no free ports");
    cp_make_dir("ctl", ctl_dir, sizeof(ctl_dir));
    cp_make_dir("out", out, sizeof(out));

    /* the controller */
    snprintf(apiset, sizeof(apiset), "api.port=%d", api_port);
    snprintf(rpcset, sizeof(rpcset), "controller.rpc_url=tcp://127.0.0.1:%d", rpc_port);
    snprintf(hbset, sizeof(hbset), "controller.heartbeat_timeout=%dms", HEARTBEAT_TIMEOUT_MS);
    {
        const char *args[] = {"controller", "--data-dir", ctl_dir, "--set", apiset,
                              "--set",      rpcset,       "--set", hbset,   NULL};
        spawn(&ctl_p, "controller", args);
    }
    CHECK(lm_test_api_wait_up(api_port, &ctl_p, MS(15000)),
          "laminard controller does not answer on port %d after 15 s (%s)", api_port,
          lm_test_proc_describe(&ctl_p));

    /* two workers, 4 slots each */
    snprintf(rpc_addr, sizeof(rpc_addr), "127.0.0.1:%d", rpc_port);
    for (int i = 0; i < NWORKERS; i++) {
        char name[16], urlset[320];
        int wport = lm_test_free_port();
        CHECK(wport > 0, "no free port");
        snprintf(w[i].url, sizeof(w[i].url), "tcp://127.0.0.1:%d", wport);
        snprintf(urlset, sizeof(urlset), "worker.rpc_url=%s", w[i].url);
        snprintf(name, sizeof(name), "worker%d", i + 1);
        const char *args[] = {"worker",
                              "--controller",
                              rpc_addr,
                              "--set",
                              urlset,
                              "--set",
                              "worker.slots=4",
                              "--set",
                              "runtime.loops=2",
                              "--set",
                              "worker.heartbeat_interval=500ms",
                              NULL};
        spawn(&wrk_p[i], name, args);
    }
    deadline = lm_test_now_ms() + MS(15000);
    for (;;) {
        int alive = 0;
        read_workers(w, NWORKERS);
        for (int i = 0; i < NWORKERS; i++) {
            alive += strcmp(w[i].state, "alive") == 0 && w[i].slots == 4;
            CHECK(!lm_test_proc_wait(&wrk_p[i], 0), "worker process %d exited: %s", i + 1,
                  lm_test_proc_describe(&wrk_p[i]));
        }
        if (alive == NWORKERS) {
            break;
        }
        CHECK(lm_test_now_ms() < deadline,
              "GET /workers does not show both workers alive with 4 slots after 15 s: %s %s, %s "
              "%s",
              w[0].url, w[0].state, w[1].url, w[1].state);
        usleep(50000);
    }
    CHECK(w[0].id != w[1].id, "both workers have id %lld", w[0].id);

    /* an unbounded, rate-limited pipeline at parallelism 4: 2 subtasks each */
    sql = lm_test_nexmark_sql("q2", out, "'events.num' = '0', 'emit.rate' = '20000'", &r);
    CHECK(sql != NULL, "%s", r.msg);
    doc = json_pack("{s:s, s:s, s:i, s:i}", "name", "spread", "query", sql, "parallelism", 4,
                    "checkpoint_interval_ms", 500);
    free(sql);
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    lm_test_http_json("127.0.0.1", api_port, "POST", "/api/v1/pipelines", body, &h);
    free(body);
    CHECK(h.status == 201, "POST /pipelines: status %d: %s", h.status,
          h.body != NULL ? h.body : h.problem);
    pipeline = cp_jint(h.json, "id");
    job = cp_jint(json_object_get(h.json, "job"), "id");
    lm_test_http_free(&h);
    CHECK(pipeline > 0 && job > 0, "POST /pipelines: no pipeline or job id in its answer");

    snprintf(path, sizeof(path), "/jobs/%lld", job);
    snprintf(want_a, sizeof(want_a), "worker %lld x2", w[0].id);
    snprintf(want_b, sizeof(want_b), "worker %lld x2", w[1].id);
    {
        char last[400];
        doc = lm_test_api_wait_job(api_port, job, "running", MS(20000), last, sizeof(last));
        CHECK(doc != NULL, "job %lld not running after 20 s; last seen: %s", job, last);
    }
    CHECK(strstr(cp_jstr(doc, "placement"), want_a) != NULL &&
              strstr(cp_jstr(doc, "placement"), want_b) != NULL,
          "job %lld placed '%s', want %s and %s", job, cp_jstr(doc, "placement"), want_a, want_b);
    json_decref(doc);
    cp_wait_lines_above(out, 0, MS(20000), "before the kill");

    /* kill -9 one worker */
    t_kill = lm_test_now_ms();
    lm_test_proc_stop(&wrk_p[1], SIGKILL, MS(10000));
    CHECK(wrk_p[1].status >= 0 && WIFSIGNALED(wrk_p[1].status) &&
              WTERMSIG(wrk_p[1].status) == SIGKILL,
          "worker process 2 was not killed by SIGKILL: %s", lm_test_proc_describe(&wrk_p[1]));

    /* lost, within about the heartbeat timeout; the other one alive */
    deadline = t_kill + MS(HEARTBEAT_TIMEOUT_MS + 7000);
    for (;;) {
        read_workers(w, NWORKERS);
        if (strcmp(victim->state, "lost") == 0) {
            lost_after = lm_test_now_ms() - t_kill;
            break;
        }
        CHECK(lm_test_now_ms() < deadline,
              "worker %lld (%s) is still %s %lld ms after it was killed; the heartbeat timeout "
              "is %d ms",
              victim->id, victim->url, victim->state, (long long)(lm_test_now_ms() - t_kill),
              HEARTBEAT_TIMEOUT_MS);
        usleep(50000);
    }
    CHECK(strcmp(survivor->state, "alive") == 0, "worker %lld is %s, want alive", survivor->id,
          survivor->state);

    /* the job restarts, naming the lost worker */
    deadline = lm_test_now_ms() + MS(15000);
    for (bool found = false; !found;) {
        size_t i;
        json_t *e;
        ev = lm_test_api_events(api_port, job, states, sizeof(states));
        CHECK(ev != NULL, "GET /jobs/%lld/events: no events", job);
        json_array_foreach(ev, i, e)
        {
            if (strcmp(cp_jstr(e, "state"), "restarting") == 0) {
                CHECK(names_worker(cp_jstr(e, "reason"), victim),
                      "job %lld restarting because '%s': it names neither worker %lld nor its "
                      "node %lld",
                      job, cp_jstr(e, "reason"), victim->id, victim->node);
                found = true;
            }
        }
        json_decref(ev);
        CHECK(found || lm_test_now_ms() < deadline,
              "job %lld has no restarting event 15 s after worker %lld was lost; events: %s", job,
              victim->id, states);
        if (!found) {
            usleep(50000);
        }
    }

    /* running again, all on the remaining worker */
    snprintf(want_all, sizeof(want_all), "worker %lld x4", survivor->id);
    deadline = lm_test_now_ms() + MS(30000);
    for (;;) {
        doc = cp_get(api_port, path);
        if (strcmp(cp_jstr(doc, "state"), "running") == 0 &&
            strcmp(cp_jstr(doc, "placement"), want_all) == 0) {
            break;
        }
        CHECK(strcmp(cp_jstr(doc, "state"), "failed") != 0 &&
                  strcmp(cp_jstr(doc, "state"), "stopped") != 0,
              "job %lld %s after the worker was lost: %s", job, cp_jstr(doc, "state"),
              cp_jstr(doc, "reason"));
        CHECK(lm_test_now_ms() < deadline,
              "job %lld is %s (%s), placed '%s', 30 s after the worker was lost; want running, "
              "placed '%s'",
              job, cp_jstr(doc, "state"), cp_jstr(doc, "reason"), cp_jstr(doc, "placement"),
              want_all);
        json_decref(doc);
        usleep(50000);
    }
    CHECK(cp_jint(doc, "restarts") >= 1, "job %lld running again with restarts %lld, want >= 1",
          job, cp_jint(doc, "restarts"));
    json_decref(doc);
    ev = lm_test_api_events(api_port, job, states, sizeof(states));
    CHECK(ev != NULL, "GET /jobs/%lld/events: no events", job);
    json_decref(ev);
    CHECK(strncmp(states, "created,scheduling,running,restarting,scheduling,", 49) == 0 &&
              strcmp(states + strlen(states) - 8, ",running") == 0,
          "job %lld went through %s; want created,scheduling,running,restarting,scheduling,..., "
          "running",
          job, states);

    /* and keeps writing */
    n = cp_count_lines(out);
    cp_wait_lines_above(out, n, MS(20000), "after the restart");

    /* stop it */
    snprintf(path, sizeof(path), "/api/v1/pipelines/%lld", pipeline);
    lm_test_http_json("127.0.0.1", api_port, "PATCH", path, "{\"stop\": \"immediate\"}", &h);
    CHECK(h.status == 200, "PATCH %s stop: status %d: %s", path, h.status,
          h.body != NULL ? h.body : h.problem);
    lm_test_http_free(&h);
    {
        char last[400];
        doc = lm_test_api_wait_job(api_port, job, "stopped", MS(20000), last, sizeof(last));
        CHECK(doc != NULL, "job %lld not stopped 20 s after PATCH stop; last seen: %s", job, last);
        json_decref(doc);
    }

    /* every process exits 0 on SIGTERM */
    CHECK(lm_test_proc_stop(&wrk_p[0], SIGTERM, MS(20000)) == 0,
          "worker process 1 after SIGTERM: %s, want exit status 0",
          lm_test_proc_describe(&wrk_p[0]));
    CHECK(lm_test_proc_stop(&ctl_p, SIGTERM, MS(20000)) == 0,
          "the controller after SIGTERM: %s, want exit status 0", lm_test_proc_describe(&ctl_p));
    if (getenv("LM_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "cluster: worker %lld lost %lld ms after its kill\n", victim->id,
                (long long)lost_after);
    }
    cp_cleanup();
}
END_TEST

Suite *
cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("cluster");

    tcase_add_checked_fixture(tc, setup, cp_cleanup);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cluster_worker_lost);
    suite_add_tcase(s, tc);
    return s;
}
