/* ops_loss.c - the losses of ops.h: MSE (plain and row-masked), BCE with logits, cross-entropy
 * fused with log-softmax, SimCLR NT-Xent and InfoNCE (MoCo / CLIP) fused around one sgemm, the
 * Gaussian KL of a VAE, and row-wise cosine similarity.
 *
 * Every loss returns a scalar of shape (1) (cosine_sim returns one value per row), records a node
 * only when tape_wants_grad(), and its backward adds into tape_grad_in() buffers scaled by the
 * output's gradient. Saved context lives in the arena. Reductions run in double so the loss value
 * is accurate for large batches. It deliberately does not reduce with weights or "sum" modes:
 * methods compose those from the basic ops.
 */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "simd.h"
#include "tape.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static _Noreturn void loss_die(const char *op, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ssld engine: %s: ", op);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void need_same_shape(const char *op, const Tensor *a, const Tensor *b, const char *an,
                            const char *bn)
{
	char sa[64], sb[64];
	if (!a || !b)
		loss_die(op, "%s or %s is NULL", an, bn);
	if (!tensor_same_shape(a, b))
		loss_die(op, "%s %s and %s %s must have the same shape", an,
		         tensor_shape_str(a, sa, sizeof sa), bn, tensor_shape_str(b, sb, sizeof sb));
}

static Tensor *scalar(Ctx *ctx, double v)
{
	Tensor *t = ctx_tensor(ctx, 1, (int[]){ 1 });
	t->data[0] = (float)v;
	return t;
}

/* Copy of caller memory into the arena, so backward sees the values of forward time. */
static void *arena_dup(Ctx *ctx, const void *src, size_t bytes)
{
	void *p = ctx_alloc(ctx, bytes);
	memcpy(p, src, bytes);
	return p;
}

static float sigmoidf(float x)
{
	if (x >= 0.0f)
		return 1.0f / (1.0f + expf(-x));
	float e = expf(x);
	return e / (1.0f + e);
}

/* In-place softmax of row x (n) returning the log-sum-exp; `skip` (or -1) is excluded and set 0. */
static double row_softmax(float *x, int n, int skip)
{
	float mx = -HUGE_VALF;
	for (int c = 0; c < n; c++)
		if (c != skip && x[c] > mx)
			mx = x[c];
	double sum = 0.0;
	for (int c = 0; c < n; c++)
		if (c != skip)
			sum += exp((double)(x[c] - mx));
	double lse = (double)mx + log(sum);
	for (int c = 0; c < n; c++)
		x[c] = c == skip ? 0.0f : (float)exp((double)x[c] - lse);
	return lse;
}

/* row_softmax for the NT-Xent rows: the exponentials in float at the CPU's vector width
 * (simd.h), summed in double; P = e / sum in float. The diagonal `skip` is set to -inf first,
 * so its exponential is exactly 0. */
static double row_softmax_fast(const SimdKernels *k, float *x, int n, int skip)
{
	x[skip] = -HUGE_VALF;
	float mx = -HUGE_VALF;
	for (int c = 0; c < n; c++)
		mx = x[c] > mx ? x[c] : mx;
	const double sum = k->exp_shifted(x, (size_t)n, mx);
	const float inv = (float)(1.0 / sum);
	for (int c = 0; c < n; c++)
		x[c] *= inv;
	return (double)mx + log(sum);
}

/* ---- mse ------------------------------------------------------------------------------------ */

static void mse_backward(Ctx *ctx, Node *n)
{
	Tensor *p = n->in[0], *t = n->in[1];
	float s = n->out->grad[0] * 2.0f / (float)p->size;
	float *gp = tape_grad_in(ctx, p), *gt = tape_grad_in(ctx, t);
	const float *pd = p->data, *td = t->data;
	if (gp)
		for (size_t i = 0; i < p->size; i++)
			gp[i] += s * (pd[i] - td[i]);
	if (gt)
		for (size_t i = 0; i < p->size; i++)
			gt[i] -= s * (pd[i] - td[i]);
}

