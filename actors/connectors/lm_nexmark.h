/*
 * lm_nexmark.h: the Nexmark event generator behind the `nexmark` connector.
 *
 * Implements /work/shared/nexmark/GENERATOR.md exactly: every event is a
 * pure function of (seed, n), n = 0, 1, 2, ... the event number, so that
 * parallel source subtasks produce disjoint parts of one stream, a source
 * can resume from a plain event number, and a batch engine can compute a
 * query's expected answer from a dump of the same events.
 *
 * Four layers:
 *  - the configuration (the connector's WITH options) and its validation;
 *  - pure functions of (cfg, n): event kind, ids, timestamps, and whole
 *    Person/Auction/Bid events (these need the generator object, which
 *    holds the per-seed 2^20-letter pool the `extra` fields slice);
 *  - columnar generation for the source operator: a cursor over one
 *    subtask's events fills an lm_batch with only the requested columns of
 *    only the requested event kinds, writing the column buffers directly;
 *  - a CSV dump of all events for the batch oracle (DuckDB).
 *
 * Thread safety: a generator object is immutable after lm_nexmark_gen_new,
 * so any number of threads may use one generator at once. A cursor belongs
 * to one caller.
 */
#ifndef LM_NEXMARK_H
#define LM_NEXMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_batch.h"
#include "lm_err.h"

/* --- configuration ------------------------------------------------------- */

typedef struct lm_nexmark_cfg {
    uint64_t events_num;         /* events.num: events, then end of stream; 0 = unbounded */
    uint64_t first_rate;         /* first-event.rate: events per second of event time, >= 1 */
    uint64_t next_rate;          /* next-event.rate: accepted for compatibility, unused */
    uint64_t emit_rate;          /* emit.rate: wall-clock events/s cap, 0 = none (the source
                                    applies it; the generator ignores it) */
    uint32_t person_proportion;  /* person.proportion */
    uint32_t auction_proportion; /* auction.proportion */
    uint32_t bid_proportion;     /* bid.proportion; the three sum to > 0 */
    uint64_t seed;               /* seed (a negative value is taken modulo 2^64) */
    int64_t base_time_ms;        /* base-time: ms since the epoch of event 0 */
    uint64_t ooo_group;          /* out-of-order.group: k >= 1; 1 = in order */
} lm_nexmark_cfg;

/* Bounds that keep every computation exact in 64 bits. */
#define LM_NEXMARK_RATE_MAX      1000000000000ull /* events/s */
#define LM_NEXMARK_OOO_GROUP_MAX 1000000000ull
#define LM_NEXMARK_BASE_TIME_MAX 4000000000000000ll /* |base-time| in ms (year ~128,000) */

/* Sets cfg to the defaults of GENERATOR.md: unbounded, rate 10000 (next
 * rate the same), no emit cap, proportions 1/3/46, seed 0, base time
 * 1436918400000 (2015-07-15T00:00:00Z), out-of-order group 1. */
void lm_nexmark_cfg_defaults(lm_nexmark_cfg *cfg);

/* Sets one option by its name in the connector's WITH clause:
 * "events.num", "first-event.rate", "next-event.rate", "emit.rate",
 * "person.proportion", "auction.proportion", "bid.proportion", "seed",
 * "base-time", "out-of-order.group". Values are decimal integers
 * (optionally surrounded by spaces; "seed" and "base-time" may be
 * negative, "seed" may also be 0x-hexadecimal). Setting first-event.rate
 * also sets next-event.rate, as "= first" in the table; a later
 * next-event.rate overrides it.
 * Returns LM_OK, or LM_ECONFIG with err naming the option and the value
 * when the option is unknown, the value is not an integer or out of range
 * (rates 1..LM_NEXMARK_RATE_MAX, emit.rate 0..that, proportions
 * 0..UINT32_MAX, out-of-order.group 1..LM_NEXMARK_OOO_GROUP_MAX,
 * |base-time| <= LM_NEXMARK_BASE_TIME_MAX), or when a proportion would
 * make all three proportions 0. On error cfg is unchanged. */
