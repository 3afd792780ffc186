/*
 * check_recovery.c: a job killed with SIGKILL and restarted from its last
 * checkpoint produces exactly the output of an uninterrupted run.
 *
 * Each case runs a plan three times, at parallelism 2, with a
 * transactional file sink (only committed files count):
 *   1. in this process, uninterrupted: the reference output;
 *   2. as `laminard run-plan` with checkpoints every 100 ms and the sources
 *      paced by emit.rate, killed with SIGKILL once a few checkpoints are
 *      complete and some output is committed;
 *   3. as `laminard run-plan --restore N` from the last complete
 *      checkpoint N of run 2, into the same output directory, to the end.
 * The committed output of runs 2 and 3 together must equal the reference
 * as a multiset: nothing lost, nothing twice. For an updating result (a
 * last column "_retract") both are first reduced to their final rows.
 *
 * The cases: window aggregates (hopping and session windows) on Nexmark
 * bids, and the Nexmark queries with joins (scripts/nexmark/plans).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lm_log.h"
#include "lm_proto.h"
#include "lm_storage.h"
#include "lm_test.h"

extern char **environ;

#define REC_EVENTS      300000 /* events per run */
#define REC_RATE        100000 /* events/s while run 2 is paced: about 3 s */
#define REC_CHECKPOINTS 3      /* complete checkpoints before the kill */
#define REC_PARALLEL    "2"

/* The bid columns every inline case reads. */
#define BID_SOURCE                                                                                 \
    "{\"id\": \"bid\", \"kind\": \"nexmark\", \"config\": {\"kinds\": [\"bid\"],"                  \
    " \"columns\": [\"bid.auction\", \"bid.bidder\", \"bid.price\", \"dateTime\"]},"               \
    " \"schema\": [{\"name\": \"auction\", \"type\": \"int64\", \"nullable\": false},"             \
    "  {\"name\": \"bidder\", \"type\": \"int64\", \"nullable\": false},"                          \
    "  {\"name\": \"price\", \"type\": \"int64\", \"nullable\": false},"                           \
    "  {\"name\": \"dateTime\", \"type\": \"timestamp\", \"nullable\": false}]},"                  \
    "{\"id\": \"wm\", \"kind\": \"watermark\", \"config\": {\"column\": \"dateTime\","             \
    " \"delay_ms\": 0},"                                                                           \
    " \"schema\": [{\"name\": \"auction\", \"type\": \"int64\", \"nullable\": false},"             \
    "  {\"name\": \"bidder\", \"type\": \"int64\", \"nullable\": false},"                          \
    "  {\"name\": \"price\", \"type\": \"int64\", \"nullable\": false},"                           \
    "  {\"name\": \"dateTime\", \"type\": \"timestamp\", \"nullable\": false}]},"

/* Hopping windows keyed by auction, with every aggregate. %s: the sink's
 * directory. */
static const char hop_plan[] =
    "{\"name\": \"hop\", \"operators\": [" BID_SOURCE
    "{\"id\": \"agg\", \"kind\": \"window_aggregate\", \"config\": {\"time\": \"dateTime\","
    " \"window\": {\"type\": \"hop\", \"size_ms\": 4000, \"slide_ms\": 1000},"
    " \"keys\": [\"auction\"], \"window_start\": \"ws\", \"window_end\": \"we\","
    " \"aggregates\": [{\"name\": \"n\", \"fn\": \"count\"},"
    "  {\"name\": \"total\", \"fn\": \"sum\", \"arg\": \"price\"},"
    "  {\"name\": \"hi\", \"fn\": \"max\", \"arg\": \"price\"},"
    "  {\"name\": \"lo\", \"fn\": \"min\", \"arg\": \"price\"},"
    "  {\"name\": \"mean\", \"fn\": \"avg\", \"arg\": \"price\"},"
    "  {\"name\": \"bidders\", \"fn\": \"count_distinct\", \"arg\": \"bidder\"}]},"
    " \"schema\": [{\"name\": \"auction\", \"type\": \"int64\", \"nullable\": false},"
    "  {\"name\": \"ws\", \"type\": \"timestamp\", \"nullable\": false},"
    "  {\"name\": \"we\", \"type\": \"timestamp\", \"nullable\": false},"
    "  {\"name\": \"n\", \"type\": \"int64\", \"nullable\": false},"
    "  {\"name\": \"total\", \"type\": \"int64\"}, {\"name\": \"hi\", \"type\": \"int64\"},"
    "  {\"name\": \"lo\", \"type\": \"int64\"}, {\"name\": \"mean\", \"type\": \"float64\"},"
    "  {\"name\": \"bidders\", \"type\": \"int64\", \"nullable\": false}]},"
    "{\"id\": \"sink\", \"kind\": \"file_sink\", \"config\": {\"path\": \"%s\"}}],"
    " \"edges\": [{\"from\": \"bid\", \"to\": \"wm\"},"
    "  {\"from\": \"wm\", \"to\": \"agg\", \"kind\": \"shuffle\", \"keys\": [\"auction\"]},"
    "  {\"from\": \"agg\", \"to\": \"sink\"}]}";

