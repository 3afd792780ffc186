/*
 * lm_nexmark.c: the Nexmark generator of /work/shared/nexmark/GENERATOR.md.
 *
 * Every field of every event comes from its own splitmix64 stream seeded
 * by (seed, n, field number), so each value is computed on its own, from
 * nothing but the configuration and the event number. The columnar path
 * exploits that: lm_nexmark_fill first walks the cursor over a chunk of
 * up to 256 events (kind, ids and time of each by incremental closed
 * forms, no division per event), then makes each requested column in
 * tight loops over the chunk's rows of the column's kind, writing the
 * batch's buffers directly (nulls of the other kinds in bulk). Columns not
 * requested, and events of kinds not selected, cost nothing beyond the
 * walk.
 *
 * Where the time goes, and what keeps it low:
 *  - the stream starts: two splitmix mixes per field and event, plus the
 *    first two draws. They are computed for a whole chunk in one loop
 *    without branches (stream_starts), which GCC on x86-64 also builds for
 *    AVX2 and AVX-512 and picks at load time (target_clones: no per-row
 *    dispatch); the 64-bit multiplications then run eight at a time.
 *  - price() = (int64)(pow(10, u * 6) * 100) is computed without pow by a
 *    branch-free polynomial, vectorised the same way; the rare results
 *    that lie too near an integer for the polynomial's error bound fall
 *    back to pow, so the values are pow's (see price_fast).
 *  - `draw % d` for the variable divisors of extra()'s offset uses
 *    Lemire's exact 128-bit "fastmod" with per-length constants made once
 *    per generator; other divisors are constants.
 *  - strings are written with fixed-size copies from padded tables and
 *    base-27 digits two at a time; hot/cold choices are branch-free where
 *    both sides are cheap.
 */
#include "lm_nexmark.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_time.h"

__extension__ typedef unsigned __int128 u128;

/* --- splitmix64 ------------------------------------------------------------ */

#define GOLDEN 0x9E3779B97F4A7C15ull

static inline uint64_t
finalize(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t
mix(uint64_t z)
{
    return finalize(z + GOLDEN);
}

static inline uint64_t
draw(uint64_t *s)
{
    *s += GOLDEN;
    return finalize(*s);
}

/* The stream of field f of event n. */
static inline uint64_t
stream(uint64_t seed, uint64_t n, unsigned f)
{
    return mix(seed ^ mix(n * 16 + f));
}

/* Lemire's exact remainder: a % d == fastmod(a, M, d) for every 64-bit a
 * when M = floor((2^128 - 1) / d) + 1 (d >= 2). */
static inline u128
fastmod_m(uint64_t d)
{
    return ~(u128)0 / d + 1;
}

static inline uint64_t
fastmod(uint64_t a, u128 m, uint64_t d)
{
    u128 low = m * a;
    u128 bottom = ((low & UINT64_MAX) * d) >> 64;
    u128 top = (low >> 64) * d;
    return (uint64_t)((bottom + top) >> 64);
}

/* --- word lists and field numbers ----------------------------------------- */

/* A word and its length. */
typedef struct word {
    const char *s;
    uint8_t len;
} word;

/* clang-format off */
#define W(x) {x, sizeof(x) - 1}
/* clang-format on */

static const word FIRST[11] = {W("Peter"), W("Paul"),   W("Luke"),  W("John"),
                               W("Saul"),  W("Vicky"),  W("Kate"),  W("Julie"),
                               W("Sarah"), W("Deiter"), W("Walter")};
static const word LAST[9] = {W("Shultz"), W("Abrams"), W("Spencer"), W("White"), W("Bartels"),
                             W("Walton"), W("Smith"),  W("Jones"),   W("Noris")};
static const word CITY[10] = {W("Phoenix"),  W("Los Angeles"), W("San Francisco"), W("Boise"),
                              W("Portland"), W("Bend"),        W("Redmond"),       W("Seattle"),
                              W("Kent"),     W("Cheyenne")};
static const word STATE[6] = {W("AZ"), W("CA"), W("ID"), W("OR"), W("WA"), W("WY")};
static const word HOT[4] = {W("Google"), W("Facebook"), W("Baidu"), W("Apple")};
static const word HOT_URL[4] = {
    W("https://www.nexmark.com/google/item.htm?query=1"),
    W("https://www.nexmark.com/facebook/item.htm?query=1"),
    W("https://www.nexmark.com/baidu/item.htm?query=1"),
    W("https://www.nexmark.com/apple/item.htm?query=1"),
};

enum { P_ID, P_NAME, P_EMAIL, P_CARD, P_CITY, P_STATE, P_DATETIME, P_EXTRA };
enum {
    A_ID,
    A_ITEM,
    A_DESC,
    A_INITIAL,
    A_RESERVE,
    A_DATETIME,
    A_EXPIRES,
    A_SELLER,
    A_CATEGORY,
    A_EXTRA
};
enum { B_AUCTION, B_BIDDER, B_PRICE, B_CHANNEL, B_URL, B_DATETIME, B_EXTRA };
#define B_URL_STREAM B_CHANNEL /* the url comes from the channel's stream */

#define POOL_LEN  (1u << 20)
#define POOL_PAD  512 /* readable bytes after the pool, for fixed-size copies */
#define EXTRA_P   100 /* extra(avg) of each kind */
#define EXTRA_A   300
#define EXTRA_B   68
#define EXTRA_MAX 360 /* 300 * 6 / 5 */

/* Longest value of each var-width field (str(m) is at most m - 1 long). */
#define NAME_MAX_LEN  14 /* "Walter Bartels" */
#define EMAIL_MAX_LEN 15 /* 6 + "@" + 4 + ".com" */
#define CARD_LEN      19
#define CITY_MAX_LEN  13
#define STATE_LEN     2
#define ITEM_MAX_LEN  19
#define DESC_MAX_LEN  99
#define CHAN_MAX_LEN  12 /* "channel-9999" */
#define URL_MAX_LEN   76 /* 24 + 3 * 4 + 2 + 17 + 12 + 9 */
#define URL_PREFIX    "https://www.nexmark.com/"
#define URL_SUFFIX    "/item.htm?query=1"
#define URL_CHANNEL   "&channel_id="

/* --- configuration ------------------------------------------------------- */

void
lm_nexmark_cfg_defaults(lm_nexmark_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->events_num = 0;
    cfg->first_rate = 10000;
    cfg->next_rate = 10000;
    cfg->emit_rate = 0;
    cfg->person_proportion = 1;
    cfg->auction_proportion = 3;
    cfg->bid_proportion = 46;
    cfg->seed = 0;
    cfg->base_time_ms = 1436918400000ll;
    cfg->ooo_group = 1;
}

/* Parses a whole decimal (or, with allow_hex, 0x-hex) integer, optional
 * spaces around and an optional sign (negatives only with allow_neg). The
 * magnitude goes to *mag, the sign to *neg. */
static bool
parse_int(const char *s, bool allow_neg, bool allow_hex, uint64_t *mag, bool *neg)
{
    const char *p = s;
    char *end = NULL;
    int base = 10;

    *neg = false;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '+' || *p == '-') {
        *neg = *p == '-';
        p++;
    }
    if (*neg && !allow_neg) {
        return false;
    }
    if (allow_hex && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'))) {
            return false;
        }
    } else if (!(*p >= '0' && *p <= '9')) {
        return false;
    }
    errno = 0;
    *mag = strtoull(p, &end, base);
    if (errno != 0) {
        return false;
    }
    while (*end == ' ' || *end == '\t') {
        end++;
    }
    return *end == '\0';
}

typedef enum opt_kind { OPT_U64, OPT_U32, OPT_SEED, OPT_TIME } opt_kind;

typedef struct opt_def {
    const char *name;
    opt_kind kind;
    uint64_t min, max; /* for OPT_U64 / OPT_U32 */
    size_t offset;
} opt_def;

static const opt_def OPTS[] = {
    {"events.num", OPT_U64, 0, UINT64_MAX, offsetof(lm_nexmark_cfg, events_num)},
    {"first-event.rate", OPT_U64, 1, LM_NEXMARK_RATE_MAX, offsetof(lm_nexmark_cfg, first_rate)},
    {"next-event.rate", OPT_U64, 1, LM_NEXMARK_RATE_MAX, offsetof(lm_nexmark_cfg, next_rate)},
    {"emit.rate", OPT_U64, 0, LM_NEXMARK_RATE_MAX, offsetof(lm_nexmark_cfg, emit_rate)},
    {"person.proportion", OPT_U32, 0, UINT32_MAX, offsetof(lm_nexmark_cfg, person_proportion)},
    {"auction.proportion", OPT_U32, 0, UINT32_MAX, offsetof(lm_nexmark_cfg, auction_proportion)},
    {"bid.proportion", OPT_U32, 0, UINT32_MAX, offsetof(lm_nexmark_cfg, bid_proportion)},
    {"seed", OPT_SEED, 0, 0, offsetof(lm_nexmark_cfg, seed)},
    {"base-time", OPT_TIME, 0, 0, offsetof(lm_nexmark_cfg, base_time_ms)},
    {"out-of-order.group", OPT_U64, 1, LM_NEXMARK_OOO_GROUP_MAX,
     offsetof(lm_nexmark_cfg, ooo_group)},
};

const char *
lm_nexmark_option(uint32_t i)
{
    return i < sizeof(OPTS) / sizeof(OPTS[0]) ? OPTS[i].name : NULL;
}

