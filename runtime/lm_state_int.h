/*
 * lm_state_int.h: inside the state tables: the append log behind APPEND
 * tables (lm_state_append.c), used by lm_state.c. Not for other modules.
 */
#ifndef LM_STATE_INT_H
#define LM_STATE_INT_H

#include <msgpack.h>

#include "lm_mp.h"
#include "lm_state.h"

typedef struct applog applog;

/* Writes v as 8 bytes little-endian (snapshot headers, APPEND keys). */
static inline void
state_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

int applog_new(applog **out);
void applog_free(applog *l); /* NULL is ignored */
void applog_clear(applog *l);

uint64_t applog_count(const applog *l);
uint64_t applog_bytes(const applog *l);

int applog_append(applog *l, int64_t ts, const void *val, uint32_t vlen, uint64_t *seq);
int applog_at(const applog *l, uint64_t seq, const void **val, uint32_t *vlen, int64_t *ts);
int applog_remove(applog *l, uint64_t seq);
uint64_t applog_first_seq(const applog *l);
uint64_t applog_next_seq(const applog *l);
int64_t applog_min_time(const applog *l);
int applog_expire(applog *l, int64_t upto, lm_table_visit visit, void *arg);
int applog_scan(applog *l, lm_table_visit visit, void *arg);

/* Snapshots: packs the two last elements of the snapshot array (the
 * positions, the removals, and the entries: all of them when full, else
 * those since the last snapshot), then starts a new change set. */
int applog_pack(applog *l, msgpack_packer *pk, bool full);
void applog_packed(applog *l);
/* Applies the two elements read from r: a full snapshot replaces the
 * contents. LM_OK, LM_ENOMEM, LM_EPROTO (err says what). */
int applog_restore(applog *l, lm_mpr *r, bool full, lm_error *err);

#endif /* LM_STATE_INT_H */
