/*
 * lm_storage.h: where checkpoints and other durable files go.
 *
 * Today: local paths (a file:// URL or a plain path). Writes are atomic: a
 * file appears whole or not at all (written to a temporary name, synced,
 * renamed), and parent directories are made as needed. The S3 backend of a
 * later issue sits behind the same calls.
 */
#ifndef LM_STORAGE_H
#define LM_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "lm_err.h"

/* Writes len bytes to path, atomically and durably (the file, then its
 * directory, are synced). LM_OK or LM_EIO (err names the path and the
 * system's reason). */
int lm_storage_write(const char *path, const void *p, size_t len, lm_error *err);

/* Reads the whole file at path into *out (caller frees). LM_OK,
 * LM_ENOTFOUND (no such file), LM_EIO, LM_ENOMEM. */
int lm_storage_read(const char *path, uint8_t **out, size_t *len, lm_error *err);

/* True when path exists. */
int lm_storage_exists(const char *path);

/* Makes directory path and its parents. LM_OK or LM_EIO. */
int lm_storage_mkdirs(const char *path, lm_error *err);

/* Removes path and everything under it. LM_OK or LM_EIO. */
int lm_storage_remove_tree(const char *path, lm_error *err);

/* The local path of a file:// URL or plain path (pointer into url), or
 * NULL for a URL of another scheme. */
const char *lm_storage_local_path(const char *url);

#endif /* LM_STORAGE_H */
