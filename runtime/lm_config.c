/*
 * lm_config.c: the configuration schema, and the loaders that fill an
 * lm_config from defaults, a YAML file (libyaml's document API, so every
 * node carries its line and column), the environment and --set overrides.
 *
 * Everything is driven by the `keys` table below: one row per key with its
 * type, field offset, default text, range or words, environment alias and
 * doc. A loader never writes the caller's struct directly: it works on a
 * deep copy and swaps it in only when the whole layer was valid, so a
 * failed load leaves the configuration as it was.
 */
#include "lm_config.h"
#include "lm_text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

/* --- the schema ---------------------------------------------------------- */

typedef enum key_type {
    T_STRING,   /* char *: any UTF-8 text */
    T_URL,      /* char *: text starting with one of the row's schemes */
    T_ENUM,     /* int-sized C enum: position of the word in the row's words */
    T_BOOL,     /* bool */
    T_INT,      /* int64_t within [min, max] */
    T_DURATION, /* int64_t milliseconds within [min, max] */
    T_SIZE,     /* int64_t bytes within [min, max] */
} key_type;

enum {
    F_SECRET = 1u << 0,     /* the whole value is a secret */
    F_SECRET_URL = 1u << 1, /* a connection string whose password is a secret */
};

typedef struct cfg_key {
    const char *key;          /* dotted name: "worker.slots" */
    key_type type;            /* how the text is parsed and stored */
    size_t off;               /* offsetof the field in lm_config */
    const char *def;          /* the default, as text in the key's own syntax */
    int64_t min;              /* smallest value (int, duration, size) */
    int64_t max;              /* largest value (int, duration, size) */
    const char *const *words; /* enum words or URL schemes, NULL-terminated */
    const char *env_alias;    /* accepted besides LAMINAR_<KEY>; NULL = none */
    unsigned flags;           /* F_SECRET, F_SECRET_URL */
    const char *doc;          /* one-line description */
} cfg_key;

/* Offsets checked against the field's type at compile time: a row whose
 * type does not match its field does not compile. */
#define OFF_STR(f)  _Generic(((lm_config *)0)->f, char * : offsetof(lm_config, f))
#define OFF_I64(f)  _Generic(((lm_config *)0)->f, int64_t : offsetof(lm_config, f))
#define OFF_BOOL(f) _Generic(((lm_config *)0)->f, bool : offsetof(lm_config, f))
#define OFF_ENUM(f) offsetof(lm_config, f) /* int-sized: asserted below */

_Static_assert(sizeof(lm_log_level) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(lm_log_format) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(lm_config_db_type) == sizeof(int), "enum fields are stored as int");

#define KiB     ((int64_t)1 << 10)
#define MiB     ((int64_t)1 << 20)
#define GiB     ((int64_t)1 << 30)
#define MS_HOUR ((int64_t)3600 * 1000)
#define DUR_MAX (8760 * MS_HOUR) /* one year: keeps deadline arithmetic far from overflow */

/* One row per key; the field's type is checked by OFF_*. */
/* clang-format off */
#define K_STR(k, f, def, env, flags, doc) {k, T_STRING, OFF_STR(f), def, 0, 0, NULL, env, flags, doc}
#define K_URL(k, f, def, schemes, env, doc) {k, T_URL, OFF_STR(f), def, 0, 0, schemes, env, 0, doc}
#define K_ENUM(k, f, def, words, env, doc) {k, T_ENUM, OFF_ENUM(f), def, 0, 0, words, env, 0, doc}
#define K_BOOL(k, f, def, env, doc) {k, T_BOOL, OFF_BOOL(f), def, 0, 0, NULL, env, 0, doc}
#define K_INT(k, f, def, lo, hi, env, doc) {k, T_INT, OFF_I64(f), def, lo, hi, NULL, env, 0, doc}
#define K_DUR(k, f, def, lo, env, doc) {k, T_DURATION, OFF_I64(f), def, lo, DUR_MAX, NULL, env, 0, doc}
#define K_SIZE(k, f, def, lo, hi, env, doc) {k, T_SIZE, OFF_I64(f), def, lo, hi, NULL, env, 0, doc}
/* clang-format on */

