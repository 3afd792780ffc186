/*
 * check_nexmark.c: the Nexmark generator against GENERATOR.md: the
 * documented first events, an independent re-implementation of the
 * random streams (price with pow, hot/cold ids), determinism, columns
 * that do not depend on which others were asked for, the parallel split,
 * kinds masks and end of stream, ids, timestamps and out-of-order groups,
 * extra lengths, strings, nulls, resuming a cursor, option errors, and the
 * CSV dump.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_batch.h"
#include "lm_mp.h"
#include "lm_nexmark.h"

#define BASE_MS 1436918400000ll

__extension__ typedef unsigned __int128 u128;

/* Assertions that call into Check only when they fail: a passing
 * ck_assert records a mark point through the fork runner's pipe, and the
 * loops here check millions of values. */
#define REQ(c)                                                                                     \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c);                                     \
        }                                                                                          \
    } while (0)
#define REQ_MSG(c, ...)                                                                            \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            ck_abort_msg(__VA_ARGS__);                                                             \
        }                                                                                          \
    } while (0)
#define REQ_CMP(T, FMT, a, op, b)                                                                  \
    do {                                                                                           \
        T a_ = (T)(a), b_ = (T)(b);                                                                \
        if (!(a_ op b_)) {                                                                         \
            ck_abort_msg("%s:%d: %s " #op " %s (" FMT " vs " FMT ")", __FILE__, __LINE__, #a, #b,  \
                         a_, b_);                                                                  \
        }                                                                                          \
    } while (0)
#define REQ_I(a, op, b) REQ_CMP(long long, "%lld", a, op, b)
#define REQ_U(a, op, b) REQ_CMP(unsigned long long, "%llu", a, op, b)
#define REQ_S(a, b)                                                                                \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_) != 0) {                                                                 \
            ck_abort_msg("%s:%d: %s == %s ('%s' vs '%s')", __FILE__, __LINE__, #a, #b, a_, b_);    \
        }                                                                                          \
    } while (0)

static const char *const ALL_COLS[LM_NEXMARK_NCOLS] = {
    "event_type",         "person.id",        "person.name",      "person.emailAddress",
    "person.creditCard",  "person.city",      "person.state",     "person.dateTime",
    "person.extra",       "auction.id",       "auction.itemName", "auction.description",
    "auction.initialBid", "auction.reserve",  "auction.dateTime", "auction.expires",
    "auction.seller",     "auction.category", "auction.extra",    "bid.auction",
    "bid.bidder",         "bid.price",        "bid.channel",      "bid.url",
    "bid.dateTime",       "bid.extra",        "dateTime",
};

/* --- helpers ---------------------------------------------------------------- */

static lm_nexmark_gen *
new_gen(const lm_nexmark_cfg *cfg)
{
    lm_nexmark_gen *g = NULL;
    lm_error err;
    REQ_MSG(lm_nexmark_gen_new(cfg, &g, &err) == LM_OK, "%s", err.msg);
    return g;
}

static lm_nexmark_cols
resolve(const char *const *names, uint32_t n)
{
    lm_nexmark_cols cols;
    lm_error err;
    REQ_MSG(lm_nexmark_columns(names, n, &cols, &err) == LM_OK, "%s", err.msg);
    return cols;
}

static lm_batch *
new_batch(const lm_nexmark_cols *cols, uint32_t cap)
{
    lm_schema *s = NULL;
    lm_batch *b = NULL;
    lm_error err;
    REQ_MSG(lm_nexmark_schema(cols, &s, &err) == LM_OK, "%s", err.msg);
    REQ_I(lm_batch_new(s, cap, &b), ==, LM_OK);
    lm_schema_release(s);
    return b;
}

/* Fills b from c; returns the rows added and checks the call succeeded. */
static uint32_t
fill(const lm_nexmark_gen *g, const lm_nexmark_cols *cols, lm_nexmark_cursor *c, lm_batch *b,
     uint32_t max_rows, uint64_t *consumed, bool *ended)
{
    uint32_t before = b->nrows;
    uint64_t cons = 0;
    bool end = false;
    REQ_I(lm_nexmark_fill(g, cols, c, b, max_rows, &cons, &end), ==, LM_OK);
    if (consumed != NULL) {
        *consumed = cons;
    }
    if (ended != NULL) {
        *ended = end;
    }
    return b->nrows - before;
}

/* A cell as canonical text: "-" for null, "i:<n>" for integers and
 * timestamps, "s:<bytes>" for strings. */
static void
batch_cell(const lm_batch *b, uint32_t c, uint32_t r, char *out, size_t cap)
{
    lm_value v;
    lm_batch_get(b, c, r, &v);
    if (v.is_null) {
        snprintf(out, cap, "-");
    } else if (lm_type_is_varwidth(b->schema->fields[c].type)) {
        snprintf(out, cap, "s:%.*s", (int)v.v.s.len, (const char *)v.v.s.ptr);
    } else {
        snprintf(out, cap, "i:%lld", (long long)v.v.i);
    }
}

/* The expected cell of column col for event n, from the whole-event API. */
static void
expect_cell(const lm_nexmark_gen *g, uint64_t n, lm_nexmark_col col, char *out, size_t cap)
{
    const lm_nexmark_cfg *cfg = lm_nexmark_gen_cfg(g);
    lm_nexmark_kind k = lm_nexmark_kind_of(cfg, n);
    lm_nexmark_person p;
    lm_nexmark_auction a;
    lm_nexmark_bid b;

    if (col == LM_NEXMARK_COL_EVENT_TYPE) {
        snprintf(out, cap, "i:%d", (int)k);
        return;
    }
    if (col == LM_NEXMARK_COL_DATETIME) {
        snprintf(out, cap, "i:%lld", (long long)lm_nexmark_time_ms(cfg, n) * 1000);
        return;
    }
    if ((col <= LM_NEXMARK_COL_PERSON_EXTRA && k != LM_NEXMARK_PERSON) ||
        (col >= LM_NEXMARK_COL_AUCTION_ID && col <= LM_NEXMARK_COL_AUCTION_EXTRA &&
         k != LM_NEXMARK_AUCTION) ||
        (col >= LM_NEXMARK_COL_BID_AUCTION && col <= LM_NEXMARK_COL_BID_EXTRA &&
         k != LM_NEXMARK_BID)) {
        snprintf(out, cap, "-");
        return;
    }
    if (k == LM_NEXMARK_PERSON) {
        REQ_I(lm_nexmark_person_at(g, n, &p), ==, LM_OK);
    } else if (k == LM_NEXMARK_AUCTION) {
        REQ_I(lm_nexmark_auction_at(g, n, &a), ==, LM_OK);
    } else {
        REQ_I(lm_nexmark_bid_at(g, n, &b), ==, LM_OK);
    }
    switch (col) {
    case LM_NEXMARK_COL_PERSON_ID: snprintf(out, cap, "i:%lld", (long long)p.id); break;
    case LM_NEXMARK_COL_PERSON_NAME: snprintf(out, cap, "s:%s", p.name); break;
    case LM_NEXMARK_COL_PERSON_EMAIL: snprintf(out, cap, "s:%s", p.email); break;
    case LM_NEXMARK_COL_PERSON_CREDIT_CARD: snprintf(out, cap, "s:%s", p.credit_card); break;
    case LM_NEXMARK_COL_PERSON_CITY: snprintf(out, cap, "s:%s", p.city); break;
    case LM_NEXMARK_COL_PERSON_STATE: snprintf(out, cap, "s:%s", p.state); break;
    case LM_NEXMARK_COL_PERSON_DATETIME:
        snprintf(out, cap, "i:%lld", (long long)p.date_time_ms * 1000);
        break;
    case LM_NEXMARK_COL_PERSON_EXTRA:
        snprintf(out, cap, "s:%.*s", (int)p.extra_len, p.extra);
        break;
    case LM_NEXMARK_COL_AUCTION_ID: snprintf(out, cap, "i:%lld", (long long)a.id); break;
    case LM_NEXMARK_COL_AUCTION_ITEM_NAME: snprintf(out, cap, "s:%s", a.item_name); break;
    case LM_NEXMARK_COL_AUCTION_DESCRIPTION: snprintf(out, cap, "s:%s", a.description); break;
    case LM_NEXMARK_COL_AUCTION_INITIAL_BID:
        snprintf(out, cap, "i:%lld", (long long)a.initial_bid);
        break;
    case LM_NEXMARK_COL_AUCTION_RESERVE: snprintf(out, cap, "i:%lld", (long long)a.reserve); break;
    case LM_NEXMARK_COL_AUCTION_DATETIME:
        snprintf(out, cap, "i:%lld", (long long)a.date_time_ms * 1000);
        break;
    case LM_NEXMARK_COL_AUCTION_EXPIRES:
        snprintf(out, cap, "i:%lld", (long long)a.expires_ms * 1000);
        break;
    case LM_NEXMARK_COL_AUCTION_SELLER: snprintf(out, cap, "i:%lld", (long long)a.seller); break;
    case LM_NEXMARK_COL_AUCTION_CATEGORY:
        snprintf(out, cap, "i:%lld", (long long)a.category);
        break;
    case LM_NEXMARK_COL_AUCTION_EXTRA:
        snprintf(out, cap, "s:%.*s", (int)a.extra_len, a.extra);
        break;
    case LM_NEXMARK_COL_BID_AUCTION: snprintf(out, cap, "i:%lld", (long long)b.auction); break;
    case LM_NEXMARK_COL_BID_BIDDER: snprintf(out, cap, "i:%lld", (long long)b.bidder); break;
    case LM_NEXMARK_COL_BID_PRICE: snprintf(out, cap, "i:%lld", (long long)b.price); break;
    case LM_NEXMARK_COL_BID_CHANNEL: snprintf(out, cap, "s:%s", b.channel); break;
    case LM_NEXMARK_COL_BID_URL: snprintf(out, cap, "s:%s", b.url); break;
    case LM_NEXMARK_COL_BID_DATETIME:
        snprintf(out, cap, "i:%lld", (long long)b.date_time_ms * 1000);
        break;
    case LM_NEXMARK_COL_BID_EXTRA: snprintf(out, cap, "s:%.*s", (int)b.extra_len, b.extra); break;
    default: ck_abort_msg("column %d", (int)col);
    }
}

