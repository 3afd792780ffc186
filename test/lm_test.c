/*
 * lm_test.c: probe actors, peer processes, Nexmark plans and the DuckDB
 * oracle, a PostgreSQL server, spawned programs and an HTTP client for
 * the Check suites.
 */
#include "lm_test.h"

#include "lm_sql.h"
#include "lm_storage.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct lm_probe {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    lm_msg **q; /* ring of retained messages */
    size_t cap, head, len;
    lm_addr addr;
};

int
lm_test_slowdown(void)
{
    const char *s = getenv("LM_TEST_SLOWDOWN");
    int n = s != NULL ? atoi(s) : 1;
    return n >= 1 ? n : 1;
}

int64_t
lm_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
probe_init(lm_actor *self, void *arg)
{
    lm_actor_set_state(self, arg);
    return LM_OK;
}

static int
probe_handle(lm_actor *self, lm_msg *m)
{
    lm_probe *p = lm_actor_state(self);

    pthread_mutex_lock(&p->lock);
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        lm_msg **q = malloc(cap * sizeof(*q));
        if (q == NULL) {
            pthread_mutex_unlock(&p->lock);
            return LM_ENOMEM;
        }
        for (size_t i = 0; i < p->len; i++) {
            q[i] = p->q[(p->head + i) % p->cap];
        }
        free(p->q);
        p->q = q;
        p->cap = cap;
        p->head = 0;
    }
    lm_msg_retain(m);
    p->q[(p->head + p->len++) % p->cap] = m;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return LM_OK;
}

static const lm_actor_type probe_type = {"probe", probe_init, probe_handle, NULL};

lm_probe *
lm_probe_new(lm_rt *rt, int loop)
{
    lm_probe *p = calloc(1, sizeof(*p));
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;

    if (p == NULL) {
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    so.loop = loop;
    if (lm_spawn(rt, &probe_type, p, &so, &p->addr) != LM_OK) {
        free(p);
        return NULL;
    }
    return p;
}

lm_addr
lm_probe_addr(const lm_probe *p)
{
    return p->addr;
}

lm_msg *
lm_probe_wait(lm_probe *p, uint32_t type, int timeout_ms)
{
    struct timespec deadline;
    lm_msg *m = NULL;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->len > 0) {
            m = p->q[p->head];
            p->head = (p->head + 1) % p->cap;
            p->len--;
            if (type == 0 || m->type == type) {
                pthread_mutex_unlock(&p->lock);
                return m;
            }
            lm_msg_release(m);
            m = NULL;
        }
        if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int
lm_probe_pending(lm_probe *p)
{
    int n;
    pthread_mutex_lock(&p->lock);
    n = (int)p->len;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void
lm_probe_free(lm_probe *p)
{
    if (p == NULL) {
        return;
    }
    while (p->len > 0) {
        lm_msg_release(p->q[p->head]);
        p->head = (p->head + 1) % p->cap;
        p->len--;
    }
    free(p->q);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}

/* --- peers ----------------------------------------------------------- */

static int
read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    int64_t end = lm_test_now_ms() + timeout_ms;

    while (n + 1 < cap) {
        struct pollfd pf = {fd, POLLIN, 0};
        int left = (int)(end - lm_test_now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            return -1;
        }
        if (read(fd, buf + n, 1) != 1) {
            return -1;
        }
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    return -1;
}

int
lm_peer_start(lm_peer *p, uint32_t node, const char *url, const char *route, int timeout_ms)
{
    const char *bin = getenv("LM_TEST_PEER");
    char nodestr[16], line[512];
    int fds[2];
    posix_spawn_file_actions_t fa;
    char *argv[5];
    unsigned long long actor, tm;
    unsigned n;

    if (bin == NULL) {
        bin = "build/release/test/lm-test-peer";
    }
    if (pipe(fds) != 0) {
        return -1;
    }
    snprintf(nodestr, sizeof(nodestr), "%u", node);
    argv[0] = (char *)bin;
    argv[1] = nodestr;
    argv[2] = (char *)url;
    argv[3] = (char *)route;
    argv[4] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(&p->pid, bin, &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    p->out = fds[0];
    if (read_line(p->out, line, sizeof(line), timeout_ms) != 0 ||
        sscanf(line, "READY %u %llu %255s %llu", &n, &actor, p->url, &tm) != 4) {
        lm_peer_kill(p, SIGKILL);
        return -1;
    }
    p->echo = (lm_addr){n, actor};
    p->tm = (lm_addr){n, tm};
    return 0;
}

void
lm_peer_kill(lm_peer *p, int sig)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->out >= 0) {
        close(p->out);
        p->out = -1;
    }
}

const char *
lm_test_tmpdir(void)
{
    static char dir[128];
    snprintf(dir, sizeof(dir), "/tmp/lm-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return "/tmp";
    }
    return dir;
}

/* --- running plans ---------------------------------------------------- */

int
lm_test_run_plan(const char *json, int loops, const lm_plan_opts *popts, const lm_job_opts *jopts,
                 lm_job_result *res, lm_error *err)
{
    lm_rt_opts ro = {1, loops, 0, "test"};
    lm_job_opts jo = {0};
    lm_plan *plan;
    lm_rt *rt;
    lm_addr tm;
    int rv;

    if ((rv = lm_plan_load_json(json, strlen(json), "plan", popts, &plan, err)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_rt_new(&ro, &rt)) != LM_OK) {
        lm_plan_free(plan);
        return lm_error_set(err, rv, "runtime: %s", lm_strerror(rv));
    }
    if ((rv = lm_taskmgr_spawn(rt, &tm)) == LM_OK) {
        if (jopts != NULL) {
            jo = *jopts;
        }
        if (jo.job_id == NULL) {
            jo.job_id = "test";
        }
        rv = lm_job_run(rt, tm, plan, &jo, res);
    }
    lm_rt_free(rt, 10000);
    lm_plan_free(plan);
    return rv == LM_OK ? LM_OK : lm_error_set(err, rv, "running: %s", lm_strerror(rv));
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
lm_test_read_lines(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **lines = NULL;
    size_t count = 0, cap = 0;

    if (d == NULL) {
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        char path[1200], *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        FILE *f;
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((f = fopen(path, "r")) == NULL) {
            continue;
        }
        while ((len = getline(&line, &lcap, f)) > 0) {
            if (line[len - 1] == '\n') {
                line[len - 1] = '\0';
            }
            if (count == cap) {
                cap = cap ? cap * 2 : 1024;
                lines = realloc(lines, cap * sizeof(char *));
            }
            lines[count++] = strdup(line);
        }
        free(line);
        fclose(f);
    }
    closedir(d);
    if (count > 0) {
        qsort(lines, count, sizeof(char *), cmp_str);
    }
    *n = count;
    return lines != NULL ? lines : calloc(1, sizeof(char *));
}

void
lm_test_free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(lines[i]);
    }
    free(lines);
}

