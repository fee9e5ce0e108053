/* blas_core.h - which OpenBLAS kernels this process runs, and the better ones this CPU allows.
 *
 * An OpenBLAS built with DYNAMIC_ARCH picks its kernels once, in its load-time constructor, from
 * its table of known CPUs; on a CPU newer than that table it falls back to an old family (OpenBLAS
 * 0.3.21 runs its SSE3 "Prescott" kernels on AVX-512 Xeons it does not know), which makes every
 * sgemm several times slower. The only way to change the choice is OPENBLAS_CORETYPE in the
 * environment before the library loads, so the binary's main() asks blas_core_plan() and, when it
 * says so, sets the variable and executes itself again (daemon/main.c):
 *
 *   BlasCore bc;
 *   blas_core_probe(&bc);
 *   if (blas_core_plan(&bc, getenv("OPENBLAS_CORETYPE"), getenv(BLAS_CORE_ENV_MODE),
 *                      getenv(BLAS_CORE_ENV_FROM)) == BLAS_PLAN_REEXEC) {
 *       setenv("OPENBLAS_CORETYPE", bc.cpu_family, 1);
 *       setenv(BLAS_CORE_ENV_FROM, bc.running, 1);    // at most one re-execution
 *       execv("/proc/self/exe", argv);
 *   }
 *
 * blas_core_describe() is what `ssld version` and GET /v1/health report. Nothing here executes,
 * prints or changes the environment.
 */
#ifndef SSLD_ENGINE_BLAS_CORE_H
#define SSLD_ENGINE_BLAS_CORE_H

#include <stddef.h>

/* SSLD_BLAS_CORETYPE=keep keeps OpenBLAS's own choice ("auto", the default, lets ssld choose). */
#define BLAS_CORE_ENV_MODE "SSLD_BLAS_CORETYPE"
/* Set by ssld before it executes itself again: the core type OpenBLAS had chosen. */
#define BLAS_CORE_ENV_FROM "SSLD_BLAS_CORETYPE_FROM"

typedef struct {
	char running[32];     /* openblas_get_corename() of this process: "Prescott", "SkylakeX" ... */
	char cpu_family[32];  /* the strongest family the CPU's flags allow: "Cooperlake", "SkylakeX",
	                         "Haswell", "Sandybridge", or "" (SSE only: nothing to choose) */
	char cpu_flags[64];   /* the flags that decided it, for people: "AVX-512 F/BW/VL, BF16" */
	int dynamic;          /* OpenBLAS was built with DYNAMIC_ARCH (OPENBLAS_CORETYPE is honoured) */
} BlasCore;

typedef enum {
	BLAS_PLAN_KEEP,       /* run as loaded */
	BLAS_PLAN_REEXEC,     /* set OPENBLAS_CORETYPE=cpu_family and execute again */
	BLAS_PLAN_BAD_MODE,   /* SSLD_BLAS_CORETYPE holds something other than auto or keep */
} BlasPlan;

/* Fills *bc from the loaded OpenBLAS and the CPU (cpuid, with the OS's register support). */
void blas_core_probe(BlasCore *bc);

/* Rank of a kernel family by the instructions it uses: 0 SSE, 1 AVX, 2 AVX2+FMA, 3 AVX-512,
 * 4 AVX-512 with BF16; -1 for a name not known here (never replaced). Case-insensitive. */
int blas_core_rank(const char *corename);

/* Whether to choose: only when OpenBLAS is DYNAMIC_ARCH, env_coretype (OPENBLAS_CORETYPE) is
 * unset or empty, env_mode is unset/""/"auto", env_from is unset (not yet executed again) and the
 * running family ranks below cpu_family. */
BlasPlan blas_core_plan(const BlasCore *bc, const char *env_coretype, const char *env_mode,
                        const char *env_from);

/* Who chose the running kernels, from this process's environment: "ssld" (executed again with
 * OPENBLAS_CORETYPE set by ssld), "OPENBLAS_CORETYPE" (set by the user) or "openblas". */
const char *blas_core_chooser(void);

/* One line for people: "OpenBLAS 0.3.21, kernels Cooperlake (chosen by ssld: OpenBLAS picked
 * Prescott; CPU: AVX-512 F/BW/VL, BF16)". Returns buf. */
char *blas_core_describe(const BlasCore *bc, char *buf, size_t n);

/* The library's version word ("0.3.21") or "" when its configuration string does not say. */
const char *blas_core_version(char *buf, size_t n);

#endif
