/*
 * op_file_source.c: the file source: rows from JSON lines or CSV files.
 *
 * Config: "path" (a file, or a directory: then every regular file in it
 * whose name does not start with '.', in name order; a file:// URL works
 * too), "format" ("json", default: one object per line; or "csv": RFC
 * 4180, CRLF or LF), "csv_header" (csv only, default true: the first
 * record names the columns, matched to the output schema by name, extra
 * columns ignored; false: fields by position, as many as the schema has),
 * "bad_lines" ("fail", default, or "drop"), "read_bytes" (bytes per read,
 * default 1 MiB), "max_record_bytes" (the longest record, default 64 MiB;
 * a longer one is a bad line).
 *
 * File k of the sorted list goes to subtask k % parallelism, which reads
 * its files one after the other, in chunks, and emits batches of at most
 * max_rows rows. A UTF-8 byte order mark at the start of a file is
 * skipped; so are blank lines (in CSV only when records have more than one
 * field: with one, an empty line is a null value, as file_sink writes it).
 * Values are read as lm_rowfmt writes them, so file_source reads back
 * exactly what file_sink wrote: JSON numbers for int64 (integral and in
 * range) and float64, true/false, timestamps as strings
 * (lm_rowfmt_parse_timestamp) or integers of milliseconds since the
 * epoch, binary as hexadecimal strings; JSON fields not in the schema are
 * ignored and missing ones are null; a key twice in one object is a bad
 * line. In CSV an unquoted empty field is null and a quoted one ("") the
 * empty string; other values are parsed from their text
 * (lm_rowfmt_parse_value).
 *
 * Bad lines (a record that does not parse, has a wrong value or field
 * count, breaks a non-nullable field, or is too long): with "fail" the job
 * fails with "FILE:LINE: what is wrong" (LINE: where the record starts,
 * from 1); with "drop" the record is skipped and counted in
 * op->stats.bad_rows, the first 10 per subtask are logged as warnings, and
 * the total is logged when the subtask ends. A CSV header that lacks a
 * schema column (or names one twice) fails the job whatever the policy.
 *
 * Checkpoints: the GLOBAL table "files" maps each file's name to the byte
 * offset and line of its next record, and whether it was read to its end;
 * it is written at every barrier. produce() emits every row it parsed
 * before it returns, so between calls the position is exactly after the
 * last row emitted, and a restored subtask seeks there (reading the CSV
 * header again first): no row twice, none missing. Restoring assumes the
 * same list of files: one added or removed before it shifts the files
 * after it to other subtasks, whose tables do not know them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_op.h"
#include "lm_rowfmt.h"
#include "lm_storage.h"

#define FS_LOG_BAD_MAX     10         /* bad lines logged per subtask */
#define FS_BATCH_BYTES_MAX (32 << 20) /* record bytes per batch before it is emitted */
#define FS_CALL_BYTES_MAX  (16 << 20) /* input bytes per produce call (bad lines only) */

typedef struct fs_spec {
    char path[4096];    /* local path of the file or directory */
    bool csv;           /* else JSON lines */
    bool header;        /* csv: the first record is a header */
    bool drop;          /* bad lines are dropped, else they fail the job */
    int64_t read_bytes; /* bytes per read */
    int64_t max_record; /* longest record in bytes */
} fs_spec;

/* A file's position, as kept in the table. */
typedef struct fs_pos {
    uint64_t offset; /* byte offset of the next record */
    uint64_t line;   /* its line number (from 1) */
    uint64_t done;   /* 1: read to its end */
} fs_pos;

typedef struct csv_field {
    size_t off;  /* unescaped text in fsrc.text */
    size_t len;  /* its length */
    bool quoted; /* was quoted ("" is an empty string, not null) */
} csv_field;

/* CSV scanner states (RFC 4180). */
enum { CS_START, CS_UNQ, CS_Q, CS_QQ };

/* next_record results (errors are negative). */
enum { REC_OK = 1, REC_EOF = 2, REC_BAD = 3 };

