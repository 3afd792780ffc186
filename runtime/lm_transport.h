/*
 * lm_transport.h: messages between nodes over nng.
 *
 * Each node has a front door: an nng rep0 socket listening on its URL
 * (tcp://host:port, or ipc:///path on one machine). Between two nodes
 * there is at most one link, an nng pair1 connection, set up like this:
 * the node that wants to talk sends LINK_REQUEST to the other's front
 * door; the front door opens a pair1 socket on a fresh ephemeral address
 * (same host, port 0; or a fresh ipc path) and answers LINK_OFFER with it
 * and a token; the requester dials it and sends LINK_HELLO with the token
 * as its first message, and the listener answers with its own LINK_HELLO:
 * each side counts the link up only then, and only that connection's pipe
 * is the link (a stray connection to the address is cut off and changes
 * nothing). If both nodes ask at once, the request of the node with the
 * lower id wins. A node that finds its own id claimed by the requester
 * refuses with LM_EADDRINUSE. A request with node id 0 means "who are
 * you?": the front door answers LINK_REFUSE {its id, LM_OK, "identify"}
 * and touches no link (lm_transport_identify). A link that breaks (peer
 * restart, network failure) is set up again with exponential backoff
 * while the peer's route is known; each link up and down is reported to
 * monitors as NODE_STATUS.
 *
 * Sending: lm_send on a message for another node hands it to the
 * transport actor (one per node), which writes it to the link without
 * copying it (the lm_msg's nng buffer goes to nng as is), behind a 4-byte
 * frame header that also keeps column buffers 8-byte aligned at the
 * receiver. While a link is not up, messages wait in order, bounded by
 * max_queued_bytes per link (then lm_send returns LM_EAGAIN); those still
 * waiting after peer_timeout_ms are returned to their senders as
 * UNDELIVERABLE (the time counts from when the node was last reachable).
 * Messages already written to a link that breaks are lost;
 * monitors learn of the break and the data plane recovers by checkpoints.
 *
 * Receiving: every message is checked (frame, envelope, size, source
 * node) before it is delivered to its local actor; a malformed one is
 * logged, counted and dropped, and the link goes on serving. A message
 * for an actor that does not exist goes back to its sender as
 * UNDELIVERABLE. A PING addressed to a node itself ({node, 0}) is
 * answered by its transport with a PONG: a liveness check that needs no
 * actor address.
 */
#ifndef LM_TRANSPORT_H
#define LM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_err.h"
#include "lm_rt.h"

typedef struct lm_transport lm_transport;

typedef struct lm_transport_opts {
    const char *listen_url;   /* front door: tcp://host:port (port 0 = any) or ipc:///path */
    const char *run_dir;      /* directory for ipc data sockets; NULL = dirname of an ipc
                                 listen path, else /tmp */
    size_t max_message_bytes; /* larger messages are refused; 0 = 64 MiB */
    size_t max_queued_bytes;  /* per link, not yet written; 0 = 256 MiB */
    int send_buffer;          /* nng messages buffered per socket; 0 = 256 */
    int connect_timeout_ms;   /* handshake deadline; 0 = 5000 */
    int reconnect_min_ms;     /* first retry delay; 0 = 100 */
    int reconnect_max_ms;     /* largest retry delay; 0 = 5000 */
    int peer_timeout_ms;      /* queued messages bounce after this; 0 = 30000 */
    int loop;                 /* loop of the transport actor; -1 = the last loop */
} lm_transport_opts;

/* Opens the front door, spawns the transport actor and attaches it to rt
 * so that lm_send reaches other nodes. Returns LM_OK; LM_EADDRINUSE when
 * the address is taken; LM_EINVAL for a bad URL; LM_ETRANSPORT for other
 * nng errors; err says which URL and why. */
int lm_transport_new(lm_rt *rt, const lm_transport_opts *opts, lm_transport **out, lm_error *err);

/* Detaches from the runtime, closes every link (messages still queued are
 * dropped, and counted in the log), stops the actor and frees t. Call
 * before lm_rt_free. */
void lm_transport_free(lm_transport *t);

/* The front door URL as bound (with the real port when 0 was asked). */
const char *lm_transport_url(const lm_transport *t);

/* Tells the transport that node is reached at url (its front door), and
 * starts setting up the link. Replaces an earlier route. Returns LM_OK,
 * LM_EINVAL (bad URL, node 0 or this node), LM_ENOMEM. */
int lm_transport_add_route(lm_transport *t, uint32_t node, const char *url);

/* Forgets how to reach node: no new link to it is asked for (one that is
 * up stays up until it breaks). For a peer known to be gone for good, e.g.
 * a controller that came back under another node id. Any thread. */
void lm_transport_forget_route(lm_transport *t, uint32_t node);

/* Makes desk (an actor of this node) the node's desk: messages from other
 * nodes addressed to the node itself ({node, 0}), other than the PING the
 * transport answers, are delivered to it, so a peer that knows only the
 * node (lm_transport_identify) can reach a service there; the answer
 * tells it the desk's address. LM_ADDR_NONE removes the desk (such
 * messages are then dropped and logged). Any thread. */
void lm_transport_set_desk(lm_transport *t, lm_addr desk);

/* Sends NODE_STATUS to watcher whenever the link to node (0 = any node)
 * goes up or down. Returns LM_OK or LM_ENOMEM. */
int lm_transport_monitor(lm_transport *t, uint32_t node, lm_addr watcher);

typedef struct lm_link_info {
    uint32_t node;        /* peer */
    bool up;              /* link established */
    uint64_t incarnation; /* peer's incarnation when last up */
    uint64_t msgs_out;    /* messages written */
    uint64_t bytes_out;
    uint64_t msgs_in; /* messages received and delivered */
    uint64_t bytes_in;
    uint64_t malformed_in; /* received messages dropped as malformed */
    uint64_t bounced;      /* messages returned to senders */
    int64_t queued_bytes;  /* accepted, not yet written */
    uint64_t ups;          /* times the link came up */
    char last_error[160];  /* why it last failed or went down; "" if never */
} lm_link_info;

/* Fills out for node. LM_OK or LM_ENOTFOUND. Any thread. */
int lm_transport_link_info(lm_transport *t, uint32_t node, lm_link_info *out);

/* Asks the front door at url (tcp://host:port or ipc:///path) which node
 * it is: sends LINK_REQUEST with node id 0 and this LM_PROTO_VERSION on a
 * req0 socket of its own (no transport needed; any thread; blocks up to
 * timeout_ms, which must be > 0), and sets *node to the id in the answer.
 * Opens no link and disturbs none. Returns LM_OK; LM_ETIMEDOUT when no
 * answer came in time (nobody there, or not a Laminar node); LM_EVERSION
 * when the node speaks another protocol version; LM_EINVAL for a bad URL
 * or timeout; LM_EPROTO for an answer that is not a front door's;
 * LM_ETRANSPORT for other nng errors or a refusal; err names the URL and
 * says why. */
int lm_transport_identify(const char *url, int timeout_ms, uint32_t *node, lm_error *err);

#endif /* LM_TRANSPORT_H */
