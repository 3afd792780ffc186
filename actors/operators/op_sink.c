/*
 * op_sink.c: sinks: blackhole, stdout, file.
 *
 * blackhole: counts rows and drops them; "delay_us" makes it wait that long
 *   per batch (a deliberately slow consumer, to see backpressure).
 * stdout: writes rows as JSON lines to standard output.
 * file_sink: writes rows as JSON lines ("format": "json", default) or CSV
 *   ("csv", with a header) into the directory "path", in files
 *   part-<subtask>-<seq>.<ext>, rolled when a file reaches "rolling_bytes"
 *   (default 128 MiB) or is older than "rolling_ms" (0: never).
 *
 *   Exactly once, with checkpoints: rows are written to files under
 *   path/.inprogress; at a barrier the current file is closed and recorded
 *   in the sink's table as pending for that epoch (pre-commit); when the
 *   checkpoint completes, the pending files are renamed into path (commit).
 *   A sink restored from checkpoint N commits what N had pending and
 *   deletes what was written after N. At the end of input the last files
 *   are pending until the whole job has finished (LM_EPOCH_FINAL).
 *   Without checkpoints, a file is committed when it rolls and at the end
 *   of input. A fresh start numbers its files after those already in path
 *   and removes files an earlier run left in progress.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "lm_log.h"
#include "lm_op.h"
#include "lm_proto.h"
#include "lm_rowfmt.h"
#include "lm_storage.h"

static void
spec_free(void *spec)
{
    free(spec);
}

/* --- blackhole ------------------------------------------------------ */

static int
blackhole_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    static const char *const keys[] = {"delay_us", NULL};
    int64_t *delay = malloc(sizeof(int64_t));
    int rv;

    if (delay == NULL) {
        return LM_ENOMEM;
    }
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "delay_us", 0, 0, 10000000, delay, err)) != LM_OK) {
        free(delay);
        return rv;
    }
    *spec = delay;
    return LM_OK;
}

static int
stdout_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    static const char *const keys[] = {NULL};
    *spec = NULL;
    return lm_op_cfg_only(def->config, keys, err);
}

static int
blackhole_open(lm_op *op)
{
    (void)op;
    return LM_OK;
}

static int
blackhole_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const int64_t *delay = op->spec;
    (void)port;
    lm_batch_free(b);
    if (*delay > 0) {
        struct timespec ts = {(time_t)(*delay / 1000000), (long)(*delay % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    return LM_OK;
}

const lm_op_kind lm_op_blackhole = {
    .name = "blackhole",
    .min_inputs = 1,
    .max_inputs = 1,
    .sink = true,
    .prepare = blackhole_prepare,
    .spec_free = spec_free,
    .open = blackhole_open,
    .on_batch = blackhole_batch,
};

/* --- stdout --------------------------------------------------------- */

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return LM_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return LM_OK;
}

static int
stdout_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    lm_buf buf;
    int rv = LM_OK;

    (void)port;
    lm_buf_init(&buf);
    for (uint32_t r = 0; r < b->nrows && rv == LM_OK; r++) {
        rv = lm_rowfmt_json(&buf, b, r);
    }
    if (rv == LM_OK && write_all(STDOUT_FILENO, buf.p, buf.len) != LM_OK) {
        rv = lm_op_fail(op, LM_EIO, "cannot write to standard output: %s", strerror(errno));
    }
    lm_buf_fini(&buf);
    lm_batch_free(b);
    return rv;
}

const lm_op_kind lm_op_stdout = {
    .name = "stdout",
    .min_inputs = 1,
    .max_inputs = 1,
    .sink = true,
    .prepare = stdout_prepare,
    .open = blackhole_open,
    .on_batch = stdout_batch,
};

/* --- file ----------------------------------------------------------- */

typedef struct file_spec {
    char path[1024]; /* output directory */
    bool csv;        /* else JSON lines */
    int64_t rolling_bytes;
    int64_t rolling_ms;
} file_spec;

