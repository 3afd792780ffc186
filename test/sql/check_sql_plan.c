/*
 * check_sql_plan.c: what the SQL compiler makes of pipelines: the plans it
 * chooses for the Nexmark queries (sources narrowed, the right joins and
 * windows, shared work merged), Arroyo's window syntax giving the same
 * plans as Flink's, EXPLAIN, and pipelines over files run to their results.
 *
 * The Nexmark queries' results are checked against DuckDB in the
 * nexmark_oracle suite; here the plans themselves are.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jansson.h>

#include "lm_log.h"
#include "lm_sql.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_test.h"

/* Compiles a file under scripts/nexmark/sql (aborts the test on an error). */
static json_t *
compile_file(const char *rel)
{
    char path[1024];
    size_t len;
    lm_sql_diag d;
    json_t *plan = NULL;

    snprintf(path, sizeof(path), "%s/scripts/nexmark/sql/%s", lm_test_root(), rel);
    char *text = lm_test_read_file(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    int rv = lm_sql_compile(text, len, NULL, &plan, NULL, &d);
    free(text);
    ck_assert_msg(rv == LM_OK, "%s:%u:%u: %s", path, d.pos.line, d.pos.col, d.msg);
    return plan;
}

static json_t *
compile_text(const char *text, lm_sql_diag *d)
{
    json_t *plan = NULL;
    int rv = lm_sql_compile(text, strlen(text), NULL, &plan, NULL, d);
    ck_assert_msg(rv == LM_OK, "%u:%u: %s", d->pos.line, d->pos.col, d->msg);
    return plan;
}

/* The operators of kind k; *first gets the first. */
static int
count_kind(const json_t *plan, const char *kind, const json_t **first)
{
    const json_t *ops = json_object_get(plan, "operators");
    int n = 0;
    for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t *op = json_array_get(ops, i);
        if (strcmp(json_string_value(json_object_get(op, "kind")), kind) == 0) {
            if (n++ == 0 && first != NULL) {
                *first = op;
            }
        }
    }
    return n;
}

