/* simd.c - run-time choice among the SimdKernels of three x86-64 levels (simd.h).
 *
 * The engine is built for x86-64-v2 so one binary runs on every x86-64 server; the kernels here
 * (GELU and its gradient, the attention softmax, layer normalisation and its gradient, the
 * cross-entropy rows) are where wider vectors measurably paid on the char Transformer
 * (BENCHMARKS.md, "Wider vectors chosen at run time" and "Attention on the fused projection"),
 * so they are compiled again for x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512) from one body (simd_kernels.inc) and the widest the CPU runs is chosen once. A table
 * chosen once, rather than GCC's target_clones, lets SSLD_SIMD lower the level and lets tests run
 * every level in one process (simd_at). The AdamW update is here too so every per-element loop of
 * a Transformer step runs at one chosen level, though it is memory-bound and the width buys it
 * nothing measurable (bench/simd_bench, BENCHMARKS.md). Batchnorm over (N,C) rows is here because
 * its per-channel sums widen floats into double accumulators, a loop the baseline's two-double
 * vectors run at a quarter of AVX-512's width. Deliberately not here: hand-written
 * intrinsics (the loops vectorize as written) and the softmax backward, memory-bound as well.
 */
#include "simd.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* glibc declares its vector math (libmvec) only under full -ffast-math; the engine keeps
 * -fno-finite-math-only, so the SIMD variants are declared here (as in ops_basic.c). Each level's
 * loops then call the variant of their own width (_ZGVbN4v_, _ZGVdN8v_, _ZGVeN16v_). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__FAST_MATH__)
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float tanhf(float);
#define SIMD_MULTI 1
#else
#define SIMD_MULTI 0
#endif

/* A block of floats the row kernels handle at once (softmax_row): one AVX-512 vector, two AVX2,
 * four SSE; GCC's vector extensions lower it to the level's own registers. */
#define SIMD_LANES 16
typedef float SimdBlock __attribute__((vector_size(SIMD_LANES * sizeof(float))));
typedef int SimdMask __attribute__((vector_size(SIMD_LANES * sizeof(int))));

#define SIMD_FN(name) name##_sse
#define SIMD_LEVEL SIMD_SSE
#include "simd_kernels.inc"
#undef SIMD_FN
#undef SIMD_LEVEL

#if SIMD_MULTI
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define SIMD_FN(name) name##_avx2
#define SIMD_LEVEL SIMD_AVX2
#include "simd_kernels.inc"
#undef SIMD_FN
#undef SIMD_LEVEL
#pragma GCC pop_options

/* generic tuning would keep AVX-512 code to 256-bit vectors; these loops gain from all 512 */
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,prefer-vector-width=512")
#define SIMD_FN(name) name##_avx512
#define SIMD_LEVEL SIMD_AVX512
#include "simd_kernels.inc"
#undef SIMD_FN
#undef SIMD_LEVEL
#pragma GCC pop_options
#endif

static const SimdKernels *const tables[SIMD_LEVEL_COUNT] = {
	&kernels_sse,
#if SIMD_MULTI
	&kernels_avx2,
	&kernels_avx512,
#endif
};

static const char *const level_names[SIMD_LEVEL_COUNT] = { "sse", "avx2", "avx512" };
_Static_assert(sizeof level_names / sizeof *level_names == SIMD_LEVEL_COUNT, "a name per level");

const char *simd_level_name(SimdLevel level)
{
	return (unsigned)level < SIMD_LEVEL_COUNT ? level_names[level] : "?";
}

SimdLevel simd_cpu_level(void)
{
#if SIMD_MULTI
	__builtin_cpu_init();
	if (__builtin_cpu_supports("x86-64-v4"))
		return SIMD_AVX512;
	if (__builtin_cpu_supports("x86-64-v3"))
		return SIMD_AVX2;
#endif
	return SIMD_SSE;
}

const SimdKernels *simd_at(SimdLevel level)
{
	if ((unsigned)level >= SIMD_LEVEL_COUNT || level > simd_cpu_level())
		return NULL;
	return tables[level];
}

static const SimdKernels *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
	SimdLevel level = simd_cpu_level();
	const char *want = getenv("SSLD_SIMD");
	if (want && *want && strcmp(want, "auto") != 0) {
		int found = 0;
		for (int l = 0; l < SIMD_LEVEL_COUNT; l++)
			if (strcmp(want, level_names[l]) == 0) {
				found = 1;
				if ((SimdLevel)l < level)
					level = (SimdLevel)l;
			}
		if (!found)
			fprintf(stderr, "ssld engine: SSLD_SIMD=%s is not one of sse, avx2, avx512, auto; "
			        "using %s\n", want, level_names[level]);
	}
	chosen = tables[level];
}

const SimdKernels *simd(void)
{
	pthread_once(&chosen_once, choose);
	return chosen;
}
