/*
 * lm_scheduler.c: the scheduler actor: worker registry, heartbeats, slot
 * allocation (see lm_scheduler.h for the contract).
 *
 * Workers and allocations are small arrays: a cluster has tens of workers
 * and jobs, and every decision walks them. A worker's slot use is the sum
 * of the counts granted on it (worker_used), never a separate counter that
 * could drift from the grants. Database writes go to the metastore actor;
 * only registration waits for its answer (it gives the worker's id).
 */
#include "lm_scheduler.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lm_api.h"
#include "lm_log.h"
#include "lm_mem.h"
#include "lm_ms_actor.h"
#include "lm_proto.h"
#include "lm_time.h"

#define CHECK_TAG 1 /* the liveness timer */

enum wstate { W_REGISTERING, W_ALIVE, W_LOST, W_LEFT };
static const char *const wstate_name[] = {"registering", "alive", "lost", "left"};

typedef struct worker {
    uint64_t id; /* the store's id; 0 until registered */
    char *address, *data_address;
    lm_addr taskmgr, agent;
    uint64_t incarnation;
    uint32_t slots;
    enum wstate state;
    int64_t last_hb_ms, registered_ms; /* wall clock, for people */
    int64_t last_hb_mono;              /* monotonic, for the timeout */
    uint64_t reg_tag;                  /* the MS_CALL tag of a registration in flight */
} worker;

typedef struct alloc {
    uint64_t job;
    lm_addr ctl; /* the job controller */
    uint32_t parallelism;
    bool granted;
    uint32_t n;      /* workers granted */
    uint32_t *widx;  /* their indices in workers[] */
    uint32_t *count; /* slots on each */
    char wait[256];  /* the last SLOT_WAIT reason sent */
} alloc;

typedef struct sched {
    lm_scheduler_opts o;
    worker *w;
    uint32_t nw;
    size_t capw;
    alloc *a; /* in order of request */
    uint32_t na;
    size_t capa;
    uint64_t next_tag;
    uint64_t timer;
} sched;

static void
ms_write(lm_actor *self, sched *s, const char *op, json_t *args)
{
    if (args == NULL || lm_ms_call(lm_actor_rt(self), lm_actor_addr(self), s->o.metastore, op, 0,
                                   args, NULL, NULL) != LM_OK) {
        LM_LOG(LM_LOG_WARN, "could not record %s in the metadata store", op);
    }
    json_decref(args);
}

/* --- allocations ---------------------------------------------------------- */

static alloc *
alloc_find(sched *s, uint64_t job)
{
    for (uint32_t i = 0; i < s->na; i++) {
        if (s->a[i].job == job) {
            return &s->a[i];
        }
    }
    return NULL;
}

/* The slots granted on worker wi. */
static uint32_t
worker_used(const sched *s, uint32_t wi)
{
    uint32_t used = 0;

    for (uint32_t i = 0; i < s->na; i++) {
        for (uint32_t k = 0; s->a[i].granted && k < s->a[i].n; k++) {
            used += s->a[i].widx[k] == wi ? s->a[i].count[k] : 0;
        }
    }
    return used;
}

static void
alloc_remove(sched *s, alloc *a)
{
    free(a->widx);
    free(a->count);
    size_t i = (size_t)(a - s->a);
    memmove(&s->a[i], &s->a[i + 1], (s->na - i - 1) * sizeof(alloc));
    s->na--;
}

/* A live worker with free slots, for place. */
typedef struct cand {
    uint32_t wi, free;
    uint64_t id;
} cand;

static int
cmp_free(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->free != b->free) {
        return a->free > b->free ? -1 : 1;
    }
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Places a: fills its workers and counts, which takes the slots, or writes
 * what is missing to why and returns false. */
