/*
 * check_nexmark_oracle.c: Laminar's answers to the Nexmark queries against
 * DuckDB's, on the same 1,000,000 events.
 *
 * The suite dumps the events once (lm_nexmark_dump, an unchecked fixture)
 * into CSV files. Each test loads a query's plan from
 * scripts/nexmark/plans/<q>.json, replaces its sink (the operator "sink")
 * by a file sink writing JSON lines, bounds every nexmark source to the
 * same 1,000,000 events, and runs it at parallelism 1 and 2; meanwhile
 * test/oracle/oracle.mjs (node, DuckDB) computes the query's batch answer
 * from the dump and writes it in the file sink's exact format. An updating
 * result (a last column "_retract") is reduced to its final multiset
 * first. The two multisets must be equal, line for line.
 *
 * Adding a query: an entry in NEXMARK_ORACLE_QUERIES below (its plan must
 * exist as scripts/nexmark/plans/<q>.json and its DuckDB SQL in the
 * QUERIES table of test/oracle/oracle.mjs).
 *
 * Paths are relative to the repository root, the tests' working directory,
 * or to $LM_TEST_ROOT when set. With $LM_TEST_VERBOSE set, each test
 * prints its row count and timings.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lm_log.h"
#include "lm_nexmark.h"
#include "lm_plan.h"
#include "lm_proto.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_test.h"

/* The queries: X(name, extra) runs plan scripts/nexmark/plans/<name>.json
 * against oracle query <name>; extra is a space-separated list of further
 * "op.key=value" plan overrides ("" for none). Every nexmark source gets
 * events.num=ORACLE_EVENTS; the other generator options must be the
 * defaults, as in the dump. */
#define NEXMARK_ORACLE_QUERIES(X)                                                                  \
    X(q0, "")                                                                                      \
    X(q1, "")                                                                                      \
    X(q2, "")                                                                                      \
    X(q3, "")                                                                                      \
    X(q4, "")                                                                                      \
    X(q5, "")                                                                                      \
    X(q7, "")                                                                                      \
    X(q8, "")

/* The same queries compiled from SQL (scripts/nexmark/sql/<name>.sql). */
#define NEXMARK_SQL_ORACLE_QUERIES(X)                                                              \
    X(q0)                                                                                          \
    X(q1)                                                                                          \
    X(q2)                                                                                          \
    X(q3)                                                                                          \
    X(q4)                                                                                          \
    X(q5)                                                                                          \
    X(q7)                                                                                          \
    X(q8)

#define ORACLE_EVENTS 1000000
#define ORACLE_LOOPS  2

static const uint32_t oracle_parallelisms[] = {1, 2};
#define ORACLE_NPAR (sizeof(oracle_parallelisms) / sizeof(oracle_parallelisms[0]))

/* --- the dump (once per run of the suite) ------------------------------- */

static char dump_dir[256];
static char dump_err[LM_ERROR_MSG_MAX + 64]; /* why the dump failed, "" when it did not */
static lm_nexmark_cfg dump_cfg;

static void
dump_setup(void)
{
    lm_error err;
    char n[32];

    dump_dir[0] = '\0';
    dump_err[0] = '\0';
    snprintf(dump_dir, sizeof(dump_dir), "%s", lm_test_tmpdir());
    if (strcmp(dump_dir, "/tmp") == 0) {
        snprintf(dump_err, sizeof(dump_err), "cannot make a temporary directory: %s",
                 strerror(errno));
        dump_dir[0] = '\0';
        return;
    }
    snprintf(n, sizeof(n), "%d", ORACLE_EVENTS);
    lm_nexmark_cfg_defaults(&dump_cfg);
    if (lm_nexmark_cfg_set(&dump_cfg, "events.num", n, &err) != LM_OK ||
        lm_nexmark_dump(&dump_cfg, dump_dir, &err) != LM_OK) {
        snprintf(dump_err, sizeof(dump_err), "dumping the events: %s", err.msg);
    }
}

static void
dump_teardown(void)
{
    lm_error err;
    if (dump_dir[0] != '\0') {
        lm_storage_remove_tree(dump_dir, &err);
        dump_dir[0] = '\0';
    }
}

/* --- the plan ----------------------------------------------------------------- */

/* A prepared plan: JSON text with the file sink, and its overrides. */
typedef struct oracle_plan {
    char *json;  /* the plan with its sink writing JSON lines to out_dir */
    char **sets; /* NULL-terminated "op.key=value" overrides, or NULL */
    size_t nsets;
    bool retract; /* the sink's input ends with a "_retract" column */
} oracle_plan;

static void
oracle_plan_free(oracle_plan *p)
{
    free(p->json);
    for (size_t i = 0; i < p->nsets; i++) {
        free(p->sets[i]);
    }
    free(p->sets);
    memset(p, 0, sizeof(*p));
}

static bool
add_set(oracle_plan *p, const char *set)
{
    char **ns = realloc(p->sets, (p->nsets + 2) * sizeof(char *));

    if (ns == NULL) {
        return false;
    }
    p->sets = ns;
    if ((p->sets[p->nsets] = strdup(set)) == NULL) {
        return false;
    }
    p->sets[++p->nsets] = NULL;
    return true;
}