/* Session windows (gap 200 ms) keyed by bidder. */
static const char session_plan[] =
    "{\"name\": \"session\", \"operators\": [" BID_SOURCE
    "{\"id\": \"agg\", \"kind\": \"window_aggregate\", \"config\": {\"time\": \"dateTime\","
    " \"window\": {\"type\": \"session\", \"gap_ms\": 200},"
    " \"keys\": [\"bidder\"], \"window_start\": \"ws\", \"window_end\": \"we\","
    " \"aggregates\": [{\"name\": \"n\", \"fn\": \"count\"},"
    "  {\"name\": \"total\", \"fn\": \"sum\", \"arg\": \"price\"}]},"
    " \"schema\": [{\"name\": \"bidder\", \"type\": \"int64\", \"nullable\": false},"
    "  {\"name\": \"ws\", \"type\": \"timestamp\", \"nullable\": false},"
    "  {\"name\": \"we\", \"type\": \"timestamp\", \"nullable\": false},"
    "  {\"name\": \"n\", \"type\": \"int64\", \"nullable\": false},"
    "  {\"name\": \"total\", \"type\": \"int64\"}]},"
    "{\"id\": \"sink\", \"kind\": \"file_sink\", \"config\": {\"path\": \"%s\"}}],"
    " \"edges\": [{\"from\": \"bid\", \"to\": \"wm\"},"
    "  {\"from\": \"wm\", \"to\": \"agg\", \"kind\": \"shuffle\", \"keys\": [\"bidder\"]},"
    "  {\"from\": \"agg\", \"to\": \"sink\"}]}";

/* --- plans ------------------------------------------------------------------ */

/* A plan ready to run: its JSON text (sink into out_dir) and the
 * "op.key=value" settings that bound and pace its nexmark sources. */
typedef struct rec_plan {
    char *json;
    char sets[8][128];  /* events.num for each source */
    char paced[8][128]; /* emit.rate for each source */
    int nsrc;
    bool retract;
} rec_plan;

/* Finds the nexmark sources of doc and fills the settings. */
static bool
plan_sources(json_t *doc, rec_plan *p, lm_report *r)
{
    json_t *op;
    size_t i;

    json_array_foreach(json_object_get(doc, "operators"), i, op)
    {
        const char *id = json_string_value(json_object_get(op, "id"));
        const char *kind = json_string_value(json_object_get(op, "kind"));
        if (id == NULL || kind == NULL || strcmp(kind, "nexmark") != 0) {
            continue;
        }
        if (p->nsrc == 8) {
            lm_report_fail(r, "more than 8 nexmark sources");
            return false;
        }
        snprintf(p->sets[p->nsrc], sizeof(p->sets[0]), "%s.events.num=%d", id, REC_EVENTS);
        snprintf(p->paced[p->nsrc], sizeof(p->paced[0]), "%s.emit.rate=%d", id, REC_RATE);
        p->nsrc++;
    }
    if (p->nsrc == 0) {
        lm_report_fail(r, "the plan has no nexmark source");
        return false;
    }
    return true;
}

/* Builds the plan of a case writing into out_dir: an inline template
 * (fmt with one %s) or a Nexmark query's plan file. */
