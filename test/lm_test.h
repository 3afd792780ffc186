/*
 * lm_test.h: helpers shared by the Check suites.
 *
 * A probe is an actor that queues every message it receives (retained)
 * for the test thread, which waits for them with a deadline. Peers are
 * helper processes (build/<variant>/test/lm-test-peer) started with
 * posix_spawn (nng must not be used after a bare fork), killed with the
 * test, and reporting their addresses on a pipe.
 */
#ifndef LM_TEST_H
#define LM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "lm_plan.h"
#include "lm_rt.h"
#include "lm_taskmgr.h"

typedef struct lm_probe lm_probe;

/* Spawns a probe actor on rt (loop -1 = any). */
lm_probe *lm_probe_new(lm_rt *rt, int loop);
lm_addr lm_probe_addr(const lm_probe *p);
/* Waits up to timeout_ms for the next message whose type is type (0 = any
 * type); messages of other types before it are discarded. Returns the
 * message (caller releases) or NULL on timeout. */
lm_msg *lm_probe_wait(lm_probe *p, uint32_t type, int timeout_ms);
/* Messages queued and not yet taken. */
int lm_probe_pending(lm_probe *p);
/* Frees the probe's queue; call after lm_rt_free (the actor is gone). */
void lm_probe_free(lm_probe *p);

/* How much slower than normal the tests run: $LM_TEST_SLOWDOWN (for
 * valgrind or a loaded machine), default 1. Deadlines are multiplied by it. */
int lm_test_slowdown(void);

/* Monotonic milliseconds. */
int64_t lm_test_now_ms(void);

/* A peer process running lm-test-peer. */
typedef struct lm_peer {
    pid_t pid;     /* the process */
    int out;       /* read end of its stdout */
    lm_addr echo;  /* its echo actor, from its READY line */
    lm_addr tm;    /* its task manager */
    char url[256]; /* its front door, from its READY line */
} lm_peer;

/* Starts lm-test-peer with node id and listen URL (and, when route is not
 * NULL, a route "ID=URL" to another node) and waits up to timeout_ms for
 * its READY line. Returns 0 or -1. */
int lm_peer_start(lm_peer *p, uint32_t node, const char *url, const char *route, int timeout_ms);
/* Sends sig and reaps the process. */
void lm_peer_kill(lm_peer *p, int sig);

/* A fresh directory under /tmp for one test; returns a static buffer. */
const char *lm_test_tmpdir(void);

/* --- running plans ------------------------------------------------------
 * Engine tests run real plans in this process: a runtime with `loops`
 * loops and a task manager, the plan loaded from JSON text, the job run to
 * its end. Plans write their results with file_sink (JSON lines) into a
 * directory the test reads back with lm_test_read_lines. */

/* Loads and runs the plan; returns LM_OK with *res, or the error loading
 * or deploying it (err says what). opts may be NULL. */
int lm_test_run_plan(const char *json, int loops, const lm_plan_opts *popts,
                     const lm_job_opts *jopts, lm_job_result *res, lm_error *err);

/* Every line of every committed file in dir (not .inprogress), sorted
 * (a multiset in a canonical order). *n gets the count; free with
 * lm_test_free_lines. Returns NULL when dir cannot be read. */
char **lm_test_read_lines(const char *dir, size_t *n);
void lm_test_free_lines(char **lines, size_t n);

/* --- reports -----------------------------------------------------------
 * A failure message built while a test cleans up before it asserts. */
typedef struct lm_report {
    char msg[3800];
    size_t len;
    bool failed;
} lm_report;

