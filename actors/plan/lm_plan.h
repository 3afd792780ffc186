/*
 * lm_plan.h: the physical plan, the contract between the SQL compiler and
 * the workers.
 *
 * A plan is a directed acyclic graph of operators. In JSON (the form for
 * people and tests; the msgpack form is the same document, for the wire):
 *
 *   {
 *     "name": "q5",                      optional
 *     "parallelism": 2,                  default for operators; default 1
 *     "batch_rows": 4096,                optional, rows per batch
 *     "watermark_alignment_ms": 1000,    optional, 0 (default): none
 *     "operators": [
 *       {"id": "bids", "kind": "nexmark", "parallelism": 2,
 *        "config": {...kind-specific...},
 *        "schema": [{"name": "auction", "type": "int64", "nullable": false}, ...]},
 *       ...],
 *     "edges": [
 *       {"from": "bids", "to": "counts", "kind": "shuffle", "keys": ["auction"]},
 *       {"from": "counts", "to": "join", "kind": "forward", "port": 1},
 *       ...]
 *   }
 *
 * Operators: id (unique), kind (see lm_op_kind_find), parallelism (1..1024),
 * fixed_parallelism (true: a run's parallelism option leaves it as it is,
 * e.g. a global aggregate), config (object), schema (the output schema;
 * absent for sinks). The plan and each operator may carry a "comment"
 * (any JSON value, ignored). Types:
 * bool, int64, float64, timestamp, utf8, binary; nullable defaults to true.
 * Watermark alignment: with "watermark_alignment_ms" A > 0, a source subtask
 * whose output watermark is more than A ahead of the smallest one among
 * the job's source subtasks (leaving out those that have no watermark
 * yet, have ended, or are idle) stops producing until the others catch
 * up, so that operators downstream (windows, joins) do not have to hold
 * the rows of a source that runs ahead. A source that gets no data must
 * then say it is idle (the watermark operator's idle_timeout_ms), or the
 * others wait for it.
 * Edges: from, to, port (input port of `to`, default 0), kind forward
 * (subtask i to subtask i; equal parallelism), shuffle (rows by a hash of
 * the key columns of `from`'s output) or broadcast (every row to every
 * subtask).
 *
 * Loading checks everything and says what is wrong and where, naming the
 * operator: unknown kinds, bad configuration (each kind's prepare), schema
 * mismatches along edges, unconnected or doubly connected ports, cycles,
 * bad parallelism, unknown shuffle keys.
 */
#ifndef LM_PLAN_H
#define LM_PLAN_H

#include <stdint.h>

#include <jansson.h>

#include "lm_batch.h"
#include "lm_err.h"
#include "lm_op.h"

typedef enum lm_edge_kind {
    LM_EDGE_FORWARD = 0,
    LM_EDGE_SHUFFLE = 1,
    LM_EDGE_BROADCAST = 2,
} lm_edge_kind;

typedef struct lm_plan_edge {
    uint32_t from;     /* operator index */
    uint32_t to;       /* operator index */
    uint32_t port;     /* input port of `to` */
    lm_edge_kind kind; /* routing */
    uint32_t *keys;    /* shuffle key columns in `from`'s output schema */
    uint32_t nkeys;
} lm_plan_edge;

typedef struct lm_plan_op {
    lm_op_def def;                     /* id, config, parallelism, schemas (for the kind) */
    const lm_op_kind *kind;            /* callbacks */
    void *spec;                        /* from kind->prepare */
    uint32_t in_edge[LM_OP_MAX_PORTS]; /* edge index feeding each port */
    uint32_t *out_edges;               /* edges leaving this operator */
    uint32_t nout;
} lm_plan_op;

typedef struct lm_plan {
    char *name;                     /* plan name ("" when none) */
    json_t *doc;                    /* the document it was loaded from */
    uint32_t batch_rows;            /* rows per batch */
    int64_t watermark_alignment_ms; /* 0: none; else how far (event time) a source subtask's
                                       watermark may run ahead of the slowest source's */
    lm_plan_op *ops;                /* operators, in document order */
    uint32_t nops;
    lm_plan_edge *edges; /* edges, in document order */
    uint32_t nedges;
    uint32_t *topo; /* operator indices, sources first */
} lm_plan;

/* Options applied while loading. They are written into the plan's
 * document, so the msgpack form carries them. */
typedef struct lm_plan_opts {
    uint32_t parallelism;    /* 0: as the plan says; else replaces the plan's default and
                                every operator's parallelism (except those marked
                                "fixed_parallelism": true) */
    uint32_t batch_rows;     /* 0: as the plan says (default 4096) */
    const char *const *sets; /* "op_id.config_key=value" overrides, NULL-terminated, or NULL */
} lm_plan_opts;

/* Loads a plan from JSON text (origin names it in messages, e.g. the file
 * name). Returns LM_OK with *out (free with lm_plan_free), LM_EINVAL with
 * err saying what and where (JSON syntax errors give line and column),
 * LM_ENOMEM. */
int lm_plan_load_json(const char *text, size_t len, const char *origin, const lm_plan_opts *opts,
                      lm_plan **out, lm_error *err);

/* Loads a plan file (JSON). LM_EIO when it cannot be read. */
int lm_plan_load_file(const char *path, const lm_plan_opts *opts, lm_plan **out, lm_error *err);

/* Loads a plan from its msgpack form. */
int lm_plan_load_msgpack(const uint8_t *p, size_t len, const lm_plan_opts *opts, lm_plan **out,
                         lm_error *err);

/* Encodes the plan's document as msgpack into m (appending). LM_OK or
 * LM_ENOMEM. */
int lm_plan_to_msgpack(const lm_plan *plan, lm_msg *m);

void lm_plan_free(lm_plan *plan);

/* The operator with id, or -1. */
int lm_plan_find(const lm_plan *plan, const char *id);

/* Parses a type name ("int64") into *out. LM_OK or LM_EINVAL. */
int lm_type_parse(const char *name, lm_type *out);

/* Builds a schema from a JSON array of {"name", "type", "nullable"}. */
int lm_schema_from_json(const json_t *arr, lm_schema **out, lm_error *err);

#endif /* LM_PLAN_H */