int lm_nexmark_cfg_set(lm_nexmark_cfg *cfg, const char *option, const char *value, lm_error *err);

/* The name of option i (0, 1, ...) that lm_nexmark_cfg_set takes, or NULL
 * past the last. */
const char *lm_nexmark_option(uint32_t i);

/* Checks a whole configuration (one built field by field rather than with
 * lm_nexmark_cfg_set). Returns LM_OK or LM_ECONFIG naming the option. */
int lm_nexmark_cfg_check(const lm_nexmark_cfg *cfg, lm_error *err);

/* --- pure functions of (cfg, n) -------------------------------------------- */

typedef enum lm_nexmark_kind {
    LM_NEXMARK_PERSON = 0,
    LM_NEXMARK_AUCTION = 1,
    LM_NEXMARK_BID = 2,
} lm_nexmark_kind;

#define LM_NEXMARK_KINDS_ALL 0x7u /* kinds mask: bit k for kind k */

/* The kind of event n. cfg must pass lm_nexmark_cfg_check (as must every
 * cfg given to the functions below). */
lm_nexmark_kind lm_nexmark_kind_of(const lm_nexmark_cfg *cfg, uint64_t n);
/* pb(n), ab(n): persons and auctions among events 0..n-1. */
uint64_t lm_nexmark_persons_before(const lm_nexmark_cfg *cfg, uint64_t n);
uint64_t lm_nexmark_auctions_before(const lm_nexmark_cfg *cfg, uint64_t n);
/* The last person (auction) id at n: 1000 + max(pb(n+1) - 1, 0). */
int64_t lm_nexmark_last_person(const lm_nexmark_cfg *cfg, uint64_t n);
int64_t lm_nexmark_last_auction(const lm_nexmark_cfg *cfg, uint64_t n);
/* The timestamp of event n in ms since the epoch, out-of-order groups
 * applied: base_time + floor(m * 1000 / rate) with m = n when k = 1, else
 * m = (n / k) * k + (n * 953) % k. */
int64_t lm_nexmark_time_ms(const lm_nexmark_cfg *cfg, uint64_t n);

/* The generator: a configuration and its seed's 2^20-letter pool. */
typedef struct lm_nexmark_gen lm_nexmark_gen;

/* Creates a generator for a copy of cfg. Returns LM_OK, LM_ECONFIG (see
 * lm_nexmark_cfg_check) or LM_ENOMEM. The caller owns *out. */
int lm_nexmark_gen_new(const lm_nexmark_cfg *cfg, lm_nexmark_gen **out, lm_error *err);
void lm_nexmark_gen_free(lm_nexmark_gen *g); /* NULL is ignored */
/* The generator's configuration (borrowed, lives as long as g). */
const lm_nexmark_cfg *lm_nexmark_gen_cfg(const lm_nexmark_gen *g);

/* Whole events. Strings are NUL-terminated in the struct except `extra`,
 * which points into g's pool (valid as long as g) and has extra_len bytes.
 * city, state are static strings. */
typedef struct lm_nexmark_person {
    int64_t id;
    char name[16];        /* FIRST + " " + LAST */
    char email[16];       /* str(7) "@" str(5) ".com" */
    char credit_card[20]; /* "dddd dddd dddd dddd" */
    const char *city;
    const char *state;
    int64_t date_time_ms;
    const char *extra;
    uint32_t extra_len;
} lm_nexmark_person;

typedef struct lm_nexmark_auction {
    int64_t id;
    char item_name[20];
    char description[100];
    int64_t initial_bid;
    int64_t reserve;
    int64_t date_time_ms;
    int64_t expires_ms;
    int64_t seller;
    int64_t category;
    const char *extra;
    uint32_t extra_len;
} lm_nexmark_auction;

typedef struct lm_nexmark_bid {
    int64_t auction;
    int64_t bidder;
    int64_t price;
    char channel[16];
    char url[80];
    int64_t date_time_ms;
    const char *extra;
    uint32_t extra_len;
} lm_nexmark_bid;

/* Event n as a Person / Auction / Bid. Returns LM_OK, or LM_EINVAL (out
 * untouched) when event n is of another kind. */
