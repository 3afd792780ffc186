/*
 * lm_batch.c: schemas, batch building and reading, and the batch wire
 * codec with its validation.
 */
#include "lm_batch.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static const char *type_names[] = {"?", "bool", "int64", "float64", "timestamp", "utf8", "binary"};

const char *
lm_type_name(lm_type t)
{
    if ((int)t < LM_TYPE_BOOL || t > LM_TYPE_MAX) {
        return "?";
    }
    return type_names[t];
}

/* Bytes per row of the values buffer (var-width: one int32 offset). */
static size_t
value_width(lm_type t)
{
    switch (t) {
    case LM_TYPE_BOOL: return 1;
    case LM_TYPE_UTF8:
    case LM_TYPE_BINARY: return 4;
    default: return 8;
    }
}

/* Bytes of the values buffer for n rows. */
static size_t
values_bytes(lm_type t, uint32_t n)
{
    return lm_type_is_varwidth(t) ? ((size_t)n + 1) * 4 : (size_t)n * value_width(t);
}

/* --- schema ----------------------------------------------------------- */

int
lm_schema_new(const lm_field *fields, uint32_t n, lm_schema **out, lm_error *err)
{
    size_t names = 0;
    lm_schema *s = NULL;
    char *p = NULL;

    if (n > LM_SCHEMA_MAX_FIELDS) {
        return lm_error_set(err, LM_EINVAL, "schema has %u fields (at most %d)", n,
                            LM_SCHEMA_MAX_FIELDS);
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t len = fields[i].name != NULL ? strlen(fields[i].name) : 0;
        if (len == 0 || len > LM_FIELD_NAME_MAX) {
            return lm_error_set(err, LM_EINVAL, "field %u: name is empty or longer than %d bytes",
                                i, LM_FIELD_NAME_MAX);
        }
        if ((int)fields[i].type < LM_TYPE_BOOL || fields[i].type > LM_TYPE_MAX) {
            return lm_error_set(err, LM_EINVAL, "field '%s': invalid type %d", fields[i].name,
                                (int)fields[i].type);
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(fields[i].name, fields[j].name) == 0) {
                return lm_error_set(err, LM_EINVAL, "field '%s' appears twice", fields[i].name);
            }
        }
        names += len + 1;
    }
    s = malloc(sizeof(*s) + n * sizeof(lm_field) + names);
    if (s == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory for a schema");
    }
    atomic_init(&s->refs, 1);
    s->nfields = n;
    p = (char *)&s->fields[n];
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(fields[i].name) + 1;
        memcpy(p, fields[i].name, len);
        s->fields[i].name = p;
        s->fields[i].type = fields[i].type;
        s->fields[i].nullable = fields[i].nullable;
        p += len;
    }
    *out = s;
    return LM_OK;
}

void
lm_schema_retain(lm_schema *s)
{
    /* relaxed: a reference is only made from a reference already held. */
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void
lm_schema_release(lm_schema *s)
{
    /* acq_rel: the last holder frees after every other holder's reads. */
    if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        free(s);
    }
}

