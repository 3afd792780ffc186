/*
 * lm_mem.c: memory helpers (see lm_mem.h).
 */
#include "lm_mem.h"

#include <stdint.h>
#include <stdlib.h>

int
lm_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap != 0 ? *cap : 8;
    void *a;

    if (need <= *cap) {
        return LM_OK;
    }
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) {
            return LM_ENOMEM;
        }
        c *= 2;
    }
    if ((a = realloc(*arr, c * elem)) == NULL) {
        return LM_ENOMEM;
    }
    *arr = a;
    *cap = c;
    return LM_OK;
}
