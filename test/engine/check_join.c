/*
 * check_join.c: the join operators (join, interval_join, window_join) run
 * in real plans: impulse sources, calc for keys and times, watermarks, the
 * join, a file sink. Every expected result is computed here with nested
 * loops over the generated rows and compared as a multiset; changelog
 * outputs are replayed in file order (a retraction must follow its
 * insert) and compared after applying the retractions.
 */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_op.h"
#include "lm_plan.h"
#include "lm_proto.h"
#include "lm_rowfmt.h"
#include "lm_state.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_test.h"

#define START_MS 1700000000000LL /* event time of counter 0 */

static char dir[256];

/* Strings made for one test, freed in teardown. */
static char *kept[4096];
static size_t nkept;

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static const char *
fmt(const char *f, ...)
{
    va_list ap;
    char *s;
    va_start(ap, f);
    ck_assert_int_ge(vasprintf(&s, f, ap), 0);
    va_end(ap);
    ck_assert_uint_lt(nkept, sizeof(kept) / sizeof(kept[0]));
    kept[nkept++] = s;
    return s;
}

/* The last job's result. */
static lm_job_result last_res;

static void
setup(void)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    lm_log_configure(&lo, NULL);
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
    memset(&last_res, 0, sizeof(last_res));
}

static void
teardown(void)
{
    lm_error err;
    lm_storage_remove_tree(dir, &err);
    lm_msg_pool_trim();
    for (size_t i = 0; i < nkept; i++) {
        free(kept[i]);
    }
    nkept = 0;
}

/* --- plan pieces ---------------------------------------------------------- */

#define IMPULSE_SCHEMA                                                                             \
    "[{\"name\": \"counter\", \"type\": \"int64\", \"nullable\": false},"                          \
    " {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]"

#define COL(n)            "{\"col\": \"" n "\"}"
#define LIT(v)            "{\"lit\": " #v "}"
#define IV(us)            "{\"lit\": " #us ", \"type\": \"interval\"}"
#define NULL_I64          "{\"lit\": null, \"type\": \"int64\"}"
#define CALL1(f, a)       "{\"call\": \"" f "\", \"args\": [" a "]}"
#define CALL2(f, a, b)    "{\"call\": \"" f "\", \"args\": [" a ", " b "]}"
#define CALL3(f, a, b, c) "{\"call\": \"" f "\", \"args\": [" a ", " b ", " c "]}"
#define MOD(a, b)         CALL2("mod", a, b)
#define CASE(w, t, e)     "{\"case\": [{\"when\": " w ", \"then\": " t "}], \"else\": " e "}"
#define CAST(e, t)        "{\"cast\": " e ", \"to\": \"" t "\"}"
#define P(n, e)           "{\"name\": \"" n "\", \"expr\": " e "}"
#define F(n, t)           "{\"name\": \"" n "\", \"type\": \"" t "\"}"
#define FNN(n, t)         "{\"name\": \"" n "\", \"type\": \"" t "\", \"nullable\": false}"
/* The end of the 100 ms tumbling window of timestamp column c. */
#define WEND(c)                                                                                    \
    CAST(CALL2("+", CALL2("-", CAST(COL(c), "int64"), MOD(CAST(COL(c), "int64"), LIT(100000))),    \
               LIT(100000)),                                                                       \
         "timestamp")

static const char *
impulse(const char *id, int par, long long count, long long rate, long long interval_us)
{
    return fmt("{\"id\": \"%s\", \"kind\": \"impulse\", \"parallelism\": %d, \"config\": "
               "{\"count\": %lld, \"rate\": %lld, \"start_ms\": %lld, \"interval_us\": %lld}, "
               "\"schema\": " IMPULSE_SCHEMA "}",
               id, par, count, rate, START_MS, interval_us);
}

static const char *
opr(const char *id, const char *kind, int par, const char *config, const char *schema)
{
    if (schema == NULL) {
        return fmt("{\"id\": \"%s\", \"kind\": \"%s\", \"parallelism\": %d, \"config\": %s}", id,
                   kind, par, config);
    }
    return fmt("{\"id\": \"%s\", \"kind\": \"%s\", \"parallelism\": %d, \"config\": %s, "
               "\"schema\": %s}",
               id, kind, par, config, schema);
}

static const char *
wmark(const char *id, int par, const char *col, int delay_ms, const char *schema)
{
    return opr(id, "watermark", par,
               fmt("{\"column\": \"%s\", \"delay_ms\": %d, \"every_batches\": 1}", col, delay_ms),
               schema);
}

static const char *
sink(const char *id, int par, const char *sub)
{
    return opr(id, "file_sink", par, fmt("{\"path\": \"%s/%s\"}", dir, sub), NULL);
}

/* keys: NULL for a forward edge, else the JSON array of a shuffle. */
static const char *
edge(const char *from, const char *to, int port, const char *keys)
{
    if (keys == NULL) {
        return fmt("{\"from\": \"%s\", \"to\": \"%s\", \"port\": %d}", from, to, port);
    }
    return fmt("{\"from\": \"%s\", \"to\": \"%s\", \"port\": %d, \"kind\": \"shuffle\", \"keys\": "
               "%s}",
               from, to, port, keys);
}

/* Joins NULL-terminated pieces with ", ". */
static const char *
list(const char *const *v)
{
    size_t len = 1;
    char *s;
    for (size_t i = 0; v[i] != NULL; i++) {
        len += strlen(v[i]) + 2;
    }
    s = malloc(len);
    s[0] = '\0';
    for (size_t i = 0; v[i] != NULL; i++) {
        if (i > 0) {
            strcat(s, ", ");
        }
        strcat(s, v[i]);
    }
    kept[nkept++] = s;
    return s;
}

static const char *
plan(int batch_rows, const char *const *ops, const char *const *edges)
{
    return fmt("{\"batch_rows\": %d, \"operators\": [%s], \"edges\": [%s]}", batch_rows, list(ops),
               list(edges));
}

static void
run(const char *json)
{
    lm_error err;
    int rv = lm_test_run_plan(json, 2, NULL, NULL, &last_res, &err);
    ck_assert_msg(rv == LM_OK, "plan: %s", err.msg);
    ck_assert_msg(last_res.state == LM_JOB_FINISHED, "job: %s", last_res.reason);
}

/* --- expected rows ---------------------------------------------------------- */

typedef struct lines {
    char **v;
    size_t n, cap;
} lines;

static void add(lines *l, const char *f, ...) __attribute__((format(printf, 2, 3)));

static void
add(lines *l, const char *f, ...)
{
    va_list ap;
    char *s;
    va_start(ap, f);
    ck_assert_int_ge(vasprintf(&s, f, ap), 0);
    va_end(ap);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof(char *));
    }
    l->v[l->n++] = s;
}

