/*
 * lm_test.c: probe actors and peer processes for the Check suites.
 */
#include "lm_test.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct lm_probe {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    lm_msg **q; /* ring of retained messages */
    size_t cap, head, len;
    lm_addr addr;
};

int
lm_test_slowdown(void)
{
    const char *s = getenv("LM_TEST_SLOWDOWN");
    int n = s != NULL ? atoi(s) : 1;
    return n >= 1 ? n : 1;
}

int64_t
lm_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
probe_init(lm_actor *self, void *arg)
{
    lm_actor_set_state(self, arg);
    return LM_OK;
}

static int
probe_handle(lm_actor *self, lm_msg *m)
{
    lm_probe *p = lm_actor_state(self);

    pthread_mutex_lock(&p->lock);
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        lm_msg **q = malloc(cap * sizeof(*q));
        if (q == NULL) {
            pthread_mutex_unlock(&p->lock);
            return LM_ENOMEM;
        }
        for (size_t i = 0; i < p->len; i++) {
            q[i] = p->q[(p->head + i) % p->cap];
        }
        free(p->q);
        p->q = q;
        p->cap = cap;
        p->head = 0;
    }
    lm_msg_retain(m);
    p->q[(p->head + p->len++) % p->cap] = m;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return LM_OK;
}

static const lm_actor_type probe_type = {"probe", probe_init, probe_handle, NULL};

lm_probe *
lm_probe_new(lm_rt *rt, int loop)
{
    lm_probe *p = calloc(1, sizeof(*p));
    lm_spawn_opts so = LM_SPAWN_DEFAULTS;

    if (p == NULL) {
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    so.loop = loop;
    if (lm_spawn(rt, &probe_type, p, &so, &p->addr) != LM_OK) {
        free(p);
        return NULL;
    }
    return p;
}

lm_addr
lm_probe_addr(const lm_probe *p)
{
    return p->addr;
}

lm_msg *
lm_probe_wait(lm_probe *p, uint32_t type, int timeout_ms)
{
    struct timespec deadline;
    lm_msg *m = NULL;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->len > 0) {
            m = p->q[p->head];
            p->head = (p->head + 1) % p->cap;
            p->len--;
            if (type == 0 || m->type == type) {
                pthread_mutex_unlock(&p->lock);
                return m;
            }
            lm_msg_release(m);
            m = NULL;
        }
        if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int
lm_probe_pending(lm_probe *p)
{
    int n;
    pthread_mutex_lock(&p->lock);
    n = (int)p->len;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void
lm_probe_free(lm_probe *p)
{
    if (p == NULL) {
        return;
    }
    while (p->len > 0) {
        lm_msg_release(p->q[p->head]);
        p->head = (p->head + 1) % p->cap;
        p->len--;
    }
    free(p->q);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}

/* --- peers ----------------------------------------------------------- */

static int
read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t n = 0;
    int64_t end = lm_test_now_ms() + timeout_ms;

    while (n + 1 < cap) {
        struct pollfd pf = {fd, POLLIN, 0};
        int left = (int)(end - lm_test_now_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            return -1;
        }
        if (read(fd, buf + n, 1) != 1) {
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

int
lm_peer_start(lm_peer *p, uint32_t node, const char *url, const char *route, int timeout_ms)
{
    const char *bin = getenv("LM_TEST_PEER");
    char nodestr[16], line[512];
    int fds[2];
    posix_spawn_file_actions_t fa;
    char *argv[5];
    unsigned long long actor;
    unsigned n;

    if (bin == NULL) {
        bin = "build/release/test/lm-test-peer";
    }
    if (pipe(fds) != 0) {
        return -1;
    }
    snprintf(nodestr, sizeof(nodestr), "%u", node);
    argv[0] = (char *)bin;
    argv[1] = nodestr;
    argv[2] = (char *)url;
    argv[3] = (char *)route;
    argv[4] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(&p->pid, bin, &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    p->out = fds[0];
    if (read_line(p->out, line, sizeof(line), timeout_ms) != 0 ||
        sscanf(line, "READY %u %llu %255s", &n, &actor, p->url) != 3) {
        lm_peer_kill(p, SIGKILL);
        return -1;
    }
    p->echo = (lm_addr){n, actor};
    return 0;
}

void
lm_peer_kill(lm_peer *p, int sig)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    if (p->out >= 0) {
        close(p->out);
        p->out = -1;
    }
}

const char *
lm_test_tmpdir(void)
{
    static char dir[128];
    snprintf(dir, sizeof(dir), "/tmp/lm-test-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return "/tmp";
    }
    return dir;
}
