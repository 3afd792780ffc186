/*
 * laminarctl.c: laminarctl, the command-line client of Laminar's REST API
 * (/api/v1, JSON over HTTP/1.1; the contract is in actors/api).
 *
 *   laminarctl [--server URL] [--json] COMMAND [ARGS] [OPTIONS]
 *
 * Each command is a row of the command table below: its arguments, the
 * options it takes, a fetch function that makes the requests and yields
 * one JSON document, and a render function that shows that document to
 * people. With --json the document is printed as JSON instead (for most
 * commands the server's body as it came; `status` merges its two
 * answers, see fetch_status).
 *
 * Exit status: 0 on success; 1 when the server answers an error (4xx,
 * 5xx), answers something that is not JSON, or cannot be reached; 2 for
 * a usage error (unknown command or option, missing argument, a bad
 * number, an unreadable file). Errors go to stderr, prefixed
 * "laminarctl: ", in the server's own words when it gave some.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lm_batch.h"
#include "lm_config.h"
#include "lm_ctl_fmt.h"
#include "lm_ctl_table.h"
#include "lm_err.h"
#include "lm_http.h"
#include "lm_time.h"
#include "lm_text.h"

#define PROG            "laminarctl"
#define DEFAULT_SERVER  "http://127.0.0.1:8001"
#define DEFAULT_PORT    8001
#define API_PREFIX      "/api/v1"
#define MAX_SQL_BYTES   (16u << 20) /* larger files are surely not queries */
#define MAX_PARALLELISM 1024        /* the API's limit (the server checks it too) */

enum exit_code {
    EXIT_OK = 0,    /* success */
    EXIT_FAIL = 1,  /* the server said no, or could not be asked */
    EXIT_USAGE = 2, /* the command line (or a file it names) is wrong */
};

/* Options that only some commands take (a bit set). */
enum {
    OPT_NAME = 1u << 0,        /* --name NAME */
    OPT_PARALLELISM = 1u << 1, /* --parallelism N */
    OPT_CHECKPOINT = 1u << 2,  /* --checkpoint-interval DURATION */
    OPT_GRACEFUL = 1u << 3,    /* --graceful */
};

/* The parsed command line. */
typedef struct ctl {
    const struct command *cmd; /* the command to run */
    char **args;               /* its positional arguments */
    int nargs;                 /* their count */
    const char *server;        /* --server, or NULL */
    bool json;                 /* --json */
    unsigned opts;             /* OPT_* given */
    const char *name;          /* --name */
    int64_t parallelism;       /* --parallelism */
    int64_t checkpoint_ms;     /* --checkpoint-interval */
    lm_http_url url;           /* the server to ask */
} ctl;

/* A command's requests: fills *doc (a reference the caller releases)
 * with the document to show; returns an exit code, having printed why
 * when it is not EXIT_OK. */
typedef int (*fetch_fn)(ctl *c, json_t **doc);

/* Shows doc to people on stdout; returns an exit code. */
typedef int (*render_fn)(ctl *c, json_t *doc);

typedef struct command {
    const char *name;
    const char *synopsis; /* arguments and options, for the usage text */
    const char *help;     /* one line */
    int min_args, max_args;
    unsigned opts; /* OPT_* it takes */
    fetch_fn fetch;
    render_fn render;
    const char *path; /* what fetch_get GETs (under API_PREFIX); NULL for other fetches */
} command;