int
lm_nexmark_cfg_set(lm_nexmark_cfg *cfg, const char *option, const char *value, lm_error *err)
{
    const opt_def *o = NULL;
    lm_nexmark_cfg next = *cfg;
    uint64_t mag = 0;
    bool neg = false;

    if (option == NULL) {
        return lm_error_set(err, LM_ECONFIG, "nexmark: missing option name");
    }
    for (size_t i = 0; i < sizeof(OPTS) / sizeof(OPTS[0]); i++) {
        if (strcmp(OPTS[i].name, option) == 0) {
            o = &OPTS[i];
            break;
        }
    }
    if (o == NULL) {
        return lm_error_set(err, LM_ECONFIG, "nexmark: unknown option '%s' (value '%s')", option,
                            value != NULL ? value : "");
    }
    if (value == NULL || !parse_int(value, o->kind == OPT_SEED || o->kind == OPT_TIME,
                                    o->kind == OPT_SEED, &mag, &neg)) {
        return lm_error_set(err, LM_ECONFIG, "nexmark: option '%s': '%s' is not an integer", option,
                            value != NULL ? value : "(null)");
    }
    switch (o->kind) {
    case OPT_U64:
    case OPT_U32:
        if (mag < o->min || mag > o->max) {
            return lm_error_set(err, LM_ECONFIG,
                                "nexmark: option '%s': '%s' is out of range (%llu..%llu)", option,
                                value, (unsigned long long)o->min, (unsigned long long)o->max);
        }
        if (o->kind == OPT_U32) {
            *(uint32_t *)(void *)((char *)&next + o->offset) = (uint32_t)mag;
        } else {
            *(uint64_t *)(void *)((char *)&next + o->offset) = mag;
        }
        break;
    case OPT_SEED:
        if (neg && mag > (uint64_t)INT64_MAX + 1) {
            return lm_error_set(err, LM_ECONFIG, "nexmark: option '%s': '%s' is out of range",
                                option, value);
        }
        next.seed = neg ? 0 - mag : mag;
        break;
    case OPT_TIME:
        if (mag > (uint64_t)LM_NEXMARK_BASE_TIME_MAX) {
            return lm_error_set(err, LM_ECONFIG,
                                "nexmark: option '%s': '%s' is out of range (|ms| <= %lld)", option,
                                value, (long long)LM_NEXMARK_BASE_TIME_MAX);
        }
        next.base_time_ms = neg ? -(int64_t)mag : (int64_t)mag;
        break;
    }
    if (strcmp(option, "first-event.rate") == 0) {
        next.next_rate = next.first_rate;
    }
    if ((uint64_t)next.person_proportion + next.auction_proportion + next.bid_proportion == 0) {
        return lm_error_set(err, LM_ECONFIG,
                            "nexmark: option '%s': '%s' makes all three proportions 0", option,
                            value);
    }
    *cfg = next;
    return LM_OK;
}

int
lm_nexmark_cfg_check(const lm_nexmark_cfg *cfg, lm_error *err)
{
    if (cfg->first_rate < 1 || cfg->first_rate > LM_NEXMARK_RATE_MAX) {
        return lm_error_set(err, LM_ECONFIG,
                            "nexmark: option 'first-event.rate': %llu is out of "
                            "range (1..%llu)",
                            (unsigned long long)cfg->first_rate, LM_NEXMARK_RATE_MAX);
    }
    if (cfg->emit_rate > LM_NEXMARK_RATE_MAX) {
        return lm_error_set(err, LM_ECONFIG, "nexmark: option 'emit.rate': %llu is out of range",
                            (unsigned long long)cfg->emit_rate);
    }
    if ((uint64_t)cfg->person_proportion + cfg->auction_proportion + cfg->bid_proportion == 0) {
        return lm_error_set(err, LM_ECONFIG,
                            "nexmark: options 'person.proportion', 'auction.proportion', "
                            "'bid.proportion': all three are 0");
    }
    if (cfg->ooo_group < 1 || cfg->ooo_group > LM_NEXMARK_OOO_GROUP_MAX) {
        return lm_error_set(err, LM_ECONFIG,
                            "nexmark: option 'out-of-order.group': %llu is out of range (1..%llu)",
                            (unsigned long long)cfg->ooo_group, LM_NEXMARK_OOO_GROUP_MAX);
    }
    if (cfg->base_time_ms > LM_NEXMARK_BASE_TIME_MAX ||
        cfg->base_time_ms < -LM_NEXMARK_BASE_TIME_MAX) {
        return lm_error_set(err, LM_ECONFIG, "nexmark: option 'base-time': %lld is out of range",
                            (long long)cfg->base_time_ms);
    }
    return LM_OK;
}

/* --- kinds, ids, time ---------------------------------------------------- */

static inline uint64_t
total(const lm_nexmark_cfg *cfg)
{
    return (uint64_t)cfg->person_proportion + cfg->auction_proportion + cfg->bid_proportion;
}

static inline lm_nexmark_kind
kind_of_r(uint64_t r, uint64_t p, uint64_t pa)
{
    return r < p ? LM_NEXMARK_PERSON : r < pa ? LM_NEXMARK_AUCTION : LM_NEXMARK_BID;
}

lm_nexmark_kind
lm_nexmark_kind_of(const lm_nexmark_cfg *cfg, uint64_t n)
{
    uint64_t p = cfg->person_proportion;
    return kind_of_r(n % total(cfg), p, p + cfg->auction_proportion);
}

/* pb and ab from q = n / T and r = n % T. */
static inline uint64_t
pb_qr(uint64_t q, uint64_t r, uint64_t p)
{
    return q * p + (r < p ? r : p);
}

static inline uint64_t
ab_qr(uint64_t q, uint64_t r, uint64_t p, uint64_t a)
{
    uint64_t x = r > p ? r - p : 0;
    return q * a + (x < a ? x : a);
}

uint64_t
lm_nexmark_persons_before(const lm_nexmark_cfg *cfg, uint64_t n)
{
    uint64_t t = total(cfg);
    return pb_qr(n / t, n % t, cfg->person_proportion);
}

uint64_t
lm_nexmark_auctions_before(const lm_nexmark_cfg *cfg, uint64_t n)
{
    uint64_t t = total(cfg);
    return ab_qr(n / t, n % t, cfg->person_proportion, cfg->auction_proportion);
}

/* 1000 + max(x - 1, 0) where x = pb(n + 1) or ab(n + 1). */
static inline int64_t
last_id(uint64_t x)
{
    return 1000 + (int64_t)(x > 0 ? x - 1 : 0);
}

int64_t
lm_nexmark_last_person(const lm_nexmark_cfg *cfg, uint64_t n)
{
    return last_id(lm_nexmark_persons_before(cfg, n + 1));
}

int64_t
lm_nexmark_last_auction(const lm_nexmark_cfg *cfg, uint64_t n)
{
    return last_id(lm_nexmark_auctions_before(cfg, n + 1));
}

/* floor(m * 1000 / rate) without overflow. */
static inline uint64_t
time_offset(uint64_t m, uint64_t rate)
{
    return (m / rate) * 1000 + (m % rate) * 1000 / rate;
}

/* The event whose timestamp event n takes. */
static inline uint64_t
ooo_source(uint64_t n, uint64_t k)
{
    uint64_t nk = n % k;
    return n - nk + (nk * 953) % k;
}

int64_t
lm_nexmark_time_ms(const lm_nexmark_cfg *cfg, uint64_t n)
{
    uint64_t m = cfg->ooo_group > 1 ? ooo_source(n, cfg->ooo_group) : n;
    return (int64_t)((uint64_t)cfg->base_time_ms + time_offset(m, cfg->first_rate));
}

/* --- the generator ------------------------------------------------------- */

struct lm_nexmark_gen {
    lm_nexmark_cfg cfg;                   /* the configuration (checked) */
    uint64_t t, p, a, pa;                 /* T, P, A and P + A */
    uint64_t expire_span;                 /* 2 * H + 1 */
    u128 extra_m[3][EXTRA_A * 2 / 5 + 1]; /* fastmod constants of rnd(2^20 - len) for
                                             extra(100), extra(300), extra(68), by
                                             len - avg * 4 / 5 */
    char *pool;                           /* POOL_LEN letters, then POOL_PAD more readable bytes */
};

static void
extra_init(u128 *m, uint32_t avg)
{
    for (uint32_t i = 0; i < avg * 2 / 5 + 1; i++) {
        m[i] = fastmod_m(POOL_LEN - (avg * 4 / 5 + i));
    }
}

int
lm_nexmark_gen_new(const lm_nexmark_cfg *cfg, lm_nexmark_gen **out, lm_error *err)
{
    lm_nexmark_gen *g = NULL;
    uint64_t s;
    int rv;

    if ((rv = lm_nexmark_cfg_check(cfg, err)) != LM_OK) {
        return rv;
    }
    if ((g = calloc(1, sizeof(*g))) == NULL || (g->pool = malloc(POOL_LEN + POOL_PAD)) == NULL) {
        free(g);
        return lm_error_set(err, LM_ENOMEM, "nexmark: out of memory for the generator");
    }
    g->cfg = *cfg;
    g->p = cfg->person_proportion;
    g->a = cfg->auction_proportion;
    g->pa = g->p + g->a;
    g->t = g->pa + cfg->bid_proportion;
    g->expire_span = 2 * (1666 * 1000 / cfg->first_rate) + 1;
    extra_init(g->extra_m[0], EXTRA_P);
    extra_init(g->extra_m[1], EXTRA_A);
    extra_init(g->extra_m[2], EXTRA_B);
    /* The pool: 13 letters per draw, lowest base-26 digit first. */
    s = mix(cfg->seed ^ UINT64_MAX);
    for (uint32_t i = 0; i < POOL_LEN;) {
        uint64_t d = draw(&s);
        for (int k = 0; k < 13 && i < POOL_LEN; k++, i++) {
            g->pool[i] = (char)('a' + d % 26);
            d /= 26;
        }
    }
    memset(g->pool + POOL_LEN, 'a', POOL_PAD);
    *out = g;
    return LM_OK;
}

void
lm_nexmark_gen_free(lm_nexmark_gen *g)
{
    if (g != NULL) {
        free(g->pool);
        free(g);
    }
}

const lm_nexmark_cfg *
lm_nexmark_gen_cfg(const lm_nexmark_gen *g)
{
    return &g->cfg;
}

/* --- field makers (shared by the struct and the columnar paths) ---------- */

/* The makers write strings with fixed-size copies, so they may write past
 * the value's end: up to STR_SLACK bytes past the longest value of the
 * field for every maker but extra, whose copy (write_extra) may pass it by
 * up to EXTRA_MAX. The struct path makes values in scratch buffers with
 * that room; the columnar path reserves it in the column's data. */
#define STR_SLACK 64

