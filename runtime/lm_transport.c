/*
 * lm_transport.c: the transport actor, its front door, and its links.
 *
 * All link state belongs to one actor and changes only on its loop: the
 * handler (outgoing messages, pipe events, timers) and the libevent
 * callbacks on the nng sockets' pollable descriptors. Other threads touch
 * a link only through its atomic counters and the link table, which is
 * insert-only (a link entry lives as long as the transport), so lookups
 * need no lock.
 */
#include "lm_transport.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lm_log.h"
#include "lm_proto.h"
#include "lm_storage.h"
#include "lm_time.h"

#define LINK_TABLE    4096 /* peers a node can know (power of two) */
#define FRAME_HDR     4    /* 'L' 'M' version 0 */
#define CLOSE_WAIT_MS 3000 /* lm_transport_free waits this long for socket closes */
#define RECV_BURST    256  /* messages read per readiness event */
#define FRONTDOOR_MAX (64 * 1024)

/* The link frame header: 'L' 'M', protocol version, 0. Besides catching
 * garbage, its 4 bytes put the message start 8-byte aligned in nng's
 * receive buffer (whose body starts 4 bytes past an aligned address once
 * pair1 has taken its own header), so batch columns decode in place. */
static const uint8_t frame_hdr[FRAME_HDR] = {'L', 'M', LM_PROTO_VERSION, 0};

enum link_state {
    LINK_DOWN = 0,   /* no link; retry timer may be set */
    LINK_REQUESTING, /* asked the peer's front door (req socket open) */
    LINK_WAITING,    /* the peer won a crossing: waiting for its request */
    LINK_CONNECTING, /* dialing the offered data URL */
    LINK_ACCEPTING,  /* offered a data URL; waiting for the peer's HELLO */
    LINK_UP,         /* established */
};

static const char *state_names[] = {"down",       "requesting", "waiting",
                                    "connecting", "accepting",  "up"};

enum { LM_LINK_EV_ADDED = 1, LM_LINK_EV_REMOVED = 2, LM_LINK_EV_CONNECT = 3 };
enum { TIMER_RETRY = 1, TIMER_DEADLINE = 2, TIMER_SWEEP = 3 };

typedef struct link {
    uint32_t node;          /* the peer */
    _Atomic int64_t queued; /* bytes accepted, not yet written */
    _Atomic int state;      /* enum link_state */
    /* Statistics: written by the actor, read by anyone (relaxed). */
    _Atomic uint64_t msgs_out, bytes_out, msgs_in, bytes_in, malformed, bounced, ups;
    _Atomic uint64_t peer_inc; /* peer incarnation */
    /* Under the transport lock: */
    char *route;          /* peer's front door URL, or NULL */
    char last_error[160]; /* why the link last failed or went down */
    /* Actor only: */
    nng_socket req; /* handshake socket (dialer side) */
    bool req_open;
    bool req_sent; /* LINK_REQUEST written */
    struct event *req_rev, *req_sev;
    nng_socket sock; /* the pair1 link */
    bool sock_open;
    uint32_t pipe;           /* the link's pipe on sock (0: none yet); others are strays */
    bool dialer;             /* we dialed this link (our request won) */
    bool hello_sent;         /* dialer: sent LINK_HELLO, waiting for the answer */
    struct event *rev, *sev; /* its receive and send readiness */
    uint64_t token;          /* expected in / sent with LINK_HELLO */
    lm_msg *pend_head;       /* messages waiting, oldest first */
    lm_msg *pend_tail;
    size_t npend;
    nng_msg *stalled;     /* refused by nng (full); written first */
    size_t stalled_len;   /* its message bytes */
    int64_t down_since;   /* monotonic ms when it went (or started) down */
    int backoff_ms;       /* next retry delay */
    uint64_t retry_timer; /* timer ids, 0 = none */
    uint64_t deadline_timer;
    bool was_up;            /* reported up to monitors */
    struct lm_transport *t; /* owner */
} link;

typedef struct monitor {
    uint32_t node;   /* 0 = every node */
    lm_addr watcher; /* gets NODE_STATUS */
} monitor;

struct lm_transport {
    lm_rt *rt;                  /* the runtime it serves */
    lm_addr actor;              /* the transport actor */
    _Atomic uint64_t desk;      /* actor id of the node's desk (lm_transport_set_desk); 0: none */
    lm_actor *self;             /* set in init, used on its loop */
    uint32_t me;                /* this node */
    char url[512];              /* front door as bound */
    char host[256];             /* tcp host of the front door */
    bool ipc;                   /* ipc front door */
    char run_dir[400];          /* for ipc data sockets */
    size_t max_msg, max_queued; /* limits */
    int send_buffer;
    int connect_timeout, reconnect_min, reconnect_max, peer_timeout;
    nng_socket door;                   /* rep0 front door */
    struct event *door_ev;             /* its receive readiness */
    _Atomic(link *) table[LINK_TABLE]; /* insert-only, by node */
    link *links[LINK_TABLE];           /* the same, for iteration (under lock) */
    size_t nlinks;
    pthread_mutex_t lock; /* table inserts, routes, monitors */
    monitor *monitors;
    size_t nmon, mon_cap;
    _Atomic int senders; /* remote_send calls in progress */
    sem_t stopped;       /* posted by the actor's fini */
    uint64_t sweep_timer;
    int closing;           /* sockets being closed by closer threads (under lock) */
    pthread_cond_t closed; /* signalled as each of them finishes */
};

static uint64_t
rand64(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
        v = (uint64_t)lm_clock_mono_ms() * 0x9E3779B97F4A7C15ull;
    }
    return v;
}

/* --- link table ------------------------------------------------------ */

static size_t
slot_of(uint32_t node)
{
    return (size_t)(node * 2654435761u) & (LINK_TABLE - 1);
}

static link *
link_find(lm_transport *t, uint32_t node)
{
    for (size_t i = slot_of(node), n = 0; n < LINK_TABLE; i = (i + 1) & (LINK_TABLE - 1), n++) {
        /* acquire: pairs with the release store in link_get. */
        link *l = atomic_load_explicit(&t->table[i], memory_order_acquire);
        if (l == NULL) {
            return NULL;
        }
        if (l->node == node) {
            return l;
        }
    }
    return NULL;
}

/* Finds or creates the link to node. Returns NULL when out of memory or
 * the table is full. */
static link *
link_get(lm_transport *t, uint32_t node)
{
    link *l = link_find(t, node);
    size_t i;

    if (l != NULL) {
        return l;
    }
    pthread_mutex_lock(&t->lock);
    if ((l = link_find(t, node)) != NULL || t->nlinks >= LINK_TABLE / 2) {
        pthread_mutex_unlock(&t->lock);
        return l;
    }
    if ((l = calloc(1, sizeof(*l))) != NULL) {
        l->node = node;
        l->t = t;
        l->down_since = lm_clock_mono_ms();
        l->backoff_ms = t->reconnect_min;
        for (i = slot_of(node); atomic_load(&t->table[i]) != NULL; i = (i + 1) & (LINK_TABLE - 1)) {
        }
        t->links[t->nlinks++] = l;
        /* release: the link is initialised before anyone can find it. */
        atomic_store_explicit(&t->table[i], l, memory_order_release);
    }
    pthread_mutex_unlock(&t->lock);
    return l;
}

/* Copies the route of l into buf ("" when none). */
static void
link_route(lm_transport *t, link *l, char *buf, size_t cap)
{
    pthread_mutex_lock(&t->lock);
    snprintf(buf, cap, "%s", l->route != NULL ? l->route : "");
    pthread_mutex_unlock(&t->lock);
}

/* --- URLs ------------------------------------------------------------ */

/* Splits tcp://host:port. Returns LM_OK or LM_EINVAL. */
static int
parse_tcp(const char *url, char *host, size_t hcap, int *port)
{
    const char *h = url + 6, *colon = strrchr(h, ':');
    char *end;
    long p;

    if (strncmp(url, "tcp://", 6) != 0 || colon == NULL || colon == h ||
        (size_t)(colon - h) >= hcap) {
        return LM_EINVAL;
    }
    p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535) {
        return LM_EINVAL;
    }
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    *port = (int)p;
    return LM_OK;
}

