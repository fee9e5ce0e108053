/* test_blas_core.c - the decision behind ssld choosing OpenBLAS's kernels (engine/blas_core.h):
 * family ranks, and when blas_core_plan() says to execute again (only for a DYNAMIC_ARCH OpenBLAS
 * running a family below the CPU's, with no OPENBLAS_CORETYPE, no "keep" and no earlier
 * re-execution), plus what the probe reads on this machine. it_blas_core.py runs the real binary.
 */
#include <stdio.h>
#include <string.h>

#include "blas_core.h"
#include "check.h"

static BlasCore core(const char *running, const char *cpu, int dynamic)
{
	BlasCore bc = { .dynamic = dynamic };
	snprintf(bc.running, sizeof bc.running, "%s", running);
	snprintf(bc.cpu_family, sizeof bc.cpu_family, "%s", cpu);
	return bc;
}

int main(void)
{
	CHECK(blas_core_rank("Prescott") == 0);
	CHECK(blas_core_rank("sandybridge") == 1);
	CHECK(blas_core_rank("Haswell") == 2 && blas_core_rank("Zen") == 2);
	CHECK(blas_core_rank("SkylakeX") == 3);
	CHECK(blas_core_rank("Cooperlake") == 4 && blas_core_rank("SapphireRapids") == 4);
	CHECK(blas_core_rank("Zen5") == -1 && blas_core_rank("") == -1 && blas_core_rank(NULL) == -1);

	BlasCore fell_back = core("Prescott", "Cooperlake", 1);
	CHECK(blas_core_plan(&fell_back, NULL, NULL, NULL) == BLAS_PLAN_REEXEC);
	CHECK(blas_core_plan(&fell_back, "", "auto", "") == BLAS_PLAN_REEXEC);
	CHECK(blas_core_plan(&fell_back, "Haswell", NULL, NULL) == BLAS_PLAN_KEEP, "the user's OPENBLAS_CORETYPE wins");
	CHECK(blas_core_plan(&fell_back, NULL, "keep", NULL) == BLAS_PLAN_KEEP);
	CHECK(blas_core_plan(&fell_back, NULL, "Cooperlake", NULL) == BLAS_PLAN_BAD_MODE);
	CHECK(blas_core_plan(&fell_back, NULL, NULL, "Prescott") == BLAS_PLAN_KEEP, "at most one re-execution");
	BlasCore fixed = core("Prescott", "Cooperlake", 0);
	CHECK(blas_core_plan(&fixed, NULL, NULL, NULL) == BLAS_PLAN_KEEP, "a build for one core ignores the variable");
	BlasCore known = core("Zen", "Haswell", 1);
	CHECK(blas_core_plan(&known, NULL, NULL, NULL) == BLAS_PLAN_KEEP, "same family");
	BlasCore better = core("SapphireRapids", "Cooperlake", 1);
	CHECK(blas_core_plan(&better, NULL, NULL, NULL) == BLAS_PLAN_KEEP);
	BlasCore unknown = core("Zen5", "Cooperlake", 1);
	CHECK(blas_core_plan(&unknown, NULL, NULL, NULL) == BLAS_PLAN_KEEP, "a name not known here is left alone");
	BlasCore sse = core("Prescott", "", 1);
	CHECK(blas_core_plan(&sse, NULL, NULL, NULL) == BLAS_PLAN_KEEP, "nothing better to choose");

	BlasCore here;
	blas_core_probe(&here);
	CHECK(here.running[0] != 0);
	CHECK(here.cpu_family[0] == 0 || blas_core_rank(here.cpu_family) >= 1, "cpu_family %s", here.cpu_family);
	char ver[32], line[256];
	CHECK(strchr(blas_core_version(ver, sizeof ver), '.') != NULL, "version '%s'", ver);
	blas_core_describe(&here, line, sizeof line);
	CHECK(strstr(line, here.running) != NULL, "%s", line);
	printf("%s\n", line);
	return check_exit("blas_core");
}
