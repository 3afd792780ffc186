/*
 * lm_api.c: the REST API server: a listening socket handed to evhttp on
 * the `api` actor's event_base, a router from method and path pattern to
 * handler, JSON request bodies parsed before the handler runs, and JSON
 * responses and errors.
 *
 * Memory: the route table is guarded by a mutex (lm_api_route may be
 * called from any thread) and routes are never removed before
 * lm_api_stop, so a handler found under the lock stays valid after it.
 * Everything about a request (decoded segments, query, parsed body) lives
 * on the stack of on_request and is freed before it returns; the
 * response is sent before it returns too, unless the handler deferred it.
 *
 * Deferred requests: a pending handle has two references, the loop's
 * (dropped when the request is answered, times out, loses its client or
 * the api stops) and the completer's (dropped by lm_api_complete). Its
 * state (OPEN, QUEUED, TIMEDOUT, CLOSED) and references are guarded by
 * the mutex of a small refcounted `hub` that outlives the api as long as
 * handles do, so a completion after lm_api_stop touches only the hub.
 * Completions are queued on the hub and an event on the api's loop
 * (event_active, libevent's locking is on) sends them there; everything
 * about the evhttp request itself is touched only on that loop. QUEUED
 * means the wake owns the loop's reference. evhttp 2.1 stops reading a
 * connection while its request is answered, so a hang-up is noticed by
 * a read event of our own on the socket (EOF or error: the connection is
 * freed at once); its close callback covers evhttp freeing it.
 */
#include "lm_api.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "lm_batch.h" /* lm_utf8_valid */
#include "lm_log.h"

#define MAX_SEGMENTS 32 /* path segments a request may have */

typedef struct segment {
    char *text; /* literal text, or the parameter's name */
    bool param; /* "{name}" */
} segment;

typedef struct route {
    char *method;
    segment *segs;
    int nseg;
    int literals; /* literal segments: the more, the more specific */
    lm_api_handler fn;
    void *arg;
} route;

/* What deferred requests share with their completers (see the top). */
typedef struct hub {
    pthread_mutex_t mu;
    size_t refs;            /* the api's one and one per live pending handle */
    size_t live;            /* handles the loop still holds */
    bool stopping;          /* lm_api_stop began: no more deferrals */
    bool closed;            /* the loop side is gone: no more wakes */
    struct event *wake;     /* on the api's loop: sends queued answers */
    lm_api_pending *queue;  /* completed, waiting for the loop (FIFO) */
    lm_api_pending **qtail; /* where the next one goes */
} hub;

enum { P_OPEN, P_QUEUED, P_TIMEDOUT, P_CLOSED };

struct lm_api_pending {
    hub *hub;
    int state;             /* under hub->mu */
    int refs;              /* under hub->mu: the loop's and the completer's */
    int status;            /* the answer, once QUEUED */
    json_t *body;          /* its body */
    lm_api_pending *qnext; /* in hub->queue */
    /* on the loop only */
    lm_api *api;
    struct evhttp_request *ev;   /* NULL once answered or dropped */
    struct event *timer;         /* the 504 */
    struct event *watch;         /* reads the socket for a hang-up */
    lm_api_pending *prev, *next; /* in api->pending */
};

struct lm_api {
    lm_rt *rt;
    lm_addr actor; /* the api actor */
    char name[64]; /* its registered name */
    int fd;        /* the listening socket, until the actor's listener owns it */
    int port;      /* the bound port */
    size_t max_body;
    int timeout_s;
    int defer_ms; /* deferred requests' time limit */
    char *version;
    struct evhttp *http; /* the actor's, made in its init */
    sem_t started;       /* posted by init, whether it worked or not */
    sem_t stopped;       /* posted by fini */
    int init_rv;         /* what init returned */

    hub *hub;                /* shared with pending handles */
    struct event_base *base; /* the actor's */
    lm_api_pending *pending; /* deferred and not yet let go (loop only) */
    int flushing;            /* 503s of the stop being written (loop only) */
    bool quiesced;           /* the stop's 503s are out (loop only) */
    sem_t drained;           /* posted when they are written */

    pthread_mutex_t lock; /* guards routes */
    route **routes;
    size_t nroutes, cap;
};

/* --- small helpers ------------------------------------------------------ */

/* A JSON string of s; a byte that starts no valid UTF-8 sequence (a
 * message cut inside a character, a stray byte) becomes '?', valid
 * characters are kept. NULL only when out of memory. */
static json_t *
jstr(const char *s)
{
    json_t *j = json_string(s);
    size_t n, o = 0;
    char *copy;

    if (j != NULL || s == NULL) {
        return j;
    }
    n = strlen(s);
    if ((copy = malloc(n + 1)) == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (k <= n - i && lm_utf8_valid((const uint8_t *)s + i, k)) {
            memcpy(copy + o, s + i, k);
            o += k;
            i += k;
        } else {
            copy[o++] = '?';
            i++;
        }
    }
    copy[o] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

const char *
lm_api_status_name(int status)
{
    switch (status) {
    case 400: return "invalid_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 409: return "conflict";
    case 413: return "too_large";
    case 503: return "unavailable";
    case 504: return "timeout";
    default: return "internal";
    }
}

int
lm_api_status_code(int status)
{
    switch (status) {
    case 400: return LM_EINVAL;
    case 404: return LM_ENOTFOUND;
    case 409: return LM_ESTATE;
    case 413: return LM_ETOOBIG;
    case 503: return LM_ECLOSED;
    case 504: return LM_ETIMEDOUT;
    default: return LM_EFAILED;
    }
}

int
lm_api_code_status(int code)
{
    switch (code) {
    case LM_OK: return 200;
    case LM_EINVAL:
    case LM_ERANGE:
    case LM_EPROTO: return 400;
    case LM_ENOTFOUND: return 404;
    case LM_ESTATE:
    case LM_EEXIST: return 409;
    case LM_ETOOBIG: return 413;
    case LM_ECLOSED: return 503;
    case LM_ETIMEDOUT: return 504;
    default: return 500;
    }
}

static const char *
method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "UNKNOWN";
    }
}

