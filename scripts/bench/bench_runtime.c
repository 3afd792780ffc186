/*
 * bench_runtime.c: lm-bench-runtime, the runtime benchmark.
 *
 *   lm-bench-runtime [--quick] [--json FILE] [--only msgs|ipc|tcp|nng]
 *
 * Prints a table and appends one JSON line per figure to FILE:
 *   {"bench": "runtime", "metric": NAME, "value": NUMBER, "unit": UNIT}
 *
 * 1. Messages per second between two actors on one loop and on two loops
 *    (a producer with a window of credit, a consumer that grants more).
 * 2. Rows per second of 4096-row batches (4 int64 columns and one utf8
 *    column of ~60 bytes) from an actor in this process to an actor in a
 *    second process, over ipc:// and over tcp:// loopback: every batch is
 *    encoded by the sender and decoded (and validated) by the receiver.
 * 3. The same-sized messages over raw nng pair1 between two processes,
 *    without encode or decode: the transport's limit here; and the ratio
 *    of 2 to 3.
 * The receiving processes are this program run again with --role.
 *
 * Throughput on a shared or virtual machine drifts from minute to minute,
 * so the batch figures interleave the actor and raw runs and report the
 * median of three rounds; the ratio is taken within each round.
 */
#include <errno.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lm_batch.h"
#include "lm_log.h"
#include "lm_proto.h"
#include "lm_rt.h"
#include "lm_transport.h"

extern char **environ;

#define BATCH_ROWS   4096
#define WINDOW       16 /* batches in flight */
#define CREDIT_EVERY 4  /* the sink grants credit every this many batches */

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- shared completion ------------------------------------------------ */

typedef struct done_flag {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int done;
} done_flag;

static void
done_set(done_flag *d)
{
    pthread_mutex_lock(&d->lock);
    d->done = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->lock);
}

static int
done_wait(done_flag *d, int seconds)
{
    struct timespec dl;
    int rv = 0;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += seconds;
    pthread_mutex_lock(&d->lock);
    while (!d->done && rv == 0) {
        rv = pthread_cond_timedwait(&d->cv, &d->lock, &dl);
    }
    pthread_mutex_unlock(&d->lock);
    return d->done ? 0 : -1;
}

/* --- 1. messages between actors --------------------------------------- */

typedef struct msg_bench {
    uint64_t n;       /* messages to send */
    lm_addr consumer; /* set before the start message */
    uint64_t sent, credit, got;
    int64_t t0, t1;
    done_flag done;
} msg_bench;

static int
consumer_handle(lm_actor *self, lm_msg *m)
{
    msg_bench *b = lm_actor_state(self);
    lm_ping_msg p;

    if (lm_decode_ping(m, &p, NULL) != LM_OK) {
        return LM_EPROTO;
    }
    if (++b->got % 1024 == 0) {
        lm_credit_msg c = {0, 1024};
        lm_tell(self, m->src, LM_MT_CREDIT, &c);
    }
    if (b->got == b->n) {
        b->t1 = now_ns();
        done_set(&b->done);
    }
    return LM_OK;
}

/* Sends while it has credit, at most 256 per turn, then yields by sending
 * itself a CREDIT of 0 so the loop's other actors run. */
static int
producer_handle(lm_actor *self, lm_msg *m)
{
    msg_bench *b = lm_actor_state(self);
    lm_credit_msg c;
    int k = 0;

    if (lm_decode_credit(m, &c, NULL) != LM_OK) {
        return LM_EPROTO;
    }
    b->credit += c.batches;
    while (b->credit > 0 && b->sent < b->n && k++ < 256) {
        lm_ping_msg p = {b->sent, 0, {NULL, 0}};
        int rv = lm_tell(self, b->consumer, LM_MT_PING, &p);
        if (rv != LM_OK) {
            return rv;
        }
        b->sent++;
        b->credit--;
    }
    if (b->sent < b->n && b->credit > 0) {
        lm_credit_msg again = {0, 0};
        return lm_tell(self, lm_actor_addr(self), LM_MT_CREDIT, &again);
    }
    return LM_OK;
}

static int
set_state_init(lm_actor *self, void *arg)
{
    lm_actor_set_state(self, arg);
    return LM_OK;
}

static const lm_actor_type consumer_type = {"consumer", set_state_init, consumer_handle, NULL};
static const lm_actor_type producer_type = {"producer", set_state_init, producer_handle, NULL};

