/*
 * check_ms_actor.c: the metastore actor (actors/metastore/lm_ms_actor.h).
 * Each test starts a runtime with the actor on a fresh store and talks to
 * it as the other actors do: MS_CALLs from a probe, MS_REPLYs checked;
 * and as the REST API does: a real lm_api whose handlers defer and pass
 * the pending request in MS_CALL, driven by a small blocking HTTP client.
 *
 * The tcase "sqlite" runs on a temp SQLite file. The tcase "postgres"
 * runs on a real PostgreSQL server (lm_test_pg_start, started by its
 * unchecked fixture) which the tests stop and start again while the
 * actor runs, to see requests wait for the store and complete once it is
 * back, or fail with LM_ECLOSED (503) when they waited too long.
 */
#include <arpa/inet.h>
#include <check.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "lm_api.h"
#include "lm_log.h"
#include "lm_ms_actor.h"
#include "lm_storage.h"
#include "lm_test.h"

#define PLAN_TEXT "{\"operators\":[{\"id\":\"src\",\"kind\":\"impulse\"}],\"edges\":[]}"

static lm_rt *rt;
static lm_addr ms_addr;
static lm_probe *probe;
static lm_api *api;
static int port;
static uint64_t tags;      /* the last tag used */
static char dir[128];      /* the test's temp dir */
static char url[512];      /* its store */
static lm_test_pg pg;      /* the postgres tcase's server */
static bool pg_tcase;      /* set by the postgres tcase's fixture */
static int seq;            /* numbers PostgreSQL databases */
static char log_path[256]; /* the log file of the test, "" when logging is off */

static int
deadline_ms(int ms)
{
    return ms * lm_test_slowdown();
}

/* --- fixtures ------------------------------------------------------------ */

static void
setup(void)
{
    lm_rt_opts o = {0, 2, 0, "ms-actor-test"};
    lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, false, NULL};

    lm_log_configure(&lo, NULL);
    log_path[0] = '\0';
    tags = 0;
    api = NULL;
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
    if (pg_tcase) {
        char name[64];
        ck_assert_msg(pg.port > 0 && pg.problem[0] == '\0', "PostgreSQL tests cannot run: %s",
                      pg.problem);
        /* a test that failed while the server was stopped left it so */
        char admin[128];
        snprintf(admin, sizeof(admin), "host=127.0.0.1 port=%d user=postgres dbname=postgres",
                 pg.port);
        if (PQping(admin) != PQPING_OK) {
            pg.up = false;
            ck_assert_msg(lm_test_pg_resume(&pg) == 0, "%s", pg.problem);
        }
        snprintf(name, sizeof(name), "msa_%d_%d", (int)getpid(), ++seq);
        ck_assert_msg(lm_test_pg_createdb(&pg, name, url, sizeof(url)) == 0, "%s", pg.problem);
    } else {
        snprintf(url, sizeof(url), "sqlite://%s/laminar.db", dir);
    }
    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    probe = lm_probe_new(rt, -1);
    ck_assert_ptr_nonnull(probe);
}

static void
teardown(void)
{
    lm_api_stop(api);
    api = NULL;
    lm_rt_free(rt, 5000);
    rt = NULL;
    lm_probe_free(probe);
    probe = NULL;
    lm_log_opts lo = {LM_LOG_OFF, LM_LOG_TEXT, false, false, NULL};
    lm_log_configure(&lo, NULL);
    lm_log_shutdown();
    lm_storage_remove_tree(dir, NULL);
    lm_msg_pool_trim();
}

static void
pg_fixture_start(void)
{
    pg_tcase = true;
    lm_test_pg_start(&pg); /* a failure is reported by each test */
}

static void
pg_fixture_stop(void)
{
    lm_test_pg_stop(&pg);
    pg_tcase = false;
}

/* Spawns the actor on url; retry_max_ms 0 = its default. */
static void
start_actor(int64_t retry_max_ms)
{
    lm_ms_actor_opts o = LM_MS_ACTOR_OPTS_DEFAULTS;
    lm_error err;

    o.url = url;
    o.retry_max_ms = retry_max_ms;
    ck_assert_msg(lm_ms_actor_spawn(rt, &o, &ms_addr, &err) == LM_OK, "%s", err.msg);
    lm_addr found;
    ck_assert_int_eq(lm_rt_whereis(rt, LM_MS_ACTOR_NAME, &found), LM_OK);
    ck_assert(lm_addr_eq(found, ms_addr));
}

/* --- calls from the probe ------------------------------------------------- */

/* Sends op with args (JSON text, NULL = none) and extra (JSON text or
 * NULL); returns its tag. */
static uint64_t
send_call(const char *op, const char *args, const char *extra)
{
    json_t *a = args != NULL ? json_loads(args, 0, NULL) : NULL;
    json_t *x = extra != NULL ? json_loads(extra, 0, NULL) : NULL;
    uint64_t tag = ++tags;

    ck_assert_msg(args == NULL || a != NULL, "bad test JSON: %s", args);
    ck_assert_int_eq(lm_ms_call(rt, lm_probe_addr(probe), ms_addr, op, tag, a, NULL, x), LM_OK);
    json_decref(a);
    json_decref(x);
    return tag;
}

