/* cli_client.h - the command-line client in the `ssld` binary: talks HTTP/1.1 to a running daemon.
 *
 *   ssld submit job.json [--watch]     queue a job; prints its id
 *   ssld ls [--state S,..] [--owner O] [--limit N]
 *   ssld show ID                       state, progress, latest metrics, error
 *   ssld watch ID [--interval S]       a live progress bar (ETA, latest loss) on a terminal, plain
 *                                      lines otherwise; exits 0 if the job succeeded
 *   ssld cancel ID
 *   ssld results ID                    the evaluation table of a finished job
 * `--json` prints the server's JSON instead of a table (ls, show, results).
 *
 * The server and token come from --server URL / --token TOKEN, else SSLD_SERVER / SSLD_TOKEN,
 * else "server = ..." / "token = ..." lines in $XDG_CONFIG_HOME/ssld/client.conf (default
 * ~/.config/ssld/client.conf), else http://127.0.0.1:8080 and no token.
 */
#ifndef SSLD_WORKERS_CLI_CLIENT_H
#define SSLD_WORKERS_CLI_CLIENT_H

/* Whether argv[1] of `ssld` names a client command. */
int cli_client_is_command(const char *cmd);
/* argv[0] is the command ("submit", "ls", ...). Returns the exit status: 0 ok, 1 failure (or, for
 * watch, a job that did not succeed), 2 usage. */
int cli_client_main(int argc, char **argv);

#endif
