/*
 * lm_state.h: state tables, where every operator keeps all of its state.
 *
 * Two kinds, as in the design page, and a third for join buffers:
 *  - GLOBAL (GlobalKeyedTable): small keyed state (source offsets, a
 *    sink's pending files); the whole table goes into every snapshot.
 *  - EXPIRING (ExpiringTimeKeyTable): state keyed by time that expires as
 *    the watermark passes (windows, join buffers). Each entry has a time;
 *    lm_table_expire hands out and removes the entries older than a time,
 *    in time order. Snapshots are incremental: an epoch's file holds the
 *    entries changed and removed since the table's previous snapshot and
 *    names that snapshot; every LM_TABLE_FULL_EVERY-th snapshot (or when
 *    the changes outgrow the table) is a full one, so restoring reads a
 *    short chain.
 *  - APPEND (an ExpiringTimeKeyTable for rows that come about in time
 *    order): values appended with a time and numbered 1, 2, 3, ... in that
 *    order, read back by number, removed by number, and expired oldest
 *    number first while their time has passed (an entry whose time has
 *    not come holds back those after it, even earlier ones: made for
 *    buffers of rows whose times rise almost in order). No keys and no
 *    hashing: appending, reading and expiring go through memory in the
 *    order it was written. Snapshots are incremental too.
 *
 * Keys and values are byte strings the operator encodes. A table made with
 * a fixed value size keeps values in place: lm_table_upsert returns a
 * pointer the operator updates directly (the hot path of aggregates). A
 * table with variable values (value_size 0) is written with lm_table_put.
 *
 * A table belongs to one subtask and is used from its loop thread only.
 */
#ifndef LM_STATE_H
#define LM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_err.h"

#define LM_TABLE_FULL_EVERY 8     /* at least one full snapshot in this many */
#define LM_TABLE_KEY_MAX    65535 /* longest key */

typedef enum lm_table_kind {
    LM_TABLE_GLOBAL = 1,
    LM_TABLE_EXPIRING = 2,
    LM_TABLE_APPEND = 3,
} lm_table_kind;

typedef struct lm_table lm_table;

/* Creates an empty table. value_size > 0: every value has that size and
 * lives in place; 0: variable values (APPEND tables: always 0). Returns
 * LM_OK, LM_ENOMEM, LM_EINVAL (empty or too long a name, a bad kind). The
 * keyed functions below (upsert, find, touch, put, get, delete) are for
 * GLOBAL and EXPIRING tables: on an APPEND table they fail (NULL,
 * LM_EINVAL). */
int lm_table_new(lm_table_kind kind, const char *name, uint32_t value_size, lm_table **out);
void lm_table_free(lm_table *t);

const char *lm_table_name(const lm_table *t);
lm_table_kind lm_table_kind_of(const lm_table *t);
uint64_t lm_table_count(const lm_table *t); /* entries */
uint64_t lm_table_bytes(const lm_table *t); /* key and value bytes held */

/* Fixed-size values: the value of key, created zero-filled (with time ts;
 * ignored for GLOBAL tables) when absent (*created tells). The pointer is
 * valid until the next insertion or deletion. Marks the entry changed.
 * NULL when out of memory. */
void *lm_table_upsert(lm_table *t, const void *key, uint32_t klen, int64_t ts, bool *created);

/* Fixed-size values: the value of key, or NULL. Does not mark it changed:
 * call lm_table_touch after modifying it through this pointer. */
void *lm_table_find(lm_table *t, const void *key, uint32_t klen);
void lm_table_touch(lm_table *t, const void *key, uint32_t klen);

/* Variable values: sets key to val (copied) with time ts. LM_OK or
 * LM_ENOMEM (the table is unchanged then). */
int lm_table_put(lm_table *t, const void *key, uint32_t klen, int64_t ts, const void *val,
                 uint32_t vlen);

/* Any table: the value of key (pointer into the table, valid until the
 * next insertion or deletion). LM_OK or LM_ENOTFOUND. */
int lm_table_get(lm_table *t, const void *key, uint32_t klen, const void **val, uint32_t *vlen,
                 int64_t *ts);

/* Removes key. LM_OK or LM_ENOTFOUND. */
int lm_table_delete(lm_table *t, const void *key, uint32_t klen);

/* Called for each entry by expire and scan. Returning non-zero stops the
 * walk and is returned by it. val may be modified (scan only). */
typedef int (*lm_table_visit)(void *arg, const void *key, uint32_t klen, int64_t ts, void *val,
                              uint32_t vlen);

/* EXPIRING tables: visits the entries whose time is < upto, oldest first,
 * removing each after its visit. APPEND tables: visits and removes entries
 * from the oldest number on while their time is < upto, and stops at the
 * first one whose time is not. Keys given to the visit of an APPEND table
 * are the 8-byte little-endian numbers. Returns 0 or what a visit returned
 * (the entries visited so far are removed); LM_EINVAL for a GLOBAL table. */
int lm_table_expire(lm_table *t, int64_t upto, lm_table_visit visit, void *arg);

/* The oldest time in an EXPIRING table (APPEND: the time of the oldest
 * entry by number), or INT64_MAX when empty. */
int64_t lm_table_min_time(const lm_table *t);

/* Visits every entry (no order; APPEND tables: by number). The table must
 * not change meanwhile. */
int lm_table_scan(lm_table *t, lm_table_visit visit, void *arg);

/* --- APPEND tables ----------------------------------------------------- */

/* Appends val (copied) with time ts; *seq gets its number. LM_OK, LM_ENOMEM,
 * LM_EINVAL (not an APPEND table). */
int lm_table_append(lm_table *t, int64_t ts, const void *val, uint32_t vlen, uint64_t *seq);

/* The entry numbered seq (pointer valid until the entry goes). LM_OK or
 * LM_ENOTFOUND (never appended, removed or expired). */
int lm_table_at(lm_table *t, uint64_t seq, const void **val, uint32_t *vlen, int64_t *ts);

/* Removes the entry numbered seq. LM_OK or LM_ENOTFOUND. */
int lm_table_remove_at(lm_table *t, uint64_t seq);

/* The numbers: everything below the first is gone; next is the number the
 * next append gets (1 in an empty table). */
uint64_t lm_table_first_seq(const lm_table *t);
uint64_t lm_table_next_seq(const lm_table *t);

/* --- snapshots ------------------------------------------------------- */

/* Encodes the table's snapshot for epoch (full or incremental, see top)
 * into a zstd-compressed msgpack buffer *out of *len bytes (caller frees),
 * and starts a new change set. prev_epoch is the epoch of the table's
 * previous snapshot in the same storage (0: none, so a full one is made).
 * *full tells which it made. Returns LM_OK or LM_ENOMEM. */
int lm_table_snapshot(lm_table *t, uint64_t epoch, uint64_t prev_epoch, uint8_t **out, size_t *len,
                      bool *full);

/* Reads one snapshot file's header: its epoch, whether it is full, and the
 * previous epoch it builds on. LM_OK or LM_EPROTO (err says why). */
int lm_table_snapshot_info(const uint8_t *p, size_t len, uint64_t *epoch, bool *full,
                           uint64_t *prev_epoch, lm_error *err);

/* Applies one snapshot file to the table: a full one replaces its
 * contents, an incremental one applies its changes. Restoring is applying
 * the chain oldest first. LM_OK, LM_ENOMEM, LM_EPROTO (corrupt or not this
 * table's: err says what). */
int lm_table_restore(lm_table *t, const uint8_t *p, size_t len, lm_error *err);

#endif /* LM_STATE_H */