typedef struct fsrc {
    lm_table *files; /* file name -> fs_pos */
    char **names;    /* this subtask's files: table keys */
    char **paths;    /* their paths (also used in messages) */
    uint32_t nfiles; /* how many */
    uint32_t cur;    /* the file being read (or next to open) */
    int fd;          /* the open file, or -1 */
    char *buf;       /* bytes read: buf[start..len) not consumed yet */
    size_t cap, len, start;
    uint64_t buf_off;  /* file offset of buf[0] */
    uint64_t line;     /* line of the record at buf[start] */
    bool eof;          /* read returned 0 */
    size_t scan;       /* bytes of the record at start already scanned */
    int cstate;        /* CSV scanner state after them */
    int32_t *map;      /* csv: schema field -> column of a record */
    uint32_t ncols;    /* csv: fields every record must have */
    csv_field *fields; /* csv: fields of the current record */
    uint32_t fcap;     /* room in fields */
    lm_buf text;       /* csv: unescaped field text; json: decoded binary values */
    lm_value *row;     /* one value per schema field */
    size_t *bin_off;   /* json: offset of each binary value in text */
    uint64_t logged;   /* bad lines logged */
    char why[320];     /* why the last record was bad */
} fsrc;

static const char *const keys[] = {"path",       "format",           "csv_header", "bad_lines",
                                   "read_bytes", "max_record_bytes", NULL};

static void
spec_free(void *spec)
{
    free(spec);
}

static int
fs_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    fs_spec *s = calloc(1, sizeof(*s));
    const char *path, *fmt, *bad;
    int rv;

    if (s == NULL) {
        return LM_ENOMEM;
    }
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK ||
        (rv = lm_op_cfg_str(def->config, "path", NULL, &path, err)) != LM_OK ||
        (rv = lm_op_cfg_str(def->config, "format", "json", &fmt, err)) != LM_OK ||
        (rv = lm_op_cfg_bool(def->config, "csv_header", true, &s->header, err)) != LM_OK ||
        (rv = lm_op_cfg_str(def->config, "bad_lines", "fail", &bad, err)) != LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "read_bytes", 1 << 20, 1, 1 << 30, &s->read_bytes, err)) !=
            LM_OK ||
        (rv = lm_op_cfg_i64(def->config, "max_record_bytes", 64 << 20, 1, INT32_MAX, &s->max_record,
                            err)) != LM_OK) {
        free(s);
        return rv;
    }
    if (strcmp(fmt, "json") != 0 && strcmp(fmt, "csv") != 0) {
        free(s);
        return lm_error_set(err, LM_EINVAL, "config: \"format\" must be json or csv, got '%s'",
                            fmt);
    }
    s->csv = strcmp(fmt, "csv") == 0;
    if (!s->csv && json_object_get(def->config, "csv_header") != NULL) {
        free(s);
        return lm_error_set(err, LM_EINVAL, "config: \"csv_header\" applies to format csv only");
    }
    if (strcmp(bad, "fail") != 0 && strcmp(bad, "drop") != 0) {
        free(s);
        return lm_error_set(err, LM_EINVAL, "config: \"bad_lines\" must be fail or drop, got '%s'",
                            bad);
    }
    s->drop = strcmp(bad, "drop") == 0;
    if (lm_storage_local_path(path) == NULL || lm_storage_local_path(path)[0] == '\0') {
        free(s);
        return lm_error_set(err, LM_EINVAL,
                            "config: \"path\" must be a local file or directory, got '%s'", path);
    }
    if (strlen(lm_storage_local_path(path)) >= sizeof(s->path) - 1024) {
        free(s);
        return lm_error_set(err, LM_EINVAL, "config: \"path\" is too long");
    }
    snprintf(s->path, sizeof(s->path), "%s", lm_storage_local_path(path));
    *spec = s;
    return LM_OK;
}

/* --- files ------------------------------------------------------------- */

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
add_file(fsrc *f, const char *name, const char *path)
{
    char **n = realloc(f->names, (f->nfiles + 1) * sizeof(char *));
    char **p;

    if (n == NULL) {
        return LM_ENOMEM;
    }
    f->names = n;
    if ((p = realloc(f->paths, (f->nfiles + 1) * sizeof(char *))) == NULL) {
        return LM_ENOMEM;
    }
    f->paths = p;
    f->names[f->nfiles] = strdup(name);
    f->paths[f->nfiles] = strdup(path);
    if (f->names[f->nfiles] == NULL || f->paths[f->nfiles] == NULL) {
        free(f->names[f->nfiles]);
        free(f->paths[f->nfiles]);
        return LM_ENOMEM;
    }
    f->nfiles++;
    return LM_OK;
}

/* Lists the files of this subtask: file k of the sorted directory goes to
 * subtask k % parallelism. */
