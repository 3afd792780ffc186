/*
 * lm_metastore.c: the metadata store's common layer: URL handling,
 * migrations, and every record operation, written once in SQL that SQLite
 * and PostgreSQL both accept (RETURNING, ON CONFLICT ... DO UPDATE,
 * COALESCE, LIMIT), run through the backend's vtable (lm_ms_int.h).
 *
 * Each writing call is one statement or one transaction; a failing call
 * rolls its transaction back, so it changes nothing. Conditional updates
 * (a job's expected state, a checkpoint still in progress) are single
 * UPDATE ... WHERE ... RETURNING statements, so they hold under
 * concurrency without SELECT ... FOR UPDATE (which SQLite lacks); only when
 * such an update matches no row does a second query tell "not found" from
 * "wrong state".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lm_ms_int.h"
#include "lm_text.h"
#include "lm_time.h"

/* --- migrations ----------------------------------------------------------
 * Append only: never edit a migration that has shipped; add the next one.
 * @ID@ becomes the backend's generated BIGINT primary key. */
typedef struct migration {
    int64_t version;
    const char *what;
    const char *sql;
} migration;

static const migration migrations[] = {
    {1, "tables",
     "CREATE TABLE pipelines ("
     "  id @ID@,"
     "  name TEXT NOT NULL UNIQUE,"
     "  query TEXT NOT NULL,"
     "  parallelism BIGINT NOT NULL,"
     "  checkpoint_interval_ms BIGINT NOT NULL,"
     "  stop TEXT NOT NULL,"
     "  created_ms BIGINT NOT NULL,"
     "  updated_ms BIGINT NOT NULL);"
     "CREATE TABLE pipeline_versions ("
     "  pipeline_id BIGINT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,"
     "  version BIGINT NOT NULL,"
     "  query TEXT NOT NULL,"
     "  plan_json TEXT NOT NULL,"
     "  created_ms BIGINT NOT NULL,"
     "  PRIMARY KEY (pipeline_id, version));"
     "CREATE TABLE jobs ("
     "  id @ID@,"
     "  pipeline_id BIGINT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,"
     "  version BIGINT NOT NULL,"
     "  state TEXT NOT NULL,"
     "  reason TEXT NOT NULL,"
     "  restarts BIGINT NOT NULL,"
     "  created_ms BIGINT NOT NULL,"
     "  updated_ms BIGINT NOT NULL,"
     "  FOREIGN KEY (pipeline_id, version)"
     "    REFERENCES pipeline_versions (pipeline_id, version) ON DELETE CASCADE);"
     "CREATE TABLE job_events ("
     "  id @ID@,"
     "  job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
     "  at_ms BIGINT NOT NULL,"
     "  state TEXT NOT NULL,"
     "  reason TEXT NOT NULL);"
     "CREATE TABLE workers ("
     "  id @ID@,"
     "  address TEXT NOT NULL UNIQUE,"
     "  data_address TEXT NOT NULL,"
     "  slots BIGINT NOT NULL,"
     "  state TEXT NOT NULL,"
     "  last_heartbeat_ms BIGINT NOT NULL,"
     "  registered_ms BIGINT NOT NULL);"
     "CREATE TABLE checkpoints ("
     "  job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
     "  epoch BIGINT NOT NULL,"
     "  state TEXT NOT NULL,"
     "  path TEXT NOT NULL,"
     "  reason TEXT NOT NULL,"
     "  size_bytes BIGINT NOT NULL,"
     "  created_ms BIGINT NOT NULL,"
     "  completed_ms BIGINT NOT NULL,"
     "  PRIMARY KEY (job_id, epoch));"},
    {2, "indexes",
     "CREATE INDEX jobs_pipeline_idx ON jobs (pipeline_id, id);"
     "CREATE INDEX job_events_job_idx ON job_events (job_id, id);"
     "CREATE INDEX jobs_version_idx ON jobs (pipeline_id, version);"},
};

#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int64_t
lm_ms_latest_version(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

/* --- small helpers ------------------------------------------------------- */

#define P_INT(v)  ((ms_param){MS_INT, (v), NULL})
#define P_TEXT(v) ((ms_param){MS_TEXT, 0, (v)})
#define P_NULL    ((ms_param){MS_NULL, 0, NULL})
#define NP(a)     ((int)(sizeof(a) / sizeof(a[0])))

/* A caller may pass err == NULL; the code still needs a message buffer. */
#define LOCAL_ERR(err)                                                                             \
    lm_error local_err_;                                                                           \
    if ((err) == NULL) {                                                                           \
        (err) = &local_err_;                                                                       \
    }                                                                                              \
    lm_error_clear(err)

int
lm_ms_rows_add(ms_rows *rows, size_t ncols, char **cells)
{
    size_t need = (rows->nrows + 1) * ncols;

    if (rows->nrows > 0 && rows->ncols != ncols) {
        goto fail; /* one statement's rows all have its columns */
    }
    if (need > rows->cap) {
        size_t cap = rows->cap == 0 ? 16 : rows->cap;
        char **p;
        while (cap < need) {
            cap *= 2;
        }
        if ((p = realloc(rows->cells, cap * sizeof(char *))) == NULL) {
            goto fail;
        }
        rows->cells = p;
        rows->cap = cap;
    }
    if (ncols > 0) {
        memcpy(rows->cells + rows->nrows * ncols, cells, ncols * sizeof(char *));
    }
    rows->ncols = ncols;
    rows->nrows++;
    free(cells);
    return LM_OK;
fail:
    for (size_t c = 0; c < ncols; c++) {
        free(cells[c]);
    }
    free(cells);
    return LM_ENOMEM;
}

void
lm_ms_rows_free(ms_rows *rows)
{
    for (size_t i = 0; i < rows->nrows * rows->ncols; i++) {
        free(rows->cells[i]);
    }
    free(rows->cells);
    memset(rows, 0, sizeof(*rows));
}

int
lm_ms_driver_error(lm_error *err, int code, const char *msg)
{
    char line[LM_ERROR_MSG_MAX];
    size_t o = 0;
    bool space = false;

    for (const char *p = msg != NULL ? msg : "unknown error"; *p != '\0' && o + 1 < sizeof(line);
         p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < sizeof(line)) {
            line[o++] = ' ';
        }
        space = false;
        line[o++] = *p;
    }
    line[o] = '\0';
    return lm_error_set(err, code, "%s", line);
}

static const char *
cell(const ms_rows *rows, size_t r, size_t c)
{
    return rows->cells[r * rows->ncols + c];
}

static int64_t
cell_i64(const ms_rows *rows, size_t r, size_t c)
{
    const char *s = cell(rows, r, c);
    return s != NULL ? strtoll(s, NULL, 10) : 0;
}

/* A copy of the cell ("" for NULL) into *out; false when out of memory. */
static bool
cell_str(const ms_rows *rows, size_t r, size_t c, char **out)
{
    const char *s = cell(rows, r, c);
    *out = strdup(s != NULL ? s : "");
    return *out != NULL;
}