/* Enum words, in the order of the C enum's values. */
static const char *const db_types[] = {"sqlite", "postgres", NULL};
static const char *const log_levels[] = {"trace", "debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
_Static_assert(LM_LOG_ERROR == 4 && LM_LOG_JSON == 1 && LM_CONFIG_DB_POSTGRES == 1,
               "the words above follow the enums");
static const char *const storage_schemes[] = {"file://", "s3://", NULL};
static const char *const nng_schemes[] = {"tcp://", "ipc://", NULL};

/* Keys of one section must be contiguous (lm_config_dump nests by order). */
static const cfg_key keys[] = {
    K_INT("node.id", node.id, "0", 0, INT64_C(4294967295), NULL,
          "numeric id of this node; 0 = pick a random id at start"),
    K_STR("node.name", node.name, "", NULL, 0, "name of this node; empty = the host name"),
    K_STR("node.run_dir", node.run_dir, "/tmp/laminar", NULL, 0,
          "directory for ipc sockets and pid files"),

    K_INT("runtime.loops", runtime.loops, "0", 0, 256, NULL,
          "event loop threads; 0 = number of CPUs"),
    K_INT("runtime.mailbox_batch", runtime.mailbox_batch, "64", 1, 65536, NULL,
          "messages one actor handles per turn"),
    K_INT("runtime.batch_rows", runtime.batch_rows, "4096", 1, 1048576, NULL,
          "maximum rows per columnar batch"),

    K_SIZE("transport.max_message_bytes", transport.max_message_bytes, "64MiB", KiB, GiB, NULL,
           "largest message a node sends or accepts"),
    K_SIZE("transport.max_queued_bytes", transport.max_queued_bytes, "256MiB", MiB, 64 * GiB, NULL,
           "bytes queued per peer link before senders are held back"),
    K_INT("transport.send_buffer", transport.send_buffer, "256", 1, 65536, NULL,
          "nng messages buffered per socket"),
    K_DUR("transport.connect_timeout", transport.connect_timeout_ms, "5s", 1, NULL,
          "time allowed to connect to a peer"),
    K_DUR("transport.reconnect_min", transport.reconnect_min_ms, "100ms", 1, NULL,
          "first delay before reconnecting to a peer"),
    K_DUR("transport.reconnect_max", transport.reconnect_max_ms, "5s", 1, NULL,
          "longest delay between reconnects (the backoff doubles up to it)"),
    K_DUR("transport.peer_timeout", transport.peer_timeout_ms, "30s", 0, NULL,
          "how long messages wait for an unreachable node before they return to their senders"),

    K_ENUM("database.type", database.type, "sqlite", db_types, NULL,
           "metadata store: sqlite or postgres"),
    K_STR("database.sqlite.path", database.sqlite.path, "/tmp/laminar/laminar.db", NULL, 0,
          "SQLite database file"),
    K_STR("database.postgres.url", database.postgres.url, "", NULL, F_SECRET_URL,
          "libpq connection string or postgresql:// URL"),
    K_DUR("database.retry_max", database.retry_max_ms, "30s", 0, NULL,
          "how long to keep retrying an unreachable database"),

    K_STR("storage.s3.endpoint", storage.s3.endpoint, "", "LAMINAR_S3_ENDPOINT", 0,
          "S3 endpoint URL; empty = AWS for the region"),
    K_STR("storage.s3.region", storage.s3.region, "us-east-1", "LAMINAR_S3_REGION", 0, "S3 region"),
    K_STR("storage.s3.access_key_id", storage.s3.access_key_id, "", "LAMINAR_S3_ACCESS_KEY_ID", 0,
          "S3 access key id"),
    K_STR("storage.s3.secret_access_key", storage.s3.secret_access_key, "",
          "LAMINAR_S3_SECRET_ACCESS_KEY", F_SECRET, "S3 secret access key"),
    K_BOOL("storage.s3.path_style", storage.s3.path_style, "true", NULL,
           "path-style URLs (bucket in the path), as MinIO needs"),

    K_URL("checkpointing.url", checkpointing.url, "file:///tmp/laminar/checkpoints",
          storage_schemes, "LAMINAR_CHECKPOINT_URL", "where checkpoints are written"),
    K_DUR("checkpointing.interval", checkpointing.interval_ms, "10s", 1, NULL,
          "time between checkpoints"),
    K_DUR("checkpointing.timeout", checkpointing.timeout_ms, "10m", 1, NULL,
          "a checkpoint not complete by then fails"),
    K_INT("checkpointing.retained", checkpointing.retained, "3", 1, 1000, NULL,
          "completed checkpoints kept per job"),

    K_STR("api.bind", api.bind, "127.0.0.1", NULL, 0, "REST API listen address"),
    K_INT("api.port", api.port, "8001", 1, 65535, NULL, "REST API port"),
    K_SIZE("api.max_body_bytes", api.max_body_bytes, "1MiB", KiB, GiB, NULL,
           "largest request body the API accepts"),

    K_BOOL("metrics.enabled", metrics.enabled, "true", NULL, "serve Prometheus metrics"),
    K_STR("metrics.bind", metrics.bind, "127.0.0.1", NULL, 0, "metrics listen address"),
    K_INT("metrics.port", metrics.port, "9090", 1, 65535, NULL, "metrics port"),

    K_ENUM("logging.level", logging.level, "info", log_levels, "LAMINAR_LOG_LEVEL",
           "lowest level logged: trace, debug, info, warn or error"),
    K_ENUM("logging.format", logging.format, "text", log_formats, NULL,
           "log line format: text or json"),
    K_BOOL("logging.stdout", logging.to_stdout, "true", NULL, "write log lines to standard output"),
    K_STR("logging.file", logging.file, "", NULL, 0, "also append log lines to this file"),

    K_URL("worker.rpc_url", worker.rpc_url, "tcp://127.0.0.1:6669", nng_schemes, NULL,
          "worker RPC and data listen URL"),
    K_INT("worker.slots", worker.slots, "0", 0, 1024, NULL, "task slots; 0 = runtime.loops"),
    K_URL("worker.controller_url", worker.controller_url, "tcp://127.0.0.1:9000", nng_schemes, NULL,
          "controller RPC URL the worker connects to"),
    K_DUR("worker.heartbeat_interval", worker.heartbeat_interval_ms, "1s", 1, NULL,
          "time between heartbeats to the controller"),

    K_URL("controller.rpc_url", controller.rpc_url, "tcp://127.0.0.1:9000", nng_schemes, NULL,
          "controller RPC listen URL"),
    K_DUR("controller.heartbeat_timeout", controller.heartbeat_timeout_ms, "10s", 1, NULL,
          "a worker silent this long is presumed dead"),
    K_INT("controller.restart_limit", controller.restart_limit, "10", 0, 1000000, NULL,
          "restarts of a failing job before it is failed"),
    K_DUR("controller.restart_backoff", controller.restart_backoff_ms, "1s", 1, NULL,
          "delay before a job's first restart; it doubles with each restart"),
    K_DUR("controller.restart_backoff_max", controller.restart_backoff_max_ms, "1m", 1, NULL,
          "longest delay between restarts"),
    K_DUR("controller.deploy_timeout", controller.deploy_timeout_ms, "30s", 1, NULL,
          "a job not running this long after its slots were granted is restarted"),
};

#define NKEYS        (sizeof(keys) / sizeof(keys[0]))
#define KEY_MAX      128 /* longest dotted key path considered */
#define ENV_PREFIX   "LAMINAR_"
#define SHOW_MAX     64 /* bytes of a bad value quoted in a message */
#define INTERP_DEPTH 8  /* nesting of ${A:-${B:-...}} */
#define FILE_MAX     (16 * MiB)

size_t
lm_config_key_count(void)
{
    return NKEYS;
}

const char *
lm_config_key_name(size_t i)
{
    return i < NKEYS ? keys[i].key : NULL;
}

const char *
lm_config_key_doc(size_t i)
{
    return i < NKEYS ? keys[i].doc : NULL;
}

static const cfg_key *
find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strlen(keys[i].key) == len && memcmp(keys[i].key, name, len) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

/* True when some key starts with name + "." (name is a section). */
static bool
is_section(const char *name, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strncmp(keys[i].key, name, len) == 0 && keys[i].key[len] == '.') {
            return true;
        }
    }
    return false;
}

static char **
field_str(lm_config *cfg, const cfg_key *k)
{
    return (char **)((char *)cfg + k->off);
}

static int64_t *
field_i64(lm_config *cfg, const cfg_key *k)
{
    return (int64_t *)((char *)cfg + k->off);
}

static bool *
field_bool(lm_config *cfg, const cfg_key *k)
{
    return (bool *)((char *)cfg + k->off);
}

static const void *
field_const(const lm_config *cfg, const cfg_key *k)
{
    return (const char *)cfg + k->off;
}

static bool
is_string_type(key_type t)
{
    return t == T_STRING || t == T_URL;
}

/* LAMINAR_ + key upper-cased, '.' -> '_'. */
static void
env_name(const cfg_key *k, char *buf, size_t cap)
{
    size_t n = strlen(ENV_PREFIX);
    memcpy(buf, ENV_PREFIX, n);
    for (const char *p = k->key; *p != '\0' && n + 1 < cap; p++) {
        buf[n++] = *p == '.' ? '_' : (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
    }
    buf[n] = '\0';
}

/* --- small text helpers -------------------------------------------------- */

typedef struct sbuf {
    char *p;    /* NUL-terminated when not NULL */
    size_t len; /* bytes before the NUL */
    size_t cap; /* bytes allocated */
    bool oom;   /* an append failed; p holds what fitted */
} sbuf;

static void
sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 64 : b->cap;
        while (b->len + n + 1 > cap) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_adds(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Copies s into out for a message: at most SHOW_MAX bytes (cut at a UTF-8
 * character boundary, then "..."), control characters shown as '?', so
 * that a message stays on one line. */
static void
show(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s), lim = n, o = 0;
    bool cut = false;

    if (lim > SHOW_MAX) {
        lim = SHOW_MAX;
        while (lim > 0 && ((unsigned char)s[lim] & 0xC0) == 0x80) {
            lim--;
        }
        cut = true;
    }
    for (size_t i = 0; i < lim && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut) {
        for (const char *d = "..."; *d != '\0' && o + 1 < cap; d++) {
            out[o++] = *d;
        }
    }
    out[o] = '\0';
}

static bool
valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        unsigned char c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) {
            return false;
        }
        for (size_t j = 1; j < len; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += len;
    }
    return true;
}