static bool
place(sched *s, alloc *a, char *why, size_t cap)
{
    cand *c = malloc((s->nw + 1) * sizeof(cand));
    uint32_t nc = 0, p = a->parallelism, free_total = 0, alive = 0;

    if (c == NULL) {
        snprintf(why, cap, "out of memory");
        return false;
    }
    for (uint32_t i = 0; i < s->nw; i++) {
        if (s->w[i].state == W_ALIVE) {
            uint32_t used = worker_used(s, i);
            alive++;
            free_total += s->w[i].slots - used;
            if (s->w[i].slots > used) {
                c[nc++] = (cand){i, s->w[i].slots - used, s->w[i].id};
            }
        }
    }
    qsort(c, nc, sizeof(cand), cmp_free);
    for (uint32_t n = nc < p ? nc : p; n >= 1; n--) {
        bool fits = true;
        for (uint32_t k = 0; k < n && fits; k++) {
            fits = c[k].free >= p / n + (k < p % n ? 1 : 0);
        }
        if (!fits) {
            continue;
        }
        free(a->widx);
        free(a->count);
        a->widx = malloc(n * sizeof(uint32_t));
        a->count = malloc(n * sizeof(uint32_t));
        if (a->widx == NULL || a->count == NULL) {
            free(c);
            snprintf(why, cap, "out of memory");
            return false;
        }
        for (uint32_t k = 0; k < n; k++) {
            a->widx[k] = c[k].wi;
            a->count[k] = p / n + (k < p % n ? 1 : 0);
        }
        a->n = n;
        a->granted = true;
        free(c);
        return true;
    }
    free(c);
    snprintf(why, cap, "waiting for slots: needs %u, %u free on %u live worker%s", p, free_total,
             alive, alive == 1 ? "" : "s");
    return false;
}

static void
grant(lm_actor *self, sched *s, alloc *a)
{
    uint8_t *wb = malloc((size_t)a->n * LM_ADDR_WIRE_SIZE + 1);
    lm_addr *tms = malloc((size_t)a->n * sizeof(lm_addr) + 1);
    char placement[512];
    size_t off = 0;

    placement[0] = '\0';
    for (uint32_t k = 0; tms != NULL && k < a->n; k++) {
        tms[k] = s->w[a->widx[k]].taskmgr;
        off += (size_t)snprintf(
            placement + off, off < sizeof(placement) ? sizeof(placement) - off : 0,
            "%sworker %" PRIu64 " x%u", k > 0 ? ", " : "", s->w[a->widx[k]].id, a->count[k]);
        if (off >= sizeof(placement)) {
            off = sizeof(placement) - 1;
        }
    }
    if (wb == NULL || tms == NULL) {
        free(wb);
        free(tms);
        a->granted = false; /* the slots are free again; tried at the next change */
        return;
    }
    lm_addr_list_put(wb, tms, a->n);
    lm_slot_grant_msg g = {a->job, {wb, a->n * LM_ADDR_WIRE_SIZE}, lm_str_c(placement)};
    LM_LOG(LM_LOG_INFO, "job %" PRIu64 ": %u slots granted: %s", a->job, a->parallelism, placement);
    if (lm_tell(self, a->ctl, LM_MT_SLOT_GRANT, &g) != LM_OK) {
        alloc_remove(s, a);
    }
    free(wb);
    free(tms);
}

/* Tries every waiting request, oldest first. */
static void
schedule(lm_actor *self, sched *s)
{
    for (uint32_t i = 0; i < s->na; i++) {
        alloc *a = &s->a[i];
        char why[256];
        if (a->granted) {
            continue;
        }
        if (place(s, a, why, sizeof(why))) {
            uint32_t before = s->na;
            grant(self, s, a);
            if (s->na < before) {
                i--;
            }
        } else if (strcmp(why, a->wait) != 0) {
            lm_slot_wait_msg w = {a->job, lm_str_c(why)};
            snprintf(a->wait, sizeof(a->wait), "%s", why);
            lm_tell(self, a->ctl, LM_MT_SLOT_WAIT, &w);
        }
    }
}

static int
slot_request(lm_actor *self, sched *s, lm_msg *m)
{
    lm_slot_request_msg r;
    alloc *a;

    if (lm_decode_slot_request(m, &r, NULL) != LM_OK || r.parallelism == 0) {
        LM_LOG(LM_LOG_WARN, "bad SLOT_REQUEST dropped");
        return LM_OK;
    }
    if ((a = alloc_find(s, r.job)) != NULL) {
        alloc_remove(s, a);
    }
    if (lm_grow((void **)&s->a, &s->capa, s->na + 1, sizeof(alloc)) != LM_OK) {
        lm_slot_wait_msg w = {r.job, lm_str_c("the scheduler is out of memory; ask again")};
        lm_tell(self, m->src, LM_MT_SLOT_WAIT, &w);
        return LM_OK;
    }
    a = &s->a[s->na++];
    memset(a, 0, sizeof(*a));
    a->job = r.job;
    a->ctl = m->src;
    a->parallelism = r.parallelism;
    schedule(self, s);
    return LM_OK;
}

static int
slot_release(lm_actor *self, sched *s, lm_msg *m)
{
    lm_slot_release_msg r;
    alloc *a;

    if (lm_decode_slot_release(m, &r, NULL) == LM_OK && (a = alloc_find(s, r.job)) != NULL) {
        alloc_remove(s, a);
        schedule(self, s);
    }
    return LM_OK;
}

