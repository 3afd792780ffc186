/*
 * check_proto.c: the catalog codec: every message type of lm_catalog.def
 * round-trips with its fields filled generically from the descriptors;
 * the envelope is parsed into the lm_msg header; and bad input is refused
 * with the right code and a message: truncation at every byte, a wrong
 * version, an unknown type, an oversized message, wrongly typed or
 * missing fields, trailing bytes, out-of-range integers, broken batches.
 */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_mp.h"
#include "lm_proto.h"

/* Room for the payload struct of any message type. */
typedef union any_payload {
#define LM_MSG(NAME, id, lname, doc) lm_##lname##_msg lname;
#define LM_FIELD(lname, KIND, field, doc)
#define LM_MSG_END(lname)
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END
    max_align_t align;
} any_payload;

/* The catalog as the test sees it, straight from the .def file. */
static const struct {
    uint32_t id;
    const char *name;
    uint32_t nfields;
} catalog[] = {
#define LM_MSG(NAME, id, lname, doc)                                                               \
    {                                                                                              \
        id, #NAME, 0
#define LM_FIELD(lname, KIND, field, doc) +1
#define LM_MSG_END(lname)                                                                          \
    }                                                                                              \
    ,
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END
};

#define NCATALOG (sizeof(catalog) / sizeof(catalog[0]))

static const lm_addr src_addr = {0xfffffffeu, 0x123456789abcdef0ull};
static const lm_addr dst_addr = {7, UINT64_MAX};

/* A copy of m's bytes in a new message, as a receiver would get them:
 * nothing in the header is set. */
static lm_msg *
received(const lm_msg *m, size_t len)
{
    lm_msg *r = NULL;
    ck_assert_int_eq(lm_msg_alloc(len, &r), LM_OK);
    ck_assert_int_eq(lm_msg_append(r, m->data, len), LM_OK);
    return r;
}

static bool
inside(const void *p, const lm_msg *m)
{
    return (const uint8_t *)p >= m->data && (const uint8_t *)p < m->data + m->len;
}

/* Packs an envelope; the payload follows. */
static void
pack_envelope(msgpack_packer *pk, int64_t version, uint64_t type, uint64_t sn, uint64_t sa,
              uint64_t dn, uint64_t da)
{
    ck_assert_int_eq(msgpack_pack_array(pk, 7), 0);
    ck_assert_int_eq(msgpack_pack_int64(pk, version), 0);
    ck_assert_int_eq(msgpack_pack_uint64(pk, type), 0);
    ck_assert_int_eq(msgpack_pack_uint64(pk, sn), 0);
    ck_assert_int_eq(msgpack_pack_uint64(pk, sa), 0);
    ck_assert_int_eq(msgpack_pack_uint64(pk, dn), 0);
    ck_assert_int_eq(msgpack_pack_uint64(pk, da), 0);
}

static lm_msg *
new_packed(msgpack_packer *pk)
{
    lm_msg *m = NULL;
    ck_assert_int_eq(lm_msg_alloc(64, &m), LM_OK);
    lm_mp_packer_init(pk, m);
    return m;
}

/* Parses m's envelope (limit 1 MiB) and decodes it; returns the code. */
static int
parse_and_decode(lm_msg *m, any_payload *p, lm_error *err)
{
    int rv = lm_proto_parse_envelope(m, 1 << 20, err);
    return rv != LM_OK ? rv : lm_proto_decode(m, p, err);
}

/* Asserts that m parses and fails to decode with code, and a message
 * containing want1 and want2. Releases m. */
static void
expect_decode_error(lm_msg *m, int code, const char *want1, const char *want2)
{
    any_payload p;
    lm_error err;

    ck_assert_int_eq(parse_and_decode(m, &p, &err), code);
    ck_assert_int_eq(err.code, code);
    ck_assert_msg(strstr(err.msg, want1) != NULL, "message '%s' lacks '%s'", err.msg, want1);
    ck_assert_msg(want2 == NULL || strstr(err.msg, want2) != NULL, "message '%s' lacks '%s'",
                  err.msg, want2);
    ck_assert_uint_eq(atomic_load(&m->refs), 1); /* no batch kept it */
    lm_msg_release(m);
}

