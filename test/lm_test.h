/*
 * lm_test.h: helpers shared by the Check suites.
 *
 * A probe is an actor that queues every message it receives (retained)
 * for the test thread, which waits for them with a deadline. Peers are
 * helper processes (build/<variant>/test/lm-test-peer) started with
 * posix_spawn (nng must not be used after a bare fork), killed with the
 * test, and reporting their addresses on a pipe.
 */
#ifndef LM_TEST_H
#define LM_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lm_rt.h"

typedef struct lm_probe lm_probe;

/* Spawns a probe actor on rt (loop -1 = any). */
lm_probe *lm_probe_new(lm_rt *rt, int loop);
lm_addr lm_probe_addr(const lm_probe *p);
/* Waits up to timeout_ms for the next message whose type is type (0 = any
 * type); messages of other types before it are discarded. Returns the
 * message (caller releases) or NULL on timeout. */
lm_msg *lm_probe_wait(lm_probe *p, uint32_t type, int timeout_ms);
/* Messages queued and not yet taken. */
int lm_probe_pending(lm_probe *p);
/* Frees the probe's queue; call after lm_rt_free (the actor is gone). */
void lm_probe_free(lm_probe *p);

/* How much slower than normal the tests run: $LM_TEST_SLOWDOWN (for
 * valgrind or a loaded machine), default 1. Deadlines are multiplied by it. */
int lm_test_slowdown(void);

/* Monotonic milliseconds. */
int64_t lm_test_now_ms(void);

/* A peer process running lm-test-peer. */
typedef struct lm_peer {
    pid_t pid;     /* the process */
    int out;       /* read end of its stdout */
    lm_addr echo;  /* its echo actor, from its READY line */
    char url[256]; /* its front door, from its READY line */
} lm_peer;

/* Starts lm-test-peer with node id and listen URL (and, when route is not
 * NULL, a route "ID=URL" to another node) and waits up to timeout_ms for
 * its READY line. Returns 0 or -1. */
int lm_peer_start(lm_peer *p, uint32_t node, const char *url, const char *route, int timeout_ms);
/* Sends sig and reaps the process. */
void lm_peer_kill(lm_peer *p, int sig);

/* A fresh directory under /tmp for one test; returns a static buffer. */
const char *lm_test_tmpdir(void);

#endif /* LM_TEST_H */
