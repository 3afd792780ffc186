/*
 * lm_text.h: small text helpers shared by the modules that read what
 * people write (configuration, plans, expressions, SQL): edit distance,
 * "did you mean" suggestions, and passwords hidden in connection strings.
 */
#ifndef LM_TEXT_H
#define LM_TEXT_H

#include <stddef.h>

#define LM_TEXT_MAX 256 /* longer strings are never considered close */

/* Optimal string alignment distance between a and b (insertions,
 * deletions, substitutions, adjacent transpositions). SIZE_MAX when either
 * is longer than LM_TEXT_MAX. */
size_t lm_text_distance(const char *a, const char *b);

/* The candidate closest to word when it is close enough to be a likely
 * typo (distance 1 for short words, up to 3 for long ones), else NULL. */
const char *lm_text_closest(const char *word, const char *const *cands, size_t n);

/* Writes " (did you mean 'x'?)" into out when lm_text_closest finds x, else
 * "". Returns out. */
char *lm_text_suggest(const char *word, const char *const *cands, size_t n, char *out, size_t cap);

/* Writes url into buf (cap bytes, NUL-terminated, truncated to fit; buf
 * may be NULL when cap is 0) with any password replaced by ***: the
 * password of a URI's user info, a password= query parameter (up to '&'
 * or '#') or a password= key of a key=value string (a 'quoted' value or
 * up to white space). An empty password is shown as it is. Returns the
 * length of the whole masked text, as snprintf does: when it is >= cap
 * the text was truncated. For every place that logs or shows a database
 * URL (the metadata store, the configuration's dump). */
size_t lm_text_mask_password(const char *url, char *buf, size_t cap);

#endif /* LM_TEXT_H */