/* --- reports ------------------------------------------------------------ */

static void
report_vadd(lm_report *r, const char *fmt, va_list ap)
{
    int n;

    if (r->len >= sizeof(r->msg) - 1) {
        return;
    }
    n = vsnprintf(r->msg + r->len, sizeof(r->msg) - r->len, fmt, ap);
    if (n > 0) {
        r->len += (size_t)n;
        if (r->len > sizeof(r->msg) - 1) {
            r->len = sizeof(r->msg) - 1;
        }
    }
}

void
lm_report_add(lm_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_vadd(r, fmt, ap);
    va_end(ap);
}

void
lm_report_fail(lm_report *r, const char *fmt, ...)
{
    va_list ap;

    if (r->len > 0) {
        lm_report_add(r, "\n");
    }
    r->failed = true;
    va_start(ap, fmt);
    report_vadd(r, fmt, ap);
    va_end(ap);
}

#define REPORT_SHOW      5   /* differing lines shown on each side */
#define REPORT_SHOW_COLS 200 /* characters shown of each */

static void
report_line(lm_report *r, const char *side, const char *line)
{
    size_t n = strlen(line);
    lm_report_add(r, "\n  %s %.*s%s", side, (int)(n > REPORT_SHOW_COLS ? REPORT_SHOW_COLS : n),
                  line, n > REPORT_SHOW_COLS ? "..." : "");
}

/* --- files and lines ------------------------------------------------------ */

const char *
lm_test_root(void)
{
    const char *root = getenv("LM_TEST_ROOT");
    return root != NULL && root[0] != '\0' ? root : ".";
}

