#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

int fsu_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return SZ_EIO;
    if (fsync(fd) != 0)
        rc = SZ_EIO;
    close(fd);
    return rc;
}

int fsu_fsync_parent(const char *path)
{
    char tmp[PATH_MAX];

    if (strlen(path) >= sizeof(tmp))
        return SZ_EINVAL;
    strcpy(tmp, path);
    return fsu_fsync_dir(dirname(tmp));
}

int fsu_mkdirs(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(tmp))
        return SZ_EINVAL;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return SZ_EIO;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0) {
        struct stat st;
        if (errno != EEXIST || stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
            return SZ_EIO; /* exists, but is not a directory */
    }
    return 0;
}

static int fsu_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SZ_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fsu_write_atomic(const char *path, const void *buf, size_t len, mode_t mode, int excl)
{
    char tmp[PATH_MAX];
    int fd, rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return SZ_EINVAL;
    if (excl && access(path, F_OK) == 0)
        return SZ_EEXIST;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return errno == ENOENT ? SZ_ENOENT : SZ_EIO;
    rc = fsu_write_all(fd, buf, len);
    if (rc == 0 && fchmod(fd, mode) != 0)
        rc = SZ_EIO;
    if (rc == 0 && fsync(fd) != 0)
        rc = SZ_EIO;
    close(fd);
    if (rc != 0)
        goto err;
    if (excl) {
        /* link() fails if path appeared meanwhile: never overwrite. */
        if (link(tmp, path) != 0) {
            rc = errno == EEXIST ? SZ_EEXIST : SZ_EIO;
            goto err;
        }
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = SZ_EIO;
        goto err;
    }
    return fsu_fsync_parent(path);
err:
    unlink(tmp);
    return rc;
}

int fsu_read_file(const char *path, size_t maxlen, uint8_t **out, size_t *outlen)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? SZ_ENOENT : SZ_EIO;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return SZ_EIO;
    }
    if ((size_t)st.st_size > maxlen) {
        close(fd);
        return SZ_ETOOBIG;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return SZ_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *out = buf;
    *outlen = got;
    return 0;
}

uint64_t fsu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t fsu_wall_s(void)
{
    return (uint64_t)time(NULL);
}