/* Asserts that row r of b (columns cols) is event n. */
static void
assert_row_is_event(const lm_nexmark_gen *g, const lm_nexmark_cols *cols, const lm_batch *b,
                    uint32_t r, uint64_t n)
{
    char want[512], got[512];
    for (uint32_t i = 0; i < cols->n; i++) {
        expect_cell(g, n, (lm_nexmark_col)cols->col[i], want, sizeof(want));
        batch_cell(b, i, r, got, sizeof(got));
        REQ_MSG(strcmp(want, got) == 0, "event %llu column %s: got '%s', want '%s'",
                (unsigned long long)n, ALL_COLS[cols->col[i]], got, want);
    }
}

/* A whole row as one string (for multiset comparisons). */
static char *
row_text(const lm_batch *b, uint32_t r)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap), cell[512];
    REQ(s != NULL);
    s[0] = '\0';
    for (uint32_t c = 0; c < b->schema->nfields; c++) {
        batch_cell(b, c, r, cell, sizeof(cell));
        len += (size_t)snprintf(s + len, cap - len, "%s|", cell);
        REQ_U(len, <, cap);
    }
    return s;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --- the independent reference of the random streams ---------------------- */

static uint64_t
ref_fin(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t
ref_mix(uint64_t z)
{
    return ref_fin(z + 0x9E3779B97F4A7C15ull);
}

static uint64_t
ref_draw(uint64_t *s)
{
    *s += 0x9E3779B97F4A7C15ull;
    return ref_fin(*s);
}

static uint64_t
ref_stream(uint64_t seed, uint64_t n, unsigned f)
{
    return ref_mix(seed ^ ref_mix(n * 16 + f));
}

static int64_t
ref_price(uint64_t *s)
{
    double u = (double)(ref_draw(s) >> 11) * pow(2, -53);
    return (int64_t)(pow(10, u * 6) * 100);
}

static int64_t
ref_cold(uint64_t *s, int64_t last, int64_t window)
{
    int64_t lo = last - window > 1000 ? last - window : 1000;
    return lo + (int64_t)(ref_draw(s) % (uint64_t)(last - lo + 1 + 10));
}

/* str(m) straight from the page: length, base-27 digits lowest first, 12
 * per draw, then trimmed. */
static void
ref_str(uint64_t *s, uint64_t m, char *out)
{
    uint64_t len = 3 + ref_draw(s) % (m - 3), i = 0, a = 0, e;
    char buf[128];
    while (i < len) {
        uint64_t d = ref_draw(s);
        for (int k = 0; k < 12 && i < len; k++, i++) {
            buf[i] = d % 27 == 26 ? ' ' : (char)('a' + d % 27);
            d /= 27;
        }
    }
    e = len;
    while (a < e && buf[a] == ' ') {
        a++;
    }
    while (e > a && buf[e - 1] == ' ') {
        e--;
    }
    memcpy(out, buf + a, e - a);
    out[e - a] = '\0';
}

/* The pool of a seed, straight from the page. */
static char *
ref_pool(uint64_t seed)
{
    char *pool = malloc(1u << 20);
    uint64_t s = ref_mix(seed ^ UINT64_MAX);
    REQ(pool != NULL);
    for (uint32_t i = 0; i < (1u << 20);) {
        uint64_t d = ref_draw(&s);
        for (int k = 0; k < 13 && i < (1u << 20); k++, i++) {
            pool[i] = (char)('a' + d % 26);
            d /= 26;
        }
    }
    return pool;
}

static void
ref_extra(uint64_t *s, const char *pool, uint64_t avg, const char **p, uint32_t *len)
{
    uint64_t l = avg * 4 / 5 + ref_draw(s) % (avg * 2 / 5 + 1);
    *p = pool + ref_draw(s) % ((1u << 20) - l);
    *len = (uint32_t)l;
}

static const char *const REF_FIRST[] = {"Peter", "Paul",  "Luke",  "John",   "Saul",  "Vicky",
                                        "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
static const char *const REF_LAST[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                       "Walton", "Smith",  "Jones",   "Noris"};
static const char *const REF_CITY[] = {"Phoenix",  "Los Angeles", "San Francisco", "Boise",
                                       "Portland", "Bend",        "Redmond",       "Seattle",
                                       "Kent",     "Cheyenne"};
static const char *const REF_STATE[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
static const char *const REF_HOT[] = {"Google", "Facebook", "Baidu", "Apple"};

/* --- tests ---------------------------------------------------------------- */

START_TEST(test_nexmark_first_events_documented)
{
    lm_nexmark_cfg cfg;
    lm_nexmark_person p;
    lm_nexmark_auction a;
    lm_nexmark_bid b;
    lm_nexmark_gen *g;

    lm_nexmark_cfg_defaults(&cfg);
    g = new_gen(&cfg);
    REQ_I(lm_nexmark_kind_of(&cfg, 0), ==, LM_NEXMARK_PERSON);
    REQ_I(lm_nexmark_kind_of(&cfg, 1), ==, LM_NEXMARK_AUCTION);
    REQ_I(lm_nexmark_kind_of(&cfg, 3), ==, LM_NEXMARK_AUCTION);
    REQ_I(lm_nexmark_kind_of(&cfg, 4), ==, LM_NEXMARK_BID);
    REQ_I(lm_nexmark_kind_of(&cfg, 50), ==, LM_NEXMARK_PERSON);

    REQ_I(lm_nexmark_person_at(g, 0, &p), ==, LM_OK);
    REQ_I(p.id, ==, 1000);
    REQ_S(p.name, "Kate Jones");
    REQ_S(p.email, "gept@nuv.com");
    REQ_S(p.credit_card, "5187 2889 5047 4325");
    REQ_S(p.city, "Bend");
    REQ_S(p.state, "CA");
    REQ_I(p.date_time_ms, ==, BASE_MS);

    REQ_I(lm_nexmark_auction_at(g, 1, &a), ==, LM_OK);
    REQ_I(a.id, ==, 1000);
    REQ_I(a.initial_bid, ==, 35260559);
    REQ_I(a.reserve, ==, 35389034);
    REQ_I(a.date_time_ms, ==, BASE_MS);
    REQ_I(a.expires_ms, ==, BASE_MS + 233);
    REQ_I(a.seller, ==, 1000);
    REQ_I(a.category, ==, 12);

    REQ_I(lm_nexmark_bid_at(g, 4, &b), ==, LM_OK);
    REQ_I(b.auction, ==, 1000);
    REQ_I(b.bidder, ==, 1009);
    REQ_I(b.price, ==, 52321305);
    REQ_S(b.channel, "Apple");
    REQ_S(b.url, "https://www.nexmark.com/apple/item.htm?query=1");

    /* wrong kinds are refused */
    REQ_I(lm_nexmark_person_at(g, 1, &p), ==, LM_EINVAL);
    REQ_I(lm_nexmark_auction_at(g, 4, &a), ==, LM_EINVAL);
    REQ_I(lm_nexmark_bid_at(g, 0, &b), ==, LM_EINVAL);

    /* and the columnar path gives the same */
    {
        lm_nexmark_cols cols = resolve(ALL_COLS, LM_NEXMARK_NCOLS);
        lm_batch *bt = new_batch(&cols, 8);
        lm_nexmark_cursor c;
        char cell[512];
        lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
        REQ_U(fill(g, &cols, &c, bt, 5, NULL, NULL), ==, 5);
        batch_cell(bt, LM_NEXMARK_COL_PERSON_NAME, 0, cell, sizeof(cell));
        REQ_S(cell, "s:Kate Jones");
        batch_cell(bt, LM_NEXMARK_COL_PERSON_EMAIL, 0, cell, sizeof(cell));
        REQ_S(cell, "s:gept@nuv.com");
        batch_cell(bt, LM_NEXMARK_COL_AUCTION_RESERVE, 1, cell, sizeof(cell));
        REQ_S(cell, "i:35389034");
        batch_cell(bt, LM_NEXMARK_COL_AUCTION_EXPIRES, 1, cell, sizeof(cell));
        REQ_S(cell, "i:1436918400233000");
        batch_cell(bt, LM_NEXMARK_COL_BID_BIDDER, 4, cell, sizeof(cell));
        REQ_S(cell, "i:1009");
        batch_cell(bt, LM_NEXMARK_COL_BID_PRICE, 4, cell, sizeof(cell));
        REQ_S(cell, "i:52321305");
        batch_cell(bt, LM_NEXMARK_COL_BID_CHANNEL, 4, cell, sizeof(cell));
        REQ_S(cell, "s:Apple");
        batch_cell(bt, LM_NEXMARK_COL_EVENT_TYPE, 4, cell, sizeof(cell));
        REQ_S(cell, "i:2");
        lm_batch_free(bt);
    }
    lm_nexmark_gen_free(g);
}
END_TEST

/* Every field of every event re-implemented here, straight from the
 * page, for two seeds and 200,000 events each. */
START_TEST(test_nexmark_matches_reference_streams)
{
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    uint64_t seeds[2] = {0, 0xDEADBEEFCAFEull};

    for (int si = 0; si < 2; si++) {
        char *pool;
        lm_nexmark_cfg_defaults(&cfg);
        cfg.seed = seeds[si];
        g = new_gen(&cfg);
        pool = ref_pool(cfg.seed);
        for (uint64_t n = 0; n < 200000; n++) {
            uint64_t s, seed = cfg.seed;
            int64_t lastp = lm_nexmark_last_person(&cfg, n),
                    lasta = lm_nexmark_last_auction(&cfg, n);
            int64_t t = BASE_MS + (int64_t)(n / 10);
            char want[256], w2[64], w3[64];
            const char *ex;
            uint32_t exlen;
            lm_nexmark_kind k = lm_nexmark_kind_of(&cfg, n);
            if (k == LM_NEXMARK_PERSON) {
                lm_nexmark_person p;
                REQ_I(lm_nexmark_person_at(g, n, &p), ==, LM_OK);
                REQ_I(p.id, ==, 1000 + (int64_t)(n / 50));
                s = ref_stream(seed, n, 1);
                snprintf(want, sizeof(want), "%s", REF_FIRST[ref_draw(&s) % 11]);
                snprintf(want + strlen(want), sizeof(want) - strlen(want), " %s",
                         REF_LAST[ref_draw(&s) % 9]);
                REQ_S(p.name, want);
                s = ref_stream(seed, n, 2);
                ref_str(&s, 7, w2);
                ref_str(&s, 5, w3);
                snprintf(want, sizeof(want), "%s@%s.com", w2, w3);
                REQ_S(p.email, want);
                s = ref_stream(seed, n, 3);
                want[0] = '\0';
                for (int i = 0; i < 4; i++) {
                    snprintf(want + strlen(want), sizeof(want) - strlen(want), i ? " %04d" : "%04d",
                             (int)(ref_draw(&s) % 10000));
                }
                REQ_S(p.credit_card, want);
                s = ref_stream(seed, n, 4);
                REQ_S(p.city, REF_CITY[ref_draw(&s) % 10]);
                s = ref_stream(seed, n, 5);
                REQ_S(p.state, REF_STATE[ref_draw(&s) % 6]);
                REQ_I(p.date_time_ms, ==, t);
                s = ref_stream(seed, n, 7);
                ref_extra(&s, pool, 100, &ex, &exlen);
                REQ(p.extra_len == exlen && memcmp(p.extra, ex, exlen) == 0);
            } else if (k == LM_NEXMARK_AUCTION) {
                lm_nexmark_auction a;
                int64_t ib, w;
                REQ_I(lm_nexmark_auction_at(g, n, &a), ==, LM_OK);
                REQ_I(a.id, ==, lasta);
                s = ref_stream(seed, n, 1);
                ref_str(&s, 20, want);
                REQ_S(a.item_name, want);
                s = ref_stream(seed, n, 2);
                ref_str(&s, 100, want);
                REQ_S(a.description, want);
                s = ref_stream(seed, n, 3);
                ib = ref_price(&s);
                REQ_I(a.initial_bid, ==, ib);
                s = ref_stream(seed, n, 4);
                REQ_I(a.reserve, ==, ib + ref_price(&s));
                REQ_I(a.date_time_ms, ==, t);
                s = ref_stream(seed, n, 6);
                REQ_I(a.expires_ms, ==, t + 1 + (int64_t)(ref_draw(&s) % (2 * 166 + 1)));
                s = ref_stream(seed, n, 7);
                w = ref_draw(&s) % 4 != 0 ? (lastp / 100) * 100 : ref_cold(&s, lastp, 999);
                REQ_I(a.seller, ==, w);
                s = ref_stream(seed, n, 8);
                REQ_I(a.category, ==, 10 + (int64_t)(ref_draw(&s) % 5));
                s = ref_stream(seed, n, 9);
                ref_extra(&s, pool, 300, &ex, &exlen);
                REQ(a.extra_len == exlen && memcmp(a.extra, ex, exlen) == 0);
            } else {
                lm_nexmark_bid b;
                int64_t w;
                REQ_I(lm_nexmark_bid_at(g, n, &b), ==, LM_OK);
                s = ref_stream(seed, n, 0);
                w = ref_draw(&s) % 2 != 0 ? (lasta / 100) * 100 : ref_cold(&s, lasta, 99);
                REQ_I(b.auction, ==, w);
                s = ref_stream(seed, n, 1);
                w = ref_draw(&s) % 4 != 0 ? (lastp / 100) * 100 + 1 : ref_cold(&s, lastp, 999);
                REQ_I(b.bidder, ==, w);
                s = ref_stream(seed, n, 2);
                REQ_I(b.price, ==, ref_price(&s));
                s = ref_stream(seed, n, 3);
                if (ref_draw(&s) % 2 != 0) {
                    const char *h = REF_HOT[ref_draw(&s) % 4];
                    REQ_S(b.channel, h);
                    snprintf(want, sizeof(want), "https://www.nexmark.com/%s/item.htm?query=1", h);
                    for (char *c = want; *c != '\0'; c++) {
                        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                    }
                } else {
                    char a1[16], a2[16], a3[16];
                    snprintf(w2, sizeof(w2), "channel-%d", (int)(ref_draw(&s) % 10000));
                    REQ_S(b.channel, w2);
                    ref_str(&s, 5, a1);
                    ref_str(&s, 5, a2);
                    ref_str(&s, 5, a3);
                    snprintf(want, sizeof(want),
                             "https://www.nexmark.com/%s/%s/%s/item.htm?query=1", a1, a2, a3);
                    if (ref_draw(&s) % 10 != 0) {
                        snprintf(want + strlen(want), sizeof(want) - strlen(want), "&channel_id=%d",
                                 (int)(ref_draw(&s) % 1000000000));
                    }
                }
                REQ_S(b.url, want);
                REQ_I(b.date_time_ms, ==, t);
                s = ref_stream(seed, n, 6);
                ref_extra(&s, pool, 68, &ex, &exlen);
                REQ(b.extra_len == exlen && memcmp(b.extra, ex, exlen) == 0);
            }
        }
        free(pool);
        lm_nexmark_gen_free(g);
    }
}
END_TEST

/* Values that exercise rare paths of the fast writers: channel ids of
 * few digits, and the columnar path agrees. */
START_TEST(test_nexmark_rare_values)
{
    static const char *const names[] = {"bid.url", "bid.channel"};
    static const struct {
        uint64_t n;
        const char *url;
    } cases[] = {
        {652343, "https://www.nexmark.com/rgl/kxj/znx/item.htm?query=1&channel_id=523"},
        {800683, "https://www.nexmark.com/gp/yo r/nukw/item.htm?query=1&channel_id=2947"},
    };
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(names, 2);
    lm_batch *b = new_batch(&cols, 4);

    lm_nexmark_cfg_defaults(&cfg);
    g = new_gen(&cfg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lm_nexmark_bid bid;
        lm_nexmark_cursor c;
        char cell[256];
        REQ_I(lm_nexmark_bid_at(g, cases[i].n, &bid), ==, LM_OK);
        REQ_S(bid.url, cases[i].url);
        lm_nexmark_cursor_init(&c, &cfg, 0, 1, 1u << LM_NEXMARK_BID);
        lm_nexmark_cursor_seek(&c, cases[i].n);
        lm_batch_clear(b);
        REQ_U(fill(g, &cols, &c, b, 1, NULL, NULL), ==, 1);
        batch_cell(b, 0, 0, cell, sizeof(cell));
        REQ_S(cell + 2, cases[i].url);
        REQ_U(c.next, ==, cases[i].n + 1);
    }
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_deterministic_across_generators)
{
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g1, *g2, *g3;
    lm_nexmark_cols cols = resolve(ALL_COLS, LM_NEXMARK_NCOLS);
    lm_batch *b1 = new_batch(&cols, 64), *b2 = new_batch(&cols, 64), *b3 = new_batch(&cols, 64);
    lm_nexmark_cursor c1, c2, c3;
    uint32_t differ = 0;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.seed = 42;
    g1 = new_gen(&cfg);
    g2 = new_gen(&cfg);
    cfg.seed = 43;
    g3 = new_gen(&cfg);
    cfg.seed = 42;
    lm_nexmark_cursor_init(&c1, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    c3 = c2 = c1;
    REQ_U(fill(g1, &cols, &c1, b1, 3000, NULL, NULL), ==, 3000);
    REQ_U(fill(g2, &cols, &c2, b2, 3000, NULL, NULL), ==, 3000);
    REQ_U(fill(g3, &cols, &c3, b3, 3000, NULL, NULL), ==, 3000);
    for (uint32_t r = 0; r < 3000; r++) {
        char *t1 = row_text(b1, r), *t2 = row_text(b2, r), *t3 = row_text(b3, r);
        REQ_S(t1, t2);
        differ += strcmp(t1, t3) != 0;
        free(t1);
        free(t2);
        free(t3);
    }
    REQ_U(differ, >, 2900); /* another seed, other events */
    lm_batch_free(b1);
    lm_batch_free(b2);
    lm_batch_free(b3);
    lm_nexmark_gen_free(g1);
    lm_nexmark_gen_free(g2);
    lm_nexmark_gen_free(g3);
}
END_TEST

/* Every column, asked for alone, with all others, or in a shuffled subset,
 * holds the value of the whole-event API. */
START_TEST(test_nexmark_columns_do_not_depend_on_each_other)
{
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    uint64_t rng = 7;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.seed = 99;
    g = new_gen(&cfg);
    for (int round = 0; round < LM_NEXMARK_NCOLS + 1 + 20; round++) {
        const char *names[LM_NEXMARK_NCOLS];
        uint32_t nn = 0;
        if (round < LM_NEXMARK_NCOLS) {
            names[nn++] = ALL_COLS[round];
        } else if (round == LM_NEXMARK_NCOLS) {
            for (int i = LM_NEXMARK_NCOLS - 1; i >= 0; i--) {
                names[nn++] = ALL_COLS[i];
            }
        } else {
            for (int i = 0; i < LM_NEXMARK_NCOLS; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                if ((rng >> 33) % 3 == 0) {
                    names[nn++] = ALL_COLS[i];
                }
            }
            for (uint32_t i = nn; i > 1; i--) { /* shuffle */
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t j = (uint32_t)((rng >> 33) % i);
                const char *t = names[i - 1];
                names[i - 1] = names[j];
                names[j] = t;
            }
        }
        lm_nexmark_cols cols = resolve(names, nn);
        lm_batch *b = new_batch(&cols, 16);
        lm_nexmark_cursor c;
        lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
        /* two fills into one batch: the second appends after rows */
        REQ_U(fill(g, &cols, &c, b, 700, NULL, NULL), ==, 700);
        REQ_U(fill(g, &cols, &c, b, 600, NULL, NULL), ==, 600);
        for (uint32_t r = 0; r < b->nrows; r++) {
            assert_row_is_event(g, &cols, b, r, r);
        }
        lm_batch_free(b);
    }
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_parallel_split)
{
    const uint64_t total = 2000;
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(ALL_COLS, LM_NEXMARK_NCOLS);
    char **ref = NULL;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.events_num = total;
    g = new_gen(&cfg);
    for (uint32_t p = 1; p <= 3; p++) {
        char **rows = calloc(total, sizeof(char *));
        uint64_t nrows = 0, consumed_all = 0;
        REQ(rows != NULL);
        for (uint32_t s = 0; s < p; s++) {
            lm_nexmark_cursor c;
            lm_batch *b = new_batch(&cols, 128);
            bool ended = false;
            uint64_t i = 0;
            lm_nexmark_cursor_init(&c, &cfg, s, p, LM_NEXMARK_KINDS_ALL);
            while (!ended) {
                uint64_t consumed;
                lm_batch_clear(b);
                fill(g, &cols, &c, b, 97, &consumed, &ended);
                consumed_all += consumed;
                for (uint32_t r = 0; r < b->nrows; r++, i++) {
                    /* subtask s holds n = s, s + p, ... */
                    assert_row_is_event(g, &cols, b, r, s + i * p);
                    REQ_U(nrows, <, total);
                    rows[nrows++] = row_text(b, r);
                }
            }
            REQ_U(i, ==, (total - s + p - 1) / p);
            lm_batch_free(b);
        }
        REQ_U(nrows, ==, total);
        REQ_U(consumed_all, ==, total);
        qsort(rows, total, sizeof(char *), cmp_str);
        if (ref == NULL) {
            ref = rows;
            continue;
        }
        for (uint64_t i = 0; i < total; i++) {
            REQ_S(rows[i], ref[i]);
            free(rows[i]);
        }
        free(rows);
    }
    for (uint64_t i = 0; i < total; i++) {
        free(ref[i]);
    }
    free(ref);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_kinds_mask_bids_only)
{
    static const char *const names[] = {"bid.auction", "bid.price", "dateTime", "event_type"};
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(names, 4);
    lm_batch *b = new_batch(&cols, 256);
    lm_nexmark_cursor c;
    uint64_t consumed_all = 0, n = 0, rows = 0;
    bool ended = false;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.events_num = 10007;
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, 1u << LM_NEXMARK_BID);
    while (!ended) {
        uint64_t consumed;
        lm_batch_clear(b);
        fill(g, &cols, &c, b, 256, &consumed, &ended);
        consumed_all += consumed;
        for (uint32_t r = 0; r < b->nrows; r++, n++, rows++) {
            while (lm_nexmark_kind_of(&cfg, n) != LM_NEXMARK_BID) {
                n++;
            }
            assert_row_is_event(g, &cols, b, r, n);
            REQ_I(lm_batch_i64(b, 3)[r], ==, LM_NEXMARK_BID);
            REQ(b->cols[0].validity == NULL); /* no nulls at all */
        }
        /* the events consumed so far are exactly those before the cursor */
        REQ_U(consumed_all, ==, c.next < cfg.events_num ? c.next : cfg.events_num);
    }
    REQ_U(consumed_all, ==, 10007);
    /* 200 cycles of 50 (46 bids each) + events 10000..10006 (3 bids) */
    REQ_U(rows, ==, 200 * 46 + 3);
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_end_of_stream)
{
    static const char *const names[] = {"event_type"};
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(names, 1);
    lm_batch *b = new_batch(&cols, 16);
    lm_nexmark_cursor c;
    uint64_t consumed;
    bool ended;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.events_num = 100;
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    REQ(!lm_nexmark_cursor_ended(&c));
    REQ_U(fill(g, &cols, &c, b, 60, &consumed, &ended), ==, 60);
    REQ(!ended);
    REQ_U(consumed, ==, 60);
    REQ_U(fill(g, &cols, &c, b, 40, &consumed, &ended), ==, 40);
    REQ(ended); /* the last event was just consumed */
    REQ(lm_nexmark_cursor_ended(&c));
    REQ_U(fill(g, &cols, &c, b, 40, &consumed, &ended), ==, 0);
    REQ(ended);
    REQ_U(consumed, ==, 0);

    /* a kinds mask whose last kind comes before the end: trailing events
     * are consumed without rows */
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, 1u << LM_NEXMARK_PERSON);
    lm_batch_clear(b);
    REQ_U(fill(g, &cols, &c, b, 2, &consumed, &ended), ==, 2);
    REQ_U(consumed, ==, 51); /* persons at 0 and 50 */
    REQ(!ended);
    REQ_U(fill(g, &cols, &c, b, 2, &consumed, &ended), ==, 0);
    REQ_U(consumed, ==, 49);
    REQ(ended);

    /* an unbounded stream never ends */
    cfg.events_num = 0;
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    lm_batch_clear(b);
    REQ_U(fill(g, &cols, &c, b, 1000, &consumed, &ended), ==, 1000);
    REQ(!ended);

    /* a subtask beyond the parallelism has nothing */
    lm_nexmark_cursor_init(&c, &cfg, 3, 2, LM_NEXMARK_KINDS_ALL);
    REQ(lm_nexmark_cursor_ended(&c));
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

/* A cursor that can never meet a selected kind moves on without rows. */
START_TEST(test_nexmark_unreachable_kinds)
{
    static const char *const names[] = {"bid.price"};
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(names, 1);
    lm_batch *b = new_batch(&cols, 16);
    lm_nexmark_cursor c;
    uint64_t consumed;
    bool ended;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.events_num = 100000;
    g = new_gen(&cfg);
    /* subtask 0 of 50 sees only persons (n = 0, 50, 100, ...) */
    lm_nexmark_cursor_init(&c, &cfg, 0, 50, 1u << LM_NEXMARK_BID);
    REQ_U(fill(g, &cols, &c, b, 10, &consumed, &ended), ==, 0);
    REQ(ended);
    REQ_U(consumed, ==, 2000);
    /* subtask 4 of 50 sees only bids */
    lm_nexmark_cursor_init(&c, &cfg, 4, 50, 1u << LM_NEXMARK_BID);
    REQ_U(fill(g, &cols, &c, b, 10, &consumed, &ended), ==, 10);
    REQ_U(consumed, ==, 10);
    /* unbounded: bounded work per call, never ended */
    cfg.events_num = 0;
    cfg.bid_proportion = 0;
    lm_nexmark_gen_free(g);
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, 1u << LM_NEXMARK_BID);
    lm_batch_clear(b);
    REQ_U(fill(g, &cols, &c, b, 10, &consumed, &ended), ==, 0);
    REQ(!ended);
    REQ_U(consumed, ==, 10 * 4);
    REQ_U(c.next, ==, 40);
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_ids_and_hot_cold)
{
    static const char *const names[] = {"event_type",     "person.id",   "auction.id",
                                        "auction.seller", "bid.auction", "bid.bidder"};
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(names, 6);
    lm_batch *b = new_batch(&cols, 4096);
    lm_nexmark_cursor c;
    int64_t next_person = 1000, next_auction = 1000;
    uint64_t bids = 0, hot_auction = 0, hot_bidder = 0, sellers = 0, hot_seller = 0;

    lm_nexmark_cfg_defaults(&cfg);
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    while (bids < 100000) {
        uint64_t n0 = c.next;
        lm_batch_clear(b);
        fill(g, &cols, &c, b, 4096, NULL, NULL);
        for (uint32_t r = 0; r < b->nrows; r++) {
            uint64_t n = n0 + r;
            int64_t kind = lm_batch_i64(b, 0)[r];
            int64_t lastp = lm_nexmark_last_person(&cfg, n),
                    lasta = lm_nexmark_last_auction(&cfg, n);
            /* the last id is the event's own for its kind, else the one before */
            REQ_I(lastp, ==,
                  kind == 0 ? next_person : (next_person > 1000 ? next_person - 1 : 1000));
            REQ_I(lasta, ==,
                  kind == 1 ? next_auction : (next_auction > 1000 ? next_auction - 1 : 1000));
            if (kind == 0) {
                REQ_I(lm_batch_i64(b, 1)[r], ==, next_person++);
            } else if (kind == 1) {
                int64_t seller = lm_batch_i64(b, 3)[r];
                REQ_I(lm_batch_i64(b, 2)[r], ==, next_auction++);
                REQ_I(seller, >=, lastp - 999 > 1000 ? lastp - 999 : 1000);
                REQ_I(seller, <=, lastp + 10);
                sellers++;
                hot_seller += seller == (lastp / 100) * 100;
            } else {
                int64_t auction = lm_batch_i64(b, 4)[r], bidder = lm_batch_i64(b, 5)[r];
                REQ_I(auction, >=, lasta - 99 > 1000 ? lasta - 99 : 1000);
                REQ_I(auction, <=, lasta + 10);
                REQ_I(bidder, >=, lastp - 999 > 1000 ? lastp - 999 : 1000);
                REQ_I(bidder, <=, lastp + 10);
                bids++;
                hot_auction += auction == (lasta / 100) * 100;
                hot_bidder += bidder == (lastp / 100) * 100 + 1;
            }
        }
    }
    REQ_I(lm_nexmark_persons_before(&cfg, 50), ==, 1);
    REQ_I(lm_nexmark_auctions_before(&cfg, 50), ==, 3);
    REQ_I(lm_nexmark_persons_before(&cfg, 51), ==, 2);
    REQ_I(lm_nexmark_auctions_before(&cfg, 53), ==, 5);
    /* hot shares: 1/2 of bid auctions, 3/4 of bidders and sellers (a cold
     * pick equals the hot id now and then, hence the slightly higher
     * centres) */
    REQ_MSG(fabs((double)hot_auction / bids - 0.5045) < 0.02, "hot auctions %.4f",
            (double)hot_auction / bids);
    REQ_MSG(fabs((double)hot_bidder / bids - 0.75) < 0.02, "hot bidders %.4f",
            (double)hot_bidder / bids);
    REQ_MSG(fabs((double)hot_seller / sellers - 0.75) < 0.03, "hot sellers %.4f",
            (double)hot_seller / sellers);
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_timestamps)
{
    static const char *const names[] = {"dateTime", "person.dateTime", "bid.dateTime"};
    static const uint64_t rates[] = {10000, 7, 3, 1000000, 123456789};
    lm_nexmark_cols cols = resolve(names, 3);
    lm_batch *b = new_batch(&cols, 16);

    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        lm_nexmark_cfg cfg;
        lm_nexmark_gen *g;
        lm_nexmark_cursor c;
        lm_error err;
        char v[32];
        lm_nexmark_cfg_defaults(&cfg);
        snprintf(v, sizeof(v), "%llu", (unsigned long long)rates[i]);
        REQ_I(lm_nexmark_cfg_set(&cfg, "first-event.rate", v, &err), ==, LM_OK);
        REQ_I(lm_nexmark_cfg_set(&cfg, "base-time", "1000", &err), ==, LM_OK);
        g = new_gen(&cfg);
        /* from event 0 with parallelism 7, and from a far event */
        for (int far = 0; far < 2; far++) {
            uint64_t start = far ? 123456789012ull : 0;
            lm_nexmark_cursor_init(&c, &cfg, 3, 7, LM_NEXMARK_KINDS_ALL);
            lm_nexmark_cursor_seek(&c, start);
            uint64_t n0 = c.next;
            REQ_U(n0 % 7, ==, 3);
            REQ_U(n0, >=, start);
            lm_batch_clear(b);
            fill(g, &cols, &c, b, 500, NULL, NULL);
            for (uint32_t r = 0; r < b->nrows; r++) {
                uint64_t n = n0 + (uint64_t)r * 7;
                /* floor(n * 1000 / rate) in 128 bits */
                int64_t want = 1000 + (int64_t)(((u128)n * 1000) / rates[i]);
                REQ_I(lm_nexmark_time_ms(&cfg, n), ==, want);
                REQ_I(lm_batch_i64(b, 0)[r], ==, want * 1000);
                if (lm_nexmark_kind_of(&cfg, n) == LM_NEXMARK_BID) {
                    REQ_I(lm_batch_i64(b, 2)[r], ==, want * 1000);
                    REQ(lm_batch_is_null(b, 1, r));
                }
            }
        }
        lm_nexmark_gen_free(g);
    }
    lm_batch_free(b);
}
END_TEST

START_TEST(test_nexmark_out_of_order_groups)
{
    static const char *const names[] = {"dateTime"};
    /* 953 is prime; k = 7 would keep the order (953 % 7 == 1) */
    static const uint64_t groups[] = {5, 6, 64};
    lm_nexmark_cols cols = resolve(names, 1);
    lm_batch *b = new_batch(&cols, 16);

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        uint64_t k = groups[i], out_of_order = 0;
        lm_nexmark_cfg cfg, in_order;
        lm_nexmark_gen *g;
        lm_nexmark_cursor c;
        lm_nexmark_cfg_defaults(&cfg);
        cfg.first_rate = 333; /* distinct times for neighbours */
        in_order = cfg;
        cfg.ooo_group = k;
        g = new_gen(&cfg);
        for (uint32_t p = 1; p <= 2; p++) {
            lm_nexmark_cursor_init(&c, &cfg, 0, p, LM_NEXMARK_KINDS_ALL);
            lm_batch_clear(b);
            fill(g, &cols, &c, b, (uint32_t)(k * 40), NULL, NULL);
            for (uint32_t r = 0; r < b->nrows; r++) {
                uint64_t n = (uint64_t)r * p, m = (n / k) * k + (n * 953) % k;
                REQ_I(lm_batch_i64(b, 0)[r], ==, lm_nexmark_time_ms(&in_order, m) * 1000);
                REQ_I(lm_nexmark_time_ms(&cfg, n), ==, lm_nexmark_time_ms(&in_order, m));
            }
        }
        /* within each group the times are a permutation of the in-order
         * times of that group */
        for (uint64_t grp = 0; grp < 40; grp++) {
            int64_t got[64], want[64];
            for (uint64_t j = 0; j < k; j++) {
                got[j] = lm_nexmark_time_ms(&cfg, grp * k + j);
                want[j] = lm_nexmark_time_ms(&in_order, grp * k + j);
                out_of_order += j > 0 && got[j] < got[j - 1];
            }
            for (uint64_t j = 0; j < k; j++) { /* selection sort, small k */
                for (uint64_t l = j + 1; l < k; l++) {
                    if (got[l] < got[j]) {
                        int64_t t = got[l];
                        got[l] = got[j];
                        got[j] = t;
                    }
                }
                REQ_I(got[j], ==, want[j]);
            }
        }
        REQ_U(out_of_order, >, 0);
        lm_nexmark_gen_free(g);
    }
    lm_batch_free(b);
}
END_TEST