/* --- workers -------------------------------------------------------------- */

static worker *
worker_by_id(sched *s, uint64_t id)
{
    for (uint32_t i = 0; i < s->nw; i++) {
        if (s->w[i].id == id && id != 0) {
            return &s->w[i];
        }
    }
    return NULL;
}

/* Tells every live worker where the others are. */
static void
send_peers(lm_actor *self, sched *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL) {
        return;
    }
    for (uint32_t i = 0; i < s->nw; i++) {
        if (s->w[i].state == W_ALIVE) {
            fprintf(f, "%u=%s\n", s->w[i].taskmgr.node, s->w[i].address);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return;
    }
    lm_worker_peers_msg p = {{buf, (uint32_t)len}};
    for (uint32_t i = 0; i < s->nw; i++) {
        if (s->w[i].state == W_ALIVE) {
            lm_tell(self, s->w[i].agent, LM_MT_WORKER_PEERS, &p);
        }
    }
    free(buf);
}

/* Declares w lost (or left): frees its slots and tells the jobs on it. */
static void
worker_gone(lm_actor *self, sched *s, worker *w, enum wstate st, const char *why)
{
    uint32_t wi = (uint32_t)(w - s->w);

    if (w->state != W_ALIVE) {
        return;
    }
    w->state = st;
    LM_LOG(LM_LOG_WARN, "worker %" PRIu64 " (%s) %s: %s", w->id, w->address, wstate_name[st], why);
    ms_write(self, s, "worker.set_state",
             json_pack("{s:I, s:s}", "id", (json_int_t)w->id, "state", wstate_name[st]));
    for (uint32_t i = 0; i < s->na; i++) {
        alloc *a = &s->a[i];
        bool on = false;
        for (uint32_t k = 0; a->granted && k < a->n; k++) {
            on = on || a->widx[k] == wi;
        }
        if (on) {
            lm_worker_lost_msg l = {w->id, w->taskmgr.node, lm_str_c(why)};
            lm_tell(self, a->ctl, LM_MT_WORKER_LOST, &l);
            alloc_remove(s, a);
            i--;
        }
    }
    send_peers(self, s);
    schedule(self, s);
}

static int
worker_register(lm_actor *self, sched *s, lm_msg *m)
{
    lm_worker_register_msg r;
    worker *w = NULL;
    char addr[512], data[512];
    json_t *args;

    if (lm_decode_worker_register(m, &r, NULL) != LM_OK || r.address.len == 0 ||
        r.address.len >= sizeof(addr) || r.data_address.len >= sizeof(data)) {
        LM_LOG(LM_LOG_WARN, "bad WORKER_REGISTER from node %u dropped", m->src.node);
        return LM_OK;
    }
    snprintf(addr, sizeof(addr), "%.*s", (int)r.address.len, r.address.ptr);
    snprintf(data, sizeof(data), "%.*s", (int)r.data_address.len, r.data_address.ptr);
    for (uint32_t i = 0; i < s->nw; i++) {
        if (strcmp(s->w[i].address, addr) == 0) {
            w = &s->w[i];
        }
    }
    if (w != NULL && w->state == W_ALIVE && w->incarnation == r.incarnation) {
        /* the same process again (a retry that crossed our answer): it is
         * registered, its slots and jobs stay */
        lm_worker_registered_msg a = {w->id, LM_OK, lm_str_c(""),
                                      (uint64_t)s->o.heartbeat_interval_ms};
        w->agent = m->src;
        lm_tell(self, w->agent, LM_MT_WORKER_REGISTERED, &a);
        return LM_OK;
    }
    if (w != NULL && w->state == W_ALIVE) {
        worker_gone(self, s, w, W_LOST, "it registered again from a new process");
    }
    if (w == NULL) {
        if (lm_grow((void **)&s->w, &s->capw, s->nw + 1, sizeof(worker)) != LM_OK) {
            return LM_OK;
        }
        w = &s->w[s->nw];
        memset(w, 0, sizeof(*w));
        if ((w->address = strdup(addr)) == NULL) {
            return LM_OK;
        }
        s->nw++;
    }
    free(w->data_address);
    w->data_address = strdup(data);
    w->taskmgr = r.taskmgr;
    w->agent = m->src;
    w->incarnation = r.incarnation;
    w->slots = r.slots;
    w->state = W_REGISTERING;
    w->reg_tag = ++s->next_tag;
    args = json_pack("{s:s, s:s, s:I}", "address", addr, "data_address", data, "slots",
                     (json_int_t)r.slots);
    if (args == NULL || lm_ms_call(lm_actor_rt(self), lm_actor_addr(self), s->o.metastore,
                                   "worker.register", w->reg_tag, args, NULL, NULL) != LM_OK) {
        LM_LOG(LM_LOG_ERROR, "cannot record worker %s in the metadata store", addr);
        w->state = W_LOST;
    }
    json_decref(args);
    return LM_OK;
}

