/*
 * lm_http.c: laminarctl's blocking HTTP/1.1 client (see lm_http.h).
 *
 * The socket is non-blocking from the start so that every wait (the
 * connect, each send, each receive) is a poll() bounded by what is left
 * of the deadline. The request goes out as one buffer (headers and body
 * together, so that Nagle's algorithm never holds the body back waiting
 * for the server's delayed ACK). The answer is gathered in one growing
 * buffer; after each read the parser checks whether the answer is
 * complete: the header block is parsed once, a chunked body is decoded
 * in place as its chunks arrive.
 */
#include "lm_http.h"
#include "lm_time.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lm_rowfmt.h" /* lm_buf */

/* --- URLs ---------------------------------------------------------------- */

/* Copies n bytes of s into out (cap bytes); false when they do not fit. */
static bool
copy_part(char *out, size_t cap, const char *s, size_t n)
{
    if (n >= cap) {
        return false;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static int
parse_port(const char *s, size_t n, int *port, lm_error *err)
{
    long v = 0;

    if (n == 0 || n > 5) {
        return lm_error_set(err, LM_EINVAL, "bad port '%.*s' (want 1..65535)", (int)n, s);
    }
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return lm_error_set(err, LM_EINVAL, "bad port '%.*s' (want 1..65535)", (int)n, s);
        }
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535) {
        return lm_error_set(err, LM_EINVAL, "bad port '%.*s' (want 1..65535)", (int)n, s);
    }
    *port = (int)v;
    return LM_OK;
}

int
lm_http_url_parse(const char *text, int default_port, lm_http_url *out, lm_error *err)
{
    const char *p = text, *sep, *auth_end, *host, *colon = NULL;
    size_t host_len;
    bool bracketed = false;

    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0') {
        return lm_error_set(err, LM_EINVAL, "empty server address");
    }
    if ((sep = strstr(text, "://")) != NULL) {
        size_t n = (size_t)(sep - text);
        if (n == 5 && strncasecmp(text, "https", 5) == 0) {
            return lm_error_set(err, LM_EINVAL,
                                "%s: https is not supported (laminarctl speaks plain http)", text);
        }
        if (n != 4 || strncasecmp(text, "http", 4) != 0) {
            return lm_error_set(err, LM_EINVAL, "%s: unsupported scheme '%.*s' (want http://)",
                                text, (int)n, text);
        }
        p = sep + 3;
        default_port = 80;
    }
    if (strpbrk(p, "?#@ \t\r\n") != NULL) {
        return lm_error_set(err, LM_EINVAL,
                            "%s: want [http://]HOST[:PORT][/PREFIX] (no credentials, query, "
                            "fragment or spaces)",
                            text);
    }
    auth_end = p + strcspn(p, "/");
    host = p;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(auth_end - p));
        if (close == NULL) {
            return lm_error_set(err, LM_EINVAL, "%s: unterminated '[' in the host", text);
        }
        host = p + 1;
        host_len = (size_t)(close - host);
        bracketed = true;
        if (close + 1 < auth_end) {
            if (close[1] != ':') {
                return lm_error_set(err, LM_EINVAL, "%s: unexpected text after ']'", text);
            }
            colon = close + 1;
        }
    } else {
        colon = memchr(p, ':', (size_t)(auth_end - p));
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(auth_end - colon - 1)) != NULL) {
            return lm_error_set(err, LM_EINVAL, "%s: write an IPv6 host in brackets ([::1]:8001)",
                                text);
        }
        host_len = (size_t)((colon != NULL ? colon : auth_end) - host);
    }
    if (host_len == 0) {
        return lm_error_set(err, LM_EINVAL, "%s: no host", text);
    }
    if (!copy_part(out->host, sizeof(out->host), host, host_len)) {
        return lm_error_set(err, LM_EINVAL, "%s: host name too long", text);
    }
    out->port = default_port;
    if (colon != NULL &&
        parse_port(colon + 1, (size_t)(auth_end - colon - 1), &out->port, err) != LM_OK) {
        lm_error_prefix(err, "%s", text);
        return LM_EINVAL;
    }
    if (out->port < 1 || out->port > 65535) {
        return lm_error_set(err, LM_EINVAL, "%s: no port", text);
    }
    size_t base_len = strlen(auth_end);
    while (base_len > 0 && auth_end[base_len - 1] == '/') {
        base_len--;
    }
    if (!copy_part(out->base, sizeof(out->base), auth_end, base_len)) {
        return lm_error_set(err, LM_EINVAL, "%s: path prefix too long", text);
    }
    snprintf(out->text, sizeof(out->text), "http://%s%s%s:%d%s", bracketed ? "[" : "", out->host,
             bracketed ? "]" : "", out->port, out->base);
    return LM_OK;
}