static int
check_url(const char *url)
{
    char host[256];
    int port;

    if (strncmp(url, "ipc://", 6) == 0) {
        return url[6] != '\0' && strlen(url) < 300 ? LM_OK : LM_EINVAL;
    }
    return parse_tcp(url, host, sizeof(host), &port);
}

/* --- events to the actor --------------------------------------------- */

/* nng calls this on its own threads when a pipe comes or goes. */
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    lm_transport *t = arg;
    lm_link_event_msg e = {nng_socket_id(nng_pipe_socket(p)),
                           ev == NNG_PIPE_EV_ADD_POST ? LM_LINK_EV_ADDED : LM_LINK_EV_REMOVED, 0,
                           (uint32_t)nng_pipe_id(p)};
    lm_msg *m;

    if (lm_proto_encode(LM_MT_LINK_EVENT, t->actor, t->actor, &e, &m) != LM_OK) {
        return;
    }
    m->flags |= LM_MSGF_LOCAL_ONLY;
    if (lm_deliver(t->rt, t->actor, m) != LM_OK) {
        lm_msg_release(m); /* the transport is stopping */
    }
}

/* --- monitors -------------------------------------------------------- */

static void
notify(lm_transport *t, link *l, bool up, const char *reason)
{
    lm_node_status_msg ns = {l->node, atomic_load(&l->peer_inc), up, lm_str_c(reason)};

    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->nmon;) {
        monitor *mo = &t->monitors[i];
        if (mo->node != 0 && mo->node != l->node) {
            i++;
            continue;
        }
        if (lm_tell(t->self, mo->watcher, LM_MT_NODE_STATUS, &ns) == LM_ENOACTOR) {
            t->monitors[i] = t->monitors[--t->nmon]; /* the watcher is gone */
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

/* --- sockets --------------------------------------------------------- */

static void link_recv_cb(evutil_socket_t fd, short what, void *arg);
static void link_send_cb(evutil_socket_t fd, short what, void *arg);
static void req_recv_cb(evutil_socket_t fd, short what, void *arg);
static void req_send_cb(evutil_socket_t fd, short what, void *arg);

/* Every socket is closed on a short-lived thread of its own, never on
 * the loop. nng 1.5's nng_close can wait for good on a pipe that is never
 * reaped (nng issues #1236 and #1543, fixed after 1.5.2): two nodes asking
 * each other for a link at once, or stopping at once, left one of them
 * stuck in nng_close, serving nothing. A loop must not wait on that, and
 * lm_transport_free waits for the closers only a bounded time. */
typedef struct closer {
    lm_transport *t;
    nng_socket s;
} closer;

static void *
closer_main(void *arg)
{
    closer *c = arg;
    lm_transport *t = c->t;

    nng_close(c->s);
    free(c);
    if (t != NULL) {
        pthread_mutex_lock(&t->lock);
        t->closing--;
        pthread_cond_broadcast(&t->closed);
        pthread_mutex_unlock(&t->lock);
    }
    return NULL;
}

/* Closes s on a closer thread. t counts the closers lm_transport_free
 * waits for; NULL for a socket of no transport (lm_transport_identify),
 * whose close nobody waits for. */
static void
close_socket(lm_transport *t, nng_socket s)
{
    closer *c = malloc(sizeof(*c));
    pthread_attr_t at;
    pthread_t th;
    bool started = false;

    if (c != NULL && pthread_attr_init(&at) == 0) {
        *c = (closer){t, s};
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (t != NULL) {
            pthread_mutex_lock(&t->lock);
            t->closing++;
            pthread_mutex_unlock(&t->lock);
        }
        started = pthread_create(&th, &at, closer_main, c) == 0;
        pthread_attr_destroy(&at);
        if (!started && t != NULL) {
            pthread_mutex_lock(&t->lock);
            t->closing--;
            pthread_mutex_unlock(&t->lock);
        }
    }
    if (!started) {
        free(c);
        nng_close(s); /* no thread to spare: close it here */
    }
}

/* Waits up to ms for the closer threads; true when none is left. */
static bool
wait_closed(lm_transport *t, int ms)
{
    struct timespec deadline;
    bool done;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&t->lock);
    while (t->closing > 0 && pthread_cond_timedwait(&t->closed, &t->lock, &deadline) == 0) {
    }
    done = t->closing == 0;
    pthread_mutex_unlock(&t->lock);
    return done;
}

static void
close_req(link *l)
{
    if (l->req_rev != NULL) {
        event_free(l->req_rev);
    }
    if (l->req_sev != NULL) {
        event_free(l->req_sev);
    }
    l->req_rev = l->req_sev = NULL;
    if (l->req_open) {
        close_socket(l->t, l->req);
        l->req_open = false;
    }
}

static void
close_sock(link *l)
{
    if (l->rev != NULL) {
        event_free(l->rev);
    }
    if (l->sev != NULL) {
        event_free(l->sev);
    }
    l->rev = l->sev = NULL;
    if (l->sock_open) {
        close_socket(l->t, l->sock);
        l->sock_open = false;
    }
    l->pipe = 0;
    l->hello_sent = false;
}

/* Opens a pair1 socket for l with the link options and pipe callbacks,
 * and the readiness events (receive armed, send armed when stalled). */
static int
open_sock(lm_transport *t, link *l)
{
    int rfd, sfd;

    if (nng_pair1_open(&l->sock) != 0) {
        return LM_ETRANSPORT;
    }
    l->sock_open = true;
    if (nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, t->max_msg + FRAME_HDR) != 0 ||
        nng_socket_set_int(l->sock, NNG_OPT_SENDBUF, t->send_buffer) != 0 ||
        nng_socket_set_int(l->sock, NNG_OPT_RECVBUF, t->send_buffer) != 0 ||
        nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, t->reconnect_min) != 0 ||
        nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, t->reconnect_max) != 0 ||
        nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, t) != 0 ||
        nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, pipe_cb, t) != 0 ||
        nng_socket_get_int(l->sock, NNG_OPT_RECVFD, &rfd) != 0 ||
        nng_socket_get_int(l->sock, NNG_OPT_SENDFD, &sfd) != 0) {
        close_sock(l);
        return LM_ETRANSPORT;
    }
    struct event_base *base = lm_actor_event_base(t->self);
    l->rev = event_new(base, rfd, EV_READ | EV_PERSIST, link_recv_cb, l);
    l->sev = event_new(base, sfd, EV_READ | EV_PERSIST, link_send_cb, l);
    if (l->rev == NULL || l->sev == NULL || event_add(l->rev, NULL) != 0) {
        close_sock(l);
        return LM_ENOMEM;
    }
    return LM_OK;
}

/* --- timers ---------------------------------------------------------- */

static void
cancel_timer(lm_transport *t, uint64_t *id)
{
    if (*id != 0) {
        lm_timer_cancel(t->self, *id);
        *id = 0;
    }
}

static void
set_deadline(lm_transport *t, link *l)
{
    cancel_timer(t, &l->deadline_timer);
    lm_timer_start(t->self, (uint64_t)t->connect_timeout, 0,
                   ((uint64_t)TIMER_DEADLINE << 32) | l->node, &l->deadline_timer);
}

static void start_request(lm_transport *t, link *l);

/* Schedules the next connection attempt, backing off. */
static void
schedule_retry(lm_transport *t, link *l)
{
    char route[8];

    link_route(t, l, route, sizeof(route));
    if (route[0] == '\0' || l->retry_timer != 0) {
        return; /* no way to reach it: wait for it to come to us */
    }
    lm_timer_start(t->self, (uint64_t)l->backoff_ms, 0, ((uint64_t)TIMER_RETRY << 32) | l->node,
                   &l->retry_timer);
    l->backoff_ms = l->backoff_ms * 2 > t->reconnect_max ? t->reconnect_max : l->backoff_ms * 2;
}

/* --- link state ------------------------------------------------------ */

static void
set_state(link *l, enum link_state s)
{
    /* relaxed: read by other threads for information only. */
    atomic_store_explicit(&l->state, s, memory_order_relaxed);
}

static enum link_state
get_state(link *l)
{
    return (enum link_state)atomic_load_explicit(&l->state, memory_order_relaxed);
}

/* Takes the link down: closes its sockets, tells monitors if it was up,
 * and schedules a reconnect. Queued messages stay queued. */