/* The store answered a registration: the worker is alive with its id. */
static int
ms_reply(lm_actor *self, sched *s, lm_msg *m)
{
    uint64_t tag;
    int code;
    char *error = NULL;
    json_t *res = NULL;
    worker *w = NULL;

    if (lm_ms_reply_decode(m, &tag, &code, &error, &res) != LM_OK) {
        return LM_OK;
    }
    for (uint32_t i = 0; i < s->nw; i++) {
        if (s->w[i].reg_tag == tag && s->w[i].state == W_REGISTERING) {
            w = &s->w[i];
        }
    }
    if (w != NULL) {
        json_int_t id = json_integer_value(json_object_get(res, "id"));
        if (code != LM_OK || id <= 0) {
            lm_worker_registered_msg a = {0, code != LM_OK ? code : LM_EIO,
                                          lm_str_c(error != NULL ? error : "no id"),
                                          (uint64_t)s->o.heartbeat_interval_ms};
            LM_LOG(LM_LOG_ERROR, "cannot register worker %s: %s", w->address,
                   error != NULL ? error : "no id");
            w->state = W_LOST;
            lm_tell(self, w->agent, LM_MT_WORKER_REGISTERED, &a);
        } else {
            lm_worker_registered_msg a = {(uint64_t)id, LM_OK, lm_str_c(""),
                                          (uint64_t)s->o.heartbeat_interval_ms};
            w->id = (uint64_t)id;
            w->state = W_ALIVE;
            w->last_hb_ms = w->registered_ms = lm_clock_wall_ms();
            w->last_hb_mono = lm_clock_mono_ms();
            LM_LOG(LM_LOG_INFO, "worker %" PRIu64 " registered: %s, node %u, %u slots", w->id,
                   w->address, w->taskmgr.node, w->slots);
            lm_tell(self, w->agent, LM_MT_WORKER_REGISTERED, &a);
            send_peers(self, s);
            schedule(self, s);
        }
    }
    free(error);
    json_decref(res);
    return LM_OK;
}

static int
worker_heartbeat(lm_actor *self, sched *s, lm_msg *m)
{
    lm_worker_heartbeat_msg h;
    worker *w;

    if (lm_decode_worker_heartbeat(m, &h, NULL) != LM_OK) {
        return LM_OK;
    }
    w = worker_by_id(s, h.worker);
    if (w == NULL || w->state != W_ALIVE || w->incarnation != h.incarnation) {
        lm_worker_registered_msg a = {h.worker, LM_ENOTFOUND,
                                      lm_str_c("unknown worker: register again"),
                                      (uint64_t)s->o.heartbeat_interval_ms};
        if (w == NULL || w->state != W_REGISTERING) {
            lm_tell(self, m->src, LM_MT_WORKER_REGISTERED, &a);
        }
        return LM_OK;
    }
    w->last_hb_ms = lm_clock_wall_ms();
    w->last_hb_mono = lm_clock_mono_ms();
    ms_write(self, s, "worker.heartbeat", json_pack("{s:I}", "id", (json_int_t)w->id));
    return LM_OK;
}

static int
worker_leave(lm_actor *self, sched *s, lm_msg *m)
{
    lm_worker_leave_msg l;
    worker *w;
    char why[256];

    if (lm_decode_worker_leave(m, &l, NULL) == LM_OK && (w = worker_by_id(s, l.worker)) != NULL) {
        snprintf(why, sizeof(why), "it left: %.*s", (int)l.reason.len, l.reason.ptr);
        worker_gone(self, s, w, W_LEFT, why);
    }
    return LM_OK;
}

static void
check_liveness(lm_actor *self, sched *s)
{
    int64_t now = lm_clock_mono_ms(); /* a clock step must not lose workers */

    for (uint32_t i = 0; i < s->nw; i++) {
        worker *w = &s->w[i];
        if (w->state == W_ALIVE && now - w->last_hb_mono > s->o.heartbeat_timeout_ms) {
            char why[160];
            snprintf(why, sizeof(why), "no heartbeat for %.1f s (timeout %.1f s)",
                     (double)(now - w->last_hb_mono) / 1000.0,
                     (double)s->o.heartbeat_timeout_ms / 1000.0);
            worker_gone(self, s, w, W_LOST, why);
        }
    }
}