/* A small batch: an int64, a nullable utf8 and a bool column. */
static lm_batch *
small_batch(uint32_t nrows)
{
    static const lm_field f[3] = {
        {"k", LM_TYPE_INT64, false}, {"s", LM_TYPE_UTF8, true}, {"b", LM_TYPE_BOOL, false}};
    lm_schema *s = NULL;
    lm_batch *b = NULL;
    lm_error err;

    ck_assert_int_eq(lm_schema_new(f, 3, &s, &err), LM_OK);
    ck_assert_int_eq(lm_batch_new(s, 2, &b), LM_OK);
    lm_schema_release(s);
    for (uint32_t i = 0; i < nrows; i++) {
        char text[32];
        lm_value row[3];
        snprintf(text, sizeof(text), "ß-%u", i);
        row[0] = (lm_value){.v.i = (int64_t)i * -1000003};
        row[1] = (lm_value){.is_null = i % 3 == 1, .v.s = {text, (uint32_t)strlen(text)}};
        row[2] = (lm_value){.v.b = i % 2 == 0};
        ck_assert_int_eq(lm_batch_append_row(b, row, &err), LM_OK);
    }
    return b;
}

static void
assert_small_batch(const lm_batch *b, uint32_t nrows, const lm_msg *m)
{
    ck_assert_uint_eq(b->nrows, nrows);
    ck_assert_uint_eq(b->schema->nfields, 3);
    ck_assert_str_eq(b->schema->fields[1].name, "s");
    ck_assert_ptr_eq(b->backing, m);
    for (uint32_t i = 0; i < nrows; i++) {
        char text[32];
        lm_value v;
        snprintf(text, sizeof(text), "ß-%u", i);
        lm_batch_get(b, 0, i, &v);
        ck_assert_int_eq(v.v.i, (int64_t)i * -1000003);
        lm_batch_get(b, 1, i, &v);
        ck_assert(v.is_null == (i % 3 == 1));
        if (!v.is_null) {
            ck_assert_uint_eq(v.v.s.len, strlen(text));
            ck_assert(memcmp(v.v.s.ptr, text, v.v.s.len) == 0);
        }
        lm_batch_get(b, 2, i, &v);
        ck_assert(v.v.b == (i % 2 == 0));
    }
}

/* --- the catalog ------------------------------------------------------- */

START_TEST(test_proto_catalog_descriptors_match_the_def_file)
{
    uint32_t found = 0;

    for (uint32_t t = 0; t < 256; t++) {
        const lm_msg_desc *d = lm_proto_desc(t);
        if (d == NULL) {
            ck_assert_str_eq(lm_proto_type_name(t), "?");
            continue;
        }
        found++;
        ck_assert_uint_eq(d->type, t);
        ck_assert_str_eq(lm_proto_type_name(t), d->name);
        ck_assert_ptr_nonnull(d->doc);
        ck_assert_uint_le(d->size, sizeof(any_payload));
        for (uint32_t i = 0; i < d->nfields; i++) {
            ck_assert_uint_lt(d->fields[i].offset, d->size);
            ck_assert_int_le(d->fields[i].kind, LM_FK_BATCH);
        }
    }
    ck_assert_uint_eq(found, NCATALOG);
    for (size_t k = 0; k < NCATALOG; k++) {
        const lm_msg_desc *d = lm_proto_desc(catalog[k].id);
        ck_assert_ptr_nonnull(d);
        ck_assert_str_eq(d->name, catalog[k].name);
        ck_assert_uint_eq(d->nfields, catalog[k].nfields);
    }
    ck_assert_ptr_null(lm_proto_desc(256));
    ck_assert_ptr_null(lm_proto_desc(UINT32_MAX));
    ck_assert_str_eq(lm_proto_type_name(100000), "?");
    ck_assert_str_eq(lm_proto_type_name(LM_MT_WATERMARK), "WATERMARK");
}
END_TEST

/* --- generic round trip ---------------------------------------------------- */

typedef struct fill_ctx {
    char strs[16][96]; /* string field values */
    uint8_t bin[300];  /* bin field value */
    lm_batch *batch;   /* batch field value */
} fill_ctx;

/* Fills every field of payload generically from the descriptor. Variant 0
 * uses large and non-ASCII values, variant 1 zeros, false, empty strings
 * and bins, and a NULL batch. */
