/*
 * lm_job.c: cutting a plan into chains and laying out their channels.
 */
#include "lm_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
job_free(lm_job *job)
{
    if (job == NULL) {
        return;
    }
    for (uint32_t c = 0; c < job->nchains; c++) {
        free(job->chains[c].ops);
        free(job->chains[c].subtasks);
        free(job->chains[c].out_edges);
        free(job->chains[c].out_off);
    }
    free(job->chains);
    free(job->chain_of_op);
    free(job->checkpoint_dir);
    free(job->id);
    lm_plan_free(job->plan);
    free(job);
}

void
lm_job_retain(lm_job *job)
{
    atomic_fetch_add_explicit(&job->refs, 1, memory_order_relaxed);
}

void
lm_job_release(lm_job *job)
{
    if (job != NULL && atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) == 1) {
        job_free(job);
    }
}

/* True when op continues the chain of its single upstream. */
static bool
chained(const lm_plan *plan, const lm_plan_op *op)
{
    const lm_plan_edge *e;

    if (op->def.ninputs != 1) {
        return false;
    }
    e = &plan->edges[op->in_edge[0]];
    return e->kind == LM_EDGE_FORWARD && plan->ops[e->from].nout == 1 &&
           plan->ops[e->from].def.parallelism == op->def.parallelism;
}

const lm_plan_edge *
lm_job_in_edge(const lm_job *job, const lm_chain *c, uint32_t port)
{
    const lm_plan_op *head = &job->plan->ops[c->ops[0]];
    return &job->plan->edges[head->in_edge[port]];
}

int
lm_job_new(const char *id, lm_plan *plan, lm_job **out)
{
    lm_job *job = calloc(1, sizeof(*job));
    uint32_t n = plan->nops;

    if (job == NULL) {
        lm_plan_free(plan);
        return LM_ENOMEM;
    }
    job->plan = plan;
    atomic_init(&job->refs, 1);
    job->id = strdup(id);
    job->checkpoint_dir = strdup("");
    job->chain_of_op = calloc(n, sizeof(uint32_t));
    job->chains = calloc(n, sizeof(lm_chain));
    if (job->id == NULL || job->checkpoint_dir == NULL || job->chain_of_op == NULL ||
        job->chains == NULL) {
        job_free(job);
        return LM_ENOMEM;
    }
    /* In topological order: an operator joins its upstream's chain or
     * starts one; a chain's operators are appended head to tail. */
    for (uint32_t t = 0; t < n; t++) {
        uint32_t o = plan->topo[t];
        const lm_plan_op *op = &plan->ops[o];
        lm_chain *c;
        if (chained(plan, op)) {
            c = &job->chains[job->chain_of_op[plan->edges[op->in_edge[0]].from]];
        } else {
            c = &job->chains[job->nchains];
            c->index = job->nchains++;
            c->parallelism = op->def.parallelism;
            if ((c->ops = calloc(n, sizeof(uint32_t))) == NULL) {
                job_free(job);
                return LM_ENOMEM;
            }
        }
        c->ops[c->nops++] = o;
        job->chain_of_op[o] = c->index;
    }
    for (uint32_t ci = 0; ci < job->nchains; ci++) {
        lm_chain *c = &job->chains[ci];
        const lm_plan_op *head = &plan->ops[c->ops[0]];
        const lm_plan_op *tail = &plan->ops[c->ops[c->nops - 1]];
        c->subtasks = calloc(c->parallelism, sizeof(lm_addr));
        c->out_edges = calloc(tail->nout + 1, sizeof(uint32_t));
        c->out_off = calloc(tail->nout + 1, sizeof(uint32_t));
        if (c->subtasks == NULL || c->out_edges == NULL || c->out_off == NULL) {
            job_free(job);
            return LM_ENOMEM;
        }
        c->nports = head->def.ninputs;
        for (uint32_t p = 0; p < c->nports; p++) {
            const lm_plan_edge *e = &plan->edges[head->in_edge[p]];
            c->port_off[p] = c->nin;
            c->port_cnt[p] = e->kind == LM_EDGE_FORWARD ? 1 : plan->ops[e->from].def.parallelism;
            c->nin += c->port_cnt[p];
        }
        c->nout_edges = tail->nout;
        for (uint32_t k = 0; k < tail->nout; k++) {
            const lm_plan_edge *e = &plan->edges[tail->out_edges[k]];
            c->out_edges[k] = tail->out_edges[k];
            c->out_off[k] = c->nout;
            c->nout += e->kind == LM_EDGE_FORWARD ? 1 : plan->ops[e->to].def.parallelism;
        }
    }
    *out = job;
    return LM_OK;
}

int
lm_job_checkpoint_dir(const lm_job *job, uint64_t epoch, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s/checkpoints/checkpoint-%07llu", job->checkpoint_dir, job->id,
                     (unsigned long long)epoch);
    return n > 0 && (size_t)n < cap ? LM_OK : LM_ETOOBIG;
}

int
lm_job_table_path(const lm_job *job, uint64_t epoch, const char *op, const char *table,
                  uint32_t subtask, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s/checkpoints/checkpoint-%07llu/operator-%s/table-%s-%03u",
                     job->checkpoint_dir, job->id, (unsigned long long)epoch, op, table, subtask);
    return n > 0 && (size_t)n < cap ? LM_OK : LM_ETOOBIG;
}
