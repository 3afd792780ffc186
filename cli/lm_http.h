/*
 * lm_http.h: a tiny blocking HTTP/1.1 client over a TCP socket, enough
 * for laminarctl to talk to the REST API: one request per connection
 * ("Connection: close"), no TLS, no redirects, no proxies.
 *
 * A request connects (each address the host resolves to in turn, each
 * attempt bounded by the connect timeout), sends the request line, the
 * headers (Host, User-Agent, Accept, Connection: close, and with a body
 * Content-Type and Content-Length) and the body, then reads the answer:
 * interim 1xx answers are skipped; the body is read by its
 * Content-Length, by chunked transfer coding, or up to the close of the
 * connection when the answer gives neither. The whole exchange, connect
 * included, is bounded by the request timeout.
 */
#ifndef LM_HTTP_H
#define LM_HTTP_H

#include <stddef.h>

#include "lm_err.h"

#define LM_HTTP_CONNECT_TIMEOUT_MS 5000        /* default bound of one connect attempt */
#define LM_HTTP_TIMEOUT_MS         60000       /* default bound of a whole request */
#define LM_HTTP_MAX_RESPONSE       (64u << 20) /* default largest answer (headers + body) */

/* A server's address as the user wrote it, parsed. */
typedef struct lm_http_url {
    char host[256]; /* host name or IP literal (IPv6 without its brackets) */
    int port;       /* 1..65535 */
    char base[512]; /* path prefix requests go under, without a trailing '/'; "" = none */
    char text[900]; /* the canonical form for messages: "http://host:port" + base */
} lm_http_url;

/* Parses "http://HOST[:PORT][/PREFIX]" or "HOST[:PORT][/PREFIX]" (HOST a
 * name, an IPv4 literal or a bracketed IPv6 literal "[::1]") into *out.
 * A missing port is 80 after "http://" and default_port without a scheme
 * (a bare "host:port" address names a Laminar API, not a web site).
 * Returns LM_OK, or LM_EINVAL with err saying why: an empty text, the
 * scheme "https" ("not supported") or any other scheme but "http", a
 * missing host, a port that is not a number in 1..65535, a query or
 * fragment, or a part too long. err may be NULL. */
int lm_http_url_parse(const char *text, int default_port, lm_http_url *out, lm_error *err);

/* One request. Fields left 0/NULL take the defaults. */
typedef struct lm_http_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* starts with '/'; sent after the url's base */
    const char *content_type; /* of the body; NULL = "application/json" */
    const char *body;         /* NULL = no body (and no Content-Length) */
    size_t body_len;          /* its length */
    int connect_timeout_ms;   /* one connect attempt; 0 = LM_HTTP_CONNECT_TIMEOUT_MS */
    int timeout_ms;           /* the whole exchange; 0 = LM_HTTP_TIMEOUT_MS */
    size_t max_response;      /* largest answer accepted; 0 = LM_HTTP_MAX_RESPONSE */
} lm_http_request;

/* An answer. Owned by the caller: release with lm_http_response_fini. */
typedef struct lm_http_response {
    int status;             /* 100..999 */
    char reason[64];        /* the reason phrase ("Not Found"), maybe truncated; may be "" */
    char content_type[128]; /* the Content-Type header, "" when absent */
    char *body;             /* the body, NUL-terminated (the NUL not counted); never NULL */
    size_t body_len;        /* its length */
} lm_http_response;

/* Sends req to url and reads the answer into *resp (any status: a 404 is
 * a successful exchange). Returns LM_OK; on error *resp holds nothing to
 * release, and err (may be NULL) says what happened:
 *   LM_ENOTFOUND  the host name cannot be resolved; err's message is only
 *                 the resolver's reason, so that callers can frame it
 *   LM_ENOROUTE   no connection could be made; err's message is only the
 *                 reason ("Connection refused", "Connection timed out")
 *   LM_ETIMEDOUT  connected, but the answer was not complete in time
 *   LM_EIO        sending or receiving failed, or the server closed the
 *                 connection before the answer was complete
 *   LM_EPROTO     the answer is not well-formed HTTP/1.x
 *   LM_ETOOBIG    the answer is larger than max_response
 *   LM_EINVAL     a bad request (no method, a path not starting with '/')
 *   LM_ENOMEM */
int lm_http_do(const lm_http_url *url, const lm_http_request *req, lm_http_response *resp,
               lm_error *err);

/* Frees what resp holds and clears it. Safe on a cleared response. */
void lm_http_response_fini(lm_http_response *resp);

#endif /* LM_HTTP_H */