// pred, target: same shape -> (1)
Tensor *op_mse(Ctx *ctx, Tensor *pred, Tensor *target)
{
	need_same_shape("op_mse", pred, target, "pred", "target");
	double acc = 0.0;
	for (size_t i = 0; i < pred->size; i++) {
		double d = (double)pred->data[i] - (double)target->data[i];
		acc += d * d;
	}
	Tensor *out = scalar(ctx, acc / (double)pred->size);
	Tensor *in[2] = { pred, target };
	if (tape_wants_grad(ctx, in, 2))
		tape_record(ctx, OP_MSE, mse_backward, out, in, 2);
	return out;
}

/* ---- masked mse ----------------------------------------------------------------------------- */

static void masked_mse_backward(Ctx *ctx, Node *n)
{
	Tensor *p = n->in[0], *t = n->in[1];
	const float *mask = n->saved;
	int D = n->i[0], R = n->i[1], count = n->i[2];
	if (count == 0)
		return;
	float s = n->out->grad[0] * 2.0f / ((float)D * (float)count);
	float *gp = tape_grad_in(ctx, p), *gt = tape_grad_in(ctx, t);
	for (int r = 0; r < R; r++) {
		if (mask[r] == 0.0f)
			continue;
		const float *pr = p->data + (size_t)r * D, *tr = t->data + (size_t)r * D;
		if (gp) {
			float *g = gp + (size_t)r * D;
			for (int d = 0; d < D; d++)
				g[d] += s * (pr[d] - tr[d]);
		}
		if (gt) {
			float *g = gt + (size_t)r * D;
			for (int d = 0; d < D; d++)
				g[d] -= s * (pr[d] - tr[d]);
		}
	}
}

// pred, target (R,D) (or (...,D): rows are everything but the last axis); mask (R) -> (1)
Tensor *op_masked_mse(Ctx *ctx, Tensor *pred, Tensor *target, const float *mask)
{
	need_same_shape("op_masked_mse", pred, target, "pred", "target");
	if (!mask)
		loss_die("op_masked_mse", "mask is NULL");
	int D = tensor_dim(pred, -1);
	int R = (int)(pred->size / (size_t)D);
	double acc = 0.0;
	int count = 0;
	for (int r = 0; r < R; r++) {
		if (mask[r] == 0.0f)
			continue;
		count++;
		const float *pr = pred->data + (size_t)r * D, *tr = target->data + (size_t)r * D;
		double rs = 0.0;
		for (int d = 0; d < D; d++) {
			double e = (double)pr[d] - (double)tr[d];
			rs += e * e;
		}
		acc += rs / D;
	}
	/* No selected row: the loss is 0 with zero gradient (not NaN), so a step can proceed. */
	Tensor *out = scalar(ctx, count ? acc / count : 0.0);
	Tensor *in[2] = { pred, target };
	if (tape_wants_grad(ctx, in, 2)) {
		Node *n = tape_record(ctx, OP_MASKED_MSE, masked_mse_backward, out, in, 2);
		n->saved = arena_dup(ctx, mask, (size_t)R * sizeof(float));
		n->i[0] = D;
		n->i[1] = R;
		n->i[2] = count;
	}
	return out;
}

/* ---- binary cross-entropy with logits ------------------------------------------------------- */

static void bce_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0], *y = n->in[1];
	float s = n->out->grad[0] / (float)x->size;
	float *gx = tape_grad_in(ctx, x), *gy = tape_grad_in(ctx, y);
	if (gx)
		for (size_t i = 0; i < x->size; i++)
			gx[i] += s * (sigmoidf(x->data[i]) - y->data[i]);
	if (gy)
		for (size_t i = 0; i < x->size; i++)
			gy[i] -= s * x->data[i];
}

// logits, target: same shape, target in [0,1] -> (1)
Tensor *op_bce_logits(Ctx *ctx, Tensor *logits, Tensor *target)
{
	need_same_shape("op_bce_logits", logits, target, "logits", "target");
	double acc = 0.0;
	for (size_t i = 0; i < logits->size; i++) {
		float x = logits->data[i], y = target->data[i];
		/* max(x,0) - x*y + log(1 + exp(-|x|)): never overflows */
		acc += (double)(x > 0.0f ? x : 0.0f) - (double)x * y + log1p(exp(-fabs((double)x)));
	}
	Tensor *out = scalar(ctx, acc / (double)logits->size);
	Tensor *in[2] = { logits, target };
	if (tape_wants_grad(ctx, in, 2))
		tape_record(ctx, OP_BCE_LOGITS, bce_backward, out, in, 2);
	return out;
}

