/*
 * lm_plan.c: loading, checking and encoding physical plans.
 *
 * The JSON document is parsed with jansson; the msgpack form is converted
 * to the same jansson document first, so there is one loader. Checks run
 * in this order, each error naming where: document shape, operators
 * (ids, kinds, parallelism, schemas), edges (ends, ports, keys, forward
 * parallelism), ports all connected once, no cycle, then each operator's
 * kind prepares its spec in topological order, seeing its input schemas.
 */
#include "lm_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_mp.h"
#include "lm_text.h"

#define MAX_PARALLELISM 1024
#define MAX_OPS         4096

static const char *type_names[] = {"bool", "int64", "float64", "timestamp", "utf8", "binary"};

int
lm_type_parse(const char *name, lm_type *out)
{
    for (int i = 0; i < 6; i++) {
        if (strcmp(name, type_names[i]) == 0) {
            *out = (lm_type)(i + 1);
            return LM_OK;
        }
    }
    return LM_EINVAL;
}

int
lm_schema_from_json(const json_t *arr, lm_schema **out, lm_error *err)
{
    lm_field f[LM_SCHEMA_MAX_FIELDS];
    size_t n;

    if (!json_is_array(arr)) {
        return lm_error_set(err, LM_EINVAL, "schema must be an array of fields");
    }
    n = json_array_size(arr);
    if (n > LM_SCHEMA_MAX_FIELDS) {
        return lm_error_set(err, LM_EINVAL, "schema has %zu fields (at most %d)", n,
                            LM_SCHEMA_MAX_FIELDS);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        const json_t *name = json_object_get(e, "name"), *type = json_object_get(e, "type"),
                     *nullable = json_object_get(e, "nullable");
        const char *key;
        json_t *v;
        if (!json_is_object(e) || !json_is_string(name) || !json_is_string(type)) {
            return lm_error_set(err, LM_EINVAL,
                                "schema[%zu]: a field needs a \"name\" and a \"type\"", i);
        }
        json_object_foreach((json_t *)e, key, v)
        {
            if (strcmp(key, "name") != 0 && strcmp(key, "type") != 0 &&
                strcmp(key, "nullable") != 0) {
                return lm_error_set(err, LM_EINVAL, "schema[%zu]: unknown key '%s'", i, key);
            }
        }
        if (lm_type_parse(json_string_value(type), &f[i].type) != LM_OK) {
            char hint[96];
            return lm_error_set(
                err, LM_EINVAL, "schema[%zu] '%s': unknown type '%s'%s", i, json_string_value(name),
                json_string_value(type),
                lm_text_suggest(json_string_value(type), type_names, 6, hint, sizeof(hint)));
        }
        if (nullable != NULL && !json_is_boolean(nullable)) {
            return lm_error_set(err, LM_EINVAL, "schema[%zu]: \"nullable\" must be true or false",
                                i);
        }
        f[i].name = json_string_value(name);
        f[i].nullable = nullable == NULL || json_is_true(nullable);
    }
    if (lm_schema_new(f, (uint32_t)n, out, err) != LM_OK) {
        return lm_error_prefix(err, "schema");
    }
    return LM_OK;
}

void
lm_plan_free(lm_plan *plan)
{
    if (plan == NULL) {
        return;
    }
    for (uint32_t i = 0; i < plan->nops; i++) {
        lm_plan_op *op = &plan->ops[i];
        if (op->spec != NULL && op->kind->spec_free != NULL) {
            op->kind->spec_free(op->spec);
        }
        for (uint32_t p = 0; p < op->def.ninputs; p++) {
            lm_schema_release(op->def.inputs[p]);
        }
        lm_schema_release(op->def.output);
        free(op->out_edges);
    }
    for (uint32_t i = 0; i < plan->nedges; i++) {
        free(plan->edges[i].keys);
    }
    free(plan->ops);
    free(plan->edges);
    free(plan->topo);
    free(plan->name);
    json_decref(plan->doc);
    free(plan);
}