/* PAIRS + 2 * v: the two characters of base-27 digits v % 27, v / 27
 * (v < 729; digit 26 is a space). */
static const char PAIRS[729 * 2 + 1] =
    "aabacadaeafagahaiajakalamanaoapaqarasatauavawaxayaza aabbbcbdbebfbgbhbibjbkblbmbnbobpbqbrb"
    "sbtbubvbwbxbybzb bacbcccdcecfcgchcicjckclcmcncocpcqcrcsctcucvcwcxcyczc cadbdcdddedfdgdhdid"
    "jdkdldmdndodpdqdrdsdtdudvdwdxdydzd daebecedeeefegeheiejekelemeneoepeqereseteuevewexeyeze e"
    "afbfcfdfefffgfhfifjfkflfmfnfofpfqfrfsftfufvfwfxfyfzf fagbgcgdgegfggghgigjgkglgmgngogpgqgrg"
    "sgtgugvgwgxgygzg gahbhchdhehfhghhhihjhkhlhmhnhohphqhrhshthuhvhwhxhyhzh haibicidieifigihiii"
    "jikiliminioipiqirisitiuiviwixiyizi iajbjcjdjejfjgjhjijjjkjljmjnjojpjqjrjsjtjujvjwjxjyjzj j"
    "akbkckdkekfkgkhkikjkkklkmknkokpkqkrksktkukvkwkxkykzk kalblcldlelflglhliljlklllmlnlolplqlrl"
    "sltlulvlwlxlylzl lambmcmdmemfmgmhmimjmkmlmmmnmompmqmrmsmtmumvmwmxmymzm manbncndnenfngnhnin"
    "jnknlnmnnnonpnqnrnsntnunvnwnxnynzn naobocodoeofogohoiojokolomonooopoqorosotouovowoxoyozo o"
    "apbpcpdpepfpgphpipjpkplpmpnpopppqprpsptpupvpwpxpypzp paqbqcqdqeqfqgqhqiqjqkqlqmqnqoqpqqqrq"
    "sqtquqvqwqxqyqzq qarbrcrdrerfrgrhrirjrkrlrmrnrorprqrrrsrtrurvrwrxryrzr rasbscsdsesfsgshsis"
    "jskslsmsnsospsqsrssstsusvswsxsyszs satbtctdtetftgthtitjtktltmtntotptqtrtstttutvtwtxtytzt t"
    "aubucudueufuguhuiujukulumunuoupuqurusutuuuvuwuxuyuzu uavbvcvdvevfvgvhvivjvkvlvmvnvovpvqvrv"
    "svtvuvvvwvxvyvzv vawbwcwdwewfwgwhwiwjwkwlwmwnwowpwqwrwswtwuwvwwwxwywzw waxbxcxdxexfxgxhxix"
    "jxkxlxmxnxoxpxqxrxsxtxuxvxwxxxyxzx xaybycydyeyfygyhyiyjykylymynyoypyqyrysytyuyvywyxyyyzy y"
    "azbzczdzezfzgzhzizjzkzlzmznzozpzqzrzsztzuzvzwzxzyzzz za b c d e f g h i j k l m n o p q r "
    "s t u v w x y z   ";

/* The lowest 6 (12) base-27 digits of d as characters, lowest first, two
 * at a time, in 32-bit arithmetic with short dependency chains. */
static inline void
chars6(uint64_t d, char *out)
{
    uint32_t lo = (uint32_t)(d % 387420489u); /* 27^6 */
    memcpy(out, PAIRS + 2 * (lo % 729), 2);
    memcpy(out + 2, PAIRS + 2 * (lo / 729 % 729), 2);
    memcpy(out + 4, PAIRS + 2 * (lo / 531441), 2);
}

static inline void
chars12(uint64_t d, char *out)
{
    chars6(d, out);
    chars6(d / 387420489u, out + 6);
}

/* str(m) written at dst; returns the trimmed length (at most m - 1). */
static inline uint32_t
gen_str(uint64_t *s, uint32_t m, char *dst)
{
    uint32_t len = 3 + (uint32_t)(draw(s) % (m - 3));
    uint32_t a = 0, e = len;

    if (m <= 7) { /* len <= 6: one draw, 6 digits */
        chars6(draw(s), dst);
    } else {
        for (uint32_t i = 0; i < len; i += 12) {
            chars12(draw(s), dst + i);
        }
    }
    while (a < e && dst[a] == ' ') {
        a++;
    }
    while (e > a && dst[e - 1] == ' ') {
        e--;
    }
    if (a > 0) {
        memmove(dst, dst + a, e - a);
    }
    return e - a;
}

/* price() from its draw: (int64)(pow(10, u * 6) * 100) with
 * u = (d >> 11) * 2^-53. 10^x is computed as 100 * 2^k * 2^r with
 * t = x log2(10), k = round(t), r = t - k (exact, |r| <= 1/2) and 2^r by
 * its Taylor polynomial of degree 12: relative error below 4e-15 (the
 * rounding of t and of log2(10) 3e-15, truncation 2e-16, evaluation 5e-16;
 * measured at most 2.2e-15 against a long double reference). When the
 * result lies within 1e-12 (relative) of an integer, where truncating it
 * and truncating pow's result (itself within 1.5 ulp) could disagree, the
 * fast path gives -1 and the caller calls pow (about 15 in a million
 * draws). The values are therefore pow's. No table and no branch, so that
 * the compiler can vectorise it (see prices_fast). */
static inline int64_t
price_fast(uint64_t d)
{
    double x = (double)(int64_t)(d >> 11) * 0x1p-53 * 6;
    double t = x * 0x1.a934f0979a371p+1; /* log2(10); t in [0, 19.94) */
    int32_t k = (int32_t)(t + 0.5);      /* 0..20 */
    double r = t - (double)k;            /* exact (Sterbenz) */
    double p =
        1 +
        r * (0x1.62e42fefa39efp-1 +
             r * (0x1.ebfbdff82c58fp-3 +
                  r * (0x1.c6b08d704a0c0p-5 +
                       r * (0x1.3b2ab6fba4e77p-7 +
                            r * (0x1.5d87fe78a6731p-10 +
                                 r * (0x1.430912f86c787p-13 +
                                      r * (0x1.ffcbfc588b0c7p-17 +
                                           r * (0x1.62c0223a5c824p-20 +
                                                r * (0x1.b5253d395e7c4p-24 +
                                                     r * (0x1.e4cf5158b8ecap-28 +
                                                          r * (0x1.e8cac7351bb25p-32 +
                                                               r * 0x1.c3bd650fc2986p-36)))))))))));
    double y = p * (double)(int32_t)(100u << k); /* exact scaling */
    int64_t iy = (int64_t)y;
    double f = y - (double)iy, eps = y * 1e-12;

    return ((f > eps) & (f < 1 - eps)) ? iy : -1;
}

static int64_t
price_slow(uint64_t d)
{
    double x = (double)(d >> 11) * 0x1p-53 * 6;
    return (int64_t)(pow(10, x) * 100);
}

static inline int64_t
price_of(uint64_t d)
{
    int64_t v = price_fast(d);
    return v >= 0 ? v : price_slow(d);
}

/* The start of field f's stream for event n and its first two draws
 * (d1 = draw, d2 = the next draw; the state after them is st + 2G). */
static inline uint64_t
field_start(uint64_t seed, uint64_t n, unsigned f, uint64_t *d1, uint64_t *d2)
{
    uint64_t st = stream(seed, n, f);
    *d1 = finalize(st + GOLDEN);
    *d2 = finalize(st + 2 * GOLDEN);
    return st;
}

/* extra(avg) from its stream's two draws: a slice of the pool, its length
 * to *len. avg is a constant at every call, so the length draw's divisor
 * is too; the offset's divisor 2^20 - len uses the generator's fastmod
 * constants. */
static inline const char *
extra_of(const lm_nexmark_gen *g, int which, uint32_t avg, uint64_t d1, uint64_t d2, uint32_t *len)
{
    uint32_t lo = avg * 4 / 5, l = lo + (uint32_t)(d1 % (avg * 2 / 5 + 1));
    *len = l;
    return g->pool + fastmod(d2, g->extra_m[which][l - lo], POOL_LEN - l);
}

/* A cold id: lo + rnd(L - lo + 1 + 10) with lo = max(1000, L - window). */
static inline int64_t
cold_id(uint64_t d, int64_t last, int64_t window)
{
    int64_t lo = last - window < 1000 ? 1000 : last - window;
    uint64_t k = (uint64_t)(last - lo + 11);
    /* the steady state has a constant divisor the compiler turns into a
     * multiplication */
    uint64_t r = k == (uint64_t)window + 11 ? d % ((uint64_t)window + 11) : d % k;
    return lo + (int64_t)r;
}

/* seller: hot (L / 100) * 100 when rnd(4) != 0, else a cold person (the
 * next draw of the same stream). */
static inline int64_t
seller_of(uint64_t d1, uint64_t d2, int64_t lastp)
{
    int64_t hot = (lastp / 100) * 100, cold = cold_id(d2, lastp, 999);
    return d1 % 4 != 0 ? hot : cold;
}

/* bid.auction: hot (L / 100) * 100 when rnd(2) != 0, else a cold auction. */
static inline int64_t
bid_auction_of(uint64_t d1, uint64_t d2, int64_t lasta)
{
    int64_t hot = (lasta / 100) * 100, cold = cold_id(d2, lasta, 99);
    int64_t m = -(int64_t)(d1 & 1); /* all ones when hot: branch-free */
    return (hot & m) | (cold & ~m);
}

/* bid.bidder: hot (L / 100) * 100 + 1 when rnd(4) != 0, else a cold person. */
static inline int64_t
bidder_of(uint64_t d1, uint64_t d2, int64_t lastp)
{
    int64_t hot = (lastp / 100) * 100 + 1, cold = cold_id(d2, lastp, 999);
    int64_t m = -(int64_t)((d1 & 3) != 0);
    return (hot & m) | (cold & ~m);
}

static const char DIGITS2[201] = "00010203040506070809101112131415161718192021222324252627282930313"
                                 "23334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374757677787980818"
                                 "28384858687888990919293949596979899";