char *
lm_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (f == NULL) {
        return NULL;
    }
    do {
        if (cap - n < 65536) {
            char *nb;
            cap = cap ? cap * 2 : 1 << 20;
            if ((nb = realloc(buf, cap + 1)) == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL) {
        *len = n;
    }
    return buf;
}

bool
lm_test_apply_retractions(char **lines, size_t n, char ***out, size_t *nout, const char *what,
                          lm_report *r)
{
    static const char ins[] = ",\"_retract\":false}", del[] = ",\"_retract\":true}";
    char **rows = malloc((n + 1) * sizeof(char *)), **dels = malloc((n + 1) * sizeof(char *));
    size_t nrows = 0, ndels = 0, i = 0, j = 0, k = 0, orphans = 0;

    if (rows == NULL || dels == NULL) {
        free(rows);
        free(dels);
        lm_report_fail(r, "out of memory");
        return false;
    }
    for (size_t l = 0; l < n; l++) {
        size_t len = strlen(lines[l]);
        if (len >= sizeof(ins) - 1 && strcmp(lines[l] + len - (sizeof(ins) - 1), ins) == 0) {
            strcpy(lines[l] + len - (sizeof(ins) - 1), "}");
            rows[nrows++] = lines[l];
        } else if (len >= sizeof(del) - 1 && strcmp(lines[l] + len - (sizeof(del) - 1), del) == 0) {
            strcpy(lines[l] + len - (sizeof(del) - 1), "}");
            dels[ndels++] = lines[l];
        } else {
            lm_report_fail(r, "%s: a line without a final \"_retract\" boolean:", what);
            report_line(r, "", lines[l]);
            free(rows);
            free(dels);
            return false;
        }
    }
    qsort(rows, nrows, sizeof(char *), cmp_str);
    qsort(dels, ndels, sizeof(char *), cmp_str);
    /* rows minus dels, both sorted */
    while (i < nrows || j < ndels) {
        int c = i == nrows ? 1 : j == ndels ? -1 : strcmp(rows[i], dels[j]);
        if (c < 0) {
            rows[k++] = rows[i++];
        } else if (c == 0) {
            i++;
            j++;
        } else {
            if (orphans == 0) {
                lm_report_fail(r,
                               "%s: retractions of rows that were never inserted (%zu inserts, "
                               "%zu retractions):",
                               what, nrows, ndels);
            }
            if (orphans < REPORT_SHOW) {
                report_line(r, "retracted:", dels[j]);
            }
            orphans++;
            j++;
        }
    }
    free(dels);
    if (orphans > 0) {
        lm_report_add(r, "\n  (%zu such retractions)", orphans);
        free(rows);
        return false;
    }
    *out = rows;
    *nout = k;
    return true;
}

bool
lm_test_compare_lines(char **got, size_t ngot, char **want, size_t nwant, const char *what,
                      const char *got_name, const char *want_name, lm_report *r)
{
    size_t i = 0, j = 0, only_got = 0, only_want = 0;
    const char *show_got[REPORT_SHOW], *show_want[REPORT_SHOW];

    while (i < ngot || j < nwant) {
        int c = i == ngot ? 1 : j == nwant ? -1 : strcmp(got[i], want[j]);
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            if (only_got < REPORT_SHOW) {
                show_got[only_got] = got[i];
            }
            only_got++;
            i++;
        } else {
            if (only_want < REPORT_SHOW) {
                show_want[only_want] = want[j];
            }
            only_want++;
            j++;
        }
    }
    if (only_got == 0 && only_want == 0) {
        return true;
    }
    lm_report_fail(r, "%s: %s has %zu rows, %s %zu; %zu only in %s, %zu only in %s", what, got_name,
                   ngot, want_name, nwant, only_got, got_name, only_want, want_name);
    if (only_got > 0) {
        lm_report_add(r, "\n first lines only in %s:", got_name);
        for (size_t k = 0; k < only_got && k < REPORT_SHOW; k++) {
            report_line(r, "+", show_got[k]);
        }
    }
    if (only_want > 0) {
        lm_report_add(r, "\n first lines only in %s:", want_name);
        for (size_t k = 0; k < only_want && k < REPORT_SHOW; k++) {
            report_line(r, "-", show_want[k]);
        }
    }
    return false;
}

/* --- Nexmark plans ---------------------------------------------------------- */

char *
lm_test_nexmark_sql(const char *query, const char *out_dir, const char *events, lm_report *r)
{
    static const char bh[] = "'connector' = 'blackhole'";
    static const char num[] = "'events.num' = '10000000'";
    char path[1024], *text, *sql, *at;
    size_t qlen = strcspn(query, ".");

    snprintf(path, sizeof(path), "%s/scripts/nexmark/sql/%.*s.sql", lm_test_root(), (int)qlen,
             query);
    if ((text = lm_test_read_file(path, NULL)) == NULL) {
        lm_report_fail(r, "cannot read %s", path);
        return NULL;
    }
    /* the sink table writes JSON lines into out_dir */
    at = strstr(text, bh);
    if (at == NULL || asprintf(&sql,
                               "%.*s'connector' = 'filesystem', 'path' = '%s', "
                               "'format' = 'json'%s",
                               (int)(at - text), text, out_dir, at + strlen(bh)) < 0) {
        lm_report_fail(r, "%s: no blackhole sink table to write into %s", path, out_dir);
        free(text);
        return NULL;
    }
    free(text);
    if (events == NULL) {
        return sql;
    }
    text = sql;
    at = strstr(text, num);
    if (at == NULL ||
        asprintf(&sql, "%.*s%s%s", (int)(at - text), text, events, at + strlen(num)) < 0) {
        lm_report_fail(r, "%s: no %s in its source table to replace", path, num);
        free(text);
        return NULL;
    }
    free(text);
    return sql;
}