static void
fill(const lm_msg_desc *d, void *payload, int variant, fill_ctx *ctx)
{
    memset(payload, 0xa5, d->size); /* garbage in padding must not matter */
    for (uint32_t i = 0; i < d->nfields; i++) {
        const lm_field_desc *f = &d->fields[i];
        void *p = (char *)payload + f->offset;
        switch (f->kind) {
        case LM_FK_U32: *(uint32_t *)p = variant == 0 ? UINT32_MAX - d->type - i : 0; break;
        case LM_FK_U64:
            *(uint64_t *)p = variant == 0 ? (1ull << 63) + d->type * 1000ull + i : 0;
            break;
        case LM_FK_I64:
            *(int64_t *)p = variant == 0 ? INT64_MIN + d->type * 7 + i : -(int64_t)i;
            break;
        case LM_FK_F64: *(double *)p = variant == 0 ? -1234.5 * (i + 1) + d->type : 0.0; break;
        case LM_FK_BOOL: *(bool *)p = variant == 0; break;
        case LM_FK_STR: {
            lm_str *s = p;
            snprintf(ctx->strs[i], sizeof(ctx->strs[i]), "%s.%s — é日本 %u", d->name, f->name, i);
            *s = variant == 0 ? lm_str_c(ctx->strs[i]) : (lm_str){"", 0};
            break;
        }
        case LM_FK_BIN: {
            lm_bytes *b = p;
            for (size_t k = 0; k < sizeof(ctx->bin); k++) {
                ctx->bin[k] = (uint8_t)(k * 31 + d->type);
            }
            *b = variant == 0 ? (lm_bytes){ctx->bin, sizeof(ctx->bin)} : (lm_bytes){NULL, 0};
            break;
        }
        case LM_FK_ADDR:
            *(lm_addr *)p =
                variant == 0 ? (lm_addr){UINT32_MAX - i, UINT64_MAX - d->type} : LM_ADDR_NONE;
            break;
        case LM_FK_BATCH: *(lm_batch **)p = variant == 0 ? ctx->batch : NULL; break;
        }
    }
}

/* Compares every field of two payloads of d; strings, bins and batches
 * of got must point into m. */
static void
compare(const lm_msg_desc *d, const void *want, const void *got, const lm_msg *m)
{
    for (uint32_t i = 0; i < d->nfields; i++) {
        const lm_field_desc *f = &d->fields[i];
        const void *w = (const char *)want + f->offset;
        const void *g = (const char *)got + f->offset;
        switch (f->kind) {
        case LM_FK_U32:
            ck_assert_msg(*(const uint32_t *)w == *(const uint32_t *)g, "%s.%s", d->name, f->name);
            break;
        case LM_FK_U64:
            ck_assert_msg(*(const uint64_t *)w == *(const uint64_t *)g, "%s.%s", d->name, f->name);
            break;
        case LM_FK_I64:
            ck_assert_msg(*(const int64_t *)w == *(const int64_t *)g, "%s.%s", d->name, f->name);
            break;
        case LM_FK_F64:
            ck_assert_msg(memcmp(w, g, sizeof(double)) == 0, "%s.%s", d->name, f->name);
            break;
        case LM_FK_BOOL:
            ck_assert_msg(*(const bool *)w == *(const bool *)g, "%s.%s", d->name, f->name);
            break;
        case LM_FK_STR: {
            const lm_str *a = w, *b = g;
            ck_assert_msg(a->len == b->len, "%s.%s: length %u, want %u", d->name, f->name, b->len,
                          a->len);
            ck_assert_msg(a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0, "%s.%s", d->name,
                          f->name);
            ck_assert_msg(b->len == 0 || inside(b->ptr, m), "%s.%s: not in the message", d->name,
                          f->name);
            break;
        }
        case LM_FK_BIN: {
            const lm_bytes *a = w, *b = g;
            ck_assert_msg(a->len == b->len, "%s.%s", d->name, f->name);
            ck_assert_msg(a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0, "%s.%s", d->name,
                          f->name);
            ck_assert_msg(b->len == 0 || inside(b->ptr, m), "%s.%s: not in the message", d->name,
                          f->name);
            break;
        }
        case LM_FK_ADDR:
            ck_assert_msg(lm_addr_eq(*(const lm_addr *)w, *(const lm_addr *)g), "%s.%s", d->name,
                          f->name);
            break;
        case LM_FK_BATCH: {
            const lm_batch *a = *(lm_batch *const *)w, *b = *(lm_batch *const *)g;
            if (a == NULL) {
                ck_assert_ptr_null(b);
            } else {
                ck_assert_ptr_nonnull(b);
                assert_small_batch(b, a->nrows, m);
            }
            break;
        }
        }
    }
}