/* ---- cross-entropy -------------------------------------------------------------------------- */

typedef struct CeSaved {
	int *labels;   /* (N) copy */
	float *lse;    /* (N) log-sum-exp of each row */
} CeSaved;

static void ce_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0];
	float *gx = tape_grad_in(ctx, x);
	const CeSaved *sv = n->saved;
	int N = n->i[0], C = n->i[1], count = n->i[2];
	float eps = n->f[0];
	if (!gx || count == 0)
		return;
	float s = n->out->grad[0] / (float)count;
	float off = eps / (float)C;
	const SimdKernels *sk = simd();
	for (int r = 0; r < N; r++) {
		int y = sv->labels[r];
		if (y < 0)
			continue;
		const float *xr = x->data + (size_t)r * C;
		float *g = gx + (size_t)r * C;
		sk->softmax_grad_row(xr, sv->lse[r], s, off, g, C);
		g[y] -= s * (1.0f - eps);
	}
}

/* PyTorch's convention: the target distribution is (1-eps) one-hot + eps/C, so the row loss is
 * lse - (1-eps) x_y - eps mean_c x_c and its gradient softmax - target. */
// logits (N,C) (or (...,C)), labels (N) in [0,C) or -1 -> (1)
Tensor *op_cross_entropy(Ctx *ctx, Tensor *logits, const int *labels, float label_smoothing)
{
	char sb[64];
	if (!logits || !labels)
		loss_die("op_cross_entropy", "logits or labels is NULL");
	if (logits->ndim < 2)
		loss_die("op_cross_entropy", "logits %s must be (N,C)",
		         tensor_shape_str(logits, sb, sizeof sb));
	if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f))
		loss_die("op_cross_entropy", "label_smoothing %g outside [0,1)", (double)label_smoothing);
	int C = tensor_dim(logits, -1);
	int N = (int)(logits->size / (size_t)C);
	for (int r = 0; r < N; r++)
		if (labels[r] < -1 || labels[r] >= C)
			loss_die("op_cross_entropy", "label %d of row %d outside [0,%d) for logits %s",
			         labels[r], r, C, tensor_shape_str(logits, sb, sizeof sb));
	float *lse = ctx_alloc(ctx, (size_t)N * sizeof(float));
	const SimdKernels *sk = simd();
	double acc = 0.0;
	int count = 0;
	for (int r = 0; r < N; r++) {
		const float *xr = logits->data + (size_t)r * C;
		const double l = sk->logsumexp_row(xr, C);
		lse[r] = (float)l;
		int y = labels[r];
		if (y < 0)
			continue;
		count++;
		double xsum = 0.0;
		for (int c = 0; label_smoothing > 0.0f && c < C; c++)
			xsum += xr[c];
		acc += l - (1.0 - label_smoothing) * xr[y] - label_smoothing * xsum / C;
	}
	/* Every row ignored: 0 with zero gradient (PyTorch would give NaN). */
	Tensor *out = scalar(ctx, count ? acc / count : 0.0);
	Tensor *in[1] = { logits };
	if (tape_wants_grad(ctx, in, 1)) {
		Node *n = tape_record(ctx, OP_CROSS_ENTROPY, ce_backward, out, in, 1);
		CeSaved *sv = ctx_alloc(ctx, sizeof *sv);
		sv->labels = arena_dup(ctx, labels, (size_t)N * sizeof(int));
		sv->lse = lse;
		n->saved = sv;
		n->i[0] = N;
		n->i[1] = C;
		n->i[2] = count;
		n->f[0] = label_smoothing;
	}
	return out;
}

/* ---- NT-Xent (SimCLR) ----------------------------------------------------------------------- */

#define NORM_EPS 1e-8f