/* Sends an MS_CALL with raw args and extra texts. */
static uint64_t
send_raw(const char *op, const char *args, const char *extra)
{
    lm_ms_call_msg m = {lm_str_c(op), ++tags, lm_str_c(args), 0, lm_str_c(extra)};

    ck_assert_int_eq(lm_rt_tell_as(rt, lm_probe_addr(probe), ms_addr, LM_MT_MS_CALL, &m), LM_OK);
    return tags;
}

/* Waits for the reply of tag (they come in order); returns its result
 * (NULL on error) with *code and the error message in errbuf. */
static json_t *
wait_reply(uint64_t tag, int timeout_ms, int *code, char *errbuf, size_t cap)
{
    lm_msg *m = lm_probe_wait(probe, LM_MT_MS_REPLY, deadline_ms(timeout_ms));
    uint64_t got;
    char *error = NULL;
    json_t *result = NULL;

    ck_assert_msg(m != NULL, "no MS_REPLY for tag %llu within %d ms", (unsigned long long)tag,
                  timeout_ms);
    ck_assert_int_eq(lm_ms_reply_decode(m, &got, code, &error, &result), LM_OK);
    lm_msg_release(m);
    ck_assert_msg(got == tag, "reply for tag %llu, expected %llu", (unsigned long long)got,
                  (unsigned long long)tag);
    snprintf(errbuf, cap, "%s", error);
    free(error);
    ck_assert((*code == LM_OK) == (result != NULL));
    return result;
}

/* One call that must succeed; returns its result. */
static json_t *
ok(const char *op, const char *args)
{
    char e[LM_ERROR_MSG_MAX];
    int code;
    json_t *r = wait_reply(send_call(op, args, NULL), 10000, &code, e, sizeof(e));

    ck_assert_msg(code == LM_OK, "%s %s: %s: %s", op, args ? args : "", lm_errname(code), e);
    return r;
}

/* One call that must fail with code want and a message containing each
 * of the NULL-terminated words. */
static void
fails(const char *op, const char *args, int want, const char *word, const char *word2)
{
    char e[LM_ERROR_MSG_MAX];
    int code;
    json_t *r = wait_reply(send_call(op, args, NULL), 10000, &code, e, sizeof(e));

    ck_assert_msg(code == want, "%s %s: %s (%s), expected %s", op, args ? args : "",
                  lm_errname(code), e, lm_errname(want));
    ck_assert_ptr_null(r);
    ck_assert_msg(word == NULL || strstr(e, word) != NULL, "%s: no '%s' in: %s", op, word, e);
    ck_assert_msg(word2 == NULL || strstr(e, word2) != NULL, "%s: no '%s' in: %s", op, word2, e);
}

static json_int_t
iget(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "no integer \"%s\"", key);
    return json_integer_value(v);
}

static const char *
sget(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_string(v), "no string \"%s\"", key);
    return json_string_value(v);
}

/* Creates a pipeline; returns its id, and its job's in *job. */
static json_int_t
create(const char *name, json_int_t *job)
{
    json_t *a = json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", name, "query", "SELECT 1",
                          "parallelism", 2, "checkpoint_interval_ms", 1000, "plan", PLAN_TEXT);
    char *args = json_dumps(a, 0);
    json_t *p = ok("pipeline.create", args);
    json_int_t id = iget(p, "id");

    if (job != NULL) {
        *job = iget(json_object_get(p, "job"), "id");
    }
    json_decref(p);
    json_decref(a);
    free(args);
    return id;
}

/* Sets job id's state (no expect); frees the result. */
static void
set_state(json_int_t id, const char *state)
{
    char args[200];
    snprintf(args, sizeof(args), "{\"id\": %lld, \"state\": \"%s\"}", (long long)id, state);
    json_decref(ok("job.set_state", args));
}

/* --- tests: the ops ---------------------------------------------------------- */

