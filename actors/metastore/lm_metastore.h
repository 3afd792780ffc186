/*
 * lm_metastore.h: the metadata store: pipelines, their versions, jobs and
 * their state history, workers and checkpoints, kept in SQLite (embedded)
 * or PostgreSQL, behind one synchronous API.
 *
 * The `metastore` actor owns one lm_ms and makes every call from its own
 * loop, off the data path: calls block on the database. A handle is not
 * thread-safe; use it from one thread at a time.
 *
 * Backends are picked by the URL given to lm_ms_open:
 *   sqlite:///abs/path/laminar.db   a file (parent directories are made)
 *   sqlite://relative/laminar.db    a path relative to the working directory
 *   sqlite://:memory:               a private in-memory database
 *   postgresql://user:pw@host:port/db?opt=val   (or postgres://...), any
 *                                   libpq URI; a libpq key=value string
 *                                   ("host=... dbname=...") is taken too.
 * Both backends hold the same schema, built by versioned migrations (an
 * ordered array of portable SQL texts in lm_metastore.c, recorded in the
 * table schema_migrations(version, applied_at)) that lm_ms_open applies,
 * each in its own transaction, under a lock that keeps two processes
 * starting at once from applying one twice; opening an up-to-date database
 * changes nothing. Ids are BIGINTs the database generates; times are
 * BIGINT milliseconds since the Unix epoch, taken from the store's clock
 * (the system's real-time clock unless lm_ms_set_clock replaces it).
 * Every value travels as a bound parameter, never pasted into SQL.
 *
 * Errors: every function returns LM_OK or a negative LM_E* code and, when
 * err is not NULL, a one-line message naming what was being done and the
 * driver's reason ("set job 7 state: ..."). Codes common to all calls:
 *   LM_EINVAL     a NULL handle or argument, an empty required string
 *   LM_ENOTFOUND  an unknown id (named in the message)
 *   LM_EEXIST     a duplicate (pipeline name, checkpoint epoch)
 *   LM_ECLOSED    the connection to the server was lost (PostgreSQL); the
 *                 next call tries to reconnect once, else the owner closes
 *                 the handle and opens a new one with backoff
 *   LM_EAGAIN     the database is busy or the transaction must be retried
 *   LM_EIO        any other database error
 *   LM_ENOMEM
 * A call that fails changes nothing in the database (each writing call is
 * one transaction).
 *
 * Ownership: records are structs whose strings the struct owns (never NULL
 * after a successful call; "" when empty), released with the matching
 * _fini. Lists are arrays of records the caller frees with the matching
 * _list_free(array, count), which also frees the records' strings. Input
 * strings are borrowed for the call only.
 */
#ifndef LM_METASTORE_H
#define LM_METASTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_config.h"
#include "lm_err.h"

typedef struct lm_ms lm_ms;

/* --- opening ------------------------------------------------------------ */

/* Opens the store at url and brings its schema up to the latest version
 * (lm_ms_latest_version). Returns LM_OK with *out (free with lm_ms_close);
 * LM_EINVAL for a URL of no known form; LM_EIO when the database cannot be
 * opened or reached, err naming the URL (password shown as ***) and the
 * driver's reason (the caller retries with backoff); LM_EVERSION when the
 * database's schema is newer than this build knows; LM_ENOMEM. */
int lm_ms_open(const char *url, lm_ms **out, lm_error *err);

/* As lm_ms_open, migrating only up to target_version (1..latest; 0 means
 * the latest). For tests of upgrades and for `migrate --to`. A database
 * already past target_version is left as it is. */
int lm_ms_open_at(const char *url, int64_t target_version, lm_ms **out, lm_error *err);

/* Closes the connection and frees ms. NULL is a no-op. */
void lm_ms_close(lm_ms *ms);

/* The highest migration version this build knows. */
int64_t lm_ms_latest_version(void);

/* Reads the schema version the database is at (the highest version in
 * schema_migrations) into *version. */
int lm_ms_schema_version(lm_ms *ms, int64_t *version, lm_error *err);

/* "sqlite" or "postgresql". */
const char *lm_ms_backend(const lm_ms *ms);

/* URLs shown or logged hide their password: lm_text_mask_password
 * (lm_text.h). */

/* The store URL a configuration names: "sqlite://" + database.sqlite.path
 * or database.postgres.url, into *out (caller frees). LM_OK, LM_ECONFIG
 * (postgres without a URL, sqlite without a path), LM_ENOMEM. */