START_TEST(test_nexmark_extra_lengths)
{
    static const char *const names[] = {"person.extra", "auction.extra", "bid.extra"};
    static const uint32_t avg[3] = {100, 300, 68};
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(names, 3);
    lm_batch *b = new_batch(&cols, 4096);
    lm_nexmark_cursor c;
    uint32_t lo[3] = {UINT32_MAX, UINT32_MAX, UINT32_MAX}, hi[3] = {0, 0, 0};

    lm_nexmark_cfg_defaults(&cfg);
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    for (int round = 0; round < 25; round++) {
        lm_batch_clear(b);
        fill(g, &cols, &c, b, 4096, NULL, NULL);
        for (uint32_t r = 0; r < b->nrows; r++) {
            for (uint32_t k = 0; k < 3; k++) {
                lm_value v;
                lm_batch_get(b, k, r, &v);
                if (v.is_null) {
                    continue;
                }
                REQ_U(v.v.s.len, >=, avg[k] * 4 / 5);
                REQ_U(v.v.s.len, <=, avg[k] * 6 / 5);
                for (uint32_t j = 0; j < v.v.s.len; j++) {
                    char ch = ((const char *)v.v.s.ptr)[j];
                    REQ(ch >= 'a' && ch <= 'z');
                }
                lo[k] = v.v.s.len < lo[k] ? v.v.s.len : lo[k];
                hi[k] = v.v.s.len > hi[k] ? v.v.s.len : hi[k];
            }
        }
    }
    for (uint32_t k = 0; k < 3; k++) { /* the whole range is used */
        REQ_U(lo[k], ==, avg[k] * 4 / 5);
        REQ_U(hi[k], ==, avg[k] * 4 / 5 + avg[k] * 2 / 5);
    }
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

static bool
matches_card(const char *s, uint32_t len)
{
    if (len != 19) {
        return false;
    }
    for (uint32_t i = 0; i < len; i++) {
        if (i % 5 == 4 ? s[i] != ' ' : (s[i] < '0' || s[i] > '9')) {
            return false;
        }
    }
    return true;
}

START_TEST(test_nexmark_strings_valid_and_trimmed)
{
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(ALL_COLS, LM_NEXMARK_NCOLS);
    lm_batch *b = new_batch(&cols, 4096);
    lm_nexmark_cursor c;
    uint32_t short_item = 0, with_space = 0, channel_ids = 0, cold_urls = 0;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.seed = 5;
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    for (int round = 0; round < 10; round++) {
        lm_batch_clear(b);
        fill(g, &cols, &c, b, 4096, NULL, NULL);
        for (uint32_t col = 0; col < LM_NEXMARK_NCOLS; col++) {
            const lm_column *cc = &b->cols[col];
            if (!lm_type_is_varwidth(b->schema->fields[col].type)) {
                continue;
            }
            REQ(lm_utf8_valid(cc->data, cc->data_len));
            REQ_U(cc->vcount, ==, b->nrows);
            REQ_I(lm_batch_offsets(b, col)[b->nrows], ==, (int32_t)cc->data_len);
            for (uint32_t r = 0; r < b->nrows; r++) {
                lm_value v;
                const char *s;
                lm_batch_get(b, col, r, &v);
                if (v.is_null) {
                    REQ_U(v.v.s.len, ==, 0);
                    continue;
                }
                s = v.v.s.ptr;
                REQ(lm_utf8_valid(v.v.s.ptr, v.v.s.len));
                if (v.v.s.len > 0) {
                    REQ_MSG(s[0] != ' ' && s[v.v.s.len - 1] != ' ', "column %s: '%.*s' not trimmed",
                            ALL_COLS[col], (int)v.v.s.len, s);
                }
                switch (col) {
                case LM_NEXMARK_COL_PERSON_CREDIT_CARD: REQ(matches_card(s, v.v.s.len)); break;
                case LM_NEXMARK_COL_PERSON_EMAIL:
                    REQ(v.v.s.len >= 6 && memcmp(s + v.v.s.len - 4, ".com", 4) == 0);
                    REQ(memchr(s, '@', v.v.s.len) != NULL);
                    break;
                case LM_NEXMARK_COL_AUCTION_ITEM_NAME:
                    REQ_U(v.v.s.len, <=, 19);
                    short_item += v.v.s.len < 3; /* trimming shortened it */
                    with_space += memchr(s, ' ', v.v.s.len) != NULL;
                    break;
                case LM_NEXMARK_COL_AUCTION_DESCRIPTION: REQ_U(v.v.s.len, <=, 99); break;
                case LM_NEXMARK_COL_BID_URL: {
                    char u[128];
                    REQ(v.v.s.len > 24 && v.v.s.len < sizeof(u));
                    memcpy(u, s, v.v.s.len);
                    u[v.v.s.len] = '\0';
                    REQ(strncmp(u, "https://www.nexmark.com/", 24) == 0);
                    REQ(strstr(u, "/item.htm?query=1") != NULL);
                    if (strstr(u, "google/") == NULL && strstr(u, "facebook/") == NULL &&
                        strstr(u, "baidu/") == NULL && strstr(u, "apple/") == NULL) {
                        cold_urls++;
                        channel_ids += strstr(u, "&channel_id=") != NULL;
                    } else {
                        REQ(strstr(u, "&channel_id=") == NULL);
                    }
                    break;
                }
                case LM_NEXMARK_COL_BID_CHANNEL:
                    REQ(strncmp(s, "channel-", 8) == 0 || v.v.s.len <= 8);
                    break;
                default: break;
                }
            }
        }
    }
    REQ_U(with_space, >, 0); /* str() does put spaces inside */
    REQ_U(short_item, >, 0);
    /* cold urls: about half of the bids, 9 in 10 of them with channel_id */
    REQ_U(cold_urls, >, 0);
    REQ_MSG(fabs((double)channel_ids / cold_urls - 0.9) < 0.03, "channel ids %.3f",
            (double)channel_ids / cold_urls);
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_nulls_in_other_kinds)
{
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(ALL_COLS, LM_NEXMARK_NCOLS);
    lm_batch *b = new_batch(&cols, 16);
    lm_nexmark_cursor c;
    uint32_t kinds[3] = {0, 0, 0};

    lm_nexmark_cfg_defaults(&cfg);
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    REQ_U(fill(g, &cols, &c, b, 1000, NULL, NULL), ==, 1000);
    for (uint32_t r = 0; r < b->nrows; r++) {
        kinds[lm_batch_i64(b, 0)[r]]++;
    }
    REQ_U(kinds[0], ==, 20);
    REQ_U(kinds[1], ==, 60);
    REQ_U(kinds[2], ==, 920);
    for (uint32_t col = 0; col < LM_NEXMARK_NCOLS; col++) {
        const lm_field *f = lm_nexmark_column_field((lm_nexmark_col)col);
        uint32_t nulls = 0;
        int kind = col == 0 || col == LM_NEXMARK_COL_DATETIME ? -1
                   : col <= LM_NEXMARK_COL_PERSON_EXTRA       ? 0
                   : col <= LM_NEXMARK_COL_AUCTION_EXTRA      ? 1
                                                              : 2;
        REQ_S(b->schema->fields[col].name, ALL_COLS[col]);
        REQ_S(f->name, ALL_COLS[col]);
        REQ(f->nullable == (kind >= 0));
        for (uint32_t r = 0; r < b->nrows; r++) {
            bool null = lm_batch_is_null(b, col, r);
            REQ(null == (kind >= 0 && lm_batch_i64(b, 0)[r] != kind));
            nulls += null;
        }
        REQ_U(b->cols[col].null_count, ==, nulls);
    }
    REQ_I(b->schema->fields[LM_NEXMARK_COL_AUCTION_EXPIRES].type, ==, LM_TYPE_TIMESTAMP);
    REQ_I(b->schema->fields[LM_NEXMARK_COL_BID_PRICE].type, ==, LM_TYPE_INT64);
    REQ_I(b->schema->fields[LM_NEXMARK_COL_BID_URL].type, ==, LM_TYPE_UTF8);
    REQ_I(b->schema->fields[LM_NEXMARK_COL_DATETIME].type, ==, LM_TYPE_TIMESTAMP);
    /* the batch survives the wire codec's validation */
    {
        lm_msg *m = NULL;
        msgpack_packer pk;
        lm_mpr rd;
        lm_batch *d = NULL;
        lm_error err;
        REQ_I(lm_msg_alloc(1024, &m), ==, LM_OK);
        lm_mp_packer_init(&pk, m);
        REQ_I(lm_batch_encode(b, &pk, m), ==, LM_OK);
        lm_mpr_init(&rd, m->data, m->len);
        REQ_MSG(lm_batch_decode(&rd, m, 100000, &d, &err) == LM_OK, "%s", err.msg);
        REQ_U(d->nrows, ==, b->nrows);
        for (uint32_t r = 0; r < b->nrows; r += 37) {
            char *t1 = row_text(b, r), *t2 = row_text(d, r);
            REQ_S(t1, t2);
            free(t1);
            free(t2);
        }
        lm_batch_free(d);
        lm_msg_release(m);
    }
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_cursor_resume)
{
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols cols = resolve(ALL_COLS, LM_NEXMARK_NCOLS);
    lm_batch *b1 = new_batch(&cols, 64), *b2 = new_batch(&cols, 64);
    lm_nexmark_cursor c, saved, seeked;

    lm_nexmark_cfg_defaults(&cfg);
    cfg.events_num = 50000;
    g = new_gen(&cfg);
    for (uint32_t mask = 1; mask <= LM_NEXMARK_KINDS_ALL; mask++) {
        lm_nexmark_cursor_init(&c, &cfg, 1, 3, mask);
        for (int i = 0; i < 3; i++) {
            lm_batch_clear(b1);
            fill(g, &cols, &c, b1, 333, NULL, NULL);
        }
        saved = c; /* the checkpoint */
        lm_nexmark_cursor_init(&seeked, &cfg, 1, 3, mask);
        lm_nexmark_cursor_seek(&seeked, saved.next);
        ck_assert_mem_eq(&seeked, &saved, sizeof(saved));
        for (int i = 0; i < 4; i++) {
            bool e1, e2;
            uint64_t n1, n2;
            lm_batch_clear(b1);
            lm_batch_clear(b2);
            fill(g, &cols, &c, b1, 1000, &n1, &e1);
            fill(g, &cols, &saved, b2, 1000, &n2, &e2);
            REQ_U(b1->nrows, ==, b2->nrows);
            REQ_U(n1, ==, n2);
            REQ(e1 == e2);
            for (uint32_t r = 0; r < b1->nrows; r++) {
                char *t1 = row_text(b1, r), *t2 = row_text(b2, r);
                REQ_S(t1, t2);
                free(t1);
                free(t2);
            }
        }
        ck_assert_mem_eq(&c, &saved, sizeof(c));
    }
    /* seek rounds up to the subtask's next event */
    lm_nexmark_cursor_init(&c, &cfg, 1, 3, LM_NEXMARK_KINDS_ALL);
    lm_nexmark_cursor_seek(&c, 11);
    REQ_U(c.next, ==, 13);
    lm_nexmark_cursor_seek(&c, 13);
    REQ_U(c.next, ==, 13);
    lm_nexmark_cursor_seek(&c, 0);
    REQ_U(c.next, ==, 1);
    lm_batch_free(b1);
    lm_batch_free(b2);
    lm_nexmark_gen_free(g);
}
END_TEST

/* The batch's schema must be the columns' schema; read-only batches are
 * refused. */
START_TEST(test_nexmark_fill_checks_the_batch)
{
    static const char *const a[] = {"bid.price", "bid.auction"};
    static const char *const bb[] = {"bid.auction", "bid.price"};
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_nexmark_cols ca = resolve(a, 2), cb = resolve(bb, 2);
    lm_batch *b = new_batch(&cb, 16);
    lm_nexmark_cursor c;
    uint64_t consumed = 99;
    bool ended = true;

    lm_nexmark_cfg_defaults(&cfg);
    g = new_gen(&cfg);
    lm_nexmark_cursor_init(&c, &cfg, 0, 1, LM_NEXMARK_KINDS_ALL);
    REQ_I(lm_nexmark_fill(g, &ca, &c, b, 10, &consumed, &ended), ==, LM_EINVAL);
    REQ_U(consumed, ==, 0);
    REQ(!ended);
    REQ_U(c.next, ==, 0);
    REQ_I(lm_nexmark_fill(g, &cb, &c, b, 10, &consumed, &ended), ==, LM_OK);
    REQ_U(b->nrows, ==, 10);
    lm_batch_free(b);
    lm_nexmark_gen_free(g);
}
END_TEST

START_TEST(test_nexmark_columns_errors)
{
    static const char *const unknown[] = {"bid.price", "bid.colour"};
    static const char *const twice[] = {"bid.price", "dateTime", "bid.price"};
    lm_nexmark_cols cols;
    lm_error err;

    REQ_I(lm_nexmark_columns(unknown, 2, &cols, &err), ==, LM_EINVAL);
    REQ(strstr(err.msg, "bid.colour") != NULL);
    REQ_I(lm_nexmark_columns(twice, 3, &cols, &err), ==, LM_EINVAL);
    REQ(strstr(err.msg, "bid.price") != NULL);
    REQ_I(lm_nexmark_columns(twice, 2, &cols, &err), ==, LM_OK);
    REQ_U(cols.n, ==, 2);
    REQ_I(cols.pos[LM_NEXMARK_COL_DATETIME], ==, 1);
    REQ_I(cols.pos[LM_NEXMARK_COL_BID_URL], ==, -1);
    REQ_I(lm_nexmark_columns(NULL, 0, &cols, &err), ==, LM_OK);
    REQ_U(cols.n, ==, 0);
}
END_TEST

static void
assert_set_fails(const char *opt, const char *val)
{
    lm_nexmark_cfg cfg, before;
    lm_error err;
    lm_nexmark_cfg_defaults(&cfg);
    before = cfg;
    REQ_I(lm_nexmark_cfg_set(&cfg, opt, val, &err), ==, LM_ECONFIG);
    REQ_MSG(strstr(err.msg, opt) != NULL, "'%s' does not name %s", err.msg, opt);
    REQ_MSG(strstr(err.msg, val) != NULL, "'%s' does not name %s", err.msg, val);
    ck_assert_mem_eq(&cfg, &before, sizeof(cfg));
}

START_TEST(test_nexmark_cfg_set_and_errors)
{
    lm_nexmark_cfg cfg;
    lm_error err;

    lm_nexmark_cfg_defaults(&cfg);
    REQ_U(cfg.events_num, ==, 0);
    REQ_U(cfg.first_rate, ==, 10000);
    REQ_U(cfg.next_rate, ==, 10000);
    REQ_U(cfg.person_proportion, ==, 1);
    REQ_U(cfg.auction_proportion, ==, 3);
    REQ_U(cfg.bid_proportion, ==, 46);
    REQ_I(cfg.base_time_ms, ==, BASE_MS);
    REQ_U(cfg.ooo_group, ==, 1);
    REQ_I(lm_nexmark_cfg_check(&cfg, &err), ==, LM_OK);

    REQ_I(lm_nexmark_cfg_set(&cfg, "events.num", "10000000", &err), ==, LM_OK);
    REQ_U(cfg.events_num, ==, 10000000);
    REQ_I(lm_nexmark_cfg_set(&cfg, "first-event.rate", " 5000 ", &err), ==, LM_OK);
    REQ_U(cfg.first_rate, ==, 5000);
    REQ_U(cfg.next_rate, ==, 5000);
    REQ_I(lm_nexmark_cfg_set(&cfg, "next-event.rate", "7", &err), ==, LM_OK);
    REQ_U(cfg.next_rate, ==, 7);
    REQ_U(cfg.first_rate, ==, 5000);
    REQ_I(lm_nexmark_cfg_set(&cfg, "emit.rate", "0", &err), ==, LM_OK);
    REQ_I(lm_nexmark_cfg_set(&cfg, "person.proportion", "0", &err), ==, LM_OK);
    REQ_I(lm_nexmark_cfg_set(&cfg, "auction.proportion", "0", &err), ==, LM_OK);
    REQ_U(cfg.person_proportion, ==, 0);
    REQ_I(lm_nexmark_cfg_set(&cfg, "seed", "-1", &err), ==, LM_OK);
    REQ_U(cfg.seed, ==, UINT64_MAX);
    REQ_I(lm_nexmark_cfg_set(&cfg, "seed", "0xdeadBEEF", &err), ==, LM_OK);
    REQ_U(cfg.seed, ==, 0xdeadbeefull);
    REQ_I(lm_nexmark_cfg_set(&cfg, "seed", "18446744073709551615", &err), ==, LM_OK);
    REQ_U(cfg.seed, ==, UINT64_MAX);
    REQ_I(lm_nexmark_cfg_set(&cfg, "base-time", "-86400000", &err), ==, LM_OK);
    REQ_I(cfg.base_time_ms, ==, -86400000);
    REQ_I(lm_nexmark_cfg_set(&cfg, "out-of-order.group", "16", &err), ==, LM_OK);
    REQ_U(cfg.ooo_group, ==, 16);
    REQ_I(lm_nexmark_cfg_check(&cfg, &err), ==, LM_OK);
    /* all three proportions 0 */
    REQ_I(lm_nexmark_cfg_set(&cfg, "bid.proportion", "0", &err), ==, LM_ECONFIG);
    REQ(strstr(err.msg, "bid.proportion") != NULL);
    REQ_U(cfg.bid_proportion, ==, 46);

    assert_set_fails("events.number", "5");
    assert_set_fails("events.num", "ten");
    assert_set_fails("events.num", "-5");
    assert_set_fails("events.num", "12x");
    assert_set_fails("events.num", "");
    assert_set_fails("events.num", "99999999999999999999999");
    assert_set_fails("first-event.rate", "0");
    assert_set_fails("first-event.rate", "1.5");
    assert_set_fails("next-event.rate", "0");
    assert_set_fails("person.proportion", "4294967296");
    assert_set_fails("bid.proportion", "-1");
    assert_set_fails("seed", "abc");
    assert_set_fails("base-time", "2015-07-15");
    assert_set_fails("out-of-order.group", "0");
    REQ_I(lm_nexmark_cfg_set(&cfg, "seed", NULL, &err), ==, LM_ECONFIG);

    lm_nexmark_cfg_defaults(&cfg);
    cfg.first_rate = 0;
    REQ_I(lm_nexmark_cfg_check(&cfg, &err), ==, LM_ECONFIG);
    REQ(strstr(err.msg, "first-event.rate") != NULL);
    {
        lm_nexmark_gen *g = NULL;
        REQ_I(lm_nexmark_gen_new(&cfg, &g, &err), ==, LM_ECONFIG);
        REQ(g == NULL);
    }
}
END_TEST

/* --- dump ------------------------------------------------------------------ */

/* Splits one CSV line into fields (quoted fields with doubled quotes). */
static int
csv_split(const char *line, char fields[][512], int max)
{
    int nf = 0;
    const char *p = line;
    for (;;) {
        size_t o = 0;
        REQ_I(nf, <, max);
        if (*p == '"') {
            p++;
            for (;;) {
                REQ_MSG(*p != '\0', "unterminated quote in %s", line);
                if (*p == '"' && p[1] == '"') {
                    fields[nf][o++] = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    fields[nf][o++] = *p++;
                }
                REQ_U(o, <, 511);
            }
        } else {
            while (*p != ',' && *p != '\n' && *p != '\0') {
                fields[nf][o++] = *p++;
                REQ_U(o, <, 511);
            }
        }
        fields[nf++][o] = '\0';
        if (*p != ',') {
            break;
        }
        p++;
    }
    return nf;
}

START_TEST(test_nexmark_csv_quote_round_trips)
{
    static const char *const samples[] = {"plain", "",          "a,b",      "say \"hi\"",
                                          "\"",    ",\",\"\",", "new\nline"};
    char out[64], fields[4][512], line[256];

    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t len = lm_nexmark_csv_quote(samples[i], strlen(samples[i]), out);
        REQ_U(len, <=, 2 * strlen(samples[i]) + 2);
        snprintf(line, sizeof(line), "1,%.*s,x\n", (int)len, out);
        if (strchr(samples[i], '\n') != NULL) {
            continue; /* our line splitter works line by line */
        }
        REQ_I(csv_split(line, fields, 4), ==, 3);
        REQ_S(fields[0], "1");
        REQ_S(fields[1], samples[i]);
        REQ_S(fields[2], "x");
    }
    REQ_U(lm_nexmark_format_time(BASE_MS + 1234, out), ==, 23);
    REQ_S(out, "2015-07-15 00:00:01.234");
    lm_nexmark_format_time(-1, out);
    REQ_S(out, "1969-12-31 23:59:59.999");
    lm_nexmark_format_time(951782400000ll + 86399999, out); /* leap day */
    REQ_S(out, "2000-02-29 23:59:59.999");
}
END_TEST