static void
lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int
cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* got is sorted; exp is sorted here. Equal as multisets. */
static void
expect_same(const char *what, char **got, size_t ngot, lines *exp)
{
    if (exp->n > 0) {
        qsort(exp->v, exp->n, sizeof(char *), cmpstr);
    }
    for (size_t i = 0; i < ngot && i < exp->n; i++) {
        if (strcmp(got[i], exp->v[i]) != 0) {
            ck_abort_msg("%s: sorted line %zu is '%s', expected '%s' (%zu lines, expected %zu)",
                         what, i, got[i], exp->v[i], ngot, exp->n);
        }
    }
    ck_assert_msg(ngot == exp->n, "%s: %zu lines, expected %zu", what, ngot, exp->n);
}

/* The append-only output in dir/sub equals exp. */
static void
expect_output(const char *sub, lines *exp)
{
    size_t n;
    char **got = lm_test_read_lines(fmt("%s/%s", dir, sub), &n);
    ck_assert_msg(got != NULL, "no output directory %s", sub);
    expect_same(sub, got, n, exp);
    lm_test_free_lines(got, n);
}

/* A multiset of strings (chained hash). */
typedef struct mnode {
    char *s;
    long cnt;
    struct mnode *next;
} mnode;

#define MBUCKETS 65536

static mnode **
mnode_find(mnode **tab, const char *s)
{
    uint64_t h = 1469598103934665603ull;
    mnode **p;
    for (const char *q = s; *q; q++) {
        h = (h ^ (uint8_t)*q) * 1099511628211ull;
    }
    for (p = &tab[h % MBUCKETS]; *p != NULL && strcmp((*p)->s, s) != 0; p = &(*p)->next) {
    }
    return p;
}