static int64_t
now_ms(lm_ms *ms)
{
    if (ms->now != NULL) {
        return ms->now(ms->now_arg);
    }
    return lm_clock_wall_ms();
}

static int
run(lm_ms *ms, const char *sql, const ms_param *p, int np, ms_rows *rows, lm_error *err)
{
    return ms->ops->exec(ms, sql, p, np, rows, err);
}

/* Runs a query expected to give at most one row whose first column is an
 * integer: *found says whether it gave one. */
static int
run_i64(lm_ms *ms, const char *sql, const ms_param *p, int np, int64_t *out, bool *found,
        lm_error *err)
{
    ms_rows rows = {0};
    int rv = run(ms, sql, p, np, &rows, err);

    *found = rv == LM_OK && rows.nrows > 0 && rows.ncols > 0;
    if (*found) {
        *out = cell_i64(&rows, 0, 0);
    }
    lm_ms_rows_free(&rows);
    return rv;
}

/* Runs a query that should give a row (a lookup, or an UPDATE or DELETE
 * ... RETURNING): LM_ENOTFOUND, with notfound as the message, when it
 * gives none. */
static int
run_found(lm_ms *ms, const char *sql, const ms_param *p, int np, const char *notfound,
          lm_error *err)
{
    int64_t ignored;
    bool found;
    int rv = run_i64(ms, sql, p, np, &ignored, &found, err);

    if (rv == LM_OK && !found) {
        rv = lm_error_set(err, LM_ENOTFOUND, "%s", notfound);
    }
    return rv;
}

/* run_found for a query whose one parameter is id. */
static int
exists(lm_ms *ms, const char *sql, int64_t id, const char *notfound, lm_error *err)
{
    ms_param p[] = {P_INT(id)};
    return run_found(ms, sql, p, NP(p), notfound, err);
}

#define PIPELINE_EXISTS "SELECT 1 FROM pipelines WHERE id = $1"
#define JOB_EXISTS      "SELECT 1 FROM jobs WHERE id = $1"

static int
tx_begin(lm_ms *ms, lm_error *err)
{
    int rv = run(ms, ms->ops->begin_sql, NULL, 0, NULL, err);
    ms->in_tx = rv == LM_OK;
    return rv;
}

static void
tx_rollback(lm_ms *ms)
{
    lm_error ignored;
    if (ms->in_tx) {
        run(ms, "ROLLBACK", NULL, 0, NULL, &ignored);
        ms->in_tx = false;
    }
}

/* Ends a call: commits its transaction when rv is LM_OK, else rolls it
 * back; prefixes the message of a failure with what was being done. */
static int
finish(lm_ms *ms, int rv, lm_error *err, const char *what)
{
    if (rv == LM_OK && ms->in_tx) {
        rv = run(ms, "COMMIT", NULL, 0, NULL, err);
        if (rv == LM_OK) {
            ms->in_tx = false;
        }
    }
    if (rv != LM_OK) {
        tx_rollback(ms);
        lm_error_prefix(err, "%s", what);
    } else {
        lm_error_clear(err);
    }
    return rv;
}

static int
bad_state_word(const char *state, lm_error *err)
{
    if (state == NULL || state[0] == '\0') {
        return lm_error_set(err, LM_EINVAL, "empty state");
    }
    if (strlen(state) > LM_MS_STATE_MAX) {
        return lm_error_set(err, LM_EINVAL, "state longer than %d bytes", LM_MS_STATE_MAX);
    }
    return LM_OK;
}

/* A generic list: runs the query, decodes every row into an element of
 * size `size` with decode, frees what was decoded on failure with fini. */
typedef int (*decode_fn)(const ms_rows *rows, size_t r, void *out);
typedef void (*fini_fn)(void *elem);

static int
run_list(lm_ms *ms, const char *sql, const ms_param *p, int np, size_t size, decode_fn decode,
         fini_fn fini, void **out, size_t *n, lm_error *err)
{
    ms_rows rows = {0};
    char *a = NULL;
    size_t i = 0;
    int rv;

    *out = NULL;
    *n = 0;
    if ((rv = run(ms, sql, p, np, &rows, err)) != LM_OK) {
        goto done;
    }
    if (rows.nrows > 0 && (a = calloc(rows.nrows, size)) == NULL) {
        rv = lm_error_set(err, LM_ENOMEM, "out of memory");
        goto done;
    }
    for (; i < rows.nrows; i++) {
        if ((rv = decode(&rows, i, a + i * size)) != LM_OK) {
            lm_error_set(err, rv, "%s", rv == LM_ENOMEM ? "out of memory" : "bad row");
            while (i-- > 0) {
                fini(a + i * size);
            }
            free(a);
            a = NULL;
            goto done;
        }
    }
    *out = a;
    *n = rows.nrows;
done:
    lm_ms_rows_free(&rows);
    return rv;
}

/* Runs a query for one record: LM_ENOTFOUND (with notfound as the
 * message) when it gives no row. */
static int
run_one(lm_ms *ms, const char *sql, const ms_param *p, int np, decode_fn decode, void *out,
        const char *notfound, lm_error *err)
{
    ms_rows rows = {0};
    int rv = run(ms, sql, p, np, &rows, err);

    if (rv == LM_OK && rows.nrows == 0) {
        rv = lm_error_set(err, LM_ENOTFOUND, "%s", notfound);
    } else if (rv == LM_OK && (rv = decode(&rows, 0, out)) != LM_OK) {
        lm_error_set(err, rv, "%s", rv == LM_ENOMEM ? "out of memory" : "bad row");
    }
    lm_ms_rows_free(&rows);
    return rv;
}

