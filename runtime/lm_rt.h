/*
 * lm_rt.h: the actor runtime of one process (a node): event loops, actors,
 * mailboxes, timers and local delivery.
 *
 * A runtime owns N loop threads, each running a libevent event_base. An
 * actor is pinned to one loop for its whole life and all its callbacks run
 * there, one at a time, so an actor's state needs no locks. Actors talk
 * only by messages (lm_msg), addressed by lm_addr {node, actor}.
 *
 * Delivery: lm_send puts a message in the destination's mailbox, a
 * lock-free multi-producer single-consumer queue. Only the push that finds
 * the mailbox empty schedules the actor on its loop's run queue, and only
 * the push that finds the run queue empty wakes the loop (an eventfd), so
 * a busy actor costs one atomic exchange per message. A loop handles at
 * most `mailbox_batch` messages of one actor before moving to the next, so
 * no actor starves the others on its loop; between turns it lets libevent
 * run I/O and timers.
 *
 * Addresses: an actor id carries a slot and a generation. A send to an
 * unknown or dead actor fails with LM_ENOACTOR at once; a message accepted
 * for an actor that stops before handling it is returned to its sender as
 * UNDELIVERABLE. A send to another node goes through the transport
 * (lm_transport.h) when one is attached, else fails with LM_ENOROUTE.
 *
 * Lifecycle: lm_spawn creates an actor; its type's init runs on its loop
 * before any message. A handler that returns an error fails the actor: its
 * fini runs, its children are stopped, and its parent gets CHILD_EXIT with
 * the code and reason. Failing never takes the process down.
 */
#ifndef LM_RT_H
#define LM_RT_H

#include <stdbool.h>
#include <stdint.h>

#include "lm_err.h"
#include "lm_msg.h"
#include "lm_proto.h"

struct event_base;

typedef struct lm_rt lm_rt;
typedef struct lm_actor lm_actor;

/* What an actor is: a table of callbacks, all called on the actor's loop. */
typedef struct lm_actor_type {
    const char *name; /* component name for logs, e.g. "link" */
    /* Runs before any message. Sets up state (lm_actor_set_state). On
     * error the actor fails (fini is not called: init cleans up after
     * itself). May be NULL. */
    int (*init)(lm_actor *self, void *arg);
    /* Handles one message, borrowed for the call (lm_msg_retain to keep
     * it). Returning an error fails the actor. */
    int (*handle)(lm_actor *self, lm_msg *msg);
    /* Runs once when the actor stops or fails after a successful init:
     * frees state, closes what it opened. May be NULL. */
    void (*fini)(lm_actor *self);
} lm_actor_type;

typedef struct lm_rt_opts {
    uint32_t node_id;  /* this node's id; 0 = pick a random one */
    int loops;         /* loop threads; 0 = number of CPUs */
    int mailbox_batch; /* messages one actor handles per turn; 0 = 64 */
    const char *name;  /* node name for logs; NULL = "node" */
} lm_rt_opts;

/* Creates a runtime and starts its loop threads. Returns LM_OK, LM_ENOMEM,
 * LM_EINVAL (bad options) or LM_EIO (a thread or event base could not be
 * created). */
int lm_rt_new(const lm_rt_opts *opts, lm_rt **out);

/* Stops every actor (each gets STOP and runs its fini), waits up to
 * timeout_ms for them, stops the loop threads and frees the runtime. A
 * transport attached to rt must be freed first (lm_transport_free). */
void lm_rt_free(lm_rt *rt, int timeout_ms);

uint32_t lm_rt_node(const lm_rt *rt);
/* A random 64-bit number chosen at start: tells a restarted process
 * with the same node id from its earlier self. */
uint64_t lm_rt_incarnation(const lm_rt *rt);
int lm_rt_loop_count(const lm_rt *rt);
/* Live actors right now (spawned and not yet reclaimed). */
uint64_t lm_rt_actor_count(const lm_rt *rt);

typedef struct lm_spawn_opts {
    int loop;         /* loop index, or -1 to spread round-robin */
    lm_addr parent;   /* receives CHILD_EXIT; LM_ADDR_NONE for nobody */
    const char *name; /* a name unique on this node (lm_rt_whereis), or NULL */
} lm_spawn_opts;

#define LM_SPAWN_DEFAULTS ((lm_spawn_opts){-1, {0, 0}, NULL})

/* Spawns an actor of type with arg for its init. Returns at once with its
 * address in *out; init runs on the actor's loop. Callable from any
 * thread. Returns LM_OK, LM_ENOMEM, LM_EEXIST (name taken), LM_EINVAL
 * (loop out of range), LM_ECLOSED (runtime stopping). */
int lm_spawn(lm_rt *rt, const lm_actor_type *type, void *arg, const lm_spawn_opts *opts,
             lm_addr *out);