int
lm_schema_find(const lm_schema *s, const char *name)
{
    for (uint32_t i = 0; i < s->nfields; i++) {
        if (strcmp(s->fields[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

bool
lm_schema_equal(const lm_schema *a, const lm_schema *b)
{
    if (a == b) {
        return true;
    }
    if (a->nfields != b->nfields) {
        return false;
    }
    for (uint32_t i = 0; i < a->nfields; i++) {
        if (a->fields[i].type != b->fields[i].type ||
            a->fields[i].nullable != b->fields[i].nullable ||
            strcmp(a->fields[i].name, b->fields[i].name) != 0) {
            return false;
        }
    }
    return true;
}

/* --- building --------------------------------------------------------- */

static lm_batch *
batch_alloc(lm_schema *schema)
{
    lm_batch *b = calloc(1, sizeof(*b) + schema->nfields * sizeof(lm_column));
    if (b != NULL) {
        lm_schema_retain(schema);
        b->schema = schema;
    }
    return b;
}

void
lm_batch_free(lm_batch *b)
{
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i < b->schema->nfields; i++) {
        lm_column *c = &b->cols[i];
        if (c->own & LM_COL_OWN_VALIDITY) {
            free(c->validity);
        }
        if (c->own & LM_COL_OWN_VALUES) {
            free(c->values);
        }
        if (c->own & LM_COL_OWN_DATA) {
            free(c->data);
        }
    }
    lm_schema_release(b->schema);
    lm_msg_release(b->backing);
    free(b);
}

int
lm_batch_new(lm_schema *schema, uint32_t capacity, lm_batch **out)
{
    lm_batch *b = batch_alloc(schema);
    int rv;

    if (b == NULL) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < schema->nfields; i++) {
        b->cols[i].own = LM_COL_OWN_VALUES | LM_COL_OWN_VALIDITY | LM_COL_OWN_DATA;
    }
    if ((rv = lm_batch_reserve(b, capacity < 1 ? 1 : capacity)) != LM_OK) {
        lm_batch_free(b);
        return rv;
    }
    *out = b;
    return LM_OK;
}

int
lm_batch_reserve(lm_batch *b, uint32_t capacity)
{
    if (b->readonly) {
        return LM_ESTATE;
    }
    if (capacity <= b->capacity) {
        return LM_OK;
    }
    for (uint32_t i = 0; i < b->schema->nfields; i++) {
        lm_column *c = &b->cols[i];
        lm_type t = b->schema->fields[i].type;
        void *v = realloc(c->values, values_bytes(t, capacity));
        if (v == NULL) {
            return LM_ENOMEM;
        }
        if (c->values == NULL && lm_type_is_varwidth(t)) {
            ((int32_t *)v)[0] = 0;
        }
        c->values = v;
        if (c->validity != NULL) {
            size_t old = ((size_t)b->capacity + 7) / 8;
            size_t need = ((size_t)capacity + 7) / 8;
            uint8_t *nv = realloc(c->validity, need);
            if (nv == NULL) {
                return LM_ENOMEM;
            }
            memset(nv + old, 0xff, need - old);
            c->validity = nv;
        }
    }
    b->capacity = capacity;
    return LM_OK;
}

void
lm_batch_clear(lm_batch *b)
{
    if (b->readonly) {
        return; /* its buffers may live in a shared received message */
    }
    for (uint32_t i = 0; i < b->schema->nfields; i++) {
        lm_column *c = &b->cols[i];
        if (c->validity != NULL) {
            memset(c->validity, 0xff, ((size_t)b->capacity + 7) / 8);
        }
        c->null_count = 0;
        c->data_len = 0;
        c->vcount = 0;
    }
    b->nrows = 0;
}

static int data_reserve(lm_column *c, size_t extra);

int
lm_batch_reserve_bytes(lm_batch *b, uint32_t col, size_t extra)
{
    return data_reserve(&b->cols[col], extra);
}

/* Makes room for extra bytes in a var-width column's data. */
static int
data_reserve(lm_column *c, size_t extra)
{
    size_t need = (size_t)c->data_len + extra;
    size_t cap;
    uint8_t *d;

    if (need > INT32_MAX) {
        return LM_ETOOBIG;
    }
    if (need <= c->data_cap) {
        return LM_OK;
    }
    cap = c->data_cap < 256 ? 256 : (size_t)c->data_cap * 2;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > INT32_MAX) {
        cap = INT32_MAX;
    }
    if ((d = realloc(c->data, cap)) == NULL) {
        return LM_ENOMEM;
    }
    c->data = d;
    c->data_cap = (uint32_t)cap;
    c->own |= LM_COL_OWN_DATA;
    return LM_OK;
}

int
lm_batch_append_row(lm_batch *b, const lm_value *row, lm_error *err)
{
    const lm_schema *s = b->schema;
    uint32_t r = b->nrows;
    int rv;

    if (b->readonly) {
        return lm_error_set(err, LM_ESTATE, "a decoded batch is read-only");
    }
    /* Check and allocate everything first, so that a failure leaves the
     * batch as it was. */
    for (uint32_t i = 0; i < s->nfields; i++) {
        if (row[i].is_null && !s->fields[i].nullable) {
            return lm_error_set(err, LM_EINVAL, "field '%s' is not nullable", s->fields[i].name);
        }
        if (!row[i].is_null && s->fields[i].type == LM_TYPE_UTF8 &&
            !lm_utf8_valid(row[i].v.s.ptr, row[i].v.s.len)) {
            return lm_error_set(err, LM_EINVAL, "field '%s': value is not valid UTF-8",
                                s->fields[i].name);
        }
    }
    if (r == b->capacity) {
        uint32_t cap = b->capacity > UINT32_MAX / 2 ? UINT32_MAX - 1 : b->capacity * 2;
        if (r == cap || (rv = lm_batch_reserve(b, cap)) != LM_OK) {
            return lm_error_set(err, LM_ENOMEM, "cannot grow the batch past %u rows", r);
        }
    }
    for (uint32_t i = 0; i < s->nfields; i++) {
        lm_column *c = &b->cols[i];
        if (row[i].is_null && c->validity == NULL) {
            size_t nbytes = ((size_t)b->capacity + 7) / 8;
            if ((c->validity = malloc(nbytes)) == NULL) {
                return lm_error_set(err, LM_ENOMEM, "out of memory");
            }
            memset(c->validity, 0xff, nbytes);
        }
        if (lm_type_is_varwidth(s->fields[i].type) && !row[i].is_null &&
            (rv = data_reserve(c, row[i].v.s.len)) != LM_OK) {
            return lm_error_set(err, rv, "field '%s': column data too large", s->fields[i].name);
        }
    }
    for (uint32_t i = 0; i < s->nfields; i++) {
        lm_column *c = &b->cols[i];
        const lm_value *v = &row[i];
        if (c->validity != NULL) {
            if (v->is_null) {
                c->validity[r >> 3] &= (uint8_t) ~(1u << (r & 7));
            } else {
                c->validity[r >> 3] |= (uint8_t)(1u << (r & 7));
            }
        }
        if (v->is_null) {
            c->null_count++;
        }
        switch (s->fields[i].type) {
        case LM_TYPE_BOOL: ((uint8_t *)c->values)[r] = !v->is_null && v->v.b; break;
        case LM_TYPE_INT64:
        case LM_TYPE_TIMESTAMP: ((int64_t *)c->values)[r] = v->is_null ? 0 : v->v.i; break;
        case LM_TYPE_FLOAT64: ((double *)c->values)[r] = v->is_null ? 0.0 : v->v.f; break;
        case LM_TYPE_UTF8:
        case LM_TYPE_BINARY:
            if (!v->is_null && v->v.s.len > 0) {
                memcpy(c->data + c->data_len, v->v.s.ptr, v->v.s.len);
                c->data_len += v->v.s.len;
            }
            ((int32_t *)c->values)[r + 1] = (int32_t)c->data_len;
            c->vcount++;
            break;
        }
    }
    b->nrows = r + 1;
    return LM_OK;
}

void
lm_batch_get(const lm_batch *b, uint32_t col, uint32_t row, lm_value *out)
{
    const lm_column *c = &b->cols[col];

    out->is_null = lm_batch_is_null(b, col, row);
    switch (b->schema->fields[col].type) {
    case LM_TYPE_BOOL: out->v.b = ((const uint8_t *)c->values)[row] != 0; break;
    case LM_TYPE_INT64:
    case LM_TYPE_TIMESTAMP: out->v.i = ((const int64_t *)c->values)[row]; break;
    case LM_TYPE_FLOAT64: out->v.f = ((const double *)c->values)[row]; break;
    case LM_TYPE_UTF8:
    case LM_TYPE_BINARY: {
        const int32_t *off = c->values;
        out->v.s.ptr = c->data != NULL ? c->data + off[row] : (const void *)"";
        out->v.s.len = (uint32_t)(off[row + 1] - off[row]);
        break;
    }
    }
}

/* --- column-wise building --------------------------------------------- */

/* Allocates the validity bitmap of c (all valid) if it has none. */
static int
validity_ensure(lm_batch *b, lm_column *c)
{
    size_t nbytes = ((size_t)b->capacity + 7) / 8;

    if (c->validity != NULL) {
        return LM_OK;
    }
    if ((c->validity = malloc(nbytes > 0 ? nbytes : 1)) == NULL) {
        return LM_ENOMEM;
    }
    memset(c->validity, 0xff, nbytes);
    c->own |= LM_COL_OWN_VALIDITY;
    return LM_OK;
}

int
lm_batch_reserve_nulls(lm_batch *b, uint32_t col)
{
    return validity_ensure(b, &b->cols[col]);
}

int
lm_batch_put_bytes(lm_batch *b, uint32_t col, uint32_t row, const void *p, uint32_t len)
{
    lm_column *c = &b->cols[col];
    int rv;

    if ((rv = data_reserve(c, len)) != LM_OK) {
        return rv;
    }
    if (len > 0) {
        memcpy(c->data + c->data_len, p, len);
        c->data_len += len;
    }
    ((int32_t *)c->values)[row + 1] = (int32_t)c->data_len;
    c->vcount = row + 1;
    return LM_OK;
}

int
lm_batch_put_null(lm_batch *b, uint32_t col, uint32_t row)
{
    lm_column *c = &b->cols[col];
    lm_type t = b->schema->fields[col].type;

    if (validity_ensure(b, c) != LM_OK) {
        return LM_ENOMEM;
    }
    c->validity[row >> 3] &= (uint8_t) ~(1u << (row & 7));
    c->null_count++;
    switch (t) {
    case LM_TYPE_BOOL: ((uint8_t *)c->values)[row] = 0; break;
    case LM_TYPE_FLOAT64: ((double *)c->values)[row] = 0; break;
    case LM_TYPE_UTF8:
    case LM_TYPE_BINARY:
        ((int32_t *)c->values)[row + 1] = (int32_t)c->data_len;
        c->vcount = row + 1;
        break;
    default: ((int64_t *)c->values)[row] = 0; break;
    }
    return LM_OK;
}

void
lm_batch_commit_rows(lm_batch *b, uint32_t n)
{
    b->nrows += n;
}

void
lm_batch_discard_uncommitted(lm_batch *b)
{
    for (uint32_t i = 0; i < b->schema->nfields; i++) {
        lm_column *c = &b->cols[i];
        if (c->validity != NULL) {
            for (uint32_t r = b->nrows; r < b->capacity; r++) {
                if ((c->validity[r >> 3] & (1u << (r & 7))) == 0) {
                    c->validity[r >> 3] |= (uint8_t)(1u << (r & 7));
                    c->null_count--;
                }
            }
        }
        if (lm_type_is_varwidth(b->schema->fields[i].type) && c->vcount > b->nrows) {
            c->data_len = (uint32_t)((int32_t *)c->values)[b->nrows];
            c->vcount = b->nrows;
        }
    }
}

/* Copies the rows of in selected by rows (or the range [from, from+n) when
 * rows is NULL) to the end of out. */
static int
append_rows(lm_batch *out, const lm_batch *in, const uint32_t *rows, uint32_t from, uint32_t n)
{
    uint32_t base = out->nrows;
    int rv;

    if (!lm_schema_equal(out->schema, in->schema)) {
        return LM_EINVAL;
    }
    if (out->readonly) {
        return LM_ESTATE;
    }
    if (base + n > out->capacity) {
        uint32_t cap = out->capacity * 2 > base + n ? out->capacity * 2 : base + n;
        if ((rv = lm_batch_reserve(out, cap)) != LM_OK) {
            return rv;
        }
    }
    for (uint32_t c = 0; c < in->schema->nfields; c++) {
        const lm_column *ic = &in->cols[c];
        lm_column *oc = &out->cols[c];
        lm_type t = in->schema->fields[c].type;
        if (ic->null_count > 0 && validity_ensure(out, oc) != LM_OK) {
            rv = LM_ENOMEM;
            goto fail;
        }
        if (lm_type_is_varwidth(t)) {
            const int32_t *ioff = ic->values;
            int32_t *ooff = oc->values;
            size_t bytes = 0;
            for (uint32_t i = 0; i < n; i++) {
                uint32_t r = rows != NULL ? rows[i] : from + i;
                bytes += (size_t)(ioff[r + 1] - ioff[r]);
            }
            if ((rv = data_reserve(oc, bytes)) != LM_OK) {
                goto fail;
            }
            for (uint32_t i = 0; i < n; i++) {
                uint32_t r = rows != NULL ? rows[i] : from + i;
                uint32_t len = (uint32_t)(ioff[r + 1] - ioff[r]);
                if (len > 0) {
                    memcpy(oc->data + oc->data_len, ic->data + ioff[r], len);
                }
                oc->data_len += len;
                ooff[base + i + 1] = (int32_t)oc->data_len;
            }
            oc->vcount = base + n;
        } else {
            size_t w = value_width(t);
            uint8_t *dst = (uint8_t *)oc->values + (size_t)base * w;
            const uint8_t *src = ic->values;
            if (rows == NULL) {
                memcpy(dst, src + (size_t)from * w, (size_t)n * w);
            } else if (w == 8) {
                for (uint32_t i = 0; i < n; i++) {
                    ((int64_t *)(void *)dst)[i] = ((const int64_t *)(const void *)src)[rows[i]];
                }
            } else {
                for (uint32_t i = 0; i < n; i++) {
                    dst[i] = src[rows[i]];
                }
            }
        }
        if (oc->validity != NULL) {
            for (uint32_t i = 0; i < n; i++) {
                uint32_t r = rows != NULL ? rows[i] : from + i;
                uint32_t o = base + i;
                if (lm_batch_is_null(in, c, r)) {
                    oc->validity[o >> 3] &= (uint8_t) ~(1u << (o & 7));
                    oc->null_count++;
                } else {
                    oc->validity[o >> 3] |= (uint8_t)(1u << (o & 7));
                }
            }
        }
    }
    out->nrows = base + n;
    return LM_OK;

fail:
    /* the columns before c got their values: forget them */
    lm_batch_discard_uncommitted(out);
    return rv;
}

int
lm_batch_gather(lm_batch *out, const lm_batch *in, const uint32_t *rows, uint32_t n)
{
    return append_rows(out, in, rows, 0, n);
}

int
lm_batch_append_range(lm_batch *out, const lm_batch *in, uint32_t from, uint32_t n)
{
    return append_rows(out, in, NULL, from, n);
}

int
lm_batch_take_columns(lm_batch *in, const uint32_t *cols, uint32_t n, lm_schema *out_schema,
                      lm_batch **out)
{
    lm_batch *b;
    uint8_t taken[LM_SCHEMA_MAX_FIELDS / 8] = {0};

    if (out_schema->nfields != n) {
        return LM_EINVAL;
    }
    for (uint32_t j = 0; j < n; j++) {
        if (cols[j] >= in->schema->nfields ||
            out_schema->fields[j].type != in->schema->fields[cols[j]].type) {
            return LM_EINVAL;
        }
    }
    if ((b = batch_alloc(out_schema)) == NULL) {
        return LM_ENOMEM;
    }
    b->nrows = in->nrows;
    b->capacity = in->nrows;
    b->readonly = true;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t c = cols[j];
        lm_column *ic = &in->cols[c];
        lm_column *oc = &b->cols[j];
        if (taken[c >> 3] & (1u << (c & 7))) {
            /* Named twice: copy from the first taker. */
            const lm_column *src = NULL;
            for (uint32_t k = 0; k < j && src == NULL; k++) {
                if (cols[k] == c) {
                    src = &b->cols[k];
                }
            }
            lm_type t = out_schema->fields[j].type;
            size_t vb = values_bytes(t, in->nrows);
            oc->values = malloc(vb > 0 ? vb : 1);
            oc->data =
                lm_type_is_varwidth(t) ? malloc(src->data_len > 0 ? src->data_len : 1) : NULL;
            oc->validity = src->validity != NULL ? malloc(((size_t)in->nrows + 7) / 8 + 1) : NULL;
            if (oc->values == NULL || (lm_type_is_varwidth(t) && oc->data == NULL) ||
                (src->validity != NULL && oc->validity == NULL)) {
                free(oc->values);
                free(oc->data);
                free(oc->validity);
                memset(oc, 0, sizeof(*oc));
                /* undo: give the moved columns back */
                for (uint32_t k = 0; k < j; k++) {
                    if ((taken[cols[k] >> 3] & (1u << (cols[k] & 7))) &&
                        b->cols[k].values != NULL && in->cols[cols[k]].values == NULL) {
                        in->cols[cols[k]] = b->cols[k];
                        memset(&b->cols[k], 0, sizeof(b->cols[k]));
                    }
                }
                lm_batch_free(b);
                return LM_ENOMEM;
            }
            memcpy(oc->values, src->values, vb);
            if (lm_type_is_varwidth(t) && src->data_len > 0) {
                memcpy(oc->data, src->data, src->data_len);
            }
            if (src->validity != NULL) {
                memcpy(oc->validity, src->validity, ((size_t)in->nrows + 7) / 8);
            }
            oc->data_len = oc->data_cap = src->data_len;
            oc->null_count = src->null_count;
            oc->vcount = src->vcount;
            oc->own = LM_COL_OWN_VALUES | LM_COL_OWN_DATA | LM_COL_OWN_VALIDITY;
            continue;
        }
        taken[c >> 3] |= (uint8_t)(1u << (c & 7));
        *oc = *ic;
        memset(ic, 0, sizeof(*ic));
    }
    if (in->backing != NULL) {
        lm_msg_retain(in->backing);
        b->backing = in->backing;
    }
    /* Moved buffers that were owned stay owned by their new column; the
     * batch can grow again only if every column owns its buffers. */
    b->readonly = in->readonly;
    *out = b;
    return LM_OK;
}

void
lm_batch_hash_rows(const lm_batch *b, const uint32_t *cols, uint32_t ncols, uint64_t *hashes)
{
    const uint64_t null_hash = 0x6e756c6c6e756c6cull; /* "nullnull" */

    for (uint32_t k = 0; k < ncols; k++) {
        uint32_t c = cols[k];
        const lm_column *col = &b->cols[c];
        lm_type t = b->schema->fields[c].type;
        for (uint32_t r = 0; r < b->nrows; r++) {
            uint64_t h;
            if (lm_batch_is_null(b, c, r)) {
                h = null_hash;
            } else if (lm_type_is_varwidth(t)) {
                const int32_t *off = col->values;
                h = XXH3_64bits(col->data + off[r], (size_t)(off[r + 1] - off[r]));
            } else if (t == LM_TYPE_BOOL) {
                uint64_t v = ((const uint8_t *)col->values)[r];
                h = XXH3_64bits(&v, sizeof(v));
            } else {
                h = XXH3_64bits((const int64_t *)col->values + r, 8);
            }
            /* Combine keys in order (not commutative). */
            hashes[r] = k == 0 ? h : XXH3_64bits_withSeed(&h, sizeof(h), hashes[r]);
        }
    }
}

/* --- UTF-8 ------------------------------------------------------------ */

/* Length of the leading run of ASCII bytes, 32 at a time (the compiler
 * turns the OR of four words into vector code). */
static size_t
ascii_prefix(const uint8_t *p, size_t len)
{
    const uint64_t high = 0x8080808080808080ull;
    size_t i = 0;

    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, sizeof(w));
        if (((w[0] | w[1] | w[2] | w[3]) & high) != 0) {
            break;
        }
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if ((w & high) != 0) {
            break;
        }
    }
    while (i < len && p[i] < 0x80) {
        i++;
    }
    return i;
}