/* v (< 10^4) in decimal at dst, which has 4 bytes of room; returns the
 * digits. Branch-free: the four digits are made, the leading zeros
 * skipped by the copy's start. */
static inline uint32_t
put_dec4(char *dst, uint32_t v)
{
    char tmp[8];
    uint32_t n = 1 + (v >= 10) + (v >= 100) + (v >= 1000);
    memcpy(tmp, DIGITS2 + 2 * (v / 100), 2);
    memcpy(tmp + 2, DIGITS2 + 2 * (v % 100), 2);
    memcpy(tmp + 4, "0000", 4);
    memcpy(dst, tmp + 4 - n, 4);
    return n;
}

/* v (< 10^9) in decimal at dst, which has 12 bytes of room; returns the
 * digits. The nine digits are made, the leading zeros skipped by the
 * copy's start. */
static inline uint32_t
put_dec9(char *dst, uint32_t v)
{
    char tmp[24];
    uint32_t hi = v / 100000, lo = v % 100000; /* 4 + 5 digits */
    uint32_t n = 1 + (v >= 10) + (v >= 100) + (v >= 1000) + (v >= 10000) + (v >= 100000) +
                 (v >= 1000000) + (v >= 10000000) + (v >= 100000000);
    memcpy(tmp, DIGITS2 + 2 * (hi / 100), 2);
    memcpy(tmp + 2, DIGITS2 + 2 * (hi % 100), 2);
    tmp[4] = (char)('0' + lo / 10000);
    memcpy(tmp + 5, DIGITS2 + 2 * (lo / 100 % 100), 2);
    memcpy(tmp + 7, DIGITS2 + 2 * (lo % 100), 2);
    memset(tmp + 9, '0', sizeof(tmp) - 9);
    memcpy(dst, tmp + 9 - n, 12); /* reads at most tmp[8 + 12) */
    return n;
}

