/*
 * lm_ctl_table.c: laminarctl's text tables (see lm_ctl_table.h). The
 * header cells, when there are any, are stored as the first row; all
 * cells live in one array, row after row.
 */
#include "lm_ctl_table.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lm_err.h"
#include "lm_mem.h"

struct lm_ctl_table {
    size_t ncols;  /* columns */
    char **cells;  /* row after row */
    size_t ncells; /* cells added (the header's included) */
    size_t cap;    /* room in cells */
    bool failed;   /* a cell could not be stored (sticky) */
};

/* Appends s (owned; NULL when it could not be made) to t's cells; frees
 * s on failure, which marks the table failed. */
static int
push(lm_ctl_table *t, char *s)
{
    if (s == NULL || t->failed) {
        free(s);
        t->failed = true;
        return LM_ENOMEM;
    }
    if (lm_grow((void **)&t->cells, &t->cap, t->ncells + 1, sizeof(*t->cells)) != LM_OK) {
        free(s);
        t->failed = true;
        return LM_ENOMEM;
    }
    /* one line per row: control characters (newline, tab) become spaces */
    for (char *c = s; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = ' ';
        }
    }
    t->cells[t->ncells++] = s;
    return LM_OK;
}

int
lm_ctl_table_new(size_t ncols, const char *const *headers, lm_ctl_table **out)
{
    lm_ctl_table *t;

    *out = NULL;
    if (ncols == 0) {
        return LM_EINVAL;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        return LM_ENOMEM;
    }
    t->ncols = ncols;
    if (headers != NULL) {
        for (size_t i = 0; i < ncols; i++) {
            if (lm_ctl_table_cell(t, "%s", headers[i]) != LM_OK) {
                lm_ctl_table_free(t);
                return LM_ENOMEM;
            }
        }
    }
    *out = t;
    return LM_OK;
}

int
lm_ctl_table_cell(lm_ctl_table *t, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    if (t->failed) {
        return LM_ENOMEM;
    }
    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return push(t, n >= 0 ? s : NULL);
}

/* Characters in the UTF-8 text s (bytes that do not continue one). */
static size_t
width(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return n;
}

int
lm_ctl_table_print(const lm_ctl_table *t, FILE *out)
{
    size_t *w = calloc(t->ncols, sizeof(*w));
    size_t nrows = (t->ncells + t->ncols - 1) / t->ncols;

    if (w == NULL || t->failed) {
        free(w);
        return LM_ENOMEM;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        size_t n = width(t->cells[i]);
        if (n > w[i % t->ncols]) {
            w[i % t->ncols] = n;
        }
    }
    for (size_t r = 0; r < nrows; r++) {
        const char *const *row = (const char *const *)t->cells + r * t->ncols;
        size_t have = t->ncells - r * t->ncols, end = have < t->ncols ? have : t->ncols;
        while (end > 0 && row[end - 1][0] == '\0') {
            end--; /* trailing empty cells: nothing to align, no trailing spaces */
        }
        for (size_t c = 0; c < end; c++) {
            fputs(row[c], out);
            if (c + 1 < end) {
                fprintf(out, "%*s", (int)(w[c] - width(row[c]) + 2), "");
            }
        }
        fputc('\n', out);
    }
    free(w);
    return LM_OK;
}

void
lm_ctl_table_free(lm_ctl_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->ncells; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}
