/*
 * lm_mpscq.c: Vyukov's intrusive MPSC queue with ponyc's empty mark.
 *
 * Invariants: `tail` is the oldest node not yet popped, or the stub;
 * `head` is the newest node, tagged with bit 0 when the consumer has marked
 * the queue empty (which it only does when head == &stub, i.e. no node is
 * queued and no push is half-done). Nodes are at least 2-byte aligned, so
 * bit 0 is free for the tag.
 */
#include "lm_mpscq.h"

#include <stddef.h>

#define EMPTY_MARK ((uintptr_t)1)

void
lm_mpscq_init(lm_mpscq *q)
{
    atomic_init(&q->stub.next, NULL);
    q->tail = &q->stub;
    atomic_init(&q->head, (uintptr_t)&q->stub | EMPTY_MARK);
}

bool
lm_mpscq_push(lm_mpscq *q, lm_mpscq_node *node)
{
    uintptr_t prev;

    atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
    /* acq_rel: release publishes node->next = NULL and the node's contents
     * to whoever follows the head; acquire pairs with the consumer's
     * mark_empty CAS so that a producer that sees the mark also sees the
     * consumer's last writes. This exchange is the linearisation point. */
    prev = atomic_exchange_explicit(&q->head, (uintptr_t)node, memory_order_acq_rel);
    /* release: the consumer reads prev->next with acquire, and then reads
     * the node's contents. */
    atomic_store_explicit(&((lm_mpscq_node *)(prev & ~EMPTY_MARK))->next, node,
                          memory_order_release);
    return (prev & EMPTY_MARK) != 0;
}

lm_mpscq_node *
lm_mpscq_pop(lm_mpscq *q)
{
    lm_mpscq_node *tail = q->tail;
    /* acquire: pairs with the producer's release store of ->next. */
    lm_mpscq_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    uintptr_t head;

    if (tail == &q->stub) {
        if (next == NULL) {
            return NULL;
        }
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    /* tail is the last node we can see. If it is also the head, put the
     * stub behind it so tail can be handed out; otherwise a producer has
     * exchanged the head but not yet linked: report nothing for now. */
    head = atomic_load_explicit(&q->head, memory_order_acquire) & ~EMPTY_MARK;
    if ((lm_mpscq_node *)head != tail) {
        return NULL;
    }
    lm_mpscq_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

bool
lm_mpscq_mark_empty(lm_mpscq *q)
{
    uintptr_t expect = (uintptr_t)&q->stub;

    /* Only an empty queue whose tail is the stub can be marked: then head
     * is the stub, untagged. acq_rel: release makes the consumer's work
     * visible to the producer that reports the edge; acquire orders the
     * check against later pops. */
    if (q->tail != &q->stub || atomic_load_explicit(&q->stub.next, memory_order_acquire) != NULL) {
        return false;
    }
    if (atomic_compare_exchange_strong_explicit(&q->head, &expect, expect | EMPTY_MARK,
                                                memory_order_acq_rel, memory_order_acquire)) {
        return true;
    }
    /* Already marked (the consumer woke for another reason and found
     * nothing): still empty, and the next push still reports the edge. */
    return expect == ((uintptr_t)&q->stub | EMPTY_MARK);
}