static void
fmt_time(int64_t ms, char *out)
{
    lm_nexmark_format_time(ms, out);
}

START_TEST(test_nexmark_dump_files)
{
    static const char *const files[3] = {"person.csv", "auction.csv", "bid.csv"};
    static const char *const headers[3] = {
        "id,name,emailAddress,creditCard,city,state,dateTime,extra\n",
        "id,itemName,description,initialBid,reserve,dateTime,expires,seller,category,extra\n",
        "auction,bidder,price,channel,url,dateTime,extra\n",
    };
    static const int nfields[3] = {8, 10, 7};
    char dir[] = "/tmp/lm-nexmark-XXXXXX", path[256], line[2048], f[12][512], t[32];
    lm_nexmark_cfg cfg;
    lm_nexmark_gen *g;
    lm_error err;
    FILE *fp[3];
    uint64_t rows[3] = {0, 0, 0};

    REQ(mkdtemp(dir) != NULL);
    lm_nexmark_cfg_defaults(&cfg);
    cfg.events_num = 1234;
    cfg.seed = 77;
    REQ_MSG(lm_nexmark_dump(&cfg, dir, &err) == LM_OK, "%s", err.msg);
    g = new_gen(&cfg);
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
        fp[k] = fopen(path, "r");
        REQ(fp[k] != NULL);
        REQ(fgets(line, sizeof(line), fp[k]) != NULL);
        REQ_S(line, headers[k]);
    }
    for (uint64_t n = 0; n < cfg.events_num; n++) {
        int k = (int)lm_nexmark_kind_of(&cfg, n);
        REQ(fgets(line, sizeof(line), fp[k]) != NULL);
        REQ_I(csv_split(line, f, 12), ==, nfields[k]);
        rows[k]++;
        if (k == 0) {
            lm_nexmark_person p;
            lm_nexmark_person_at(g, n, &p);
            REQ_I(atoll(f[0]), ==, p.id);
            REQ_S(f[1], p.name);
            REQ_S(f[2], p.email);
            REQ_S(f[3], p.credit_card);
            REQ_S(f[4], p.city);
            REQ_S(f[5], p.state);
            fmt_time(p.date_time_ms, t);
            REQ_S(f[6], t);
            REQ_U(strlen(f[7]), ==, p.extra_len);
            REQ(memcmp(f[7], p.extra, p.extra_len) == 0);
        } else if (k == 1) {
            lm_nexmark_auction a;
            lm_nexmark_auction_at(g, n, &a);
            REQ_I(atoll(f[0]), ==, a.id);
            REQ_S(f[1], a.item_name);
            REQ_S(f[2], a.description);
            REQ_I(atoll(f[3]), ==, a.initial_bid);
            REQ_I(atoll(f[4]), ==, a.reserve);
            fmt_time(a.date_time_ms, t);
            REQ_S(f[5], t);
            fmt_time(a.expires_ms, t);
            REQ_S(f[6], t);
            REQ_I(atoll(f[7]), ==, a.seller);
            REQ_I(atoll(f[8]), ==, a.category);
            REQ_U(strlen(f[9]), ==, a.extra_len);
        } else {
            lm_nexmark_bid b;
            lm_nexmark_bid_at(g, n, &b);
            REQ_I(atoll(f[0]), ==, b.auction);
            REQ_I(atoll(f[1]), ==, b.bidder);
            REQ_I(atoll(f[2]), ==, b.price);
            REQ_S(f[3], b.channel);
            REQ_S(f[4], b.url);
            fmt_time(b.date_time_ms, t);
            REQ_S(f[5], t);
            REQ(memcmp(f[6], b.extra, b.extra_len) == 0);
        }
    }
    for (int k = 0; k < 3; k++) {
        REQ(fgets(line, sizeof(line), fp[k]) == NULL); /* nothing more */
        fclose(fp[k]);
        snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
        unlink(path);
    }
    /* 24 full cycles of 50, then events 1200..1233: 1 person, 3 auctions */
    REQ_U(rows[0], ==, 25);
    REQ_U(rows[1], ==, 75);
    REQ_U(rows[2], ==, 1234 - 100);

    /* errors: unbounded, and a directory that does not exist */
    cfg.events_num = 0;
    REQ_I(lm_nexmark_dump(&cfg, dir, &err), ==, LM_ECONFIG);
    cfg.events_num = 10;
    snprintf(path, sizeof(path), "%s/missing", dir);
    REQ_I(lm_nexmark_dump(&cfg, path, &err), ==, LM_EIO);
    REQ(strstr(err.msg, "person.csv") != NULL);
    rmdir(dir);
    lm_nexmark_gen_free(g);
}
END_TEST

