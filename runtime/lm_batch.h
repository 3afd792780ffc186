/*
 * lm_batch.h: columnar batches of rows, their schema, and their wire form.
 *
 * Operators consume and produce batches, not records. A batch has a schema
 * (field names, types, nullability) and one column per field: a values
 * buffer (bool: one byte 0/1 per row; int64, float64 and timestamp: eight
 * bytes per row; utf8 and binary: nrows+1 int32 offsets into a data
 * buffer), and a validity bitmap (bit i, least significant first, set when
 * row i is not null; absent when the column has no nulls). Timestamps are
 * microseconds since the Unix epoch, UTC.
 *
 * On the wire (inside a BATCH message) a batch is
 *   [nrows, [[name, type, nullable]...], [[null_count, validity|nil,
 *    pad, values, pad, data]...]]
 * with every buffer a msgpack bin, and the pads chosen so that values and
 * data start 8-byte aligned in the message. Decoding points the columns
 * into the received message (no copy) and keeps a reference to it; a
 * buffer that is not aligned in memory is copied instead. Decoding checks
 * every length, offset, flag and UTF-8 string, so a batch from a peer that
 * decodes is safe to read.
 *
 * Ownership: lm_batch_new/lm_batch_decode give the caller the batch;
 * lm_batch_free releases it with its buffers, its schema reference and its
 * message reference. A schema is immutable and reference counted.
 */
#ifndef LM_BATCH_H
#define LM_BATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "lm_err.h"
#include "lm_mp.h"
#include "lm_msg.h"

typedef enum lm_type {
    LM_TYPE_BOOL = 1,
    LM_TYPE_INT64 = 2,
    LM_TYPE_FLOAT64 = 3,
    LM_TYPE_TIMESTAMP = 4, /* int64 microseconds since the epoch */
    LM_TYPE_UTF8 = 5,
    LM_TYPE_BINARY = 6,
} lm_type;

#define LM_TYPE_MAX LM_TYPE_BINARY

/* "bool", "int64", ...; "?" for an invalid type. */
const char *lm_type_name(lm_type t);

/* True for utf8 and binary (offsets + data). */
static inline bool
lm_type_is_varwidth(lm_type t)
{
    return t == LM_TYPE_UTF8 || t == LM_TYPE_BINARY;
}

typedef struct lm_field {
    const char *name; /* field name (owned by the schema once created) */
    lm_type type;     /* column type */
    bool nullable;    /* may hold nulls */
} lm_field;

typedef struct lm_schema {
    _Atomic uint32_t refs; /* references */
    uint32_t nfields;      /* number of fields */
    lm_field fields[];     /* the fields; names point into the same allocation */
} lm_schema;

#define LM_SCHEMA_MAX_FIELDS 4096
#define LM_FIELD_NAME_MAX    1024

/* Creates a schema from n fields (names are copied). Returns LM_OK,
 * LM_ENOMEM, or LM_EINVAL with err naming the field when a name is empty,
 * too long or repeated, a type is invalid, or n is too large. */
int lm_schema_new(const lm_field *fields, uint32_t n, lm_schema **out, lm_error *err);
void lm_schema_retain(lm_schema *s);
void lm_schema_release(lm_schema *s); /* NULL is ignored */
/* Index of the field named name (exact match), or -1. */
int lm_schema_find(const lm_schema *s, const char *name);
/* Same names, types and nullability in the same order. */
bool lm_schema_equal(const lm_schema *a, const lm_schema *b);

typedef struct lm_column {
    uint8_t *validity;   /* bitmap of non-null rows, or NULL when no row is null */
    void *values;        /* bool: uint8_t[], int64/timestamp: int64_t[], float64: double[],
                            utf8/binary: int32_t offsets[nrows + 1] */
    uint8_t *data;       /* utf8/binary bytes; NULL for fixed-width types */
    uint32_t data_len;   /* bytes used in data */
    uint32_t data_cap;   /* bytes allocated for data (owned buffers only) */
    uint32_t null_count; /* rows that are null */
    uint32_t vcount;     /* var-width values appended so far (builder) */
    uint8_t own;         /* LM_COL_OWN_* bits: which buffers this column frees */
} lm_column;

