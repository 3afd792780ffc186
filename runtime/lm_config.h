/*
 * lm_config.h: Laminar's configuration: a typed struct read from
 * conf/laminar.yaml, environment variables and command-line overrides.
 *
 * Layers, lowest first: built-in defaults (lm_config_init) < the YAML file
 * (lm_config_load_file) < LAMINAR_* environment variables
 * (lm_config_apply_env) < explicit key=value overrides (lm_config_set, one
 * per --set flag). Each layer only changes the keys it names. Call them in
 * that order, then lm_config_validate for the checks that involve more
 * than one key.
 *
 * One schema table in lm_config.c drives defaults, parsing, validation,
 * environment names, lm_config_get_text and lm_config_dump. Keys are dotted
 * ("worker.slots"); in YAML they are nested mappings (a dotted key such as
 * `worker.slots: 4` is accepted too). Every key can also be set from the
 * environment as LAMINAR_ + the key upper-cased with '.' turned into '_'
 * (LAMINAR_WORKER_SLOTS), and a few keys have a shorter alias as well
 * (LAMINAR_CHECKPOINT_URL, LAMINAR_S3_*, LAMINAR_LOG_LEVEL); when both the
 * alias and the full name are set, the full name wins.
 *
 * Value syntax by type:
 *   string    any UTF-8 text; in YAML a null value (`key:` or `~`) is "".
 *   url       a string starting with one of the key's schemes (file://, s3://,
 *             tcp://, ipc://), case-insensitively, with something after it.
 *   enum      one of the key's words, case-insensitively; stored as a C enum
 *             whose values are the words' positions (lm_log_level,
 *             lm_log_format, lm_config_db_type).
 *   bool      true/false, yes/no, on/off, case-insensitively.
 *   int       a decimal integer with an optional sign, within the key's range.
 *   duration  a number and a unit: ms, s, m, h, case-insensitively ("250ms",
 *             "1.5s", "5m"), or a sum of them ("1h30m"); a bare integer
 *             means milliseconds. Stored as int64 milliseconds; must come to
 *             whole milliseconds; at most 8760h.
 *   size      a number and a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or
 *             kB, MB, GB, TB (powers of 1000), case-insensitively, with an
 *             optional space ("64MiB", "1.5GiB", "1MB"); a bare integer means
 *             bytes. Stored as int64 bytes; must come to whole bytes.
 *
 * In YAML scalar values (not in keys, not in environment values or --set
 * overrides), ${VAR} is replaced by VAR's value from the envp given to the
 * load call, ${VAR:-default} gives default (itself interpolated) when VAR is
 * unset or empty, and $$ is a literal $. A $ followed by anything else is
 * kept as it is. A ${VAR} whose VAR is unset is an error. The values of
 * string keys are UTF-8 without NUL; bad bytes are an error.
 *
 * Errors: LM_ECONFIG for bad content, with a one-line message in lm_error
 * naming where (file:line:column, "environment NAME" or "--set key=value")
 * and the key; LM_EIO for a file that cannot be read; LM_ENOMEM. A call that
 * fails leaves the struct exactly as it was.
 *
 * Not thread-safe: build the configuration at start, then treat it as
 * read-only (reading from several threads is fine).
 */
#ifndef LM_CONFIG_H
#define LM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lm_err.h"
#include "lm_log.h"

/* database.type */
typedef enum lm_config_db_type {
    LM_CONFIG_DB_SQLITE = 0,   /* "sqlite": embedded, database.sqlite.path */
    LM_CONFIG_DB_POSTGRES = 1, /* "postgres": database.postgres.url */
} lm_config_db_type;

/* The effective configuration. Strings are owned by the struct, never NULL
 * after lm_config_init ("" when empty), and freed by lm_config_fini; replace
 * them only through lm_config_set. Durations are milliseconds (fields end in
 * _ms), sizes are bytes (fields end in _bytes). */
