/*
 * lm_mpscq.h: an intrusive, lock-free, multi-producer single-consumer queue
 * that knows when it goes from empty to non-empty.
 *
 * This is Dmitry Vyukov's intrusive MPSC queue with a stub node, plus the
 * "empty mark" of ponyc's message queue: the consumer marks the queue empty
 * (a tag bit on the head pointer) when it finds nothing left, and the first
 * producer that pushes afterwards learns from its single atomic exchange
 * that the queue was empty. The actor runtime uses that edge to schedule an
 * actor (mailbox) or wake a loop (run queue) exactly once, and never on
 * every message.
 *
 * Producers: any thread, wait-free (one exchange, one store).
 * Consumer: one thread at a time; lock-free. A node may be in at most one
 * queue at a time; the queue never touches a node after pop returns it.
 */
#ifndef LM_MPSCQ_H
#define LM_MPSCQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct lm_mpscq_node {
    _Atomic(struct lm_mpscq_node *) next; /* link to the next node; owned by the queue */
} lm_mpscq_node;

typedef struct lm_mpscq {
    _Atomic uintptr_t head; /* last pushed node | 1 when marked empty (producers) */
    char pad[64 - sizeof(uintptr_t)];
    lm_mpscq_node *tail; /* next node to pop (consumer only) */
    lm_mpscq_node stub;  /* placeholder so the queue is never without a node */
} lm_mpscq;

/* Initialises q as empty and *marked* empty: the first push returns true. */
void lm_mpscq_init(lm_mpscq *q);

/* Appends node (from any thread). Returns true when the queue had been
 * marked empty by its consumer, i.e. this push is the empty-to-non-empty
 * edge and the caller must get the consumer to run. */
bool lm_mpscq_push(lm_mpscq *q, lm_mpscq_node *node);

/* Removes and returns the oldest node, or NULL when the queue is empty or a
 * producer is between its two steps (the node will appear shortly).
 * Consumer only. */
lm_mpscq_node *lm_mpscq_pop(lm_mpscq *q);

/* Consumer only, after pop returned NULL: marks the queue empty if it
 * still is. Returns true when it is marked, now or already (the next push
 * reports the edge, so the consumer may stop looking); false when a push
 * raced in (the consumer must keep going). */
bool lm_mpscq_mark_empty(lm_mpscq *q);

#endif /* LM_MPSCQ_H */
