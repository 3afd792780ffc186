/*
 * lm_text.c: edit distance, suggestions, and passwords masked in URLs.
 */
#include "lm_text.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

size_t
lm_text_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t r0[LM_TEXT_MAX + 1], r1[LM_TEXT_MAX + 1], r2[LM_TEXT_MAX + 1];
    size_t *pp = r0, *prev = r1, *cur = r2;

    if (la > LM_TEXT_MAX || lb > LM_TEXT_MAX) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) {
                d = cur[j - 1] + 1;
            }
            if (prev[j - 1] + cost < d) {
                d = prev[j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < d) {
                d = pp[j - 2] + 1;
            }
            cur[j] = d;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *
lm_text_closest(const char *word, const char *const *cands, size_t n)
{
    size_t len = strlen(word);
    size_t limit = len / 5 < 1 ? 1 : (len / 5 > 3 ? 3 : len / 5);
    size_t best = SIZE_MAX;
    const char *pick = NULL;

    for (size_t i = 0; i < n; i++) {
        size_t d = lm_text_distance(word, cands[i]);
        if (d < best) {
            best = d;
            pick = cands[i];
        }
    }
    return best > 0 && best <= limit ? pick : NULL;
}

char *
lm_text_suggest(const char *word, const char *const *cands, size_t n, char *out, size_t cap)
{
    const char *c = lm_text_closest(word, cands, n);

    if (c != NULL) {
        snprintf(out, cap, " (did you mean '%s'?)", c);
    } else if (cap > 0) {
        out[0] = '\0';
    }
    return out;
}

/* --- passwords in connection strings ------------------------------------ */

/* The text being written: cap bytes at p, NUL-terminated and truncated to
 * fit; len counts every byte added, also those cut off. */
typedef struct out_buf {
    char *p;
    size_t cap, len;
} out_buf;

static void
ob_add(out_buf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, o->len++) {
        if (o->len + 1 < o->cap) {
            o->p[o->len] = s[i];
        }
    }
    if (o->cap > 0) {
        o->p[o->len < o->cap ? o->len : o->cap - 1] = '\0';
    }
}

/* Length of a password value at s (after '=' and spaces): in a URI's
 * query, text up to '&' or '#'; in a key=value string, a 'quoted' value
 * or text up to white space. */
static size_t
value_len(const char *s, bool uri)
{
    size_t i = 0;

    if (!uri && s[0] == '\'') {
        for (i = 1; s[i] != '\0' && s[i] != '\''; i++) {
            if (s[i] == '\\' && s[i + 1] != '\0') {
                i++;
            }
        }
        return s[i] == '\'' ? i + 1 : i;
    }
    while (s[i] != '\0' && !(uri ? s[i] == '&' || s[i] == '#' : s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    return i;
}

size_t
lm_text_mask_password(const char *url, char *buf, size_t cap)
{
    out_buf o = {buf, cap, 0};
    const char *p = url != NULL ? url : "";
    const char *scheme = strstr(p, "://");
    bool uri = scheme != NULL;

    if (cap > 0) {
        buf[0] = '\0';
    }
    /* user:password@ in a URI's authority */
    if (uri) {
        const char *auth = scheme + 3;
        size_t alen = strcspn(auth, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < alen; i++) {
            if (auth[i] == '@') {
                at = auth + i;
            }
        }
        if (at != NULL) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon != NULL && colon + 1 < at) {
                ob_add(&o, p, (size_t)(colon - p));
                ob_add(&o, ":***", 4);
                p = at;
            }
        }
    }
    /* password=... as a query parameter or a key=value pair; an empty
     * value ("" or '') hides nothing and stays */
    while (*p != '\0') {
        const char *q = p;
        bool boundary = q == url || q[-1] == '?' || q[-1] == '&' || q[-1] == ' ' || q[-1] == '\t';
        if (boundary && strncasecmp(q, "password", 8) == 0) {
            const char *v = q + strlen("password");
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            if (*v == '=') {
                size_t vlen;
                v++;
                while (*v == ' ' || *v == '\t') {
                    v++;
                }
                vlen = value_len(v, uri);
                if (vlen > 0 && !(!uri && vlen == 2 && v[0] == '\'')) {
                    ob_add(&o, q, (size_t)(v - q));
                    ob_add(&o, "***", 3);
                    p = v + vlen;
                    continue;
                }
            }
        }
        ob_add(&o, p, 1);
        p++;
    }
    return o.len;
}