static bool
strings_are(const json_t *arr, const char *const *want)
{
    size_t n = 0;
    while (want[n] != NULL) {
        n++;
    }
    if (json_array_size(arr) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(json_string_value(json_array_get(arr, i)), want[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* The edges into operator id. */
static int
edges_into(const json_t *plan, const char *id, const char *kind)
{
    const json_t *edges = json_object_get(plan, "edges");
    int n = 0;
    for (size_t i = 0; i < json_array_size(edges); i++) {
        const json_t *e = json_array_get(edges, i);
        const char *k = json_string_value(json_object_get(e, "kind"));
        if (strcmp(json_string_value(json_object_get(e, "to")), id) == 0 &&
            strcmp(k != NULL ? k : "forward", kind) == 0) {
            n++;
        }
    }
    return n;
}

/* A view filtered on event_type makes the source generate that kind, and
 * only the columns the query reads; the computed dateTime is the
 * generator's own; a plain projection into a blackhole needs no calc. */
START_TEST(test_sql_nexmark_source_narrowed)
{
    json_t *plan = compile_file("q0.sql");
    const json_t *src = NULL;
    static const char *const cols[] = {"bid.auction", "bid.bidder", "bid.price",
                                       "bid.extra",   "dateTime",   NULL};
    static const char *const kinds[] = {"bid", NULL};

    ck_assert_int_eq(count_kind(plan, "nexmark", &src), 1);
    const json_t *config = json_object_get(src, "config");
    ck_assert(strings_are(json_object_get(config, "kinds"), kinds));
    ck_assert(strings_are(json_object_get(config, "columns"), cols));
    /* nothing works on event time: no watermark */
    ck_assert_int_eq(count_kind(plan, "watermark", NULL), 0);
    ck_assert_int_eq(count_kind(plan, "calc", NULL), 0); /* into a blackhole: no renaming */
    json_decref(plan);

    /* q2 reads two columns (and no time: no watermark to make) */
    plan = compile_file("q2.sql");
    static const char *const cols2[] = {"bid.auction", "bid.price", NULL};
    ck_assert_int_eq(count_kind(plan, "nexmark", &src), 1);
    ck_assert(strings_are(json_object_get(json_object_get(src, "config"), "columns"), cols2));
    json_decref(plan);
}
END_TEST

/* q3 reads persons and auctions from one shared source, filters each,
 * and joins them with an updating join shuffled on the keys. */
START_TEST(test_sql_nexmark_q3_shared_source_join)
{
    json_t *plan = compile_file("q3.sql");
    const json_t *src = NULL, *join = NULL;
    static const char *const kinds[] = {"person", "auction", NULL};

    ck_assert_int_eq(count_kind(plan, "nexmark", &src), 1);
    ck_assert(strings_are(json_object_get(json_object_get(src, "config"), "kinds"), kinds));
    ck_assert_int_eq(count_kind(plan, "join", &join), 1);
    const char *id = json_string_value(json_object_get(join, "id"));
    ck_assert_int_eq(edges_into(plan, id, "shuffle"), 2);
    const json_t *config = json_object_get(join, "config");
    ck_assert_int_eq(json_array_size(json_object_get(config, "left_keys")), 1);
    json_decref(plan);
}
END_TEST

/* q4: BETWEEN over the other side's time makes an interval join (the
 * upper bound a column), under two updating aggregates. */
START_TEST(test_sql_nexmark_q4_interval_join)
{
    json_t *plan = compile_file("q4.sql");
    const json_t *join = NULL;

    ck_assert_int_eq(count_kind(plan, "interval_join", &join), 1);
    const json_t *config = json_object_get(join, "config");
    ck_assert_str_eq(json_string_value(json_object_get(config, "upper_column")), "expires");
    ck_assert_int_eq(json_integer_value(json_object_get(config, "lower_ms")), 0);
    ck_assert_int_eq(count_kind(plan, "aggregate", NULL), 2);
    ck_assert_int_eq(count_kind(plan, "join", NULL), 0);
    /* auctions and bids from one source whose dateTime (the CASE over the
     * kinds in the DDL) the generator makes itself: two filters, no more */
    ck_assert_int_eq(count_kind(plan, "nexmark", NULL), 1);
    ck_assert_int_eq(count_kind(plan, "calc", NULL), 2);
    json_decref(plan);
}
END_TEST

/* q5: the per-auction counts are computed once and feed both the maximum
 * and the window join. */
START_TEST(test_sql_nexmark_q5_shared_windows)
{
    json_t *plan = compile_file("q5.sql");
    const json_t *w = NULL;

    ck_assert_int_eq(count_kind(plan, "window_join", NULL), 1);
    ck_assert_int_eq(count_kind(plan, "window_aggregate", &w), 2);
    ck_assert_int_eq(count_kind(plan, "watermark", NULL), 1); /* windows need event time */
    ck_assert(json_integer_value(json_object_get(plan, "watermark_alignment_ms")) > 0);
    const json_t *win = json_object_get(json_object_get(w, "config"), "window");
    ck_assert_str_eq(json_string_value(json_object_get(win, "type")), "hop");
    ck_assert_int_eq(json_integer_value(json_object_get(win, "size_ms")), 10000);
    ck_assert_int_eq(json_integer_value(json_object_get(win, "slide_ms")), 2000);
    json_decref(plan);
}
END_TEST

/* q7: a global window maximum in two phases (partial per subtask, merged
 * per window), then an interval join on the window's end. */
START_TEST(test_sql_nexmark_q7_two_phase_interval)
{
    json_t *plan = compile_file("q7.sql");
    const json_t *ops = json_object_get(plan, "operators"), *join = NULL;
    int tumble = 0, given = 0;

    for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t *op = json_array_get(ops, i);
        const json_t *win = json_object_get(json_object_get(op, "config"), "window");
        const char *t = json_string_value(json_object_get(win, "type"));
        tumble += t != NULL && strcmp(t, "tumble") == 0;
        given += t != NULL && strcmp(t, "given") == 0;
    }
    ck_assert_int_eq(tumble, 1);
    ck_assert_int_eq(given, 1);
    ck_assert_int_eq(count_kind(plan, "interval_join", &join), 1);
    const json_t *config = json_object_get(join, "config");
    ck_assert_int_eq(json_integer_value(json_object_get(config, "lower_ms")), -10000);
    ck_assert_int_eq(json_integer_value(json_object_get(config, "upper_ms")), 0);
    json_decref(plan);
}
END_TEST

/* Arroyo's GROUP BY tumble(...)/hop(...) gives exactly the plans of
 * Flink's window table functions. */
START_TEST(test_sql_arroyo_windows_same_plans)
{
    static const char *const qs[] = {"q5", "q7", "q8"};
    for (size_t i = 0; i < 3; i++) {
        char a[64], f[64];
        snprintf(f, sizeof(f), "%s.sql", qs[i]);
        snprintf(a, sizeof(a), "arroyo/%s.sql", qs[i]);
        json_t *pf = compile_file(f), *pa = compile_file(a);
        ck_assert_msg(json_equal(pf, pa), "%s: Arroyo's form compiles to another plan", qs[i]);
        json_decref(pf);
        json_decref(pa);
    }
}
END_TEST

/* EXPLAIN shows both plans, with the operators, their parallelism and
 * the edges. */
START_TEST(test_sql_explain)
{
    char path[1024], *out = NULL;
    size_t len, outlen = 0;
    lm_sql_diag d;
    lm_sql_opts o = {NULL, 4};

    snprintf(path, sizeof(path), "%s/scripts/nexmark/sql/q5.sql", lm_test_root());
    char *text = lm_test_read_file(path, &len);
    ck_assert(text != NULL);
    FILE *f = open_memstream(&out, &outlen);
    ck_assert(f != NULL);
    ck_assert_int_eq(lm_sql_explain(text, len, &o, f, &d), LM_OK);
    fclose(f);
    free(text);
    static const char *const want[] = {"== logical plan ==",
                                       "WindowJoin",
                                       "WindowAggregate HOP size 10000 ms slide 2000 ms",
                                       "Scan datagen (connector nexmark, kinds bid",
                                       "== physical plan (parallelism 4) ==",
                                       "window_join, parallelism 4",
                                       "<- shuffle on window_start, window_end",
                                       "nexmark, parallelism 4",
                                       NULL};
    for (size_t i = 0; want[i] != NULL; i++) {
        ck_assert_msg(strstr(out, want[i]) != NULL, "no '%s' in:\n%s", want[i], out);
    }
    free(out);
}
END_TEST

/* SET parallelism is the plan's default; an option given to the compiler wins. */
START_TEST(test_sql_set_parallelism)
{
    lm_sql_diag d;
    json_t *plan = compile_text("SET parallelism = 3;\n"
                                "CREATE TABLE t (counter BIGINT, ts TIMESTAMP) WITH ("
                                "'connector' = 'impulse', 'count' = '10');\n"
                                "SELECT counter FROM t;",
                                &d);
    ck_assert_int_eq(json_integer_value(json_object_get(plan, "parallelism")), 3);
    json_decref(plan);
}
END_TEST

/* --- pipelines over files, run ----------------------------------------- */

static char *
sql_with_dir(const char *fmt, const char *dir)
{
    size_t n = strlen(fmt) + 8 * strlen(dir) + 1;
    char *s = malloc(n);
    ck_assert(s != NULL);
    snprintf(s, n, fmt, dir, dir, dir, dir);
    return s;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* Runs a SQL pipeline in this process at the plan's parallelism, or at
 * par (as `laminard run -p` does) when par > 0. */
static void
run_sql_at(const char *sql, uint32_t par)
{
    lm_sql_diag d;
    lm_job_result res;
    lm_error err;
    json_t *plan = compile_text(sql, &d);
    char *doc = json_dumps(plan, JSON_COMPACT);
    json_decref(plan);
    ck_assert(doc != NULL);
    memset(&res, 0, sizeof(res));
    lm_plan_opts po = {par, 0, NULL};
    int rv = lm_test_run_plan(doc, 2, &po, NULL, &res, &err);
    free(doc);
    ck_assert_msg(rv == LM_OK, "%s", err.msg);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "job ended in state %d: %s", res.state, res.reason);
}

/* Finds the output row whose field key has the string value v. */
static json_t *
row_with(json_t **rows, size_t n, const char *key, const char *v)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_object_get(rows[i], key));
        if (s != NULL && strcmp(s, v) == 0) {
            return rows[i];
        }
    }
    return NULL;
}

