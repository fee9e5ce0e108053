/* ops.h - differentiable tensor operations (define-by-run).
 *
 * Every function returns a new arena tensor (valid until ctx_reset) and, when an input requires
 * grad and grad mode is on, records the op on the context's tape so ctx_backward can
 * differentiate through it. Shape mismatches are programming errors and abort with a message
 * naming the op and both shapes (ggml style): specs are validated long before tensors exist.
 *
 *   Tensor *h = op_relu(ctx, op_add(ctx, op_matmul(ctx, x, w, 0, 1), b));  // x(B,I) w(O,I) b(O)
 *   Tensor *loss = op_cross_entropy(ctx, h, labels, 0.0f);                  // scalar
 *   ctx_backward(ctx, loss);
 *
 * Broadcasting (add/sub/mul/div) follows NumPy: shapes are right-aligned and a dimension of 1
 * (or a missing one) stretches.
 */
#ifndef SSLD_ENGINE_OPS_H
#define SSLD_ENGINE_OPS_H

#include "ctx.h"
#include "tensor.h"

/* ---- linear algebra ---------------------------------------------------------------------- */
/* a (M,K) or (K,M) if ta; b (K,N) or (N,K) if tb -> (M,N). 2-D only; through cblas_sgemm.
 * A 3-D a (B,M,K) with 2-D b is treated as (B*M,K). */
Tensor *op_matmul(Ctx *ctx, Tensor *a, Tensor *b, int ta, int tb);
/* Batched: a (B,M,K) b (B,K,N) -> (B,M,N), with per-operand transposes of the last two dims. */
Tensor *op_bmm(Ctx *ctx, Tensor *a, Tensor *b, int ta, int tb);
/* x (..., I) w (O,I) b (O) or NULL -> (..., O) = x w^T + b: one op, the bias folded into the
 * sgemm's output (recorded as OP_MATMUL). */
Tensor *op_linear(Ctx *ctx, Tensor *x, Tensor *w, Tensor *b);

/* ---- element-wise, broadcasting ---------------------------------------------------------- */
Tensor *op_add(Ctx *ctx, Tensor *a, Tensor *b);
Tensor *op_sub(Ctx *ctx, Tensor *a, Tensor *b);
Tensor *op_mul(Ctx *ctx, Tensor *a, Tensor *b);
Tensor *op_div(Ctx *ctx, Tensor *a, Tensor *b);
Tensor *op_scale(Ctx *ctx, Tensor *a, float s);        /* a * s */
Tensor *op_add_scalar(Ctx *ctx, Tensor *a, float s);   /* a + s */
Tensor *op_square(Ctx *ctx, Tensor *a);
Tensor *op_clamp(Ctx *ctx, Tensor *a, float lo, float hi); /* grad passes where lo < a < hi */

/* ---- reductions -------------------------------------------------------------------------- */
/* axis in [-ndim, ndim); keepdim keeps a size-1 dimension. axis = INT_MIN (OP_ALL) reduces all
 * to a scalar of shape (1). */
#define OP_ALL (-1000)
Tensor *op_sum(Ctx *ctx, Tensor *a, int axis, int keepdim);
Tensor *op_mean(Ctx *ctx, Tensor *a, int axis, int keepdim);
Tensor *op_max(Ctx *ctx, Tensor *a, int axis, int keepdim); /* grad to the (first) argmax */

/* ---- activations and pointwise math -------------------------------------------------------- */
Tensor *op_relu(Ctx *ctx, Tensor *a);
Tensor *op_leaky_relu(Ctx *ctx, Tensor *a, float slope);
Tensor *op_gelu(Ctx *ctx, Tensor *a);                  /* tanh approximation */
Tensor *op_tanh(Ctx *ctx, Tensor *a);
Tensor *op_sigmoid(Ctx *ctx, Tensor *a);
Tensor *op_exp(Ctx *ctx, Tensor *a);
Tensor *op_log(Ctx *ctx, Tensor *a);
Tensor *op_sqrt(Ctx *ctx, Tensor *a);
Tensor *op_pow(Ctx *ctx, Tensor *a, float p);
/* Along the last axis. */
Tensor *op_softmax(Ctx *ctx, Tensor *a);
Tensor *op_log_softmax(Ctx *ctx, Tensor *a);