typedef struct file_sink {
    lm_table *pending;  /* seq -> epoch (u64): closed files waiting for commit */
    lm_table *meta;     /* "next_seq" -> u64 */
    uint64_t next_seq;  /* for the next file */
    int fd;             /* current file, -1 when none */
    uint64_t cur_seq;   /* its seq */
    int64_t cur_bytes;  /* written to it */
    int64_t opened_ms;  /* when it was opened (wall clock) */
    bool transactional; /* the job takes checkpoints */
    uint64_t *rolled;   /* closed since the last barrier */
    uint32_t nrolled, caprolled;
    lm_buf buf; /* rows being formatted (reused batch after batch) */
} file_sink;

static const char *const file_keys[] = {"path", "format", "rolling_bytes", "rolling_ms", NULL};

static int
file_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    file_spec *s = calloc(1, sizeof(*s));
    const char *path, *fmt;
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    if ((rv = lm_op_cfg_only(def->config, file_keys, err)) != LM_OK ||
        (rv = lm_op_cfg_str(def->config, "path", NULL, &path, err)) != LM_OK ||
        (rv = lm_op_cfg_str(def->config, "format", "json", &fmt, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "rolling_bytes", 128 << 20, 1, INT64_MAX,
                            &s->rolling_bytes, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "rolling_ms", 0, 0, INT64_MAX, &s->rolling_ms, err)) !=
            LM_OK) {
        free(s);
        return rv;
    }
    if (strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0) {
        free(s);
        return lm_error_set(err, LM_EINVAL, "config: \"format\" must be json or csv, got '%s'",
                            fmt);
    }
    if (lm_storage_local_path(path) == NULL || strlen(path) >= sizeof(s->path) - 64) {
        free(s);
        return lm_error_set(err, LM_EINVAL, "config: \"path\" must be a local directory");
    }
    snprintf(s->path, sizeof(s->path), "%s", lm_storage_local_path(path));
    s->csv = strcmp(fmt, "csv") == 0;
    *spec = s;
    return LM_OK;
}

static void
file_name(const file_spec *s, const lm_op *op, uint64_t seq, bool final, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%spart-%03u-%06" PRIu64 ".%s", s->path, final ? "" : ".inprogress/",
             op->subtask, seq, s->csv ? "csv" : "jsonl");
}

/* Moves a closed file into the output directory. */
static int
commit_file(lm_op *op, uint64_t seq)
{
    const file_spec *s = op->spec;
    char from[1200], to[1200];

    file_name(s, op, seq, false, from, sizeof(from));
    file_name(s, op, seq, true, to, sizeof(to));
    if (rename(from, to) != 0 && errno != ENOENT) {
        return lm_op_fail(op, LM_EIO, "cannot commit '%s': %s", to, strerror(errno));
    }
    return LM_OK;
}

static int
close_current(lm_op *op)
{
    file_sink *f = op->state;

    if (f->fd < 0) {
        return LM_OK;
    }
    if (fsync(f->fd) != 0 || close(f->fd) != 0) {
        f->fd = -1;
        return lm_op_fail(op, LM_EIO, "cannot close a file: %s", strerror(errno));
    }
    f->fd = -1;
    if (!f->transactional) {
        return commit_file(op, f->cur_seq);
    }
    if (f->nrolled == f->caprolled) {
        uint32_t cap = f->caprolled ? f->caprolled * 2 : 8;
        uint64_t *r = realloc(f->rolled, cap * sizeof(uint64_t));
        if (r == NULL) {
            return LM_ENOMEM;
        }
        f->rolled = r;
        f->caprolled = cap;
    }
    f->rolled[f->nrolled++] = f->cur_seq;
    return LM_OK;
}

