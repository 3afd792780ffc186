/*
 * lm_state_append.c: the append log behind APPEND tables.
 *
 * Entries are numbered from 1 in the order they are appended. Their
 * descriptors sit in a ring indexed by sequence number, covering the
 * numbers from the oldest that may still be present (first) to the next
 * one (next); their bytes are copied into large chunks, filled in order
 * and freed, oldest first, once every entry in them is gone. Expiry walks
 * from the oldest entry and stops at the first one whose time has not
 * come, so appending, reading by number and expiring touch memory in the
 * order it was written, and nothing is hashed.
 *
 * Changes for incremental snapshots: the entries numbered from the last
 * snapshot's `next` on are new; entries removed by number before that are
 * listed; entries gone by expiry are those below the new `first`.
 */
#include "lm_state_int.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (256u << 10)
#define MAX_SPAN    (1ull << 32) /* most numbers the ring covers at once */

typedef struct aent {
    int64_t ts;
    uint8_t *p;   /* the value's bytes, in a chunk */
    uint32_t len; /* value length */
    uint8_t live; /* present */
} aent;

typedef struct chunk {
    uint8_t *mem;
    size_t used, cap;
    uint64_t last_seq; /* the highest number stored in it */
} chunk;

struct applog {
    aent *ring;     /* entry of number s at ring[s & mask], for first <= s < next */
    uint64_t mask;  /* ring size - 1 (a power of two) */
    uint64_t first; /* the oldest number that may be present */
    uint64_t next;  /* the number of the next entry */
    chunk *chunks;  /* oldest first, from chead on */
    uint32_t chead, nchunks, cchunks;
    uint64_t live, bytes;
    uint64_t snap_next; /* `next` at the last snapshot */
    uint64_t *removed;  /* numbers below snap_next removed since */
    uint32_t nremoved, cremoved;
};

int
applog_new(applog **out)
{
    applog *l = calloc(1, sizeof(*l));

    if (l == NULL || (l->ring = calloc(64, sizeof(aent))) == NULL) {
        free(l);
        return LM_ENOMEM;
    }
    l->mask = 63;
    l->first = l->next = l->snap_next = 1;
    *out = l;
    return LM_OK;
}

void
applog_clear(applog *l)
{
    for (uint32_t i = l->chead; i < l->nchunks; i++) {
        free(l->chunks[i].mem);
    }
    l->chead = l->nchunks = 0;
    memset(l->ring, 0, (size_t)(l->mask + 1) * sizeof(aent));
    l->first = l->next = l->snap_next = 1;
    l->live = l->bytes = 0;
    l->nremoved = 0;
}

void
applog_free(applog *l)
{
    if (l == NULL) {
        return;
    }
    applog_clear(l);
    free(l->chunks);
    free(l->ring);
    free(l->removed);
    free(l);
}

uint64_t
applog_count(const applog *l)
{
    return l->live;
}

uint64_t
applog_bytes(const applog *l)
{
    return l->bytes;
}

uint64_t
applog_first_seq(const applog *l)
{
    return l->first;
}

uint64_t
applog_next_seq(const applog *l)
{
    return l->next;
}

/* Makes the ring cover numbers first .. first + span - 1. */
static int
ring_reserve(applog *l, uint64_t span)
{
    uint64_t n = l->mask + 1;
    aent *r;

    if (span <= n) {
        return LM_OK;
    }
    if (span > MAX_SPAN) {
        return LM_ENOMEM;
    }
    while (n < span) {
        n *= 2;
    }
    if ((r = calloc(n, sizeof(aent))) == NULL) {
        return LM_ENOMEM;
    }
    for (uint64_t s = l->first; s < l->next; s++) {
        r[s & (n - 1)] = l->ring[s & l->mask];
    }
    free(l->ring);
    l->ring = r;
    l->mask = n - 1;
    return LM_OK;
}

/* Room for len bytes at the end of the newest chunk (a new one if need
 * be). NULL when out of memory. */
