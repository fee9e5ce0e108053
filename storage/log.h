/* log.h - one-line log records on stderr, in the form journald understands.
 *
 * Every record is one line with a syslog priority prefix ("<6>"), so journald files it at the right
 * level when the daemon runs under systemd, and a person reading a terminal still sees plain text.
 * A record about a job carries "job=<id>" right after the prefix, so `journalctl | grep job=17`
 * finds its whole story.
 *
 *   slog(LOG_INFO, 0, "listening on %s", addr);          // <6>listening on 127.0.0.1:8080
 *   slog(LOG_WARNING, 17, "requeued after a crash");     // <4>job=17 requeued after a crash
 *
 * Thread-safe (one write(2) per record). slog_reopen() re-points stderr at the log file given to
 * slog_set_file() (SIGHUP after logrotate); without a file it does nothing.
 */
#ifndef SSLD_STORAGE_LOG_H
#define SSLD_STORAGE_LOG_H

#include <stdint.h>
#include <syslog.h>   /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

/* Records above this priority number are dropped (default LOG_INFO). */
void slog_set_level(int max_priority);
/* "err", "warning", "notice", "info", "debug" -> priority, or -1. */
int slog_level_parse(const char *name);
/* Append records to this file instead of stderr (NULL = stderr). 0 or -errno. */
int slog_set_file(const char *path);
int slog_reopen(void);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void slog(int priority, int64_t job_id, const char *fmt, ...);

#endif