int
lm_plan_find(const lm_plan *plan, const char *id)
{
    for (uint32_t i = 0; i < plan->nops; i++) {
        if (strcmp(plan->ops[i].def.id, id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* "did you mean" among the operator ids. */
static char *
suggest_op(const lm_plan *plan, const char *word, char *out, size_t cap)
{
    const char *ids[MAX_OPS];
    for (uint32_t i = 0; i < plan->nops; i++) {
        ids[i] = plan->ops[i].def.id;
    }
    return lm_text_suggest(word, ids, plan->nops, out, cap);
}

/* Reads a positive integer member (absent: def). */
static int
get_count(const json_t *obj, const char *key, uint32_t def, uint32_t max, const char *where,
          uint32_t *out, lm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        *out = def;
        return LM_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > (json_int_t)max) {
        return lm_error_set(err, LM_EINVAL, "%s: \"%s\" must be an integer from 1 to %u", where,
                            key, max);
    }
    *out = (uint32_t)json_integer_value(v);
    return LM_OK;
}

/* Applies an "op.key=value" override to the document. The value is JSON
 * when it parses as JSON, else a string. */
static int
apply_set(json_t *doc, const char *set, lm_error *err)
{
    const char *dot = strchr(set, '.'), *eq = strchr(set, '=');
    char id[256], key[256];
    json_t *ops = json_object_get(doc, "operators"), *val, *cfg;
    size_t i;
    json_t *op;

    if (dot == NULL || eq == NULL || dot > eq || dot == set || eq == dot + 1 ||
        (size_t)(dot - set) >= sizeof(id) || (size_t)(eq - dot - 1) >= sizeof(key)) {
        return lm_error_set(err, LM_EINVAL, "setting '%s': want OPERATOR.KEY=VALUE", set);
    }
    snprintf(id, sizeof(id), "%.*s", (int)(dot - set), set);
    snprintf(key, sizeof(key), "%.*s", (int)(eq - dot - 1), dot + 1);
    json_array_foreach(ops, i, op)
    {
        const json_t *oid = json_object_get(op, "id");
        if (json_is_string(oid) && strcmp(json_string_value(oid), id) == 0) {
            if ((val = json_loads(eq + 1, JSON_DECODE_ANY, NULL)) == NULL) {
                val = json_string(eq + 1);
            }
            if ((cfg = json_object_get(op, "config")) == NULL) {
                cfg = json_object();
                json_object_set_new(op, "config", cfg);
            }
            if (val == NULL || !json_is_object(cfg) || json_object_set_new(cfg, key, val) != 0) {
                return lm_error_set(err, LM_EINVAL, "setting '%s': cannot set it", set);
            }
            return LM_OK;
        }
    }
    return lm_error_set(err, LM_EINVAL, "setting '%s': no operator '%s'", set, id);
}

static int
parse_ops(lm_plan *plan, const json_t *doc, const lm_plan_opts *opts, lm_error *err)
{
    static const char *const op_keys[] = {
        "id", "kind", "parallelism", "config", "schema", "fixed_parallelism", "comment", NULL};
    const json_t *ops = json_object_get(doc, "operators");
    uint32_t defpar;
    int rv;

    if (!json_is_array(ops) || json_array_size(ops) == 0) {
        return lm_error_set(err, LM_EINVAL, "plan: \"operators\" must be a non-empty array");
    }
    if (json_array_size(ops) > MAX_OPS) {
        return lm_error_set(err, LM_EINVAL, "plan: more than %d operators", MAX_OPS);
    }
    if ((rv = get_count(doc, "parallelism", 1, MAX_PARALLELISM, "plan", &defpar, err)) != LM_OK) {
        return rv;
    }
    if (opts != NULL && opts->parallelism > 0) {
        defpar = opts->parallelism;
    }
    plan->nops = (uint32_t)json_array_size(ops);
    if ((plan->ops = calloc(plan->nops, sizeof(lm_plan_op))) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < plan->nops; i++) {
        const json_t *o = json_array_get(ops, i);
        lm_plan_op *op = &plan->ops[i];
        const json_t *id = json_object_get(o, "id"), *kind = json_object_get(o, "kind"),
                     *cfg = json_object_get(o, "config"), *schema = json_object_get(o, "schema");
        char where[300];

        snprintf(where, sizeof(where), "operators[%u]", i);
        if (!json_is_object(o)) {
            return lm_error_set(err, LM_EINVAL, "%s: must be an object", where);
        }
        if (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > 200) {
            return lm_error_set(err, LM_EINVAL, "%s: \"id\" must be a non-empty string", where);
        }
        op->def.id = json_string_value(id);
        snprintf(where, sizeof(where), "operator '%s'", op->def.id);
        if ((rv = lm_op_json_only(o, op_keys, where, err)) != LM_OK) {
            return rv;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(plan->ops[j].def.id, op->def.id) == 0) {
                return lm_error_set(err, LM_EINVAL,
                                    "%s: the id is used twice (operators[%u] and [%u])", where, j,
                                    i);
            }
        }
        if (!json_is_string(kind)) {
            return lm_error_set(err, LM_EINVAL, "%s: \"kind\" must be a string", where);
        }
        if ((op->kind = lm_op_kind_find(json_string_value(kind))) == NULL) {
            const char *names[128];
            char hint[96];
            uint32_t nn = lm_op_kind_names(names, 128);
            return lm_error_set(
                err, LM_EINVAL, "%s: unknown operator kind '%s'%s", where, json_string_value(kind),
                lm_text_suggest(json_string_value(kind), names, nn, hint, sizeof(hint)));
        }
        if ((rv = get_count(o, "parallelism", defpar, MAX_PARALLELISM, where, &op->def.parallelism,
                            err)) != LM_OK) {
            return rv;
        }
        if (opts != NULL && opts->parallelism > 0 &&
            !json_is_true(json_object_get(o, "fixed_parallelism"))) {
            op->def.parallelism = opts->parallelism;
        }
        /* The document says what runs: it is what travels to workers. */
        json_object_set_new((json_t *)o, "parallelism", json_integer(op->def.parallelism));
        if (cfg != NULL && !json_is_object(cfg)) {
            return lm_error_set(err, LM_EINVAL, "%s: \"config\" must be an object", where);
        }
        if (cfg == NULL) {
            cfg = json_object();
            json_object_set_new((json_t *)o, "config", (json_t *)cfg);
        }
        op->def.config = cfg;
        if (op->kind->sink) {
            if (schema != NULL) {
                return lm_error_set(err, LM_EINVAL, "%s: a %s sink has no output schema", where,
                                    op->kind->name);
            }
        } else if (schema == NULL) {
            return lm_error_set(err, LM_EINVAL, "%s: \"schema\" (the output schema) is missing",
                                where);
        } else if ((rv = lm_schema_from_json(schema, &op->def.output, err)) != LM_OK) {
            return lm_error_prefix(err, "%s", where);
        }
        for (uint32_t p = 0; p < LM_OP_MAX_PORTS; p++) {
            op->in_edge[p] = UINT32_MAX;
        }
    }
    return LM_OK;
}

static int
parse_edges(lm_plan *plan, const json_t *doc, lm_error *err)
{
    static const char *const edge_keys[] = {"from", "to", "port", "kind", "keys", NULL};
    static const char *const kinds[] = {"forward", "shuffle", "broadcast"};
    const json_t *edges = json_object_get(doc, "edges");
    int rv;

    if (edges == NULL) {
        edges = json_array();
        json_object_set_new((json_t *)doc, "edges", (json_t *)edges);
    }
    if (!json_is_array(edges)) {
        return lm_error_set(err, LM_EINVAL, "plan: \"edges\" must be an array");
    }
    plan->nedges = (uint32_t)json_array_size(edges);
    if (plan->nedges > 0 && (plan->edges = calloc(plan->nedges, sizeof(lm_plan_edge))) == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < plan->nedges; i++) {
        const json_t *e = json_array_get(edges, i);
        const json_t *from = json_object_get(e, "from"), *to = json_object_get(e, "to"),
                     *port = json_object_get(e, "port"), *kind = json_object_get(e, "kind"),
                     *keys = json_object_get(e, "keys");
        lm_plan_edge *ed = &plan->edges[i];
        char where[600], hint[96];
        int fi, ti;

        snprintf(where, sizeof(where), "edges[%u]", i);
        if (!json_is_object(e)) {
            return lm_error_set(err, LM_EINVAL, "%s: must be an object", where);
        }
        if ((rv = lm_op_json_only(e, edge_keys, where, err)) != LM_OK) {
            return rv;
        }
        if (!json_is_string(from) || !json_is_string(to)) {
            return lm_error_set(err, LM_EINVAL, "%s: \"from\" and \"to\" must be operator ids",
                                where);
        }
        if ((fi = lm_plan_find(plan, json_string_value(from))) < 0) {
            return lm_error_set(err, LM_EINVAL, "%s: no operator '%s'%s", where,
                                json_string_value(from),
                                suggest_op(plan, json_string_value(from), hint, sizeof(hint)));
        }
        if ((ti = lm_plan_find(plan, json_string_value(to))) < 0) {
            return lm_error_set(err, LM_EINVAL, "%s: no operator '%s'%s", where,
                                json_string_value(to),
                                suggest_op(plan, json_string_value(to), hint, sizeof(hint)));
        }
        snprintf(where, sizeof(where), "edge '%s' -> '%s'", json_string_value(from),
                 json_string_value(to));
        ed->from = (uint32_t)fi;
        ed->to = (uint32_t)ti;
        ed->kind = LM_EDGE_FORWARD;
        if (kind != NULL) {
            int k = -1;
            for (int j = 0; json_is_string(kind) && j < 3; j++) {
                if (strcmp(json_string_value(kind), kinds[j]) == 0) {
                    k = j;
                }
            }
            if (k < 0) {
                return lm_error_set(err, LM_EINVAL,
                                    "%s: \"kind\" must be forward, shuffle or broadcast", where);
            }
            ed->kind = (lm_edge_kind)k;
        }
        if (port != NULL && (!json_is_integer(port) || json_integer_value(port) < 0 ||
                             json_integer_value(port) >= LM_OP_MAX_PORTS)) {
            return lm_error_set(err, LM_EINVAL, "%s: \"port\" must be an integer from 0 to %d",
                                where, LM_OP_MAX_PORTS - 1);
        }
        ed->port = port != NULL ? (uint32_t)json_integer_value(port) : 0;
        if (plan->ops[fi].kind->sink) {
            return lm_error_set(err, LM_EINVAL, "%s: '%s' is a sink and has no output", where,
                                plan->ops[fi].def.id);
        }
        if (ed->port >= plan->ops[ti].kind->max_inputs) {
            return lm_error_set(err, LM_EINVAL,
                                "%s: a %s operator has %u input port%s; port %u "
                                "does not exist",
                                where, plan->ops[ti].kind->name, plan->ops[ti].kind->max_inputs,
                                plan->ops[ti].kind->max_inputs == 1 ? "" : "s", ed->port);
        }
        if (plan->ops[ti].in_edge[ed->port] != UINT32_MAX) {
            return lm_error_set(err, LM_EINVAL, "%s: port %u of '%s' is already fed by edges[%u]",
                                where, ed->port, plan->ops[ti].def.id,
                                plan->ops[ti].in_edge[ed->port]);
        }
        plan->ops[ti].in_edge[ed->port] = i;
        if (ed->kind == LM_EDGE_FORWARD &&
            plan->ops[fi].def.parallelism != plan->ops[ti].def.parallelism) {
            return lm_error_set(err, LM_EINVAL,
                                "%s: a forward edge needs equal parallelism (%u "
                                "and %u); use shuffle or broadcast",
                                where, plan->ops[fi].def.parallelism,
                                plan->ops[ti].def.parallelism);
        }
        if (ed->kind == LM_EDGE_SHUFFLE) {
            if (!json_is_array(keys) || json_array_size(keys) == 0) {
                return lm_error_set(err, LM_EINVAL, "%s: a shuffle needs \"keys\" (column names)",
                                    where);
            }
            ed->nkeys = (uint32_t)json_array_size(keys);
            if ((ed->keys = calloc(ed->nkeys, sizeof(uint32_t))) == NULL) {
                return lm_error_set(err, LM_ENOMEM, "out of memory");
            }
            for (uint32_t k = 0; k < ed->nkeys; k++) {
                const json_t *kn = json_array_get(keys, k);
                if (!json_is_string(kn)) {
                    return lm_error_set(err, LM_EINVAL, "%s: keys[%u] must be a column name", where,
                                        k);
                }
                if ((rv = lm_op_column(plan->ops[fi].def.output, json_string_value(kn),
                                       &ed->keys[k], err)) != LM_OK) {
                    return lm_error_prefix(err, "%s: keys[%u]", where, k);
                }
            }
        } else if (keys != NULL) {
            return lm_error_set(err, LM_EINVAL, "%s: \"keys\" only go with a shuffle", where);
        }
    }
    return LM_OK;
}

/* Ports, outputs, cycles; fills topo. */
static int
check_graph(lm_plan *plan, lm_error *err)
{
    uint32_t *indeg, *queue, head = 0, tail = 0;

    for (uint32_t i = 0; i < plan->nops; i++) {
        lm_plan_op *op = &plan->ops[i];
        uint32_t n = 0;
        while (n < LM_OP_MAX_PORTS && op->in_edge[n] != UINT32_MAX) {
            n++;
        }
        for (uint32_t p = n; p < LM_OP_MAX_PORTS; p++) {
            if (op->in_edge[p] != UINT32_MAX) {
                return lm_error_set(err, LM_EINVAL,
                                    "operator '%s': port %u is fed but port %u is "
                                    "not",
                                    op->def.id, p, n);
            }
        }
        if (n < op->kind->min_inputs) {
            return lm_error_set(err, LM_EINVAL,
                                "operator '%s': a %s operator needs %u input%s, "
                                "it has %u",
                                op->def.id, op->kind->name, op->kind->min_inputs,
                                op->kind->min_inputs == 1 ? "" : "s", n);
        }
        op->def.ninputs = n;
        for (uint32_t e = 0; e < plan->nedges; e++) {
            op->nout += plan->edges[e].from == i;
        }
        if (op->nout > 0 && (op->out_edges = calloc(op->nout, sizeof(uint32_t))) == NULL) {
            return lm_error_set(err, LM_ENOMEM, "out of memory");
        }
        op->nout = 0;
        for (uint32_t e = 0; e < plan->nedges; e++) {
            if (plan->edges[e].from == i) {
                op->out_edges[op->nout++] = e;
            }
        }
        if (!op->kind->sink && op->nout == 0) {
            return lm_error_set(err, LM_EINVAL,
                                "operator '%s': its output goes nowhere (no edge "
                                "leaves it, and it is not a sink)",
                                op->def.id);
        }
    }
    indeg = calloc(plan->nops, sizeof(uint32_t));
    queue = calloc(plan->nops, sizeof(uint32_t));
    plan->topo = calloc(plan->nops, sizeof(uint32_t));
    if (indeg == NULL || queue == NULL || plan->topo == NULL) {
        free(indeg);
        free(queue);
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < plan->nops; i++) {
        indeg[i] = plan->ops[i].def.ninputs;
        if (indeg[i] == 0) {
            queue[tail++] = i;
        }
    }
    while (head < tail) {
        uint32_t o = queue[head++];
        plan->topo[head - 1] = o;
        for (uint32_t k = 0; k < plan->ops[o].nout; k++) {
            uint32_t to = plan->edges[plan->ops[o].out_edges[k]].to;
            if (--indeg[to] == 0) {
                queue[tail++] = to;
            }
        }
    }
    if (head < plan->nops) {
        /* Name the operators on a cycle: those never freed. */
        char names[400] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < plan->nops && used < sizeof(names) - 60; i++) {
            if (indeg[i] > 0) {
                used += (size_t)snprintf(names + used, sizeof(names) - used, "%s'%s'",
                                         used > 0 ? ", " : "", plan->ops[i].def.id);
            }
        }
        free(indeg);
        free(queue);
        return lm_error_set(err, LM_EINVAL, "the plan has a cycle through %s", names);
    }
    free(indeg);
    free(queue);
    return LM_OK;
}

/* Gives every operator its input schemas and lets its kind prepare. */
static int
prepare_ops(lm_plan *plan, lm_error *err)
{
    for (uint32_t t = 0; t < plan->nops; t++) {
        lm_plan_op *op = &plan->ops[plan->topo[t]];
        int rv;
        for (uint32_t p = 0; p < op->def.ninputs; p++) {
            lm_plan_edge *e = &plan->edges[op->in_edge[p]];
            op->def.inputs[p] = plan->ops[e->from].def.output;
            lm_schema_retain(op->def.inputs[p]);
        }
        if ((rv = op->kind->prepare(&op->def, &op->spec, err)) != LM_OK) {
            /* a required key that is missing is a bad configuration too */
            if (rv == LM_ENOTFOUND) {
                rv = LM_EINVAL;
                if (err != NULL) {
                    err->code = rv;
                }
            }
            lm_error_prefix(err, "operator '%s' (%s)", op->def.id, op->kind->name);
            return rv;
        }
    }
    return LM_OK;
}

static int
load_doc(json_t *doc, const lm_plan_opts *opts, lm_plan **out, lm_error *err)
{
    static const char *const plan_keys[] = {"name",      "parallelism", "batch_rows",
                                            "operators", "edges",       "watermark_alignment_ms",
                                            "comment",   NULL};
    const json_t *align;
    lm_plan *plan;
    const json_t *name;
    int rv;

    if (!json_is_object(doc)) {
        json_decref(doc);
        return lm_error_set(err, LM_EINVAL, "plan: must be a JSON object");
    }
    if ((plan = calloc(1, sizeof(*plan))) == NULL) {
        json_decref(doc);
        return lm_error_set(err, LM_ENOMEM, "out of memory");
    }
    plan->doc = doc;
    if ((rv = lm_op_json_only(doc, plan_keys, "plan", err)) != LM_OK) {
        goto fail;
    }
    for (const char *const *s = opts != NULL ? opts->sets : NULL; s != NULL && *s != NULL; s++) {
        if ((rv = apply_set(doc, *s, err)) != LM_OK) {
            goto fail;
        }
    }
    name = json_object_get(doc, "name");
    if (name != NULL && !json_is_string(name)) {
        rv = lm_error_set(err, LM_EINVAL, "plan: \"name\" must be a string");
        goto fail;
    }
    if ((plan->name = strdup(name != NULL ? json_string_value(name) : "")) == NULL) {
        rv = lm_error_set(err, LM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rv = get_count(doc, "batch_rows", 4096, 1u << 20, "plan", &plan->batch_rows, err)) !=
        LM_OK) {
        goto fail;
    }
    if (opts != NULL && opts->batch_rows > 0) {
        plan->batch_rows = opts->batch_rows;
    }
    json_object_set_new(doc, "batch_rows", json_integer(plan->batch_rows));
    align = json_object_get(doc, "watermark_alignment_ms");
    if (align != NULL && (!json_is_integer(align) || json_integer_value(align) < 0 ||
                          json_integer_value(align) > 1000000000)) {
        rv = lm_error_set(err, LM_EINVAL,
                          "plan: \"watermark_alignment_ms\" must be an integer "
                          "from 0 (no alignment) to 1000000000");
        goto fail;
    }
    plan->watermark_alignment_ms = align != NULL ? (int64_t)json_integer_value(align) : 0;
    if ((rv = parse_ops(plan, doc, opts, err)) != LM_OK ||
        (rv = parse_edges(plan, doc, err)) != LM_OK || (rv = check_graph(plan, err)) != LM_OK ||
        (rv = prepare_ops(plan, err)) != LM_OK) {
        goto fail;
    }
    *out = plan;
    return LM_OK;
fail:
    lm_plan_free(plan);
    return rv;
}

int
lm_plan_load_json(const char *text, size_t len, const char *origin, const lm_plan_opts *opts,
                  lm_plan **out, lm_error *err)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    int rv;

    if (doc == NULL) {
        return lm_error_set(err, LM_EINVAL, "%s:%d:%d: %s", origin, je.line, je.column, je.text);
    }
    if ((rv = load_doc(doc, opts, out, err)) != LM_OK) {
        lm_error_prefix(err, "%s", origin);
    }
    return rv;
}