/* ---- normalisation and regularisation ------------------------------------------------------ */
/* x (..., D) normalised over the last axis; gamma, beta (D) or NULL. */
Tensor *op_layernorm(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta, float eps);
/* x (N,C) or (N,C,H,W); gamma, beta (C) or NULL. Training mode (ctx_training): batch statistics,
 * and running_mean/var (C, plain float arrays, may be NULL) are updated with `momentum`
 * (PyTorch convention: running = (1-m)*running + m*batch, unbiased variance). Eval mode: uses the
 * running statistics (which must then be non-NULL). */
Tensor *op_batchnorm(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta,
                     float *running_mean, float *running_var, float momentum, float eps);
/* relu(op_batchnorm(...)) as one op (the same values and gradients, one pass instead of three). */
Tensor *op_batchnorm_relu(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta,
                          float *running_mean, float *running_var, float momentum, float eps);
/* relu(op_batchnorm(x, ...) + id) as one op (a residual block's last batchnorm, its shortcut
 * and its ReLU): no batchnorm output tensor, no gradient buffer for it. id has x's shape. With
 * reuse_id the output is written over id's data (no new tensor at all): only for an id whose
 * values nothing else reads afterwards, forward or backward (e.g. the output of another
 * op_batchnorm, whose backward reads its input, not its output); id's gradient is unaffected. */
Tensor *op_batchnorm_add_relu(Ctx *ctx, Tensor *x, Tensor *gamma, Tensor *beta,
                              float *running_mean, float *running_var, float momentum, float eps,
                              Tensor *id, int reuse_id);
/* relu(op_add(a, b)) for a and b of one shape (no broadcasting), as one op. */
Tensor *op_add_relu(Ctx *ctx, Tensor *a, Tensor *b);
/* Inverted dropout with probability p, only in training mode; identity otherwise. Uses ctx_rng. */
Tensor *op_dropout(Ctx *ctx, Tensor *x, float p);

/* ---- convolution and pooling (NCHW) -------------------------------------------------------- */
/* x (N,C,H,W) w (O,C,kh,kw) b (O) or NULL -> (N,O,H',W'), H' = (H + 2*pad - kh)/stride + 1.
 * Lowered to im2col + cblas_sgemm. */
Tensor *op_conv2d(Ctx *ctx, Tensor *x, Tensor *w, Tensor *b, int stride, int pad);
/* x (N,C,H,W) w (C,O,kh,kw) b (O) or NULL -> (N,O,(H-1)*stride - 2*pad + kh + out_pad, ...). */
Tensor *op_conv_transpose2d(Ctx *ctx, Tensor *x, Tensor *w, Tensor *b, int stride, int pad,
                            int out_pad);
Tensor *op_upsample_nearest(Ctx *ctx, Tensor *x, int factor); /* (N,C,H,W) -> (N,C,H*f,W*f) */
Tensor *op_maxpool2d(Ctx *ctx, Tensor *x, int k, int stride);
/* Max pooling over a padded input, PyTorch's MaxPool2d(k, stride, pad): padded cells never win
 * (as -inf). 0 <= pad <= k/2. -> (N,C,(H+2*pad-k)/stride+1, ...). */
Tensor *op_maxpool2d_pad(Ctx *ctx, Tensor *x, int k, int stride, int pad);
Tensor *op_avgpool2d(Ctx *ctx, Tensor *x, int k, int stride);
Tensor *op_global_avgpool(Ctx *ctx, Tensor *x);               /* (N,C,H,W) -> (N,C) */

/* ---- shape ----------------------------------------------------------------------------------- */
Tensor *op_reshape(Ctx *ctx, Tensor *a, int ndim, const int *shape); /* one dim may be -1 */
Tensor *op_permute(Ctx *ctx, Tensor *a, const int *perm);           /* perm has a->ndim entries */
Tensor *op_transpose(Ctx *ctx, Tensor *a, int d0, int d1);          /* via op_permute */
Tensor *op_concat(Ctx *ctx, Tensor *const *ts, int n, int axis);
Tensor *op_slice(Ctx *ctx, Tensor *a, int axis, int start, int len);
/* a (R, ...) -> rows idx[0..n) of a: (n, ...). Gradient scatters back (adds). */
Tensor *op_gather_rows(Ctx *ctx, Tensor *a, const int *idx, int n);
/* table (V,D), ids (n ints) -> (n,D); shape of the output can then be reshaped. */
Tensor *op_embedding(Ctx *ctx, Tensor *table, const int *ids, int n);
/* Stop-gradient: a view of a's data that does not require grad (no copy). */
Tensor *op_detach(Ctx *ctx, Tensor *a);