bool
lm_utf8_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while ((i += ascii_prefix(p + i, len - i)) < len) {
        uint8_t c = p[i];
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

/* --- wire codec ------------------------------------------------------- */

int
lm_batch_encode(const lm_batch *b, msgpack_packer *pk, lm_msg *m)
{
    const lm_schema *s = b->schema;
    uint32_t n = b->nrows;

    if (msgpack_pack_array(pk, 3) || msgpack_pack_uint32(pk, n) ||
        msgpack_pack_array(pk, s->nfields)) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < s->nfields; i++) {
        const lm_field *f = &s->fields[i];
        if (msgpack_pack_array(pk, 3) || lm_mp_pack_str(pk, f->name, strlen(f->name)) ||
            msgpack_pack_uint8(pk, (uint8_t)f->type) ||
            (f->nullable ? msgpack_pack_true(pk) : msgpack_pack_false(pk))) {
            return LM_ENOMEM;
        }
    }
    if (msgpack_pack_array(pk, s->nfields)) {
        return LM_ENOMEM;
    }
    for (uint32_t i = 0; i < s->nfields; i++) {
        const lm_column *c = &b->cols[i];
        lm_type t = s->fields[i].type;
        bool var = lm_type_is_varwidth(t);
        int rv = msgpack_pack_array(pk, 6) || msgpack_pack_uint32(pk, c->null_count);
        if (c->null_count > 0) {
            rv = rv || msgpack_pack_bin(pk, (n + 7) / 8) ||
                 msgpack_pack_bin_body(pk, c->validity, (n + 7) / 8);
        } else {
            rv = rv || msgpack_pack_nil(pk);
        }
        rv = rv || lm_mp_pack_bin_aligned(pk, m, c->values, values_bytes(t, n), 8);
        rv = rv || lm_mp_pack_bin_aligned(pk, m, var ? c->data : NULL,
                                          var ? (size_t)((const int32_t *)c->values)[n] : 0, 8);
        if (rv) {
            return LM_ENOMEM;
        }
    }
    return LM_OK;
}

