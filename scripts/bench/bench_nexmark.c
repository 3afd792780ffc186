/*
 * bench_nexmark.c: lm-bench-nexmark, the Nexmark benchmark.
 *
 *   lm-bench-nexmark [--queries q0,q1,...] [--events N] [--parallelism 1,2]
 *                    [--runs N] [--plans DIR] [--sql DIR] [--json FILE] [--table FILE]
 *
 * Runs each query's plan (DIR/<query>.json, default scripts/nexmark/plans;
 * with --sql, the pipeline DIR/<query>.sql compiled by the SQL compiler)
 * over N generated events (default 10 million) into its blackhole sink, at
 * each parallelism, each run in a process of its own so that its CPU time
 * and peak memory are its own: the parent takes them from wait4(). The
 * runtime gets as many loops as the parallelism.
 *
 * Figures per run: events/s (all events of every kind the sources
 * generated, over the wall time from deploy to the end), events/s per
 * core (events over user + system CPU seconds), and peak RSS. Each query
 * and parallelism runs --runs times (default 3; a shared or virtual
 * machine's speed drifts from second to second): the figures are those of
 * the run with the median wall time, the peak RSS the highest of all. Prints a
 * table (also written to the --table file) and appends one JSON line per
 * figure to the --json file:
 *   {"bench": "nexmark", "query": "q5", "from": "plan" | "sql", "parallelism": 1,
 *    "metric": "events_per_s", "value": NUMBER}
 * A run that fails is reported with its reason and makes the exit status 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_plan.h"
#include "lm_proto.h"
#include "lm_rt.h"
#include "lm_sql.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"

#define MAX_LIST 32

/* What a child reports to the parent through a pipe. */
typedef struct run_report {
    int ok;
    uint64_t events;
    double seconds;
    char reason[LM_ERROR_MSG_MAX];
} run_report;

typedef struct run_figures {
    const char *query;
    uint32_t parallelism;
    run_report rep;
    double cpu_seconds;
    double peak_rss_mb;
} run_figures;

static int
split_list(char *s, char **out, int cap)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok != NULL; tok = strtok(NULL, ",")) {
        if (n == cap) {
            return -1;
        }
        out[n++] = tok;
    }
    return n;
}

/* Loads a plan file, or compiles a .sql pipeline. */
static int
load(const char *path, const lm_plan_opts *po, lm_plan **plan, lm_error *err)
{
    size_t n = strlen(path), len;
    char *text, *doc;
    json_t *j;
    lm_sql_diag d;
    int rv;

    if (n < 4 || strcmp(path + n - 4, ".sql") != 0) {
        return lm_plan_load_file(path, po, plan, err);
    }
    if ((rv = lm_storage_read(path, (uint8_t **)&text, &len, err)) != LM_OK) {
        return rv;
    }
    rv = lm_sql_compile(text, len, NULL, &j, NULL, &d);
    free(text);
    if (rv != LM_OK) {
        return lm_error_set(err, rv, "%s:%u:%u: %s", path, d.pos.line, d.pos.col, d.msg);
    }
    doc = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (doc == NULL) {
        return LM_ENOMEM;
    }
    rv = lm_plan_load_json(doc, strlen(doc), path, po, plan, err);
    free(doc);
    return rv;
}

/* The child: loads and runs one plan, writes a run_report to fd. */
static int
child_run(const char *path, uint32_t parallelism, uint64_t events, int fd)
{
    run_report rep = {0};
    char sets_buf[MAX_LIST][128];
    const char *sets[MAX_LIST + 1];
    uint32_t nsets = 0;
    lm_plan_opts po = {parallelism, 0, NULL};
    lm_rt_opts ro = {1, (int)parallelism, 0, "bench"};
    lm_job_opts jo = {0};
    lm_job_result res;
    lm_plan *plan = NULL;
    lm_rt *rt = NULL;
    lm_addr tm;
    lm_error err;
    int rv;

    /* Every nexmark source generates `events` events. */
    if ((rv = load(path, &po, &plan, &err)) == LM_OK) {
        for (uint32_t i = 0; i < plan->nops && nsets < MAX_LIST; i++) {
            if (strcmp(plan->ops[i].kind->name, "nexmark") == 0) {
                snprintf(sets_buf[nsets], sizeof(sets_buf[nsets]), "%s.events.num=%" PRIu64,
                         plan->ops[i].def.id, events);
                sets[nsets] = sets_buf[nsets];
                nsets++;
            }
        }
        sets[nsets] = NULL;
        lm_plan_free(plan);
        po.sets = sets;
        rv = load(path, &po, &plan, &err);
    }
    if (rv != LM_OK) {
        snprintf(rep.reason, sizeof(rep.reason), "%s", err.msg);
    } else if ((rv = lm_rt_new(&ro, &rt)) != LM_OK || (rv = lm_taskmgr_spawn(rt, &tm)) != LM_OK) {
        snprintf(rep.reason, sizeof(rep.reason), "cannot start the runtime: %s", lm_strerror(rv));
    } else {
        jo.job_id = plan->name;
        if ((rv = lm_job_run(rt, tm, plan, &jo, &res)) != LM_OK) {
            snprintf(rep.reason, sizeof(rep.reason), "%s", lm_strerror(rv));
        } else if (res.state != LM_JOB_FINISHED) {
            snprintf(rep.reason, sizeof(rep.reason), "%s", res.reason);
        } else {
            rep.ok = 1;
            rep.events = res.events;
            rep.seconds = res.seconds;
        }
    }
    if (rt != NULL) {
        lm_rt_free(rt, 5000);
    }
    lm_plan_free(plan);
    if (write(fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep)) {
        return 1;
    }
    return rep.ok ? 0 : 1;
}

