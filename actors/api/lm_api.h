/*
 * lm_api.h: the REST API server: HTTP/1.1 with JSON bodies, served by
 * libevent's evhttp on the loop of one actor (`api`), with a router that
 * the endpoints plug into.
 *
 * lm_api_start binds the listening socket in the caller (so that a port
 * in use is reported at once), spawns the `api` actor and waits until the
 * actor serves. From then on every request is read, routed and answered
 * on that actor's loop; handlers run there, one at a time, and must never
 * block (they ask other actors by message; long work belongs elsewhere).
 *
 * Routing: a route is a method and a path pattern of '/'-separated
 * segments, each a literal or a parameter "{name}" that matches one
 * non-empty segment ("/api/v1/pipelines/{id}"). Segments are compared
 * after percent-decoding; one trailing '/' is ignored. When several
 * routes match, the one with more literal segments wins (so
 * "/pipelines/validate" beats "/pipelines/{id}"). A path no route matches
 * gets 404; a path that matches only routes of other methods gets 405
 * with an Allow header naming them.
 *
 * Requests: the body (at most max_body_bytes, else 413) is parsed as JSON
 * before the handler runs; malformed JSON gets 400 naming the line and
 * column, and the handler is not called. An empty body is a NULL body.
 *
 * Responses: every response the router or a handler makes is JSON with
 * Content-Type: application/json. Errors are
 *   {"error": {"code": "...", "message": "...", ...more fields}}
 * with status 400 (malformed or invalid input), 404 (unknown), 405, 409
 * (wrong state), 413 (too large) or 500 (internal). Two exceptions come
 * from evhttp itself and are not JSON: a request that is not HTTP at all
 * (400, connection closed) and a body larger than twice max_body_bytes
 * (413, read to its end and then the connection closed); bodies above the
 * limit and below that get the JSON 413.
 *
 * Deferred answers: a handler that must ask other actors first calls
 * lm_api_defer, which keeps the request open after the handler returns,
 * and later (from any thread) lm_api_complete or lm_api_complete_error
 * answers it. The answer is sent on the api actor's loop. A deferred
 * request not completed within defer_timeout_ms gets 504
 * {"error": {"code": "timeout", ...}}; one whose client hangs up (closes
 * or half-closes its side, as curl never does) is dropped; when the api
 * stops, the open ones get 503 {"error": {"code": "unavailable", ...}}
 * (best effort: lm_api_stop waits up to 2 s for those to be written).
 * In all these cases the handle stays valid until lm_api_complete is
 * called on it, which then frees it and returns an error code.
 *
 * Threads: lm_api_start and lm_api_stop block; call them from a thread
 * that is not one of the runtime's loops. lm_api_route may be called from
 * any thread at any time. Call lm_api_stop before lm_rt_free.
 */
#ifndef LM_API_H
#define LM_API_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lm_config.h"
#include "lm_err.h"
#include "lm_rt.h"

/* What GET /api/v1/healthz reports when opts->version is NULL. */
#define LM_API_VERSION "0.1.0"

/* Default and limits of max_body_bytes. */
#define LM_API_DEFAULT_MAX_BODY (1u << 20)

/* Path parameters one route can have. */
#define LM_API_MAX_PARAMS 8

typedef struct lm_api lm_api;

/* One request, borrowed by the handler for the call. */
typedef struct lm_api_req {
    lm_api *api;          /* the server */
    const char *method;   /* "GET", "POST", "PUT", "PATCH", "DELETE", ... */
    const char *path;     /* the path as sent (not decoded), without the query */
    json_t *body;         /* the parsed body, borrowed; NULL when the body is empty */
    const char *raw_body; /* the body's bytes (not NUL-terminated), NULL when empty */
    size_t raw_len;       /* their count */
    int nparams;          /* path parameters matched */
    struct {
        const char *name;  /* the parameter's name in the pattern, without braces */
        const char *value; /* the segment, percent-decoded */
    } params[LM_API_MAX_PARAMS];
    void *priv_; /* the router's (the query parameters) */
} lm_api_req;

/* What a handler answers: status and JSON body. The response starts as
 * status 200 with no body. */
typedef struct lm_api_resp {
    int status;   /* HTTP status */
    json_t *body; /* a reference the response owns (stolen on set), NULL = none yet */
} lm_api_resp;

