/*
 * lm_mp.c: msgpack packing into lm_msg buffers (msgpack-c's packer), and
 * the bounds-checked reader lm_mpr.
 */
#include "lm_mp.h"

#include <stdio.h>
#include <string.h>

/* --- encoding --------------------------------------------------------- */

/* msgpack-c's packer writes every token (1-9 bytes) through this
 * callback; copy those with fixed-size moves the compiler inlines, and
 * leave bodies and growth to lm_msg_append. */
static int
msg_write(void *data, const char *buf, size_t len)
{
    lm_msg *m = data;

    if (m->nmsg == NULL && m->len + 9 <= m->cap) {
        uint8_t *d = m->data + m->len;
        switch (len) {
        case 1:
            d[0] = (uint8_t)buf[0];
            m->len += 1;
            return 0;
        case 2:
            memcpy(d, buf, 2);
            m->len += 2;
            return 0;
        case 3:
            memcpy(d, buf, 3);
            m->len += 3;
            return 0;
        case 5:
            memcpy(d, buf, 5);
            m->len += 5;
            return 0;
        case 9:
            memcpy(d, buf, 9);
            m->len += 9;
            return 0;
        default: break;
        }
    }
    return lm_msg_append(m, buf, len) == LM_OK ? 0 : -1;
}

void
lm_mp_packer_init(msgpack_packer *pk, lm_msg *m)
{
    msgpack_packer_init(pk, m, msg_write);
}

/* The size of a bin header for a body of n bytes. */
static size_t
bin_header_len(size_t n)
{
    return n < 256 ? 2 : n < 65536 ? 3 : 5;
}

int
lm_mp_pack_bin_aligned(msgpack_packer *pk, lm_msg *m, const void *p, size_t n, size_t align)
{
    static const uint8_t zeros[8] = {0};
    /* The padding bin is a bin8 (2 header bytes) of pad bytes; choose pad
     * so that the body after the real bin's header lands on align. */
    size_t body_at = m->len + 2 + bin_header_len(n);
    size_t pad = (align - (body_at & (align - 1))) & (align - 1);

    if (msgpack_pack_bin(pk, pad) != 0 || msgpack_pack_bin_body(pk, zeros, pad) != 0) {
        return -1;
    }
    if (msgpack_pack_bin(pk, n) != 0) {
        return -1;
    }
    return n == 0 ? 0 : msgpack_pack_bin_body(pk, p, n);
}

int
lm_mp_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    if (msgpack_pack_str(pk, n) != 0) {
        return -1;
    }
    return n == 0 ? 0 : msgpack_pack_str_body(pk, s, n);
}

/* --- decoding --------------------------------------------------------- */

void
lm_mpr_init(lm_mpr *r, const uint8_t *p, size_t len)
{
    r->start = p;
    r->p = p;
    r->end = p + len;
    r->why = NULL;
    r->at = 0;
}

static int
fail(lm_mpr *r, const uint8_t *at, const char *why)
{
    r->why = why;
    r->at = (size_t)(at - r->start);
    return LM_EPROTO;
}

static uint64_t
be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Reads the big-endian length of n bytes that follows the tag byte at q.
 * Fails when the bytes are not there. */
static int
read_len(lm_mpr *r, const uint8_t *q, int n, uint64_t *len, const char *why)
{
    if (r->end - (q + 1) < n) {
        return fail(r, q, why);
    }
    *len = be(q + 1, n);
    return LM_OK;
}

const char *
lm_mp_type_name(uint8_t b)
{
    if (b <= 0x7f || (b >= 0xcc && b <= 0xd3) || b >= 0xe0) {
        return "an integer";
    }
    if (b <= 0x8f || b == 0xde || b == 0xdf) {
        return "a map";
    }
    if (b <= 0x9f || b == 0xdc || b == 0xdd) {
        return "an array";
    }
    if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) {
        return "a string";
    }
    switch (b) {
    case 0xc0: return "nil";
    case 0xc1: return "the never-used byte 0xc1";
    case 0xc2:
    case 0xc3: return "a boolean";
    case 0xc4:
    case 0xc5:
    case 0xc6: return "a bin";
    case 0xca:
    case 0xcb: return "a float";
    default: return "an ext";
    }
}