/* --- messages ------------------------------------------------------------ */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "laminarctl: <message>" on stderr. */
static void
say(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int
out_of_memory(void)
{
    say("out of memory");
    return EXIT_FAIL;
}

/* --- talking to the API ----------------------------------------------------- */

/* Prints the error answer r (parsed as doc, NULL when it is not JSON) in
 * the server's words: its message and, for an error in a query, where
 * and the lines that show it. */
static void
print_server_error(const ctl *c, const lm_http_response *r, json_t *doc)
{
    json_t *e = json_object_get(doc, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *ctx = json_string_value(json_object_get(e, "context"));
    json_t *line = json_object_get(e, "line"), *col = json_object_get(e, "column");

    if (msg == NULL) {
        say("the Laminar API at %s answered %d%s%s%s", c->url.text, r->status,
            r->reason[0] != '\0' ? " " : "", r->reason,
            doc == NULL && r->body_len > 0 ? " with a body that is not JSON" : "");
        return;
    }
    say("%s", msg);
    if (json_is_integer(line) && json_is_integer(col)) {
        fprintf(stderr, "  at line %lld, column %lld:\n", (long long)json_integer_value(line),
                (long long)json_integer_value(col));
    }
    for (const char *p = ctx; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, "\n");
        fprintf(stderr, "  %.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* Sends method API_PREFIX+path (printf-formatted) with body (a reference
 * taken, NULL = none) and reads the answer. On a 2xx answer that is a
 * JSON object, *out gets it and the result is EXIT_OK; otherwise the
 * reason is printed and the result is EXIT_FAIL. */
static int api(const ctl *c, const char *method, json_t *body, json_t **out, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
api(const ctl *c, const char *method, json_t *body, json_t **out, const char *fmt, ...)
{
    char path[512];
    char *text = NULL;
    lm_http_request req = {method, path, NULL, NULL, 0, 0, 0, 0};
    lm_http_response r;
    json_t *doc;
    lm_error err;
    va_list ap;
    int rv;

    *out = NULL;
    memcpy(path, API_PREFIX, sizeof(API_PREFIX));
    va_start(ap, fmt);
    vsnprintf(path + strlen(API_PREFIX), sizeof(path) - strlen(API_PREFIX), fmt, ap);
    va_end(ap);
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (text == NULL) {
            return out_of_memory();
        }
        req.body = text;
        req.body_len = strlen(text);
    }
    rv = lm_http_do(&c->url, &req, &r, &err);
    free(text);
    if (rv == LM_ENOROUTE) {
        say("cannot reach the Laminar API at %s: %s (is laminard running?)", c->url.text, err.msg);
        return EXIT_FAIL;
    }
    if (rv == LM_ENOTFOUND) {
        say("cannot reach the Laminar API at %s: cannot resolve '%s': %s", c->url.text, c->url.host,
            err.msg);
        return EXIT_FAIL;
    }
    if (rv != LM_OK) {
        say("%s %s at %s: %s", method, path, c->url.text, err.msg);
        return EXIT_FAIL;
    }
    doc = json_loadb(r.body, r.body_len, 0, NULL);
    if (r.status >= 200 && r.status < 300 && json_is_object(doc)) {
        *out = doc;
        lm_http_response_fini(&r);
        return EXIT_OK;
    }
    if (r.status >= 200 && r.status < 300) {
        say("the Laminar API at %s answered %d%s%s with %s", c->url.text, r.status,
            r.reason[0] != '\0' ? " " : "", r.reason,
            doc == NULL ? "a body that is not JSON" : "JSON that is not an object");
    } else {
        print_server_error(c, &r, json_is_object(doc) ? doc : NULL);
    }
    json_decref(doc);
    lm_http_response_fini(&r);
    return EXIT_FAIL;
}

/* Prints doc as indented JSON. */
static int
print_json(json_t *doc)
{
    if (json_dumpf(doc, stdout, JSON_INDENT(2)) != 0) {
        return out_of_memory();
    }
    fputc('\n', stdout);
    return EXIT_OK;
}

/* --- reading the JSON documents ----------------------------------------------- */

/* o[key] as a string, or dflt when absent or not a string. */
static const char *
jstr(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : dflt;
}

/* o[key] as an integer, or dflt. */
static long long
jint(json_t *o, const char *key, long long dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

/* The cell helpers below add one cell each; a table's errors are sticky
 * (lm_ctl_table.h), so callers check only when printing. */

/* Appends o[key] to t as a number, or "-" when it is not one. */
static void
cell_int(lm_ctl_table *t, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (json_is_integer(v)) {
        lm_ctl_table_cell(t, "%lld", (long long)json_integer_value(v));
    } else {
        lm_ctl_table_cell(t, "-");
    }
}

/* Appends o[key] to t as a string: "-" when absent, else the text ("" too). */
static void
cell_str(lm_ctl_table *t, json_t *o, const char *key)
{
    lm_ctl_table_cell(t, "%s", jstr(o, key, "-"));
}

/* Appends the age of the time o[key] to t ("5s ago"). */
static void
cell_age(lm_ctl_table *t, json_t *o, const char *key)
{
    char age[64];
    lm_ctl_table_cell(t, "%s",
                      lm_ctl_fmt_age(jint(o, key, 0), lm_clock_wall_ms(), age, sizeof(age)));
}

/* Prints t to stdout and frees it. */
static int
print_table(lm_ctl_table *t)
{
    int rv = lm_ctl_table_print(t, stdout);

    lm_ctl_table_free(t);
    return rv == LM_OK ? EXIT_OK : out_of_memory();
}

/* Appends the cells of one row for item. */
typedef void (*row_fn)(lm_ctl_table *t, json_t *item);

/* Prints doc[key], an array of objects, as a table with the headers (one
 * row per object made by row), or the line `none` when it is empty. */
static int
print_list(json_t *doc, const char *key, const char *none, const char *const *headers, size_t ncols,
           row_fn row)
{
    json_t *list = json_object_get(doc, key), *item;
    lm_ctl_table *t;
    size_t i;

    if (!json_is_array(list)) {
        say("unexpected answer from the Laminar API: no \"%s\" list", key);
        return EXIT_FAIL;
    }
    if (json_array_size(list) == 0) {
        printf("%s\n", none);
        return EXIT_OK;
    }
    if (lm_ctl_table_new(ncols, headers, &t) != LM_OK) {
        return out_of_memory();
    }
    json_array_foreach(list, i, item)
    {
        row(t, item);
    }
    return print_table(t);
}

/* --- arguments ------------------------------------------------------------- */

/* Reads the id in text ("pipeline" or "job" says which, for the message).
 * Returns EXIT_OK or EXIT_USAGE. */
static int
parse_id(const char *what, const char *text, long long *id)
{
    int64_t v;

    if (lm_ctl_parse_int(text, 1, INT64_MAX, &v) != LM_OK) {
        say("bad %s id '%s' (want a positive integer)", what, text);
        return EXIT_USAGE;
    }
    *id = (long long)v;
    return EXIT_OK;
}

/* Reads the SQL file at path into a JSON string. Returns EXIT_OK with
 * *query, or EXIT_USAGE (the file cannot be read, is too large or is not
 * UTF-8 text) / EXIT_FAIL (out of memory) with the reason printed. */
static int
read_query(const char *path, json_t **query)
{
    size_t cap = 65536, len = 0;
    char *text = NULL, *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rv = EXIT_USAGE;

    *query = NULL;
    if (fd < 0) {
        say("cannot read %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    for (;;) {
        ssize_t n;
        if (len == cap || text == NULL) {
            if (len == cap) {
                cap *= 2;
            }
            if ((p = realloc(text, cap)) == NULL) {
                rv = out_of_memory();
                goto done;
            }
            text = p;
        }
        n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            say("cannot read %s: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len > MAX_SQL_BYTES) {
            say("cannot read %s: larger than %u MiB, surely not a query", path,
                MAX_SQL_BYTES >> 20);
            goto done;
        }
    }
    if ((*query = json_stringn(text, len)) == NULL) {
        say("cannot read %s: not UTF-8 text", path);
        goto done;
    }
    rv = EXIT_OK;
done:
    free(text);
    close(fd);
    return rv;
}

/* The pipeline name a file gives: its base name without ".sql". Writes
 * it into out; "" when there is none. */
static const char *
name_of_file(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    size_t n;

    base = base != NULL ? base + 1 : path;
    n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".sql") == 0) {
        n -= 4;
    }
    snprintf(out, cap, "%.*s", (int)n, base); /* a base name fits: NAME_MAX is 255 */
    return out;
}

/* The body of a validate or submit request for c's file: query,
 * parallelism and checkpoint interval when given, and name (UTF-8; NULL
 * = none). EXIT_OK with *body or an exit code with the reason printed. */
static int
query_body(const ctl *c, const char *name, json_t **body)
{
    json_t *query;
    int rv;

    *body = NULL;
    if ((rv = read_query(c->args[0], &query)) != EXIT_OK) {
        return rv;
    }
    if ((*body = json_object()) == NULL || json_object_set_new(*body, "query", query) != 0 ||
        (name != NULL && json_object_set_new(*body, "name", json_string(name)) != 0) ||
        ((c->opts & OPT_PARALLELISM) &&
         json_object_set_new(*body, "parallelism", json_integer(c->parallelism)) != 0) ||
        ((c->opts & OPT_CHECKPOINT) && json_object_set_new(*body, "checkpoint_interval_ms",
                                                           json_integer(c->checkpoint_ms)) != 0)) {
        json_decref(*body);
        *body = NULL;
        return out_of_memory();
    }
    return EXIT_OK;
}

/* --- commands: fetching ---------------------------------------------------------- */

/* method API_PREFIX+prefix/ID+suffix with body (a reference taken, NULL
 * = none), ID c's first argument read as a what's id ("pipeline",
 * "job"): EXIT_USAGE when it is not one, else as api. */
static int
api_by_id(ctl *c, const char *method, json_t *body, const char *what, const char *prefix,
          const char *suffix, json_t **doc)
{
    long long id;
    int rv;

    *doc = NULL;
    if ((rv = parse_id(what, c->args[0], &id)) != EXIT_OK) {
        json_decref(body);
        return rv;
    }
    return api(c, method, body, doc, "%s/%lld%s", prefix, id, suffix);
}

/* The commands that only GET their row's path (list, workers, health). */
static int
fetch_get(ctl *c, json_t **doc)
{
    return api(c, "GET", NULL, doc, "%s", c->cmd->path);
}

static int
fetch_submit(ctl *c, json_t **doc)
{
    char derived[256];
    const char *name =
        c->name != NULL ? c->name : name_of_file(c->args[0], derived, sizeof(derived));
    json_t *body;
    int rv;

    if (name[0] == '\0' || !lm_utf8_valid((const uint8_t *)name, strlen(name))) {
        say("cannot name the pipeline after %s; give it a --name", c->args[0]);
        return EXIT_USAGE;
    }
    if ((rv = query_body(c, name, &body)) != EXIT_OK) {
        return rv;
    }
    return api(c, "POST", body, doc, "/pipelines");
}

/* validate and explain: the plan is named after the file, as submit
 * would name the pipeline (when the file's name can be a name). */
static int
fetch_validate(ctl *c, json_t **doc)
{
    char derived[256];
    const char *name = name_of_file(c->args[0], derived, sizeof(derived));
    bool usable = name[0] != '\0' && lm_utf8_valid((const uint8_t *)name, strlen(name));
    json_t *body;
    int rv;

    if ((rv = query_body(c, usable ? name : NULL, &body)) != EXIT_OK) {
        return rv;
    }
    return api(c, "POST", body, doc, "/pipelines/validate");
}

/* The pipeline, its "job" replaced by the job's own answer (which adds
 * the operators and placement while its controller runs). */
static int
fetch_status(ctl *c, json_t **doc)
{
    long long id;
    json_t *job;
    int rv;

    if ((rv = api_by_id(c, "GET", NULL, "pipeline", "/pipelines", "", doc)) != EXIT_OK) {
        return rv;
    }
    if ((id = jint(json_object_get(*doc, "job"), "id", 0)) <= 0) {
        return EXIT_OK; /* no job yet */
    }
    if ((rv = api(c, "GET", NULL, &job, "/jobs/%lld", id)) != EXIT_OK) {
        json_decref(*doc);
        *doc = NULL;
        return rv;
    }
    if (json_object_set_new(*doc, "job", job) != 0) {
        json_decref(*doc);
        *doc = NULL;
        return out_of_memory();
    }
    return EXIT_OK;
}

static int
fetch_jobs(ctl *c, json_t **doc)
{
    if (c->nargs == 0) {
        return api(c, "GET", NULL, doc, "/jobs");
    }
    return api_by_id(c, "GET", NULL, "pipeline", "/pipelines", "/jobs", doc);
}

static int
fetch_cancel(ctl *c, json_t **doc)
{
    json_t *body = json_pack("{s:s}", "stop", (c->opts & OPT_GRACEFUL) ? "graceful" : "immediate");

    if (body == NULL) {
        return out_of_memory();
    }
    return api_by_id(c, "PATCH", body, "pipeline", "/pipelines", "", doc);
}

static int
fetch_delete(ctl *c, json_t **doc)
{
    return api_by_id(c, "DELETE", NULL, "pipeline", "/pipelines", "", doc);
}

static int
fetch_events(ctl *c, json_t **doc)
{
    return api_by_id(c, "GET", NULL, "job", "/jobs", "/events", doc);
}

/* --- commands: rendering ------------------------------------------------------------ */

/* The state of a pipeline's latest job, "-" when it has none. */
static const char *
job_state(json_t *pipeline)
{
    return jstr(json_object_get(pipeline, "job"), "state", "-");
}

static int
render_submit(ctl *c, json_t *p)
{
    json_t *job = json_object_get(p, "job");

    (void)c;
    printf("pipeline %lld (%s) submitted", jint(p, "id", 0), jstr(p, "name", "?"));
    if (json_is_object(job)) {
        printf(": job %lld %s", jint(job, "id", 0), jstr(job, "state", "created"));
    }
    printf("\n");
    return EXIT_OK;
}

static int
render_validate(ctl *c, json_t *doc)
{
    json_t *plan = json_object_get(doc, "plan");
    size_t nops = json_array_size(json_object_get(plan, "operators"));
    long long every = jint(doc, "checkpoint_interval_ms", -1);
    char d[64];

    printf("ok: %s compiles to %zu operator%s (parallelism %lld)", c->args[0], nops,
           nops == 1 ? "" : "s", jint(plan, "parallelism", 1));
    if (every > 0) {
        printf("; checkpoints every %s", lm_ctl_fmt_duration(every, d, sizeof(d)));
    }
    printf("\n");
    return EXIT_OK;
}

static int
render_explain(ctl *c, json_t *doc)
{
    const char *text = jstr(doc, "explain", "");
    size_t n = strlen(text);

    (void)c;
    fputs(text, stdout);
    if (n > 0 && text[n - 1] != '\n') {
        fputc('\n', stdout);
    }
    return EXIT_OK;
}

/* A pipeline's row: the state, restarts and job are its latest job's;
 * UPDATED is the later change of the two. */
static void
pipeline_row(lm_ctl_table *t, json_t *p)
{
    json_t *job = json_object_get(p, "job");
    long long updated = jint(p, "updated_at", 0), job_updated = jint(job, "updated_at", 0);
    char age[64];

    cell_int(t, p, "id");
    cell_str(t, p, "name");
    lm_ctl_table_cell(t, "%s", job_state(p));
    cell_int(t, job, "id");
    cell_int(t, p, "parallelism");
    cell_int(t, job, "restarts");
    lm_ctl_table_cell(t, "%s",
                      lm_ctl_fmt_age(job_updated > updated ? job_updated : updated,
                                     lm_clock_wall_ms(), age, sizeof(age)));
}

static int
render_list(ctl *c, json_t *doc)
{
    static const char *const h[] = {"ID",          "NAME",     "STATE",  "JOB",
                                    "PARALLELISM", "RESTARTS", "UPDATED"};
    (void)c;
    return print_list(doc, "pipelines", "no pipelines", h, 7, pipeline_row);
}

static void
operator_row(lm_ctl_table *t, json_t *op)
{
    cell_str(t, op, "id");
    cell_str(t, op, "kind");
    cell_int(t, op, "parallelism");
    cell_int(t, op, "records_in");
    cell_int(t, op, "records_out");
}

/* Adds a "label  value" line, the value printf-formatted. */
static void kv(lm_ctl_table *t, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
kv(lm_ctl_table *t, const char *label, const char *fmt, ...)
{
    char value[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    lm_ctl_table_cell(t, "%s", label);
    lm_ctl_table_cell(t, "%s", value);
}

/* Adds "label  TIME (AGE)" for the time o[key], or "label  -". */
static void
kv_time(lm_ctl_table *t, const char *label, json_t *o, const char *key)
{
    long long ms = jint(o, key, 0);
    char when[64], age[64];

    if (ms <= 0) {
        kv(t, label, "-");
    } else {
        kv(t, label, "%s (%s)", lm_ctl_fmt_time(ms, when, sizeof(when)),
           lm_ctl_fmt_age(ms, lm_clock_wall_ms(), age, sizeof(age)));
    }
}

/* "-" for an empty text. */
static const char *
or_dash(const char *s)
{
    return s[0] != '\0' ? s : "-";
}

/* The pipeline's and its job's fields as "key  value" lines. */
static void
status_fields(lm_ctl_table *t, json_t *p)
{
    json_t *job = json_object_get(p, "job");
    long long every = jint(p, "checkpoint_interval_ms", 0);
    char d[64];

    kv(t, "pipeline", "%lld (%s)", jint(p, "id", 0), jstr(p, "name", "?"));
    kv(t, "version", "%lld", jint(p, "version", 0));
    kv(t, "parallelism", "%lld", jint(p, "parallelism", 0));
    if (every > 0) {
        kv(t, "checkpoints", "every %s", lm_ctl_fmt_duration(every, d, sizeof(d)));
    } else {
        kv(t, "checkpoints", "the controller's default (checkpointing.interval)");
    }
    kv(t, "stop", "%s", jstr(p, "stop", "-"));
    kv_time(t, "created", p, "created_at");
    kv_time(t, "updated", p, "updated_at");
    if (!json_is_object(job)) {
        kv(t, "job", "none");
        return;
    }
    kv(t, "job", "%lld (version %lld)", jint(job, "id", 0), jint(job, "version", 0));
    kv(t, "state", "%s", jstr(job, "state", "-"));
    kv(t, "reason", "%s", or_dash(jstr(job, "reason", "")));
    kv(t, "restarts", "%lld", jint(job, "restarts", 0));
    kv(t, "placement", "%s", or_dash(jstr(job, "placement", "")));
    kv_time(t, "job updated", job, "updated_at");
}

static int
render_status(ctl *c, json_t *p)
{
    static const char *const h[] = {"ID", "KIND", "PARALLELISM", "RECORDS_IN", "RECORDS_OUT"};
    json_t *job = json_object_get(p, "job");
    lm_ctl_table *t;
    int rv;

    (void)c;
    if (lm_ctl_table_new(2, NULL, &t) != LM_OK) {
        return out_of_memory();
    }
    status_fields(t, p);
    if ((rv = print_table(t)) != EXIT_OK || !json_is_object(job)) {
        return rv;
    }
    printf("\n");
    if (!json_is_array(json_object_get(job, "operators"))) {
        printf("no operator statistics (the job's controller is not running)\n");
        return EXIT_OK;
    }
    return print_list(job, "operators", "no operators", h, 5, operator_row);
}

static void
job_row(lm_ctl_table *t, json_t *j)
{
    cell_int(t, j, "id");
    cell_int(t, j, "pipeline_id");
    cell_int(t, j, "version");
    cell_str(t, j, "state");
    cell_int(t, j, "restarts");
    cell_age(t, j, "updated_at");
    cell_str(t, j, "reason");
}

static int
render_jobs(ctl *c, json_t *doc)
{
    static const char *const h[] = {"ID",       "PIPELINE", "VERSION", "STATE",
                                    "RESTARTS", "UPDATED",  "REASON"};
    (void)c;
    return print_list(doc, "jobs", "no jobs", h, 7, job_row);
}

static int
render_cancel(ctl *c, json_t *p)
{
    json_t *job = json_object_get(p, "job");

    (void)c;
    if (json_is_object(job)) {
        printf("pipeline %lld (%s): job %lld %s\n", jint(p, "id", 0), jstr(p, "name", "?"),
               jint(job, "id", 0), jstr(job, "state", "-"));
    } else {
        printf("pipeline %lld (%s): stop %s\n", jint(p, "id", 0), jstr(p, "name", "?"),
               jstr(p, "stop", "-"));
    }
    return EXIT_OK;
}

static int
render_delete(ctl *c, json_t *doc)
{
    printf("pipeline %lld deleted\n", jint(doc, "deleted", atoll(c->args[0])));
    return EXIT_OK;
}

static void
worker_row(lm_ctl_table *t, json_t *w)
{
    cell_int(t, w, "id");
    cell_str(t, w, "address");
    cell_str(t, w, "state");
    cell_int(t, w, "slots");
    cell_int(t, w, "slots_used");
    cell_age(t, w, "last_heartbeat_at");
}

static int
render_workers(ctl *c, json_t *doc)
{
    static const char *const h[] = {"ID", "ADDRESS", "STATE", "SLOTS", "USED", "LAST_HEARTBEAT"};
    (void)c;
    return print_list(doc, "workers", "no workers", h, 6, worker_row);
}

static void
event_row(lm_ctl_table *t, json_t *e)
{
    char when[64];

    lm_ctl_table_cell(t, "%s", lm_ctl_fmt_time(jint(e, "at", 0), when, sizeof(when)));
    cell_str(t, e, "state");
    cell_str(t, e, "reason");
}

static int
render_events(ctl *c, json_t *doc)
{
    static const char *const h[] = {"TIME", "STATE", "REASON"};
    (void)c;
    return print_list(doc, "events", "no events", h, 3, event_row);
}

static int
render_health(ctl *c, json_t *doc)
{
    const char *status = jstr(doc, "status", "?");

    if (strcmp(status, "ok") != 0) {
        say("the Laminar API at %s reports status '%s'", c->url.text, status);
        return EXIT_FAIL;
    }
    printf("ok: Laminar API %s at %s\n", jstr(doc, "version", "?"), c->url.text);
    return EXIT_OK;
}

/* --- the command table and the command line ------------------------------------------- */

static const command commands[] = {
    {"submit", "FILE.sql [--name NAME] [--parallelism N] [--checkpoint-interval DURATION]",
     "submit a SQL pipeline and start its first job (NAME: the file's base name)", 1, 1,
     OPT_NAME | OPT_PARALLELISM | OPT_CHECKPOINT, fetch_submit, render_submit, NULL},
    {"validate", "FILE.sql [--parallelism N]", "check a SQL pipeline without running it", 1, 1,
     OPT_PARALLELISM, fetch_validate, render_validate, NULL},
    {"explain", "FILE.sql [--parallelism N]", "print a SQL pipeline's logical and physical plans",
     1, 1, OPT_PARALLELISM, fetch_validate, render_explain, NULL},
    {"list", "", "list the pipelines and the state of their latest jobs", 0, 0, 0, fetch_get,
     render_list, "/pipelines"},
    {"status", "ID", "show a pipeline, its latest job and that job's operators", 1, 1, 0,
     fetch_status, render_status, NULL},
    {"jobs", "[PIPELINE_ID]", "list all jobs, or a pipeline's", 0, 1, 0, fetch_jobs, render_jobs,
     NULL},
    {"cancel", "ID [--graceful]", "stop a pipeline's job, at once or (--graceful) gracefully", 1, 1,
     OPT_GRACEFUL, fetch_cancel, render_cancel, NULL},
    {"delete", "ID", "delete a pipeline whose job has ended", 1, 1, 0, fetch_delete, render_delete,
     NULL},
    {"workers", "", "list the workers and their slots", 0, 0, 0, fetch_get, render_workers,
     "/workers"},
    {"events", "JOB_ID", "show a job's state changes, oldest first", 1, 1, 0, fetch_events,
     render_events, NULL},
    {"health", "", "check that the API answers", 0, 0, 0, fetch_get, render_health, "/healthz"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *out)
{
    fprintf(out, "usage: " PROG " [--server URL] [--json] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        fprintf(out, "  %s%s%s\n      %s\n", commands[i].name,
                commands[i].synopsis[0] != '\0' ? " " : "", commands[i].synopsis, commands[i].help);
    }
    fprintf(out,
            "  help\n      this text\n"
            "\n"
            "options:\n"
            "  -s, --server URL     the API: http://HOST:PORT or HOST:PORT (default $LAMINAR_API,\n"
            "                       else " DEFAULT_SERVER ")\n"
            "      --json           print the server's JSON answer instead of text\n"
            "  -n, --name NAME      submit: the pipeline's name\n"
            "  -p, --parallelism N  submit, validate, explain: every operator's parallelism\n"
            "                       (1..%d)\n"
            "      --checkpoint-interval DURATION\n"
            "                       submit: checkpoint every DURATION (10s, 500ms, 1m30s, or\n"
            "                       plain milliseconds; 0 = the controller's default)\n"
            "      --graceful       cancel: ask for a graceful stop instead of an immediate one\n"
            "  -h, --help           this text\n"
            "\n"
            "exit status: 0 success, 1 the server answered an error or cannot be reached,\n"
            "2 a usage error\n",
            MAX_PARALLELISM);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the complaint and the hint; returns EXIT_USAGE. */
static int
usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nRun '" PROG " --help' for usage.\n", stderr);
    return EXIT_USAGE;
}

static const command *
find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

/* The long name of an OPT_* bit, for messages. */
static const char *
opt_name(unsigned bit)
{
    switch (bit) {
    case OPT_NAME: return "--name";
    case OPT_PARALLELISM: return "--parallelism";
    case OPT_CHECKPOINT: return "--checkpoint-interval";
    default: return "--graceful";
    }
}

/* Parses argv into c. Returns EXIT_OK, EXIT_USAGE (complaint printed),
 * or -1 when help was asked for (printed). Options may come before or
 * after the command and its arguments. */
static int
parse_args(int argc, char **argv, ctl *c)
{
    enum { LONG_JSON = 256, LONG_CHECKPOINT, LONG_GRACEFUL };
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"json", no_argument, NULL, LONG_JSON},
        {"name", required_argument, NULL, 'n'},
        {"parallelism", required_argument, NULL, 'p'},
        {"checkpoint-interval", required_argument, NULL, LONG_CHECKPOINT},
        {"graceful", no_argument, NULL, LONG_GRACEFUL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *names[NCOMMANDS + 1];
    char hint[160];
    int ch, rv;

    memset(c, 0, sizeof(*c));
    opterr = 0; /* the messages below say it our way */
    while ((ch = getopt_long(argc, argv, ":s:n:p:h", opts, NULL)) != -1) {
        switch (ch) {
        case 's': c->server = optarg; break;
        case LONG_JSON: c->json = true; break;
        case 'n':
            c->opts |= OPT_NAME;
            c->name = optarg;
            if (optarg[0] == '\0') {
                return usage_error("--name wants a non-empty name");
            }
            break;
        case 'p':
            c->opts |= OPT_PARALLELISM;
            if (lm_ctl_parse_int(optarg, 1, MAX_PARALLELISM, &c->parallelism) != LM_OK) {
                return usage_error("--parallelism wants a number from 1 to %d, got '%s'",
                                   MAX_PARALLELISM, optarg);
            }
            break;
        case LONG_CHECKPOINT:
            c->opts |= OPT_CHECKPOINT;
            if ((rv = lm_config_parse_duration(optarg, &c->checkpoint_ms)) != LM_OK ||
                c->checkpoint_ms < 0) {
                return usage_error("--checkpoint-interval wants a duration such as 10s, 500ms or "
                                   "1m30s (or plain milliseconds), got '%s'%s",
                                   optarg, rv == LM_ERANGE ? " (too large)" : "");
            }
            break;
        case LONG_GRACEFUL: c->opts |= OPT_GRACEFUL; break;
        case 'h': usage(stdout); return -1;
        case ':': return usage_error("option '%s' wants a value", argv[optind - 1]);
        default:
            if (optopt != 0) {
                return usage_error("unknown option '-%c'", optopt);
            }
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[optind], "help") == 0) {
        usage(stdout);
        return -1;
    }
    if ((c->cmd = find_command(argv[optind])) == NULL) {
        for (size_t i = 0; i < NCOMMANDS; i++) {
            names[i] = commands[i].name;
        }
        return usage_error("unknown command '%s'%s", argv[optind],
                           lm_text_suggest(argv[optind], names, NCOMMANDS, hint, sizeof(hint)));
    }
    c->args = argv + optind + 1;
    c->nargs = argc - optind - 1;
    if (c->nargs < c->cmd->min_args) {
        return usage_error("%s wants %s", c->cmd->name, c->cmd->synopsis);
    }
    if (c->nargs > c->cmd->max_args) {
        return usage_error("%s: unexpected argument '%s'", c->cmd->name, c->args[c->cmd->max_args]);
    }
    for (unsigned bit = 1; bit <= OPT_GRACEFUL; bit <<= 1) {
        if ((c->opts & bit) && !(c->cmd->opts & bit)) {
            return usage_error("%s takes no %s option", c->cmd->name, opt_name(bit));
        }
    }
    return EXIT_OK;
}

/* Sets c->url from --server, $LAMINAR_API or the default. */
static int
pick_server(ctl *c)
{
    const char *env = getenv("LAMINAR_API");
    const char *text = c->server != NULL               ? c->server
                       : env != NULL && env[0] != '\0' ? env
                                                       : DEFAULT_SERVER;
    lm_error err;

    if (lm_http_url_parse(text, DEFAULT_PORT, &c->url, &err) != LM_OK) {
        return usage_error("bad server address%s: %s",
                           c->server != NULL ? ""
                           : text == env     ? " in LAMINAR_API"
                                             : "",
                           err.msg);
    }
    return EXIT_OK;
}

int
main(int argc, char **argv)
{
    ctl c;
    json_t *doc = NULL;
    int rv;

    if ((rv = parse_args(argc, argv, &c)) != EXIT_OK) {
        return rv < 0 ? EXIT_OK : rv;
    }
    if ((rv = pick_server(&c)) != EXIT_OK) {
        return rv;
    }
    if ((rv = c.cmd->fetch(&c, &doc)) == EXIT_OK) {
        rv = c.json ? print_json(doc) : c.cmd->render(&c, doc);
    }
    json_decref(doc);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        say("writing the output: %s", strerror(errno));
        return EXIT_FAIL;
    }
    return rv;
}