static int
list_files(lm_op *op, fsrc *f)
{
    const fs_spec *s = op->spec;
    struct stat st;
    char **all = NULL;
    size_t n = 0, cap = 0;
    DIR *d;
    struct dirent *e;
    int rv = LM_OK;

    if (stat(s->path, &st) != 0) {
        return lm_op_fail(op, lm_err_from_errno(errno), "cannot open '%s': %s", s->path,
                          strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        const char *base = strrchr(s->path, '/');
        return op->subtask == 0 ? add_file(f, base != NULL ? base + 1 : s->path, s->path) : LM_OK;
    }
    if ((d = opendir(s->path)) == NULL) {
        return lm_op_fail(op, lm_err_from_errno(errno), "cannot open '%s': %s", s->path,
                          strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        char path[5200];
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", s->path, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if (n == cap) {
            char **a;
            cap = cap ? cap * 2 : 16;
            if ((a = realloc(all, cap * sizeof(char *))) == NULL) {
                rv = LM_ENOMEM;
                break;
            }
            all = a;
        }
        if ((all[n] = strdup(e->d_name)) == NULL) {
            rv = LM_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rv == LM_OK && n > 0) {
        qsort(all, n, sizeof(char *), cmp_name);
    }
    for (size_t k = 0; k < n; k++) {
        if (rv == LM_OK && k % op->parallelism == op->subtask) {
            char path[5200];
            snprintf(path, sizeof(path), "%s/%s", s->path, all[k]);
            rv = add_file(f, all[k], path);
        }
        free(all[k]);
    }
    free(all);
    return rv;
}

/* Reads more of the current file, moving the unconsumed bytes to the front
 * of the buffer first. */
static int
fill(lm_op *op, fsrc *f)
{
    const fs_spec *s = op->spec;
    size_t want = (size_t)s->read_bytes;
    ssize_t n;

    if (f->start > 0) {
        memmove(f->buf, f->buf + f->start, f->len - f->start);
        f->len -= f->start;
        f->buf_off += f->start;
        f->start = 0;
    }
    if (f->cap - f->len < want) {
        size_t cap = f->cap > 0 ? f->cap : want;
        char *b;
        while (cap - f->len < want) {
            cap *= 2;
        }
        if ((b = realloc(f->buf, cap)) == NULL) {
            return LM_ENOMEM;
        }
        f->buf = b;
        f->cap = cap;
    }
    do {
        n = read(f->fd, f->buf + f->len, want);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return lm_op_fail(op, LM_EIO, "cannot read '%s': %s", f->paths[f->cur], strerror(errno));
    }
    if (n == 0) {
        f->eof = true;
    }
    f->len += (size_t)n;
    return LM_OK;
}

/* Consumes buf[start..upto), counting its line breaks. */
static void
consume(fsrc *f, size_t upto)
{
    const char *p = f->buf + f->start, *end = f->buf + upto;

    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        f->line++;
        p++;
    }
    f->start = upto;
    f->scan = 0;
}

/* Scans the record at start from where the last scan stopped; true with
 * *end (the index of its terminating '\n') when it is complete. */
static bool
find_end(const fs_spec *s, fsrc *f, size_t *end)
{
    size_t i = f->start + f->scan;
    int st = f->cstate;

    if (!s->csv) {
        const char *nl = memchr(f->buf + i, '\n', f->len - i);
        if (nl != NULL) {
            *end = (size_t)(nl - f->buf);
            return true;
        }
        f->scan = f->len - f->start;
        return false;
    }
    while (i < f->len) {
        char c = f->buf[i];
        switch (st) {
        case CS_Q: {
            const char *q = memchr(f->buf + i, '"', f->len - i);
            if (q == NULL) {
                i = f->len;
                continue;
            }
            i = (size_t)(q - f->buf);
            st = CS_QQ;
            break;
        }
        case CS_START:
        case CS_QQ:
            if (c == '"') {
                st = CS_Q;
            } else if (c == ',') {
                st = CS_START;
            } else if (c == '\n') {
                *end = i;
                f->cstate = CS_START;
                return true;
            } else {
                st = CS_UNQ;
            }
            break;
        default: /* CS_UNQ */
            if (c == ',') {
                st = CS_START;
            } else if (c == '\n') {
                *end = i;
                f->cstate = CS_START;
                return true;
            }
            break;
        }
        i++;
    }
    f->cstate = st;
    f->scan = f->len - f->start;
    return false;
}

/* Skips the rest of a record that is too long, reading as needed. */
static int
skip_record(lm_op *op, fsrc *f)
{
    const fs_spec *s = op->spec;
    int rv;

    for (;;) {
        size_t end;
        if (find_end(s, f, &end)) {
            consume(f, end + 1);
            f->cstate = CS_START;
            return LM_OK;
        }
        consume(f, f->len);
        if (f->eof) {
            f->cstate = CS_START;
            return LM_OK;
        }
        if ((rv = fill(op, f)) != LM_OK) {
            return rv;
        }
    }
}

/* The next record of the current file: REC_OK with *rec (into the buffer,
 * valid until the next call; without its line end) and *line, REC_EOF, or
 * REC_BAD with f->why and *line (the record is consumed); or an error. */
static int
next_record(lm_op *op, fsrc *f, const char **rec, size_t *rlen, uint64_t *line)
{
    const fs_spec *s = op->spec;
    int rv;

    for (;;) {
        size_t end, n;
        bool complete = f->start < f->len && find_end(s, f, &end);
        if (!complete && f->eof) {
            if (f->start == f->len) {
                return REC_EOF;
            }
            end = f->len; /* the last record has no line end */
            if (s->csv && f->cstate == CS_Q) {
                *line = f->line;
                consume(f, f->len);
                f->cstate = CS_START;
                snprintf(f->why, sizeof(f->why),
                         "unterminated quoted field at the end of the file");
                return REC_BAD;
            }
            complete = true;
        }
        if (complete) {
            n = end - f->start;
            *line = f->line;
            if (n > (size_t)s->max_record) {
                consume(f, end < f->len ? end + 1 : end);
                f->cstate = CS_START;
                snprintf(f->why, sizeof(f->why), "record longer than %" PRId64 " bytes",
                         s->max_record);
                return REC_BAD;
            }
            *rec = f->buf + f->start;
            if (n > 0 && (*rec)[n - 1] == '\r') {
                n--;
            }
            *rlen = n;
            consume(f, end < f->len ? end + 1 : end);
            f->cstate = CS_START;
            return REC_OK;
        }
        if (f->len - f->start > (size_t)s->max_record) {
            *line = f->line;
            snprintf(f->why, sizeof(f->why), "record longer than %" PRId64 " bytes", s->max_record);
            if ((rv = skip_record(op, f)) != LM_OK) {
                return rv;
            }
            return REC_BAD;
        }
        if ((rv = fill(op, f)) != LM_OK) {
            return rv;
        }
    }
}

/* --- CSV ------------------------------------------------------------------ */

static int
push_field(fsrc *f, uint32_t *nf, csv_field fd)
{
    if (*nf == f->fcap) {
        uint32_t cap = f->fcap ? f->fcap * 2 : 64;
        csv_field *a = realloc(f->fields, cap * sizeof(*a));
        if (a == NULL) {
            return LM_ENOMEM;
        }
        f->fields = a;
        f->fcap = cap;
    }
    f->fields[(*nf)++] = fd;
    return LM_OK;
}

/* Splits a complete record into f->fields (text unescaped into f->text).
 * LM_OK, LM_EINVAL with f->why, or LM_ENOMEM. */
static int
split_csv(fsrc *f, const char *p, size_t n, uint32_t *nf)
{
    size_t i = 0;

    f->text.len = 0;
    *nf = 0;
    for (;;) {
        csv_field fd = {f->text.len, 0, false};
        if (i < n && p[i] == '"') {
            fd.quoted = true;
            i++;
            for (;;) {
                const char *q = memchr(p + i, '"', n - i);
                if (q == NULL) {
                    snprintf(f->why, sizeof(f->why), "field %u: unterminated quoted field",
                             *nf + 1);
                    return LM_EINVAL;
                }
                if (lm_buf_append(&f->text, p + i, (size_t)(q - (p + i))) != LM_OK) {
                    return LM_ENOMEM;
                }
                i = (size_t)(q - p) + 1;
                if (i < n && p[i] == '"') {
                    if (lm_buf_append(&f->text, "\"", 1) != LM_OK) {
                        return LM_ENOMEM;
                    }
                    i++;
                    continue;
                }
                break;
            }
            if (i < n && p[i] != ',') {
                snprintf(f->why, sizeof(f->why),
                         "field %u: unexpected character after a closing quote", *nf + 1);
                return LM_EINVAL;
            }
        } else {
            size_t j = i;
            while (j < n && p[j] != ',') {
                if (p[j] == '"') {
                    snprintf(f->why, sizeof(f->why),
                             "field %u: a quote inside an unquoted field (quote the field and "
                             "double the quote)",
                             *nf + 1);
                    return LM_EINVAL;
                }
                j++;
            }
            if (lm_buf_append(&f->text, p + i, j - i) != LM_OK) {
                return LM_ENOMEM;
            }
            i = j;
        }
        fd.len = f->text.len - fd.off;
        if (push_field(f, nf, fd) != LM_OK) {
            return LM_ENOMEM;
        }
        if (i >= n) {
            return LM_OK;
        }
        i++; /* the comma */
    }
}

/* Reads the header (the first record) and maps the schema onto it. A bad
 * header fails the job whatever the bad-line policy. */
static int
read_header(lm_op *op, fsrc *f)
{
    const lm_schema *sc = op->def->output;
    const char *file = f->paths[f->cur];
    const char *rec;
    size_t n;
    uint64_t line;
    uint32_t nf;
    int rv = next_record(op, f, &rec, &n, &line);

    if (rv < 0) {
        return rv;
    }
    if (rv == REC_EOF) {
        f->ncols = 0; /* an empty file: no rows */
        return LM_OK;
    }
    if (rv == REC_BAD) {
        return lm_op_fail(op, LM_EINVAL, "%s:%" PRIu64 ": bad CSV header: %s", file, line, f->why);
    }
    if ((rv = split_csv(f, rec, n, &nf)) != LM_OK) {
        return rv == LM_ENOMEM
                   ? rv
                   : lm_op_fail(op, rv, "%s:%" PRIu64 ": bad CSV header: %s", file, line, f->why);
    }
    for (uint32_t c = 0; c < sc->nfields; c++) {
        const char *name = sc->fields[c].name;
        size_t len = strlen(name);
        f->map[c] = -1;
        for (uint32_t j = 0; j < nf; j++) {
            if (f->fields[j].len == len && memcmp(f->text.p + f->fields[j].off, name, len) == 0) {
                if (f->map[c] >= 0) {
                    return lm_op_fail(op, LM_EINVAL,
                                      "%s:%" PRIu64 ": column \"%s\" appears twice in the CSV "
                                      "header",
                                      file, line, name);
                }
                f->map[c] = (int32_t)j;
            }
        }
        if (f->map[c] < 0) {
            return lm_op_fail(op, LM_EINVAL,
                              "%s:%" PRIu64 ": the CSV header has no column \"%s\" (the "
                              "schema's columns must all be named in it)",
                              file, line, name);
        }
    }
    f->ncols = nf;
    return LM_OK;
}

/* --- rows --------------------------------------------------------------- */

/* A bad record: fails the job, or is counted and (the first few) logged. */
static int
bad_line(lm_op *op, fsrc *f, uint64_t line)
{
    const fs_spec *s = op->spec;
    const char *file = f->paths[f->cur];

    if (!s->drop) {
        return lm_op_fail(op, LM_EINVAL, "%s:%" PRIu64 ": %s", file, line, f->why);
    }
    op->stats.bad_rows++;
    if (f->logged < FS_LOG_BAD_MAX) {
        f->logged++;
        LM_LOG(LM_LOG_WARN, "file_source '%s' subtask %u: dropped bad line %s:%" PRIu64 ": %s%s",
               op->id, op->subtask, file, line, f->why,
               f->logged == FS_LOG_BAD_MAX ? " (further bad lines are counted, not logged)" : "");
    }
    return LM_OK;
}

static int
csv_row(lm_op *op, fsrc *f, const char *rec, size_t n, uint64_t line, lm_batch *b)
{
    const lm_schema *sc = op->def->output;
    lm_error err;
    uint32_t nf;
    int rv;

    if (n == 0 && f->ncols != 1) {
        return LM_OK; /* a blank line */
    }
    if ((rv = split_csv(f, rec, n, &nf)) != LM_OK) {
        return rv == LM_ENOMEM ? rv : bad_line(op, f, line);
    }
    if (nf != f->ncols) {
        snprintf(f->why, sizeof(f->why), "expected %u fields, got %u", f->ncols, nf);
        return bad_line(op, f, line);
    }
    for (uint32_t c = 0; c < sc->nfields; c++) {
        const lm_field *fl = &sc->fields[c];
        const csv_field *fd = &f->fields[f->map != NULL ? (uint32_t)f->map[c] : c];
        char *text = f->text.p + fd->off;
        if (!fd->quoted && fd->len == 0) {
            if (!fl->nullable) {
                snprintf(f->why, sizeof(f->why),
                         "field \"%.100s\": empty (null) but the column is not nullable", fl->name);
                return bad_line(op, f, line);
            }
            f->row[c].is_null = true;
            continue;
        }
        if (lm_rowfmt_parse_value(fl->type, text, fd->len, (uint8_t *)text, &f->row[c], &err) !=
            LM_OK) {
            snprintf(f->why, sizeof(f->why), "field \"%.100s\": %.200s", fl->name, err.msg);
            return bad_line(op, f, line);
        }
    }
    if ((rv = lm_batch_append_row(b, f->row, &err)) != LM_OK) {
        return lm_op_fail(op, rv, "%s:%" PRIu64 ": %s", f->paths[f->cur], line, err.msg);
    }
    return LM_OK;
}

/* How a JSON value looks in a message: string "abc", number 1.5, ... */
static const char *
json_desc(const json_t *v, char *buf, size_t cap)
{
    char q[200];
    switch (json_typeof(v)) {
    case JSON_STRING:
        lm_rowfmt_quote(json_string_value(v), json_string_length(v), '"', q, sizeof(q));
        snprintf(buf, cap, "string %s", q);
        break;
    case JSON_INTEGER:
        snprintf(buf, cap, "number %" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        lm_format_double(json_real_value(v), q, sizeof(q));
        snprintf(buf, cap, "number %s", q);
        break;
    case JSON_TRUE: snprintf(buf, cap, "true"); break;
    case JSON_FALSE: snprintf(buf, cap, "false"); break;
    case JSON_OBJECT: snprintf(buf, cap, "an object"); break;
    case JSON_ARRAY: snprintf(buf, cap, "an array"); break;
    default: snprintf(buf, cap, "null"); break;
    }
    return buf;
}

/* The value of field fl from JSON value v (not null) into *out; false with
 * f->why when it does not fit. Binary values go into f->text at
 * f->bin_off[c] (pointers are set once the row is complete). */
static bool
json_value(fsrc *f, uint32_t c, const lm_field *fl, const json_t *v, lm_value *out)
{
    char d[240];
    lm_error err;

    out->is_null = false;
    switch (fl->type) {
    case LM_TYPE_BOOL:
        if (json_is_boolean(v)) {
            out->v.b = json_is_true(v);
            return true;
        }
        break;
    case LM_TYPE_INT64:
        if (json_is_integer(v)) {
            out->v.i = json_integer_value(v);
            return true;
        }
        if (json_is_real(v)) {
            double x = json_real_value(v);
            if (x != floor(x) || !(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) {
                snprintf(f->why, sizeof(f->why), "field \"%.100s\": expected int64%s, got %s",
                         fl->name, x != floor(x) ? "" : " (out of range)",
                         json_desc(v, d, sizeof(d)));
                return false;
            }
            out->v.i = (int64_t)x;
            return true;
        }
        break;
    case LM_TYPE_FLOAT64:
        if (json_is_number(v)) {
            out->v.f = json_number_value(v);
            return true;
        }
        break;
    case LM_TYPE_TIMESTAMP:
        if (json_is_integer(v)) {
            json_int_t ms = json_integer_value(v);
            if (ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000) {
                snprintf(f->why, sizeof(f->why), "field \"%.100s\": timestamp out of range, got %s",
                         fl->name, json_desc(v, d, sizeof(d)));
                return false;
            }
            out->v.i = ms * 1000;
            return true;
        }
        if (json_is_string(v)) {
            if (lm_rowfmt_parse_timestamp(json_string_value(v), json_string_length(v), &out->v.i,
                                          &err) != LM_OK) {
                snprintf(f->why, sizeof(f->why), "field \"%.100s\": %.200s", fl->name, err.msg);
                return false;
            }
            return true;
        }
        snprintf(f->why, sizeof(f->why),
                 "field \"%.100s\": expected a timestamp (a string, or an integer of "
                 "milliseconds since the epoch), got %s",
                 fl->name, json_desc(v, d, sizeof(d)));
        return false;
    case LM_TYPE_UTF8:
        if (json_is_string(v)) {
            if (json_string_length(v) > INT32_MAX) {
                break;
            }
            out->v.s.ptr = json_string_value(v);
            out->v.s.len = (uint32_t)json_string_length(v);
            return true;
        }
        break;
    case LM_TYPE_BINARY:
        if (json_is_string(v)) {
            size_t n = json_string_length(v), off = f->text.len;
            if (n / 2 > INT32_MAX) {
                break;
            }
            if (lm_buf_append(&f->text, json_string_value(v), n) != LM_OK) {
                snprintf(f->why, sizeof(f->why), "out of memory");
                return false;
            }
            if (lm_rowfmt_parse_hex(f->text.p + off, n, (uint8_t *)f->text.p + off, &err) !=
                LM_OK) {
                snprintf(f->why, sizeof(f->why), "field \"%.100s\": %.200s", fl->name, err.msg);
                return false;
            }
            f->text.len = off + n / 2;
            f->bin_off[c] = off;
            out->v.s.len = (uint32_t)(n / 2);
            return true;
        }
        break;
    }
    snprintf(f->why, sizeof(f->why), "field \"%.100s\": expected %s, got %s", fl->name,
             lm_type_name(fl->type), json_desc(v, d, sizeof(d)));
    return false;
}

static bool
blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
            return false;
        }
    }
    return true;
}

