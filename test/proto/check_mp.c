/*
 * check_mp.c: the bounds-checked msgpack reader lm_mpr and the packing
 * helpers: every integer encoding and its boundaries, floats, booleans,
 * nil, strings and bins in every header form, container counts checked
 * against the bytes left, truncation at every byte (an error that leaves
 * the cursor in place), skipping nested values and its depth limit, the
 * error message, and 8-byte aligned bins.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_mp.h"

/* Parses "cc ff 01" into out; returns the byte count. */
static size_t
unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    while (*s != '\0') {
        unsigned v;
        if (*s == ' ') {
            s++;
            continue;
        }
        ck_assert_int_eq(sscanf(s, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

/* A heap copy of exactly n bytes, so that the address sanitizer catches a
 * read past the end. */
static uint8_t *
dup_exact(const void *p, size_t n)
{
    uint8_t *d = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(d);
    if (n > 0) {
        memcpy(d, p, n);
    }
    return d;
}

/* Packs with msgpack-c's packer into a fresh message. */
static lm_msg *
new_msg(msgpack_packer *pk)
{
    lm_msg *m;
    ck_assert_int_eq(lm_msg_alloc(64, &m), LM_OK);
    lm_mp_packer_init(pk, m);
    return m;
}

/* --- integers --------------------------------------------------------- */

typedef struct int_case {
    const char *hex; /* the encoding */
    bool u_ok;       /* lm_mpr_u64 accepts it */
    uint64_t u;      /* ... with this value */
    bool i_ok;       /* lm_mpr_i64 accepts it */
    int64_t i;       /* ... with this value */
} int_case;

static const int_case int_cases[] = {
    /* positive fixint */
    {"00", true, 0, true, 0},
    {"01", true, 1, true, 1},
    {"7f", true, 127, true, 127},
    /* negative fixint */
    {"ff", false, 0, true, -1},
    {"e0", false, 0, true, -32},
    /* uint 8/16/32/64 */
    {"cc 00", true, 0, true, 0},
    {"cc 80", true, 128, true, 128},
    {"cc ff", true, 255, true, 255},
    {"cd 00 00", true, 0, true, 0},
    {"cd 01 00", true, 256, true, 256},
    {"cd ff ff", true, 65535, true, 65535},
    {"ce 00 01 00 00", true, 65536, true, 65536},
    {"ce ff ff ff ff", true, UINT32_MAX, true, UINT32_MAX},
    {"cf 00 00 00 01 00 00 00 00", true, 1ull << 32, true, 1ll << 32},
    {"cf 7f ff ff ff ff ff ff ff", true, INT64_MAX, true, INT64_MAX},
    {"cf 80 00 00 00 00 00 00 00", true, 1ull << 63, false, 0},
    {"cf ff ff ff ff ff ff ff ff", true, UINT64_MAX, false, 0},
    /* int 8/16/32/64, negative and non-negative */
    {"d0 80", false, 0, true, -128},
    {"d0 ff", false, 0, true, -1},
    {"d0 7f", true, 127, true, 127},
    {"d0 00", true, 0, true, 0},
    {"d1 80 00", false, 0, true, INT16_MIN},
    {"d1 ff 7f", false, 0, true, -129},
    {"d1 7f ff", true, INT16_MAX, true, INT16_MAX},
    {"d2 80 00 00 00", false, 0, true, INT32_MIN},
    {"d2 ff ff 7f ff", false, 0, true, -32769},
    {"d2 7f ff ff ff", true, INT32_MAX, true, INT32_MAX},
    {"d3 80 00 00 00 00 00 00 00", false, 0, true, INT64_MIN},
    {"d3 ff ff ff ff 7f ff ff ff", false, 0, true, (int64_t)INT32_MIN - 1},
    {"d3 ff ff ff ff ff ff ff ff", false, 0, true, -1},
    {"d3 7f ff ff ff ff ff ff ff", true, INT64_MAX, true, INT64_MAX},
    {"d3 00 00 00 00 00 00 00 00", true, 0, true, 0},
};

START_TEST(test_mp_u64_reads_every_unsigned_encoding)
{
    for (size_t k = 0; k < sizeof(int_cases) / sizeof(int_cases[0]); k++) {
        const int_case *c = &int_cases[k];
        uint8_t raw[16];
        size_t n = unhex(c->hex, raw);
        uint8_t *buf = dup_exact(raw, n);
        lm_mpr r;
        uint64_t v = 12345;

        lm_mpr_init(&r, buf, n);
        if (c->u_ok) {
            ck_assert_msg(lm_mpr_u64(&r, &v) == LM_OK, "u64 rejected %s: %s", c->hex, r.why);
            ck_assert_msg(v == c->u, "%s read as %llu", c->hex, (unsigned long long)v);
            ck_assert_uint_eq(lm_mpr_offset(&r), n);
        } else {
            ck_assert_msg(lm_mpr_u64(&r, &v) == LM_EPROTO, "u64 accepted negative %s", c->hex);
            ck_assert_uint_eq(v, 12345);
            ck_assert_ptr_eq(r.p, buf);
            ck_assert_uint_eq(r.at, 0);
            ck_assert_ptr_nonnull(strstr(r.why, "negative"));
        }
        free(buf);
    }
}
END_TEST

START_TEST(test_mp_i64_reads_every_signed_encoding)
{
    for (size_t k = 0; k < sizeof(int_cases) / sizeof(int_cases[0]); k++) {
        const int_case *c = &int_cases[k];
        uint8_t raw[16];
        size_t n = unhex(c->hex, raw);
        uint8_t *buf = dup_exact(raw, n);
        lm_mpr r;
        int64_t v = 12345;

        lm_mpr_init(&r, buf, n);
        if (c->i_ok) {
            ck_assert_msg(lm_mpr_i64(&r, &v) == LM_OK, "i64 rejected %s: %s", c->hex, r.why);
            ck_assert_msg(v == c->i, "%s read as %lld", c->hex, (long long)v);
            ck_assert_uint_eq(lm_mpr_offset(&r), n);
        } else {
            /* a uint64 above INT64_MAX does not fit */
            ck_assert_msg(lm_mpr_i64(&r, &v) == LM_EPROTO, "i64 accepted %s", c->hex);
            ck_assert_int_eq(v, 12345);
            ck_assert_ptr_eq(r.p, buf);
            ck_assert_uint_eq(r.at, 0);
        }
        free(buf);
    }
}
END_TEST

START_TEST(test_mp_integers_round_trip_through_the_packer)
{
    static const uint64_t us[] = {0,          1,
                                  127,        128,
                                  255,        256,
                                  65535,      65536,
                                  UINT32_MAX, 1ull << 32,
                                  INT64_MAX,  (uint64_t)INT64_MAX + 1,
                                  UINT64_MAX, UINT64_MAX - 1};
    static const int64_t is[] = {INT64_MIN,
                                 INT64_MIN + 1,
                                 (int64_t)INT32_MIN - 1,
                                 INT32_MIN,
                                 -32769,
                                 -32768,
                                 -129,
                                 -128,
                                 -33,
                                 -32,
                                 -1,
                                 0,
                                 1,
                                 127,
                                 128,
                                 INT32_MAX,
                                 (int64_t)INT32_MAX + 1,
                                 INT64_MAX};
    msgpack_packer pk;
    lm_msg *m = new_msg(&pk);
    lm_mpr r;

    for (size_t k = 0; k < sizeof(us) / sizeof(us[0]); k++) {
        ck_assert_int_eq(msgpack_pack_uint64(&pk, us[k]), 0);
    }
    for (size_t k = 0; k < sizeof(is) / sizeof(is[0]); k++) {
        ck_assert_int_eq(msgpack_pack_int64(&pk, is[k]), 0);
    }
    lm_mpr_init(&r, m->data, m->len);
    for (size_t k = 0; k < sizeof(us) / sizeof(us[0]); k++) {
        uint64_t v;
        ck_assert_int_eq(lm_mpr_u64(&r, &v), LM_OK);
        ck_assert_uint_eq(v, us[k]);
    }
    for (size_t k = 0; k < sizeof(is) / sizeof(is[0]); k++) {
        int64_t v;
        ck_assert_int_eq(lm_mpr_i64(&r, &v), LM_OK);
        ck_assert_int_eq(v, is[k]);
    }
    ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
    lm_msg_release(m);
}
END_TEST

START_TEST(test_mp_u64_max_enforces_the_bound)
{
    uint8_t raw[16];
    size_t n;
    lm_mpr r;
    uint64_t v;

    n = unhex("ce ff ff ff ff", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_u64_max(&r, UINT32_MAX, &v), LM_OK);
    ck_assert_uint_eq(v, UINT32_MAX);

    n = unhex("cf 00 00 00 01 00 00 00 00", raw);
    lm_mpr_init(&r, raw, n);
    v = 7;
    ck_assert_int_eq(lm_mpr_u64_max(&r, UINT32_MAX, &v), LM_EPROTO);
    ck_assert_uint_eq(v, 7);
    ck_assert_ptr_eq(r.p, raw);
    ck_assert_ptr_nonnull(strstr(r.why, "out of range"));

    n = unhex("05", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_u64_max(&r, 5, &v), LM_OK);
    ck_assert_uint_eq(v, 5);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_u64_max(&r, 4, &v), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_u64_max(&r, 0, &v), LM_EPROTO);

    /* a negative value is refused before the bound is looked at */
    n = unhex("ff", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_u64_max(&r, UINT64_MAX, &v), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);

    n = unhex("cf ff ff ff ff ff ff ff ff", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_u64_max(&r, UINT64_MAX, &v), LM_OK);
    ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(test_mp_integers_reject_other_types)
{
    static const char *others[] = {"c0",
                                   "c2",
                                   "c3",
                                   "a1 41",
                                   "c4 01 00",
                                   "90",
                                   "80",
                                   "ca 3f c0 00 00",
                                   "cb 3f f8 00 00 00 00 00 00",
                                   "c1",
                                   "d4 01 02"};
    for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
        uint8_t raw[16];
        size_t n = unhex(others[k], raw);
        lm_mpr r;
        uint64_t u;
        int64_t i;

        lm_mpr_init(&r, raw, n);
        ck_assert_msg(lm_mpr_u64(&r, &u) == LM_EPROTO, "u64 accepted %s", others[k]);
        ck_assert_ptr_eq(r.p, raw);
        ck_assert_msg(lm_mpr_i64(&r, &i) == LM_EPROTO, "i64 accepted %s", others[k]);
        ck_assert_ptr_eq(r.p, raw);
    }
}
END_TEST

/* --- floats, booleans, nil --------------------------------------------- */

START_TEST(test_mp_f64_reads_float32_and_float64)
{
    static const double ds[] = {0.0,     -0.0,   1.5,      -2.25,    DBL_MAX,
                                DBL_MIN, 5e-324, INFINITY, -INFINITY};
    msgpack_packer pk;
    lm_msg *m = new_msg(&pk);
    uint8_t raw[16];
    size_t n;
    lm_mpr r;
    double v;

    /* hand-written encodings */
    n = unhex("ca 3f c0 00 00", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_f64(&r, &v), LM_OK);
    ck_assert(v == 1.5);
    ck_assert_uint_eq(lm_mpr_offset(&r), 5);
    n = unhex("cb c0 02 00 00 00 00 00 00", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_f64(&r, &v), LM_OK);
    ck_assert(v == -2.25);
    ck_assert_uint_eq(lm_mpr_offset(&r), 9);

    /* the packer's doubles and floats */
    for (size_t k = 0; k < sizeof(ds) / sizeof(ds[0]); k++) {
        ck_assert_int_eq(msgpack_pack_double(&pk, ds[k]), 0);
    }
    ck_assert_int_eq(msgpack_pack_double(&pk, NAN), 0);
    ck_assert_int_eq(msgpack_pack_float(&pk, 0.1f), 0);
    ck_assert_int_eq(msgpack_pack_float(&pk, -FLT_MAX), 0);
    lm_mpr_init(&r, m->data, m->len);
    for (size_t k = 0; k < sizeof(ds) / sizeof(ds[0]); k++) {
        ck_assert_int_eq(lm_mpr_f64(&r, &v), LM_OK);
        ck_assert(memcmp(&v, &ds[k], sizeof(v)) == 0); /* bit-exact: -0.0 stays negative */
    }
    ck_assert_int_eq(lm_mpr_f64(&r, &v), LM_OK);
    ck_assert(isnan(v));
    ck_assert_int_eq(lm_mpr_f64(&r, &v), LM_OK);
    ck_assert(v == (double)0.1f);
    ck_assert_int_eq(lm_mpr_f64(&r, &v), LM_OK);
    ck_assert(v == (double)-FLT_MAX);
    ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
    lm_msg_release(m);

    /* integers are not floats */
    n = unhex("01", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_f64(&r, &v), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    ck_assert_ptr_nonnull(strstr(r.why, "float"));
}
END_TEST

START_TEST(test_mp_bool_and_nil)
{
    uint8_t raw[16];
    size_t n = unhex("c3 c2 c0 00 c0", raw);
    lm_mpr r;
    bool b = false;

    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_bool(&r, &b), LM_OK);
    ck_assert(b);
    ck_assert_int_eq(lm_mpr_bool(&r, &b), LM_OK);
    ck_assert(!b);
    /* nil is not a boolean */
    ck_assert_int_eq(lm_mpr_bool(&r, &b), LM_EPROTO);
    ck_assert_uint_eq(lm_mpr_offset(&r), 2);
    ck_assert(lm_mpr_nil(&r));
    ck_assert_uint_eq(lm_mpr_offset(&r), 3);
    /* 0 is neither a boolean nor nil; lm_mpr_nil leaves it in place */
    ck_assert_int_eq(lm_mpr_bool(&r, &b), LM_EPROTO);
    ck_assert(!lm_mpr_nil(&r));
    ck_assert_uint_eq(lm_mpr_offset(&r), 3);
    r.p++;
    ck_assert(lm_mpr_nil(&r));
    /* at the end of input */
    ck_assert(!lm_mpr_nil(&r));
    ck_assert_int_eq(lm_mpr_bool(&r, &b), LM_EPROTO);
    ck_assert_uint_eq(lm_mpr_offset(&r), n);
}
END_TEST

/* --- strings and bins --------------------------------------------------- */

/* Writes a str (str = true) or bin header of the given form for len:
 * form 0 = fixstr, 1 = 8-bit, 2 = 16-bit, 3 = 32-bit length. */
static size_t
put_header(uint8_t *out, bool str, int form, uint32_t len)
{
    uint8_t t8 = str ? 0xd9 : 0xc4;
    switch (form) {
    case 0: out[0] = (uint8_t)(0xa0 | len); return 1;
    case 1:
        out[0] = t8;
        out[1] = (uint8_t)len;
        return 2;
    case 2:
        out[0] = (uint8_t)(t8 + 1);
        out[1] = (uint8_t)(len >> 8);
        out[2] = (uint8_t)len;
        return 3;
    default:
        out[0] = (uint8_t)(t8 + 2);
        out[1] = (uint8_t)(len >> 24);
        out[2] = (uint8_t)(len >> 16);
        out[3] = (uint8_t)(len >> 8);
        out[4] = (uint8_t)len;
        return 5;
    }
}

START_TEST(test_mp_str_and_bin_every_length_and_header)
{
    static const uint32_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
    static const uint32_t form_max[] = {31, 255, 65535, UINT32_MAX};
    int checked = 0;

    for (int str = 0; str <= 1; str++) {
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
            uint32_t len = lens[k];
            for (int form = str ? 0 : 1; form < 4; form++) {
                uint8_t *buf;
                size_t hdr, total;
                lm_mpr r;
                const uint8_t *p = NULL;
                uint32_t got = 0;
                int rv;

                if (len > form_max[form]) {
                    continue;
                }
                buf = malloc(len + 5 + 1);
                ck_assert_ptr_nonnull(buf);
                hdr = put_header(buf, str, form, len);
                for (uint32_t i = 0; i < len; i++) {
                    buf[hdr + i] = (uint8_t)('a' + i % 26);
                }
                buf[hdr + len] = 0x07; /* the next value */
                total = hdr + len + 1;
                lm_mpr_init(&r, buf, total);
                rv = str ? lm_mpr_str(&r, (const char **)&p, &got) : lm_mpr_bin(&r, &p, &got);
                ck_assert_msg(rv == LM_OK, "%s len %u form %d: %s", str ? "str" : "bin", len, form,
                              r.why);
                ck_assert_uint_eq(got, len);
                ck_assert_ptr_eq(p, buf + hdr); /* points into the buffer */
                ck_assert_uint_eq(lm_mpr_offset(&r), hdr + len);
                /* the other kind is refused */
                lm_mpr_init(&r, buf, total);
                rv = str ? lm_mpr_bin(&r, &p, &got) : lm_mpr_str(&r, (const char **)&p, &got);
                ck_assert_int_eq(rv, LM_EPROTO);
                ck_assert_ptr_eq(r.p, buf);
                /* one byte short of the body */
                if (len > 0) {
                    lm_mpr_init(&r, buf, hdr + len - 1);
                    rv = str ? lm_mpr_str(&r, (const char **)&p, &got) : lm_mpr_bin(&r, &p, &got);
                    ck_assert_int_eq(rv, LM_EPROTO);
                    ck_assert_ptr_eq(r.p, buf);
                    ck_assert_ptr_nonnull(strstr(r.why, "exceeds the bytes left"));
                }
                free(buf);
                checked++;
            }
        }
    }
    /* every (length, form) pair that fits: str 2 fix + 4 str8 + 6 str16 + 7 str32,
     * bin 4 bin8 + 6 bin16 + 7 bin32 */
    ck_assert_int_eq(checked, 19 + 17);
}
END_TEST

START_TEST(test_mp_pack_str_uses_the_smallest_header)
{
    static const struct {
        uint32_t len;
        uint8_t tag;
        size_t hdr;
    } cases[] = {{0, 0xa0, 1},   {31, 0xbf, 1},    {32, 0xd9, 2},    {255, 0xd9, 2},
                 {256, 0xda, 3}, {65535, 0xda, 3}, {65536, 0xdb, 5}, {70000, 0xdb, 5}};
    char *text = malloc(70000);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < 70000; i++) {
        text[i] = (char)('A' + i % 23);
    }
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        msgpack_packer pk;
        lm_msg *m = new_msg(&pk);
        lm_mpr r;
        const char *s;
        uint32_t len;

        ck_assert_int_eq(lm_mp_pack_str(&pk, text, cases[k].len), 0);
        ck_assert_uint_eq(m->len, cases[k].hdr + cases[k].len);
        ck_assert_uint_eq(m->data[0], cases[k].tag);
        lm_mpr_init(&r, m->data, m->len);
        ck_assert_int_eq(lm_mpr_str(&r, &s, &len), LM_OK);
        ck_assert_uint_eq(len, cases[k].len);
        ck_assert(memcmp(s, text, len) == 0);
        ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
        lm_msg_release(m);
    }
    free(text);
}
END_TEST