typedef struct NtSaved {
	float *zn;    /* (M,D) normalised rows */
	float *inv;   /* (M) 1 / max(|z_i|, eps) */
	float *P;     /* (M,M) softmax over k != i of each anchor row, P_ii = 0 */
} NtSaved;

/* Rows of x (R,D) to unit norm into out; inv[r] = 1/max(|x_r|, eps). */
static void normalize_rows(const float *x, float *out, float *inv, int R, int D)
{
	for (int r = 0; r < R; r++) {
		const float *xr = x + (size_t)r * D;
		double ss = 0.0;
		for (int d = 0; d < D; d++)
			ss += (double)xr[d] * xr[d];
		float nrm = (float)sqrt(ss);
		float iv = 1.0f / (nrm > NORM_EPS ? nrm : NORM_EPS);
		inv[r] = iv;
		float *o = out + (size_t)r * D;
		for (int d = 0; d < D; d++)
			o[d] = xr[d] * iv;
	}
}

/* dz += d(normalise)/dz applied to dn: (dn - n (n.dn)) / |z| for rows whose norm exceeded eps,
 * dn / eps (the clamp is constant) otherwise. */
static void normalize_rows_backward(const float *x, const float *zn, const float *inv,
                                    const float *dn, float *dz, int R, int D)
{
	for (int r = 0; r < R; r++) {
		const float *nr = zn + (size_t)r * D, *gr = dn + (size_t)r * D, *xr = x + (size_t)r * D;
		float *o = dz + (size_t)r * D;
		float iv = inv[r];
		double ss = 0.0;
		for (int d = 0; d < D; d++)
			ss += (double)xr[d] * xr[d];
		if (!((float)sqrt(ss) > NORM_EPS)) {
			for (int d = 0; d < D; d++)
				o[d] += gr[d] * iv;
			continue;
		}
		double dot = 0.0;
		for (int d = 0; d < D; d++)
			dot += (double)nr[d] * gr[d];
		float fd = (float)dot;
		for (int d = 0; d < D; d++)
			o[d] += (gr[d] - nr[d] * fd) * iv;
	}
}

static void nt_xent_backward(Ctx *ctx, Node *n)
{
	Tensor *z = n->in[0];
	float *gz = tape_grad_in(ctx, z);
	if (!gz)
		return;
	const NtSaved *sv = n->saved;
	int M = n->i[0], D = n->i[1], N = M / 2;
	float tau = n->f[0];
	/* dL/dS_ik = (P_ik - [k = pos(i)]) / M; S = zn zn^T / tau, so dzn = (G + G^T) zn / tau. */
	float *A = ctx_alloc(ctx, (size_t)M * M * sizeof(float));
	enum { T = 32 };   /* tiles: P's transpose read a cache line at a time, not a float */
	for (int i0 = 0; i0 < M; i0 += T)
		for (int k0 = 0; k0 < M; k0 += T) {
			const int i1 = i0 + T < M ? i0 + T : M, k1 = k0 + T < M ? k0 + T : M;
			for (int i = i0; i < i1; i++)
				for (int k = k0; k < k1; k++)
					A[(size_t)i * M + k] = sv->P[(size_t)i * M + k] + sv->P[(size_t)k * M + i];
		}
	for (int i = 0; i < M; i++) {
		int pos = i < N ? i + N : i - N;
		A[(size_t)i * M + pos] -= 2.0f; /* Y is symmetric: Y + Y^T = 2Y */
	}
	float *dn = ctx_alloc(ctx, (size_t)M * D * sizeof(float));
	float s = n->out->grad[0] / ((float)M * tau);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, D, M, s, A, M, sv->zn, D, 0.0f, dn,
	            D);
	normalize_rows_backward(z->data, sv->zn, sv->inv, dn, gz, M, D);
}

