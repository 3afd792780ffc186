/*
 * check_state.c: state tables (lm_state) and the local storage they are
 * checkpointed to (lm_storage).
 *
 * Tables: both kinds with fixed and variable values (upsert in place,
 * put/get/delete, find/touch, counts and bytes, scan), expiry (time order,
 * the `< upto` boundary, a visitor that stops early, min_time, memory that
 * stays bounded as times pass), snapshots (the full/incremental schedule
 * read back with lm_table_snapshot_info, thousands of seeded random
 * operations checked against a model after restoring the chain of every
 * epoch, recovery then more epochs, keys deleted and added again) and
 * every kind of bad input to restore (truncation at every length, flipped
 * bytes, other tables, hand-made files): LM_EPROTO with a message, never a
 * crash or a leak (the suite also runs under ASan).
 *
 * Storage: atomic replacement, parents made on write, failures that leave
 * the old file and no temporary behind, mkdirs, remove_tree (symlinks not
 * followed), reads of missing files, file:// paths.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>
#include <zstd.h>

#include "lm_state.h"
#include "lm_storage.h"

/* Check reports every passing ck_assert through a write to its pipe; the
 * loops here check millions of facts, so they use these, which call Check
 * only on failure. */
#define REQUIRE(c, ...)                                                                            \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            ck_abort_msg(__VA_ARGS__);                                                             \
        }                                                                                          \
    } while (0)
#define CHECK(c) REQUIRE(c, "Assertion '%s' failed", #c)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        REQUIRE(a_ == b_, "Assertion '%s == %s' failed: %lld != %lld", #a, #b, a_, b_);            \
    } while (0)
#define CHECK_NONNULL(p) REQUIRE((p) != NULL, "'%s' is NULL", #p)
#define CHECK_NULL(p)    REQUIRE((p) == NULL, "'%s' is not NULL", #p)

/* --- helpers ---------------------------------------------------------------- */

/* splitmix64: a small seeded generator, so every failure replays. */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t
rnd_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rnd(s) % n);
}

static lm_table *
new_table(lm_table_kind kind, const char *name, uint32_t vsize)
{
    lm_table *t = NULL;
    CHECK_EQ(lm_table_new(kind, name, vsize, &t), LM_OK);
    CHECK_NONNULL(t);
    return t;
}

static void
put_str(lm_table *t, const char *key, int64_t ts, const char *val)
{
    CHECK_EQ(lm_table_put(t, key, (uint32_t)strlen(key), ts, val, (uint32_t)strlen(val)), LM_OK);
}

/* Asserts that key holds val (and time ts unless ts is INT64_MIN). */
static void
expect_str(lm_table *t, const char *key, int64_t ts, const char *val)
{
    const void *v;
    uint32_t vlen;
    int64_t got_ts;
    int rv = lm_table_get(t, key, (uint32_t)strlen(key), &v, &vlen, &got_ts);
    REQUIRE(rv == LM_OK, "key '%s': %s", key, lm_errname(rv));
    CHECK_EQ(vlen, strlen(val));
    REQUIRE(memcmp(v, val, vlen) == 0, "key '%s': value '%.*s', expected '%s'", key, (int)vlen,
            (const char *)v, val);
    if (ts != INT64_MIN) {
        CHECK_EQ(got_ts, ts);
    }
}

static void
expect_absent(lm_table *t, const char *key)
{
    const void *v;
    CHECK_EQ(lm_table_get(t, key, (uint32_t)strlen(key), &v, NULL, NULL), LM_ENOTFOUND);
}

static int
count_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    (void)key;
    (void)klen;
    (void)ts;
    (void)val;
    (void)vlen;
    (*(uint64_t *)arg)++;
    return 0;
}

static uint64_t
scan_count(lm_table *t)
{
    uint64_t n = 0;
    CHECK_EQ(lm_table_scan(t, count_visit, &n), 0);
    return n;
}

/* A snapshot file kept by a test. */
typedef struct snap {
    uint8_t *p;
    size_t len;
    uint64_t epoch;
    bool full;
} snap;

static snap
take_snapshot(lm_table *t, uint64_t epoch, uint64_t prev)
{
    snap s = {NULL, 0, epoch, false};
    uint64_t ie, ip;
    bool ifull;
    lm_error err;

    CHECK_EQ(lm_table_snapshot(t, epoch, prev, &s.p, &s.len, &s.full), LM_OK);
    CHECK_NONNULL(s.p);
    CHECK_EQ(lm_table_snapshot_info(s.p, s.len, &ie, &ifull, &ip, &err), LM_OK);
    CHECK_EQ(ie, epoch);
    CHECK_EQ(ifull, s.full);
    CHECK_EQ(ip, s.full ? 0 : prev);
    return s;
}

static void
restore_ok(lm_table *t, const snap *s)
{
    lm_error err;
    lm_error_clear(&err);
    int rv = lm_table_restore(t, s->p, s->len, &err);
    REQUIRE(rv == LM_OK, "restoring epoch %" PRIu64 ": %s: %s", s->epoch, lm_errname(rv), err.msg);
}

/* --- table basics ------------------------------------------------------------ */

START_TEST(test_state_new_checks_its_arguments)
{
    char name[260];
    lm_table *t = NULL;

    CHECK_EQ(lm_table_new(LM_TABLE_GLOBAL, "", 0, &t), LM_EINVAL);
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    CHECK_EQ(lm_table_new(LM_TABLE_GLOBAL, name, 0, &t), LM_EINVAL);
    CHECK_EQ(lm_table_new((lm_table_kind)7, "x", 0, &t), LM_EINVAL);

    t = new_table(LM_TABLE_EXPIRING, "windows", 16);
    ck_assert_str_eq(lm_table_name(t), "windows");
    CHECK_EQ(lm_table_kind_of(t), LM_TABLE_EXPIRING);
    CHECK_EQ(lm_table_count(t), 0);
    CHECK_EQ(lm_table_bytes(t), 0);
    CHECK_EQ(lm_table_min_time(t), INT64_MAX);
    lm_table_free(t);
    lm_table_free(NULL);
}
END_TEST

/* Fixed-size values, both kinds: created zero-filled, updated in place
 * through the pointer, which stays valid across lookups (no insertion). */
START_TEST(test_state_upsert_updates_in_place)
{
    static const lm_table_kind kinds[] = {LM_TABLE_GLOBAL, LM_TABLE_EXPIRING};

    for (size_t k = 0; k < 2; k++) {
        lm_table *t = new_table(kinds[k], "agg", 16);
        bool created = false;
        uint64_t *a, *b, *f;
        const void *v;
        uint32_t vlen;
        int64_t ts;

        a = lm_table_upsert(t, "alpha", 5, 100, &created);
        CHECK_NONNULL(a);
        CHECK(created);
        CHECK_EQ(a[0], 0);
        CHECK_EQ(a[1], 0);
        a[0] = 41;
        a[1] = 7;
        CHECK_EQ(lm_table_count(t), 1);
        CHECK_EQ(lm_table_bytes(t), 5 + 16);

        /* Lookups, touches and upserts of an existing key insert nothing:
         * the pointer is still good. */
        CHECK_NULL(lm_table_find(t, "beta", 4));
        f = lm_table_find(t, "alpha", 5);
        CHECK_NONNULL(f);
        CHECK_EQ(f[0], 41);
        lm_table_touch(t, "alpha", 5);
        lm_table_touch(t, "missing", 7); /* no effect */
        b = lm_table_upsert(t, "alpha", 5, 999, &created);
        CHECK_NONNULL(b);
        CHECK(!created);
        CHECK_EQ(b[0], 41);
        a[0]++;
        CHECK_EQ(lm_table_get(t, "alpha", 5, &v, &vlen, &ts), LM_OK);
        CHECK_EQ(vlen, 16);
        CHECK_EQ(((const uint64_t *)v)[0], 42);
        CHECK_EQ(((const uint64_t *)v)[1], 7);
        if (kinds[k] == LM_TABLE_EXPIRING) {
            CHECK_EQ(ts, 100); /* the time it was created with */
            CHECK_EQ(lm_table_min_time(t), 100);
        }

        /* Values survive the table's growth. */
        for (uint32_t i = 0; i < 5000; i++) {
            uint64_t *p = lm_table_upsert(t, &i, sizeof(i), 1000 + i % 37, &created);
            CHECK_NONNULL(p);
            CHECK(created);
            p[0] = i * 3;
            p[1] = ~(uint64_t)i;
        }
        CHECK_EQ(lm_table_count(t), 5001);
        CHECK_EQ(lm_table_bytes(t), 5 + 16 + 5000 * (4 + 16));
        for (uint32_t i = 0; i < 5000; i++) {
            uint64_t *p = lm_table_find(t, &i, sizeof(i));
            CHECK_NONNULL(p);
            CHECK_EQ(p[0], i * 3);
            CHECK_EQ(p[1], ~(uint64_t)i);
        }
        f = lm_table_find(t, "alpha", 5);
        CHECK_EQ(f[0], 42);

        /* put works on fixed tables with the right size only; upsert does
         * not work on variable ones. */
        CHECK_EQ(lm_table_put(t, "gamma", 5, 1, "0123456789abcdef", 16), LM_OK);
        CHECK_EQ(lm_table_put(t, "gamma", 5, 1, "short", 5), LM_EINVAL);
        CHECK_EQ(lm_table_delete(t, "alpha", 5), LM_OK);
        CHECK_NULL(lm_table_find(t, "alpha", 5));
        CHECK_EQ(lm_table_count(t), 5001);
        lm_table_free(t);

        t = new_table(kinds[k], "var", 0);
        CHECK_NULL(lm_table_upsert(t, "alpha", 5, 1, &created));
        CHECK_EQ(lm_table_count(t), 0);
        lm_table_free(t);
    }
}
END_TEST