/* v in decimal at dst (20 bytes of room); returns the digits. */
static inline uint32_t
put_dec(char *dst, uint64_t v)
{
    char tmp[20];
    uint32_t n = 0;
    do {
        tmp[19 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    memcpy(dst, tmp + 20 - n, n);
    return n;
}

/* Word lists padded to fixed sizes, for fixed-size copies. */
static const char NAME_PAD[11 + 9][8] = {
    "Peter", "Paul",    "Luke",   "John",   "Saul",   "Vicky",  "Kate",
    "Julie", "Sarah",   "Deiter", "Walter", "Shultz", "Abrams", "Spencer",
    "White", "Bartels", "Walton", "Smith",  "Jones",  "Noris",
};
static const char CITY_PAD[10][16] = {"Phoenix",  "Los Angeles", "San Francisco", "Boise",
                                      "Portland", "Bend",        "Redmond",       "Seattle",
                                      "Kent",     "Cheyenne"};
static const char HOT_PAD[4][16] = {"Google", "Facebook", "Baidu", "Apple"};
static const char HOT_URL_PAD[4][64] = {
    "https://www.nexmark.com/google/item.htm?query=1",
    "https://www.nexmark.com/facebook/item.htm?query=1",
    "https://www.nexmark.com/baidu/item.htm?query=1",
    "https://www.nexmark.com/apple/item.htm?query=1",
};

static inline uint32_t
name_of(uint64_t d1, uint64_t d2, char *dst)
{
    uint32_t f = (uint32_t)(d1 % 11), l = (uint32_t)(d2 % 9);
    memcpy(dst, NAME_PAD[f], 8);
    dst[FIRST[f].len] = ' ';
    memcpy(dst + FIRST[f].len + 1, NAME_PAD[11 + l], 8);
    return FIRST[f].len + 1u + LAST[l].len;
}

static inline uint32_t
email_of(uint64_t st, char *dst)
{
    uint32_t len = gen_str(&st, 7, dst);
    dst[len++] = '@';
    len += gen_str(&st, 5, dst + len);
    memcpy(dst + len, ".com", 4);
    return len + 4;
}

static inline uint32_t
card_of(uint64_t st, char *dst)
{
    for (int i = 0; i < 4; i++) {
        uint32_t v = (uint32_t)(draw(&st) % 10000);
        memcpy(dst + i * 5, DIGITS2 + 2 * (v / 100), 2);
        memcpy(dst + i * 5 + 2, DIGITS2 + 2 * (v % 100), 2);
        dst[i * 5 + 4] = ' ';
    }
    return CARD_LEN;
}

static inline uint32_t
city_of(uint64_t d1, char *dst)
{
    uint32_t i = (uint32_t)(d1 % 10);
    memcpy(dst, CITY_PAD[i], 16);
    return CITY[i].len;
}

static inline uint32_t
state_of(uint64_t d1, char *dst)
{
    memcpy(dst, STATE[d1 % 6].s, 2);
    return 2;
}

static inline uint32_t
str_of(uint64_t st, uint32_t m, char *dst)
{
    return gen_str(&st, m, dst);
}

static inline int64_t
expires_of(uint64_t d1, int64_t t_ms, uint64_t span)
{
    return (int64_t)((uint64_t)t_ms + 1 + d1 % span);
}

static inline int64_t
category_of(uint64_t d1)
{
    return 10 + (int64_t)(d1 % 5);
}

/* bid.channel at dst (16 bytes of room); returns its length. Both
 * candidates are made and one is chosen without a branch. */
static inline uint32_t
channel_of(uint64_t d1, uint64_t d2, char *dst)
{
    char cold[16];
    uint32_t h = (uint32_t)(d2 % 4), cold_len;
    bool hot = d1 % 2 != 0;

    memcpy(cold, "channel-", 8);
    cold_len = 8 + put_dec4(cold + 8, (uint32_t)(d2 % 10000));
    memset(cold + 12, 0, 4);
    memcpy(dst, hot ? HOT_PAD[h] : cold, 16);
    return hot ? HOT[h].len : cold_len;
}

/* bid.url at dst (from the channel's stream 3, continuing after its two
 * draws); returns its length. */
static inline uint32_t
url_of(uint64_t st, uint64_t d1, uint64_t d2, char *dst)
{
    uint64_t s = st + 2 * GOLDEN;
    uint32_t len;

    if (d1 % 2 != 0) {
        memcpy(dst, HOT_URL_PAD[d2 % 4], 64);
        return HOT_URL[d2 % 4].len;
    }
    memcpy(dst, URL_PREFIX, sizeof(URL_PREFIX) - 1);
    len = sizeof(URL_PREFIX) - 1;
    len += gen_str(&s, 5, dst + len);
    dst[len++] = '/';
    len += gen_str(&s, 5, dst + len);
    dst[len++] = '/';
    len += gen_str(&s, 5, dst + len);
    memcpy(dst + len, URL_SUFFIX, sizeof(URL_SUFFIX) - 1);
    len += sizeof(URL_SUFFIX) - 1;
    if (draw(&s) % 10 != 0) {
        memcpy(dst + len, URL_CHANNEL, sizeof(URL_CHANNEL) - 1);
        len += sizeof(URL_CHANNEL) - 1;
        len += put_dec9(dst + len, (uint32_t)(draw(&s) % 1000000000));
    }
    return len;
}

/* --- whole events ---------------------------------------------------------- */

/* Copies a made string of len bytes (made in a scratch buffer with room
 * for the makers' slack) into a struct field with its NUL. */
static inline void
set_str(char *field, const char *tmp, uint32_t len)
{
    memcpy(field, tmp, len);
    field[len] = '\0';
}

int
lm_nexmark_person_at(const lm_nexmark_gen *g, uint64_t n, lm_nexmark_person *out)
{
    uint64_t seed = g->cfg.seed, q = n / g->t, r = n % g->t, st, d1, d2;
    char tmp[128 + STR_SLACK];
    uint32_t len;

    if (kind_of_r(r, g->p, g->pa) != LM_NEXMARK_PERSON) {
        return LM_EINVAL;
    }
    out->id = 1000 + (int64_t)pb_qr(q, r, g->p);
    field_start(seed, n, P_NAME, &d1, &d2);
    set_str(out->name, tmp, name_of(d1, d2, tmp));
    st = field_start(seed, n, P_EMAIL, &d1, &d2);
    set_str(out->email, tmp, email_of(st, tmp));
    st = field_start(seed, n, P_CARD, &d1, &d2);
    set_str(out->credit_card, tmp, card_of(st, tmp));
    field_start(seed, n, P_CITY, &d1, &d2);
    out->city = CITY[d1 % 10].s;
    field_start(seed, n, P_STATE, &d1, &d2);
    out->state = STATE[d1 % 6].s;
    out->date_time_ms = lm_nexmark_time_ms(&g->cfg, n);
    field_start(seed, n, P_EXTRA, &d1, &d2);
    out->extra = extra_of(g, 0, EXTRA_P, d1, d2, &len);
    out->extra_len = len;
    return LM_OK;
}

int
lm_nexmark_auction_at(const lm_nexmark_gen *g, uint64_t n, lm_nexmark_auction *out)
{
    uint64_t seed = g->cfg.seed, q = n / g->t, r = n % g->t, st, d1, d2;
    char tmp[128 + STR_SLACK];
    uint32_t len;

    if (kind_of_r(r, g->p, g->pa) != LM_NEXMARK_AUCTION) {
        return LM_EINVAL;
    }
    out->id = 1000 + (int64_t)ab_qr(q, r, g->p, g->a);
    st = field_start(seed, n, A_ITEM, &d1, &d2);
    set_str(out->item_name, tmp, str_of(st, 20, tmp));
    st = field_start(seed, n, A_DESC, &d1, &d2);
    set_str(out->description, tmp, str_of(st, 100, tmp));
    field_start(seed, n, A_INITIAL, &d1, &d2);
    out->initial_bid = price_of(d1);
    field_start(seed, n, A_RESERVE, &d1, &d2);
    out->reserve = out->initial_bid + price_of(d1);
    out->date_time_ms = lm_nexmark_time_ms(&g->cfg, n);
    field_start(seed, n, A_EXPIRES, &d1, &d2);
    out->expires_ms = expires_of(d1, out->date_time_ms, g->expire_span);
    field_start(seed, n, A_SELLER, &d1, &d2);
    out->seller = seller_of(d1, d2, last_id(pb_qr(q, r + 1, g->p)));
    field_start(seed, n, A_CATEGORY, &d1, &d2);
    out->category = category_of(d1);
    field_start(seed, n, A_EXTRA, &d1, &d2);
    out->extra = extra_of(g, 1, EXTRA_A, d1, d2, &len);
    out->extra_len = len;
    return LM_OK;
}

int
lm_nexmark_bid_at(const lm_nexmark_gen *g, uint64_t n, lm_nexmark_bid *out)
{
    uint64_t seed = g->cfg.seed, q = n / g->t, r = n % g->t, st, d1, d2;
    char tmp[128 + STR_SLACK];
    uint32_t len;

    if (kind_of_r(r, g->p, g->pa) != LM_NEXMARK_BID) {
        return LM_EINVAL;
    }
    /* pb(n + 1) = q * P + min(r + 1, P) holds also when r + 1 == T */
    field_start(seed, n, B_AUCTION, &d1, &d2);
    out->auction = bid_auction_of(d1, d2, last_id(ab_qr(q, r + 1, g->p, g->a)));
    field_start(seed, n, B_BIDDER, &d1, &d2);
    out->bidder = bidder_of(d1, d2, last_id(pb_qr(q, r + 1, g->p)));
    field_start(seed, n, B_PRICE, &d1, &d2);
    out->price = price_of(d1);
    st = field_start(seed, n, B_CHANNEL, &d1, &d2);
    set_str(out->channel, tmp, channel_of(d1, d2, tmp));
    set_str(out->url, tmp, url_of(st, d1, d2, tmp));
    out->date_time_ms = lm_nexmark_time_ms(&g->cfg, n);
    field_start(seed, n, B_EXTRA, &d1, &d2);
    out->extra = extra_of(g, 2, EXTRA_B, d1, d2, &len);
    out->extra_len = len;
    return LM_OK;
}

/* --- columns ------------------------------------------------------------- */

#define KIND_NONE 3

static const lm_field COLS[LM_NEXMARK_NCOLS] = {
    {"event_type", LM_TYPE_INT64, false},          {"person.id", LM_TYPE_INT64, true},
    {"person.name", LM_TYPE_UTF8, true},           {"person.emailAddress", LM_TYPE_UTF8, true},
    {"person.creditCard", LM_TYPE_UTF8, true},     {"person.city", LM_TYPE_UTF8, true},
    {"person.state", LM_TYPE_UTF8, true},          {"person.dateTime", LM_TYPE_TIMESTAMP, true},
    {"person.extra", LM_TYPE_UTF8, true},          {"auction.id", LM_TYPE_INT64, true},
    {"auction.itemName", LM_TYPE_UTF8, true},      {"auction.description", LM_TYPE_UTF8, true},
    {"auction.initialBid", LM_TYPE_INT64, true},   {"auction.reserve", LM_TYPE_INT64, true},
    {"auction.dateTime", LM_TYPE_TIMESTAMP, true}, {"auction.expires", LM_TYPE_TIMESTAMP, true},
    {"auction.seller", LM_TYPE_INT64, true},       {"auction.category", LM_TYPE_INT64, true},
    {"auction.extra", LM_TYPE_UTF8, true},         {"bid.auction", LM_TYPE_INT64, true},
    {"bid.bidder", LM_TYPE_INT64, true},           {"bid.price", LM_TYPE_INT64, true},
    {"bid.channel", LM_TYPE_UTF8, true},           {"bid.url", LM_TYPE_UTF8, true},
    {"bid.dateTime", LM_TYPE_TIMESTAMP, true},     {"bid.extra", LM_TYPE_UTF8, true},
    {"dateTime", LM_TYPE_TIMESTAMP, false},
};

/* The kind and field number of each column (KIND_NONE: every kind). */
static const uint8_t COL_KIND[LM_NEXMARK_NCOLS] = {
    KIND_NONE, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, KIND_NONE,
};
static const uint8_t COL_FIELD[LM_NEXMARK_NCOLS] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 0,
};

const lm_field *
lm_nexmark_column_field(lm_nexmark_col c)
{
    return &COLS[c];
}

int
lm_nexmark_columns(const char *const *names, uint32_t n, lm_nexmark_cols *out, lm_error *err)
{
    lm_nexmark_cols cols;

    memset(&cols, 0, sizeof(cols));
    memset(cols.pos, -1, sizeof(cols.pos));
    if (n > LM_NEXMARK_NCOLS) {
        return lm_error_set(err, LM_EINVAL, "nexmark: %u columns requested (at most %d)", n,
                            LM_NEXMARK_NCOLS);
    }
    for (uint32_t i = 0; i < n; i++) {
        int c = -1;
        for (int k = 0; k < LM_NEXMARK_NCOLS && names[i] != NULL; k++) {
            if (strcmp(COLS[k].name, names[i]) == 0) {
                c = k;
                break;
            }
        }
        if (c < 0) {
            return lm_error_set(err, LM_EINVAL, "nexmark: unknown column '%s'",
                                names[i] != NULL ? names[i] : "(null)");
        }
        if (cols.pos[c] >= 0) {
            return lm_error_set(err, LM_EINVAL, "nexmark: column '%s' requested twice", names[i]);
        }
        cols.col[i] = (uint8_t)c;
        cols.pos[c] = (int8_t)i;
        if (COL_KIND[c] != KIND_NONE) {
            cols.kind_fields[COL_KIND[c]] |= 1u << COL_FIELD[c];
        }
    }
    cols.n = n;
    *out = cols;
    return LM_OK;
}

int
lm_nexmark_schema(const lm_nexmark_cols *cols, lm_schema **out, lm_error *err)
{
    lm_field fields[LM_NEXMARK_NCOLS];

    for (uint32_t i = 0; i < cols->n; i++) {
        fields[i] = COLS[cols->col[i]];
    }
    return lm_schema_new(fields, cols->n, out, err);
}

/* --- cursor ---------------------------------------------------------------- */

void
lm_nexmark_cursor_init(lm_nexmark_cursor *c, const lm_nexmark_cfg *cfg, uint32_t subtask,
                       uint32_t parallelism, uint32_t kinds_mask)
{
    memset(c, 0, sizeof(*c));
    c->parallelism = parallelism == 0 ? 1 : parallelism;
    c->subtask = subtask;
    c->kinds_mask = kinds_mask & LM_NEXMARK_KINDS_ALL;
    c->end = cfg->events_num == 0 ? UINT64_MAX : cfg->events_num;
    c->next = subtask < c->parallelism && subtask < c->end ? subtask : c->end;
}

void
lm_nexmark_cursor_seek(lm_nexmark_cursor *c, uint64_t next)
{
    uint64_t p = c->parallelism == 0 ? 1 : c->parallelism;

    if (c->subtask >= p) {
        c->next = c->end;
        return;
    }
    if (next <= c->subtask) {
        c->next = c->subtask < c->end ? c->subtask : c->end;
        return;
    }
    /* round up to subtask + j * p; an ended cursor stays at end */
    uint64_t j = (next - c->subtask) / p + ((next - c->subtask) % p != 0);
    c->next = j > (c->end - c->subtask) / p ? c->end : c->subtask + j * p;
    if (c->next > c->end) {
        c->next = c->end;
    }
}

bool
lm_nexmark_cursor_ended(const lm_nexmark_cursor *c)
{
    return c->next >= c->end;
}

/* The walk: event n with its quotient and remainder by T, by rate (of
 * n * 1000), and by the out-of-order group, advanced by the parallelism
 * with additions only. */
typedef struct walk {
    uint64_t n;      /* current event */
    uint64_t q, r;   /* n / T, n % T */
    uint64_t tq, tr; /* floor(n * 1000 / rate), (n * 1000) % rate */
    uint64_t nk;     /* n % k */
    uint64_t step;   /* parallelism */
    uint64_t sq, sr; /* step / T, step % T */
    uint64_t dq, dr; /* step * 1000 / rate, step * 1000 % rate */
    uint64_t sk;     /* step % k */
} walk;

static void
walk_init(walk *w, const lm_nexmark_gen *g, uint64_t n, uint64_t step)
{
    uint64_t rate = g->cfg.first_rate, k = g->cfg.ooo_group, m = n % rate;

    w->n = n;
    w->q = n / g->t;
    w->r = n % g->t;
    w->tq = (n / rate) * 1000 + m * 1000 / rate;
    w->tr = m * 1000 % rate;
    w->nk = n % k;
    w->step = step;
    w->sq = step / g->t;
    w->sr = step % g->t;
    w->dq = step * 1000 / rate;
    w->dr = step * 1000 % rate;
    w->sk = step % k;
}

static inline void
walk_next(walk *w, uint64_t t, uint64_t rate, uint64_t k)
{
    w->n += w->step;
    w->q += w->sq;
    w->r += w->sr;
    if (w->r >= t) {
        w->r -= t;
        w->q++;
    }
    w->tq += w->dq;
    w->tr += w->dr;
    if (w->tr >= rate) {
        w->tr -= rate;
        w->tq++;
    }
    w->nk += w->sk;
    if (w->nk >= k) {
        w->nk -= k;
    }
}

/* The event time offset (ms after base) at the walk's position. */
static inline uint64_t
walk_time(const walk *w, uint64_t rate, uint64_t k)
{
    if (k == 1) {
        return w->tq;
    }
    /* event m = n + delta takes over: floor((n * 1000 + delta * 1000) / rate) */
    int64_t delta = (int64_t)((w->nk * 953) % k) - (int64_t)w->nk;
    int64_t x = (int64_t)w->tr + delta * 1000;
    int64_t q = x / (int64_t)rate;
    if (x % (int64_t)rate < 0) {
        q--;
    }
    return w->tq + (uint64_t)q;
}

static uint64_t
gcd64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* True when a cursor at residue s (mod T) stepping by step ever meets a
 * selected kind: the residues it meets are those congruent to s modulo
 * gcd(step, T). */
static bool
reachable(const lm_nexmark_gen *g, uint64_t s, uint64_t step, uint32_t mask)
{
    uint64_t gd = gcd64(step % g->t, g->t), lo[3] = {0, g->p, g->pa}, hi[3] = {g->p, g->pa, g->t};

    for (int k = 0; k < 3; k++) {
        if ((mask >> k & 1) && lo[k] < hi[k]) {
            uint64_t r0 = lo[k] + ((s % gd) + gd - lo[k] % gd) % gd;
            if (r0 < hi[k]) {
                return true;
            }
        }
    }
    return false;
}

/* --- columnar fill ------------------------------------------------------- */

#define CHUNK 256

/* One chunk of rows: the events and what the columns need of them. */
typedef struct plan {
    uint32_t count;         /* rows */
    uint32_t kinds;         /* bit k: some row is of kind k */
    uint64_t kn[3][CHUNK];  /* the event numbers of the rows of each kind */
    uint64_t st[CHUNK];     /* scratch: one field's stream starts, for the rows of a kind */
    uint64_t d1[CHUNK];     /* scratch: their first draws */
    uint64_t d2[CHUNK];     /* scratch: their second draws */
    int64_t t_ms[CHUNK];    /* event times (ms since the epoch) */
    int64_t lastp[CHUNK];   /* last person id at n (= the id of a person event) */
    int64_t lasta[CHUNK];   /* last auction id at n (= the id of an auction event) */
    uint8_t kind[CHUNK];    /* kinds */
    uint32_t nkind[3];      /* rows of each kind */
    uint16_t idx[3][CHUNK]; /* the rows of each kind, in order */
} plan;

/* Bytes a chunk may write into a var-width column: the longest value per
 * row, plus slack for the fixed-size copies of extra(). */
static size_t
col_max_bytes(lm_nexmark_col c, uint32_t rows)
{
    size_t per;
    switch (c) {
    case LM_NEXMARK_COL_PERSON_NAME: per = NAME_MAX_LEN; break;
    case LM_NEXMARK_COL_PERSON_EMAIL: per = EMAIL_MAX_LEN; break;
    case LM_NEXMARK_COL_PERSON_CREDIT_CARD: per = CARD_LEN; break;
    case LM_NEXMARK_COL_PERSON_CITY: per = CITY_MAX_LEN; break;
    case LM_NEXMARK_COL_PERSON_STATE: per = STATE_LEN; break;
    case LM_NEXMARK_COL_PERSON_EXTRA: per = EXTRA_P * 6 / 5; break;
    case LM_NEXMARK_COL_AUCTION_ITEM_NAME: per = ITEM_MAX_LEN; break;
    case LM_NEXMARK_COL_AUCTION_DESCRIPTION: per = DESC_MAX_LEN; break;
    case LM_NEXMARK_COL_AUCTION_EXTRA: per = EXTRA_A * 6 / 5; break;
    case LM_NEXMARK_COL_BID_CHANNEL: per = CHAN_MAX_LEN; break;
    case LM_NEXMARK_COL_BID_URL: per = URL_MAX_LEN; break;
    case LM_NEXMARK_COL_BID_EXTRA: per = EXTRA_B * 6 / 5; break;
    default: per = 0; break;
    }
    return per * rows + EXTRA_MAX + STR_SLACK;
}

/* Sets the validity bits of rows [from, from + n) */
static void
valid_range(uint8_t *v, uint32_t from, uint32_t n)
{
    uint32_t r = from, e = from + n;
    while (r < e && (r & 7) != 0) {
        v[r >> 3] |= (uint8_t)(1u << (r & 7));
        r++;
    }
    if (e - r >= 8) {
        memset(v + (r >> 3), 0xff, (e - r) >> 3);
        r += (e - r) & ~7u;
    }
    while (r < e) {
        v[r >> 3] |= (uint8_t)(1u << (r & 7));
        r++;
    }
}

/* Clears the validity bits of rows [from, from + n) */
static void
invalid_range(uint8_t *v, uint32_t from, uint32_t n)
{
    uint32_t r = from, e = from + n;
    while (r < e && (r & 7) != 0) {
        v[r >> 3] &= (uint8_t) ~(1u << (r & 7));
        r++;
    }
    if (e - r >= 8) {
        memset(v + (r >> 3), 0, (e - r) >> 3);
        r += (e - r) & ~7u;
    }
    while (r < e) {
        v[r >> 3] &= (uint8_t) ~(1u << (r & 7));
        r++;
    }
}

#define SET_VALID(col, row) ((col)->validity[(row) >> 3] |= (uint8_t)(1u << ((row)&7)))

/* Computes, for the rows of kind k, the start of field f's stream and its
 * first two draws into the plan's scratch arrays. This is where most of
 * the multiplications are, in a loop without branches: where the compiler
 * can (GCC on x86-64) it is also built for AVX2 and AVX-512 machines and
 * the best version is picked once at load time (no per-row dispatch). Not
 * under the sanitizers: the picking runs before their runtime starts. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) &&       \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define VEC_CLONES                                                                                 \
    __attribute__((optimize("O3"), target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VEC_CLONES
#endif

VEC_CLONES static void
stream_starts(const uint64_t *restrict n, uint32_t cnt, uint64_t seed, unsigned f,
              uint64_t *restrict st, uint64_t *restrict d1, uint64_t *restrict d2)
{
    for (uint32_t i = 0; i < cnt; i++) {
        uint64_t s = mix(seed ^ mix(n[i] * 16 + f));
        st[i] = s;
        d1[i] = finalize(s + GOLDEN);
        d2[i] = finalize(s + 2 * GOLDEN);
    }
}

/* price_fast of the draws d[0..m) into out (-1: call price_slow). */
VEC_CLONES static void
prices_fast(const uint64_t *restrict d, uint32_t m, int64_t *restrict out)
{
    for (uint32_t i = 0; i < m; i++) {
        out[i] = price_fast(d[i]);
    }
}

/* A fixed-width column of kind K and field F: `v[r] = EXPR` for the rows r
 * of kind K, with `st`, `d1`, `d2` (the field's stream start and first
 * draws) and `r` in scope, after the statement PRE over the whole chunk;
 * nulls elsewhere, made in bulk first. */
#define FIXED_LOOP(K, F, PRE, EXPR)                                                                \
    do {                                                                                           \
        const uint16_t *ix = pl->idx[K];                                                           \
        uint32_t m = pl->nkind[K];                                                                 \
        stream_starts(pl->kn[K], m, seed, (F), pl->st, pl->d1, pl->d2);                            \
        PRE;                                                                                       \
        if (m < cnt) {                                                                             \
            memset(v, 0, cnt * sizeof(*v));                                                        \
            invalid_range(col->validity, row0, cnt);                                               \
            col->null_count += cnt - m;                                                            \
            for (uint32_t i = 0; i < m; i++) {                                                     \
                SET_VALID(col, row0 + ix[i]);                                                      \
            }                                                                                      \
        }                                                                                          \
        for (uint32_t i = 0; i < m; i++) {                                                         \
            uint32_t r = ix[i];                                                                    \
            uint64_t st = pl->st[i], d1 = pl->d1[i], d2 = pl->d2[i];                               \
            (void)st, (void)d1, (void)d2;                                                          \
            v[r] = (EXPR);                                                                         \
        }                                                                                          \
    } while (0)

/* A fixed-width column of kind K that needs no random draws. */
#define PLAIN_LOOP(K, EXPR)                                                                        \
    do {                                                                                           \
        const uint16_t *ix = pl->idx[K];                                                           \
        uint32_t m = pl->nkind[K];                                                                 \
        if (m < cnt) {                                                                             \
            memset(v, 0, cnt * sizeof(*v));                                                        \
            invalid_range(col->validity, row0, cnt);                                               \
            col->null_count += cnt - m;                                                            \
            for (uint32_t i = 0; i < m; i++) {                                                     \
                SET_VALID(col, row0 + ix[i]);                                                      \
            }                                                                                      \
        }                                                                                          \
        for (uint32_t i = 0; i < m; i++) {                                                         \
            uint32_t r = ix[i];                                                                    \
            v[r] = (EXPR);                                                                         \
        }                                                                                          \
    } while (0)

/* A var-width column of kind K and field F: WRITE writes a value at `d`
 * and gives its length (with `st`, `d1`, `d2` in scope); nulls (empty
 * values) elsewhere, the offsets of runs of nulls in tight loops. */
#define VAR_LOOP(K, F, WRITE)                                                                      \
    do {                                                                                           \
        const uint16_t *ix = pl->idx[K];                                                           \
        uint32_t m = pl->nkind[K], j = 0;                                                          \
        stream_starts(pl->kn[K], m, seed, (F), pl->st, pl->d1, pl->d2);                            \
        if (m < cnt) {                                                                             \
            invalid_range(col->validity, row0, cnt);                                               \
            col->null_count += cnt - m;                                                            \
            for (uint32_t i = 0; i < m; i++) {                                                     \
                SET_VALID(col, row0 + ix[i]);                                                      \
            }                                                                                      \
        }                                                                                          \
        for (uint32_t i = 0; i < m; i++) {                                                         \
            uint32_t r = ix[i];                                                                    \
            uint64_t st = pl->st[i], d1 = pl->d1[i], d2 = pl->d2[i];                               \
            char *d = data + len;                                                                  \
            (void)st, (void)d1, (void)d2;                                                          \
            for (; j < r; j++) {                                                                   \
                off[j + 1] = (int32_t)len;                                                         \
            }                                                                                      \
            len += (WRITE);                                                                        \
            off[r + 1] = (int32_t)len;                                                             \
            j = r + 1;                                                                             \
        }                                                                                          \
        for (; j < cnt; j++) {                                                                     \
            off[j + 1] = (int32_t)len;                                                             \
        }                                                                                          \
    } while (0)

/* The PRE and EXPR of price columns: fast prices of the whole chunk (into
 * the st scratch, which prices do not need), pow for the rare rest. */
#define NOTHING ((void)0)
#define PRICES  prices_fast(pl->d1, m, (int64_t *)pl->st)
#define PRICE   ((int64_t)st >= 0 ? (int64_t)st : price_slow(d1))

/* ms to the batch's microseconds (wrapping rather than undefined on
 * absurd times). */
static inline int64_t
us(int64_t ms)
{
    return (int64_t)((uint64_t)ms * 1000);
}

static void
fill_fixed(const lm_nexmark_gen *g, plan *pl, lm_nexmark_col c, lm_column *col, uint32_t row0)
{
    int64_t *v = (int64_t *)col->values + row0;
    uint32_t cnt = pl->count;
    uint64_t seed = g->cfg.seed;

    switch (c) {
    case LM_NEXMARK_COL_EVENT_TYPE:
        for (uint32_t r = 0; r < cnt; r++) {
            v[r] = pl->kind[r];
        }
        break;
    case LM_NEXMARK_COL_DATETIME:
        for (uint32_t r = 0; r < cnt; r++) {
            v[r] = us(pl->t_ms[r]);
        }
        break;
    case LM_NEXMARK_COL_PERSON_ID: PLAIN_LOOP(0, pl->lastp[r]); break;
    case LM_NEXMARK_COL_PERSON_DATETIME: PLAIN_LOOP(0, us(pl->t_ms[r])); break;
    case LM_NEXMARK_COL_AUCTION_ID: PLAIN_LOOP(1, pl->lasta[r]); break;
    case LM_NEXMARK_COL_AUCTION_INITIAL_BID: FIXED_LOOP(1, A_INITIAL, PRICES, PRICE); break;
    case LM_NEXMARK_COL_AUCTION_RESERVE:
        /* initialBid + price(): two streams, summed in place */
        FIXED_LOOP(1, A_INITIAL, PRICES, PRICE);
        {
            uint32_t m = pl->nkind[1];
            stream_starts(pl->kn[1], m, seed, A_RESERVE, pl->st, pl->d1, pl->d2);
            PRICES;
            for (uint32_t i = 0; i < m; i++) {
                uint64_t st = pl->st[i], d1 = pl->d1[i];
                v[pl->idx[1][i]] += PRICE;
            }
        }
        break;
    case LM_NEXMARK_COL_AUCTION_DATETIME: PLAIN_LOOP(1, us(pl->t_ms[r])); break;
    case LM_NEXMARK_COL_AUCTION_EXPIRES:
        FIXED_LOOP(1, A_EXPIRES, NOTHING, us(expires_of(d1, pl->t_ms[r], g->expire_span)));
        break;
    case LM_NEXMARK_COL_AUCTION_SELLER:
        FIXED_LOOP(1, A_SELLER, NOTHING, seller_of(d1, d2, pl->lastp[r]));
        break;
    case LM_NEXMARK_COL_AUCTION_CATEGORY:
        FIXED_LOOP(1, A_CATEGORY, NOTHING, category_of(d1));
        break;
    case LM_NEXMARK_COL_BID_AUCTION:
        FIXED_LOOP(2, B_AUCTION, NOTHING, bid_auction_of(d1, d2, pl->lasta[r]));
        break;
    case LM_NEXMARK_COL_BID_BIDDER:
        FIXED_LOOP(2, B_BIDDER, NOTHING, bidder_of(d1, d2, pl->lastp[r]));
        break;
    case LM_NEXMARK_COL_BID_PRICE: FIXED_LOOP(2, B_PRICE, PRICES, PRICE); break;
    case LM_NEXMARK_COL_BID_DATETIME: PLAIN_LOOP(2, us(pl->t_ms[r])); break;
    default: break;
    }
}

/* extra(avg) of kind `which` at d, copied with a fixed-size copy longer
 * than its longest length (the pool and the column have the room). */
static inline uint32_t
write_extra(const lm_nexmark_gen *g, int which, uint64_t d1, uint64_t d2, char *d)
{
    uint32_t l;
    switch (which) {
    case 0: memcpy(d, extra_of(g, 0, EXTRA_P, d1, d2, &l), 128); break;
    case 1: memcpy(d, extra_of(g, 1, EXTRA_A, d1, d2, &l), EXTRA_MAX); break;
    default: memcpy(d, extra_of(g, 2, EXTRA_B, d1, d2, &l), 96); break;
    }
    return l;
}

static void
fill_var(const lm_nexmark_gen *g, plan *pl, lm_nexmark_col c, lm_column *col, uint32_t row0)
{
    int32_t *off = (int32_t *)col->values + row0;
    char *data = (char *)col->data;
    uint32_t cnt = pl->count, len = col->data_len;
    uint64_t seed = g->cfg.seed;

    switch (c) {
    case LM_NEXMARK_COL_PERSON_NAME: VAR_LOOP(0, P_NAME, name_of(d1, d2, d)); break;
    case LM_NEXMARK_COL_PERSON_EMAIL: VAR_LOOP(0, P_EMAIL, email_of(st, d)); break;
    case LM_NEXMARK_COL_PERSON_CREDIT_CARD: VAR_LOOP(0, P_CARD, card_of(st, d)); break;
    case LM_NEXMARK_COL_PERSON_CITY: VAR_LOOP(0, P_CITY, city_of(d1, d)); break;
    case LM_NEXMARK_COL_PERSON_STATE: VAR_LOOP(0, P_STATE, state_of(d1, d)); break;
    case LM_NEXMARK_COL_PERSON_EXTRA: VAR_LOOP(0, P_EXTRA, write_extra(g, 0, d1, d2, d)); break;
    case LM_NEXMARK_COL_AUCTION_ITEM_NAME: VAR_LOOP(1, A_ITEM, str_of(st, 20, d)); break;
    case LM_NEXMARK_COL_AUCTION_DESCRIPTION: VAR_LOOP(1, A_DESC, str_of(st, 100, d)); break;
    case LM_NEXMARK_COL_AUCTION_EXTRA: VAR_LOOP(1, A_EXTRA, write_extra(g, 1, d1, d2, d)); break;
    case LM_NEXMARK_COL_BID_CHANNEL: VAR_LOOP(2, B_CHANNEL, channel_of(d1, d2, d)); break;
    case LM_NEXMARK_COL_BID_URL: VAR_LOOP(2, B_URL_STREAM, url_of(st, d1, d2, d)); break;
    case LM_NEXMARK_COL_BID_EXTRA: VAR_LOOP(2, B_EXTRA, write_extra(g, 2, d1, d2, d)); break;
    default: break;
    }
    col->data_len = len;
    col->vcount = row0 + cnt;
}

/* Plans up to want rows from the walk, stopping at end. Returns the
 * events walked past. */
static uint64_t
plan_chunk(const lm_nexmark_gen *g, walk *w, uint64_t end, uint32_t mask, uint32_t want,
           bool need_time, bool need_ids, plan *pl)
{
    const uint64_t t = g->t, p = g->p, a = g->a, pa = g->pa;
    const uint64_t rate = g->cfg.first_rate, k = g->cfg.ooo_group;
    const int64_t base = g->cfg.base_time_ms;
    uint64_t walked = 0;
    uint32_t cnt = 0, kinds = 0, nk[3] = {0, 0, 0};

    while (cnt < want && w->n < end) {
        uint32_t kind = (uint32_t)kind_of_r(w->r, p, pa);
        if (mask >> kind & 1) {
            pl->kn[kind][nk[kind]] = w->n;
            pl->kind[cnt] = (uint8_t)kind;
            if (need_ids) {
                pl->lastp[cnt] = last_id(pb_qr(w->q, w->r + 1, p));
                pl->lasta[cnt] = last_id(ab_qr(w->q, w->r + 1, p, a));
            }
            if (need_time) {
                pl->t_ms[cnt] = (int64_t)((uint64_t)base + walk_time(w, rate, k));
            }
            kinds |= 1u << kind;
            pl->idx[kind][nk[kind]++] = (uint16_t)cnt;
            cnt++;
        }
        walk_next(w, t, rate, k);
        walked++;
        if (w->n < w->step) {
            w->n = end; /* wrapped past 2^64 */
            break;
        }
    }
    pl->count = cnt;
    pl->kinds = kinds;
    memcpy(pl->nkind, nk, sizeof(nk));
    return walked;
}

static bool
col_needs_time(lm_nexmark_col c)
{
    return c == LM_NEXMARK_COL_DATETIME || c == LM_NEXMARK_COL_PERSON_DATETIME ||
           c == LM_NEXMARK_COL_AUCTION_DATETIME || c == LM_NEXMARK_COL_AUCTION_EXPIRES ||
           c == LM_NEXMARK_COL_BID_DATETIME;
}

static bool
col_needs_ids(lm_nexmark_col c)
{
    return c == LM_NEXMARK_COL_PERSON_ID || c == LM_NEXMARK_COL_AUCTION_ID ||
           c == LM_NEXMARK_COL_AUCTION_SELLER || c == LM_NEXMARK_COL_BID_AUCTION ||
           c == LM_NEXMARK_COL_BID_BIDDER;
}

int
lm_nexmark_fill(const lm_nexmark_gen *g, const lm_nexmark_cols *cols, lm_nexmark_cursor *c,
                lm_batch *b, uint32_t max_rows, uint64_t *events_consumed, bool *ended)
{
    const lm_schema *s = b->schema;
    uint64_t consumed = 0, step = c->parallelism == 0 ? 1 : c->parallelism, left;
    uint32_t rows = 0;
    bool need_time = false, need_ids = false;
    plan *pl = NULL;
    walk w;
    int rv = LM_OK;

    if (b->readonly) {
        rv = LM_ESTATE;
        goto out;
    }
    if (s->nfields != cols->n) {
        rv = LM_EINVAL;
        goto out;
    }
    for (uint32_t i = 0; i < cols->n; i++) {
        const lm_field *f = &COLS[cols->col[i]];
        if (s->fields[i].type != f->type || s->fields[i].nullable != f->nullable ||
            strcmp(s->fields[i].name, f->name) != 0) {
            rv = LM_EINVAL;
            goto out;
        }
        need_time |= col_needs_time((lm_nexmark_col)cols->col[i]);
        need_ids |= col_needs_ids((lm_nexmark_col)cols->col[i]);
    }
    if (c->next >= c->end || max_rows == 0) {
        goto out;
    }
    /* this subtask's events left (all of them when unbounded) */
    left = (c->end - c->next) / step + ((c->end - c->next) % step != 0);
    if (!reachable(g, c->next % g->t, step, c->kinds_mask)) {
        /* no selected kind ever comes: move on without rows, by at most
         * max_rows * T events (< 2^31) when unbounded */
        uint64_t cap = g->t > (1ull << 31) / max_rows ? 1ull << 31 : (uint64_t)max_rows * g->t;
        if (c->end == UINT64_MAX && left > cap) {
            left = cap;
        }
        c->next = left * step >= c->end - c->next ? c->end : c->next + left * step;
        consumed = left;
        goto out;
    }
    if (max_rows > left) {
        max_rows = (uint32_t)left;
    }
    if (b->nrows + (uint64_t)max_rows > UINT32_MAX - 1) {
        rv = LM_ETOOBIG;
        goto out;
    }
    if ((rv = lm_batch_reserve(b, b->nrows + max_rows)) != LM_OK) {
        goto out;
    }
    if ((pl = malloc(sizeof(*pl))) == NULL) {
        rv = LM_ENOMEM;
        goto out;
    }
    walk_init(&w, g, c->next, step);
    while (rows < max_rows && c->next < c->end) {
        uint32_t want = max_rows - rows < CHUNK ? max_rows - rows : CHUNK;
        uint64_t walked = plan_chunk(g, &w, c->end, c->kinds_mask, want, need_time, need_ids, pl);
        uint32_t row0 = b->nrows;

        /* allocate everything first: a failure leaves the batch and cursor
         * at the previous chunk */
        for (uint32_t i = 0; i < cols->n && pl->count > 0; i++) {
            lm_nexmark_col cc = (lm_nexmark_col)cols->col[i];
            uint8_t kind = COL_KIND[cc];
            if (kind != KIND_NONE && (pl->kinds & ~(1u << kind)) != 0 &&
                lm_batch_reserve_nulls(b, i) != LM_OK) {
                rv = LM_ENOMEM;
            } else if (lm_type_is_varwidth(COLS[cc].type)) {
                rv = lm_batch_reserve_bytes(
                    b, i, col_max_bytes(cc, kind < 3 ? pl->nkind[kind] : pl->count));
            }
            if (rv != LM_OK) {
                goto out;
            }
        }
        for (uint32_t i = 0; i < cols->n && pl->count > 0; i++) {
            lm_nexmark_col cc = (lm_nexmark_col)cols->col[i];
            lm_column *col = &b->cols[i];
            if (col->validity != NULL) {
                valid_range(col->validity, row0, pl->count);
            }
            if (lm_type_is_varwidth(COLS[cc].type)) {
                fill_var(g, pl, cc, col, row0);
            } else {
                fill_fixed(g, pl, cc, col, row0);
            }
        }
        b->nrows += pl->count;
        rows += pl->count;
        consumed += walked;
        c->next = w.n < c->end ? w.n : c->end;
    }
out:
    free(pl);
    if (events_consumed != NULL) {
        *events_consumed = consumed;
    }
    if (ended != NULL) {
        *ended = c->next >= c->end;
    }
    return rv;
}

/* --- dump ------------------------------------------------------------------ */

size_t
lm_nexmark_csv_quote(const char *s, size_t len, char *out)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') {
            out[o++] = '"';
        }
        out[o++] = s[i];
    }
    out[o++] = '"';
    return o;
}

