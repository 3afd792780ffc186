/*
 * lm_ms_pg.c: the metadata store's PostgreSQL backend (libpq), for a
 * controller whose metadata must outlive its host.
 *
 * Parameters go to the server separately from the statement text
 * (PQexecParams, text format), and rows come back as text. The connection
 * gets a connect timeout and UTF8 client encoding unless the URL sets
 * them, and server notices are dropped (CREATE TABLE IF NOT EXISTS would
 * print them on stderr). A connection found broken between transactions
 * is reset once before the next statement; one that breaks inside a
 * transaction fails the call with LM_ECLOSED.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_ms_int.h"

#define CONNECT_TIMEOUT_S "10"
/* pg_advisory_xact_lock key of the migration lock: "lmmigrat" in ASCII. */
#define MIGRATION_LOCK_SQL "SELECT pg_advisory_xact_lock(7813551889435271540)"

static void
pg_no_notice(void *arg, const PGresult *res)
{
    (void)arg;
    (void)res;
}

static int
pg_open(lm_ms *ms, const char *target, lm_error *err)
{
    /* Processed in order; the expanded dbname (the URL) comes last so that
     * its own settings win over these defaults. */
    const char *const keys[] = {"connect_timeout", "client_encoding", "application_name", "dbname",
                                NULL};
    const char *const vals[] = {CONNECT_TIMEOUT_S, "UTF8", "laminar", target, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);

    if (conn == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        lm_ms_driver_error(err, LM_EIO, PQerrorMessage(conn));
        PQfinish(conn);
        return LM_EIO;
    }
    PQsetNoticeReceiver(conn, pg_no_notice, NULL);
    ms->db = conn;
    return LM_OK;
}

/* Whether libpq's message says the connection broke, for a failure that
 * carries no SQLSTATE of its own (libpq's own errors) while PQstatus may
 * still read CONNECTION_OK. */
static bool
pg_lost_message(const char *msg)
{
    static const char *const signs[] = {
        "server closed the connection",
        "no connection to the server",
        "connection lost",
        "could not send data",
        "could not receive data",
        "terminating connection",
        "connection to server",
        "lost synchronization",
        "SSL SYSCALL error",
        "SSL connection has been closed",
    };

    for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++) {
        if (strstr(msg, signs[i]) != NULL) {
            return true;
        }
    }
    return false;
}

/* Maps a failed result (or none) to a code and message: a lost
 * connection is always LM_ECLOSED (lm_metastore.h). */
static int
pg_error(PGconn *conn, PGresult *res, lm_error *err)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    int code = LM_EIO;
    char buf[LM_ERROR_MSG_MAX];

    if (PQstatus(conn) != CONNECTION_OK) {
        code = LM_ECLOSED;
    } else if (state != NULL) {
        if (strcmp(state, "23505") == 0) {
            code = LM_EEXIST; /* unique_violation */
        } else if (strcmp(state, "23503") == 0) {
            code = LM_ENOTFOUND; /* foreign_key_violation */
        } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                   strcmp(state, "55P03") == 0) {
            code = LM_EAGAIN; /* serialization failure, deadlock, lock not available */
        } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
            code = LM_ECLOSED; /* connection exception, operator intervention */
        }
    }
    if (msg == NULL) {
        msg = PQerrorMessage(conn);
    }
    if (code == LM_EIO && pg_lost_message(msg)) {
        code = LM_ECLOSED;
    }
    if (code == LM_ECLOSED) {
        snprintf(buf, sizeof(buf), "connection lost: %s", msg);
    } else if (detail != NULL) {
        snprintf(buf, sizeof(buf), "%s (%s)", msg, detail);
    } else {
        snprintf(buf, sizeof(buf), "%s", msg);
    }
    return lm_ms_driver_error(err, code, buf);
}

/* Between transactions, a broken connection gets one reset. */
static int
pg_ready(lm_ms *ms, lm_error *err)
{
    PGconn *conn = ms->db;

    if (PQstatus(conn) == CONNECTION_OK) {
        return LM_OK;
    }
    if (!ms->in_tx) {
        PQreset(conn);
        if (PQstatus(conn) == CONNECTION_OK) {
            return LM_OK;
        }
    }
    lm_ms_driver_error(err, LM_ECLOSED, PQerrorMessage(conn));
    return lm_error_prefix(err, "connection lost");
}

static int
pg_exec(lm_ms *ms, const char *sql, const ms_param *params, int nparams, ms_rows *rows,
        lm_error *err)
{
    PGconn *conn = ms->db;
    char ints[MS_MAX_PARAMS][24];
    const char *values[MS_MAX_PARAMS];
    PGresult *res;
    ExecStatusType st;
    int rv = LM_OK;

    if (nparams > MS_MAX_PARAMS) {
        return lm_error_set(err, LM_EINVAL, "too many parameters");
    }
    if ((rv = pg_ready(ms, err)) != LM_OK) {
        return rv;
    }
    for (int i = 0; i < nparams; i++) {
        switch (params[i].type) {
        case MS_INT:
            snprintf(ints[i], sizeof(ints[i]), "%" PRId64, params[i].i);
            values[i] = ints[i];
            break;
        case MS_TEXT: values[i] = params[i].s; break;
        default: values[i] = NULL; break;
        }
    }
    res = PQexecParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
    st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rv = pg_error(conn, res, err);
        PQclear(res);
        return rv;
    }
    if (rows != NULL && st == PGRES_TUPLES_OK) {
        int nr = PQntuples(res), nc = PQnfields(res);
        for (int r = 0; r < nr && rv == LM_OK; r++) {
            char **cells = calloc(nc > 0 ? (size_t)nc : 1, sizeof(char *));
            if (cells == NULL) {
                rv = lm_error_set(err, LM_ENOMEM, "out of memory");
                break;
            }
            for (int c = 0; c < nc; c++) {
                if (PQgetisnull(res, r, c)) {
                    continue;
                }
                if ((cells[c] = strdup(PQgetvalue(res, r, c))) == NULL) {
                    for (int k = 0; k < c; k++) {
                        free(cells[k]);
                    }
                    free(cells);
                    cells = NULL;
                    break;
                }
            }
            if (cells == NULL || lm_ms_rows_add(rows, (size_t)nc, cells) != LM_OK) {
                rv = lm_error_set(err, LM_ENOMEM, "out of memory");
            }
        }
    }
    PQclear(res);
    return rv;
}

static int
pg_script(lm_ms *ms, const char *sql, lm_error *err)
{
    PGresult *res;
    int rv = LM_OK;

    if ((rv = pg_ready(ms, err)) != LM_OK) {
        return rv;
    }
    res = PQexec(ms->db, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rv = pg_error(ms->db, res, err);
    }
    PQclear(res);
    return rv;
}

static void
pg_close(lm_ms *ms)
{
    PQfinish(ms->db);
    ms->db = NULL;
}

const ms_ops lm_ms_pg_ops = {
    .name = "postgresql",
    .id_column = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    .begin_sql = "BEGIN",
    .lock_sql = MIGRATION_LOCK_SQL,
    .open = pg_open,
    .exec = pg_exec,
    .script = pg_script,
    .close = pg_close,
};