START_TEST(test_state_put_get_delete_variable_values)
{
    static const lm_table_kind kinds[] = {LM_TABLE_GLOBAL, LM_TABLE_EXPIRING};
    static uint8_t bigkey[LM_TABLE_KEY_MAX + 1];

    for (size_t k = 0; k < 2; k++) {
        lm_table *t = new_table(kinds[k], "buf", 0);
        const uint8_t zkey[3] = {0, 0, 1}, zval[4] = {0, 9, 0, 0};
        const void *v;
        uint32_t vlen;
        int64_t ts;

        put_str(t, "a", 10, "one");
        put_str(t, "b", 20, "");
        CHECK_EQ(lm_table_put(t, "", 0, 30, "empty key", 9), LM_OK);
        CHECK_EQ(lm_table_put(t, zkey, 3, 40, zval, 4), LM_OK);
        CHECK_EQ(lm_table_count(t), 4);
        CHECK_EQ(lm_table_bytes(t), 1 + 3 + 1 + 0 + 0 + 9 + 3 + 4);
        expect_str(t, "a", 10, "one");
        expect_str(t, "b", 20, "");
        expect_str(t, "", 30, "empty key");
        CHECK_EQ(lm_table_get(t, zkey, 3, &v, &vlen, &ts), LM_OK);
        CHECK_EQ(vlen, 4);
        ck_assert_mem_eq(v, zval, 4);
        CHECK_EQ(ts, 40);
        /* A key that is a prefix of another is another key. */
        CHECK_EQ(lm_table_get(t, zkey, 2, &v, &vlen, &ts), LM_ENOTFOUND);

        /* Overwrites: same size and time, another size, another time. */
        put_str(t, "a", 10, "uno");
        expect_str(t, "a", 10, "uno");
        put_str(t, "a", 10, "a longer value");
        expect_str(t, "a", 10, "a longer value");
        put_str(t, "a", 11, "x");
        expect_str(t, "a", 11, "x");
        /* The new value taken from the old one, with another size and time. */
        put_str(t, "a", 10, "a longer value");
        CHECK_EQ(lm_table_get(t, "a", 1, &v, &vlen, &ts), LM_OK);
        CHECK_EQ(lm_table_put(t, "a", 1, 13, (const uint8_t *)v + 2, 6), LM_OK);
        expect_str(t, "a", 13, "longer");
        CHECK_EQ(lm_table_get(t, "a", 1, &v, &vlen, &ts), LM_OK);
        CHECK_EQ(lm_table_put(t, "a", 1, 13, (const uint8_t *)v + 1, 5), LM_OK);
        expect_str(t, "a", 13, "onger");
        put_str(t, "a", 11, "x");
        CHECK_EQ(lm_table_count(t), 4);
        CHECK_EQ(lm_table_bytes(t), 1 + 1 + 1 + 0 + 0 + 9 + 3 + 4);

        CHECK_EQ(lm_table_delete(t, "a", 1), LM_OK);
        CHECK_EQ(lm_table_delete(t, "a", 1), LM_ENOTFOUND);
        CHECK_EQ(lm_table_delete(t, "zz", 2), LM_ENOTFOUND);
        expect_absent(t, "a");
        CHECK_EQ(lm_table_count(t), 3);
        CHECK_EQ(lm_table_bytes(t), 0 + 9 + 1 + 0 + 3 + 4);
        put_str(t, "a", 12, "back");
        expect_str(t, "a", 12, "back");

        /* The longest key, and one byte more. */
        memset(bigkey, 'k', sizeof(bigkey));
        CHECK_EQ(lm_table_put(t, bigkey, LM_TABLE_KEY_MAX, 1, "v", 1), LM_OK);
        CHECK_EQ(lm_table_get(t, bigkey, LM_TABLE_KEY_MAX, &v, &vlen, NULL), LM_OK);
        CHECK_EQ(lm_table_put(t, bigkey, LM_TABLE_KEY_MAX + 1, 1, "v", 1), LM_EINVAL);
        CHECK_EQ(lm_table_count(t), 5);
        CHECK_EQ(scan_count(t), 5);
        lm_table_free(t);
    }
}
END_TEST

/* The index against a model: many keys inserted, updated and deleted (the
 * deletions shift probe runs back), then every key looked up. */
START_TEST(test_state_index_matches_a_model)
{
    enum { NKEYS = 3000, OPS = 60000 };
    lm_table *t = new_table(LM_TABLE_GLOBAL, "idx", 8);
    static uint64_t model[NKEYS];
    static bool present[NKEYS];
    uint64_t seed = 42, n = 0, bytes = 0;

    memset(present, 0, sizeof(present));
    for (uint32_t op = 0; op < OPS; op++) {
        uint32_t k = rnd_below(&seed, NKEYS);
        char key[32];
        uint32_t klen = (uint32_t)snprintf(key, sizeof(key), "key-%u", k);
        if (rnd_below(&seed, 3) == 0) {
            CHECK_EQ(lm_table_delete(t, key, klen), present[k] ? LM_OK : LM_ENOTFOUND);
            if (present[k]) {
                n--;
                bytes -= klen + 8;
            }
            present[k] = false;
        } else {
            bool created;
            uint64_t *p = lm_table_upsert(t, key, klen, 0, &created);
            CHECK_NONNULL(p);
            CHECK_EQ(created, !present[k]);
            if (created) {
                n++;
                bytes += klen + 8;
                CHECK_EQ(*p, 0);
            } else {
                CHECK_EQ(*p, model[k]);
            }
            *p = model[k] = rnd(&seed);
            present[k] = true;
        }
    }
    CHECK_EQ(lm_table_count(t), n);
    CHECK_EQ(lm_table_bytes(t), bytes);
    CHECK_EQ(scan_count(t), n);
    for (uint32_t k = 0; k < NKEYS; k++) {
        char key[32];
        uint32_t klen = (uint32_t)snprintf(key, sizeof(key), "key-%u", k);
        uint64_t *p = lm_table_find(t, key, klen);
        if (present[k]) {
            REQUIRE(p != NULL && *p == model[k], "key %u", k);
        } else {
            REQUIRE(p == NULL, "deleted key %u found", k);
        }
    }
    lm_table_free(t);
}
END_TEST

typedef struct scan_state {
    uint32_t seen;
    uint32_t stop_after; /* 0: never */
    uint32_t mask;       /* bit per key 0..31 */
} scan_state;

static int
scan_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    scan_state *s = arg;
    uint32_t k;
    (void)ts;
    CHECK_EQ(klen, sizeof(k));
    CHECK_EQ(vlen, 8);
    memcpy(&k, key, sizeof(k));
    REQUIRE((s->mask & (1u << k)) == 0, "key %u visited twice", k);
    s->mask |= 1u << k;
    *(uint64_t *)val += 1000; /* scan may modify values */
    s->seen++;
    return s->stop_after != 0 && s->seen == s->stop_after ? 77 : 0;
}

START_TEST(test_state_scan_visits_each_entry_once_and_stops)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "scan", 8);
    scan_state s = {0, 0, 0};
    bool created;

    CHECK_EQ(lm_table_scan(t, scan_visit, &s), 0);
    CHECK_EQ(s.seen, 0);
    for (uint32_t k = 0; k < 20; k++) {
        uint64_t *p = lm_table_upsert(t, &k, sizeof(k), k % 4, &created);
        *p = k;
    }
    for (uint32_t k = 0; k < 20; k += 3) {
        CHECK_EQ(lm_table_delete(t, &k, sizeof(k)), LM_OK);
    }
    CHECK_EQ(lm_table_scan(t, scan_visit, &s), 0);
    CHECK_EQ(s.seen, 13);
    for (uint32_t k = 0; k < 20; k++) {
        uint64_t *p = lm_table_find(t, &k, sizeof(k));
        if (k % 3 == 0) {
            CHECK_NULL(p);
            CHECK((s.mask & (1u << k)) == 0);
        } else {
            CHECK_NONNULL(p);
            CHECK_EQ(*p, k + 1000);
        }
    }
    s = (scan_state){0, 5, 0};
    CHECK_EQ(lm_table_scan(t, scan_visit, &s), 77);
    CHECK_EQ(s.seen, 5);
    CHECK_EQ(lm_table_count(t), 13); /* scan removes nothing */
    lm_table_free(t);
}
END_TEST

/* --- expiry ------------------------------------------------------------------- */

typedef struct expire_log {
    int64_t ts[4096];
    uint32_t keys[4096];
    uint32_t n;
    uint32_t stop_at; /* return non-zero at this visit (1-based); 0: never */
} expire_log;

static int
expire_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    expire_log *l = arg;
    uint32_t k;
    (void)val;
    CHECK_EQ(klen, sizeof(k));
    CHECK_EQ(vlen, 8);
    memcpy(&k, key, sizeof(k));
    CHECK_EQ(*(const uint64_t *)val, (uint64_t)k * 10);
    ck_assert_uint_lt(l->n, 4096);
    l->keys[l->n] = k;
    l->ts[l->n++] = ts;
    return l->stop_at != 0 && l->n == l->stop_at ? -5 : 0;
}

START_TEST(test_state_expire_visits_oldest_first_below_the_bound)
{
    enum { N = 1000 };
    lm_table *t = new_table(LM_TABLE_EXPIRING, "win", 8);
    static expire_log log;
    static int64_t tsof[N];
    static bool gone[N];
    uint64_t seed = 7;
    bool created;

    memset(&log, 0, sizeof(log));
    memset(gone, 0, sizeof(gone));
    CHECK_EQ(lm_table_expire(t, INT64_MAX, expire_visit, &log), 0);
    CHECK_EQ(log.n, 0);
    /* Times in random order, many entries per time, negative times too. */
    for (uint32_t k = 0; k < N; k++) {
        uint64_t *p;
        tsof[k] = (int64_t)rnd_below(&seed, 200) - 50;
        p = lm_table_upsert(t, &k, sizeof(k), tsof[k], &created);
        *p = (uint64_t)k * 10;
    }
    {
        int64_t m = INT64_MAX;
        for (uint32_t k = 0; k < N; k++) {
            m = tsof[k] < m ? tsof[k] : m;
        }
        CHECK_EQ(lm_table_min_time(t), m);
    }

    /* Bounds never reached, then the bound equal to the oldest time: the
     * entries at exactly upto stay. */
    CHECK_EQ(lm_table_expire(t, -50, expire_visit, &log), 0);
    CHECK_EQ(log.n, 0);
    CHECK_EQ(lm_table_count(t), N);

    for (int64_t upto = -40; upto <= 160; upto += 40) {
        uint32_t expect = 0, before = log.n;
        for (uint32_t k = 0; k < N; k++) {
            if (!gone[k] && tsof[k] < upto) {
                expect++;
            }
        }
        CHECK_EQ(lm_table_expire(t, upto, expire_visit, &log), 0);
        CHECK_EQ(log.n - before, expect);
        for (uint32_t i = before; i < log.n; i++) {
            uint32_t k = log.keys[i];
            REQUIRE(!gone[k], "key %u visited twice", k);
            gone[k] = true;
            CHECK_EQ(log.ts[i], tsof[k]);
            ck_assert_int_lt(log.ts[i], upto);
            if (i > before) {
                ck_assert_int_le(log.ts[i - 1], log.ts[i]);
            }
            CHECK_NULL(lm_table_find(t, &k, sizeof(k)));
        }
        CHECK_EQ(lm_table_count(t), N - log.n);
        CHECK_EQ(lm_table_bytes(t), (uint64_t)(N - log.n) * (4 + 8));
        /* What is left is at upto or later. */
        ck_assert_int_ge(lm_table_min_time(t), upto);
    }
    CHECK_EQ(log.n, N);
    CHECK_EQ(lm_table_min_time(t), INT64_MAX);
    CHECK_EQ(lm_table_expire(t, INT64_MAX, NULL, NULL), 0);
    lm_table_free(t);
}
END_TEST

START_TEST(test_state_expire_visitor_stops_early)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "win", 8);
    static expire_log log;
    bool created;

    memset(&log, 0, sizeof(log));
    for (uint32_t k = 0; k < 10; k++) {
        uint64_t *p = lm_table_upsert(t, &k, sizeof(k), 100 + k, &created);
        *p = (uint64_t)k * 10;
    }
    log.stop_at = 3;
    CHECK_EQ(lm_table_expire(t, 1000, expire_visit, &log), -5);
    CHECK_EQ(log.n, 3);
    /* The three visited (including the one that stopped) are removed. */
    CHECK_EQ(lm_table_count(t), 7);
    for (uint32_t k = 0; k < 10; k++) {
        CHECK_EQ(lm_table_find(t, &k, sizeof(k)) == NULL, k < 3);
    }
    CHECK_EQ(lm_table_min_time(t), 103);
    log.stop_at = 0;
    CHECK_EQ(lm_table_expire(t, 105, expire_visit, &log), 0);
    CHECK_EQ(log.n, 5);
    CHECK_EQ(log.ts[3], 103);
    CHECK_EQ(log.ts[4], 104);
    CHECK_EQ(lm_table_min_time(t), 105);
    lm_table_free(t);
}
END_TEST

/* An entry put again with another time moves to it; a time whose entries
 * all expired can be used again. */
