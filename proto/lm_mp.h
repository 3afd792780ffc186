/*
 * lm_mp.h: msgpack encoding into messages, and a bounds-checked reader.
 *
 * Encoding uses msgpack-c's packer (msgpack_pack_*) writing straight into
 * an lm_msg buffer. Decoding uses lm_mpr, a cursor over bytes that reads one
 * msgpack value at a time, never allocates, never reads outside
 * [start, end), and points strings and binaries into the buffer instead of
 * copying them. We do not decode with msgpack-c's unpacker because it
 * allocates every container's declared size before reading it: a 5-byte
 * array header from a peer claiming 2^28 elements costs it 6 GiB. The
 * reader checks every declared length against the bytes that remain.
 *
 * Every lm_mpr_* read returns LM_OK or LM_EPROTO; on error the cursor does
 * not move and r->why / r->at say what was expected and where, for
 * messages such as "expected an unsigned integer at byte 17, found a string".
 */
#ifndef LM_MP_H
#define LM_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "lm_err.h"
#include "lm_msg.h"

/* --- encoding --------------------------------------------------------- */

/* Initialises pk to append to m's bytes. Packer calls return msgpack-c's
 * int (0 = ok, -1 = out of memory). */
void lm_mp_packer_init(msgpack_packer *pk, lm_msg *m);

/* Packs a bin of n bytes from p, preceded by a padding bin that makes the
 * bin's body start at an offset of m that is a multiple of align (a power
 * of two, at most 8), counted from the start of m's bytes. Readers skip the
 * padding with lm_mpr_bin_aligned. Returns 0 or -1. */
int lm_mp_pack_bin_aligned(msgpack_packer *pk, lm_msg *m, const void *p, size_t n, size_t align);

/* Packs a string of n bytes. Returns 0 or -1. */
int lm_mp_pack_str(msgpack_packer *pk, const char *s, size_t n);

/* --- decoding --------------------------------------------------------- */

typedef struct lm_mpr {
    const uint8_t *start; /* first byte of the buffer (offsets are from here) */
    const uint8_t *p;     /* next byte to read */
    const uint8_t *end;   /* one past the last byte */
    const char *why;      /* after an error: what was wrong (static text) */
    size_t at;            /* after an error: offset of the offending byte */
} lm_mpr;

void lm_mpr_init(lm_mpr *r, const uint8_t *p, size_t len);

static inline size_t
lm_mpr_offset(const lm_mpr *r)
{
    return (size_t)(r->p - r->start);
}

static inline size_t
lm_mpr_remaining(const lm_mpr *r)
{
    return (size_t)(r->end - r->p);
}

/* Reads an array header; *n is its element count, which is at most the
 * bytes remaining (every element takes at least one byte). */
int lm_mpr_array(lm_mpr *r, uint32_t *n);
/* Reads an array header that must have exactly n elements. */
int lm_mpr_array_n(lm_mpr *r, uint32_t n);
/* Reads a map header; *n is its pair count (at most remaining / 2). */
int lm_mpr_map(lm_mpr *r, uint32_t *n);
/* An unsigned integer (any msgpack integer encoding whose value is >= 0). */
int lm_mpr_u64(lm_mpr *r, uint64_t *v);
/* As lm_mpr_u64, and the value must be <= max. */
int lm_mpr_u64_max(lm_mpr *r, uint64_t max, uint64_t *v);
/* A signed integer (any msgpack integer encoding that fits int64). */
int lm_mpr_i64(lm_mpr *r, int64_t *v);
/* A float 64 or float 32. */
int lm_mpr_f64(lm_mpr *r, double *v);
int lm_mpr_bool(lm_mpr *r, bool *v);
/* Returns true, and consumes it, when the next value is nil. */
bool lm_mpr_nil(lm_mpr *r);
/* A string; *s points into the buffer, not NUL-terminated. */
int lm_mpr_str(lm_mpr *r, const char **s, uint32_t *len);
/* A bin; *p points into the buffer. */
int lm_mpr_bin(lm_mpr *r, const uint8_t **p, uint32_t *len);
/* A padding bin (any content, at most 7 bytes) then a bin, as written by
 * lm_mp_pack_bin_aligned. */
int lm_mpr_bin_aligned(lm_mpr *r, const uint8_t **p, uint32_t *len);
/* Skips one value of any type, nested at most max_depth deep. */
int lm_mpr_skip(lm_mpr *r, int max_depth);

/* The name of the msgpack type whose first byte is b ("a string"). */
const char *lm_mp_type_name(uint8_t b);

/* Fills err with "<what>: <r->why> at byte <r->at>" and returns LM_EPROTO. */
int lm_mpr_error(const lm_mpr *r, lm_error *err, const char *what);

#endif /* LM_MP_H */