/* --- URLs ---------------------------------------------------------------- */

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int
lm_ms_config_url(const lm_config *cfg, char **out, lm_error *err)
{
    const char *s;

    *out = NULL;
    if (cfg->database.type == LM_CONFIG_DB_SQLITE) {
        s = cfg->database.sqlite.path;
        if (s == NULL || s[0] == '\0') {
            return lm_error_set(err, LM_ECONFIG, "database.sqlite.path is empty");
        }
        if (asprintf(out, "sqlite://%s", s) < 0) {
            *out = NULL;
            return lm_error_set(err, LM_ENOMEM, "out of memory");
        }
        return LM_OK;
    }
    s = cfg->database.postgres.url;
    if (s == NULL || s[0] == '\0') {
        return lm_error_set(err, LM_ECONFIG,
                            "database.type is postgres but database.postgres.url is empty");
    }
    if ((*out = strdup(s)) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    return LM_OK;
}

/* --- opening and migrations ---------------------------------------------- */

/* The migration's SQL with @ID@ replaced (caller frees), or NULL. */
static char *
migration_sql(const char *sql, const char *id_column)
{
    size_t n = 0, idlen = strlen(id_column);
    const char *p;
    char *out, *o;

    for (p = sql; (p = strstr(p, "@ID@")) != NULL; p += 4) {
        n++;
    }
    if ((out = malloc(strlen(sql) + n * idlen + 1)) == NULL) {
        return NULL;
    }
    for (o = out, p = sql;;) {
        const char *tok = strstr(p, "@ID@");
        size_t len = tok != NULL ? (size_t)(tok - p) : strlen(p);
        memcpy(o, p, len);
        o += len;
        if (tok == NULL) {
            break;
        }
        memcpy(o, id_column, idlen);
        o += idlen;
        p = tok + 4;
    }
    *o = '\0';
    return out;
}

#define VERSION_SQL "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"

/* Inside a transaction: takes the migration lock, makes sure
 * schema_migrations exists, and reads the version. */
static int
locked_version(lm_ms *ms, int64_t *version, lm_error *err)
{
    bool found;
    int rv;

    if (ms->ops->lock_sql != NULL &&
        (rv = run(ms, ms->ops->lock_sql, NULL, 0, NULL, err)) != LM_OK) {
        return rv;
    }
    if ((rv = ms->ops->script(ms,
                              "CREATE TABLE IF NOT EXISTS schema_migrations ("
                              "version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                              err)) != LM_OK) {
        return rv;
    }
    if ((rv = run_i64(ms, VERSION_SQL, NULL, 0, version, &found, err)) == LM_OK && !found) {
        *version = 0;
    }
    return rv;
}

static int
migrate(lm_ms *ms, int64_t target, lm_error *err)
{
    char what[96];
    int64_t cur;
    int rv;

    snprintf(what, sizeof(what), "read the schema version");
    if ((rv = tx_begin(ms, err)) == LM_OK) {
        rv = locked_version(ms, &cur, err);
    }
    if ((rv = finish(ms, rv, err, what)) != LM_OK) {
        return rv;
    }
    if (cur > lm_ms_latest_version()) {
        return lm_error_set(err, LM_EVERSION,
                            "the database's schema is at version %" PRId64
                            ", newer than this build knows (%" PRId64 "); upgrade Laminar",
                            cur, lm_ms_latest_version());
    }
    for (size_t i = 0; i < NMIGRATIONS && migrations[i].version <= target; i++) {
        const migration *m = &migrations[i];
        ms_param p[] = {P_INT(m->version), P_INT(now_ms(ms))};
        char *sql;

        if (m->version <= cur) {
            continue;
        }
        snprintf(what, sizeof(what), "migration %" PRId64 " (%s)", m->version, m->what);
        if ((sql = migration_sql(m->sql, ms->ops->id_column)) == NULL) {
            return lm_error_set(err, LM_ENOMEM, "%s: out of memory", what);
        }
        /* Another process may have applied it since we looked: look again
         * under the lock. */
        if ((rv = tx_begin(ms, err)) == LM_OK && (rv = locked_version(ms, &cur, err)) == LM_OK &&
            cur < m->version) {
            if ((rv = ms->ops->script(ms, sql, err)) == LM_OK) {
                rv = run(ms, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                         p, NP(p), NULL, err);
            }
        }
        free(sql);
        if ((rv = finish(ms, rv, err, what)) != LM_OK) {
            return rv;
        }
    }
    return LM_OK;
}

int
lm_ms_open_at(const char *url, int64_t target, lm_ms **out, lm_error *err)
{
    char masked[256];
    lm_ms *ms;
    int rv;

    LOCAL_ERR(err);
    if (out == NULL) {
        return lm_error_set(err, LM_EINVAL, "metadata store: no place for the handle");
    }
    *out = NULL;
    if (url == NULL || url[0] == '\0') {
        return lm_error_set(err, LM_EINVAL, "metadata store: empty URL");
    }
    if (target < 0 || target > lm_ms_latest_version()) {
        return lm_error_set(err, LM_EINVAL,
                            "metadata store: no schema version %" PRId64 " (latest %" PRId64 ")",
                            target, lm_ms_latest_version());
    }
    if (target == 0) {
        target = lm_ms_latest_version();
    }
    lm_text_mask_password(url, masked, sizeof(masked));
    if ((ms = calloc(1, sizeof(*ms))) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    if (has_prefix(url, "sqlite://")) {
        ms->ops = &lm_ms_sqlite_ops;
    } else if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://") ||
               (strstr(url, "://") == NULL && strchr(url, '=') != NULL)) {
        ms->ops = &lm_ms_pg_ops;
    } else {
        free(ms);
        return lm_error_set(err, LM_EINVAL,
                            "metadata store URL '%s': want sqlite://PATH, postgresql://... or a "
                            "libpq key=value string",
                            masked);
    }
    if ((rv = ms->ops->open(ms, url, err)) != LM_OK) {
        lm_error_prefix(err, "metadata store %s: cannot open", masked);
        free(ms);
        return rv;
    }
    if ((rv = migrate(ms, target, err)) != LM_OK) {
        lm_error_prefix(err, "metadata store %s", masked);
        lm_ms_close(ms);
        return rv;
    }
    *out = ms;
    lm_error_clear(err);
    return LM_OK;
}

int
lm_ms_open(const char *url, lm_ms **out, lm_error *err)
{
    return lm_ms_open_at(url, 0, out, err);
}

void
lm_ms_close(lm_ms *ms)
{
    if (ms == NULL) {
        return;
    }
    tx_rollback(ms);
    ms->ops->close(ms);
    free(ms);
}

int
lm_ms_schema_version(lm_ms *ms, int64_t *version, lm_error *err)
{
    bool found;
    int rv;

    LOCAL_ERR(err);
    if (ms == NULL || version == NULL) {
        return lm_error_set(err, LM_EINVAL, "schema version: NULL argument");
    }
    rv = run_i64(ms, VERSION_SQL, NULL, 0, version, &found, err);
    if (rv == LM_OK && !found) {
        *version = 0;
    }
    return finish(ms, rv, err, "read the schema version");
}

const char *
lm_ms_backend(const lm_ms *ms)
{
    return ms != NULL ? ms->ops->name : "";
}

void
lm_ms_set_clock(lm_ms *ms, int64_t (*now)(void *arg), void *arg)
{
    ms->now = now;
    ms->now_arg = arg;
}

/* --- pipelines ----------------------------------------------------------- */

static const char *const stop_words[] = {"none", "graceful", "immediate"};

const char *
lm_ms_stop_word(lm_ms_stop s)
{
    return (unsigned)s < 3 ? stop_words[s] : "none";
}

int
lm_ms_stop_parse(const char *word, lm_ms_stop *out)
{
    for (unsigned i = 0; i < 3; i++) {
        if (word != NULL && strcmp(word, stop_words[i]) == 0) {
            *out = (lm_ms_stop)i;
            return LM_OK;
        }
    }
    return LM_EINVAL;
}

#define PIPELINE_COLS                                                                              \
    "p.id, p.name, p.query, p.parallelism, p.checkpoint_interval_ms, p.stop, "                     \
    "COALESCE((SELECT MAX(v.version) FROM pipeline_versions v WHERE v.pipeline_id = p.id), 0), "   \
    "p.created_ms, p.updated_ms "

void
lm_ms_pipeline_fini(lm_ms_pipeline *p)
{
    if (p != NULL) {
        free(p->name);
        free(p->query);
        memset(p, 0, sizeof(*p));
    }
}

static void
pipeline_fini_v(void *p)
{
    lm_ms_pipeline_fini(p);
}

static int
decode_pipeline(const ms_rows *rows, size_t r, void *out)
{
    lm_ms_pipeline *p = out;

    memset(p, 0, sizeof(*p));
    p->id = cell_i64(rows, r, 0);
    if (!cell_str(rows, r, 1, &p->name) || !cell_str(rows, r, 2, &p->query)) {
        lm_ms_pipeline_fini(p);
        return LM_ENOMEM;
    }
    p->parallelism = cell_i64(rows, r, 3);
    p->checkpoint_interval_ms = cell_i64(rows, r, 4);
    (void)lm_ms_stop_parse(cell(rows, r, 5), &p->stop); /* another word: stays none */
    p->latest_version = cell_i64(rows, r, 6);
    p->created_ms = cell_i64(rows, r, 7);
    p->updated_ms = cell_i64(rows, r, 8);
    return LM_OK;
}

void
lm_ms_pipeline_list_free(lm_ms_pipeline *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        lm_ms_pipeline_fini(&a[i]);
    }
    free(a);
}

static int
check_pipeline_fields(const lm_ms_pipeline *p, unsigned set, lm_error *err)
{
    if ((set & LM_MS_SET_QUERY) && (p->query == NULL || p->query[0] == '\0')) {
        return lm_error_set(err, LM_EINVAL, "empty query");
    }
    if ((set & LM_MS_SET_PARALLELISM) && p->parallelism < 1) {
        return lm_error_set(err, LM_EINVAL, "parallelism %" PRId64 " is below 1", p->parallelism);
    }
    if ((set & LM_MS_SET_CHECKPOINT_INTERVAL) && p->checkpoint_interval_ms < 0) {
        return lm_error_set(err, LM_EINVAL, "negative checkpoint interval");
    }
    if ((set & LM_MS_SET_STOP) && (unsigned)p->stop > LM_MS_STOP_IMMEDIATE) {
        return lm_error_set(err, LM_EINVAL, "unknown stop mode %d", (int)p->stop);
    }
    return LM_OK;
}

int
lm_ms_pipeline_create(lm_ms *ms, const lm_ms_pipeline *p, int64_t *id, lm_error *err)
{
    char what[128];
    int64_t now, newid = 0;
    bool found;
    int rv;

    LOCAL_ERR(err);
    if (ms == NULL || p == NULL || p->name == NULL || p->name[0] == '\0') {
        return lm_error_set(err, LM_EINVAL, "create pipeline: no name");
    }
    snprintf(what, sizeof(what), "create pipeline '%.80s'", p->name);
    if ((rv = check_pipeline_fields(
             p, LM_MS_SET_QUERY | LM_MS_SET_PARALLELISM | LM_MS_SET_CHECKPOINT_INTERVAL, err)) !=
        LM_OK) {
        return finish(ms, rv, err, what);
    }
    now = now_ms(ms);
    ms_param a[] = {P_TEXT(p->name), P_TEXT(p->query), P_INT(p->parallelism),
                    P_INT(p->checkpoint_interval_ms), P_INT(now)};
    rv = run_i64(ms,
                 "INSERT INTO pipelines (name, query, parallelism, checkpoint_interval_ms, stop, "
                 "created_ms, updated_ms) VALUES ($1, $2, $3, $4, 'none', $5, $5) RETURNING id",
                 a, NP(a), &newid, &found, err);
    if (rv == LM_EEXIST) {
        lm_error_set(err, rv, "the name is taken");
    } else if (rv == LM_OK && !found) {
        rv = lm_error_set(err, LM_EIO, "no id returned");
    }
    if ((rv = finish(ms, rv, err, what)) == LM_OK && id != NULL) {
        *id = newid;
    }
    return rv;
}

int
lm_ms_pipeline_get(lm_ms *ms, int64_t id, lm_ms_pipeline *out, lm_error *err)
{
    char what[64];
    ms_param a[] = {P_INT(id)};

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "get pipeline %" PRId64, id);
    if (ms == NULL || out == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    return finish(ms,
                  run_one(ms, "SELECT " PIPELINE_COLS "FROM pipelines p WHERE p.id = $1", a, NP(a),
                          decode_pipeline, out, "no such pipeline", err),
                  err, what);
}

int
lm_ms_pipeline_get_by_name(lm_ms *ms, const char *name, lm_ms_pipeline *out, lm_error *err)
{
    char what[128];

    LOCAL_ERR(err);
    if (ms == NULL || out == NULL || name == NULL) {
        return lm_error_set(err, LM_EINVAL, "get pipeline by name: NULL argument");
    }
    snprintf(what, sizeof(what), "get pipeline '%.80s'", name);
    ms_param a[] = {P_TEXT(name)};
    return finish(ms,
                  run_one(ms, "SELECT " PIPELINE_COLS "FROM pipelines p WHERE p.name = $1", a,
                          NP(a), decode_pipeline, out, "no such pipeline", err),
                  err, what);
}

int
lm_ms_pipeline_list(lm_ms *ms, lm_ms_pipeline **out, size_t *n, lm_error *err)
{
    LOCAL_ERR(err);
    if (ms == NULL || out == NULL || n == NULL) {
        return lm_error_set(err, LM_EINVAL, "list pipelines: NULL argument");
    }
    return finish(ms,
                  run_list(ms, "SELECT " PIPELINE_COLS "FROM pipelines p ORDER BY p.id", NULL, 0,
                           sizeof(lm_ms_pipeline), decode_pipeline, pipeline_fini_v, (void **)out,
                           n, err),
                  err, "list pipelines");
}

int
lm_ms_pipeline_update(lm_ms *ms, int64_t id, const lm_ms_pipeline *p, unsigned set, lm_error *err)
{
    char what[64];
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "update pipeline %" PRId64, id);
    if (ms == NULL || (p == NULL && set != 0)) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    if ((rv = check_pipeline_fields(p, set, err)) != LM_OK) {
        return finish(ms, rv, err, what);
    }
    /* NULL leaves a column as it is. */
    ms_param a[] = {
        P_INT(id),
        (set & LM_MS_SET_QUERY) ? P_TEXT(p->query) : P_NULL,
        (set & LM_MS_SET_PARALLELISM) ? P_INT(p->parallelism) : P_NULL,
        (set & LM_MS_SET_CHECKPOINT_INTERVAL) ? P_INT(p->checkpoint_interval_ms) : P_NULL,
        (set & LM_MS_SET_STOP) ? P_TEXT(lm_ms_stop_word(p->stop)) : P_NULL,
        P_INT(now_ms(ms)),
    };
    rv = run_found(ms,
                   "UPDATE pipelines SET query = COALESCE($2, query), "
                   "parallelism = COALESCE($3, parallelism), "
                   "checkpoint_interval_ms = COALESCE($4, checkpoint_interval_ms), "
                   "stop = COALESCE($5, stop), updated_ms = $6 WHERE id = $1 RETURNING id",
                   a, NP(a), "no such pipeline", err);
    return finish(ms, rv, err, what);
}

int
lm_ms_pipeline_delete(lm_ms *ms, int64_t id, lm_error *err)
{
    char what[64];
    ms_param a[] = {P_INT(id)};
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "delete pipeline %" PRId64, id);
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    rv = run_found(ms, "DELETE FROM pipelines WHERE id = $1 RETURNING id", a, NP(a),
                   "no such pipeline", err);
    return finish(ms, rv, err, what);
}

