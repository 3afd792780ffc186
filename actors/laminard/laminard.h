/*
 * laminard.h: what the daemon's command files share.
 */
#ifndef LAMINARD_H
#define LAMINARD_H

#include <stdint.h>

#include "lm_config.h"
#include "lm_rt.h"
#include "lm_transport.h"

/* Starts logging and the runtime from cfg (no transport). 0 or -1 (the
 * reason printed). */
int laminard_start_rt(const lm_config *cfg, uint32_t node_id, lm_rt **rt);

/* Starts logging, the runtime and the transport listening at listen. */
int laminard_start_node(const lm_config *cfg, const char *listen, uint32_t node_id, lm_rt **rt,
                        lm_transport **t);

/* The daemon modes (daemon.c). Each runs until SIGTERM or SIGINT and
 * returns the process's exit status. */
int laminard_standalone(const lm_config *cfg);
int laminard_controller(const lm_config *cfg);
int laminard_worker(const lm_config *cfg, const char *listen);

#endif /* LAMINARD_H */
