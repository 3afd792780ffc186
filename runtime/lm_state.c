/*
 * lm_state.c: state tables: a hash index over a dense array of entries,
 * time buckets for expiry, change tracking for incremental snapshots.
 *
 * Index: open addressing with linear probing over 64-bit slots holding
 * the upper 32 bits of the key's hash and the entry number + 1 (0 is
 * empty); deletion shifts the following run back, so there are no
 * tombstones in the index. Entries live in a dense array; freed entries
 * go on a free list. An entry's key and value share one allocation (the
 * value 8-byte aligned after the key).
 *
 * Expiry (EXPIRING tables): entries are grouped in buckets by exact time;
 * the buckets sit in a binary min-heap by time, and a small hash map finds
 * a time's bucket. An entry knows its bucket and its place in it, so
 * removal is O(1) (swap with the bucket's last entry).
 *
 * Snapshots: each entry carries "changed since the last snapshot" and
 * "present in the snapshot chain". A removal of an entry present in the
 * chain records a tombstone. An incremental snapshot writes the tombstones
 * and the changed entries (a key removed and added again is in both:
 * removals are applied first); a full one writes every entry. When the
 * changes since the last snapshot outgrow the table (a job that never
 * checkpoints), tracking stops and the next snapshot is a full one.
 *
 * File format: a 21-byte header ("LMT1", epoch u64 LE, previous epoch u64
 * LE, full u8) so that restore can walk the chain without decompressing,
 * then a zstd frame with its content checksum, of the msgpack array
 *   [name, kind, value_size, epoch, previous epoch, full,
 *    [key...] (removals), [[key, ts, value]...] (entries)];
 * the header's fields are repeated inside, under the checksum, so a
 * damaged header is detected too.
 */
#include "lm_state.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <zstd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "lm_mp.h"
#include "lm_state_int.h"

#define HDR_LEN            21
#define NAME_MAX_LEN       200
#define MAX_SNAPSHOT_BYTES (1ull << 36) /* 64 GiB uncompressed: beyond, the file is corrupt */
#define ZSTD_MAX_RATIO     32768ull     /* no zstd frame expands more than this */

typedef struct entry {
    uint8_t *kv;        /* key bytes, then the value (8-byte aligned) */
    uint64_t hash;      /* of the key */
    int64_t ts;         /* time (EXPIRING) */
    uint32_t klen;      /* key length */
    uint32_t vlen;      /* value length */
    uint32_t bucket;    /* time bucket index (EXPIRING) */
    uint32_t bpos;      /* position in it */
    uint32_t next_free; /* free list link while unused */
    uint8_t live;       /* in use */
    uint8_t changed;    /* changed since the last snapshot */
    uint8_t in_chain;   /* written by a snapshot since the last full one */
} entry;

typedef struct bucket {
    int64_t ts;    /* the time of its entries */
    uint32_t *ids; /* entry numbers */
    uint32_t n, cap;
    uint32_t heap_pos; /* position in the heap, UINT32_MAX when free */
    uint32_t next_free;
} bucket;

struct lm_table {
    char name[NAME_MAX_LEN + 1];
    lm_table_kind kind;
    uint32_t value_size; /* 0: variable */
    entry *entries;      /* dense array */
    uint32_t nentries;   /* used length of the array (live + free) */
    uint32_t cap_entries;
    uint32_t free_entry; /* free list head, UINT32_MAX when empty */
    uint64_t live;       /* live entries */
    uint64_t bytes;      /* key + value bytes of live entries */
    uint64_t *slots;     /* index: (hash >> 32) << 32 | (entry + 1) */
    uint32_t nslots;     /* power of two */
    uint32_t *changed;   /* entries changed since the last snapshot */
    uint32_t nchanged, cap_changed;
    uint8_t **tombs; /* keys removed since the last snapshot: [u32 len][bytes] */
    uint32_t ntombs, cap_tombs;
    bucket *buckets; /* EXPIRING */
    uint32_t nbuckets, cap_buckets, free_bucket;
    uint32_t *heap; /* bucket indices, min-heap by ts */
    uint32_t nheap, cap_heap;
    uint64_t *bslots; /* ts -> bucket map: (bucket + 1), keyed by ts */
    int64_t *bkeys;
    uint32_t nbslots;
    uint32_t nbused;     /* occupied bslots (incl. deleted markers) */
    uint32_t since_full; /* snapshots since the last full one */
    bool untracked;      /* changes outgrew the table: the next snapshot is full */
    applog *log;         /* APPEND: the entries (none of the fields above are used) */
};

#define NONE UINT32_MAX

/* --- allocation helpers -------------------------------------------------- */

static int
grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    uint32_t c = *cap ? *cap : 16;
    void *np;
    if (need <= *cap) {
        return LM_OK;
    }
    while (c < need) {
        c *= 2;
    }
    if ((np = realloc(*p, (size_t)c * elem)) == NULL) {
        return LM_ENOMEM;
    }
    *p = np;
    *cap = c;
    return LM_OK;
}