/* Points *dst at src when aligned, otherwise copies it into an owned
 * buffer (setting own_bit in *own). */
static int
adopt(const uint8_t *src, size_t len, size_t align, void **dst, uint8_t *own, uint8_t own_bit)
{
    if (((uintptr_t)src & (align - 1)) == 0) {
        *dst = (void *)src;
        return LM_OK;
    }
    if ((*dst = malloc(len > 0 ? len : 1)) == NULL) {
        return LM_ENOMEM;
    }
    memcpy(*dst, src, len);
    *own |= own_bit;
    return LM_OK;
}

/* Reads the schema part of a batch: nf entries [name, type, nullable].
 * Two passes over the same bytes: the first validates and sizes, the
 * second copies the names into the schema's single allocation. */
static int
decode_schema(lm_mpr *r, uint32_t nf, lm_schema **out, lm_error *err)
{
    const uint8_t *fields_at = r->p;
    size_t names = 0;
    lm_schema *s = NULL;
    char *p = NULL;
    int rv;

    for (int pass = 0; pass < 2; pass++) {
        r->p = fields_at;
        for (uint32_t i = 0; i < nf; i++) {
            const char *name;
            uint32_t len;
            uint64_t type = 0;
            bool nullable = false;
            if (lm_mpr_array_n(r, 3) != LM_OK || lm_mpr_str(r, &name, &len) != LM_OK ||
                lm_mpr_u64(r, &type) != LM_OK || lm_mpr_bool(r, &nullable) != LM_OK) {
                char what[48];
                snprintf(what, sizeof(what), "batch schema field %u", i);
                rv = lm_mpr_error(r, err, what);
                goto fail;
            }
            if (type < LM_TYPE_BOOL || type > LM_TYPE_MAX) {
                rv = lm_error_set(err, LM_EPROTO, "batch schema field %u: invalid type %llu", i,
                                  (unsigned long long)type);
                goto fail;
            }
            if (len == 0 || len > LM_FIELD_NAME_MAX || memchr(name, 0, len) != NULL ||
                !lm_utf8_valid((const uint8_t *)name, len)) {
                rv = lm_error_set(err, LM_EPROTO, "batch schema field %u: invalid name", i);
                goto fail;
            }
            if (pass == 0) {
                names += len + 1;
                continue;
            }
            memcpy(p, name, len);
            p[len] = '\0';
            for (uint32_t j = 0; j < i; j++) {
                if (strcmp(s->fields[j].name, p) == 0) {
                    rv = lm_error_set(err, LM_EPROTO, "batch schema: field '%s' appears twice", p);
                    goto fail;
                }
            }
            s->fields[i].name = p;
            s->fields[i].type = (lm_type)type;
            s->fields[i].nullable = nullable;
            p += len + 1;
        }
        if (pass == 0) {
            if ((s = malloc(sizeof(*s) + nf * sizeof(lm_field) + names)) == NULL) {
                return lm_error_set(err, LM_ENOMEM, "out of memory decoding a batch schema");
            }
            atomic_init(&s->refs, 1);
            s->nfields = nf;
            p = (char *)&s->fields[nf];
        }
    }
    *out = s;
    return LM_OK;
fail:
    free(s);
    return rv;
}

