/* main.c - the `ssld` binary: hands argv to the command table (cli/commands.h) and turns the
 * command's status into the exit code. Bare `ssld` prints the table; serving is `ssld serve`
 * (serve.c). Before a command that trains it lets ssld choose OpenBLAS's kernels (below).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/commands.h"
#include "../engine/blas_core.h"

/* OpenBLAS reads OPENBLAS_CORETYPE only in its load-time constructor, so a better choice than its
 * fallback on a CPU it does not know takes executing this binary again with the variable set:
 * once (the variable and SSLD_BLAS_CORETYPE_FROM are set then), same argv, same fds, same pid.
 * Returns 0 to go on, or an exit status. */
static int choose_blas_kernels(char **argv)
{
	BlasCore bc;
	blas_core_probe(&bc);
	const char *from = getenv(BLAS_CORE_ENV_FROM);
	switch (blas_core_plan(&bc, getenv("OPENBLAS_CORETYPE"), getenv(BLAS_CORE_ENV_MODE), from)) {
	case BLAS_PLAN_BAD_MODE:
		fprintf(stderr, "ssld: %s=%s: expected auto (ssld chooses OpenBLAS's kernels) or keep (OpenBLAS's "
		        "own choice); to name kernels set OPENBLAS_CORETYPE\n", BLAS_CORE_ENV_MODE, getenv(BLAS_CORE_ENV_MODE));
		return 2;
	case BLAS_PLAN_REEXEC:
		if (setenv("OPENBLAS_CORETYPE", bc.cpu_family, 1) == 0 && setenv(BLAS_CORE_ENV_FROM, bc.running, 1) == 0)
			execv("/proc/self/exe", argv);
		fprintf(stderr, "ssld: could not start again with OPENBLAS_CORETYPE=%s (%s); running OpenBLAS's %s kernels\n",
		        bc.cpu_family, strerror(errno), bc.running);
		unsetenv("OPENBLAS_CORETYPE");
		unsetenv(BLAS_CORE_ENV_FROM);
		return 0;
	case BLAS_PLAN_KEEP:
		break;
	}
	/* ssld run says so on stderr; ssld serve logs it with its other start-up lines (serve.c). */
	if (from && *from && strcmp(argv[1], "run") == 0) {
		char line[256];
		fprintf(stderr, "ssld: BLAS: %s\n", blas_core_describe(&bc, line, sizeof line));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "serve") == 0 || strcmp(argv[1], "run") == 0)) {
		int rc = choose_blas_kernels(argv);
		if (rc) return rc;
	}
	return cli_dispatch(argc, argv);
}
