/* serve.h - `ssld serve`: the daemon (storage, workers, HTTP) around one libuv loop. */
#ifndef SSLD_DAEMON_SERVE_H
#define SSLD_DAEMON_SERVE_H

/* argv[0] is the first serve flag. Returns the process exit status (0 clean stop, 1 failure,
 * 2 usage error). */
int serve_main(int argc, char **argv);

#endif
