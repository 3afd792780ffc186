/*
 * lm_mem.h: memory helpers: growing an array by doubling.
 */
#ifndef LM_MEM_H
#define LM_MEM_H

#include <stddef.h>

#include "lm_err.h"

/* Makes room for at least need elements of elem bytes in the array *arr,
 * whose capacity is *cap elements: when need > *cap, reallocates it to
 * twice the capacity (8 at first) or more, and updates *arr and *cap.
 * Returns LM_OK, or LM_ENOMEM with *arr and *cap unchanged. */
int lm_grow(void **arr, size_t *cap, size_t need, size_t elem);

#endif /* LM_MEM_H */