static uint8_t *
chunk_room(applog *l, uint32_t len, uint64_t seq)
{
    chunk *c = l->nchunks > l->chead ? &l->chunks[l->nchunks - 1] : NULL;
    uint8_t *p;

    if (c == NULL || c->cap - c->used < len) {
        size_t cap = len > CHUNK_BYTES ? len : CHUNK_BYTES;
        if (l->chead > 0 && l->chead * 2 >= l->nchunks) {
            /* slide the live chunks to the front */
            memmove(l->chunks, l->chunks + l->chead, (l->nchunks - l->chead) * sizeof(chunk));
            l->nchunks -= l->chead;
            l->chead = 0;
        }
        if (l->nchunks == l->cchunks) {
            uint32_t n = l->cchunks ? l->cchunks * 2 : 8;
            chunk *nc = realloc(l->chunks, n * sizeof(chunk));
            if (nc == NULL) {
                return NULL;
            }
            l->chunks = nc;
            l->cchunks = n;
        }
        c = &l->chunks[l->nchunks];
        if ((c->mem = malloc(cap)) == NULL) {
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->last_seq = 0;
        l->nchunks++;
    }
    p = c->mem + c->used;
    c->used += len;
    if (seq > c->last_seq) {
        c->last_seq = seq;
    }
    return p;
}

/* Frees the chunks that hold nothing at or after `first` any more. */
static void
chunks_release(applog *l)
{
    while (l->chead < l->nchunks && l->chunks[l->chead].last_seq < l->first &&
           l->chead + 1 < l->nchunks) {
        free(l->chunks[l->chead].mem);
        l->chead++;
    }
    if (l->live == 0 && l->chead + 1 == l->nchunks) {
        l->chunks[l->chead].used = 0; /* empty: reuse the newest chunk from its start */
    }
}

/* Stores an entry at number seq (first <= seq, covered by the ring). */
static int
place(applog *l, uint64_t seq, int64_t ts, const void *val, uint32_t vlen)
{
    aent *e = &l->ring[seq & l->mask];
    uint8_t *p = chunk_room(l, vlen, seq);

    if (p == NULL) {
        return LM_ENOMEM;
    }
    if (vlen > 0) {
        memcpy(p, val, vlen);
    }
    e->ts = ts;
    e->p = p;
    e->len = vlen;
    e->live = 1;
    l->live++;
    l->bytes += vlen;
    return LM_OK;
}

int
applog_append(applog *l, int64_t ts, const void *val, uint32_t vlen, uint64_t *seq)
{
    int rv;

    if ((rv = ring_reserve(l, l->next - l->first + 1)) != LM_OK ||
        (rv = place(l, l->next, ts, val, vlen)) != LM_OK) {
        return rv;
    }
    *seq = l->next++;
    return LM_OK;
}

int
applog_at(const applog *l, uint64_t seq, const void **val, uint32_t *vlen, int64_t *ts)
{
    const aent *e;

    if (seq < l->first || seq >= l->next || !(e = &l->ring[seq & l->mask])->live) {
        return LM_ENOTFOUND;
    }
    *val = e->p;
    if (vlen != NULL) {
        *vlen = e->len;
    }
    if (ts != NULL) {
        *ts = e->ts;
    }
    return LM_OK;
}

int
applog_remove(applog *l, uint64_t seq)
{
    aent *e;

    if (seq < l->first || seq >= l->next || !(e = &l->ring[seq & l->mask])->live) {
        return LM_ENOTFOUND;
    }
    if (seq < l->snap_next) {
        if (l->nremoved == l->cremoved) {
            uint32_t n = l->cremoved ? l->cremoved * 2 : 64;
            uint64_t *r = realloc(l->removed, n * sizeof(uint64_t));
            if (r == NULL) {
                return LM_ENOMEM;
            }
            l->removed = r;
            l->cremoved = n;
        }
        l->removed[l->nremoved++] = seq;
    }
    e->live = 0;
    l->live--;
    l->bytes -= e->len;
    return LM_OK;
}

int64_t
applog_min_time(const applog *l)
{
    for (uint64_t s = l->first; s < l->next; s++) {
        const aent *e = &l->ring[s & l->mask];
        if (e->live) {
            return e->ts;
        }
    }
    return INT64_MAX;
}

int
applog_expire(applog *l, int64_t upto, lm_table_visit visit, void *arg)
{
    int rv = 0;

    while (l->first < l->next && rv == 0) {
        aent *e = &l->ring[l->first & l->mask];
        if (e->live) {
            uint8_t key[8];
            if (e->ts >= upto) {
                break;
            }
            state_put_u64(key, l->first);
            rv = visit != NULL ? visit(arg, key, 8, e->ts, e->p, e->len) : 0;
            e->live = 0;
            l->live--;
            l->bytes -= e->len;
        }
        l->first++;
    }
    chunks_release(l);
    return rv;
}

int
applog_scan(applog *l, lm_table_visit visit, void *arg)
{
    for (uint64_t s = l->first; s < l->next; s++) {
        aent *e = &l->ring[s & l->mask];
        if (e->live) {
            uint8_t key[8];
            int rv;
            state_put_u64(key, s);
            if ((rv = visit(arg, key, 8, e->ts, e->p, e->len)) != 0) {
                return rv;
            }
        }
    }
    return 0;
}

/* --- snapshots ----------------------------------------------------------- */

int
applog_pack(applog *l, msgpack_packer *pk, bool full)
{
    uint64_t from = full || l->snap_next < l->first ? l->first : l->snap_next, n = 0;
    int bad = 0;

    bad |= msgpack_pack_array(pk, 3);
    bad |= msgpack_pack_uint64(pk, l->first);
    bad |= msgpack_pack_uint64(pk, l->next);
    if (full) {
        bad |= msgpack_pack_array(pk, 0);
    } else {
        uint32_t k = 0;
        for (uint32_t i = 0; i < l->nremoved; i++) {
            k += l->removed[i] >= l->first; /* below first: gone anyway */
        }
        bad |= msgpack_pack_array(pk, k);
        for (uint32_t i = 0; i < l->nremoved && !bad; i++) {
            if (l->removed[i] >= l->first) {
                bad |= msgpack_pack_uint64(pk, l->removed[i]);
            }
        }
    }
    for (uint64_t s = from; s < l->next; s++) {
        n += l->ring[s & l->mask].live;
    }
    if (n > UINT32_MAX) {
        return LM_ENOMEM;
    }
    bad |= msgpack_pack_array(pk, (uint32_t)n);
    for (uint64_t s = from; s < l->next && !bad; s++) {
        const aent *e = &l->ring[s & l->mask];
        if (e->live) {
            bad |= msgpack_pack_array(pk, 3) || msgpack_pack_uint64(pk, s) ||
                   msgpack_pack_int64(pk, e->ts) || msgpack_pack_bin(pk, e->len) ||
                   msgpack_pack_bin_body(pk, e->p, e->len);
        }
    }
    return bad ? LM_ENOMEM : LM_OK;
}

void
applog_packed(applog *l)
{
    l->snap_next = l->next;
    l->nremoved = 0;
}

int
applog_restore(applog *l, lm_mpr *r, bool full, lm_error *err)
{
    uint64_t first, next, seq;
    uint32_t n;
    int rv;

    if (lm_mpr_array_n(r, 3) != LM_OK || lm_mpr_u64(r, &first) != LM_OK ||
        lm_mpr_u64(r, &next) != LM_OK) {
        return lm_mpr_error(r, err, "append table positions");
    }
    if (first == 0 || first > next || next - first > MAX_SPAN ||
        (!full && (first < l->first || next < l->next))) {
        return lm_error_set(err, LM_EPROTO,
                            "append table snapshot: entries %llu to %llu do not follow %llu to "
                            "%llu",
                            (unsigned long long)first, (unsigned long long)next,
                            (unsigned long long)l->first, (unsigned long long)l->next);
    }
    if (full) {
        applog_clear(l);
        l->first = l->next = first;
    } else {
        /* what is below first went by expiry */
        for (uint64_t s = l->first; s < first && s < l->next; s++) {
            aent *e = &l->ring[s & l->mask];
            if (e->live) {
                e->live = 0;
                l->live--;
                l->bytes -= e->len;
            }
        }
        l->first = first > l->next ? l->next : first;
    }
    if ((rv = ring_reserve(l, next - l->first)) != LM_OK) {
        return lm_error_set(err, rv, "append table snapshot: %llu entries: %s",
                            (unsigned long long)(next - l->first), lm_strerror(rv));
    }
    for (uint64_t s = l->next; s < next; s++) {
        l->ring[s & l->mask].live = 0;
    }
    l->next = next;
    l->first = first;
    if (lm_mpr_array(r, &n) != LM_OK) {
        return lm_mpr_error(r, err, "append table removals");
    }
    for (uint32_t i = 0; i < n; i++) {
        if (lm_mpr_u64(r, &seq) != LM_OK) {
            return lm_mpr_error(r, err, "append table removal");
        }
        applog_remove(l, seq); /* absent: nothing to do */
    }
    if (lm_mpr_array(r, &n) != LM_OK) {
        return lm_mpr_error(r, err, "append table entries");
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *v;
        uint32_t vlen;
        int64_t ts;
        if (lm_mpr_array_n(r, 3) != LM_OK || lm_mpr_u64(r, &seq) != LM_OK ||
            lm_mpr_i64(r, &ts) != LM_OK || lm_mpr_bin(r, &v, &vlen) != LM_OK) {
            return lm_mpr_error(r, err, "append table entry");
        }
        if (seq < first || seq >= next || l->ring[seq & l->mask].live) {
            return lm_error_set(err, LM_EPROTO,
                                "append table entry %u: number %llu is outside %llu to %llu or "
                                "given twice",
                                i, (unsigned long long)seq, (unsigned long long)first,
                                (unsigned long long)next);
        }
        if ((rv = place(l, seq, ts, v, vlen)) != LM_OK) {
            return lm_error_set(err, rv, "restoring an append table: %s", lm_strerror(rv));
        }
    }
    chunks_release(l);
    applog_packed(l);
    return LM_OK;
}
