/*
 * lm_rt.c: loops, actors, mailboxes, timers, and local delivery.
 *
 * Actor slots. Actors live in fixed slots allocated in chunks that are
 * never freed while the runtime lives, so a sender may look at a slot
 * without a lock even while its actor dies. Each slot has one 64-bit
 * atomic word: generation (bits 33..63), dead flag (bit 32) and a
 * reference count (bits 0..31). An actor id is (generation << 32) | slot.
 * A sender acquires a reference with a CAS that fails when the generation
 * differs or the dead flag is set, pushes, and releases. The actor holds
 * one "liveness" reference itself; dying sets the dead flag and drops it
 * in one atomic add. Whoever drops the count to zero on a dead actor
 * pushes the slot's reap node into the mailbox: it is the last node that
 * can ever arrive, and when the loop pops it the slot is free for a new
 * generation.
 *
 * Scheduling. An actor is on its loop's run queue exactly when its
 * mailbox is not marked empty (lm_mpscq). The loop pops an actor, handles
 * up to mailbox_batch messages, and either marks the mailbox empty (the
 * actor is now idle) or puts the actor back at the tail.
 */
#include "lm_rt.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lm_log.h"

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096 /* 4M actors at once */

#define REFS_MASK 0xffffffffull
#define DEAD_BIT  (1ull << 32)
#define GEN_SHIFT 33
#define GEN_MASK  ((1ull << 31) - 1)

#define LOOP_TURN_ACTORS 128 /* actor turns between two looks at I/O */

typedef struct lm_loop lm_loop;

typedef struct timer_rec {
    struct timer_rec *next; /* next timer of the same actor */
    uint64_t id;            /* returned by lm_timer_start */
    uint64_t tag;           /* the caller's tag */
    struct event *ev;       /* the libevent timer */
    lm_actor *owner;        /* the actor it belongs to */
    uint64_t period_ms;     /* re-arm after firing; 0 = one-shot */
    uint32_t pending;       /* TIMER messages queued, not yet handled */
    bool fired;             /* one-shot that has fired */
    bool cancelled;         /* lm_timer_cancel was called */
} timer_rec;

struct lm_actor {
    lm_mpscq_node runq_node; /* link in the loop's run queue */
    lm_mpscq mailbox;        /* incoming messages */
    _Atomic uint64_t word;   /* generation | dead | references (see top) */
    uint32_t slot;           /* index of this slot */
    lm_rt *rt;               /* owning runtime */
    lm_actor *free_next;     /* free list link while the slot is unused */
    lm_mpscq_node init_node; /* queued at spawn: run init */
    lm_mpscq_node reap_node; /* queued by the last reference: reclaim */
    /* One incarnation's fields, set before the address is published. */
    lm_loop *loop;                   /* the loop it is pinned to */
    const lm_actor_type *type;       /* callbacks */
    void *init_arg;                  /* for init */
    void *user;                      /* lm_actor_state */
    lm_addr addr;                    /* own address */
    lm_addr parent;                  /* gets CHILD_EXIT */
    char *name;                      /* registered name or NULL */
    char label[LM_ADDR_STRLEN + 80]; /* "name@1:5.2" for logs */
    /* Used on the loop thread only. */
    lm_addr *children;                  /* live children */
    uint32_t nchildren;                 /* used entries */
    uint32_t children_cap;              /* allocated entries */
    timer_rec *timers;                  /* live timers */
    uint64_t next_timer_id;             /* ids for lm_timer_start */
    int fail_code;                      /* set by lm_actor_fail */
    char fail_reason[LM_ERROR_MSG_MAX]; /* set by lm_actor_fail */
    bool init_ok;                       /* init succeeded: fini is owed */
    bool stop_requested;                /* lm_actor_stop was called */
    bool took_msg;                      /* the handler kept the message (lm_actor_take) */
    bool dead;                          /* stopped: further messages bounce */
};

struct lm_loop {
    lm_mpscq runq;           /* actors with messages */
    lm_rt *rt;               /* owner */
    int index;               /* 0..loops-1 */
    pthread_t thread;        /* the loop thread */
    struct event_base *base; /* its event base */
    int wakefd;              /* eventfd written on the empty-to-non-empty edge */
    struct event *wake_ev;   /* reads wakefd */
    _Atomic bool stop;       /* asks the thread to exit */
    bool started;            /* thread was created */
};

typedef struct reg_entry {
    char *name;
    lm_addr addr;
} reg_entry;

struct lm_rt {
    uint32_t node;              /* node id */
    uint64_t incarnation;       /* random per process */
    int nloops;                 /* loop threads */
    int mailbox_batch;          /* messages per actor per turn */
    char name[64];              /* node name */
    lm_loop *loops;             /* nloops loops */
    _Atomic unsigned next_loop; /* round-robin spawn */