START_TEST(test_proto_round_trip_every_message_type)
{
    uint32_t types = 0, kinds = 0;

    for (uint32_t t = 0; t < 256; t++) {
        const lm_msg_desc *d = lm_proto_desc(t);
        if (d == NULL) {
            lm_msg *m = NULL;
            any_payload p;
            memset(&p, 0, sizeof(p));
            ck_assert_int_eq(lm_proto_encode(t, src_addr, dst_addr, &p, &m), LM_ETYPE);
            ck_assert_ptr_null(m);
            continue;
        }
        types++;
        for (int variant = 0; variant < 2; variant++) {
            fill_ctx *ctx = calloc(1, sizeof(*ctx));
            any_payload in, out;
            lm_msg *m = NULL, *r;
            uint32_t payload_off;
            lm_error err;

            ck_assert_ptr_nonnull(ctx);
            ctx->batch = small_batch(37);
            fill(d, &in, variant, ctx);
            ck_assert_int_eq(lm_proto_encode(t, src_addr, dst_addr, &in, &m), LM_OK);
            ck_assert_uint_eq(m->type, t);
            ck_assert(lm_addr_eq(m->src, src_addr));
            ck_assert(lm_addr_eq(m->dst, dst_addr));
            payload_off = m->payload_off;

            /* a receiver has only the bytes */
            r = received(m, m->len);
            lm_msg_release(m);
            ck_assert_msg(lm_proto_parse_envelope(r, r->len, &err) == LM_OK, "%s: %s", d->name,
                          err.msg);
            ck_assert_uint_eq(r->type, t);
            ck_assert(lm_addr_eq(r->src, src_addr));
            ck_assert(lm_addr_eq(r->dst, dst_addr));
            ck_assert_uint_eq(r->payload_off, payload_off);
            memset(&out, 0x5a, sizeof(out));
            ck_assert_msg(lm_proto_decode(r, &out, &err) == LM_OK, "%s variant %d: %s", d->name,
                          variant, err.msg);
            compare(d, &in, &out, r);
            lm_proto_fini(t, &out);
            ck_assert_uint_eq(atomic_load(&r->refs), 1);
            lm_msg_release(r);
            lm_batch_free(ctx->batch);
            free(ctx);
        }
        for (uint32_t i = 0; i < d->nfields; i++) {
            kinds |= 1u << d->fields[i].kind;
        }
    }
    ck_assert_uint_eq(types, NCATALOG);
    ck_assert(kinds & (1u << LM_FK_BATCH)); /* BATCH was among them */
}
END_TEST

/* --- the envelope ----------------------------------------------------------- */

START_TEST(test_proto_parse_envelope_sets_the_header)
{
    lm_watermark_msg wm = {.channel = 9, .ts = -5, .idle = true};
    lm_msg *m = NULL, *r;
    lm_error err;

    ck_assert_int_eq(lm_encode_watermark((lm_addr){5, 0x1234567890ull},
                                         (lm_addr){UINT32_MAX, UINT64_MAX}, &wm, &m),
                     LM_OK);
    r = received(m, m->len);
    ck_assert_uint_eq(r->type, 0);
    ck_assert_int_eq(lm_proto_parse_envelope(r, r->len, &err), LM_OK);
    ck_assert_uint_eq(r->type, LM_MT_WATERMARK);
    ck_assert_uint_eq(r->src.node, 5);
    ck_assert_uint_eq(r->src.actor, 0x1234567890ull);
    ck_assert_uint_eq(r->dst.node, UINT32_MAX);
    ck_assert_uint_eq(r->dst.actor, UINT64_MAX);
    /* 0x97, 1, 2, 5, cf+8, ce+4, cf+8: the payload array starts at 27 */
    ck_assert_uint_eq(r->payload_off, 27);
    ck_assert_uint_eq(r->data[27], 0x93);
    ck_assert_uint_eq(m->payload_off, 27);
    lm_msg_release(m);
    lm_msg_release(r);
}
END_TEST

START_TEST(test_proto_truncated_messages_rejected_at_every_length)
{
    lm_watermark_msg wm = {.channel = 1, .ts = INT64_MAX, .idle = false};
    lm_ping_msg ping = {
        .seq = UINT64_MAX, .sent_ns = -1, .body = {(const uint8_t *)"0123456789", 10}};
    lm_stop_msg stop = {.reason = lm_str_c("shutting down")};
    lm_child_exit_msg ce = {.child = {3, 4}, .failed = true, .code = LM_EPROTO, .reason = {"x", 1}};
    lm_batch *b = small_batch(9);
    lm_batch_msg bm = {.channel = 2, .batch = b};
    lm_msg *ms[5] = {NULL};

    ck_assert_int_eq(lm_encode_watermark(src_addr, dst_addr, &wm, &ms[0]), LM_OK);
    ck_assert_int_eq(lm_encode_ping(src_addr, dst_addr, &ping, &ms[1]), LM_OK);
    ck_assert_int_eq(lm_encode_stop(src_addr, dst_addr, &stop, &ms[2]), LM_OK);
    ck_assert_int_eq(lm_encode_child_exit(src_addr, dst_addr, &ce, &ms[3]), LM_OK);
    ck_assert_int_eq(lm_encode_batch(src_addr, dst_addr, &bm, &ms[4]), LM_OK);
    for (int k = 0; k < 5; k++) {
        for (size_t cut = 0; cut < ms[k]->len; cut++) {
            lm_msg *r = received(ms[k], cut);
            any_payload p;
            lm_error err;
            int rv = lm_proto_parse_envelope(r, 1 << 20, &err);

            if (cut <= ms[k]->payload_off) {
                /* the envelope is incomplete, or has no payload */
                ck_assert_msg(rv == LM_EPROTO, "message %d cut at %zu: %d", k, cut, rv);
            } else {
                ck_assert_msg(rv == LM_OK, "message %d cut at %zu: %s", k, cut, err.msg);
                rv = lm_proto_decode(r, &p, &err);
                ck_assert_msg(rv == LM_EPROTO, "message %d cut at %zu decoded: %d", k, cut, rv);
            }
            ck_assert_int_eq(err.code, LM_EPROTO);
            ck_assert(err.msg[0] != '\0');
            ck_assert_uint_eq(atomic_load(&r->refs), 1);
            lm_msg_release(r);
        }
        lm_msg_release(ms[k]);
    }
    lm_batch_free(b);
}
END_TEST

