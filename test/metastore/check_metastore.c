/*
 * check_metastore.c: the metadata store (actors/metastore) against both of
 * its backends. Every store test runs twice: in the tcase "sqlite" on a
 * fresh database file, and in the tcase "postgres" on a fresh database of
 * a real PostgreSQL server that the tcase's unchecked fixture starts
 * (lm_test_pg_start: initdb + pg_ctl in a temp dir, on a free loopback
 * port, as the `postgres` user when run as root) and stops again, with
 * its directory removed, after the last test, whether the tests passed or
 * not. Without the PostgreSQL server binaries the postgres tests fail,
 * saying so.
 * LM_TEST_PG_BIN names another directory holding initdb and pg_ctl.
 *
 * The tests read the schema behind the store's back through the drivers
 * themselves (sqlite3, libpq) where they check what migrations did.
 */
#include <check.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lm_metastore.h"
#include "lm_storage.h"
#include "lm_test.h"
#include "lm_text.h"

typedef enum backend {
    BK_SQLITE,
    BK_PG,
} backend;

static backend bk;              /* the tcase's backend, set by its unchecked fixture */
static char sqlite_root[64];    /* temp dir of the sqlite tcase's database files */
static char url[512];           /* this test's fresh database */
static int seq;                 /* numbers databases within a process */
static int64_t fake_now = 1000; /* the store's clock in tests */

static lm_test_pg pg; /* the postgres tcase's server (lm_test.h) */

static int64_t
test_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

/* --- the servers ------------------------------------------------------------ */

static void
pg_start(void)
{
    bk = BK_PG;
    lm_test_pg_start(&pg); /* a failure is reported by each test (pg.problem) */
}

static void
pg_stop(void)
{
    lm_test_pg_stop(&pg);
}

static void
sqlite_start(void)
{
    bk = BK_SQLITE;
    snprintf(sqlite_root, sizeof(sqlite_root), "/tmp/lm-ms-XXXXXX");
    if (mkdtemp(sqlite_root) == NULL) {
        sqlite_root[0] = '\0';
    }
}

static void
sqlite_stop(void)
{
    if (sqlite_root[0] != '\0') {
        lm_storage_remove_tree(sqlite_root, NULL);
        sqlite_root[0] = '\0';
    }
}

/* Checked setup: a fresh, empty database for the test, named by url. */
static void
fresh_database(void)
{
    seq++;
    fake_now = 1000;
    if (bk == BK_SQLITE) {
        ck_assert_msg(sqlite_root[0] != '\0', "no temp dir for SQLite files");
        snprintf(url, sizeof(url), "sqlite://%s/t%d-%d/laminar.db", sqlite_root, (int)getpid(),
                 seq);
        return;
    }
    if (!pg.up) {
        ck_abort_msg("PostgreSQL tests cannot run: %s", pg.problem);
    }
    char name[64];
    snprintf(name, sizeof(name), "lm_%d_%d", (int)getpid(), seq);
    ck_assert_msg(lm_test_pg_createdb(&pg, name, url, sizeof(url)) == 0, "%s", pg.problem);
}

/* --- direct access, behind the store's back -------------------------------- */

/* Runs sql on the test's database with the driver itself; returns the
 * first column of the first row as an integer (0 when none). */
static int64_t
direct(const char *sql)
{
    int64_t v = 0;

    if (bk == BK_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_open(url + strlen("sqlite://"), &db), SQLITE_OK);
        ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                      sqlite3_errmsg(db));
        int rc = sqlite3_step(st);
        ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
        if (rc == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
    }
    PGconn *c = PQconnectdb(url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK,
                  "%s: %s", sql, PQerrorMessage(c));
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
    PQclear(r);
    PQfinish(c);
    return v;
}

/* --- helpers ------------------------------------------------------------- */