/* --- the socket ------------------------------------------------------------ */

/* Waits until fd is ready for events or until the deadline; returns
 * LM_OK (ready, or an error condition the next call will report) or
 * LM_ETIMEDOUT. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {fd, events, 0};

    for (;;) {
        int64_t left = deadline - lm_clock_mono_ms();
        int n;
        if (left <= 0) {
            return LM_ETIMEDOUT;
        }
        n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0) {
            return LM_OK;
        }
        if (n < 0 && errno != EINTR) {
            return LM_OK; /* let the caller's send or recv say what is wrong */
        }
    }
}

/* One connect attempt to ai, bounded by deadline. Returns the connected
 * socket, or -1 with errno set. */
static int
connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1, soerr = 0;
    socklen_t len = sizeof(soerr);

    if (fd < 0) {
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            goto fail;
        }
        if (wait_fd(fd, POLLOUT, deadline) != LM_OK) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
            goto fail;
        }
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
fail : {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
}

/* Connects to url, trying each address in turn. Returns the socket in
 * *fd, or LM_ENOTFOUND / LM_ENOROUTE with the bare reason in err. */
static int
connect_url(const lm_http_url *url, int connect_ms, int64_t deadline, int *fd, lm_error *err)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    int rv, last = ECONNREFUSED;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", url->port);
    if ((rv = getaddrinfo(url->host, port, &hints, &res)) != 0) {
        return lm_error_set(err, LM_ENOTFOUND, "%s",
                            rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv));
    }
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int64_t d = lm_clock_mono_ms() + connect_ms;
        if ((*fd = connect_one(ai, d < deadline ? d : deadline)) >= 0) {
            freeaddrinfo(res);
            return LM_OK;
        }
        last = errno;
    }
    freeaddrinfo(res);
    return lm_error_set(err, LM_ENOROUTE, "%s", strerror(last));
}

/* Sends all of b; returns LM_OK, LM_ETIMEDOUT or LM_EIO (errno kept). */
static int
send_all(int fd, const lm_buf *b, int64_t deadline)
{
    size_t off = 0;

    while (off < b->len) {
        ssize_t n = send(fd, b->p + off, b->len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, deadline) != LM_OK) {
                return LM_ETIMEDOUT;
            }
        } else if (n < 0 && errno != EINTR) {
            return LM_EIO;
        }
    }
    return LM_OK;
}

/* --- the answer -------------------------------------------------------------- */

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

/* What is known of the answer being read. */
typedef struct reader {
    lm_buf in;           /* everything received, NUL-terminated (a chunked body decoded
                            in place) */
    size_t head_len;     /* length of the header block; 0 while it is incomplete */
    enum body_mode mode; /* how the body ends */
    size_t want;         /* BODY_LENGTH: the Content-Length */
    size_t dst;          /* BODY_CHUNKED: end of the decoded body */
    size_t src;          /* BODY_CHUNKED: start of the next chunk's size line */
    bool trailers;       /* BODY_CHUNKED: the last chunk came; reading trailers */
    lm_http_response *resp;
} reader;

/* The end of the line starting at off (the offset just past its '\n'),
 * or 0 when the line is incomplete. *line_len gets its length without
 * "\r\n" or "\n". */
static size_t
line_end(const lm_buf *b, size_t off, size_t *line_len)
{
    const char *nl = memchr(b->p + off, '\n', b->len - off);
    size_t n;

    if (nl == NULL) {
        return 0;
    }
    n = (size_t)(nl - (b->p + off));
    if (n > 0 && b->p[off + n - 1] == '\r') {
        n--;
    }
    *line_len = n;
    return (size_t)(nl - b->p) + 1;
}