START_TEST(test_state_expire_follows_changed_times)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "buf", 0);
    static expire_log log;

    memset(&log, 0, sizeof(log));
    put_str(t, "a", 100, "x");
    put_str(t, "b", 50, "y");
    CHECK_EQ(lm_table_min_time(t), 50);
    put_str(t, "b", 200, "y"); /* moves from 50 to 200 */
    CHECK_EQ(lm_table_min_time(t), 100);
    put_str(t, "a", 5, "x2");
    CHECK_EQ(lm_table_min_time(t), 5);
    CHECK_EQ(lm_table_expire(t, 6, NULL, NULL), 0);
    expect_absent(t, "a");
    expect_str(t, "b", 200, "y");
    CHECK_EQ(lm_table_min_time(t), 200);
    CHECK_EQ(lm_table_expire(t, 200, NULL, NULL), 0);
    CHECK_EQ(lm_table_count(t), 1);

    /* The time 5 again, after its bucket went away. */
    put_str(t, "c", 5, "z");
    CHECK_EQ(lm_table_min_time(t), 5);
    CHECK_EQ(lm_table_delete(t, "c", 1), LM_OK);
    CHECK_EQ(lm_table_min_time(t), 200);
    put_str(t, "d", 5, "w");
    CHECK_EQ(lm_table_expire(t, 201, NULL, NULL), 0);
    CHECK_EQ(lm_table_count(t), 0);
    CHECK_EQ(lm_table_bytes(t), 0);
    CHECK_EQ(lm_table_min_time(t), INT64_MAX);
    lm_table_free(t);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t
heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t
heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
#endif

/* A window operator's table sees a new time for every window, for as
 * long as the job runs, and expires the old ones: its memory must follow
 * what it holds, not how many distinct times it has seen. (Snapshots are
 * taken as a job with checkpoints would, so that only the times count.) */
START_TEST(test_state_expire_memory_stays_bounded_as_times_pass)
{
    enum { WARM = 10000, TIMES = 1 << 20 };
    lm_table *t = new_table(LM_TABLE_EXPIRING, "win", 8);
    size_t before = 0, after;
    uint64_t epoch = 0;
    bool created;

    for (int64_t ts = 0; ts < WARM + TIMES; ts++) {
        uint64_t k = (uint64_t)ts;
        if (ts == WARM) {
            before = heap_in_use();
        }
        CHECK_NONNULL(lm_table_upsert(t, &k, sizeof(k), ts, &created));
        CHECK_EQ(lm_table_expire(t, ts - 4, NULL, NULL), 0);
        if (ts % 4096 == 4095) {
            uint8_t *p;
            size_t len;
            bool full;
            CHECK_EQ(lm_table_snapshot(t, epoch + 1, epoch, &p, &len, &full), LM_OK);
            free(p);
            epoch++;
        }
    }
    after = heap_in_use();
    CHECK_EQ(lm_table_count(t), 5);
    REQUIRE(after < before + (2u << 20),
            "a table holding 5 entries grew by %zu bytes over %d distinct times", after - before,
            TIMES);
    lm_table_free(t);
}
END_TEST

/* A job without checkpoints never snapshots its tables: a table that
 * keeps about the same entries must keep about the same memory however
 * many insertions and removals it sees. */
START_TEST(test_state_memory_stays_bounded_without_snapshots)
{
    enum { WARM = 10000, OPS = 1 << 20 };
    lm_table *t = new_table(LM_TABLE_GLOBAL, "pending", 8);
    size_t before = 0, after;
    bool created;

    for (uint64_t i = 0; i < WARM + OPS; i++) {
        uint64_t k = i % 64, old = (i + 32) % 64;
        if (i == WARM) {
            before = heap_in_use();
        }
        CHECK_NONNULL(lm_table_upsert(t, &k, sizeof(k), 0, &created));
        lm_table_delete(t, &old, sizeof(old));
    }
    after = heap_in_use();
    REQUIRE(after < before + (2u << 20),
            "a table holding %" PRIu64 " entries grew by %zu bytes over %d insertions",
            lm_table_count(t), after - before, OPS);
    lm_table_free(t);
}
END_TEST

/* --- snapshots ------------------------------------------------------------------ */

/* Full at the first snapshot and whenever there is no previous one,
 * incremental otherwise, and a full one at least every
 * LM_TABLE_FULL_EVERY; GLOBAL tables always full. */
START_TEST(test_state_snapshot_schedule_full_and_incremental)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "win", 8);
    lm_table *g = new_table(LM_TABLE_GLOBAL, "offsets", 8);
    uint32_t since_full = 0, nincr = 0;
    bool created;

    for (uint32_t k = 0; k < 200; k++) {
        lm_table_upsert(t, &k, sizeof(k), k, &created);
        lm_table_upsert(g, &k, sizeof(k), 0, &created);
    }
    for (uint64_t epoch = 1; epoch <= 40; epoch++) {
        uint32_t k = (uint32_t)epoch;
        snap s, sg;
        *(uint64_t *)lm_table_upsert(t, &k, sizeof(k), 0, &created) += 1;
        *(uint64_t *)lm_table_upsert(g, &k, sizeof(k), 0, &created) += 1;
        s = take_snapshot(t, epoch, epoch - 1);
        sg = take_snapshot(g, epoch, epoch - 1);
        REQUIRE(sg.full, "GLOBAL snapshot %" PRIu64 " not full", epoch);
        if (epoch == 1) {
            REQUIRE(s.full, "the first snapshot must be full");
        }
        if (s.full) {
            since_full = 0;
        } else {
            since_full++;
            nincr++;
        }
        REQUIRE(since_full < LM_TABLE_FULL_EVERY,
                "%u incremental snapshots in a row at epoch %" PRIu64, since_full, epoch);
        free(s.p);
        free(sg.p);
    }
    REQUIRE(nincr >= 30, "only %u of 40 snapshots were incremental", nincr);

    /* No previous snapshot: full, whatever the table's history. */
    {
        snap s;
        uint32_t k = 1;
        *(uint64_t *)lm_table_upsert(t, &k, sizeof(k), 0, &created) += 1;
        s = take_snapshot(t, 41, 40);
        free(s.p);
        *(uint64_t *)lm_table_upsert(t, &k, sizeof(k), 0, &created) += 1;
        s = take_snapshot(t, 42, 0);
        CHECK(s.full);
        free(s.p);
    }
    lm_table_free(t);
    lm_table_free(g);
}
END_TEST

/* When the changes outgrow the table, a full snapshot is smaller. */
START_TEST(test_state_snapshot_full_when_changes_outgrow_the_table)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "win", 0);
    lm_table *r = new_table(LM_TABLE_EXPIRING, "win", 0);
    snap s1, s2, s3;
    char key[16];

    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        put_str(t, key, i, "v");
    }
    s1 = take_snapshot(t, 1, 0);
    CHECK(s1.full);
    /* One change: incremental. */
    put_str(t, "k0", 0, "w");
    s2 = take_snapshot(t, 2, 1);
    CHECK(!s2.full);
    /* Everything removed, one entry left: full. */
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CHECK_EQ(lm_table_delete(t, key, (uint32_t)strlen(key)), LM_OK);
    }
    put_str(t, "new", 3, "n");
    s3 = take_snapshot(t, 3, 2);
    REQUIRE(s3.full, "10 removals and 1 insertion over a 1-entry table: expected full");
    restore_ok(r, &s1);
    restore_ok(r, &s2);
    expect_str(r, "k0", 0, "w");
    restore_ok(r, &s3);
    CHECK_EQ(lm_table_count(r), 1);
    expect_str(r, "new", 3, "n");
    free(s1.p);
    free(s2.p);
    free(s3.p);
    lm_table_free(t);
    lm_table_free(r);
}
END_TEST

/* The reference model of the random round trip. */
enum { MODEL_KEYS = 1500, MODEL_VMAX = 48 };

typedef struct model_entry {
    bool present;
    int64_t ts;
    uint32_t vlen;
    uint8_t val[MODEL_VMAX];
} model_entry;

typedef struct model {
    lm_table_kind kind;
    uint32_t vsize; /* 0: variable */
    model_entry e[MODEL_KEYS];
} model;

/* Key i's bytes: lengths 2..40, with zero bytes, distinct for every i
 * (the first two bytes are i). */
static uint32_t
model_key(uint32_t i, uint8_t *buf)
{
    uint32_t len = 2 + (i * 7) % 39;
    uint64_t s = i;
    for (uint32_t j = 0; j < len; j++) {
        buf[j] = (uint8_t)(rnd(&s) % 4);
    }
    buf[0] = (uint8_t)i;
    buf[1] = (uint8_t)(i >> 8);
    return len;
}

typedef struct model_check {
    const model *m;
    uint32_t seen;
} model_check;

static int
model_scan_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    model_check *c = arg;
    uint8_t kb[64];
    uint32_t i = klen < 2 ? MODEL_KEYS : ((const uint8_t *)key)[0] | ((const uint8_t *)key)[1] << 8;
    REQUIRE(i < MODEL_KEYS, "scan: unknown key");
    REQUIRE(model_key(i, kb) == klen && memcmp(kb, key, klen) == 0, "scan: unknown key");
    REQUIRE(c->m->e[i].present, "scan: key %u should be gone", i);
    CHECK_EQ(vlen, c->m->e[i].vlen);
    REQUIRE(memcmp(val, c->m->e[i].val, vlen) == 0, "scan: key %u value differs", i);
    if (c->m->kind == LM_TABLE_EXPIRING) {
        CHECK_EQ(ts, c->m->e[i].ts);
    }
    c->seen++;
    return 0;
}

/* Asserts that t holds exactly what m says. */
static void
model_compare(lm_table *t, const model *m, const char *when)
{
    uint64_t n = 0, bytes = 0;
    int64_t min_ts = INT64_MAX;
    model_check c = {m, 0};

    for (uint32_t i = 0; i < MODEL_KEYS; i++) {
        uint8_t kb[64];
        uint32_t klen = model_key(i, kb);
        const void *v;
        uint32_t vlen;
        int64_t ts;
        int rv = lm_table_get(t, kb, klen, &v, &vlen, &ts);
        if (!m->e[i].present) {
            REQUIRE(rv == LM_ENOTFOUND, "%s: key %u should be absent", when, i);
            continue;
        }
        REQUIRE(rv == LM_OK, "%s: key %u missing", when, i);
        REQUIRE(vlen == m->e[i].vlen && memcmp(v, m->e[i].val, vlen) == 0,
                "%s: key %u has another value", when, i);
        if (m->kind == LM_TABLE_EXPIRING) {
            REQUIRE(ts == m->e[i].ts, "%s: key %u has time %" PRId64 ", expected %" PRId64, when, i,
                    ts, m->e[i].ts);
            min_ts = ts < min_ts ? ts : min_ts;
        }
        n++;
        bytes += klen + vlen;
    }
    REQUIRE(lm_table_count(t) == n, "%s: %" PRIu64 " entries, expected %" PRIu64, when,
            lm_table_count(t), n);
    CHECK_EQ(lm_table_bytes(t), bytes);
    CHECK_EQ(lm_table_scan(t, model_scan_visit, &c), 0);
    CHECK_EQ(c.seen, n);
    if (m->kind == LM_TABLE_EXPIRING) {
        CHECK_EQ(lm_table_min_time(t), min_ts);
    }
}

typedef struct model_expiry {
    model *m;
    int64_t upto;
    int64_t last_ts;
    uint32_t n;
} model_expiry;

static int
model_expire_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    model_expiry *x = arg;
    uint32_t i = klen < 2 ? MODEL_KEYS : ((const uint8_t *)key)[0] | ((const uint8_t *)key)[1] << 8;
    (void)val;
    ck_assert_uint_lt(i, MODEL_KEYS);
    REQUIRE(x->m->e[i].present, "expire visited absent key %u", i);
    CHECK_EQ(ts, x->m->e[i].ts);
    CHECK_EQ(vlen, x->m->e[i].vlen);
    ck_assert_int_lt(ts, x->upto);
    ck_assert_int_ge(ts, x->last_ts);
    x->last_ts = ts;
    x->m->e[i].present = false;
    x->n++;
    return 0;
}

