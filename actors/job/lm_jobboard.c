/*
 * lm_jobboard.c: the job board (see lm_jobboard.h): a small array of
 * (job, text) behind a mutex; a controller has tens of jobs.
 */
#include "lm_jobboard.h"
#include "lm_mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    int64_t job;
    char *json;
} entry;

struct lm_jobboard {
    pthread_mutex_t lock;
    entry *e;
    size_t n, cap;
};

int
lm_jobboard_new(lm_jobboard **out)
{
    lm_jobboard *b = calloc(1, sizeof(*b));

    if (b == NULL) {
        return LM_ENOMEM;
    }
    pthread_mutex_init(&b->lock, NULL);
    *out = b;
    return LM_OK;
}

void
lm_jobboard_free(lm_jobboard *b)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        free(b->e[i].json);
    }
    free(b->e);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* The entry of job, or NULL; with the lock held. */
static entry *
find(lm_jobboard *b, int64_t job)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->e[i].job == job) {
            return &b->e[i];
        }
    }
    return NULL;
}

int
lm_jobboard_put(lm_jobboard *b, int64_t job, const char *json)
{
    char *copy = strdup(json);
    entry *e;
    int rv = LM_OK;

    if (copy == NULL) {
        return LM_ENOMEM;
    }
    pthread_mutex_lock(&b->lock);
    if ((e = find(b, job)) == NULL) {
        if ((rv = lm_grow((void **)&b->e, &b->cap, b->n + 1, sizeof(entry))) != LM_OK) {
            goto out;
        }
        e = &b->e[b->n++];
        e->job = job;
        e->json = NULL;
    }
    free(e->json);
    e->json = copy;
    copy = NULL;
out:
    pthread_mutex_unlock(&b->lock);
    free(copy);
    return rv;
}

char *
lm_jobboard_get(lm_jobboard *b, int64_t job)
{
    char *copy = NULL;
    entry *e;

    pthread_mutex_lock(&b->lock);
    if ((e = find(b, job)) != NULL) {
        copy = strdup(e->json);
    }
    pthread_mutex_unlock(&b->lock);
    return copy;
}

void
lm_jobboard_remove(lm_jobboard *b, int64_t job)
{
    entry *e;

    pthread_mutex_lock(&b->lock);
    if ((e = find(b, job)) != NULL) {
        free(e->json);
        *e = b->e[--b->n];
    }
    pthread_mutex_unlock(&b->lock);
}