/* --- responses ---------------------------------------------------------- */

int
lm_api_reply(lm_api_resp *resp, int status, json_t *body)
{
    if (body == NULL) {
        return LM_ENOMEM;
    }
    json_decref(resp->body);
    resp->body = body;
    resp->status = status;
    return LM_OK;
}

static int
verror(lm_api_resp *resp, int status, const char *code, const char *fmt, va_list ap)
{
    char msg[1024];
    json_t *err = json_object(), *body = json_object();

    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_decref(resp->body);
    resp->body = NULL;
    resp->status = status;
    if (err == NULL || body == NULL || json_object_set_new(err, "code", jstr(code)) != 0 ||
        json_object_set_new(err, "message", jstr(msg)) != 0) {
        /* out of memory: the router answers the code */
        json_decref(err);
        json_decref(body);
        return lm_api_status_code(status);
    }
    if (json_object_set_new(body, "error", err) != 0) {
        json_decref(body); /* set_new released err */
        return lm_api_status_code(status);
    }
    resp->body = body;
    return lm_api_status_code(status);
}

int
lm_api_error(lm_api_resp *resp, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    int rv;

    va_start(ap, fmt);
    rv = verror(resp, status, code, fmt, ap);
    va_end(ap);
    return rv;
}

void
lm_api_error_set(lm_api_resp *resp, const char *key, json_t *value)
{
    json_t *err = resp->body != NULL ? json_object_get(resp->body, "error") : NULL;

    if (!json_is_object(err)) {
        json_decref(value);
        return;
    }
    json_object_set_new(err, key, value);
}

/* Sends resp (or, when it has no body, what status stands for) as JSON
 * and frees its body. allow, when not NULL, goes into an Allow header. */