/* Writes " (did you mean 'x'?)" into out when a key or section is close to
 * name, else "". */
static void
suggest(const char *name, char *out, size_t cap)
{
    size_t len = strlen(name);
    size_t limit = len / 5 < 1 ? 1 : (len / 5 > 3 ? 3 : len / 5);
    size_t best = SIZE_MAX;
    char cand[KEY_MAX + 1], pick[KEY_MAX + 1] = "";

    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = keys[i].key;
        /* the key itself and each of its sections */
        for (const char *dot = k;; dot++) {
            if (*dot == '.' || *dot == '\0') {
                size_t n = (size_t)(dot - k);
                if (n <= KEY_MAX) {
                    memcpy(cand, k, n);
                    cand[n] = '\0';
                    size_t d = lm_text_distance(name, cand);
                    if (d < best) {
                        best = d;
                        memcpy(pick, cand, n + 1);
                    }
                }
            }
            if (*dot == '\0') {
                break;
            }
        }
    }
    if (best > 0 && best <= limit) {
        snprintf(out, cap, " (did you mean '%s'?)", pick);
    } else if (cap > 0) {
        out[0] = '\0';
    }
}

/* --- number, duration and size syntax ------------------------------------ */

typedef enum parse_result {
    P_OK,
    P_BAD,      /* not the syntax of the type */
    P_RANGE,    /* does not fit in int64 */
    P_FRACTION, /* not a whole number of the stored unit */
} parse_result;

/* Parses "digits[.digits]" at s[*i]: the digits without the point go to
 * *mant and their count after the point (trailing zeros dropped) to *frac.
 * Returns false when there is no digit at *i; sets *ovf when the digits
 * do not fit in 64 bits. */
static bool
parse_decimal(const char *s, size_t n, size_t *i, uint64_t *mant, unsigned *frac, bool *ovf)
{
    uint64_t m = 0;
    unsigned f = 0, zeros = 0;
    size_t j = *i;

    if (j >= n || !is_digit(s[j])) {
        return false;
    }
    for (; j < n && is_digit(s[j]); j++) {
        if (__builtin_mul_overflow(m, 10, &m) || __builtin_add_overflow(m, s[j] - '0', &m)) {
            *ovf = true;
        }
    }
    if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1])) {
        for (j++; j < n && is_digit(s[j]); j++) {
            if (s[j] == '0') {
                zeros++; /* applied only if a non-zero digit follows */
                continue;
            }
            for (; zeros > 0; zeros--, f++) {
                if (__builtin_mul_overflow(m, 10, &m)) {
                    *ovf = true;
                }
            }
            if (__builtin_mul_overflow(m, 10, &m) || __builtin_add_overflow(m, s[j] - '0', &m)) {
                *ovf = true;
            }
            f++;
        }
    }
    *i = j;
    *mant = m;
    *frac = f;
    return true;
}

/* mant / 10^frac * unit, added to *acc. */
static parse_result
scale_add(uint64_t mant, unsigned frac, uint64_t unit, uint64_t *acc)
{
    uint64_t v, p = 1;

    if (frac > 19) {
        return P_RANGE;
    }
    for (unsigned k = 0; k < frac; k++) {
        p *= 10;
    }
    if (__builtin_mul_overflow(mant, unit, &v)) {
        return P_RANGE;
    }
    if (v % p != 0) {
        return P_FRACTION;
    }
    if (__builtin_add_overflow(*acc, v / p, acc)) {
        return P_RANGE;
    }
    return P_OK;
}

static parse_result
finish_signed(uint64_t mag, bool neg, int64_t *out)
{
    if (mag > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
        return P_RANGE;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return P_OK;
}

static bool
take_sign(const char *s, size_t n, size_t *i)
{
    if (*i < n && (s[*i] == '-' || s[*i] == '+')) {
        return s[(*i)++] == '-';
    }
    return false;
}

static parse_result
parse_int(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = take_sign(s, n, &i), ovf = false;
    uint64_t m = 0;

    if (i >= n) {
        return P_BAD;
    }
    for (; i < n; i++) {
        if (!is_digit(s[i])) {
            return P_BAD;
        }
        if (__builtin_mul_overflow(m, 10, &m) || __builtin_add_overflow(m, s[i] - '0', &m)) {
            ovf = true;
        }
    }
    return ovf ? P_RANGE : finish_signed(m, neg, out);
}

typedef struct unit {
    const char *name; /* matched case-insensitively */
    uint64_t mult;    /* in the stored unit */
} unit;

static const unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {NULL, 0},
};