START_TEST(test_ms_actor_pipeline_lifecycle)
{
    char args[512];
    json_t *p, *j, *l, *ev;

    start_actor(0);
    snprintf(args, sizeof(args),
             "{\"name\": \"q5\", \"query\": \"SELECT * FROM bids\", \"parallelism\": 2, "
             "\"checkpoint_interval_ms\": 1000, \"plan\": \"{\\\"operators\\\": []}\"}");
    p = ok("pipeline.create", args);
    json_int_t id = iget(p, "id");
    ck_assert_int_gt(id, 0);
    ck_assert_str_eq(sget(p, "name"), "q5");
    ck_assert_str_eq(sget(p, "query"), "SELECT * FROM bids");
    ck_assert_int_eq(iget(p, "parallelism"), 2);
    ck_assert_int_eq(iget(p, "checkpoint_interval_ms"), 1000);
    ck_assert_str_eq(sget(p, "stop"), "none");
    ck_assert_int_eq(iget(p, "version"), 1);
    ck_assert_int_gt(iget(p, "created_at"), 1600000000000LL);
    ck_assert_int_ge(iget(p, "updated_at"), iget(p, "created_at"));
    ck_assert_uint_eq(json_object_size(p), 10);
    j = json_object_get(p, "job");
    ck_assert(json_is_object(j));
    json_int_t job = iget(j, "id");
    ck_assert_int_eq(iget(j, "pipeline_id"), id);
    ck_assert_int_eq(iget(j, "version"), 1);
    ck_assert_str_eq(sget(j, "state"), "created");
    ck_assert_str_eq(sget(j, "reason"), "");
    ck_assert_int_eq(iget(j, "restarts"), 0);
    ck_assert_uint_eq(json_object_size(j), 8);

    /* get answers the same object */
    snprintf(args, sizeof(args), "{\"id\": %lld}", (long long)id);
    json_t *g = ok("pipeline.get", args);
    ck_assert_msg(json_equal(g, p), "get differs from create: %s", json_dumps(g, 0));
    json_decref(g);
    json_decref(p);

    /* a second pipeline; the list has both, by id, each with its job */
    json_int_t id2 = create("other", NULL);
    l = ok("pipeline.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "pipelines")), 2);
    ck_assert_int_eq(iget(json_array_get(json_object_get(l, "pipelines"), 0), "id"), id);
    ck_assert_int_eq(iget(json_array_get(json_object_get(l, "pipelines"), 1), "id"), id2);
    ck_assert_int_eq(
        iget(json_object_get(json_array_get(json_object_get(l, "pipelines"), 0), "job"), "id"),
        job);
    json_decref(l);

    /* a name taken */
    snprintf(args, sizeof(args), "{\"name\": \"q5\", \"query\": \"SELECT 2\", \"plan\": \"{}\"}");
    fails("pipeline.create", args, LM_EEXIST, NULL, NULL);

    /* stop */
    snprintf(args, sizeof(args), "{\"id\": %lld, \"stop\": \"graceful\"}", (long long)id);
    p = ok("pipeline.set_stop", args);
    ck_assert_str_eq(sget(p, "stop"), "graceful");
    json_decref(p);
    snprintf(args, sizeof(args), "{\"id\": %lld, \"stop\": \"later\"}", (long long)id);
    fails("pipeline.set_stop", args, LM_EINVAL, "\"stop\"", "pipeline.set_stop");
    fails("pipeline.set_stop", "{\"id\": 999, \"stop\": \"immediate\"}", LM_ENOTFOUND, "999", NULL);

    /* job states: expect mismatch, then the real changes */
    snprintf(args, sizeof(args),
             "{\"id\": %lld, \"state\": \"running\", \"expect\": \"scheduling\"}", (long long)job);
    fails("job.set_state", args, LM_ESTATE, "scheduling", "created");
    snprintf(args, sizeof(args),
             "{\"id\": %lld, \"state\": \"scheduling\", \"expect\": \"created\"}", (long long)job);
    j = ok("job.set_state", args);
    ck_assert_str_eq(sget(j, "state"), "scheduling");
    json_decref(j);
    snprintf(args, sizeof(args), "{\"id\": %lld, \"state\": \"running\", \"reason\": \"placed\"}",
             (long long)job);
    json_decref(ok("job.set_state", args));
    snprintf(args, sizeof(args),
             "{\"id\": %lld, \"state\": \"restarting\", \"reason\": \"worker lost\", "
             "\"restart\": true}",
             (long long)job);
    j = ok("job.set_state", args);
    ck_assert_int_eq(iget(j, "restarts"), 1);
    ck_assert_str_eq(sget(j, "reason"), "worker lost");
    json_decref(j);
    snprintf(args, sizeof(args), "{\"id\": %lld, \"state\": \"finished\"}", (long long)job);
    json_decref(ok("job.set_state", args));
    snprintf(args, sizeof(args), "{\"id\": %lld}", (long long)job);
    j = ok("job.get", args);
    ck_assert_str_eq(sget(j, "state"), "finished");
    ck_assert_int_eq(iget(j, "pipeline_id"), id);
    json_decref(j);

    /* the events, oldest first */
    ev = ok("job.events", args);
    static const char *const want[] = {"created", "scheduling", "running", "restarting",
                                       "finished"};
    json_t *a = json_object_get(ev, "events");
    ck_assert_uint_eq(json_array_size(a), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *e = json_array_get(a, i);
        ck_assert_str_eq(sget(e, "state"), want[i]);
        ck_assert_int_eq(iget(e, "job_id"), job);
        ck_assert_int_gt(iget(e, "at"), 0);
        ck_assert_uint_eq(json_object_size(e), 5);
        if (i > 0) {
            ck_assert_int_gt(iget(e, "id"), iget(json_array_get(a, i - 1), "id"));
        }
    }
    ck_assert_str_eq(sget(json_array_get(a, 2), "reason"), "placed");
    json_decref(ev);

    /* job lists */
    snprintf(args, sizeof(args), "{\"id\": %lld}", (long long)id);
    l = ok("pipeline.jobs", args);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "jobs")), 1);
    ck_assert_int_eq(iget(json_array_get(json_object_get(l, "jobs"), 0), "id"), job);
    json_decref(l);
    l = ok("job.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "jobs")), 2);
    json_decref(l);
    fails("job.events", "{\"id\": 4242}", LM_ENOTFOUND, NULL, NULL);

    /* delete */
    p = ok("pipeline.delete", args);
    ck_assert_int_eq(iget(p, "deleted"), id);
    ck_assert_uint_eq(json_object_size(p), 1);
    json_decref(p);
    fails("pipeline.get", args, LM_ENOTFOUND, NULL, NULL);
    fails("pipeline.delete", args, LM_ENOTFOUND, NULL, NULL);
    snprintf(args, sizeof(args), "{\"id\": %lld}", (long long)job);
    fails("job.get", args, LM_ENOTFOUND, NULL, NULL);
    l = ok("pipeline.list", "{}");
    ck_assert_uint_eq(json_array_size(json_object_get(l, "pipelines")), 1);
    json_decref(l);
}
END_TEST