/* Puts a random value (size, and time for EXPIRING tables) under key i. */
static void
model_put(lm_table *t, model *m, uint64_t *seed, uint32_t i, int64_t ts)
{
    uint8_t kb[64];
    uint32_t klen = model_key(i, kb);
    model_entry *e = &m->e[i];
    uint32_t vlen = m->vsize != 0 ? m->vsize : rnd_below(seed, MODEL_VMAX + 1);
    uint8_t v[MODEL_VMAX];

    for (uint32_t j = 0; j < vlen; j++) {
        v[j] = (uint8_t)rnd(seed);
    }
    CHECK_EQ(lm_table_put(t, kb, klen, ts, v, vlen), LM_OK);
    e->present = true;
    e->ts = ts;
    e->vlen = vlen;
    memcpy(e->val, v, vlen);
}

/* One random operation on t and m. Times spread over 400 after now, so
 * that expiry (below now + 20) takes a little at a time. */
static void
model_step(lm_table *t, model *m, uint64_t *seed, int64_t now)
{
    uint32_t i = rnd_below(seed, MODEL_KEYS);
    uint8_t kb[64];
    uint32_t klen = model_key(i, kb);
    model_entry *e = &m->e[i];
    uint32_t op = rnd_below(seed, 100);
    int64_t ts = m->kind == LM_TABLE_EXPIRING ? now + (int64_t)rnd_below(seed, 400) : 0;

    if (op < 15) { /* delete (present or not) */
        CHECK_EQ(lm_table_delete(t, kb, klen), e->present ? LM_OK : LM_ENOTFOUND);
        e->present = false;
    } else if (op < 19) { /* delete and add again, with the same or another time */
        CHECK_EQ(lm_table_delete(t, kb, klen), e->present ? LM_OK : LM_ENOTFOUND);
        e->present = false;
        model_put(t, m, seed, i, rnd_below(seed, 2) == 0 ? e->ts : ts);
    } else if (op < 22 && m->kind == LM_TABLE_EXPIRING) { /* expire */
        model_expiry x = {m, now + (int64_t)rnd_below(seed, 20), INT64_MIN, 0};
        uint32_t expect = 0;
        for (uint32_t j = 0; j < MODEL_KEYS; j++) {
            expect += m->e[j].present && m->e[j].ts < x.upto;
        }
        CHECK_EQ(lm_table_expire(t, x.upto, model_expire_visit, &x), 0);
        CHECK_EQ(x.n, expect);
    } else if (op < 65 || m->vsize == 0) { /* put: new, same or other size/time */
        model_put(t, m, seed, i, e->present && rnd_below(seed, 2) == 0 ? e->ts : ts);
    } else if (op < 85) { /* upsert and change in place */
        bool created;
        uint8_t *p = lm_table_upsert(t, kb, klen, ts, &created);
        CHECK_NONNULL(p);
        CHECK_EQ(created, !e->present);
        if (created) {
            e->present = true;
            e->ts = ts;
            e->vlen = m->vsize;
            memset(e->val, 0, m->vsize);
        }
        ck_assert_mem_eq(p, e->val, m->vsize);
        e->val[rnd_below(seed, m->vsize)] ^= (uint8_t)(1 + rnd_below(seed, 255));
        memcpy(p, e->val, m->vsize);
    } else { /* find, change, touch */
        uint8_t *p = lm_table_find(t, kb, klen);
        CHECK_EQ(p != NULL, e->present);
        if (p != NULL) {
            e->val[rnd_below(seed, m->vsize)] ^= 0x5a;
            memcpy(p, e->val, m->vsize);
            lm_table_touch(t, kb, klen);
        }
    }
}

/* Random operations over many epochs; after each epoch's snapshot, the
 * chain back to the last full one restored into a fresh table equals the
 * model. Every few epochs the job "recovers": it goes on with the restored
 * table, whose next snapshots build on the chain. */
static void
roundtrip_random(lm_table_kind kind, uint32_t vsize, uint64_t seed)
{
    enum { EPOCHS = 45, OPS_FIRST = 2000, OPS = 150 };
    static model m;
    snap chain[LM_TABLE_FULL_EVERY + 1];
    uint32_t nchain = 0, nincr = 0;
    lm_table *t = new_table(kind, "rand", vsize);
    uint64_t prev = 0;
    char when[96];

    memset(&m, 0, sizeof(m));
    m.kind = kind;
    m.vsize = vsize;
    for (uint64_t epoch = 1; epoch <= EPOCHS; epoch++) {
        lm_table *r;
        snap s;
        for (uint32_t op = 0; op < (epoch == 1 ? OPS_FIRST : OPS); op++) {
            model_step(t, &m, &seed, (int64_t)epoch * 10);
        }
        snprintf(when, sizeof(when), "kind %d, values %u, epoch %" PRIu64 " (live table)", kind,
                 vsize, epoch);
        model_compare(t, &m, when);
        s = take_snapshot(t, epoch, prev);
        prev = epoch;
        if (s.full) {
            for (uint32_t i = 0; i < nchain; i++) {
                free(chain[i].p);
            }
            nchain = 0;
        } else {
            nincr++;
        }
        ck_assert_uint_lt(nchain, LM_TABLE_FULL_EVERY);
        chain[nchain++] = s;
        CHECK(chain[0].full);

        r = new_table(kind, "rand", vsize);
        for (uint32_t i = 0; i < nchain; i++) {
            restore_ok(r, &chain[i]);
        }
        snprintf(when, sizeof(when), "kind %d, values %u, epoch %" PRIu64 " (chain of %u)", kind,
                 vsize, epoch, nchain);
        model_compare(r, &m, when);
        if (epoch % 7 == 0) {
            lm_table_free(t);
            t = r; /* recovery: carry on from the restored table */
        } else {
            lm_table_free(r);
        }
    }
    if (kind == LM_TABLE_EXPIRING) {
        REQUIRE(nincr >= EPOCHS / 2, "only %u incremental snapshots", nincr);
    }
    for (uint32_t i = 0; i < nchain; i++) {
        free(chain[i].p);
    }
    lm_table_free(t);
}

START_TEST(test_state_snapshot_roundtrip_random_expiring_variable)
{
    roundtrip_random(LM_TABLE_EXPIRING, 0, 1001);
}
END_TEST

START_TEST(test_state_snapshot_roundtrip_random_expiring_fixed)
{
    roundtrip_random(LM_TABLE_EXPIRING, 24, 2002);
}
END_TEST

START_TEST(test_state_snapshot_roundtrip_random_global_variable)
{
    roundtrip_random(LM_TABLE_GLOBAL, 0, 3003);
}
END_TEST

START_TEST(test_state_snapshot_roundtrip_random_global_fixed)
{
    roundtrip_random(LM_TABLE_GLOBAL, 8, 4004);
}
END_TEST

/* A key removed and added again between two snapshots is present after
 * restoring (the removal must not win over the later insertion). */
START_TEST(test_state_snapshot_delete_then_readd_in_one_epoch)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "buf", 0);
    lm_table *r = new_table(LM_TABLE_EXPIRING, "buf", 0);
    char key[16];
    snap s1, s2;

    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        put_str(t, key, 100 + i, "old");
    }
    s1 = take_snapshot(t, 1, 0);
    CHECK(s1.full);
    CHECK_EQ(lm_table_delete(t, "k03", 3), LM_OK);
    put_str(t, "k03", 103, "new");
    s2 = take_snapshot(t, 2, 1);
    CHECK(!s2.full);
    restore_ok(r, &s1);
    restore_ok(r, &s2);
    expect_str(r, "k03", 103, "new");
    CHECK_EQ(lm_table_count(r), 20);
    free(s1.p);
    free(s2.p);
    lm_table_free(t);
    lm_table_free(r);
}
END_TEST

/* The same with a fixed-size table, the key coming back through upsert
 * after it expired (a window reopened for the same key). */
START_TEST(test_state_snapshot_expire_then_upsert_in_one_epoch)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "win", 8);
    lm_table *r = new_table(LM_TABLE_EXPIRING, "win", 8);
    bool created;
    snap s1, s2;
    uint64_t *p;

    for (uint32_t k = 0; k < 20; k++) {
        p = lm_table_upsert(t, &k, sizeof(k), k == 0 ? 5 : 100, &created);
        *p = k + 1;
    }
    s1 = take_snapshot(t, 1, 0);
    CHECK_EQ(lm_table_expire(t, 10, NULL, NULL), 0);
    {
        uint32_t k = 0;
        p = lm_table_upsert(t, &k, sizeof(k), 50, &created);
        CHECK(created);
        *p = 99;
    }
    s2 = take_snapshot(t, 2, 1);
    CHECK(!s2.full);
    restore_ok(r, &s1);
    restore_ok(r, &s2);
    CHECK_EQ(lm_table_count(r), 20);
    {
        uint32_t k = 0;
        p = lm_table_find(r, &k, sizeof(k));
        REQUIRE(p != NULL, "the key expired and upserted again is lost on restore");
        CHECK_EQ(*p, 99);
        CHECK_EQ(lm_table_min_time(r), 50);
    }
    free(s1.p);
    free(s2.p);
    lm_table_free(t);
    lm_table_free(r);
}
END_TEST

/* Removed in one epoch, added back in a later one: each prefix of the
 * chain restores the state of its epoch. */
START_TEST(test_state_snapshot_delete_and_readd_across_epochs)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "buf", 0);
    char key[16];
    snap s[4];

    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        put_str(t, key, 100, "v1");
    }
    s[0] = take_snapshot(t, 1, 0);
    CHECK_EQ(lm_table_delete(t, "k05", 3), LM_OK);
    s[1] = take_snapshot(t, 2, 1);
    put_str(t, "k05", 120, "v2");
    s[2] = take_snapshot(t, 3, 2);
    CHECK_EQ(lm_table_delete(t, "k05", 3), LM_OK);
    s[3] = take_snapshot(t, 4, 3);
    for (int i = 1; i < 4; i++) {
        REQUIRE(!s[i].full, "snapshot %d should be incremental", i + 1);
    }
    for (int upto = 1; upto <= 4; upto++) {
        lm_table *r = new_table(LM_TABLE_EXPIRING, "buf", 0);
        for (int i = 0; i < upto; i++) {
            restore_ok(r, &s[i]);
        }
        if (upto == 1) {
            expect_str(r, "k05", 100, "v1");
        } else if (upto == 3) {
            expect_str(r, "k05", 120, "v2");
        } else {
            expect_absent(r, "k05");
        }
        CHECK_EQ(lm_table_count(r), upto == 1 || upto == 3 ? 20 : 19);
        lm_table_free(r);
    }
    for (int i = 0; i < 4; i++) {
        free(s[i].p);
    }
    lm_table_free(t);
}
END_TEST

/* A restored EXPIRING table keeps the times: expiry after recovery hands
 * out the same entries in the same order. */