int lm_nexmark_person_at(const lm_nexmark_gen *g, uint64_t n, lm_nexmark_person *out);
int lm_nexmark_auction_at(const lm_nexmark_gen *g, uint64_t n, lm_nexmark_auction *out);
int lm_nexmark_bid_at(const lm_nexmark_gen *g, uint64_t n, lm_nexmark_bid *out);

/* --- columnar generation ------------------------------------------------- */

/* The flattened columns of the standard DDL, in its order. */
typedef enum lm_nexmark_col {
    LM_NEXMARK_COL_EVENT_TYPE = 0, /* "event_type" int64 0/1/2, never null */
    LM_NEXMARK_COL_PERSON_ID,      /* "person.id" */
    LM_NEXMARK_COL_PERSON_NAME,
    LM_NEXMARK_COL_PERSON_EMAIL,
    LM_NEXMARK_COL_PERSON_CREDIT_CARD,
    LM_NEXMARK_COL_PERSON_CITY,
    LM_NEXMARK_COL_PERSON_STATE,
    LM_NEXMARK_COL_PERSON_DATETIME,
    LM_NEXMARK_COL_PERSON_EXTRA,
    LM_NEXMARK_COL_AUCTION_ID, /* "auction.id" */
    LM_NEXMARK_COL_AUCTION_ITEM_NAME,
    LM_NEXMARK_COL_AUCTION_DESCRIPTION,
    LM_NEXMARK_COL_AUCTION_INITIAL_BID,
    LM_NEXMARK_COL_AUCTION_RESERVE,
    LM_NEXMARK_COL_AUCTION_DATETIME,
    LM_NEXMARK_COL_AUCTION_EXPIRES,
    LM_NEXMARK_COL_AUCTION_SELLER,
    LM_NEXMARK_COL_AUCTION_CATEGORY,
    LM_NEXMARK_COL_AUCTION_EXTRA,
    LM_NEXMARK_COL_BID_AUCTION, /* "bid.auction" */
    LM_NEXMARK_COL_BID_BIDDER,
    LM_NEXMARK_COL_BID_PRICE,
    LM_NEXMARK_COL_BID_CHANNEL,
    LM_NEXMARK_COL_BID_URL,
    LM_NEXMARK_COL_BID_DATETIME,
    LM_NEXMARK_COL_BID_EXTRA,
    LM_NEXMARK_COL_DATETIME, /* "dateTime": the event's time, never null */
    LM_NEXMARK_NCOLS
} lm_nexmark_col;

/* The field of column c: its name ("bid.price"), type and nullability.
 * c must be < LM_NEXMARK_NCOLS. */
const lm_field *lm_nexmark_column_field(lm_nexmark_col c);

/* A resolved list of requested columns (plain data, may be copied). */
typedef struct lm_nexmark_cols {
    uint32_t n;                    /* requested columns */
    uint8_t col[LM_NEXMARK_NCOLS]; /* column of output position i < n */
    int8_t pos[LM_NEXMARK_NCOLS];  /* output position of each column, or -1 */
    uint32_t kind_fields[3];       /* bit f: field f of kind k is requested */
} lm_nexmark_cols;

/* Resolves column names (any subset, any order; n may be 0) against the
 * list above. Returns LM_OK, or LM_EINVAL with err naming the column when
 * a name is unknown or repeated, or when n > LM_NEXMARK_NCOLS. */
int lm_nexmark_columns(const char *const *names, uint32_t n, lm_nexmark_cols *out, lm_error *err);

/* A schema of the requested columns in their order (name, type,
 * nullable): the schema the batches given to lm_nexmark_fill must have.
 * Returns LM_OK or LM_ENOMEM; the caller owns the reference in *out. */
int lm_nexmark_schema(const lm_nexmark_cols *cols, lm_schema **out, lm_error *err);

/* A cursor over one subtask's events: n = subtask, subtask + parallelism,
 * ... below cfg->events_num (unbounded when it is 0). Plain data: a source
 * checkpoints it (or just `next`) and resumes exactly. */