/* A handler. Runs on the api actor's loop; must not block. Returns LM_OK
 * when resp is the answer (any status: an error made with lm_api_error
 * too). A negative LM_E* code with resp->body set sends resp as it is (a
 * status below 400 becomes the code's status); without a body the router
 * answers the code's status with a generic error (LM_EINVAL 400,
 * LM_ENOTFOUND 404, LM_ESTATE and LM_EEXIST 409, LM_ETOOBIG 413,
 * LM_ECLOSED 503, LM_ETIMEDOUT 504, anything else 500). A 2xx response
 * without a body sends {}. After a successful lm_api_defer the return
 * value and resp are ignored (resp's body is released): the answer is
 * the one given to lm_api_complete. */
typedef int (*lm_api_handler)(const lm_api_req *req, lm_api_resp *resp, void *arg);

/* A route of the table given in lm_api_opts. */
typedef struct lm_api_route_def {
    const char *method;  /* "GET", ... */
    const char *pattern; /* "/api/v1/pipelines/{id}" */
    lm_api_handler fn;
    void *arg; /* handed to fn */
} lm_api_route_def;

typedef struct lm_api_opts {
    const char *bind;               /* listen address (IP literal or host); NULL = "127.0.0.1" */
    int port;                       /* 0 = an ephemeral port (see lm_api_port) */
    size_t max_body_bytes;          /* largest request body; 0 = 1 MiB */
    const lm_api_route_def *routes; /* routes to add before serving; may be NULL */
    size_t nroutes;                 /* their count */
    const char *version;            /* the version healthz reports; NULL = LM_API_VERSION */
    int loop;                       /* the runtime loop to run on; -1 = any */
    const char *name;               /* the actor's registered name; NULL = "api" */
    int timeout_s;                  /* idle/read/write timeout of a connection; 0 = 60 */
    int defer_timeout_ms;           /* a deferred request's answer time limit; 0 = 30000 */
} lm_api_opts;

#define LM_API_OPTS_DEFAULTS ((lm_api_opts){NULL, 0, 0, NULL, 0, NULL, -1, NULL, 0, 0})

/* Fills opts from the configuration's api section (bind, port,
 * max_body_bytes); other fields get their defaults. The strings point
 * into cfg. */
void lm_api_opts_from_config(const lm_config *cfg, lm_api_opts *opts);

/* Binds opts->bind:opts->port, spawns the api actor on rt and waits until
 * it serves. On LM_OK *out is the server (stop it with lm_api_stop).
 * Errors, with err saying what: LM_EINVAL (bad options or route table),
 * LM_EADDRINUSE (the port is taken), LM_EIO (the address cannot be
 * resolved or bound), LM_ENOMEM, or the spawn's error (LM_ECLOSED when
 * the runtime is stopping). err may be NULL. */
int lm_api_start(lm_rt *rt, const lm_api_opts *opts, lm_api **out, lm_error *err);

/* Stops the actor (open connections are closed, requests being read are
 * dropped), closes the socket and frees api. NULL is a no-op. */
void lm_api_stop(lm_api *api);

/* The bound port (the ephemeral one when opts->port was 0). */
int lm_api_port(const lm_api *api);

/* The api actor's address, for the messages of handlers' helpers. */
lm_addr lm_api_addr(const lm_api *api);

/* The version string healthz reports (borrowed from api). */
const char *lm_api_version(const lm_api *api);

/* Adds a route; callable from any thread, also while serving. Returns
 * LM_OK; LM_EINVAL for an empty method, a pattern that does not start
 * with '/', an empty or malformed "{...}" segment, more than
 * LM_API_MAX_PARAMS parameters, or a NULL fn; LM_EEXIST when the same
 * method and pattern (parameter names aside) is already routed;
 * LM_ENOMEM. */
int lm_api_route(lm_api *api, const char *method, const char *pattern, lm_api_handler fn,
                 void *arg);

/* --- inside handlers ---------------------------------------------------- */

/* The value of path parameter name, or NULL. */
const char *lm_api_param(const lm_api_req *req, const char *name);

/* The value of query parameter name (percent-decoded; the first when
 * repeated), or NULL when absent. */
const char *lm_api_query(const lm_api_req *req, const char *name);