json_t *
lm_test_nexmark_plan(const char *query, const char *out_dir, bool *retract, lm_report *r)
{
    char path[1024];
    json_error_t jerr;
    json_t *doc, *ops, *edges, *op, *sink = NULL, *cfg;
    const char *sink_from = NULL, *sink_id = "sink";
    size_t i;

    *retract = false;
    size_t qlen = strlen(query);
    if (qlen > 4 && strcmp(query + qlen - 4, ".sql") == 0) {
        /* the pipeline in SQL, compiled; its sink table is "sink" */
        lm_sql_diag d;
        char *sql = lm_test_nexmark_sql(query, out_dir, NULL, r);
        snprintf(path, sizeof(path), "%s/scripts/nexmark/sql/%s", lm_test_root(), query);
        if (sql == NULL) {
            return NULL;
        }
        int rv = lm_sql_compile(sql, strlen(sql), NULL, &doc, NULL, &d);
        free(sql);
        if (rv != LM_OK) {
            lm_report_fail(r, "%s:%u:%u: %s", path, d.pos.line, d.pos.col, d.msg);
            return NULL;
        }
        sink_id = "sink_sink";
    } else {
        snprintf(path, sizeof(path), "%s/scripts/nexmark/plans/%s.json", lm_test_root(), query);
        if ((doc = json_load_file(path, 0, &jerr)) == NULL) {
            lm_report_fail(r, "plan %s: %s (line %d, column %d)", path, jerr.text, jerr.line,
                           jerr.column);
            return NULL;
        }
    }
    ops = json_object_get(doc, "operators");
    edges = json_object_get(doc, "edges");
    if (!json_is_array(ops) || !json_is_array(edges)) {
        lm_report_fail(r, "plan %s: no \"operators\" or \"edges\" array", path);
        goto fail;
    }
    json_array_foreach(ops, i, op)
    {
        const char *id = json_string_value(json_object_get(op, "id"));
        if (id != NULL && strcmp(id, sink_id) == 0) {
            sink = op;
        }
    }
    if (sink == NULL) {
        lm_report_fail(r, "plan %s: no operator with id \"%s\"", path, sink_id);
        goto fail;
    }
    if (strcmp(sink_id, "sink_sink") == 0) {
        cfg = NULL; /* compiled with its file sink */
    } else if ((cfg = json_object()) == NULL ||
               json_object_set_new(cfg, "path", json_string(out_dir)) != 0 ||
               json_object_set_new(cfg, "format", json_string("json")) != 0 ||
               json_object_set_new(sink, "kind", json_string("file_sink")) != 0 ||
               json_object_set_new(sink, "config", cfg) != 0) {
        lm_report_fail(r, "out of memory");
        goto fail;
    }
    /* what feeds the sink: does its schema end with "_retract"? */
    json_array_foreach(edges, i, op)
    {
        const char *to = json_string_value(json_object_get(op, "to"));
        if (to != NULL && strcmp(to, sink_id) == 0) {
            if (sink_from != NULL) {
                lm_report_fail(r, "plan %s: more than one edge into \"sink\"", path);
                goto fail;
            }
            sink_from = json_string_value(json_object_get(op, "from"));
        }
    }
    if (sink_from == NULL) {
        lm_report_fail(r, "plan %s: no edge into \"sink\"", path);
        goto fail;
    }
    json_array_foreach(ops, i, op)
    {
        const char *id = json_string_value(json_object_get(op, "id"));
        json_t *schema = json_object_get(op, "schema");
        if (id != NULL && strcmp(id, sink_from) == 0 && json_is_array(schema) &&
            json_array_size(schema) > 0) {
            json_t *last = json_array_get(schema, json_array_size(schema) - 1);
            const char *name = json_string_value(json_object_get(last, "name"));
            *retract = name != NULL && strcmp(name, "_retract") == 0;
        }
    }
    return doc;
fail:
    json_decref(doc);
    return NULL;
}

/* --- a PostgreSQL server ---------------------------------------------- */

int
lm_test_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

/* The last lines of a log file, on one line, for a failure message. */
static void
log_tail(const char *path, char *out, size_t cap)
{
    char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = 0;

    out[0] = '\0';
    if (f == NULL) {
        return;
    }
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof(buf) - 1) {
        fseek(f, -(long)sizeof(buf) + 1, SEEK_END);
    } else {
        fseek(f, 0, SEEK_SET);
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || buf[i] == '\t') {
            buf[i] = ' ';
        }
    }
    snprintf(out, cap, "%.300s", n > 300 ? buf + n - 300 : buf);
}

/* Runs a shell command; 0 when it exits 0. */
static int
sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

/* pg_ctl start on pg->port. */
static int
pg_ctl_start(lm_test_pg *pg)
{
    return sh("cd %s && %s%s/pg_ctl -D %s/data -l %s/server.log -w -t 30 -o \"-p %d -k %s "
              "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off\" start "
              ">%s/pg_ctl.log 2>&1",
              pg->dir, pg->runas, pg->bin, pg->dir, pg->dir, pg->port, pg->dir, pg->dir);
}

