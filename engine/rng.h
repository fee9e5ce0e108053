/* rng.h - a small, seedable, serialisable random number generator (xoshiro256**).
 *
 * One Rng per training context: the same seed gives the same stream on every machine, and the
 * whole state is four integers so checkpoints can store and restore it exactly.
 *
 *   Rng r; rng_seed(&r, 42);
 *   float u = rng_uniform(&r);          // [0, 1)
 *   float z = rng_normal(&r);           // N(0, 1)
 *   int perm[10]; rng_permutation(&r, perm, 10);
 */
#ifndef SSLD_ENGINE_RNG_H
#define SSLD_ENGINE_RNG_H

#include <stdint.h>

typedef struct Rng {
	uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
float rng_uniform(Rng *r);                         /* [0, 1) */
float rng_uniform_range(Rng *r, float lo, float hi);/* [lo, hi) */
float rng_normal(Rng *r);                          /* standard normal (Box-Muller, no caching) */
uint32_t rng_below(Rng *r, uint32_t n);            /* uniform in [0, n), unbiased; n > 0 */
void rng_permutation(Rng *r, int *out, int n);     /* out = a uniformly random permutation of 0..n-1 */
void rng_shuffle(Rng *r, int *v, int n);           /* Fisher-Yates in place */
Rng rng_fork(Rng *r);                              /* an independent child stream (for threads) */

#endif
