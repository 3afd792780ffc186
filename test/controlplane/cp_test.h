/*
 * cp_test.h: the fixture the control-plane end-to-end suites share
 * (check_standalone.c, check_cluster.c, and the daemon tests of
 * test/cli/check_cli.c), which run laminard and
 * laminarctl for real.
 *
 * A test gets a fresh scratch directory (cp_setup) and watches the
 * daemons it starts (cp_watch). A failed CHECK fails the test only after
 * cleaning up: its message is "line N: <text>" followed, for each watched
 * process that was started, by its state and the end of its log; then
 * every watched process is killed and reaped, the suite's own cleanup
 * hook runs and the scratch directory is removed. The other helpers
 * fail the same way.
 *
 * One test runs at a time in a process (Check forks each), so the state
 * here is static. CHECK and MS are these suites' shorthand and are meant
 * for files that include this header only.
 */
#ifndef CP_TEST_H
#define CP_TEST_H

#include <stddef.h>

#include <jansson.h>

#include "lm_test.h"

/* A deadline of ms milliseconds, stretched by $LM_TEST_SLOWDOWN. */
#define MS(ms) ((int)(ms)*lm_test_slowdown())

/* Fails the test (cp_fail_at) unless cond holds; the rest is the message,
 * printf-style. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            cp_fail_at(NULL, __LINE__, __VA_ARGS__);                                               \
        }                                                                                          \
    } while (0)

/* For a suite's fixture setup: makes a fresh scratch directory (a Check
 * assertion fails when it cannot), forgets the processes watched before,
 * and records how many characters of a failure's own text to keep
 * (msg_max, at most 2000) and on_cleanup (may be NULL), run by
 * cp_cleanup after the watched processes are stopped. */
void cp_setup(size_t msg_max, void (*on_cleanup)(void));

/* The scratch directory; "" once removed. */
const char *cp_dir(void);

/* Clears p (not started, status -1) and watches it until the next
 * cp_setup: a failure reports it under name (when it was started) with the
 * last tail bytes of its log, and cp_cleanup stops it. At most 8. */
void cp_watch(lm_test_proc *p, const char *name, size_t tail);

/* Stops every watched process with SIGKILL (10 s, times the slowdown, for
 * each to go; last watched first), reaping it, then runs the on_cleanup
 * hook, then removes the scratch directory. Safe to call again; the
 * fixture's teardown, and the end of each test. */
void cp_cleanup(void);

/* Fails the test: the message "line <line>: <fmt...>" ("<file> line ..."
 * when file is not NULL), then "\n(<name>: <state>)" and the log tail of
 * each watched process that was started, in the order watched; cleans up
 * (cp_cleanup) before it aborts. Does not return. */
void cp_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* The string (or "") and integer (or 0) member key of a JSON object. */
const char *cp_jstr(json_t *doc, const char *key);
long long cp_jint(json_t *doc, const char *key);

/* GET /api/v1<path> from the daemon on 127.0.0.1:port: the JSON of its
 * 200 answer (json_decref it); fails the test otherwise. */
json_t *cp_get(int port, const char *path);

/* Makes the directory <scratch>/name (fails the test when it cannot);
 * returns its path, written into out. */
const char *cp_make_dir(const char *name, char *out, size_t cap);

/* The number of committed output lines in d (lm_test_read_lines); fails
 * the test when d cannot be read. */
size_t cp_count_lines(const char *d);

/* Waits (polling every 50 ms) until d holds more than n committed lines
 * and returns that count; fails the test after timeout_ms, the message
 * headed by what. */
size_t cp_wait_lines_above(const char *d, size_t n, int timeout_ms, const char *what);

/* Starts the build's laminard (lm_test_bin) with the arguments args and
 * then "--set S" for each S of sets (both NULL-terminated, either may be
 * NULL), stdout and stderr into log; does not wait. Fails the test when
 * it cannot be started. */
void cp_laminard_start(lm_test_proc *p, const char *log, const char *const *args,
                       const char *const *sets);

#endif /* CP_TEST_H */