START_TEST(test_mp_str_and_bin_lengths_beyond_the_buffer_rejected)
{
    static const char *bad[] = {"db ff ff ff ff 61 62", "c6 ff ff ff ff 00", "d9 05 61 62",
                                "c4 03 00 00",          "a5 61 62 63 64",    "da 01 00 61"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        uint8_t raw[16];
        size_t n = unhex(bad[k], raw);
        uint8_t *buf = dup_exact(raw, n);
        lm_mpr r;
        const uint8_t *p;
        uint32_t len;

        lm_mpr_init(&r, buf, n);
        if (buf[0] == 0xc4 || buf[0] == 0xc6) {
            ck_assert_int_eq(lm_mpr_bin(&r, &p, &len), LM_EPROTO);
        } else {
            ck_assert_int_eq(lm_mpr_str(&r, (const char **)&p, &len), LM_EPROTO);
        }
        ck_assert_ptr_eq(r.p, buf);
        ck_assert_uint_eq(r.at, 0);
        free(buf);
    }
}
END_TEST

/* --- arrays and maps ---------------------------------------------------- */

START_TEST(test_mp_container_counts_checked_against_the_bytes_left)
{
    uint8_t raw[64];
    size_t n;
    lm_mpr r;
    uint32_t count = 99;
    uint8_t *buf;

    /* an array32 claiming 2^28 elements in a 5-byte buffer */
    n = unhex("dd 10 00 00 00", raw);
    buf = dup_exact(raw, n);
    lm_mpr_init(&r, buf, n);
    ck_assert_int_eq(lm_mpr_array(&r, &count), LM_EPROTO);
    ck_assert_uint_eq(count, 99);
    ck_assert_ptr_eq(r.p, buf);
    ck_assert_ptr_nonnull(strstr(r.why, "exceeds the bytes left"));
    ck_assert_int_eq(lm_mpr_skip(&r, 8), LM_EPROTO);
    ck_assert_ptr_eq(r.p, buf);
    free(buf);

    /* a map32 claiming 2^28 pairs */
    n = unhex("df 10 00 00 00 01 02", raw);
    buf = dup_exact(raw, n);
    lm_mpr_init(&r, buf, n);
    ck_assert_int_eq(lm_mpr_map(&r, &count), LM_EPROTO);
    ck_assert_ptr_eq(r.p, buf);
    free(buf);

    /* an array32 of 0xffffffff elements */
    n = unhex("dd ff ff ff ff 00 00 00", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_array(&r, &count), LM_EPROTO);

    /* exactly as many one-byte elements as bytes left is fine, one more is not */
    n = unhex("dc 00 03 01 02 03", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_array(&r, &count), LM_OK);
    ck_assert_uint_eq(count, 3);
    ck_assert_uint_eq(lm_mpr_offset(&r), 3);
    lm_mpr_init(&r, raw, n - 1);
    ck_assert_int_eq(lm_mpr_array(&r, &count), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);

    /* a map pair takes at least two bytes */
    n = unhex("82 01 02 03 04", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_map(&r, &count), LM_OK);
    ck_assert_uint_eq(count, 2);
    lm_mpr_init(&r, raw, n - 1);
    ck_assert_int_eq(lm_mpr_map(&r, &count), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);

    /* every header form */
    n = unhex("9f", raw);
    memset(raw + 1, 0xc0, 15);
    lm_mpr_init(&r, raw, 16);
    ck_assert_int_eq(lm_mpr_array(&r, &count), LM_OK);
    ck_assert_uint_eq(count, 15);
    n = unhex("dd 00 00 00 02 c0 c0", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_array(&r, &count), LM_OK);
    ck_assert_uint_eq(count, 2);
    ck_assert_uint_eq(lm_mpr_offset(&r), 5);
    n = unhex("de 00 01 c0 c0", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_map(&r, &count), LM_OK);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(lm_mpr_offset(&r), 3);
    n = unhex("df 00 00 00 00", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_map(&r, &count), LM_OK);
    ck_assert_uint_eq(count, 0);

    /* an array is not a map, nor the other way round */
    n = unhex("91 00", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_map(&r, &count), LM_EPROTO);
    n = unhex("81 00 00", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_array(&r, &count), LM_EPROTO);
}
END_TEST