static void
send_resp(struct evhttp_request *ev, lm_api_resp *resp, const char *allow)
{
    static const char fallback[] =
        "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
    struct evkeyvalq *h = evhttp_request_get_output_headers(ev);
    struct evbuffer *out = evhttp_request_get_output_buffer(ev);
    char *text = NULL;
    int status = resp->status;

    if (resp->body == NULL) {
        if (status >= 400) {
            lm_api_error(resp, status, lm_api_status_name(status), "%s",
                         status == 500 ? "internal error" : "request failed");
        } else {
            resp->body = json_object();
        }
    }
    if (resp->body != NULL) {
        text = json_dumps(resp->body, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    evhttp_add_header(h, "Content-Type", "application/json");
    if (allow != NULL) {
        evhttp_add_header(h, "Allow", allow);
    }
    if (text == NULL) {
        status = 500;
        evbuffer_add(out, fallback, sizeof(fallback) - 1);
    } else {
        evbuffer_add(out, text, strlen(text));
        evbuffer_add(out, "\n", 1);
    }
    evhttp_send_reply(ev, status, NULL, NULL);
    free(text);
    json_decref(resp->body);
    resp->body = NULL;
}

/* --- routes ------------------------------------------------------------- */

static void
route_free(route *r)
{
    if (r == NULL) {
        return;
    }
    for (int i = 0; i < r->nseg; i++) {
        free(r->segs[i].text);
    }
    free(r->segs);
    free(r->method);
    free(r);
}

/* Splits pattern into r's segments. LM_OK, LM_EINVAL or LM_ENOMEM. */
static int
parse_pattern(route *r, const char *pattern)
{
    const char *p;
    size_t len = strlen(pattern);
    int nparams = 0;

    if (pattern[0] != '/') {
        return LM_EINVAL;
    }
    if (len > 1 && pattern[len - 1] == '/') {
        len--;
    }
    if ((r->segs = calloc(MAX_SEGMENTS, sizeof(*r->segs))) == NULL) {
        return LM_ENOMEM;
    }
    p = pattern + 1;
    while ((size_t)(p - pattern) < len) {
        const char *end = memchr(p, '/', len - (size_t)(p - pattern));
        size_t n = end != NULL ? (size_t)(end - p) : len - (size_t)(p - pattern);
        segment *s;

        if (r->nseg == MAX_SEGMENTS || n == 0) {
            return LM_EINVAL;
        }
        s = &r->segs[r->nseg];
        if (p[0] == '{') {
            if (n < 3 || p[n - 1] != '}' || memchr(p + 1, '{', n - 2) != NULL ||
                memchr(p + 1, '}', n - 2) != NULL || ++nparams > LM_API_MAX_PARAMS) {
                return LM_EINVAL;
            }
            s->param = true;
            s->text = strndup(p + 1, n - 2);
        } else {
            if (memchr(p, '{', n) != NULL || memchr(p, '}', n) != NULL) {
                return LM_EINVAL;
            }
            s->text = strndup(p, n);
            r->literals++;
        }
        r->nseg++;
        if (s->text == NULL) {
            return LM_ENOMEM;
        }
        p += n + 1;
    }
    return LM_OK;
}

/* Same method and the same shape (literals equal, parameters anywhere). */
static bool
route_same(const route *a, const route *b)
{
    if (strcmp(a->method, b->method) != 0 || a->nseg != b->nseg) {
        return false;
    }
    for (int i = 0; i < a->nseg; i++) {
        if (a->segs[i].param != b->segs[i].param ||
            (!a->segs[i].param && strcmp(a->segs[i].text, b->segs[i].text) != 0)) {
            return false;
        }
    }
    return true;
}

int
lm_api_route(lm_api *api, const char *method, const char *pattern, lm_api_handler fn, void *arg)
{
    route *r;
    int rv;

    if (api == NULL || method == NULL || method[0] == '\0' || pattern == NULL || fn == NULL) {
        return LM_EINVAL;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->method = strdup(method)) == NULL) {
        route_free(r);
        return LM_ENOMEM;
    }
    r->fn = fn;
    r->arg = arg;
    if ((rv = parse_pattern(r, pattern)) != LM_OK) {
        route_free(r);
        return rv;
    }
    pthread_mutex_lock(&api->lock);
    for (size_t i = 0; i < api->nroutes; i++) {
        if (route_same(api->routes[i], r)) {
            pthread_mutex_unlock(&api->lock);
            route_free(r);
            return LM_EEXIST;
        }
    }
    if (api->nroutes == api->cap) {
        size_t cap = api->cap ? api->cap * 2 : 16;
        route **nr = realloc(api->routes, cap * sizeof(*nr));
        if (nr == NULL) {
            pthread_mutex_unlock(&api->lock);
            route_free(r);
            return LM_ENOMEM;
        }
        api->routes = nr;
        api->cap = cap;
    }
    api->routes[api->nroutes++] = r;
    pthread_mutex_unlock(&api->lock);
    return LM_OK;
}

/* What the router found for a request. */
typedef struct match {
    const route *r;  /* the route to run, NULL when none */
    char allow[128]; /* methods of routes matching the path, comma-separated */
} match;

static bool
segs_match(const route *r, char **segs, int nseg)
{
    if (r->nseg != nseg) {
        return false;
    }
    for (int i = 0; i < nseg; i++) {
        if (r->segs[i].param ? segs[i][0] == '\0' : strcmp(r->segs[i].text, segs[i]) != 0) {
            return false;
        }
    }
    return true;
}

static void
find_route(lm_api *api, const char *method, char **segs, int nseg, match *m)
{
    size_t used = 0;

    m->r = NULL;
    m->allow[0] = '\0';
    pthread_mutex_lock(&api->lock);
    for (size_t i = 0; i < api->nroutes; i++) {
        const route *r = api->routes[i];
        if (!segs_match(r, segs, nseg)) {
            continue;
        }
        if (strcmp(r->method, method) == 0) {
            if (m->r == NULL || r->literals > m->r->literals) {
                m->r = r;
            }
            continue;
        }
        /* another method for this path: name it once in Allow */
        size_t n = strlen(r->method);
        const char *p = m->allow;
        bool seen = false;
        while (*p != '\0') {
            if (strncmp(p, r->method, n) == 0 && (p[n] == ',' || p[n] == '\0')) {
                seen = true;
                break;
            }
            p = strchr(p, ',');
            p = p != NULL ? p + 2 : "";
        }
        if (!seen && used + n + 3 < sizeof(m->allow)) {
            used += (size_t)snprintf(m->allow + used, sizeof(m->allow) - used, "%s%s",
                                     used > 0 ? ", " : "", r->method);
        }
    }
    pthread_mutex_unlock(&api->lock);
}

/* --- requests ----------------------------------------------------------- */

/* What req->priv_ points to while a handler runs. */
typedef struct reqctx {
    struct evkeyvalq *qs;      /* the query parameters, NULL when none */
    struct evhttp_request *ev; /* the request */
    lm_api_pending *pending;   /* set by lm_api_defer */
} reqctx;

const char *
lm_api_param(const lm_api_req *req, const char *name)
{
    for (int i = 0; i < req->nparams; i++) {
        if (strcmp(req->params[i].name, name) == 0) {
            return req->params[i].value;
        }
    }
    return NULL;
}

const char *
lm_api_query(const lm_api_req *req, const char *name)
{
    const reqctx *ctx = req->priv_;

    return ctx != NULL && ctx->qs != NULL ? evhttp_find_header(ctx->qs, name) : NULL;
}

/* Splits path into percent-decoded segments (malloc'd, into segs). One
 * trailing '/' is ignored. Returns the count, -1 for too many segments
 * or a NUL byte, -2 when out of memory. */
static int
split_path(const char *path, char **segs)
{
    size_t len = strlen(path);
    char *copy, *p;
    int n = 0, rv;

    if (len > 0 && path[0] == '/') {
        path++;
        len--;
    }
    if (len > 0 && path[len - 1] == '/') {
        len--;
    }
    if (len == 0) {
        return 0;
    }
    if ((copy = strndup(path, len)) == NULL) {
        return -2;
    }
    for (p = copy;;) {
        char *slash = strchr(p, '/');
        size_t dlen;

        if (slash != NULL) {
            *slash = '\0';
        }
        if (n == MAX_SEGMENTS) {
            rv = -1;
            goto fail;
        }
        if ((segs[n] = evhttp_uridecode(p, 0, &dlen)) == NULL) {
            rv = -2;
            goto fail;
        }
        if (strlen(segs[n++]) != dlen) {
            rv = -1; /* a %00 */
            goto fail;
        }
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
    }
    free(copy);
    return n;
fail:
    for (int i = 0; i < n; i++) {
        free(segs[i]);
    }
    free(copy);
    return rv;
}

/* True when the len bytes at p are all JSON whitespace. */
static bool
blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') {
            return false;
        }
    }
    return true;
}