static int
json_row(lm_op *op, fsrc *f, const char *rec, size_t n, uint64_t line, lm_batch *b)
{
    const lm_schema *sc = op->def->output;
    json_error_t je;
    json_t *o;
    lm_error err;
    int rv = LM_OK;
    bool ok = true;

    if (blank(rec, n)) {
        return LM_OK;
    }
    if ((o = json_loadb(rec, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je)) == NULL) {
        snprintf(f->why, sizeof(f->why), "invalid JSON at column %d: %.200s", je.column, je.text);
        return bad_line(op, f, line);
    }
    if (!json_is_object(o)) {
        char d[240];
        snprintf(f->why, sizeof(f->why), "expected a JSON object, got %s",
                 json_desc(o, d, sizeof(d)));
        json_decref(o);
        return bad_line(op, f, line);
    }
    f->text.len = 0;
    for (uint32_t c = 0; c < sc->nfields && ok; c++) {
        const lm_field *fl = &sc->fields[c];
        const json_t *v = json_object_get(o, fl->name);
        if (v == NULL || json_is_null(v)) {
            if (!fl->nullable) {
                snprintf(f->why, sizeof(f->why),
                         "field \"%.100s\": %s but the column is not "
                         "nullable",
                         fl->name, v == NULL ? "missing" : "null");
                ok = false;
            }
            f->row[c].is_null = true;
            continue;
        }
        ok = json_value(f, c, fl, v, &f->row[c]);
    }
    if (ok) {
        for (uint32_t c = 0; c < sc->nfields; c++) {
            if (sc->fields[c].type == LM_TYPE_BINARY && !f->row[c].is_null) {
                f->row[c].v.s.ptr = f->text.p + f->bin_off[c];
            }
        }
        if ((rv = lm_batch_append_row(b, f->row, &err)) != LM_OK) {
            rv = lm_op_fail(op, rv, "%s:%" PRIu64 ": %s", f->paths[f->cur], line, err.msg);
        }
    } else {
        rv = bad_line(op, f, line);
    }
    json_decref(o);
    return rv;
}