static const unit size_units[] = {
    {"B", 1},
    {"KiB", (uint64_t)1 << 10},
    {"MiB", (uint64_t)1 << 20},
    {"GiB", (uint64_t)1 << 30},
    {"TiB", (uint64_t)1 << 40},
    {"kB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000 * 1000 * 1000},
    {"TB", (uint64_t)1000 * 1000 * 1000 * 1000},
    {NULL, 0},
};

static const unit *
find_unit(const unit *units, const char *s, size_t n)
{
    for (const unit *u = units; u->name != NULL; u++) {
        if (strlen(u->name) == n && strncasecmp(u->name, s, n) == 0) {
            return u;
        }
    }
    return NULL;
}

/* A duration: [sign] (number unit)+, or a bare integer of milliseconds.
 * With several terms ("1h30m"), the separators are optional spaces. */
static parse_result
parse_duration(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = take_sign(s, n, &i), ovf = false;
    uint64_t acc = 0;
    int terms = 0;

    while (i < n) {
        uint64_t mant;
        unsigned frac;
        size_t u0;
        if (terms > 0) {
            while (i < n && s[i] == ' ') {
                i++;
            }
        }
        if (!parse_decimal(s, n, &i, &mant, &frac, &ovf)) {
            return P_BAD;
        }
        for (u0 = i; i < n && is_alpha(s[i]); i++) {
        }
        if (i == u0) {
            /* a bare integer, alone */
            if (terms > 0 || frac > 0 || i != n || memchr(s, '.', n) != NULL) {
                return P_BAD;
            }
            if (ovf) {
                return P_RANGE;
            }
            return finish_signed(mant, neg, out);
        }
        const unit *u = find_unit(duration_units, s + u0, i - u0);
        if (u == NULL) {
            return P_BAD;
        }
        if (!ovf) {
            parse_result r = scale_add(mant, frac, u->mult, &acc);
            if (r == P_FRACTION) {
                return r;
            }
            ovf = r == P_RANGE;
        }
        terms++;
    }
    if (terms == 0) {
        return P_BAD;
    }
    return ovf ? P_RANGE : finish_signed(acc, neg, out);
}

int
lm_config_parse_duration(const char *s, int64_t *ms)
{
    switch (parse_duration(s, strlen(s), ms)) {
    case P_OK: return LM_OK;
    case P_RANGE: return LM_ERANGE;
    default: return LM_EINVAL;
    }
}

/* A size: [sign] number [space] unit, or a bare integer of bytes. */
static parse_result
parse_size(const char *s, size_t n, int64_t *out)
{
    size_t i = 0, u0;
    bool neg = take_sign(s, n, &i), ovf = false;
    uint64_t mant, acc = 0;
    unsigned frac;
    const unit *u;

    if (!parse_decimal(s, n, &i, &mant, &frac, &ovf)) {
        return P_BAD;
    }
    if (i == n) {
        if (memchr(s, '.', n) != NULL) {
            return P_BAD; /* "1.5" needs a unit */
        }
        return ovf ? P_RANGE : finish_signed(mant, neg, out);
    }
    if (s[i] == ' ') {
        i++;
    }
    for (u0 = i; i < n && is_alpha(s[i]); i++) {
    }
    if (i != n || (u = find_unit(size_units, s + u0, i - u0)) == NULL) {
        return P_BAD;
    }
    if (ovf) {
        return P_RANGE;
    }
    parse_result r = scale_add(mant, frac, u->mult, &acc);
    return r != P_OK ? r : finish_signed(acc, neg, out);
}

/* Canonical texts: the largest unit that divides the value exactly. */
static void
fmt_duration(int64_t ms, char *buf, size_t cap)
{
    if (ms == 0) {
        snprintf(buf, cap, "0s");
    } else if (ms % MS_HOUR == 0) {
        snprintf(buf, cap, "%" PRId64 "h", ms / MS_HOUR);
    } else if (ms % 60000 == 0) {
        snprintf(buf, cap, "%" PRId64 "m", ms / 60000);
    } else if (ms % 1000 == 0) {
        snprintf(buf, cap, "%" PRId64 "s", ms / 1000);
    } else {
        snprintf(buf, cap, "%" PRId64 "ms", ms);
    }
}

static void
fmt_size(int64_t bytes, char *buf, size_t cap)
{
    static const char *const order[] = {"TiB", "GiB", "MiB", "KiB", "TB", "GB", "MB", "kB", NULL};

    if (bytes != 0) {
        for (size_t i = 0; order[i] != NULL; i++) {
            const unit *u = find_unit(size_units, order[i], strlen(order[i]));
            if (bytes % (int64_t)u->mult == 0) {
                snprintf(buf, cap, "%" PRId64 "%s", bytes / (int64_t)u->mult, u->name);
                return;
            }
        }
    }
    snprintf(buf, cap, "%" PRId64 "B", bytes);
}

static void
fmt_number(const cfg_key *k, int64_t v, char *buf, size_t cap)
{
    if (k->type == T_DURATION) {
        fmt_duration(v, buf, cap);
    } else if (k->type == T_SIZE) {
        fmt_size(v, buf, cap);
    } else {
        snprintf(buf, cap, "%" PRId64, v);
    }
}

/* "a, b, c" or "a or b" lists for messages. */
static void
fmt_words(const char *const *w, const char *last_sep, char *buf, size_t cap)
{
    size_t n = 0, o = 0;

    while (w[n] != NULL) {
        n++;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == n && last_sep != NULL ? last_sep : ", ");
        int m = snprintf(buf + o, cap - o, "%s%s", sep, w[i]);
        if (m < 0) {
            break;
        }
        o += (size_t)m;
    }
}

/* --- setting one value from text ------------------------------------------ */

static const char *
type_expectation(const cfg_key *k)
{
    switch (k->type) {
    case T_BOOL: return "expected true or false (or yes/no, on/off)";
    case T_INT: return "expected an integer";
    case T_DURATION: return "expected a duration such as 250ms, 1.5s, 10s, 5m or 1h";
    case T_SIZE: return "expected a size such as 512KiB, 64MiB, 1GiB, 1MB or 100B";
    default: return "expected a value";
    }
}

/* Parses text as key k's type and stores it in cfg. On failure cfg is
 * unchanged and why holds the problem ("expected an integer, got 'x'").
 * Returns LM_OK, LM_ECONFIG or LM_ENOMEM. */
static int
set_value(lm_config *cfg, const cfg_key *k, const char *text, char *why, size_t whycap)
{
    char shown[SHOW_MAX * 2], list[256];
    size_t n = strlen(text);
    const char *s = text;
    parse_result r = P_BAD;
    int64_t v = 0;

    show(shown, sizeof(shown), text);
    if (is_string_type(k->type)) {
        if (!valid_utf8(text, n)) {
            snprintf(why, whycap, "expected UTF-8 text");
            return LM_ECONFIG;
        }
        if (k->type == T_URL) {
            const char *const *sc;
            for (sc = k->words; *sc != NULL; sc++) {
                if (strncasecmp(text, *sc, strlen(*sc)) == 0) {
                    break;
                }
            }
            if (*sc == NULL) {
                fmt_words(k->words, " or ", list, sizeof(list));
                snprintf(why, whycap, "expected a URL starting with %s, got '%s'", list, shown);
                return LM_ECONFIG;
            }
            if (text[strlen(*sc)] == '\0') {
                snprintf(why, whycap, "'%s' has nothing after the scheme", shown);
                return LM_ECONFIG;
            }
        }
        char *copy = strdup(text);
        if (copy == NULL) {
            snprintf(why, whycap, "out of memory");
            return LM_ENOMEM;
        }
        free(*field_str(cfg, k));
        *field_str(cfg, k) = copy;
        return LM_OK;
    }

    /* the other types ignore surrounding white space */
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1])) {
        n--;
    }
    switch (k->type) {
    case T_ENUM:
        for (int i = 0; k->words[i] != NULL; i++) {
            if (strlen(k->words[i]) == n && strncasecmp(k->words[i], s, n) == 0) {
                memcpy((char *)cfg + k->off, &i, sizeof(int));
                return LM_OK;
            }
        }
        fmt_words(k->words, NULL, list, sizeof(list));
        snprintf(why, whycap, "expected one of %s; got '%s'", list, shown);
        return LM_ECONFIG;
    case T_BOOL: {
        static const char *const yes[] = {"true", "yes", "on"};
        static const char *const no[] = {"false", "no", "off"};
        for (size_t i = 0; i < 3; i++) {
            if (strlen(yes[i]) == n && strncasecmp(yes[i], s, n) == 0) {
                *field_bool(cfg, k) = true;
                return LM_OK;
            }
            if (strlen(no[i]) == n && strncasecmp(no[i], s, n) == 0) {
                *field_bool(cfg, k) = false;
                return LM_OK;
            }
        }
        break;
    }
    case T_INT: r = parse_int(s, n, &v); break;
    case T_DURATION: r = parse_duration(s, n, &v); break;
    case T_SIZE: r = parse_size(s, n, &v); break;
    default: break;
    }
    if (r == P_OK && v >= k->min && v <= k->max) {
        *field_i64(cfg, k) = v;
        return LM_OK;
    }
    if (r == P_OK || r == P_RANGE) {
        char lo[32], hi[32];
        fmt_number(k, k->min, lo, sizeof(lo));
        fmt_number(k, k->max, hi, sizeof(hi));
        snprintf(why, whycap, "%s is out of range (%s..%s)", shown, lo, hi);
    } else if (r == P_FRACTION) {
        snprintf(why, whycap, "'%s' is not a whole number of %s", shown,
                 k->type == T_DURATION ? "milliseconds" : "bytes");
    } else {
        snprintf(why, whycap, "%s, got '%s'", type_expectation(k), shown);
    }
    return LM_ECONFIG;
}

