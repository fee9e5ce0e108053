/* cancel.c - `ssld cancel ID`: a queued job is cancelled at once (200), a running one is asked
 * to stop (202, within a training step); a refusal is the server's error as it is. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "client.h"
#include "commands.h"

int cli_cancel_main(int argc, char **argv)
{
	CliOpt opts[] = { CLIENT_OPTS };
	const char *pos[1];
	long long id;
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 2, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (client_parse_id("cancel", npos ? pos[0] : NULL, &id) < 0) return 2;
	Client c;
	if (client_init(&c, "cancel", opts) != 0) return 2;
	char path[64], err[768];
	snprintf(path, sizeof path, "/v1/jobs/%lld/cancel", id);
	ClientResp r;
	if (client_http(&c, "POST", path, NULL, 0, &r, err, sizeof err) < 0) {
		fprintf(stderr, "ssld cancel: %s\n", err);
		return 1;
	}
	rc = 0;
	if (r.status == 200) printf("job %lld cancelled\n", id);
	else if (r.status == 202) printf("job %lld: cancel requested; it stops within one training step\n", id);
	else rc = client_server_error("cancel", &r);
	free(r.body);
	return rc;
}
