/*
 * check_mpscq.c: the MPSC queue and its empty-to-non-empty edge.
 */
#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

#include "lm_mpscq.h"

typedef struct item {
    lm_mpscq_node node; /* first: the queue hands back node pointers */
    int producer;
    long seq;
} item;

START_TEST(test_mpscq_edges_and_fifo)
{
    lm_mpscq q;
    item a = {.seq = 1}, b = {.seq = 2};

    lm_mpscq_init(&q);
    ck_assert(lm_mpscq_pop(&q) == NULL);
    ck_assert(lm_mpscq_push(&q, &a.node)); /* starts marked: the first push is the edge */
    ck_assert(!lm_mpscq_push(&q, &b.node));
    ck_assert(!lm_mpscq_mark_empty(&q)); /* not empty */
    ck_assert_ptr_eq(lm_mpscq_pop(&q), &a.node);
    ck_assert_ptr_eq(lm_mpscq_pop(&q), &b.node);
    ck_assert(lm_mpscq_pop(&q) == NULL);
    ck_assert(lm_mpscq_mark_empty(&q));
    ck_assert(lm_mpscq_push(&q, &a.node)); /* edge again after the mark */
    ck_assert_ptr_eq(lm_mpscq_pop(&q), &a.node);
}
END_TEST

/* A consumer that wakes for another reason and finds its queue still
 * marked must see it as marked (regression: loops spun forever). */
START_TEST(test_mpscq_mark_is_idempotent)
{
    lm_mpscq q;
    item a = {.seq = 1};

    lm_mpscq_init(&q);
    ck_assert(lm_mpscq_mark_empty(&q));
    ck_assert(lm_mpscq_mark_empty(&q));
    ck_assert(lm_mpscq_push(&q, &a.node));
    ck_assert(!lm_mpscq_mark_empty(&q));
}
END_TEST

#define PRODUCERS    4
#define PER_PRODUCER 200000

typedef struct stress {
    lm_mpscq q;
    sem_t wake; /* posted on each empty-to-non-empty edge */
    item *items;
    pthread_barrier_t go;
} stress;

typedef struct producer_arg {
    stress *s;
    int id;
} producer_arg;

static void *
produce(void *arg)
{
    producer_arg *pa = arg;
    stress *s = pa->s;

    pthread_barrier_wait(&s->go);
    for (long i = 0; i < PER_PRODUCER; i++) {
        item *it = &s->items[pa->id * PER_PRODUCER + i];
        it->producer = pa->id;
        it->seq = i;
        if (lm_mpscq_push(&s->q, &it->node)) {
            sem_post(&s->wake);
        }
    }
    return NULL;
}

/* Many producers, one consumer that sleeps whenever it finds the queue
 * empty and relies on the edge to be woken: every item arrives once, in
 * each producer's order, and no wake-up is lost (a lost one hangs the
 * test into its timeout). */
START_TEST(test_mpscq_many_producers_lose_nothing)
{
    stress s;
    pthread_t th[PRODUCERS];
    producer_arg pa[PRODUCERS];
    long next[PRODUCERS] = {0};
    long got = 0;

    lm_mpscq_init(&s.q);
    sem_init(&s.wake, 0, 0);
    s.items = calloc((size_t)PRODUCERS * PER_PRODUCER, sizeof(item));
    ck_assert_ptr_nonnull(s.items);
    pthread_barrier_init(&s.go, NULL, PRODUCERS);
    for (int i = 0; i < PRODUCERS; i++) {
        pa[i] = (producer_arg){&s, i};
        pthread_create(&th[i], NULL, produce, &pa[i]);
    }
    while (got < (long)PRODUCERS * PER_PRODUCER) {
        lm_mpscq_node *n = lm_mpscq_pop(&s.q);
        if (n == NULL) {
            if (lm_mpscq_mark_empty(&s.q)) {
                sem_wait(&s.wake);
            }
            continue;
        }
        item *it = (item *)n;
        ck_assert_int_eq(it->seq, next[it->producer]);
        next[it->producer]++;
        got++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(next[i], PER_PRODUCER);
    }
    ck_assert(lm_mpscq_pop(&s.q) == NULL);
    free(s.items);
    sem_destroy(&s.wake);
}
END_TEST

Suite *
mpscq_suite(void)
{
    Suite *s = suite_create("mpscq");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mpscq_edges_and_fifo);
    tcase_add_test(tc, test_mpscq_mark_is_idempotent);
    tcase_add_test(tc, test_mpscq_many_producers_lose_nothing);
    suite_add_tcase(s, tc);
    return s;
}
