/* cli_token.h - `ssld token create NAME [--admin] | list | revoke NAME`: API tokens, on the server.
 *
 * Tokens live in the daemon's database (STATE_DIR/ssld.db) as SHA-256 digests; `create` prints the
 * token once. Run it on the box where ssld runs, as root or the service user:
 *
 *   sudo ssld token create alice            # prints ssld_... once
 *   sudo ssld token create ops --admin      # may cancel anyone's jobs
 *   sudo ssld token list
 *   sudo ssld token revoke alice            # takes effect at the next request, no restart
 */
#ifndef SSLD_DAEMON_CLI_TOKEN_H
#define SSLD_DAEMON_CLI_TOKEN_H

/* argv[0] is "token". Returns the exit status (0 ok, 1 failure, 2 usage). */
int cli_token_main(int argc, char **argv);

#endif
