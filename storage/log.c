/* log.c - journald-friendly one-line logging to stderr (see log.h).
 *
 * Deliberately tiny: no buffering, no rotation, no structured fields beyond the priority prefix and
 * job=<id>. Rotation is logrotate's business (SIGHUP -> slog_reopen); under systemd, journald
 * does all of it.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_level = LOG_INFO;
static char *g_path;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

void slog_set_level(int max_priority) { g_level = max_priority; }

int slog_level_parse(const char *name)
{
	static const struct { const char *n; int p; } t[] = {
		{ "err", LOG_ERR }, { "error", LOG_ERR }, { "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(name, t[i].n) == 0) return t[i].p;
	return -1;
}

int slog_set_file(const char *path)
{
	pthread_mutex_lock(&g_mu);
	free(g_path);
	g_path = path ? strdup(path) : NULL;
	pthread_mutex_unlock(&g_mu);
	if (path && !g_path) return -ENOMEM;
	return slog_reopen();
}

int slog_reopen(void)
{
	int rc = 0;
	pthread_mutex_lock(&g_mu);
	if (g_path) {
		int fd = open(g_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) rc = -errno;
		else {
			if (dup2(fd, STDERR_FILENO) < 0) rc = -errno;
			close(fd);
		}
	}
	pthread_mutex_unlock(&g_mu);
	return rc;
}

void slog(int priority, int64_t job_id, const char *fmt, ...)
{
	if (priority > g_level) return;
	char line[2048];
	int n = job_id > 0 ? snprintf(line, sizeof line, "<%d>job=%lld ", priority, (long long)job_id)
	                   : snprintf(line, sizeof line, "<%d>", priority);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2) len = sizeof line - 2;
	/* One record, one line: fold embedded newlines so a multi-line message stays one record. */
	for (size_t i = (size_t)n; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