static double
bench_msgs(int loops, uint64_t n)
{
    lm_rt_opts o = {1, loops, 0, "bench"};
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    msg_bench b = {.n = n};
    lm_addr prod;
    lm_rt *rt;
    lm_credit_msg start = {0, 8192};

    pthread_mutex_init(&b.done.lock, NULL);
    pthread_cond_init(&b.done.cv, NULL);
    if (lm_rt_new(&o, &rt) != LM_OK) {
        return 0;
    }
    so.loop = loops - 1;
    lm_spawn(rt, &consumer_type, &b, &so, &b.consumer);
    so.loop = 0;
    lm_spawn(rt, &producer_type, &b, &so, &prod);
    b.t0 = now_ns();
    lm_rt_tell(rt, prod, LM_MT_CREDIT, &start);
    if (done_wait(&b.done, 120) != 0) {
        fprintf(stderr, "bench: message benchmark did not finish\n");
        lm_rt_free(rt, 1000);
        return 0;
    }
    lm_rt_free(rt, 1000);
    return (double)n / ((double)(b.t1 - b.t0) / 1e9);
}

/* --- 2. batches between processes ------------------------------------- */

static lm_batch *
make_batch(void)
{
    lm_field f[] = {{"auction", LM_TYPE_INT64, false},
                    {"bidder", LM_TYPE_INT64, false},
                    {"price", LM_TYPE_INT64, false},
                    {"date_time", LM_TYPE_INT64, false},
                    {"url", LM_TYPE_UTF8, false}};
    lm_schema *s;
    lm_batch *b;
    char url[80];

    if (lm_schema_new(f, 5, &s, NULL) != LM_OK || lm_batch_new(s, BATCH_ROWS, &b) != LM_OK) {
        exit(1);
    }
    lm_schema_release(s);
    for (int r = 0; r < BATCH_ROWS; r++) {
        lm_value v[5];
        int len = snprintf(url, sizeof(url), "https://www.nexmark.com/item.htm?query=1&id=%08d", r);
        memset(v, 0, sizeof(v));
        v[0].v.i = 1000 + r % 97;
        v[1].v.i = 2000 + r % 1013;
        v[2].v.i = (int64_t)r * 131 % 100000;
        v[3].v.i = 1436918400000000 + r;
        v[4].v.s.ptr = url;
        v[4].v.s.len = (uint32_t)len;
        if (lm_batch_append_row(b, v, NULL) != LM_OK) {
            exit(1);
        }
    }
    return b;
}

typedef struct sink_state {
    uint64_t batches, rows;
} sink_state;

/* Decodes each batch (validating it), counts its rows, grants credit. */
static int
sink_handle(lm_actor *self, lm_msg *m)
{
    sink_state *s = lm_actor_state(self);
    lm_batch_msg bm;
    lm_error err;

    if (m->type == LM_MT_BATCH) {
        if (lm_decode_batch(m, &bm, &err) != LM_OK) {
            return lm_actor_fail(self, err.code, "%s", err.msg);
        }
        s->rows += bm.batch->nrows;
        lm_proto_fini(LM_MT_BATCH, &bm);
        if (++s->batches % CREDIT_EVERY == 0) {
            lm_credit_msg c = {0, CREDIT_EVERY};
            lm_tell(self, m->src, LM_MT_CREDIT, &c);
        }
    } else if (m->type == LM_MT_PING) {
        /* end of a run: report the rows seen */
        lm_pong_msg p = {s->rows, (int64_t)s->batches, {NULL, 0}};
        lm_tell(self, m->src, LM_MT_PONG, &p);
        s->rows = s->batches = 0;
    }
    return LM_OK;
}

static sink_state the_sink;
static const lm_actor_type sink_type = {"sink", set_state_init, sink_handle, NULL};

/* --role sink URL: node 2 with a sink; prints READY <sink id> <url>. */
static int
role_sink(const char *url)
{
    lm_rt_opts o = {2, 2, 0, "sink"};
    lm_transport_opts to = {0};
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    lm_rt *rt;
    lm_transport *t;
    lm_addr a;
    lm_error err;
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (lm_rt_new(&o, &rt) != LM_OK) {
        return 1;
    }
    to.listen_url = url;
    to.loop = 1;
    if (lm_transport_new(rt, &to, &t, &err) != LM_OK) {
        fprintf(stderr, "bench sink: %s\n", err.msg);
        return 1;
    }
    so.loop = 0;
    lm_spawn(rt, &sink_type, &the_sink, &so, &a);
    printf("READY %llu %s\n", (unsigned long long)a.actor, lm_transport_url(t));
    fflush(stdout);
    sigwait(&set, &sig);
    lm_transport_free(t);
    lm_rt_free(rt, 1000);
    return 0;
}

