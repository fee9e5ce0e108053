/* blas_core.c - the OpenBLAS kernel family this process runs and the one this CPU allows (see
 * blas_core.h). The CPU side comes from cpuid through the compiler's feature tests, which also
 * require the OS to save the wider registers; the OpenBLAS side from openblas_get_corename().
 * Deliberately not here: executing again or printing (daemon/main.c does both).
 */
#include "blas_core.h"

#include <cblas.h>
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* OpenBLAS's x86-64 core names (driver/others/dynamic.c) by the widest instructions their
 * kernels use. Names not listed (a newer OpenBLAS's) rank -1: ssld never replaces what it cannot
 * place. */
static const struct {
	const char *name;
	int rank;
} families[] = {
	{ "Katmai", 0 }, { "Coppermine", 0 }, { "Northwood", 0 }, { "Prescott", 0 }, { "Banias", 0 },
	{ "Atom", 0 }, { "Core2", 0 }, { "Penryn", 0 }, { "Dunnington", 0 }, { "Nehalem", 0 },
	{ "Athlon", 0 }, { "Opteron", 0 }, { "Opteron_SSE3", 0 }, { "Barcelona", 0 }, { "Nano", 0 },
	{ "Bobcat", 0 },
	{ "Sandybridge", 1 }, { "Bulldozer", 1 }, { "Piledriver", 1 }, { "Steamroller", 1 },
	{ "Haswell", 2 }, { "Excavator", 2 }, { "Zen", 2 },
	{ "SkylakeX", 3 },
	{ "Cooperlake", 4 }, { "SapphireRapids", 4 },
};

int blas_core_rank(const char *corename)
{
	if (!corename) return -1;
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		if (strcasecmp(corename, families[i].name) == 0) return families[i].rank;
	return -1;
}

/* AVX512_BF16: cpuid leaf 7 sub-leaf 1, EAX bit 5 (the compilers' feature tests do not all know
 * it); asked only once AVX-512 F is known usable. */
static int cpu_has_avx512_bf16(void)
{
	unsigned a, b, c, d;
	if (__get_cpuid_max(0, NULL) < 7) return 0;
	__cpuid_count(7, 1, a, b, c, d);
	(void)b, (void)c, (void)d;
	return (a >> 5) & 1;
}

static void cpu_family(BlasCore *bc)
{
	__builtin_cpu_init();
	const char *fam = "", *flags = "SSE only";
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl")) {
		if (cpu_has_avx512_bf16()) fam = "Cooperlake", flags = "AVX-512 F/BW/VL, BF16";
		else fam = "SkylakeX", flags = "AVX-512 F/BW/VL";
	} else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		fam = "Haswell", flags = "AVX2, FMA";
	} else if (__builtin_cpu_supports("avx")) {
		fam = "Sandybridge", flags = "AVX";
	}
	snprintf(bc->cpu_family, sizeof bc->cpu_family, "%s", fam);
	snprintf(bc->cpu_flags, sizeof bc->cpu_flags, "%s", flags);
}

void blas_core_probe(BlasCore *bc)
{
	memset(bc, 0, sizeof *bc);
	const char *name = openblas_get_corename();
	snprintf(bc->running, sizeof bc->running, "%s", name ? name : "unknown");
	const char *config = openblas_get_config();
	bc->dynamic = config && strstr(config, "DYNAMIC_ARCH") != NULL;
	cpu_family(bc);
}

BlasPlan blas_core_plan(const BlasCore *bc, const char *env_coretype, const char *env_mode,
                        const char *env_from)
{
	if (env_mode && *env_mode && strcmp(env_mode, "auto") != 0) {
		if (strcmp(env_mode, "keep") == 0) return BLAS_PLAN_KEEP;
		return BLAS_PLAN_BAD_MODE;
	}
	if (!bc->dynamic || (env_coretype && *env_coretype) || (env_from && *env_from)) return BLAS_PLAN_KEEP;
	int have = blas_core_rank(bc->running), want = blas_core_rank(bc->cpu_family);
	if (have < 0 || want < 0 || have >= want) return BLAS_PLAN_KEEP;
	return BLAS_PLAN_REEXEC;
}

const char *blas_core_chooser(void)
{
	const char *set = getenv("OPENBLAS_CORETYPE"), *from = getenv(BLAS_CORE_ENV_FROM);
	if (!set || !*set) return "openblas";
	return from && *from ? "ssld" : "OPENBLAS_CORETYPE";
}

const char *blas_core_version(char *buf, size_t n)
{
	const char *config = openblas_get_config();
	buf[0] = 0;
	if (config && strncmp(config, "OpenBLAS ", 9) == 0) {
		size_t len = strcspn(config + 9, " ");
		snprintf(buf, n, "%.*s", (int)len, config + 9);
	}
	return buf;
}

char *blas_core_describe(const BlasCore *bc, char *buf, size_t n)
{
	char ver[32];
	const char *chooser = blas_core_chooser(), *set = getenv("OPENBLAS_CORETYPE");
	int off = snprintf(buf, n, "OpenBLAS %s, kernels %s (", *blas_core_version(ver, sizeof ver) ? ver : "?", bc->running);
	if (off < 0 || (size_t)off >= n) return buf;
	if (strcmp(chooser, "ssld") == 0 && strcasecmp(set, bc->running) == 0)
		snprintf(buf + off, n - (size_t)off, "chosen by ssld: OpenBLAS picked %s on this CPU: %s; "
		         BLAS_CORE_ENV_MODE "=keep keeps OpenBLAS's choice)", getenv(BLAS_CORE_ENV_FROM), bc->cpu_flags);
	else if (strcmp(chooser, "ssld") == 0)
		snprintf(buf + off, n - (size_t)off, "ssld asked for %s, OpenBLAS had picked %s; CPU: %s)",
		         set, getenv(BLAS_CORE_ENV_FROM), bc->cpu_flags);
	else if (strcmp(chooser, "OPENBLAS_CORETYPE") == 0)
		snprintf(buf + off, n - (size_t)off, "OPENBLAS_CORETYPE=%s; CPU: %s)", set, bc->cpu_flags);
	else
		snprintf(buf + off, n - (size_t)off, "OpenBLAS's choice; CPU: %s)", bc->cpu_flags);
	return buf;
}
