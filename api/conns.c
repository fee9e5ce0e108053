/* conns.c - connection accounting and the whole-request deadline (see conns.h).
 *
 * One mutex guards the list. libmicrohttpd reports a connection closed before it closes the
 * socket, and that report waits for the mutex, so the sweep's shutdown() always names a live
 * socket. The sweep writes a 408 only to connections still receiving their first request:
 * nothing else writes to those sockets then. Not here: what the requests mean.
 */
#include "conns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../storage/log.h"
#include "../common/monotime.h"

typedef struct Conn Conn;
struct Conn {
	ConnTable *t;
	Conn *prev, *next;
	int fd;
	double since;     /* when the clock of the current request started (monotonic seconds) */
	int handling;     /* the request arrived whole: the clock is stopped until it is answered */
	int cut;          /* the sweep closed it; libmicrohttpd has yet to notice */
	int answered;     /* it had an answer: the next request may not have begun (kept alive) */
	char addr[64];
};

struct ConnTable {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	Conn *head;
	int open;
	uint64_t cut;
	double deadline;
	int stop, started;
	pthread_t sweeper;
};

static void format_addr(struct MHD_Connection *c, char *out, size_t cap)
{
	snprintf(out, cap, "?");
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr) return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
	else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

static Conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* ---- the sweep ------------------------------------------------------------------------------ */

/* Closes every connection whose request is overdue. Called with t->mu held. */
static void sweep(ConnTable *t)
{
	double now = mono_seconds();
	int n = 0;
	char first[64] = "";
	char msg[400];
	int len = snprintf(msg, sizeof msg,
	                   "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request did not arrive whole within %g s "
	                   "(request-deadline)\",\"field\":null}}\n", t->deadline);
	char head[200];
	int hl = snprintf(head, sizeof head, "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
	                  "Connection: close\r\nContent-Length: %d\r\n\r\n", len);
	for (Conn *k = t->head; k; k = k->next) {
		if (k->cut || k->handling || now - k->since < t->deadline) continue;
		/* Best effort, never blocking: a client that reads nothing just sees the close. A kept-alive
		 * connection is closed without one: a client about to reuse it would take the 408 for
		 * the answer to its next request. */
		if (!k->answered && send(k->fd, head, (size_t)hl, MSG_DONTWAIT | MSG_NOSIGNAL) == hl)
			(void)send(k->fd, msg, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
		shutdown(k->fd, SHUT_RDWR);   /* libmicrohttpd reads the end of the stream and closes it */
		k->cut = 1;
		t->cut++;
		if (n++ == 0) snprintf(first, sizeof first, "%s", k->addr);
	}
	if (n)
		slog(LOG_NOTICE, 0, "closed %d connection(s) whose request did not arrive whole within %g s (request-deadline), "
		     "e.g. from %s", n, t->deadline, first);
}

static void *sweeper(void *arg)
{
	ConnTable *t = arg;
	/* Often enough that a connection outlives its deadline by a quarter of it at most. */
	double tick = t->deadline / 4 < 1 ? t->deadline / 4 : 1;
	if (tick < 0.05) tick = 0.05;
	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		long long ns = ts.tv_nsec + (long long)(tick * 1e9);
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&t->cv, &t->mu, &ts);
		if (!t->stop) sweep(t);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* ---- the interface -------------------------------------------------------------------------- */

ConnTable *conns_new(double deadline_s)
{
	ConnTable *t = calloc(1, sizeof *t);
	if (!t) return NULL;
	t->deadline = deadline_s;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (deadline_s > 0) {
		int rc = pthread_create(&t->sweeper, NULL, sweeper, t);
		if (rc != 0) {
			slog(LOG_ERR, 0, "request-deadline: cannot start its thread (%s); requests are not timed", strerror(rc));
		} else {
			t->started = 1;
		}
	}
	return t;
}

void conns_free(ConnTable *t)
{
	if (!t) return;
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (t->started) pthread_join(t->sweeper, NULL);
	while (t->head) {   /* none once libmicrohttpd has stopped; defensive */
		Conn *k = t->head;
		t->head = k->next;
		free(k);
	}
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

void conns_notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
	ConnTable *t = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		Conn *k = ci ? calloc(1, sizeof *k) : NULL;
		if (!k) return;   /* untracked: only the idle timeout applies to it */
		k->t = t;
		k->fd = ci->connect_fd;
		k->since = mono_seconds();
		format_addr(c, k->addr, sizeof k->addr);
		pthread_mutex_lock(&t->mu);
		k->next = t->head;
		if (t->head) t->head->prev = k;
		t->head = k;
		t->open++;
		pthread_mutex_unlock(&t->mu);
		*socket_context = k;
		return;
	}
	Conn *k = *socket_context;
	if (code != MHD_CONNECTION_NOTIFY_CLOSED || !k) return;
	pthread_mutex_lock(&t->mu);
	if (k->prev) k->prev->next = k->next;
	else t->head = k->next;
	if (k->next) k->next->prev = k->prev;
	t->open--;
	pthread_mutex_unlock(&t->mu);
	free(k);
	*socket_context = NULL;
}

void conns_received(struct MHD_Connection *c)
{
	Conn *k = conn_of(c);
	if (!k) return;
	pthread_mutex_lock(&k->t->mu);
	k->handling = 1;
	pthread_mutex_unlock(&k->t->mu);
}

void conns_answered(struct MHD_Connection *c)
{
	Conn *k = conn_of(c);
	if (!k) return;
	pthread_mutex_lock(&k->t->mu);
	k->handling = 0;
	k->answered = 1;
	k->since = mono_seconds();
	pthread_mutex_unlock(&k->t->mu);
}

void conns_stats(ConnTable *t, ConnStats *s)
{
	pthread_mutex_lock(&t->mu);
	*s = (ConnStats){ .open = t->open, .deadline_cut = t->cut };
	pthread_mutex_unlock(&t->mu);
}