static void
on_request(struct evhttp_request *ev, void *arg)
{
    lm_api *api = arg;
    const char *method = method_name(evhttp_request_get_command(ev));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    size_t len = evbuffer_get_length(in);
    struct evkeyvalq qs;
    lm_api_req req;
    lm_api_resp resp = {200, NULL};
    reqctx ctx = {NULL, ev, NULL};
    char *segs[MAX_SEGMENTS];
    int nseg, rv;
    match m;
    bool has_query = false;

    memset(&req, 0, sizeof(req));
    TAILQ_INIT(&qs);
    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    if ((nseg = split_path(path, segs)) < 0) {
        if (nseg == -2) {
            lm_api_error(&resp, 500, "internal", "out of memory");
        } else {
            lm_api_error(&resp, 400, "invalid_request", "malformed path");
        }
        send_resp(ev, &resp, NULL);
        return;
    }
    find_route(api, method, segs, nseg, &m);
    if (m.r == NULL) {
        if (m.allow[0] != '\0') {
            lm_api_error(&resp, 405, "method_not_allowed",
                         "%s is not allowed on %.200s (allowed: %s)", method, path, m.allow);
            send_resp(ev, &resp, m.allow);
        } else {
            lm_api_error(&resp, 404, "not_found", "no such endpoint: %s %.200s", method, path);
            send_resp(ev, &resp, NULL);
        }
        goto done;
    }
    if (len > api->max_body) {
        lm_api_error(&resp, 413, "too_large", "the request body has %zu bytes; the limit is %zu",
                     len, api->max_body);
        send_resp(ev, &resp, NULL);
        goto done;
    }
    if (query != NULL) {
        if (evhttp_parse_query_str(query, &qs) != 0) {
            lm_api_error(&resp, 400, "invalid_request", "malformed query string");
            send_resp(ev, &resp, NULL);
            goto done;
        }
        has_query = true;
    }
    req.api = api;
    req.method = method;
    req.path = path;
    ctx.qs = has_query ? &qs : NULL;
    req.priv_ = &ctx;
    for (int i = 0; i < nseg; i++) {
        if (m.r->segs[i].param) {
            req.params[req.nparams].name = m.r->segs[i].text;
            req.params[req.nparams].value = segs[i];
            req.nparams++;
        }
    }
    if (len > 0) {
        const char *data = (const char *)evbuffer_pullup(in, -1);
        json_error_t jerr;

        if (data == NULL) {
            lm_api_error(&resp, 500, "internal", "out of memory");
            send_resp(ev, &resp, NULL);
            goto done;
        }
        req.raw_body = data;
        req.raw_len = len;
        if (!blank(data, len) &&
            (req.body = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr)) ==
                NULL) {
            lm_api_error(&resp, 400, "malformed_json", "malformed JSON at line %d, column %d: %s",
                         jerr.line, jerr.column, jerr.text);
            lm_api_error_set(&resp, "line", json_integer(jerr.line));
            lm_api_error_set(&resp, "column", json_integer(jerr.column));
            lm_api_error_set(&resp, "position", json_integer(jerr.position));
            send_resp(ev, &resp, NULL);
            goto done;
        }
    }
    rv = m.r->fn(&req, &resp, m.r->arg);
    if (ctx.pending != NULL) {
        /* answered later (perhaps already queued) by lm_api_complete */
        LM_LOGC(LM_LOG_DEBUG, "api", "%s %s -> deferred", method, path);
        json_decref(resp.body);
        goto done;
    }
    if (rv != LM_OK) {
        if (resp.body == NULL) {
            resp.status = lm_api_code_status(rv);
            if (resp.status == 200) {
                resp.status = 500;
            }
            lm_api_error(&resp, resp.status, lm_api_status_name(resp.status), "%s",
                         lm_strerror(rv));
        } else if (resp.status < 400) {
            resp.status = lm_api_code_status(rv) == 200 ? 500 : lm_api_code_status(rv);
        }
    }
    LM_LOGC(LM_LOG_DEBUG, "api", "%s %s -> %d", method, path, resp.status);
    send_resp(ev, &resp, NULL);
done:
    json_decref(req.body);
    if (has_query) {
        evhttp_clear_headers(&qs);
    }
    for (int i = 0; i < nseg; i++) {
        free(segs[i]);
    }
}

/* --- deferred answers ----------------------------------------------------- */

static void
hub_unref(hub *h)
{
    bool last;

    pthread_mutex_lock(&h->mu);
    last = --h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last) {
        pthread_mutex_destroy(&h->mu);
        free(h);
    }
}