typedef struct lm_config {
    struct {
        int64_t id;    /* node.id: 0..2^32-1; 0 = the runtime picks a random id at start */
        char *name;    /* node.name: "" = the host name */
        char *run_dir; /* node.run_dir: ipc sockets and pid files */
    } node;
    struct {
        int64_t loops;         /* runtime.loops: event loop threads; 0 = number of CPUs */
        int64_t mailbox_batch; /* runtime.mailbox_batch: messages one actor handles per turn */
        int64_t batch_rows;    /* runtime.batch_rows: max rows per columnar batch */
    } runtime;
    struct {
        int64_t max_message_bytes;  /* transport.max_message_bytes: largest message accepted */
        int64_t max_queued_bytes;   /* transport.max_queued_bytes: queued bytes per peer link */
        int64_t send_buffer;        /* transport.send_buffer: nng messages buffered per socket */
        int64_t connect_timeout_ms; /* transport.connect_timeout */
        int64_t reconnect_min_ms;   /* transport.reconnect_min: first reconnect backoff */
        int64_t reconnect_max_ms;   /* transport.reconnect_max: backoff ceiling */
        int64_t peer_timeout_ms;    /* transport.peer_timeout: wait for an unreachable node before
                                       returning messages to their senders */
    } transport;
    struct {
        lm_config_db_type type; /* database.type: sqlite or postgres */
        struct {
            char *path; /* database.sqlite.path: the SQLite database file */
        } sqlite;
        struct {
            char *url; /* database.postgres.url: libpq connection string or postgresql:// URL */
        } postgres;
        int64_t retry_max_ms; /* database.retry_max: give up reconnecting after this long */
    } database;
    struct {
        struct {
            char *endpoint;          /* storage.s3.endpoint: "" = AWS for the region */
            char *region;            /* storage.s3.region */
            char *access_key_id;     /* storage.s3.access_key_id */
            char *secret_access_key; /* storage.s3.secret_access_key: a secret */
            bool path_style;         /* storage.s3.path_style: bucket in the path, not host */
        } s3;
    } storage;
    struct {
        char *url;           /* checkpointing.url: file:// or s3:// base of checkpoints */
        int64_t interval_ms; /* checkpointing.interval: time between checkpoints */
        int64_t timeout_ms;  /* checkpointing.timeout: a checkpoint not done by then fails */
        int64_t retained;    /* checkpointing.retained: completed checkpoints kept */
    } checkpointing;
    struct {
        char *bind;             /* api.bind: REST API listen address */
        int64_t port;           /* api.port */
        int64_t max_body_bytes; /* api.max_body_bytes: largest request body */
    } api;
    struct {
        bool enabled; /* metrics.enabled: serve Prometheus metrics */
        char *bind;   /* metrics.bind */
        int64_t port; /* metrics.port */
    } metrics;
    struct {
        lm_log_level level;   /* logging.level: trace, debug, info, warn or error */
        lm_log_format format; /* logging.format: text or json */
        bool to_stdout;       /* logging.stdout: write log lines to standard output */
        char *file;           /* logging.file: also append to this file; "" = none */
    } logging;
    struct {
        char *rpc_url;                 /* worker.rpc_url: worker RPC and data listen URL */
        int64_t slots;                 /* worker.slots: task slots; 0 = runtime.loops */
        char *controller_url;          /* worker.controller_url: where the controller is */
        int64_t heartbeat_interval_ms; /* worker.heartbeat_interval */
    } worker;
    struct {
        char *rpc_url;                  /* controller.rpc_url: control RPC listen URL */
        int64_t heartbeat_timeout_ms;   /* controller.heartbeat_timeout: worker presumed dead */
        int64_t restart_limit;          /* controller.restart_limit: restarts before failed */
        int64_t restart_backoff_ms;     /* controller.restart_backoff: first restart delay */
        int64_t restart_backoff_max_ms; /* controller.restart_backoff_max: longest delay */
        int64_t deploy_timeout_ms;      /* controller.deploy_timeout: grant to running */
    } controller;
} lm_config;

/* Fills cfg with the built-in defaults (whatever cfg held is overwritten,
 * not freed). Returns LM_OK, or LM_ENOMEM (cfg then needs no fini). */
int lm_config_init(lm_config *cfg);

/* Frees the strings cfg owns and zeroes it. Safe on a zeroed struct and
 * after a failed lm_config_init; cfg may be initialised again after. */
void lm_config_fini(lm_config *cfg);