static bool
plan_make(const char *fmt, const char *query, const char *out_dir, rec_plan *p, lm_report *r)
{
    json_t *doc;
    json_error_t jerr;
    bool ok;

    memset(p, 0, sizeof(*p));
    if (query != NULL) {
        doc = lm_test_nexmark_plan(query, out_dir, &p->retract, r);
    } else {
        char text[8192];
        snprintf(text, sizeof(text), fmt, out_dir);
        if ((doc = json_loads(text, 0, &jerr)) == NULL) {
            lm_report_fail(r, "inline plan: %s (line %d, column %d)", jerr.text, jerr.line,
                           jerr.column);
        }
    }
    if (doc == NULL) {
        return false;
    }
    ok = plan_sources(doc, p, r);
    if (ok && (p->json = json_dumps(doc, JSON_COMPACT)) == NULL) {
        lm_report_fail(r, "out of memory");
        ok = false;
    }
    json_decref(doc);
    return ok;
}

/* --- laminard processes -------------------------------------------------------- */

static const char *
laminard_path(void)
{
    static char path[1024];
    const char *bin = getenv("LM_TEST_BIN");
    snprintf(path, sizeof(path), "%s/laminard", bin != NULL && bin[0] != '\0' ? bin : "build/bin");
    return path;
}

/* Starts `laminard run-plan` on plan_path with the job's checkpoints in
 * ckpt_dir; paced adds the emit.rate settings, restore > 0 starts from
 * that checkpoint. Output goes to log. Returns the pid or -1. */
static pid_t
laminard_start(const char *plan_path, const rec_plan *p, const char *ckpt_dir, bool paced,
               unsigned long restore, const char *log, lm_report *r)
{
    char *argv[64], restore_s[32];
    int n = 0, rv;
    posix_spawn_file_actions_t fa;
    pid_t pid;

    argv[n++] = (char *)laminard_path();
    argv[n++] = "run-plan";
    argv[n++] = (char *)plan_path;
    argv[n++] = "-p";
    argv[n++] = REC_PARALLEL;
    argv[n++] = "--job";
    argv[n++] = "rec";
    argv[n++] = "--checkpoint-dir";
    argv[n++] = (char *)ckpt_dir;
    argv[n++] = "--checkpoint-interval";
    argv[n++] = "100";
    for (int i = 0; i < p->nsrc; i++) {
        argv[n++] = "-o";
        argv[n++] = (char *)p->sets[i];
        if (paced) {
            argv[n++] = "-o";
            argv[n++] = (char *)p->paced[i];
        }
    }
    if (restore > 0) {
        snprintf(restore_s, sizeof(restore_s), "%lu", restore);
        argv[n++] = "--restore";
        argv[n++] = restore_s;
    }
    argv[n++] = "-s";
    argv[n++] = "logging.level=warn";
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rv = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
        lm_report_fail(r, "cannot start %s: %s", argv[0], strerror(rv));
        return -1;
    }
    return pid;
}

/* The last complete checkpoint of job "rec" (one with its metadata), or 0. */
static unsigned long
last_checkpoint(const char *ckpt_dir, int *complete)
{
    char dir[1024];
    DIR *d;
    struct dirent *e;
    unsigned long best = 0;

    *complete = 0;
    snprintf(dir, sizeof(dir), "%s/rec/checkpoints", ckpt_dir);
    if ((d = opendir(dir)) == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        unsigned long n;
        char meta[1400];
        struct stat st;
        if (sscanf(e->d_name, "checkpoint-%lu", &n) != 1) {
            continue;
        }
        snprintf(meta, sizeof(meta), "%s/%s/metadata", dir, e->d_name);
        if (stat(meta, &st) == 0) {
            (*complete)++;
            if (n > best) {
                best = n;
            }
        }
    }
    closedir(d);
    return best;
}

/* Lines committed so far in dir. */
static size_t
committed_lines(const char *dir)
{
    size_t n = 0;
    char **lines = lm_test_read_lines(dir, &n);
    lm_test_free_lines(lines, n);
    return n;
}

/* Appends the end of the log file to the report. */
static void
report_log(lm_report *r, const char *log)
{
    size_t len = 0;
    char *text = lm_test_read_file(log, &len);
    if (text != NULL) {
        size_t from = len > 1200 ? len - 1200 : 0;
        lm_report_add(r, "\n--- laminard output%s ---\n%s", from > 0 ? " (end)" : "", text + from);
        free(text);
    }
}