/* --- the operator ----------------------------------------------------------- */

static void
fs_close(lm_op *op)
{
    fsrc *f = op->state;

    if (f == NULL) {
        return;
    }
    if (f->fd >= 0) {
        close(f->fd);
    }
    for (uint32_t i = 0; i < f->nfiles; i++) {
        free(f->names[i]);
        free(f->paths[i]);
    }
    free(f->names);
    free(f->paths);
    free(f->buf);
    free(f->map);
    free(f->fields);
    free(f->row);
    free(f->bin_off);
    lm_buf_fini(&f->text);
    free(f);
    op->state = NULL;
}

static int
fs_open(lm_op *op)
{
    const fs_spec *s = op->spec;
    uint32_t nf = op->def->output->nfields;
    fsrc *f = calloc(1, sizeof(*f));
    int rv;

    if (f == NULL) {
        return LM_ENOMEM;
    }
    f->fd = -1;
    lm_buf_init(&f->text);
    op->state = f;
    f->row = calloc(nf, sizeof(lm_value));
    f->bin_off = calloc(nf, sizeof(size_t));
    if (s->csv && s->header) {
        f->map = calloc(nf, sizeof(int32_t));
    }
    if (f->row == NULL || f->bin_off == NULL || (s->csv && s->header && f->map == NULL)) {
        rv = LM_ENOMEM;
        goto fail;
    }
    if ((rv = lm_op_table(op, LM_TABLE_GLOBAL, "files", sizeof(fs_pos), &f->files)) != LM_OK ||
        (rv = list_files(op, f)) != LM_OK) {
        goto fail;
    }
    return LM_OK;
fail:
    /* Free the partial state here (fs_close leaves op->state NULL, so the
     * subtask, which closes a failed operator that left a state, has
     * nothing more to do). */
    fs_close(op);
    return rv;
}