START_TEST(test_state_restore_keeps_times_for_expiry)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "win", 8);
    lm_table *r = new_table(LM_TABLE_EXPIRING, "win", 8);
    static expire_log a, b;
    uint64_t seed = 99;
    bool created;
    snap s1, s2;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    for (uint32_t k = 0; k < 300; k++) {
        uint64_t *p = lm_table_upsert(t, &k, sizeof(k), (int64_t)rnd_below(&seed, 1000), &created);
        *p = (uint64_t)k * 10;
    }
    s1 = take_snapshot(t, 1, 0);
    for (uint32_t k = 300; k < 320; k++) {
        uint64_t *p = lm_table_upsert(t, &k, sizeof(k), 500 + k, &created);
        *p = (uint64_t)k * 10;
    }
    s2 = take_snapshot(t, 2, 1);
    CHECK(!s2.full);
    restore_ok(r, &s1);
    restore_ok(r, &s2);
    CHECK_EQ(lm_table_min_time(r), lm_table_min_time(t));
    CHECK_EQ(lm_table_expire(t, 700, expire_visit, &a), 0);
    CHECK_EQ(lm_table_expire(r, 700, expire_visit, &b), 0);
    ck_assert_uint_gt(a.n, 100);
    CHECK_EQ(a.n, b.n);
    for (uint32_t i = 0; i < a.n; i++) {
        CHECK_EQ(a.ts[i], b.ts[i]);
    }
    CHECK_EQ(lm_table_count(r), lm_table_count(t));
    CHECK_EQ(lm_table_min_time(r), lm_table_min_time(t));
    free(s1.p);
    free(s2.p);
    lm_table_free(t);
    lm_table_free(r);
}
END_TEST

/* A full snapshot replaces what the table held; an empty table round
 * trips; the chain can be found from the newest file by following
 * snapshot_info's previous epochs, as recovery does. */
START_TEST(test_state_restore_full_replaces_and_chain_walks_back)
{
    lm_table *t = new_table(LM_TABLE_GLOBAL, "offsets", 0);
    lm_table *r = new_table(LM_TABLE_GLOBAL, "offsets", 0);
    lm_table *e = new_table(LM_TABLE_EXPIRING, "w", 0);
    snap s, se, files[12];
    uint32_t k = 0;

    put_str(r, "stale", 0, "x");
    put_str(t, "p0", 0, "17");
    s = take_snapshot(t, 1, 0);
    restore_ok(r, &s);
    expect_absent(r, "stale");
    expect_str(r, "p0", INT64_MIN, "17");
    CHECK_EQ(lm_table_count(r), 1);
    free(s.p);

    se = take_snapshot(e, 1, 0);
    CHECK(se.full);
    put_str(r, "junk", 0, "x");
    lm_table_free(r);
    r = new_table(LM_TABLE_EXPIRING, "w", 0);
    put_str(r, "junk", 0, "x");
    restore_ok(r, &se);
    CHECK_EQ(lm_table_count(r), 0);
    free(se.p);
    lm_table_free(r);

    /* Walk back from epoch 12. */
    for (int i = 0; i < 40; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        put_str(e, key, i, "v");
    }
    for (uint64_t epoch = 1; epoch <= 12; epoch++) {
        char key[8];
        snprintf(key, sizeof(key), "k%" PRIu64, epoch);
        put_str(e, key, 1000, "changed");
        files[epoch - 1] = take_snapshot(e, epoch, epoch == 1 ? 0 : epoch - 1);
    }
    {
        uint64_t ep = 12, order[12];
        uint32_t n = 0;
        while (ep != 0) {
            uint64_t got, prev;
            bool full;
            lm_error err;
            ck_assert_uint_lt(n, 12);
            CHECK_EQ(lm_table_snapshot_info(files[ep - 1].p, files[ep - 1].len, &got, &full, &prev,
                                            &err),
                     LM_OK);
            CHECK_EQ(got, ep);
            order[n++] = ep;
            ep = full ? 0 : prev;
        }
        ck_assert_uint_le(n, LM_TABLE_FULL_EVERY);
        r = new_table(LM_TABLE_EXPIRING, "w", 0);
        while (n > 0) {
            restore_ok(r, &files[order[--n] - 1]);
        }
        CHECK_EQ(lm_table_count(r), 40);
        for (k = 1; k <= 12; k++) {
            char key[8];
            snprintf(key, sizeof(key), "k%u", k);
            expect_str(r, key, 1000, "changed");
        }
        expect_str(r, "k13", 13, "v");
        lm_table_free(r);
    }
    for (int i = 0; i < 12; i++) {
        free(files[i].p);
    }
    lm_table_free(t);
    lm_table_free(e);
}
END_TEST

/* --- bad input to restore ----------------------------------------------------- */

/* A table of 60 entries, its full snapshot, and an incremental one. */
static lm_table *
corrupt_fixture(snap *full, snap *incr)
{
    lm_table *t = new_table(LM_TABLE_EXPIRING, "join", 0);
    char key[16], val[64];

    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(val, sizeof(val), "value %d with some text %d", i, i * i);
        put_str(t, key, 1000 + i, val);
    }
    *full = take_snapshot(t, 1, 0);
    put_str(t, "key-1", 1001, "changed");
    CHECK_EQ(lm_table_delete(t, "key-2", 5), LM_OK);
    put_str(t, "key-new", 5, "n");
    *incr = take_snapshot(t, 2, 1);
    CHECK(full->full);
    CHECK(!incr->full);
    return t;
}

static void
expect_eproto(int rv, const lm_error *err, const char *what)
{
    REQUIRE(rv == LM_EPROTO, "%s: %s (%s), expected LM_EPROTO", what, lm_errname(rv), err->msg);
    REQUIRE(err->code == LM_EPROTO && err->msg[0] != '\0', "%s: no error message", what);
}

START_TEST(test_state_restore_rejects_every_truncation)
{
    snap full, incr;
    lm_table *t = corrupt_fixture(&full, &incr);
    const snap *files[2] = {&full, &incr};

    for (int f = 0; f < 2; f++) {
        const snap *s = files[f];
        for (size_t cut = 0; cut < s->len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any read beyond. */
            uint8_t *p = malloc(cut > 0 ? cut : 1);
            lm_table *r = new_table(LM_TABLE_EXPIRING, "join", 0);
            lm_error err;
            char what[96];
            int rv;
            memcpy(p, s->p, cut);
            snprintf(what, sizeof(what), "%s snapshot cut to %zu of %zu bytes",
                     f == 0 ? "full" : "incremental", cut, s->len);
            if (f == 1) {
                restore_ok(r, &full);
            }
            lm_error_clear(&err);
            rv = lm_table_restore(r, p, cut, &err);
            expect_eproto(rv, &err, what);
            if (cut < 21) {
                uint64_t e, pr;
                bool fl;
                lm_error_clear(&err);
                rv = lm_table_snapshot_info(p, cut, &e, &fl, &pr, &err);
                expect_eproto(rv, &err, what);
            }
            lm_table_free(r);
            free(p);
        }
    }
    free(full.p);
    free(incr.p);
    lm_table_free(t);
}
END_TEST

typedef struct snapshot_copy {
    uint64_t count;
    lm_table *ref;
    bool same;
} snapshot_copy;

static int
same_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    snapshot_copy *c = arg;
    const void *v;
    uint32_t rvlen;
    int64_t rts;
    if (lm_table_get(c->ref, key, klen, &v, &rvlen, &rts) != LM_OK || rvlen != vlen || rts != ts ||
        memcmp(v, val, vlen) != 0) {
        c->same = false;
    }
    c->count++;
    return 0;
}

/* Same entries, same values, same times. */
static bool
tables_equal(lm_table *a, lm_table *b)
{
    snapshot_copy c = {0, b, true};
    lm_table_scan(a, same_visit, &c);
    return c.same && c.count == lm_table_count(b);
}

/* Every byte flipped (three ways): the restore either fails with
 * LM_EPROTO and a message, or the flip did not matter (a header field
 * restore does not use) and the table is exactly the original. Corrupt
 * data accepted as other data is a failure. */
START_TEST(test_state_restore_rejects_flipped_bytes)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    snap full, incr;
    lm_table *t = corrupt_fixture(&full, &incr);
    const snap *files[2] = {&full, &incr};
    uint32_t accepted_changed = 0, first_pos = UINT32_MAX;
    const char *first_file = "";

    for (int f = 0; f < 2; f++) {
        const snap *s = files[f];
        lm_table *good = new_table(LM_TABLE_EXPIRING, "join", 0);
        uint8_t *p = malloc(s->len);
        restore_ok(good, &full);
        if (f == 1) {
            restore_ok(good, &incr);
        }
        for (size_t pos = 0; pos < s->len; pos++) {
            for (size_t m = 0; m < sizeof(masks); m++) {
                lm_table *r = new_table(LM_TABLE_EXPIRING, "join", 0);
                lm_error err;
                int rv;
                memcpy(p, s->p, s->len);
                p[pos] ^= masks[m];
                if (f == 1) {
                    restore_ok(r, &full);
                }
                lm_error_clear(&err);
                rv = lm_table_restore(r, p, s->len, &err);
                REQUIRE(rv == LM_OK || rv == LM_EPROTO,
                        "byte %zu ^ 0x%02x: %s (%s), expected LM_OK or LM_EPROTO", pos, masks[m],
                        lm_errname(rv), err.msg);
                if (rv == LM_EPROTO) {
                    REQUIRE(err.msg[0] != '\0', "byte %zu: no message", pos);
                } else if (!tables_equal(r, good)) {
                    accepted_changed++;
                    if (first_pos == UINT32_MAX) {
                        first_pos = (uint32_t)pos;
                        first_file = f == 0 ? "full" : "incremental";
                    }
                }
                lm_table_free(r);
            }
        }
        free(p);
        lm_table_free(good);
    }
    REQUIRE(accepted_changed == 0,
            "%u corrupted snapshots restored without error into different contents (first: "
            "byte %u of the %s snapshot)",
            accepted_changed, first_pos, first_file);
    free(full.p);
    free(incr.p);
    lm_table_free(t);
}
END_TEST

START_TEST(test_state_restore_rejects_another_table)
{
    lm_table *src = new_table(LM_TABLE_EXPIRING, "left", 8);
    bool created;
    uint32_t k = 1;
    snap s;
    struct {
        lm_table_kind kind;
        const char *name;
        uint32_t vsize;
    } others[] = {
        {LM_TABLE_EXPIRING, "right", 8}, /* another name */
        {LM_TABLE_EXPIRING, "lef", 8},   /* a prefix of the name */
        {LM_TABLE_EXPIRING, "leftx", 8}, /* longer name */
        {LM_TABLE_GLOBAL, "left", 8},    /* another kind */
        {LM_TABLE_EXPIRING, "left", 16}, /* another value size */
        {LM_TABLE_EXPIRING, "left", 0},  /* variable values */
    };

    *(uint64_t *)lm_table_upsert(src, &k, sizeof(k), 10, &created) = 5;
    s = take_snapshot(src, 1, 0);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        lm_table *r = new_table(others[i].kind, others[i].name, others[i].vsize);
        lm_error err;
        char what[96];
        lm_error_clear(&err);
        snprintf(what, sizeof(what), "restoring 'left' into '%s' (kind %d, values %u)",
                 others[i].name, others[i].kind, others[i].vsize);
        expect_eproto(lm_table_restore(r, s.p, s.len, &err), &err, what);
        REQUIRE(strstr(err.msg, "left") != NULL, "message '%s' does not name the table", err.msg);
        CHECK_EQ(lm_table_count(r), 0);
        lm_table_free(r);
    }
    free(s.p);
    lm_table_free(src);
}
END_TEST

/* A snapshot file around a msgpack body of our own making. */
static uint8_t *
make_file(const void *body, size_t blen, uint64_t epoch, uint64_t prev, uint8_t full, size_t *len)
{
    size_t bound = ZSTD_compressBound(blen);
    uint8_t *p = malloc(21 + bound);
    size_t c = ZSTD_compress(p + 21, bound, body, blen, 1);
    CHECK(!ZSTD_isError(c));
    memcpy(p, "LMT1", 4);
    for (int i = 0; i < 8; i++) {
        p[4 + i] = (uint8_t)(epoch >> (8 * i));
        p[12 + i] = (uint8_t)(prev >> (8 * i));
    }
    p[20] = full;
    *len = 21 + c;
    return p;
}