typedef struct batch_bench {
    lm_batch *batch;
    lm_addr sink;
    uint64_t n, sent, credit;
    int64_t t0, t1;
    uint64_t rows_seen;
    done_flag done;
} batch_bench;

static int
sender_handle(lm_actor *self, lm_msg *m)
{
    batch_bench *b = lm_actor_state(self);

    if (m->type == LM_MT_CREDIT) {
        lm_credit_msg c;
        if (lm_decode_credit(m, &c, NULL) != LM_OK) {
            return LM_EPROTO;
        }
        b->credit += c.batches;
        while (b->credit > 0 && b->sent < b->n) {
            lm_batch_msg bm = {0, b->batch};
            int rv = lm_tell(self, b->sink, LM_MT_BATCH, &bm);
            if (rv != LM_OK) {
                return lm_actor_fail(self, rv, "send: %s", lm_strerror(rv));
            }
            b->sent++;
            b->credit--;
        }
        if (b->sent == b->n && b->credit == WINDOW) {
            /* all granted back: everything arrived; ask for the count */
            lm_ping_msg p = {0, 0, {NULL, 0}};
            b->credit++;
            return lm_tell(self, b->sink, LM_MT_PING, &p);
        }
    } else if (m->type == LM_MT_PONG) {
        lm_pong_msg p;
        if (lm_decode_pong(m, &p, NULL) == LM_OK) {
            b->rows_seen = p.seq;
        }
        b->t1 = now_ns();
        done_set(&b->done);
    }
    return LM_OK;
}

static const lm_actor_type sender_type = {"sender", set_state_init, sender_handle, NULL};

static int
read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0 || read(fd, buf + n, 1) != 1) {
            return -1;
        }
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    return -1;
}

/* Starts this program with args; returns its pid and its stdout. */
static pid_t
spawn_self(char **args, int *out)
{
    int fds[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;

    if (pipe(fds) != 0) {
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ) != 0) {
        pid = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    *out = fds[0];
    return pid;
}

static void
reap(pid_t pid, int out)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    close(out);
}

static double
bench_batches(const char *url, uint64_t n, size_t *msg_bytes)
{
    char *args[] = {"lm-bench-runtime", "--role", "sink", (char *)url, NULL};
    char line[512], sink_url[400];
    unsigned long long sink_id;
    lm_rt_opts o = {1, 2, 0, "bench"};
    lm_transport_opts to = {0};
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;
    batch_bench b = {.n = n};
    lm_rt *rt;
    lm_transport *t;
    lm_addr snd;
    lm_error err;
    lm_msg *probe_msg;
    lm_batch_msg bm;
    double rate = 0;
    int out;
    pid_t pid = spawn_self(args, &out);

    if (pid < 0 || read_line(out, line, sizeof(line), 10000) != 0 ||
        sscanf(line, "READY %llu %399s", &sink_id, sink_url) != 2) {
        fprintf(stderr, "bench: the sink process did not start\n");
        return 0;
    }
    pthread_mutex_init(&b.done.lock, NULL);
    pthread_cond_init(&b.done.cv, NULL);
    b.batch = make_batch();
    bm = (lm_batch_msg){0, b.batch};
    lm_proto_encode(LM_MT_BATCH, LM_ADDR_NONE, LM_ADDR_NONE, &bm, &probe_msg);
    *msg_bytes = probe_msg->len;
    lm_msg_release(probe_msg);
    b.sink = (lm_addr){2, sink_id};
    if (lm_rt_new(&o, &rt) != LM_OK) {
        goto out;
    }
    to.listen_url =
        strncmp(url, "ipc://", 6) == 0 ? "ipc:///tmp/lm-bench-sender.sock" : "tcp://127.0.0.1:0";
    to.loop = 1;
    if (lm_transport_new(rt, &to, &t, &err) != LM_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        lm_rt_free(rt, 1000);
        goto out;
    }
    lm_transport_add_route(t, 2, sink_url);
    so.loop = 0;
    lm_spawn(rt, &sender_type, &b, &so, &snd);
    {
        /* warm-up: let the link come up before timing */
        lm_credit_msg c = {0, WINDOW};
        uint64_t warm = b.n;
        b.n = 64;
        lm_rt_tell(rt, snd, LM_MT_CREDIT, &c);
        done_wait(&b.done, 30);
        b.done.done = 0;
        b.n = warm;
        b.sent = 0;
        b.credit = 0;
        b.t0 = now_ns();
        lm_rt_tell(rt, snd, LM_MT_CREDIT, &c);
    }
    if (done_wait(&b.done, 300) != 0) {
        fprintf(stderr, "bench: batch benchmark over %s did not finish\n", url);
    } else if (b.rows_seen != n * BATCH_ROWS) {
        fprintf(stderr, "bench: the sink saw %" PRIu64 " rows, expected %" PRIu64 "\n", b.rows_seen,
                n * BATCH_ROWS);
    } else {
        rate = (double)(n * BATCH_ROWS) / ((double)(b.t1 - b.t0) / 1e9);
    }
    lm_transport_free(t);
    lm_rt_free(rt, 1000);
out:
    lm_batch_free(b.batch);
    reap(pid, out);
    return rate;
}

