/*
 * op_union.c: UNION ALL: "union".
 *
 * Rows from every input port go out as they came, batch by batch, in the
 * order they arrive. Every input must have exactly the declared output
 * schema (names, types, nullability; the SQL planner renames and widens
 * the inputs to it). No configuration, no state: the subtask already
 * forwards the smallest watermark of the inputs and aligns barriers.
 */
#include "lm_op.h"

static const char *const keys[] = {NULL};

static int
union_prepare(const lm_op_def *def, void **spec, lm_error *err)
{
    int rv;

    *spec = NULL;
    if ((rv = lm_op_cfg_only(def->config, keys, err)) != LM_OK) {
        return rv;
    }
    for (uint32_t i = 0; i < def->ninputs; i++) {
        if (!lm_schema_equal(def->inputs[i], def->output)) {
            return lm_error_set(err, LM_EINVAL,
                                "input %u: its schema is not the output schema (names, types "
                                "and nullability must be the same)",
                                i);
        }
    }
    return LM_OK;
}

static int
union_batch(lm_op *op, uint32_t port, lm_batch *b)
{
    (void)port;
    return lm_op_emit(op, b);
}

const lm_op_kind lm_op_union = {
    .name = "union",
    .min_inputs = 1,
    .max_inputs = LM_OP_MAX_PORTS,
    .prepare = union_prepare,
    .on_batch = union_batch,
};