/* ---- geometry and attention ---------------------------------------------------------------- */
Tensor *op_l2_normalize(Ctx *ctx, Tensor *a, float eps);    /* rows of the last axis to unit norm */
/* scores (B,T,T) or (B,H,T,T): entries with key > query set to -inf (before softmax). */
Tensor *op_causal_mask(Ctx *ctx, Tensor *scores);
/* Fused scaled dot-product attention. q, k, v (B,H,T,Dh) -> (B,H,T,Dh); softmax(q k^T / sqrt(Dh)
 * [+ causal mask]) v. Saves the attention probabilities for backward. */
Tensor *op_attention(Ctx *ctx, Tensor *q, Tensor *k, Tensor *v, int causal);
/* The same on a fused projection: qkv (B*T, 3*H*Dh), each row q | k | v with heads side by side
 * -> (B*T, H*Dh), heads side by side (what slicing q, k and v into heads, op_attention and a
 * permute back give, without the copies). Recorded as OP_ATTENTION. */
Tensor *op_attention_qkv(Ctx *ctx, Tensor *qkv, int B, int H, int causal);

/* ---- data parallelism (dist.h) ------------------------------------------------------------- */
/* The rows one process would hold for the global batch, on every rank. x (groups*b, ...) is this
 * rank's b samples in `groups` blocks (SimCLR's two views: block g = view g); the result is
 * (groups*size*b, ...) with block g holding every rank's block g in rank order - the same layout
 * as one process with the global batch, since rank r holds global samples [r*b, (r+1)*b). A
 * context that is not distributed (ctx_set_distributed) or one rank: a copy of x.
 * Backward: each rank computes the same loss from the same gathered rows, so the gradient of the
 * gathered tensor is the same on every rank, and a rank's rows take their own slice of it (the
 * parameter gradients are then summed over the ranks, dist_allreduce_grads). */
Tensor *op_dist_gather_rows(Ctx *ctx, Tensor *x, int groups);

/* ---- losses (all return a scalar tensor of shape (1)) ------------------------------------------ */
Tensor *op_mse(Ctx *ctx, Tensor *pred, Tensor *target);         /* mean over all elements */
/* mean over rows where mask[row] != 0 of the mean squared error of that row; pred/target (R, D). */
Tensor *op_masked_mse(Ctx *ctx, Tensor *pred, Tensor *target, const float *mask);
Tensor *op_bce_logits(Ctx *ctx, Tensor *logits, Tensor *target); /* mean over all elements */
/* logits (N,C), labels (N) in [0,C) or -1 to ignore; mean over non-ignored rows. */
Tensor *op_cross_entropy(Ctx *ctx, Tensor *logits, const int *labels, float label_smoothing);
/* SimCLR NT-Xent: z (2N,D) rows i and i+N are positives; cosine similarity / temperature,
 * self-similarity excluded; mean over 2N anchors. z need not be normalised (normalised inside). */
Tensor *op_nt_xent(Ctx *ctx, Tensor *z, float temperature);
/* InfoNCE: q (N,D), k (N,D) positives row-wise, extra negatives `neg` (M,D) or NULL; all
 * assumed L2-normalised; logits = [q.k, q.neg] / temperature, target 0; mean over N.
 * If neg is NULL, the other rows of k are the negatives (CLIP-style, logits (N,N), target i).
 * temperature_t: if non-NULL a scalar tensor holding 1/temperature (learnable, CLIP), and
 * `temperature` is ignored. */
Tensor *op_infonce(Ctx *ctx, Tensor *q, Tensor *k, Tensor *neg, float temperature,
                   Tensor *inv_temperature_t);
/* KL( N(mu, exp(logvar)) || N(0, I) ), summed over the latent dim, mean over the batch. */
Tensor *op_kl_gaussian(Ctx *ctx, Tensor *mu, Tensor *logvar);
/* Row-wise cosine similarity of a, b (N,D) -> (N). */
Tensor *op_cosine_sim(Ctx *ctx, Tensor *a, Tensor *b);

#endif