static int
file_filter(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Replays the changelog in dir/sub, file by file in name order (rows of
 * one key come from one subtask, so from one file sequence): a retraction
 * must remove an earlier identical row. Returns the net rows, sorted,
 * without their _retract field; *nret counts the retractions. */
static char **
read_net(const char *sub, size_t *n, size_t *nret)
{
    const char *path = fmt("%s/%s", dir, sub);
    mnode **tab = calloc(MBUCKETS, sizeof(mnode *));
    struct dirent **names;
    int nf = scandir(path, &names, file_filter, alphasort);
    char **out = NULL;
    size_t count = 0, cap = 0;

    ck_assert_msg(nf >= 0, "no output directory %s", sub);
    *nret = 0;
    for (int i = 0; i < nf; i++) {
        FILE *f = fopen(fmt("%s/%s", path, names[i]->d_name), "r");
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        ck_assert_ptr_nonnull(f);
        while ((len = getline(&line, &lcap, f)) > 0) {
            static const char tsuf[] = ",\"_retract\":true}", fsuf[] = ",\"_retract\":false}";
            bool retract;
            size_t l = (size_t)len;
            mnode **p;
            if (line[l - 1] == '\n') {
                line[--l] = '\0';
            }
            if (l > strlen(tsuf) && strcmp(line + l - strlen(tsuf), tsuf) == 0) {
                retract = true;
                strcpy(line + l - strlen(tsuf), "}");
            } else if (l > strlen(fsuf) && strcmp(line + l - strlen(fsuf), fsuf) == 0) {
                retract = false;
                strcpy(line + l - strlen(fsuf), "}");
            } else {
                ck_abort_msg("%s: a line without _retract last: %s", sub, line);
            }
            p = mnode_find(tab, line);
            if (retract) {
                ck_assert_msg(*p != NULL && (*p)->cnt > 0,
                              "%s: retraction of a row not emitted before: %s", sub, line);
                (*p)->cnt--;
                (*nret)++;
            } else {
                if (*p == NULL) {
                    *p = calloc(1, sizeof(mnode));
                    (*p)->s = strdup(line);
                }
                (*p)->cnt++;
            }
        }
        free(line);
        fclose(f);
        free(names[i]);
    }
    free(names);
    for (size_t b = 0; b < MBUCKETS; b++) {
        for (mnode *m = tab[b], *next; m != NULL; m = next) {
            next = m->next;
            for (long k = 0; k < m->cnt; k++) {
                if (count == cap) {
                    cap = cap ? cap * 2 : 1024;
                    out = realloc(out, cap * sizeof(char *));
                }
                out[count++] = strdup(m->s);
            }
            free(m->s);
            free(m);
        }
    }
    free(tab);
    if (count > 0) {
        qsort(out, count, sizeof(char *), cmpstr);
    }
    *n = count;
    return out;
}

/* The changelog output in dir/sub nets to exp. Returns the retractions. */
static size_t
expect_net_output(const char *sub, lines *exp)
{
    size_t n, nret;
    char **got = read_net(sub, &n, &nret);
    expect_same(sub, got, n, exp);
    lm_test_free_lines(got, n);
    return nret;
}

static const char *
tsfmt(int64_t us, char *buf)
{
    lm_format_timestamp(us, buf, 40);
    return buf;
}

/* --- configuration --------------------------------------------------------- */

static void
expect_invalid(const char *json, const char *needle)
{
    lm_plan *p = NULL;
    lm_error err;
    int rv = lm_plan_load_json(json, strlen(json), "p.json", NULL, &p, &err);
    ck_assert_msg(rv == LM_EINVAL || rv == LM_ENOTFOUND, "loaded a bad plan (rv %d): %s", rv, json);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s' lacks '%s'", err.msg, needle);
}

#define KV_SCHEMA     "[" F("k", "int64") ", " FNN("v", "int64") "]"
#define KVT_SCHEMA    "[" F("k", "int64") ", " FNN("v", "int64") ", " FNN("t", "timestamp") "]"
#define KV_RET_SCHEMA "[" F("k", "int64") ", " FNN("v", "int64") ", " FNN("_retract", "bool") "]"
#define KV_CALC                                                                                    \
    "{\"project\": [" P("k", MOD(COL("counter"), LIT(7))) ", " P("v", COL("counter")) "]}"
#define KVT_CALC                                                                                   \
    "{\"project\": [" P("k", MOD(COL("counter"), LIT(7))) ", " P("v", COL("counter")) ", " P(      \
        "t", COL("ts")) "]}"
#define LV_RV_PROJ   "[" P("lv", COL("left.v")) ", " P("rv", COL("right.v")) "]"
#define LV_RV_SCHEMA "[" F("lv", "int64") ", " F("rv", "int64") "]"

/* Two impulse -> calc pipelines into operator j (kind, config, schema). */
static const char *
two_input_plan(const char *kind, const char *config, const char *schema, const char *lschema,
               const char *lcalc, const char *rschema, const char *rcalc)
{
    const char *ops[] = {impulse("ls", 1, 10, 0, 1000),
                         impulse("rs", 1, 10, 0, 1000),
                         opr("lc", "calc", 1, lcalc, lschema),
                         opr("rc", "calc", 1, rcalc, rschema),
                         opr("j", kind, 1, config, schema),
                         sink("out", 1, "out"),
                         NULL};
    const char *edges[] = {edge("ls", "lc", 0, NULL), edge("rs", "rc", 0, NULL),
                           edge("lc", "j", 0, NULL),  edge("rc", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    return plan(64, ops, edges);
}

START_TEST(test_join_config_errors_are_explained)
{
    /* key types differ */
    expect_invalid(two_input_plan("join",
                                  "{\"left_keys\": [\"k\"], \"right_keys\": [\"t\"], \"project\": "
                                  "" LV_RV_PROJ "}",
                                  LV_RV_SCHEMA, KV_SCHEMA, KV_CALC, KVT_SCHEMA, KVT_CALC),
                   "left 'k' is int64 but right 't' is timestamp");
    /* unknown key column, with a suggestion */
    expect_invalid(two_input_plan("join",
                                  "{\"left_keys\": [\"kk\"], \"right_keys\": [\"k\"], \"project\": "
                                  "" LV_RV_PROJ "}",
                                  LV_RV_SCHEMA, KV_SCHEMA, KV_CALC, KV_SCHEMA, KV_CALC),
                   "left_keys\"[0]");
    /* a left outer join's output is a changelog */
    expect_invalid(two_input_plan("join",
                                  "{\"type\": \"left\", \"left_keys\": [\"k\"], \"right_keys\": "
                                  "[\"k\"], \"project\": " LV_RV_PROJ "}",
                                  LV_RV_SCHEMA, KV_SCHEMA, KV_CALC, KV_SCHEMA, KV_CALC),
                   "must end with \"_retract\"");
    /* an inner join of a changelog input too */
    expect_invalid(two_input_plan("join",
                                  "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"project\": "
                                  "" LV_RV_PROJ "}",
                                  LV_RV_SCHEMA, KV_RET_SCHEMA,
                                  "{\"project\": [" P("k", MOD(COL("counter"), LIT(7))) ", " P(
                                      "v", COL("counter")) ", " P("_retract", LIT(false)) "]}",
                                  KV_SCHEMA, KV_CALC),
                   "an input is a changelog");
    /* and an append-only output must not claim to be one */
    expect_invalid(two_input_plan("join",
                                  "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"project\": "
                                  "[" P("lv", COL("left.v")) "]}",
                                  "[" F("lv", "int64") ", " FNN("_retract", "bool") "]", KV_SCHEMA,
                                  KV_CALC, KV_SCHEMA, KV_CALC),
                   "append-only");
    /* projection names and columns of the combined row */
    expect_invalid(two_input_plan("join",
                                  "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"project\": "
                                  "[" P("lv", COL("v")) ", " P("rv", COL("right.v")) "]}",
                                  LV_RV_SCHEMA, KV_SCHEMA, KV_CALC, KV_SCHEMA, KV_CALC),
                   "unknown column 'v'");
    expect_invalid(two_input_plan("join",
                                  "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"project\": "
                                  "[" P("rv", COL("left.v")) ", " P("lv", COL("right.v")) "]}",
                                  LV_RV_SCHEMA, KV_SCHEMA, KV_CALC, KV_SCHEMA, KV_CALC),
                   "named 'rv' but output column 0 is 'lv'");
    /* the interval join's bounds */
    expect_invalid(
        two_input_plan("interval_join",
                       "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"left_time\": "
                       "\"t\", \"right_time\": \"t\", \"upper_ms\": 5, \"upper_column\": "
                       "\"t\", \"project\": " LV_RV_PROJ "}",
                       LV_RV_SCHEMA, KVT_SCHEMA, KVT_CALC, KVT_SCHEMA, KVT_CALC),
        "exactly one of \"upper_ms\" and \"upper_column\"");
    expect_invalid(
        two_input_plan("interval_join",
                       "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"left_time\": "
                       "\"v\", \"right_time\": \"t\", \"upper_ms\": 5, \"project\": "
                       "" LV_RV_PROJ "}",
                       LV_RV_SCHEMA, KVT_SCHEMA, KVT_CALC, KVT_SCHEMA, KVT_CALC),
        "not a timestamp");
    /* interval and window joins take append-only inputs */
    expect_invalid(
        two_input_plan(
            "window_join",
            "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], "
            "\"left_window_end\": \"t\", \"right_window_end\": \"t\", "
            "\"project\": " LV_RV_PROJ "}",
            LV_RV_SCHEMA,
            "[" F("k", "int64") ", " FNN("v", "int64") ", " FNN("t", "timestamp") ", " FNN(
                "_retract", "bool") "]",
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(7))) ", " P(
                "v", COL("counter")) ", " P("t", COL("ts")) ", " P("_retract", LIT(false)) "]}",
            KVT_SCHEMA, KVT_CALC),
        "append-only inputs");
    /* a TTL needs both time columns */
    expect_invalid(two_input_plan("join",
                                  "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"ttl_ms\": "
                                  "10, \"left_time\": \"t\", \"project\": " LV_RV_PROJ "}",
                                  LV_RV_SCHEMA, KVT_SCHEMA, KVT_CALC, KVT_SCHEMA, KVT_CALC),
                   "go together");
    /* a condition must be boolean */
    expect_invalid(
        two_input_plan("join",
                       "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"condition\": "
                       "" COL("left.v") ", \"project\": " LV_RV_PROJ "}",
                       LV_RV_SCHEMA, KV_SCHEMA, KV_CALC, KV_SCHEMA, KV_CALC),
        "boolean");
}
END_TEST

/* --- join ---------------------------------------------------------------- */

/* Inner join of two append-only inputs: left k = n mod 97, right k = 7n
 * mod 101, at parallelism 1 (no condition) and 2 (shuffled by the keys,
 * with a residual condition). */
static void
inner_join_at(int par, bool cond)
{
    const long long NL = 3000, NR = 2000;
    const char *cfg =
        cond
            ? "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"condition\": " CALL1(
                  "not",
                  CALL2(
                      "=", MOD(CALL2("+", COL("left.v"), COL("right.v")), LIT(3)),
                      LIT(0))) ", \"project\": [" P("k",
                                                    COL("left.k")) ", " P("lv",
                                                                          COL("left.v")) ", " P("r"
                                                                                                "v",
                                                                                                COL("right.v")) "]}"
            : "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"project\": [" P(
                  "k", COL("left.k")) ", " P("lv", COL("left.v")) ", " P("rv", COL("right.v")) "]}";
    const char *ops[] = {
        impulse("ls", par, NL, 0, 1000),
        impulse("rs", par, NR, 0, 1000),
        opr("lc", "calc", par,
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(97))) ", " P("v", COL("counter")) "]}",
            KV_SCHEMA),
        opr("rc", "calc", par,
            "{\"project\": [" P("k", MOD(CALL2("*", COL("counter"), LIT(7)), LIT(101))) ", " P(
                "v", COL("counter")) "]}",
            KV_SCHEMA),
        opr("j", "join", par, cfg,
            "[" F("k", "int64") ", " F("lv", "int64") ", " F("rv", "int64") "]"),
        sink("out", par, "out"),
        NULL};
    const char *edges[] = {edge("ls", "lc", 0, NULL),     edge("rs", "rc", 0, NULL),
                           edge("lc", "j", 0, "[\"k\"]"), edge("rc", "j", 1, "[\"k\"]"),
                           edge("j", "out", 0, NULL),     NULL};
    lines exp = {0};

    run(plan(256, ops, edges));
    for (long long l = 0; l < NL; l++) {
        for (long long r = 0; r < NR; r++) {
            if (l % 97 == (r * 7) % 101 && (!cond || (l + r) % 3 != 0)) {
                add(&exp, "{\"k\":%lld,\"lv\":%lld,\"rv\":%lld}", l % 97, l, r);
            }
        }
    }
    ck_assert_uint_gt(exp.n, 10000);
    expect_output("out", &exp);
    lines_free(&exp);
}