/* --- 3. raw nng ------------------------------------------------------- */

/* --role nngsink URL: receives messages; every CREDIT_EVERY answers with
 * a 1-byte message (the same flow control as the actor sink). */
static int
role_nngsink(const char *url)
{
    nng_socket s;
    nng_msg *m;
    uint64_t n = 0;

    if (nng_pair1_open(&s) != 0 || nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 64u << 20) != 0 ||
        nng_listen(s, url, NULL, 0) != 0) {
        return 1;
    }
    printf("READY 0 %s\n", url);
    fflush(stdout);
    for (;;) {
        if (nng_recvmsg(s, &m, 0) != 0) {
            return 1;
        }
        nng_msg_free(m);
        if (++n % CREDIT_EVERY == 0) {
            nng_msg_alloc(&m, 1);
            nng_sendmsg(s, m, 0);
        }
    }
}

static double
bench_nng(const char *url, uint64_t n, size_t size)
{
    char *args[] = {"lm-bench-runtime", "--role", "nngsink", (char *)url, NULL};
    char line[512];
    nng_socket s;
    nng_msg *m;
    uint64_t sent = 0, acked = 0;
    int64_t t0, t1;
    int out;
    pid_t pid = spawn_self(args, &out);
    double rate = 0;

    if (pid < 0 || read_line(out, line, sizeof(line), 10000) != 0) {
        fprintf(stderr, "bench: the nng sink did not start\n");
        return 0;
    }
    if (nng_pair1_open(&s) != 0 || nng_dial(s, url, NULL, 0) != 0) {
        fprintf(stderr, "bench: cannot dial %s\n", url);
        reap(pid, out);
        return 0;
    }
    for (int pass = 0; pass < 2; pass++) {
        uint64_t total = pass == 0 ? 64 : n;
        sent = acked = 0;
        t0 = now_ns();
        while (acked < total / CREDIT_EVERY) {
            while (sent < total && sent - acked * CREDIT_EVERY < WINDOW) {
                nng_msg_alloc(&m, size);
                nng_sendmsg(s, m, 0);
                sent++;
            }
            nng_recvmsg(s, &m, 0);
            nng_msg_free(m);
            acked++;
        }
        t1 = now_ns();
    }
    rate = (double)(n * BATCH_ROWS) / ((double)(t1 - t0) / 1e9);
    nng_close(s);
    reap(pid, out);
    return rate;
}

/* --- main -------------------------------------------------------------- */

#define ROUNDS 3

static double
median(double v[ROUNDS])
{
    double a = v[0], b = v[1], c = v[2];
    if ((a <= b && b <= c) || (c <= b && b <= a)) {
        return b;
    }
    if ((b <= a && a <= c) || (c <= a && a <= b)) {
        return a;
    }
    return c;
}

static FILE *json;

static void
figure(const char *metric, double value, const char *unit)
{
    if (json != NULL) {
        fprintf(json,
                "{\"bench\": \"runtime\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}\n",
                metric, value, unit);
    }
}

int
main(int argc, char **argv)
{
    bool quick = false;
    const char *json_path = NULL, *only = NULL;
    uint64_t nmsgs, nbatches;
    size_t msg_bytes = 0;
    double m1, m2, ipc, tcp, nipc, ntcp, qipc, qtcp;
    char ipc_url[128], nng_ipc_url[128];
    lm_log_opts lo = {LM_LOG_WARN, LM_LOG_TEXT, false, true, NULL};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    lm_msg_tune_allocator();
    if (argc == 4 && strcmp(argv[1], "--role") == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        lm_log_configure(&lo, NULL);
        return strcmp(argv[2], "sink") == 0 ? role_sink(argv[3]) : role_nngsink(argv[3]);
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json_path = argv[++i];
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: lm-bench-runtime [--quick] [--json FILE] [--only msgs|ipc|tcp|nng]\n");
            return 2;
        }
    }
    lm_log_configure(&lo, NULL);
    if (json_path != NULL && (json = fopen(json_path, "a")) == NULL) {
        fprintf(stderr, "lm-bench-runtime: cannot open %s: %s\n", json_path, strerror(errno));
        return 1;
    }
    nmsgs = quick ? 1000000 : 10000000;
    nbatches = quick ? 300 : 3000;
    snprintf(ipc_url, sizeof(ipc_url), "ipc:///tmp/lm-bench-sink-%d.sock", (int)getpid());
    snprintf(nng_ipc_url, sizeof(nng_ipc_url), "ipc:///tmp/lm-bench-nng-%d.sock", (int)getpid());

    printf("Laminar runtime benchmark (%ld CPUs%s)\n\n", ncpu, quick ? ", quick run" : "");