    _Atomic(lm_actor *) chunks[MAX_CHUNKS]; /* slot chunks, only ever added */
    uint32_t nchunks;                       /* chunks allocated (under lock) */
    lm_actor *free_slots;                   /* free list (under lock) */
    pthread_mutex_t lock;                   /* slots and registry */
    reg_entry *reg;                         /* name registry */
    size_t nreg, reg_cap;

    _Atomic bool closing;             /* lm_rt_free started */
    _Atomic uint64_t live;            /* actors spawned and not reclaimed */
    _Atomic lm_remote_send_fn remote; /* transport hook */
    _Atomic(void *) transport;        /* its argument */
    _Atomic int remote_users;         /* lm_send calls inside the hook */

    _Atomic uint64_t st_delivered; /* statistics */
    _Atomic uint64_t st_bounced;
    _Atomic uint64_t st_failed;
    _Atomic uint64_t st_spawned;
};

static _Thread_local lm_loop *tl_loop; /* the loop running on this thread */

static void actor_die(lm_actor *a, bool failed, int code, const char *reason);

/* --- slots and references -------------------------------------------- */

static inline uint64_t
word_gen(uint64_t w)
{
    return (w >> GEN_SHIFT) & GEN_MASK;
}

static lm_actor *
slot_at(lm_rt *rt, uint32_t slot)
{
    uint32_t chunk = slot >> CHUNK_BITS;
    lm_actor *c;

    if (chunk >= MAX_CHUNKS) {
        return NULL;
    }
    /* acquire: pairs with the release store that published the chunk. */
    c = atomic_load_explicit(&rt->chunks[chunk], memory_order_acquire);
    return c != NULL ? &c[slot & (CHUNK_SIZE - 1)] : NULL;
}

/* Takes a reference on the live actor with this id, or returns NULL. */
static lm_actor *
actor_acquire(lm_rt *rt, uint64_t id)
{
    lm_actor *a = slot_at(rt, (uint32_t)id);
    uint64_t gen = id >> 32;
    uint64_t w;

    if (a == NULL || gen == 0) {
        return NULL;
    }
    /* acquire on success: the incarnation's fields (loop, mailbox) were
     * written before the release store that published this generation. */
    w = atomic_load_explicit(&a->word, memory_order_acquire);
    do {
        if (word_gen(w) != gen || (w & DEAD_BIT) != 0) {
            return NULL;
        }
    } while (!atomic_compare_exchange_weak_explicit(&a->word, &w, w + 1, memory_order_acquire,
                                                    memory_order_acquire));
    return a;
}

static void schedule(lm_actor *a);

/* Drops a reference. The last reference of a dead actor queues its reap
 * node, the last node its mailbox will ever get. */
static void
actor_release(lm_actor *a)
{
    /* acq_rel: our push happened before; the reaper must see it. */
    uint64_t w = atomic_fetch_sub_explicit(&a->word, 1, memory_order_acq_rel) - 1;
    if ((w & REFS_MASK) == 0 && (w & DEAD_BIT) != 0) {
        if (lm_mpscq_push(&a->mailbox, &a->reap_node)) {
            schedule(a);
        }
    }
}

/* --- loops ----------------------------------------------------------- */

static void
loop_wake(lm_loop *lp)
{
    uint64_t one = 1;
    /* The owning thread will look at its run queue before it sleeps. */
    if (tl_loop == lp) {
        return;
    }
    while (write(lp->wakefd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

static void
schedule(lm_actor *a)
{
    if (lm_mpscq_push(&a->loop->runq, &a->runq_node)) {
        loop_wake(a->loop);
    }
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    (void)what;
    (void)arg;
    while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR) {
    }
}

static void run_actor(lm_loop *lp, lm_actor *a);

static void *
loop_main(void *arg)
{
    lm_loop *lp = arg;
    char name[16];

    snprintf(name, sizeof(name), "lm-loop-%d", lp->index);
    pthread_setname_np(pthread_self(), name);
    tl_loop = lp;
    while (!atomic_load_explicit(&lp->stop, memory_order_acquire)) {
        lm_mpscq_node *node = NULL;
        for (int n = 0; n < LOOP_TURN_ACTORS; n++) {
            if ((node = lm_mpscq_pop(&lp->runq)) == NULL) {
                break;
            }
            run_actor(lp, (lm_actor *)node);
        }
        if (node == NULL && lm_mpscq_mark_empty(&lp->runq)) {
            /* Nothing to run: sleep until I/O, a timer, or a wake. */
            event_base_loop(lp->base, EVLOOP_ONCE);
        } else {
            event_base_loop(lp->base, EVLOOP_NONBLOCK);
        }
    }
    lm_log_set_context(NULL, NULL);
    tl_loop = NULL;
    return NULL;
}

/* --- the registry ---------------------------------------------------- */

static int
reg_add(lm_rt *rt, const char *name, lm_addr addr)
{
    for (size_t i = 0; i < rt->nreg; i++) {
        if (strcmp(rt->reg[i].name, name) == 0) {
            return LM_EEXIST;
        }
    }
    if (rt->nreg == rt->reg_cap) {
        size_t cap = rt->reg_cap ? rt->reg_cap * 2 : 16;
        reg_entry *r = realloc(rt->reg, cap * sizeof(*r));
        if (r == NULL) {
            return LM_ENOMEM;
        }
        rt->reg = r;
        rt->reg_cap = cap;
    }
    if ((rt->reg[rt->nreg].name = strdup(name)) == NULL) {
        return LM_ENOMEM;
    }
    rt->reg[rt->nreg++].addr = addr;
    return LM_OK;
}

static void
reg_remove(lm_rt *rt, lm_addr addr)
{
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->nreg; i++) {
        if (lm_addr_eq(rt->reg[i].addr, addr)) {
            free(rt->reg[i].name);
            rt->reg[i] = rt->reg[--rt->nreg];
            break;
        }
    }
    pthread_mutex_unlock(&rt->lock);
}

int
lm_rt_whereis(lm_rt *rt, const char *name, lm_addr *out)
{
    int rv = LM_ENOTFOUND;

    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->nreg; i++) {
        if (strcmp(rt->reg[i].name, name) == 0) {
            *out = rt->reg[i].addr;
            rv = LM_OK;
            break;
        }
    }
    pthread_mutex_unlock(&rt->lock);
    return rv;
}