/* --- pipeline versions --------------------------------------------------- */

#define VERSION_COLS "pipeline_id, version, query, plan_json, created_ms "

void
lm_ms_version_fini(lm_ms_version *v)
{
    if (v != NULL) {
        free(v->query);
        free(v->plan_json);
        memset(v, 0, sizeof(*v));
    }
}

static void
version_fini_v(void *v)
{
    lm_ms_version_fini(v);
}

void
lm_ms_version_list_free(lm_ms_version *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        lm_ms_version_fini(&a[i]);
    }
    free(a);
}

static int
decode_version(const ms_rows *rows, size_t r, void *out)
{
    lm_ms_version *v = out;

    memset(v, 0, sizeof(*v));
    v->pipeline_id = cell_i64(rows, r, 0);
    v->version = cell_i64(rows, r, 1);
    if (!cell_str(rows, r, 2, &v->query) || !cell_str(rows, r, 3, &v->plan_json)) {
        lm_ms_version_fini(v);
        return LM_ENOMEM;
    }
    v->created_ms = cell_i64(rows, r, 4);
    return LM_OK;
}

int
lm_ms_version_add(lm_ms *ms, int64_t pipeline_id, const char *query, const char *plan_json,
                  int64_t *version, lm_error *err)
{
    char what[80];
    ms_rows rows = {0};
    int64_t next = 0, now;
    bool found;
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "add a version to pipeline %" PRId64, pipeline_id);
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    if (query != NULL && query[0] == '\0') {
        return lm_error_set(err, LM_EINVAL, "%s: empty query", what);
    }
    now = now_ms(ms);
    if ((rv = tx_begin(ms, err)) != LM_OK) {
        return finish(ms, rv, err, what);
    }
    /* The update comes first: it locks the pipeline's row (PostgreSQL) so
     * that two adds cannot pick the same number, and gives the query. */
    {
        ms_param a[] = {P_INT(pipeline_id), query != NULL ? P_TEXT(query) : P_NULL, P_INT(now)};
        rv = run(ms,
                 "UPDATE pipelines SET query = COALESCE($2, query), updated_ms = $3 "
                 "WHERE id = $1 RETURNING query",
                 a, NP(a), &rows, err);
    }
    if (rv == LM_OK && rows.nrows == 0) {
        rv = lm_error_set(err, LM_ENOTFOUND, "no such pipeline");
    }
    if (rv == LM_OK) {
        ms_param a[] = {P_INT(pipeline_id)};
        rv = run_i64(ms,
                     "SELECT COALESCE(MAX(version), 0) + 1 FROM pipeline_versions "
                     "WHERE pipeline_id = $1",
                     a, NP(a), &next, &found, err);
    }
    if (rv == LM_OK) {
        ms_param a[] = {P_INT(pipeline_id), P_INT(next), P_TEXT(cell(&rows, 0, 0)),
                        P_TEXT(plan_json != NULL ? plan_json : ""), P_INT(now)};
        rv = run(ms,
                 "INSERT INTO pipeline_versions (pipeline_id, version, query, plan_json, "
                 "created_ms) VALUES ($1, $2, $3, $4, $5)",
                 a, NP(a), NULL, err);
    }
    lm_ms_rows_free(&rows);
    if ((rv = finish(ms, rv, err, what)) == LM_OK && version != NULL) {
        *version = next;
    }
    return rv;
}