Suite *
nexmark_suite(void)
{
    Suite *s = suite_create("nexmark");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_nexmark_first_events_documented);
    tcase_add_test(tc, test_nexmark_matches_reference_streams);
    tcase_add_test(tc, test_nexmark_rare_values);
    tcase_add_test(tc, test_nexmark_deterministic_across_generators);
    tcase_add_test(tc, test_nexmark_columns_do_not_depend_on_each_other);
    tcase_add_test(tc, test_nexmark_parallel_split);
    tcase_add_test(tc, test_nexmark_kinds_mask_bids_only);
    tcase_add_test(tc, test_nexmark_end_of_stream);
    tcase_add_test(tc, test_nexmark_unreachable_kinds);
    tcase_add_test(tc, test_nexmark_ids_and_hot_cold);
    tcase_add_test(tc, test_nexmark_timestamps);
    tcase_add_test(tc, test_nexmark_out_of_order_groups);
    tcase_add_test(tc, test_nexmark_extra_lengths);
    tcase_add_test(tc, test_nexmark_strings_valid_and_trimmed);
    tcase_add_test(tc, test_nexmark_nulls_in_other_kinds);
    tcase_add_test(tc, test_nexmark_cursor_resume);
    tcase_add_test(tc, test_nexmark_fill_checks_the_batch);
    tcase_add_test(tc, test_nexmark_columns_errors);
    tcase_add_test(tc, test_nexmark_cfg_set_and_errors);
    tcase_add_test(tc, test_nexmark_csv_quote_round_trips);
    tcase_add_test(tc, test_nexmark_dump_files);
    suite_add_tcase(s, tc);
    return s;
}