START_TEST(test_proto_rejects_a_wrong_version)
{
    static const int64_t versions[] = {0, LM_PROTO_VERSION - 1, LM_PROTO_VERSION + 1, 255, 1000000};
    for (size_t k = 0; k < sizeof(versions) / sizeof(versions[0]); k++) {
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        lm_error err;
        char want[64];

        pack_envelope(&pk, versions[k], LM_MT_END_OF_STREAM, 1, 1, 2, 2);
        ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
        ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_EVERSION);
        ck_assert_int_eq(err.code, LM_EVERSION);
        snprintf(want, sizeof(want), "version %lld", (long long)versions[k]);
        ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' lacks '%s'", err.msg, want);
        lm_msg_release(m);
    }
    {
        /* a version that is not an unsigned integer is malformed */
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        lm_error err;
        pack_envelope(&pk, -1, LM_MT_END_OF_STREAM, 1, 1, 2, 2);
        ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
        ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_EPROTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "envelope version"));
        lm_msg_release(m);
    }
    {
        /* nor is a type that is a string */
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        lm_error err;
        ck_assert_int_eq(msgpack_pack_array(&pk, 7), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, LM_PROTO_VERSION), 0);
        ck_assert_int_eq(lm_mp_pack_str(&pk, "PING", 4), 0);
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
        }
        ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
        ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_EPROTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "envelope type"));
        ck_assert_ptr_nonnull(strstr(err.msg, "found a string"));
        lm_msg_release(m);
    }
}
END_TEST

START_TEST(test_proto_rejects_an_unknown_type)
{
    /* 0x10002 and 2^32 + 2 would be WATERMARK if truncated to 16 or 32 bits */
    static const uint64_t types[] = {0,         6, 15, 47, 50, 255, 256, 0x10002, (1ull << 32) + 2,
                                     UINT64_MAX};
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        lm_error err;
        char want[64];

        pack_envelope(&pk, LM_PROTO_VERSION, types[k], 1, 1, 2, 2);
        ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
        ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_ETYPE);
        ck_assert_int_eq(err.code, LM_ETYPE);
        snprintf(want, sizeof(want), "type %llu", (unsigned long long)types[k]);
        ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' lacks '%s'", err.msg, want);
        lm_msg_release(m);
    }
    {
        /* decoding a message whose header names an unknown type */
        lm_end_of_stream_msg eos = {.channel = 1};
        lm_msg *m = NULL;
        any_payload p;
        lm_error err;
        ck_assert_int_eq(lm_encode_end_of_stream(src_addr, dst_addr, &eos, &m), LM_OK);
        m->type = 6;
        ck_assert_int_eq(lm_proto_decode(m, &p, &err), LM_ETYPE);
        ck_assert_int_eq(err.code, LM_ETYPE);
        lm_msg_release(m);
    }
}
END_TEST

START_TEST(test_proto_rejects_a_message_over_the_limit)
{
    uint8_t body[1000] = {0};
    lm_ping_msg ping = {.seq = 1, .sent_ns = 2, .body = {body, sizeof(body)}};
    lm_msg *m = NULL, *r;
    lm_error err;

    ck_assert_int_eq(lm_encode_ping(src_addr, dst_addr, &ping, &m), LM_OK);
    r = received(m, m->len);
    ck_assert_int_eq(lm_proto_parse_envelope(r, r->len - 1, &err), LM_ETOOBIG);
    ck_assert_int_eq(err.code, LM_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err.msg, "exceeds"));
    ck_assert_int_eq(lm_proto_parse_envelope(r, 0, &err), LM_ETOOBIG);
    ck_assert_int_eq(lm_proto_parse_envelope(r, r->len, &err), LM_OK);
    lm_msg_release(r);
    lm_msg_release(m);
}
END_TEST