int
lm_plan_load_file(const char *path, const lm_plan_opts *opts, lm_plan **out, lm_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rv;

    if (f == NULL) {
        return lm_error_set(err, LM_EIO, "cannot read plan '%s': %s", path, strerror(errno));
    }
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return lm_error_set(err, LM_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return lm_error_set(err, LM_EIO, "cannot read plan '%s'", path);
    }
    fclose(f);
    rv = lm_plan_load_json(buf, len, path, opts, out, err);
    free(buf);
    return rv;
}

/* --- msgpack form ------------------------------------------------------ */

static json_t *
mp_to_json(lm_mpr *r, int depth, lm_error *err)
{
    const uint8_t *q = r->p;
    uint32_t n;

    if (depth > 64) {
        lm_error_set(err, LM_EINVAL, "plan (msgpack): nested too deeply");
        return NULL;
    }
    if (lm_mpr_nil(r)) {
        return json_null();
    }
    if (q < r->end && (*q == 0xc2 || *q == 0xc3)) {
        bool b;
        lm_mpr_bool(r, &b);
        return json_boolean(b);
    }
    if (q < r->end && (*q == 0xca || *q == 0xcb)) {
        double d;
        json_t *v;
        if (lm_mpr_f64(r, &d) != LM_OK) {
            lm_mpr_error(r, err, "plan (msgpack)");
            return NULL;
        }
        if ((v = json_real(d)) == NULL) { /* NaN or infinite */
            lm_error_set(err, LM_EINVAL, "plan (msgpack): number at byte %zu is not finite",
                         (size_t)(q - r->start));
        }
        return v;
    }
    {
        int64_t i;
        if (lm_mpr_i64(r, &i) == LM_OK) {
            return json_integer(i);
        }
    }
    {
        const char *s;
        uint32_t len;
        if (lm_mpr_str(r, &s, &len) == LM_OK) {
            json_t *v = json_stringn(s, len);
            if (v == NULL) {
                lm_error_set(err, LM_EINVAL, "plan (msgpack): string at byte %zu is not UTF-8",
                             (size_t)(q - r->start));
            }
            return v;
        }
    }
    if (lm_mpr_array(r, &n) == LM_OK) {
        json_t *a = json_array();
        if (a == NULL) {
            lm_error_set(err, LM_ENOMEM, "out of memory");
            return NULL;
        }
        for (uint32_t i = 0; i < n; i++) {
            json_t *v = mp_to_json(r, depth + 1, err);
            if (v == NULL) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    if (lm_mpr_map(r, &n) == LM_OK) {
        json_t *o = json_object();
        if (o == NULL) {
            lm_error_set(err, LM_ENOMEM, "out of memory");
            return NULL;
        }
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            uint32_t klen;
            char key[256];
            json_t *v;
            if (lm_mpr_str(r, &k, &klen) != LM_OK || klen >= sizeof(key)) {
                json_decref(o);
                lm_error_set(err, LM_EINVAL,
                             "plan (msgpack): map key at byte %zu is not a short "
                             "string",
                             lm_mpr_offset(r));
                return NULL;
            }
            memcpy(key, k, klen);
            key[klen] = '\0';
            if ((v = mp_to_json(r, depth + 1, err)) == NULL) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, key, v);
        }
        return o;
    }
    lm_mpr_error(r, err, "plan (msgpack)");
    return NULL;
}