static int
open_next(lm_op *op, int64_t now_ms)
{
    const file_spec *s = op->spec;
    file_sink *f = op->state;
    char name[1200], dir[1100];
    lm_error err;
    int rv;

    snprintf(dir, sizeof(dir), "%s/.inprogress", s->path);
    if ((rv = lm_storage_mkdirs(dir, &err)) != LM_OK) {
        return lm_op_fail(op, rv, "%s", err.msg);
    }
    f->cur_seq = f->next_seq++;
    file_name(s, op, f->cur_seq, false, name, sizeof(name));
    if ((f->fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        return lm_op_fail(op, LM_EIO, "cannot create '%s': %s", name, strerror(errno));
    }
    f->cur_bytes = 0;
    f->opened_ms = now_ms;
    if (s->csv) {
        f->buf.len = 0;
        if (lm_rowfmt_csv_header(&f->buf, op->def->inputs[0]) != LM_OK) {
            return LM_ENOMEM;
        }
        if (write_all(f->fd, f->buf.p, f->buf.len) != LM_OK) {
            return lm_op_fail(op, LM_EIO, "cannot write '%s': %s", name, strerror(errno));
        }
        f->cur_bytes += (int64_t)f->buf.len;
    }
    return LM_OK;
}

/* Removes files in .inprogress that belong to this subtask and are not
 * pending: written after the checkpoint we start from. */
static void
discard_uncommitted(lm_op *op)
{
    const file_spec *s = op->spec;
    file_sink *f = op->state;
    char dir[1100], prefix[32];
    DIR *d;
    struct dirent *e;

    snprintf(dir, sizeof(dir), "%s/.inprogress", s->path);
    snprintf(prefix, sizeof(prefix), "part-%03u-", op->subtask);
    if ((d = opendir(dir)) == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        char path[1400];
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 ||
            sscanf(e->d_name + strlen(prefix), "%" SCNu64, &seq) != 1) {
            continue;
        }
        if (lm_table_find(f->pending, &seq, sizeof(seq)) == NULL) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* One past the highest file number of this subtask in path (0: none). */
static uint64_t
next_free_seq(lm_op *op)
{
    const file_spec *s = op->spec;
    char prefix[32];
    uint64_t next = 0;
    DIR *d;
    struct dirent *e;

    snprintf(prefix, sizeof(prefix), "part-%03u-", op->subtask);
    if ((d = opendir(s->path)) == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
            sscanf(e->d_name + strlen(prefix), "%" SCNu64, &seq) == 1 && seq + 1 > next) {
            next = seq + 1;
        }
    }
    closedir(d);
    return next;
}

static int file_done(lm_op *op, uint64_t epoch);

static int
file_open(lm_op *op)
{
    file_sink *f = calloc(1, sizeof(*f));
    const void *v;
    int rv;

    if (f == NULL) {
        return LM_ENOMEM;
    }
    f->fd = -1;
    op->state = f;
    f->transactional = lm_op_checkpoint_dir(op)[0] != '\0';
    if ((rv = lm_op_table(op, LM_TABLE_GLOBAL, "pending", sizeof(uint64_t), &f->pending)) !=
            LM_OK ||
        (rv = lm_op_table(op, LM_TABLE_GLOBAL, "meta", sizeof(uint64_t), &f->meta)) != LM_OK) {
        return rv;
    }
    if (lm_table_get(f->meta, "next_seq", 8, &v, NULL, NULL) == LM_OK) {
        memcpy(&f->next_seq, v, sizeof(uint64_t));
    }
    /* Files left in progress that no checkpoint we start from knows of
     * (written after it, or by an earlier run) are not output. */
    discard_uncommitted(op);
    if (lm_op_restore_epoch(op) > 0) {
        /* Checkpoint N completed: what it had pending is committed now. */
        return file_done(op, UINT64_MAX);
    }
    /* A fresh start numbers its files after those already there, so that
     * the output of an earlier run is not overwritten. */
    f->next_seq = next_free_seq(op);
    return LM_OK;
}

static int
file_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    const file_spec *s = op->spec;
    file_sink *f = op->state;
    int rv = LM_OK;

    (void)port;
    if (f->fd < 0 && (rv = open_next(op, 0)) != LM_OK) {
        lm_batch_free(b);
        return rv;
    }
    f->buf.len = 0;
    for (uint32_t r = 0; r < b->nrows && rv == LM_OK; r++) {
        rv = s->csv ? lm_rowfmt_csv(&f->buf, b, r) : lm_rowfmt_json(&f->buf, b, r);
    }
    lm_batch_free(b);
    if (rv == LM_OK && write_all(f->fd, f->buf.p, f->buf.len) != LM_OK) {
        rv = lm_op_fail(op, LM_EIO, "cannot write a file: %s", strerror(errno));
    }
    f->cur_bytes += (int64_t)f->buf.len;
    if (rv == LM_OK && f->cur_bytes >= s->rolling_bytes) {
        rv = close_current(op);
    }
    return rv;
}