size_t
lm_nexmark_format_time(int64_t ms, char *out)
{
    char buf[40];
    size_t n = lm_time_format(ms * 1000, 3, buf);
    memcpy(out, buf, n + 1);
    return n;
}

/* An output file with its buffer. */
typedef struct outf {
    FILE *f;
    char *buf;
    size_t len;
    int64_t sec; /* the second whose text is cached in stamp */
    char stamp[32];
    size_t stamp_len; /* "YYYY-MM-DD HH:MM:SS." */
} outf;

#define OUT_BUF        (1u << 20)
#define LINE_MAX_BYTES 2048

static int
outf_flush(outf *o)
{
    if (o->len > 0 && fwrite(o->buf, 1, o->len, o->f) != o->len) {
        return -1;
    }
    o->len = 0;
    return 0;
}

static inline char *
put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return p + put_dec(p, 0 - (uint64_t)v);
    }
    return p + put_dec(p, (uint64_t)v);
}

static inline char *
put_time(outf *o, char *p, int64_t ms)
{
    int64_t sec = ms / 1000, r = ms % 1000;
    if (r < 0) {
        r += 1000;
        sec--;
    }
    if (sec != o->sec || o->stamp_len == 0) {
        char tmp[32];
        size_t l = lm_nexmark_format_time(sec * 1000, tmp);
        o->stamp_len = l - 3;
        memcpy(o->stamp, tmp, o->stamp_len);
        o->sec = sec;
    }
    memcpy(p, o->stamp, o->stamp_len);
    p += o->stamp_len;
    p[0] = (char)('0' + r / 100);
    p[1] = (char)('0' + r / 10 % 10);
    p[2] = (char)('0' + r % 10);
    return p + 3;
}