int
lm_plan_load_msgpack(const uint8_t *p, size_t len, const lm_plan_opts *opts, lm_plan **out,
                     lm_error *err)
{
    lm_mpr r;
    json_t *doc;

    lm_mpr_init(&r, p, len);
    if ((doc = mp_to_json(&r, 0, err)) == NULL) {
        if (err != NULL && err->code == LM_EPROTO) {
            err->code = LM_EINVAL;
        }
        return LM_EINVAL;
    }
    if (lm_mpr_remaining(&r) != 0) {
        json_decref(doc);
        return lm_error_set(err, LM_EINVAL, "plan (msgpack): trailing bytes");
    }
    return load_doc(doc, opts, out, err);
}

static int
json_to_mp(const json_t *v, msgpack_packer *pk)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return msgpack_pack_nil(pk);
    case JSON_TRUE: return msgpack_pack_true(pk);
    case JSON_FALSE: return msgpack_pack_false(pk);
    case JSON_INTEGER: return msgpack_pack_int64(pk, json_integer_value(v));
    case JSON_REAL: return msgpack_pack_double(pk, json_real_value(v));
    case JSON_STRING: return lm_mp_pack_str(pk, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        if (msgpack_pack_array(pk, json_array_size(v)) != 0) {
            return -1;
        }
        json_array_foreach((json_t *)v, i, e)
        {
            if (json_to_mp(e, pk) != 0) {
                return -1;
            }
        }
        return 0;
    }
    case JSON_OBJECT: {
        const char *k;
        json_t *e;
        if (msgpack_pack_map(pk, json_object_size(v)) != 0) {
            return -1;
        }
        json_object_foreach((json_t *)v, k, e)
        {
            if (lm_mp_pack_str(pk, k, strlen(k)) != 0 || json_to_mp(e, pk) != 0) {
                return -1;
            }
        }
        return 0;
    }
    }
    return -1;
}

int
lm_plan_to_msgpack(const lm_plan *plan, lm_msg *m)
{
    msgpack_packer pk;
    lm_mp_packer_init(&pk, m);
    return json_to_mp(plan->doc, &pk) == 0 ? LM_OK : LM_ENOMEM;
}