int
lm_test_pg_start(lm_test_pg *pg)
{
    glob_t g;
    char tail[400];

    memset(pg, 0, sizeof(*pg));
    const char *env = getenv("LM_TEST_PG_BIN");
    if (env != NULL && env[0] != '\0') {
        char ctl[300];
        snprintf(ctl, sizeof(ctl), "%s/pg_ctl", env);
        if (access(ctl, X_OK) != 0) {
            snprintf(pg->problem, sizeof(pg->problem),
                     "PostgreSQL server binaries not found: no %s (LM_TEST_PG_BIN)", ctl);
            return -1;
        }
        snprintf(pg->bin, sizeof(pg->bin), "%s", env);
    } else if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        snprintf(pg->problem, sizeof(pg->problem),
                 "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/pg_ctl): "
                 "install them with scripts/install-deps.sh (Debian package postgresql)");
        globfree(&g);
        return -1;
    } else {
        /* the highest version: glob sorts, so the last */
        snprintf(pg->bin, sizeof(pg->bin), "%s", g.gl_pathv[g.gl_pathc - 1]);
        *strrchr(pg->bin, '/') = '\0';
        globfree(&g);
    }

    snprintf(pg->dir, sizeof(pg->dir), "/tmp/lm-pg-XXXXXX");
    if (mkdtemp(pg->dir) == NULL) {
        snprintf(pg->problem, sizeof(pg->problem), "mkdtemp: %s", strerror(errno));
        pg->dir[0] = '\0';
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
            snprintf(pg->problem, sizeof(pg->problem),
                     "running as root and no `postgres` user to run the server as");
            return -1;
        }
        snprintf(pg->runas, sizeof(pg->runas), "%s",
                 access("/usr/sbin/runuser", X_OK) == 0 ? "/usr/sbin/runuser -u postgres -- "
                 : access("/sbin/runuser", X_OK) == 0   ? "/sbin/runuser -u postgres -- "
                                                        : "");
        if (pg->runas[0] == '\0') {
            snprintf(pg->problem, sizeof(pg->problem), "running as root and no runuser");
            return -1;
        }
    }
    if (sh("cd %s && %s%s/initdb -D %s/data -U postgres -A trust -E UTF8 --locale=C --no-sync "
           ">%s/initdb.log 2>&1",
           pg->dir, pg->runas, pg->bin, pg->dir, pg->dir) != 0) {
        char path[128];
        snprintf(path, sizeof(path), "%s/initdb.log", pg->dir);
        log_tail(path, tail, sizeof(tail));
        snprintf(pg->problem, sizeof(pg->problem), "initdb failed: %s", tail);
        return -1;
    }
    for (int attempt = 0; attempt < 3 && !pg->up; attempt++) {
        pg->port = lm_test_free_port();
        if (pg_ctl_start(pg) == 0) {
            pg->up = true;
        }
    }
    if (!pg->up) {
        char path[128];
        snprintf(path, sizeof(path), "%s/server.log", pg->dir);
        log_tail(path, tail, sizeof(tail));
        snprintf(pg->problem, sizeof(pg->problem), "pg_ctl start failed: %s", tail);
        return -1;
    }
    return 0;
}

void
lm_test_pg_stop(lm_test_pg *pg)
{
    if (pg->up) {
        sh("cd %s && %s%s/pg_ctl -D %s/data -m immediate -w -t 30 stop >/dev/null 2>&1", pg->dir,
           pg->runas, pg->bin, pg->dir);
        pg->up = false;
    }
    if (pg->dir[0] != '\0') {
        lm_storage_remove_tree(pg->dir, NULL);
        pg->dir[0] = '\0';
    }
}

int
lm_test_pg_halt(lm_test_pg *pg)
{
    if (!pg->up) {
        snprintf(pg->problem, sizeof(pg->problem), "halt: the server is not running");
        return -1;
    }
    if (sh("cd %s && %s%s/pg_ctl -D %s/data -m fast -w -t 30 stop >%s/pg_ctl.log 2>&1", pg->dir,
           pg->runas, pg->bin, pg->dir, pg->dir) != 0) {
        char path[128];
        snprintf(path, sizeof(path), "%s/pg_ctl.log", pg->dir);
        log_tail(path, pg->problem, sizeof(pg->problem));
        return -1;
    }
    pg->up = false;
    return 0;
}

int
lm_test_pg_resume(lm_test_pg *pg)
{
    char path[128], tail[400];

    if (pg->up) {
        return 0;
    }
    if (pg_ctl_start(pg) != 0) {
        snprintf(path, sizeof(path), "%s/server.log", pg->dir);
        log_tail(path, tail, sizeof(tail));
        snprintf(pg->problem, sizeof(pg->problem), "pg_ctl start failed: %s", tail);
        return -1;
    }
    pg->up = true;
    return 0;
}

int
lm_test_pg_createdb(lm_test_pg *pg, const char *name, char *url, size_t cap)
{
    char admin[256], sql[200];
    PGconn *c;
    PGresult *r;
    int rv = 0;

    snprintf(admin, sizeof(admin), "host=127.0.0.1 port=%d user=postgres dbname=postgres",
             pg->port);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    c = PQconnectdb(admin);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(pg->problem, sizeof(pg->problem), "admin connection: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(pg->problem, sizeof(pg->problem), "%s: %s", sql, PQerrorMessage(c));
        rv = -1;
    }
    PQclear(r);
    PQfinish(c);
    snprintf(url, cap, "postgresql://postgres@127.0.0.1:%d/%s", pg->port, name);
    return rv;
}

/* --- the Nexmark oracle ---------------------------------------------------- */

