/*
 * lm_op.c: the registry of operator kinds, and helpers kinds use to read
 * their configuration with messages that name the key.
 */
#include "lm_op.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lm_text.h"

/* Every kind, defined in its own file. */
#define LM_OP_KINDS(X)                                                                             \
    X(lm_op_impulse)                                                                               \
    X(lm_op_watermark)                                                                             \
    X(lm_op_calc)                                                                                  \
    X(lm_op_blackhole)                                                                             \
    X(lm_op_stdout)                                                                                \
    X(lm_op_file_sink)                                                                             \
    X(lm_op_nexmark)                                                                               \
    X(lm_op_file_source)                                                                           \
    X(lm_op_window_aggregate)                                                                      \
    X(lm_op_aggregate)                                                                             \
    X(lm_op_join)                                                                                  \
    X(lm_op_interval_join)                                                                         \
    X(lm_op_window_join)                                                                           \
    X(lm_op_union)

#define LM_OP_KIND_DECL(sym) extern const lm_op_kind sym;
LM_OP_KINDS(LM_OP_KIND_DECL)
#undef LM_OP_KIND_DECL

static const lm_op_kind *const kinds[] = {
#define LM_OP_KIND_REF(sym) &sym,
    LM_OP_KINDS(LM_OP_KIND_REF)
#undef LM_OP_KIND_REF
        NULL};

static const lm_op_kind **extra; /* registered at run time */
static size_t nextra;

const lm_op_kind *
lm_op_kind_find(const char *name)
{
    for (size_t i = 0; kinds[i] != NULL; i++) {
        if (strcmp(kinds[i]->name, name) == 0) {
            return kinds[i];
        }
    }
    for (size_t i = 0; i < nextra; i++) {
        if (strcmp(extra[i]->name, name) == 0) {
            return extra[i];
        }
    }
    return NULL;
}

int
lm_op_kind_register(const lm_op_kind *kind)
{
    const lm_op_kind **e;

    if (lm_op_kind_find(kind->name) != NULL) {
        return LM_EEXIST;
    }
    if ((e = realloc(extra, (nextra + 1) * sizeof(*e))) == NULL) {
        return LM_ENOMEM;
    }
    extra = e;
    extra[nextra++] = kind;
    return LM_OK;
}

uint32_t
lm_op_kind_names(const char **names, uint32_t cap)
{
    uint32_t n = 0;
    for (size_t i = 0; kinds[i] != NULL && n < cap; i++) {
        names[n++] = kinds[i]->name;
    }
    for (size_t i = 0; i < nextra && n < cap; i++) {
        names[n++] = extra[i]->name;
    }
    return n;
}

int
lm_op_json_only(const json_t *obj, const char *const *keys, const char *where, lm_error *err)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        size_t n = 0;
        bool ok = false;
        while (keys[n] != NULL) {
            ok |= strcmp(keys[n++], key) == 0;
        }
        if (!ok) {
            char hint[96];
            return lm_error_set(err, LM_EINVAL, "%s: unknown key '%s'%s", where, key,
                                lm_text_suggest(key, keys, n, hint, sizeof(hint)));
        }
    }
    return LM_OK;
}

int
lm_op_cfg_only(const json_t *cfg, const char *const *keys, lm_error *err)
{
    return lm_op_json_only(cfg, keys, "config", err);
}

int
lm_op_cfg_str(const json_t *cfg, const char *key, const char *def, const char **out, lm_error *err)
{
    const json_t *v = json_object_get(cfg, key);

    if (v == NULL) {
        if (def == NULL) {
            return lm_error_set(err, LM_ENOTFOUND, "config: \"%s\" is required", key);
        }
        *out = def;
        return LM_OK;
    }
    if (!json_is_string(v)) {
        return lm_error_set(err, LM_EINVAL, "config: \"%s\" must be a string", key);
    }
    *out = json_string_value(v);
    return LM_OK;
}

int
lm_op_cfg_i64(const json_t *cfg, const char *key, int64_t def, int64_t min, int64_t max,
              int64_t *out, lm_error *err)
{
    const json_t *v = json_object_get(cfg, key);
    int64_t x;

    if (v == NULL) {
        *out = def;
        return LM_OK;
    }
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        /* Connector options are often written as strings ('10000'). */
        char *end;
        errno = 0;
        x = strtoll(json_string_value(v), &end, 10);
        if (*end != '\0' || end == json_string_value(v) || errno != 0) {
            return lm_error_set(err, LM_EINVAL, "config: \"%s\" must be an integer, got '%s'", key,
                                json_string_value(v));
        }
    } else {
        return lm_error_set(err, LM_EINVAL, "config: \"%s\" must be an integer", key);
    }
    if (x < min || x > max) {
        return lm_error_set(err, LM_EINVAL, "config: \"%s\" is %lld, out of range (%lld..%lld)",
                            key, (long long)x, (long long)min, (long long)max);
    }
    *out = x;
    return LM_OK;
}

int
lm_op_cfg_bool(const json_t *cfg, const char *key, bool def, bool *out, lm_error *err)
{
    const json_t *v = json_object_get(cfg, key);

    if (v == NULL) {
        *out = def;
        return LM_OK;
    }
    if (!json_is_boolean(v)) {
        return lm_error_set(err, LM_EINVAL, "config: \"%s\" must be true or false", key);
    }
    *out = json_is_true(v);
    return LM_OK;
}

int
lm_op_column(const lm_schema *s, const char *name, uint32_t *out, lm_error *err)
{
    const char *names[LM_SCHEMA_MAX_FIELDS];
    int i = lm_schema_find(s, name);
    char hint[300];

    if (i >= 0) {
        *out = (uint32_t)i;
        return LM_OK;
    }
    for (uint32_t k = 0; k < s->nfields; k++) {
        names[k] = s->fields[k].name;
    }
    return lm_error_set(err, LM_EINVAL, "unknown column '%s'%s", name,
                        lm_text_suggest(name, names, s->nfields, hint, sizeof(hint)));
}