START_TEST(test_join_inner_exact_at_parallelism_1_and_2)
{
    inner_join_at(1, false);
    ck_assert_int_eq(system(fmt("rm -rf %s/out", dir)), 0);
    inner_join_at(2, true);
}
END_TEST

/* Left outer join; the right input is a changelog that retracts every row
 * of key 5 and half of those of key 6. Left rows with a null key, with
 * keys 0-2 (no right rows) and with key 5 (all retracted) end null-padded.
 * Both inputs are rate-limited so that either side comes first. */
START_TEST(test_join_left_outer_retractions)
{
    const long long NL = 500, M = 300;
#define RB                                                                                         \
    CASE(CALL2("<", COL("counter"), LIT(300)), COL("counter"), CALL2("-", COL("counter"), LIT(300)))
    const char *ops[] = {
        impulse("ls", 1, NL, 2500, 1000),
        impulse("rs", 1, 2 * M, 3000, 1000),
        opr("lc", "calc", 1,
            "{\"project\": [" P("k",
                                CASE(CALL2("=", MOD(COL("counter"), LIT(10)), LIT(9)), NULL_I64,
                                     MOD(COL("counter"), LIT(7)))) ", " P("v", COL("counter")) "]}",
            KV_SCHEMA),
        opr("rc", "calc", 1,
            "{\"filter\": " CALL3(
                "or", CALL2("<", COL("counter"), LIT(300)), CALL2("=", MOD(RB, LIT(11)), LIT(2)),
                CALL2(
                    "and", CALL2("=", MOD(RB, LIT(11)), LIT(3)),
                    CALL2(
                        "=",
                        MOD(RB, LIT(2)),
                        LIT(0)))) ", \"project\": [" P("k",
                                                       CALL2(
                                                           "+",
                                                           MOD(RB, LIT(11)),
                                                           LIT(3))) ", " P("v",
                                                                           RB) ", " P("_retract",
                                                                                      CALL2(
                                                                                          ">=",
                                                                                          COL("coun"
                                                                                              "te"
                                                                                              "r"),
                                                                                          LIT(300))) "]}",
            "[" F("k", "int64") ", " F("v", "int64") ", " FNN("_retract", "bool") "]"),
        opr("j", "join", 1,
            "{\"type\": \"left\", \"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"project\": "
            "[" P("k", COL("left.k")) ", " P("lv", COL("left.v")) ", " P("rv", COL("right.v")) "]}",
            "[" F("k", "int64") ", " F("lv", "int64") ", " F("rv", "int64") ", " FNN("_retract",
                                                                                     "bool") "]"),
        sink("out", 1, "out"),
        NULL};
#undef RB
    const char *edges[] = {edge("ls", "lc", 0, NULL), edge("rs", "rc", 0, NULL),
                           edge("lc", "j", 0, NULL),  edge("rc", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    lines exp = {0};
    size_t nret;

    run(plan(16, ops, edges));
    for (long long l = 0; l < NL; l++) {
        bool null_key = l % 10 == 9, matched = false;
        for (long long b = 0; b < M && !null_key; b++) {
            bool retracted = b % 11 == 2 || (b % 11 == 3 && b % 2 == 0);
            if (!retracted && b % 11 + 3 == l % 7) {
                add(&exp, "{\"k\":%lld,\"lv\":%lld,\"rv\":%lld}", l % 7, l, b);
                matched = true;
            }
        }
        if (!matched && null_key) {
            add(&exp, "{\"k\":null,\"lv\":%lld,\"rv\":null}", l);
        } else if (!matched) {
            add(&exp, "{\"k\":%lld,\"lv\":%lld,\"rv\":null}", l % 7, l);
        }
    }
    nret = expect_net_output("out", &exp);
    /* Key 5's pairs went when their right rows were retracted, and with
     * them the left rows got their padding back. */
    ck_assert_uint_gt(nret, 0);
    lines_free(&exp);
}
END_TEST

/* An inner join whose left input is a changelog: retracting a left row
 * retracts the pairs it made. The right input is all there first. */
START_TEST(test_join_changelog_input_retracts_output)
{
    const long long M = 400, NR = 300;
#define LB                                                                                         \
    CASE(CALL2("<", COL("counter"), LIT(400)), COL("counter"), CALL2("-", COL("counter"), LIT(400)))
    const char *ops[] = {
        impulse("ls", 1, 2 * M, 4000, 1000),
        impulse("rs", 1, NR, 0, 1000),
        opr("lc", "calc", 1,
            "{\"filter\": " CALL2(
                "or", CALL2("<", COL("counter"), LIT(400)),
                CALL2(
                    "=", MOD(LB, LIT(3)),
                    LIT(0))) ", \"project\": [" P("k",
                                                  MOD(LB,
                                                      LIT(13))) ", " P("v",
                                                                       LB) ", " P("_retract",
                                                                                  CALL2(
                                                                                      ">=",
                                                                                      COL("counte"
                                                                                          "r"),
                                                                                      LIT(400))) "]"
                                                                                                 "}",
            "[" F("k", "int64") ", " F("v", "int64") ", " FNN("_retract", "bool") "]"),
        opr("rc", "calc", 1,
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(13))) ", " P("v", COL("counter")) "]}",
            KV_SCHEMA),
        opr("j", "join", 1,
            "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"project\": " LV_RV_PROJ "}",
            "[" F("lv", "int64") ", " F("rv", "int64") ", " FNN("_retract", "bool") "]"),
        sink("out", 1, "out"),
        NULL};
#undef LB
    const char *edges[] = {edge("ls", "lc", 0, NULL), edge("rs", "rc", 0, NULL),
                           edge("lc", "j", 0, NULL),  edge("rc", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    lines exp = {0};
    size_t nret;

    run(plan(32, ops, edges));
    for (long long l = 0; l < M; l++) {
        for (long long r = 0; r < NR && l % 3 != 0; r++) {
            if (l % 13 == r % 13) {
                add(&exp, "{\"lv\":%lld,\"rv\":%lld}", l, r);
            }
        }
    }
    nret = expect_net_output("out", &exp);
    ck_assert_uint_gt(nret, 0);
    lines_free(&exp);
}
END_TEST

/* Keys of two columns (int64 with nulls, utf8): a null never matches. */
START_TEST(test_join_null_keys_never_match)
{
    const long long NL = 600, NR = 400;
    const char *schema = "[" F("a", "int64") ", " F("s", "utf8") ", " FNN("v", "int64") "]";
    const char *ops[] = {
        impulse("ls", 1, NL, 0, 1000),
        impulse("rs", 1, NR, 0, 1000),
        opr("lc", "calc", 1,
            "{\"project\": [" P(
                "a", CASE(CALL2("=", MOD(COL("counter"), LIT(3)), LIT(0)), NULL_I64,
                          MOD(COL("counter"),
                              LIT(5)))) ", " P("s", CAST(MOD(COL("counter"), LIT(2)),
                                                         "utf8")) ", " P("v", COL("counter")) "]}",
            schema),
        opr("rc", "calc", 1,
            "{\"project\": [" P(
                "a", CASE(CALL2("=", MOD(COL("counter"), LIT(4)), LIT(0)), NULL_I64,
                          MOD(COL("counter"),
                              LIT(5)))) ", " P("s", CAST(MOD(COL("counter"), LIT(3)),
                                                         "utf8")) ", " P("v", COL("counter")) "]}",
            schema),
        opr("j", "join", 1,
            "{\"left_keys\": [\"a\", \"s\"], \"right_keys\": [\"a\", \"s\"], \"project\": "
            "[" P("lv", COL("left.v")) ", " P("rv", COL("right.v")) ", " P("s",
                                                                           COL("right.s")) "]}",
            "[" F("lv", "int64") ", " F("rv", "int64") ", " F("s", "utf8") "]"),
        sink("out", 1, "out"),
        NULL};
    const char *edges[] = {edge("ls", "lc", 0, NULL), edge("rs", "rc", 0, NULL),
                           edge("lc", "j", 0, NULL),  edge("rc", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    lines exp = {0};

    run(plan(64, ops, edges));
    for (long long l = 0; l < NL; l++) {
        for (long long r = 0; r < NR; r++) {
            if (l % 3 != 0 && r % 4 != 0 && l % 5 == r % 5 && l % 2 == r % 3) {
                add(&exp, "{\"lv\":%lld,\"rv\":%lld,\"s\":\"%lld\"}", l, r, r % 3);
            }
        }
    }
    expect_output("out", &exp);
    lines_free(&exp);
}
END_TEST

/* One source feeds both ports (so the watermark each row sees is known):
 * rows come in bursts of 50 (1 ms apart) per key, a key's next burst 200
 * ms after its last. With a TTL of 100 ms, rows join within their burst
 * only; without expiry every burst of a key would join every other. */
START_TEST(test_join_ttl_expiry_stops_matching)
{
    const long long N = 1000;
    const char *schema = "[" F("k", "int64") ", " FNN("v", "int64") ", " FNN("t", "timestamp") "]";
    const char *ops[] = {
        impulse("s", 1, N, 0, 1000),
        opr("c", "calc", 1,
            "{\"project\": [" P("k", MOD(CALL2("/", COL("counter"), LIT(50)), LIT(5))) ", " P(
                "v", COL("counter")) ", " P("t", COL("ts")) "]}",
            schema),
        wmark("w", 1, "t", 10, schema),
        opr("j", "join", 1,
            "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"ttl_ms\": 100, \"left_time\": "
            "\"t\", \"right_time\": \"t\", \"project\": " LV_RV_PROJ "}",
            LV_RV_SCHEMA),
        sink("out", 1, "out"),
        NULL};
    const char *edges[] = {edge("s", "c", 0, NULL),   edge("c", "w", 0, NULL),
                           edge("w", "j", 0, NULL),   edge("w", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    lines exp = {0};

    run(plan(32, ops, edges));
    for (long long l = 0; l < N; l++) {
        for (long long r = 0; r < N; r++) {
            if (l / 50 == r / 50) {
                add(&exp, "{\"lv\":%lld,\"rv\":%lld}", l, r);
            }
        }
    }
    expect_output("out", &exp);
    lines_free(&exp);
}
END_TEST

/* --- interval join -------------------------------------------------------- */

/* Two sources on the same 1 ms grid, one rate-limited so that the other
 * runs ahead: right.t in [left.t - 20 ms, left.t + 30 ms]. Keys are n mod
 * 5, so pairs exactly at both bounds exist. */
static void
interval_offsets(bool left_first)
{
    const long long N = 2000;
    const char *ops[] = {
        impulse("ls", 1, N, left_first ? 0 : 20000, 1000),
        impulse("rs", 1, N, left_first ? 20000 : 0, 1000),
        opr("lc", "calc", 1,
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(5))) ", " P(
                "v", COL("counter")) ", " P("t", COL("ts")) "]}",
            KVT_SCHEMA),
        opr("rc", "calc", 1,
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(5))) ", " P(
                "v", COL("counter")) ", " P("t", COL("ts")) "]}",
            KVT_SCHEMA),
        wmark("lw", 1, "t", 0, KVT_SCHEMA),
        wmark("rw", 1, "t", 0, KVT_SCHEMA),
        opr("j", "interval_join", 1,
            "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"left_time\": \"t\", "
            "\"right_time\": \"t\", \"lower_ms\": -20, \"upper_ms\": 30, \"project\": [" P(
                "lv", COL("left.v")) ", " P("rv", COL("right.v")) ", " P("rt", COL("right.t")) "]}",
            "[" F("lv", "int64") ", " F("rv", "int64") ", " F("rt", "timestamp") "]"),
        sink("out", 1, "out"),
        NULL};
    const char *edges[] = {edge("ls", "lc", 0, NULL), edge("rs", "rc", 0, NULL),
                           edge("lc", "lw", 0, NULL), edge("rc", "rw", 0, NULL),
                           edge("lw", "j", 0, NULL),  edge("rw", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    lines exp = {0};
    char tb[40];

    run(plan(64, ops, edges));
    for (long long l = 0; l < N; l++) {
        for (long long r = l - 25; r <= l + 35; r++) {
            if (r >= 0 && r < N && l % 5 == r % 5 && r - l >= -20 && r - l <= 30) {
                add(&exp, "{\"lv\":%lld,\"rv\":%lld,\"rt\":\"%s\"}", l, r,
                    tsfmt(START_MS * 1000 + r * 1000, tb));
            }
        }
    }
    expect_output("out", &exp);
    lines_free(&exp);
}

START_TEST(test_join_interval_bounds_inclusive_either_side_first)
{
    interval_offsets(true);
    ck_assert_int_eq(system(fmt("rm -rf %s/out", dir)), 0);
    interval_offsets(false);
}
END_TEST

/* q4's shape: left.t <= right.t <= left.e with e a left column (5 to 65
 * ms after t), plus a residual condition. */
START_TEST(test_join_interval_upper_column_with_condition)
{
    const long long N = 1500;
    const char *lschema = "[" F("k", "int64") ", " FNN("v", "int64") ", " FNN(
        "t", "timestamp") ", " F("e", "timestamp") "]";
    const char *ops[] = {
        impulse("ls", 1, N, 0, 1000),
        impulse("rs", 1, N, 30000, 1000),
        opr("lc", "calc", 1,
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(3))) ", " P(
                "v", COL("counter")) ", " P("t",
                                            COL("ts")) ", " P("e",
                                                              CALL2("+",
                                                                    CALL2("+", COL("ts"),
                                                                          CALL2("*", IV(10000),
                                                                                MOD(COL("counter"),
                                                                                    LIT(7)))),
                                                                    IV(5000))) "]}",
            lschema),
        opr("rc", "calc", 1,
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(3))) ", " P(
                "v", COL("counter")) ", " P("t", COL("ts")) "]}",
            KVT_SCHEMA),
        wmark("lw", 1, "t", 0, lschema),
        wmark("rw", 1, "t", 0, KVT_SCHEMA),
        opr("j", "interval_join", 1,
            "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"left_time\": \"t\", "
            "\"right_time\": \"t\", \"upper_column\": \"e\", \"condition\": " CALL1(
                "not", CALL2("=", MOD(CALL2("+", COL("left.v"), COL("right.v")), LIT(4)),
                             LIT(1))) ", \"project\": " LV_RV_PROJ "}",
            LV_RV_SCHEMA),
        sink("out", 1, "out"),
        NULL};
    const char *edges[] = {edge("ls", "lc", 0, NULL), edge("rs", "rc", 0, NULL),
                           edge("lc", "lw", 0, NULL), edge("rc", "rw", 0, NULL),
                           edge("lw", "j", 0, NULL),  edge("rw", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    lines exp = {0};

    run(plan(64, ops, edges));
    for (long long l = 0; l < N; l++) {
        for (long long r = l; r < N && r - l <= (l % 7) * 10 + 5; r++) {
            if (l % 3 == r % 3 && (l + r) % 4 != 1) {
                add(&exp, "{\"lv\":%lld,\"rv\":%lld}", l, r);
            }
        }
    }
    expect_output("out", &exp);
    lines_free(&exp);
}
END_TEST

/* One source feeds both ports, in batches of 32 with a watermark after
 * each (delay 50 ms), so the watermark a batch meets is the largest time
 * of the batches before it less 50 ms. Every 50th row is 200 ms behind:
 * late from the second batch on. Late rows are dropped (on both ports) and
 * counted; the rest join exactly. */
START_TEST(test_join_interval_late_rows_dropped_and_counted)
{
    const long long N = 2000, B = 32;
    const char *schema = "[" F("k", "int64") ", " FNN("v", "int64") ", " F("t", "timestamp") "]";
    const char *ops[] = {
        impulse("s", 1, N, 0, 1000),
        opr("c", "calc", 1,
            "{\"project\": [" P("k", MOD(COL("counter"), LIT(4))) ", " P(
                "v", COL("counter")) ", " P("t", CALL2("-", COL("ts"),
                                                       CASE(CALL2("=", MOD(COL("counter"), LIT(50)),
                                                                  LIT(7)),
                                                            IV(200000), IV(0)))) "]}",
            schema),
        wmark("w", 1, "t", 50, schema),
        opr("j", "interval_join", 1,
            "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"left_time\": \"t\", "
            "\"right_time\": \"t\", \"lower_ms\": -30, \"upper_ms\": 30, \"project\": " LV_RV_PROJ
            "}",
            LV_RV_SCHEMA),
        sink("out", 1, "out"),
        NULL};
    const char *edges[] = {edge("s", "c", 0, NULL),   edge("c", "w", 0, NULL),
                           edge("w", "j", 0, NULL),   edge("w", "j", 1, NULL),
                           edge("j", "out", 0, NULL), NULL};
    int64_t *t = calloc((size_t)N, sizeof(int64_t));
    bool *late = calloc((size_t)N, sizeof(bool));
    int64_t wm = INT64_MIN, max = INT64_MIN;
    uint64_t nlate = 0;
    lines exp = {0};

    for (long long c = 0; c < N; c++) {
        t[c] = START_MS * 1000 + c * 1000 - (c % 50 == 7 ? 200000 : 0);
    }
    for (long long b0 = 0; b0 < N; b0 += B) {
        for (long long c = b0; c < b0 + B && c < N; c++) {
            late[c] = t[c] < wm;
            nlate += late[c];
        }
        for (long long c = b0; c < b0 + B && c < N; c++) {
            max = t[c] > max ? t[c] : max;
        }
        wm = max - 50000;
    }
    ck_assert_uint_gt(nlate, 30);
    run(plan((int)B, ops, edges));
    for (long long l = 0; l < N; l++) {
        for (long long r = 0; r < N && !late[l]; r++) {
            if (!late[r] && l % 4 == r % 4 && t[r] >= t[l] - 30000 && t[r] <= t[l] + 30000) {
                add(&exp, "{\"lv\":%lld,\"rv\":%lld}", l, r);
            }
        }
    }
    expect_output("out", &exp);
    ck_assert_uint_eq(last_res.late_rows, 2 * nlate);
    lines_free(&exp);
    free(t);
    free(late);
}
END_TEST

/* --- window join ---------------------------------------------------------- */

#define WL_SCHEMA                                                                                  \
    "[" F("k", "int64") ", " F("we", "timestamp") ", " F("num", "int64") ", " FNN(                 \
        "c", "int64") ", " FNN("ts", "timestamp") "]"
#define WR_SCHEMA                                                                                  \
    "[" F("k", "int64") ", " F("we", "timestamp") ", " F("maxn", "int64") ", " FNN(                \
        "c", "int64") ", " FNN("ts", "timestamp") "]"
#define WL_CALC                                                                                    \
    "{\"project\": [" P("k", MOD(COL("counter"), LIT(4))) ", " P("we", WEND("ts")) ", " P(         \
        "num", MOD(COL("counter"), LIT(13))) ", " P("c", COL("counter")) ", " P("ts",              \
                                                                                COL("ts")) "]}"
#define WR_CALC                                                                                    \
    "{\"project\": [" P("k", MOD(COL("counter"), LIT(4))) ", " P("we", WEND("ts")) ", " P(         \
        "maxn", MOD(COL("counter"), LIT(11))) ", " P("c", COL("counter")) ", " P("ts",             \
                                                                                 COL("ts")) "]}"
#define WJ_CONFIG                                                                                                         \
    "{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"left_window_end\": \"we\", "                                     \
    "\"right_window_end\": \"we\", \"condition\": " CALL2(">=", COL("left.num"), COL("right.maxn")) ", \"project\": [" P( \
        "we",                                                                                                             \
        COL("left.we")) ", " P("k",                                                                                       \
                               COL("left.k")) ", " P("lc",                                                                \
                                                     COL("left.c")) ", " P("rc",                                          \
                                                                           COL("right.c")) "]}"
#define WJ_SCHEMA                                                                                  \
    "[" F("we", "timestamp") ", " F("k", "int64") ", " F("lc", "int64") ", " F("rc", "int64") "]"

static int64_t
wend(int64_t us)
{
    return us - us % 100000 + 100000;
}

/* Rows of the window join's inputs: left c at 1 ms steps, right at 1.5. */
static void
window_expected(long long NL, long long NR, lines *exp)
{
    char tb[40];
    for (long long l = 0; l < NL; l++) {
        int64_t we = wend(START_MS * 1000 + l * 1000);
        for (long long r = 0; r < NR; r++) {
            if (wend(START_MS * 1000 + r * 1500) == we && l % 4 == r % 4 && l % 13 >= r % 11) {
                add(exp, "{\"we\":\"%s\",\"k\":%lld,\"lc\":%lld,\"rc\":%lld}", tsfmt(we, tb), l % 4,
                    l, r);
            }
        }
    }
}

/* q5's final join: the rows of a window whose num reaches the window's
 * maximum, at parallelism 1 and 2. */
static void
window_join_at(int par)
{
    const long long NL = 3000, NR = 2000;
    const char *ops[] = {impulse("ls", par, NL, 0, 1000),
                         impulse("rs", par, NR, 0, 1500),
                         opr("lc", "calc", par, WL_CALC, WL_SCHEMA),
                         opr("rc", "calc", par, WR_CALC, WR_SCHEMA),
                         wmark("lw", par, "ts", 0, WL_SCHEMA),
                         wmark("rw", par, "ts", 0, WR_SCHEMA),
                         opr("j", "window_join", par, WJ_CONFIG, WJ_SCHEMA),
                         sink("out", par, "out"),
                         NULL};
    const char *edges[] = {edge("ls", "lc", 0, NULL),     edge("rs", "rc", 0, NULL),
                           edge("lc", "lw", 0, NULL),     edge("rc", "rw", 0, NULL),
                           edge("lw", "j", 0, "[\"k\"]"), edge("rw", "j", 1, "[\"k\"]"),
                           edge("j", "out", 0, NULL),     NULL};
    lines exp = {0};

    run(plan(128, ops, edges));
    window_expected(NL, NR, &exp);
    ck_assert_uint_gt(exp.n, 10000);
    expect_output("out", &exp);
    lines_free(&exp);
}

START_TEST(test_join_window_residual_condition)
{
    window_join_at(1);
    ck_assert_int_eq(system(fmt("rm -rf %s/out", dir)), 0);
    window_join_at(2);
}
END_TEST

/* --- state and checkpoints -------------------------------------------------- */

/* Entries of a join table as checkpoint `epoch` holds it (the snapshot
 * chain applied oldest first). */
static uint64_t
table_count(const char *ckdir, const char *job, uint64_t epoch, const char *op, const char *table,
            lm_table_kind kind)
{
    uint8_t *bufs[64];
    size_t lens[64];
    int n = 0;
    uint64_t e = epoch, count;
    lm_table *t;
    lm_error err;

    for (;;) {
        uint64_t ep, prev;
        bool full;
        ck_assert_int_lt(n, 64);
        ck_assert_msg(lm_storage_read(fmt("%s/%s/checkpoints/checkpoint-%07" PRIu64
                                          "/operator-%s/table-%s-000",
                                          ckdir, job, e, op, table),
                                      &bufs[n], &lens[n], &err) == LM_OK,
                      "%s", err.msg);
        ck_assert_int_eq(lm_table_snapshot_info(bufs[n], lens[n], &ep, &full, &prev, &err), LM_OK);
        n++;
        if (full) {
            break;
        }
        e = prev;
    }
    ck_assert_int_eq(lm_table_new(kind, table, 0, &t), LM_OK);
    for (int i = n - 1; i >= 0; i--) {
        ck_assert_msg(lm_table_restore(t, bufs[i], lens[i], &err) == LM_OK, "%s", err.msg);
        free(bufs[i]);
    }
    count = lm_table_count(t);
    lm_table_free(t);
    return count;
}

/* The joins over two rate-limited sources (one_source: one source feeding
 * both sides, so that they keep in step whatever the scheduling, and no
 * unbounded join); sinks named out_<join>, file sinks or blackholes. */
static const char *
three_joins_plan(long long n, long long rate, bool to_files, bool one_source)
{
#define TJ_SCHEMA                                                                                  \
    "[" F("k", "int64") ", " F("we", "timestamp") ", " F("num", "int64") ", " FNN(                 \
        "c", "int64") ", " FNN("ts", "timestamp") "]"
#define TJ_CALC                                                                                    \
    "{\"project\": [" P("k", MOD(COL("counter"), LIT(10))) ", " P("we", WEND("ts")) ", " P(        \
        "num", MOD(COL("counter"), LIT(13))) ", " P("c", COL("counter")) ", " P("ts",              \
                                                                                COL("ts")) "]}"
    static const char *const joins[] = {"ij", "wj", "tj", "gj"};
    const char *proj = "[" P("lc", COL("left.c")) ", " P("rc", COL("right.c")) "]";
    const char *oschema = "[" F("lc", "int64") ", " F("rc", "int64") "]";
    const char *rw = one_source ? "lw" : "rw";
    const char *ops[16], *edges[24];
    size_t no = 0, ne = 0, nj = one_source ? 3 : 4;

    ops[no++] = impulse("ls", 1, n, rate, 1000);
    ops[no++] = opr("lc", "calc", 1, TJ_CALC, TJ_SCHEMA);
    ops[no++] = wmark("lw", 1, "ts", 0, TJ_SCHEMA);
    edges[ne++] = edge("ls", "lc", 0, NULL);
    edges[ne++] = edge("lc", "lw", 0, NULL);
    if (!one_source) {
        ops[no++] = impulse("rs", 1, n, rate, 1000);
        ops[no++] = opr("rc", "calc", 1, TJ_CALC, TJ_SCHEMA);
        ops[no++] = wmark("rw", 1, "ts", 0, TJ_SCHEMA);
        edges[ne++] = edge("rs", "rc", 0, NULL);
        edges[ne++] = edge("rc", "rw", 0, NULL);
    }
    /* interval: right.ts within [-20 ms, +30 ms] of left.ts, same k */
    ops[no++] = opr("ij", "interval_join", 1,
                    fmt("{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], \"left_time\": "
                        "\"ts\", \"right_time\": \"ts\", \"lower_ms\": -20, \"upper_ms\": 30, "
                        "\"project\": %s}",
                        proj),
                    oschema);
    /* window: same 100 ms window and k, (left.c + right.c) mod 7 = 0 */
    ops[no++] =
        opr("wj", "window_join", 1,
            fmt("{\"left_keys\": [\"k\"], \"right_keys\": [\"k\"], "
                "\"left_window_end\": \"we\", \"right_window_end\": \"we\", "
                "\"condition\": " CALL2("=", MOD(CALL2("+", COL("left.c"), COL("right.c")), LIT(7)),
                                        LIT(0)) ", \"project\": %s}",
                proj),
            oschema);
    /* left outer with a TTL (EXPIRING tables), on c */
    ops[no++] = opr("tj", "join", 1,
                    fmt("{\"type\": \"left\", \"left_keys\": [\"c\"], \"right_keys\": [\"c\"], "
                        "\"ttl_ms\": 40, \"left_time\": \"ts\", \"right_time\": \"ts\", "
                        "\"project\": %s}",
                        proj),
                    "[" F("lc", "int64") ", " F("rc", "int64") ", " FNN("_retract", "bool") "]");
    /* inner without a TTL (GLOBAL tables, unbounded): two sources only */
    if (!one_source) {
        ops[no++] =
            opr("gj", "join", 1,
                fmt("{\"left_keys\": [\"c\"], \"right_keys\": [\"c\"], \"project\": %s}", proj),
                oschema);
    }
    for (size_t i = 0; i < nj; i++) {
        const char *out = fmt("out_%s", joins[i]);
        ops[no++] = to_files ? sink(out, 1, out) : opr(out, "blackhole", 1, "{}", NULL);
        edges[ne++] = edge("lw", joins[i], 0, NULL);
        edges[ne++] = edge(rw, joins[i], 1, NULL);
        edges[ne++] = edge(joins[i], out, 0, NULL);
    }
    ops[no] = NULL;
    edges[ne] = NULL;
#undef TJ_CALC
#undef TJ_SCHEMA
    return plan(256, ops, edges);
}

/* Starts the plan, waits ms, takes a checkpoint; then either cancels the
 * job (abrupt) or waits for its end. Returns the checkpoint's epoch. */
static uint64_t
run_with_checkpoint(const char *json, const char *ckdir, uint64_t restore, int ms, bool cancel)
{
    lm_rt_opts ro = {1, 2, 0, "test"};
    lm_job_opts jo = {.job_id = "jn", .checkpoint_dir = ckdir, .restore_epoch = restore};
    lm_plan *p;
    lm_rt *rt;
    lm_addr tm;
    lm_job_handle *h;
    lm_job_result res;
    lm_error err;
    uint64_t epoch = 0;

    ck_assert_msg(lm_plan_load_json(json, strlen(json), "p", NULL, &p, &err) == LM_OK, "%s",
                  err.msg);
    ck_assert_int_eq(lm_rt_new(&ro, &rt), LM_OK);
    ck_assert_int_eq(lm_taskmgr_spawn(rt, &tm), LM_OK);
    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    if (ms > 0) {
        usleep((useconds_t)ms * 1000);
        ck_assert_msg(lm_job_checkpoint(h, LM_BARRIER_CHECKPOINT, false, 20000 * lm_test_slowdown(),
                                        &epoch, &err) == LM_OK,
                      "checkpoint: %s", err.msg);
    }
    if (cancel) {
        usleep(150000); /* output past the checkpoint, to be discarded */
        ck_assert_int_eq(lm_job_cancel(h), LM_OK);
        ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    } else {
        ck_assert_int_eq(lm_job_wait(h, 60000 * lm_test_slowdown(), &res), LM_OK);
        ck_assert_msg(res.state == LM_JOB_FINISHED, "job: %s", res.reason);
    }
    lm_rt_free(rt, 5000);
    lm_job_handle_free(h);
    lm_plan_free(p);
    return epoch;
}

/* After a long run with watermarks, a late checkpoint finds the joins'
 * tables nearly empty: rows leave as the watermark passes them. One source
 * feeds both sides, so what is kept does not depend on how the two sides
 * are scheduled. */
START_TEST(test_join_state_stays_bounded)
{
    const long long N = 120000;
    const char *ckdir = fmt("%s/ckpt", dir);
    uint64_t epoch =
        run_with_checkpoint(three_joins_plan(N, 60000, false, true), ckdir, 0, 1500, false);
    static const struct {
        const char *op;
        lm_table_kind kind;
    } joins[] = {{"ij", LM_TABLE_APPEND}, {"wj", LM_TABLE_EXPIRING}, {"tj", LM_TABLE_EXPIRING}};

    for (size_t i = 0; i < sizeof(joins) / sizeof(joins[0]); i++) {
        for (int side = 0; side < 2; side++) {
            uint64_t c = table_count(ckdir, "jn", epoch, joins[i].op, side ? "right" : "left",
                                     joins[i].kind);
            /* About 90000 rows went in by then on each side; what is kept
             * is the few hundred the watermark has not passed yet. */
            ck_assert_msg(c < 10000, "join %s keeps %" PRIu64 " %s rows", joins[i].op, c,
                          side ? "right" : "left");
        }
    }
}
END_TEST

/* A job stopped abruptly after a checkpoint and restored from it commits
 * exactly the output of one uninterrupted run. */
START_TEST(test_join_restore_is_exact)
{
    const long long N = 30000;
    const char *ckdir = fmt("%s/ckpt", dir);
    const char *json = three_joins_plan(N, 30000, true, false);
    uint64_t epoch = run_with_checkpoint(json, ckdir, 0, 500, true);
    lines ij = {0}, wj = {0}, tj = {0}, gj = {0};

    ck_assert_uint_gt(epoch, 0);
    run_with_checkpoint(json, ckdir, epoch, 0, false);
    for (long long l = 0; l < N; l++) {
        for (long long r = l - 20; r <= l + 30; r++) {
            if (r >= 0 && r < N && l % 10 == r % 10) {
                add(&ij, "{\"lc\":%lld,\"rc\":%lld}", l, r);
            }
        }
        for (long long r = l - l % 100; r < l - l % 100 + 100; r++) {
            if (r < N && l % 10 == r % 10 && (l + r) % 7 == 0) {
                add(&wj, "{\"lc\":%lld,\"rc\":%lld}", l, r);
            }
        }
        add(&tj, "{\"lc\":%lld,\"rc\":%lld}", l, l);
        add(&gj, "{\"lc\":%lld,\"rc\":%lld}", l, l);
    }
    expect_output("out_ij", &ij);
    expect_output("out_wj", &wj);
    expect_net_output("out_tj", &tj);
    expect_output("out_gj", &gj);
    lines_free(&ij);
    lines_free(&wj);
    lines_free(&tj);
    lines_free(&gj);
}
END_TEST

Suite *
join_suite(void)
{
    Suite *s = suite_create("join");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_join_config_errors_are_explained);
    tcase_add_test(tc, test_join_inner_exact_at_parallelism_1_and_2);
    tcase_add_test(tc, test_join_left_outer_retractions);
    tcase_add_test(tc, test_join_changelog_input_retracts_output);
    tcase_add_test(tc, test_join_null_keys_never_match);
    tcase_add_test(tc, test_join_ttl_expiry_stops_matching);
    tcase_add_test(tc, test_join_interval_bounds_inclusive_either_side_first);
    tcase_add_test(tc, test_join_interval_upper_column_with_condition);
    tcase_add_test(tc, test_join_interval_late_rows_dropped_and_counted);
    tcase_add_test(tc, test_join_window_residual_condition);
    tcase_add_test(tc, test_join_state_stays_bounded);
    tcase_add_test(tc, test_join_restore_is_exact);
    suite_add_tcase(s, tc);
    return s;
}
