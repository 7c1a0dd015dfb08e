/*
 * fsutil: crash-safe file helpers used everywhere a durable file is written.
 * The one way to make a file durable: write temp, fsync, rename, fsync dir.
 */
#ifndef SZ_FSUTIL_H
#define SZ_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** fsu_write_atomic(path, buf, len, mode): Durably replace path with buf,
 *  creating it with mode.  If excl is nonzero and path exists, fail with
 *  SZ_EEXIST without touching it.  Return 0 or SZ_E*. */
int fsu_write_atomic(const char *path, const void *buf, size_t len, mode_t mode, int excl);

/** fsu_fsync_dir(dir): fsync the directory dir.  Return 0 or SZ_EIO. */
int fsu_fsync_dir(const char *dir);

/** fsu_fsync_parent(path): fsync the directory that contains path. */
int fsu_fsync_parent(const char *path);

/** fsu_mkdirs(path, mode): Create path and missing parents.  Return 0 or SZ_EIO. */
int fsu_mkdirs(const char *path, mode_t mode);

/** fsu_read_file(path, maxlen, out, outlen): Read a whole file of at most
 *  maxlen bytes.  Caller frees *out with free().  Return 0, SZ_ENOENT,
 *  SZ_ETOOBIG or SZ_EIO. */
int fsu_read_file(const char *path, size_t maxlen, uint8_t **out, size_t *outlen);

/** fsu_now_ms(): Monotonic milliseconds. */
uint64_t fsu_now_ms(void);

/** fsu_wall_s(): Wall-clock unix seconds. */
uint64_t fsu_wall_s(void);

#endif