/* Opens file f->cur at its recorded position (reading the CSV header
 * first). Leaves f->fd at -1 when the file was read to its end before. */
static int
open_file(lm_op *op, fsrc *f)
{
    const fs_spec *s = op->spec;
    const char *path = f->paths[f->cur];
    const char *name = f->names[f->cur];
    fs_pos pos = {0, 1, 0};
    const void *v;
    int rv;

    if (lm_table_get(f->files, name, (uint32_t)strlen(name), &v, NULL, NULL) == LM_OK) {
        memcpy(&pos, v, sizeof(pos));
    }
    if (pos.done) {
        return LM_OK;
    }
    if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        return lm_op_fail(op, lm_err_from_errno(errno), "cannot open '%s': %s", path,
                          strerror(errno));
    }
    f->len = f->start = f->scan = 0;
    f->buf_off = 0;
    f->line = 1;
    f->eof = false;
    f->cstate = CS_START;
    f->ncols = op->def->output->nfields;
    if (pos.offset == 0 || (s->csv && s->header)) {
        /* A UTF-8 byte order mark is not part of the first record. */
        while (f->len < 3 && !f->eof) {
            if ((rv = fill(op, f)) != LM_OK) {
                return rv;
            }
        }
        if (f->len >= 3 && memcmp(f->buf, "\xef\xbb\xbf", 3) == 0) {
            f->start = 3;
        }
        if (s->csv && s->header && (rv = read_header(op, f)) != LM_OK) {
            return rv;
        }
    }
    if (pos.offset > 0) {
        if (lseek(f->fd, (off_t)pos.offset, SEEK_SET) < 0) {
            return lm_op_fail(op, LM_EIO, "cannot seek in '%s': %s", path, strerror(errno));
        }
        f->len = f->start = f->scan = 0;
        f->buf_off = pos.offset;
        f->line = pos.line;
        f->eof = false;
        f->cstate = CS_START;
    }
    return LM_OK;
}