/* Waits up to timeout_ms for pid to exit; true when it exited 0. */
static bool
wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = lm_test_now_ms() + timeout_ms;
    pid_t got;

    while ((got = waitpid(pid, status, WNOHANG)) == 0) {
        if (lm_test_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return false;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return got == pid && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

/* The committed output lines of dir, reduced to final rows for a
 * changelog. NULL with the reason in r. *free_lines gets what to free. */
static char **
final_lines(const char *dir, bool retract, size_t *n, char ***all, size_t *nall, const char *what,
            lm_report *r)
{
    char **lines = lm_test_read_lines(dir, nall), **out = lines;

    *all = lines;
    if (lines == NULL) {
        lm_report_fail(r, "%s: cannot read %s", what, dir);
        return NULL;
    }
    *n = *nall;
    if (retract && !lm_test_apply_retractions(lines, *nall, &out, n, what, r)) {
        return NULL;
    }
    return out;
}

/* --- one case --------------------------------------------------------------------- */

static void
recover_case(const char *name, const char *fmt, const char *query)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    lm_report r = {.len = 0, .failed = false};
    char work[256], ref_dir[512], out_dir[512], ckpt_dir[512], plan_path[512], log[512];
    rec_plan ref = {0}, run = {0};
    char **want_all = NULL, **want = NULL, **got_all = NULL, **got = NULL;
    size_t nwant = 0, nwant_all = 0, ngot = 0, ngot_all = 0, before = 0;
    unsigned long epoch = 0;
    int complete = 0, status = 0;
    pid_t pid;
    lm_error err;

    lm_log_configure(&lo, NULL);
    snprintf(work, sizeof(work), "%s", lm_test_tmpdir());
    ck_assert_msg(strcmp(work, "/tmp") != 0, "cannot make a temporary directory");
    snprintf(ref_dir, sizeof(ref_dir), "%s/reference", work);
    snprintf(out_dir, sizeof(out_dir), "%s/out", work);
    snprintf(ckpt_dir, sizeof(ckpt_dir), "%s/checkpoints", work);
    snprintf(plan_path, sizeof(plan_path), "%s/plan.json", work);
    snprintf(log, sizeof(log), "%s/laminard.log", work);
    if (mkdir(ref_dir, 0755) != 0 || mkdir(out_dir, 0755) != 0) {
        lm_report_fail(&r, "mkdir: %s", strerror(errno));
    }

    /* 1. the reference */
    if (!r.failed && plan_make(fmt, query, ref_dir, &ref, &r)) {
        const char *sets[9];
        lm_plan_opts po = {2, 0, sets};
        lm_job_result res;
        for (int i = 0; i < ref.nsrc; i++) {
            sets[i] = ref.sets[i];
        }
        sets[ref.nsrc] = NULL;
        if (lm_test_run_plan(ref.json, 2, &po, NULL, &res, &err) != LM_OK) {
            lm_report_fail(&r, "%s: reference run: %s", name, err.msg);
        } else if (res.state != LM_JOB_FINISHED) {
            lm_report_fail(&r, "%s: reference run ended in state %d: %s", name, res.state,
                           res.reason);
        } else {
            want = final_lines(ref_dir, ref.retract, &nwant, &want_all, &nwant_all, name, &r);
        }
    }

    /* 2. paced, killed after a few checkpoints */
    if (!r.failed && plan_make(fmt, query, out_dir, &run, &r)) {
        FILE *f = fopen(plan_path, "w");
        if (f == NULL || fputs(run.json, f) < 0 || fclose(f) != 0) {
            lm_report_fail(&r, "cannot write %s", plan_path);
        }
    }
    if (!r.failed && (pid = laminard_start(plan_path, &run, ckpt_dir, true, 0, log, &r)) > 0) {
        int64_t deadline = lm_test_now_ms() + 30000 * lm_test_slowdown();
        bool exited = false;
        while (!exited && lm_test_now_ms() < deadline) {
            last_checkpoint(ckpt_dir, &complete);
            if (complete >= REC_CHECKPOINTS && committed_lines(out_dir) > 0) {
                break;
            }
            exited = waitpid(pid, &status, WNOHANG) == pid;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        epoch = last_checkpoint(ckpt_dir, &complete);
        if (exited) {
            lm_report_fail(&r, "%s: the paced run ended (status %d) before %d checkpoints", name,
                           status, REC_CHECKPOINTS);
            report_log(&r, log);
        } else if (complete < REC_CHECKPOINTS) {
            lm_report_fail(&r, "%s: %d complete checkpoints and no output committed in 30 s", name,
                           complete);
            report_log(&r, log);
        }
    }
    /* what the killed run committed: the restart must neither repeat nor lose it */
    if (!r.failed) {
        before = committed_lines(out_dir);
    }

    /* 3. restored from the last complete checkpoint, to the end */
    if (!r.failed && (pid = laminard_start(plan_path, &run, ckpt_dir, false, epoch, log, &r)) > 0) {
        if (!wait_exit(pid, 60000 * lm_test_slowdown(), &status)) {
            lm_report_fail(&r, "%s: the run restored from checkpoint %lu failed (status %d)", name,
                           epoch, status);
            report_log(&r, log);
        }
    }
    if (!r.failed) {
        got = final_lines(out_dir, run.retract, &ngot, &got_all, &ngot_all, name, &r);
    }
    if (!r.failed) {
        char what[128];
        snprintf(what, sizeof(what), "%s, killed after checkpoint %lu and restored", name, epoch);
        lm_test_compare_lines(got, ngot, want, nwant, what, "the recovered run",
                              "the uninterrupted run", &r);
        if (!r.failed && nwant == 0) {
            lm_report_fail(&r, "%s: no output at all: the case tests nothing", name);
        }
        if (!r.failed && (before == 0 || before >= ngot_all)) {
            lm_report_fail(&r,
                           "%s: the killed run committed %zu of %zu lines; the case must stop "
                           "mid-way to test anything (adjust REC_RATE)",
                           name, before, ngot_all);
        }
    }

    if (got != got_all) {
        free(got);
    }
    if (want != want_all) {
        free(want);
    }
    lm_test_free_lines(got_all, ngot_all);
    lm_test_free_lines(want_all, nwant_all);
    free(ref.json);
    free(run.json);
    if (r.failed && getenv("LM_TEST_KEEP") != NULL) {
        lm_report_add(&r, "\n(kept %s)", work);
    } else {
        lm_storage_remove_tree(work, &err);
    }
    lm_msg_pool_trim();
    ck_assert_msg(!r.failed, "%s", r.msg);
}

/* --- a branch that ends before the job does ----------------------------- */

/* Two independent branches: "short" counts 0..299 at 1,000/s, "long"
 * 0..2999 at 2,000/s, each into its own file sink. %s, %s: the sinks'
 * directories. */
static const char two_branch_plan[] =
    "{\"name\": \"branches\", \"operators\": ["
    "{\"id\": \"short\", \"kind\": \"impulse\", \"config\": {\"count\": 300, \"rate\": 1000},"
    " \"schema\": [{\"name\": \"counter\", \"type\": \"int64\", \"nullable\": false},"
    "  {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]},"
    "{\"id\": \"long\", \"kind\": \"impulse\", \"config\": {\"count\": 3000, \"rate\": 2000},"
    " \"schema\": [{\"name\": \"counter\", \"type\": \"int64\", \"nullable\": false},"
    "  {\"name\": \"ts\", \"type\": \"timestamp\", \"nullable\": false}]},"
    "{\"id\": \"short_sink\", \"kind\": \"file_sink\", \"config\": {\"path\": \"%s\"}},"
    "{\"id\": \"long_sink\", \"kind\": \"file_sink\", \"config\": {\"path\": \"%s\"}}],"
    " \"edges\": [{\"from\": \"short\", \"to\": \"short_sink\"},"
    "  {\"from\": \"long\", \"to\": \"long_sink\"}]}";

/* The counters in the committed lines of dir: each of 0..n-1 exactly once. */
static void
expect_counters(const char *dir, int n, const char *what)
{
    size_t got = 0;
    char **lines = lm_test_read_lines(dir, &got);
    char *seen = calloc((size_t)n, 1);

    ck_assert_ptr_nonnull(lines);
    for (size_t i = 0; i < got; i++) {
        long long c = -1;
        ck_assert_msg(sscanf(lines[i], "{\"counter\":%lld", &c) == 1 && c >= 0 && c < n,
                      "%s: unexpected line %s", what, lines[i]);
        ck_assert_msg(!seen[c], "%s: counter %lld twice", what, c);
        seen[c] = 1;
    }
    ck_assert_msg(got == (size_t)n, "%s: %zu counters, want %d", what, got, n);
    free(seen);
    lm_test_free_lines(lines, got);
}

/* A sink whose input ended keeps its last rows uncommitted until the whole
 * job has finished: when the job fails after that branch ended and restarts
 * from an earlier checkpoint, the branch's rows are not there twice. */
START_TEST(test_recovery_branch_ending_early_commits_with_the_job)
{
    char work[256], short_dir[320], long_dir[320], ckpt[320], text[4096];
    lm_rt_opts ro = {1, 2, 0, "test"};
    lm_job_opts jo = {.job_id = "branches"};
    lm_plan *p;
    lm_rt *rt;
    lm_addr tm;
    lm_job_handle *h;
    lm_job_result res;
    lm_error err;
    uint64_t epoch = 0;
    size_t n_short = 0, n_long = 0;
    char **lines;

    snprintf(work, sizeof(work), "%s", lm_test_tmpdir());
    snprintf(short_dir, sizeof(short_dir), "%s/short", work);
    snprintf(long_dir, sizeof(long_dir), "%s/long", work);
    snprintf(ckpt, sizeof(ckpt), "%s/ckpt", work);
    snprintf(text, sizeof(text), two_branch_plan, short_dir, long_dir);
    jo.checkpoint_dir = ckpt;
    ck_assert_int_eq(lm_plan_load_json(text, strlen(text), "branches", NULL, &p, &err), LM_OK);
    ck_assert_int_eq(lm_rt_new(&ro, &rt), LM_OK);
    ck_assert_int_eq(lm_taskmgr_spawn(rt, &tm), LM_OK);
    ck_assert_int_eq(lm_job_start(rt, tm, p, &jo, &h), LM_OK);
    usleep(100000);
    ck_assert_msg(lm_job_checkpoint(h, LM_BARRIER_CHECKPOINT, false, 10000 * lm_test_slowdown(),
                                    &epoch, &err) == LM_OK,
                  "%s", err.msg);
    usleep(400000); /* "short" ends (0.3 s); "long" goes on (1.5 s) */
    ck_assert_int_eq(lm_job_cancel(h), LM_OK);
    ck_assert_int_eq(lm_job_wait(h, 30000 * lm_test_slowdown(), &res), LM_OK);
    ck_assert_msg(res.state == LM_JOB_CANCELED, "first run: %d %s", res.state, res.reason);
    lm_rt_free(rt, 5000);
    lm_job_handle_free(h);
    lm_plan_free(p);

    /* only what checkpoint `epoch` covers is committed, in both branches */
    lines = lm_test_read_lines(short_dir, &n_short);
    lm_test_free_lines(lines, n_short);
    lines = lm_test_read_lines(long_dir, &n_long);
    lm_test_free_lines(lines, n_long);
    ck_assert_msg(n_short > 0 && n_short < 300, "short branch: %zu rows committed", n_short);
    ck_assert_msg(n_long > 0 && n_long < 3000, "long branch: %zu rows committed", n_long);

    jo.restore_epoch = epoch;
    ck_assert_msg(lm_test_run_plan(text, 2, NULL, &jo, &res, &err) == LM_OK, "%s", err.msg);
    ck_assert_msg(res.state == LM_JOB_FINISHED, "restored run: %s", res.reason);
    expect_counters(short_dir, 300, "short branch");
    expect_counters(long_dir, 3000, "long branch");
    lm_storage_remove_tree(work, &err);
}
END_TEST

START_TEST(test_recovery_hopping_window_aggregate)
{
    recover_case("hopping windows", hop_plan, NULL);
}
END_TEST

START_TEST(test_recovery_session_window_aggregate)
{
    recover_case("session windows", session_plan, NULL);
}
END_TEST

/* The Nexmark queries whose plans hold joins and updating aggregates. */
#define RECOVERY_QUERIES(X) X(q3) X(q4) X(q5) X(q7) X(q8)

#define RECOVERY_TEST(q)                                                                           \
    START_TEST(test_recovery_nexmark_##q)                                                          \
    {                                                                                              \
        recover_case("nexmark " #q, NULL, #q);                                                     \
    }                                                                                              \
    END_TEST
RECOVERY_QUERIES(RECOVERY_TEST)
#undef RECOVERY_TEST

Suite *
recovery_suite(void)
{
    Suite *s = suite_create("recovery");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recovery_branch_ending_early_commits_with_the_job);
    tcase_add_test(tc, test_recovery_hopping_window_aggregate);
    tcase_add_test(tc, test_recovery_session_window_aggregate);
#define RECOVERY_ADD(q) tcase_add_test(tc, test_recovery_nexmark_##q);
    RECOVERY_QUERIES(RECOVERY_ADD)
#undef RECOVERY_ADD
    suite_add_tcase(s, tc);
    return s;
}
