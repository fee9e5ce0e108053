/* conns.h - the open HTTP connections, and the whole-request deadline.
 *
 * libmicrohttpd's connection timeout starts again whenever a byte arrives, so a client that sends
 * one byte every few seconds holds a connection for as long as it likes, and a few hundred such
 * clients hold them all. This table records every connection when it opens
 * (MHD_OPTION_NOTIFY_CONNECTION) and when each of its requests has arrived whole and been
 * answered; a sweep thread closes a connection whose request has not arrived whole within
 * `deadline_s` of the connection opening (408 first) or of its previous answer (kept alive: just
 * closed), however many bytes trickle in. While a request is being handled (or waits for generation) the clock is stopped.
 * Not here: the per-address connection limit (MHD_OPTION_PER_IP_CONNECTION_LIMIT in server.c).
 *
 *   ConnTable *t = conns_new(30.0);            // NULL: out of memory; deadline <= 0: no sweep
 *   MHD_start_daemon(..., MHD_OPTION_NOTIFY_CONNECTION, conns_notify, t, ...);
 *   conns_received(c);    // the access handler, once the request is whole: the clock stops
 *   conns_answered(c);    // the request-completed callback: the clock restarts for the next one
 *   MHD_stop_daemon(d);
 *   conns_free(t);
 */
#ifndef SSLD_API_CONNS_H
#define SSLD_API_CONNS_H

#include <microhttpd.h>
#include <stdint.h>

typedef struct ConnTable ConnTable;

ConnTable *conns_new(double deadline_s);
void conns_free(ConnTable *t);   /* stops the sweep; NULL is a no-op */

/* MHD_NotifyConnectionCallback: cls is the table. */
void conns_notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code);
void conns_received(struct MHD_Connection *c);
void conns_answered(struct MHD_Connection *c);

typedef struct ConnStats {
	int open;              /* connections open now */
	uint64_t deadline_cut; /* connections closed by the deadline since conns_new */
} ConnStats;
void conns_stats(ConnTable *t, ConnStats *s);

#endif