/* The msgpack body [name, kind, value_size, entries, removals] with
 * optional damage. */
typedef enum body_damage {
    BODY_OK,
    BODY_NOT_ARRAY,
    BODY_FIELD_MISSING,
    BODY_NAME_INT,
    BODY_KIND_STR,
    BODY_ENTRIES_MAP,
    BODY_ENTRY_TWO,
    BODY_ENTRY_KEY_INT,
    BODY_ENTRY_TS_STR,
    BODY_VALUE_SIZE_WRONG,
    BODY_KEY_TOO_LONG,
    BODY_REMOVALS_INT,
    BODY_REMOVAL_INT,
    BODY_ENTRIES_CLAIM_MORE,
    BODY_EMPTY,
    BODY_HEADER_MISMATCH,
    BODY_NDAMAGE
} body_damage;

static void
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

static void
make_body(body_damage d, msgpack_sbuffer *sb)
{
    static uint8_t longkey[LM_TABLE_KEY_MAX + 1];
    msgpack_packer pk;
    uint64_t v = 7;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (d == BODY_EMPTY) {
        return;
    }
    if (d == BODY_NOT_ARRAY) {
        msgpack_pack_nil(&pk);
        return;
    }
    /* [name, kind, value_size, epoch, prev, full, removals, entries], as
     * make_file's header: epoch 1, full */
    msgpack_pack_array(&pk, d == BODY_FIELD_MISSING ? 7 : 8);
    if (d == BODY_NAME_INT) {
        msgpack_pack_int(&pk, 3);
    } else {
        msgpack_pack_str(&pk, 4);
        msgpack_pack_str_body(&pk, "hand", 4);
    }
    if (d == BODY_KIND_STR) {
        msgpack_pack_str(&pk, 1);
        msgpack_pack_str_body(&pk, "2", 1);
    } else {
        msgpack_pack_uint32(&pk, LM_TABLE_EXPIRING);
    }
    msgpack_pack_uint32(&pk, 8);
    msgpack_pack_uint64(&pk, d == BODY_HEADER_MISMATCH ? 2 : 1);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_true(&pk);
    if (d == BODY_REMOVALS_INT) {
        msgpack_pack_int(&pk, 0);
    } else {
        msgpack_pack_array(&pk, 1);
        if (d == BODY_REMOVAL_INT) {
            msgpack_pack_int(&pk, 1);
        } else {
            pack_bin(&pk, "gone", 4);
        }
    }
    if (d == BODY_FIELD_MISSING) {
        return;
    }
    if (d == BODY_ENTRIES_MAP) {
        msgpack_pack_map(&pk, 0);
    } else {
        msgpack_pack_array(&pk, d == BODY_ENTRIES_CLAIM_MORE ? 1000 : 2);
        msgpack_pack_array(&pk, 3);
        pack_bin(&pk, "k1", 2);
        msgpack_pack_int64(&pk, 10);
        pack_bin(&pk, &v, 8);
        msgpack_pack_array(&pk, d == BODY_ENTRY_TWO ? 2 : 3);
        if (d == BODY_ENTRY_KEY_INT) {
            msgpack_pack_int(&pk, 2);
        } else if (d == BODY_KEY_TOO_LONG) {
            memset(longkey, 'x', sizeof(longkey));
            pack_bin(&pk, longkey, sizeof(longkey));
        } else {
            pack_bin(&pk, "k2", 2);
        }
        if (d == BODY_ENTRY_TS_STR) {
            msgpack_pack_str(&pk, 2);
            msgpack_pack_str_body(&pk, "10", 2);
        } else {
            msgpack_pack_int64(&pk, 20);
        }
        if (d != BODY_ENTRY_TWO) {
            pack_bin(&pk, &v, d == BODY_VALUE_SIZE_WRONG ? 7 : 8);
        }
    }
}

/* Hand-made files: the well-formed one restores, every damaged one is
 * LM_EPROTO with a message. */
START_TEST(test_state_restore_rejects_malformed_contents)
{
    for (int d = 0; d < BODY_NDAMAGE; d++) {
        msgpack_sbuffer sb;
        size_t len;
        uint8_t *p;
        lm_table *r = new_table(LM_TABLE_EXPIRING, "hand", 8);
        lm_error err;
        char what[48];
        int rv;

        make_body((body_damage)d, &sb);
        p = make_file(sb.data, sb.size, 1, 0, 1, &len);
        msgpack_sbuffer_destroy(&sb);
        lm_error_clear(&err);
        rv = lm_table_restore(r, p, len, &err);
        snprintf(what, sizeof(what), "body damage %d", d);
        if (d == BODY_OK) {
            REQUIRE(rv == LM_OK, "the hand-made file: %s", err.msg);
            CHECK_EQ(lm_table_count(r), 2);
            CHECK_EQ(lm_table_min_time(r), 10);
        } else {
            expect_eproto(rv, &err, what);
        }
        lm_table_free(r);
        free(p);
    }
}
END_TEST

/* Headers: empty input, wrong magic, a bad flag, an incremental with no
 * or a later base, data that is not zstd, a zstd frame claiming a huge
 * size. */
START_TEST(test_state_restore_rejects_bad_headers)
{
    snap full, incr;
    lm_table *t = corrupt_fixture(&full, &incr);
    lm_table *r = new_table(LM_TABLE_EXPIRING, "join", 0);
    uint8_t *p = malloc((full.len > incr.len ? full.len : incr.len) + 64);
    uint64_t e, pr;
    bool f;
    lm_error err;

    /* Empty. */
    lm_error_clear(&err);
    expect_eproto(lm_table_restore(r, p, 0, &err), &err, "empty input");
    lm_error_clear(&err);
    expect_eproto(lm_table_snapshot_info(p, 0, &e, &f, &pr, &err), &err, "empty header");

    /* Magic. */
    memcpy(p, full.p, full.len);
    p[0] = 'X';
    lm_error_clear(&err);
    expect_eproto(lm_table_restore(r, p, full.len, &err), &err, "bad magic");

    /* Full flag neither 0 nor 1. */
    memcpy(p, full.p, full.len);
    p[20] = 2;
    lm_error_clear(&err);
    expect_eproto(lm_table_snapshot_info(p, full.len, &e, &f, &pr, &err), &err, "flag 2");
    lm_error_clear(&err);
    expect_eproto(lm_table_restore(r, p, full.len, &err), &err, "flag 2");

    /* Incremental on epoch 0, on itself, on a later epoch. */
    {
        static const uint64_t bases[] = {0, 2, 9};
        for (size_t i = 0; i < 3; i++) {
            memcpy(p, incr.p, incr.len);
            for (int b = 0; b < 8; b++) {
                p[12 + b] = (uint8_t)(bases[i] >> (8 * b));
            }
            lm_error_clear(&err);
            expect_eproto(lm_table_snapshot_info(p, incr.len, &e, &f, &pr, &err), &err,
                          "incremental with a bad base");
            lm_error_clear(&err);
            expect_eproto(lm_table_restore(r, p, incr.len, &err), &err,
                          "incremental with a bad base");
        }
    }

    /* A header and no body; a header and bytes that are not zstd. */
    memcpy(p, full.p, 21);
    lm_error_clear(&err);
    expect_eproto(lm_table_restore(r, p, 21, &err), &err, "header only");
    for (int i = 21; i < 61; i++) {
        p[i] = (uint8_t)(i * 37);
    }
    lm_error_clear(&err);
    expect_eproto(lm_table_restore(r, p, 61, &err), &err, "not zstd");
    CHECK_EQ(lm_table_count(r), 0);

    /* A zstd frame (magic, single segment, 8-byte content size) claiming
     * 60 GiB, followed by one raw block of 3 bytes: the size is a lie the
     * compressed length cannot back, to be rejected before allocating. */
    {
        static const uint8_t frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0,   0,   0,  0x0f,
                                        0,    0,    0,    0x19, 0,    0, 'a', 'b', 'c'};
        memcpy(p, full.p, 21);
        memcpy(p + 21, frame, sizeof(frame));
        lm_error_clear(&err);
        expect_eproto(lm_table_restore(r, p, 21 + sizeof(frame), &err), &err,
                      "a frame claiming 60 GiB");
    }
    free(p);
    free(full.p);
    free(incr.p);
    lm_table_free(r);
    lm_table_free(t);
}
END_TEST

/* --- storage -------------------------------------------------------------------- */

/* A fresh directory for a storage test; removed by the test. */
static void
tmp_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/lm-state-XXXXXX");
    CHECK_NONNULL(mkdtemp(buf));
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir, other than . and .., sorted and joined by spaces. */
static void
list_dir(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *names[64];
    size_t n = 0;

    out[0] = '\0';
    CHECK_NONNULL(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && n < 64) {
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_names);
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", i > 0 ? " " : "", names[i]);
        free(names[i]);
    }
}

static void
expect_file(const char *path, const char *content)
{
    uint8_t *p = NULL;
    size_t len = 0;
    lm_error err;
    int rv = lm_storage_read(path, &p, &len, &err);
    REQUIRE(rv == LM_OK, "reading %s: %s", path, err.msg);
    CHECK_EQ(len, strlen(content));
    ck_assert_mem_eq(p, content, len);
    free(p);
}

START_TEST(test_storage_write_replaces_atomically)
{
    char dir[64], path[128], names[256];
    lm_error err;
    uint8_t *p;
    size_t len;
    static uint8_t big[1 << 20];

    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/table-a-000", dir);
    CHECK_EQ(lm_storage_exists(path), 0);
    CHECK_EQ(lm_storage_write(path, "first version", 13, &err), LM_OK);
    ck_assert_int_ne(lm_storage_exists(path), 0);
    expect_file(path, "first version");
    CHECK_EQ(lm_storage_write(path, "2nd", 3, &err), LM_OK);
    expect_file(path, "2nd");
    CHECK_EQ(lm_storage_write(path, "", 0, &err), LM_OK);
    CHECK_EQ(lm_storage_read(path, &p, &len, &err), LM_OK);
    CHECK_EQ(len, 0);
    free(p);

    /* A megabyte with every byte value. */
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (uint8_t)(i * 131 + (i >> 9));
    }
    CHECK_EQ(lm_storage_write(path, big, sizeof(big), &err), LM_OK);
    CHECK_EQ(lm_storage_read(path, &p, &len, &err), LM_OK);
    CHECK_EQ(len, sizeof(big));
    CHECK(memcmp(p, big, len) == 0);
    free(p);

    /* No temporary files left behind. */
    list_dir(dir, names, sizeof(names));
    ck_assert_str_eq(names, "table-a-000");
    CHECK_EQ(lm_storage_remove_tree(dir, &err), LM_OK);
}
END_TEST

START_TEST(test_storage_write_makes_parent_directories)
{
    char dir[64], path[256];
    lm_error err;

    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path),
             "%s/job/checkpoints/checkpoint-0000003/operator-agg/table-counts-001", dir);
    REQUIRE(lm_storage_write(path, "x", 1, &err) == LM_OK, "%s", err.msg);
    expect_file(path, "x");
    CHECK_EQ(lm_storage_remove_tree(dir, &err), LM_OK);
    CHECK_EQ(lm_storage_exists(dir), 0);
}
END_TEST

/* A write that fails leaves the old file as it was and no temporary file,
 * and says which path. */