int lm_ms_config_url(const lm_config *cfg, char **out, lm_error *err);

/* Replaces the store's clock: now(arg) gives milliseconds since the
 * epoch. now == NULL restores the real-time clock. For tests. */
void lm_ms_set_clock(lm_ms *ms, int64_t (*now)(void *arg), void *arg);

/* --- pipelines ---------------------------------------------------------- */

/* How a pipeline was asked to stop (PATCH /pipelines/{id} {stop}). */
typedef enum lm_ms_stop {
    LM_MS_STOP_NONE = 0,      /* running or meant to run */
    LM_MS_STOP_GRACEFUL = 1,  /* stop at the next checkpoint */
    LM_MS_STOP_IMMEDIATE = 2, /* stop now */
} lm_ms_stop;

/* "none", "graceful", "immediate" ("none" for an unknown value), and back:
 * LM_OK or LM_EINVAL for another word. The words the store keeps and the
 * REST API shows. */
const char *lm_ms_stop_word(lm_ms_stop s);
int lm_ms_stop_parse(const char *word, lm_ms_stop *out);

typedef struct lm_ms_pipeline {
    int64_t id;                     /* generated */
    char *name;                     /* unique among pipelines */
    char *query;                    /* the SQL text */
    int64_t parallelism;            /* >= 1 */
    int64_t checkpoint_interval_ms; /* >= 0; 0 = the configured default */
    lm_ms_stop stop;                /* the stop asked for, or LM_MS_STOP_NONE */
    int64_t latest_version;         /* highest pipeline version; 0 = none yet */
    int64_t created_ms;
    int64_t updated_ms; /* last change to the row (or a version added) */
} lm_ms_pipeline;

/* Creates a pipeline from name, query, parallelism and
 * checkpoint_interval_ms of *p (other fields ignored) and writes its new id
 * to *id. LM_EEXIST when the name is taken; LM_EINVAL for an empty name or
 * query, parallelism < 1 or a negative interval. */
int lm_ms_pipeline_create(lm_ms *ms, const lm_ms_pipeline *p, int64_t *id, lm_error *err);

/* Reads pipeline id (or the one called name) into *out (lm_ms_pipeline_fini
 * it). LM_ENOTFOUND when there is none. */
int lm_ms_pipeline_get(lm_ms *ms, int64_t id, lm_ms_pipeline *out, lm_error *err);
int lm_ms_pipeline_get_by_name(lm_ms *ms, const char *name, lm_ms_pipeline *out, lm_error *err);

/* Every pipeline, by id, into *out (*n of them; free with
 * lm_ms_pipeline_list_free; NULL when there are none). */
int lm_ms_pipeline_list(lm_ms *ms, lm_ms_pipeline **out, size_t *n, lm_error *err);

/* Which fields lm_ms_pipeline_update changes. */
enum {
    LM_MS_SET_QUERY = 1 << 0,
    LM_MS_SET_PARALLELISM = 1 << 1,
    LM_MS_SET_CHECKPOINT_INTERVAL = 1 << 2,
    LM_MS_SET_STOP = 1 << 3,
};

/* Sets the fields of pipeline id that the LM_MS_SET_* bits of set name,
 * from *p, and updated_ms to now (set == 0 only touches updated_ms).
 * LM_ENOTFOUND, LM_EINVAL as for create. */
int lm_ms_pipeline_update(lm_ms *ms, int64_t id, const lm_ms_pipeline *p, unsigned set,
                          lm_error *err);

/* Deletes pipeline id with its versions, jobs, job events and checkpoint
 * records. Whether it may be deleted (stopped) is the caller's rule.
 * LM_ENOTFOUND. */
int lm_ms_pipeline_delete(lm_ms *ms, int64_t id, lm_error *err);

void lm_ms_pipeline_fini(lm_ms_pipeline *p);
void lm_ms_pipeline_list_free(lm_ms_pipeline *a, size_t n);

/* --- pipeline versions -------------------------------------------------- */

typedef struct lm_ms_version {
    int64_t pipeline_id;
    int64_t version; /* 1, 2, ... per pipeline */
    char *query;     /* the SQL text of this version */
    char *plan_json; /* its compiled physical plan; "" when not stored */
    int64_t created_ms;
} lm_ms_version;