static inline size_t
val_off(uint32_t klen)
{
    return ((size_t)klen + 7) & ~(size_t)7;
}

static inline uint8_t *
val_of(const entry *e)
{
    return e->kv + val_off(e->klen);
}

/* --- table --------------------------------------------------------------- */

int
lm_table_new(lm_table_kind kind, const char *name, uint32_t value_size, lm_table **out)
{
    lm_table *t;
    size_t n = strlen(name);

    if (n == 0 || n > NAME_MAX_LEN ||
        (kind != LM_TABLE_GLOBAL && kind != LM_TABLE_EXPIRING && kind != LM_TABLE_APPEND) ||
        (kind == LM_TABLE_APPEND && value_size != 0)) {
        return LM_EINVAL;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        return LM_ENOMEM;
    }
    memcpy(t->name, name, n + 1);
    t->kind = kind;
    t->value_size = value_size;
    t->free_entry = NONE;
    t->free_bucket = NONE;
    t->nslots = 64;
    if ((t->slots = calloc(t->nslots, sizeof(uint64_t))) == NULL ||
        (kind == LM_TABLE_APPEND && applog_new(&t->log) != LM_OK)) {
        free(t->slots);
        free(t);
        return LM_ENOMEM;
    }
    *out = t;
    return LM_OK;
}

static void
clear_all(lm_table *t)
{
    for (uint32_t i = 0; i < t->nentries; i++) {
        if (t->entries[i].live) {
            free(t->entries[i].kv);
        }
    }
    for (uint32_t i = 0; i < t->ntombs; i++) {
        free(t->tombs[i]);
    }
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        free(t->buckets[i].ids);
    }
    t->nentries = 0;
    t->free_entry = NONE;
    t->live = 0;
    t->bytes = 0;
    memset(t->slots, 0, (size_t)t->nslots * sizeof(uint64_t));
    t->nchanged = 0;
    t->ntombs = 0;
    t->nbuckets = 0;
    t->free_bucket = NONE;
    t->nheap = 0;
    if (t->bslots != NULL) {
        memset(t->bslots, 0, (size_t)t->nbslots * sizeof(uint64_t));
    }
    t->nbused = 0;
}

void
lm_table_free(lm_table *t)
{
    if (t == NULL) {
        return;
    }
    clear_all(t);
    applog_free(t->log);
    free(t->entries);
    free(t->slots);
    free(t->changed);
    free(t->tombs);
    free(t->buckets);
    free(t->heap);
    free(t->bslots);
    free(t->bkeys);
    free(t);
}

const char *
lm_table_name(const lm_table *t)
{
    return t->name;
}

lm_table_kind
lm_table_kind_of(const lm_table *t)
{
    return t->kind;
}

uint64_t
lm_table_count(const lm_table *t)
{
    return t->log != NULL ? applog_count(t->log) : t->live;
}

uint64_t
lm_table_bytes(const lm_table *t)
{
    return t->log != NULL ? applog_bytes(t->log) : t->bytes;
}

int
lm_table_append(lm_table *t, int64_t ts, const void *val, uint32_t vlen, uint64_t *seq)
{
    return t->log != NULL ? applog_append(t->log, ts, val, vlen, seq) : LM_EINVAL;
}

int
lm_table_at(lm_table *t, uint64_t seq, const void **val, uint32_t *vlen, int64_t *ts)
{
    return t->log != NULL ? applog_at(t->log, seq, val, vlen, ts) : LM_ENOTFOUND;
}

int
lm_table_remove_at(lm_table *t, uint64_t seq)
{
    return t->log != NULL ? applog_remove(t->log, seq) : LM_ENOTFOUND;
}

uint64_t
lm_table_first_seq(const lm_table *t)
{
    return t->log != NULL ? applog_first_seq(t->log) : 0;
}

uint64_t
lm_table_next_seq(const lm_table *t)
{
    return t->log != NULL ? applog_next_seq(t->log) : 0;
}

/* --- index ---------------------------------------------------------------- */

static inline uint64_t
hash_key(const void *key, uint32_t klen)
{
    return XXH3_64bits(key, klen);
}

/* The slot holding key, or the empty slot where it would go. */
static uint32_t
probe(const lm_table *t, const void *key, uint32_t klen, uint64_t h, bool *found)
{
    uint32_t mask = t->nslots - 1;
    uint32_t i = (uint32_t)h & mask;
    uint64_t tag = h >> 32;

    for (;;) {
        uint64_t s = t->slots[i];
        if (s == 0) {
            *found = false;
            return i;
        }
        if ((s >> 32) == tag) {
            const entry *e = &t->entries[(uint32_t)s - 1];
            if (e->klen == klen && memcmp(e->kv, key, klen) == 0) {
                *found = true;
                return i;
            }
        }
        i = (i + 1) & mask;
    }
}