START_TEST(test_storage_failed_write_keeps_the_old_file)
{
    char dir[64], path[128], sub[128], names[256];
    lm_error err;
    int rv;

    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/file", dir);
    CHECK_EQ(lm_storage_write(path, "old", 3, &err), LM_OK);

    /* The target is a directory: the final rename fails. */
    snprintf(sub, sizeof(sub), "%s/adir", dir);
    CHECK_EQ(lm_storage_mkdirs(sub, &err), LM_OK);
    snprintf(sub, sizeof(sub), "%s/adir/inside", dir);
    CHECK_EQ(lm_storage_write(sub, "i", 1, &err), LM_OK);
    snprintf(sub, sizeof(sub), "%s/adir", dir);
    lm_error_clear(&err);
    rv = lm_storage_write(sub, "new", 3, &err);
    CHECK_EQ(rv, LM_EIO);
    CHECK_EQ(err.code, LM_EIO);
    REQUIRE(strstr(err.msg, sub) != NULL, "'%s' does not name %s", err.msg, sub);

    /* A parent that is a file. */
    snprintf(sub, sizeof(sub), "%s/file/below/x", dir);
    lm_error_clear(&err);
    rv = lm_storage_write(sub, "new", 3, &err);
    CHECK_EQ(rv, LM_EIO);
    REQUIRE(strstr(err.msg, dir) != NULL, "'%s' does not name the path", err.msg);

    /* The file cannot grow past 4 KiB (RLIMIT_FSIZE, in a child process):
     * the write of 64 KiB fails half way. */
    {
        pid_t pid = fork();
        int status;
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            static uint8_t big[64 << 10];
            struct rlimit rl = {4096, 4096};
            signal(SIGXFSZ, SIG_IGN);
            setrlimit(RLIMIT_FSIZE, &rl);
            memset(big, 'b', sizeof(big));
            rv = lm_storage_write(path, big, sizeof(big), &err);
            _exit(rv == LM_EIO && strstr(err.msg, path) != NULL ? 0 : 1);
        }
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "a write beyond RLIMIT_FSIZE did not fail with LM_EIO naming the path");
    }

    /* Read-only directory (meaningless for root, who may write anyway). */
    if (geteuid() != 0) {
        char ro[128], f[160];
        snprintf(ro, sizeof(ro), "%s/ro", dir);
        CHECK_EQ(lm_storage_mkdirs(ro, &err), LM_OK);
        snprintf(f, sizeof(f), "%s/f", ro);
        CHECK_EQ(lm_storage_write(f, "1", 1, &err), LM_OK);
        CHECK_EQ(chmod(ro, 0555), 0);
        lm_error_clear(&err);
        CHECK_EQ(lm_storage_write(f, "2", 1, &err), LM_EIO);
        REQUIRE(strstr(err.msg, f) != NULL, "'%s' does not name %s", err.msg, f);
        chmod(ro, 0755);
        expect_file(f, "1");
        list_dir(ro, names, sizeof(names));
        ck_assert_str_eq(names, "f");
    }

    expect_file(path, "old");
    list_dir(dir, names, sizeof(names));
    ck_assert_str_eq(names, geteuid() != 0 ? "adir file ro" : "adir file");
    snprintf(sub, sizeof(sub), "%s/adir", dir);
    list_dir(sub, names, sizeof(names));
    ck_assert_str_eq(names, "inside");
    CHECK_EQ(lm_storage_remove_tree(dir, &err), LM_OK);
}
END_TEST