START_TEST(test_ms_actor_resumable)
{
    json_int_t stopped_job, finished_job, asked_job, failed_job, running_job, fresh_job;
    char args[200];

    start_actor(0);
    json_int_t stopped = create("stopped", &stopped_job);
    create("finished", &finished_job);
    json_int_t asked = create("asked_to_stop", &asked_job);
    create("failed", &failed_job);
    json_int_t running = create("running", &running_job);
    json_int_t fresh = create("fresh", &fresh_job);

    set_state(stopped_job, "running");
    set_state(stopped_job, "stopped"); /* stopped by the controller's own exit: stop none */
    set_state(finished_job, "running");
    set_state(finished_job, "finished");
    set_state(asked_job, "running");
    snprintf(args, sizeof(args), "{\"id\": %lld, \"stop\": \"immediate\"}", (long long)asked);
    json_decref(ok("pipeline.set_stop", args));
    set_state(failed_job, "failed");
    set_state(running_job, "running");

    json_t *r = ok("jobs.resumable", NULL);
    json_t *a = json_object_get(r, "jobs");
    ck_assert_msg(json_array_size(a) == 3, "%s", json_dumps(r, 0));
    json_int_t want_p[] = {stopped, running, fresh};
    json_int_t want_j[] = {stopped_job, running_job, fresh_job};
    const char *want_s[] = {"stopped", "running", "created"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(a, i);
        ck_assert_uint_eq(json_object_size(e), 3);
        ck_assert_int_eq(iget(json_object_get(e, "pipeline"), "id"), want_p[i]);
        ck_assert_int_eq(iget(json_object_get(e, "job"), "id"), want_j[i]);
        ck_assert_str_eq(sget(json_object_get(e, "job"), "state"), want_s[i]);
        ck_assert_int_eq(iget(json_object_get(json_object_get(e, "pipeline"), "job"), "id"),
                         want_j[i]);
        ck_assert_str_eq(sget(e, "plan"), PLAN_TEXT);
    }
    json_decref(r);
}
END_TEST