int
lm_ms_version_get(lm_ms *ms, int64_t pipeline_id, int64_t version, lm_ms_version *out,
                  lm_error *err)
{
    char what[80];
    ms_param a[] = {P_INT(pipeline_id), P_INT(version)};

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "get version %" PRId64 " of pipeline %" PRId64, version,
             pipeline_id);
    if (ms == NULL || out == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    return finish(ms,
                  run_one(ms,
                          "SELECT " VERSION_COLS "FROM pipeline_versions "
                          "WHERE pipeline_id = $1 AND version = $2",
                          a, NP(a), decode_version, out, "no such pipeline version", err),
                  err, what);
}

int
lm_ms_version_list(lm_ms *ms, int64_t pipeline_id, lm_ms_version **out, size_t *n, lm_error *err)
{
    char what[80];
    ms_param a[] = {P_INT(pipeline_id)};
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "list versions of pipeline %" PRId64, pipeline_id);
    if (ms == NULL || out == NULL || n == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    *out = NULL;
    *n = 0;
    rv = exists(ms, PIPELINE_EXISTS, pipeline_id, "no such pipeline", err);
    if (rv == LM_OK) {
        rv = run_list(ms,
                      "SELECT " VERSION_COLS "FROM pipeline_versions WHERE pipeline_id = $1 "
                      "ORDER BY version",
                      a, NP(a), sizeof(lm_ms_version), decode_version, version_fini_v, (void **)out,
                      n, err);
    }
    return finish(ms, rv, err, what);
}

/* --- jobs ---------------------------------------------------------------- */

#define JOB_COLS "id, pipeline_id, version, state, reason, restarts, created_ms, updated_ms "

void
lm_ms_job_fini(lm_ms_job *j)
{
    if (j != NULL) {
        free(j->state);
        free(j->reason);
        memset(j, 0, sizeof(*j));
    }
}

static void
job_fini_v(void *j)
{
    lm_ms_job_fini(j);
}

void
lm_ms_job_list_free(lm_ms_job *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        lm_ms_job_fini(&a[i]);
    }
    free(a);
}

static int
decode_job(const ms_rows *rows, size_t r, void *out)
{
    lm_ms_job *j = out;

    memset(j, 0, sizeof(*j));
    j->id = cell_i64(rows, r, 0);
    j->pipeline_id = cell_i64(rows, r, 1);
    j->version = cell_i64(rows, r, 2);
    if (!cell_str(rows, r, 3, &j->state) || !cell_str(rows, r, 4, &j->reason)) {
        lm_ms_job_fini(j);
        return LM_ENOMEM;
    }
    j->restarts = cell_i64(rows, r, 5);
    j->created_ms = cell_i64(rows, r, 6);
    j->updated_ms = cell_i64(rows, r, 7);
    return LM_OK;
}