/* --- runtime --------------------------------------------------------- */

static uint64_t
random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^
            ((uint64_t)getpid() << 32);
    }
    return v;
}

/* splitmix64's finaliser: spreads a counter into unrelated bits. */
static uint64_t
mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int
cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void
loops_stop(lm_rt *rt)
{
    for (int i = 0; i < rt->nloops; i++) {
        lm_loop *lp = &rt->loops[i];
        if (lp->started) {
            uint64_t one = 1;
            atomic_store_explicit(&lp->stop, true, memory_order_release);
            while (write(lp->wakefd, &one, sizeof(one)) < 0 && errno == EINTR) {
            }
            pthread_join(lp->thread, NULL);
            lp->started = false;
        }
    }
    for (int i = 0; i < rt->nloops; i++) {
        lm_loop *lp = &rt->loops[i];
        if (lp->wake_ev != NULL) {
            event_free(lp->wake_ev);
        }
        if (lp->base != NULL) {
            event_base_free(lp->base);
        }
        if (lp->wakefd >= 0) {
            close(lp->wakefd);
        }
        lp->wake_ev = NULL;
        lp->base = NULL;
        lp->wakefd = -1;
    }
}

static void
rt_destroy(lm_rt *rt)
{
    if (rt->loops != NULL) {
        loops_stop(rt);
        free(rt->loops);
    }
    for (uint32_t i = 0; i < rt->nchunks; i++) {
        free(atomic_load(&rt->chunks[i]));
    }
    for (size_t i = 0; i < rt->nreg; i++) {
        free(rt->reg[i].name);
    }
    free(rt->reg);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

int
lm_rt_new(const lm_rt_opts *opts, lm_rt **out)
{
    static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
    lm_rt *rt;

    if (opts->loops < 0 || opts->loops > 1024 || opts->mailbox_batch < 0) {
        return LM_EINVAL;
    }
    /* libevent's own structures (e.g. evdns, bufferevents shared between
     * threads) need its locking; each base is still used by one thread. */
    pthread_once(&evthread_once, (void (*)(void))evthread_use_pthreads);
    if ((rt = calloc(1, sizeof(*rt))) == NULL) {
        return LM_ENOMEM;
    }
    pthread_mutex_init(&rt->lock, NULL);
    rt->node = opts->node_id;
    while (rt->node == 0) {
        rt->node = (uint32_t)random64();
    }
    rt->incarnation = random64();
    rt->nloops = opts->loops > 0 ? opts->loops : cpu_count();
    rt->mailbox_batch = opts->mailbox_batch > 0 ? opts->mailbox_batch : 64;
    snprintf(rt->name, sizeof(rt->name), "%s", opts->name != NULL ? opts->name : "node");
    if ((rt->loops = calloc((size_t)rt->nloops, sizeof(lm_loop))) == NULL) {
        rt_destroy(rt);
        return LM_ENOMEM;
    }
    for (int i = 0; i < rt->nloops; i++) {
        lm_loop *lp = &rt->loops[i];
        lp->rt = rt;
        lp->index = i;
        lp->wakefd = -1;
        lm_mpscq_init(&lp->runq);
        lp->base = event_base_new();
        lp->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (lp->base == NULL || lp->wakefd < 0 ||
            (lp->wake_ev = event_new(lp->base, lp->wakefd, EV_READ | EV_PERSIST, wake_cb, lp)) ==
                NULL ||
            event_add(lp->wake_ev, NULL) != 0) {
            rt_destroy(rt);
            return LM_EIO;
        }
    }
    for (int i = 0; i < rt->nloops; i++) {
        if (pthread_create(&rt->loops[i].thread, NULL, loop_main, &rt->loops[i]) != 0) {
            rt_destroy(rt);
            return LM_EIO;
        }
        rt->loops[i].started = true;
    }
    *out = rt;
    return LM_OK;
}

uint32_t
lm_rt_node(const lm_rt *rt)
{
    return rt->node;
}

uint64_t
lm_rt_incarnation(const lm_rt *rt)
{
    return rt->incarnation;
}

int
lm_rt_loop_count(const lm_rt *rt)
{
    return rt->nloops;
}

uint64_t
lm_rt_actor_count(const lm_rt *rt)
{
    return atomic_load_explicit(&rt->live, memory_order_acquire);
}

void
lm_rt_get_stats(const lm_rt *rt, lm_rt_stats *out)
{
    /* relaxed: statistics, read for display. */
    out->delivered = atomic_load_explicit(&rt->st_delivered, memory_order_relaxed);
    out->bounced = atomic_load_explicit(&rt->st_bounced, memory_order_relaxed);
    out->actors_failed = atomic_load_explicit(&rt->st_failed, memory_order_relaxed);
    out->spawned = atomic_load_explicit(&rt->st_spawned, memory_order_relaxed);
}

void
lm_rt_set_remote(lm_rt *rt, lm_remote_send_fn fn, void *transport)
{
    struct timespec pause = {0, 100000};

    if (fn != NULL) {
        /* release: the transport is set up before senders can see fn. */
        atomic_store_explicit(&rt->transport, transport, memory_order_release);
        atomic_store_explicit(&rt->remote, fn, memory_order_release);
        return;
    }
    /* Detach: no new sender can enter once fn is NULL (seq_cst, against
     * the sender's seq_cst increment of remote_users before it loads fn);
     * wait for those inside to leave before the transport goes away. */
    atomic_store(&rt->remote, NULL);
    while (atomic_load(&rt->remote_users) > 0) {
        nanosleep(&pause, NULL);
    }
    atomic_store_explicit(&rt->transport, NULL, memory_order_release);
}

void
lm_rt_free(lm_rt *rt, int timeout_ms)
{
    struct timespec pause = {0, 1000000};
    int waited = 0;

    if (rt == NULL) {
        return;
    }
    /* Under the lock: a spawn either sees closing or has published its
     * actor before the walk below. */
    pthread_mutex_lock(&rt->lock);
    atomic_store_explicit(&rt->closing, true, memory_order_release);
    pthread_mutex_unlock(&rt->lock);
    /* Ask every live actor to stop. Slots are only ever added, so walking
     * them without the lock is safe; lm_stop goes through the normal
     * reference check. */
    for (uint32_t c = 0; c < MAX_CHUNKS; c++) {
        lm_actor *chunk = atomic_load_explicit(&rt->chunks[c], memory_order_acquire);
        if (chunk == NULL) {
            break;
        }
        for (uint32_t i = 0; i < CHUNK_SIZE; i++) {
            uint64_t w = atomic_load_explicit(&chunk[i].word, memory_order_acquire);
            if ((w & DEAD_BIT) == 0 && (w & REFS_MASK) != 0) {
                lm_addr a = {rt->node, (word_gen(w) << 32) | chunk[i].slot};
                lm_stop(rt, a, "runtime shutting down");
            }
        }
    }
    while (lm_rt_actor_count(rt) > 0 && waited < timeout_ms) {
        nanosleep(&pause, NULL);
        waited++;
    }
    if (lm_rt_actor_count(rt) > 0) {
        LM_LOGC(LM_LOG_ERROR, "runtime", "%llu actors did not stop within %d ms",
                (unsigned long long)lm_rt_actor_count(rt), timeout_ms);
    }
    rt_destroy(rt);
}

/* --- spawning -------------------------------------------------------- */

/* Takes a free slot (making a new chunk when none is left). Under lock. */
static lm_actor *
slot_take(lm_rt *rt)
{
    lm_actor *a = rt->free_slots;

    if (a == NULL) {
        lm_actor *chunk;
        uint64_t seed = random64();
        if (rt->nchunks == MAX_CHUNKS || (chunk = calloc(CHUNK_SIZE, sizeof(lm_actor))) == NULL) {
            return NULL;
        }
        for (uint32_t i = 0; i < CHUNK_SIZE; i++) {
            uint32_t slot = rt->nchunks * CHUNK_SIZE + i;
            /* Generations start at a random value per slot, so that an
             * address kept from an earlier incarnation of this node (same
             * node id, restarted process) almost surely names no actor. */
            uint64_t gen = mix64(seed + i) & GEN_MASK;
            chunk[i].slot = slot;
            chunk[i].rt = rt;
            atomic_init(&chunk[i].word, (gen << GEN_SHIFT) | DEAD_BIT); /* free: never matches */
            chunk[i].free_next = i + 1 < CHUNK_SIZE ? &chunk[i + 1] : NULL;
        }
        /* release: a sender that finds this chunk sees its initialised
         * words. */
        atomic_store_explicit(&rt->chunks[rt->nchunks], chunk, memory_order_release);
        rt->nchunks++;
        a = chunk;
    }
    rt->free_slots = a->free_next;
    return a;
}

static void
slot_put(lm_rt *rt, lm_actor *a)
{
    pthread_mutex_lock(&rt->lock);
    a->free_next = rt->free_slots;
    rt->free_slots = a;
    pthread_mutex_unlock(&rt->lock);
}

static int
spawn(lm_rt *rt, const lm_actor_type *type, void *arg, const lm_spawn_opts *opts, lm_addr *out)
{
    lm_actor *a;
    uint64_t gen;
    char *name = NULL;
    int loop;
    int rv;

    if (atomic_load_explicit(&rt->closing, memory_order_acquire)) {
        return LM_ECLOSED;
    }
    if (opts->name != NULL && (name = strdup(opts->name)) == NULL) {
        return LM_ENOMEM;
    }
    if (opts->loop >= rt->nloops || opts->loop < -1) {
        free(name);
        return LM_EINVAL;
    }
    loop = opts->loop >= 0
               ? opts->loop
               : (int)(atomic_fetch_add_explicit(&rt->next_loop, 1, memory_order_relaxed) %
                       (unsigned)rt->nloops);
    /* The lock covers the registry too, and is held until the actor is
     * published: a name found by lm_rt_whereis always names a live actor. */
    pthread_mutex_lock(&rt->lock);
    if (atomic_load_explicit(&rt->closing, memory_order_acquire)) {
        pthread_mutex_unlock(&rt->lock);
        free(name);
        return LM_ECLOSED;
    }
    if ((a = slot_take(rt)) == NULL) {
        pthread_mutex_unlock(&rt->lock);
        free(name);
        return LM_ENOMEM;
    }
    gen = (word_gen(atomic_load_explicit(&a->word, memory_order_relaxed)) + 1) & GEN_MASK;
    if (gen == 0) {
        gen = 1;
    }
    a->addr = (lm_addr){rt->node, (gen << 32) | a->slot};
    if (name != NULL && (rv = reg_add(rt, name, a->addr)) != LM_OK) {
        a->free_next = rt->free_slots;
        rt->free_slots = a;
        pthread_mutex_unlock(&rt->lock);
        free(name);
        return rv;
    }
    a->name = name;
    a->loop = &rt->loops[loop];
    a->type = type;
    a->init_arg = arg;
    a->user = NULL;
    a->parent = opts->parent;
    a->children = NULL;
    a->nchildren = a->children_cap = 0;
    a->timers = NULL;
    a->next_timer_id = 1;
    a->fail_code = LM_OK;
    a->fail_reason[0] = '\0';
    a->init_ok = a->stop_requested = a->dead = false;
    {
        char addr[LM_ADDR_STRLEN];
        lm_addr_format(a->addr, addr, sizeof(addr));
        snprintf(a->label, sizeof(a->label), "%s%s%s", a->name != NULL ? a->name : "",
                 a->name != NULL ? "@" : "", addr);
    }
    /* The init node goes in first, before anyone can find the actor, so
     * that init always runs before any message. */
    lm_mpscq_init(&a->mailbox);
    lm_mpscq_push(&a->mailbox, &a->init_node);
    atomic_fetch_add_explicit(&rt->live, 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&rt->st_spawned, 1, memory_order_relaxed);
    /* release: publishes the fields above with the new generation, alive,
     * holding its liveness reference. */
    atomic_store_explicit(&a->word, (gen << GEN_SHIFT) | 1, memory_order_release);
    pthread_mutex_unlock(&rt->lock);
    /* The push above took the mailbox's empty edge: schedule it now. */
    schedule(a);
    *out = a->addr;
    return LM_OK;
}

int
lm_spawn(lm_rt *rt, const lm_actor_type *type, void *arg, const lm_spawn_opts *opts, lm_addr *out)
{
    lm_spawn_opts def = LM_SPAWN_DEFAULTS;
    return spawn(rt, type, arg, opts != NULL ? opts : &def, out);
}

int
lm_actor_spawn(lm_actor *self, const lm_actor_type *type, void *arg, const lm_spawn_opts *opts,
               lm_addr *out)
{
    lm_spawn_opts o = opts != NULL ? *opts : LM_SPAWN_DEFAULTS;
    int rv;

    if (self->nchildren == self->children_cap) {
        uint32_t cap = self->children_cap ? self->children_cap * 2 : 4;
        lm_addr *c = realloc(self->children, cap * sizeof(*c));
        if (c == NULL) {
            return LM_ENOMEM;
        }
        self->children = c;
        self->children_cap = cap;
    }
    o.parent = self->addr;
    if ((rv = spawn(self->rt, type, arg, &o, out)) == LM_OK) {
        self->children[self->nchildren++] = *out;
    }
    return rv;
}

/* --- sending --------------------------------------------------------- */

static int
push_local(lm_rt *rt, uint64_t id, lm_msg *msg)
{
    lm_actor *a = actor_acquire(rt, id);

    if (a == NULL) {
        return LM_ENOACTOR;
    }
    if (lm_mpscq_push(&a->mailbox, &msg->qnode)) {
        schedule(a);
    }
    actor_release(a);
    return LM_OK;
}

int
lm_deliver(lm_rt *rt, lm_addr via, lm_msg *msg)
{
    return via.node == rt->node ? push_local(rt, via.actor, msg) : LM_ENOACTOR;
}

lm_msg *
lm_actor_take(lm_actor *self, lm_msg *msg)
{
    self->took_msg = true;
    return msg;
}

int
lm_send(lm_rt *rt, lm_msg *msg)
{
    if (msg->dst.node != rt->node) {
        lm_remote_send_fn fn;
        int rv = LM_ENOROUTE;
        if (msg->flags & LM_MSGF_LOCAL_ONLY) {
            return LM_ENOROUTE;
        }
        /* seq_cst: announce ourselves before looking at the hook, so that
         * lm_rt_set_remote(NULL) either stops us or waits for us. */
        atomic_fetch_add(&rt->remote_users, 1);
        if ((fn = atomic_load(&rt->remote)) != NULL) {
            rv = fn(atomic_load_explicit(&rt->transport, memory_order_acquire), msg);
        }
        atomic_fetch_sub_explicit(&rt->remote_users, 1, memory_order_release);
        return rv;
    }
    return push_local(rt, msg->dst.actor, msg);
}

static int
tell(lm_rt *rt, lm_addr src, lm_addr dst, uint32_t type, const void *payload)
{
    lm_msg *m;
    int rv = lm_proto_encode(type, src, dst, payload, &m);

    if (rv != LM_OK) {
        return rv;
    }
    if ((rv = lm_send(rt, m)) != LM_OK) {
        lm_msg_release(m);
    }
    return rv;
}

int
lm_tell(lm_actor *self, lm_addr dst, uint32_t type, const void *payload)
{
    return tell(self->rt, self->addr, dst, type, payload);
}

int
lm_rt_tell(lm_rt *rt, lm_addr dst, uint32_t type, const void *payload)
{
    return tell(rt, (lm_addr){rt->node, 0}, dst, type, payload);
}

int
lm_rt_tell_as(lm_rt *rt, lm_addr src, lm_addr dst, uint32_t type, const void *payload)
{
    return tell(rt, src, dst, type, payload);
}

int
lm_stop(lm_rt *rt, lm_addr addr, const char *reason)
{
    lm_stop_msg s = {lm_str_c(reason != NULL ? reason : "stop requested")};
    return tell(rt, (lm_addr){rt->node, 0}, addr, LM_MT_STOP, &s);
}

/* Returns msg to its sender as UNDELIVERABLE, or drops it (counted and
 * logged) when there is nobody to return it to. Consumes msg. */
static void
bounce(lm_rt *rt, lm_msg *msg, int code, const char *why)
{
    char dst[LM_ADDR_STRLEN];

    atomic_fetch_add_explicit(&rt->st_bounced, 1, memory_order_relaxed);
    if (msg->src.actor != 0 && msg->type != LM_MT_UNDELIVERABLE &&
        !(msg->flags & LM_MSGF_LOCAL_ONLY)) {
        lm_undeliverable_msg u = {msg->dst, msg->type, code, lm_str_c(why)};
        if (tell(rt, msg->dst, msg->src, LM_MT_UNDELIVERABLE, &u) == LM_OK) {
            lm_msg_release(msg);
            return;
        }
    }
    LM_LOG(msg->flags & LM_MSGF_LOCAL_ONLY ? LM_LOG_DEBUG : LM_LOG_WARN,
           "dropped %s message for %s: %s (no sender to return it to)",
           lm_proto_type_name(msg->type), lm_addr_format(msg->dst, dst, sizeof(dst)), why);
    lm_msg_release(msg);
}

/* --- timers ---------------------------------------------------------- */

static void
timer_free(timer_rec *t)
{
    if (t->ev != NULL) {
        event_free(t->ev);
    }
    free(t);
}

static void
timer_unlink(lm_actor *a, timer_rec *t)
{
    for (timer_rec **p = &a->timers; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            return;
        }
    }
}