/* Checks that the nexmark operator op generates the dump's events: its
 * generator options, events.num set to ORACLE_EVENTS, must give the dump's
 * configuration (emit.rate aside: it only paces the source). */
static bool
check_generator(json_t *op, const char *id, lm_report *r)
{
    json_t *config = json_object_get(op, "config");
    lm_nexmark_cfg cfg;
    lm_error err;

    lm_nexmark_cfg_defaults(&cfg);
    for (uint32_t i = 0; lm_nexmark_option(i) != NULL && json_is_object(config); i++) {
        json_t *v = json_object_get(config, lm_nexmark_option(i));
        char buf[64];
        if (v == NULL) {
            continue;
        }
        if (json_is_string(v)) {
            snprintf(buf, sizeof(buf), "%s", json_string_value(v));
        } else if (json_is_integer(v)) {
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        } else {
            lm_report_fail(r,
                           "plan: nexmark operator '%s': option '%s' is neither a string nor an "
                           "integer",
                           id, lm_nexmark_option(i));
            return false;
        }
        if (lm_nexmark_cfg_set(&cfg, lm_nexmark_option(i), buf, &err) != LM_OK) {
            lm_report_fail(r, "plan: nexmark operator '%s': %s", id, err.msg);
            return false;
        }
    }
    cfg.events_num = dump_cfg.events_num;
    cfg.emit_rate = dump_cfg.emit_rate;
    cfg.next_rate = dump_cfg.next_rate; /* unused by the generator */
    if (cfg.first_rate != dump_cfg.first_rate ||
        cfg.person_proportion != dump_cfg.person_proportion ||
        cfg.auction_proportion != dump_cfg.auction_proportion ||
        cfg.bid_proportion != dump_cfg.bid_proportion || cfg.seed != dump_cfg.seed ||
        cfg.base_time_ms != dump_cfg.base_time_ms || cfg.ooo_group != dump_cfg.ooo_group) {
        lm_report_fail(r,
                       "plan: nexmark operator '%s' sets generator options other than the "
                       "defaults the oracle's dump uses (rate, proportions, seed, base-time, "
                       "out-of-order.group); extend the suite to dump with them",
                       id);
        return false;
    }
    return true;
}

/* Loads scripts/nexmark/plans/<query>.json and prepares it: sink "sink"
 * becomes a JSON-lines file sink writing into out_dir, every nexmark
 * operator gets events.num, then the extra overrides. */
static bool
prepare_plan(const char *query, const char *extra, const char *out_dir, oracle_plan *p,
             lm_report *r)
{
    json_t *doc, *ops, *op;
    size_t i;
    bool ok = false;

    memset(p, 0, sizeof(*p));
    if ((doc = lm_test_nexmark_plan(query, out_dir, &p->retract, r)) == NULL) {
        return false;
    }
    ops = json_object_get(doc, "operators");
    json_array_foreach(ops, i, op)
    {
        const char *id = json_string_value(json_object_get(op, "id"));
        const char *kind = json_string_value(json_object_get(op, "kind"));
        if (id != NULL && kind != NULL && strcmp(kind, "nexmark") == 0) {
            char set[320];
            snprintf(set, sizeof(set), "%s.events.num=%d", id, ORACLE_EVENTS);
            if (!check_generator(op, id, r)) {
                goto out;
            }
            if (!add_set(p, set)) {
                lm_report_fail(r, "out of memory");
                goto out;
            }
        }
    }
    /* the extra overrides */
    for (const char *s = extra; *s != '\0';) {
        size_t n;
        char one[256];
        while (*s == ' ') {
            s++;
        }
        n = strcspn(s, " ");
        if (n == 0) {
            break;
        }
        snprintf(one, sizeof(one), "%.*s", (int)n, s);
        if (!add_set(p, one)) {
            lm_report_fail(r, "out of memory");
            goto out;
        }
        s += n;
    }
    if ((p->json = json_dumps(doc, JSON_COMPACT)) == NULL) {
        lm_report_fail(r, "out of memory");
        goto out;
    }
    ok = true;
out:
    json_decref(doc);
    if (!ok) {
        oracle_plan_free(p);
    }
    return ok;
}

/* --- one query ------------------------------------------------------------------ */