/* Appends text to the report. */
void lm_report_add(lm_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Marks the report failed and appends a line. */
void lm_report_fail(lm_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- files and lines ---------------------------------------------------- */

/* The repository root the tests run from: $LM_TEST_ROOT, else ".". */
const char *lm_test_root(void);

/* The whole file at path, NUL-terminated, or NULL; *len (may be NULL) its
 * size. */
char *lm_test_read_file(const char *path, size_t *len);

/* Reduces a changelog (sorted lines, each a JSON object ending with
 * ,"_retract":false} or ,"_retract":true}) to the final multiset: *out
 * gets the rows left, sorted, without the column (lines are edited in
 * place; free *out, not its strings). False with the reason in r for a
 * malformed line or a retraction of a row never inserted. */
bool lm_test_apply_retractions(char **lines, size_t n, char ***out, size_t *nout, const char *what,
                               lm_report *r);

/* Compares two sorted multisets of lines; on a difference, fails r with
 * the counts and the first differing lines on each side (named got_name
 * and want_name). */
bool lm_test_compare_lines(char **got, size_t ngot, char **want, size_t nwant, const char *what,
                           const char *got_name, const char *want_name, lm_report *r);

/* --- Nexmark plans -------------------------------------------------------
 * Loads scripts/nexmark/plans/<query>.json (under lm_test_root()) with its
 * operator "sink" made a JSON-lines file sink writing into out_dir; a
 * query named "<q>.sql" is scripts/nexmark/sql/<q>.sql compiled, its
 * operator "sink_sink" (the table "sink") made that file sink.
 * *retract tells whether the sink's input is a changelog. Returns the
 * document (json_decref it) or NULL with the reason in r. */
json_t *lm_test_nexmark_plan(const char *query, const char *out_dir, bool *retract, lm_report *r);

/* --- a PostgreSQL server -------------------------------------------------
 * A real server for the metastore tests: initdb + pg_ctl in a temp dir,
 * on a free loopback port, run as the `postgres` user when run as root.
 * The binaries are those of the highest /usr/lib/postgresql/N/bin, or of
 * the directory $LM_TEST_PG_BIN names. */
typedef struct lm_test_pg {
    char dir[64];      /* the server's temp dir: data/, logs, socket */
    char bin[256];     /* /usr/lib/postgresql/N/bin */
    char runas[64];    /* "runuser -u postgres -- " when root, else "" */
    int port;          /* loopback port */
    bool up;           /* running */
    char problem[900]; /* why it could not start; "" when it did */
} lm_test_pg;

/* Makes the cluster and starts the server. Returns 0, or -1 with
 * pg->problem saying why. Call lm_test_pg_stop afterwards either way. */
int lm_test_pg_start(lm_test_pg *pg);
/* Stops the server (immediate mode) and removes its directory. */
void lm_test_pg_stop(lm_test_pg *pg);
/* Stops the server (fast mode: clients are disconnected), keeping its
 * data, and starts it again on the same port: an outage. 0 or -1 (the
 * reason in pg->problem). */
int lm_test_pg_halt(lm_test_pg *pg);
int lm_test_pg_resume(lm_test_pg *pg);
/* Creates database name on the server and writes its URL into url.
 * 0 or -1 (the reason in pg->problem). */
int lm_test_pg_createdb(lm_test_pg *pg, const char *name, char *url, size_t cap);

/* A loopback TCP port free right now, or -1. */
int lm_test_free_port(void);

/* --- the Nexmark oracle ---------------------------------------------------
 * DuckDB computes a Nexmark query's batch answer from dumped events:
 * `node test/oracle/oracle.mjs QUERY DUMP_DIR OUT` writes the rows in the
 * file sink's exact JSON-lines format (see test/oracle/oracle.mjs). */

/* scripts/nexmark/sql/<query>.sql (under lm_test_root(); query "q5" or
 * "q5.sql") with its sink table writing JSON lines into out_dir instead
 * of the blackhole, and, when events is not NULL, the source's
 * "'events.num' = '10000000'" replaced by events (e.g. "'events.num' =
 * '1000'"). Returns the text (free it) or NULL with the reason in r. */
char *lm_test_nexmark_sql(const char *query, const char *out_dir, const char *events, lm_report *r);

/* Starts `node test/oracle/oracle.mjs query dump_dir out` with its stdout
 * and stderr into log. Returns the pid, or -1 with the reason in r. */
pid_t lm_test_oracle_start(const char *query, const char *dump_dir, const char *out,
                           const char *log, lm_report *r);
/* Waits up to timeout_ms for the oracle (killing it after that). True when
 * it exited 0; else the reason and the end of its output in r. */
bool lm_test_oracle_wait(pid_t pid, const char *log, int timeout_ms, lm_report *r);

/* Splits text in place into its lines (without '\n'), sorted; *n the
 * count. Returns the array (free it, not the lines), NULL only when out
 * of memory. */
char **lm_test_split_lines(char *text, size_t len, size_t *n);

/* Compares the committed output in dir (lm_test_read_lines; reduced with
 * lm_test_apply_retractions first when retract) with want, the oracle's
 * sorted lines. False with the difference in r (got_name and want_name
 * name the sides). */
bool lm_test_compare_dir(const char *dir, bool retract, char **want, size_t nwant, const char *what,
                         const char *got_name, const char *want_name, lm_report *r);

/* --- processes -----------------------------------------------------------
 * Programs the tests run for real (laminard, laminarctl): started with
 * posix_spawn, stdin from /dev/null, stdout and stderr into a log file.
 * Nothing here asserts: a test cleans up (stops every process it started,
 * which reaps it) before it fails. */

/* The path of program prog of the build: $LM_TEST_BIN/prog, default
 * build/bin/prog, into out. Returns out. */
const char *lm_test_bin(const char *prog, char *out, size_t cap);

typedef struct lm_test_proc {
    pid_t pid;     /* > 0 from start until reaped */
    int status;    /* its waitpid status once reaped, else -1 */
    char log[512]; /* where its stdout and stderr go */
} lm_test_proc;

/* Starts argv (argv[0] a path) with stdout and stderr appended to log.
 * Returns 0, or -1 (errno set) when it cannot be started. */
int lm_test_proc_start(lm_test_proc *p, char *const argv[], const char *log);
/* Waits up to timeout_ms (0: just looks) for the process to exit and
 * reaps it. True when it has exited (now or before). */
bool lm_test_proc_wait(lm_test_proc *p, int timeout_ms);
/* Sends sig unless the process has exited, waits up to timeout_ms for it
 * to exit, then kills it (SIGKILL) and reaps it. Returns its exit status
 * (0..255) when it exited by itself after sig, or -1 when it did not:
 * killed by a signal, SIGKILLed after the timeout, or never started.
 * Safe to call again (returns the same). */
int lm_test_proc_stop(lm_test_proc *p, int sig, int timeout_ms);
/* "exit status N", "killed by signal N" or "running", for messages (a
 * static buffer). */
const char *lm_test_proc_describe(const lm_test_proc *p);

/* The result of a program run to its end. */
typedef struct lm_test_output {
    int status; /* exit status; -1 when it could not run, or did not exit normally in time */
    char *out;  /* its stdout, NUL-terminated ("" when none) */
    char *err;  /* its stderr */
} lm_test_output;

/* Runs argv (argv[0] a path) to its end, stdout and stderr into
 * <scratch>/stdout.txt and stderr.txt, killing it after timeout_ms.
 * Returns its exit status as o->status (also returned). */
int lm_test_run(char *const argv[], const char *scratch, int timeout_ms, lm_test_output *o);
void lm_test_output_free(lm_test_output *o);

/* Appends the last max bytes of the file at path to r, headed by name. */
void lm_report_log_tail(lm_report *r, const char *name, const char *path, size_t max);

/* --- an HTTP client --------------------------------------------------------
 * Small and blocking: plain sockets, one request per connection
 * (Connection: close), a 20 s (times the slowdown) socket timeout. */

typedef struct lm_test_http {
    int status;        /* -1 when no status line came */
    char *headers;     /* the header block, NUL-terminated */
    char *body;        /* the body, NUL-terminated */
    size_t body_len;   /* its length */
    json_t *json;      /* the body parsed, or NULL */
    json_error_t err;  /* why not */
    char problem[160]; /* why no status line came ("" when one did) */
} lm_test_http;

/* A blocking TCP connection to host (a dotted IPv4 address):port, or -1. */
int lm_test_http_connect(const char *host, int port);
/* Sends the raw bytes (then, when half_close, shuts the sending side down)
 * and reads the answer to its end. Returns 0 when a status line came
 * back, -1 otherwise. Send errors are ignored (the server may answer and
 * close before a large body is all sent). Free out either way. */
int lm_test_http_raw(const char *host, int port, bool half_close, const char *data, size_t len,
                     lm_test_http *out);
/* One request: method, path, and a body (NULL: none, no Content-Length). */
int lm_test_http_do(const char *host, int port, bool half_close, const char *method,
                    const char *path, const char *body, size_t len, lm_test_http *out);
/* The same with a NUL-terminated JSON body (or NULL), no half-close. */
int lm_test_http_json(const char *host, int port, const char *method, const char *path,
                      const char *body, lm_test_http *out);
/* The value of header name in r (a static buffer), or NULL. */
const char *lm_test_http_header(const lm_test_http *r, const char *name);
void lm_test_http_free(lm_test_http *r);

/* --- the REST API of a laminard on 127.0.0.1 ------------------------------- */

/* GET /api/v1<path>: the parsed body of a 200 answer (json_decref it), or
 * NULL; *status (may be NULL) gets the HTTP status, -1 for no answer
 * (then problem, when not NULL, says why; else the body's start). */
json_t *lm_test_api_get(int port, const char *path, int *status, char *problem, size_t cap);
/* Waits up to timeout_ms until GET /api/v1/healthz answers 200. False
 * when it did not, or when p (may be NULL) exited meanwhile. */
bool lm_test_api_wait_up(int port, lm_test_proc *p, int timeout_ms);
/* Polls GET /api/v1/jobs/<job> until its "state" is state; returns that
 * answer (json_decref it). NULL after timeout_ms, or as soon as the job
 * is in another state a job never leaves (stopped, failed, finished);
 * last (may be NULL) gets the last state seen and its reason. */
json_t *lm_test_api_wait_job(int port, long long job, const char *state, int timeout_ms, char *last,
                             size_t cap);
/* GET /api/v1/jobs/<job>/events: the "events" array (json_decref it) or
 * NULL; states (may be NULL) gets their states in order, comma-separated
 * ("created,scheduling,running"). */
json_t *lm_test_api_events(int port, long long job, char *states, size_t cap);

#endif /* LM_TEST_H */