START_TEST(test_ms_actor_workers)
{
    json_t *w, *l;

    start_actor(0);
    w = ok("worker.register",
           "{\"address\": \"tcp://127.0.0.1:6669\", \"data_address\": \"tcp://127.0.0.1:6670\", "
           "\"slots\": 4}");
    json_int_t id = iget(w, "id");
    ck_assert_int_gt(id, 0);
    ck_assert_str_eq(sget(w, "address"), "tcp://127.0.0.1:6669");
    ck_assert_str_eq(sget(w, "data_address"), "tcp://127.0.0.1:6670");
    ck_assert_int_eq(iget(w, "slots"), 4);
    ck_assert_str_eq(sget(w, "state"), "alive");
    ck_assert_int_gt(iget(w, "last_heartbeat_at"), 0);
    ck_assert_int_gt(iget(w, "registered_at"), 0);
    json_decref(w);
    /* registering again keeps the id */
    w = ok("worker.register",
           "{\"address\": \"tcp://127.0.0.1:6669\", \"data_address\": \"x\", \"slots\": 8}");
    ck_assert_int_eq(iget(w, "id"), id);
    ck_assert_int_eq(iget(w, "slots"), 8);
    json_decref(w);

    char args[128];
    snprintf(args, sizeof(args), "{\"id\": %lld}", (long long)id);
    w = ok("worker.heartbeat", args);
    ck_assert_uint_eq(json_object_size(w), 0);
    json_decref(w);
    snprintf(args, sizeof(args), "{\"id\": %lld, \"state\": \"lost\"}", (long long)id);
    json_decref(ok("worker.set_state", args));
    fails("worker.heartbeat", "{\"id\": 77}", LM_ENOTFOUND, NULL, NULL);
    fails("worker.register", "{\"address\": \"a\", \"data_address\": \"b\"}", LM_EINVAL,
          "\"slots\"", NULL);
    l = ok("worker.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "workers")), 1);
    ck_assert_str_eq(sget(json_array_get(json_object_get(l, "workers"), 0), "state"), "lost");
    json_decref(l);
}
END_TEST

START_TEST(test_ms_actor_bad_input)
{
    char e[LM_ERROR_MSG_MAX];
    int code;

    start_actor(0);
    /* args that are not JSON, or not an object */
    ck_assert_ptr_null(
        wait_reply(send_raw("pipeline.get", "{\"id\": ", ""), 5000, &code, e, sizeof(e)));
    ck_assert_int_eq(code, LM_EINVAL);
    ck_assert_msg(strstr(e, "pipeline.get") != NULL && strstr(e, "JSON") != NULL, "%s", e);
    ck_assert_ptr_null(wait_reply(send_raw("job.list", "[1]", ""), 5000, &code, e, sizeof(e)));
    ck_assert_int_eq(code, LM_EINVAL);
    /* extra that is not an object: refused before anything runs */
    ck_assert_ptr_null(wait_reply(
        send_raw("pipeline.create", "{\"name\": \"n\", \"query\": \"q\", \"plan\": \"\"}", "nope"),
        5000, &code, e, sizeof(e)));
    ck_assert_int_eq(code, LM_EINVAL);
    ck_assert_msg(strstr(e, "extra") != NULL, "%s", e);
    /* missing, wrongly typed and unknown members, named */
    fails("pipeline.get", "{}", LM_EINVAL, "pipeline.get", "\"id\"");
    fails("pipeline.get", "{\"id\": \"7\"}", LM_EINVAL, "pipeline.get", "\"id\"");
    fails("pipeline.get", "{\"id\": 0}", LM_EINVAL, "positive", "\"id\"");
    fails("job.set_state", "{\"id\": 1, \"state\": \"running\", \"expected\": \"created\"}",
          LM_EINVAL, "job.set_state", "\"expected\"");
    fails("job.set_state", "{\"id\": 1, \"state\": \"running\", \"restart\": 1}", LM_EINVAL,
          "\"restart\"", NULL);
    fails("pipeline.create", "{\"name\": \"n\", \"query\": \"q\"}", LM_EINVAL, "pipeline.create",
          "\"plan\"");
    fails("pipeline.create", "{\"name\": \"n\", \"query\": \"q\", \"plan\": {}}", LM_EINVAL,
          "\"plan\"", "string");
    fails("pipeline.create", "{\"name\": \"\", \"query\": \"q\", \"plan\": \"\"}", LM_EINVAL, NULL,
          NULL);
    fails("pipeline.create",
          "{\"name\": \"n\", \"query\": \"q\", \"plan\": \"\", \"parallelism\": 0}", LM_EINVAL,
          NULL, NULL);
    /* an unknown op */
    fails("pipeline.explode", NULL, LM_EINVAL, "pipeline.explode", NULL);

    /* a message that does not decode as MS_CALL is dropped; the actor lives on */
    lm_ms_reply_msg bogus = {1, 2, lm_str_c("x"), lm_str_c("y")};
    lm_msg *m;
    ck_assert_int_eq(lm_proto_encode(LM_MT_MS_REPLY, lm_probe_addr(probe), ms_addr, &bogus, &m),
                     LM_OK);
    m->type = LM_MT_MS_CALL;
    ck_assert_int_eq(lm_send(rt, m), LM_OK);
    /* a call without tag: run, not answered */
    ck_assert_int_eq(
        lm_ms_call(rt, lm_probe_addr(probe), ms_addr, "worker.list", 0, NULL, NULL, NULL), LM_OK);
    json_t *l = ok("pipeline.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "pipelines")), 0);
    json_decref(l);
    ck_assert_int_eq(lm_probe_pending(probe), 0);

    /* nothing half-made remains of the failed creates */
    l = ok("job.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "jobs")), 0);
    json_decref(l);

    /* the caller's own mistakes */
    json_t *arr = json_array();
    ck_assert_int_eq(lm_ms_call(rt, lm_probe_addr(probe), ms_addr, "job.list", 1, arr, NULL, NULL),
                     LM_EINVAL);
    json_decref(arr);
    ck_assert_int_eq(lm_ms_call(rt, lm_probe_addr(probe), (lm_addr){lm_rt_node(rt), 999999},
                                "job.list", 1, NULL, NULL, NULL),
                     LM_ENOACTOR);
    /* a reply that is not one */
    ck_assert_int_eq(lm_proto_encode(LM_MT_MS_REPLY, ms_addr, ms_addr, &bogus, &m), LM_OK);
    ck_assert_int_eq(lm_ms_reply_decode(m, NULL, NULL, NULL, NULL), LM_OK);
    json_t *res;
    bogus.code = LM_OK;
    lm_msg_release(m);
    ck_assert_int_eq(lm_proto_encode(LM_MT_MS_REPLY, ms_addr, ms_addr, &bogus, &m), LM_OK);
    ck_assert_int_eq(lm_ms_reply_decode(m, NULL, NULL, NULL, &res), LM_EPROTO);
    lm_msg_release(m);
    lm_stop_msg sm = {lm_str_c("x")};
    ck_assert_int_eq(lm_proto_encode(LM_MT_STOP, ms_addr, ms_addr, &sm, &m), LM_OK);
    ck_assert_int_eq(lm_ms_reply_decode(m, NULL, NULL, NULL, &res), LM_ETYPE);
    lm_msg_release(m);
}
END_TEST

START_TEST(test_ms_actor_extra_merged)
{
    json_int_t job;
    char args[100], e[LM_ERROR_MSG_MAX];
    int code;

    start_actor(0);
    create("p", &job);
    snprintf(args, sizeof(args), "{\"id\": %lld}", (long long)job);
    json_t *j = wait_reply(
        send_call("job.get", args, "{\"operators\": [{\"id\": \"bids\"}], \"placement\": \"w1\"}"),
        5000, &code, e, sizeof(e));
    ck_assert_int_eq(code, LM_OK);
    ck_assert_str_eq(sget(j, "placement"), "w1");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "operators")), 1);
    ck_assert_str_eq(sget(j, "state"), "created");
    json_decref(j);
}
END_TEST

/* --- the REST path -------------------------------------------------------------- */