START_TEST(test_mp_array_n_requires_the_exact_count)
{
    uint8_t raw[8];
    size_t n = unhex("93 01 02 03", raw);
    lm_mpr r;

    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_array_n(&r, 2), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    ck_assert_ptr_nonnull(strstr(r.why, "wrong number of elements"));
    ck_assert_int_eq(lm_mpr_array_n(&r, 4), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    ck_assert_int_eq(lm_mpr_array_n(&r, 3), LM_OK);
    ck_assert_uint_eq(lm_mpr_offset(&r), 1);
}
END_TEST

/* --- truncation ---------------------------------------------------------- */

typedef enum rkind {
    R_U64,
    R_I64,
    R_F64,
    R_BOOL,
    R_STR,
    R_BIN,
    R_BIN_ALIGNED,
    R_ARRAY,
    R_MAP,
} rkind;

static int
read_kind(lm_mpr *r, rkind k)
{
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    const uint8_t *p;
    uint32_t n;

    switch (k) {
    case R_U64: return lm_mpr_u64(r, &u);
    case R_I64: return lm_mpr_i64(r, &i);
    case R_F64: return lm_mpr_f64(r, &d);
    case R_BOOL: return lm_mpr_bool(r, &b);
    case R_STR: return lm_mpr_str(r, (const char **)&p, &n);
    case R_BIN: return lm_mpr_bin(r, &p, &n);
    case R_BIN_ALIGNED: return lm_mpr_bin_aligned(r, &p, &n);
    case R_ARRAY: return lm_mpr_array(r, &n);
    case R_MAP: return lm_mpr_map(r, &n);
    }
    return LM_EINVAL;
}

START_TEST(test_mp_truncation_at_every_offset_fails_in_place)
{
    static const struct {
        rkind k;
        const char *hex;
    } vals[] = {
        {R_U64, "cc ff"},
        {R_U64, "cd 01 00"},
        {R_U64, "ce 00 01 00 00"},
        {R_U64, "cf 00 00 00 01 00 00 00 00"},
        {R_I64, "d0 80"},
        {R_I64, "d1 80 00"},
        {R_I64, "d2 80 00 00 00"},
        {R_I64, "d3 80 00 00 00 00 00 00 00"},
        {R_I64, "e0"},
        {R_U64, "7f"},
        {R_F64, "ca 3f c0 00 00"},
        {R_F64, "cb 3f f8 00 00 00 00 00 00"},
        {R_BOOL, "c3"},
        {R_STR, "a3 61 62 63"},
        {R_STR, "d9 02 61 62"},
        {R_STR, "da 00 02 61 62"},
        {R_STR, "db 00 00 00 02 61 62"},
        {R_BIN, "c4 02 00 01"},
        {R_BIN, "c5 00 02 00 01"},
        {R_BIN, "c6 00 00 00 02 00 01"},
        {R_BIN_ALIGNED, "c4 03 00 00 00 c4 02 01 02"},
        {R_BIN_ALIGNED, "c4 00 c5 00 01 09"},
        {R_ARRAY, "92 01 02"},
        {R_ARRAY, "dc 00 02 01 02"},
        {R_ARRAY, "dd 00 00 00 02 01 02"},
        {R_MAP, "81 01 02"},
        {R_MAP, "de 00 01 01 02"},
        {R_MAP, "df 00 00 00 01 01 02"},
    };
    for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
        uint8_t raw[32];
        size_t n = unhex(vals[k].hex, raw);
        lm_mpr r;

        /* the whole value reads */
        lm_mpr_init(&r, raw, n);
        ck_assert_msg(read_kind(&r, vals[k].k) == LM_OK, "%s: %s", vals[k].hex, r.why);
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *buf = dup_exact(raw, cut);
            lm_mpr_init(&r, buf, cut);
            ck_assert_msg(read_kind(&r, vals[k].k) == LM_EPROTO, "%s cut at %zu was accepted",
                          vals[k].hex, cut);
            ck_assert_msg(r.p == buf, "%s cut at %zu moved the cursor", vals[k].hex, cut);
            ck_assert_ptr_nonnull(r.why);
            ck_assert_uint_le(r.at, cut);
            free(buf);
        }
    }
}
END_TEST