#define LM_COL_OWN_VALIDITY 0x1
#define LM_COL_OWN_VALUES   0x2
#define LM_COL_OWN_DATA     0x4

typedef struct lm_batch {
    lm_schema *schema; /* one reference */
    uint32_t nrows;    /* rows in the batch */
    uint32_t capacity; /* rows the owned buffers can hold */
    lm_msg *backing;   /* message that borrowed buffers point into, or NULL */
    bool readonly;     /* decoded: buffers may be borrowed, no appends */
    lm_column cols[];  /* schema->nfields columns */
} lm_batch;

/* Creates an empty batch with room for capacity rows (growing later is
 * possible with lm_batch_reserve). Takes a new reference to schema.
 * Returns LM_OK or LM_ENOMEM. */
int lm_batch_new(lm_schema *schema, uint32_t capacity, lm_batch **out);

/* Frees b, its owned buffers, and its schema and message references.
 * NULL is ignored. */
void lm_batch_free(lm_batch *b);

/* Ensures room for capacity rows. Only for batches built here (not
 * decoded ones: LM_ESTATE). Returns LM_OK, LM_ENOMEM or LM_ESTATE. */
int lm_batch_reserve(lm_batch *b, uint32_t capacity);

/* Empties b for reuse, keeping its buffers. Only for batches built here;
 * a decoded (read-only) batch is left as it is. */
void lm_batch_clear(lm_batch *b);

/* One value of any column type, for row-wise building and reading. */
typedef struct lm_value {
    bool is_null;
    union {
        bool b;    /* LM_TYPE_BOOL */
        int64_t i; /* LM_TYPE_INT64, LM_TYPE_TIMESTAMP */
        double f;  /* LM_TYPE_FLOAT64 */
        struct {
            const void *ptr; /* LM_TYPE_UTF8, LM_TYPE_BINARY; borrowed */
            uint32_t len;
        } s;
    } v;
} lm_value;

/* Appends one row; row[i] is the value of field i. Grows the batch as
 * needed. Returns LM_OK, LM_ENOMEM, or LM_EINVAL with err naming the
 * field when a null goes to a non-nullable field or a utf8 value is not
 * valid UTF-8, or LM_ETOOBIG when a column's bytes would pass 2 GiB. The
 * batch is unchanged on error. */
int lm_batch_append_row(lm_batch *b, const lm_value *row, lm_error *err);

/* Reads the value at (col, row). Strings point into the batch. */
void lm_batch_get(const lm_batch *b, uint32_t col, uint32_t row, lm_value *out);

/* Typed access to a column's values buffer. */
static inline int64_t *
lm_batch_i64(const lm_batch *b, uint32_t col)
{
    return (int64_t *)b->cols[col].values;
}
static inline double *
lm_batch_f64(const lm_batch *b, uint32_t col)
{
    return (double *)b->cols[col].values;
}
static inline uint8_t *
lm_batch_bools(const lm_batch *b, uint32_t col)
{
    return (uint8_t *)b->cols[col].values;
}
static inline int32_t *
lm_batch_offsets(const lm_batch *b, uint32_t col)
{
    return (int32_t *)b->cols[col].values;
}
static inline bool
lm_batch_is_null(const lm_batch *b, uint32_t col, uint32_t row)
{
    const uint8_t *v = b->cols[col].validity;
    return v != NULL && (v[row >> 3] & (1u << (row & 7))) == 0;
}

/* --- column-wise building ---------------------------------------------
 * Operators that make output column by column write rows
 * [b->nrows, b->nrows + n) after lm_batch_reserve(b, b->nrows + n):
 * fixed-width values directly (lm_batch_i64(b, c)[row] = v), var-width
 * values with lm_batch_put_bytes in row order, nulls with lm_batch_put_null;
 * then lm_batch_commit_rows(b, n). */

