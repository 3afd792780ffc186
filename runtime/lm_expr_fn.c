/*
 * lm_expr_fn.c: the expression engine's helpers that work on one value:
 * UTF-8 character counting, LIKE patterns (compiled when constant, raw
 * when per row), parsing and formatting of numbers, booleans and
 * timestamps for CAST, and the multiplier for division by a constant.
 */
#include "lm_expr_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lm_rowfmt.h"
#include "lm_time.h"

/* See lm_expr_eval.c: let GCC vectorize loops of unknown length. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

/* --- UTF-8 -------------------------------------------------------------- */

uint32_t
lm_u8count(const uint8_t *p, uint32_t n)
{
    uint32_t c = 0;

    for (uint32_t i = 0; i < n; i++) {
        c += (p[i] & 0xc0) != 0x80;
    }
    return c;
}

/* --- LIKE --------------------------------------------------------------- */

void
lm_like_free(lm_like *l)
{
    if (l != NULL) {
        free(l->seg_off);
        free(l->seg_len);
        free(l->lit);
        free(l->raw);
        free(l);
    }
}

static bool
at_esc(const uint8_t *p, uint32_t pn, uint32_t i, const uint8_t *esc, uint32_t esclen)
{
    return esclen > 0 && pn - i >= esclen && memcmp(p + i, esc, esclen) == 0;
}

int
lm_like_compile(const uint8_t *pat, uint32_t n, const uint8_t *esc, uint32_t esclen, lm_like **out)
{
    lm_like *l = calloc(1, sizeof(*l));
    bool underscore = false;
    uint32_t nseg = 0, litn = 0, i = 0;
    bool in_seg = false;

    if (l == NULL) {
        return LM_ENOMEM;
    }
    if (esclen > 0) {
        memcpy(l->esc, esc, esclen);
        l->esclen = (uint8_t)esclen;
    }
    /* First pass: validate, count segments and wildcards. */
    while (i < n) {
        if (at_esc(pat, n, i, esc, esclen)) {
            if (i + esclen >= n) {
                lm_like_free(l);
                return LM_EINVAL;
            }
            i += esclen;
            uint32_t cl = lm_u8len(pat[i]);
            i += cl <= n - i ? cl : n - i;
            if (!in_seg) {
                nseg++;
                in_seg = true;
            }
        } else if (pat[i] == '%') {
            in_seg = false;
            i++;
        } else {
            underscore |= pat[i] == '_';
            if (!in_seg) {
                nseg++;
                in_seg = true;
            }
            i++;
        }
    }
    if (underscore) {
        l->kind = LK_GENERAL;
        if ((l->raw = malloc(n > 0 ? n : 1)) == NULL) {
            lm_like_free(l);
            return LM_ENOMEM;
        }
        memcpy(l->raw, pat, n);
        l->rawlen = n;
        *out = l;
        return LM_OK;
    }
    l->lit = malloc(n > 0 ? n : 1);
    l->seg_off = malloc((nseg > 0 ? nseg : 1) * sizeof(uint32_t));
    l->seg_len = malloc((nseg > 0 ? nseg : 1) * sizeof(uint32_t));
    if (l->lit == NULL || l->seg_off == NULL || l->seg_len == NULL) {
        lm_like_free(l);
        return LM_ENOMEM;
    }
    /* Second pass: unescape the segments. */
    in_seg = false;
    i = 0;
    l->anchor_start = n == 0 || pat[0] != '%' || at_esc(pat, n, 0, esc, esclen);
    l->anchor_end = true;
    while (i < n) {
        uint32_t from = i, cl = 1;
        bool wild = false;
        if (at_esc(pat, n, i, esc, esclen)) {
            from = i + esclen;
            cl = lm_u8len(pat[from]);
            cl = cl <= n - from ? cl : n - from;
            i = from + cl;
        } else if (pat[i] == '%') {
            wild = true;
            i++;
        } else {
            i++;
        }
        if (wild) {
            in_seg = false;
            l->anchor_end = false;
            continue;
        }
        if (!in_seg) {
            l->seg_off[l->nseg] = litn;
            l->seg_len[l->nseg] = 0;
            l->nseg++;
            in_seg = true;
        }
        memcpy(l->lit + litn, pat + from, cl);
        litn += cl;
        l->seg_len[l->nseg - 1] += cl;
        l->anchor_end = true;
    }
    if (n > 0 && !l->anchor_end && nseg == 0) {
        l->kind = LK_ALL;
    } else if (l->anchor_start && l->anchor_end && l->nseg <= 1) {
        l->kind = LK_EXACT;
        l->len = l->nseg == 1 ? l->seg_len[0] : 0;
    } else if (l->nseg == 1 && l->anchor_start) {
        l->kind = LK_PREFIX;
        l->len = l->seg_len[0];
    } else if (l->nseg == 1 && l->anchor_end) {
        l->kind = LK_SUFFIX;
        l->len = l->seg_len[0];
    } else if (l->nseg == 1) {
        l->kind = LK_CONTAINS;
        l->len = l->seg_len[0];
    } else {
        l->kind = LK_SEGS;
    }
    *out = l;
    return LM_OK;
}

