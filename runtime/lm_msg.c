/*
 * lm_msg.c: message buffers: inline for small messages, an nng message for
 * large ones, reference counted.
 *
 * Message shells are recycled through a magazine pool: each thread keeps
 * two chains of freed shells (the one it allocates from and frees to, and
 * one full spare), and exchanges whole chains of POOL_CHAIN shells with a
 * global stack under a mutex. Messages mostly die on another thread than
 * the one that made them (a producer loop and a consumer loop), so without
 * this every message would cross malloc arenas and contend on their locks;
 * with it, the threads meet once per POOL_CHAIN messages.
 */
#include "lm_msg.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_CHAIN      64   /* shells per chain */
#define POOL_MAX_CHAINS 1024 /* chains the global stack keeps at most */

/* While a shell is free, its inline buffer holds the pool's links. */
typedef struct pool_links {
    lm_msg *next;       /* next shell in this chain */
    lm_msg *next_chain; /* next chain on the global stack (chain heads) */
    uint32_t len;       /* shells in the chain (chain heads) */
} pool_links;

typedef struct msg_cache {
    lm_msg *cur;     /* chain to allocate from and free to */
    uint32_t ncur;   /* its length */
    lm_msg *spare;   /* a full chain, or NULL */
    bool registered; /* the thread-exit destructor is set */
} msg_cache;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static lm_msg *pool_chains; /* global stack of chains */
static uint32_t pool_nchains;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static _Thread_local msg_cache tl_cache;

static inline pool_links *
links(lm_msg *m)
{
    return (pool_links *)(void *)m->inl;
}

static void
chain_free(lm_msg *c)
{
    while (c != NULL) {
        lm_msg *next = links(c)->next;
        free(c);
        c = next;
    }
}