/* Drops a reference to p: the loop's (loop true) or the completer's. */
static void
pending_unref(lm_api_pending *p, bool loop)
{
    hub *h = p->hub;
    bool last;

    pthread_mutex_lock(&h->mu);
    if (loop) {
        h->live--;
    }
    last = --p->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last) {
        json_decref(p->body);
        free(p);
        hub_unref(h);
    }
}

/* Stops watching p's request: its timer, its socket, its connection. */
static void
pending_unhook(lm_api_pending *p)
{
    struct evhttp_connection *evcon = p->ev != NULL ? evhttp_request_get_connection(p->ev) : NULL;

    if (p->timer != NULL) {
        event_free(p->timer);
        p->timer = NULL;
    }
    if (p->watch != NULL) {
        event_free(p->watch);
        p->watch = NULL;
    }
    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    }
}

/* The loop is done with p: off the list, its reference dropped. */
static void
pending_release(lm_api_pending *p)
{
    lm_api *api = p->api;

    pending_unhook(p);
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        api->pending = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    p->prev = p->next = NULL;
    pending_unref(p, true);
}

static void
on_flushed(struct evhttp_request *ev, void *arg)
{
    lm_api *api = arg;

    (void)ev;
    if (--api->flushing == 0 && api->quiesced) {
        sem_post(&api->drained);
    }
}

/* Sends resp as p's answer (or drops it when the client is gone), then
 * lets p go. counted: a stop's 503, whose writing lm_api_stop awaits. */
static void
pending_answer(lm_api_pending *p, lm_api_resp *resp, bool counted)
{
    struct evhttp_request *ev = p->ev;

    pending_unhook(p);
    p->ev = NULL;
    if (ev != NULL) {
        if (counted && evhttp_request_get_connection(ev) != NULL) {
            p->api->flushing++;
            evhttp_request_set_on_complete_cb(ev, on_flushed, p->api);
        }
        send_resp(ev, resp, NULL); /* frees a request whose connection is gone */
    } else {
        json_decref(resp->body);
        resp->body = NULL;
    }
    pending_release(p);
}

/* The client of p is gone: drop the request. free_conn: we noticed
 * (free the connection, and the request with it); else evhttp is freeing
 * the connection (it frees the request unless it had let go of it). */
static void
pending_gone(lm_api_pending *p, bool free_conn)
{
    struct evhttp_request *ev = p->ev;
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    bool release = false;

    pthread_mutex_lock(&p->hub->mu);
    if (p->state == P_OPEN) {
        p->state = P_CLOSED;
        release = true; /* else QUEUED: the wake lets it go */
    }
    pthread_mutex_unlock(&p->hub->mu);
    LM_LOGC(LM_LOG_DEBUG, "api", "a deferred request's client is gone");
    pending_unhook(p);
    p->ev = NULL;
    if (evcon == NULL) {
        evhttp_request_free(ev);
    } else if (free_conn) {
        evhttp_connection_free(evcon);
    }
    if (release) {
        pending_release(p);
    }
}

static void
on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    pending_gone(arg, false);
}

static void
on_watch(evutil_socket_t fd, short what, void *arg)
{
    lm_api_pending *p = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    (void)what;
    if (n > 0) {
        /* a pipelined request: no telling a hang-up from here on */
        event_free(p->watch);
        p->watch = NULL;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(p->watch, NULL);
    } else {
        pending_gone(p, true);
    }
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
    lm_api_pending *p = arg;
    lm_api_resp resp = {504, NULL};
    bool timed_out = false;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&p->hub->mu);
    if (p->state == P_OPEN) {
        p->state = P_TIMEDOUT;
        timed_out = true;
    }
    pthread_mutex_unlock(&p->hub->mu);
    if (!timed_out) {
        return; /* completed meanwhile: the wake answers */
    }
    LM_LOGC(LM_LOG_WARN, "api", "a deferred request got no answer within %d ms", p->api->defer_ms);
    lm_api_error(&resp, 504, "timeout", "no answer within %d ms", p->api->defer_ms);
    pending_answer(p, &resp, false);
}

/* Sends the queued answers; when stopping, answers the open requests 503
 * (all of them when final: the actor's fini). */
static void
drain(lm_api *api, bool final)
{
    lm_api_pending *q, *p, *next;
    bool stopping;

    pthread_mutex_lock(&api->hub->mu);
    q = api->hub->queue;
    api->hub->queue = NULL;
    api->hub->qtail = &api->hub->queue;
    stopping = final || (api->hub->stopping && !api->quiesced);
    if (final) {
        api->hub->closed = true;
    }
    if (stopping) {
        for (p = api->pending; p != NULL; p = p->next) {
            if (p->state == P_OPEN) {
                p->state = P_CLOSED;
            }
        }
    }
    pthread_mutex_unlock(&api->hub->mu);
    for (; q != NULL; q = next) {
        lm_api_resp resp = {q->status, q->body};
        next = q->qnext;
        q->body = NULL;
        pending_answer(q, &resp, stopping);
    }
    if (!stopping) {
        return;
    }
    /* every one left is CLOSED now (QUEUED ones were all in q) */
    while ((p = api->pending) != NULL) {
        lm_api_resp resp = {503, NULL};
        lm_api_error(&resp, 503, "unavailable", "the API server is stopping");
        pending_answer(p, &resp, true);
    }
    if (!api->quiesced) {
        api->quiesced = true;
        if (api->flushing == 0) {
            sem_post(&api->drained);
        }
    }
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    drain(arg, false);
}

