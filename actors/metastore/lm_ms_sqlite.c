/*
 * lm_ms_sqlite.c: the metadata store's SQLite backend (libsqlite3), the
 * embedded default of standalone mode.
 *
 * A file database runs in WAL mode with foreign keys on and a busy
 * timeout, so that a second process (laminard migrate next to a running
 * daemon) waits for the lock instead of failing at once. Writing
 * transactions begin IMMEDIATE: they take the write lock at the start and
 * never fail half-way for want of it, which also serialises migrations.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_ms_int.h"
#include "lm_storage.h"

#define BUSY_TIMEOUT_MS 5000

static int
sq_code(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY: return LM_EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY: return LM_ENOTFOUND;
    case SQLITE_NOMEM: return LM_ENOMEM;
    default: break;
    }
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return LM_EAGAIN;
    default: return LM_EIO;
    }
}

static int
sq_error(sqlite3 *db, lm_error *err)
{
    int rc = sqlite3_extended_errcode(db);
    return lm_ms_driver_error(err, sq_code(rc), sqlite3_errmsg(db));
}

/* "sqlite://" + path; the path is what follows, "/abs" or "rel". */
static int
sq_open(lm_ms *ms, const char *target, lm_error *err)
{
    const char *path = target + strlen("sqlite://");
    bool memory = strcmp(path, ":memory:") == 0;
    sqlite3 *db = NULL;
    int rc;

    if (*path == '\0') {
        return lm_error_set(err, LM_EINVAL, "no database path after sqlite://");
    }
    if (!memory) {
        const char *slash = strrchr(path, '/');
        if (slash != NULL && slash != path) {
            char *dir = strndup(path, (size_t)(slash - path));
            if (dir == NULL) {
                return lm_error_set(err, LM_ENOMEM, "out of memory");
            }
            rc = lm_storage_mkdirs(dir, err);
            free(dir);
            if (rc != LM_OK) {
                return rc;
            }
        }
    }
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = db != NULL ? sq_error(db, err)
                        : lm_error_set(err, LM_ENOMEM, "out of memory opening the database");
        sqlite3_close(db);
        return rc == LM_ENOMEM ? rc : LM_EIO;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* The first statement reads the file: a file that is not a database
     * fails here, at open, where the caller expects it. */
    if (sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK ||
        (!memory && sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK)) {
        rc = sq_error(db, err);
        sqlite3_close(db);
        return rc == LM_ENOMEM ? rc : LM_EIO;
    }
    ms->db = db;
    return LM_OK;
}

static int
sq_bind(sqlite3_stmt *st, const ms_param *params, int nparams)
{
    for (int i = 0; i < nparams; i++) {
        char name[16];
        int idx, rc;
        /* Statements are written with $1, $2, ...: SQLite takes "$1" as a
         * named parameter, so look its index up by name. */
        snprintf(name, sizeof(name), "$%d", i + 1);
        idx = sqlite3_bind_parameter_index(st, name);
        if (idx == 0) {
            continue;
        }
        switch (params[i].type) {
        case MS_INT: rc = sqlite3_bind_int64(st, idx, params[i].i); break;
        case MS_TEXT: rc = sqlite3_bind_text(st, idx, params[i].s, -1, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(st, idx); break;
        }
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    return SQLITE_OK;
}

static int
sq_exec(lm_ms *ms, const char *sql, const ms_param *params, int nparams, ms_rows *rows,
        lm_error *err)
{
    sqlite3 *db = ms->db;
    sqlite3_stmt *st = NULL;
    int rc, rv = LM_OK;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        return sq_error(db, err);
    }
    if (sq_bind(st, params, nparams) != SQLITE_OK) {
        rv = sq_error(db, err);
        goto done;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t ncols = (size_t)sqlite3_column_count(st);
        char **cells;
        if (rows == NULL) {
            continue;
        }
        if ((cells = calloc(ncols ? ncols : 1, sizeof(char *))) == NULL) {
            rv = lm_error_set(err, LM_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t c = 0; c < ncols; c++) {
            const unsigned char *t;
            if (sqlite3_column_type(st, (int)c) == SQLITE_NULL) {
                continue;
            }
            t = sqlite3_column_text(st, (int)c);
            if (t == NULL || (cells[c] = strdup((const char *)t)) == NULL) {
                for (size_t k = 0; k < c; k++) {
                    free(cells[k]);
                }
                free(cells);
                rv = lm_error_set(err, LM_ENOMEM, "out of memory");
                goto done;
            }
        }
        if (lm_ms_rows_add(rows, ncols, cells) != LM_OK) {
            rv = lm_error_set(err, LM_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (rc != SQLITE_DONE) {
        rv = sq_error(db, err);
    }
done:
    sqlite3_finalize(st);
    return rv;
}

static int
sq_script(lm_ms *ms, const char *sql, lm_error *err)
{
    if (sqlite3_exec(ms->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return sq_error(ms->db, err);
    }
    return LM_OK;
}

static void
sq_close(lm_ms *ms)
{
    sqlite3_close_v2(ms->db);
    ms->db = NULL;
}

const ms_ops lm_ms_sqlite_ops = {
    .name = "sqlite",
    .id_column = "INTEGER PRIMARY KEY AUTOINCREMENT", /* a rowid alias; ids never reused */
    .begin_sql = "BEGIN IMMEDIATE",
    .lock_sql = NULL, /* BEGIN IMMEDIATE holds the database's write lock */
    .open = sq_open,
    .exec = sq_exec,
    .script = sq_script,
    .close = sq_close,
};