/* 0x80 in each byte of v that is zero, 0 elsewhere (exact: no borrow
 * between bytes). */
static inline uint64_t
zero_bytes(uint64_t v)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;
    return ~(((v & lo7) + lo7) | v | lo7);
}

const uint8_t *
lm_find(const uint8_t *hay, uint32_t hn, const uint8_t *needle, uint32_t nn)
{
    uint32_t i = 0, last;

    if (nn == 0) {
        return hay;
    }
    if (hn < nn) {
        return NULL;
    }
    if (nn == 1) {
        return memchr(hay, needle[0], hn);
    }
    last = hn - nn; /* last possible start */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight starts at a time: a start is a candidate when its first and
     * last bytes match the needle's (W. Mula's SIMD-friendly search, on
     * 64-bit words); only candidates compare the middle. */
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t first = needle[0] * ones, lastb = needle[nn - 1] * ones;
    for (; i + 7 <= last; i += 8) {
        uint64_t a, b, m;
        memcpy(&a, hay + i, 8);
        memcpy(&b, hay + i + nn - 1, 8);
        m = zero_bytes(a ^ first) & zero_bytes(b ^ lastb);
        while (m != 0) {
            uint32_t at = i + ((uint32_t)__builtin_ctzll(m) >> 3);
            if (nn == 2 || memcmp(hay + at + 1, needle + 1, nn - 2) == 0) {
                return hay + at;
            }
            m &= m - 1;
        }
    }
#endif
    for (; i <= last; i++) {
        if (hay[i] == needle[0] && hay[i + nn - 1] == needle[nn - 1] &&
            memcmp(hay + i + 1, needle + 1, nn - 2) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

static bool match_general(const uint8_t *s, uint32_t sn, const uint8_t *p, uint32_t pn,
                          const uint8_t *esc, uint32_t esclen);

bool
lm_like_match(const lm_like *l, const uint8_t *s, uint32_t n)
{
    switch (l->kind) {
    case LK_ALL: return true;
    case LK_EXACT: return n == l->len && (n == 0 || memcmp(s, l->lit, n) == 0);
    case LK_PREFIX: return n >= l->len && memcmp(s, l->lit, l->len) == 0;
    case LK_SUFFIX: return n >= l->len && memcmp(s + (n - l->len), l->lit, l->len) == 0;
    case LK_CONTAINS: return lm_find(s, n, l->lit, l->len) != NULL;
    case LK_GENERAL: return match_general(s, n, l->raw, l->rawlen, l->esc, l->esclen);
    default: break;
    }
    /* LK_SEGS: anchored ends first, then the middle segments leftmost. */
    uint32_t pos = 0, end = n, first = 0, last = l->nseg;
    if (l->anchor_start) {
        uint32_t len = l->seg_len[0];
        if (n < len || memcmp(s, l->lit + l->seg_off[0], len) != 0) {
            return false;
        }
        pos = len;
        first = 1;
    }
    if (l->anchor_end) {
        uint32_t len = l->seg_len[l->nseg - 1];
        if (n - pos < len || memcmp(s + n - len, l->lit + l->seg_off[l->nseg - 1], len) != 0) {
            return false;
        }
        end = n - len;
        last = l->nseg - 1;
    }
    for (uint32_t k = first; k < last; k++) {
        const uint8_t *f = lm_find(s + pos, end - pos, l->lit + l->seg_off[k], l->seg_len[k]);
        if (f == NULL) {
            return false;
        }
        pos = (uint32_t)(f - s) + l->seg_len[k];
    }
    return true;
}

/* Matches s against a well-formed pattern: greedy, with one backtrack
 * point (the last %): on a mismatch, that % takes one more character and
 * matching resumes after it. */
static bool
match_general(const uint8_t *s, uint32_t sn, const uint8_t *p, uint32_t pn, const uint8_t *esc,
              uint32_t esclen)
{
    uint32_t si = 0, pi = 0, star_p = UINT32_MAX, star_s = 0;

    while (si < sn) {
        if (pi < pn) {
            if (at_esc(p, pn, pi, esc, esclen)) {
                uint32_t c = pi + esclen, cl = lm_u8len(p[c]);
                cl = cl <= pn - c ? cl : pn - c;
                if (sn - si >= cl && memcmp(s + si, p + c, cl) == 0) {
                    si += cl;
                    pi = c + cl;
                    continue;
                }
            } else if (p[pi] == '%') {
                star_p = ++pi;
                star_s = si;
                continue;
            } else if (p[pi] == '_') {
                uint32_t cl = lm_u8len(s[si]);
                si += cl <= sn - si ? cl : sn - si;
                pi++;
                continue;
            } else if (p[pi] == s[si]) {
                si++;
                pi++;
                continue;
            }
        }
        if (star_p == UINT32_MAX) {
            return false;
        }
        uint32_t cl = lm_u8len(s[star_s]);
        star_s += cl <= sn - star_s ? cl : sn - star_s;
        si = star_s;
        pi = star_p;
    }
    while (pi < pn && p[pi] == '%' && !at_esc(p, pn, pi, esc, esclen)) {
        pi++;
    }
    return pi == pn;
}

int
lm_like_match_raw(const uint8_t *s, uint32_t sn, const uint8_t *p, uint32_t pn, const uint8_t *esc,
                  uint32_t esclen)
{
    /* A pattern ending in the escape character is malformed, whatever s. */
    for (uint32_t i = 0; i < pn;) {
        if (at_esc(p, pn, i, esc, esclen)) {
            if (i + esclen >= pn) {
                return -1;
            }
            i += esclen + 1;
        } else {
            i++;
        }
    }
    return match_general(s, sn, p, pn, esc, esclen);
}

/* --- numbers and booleans as text -------------------------------------- */

/* Trims spaces (and tabs, newlines) from both ends. */
static void
trim_ws(const uint8_t **p, uint32_t *n)
{
    while (*n > 0 && ((*p)[0] == ' ' || ((*p)[0] >= '\t' && (*p)[0] <= '\r'))) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || ((*p)[*n - 1] >= '\t' && (*p)[*n - 1] <= '\r'))) {
        (*n)--;
    }
}