/* --- REST ----------------------------------------------------------------- */

static int
api_workers(sched *s, lm_api_pending *p)
{
    json_t *arr = json_array();

    for (uint32_t i = 0; arr != NULL && i < s->nw; i++) {
        worker *w = &s->w[i];
        if (w->id == 0) {
            continue;
        }
        json_array_append_new(
            arr,
            json_pack("{s:I, s:s, s:s, s:I, s:i, s:i, s:s, s:I, s:I}", "id", (json_int_t)w->id,
                      "address", w->address, "data_address",
                      w->data_address != NULL ? w->data_address : "", "node",
                      (json_int_t)w->taskmgr.node, "slots", (int)w->slots, "slots_used",
                      (int)worker_used(s, i), "state", wstate_name[w->state], "last_heartbeat_at",
                      (json_int_t)w->last_hb_ms, "registered_at", (json_int_t)w->registered_ms));
    }
    if (arr == NULL) {
        return lm_api_complete_error(p, 500, "internal", "out of memory");
    }
    return lm_api_complete(p, 200, json_pack("{s:o}", "workers", arr));
}

static int
api_call(sched *s, lm_msg *m)
{
    lm_api_call_msg c;

    if (lm_decode_api_call(m, &c, NULL) != LM_OK || c.pending == 0) {
        return LM_OK;
    }
    lm_api_pending *p = (lm_api_pending *)(uintptr_t)c.pending;
    if (c.op == LM_API_OP_WORKERS) {
        api_workers(s, p);
    } else {
        lm_api_complete_error(p, 500, "internal", "the scheduler does not answer op %u", c.op);
    }
    return LM_OK;
}

/* --- the actor ------------------------------------------------------------- */

static int
sched_init(lm_actor *self, void *arg)
{
    sched *s = arg;
    int rv;

    lm_actor_set_state(self, s);
    rv = lm_timer_start(self, (uint64_t)s->o.heartbeat_interval_ms,
                        (uint64_t)s->o.heartbeat_interval_ms, CHECK_TAG, &s->timer);
    if (rv != LM_OK) {
        free(s);
    }
    return rv;
}

static int
sched_handle(lm_actor *self, lm_msg *m)
{
    sched *s = lm_actor_state(self);

    switch (m->type) {
    case LM_MT_WORKER_REGISTER: return worker_register(self, s, m);
    case LM_MT_WORKER_HEARTBEAT: return worker_heartbeat(self, s, m);
    case LM_MT_WORKER_LEAVE: return worker_leave(self, s, m);
    case LM_MT_MS_REPLY: return ms_reply(self, s, m);
    case LM_MT_SLOT_REQUEST: return slot_request(self, s, m);
    case LM_MT_SLOT_RELEASE: return slot_release(self, s, m);
    case LM_MT_API_CALL: return api_call(s, m);
    case LM_MT_TIMER: check_liveness(self, s); return LM_OK;
    case LM_MT_STOP: lm_actor_stop(self); return LM_OK;
    case LM_MT_UNDELIVERABLE: {
        lm_undeliverable_msg u;
        if (lm_decode_undeliverable(m, &u, NULL) == LM_OK) {
            LM_LOG(LM_LOG_DEBUG, "%s to node %u undeliverable: %.*s", lm_proto_type_name(u.type),
                   u.dst.node, (int)u.reason.len, u.reason.ptr);
        }
        return LM_OK;
    }
    default: return LM_OK;
    }
}

static void
sched_fini(lm_actor *self)
{
    sched *s = lm_actor_state(self);

    for (uint32_t i = 0; i < s->nw; i++) {
        free(s->w[i].address);
        free(s->w[i].data_address);
    }
    for (uint32_t i = 0; i < s->na; i++) {
        free(s->a[i].widx);
        free(s->a[i].count);
    }
    free(s->w);
    free(s->a);
    free(s);
}

static const lm_actor_type sched_type = {"scheduler", sched_init, sched_handle, sched_fini};

int
lm_scheduler_spawn(lm_rt *rt, const lm_scheduler_opts *opts, lm_addr *out)
{
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    sched *s;
    int rv;

    if (opts == NULL || opts->heartbeat_interval_ms <= 0 || opts->heartbeat_timeout_ms <= 0) {
        return LM_EINVAL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        return LM_ENOMEM;
    }
    s->o = *opts;
    so.loop = opts->loop;
    so.name = "scheduler";
    if ((rv = lm_spawn(rt, &sched_type, s, &so, out)) != LM_OK) {
        free(s);
    }
    return rv;
}