/* --- init, fini, copy ------------------------------------------------------ */

void
lm_config_fini(lm_config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (is_string_type(keys[i].type)) {
            free(*field_str(cfg, &keys[i]));
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}

int
lm_config_init(lm_config *cfg)
{
    char why[LM_ERROR_MSG_MAX];
    int rc = LM_OK;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NKEYS; i++) {
        rc = set_value(cfg, &keys[i], keys[i].def, why, sizeof(why));
        if (rc != LM_OK) {
            goto fail;
        }
    }
    return LM_OK;

fail:
    lm_config_fini(cfg);
    return rc == LM_ENOMEM ? LM_ENOMEM : LM_EINVAL; /* LM_EINVAL: a bad default, a bug */
}

/* Makes dst a deep copy of src. On LM_ENOMEM dst is left zeroed. */
static int
config_copy(lm_config *dst, const lm_config *src)
{
    memcpy(dst, src, sizeof(*dst));
    for (size_t i = 0; i < NKEYS; i++) {
        if (is_string_type(keys[i].type)) {
            *field_str(dst, &keys[i]) = NULL;
        }
    }
    for (size_t i = 0; i < NKEYS; i++) {
        if (is_string_type(keys[i].type)) {
            const char *s = *(char *const *)field_const(src, &keys[i]);
            if ((*field_str(dst, &keys[i]) = strdup(s != NULL ? s : "")) == NULL) {
                goto fail;
            }
        }
    }
    return LM_OK;

fail:
    lm_config_fini(dst);
    return LM_ENOMEM;
}

/* Replaces *cfg by *next, freeing what cfg held. */
static void
config_swap_in(lm_config *cfg, lm_config *next)
{
    lm_config old = *cfg;
    *cfg = *next;
    memset(next, 0, sizeof(*next));
    lm_config_fini(&old);
}

/* --- ${VAR} interpolation -------------------------------------------------- */

static const char *
env_lookup(char **envp, const char *name, size_t len)
{
    if (envp == NULL) {
        return NULL;
    }
    for (char **e = envp; *e != NULL; e++) {
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
            return *e + len + 1;
        }
    }
    return NULL;
}

/* Expands s[0..n) into out. On LM_ECONFIG, why says what is wrong. */
static int
interpolate(const char *s, size_t n, char **envp, int depth, sbuf *out, char *why, size_t whycap)
{
    size_t i = 0;

    if (depth > INTERP_DEPTH) {
        snprintf(why, whycap, "${...:-...} nested too deeply");
        return LM_ECONFIG;
    }
    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != '$') {
            i++;
        }
        sb_add(out, s + start, i - start);
        if (i >= n) {
            break;
        }
        if (i + 1 < n && s[i + 1] == '$') { /* $$ */
            sb_add(out, "$", 1);
            i += 2;
            continue;
        }
        if (i + 1 >= n || s[i + 1] != '{') { /* a lone $ stays */
            sb_add(out, "$", 1);
            i++;
            continue;
        }
        /* ${NAME} or ${NAME:-default} */
        size_t name0 = i + 2, j = name0;
        while (j < n && (is_alpha(s[j]) || is_digit(s[j]) || s[j] == '_')) {
            j++;
        }
        size_t name_len = j - name0;
        const char *def = NULL;
        size_t def_len = 0;
        if (j >= n) {
            snprintf(why, whycap, "unterminated '${' (missing '}')");
            return LM_ECONFIG;
        }
        if (name_len == 0 || is_digit(s[name0]) ||
            (s[j] != '}' && !(s[j] == ':' && j + 1 < n && s[j + 1] == '-'))) {
            char bad[SHOW_MAX * 2];
            char tmp[SHOW_MAX + 8];
            size_t m = n - i < SHOW_MAX ? n - i : SHOW_MAX;
            memcpy(tmp, s + i, m);
            tmp[m] = '\0';
            show(bad, sizeof(bad), tmp);
            snprintf(why, whycap,
                     "bad variable reference '%s' (expected ${NAME} or ${NAME:-default})", bad);
            return LM_ECONFIG;
        }
        if (s[j] == '}') {
            j++;
        } else {
            /* the default runs to the matching '}' */
            size_t k = j + 2;
            int open = 1;
            def = s + k;
            while (k < n) {
                if (s[k] == '$' && k + 1 < n && (s[k + 1] == '$' || s[k + 1] == '{')) {
                    open += s[k + 1] == '{';
                    k += 2;
                    continue;
                }
                if (s[k] == '}' && --open == 0) {
                    break;
                }
                k++;
            }
            if (k >= n) {
                snprintf(why, whycap, "unterminated '${' (missing '}')");
                return LM_ECONFIG;
            }
            def_len = (size_t)(s + k - def);
            j = k + 1;
        }
        const char *val = env_lookup(envp, s + name0, name_len);
        if (def != NULL && (val == NULL || val[0] == '\0')) {
            int rc = interpolate(def, def_len, envp, depth + 1, out, why, whycap);
            if (rc != LM_OK) {
                return rc;
            }
        } else if (val == NULL) {
            snprintf(why, whycap,
                     "environment variable '%.*s' is not set (write ${%.*s:-default} to give a "
                     "default)",
                     (int)name_len, s + name0, (int)name_len, s + name0);
            return LM_ECONFIG;
        } else {
            sb_adds(out, val);
        }
        i = j;
    }
    return LM_OK;
}

/* --- YAML ------------------------------------------------------------------ */

typedef struct load_ctx {
    const char *name;        /* file name for messages */
    const char *text;        /* the input, for positions of reader errors */
    size_t text_len;         /* its length */
    yaml_document_t *doc;    /* the loaded document */
    char **envp;             /* for ${VAR} */
    lm_config *cfg;          /* the copy being filled */
    yaml_mark_t seen[NKEYS]; /* where each key was set */
    bool seen_set[NKEYS];    /* whether it was */
    lm_error *err;           /* where messages go */
} load_ctx;