typedef struct route_op {
    const char *op;
    bool body;  /* the request body is the args */
    bool extra; /* add {"placement": "here"} */
} route_op;

static int
ms_handler(const lm_api_req *req, lm_api_resp *resp, void *arg)
{
    const route_op *ro = arg;
    const char *id = lm_api_param(req, "id");
    json_t *args = ro->body && req->body != NULL ? json_deep_copy(req->body) : json_object();
    json_t *extra = ro->extra ? json_pack("{s:s}", "placement", "here") : NULL;
    lm_api_pending *p;
    int rv;

    (void)resp;
    if (id != NULL) {
        json_object_set_new(args, "id", json_integer(strtoll(id, NULL, 10)));
    }
    if ((rv = lm_api_defer(req, &p)) == LM_OK &&
        (rv = lm_ms_call(rt, lm_api_addr(req->api), ms_addr, ro->op, 0, args, p, extra)) != LM_OK) {
        lm_api_complete_error(p, 503, "unavailable", "%s", lm_strerror(rv));
    }
    json_decref(args);
    json_decref(extra);
    return rv;
}

static const route_op r_create = {"pipeline.create", true, false};
static const route_op r_get = {"pipeline.get", false, false};
static const route_op r_delete = {"pipeline.delete", false, false};
static const route_op r_job_get = {"job.get", false, true};
static const route_op r_job_patch = {"job.set_state", true, false};

static void
start_api(void)
{
    lm_api_opts ao = LM_API_OPTS_DEFAULTS;
    lm_error err;
    const lm_api_route_def routes[] = {
        {"POST", "/api/v1/pipelines", ms_handler, (void *)&r_create},
        {"GET", "/api/v1/pipelines/{id}", ms_handler, (void *)&r_get},
        {"DELETE", "/api/v1/pipelines/{id}", ms_handler, (void *)&r_delete},
        {"GET", "/api/v1/jobs/{id}", ms_handler, (void *)&r_job_get},
        {"PATCH", "/api/v1/jobs/{id}", ms_handler, (void *)&r_job_patch},
    };

    ao.bind = "127.0.0.1";
    ao.routes = routes;
    ao.nroutes = sizeof(routes) / sizeof(routes[0]);
    ck_assert_msg(lm_api_start(rt, &ao, &api, &err) == LM_OK, "%s", err.msg);
    port = lm_api_port(api);
}

/* One HTTP request (Connection: close; the client never half-closes, as
 * deferred requests of a client that did would be dropped). Returns the
 * status, the body parsed into *body (NULL when not JSON). */