/* Adds the next version (latest + 1, written to *version when not NULL) of
 * pipeline pipeline_id with query (NULL = the pipeline's current query) and
 * plan_json (NULL = ""); the pipeline's query becomes query and its
 * updated_ms now. LM_ENOTFOUND. */
int lm_ms_version_add(lm_ms *ms, int64_t pipeline_id, const char *query, const char *plan_json,
                      int64_t *version, lm_error *err);

/* Reads one version (LM_ENOTFOUND) or lists them all, oldest first. */
int lm_ms_version_get(lm_ms *ms, int64_t pipeline_id, int64_t version, lm_ms_version *out,
                      lm_error *err);
int lm_ms_version_list(lm_ms *ms, int64_t pipeline_id, lm_ms_version **out, size_t *n,
                       lm_error *err);

void lm_ms_version_fini(lm_ms_version *v);
void lm_ms_version_list_free(lm_ms_version *a, size_t n);

/* --- jobs and their events ---------------------------------------------- */

/* The store keeps job states as text and does not judge transitions: the
 * job controller owns the state machine. These are the words it uses. */
#define LM_MS_JOB_CREATED    "created"
#define LM_MS_JOB_SCHEDULING "scheduling"
#define LM_MS_JOB_RUNNING    "running"
#define LM_MS_JOB_STOPPING   "stopping"
#define LM_MS_JOB_STOPPED    "stopped"
#define LM_MS_JOB_FAILED     "failed"
#define LM_MS_JOB_RESTARTING "restarting"
#define LM_MS_JOB_FINISHED   "finished" /* every source ran out and all input was consumed */

#define LM_MS_STATE_MAX 64 /* longest state word, in bytes */

typedef struct lm_ms_job {
    int64_t id;
    int64_t pipeline_id;
    int64_t version;  /* the pipeline version it runs */
    char *state;      /* LM_MS_JOB_* */
    char *reason;     /* why it entered state; "" when none given */
    int64_t restarts; /* restarts so far */
    int64_t created_ms;
    int64_t updated_ms; /* last state change */
} lm_ms_job;

typedef struct lm_ms_job_event {
    int64_t id; /* increases with every event of the store */
    int64_t job_id;
    int64_t at_ms;
    char *state;  /* the state entered */
    char *reason; /* "" when none given */
} lm_ms_job_event;

/* Creates a job of version `version` of pipeline pipeline_id in state
 * LM_MS_JOB_CREATED (reason "" ) with its first event, and writes its id to
 * *id. LM_ENOTFOUND when the pipeline or the version does not exist. */
int lm_ms_job_create(lm_ms *ms, int64_t pipeline_id, int64_t version, int64_t *id, lm_error *err);

/* Reads job id into *out (lm_ms_job_fini it). LM_ENOTFOUND. */
int lm_ms_job_get(lm_ms *ms, int64_t id, lm_ms_job *out, lm_error *err);

/* Lists jobs by id: all of them when pipeline_id is 0, else those of
 * pipeline_id (LM_ENOTFOUND when it does not exist). */
int lm_ms_job_list(lm_ms *ms, int64_t pipeline_id, lm_ms_job **out, size_t *n, lm_error *err);

/* Sets job id's state and reason (NULL = ""), updated_ms to now, adds one
 * to its restarts when restart is true, and appends the matching job event,
 * all in one transaction. When expect is not NULL the change happens only
 * if the job is in state expect: otherwise LM_ESTATE, naming both states.
 * LM_ENOTFOUND; LM_EINVAL for an empty state or one longer than
 * LM_MS_STATE_MAX. */
int lm_ms_job_set_state(lm_ms *ms, int64_t id, const char *expect, const char *state,
                        const char *reason, bool restart, lm_error *err);

/* Lists job id's events in the order they happened. LM_ENOTFOUND. */
int lm_ms_job_events(lm_ms *ms, int64_t id, lm_ms_job_event **out, size_t *n, lm_error *err);

void lm_ms_job_fini(lm_ms_job *j);
void lm_ms_job_list_free(lm_ms_job *a, size_t n);
void lm_ms_job_event_fini(lm_ms_job_event *e);
void lm_ms_job_event_list_free(lm_ms_job_event *a, size_t n);

/* --- workers ------------------------------------------------------------ */

#define LM_MS_WORKER_ALIVE "alive"
#define LM_MS_WORKER_LOST  "lost"