void
lm_ms_job_event_fini(lm_ms_job_event *e)
{
    if (e != NULL) {
        free(e->state);
        free(e->reason);
        memset(e, 0, sizeof(*e));
    }
}

static void
job_event_fini_v(void *e)
{
    lm_ms_job_event_fini(e);
}

void
lm_ms_job_event_list_free(lm_ms_job_event *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        lm_ms_job_event_fini(&a[i]);
    }
    free(a);
}

static int
decode_job_event(const ms_rows *rows, size_t r, void *out)
{
    lm_ms_job_event *e = out;

    memset(e, 0, sizeof(*e));
    e->id = cell_i64(rows, r, 0);
    e->job_id = cell_i64(rows, r, 1);
    e->at_ms = cell_i64(rows, r, 2);
    if (!cell_str(rows, r, 3, &e->state) || !cell_str(rows, r, 4, &e->reason)) {
        lm_ms_job_event_fini(e);
        return LM_ENOMEM;
    }
    return LM_OK;
}

static int
add_job_event(lm_ms *ms, int64_t job_id, int64_t at, const char *state, const char *reason,
              lm_error *err)
{
    ms_param a[] = {P_INT(job_id), P_INT(at), P_TEXT(state), P_TEXT(reason)};
    return run(ms, "INSERT INTO job_events (job_id, at_ms, state, reason) VALUES ($1, $2, $3, $4)",
               a, NP(a), NULL, err);
}

int
lm_ms_job_create(lm_ms *ms, int64_t pipeline_id, int64_t version, int64_t *id, lm_error *err)
{
    char what[96];
    int64_t now, newid = 0;
    bool found;
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "create a job of pipeline %" PRId64 " version %" PRId64,
             pipeline_id, version);
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    now = now_ms(ms);
    if ((rv = tx_begin(ms, err)) != LM_OK) {
        return finish(ms, rv, err, what);
    }
    rv = exists(ms, PIPELINE_EXISTS, pipeline_id, "no such pipeline", err);
    if (rv == LM_OK) {
        ms_param a[] = {P_INT(pipeline_id), P_INT(version)};
        rv =
            run_found(ms, "SELECT 1 FROM pipeline_versions WHERE pipeline_id = $1 AND version = $2",
                      a, NP(a), "no such pipeline version", err);
    }
    if (rv == LM_OK) {
        ms_param a[] = {P_INT(pipeline_id), P_INT(version), P_TEXT(LM_MS_JOB_CREATED), P_INT(now)};
        rv = run_i64(ms,
                     "INSERT INTO jobs (pipeline_id, version, state, reason, restarts, "
                     "created_ms, updated_ms) VALUES ($1, $2, $3, '', 0, $4, $4) RETURNING id",
                     a, NP(a), &newid, &found, err);
        if (rv == LM_OK && !found) {
            rv = lm_error_set(err, LM_EIO, "no id returned");
        }
    }
    if (rv == LM_OK) {
        rv = add_job_event(ms, newid, now, LM_MS_JOB_CREATED, "", err);
    }
    if ((rv = finish(ms, rv, err, what)) == LM_OK && id != NULL) {
        *id = newid;
    }
    return rv;
}

int
lm_ms_job_get(lm_ms *ms, int64_t id, lm_ms_job *out, lm_error *err)
{
    char what[64];
    ms_param a[] = {P_INT(id)};

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "get job %" PRId64, id);
    if (ms == NULL || out == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    return finish(ms,
                  run_one(ms, "SELECT " JOB_COLS "FROM jobs WHERE id = $1", a, NP(a), decode_job,
                          out, "no such job", err),
                  err, what);
}

int
lm_ms_job_list(lm_ms *ms, int64_t pipeline_id, lm_ms_job **out, size_t *n, lm_error *err)
{
    char what[64];
    ms_param a[] = {P_INT(pipeline_id)};
    int rv = LM_OK;

    LOCAL_ERR(err);
    if (pipeline_id == 0) {
        snprintf(what, sizeof(what), "list jobs");
    } else {
        snprintf(what, sizeof(what), "list jobs of pipeline %" PRId64, pipeline_id);
    }
    if (ms == NULL || out == NULL || n == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    *out = NULL;
    *n = 0;
    if (pipeline_id == 0) {
        rv = run_list(ms, "SELECT " JOB_COLS "FROM jobs ORDER BY id", NULL, 0, sizeof(lm_ms_job),
                      decode_job, job_fini_v, (void **)out, n, err);
        return finish(ms, rv, err, what);
    }
    rv = exists(ms, PIPELINE_EXISTS, pipeline_id, "no such pipeline", err);
    if (rv == LM_OK) {
        rv = run_list(ms, "SELECT " JOB_COLS "FROM jobs WHERE pipeline_id = $1 ORDER BY id", a,
                      NP(a), sizeof(lm_ms_job), decode_job, job_fini_v, (void **)out, n, err);
    }
    return finish(ms, rv, err, what);
}

int
lm_ms_job_set_state(lm_ms *ms, int64_t id, const char *expect, const char *state,
                    const char *reason, bool restart, lm_error *err)
{
    char what[128];
    ms_rows rows = {0};
    int64_t now, ignored;
    bool found;
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "set job %" PRId64 " state to '%.64s'", id,
             state != NULL ? state : "");
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    if ((rv = bad_state_word(state, err)) != LM_OK ||
        (expect != NULL && (rv = bad_state_word(expect, err)) != LM_OK)) {
        return finish(ms, rv, err, what);
    }
    if (reason == NULL) {
        reason = "";
    }
    now = now_ms(ms);
    if ((rv = tx_begin(ms, err)) != LM_OK) {
        return finish(ms, rv, err, what);
    }
    /* One conditional update: the expected state is checked and the new
     * one set atomically. */
    ms_param a[] = {P_INT(id),      P_TEXT(state),
                    P_TEXT(reason), P_INT(restart ? 1 : 0),
                    P_INT(now),     expect != NULL ? P_TEXT(expect) : P_NULL};
    rv = run_i64(ms,
                 "UPDATE jobs SET state = $2, reason = $3, restarts = restarts + $4, "
                 "updated_ms = $5 WHERE id = $1 AND state = COALESCE($6, state) RETURNING id",
                 a, NP(a), &ignored, &found, err);
    if (rv == LM_OK && !found) {
        /* not there, or not in the expected state */
        ms_param b[] = {P_INT(id)};
        rv = run(ms, "SELECT state FROM jobs WHERE id = $1", b, NP(b), &rows, err);
        if (rv == LM_OK && rows.nrows == 0) {
            rv = lm_error_set(err, LM_ENOTFOUND, "no such job");
        } else if (rv == LM_OK) {
            rv = lm_error_set(err, LM_ESTATE, "the job is '%.64s', not '%.64s'",
                              cell(&rows, 0, 0) != NULL ? cell(&rows, 0, 0) : "",
                              expect != NULL ? expect : "");
        }
        lm_ms_rows_free(&rows);
    }
    if (rv == LM_OK) {
        rv = add_job_event(ms, id, now, state, reason, err);
    }
    return finish(ms, rv, err, what);
}

