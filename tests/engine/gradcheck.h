/* gradcheck.h - finite-difference gradient checks for engine ops (the `gradcheck` suite).
 *
 * A case builds a computation from heap inputs and names the op kind it checks. The harness runs
 * it once with ctx_backward for the analytic gradient and twice per input element (x+h, x-h) for
 * the central difference, evaluated in double precision, and compares them per element:
 *
 *     err = |analytic - numeric| / max(|analytic|, |numeric|, GC_FLOOR)   must be <= tol
 *
 * Why tol = 1e-2 with GC_STEP = 1e-2 and GC_FLOOR = 1e-2 (the per-op tolerance and step in the
 * case files start from these): the numeric derivative differs from the exact one by
 *   - truncation, h^2 |f'''|/6 ~ 2e-5 |f'''|: negligible unless the curvature is large, and the
 *     case with large curvature (nt_xent at tau 0.1) takes a smaller h and a looser tolerance,
 *     stated at its call;
 *   - rounding of the float32 forward, divided by 2h. Only the outputs that depend on the
 *     perturbed element change between the two evaluations (the others repeat the same
 *     operations on the same values, bit for bit); each carries at most k u sum|term| of error
 *     (tests/tolerance.h), typically sqrt(k) u |term| with independent signs. For the shapes
 *     here (k <= 36 terms of size <= ~1, a few dozen affected outputs with weights in [-1,1])
 *     that is ~1e-7 in the loss, ~1e-5 in the derivative: a tenth of the 1e-4 absolute that
 *     tol 1e-2 allows at the floor, on every OpenBLAS core type alike (each sums in its own
 *     order, but with errors of the same size). The worst element measured under each of
 *     Prescott, Nehalem, Sandybridge, Haswell, Zen, SkylakeX and Cooperlake is 2.4e-3
 *     (conv_transpose2d dx, an absolute 2.4e-5).
 * A wrong backward is off by a term of the gradient's own size, far above both.
 *
 * If the built tensor has more than one element, the harness contracts it with a fixed random
 * weight tensor W (loss = sum(out * W), so every output element matters): the numeric side sums
 * in double, the analytic side through op_mul + op_sum. A one-element result is used as it is
 * (losses). Before each evaluation the context RNG is restored, so random ops (dropout) see the
 * same draws every time. Input grads start at a non-zero value and the harness subtracts it,
 * which also checks that backward accumulates (+=) instead of overwriting.
 *
 *     static Tensor *build_tanh(Ctx *ctx, Tensor **in, void *user) { return op_tanh(ctx, in[0]); }
 *     ...
 *     Tensor *x = gc_input(2, (int[]){3, 4}, -2.0f, 2.0f);
 *     gc_check("tanh (3,4)", OP_TANH, build_tanh, NULL, &x, 1, 1e-2);
 *
 * Inputs come from gc_input (requires grad) or gc_const (no grad, not checked); the harness owns
 * them and frees them in gc_finish. Keep inputs small: each element costs two forward passes.
 * Keep inputs away from kinks (relu at 0, clamp bounds, ties in max) by more than h.
 */
#ifndef SSLD_TESTS_GRADCHECK_H
#define SSLD_TESTS_GRADCHECK_H

#include "ctx.h"
#include "ops.h"
#include "tape.h"
#include "tensor.h"

#define GC_FLOOR 1e-2  /* absolute floor of the relative error's denominator */
#define GC_STEP 1e-2   /* default finite-difference step h */

/* Returns the tensor to differentiate (any shape; see above). */
typedef Tensor *(*gc_build_fn)(Ctx *ctx, Tensor **inputs, void *user);

/* Check every input that requires grad, with step GC_STEP. Returns 0 if all elements pass, -1
 * otherwise; prints one line with the worst element either way and records the result under
 * `kind` for the coverage report. */
int gc_check(const char *label, OpKind kind, gc_build_fn f, void *user, Tensor **inputs, int n,
             double tol);
/* The same with an explicit step h (e.g. 1e-3 for ops with large curvature). */
int gc_check_h(const char *label, OpKind kind, gc_build_fn f, void *user, Tensor **inputs, int n,
               double h, double tol);

/* A heap input with uniform values in [lo, hi) that requires grad. ndim 1..4. */
Tensor *gc_input(int ndim, const int *shape, float lo, float hi);
/* A heap constant (no grad) with uniform values in [lo, hi). */
Tensor *gc_const(int ndim, const int *shape, float lo, float hi);
/* Push every value of t at least `gap` away from `point` (for kinks). */
void gc_keep_away(Tensor *t, float point, float gap);
/* Fill t with distinct values spaced `spacing` apart, in random order, centred on 0 (for max). */
void gc_fill_distinct(Tensor *t, float spacing);
/* The harness RNG (seeded), for cases that need random indices or labels. */
Rng *gc_rng(void);

/* Shorthand for the case lists: IN(lo, hi, dims...) an input, CONST(lo, hi, dims...) a constant,
 * and TOL the usual relative tolerance. */
#define SHP(...) ((const int[]){ __VA_ARGS__ })
#define NDIM(...) ((int)(sizeof((int[]){ __VA_ARGS__ }) / sizeof(int)))
#define IN(lo, hi, ...) gc_input(NDIM(__VA_ARGS__), SHP(__VA_ARGS__), (lo), (hi))
#define CONST(lo, hi, ...) gc_const(NDIM(__VA_ARGS__), SHP(__VA_ARGS__), (lo), (hi))
#define TOL 1e-2

/* Case lists, one per ops file. */
void gradcheck_cases_basic(void);
void gradcheck_cases_nn(void);
void gradcheck_cases_loss(void);
void gradcheck_cases_dist(void);

/* Print the per-op table and "covered N/M ops"; free inputs. Returns the process exit status:
 * 0 only if every check passed and every op kind was covered. */
int gc_finish(void);

#endif