/* Runs one query at one parallelism in a child process. */
static const char *plan_ext = ".json";

static void
run_child(const char *plans, run_figures *f, uint64_t events)
{
    char path[4096];
    int fds[2];
    pid_t pid;
    int status;
    struct rusage ru;
    ssize_t got = 0;

    memset(&f->rep, 0, sizeof(f->rep));
    snprintf(path, sizeof(path), "%s/%s%s", plans, f->query, plan_ext);
    if (pipe(fds) != 0) {
        snprintf(f->rep.reason, sizeof(f->rep.reason), "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        snprintf(f->rep.reason, sizeof(f->rep.reason), "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        _exit(child_run(path, f->parallelism, events, fds[1]));
    }
    close(fds[1]);
    while (got < (ssize_t)sizeof(f->rep)) {
        ssize_t n = read(fds[0], (char *)&f->rep + got, sizeof(f->rep) - (size_t)got);
        if (n <= 0) {
            break;
        }
        got += n;
    }
    close(fds[0]);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    if (got != (ssize_t)sizeof(f->rep)) {
        memset(&f->rep, 0, sizeof(f->rep));
        snprintf(f->rep.reason, sizeof(f->rep.reason), "the run died (status %d)", status);
        return;
    }
    f->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    f->peak_rss_mb = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static int
cmp_wall(const void *a, const void *b)
{
    const run_figures *x = a, *y = b;
    return x->rep.seconds < y->rep.seconds ? -1 : x->rep.seconds > y->rep.seconds;
}

/* Runs it `runs` times; keeps the median run (by wall time) and the
 * highest peak RSS. A failed run fails the lot. */
static void
run_one(const char *plans, run_figures *f, uint64_t events, int runs)
{
    run_figures r[16];
    double rss = 0;

    if (runs > 16) {
        runs = 16;
    }
    for (int i = 0; i < runs; i++) {
        r[i] = *f;
        run_child(plans, &r[i], events);
        if (!r[i].rep.ok) {
            *f = r[i];
            return;
        }
        if (r[i].peak_rss_mb > rss) {
            rss = r[i].peak_rss_mb;
        }
    }
    qsort(r, (size_t)runs, sizeof(r[0]), cmp_wall);
    *f = r[runs / 2];
    f->peak_rss_mb = rss;
}

static void
print_json(FILE *out, const run_figures *f, const char *metric, double value)
{
    fprintf(out,
            "{\"bench\": \"nexmark\", \"query\": \"%s\", \"from\": \"%s\", \"parallelism\": %u, "
            "\"metric\": \"%s\", \"value\": %.6g}\n",
            f->query, strcmp(plan_ext, ".sql") == 0 ? "sql" : "plan", f->parallelism, metric,
            value);
}

static void
print_row(FILE *out, const run_figures *f, const run_figures *p1)
{
    if (!f->rep.ok) {
        fprintf(out, "%-5s %3u  FAILED: %s\n", f->query, f->parallelism, f->rep.reason);
        return;
    }
    double eps = (double)f->rep.events / f->rep.seconds;
    double epc = (double)f->rep.events / f->cpu_seconds;
    fprintf(out, "%-5s %3u %12" PRIu64 " %9.3f %9.3f %14.0f %14.0f %9.1f", f->query, f->parallelism,
            f->rep.events, f->rep.seconds, f->cpu_seconds, eps, epc, f->peak_rss_mb);
    if (p1 != NULL && p1->rep.ok && p1 != f) {
        fprintf(out, " %7.2fx", eps / ((double)p1->rep.events / p1->rep.seconds));
    }
    fprintf(out, "\n");
}

static void
usage(FILE *out)
{
    fprintf(out, "usage: lm-bench-nexmark [--queries q0,q1,...] [--events N] "
                 "[--parallelism 1,2] [--runs N] [--plans DIR] [--sql DIR] [--json FILE] "
                 "[--table FILE]\n");
}

int
main(int argc, char **argv)
{
    char qbuf[1024] = "q0,q1,q2,q3,q4,q5,q7,q8", pbuf[256] = "1,2";
    char *queries[MAX_LIST], *pars[MAX_LIST];
    const char *plans = "scripts/nexmark/plans", *json_path = NULL, *table_path = NULL;
    uint64_t events = 10000000;
    int nq, np, failed = 0, runs = 3;
    FILE *json = NULL, *table = NULL;
    run_figures *figs;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--queries") == 0) {
            snprintf(qbuf, sizeof(qbuf), "%s", v);
        } else if (strcmp(a, "--parallelism") == 0) {
            snprintf(pbuf, sizeof(pbuf), "%s", v);
        } else if (strcmp(a, "--events") == 0) {
            char *end;
            events = strtoull(v, &end, 10);
            if (*end != '\0' || events == 0) {
                fprintf(stderr, "lm-bench-nexmark: --events wants a positive number, got '%s'\n",
                        v);
                return 2;
            }
        } else if (strcmp(a, "--runs") == 0) {
            runs = atoi(v);
            if (runs < 1 || runs > 16) {
                fprintf(stderr, "lm-bench-nexmark: --runs wants 1 to 16, got '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--plans") == 0) {
            plans = v;
            plan_ext = ".json";
        } else if (strcmp(a, "--sql") == 0) {
            plans = v;
            plan_ext = ".sql";
        } else if (strcmp(a, "--json") == 0) {
            json_path = v;
        } else if (strcmp(a, "--table") == 0) {
            table_path = v;
        } else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if ((nq = split_list(qbuf, queries, MAX_LIST)) <= 0 ||
        (np = split_list(pbuf, pars, MAX_LIST)) <= 0) {
        fprintf(stderr, "lm-bench-nexmark: empty or too long --queries or --parallelism list\n");
        return 2;
    }
    if ((figs = calloc((size_t)nq * (size_t)np, sizeof(*figs))) == NULL) {
        return 1;
    }
    for (int j = 0; j < np; j++) {
        long p = strtol(pars[j], NULL, 10);
        if (p < 1 || p > 64) {
            fprintf(stderr, "lm-bench-nexmark: bad parallelism '%s'\n", pars[j]);
            return 2;
        }
    }
    if (json_path != NULL && (json = fopen(json_path, "a")) == NULL) {
        fprintf(stderr, "lm-bench-nexmark: cannot open %s: %s\n", json_path, strerror(errno));
        return 1;
    }
    if (table_path != NULL && (table = fopen(table_path, "w")) == NULL) {
        fprintf(stderr, "lm-bench-nexmark: cannot open %s: %s\n", table_path, strerror(errno));
        return 1;
    }
    lm_log_opts lo = {LM_LOG_WARN, LM_LOG_TEXT, false, true, NULL};
    lm_log_configure(&lo, NULL);

    static const char header[] = "query   p       events    wall_s     cpu_s       events/s "
                                 "events/s/core   rss_MB  speedup\n";
    const char *from =
        strcmp(plan_ext, ".sql") == 0 ? "plans compiled from SQL" : "hand-built plans";
    printf("Nexmark, %" PRIu64 " events per run, blackhole sink, median of %d runs, %s\n%s", events,
           runs, from, header);
    if (table != NULL) {
        fprintf(table,
                "Nexmark, %" PRIu64 " events per run, blackhole sink, median of %d runs, %s\n%s",
                events, runs, from, header);
    }
    for (int q = 0; q < nq; q++) {
        for (int j = 0; j < np; j++) {
            run_figures *f = &figs[q * np + j];
            f->query = queries[q];
            f->parallelism = (uint32_t)strtoul(pars[j], NULL, 10);
            run_one(plans, f, events, runs);
            print_row(stdout, f, &figs[q * np]);
            fflush(stdout);
            if (table != NULL) {
                print_row(table, f, &figs[q * np]);
            }
            if (!f->rep.ok) {
                failed = 1;
                continue;
            }
            if (json != NULL) {
                print_json(json, f, "events_per_s", (double)f->rep.events / f->rep.seconds);
                print_json(json, f, "events_per_s_per_core",
                           (double)f->rep.events / f->cpu_seconds);
                print_json(json, f, "peak_rss_mb", f->peak_rss_mb);
                print_json(json, f, "wall_s", f->rep.seconds);
                print_json(json, f, "cpu_s", f->cpu_seconds);
            }
        }
    }
    if (json != NULL) {
        fclose(json);
    }
    if (table != NULL) {
        fclose(table);
    }
    free(figs);
    return failed;
}
