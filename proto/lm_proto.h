/*
 * lm_proto.h: the message catalog's types, and the envelope and payload
 * codec.
 *
 * A message on every path (mailbox or network) is the msgpack array
 *   [version, type, src_node, src_actor, dst_node, dst_actor, payload]
 * where payload is the array of the type's fields as listed in
 * lm_catalog.def. lm_proto_encode builds such a message from a payload
 * struct; lm_proto_parse_envelope checks the header of received bytes and
 * fills the lm_msg's type and addresses; lm_proto_decode reads the
 * payload into the type's struct. Decoding never trusts the bytes: a
 * truncated, oversized, wrongly typed or unknown message is an error with
 * a reason, never a crash or an out-of-bounds read.
 */
#ifndef LM_PROTO_H
#define LM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_batch.h"
#include "lm_err.h"
#include "lm_msg.h"

#define LM_PROTO_VERSION 2

/* Rows a decoded batch may have; larger is a protocol error. */
#define LM_PROTO_MAX_BATCH_ROWS (1u << 20)

/* Barrier kinds. */
#define LM_BARRIER_CHECKPOINT 0
#define LM_BARRIER_SAVEPOINT  1

/* Job states (JOB_STATUS). */
#define LM_JOB_RUNNING  1
#define LM_JOB_FINISHED 2
#define LM_JOB_FAILED   3
#define LM_JOB_CANCELED 4
#define LM_JOB_STOPPED  5 /* stopped after a savepoint */

/* API_CALL ops: which REST request an actor is asked to answer. */
#define LM_API_OP_WORKERS         1 /* GET /workers (scheduler) */
#define LM_API_OP_PIPELINE_CREATE 2 /* POST /pipelines, body (pipeline manager) */
#define LM_API_OP_PIPELINE_STOP   3 /* PATCH /pipelines/{id} {stop} (pipeline manager, job) */
#define LM_API_OP_PIPELINE_DELETE 4 /* DELETE /pipelines/{id} (pipeline manager) */

/* The epoch of the job's end: CHECKPOINT_DONE for it tells the subtasks
 * that every subtask has consumed all its input, so what sinks hold for
 * the end may be committed; each answers with a CHECKPOINT_ACK for it. */
#define LM_EPOCH_FINAL UINT64_MAX

/* A string or bytes in a payload. Encoding reads len bytes at ptr;
 * decoding points into the message (not NUL-terminated) and is valid while
 * the message is. */
typedef struct lm_str {
    const char *ptr;
    uint32_t len;
} lm_str;

typedef struct lm_bytes {
    const uint8_t *ptr;
    uint32_t len;
} lm_bytes;

/* An lm_str from a C string. */
static inline lm_str
lm_str_c(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return (lm_str){s, (uint32_t)n};
}

typedef enum lm_field_kind {
    LM_FK_U32,
    LM_FK_U64,
    LM_FK_I64,
    LM_FK_F64,
    LM_FK_BOOL,
    LM_FK_STR,
    LM_FK_BIN,
    LM_FK_ADDR,
    LM_FK_BATCH,
} lm_field_kind;

/* C types of the kinds. A BATCH field is an lm_batch *: borrowed when
 * encoding; when decoding, a new batch the caller frees (lm_proto_fini). */
typedef uint32_t lm_fk_U32;
typedef uint64_t lm_fk_U64;
typedef int64_t lm_fk_I64;
typedef double lm_fk_F64;
typedef bool lm_fk_BOOL;
typedef lm_str lm_fk_STR;
typedef lm_bytes lm_fk_BIN;
typedef lm_addr lm_fk_ADDR;
typedef lm_batch *lm_fk_BATCH;

/* The type ids: LM_MT_BATCH, LM_MT_WATERMARK, ... */
typedef enum lm_msg_type {
#define LM_MSG(NAME, id, lname, doc) LM_MT_##NAME = id,
#define LM_FIELD(lname, KIND, field, doc)
#define LM_MSG_END(lname)
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END
} lm_msg_type;

/* The payload structs: lm_batch_msg, lm_watermark_msg, ... */
#define LM_MSG(NAME, id, lname, doc)      typedef struct lm_##lname##_msg {
#define LM_FIELD(lname, KIND, field, doc) lm_fk_##KIND field;
#define LM_MSG_END(lname)                                                                          \
    }                                                                                              \
    lm_##lname##_msg;
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END

typedef struct lm_field_desc {
    const char *name;   /* field name */
    lm_field_kind kind; /* wire and C type */
    size_t offset;      /* offsetof in the payload struct */
} lm_field_desc;

typedef struct lm_msg_desc {
    uint16_t type;               /* LM_MT_* */
    const char *name;            /* "WATERMARK" */
    const char *doc;             /* one line */
    const lm_field_desc *fields; /* in wire order */
    uint32_t nfields;            /* number of fields */
    size_t size;                 /* sizeof the payload struct */
} lm_msg_desc;

/* The descriptor of type, or NULL when the type is unknown. */
const lm_msg_desc *lm_proto_desc(uint32_t type);

/* The name of type ("WATERMARK"), or "?" when unknown. */
const char *lm_proto_type_name(uint32_t type);