pid_t
lm_test_oracle_start(const char *query, const char *dump_dir, const char *out, const char *log,
                     lm_report *r)
{
    char script[1024];
    char *argv[6];
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rv;

    snprintf(script, sizeof(script), "%s/test/oracle/oracle.mjs", lm_test_root());
    argv[0] = "node";
    argv[1] = script;
    argv[2] = (char *)query;
    argv[3] = (char *)dump_dir;
    argv[4] = (char *)out;
    argv[5] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rv = posix_spawnp(&pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
        lm_report_fail(r, "cannot start node (is it on PATH?): %s", strerror(rv));
        return -1;
    }
    return pid;
}

bool
lm_test_oracle_wait(pid_t pid, const char *log, int timeout_ms, lm_report *r)
{
    int64_t deadline = lm_test_now_ms() + timeout_ms;
    int status = 0;
    pid_t got;
    char *text;
    size_t len = 0;

    while ((got = waitpid(pid, &status, WNOHANG)) == 0) {
        if (lm_test_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            lm_report_fail(r, "oracle: no answer within %d ms; killed", timeout_ms);
            return false;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return true;
    }
    text = lm_test_read_file(log, &len);
    if (got != pid) {
        lm_report_fail(r, "oracle: waitpid: %s", strerror(errno));
    } else if (WIFEXITED(status)) {
        lm_report_fail(r, "oracle: node exited with status %d", WEXITSTATUS(status));
    } else {
        lm_report_fail(r, "oracle: node killed by signal %d", WTERMSIG(status));
    }
    if (text != NULL) {
        /* the end of its output says what went wrong */
        size_t from = len > 1500 ? len - 1500 : 0;
        lm_report_add(r, "\n--- oracle output%s ---\n%s", from > 0 ? " (end)" : "", text + from);
        free(text);
    }
    return false;
}

char **
lm_test_split_lines(char *text, size_t len, size_t *n)
{
    size_t count = 0, k = 0;
    char **lines;

    for (size_t i = 0; i < len; i++) {
        count += text[i] == '\n';
    }
    if (len > 0 && text[len - 1] != '\n') {
        count++;
    }
    if ((lines = malloc((count + 1) * sizeof(char *))) == NULL) {
        return NULL;
    }
    for (char *p = text, *end = text + len; p < end && k < count;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        lines[k++] = p;
        if (nl == NULL) {
            break;
        }
        *nl = '\0';
        p = nl + 1;
    }
    qsort(lines, k, sizeof(char *), cmp_str);
    *n = k;
    return lines;
}

bool
lm_test_compare_dir(const char *dir, bool retract, char **want, size_t nwant, const char *what,
                    const char *got_name, const char *want_name, lm_report *r)
{
    size_t ngot = 0, nfinal = 0;
    char **got = lm_test_read_lines(dir, &ngot), ** final = got;
    bool same = false;

    if (got == NULL) {
        lm_report_fail(r, "%s: cannot read the output directory %s", what, dir);
        return false;
    }
    nfinal = ngot;
    if (retract && !lm_test_apply_retractions(got, ngot, &final, &nfinal, what, r)) {
        final = NULL;
    }
    if (final != NULL) {
        same = lm_test_compare_lines(final, nfinal, want, nwant, what, got_name, want_name, r);
    }
    if (final != got) {
        free(final);
    }
    lm_test_free_lines(got, ngot);
    return same;
}

/* --- processes ------------------------------------------------------------- */

const char *
lm_test_bin(const char *prog, char *out, size_t cap)
{
    const char *bin = getenv("LM_TEST_BIN");
    snprintf(out, cap, "%s/%s", bin != NULL && bin[0] != '\0' ? bin : "build/bin", prog);
    return out;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int
lm_test_proc_start(lm_test_proc *p, char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    int rv;

    p->pid = 0;
    p->status = -1;
    snprintf(p->log, sizeof(p->log), "%s", log);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    rv = posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
        p->pid = 0;
        errno = rv;
        return -1;
    }
    return 0;
}

bool
lm_test_proc_wait(lm_test_proc *p, int timeout_ms)
{
    int64_t deadline = lm_test_now_ms() + timeout_ms;

    if (p->pid <= 0) {
        return true;
    }
    for (;;) {
        int st;
        pid_t got = waitpid(p->pid, &st, WNOHANG);
        if (got == p->pid || (got < 0 && errno != EINTR)) {
            p->status = got == p->pid ? st : -1;
            p->pid = 0;
            return true;
        }
        if (lm_test_now_ms() >= deadline) {
            return false;
        }
        sleep_ms(10);
    }
}

int
lm_test_proc_stop(lm_test_proc *p, int sig, int timeout_ms)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
        if (!lm_test_proc_wait(p, timeout_ms)) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
            p->status = -1;
        }
    }
    return p->status >= 0 && WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
}

const char *
lm_test_proc_describe(const lm_test_proc *p)
{
    static char buf[64];

    if (p->pid > 0) {
        return "running";
    }
    if (p->status < 0) {
        snprintf(buf, sizeof(buf), "killed after a timeout, or never started");
    } else if (WIFEXITED(p->status)) {
        snprintf(buf, sizeof(buf), "exit status %d", WEXITSTATUS(p->status));
    } else if (WIFSIGNALED(p->status)) {
        snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(p->status));
    } else {
        snprintf(buf, sizeof(buf), "wait status %d", p->status);
    }
    return buf;
}