START_TEST(test_proto_rejects_bad_envelope_addresses)
{
    static const struct {
        uint64_t sn, sa, dn, da;
        const char *want;
    } cases[] = {
        {1ull << 32, 1, 2, 2, "source address"},
        {1, 1, 1ull << 32, 2, "destination address"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        lm_error err;
        pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_END_OF_STREAM, cases[k].sn, cases[k].sa,
                      cases[k].dn, cases[k].da);
        ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
        ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_EPROTO);
        ck_assert_msg(strstr(err.msg, cases[k].want) != NULL, "'%s'", err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
        lm_msg_release(m);
    }
    {
        /* a negative actor id, and an envelope of six fields */
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        lm_error err;
        ck_assert_int_eq(msgpack_pack_array(&pk, 7), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, LM_PROTO_VERSION), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, LM_MT_END_OF_STREAM), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
        ck_assert_int_eq(msgpack_pack_int8(&pk, -1), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
        ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
        ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
        ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_EPROTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "source address"));
        lm_msg_release(m);

        m = new_packed(&pk);
        ck_assert_int_eq(msgpack_pack_array(&pk, 6), 0);
        for (int i = 0; i < 6; i++) {
            ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
        }
        ck_assert_int_eq(lm_proto_parse_envelope(m, 1 << 20, &err), LM_EPROTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "envelope"));
        lm_msg_release(m);
    }
}
END_TEST

/* --- payload errors ------------------------------------------------------- */

START_TEST(test_proto_rejects_a_wrongly_typed_field)
{
    msgpack_packer pk;
    lm_msg *m;

    /* a string where WATERMARK.ts, an integer, belongs */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_WATERMARK, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(lm_mp_pack_str(&pk, "12", 2), 0);
    ck_assert_int_eq(msgpack_pack_false(&pk), 0);
    expect_decode_error(m, LM_EPROTO, "WATERMARK.ts", "found a string");

    /* an integer where WATERMARK.idle, a boolean, belongs */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_WATERMARK, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_int64(&pk, -7), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    expect_decode_error(m, LM_EPROTO, "WATERMARK.idle", "found an integer");

    /* a negative number where WATERMARK.channel, a U32, belongs */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_WATERMARK, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_int64(&pk, -1), 0);
    ck_assert_int_eq(msgpack_pack_int64(&pk, 5), 0);
    ck_assert_int_eq(msgpack_pack_true(&pk), 0);
    expect_decode_error(m, LM_EPROTO, "WATERMARK.channel", "negative");

    /* a bin where STOP.reason, a string, belongs */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_STOP, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_bin(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_bin_body(&pk, "x", 1), 0);
    expect_decode_error(m, LM_EPROTO, "STOP.reason", "found a bin");

    /* an address of one element */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_CHILD_EXIT, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 4), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_false(&pk), 0);
    ck_assert_int_eq(msgpack_pack_int64(&pk, 0), 0);
    ck_assert_int_eq(lm_mp_pack_str(&pk, "r", 1), 0);
    expect_decode_error(m, LM_EPROTO, "CHILD_EXIT.child", NULL);

    /* a string where a PING.body bin belongs */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_PING, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(lm_mp_pack_str(&pk, "x", 1), 0);
    expect_decode_error(m, LM_EPROTO, "PING.body", "found a string");
}
END_TEST

START_TEST(test_proto_rejects_a_wrong_number_of_fields)
{
    static const uint32_t counts[] = {0, 2, 4};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_WATERMARK, 1, 1, 2, 2);
        ck_assert_int_eq(msgpack_pack_array(&pk, counts[k]), 0);
        for (uint32_t i = 0; i < counts[k]; i++) {
            ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
        }
        expect_decode_error(m, LM_EPROTO, "WATERMARK payload", "wrong number of elements");
    }
    {
        /* a payload that is not an array */
        msgpack_packer pk;
        lm_msg *m = new_packed(&pk);
        pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_WATERMARK, 1, 1, 2, 2);
        ck_assert_int_eq(msgpack_pack_map(&pk, 0), 0);
        expect_decode_error(m, LM_EPROTO, "WATERMARK payload", "found a map");
    }
}
END_TEST

