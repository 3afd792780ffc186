/*
 * lm_proto.c: the catalog-driven codec. The descriptors below are made
 * from lm_catalog.def; encode and decode walk them, so a message type is
 * added to the protocol by adding it to the catalog and nowhere else.
 */
#include "lm_proto.h"

#include <stdio.h>
#include <string.h>

#include "lm_mp.h"

/* Field descriptor arrays: fields_batch[], fields_watermark[], ... */
#define LM_MSG(NAME, id, lname, doc)      static const lm_field_desc fields_##lname[] = {
#define LM_FIELD(lname, KIND, field, doc) {#field, LM_FK_##KIND, offsetof(lm_##lname##_msg, field)},
#define LM_MSG_END(lname)                                                                          \
    }                                                                                              \
    ;
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END

/* Message descriptors: desc_batch, desc_watermark, ... */
#define LM_MSG(NAME, id, lname, doc)                                                               \
    static const lm_msg_desc desc_##lname = {id,                                                   \
                                             #NAME,                                                \
                                             doc,                                                  \
                                             fields_##lname,                                       \
                                             sizeof(fields_##lname) / sizeof(lm_field_desc),       \
                                             sizeof(lm_##lname##_msg)};
#define LM_FIELD(lname, KIND, field, doc)
#define LM_MSG_END(lname)
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END

#define MAX_TYPE 256

static const lm_msg_desc *const by_type[MAX_TYPE] = {
#define LM_MSG(NAME, id, lname, doc) [id] = &desc_##lname,
#define LM_FIELD(lname, KIND, field, doc)
#define LM_MSG_END(lname)
#include "lm_catalog.def"
#undef LM_MSG
#undef LM_FIELD
#undef LM_MSG_END
};

#define ENVELOPE_FIELDS 7

const lm_msg_desc *
lm_proto_desc(uint32_t type)
{
    return type < MAX_TYPE ? by_type[type] : NULL;
}

const char *
lm_proto_type_name(uint32_t type)
{
    const lm_msg_desc *d = lm_proto_desc(type);
    return d != NULL ? d->name : "?";
}

/* A guess at the encoded size, so that the buffer is allocated once. */
static size_t
size_hint(const lm_msg_desc *d, const void *payload)
{
    size_t n = 48;

    for (uint32_t i = 0; i < d->nfields; i++) {
        const void *f = (const char *)payload + d->fields[i].offset;
        switch (d->fields[i].kind) {
        case LM_FK_STR: n += ((const lm_str *)f)->len + 5; break;
        case LM_FK_BIN: n += ((const lm_bytes *)f)->len + 5; break;
        case LM_FK_BATCH: {
            const lm_batch *b = *(lm_batch *const *)f;
            n += 16;
            for (uint32_t c = 0; b != NULL && c < b->schema->nfields; c++) {
                n += 64 + strlen(b->schema->fields[c].name) + (b->nrows + 1) * 8 +
                     b->cols[c].data_len + b->nrows / 8;
            }
            break;
        }
        default: n += 10; break;
        }
    }
    return n;
}

int
lm_proto_encode(uint32_t type, lm_addr src, lm_addr dst, const void *payload, lm_msg **out)
{
    const lm_msg_desc *d = lm_proto_desc(type);
    msgpack_packer pk;
    lm_msg *m;
    int bad = 0;

    if (d == NULL) {
        return LM_ETYPE;
    }
    if (lm_msg_alloc(size_hint(d, payload), &m) != LM_OK) {
        return LM_ENOMEM;
    }
    lm_mp_packer_init(&pk, m);
    bad |= msgpack_pack_array(&pk, ENVELOPE_FIELDS);
    bad |= msgpack_pack_uint32(&pk, LM_PROTO_VERSION);
    bad |= msgpack_pack_uint32(&pk, type);
    bad |= msgpack_pack_uint32(&pk, src.node);
    bad |= msgpack_pack_uint64(&pk, src.actor);
    bad |= msgpack_pack_uint32(&pk, dst.node);
    bad |= msgpack_pack_uint64(&pk, dst.actor);
    m->payload_off = (uint32_t)m->len;
    bad |= msgpack_pack_array(&pk, d->nfields);
    for (uint32_t i = 0; i < d->nfields && !bad; i++) {
        const void *f = (const char *)payload + d->fields[i].offset;
        switch (d->fields[i].kind) {
        case LM_FK_U32: bad |= msgpack_pack_uint32(&pk, *(const uint32_t *)f); break;
        case LM_FK_U64: bad |= msgpack_pack_uint64(&pk, *(const uint64_t *)f); break;
        case LM_FK_I64: bad |= msgpack_pack_int64(&pk, *(const int64_t *)f); break;
        case LM_FK_F64: bad |= msgpack_pack_double(&pk, *(const double *)f); break;
        case LM_FK_BOOL:
            bad |= *(const bool *)f ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
            break;
        case LM_FK_STR: {
            const lm_str *s = f;
            bad |= lm_mp_pack_str(&pk, s->ptr, s->len);
            break;
        }
        case LM_FK_BIN: {
            const lm_bytes *b = f;
            bad |= msgpack_pack_bin(&pk, b->len);
            if (b->len > 0) {
                bad |= msgpack_pack_bin_body(&pk, b->ptr, b->len);
            }
            break;
        }
        case LM_FK_ADDR: {
            const lm_addr *a = f;
            bad |= msgpack_pack_array(&pk, 2);
            bad |= msgpack_pack_uint32(&pk, a->node);
            bad |= msgpack_pack_uint64(&pk, a->actor);
            break;
        }
        case LM_FK_BATCH: {
            const lm_batch *b = *(lm_batch *const *)f;
            if (b == NULL) {
                bad |= msgpack_pack_nil(&pk);
            } else {
                bad |= lm_batch_encode(b, &pk, m) != LM_OK;
            }
            break;
        }
        }
    }
    if (bad) {
        lm_msg_release(m);
        return LM_ENOMEM;
    }
    m->type = (uint16_t)type;
    m->src = src;
    m->dst = dst;
    *out = m;
    return LM_OK;
}

int
lm_proto_parse_envelope(lm_msg *m, size_t max_len, lm_error *err)
{
    lm_mpr r;
    uint64_t version, type, sn, sa, dn, da;

    if (m->len > max_len) {
        return lm_error_set(err, LM_ETOOBIG, "message of %zu bytes exceeds the limit of %zu bytes",
                            m->len, max_len);
    }
    lm_mpr_init(&r, m->data, m->len);
    if (lm_mpr_array_n(&r, ENVELOPE_FIELDS) != LM_OK) {
        return lm_mpr_error(&r, err, "envelope");
    }
    if (lm_mpr_u64(&r, &version) != LM_OK) {
        return lm_mpr_error(&r, err, "envelope version");
    }
    if (version != LM_PROTO_VERSION) {
        return lm_error_set(err, LM_EVERSION, "envelope: protocol version %llu, expected %d",
                            (unsigned long long)version, LM_PROTO_VERSION);
    }
    if (lm_mpr_u64(&r, &type) != LM_OK) {
        return lm_mpr_error(&r, err, "envelope type");
    }
    if (lm_proto_desc(type > UINT32_MAX ? 0 : (uint32_t)type) == NULL) {
        return lm_error_set(err, LM_ETYPE, "envelope: unknown message type %llu",
                            (unsigned long long)type);
    }
    if (lm_mpr_u64_max(&r, UINT32_MAX, &sn) != LM_OK || lm_mpr_u64(&r, &sa) != LM_OK) {
        return lm_mpr_error(&r, err, "envelope source address");
    }
    if (lm_mpr_u64_max(&r, UINT32_MAX, &dn) != LM_OK || lm_mpr_u64(&r, &da) != LM_OK) {
        return lm_mpr_error(&r, err, "envelope destination address");
    }
    if (lm_mpr_remaining(&r) == 0) {
        return lm_error_set(err, LM_EPROTO, "envelope: no payload");
    }
    m->type = (uint16_t)type;
    m->src = (lm_addr){(uint32_t)sn, sa};
    m->dst = (lm_addr){(uint32_t)dn, da};
    m->payload_off = (uint32_t)lm_mpr_offset(&r);
    return LM_OK;
}

void
lm_proto_fini(uint32_t type, void *payload)
{
    const lm_msg_desc *d = lm_proto_desc(type);

    for (uint32_t i = 0; d != NULL && i < d->nfields; i++) {
        if (d->fields[i].kind == LM_FK_BATCH) {
            lm_batch **b = (lm_batch **)((char *)payload + d->fields[i].offset);
            lm_batch_free(*b);
            *b = NULL;
        }
    }
}

/* Names the field that failed: "WATERMARK.ts: <reader's reason>". */
static int
field_error(const lm_mpr *r, lm_error *err, const lm_msg_desc *d, const lm_field_desc *f)
{
    char what[96];
    snprintf(what, sizeof(what), "%s.%s", d->name, f->name);
    return lm_mpr_error(r, err, what);
}

int
lm_proto_decode(lm_msg *m, void *payload, lm_error *err)
{
    const lm_msg_desc *d = lm_proto_desc(m->type);
    lm_mpr r;
    int rv = LM_OK;

    if (d == NULL) {
        return lm_error_set(err, LM_ETYPE, "unknown message type %u", m->type);
    }
    memset(payload, 0, d->size);
    lm_mpr_init(&r, m->data, m->len);
    r.p = m->data + m->payload_off;
    if (lm_mpr_array_n(&r, d->nfields) != LM_OK) {
        char what[64];
        snprintf(what, sizeof(what), "%s payload", d->name);
        return lm_mpr_error(&r, err, what);
    }
    for (uint32_t i = 0; i < d->nfields && rv == LM_OK; i++) {
        const lm_field_desc *f = &d->fields[i];
        void *p = (char *)payload + f->offset;
        uint64_t u = 0;
        switch (f->kind) {
        case LM_FK_U32:
            rv = lm_mpr_u64_max(&r, UINT32_MAX, &u);
            *(uint32_t *)p = (uint32_t)u;
            break;
        case LM_FK_U64: rv = lm_mpr_u64(&r, p); break;
        case LM_FK_I64: rv = lm_mpr_i64(&r, p); break;
        case LM_FK_F64: rv = lm_mpr_f64(&r, p); break;
        case LM_FK_BOOL: rv = lm_mpr_bool(&r, p); break;
        case LM_FK_STR: {
            lm_str *s = p;
            rv = lm_mpr_str(&r, &s->ptr, &s->len);
            if (rv == LM_OK && !lm_utf8_valid((const uint8_t *)s->ptr, s->len)) {
                rv = lm_error_set(err, LM_EPROTO, "%s.%s: string is not valid UTF-8", d->name,
                                  f->name);
                lm_proto_fini(m->type, payload);
                return rv;
            }
            break;
        }
        case LM_FK_BIN: {
            lm_bytes *b = p;
            rv = lm_mpr_bin(&r, &b->ptr, &b->len);
            break;
        }
        case LM_FK_ADDR: {
            lm_addr *a = p;
            rv = lm_mpr_array_n(&r, 2);
            if (rv == LM_OK) {
                rv = lm_mpr_u64_max(&r, UINT32_MAX, &u);
                a->node = (uint32_t)u;
            }
            if (rv == LM_OK) {
                rv = lm_mpr_u64(&r, &a->actor);
            }
            break;
        }
        case LM_FK_BATCH:
            if (lm_mpr_nil(&r)) {
                *(lm_batch **)p = NULL;
                break;
            }
            rv = lm_batch_decode(&r, m, LM_PROTO_MAX_BATCH_ROWS, (lm_batch **)p, err);
            if (rv != LM_OK) {
                lm_error_prefix(err, "%s.%s", d->name, f->name);
                lm_proto_fini(m->type, payload);
                return rv;
            }
            break;
        }
        if (rv != LM_OK) {
            rv = field_error(&r, err, d, f);
        }
    }
    if (rv == LM_OK && lm_mpr_remaining(&r) != 0) {
        rv = lm_error_set(err, LM_EPROTO, "%s payload: %zu trailing bytes at byte %zu", d->name,
                          lm_mpr_remaining(&r), lm_mpr_offset(&r));
    }
    if (rv != LM_OK) {
        lm_proto_fini(m->type, payload);
    }
    return rv;
}