int
lm_api_defer(const lm_api_req *req, lm_api_pending **out)
{
    reqctx *ctx = req != NULL ? req->priv_ : NULL;
    struct evhttp_connection *evcon;
    struct bufferevent *bev;
    struct timeval tv;
    lm_api_pending *p;
    lm_api *api;
    int fd = -1;

    if (ctx == NULL || ctx->pending != NULL || out == NULL || req->api == NULL) {
        return LM_EINVAL;
    }
    api = req->api;
    evcon = evhttp_request_get_connection(ctx->ev);
    bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (bev != NULL) {
        fd = bufferevent_getfd(bev);
    }
    if ((p = calloc(1, sizeof(*p))) == NULL ||
        (p->timer = evtimer_new(api->base, on_timeout, p)) == NULL ||
        (fd >= 0 && (p->watch = event_new(api->base, fd, EV_READ, on_watch, p)) == NULL)) {
        goto nomem;
    }
    pthread_mutex_lock(&api->hub->mu);
    if (api->hub->stopping) {
        pthread_mutex_unlock(&api->hub->mu);
        pending_unhook(p);
        free(p);
        return LM_ECLOSED;
    }
    api->hub->refs++;
    api->hub->live++;
    pthread_mutex_unlock(&api->hub->mu);
    p->hub = api->hub;
    p->api = api;
    p->refs = 2;
    p->state = P_OPEN;
    p->ev = ctx->ev;
    tv.tv_sec = api->defer_ms / 1000;
    tv.tv_usec = (api->defer_ms % 1000) * 1000;
    evtimer_add(p->timer, &tv);
    if (p->watch != NULL) {
        event_add(p->watch, NULL);
    }
    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, on_conn_close, p);
    }
    p->next = api->pending;
    if (api->pending != NULL) {
        api->pending->prev = p;
    }
    api->pending = p;
    ctx->pending = p;
    *out = p;
    return LM_OK;
nomem:
    if (p != NULL) {
        pending_unhook(p);
        free(p);
    }
    return LM_ENOMEM;
}

int
lm_api_complete(lm_api_pending *p, int status, json_t *body)
{
    hub *h;
    int rv;

    if (p == NULL) {
        json_decref(body);
        return LM_EINVAL;
    }
    h = p->hub;
    pthread_mutex_lock(&h->mu);
    switch (p->state) {
    case P_OPEN:
        p->state = P_QUEUED;
        p->status = status;
        p->body = body;
        body = NULL;
        *h->qtail = p;
        h->qtail = &p->qnext;
        /* OPEN handles exist only while the loop side does */
        event_active(h->wake, EV_READ, 0);
        rv = LM_OK;
        break;
    case P_TIMEDOUT: rv = LM_ETIMEDOUT; break;
    default: rv = LM_ECLOSED; break;
    }
    pthread_mutex_unlock(&h->mu);
    json_decref(body);
    pending_unref(p, false);
    return rv;
}

int
lm_api_complete_error(lm_api_pending *p, int status, const char *code, const char *fmt, ...)
{
    lm_api_resp resp = {status, NULL};
    va_list ap;

    va_start(ap, fmt);
    verror(&resp, status, code, fmt, ap);
    va_end(ap);
    return lm_api_complete(p, status, resp.body);
}

size_t
lm_api_pending_count(lm_api *api)
{
    size_t n;

    pthread_mutex_lock(&api->hub->mu);
    n = api->hub->live;
    pthread_mutex_unlock(&api->hub->mu);
    return n;
}

/* --- checking bodies ---------------------------------------------------- */

static const char *
json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static const char *
want_name(lm_api_type t)
{
    switch (t) {
    case LM_API_STRING: return "a string";
    case LM_API_INTEGER: return "an integer";
    case LM_API_BOOLEAN: return "a boolean";
    case LM_API_OBJECT: return "an object";
    case LM_API_ARRAY: return "an array";
    default: return "a value";
    }
}

static bool
type_ok(lm_api_type t, const json_t *j)
{
    switch (t) {
    case LM_API_STRING: return json_is_string(j);
    case LM_API_INTEGER: return json_is_integer(j);
    case LM_API_BOOLEAN: return json_is_boolean(j);
    case LM_API_OBJECT: return json_is_object(j);
    case LM_API_ARRAY: return json_is_array(j);
    default: return true;
    }
}

