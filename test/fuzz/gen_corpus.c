/*
 * gen_corpus.c: writes the seed inputs of the fuzz_decode target: valid
 * encoded messages of several types (BATCH with every column type, nulls,
 * empty and non-ASCII strings; an empty BATCH; a BATCH without a batch;
 * WATERMARK, BARRIER, PING, STOP, CHILD_EXIT, LINK_REQUEST, ...), and a bare
 * encoded batch for the raw lm_batch_decode path.
 *
 * Not part of any build; run it by hand when the wire format changes:
 *   make && gcc -std=c11 -D_GNU_SOURCE -Iruntime -Iproto test/fuzz/gen_corpus.c \
 *       build/release/liblaminar.a $(pkg-config --libs libevent_core libevent_pthreads \
 *       msgpack libzstd yaml-0.1) -lnng -lm -pthread -o build/gen_corpus && \
 *   build/gen_corpus test/fuzz/corpus/fuzz_decode
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_batch.h"
#include "lm_mp.h"
#include "lm_proto.h"

static const char *outdir;

static void
die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s\n", what);
    exit(1);
}

static void
write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        die(path);
    }
    printf("%s: %zu bytes\n", path, n);
}

static void
write_msg(const char *name, uint32_t type, const void *payload)
{
    lm_msg *m = NULL;

    if (lm_proto_encode(type, (lm_addr){1, 0x100000002ull}, (lm_addr){2, 7}, payload, &m) !=
        LM_OK) {
        die(name);
    }
    write_file(name, m->data, m->len);
    lm_msg_release(m);
}

/* A batch of every column type, with nulls, empty and non-ASCII strings. */
static lm_batch *
sample_batch(uint32_t nrows)
{
    static const lm_field f[] = {
        {"flag", LM_TYPE_BOOL, true}, {"n", LM_TYPE_INT64, false},
        {"x", LM_TYPE_FLOAT64, true}, {"ts", LM_TYPE_TIMESTAMP, true},
        {"name", LM_TYPE_UTF8, true}, {"blob", LM_TYPE_BINARY, true},
    };
    static const char *names[] = {"", "héllo", "日本語", "🎉 party", "plain"};
    lm_schema *s = NULL;
    lm_batch *b = NULL;
    lm_error err;

    if (lm_schema_new(f, 6, &s, &err) != LM_OK || lm_batch_new(s, 4, &b) != LM_OK) {
        die("batch");
    }
    lm_schema_release(s);
    for (uint32_t i = 0; i < nrows; i++) {
        uint8_t blob[4] = {0, 0xff, (uint8_t)i, 0x80};
        lm_value row[6];
        memset(row, 0, sizeof(row));
        row[0].is_null = i % 4 == 3;
        row[0].v.b = i % 2 == 0;
        row[1].v.i = (int64_t)i * -7777777;
        row[2].is_null = i % 5 == 1;
        row[2].v.f = i * 0.25 - 1;
        row[3].is_null = i % 3 == 2;
        row[3].v.i = 1700000000000000ll + i;
        row[4].is_null = i % 6 == 5;
        row[4].v.s.ptr = names[i % 5];
        row[4].v.s.len = (uint32_t)strlen(names[i % 5]);
        row[5].is_null = i % 7 == 6;
        row[5].v.s.ptr = blob;
        row[5].v.s.len = i % 5;
        if (lm_batch_append_row(b, row, &err) != LM_OK) {
            die(err.msg);
        }
    }
    return b;
}

int
main(int argc, char **argv)
{
    static const uint8_t body[] = {0, 1, 2, 3, 0xc1, 0xff};
    lm_batch *b, *empty;

    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    outdir = argv[1];
    b = sample_batch(10);
    empty = sample_batch(0);

    write_msg("batch", LM_MT_BATCH, &(lm_batch_msg){.channel = 2, .batch = b});
    write_msg("batch_empty", LM_MT_BATCH, &(lm_batch_msg){.channel = 0, .batch = empty});
    write_msg("batch_nil", LM_MT_BATCH, &(lm_batch_msg){.channel = 1, .batch = NULL});
    write_msg("watermark", LM_MT_WATERMARK,
              &(lm_watermark_msg){.channel = 3, .ts = -1700000000000000ll, .idle = true});
    write_msg("barrier", LM_MT_BARRIER,
              &(lm_barrier_msg){.channel = 1,
                                .epoch = 42,
                                .kind = LM_BARRIER_SAVEPOINT,
                                .then_stop = true,
                                .ts = 1700000000000});
    write_msg("end_of_stream", LM_MT_END_OF_STREAM, &(lm_end_of_stream_msg){.channel = 65536});
    write_msg("credit", LM_MT_CREDIT, &(lm_credit_msg){.channel = 4, .batches = UINT32_MAX});
    write_msg("timer", LM_MT_TIMER, &(lm_timer_msg){.id = UINT64_MAX, .tag = 9});
    write_msg("stop", LM_MT_STOP, &(lm_stop_msg){.reason = lm_str_c("shutdown requested")});
    write_msg("child_exit", LM_MT_CHILD_EXIT,
              &(lm_child_exit_msg){.child = {3, 0x500000002ull},
                                   .failed = true,
                                   .code = LM_EPROTO,
                                   .reason = lm_str_c("bad input")});
    write_msg("undeliverable", LM_MT_UNDELIVERABLE,
              &(lm_undeliverable_msg){.dst = {9, 1},
                                      .type = LM_MT_PING,
                                      .code = LM_ENOACTOR,
                                      .reason = lm_str_c("no such actor")});
    write_msg("node_status", LM_MT_NODE_STATUS,
              &(lm_node_status_msg){
                  .node = 5, .incarnation = 77, .up = true, .reason = lm_str_c("connected")});
    write_msg("link_request", LM_MT_LINK_REQUEST,
              &(lm_link_request_msg){.node = 2,
                                     .incarnation = 3,
                                     .url = lm_str_c("tcp://127.0.0.1:6669"),
                                     .version = LM_PROTO_VERSION});
    write_msg("ping", LM_MT_PING,
              &(lm_ping_msg){.seq = 1, .sent_ns = 123456789, .body = {body, sizeof(body)}});

    /* the bare batch, for the raw decode path */
    {
        lm_msg *m = NULL;
        msgpack_packer pk;
        if (lm_msg_alloc(256, &m) != LM_OK) {
            die("alloc");
        }
        lm_mp_packer_init(&pk, m);
        if (lm_batch_encode(b, &pk, m) != LM_OK) {
            die("encode");
        }
        write_file("raw_batch", m->data, m->len);
        lm_msg_release(m);
    }
    lm_batch_free(b);
    lm_batch_free(empty);
    return 0;
}