static int
file_tick(lm_op *op, int64_t now_ms)
{
    const file_spec *s = op->spec;
    file_sink *f = op->state;

    if (f->fd >= 0 && f->opened_ms == 0) {
        f->opened_ms = now_ms;
    }
    if (f->fd >= 0 && s->rolling_ms > 0 && now_ms - f->opened_ms >= s->rolling_ms) {
        return close_current(op);
    }
    return LM_OK;
}

/* Pre-commit: everything written so far waits in the table for epoch. */
static int
file_barrier(lm_op *op, uint64_t epoch)
{
    file_sink *f = op->state;
    int rv;

    if ((rv = close_current(op)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < f->nrolled; i++) {
        if ((rv = lm_table_put(f->pending, &f->rolled[i], sizeof(uint64_t), 0, &epoch,
                               sizeof(epoch))) != LM_OK) {
            return rv;
        }
    }
    f->nrolled = 0;
    return lm_table_put(f->meta, "next_seq", 8, 0, &f->next_seq, sizeof(f->next_seq));
}

typedef struct done_ctx {
    lm_op *op;
    uint64_t epoch;
    uint64_t *seqs;
    uint32_t n, cap;
} done_ctx;

static int
done_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    done_ctx *d = arg;
    uint64_t epoch;
    (void)ts;
    (void)vlen;
    memcpy(&epoch, val, sizeof(epoch));
    if (epoch <= d->epoch && klen == sizeof(uint64_t)) {
        if (d->n == d->cap) {
            uint32_t cap = d->cap ? d->cap * 2 : 16;
            uint64_t *s = realloc(d->seqs, cap * sizeof(uint64_t));
            if (s == NULL) {
                return LM_ENOMEM;
            }
            d->seqs = s;
            d->cap = cap;
        }
        memcpy(&d->seqs[d->n++], key, sizeof(uint64_t));
    }
    return 0;
}

/* Commit: the files pending for epochs up to this one become visible. */
static int
file_done(lm_op *op, uint64_t epoch)
{
    file_sink *f = op->state;
    done_ctx d = {op, epoch, NULL, 0, 0};
    int rv = lm_table_scan(f->pending, done_visit, &d);

    for (uint32_t i = 0; i < d.n && rv == LM_OK; i++) {
        if ((rv = commit_file(op, d.seqs[i])) == LM_OK) {
            lm_table_delete(f->pending, &d.seqs[i], sizeof(uint64_t));
        }
    }
    free(d.seqs);
    return rv;
}

/* End of input. Without checkpoints what is written is final. With them,
 * the last files wait in the pending table under LM_EPOCH_FINAL until the
 * task manager has seen every subtask of the job finish and says so
 * (CHECKPOINT_DONE for LM_EPOCH_FINAL): a job that fails before then
 * restarts from its last checkpoint and must not find them committed. */
static int
file_end(lm_op *op)
{
    file_sink *f = op->state;
    uint64_t final = LM_EPOCH_FINAL;
    int rv;

    if ((rv = close_current(op)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < f->nrolled && rv == LM_OK; i++) {
        rv = lm_table_put(f->pending, &f->rolled[i], sizeof(uint64_t), 0, &final, sizeof(final));
    }
    f->nrolled = 0;
    return rv;
}

static void
file_close(lm_op *op)
{
    file_sink *f = op->state;
    if (f->fd >= 0) {
        close(f->fd);
    }
    lm_buf_fini(&f->buf);
    free(f->rolled);
    free(f);
}

const lm_op_kind lm_op_file_sink = {
    .name = "file_sink",
    .min_inputs = 1,
    .max_inputs = 1,
    .sink = true,
    .prepare = file_prepare,
    .spec_free = spec_free,
    .open = file_open,
    .on_batch = file_batch,
    .on_tick = file_tick,
    .on_barrier = file_barrier,
    .on_checkpoint_done = file_done,
    .on_end = file_end,
    .close = file_close,
};
