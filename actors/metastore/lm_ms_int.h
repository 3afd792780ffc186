/*
 * lm_ms_int.h: what the metadata store's common layer (lm_metastore.c) and
 * its backends (lm_ms_sqlite.c, lm_ms_pg.c) share, and no one else uses.
 *
 * The common layer writes every statement once, in SQL that both SQLite
 * and PostgreSQL accept, with parameters written $1, $2, ... and passed
 * as typed values; a backend binds them (never pastes them), runs the
 * statement and hands back the rows as text. Migrations are portable SQL
 * too, but for one token, @ID@, which each backend replaces with its way
 * of declaring a generated BIGINT primary key.
 */
#ifndef LM_MS_INT_H
#define LM_MS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_metastore.h"

#define MS_MAX_PARAMS 16

typedef enum ms_type {
    MS_NULL,
    MS_INT,
    MS_TEXT,
} ms_type;

/* One bound parameter; s is borrowed for the call. */
typedef struct ms_param {
    ms_type type;
    int64_t i;     /* MS_INT */
    const char *s; /* MS_TEXT: UTF-8, NUL-terminated */
} ms_param;

/* The rows of a result, as text: cells[r * ncols + c], NULL for SQL NULL.
 * Every cell is owned by the struct; free with lm_ms_rows_free. */
typedef struct ms_rows {
    size_t nrows;
    size_t ncols;
    char **cells;
    size_t cap; /* cells allocated */
} ms_rows;

typedef struct ms_ops {
    const char *name;      /* "sqlite", "postgresql" */
    const char *id_column; /* what @ID@ in a migration becomes */
    const char *begin_sql; /* starts a writing transaction */
    const char *lock_sql;  /* inside a transaction: serialises migrations; NULL = none needed */
    /* Opens target (the URL) into ms->db. On failure err holds the driver's
     * reason only; the caller adds the (masked) URL. LM_EIO, LM_ENOMEM. */
    int (*open)(lm_ms *ms, const char *target, lm_error *err);
    /* Runs one statement with params; rows (may be NULL) receives the
     * result rows, appended. err gets the driver's message. */
    int (*exec)(lm_ms *ms, const char *sql, const ms_param *params, int nparams, ms_rows *rows,
                lm_error *err);
    /* Runs a script of several statements without parameters. */
    int (*script)(lm_ms *ms, const char *sql, lm_error *err);
    void (*close)(lm_ms *ms);
} ms_ops;

struct lm_ms {
    const ms_ops *ops;
    void *db;               /* sqlite3 * or PGconn * */
    int64_t (*now)(void *); /* the clock; NULL = real time */
    void *now_arg;
    bool in_tx; /* inside a transaction the common layer began */
};

extern const ms_ops lm_ms_sqlite_ops;
extern const ms_ops lm_ms_pg_ops;

/* Appends one row of ncols cells (taken, not copied) to rows. LM_OK or
 * LM_ENOMEM (the cells are then freed). */
int lm_ms_rows_add(ms_rows *rows, size_t ncols, char **cells);
void lm_ms_rows_free(ms_rows *rows);

/* Copies a driver's message into err with code, on one line: newlines and
 * tabs become spaces, runs of spaces one, no trailing space. Returns code. */
int lm_ms_driver_error(lm_error *err, int code, const char *msg);

#endif /* LM_MS_INT_H */