/* CAST reads text as lm_rowfmt does, with spaces around it allowed. */

bool
lm_parse_i64(const uint8_t *p, uint32_t n, int64_t *out)
{
    trim_ws(&p, &n);
    return lm_rowfmt_parse_int64((const char *)p, n, out, NULL) == LM_OK;
}

bool
lm_parse_f64(const uint8_t *p, uint32_t n, double *out)
{
    trim_ws(&p, &n);
    return lm_rowfmt_parse_double((const char *)p, n, out, NULL) == LM_OK;
}

bool
lm_parse_bool(const uint8_t *p, uint32_t n, bool *out)
{
    trim_ws(&p, &n);
    return lm_rowfmt_parse_bool((const char *)p, n, out, NULL) == LM_OK;
}

uint32_t
lm_fmt_i64(int64_t v, uint8_t *out)
{
    uint8_t tmp[24];
    uint32_t k = 0, n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[k++] = (uint8_t)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        out[n++] = '-';
    }
    while (k > 0) {
        out[n++] = tmp[--k];
    }
    return n;
}

uint32_t
lm_fmt_f64(double v, uint8_t *out)
{
    char buf[48];
    int len = lm_format_double(v, buf, sizeof(buf) - 2);

    /* "1.0", not "1": the text says it is a float */
    if (isfinite(v) && strpbrk(buf, ".e") == NULL) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    memcpy(out, buf, (size_t)len);
    return (uint32_t)len;
}

/* --- timestamps --------------------------------------------------------- */

bool
lm_parse_ts(const uint8_t *p, uint32_t n, int64_t *out)
{
    trim_ws(&p, &n);
    return lm_time_parse((const char *)p, n, out) == LM_OK;
}

uint32_t
lm_fmt_ts(int64_t v, uint8_t *out)
{
    char buf[40];
    size_t n = lm_time_format(v, 6, buf);
    memcpy(out, buf, n);
    return (uint32_t)n;
}

/* --- division by a constant --------------------------------------------- */

void
lm_sdiv_gen(int64_t d, lm_sdiv *out)
{
    uint64_t ud = (uint64_t)d;
    uint64_t absd = d < 0 ? 0 - ud : ud;
    uint32_t l2 = 63 - (uint32_t)__builtin_clzll(absd);

    if ((absd & (absd - 1)) == 0) {
        out->magic = 0;
        out->more = (uint8_t)(l2 | (d < 0 ? 0x80 : 0));
        return;
    }
    /* 2^(64 + l2 - 1) / absd, then one more bit when that is not enough. */
    unsigned __int128 num = (unsigned __int128)((uint64_t)1 << (l2 - 1)) << 64;
    uint64_t m = (uint64_t)(num / absd), rem = (uint64_t)(num % absd), e = absd - rem;
    uint8_t more;
    if (e < ((uint64_t)1 << l2)) {
        more = (uint8_t)(l2 - 1);
    } else {
        m += m;
        uint64_t twice = rem + rem;
        if (twice >= absd || twice < rem) {
            m += 1;
        }
        more = (uint8_t)(l2 | 0x40);
    }
    m += 1;
    int64_t magic = (int64_t)m;
    if (d < 0) {
        more |= 0x80;
        magic = (int64_t)(0 - (uint64_t)magic);
    }
    out->magic = magic;
    out->more = more;
}
