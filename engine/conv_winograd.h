/* conv_winograd.h - 3x3, stride 1, pad 1 convolutions by Winograd's minimal filtering F(2x2,3x3),
 * and the choice between it and the im2col lowering of ops_nn.c.
 *
 * Each output 2x2 block is computed from a 4x4 input tile (tiles overlap by 2) as
 *     Y = A^T [ sum_c (G g_c G^T) .* (B^T d_c B) ] A
 * so the C-channel reduction becomes 16 independent matrix products (one per position xi of the
 * 4x4 transformed tile): M_xi (K, tiles) = U_xi (K, C) . V_xi (C, tiles), 16 multiplies per tile
 * and channel pair instead of 36, i.e. 2.25x fewer flops in the sgemms, plus the transforms.
 *
 *   // y (N,K,H,W) = conv2d(x (N,C,H,W), w (K,C,3,3), stride 1, pad 1) + b
 *   if (conv_winograd_chosen(C, K, H, W, 3, 3, 1, 1))
 *       conv_winograd(ctx, x, w, 0, b, y, N, C, H, W, K, 0);
 *
 * The input gradient of such a convolution is the same kind of convolution of dy with the filter
 * rotated 180 degrees and its two channel axes swapped: flip = 1 reads w that way, so
 *     conv_winograd(ctx, dy, w, 1, NULL, dx, N, K, H, W, C, 1);   // dx += conv^T(dy)
 *
 * The path is chosen by SSLD_CONV=auto|im2col|winograd (read once; auto by default): im2col
 * never uses this module, winograd uses it for every eligible convolution, auto where it was
 * measured to pay (see conv_winograd_chosen). Results are the same run to run, and those of
 * conv_winograd whatever the thread count: tiles are cut into fixed blocks, each computed by one
 * thread with single-threaded sgemms.
 *
 * The weight gradient is the adjoint of the same transforms (conv_winograd_dw).
 *
 * Not here: strides other than 1, kernels other than 3x3, F(4x4,3x3) (larger transform
 * constants, see the error analysis in tests/engine/test_conv_winograd.c).
 */
#ifndef SSLD_ENGINE_CONV_WINOGRAD_H
#define SSLD_ENGINE_CONV_WINOGRAD_H

#include "ctx.h"
#include "simd.h"

typedef enum ConvAlgo {
	CONV_ALGO_AUTO,      /* Winograd where it pays, else im2col */
	CONV_ALGO_IM2COL,
	CONV_ALGO_WINOGRAD,  /* every eligible (3x3, stride 1, pad 1) convolution */
	CONV_ALGO_COUNT
} ConvAlgo;

/* The mode in force: conv_algo_set's, else SSLD_CONV's (an unknown value is reported once on
 * stderr and read as auto). */
ConvAlgo conv_algo(void);
/* Force a mode for the whole process (tests and benchmarks); CONV_ALGO_COUNT returns to
 * SSLD_CONV's. */
void conv_algo_set(ConvAlgo algo);
const char *conv_algo_name(ConvAlgo algo);

/* 1 when a convolution of C input and K output channels on (H,W) planes with this kernel, stride
 * and padding goes through conv_winograd under the current mode. */
int conv_winograd_chosen(int C, int K, int H, int W, int kh, int kw, int stride, int pad);

/* 1 when the weight gradient of such a convolution (conv_winograd_chosen) goes through
 * conv_winograd_dw rather than im2col: always in winograd mode, in auto where it pays. */
int conv_winograd_dw_chosen(int C, int K, int H, int W);

/* Run the tile transforms at this level (tests walk every level); SIMD_LEVEL_COUNT returns to
 * simd()'s. -1 (and no change) when this CPU cannot run the level. */
int conv_winograd_set_level(SimdLevel level);

/* y (N,K,H,W) = conv(x (N,C,H,W)) + bias (K, or NULL), 3x3 kernel, stride 1, pad 1; with
 * accumulate, y += conv(x) instead (bias must then be NULL). w is (K,C,3,3), or with flip (C,K,3,3)
 * used as w'[k][c][i][j] = w[c][k][2-i][2-j] (the input gradient of a convolution by w). Scratch
 * comes from ctx's arena. */
void conv_winograd(Ctx *ctx, const float *x, const float *w, int flip, const float *bias, float *y,
                   int N, int C, int H, int W, int K, int accumulate);

/* dw (K,C,3,3) += the weight gradient of that convolution (no flip) for input x (N,C,H,W) and
 * output gradient dy (N,K,H,W), by F(3x3,2x2), the adjoint of the forward's transforms. */
void conv_winograd_dw(Ctx *ctx, const float *x, const float *dy, float *dw, int N, int C, int H,
                      int W, int K);

#endif