static bool
parse_size(const char *s, size_t n, int base, size_t *out)
{
    size_t v = 0;

    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int d;
        if (isdigit((unsigned char)s[i])) {
            d = s[i] - '0';
        } else if (base == 16 && isxdigit((unsigned char)s[i])) {
            d = tolower((unsigned char)s[i]) - 'a' + 10;
        } else {
            return false;
        }
        if (v > (SIZE_MAX - (size_t)d) / (size_t)base) {
            return false;
        }
        v = v * (size_t)base + (size_t)d;
    }
    *out = v;
    return true;
}

/* Trims spaces and tabs around s[0..*n). */
static const char *
trim(const char *s, size_t *n)
{
    while (*n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        (*n)--;
    }
    while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t')) {
        (*n)--;
    }
    return s;
}

/* Parses the status line and headers in r->in[0..end). Returns LM_OK or
 * LM_EPROTO. */
static int
parse_head(reader *r, size_t end, lm_error *err)
{
    size_t off, n, next;
    const char *s = r->in.p;
    bool have_length = false;

    next = line_end(&r->in, 0, &n);
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != ' ' ||
        !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
        !isdigit((unsigned char)s[11]) || (n > 12 && s[12] != ' ') || s[9] == '0') {
        return lm_error_set(err, LM_EPROTO, "the answer is not HTTP/1.x (it starts '%.*s')",
                            (int)(n < 40 ? n : 40), s);
    }
    r->resp->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (n > 13) {
        copy_part(r->resp->reason, sizeof(r->resp->reason), s + 13,
                  n - 13 < sizeof(r->resp->reason) ? n - 13 : sizeof(r->resp->reason) - 1);
    }
    r->resp->content_type[0] = '\0';
    r->mode = BODY_CLOSE;
    for (off = next; off < end; off = next) {
        const char *line = s + off, *colon, *value;
        size_t vlen;
        next = line_end(&r->in, off, &n);
        if (n == 0) {
            break; /* the empty line ending the block */
        }
        if ((colon = memchr(line, ':', n)) == NULL || colon == line) {
            return lm_error_set(err, LM_EPROTO, "malformed header line '%.*s'",
                                (int)(n < 60 ? n : 60), line);
        }
        vlen = n - (size_t)(colon + 1 - line);
        value = trim(colon + 1, &vlen);
        if ((size_t)(colon - line) == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            size_t v;
            if (!parse_size(value, vlen, 10, &v) || (have_length && v != r->want)) {
                return lm_error_set(err, LM_EPROTO, "bad Content-Length '%.*s'", (int)vlen, value);
            }
            r->want = v;
            have_length = true;
            if (r->mode != BODY_CHUNKED) {
                r->mode = BODY_LENGTH;
            }
        } else if ((size_t)(colon - line) == 17 &&
                   strncasecmp(line, "Transfer-Encoding", 17) == 0) {
            if (vlen < 7 || strncasecmp(value + vlen - 7, "chunked", 7) != 0) {
                return lm_error_set(err, LM_EPROTO, "unsupported Transfer-Encoding '%.*s'",
                                    (int)vlen, value);
            }
            r->mode = BODY_CHUNKED; /* it wins over a Content-Length */
        } else if ((size_t)(colon - line) == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
            copy_part(r->resp->content_type, sizeof(r->resp->content_type), value,
                      vlen < sizeof(r->resp->content_type) ? vlen
                                                           : sizeof(r->resp->content_type) - 1);
        }
    }
    if (r->resp->status < 200 || r->resp->status == 204 || r->resp->status == 304) {
        r->mode = BODY_NONE;
    }
    r->dst = r->src = end;
    return LM_OK;
}

/* The end of the header block (just past its empty line), or 0. */
static size_t
head_end(const lm_buf *b)
{
    size_t off = 0, n, next;

    while ((next = line_end(b, off, &n)) != 0) {
        if (n == 0 && off > 0) {
            return next;
        }
        off = next;
    }
    return 0;
}

/* Decodes the chunks received so far; returns 1 when the body is
 * complete, 0 when more is needed, or LM_EPROTO. */