static void
link_down(lm_transport *t, link *l, const char *reason)
{
    enum link_state was = get_state(l);

    pthread_mutex_lock(&t->lock);
    snprintf(l->last_error, sizeof(l->last_error), "%s", reason);
    pthread_mutex_unlock(&t->lock);
    close_req(l);
    close_sock(l);
    cancel_timer(t, &l->deadline_timer);
    set_state(l, LINK_DOWN);
    if (was == LINK_UP) {
        /* Queued messages age from when the node was last reachable. */
        l->down_since = lm_clock_mono_ms();
    }
    if (l->was_up) {
        l->was_up = false;
        LM_LOG(LM_LOG_WARN, "link to node %u down: %s", l->node, reason);
        notify(t, l, false, reason);
    } else if (was != LINK_DOWN) {
        LM_LOG(LM_LOG_DEBUG, "link to node %u not established (%s): %s", l->node, state_names[was],
               reason);
    }
    schedule_retry(t, l);
}

static void flush(lm_transport *t, link *l);

static void
link_up(lm_transport *t, link *l)
{
    cancel_timer(t, &l->deadline_timer);
    cancel_timer(t, &l->retry_timer);
    set_state(l, LINK_UP);
    l->backoff_ms = t->reconnect_min;
    l->was_up = true;
    atomic_fetch_add_explicit(&l->ups, 1, memory_order_relaxed);
    LM_LOG(LM_LOG_INFO, "link to node %u up (incarnation %016llx)", l->node,
           (unsigned long long)atomic_load(&l->peer_inc));
    notify(t, l, true, "link up");
    flush(t, l);
}

/* --- sending --------------------------------------------------------- */

/* Writes queued messages while nng takes them. */
static void
flush(lm_transport *t, link *l)
{
    (void)t;
    while (get_state(l) == LINK_UP) {
        int rv;
        if (l->stalled == NULL) {
            lm_msg *m = l->pend_head;
            nng_msg *nm;
            if (m == NULL) {
                break;
            }
            l->pend_head = (lm_msg *)atomic_load_explicit(&m->qnode.next, memory_order_relaxed);
            if (l->pend_head == NULL) {
                l->pend_tail = NULL;
            }
            l->npend--;
            l->stalled_len = m->len;
            rv = lm_msg_to_nng(m, &nm); /* consumes m */
            if (rv == LM_OK && nng_msg_insert(nm, frame_hdr, FRAME_HDR) != 0) {
                nng_msg_free(nm);
                rv = LM_ENOMEM;
            }
            if (rv != LM_OK) {
                LM_LOG(LM_LOG_ERROR, "link to node %u: out of memory, a message is lost", l->node);
                atomic_fetch_sub(&l->queued, (int64_t)l->stalled_len);
                continue;
            }
            l->stalled = nm;
        }
        rv = nng_sendmsg(l->sock, l->stalled, NNG_FLAG_NONBLOCK);
        if (rv == NNG_EAGAIN) {
            event_add(l->sev, NULL); /* resume when writable */
            return;
        }
        if (rv != 0) {
            LM_LOG(LM_LOG_ERROR, "link to node %u: send failed: %s; a message is lost", l->node,
                   nng_strerror(rv));
            nng_msg_free(l->stalled);
        } else {
            atomic_fetch_add_explicit(&l->msgs_out, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&l->bytes_out, l->stalled_len, memory_order_relaxed);
        }
        l->stalled = NULL;
        atomic_fetch_sub(&l->queued, (int64_t)l->stalled_len);
    }
    if (l->sev != NULL) {
        event_del(l->sev);
    }
}

static void
link_send_cb(evutil_socket_t fd, short what, void *arg)
{
    link *l = arg;
    (void)fd;
    (void)what;
    lm_log_set_context("transport", NULL);
    flush(l->t, l);
}

/* Appends m (owned) to l's queue, then writes what can be written.
 * The bytes were counted in l->queued by the caller. */
static void
enqueue(lm_transport *t, link *l, lm_msg *m)
{
    atomic_store_explicit(&m->qnode.next, NULL, memory_order_relaxed);
    if (l->pend_tail != NULL) {
        atomic_store_explicit(&l->pend_tail->qnode.next, &m->qnode, memory_order_relaxed);
    } else {
        l->pend_head = m;
    }
    l->pend_tail = m;
    l->npend++;
    if (get_state(l) == LINK_UP) {
        flush(t, l);
    } else if (get_state(l) == LINK_DOWN && l->retry_timer == 0) {
        start_request(t, l);
    }
}

/* Queues a message the transport makes itself (a PONG, an
 * UNDELIVERABLE) on l, within the link's byte budget like any other.
 * Returns false (and frees m) when the budget is spent. */
static bool
enqueue_own(lm_transport *t, link *l, lm_msg *m)
{
    int64_t q = atomic_fetch_add(&l->queued, (int64_t)m->len) + (int64_t)m->len;
    if (q > (int64_t)t->max_queued) {
        atomic_fetch_sub(&l->queued, (int64_t)m->len);
        lm_msg_release(m);
        return false;
    }
    enqueue(t, l, m);
    return true;
}

/* Returns m to its sender as UNDELIVERABLE (over the link it came from,
 * or locally), or drops it with a log line when that is impossible.
 * Consumes m. */
static void
bounce(lm_transport *t, link *l, lm_msg *m, int code, const char *why)
{
    char dst[LM_ADDR_STRLEN];
    lm_undeliverable_msg u = {m->dst, m->type, code, lm_str_c(why)};
    /* From this node: the actor the message was for when it is ours, the
     * node itself when the message was for another node. */
    lm_addr from = {t->me, m->dst.node == t->me ? m->dst.actor : 0};
    lm_msg *b;

    atomic_fetch_add_explicit(&l->bounced, 1, memory_order_relaxed);
    if (m->src.actor != 0 && m->type != LM_MT_UNDELIVERABLE &&
        lm_proto_encode(LM_MT_UNDELIVERABLE, from, m->src, &u, &b) == LM_OK) {
        if (m->src.node == t->me) {
            if (lm_send(t->rt, b) == LM_OK) {
                lm_msg_release(m);
                return;
            }
            lm_msg_release(b);
        } else {
            link *back = link_find(t, m->src.node);
            if (back != NULL && enqueue_own(t, back, b)) {
                lm_msg_release(m);
                return;
            }
            if (back == NULL) {
                lm_msg_release(b);
            }
        }
    }
    LM_LOG(LM_LOG_WARN, "dropped %s message for %s: %s", lm_proto_type_name(m->type),
           lm_addr_format(m->dst, dst, sizeof(dst)), why);
    lm_msg_release(m);
}

/* Called by lm_send (any thread) for a message to another node. */
static int
remote_send(void *arg, lm_msg *m)
{
    lm_transport *t = arg;
    link *l;
    int64_t q;
    int rv = LM_OK;

    /* acq_rel: lm_transport_free waits for senders to drain before it
     * frees t. */
    atomic_fetch_add_explicit(&t->senders, 1, memory_order_acq_rel);
    if (m->len > t->max_msg) {
        rv = LM_ETOOBIG;
    } else if ((l = link_find(t, m->dst.node)) == NULL) {
        rv = LM_ENOROUTE;
    } else {
        q = atomic_fetch_add(&l->queued, (int64_t)m->len) + (int64_t)m->len;
        if (q > (int64_t)t->max_queued) {
            atomic_fetch_sub(&l->queued, (int64_t)m->len);
            rv = LM_EAGAIN;
        } else if ((rv = lm_deliver(t->rt, t->actor, m)) != LM_OK) {
            atomic_fetch_sub(&l->queued, (int64_t)m->len);
            rv = LM_ECLOSED;
        }
    }
    atomic_fetch_sub_explicit(&t->senders, 1, memory_order_acq_rel);
    return rv;
}

/* --- handshake: requesting side --------------------------------------- */