// z (2N,D) -> (1)
Tensor *op_nt_xent(Ctx *ctx, Tensor *z, float temperature)
{
	char sb[64];
	if (!z)
		loss_die("op_nt_xent", "z is NULL");
	if (z->ndim != 2 || z->shape[0] < 2 || z->shape[0] % 2 != 0)
		loss_die("op_nt_xent", "z %s must be (2N,D) with N >= 1",
		         tensor_shape_str(z, sb, sizeof sb));
	if (!(temperature > 0.0f))
		loss_die("op_nt_xent", "temperature %g must be > 0", (double)temperature);
	int M = z->shape[0], D = z->shape[1], N = M / 2;
	NtSaved *sv = ctx_alloc(ctx, sizeof *sv);
	sv->zn = ctx_alloc(ctx, (size_t)M * D * sizeof(float));
	sv->inv = ctx_alloc(ctx, (size_t)M * sizeof(float));
	sv->P = ctx_alloc(ctx, (size_t)M * M * sizeof(float));
	normalize_rows(z->data, sv->zn, sv->inv, M, D);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, M, D, 1.0f / temperature, sv->zn, D,
	            sv->zn, D, 0.0f, sv->P, M);
	double acc = 0.0;
	const SimdKernels *k = simd();
	for (int i = 0; i < M; i++) {
		float *row = sv->P + (size_t)i * M;
		int pos = i < N ? i + N : i - N;
		float sp = row[pos];
		double lse = row_softmax_fast(k, row, M, i);
		acc += lse - sp;
	}
	Tensor *out = scalar(ctx, acc / M);
	Tensor *in[1] = { z };
	if (tape_wants_grad(ctx, in, 1)) {
		Node *n = tape_record(ctx, OP_NT_XENT, nt_xent_backward, out, in, 1);
		n->saved = sv;
		n->i[0] = M;
		n->i[1] = D;
		n->f[0] = temperature;
	}
	return out;
}

/* ---- InfoNCE (MoCo / CLIP) ------------------------------------------------------------------ */

typedef struct NceSaved {
	float *R;     /* (N,C) raw dot products (logits / scale) */
	float *P;     /* (N,C) softmax of the logits */
} NceSaved;

static void infonce_backward(Ctx *ctx, Node *n)
{
	Tensor *q = n->in[0], *k = n->in[1], *neg = n->in[2], *st = n->in[3];
	const NceSaved *sv = n->saved;
	int N = n->i[0], D = n->i[1], C = n->i[2], M = n->i[3];
	float scale = n->f[0];
	float *gq = tape_grad_in(ctx, q), *gk = tape_grad_in(ctx, k);
	float *gneg = neg ? tape_grad_in(ctx, neg) : NULL, *gs = st ? tape_grad_in(ctx, st) : NULL;
	/* G = (P - Y) * g / N, Y the one-hot of each row's target (column 0, or i for CLIP). */
	float *G = ctx_alloc(ctx, (size_t)N * C * sizeof(float));
	float gn = n->out->grad[0] / (float)N;
	for (size_t e = 0; e < (size_t)N * C; e++)
		G[e] = sv->P[e] * gn;
	for (int i = 0; i < N; i++)
		G[(size_t)i * C + (neg ? 0 : i)] -= gn;
	if (gs) {
		double acc = 0.0;
		for (size_t e = 0; e < (size_t)N * C; e++)
			acc += (double)G[e] * sv->R[e];
		gs[0] += (float)acc;
	}
	if (!neg) {
		/* logits = scale * q k^T */
		if (gq)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, N, scale, G, C, k->data,
			            D, 1.0f, gq, D);
		if (gk)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, D, N, scale, G, C, q->data, D,
			            1.0f, gk, D);
		return;
	}
	/* column 0: scale * q_i.k_i; columns 1..M: scale * q neg^T */
	for (int i = 0; i < N; i++) {
		float g0 = scale * G[(size_t)i * C];
		const float *qi = q->data + (size_t)i * D, *ki = k->data + (size_t)i * D;
		if (gq)
			for (int d = 0; d < D; d++)
				gq[(size_t)i * D + d] += g0 * ki[d];
		if (gk)
			for (int d = 0; d < D; d++)
				gk[(size_t)i * D + d] += g0 * qi[d];
	}
	if (gq)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, M, scale, G + 1, C,
		            neg->data, D, 1.0f, gq, D);
	if (gneg)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, D, N, scale, G + 1, C, q->data, D,
		            1.0f, gneg, D);
}