static json_t **
parse_rows(char **lines, size_t n)
{
    json_t **rows = calloc(n + 1, sizeof(json_t *));
    ck_assert(rows != NULL);
    for (size_t i = 0; i < n; i++) {
        rows[i] = json_loads(lines[i], 0, NULL);
        ck_assert_msg(rows[i] != NULL, "not JSON: %s", lines[i]);
    }
    return rows;
}

static void
free_rows(json_t **rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(rows[i]);
    }
    free(rows);
}

/* Runs the pipeline fmt (every %s is dir) at par (0: the plan's) with
 * quiet logs; returns the lines its sink wrote under dir/out (*n of them). */
static char **
run_to_lines(const char *fmt, const char *dir, uint32_t par, size_t *n)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    char outdir[600];

    lm_log_configure(&lo, NULL);
    char *sql = sql_with_dir(fmt, dir);
    run_sql_at(sql, par);
    free(sql);
    snprintf(outdir, sizeof(outdir), "%s/out", dir);
    char **lines = lm_test_read_lines(outdir, n);
    ck_assert(lines != NULL);
    return lines;
}

/* Tumbling windows over JSON-lines files: a filter, sum and count per
 * customer and window, HAVING, into a file sink. */
START_TEST(test_sql_file_pipeline_windows)
{
    char in[600];
    const char *dir = lm_test_tmpdir();
    lm_error err;

    snprintf(in, sizeof(in), "%s/in", dir);
    ck_assert_int_eq(mkdir(in, 0755), 0);
    char path[700];
    snprintf(path, sizeof(path), "%s/orders.jsonl", in);
    write_file(path,
               "{\"id\":1,\"customer\":\"ann\",\"amount\":5.5,\"ts\":\"2024-01-01 00:00:01\"}\n"
               "{\"id\":2,\"customer\":\"bob\",\"amount\":0.5,\"ts\":\"2024-01-01 00:00:02\"}\n"
               "{\"id\":3,\"customer\":\"ann\",\"amount\":4.5,\"ts\":\"2024-01-01 00:00:03\"}\n"
               "{\"id\":4,\"customer\":\"bob\",\"amount\":7,\"ts\":\"2024-01-01 00:00:04\"}\n"
               "{\"id\":5,\"customer\":\"cy\",\"amount\":9,\"ts\":\"2024-01-01 00:00:05\"}\n"
               "{\"id\":6,\"customer\":\"ann\",\"amount\":1,\"ts\":\"2024-01-01 00:00:12\"}\n"
               "{\"id\":7,\"customer\":\"ann\",\"amount\":2,\"ts\":\"2024-01-01 00:00:13\"}\n"
               "{\"id\":8,\"customer\":\"bob\",\"amount\":3,\"ts\":\"2024-01-01 00:00:14\"}\n");
    size_t n;
    char **lines = run_to_lines(
        "CREATE TABLE orders (id BIGINT, customer VARCHAR, amount DOUBLE, ts TIMESTAMP(3),\n"
        "  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)\n"
        "  WITH ('connector' = 'filesystem', 'path' = '%s/in', 'format' = 'json');\n"
        "CREATE TABLE totals (customer VARCHAR, total DOUBLE, n BIGINT, wend TIMESTAMP(3))\n"
        "  WITH ('connector' = 'filesystem', 'path' = '%s/out', 'format' = 'json');\n"
        "INSERT INTO totals\n"
        "SELECT customer, SUM(amount), COUNT(*) AS n, window_end\n"
        "FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))\n"
        "WHERE amount > 1\n"
        "GROUP BY customer, window_start, window_end\n"
        "HAVING COUNT(*) >= 2;\n",
        dir, 0, &n);
    json_t **rows = parse_rows(lines, n);
    /* window [0, 10): ann 5.5 + 4.5 (2 rows); bob has one row above 1; cy one.
     * window [10, 20): ann 1 is not > 1, so ann has one; bob one. */
    ck_assert_int_eq(n, 1);
    json_t *ann = row_with(rows, n, "customer", "ann");
    ck_assert(ann != NULL);
    ck_assert(json_real_value(json_object_get(ann, "total")) == 10.0 ||
              json_integer_value(json_object_get(ann, "total")) == 10);
    ck_assert_int_eq(json_integer_value(json_object_get(ann, "n")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(ann, "wend")), "2024-01-01 00:00:10.000000");
    free_rows(rows, n);
    lm_test_free_lines(lines, n);
    lm_storage_remove_tree(dir, &err);
}
END_TEST