static int
http(const char *method, const char *path, const char *body, json_t **out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {30 * lm_test_slowdown(), 0};
    char req[4096], *buf = malloc(1 << 16), *end;
    size_t n = 0, cap = 1 << 16;
    int fd = socket(AF_INET, SOCK_STREAM, 0), len, status = -1;
    ssize_t k;

    *out = NULL;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    len = snprintf(req, sizeof(req),
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   method, path, body != NULL ? strlen(body) : 0, body != NULL ? body : "");
    ck_assert_int_eq(send(fd, req, (size_t)len, MSG_NOSIGNAL), len);
    while (n + 1 < cap && (k = recv(fd, buf + n, cap - n - 1, 0)) > 0) {
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    if (n > 12 && strncmp(buf, "HTTP/1.", 7) == 0 && (end = strstr(buf, "\r\n\r\n")) != NULL) {
        status = atoi(buf + 9);
        *out = json_loads(end + 4, 0, NULL);
    }
    free(buf);
    return status;
}

static const char *
err_code(json_t *body)
{
    json_t *c = json_object_get(json_object_get(body, "error"), "code");
    return json_is_string(c) ? json_string_value(c) : "(none)";
}

static const char *
err_msg(json_t *body)
{
    json_t *c = json_object_get(json_object_get(body, "error"), "message");
    return json_is_string(c) ? json_string_value(c) : "(none)";
}

START_TEST(test_ms_actor_completes_api_requests)
{
    json_t *b;
    char path[128];
    int st;

    start_actor(0);
    start_api();
    st = http("POST", "/api/v1/pipelines",
              "{\"name\": \"web\", \"query\": \"SELECT 1\", \"plan\": \"{}\", \"parallelism\": 3}",
              &b);
    ck_assert_msg(st == 201, "status %d", st);
    json_int_t id = iget(b, "id");
    json_int_t job = iget(json_object_get(b, "job"), "id");
    ck_assert_int_eq(iget(b, "parallelism"), 3);
    ck_assert_int_eq(iget(b, "checkpoint_interval_ms"), 0);
    json_decref(b);

    snprintf(path, sizeof(path), "/api/v1/pipelines/%lld", (long long)id);
    ck_assert_int_eq(http("GET", path, NULL, &b), 200);
    ck_assert_str_eq(sget(b, "name"), "web");
    ck_assert_str_eq(sget(json_object_get(b, "job"), "state"), "created");
    json_decref(b);

    /* extra members join the result */
    snprintf(path, sizeof(path), "/api/v1/jobs/%lld", (long long)job);
    ck_assert_int_eq(http("GET", path, NULL, &b), 200);
    ck_assert_str_eq(sget(b, "placement"), "here");
    ck_assert_int_eq(iget(b, "id"), job);
    json_decref(b);

    /* errors: 404, 409 (expect mismatch, name taken), 400 naming the member */
    ck_assert_int_eq(http("GET", "/api/v1/pipelines/4040", NULL, &b), 404);
    ck_assert_str_eq(err_code(b), "not_found");
    ck_assert_msg(strstr(err_msg(b), "4040") != NULL, "%s", err_msg(b));
    json_decref(b);
    st = http("PATCH", path, "{\"state\": \"running\", \"expect\": \"scheduling\"}", &b);
    ck_assert_msg(st == 409, "status %d", st);
    ck_assert_str_eq(err_code(b), "conflict");
    ck_assert_msg(strstr(err_msg(b), "scheduling") != NULL, "%s", err_msg(b));
    json_decref(b);
    ck_assert_int_eq(http("POST", "/api/v1/pipelines",
                          "{\"name\": \"web\", \"query\": \"SELECT 1\", \"plan\": \"{}\"}", &b),
                     409);
    ck_assert_str_eq(err_code(b), "conflict");
    json_decref(b);
    ck_assert_int_eq(
        http("POST", "/api/v1/pipelines", "{\"query\": \"SELECT 1\", \"plan\": \"\"}", &b), 400);
    ck_assert_str_eq(err_code(b), "invalid_request");
    ck_assert_msg(strstr(err_msg(b), "\"name\"") != NULL, "%s", err_msg(b));
    json_decref(b);
    st = http("PATCH", path, "{\"state\": \"scheduling\", \"expect\": \"created\"}", &b);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(sget(b, "state"), "scheduling");
    json_decref(b);

    snprintf(path, sizeof(path), "/api/v1/pipelines/%lld", (long long)id);
    ck_assert_int_eq(http("DELETE", path, NULL, &b), 200);
    ck_assert_int_eq(iget(b, "deleted"), id);
    json_decref(b);
    ck_assert_int_eq(http("GET", path, NULL, &b), 404);
    json_decref(b);
    ck_assert_uint_eq(lm_api_pending_count(api), 0);
}
END_TEST

/* --- PostgreSQL outages ----------------------------------------------------------- */

/* Logs INFO and up to a file of the test's dir. */
static void
log_to_file(void)
{
    lm_log_opts lo = {LM_LOG_INFO, LM_LOG_TEXT, false, false, NULL};
    lm_error err;

    snprintf(log_path, sizeof(log_path), "%s/test.log", dir);
    lo.file = log_path;
    ck_assert_msg(lm_log_configure(&lo, &err) == LM_OK, "%s", err.msg);
}

static int
count_in_log(const char *what)
{
    char *text = lm_test_read_file(log_path, NULL);
    int n = 0;

    for (const char *s = text; s != NULL && (s = strstr(s, what)) != NULL; s += strlen(what)) {
        n++;
    }
    free(text);
    return n;
}

START_TEST(test_ms_actor_waits_for_a_lost_postgres)
{
    char e[LM_ERROR_MSG_MAX], args[200];
    int code;

    log_to_file();
    start_actor(60000);
    json_int_t first = create("before", NULL);

    ck_assert_msg(lm_test_pg_halt(&pg) == 0, "%s", pg.problem);
    /* a write first: it finds the connection gone and waits */
    uint64_t w =
        send_call("pipeline.create",
                  "{\"name\": \"during\", \"query\": \"SELECT 2\", \"plan\": \"{}\"}", NULL);
    /* then the queue fills up: LM_MS_ACTOR_QUEUE_MAX wait, one more fails at once */
    snprintf(args, sizeof(args), "{\"id\": %lld}", (long long)first);
    uint64_t firstget = 0, last = 0;
    for (int i = 1; i < LM_MS_ACTOR_QUEUE_MAX; i++) {
        last = send_call("pipeline.get", args, NULL);
        if (firstget == 0) {
            firstget = last;
        }
    }
    uint64_t over = send_call("pipeline.get", args, NULL);
    ck_assert_ptr_null(wait_reply(over, 10000, &code, e, sizeof(e)));
    ck_assert_int_eq(code, LM_ECLOSED);
    ck_assert_msg(strstr(e, "metadata store unavailable") != NULL, "%s", e);
    usleep(500 * 1000);
    ck_assert_int_eq(lm_probe_pending(probe), 0); /* the others wait */

    ck_assert_msg(lm_test_pg_resume(&pg) == 0, "%s", pg.problem);
    /* back: the write is applied first, then the rest, in order */
    json_t *p = wait_reply(w, 30000, &code, e, sizeof(e));
    ck_assert_msg(code == LM_OK, "%s: %s", lm_errname(code), e);
    ck_assert_str_eq(sget(p, "name"), "during");
    ck_assert_str_eq(sget(json_object_get(p, "job"), "state"), "created");
    json_decref(p);
    for (uint64_t t = firstget; t <= last; t++) {
        p = wait_reply(t, 30000, &code, e, sizeof(e));
        ck_assert_msg(code == LM_OK, "tag %llu: %s", (unsigned long long)t, e);
        json_decref(p);
    }
    json_t *l = ok("pipeline.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "pipelines")), 2);
    json_decref(l);
    l = ok("job.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "jobs")), 2);
    json_decref(l);
    /* the loss and the recovery were logged once each */
    ck_assert_int_eq(count_in_log("metadata store lost"), 1);
    ck_assert_int_eq(count_in_log("metadata store back"), 1);
}
END_TEST

START_TEST(test_ms_actor_fails_requests_that_wait_too_long)
{
    char e[LM_ERROR_MSG_MAX];
    json_t *b;
    int code;

    start_actor(400);
    start_api();
    json_int_t id = create("p", NULL);

    ck_assert_msg(lm_test_pg_halt(&pg) == 0, "%s", pg.problem);
    int64_t t0 = lm_test_now_ms();
    uint64_t w = send_call("worker.register",
                           "{\"address\": \"a\", \"data_address\": \"b\", \"slots\": 1}", NULL);
    ck_assert_ptr_null(wait_reply(w, 10000, &code, e, sizeof(e)));
    ck_assert_int_eq(code, LM_ECLOSED);
    ck_assert_msg(strstr(e, "metadata store unavailable") != NULL, "%s", e);
    ck_assert_int_ge(lm_test_now_ms() - t0, 390);
    /* the REST client gets 503 */
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/pipelines/%lld", (long long)id);
    ck_assert_int_eq(http("GET", path, NULL, &b), 503);
    ck_assert_str_eq(err_code(b), "unavailable");
    json_decref(b);

    ck_assert_msg(lm_test_pg_resume(&pg) == 0, "%s", pg.problem);
    /* the store comes back by itself (the backoff is at most 5 s) */
    int st = 0;
    for (int i = 0; i < 40 && st != 200; i++) {
        st = http("GET", path, NULL, &b);
        json_decref(b);
        if (st != 200) {
            usleep(250 * 1000);
        }
    }
    ck_assert_int_eq(st, 200);
    json_t *l = ok("worker.list", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "workers")), 0); /* never applied */
    json_decref(l);
}
END_TEST

/* The server is down when the actor starts: requests wait until it is up. */
START_TEST(test_ms_actor_opens_a_store_that_comes_up_later)
{
    char e[LM_ERROR_MSG_MAX];
    int code;

    ck_assert_msg(lm_test_pg_halt(&pg) == 0, "%s", pg.problem);
    start_actor(60000);
    uint64_t t = send_call("pipeline.list", NULL, NULL);
    usleep(300 * 1000);
    ck_assert_int_eq(lm_probe_pending(probe), 0);
    ck_assert_msg(lm_test_pg_resume(&pg) == 0, "%s", pg.problem);
    json_t *l = wait_reply(t, 30000, &code, e, sizeof(e));
    ck_assert_msg(code == LM_OK, "%s", e);
    ck_assert_uint_eq(json_array_size(json_object_get(l, "pipelines")), 0);
    json_decref(l);
    create("later", NULL);
}
END_TEST

/* A store that cannot be opened at all (a URL of no known form) fails
 * the actor; its name is free again. */
START_TEST(test_ms_actor_bad_url_fails_the_actor)
{
    lm_ms_actor_opts o = LM_MS_ACTOR_OPTS_DEFAULTS;
    lm_addr a;
    lm_error err;
    int i;

    o.url = "mysql://nowhere/db";
    ck_assert_int_eq(lm_ms_actor_spawn(rt, &o, &a, &err), LM_OK);
    for (i = 0; i < 200 && lm_rt_whereis(rt, LM_MS_ACTOR_NAME, &a) == LM_OK; i++) {
        usleep(10 * 1000);
    }
    ck_assert_int_lt(i, 200);
    o.url = NULL;
    ck_assert_int_eq(lm_ms_actor_spawn(rt, &o, &a, &err), LM_EINVAL);
    o.url = url;
    o.retry_max_ms = -1;
    ck_assert_int_eq(lm_ms_actor_spawn(rt, &o, &a, &err), LM_EINVAL);
    /* one at a time */
    start_actor(0);
    o.retry_max_ms = 0;
    ck_assert_int_eq(lm_ms_actor_spawn(rt, &o, &a, &err), LM_EEXIST);
}
END_TEST

static void
add_common(TCase *tc)
{
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ms_actor_pipeline_lifecycle);
    tcase_add_test(tc, test_ms_actor_resumable);
    tcase_add_test(tc, test_ms_actor_workers);
    tcase_add_test(tc, test_ms_actor_completes_api_requests);
}

Suite *
ms_actor_suite(void)
{
    Suite *s = suite_create("ms_actor");
    TCase *sqlite = tcase_create("sqlite");
    TCase *postgres = tcase_create("postgres");

    add_common(sqlite);
    tcase_add_test(sqlite, test_ms_actor_bad_input);
    tcase_add_test(sqlite, test_ms_actor_extra_merged);
    tcase_add_test(sqlite, test_ms_actor_bad_url_fails_the_actor);
    tcase_set_timeout(sqlite, 30);
    suite_add_tcase(s, sqlite);

    tcase_add_unchecked_fixture(postgres, pg_fixture_start, pg_fixture_stop);
    add_common(postgres);
    tcase_add_test(postgres, test_ms_actor_waits_for_a_lost_postgres);
    tcase_add_test(postgres, test_ms_actor_fails_requests_that_wait_too_long);
    tcase_add_test(postgres, test_ms_actor_opens_a_store_that_comes_up_later);
    tcase_set_timeout(postgres, 120);
    suite_add_tcase(s, postgres);
    return s;
}