/* Validates and adopts one column [null_count, validity|nil, pad, values,
 * pad, data]. Returns NULL when it is good, else what is wrong. */
static const char *
decode_column(lm_mpr *r, const lm_field *f, uint32_t nrows, lm_column *c, int *rv)
{
    const uint8_t *validity = NULL, *values, *data;
    uint32_t vlen = 0, nlen, dlen;
    uint64_t nulls;
    bool var = lm_type_is_varwidth(f->type);

    *rv = LM_EPROTO;
    if (lm_mpr_array_n(r, 6) != LM_OK || lm_mpr_u64_max(r, nrows, &nulls) != LM_OK ||
        (!lm_mpr_nil(r) && lm_mpr_bin(r, &validity, &vlen) != LM_OK) ||
        lm_mpr_bin_aligned(r, &values, &nlen) != LM_OK ||
        lm_mpr_bin_aligned(r, &data, &dlen) != LM_OK) {
        return NULL; /* the reader says why */
    }
    /* Validity: absent, or exactly ceil(nrows/8) bytes whose clear bits
     * among the first nrows count null_count. */
    if (validity != NULL) {
        uint64_t clear = 0;
        if (vlen != ((uint64_t)nrows + 7) / 8) {
            return "validity bitmap has the wrong length";
        }
        for (uint32_t k = 0; k < nrows; k++) {
            clear += ((validity[k >> 3] >> (k & 7)) & 1) == 0;
        }
        if (clear != nulls) {
            return "null count differs from the validity bitmap";
        }
    } else if (nulls != 0) {
        return "nulls counted but no validity bitmap";
    }
    if (nulls > 0 && !f->nullable) {
        return "nulls in a non-nullable field";
    }
    if (nlen != values_bytes(f->type, nrows)) {
        return "values buffer has the wrong length";
    }
    if (!var && dlen != 0) {
        return "data buffer on a fixed-width column";
    }
    if (f->type == LM_TYPE_BOOL) {
        for (uint32_t k = 0; k < nlen; k++) {
            if (values[k] > 1) {
                return "boolean value other than 0 or 1";
            }
        }
    }
    c->validity = (uint8_t *)validity;
    c->null_count = (uint32_t)nulls;
    if (adopt(values, nlen, var ? 4 : 8, &c->values, &c->own, LM_COL_OWN_VALUES) != LM_OK) {
        *rv = LM_ENOMEM;
        return "out of memory";
    }
    if (var) {
        const int32_t *off = c->values;
        if (off[0] != 0 || off[nrows] < 0 || (uint32_t)off[nrows] != dlen) {
            return "offsets do not span the data buffer";
        }
        for (uint32_t k = 0; k < nrows; k++) {
            if (off[k + 1] < off[k]) {
                return "offsets decrease";
            }
        }
        /* UTF-8: the bytes must be valid and no value may start inside a
         * character. All-ASCII data (the common case) settles both. */
        if (f->type == LM_TYPE_UTF8 && ascii_prefix(data, dlen) != dlen) {
            if (!lm_utf8_valid(data, dlen)) {
                return "data is not valid UTF-8";
            }
            for (uint32_t k = 0; k < nrows; k++) {
                if (off[k] < (int32_t)dlen && (data[off[k]] & 0xc0) == 0x80) {
                    return "a value starts inside a UTF-8 character";
                }
            }
        }
        c->data = (uint8_t *)data;
        c->data_len = dlen;
        c->vcount = nrows;
    }
    *rv = LM_OK;
    return NULL;
}