static int
decode_chunks(reader *r, lm_error *err)
{
    size_t n, next, size;

    while ((next = line_end(&r->in, r->src, &n)) != 0) {
        const char *line = r->in.p + r->src;
        if (r->trailers) {
            r->src = next;
            if (n == 0) {
                return 1;
            }
            continue;
        }
        size_t digits = 0;
        while (digits < n && line[digits] != ';') {
            digits++; /* chunk extensions after ';' are ignored */
        }
        line = trim(line, &digits);
        if (!parse_size(line, digits, 16, &size)) {
            return lm_error_set(err, LM_EPROTO, "bad chunk size line '%.*s'",
                                (int)(n < 40 ? n : 40), r->in.p + r->src);
        }
        if (size == 0) {
            r->trailers = true;
            r->src = next;
            continue;
        }
        if (size > SIZE_MAX - 2) {
            return lm_error_set(err, LM_EPROTO, "chunk too large");
        }
        if (r->in.len - next < size + 2) {
            return 0; /* the chunk's data and its line end are not all here */
        }
        memmove(r->in.p + r->dst, r->in.p + next, size);
        r->dst += size;
        r->src = next + size;
        if (r->in.p[r->src] == '\r') {
            r->src++;
        }
        if (r->in.p[r->src] != '\n') {
            return lm_error_set(err, LM_EPROTO, "chunk data not followed by CRLF");
        }
        r->src++;
    }
    return 0;
}

/* Checks what r->in holds after a read (eof: the server closed its side).
 * Returns 1 when the answer is complete (resp filled), 0 when more is
 * needed, or an error. */
static int
check_answer(reader *r, bool eof, lm_error *err)
{
    int rv;

    while (r->head_len == 0) {
        size_t end = head_end(&r->in);
        if (end == 0) {
            if (eof) {
                return lm_error_set(err, LM_EIO,
                                    r->in.len == 0
                                        ? "the server closed the connection without answering"
                                        : "the server closed the connection in the middle of "
                                          "the answer's headers");
            }
            return 0;
        }
        if ((rv = parse_head(r, end, err)) != LM_OK) {
            return rv;
        }
        if (r->resp->status >= 100 && r->resp->status < 200 && r->resp->status != 101) {
            /* an interim answer (100 Continue): drop it, the real one follows */
            memmove(r->in.p, r->in.p + end, r->in.len - end + 1);
            r->in.len -= end;
            continue;
        }
        r->head_len = end;
    }
    switch (r->mode) {
    case BODY_NONE: r->dst = r->head_len; break;
    case BODY_LENGTH:
        if (r->in.len - r->head_len < r->want) {
            if (eof) {
                return lm_error_set(err, LM_EIO,
                                    "the server closed the connection after %zu of the %zu "
                                    "bytes of its answer's body",
                                    r->in.len - r->head_len, r->want);
            }
            return 0;
        }
        r->dst = r->head_len + r->want;
        break;
    case BODY_CHUNKED:
        if ((rv = decode_chunks(r, err)) <= 0) {
            if (rv == 0 && eof) {
                return lm_error_set(err, LM_EIO,
                                    "the server closed the connection in the middle of a "
                                    "chunked body");
            }
            return rv;
        }
        break;
    case BODY_CLOSE:
        if (!eof) {
            return 0;
        }
        r->dst = r->in.len;
        break;
    }
    return 1;
}

/* Reads until check_answer says the answer is complete, within deadline
 * (timeout_ms after the start, for the message). */
static int
read_answer(int fd, reader *r, size_t max, int64_t deadline, int timeout_ms, lm_error *err)
{
    for (;;) {
        ssize_t n;
        int rv;
        if (lm_buf_reserve(&r->in, 16384 + 1) != LM_OK) { /* and room for a NUL */
            return lm_error_set(err, LM_ENOMEM, "out of memory reading the answer");
        }
        n = recv(fd, r->in.p + r->in.len, r->in.cap - r->in.len - 1, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(fd, POLLIN, deadline) != LM_OK) {
                    return lm_error_set(err, LM_ETIMEDOUT, "no complete answer within %d ms",
                                        timeout_ms);
                }
                continue;
            }
            return lm_error_set(err, LM_EIO, "receiving the answer: %s", strerror(errno));
        }
        r->in.len += (size_t)n;
        r->in.p[r->in.len] = '\0';
        if (r->in.len > max) {
            return lm_error_set(err, LM_ETOOBIG, "the answer is larger than %zu bytes", max);
        }
        if ((rv = check_answer(r, n == 0, err)) != 0) {
            return rv < 0 ? rv : LM_OK;
        }
    }
}