// q (N,D), k (N,D), neg (M,D) or NULL, inv_temperature_t (1) or NULL -> (1)
Tensor *op_infonce(Ctx *ctx, Tensor *q, Tensor *k, Tensor *neg, float temperature,
                   Tensor *inv_temperature_t)
{
	char sa[64], sb[64];
	need_same_shape("op_infonce", q, k, "q", "k");
	if (q->ndim != 2)
		loss_die("op_infonce", "q %s must be (N,D)", tensor_shape_str(q, sa, sizeof sa));
	int N = q->shape[0], D = q->shape[1];
	if (neg && (neg->ndim != 2 || neg->shape[1] != D))
		loss_die("op_infonce", "neg %s must be (M,%d) to match q %s",
		         tensor_shape_str(neg, sb, sizeof sb), D, tensor_shape_str(q, sa, sizeof sa));
	float scale;
	if (inv_temperature_t) {
		if (inv_temperature_t->size != 1)
			loss_die("op_infonce", "inv_temperature_t %s must hold one value",
			         tensor_shape_str(inv_temperature_t, sb, sizeof sb));
		scale = inv_temperature_t->data[0];
	} else {
		if (!(temperature > 0.0f))
			loss_die("op_infonce", "temperature %g must be > 0", (double)temperature);
		scale = 1.0f / temperature;
	}
	int M = neg ? neg->shape[0] : 0;
	int C = neg ? M + 1 : N;
	NceSaved *sv = ctx_alloc(ctx, sizeof *sv);
	sv->R = ctx_alloc(ctx, (size_t)N * C * sizeof(float));
	sv->P = ctx_alloc(ctx, (size_t)N * C * sizeof(float));
	if (neg) {
		for (int i = 0; i < N; i++) {
			const float *qi = q->data + (size_t)i * D, *ki = k->data + (size_t)i * D;
			double dot = 0.0;
			for (int d = 0; d < D; d++)
				dot += (double)qi[d] * ki[d];
			sv->R[(size_t)i * C] = (float)dot;
		}
		if (M > 0)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, M, D, 1.0f, q->data, D,
			            neg->data, D, 0.0f, sv->R + 1, C);
	} else {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, D, 1.0f, q->data, D, k->data, D,
		            0.0f, sv->R, C);
	}
	double acc = 0.0;
	for (int i = 0; i < N; i++) {
		const float *r = sv->R + (size_t)i * C;
		float *p = sv->P + (size_t)i * C;
		for (int c = 0; c < C; c++)
			p[c] = scale * r[c];
		int y = neg ? 0 : i;
		float ly = p[y];
		acc += row_softmax(p, C, -1) - ly;
	}
	Tensor *out = scalar(ctx, acc / N);
	Tensor *in[4] = { q, k, neg, inv_temperature_t };
	if (tape_wants_grad(ctx, in, 4)) {
		Node *n = tape_record(ctx, OP_INFONCE, infonce_backward, out, in, 4);
		n->saved = sv;
		n->i[0] = N;
		n->i[1] = D;
		n->i[2] = C;
		n->i[3] = M;
		n->f[0] = scale;
	}
	return out;
}

/* ---- KL( N(mu, exp(logvar)) || N(0, I) ) ---------------------------------------------------- */

static void kl_backward(Ctx *ctx, Node *n)
{
	Tensor *mu = n->in[0], *lv = n->in[1];
	float s = n->out->grad[0] / (float)n->i[0];
	float *gm = tape_grad_in(ctx, mu), *gl = tape_grad_in(ctx, lv);
	if (gm)
		for (size_t i = 0; i < mu->size; i++)
			gm[i] += s * mu->data[i];
	if (gl)
		for (size_t i = 0; i < lv->size; i++)
			gl[i] += s * 0.5f * (expf(lv->data[i]) - 1.0f);
}

// mu, logvar (B,Z) -> (1): summed over Z, mean over B
Tensor *op_kl_gaussian(Ctx *ctx, Tensor *mu, Tensor *logvar)
{
	need_same_shape("op_kl_gaussian", mu, logvar, "mu", "logvar");
	int B = mu->ndim >= 2 ? mu->shape[0] : 1;
	double acc = 0.0;
	for (size_t i = 0; i < mu->size; i++) {
		double m = mu->data[i], l = logvar->data[i];
		acc += -0.5 * (1.0 + l - m * m - exp(l));
	}
	Tensor *out = scalar(ctx, acc / B);
	Tensor *in[2] = { mu, logvar };
	if (tape_wants_grad(ctx, in, 2)) {
		Node *n = tape_record(ctx, OP_KL_GAUSSIAN, kl_backward, out, in, 2);
		n->i[0] = B;
	}
	return out;
}