static struct timeval
ms_to_tv(uint64_t ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
}

/* A timer fired (on the actor's loop): queue a TIMER message, and re-arm
 * a periodic timer. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    timer_rec *t = arg;
    lm_actor *a = t->owner;
    lm_timer_msg tm = {t->id, t->tag};
    lm_msg *m;

    (void)fd;
    (void)what;
    if (t->period_ms > 0) {
        struct timeval tv = ms_to_tv(t->period_ms);
        event_add(t->ev, &tv);
    } else {
        t->fired = true;
    }
    if (lm_proto_encode(LM_MT_TIMER, a->addr, a->addr, &tm, &m) != LM_OK) {
        lm_log_set_context(a->type->name, a->label);
        LM_LOG(LM_LOG_ERROR, "timer %llu: out of memory, this firing is lost",
               (unsigned long long)t->id);
        return;
    }
    m->flags |= LM_MSGF_LOCAL_ONLY;
    t->pending++;
    /* We are on the actor's own loop and the actor is alive (its timers
     * are freed when it dies), so no reference is needed to push. */
    if (lm_mpscq_push(&a->mailbox, &m->qnode)) {
        schedule(a);
    }
}

int
lm_timer_start(lm_actor *self, uint64_t after_ms, uint64_t period_ms, uint64_t tag, uint64_t *id)
{
    timer_rec *t = calloc(1, sizeof(*t));
    struct timeval tv = ms_to_tv(after_ms);

    if (t == NULL) {
        return LM_ENOMEM;
    }
    t->id = self->next_timer_id++;
    t->tag = tag;
    t->owner = self;
    t->period_ms = period_ms;
    if ((t->ev = event_new(self->loop->base, -1, 0, timer_cb, t)) == NULL ||
        event_add(t->ev, &tv) != 0) {
        timer_free(t);
        return LM_ENOMEM;
    }
    t->next = self->timers;
    self->timers = t;
    *id = t->id;
    return LM_OK;
}