typedef struct lm_ms_worker {
    int64_t id;
    char *address;      /* its control RPC URL; unique */
    char *data_address; /* where its data channels listen */
    int64_t slots;
    char *state; /* LM_MS_WORKER_* or another word of the scheduler's */
    int64_t last_heartbeat_ms;
    int64_t registered_ms; /* last registration */
} lm_ms_worker;

/* Registers the worker at address: a new row, or the existing row of that
 * address updated (its id kept), with data_address, slots, state
 * LM_MS_WORKER_ALIVE and last_heartbeat_ms = registered_ms = now. Writes the
 * worker's id to *id. LM_EINVAL for an empty address or slots < 0. */
int lm_ms_worker_register(lm_ms *ms, const char *address, const char *data_address, int64_t slots,
                          int64_t *id, lm_error *err);

/* Sets worker id's last_heartbeat_ms to now. LM_ENOTFOUND. */
int lm_ms_worker_heartbeat(lm_ms *ms, int64_t id, lm_error *err);

/* Sets worker id's state (non-empty, at most LM_MS_STATE_MAX bytes).
 * LM_ENOTFOUND, LM_EINVAL. */
int lm_ms_worker_set_state(lm_ms *ms, int64_t id, const char *state, lm_error *err);

/* Reads one worker (LM_ENOTFOUND) or lists them all by id. */
int lm_ms_worker_get(lm_ms *ms, int64_t id, lm_ms_worker *out, lm_error *err);
int lm_ms_worker_list(lm_ms *ms, lm_ms_worker **out, size_t *n, lm_error *err);

void lm_ms_worker_fini(lm_ms_worker *w);
void lm_ms_worker_list_free(lm_ms_worker *a, size_t n);

/* --- checkpoints -------------------------------------------------------- */

typedef enum lm_ms_ckpt_state {
    LM_MS_CKPT_IN_PROGRESS = 0, /* "in_progress": barriers injected, acks awaited */
    LM_MS_CKPT_COMPLETED = 1,   /* "completed": every operator acked; restorable */
    LM_MS_CKPT_FAILED = 2,      /* "failed": timed out or an operator failed */
} lm_ms_ckpt_state;

typedef struct lm_ms_checkpoint {
    int64_t job_id;
    int64_t epoch;
    lm_ms_ckpt_state state;
    char *path;         /* where its files are ({checkpoint_url}/{job}/checkpoints/...) */
    char *reason;       /* why it failed; "" otherwise */
    int64_t size_bytes; /* total bytes written; 0 until completed */
    int64_t created_ms;
    int64_t completed_ms; /* when it completed or failed; 0 while in progress */
} lm_ms_checkpoint;

/* Records that checkpoint epoch (>= 1) of job job_id began, writing to path.
 * LM_ENOTFOUND for an unknown job; LM_EEXIST when the epoch is recorded. */
int lm_ms_checkpoint_begin(lm_ms *ms, int64_t job_id, int64_t epoch, const char *path,
                           lm_error *err);

/* Marks an in-progress checkpoint completed with its size. LM_ENOTFOUND;
 * LM_ESTATE when it is not in progress. */
int lm_ms_checkpoint_complete(lm_ms *ms, int64_t job_id, int64_t epoch, int64_t size_bytes,
                              lm_error *err);

/* Marks an in-progress checkpoint failed with reason (NULL = "").
 * LM_ENOTFOUND; LM_ESTATE when it is not in progress. */
int lm_ms_checkpoint_fail(lm_ms *ms, int64_t job_id, int64_t epoch, const char *reason,
                          lm_error *err);

/* Lists job job_id's checkpoints by epoch. LM_ENOTFOUND for an unknown
 * job. */
int lm_ms_checkpoint_list(lm_ms *ms, int64_t job_id, lm_ms_checkpoint **out, size_t *n,
                          lm_error *err);

/* Reads the completed checkpoint of job job_id with the highest epoch.
 * LM_ENOTFOUND when the job is unknown or has none completed. */
int lm_ms_checkpoint_latest(lm_ms *ms, int64_t job_id, lm_ms_checkpoint *out, lm_error *err);

/* "in_progress", "completed", "failed". */
const char *lm_ms_ckpt_state_name(lm_ms_ckpt_state s);

void lm_ms_checkpoint_fini(lm_ms_checkpoint *c);
void lm_ms_checkpoint_list_free(lm_ms_checkpoint *a, size_t n);

#endif /* LM_METASTORE_H */