/* Reads the YAML file at path and applies the keys it sets over cfg's
 * current values; keys it does not name keep theirs. An empty file (or one
 * with only comments) changes nothing. envp is a NULL-terminated
 * "NAME=value" array for ${VAR} interpolation (NULL = empty environment).
 * Returns LM_OK; LM_EIO when the file cannot be read ("path: cannot read:
 * ..."); LM_ECONFIG for bad content, with err naming path:line:column and the
 * key; LM_ENOMEM; LM_EINVAL when cfg or path is NULL. On error cfg is
 * unchanged. err may be NULL; it is cleared on success. */
int lm_config_load_file(lm_config *cfg, const char *path, char **envp, lm_error *err);

/* As lm_config_load_file, from the len bytes at yaml (need not be
 * NUL-terminated); name stands for the file name in messages (NULL =
 * "<string>"). Returns LM_OK, LM_ECONFIG, LM_ENOMEM, or LM_EINVAL when cfg is
 * NULL (or yaml is NULL with len > 0). */
int lm_config_load_string(lm_config *cfg, const char *name, const char *yaml, size_t len,
                          char **envp, lm_error *err);

/* Applies every LAMINAR_* variable of envp (NULL-terminated "NAME=value"
 * array; NULL = none) that names a key, by its full name or its alias.
 * Variables with the prefix that name no key are ignored (other tools share
 * the prefix). An empty value is a value (it empties a string key). Values
 * are taken literally (no ${} interpolation). Returns LM_OK; LM_ECONFIG with
 * err "environment LAMINAR_X: key: problem"; LM_ENOMEM. On error cfg is
 * unchanged. err may be NULL; it is cleared on success. */
int lm_config_apply_env(lm_config *cfg, char **envp, lm_error *err);

/* Sets one key from text, as a --set key=value flag does; value is taken
 * literally. Returns LM_OK; LM_ECONFIG for an unknown key or a bad value,
 * with err "--set key=value: problem" (the value of a secret key is shown
 * as ***); LM_ENOMEM. On error cfg is unchanged. err may be NULL; it is
 * cleared on success. */
int lm_config_set(lm_config *cfg, const char *key, const char *value, lm_error *err);

/* Checks the rules that involve more than one key: transport.reconnect_min
 * <= transport.reconnect_max, and database.postgres.url set when
 * database.type is postgres. Call once after all layers are applied.
 * Returns LM_OK or LM_ECONFIG with err naming the keys. */
int lm_config_validate(const lm_config *cfg, lm_error *err);

/* Writes key's value as text into buf (cap bytes, NUL-terminated) in the
 * canonical syntax lm_config_set accepts back: integers in decimal, bools as
 * true/false, enums as their word, durations such as "5s" or "1500ms",
 * sizes such as "64MiB" or "1000000B" ... exactly, and strings as they are
 * (secrets included: mask them yourself if you print them). Returns LM_OK;
 * LM_ENOTFOUND for an unknown key (buf then ""); LM_ETOOBIG when the text
 * does not fit (buf holds it truncated); LM_EINVAL when buf is NULL or cap
 * is 0. */
int lm_config_get_text(const lm_config *cfg, const char *key, char *buf, size_t cap);

/* Writes the whole configuration to out as YAML that lm_config_load_file
 * reads back to the same values, one section mapping per section in schema
 * order. Secrets are replaced: storage.s3.secret_access_key by "***" and
 * the password inside database.postgres.url (URL user info, ?password=, or
 * libpq's password=) by ***, unless empty. Returns LM_OK, LM_EIO when
 * writing to out fails, or LM_ENOMEM (nothing written then). */
int lm_config_dump(const lm_config *cfg, FILE *out);

/* The schema's keys, in order: lm_config_key_name(i) for i below
 * lm_config_key_count() gives the dotted name ("worker.slots"), or NULL
 * past the end; lm_config_key_doc(i) its one-line description. Static
 * strings. */
size_t lm_config_key_count(void);
const char *lm_config_key_name(size_t i);
const char *lm_config_key_doc(size_t i);

/* Reads all of s as a duration in the syntax above ("250ms", "1.5s",
 * "1h30m", a bare integer of milliseconds; a sign is allowed, so callers
 * that want none check *ms), for other places that take durations
 * (laminarctl's options). Returns LM_OK with *ms (whole milliseconds),
 * LM_EINVAL when s is not a duration or not whole milliseconds, LM_ERANGE
 * when it does not fit in an int64. */
int lm_config_parse_duration(const char *s, int64_t *ms);

#endif /* LM_CONFIG_H */