int
lm_timer_cancel(lm_actor *self, uint64_t id)
{
    for (timer_rec *t = self->timers; t != NULL; t = t->next) {
        if (t->id == id && !t->cancelled) {
            t->cancelled = true;
            event_del(t->ev);
            if (t->pending == 0) {
                timer_unlink(self, t);
                timer_free(t);
            }
            return LM_OK;
        }
    }
    return LM_ENOTFOUND;
}

/* A TIMER message is about to be handled: true when it should be (its
 * timer was not cancelled). Frees one-shot timers once delivered. */
static bool
timer_deliver(lm_actor *a, lm_msg *m)
{
    lm_timer_msg tm;
    timer_rec *t;

    if (lm_proto_decode(m, &tm, NULL) != LM_OK) {
        return false;
    }
    for (t = a->timers; t != NULL && t->id != tm.id; t = t->next) {
    }
    if (t == NULL) {
        return false;
    }
    t->pending--;
    if (t->cancelled || t->fired) {
        bool deliver = !t->cancelled;
        if (t->pending == 0) {
            timer_unlink(a, t);
            timer_free(t);
        }
        return deliver;
    }
    return true;
}

/* --- running actors -------------------------------------------------- */

lm_addr
lm_actor_addr(const lm_actor *self)
{
    return self->addr;
}

