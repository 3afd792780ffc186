/*
 * fuzz_decode.c: libFuzzer target for the message decoder.
 *
 * Each input goes through every path that reads bytes from a peer:
 *   - as a received message: lm_proto_parse_envelope (1 MiB limit), then
 *     lm_proto_decode into a payload struct big enough for any type; a
 *     decoded BATCH has every value of every row read (so the address
 *     sanitizer checks each offset and length decode accepted), and is
 *     re-encoded and decoded again, which must succeed with equal values;
 *   - as a bare batch: lm_batch_decode with no backing message, once on
 *     the input as given and once on a copy one byte off, so that the
 *     copy fallback for misaligned buffers runs too;
 *   - through lm_mpr_skip, value after value.
 * Everything is released before returning; the shell pool is trimmed so
 * that each run frees what it allocated (libFuzzer's leak check counts).
 *
 * Build and run: make fuzz (FUZZ_SECONDS=...); seeds in
 * test/fuzz/corpus/fuzz_decode (made by test/fuzz/gen_corpus.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lm_batch.h"
#include "lm_mp.h"
#include "lm_proto.h"

/* Room for the payload struct of any message type. */
typedef union any_payload {
#define LM_MSG(NAME, id, lname, doc) lm_##lname##_msg lname;
#define LM_FIELD(lname, KIND, field, doc)
#define LM_MSG_END(lname)
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END
    max_align_t align;
} any_payload;

/* Rows a bare batch may claim here (the proto path uses its own limit). */
#define RAW_MAX_ROWS (1u << 20)

static volatile uint64_t sink; /* keeps the reads from being optimised away */

/* Reads every value of every row; decoded utf8 must be valid UTF-8. */
static void
read_all(const lm_batch *b)
{
    uint64_t acc = 0;

    for (uint32_t c = 0; c < b->schema->nfields; c++) {
        lm_type t = b->schema->fields[c].type;
        for (uint32_t i = 0; i < b->nrows; i++) {
            lm_value v;
            lm_batch_get(b, c, i, &v);
            acc += v.is_null;
            switch (t) {
            case LM_TYPE_BOOL: acc += v.v.b; break;
            case LM_TYPE_INT64:
            case LM_TYPE_TIMESTAMP: acc += (uint64_t)v.v.i; break;
            case LM_TYPE_FLOAT64: {
                uint64_t bits;
                memcpy(&bits, &v.v.f, sizeof(bits));
                acc += bits;
                break;
            }
            case LM_TYPE_UTF8:
            case LM_TYPE_BINARY: {
                const uint8_t *p = v.v.s.ptr;
                for (uint32_t k = 0; k < v.v.s.len; k++) {
                    acc += p[k];
                }
                if (t == LM_TYPE_UTF8 && !lm_utf8_valid(p, v.v.s.len)) {
                    abort(); /* decode let through a value that is not UTF-8 */
                }
                break;
            }
            }
        }
    }
    sink += acc;
}

/* True when a and b hold the same values (floats bit for bit). */
static bool
same_values(const lm_batch *a, const lm_batch *b)
{
    if (!lm_schema_equal(a->schema, b->schema) || a->nrows != b->nrows) {
        return false;
    }
    for (uint32_t c = 0; c < a->schema->nfields; c++) {
        lm_type t = a->schema->fields[c].type;
        for (uint32_t i = 0; i < a->nrows; i++) {
            lm_value va, vb;
            lm_batch_get(a, c, i, &va);
            lm_batch_get(b, c, i, &vb);
            if (va.is_null != vb.is_null) {
                return false;
            }
            if (va.is_null) {
                continue;
            }
            switch (t) {
            case LM_TYPE_BOOL:
                if (va.v.b != vb.v.b) {
                    return false;
                }
                break;
            case LM_TYPE_INT64:
            case LM_TYPE_TIMESTAMP:
                if (va.v.i != vb.v.i) {
                    return false;
                }
                break;
            case LM_TYPE_FLOAT64:
                if (memcmp(&va.v.f, &vb.v.f, sizeof(double)) != 0) {
                    return false;
                }
                break;
            case LM_TYPE_UTF8:
            case LM_TYPE_BINARY:
                if (va.v.s.len != vb.v.s.len ||
                    (va.v.s.len > 0 && memcmp(va.v.s.ptr, vb.v.s.ptr, va.v.s.len) != 0)) {
                    return false;
                }
                break;
            }
        }
    }
    return true;
}

/* A batch that decoded must encode, and decode again to the same values. */
static void
round_trip(const lm_batch *b)
{
    lm_msg *m = NULL;
    msgpack_packer pk;
    lm_mpr r;
    lm_batch *again = NULL;
    lm_error err;

    if (lm_msg_alloc(256, &m) != LM_OK) {
        return;
    }
    lm_mp_packer_init(&pk, m);
    if (lm_batch_encode(b, &pk, m) == LM_OK) {
        lm_mpr_init(&r, m->data, m->len);
        int rv = lm_batch_decode(&r, m, RAW_MAX_ROWS, &again, &err);
        if (rv == LM_EPROTO || (rv == LM_OK && !same_values(b, again))) {
            abort(); /* re-encoding a decoded batch lost or broke something */
        }
        lm_batch_free(again);
    }
    lm_msg_release(m);
}

/* Decodes data as a bare batch borrowing the bytes (no message). */
static void
decode_raw(const uint8_t *data, size_t size)
{
    lm_mpr r;
    lm_batch *b = NULL;
    lm_error err;

    lm_mpr_init(&r, data, size);
    if (lm_batch_decode(&r, NULL, RAW_MAX_ROWS, &b, &err) == LM_OK) {
        read_all(b);
        lm_batch_free(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lm_msg *m = NULL;
    lm_error err;
    uint8_t *shifted;
    lm_mpr r;

    /* 1. as a received message */
    if (lm_msg_alloc(size, &m) == LM_OK) {
        if (lm_msg_append(m, data, size) == LM_OK &&
            lm_proto_parse_envelope(m, 1u << 20, &err) == LM_OK) {
            any_payload p;
            if (lm_proto_decode(m, &p, &err) == LM_OK) {
                if (m->type == LM_MT_BATCH && p.batch.batch != NULL) {
                    read_all(p.batch.batch);
                    round_trip(p.batch.batch);
                }
                lm_proto_fini(m->type, &p);
            }
        }
        lm_msg_release(m);
    }

    /* 2. as a bare batch, aligned as given and one byte off */
    decode_raw(data, size);
    shifted = malloc(size + 1);
    if (shifted != NULL) {
        memcpy(shifted + 1, data, size);
        decode_raw(shifted + 1, size);
        free(shifted);
    }

    /* 3. skipping value after value */
    lm_mpr_init(&r, data, size);
    while (lm_mpr_remaining(&r) > 0 && lm_mpr_skip(&r, 64) == LM_OK) {
    }

    lm_msg_pool_trim();
    return 0;
}