static inline char *
put_q(char *p, const char *s, size_t len)
{
    return p + lm_nexmark_csv_quote(s, len, p);
}

int
lm_nexmark_dump(const lm_nexmark_cfg *cfg, const char *dir, lm_error *err)
{
    static const char *const names[3] = {"person.csv", "auction.csv", "bid.csv"};
    static const char *const headers[3] = {
        "id,name,emailAddress,creditCard,city,state,dateTime,extra\n",
        "id,itemName,description,initialBid,reserve,dateTime,expires,seller,category,extra\n",
        "auction,bidder,price,channel,url,dateTime,extra\n",
    };
    lm_nexmark_gen *g = NULL;
    outf o[3];
    char path[4096];
    int rv, k;

    memset(o, 0, sizeof(o));
    if ((rv = lm_nexmark_cfg_check(cfg, err)) != LM_OK) {
        return rv;
    }
    if (cfg->events_num == 0) {
        return lm_error_set(err, LM_ECONFIG,
                            "nexmark: cannot dump an unbounded stream "
                            "(events.num is 0)");
    }
    if ((rv = lm_nexmark_gen_new(cfg, &g, err)) != LM_OK) {
        return rv;
    }
    for (k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
        if ((o[k].buf = malloc(OUT_BUF)) == NULL) {
            rv = lm_error_set(err, LM_ENOMEM, "nexmark: out of memory for the dump");
            goto fail;
        }
        if ((o[k].f = fopen(path, "w")) == NULL) {
            rv = lm_error_set(err, LM_EIO, "nexmark: cannot create %s: %s", path, strerror(errno));
            goto fail;
        }
        o[k].len = strlen(headers[k]);
        memcpy(o[k].buf, headers[k], o[k].len);
    }
    for (uint64_t n = 0; n < cfg->events_num; n++) {
        lm_nexmark_kind kind = lm_nexmark_kind_of(cfg, n);
        outf *f = &o[kind];
        char *p0, *p;

        if (f->len + LINE_MAX_BYTES > OUT_BUF && outf_flush(f) != 0) {
            k = (int)kind;
            goto io_fail;
        }
        p0 = p = f->buf + f->len;
        if (kind == LM_NEXMARK_PERSON) {
            lm_nexmark_person e;
            lm_nexmark_person_at(g, n, &e);
            p = put_i64(p, e.id);
            *p++ = ',';
            p = put_q(p, e.name, strlen(e.name));
            *p++ = ',';
            p = put_q(p, e.email, strlen(e.email));
            *p++ = ',';
            p = put_q(p, e.credit_card, strlen(e.credit_card));
            *p++ = ',';
            p = put_q(p, e.city, strlen(e.city));
            *p++ = ',';
            p = put_q(p, e.state, strlen(e.state));
            *p++ = ',';
            p = put_time(f, p, e.date_time_ms);
            *p++ = ',';
            p = put_q(p, e.extra, e.extra_len);
        } else if (kind == LM_NEXMARK_AUCTION) {
            lm_nexmark_auction e;
            lm_nexmark_auction_at(g, n, &e);
            p = put_i64(p, e.id);
            *p++ = ',';
            p = put_q(p, e.item_name, strlen(e.item_name));
            *p++ = ',';
            p = put_q(p, e.description, strlen(e.description));
            *p++ = ',';
            p = put_i64(p, e.initial_bid);
            *p++ = ',';
            p = put_i64(p, e.reserve);
            *p++ = ',';
            p = put_time(f, p, e.date_time_ms);
            *p++ = ',';
            p = put_time(f, p, e.expires_ms);
            *p++ = ',';
            p = put_i64(p, e.seller);
            *p++ = ',';
            p = put_i64(p, e.category);
            *p++ = ',';
            p = put_q(p, e.extra, e.extra_len);
        } else {
            lm_nexmark_bid e;
            lm_nexmark_bid_at(g, n, &e);
            p = put_i64(p, e.auction);
            *p++ = ',';
            p = put_i64(p, e.bidder);
            *p++ = ',';
            p = put_i64(p, e.price);
            *p++ = ',';
            p = put_q(p, e.channel, strlen(e.channel));
            *p++ = ',';
            p = put_q(p, e.url, strlen(e.url));
            *p++ = ',';
            p = put_time(f, p, e.date_time_ms);
            *p++ = ',';
            p = put_q(p, e.extra, e.extra_len);
        }
        *p++ = '\n';
        f->len += (size_t)(p - p0);
    }
    for (k = 0; k < 3; k++) {
        if (outf_flush(&o[k]) != 0) {
            goto io_fail;
        }
        int crv = fclose(o[k].f);
        o[k].f = NULL;
        if (crv != 0) {
            goto io_fail;
        }
    }
    rv = LM_OK;
    goto done;
io_fail:
    rv = lm_error_set(err, LM_EIO, "nexmark: cannot write %s/%s: %s", dir, names[k],
                      strerror(errno));
fail:
done:
    for (k = 0; k < 3; k++) {
        if (o[k].f != NULL) {
            fclose(o[k].f);
        }
        free(o[k].buf);
    }
    lm_nexmark_gen_free(g);
    return rv;
}