lm_rt *
lm_actor_rt(const lm_actor *self)
{
    return self->rt;
}

void *
lm_actor_state(const lm_actor *self)
{
    return self->user;
}

void
lm_actor_set_state(lm_actor *self, void *state)
{
    self->user = state;
}

struct event_base *
lm_actor_event_base(const lm_actor *self)
{
    return self->loop->base;
}

int
lm_actor_loop_index(const lm_actor *self)
{
    return self->loop->index;
}

void
lm_actor_stop(lm_actor *self)
{
    self->stop_requested = true;
}

int
lm_actor_fail(lm_actor *self, int code, const char *fmt, ...)
{
    va_list ap;

    self->fail_code = code;
    va_start(ap, fmt);
    vsnprintf(self->fail_reason, sizeof(self->fail_reason), fmt, ap);
    va_end(ap);
    return code;
}

static void
children_remove(lm_actor *a, lm_addr child)
{
    for (uint32_t i = 0; i < a->nchildren; i++) {
        if (lm_addr_eq(a->children[i], child)) {
            a->children[i] = a->children[--a->nchildren];
            return;
        }
    }
}

/* Stops the actor: fini, children, parent, registry, then the dead flag.
 * Runs on the actor's loop. Messages still queued bounce afterwards. */
static void
actor_die(lm_actor *a, bool failed, int code, const char *reason)
{
    lm_rt *rt = a->rt;
    uint64_t w;

    if (a->dead) {
        return;
    }
    a->dead = true;
    if (failed) {
        atomic_fetch_add_explicit(&rt->st_failed, 1, memory_order_relaxed);
        LM_LOG(LM_LOG_ERROR, "actor failed: %s (%s)", reason, lm_errname(code));
    } else {
        LM_LOG(LM_LOG_DEBUG, "actor stopped: %s", reason);
    }
    while (a->timers != NULL) {
        timer_rec *t = a->timers;
        a->timers = t->next;
        timer_free(t);
    }
    if (a->init_ok && a->type->fini != NULL) {
        a->type->fini(a);
    }
    a->user = NULL;
    for (uint32_t i = 0; i < a->nchildren; i++) {
        lm_stop(rt, a->children[i], "parent stopped");
    }
    free(a->children);
    a->children = NULL;
    a->nchildren = a->children_cap = 0;
    if (a->parent.actor != 0 || a->parent.node != 0) {
        lm_child_exit_msg ce = {a->addr, failed, code, lm_str_c(reason)};
        int rv = tell(rt, a->addr, a->parent, LM_MT_CHILD_EXIT, &ce);
        if (rv != LM_OK) {
            LM_LOG(LM_LOG_DEBUG, "could not tell parent of exit: %s", lm_strerror(rv));
        }
    }
    if (a->name != NULL) {
        reg_remove(rt, a->addr);
        free(a->name);
        a->name = NULL;
    }
    /* Set the dead flag and drop the liveness reference in one step
     * (acq_rel: senders that acquired before us pushed before they
     * release). If nobody else holds a reference, queue the reap node. */
    w = atomic_fetch_add_explicit(&a->word, DEAD_BIT - 1, memory_order_acq_rel) + DEAD_BIT - 1;
    if ((w & REFS_MASK) == 0) {
        lm_mpscq_push(&a->mailbox, &a->reap_node);
    }
}