/* ---- cosine similarity ---------------------------------------------------------------------- */

typedef struct CosSaved {
	float *ia, *ib;       /* (R) 1 / max(|a_r|, eps), same for b */
	unsigned char *live;  /* (R) bit 0: |a_r| > eps, bit 1: |b_r| > eps */
} CosSaved;

static void cos_backward(Ctx *ctx, Node *n)
{
	Tensor *a = n->in[0], *b = n->in[1];
	const CosSaved *sv = n->saved;
	int R = n->i[0], D = n->i[1];
	float *ga = tape_grad_in(ctx, a), *gb = tape_grad_in(ctx, b);
	const float *go = n->out->grad, *c = n->out->data;
	for (int r = 0; r < R; r++) {
		const float *ar = a->data + (size_t)r * D, *br = b->data + (size_t)r * D;
		float ia = sv->ia[r], ib = sv->ib[r];
		/* d c / d a = b ia ib - c a ia^2 (the second term vanishes where the norm is clamped) */
		float ka = go[r] * ia * ib, kb = ka;
		float ca = (sv->live[r] & 1) ? go[r] * c[r] * ia * ia : 0.0f;
		float cb = (sv->live[r] & 2) ? go[r] * c[r] * ib * ib : 0.0f;
		if (ga) {
			float *g = ga + (size_t)r * D;
			for (int d = 0; d < D; d++)
				g[d] += ka * br[d] - ca * ar[d];
		}
		if (gb) {
			float *g = gb + (size_t)r * D;
			for (int d = 0; d < D; d++)
				g[d] += kb * ar[d] - cb * br[d];
		}
	}
}

// a, b (N,D) (or (...,D)) -> (N) (or (...)); a 1-D input gives (1)
Tensor *op_cosine_sim(Ctx *ctx, Tensor *a, Tensor *b)
{
	need_same_shape("op_cosine_sim", a, b, "a", "b");
	int D = tensor_dim(a, -1);
	int R = (int)(a->size / (size_t)D);
	Tensor *out = a->ndim >= 2 ? ctx_tensor(ctx, a->ndim - 1, a->shape)
	                           : ctx_tensor(ctx, 1, (int[]){ 1 });
	CosSaved *sv = ctx_alloc(ctx, sizeof *sv);
	sv->ia = ctx_alloc(ctx, (size_t)R * sizeof(float));
	sv->ib = ctx_alloc(ctx, (size_t)R * sizeof(float));
	sv->live = ctx_alloc(ctx, (size_t)R);
	for (int r = 0; r < R; r++) {
		const float *ar = a->data + (size_t)r * D, *br = b->data + (size_t)r * D;
		double aa = 0.0, bb = 0.0, ab = 0.0;
		for (int d = 0; d < D; d++) {
			aa += (double)ar[d] * ar[d];
			bb += (double)br[d] * br[d];
			ab += (double)ar[d] * br[d];
		}
		double na = sqrt(aa), nb = sqrt(bb);
		sv->live[r] = (unsigned char)((na > NORM_EPS ? 1 : 0) | (nb > NORM_EPS ? 2 : 0));
		na = na > NORM_EPS ? na : NORM_EPS;
		nb = nb > NORM_EPS ? nb : NORM_EPS;
		sv->ia[r] = (float)(1.0 / na);
		sv->ib[r] = (float)(1.0 / nb);
		out->data[r] = (float)(ab / (na * nb));
	}
	Tensor *in[2] = { a, b };
	if (tape_wants_grad(ctx, in, 2)) {
		Node *n = tape_record(ctx, OP_COSINE_SIM, cos_backward, out, in, 2);
		n->saved = sv;
		n->i[0] = R;
		n->i[1] = D;
	}
	return out;
}