static int
resize_index(lm_table *t, uint32_t nslots)
{
    uint64_t *ns = calloc(nslots, sizeof(uint64_t));
    uint32_t mask = nslots - 1;

    if (ns == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < t->nslots; i++) {
        uint64_t s = t->slots[i];
        if (s != 0) {
            uint32_t j = (uint32_t)t->entries[(uint32_t)s - 1].hash & mask;
            while (ns[j] != 0) {
                j = (j + 1) & mask;
            }
            ns[j] = s;
        }
    }
    free(t->slots);
    t->slots = ns;
    t->nslots = nslots;
    return LM_OK;
}

/* Removes slot i, shifting back the entries after it in its run. */
static void
index_remove(lm_table *t, uint32_t i)
{
    uint32_t mask = t->nslots - 1;
    uint32_t j = i;

    t->slots[i] = 0;
    for (;;) {
        uint32_t home;
        j = (j + 1) & mask;
        if (t->slots[j] == 0) {
            return;
        }
        home = (uint32_t)t->entries[(uint32_t)t->slots[j] - 1].hash & mask;
        /* Move j back to i when its home is not within (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            t->slots[i] = t->slots[j];
            t->slots[j] = 0;
            i = j;
        }
    }
}

/* --- time buckets ---------------------------------------------------------- */

static void
heap_swap(lm_table *t, uint32_t a, uint32_t b)
{
    uint32_t x = t->heap[a];
    t->heap[a] = t->heap[b];
    t->heap[b] = x;
    t->buckets[t->heap[a]].heap_pos = a;
    t->buckets[t->heap[b]].heap_pos = b;
}

static void
heap_up(lm_table *t, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (t->buckets[t->heap[p]].ts <= t->buckets[t->heap[i]].ts) {
            break;
        }
        heap_swap(t, i, p);
        i = p;
    }
}

static void
heap_down(lm_table *t, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->nheap && t->buckets[t->heap[l]].ts < t->buckets[t->heap[m]].ts) {
            m = l;
        }
        if (r < t->nheap && t->buckets[t->heap[r]].ts < t->buckets[t->heap[m]].ts) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(t, i, m);
        i = m;
    }
}

static uint64_t
hash_ts(int64_t ts)
{
    return XXH3_64bits(&ts, sizeof(ts));
}

/* The bslots index of ts, or of the empty slot where it would go. Deleted
 * map entries hold UINT64_MAX. */