typedef struct lm_nexmark_cursor {
    uint64_t next;        /* the next event number to look at */
    uint64_t end;         /* events_num, or UINT64_MAX when unbounded */
    uint32_t subtask;     /* this subtask's index */
    uint32_t parallelism; /* subtasks in all (>= 1) */
    uint32_t kinds_mask;  /* bit k: events of kind k become rows */
} lm_nexmark_cursor;

/* Starts a cursor at the subtask's first event. kinds_mask selects which
 * kinds become rows (bit k for kind k, LM_NEXMARK_KINDS_ALL for all);
 * events of other kinds are skipped without being generated but still
 * count as consumed. A parallelism of 0 counts as 1; a subtask >=
 * parallelism gives an empty (ended) cursor. */
void lm_nexmark_cursor_init(lm_nexmark_cursor *c, const lm_nexmark_cfg *cfg, uint32_t subtask,
                            uint32_t parallelism, uint32_t kinds_mask);

/* Moves the cursor to event `next` (a value saved from c->next). A value
 * that is not one of the subtask's events moves to its next event after
 * it. */
void lm_nexmark_cursor_seek(lm_nexmark_cursor *c, uint64_t next);

/* True when the cursor has no events left. */
bool lm_nexmark_cursor_ended(const lm_nexmark_cursor *c);

/* Appends up to max_rows rows to b (whose schema must equal
 * lm_nexmark_schema(cols)) from the cursor's events, generating only the
 * requested columns of only the selected kinds; columns of a kind are null
 * in rows of other kinds. Stops after max_rows rows or at the end of the
 * stream; b grows as needed (lm_batch_reserve), so a batch made with
 * capacity max_rows and cleared between calls never reallocates its
 * values. Writes the column buffers directly and keeps them as the
 * row-wise builder would (offsets, data_len, vcount, null_count, a
 * validity bitmap only for columns that got nulls).
 * *events_consumed (may be NULL) receives how many events the cursor
 * moved past (all kinds, skipped ones too); *ended (may be NULL) whether
 * the cursor has no events left. When the cursor can never reach a
 * selected kind (zero proportions, or a parallelism that keeps it on
 * other kinds), it adds no rows and moves past all its events when the
 * stream is bounded, else past min(max_rows * (P+A+B), 2^31) of them.
 * Returns LM_OK; LM_EINVAL when b's schema does not match cols; LM_ESTATE
 * for a read-only (decoded) batch; LM_ENOMEM or LM_ETOOBIG (a column's
 * bytes would pass 2 GiB). On error the rows of the events consumed so far
 * stay in b and the cursor and *events_consumed agree with them. */
int lm_nexmark_fill(const lm_nexmark_gen *g, const lm_nexmark_cols *cols, lm_nexmark_cursor *c,
                    lm_batch *b, uint32_t max_rows, uint64_t *events_consumed, bool *ended);

/* --- dump ------------------------------------------------------------------ */

/* Writes dir/person.csv, dir/auction.csv and dir/bid.csv (dir must exist;
 * files are replaced) with events 0..events_num-1 in order: a header line
 * of GENERATOR.md's field names, then one line per event; strings quoted
 * with inner quotes doubled, timestamps as YYYY-MM-DD HH:MM:SS.mmm (UTC).
 * Returns LM_OK, LM_ECONFIG (bad cfg, or events_num 0: an unbounded
 * stream cannot be dumped), LM_ENOMEM, or LM_EIO with err naming the file. */
int lm_nexmark_dump(const lm_nexmark_cfg *cfg, const char *dir, lm_error *err);

/* Writes s (len bytes) as one CSV field to out: a quote, s with every
 * quote doubled, a quote. out needs 2 * len + 2 bytes. Returns the bytes
 * written. (The dump's quoting, for tests and other writers.) */
size_t lm_nexmark_csv_quote(const char *s, size_t len, char *out);

/* Formats ms since the epoch as "YYYY-MM-DD HH:MM:SS.mmm" (UTC; 23 bytes
 * for years 0..9999) into out, which needs 32 bytes; NUL-terminated.
 * Returns the length. */
size_t lm_nexmark_format_time(int64_t ms, char *out);

#endif /* LM_NEXMARK_H */