int
lm_batch_decode(lm_mpr *r, lm_msg *backing, uint32_t max_rows, lm_batch **out, lm_error *err)
{
    lm_schema *schema = NULL;
    lm_batch *b = NULL;
    uint64_t nrows;
    uint32_t nf, ncols;
    int rv;

    if (lm_mpr_array_n(r, 3) != LM_OK || lm_mpr_u64_max(r, max_rows, &nrows) != LM_OK ||
        lm_mpr_array(r, &nf) != LM_OK) {
        return lm_mpr_error(r, err, "batch header");
    }
    if (nf > LM_SCHEMA_MAX_FIELDS) {
        return lm_error_set(err, LM_EPROTO, "batch has %u fields (at most %d)", nf,
                            LM_SCHEMA_MAX_FIELDS);
    }
    if ((rv = decode_schema(r, nf, &schema, err)) != LM_OK) {
        return rv;
    }
    b = batch_alloc(schema);
    lm_schema_release(schema);
    if (b == NULL) {
        return lm_error_set(err, LM_ENOMEM, "out of memory decoding a batch");
    }
    b->nrows = (uint32_t)nrows;
    b->capacity = (uint32_t)nrows;
    b->readonly = true;
    if (lm_mpr_array(r, &ncols) != LM_OK) {
        rv = lm_mpr_error(r, err, "batch columns");
        goto fail;
    }
    if (ncols != nf) {
        rv = lm_error_set(err, LM_EPROTO, "batch has %u columns for %u fields", ncols, nf);
        goto fail;
    }
    for (uint32_t i = 0; i < nf; i++) {
        const char *bad = decode_column(r, &schema->fields[i], (uint32_t)nrows, &b->cols[i], &rv);
        if (rv != LM_OK) {
            if (bad != NULL) {
                lm_error_set(err, rv, "batch column '%s': %s", schema->fields[i].name, bad);
            } else {
                char what[64 + LM_FIELD_NAME_MAX];
                snprintf(what, sizeof(what), "batch column '%s'", schema->fields[i].name);
                lm_mpr_error(r, err, what);
            }
            goto fail;
        }
    }
    if (backing != NULL) {
        lm_msg_retain(backing);
        b->backing = backing;
    }
    *out = b;
    return LM_OK;
fail:
    lm_batch_free(b);
    return rv;
}
