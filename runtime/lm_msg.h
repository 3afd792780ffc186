/*
 * lm_msg.h: a message: addresses, type, and the encoded bytes.
 *
 * A message is the unit actors exchange. Its bytes are the msgpack
 * envelope and payload defined in proto/lm_proto.h, and they are the same
 * whether the message goes to a mailbox in this process or over nng to
 * another node. Small messages keep their bytes inline in the lm_msg (one
 * allocation); large ones keep them in an nng message so that a send to
 * another node hands the buffer to nng without a copy, and a received nng
 * message becomes an lm_msg without a copy.
 *
 * Ownership: lm_msg is reference counted. The creator holds one
 * reference; a successful send takes it; a handler borrows the message it
 * is given and may lm_msg_retain it to keep it (e.g. a batch that points
 * into its bytes).
 */
#ifndef LM_MSG_H
#define LM_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "lm_err.h"
#include "lm_mpscq.h"

/* An actor's address: the node (process) it lives on and its id there.
 * Actor ids are never reused within a node's lifetime. {node, 0} names the
 * node itself (no actor); {0, 0} is "nobody". */
typedef struct lm_addr {
    uint32_t node;  /* node id, unique in a cluster; 0 = none */
    uint64_t actor; /* actor id on that node; 0 = the node itself / none */
} lm_addr;

#define LM_ADDR_NONE ((lm_addr){0, 0})

static inline int
lm_addr_eq(lm_addr a, lm_addr b)
{
    return a.node == b.node && a.actor == b.actor;
}

/* Formats addr as "node:slot.generation" (e.g. "1:5.2") into buf;
 * returns buf. cap of LM_ADDR_STRLEN is always enough. */
#define LM_ADDR_STRLEN 40
char *lm_addr_format(lm_addr addr, char *buf, size_t cap);

#define LM_MSG_INLINE 200 /* bytes kept inside the lm_msg itself */

typedef struct lm_msg {
    lm_mpscq_node qnode;                     /* mailbox link (runtime only) */
    _Atomic uint32_t refs;                   /* references; freed when it drops to 0 */
    uint16_t type;                           /* catalog type, from the envelope */
    uint16_t flags;                          /* runtime flags (LM_MSGF_*) */
    lm_addr src;                             /* sender, from the envelope */
    lm_addr dst;                             /* receiver, from the envelope */
    uint32_t payload_off;                    /* offset of the payload in data */
    uint8_t *data;                           /* the message bytes */
    size_t len;                              /* bytes in data */
    size_t cap;                              /* capacity of data */
    nng_msg *nmsg;                           /* owner of data when not inline, else NULL */
    _Alignas(16) uint8_t inl[LM_MSG_INLINE]; /* inline bytes for small messages */
} lm_msg;

#define LM_MSGF_LOCAL_ONLY 0x1 /* runtime-internal message that never crosses nodes */

/* Allocates an empty message whose buffer can hold at least size_hint
 * bytes without growing. Returns LM_OK or LM_ENOMEM. The caller owns the
 * one reference. */
int lm_msg_alloc(size_t size_hint, lm_msg **out);

/* Appends n bytes, growing the buffer (doubling) as needed. Returns LM_OK
 * or LM_ENOMEM (the message is unchanged then). */
int lm_msg_append(lm_msg *m, const void *bytes, size_t n);

/* Takes ownership of a received nng message and wraps its body (no copy).
 * The envelope is not parsed here (see lm_proto_parse_envelope). On
 * LM_ENOMEM the nng message is still the caller's. */
int lm_msg_from_nng(nng_msg *nm, lm_msg **out);

/* Gives the bytes of m as an nng message that the caller owns (nng keeps
 * headroom in front, so a frame header can be inserted without a copy).
 * Consumes the caller's reference to m. When the caller held
 * the only reference and the bytes already live in an nng message, that
 * message is handed over without copying. On error the reference is still
 * consumed and m is released. */
int lm_msg_to_nng(lm_msg *m, nng_msg **out);

/* Adds a reference. */
void lm_msg_retain(lm_msg *m);

/* Drops a reference; frees the message on the last one. NULL is ignored. */
void lm_msg_release(lm_msg *m);

/* Tunes glibc's allocator for batch-sized messages: buffers up to 32 MiB
 * come from the heap instead of a fresh mmap each (which costs page
 * faults and zeroing on every message), and freed memory is kept for reuse
 * until 128 MiB of it lies unused. Programs call this once at start
 * (laminard, the benchmarks); it changes process-wide settings. */
void lm_msg_tune_allocator(void);

/* Frees the message shells pooled for reuse (those of this thread and the
 * global pool). Messages in use are not affected. For leak checkers and
 * long idle periods; never required. */
void lm_msg_pool_trim(void);

/* The payload bytes (after the envelope header). */
static inline const uint8_t *
lm_msg_payload(const lm_msg *m, size_t *len)
{
    *len = m->len - m->payload_off;
    return m->data + m->payload_off;
}

#endif /* LM_MSG_H */