/* A nested value with every kind of element, packed by msgpack-c. */
static lm_msg *
pack_nested(void)
{
    static const uint8_t blob[300] = {1, 2, 3};
    msgpack_packer pk;
    lm_msg *m = new_msg(&pk);

    ck_assert_int_eq(msgpack_pack_map(&pk, 3), 0);
    ck_assert_int_eq(lm_mp_pack_str(&pk, "ints", 4), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 6), 0);
    ck_assert_int_eq(msgpack_pack_int64(&pk, -1), 0);
    ck_assert_int_eq(msgpack_pack_int64(&pk, INT64_MIN), 0);
    ck_assert_int_eq(msgpack_pack_uint64(&pk, UINT64_MAX), 0);
    ck_assert_int_eq(msgpack_pack_uint16(&pk, 300), 0);
    ck_assert_int_eq(msgpack_pack_double(&pk, 2.5), 0);
    ck_assert_int_eq(msgpack_pack_float(&pk, 2.5f), 0);
    ck_assert_int_eq(msgpack_pack_uint8(&pk, 7), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 5), 0);
    ck_assert_int_eq(msgpack_pack_nil(&pk), 0);
    ck_assert_int_eq(msgpack_pack_true(&pk), 0);
    ck_assert_int_eq(msgpack_pack_bin(&pk, sizeof(blob)), 0);
    ck_assert_int_eq(msgpack_pack_bin_body(&pk, blob, sizeof(blob)), 0);
    ck_assert_int_eq(msgpack_pack_map(&pk, 1), 0);
    ck_assert_int_eq(lm_mp_pack_str(&pk, "k", 1), 0);
    ck_assert_int_eq(msgpack_pack_array(&pk, 0), 0);
    ck_assert_int_eq(msgpack_pack_ext(&pk, 4, 1), 0);
    ck_assert_int_eq(msgpack_pack_ext_body(&pk, "abcd", 4), 0);
    ck_assert_int_eq(msgpack_pack_ext(&pk, 3, 2), 0);
    ck_assert_int_eq(msgpack_pack_ext_body(&pk, "xyz", 3), 0); /* a key may be any value */
    ck_assert_int_eq(msgpack_pack_false(&pk), 0);
    return m;
}

