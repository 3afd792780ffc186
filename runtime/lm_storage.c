/*
 * lm_storage.c: local files for checkpoints: atomic writes, whole reads.
 */
#define _XOPEN_SOURCE 700
#include "lm_storage.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
lm_storage_local_path(const char *url)
{
    if (strncmp(url, "file://", 7) == 0) {
        return url + 7;
    }
    return strstr(url, "://") == NULL ? url : NULL;
}

int
lm_storage_mkdirs(const char *path, lm_error *err)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf)) {
        return lm_error_set(err, LM_EIO, "bad directory path '%s'", path);
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return lm_error_set(err, LM_EIO, "cannot make directory '%s': %s", buf,
                                    strerror(errno));
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0) {
        struct stat st;
        if (errno != EEXIST) {
            return lm_error_set(err, LM_EIO, "cannot make directory '%s': %s", buf,
                                strerror(errno));
        }
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
            return lm_error_set(err, LM_EIO, "cannot make directory '%s': a file is in the way",
                                buf);
        }
    }
    return LM_OK;
}

/* Syncs directory dir, so that the names made or changed in it last. */
static int
sync_dir(const char *dir, lm_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rv = LM_OK;

    if (fd < 0) {
        return lm_error_set(err, LM_EIO, "cannot open directory '%s': %s", dir, strerror(errno));
    }
    if (fsync(fd) != 0 && errno != EINVAL) { /* EINVAL: a file system that cannot */
        rv = lm_error_set(err, LM_EIO, "cannot sync directory '%s': %s", dir, strerror(errno));
    }
    close(fd);
    return rv;
}

int
lm_storage_write(const char *path, const void *p, size_t len, lm_error *err)
{
    char dir[4096], tmp[4200];
    const char *slash = strrchr(path, '/');
    const uint8_t *b = p;
    int fd, rv;

    if (slash != NULL && slash != path) {
        if ((size_t)(slash - path) >= sizeof(dir)) {
            return lm_error_set(err, LM_EIO, "path too long: '%s'", path);
        }
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        if ((rv = lm_storage_mkdirs(dir, err)) != LM_OK) {
            return rv;
        }
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        return lm_error_set(err, LM_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    }
    while (len > 0) {
        ssize_t w = write(fd, b, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            rv = lm_error_set(err, LM_EIO, "cannot write '%s': %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return rv;
        }
        b += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rv = lm_error_set(err, LM_EIO, "cannot sync '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return rv;
    }
    if (close(fd) != 0) {
        rv = lm_error_set(err, LM_EIO, "cannot close '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        return rv;
    }
    if (rename(tmp, path) != 0) {
        rv =
            lm_error_set(err, LM_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        return rv;
    }
    /* The rename is durable only once the directory is synced. */
    return sync_dir(slash == NULL ? "." : slash == path ? "/" : dir, err);
}

int
lm_storage_read(const char *path, uint8_t **out, size_t *len, lm_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *buf;
    size_t got = 0;

    if (fd < 0) {
        return lm_error_set(err, errno == ENOENT ? LM_ENOTFOUND : LM_EIO, "cannot open '%s': %s",
                            path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return lm_error_set(err, LM_EIO, "cannot stat '%s': %s", path, strerror(errno));
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        close(fd);
        return lm_error_set(err, LM_ENOMEM, "out of memory reading '%s'", path);
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return lm_error_set(err, LM_EIO, "cannot read '%s': %s", path,
                                r == 0 ? "file shrank" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = got;
    return LM_OK;
}

int
lm_storage_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int
lm_storage_remove_tree(const char *path, lm_error *err)
{
    if (!lm_storage_exists(path)) {
        return LM_OK;
    }
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        return lm_error_set(err, LM_EIO, "cannot remove '%s': %s", path, strerror(errno));
    }
    return LM_OK;
}