/* From inside an actor: spawns a child of self (opts->parent is ignored).
 * The child is stopped when self stops, and self gets CHILD_EXIT when the
 * child stops or fails. opts may be NULL. */
int lm_actor_spawn(lm_actor *self, const lm_actor_type *type, void *arg, const lm_spawn_opts *opts,
                   lm_addr *out);

/* Sends msg to msg->dst. On LM_OK the runtime owns msg; on error the
 * caller still does. Callable from any thread. Errors: LM_ENOACTOR (no
 * such live actor here), LM_ENOROUTE (another node, no route), LM_EAGAIN
 * (the link to that node has too much queued), LM_ECLOSED. */
int lm_send(lm_rt *rt, lm_msg *msg);

/* Puts msg in the mailbox of the local actor at via, whatever msg->dst
 * says: for actors that forward messages (the transport). Takes msg on
 * LM_OK. Errors: LM_ENOACTOR. */
int lm_deliver(lm_rt *rt, lm_addr via, lm_msg *msg);

/* From inside a handler: keep the message being handled. The runtime
 * does not release it after the handler returns; the handler now holds
 * that reference and must release it. Returns msg. */
lm_msg *lm_actor_take(lm_actor *self, lm_msg *msg);

/* Encodes a message of type from self to dst and sends it; the message is
 * freed on failure. Returns what lm_proto_encode or lm_send return. */
int lm_tell(lm_actor *self, lm_addr dst, uint32_t type, const void *payload);

/* Same, from outside any actor: the message's source is {node, 0}. */
int lm_rt_tell(lm_rt *rt, lm_addr dst, uint32_t type, const void *payload);

/* Same, with src as the source: for a thread that acts through an actor
 * of its own (answers and UNDELIVERABLE returns go to src). */
int lm_rt_tell_as(lm_rt *rt, lm_addr src, lm_addr dst, uint32_t type, const void *payload);

/* Asks the actor at addr to stop (sends STOP with reason). */
int lm_stop(lm_rt *rt, lm_addr addr, const char *reason);

/* From inside a handler: stop normally once this handler returns. */
void lm_actor_stop(lm_actor *self);

/* From inside a callback: records why the actor is failing and returns
 * code, for `return lm_actor_fail(self, LM_EPROTO, "bad %s", x);`. The
 * reason goes into the parent's CHILD_EXIT and the log. */
int lm_actor_fail(lm_actor *self, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Looks up a named actor of this node. LM_OK or LM_ENOTFOUND. */
int lm_rt_whereis(lm_rt *rt, const char *name, lm_addr *out);

/* --- inside an actor ------------------------------------------------- */

lm_addr lm_actor_addr(const lm_actor *self);
lm_rt *lm_actor_rt(const lm_actor *self);
void *lm_actor_state(const lm_actor *self);
void lm_actor_set_state(lm_actor *self, void *state);
/* The event_base of the actor's loop, for actors that do I/O. Events made
 * on it must be freed in fini; their callbacks run on the actor's loop
 * thread, outside any handler. */
struct event_base *lm_actor_event_base(const lm_actor *self);
int lm_actor_loop_index(const lm_actor *self);

/* --- timers ---------------------------------------------------------- */

/* Starts a timer of self that fires after after_ms and then, when
 * period_ms > 0, every period_ms. Each firing is delivered as a TIMER
 * message {id, tag}. Returns LM_OK with *id, or LM_ENOMEM. */
int lm_timer_start(lm_actor *self, uint64_t after_ms, uint64_t period_ms, uint64_t tag,
                   uint64_t *id);

/* Cancels a timer of self: no TIMER for it is handled after this returns,
 * even one already queued. Returns LM_OK or LM_ENOTFOUND. */
int lm_timer_cancel(lm_actor *self, uint64_t id);

/* --- transport hook (lm_transport.c) ---------------------------------- */

/* The function lm_send calls for a destination on another node; it takes
 * msg on LM_OK. Set by the transport when it attaches; setting it to NULL
 * detaches, and returns only once no lm_send is inside the old hook. */
typedef int (*lm_remote_send_fn)(void *transport, lm_msg *msg);
void lm_rt_set_remote(lm_rt *rt, lm_remote_send_fn fn, void *transport);

/* Statistics since start. */
typedef struct lm_rt_stats {
    uint64_t delivered;     /* messages handed to handlers */
    uint64_t bounced;       /* messages returned as UNDELIVERABLE (or dropped when no sender) */
    uint64_t actors_failed; /* actors that failed */
    uint64_t spawned;       /* actors spawned */
} lm_rt_stats;
void lm_rt_get_stats(const lm_rt *rt, lm_rt_stats *out);

#endif /* LM_RT_H */