/* The last node: free the slot for a new generation. */
static void
actor_reap(lm_actor *a)
{
    lm_rt *rt = a->rt;

    slot_put(rt, a);
    /* acq_rel: the slot is back on the free list before we are counted
     * gone, so lm_rt_free's wait covers it. */
    atomic_fetch_sub_explicit(&rt->live, 1, memory_order_acq_rel);
}

static void
run_init(lm_actor *a)
{
    int rv = a->type->init != NULL ? a->type->init(a, a->init_arg) : LM_OK;

    if (rv == LM_OK) {
        a->init_ok = true;
        return;
    }
    actor_die(a, true, rv, a->fail_reason[0] != '\0' ? a->fail_reason : lm_strerror(rv));
}

/* Handles one message for a live actor. */
static void
run_message(lm_actor *a, lm_msg *m)
{
    /* Messages an actor forwards (the transport's outgoing mail) are not
     * for it: only its own STOP, TIMER and CHILD_EXIT are the runtime's. */
    bool mine = lm_addr_eq(m->dst, a->addr);
    int rv;

    if (mine && m->type == LM_MT_STOP) {
        lm_stop_msg sm;
        char reason[200] = "stop requested";
        if (lm_proto_decode(m, &sm, NULL) == LM_OK) {
            snprintf(reason, sizeof(reason), "%.*s", (int)sm.reason.len, sm.reason.ptr);
        }
        lm_msg_release(m);
        actor_die(a, false, LM_OK, reason);
        return;
    }
    if (!mine) {
        /* forwarded: handed to the handler as it is */
    } else if (m->type == LM_MT_TIMER) {
        if (!(m->flags & LM_MSGF_LOCAL_ONLY) || !timer_deliver(a, m)) {
            lm_msg_release(m);
            return;
        }
    } else if (m->type == LM_MT_CHILD_EXIT) {
        lm_child_exit_msg ce;
        if (lm_proto_decode(m, &ce, NULL) == LM_OK) {
            children_remove(a, ce.child);
        }
    }
    atomic_fetch_add_explicit(&a->rt->st_delivered, 1, memory_order_relaxed);
    a->took_msg = false;
    a->fail_reason[0] = '\0';
    rv = a->type->handle(a, m);
    if (!a->took_msg) {
        lm_msg_release(m);
    }
    if (rv != LM_OK) {
        actor_die(a, true, rv, a->fail_reason[0] != '\0' ? a->fail_reason : lm_strerror(rv));
    } else if (a->stop_requested) {
        actor_die(a, false, LM_OK, "stopped itself");
    }
}