static int
file_done(fsrc *f)
{
    const char *name = f->names[f->cur];
    fs_pos pos = {f->buf_off + f->start, f->line, 1};

    close(f->fd);
    f->fd = -1;
    f->cur++;
    return lm_table_put(f->files, name, (uint32_t)strlen(name), 0, &pos, sizeof(pos));
}

static int
fs_produce(lm_op *op, uint32_t max_rows, bool *ended)
{
    const fs_spec *s = op->spec;
    fsrc *f = op->state;
    lm_batch *b = NULL;
    size_t batch_bytes = 0;
    uint64_t start_off = 0;
    int rv = LM_OK;

    for (;;) {
        bool at_end = false;
        if (f->fd < 0) {
            if (f->cur >= f->nfiles) {
                if (op->stats.bad_rows > 0) {
                    LM_LOG(LM_LOG_WARN,
                           "file_source '%s' subtask %u: %" PRIu64 " bad lines dropped in all",
                           op->id, op->subtask, op->stats.bad_rows);
                }
                lm_batch_free(b);
                *ended = true;
                return LM_OK;
            }
            if ((rv = open_file(op, f)) != LM_OK) {
                goto fail;
            }
            if (f->fd < 0) {
                f->cur++; /* read to its end before the checkpoint */
                continue;
            }
        }
        if (b == NULL && (rv = lm_batch_new(op->def->output, max_rows, &b)) != LM_OK) {
            goto fail;
        }
        start_off = f->buf_off + f->start;
        while (b->nrows < max_rows && batch_bytes < FS_BATCH_BYTES_MAX &&
               f->buf_off + f->start - start_off < FS_CALL_BYTES_MAX) {
            const char *rec;
            size_t n;
            uint64_t line;
            if ((rv = next_record(op, f, &rec, &n, &line)) < 0) {
                goto fail;
            }
            if (rv == REC_EOF) {
                at_end = true;
                break;
            }
            if (rv == REC_BAD) {
                rv = bad_line(op, f, line);
            } else {
                rv = s->csv ? csv_row(op, f, rec, n, line, b) : json_row(op, f, rec, n, line, b);
                batch_bytes += n;
            }
            if (rv != LM_OK) {
                goto fail;
            }
        }
        if (at_end && (rv = file_done(f)) != LM_OK) {
            goto fail;
        }
        if (b->nrows > 0 || !at_end) {
            break; /* rows to emit, or enough work for one call */
        }
    }
    lm_op_count_events(op, b->nrows);
    return lm_op_emit(op, b);
fail:
    lm_batch_free(b);
    return rv;
}

static int
fs_barrier(lm_op *op, uint64_t epoch)
{
    fsrc *f = op->state;
    const char *name;
    fs_pos pos;

    (void)epoch;
    if (f->fd < 0) {
        return LM_OK; /* files read to their end are recorded already */
    }
    name = f->names[f->cur];
    pos = (fs_pos){f->buf_off + f->start, f->line, 0};
    return lm_table_put(f->files, name, (uint32_t)strlen(name), 0, &pos, sizeof(pos));
}

const lm_op_kind lm_op_file_source = {
    .name = "file_source",
    .prepare = fs_prepare,
    .spec_free = spec_free,
    .open = fs_open,
    .on_barrier = fs_barrier,
    .produce = fs_produce,
    .close = fs_close,
};