int
lm_mpr_error(const lm_mpr *r, lm_error *err, const char *what)
{
    const char *found =
        r->at < (size_t)(r->end - r->start) ? lm_mp_type_name(r->start[r->at]) : "the end of input";
    return lm_error_set(err, LM_EPROTO, "%s: %s at byte %zu (found %s)", what,
                        r->why != NULL ? r->why : "malformed", r->at, found);
}

/* Container header: fix range [fix_lo, fix_lo + 15], 16-bit tag, 32-bit tag. */
static int
container(lm_mpr *r, uint8_t fix_lo, uint8_t t16, uint8_t t32, int per_elem, uint32_t *n,
          const char *why)
{
    const uint8_t *q = r->p;
    uint64_t len;
    int hdr;

    if (q >= r->end) {
        return fail(r, q, why);
    }
    if (*q >= fix_lo && *q <= fix_lo + 15) {
        len = *q & 0x0f;
        hdr = 1;
    } else if (*q == t16) {
        if (read_len(r, q, 2, &len, why) != LM_OK) {
            return LM_EPROTO;
        }
        hdr = 3;
    } else if (*q == t32) {
        if (read_len(r, q, 4, &len, why) != LM_OK) {
            return LM_EPROTO;
        }
        hdr = 5;
    } else {
        return fail(r, q, why);
    }
    /* Every element takes at least one byte: a count larger than what is
     * left cannot be honest. */
    if (len * (uint64_t)per_elem > (uint64_t)(r->end - q - hdr)) {
        return fail(r, q, "declared element count exceeds the bytes left");
    }
    r->p = q + hdr;
    *n = (uint32_t)len;
    return LM_OK;
}

int
lm_mpr_array(lm_mpr *r, uint32_t *n)
{
    return container(r, 0x90, 0xdc, 0xdd, 1, n, "expected an array");
}

int
lm_mpr_array_n(lm_mpr *r, uint32_t n)
{
    const uint8_t *q = r->p;
    uint32_t got;

    if (lm_mpr_array(r, &got) != LM_OK) {
        return LM_EPROTO;
    }
    if (got != n) {
        r->p = q;
        return fail(r, q, "array has the wrong number of elements");
    }
    return LM_OK;
}

int
lm_mpr_map(lm_mpr *r, uint32_t *n)
{
    return container(r, 0x80, 0xde, 0xdf, 2, n, "expected a map");
}

/* Reads any integer into *u (magnitude bits) and *neg. */
static int
read_int(lm_mpr *r, uint64_t *u, bool *neg, const char *why)
{
    const uint8_t *q = r->p;
    int n;
    bool sgn = false;

    if (q >= r->end) {
        return fail(r, q, why);
    }
    if (*q <= 0x7f) {
        *u = *q;
        *neg = false;
        r->p = q + 1;
        return LM_OK;
    }
    if (*q >= 0xe0) {
        *u = (uint64_t)(int64_t)(int8_t)*q;
        *neg = true;
        r->p = q + 1;
        return LM_OK;
    }
    switch (*q) {
    case 0xcc: n = 1; break;
    case 0xcd: n = 2; break;
    case 0xce: n = 4; break;
    case 0xcf: n = 8; break;
    case 0xd0:
        n = 1;
        sgn = true;
        break;
    case 0xd1:
        n = 2;
        sgn = true;
        break;
    case 0xd2:
        n = 4;
        sgn = true;
        break;
    case 0xd3:
        n = 8;
        sgn = true;
        break;
    default: return fail(r, q, why);
    }
    if (r->end - (q + 1) < n) {
        return fail(r, q, "truncated integer");
    }
    *u = be(q + 1, n);
    if (sgn) {
        /* sign-extend from n bytes */
        int shift = 64 - 8 * n;
        int64_t v = (int64_t)(*u << shift) >> shift;
        *u = (uint64_t)v;
        *neg = v < 0;
    } else {
        *neg = false;
    }
    r->p = q + 1 + n;
    return LM_OK;
}