/* Fills err with "name:line:col: " + the formatted text; returns code. */
static int fail_at(load_ctx *c, yaml_mark_t m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail_at(load_ctx *c, yaml_mark_t m, int code, const char *fmt, ...)
{
    char msg[LM_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return lm_error_set(c->err, code, "%s:%zu:%zu: %s", c->name, m.line + 1, m.column + 1, msg);
}

static const char *
node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SEQUENCE_NODE: return "a sequence";
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SCALAR_NODE: return "a scalar";
    default: return "nothing";
    }
}

/* A plain empty, ~ or null scalar: YAML's null. */
static bool
is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    return len == 0 || (len == 1 && v[0] == '~') ||
           (len == 4 &&
            (memcmp(v, "null", 4) == 0 || memcmp(v, "Null", 4) == 0 || memcmp(v, "NULL", 4) == 0));
}

static int
load_leaf(load_ctx *c, const cfg_key *k, size_t idx, yaml_node_t *key, yaml_node_t *val)
{
    char why[LM_ERROR_MSG_MAX];
    sbuf text = {0};
    int rc;

    if (c->seen_set[idx]) {
        return fail_at(c, key->start_mark, LM_ECONFIG,
                       "duplicate key '%s' (first given at line %zu, column %zu)", k->key,
                       c->seen[idx].line + 1, c->seen[idx].column + 1);
    }
    c->seen_set[idx] = true;
    c->seen[idx] = key->start_mark;
    if (val->type != YAML_SCALAR_NODE) {
        return fail_at(c, val->start_mark, LM_ECONFIG, "%s: expected a scalar value, got %s",
                       k->key, node_kind(val));
    }
    if (is_null(val)) {
        sb_add(&text, "", 0);
    } else {
        const char *v = (const char *)val->data.scalar.value;
        size_t len = val->data.scalar.length;
        if (memchr(v, '\0', len) != NULL) {
            return fail_at(c, val->start_mark, LM_ECONFIG, "%s: the value contains a NUL character",
                           k->key);
        }
        sb_add(&text, "", 0); /* "" even when the expansion is empty */
        rc = interpolate(v, len, c->envp, 0, &text, why, sizeof(why));
        if (rc != LM_OK) {
            free(text.p);
            return fail_at(c, val->start_mark, rc, "%s: %s", k->key, why);
        }
    }
    if (text.oom) {
        free(text.p);
        return fail_at(c, val->start_mark, LM_ENOMEM, "out of memory");
    }
    rc = set_value(c->cfg, k, text.p, why, sizeof(why));
    free(text.p);
    if (rc != LM_OK) {
        return fail_at(c, val->start_mark, rc, "%s: %s", k->key, why);
    }
    return LM_OK;
}

/* Walks a mapping whose keys are relative to prefix ("" at the top). */
static int
load_mapping(load_ctx *c, yaml_node_t *map, const char *prefix)
{
    yaml_node_pair_t *first = map->data.mapping.pairs.start;
    size_t plen = strlen(prefix);

    for (yaml_node_pair_t *p = first; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *key = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        char path[KEY_MAX + 1], shown[SHOW_MAX * 2], hint[KEY_MAX + 32];
        int rc;

        if (key == NULL || val == NULL) {
            return fail_at(c, map->start_mark, LM_ECONFIG, "malformed mapping");
        }
        if (key->type != YAML_SCALAR_NODE) {
            return fail_at(c, key->start_mark, LM_ECONFIG, "expected a key name, got %s%s%s%s",
                           node_kind(key), plen > 0 ? " in section '" : "", prefix,
                           plen > 0 ? "'" : "");
        }
        const char *kname = (const char *)key->data.scalar.value;
        size_t klen = key->data.scalar.length;

        /* a key twice in this mapping */
        for (yaml_node_pair_t *q = first; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
            if (qk != NULL && qk->type == YAML_SCALAR_NODE && qk->data.scalar.length == klen &&
                memcmp(qk->data.scalar.value, kname, klen) == 0) {
                char tmp[KEY_MAX + 1];
                snprintf(tmp, sizeof(tmp), "%s%s%.*s", prefix, plen > 0 ? "." : "", (int)klen,
                         kname);
                show(shown, sizeof(shown), tmp);
                return fail_at(c, key->start_mark, LM_ECONFIG,
                               "duplicate key '%s' (first given at line %zu, column %zu)", shown,
                               qk->start_mark.line + 1, qk->start_mark.column + 1);
            }
        }

        if (memchr(kname, '\0', klen) != NULL || plen + 1 + klen > KEY_MAX) {
            char tmp[SHOW_MAX + 1];
            size_t m = klen < SHOW_MAX ? klen : SHOW_MAX;
            memcpy(tmp, kname, m);
            tmp[m] = '\0';
            show(shown, sizeof(shown), tmp);
            return fail_at(c, key->start_mark, LM_ECONFIG, "unknown key '%s'", shown);
        }
        snprintf(path, sizeof(path), "%s%s%.*s", prefix, plen > 0 ? "." : "", (int)klen, kname);
        size_t len = strlen(path);

        const cfg_key *k = find_key(path, len);
        if (k != NULL) {
            rc = load_leaf(c, k, (size_t)(k - keys), key, val);
        } else if (is_section(path, len)) {
            if (val->type == YAML_MAPPING_NODE) {
                rc = load_mapping(c, val, path);
            } else if (is_null(val)) {
                rc = LM_OK; /* an empty section: `worker:` with every key commented out */
            } else if (val->type == YAML_SCALAR_NODE) {
                char tmp[SHOW_MAX + 1];
                size_t m = val->data.scalar.length < SHOW_MAX ? val->data.scalar.length : SHOW_MAX;
                memcpy(tmp, val->data.scalar.value, m);
                tmp[m] = '\0';
                show(shown, sizeof(shown), tmp);
                rc = fail_at(c, val->start_mark, LM_ECONFIG,
                             "expected a mapping for section '%s', got '%s'", path, shown);
            } else {
                rc = fail_at(c, val->start_mark, LM_ECONFIG,
                             "expected a mapping for section '%s', got %s", path, node_kind(val));
            }
        } else {
            show(shown, sizeof(shown), path);
            suggest(path, hint, sizeof(hint));
            rc = fail_at(c, key->start_mark, LM_ECONFIG, "unknown key '%s'%s", shown, hint);
        }
        if (rc != LM_OK) {
            return rc;
        }
    }
    return LM_OK;
}

/* Fills err from the parser's error. */
static int
yaml_failure(load_ctx *c, yaml_parser_t *parser)
{
    yaml_mark_t m = parser->problem_mark;
    char ctx[256] = "";

    if (parser->error == YAML_MEMORY_ERROR) {
        return lm_error_set(c->err, LM_ENOMEM, "%s: out of memory while parsing YAML", c->name);
    }
    if (parser->error == YAML_READER_ERROR) {
        /* reader errors carry a byte offset, not a mark */
        m.line = 0;
        m.column = 0;
        for (size_t i = 0; i < parser->problem_offset && i < c->text_len; i++) {
            if (c->text[i] == '\n') {
                m.line++;
                m.column = 0;
            } else {
                m.column++;
            }
        }
    } else if (parser->context != NULL) {
        snprintf(ctx, sizeof(ctx), " (%s at line %zu, column %zu)", parser->context,
                 parser->context_mark.line + 1, parser->context_mark.column + 1);
    }
    return fail_at(c, m, LM_ECONFIG, "YAML syntax error: %s%s",
                   parser->problem != NULL ? parser->problem : "unknown problem", ctx);
}

