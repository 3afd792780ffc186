/*
 * main.c: laminard, Laminar's daemon.
 *
 *   laminard standalone  controller and one worker in one process (the embedded default)
 *   laminard controller  the controller: REST API, metadata store, scheduler, job controllers
 *   laminard worker      a worker: task manager and agent, registered with a controller
 *   laminard node    run a node: the actor runtime and its front door
 *   laminard ping    measure round trips to a running node
 *   laminard config  check the configuration and print it as loaded
 *   laminard migrate bring the metadata store's schema up to date
 *   laminard version
 *
 * Configuration comes from conf/laminar.yaml (or --config FILE, or
 * $LAMINAR_CONFIG), then LAMINAR_* variables, then --set KEY=VALUE flags.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lm_config.h"
#include "lm_log.h"
#include "lm_metastore.h"
#include "lm_nexmark.h"
#include "lm_plan.h"
#include "lm_rt.h"
#include "lm_sql.h"
#include "lm_storage.h"
#include "lm_taskmgr.h"
#include "lm_text.h"
#include "lm_time.h"
#include "lm_transport.h"
#include "laminard.h"

#define LAMINAR_VERSION "0.1.0"

extern char **environ;

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: laminard COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  standalone           controller and one worker in one process: REST API on\n"
            "                       api.port, SQLite metadata, file:// checkpoints\n"
            "  controller           the controller: REST API, control RPC (controller.rpc_url),\n"
            "                       metadata store, scheduler and job controllers\n"
            "  worker               a worker: runs jobs' subtasks; registers with the controller\n"
            "                       at worker.controller_url\n"
            "  node                 run a node: event loops and the transport front door\n"
            "  ping NODE_ID URL     send PINGs to the node NODE_ID at URL and report round trips\n"
            "  run-plan PLAN        run a physical plan (JSON) in this process until it ends\n"
            "  run FILE.sql         compile a SQL pipeline and run it in this process\n"
            "  explain FILE.sql     print a SQL pipeline's logical and physical plans\n"
            "  compile FILE.sql     print the physical plan (JSON) a SQL pipeline compiles to\n"
            "  nexmark-dump DIR [OPTION=VALUE ...]\n"
            "                       write the Nexmark events (generator options, e.g.\n"
            "                       events.num=1000000) to DIR/person.csv, auction.csv, bid.csv\n"
            "  config               check the configuration and print it as loaded\n"
            "  migrate              apply the metadata store's migrations (database.*) and\n"
            "                       print its schema version\n"
            "  version              print the version\n"
            "\n"
            "options:\n"
            "  -c, --config FILE    configuration file (default $LAMINAR_CONFIG, else\n"
            "                       conf/laminar.yaml when present, else built-in defaults)\n"
            "  -s, --set KEY=VALUE  override one configuration key (repeatable)\n"
            "      --listen URL     front door URL (default worker.rpc_url)\n"
            "      --data-dir DIR   standalone, controller: keep the SQLite database, checkpoints\n"
            "                       and sockets in DIR\n"
            "      --controller HOST:PORT|URL  worker: the controller's RPC address\n"
            "      --peer ID=URL    node: connect to this peer node (repeatable)\n"
            "  -n, --count N        ping: number of pings (default 1000)\n"
            "  -p, --parallelism N  run-plan: every operator's parallelism\n"
            "  -o, --op OP.KEY=VAL  run-plan: set a key of an operator's config (repeatable)\n"
            "      --job ID         run-plan: the job's id (default: the plan's name)\n"
            "      --checkpoint-dir DIR        run-plan: where checkpoints go\n"
            "      --checkpoint-interval MS    run-plan: take one every MS milliseconds\n"
            "      --restore EPOCH  run-plan: start from checkpoint EPOCH of the job\n"
            "  -h, --help           this text\n");
}

typedef struct args {
    const char *command;
    const char *config;
    const char *listen;
    char **sets;
    int nsets;
    char **peers;
    int npeers;
    long count;
    const char *ping_node;
    const char *ping_url;
    const char *plan;
    long parallelism;
    char **ops;
    int nops;
    const char *job;
    const char *checkpoint_dir;
    long checkpoint_interval;
    long restore;
    char **rest;            /* nexmark-dump: OPTION=VALUE arguments */
    const char *data_dir;   /* standalone, controller: --data-dir */
    const char *controller; /* worker: --controller */
    int nrest;
} args;