int
lm_ms_job_events(lm_ms *ms, int64_t id, lm_ms_job_event **out, size_t *n, lm_error *err)
{
    char what[64];
    ms_param a[] = {P_INT(id)};
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "list events of job %" PRId64, id);
    if (ms == NULL || out == NULL || n == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    *out = NULL;
    *n = 0;
    rv = exists(ms, JOB_EXISTS, id, "no such job", err);
    if (rv == LM_OK) {
        rv = run_list(ms,
                      "SELECT id, job_id, at_ms, state, reason FROM job_events WHERE job_id = $1 "
                      "ORDER BY id",
                      a, NP(a), sizeof(lm_ms_job_event), decode_job_event, job_event_fini_v,
                      (void **)out, n, err);
    }
    return finish(ms, rv, err, what);
}

/* --- workers ------------------------------------------------------------- */

#define WORKER_COLS "id, address, data_address, slots, state, last_heartbeat_ms, registered_ms "

void
lm_ms_worker_fini(lm_ms_worker *w)
{
    if (w != NULL) {
        free(w->address);
        free(w->data_address);
        free(w->state);
        memset(w, 0, sizeof(*w));
    }
}

static void
worker_fini_v(void *w)
{
    lm_ms_worker_fini(w);
}

void
lm_ms_worker_list_free(lm_ms_worker *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        lm_ms_worker_fini(&a[i]);
    }
    free(a);
}

static int
decode_worker(const ms_rows *rows, size_t r, void *out)
{
    lm_ms_worker *w = out;

    memset(w, 0, sizeof(*w));
    w->id = cell_i64(rows, r, 0);
    if (!cell_str(rows, r, 1, &w->address) || !cell_str(rows, r, 2, &w->data_address) ||
        !cell_str(rows, r, 4, &w->state)) {
        lm_ms_worker_fini(w);
        return LM_ENOMEM;
    }
    w->slots = cell_i64(rows, r, 3);
    w->last_heartbeat_ms = cell_i64(rows, r, 5);
    w->registered_ms = cell_i64(rows, r, 6);
    return LM_OK;
}

int
lm_ms_worker_register(lm_ms *ms, const char *address, const char *data_address, int64_t slots,
                      int64_t *id, lm_error *err)
{
    char what[160];
    int64_t newid = 0;
    bool found;
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "register worker '%.120s'", address != NULL ? address : "");
    if (ms == NULL || address == NULL || address[0] == '\0') {
        return lm_error_set(err, LM_EINVAL, "%s: no address", what);
    }
    if (slots < 0) {
        return lm_error_set(err, LM_EINVAL, "%s: negative slots", what);
    }
    ms_param a[] = {P_TEXT(address), P_TEXT(data_address != NULL ? data_address : ""), P_INT(slots),
                    P_TEXT(LM_MS_WORKER_ALIVE), P_INT(now_ms(ms))};
    rv = run_i64(ms,
                 "INSERT INTO workers (address, data_address, slots, state, last_heartbeat_ms, "
                 "registered_ms) VALUES ($1, $2, $3, $4, $5, $5) "
                 "ON CONFLICT (address) DO UPDATE SET data_address = excluded.data_address, "
                 "slots = excluded.slots, state = excluded.state, "
                 "last_heartbeat_ms = excluded.last_heartbeat_ms, "
                 "registered_ms = excluded.registered_ms RETURNING id",
                 a, NP(a), &newid, &found, err);
    if (rv == LM_OK && !found) {
        rv = lm_error_set(err, LM_EIO, "no id returned");
    }
    if ((rv = finish(ms, rv, err, what)) == LM_OK && id != NULL) {
        *id = newid;
    }
    return rv;
}

int
lm_ms_worker_heartbeat(lm_ms *ms, int64_t id, lm_error *err)
{
    char what[64];

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "heartbeat of worker %" PRId64, id);
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    ms_param a[] = {P_INT(id), P_INT(now_ms(ms))};
    return finish(ms,
                  run_found(ms,
                            "UPDATE workers SET last_heartbeat_ms = $2 WHERE id = $1 RETURNING id",
                            a, NP(a), "no such worker", err),
                  err, what);
}

int
lm_ms_worker_set_state(lm_ms *ms, int64_t id, const char *state, lm_error *err)
{
    char what[128];
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "set worker %" PRId64 " state to '%.64s'", id,
             state != NULL ? state : "");
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    if ((rv = bad_state_word(state, err)) != LM_OK) {
        return finish(ms, rv, err, what);
    }
    ms_param a[] = {P_INT(id), P_TEXT(state)};
    return finish(ms,
                  run_found(ms, "UPDATE workers SET state = $2 WHERE id = $1 RETURNING id", a,
                            NP(a), "no such worker", err),
                  err, what);
}

int
lm_ms_worker_get(lm_ms *ms, int64_t id, lm_ms_worker *out, lm_error *err)
{
    char what[64];
    ms_param a[] = {P_INT(id)};

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "get worker %" PRId64, id);
    if (ms == NULL || out == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    return finish(ms,
                  run_one(ms, "SELECT " WORKER_COLS "FROM workers WHERE id = $1", a, NP(a),
                          decode_worker, out, "no such worker", err),
                  err, what);
}

int
lm_ms_worker_list(lm_ms *ms, lm_ms_worker **out, size_t *n, lm_error *err)
{
    LOCAL_ERR(err);
    if (ms == NULL || out == NULL || n == NULL) {
        return lm_error_set(err, LM_EINVAL, "list workers: NULL argument");
    }
    return finish(ms,
                  run_list(ms, "SELECT " WORKER_COLS "FROM workers ORDER BY id", NULL, 0,
                           sizeof(lm_ms_worker), decode_worker, worker_fini_v, (void **)out, n,
                           err),
                  err, "list workers");
}

/* --- checkpoints --------------------------------------------------------- */

static const char *const ckpt_words[] = {"in_progress", "completed", "failed"};

const char *
lm_ms_ckpt_state_name(lm_ms_ckpt_state s)
{
    return (unsigned)s < 3 ? ckpt_words[s] : "?";
}

#define CKPT_COLS "job_id, epoch, state, path, reason, size_bytes, created_ms, completed_ms "

void
lm_ms_checkpoint_fini(lm_ms_checkpoint *c)
{
    if (c != NULL) {
        free(c->path);
        free(c->reason);
        memset(c, 0, sizeof(*c));
    }
}

static void
checkpoint_fini_v(void *c)
{
    lm_ms_checkpoint_fini(c);
}