START_TEST(test_proto_rejects_trailing_bytes)
{
    lm_credit_msg cr = {.channel = 1, .batches = 2};
    lm_batch *b = small_batch(5);
    lm_batch_msg bm = {.channel = 1, .batch = b};
    lm_msg *m = NULL;

    ck_assert_int_eq(lm_encode_credit(src_addr, dst_addr, &cr, &m), LM_OK);
    ck_assert_int_eq(lm_msg_append(m, "\xc0", 1), LM_OK);
    expect_decode_error(m, LM_EPROTO, "CREDIT payload", "1 trailing bytes");

    /* the batch decoded before the trailing bytes are found is freed
     * (expect_decode_error checks the message has no other reference) */
    ck_assert_int_eq(lm_encode_batch(src_addr, dst_addr, &bm, &m), LM_OK);
    ck_assert_int_eq(lm_msg_append(m, "\x01\x02", 2), LM_OK);
    expect_decode_error(m, LM_EPROTO, "BATCH payload", "2 trailing bytes");
    lm_batch_free(b);
}
END_TEST

START_TEST(test_proto_rejects_u32_fields_above_uint32_max)
{
    msgpack_packer pk;
    lm_msg *m;
    any_payload p;
    lm_error err;

    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_CREDIT, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint32(&pk, UINT32_MAX), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&pk, 1ull << 32), 0);
    expect_decode_error(m, LM_EPROTO, "CREDIT.batches", "out of range");

    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_CREDIT, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&pk, UINT64_MAX), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
    expect_decode_error(m, LM_EPROTO, "CREDIT.channel", "out of range");

    /* the largest U32 is fine */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_CREDIT, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&pk, UINT32_MAX), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&pk, UINT32_MAX), 0);
    ck_assert_int_eq(parse_and_decode(m, &p, &err), LM_OK);
    ck_assert_uint_eq(p.credit.channel, UINT32_MAX);
    ck_assert_uint_eq(p.credit.batches, UINT32_MAX);
    lm_msg_release(m);

    /* an ADDR's node is a U32 too */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_UNDELIVERABLE, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 4), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&pk, 1ull << 32), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_int8(&pk, -3), 0);
    ck_assert_int_eq(lm_mp_pack_str(&pk, "r", 1), 0);
    expect_decode_error(m, LM_EPROTO, "UNDELIVERABLE.dst", "out of range");
}
END_TEST

START_TEST(test_proto_rejects_a_broken_batch)
{
    static const uint8_t two = 2;
    msgpack_packer pk;
    lm_msg *m;
    any_payload p;
    lm_error err;

    /* [channel, [1, [["flag", bool, false]], [[0, nil, pad, bin{2}, pad, bin{}]]]] */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_BATCH, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 4), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(lm_mp_pack_str(&pk, "flag", 4), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, LM_TYPE_BOOL), 0);
    ck_assert_int_eq(msgpack_pack_false(&pk), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 1), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 6), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 0), 0);
    ck_assert_int_eq(msgpack_pack_nil(&pk), 0);
    ck_assert_int_eq(lm_mp_pack_bin_aligned(&pk, m, &two, 1, 8), 0);
    ck_assert_int_eq(lm_mp_pack_bin_aligned(&pk, m, NULL, 0, 8), 0);
    expect_decode_error(m, LM_EPROTO, "BATCH.batch: batch column 'flag'", "boolean");

    /* more rows than LM_PROTO_MAX_BATCH_ROWS, with no column to pay for them */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_BATCH, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 4), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint32(&pk, LM_PROTO_MAX_BATCH_ROWS + 1), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
    expect_decode_error(m, LM_EPROTO, "BATCH.batch: batch header", "out of range");

    /* exactly the limit is a batch */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_BATCH, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 4), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 3), 0);
    ck_assert_int_eq(msgpack_pack_uint32(&pk, LM_PROTO_MAX_BATCH_ROWS), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
    ck_assert_int_eq(parse_and_decode(m, &p, &err), LM_OK);
    ck_assert_uint_eq(p.batch.batch->nrows, LM_PROTO_MAX_BATCH_ROWS);
    lm_proto_fini(LM_MT_BATCH, &p);
    lm_msg_release(m);

    /* nil is no batch */
    m = new_packed(&pk);
    pack_envelope(&pk, LM_PROTO_VERSION, LM_MT_BATCH, 1, 1, 2, 2);
    ck_assert_int_eq(msgpack_pack_array(&pk, 2), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 4), 0);
    ck_assert_int_eq(msgpack_pack_nil(&pk), 0);
    ck_assert_int_eq(parse_and_decode(m, &p, &err), LM_OK);
    ck_assert_ptr_null(p.batch.batch);
    ck_assert_uint_eq(p.batch.channel, 4);
    lm_proto_fini(LM_MT_BATCH, &p);
    lm_msg_release(m);
}
END_TEST

/* --- typed wrappers and borrowed strings ------------------------------------ */

