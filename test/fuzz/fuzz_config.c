/*
 * fuzz_config.c: libFuzzer target for the configuration reader.
 *
 * Every input is loaded as a YAML configuration file. A rejected input
 * must give a one-line message. An accepted one must survive a dump and a
 * reload with the same value for every key (secrets aside: dump masks
 * them), and the input bytes are tried as a --set value for every key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_config.h"

static void
check_round_trip(const lm_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    lm_config back;
    lm_error err;

    if (f == NULL || lm_config_dump(c, f) != LM_OK) {
        abort();
    }
    fclose(f);
    if (lm_config_init(&back) != LM_OK) {
        abort();
    }
    if (lm_config_load_string(&back, "dump", text, len, NULL, &err) != LM_OK) {
        fprintf(stderr, "dump did not load back: %s\n%s\n", err.msg, text);
        abort();
    }
    for (size_t i = 0; i < lm_config_key_count(); i++) {
        const char *key = lm_config_key_name(i);
        char x[4096], y[4096];
        if (strstr(key, "secret") != NULL || strstr(key, "postgres.url") != NULL) {
            continue;
        }
        lm_config_get_text(c, key, x, sizeof(x));
        lm_config_get_text(&back, key, y, sizeof(y));
        if (strcmp(x, y) != 0) {
            fprintf(stderr, "%s: %s became %s\n", key, x, y);
            abort();
        }
    }
    lm_config_fini(&back);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *env[] = {"A=1", "B=", "LAMINAR_WORKER_SLOTS=3", NULL};
    lm_config c;
    lm_error err;

    if (lm_config_init(&c) != LM_OK) {
        abort();
    }
    if (lm_config_load_string(&c, "fuzz.yaml", (const char *)data, size, env, &err) == LM_OK) {
        char *value = strndup((const char *)data, size);
        check_round_trip(&c);
        for (size_t i = 0; value != NULL && i < lm_config_key_count(); i++) {
            lm_config_set(&c, lm_config_key_name(i), value, &err);
        }
        free(value);
    } else if (strchr(err.msg, '\n') != NULL) {
        abort(); /* error messages are one line */
    }
    lm_config_fini(&c);
    return 0;
}