#define OK(call)                                                                                   \
    do {                                                                                           \
        lm_error e_;                                                                               \
        int rv_ = (call);                                                                          \
        (void)e_;                                                                                  \
        ck_assert_msg(rv_ == LM_OK, "%s -> %s", #call, lm_errname(rv_));                           \
    } while (0)

static lm_ms *
open_store(void)
{
    lm_error err;
    lm_ms *ms = NULL;
    int rv = lm_ms_open(url, &ms, &err);

    ck_assert_msg(rv == LM_OK, "open %s: %s", url, err.msg);
    lm_ms_set_clock(ms, test_clock, NULL);
    return ms;
}

static int64_t
make_pipeline(lm_ms *ms, const char *name, const char *query)
{
    lm_ms_pipeline p = {.name = (char *)name,
                        .query = (char *)query,
                        .parallelism = 2,
                        .checkpoint_interval_ms = 5000};
    lm_error err;
    int64_t id = 0;

    ck_assert_msg(lm_ms_pipeline_create(ms, &p, &id, &err) == LM_OK, "%s", err.msg);
    ck_assert_int_gt(id, 0);
    return id;
}

/* A pipeline with version 1 and a job of it. */
static int64_t
make_job(lm_ms *ms, const char *name, int64_t *pipeline_id)
{
    lm_error err;
    int64_t pid = make_pipeline(ms, name, "INSERT INTO s SELECT * FROM t"), v = 0, id = 0;

    ck_assert_msg(lm_ms_version_add(ms, pid, NULL, "{}", &v, &err) == LM_OK, "%s", err.msg);
    ck_assert_msg(lm_ms_job_create(ms, pid, v, &id, &err) == LM_OK, "%s", err.msg);
    if (pipeline_id != NULL) {
        *pipeline_id = pid;
    }
    return id;
}

/* --- migrations ------------------------------------------------------------ */

START_TEST(test_metastore_migrations_apply_once)
{
    int64_t latest = lm_ms_latest_version(), v = -1, applied;
    lm_error err;
    lm_ms *ms;

    ck_assert_int_ge(latest, 2);
    /* an old build's schema first, then the upgrade */
    ck_assert_int_eq(lm_ms_open_at(url, 1, &ms, &err), LM_OK);
    OK(lm_ms_schema_version(ms, &v, &err));
    ck_assert_int_eq(v, 1);
    lm_ms_close(ms);
    ck_assert_int_eq(direct("SELECT COUNT(*) FROM schema_migrations"), 1);

    ms = open_store();
    OK(lm_ms_schema_version(ms, &v, &err));
    ck_assert_int_eq(v, latest);
    lm_ms_close(ms);
    ck_assert_int_eq(direct("SELECT COUNT(*) FROM schema_migrations"), latest);
    applied = direct("SELECT SUM(applied_at) FROM schema_migrations");

    /* re-opening applies nothing */
    ms = open_store();
    OK(lm_ms_schema_version(ms, &v, &err));
    ck_assert_int_eq(v, latest);
    ck_assert_str_eq(lm_ms_backend(ms), bk == BK_SQLITE ? "sqlite" : "postgresql");
    lm_ms_close(ms);
    ck_assert_int_eq(direct("SELECT COUNT(*) FROM schema_migrations"), latest);
    ck_assert_int_eq(direct("SELECT SUM(applied_at) FROM schema_migrations"), applied);
    /* and opening at an older target leaves a newer schema alone */
    ck_assert_int_eq(lm_ms_open_at(url, 1, &ms, &err), LM_OK);
    OK(lm_ms_schema_version(ms, &v, &err));
    ck_assert_int_eq(v, latest);
    lm_ms_close(ms);
    ck_assert_int_eq(lm_ms_open_at(url, latest + 1, &ms, &err), LM_EINVAL);

    /* a schema from a newer build is refused */
    direct("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)");
    ms = NULL;
    ck_assert_int_eq(lm_ms_open(url, &ms, &err), LM_EVERSION);
    ck_assert_ptr_null(ms);
    ck_assert_msg(strstr(err.msg, "999") != NULL, "%s", err.msg);
}
END_TEST

/* --- pipelines ------------------------------------------------------------ */

START_TEST(test_metastore_pipeline_crud)
{
    lm_ms *ms = open_store();
    lm_ms_pipeline p, *list;
    lm_error err;
    size_t n;
    int64_t a, b;

    fake_now = 5000;
    a = make_pipeline(ms, "alpha", "SELECT 1");
    fake_now = 6000;
    b = make_pipeline(ms, "beta", "SELECT 2");
    ck_assert_int_gt(b, a);

    OK(lm_ms_pipeline_get(ms, a, &p, &err));
    ck_assert_int_eq(p.id, a);
    ck_assert_str_eq(p.name, "alpha");
    ck_assert_str_eq(p.query, "SELECT 1");
    ck_assert_int_eq(p.parallelism, 2);
    ck_assert_int_eq(p.checkpoint_interval_ms, 5000);
    ck_assert_int_eq(p.stop, LM_MS_STOP_NONE);
    ck_assert_int_eq(p.latest_version, 0);
    ck_assert_int_eq(p.created_ms, 5000);
    ck_assert_int_eq(p.updated_ms, 5000);
    lm_ms_pipeline_fini(&p);

    OK(lm_ms_pipeline_get_by_name(ms, "beta", &p, &err));
    ck_assert_int_eq(p.id, b);
    lm_ms_pipeline_fini(&p);
    ck_assert_int_eq(lm_ms_pipeline_get_by_name(ms, "gamma", &p, &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "gamma") != NULL, "%s", err.msg);

    OK(lm_ms_pipeline_list(ms, &list, &n, &err));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(list[0].id, a);
    ck_assert_str_eq(list[1].name, "beta");
    lm_ms_pipeline_list_free(list, n);

    /* update: only the fields named change */
    fake_now = 7000;
    lm_ms_pipeline patch = {.stop = LM_MS_STOP_GRACEFUL, .parallelism = 8, .query = "ignored"};
    OK(lm_ms_pipeline_update(ms, a, &patch, LM_MS_SET_STOP | LM_MS_SET_PARALLELISM, &err));
    OK(lm_ms_pipeline_get(ms, a, &p, &err));
    ck_assert_int_eq(p.stop, LM_MS_STOP_GRACEFUL);
    ck_assert_int_eq(p.parallelism, 8);
    ck_assert_str_eq(p.query, "SELECT 1");
    ck_assert_int_eq(p.checkpoint_interval_ms, 5000);
    ck_assert_int_eq(p.created_ms, 5000);
    ck_assert_int_eq(p.updated_ms, 7000);
    lm_ms_pipeline_fini(&p);
    fake_now = 7500;
    patch = (lm_ms_pipeline){
        .query = "SELECT 11", .checkpoint_interval_ms = 0, .stop = LM_MS_STOP_IMMEDIATE};
    OK(lm_ms_pipeline_update(
        ms, a, &patch, LM_MS_SET_QUERY | LM_MS_SET_CHECKPOINT_INTERVAL | LM_MS_SET_STOP, &err));
    OK(lm_ms_pipeline_get(ms, a, &p, &err));
    ck_assert_str_eq(p.query, "SELECT 11");
    ck_assert_int_eq(p.checkpoint_interval_ms, 0);
    ck_assert_int_eq(p.stop, LM_MS_STOP_IMMEDIATE);
    ck_assert_int_eq(p.parallelism, 8);
    ck_assert_int_eq(p.updated_ms, 7500);
    lm_ms_pipeline_fini(&p);
    fake_now = 7600;
    OK(lm_ms_pipeline_update(ms, a, NULL, 0, &err)); /* touch */
    OK(lm_ms_pipeline_get(ms, a, &p, &err));
    ck_assert_int_eq(p.updated_ms, 7600);
    lm_ms_pipeline_fini(&p);

    /* bad input changes nothing */
    patch = (lm_ms_pipeline){.parallelism = 0};
    ck_assert_int_eq(lm_ms_pipeline_update(ms, a, &patch, LM_MS_SET_PARALLELISM, &err), LM_EINVAL);
    lm_ms_pipeline bad = {.name = "", .query = "x", .parallelism = 1};
    ck_assert_int_eq(lm_ms_pipeline_create(ms, &bad, NULL, &err), LM_EINVAL);
    bad = (lm_ms_pipeline){.name = "x", .query = "", .parallelism = 1};
    ck_assert_int_eq(lm_ms_pipeline_create(ms, &bad, NULL, &err), LM_EINVAL);
    bad = (lm_ms_pipeline){.name = "x", .query = "q", .parallelism = 0};
    ck_assert_int_eq(lm_ms_pipeline_create(ms, &bad, NULL, NULL), LM_EINVAL);

    /* delete */
    OK(lm_ms_pipeline_delete(ms, a, &err));
    ck_assert_int_eq(lm_ms_pipeline_get(ms, a, &p, &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "get pipeline") != NULL && strstr(err.msg, "no such") != NULL,
                  "%s", err.msg);
    ck_assert_int_eq(lm_ms_pipeline_delete(ms, a, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_pipeline_update(ms, a, NULL, 0, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_pipeline_update(ms, 424242, NULL, 0, NULL), LM_ENOTFOUND);
    OK(lm_ms_pipeline_list(ms, &list, &n, &err));
    ck_assert_uint_eq(n, 1);
    lm_ms_pipeline_list_free(list, n);
    OK(lm_ms_pipeline_delete(ms, b, &err));
    OK(lm_ms_pipeline_list(ms, &list, &n, &err));
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(list);
    lm_ms_close(ms);
}
END_TEST

START_TEST(test_metastore_pipeline_duplicate_name)
{
    lm_ms *ms = open_store();
    lm_ms_pipeline p = {.name = "dup", .query = "SELECT 2", .parallelism = 1};
    lm_error err;
    int64_t id = -7, first;

    first = make_pipeline(ms, "dup", "SELECT 1");
    ck_assert_int_eq(lm_ms_pipeline_create(ms, &p, &id, &err), LM_EEXIST);
    ck_assert_int_eq(id, -7);
    ck_assert_msg(strstr(err.msg, "'dup'") != NULL && strstr(err.msg, "taken") != NULL, "%s",
                  err.msg);
    /* the first is untouched, and the name is free again once it is gone */
    lm_ms_pipeline got;
    OK(lm_ms_pipeline_get_by_name(ms, "dup", &got, &err));
    ck_assert_int_eq(got.id, first);
    ck_assert_str_eq(got.query, "SELECT 1");
    lm_ms_pipeline_fini(&got);
    OK(lm_ms_pipeline_delete(ms, first, &err));
    OK(lm_ms_pipeline_create(ms, &p, &id, &err));
    ck_assert_int_gt(id, first); /* ids are never reused */
    lm_ms_close(ms);
}
END_TEST

START_TEST(test_metastore_pipeline_versions)
{
    lm_ms *ms = open_store();
    lm_ms_version v, *list;
    lm_ms_pipeline p;
    lm_error err;
    int64_t pid = make_pipeline(ms, "ver", "SELECT 1"), n1 = 0, n2 = 0;
    size_t n;

    OK(lm_ms_version_list(ms, pid, &list, &n, &err));
    ck_assert_uint_eq(n, 0);
    fake_now = 2000;
    OK(lm_ms_version_add(ms, pid, NULL, "{\"plan\":1}", &n1, &err));
    fake_now = 3000;
    OK(lm_ms_version_add(ms, pid, "SELECT 2", NULL, &n2, &err));
    ck_assert_int_eq(n1, 1);
    ck_assert_int_eq(n2, 2);

    OK(lm_ms_version_get(ms, pid, 1, &v, &err));
    ck_assert_int_eq(v.pipeline_id, pid);
    ck_assert_str_eq(v.query, "SELECT 1");
    ck_assert_str_eq(v.plan_json, "{\"plan\":1}");
    ck_assert_int_eq(v.created_ms, 2000);
    lm_ms_version_fini(&v);
    OK(lm_ms_version_get(ms, pid, 2, &v, &err));
    ck_assert_str_eq(v.query, "SELECT 2");
    ck_assert_str_eq(v.plan_json, "");
    lm_ms_version_fini(&v);

    OK(lm_ms_pipeline_get(ms, pid, &p, &err));
    ck_assert_int_eq(p.latest_version, 2);
    ck_assert_str_eq(p.query, "SELECT 2");
    ck_assert_int_eq(p.updated_ms, 3000);
    lm_ms_pipeline_fini(&p);

    OK(lm_ms_version_list(ms, pid, &list, &n, &err));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(list[0].version, 1);
    ck_assert_int_eq(list[1].version, 2);
    lm_ms_version_list_free(list, n);

    ck_assert_int_eq(lm_ms_version_get(ms, pid, 3, &v, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_version_add(ms, pid + 100, NULL, NULL, NULL, &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "no such pipeline") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_ms_version_list(ms, pid + 100, &list, &n, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_version_add(ms, pid, "", NULL, NULL, &err), LM_EINVAL);
    lm_ms_close(ms);
}
END_TEST

/* --- jobs ----------------------------------------------------------------- */

START_TEST(test_metastore_job_states_recorded_as_events)
{
    static const struct {
        const char *state, *reason;
        bool restart;
    } steps[] = {
        {LM_MS_JOB_SCHEDULING, "waiting for 4 slots", false},
        {LM_MS_JOB_RUNNING, "", false},
        {LM_MS_JOB_RESTARTING, "worker 2 lost", true},
        {LM_MS_JOB_RUNNING, NULL, false},
        {LM_MS_JOB_STOPPING, "user asked: graceful", false},
        {LM_MS_JOB_STOPPED, "stopped at checkpoint 9", false},
    };
    lm_ms *ms = open_store();
    lm_ms_job j, *jobs;
    lm_ms_job_event *ev;
    lm_error err;
    int64_t pid, pid2, v, id2;
    size_t n;

    fake_now = 100;
    int64_t id = make_job(ms, "jobs", &pid);
    OK(lm_ms_job_get(ms, id, &j, &err));
    ck_assert_int_eq(j.pipeline_id, pid);
    ck_assert_int_eq(j.version, 1);
    ck_assert_str_eq(j.state, LM_MS_JOB_CREATED);
    ck_assert_str_eq(j.reason, "");
    ck_assert_int_eq(j.restarts, 0);
    ck_assert_int_eq(j.created_ms, 100);
    lm_ms_job_fini(&j);

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        fake_now = 1000 + (int64_t)i * 10;
        OK(lm_ms_job_set_state(ms, id, NULL, steps[i].state, steps[i].reason, steps[i].restart,
                               &err));
    }
    OK(lm_ms_job_get(ms, id, &j, &err));
    ck_assert_str_eq(j.state, LM_MS_JOB_STOPPED);
    ck_assert_str_eq(j.reason, "stopped at checkpoint 9");
    ck_assert_int_eq(j.restarts, 1);
    ck_assert_int_eq(j.updated_ms, 1050);
    ck_assert_int_eq(j.created_ms, 100);
    lm_ms_job_fini(&j);

    OK(lm_ms_job_events(ms, id, &ev, &n, &err));
    ck_assert_uint_eq(n, 7);
    ck_assert_str_eq(ev[0].state, LM_MS_JOB_CREATED);
    ck_assert_int_eq(ev[0].at_ms, 100);
    for (size_t i = 0; i < 6; i++) {
        ck_assert_int_eq(ev[i + 1].job_id, id);
        ck_assert_str_eq(ev[i + 1].state, steps[i].state);
        ck_assert_str_eq(ev[i + 1].reason, steps[i].reason != NULL ? steps[i].reason : "");
        ck_assert_int_eq(ev[i + 1].at_ms, 1000 + (int64_t)i * 10);
        ck_assert_int_gt(ev[i + 1].id, ev[i].id);
    }
    lm_ms_job_event_list_free(ev, n);

    /* a compare-and-set that does not match changes nothing */
    ck_assert_int_eq(
        lm_ms_job_set_state(ms, id, LM_MS_JOB_RUNNING, LM_MS_JOB_STOPPING, "again", false, &err),
        LM_ESTATE);
    ck_assert_msg(strstr(err.msg, "'stopped'") != NULL && strstr(err.msg, "'running'") != NULL,
                  "%s", err.msg);
    OK(lm_ms_job_events(ms, id, &ev, &n, &err));
    ck_assert_uint_eq(n, 7);
    lm_ms_job_event_list_free(ev, n);
    OK(lm_ms_job_set_state(ms, id, LM_MS_JOB_STOPPED, LM_MS_JOB_SCHEDULING, "resubmitted", false,
                           &err));

    /* errors */
    ck_assert_int_eq(lm_ms_job_set_state(ms, id + 99, NULL, "running", NULL, false, &err),
                     LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "no such job") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_ms_job_set_state(ms, id, NULL, "", NULL, false, &err), LM_EINVAL);
    ck_assert_int_eq(lm_ms_job_get(ms, id + 99, &j, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_job_events(ms, id + 99, &ev, &n, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_job_create(ms, pid + 99, 1, NULL, &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "no such pipeline") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_ms_job_create(ms, pid, 7, NULL, &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "no such pipeline version") != NULL, "%s", err.msg);

    /* listing, all and by pipeline */
    pid2 = make_pipeline(ms, "jobs2", "SELECT 2");
    OK(lm_ms_version_add(ms, pid2, NULL, NULL, &v, &err));
    OK(lm_ms_job_create(ms, pid2, v, &id2, &err));
    OK(lm_ms_job_list(ms, 0, &jobs, &n, &err));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(jobs[0].id, id);
    ck_assert_int_eq(jobs[1].id, id2);
    ck_assert_str_eq(jobs[0].state, LM_MS_JOB_SCHEDULING);
    lm_ms_job_list_free(jobs, n);
    OK(lm_ms_job_list(ms, pid2, &jobs, &n, &err));
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(jobs[0].pipeline_id, pid2);
    lm_ms_job_list_free(jobs, n);
    ck_assert_int_eq(lm_ms_job_list(ms, pid2 + 99, &jobs, &n, &err), LM_ENOTFOUND);

    /* deleting a pipeline takes its jobs and their events */
    OK(lm_ms_pipeline_delete(ms, pid, &err));
    ck_assert_int_eq(lm_ms_job_get(ms, id, &j, &err), LM_ENOTFOUND);
    ck_assert_int_eq(direct("SELECT COUNT(*) FROM job_events"), 1);
    OK(lm_ms_job_list(ms, 0, &jobs, &n, &err));
    ck_assert_uint_eq(n, 1);
    lm_ms_job_list_free(jobs, n);
    lm_ms_close(ms);
}
END_TEST

/* --- workers -------------------------------------------------------------- */

START_TEST(test_metastore_workers)
{
    lm_ms *ms = open_store();
    lm_ms_worker w, *list;
    lm_error err;
    int64_t a, b, a2;
    size_t n;

    fake_now = 10000;
    OK(lm_ms_worker_register(ms, "tcp://10.0.0.1:6669", "tcp://10.0.0.1:6670", 4, &a, &err));
    OK(lm_ms_worker_register(ms, "tcp://10.0.0.2:6669", "tcp://10.0.0.2:6670", 8, &b, &err));
    ck_assert_int_ne(a, b);
    OK(lm_ms_worker_get(ms, a, &w, &err));
    ck_assert_str_eq(w.address, "tcp://10.0.0.1:6669");
    ck_assert_str_eq(w.data_address, "tcp://10.0.0.1:6670");
    ck_assert_int_eq(w.slots, 4);
    ck_assert_str_eq(w.state, LM_MS_WORKER_ALIVE);
    ck_assert_int_eq(w.last_heartbeat_ms, 10000);
    ck_assert_int_eq(w.registered_ms, 10000);
    lm_ms_worker_fini(&w);

    fake_now = 11000;
    OK(lm_ms_worker_heartbeat(ms, a, &err));
    fake_now = 12000;
    OK(lm_ms_worker_set_state(ms, b, LM_MS_WORKER_LOST, &err));
    OK(lm_ms_worker_get(ms, a, &w, &err));
    ck_assert_int_eq(w.last_heartbeat_ms, 11000);
    ck_assert_int_eq(w.registered_ms, 10000);
    lm_ms_worker_fini(&w);

    OK(lm_ms_worker_list(ms, &list, &n, &err));
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(list[0].id, a);
    ck_assert_str_eq(list[1].state, LM_MS_WORKER_LOST);
    ck_assert_int_eq(list[1].last_heartbeat_ms, 10000);
    lm_ms_worker_list_free(list, n);

    /* the lost worker comes back at the same address: same id, new facts */
    fake_now = 13000;
    OK(lm_ms_worker_register(ms, "tcp://10.0.0.2:6669", "tcp://10.0.0.2:7000", 16, &a2, &err));
    ck_assert_int_eq(a2, b);
    OK(lm_ms_worker_get(ms, b, &w, &err));
    ck_assert_str_eq(w.state, LM_MS_WORKER_ALIVE);
    ck_assert_str_eq(w.data_address, "tcp://10.0.0.2:7000");
    ck_assert_int_eq(w.slots, 16);
    ck_assert_int_eq(w.registered_ms, 13000);
    ck_assert_int_eq(w.last_heartbeat_ms, 13000);
    lm_ms_worker_fini(&w);
    ck_assert_int_eq(direct("SELECT COUNT(*) FROM workers"), 2);

    ck_assert_int_eq(lm_ms_worker_heartbeat(ms, b + a + 99, &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "no such worker") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_ms_worker_set_state(ms, b + a + 99, "lost", &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_worker_get(ms, b + a + 99, &w, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_worker_register(ms, "", "", 1, NULL, &err), LM_EINVAL);
    ck_assert_int_eq(lm_ms_worker_set_state(ms, a, "", &err), LM_EINVAL);
    lm_ms_close(ms);
}
END_TEST

/* --- checkpoints ------------------------------------------------------------ */

START_TEST(test_metastore_checkpoints_latest_completed)
{
    lm_ms *ms = open_store();
    lm_ms_checkpoint c, *list;
    lm_error err;
    size_t n;
    int64_t job = make_job(ms, "ckpt", NULL), other = make_job(ms, "ckpt2", NULL);

    ck_assert_int_eq(lm_ms_checkpoint_latest(ms, job, &c, &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "no completed checkpoint") != NULL, "%s", err.msg);
    for (int64_t e = 1; e <= 4; e++) {
        fake_now = 100 * e;
        OK(lm_ms_checkpoint_begin(ms, job, e, "file:///tmp/ck", &err));
    }
    OK(lm_ms_checkpoint_begin(ms, other, 9, "file:///tmp/other", &err));
    ck_assert_int_eq(lm_ms_checkpoint_latest(ms, job, &c, &err), LM_ENOTFOUND);

    fake_now = 1000;
    OK(lm_ms_checkpoint_complete(ms, job, 1, 111, &err));
    fake_now = 2000;
    OK(lm_ms_checkpoint_complete(ms, job, 2, 222, &err));
    fake_now = 3000;
    OK(lm_ms_checkpoint_fail(ms, job, 3, "operator 4 timed out", &err));
    OK(lm_ms_checkpoint_complete(ms, other, 9, 999, &err));

    /* 3 failed and 4 is in progress: the latest completed is 2 */
    OK(lm_ms_checkpoint_latest(ms, job, &c, &err));
    ck_assert_int_eq(c.job_id, job);
    ck_assert_int_eq(c.epoch, 2);
    ck_assert_int_eq(c.state, LM_MS_CKPT_COMPLETED);
    ck_assert_int_eq(c.size_bytes, 222);
    ck_assert_int_eq(c.created_ms, 200);
    ck_assert_int_eq(c.completed_ms, 2000);
    ck_assert_str_eq(c.path, "file:///tmp/ck");
    lm_ms_checkpoint_fini(&c);

    OK(lm_ms_checkpoint_list(ms, job, &list, &n, &err));
    ck_assert_uint_eq(n, 4);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(list[i].epoch, (int64_t)i + 1);
    }
    ck_assert_int_eq(list[2].state, LM_MS_CKPT_FAILED);
    ck_assert_str_eq(list[2].reason, "operator 4 timed out");
    ck_assert_int_eq(list[2].completed_ms, 3000);
    ck_assert_int_eq(list[3].state, LM_MS_CKPT_IN_PROGRESS);
    ck_assert_int_eq(list[3].completed_ms, 0);
    ck_assert_str_eq(lm_ms_ckpt_state_name(list[3].state), "in_progress");
    lm_ms_checkpoint_list_free(list, n);

    fake_now = 4000;
    OK(lm_ms_checkpoint_complete(ms, job, 4, 444, &err));
    OK(lm_ms_checkpoint_latest(ms, job, &c, &err));
    ck_assert_int_eq(c.epoch, 4);
    lm_ms_checkpoint_fini(&c);

    /* errors */
    ck_assert_int_eq(lm_ms_checkpoint_complete(ms, job, 3, 1, &err), LM_ESTATE);
    ck_assert_msg(strstr(err.msg, "failed") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_ms_checkpoint_fail(ms, job, 4, NULL, &err), LM_ESTATE);
    ck_assert_int_eq(lm_ms_checkpoint_complete(ms, job, 5, 1, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_checkpoint_begin(ms, job, 2, "x", &err), LM_EEXIST);
    ck_assert_int_eq(lm_ms_checkpoint_begin(ms, job + other + 9, 1, "x", &err), LM_ENOTFOUND);
    ck_assert_msg(strstr(err.msg, "no such job") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_ms_checkpoint_begin(ms, job, 0, "x", &err), LM_EINVAL);
    ck_assert_int_eq(lm_ms_checkpoint_list(ms, job + other + 9, &list, &n, &err), LM_ENOTFOUND);
    ck_assert_int_eq(lm_ms_checkpoint_latest(ms, job + other + 9, &c, &err), LM_ENOTFOUND);
    lm_ms_close(ms);
}
END_TEST

/* --- binding and durability ------------------------------------------------- */

static const char *const tricky[] = {
    "it's; DROP TABLE pipelines; --",
    "\"double\" 'single' `back` \\backslash\\ $1 ?1 :name @ID@",
    "Zürich → 東京 🚀 ÆØÅ",
    "line one\nline two\ttabbed\r\n",
};

START_TEST(test_metastore_strings_round_trip)
{
    lm_ms *ms = open_store();
    lm_error err;
    int64_t ids[4], job, w;

    for (int i = 0; i < 4; i++) {
        ids[i] = make_pipeline(ms, tricky[i], tricky[(i + 1) % 4]);
    }
    for (int i = 0; i < 4; i++) {
        lm_ms_pipeline p;
        OK(lm_ms_pipeline_get_by_name(ms, tricky[i], &p, &err));
        ck_assert_int_eq(p.id, ids[i]);
        ck_assert_str_eq(p.name, tricky[i]);
        ck_assert_str_eq(p.query, tricky[(i + 1) % 4]);
        lm_ms_pipeline_fini(&p);
    }
    OK(lm_ms_version_add(ms, ids[0], tricky[2], tricky[1], NULL, &err));
    OK(lm_ms_job_create(ms, ids[0], 1, &job, &err));
    OK(lm_ms_job_set_state(ms, job, NULL, LM_MS_JOB_FAILED, tricky[0], false, &err));
    OK(lm_ms_worker_register(ms, tricky[2], tricky[1], 1, &w, &err));
    OK(lm_ms_checkpoint_begin(ms, job, 1, tricky[3], &err));
    OK(lm_ms_checkpoint_fail(ms, job, 1, tricky[2], &err));
    lm_ms_close(ms);

    ms = open_store();
    lm_ms_version v;
    lm_ms_job j;
    lm_ms_worker wk;
    lm_ms_checkpoint *c;
    size_t n;
    OK(lm_ms_version_get(ms, ids[0], 1, &v, &err));
    ck_assert_str_eq(v.query, tricky[2]);
    ck_assert_str_eq(v.plan_json, tricky[1]);
    lm_ms_version_fini(&v);
    OK(lm_ms_job_get(ms, job, &j, &err));
    ck_assert_str_eq(j.reason, tricky[0]);
    lm_ms_job_fini(&j);
    OK(lm_ms_worker_get(ms, w, &wk, &err));
    ck_assert_str_eq(wk.address, tricky[2]);
    ck_assert_str_eq(wk.data_address, tricky[1]);
    lm_ms_worker_fini(&wk);
    OK(lm_ms_checkpoint_list(ms, job, &c, &n, &err));
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(c[0].path, tricky[3]);
    ck_assert_str_eq(c[0].reason, tricky[2]);
    lm_ms_checkpoint_list_free(c, n);
    ck_assert_int_eq(direct("SELECT COUNT(*) FROM pipelines"), 4);
    lm_ms_close(ms);
}
END_TEST

START_TEST(test_metastore_data_survives_reopen)
{
    lm_ms *ms = open_store();
    lm_error err;
    int64_t pid, job, w, v;
    lm_ms_pipeline *pl;
    lm_ms_job_event *ev;
    lm_ms_worker *wl;
    lm_ms_checkpoint c;
    size_t n;

    job = make_job(ms, "durable", &pid);
    OK(lm_ms_job_set_state(ms, job, NULL, LM_MS_JOB_RUNNING, "scheduled", false, &err));
    OK(lm_ms_worker_register(ms, "tcp://127.0.0.1:6669", "tcp://127.0.0.1:6670", 2, &w, &err));
    OK(lm_ms_checkpoint_begin(ms, job, 1, "file:///c/1", &err));
    OK(lm_ms_checkpoint_complete(ms, job, 1, 42, &err));
    lm_ms_close(ms);

    ms = open_store();
    OK(lm_ms_schema_version(ms, &v, &err));
    ck_assert_int_eq(v, lm_ms_latest_version());
    OK(lm_ms_pipeline_list(ms, &pl, &n, &err));
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(pl[0].id, pid);
    ck_assert_str_eq(pl[0].name, "durable");
    ck_assert_int_eq(pl[0].latest_version, 1);
    lm_ms_pipeline_list_free(pl, n);
    OK(lm_ms_job_events(ms, job, &ev, &n, &err));
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(ev[1].state, LM_MS_JOB_RUNNING);
    ck_assert_str_eq(ev[1].reason, "scheduled");
    lm_ms_job_event_list_free(ev, n);
    OK(lm_ms_worker_list(ms, &wl, &n, &err));
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(wl[0].id, w);
    lm_ms_worker_list_free(wl, n);
    OK(lm_ms_checkpoint_latest(ms, job, &c, &err));
    ck_assert_int_eq(c.size_bytes, 42);
    lm_ms_checkpoint_fini(&c);
    /* new ids continue after the old ones */
    int64_t pid2 = make_pipeline(ms, "durable2", "SELECT 1");
    ck_assert_int_gt(pid2, pid);
    lm_ms_close(ms);
}
END_TEST

START_TEST(test_metastore_unreachable_database_is_a_clear_error)
{
    lm_error err;
    lm_ms *ms = (lm_ms *)&err; /* must come back NULL */
    char bad[600];

    if (bk == BK_SQLITE) {
        /* a path under a regular file cannot be made */
        lm_ms *ok = open_store(); /* creates the database file */
        lm_ms_close(ok);
        snprintf(bad, sizeof(bad), "%s/sub/laminar.db", url);
        ck_assert_int_eq(lm_ms_open(bad, &ms, &err), LM_EIO);
        ck_assert_ptr_null(ms);
        ck_assert_msg(strstr(err.msg, "metadata store") != NULL &&
                          strstr(err.msg, "cannot open") != NULL && strstr(err.msg, "/sub") != NULL,
                      "%s", err.msg);
        return;
    }
    /* a closed port: nothing listens there */
    int port = lm_test_free_port();
    snprintf(bad, sizeof(bad), "postgresql://laminar:s3cretPW@127.0.0.1:%d/laminar", port);
    ck_assert_int_eq(lm_ms_open(bad, &ms, &err), LM_EIO);
    ck_assert_ptr_null(ms);
    char want[128];
    snprintf(want, sizeof(want), "postgresql://laminar:***@127.0.0.1:%d/laminar", port);
    ck_assert_msg(strstr(err.msg, want) != NULL, "no masked URL in: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "s3cretPW") == NULL, "password shown: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "refused") != NULL || strstr(err.msg, "failed") != NULL,
                  "no driver reason in: %s", err.msg);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "not one line: %s", err.msg);

    /* key=value form, password masked too */
    snprintf(bad, sizeof(bad), "host=127.0.0.1 port=%d user=laminar password='s3cret PW' dbname=x",
             port);
    ck_assert_int_eq(lm_ms_open(bad, &ms, &err), LM_EIO);
    ck_assert_msg(strstr(err.msg, "password=***") != NULL && strstr(err.msg, "s3cret") == NULL,
                  "%s", err.msg);

    /* a live server without the database */
    snprintf(bad, sizeof(bad), "postgres://postgres:pw@127.0.0.1:%d/no_such_db", pg.port);
    ck_assert_int_eq(lm_ms_open(bad, &ms, &err), LM_EIO);
    ck_assert_msg(strstr(err.msg, "no_such_db") != NULL && strstr(err.msg, "does not exist"), "%s",
                  err.msg);
    ck_assert_msg(strstr(err.msg, ":pw@") == NULL, "%s", err.msg);
}
END_TEST

/* PostgreSQL only: the server drops the connection (a restart, a failover,
 * an administrator); the call that finds out fails with LM_ECLOSED, the next
 * one reconnects. */
START_TEST(test_metastore_reconnects_after_connection_loss)
{
    lm_ms *ms = open_store();
    lm_ms_pipeline *list;
    lm_error err;
    size_t n;
    int rv;

    make_pipeline(ms, "before", "SELECT 1");
    ck_assert_int_eq(direct("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = 'laminar' AND datname = current_database()"),
                     1);
    rv = lm_ms_pipeline_list(ms, &list, &n, &err);
    ck_assert_msg(rv == LM_ECLOSED, "%s: %s", lm_errname(rv), err.msg);
    ck_assert_msg(strstr(err.msg, "connection lost") != NULL, "%s", err.msg);
    OK(lm_ms_pipeline_list(ms, &list, &n, &err));
    ck_assert_uint_eq(n, 1);
    lm_ms_pipeline_list_free(list, n);
    make_pipeline(ms, "after", "SELECT 2");
    lm_ms_close(ms);
}
END_TEST

/* --- backend-free ------------------------------------------------------------ */

START_TEST(test_metastore_urls)
{
    char buf[256];
    lm_error err;
    lm_ms *ms;

    lm_text_mask_password("postgresql://u:secret@h:5432/db?sslmode=disable", buf, sizeof(buf));
    ck_assert_str_eq(buf, "postgresql://u:***@h:5432/db?sslmode=disable");
    lm_text_mask_password("postgresql://u@h/db?password=secret&x=1", buf, sizeof(buf));
    ck_assert_str_eq(buf, "postgresql://u@h/db?password=***&x=1");
    lm_text_mask_password("host=h password = 'a b\\' c' dbname=d", buf, sizeof(buf));
    ck_assert_str_eq(buf, "host=h password = *** dbname=d");
    lm_text_mask_password("sqlite:///var/lib/laminar.db", buf, sizeof(buf));
    ck_assert_str_eq(buf, "sqlite:///var/lib/laminar.db");
    ck_assert_uint_eq(lm_text_mask_password("postgresql://u:secret@h/db", buf, 12),
                      strlen("postgresql://u:***@h/db"));
    ck_assert_str_eq(buf, "postgresql:");
    ck_assert_uint_eq(lm_text_mask_password("postgresql://u:secret@h/db", NULL, 0),
                      strlen("postgresql://u:***@h/db"));
    /* an empty password hides nothing; a key=value value ends at a space
     * only, a URI's parameter at '&' */
    lm_text_mask_password("postgresql://u:@h/db?password=&x=1", buf, sizeof(buf));
    ck_assert_str_eq(buf, "postgresql://u:@h/db?password=&x=1");
    lm_text_mask_password("host=h password='' dbname=d", buf, sizeof(buf));
    ck_assert_str_eq(buf, "host=h password='' dbname=d");
    lm_text_mask_password("host=h password=a&b#c dbname=d", buf, sizeof(buf));
    ck_assert_str_eq(buf, "host=h password=*** dbname=d");
    lm_text_mask_password("postgres://h/db?password='a&b=1", buf, sizeof(buf));
    ck_assert_str_eq(buf, "postgres://h/db?password=***&b=1");

    ck_assert_int_eq(lm_ms_open("mysql://x/y", &ms, &err), LM_EINVAL);
    ck_assert_msg(strstr(err.msg, "mysql://x/y") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_ms_open("", &ms, &err), LM_EINVAL);
    ck_assert_int_eq(lm_ms_open("sqlite://", &ms, &err), LM_EINVAL);

    /* an in-memory database works, migrations and all */
    int64_t v;
    ck_assert_int_eq(lm_ms_open("sqlite://:memory:", &ms, &err), LM_OK);
    OK(lm_ms_schema_version(ms, &v, &err));
    ck_assert_int_eq(v, lm_ms_latest_version());
    lm_ms_close(ms);
    lm_ms_close(NULL);

    /* the URL a configuration names */
    lm_config cfg;
    char *u;
    ck_assert_int_eq(lm_config_init(&cfg), LM_OK);
    ck_assert_int_eq(lm_ms_config_url(&cfg, &u, &err), LM_OK);
    ck_assert_str_eq(u, "sqlite:///tmp/laminar/laminar.db");
    free(u);
    ck_assert_int_eq(lm_config_set(&cfg, "database.type", "postgres", &err), LM_OK);
    ck_assert_int_eq(lm_ms_config_url(&cfg, &u, &err), LM_ECONFIG);
    ck_assert_int_eq(lm_config_set(&cfg, "database.postgres.url", "postgres://h/db", &err), LM_OK);
    ck_assert_int_eq(lm_ms_config_url(&cfg, &u, &err), LM_OK);
    ck_assert_str_eq(u, "postgres://h/db");
    free(u);
    lm_config_fini(&cfg);
}
END_TEST

static void
add_store_tests(TCase *tc)
{
    tcase_add_checked_fixture(tc, fresh_database, NULL);
    tcase_add_test(tc, test_metastore_migrations_apply_once);
    tcase_add_test(tc, test_metastore_pipeline_crud);
    tcase_add_test(tc, test_metastore_pipeline_duplicate_name);
    tcase_add_test(tc, test_metastore_pipeline_versions);
    tcase_add_test(tc, test_metastore_job_states_recorded_as_events);
    tcase_add_test(tc, test_metastore_workers);
    tcase_add_test(tc, test_metastore_checkpoints_latest_completed);
    tcase_add_test(tc, test_metastore_strings_round_trip);
    tcase_add_test(tc, test_metastore_data_survives_reopen);
    tcase_add_test(tc, test_metastore_unreachable_database_is_a_clear_error);
    tcase_set_timeout(tc, 30);
}

Suite *
metastore_suite(void)
{
    Suite *s = suite_create("metastore");
    TCase *common = tcase_create("common");
    TCase *sqlite = tcase_create("sqlite");
    TCase *postgres = tcase_create("postgres");

    tcase_add_test(common, test_metastore_urls);
    suite_add_tcase(s, common);

    tcase_add_unchecked_fixture(sqlite, sqlite_start, sqlite_stop);
    add_store_tests(sqlite);
    suite_add_tcase(s, sqlite);

    tcase_add_unchecked_fixture(postgres, pg_start, pg_stop);
    add_store_tests(postgres);
    tcase_add_test(postgres, test_metastore_reconnects_after_connection_loss);
    tcase_set_timeout(postgres, 60); /* CREATE DATABASE per test, on a slow disk */
    suite_add_tcase(s, postgres);
    return s;
}