/* An updating GROUP BY (a changelog: retractions and new values) over a
 * LEFT JOIN, with CASE, LIKE and CAST; the final rows are what a batch
 * query gives. */
START_TEST(test_sql_file_pipeline_updating)
{
    char orders[600], customers[600], path[700];
    const char *dir = lm_test_tmpdir();
    lm_error err;

    snprintf(orders, sizeof(orders), "%s/orders", dir);
    snprintf(customers, sizeof(customers), "%s/customers", dir);
    ck_assert_int_eq(mkdir(orders, 0755), 0);
    ck_assert_int_eq(mkdir(customers, 0755), 0);
    snprintf(path, sizeof(path), "%s/o.jsonl", orders);
    write_file(path, "{\"id\":1,\"cust\":10,\"amount\":5}\n"
                     "{\"id\":2,\"cust\":11,\"amount\":50}\n"
                     "{\"id\":3,\"cust\":10,\"amount\":500}\n"
                     "{\"id\":4,\"cust\":12,\"amount\":7}\n");
    snprintf(path, sizeof(path), "%s/c.jsonl", customers);
    write_file(path, "{\"id\":10,\"name\":\"Anna\"}\n"
                     "{\"id\":11,\"name\":\"Bert\"}\n");
    size_t n, nfinal;
    char **lines = run_to_lines(
        "CREATE TABLE orders (id BIGINT, cust BIGINT, amount BIGINT)\n"
        "  WITH ('connector' = 'filesystem', 'path' = '%s/orders', 'format' = 'json');\n"
        "CREATE TABLE customers (id BIGINT, name VARCHAR)\n"
        "  WITH ('connector' = 'filesystem', 'path' = '%s/customers', 'format' = 'json');\n"
        "CREATE TABLE out (who VARCHAR, size VARCHAR, orders BIGINT, spent BIGINT)\n"
        "  WITH ('connector' = 'filesystem', 'path' = '%s/out', 'format' = 'json');\n"
        "INSERT INTO out\n"
        "SELECT who, size, COUNT(*), SUM(amount) FROM (\n"
        "  SELECT CASE WHEN c.name IS NULL THEN 'unknown' ELSE c.name END AS who,\n"
        "         CASE WHEN o.amount >= 100 THEN 'big' ELSE 'small' END AS size,\n"
        "         CAST(o.amount AS BIGINT) AS amount\n"
        "  FROM orders o LEFT JOIN customers c ON o.cust = c.id\n"
        "  WHERE c.name IS NULL OR c.name LIKE 'A%%' OR c.name LIKE 'B%%') x\n"
        "GROUP BY who, size;\n",
        dir, 0, &n);
    char **final = NULL;
    lm_report r = {.len = 0, .failed = false};
    ck_assert_msg(lm_test_apply_retractions(lines, n, &final, &nfinal, "updating", &r), "%s",
                  r.msg);
    json_t **rows = parse_rows(final, nfinal);
    /* Anna: small 5 and big 500; Bert: small 50; unknown (12): small 7 */
    ck_assert_int_eq(nfinal, 4);
    int seen = 0;
    for (size_t i = 0; i < nfinal; i++) {
        const char *who = json_string_value(json_object_get(rows[i], "who"));
        const char *size = json_string_value(json_object_get(rows[i], "size"));
        json_int_t spent = json_integer_value(json_object_get(rows[i], "spent"));
        json_int_t cnt = json_integer_value(json_object_get(rows[i], "orders"));
        ck_assert_int_eq(cnt, 1);
        if (strcmp(who, "Anna") == 0 && strcmp(size, "small") == 0) {
            ck_assert_int_eq(spent, 5);
            seen |= 1;
        } else if (strcmp(who, "Anna") == 0 && strcmp(size, "big") == 0) {
            ck_assert_int_eq(spent, 500);
            seen |= 2;
        } else if (strcmp(who, "Bert") == 0) {
            ck_assert_int_eq(spent, 50);
            seen |= 4;
        } else if (strcmp(who, "unknown") == 0) {
            ck_assert_int_eq(spent, 7);
            seen |= 8;
        }
    }
    ck_assert_int_eq(seen, 15);
    free_rows(rows, nfinal);
    free(final);
    lm_test_free_lines(lines, n);
    lm_storage_remove_tree(dir, &err);
}
END_TEST

