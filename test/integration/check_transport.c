/*
 * check_transport.c: two processes exchanging messages over ipc:// and
 * tcp://, a peer restart, bounces, limits, bad input from a peer, and
 * identifying the node at a URL.
 *
 * The test process runs a runtime with a transport (node 1) and talks to
 * lm-test-peer processes (node 2, 3) started with posix_spawn.
 */
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lm_log.h"
#include "lm_proto.h"
#include "lm_rt.h"
#include "lm_test.h"
#include "lm_transport.h"

#define WAIT_MS (10000 * lm_test_slowdown())

static lm_rt *rt;
static lm_transport *tr;
static lm_probe *probe;
static lm_peer peer = {.pid = 0, .out = -1};
static char dir[128];
static int connect_ms = 2000; /* handshake deadline of the local transport */

static void
start_local(const char *url, int peer_timeout_ms, size_t max_queued)
{
    lm_rt_opts o = {1, 2, 0, "test"};
    lm_transport_opts to = {0};
    lm_error err;

    ck_assert_int_eq(lm_rt_new(&o, &rt), LM_OK);
    to.listen_url = url;
    to.reconnect_min_ms = 20;
    to.reconnect_max_ms = 200;
    to.connect_timeout_ms = connect_ms;
    to.peer_timeout_ms = peer_timeout_ms;
    to.max_queued_bytes = max_queued;
    to.loop = -1;
    ck_assert_msg(lm_transport_new(rt, &to, &tr, &err) == LM_OK, "%s", err.msg);
    probe = lm_probe_new(rt, 0);
    ck_assert_ptr_nonnull(probe);
    ck_assert_int_eq(lm_transport_monitor(tr, 0, lm_probe_addr(probe)), LM_OK);
}

static void
setup(void)
{
    lm_log_opts lo = {LM_LOG_ERROR, LM_LOG_TEXT, false, true, NULL};
    lm_log_configure(&lo, NULL);
    snprintf(dir, sizeof(dir), "%s", lm_test_tmpdir());
}