int
lm_config_load_string(lm_config *cfg, const char *name, const char *yaml, size_t len, char **envp,
                      lm_error *err)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_parser = false, have_doc = false, have_extra = false;
    load_ctx *c = NULL;
    lm_config next;
    bool have_next = false;
    int rc;

    if (cfg == NULL || (yaml == NULL && len > 0)) {
        return lm_error_set(err, LM_EINVAL, "lm_config_load_string: bad arguments");
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    c->name = name != NULL ? name : "<string>";
    c->text = yaml != NULL ? yaml : "";
    c->text_len = len;
    c->envp = envp;
    c->err = err;

    if (!yaml_parser_initialize(&parser)) {
        rc = lm_error_set(err, LM_ENOMEM, "out of memory");
        goto fail;
    }
    have_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)c->text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_failure(c, &parser);
        goto fail;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root != NULL) {
        if (!yaml_parser_load(&parser, &extra)) {
            rc = yaml_failure(c, &parser);
            goto fail;
        }
        have_extra = true;
        if (yaml_document_get_root_node(&extra) != NULL) {
            rc = fail_at(c, extra.start_mark, LM_ECONFIG,
                         "more than one YAML document (only one is read)");
            goto fail;
        }
    }

    rc = config_copy(&next, cfg);
    if (rc != LM_OK) {
        rc = lm_error_set(err, rc, "out of memory");
        goto fail;
    }
    have_next = true;
    c->doc = &doc;
    c->cfg = &next;
    if (root != NULL && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            rc =
                fail_at(c, root->start_mark, LM_ECONFIG,
                        "expected a mapping of sections at the top level, got %s", node_kind(root));
            goto fail;
        }
        rc = load_mapping(c, root, "");
        if (rc != LM_OK) {
            goto fail;
        }
    }
    config_swap_in(cfg, &next);
    lm_error_clear(err);
    rc = LM_OK;
    /* fall through to release the parser and documents */

fail:
    if (have_next && rc != LM_OK) {
        lm_config_fini(&next);
    }
    if (have_extra) {
        yaml_document_delete(&extra);
    }
    if (have_doc) {
        yaml_document_delete(&doc);
    }
    if (have_parser) {
        yaml_parser_delete(&parser);
    }
    free(c);
    return rc;
}

int
lm_config_load_file(lm_config *cfg, const char *path, char **envp, lm_error *err)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (cfg == NULL || path == NULL) {
        return lm_error_set(err, LM_EINVAL, "lm_config_load_file: bad arguments");
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        rc = lm_error_set(err, LM_EIO, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= FILE_MAX) {
                rc = lm_error_set(err, LM_EIO, "%s: cannot read: larger than %d MiB", path,
                                  (int)(FILE_MAX / MiB));
                goto fail;
            }
            size_t ncap = cap == 0 ? 8192 : cap * 2;
            char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                rc = lm_error_set(err, LM_ENOMEM, "%s: out of memory", path);
                goto fail;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                rc = lm_error_set(err, LM_EIO, "%s: cannot read: %s", path, strerror(errno));
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    f = NULL;
    rc = lm_config_load_string(cfg, path, buf, len, envp, err);
    free(buf);
    return rc;

fail:
    if (f != NULL) {
        fclose(f);
    }
    free(buf);
    return rc;
}

/* --- environment and --set ------------------------------------------------- */

int
lm_config_apply_env(lm_config *cfg, char **envp, lm_error *err)
{
    lm_config next;
    char why[LM_ERROR_MSG_MAX];
    int rc;

    if (cfg == NULL) {
        return lm_error_set(err, LM_EINVAL, "lm_config_apply_env: bad arguments");
    }
    if (envp == NULL) {
        lm_error_clear(err);
        return LM_OK;
    }
    rc = config_copy(&next, cfg);
    if (rc != LM_OK) {
        return lm_error_set(err, rc, "out of memory");
    }
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key *k = &keys[i];
        char derived[KEY_MAX + sizeof(ENV_PREFIX)];
        const char *names[2];

        env_name(k, derived, sizeof(derived));
        names[0] = k->env_alias; /* the alias first, so that the full name wins */
        names[1] = derived;
        for (size_t j = 0; j < 2; j++) {
            const char *v = names[j] != NULL ? env_lookup(envp, names[j], strlen(names[j])) : NULL;
            if (v == NULL) {
                continue;
            }
            rc = set_value(&next, k, v, why, sizeof(why));
            if (rc != LM_OK) {
                lm_error_set(err, rc, "environment %s: %s: %s", names[j], k->key, why);
                goto fail;
            }
        }
    }
    config_swap_in(cfg, &next);
    lm_error_clear(err);
    return LM_OK;

fail:
    lm_config_fini(&next);
    return rc;
}

static void mask_secret(const cfg_key *k, const char *value, sbuf *out);

int
lm_config_set(lm_config *cfg, const char *key, const char *value, lm_error *err)
{
    char why[LM_ERROR_MSG_MAX], kshown[SHOW_MAX * 2], vshown[SHOW_MAX * 2];
    const cfg_key *k;
    int rc;

    if (cfg == NULL || key == NULL || value == NULL) {
        return lm_error_set(err, LM_EINVAL, "lm_config_set: bad arguments");
    }
    show(kshown, sizeof(kshown), key);
    k = find_key(key, strlen(key));
    if (k == NULL) {
        char hint[KEY_MAX + 32] = "";
        show(vshown, sizeof(vshown), value);
        if (is_section(key, strlen(key))) {
            return lm_error_set(err, LM_ECONFIG, "--set %s=%s: '%s' is a section, not a key",
                                kshown, vshown, kshown);
        }
        suggest(key, hint, sizeof(hint));
        return lm_error_set(err, LM_ECONFIG, "--set %s=%s: unknown key '%s'%s", kshown, vshown,
                            kshown, hint);
    }
    rc = set_value(cfg, k, value, why, sizeof(why));
    if (rc != LM_OK) {
        sbuf masked = {0};
        mask_secret(k, value, &masked);
        show(vshown, sizeof(vshown), masked.p != NULL && !masked.oom ? masked.p : "***");
        free(masked.p);
        return lm_error_set(err, rc, "--set %s=%s: %s: %s", kshown, vshown, k->key, why);
    }
    lm_error_clear(err);
    return LM_OK;
}

int
lm_config_validate(const lm_config *cfg, lm_error *err)
{
    if (cfg->transport.reconnect_min_ms > cfg->transport.reconnect_max_ms) {
        char lo[32], hi[32];
        fmt_duration(cfg->transport.reconnect_min_ms, lo, sizeof(lo));
        fmt_duration(cfg->transport.reconnect_max_ms, hi, sizeof(hi));
        return lm_error_set(err, LM_ECONFIG,
                            "transport.reconnect_min (%s) is greater than "
                            "transport.reconnect_max (%s)",
                            lo, hi);
    }
    if (cfg->database.type == LM_CONFIG_DB_POSTGRES && cfg->database.postgres.url[0] == '\0') {
        return lm_error_set(err, LM_ECONFIG,
                            "database.type is postgres but database.postgres.url is empty");
    }
    lm_error_clear(err);
    return LM_OK;
}