/* UNION ALL of two queries over one source, into one sink. */
START_TEST(test_sql_union_all)
{
    const char *dir = lm_test_tmpdir();
    lm_error err;
    size_t n;

    char **lines = run_to_lines(
        "CREATE TABLE t (counter BIGINT, ts TIMESTAMP) WITH ('connector' = 'impulse',\n"
        "  'count' = '10');\n"
        "CREATE TABLE out (n BIGINT, tag VARCHAR)\n"
        "  WITH ('connector' = 'filesystem', 'path' = '%s/out', 'format' = 'json');\n"
        "INSERT INTO out\n"
        "SELECT counter, 'low' AS tag FROM t WHERE counter < 3\n"
        "UNION ALL\n"
        "SELECT counter * 100, 'high' FROM t WHERE counter >= 8;\n",
        dir, 0, &n);
    static const char *const want[] = {
        "{\"n\":0,\"tag\":\"low\"}",    "{\"n\":1,\"tag\":\"low\"}",    "{\"n\":2,\"tag\":\"low\"}",
        "{\"n\":800,\"tag\":\"high\"}", "{\"n\":900,\"tag\":\"high\"}",
    };
    ck_assert_int_eq(n, 5);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(lines[i], want[i]);
    }
    lm_test_free_lines(lines, n);
    lm_storage_remove_tree(dir, &err);
}
END_TEST