static void
teardown(void)
{
    char cmd[200];
    lm_peer_kill(&peer, SIGKILL);
    lm_transport_free(tr);
    tr = NULL;
    lm_rt_free(rt, 5000);
    rt = NULL;
    lm_probe_free(probe);
    probe = NULL;
    lm_msg_pool_trim();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

/* Waits for NODE_STATUS of node with up; returns its incarnation. */
static uint64_t
wait_status(uint32_t node, bool up)
{
    int64_t end = lm_test_now_ms() + WAIT_MS;
    while (lm_test_now_ms() < end) {
        lm_msg *m = lm_probe_wait(probe, LM_MT_NODE_STATUS, (int)(end - lm_test_now_ms()));
        lm_node_status_msg ns;
        if (m == NULL) {
            break;
        }
        ck_assert_int_eq(lm_decode_node_status(m, &ns, NULL), LM_OK);
        lm_msg_release(m);
        if (ns.node == node && ns.up == up) {
            return ns.incarnation;
        }
    }
    ck_abort_msg("no NODE_STATUS node=%u up=%d within %d ms", node, up, WAIT_MS);
    return 0;
}

/* Sends a PING from the probe (answers and bounces come back to it). */
static int
send_ping(lm_addr dst, uint64_t seq, const uint8_t *body, uint32_t len)
{
    lm_ping_msg p = {seq, 0, {body, len}};
    return lm_rt_tell_as(rt, lm_probe_addr(probe), dst, LM_MT_PING, &p);
}

/* Sends n pings with bodies of varying size (some large) and checks that
 * n pongs come back in order with the same bodies. */
static void
exchange(lm_addr echo, int n)
{
    uint8_t *body = malloc(1 << 20);
    ck_assert_ptr_nonnull(body);
    for (int i = 0; i < (1 << 20); i++) {
        body[i] = (uint8_t)(i * 7 + 3);
    }
    for (int i = 0; i < n; i++) {
        uint32_t len = i % 100 == 99 ? (1u << 20) : (uint32_t)(i * 13 % 700);
        ck_assert_int_eq(send_ping(echo, (uint64_t)i, body, len), LM_OK);
    }
    for (int i = 0; i < n; i++) {
        lm_msg *m = lm_probe_wait(probe, LM_MT_PONG, WAIT_MS);
        lm_pong_msg p;
        uint32_t len = i % 100 == 99 ? (1u << 20) : (uint32_t)(i * 13 % 700);
        ck_assert_msg(m != NULL, "pong %d of %d missing", i, n);
        ck_assert_int_eq(lm_decode_pong(m, &p, NULL), LM_OK);
        ck_assert_uint_eq(p.seq, (uint64_t)i);
        ck_assert_uint_eq(p.body.len, len);
        ck_assert(len == 0 || memcmp(p.body.ptr, body, len) == 0);
        ck_assert(lm_addr_eq(m->src, echo));
        lm_msg_release(m);
    }
    free(body);
}

START_TEST(test_transport_exchange_over_ipc)
{
    char url1[200], url2[200];

    snprintf(url1, sizeof(url1), "ipc://%s/n1.sock", dir);
    snprintf(url2, sizeof(url2), "ipc://%s/n2.sock", dir);
    start_local(url1, 30000, 0);
    ck_assert_int_eq(lm_peer_start(&peer, 2, url2, NULL, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
    wait_status(2, true);
    exchange(peer.echo, 2000);
}
END_TEST

START_TEST(test_transport_exchange_over_tcp)
{
    lm_link_info li;

    start_local("tcp://127.0.0.1:0", 30000, 0);
    ck_assert_int_eq(lm_peer_start(&peer, 2, "tcp://127.0.0.1:0", NULL, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
    exchange(peer.echo, 2000); /* sent before the link is up: they wait, in order */
    ck_assert_int_eq(lm_transport_link_info(tr, 2, &li), LM_OK);
    ck_assert(li.up);
    ck_assert_uint_eq(li.msgs_out, 2000);
    ck_assert_uint_eq(li.msgs_in, 2000);
    ck_assert_uint_eq(li.malformed_in, 0);
    ck_assert_uint_eq(li.ups, 1);
}
END_TEST

/* A batch of every column type goes to the peer and comes back equal. */
START_TEST(test_transport_batch_round_trip)
{
    lm_field f[] = {{"b", LM_TYPE_BOOL, true},    {"i", LM_TYPE_INT64, false},
                    {"d", LM_TYPE_FLOAT64, true}, {"t", LM_TYPE_TIMESTAMP, false},
                    {"s", LM_TYPE_UTF8, true},    {"x", LM_TYPE_BINARY, true}};
    lm_schema *s;
    lm_batch *b;
    lm_batch_msg bm;
    lm_msg *m;
    char str[64];

    start_local("tcp://127.0.0.1:0", 30000, 0);
    ck_assert_int_eq(lm_peer_start(&peer, 2, "tcp://127.0.0.1:0", NULL, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
    ck_assert_int_eq(lm_schema_new(f, 6, &s, NULL), LM_OK);
    ck_assert_int_eq(lm_batch_new(s, 16, &b), LM_OK);
    for (int r = 0; r < 4096; r++) {
        lm_value v[6] = {0};
        snprintf(str, sizeof(str), "row %d: héllo", r);
        v[0].is_null = r % 7 == 0;
        v[0].v.b = r % 2;
        v[1].v.i = (int64_t)r * -1000003;
        v[2].is_null = r % 5 == 0;
        v[2].v.f = r * 0.25;
        v[3].v.i = 1436918400000000 + r;
        v[4].is_null = r % 11 == 0;
        v[4].v.s.ptr = str;
        v[4].v.s.len = r % 13 == 0 ? 0 : (uint32_t)strlen(str);
        v[5].v.s.ptr = &r;
        v[5].v.s.len = r % 3 == 0 ? 0 : sizeof(r);
        ck_assert_int_eq(lm_batch_append_row(b, v, NULL), LM_OK);
    }
    bm = (lm_batch_msg){3, b};
    ck_assert_int_eq(lm_proto_encode(LM_MT_BATCH, lm_probe_addr(probe), peer.echo, &bm, &m), LM_OK);
    ck_assert_int_eq(lm_send(rt, m), LM_OK);
    m = lm_probe_wait(probe, LM_MT_BATCH, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_batch(m, &bm, NULL), LM_OK);
    ck_assert_uint_eq(bm.channel, 3);
    ck_assert(lm_schema_equal(bm.batch->schema, s));
    ck_assert_uint_eq(bm.batch->nrows, 4096);
    for (uint32_t c = 0; c < 6; c++) {
        for (uint32_t r = 0; r < 4096; r++) {
            lm_value x, y;
            lm_batch_get(b, c, r, &x);
            lm_batch_get(bm.batch, c, r, &y);
            ck_assert_int_eq(x.is_null, y.is_null);
            if (x.is_null) {
                continue;
            }
            if (c >= 4) {
                ck_assert_uint_eq(x.v.s.len, y.v.s.len);
                ck_assert(memcmp(x.v.s.ptr, y.v.s.ptr, x.v.s.len) == 0);
            } else if (c == 2) {
                ck_assert(x.v.f == y.v.f);
            } else if (c == 0) {
                ck_assert_int_eq(x.v.b, y.v.b);
            } else {
                ck_assert_int_eq(x.v.i, y.v.i);
            }
        }
    }
    lm_proto_fini(LM_MT_BATCH, &bm);
    lm_msg_release(m);
    lm_batch_free(b);
    lm_schema_release(s);
}
END_TEST

/* kill -9 of the peer is reported; a restarted peer (same node id and
 * address) is reconnected; the old actor address no longer exists. */
static void
restart_case(const char *url2_first)
{
    char url2[256];
    uint64_t inc1, inc2;
    lm_addr old_echo;
    lm_msg *m;
    lm_undeliverable_msg u;

    ck_assert_int_eq(lm_peer_start(&peer, 2, url2_first, NULL, WAIT_MS), 0);
    snprintf(url2, sizeof(url2), "%s", peer.url); /* with the bound port for tcp */
    ck_assert_int_eq(lm_transport_add_route(tr, 2, url2), LM_OK);
    inc1 = wait_status(2, true);
    exchange(peer.echo, 50);
    old_echo = peer.echo;
    lm_peer_kill(&peer, SIGKILL);
    wait_status(2, false);
    ck_assert_int_eq(lm_peer_start(&peer, 2, url2, NULL, WAIT_MS), 0);
    inc2 = wait_status(2, true);
    ck_assert_uint_ne(inc1, inc2);
    exchange(peer.echo, 50);
    /* The old address names nothing in the new process: it bounces. */
    ck_assert_int_eq(send_ping(old_echo, 7, NULL, 0), LM_OK);
    m = lm_probe_wait(probe, LM_MT_UNDELIVERABLE, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_undeliverable(m, &u, NULL), LM_OK);
    ck_assert(lm_addr_eq(u.dst, old_echo));
    ck_assert_int_eq(u.code, LM_ENOACTOR);
    lm_msg_release(m);
}

START_TEST(test_transport_peer_restart_over_tcp)
{
    start_local("tcp://127.0.0.1:0", 30000, 0);
    restart_case("tcp://127.0.0.1:0");
}
END_TEST

START_TEST(test_transport_peer_restart_over_ipc)
{
    char url1[200], url2[200];

    snprintf(url1, sizeof(url1), "ipc://%s/n1.sock", dir);
    snprintf(url2, sizeof(url2), "ipc://%s/n2.sock", dir);
    start_local(url1, 30000, 0);
    restart_case(url2);
}
END_TEST

START_TEST(test_transport_unknown_node_and_actor)
{
    lm_msg *m;
    lm_undeliverable_msg u;

    start_local("tcp://127.0.0.1:0", 30000, 0);
    ck_assert_int_eq(send_ping((lm_addr){99, 5}, 1, NULL, 0), LM_ENOROUTE);
    ck_assert_int_eq(lm_peer_start(&peer, 2, "tcp://127.0.0.1:0", NULL, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
    ck_assert_int_eq(send_ping((lm_addr){2, 424242}, 1, NULL, 0), LM_OK);
    m = lm_probe_wait(probe, LM_MT_UNDELIVERABLE, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_undeliverable(m, &u, NULL), LM_OK);
    ck_assert_int_eq(u.code, LM_ENOACTOR);
    ck_assert_uint_eq(u.type, LM_MT_PING);
    lm_msg_release(m);
    /* A PING to the node itself is answered by its transport. */
    ck_assert_int_eq(send_ping((lm_addr){2, 0}, 77, NULL, 0), LM_OK);
    m = lm_probe_wait(probe, LM_MT_PONG, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->src.node, 2);
    lm_msg_release(m);
    ck_assert_int_eq(lm_transport_add_route(tr, 0, peer.url), LM_EINVAL);
    ck_assert_int_eq(lm_transport_add_route(tr, 1, peer.url), LM_EINVAL);
    ck_assert_int_eq(lm_transport_add_route(tr, 3, "http://x"), LM_EINVAL);
}
END_TEST

/* Messages for a node that never answers wait, bounded, then come back. */
START_TEST(test_transport_unreachable_node_bounces_and_limits)
{
    char url3[200];
    uint8_t body[100000] = {0};
    lm_msg *m;
    lm_undeliverable_msg u;
    int accepted = 0, rv = LM_OK;

    start_local("tcp://127.0.0.1:0", 300, 1 << 20);
    snprintf(url3, sizeof(url3), "ipc://%s/nobody.sock", dir);
    ck_assert_int_eq(lm_transport_add_route(tr, 3, url3), LM_OK);
    while ((rv = send_ping((lm_addr){3, 1}, (uint64_t)accepted, body, sizeof(body))) == LM_OK) {
        accepted++;
        ck_assert_int_lt(accepted, 100);
    }
    ck_assert_int_eq(rv, LM_EAGAIN); /* 1 MiB queued at most */
    ck_assert_int_ge(accepted, 9);
    for (int i = 0; i < accepted; i++) {
        m = lm_probe_wait(probe, LM_MT_UNDELIVERABLE, WAIT_MS);
        ck_assert_msg(m != NULL, "bounce %d of %d missing", i, accepted);
        ck_assert_int_eq(lm_decode_undeliverable(m, &u, NULL), LM_OK);
        ck_assert_int_eq(u.code, LM_ETIMEDOUT);
        lm_msg_release(m);
    }
    /* Once returned, the queue has room again. */
    ck_assert_int_eq(send_ping((lm_addr){3, 1}, 0, body, sizeof(body)), LM_OK);
}
END_TEST

/* --- a hostile peer, spoken to with raw nng -------------------------- */

/* Encodes a catalog message and returns it as an nng message with the
 * link frame header in front. */
static nng_msg *
raw_frame(uint32_t type, lm_addr src, lm_addr dst, const void *payload)
{
    static const uint8_t hdr[4] = {'L', 'M', LM_PROTO_VERSION, 0};
    lm_msg *m;
    nng_msg *nm;
    ck_assert_int_eq(lm_proto_encode(type, src, dst, payload, &m), LM_OK);
    ck_assert_int_eq(lm_msg_to_nng(m, &nm), LM_OK);
    ck_assert_int_eq(nng_msg_insert(nm, hdr, 4), 0);
    return nm;
}

START_TEST(test_transport_malformed_input_from_a_peer_is_dropped)
{
    nng_socket req, pair;
    nng_msg *nm;
    lm_msg *m;
    lm_link_offer_msg offer;
    lm_link_info li;
    lm_error err;
    const uint32_t evil = 9;
    char url[300];

    char logpath[256], logtext[8192] = {0};
    FILE *lf;
    snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
    lm_log_opts lo = {LM_LOG_WARN, LM_LOG_TEXT, false, false, logpath};
    ck_assert_int_eq(lm_log_configure(&lo, NULL), LM_OK);

    start_local("tcp://127.0.0.1:0", 30000, 0);
    /* Garbage at the front door gets an answer, and the door stays open. */
    ck_assert_int_eq(nng_req0_open(&req), 0);
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, WAIT_MS);
    ck_assert_int_eq(nng_dial(req, lm_transport_url(tr), NULL, 0), 0);
    ck_assert_int_eq(nng_msg_alloc(&nm, 0), 0);
    nng_msg_append(nm, "\xdd\xff\xff\xff\xff garbage", 14);
    ck_assert_int_eq(nng_sendmsg(req, nm, 0), 0);
    ck_assert_int_eq(nng_recvmsg(req, &nm, 0), 0);
    ck_assert_int_eq(lm_msg_from_nng(nm, &m), LM_OK);
    ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_OK);
    ck_assert_uint_eq(m->type, LM_MT_LINK_REFUSE);
    lm_msg_release(m);
    /* A proper request gets an offer. */
    lm_link_request_msg rq = {evil, 42, lm_str_c("tcp://127.0.0.1:1"), LM_PROTO_VERSION};
    ck_assert_int_eq(
        lm_proto_encode(LM_MT_LINK_REQUEST, (lm_addr){evil, 0}, (lm_addr){1, 0}, &rq, &m), LM_OK);
    ck_assert_int_eq(lm_msg_to_nng(m, &nm), LM_OK);
    ck_assert_int_eq(nng_sendmsg(req, nm, 0), 0);
    ck_assert_int_eq(nng_recvmsg(req, &nm, 0), 0);
    ck_assert_int_eq(lm_msg_from_nng(nm, &m), LM_OK);
    ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_OK);
    ck_assert_int_eq(lm_decode_link_offer(m, &offer, &err), LM_OK);
    snprintf(url, sizeof(url), "%.*s", (int)offer.url.len, offer.url.ptr);
    lm_link_hello_msg hello = {evil, 42, offer.token};
    lm_msg_release(m);
    nng_close(req);
    ck_assert_int_eq(nng_pair1_open(&pair), 0);
    nng_socket_set_ms(pair, NNG_OPT_RECVTIMEO, WAIT_MS);
    ck_assert_int_eq(nng_dial(pair, url, NULL, 0), 0);
    ck_assert_int_eq(
        nng_sendmsg(pair, raw_frame(LM_MT_LINK_HELLO, (lm_addr){evil, 0}, (lm_addr){1, 0}, &hello),
                    0),
        0);
    wait_status(evil, true);
    /* Now garbage of every kind on the link. */
    const char *junk[] = {"",
                          "LM",
                          "XX\x01\x00\x93",
                          "LM\x01\x00\xc1",
                          "LM\x01\x00\x97\x01\x30",
                          "LM\x07\x00\x97\x07\x01\x09\x01\x01\x01\x90"};
    size_t junk_len[] = {0, 2, 5, 5, 7, 12};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        ck_assert_int_eq(nng_msg_alloc(&nm, 0), 0);
        nng_msg_append(nm, junk[i], junk_len[i]);
        if (i == 3 || i == 4) {
            /* a good frame header (this protocol version) before the junk */
            ((uint8_t *)nng_msg_body(nm))[2] = LM_PROTO_VERSION;
        }
        ck_assert_int_eq(nng_sendmsg(pair, nm, 0), 0);
    }
    /* A message that claims to come from another node. */
    lm_ping_msg p = {1, 0, {NULL, 0}};
    ck_assert_int_eq(
        nng_sendmsg(pair, raw_frame(LM_MT_PING, (lm_addr){5, 1}, lm_probe_addr(probe), &p), 0), 0);
    /* And then a good one, which is delivered. */
    p.seq = 2;
    ck_assert_int_eq(
        nng_sendmsg(pair, raw_frame(LM_MT_PING, (lm_addr){evil, 1}, lm_probe_addr(probe), &p), 0),
        0);
    m = lm_probe_wait(probe, LM_MT_PING, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_ping(m, &p, NULL), LM_OK);
    ck_assert_uint_eq(p.seq, 2);
    lm_msg_release(m);
    ck_assert_int_eq(lm_transport_link_info(tr, evil, &li), LM_OK);
    ck_assert(li.up);
    ck_assert_uint_eq(li.malformed_in, 7);
    ck_assert_uint_eq(li.msgs_in, 1);
    nng_close(pair);
    /* Each drop was logged saying what was wrong and on which link. */
    lf = fopen(logpath, "r");
    ck_assert_ptr_nonnull(lf);
    ck_assert_uint_gt(fread(logtext, 1, sizeof(logtext) - 1, lf), 0);
    fclose(lf);
    ck_assert_ptr_nonnull(strstr(logtext, "front door: malformed request dropped: envelope"));
    ck_assert_ptr_nonnull(
        strstr(logtext, "link to node 9: message without a valid frame header dropped"));
    ck_assert_ptr_nonnull(strstr(logtext, "link to node 9: malformed message dropped: envelope: "
                                          "expected an array at byte 0 (found the never-used"));
    ck_assert_ptr_nonnull(strstr(logtext, "declared element count exceeds the bytes left"));
    ck_assert_ptr_nonnull(
        strstr(logtext, "link to node 9: message claiming to come from node 5 dropped"));
}
END_TEST

/* Two nodes that ask each other at the same moment end up with one link:
 * we know the peer's address before it starts (ipc), so our request waits
 * at its door while it starts with a route to us and asks too. */
START_TEST(test_transport_crossing_requests_make_one_link)
{
    char url1[200], url2[200], route[300];
    lm_link_info li;

    snprintf(url1, sizeof(url1), "ipc://%s/n1.sock", dir);
    snprintf(url2, sizeof(url2), "ipc://%s/n2.sock", dir);
    start_local(url1, 30000, 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, url2), LM_OK);
    snprintf(route, sizeof(route), "1=%s", url1);
    ck_assert_int_eq(lm_peer_start(&peer, 2, url2, route, WAIT_MS), 0);
    wait_status(2, true);
    exchange(peer.echo, 10);
    usleep(300000); /* a second link, if one were made, would show by now */
    ck_assert_int_eq(lm_transport_link_info(tr, 2, &li), LM_OK);
    ck_assert(li.up);
    ck_assert_uint_eq(li.ups, 1);
    exchange(peer.echo, 10);
}
END_TEST

/* A dialer that presents the wrong token is cut off; the node goes on
 * serving. A route that leads to another node is reported as such. */
START_TEST(test_transport_bad_hello_and_wrong_node_are_refused)
{
    nng_socket req, pair;
    nng_msg *nm;
    lm_msg *m;
    lm_link_offer_msg offer;
    lm_link_info li;
    lm_error err;
    char url[300];
    int64_t end;

    start_local("tcp://127.0.0.1:0", 30000, 0);
    ck_assert_int_eq(nng_req0_open(&req), 0);
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, WAIT_MS);
    ck_assert_int_eq(nng_dial(req, lm_transport_url(tr), NULL, 0), 0);
    lm_link_request_msg rq = {9, 42, lm_str_c("tcp://127.0.0.1:1"), LM_PROTO_VERSION};
    ck_assert_int_eq(lm_proto_encode(LM_MT_LINK_REQUEST, (lm_addr){9, 0}, (lm_addr){1, 0}, &rq, &m),
                     LM_OK);
    ck_assert_int_eq(lm_msg_to_nng(m, &nm), LM_OK);
    ck_assert_int_eq(nng_sendmsg(req, nm, 0), 0);
    ck_assert_int_eq(nng_recvmsg(req, &nm, 0), 0);
    ck_assert_int_eq(lm_msg_from_nng(nm, &m), LM_OK);
    ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_OK);
    ck_assert_int_eq(lm_decode_link_offer(m, &offer, &err), LM_OK);
    snprintf(url, sizeof(url), "%.*s", (int)offer.url.len, offer.url.ptr);
    lm_link_hello_msg hello = {9, 42, offer.token + 1}; /* wrong token */
    lm_msg_release(m);
    nng_close(req);
    ck_assert_int_eq(nng_pair1_open(&pair), 0);
    ck_assert_int_eq(nng_dial(pair, url, NULL, 0), 0);
    ck_assert_int_eq(
        nng_sendmsg(pair, raw_frame(LM_MT_LINK_HELLO, (lm_addr){9, 0}, (lm_addr){1, 0}, &hello), 0),
        0);
    end = lm_test_now_ms() + WAIT_MS;
    do {
        usleep(10000);
        ck_assert_int_eq(lm_transport_link_info(tr, 9, &li), LM_OK);
    } while (strstr(li.last_error, "bad hello") == NULL && lm_test_now_ms() < end);
    ck_assert_ptr_nonnull(strstr(li.last_error, "bad hello"));
    ck_assert(!li.up);
    ck_assert_uint_eq(li.ups, 0);
    nng_close(pair);

    /* A peer that is node 2, reached through a route for node 5. */
    ck_assert_int_eq(lm_peer_start(&peer, 2, "tcp://127.0.0.1:0", NULL, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 5, peer.url), LM_OK);
    end = lm_test_now_ms() + WAIT_MS;
    do {
        usleep(10000);
        ck_assert_int_eq(lm_transport_link_info(tr, 5, &li), LM_OK);
    } while (li.last_error[0] == '\0' && lm_test_now_ms() < end);
    /* the peer's front door refuses a request meant for another node */
    ck_assert_str_eq(li.last_error, "refused by the peer: this address is node 2 now, not node 5");
    ck_assert(!li.up);
    /* The node still serves the right route. */
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
    exchange(peer.echo, 20);
}
END_TEST

/* Handshakes that keep failing (nobody at the address) do not restart the
 * clock: queued messages come back once the node has been unreachable for
 * the peer timeout, even when that is many handshake deadlines. */
START_TEST(test_transport_retries_do_not_hold_messages_forever)
{
    char url3[200];
    lm_msg *m;
    lm_undeliverable_msg u;
    int64_t start;

    connect_ms = 100;
    start_local("tcp://127.0.0.1:0", 1000, 0);
    snprintf(url3, sizeof(url3), "ipc://%s/nobody.sock", dir);
    /* the time a message may wait counts from the route's start */
    start = lm_test_now_ms();
    ck_assert_int_eq(lm_transport_add_route(tr, 3, url3), LM_OK);
    ck_assert_int_eq(send_ping((lm_addr){3, 1}, 1, NULL, 0), LM_OK);
    m = lm_probe_wait(probe, LM_MT_UNDELIVERABLE, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lm_decode_undeliverable(m, &u, NULL), LM_OK);
    ck_assert_int_eq(u.code, LM_ETIMEDOUT);
    ck_assert_int_ge(lm_test_now_ms() - start, 1000);
    lm_msg_release(m);
    connect_ms = 2000;
}
END_TEST

/* A remote actor can be stopped; that does not stop the local transport. */
START_TEST(test_transport_stopping_a_remote_actor_stops_only_it)
{
    lm_addr found;
    lm_msg *m;

    start_local("tcp://127.0.0.1:0", 30000, 0);
    ck_assert_int_eq(lm_peer_start(&peer, 2, "tcp://127.0.0.1:0", NULL, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
    exchange(peer.echo, 5);
    ck_assert_int_eq(lm_stop(rt, peer.echo, "test"), LM_OK);
    ck_assert_int_eq(lm_rt_whereis(rt, "transport", &found), LM_OK);
    /* The echo is gone: a ping to it comes back (once the stop, which
     * travels ahead on the same link, has been handled). */
    for (;;) {
        ck_assert_int_eq(send_ping(peer.echo, 9, NULL, 0), LM_OK);
        m = lm_probe_wait(probe, 0, WAIT_MS);
        ck_assert_ptr_nonnull(m);
        if (m->type != LM_MT_PONG) {
            break;
        }
        lm_msg_release(m);
        usleep(10000);
    }
    ck_assert_uint_eq(m->type, LM_MT_UNDELIVERABLE);
    lm_msg_release(m);
    /* and the node itself still answers */
    ck_assert_int_eq(send_ping((lm_addr){2, 0}, 1, NULL, 0), LM_OK);
    m = lm_probe_wait(probe, LM_MT_PONG, WAIT_MS);
    ck_assert_ptr_nonnull(m);
    lm_msg_release(m);
}
END_TEST

/* --- identifying the node at a URL ------------------------------------ */

/* Sends a LINK_REQUEST claiming node id `node` to the front door at url
 * and returns the answer's decoded refusal (asserts it is one). */
static lm_link_refuse_msg
door_ask(const char *url, uint32_t node, lm_msg **keep)
{
    nng_socket req;
    nng_msg *nm;
    lm_msg *m;
    lm_error err;
    lm_link_refuse_msg rf;
    lm_link_request_msg rq = {node, 42, lm_str_c("tcp://127.0.0.1:1"), LM_PROTO_VERSION};

    ck_assert_int_eq(nng_req0_open(&req), 0);
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, WAIT_MS);
    ck_assert_int_eq(nng_dial(req, url, NULL, 0), 0);
    ck_assert_int_eq(
        lm_proto_encode(LM_MT_LINK_REQUEST, (lm_addr){node, 0}, (lm_addr){0, 0}, &rq, &m), LM_OK);
    ck_assert_int_eq(lm_msg_to_nng(m, &nm), LM_OK);
    ck_assert_int_eq(nng_sendmsg(req, nm, 0), 0);
    ck_assert_int_eq(nng_recvmsg(req, &nm, 0), 0);
    nng_close(req);
    ck_assert_int_eq(lm_msg_from_nng(nm, &m), LM_OK);
    ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_OK);
    ck_assert_int_eq(lm_decode_link_refuse(m, &rf, &err), LM_OK);
    *keep = m; /* rf points into it */
    return rf;
}

/* A node's front door tells its id, over tcp and ipc, without an error in
 * the log; a request claiming the door's own id is still refused as a
 * clash. */
START_TEST(test_transport_identify_names_the_node)
{
    char url2[200], logpath[256], logtext[8192] = {0};
    uint32_t node = 0;
    lm_error err;
    lm_msg *m;
    lm_link_refuse_msg rf;
    lm_link_info li;
    FILE *lf;
    size_t n;

    snprintf(logpath, sizeof(logpath), "%s/node.log", dir);
    lm_log_opts lo = {LM_LOG_WARN, LM_LOG_TEXT, false, false, logpath};
    ck_assert_int_eq(lm_log_configure(&lo, NULL), LM_OK);
    start_local("tcp://127.0.0.1:0", 30000, 0);
    ck_assert_msg(lm_transport_identify(lm_transport_url(tr), WAIT_MS, &node, &err) == LM_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(node, 1);
    /* again: asking twice is fine */
    node = 0;
    ck_assert_int_eq(lm_transport_identify(lm_transport_url(tr), WAIT_MS, &node, &err), LM_OK);
    ck_assert_uint_eq(node, 1);
    /* what the door answers, exactly */
    rf = door_ask(lm_transport_url(tr), 0, &m);
    ck_assert_uint_eq(rf.node, 1);
    ck_assert_int_eq(rf.code, LM_OK);
    ck_assert(rf.reason.len == 8 && memcmp(rf.reason.ptr, "identify", 8) == 0);
    lm_msg_release(m);
    /* no link was made for the asker */
    ck_assert_int_eq(lm_transport_link_info(tr, 0, &li), LM_ENOTFOUND);
    /* a peer process over ipc */
    snprintf(url2, sizeof(url2), "ipc://%s/n2.sock", dir);
    ck_assert_int_eq(lm_peer_start(&peer, 2, url2, NULL, WAIT_MS), 0);
    node = 0;
    ck_assert_msg(lm_transport_identify(peer.url, WAIT_MS, &node, &err) == LM_OK, "%s", err.msg);
    ck_assert_uint_eq(node, 2);
    /* claiming the door's own id is still a clash, and logged as one */
    rf = door_ask(lm_transport_url(tr), 1, &m);
    ck_assert_uint_eq(rf.node, 1);
    ck_assert_int_eq(rf.code, LM_EADDRINUSE);
    lm_msg_release(m);
    lf = fopen(logpath, "r");
    ck_assert_ptr_nonnull(lf);
    n = fread(logtext, 1, sizeof(logtext) - 1, lf);
    fclose(lf);
    logtext[n] = '\0';
    ck_assert_msg(strstr(logtext, "claims node id 1, which is ours") != NULL, "log: %s", logtext);
    ck_assert_msg(strstr(logtext, "claims node id 0") == NULL, "log: %s", logtext);
    ck_assert_msg(strstr(logtext, "identify") == NULL, "log: %s", logtext);
}
END_TEST

/* A free tcp port of the loopback (bound, then closed again). */
static int
free_port(void)
{
    nng_socket s;
    nng_listener l;
    int port;

    ck_assert_int_eq(nng_rep0_open(&s), 0);
    ck_assert_int_eq(nng_listen(s, "tcp://127.0.0.1:0", &l, 0), 0);
    ck_assert_int_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    nng_close(s);
    return port;
}

/* Nobody at the URL: LM_ETIMEDOUT after about the timeout; a bad URL is
 * LM_EINVAL at once. */
START_TEST(test_transport_identify_nobody_times_out)
{
    char url[200];
    uint32_t node = 77;
    lm_error err;
    int64_t t0, took;
    const int timeout = 400;

    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
    t0 = lm_test_now_ms();
    ck_assert_int_eq(lm_transport_identify(url, timeout, &node, &err), LM_ETIMEDOUT);
    took = lm_test_now_ms() - t0;
    ck_assert_msg(took >= timeout - 20 && took < timeout + 2000 * lm_test_slowdown(),
                  "took %lld ms", (long long)took);
    ck_assert_msg(strstr(err.msg, url) != NULL && strstr(err.msg, "no answer") != NULL, "%s",
                  err.msg);
    ck_assert_uint_eq(node, 77);
    snprintf(url, sizeof(url), "ipc://%s/nobody.sock", dir);
    ck_assert_int_eq(lm_transport_identify(url, timeout, &node, &err), LM_ETIMEDOUT);
    ck_assert_int_eq(lm_transport_identify("http://127.0.0.1:1", timeout, &node, &err), LM_EINVAL);
    ck_assert_msg(strstr(err.msg, "http://127.0.0.1:1") != NULL, "%s", err.msg);
    ck_assert_int_eq(lm_transport_identify("tcp://127.0.0.1", timeout, &node, &err), LM_EINVAL);
    ck_assert_int_eq(lm_transport_identify(NULL, timeout, &node, &err), LM_EINVAL);
    ck_assert_uint_eq(node, 77);
}
END_TEST

/* A fake front door: answers each request with the next canned reply. */
typedef struct fake_door {
    nng_socket s;
    nng_msg *replies[4];
    int n;
} fake_door;

static void *
fake_door_main(void *arg)
{
    fake_door *d = arg;
    for (int i = 0; i < d->n; i++) {
        nng_msg *nm;
        if (nng_recvmsg(d->s, &nm, 0) != 0) {
            break;
        }
        nng_msg_free(nm);
        if (nng_sendmsg(d->s, d->replies[i], 0) != 0) {
            nng_msg_free(d->replies[i]);
        }
        d->replies[i] = NULL;
    }
    return NULL;
}

static nng_msg *
canned(uint32_t type, const void *payload)
{
    lm_msg *m;
    nng_msg *nm;
    ck_assert_int_eq(lm_proto_encode(type, (lm_addr){7, 0}, (lm_addr){0, 0}, payload, &m), LM_OK);
    ck_assert_int_eq(lm_msg_to_nng(m, &nm), LM_OK);
    return nm;
}

/* Answers other than a node's id: a version refusal or a message of
 * another protocol version is LM_EVERSION; garbage is LM_EPROTO; another
 * refusal is LM_ETRANSPORT. */
START_TEST(test_transport_identify_reports_bad_answers)
{
    fake_door d = {.n = 4};
    nng_listener l;
    pthread_t th;
    char url[100];
    uint32_t node = 77;
    lm_error err;
    int port;
    lm_link_refuse_msg ver = {7, LM_EVERSION, lm_str_c("protocol version 2, this node speaks 9")};
    lm_link_refuse_msg other = {7, LM_EADDRINUSE, lm_str_c("node id clash")};
    nng_msg *nm;

    d.replies[0] = canned(LM_MT_LINK_REFUSE, &ver);
    /* the same with the envelope's version changed (its first bytes are
     * a fixarray header, then the version as a positive fixint) */
    d.replies[1] = canned(LM_MT_LINK_REFUSE, &ver);
    ck_assert_uint_eq(((uint8_t *)nng_msg_body(d.replies[1]))[1], LM_PROTO_VERSION);
    ((uint8_t *)nng_msg_body(d.replies[1]))[1] = 9;
    ck_assert_int_eq(nng_msg_alloc(&nm, 0), 0);
    ck_assert_int_eq(nng_msg_append(nm, "not laminar", 11), 0);
    d.replies[2] = nm;
    d.replies[3] = canned(LM_MT_LINK_REFUSE, &other);
    ck_assert_int_eq(nng_rep0_open(&d.s), 0);
    ck_assert_int_eq(nng_listen(d.s, "tcp://127.0.0.1:0", &l, 0), 0);
    ck_assert_int_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    ck_assert_int_eq(pthread_create(&th, NULL, fake_door_main, &d), 0);
    ck_assert_int_eq(lm_transport_identify(url, WAIT_MS, &node, &err), LM_EVERSION);
    ck_assert_msg(strstr(err.msg, url) != NULL && strstr(err.msg, "speaks 9") != NULL, "%s",
                  err.msg);
    ck_assert_int_eq(lm_transport_identify(url, WAIT_MS, &node, &err), LM_EVERSION);
    ck_assert_int_eq(lm_transport_identify(url, WAIT_MS, &node, &err), LM_EPROTO);
    ck_assert_int_eq(lm_transport_identify(url, WAIT_MS, &node, &err), LM_ETRANSPORT);
    ck_assert_msg(strstr(err.msg, "node id clash") != NULL, "%s", err.msg);
    ck_assert_uint_eq(node, 77);
    pthread_join(th, NULL);
    nng_close(d.s);
}
END_TEST

/* Identifying both nodes, before and while they link, changes nothing:
 * one link comes up and carries messages. */
START_TEST(test_transport_identify_does_not_disturb_links)
{
    uint32_t node = 0;
    lm_error err;
    lm_link_info li;

    start_local("tcp://127.0.0.1:0", 30000, 0);
    ck_assert_int_eq(lm_peer_start(&peer, 2, "tcp://127.0.0.1:0", NULL, WAIT_MS), 0);
    ck_assert_int_eq(lm_transport_identify(peer.url, WAIT_MS, &node, &err), LM_OK);
    ck_assert_uint_eq(node, 2);
    ck_assert_int_eq(lm_transport_identify(lm_transport_url(tr), WAIT_MS, &node, &err), LM_OK);
    ck_assert_uint_eq(node, 1);
    ck_assert_int_eq(lm_transport_add_route(tr, 2, peer.url), LM_OK);
    wait_status(2, true);
    exchange(peer.echo, 20);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(lm_transport_identify(peer.url, WAIT_MS, &node, &err), LM_OK);
        ck_assert_uint_eq(node, 2);
    }
    exchange(peer.echo, 20);
    ck_assert_int_eq(lm_transport_link_info(tr, 2, &li), LM_OK);
    ck_assert(li.up);
    ck_assert_uint_eq(li.ups, 1);
    ck_assert_int_eq(lm_transport_link_info(tr, 0, &li), LM_ENOTFOUND);
}
END_TEST

Suite *
transport_suite(void)
{
    Suite *s = suite_create("transport");
    TCase *tc = tcase_create("integration");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_transport_exchange_over_ipc);
    tcase_add_test(tc, test_transport_exchange_over_tcp);
    tcase_add_test(tc, test_transport_batch_round_trip);
    tcase_add_test(tc, test_transport_peer_restart_over_tcp);
    tcase_add_test(tc, test_transport_peer_restart_over_ipc);
    tcase_add_test(tc, test_transport_unknown_node_and_actor);
    tcase_add_test(tc, test_transport_unreachable_node_bounces_and_limits);
    tcase_add_test(tc, test_transport_malformed_input_from_a_peer_is_dropped);
    tcase_add_test(tc, test_transport_crossing_requests_make_one_link);
    tcase_add_test(tc, test_transport_bad_hello_and_wrong_node_are_refused);
    tcase_add_test(tc, test_transport_retries_do_not_hold_messages_forever);
    tcase_add_test(tc, test_transport_stopping_a_remote_actor_stops_only_it);
    tcase_add_test(tc, test_transport_identify_names_the_node);
    tcase_add_test(tc, test_transport_identify_nobody_times_out);
    tcase_add_test(tc, test_transport_identify_reports_bad_answers);
    tcase_add_test(tc, test_transport_identify_does_not_disturb_links);
    suite_add_tcase(s, tc);
    return s;
}