int
lm_mpr_u64(lm_mpr *r, uint64_t *v)
{
    const uint8_t *q = r->p;
    uint64_t u;
    bool neg;

    if (read_int(r, &u, &neg, "expected an unsigned integer") != LM_OK) {
        return LM_EPROTO;
    }
    if (neg) {
        r->p = q;
        return fail(r, q, "expected an unsigned integer, got a negative one");
    }
    *v = u;
    return LM_OK;
}

int
lm_mpr_u64_max(lm_mpr *r, uint64_t max, uint64_t *v)
{
    const uint8_t *q = r->p;
    uint64_t u;

    if (lm_mpr_u64(r, &u) != LM_OK) {
        return LM_EPROTO;
    }
    if (u > max) {
        r->p = q;
        return fail(r, q, "integer out of range");
    }
    *v = u;
    return LM_OK;
}

int
lm_mpr_i64(lm_mpr *r, int64_t *v)
{
    const uint8_t *q = r->p;
    uint64_t u;
    bool neg;

    if (read_int(r, &u, &neg, "expected an integer") != LM_OK) {
        return LM_EPROTO;
    }
    if (!neg && u > (uint64_t)INT64_MAX) {
        r->p = q;
        return fail(r, q, "integer does not fit a signed 64-bit value");
    }
    *v = (int64_t)u;
    return LM_OK;
}

int
lm_mpr_f64(lm_mpr *r, double *v)
{
    const uint8_t *q = r->p;

    if (q < r->end && *q == 0xcb) {
        uint64_t bits;
        if (r->end - q < 9) {
            return fail(r, q, "truncated float");
        }
        bits = be(q + 1, 8);
        memcpy(v, &bits, sizeof(*v));
        r->p = q + 9;
        return LM_OK;
    }
    if (q < r->end && *q == 0xca) {
        uint32_t bits;
        float f;
        if (r->end - q < 5) {
            return fail(r, q, "truncated float");
        }
        bits = (uint32_t)be(q + 1, 4);
        memcpy(&f, &bits, sizeof(f));
        *v = f;
        r->p = q + 5;
        return LM_OK;
    }
    return fail(r, q, "expected a float");
}

int
lm_mpr_bool(lm_mpr *r, bool *v)
{
    const uint8_t *q = r->p;

    if (q < r->end && (*q == 0xc2 || *q == 0xc3)) {
        *v = *q == 0xc3;
        r->p = q + 1;
        return LM_OK;
    }
    return fail(r, q, "expected a boolean");
}