/* A result over all rows (a GROUP BY without keys, a session window
 * without keys) is computed by one subtask whatever parallelism the job
 * runs at: exact at -p 3, not one partial result per subtask. */
START_TEST(test_sql_global_results_at_any_parallelism)
{
    const char *dir = lm_test_tmpdir();
    lm_error err;
    size_t n;

    char **lines = run_to_lines(
        "CREATE TABLE t (counter BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts)\n"
        "  WITH ('connector' = 'impulse', 'count' = '1000', 'interval_us' = '10000');\n"
        "CREATE TABLE out (n BIGINT, s BIGINT, wend TIMESTAMP)\n"
        "  WITH ('connector' = 'filesystem', 'path' = '%s/out', 'format' = 'json');\n"
        "INSERT INTO out SELECT count(*), sum(counter), window_end\n"
        "FROM TABLE(SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))\n"
        "GROUP BY window_start, window_end;\n",
        dir, 3, &n);
    ck_assert_int_eq(n, 1); /* one session: events every 10 ms */
    ck_assert_str_eq(lines[0], "{\"n\":1000,\"s\":499500,\"wend\":\"1970-01-01 00:00:10.990000\"}");
    lm_test_free_lines(lines, n);
    lm_storage_remove_tree(dir, &err);
}
END_TEST