START_TEST(test_mp_skip_passes_over_nested_values)
{
    lm_msg *m = pack_nested();
    uint8_t raw[64];
    size_t n;
    lm_mpr r;
    uint64_t v;

    {
        msgpack_packer pk;
        lm_mp_packer_init(&pk, m);
        ck_assert_int_eq(msgpack_pack_uint64(&pk, 424242), 0); /* a value after it */
    }
    lm_mpr_init(&r, m->data, m->len);
    ck_assert_msg(lm_mpr_skip(&r, 8) == LM_OK, "%s at %zu", r.why, r.at);
    ck_assert_int_eq(lm_mpr_u64(&r, &v), LM_OK);
    ck_assert_uint_eq(v, 424242);
    ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
    lm_msg_release(m);

    /* every ext form: fixext 1/2/4/8/16 and ext 8/16/32 */
    n = unhex("d4 01 aa d5 01 aa bb d6 01 00 00 00 00 d7 01 00 00 00 00 00 00 00 00", raw);
    n += unhex("d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", raw + n);
    n += unhex("c7 02 01 aa bb c8 00 01 01 aa c9 00 00 00 00 01 c0 c2", raw + n);
    lm_mpr_init(&r, raw, n);
    for (int i = 0; i < 10; i++) {
        ck_assert_msg(lm_mpr_skip(&r, 0) == LM_OK, "value %d: %s at %zu", i, r.why, r.at);
    }
    ck_assert_uint_eq(lm_mpr_remaining(&r), 0);

    /* 0xc1 is never valid */
    n = unhex("c1", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_skip(&r, 8), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    /* nothing to skip */
    lm_mpr_init(&r, raw, 0);
    ck_assert_int_eq(lm_mpr_skip(&r, 8), LM_EPROTO);
}
END_TEST

START_TEST(test_mp_skip_truncated_fails_in_place)
{
    lm_msg *m = pack_nested();
    uint8_t ext[] = {0xc7, 0x03, 0x05, 1, 2, 3};
    uint8_t arr[] = {0x93, 0xa1, 'a', 0xa1, 'b', 0xa1, 'c'};

    for (int which = 0; which < 3; which++) {
        const uint8_t *src = which == 0 ? m->data : which == 1 ? ext : arr;
        size_t len = which == 0 ? m->len : which == 1 ? sizeof(ext) : sizeof(arr);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *buf = dup_exact(src, cut);
            lm_mpr r;
            lm_mpr_init(&r, buf, cut);
            ck_assert_msg(lm_mpr_skip(&r, 8) == LM_EPROTO, "value %d cut at %zu was skipped", which,
                          cut);
            ck_assert_msg(r.p == buf,
                          "value %d cut at %zu: the failed skip moved the cursor to %zu", which,
                          cut, lm_mpr_offset(&r));
            free(buf);
        }
    }
    lm_msg_release(m);
}
END_TEST