void
lm_ms_checkpoint_list_free(lm_ms_checkpoint *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        lm_ms_checkpoint_fini(&a[i]);
    }
    free(a);
}

static int
decode_checkpoint(const ms_rows *rows, size_t r, void *out)
{
    lm_ms_checkpoint *c = out;
    const char *state = cell(rows, r, 2);
    int i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < 3 && (state == NULL || strcmp(state, ckpt_words[i]) != 0); i++) {
    }
    if (i == 3) {
        return LM_EIO; /* a word this build does not know */
    }
    c->state = (lm_ms_ckpt_state)i;
    c->job_id = cell_i64(rows, r, 0);
    c->epoch = cell_i64(rows, r, 1);
    if (!cell_str(rows, r, 3, &c->path) || !cell_str(rows, r, 4, &c->reason)) {
        lm_ms_checkpoint_fini(c);
        return LM_ENOMEM;
    }
    c->size_bytes = cell_i64(rows, r, 5);
    c->created_ms = cell_i64(rows, r, 6);
    c->completed_ms = cell_i64(rows, r, 7);
    return LM_OK;
}

int
lm_ms_checkpoint_begin(lm_ms *ms, int64_t job_id, int64_t epoch, const char *path, lm_error *err)
{
    char what[96];
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "begin checkpoint %" PRId64 " of job %" PRId64, epoch, job_id);
    if (ms == NULL || path == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    if (epoch < 1) {
        return lm_error_set(err, LM_EINVAL, "%s: epochs start at 1", what);
    }
    ms_param a[] = {P_INT(job_id), P_INT(epoch), P_TEXT(ckpt_words[LM_MS_CKPT_IN_PROGRESS]),
                    P_TEXT(path), P_INT(now_ms(ms))};
    rv = run(ms,
             "INSERT INTO checkpoints (job_id, epoch, state, path, reason, size_bytes, "
             "created_ms, completed_ms) VALUES ($1, $2, $3, $4, '', 0, $5, 0)",
             a, NP(a), NULL, err);
    if (rv == LM_ENOTFOUND) {
        lm_error_set(err, rv, "no such job");
    } else if (rv == LM_EEXIST) {
        lm_error_set(err, rv, "the epoch is recorded already");
    }
    return finish(ms, rv, err, what);
}

/* Moves an in-progress checkpoint to state (completed or failed). */
static int
end_checkpoint(lm_ms *ms, int64_t job_id, int64_t epoch, lm_ms_ckpt_state state, int64_t size,
               const char *reason, const char *what, lm_error *err)
{
    ms_rows rows = {0};
    int64_t ignored;
    bool found;
    int rv;

    ms_param a[] = {P_INT(job_id),
                    P_INT(epoch),
                    P_TEXT(ckpt_words[state]),
                    state == LM_MS_CKPT_COMPLETED ? P_INT(size) : P_NULL,
                    P_TEXT(reason),
                    P_INT(now_ms(ms)),
                    P_TEXT(ckpt_words[LM_MS_CKPT_IN_PROGRESS])};
    rv = run_i64(ms,
                 "UPDATE checkpoints SET state = $3, size_bytes = COALESCE($4, size_bytes), "
                 "reason = $5, completed_ms = $6 "
                 "WHERE job_id = $1 AND epoch = $2 AND state = $7 RETURNING epoch",
                 a, NP(a), &ignored, &found, err);
    if (rv == LM_OK && !found) {
        ms_param b[] = {P_INT(job_id), P_INT(epoch)};
        rv = run(ms, "SELECT state FROM checkpoints WHERE job_id = $1 AND epoch = $2", b, NP(b),
                 &rows, err);
        if (rv == LM_OK && rows.nrows == 0) {
            rv = lm_error_set(err, LM_ENOTFOUND, "no such checkpoint");
        } else if (rv == LM_OK) {
            rv = lm_error_set(err, LM_ESTATE, "the checkpoint is %.32s, not in progress",
                              cell(&rows, 0, 0) != NULL ? cell(&rows, 0, 0) : "");
        }
        lm_ms_rows_free(&rows);
    }
    return finish(ms, rv, err, what);
}

int
lm_ms_checkpoint_complete(lm_ms *ms, int64_t job_id, int64_t epoch, int64_t size_bytes,
                          lm_error *err)
{
    char what[96];

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "complete checkpoint %" PRId64 " of job %" PRId64, epoch, job_id);
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    if (size_bytes < 0) {
        return lm_error_set(err, LM_EINVAL, "%s: negative size", what);
    }
    return end_checkpoint(ms, job_id, epoch, LM_MS_CKPT_COMPLETED, size_bytes, "", what, err);
}

int
lm_ms_checkpoint_fail(lm_ms *ms, int64_t job_id, int64_t epoch, const char *reason, lm_error *err)
{
    char what[96];

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "fail checkpoint %" PRId64 " of job %" PRId64, epoch, job_id);
    if (ms == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL handle", what);
    }
    return end_checkpoint(ms, job_id, epoch, LM_MS_CKPT_FAILED, 0, reason != NULL ? reason : "",
                          what, err);
}

int
lm_ms_checkpoint_list(lm_ms *ms, int64_t job_id, lm_ms_checkpoint **out, size_t *n, lm_error *err)
{
    char what[64];
    ms_param a[] = {P_INT(job_id)};
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "list checkpoints of job %" PRId64, job_id);
    if (ms == NULL || out == NULL || n == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    *out = NULL;
    *n = 0;
    rv = exists(ms, JOB_EXISTS, job_id, "no such job", err);
    if (rv == LM_OK) {
        rv = run_list(ms, "SELECT " CKPT_COLS "FROM checkpoints WHERE job_id = $1 ORDER BY epoch",
                      a, NP(a), sizeof(lm_ms_checkpoint), decode_checkpoint, checkpoint_fini_v,
                      (void **)out, n, err);
    }
    return finish(ms, rv, err, what);
}

int
lm_ms_checkpoint_latest(lm_ms *ms, int64_t job_id, lm_ms_checkpoint *out, lm_error *err)
{
    char what[80];
    int rv;

    LOCAL_ERR(err);
    snprintf(what, sizeof(what), "latest completed checkpoint of job %" PRId64, job_id);
    if (ms == NULL || out == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s: NULL argument", what);
    }
    rv = exists(ms, JOB_EXISTS, job_id, "no such job", err);
    if (rv == LM_OK) {
        ms_param a[] = {P_INT(job_id), P_TEXT(ckpt_words[LM_MS_CKPT_COMPLETED])};
        rv = run_one(ms,
                     "SELECT " CKPT_COLS "FROM checkpoints WHERE job_id = $1 AND state = $2 "
                     "ORDER BY epoch DESC LIMIT 1",
                     a, NP(a), decode_checkpoint, out, "no completed checkpoint", err);
    }
    return finish(ms, rv, err, what);
}