/* --- the command line --------------------------------------------------- */

/* Runs a shell command line; returns its exit status (-1: not run). */
static int
sh(const char *fmt, const char *a, const char *b, const char *c)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), fmt, a, b, c);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* laminard run compiles and runs a pipeline (rows on stdout); explain
 * prints both plans; a wrong pipeline exits 2 with file:line:col, the line
 * and a caret on stderr. */
START_TEST(test_sql_laminard_commands)
{
    const char *bin = getenv("LM_TEST_BIN");
    const char *dir = lm_test_tmpdir();
    char laminard[1024], sql[700], out[700], errf[700];
    size_t len;
    lm_error err;

    snprintf(laminard, sizeof(laminard), "%s/laminard", bin != NULL && bin[0] ? bin : "build/bin");
    snprintf(sql, sizeof(sql), "%s/p.sql", dir);
    snprintf(out, sizeof(out), "%s/out.txt", dir);
    snprintf(errf, sizeof(errf), "%s/err.txt", dir);
    write_file(sql, "CREATE TABLE t (counter BIGINT, ts TIMESTAMP)\n"
                    "  WITH ('connector' = 'impulse', 'count' = '6');\n"
                    "SELECT counter * 2 AS twice FROM t WHERE counter % 2 = 1;\n");
    ck_assert_int_eq(sh("%s run %s -s logging.level=error > %s 2>/dev/null", laminard, sql, out),
                     0);
    char *text = lm_test_read_file(out, &len);
    ck_assert(text != NULL);
    ck_assert_msg(strstr(text, "{\"twice\":2}") && strstr(text, "{\"twice\":6}") &&
                      strstr(text, "{\"twice\":10}") && !strstr(text, "{\"twice\":4}"),
                  "laminard run printed:\n%s", text);
    free(text);

    ck_assert_int_eq(sh("%s explain %s > %s 2>&1", laminard, sql, out), 0);
    text = lm_test_read_file(out, &len);
    ck_assert(text != NULL && strstr(text, "== logical plan ==") && strstr(text, "impulse"));
    free(text);

    write_file(sql, "CREATE TABLE t (counter BIGINT, ts TIMESTAMP)\n"
                    "  WITH ('connector' = 'impulse');\n"
                    "SELECT countr FROM t;\n");
    ck_assert_int_eq(sh("%s compile %s > /dev/null 2> %s", laminard, sql, errf), 2);
    text = lm_test_read_file(errf, &len);
    ck_assert(text != NULL);
    char want[800];
    snprintf(want, sizeof(want),
             "%s:3:8: error: unknown column 'countr' (did you mean 'counter'?)\n"
             "  SELECT countr FROM t;\n"
             "         ^\n",
             sql);
    ck_assert_str_eq(text, want);
    free(text);
    lm_storage_remove_tree(dir, &err);
}
END_TEST

Suite *
sql_plan_suite(void)
{
    Suite *s = suite_create("sql_plan");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sql_nexmark_source_narrowed);
    tcase_add_test(tc, test_sql_nexmark_q3_shared_source_join);
    tcase_add_test(tc, test_sql_nexmark_q4_interval_join);
    tcase_add_test(tc, test_sql_nexmark_q5_shared_windows);
    tcase_add_test(tc, test_sql_nexmark_q7_two_phase_interval);
    tcase_add_test(tc, test_sql_arroyo_windows_same_plans);
    tcase_add_test(tc, test_sql_explain);
    tcase_add_test(tc, test_sql_set_parallelism);
    tcase_add_test(tc, test_sql_file_pipeline_windows);
    tcase_add_test(tc, test_sql_file_pipeline_updating);
    tcase_add_test(tc, test_sql_union_all);
    tcase_add_test(tc, test_sql_laminard_commands);
    tcase_add_test(tc, test_sql_global_results_at_any_parallelism);
    suite_add_tcase(s, tc);
    return s;
}