/* Sets the var-width value of (col, row); row must be the column's next
 * value (its vcount). Returns LM_OK, LM_ENOMEM or LM_ETOOBIG (column
 * bytes past 2 GiB). No UTF-8 check: callers put bytes they produced or
 * validated. */
int lm_batch_put_bytes(lm_batch *b, uint32_t col, uint32_t row, const void *p, uint32_t len);

/* Makes room for extra more bytes in var-width column col's data, for a
 * builder that writes them in place (at cols[col].data + data_len, then
 * advancing data_len, vcount and the offsets itself, as put_bytes does).
 * LM_OK, LM_ENOMEM, LM_ETOOBIG (past 2 GiB). */
int lm_batch_reserve_bytes(lm_batch *b, uint32_t col, size_t extra);

/* Makes column col's validity bitmap (all rows valid) if it has none, for a
 * builder that clears bits in place. LM_OK or LM_ENOMEM. */
int lm_batch_reserve_nulls(lm_batch *b, uint32_t col);

/* Marks (col, row) null (for var-width columns, also appends an empty
 * value, so row must be the column's next value). Returns LM_OK or
 * LM_ENOMEM. The column must be nullable (not checked here). */
int lm_batch_put_null(lm_batch *b, uint32_t col, uint32_t row);

/* Adds n rows written column-wise to b->nrows. */
void lm_batch_commit_rows(lm_batch *b, uint32_t n);

/* Forgets the values written column-wise past b->nrows and not committed
 * (after an error part-way through a row): nulls, null counts and bytes
 * are as they were, so the next rows can be written. */
void lm_batch_discard_uncommitted(lm_batch *b);

/* Appends the rows rows[0..n) of in to out, which has the same schema.
 * Returns LM_OK, LM_ENOMEM, LM_ETOOBIG or LM_EINVAL (schemas differ). */
int lm_batch_gather(lm_batch *out, const lm_batch *in, const uint32_t *rows, uint32_t n);

/* Appends rows [from, from + n) of in to out (same schema). */
int lm_batch_append_range(lm_batch *out, const lm_batch *in, uint32_t from, uint32_t n);

/* Makes a batch of schema out_schema whose column j is column cols[j] of
 * in, moved without copying (a column named twice is copied the second
 * time). in is left with those columns empty and must only be freed. If in
 * borrows from a message, the new batch does too (it retains the message
 * and is read-only). Returns LM_OK or LM_ENOMEM (in is unchanged then);
 * out_schema's types must match (LM_EINVAL). */
int lm_batch_take_columns(lm_batch *in, const uint32_t *cols, uint32_t n, lm_schema *out_schema,
                          lm_batch **out);

/* Hashes the key columns cols[0..ncols) of every row into hashes[0..nrows)
 * (64-bit xxh3; nulls hash as a fixed value; equal keys hash equally
 * whatever batch they are in). */
void lm_batch_hash_rows(const lm_batch *b, const uint32_t *cols, uint32_t ncols, uint64_t *hashes);

/* Encodes b onto pk, which appends to m (pads are computed from m's
 * length). Returns LM_OK or LM_ENOMEM. */
int lm_batch_encode(const lm_batch *b, msgpack_packer *pk, lm_msg *m);

/* Decodes a batch at r's position. The batch borrows buffers from the
 * bytes r reads: it retains backing, the message holding them; with a NULL
 * backing the caller keeps the bytes alive as long as the batch.
 * Decoded batches are read-only.
 * max_rows bounds nrows. Returns LM_OK, LM_ENOMEM, or LM_EPROTO with err
 * saying what is wrong and where; on error nothing is kept. */
int lm_batch_decode(lm_mpr *r, lm_msg *backing, uint32_t max_rows, lm_batch **out, lm_error *err);

/* Checks that len bytes are valid UTF-8. */
bool lm_utf8_valid(const uint8_t *p, size_t len);

#endif /* LM_BATCH_H */