int
lm_test_run(char *const argv[], const char *scratch, int timeout_ms, lm_test_output *o)
{
    char out_path[1024], err_path[1024];
    posix_spawn_file_actions_t fa;
    lm_test_proc p = {0, -1, ""};
    int rv;

    o->status = -1;
    o->out = NULL;
    o->err = NULL;
    snprintf(out_path, sizeof(out_path), "%s/stdout.txt", scratch);
    snprintf(err_path, sizeof(err_path), "%s/stderr.txt", scratch);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rv = posix_spawn(&p.pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
        o->out = strdup("");
        if (asprintf(&o->err, "cannot run %s: %s", argv[0], strerror(rv)) < 0) {
            o->err = NULL;
        }
        return -1;
    }
    if (!lm_test_proc_wait(&p, timeout_ms)) {
        lm_test_proc_stop(&p, SIGKILL, 0);
    }
    o->status = p.status >= 0 && WIFEXITED(p.status) ? WEXITSTATUS(p.status) : -1;
    o->out = lm_test_read_file(out_path, NULL);
    o->err = lm_test_read_file(err_path, NULL);
    if (o->out == NULL) {
        o->out = strdup("");
    }
    if (o->err == NULL) {
        o->err = strdup("");
    }
    return o->status;
}

void
lm_test_output_free(lm_test_output *o)
{
    free(o->out);
    free(o->err);
    o->out = NULL;
    o->err = NULL;
}

void
lm_report_log_tail(lm_report *r, const char *name, const char *path, size_t max)
{
    size_t len = 0;
    char *text = lm_test_read_file(path, &len);

    if (text == NULL) {
        lm_report_add(r, "\n--- %s: no log at %s ---", name, path);
        return;
    }
    if (len > max) {
        /* from the start of a line */
        const char *from = text + len - max, *nl = strchr(from, '\n');
        lm_report_add(r, "\n--- %s log (end) ---\n%s", name, nl != NULL ? nl + 1 : from);
    } else {
        lm_report_add(r, "\n--- %s log ---\n%s", name, text);
    }
    free(text);
}

/* --- an HTTP client --------------------------------------------------------- */

int
lm_test_http_connect(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {20 * lm_test_slowdown(), 0};
    int fd;

    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
lm_test_http_raw(const char *host, int port, bool half_close, const char *data, size_t len,
                 lm_test_http *out)
{
    size_t cap = 65536, n = 0, off = 0;
    char *buf = malloc(cap), *end;
    int fd = lm_test_http_connect(host, port);
    ssize_t k = 0;

    memset(out, 0, sizeof(*out));
    out->status = -1;
    if (fd < 0 || buf == NULL) {
        snprintf(out->problem, sizeof(out->problem), "%s to %s:%d: %s",
                 fd < 0 ? "cannot connect" : "out of memory", host, port, strerror(errno));
        free(buf);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    while (off < len && (k = send(fd, data + off, len - off, MSG_NOSIGNAL)) > 0) {
        off += (size_t)k;
    }
    int send_errno = off < len ? errno : 0;
    if (half_close) {
        shutdown(fd, SHUT_WR);
    }
    for (;;) {
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                break;
            }
            buf = nb;
            cap *= 2;
        }
        k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0) {
            break;
        }
        n += (size_t)k;
    }
    int recv_errno = k < 0 ? errno : 0;
    close(fd);
    buf[n] = '\0';
    if (n < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || (end = strstr(buf, "\r\n\r\n")) == NULL) {
        char why[80] = "";
        if (recv_errno == EAGAIN || recv_errno == EWOULDBLOCK) {
            snprintf(why, sizeof(why), "; nothing more within %d s", 20 * lm_test_slowdown());
        } else if (recv_errno != 0) {
            snprintf(why, sizeof(why), "; recv: %s", strerror(recv_errno));
        }
        snprintf(out->problem, sizeof(out->problem),
                 "no HTTP answer from %s:%d: %zu bytes came back%s%s%s", host, port, n,
                 send_errno != 0 ? "; send: " : "", send_errno != 0 ? strerror(send_errno) : "",
                 why);
        free(buf);
        return -1;
    }
    out->status = atoi(buf + 9);
    out->headers = strndup(buf, (size_t)(end - buf) + 2);
    out->body_len = n - (size_t)(end + 4 - buf);
    out->body = malloc(out->body_len + 1);
    if (out->headers == NULL || out->body == NULL) {
        free(buf);
        lm_test_http_free(out);
        out->status = -1;
        return -1;
    }
    memcpy(out->body, end + 4, out->body_len);
    out->body[out->body_len] = '\0';
    out->json = json_loadb(out->body, out->body_len, 0, &out->err);
    free(buf);
    return 0;
}

