/*
 * lm_jobboard.h: the job board: the latest live figures of each job
 * (per-operator records in and out, where it runs), published by its job
 * controller and read by the REST API.
 *
 * A REST request for a job must not wait on the job's controller, which
 * may stop at any moment (the job ends); so the controller posts its
 * figures here as they change and the API reads them without a message.
 * An entry stays after its job ends, with the job's last figures, until
 * the board is freed (the controller stops) or lm_jobboard_remove.
 * Thread-safe: one mutex, held for a copy.
 */
#ifndef LM_JOBBOARD_H
#define LM_JOBBOARD_H

#include <stdint.h>

#include "lm_err.h"

typedef struct lm_jobboard lm_jobboard;

/* A new, empty board. LM_OK or LM_ENOMEM. */
int lm_jobboard_new(lm_jobboard **out);

/* Frees the board and its entries. NULL is a no-op. */
void lm_jobboard_free(lm_jobboard *b);

/* Sets job's entry to json (a JSON object's text, copied). LM_OK or
 * LM_ENOMEM (the old entry is kept). */
int lm_jobboard_put(lm_jobboard *b, int64_t job, const char *json);

/* A copy of job's entry (the caller frees it), or NULL when there is none
 * (or out of memory). */
char *lm_jobboard_get(lm_jobboard *b, int64_t job);

/* Drops job's entry, if any. */
void lm_jobboard_remove(lm_jobboard *b, int64_t job);

#endif /* LM_JOBBOARD_H */