bool
lm_mpr_nil(lm_mpr *r)
{
    if (r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

/* Reads a length-prefixed body: fix range for str, 8/16/32-bit tags. */
static int
sized(lm_mpr *r, bool str, const uint8_t **p, uint32_t *len, const char *why)
{
    const uint8_t *q = r->p;
    uint64_t n;
    int hdr;

    if (q >= r->end) {
        return fail(r, q, why);
    }
    if (str && *q >= 0xa0 && *q <= 0xbf) {
        n = *q & 0x1f;
        hdr = 1;
    } else {
        int w;
        uint8_t t8 = str ? 0xd9 : 0xc4;
        if (*q == t8) {
            w = 1;
        } else if (*q == t8 + 1) {
            w = 2;
        } else if (*q == t8 + 2) {
            w = 4;
        } else {
            return fail(r, q, why);
        }
        if (read_len(r, q, w, &n, why) != LM_OK) {
            return LM_EPROTO;
        }
        hdr = 1 + w;
    }
    if (n > (uint64_t)(r->end - q - hdr)) {
        return fail(r, q,
                    str ? "string length exceeds the bytes left"
                        : "bin length exceeds the bytes left");
    }
    *p = q + hdr;
    *len = (uint32_t)n;
    r->p = q + hdr + n;
    return LM_OK;
}

int
lm_mpr_str(lm_mpr *r, const char **s, uint32_t *len)
{
    return sized(r, true, (const uint8_t **)s, len, "expected a string");
}

int
lm_mpr_bin(lm_mpr *r, const uint8_t **p, uint32_t *len)
{
    return sized(r, false, p, len, "expected a bin");
}

int
lm_mpr_bin_aligned(lm_mpr *r, const uint8_t **p, uint32_t *len)
{
    const uint8_t *q = r->p;
    const uint8_t *pad;
    uint32_t padlen;

    if (sized(r, false, &pad, &padlen, "expected a padding bin") != LM_OK) {
        return LM_EPROTO;
    }
    if (padlen > 7) {
        r->p = q;
        return fail(r, q, "padding bin longer than 7 bytes");
    }
    if (sized(r, false, p, len, "expected a bin") != LM_OK) {
        r->p = q;
        return LM_EPROTO;
    }
    return LM_OK;
}

int
lm_mpr_skip(lm_mpr *r, int max_depth)
{
    const uint8_t *q = r->p;
    const uint8_t *body;
    uint32_t n, len;
    uint64_t u;
    bool neg;
    double d;
    int width = 0;

    if (q >= r->end) {
        return fail(r, q, "expected a value");
    }
    if (*q <= 0x7f || *q >= 0xe0 || (*q >= 0xcc && *q <= 0xd3)) {
        return read_int(r, &u, &neg, "expected a value");
    }
    if ((*q >= 0x80 && *q <= 0x8f) || *q == 0xde || *q == 0xdf || (*q >= 0x90 && *q <= 0x9f) ||
        *q == 0xdc || *q == 0xdd) {
        bool map = (*q >= 0x80 && *q <= 0x8f) || *q == 0xde || *q == 0xdf;
        if (max_depth <= 0) {
            return fail(r, q, "values nested too deeply");
        }
        if ((map ? lm_mpr_map(r, &n) : lm_mpr_array(r, &n)) != LM_OK) {
            return LM_EPROTO;
        }
        for (uint64_t i = 0; i < (uint64_t)n * (map ? 2 : 1); i++) {
            if (lm_mpr_skip(r, max_depth - 1) != LM_OK) {
                r->p = q; /* a failed read leaves the cursor where it was */
                return LM_EPROTO;
            }
        }
        return LM_OK;
    }
    if ((*q >= 0xa0 && *q <= 0xbf) || (*q >= 0xd9 && *q <= 0xdb)) {
        return lm_mpr_str(r, (const char **)&body, &len);
    }
    switch (*q) {
    case 0xc0:
    case 0xc2:
    case 0xc3: r->p = q + 1; return LM_OK;
    case 0xc4:
    case 0xc5:
    case 0xc6: return lm_mpr_bin(r, &body, &len);
    case 0xca:
    case 0xcb: return lm_mpr_f64(r, &d);
    case 0xd4: width = 1; break;
    case 0xd5: width = 2; break;
    case 0xd6: width = 4; break;
    case 0xd7: width = 8; break;
    case 0xd8: width = 16; break;
    case 0xc7:
    case 0xc8:
    case 0xc9: {
        int w = *q == 0xc7 ? 1 : *q == 0xc8 ? 2 : 4;
        uint64_t elen;
        if (read_len(r, q, w, &elen, "truncated ext") != LM_OK) {
            return LM_EPROTO;
        }
        if (elen + 1 > (uint64_t)(r->end - q - 1 - w)) {
            return fail(r, q, "ext length exceeds the bytes left");
        }
        r->p = q + 1 + w + 1 + elen;
        return LM_OK;
    }
    default: return fail(r, q, "invalid msgpack byte");
    }
    if (r->end - q < 2 + width) {
        return fail(r, q, "truncated ext");
    }
    r->p = q + 2 + width;
    return LM_OK;
}