/* Puts a chain on the global stack, or frees it when the stack is full. */
static void
pool_put_chain(lm_msg *head, uint32_t len)
{
    if (head == NULL) {
        return;
    }
    links(head)->len = len;
    pthread_mutex_lock(&pool_lock);
    if (pool_nchains < POOL_MAX_CHAINS) {
        links(head)->next_chain = pool_chains;
        pool_chains = head;
        pool_nchains++;
        head = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    chain_free(head);
}

static void
cache_flush(void *arg)
{
    msg_cache *c = arg;
    pool_put_chain(c->cur, c->ncur);
    pool_put_chain(c->spare, POOL_CHAIN);
    c->cur = c->spare = NULL;
    c->ncur = 0;
    /* A thread that uses messages again after this (late in its exit)
     * registers the flush again. */
    c->registered = false;
}

static void
pool_init(void)
{
    pthread_key_create(&pool_key, cache_flush);
}

void
lm_msg_tune_allocator(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

void
lm_msg_pool_trim(void)
{
    lm_msg *chains;

    cache_flush(&tl_cache);
    pthread_mutex_lock(&pool_lock);
    chains = pool_chains;
    pool_chains = NULL;
    pool_nchains = 0;
    pthread_mutex_unlock(&pool_lock);
    while (chains != NULL) {
        lm_msg *next = links(chains)->next_chain;
        chain_free(chains);
        chains = next;
    }
}

/* This thread's cache; on first use, arranges for it to be flushed to the
 * global stack when the thread exits. */
static msg_cache *
cache(void)
{
    msg_cache *c = &tl_cache;

    if (!c->registered) {
        pthread_once(&pool_once, pool_init);
        pthread_setspecific(pool_key, c);
        c->registered = true;
    }
    return c;
}

static lm_msg *
shell_get(void)
{
    msg_cache *c = cache();
    lm_msg *m;

    if (c->cur == NULL) {
        if (c->spare != NULL) {
            c->cur = c->spare;
            c->ncur = POOL_CHAIN;
            c->spare = NULL;
        } else {
            pthread_mutex_lock(&pool_lock);
            if ((m = pool_chains) != NULL) {
                pool_chains = links(m)->next_chain;
                pool_nchains--;
                c->cur = m;
                c->ncur = links(m)->len;
            }
            pthread_mutex_unlock(&pool_lock);
            if (c->cur == NULL) {
                return malloc(sizeof(lm_msg));
            }
        }
    }
    m = c->cur;
    c->cur = links(m)->next;
    c->ncur--;
    return m;
}

static void
shell_put(lm_msg *m)
{
    msg_cache *c = cache();

    if (c->ncur == POOL_CHAIN) {
        pool_put_chain(c->spare, POOL_CHAIN);
        c->spare = c->cur;
        c->cur = NULL;
        c->ncur = 0;
    }
    links(m)->next = c->cur;
    c->cur = m;
    c->ncur++;
}

char *
lm_addr_format(lm_addr addr, char *buf, size_t cap)
{
    snprintf(buf, cap, "%" PRIu32 ":%" PRIu32 ".%" PRIu32, addr.node, (uint32_t)addr.actor,
             (uint32_t)(addr.actor >> 32));
    return buf;
}

static lm_msg *
msg_new(void)
{
    lm_msg *m = shell_get();
    if (m == NULL) {
        return NULL;
    }
    atomic_init(&m->refs, 1);
    m->type = 0;
    m->flags = 0;
    m->src = LM_ADDR_NONE;
    m->dst = LM_ADDR_NONE;
    m->payload_off = 0;
    m->len = 0;
    m->nmsg = NULL;
    m->data = m->inl;
    m->cap = sizeof(m->inl);
    return m;
}

/* Moves the bytes into an nng message of at least want bytes. */
static int
move_to_nng(lm_msg *m, size_t want)
{
    nng_msg *nm;

    if (nng_msg_alloc(&nm, 0) != 0) {
        return LM_ENOMEM;
    }
    if (nng_msg_reserve(nm, want) != 0 || nng_msg_append(nm, m->data, m->len) != 0) {
        nng_msg_free(nm);
        return LM_ENOMEM;
    }
    m->nmsg = nm;
    m->data = nng_msg_body(nm);
    m->cap = nng_msg_capacity(nm);
    return LM_OK;
}

int
lm_msg_alloc(size_t size_hint, lm_msg **out)
{
    lm_msg *m = msg_new();
    int rv;

    if (m == NULL) {
        return LM_ENOMEM;
    }
    if (size_hint > sizeof(m->inl) && (rv = move_to_nng(m, size_hint)) != LM_OK) {
        shell_put(m);
        return rv;
    }
    *out = m;
    return LM_OK;
}

int
lm_msg_append(lm_msg *m, const void *bytes, size_t n)
{
    if (m->len + n > m->cap) {
        size_t want = m->cap * 2;
        if (want < m->len + n) {
            want = m->len + n;
        }
        if (m->nmsg == NULL) {
            int rv = move_to_nng(m, want);
            if (rv != LM_OK) {
                return rv;
            }
        } else {
            if (nng_msg_reserve(m->nmsg, want) != 0) {
                return LM_ENOMEM;
            }
            m->data = nng_msg_body(m->nmsg);
            m->cap = nng_msg_capacity(m->nmsg);
        }
    }
    if (m->nmsg != NULL) {
        /* The capacity is reserved, so this only copies. The nng message's
         * length tracks ours so that it can be handed to nng as is. */
        if (nng_msg_append(m->nmsg, bytes, n) != 0) {
            return LM_ENOMEM;
        }
        m->data = nng_msg_body(m->nmsg);
    } else {
        memcpy(m->data + m->len, bytes, n);
    }
    m->len += n;
    return LM_OK;
}

int
lm_msg_from_nng(nng_msg *nm, lm_msg **out)
{
    lm_msg *m = msg_new();

    if (m == NULL) {
        return LM_ENOMEM;
    }
    m->nmsg = nm;
    m->data = nng_msg_body(nm);
    m->len = nng_msg_len(nm);
    m->cap = m->len;
    *out = m;
    return LM_OK;
}

int
lm_msg_to_nng(lm_msg *m, nng_msg **out)
{
    nng_msg *nm;

    /* acquire: if we are the last holder, every other holder's release
     * happened before and nobody else can be reading the bytes. */
    if (m->nmsg != NULL && atomic_load_explicit(&m->refs, memory_order_acquire) == 1) {
        *out = m->nmsg;
        m->nmsg = NULL;
        shell_put(m);
        return LM_OK;
    }
    if (nng_msg_alloc(&nm, m->len) != 0) {
        lm_msg_release(m);
        return LM_ENOMEM;
    }
    memcpy(nng_msg_body(nm), m->data, m->len);
    lm_msg_release(m);
    *out = nm;
    return LM_OK;
}

void
lm_msg_retain(lm_msg *m)
{
    /* relaxed: a new reference can only be made from an existing one. */
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void
lm_msg_release(lm_msg *m)
{
    if (m == NULL) {
        return;
    }
    /* acq_rel: the last releaser must see every other holder's use of the
     * message before it frees it. */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        if (m->nmsg != NULL) {
            nng_msg_free(m->nmsg);
        }
        shell_put(m);
    }
}