/* Sets resp's body to body, taking the reference (the old body is
 * released), and its status. Returns LM_OK, or LM_ENOMEM when body is
 * NULL (a failed json_pack). */
int lm_api_reply(lm_api_resp *resp, int status, json_t *body);

/* Sets resp to status and {"error": {"code": code, "message": ...}};
 * returns the LM_E* code of the status (LM_EINVAL for 400, LM_ENOTFOUND
 * 404, LM_ESTATE 409, LM_ETOOBIG 413, LM_ECLOSED 503, LM_ETIMEDOUT 504,
 * LM_EFAILED others), so a handler
 * may `return lm_api_error(resp, 400, "invalid_request", "...")`. More
 * fields go into the error object with lm_api_error_set. */
int lm_api_error(lm_api_resp *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Adds key = value (stolen) to the error object of resp made by
 * lm_api_error. Ignored when resp holds no error. */
void lm_api_error_set(lm_api_resp *resp, const char *key, json_t *value);

/* The LM_E* code matching an HTTP error status, and back. */
int lm_api_status_code(int status);
int lm_api_code_status(int code);

/* The error code word of an HTTP status: "invalid_request" (400),
 * "not_found", "method_not_allowed", "conflict" (409), "too_large",
 * "unavailable" (503), "timeout" (504), else "internal". */
const char *lm_api_status_name(int status);

/* --- deferred answers -------------------------------------------------- */

/* A request kept open by lm_api_defer, to be answered later. */
typedef struct lm_api_pending lm_api_pending;

/* From inside a handler, on the api actor's loop: keeps req open after
 * the handler returns; *out is the handle to answer it with. req and all
 * it points to (body, params, query) are still only valid during the
 * handler call: copy what the answer needs. At most once per request.
 * Returns LM_OK; LM_EINVAL (not called from a handler, or called twice),
 * LM_ECLOSED (the api is stopping: return that code, the client gets
 * 503) or LM_ENOMEM.
 *
 * Ownership: the caller owns *out until it passes it to lm_api_complete
 * (or lm_api_complete_error), which must be called exactly once per
 * handle, from any thread, even when the answer is no longer wanted:
 * the handle stays valid until then whatever happens to the request, the
 * connection or the api (also after lm_api_stop and lm_rt_free). */
int lm_api_defer(const lm_api_req *req, lm_api_pending **out);

/* Answers the deferred request p with status and body (stolen; NULL =
 * what the router sends for a handler's response without a body: {} for
 * a 2xx, a generic error otherwise) and frees p. Callable from any
 * thread, also from inside the handler that deferred. The reply is sent
 * on the api actor's loop. Returns LM_OK when the answer was taken for
 * sending; LM_ETIMEDOUT when the request had already got its 504;
 * LM_ECLOSED when the client hung up or the api stopped; the answer is
 * then dropped. LM_EINVAL for a NULL p (body is still released). */
int lm_api_complete(lm_api_pending *p, int status, json_t *body);

/* lm_api_complete with the error body lm_api_error makes. */
int lm_api_complete_error(lm_api_pending *p, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Deferred requests of api still open (not completed, timed out or
 * dropped). Any thread; for tests and metrics. */
size_t lm_api_pending_count(lm_api *api);

/* --- checking request bodies ------------------------------------------- */

typedef enum lm_api_type {
    LM_API_STRING,  /* a JSON string */
    LM_API_INTEGER, /* a JSON integer within [min, max] */
    LM_API_BOOLEAN, /* true or false */
    LM_API_OBJECT,  /* an object */
    LM_API_ARRAY,   /* an array */
    LM_API_ANY,     /* any value, null included */
} lm_api_type;

/* One field of an object body. */
typedef struct lm_api_field {
    const char *name;
    lm_api_type type;
    bool required;
    int64_t min, max; /* LM_API_INTEGER's range (inclusive); both 0 = any */
} lm_api_field;

/* Checks that the body is an object whose members are all among the n
 * fields, of the right types and ranges, with every required field
 * present. Returns LM_OK, or LM_EINVAL with resp set to 400
 * "invalid_request" whose message (and "field" member) names the field;
 * an empty body is "a JSON object body is required". */
int lm_api_check_body(const lm_api_req *req, const lm_api_field *fields, size_t n,
                      lm_api_resp *resp);

#endif /* LM_API_H */