/* --- the request ----------------------------------------------------------------- */

static int
build_request(const lm_http_url *url, const lm_http_request *req, lm_buf *out)
{
    bool v6 = strchr(url->host, ':') != NULL;
    int rv = lm_buf_printf(out,
                           "%s %s%s HTTP/1.1\r\n"
                           "Host: %s%s%s:%d\r\n"
                           "User-Agent: laminarctl\r\n"
                           "Accept: application/json\r\n"
                           "Connection: close\r\n",
                           req->method, url->base, req->path, v6 ? "[" : "", url->host,
                           v6 ? "]" : "", url->port);
    if (rv == LM_OK && req->body != NULL) {
        rv = lm_buf_printf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                           req->content_type != NULL ? req->content_type : "application/json",
                           req->body_len);
    }
    if (rv == LM_OK) {
        rv = lm_buf_append(out, "\r\n", 2);
    }
    if (rv == LM_OK && req->body != NULL) {
        rv = lm_buf_append(out, req->body, req->body_len);
    }
    return rv;
}

int
lm_http_do(const lm_http_url *url, const lm_http_request *req, lm_http_response *resp,
           lm_error *err)
{
    int connect_ms =
        req->connect_timeout_ms > 0 ? req->connect_timeout_ms : LM_HTTP_CONNECT_TIMEOUT_MS;
    int timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : LM_HTTP_TIMEOUT_MS;
    size_t max = req->max_response > 0 ? req->max_response : LM_HTTP_MAX_RESPONSE;
    int64_t deadline = lm_clock_mono_ms() + timeout_ms;
    lm_buf out;
    reader r;
    int fd = -1, rv, send_rv, send_errno = 0;

    lm_buf_init(&out);
    memset(resp, 0, sizeof(*resp));
    memset(&r, 0, sizeof(r));
    r.resp = resp;
    if (req->method == NULL || req->method[0] == '\0' || req->path == NULL || req->path[0] != '/') {
        return lm_error_set(err, LM_EINVAL, "bad request: want a method and a path from '/'");
    }
    if (build_request(url, req, &out) != LM_OK) {
        rv = lm_error_set(err, LM_ENOMEM, "out of memory building the request");
        goto fail;
    }
    if ((rv = connect_url(url, connect_ms, deadline, &fd, err)) != LM_OK) {
        goto fail;
    }
    /* A server may answer and close before it has read all of a request
     * (a body too large): then the answer it sent is what counts, and the
     * send error is reported only when no answer can be read. */
    if ((send_rv = send_all(fd, &out, deadline)) == LM_EIO) {
        send_errno = errno;
    }
    if (send_rv == LM_ETIMEDOUT) {
        rv = lm_error_set(err, LM_ETIMEDOUT, "the request was not sent within %d ms", timeout_ms);
        goto fail;
    }
    if ((rv = read_answer(fd, &r, max, deadline, timeout_ms, err)) != LM_OK) {
        if (send_rv == LM_EIO) {
            rv = lm_error_set(err, LM_EIO, "sending the request: %s", strerror(send_errno));
        }
        goto fail;
    }
    close(fd);
    lm_buf_fini(&out);
    /* the body moves to the front of the buffer, which resp then owns */
    memmove(r.in.p, r.in.p + r.head_len, r.dst - r.head_len);
    resp->body_len = r.dst - r.head_len;
    resp->body = r.in.p;
    resp->body[resp->body_len] = '\0';
    return LM_OK;

fail:
    if (fd >= 0) {
        close(fd);
    }
    lm_buf_fini(&out);
    lm_buf_fini(&r.in);
    memset(resp, 0, sizeof(*resp));
    return rv;
}

void
lm_http_response_fini(lm_http_response *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}