START_TEST(test_mp_skip_depth_limit)
{
    enum { DEEP = 100000 };
    uint8_t *buf = malloc(DEEP + 1);
    lm_mpr r;

    ck_assert_ptr_nonnull(buf);
    /* [[[[ ... [7] ... ]]]] with 5 arrays: depth 5 */
    memset(buf, 0x91, 5);
    buf[5] = 0x07;
    lm_mpr_init(&r, buf, 6);
    ck_assert_int_eq(lm_mpr_skip(&r, 5), LM_OK);
    ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
    lm_mpr_init(&r, buf, 6);
    ck_assert_int_eq(lm_mpr_skip(&r, 4), LM_EPROTO);
    ck_assert_ptr_nonnull(strstr(r.why, "nested too deeply"));
    ck_assert_uint_eq(r.at, 4); /* the innermost array is one level too many */
    /* a scalar needs no depth; an empty container needs one level */
    lm_mpr_init(&r, buf + 5, 1);
    ck_assert_int_eq(lm_mpr_skip(&r, 0), LM_OK);
    buf[0] = 0x90;
    lm_mpr_init(&r, buf, 1);
    ck_assert_int_eq(lm_mpr_skip(&r, 0), LM_EPROTO);
    lm_mpr_init(&r, buf, 1);
    ck_assert_int_eq(lm_mpr_skip(&r, 1), LM_OK);
    /* maps count too: {1: {2: 3}} */
    buf[0] = 0x81;
    buf[1] = 0x01;
    buf[2] = 0x81;
    buf[3] = 0x02;
    buf[4] = 0x03;
    lm_mpr_init(&r, buf, 5);
    ck_assert_int_eq(lm_mpr_skip(&r, 1), LM_EPROTO);
    lm_mpr_init(&r, buf, 5);
    ck_assert_int_eq(lm_mpr_skip(&r, 2), LM_OK);
    /* a hostile nesting 100000 deep fails quickly, without exhausting the stack */
    memset(buf, 0x91, DEEP);
    buf[DEEP] = 0x00;
    lm_mpr_init(&r, buf, DEEP + 1);
    ck_assert_int_eq(lm_mpr_skip(&r, 64), LM_EPROTO);
    ck_assert_uint_eq(r.at, 64);
    free(buf);
}
END_TEST