static void
start_request(lm_transport *t, link *l)
{
    char route[512];
    int rfd, sfd;
    struct event_base *base = lm_actor_event_base(t->self);

    cancel_timer(t, &l->retry_timer);
    link_route(t, l, route, sizeof(route));
    if (route[0] == '\0') {
        return;
    }
    close_req(l);
    if (nng_req0_open(&l->req) != 0) {
        link_down(t, l, "cannot open a request socket");
        return;
    }
    l->req_open = true;
    l->req_sent = false;
    if (nng_socket_set_size(l->req, NNG_OPT_RECVMAXSZ, FRONTDOOR_MAX) != 0 ||
        nng_socket_set_ms(l->req, NNG_OPT_REQ_RESENDTIME, t->connect_timeout) != 0 ||
        nng_socket_set_ms(l->req, NNG_OPT_RECONNMINT, t->reconnect_min) != 0 ||
        nng_socket_set_ms(l->req, NNG_OPT_RECONNMAXT, t->reconnect_max) != 0 ||
        nng_socket_get_int(l->req, NNG_OPT_RECVFD, &rfd) != 0 ||
        nng_socket_get_int(l->req, NNG_OPT_SENDFD, &sfd) != 0 ||
        nng_dial(l->req, route, NULL, NNG_FLAG_NONBLOCK) != 0) {
        link_down(t, l, "cannot dial the front door");
        return;
    }
    l->req_rev = event_new(base, rfd, EV_READ | EV_PERSIST, req_recv_cb, l);
    l->req_sev = event_new(base, sfd, EV_READ | EV_PERSIST, req_send_cb, l);
    if (l->req_rev == NULL || l->req_sev == NULL || event_add(l->req_rev, NULL) != 0 ||
        event_add(l->req_sev, NULL) != 0) {
        link_down(t, l, "out of memory");
        return;
    }
    set_state(l, LINK_REQUESTING);
    set_deadline(t, l);
    LM_LOG(LM_LOG_DEBUG, "requesting a link to node %u at %s", l->node, route);
}

/* The request socket can send: write LINK_REQUEST once. */
static void
req_send_cb(evutil_socket_t fd, short what, void *arg)
{
    link *l = arg;
    lm_transport *t = l->t;
    lm_link_request_msg rq = {t->me, lm_rt_incarnation(t->rt), lm_str_c(t->url), LM_PROTO_VERSION};
    lm_msg *m;
    nng_msg *nm;
    int rv;

    (void)fd;
    (void)what;
    lm_log_set_context("transport", NULL);
    if (l->req_sent) {
        event_del(l->req_sev);
        return;
    }
    if (lm_proto_encode(LM_MT_LINK_REQUEST, (lm_addr){t->me, 0}, (lm_addr){l->node, 0}, &rq, &m) !=
            LM_OK ||
        lm_msg_to_nng(m, &nm) != LM_OK) {
        return;
    }
    rv = nng_sendmsg(l->req, nm, NNG_FLAG_NONBLOCK);
    if (rv == 0) {
        l->req_sent = true;
        event_del(l->req_sev);
    } else {
        nng_msg_free(nm);
    }
}

static void connect_data(lm_transport *t, link *l, const lm_link_offer_msg *offer);

/* The front door answered. */
static void
req_recv_cb(evutil_socket_t fd, short what, void *arg)
{
    link *l = arg;
    lm_transport *t = l->t;
    nng_msg *nm;
    lm_msg *m;
    lm_error err;

    (void)fd;
    (void)what;
    lm_log_set_context("transport", NULL);
    if (nng_recvmsg(l->req, &nm, NNG_FLAG_NONBLOCK) != 0) {
        return;
    }
    if (lm_msg_from_nng(nm, &m) != LM_OK) {
        nng_msg_free(nm);
        return;
    }
    if (lm_proto_parse_envelope(m, FRONTDOOR_MAX, &err) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "node %u front door: bad answer: %s", l->node, err.msg);
        link_down(t, l, "bad answer from front door");
    } else if (m->type == LM_MT_LINK_OFFER) {
        lm_link_offer_msg offer;
        if (lm_decode_link_offer(m, &offer, &err) != LM_OK) {
            LM_LOG(LM_LOG_ERROR, "node %u front door: bad offer: %s", l->node, err.msg);
            link_down(t, l, "bad offer");
        } else {
            close_req(l);
            connect_data(t, l, &offer);
        }
    } else if (m->type == LM_MT_LINK_REFUSE) {
        lm_link_refuse_msg rf;
        bool ok = lm_decode_link_refuse(m, &rf, &err) == LM_OK;
        if (ok && rf.code == LM_EEXIST && rf.node == l->node && l->node < t->me) {
            /* Crossing requests and the peer's wins: wait for its request
             * (the deadline retries if it never comes). */
            close_req(l);
            set_state(l, LINK_WAITING);
        } else {
            char why[200];
            snprintf(why, sizeof(why), "refused by the peer: %.*s", ok ? (int)rf.reason.len : 16,
                     ok ? rf.reason.ptr : "(bad refusal)");
            LM_LOG(LM_LOG_ERROR, "link to node %u %s", l->node, why);
            link_down(t, l, why);
        }
    } else {
        LM_LOG(LM_LOG_ERROR, "node %u front door answered with %s", l->node,
               lm_proto_type_name(m->type));
        link_down(t, l, "unexpected answer");
    }
    lm_msg_release(m);
}

/* Dials the offered data URL. For tcp the host is the one we reached the
 * front door at (the peer may listen on a wildcard address). */
static void
connect_data(lm_transport *t, link *l, const lm_link_offer_msg *offer)
{
    char url[600], route[512], host[256], ohost[256];
    int port, oport;

    if (offer->node != l->node) {
        char why[128];
        snprintf(why, sizeof(why), "the node at that address is node %u, not node %u", offer->node,
                 l->node);
        LM_LOG(LM_LOG_ERROR, "link to node %u: %s", l->node, why);
        link_down(t, l, why);
        return;
    }
    snprintf(url, sizeof(url), "%.*s", (int)offer->url.len, offer->url.ptr);
    link_route(t, l, route, sizeof(route));
    if (strncmp(url, "tcp://", 6) == 0) {
        if (parse_tcp(url, ohost, sizeof(ohost), &oport) != LM_OK ||
            parse_tcp(route, host, sizeof(host), &port) != LM_OK) {
            link_down(t, l, "bad data URL in offer");
            return;
        }
        snprintf(url, sizeof(url), "tcp://%s:%d", host, oport);
    } else if (strncmp(url, "ipc://", 6) != 0) {
        link_down(t, l, "bad data URL in offer");
        return;
    }
    if (open_sock(t, l) != LM_OK) {
        link_down(t, l, "cannot open the link socket");
        return;
    }
    if (nng_dial(l->sock, url, NULL, NNG_FLAG_NONBLOCK) != 0) {
        link_down(t, l, "cannot dial the data URL");
        return;
    }
    atomic_store(&l->peer_inc, offer->incarnation);
    l->token = offer->token;
    l->dialer = true;
    set_state(l, LINK_CONNECTING);
    set_deadline(t, l);
}

/* Writes LINK_HELLO straight to the link's socket (ahead of anything
 * queued or stalled: nothing was written to this socket yet). */