static void
run_actor(lm_loop *lp, lm_actor *a)
{
    int budget = lp->rt->mailbox_batch;

    lm_log_set_context(a->type->name, a->label);
    while (budget-- > 0) {
        lm_mpscq_node *node = lm_mpscq_pop(&a->mailbox);
        if (node == NULL) {
            /* Idle unless a push raced in. */
            if (lm_mpscq_mark_empty(&a->mailbox)) {
                lm_log_set_context(NULL, NULL);
                return;
            }
            break;
        }
        if (node == &a->init_node) {
            run_init(a);
        } else if (node == &a->reap_node) {
            /* Nothing can follow the reap node. */
            lm_log_set_context(NULL, NULL);
            actor_reap(a);
            return;
        } else if (a->dead && (((lm_msg *)node)->type == LM_MT_STOP ||
                               ((lm_msg *)node)->type == LM_MT_CHILD_EXIT)) {
            /* A stop for an actor that already stopped did its job; the
             * exit of a child is news for nobody once its parent is gone. */
            lm_msg_release((lm_msg *)node);
        } else if (a->dead) {
            bounce(a->rt, (lm_msg *)node, LM_ENOACTOR, "actor stopped before handling it");
        } else {
            run_message(a, (lm_msg *)node);
        }
    }
    lm_log_set_context(NULL, NULL);
    /* More to do (or a push in progress): back to the tail of the run
     * queue so that the other actors of this loop get their turn. */
    lm_mpscq_push(&lp->runq, &a->runq_node);
}
