/*
 * lm_ctl_table.h: the text tables laminarctl prints: left-aligned
 * columns as wide as their widest cell, two spaces apart, and an
 * optional header row (in capitals, as given).
 *
 * Cells are added one at a time, row after row; a row is complete after
 * as many cells as there are columns. The table copies every cell. Cells
 * are shown on one line: control characters (a newline in a reason)
 * become spaces. Widths count UTF-8 characters, not bytes. The last
 * column is not padded, so no line ends in spaces.
 *
 * Errors are sticky, as with stdio streams: a cell that cannot be stored
 * marks the table failed, later cells are ignored, and printing reports
 * the failure. So a caller may add a row's cells without checking each.
 */
#ifndef LM_CTL_TABLE_H
#define LM_CTL_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef struct lm_ctl_table lm_ctl_table;

/* Makes a table of ncols (>= 1) columns; headers is NULL (no header row:
 * a list of "key  value" lines) or ncols strings, copied. Returns LM_OK
 * with *out (free with lm_ctl_table_free), LM_EINVAL for ncols 0 or
 * LM_ENOMEM. */
int lm_ctl_table_new(size_t ncols, const char *const *headers, lm_ctl_table **out);

/* Appends one cell, printf-formatted, to the current row. Returns LM_OK,
 * or LM_ENOMEM (now or at an earlier cell: the table has failed). */
int lm_ctl_table_cell(lm_ctl_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the header row (if any) and every row to out; a last row left
 * incomplete is written with empty cells. Returns LM_OK, or LM_ENOMEM
 * without writing anything when the table has failed. */
int lm_ctl_table_print(const lm_ctl_table *t, FILE *out);

/* Frees t and its cells. NULL is a no-op. */
void lm_ctl_table_free(lm_ctl_table *t);

#endif /* LM_CTL_TABLE_H */
