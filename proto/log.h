/*
 * log: one-line diagnostics on stderr, prefixed with time, program and level.
 * Daemons log here; the CLI prints its own single error line instead.
 */
#ifndef SZ_LOG_H
#define SZ_LOG_H

enum { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/** log_init(prog, level): Set the program name shown and the maximum level. */
void log_init(const char *prog, int level);

/** log_msg(level, fmt, ...): Write one line if level <= the configured level. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
