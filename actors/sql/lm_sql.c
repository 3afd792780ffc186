/*
 * lm_sql.c: the compiler's entry points: compile, explain, and the
 * printing of errors with the line and a caret.
 */
#include "lm_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_plan.h"
#include "lm_sql_lp.h"

/* Parses, binds and plans; *lp_out (when not NULL) keeps the logical plan. */
static int
build(const char *text, size_t len, const lm_sql_opts *opts, json_t **plan, lm_sql_tree **tree,
      lm_sql_lp **lp_out, int64_t *checkpoint_ms, lm_sql_diag *d)
{
    lm_sql_lp *lp = NULL;
    lm_plan *loaded = NULL;
    lm_error err;
    int rv;

    memset(d, 0, sizeof(*d));
    *plan = NULL;
    if ((rv = lm_sql_parse(text, len, tree, d)) != LM_OK) {
        return rv;
    }
    if ((rv = lm_sql_bind(*tree, &lp, d)) != LM_OK) {
        goto fail;
    }
    uint32_t par = opts != NULL && opts->parallelism > 0 ? opts->parallelism
                   : lp->parallelism > 0                 ? lp->parallelism
                                                         : 1;
    const char *name = opts != NULL && opts->name != NULL ? opts->name : "pipeline";
    if ((rv = lm_sql_plan(lp, par, name, plan, d)) != LM_OK) {
        goto fail;
    }
    /* The engine's own checks, so that what compiles runs. */
    char *doc = json_dumps(*plan, JSON_COMPACT);
    if (doc == NULL) {
        rv = LM_ENOMEM;
        goto fail;
    }
    rv = lm_plan_load_json(doc, strlen(doc), name, NULL, &loaded, &err);
    free(doc);
    lm_plan_free(loaded);
    if (rv != LM_OK) {
        if (rv != LM_ENOMEM) {
            rv = lm_sql_diag_set(d, (lm_sql_pos){1, 1}, "the compiled plan was refused: %s",
                                 err.msg);
        }
        goto fail;
    }
    if (checkpoint_ms != NULL) {
        *checkpoint_ms = lp->checkpoint_ms;
    }
    if (lp_out != NULL) {
        *lp_out = lp;
    } else {
        lm_sql_lp_free(lp);
    }
    return LM_OK;
fail:
    json_decref(*plan);
    *plan = NULL;
    lm_sql_lp_free(lp);
    lm_sql_tree_free(*tree);
    *tree = NULL;
    return rv;
}

int
lm_sql_compile(const char *text, size_t len, const lm_sql_opts *opts, json_t **plan,
               int64_t *checkpoint_ms, lm_sql_diag *d)
{
    lm_sql_tree *tree = NULL;
    int rv = build(text, len, opts, plan, &tree, NULL, checkpoint_ms, d);
    lm_sql_tree_free(tree);
    return rv;
}

/* The physical plan as a tree: each operator under the one it feeds. */
static void
print_phys(const json_t *plan, const char *id, int depth, FILE *out)
{
    const json_t *ops = json_object_get(plan, "operators"), *edges = json_object_get(plan, "edges");
    const json_t *op = NULL;
    for (size_t i = 0; i < json_array_size(ops); i++) {
        if (strcmp(json_string_value(json_object_get(json_array_get(ops, i), "id")), id) == 0) {
            op = json_array_get(ops, i);
        }
    }
    if (op == NULL || depth > 64) {
        return;
    }
    fprintf(out, "%*s%s: %s, parallelism %lld", depth * 2, "", id,
            json_string_value(json_object_get(op, "kind")),
            (long long)json_integer_value(json_object_get(op, "parallelism")));
    const json_t *schema = json_object_get(op, "schema");
    if (json_array_size(schema) > 0) {
        fputs(" [", out);
        for (size_t i = 0; i < json_array_size(schema); i++) {
            const json_t *f = json_array_get(schema, i);
            fprintf(out, "%s%s %s%s", i ? ", " : "", json_string_value(json_object_get(f, "name")),
                    json_string_value(json_object_get(f, "type")),
                    json_is_false(json_object_get(f, "nullable")) ? " not null" : "");
        }
        fputs("]", out);
    }
    fputc('\n', out);
    const json_t *config = json_object_get(op, "config");
    if (json_object_size(config) > 0) {
        char *c = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(out, "%*s  config %s\n", depth * 2, "", c ? c : "?");
        free(c);
    }
    for (size_t i = 0; i < json_array_size(edges); i++) {
        const json_t *e = json_array_get(edges, i);
        if (strcmp(json_string_value(json_object_get(e, "to")), id) != 0) {
            continue;
        }
        const char *kind = json_string_value(json_object_get(e, "kind"));
        fprintf(out, "%*s  <- %s", depth * 2, "", kind ? kind : "forward");
        const json_t *keys = json_object_get(e, "keys");
        for (size_t k = 0; k < json_array_size(keys); k++) {
            fprintf(out, "%s%s", k ? ", " : " on ", json_string_value(json_array_get(keys, k)));
        }
        if (json_integer_value(json_object_get(e, "port")) != 0) {
            fprintf(out, " (port %lld)", (long long)json_integer_value(json_object_get(e, "port")));
        }
        fputc('\n', out);
        print_phys(plan, json_string_value(json_object_get(e, "from")), depth + 2, out);
    }
}

int
lm_sql_explain(const char *text, size_t len, const lm_sql_opts *opts, FILE *out, lm_sql_diag *d)
{
    lm_sql_tree *tree = NULL;
    lm_sql_lp *lp = NULL;
    json_t *plan;
    int rv = build(text, len, opts, &plan, &tree, &lp, NULL, d);

    if (rv != LM_OK) {
        return rv;
    }
    fputs("== logical plan ==\n", out);
    lm_sql_lp_print(lp, out);
    fprintf(out, "== physical plan (parallelism %lld) ==\n",
            (long long)json_integer_value(json_object_get(plan, "parallelism")));
    const json_t *ops = json_object_get(plan, "operators");
    const json_t *edges = json_object_get(plan, "edges");
    for (size_t i = 0; i < json_array_size(ops); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(ops, i), "id"));
        bool feeds = false;
        for (size_t k = 0; k < json_array_size(edges) && !feeds; k++) {
            feeds = strcmp(json_string_value(json_object_get(json_array_get(edges, k), "from")),
                           id) == 0;
        }
        if (!feeds) {
            print_phys(plan, id, 1, out);
        }
    }
    json_decref(plan);
    lm_sql_lp_free(lp);
    lm_sql_tree_free(tree);
    return LM_OK;
}

void
lm_sql_diag_print(const lm_sql_diag *d, const char *origin, const char *text, size_t len, FILE *out)
{
    size_t start = 0, line = 1;

    if (d->pos.line == 0) {
        fprintf(out, "%s: error: %s\n", origin, d->msg);
        return;
    }
    fprintf(out, "%s:%u:%u: error: %s\n", origin, d->pos.line, d->pos.col, d->msg);
    for (size_t i = 0; i < len && line < d->pos.line; i++) {
        if (text[i] == '\n') {
            line++;
            start = i + 1;
        }
    }
    if (line != d->pos.line) {
        return;
    }
    size_t end = start;
    while (end < len && text[end] != '\n' && text[end] != '\r') {
        end++;
    }
    fprintf(out, "  %.*s\n  ", (int)(end - start), text + start);
    for (size_t i = 1; i < d->pos.col && start + i - 1 < end; i++) {
        fputc(text[start + i - 1] == '\t' ? '\t' : ' ', out);
    }
    fputs("^\n", out);
}