static int field_error(lm_api_resp *resp, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
field_error(lm_api_resp *resp, const char *field, const char *fmt, ...)
{
    va_list ap;
    int rv;

    va_start(ap, fmt);
    rv = verror(resp, 400, "invalid_request", fmt, ap);
    va_end(ap);
    lm_api_error_set(resp, "field", jstr(field));
    return rv;
}

int
lm_api_check_body(const lm_api_req *req, const lm_api_field *fields, size_t n, lm_api_resp *resp)
{
    const char *key;
    json_t *v;

    if (req->body == NULL) {
        return lm_api_error(resp, 400, "invalid_request", "a JSON object body is required");
    }
    if (!json_is_object(req->body)) {
        return lm_api_error(resp, 400, "invalid_request", "the body must be a JSON object, not %s",
                            json_type_name(req->body));
    }
    json_object_foreach(req->body, key, v)
    {
        size_t i;
        for (i = 0; i < n && strcmp(fields[i].name, key) != 0; i++) {
        }
        if (i == n) {
            return field_error(resp, key, "unknown field \"%.100s\"", key);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const lm_api_field *f = &fields[i];
        v = json_object_get(req->body, f->name);
        if (v == NULL) {
            if (f->required) {
                return field_error(resp, f->name, "missing required field \"%s\"", f->name);
            }
            continue;
        }
        if (!type_ok(f->type, v)) {
            return field_error(resp, f->name, "field \"%s\" must be %s, not %s", f->name,
                               want_name(f->type), json_type_name(v));
        }
        if (f->type == LM_API_INTEGER && (f->min != 0 || f->max != 0) &&
            (json_integer_value(v) < f->min || json_integer_value(v) > f->max)) {
            return field_error(
                resp, f->name, "field \"%s\" must be between %lld and %lld, not %lld", f->name,
                (long long)f->min, (long long)f->max, (long long)json_integer_value(v));
        }
    }
    return LM_OK;
}

/* --- the actor ---------------------------------------------------------- */

static int
api_init(lm_actor *self, void *arg)
{
    lm_api *api = arg;
    struct evconnlistener *lst = NULL;
    int rv = LM_ENOMEM;

    api->base = lm_actor_event_base(self);
    if ((api->hub->wake = event_new(api->base, -1, 0, on_wake, api)) == NULL ||
        (api->http = evhttp_new(api->base)) == NULL) {
        goto fail;
    }
    evhttp_set_gencb(api->http, on_request, api);
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* evhttp's own limit is a backstop twice ours: bodies in between get
     * our JSON 413; beyond it evhttp drains the body and answers 413. */
    evhttp_set_max_body_size(api->http, (ev_ssize_t)(api->max_body * 2 > api->max_body + 65536
                                                         ? api->max_body * 2
                                                         : api->max_body + 65536));
    evhttp_set_flags(api->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_timeout(api->http, api->timeout_s);
    evhttp_set_default_content_type(api->http, "application/json");
    if ((lst = evconnlistener_new(lm_actor_event_base(self), NULL, NULL,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, api->fd)) ==
        NULL) {
        rv = LM_EIO;
        goto fail;
    }
    api->fd = -1; /* the listener's now */
    if (evhttp_bind_listener(api->http, lst) == NULL) {
        evconnlistener_free(lst);
        goto fail;
    }
    lm_actor_set_state(self, api);
    api->init_rv = LM_OK;
    sem_post(&api->started);
    return LM_OK;
fail:
    if (api->http != NULL) {
        evhttp_free(api->http);
        api->http = NULL;
    }
    if (api->hub->wake != NULL) {
        event_free(api->hub->wake);
        api->hub->wake = NULL;
    }
    api->init_rv = rv;
    sem_post(&api->started);
    return lm_actor_fail(self, rv, "cannot serve HTTP: %s", lm_strerror(rv));
}

static int
api_handle(lm_actor *self, lm_msg *msg)
{
    (void)self;
    (void)msg;
    return LM_OK;
}

static void
api_fini(lm_actor *self)
{
    lm_api *api = lm_actor_state(self);

    /* deferred requests: queued answers sent, open ones 503, before the
     * connections go; no completion wakes the loop after this */
    drain(api, true);
    event_free(api->hub->wake);
    api->hub->wake = NULL;
    /* closes every connection and the listener (and its socket) */
    evhttp_free(api->http);
    api->http = NULL;
    sem_post(&api->stopped);
}

static const lm_actor_type api_type = {"api", api_init, api_handle, api_fini};

/* --- public ------------------------------------------------------------- */

void
lm_api_opts_from_config(const lm_config *cfg, lm_api_opts *opts)
{
    *opts = LM_API_OPTS_DEFAULTS;
    opts->bind = cfg->api.bind;
    opts->port = (int)cfg->api.port;
    opts->max_body_bytes = (size_t)cfg->api.max_body_bytes;
}

/* Binds and listens on host:port; LM_OK with *fd and *bound. */
static int
listen_on(const char *host, int port, int *fd, int *bound, lm_error *err)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int rv, last = 0, s = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if ((rv = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        return lm_error_set(err, LM_EIO, "api: cannot resolve %s: %s", host, gai_strerror(rv));
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int one = 1;
        s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (s < 0) {
            last = errno;
            continue;
        }
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, SOMAXCONN) == 0) {
            break;
        }
        last = errno;
        close(s);
        s = -1;
    }
    freeaddrinfo(res);
    if (s < 0) {
        rv = last == EADDRINUSE ? LM_EADDRINUSE : LM_EIO;
        return lm_error_set(err, rv, "api: cannot listen on %s:%d: %s", host, port, strerror(last));
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    *bound = port;
    if (getsockname(s, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            *bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            *bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    *fd = s;
    return LM_OK;
}

static void
api_free(lm_api *api)
{
    for (size_t i = 0; i < api->nroutes; i++) {
        route_free(api->routes[i]);
    }
    free(api->routes);
    if (api->fd >= 0) {
        close(api->fd);
    }
    free(api->version);
    if (api->hub != NULL) {
        hub_unref(api->hub);
    }
    sem_destroy(&api->drained);
    sem_destroy(&api->started);
    sem_destroy(&api->stopped);
    pthread_mutex_destroy(&api->lock);
    free(api);
}

/* Waits for sem, saying so in the log every 10 s. */
static void
wait_sem(sem_t *sem, const char *what)
{
    for (int waited = 0;; waited += 10) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        if (sem_timedwait(sem, &deadline) == 0) {
            return;
        }
        if (errno == ETIMEDOUT) {
            LM_LOGC(LM_LOG_WARN, "api", "still waiting for the api actor to %s (%d s)", what,
                    waited + 10);
        }
    }
}

int
lm_api_start(lm_rt *rt, const lm_api_opts *opts, lm_api **out, lm_error *err)
{
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    const char *host;
    lm_api *api;
    int rv;

    if (rt == NULL || opts == NULL || out == NULL) {
        return lm_error_set(err, LM_EINVAL, "api: no runtime, options or result");
    }
    if (opts->port < 0 || opts->port > 65535) {
        return lm_error_set(err, LM_EINVAL, "api: port %d is not in 0..65535", opts->port);
    }
    if ((api = calloc(1, sizeof(*api))) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "api: out of memory");
    }
    api->rt = rt;
    api->fd = -1;
    api->max_body = opts->max_body_bytes > 0 ? opts->max_body_bytes : LM_API_DEFAULT_MAX_BODY;
    api->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : 60;
    api->defer_ms = opts->defer_timeout_ms > 0 ? opts->defer_timeout_ms : 30000;
    pthread_mutex_init(&api->lock, NULL);
    sem_init(&api->started, 0, 0);
    sem_init(&api->stopped, 0, 0);
    sem_init(&api->drained, 0, 0);
    if ((api->hub = calloc(1, sizeof(*api->hub))) == NULL) {
        api_free(api);
        return lm_error_set(err, LM_ENOMEM, "api: out of memory");
    }
    pthread_mutex_init(&api->hub->mu, NULL);
    api->hub->refs = 1;
    api->hub->qtail = &api->hub->queue;
    if ((api->version = strdup(opts->version != NULL ? opts->version : LM_API_VERSION)) == NULL) {
        api_free(api);
        return lm_error_set(err, LM_ENOMEM, "api: out of memory");
    }
    for (size_t i = 0; i < opts->nroutes; i++) {
        const lm_api_route_def *d = &opts->routes[i];
        if ((rv = lm_api_route(api, d->method, d->pattern, d->fn, d->arg)) != LM_OK) {
            api_free(api);
            return lm_error_set(err, rv, "api: route %s %s: %s", d->method ? d->method : "?",
                                d->pattern ? d->pattern : "?", lm_strerror(rv));
        }
    }
    host = opts->bind != NULL && opts->bind[0] != '\0' ? opts->bind : "127.0.0.1";
    if ((rv = listen_on(host, opts->port, &api->fd, &api->port, err)) != LM_OK) {
        api_free(api);
        return rv;
    }
    so.loop = opts->loop;
    snprintf(api->name, sizeof(api->name), "%s", opts->name != NULL ? opts->name : "api");
    so.name = api->name;
    if ((rv = lm_spawn(rt, &api_type, api, &so, &api->actor)) != LM_OK) {
        api_free(api);
        return lm_error_set(err, rv, "api: cannot start its actor: %s", lm_strerror(rv));
    }
    wait_sem(&api->started, "start");
    if (api->init_rv != LM_OK) {
        rv = api->init_rv;
        api_free(api);
        return lm_error_set(err, rv, "api: cannot serve HTTP: %s", lm_strerror(rv));
    }
    LM_LOGC(LM_LOG_INFO, "api", "serving HTTP on %s:%d", host, api->port);
    *out = api;
    return LM_OK;
}

void
lm_api_stop(lm_api *api)
{
    if (api == NULL) {
        return;
    }
    /* Deferred requests first: the loop answers the open ones 503 and
     * refuses new deferrals; wait (a while) for those answers to be
     * written, since the connections close with the actor. */
    pthread_mutex_lock(&api->hub->mu);
    api->hub->stopping = true;
    bool wait = !api->hub->closed && api->hub->wake != NULL;
    if (wait) {
        event_active(api->hub->wake, EV_READ, 0);
    }
    pthread_mutex_unlock(&api->hub->mu);
    if (wait) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 2;
        while (sem_timedwait(&api->drained, &deadline) != 0 && errno == EINTR) {
        }
    }
    /* Whether STOP is accepted or the actor is already going, its fini
     * runs exactly once after its successful init and posts stopped. */
    lm_stop(api->rt, api->actor, "api stopping");
    wait_sem(&api->stopped, "stop");
    /* The runtime releases the name just after fini: wait for that, so
     * that an api started after this returns can take the name again. */
    for (int i = 0; i < 5000; i++) {
        lm_addr at;
        if (lm_rt_whereis(api->rt, api->name, &at) != LM_OK || !lm_addr_eq(at, api->actor)) {
            break;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    api_free(api);
}

int
lm_api_port(const lm_api *api)
{
    return api->port;
}

lm_addr
lm_api_addr(const lm_api *api)
{
    return api->actor;
}

const char *
lm_api_version(const lm_api *api)
{
    return api->version;
}
