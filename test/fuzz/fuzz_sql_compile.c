/*
 * fuzz_sql_compile.c: libFuzzer target for the whole SQL compiler: parser,
 * binder, planner, and the engine's check of the plan it makes.
 *
 * Each input is a pipeline (the seeds are the Nexmark pipelines; the
 * fuzzer mutates names, types, clauses). The compiler must never crash,
 * hang or leak; a rejected pipeline gets one line of message and a
 * position inside the text (or line 0 for a plan-level refusal); an
 * accepted one is a plan the engine loads (lm_sql_compile checks that
 * itself), and EXPLAIN of it succeeds too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_log.h"
#include "lm_sql.h"

static void
need(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "compiler broke a promise: %s\n", what);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size > 0 ? size : 1);
    json_t *plan = NULL;
    lm_sql_diag d;
    FILE *sink;
    int rc;

    if (text == NULL) {
        return 0;
    }
    if (size > 0) {
        memcpy(text, data, size);
    }
    rc = lm_sql_compile(text, size, NULL, &plan, NULL, &d);
    if (rc == LM_OK) {
        need(plan != NULL && json_array_size(json_object_get(plan, "operators")) > 0, "a plan");
        json_decref(plan);
        if ((sink = fopen("/dev/null", "w")) != NULL) {
            need(lm_sql_explain(text, size, NULL, sink, &d) == LM_OK, "EXPLAIN of what compiles");
            fclose(sink);
        }
    } else {
        uint32_t lines = 1;
        for (size_t i = 0; i < size; i++) {
            lines += text[i] == '\n';
        }
        need(rc == LM_EINVAL || rc == LM_ENOMEM, "error code");
        need(plan == NULL, "a plan with an error");
        need(d.msg[0] != '\0' && strchr(d.msg, '\n') == NULL, "a one-line message");
        need(d.pos.line <= lines, "an error position inside the text");
    }
    free(text);
    return 0;
}
