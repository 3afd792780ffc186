/*
 * lm_op.h: the operator interface.
 *
 * An operator kind (filter, window aggregate, nexmark source, file sink,
 * ...) is a table of callbacks. At plan time its prepare() checks the
 * operator's configuration against its input schemas and declared output
 * schema and builds an immutable spec, shared by all subtasks. At run time
 * each subtask of the operator gets an lm_op instance, called on the
 * subtask's loop thread only: batches, watermarks, barriers and the end of
 * input come in through the callbacks, and results go out with
 * lm_op_emit / lm_op_emit_watermark, which call the next operator of the
 * chain directly or hand the batch to the subtask's output channels.
 *
 * Ownership: a batch given to on_batch belongs to the operator (free it or
 * emit it); a batch given to lm_op_emit belongs to the receiver from then
 * on, whatever the return code.
 *
 * Errors: a callback that returns an error fails the subtask; the task
 * manager learns the reason (set it with lm_op_fail).
 */
#ifndef LM_OP_H
#define LM_OP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lm_batch.h"
#include "lm_err.h"
#include "lm_state.h"

#define LM_OP_MAX_PORTS 8

struct lm_subtask;
struct lm_table;
typedef struct lm_op lm_op;

/* One operator of a plan, as its kind sees it at prepare time. */
typedef struct lm_op_def {
    const char *id;                     /* the operator's id in the plan */
    const json_t *config;               /* its "config" object ({} when absent) */
    uint32_t parallelism;               /* subtasks */
    uint32_t ninputs;                   /* connected input ports */
    lm_schema *inputs[LM_OP_MAX_PORTS]; /* output schema of the operator feeding each port */
    lm_schema *output;                  /* the declared output schema (NULL for sinks) */
} lm_op_def;

typedef struct lm_op_kind {
    const char *name;    /* as written in plans: "filter", "nexmark", ... */
    uint32_t min_inputs; /* 0 for sources */
    uint32_t max_inputs; /* 0 for sources */
    bool sink;           /* has no output */
    /* Checks def and builds the spec. Returns LM_OK, LM_EINVAL (err says
     * what is wrong; the plan loader prefixes the operator), LM_ENOMEM. */
    int (*prepare)(const lm_op_def *def, void **spec, lm_error *err);
    void (*spec_free)(void *spec);
    /* Makes one subtask's instance: allocates op->state, registers state
     * tables (lm_op_table_*), which come back filled when the subtask is
     * restored from a checkpoint. On failure, close() is still called when
     * op->state is not NULL, so either free everything and leave it NULL
     * or leave a partly made state that close() can free. */
    int (*open)(lm_op *op); /* NULL: no state */
    /* A batch arrived on port (the batch is the operator's). */
    int (*on_batch)(lm_op *op, uint32_t port, lm_batch *b);
    /* The input watermark advanced to wm (the minimum over the inputs that
     * are not idle). Emit what became final, then forward a watermark.
     * NULL: forward wm unchanged. */
    int (*on_watermark)(lm_op *op, int64_t wm);
    /* Every input ended: emit everything still held. NULL: nothing held. */
    int (*on_end)(lm_op *op);
    /* Barrier `epoch` is passing: move anything held outside tables into
     * them, or pre-commit (sinks). Tables are snapshotted right after.
     * NULL: nothing to do. */
    int (*on_barrier)(lm_op *op, uint64_t epoch);
    /* Checkpoint `epoch` is complete everywhere: commit (sinks). */
    int (*on_checkpoint_done)(lm_op *op, uint64_t epoch);
    /* Sources: emit one batch of at most max_rows rows (lm_op_emit), or
     * none when nothing is available now (the subtask then asks again a
     * millisecond later); set *ended when nothing more will ever come. */
    int (*produce)(lm_op *op, uint32_t max_rows, bool *ended);
    /* Called about every 100 ms of wall-clock time (now_ms: ms since the
     * epoch), for what depends on time passing: periodic watermarks, idle
     * inputs, rolling files. NULL: not needed. */
    int (*on_tick)(lm_op *op, int64_t now_ms);
    /* Frees op->state (possibly partly made, see open). Tables are freed
     * by the subtask. */
    void (*close)(lm_op *op);
} lm_op_kind;