static int
send_hello(lm_transport *t, link *l)
{
    lm_link_hello_msg h = {t->me, lm_rt_incarnation(t->rt), l->token};
    lm_msg *m;
    nng_msg *nm;

    if (lm_proto_encode(LM_MT_LINK_HELLO, (lm_addr){t->me, 0}, (lm_addr){l->node, 0}, &h, &m) !=
            LM_OK ||
        lm_msg_to_nng(m, &nm) != LM_OK) {
        return LM_ENOMEM;
    }
    if (nng_msg_insert(nm, frame_hdr, FRAME_HDR) != 0 ||
        nng_sendmsg(l->sock, nm, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(nm);
        return LM_ETRANSPORT;
    }
    return LM_OK;
}

/* The link socket got a pipe. As the dialer, it is the link's pipe: say
 * hello, and go up when the listener answers with its own hello. */
static void
pipe_added(lm_transport *t, link *l, uint32_t pipe)
{
    if (get_state(l) != LINK_CONNECTING || l->pipe != 0) {
        return;
    }
    l->pipe = pipe;
    if (send_hello(t, l) != LM_OK) {
        link_down(t, l, "cannot send the hello");
        return;
    }
    l->hello_sent = true;
}

/* --- handshake: front door -------------------------------------------- */

/* Opens a pair1 socket listening on a fresh address for peer l; sets
 * *url to what the peer should dial. */
static int
listen_data(lm_transport *t, link *l, char *url, size_t cap)
{
    nng_listener lst;
    int port;

    if (open_sock(t, l) != LM_OK) {
        return LM_ETRANSPORT;
    }
    if (t->ipc) {
        snprintf(url, cap, "ipc://%s/lm-%u-%u-%016llx.sock", t->run_dir, t->me, l->node,
                 (unsigned long long)l->token);
        if (nng_listen(l->sock, url, NULL, 0) != 0) {
            return LM_ETRANSPORT;
        }
        return LM_OK;
    }
    snprintf(url, cap, "tcp://%s:0", t->host);
    if (nng_listen(l->sock, url, &lst, 0) != 0 ||
        nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
        return LM_ETRANSPORT;
    }
    snprintf(url, cap, "tcp://%s:%d", t->host, port);
    return LM_OK;
}

static void
door_reply(lm_transport *t, uint32_t type, const void *payload, uint32_t peer)
{
    lm_msg *m;
    nng_msg *nm;

    if (lm_proto_encode(type, (lm_addr){t->me, 0}, (lm_addr){peer, 0}, payload, &m) != LM_OK ||
        lm_msg_to_nng(m, &nm) != LM_OK) {
        return;
    }
    if (nng_sendmsg(t->door, nm, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(nm); /* the requester went away; it will ask again */
    }
}

static void
door_refuse(lm_transport *t, uint32_t peer, int code, const char *why)
{
    lm_link_refuse_msg rf = {t->me, code, lm_str_c(why)};
    door_reply(t, LM_MT_LINK_REFUSE, &rf, peer);
}

/* Decides on one LINK_REQUEST. */
static void
door_request(lm_transport *t, const lm_link_request_msg *rq)
{
    char url[600], route[512];
    link *l;
    enum link_state st;

    if (rq->version != LM_PROTO_VERSION) {
        char why[96];
        snprintf(why, sizeof(why), "protocol version %u, this node speaks %d", rq->version,
                 LM_PROTO_VERSION);
        door_refuse(t, rq->node, LM_EVERSION, why);
        return;
    }
    if (rq->node == 0) {
        /* "Who are you?" (lm_transport_identify): say, and touch no link. */
        LM_LOG(LM_LOG_DEBUG, "front door: told an asker that this is node %u", t->me);
        door_refuse(t, 0, LM_OK, "identify");
        return;
    }
    if (rq->node == t->me) {
        LM_LOG(LM_LOG_ERROR, "refused a link from %.*s: it claims node id %u, which is ours",
               (int)rq->url.len, rq->url.ptr, rq->node);
        door_refuse(t, rq->node, LM_EADDRINUSE,
                    "node id clash: the node you reached has the id you claim");
        return;
    }
    snprintf(route, sizeof(route), "%.*s", (int)rq->url.len, rq->url.ptr);
    if ((l = link_get(t, rq->node)) == NULL) {
        door_refuse(t, rq->node, LM_ENOMEM, "too many peers");
        return;
    }
    if (check_url(route) == LM_OK) {
        /* Learn (or update) how to reach it. */
        pthread_mutex_lock(&t->lock);
        if (l->route == NULL || strcmp(l->route, route) != 0) {
            char *r = strdup(route);
            if (r != NULL) {
                free(l->route);
                l->route = r;
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    st = get_state(l);
    if ((st == LINK_REQUESTING || st == LINK_CONNECTING) && t->me < rq->node) {
        /* We asked too, and the lower id wins: ours. */
        door_refuse(t, rq->node, LM_EEXIST, "crossing requests: the lower node id connects");
        return;
    }
    if (st == LINK_UP && l->dialer && t->me < rq->node &&
        atomic_load(&l->peer_inc) == rq->incarnation) {
        /* A request from the same process of the peer while the link we
         * dialed is up: the peer's half of a crossing that ours won,
         * arriving late. Were our link really broken, its pipe would go
         * and we would dial again. */
        door_refuse(t, rq->node, LM_EEXIST, "crossing requests: the lower node id connects");
        return;
    }
    if (st == LINK_UP && atomic_load(&l->peer_inc) != rq->incarnation) {
        link_down(t, l, "peer restarted");
    } else if (st != LINK_DOWN) {
        link_down(t, l, "peer asked for a new link");
    }
    cancel_timer(t, &l->retry_timer);
    l->token = rand64();
    l->dialer = false;
    if (listen_data(t, l, url, sizeof(url)) != LM_OK) {
        close_sock(l);
        door_refuse(t, rq->node, LM_ETRANSPORT, "cannot open a data socket");
        schedule_retry(t, l);
        return;
    }
    atomic_store(&l->peer_inc, rq->incarnation);
    set_state(l, LINK_ACCEPTING);
    set_deadline(t, l);
    lm_link_offer_msg offer = {t->me, lm_rt_incarnation(t->rt), lm_str_c(url), l->token};
    door_reply(t, LM_MT_LINK_OFFER, &offer, rq->node);
}

static void
door_cb(evutil_socket_t fd, short what, void *arg)
{
    lm_transport *t = arg;
    nng_msg *nm;
    lm_msg *m;
    lm_error err;
    lm_link_request_msg rq;
    int rv;

    (void)fd;
    (void)what;
    lm_log_set_context("transport", NULL);
    for (int i = 0; i < 64 && nng_recvmsg(t->door, &nm, NNG_FLAG_NONBLOCK) == 0; i++) {
        if (lm_msg_from_nng(nm, &m) != LM_OK) {
            nng_msg_free(nm);
            continue;
        }
        if ((rv = lm_proto_parse_envelope(m, FRONTDOOR_MAX, &err)) != LM_OK ||
            (rv = lm_decode_link_request(m, &rq, &err)) != LM_OK) {
            LM_LOG(LM_LOG_WARN, "front door: malformed request dropped: %s", err.msg);
            door_refuse(t, 0, rv == LM_EVERSION ? LM_EVERSION : LM_EPROTO, err.msg);
        } else if (rq.node != 0 && m->dst.node != 0 && m->dst.node != t->me) {
            /* meant for a node that was here before (a restart with a new
             * id): refuse, and leave any link with the requester alone */
            char why[96];
            snprintf(why, sizeof(why), "this address is node %u now, not node %u", t->me,
                     m->dst.node);
            door_refuse(t, rq.node, LM_ENOROUTE, why);
        } else {
            door_request(t, &rq);
        }
        lm_msg_release(m);
    }
}

/* --- receiving ------------------------------------------------------- */

/* One message from the peer of l (owned). */
static void
receive(lm_transport *t, link *l, nng_msg *nm)
{
    const uint8_t *b = nng_msg_body(nm);
    lm_msg *m;
    lm_error err;
    uint64_t desk;
    int rv;

    nng_pipe pipe = nng_msg_get_pipe(nm);

    if (nng_msg_len(nm) < FRAME_HDR || memcmp(b, frame_hdr, 3) != 0) {
        atomic_fetch_add_explicit(&l->malformed, 1, memory_order_relaxed);
        LM_LOG(LM_LOG_ERROR, "link to node %u: message without a valid frame header dropped",
               l->node);
        nng_msg_free(nm);
        return;
    }
    nng_msg_trim(nm, FRAME_HDR);
    if (lm_msg_from_nng(nm, &m) != LM_OK) {
        nng_msg_free(nm);
        return;
    }
    if ((rv = lm_proto_parse_envelope(m, t->max_msg, &err)) != LM_OK) {
        atomic_fetch_add_explicit(&l->malformed, 1, memory_order_relaxed);
        LM_LOG(LM_LOG_ERROR, "link to node %u: malformed message dropped: %s", l->node, err.msg);
        lm_msg_release(m);
        return;
    }
    if (get_state(l) == LINK_ACCEPTING || (get_state(l) == LINK_CONNECTING && l->hello_sent)) {
        /* The first message each way is the hello: the dialer's to us when
         * we listen, the listener's answer when we dialed. */
        lm_link_hello_msg h;
        bool listening = get_state(l) == LINK_ACCEPTING;
        if (m->type != LM_MT_LINK_HELLO || lm_decode_link_hello(m, &h, &err) != LM_OK ||
            h.node != l->node || h.token != l->token) {
            LM_LOG(LM_LOG_ERROR, "link to node %u: the first message is not the expected hello",
                   l->node);
            lm_msg_release(m);
            pthread_mutex_lock(&t->lock);
            snprintf(l->last_error, sizeof(l->last_error), "bad hello");
            pthread_mutex_unlock(&t->lock);
            if (listening) {
                /* Cut only that connection: the right peer may still come
                 * before the deadline. */
                nng_pipe_close(pipe);
            } else {
                link_down(t, l, "bad hello");
            }
            return;
        }
        lm_msg_release(m);
        if (listening) {
            l->pipe = nng_pipe_id(pipe);
            if (send_hello(t, l) != LM_OK) {
                link_down(t, l, "cannot answer the hello");
                return;
            }
        }
        link_up(t, l);
        return;
    }
    if (m->src.node != l->node) {
        atomic_fetch_add_explicit(&l->malformed, 1, memory_order_relaxed);
        LM_LOG(LM_LOG_ERROR, "link to node %u: message claiming to come from node %u dropped",
               l->node, m->src.node);
        lm_msg_release(m);
        return;
    }
    atomic_fetch_add_explicit(&l->msgs_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->bytes_in, m->len, memory_order_relaxed);
    if (m->dst.node != t->me) {
        bounce(t, l, m, LM_ENOROUTE, "message reached the wrong node");
    } else if (m->dst.actor == 0 && m->type == LM_MT_PING && m->src.actor != 0) {
        /* A ping to the node itself: the transport answers (liveness). */
        lm_ping_msg p;
        lm_msg *r;
        if (lm_decode_ping(m, &p, NULL) == LM_OK) {
            lm_pong_msg pong = {p.seq, p.sent_ns, p.body};
            if (lm_proto_encode(LM_MT_PONG, m->dst, m->src, &pong, &r) == LM_OK &&
                !enqueue_own(t, l, r)) {
                LM_LOG(LM_LOG_WARN, "link to node %u: queue full, a PONG is dropped", l->node);
            }
        }
        lm_msg_release(m);
    } else if (m->dst.actor == 0 &&
               (desk = atomic_load_explicit(&t->desk, memory_order_acquire)) != 0) {
        /* For the node itself: its desk answers (the sender learns the
         * desk's own address from the answer). */
        if ((rv = lm_deliver(t->rt, (lm_addr){t->me, desk}, m)) != LM_OK) {
            bounce(t, l, m, rv, "the node's desk is gone");
        }
    } else if (m->dst.actor == 0) {
        LM_LOG(LM_LOG_WARN, "link to node %u: unexpected %s for the node dropped", l->node,
               lm_proto_type_name(m->type));
        lm_msg_release(m);
    } else if ((rv = lm_send(t->rt, m)) != LM_OK) {
        bounce(t, l, m, rv, "no such actor");
    }
}

static void
link_recv_cb(evutil_socket_t fd, short what, void *arg)
{
    link *l = arg;
    lm_transport *t = l->t;
    nng_msg *nm;

    (void)fd;
    (void)what;
    lm_log_set_context("transport", NULL);
    for (int i = 0; i < RECV_BURST && l->sock_open; i++) {
        if (nng_recvmsg(l->sock, &nm, NNG_FLAG_NONBLOCK) != 0) {
            break;
        }
        receive(t, l, nm);
    }
}

/* --- the actor ------------------------------------------------------- */

static link *
link_by_socket(lm_transport *t, uint32_t id)
{
    link *found = NULL;

    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->nlinks && found == NULL; i++) {
        link *l = t->links[i];
        if (l->sock_open && nng_socket_id(l->sock) == (int)id) {
            found = l;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}

/* Takes back the message nng refused, as an lm_msg (for bouncing), or
 * NULL when there is none. */
static lm_msg *
unstall(link *l)
{
    nng_msg *nm = l->stalled;
    lm_msg *m;

    if (nm == NULL) {
        return NULL;
    }
    l->stalled = NULL;
    atomic_fetch_sub(&l->queued, (int64_t)l->stalled_len);
    nng_msg_trim(nm, FRAME_HDR);
    if (lm_msg_from_nng(nm, &m) != LM_OK) {
        nng_msg_free(nm);
        return NULL;
    }
    if (lm_proto_parse_envelope(m, SIZE_MAX, NULL) != LM_OK) {
        lm_msg_release(m); /* we encoded it: cannot happen */
        return NULL;
    }
    return m;
}

/* Returns queued messages older than the peer timeout to their senders. */
static void
sweep(lm_transport *t)
{
    int64_t now = lm_clock_mono_ms();
    size_t n;

    pthread_mutex_lock(&t->lock);
    n = t->nlinks;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        link *l = t->links[i];
        lm_msg *stalled;
        if (get_state(l) == LINK_UP || (l->npend == 0 && l->stalled == NULL) ||
            now - l->down_since < t->peer_timeout) {
            continue;
        }
        LM_LOG(LM_LOG_WARN, "node %u unreachable for %lld ms: returning %zu queued messages",
               l->node, (long long)(now - l->down_since), l->npend + (l->stalled != NULL));
        if ((stalled = unstall(l)) != NULL) {
            char why[64];
            snprintf(why, sizeof(why), "node %u unreachable", l->node);
            bounce(t, l, stalled, LM_ETIMEDOUT, why);
        }
        while (l->pend_head != NULL) {
            lm_msg *m = l->pend_head;
            char why[64];
            l->pend_head = (lm_msg *)atomic_load_explicit(&m->qnode.next, memory_order_relaxed);
            l->npend--;
            atomic_fetch_sub(&l->queued, (int64_t)m->len);
            snprintf(why, sizeof(why), "node %u unreachable", l->node);
            bounce(t, l, m, LM_ETIMEDOUT, why);
        }
        l->pend_tail = NULL;
    }
}

static int
tr_init(lm_actor *self, void *arg)
{
    lm_transport *t = arg;
    int fd;

    t->self = self;
    t->actor = lm_actor_addr(self);
    lm_actor_set_state(self, t);
    if (nng_socket_get_int(t->door, NNG_OPT_RECVFD, &fd) != 0 ||
        (t->door_ev = event_new(lm_actor_event_base(self), fd, EV_READ | EV_PERSIST, door_cb, t)) ==
            NULL ||
        event_add(t->door_ev, NULL) != 0) {
        return lm_actor_fail(self, LM_ETRANSPORT, "cannot watch the front door");
    }
    if (lm_timer_start(self, 1000, 1000, (uint64_t)TIMER_SWEEP << 32, &t->sweep_timer) != LM_OK) {
        event_free(t->door_ev);
        t->door_ev = NULL;
        return lm_actor_fail(self, LM_ENOMEM, "out of memory");
    }
    return LM_OK;
}

static int
tr_handle(lm_actor *self, lm_msg *m)
{
    lm_transport *t = lm_actor_state(self);
    link *l;

    if (m->type == LM_MT_TIMER) {
        lm_timer_msg tm;
        if (lm_decode_timer(m, &tm, NULL) != LM_OK) {
            return LM_OK;
        }
        if ((tm.tag >> 32) == TIMER_SWEEP) {
            sweep(t);
            return LM_OK;
        }
        if ((l = link_find(t, (uint32_t)tm.tag)) == NULL) {
            return LM_OK;
        }
        if ((tm.tag >> 32) == TIMER_RETRY && tm.id == l->retry_timer) {
            l->retry_timer = 0;
            if (get_state(l) == LINK_DOWN || get_state(l) == LINK_WAITING) {
                start_request(t, l);
            }
        } else if ((tm.tag >> 32) == TIMER_DEADLINE && tm.id == l->deadline_timer) {
            l->deadline_timer = 0;
            if (get_state(l) != LINK_UP) {
                link_down(t, l, "handshake timed out");
            }
        }
        return LM_OK;
    }
    if (m->type == LM_MT_LINK_EVENT && (m->flags & LM_MSGF_LOCAL_ONLY)) {
        lm_link_event_msg e;
        if (lm_decode_link_event(m, &e, NULL) != LM_OK) {
            return LM_OK;
        }
        if (e.kind == LM_LINK_EV_CONNECT) {
            if ((l = link_find(t, e.node)) != NULL &&
                (get_state(l) == LINK_DOWN || get_state(l) == LINK_WAITING)) {
                start_request(t, l);
            }
        } else if ((l = link_by_socket(t, e.socket)) != NULL) {
            if (e.kind == LM_LINK_EV_ADDED) {
                pipe_added(t, l, e.pipe);
            } else if (e.pipe == l->pipe &&
                       (get_state(l) == LINK_UP || get_state(l) == LINK_CONNECTING)) {
                /* Only the link's own pipe matters; a stray connection that
                 * came and went (or was refused) does not. */
                link_down(t, l, "connection lost");
            }
        }
        return LM_OK;
    }
    /* Anything else is an outgoing message for another node. */
    if ((l = link_find(t, m->dst.node)) == NULL) {
        /* remote_send counted it on a link; a link is never removed. */
        return LM_OK;
    }
    enqueue(t, l, lm_actor_take(self, m));
    return LM_OK;
}

static void
tr_fini(lm_actor *self)
{
    lm_transport *t = lm_actor_state(self);
    size_t dropped = 0;

    if (t->door_ev != NULL) {
        event_free(t->door_ev);
        t->door_ev = NULL;
    }
    for (size_t i = 0; i < t->nlinks; i++) {
        link *l = t->links[i];
        close_req(l);
        close_sock(l);
        if (l->stalled != NULL) {
            nng_msg_free(l->stalled);
            l->stalled = NULL;
            dropped++;
        }
        while (l->pend_head != NULL) {
            lm_msg *m = l->pend_head;
            l->pend_head = (lm_msg *)atomic_load_explicit(&m->qnode.next, memory_order_relaxed);
            lm_msg_release(m);
            dropped++;
        }
        l->pend_tail = NULL;
        l->npend = 0;
    }
    if (dropped > 0) {
        LM_LOG(LM_LOG_WARN, "transport closing: %zu queued messages dropped", dropped);
    }
    sem_post(&t->stopped);
}

static const lm_actor_type transport_type = {"transport", tr_init, tr_handle, tr_fini};

/* --- public ---------------------------------------------------------- */

int
lm_transport_new(lm_rt *rt, const lm_transport_opts *opts, lm_transport **out, lm_error *err)
{
    lm_transport *t;
    nng_listener lst;
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    int rv, port;

    if (opts->listen_url == NULL || check_url(opts->listen_url) != LM_OK) {
        return lm_error_set(err, LM_EINVAL,
                            "transport: bad listen URL '%s' (want tcp://HOST:PORT "
                            "or ipc:///PATH)",
                            opts->listen_url != NULL ? opts->listen_url : "");
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "transport: out of memory");
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->closed, NULL);
    sem_init(&t->stopped, 0, 0);
    t->rt = rt;
    t->me = lm_rt_node(rt);
    t->max_msg = opts->max_message_bytes ? opts->max_message_bytes : 64u << 20;
    t->max_queued = opts->max_queued_bytes ? opts->max_queued_bytes : 256u << 20;
    t->send_buffer = opts->send_buffer > 0 ? opts->send_buffer : 256;
    t->connect_timeout = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    t->reconnect_min = opts->reconnect_min_ms > 0 ? opts->reconnect_min_ms : 100;
    t->reconnect_max = opts->reconnect_max_ms > 0 ? opts->reconnect_max_ms : 5000;
    t->peer_timeout = opts->peer_timeout_ms > 0 ? opts->peer_timeout_ms : 30000;
    t->ipc = strncmp(opts->listen_url, "ipc://", 6) == 0;
    if (t->ipc) {
        const char *path = opts->listen_url + 6, *slash = strrchr(path, '/');
        if (opts->run_dir != NULL) {
            snprintf(t->run_dir, sizeof(t->run_dir), "%s", opts->run_dir);
        } else if (slash != NULL && slash != path) {
            snprintf(t->run_dir, sizeof(t->run_dir), "%.*s", (int)(slash - path), path);
        } else {
            snprintf(t->run_dir, sizeof(t->run_dir), "/tmp");
        }
        /* the data sockets go there: it must exist */
        if (lm_storage_mkdirs(t->run_dir, err) != LM_OK) {
            lm_error_prefix(err, "transport: the directory for ipc sockets");
            free(t);
            return LM_ETRANSPORT;
        }
    } else {
        parse_tcp(opts->listen_url, t->host, sizeof(t->host), &port);
    }
    if ((rv = nng_rep0_open(&t->door)) != 0 ||
        (rv = nng_socket_set_size(t->door, NNG_OPT_RECVMAXSZ, FRONTDOOR_MAX)) != 0 ||
        (rv = nng_listen(t->door, opts->listen_url, &lst, 0)) != 0) {
        int code = rv == NNG_EADDRINUSE ? LM_EADDRINUSE : LM_ETRANSPORT;
        lm_error_set(err, code, "transport: cannot listen on %s: %s", opts->listen_url,
                     nng_strerror(rv));
        nng_close(t->door);
        free(t);
        return code;
    }
    if (t->ipc) {
        snprintf(t->url, sizeof(t->url), "%s", opts->listen_url);
    } else {
        if (nng_listener_get_int(lst, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
            port = 0;
        }
        snprintf(t->url, sizeof(t->url), "tcp://%s:%d", t->host, port);
    }
    so.loop = opts->loop >= 0 ? opts->loop : lm_rt_loop_count(rt) - 1;
    so.name = "transport";
    if ((rv = lm_spawn(rt, &transport_type, t, &so, &t->actor)) != LM_OK) {
        nng_close(t->door);
        free(t);
        return lm_error_set(err, rv, "transport: cannot start its actor: %s", lm_strerror(rv));
    }
    lm_rt_set_remote(rt, remote_send, t);
    LM_LOGC(LM_LOG_INFO, "transport", "node %u listening on %s", t->me, t->url);
    *out = t;
    return LM_OK;
}

void
lm_transport_free(lm_transport *t)
{
    struct timespec pause = {0, 1000000};
    struct timespec deadline;

    if (t == NULL) {
        return;
    }
    lm_rt_set_remote(t->rt, NULL, NULL);
    while (atomic_load_explicit(&t->senders, memory_order_acquire) > 0) {
        nanosleep(&pause, NULL);
    }
    if (lm_stop(t->rt, t->actor, "transport closing") == LM_OK) {
        /* Wait however long it takes: the actor uses t until its fini. A
         * loop that is stuck elsewhere is worth a word in the log. */
        for (int waited = 0;; waited += 10) {
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += 10;
            if (sem_timedwait(&t->stopped, &deadline) == 0) {
                break;
            }
            if (errno == ETIMEDOUT) {
                LM_LOGC(LM_LOG_WARN, "transport",
                        "still waiting for the transport actor to stop "
                        "(%d s)",
                        waited + 10);
            }
        }
    }
    close_socket(t, t->door);
    if (!wait_closed(t, CLOSE_WAIT_MS)) {
        /* The closer threads still use t (and nng may still call pipe_cb
         * with it): leave it to the process's exit. */
        LM_LOGC(LM_LOG_WARN, "transport",
                "%d nng socket(s) still closing after %d ms (an nng 1.5 bug); left to the "
                "process exit",
                t->closing, CLOSE_WAIT_MS);
        return;
    }
    for (size_t i = 0; i < t->nlinks; i++) {
        free(t->links[i]->route);
        free(t->links[i]);
    }
    free(t->monitors);
    sem_destroy(&t->stopped);
    pthread_cond_destroy(&t->closed);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

const char *
lm_transport_url(const lm_transport *t)
{
    return t->url;
}

int
lm_transport_add_route(lm_transport *t, uint32_t node, const char *url)
{
    lm_link_event_msg e = {0, LM_LINK_EV_CONNECT, node, 0};
    link *l;
    char *r;
    lm_msg *m;

    if (node == 0 || node == t->me || url == NULL || check_url(url) != LM_OK) {
        return LM_EINVAL;
    }
    if ((l = link_get(t, node)) == NULL || (r = strdup(url)) == NULL) {
        return LM_ENOMEM;
    }
    pthread_mutex_lock(&t->lock);
    free(l->route);
    l->route = r;
    pthread_mutex_unlock(&t->lock);
    /* Ask the actor to connect now rather than at the first message. */
    if (lm_proto_encode(LM_MT_LINK_EVENT, t->actor, t->actor, &e, &m) == LM_OK) {
        m->flags |= LM_MSGF_LOCAL_ONLY;
        if (lm_deliver(t->rt, t->actor, m) != LM_OK) {
            lm_msg_release(m);
        }
    }
    return LM_OK;
}

void
lm_transport_forget_route(lm_transport *t, uint32_t node)
{
    link *l = link_find(t, node);

    pthread_mutex_lock(&t->lock);
    if (l != NULL) {
        free(l->route);
        l->route = NULL; /* no more requests: start_request needs a route */
    }
    pthread_mutex_unlock(&t->lock);
}

void
lm_transport_set_desk(lm_transport *t, lm_addr desk)
{
    /* release: a receive that sees the id sees a live actor's address */
    atomic_store_explicit(&t->desk, desk.actor, memory_order_release);
}

int
lm_transport_monitor(lm_transport *t, uint32_t node, lm_addr watcher)
{
    int rv = LM_OK;

    pthread_mutex_lock(&t->lock);
    if (t->nmon == t->mon_cap) {
        size_t cap = t->mon_cap ? t->mon_cap * 2 : 8;
        monitor *m = realloc(t->monitors, cap * sizeof(*m));
        if (m == NULL) {
            rv = LM_ENOMEM;
        } else {
            t->monitors = m;
            t->mon_cap = cap;
        }
    }
    if (rv == LM_OK) {
        t->monitors[t->nmon++] = (monitor){node, watcher};
    }
    pthread_mutex_unlock(&t->lock);
    return rv;
}

int
lm_transport_link_info(lm_transport *t, uint32_t node, lm_link_info *out)
{
    link *l = link_find(t, node);

    if (l == NULL) {
        return LM_ENOTFOUND;
    }
    out->node = node;
    out->up = get_state(l) == LINK_UP;
    out->incarnation = atomic_load(&l->peer_inc);
    out->msgs_out = atomic_load_explicit(&l->msgs_out, memory_order_relaxed);
    out->bytes_out = atomic_load_explicit(&l->bytes_out, memory_order_relaxed);
    out->msgs_in = atomic_load_explicit(&l->msgs_in, memory_order_relaxed);
    out->bytes_in = atomic_load_explicit(&l->bytes_in, memory_order_relaxed);
    out->malformed_in = atomic_load_explicit(&l->malformed, memory_order_relaxed);
    out->bounced = atomic_load_explicit(&l->bounced, memory_order_relaxed);
    out->queued_bytes = atomic_load(&l->queued);
    out->ups = atomic_load_explicit(&l->ups, memory_order_relaxed);
    pthread_mutex_lock(&t->lock);
    snprintf(out->last_error, sizeof(out->last_error), "%s", l->last_error);
    pthread_mutex_unlock(&t->lock);
    return LM_OK;
}

/* --- identifying a node ------------------------------------------------ */

/* An nng error as an LM_E* code. */
static int
from_nng(int rv)
{
    switch (rv) {
    case NNG_ETIMEDOUT: return LM_ETIMEDOUT;
    case NNG_EADDRINVAL:
    case NNG_EINVAL:
    case NNG_ENOTSUP: return LM_EINVAL;
    case NNG_ENOMEM: return LM_ENOMEM;
    default: return LM_ETRANSPORT;
    }
}

/* The answer of the front door at url to a node-0 LINK_REQUEST (owned). */
static int
identify_answer(const char *url, lm_msg *m, uint32_t *node, lm_error *err)
{
    lm_link_refuse_msg rf;
    lm_error e;
    int rv;

    if ((rv = lm_proto_parse_envelope(m, FRONTDOOR_MAX, &e)) != LM_OK) {
        if (rv == LM_EVERSION) {
            return lm_error_set(err, LM_EVERSION,
                                "identify %s: the node speaks another protocol: %s", url, e.msg);
        }
        return lm_error_set(err, LM_EPROTO, "identify %s: not a Laminar front door's answer: %s",
                            url, e.msg);
    }
    if (m->type != LM_MT_LINK_REFUSE) {
        return lm_error_set(err, LM_EPROTO, "identify %s: the front door answered with %s", url,
                            lm_proto_type_name(m->type));
    }
    if ((rv = lm_decode_link_refuse(m, &rf, &e)) != LM_OK) {
        return lm_error_set(err, LM_EPROTO, "identify %s: bad answer: %s", url, e.msg);
    }
    if (rf.code == LM_EVERSION) {
        return lm_error_set(err, LM_EVERSION, "identify %s: refused: %.*s", url, (int)rf.reason.len,
                            rf.reason.ptr);
    }
    if (rf.code != LM_OK) {
        return lm_error_set(err, LM_ETRANSPORT, "identify %s: refused (%s): %.*s", url,
                            lm_errname((int)rf.code), (int)rf.reason.len, rf.reason.ptr);
    }
    if (rf.node == 0) {
        return lm_error_set(err, LM_EPROTO, "identify %s: the front door named no node id", url);
    }
    *node = rf.node;
    return LM_OK;
}

int
lm_transport_identify(const char *url, int timeout_ms, uint32_t *node, lm_error *err)
{
    lm_link_request_msg rq = {0, 0, lm_str_c(""), LM_PROTO_VERSION};
    int64_t deadline = lm_clock_mono_ms() + timeout_ms, left;
    nng_socket s;
    nng_msg *nm = NULL;
    lm_msg *m = NULL;
    const char *what = "cannot open a request socket";
    int rv;

    if (url == NULL || check_url(url) != LM_OK) {
        return lm_error_set(err, LM_EINVAL,
                            "identify: bad URL '%s' (want tcp://HOST:PORT or ipc:///PATH)",
                            url != NULL ? url : "");
    }
    if (timeout_ms <= 0) {
        return lm_error_set(err, LM_EINVAL, "identify %s: the timeout must be positive", url);
    }
    if ((rv = nng_req0_open(&s)) != 0) {
        return lm_error_set(err, from_nng(rv) == LM_ENOMEM ? LM_ENOMEM : LM_ETRANSPORT,
                            "identify %s: %s: %s", url, what, nng_strerror(rv));
    }
    /* Dial in the background (nobody there yet is not an error: nng keeps
     * trying, quickly), and wait for the request to go out and the answer
     * to come back within the one deadline. */
    what = "cannot dial";
    if ((rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, FRONTDOOR_MAX)) != 0 ||
        (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 20)) != 0 ||
        (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 200)) != 0 ||
        (rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms)) != 0 ||
        (rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        goto fail;
    }
    what = "cannot send the request";
    /* lm_msg_to_nng consumes m, even when it fails */
    if ((rv = lm_proto_encode(LM_MT_LINK_REQUEST, (lm_addr){0, 0}, (lm_addr){0, 0}, &rq, &m)) !=
            LM_OK ||
        (rv = lm_msg_to_nng(m, &nm)) != LM_OK) {
        close_socket(NULL, s);
        return lm_error_set(err, rv, "identify %s: %s: %s", url, what, lm_strerror(rv));
    }
    if ((rv = nng_sendmsg(s, nm, 0)) != 0) {
        nng_msg_free(nm);
        goto fail;
    }
    what = "no answer";
    left = deadline - lm_clock_mono_ms();
    if ((rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, left > 1 ? (nng_duration)left : 1)) != 0 ||
        (rv = nng_recvmsg(s, &nm, 0)) != 0) {
        goto fail;
    }
    close_socket(NULL, s);
    if ((rv = lm_msg_from_nng(nm, &m)) != LM_OK) {
        nng_msg_free(nm);
        return lm_error_set(err, rv, "identify %s: %s", url, lm_strerror(rv));
    }
    rv = identify_answer(url, m, node, err);
    lm_msg_release(m);
    return rv;
fail:
    close_socket(NULL, s);
    if (rv == NNG_ETIMEDOUT) {
        return lm_error_set(err, LM_ETIMEDOUT,
                            "identify %s: no answer within %d ms (nobody there, or not a Laminar "
                            "node)",
                            url, timeout_ms);
    }
    return lm_error_set(err, from_nng(rv), "identify %s: %s: %s", url, what, nng_strerror(rv));
}