static uint32_t
bmap_probe(const lm_table *t, int64_t ts, bool *found)
{
    uint32_t mask = t->nbslots - 1, i = (uint32_t)hash_ts(ts) & mask;
    uint32_t first_del = NONE;
    for (;;) {
        uint64_t s = t->bslots[i];
        if (s == 0) {
            *found = false;
            return first_del != NONE ? first_del : i;
        }
        if (s == UINT64_MAX) {
            if (first_del == NONE) {
                first_del = i;
            }
        } else if (t->bkeys[i] == ts) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int
bmap_resize(lm_table *t, uint32_t n)
{
    uint64_t *ns = calloc(n, sizeof(uint64_t));
    int64_t *nk = calloc(n, sizeof(int64_t));
    uint32_t old = t->nbslots;
    uint64_t *os = t->bslots;
    int64_t *ok = t->bkeys;

    if (ns == NULL || nk == NULL) {
        free(ns);
        free(nk);
        return LM_ENOMEM;
    }
    t->bslots = ns;
    t->bkeys = nk;
    t->nbslots = n;
    t->nbused = 0;
    for (uint32_t i = 0; i < old; i++) {
        if (os[i] != 0 && os[i] != UINT64_MAX) {
            bool f;
            uint32_t j = bmap_probe(t, ok[i], &f);
            t->bslots[j] = os[i];
            t->bkeys[j] = ok[i];
            t->nbused++;
        }
    }
    free(os);
    free(ok);
    return LM_OK;
}

/* The bucket for ts, made when absent. NONE when out of memory. */
static uint32_t
bucket_get(lm_table *t, int64_t ts)
{
    bool found;
    uint32_t i, b;

    if (t->nbslots == 0 || (t->nbused + 1) * 4 > t->nbslots * 3) {
        /* Rehash at a size for the live buckets (at most half full after):
         * deleted markers go, and the map shrinks when times have passed. */
        uint32_t n = 64;
        while ((uint64_t)(t->nheap + 1) * 2 > n) {
            n *= 2;
        }
        if (bmap_resize(t, n) != LM_OK) {
            return NONE;
        }
    }
    i = bmap_probe(t, ts, &found);
    if (found) {
        return (uint32_t)t->bslots[i] - 1;
    }
    if (t->free_bucket != NONE) {
        b = t->free_bucket;
        t->free_bucket = t->buckets[b].next_free;
    } else {
        if (grow((void **)&t->buckets, &t->cap_buckets, t->nbuckets + 1, sizeof(bucket)) != LM_OK) {
            return NONE;
        }
        b = t->nbuckets++;
        memset(&t->buckets[b], 0, sizeof(bucket));
    }
    if (grow((void **)&t->heap, &t->cap_heap, t->nheap + 1, sizeof(uint32_t)) != LM_OK) {
        t->buckets[b].next_free = t->free_bucket;
        t->free_bucket = b;
        return NONE;
    }
    t->buckets[b].ts = ts;
    t->buckets[b].n = 0;
    t->bslots[i] = (uint64_t)b + 1;
    t->bkeys[i] = ts;
    t->nbused++;
    t->heap[t->nheap] = b;
    t->buckets[b].heap_pos = t->nheap++;
    heap_up(t, t->buckets[b].heap_pos);
    return b;
}

/* Frees bucket b (empty): off the heap and the map. */
static void
bucket_release(lm_table *t, uint32_t b)
{
    bucket *bk = &t->buckets[b];
    uint32_t pos = bk->heap_pos;
    bool found;
    uint32_t i = bmap_probe(t, bk->ts, &found);

    if (found) {
        t->bslots[i] = UINT64_MAX;
    }
    if (pos != NONE) {
        t->nheap--;
        if (pos != t->nheap) {
            heap_swap(t, pos, t->nheap);
            heap_down(t, pos);
            heap_up(t, pos);
        }
    }
    bk->heap_pos = NONE;
    bk->next_free = t->free_bucket;
    t->free_bucket = b;
}

static int
bucket_add(lm_table *t, uint32_t id)
{
    entry *e = &t->entries[id];
    uint32_t b = bucket_get(t, e->ts);
    bucket *bk;

    if (b == NONE) {
        return LM_ENOMEM;
    }
    bk = &t->buckets[b];
    if (grow((void **)&bk->ids, &bk->cap, bk->n + 1, sizeof(uint32_t)) != LM_OK) {
        if (bk->n == 0) {
            bucket_release(t, b);
        }
        return LM_ENOMEM;
    }
    e->bucket = b;
    e->bpos = bk->n;
    bk->ids[bk->n++] = id;
    return LM_OK;
}

static void
bucket_remove(lm_table *t, uint32_t id)
{
    entry *e = &t->entries[id];
    bucket *bk = &t->buckets[e->bucket];
    uint32_t last = bk->ids[--bk->n];

    if (last != id) {
        bk->ids[e->bpos] = last;
        t->entries[last].bpos = e->bpos;
    }
    if (bk->n == 0) {
        bucket_release(t, e->bucket);
    }
}

/* --- changes ---------------------------------------------------------------- */

/* Forgets the change set: the next snapshot will be a full one, which
 * needs none. For when the changes outgrow the table, or memory runs out. */
static void
stop_tracking(lm_table *t)
{
    for (uint32_t i = 0; i < t->nchanged; i++) {
        t->entries[t->changed[i]].changed = 0;
    }
    t->nchanged = 0;
    for (uint32_t i = 0; i < t->ntombs; i++) {
        free(t->tombs[i]);
    }
    t->ntombs = 0;
    t->untracked = true;
}

/* The changes are worth tracking while they stay smaller than the table. */
static bool
tracking(lm_table *t)
{
    if (t->untracked) {
        return false;
    }
    if ((uint64_t)t->nchanged + t->ntombs > 2 * t->live + 1024) {
        stop_tracking(t);
        return false;
    }
    return true;
}

static void
mark_changed(lm_table *t, uint32_t id)
{
    entry *e = &t->entries[id];
    if (e->changed || !tracking(t)) {
        return;
    }
    if (grow((void **)&t->changed, &t->cap_changed, t->nchanged + 1, sizeof(uint32_t)) != LM_OK) {
        stop_tracking(t);
        return;
    }
    e->changed = 1;
    t->changed[t->nchanged++] = id;
}

static void
add_tombstone(lm_table *t, const void *key, uint32_t klen)
{
    uint8_t *k;
    if (!tracking(t)) {
        return;
    }
    if (grow((void **)&t->tombs, &t->cap_tombs, t->ntombs + 1, sizeof(uint8_t *)) != LM_OK ||
        (k = malloc(4 + (size_t)klen)) == NULL) {
        stop_tracking(t);
        return;
    }
    memcpy(k, &klen, 4);
    memcpy(k + 4, key, klen);
    t->tombs[t->ntombs++] = k;
}

/* --- access ----------------------------------------------------------------- */

/* Makes a new entry for key with a value of vlen bytes (zeroed or copied
 * from val). Returns its number, or NONE when out of memory. */
static uint32_t
insert(lm_table *t, uint32_t slot, const void *key, uint32_t klen, uint64_t h, int64_t ts,
       const void *val, uint32_t vlen)
{
    uint32_t id;
    entry *e;
    uint8_t *kv = malloc(val_off(klen) + (vlen > 0 ? vlen : 1));

    if (kv == NULL) {
        return NONE;
    }
    if (klen > 0) {
        memcpy(kv, key, klen);
    }
    if (val != NULL) {
        if (vlen > 0) {
            memcpy(kv + val_off(klen), val, vlen);
        }
    } else {
        memset(kv + val_off(klen), 0, vlen);
    }
    if (t->free_entry != NONE) {
        id = t->free_entry;
        t->free_entry = t->entries[id].next_free;
    } else {
        if (grow((void **)&t->entries, &t->cap_entries, t->nentries + 1, sizeof(entry)) != LM_OK) {
            free(kv);
            return NONE;
        }
        id = t->nentries++;
    }
    e = &t->entries[id];
    memset(e, 0, sizeof(*e));
    e->kv = kv;
    e->hash = h;
    e->ts = ts;
    e->klen = klen;
    e->vlen = vlen;
    e->live = 1;
    if (t->kind == LM_TABLE_EXPIRING && bucket_add(t, id) != LM_OK) {
        free(kv);
        e->live = 0;
        e->next_free = t->free_entry;
        t->free_entry = id;
        return NONE;
    }
    t->slots[slot] = ((h >> 32) << 32) | ((uint64_t)id + 1);
    t->live++;
    t->bytes += klen + vlen;
    mark_changed(t, id);
    return id;
}

/* Grows the index ahead of an insertion; *moved tells whether slots
 * moved (a slot found before must be looked up again). */
static int
reserve_one(lm_table *t, bool *moved)
{
    *moved = false;
    if ((t->live + 1) * 10 > (uint64_t)t->nslots * 7) {
        *moved = true;
        return resize_index(t, t->nslots * 2);
    }
    return LM_OK;
}

void *
lm_table_upsert(lm_table *t, const void *key, uint32_t klen, int64_t ts, bool *created)
{
    uint64_t h = hash_key(key, klen);
    bool found, moved;
    uint32_t slot, id;

    if (klen > LM_TABLE_KEY_MAX || t->value_size == 0) {
        return NULL;
    }
    slot = probe(t, key, klen, h, &found);
    if (found) {
        id = (uint32_t)t->slots[slot] - 1;
        *created = false;
        mark_changed(t, id);
        return val_of(&t->entries[id]);
    }
    if (reserve_one(t, &moved) != LM_OK) {
        return NULL;
    }
    if (moved) {
        slot = probe(t, key, klen, h, &found);
    }
    if ((id = insert(t, slot, key, klen, h, ts, NULL, t->value_size)) == NONE) {
        return NULL;
    }
    *created = true;
    return val_of(&t->entries[id]);
}

void *
lm_table_find(lm_table *t, const void *key, uint32_t klen)
{
    bool found;
    if (t->log != NULL) {
        return NULL;
    }
    uint32_t slot = probe(t, key, klen, hash_key(key, klen), &found);
    return found ? val_of(&t->entries[(uint32_t)t->slots[slot] - 1]) : NULL;
}

void
lm_table_touch(lm_table *t, const void *key, uint32_t klen)
{
    bool found;
    if (t->log != NULL) {
        return;
    }
    uint32_t slot = probe(t, key, klen, hash_key(key, klen), &found);
    if (found) {
        mark_changed(t, (uint32_t)t->slots[slot] - 1);
    }
}

/* Removes entry id found at index slot. */
static void
remove_entry(lm_table *t, uint32_t slot, uint32_t id)
{
    entry *e = &t->entries[id];

    if (e->in_chain) {
        add_tombstone(t, e->kv, e->klen);
    }
    if (t->kind == LM_TABLE_EXPIRING) {
        bucket_remove(t, id);
    }
    index_remove(t, slot);
    t->live--;
    t->bytes -= e->klen + e->vlen;
    free(e->kv);
    e->kv = NULL;
    e->live = 0;
    e->changed = 0; /* the change list skips dead entries */
    e->next_free = t->free_entry;
    t->free_entry = id;
}

/* Gives entry id the time ts: EXPIRING tables move it to ts's bucket.
 * LM_OK, or LM_ENOMEM with the entry as it was. */
static int
retime(lm_table *t, uint32_t id, int64_t ts)
{
    entry *e = &t->entries[id];
    uint32_t ob = e->bucket, opos = e->bpos, nb, npos;
    int64_t ots = e->ts;

    e->ts = ts;
    if (t->kind != LM_TABLE_EXPIRING) {
        return LM_OK;
    }
    if (bucket_add(t, id) != LM_OK) {
        e->ts = ots;
        return LM_ENOMEM;
    }
    /* in the new bucket now: leave the old one */
    nb = e->bucket;
    npos = e->bpos;
    e->bucket = ob;
    e->bpos = opos;
    bucket_remove(t, id);
    e->bucket = nb;
    e->bpos = npos;
    return LM_OK;
}

int
lm_table_put(lm_table *t, const void *key, uint32_t klen, int64_t ts, const void *val,
             uint32_t vlen)
{
    uint64_t h = hash_key(key, klen);
    bool found, moved;
    uint32_t slot;

    if (t->log != NULL || klen > LM_TABLE_KEY_MAX ||
        (t->value_size != 0 && vlen != t->value_size)) {
        return LM_EINVAL;
    }
    slot = probe(t, key, klen, h, &found);
    if (found) {
        /* Replace the value in the entry (same number, slot and chain
         * flag). The new value may come from the old one (lm_table_get):
         * the old bytes go only once the new ones are in, and nothing
         * changes when memory runs out. */
        uint32_t id = (uint32_t)t->slots[slot] - 1;
        entry *e = &t->entries[id];
        uint8_t *kv = NULL;
        if (e->vlen != vlen) {
            if ((kv = malloc(val_off(klen) + (vlen > 0 ? vlen : 1))) == NULL) {
                return LM_ENOMEM;
            }
            memcpy(kv, e->kv, klen);
            if (vlen > 0) {
                memcpy(kv + val_off(klen), val, vlen);
            }
        }
        if (e->ts != ts && retime(t, id, ts) != LM_OK) {
            free(kv);
            return LM_ENOMEM;
        }
        if (kv != NULL) {
            free(e->kv);
            e->kv = kv;
            t->bytes = t->bytes - e->vlen + vlen;
            e->vlen = vlen;
        } else if (vlen > 0) {
            memmove(val_of(e), val, vlen);
        }
        mark_changed(t, id);
        return LM_OK;
    }
    if (reserve_one(t, &moved) != LM_OK) {
        return LM_ENOMEM;
    }
    if (moved) {
        slot = probe(t, key, klen, h, &found);
    }
    return insert(t, slot, key, klen, h, ts, val, vlen) == NONE ? LM_ENOMEM : LM_OK;
}

int
lm_table_get(lm_table *t, const void *key, uint32_t klen, const void **val, uint32_t *vlen,
             int64_t *ts)
{
    bool found;
    uint32_t slot;
    entry *e;

    if (t->log != NULL) {
        return LM_EINVAL;
    }
    slot = probe(t, key, klen, hash_key(key, klen), &found);
    if (!found) {
        return LM_ENOTFOUND;
    }
    e = &t->entries[(uint32_t)t->slots[slot] - 1];
    *val = val_of(e);
    if (vlen != NULL) {
        *vlen = e->vlen;
    }
    if (ts != NULL) {
        *ts = e->ts;
    }
    return LM_OK;
}

int
lm_table_delete(lm_table *t, const void *key, uint32_t klen)
{
    bool found;
    uint32_t slot;

    if (t->log != NULL) {
        return LM_EINVAL;
    }
    slot = probe(t, key, klen, hash_key(key, klen), &found);
    if (!found) {
        return LM_ENOTFOUND;
    }
    remove_entry(t, slot, (uint32_t)t->slots[slot] - 1);
    return LM_OK;
}

int64_t
lm_table_min_time(const lm_table *t)
{
    if (t->log != NULL) {
        return applog_min_time(t->log);
    }
    return t->nheap > 0 ? t->buckets[t->heap[0]].ts : INT64_MAX;
}

int
lm_table_expire(lm_table *t, int64_t upto, lm_table_visit visit, void *arg)
{
    if (t->log != NULL) {
        return applog_expire(t->log, upto, visit, arg);
    }
    if (t->kind != LM_TABLE_EXPIRING) {
        return LM_EINVAL;
    }
    while (t->nheap > 0 && t->buckets[t->heap[0]].ts < upto) {
        uint32_t b = t->heap[0];
        /* Visit and remove the bucket's entries, last first (removal from
         * the end moves nothing). */
        while (t->buckets[b].heap_pos != NONE && t->buckets[b].n > 0) {
            bucket *bk = &t->buckets[b];
            uint32_t id = bk->ids[bk->n - 1];
            entry *e = &t->entries[id];
            bool found;
            uint32_t slot;
            int rv = visit != NULL ? visit(arg, e->kv, e->klen, e->ts, val_of(e), e->vlen) : 0;
            /* The visit may not change the table; the entry is still there. */
            slot = probe(t, e->kv, e->klen, e->hash, &found);
            remove_entry(t, slot, id);
            if (rv != 0) {
                return rv;
            }
        }
    }
    return 0;
}

int
lm_table_scan(lm_table *t, lm_table_visit visit, void *arg)
{
    if (t->log != NULL) {
        return applog_scan(t->log, visit, arg);
    }
    for (uint32_t i = 0; i < t->nentries; i++) {
        entry *e = &t->entries[i];
        if (e->live) {
            int rv = visit(arg, e->kv, e->klen, e->ts, val_of(e), e->vlen);
            if (rv != 0) {
                return rv;
            }
        }
    }
    return 0;
}

/* --- snapshots ----------------------------------------------------------------- */

static int
sbuf_pack_entry(msgpack_packer *pk, const entry *e)
{
    return msgpack_pack_array(pk, 3) || msgpack_pack_bin(pk, e->klen) ||
           msgpack_pack_bin_body(pk, e->kv, e->klen) || msgpack_pack_int64(pk, e->ts) ||
           msgpack_pack_bin(pk, e->vlen) || msgpack_pack_bin_body(pk, val_of(e), e->vlen);
}

static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* zstd level 1 with the frame's content checksum. Returns the compressed
 * size or a zstd error code. */
static size_t
compress_checked(void *dst, size_t cap, const void *src, size_t len)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t n;

    if (cc == NULL) {
        return (size_t)-1; /* ZSTD_isError */
    }
    n = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
    if (!ZSTD_isError(n)) {
        n = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    }
    if (!ZSTD_isError(n)) {
        n = ZSTD_compress2(cc, dst, cap, src, len);
    }
    ZSTD_freeCCtx(cc);
    return n;
}

int
lm_table_snapshot(lm_table *t, uint64_t epoch, uint64_t prev_epoch, uint8_t **out, size_t *len,
                  bool *full)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool f = t->kind == LM_TABLE_GLOBAL || prev_epoch == 0 || t->untracked ||
             t->since_full + 1 >= LM_TABLE_FULL_EVERY ||
             (uint64_t)t->nchanged + t->ntombs > t->live;
    uint32_t nent = 0;
    int bad = 0;
    size_t bound, clen;
    uint8_t *buf;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    bad |= msgpack_pack_array(&pk, 8);
    bad |= lm_mp_pack_str(&pk, t->name, strlen(t->name));
    bad |= msgpack_pack_uint32(&pk, (uint32_t)t->kind);
    bad |= msgpack_pack_uint32(&pk, t->value_size);
    bad |= msgpack_pack_uint64(&pk, epoch);
    bad |= msgpack_pack_uint64(&pk, f ? 0 : prev_epoch);
    bad |= f ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (t->log != NULL) {
        bad |= applog_pack(t->log, &pk, f) != LM_OK;
    } else if (f) {
        bad |= msgpack_pack_array(&pk, 0);
        bad |= msgpack_pack_array(&pk, (uint32_t)t->live);
        for (uint32_t i = 0; i < t->nentries && !bad; i++) {
            if (t->entries[i].live) {
                bad |= sbuf_pack_entry(&pk, &t->entries[i]);
                nent++;
            }
        }
    } else {
        bad |= msgpack_pack_array(&pk, t->ntombs);
        for (uint32_t i = 0; i < t->ntombs && !bad; i++) {
            uint32_t klen;
            memcpy(&klen, t->tombs[i], 4);
            bad |= msgpack_pack_bin(&pk, klen) || msgpack_pack_bin_body(&pk, t->tombs[i] + 4, klen);
        }
        for (uint32_t i = 0; i < t->nchanged; i++) {
            nent += t->entries[t->changed[i]].live && t->entries[t->changed[i]].changed;
        }
        bad |= msgpack_pack_array(&pk, nent);
        for (uint32_t i = 0; i < t->nchanged && !bad; i++) {
            const entry *e = &t->entries[t->changed[i]];
            if (e->live && e->changed) {
                bad |= sbuf_pack_entry(&pk, e);
            }
        }
    }
    if (bad) {
        msgpack_sbuffer_destroy(&sb);
        return LM_ENOMEM;
    }
    bound = ZSTD_compressBound(sb.size);
    if ((buf = malloc(HDR_LEN + bound)) == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return LM_ENOMEM;
    }
    clen = compress_checked(buf + HDR_LEN, bound, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (ZSTD_isError(clen)) {
        free(buf);
        return LM_ENOMEM;
    }
    memcpy(buf, "LMT1", 4);
    state_put_u64(buf + 4, epoch);
    state_put_u64(buf + 12, f ? 0 : prev_epoch);
    buf[20] = f ? 1 : 0;
    /* A new change set starts; what was written is in the chain now. */
    t->untracked = false;
    if (t->log != NULL) {
        applog_packed(t->log);
    }
    if (f) {
        for (uint32_t i = 0; i < t->nentries; i++) {
            t->entries[i].changed = 0;
            t->entries[i].in_chain = t->entries[i].live;
        }
        t->since_full = 0;
    } else {
        for (uint32_t i = 0; i < t->nchanged; i++) {
            entry *e = &t->entries[t->changed[i]];
            if (e->live) {
                e->changed = 0;
                e->in_chain = 1;
            }
        }
        t->since_full++;
    }
    t->nchanged = 0;
    for (uint32_t i = 0; i < t->ntombs; i++) {
        free(t->tombs[i]);
    }
    t->ntombs = 0;
    *out = buf;
    *len = HDR_LEN + clen;
    *full = f;
    return LM_OK;
}

int
lm_table_snapshot_info(const uint8_t *p, size_t len, uint64_t *epoch, bool *full,
                       uint64_t *prev_epoch, lm_error *err)
{
    if (len < HDR_LEN || memcmp(p, "LMT1", 4) != 0 || p[20] > 1) {
        return lm_error_set(err, LM_EPROTO, "not a table snapshot (bad header)");
    }
    *epoch = get_u64(p + 4);
    *prev_epoch = get_u64(p + 12);
    *full = p[20] == 1;
    if (!*full && (*prev_epoch == 0 || *prev_epoch >= *epoch)) {
        return lm_error_set(err, LM_EPROTO, "incremental snapshot %llu builds on epoch %llu",
                            (unsigned long long)*epoch, (unsigned long long)*prev_epoch);
    }
    return LM_OK;
}

int
lm_table_restore(lm_table *t, const uint8_t *p, size_t len, lm_error *err)
{
    uint64_t epoch, prev, size;
    bool full;
    uint8_t *raw;
    size_t got;
    lm_mpr r;
    const char *name;
    uint32_t nlen, n;
    uint64_t kind, vsize, in_epoch, in_prev;
    bool in_full;
    int rv;

    if ((rv = lm_table_snapshot_info(p, len, &epoch, &full, &prev, err)) != LM_OK) {
        return rv;
    }
    size = ZSTD_getFrameContentSize(p + HDR_LEN, len - HDR_LEN);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > MAX_SNAPSHOT_BYTES || size > (uint64_t)(len - HDR_LEN) * ZSTD_MAX_RATIO) {
        return lm_error_set(err, LM_EPROTO, "table snapshot: bad compressed data");
    }
    if ((raw = malloc(size > 0 ? size : 1)) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory restoring table '%s'", t->name);
    }
    got = ZSTD_decompress(raw, size, p + HDR_LEN, len - HDR_LEN);
    if (ZSTD_isError(got) || got != size) {
        free(raw);
        return lm_error_set(err, LM_EPROTO, "table snapshot: cannot decompress: %s",
                            ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size differs");
    }
    lm_mpr_init(&r, raw, got);
    if (lm_mpr_array_n(&r, 8) != LM_OK || lm_mpr_str(&r, &name, &nlen) != LM_OK ||
        lm_mpr_u64(&r, &kind) != LM_OK || lm_mpr_u64(&r, &vsize) != LM_OK ||
        lm_mpr_u64(&r, &in_epoch) != LM_OK || lm_mpr_u64(&r, &in_prev) != LM_OK ||
        lm_mpr_bool(&r, &in_full) != LM_OK) {
        rv = lm_mpr_error(&r, err, "table snapshot header");
        goto out;
    }
    if (in_epoch != epoch || in_prev != prev || in_full != full) {
        rv = lm_error_set(err, LM_EPROTO,
                          "table snapshot: the header does not match the "
                          "contents (damaged file)");
        goto out;
    }
    if (nlen != strlen(t->name) || memcmp(name, t->name, nlen) != 0 || kind != t->kind ||
        vsize != t->value_size) {
        rv = lm_error_set(err, LM_EPROTO,
                          "snapshot of table '%.*s' (kind %llu, values of %llu "
                          "bytes) does not fit table '%s'",
                          (int)nlen, name, (unsigned long long)kind, (unsigned long long)vsize,
                          t->name);
        goto out;
    }
    if (t->log != NULL) {
        rv = applog_restore(t->log, &r, full, err);
        if (rv == LM_OK && lm_mpr_remaining(&r) != 0) {
            rv = lm_error_set(err, LM_EPROTO, "table snapshot: %zu bytes after the contents",
                              (size_t)lm_mpr_remaining(&r));
        }
        if (rv == LM_OK) {
            t->since_full = full ? 0 : t->since_full + 1;
        }
        goto out;
    }
    if (full) {
        clear_all(t);
    }
    if (lm_mpr_array(&r, &n) != LM_OK) {
        rv = lm_mpr_error(&r, err, "table snapshot removals");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k;
        uint32_t klen;
        if (lm_mpr_bin(&r, &k, &klen) != LM_OK) {
            rv = lm_mpr_error(&r, err, "table snapshot removal");
            goto out;
        }
        lm_table_delete(t, k, klen);
    }
    if (lm_mpr_array(&r, &n) != LM_OK) {
        rv = lm_mpr_error(&r, err, "table snapshot entries");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        uint32_t klen, vlen;
        int64_t ts;
        if (lm_mpr_array_n(&r, 3) != LM_OK || lm_mpr_bin(&r, &k, &klen) != LM_OK ||
            lm_mpr_i64(&r, &ts) != LM_OK || lm_mpr_bin(&r, &v, &vlen) != LM_OK) {
            rv = lm_mpr_error(&r, err, "table snapshot entry");
            goto out;
        }
        if (klen > LM_TABLE_KEY_MAX || (t->value_size != 0 && vlen != t->value_size)) {
            rv = lm_error_set(err, LM_EPROTO, "table snapshot entry %u: bad key or value size", i);
            goto out;
        }
        if ((rv = lm_table_put(t, k, klen, ts, v, vlen)) != LM_OK) {
            lm_error_set(err, rv, "restoring table '%s': %s", t->name, lm_strerror(rv));
            goto out;
        }
    }
    if (lm_mpr_remaining(&r) != 0) {
        rv = lm_error_set(err, LM_EPROTO, "table snapshot: %zu bytes after the contents",
                          (size_t)lm_mpr_remaining(&r));
        goto out;
    }
    /* What came from the files is the chain: not changed since. */
    for (uint32_t i = 0; i < t->nentries; i++) {
        t->entries[i].changed = 0;
        t->entries[i].in_chain = t->entries[i].live;
    }
    t->nchanged = 0;
    for (uint32_t i = 0; i < t->ntombs; i++) {
        free(t->tombs[i]);
    }
    t->ntombs = 0;
    t->untracked = false;
    t->since_full = full ? 0 : t->since_full + 1;
    rv = LM_OK;
out:
    free(raw);
    return rv;
}
