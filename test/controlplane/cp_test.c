/*
 * cp_test.c: the fixture the control-plane end-to-end suites share: a
 * scratch directory, the daemons a test watches, failing after cleaning
 * up, and small helpers for the API, output directories and laminard.
 * See cp_test.h.
 */
#include "cp_test.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lm_storage.h"

#define MAX_WATCHED 8

static char dir[256]; /* the scratch directory; "" when none */
static size_t msg_max = 2000;
static void (*on_cleanup)(void);
static struct {
    lm_test_proc *p;
    char name[32];
    size_t tail;
} watched[MAX_WATCHED];
static int nwatched;

/* CHECK for the helpers here: the line is one of this file's. */
#define HCHECK(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            cp_fail_at("cp_test.c", __LINE__, __VA_ARGS__);                                        \
        }                                                                                          \
    } while (0)

void
cp_setup(size_t max, void (*hook)(void))
{
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
    ck_assert_msg(strcmp(dir, "/tmp") != 0, "cannot make a temporary directory: %s",
                  strerror(errno));
    msg_max = max;
    on_cleanup = hook;
    nwatched = 0;
}

const char *
cp_dir(void)
{
    return dir;
}

void
cp_watch(lm_test_proc *p, const char *name, size_t tail)
{
    memset(p, 0, sizeof(*p));
    p->status = -1;
    ck_assert_int_lt(nwatched, MAX_WATCHED);
    watched[nwatched].p = p;
    snprintf(watched[nwatched].name, sizeof(watched[nwatched].name), "%s", name);
    watched[nwatched].tail = tail;
    nwatched++;
}

void
cp_cleanup(void)
{
    lm_error err;

    for (int i = nwatched - 1; i >= 0; i--) {
        lm_test_proc_stop(watched[i].p, SIGKILL, MS(10000));
    }
    if (on_cleanup != NULL) {
        on_cleanup();
    }
    if (dir[0] != '\0') {
        lm_storage_remove_tree(dir, &err);
        dir[0] = '\0';
    }
}

void
cp_fail_at(const char *file, int line, const char *fmt, ...)
{
    lm_report r = {.len = 0, .failed = true};
    char msg[2000];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msg_max < sizeof(msg) ? msg_max : sizeof(msg), fmt, ap);
    va_end(ap);
    if (file != NULL) {
        lm_report_add(&r, "%s line %d: %s", file, line, msg);
    } else {
        lm_report_add(&r, "line %d: %s", line, msg);
    }
    for (int i = 0; i < nwatched; i++) {
        const lm_test_proc *p = watched[i].p;
        if (p->log[0] != '\0') {
            lm_report_add(&r, "\n(%s: %s)", watched[i].name, lm_test_proc_describe(p));
            lm_report_log_tail(&r, watched[i].name, p->log, watched[i].tail);
        }
    }
    cp_cleanup();
    ck_abort_msg("%s", r.msg);
}

const char *
cp_jstr(json_t *doc, const char *key)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s != NULL ? s : "";
}

long long
cp_jint(json_t *doc, const char *key)
{
    return (long long)json_integer_value(json_object_get(doc, key));
}

json_t *
cp_get(int port, const char *path)
{
    char problem[400] = "";
    int status;
    json_t *doc = lm_test_api_get(port, path, &status, problem, sizeof(problem));
    HCHECK(doc != NULL, "GET /api/v1%s: status %d, want 200 with JSON: %s", path, status, problem);
    return doc;
}

const char *
cp_make_dir(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    HCHECK(mkdir(out, 0755) == 0, "mkdir %s: %s", out, strerror(errno));
    return out;
}

size_t
cp_count_lines(const char *d)
{
    size_t n = 0;
    char **lines = lm_test_read_lines(d, &n);
    HCHECK(lines != NULL, "cannot read the output directory %s", d);
    lm_test_free_lines(lines, n);
    return n;
}

size_t
cp_wait_lines_above(const char *d, size_t n, int timeout_ms, const char *what)
{
    int64_t deadline = lm_test_now_ms() + timeout_ms;
    size_t got;

    while ((got = cp_count_lines(d)) <= n) {
        HCHECK(lm_test_now_ms() < deadline,
               "%s: the sink in %s still has %zu committed lines after %d ms, want more", what, d,
               got, timeout_ms);
        usleep(50000);
    }
    return got;
}

void
cp_laminard_start(lm_test_proc *p, const char *log, const char *const *args,
                  const char *const *sets)
{
    char bin[512];
    char *argv[64];
    int n = 0;

    argv[n++] = (char *)lm_test_bin("laminard", bin, sizeof(bin));
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 40; i++) {
        argv[n++] = (char *)args[i];
    }
    for (size_t i = 0; sets != NULL && sets[i] != NULL && n < 62; i++) {
        argv[n++] = "--set";
        argv[n++] = (char *)sets[i];
    }
    argv[n] = NULL;
    HCHECK(lm_test_proc_start(p, argv, log) == 0, "cannot start %s: %s", bin, strerror(errno));
}