/* --- reading values back ---------------------------------------------------- */

/* The value of k as canonical text, appended to out. */
static void
value_text(const lm_config *cfg, const cfg_key *k, sbuf *out)
{
    const void *f = field_const(cfg, k);
    char buf[64];
    int e;

    switch (k->type) {
    case T_STRING:
    case T_URL: {
        const char *s = *(char *const *)f;
        sb_adds(out, s != NULL ? s : "");
        return;
    }
    case T_ENUM:
        memcpy(&e, f, sizeof(int));
        for (int i = 0; k->words[i] != NULL; i++) {
            if (i == e) {
                sb_adds(out, k->words[i]);
                return;
            }
        }
        snprintf(buf, sizeof(buf), "%d", e); /* not a word: a caller stored a bad value */
        break;
    case T_BOOL: snprintf(buf, sizeof(buf), "%s", *(const bool *)f ? "true" : "false"); break;
    default: fmt_number(k, *(const int64_t *)f, buf, sizeof(buf)); break;
    }
    sb_adds(out, buf);
}

int
lm_config_get_text(const lm_config *cfg, const char *key, char *buf, size_t cap)
{
    const cfg_key *k;
    sbuf text = {0};
    int rc = LM_OK;

    if (buf == NULL || cap == 0) {
        return LM_EINVAL;
    }
    buf[0] = '\0';
    if (cfg == NULL || key == NULL) {
        return LM_EINVAL;
    }
    k = find_key(key, strlen(key));
    if (k == NULL) {
        return LM_ENOTFOUND;
    }
    sb_add(&text, "", 0);
    value_text(cfg, k, &text);
    if (text.oom) {
        rc = LM_ENOMEM;
        goto fail;
    }
    if (text.len >= cap) {
        memcpy(buf, text.p, cap - 1);
        buf[cap - 1] = '\0';
        rc = LM_ETOOBIG;
        goto fail;
    }
    memcpy(buf, text.p, text.len + 1);

fail:
    free(text.p);
    return rc;
}

/* Appends value as it may be shown: secrets masked. */
static void
mask_secret(const cfg_key *k, const char *value, sbuf *out)
{
    sb_add(out, "", 0);
    if ((k->flags & F_SECRET) != 0) {
        sb_adds(out, value[0] != '\0' ? "***" : "");
    } else if ((k->flags & F_SECRET_URL) != 0) {
        size_t n = lm_text_mask_password(value, NULL, 0);
        char *masked = malloc(n + 1);
        if (masked == NULL) {
            out->oom = true;
            return;
        }
        lm_text_mask_password(value, masked, n + 1);
        sb_add(out, masked, n);
        free(masked);
    } else {
        sb_adds(out, value);
    }
}

/* Bytes in the UTF-8 sequence that starts at p (1 for a stray byte), never
 * running past a NUL. */
static size_t
utf8_len(const unsigned char *p)
{
    size_t len = (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 1;
    for (size_t j = 1; j < len; j++) {
        if ((p[j] & 0xC0) != 0x80) {
            return 1;
        }
    }
    return len;
}

static uint32_t
utf8_decode(const unsigned char *p, size_t len)
{
    static const unsigned char lead_mask[] = {0, 0xFF, 0x1F, 0x0F, 0x07};
    uint32_t cp = p[0] & lead_mask[len];
    for (size_t j = 1; j < len; j++) {
        cp = (cp << 6) | (p[j] & 0x3F);
    }
    return len == 1 && p[0] >= 0x80 ? 0xfffd : cp;
}

/* A YAML double-quoted scalar; $ doubled, as the loader interpolates. */
static void
put_yaml_string(const char *s, sbuf *out)
{
    sb_add(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_add(out, "\\\"", 2); break;
        case '\\': sb_add(out, "\\\\", 2); break;
        case '\n': sb_add(out, "\\n", 2); break;
        case '\t': sb_add(out, "\\t", 2); break;
        case '\r': sb_add(out, "\\r", 2); break;
        case '$': sb_add(out, "$$", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof(esc), "\\x%02x", *p);
                sb_adds(out, esc);
            } else if (*p < 0x80) {
                sb_add(out, (const char *)p, 1);
            } else {
                /* characters YAML does not allow raw, or reads as line breaks */
                size_t len = utf8_len(p);
                uint32_t cp = utf8_decode(p, len);
                if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff ||
                    cp == 0xfffe || cp == 0xffff) {
                    snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
                    sb_adds(out, esc);
                } else {
                    sb_add(out, (const char *)p, len);
                }
                p += len - 1;
            }
        }
    }
    sb_add(out, "\"", 1);
}

int
lm_config_dump(const lm_config *cfg, FILE *out)
{
    sbuf b = {0};
    const char *prev = "";
    int rc = LM_OK;

    sb_adds(&b, "# Laminar: effective configuration (secrets shown as ***)\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key *k = &keys[i];
        const char *leaf = strrchr(k->key, '.') + 1;
        size_t common = 0, depth = 0;

        /* the sections this key shares with the previous one */
        for (size_t j = 0; k->key[j] != '\0' && k->key + j < leaf; j++) {
            if (k->key[j] != prev[j]) {
                break;
            }
            if (k->key[j] == '.') {
                common = j + 1;
            }
        }
        for (const char *p = k->key; p < k->key + common; p++) {
            depth += *p == '.';
        }
        /* open the sections that are new */
        for (const char *p = k->key + common; p < leaf; p = strchr(p, '.') + 1) {
            const char *dot = strchr(p, '.');
            for (size_t d = 0; d < depth; d++) {
                sb_add(&b, "  ", 2);
            }
            sb_add(&b, p, (size_t)(dot - p));
            sb_add(&b, ":\n", 2);
            depth++;
        }
        for (size_t d = 0; d < depth; d++) {
            sb_add(&b, "  ", 2);
        }
        sb_adds(&b, leaf);
        sb_add(&b, ": ", 2);
        if (is_string_type(k->type)) {
            const char *s = *(char *const *)field_const(cfg, k);
            sbuf masked = {0};
            mask_secret(k, s != NULL ? s : "", &masked);
            if (masked.oom) {
                b.oom = true;
            } else {
                put_yaml_string(masked.p, &b);
            }
            free(masked.p);
        } else {
            value_text(cfg, k, &b);
        }
        sb_add(&b, "\n", 1);
        prev = k->key;
    }
    if (b.oom) {
        rc = LM_ENOMEM;
        goto fail;
    }
    if (fwrite(b.p, 1, b.len, out) != b.len || fflush(out) != 0) {
        rc = LM_EIO;
        goto fail;
    }

fail:
    free(b.p);
    return rc;
}