START_TEST(test_storage_mkdirs_nested_and_existing)
{
    char dir[64], path[192];
    struct stat st;
    lm_error err;
    int rv;

    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/a/b/c/d", dir);
    CHECK_EQ(lm_storage_mkdirs(path, &err), LM_OK);
    CHECK_EQ(stat(path, &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_EQ(lm_storage_mkdirs(path, &err), LM_OK); /* exists: fine */
    snprintf(path, sizeof(path), "%s/a/b/e/", dir); /* trailing slash */
    CHECK_EQ(lm_storage_mkdirs(path, &err), LM_OK);
    CHECK_EQ(stat(path, &st), 0);
    CHECK(S_ISDIR(st.st_mode));

    /* A component that is a file. */
    snprintf(path, sizeof(path), "%s/a/f", dir);
    CHECK_EQ(lm_storage_write(path, "x", 1, &err), LM_OK);
    snprintf(path, sizeof(path), "%s/a/f/g", dir);
    lm_error_clear(&err);
    CHECK_EQ(lm_storage_mkdirs(path, &err), LM_EIO);
    REQUIRE(strstr(err.msg, "/a/f") != NULL, "'%s' does not name the path", err.msg);
    /* The path itself is a file: it is not a directory, so not made. */
    snprintf(path, sizeof(path), "%s/a/f", dir);
    lm_error_clear(&err);
    rv = lm_storage_mkdirs(path, &err);
    CHECK_EQ(lm_storage_remove_tree(dir, &err), LM_OK);
    REQUIRE(rv == LM_EIO, "mkdirs of an existing regular file returned %s, expected LM_EIO",
            lm_errname(rv));
}
END_TEST

START_TEST(test_storage_remove_tree_nested_without_following_links)
{
    char dir[64], keep[64], path[256], link[256];
    lm_error err;

    tmp_dir(dir, sizeof(dir));
    tmp_dir(keep, sizeof(keep));
    snprintf(path, sizeof(path), "%s/precious", keep);
    CHECK_EQ(lm_storage_write(path, "keep me", 7, &err), LM_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/x%d/y/z/file%d", dir, i, i);
        CHECK_EQ(lm_storage_write(path, "data", 4, &err), LM_OK);
    }
    snprintf(path, sizeof(path), "%s/x0/empty/deeper", dir);
    CHECK_EQ(lm_storage_mkdirs(path, &err), LM_OK);
    snprintf(link, sizeof(link), "%s/x1/y/link", dir);
    CHECK_EQ(symlink(keep, link), 0);

    CHECK_EQ(lm_storage_remove_tree(dir, &err), LM_OK);
    CHECK_EQ(lm_storage_exists(dir), 0);
    snprintf(path, sizeof(path), "%s/precious", keep);
    expect_file(path, "keep me");

    /* Missing: nothing to do. A single file: removed. */
    CHECK_EQ(lm_storage_remove_tree(dir, &err), LM_OK);
    CHECK_EQ(lm_storage_remove_tree(path, &err), LM_OK);
    CHECK_EQ(lm_storage_exists(path), 0);
    CHECK_EQ(lm_storage_remove_tree(keep, &err), LM_OK);
    CHECK_EQ(lm_storage_exists(keep), 0);
}
END_TEST

START_TEST(test_storage_read_missing_and_paths)
{
    char dir[64], path[128];
    uint8_t *p = NULL;
    size_t len = 0;
    lm_error err;

    tmp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/nothing-here", dir);
    lm_error_clear(&err);
    CHECK_EQ(lm_storage_read(path, &p, &len, &err), LM_ENOTFOUND);
    REQUIRE(strstr(err.msg, path) != NULL, "'%s' does not name %s", err.msg, path);
    snprintf(path, sizeof(path), "%s/no/such/dir/file", dir);
    CHECK_EQ(lm_storage_read(path, &p, &len, &err), LM_ENOTFOUND);
    /* A directory is not a file. */
    lm_error_clear(&err);
    CHECK_EQ(lm_storage_read(dir, &p, &len, &err), LM_EIO);
    REQUIRE(strstr(err.msg, dir) != NULL, "'%s' does not name %s", err.msg, dir);

    ck_assert_str_eq(lm_storage_local_path("file:///var/lib/laminar"), "/var/lib/laminar");
    ck_assert_str_eq(lm_storage_local_path("/var/lib/laminar"), "/var/lib/laminar");
    ck_assert_str_eq(lm_storage_local_path("relative/dir"), "relative/dir");
    CHECK_NULL(lm_storage_local_path("s3://bucket/prefix"));
    CHECK_EQ(lm_storage_remove_tree(dir, &err), LM_OK);
}
END_TEST

/* --- APPEND tables ------------------------------------------------------------ */

/* A model of an append table: entry i (number i + 1) with its time, value
 * and whether it is present. */
typedef struct amodel {
    int64_t *ts;
    uint32_t *val; /* the value is 4 bytes of it, repeated (val % 7 + 1) times */
    uint8_t *live;
    uint64_t n, first; /* entries appended; numbers below first are gone */
} amodel;

static uint32_t
aval(uint32_t v, uint8_t *buf)
{
    uint32_t reps = v % 7 + 1;
    for (uint32_t k = 0; k < reps; k++) {
        memcpy(buf + 4 * k, &v, 4);
    }
    return 4 * reps;
}

/* The table holds exactly the model's present entries. */
static void
acheck(lm_table *t, const amodel *m)
{
    uint64_t live = 0;

    CHECK_EQ(lm_table_next_seq(t), m->n + 1);
    for (uint64_t i = 0; i < m->n; i++) {
        const void *v;
        uint32_t vlen;
        int64_t ts;
        int rv = lm_table_at(t, i + 1, &v, &vlen, &ts);
        bool want = i + 1 >= m->first && m->live[i];
        REQUIRE((rv == LM_OK) == want, "entry %" PRIu64 ": %s, expected %s", i + 1, lm_errname(rv),
                want ? "present" : "gone");
        if (want) {
            uint8_t buf[32];
            uint32_t len = aval(m->val[i], buf);
            CHECK_EQ(vlen, len);
            REQUIRE(memcmp(v, buf, len) == 0, "entry %" PRIu64 ": other bytes", i + 1);
            CHECK_EQ(ts, m->ts[i]);
            live++;
        }
    }
    CHECK_EQ(lm_table_count(t), live);
    CHECK_EQ(scan_count(t), live);
}

static int
order_visit(void *arg, const void *key, uint32_t klen, int64_t ts, void *val, uint32_t vlen)
{
    uint64_t *last = arg, seq = 0;
    (void)ts;
    (void)val;
    (void)vlen;
    REQUIRE(klen == 8, "an append table's key is its 8-byte number");
    for (int i = 7; i >= 0; i--) {
        seq = seq << 8 | ((const uint8_t *)key)[i];
    }
    REQUIRE(seq > *last, "visited %" PRIu64 " after %" PRIu64, seq, *last);
    *last = seq;
    return 0;
}

START_TEST(test_state_append_numbers_reads_removes_and_expires_in_order)
{
    lm_table *t = new_table(LM_TABLE_APPEND, "buf", 0), *bad = NULL;
    const void *v;
    uint32_t vlen;
    int64_t ts;
    uint64_t seq, last = 0;

    CHECK_EQ(lm_table_new(LM_TABLE_APPEND, "buf", 8, &bad), LM_EINVAL); /* no fixed size */
    CHECK_EQ(lm_table_next_seq(t), 1);
    CHECK_EQ(lm_table_min_time(t), INT64_MAX);
    for (int i = 0; i < 10; i++) {
        char val[16];
        int n = snprintf(val, sizeof(val), "row%d", i);
        /* times rise, but entry 5 (number 6) comes late: time 1 */
        CHECK_EQ(lm_table_append(t, i == 5 ? 1 : i * 10, val, (uint32_t)n, &seq), LM_OK);
        CHECK_EQ(seq, (uint64_t)i + 1);
    }
    CHECK_EQ(lm_table_count(t), 10);
    CHECK_EQ(lm_table_at(t, 3, &v, &vlen, &ts), LM_OK);
    CHECK(vlen == 4 && memcmp(v, "row2", 4) == 0 && ts == 20);
    CHECK_EQ(lm_table_at(t, 0, &v, &vlen, &ts), LM_ENOTFOUND);
    CHECK_EQ(lm_table_at(t, 11, &v, &vlen, &ts), LM_ENOTFOUND);
    /* keyed access does not apply */
    CHECK_EQ(lm_table_put(t, "k", 1, 0, "v", 1), LM_EINVAL);
    CHECK_EQ(lm_table_get(t, "k", 1, &v, &vlen, &ts), LM_EINVAL);
    CHECK_EQ(lm_table_delete(t, "k", 1), LM_EINVAL);
    CHECK_NULL(lm_table_find(t, "k", 1));
    CHECK_EQ(lm_table_remove_at(t, 4), LM_OK);
    CHECK_EQ(lm_table_remove_at(t, 4), LM_ENOTFOUND);
    CHECK_EQ(lm_table_count(t), 9);
    CHECK_EQ(lm_table_scan(t, order_visit, &last), 0);
    CHECK_EQ(last, 10);
    /* expiry: from the oldest number while the time has passed */
    CHECK_EQ(lm_table_min_time(t), 0);
    CHECK_EQ(lm_table_expire(t, 25, NULL, NULL), 0); /* 1, 2, 3 (0, 10, 20); 4 was removed */
    CHECK_EQ(lm_table_first_seq(t), 5);
    CHECK_EQ(lm_table_at(t, 3, &v, &vlen, &ts), LM_ENOTFOUND);
    CHECK_EQ(lm_table_expire(t, 45, NULL, NULL), 0); /* 5 (40) and 6 (time 1); 7 (60) stops */
    CHECK_EQ(lm_table_first_seq(t), 7);
    CHECK_EQ(lm_table_count(t), 4);
    CHECK_EQ(lm_table_min_time(t), 60);
    last = 0;
    CHECK_EQ(lm_table_expire(t, INT64_MAX, order_visit, &last), 0);
    CHECK_EQ(last, 10);
    CHECK_EQ(lm_table_count(t), 0);
    CHECK_EQ(lm_table_bytes(t), 0);
    CHECK_EQ(lm_table_append(t, 5, "x", 1, &seq), LM_OK);
    CHECK_EQ(seq, 11); /* numbers go on */
    lm_table_free(t);
}
END_TEST

/* A later entry with an earlier time waits behind the one before it. */
START_TEST(test_state_append_expiry_stops_at_an_entry_still_to_come)
{
    lm_table *t = new_table(LM_TABLE_APPEND, "buf", 0);
    uint64_t seq;

    CHECK_EQ(lm_table_append(t, 100, "a", 1, &seq), LM_OK);
    CHECK_EQ(lm_table_append(t, 5, "b", 1, &seq), LM_OK);
    CHECK_EQ(lm_table_expire(t, 50, NULL, NULL), 0);
    CHECK_EQ(lm_table_count(t), 2); /* "b" is held back by "a" */
    CHECK_EQ(lm_table_expire(t, 101, NULL, NULL), 0);
    CHECK_EQ(lm_table_count(t), 0);
    lm_table_free(t);
}
END_TEST

/* Memory follows what is held: entries that expire give their bytes back. */
START_TEST(test_state_append_memory_follows_the_window)
{
    lm_table *t = new_table(LM_TABLE_APPEND, "buf", 0);
    uint8_t val[200];
    uint64_t seq;
    size_t base = 0;

    memset(val, 'v', sizeof(val));
    for (int64_t i = 0; i < 2000000; i++) {
        REQUIRE(lm_table_append(t, i, val, sizeof(val), &seq) == LM_OK, "append %" PRId64, i);
        if (i % 1000 == 999) {
            CHECK_EQ(lm_table_expire(t, i - 10000, NULL, NULL), 0);
        }
        if (i == 100000) {
            base = heap_in_use();
        }
    }
    CHECK(lm_table_count(t) <= 11000);
    /* 2 million 200-byte entries went through; about 10,000 are held */
    REQUIRE(heap_in_use() < base + (8u << 20), "heap grew from %zu to %zu bytes", base,
            heap_in_use());
    lm_table_free(t);
}
END_TEST

/* Random appends, removals and expiry over many epochs: the snapshot chain
 * restored into a fresh table gives the model, and a restored table goes
 * on as the original. */
START_TEST(test_state_append_snapshot_roundtrip_random)
{
    uint64_t rs = 42;
    amodel m = {0};
    snap chain[64];
    uint32_t nchain = 0;
    lm_table *t = new_table(LM_TABLE_APPEND, "buf", 0);
    uint64_t prev = 0, cap = 200000;

    m.ts = calloc(cap, sizeof(int64_t));
    m.val = calloc(cap, sizeof(uint32_t));
    m.live = calloc(cap, 1);
    m.first = 1;
    for (uint64_t epoch = 1; epoch <= 40; epoch++) {
        uint32_t ops = rnd_below(&rs, 3000);
        for (uint32_t k = 0; k < ops; k++) {
            uint32_t what = rnd_below(&rs, 100);
            if (what < 80 && m.n < cap) {
                uint8_t buf[32];
                uint32_t v = (uint32_t)rnd(&rs);
                int64_t ts = (int64_t)m.n * 10 + rnd_below(&rs, 50); /* nearly in order */
                uint64_t seq;
                CHECK_EQ(lm_table_append(t, ts, buf, aval(v, buf), &seq), LM_OK);
                CHECK_EQ(seq, m.n + 1);
                m.ts[m.n] = ts;
                m.val[m.n] = v;
                m.live[m.n] = 1;
                m.n++;
            } else if (what < 95 && m.n > m.first) {
                uint64_t seq = m.first + rnd(&rs) % (m.n + 1 - m.first);
                int rv = lm_table_remove_at(t, seq);
                CHECK_EQ(rv, m.live[seq - 1] ? LM_OK : LM_ENOTFOUND);
                m.live[seq - 1] = 0;
            } else if (m.n > 0) {
                int64_t upto = m.ts[m.n - 1] - (int64_t)rnd_below(&rs, 3000);
                CHECK_EQ(lm_table_expire(t, upto, NULL, NULL), 0);
                while (m.first <= m.n && (!m.live[m.first - 1] || m.ts[m.first - 1] < upto)) {
                    m.live[m.first - 1] = 0;
                    m.first++;
                }
            }
        }
        acheck(t, &m);
        chain[nchain] = take_snapshot(t, epoch, prev);
        if (chain[nchain].full) {
            for (uint32_t i = 0; i < nchain; i++) {
                free(chain[i].p);
            }
            chain[0] = chain[nchain];
            nchain = 0;
        }
        nchain++;
        prev = epoch;
        {
            lm_table *r = new_table(LM_TABLE_APPEND, "buf", 0);
            for (uint32_t i = 0; i < nchain; i++) {
                restore_ok(r, &chain[i]);
            }
            acheck(r, &m);
            if (epoch % 7 == 0) {
                /* go on from the restored table, as after a recovery */
                lm_table_free(t);
                t = r;
            } else {
                lm_table_free(r);
            }
        }
    }
    for (uint32_t i = 0; i < nchain; i++) {
        free(chain[i].p);
    }
    free(m.ts);
    free(m.val);
    free(m.live);
    lm_table_free(t);
}
END_TEST

START_TEST(test_state_append_restore_rejects_bad_numbers)
{
    lm_table *t = new_table(LM_TABLE_APPEND, "buf", 0), *r;
    uint64_t seq;
    snap s1, s2;
    lm_error err;

    CHECK_EQ(lm_table_append(t, 1, "a", 1, &seq), LM_OK);
    s1 = take_snapshot(t, 1, 0);
    CHECK_EQ(lm_table_append(t, 2, "b", 1, &seq), LM_OK);
    s2 = take_snapshot(t, 2, 1);
    CHECK(!s2.full);
    /* an incremental snapshot on a table that does not have its base */
    r = new_table(LM_TABLE_APPEND, "buf", 0);
    restore_ok(r, &s1);
    restore_ok(r, &s2);
    CHECK_EQ(lm_table_count(r), 2);
    /* applied twice: entry 2 again */
    CHECK_EQ(lm_table_restore(r, s2.p, s2.len, &err), LM_EPROTO);
    lm_table_free(r);
    /* the snapshot of an append table does not fit a keyed one */
    r = new_table(LM_TABLE_EXPIRING, "buf", 0);
    CHECK_EQ(lm_table_restore(r, s1.p, s1.len, &err), LM_EPROTO);
    lm_table_free(r);
    free(s1.p);
    free(s2.p);
    lm_table_free(t);
}
END_TEST

Suite *
state_suite(void)
{
    Suite *s = suite_create("state");
    TCase *tc = tcase_create("table");
    TCase *ts = tcase_create("snapshot");
    TCase *tb = tcase_create("corrupt");
    TCase *tst = tcase_create("storage");

    tcase_add_test(tc, test_state_new_checks_its_arguments);
    tcase_add_test(tc, test_state_upsert_updates_in_place);
    tcase_add_test(tc, test_state_put_get_delete_variable_values);
    tcase_add_test(tc, test_state_index_matches_a_model);
    tcase_add_test(tc, test_state_scan_visits_each_entry_once_and_stops);
    tcase_add_test(tc, test_state_expire_visits_oldest_first_below_the_bound);
    tcase_add_test(tc, test_state_expire_visitor_stops_early);
    tcase_add_test(tc, test_state_expire_follows_changed_times);
    tcase_add_test(tc, test_state_expire_memory_stays_bounded_as_times_pass);
    tcase_add_test(tc, test_state_memory_stays_bounded_without_snapshots);
    suite_add_tcase(s, tc);

    tcase_add_test(ts, test_state_snapshot_schedule_full_and_incremental);
    tcase_add_test(ts, test_state_snapshot_full_when_changes_outgrow_the_table);
    tcase_add_test(ts, test_state_snapshot_roundtrip_random_expiring_variable);
    tcase_add_test(ts, test_state_snapshot_roundtrip_random_expiring_fixed);
    tcase_add_test(ts, test_state_snapshot_roundtrip_random_global_variable);
    tcase_add_test(ts, test_state_snapshot_roundtrip_random_global_fixed);
    tcase_add_test(ts, test_state_snapshot_delete_then_readd_in_one_epoch);
    tcase_add_test(ts, test_state_snapshot_expire_then_upsert_in_one_epoch);
    tcase_add_test(ts, test_state_snapshot_delete_and_readd_across_epochs);
    tcase_add_test(ts, test_state_restore_keeps_times_for_expiry);
    tcase_add_test(ts, test_state_restore_full_replaces_and_chain_walks_back);
    suite_add_tcase(s, ts);
    {
        TCase *ta = tcase_create("append");
        tcase_add_test(ta, test_state_append_numbers_reads_removes_and_expires_in_order);
        tcase_add_test(ta, test_state_append_expiry_stops_at_an_entry_still_to_come);
        tcase_add_test(ta, test_state_append_memory_follows_the_window);
        tcase_add_test(ta, test_state_append_snapshot_roundtrip_random);
        tcase_add_test(ta, test_state_append_restore_rejects_bad_numbers);
        tcase_set_timeout(ta, 30);
        suite_add_tcase(s, ta);
    }

    tcase_add_test(tb, test_state_restore_rejects_every_truncation);
    tcase_add_test(tb, test_state_restore_rejects_flipped_bytes);
    tcase_add_test(tb, test_state_restore_rejects_another_table);
    tcase_add_test(tb, test_state_restore_rejects_malformed_contents);
    tcase_add_test(tb, test_state_restore_rejects_bad_headers);
    tcase_set_timeout(tb, 30);
    suite_add_tcase(s, tb);

    tcase_add_test(tst, test_storage_write_replaces_atomically);
    tcase_add_test(tst, test_storage_write_makes_parent_directories);
    tcase_add_test(tst, test_storage_failed_write_keeps_the_old_file);
    tcase_add_test(tst, test_storage_mkdirs_nested_and_existing);
    tcase_add_test(tst, test_storage_remove_tree_nested_without_following_links);
    tcase_add_test(tst, test_storage_read_missing_and_paths);
    suite_add_tcase(s, tst);
    return s;
}