/* Encodes a message of type from src to dst with the payload struct at
 * payload (the struct of that type). Returns LM_OK with *out owned by the
 * caller, LM_ETYPE for an unknown type, LM_ENOMEM. */
int lm_proto_encode(uint32_t type, lm_addr src, lm_addr dst, const void *payload, lm_msg **out);

/* Checks the envelope of m's bytes (version, type known, addresses, the
 * payload present, at most max_len bytes in all) and sets m->type, src,
 * dst and payload_off. Returns LM_OK, LM_ETOOBIG, LM_EVERSION, LM_ETYPE or
 * LM_EPROTO, with err saying what and where. */
int lm_proto_parse_envelope(lm_msg *m, size_t max_len, lm_error *err);

/* Decodes m's payload into the struct at payload, which must be the
 * struct of m->type. Strings and bins point into m. A decoded BATCH field
 * is a new batch that borrows from m (and retains it). Call lm_proto_fini
 * on the struct when done. Returns LM_OK, LM_ETYPE, LM_ENOMEM or
 * LM_EPROTO (naming the message type and field); on error nothing needs
 * freeing. */
int lm_proto_decode(lm_msg *m, void *payload, lm_error *err);

/* Releases what lm_proto_decode allocated in a payload of type (batches). */
void lm_proto_fini(uint32_t type, void *payload);

/* Typed wrappers: lm_encode_watermark(src, dst, &payload, &msg) and
 * lm_decode_watermark(msg, &payload, &err) (LM_ETYPE when msg is of another
 * type), for every message. */
#define LM_MSG(NAME, id, lname, doc)                                                               \
    static inline int lm_encode_##lname(lm_addr src, lm_addr dst, const lm_##lname##_msg *p,       \
                                        lm_msg **out)                                              \
    {                                                                                              \
        return lm_proto_encode(LM_MT_##NAME, src, dst, p, out);                                    \
    }                                                                                              \
    static inline int lm_decode_##lname(lm_msg *m, lm_##lname##_msg *p, lm_error *err)             \
    {                                                                                              \
        if (m->type != LM_MT_##NAME) {                                                             \
            return lm_error_set(err, LM_ETYPE, "expected a " #NAME " message, got %s",             \
                                lm_proto_type_name(m->type));                                      \
        }                                                                                          \
        return lm_proto_decode(m, p, err);                                                         \
    }
#define LM_FIELD(lname, KIND, field, doc)
#define LM_MSG_END(lname)
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END

/* --- address lists -------------------------------------------------------
 * Several payloads carry a list of actor addresses in one BIN field, 12
 * bytes each: node u32 then actor u64, little-endian. */
#define LM_ADDR_WIRE_SIZE 12

/* Writes n addresses to p (n * LM_ADDR_WIRE_SIZE bytes). */
static inline void
lm_addr_list_put(uint8_t *p, const lm_addr *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++, p += LM_ADDR_WIRE_SIZE) {
        for (int k = 0; k < 4; k++) {
            p[k] = (uint8_t)(a[i].node >> (8 * k));
        }
        for (int k = 0; k < 8; k++) {
            p[4 + k] = (uint8_t)(a[i].actor >> (8 * k));
        }
    }
}

/* Reads address i of the list in b (the caller checks i < b.len / 12). */
static inline lm_addr
lm_addr_list_get(lm_bytes b, uint32_t i)
{
    const uint8_t *p = b.ptr + (size_t)i * LM_ADDR_WIRE_SIZE;
    lm_addr a = {0, 0};
    for (int k = 0; k < 4; k++) {
        a.node |= (uint32_t)p[k] << (8 * k);
    }
    for (int k = 0; k < 8; k++) {
        a.actor |= (uint64_t)p[4 + k] << (8 * k);
    }
    return a;
}

/* --- operator counters ---------------------------------------------------
 * JOB_STATS_REPLY's ops field: per operator, 20 bytes: plan operator
 * index u32, rows in u64, rows out u64, little-endian. */
#define LM_OP_COUNTS_WIRE_SIZE 20

typedef struct lm_op_counts {
    uint32_t op; /* plan operator index */
    uint64_t in, out;
} lm_op_counts;

/* Writes c to p (LM_OP_COUNTS_WIRE_SIZE bytes). */
static inline void
lm_op_counts_put(uint8_t *p, lm_op_counts c)
{
    for (int k = 0; k < 4; k++) {
        p[k] = (uint8_t)(c.op >> (8 * k));
    }
    for (int k = 0; k < 8; k++) {
        p[4 + k] = (uint8_t)(c.in >> (8 * k));
        p[12 + k] = (uint8_t)(c.out >> (8 * k));
    }
}

/* Reads entry i of the list in b (the caller checks i < b.len / 20). */
static inline lm_op_counts
lm_op_counts_get(lm_bytes b, uint32_t i)
{
    const uint8_t *p = b.ptr + (size_t)i * LM_OP_COUNTS_WIRE_SIZE;
    lm_op_counts c = {0, 0, 0};
    for (int k = 0; k < 4; k++) {
        c.op |= (uint32_t)p[k] << (8 * k);
    }
    for (int k = 0; k < 8; k++) {
        c.in |= (uint64_t)p[4 + k] << (8 * k);
        c.out |= (uint64_t)p[12 + k] << (8 * k);
    }
    return c;
}

#endif /* LM_PROTO_H */