#define RUN(part) (only == NULL || strcmp(only, part) == 0)
    m1 = RUN("msgs") ? bench_msgs(1, nmsgs) : 0;
    m2 = RUN("msgs") ? bench_msgs(2, nmsgs) : 0;
    printf("%-52s %14s\n", "actor messages (small, encoded and decoded)", "msgs/s");
    printf("  %-50s %14.0f\n", "two actors, one loop", m1);
    printf("  %-50s %14.0f\n", "two actors, two loops", m2);
    figure("msgs_per_s.one_loop", m1, "msgs/s");
    figure("msgs_per_s.two_loops", m2, "msgs/s");

    {
        lm_batch *b = make_batch();
        lm_batch_msg bm = {0, b};
        lm_msg *m;
        lm_proto_encode(LM_MT_BATCH, LM_ADDR_NONE, LM_ADDR_NONE, &bm, &m);
        msg_bytes = m->len;
        lm_msg_release(m);
        lm_batch_free(b);
    }
    {
        double r_ipc[ROUNDS] = {0}, r_tcp[ROUNDS] = {0}, r_nipc[ROUNDS] = {0}, r_ntcp[ROUNDS] = {0};
        double q_ipc[ROUNDS] = {0}, q_tcp[ROUNDS] = {0};
        for (int r = 0; r < ROUNDS; r++) {
            r_ipc[r] = RUN("ipc") ? bench_batches(ipc_url, nbatches, &msg_bytes) : 0;
            r_nipc[r] = RUN("nng") || RUN("ipc") ? bench_nng(nng_ipc_url, nbatches, msg_bytes) : 0;
            r_tcp[r] =
                RUN("tcp") ? bench_batches("tcp://127.0.0.1:47311", nbatches, &msg_bytes) : 0;
            r_ntcp[r] = RUN("nng") || RUN("tcp")
                            ? bench_nng("tcp://127.0.0.1:47312", nbatches, msg_bytes)
                            : 0;
            q_ipc[r] = r_nipc[r] > 0 ? r_ipc[r] / r_nipc[r] : 0;
            q_tcp[r] = r_ntcp[r] > 0 ? r_tcp[r] / r_ntcp[r] : 0;
        }
        ipc = median(r_ipc);
        tcp = median(r_tcp);
        nipc = median(r_nipc);
        ntcp = median(r_ntcp);
        qipc = median(q_ipc);
        qtcp = median(q_tcp);
    }
    printf("\n%-52s %14s\n", "4096-row batches between two processes", "rows/s");
    printf("  (5 columns: 4 int64 + utf8 ~60 B; %zu bytes per message; median of %d)\n", msg_bytes,
           ROUNDS);
    printf("  %-50s %14.0f\n", "actor to actor over ipc:// (encode + decode)", ipc);
    printf("  %-50s %14.0f\n", "actor to actor over tcp:// (encode + decode)", tcp);
    printf("  %-50s %14.0f\n", "raw nng pair1 over ipc:// (same size, no codec)", nipc);
    printf("  %-50s %14.0f\n", "raw nng pair1 over tcp:// (same size, no codec)", ntcp);
    printf("  %-50s %14.2f\n", "ratio actor/raw over ipc:// (median of rounds)", qipc);
    printf("  %-50s %14.2f\n", "ratio actor/raw over tcp:// (median of rounds)", qtcp);
    figure("rows_per_s.ipc", ipc, "rows/s");
    figure("rows_per_s.tcp", tcp, "rows/s");
    figure("nng_rows_per_s.ipc", nipc, "rows/s");
    figure("nng_rows_per_s.tcp", ntcp, "rows/s");
    figure("ratio_to_nng.ipc", qipc, "ratio");
    figure("ratio_to_nng.tcp", qtcp, "ratio");
    figure("cpus", (double)ncpu, "count");
    if (json != NULL) {
        fclose(json);
    }
    lm_msg_pool_trim();
    return only != NULL || (m1 > 0 && m2 > 0 && ipc > 0 && tcp > 0 && nipc > 0 && ntcp > 0) ? 0 : 1;
}