/* --- error messages ------------------------------------------------------ */

START_TEST(test_mp_error_names_the_offset_and_what_was_found)
{
    uint8_t raw[16];
    size_t n = unhex("93 01 a3 61 62 63 c0", raw);
    lm_mpr r;
    lm_error err;
    uint32_t cnt;
    uint64_t v;
    bool b;

    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_array(&r, &cnt), LM_OK);
    ck_assert_int_eq(lm_mpr_u64(&r, &v), LM_OK);
    ck_assert_int_eq(lm_mpr_u64(&r, &v), LM_EPROTO);
    ck_assert_int_eq(lm_mpr_error(&r, &err, "PING.seq"), LM_EPROTO);
    ck_assert_int_eq(err.code, LM_EPROTO);
    ck_assert_str_eq(err.msg, "PING.seq: expected an unsigned integer at byte 2 (found a string)");

    r.p += 4;
    ck_assert_int_eq(lm_mpr_bool(&r, &b), LM_EPROTO);
    lm_mpr_error(&r, &err, "flag");
    ck_assert_ptr_nonnull(strstr(err.msg, "byte 6"));
    ck_assert_ptr_nonnull(strstr(err.msg, "found nil"));

    r.p++;
    ck_assert_int_eq(lm_mpr_u64(&r, &v), LM_EPROTO);
    lm_mpr_error(&r, &err, "tail");
    ck_assert_ptr_nonnull(strstr(err.msg, "byte 7"));
    ck_assert_ptr_nonnull(strstr(err.msg, "the end of input"));

    /* a NULL lm_error still gives the code */
    ck_assert_int_eq(lm_mpr_error(&r, NULL, "x"), LM_EPROTO);
}
END_TEST

