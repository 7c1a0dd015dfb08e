/*
 * err: the one error vocabulary of snapzone, shared by every module, the
 * daemons and the client library.  Functions return 0 on success or a
 * negative SZ_E* code; codes also travel on the wire (Reply.status).
 */
#ifndef SZ_ERR_H
#define SZ_ERR_H

#define SZ_ERRORS(X)                                                          \
    X(SZ_OK, 0, "success")                                                    \
    X(SZ_EINVAL, -1, "invalid argument")                                      \
    X(SZ_ENOMEM, -2, "out of memory")                                         \
    X(SZ_EIO, -3, "I/O error")                                                \
    X(SZ_ENOENT, -4, "not found")                                             \
    X(SZ_EEXIST, -5, "already exists")                                        \
    X(SZ_EPROTO, -6, "malformed message")                                     \
    X(SZ_EVERSION, -7, "unsupported protocol version")                        \
    X(SZ_ETOOBIG, -8, "too large")                                            \
    X(SZ_ETIMEDOUT, -9, "timed out")                                          \
    X(SZ_EUNAVAIL, -10, "unavailable")                                        \
    X(SZ_EAUTH, -11, "authentication failed (wrong key or tampered data)")    \
    X(SZ_EKEY, -12, "wrong key")                                              \
    X(SZ_ECORRUPT, -13, "data corrupt")                                       \
    X(SZ_EREPLICAS, -14, "not enough replicas")                               \
    X(SZ_ESTATE, -15, "invalid state")                                        \
    X(SZ_EINTERNAL, -16, "internal error")

enum sz_err {
#define SZ_ERR_ENUM(name, val, text) name = val,
    SZ_ERRORS(SZ_ERR_ENUM)
#undef SZ_ERR_ENUM
};

/** sz_strerror(code): Return a static, human-readable description of code. */
const char *sz_strerror(int code);

/** sz_errname(code): Return the static symbolic name ("SZ_ENOENT") of code. */
const char *sz_errname(int code);

#endif
