/* migrate.c - `ssld migrate --from ssld.db --to postgresql://...`: moves a single node's queue and
 * history into PostgreSQL (storage/store_migrate.h does the copy), after which every node runs
 * with `--database` set to that URL. Run it with the daemon stopped, as the service user.
 * Deliberately not here: anything about the tables (storage/).
 */
#include <stdio.h>
#include <string.h>

#include "../storage/store.h"
#include "../storage/store_migrate.h"
#include "commands.h"

int cli_migrate_main(int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) from = argv[++i];
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) to = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cli_command_usage("migrate", stdout);
			return 0;
		} else {
			fprintf(stderr, "ssld migrate: unexpected argument '%s'\n", argv[i]);
			cli_command_usage("migrate", stderr);
			return 2;
		}
	}
	if (!from || !to) {
		fprintf(stderr, "ssld migrate: --from FILE and --to URL are both needed\n");
		cli_command_usage("migrate", stderr);
		return 2;
	}
	char err[1024];
	StoreMigrateStats ms;
	if (store_migrate(from, to, &ms, err, sizeof err) < 0) {
		fprintf(stderr, "ssld migrate: %s\n", err);
		return 1;
	}
	printf("copied %lld jobs, %lld groups, %lld metric points, %lld events, %lld artifacts, %lld tokens, %lld datasets, "
	       "%lld webhook deliveries from %s to PostgreSQL\n", (long long)ms.jobs, (long long)ms.groups, (long long)ms.metrics,
	       (long long)ms.events, (long long)ms.artifacts, (long long)ms.tokens, (long long)ms.datasets,
	       (long long)ms.deliveries, from);
	return 0;
}