static int
parse_args(int argc, char **argv, args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"peer", required_argument, NULL, 'e'},
        {"count", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {"parallelism", required_argument, NULL, 'P'},
        {"op", required_argument, NULL, 'o'},
        {"job", required_argument, NULL, 'J'},
        {"checkpoint-dir", required_argument, NULL, 'D'},
        {"checkpoint-interval", required_argument, NULL, 'I'},
        {"restore", required_argument, NULL, 'R'},
        {"data-dir", required_argument, NULL, 'd'},
        {"controller", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof(*a));
    a->count = 1000;
    a->sets = calloc((size_t)argc, sizeof(char *));
    a->peers = calloc((size_t)argc, sizeof(char *));
    a->ops = calloc((size_t)argc + 1, sizeof(char *));
    if (a->sets == NULL || a->peers == NULL || a->ops == NULL) {
        return -1;
    }
    while ((c = getopt_long(argc, argv, "c:s:n:hp:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 's': a->sets[a->nsets++] = optarg; break;
        case 'l': a->listen = optarg; break;
        case 'e': a->peers[a->npeers++] = optarg; break;
        case 'n': {
            char *end;
            a->count = strtol(optarg, &end, 10);
            if (*end != '\0' || a->count <= 0) {
                fprintf(stderr, "laminard: --count wants a positive number, got '%s'\n", optarg);
                return -1;
            }
            break;
        }
        case 'p':
        case 'P':
        case 'I':
        case 'R': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < (c == 'I' || c == 'R' ? 0 : 1)) {
                fprintf(stderr, "laminard: --%s wants a number, got '%s'\n",
                        c == 'I'   ? "checkpoint-interval"
                        : c == 'R' ? "restore"
                                   : "parallelism",
                        optarg);
                return -1;
            }
            if (c == 'I') {
                a->checkpoint_interval = v;
            } else if (c == 'R') {
                a->restore = v;
            } else {
                a->parallelism = v;
            }
            break;
        }
        case 'o': a->ops[a->nops++] = optarg; break;
        case 'J': a->job = optarg; break;
        case 'D': a->checkpoint_dir = optarg; break;
        case 'd': a->data_dir = optarg; break;
        case 'C': a->controller = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return -1;
    }
    a->command = argv[optind++];
    if (strcmp(a->command, "ping") == 0) {
        if (argc - optind != 2) {
            fprintf(stderr, "laminard: ping wants NODE_ID URL\n");
            return -1;
        }
        a->ping_node = argv[optind];
        a->ping_url = argv[optind + 1];
    } else if (strcmp(a->command, "run-plan") == 0 || strcmp(a->command, "run") == 0 ||
               strcmp(a->command, "explain") == 0 || strcmp(a->command, "compile") == 0) {
        if (argc - optind != 1) {
            fprintf(stderr, "laminard: %s wants a file\n", a->command);
            return -1;
        }
        a->plan = argv[optind];
    } else if (strcmp(a->command, "nexmark-dump") == 0) {
        if (argc - optind < 1) {
            fprintf(stderr, "laminard: nexmark-dump wants DIR\n");
            return -1;
        }
        a->plan = argv[optind];
        a->rest = argv + optind + 1;
        a->nrest = argc - optind - 1;
    } else if (optind != argc) {
        fprintf(stderr, "laminard: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* --data-dir and --controller: shorthands for configuration keys, applied
 * last. */
static int
apply_flags(const args *a, lm_config *cfg)
{
    char v[4200];
    lm_error err;

    if (a->data_dir != NULL) {
        const char *keys[] = {"database.sqlite.path", "checkpointing.url", "node.run_dir"};
        const char *fmts[] = {"%s/laminar.db", "file://%s/checkpoints", "%s/run"};
        char abs[4096];
        if (lm_storage_mkdirs(a->data_dir, &err) != LM_OK) {
            fprintf(stderr, "laminard: --data-dir: %s\n", err.msg);
            return -1;
        }
        if (realpath(a->data_dir, abs) == NULL) {
            fprintf(stderr, "laminard: --data-dir %s: %s\n", a->data_dir, strerror(errno));
            return -1;
        }
        for (int i = 0; i < 3; i++) {
            snprintf(v, sizeof(v), fmts[i], abs);
            if (lm_config_set(cfg, keys[i], v, &err) != LM_OK) {
                fprintf(stderr, "laminard: --data-dir: %s\n", err.msg);
                return -1;
            }
        }
    }
    if (a->controller != NULL) {
        snprintf(v, sizeof(v), "%s%s", strstr(a->controller, "://") != NULL ? "" : "tcp://",
                 a->controller);
        if (lm_config_set(cfg, "worker.controller_url", v, &err) != LM_OK) {
            fprintf(stderr, "laminard: --controller: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

/* Loads defaults, file, environment and --set flags, in that order. */
static int
load_config(const args *a, lm_config *cfg)
{
    const char *path = a->config != NULL ? a->config : getenv("LAMINAR_CONFIG");
    lm_error err;

    if (lm_config_init(cfg) != LM_OK) {
        fprintf(stderr, "laminard: out of memory\n");
        return -1;
    }
    if (path == NULL && access("conf/laminar.yaml", R_OK) == 0) {
        path = "conf/laminar.yaml";
    }
    if (path != NULL && lm_config_load_file(cfg, path, environ, &err) != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        return -1;
    }
    if (lm_config_apply_env(cfg, environ, &err) != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        return -1;
    }
    for (int i = 0; i < a->nsets; i++) {
        char key[256];
        const char *eq = strchr(a->sets[i], '=');
        if (eq == NULL || (size_t)(eq - a->sets[i]) >= sizeof(key)) {
            fprintf(stderr, "laminard: --set wants KEY=VALUE, got '%s'\n", a->sets[i]);
            return -1;
        }
        memcpy(key, a->sets[i], (size_t)(eq - a->sets[i]));
        key[eq - a->sets[i]] = '\0';
        if (lm_config_set(cfg, key, eq + 1, &err) != LM_OK) {
            fprintf(stderr, "laminard: %s\n", err.msg);
            return -1;
        }
    }
    return apply_flags(a, cfg);
}

int
laminard_start_rt(const lm_config *cfg, uint32_t node_id, lm_rt **rt)
{
    lm_log_opts lo = {cfg->logging.level, cfg->logging.format, cfg->logging.to_stdout,
                      !cfg->logging.to_stdout, cfg->logging.file};
    lm_rt_opts ro = {node_id, (int)cfg->runtime.loops, (int)cfg->runtime.mailbox_batch,
                     cfg->node.name};
    lm_error err;
    int rv;

    if (lm_log_configure(&lo, &err) != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        return -1;
    }
    if ((rv = lm_rt_new(&ro, rt)) != LM_OK) {
        fprintf(stderr, "laminard: cannot start the runtime: %s\n", lm_strerror(rv));
        return -1;
    }
    return 0;
}

int
laminard_start_node(const lm_config *cfg, const char *listen, uint32_t node_id, lm_rt **rt,
                    lm_transport **t)
{
    lm_transport_opts to = {0};
    lm_error err;

    if (laminard_start_rt(cfg, node_id, rt) != 0) {
        return -1;
    }
    to.listen_url = listen;
    to.run_dir = cfg->node.run_dir;
    to.max_message_bytes = (size_t)cfg->transport.max_message_bytes;
    to.max_queued_bytes = (size_t)cfg->transport.max_queued_bytes;
    to.send_buffer = (int)cfg->transport.send_buffer;
    to.connect_timeout_ms = (int)cfg->transport.connect_timeout_ms;
    to.reconnect_min_ms = (int)cfg->transport.reconnect_min_ms;
    to.reconnect_max_ms = (int)cfg->transport.reconnect_max_ms;
    to.peer_timeout_ms = (int)cfg->transport.peer_timeout_ms;
    to.loop = -1;
    if (lm_transport_new(*rt, &to, t, &err) != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        lm_rt_free(*rt, 1000);
        return -1;
    }
    return 0;
}

static int
cmd_node(const args *a, const lm_config *cfg)
{
    lm_rt *rt;
    lm_transport *t;
    sigset_t set;
    int sig;

    /* Block the stop signals in every thread; this one waits for them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (laminard_start_node(cfg, a->listen != NULL ? a->listen : cfg->worker.rpc_url,
                            (uint32_t)cfg->node.id, &rt, &t) != 0) {
        return 1;
    }
    for (int i = 0; i < a->npeers; i++) {
        char *eq = strchr(a->peers[i], '=');
        unsigned long id = eq != NULL ? strtoul(a->peers[i], NULL, 10) : 0;
        if (eq == NULL || id == 0 || id > UINT32_MAX ||
            lm_transport_add_route(t, (uint32_t)id, eq + 1) != LM_OK) {
            LM_LOGC(LM_LOG_ERROR, "laminard", "bad --peer '%s' (want ID=URL)", a->peers[i]);
        }
    }
    LM_LOGC(LM_LOG_INFO, "laminard", "node %u (%d loops) serving at %s; stop with SIGTERM",
            lm_rt_node(rt), lm_rt_loop_count(rt), lm_transport_url(t));
    while (sigwait(&set, &sig) != 0) {
    }
    LM_LOGC(LM_LOG_INFO, "laminard", "%s: shutting down", strsignal(sig));
    lm_transport_free(t);
    lm_rt_free(rt, 5000);
    LM_LOGC(LM_LOG_INFO, "laminard", "stopped");
    lm_log_shutdown();
    return 0;
}

/* --- ping ------------------------------------------------------------- */

typedef struct pinger {
    lm_addr target; /* {node, 0}: the node itself answers */
    long count, sent, got;
    int64_t *rtt_ns; /* per ping */
    int64_t start_ns;
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    int done; /* 1 = finished, -1 = failed */
    char why[256];
} pinger;

static void
pinger_finish(pinger *p, int how, const char *why)
{
    pthread_mutex_lock(&p->lock);
    if (p->done == 0) {
        p->done = how;
        snprintf(p->why, sizeof(p->why), "%s", why);
    }
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->lock);
}

static int
ping_send(lm_actor *self, pinger *p)
{
    lm_ping_msg m = {(uint64_t)p->sent, lm_clock_mono_ns(), {NULL, 0}};
    int rv = lm_tell(self, p->target, LM_MT_PING, &m);
    if (rv == LM_OK) {
        p->sent++;
    }
    return rv;
}

static int
pinger_init(lm_actor *self, void *arg)
{
    pinger *p = arg;
    lm_actor_set_state(self, p);
    p->start_ns = lm_clock_mono_ns();
    return ping_send(self, p);
}

static int
pinger_handle(lm_actor *self, lm_msg *m)
{
    pinger *p = lm_actor_state(self);

    if (m->type == LM_MT_PONG) {
        lm_pong_msg r;
        if (lm_decode_pong(m, &r, NULL) == LM_OK && r.seq == (uint64_t)p->got) {
            p->rtt_ns[p->got++] = lm_clock_mono_ns() - r.sent_ns;
        }
        if (p->got == p->count) {
            pinger_finish(p, 1, "");
            lm_actor_stop(self);
            return LM_OK;
        }
        return ping_send(self, p);
    }
    if (m->type == LM_MT_UNDELIVERABLE) {
        lm_undeliverable_msg u;
        char why[200] = "undeliverable";
        if (lm_decode_undeliverable(m, &u, NULL) == LM_OK) {
            snprintf(why, sizeof(why), "%.*s", (int)u.reason.len, u.reason.ptr);
        }
        pinger_finish(p, -1, why);
        lm_actor_stop(self);
    }
    return LM_OK;
}

static const lm_actor_type pinger_type = {"ping", pinger_init, pinger_handle, NULL};

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int
cmd_ping(const args *a, lm_config *cfg)
{
    char *end;
    unsigned long node = strtoul(a->ping_node, &end, 10);
    pinger p = {0};
    lm_rt *rt;
    lm_transport *t;
    lm_addr addr;
    struct timespec deadline;
    double secs;
    int rv = 1;

    if (*end != '\0' || node == 0 || node > UINT32_MAX) {
        fprintf(stderr, "laminard: ping: bad node id '%s'\n", a->ping_node);
        return 2;
    }
    cfg->logging.level = cfg->logging.level < LM_LOG_WARN ? LM_LOG_WARN : cfg->logging.level;
    cfg->logging.to_stdout = false;
    if (laminard_start_node(cfg, a->listen != NULL ? a->listen : "tcp://127.0.0.1:0", 0, &rt, &t) !=
        0) {
        return 1;
    }
    if (lm_transport_add_route(t, (uint32_t)node, a->ping_url) != LM_OK) {
        fprintf(stderr, "laminard: ping: bad URL '%s'\n", a->ping_url);
        goto out;
    }
    p.target = (lm_addr){(uint32_t)node, 0};
    p.count = a->count;
    if ((p.rtt_ns = calloc((size_t)p.count, sizeof(int64_t))) == NULL) {
        goto out;
    }
    pthread_mutex_init(&p.lock, NULL);
    pthread_cond_init(&p.done_cv, NULL);
    if (lm_spawn(rt, &pinger_type, &p, NULL, &addr) != LM_OK) {
        goto out;
    }
    /* Wait for the answers; give up early when the link cannot be made
     * (wrong node id at that address, refused, nobody there). */
    {
        int64_t start = lm_clock_mono_ns(), limit = (int64_t)(10 + p.count / 10000) * 1000000000;
        int64_t link_limit = cfg->transport.connect_timeout_ms * 1000000 * 2;
        lm_link_info li;
        pthread_mutex_lock(&p.lock);
        while (p.done == 0) {
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_nsec += 100000000;
            if (deadline.tv_nsec >= 1000000000) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p.done_cv, &p.lock, &deadline);
            if (p.done != 0) {
                break;
            }
            int64_t waited = lm_clock_mono_ns() - start;
            if (lm_transport_link_info(t, (uint32_t)node, &li) == LM_OK && !li.up && li.ups == 0 &&
                (li.last_error[0] != '\0' || waited > link_limit)) {
                p.done = -1;
                snprintf(p.why, sizeof(p.why), "cannot reach node %lu at %s: %s", node, a->ping_url,
                         li.last_error[0] != '\0' ? li.last_error : "no answer");
            } else if (waited > limit) {
                p.done = -1;
                snprintf(p.why, sizeof(p.why), "no answer from node %lu at %s", node, a->ping_url);
            }
        }
        pthread_mutex_unlock(&p.lock);
    }
    if (p.done < 0) {
        lm_link_info li;
        fprintf(stderr, "laminard: ping: %s (%ld of %ld answered)\n", p.why, p.got, p.count);
        if (lm_transport_link_info(t, (uint32_t)node, &li) == LM_OK) {
            fprintf(stderr,
                    "laminard: ping: link %s, %" PRIu64 " messages out, %" PRIu64 " in, %" PRId64
                    " bytes queued\n",
                    li.up ? "up" : "down", li.msgs_out, li.msgs_in, li.queued_bytes);
        }
        goto out;
    }
    secs = (double)(lm_clock_mono_ns() - p.start_ns) / 1e9;
    qsort(p.rtt_ns, (size_t)p.got, sizeof(int64_t), cmp_i64);
    printf("node %lu at %s: %ld pings in %.3f s (%.0f round trips/s)\n", node, a->ping_url, p.got,
           secs, (double)p.got / secs);
    printf("round trip: p50 %.1f us, p99 %.1f us, max %.1f us\n", (double)p.rtt_ns[p.got / 2] / 1e3,
           (double)p.rtt_ns[(p.got * 99) / 100] / 1e3, (double)p.rtt_ns[p.got - 1] / 1e3);
    rv = 0;
out:
    lm_transport_free(t);
    lm_rt_free(rt, 2000);
    free(p.rtt_ns);
    return rv;
}

/* --- SQL -------------------------------------------------------------- */

static bool
is_sql(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && strcasecmp(path + n - 4, ".sql") == 0;
}

/* Compiles the SQL file at path into a plan document (JSON text, the
 * caller's to free). Errors are printed with the line and a caret. */
static int
compile_sql(const char *path, uint32_t parallelism, char **doc, int64_t *checkpoint_ms)
{
    char name[256], *text = NULL;
    size_t len = 0;
    lm_sql_diag d;
    lm_error err;
    json_t *plan;
    const char *base = strrchr(path, '/');

    if (lm_storage_read(path, (uint8_t **)&text, &len, &err) != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        return 2;
    }
    snprintf(name, sizeof(name), "%s", base != NULL ? base + 1 : path);
    if (is_sql(name)) {
        name[strlen(name) - 4] = '\0'; /* the pipeline's name: the file's, without .sql */
    }
    lm_sql_opts o = {name, parallelism};
    if (lm_sql_compile(text, len, &o, &plan, checkpoint_ms, &d) != LM_OK) {
        lm_sql_diag_print(&d, path, text, len, stderr);
        free(text);
        return 2;
    }
    free(text);
    *doc = json_dumps(plan, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(plan);
    return *doc != NULL ? 0 : 1;
}

static int
cmd_explain(const args *a)
{
    char *text = NULL;
    size_t len = 0;
    lm_sql_diag d;
    lm_error err;

    if (lm_storage_read(a->plan, (uint8_t **)&text, &len, &err) != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        return 2;
    }
    lm_sql_opts o = {NULL, (uint32_t)a->parallelism};
    int rv = lm_sql_explain(text, len, &o, stdout, &d);
    if (rv != LM_OK) {
        lm_sql_diag_print(&d, a->plan, text, len, stderr);
    }
    free(text);
    return rv == LM_OK ? 0 : 2;
}

static int
cmd_compile(const args *a)
{
    char *doc;
    int rv = compile_sql(a->plan, (uint32_t)a->parallelism, &doc, NULL);
    if (rv == 0) {
        printf("%s\n", doc);
        free(doc);
    }
    return rv;
}

/* --- run-plan -------------------------------------------------------- */

static int
cmd_run_plan(const args *a, const lm_config *cfg)
{
    lm_plan_opts po = {(uint32_t)a->parallelism, 0, (const char *const *)a->ops};
    lm_log_opts lo = {cfg->logging.level, cfg->logging.format, false, true, cfg->logging.file};
    lm_rt_opts ro = {(uint32_t)cfg->node.id, (int)cfg->runtime.loops,
                     (int)cfg->runtime.mailbox_batch, cfg->node.name};
    lm_job_opts jo = {0};
    lm_job_result res;
    char job[256];
    lm_plan *plan;
    lm_rt *rt;
    lm_addr tm;
    lm_error err;
    int rv;

    if (lm_log_configure(&lo, &err) != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        return 1;
    }
    int64_t sql_checkpoint_ms = -1;
    if (is_sql(a->plan)) {
        char *doc;
        if ((rv = compile_sql(a->plan, (uint32_t)a->parallelism, &doc, &sql_checkpoint_ms)) != 0) {
            return rv;
        }
        rv = lm_plan_load_json(doc, strlen(doc), a->plan, &po, &plan, &err);
        free(doc);
    } else {
        rv = lm_plan_load_file(a->plan, &po, &plan, &err);
    }
    if (rv != LM_OK) {
        fprintf(stderr, "laminard: %s\n", err.msg);
        return 2;
    }
    if ((rv = lm_rt_new(&ro, &rt)) != LM_OK || (rv = lm_taskmgr_spawn(rt, &tm)) != LM_OK) {
        fprintf(stderr, "laminard: cannot start the runtime: %s\n", lm_strerror(rv));
        lm_plan_free(plan);
        return 1;
    }
    snprintf(job, sizeof(job), "%s",
             a->job != NULL ? a->job : (plan->name[0] != '\0' ? plan->name : "job"));
    jo.job_id = job;
    jo.checkpoint_dir = a->checkpoint_dir;
    jo.checkpoint_interval_ms = (uint64_t)a->checkpoint_interval;
    if (a->checkpoint_interval == 0 && sql_checkpoint_ms > 0 && a->checkpoint_dir != NULL) {
        jo.checkpoint_interval_ms = (uint64_t)sql_checkpoint_ms; /* SET checkpoint.interval */
    }
    jo.restore_epoch = (uint64_t)a->restore;
    rv = lm_job_run(rt, tm, plan, &jo, &res);
    lm_plan_free(plan);
    lm_rt_free(rt, 5000);
    if (rv != LM_OK) {
        fprintf(stderr, "laminard: %s\n", lm_strerror(rv));
        return 1;
    }
    if (res.state != LM_JOB_FINISHED && res.state != LM_JOB_STOPPED) {
        fprintf(stderr, "laminard: job %s failed: %s\n", jo.job_id, res.reason);
        return 1;
    }
    fprintf(stderr,
            "laminard: job %s %s in %.3f s: %llu events read, at most %llu batches buffered%s\n",
            jo.job_id, res.state == LM_JOB_FINISHED ? "finished" : "stopped", res.seconds,
            (unsigned long long)res.events, (unsigned long long)res.max_buffered,
            res.last_epoch > 0 ? ", checkpoints taken" : "");
    return 0;
}

/* --- nexmark-dump ---------------------------------------------------- */

static int
cmd_nexmark_dump(const args *a)
{
    lm_nexmark_cfg cfg;
    lm_error err;

    lm_nexmark_cfg_defaults(&cfg);
    for (int i = 0; i < a->nrest; i++) {
        char opt[128];
        const char *eq = strchr(a->rest[i], '=');
        size_t n = eq != NULL ? (size_t)(eq - a->rest[i]) : 0;

        if (eq == NULL || n == 0 || n >= sizeof(opt)) {
            fprintf(stderr, "laminard: nexmark-dump: '%s' is not OPTION=VALUE\n", a->rest[i]);
            return 2;
        }
        memcpy(opt, a->rest[i], n);
        opt[n] = '\0';
        if (lm_nexmark_cfg_set(&cfg, opt, eq + 1, &err) != LM_OK) {
            fprintf(stderr, "laminard: nexmark-dump: %s\n", err.msg);
            return 2;
        }
    }
    if (lm_storage_mkdirs(a->plan, &err) != LM_OK ||
        lm_nexmark_dump(&cfg, a->plan, &err) != LM_OK) {
        fprintf(stderr, "laminard: nexmark-dump: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* Opens the metadata store named by database.*, which applies its
 * migrations, and reports the schema version. */
static int
cmd_migrate(const lm_config *cfg)
{
    char *url, masked[256];
    int64_t version;
    lm_error err;
    lm_ms *ms;

    if (lm_ms_config_url(cfg, &url, &err) != LM_OK) {
        fprintf(stderr, "laminard: migrate: %s\n", err.msg);
        return 1;
    }
    lm_text_mask_password(url, masked, sizeof(masked));
    if (lm_ms_open(url, &ms, &err) != LM_OK) {
        fprintf(stderr, "laminard: migrate: %s\n", err.msg);
        free(url);
        return 1;
    }
    free(url);
    if (lm_ms_schema_version(ms, &version, &err) != LM_OK) {
        fprintf(stderr, "laminard: migrate: %s\n", err.msg);
        lm_ms_close(ms);
        return 1;
    }
    printf("metadata store %s (%s): schema version %" PRId64 " (latest %" PRId64 ")\n", masked,
           lm_ms_backend(ms), version, lm_ms_latest_version());
    lm_ms_close(ms);
    return 0;
}

/* The commands that need the configuration. */
static int
run_configured(const args *a)
{
    lm_config cfg;
    int rv;

    if (load_config(a, &cfg) != 0) {
        rv = 2;
    } else if (strcmp(a->command, "config") == 0) {
        rv = lm_config_dump(&cfg, stdout) == LM_OK ? 0 : 1;
    } else if (strcmp(a->command, "migrate") == 0) {
        rv = cmd_migrate(&cfg);
    } else if (strcmp(a->command, "ping") == 0) {
        rv = cmd_ping(a, &cfg);
    } else if (strcmp(a->command, "run-plan") == 0 || strcmp(a->command, "run") == 0) {
        rv = cmd_run_plan(a, &cfg);
    } else if (strcmp(a->command, "standalone") == 0) {
        rv = laminard_standalone(&cfg);
    } else if (strcmp(a->command, "controller") == 0) {
        rv = laminard_controller(&cfg);
    } else if (strcmp(a->command, "worker") == 0) {
        rv = laminard_worker(&cfg, a->listen);
    } else {
        rv = cmd_node(a, &cfg);
    }
    lm_config_fini(&cfg);
    return rv;
}

int
main(int argc, char **argv)
{
    static const char *const configured[] = {"node",       "config", "standalone",
                                             "controller", "worker", "ping",
                                             "run-plan",   "run",    "migrate"};
    args a;
    int rv = -1;

    lm_msg_tune_allocator();
    if (parse_args(argc, argv, &a) != 0) {
        rv = 2;
    } else if (strcmp(a.command, "version") == 0) {
        printf("laminard %s (protocol %d)\n", LAMINAR_VERSION, LM_PROTO_VERSION);
        rv = 0;
    } else if (strcmp(a.command, "nexmark-dump") == 0) {
        rv = cmd_nexmark_dump(&a);
    } else if (strcmp(a.command, "explain") == 0 || strcmp(a.command, "compile") == 0) {
        rv = strcmp(a.command, "explain") == 0 ? cmd_explain(&a) : cmd_compile(&a);
    } else {
        for (size_t i = 0; rv < 0 && i < sizeof(configured) / sizeof(configured[0]); i++) {
            if (strcmp(a.command, configured[i]) == 0) {
                rv = run_configured(&a);
            }
        }
        if (rv < 0) {
            fprintf(stderr, "laminard: unknown command '%s'\n", a.command);
            usage(stderr);
            rv = 2;
        }
    }
    free(a.sets);
    free(a.peers);
    free(a.ops);
    return rv;
}