int
lm_test_http_do(const char *host, int port, bool half_close, const char *method, const char *path,
                const char *body, size_t len, lm_test_http *out)
{
    char head[1024];
    size_t hl;
    char *req;
    int rv;

    if (body != NULL) {
        hl = (size_t)snprintf(head, sizeof(head),
                              "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                              method, path, host, len);
    } else {
        hl = (size_t)snprintf(head, sizeof(head),
                              "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method,
                              path, host);
        len = 0;
    }
    if (hl >= sizeof(head) || (req = malloc(hl + len + 1)) == NULL) {
        memset(out, 0, sizeof(*out));
        out->status = -1;
        snprintf(out->problem, sizeof(out->problem), "request too long, or out of memory");
        return -1;
    }
    memcpy(req, head, hl);
    if (body != NULL) {
        memcpy(req + hl, body, len);
    }
    rv = lm_test_http_raw(host, port, half_close, req, hl + len, out);
    free(req);
    return rv;
}

int
lm_test_http_json(const char *host, int port, const char *method, const char *path,
                  const char *body, lm_test_http *out)
{
    return lm_test_http_do(host, port, false, method, path, body, body != NULL ? strlen(body) : 0,
                           out);
}

const char *
lm_test_http_header(const lm_test_http *r, const char *name)
{
    static char val[256];
    size_t nl = strlen(name);

    if (r->headers == NULL) {
        return NULL;
    }
    for (const char *p = strstr(r->headers, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') {
                v++;
            }
            snprintf(val, sizeof(val), "%.*s", (int)(e != NULL ? e - v : (long)strlen(v)), v);
            return val;
        }
    }
    return NULL;
}

void
lm_test_http_free(lm_test_http *r)
{
    free(r->headers);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* --- the REST API of a laminard --------------------------------------------- */

json_t *
lm_test_api_get(int port, const char *path, int *status, char *problem, size_t cap)
{
    char full[1024];
    lm_test_http r;
    json_t *doc = NULL;

    snprintf(full, sizeof(full), "/api/v1%s", path);
    lm_test_http_json("127.0.0.1", port, "GET", full, NULL, &r);
    if (status != NULL) {
        *status = r.status;
    }
    if (r.status == 200 && r.json != NULL) {
        doc = json_incref(r.json);
    } else if (problem != NULL && cap > 0) {
        snprintf(problem, cap, "%.*s", r.status < 0 ? 160 : 300,
                 r.status < 0     ? r.problem
                 : r.body != NULL ? r.body
                                  : "");
    }
    lm_test_http_free(&r);
    return doc;
}

bool
lm_test_api_wait_up(int port, lm_test_proc *p, int timeout_ms)
{
    int64_t deadline = lm_test_now_ms() + timeout_ms;

    for (;;) {
        int status;
        json_t *doc = lm_test_api_get(port, "/healthz", &status, NULL, 0);
        json_decref(doc);
        if (status == 200) {
            return true;
        }
        if ((p != NULL && lm_test_proc_wait(p, 0)) || lm_test_now_ms() >= deadline) {
            return false;
        }
        sleep_ms(20);
    }
}

json_t *
lm_test_api_wait_job(int port, long long job, const char *state, int timeout_ms, char *last,
                     size_t cap)
{
    int64_t deadline = lm_test_now_ms() + timeout_ms;
    char path[64];

    snprintf(path, sizeof(path), "/jobs/%lld", job);
    if (last != NULL && cap > 0) {
        snprintf(last, cap, "no answer");
    }
    for (;;) {
        int status;
        char problem[320] = "";
        json_t *doc = lm_test_api_get(port, path, &status, problem, sizeof(problem));
        const char *st = json_string_value(json_object_get(doc, "state"));
        if (st != NULL) {
            if (last != NULL) {
                snprintf(last, cap, "%s (%s)", st,
                         json_string_value(json_object_get(doc, "reason")) != NULL
                             ? json_string_value(json_object_get(doc, "reason"))
                             : "");
            }
            if (strcmp(st, state) == 0) {
                return doc;
            }
            if (strcmp(st, "stopped") == 0 || strcmp(st, "failed") == 0 ||
                strcmp(st, "finished") == 0) {
                json_decref(doc);
                return NULL;
            }
        } else if (last != NULL) {
            snprintf(last, cap, "GET %s: status %d: %s", path, status, problem);
        }
        json_decref(doc);
        if (lm_test_now_ms() >= deadline) {
            return NULL;
        }
        sleep_ms(20);
    }
}

json_t *
lm_test_api_events(int port, long long job, char *states, size_t cap)
{
    char path[64];
    json_t *doc, *events, *e;
    size_t i, n = 0;

    snprintf(path, sizeof(path), "/jobs/%lld/events", job);
    if (states != NULL && cap > 0) {
        states[0] = '\0';
    }
    doc = lm_test_api_get(port, path, NULL, NULL, 0);
    events = json_object_get(doc, "events");
    if (!json_is_array(events)) {
        json_decref(doc);
        return NULL;
    }
    json_incref(events);
    json_decref(doc);
    json_array_foreach(events, i, e)
    {
        const char *st = json_string_value(json_object_get(e, "state"));
        if (states != NULL && n < cap) {
            n += (size_t)snprintf(states + n, cap - n, "%s%s", i > 0 ? "," : "",
                                  st != NULL ? st : "?");
        }
    }
    return events;
}