/* Counters every operator keeps (exported as metrics later). */
typedef struct lm_op_stats {
    uint64_t rows_in;     /* rows received */
    uint64_t rows_out;    /* rows emitted */
    uint64_t batches_in;  /* batches received */
    uint64_t batches_out; /* batches emitted */
    uint64_t late_rows;   /* rows dropped as late */
    uint64_t bad_rows;    /* rows dropped as unparseable (sources) */
    uint64_t expr_errors; /* rows nulled by an arithmetic error */
} lm_op_stats;

struct lm_op {
    const lm_op_kind *kind;  /* callbacks */
    const char *id;          /* operator id */
    void *spec;              /* the kind's spec (shared, read-only) */
    const lm_op_def *def;    /* schemas and config */
    void *state;             /* the kind's instance data */
    struct lm_subtask *task; /* the subtask running it */
    lm_op *next;             /* next operator of the chain, or NULL (outputs) */
    uint32_t subtask;        /* this subtask's index */
    uint32_t parallelism;    /* subtasks of the operator */
    uint32_t batch_rows;     /* preferred rows per batch */
    int64_t watermark;       /* last watermark this operator emitted */
    lm_op_stats stats;       /* counters */
};

/* Passes b to the next operator, or to the outputs at the end of the
 * chain. b is no longer the caller's, whatever the result. Empty batches
 * are freed, not passed. */
int lm_op_emit(lm_op *op, lm_batch *b);

/* Passes a watermark on (ignored when not past the last one emitted). */
int lm_op_emit_watermark(lm_op *op, int64_t wm);

/* Tells the subtask's outputs that this input is idle: downstream leaves
 * it out of the watermark minimum until it emits a watermark again. */
int lm_op_emit_idle(lm_op *op);

/* Records why the operator fails and returns code. */
int lm_op_fail(lm_op *op, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Registers a state table of the operator (call in open). When the
 * subtask starts from a checkpoint, the table comes back filled. The
 * subtask snapshots it at every barrier and frees it at the end. Returns
 * LM_OK, LM_ENOMEM, LM_EEXIST (name taken), or a restore error (the
 * reason is recorded as with lm_op_fail). */
int lm_op_table(lm_op *op, lm_table_kind kind, const char *name, uint32_t value_size,
                lm_table **out);

/* Sources: counts events consumed (all kinds, as benchmarks count). */
void lm_op_count_events(lm_op *op, uint64_t n);

/* The checkpoint the subtask started from (0: a fresh start). */
uint64_t lm_op_restore_epoch(const lm_op *op);

/* The job's id and its checkpoint directory ("" when none). */
const char *lm_op_job_id(const lm_op *op);
const char *lm_op_checkpoint_dir(const lm_op *op);

/* Looks up an operator kind by name; NULL when unknown. */
const lm_op_kind *lm_op_kind_find(const char *name);

/* Adds a kind (tests, embedders) before plans that use it are loaded.
 * Returns LM_OK, LM_EEXIST (the name is taken) or LM_ENOMEM. Not
 * thread-safe against concurrent loading. */
int lm_op_kind_register(const lm_op_kind *kind);

/* Names of all kinds (for messages): fills names[0..n), returns the count. */
uint32_t lm_op_kind_names(const char **names, uint32_t cap);

/* Helpers for prepare(): read config values with messages naming the key.
 * Each returns LM_OK, LM_ENOTFOUND (absent and required), or LM_EINVAL. */
int lm_op_cfg_str(const json_t *cfg, const char *key, const char *def, const char **out,
                  lm_error *err);
int lm_op_cfg_i64(const json_t *cfg, const char *key, int64_t def, int64_t min, int64_t max,
                  int64_t *out, lm_error *err);
int lm_op_cfg_bool(const json_t *cfg, const char *key, bool def, bool *out, lm_error *err);
/* Checks that cfg has only the keys listed (NULL-terminated). */
int lm_op_cfg_only(const json_t *cfg, const char *const *keys, lm_error *err);

/* The same for any JSON object, with `where` leading the message ("where:
 * unknown key 'x' (did you mean ...?)"). */
int lm_op_json_only(const json_t *obj, const char *const *keys, const char *where, lm_error *err);
/* The index of a column named name in s, with a message (and a suggestion)
 * when there is none. */
int lm_op_column(const lm_schema *s, const char *name, uint32_t *out, lm_error *err);

#endif /* LM_OP_H */
