/* main.c - the `ssld` binary: picks the subcommand and turns its status into the exit code.
 *
 * `ssld` with no subcommand (or with only flags) serves. Nothing else lives here: serving is
 * serve.c, `ssld run` is workers/cli_run.c, `ssld check` and `ssld schema` are cli/, the
 * catalogue is workers/spec_json.c, `ssld token` is
 * cli_token.c, the HTTP client commands (submit, ls, show, watch, cancel, results) are
 * workers/cli_client.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/check.h"
#include "../cli/schema.h"
#include "../cli/client.h"
#include "../cli/generate.h"
#include "../cli/run.h"
#include "../workers/jobspec.h"
#include "../cli/token.h"
#include "config.h"
#include "serve.h"

#ifndef SSLD_VERSION
#define SSLD_VERSION "unknown"
#endif

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--version") == 0)) {
			printf("ssld %s\n", SSLD_VERSION);
			return 0;
		}
		return serve_main(argc - 1, argv + 1);
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "serve") == 0) return serve_main(argc - 2, argv + 2);
	if (strcmp(cmd, "run") == 0) return cli_run_main(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0) return cli_check_main(argc - 1, argv + 1);
	if (strcmp(cmd, "schema") == 0) return cli_schema_main(argc - 1, argv + 1);
	if (strcmp(cmd, "generate") == 0) return cli_generate_main(argc - 1, argv + 1);
	if (strcmp(cmd, "token") == 0) return cli_token_main(argc - 1, argv + 1);
	if (cli_client_is_command(cmd)) return cli_client_main(argc - 1, argv + 1);
	if (strcmp(cmd, "methods") == 0) {
		if (argc > 2) {
			fprintf(stderr, "ssld methods: unexpected argument '%s' (it takes none)\n", argv[2]);
			return 2;
		}
		return jobspec_print_catalog(stdout) < 0 ? 1 : 0;
	}
	if (strcmp(cmd, "version") == 0) {
		printf("ssld %s\n", SSLD_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		config_usage();
		return 0;
	}
	fprintf(stderr, "ssld: unknown command '%s'; commands: serve (default), run, check, schema, generate, methods, token, submit, ls, "
	        "show, watch, cancel, results, version, help\n", cmd);
	exit(2);
}