START_TEST(test_proto_typed_decode_checks_the_type)
{
    lm_ping_msg ping = {.seq = 77, .sent_ns = -123456789, .body = {(const uint8_t *)"\0\1\2", 3}};
    lm_watermark_msg wm;
    lm_pong_msg pong;
    lm_ping_msg back;
    lm_msg *m = NULL, *r;
    lm_error err;

    ck_assert_int_eq(lm_encode_ping(src_addr, dst_addr, &ping, &m), LM_OK);
    r = received(m, m->len);
    lm_msg_release(m);
    ck_assert_int_eq(lm_proto_parse_envelope(r, 1 << 20, &err), LM_OK);
    ck_assert_int_eq(lm_decode_watermark(r, &wm, &err), LM_ETYPE);
    ck_assert_int_eq(err.code, LM_ETYPE);
    ck_assert_str_eq(err.msg, "expected a WATERMARK message, got PING");
    ck_assert_int_eq(lm_decode_pong(r, &pong, &err), LM_ETYPE);
    ck_assert_int_eq(lm_decode_ping(r, &back, &err), LM_OK);
    ck_assert_uint_eq(back.seq, 77);
    ck_assert_int_eq(back.sent_ns, -123456789);
    ck_assert_uint_eq(back.body.len, 3);
    ck_assert(memcmp(back.body.ptr, "\0\1\2", 3) == 0);
    lm_msg_release(r);
}
END_TEST

START_TEST(test_proto_strings_point_into_the_message)
{
    lm_node_status_msg ns = {.node = 4, .incarnation = 99, .up = false, .reason = lm_str_c("lost")};
    lm_link_request_msg lr = {.node = 1,
                              .incarnation = 2,
                              .url = lm_str_c("tcp://127.0.0.1:6669"),
                              .version = LM_PROTO_VERSION};
    lm_node_status_msg ns_out;
    lm_link_request_msg lr_out;
    lm_msg *m = NULL, *r;
    lm_error err;

    ck_assert_int_eq(lm_encode_node_status(src_addr, dst_addr, &ns, &m), LM_OK);
    r = received(m, m->len);
    lm_msg_release(m);
    ck_assert_int_eq(lm_proto_parse_envelope(r, 1 << 20, &err), LM_OK);
    ck_assert_int_eq(lm_decode_node_status(r, &ns_out, &err), LM_OK);
    ck_assert_uint_eq(ns_out.reason.len, 4);
    ck_assert(inside(ns_out.reason.ptr, r));
    ck_assert(inside(ns_out.reason.ptr + 3, r));
    ck_assert(memcmp(ns_out.reason.ptr, "lost", 4) == 0);
    ck_assert(!ns_out.up);
    lm_msg_release(r);

    ck_assert_int_eq(lm_encode_link_request(src_addr, dst_addr, &lr, &m), LM_OK);
    r = received(m, m->len);
    lm_msg_release(m);
    ck_assert_int_eq(lm_proto_parse_envelope(r, 1 << 20, &err), LM_OK);
    ck_assert_int_eq(lm_decode_link_request(r, &lr_out, &err), LM_OK);
    ck_assert(inside(lr_out.url.ptr, r));
    ck_assert_uint_eq(lr_out.url.len, strlen("tcp://127.0.0.1:6669"));
    ck_assert(memcmp(lr_out.url.ptr, "tcp://127.0.0.1:6669", lr_out.url.len) == 0);
    ck_assert_uint_eq(lr_out.version, LM_PROTO_VERSION);
    lm_msg_release(r);
}
END_TEST

Suite *
proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_proto_catalog_descriptors_match_the_def_file);
    tcase_add_test(tc, test_proto_round_trip_every_message_type);
    tcase_add_test(tc, test_proto_parse_envelope_sets_the_header);
    tcase_add_test(tc, test_proto_truncated_messages_rejected_at_every_length);
    tcase_add_test(tc, test_proto_rejects_a_wrong_version);
    tcase_add_test(tc, test_proto_rejects_an_unknown_type);
    tcase_add_test(tc, test_proto_rejects_a_message_over_the_limit);
    tcase_add_test(tc, test_proto_rejects_bad_envelope_addresses);
    tcase_add_test(tc, test_proto_rejects_a_wrongly_typed_field);
    tcase_add_test(tc, test_proto_rejects_a_wrong_number_of_fields);
    tcase_add_test(tc, test_proto_rejects_trailing_bytes);
    tcase_add_test(tc, test_proto_rejects_u32_fields_above_uint32_max);
    tcase_add_test(tc, test_proto_rejects_a_broken_batch);
    tcase_add_test(tc, test_proto_typed_decode_checks_the_type);
    tcase_add_test(tc, test_proto_strings_point_into_the_message);
    suite_add_tcase(s, tc);
    return s;
}
