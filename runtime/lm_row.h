/*
 * lm_row.h: rows and keys of a batch as compact byte strings.
 *
 * Operators that keep rows or group by columns store them in state tables
 * as bytes: a join keeps the rows it waits with, an aggregate its group
 * keys. The encoding is canonical, so that equal values give equal bytes
 * (a key's bytes are its identity in a hash table): each value is a tag
 * byte (0 null, 1 present) then, when present, bool as one byte, int64,
 * float64 and timestamp as 8 bytes little-endian (floats with -0.0 made
 * 0.0 and every NaN the same NaN), utf8 and binary as a 4-byte
 * little-endian length and the bytes. Decoding knows the types from the
 * schema and checks every length (bytes may come from a snapshot file).
 */
#ifndef LM_ROW_H
#define LM_ROW_H

#include <stdbool.h>
#include <stdint.h>

#include "lm_batch.h"
#include "lm_err.h"
#include "lm_rowfmt.h"

/* Appends the values of columns cols[0..n) of row r of b to out.
 * *has_null (may be NULL) tells whether any of them is null (SQL equality
 * never matches a null key). LM_OK or LM_ENOMEM. */
int lm_row_encode(const lm_batch *b, const uint32_t *cols, uint32_t n, uint32_t r, lm_buf *out,
                  bool *has_null);

/* Encodes columns cols[0..n) of every row of b, as lm_row_encode would
 * row by row, but column by column, into out (replacing its contents):
 * row r's bytes are out->p[off[r] .. off[r + 1]) (off has b->nrows + 1
 * entries). has_null (may be NULL; b->nrows entries) gets 1 for the rows
 * with a null among those columns, else 0. LM_OK, LM_ENOMEM, LM_ETOOBIG
 * (past 4 GiB). For keys of a whole batch (a join's). */
int lm_row_encode_rows(const lm_batch *b, const uint32_t *cols, uint32_t n, uint32_t *off,
                       uint8_t *has_null, lm_buf *out);

/* Appends every column of row r of b to out. */
int lm_row_encode_all(const lm_batch *b, uint32_t r, lm_buf *out);

/* Reads n encoded values from *p (not past end) into columns
 * out_cols[0..n) of out at row `row` (column-wise building: var-width
 * columns must get their rows in order; the caller commits the row).
 * Types come from out's schema. Advances *p. Returns LM_OK, LM_ENOMEM, or
 * LM_EPROTO when the bytes do not hold such values (err says where); after
 * an error, lm_batch_discard_uncommitted(out) makes the batch usable. */
int lm_row_decode(lm_batch *out, const uint32_t *out_cols, uint32_t n, uint32_t row,
                  const uint8_t **p, const uint8_t *end, lm_error *err);

/* Reads every column of a row encoded with lm_row_encode_all and appends
 * it to out (same schema): reserve, decode, commit. On error out is as it
 * was. */
int lm_row_append(lm_batch *out, const uint8_t *p, size_t len, lm_error *err);

/* Skips n encoded values of the given types. LM_OK or LM_EPROTO. */
int lm_row_skip(const lm_type *types, uint32_t n, const uint8_t **p, const uint8_t *end);

#endif /* LM_ROW_H */