static void
run_query(const char *query, const char *extra)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    lm_report r = {.len = 0, .failed = false};
    char work[256], out_dir[ORACLE_NPAR][512], oracle_out[512], oracle_log[512];
    oracle_plan plans[ORACLE_NPAR];
    bool prepared[ORACLE_NPAR] = {false};
    char *want_text = NULL, **want = NULL;
    size_t want_len = 0, nwant = 0;
    pid_t oracle = -1;
    int64_t t0 = lm_test_now_ms(), t_oracle = 0;
    double t_run[ORACLE_NPAR] = {0};
    lm_error err;

    lm_log_configure(&lo, NULL);
    ck_assert_msg(dump_err[0] == '\0', "%s", dump_err);
    snprintf(work, sizeof(work), "%s", lm_test_tmpdir());
    ck_assert_msg(strcmp(work, "/tmp") != 0, "cannot make a temporary directory: %s",
                  strerror(errno));
    snprintf(oracle_out, sizeof(oracle_out), "%s/oracle.jsonl", work);
    snprintf(oracle_log, sizeof(oracle_log), "%s/oracle.log", work);

    for (size_t k = 0; k < ORACLE_NPAR && !r.failed; k++) {
        snprintf(out_dir[k], sizeof(out_dir[k]), "%s/laminar-p%u", work, oracle_parallelisms[k]);
        if (mkdir(out_dir[k], 0755) != 0) {
            lm_report_fail(&r, "mkdir %s: %s", out_dir[k], strerror(errno));
        } else {
            prepared[k] = prepare_plan(query, extra, out_dir[k], &plans[k], &r);
        }
    }
    /* DuckDB works while Laminar runs */
    if (!r.failed) {
        char name[64]; /* "q5.sql" is query q5 */
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(query, "."), query);
        oracle = lm_test_oracle_start(name, dump_dir, oracle_out, oracle_log, &r);
    }
    for (size_t k = 0; k < ORACLE_NPAR && !r.failed; k++) {
        lm_plan_opts po = {oracle_parallelisms[k], 0, (const char *const *)plans[k].sets};
        lm_job_result res;
        int rv;
        memset(&res, 0, sizeof(res));
        rv = lm_test_run_plan(plans[k].json, ORACLE_LOOPS, &po, NULL, &res, &err);
        t_run[k] = res.seconds;
        if (rv != LM_OK) {
            lm_report_fail(&r, "%s at parallelism %u: %s", query, oracle_parallelisms[k], err.msg);
        } else if (res.state != LM_JOB_FINISHED) {
            lm_report_fail(&r, "%s at parallelism %u: the job ended in state %d: %s", query,
                           oracle_parallelisms[k], res.state, res.reason);
        }
    }
    if (oracle > 0) {
        if (lm_test_oracle_wait(oracle, oracle_log, 120000 * lm_test_slowdown(), &r)) {
            t_oracle = lm_test_now_ms() - t0;
            if ((want_text = lm_test_read_file(oracle_out, &want_len)) == NULL ||
                (want = lm_test_split_lines(want_text, want_len, &nwant)) == NULL) {
                lm_report_fail(&r, "cannot read the oracle's answer %s", oracle_out);
            }
        }
    }
    for (size_t k = 0; k < ORACLE_NPAR && !r.failed; k++) {
        char what[64];
        snprintf(what, sizeof(what), "%s at parallelism %u", query, oracle_parallelisms[k]);
        lm_test_compare_dir(out_dir[k], plans[k].retract, want, nwant, what, "Laminar", "DuckDB",
                            &r);
    }
    if (!r.failed && getenv("LM_TEST_VERBOSE") != NULL) {
        fprintf(stderr,
                "nexmark oracle %s: %zu rows, equal; Laminar p1 %.2f s, p2 %.2f s; "
                "DuckDB done after %.2f s; %.2f s in all\n",
                query, nwant, t_run[0], ORACLE_NPAR > 1 ? t_run[1] : 0.0, t_oracle / 1000.0,
                (lm_test_now_ms() - t0) / 1000.0);
    }

    free(want);
    free(want_text);
    for (size_t k = 0; k < ORACLE_NPAR; k++) {
        if (prepared[k]) {
            oracle_plan_free(&plans[k]);
        }
    }
    lm_storage_remove_tree(work, &err);
    lm_msg_pool_trim();
    ck_assert_msg(!r.failed, "%s", r.msg);
}

#define SQL_ORACLE_TEST(q)                                                                         \
    START_TEST(test_nexmark_sql_oracle_##q)                                                        \
    {                                                                                              \
        run_query(#q ".sql", "");                                                                  \
    }                                                                                              \
    END_TEST
NEXMARK_SQL_ORACLE_QUERIES(SQL_ORACLE_TEST)
#undef SQL_ORACLE_TEST

#define ORACLE_TEST(q, extra)                                                                      \
    START_TEST(test_nexmark_oracle_##q)                                                            \
    {                                                                                              \
        run_query(#q, extra);                                                                      \
    }                                                                                              \
    END_TEST
NEXMARK_ORACLE_QUERIES(ORACLE_TEST)
#undef ORACLE_TEST

Suite *
nexmark_oracle_suite(void)
{
    Suite *s = suite_create("nexmark_oracle");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, dump_setup, dump_teardown);
    tcase_set_timeout(tc, 120);
#define ORACLE_ADD(q, extra) tcase_add_test(tc, test_nexmark_oracle_##q);
    NEXMARK_ORACLE_QUERIES(ORACLE_ADD)
#undef ORACLE_ADD
#define SQL_ORACLE_ADD(q) tcase_add_test(tc, test_nexmark_sql_oracle_##q);
    NEXMARK_SQL_ORACLE_QUERIES(SQL_ORACLE_ADD)
#undef SQL_ORACLE_ADD
    suite_add_tcase(s, tc);
    return s;
}
