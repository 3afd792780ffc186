/*
 * lm_text.c: edit distance and suggestions.
 */
#include "lm_text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t
lm_text_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t r0[LM_TEXT_MAX + 1], r1[LM_TEXT_MAX + 1], r2[LM_TEXT_MAX + 1];
    size_t *pp = r0, *prev = r1, *cur = r2;

    if (la > LM_TEXT_MAX || lb > LM_TEXT_MAX) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) {
                d = cur[j - 1] + 1;
            }
            if (prev[j - 1] + cost < d) {
                d = prev[j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < d) {
                d = pp[j - 2] + 1;
            }
            cur[j] = d;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *
lm_text_closest(const char *word, const char *const *cands, size_t n)
{
    size_t len = strlen(word);
    size_t limit = len / 5 < 1 ? 1 : (len / 5 > 3 ? 3 : len / 5);
    size_t best = SIZE_MAX;
    const char *pick = NULL;

    for (size_t i = 0; i < n; i++) {
        size_t d = lm_text_distance(word, cands[i]);
        if (d < best) {
            best = d;
            pick = cands[i];
        }
    }
    return best > 0 && best <= limit ? pick : NULL;
}

char *
lm_text_suggest(const char *word, const char *const *cands, size_t n, char *out, size_t cap)
{
    const char *c = lm_text_closest(word, cands, n);

    if (c != NULL) {
        snprintf(out, cap, " (did you mean '%s'?)", c);
    } else if (cap > 0) {
        out[0] = '\0';
    }
    return out;
}