START_TEST(test_mp_type_name_of_every_first_byte)
{
    static const struct {
        uint8_t b;
        const char *name;
    } cases[] = {
        {0x00, "an integer"}, {0x7f, "an integer"}, {0xe0, "an integer"}, {0xff, "an integer"},
        {0xcc, "an integer"}, {0xd3, "an integer"}, {0x80, "a map"},      {0x8f, "a map"},
        {0xde, "a map"},      {0xdf, "a map"},      {0x90, "an array"},   {0x9f, "an array"},
        {0xdc, "an array"},   {0xdd, "an array"},   {0xa0, "a string"},   {0xbf, "a string"},
        {0xd9, "a string"},   {0xdb, "a string"},   {0xc0, "nil"},        {0xc2, "a boolean"},
        {0xc3, "a boolean"},  {0xc4, "a bin"},      {0xc6, "a bin"},      {0xca, "a float"},
        {0xcb, "a float"},    {0xc7, "an ext"},     {0xd4, "an ext"},     {0xd8, "an ext"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ck_assert_msg(strcmp(lm_mp_type_name(cases[k].b), cases[k].name) == 0, "0x%02x: %s",
                      cases[k].b, lm_mp_type_name(cases[k].b));
    }
    ck_assert_ptr_nonnull(strstr(lm_mp_type_name(0xc1), "0xc1"));
}
END_TEST

/* --- aligned bins -------------------------------------------------------- */

START_TEST(test_mp_pack_bin_aligned_body_lands_aligned)
{
    static const size_t sizes[] = {0, 1, 3, 7, 8, 9, 100, 253, 254, 255, 256, 65535, 65536, 70001};
    static const size_t aligns[] = {1, 2, 4, 8};
    uint8_t *body = malloc(70001);

    ck_assert_ptr_nonnull(body);
    for (size_t i = 0; i < 70001; i++) {
        body[i] = (uint8_t)(i * 7 + 3);
    }
    for (size_t start = 0; start < 40; start++) {
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            for (size_t ai = 0; ai < sizeof(aligns) / sizeof(aligns[0]); ai++) {
                size_t n = sizes[si], align = aligns[ai];
                msgpack_packer pk;
                lm_msg *m = new_msg(&pk);
                uint8_t junk[40];
                const uint8_t *p = NULL;
                uint32_t len = 0;
                lm_mpr r;

                memset(junk, 0xc0, sizeof(junk));
                ck_assert_int_eq(lm_msg_append(m, junk, start), LM_OK);
                ck_assert_int_eq(lm_mp_pack_bin_aligned(&pk, m, body, n, align), 0);
                /* the padding is a bin8 of at most align - 1 bytes */
                ck_assert_uint_eq(m->data[start], 0xc4);
                ck_assert_uint_lt(m->data[start + 1], align);
                lm_mpr_init(&r, m->data, m->len);
                r.p = m->data + start;
                ck_assert_int_eq(lm_mpr_bin_aligned(&r, &p, &len), LM_OK);
                ck_assert_uint_eq(len, n);
                ck_assert_msg((size_t)(p - m->data) % align == 0,
                              "start %zu size %zu align %zu: body at offset %zu", start, n, align,
                              (size_t)(p - m->data));
                ck_assert(n == 0 || memcmp(p, body, n) == 0);
                ck_assert_uint_eq(lm_mpr_remaining(&r), 0);
                lm_msg_release(m);
            }
        }
    }
    free(body);
}
END_TEST

START_TEST(test_mp_bin_aligned_rejects_bad_padding)
{
    uint8_t raw[32];
    size_t n;
    lm_mpr r;
    const uint8_t *p;
    uint32_t len;

    /* eight bytes of padding is more than any alignment needs */
    n = unhex("c4 08 00 00 00 00 00 00 00 00 c4 01 aa", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_bin_aligned(&r, &p, &len), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    ck_assert_ptr_nonnull(strstr(r.why, "padding"));
    /* seven is the most */
    n = unhex("c4 07 00 00 00 00 00 00 00 c4 01 aa", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_bin_aligned(&r, &p, &len), LM_OK);
    ck_assert_uint_eq(len, 1);
    ck_assert_uint_eq(p[0], 0xaa);
    /* the padding without its bin, or followed by a string */
    n = unhex("c4 01 00", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_bin_aligned(&r, &p, &len), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    n = unhex("c4 00 a1 61", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_bin_aligned(&r, &p, &len), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
    /* no padding bin at all */
    n = unhex("a1 61", raw);
    lm_mpr_init(&r, raw, n);
    ck_assert_int_eq(lm_mpr_bin_aligned(&r, &p, &len), LM_EPROTO);
    ck_assert_ptr_eq(r.p, raw);
}
END_TEST

Suite *
mp_suite(void)
{
    Suite *s = suite_create("mp");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mp_u64_reads_every_unsigned_encoding);
    tcase_add_test(tc, test_mp_i64_reads_every_signed_encoding);
    tcase_add_test(tc, test_mp_integers_round_trip_through_the_packer);
    tcase_add_test(tc, test_mp_u64_max_enforces_the_bound);
    tcase_add_test(tc, test_mp_integers_reject_other_types);
    tcase_add_test(tc, test_mp_f64_reads_float32_and_float64);
    tcase_add_test(tc, test_mp_bool_and_nil);
    tcase_add_test(tc, test_mp_str_and_bin_every_length_and_header);
    tcase_add_test(tc, test_mp_pack_str_uses_the_smallest_header);
    tcase_add_test(tc, test_mp_str_and_bin_lengths_beyond_the_buffer_rejected);
    tcase_add_test(tc, test_mp_container_counts_checked_against_the_bytes_left);
    tcase_add_test(tc, test_mp_array_n_requires_the_exact_count);
    tcase_add_test(tc, test_mp_truncation_at_every_offset_fails_in_place);
    tcase_add_test(tc, test_mp_skip_passes_over_nested_values);
    tcase_add_test(tc, test_mp_skip_truncated_fails_in_place);
    tcase_add_test(tc, test_mp_skip_depth_limit);
    tcase_add_test(tc, test_mp_error_names_the_offset_and_what_was_found);
    tcase_add_test(tc, test_mp_type_name_of_every_first_byte);
    tcase_add_test(tc, test_mp_pack_bin_aligned_body_lands_aligned);
    tcase_add_test(tc, test_mp_bin_aligned_rejects_bad_padding);
    suite_add_tcase(s, tc);
    return s;
}
