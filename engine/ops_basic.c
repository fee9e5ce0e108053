/* ops_basic.c - part 1 of the differentiable ops declared in ops.h: matmul/bmm through
 * cblas_sgemm, NumPy-broadcasting element-wise arithmetic, scalar and pointwise math, activations,
 * reductions, softmax/log-softmax, and the shape ops (reshape, permute, concat, slice, gathers).
 * Each op is a forward function that writes a fresh arena tensor and, when gradients are wanted,
 * records a node whose static backward ADDS (+=) into its inputs' gradients.
 *
 * Deliberately not here: normalisation, dropout, convolution, pooling and attention (ops_nn.c),
 * losses (ops_loss.c). No threading of its own (sgemm's BLAS threads are the only parallelism),
 * no heap allocation (outputs and saved context come from ctx_alloc), and no recovery from shape
 * errors: they are programming errors and abort with a message naming the op and the shapes.
 */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "simd.h"
#include "tape.h"

/* glibc declares its vector math (libmvec: expf, logf, tanhf, powf on 4/8 lanes, <= 4 ulp, inf and
 * nan handled) only under full -ffast-math, but the engine keeps -fno-finite-math-only so inf/nan
 * stay meaningful. Declaring the SIMD variants here lets the pointwise and softmax loops vectorize
 * (10x on exp/tanh); -lm pulls in libmvec as needed. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__FAST_MATH__)
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float logf(float);
__attribute__((simd("notinbranch"))) float tanhf(float);
__attribute__((simd("notinbranch"))) float powf(float, float);
#endif

/* ---------------------------------------------------------------------------------------------- */
/* helpers */

__attribute__((format(printf, 1, 2)))
static _Noreturn void ops_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define SHAPE(t, buf) tensor_shape_str((t), (buf), sizeof(buf))

/* Record a node when gradients are wanted; NULL otherwise. */
static Node *record(Ctx *ctx, OpKind kind, node_backward_cb bw, Tensor *out, Tensor *const *in,
                    int nin)
{
	if (!tape_wants_grad(ctx, in, nin))
		return NULL;
	return tape_record(ctx, kind, bw, out, in, nin);
}

static int norm_axis(const char *op, const Tensor *a, int axis)
{
	int ax = axis < 0 ? axis + a->ndim : axis;
	if (ax < 0 || ax >= a->ndim) {
		char s[64];
		ops_fatal("%s: axis %d out of range for shape %s", op, axis, SHAPE(a, s));
	}
	return ax;
}

/* Largest element of x[0..n), n >= 1. Eight independent chains: with NaN semantics kept the
 * compiler will not vectorize a max reduction, and one fmaxf chain runs 8x slower. */
static float row_max(const float *x, size_t n)
{
	float m[8];
	for (int k = 0; k < 8; k++)
		m[k] = x[0];
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
	for (; i < n; i++)
		m[0] = x[i] > m[0] ? x[i] : m[0];
	float r = m[0];
	for (int k = 1; k < 8; k++)
		r = m[k] > r ? m[k] : r;
	return r;
}

/* Sum of x[0..n) and dot product of x, y: sixteen partial sums so the vectorized loop is not
 * bound by the latency of one accumulator (3-4x on long rows). */
static float row_sum(const float *restrict x, size_t n)
{
	float acc[16] = { 0 };
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		for (int k = 0; k < 16; k++)
			acc[k] += x[i + k];
	float s = 0.0f;
	for (; i < n; i++)
		s += x[i];
	for (int k = 0; k < 16; k++)
		s += acc[k];
	return s;
}

static float row_dot(const float *restrict x, const float *restrict y, size_t n)
{
	float acc[16] = { 0 };
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		for (int k = 0; k < 16; k++)
			acc[k] += x[i + k] * y[i + k];
	float s = 0.0f;
	for (; i < n; i++)
		s += x[i] * y[i];
	for (int k = 0; k < 16; k++)
		s += acc[k];
	return s;
}

/* Product of dims [from, to). */
static size_t dims_prod(const Tensor *a, int from, int to)
{
	size_t p = 1;
	for (int d = from; d < to; d++)
		p *= (size_t)a->shape[d];
	return p;
}

/* ---------------------------------------------------------------------------------------------- */
/* matmul and bmm: batch products of op(A) (M,K) and op(B) (K,N), b's batch stride 0 = shared */

#define MM_T(t) ((t) ? CblasTrans : CblasNoTrans)

/* One product of a batch, on one thread when the batch itself is split across threads. With a
 * batch of one, parallel_sgemm splits the product instead. */
static void gemm(Ctx *ctx, int split, int ta, int tb, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
	if (split)
		parallel_sgemm(ctx, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
	else
		cblas_sgemm(CblasRowMajor, MM_T(ta), MM_T(tb), M, N, K, 1.0f, A, lda, B, ldb, beta, C,
		            ldc);
}

typedef struct MmJob {
	Ctx *ctx;
	const float *a, *b, *dc;
	float *c, *da, *db;
	float beta_da, beta_db;  /* 0 stores into a gradient buffer nothing has written yet */
	int batch, M, N, K, ta, tb, split;
	size_t sb;
} MmJob;

// a (batch,M,K) or (batch,K,M) if ta; b (batch or 1,K,N) or (..,N,K) if tb; c (batch,M,N)
static void mm_forward_part(void *arg, size_t begin, size_t end, int tid)
{
	const MmJob *j = arg;
	int M = j->M, N = j->N, K = j->K, lda = j->ta ? M : K, ldb = j->tb ? K : N;
	(void)tid;
	for (size_t i = begin; i < end; i++)
		gemm(j->ctx, j->split, j->ta, j->tb, M, N, K, j->a + i * M * K, lda, j->b + i * j->sb, ldb,
		     0.0f, j->c + i * M * N, N);
}

/* Batches of many small products go one product per thread; a single product is split. */
static void mm_run(Ctx *ctx, MmJob *j, parallel_fn fn)
{
	j->ctx = ctx;
	j->split = j->batch == 1;
	if (j->split)
		fn(j, 0, 1, 0);
	else
		parallel_for(ctx, (size_t)j->batch, 1, fn, j);
}

static void mm_backward_part(void *arg, size_t begin, size_t end, int tid)
{
	const MmJob *j = arg;
	int M = j->M, N = j->N, K = j->K, ta = j->ta, tb = j->tb;
	int lda = ta ? M : K, ldb = tb ? K : N;
	(void)tid;
	/* a shared b (sb == 0) takes its gradient outside, summed over the batch in one product */
	const int dbi_here = j->db && j->sb != 0;
	for (size_t i = begin; i < end; i++) {
		const float *ai = j->a + i * M * K, *bi = j->b + i * j->sb;
		const float *dci = j->dc + i * M * N;
		if (j->da) {
			float *dai = j->da + i * M * K;
			if (!ta) /* dA (M,K) += dC (M,N) op(B)^T */
				gemm(j->ctx, j->split, 0, !tb, M, K, N, dci, N, bi, ldb, j->beta_da, dai, K);
			else /* A stored (K,M): dA += op(B) (K,N) dC^T */
				gemm(j->ctx, j->split, tb, 1, K, M, N, bi, ldb, dci, N, j->beta_da, dai, M);
		}
		if (dbi_here || (j->db && j->split)) {
			float *dbi = j->db + i * j->sb;
			if (!tb) /* dB (K,N) += op(A)^T (K,M) dC */
				gemm(j->ctx, j->split, !ta, 0, K, N, M, ai, lda, dci, N, j->beta_db, dbi, N);
			else /* B stored (N,K): dB += dC^T (N,M) op(A) */
				gemm(j->ctx, j->split, 1, ta, N, K, M, dci, N, ai, lda, j->beta_db, dbi, K);
		}
	}
}

static void matmul_backward(Ctx *ctx, Node *n)
{
	int batch = n->i[0], M = n->i[1], N = n->i[2], K = n->i[3], ta = n->i[4], tb = n->i[5];
	size_t sb = n->i[6] ? (size_t)K * N : 0;
	Tensor *a = n->in[0], *b = n->in[1];
	/* a gradient buffer nothing has written yet is stored by sgemm (beta = 0) instead of zeroed
	 * and added to; a shared b sums over the batch below, and a == b (x x^T) adds twice */
	int fresh_a = 0, fresh_b = 0;
	float *da = a != b ? tape_grad_in_fresh(ctx, a, &fresh_a) : tape_grad_in(ctx, a);
	float *db = a != b && (sb != 0 || batch == 1) ? tape_grad_in_fresh(ctx, b, &fresh_b)
	                                              : tape_grad_in(ctx, b);
	MmJob j = { .a = a->data, .b = b->data, .dc = n->out->grad, .da = da, .db = db,
	            .beta_da = fresh_a ? 0.0f : 1.0f, .beta_db = fresh_b ? 0.0f : 1.0f,
	            .batch = batch, .M = M, .N = N, .K = K, .ta = ta, .tb = tb, .sb = sb };
	mm_run(ctx, &j, mm_backward_part);
	if (j.db && sb == 0 && batch > 1) {
		/* b shared by every product (3-D a against 2-D b never reaches here: it is one product
		 * of (batch*M, K)); accumulate in batch order so the sum does not depend on threads */
		int lda = ta ? M : K;
		for (int i = 0; i < batch; i++) {
			const float *ai = a->data + (size_t)i * M * K, *dci = n->out->grad + (size_t)i * M * N;
			if (!tb)
				parallel_sgemm(ctx, !ta, 0, K, N, M, 1.0f, ai, lda, dci, N, 1.0f, j.db, N);
			else
				parallel_sgemm(ctx, 1, ta, N, K, M, 1.0f, dci, N, ai, lda, 1.0f, j.db, K);
		}
	}
}

static Tensor *mm_finish(Ctx *ctx, Tensor *a, Tensor *b, Tensor *out, int batch, int M, int N,
                         int K, int ta, int tb, int b_batched)
{
	MmJob j = { .a = a->data, .b = b->data, .c = out->data, .batch = batch, .M = M, .N = N,
	            .K = K, .ta = ta, .tb = tb, .sb = b_batched ? (size_t)K * N : 0 };
	mm_run(ctx, &j, mm_forward_part);
	Tensor *in[2] = { a, b };
	Node *n = record(ctx, OP_MATMUL, matmul_backward, out, in, 2);
	if (n) {
		n->i[0] = batch; n->i[1] = M; n->i[2] = N; n->i[3] = K;
		n->i[4] = ta; n->i[5] = tb; n->i[6] = b_batched;
	}
	return out;
}

Tensor *op_matmul(Ctx *ctx, Tensor *a, Tensor *b, int ta, int tb)
{
	char sa[64], sbuf[64];
	if (a->ndim < 2 || b->ndim != 2 || (ta && a->ndim != 2))
		ops_fatal("op_matmul: shapes %s%s and %s%s not supported (a 2-D, or N-D without "
		          "transpose; b 2-D)", SHAPE(a, sa), ta ? "^T" : "", SHAPE(b, sbuf), tb ? "^T" : "");
	int last = a->shape[a->ndim - 1];
	int M = ta ? a->shape[1] : (int)(a->size / (size_t)last);
	int K = ta ? a->shape[0] : last;
	int Kb = tb ? b->shape[1] : b->shape[0];
	int N = tb ? b->shape[0] : b->shape[1];
	if (K != Kb)
		ops_fatal("op_matmul: shapes %s%s and %s%s do not match (inner %d vs %d)", SHAPE(a, sa),
		          ta ? "^T" : "", SHAPE(b, sbuf), tb ? "^T" : "", K, Kb);
	int shape[TENSOR_MAX_DIMS];
	int nd = a->ndim;
	if (ta) {
		shape[0] = M;
	} else {
		for (int d = 0; d < nd - 1; d++)
			shape[d] = a->shape[d];
	}
	shape[nd - 1] = N;
	Tensor *out = ctx_tensor(ctx, nd, shape);
	return mm_finish(ctx, a, b, out, 1, M, N, K, ta, tb, 0);
}

Tensor *op_bmm(Ctx *ctx, Tensor *a, Tensor *b, int ta, int tb)
{
	char sa[64], sbuf[64];
	int nd = a->ndim;
	int ok = nd >= 3 && (b->ndim == nd || b->ndim == 2);
	for (int d = 0; ok && b->ndim == nd && d < nd - 2; d++)
		ok = a->shape[d] == b->shape[d];
	int M = a->shape[nd - (ta ? 1 : 2)], K = a->shape[nd - (ta ? 2 : 1)];
	int bn = b->ndim;
	int Kb = b->shape[bn - (tb ? 1 : 2)], N = b->shape[bn - (tb ? 2 : 1)];
	if (!ok || K != Kb)
		ops_fatal("op_bmm: shapes %s%s and %s%s do not match", SHAPE(a, sa), ta ? "^T" : "",
		          SHAPE(b, sbuf), tb ? "^T" : "");
	int shape[TENSOR_MAX_DIMS];
	for (int d = 0; d < nd - 2; d++)
		shape[d] = a->shape[d];
	shape[nd - 2] = M;
	shape[nd - 1] = N;
	Tensor *out = ctx_tensor(ctx, nd, shape);
	int batch = (int)dims_prod(a, 0, nd - 2);
	return mm_finish(ctx, a, b, out, batch, M, N, K, ta, tb, b->ndim == nd);
}

/* ---------------------------------------------------------------------------------------------- */
/* linear: y = x w^T + b as one op. The bias rows are written into y first and the product is
 * added onto them (sgemm's beta = 1): OpenBLAS clears C itself for beta = 0, so the bias costs
 * what that clearing did and no pass of its own. The backward stores dx when nothing has written
 * its buffer yet (beta = 0), adds dw, and sums db over dy's rows in one pass, in row order. */

static void linear_backward(Ctx *ctx, Node *n)
{
	Tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
	int M = n->i[0], N = n->i[1], K = n->i[2];
	const float *dy = n->out->grad;
	int fresh = 0;
	float *dx = x != w ? tape_grad_in_fresh(ctx, x, &fresh) : tape_grad_in(ctx, x);
	if (dx) /* dx (M,K) = dy (M,N) w (N,K) */
		parallel_sgemm(ctx, 0, 0, M, K, N, 1.0f, dy, N, w->data, K, fresh ? 0.0f : 1.0f, dx, K);
	float *dw = x != w ? tape_grad_in_fresh(ctx, w, &fresh) : tape_grad_in(ctx, w);
	if (dw) /* dw (N,K) = dy^T (N,M) x (M,K) */
		parallel_sgemm(ctx, 1, 0, N, K, M, 1.0f, dy, N, x->data, K, fresh ? 0.0f : 1.0f, dw, K);
	float *restrict db = tape_grad_in_fresh(ctx, b, &fresh);
	if (!db)
		return;
	int r = 0;
	if (fresh) {
		memcpy(db, dy, (size_t)N * sizeof *db);
		r = 1;
	}
	for (; r < M; r++) {
		const float *restrict g = dy + (size_t)r * N;
		for (int c = 0; c < N; c++)
			db[c] += g[c];
	}
}

Tensor *op_linear(Ctx *ctx, Tensor *x, Tensor *w, Tensor *b)
{
	char sx[64], sw[64], sbias[64] = "none";
	int K = x->shape[x->ndim - 1];
	if (K < 1 || w->ndim != 2 || w->shape[1] != K ||
	    (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))) {
		if (b)
			SHAPE(b, sbias);
		ops_fatal("op_linear: x %s, weight %s and bias %s do not match (x (..,I), weight (O,I), "
		          "bias (O))", SHAPE(x, sx), SHAPE(w, sw), sbias);
	}
	int N = w->shape[0], M = (int)(x->size / (size_t)K);
	int shape[TENSOR_MAX_DIMS];
	memcpy(shape, x->shape, sizeof shape);
	shape[x->ndim - 1] = N;
	Tensor *out = ctx_tensor(ctx, x->ndim, shape);
	if (b)
		for (int r = 0; r < M; r++)
			memcpy(out->data + (size_t)r * N, b->data, (size_t)N * sizeof(float));
	parallel_sgemm(ctx, 0, 1, M, N, K, 1.0f, x->data, K, w->data, K, b ? 1.0f : 0.0f, out->data,
	               N);
	Tensor *in[3] = { x, w, b };
	Node *n = record(ctx, OP_MATMUL, linear_backward, out, in, b ? 3 : 2);
	if (n) {
		n->i[0] = M;
		n->i[1] = N;
		n->i[2] = K;
	}
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* broadcasting binary ops
 *
 * The output is iterated as at most four "collapsed" dimensions: dimensions of extent 1 are
 * dropped and neighbours that are broadcast the same way in both operands are merged. Same-shape
 * operands become one flat row; a bias (N,D)+(D) becomes N rows of D; (N,C,H,W)+(1,C,1,1) becomes
 * (N,C) rows of H*W with a scalar b per row. The innermost stride of either operand is then 0 or
 * 1, so every row is one of a few plain loops the compiler vectorizes. */

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };
static const OpKind bin_kinds[] = { OP_ADD, OP_SUB, OP_MUL, OP_DIV };
static const char *const bin_names[] = { "op_add", "op_sub", "op_mul", "op_div" };

typedef struct Bcast {
	int ext[4];           /* collapsed extents, outermost first (leading ones pad) */
	size_t sa[4], sb[4];  /* element strides of a and b (0 = broadcast) */
	size_t so[4];         /* output strides */
} Bcast;

static void bcast_plan(const char *op, const Tensor *a, const Tensor *b, Bcast *p, int *ond,
                       int *oshape)
{
	int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
	int as[4], bs[4];
	for (int d = 0; d < nd; d++) {
		int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
		as[d] = da < 0 ? 1 : a->shape[da];
		bs[d] = db < 0 ? 1 : b->shape[db];
		if (as[d] != bs[d] && as[d] != 1 && bs[d] != 1) {
			char s1[64], s2[64];
			ops_fatal("%s: shapes %s and %s do not broadcast", op, SHAPE(a, s1), SHAPE(b, s2));
		}
		oshape[d] = as[d] == 1 ? bs[d] : as[d];
	}
	*ond = nd;
	int ext[4], fa[4], fb[4], k = 0;
	for (int d = 0; d < nd; d++) {
		if (oshape[d] == 1)
			continue;
		int ba = as[d] == 1, bb = bs[d] == 1;
		if (k > 0 && fa[k - 1] == ba && fb[k - 1] == bb) {
			ext[k - 1] *= oshape[d];
		} else {
			ext[k] = oshape[d];
			fa[k] = ba;
			fb[k] = bb;
			k++;
		}
	}
	int pad = 4 - k;
	size_t ca = 1, cb = 1, co = 1;
	for (int i = 3; i >= 0; i--) {
		if (i < pad) {
			p->ext[i] = 1;
			p->sa[i] = p->sb[i] = p->so[i] = 0;
			continue;
		}
		int j = i - pad;
		p->ext[i] = ext[j];
		p->sa[i] = fa[j] ? 0 : ca;
		p->sb[i] = fb[j] ? 0 : cb;
		p->so[i] = co;
		if (!fa[j])
			ca *= (size_t)ext[j];
		if (!fb[j])
			cb *= (size_t)ext[j];
		co *= (size_t)ext[j];
	}
}

/* One output row; sa, sb in {0,1}. */
#define BIN_ROW(EXPR)                                                                          \
	do {                                                                                   \
		if (sa && sb) {                                                                \
			for (size_t i = 0; i < len; i++) {                                     \
				const float x = a[i], y = b[i];                                \
				o[i] = (EXPR);                                                 \
			}                                                                      \
		} else if (sa) {                                                               \
			const float y = b[0];                                                  \
			for (size_t i = 0; i < len; i++) {                                     \
				const float x = a[i];                                          \
				o[i] = (EXPR);                                                 \
			}                                                                      \
		} else if (sb) {                                                               \
			const float x = a[0];                                                  \
			for (size_t i = 0; i < len; i++) {                                     \
				const float y = b[i];                                          \
				o[i] = (EXPR);                                                 \
			}                                                                      \
		} else {                                                                       \
			const float x = a[0], y = b[0], v = (EXPR);                            \
			for (size_t i = 0; i < len; i++)                                       \
				o[i] = v;                                                      \
		}                                                                              \
	} while (0)

static void bin_row(int op, const float *restrict a, size_t sa, const float *restrict b, size_t sb,
                    float *restrict o, size_t len)
{
	switch (op) {
	case BIN_ADD: BIN_ROW(x + y); break;
	case BIN_SUB: BIN_ROW(x - y); break;
	case BIN_MUL: BIN_ROW(x * y); break;
	default: BIN_ROW(x / y); break;
	}
}

/* gx (+)= EXPR over a row, where gx has stride sx in {0,1} (0: the row reduces into gx[0]) and
 * v, the other operand's value, stride sv in {0,1}. EXPR may use g[i], z[i] (output) and v. */
#define GRAD_ROW(EXPR)                                                                         \
	do {                                                                                   \
		if (sx && sv) {                                                                \
			for (size_t i = 0; i < len; i++) {                                     \
				const float v = vv[i];                                         \
				(void)v;                                                       \
				gx[i] += (EXPR);                                               \
			}                                                                      \
		} else if (sx) {                                                               \
			const float v = vv[0];                                                 \
			(void)v;                                                               \
			for (size_t i = 0; i < len; i++)                                       \
				gx[i] += (EXPR);                                               \
		} else if (sv) {                                                               \
			float acc = 0.0f;                                                      \
			for (size_t i = 0; i < len; i++) {                                     \
				const float v = vv[i];                                         \
				(void)v;                                                       \
				acc += (EXPR);                                                 \
			}                                                                      \
			gx[0] += acc;                                                          \
		} else {                                                                       \
			const float v = vv[0];                                                 \
			(void)v;                                                               \
			float acc = 0.0f;                                                      \
			for (size_t i = 0; i < len; i++)                                       \
				acc += (EXPR);                                                 \
			gx[0] += acc;                                                          \
		}                                                                              \
	} while (0)

/* which: 0 = gradient of a, 1 = gradient of b. */
static void bin_grad_row(int op, int which, float *restrict gx, size_t sx, const float *restrict g,
                         const float *restrict vv, size_t sv, const float *restrict z, size_t len)
{
	switch (op * 2 + which) {
	case BIN_ADD * 2 + 0:
	case BIN_ADD * 2 + 1:
	case BIN_SUB * 2 + 0: GRAD_ROW(g[i]); break;
	case BIN_SUB * 2 + 1: GRAD_ROW(-g[i]); break;
	case BIN_MUL * 2 + 0:
	case BIN_MUL * 2 + 1: GRAD_ROW(g[i] * v); break;
	case BIN_DIV * 2 + 0: GRAD_ROW(g[i] / v); break;
	default: GRAD_ROW(-g[i] * z[i] / v); break; /* d(a/b)/db = -(a/b)/b */
	}
}

static void bin_backward(Ctx *ctx, Node *n)
{
	const Bcast *p = n->saved;
	int op = n->i[0];
	Tensor *a = n->in[0], *b = n->in[1];
	const float *g = n->out->grad, *z = n->out->data;
	size_t len = (size_t)p->ext[3];
	/* An add or sub operand of the output's own shape (a residual, the product before its bias)
	 * gets g as it is: a takes over the output's gradient buffer when it has none yet, a fresh
	 * b buffer is stored, not zeroed and added. a == b (x + x) takes the general path. */
	int done[2] = { 0, 0 };
	if ((op == BIN_ADD || op == BIN_SUB) && a != b) {
		const size_t size = n->out->size;
		done[0] = a->size == size && tape_grad_pass(ctx, a, n->out);
		int fresh = 0;
		float *gb = b->size == size ? tape_grad_in_fresh(ctx, b, &fresh) : NULL;
		if (gb && fresh) {
			if (op == BIN_ADD)
				memcpy(gb, g, size * sizeof(float));
			else
				for (size_t i = 0; i < size; i++)
					gb[i] = -g[i];
			done[1] = 1;
		}
	}
	for (int which = 0; which < 2; which++) {
		float *gx = done[which] ? NULL : tape_grad_in(ctx, which ? b : a);
		if (!gx)
			continue;
		const size_t *sx = which ? p->sb : p->sa;
		/* the other value each formula needs: mul uses the other operand, div always b */
		int v_is_b = op == BIN_DIV ? 1 : !which;
		const float *vbase = v_is_b ? b->data : a->data;
		const size_t *sv = v_is_b ? p->sb : p->sa;
		if (op == BIN_ADD || op == BIN_SUB)
			vbase = g, sv = p->so; /* unused by the formula; keeps loads in bounds */
		for (int i0 = 0; i0 < p->ext[0]; i0++)
			for (int i1 = 0; i1 < p->ext[1]; i1++)
				for (int i2 = 0; i2 < p->ext[2]; i2++) {
					size_t ox = i0 * sx[0] + i1 * sx[1] + i2 * sx[2];
					size_t ov = i0 * sv[0] + i1 * sv[1] + i2 * sv[2];
					size_t oo = i0 * p->so[0] + i1 * p->so[1] + i2 * p->so[2];
					bin_grad_row(op, which, gx + ox, sx[3], g + oo, vbase + ov, sv[3],
					             z + oo, len);
				}
	}
}

static Tensor *binary(Ctx *ctx, int op, Tensor *a, Tensor *b)
{
	Bcast plan, *p = &plan;
	int nd, shape[TENSOR_MAX_DIMS];
	Tensor *in[2] = { a, b };
	int want = tape_wants_grad(ctx, in, 2);
	if (want)
		p = ctx_alloc(ctx, sizeof *p);
	bcast_plan(bin_names[op], a, b, p, &nd, shape);
	Tensor *out = ctx_tensor(ctx, nd, shape);
	size_t len = (size_t)p->ext[3];
	for (int i0 = 0; i0 < p->ext[0]; i0++)
		for (int i1 = 0; i1 < p->ext[1]; i1++)
			for (int i2 = 0; i2 < p->ext[2]; i2++) {
				size_t oa = i0 * p->sa[0] + i1 * p->sa[1] + i2 * p->sa[2];
				size_t ob = i0 * p->sb[0] + i1 * p->sb[1] + i2 * p->sb[2];
				size_t oo = i0 * p->so[0] + i1 * p->so[1] + i2 * p->so[2];
				bin_row(op, a->data + oa, p->sa[3], b->data + ob, p->sb[3], out->data + oo,
				        len);
			}
	if (want) {
		Node *n = tape_record(ctx, bin_kinds[op], bin_backward, out, in, 2);
		n->i[0] = op;
		n->saved = p;
	}
	return out;
}

Tensor *op_add(Ctx *ctx, Tensor *a, Tensor *b) { return binary(ctx, BIN_ADD, a, b); }
Tensor *op_sub(Ctx *ctx, Tensor *a, Tensor *b) { return binary(ctx, BIN_SUB, a, b); }
Tensor *op_mul(Ctx *ctx, Tensor *a, Tensor *b) { return binary(ctx, BIN_MUL, a, b); }
Tensor *op_div(Ctx *ctx, Tensor *a, Tensor *b) { return binary(ctx, BIN_DIV, a, b); }

/* ---------------------------------------------------------------------------------------------- */
/* pointwise unary ops: the forward writes y = f(x); the backward adds g * f'(x) using x or y.
 * UNARY_OP defines both for the common case; the macro body is the only loop in each. A fresh
 * input gradient (tape_grad_in_fresh) is stored instead of added. */

#define UNARY_OP(NAME, KIND, FWD, BWD)                                                         \
	static void NAME##_backward(Ctx *ctx, Node *n)                                         \
	{                                                                                      \
		int fresh;                                                                     \
		float *restrict ga = tape_grad_in_fresh(ctx, n->in[0], &fresh);                \
		if (!ga)                                                                       \
			return;                                                                \
		const float *restrict g = n->out->grad, *restrict x = n->in[0]->data;          \
		const float *restrict y = n->out->data;                                        \
		const float p0 = n->f[0], p1 = n->f[1];                                        \
		(void)x, (void)y, (void)p0, (void)p1;                                          \
		if (fresh)                                                                     \
			for (size_t i = 0, len = n->out->size; i < len; i++)                   \
				ga[i] = g[i] * (BWD);                                          \
		else                                                                           \
			for (size_t i = 0, len = n->out->size; i < len; i++)                   \
				ga[i] += g[i] * (BWD);                                         \
	}                                                                                      \
	static Tensor *NAME##_apply(Ctx *ctx, Tensor *a, float p0, float p1)                   \
	{                                                                                      \
		Tensor *out = ctx_tensor_like(ctx, a);                                         \
		const float *restrict x = a->data;                                             \
		float *restrict y = out->data;                                                 \
		(void)p0, (void)p1;                                                            \
		for (size_t i = 0, len = a->size; i < len; i++)                                \
			y[i] = (FWD);                                                          \
		Node *n = record(ctx, KIND, NAME##_backward, out, &a, 1);                      \
		if (n) {                                                                       \
			n->f[0] = p0;                                                          \
			n->f[1] = p1;                                                          \
		}                                                                              \
		return out;                                                                    \
	}

/* GELU (tanh form) runs in the run-time-chosen kernels of simd.h: the widest vectors the CPU has
 * for its tanhf, the Transformer's costliest element-wise op. */
static void gelu_backward(Ctx *ctx, Node *n)
{
	int fresh;
	float *ga = tape_grad_in_fresh(ctx, n->in[0], &fresh);
	if (ga)
		simd()->gelu_backward(n->in[0]->data, n->out->grad, ga, n->out->size, fresh);
}

static Tensor *gelu_apply(Ctx *ctx, Tensor *a)
{
	Tensor *out = ctx_tensor_like(ctx, a);
	simd()->gelu(a->data, out->data, a->size);
	record(ctx, OP_GELU, gelu_backward, out, &a, 1);
	return out;
}

UNARY_OP(scale, OP_SCALE, x[i] * p0, p0)
UNARY_OP(add_scalar, OP_ADD_SCALAR, x[i] + p0, 1.0f)
UNARY_OP(square, OP_SQUARE, x[i] * x[i], 2.0f * x[i])
UNARY_OP(clamp, OP_CLAMP, fminf(fmaxf(x[i], p0), p1), (x[i] > p0 && x[i] < p1) ? 1.0f : 0.0f)
UNARY_OP(relu, OP_RELU, x[i] > 0.0f ? x[i] : 0.0f, x[i] > 0.0f ? 1.0f : 0.0f)
UNARY_OP(leaky_relu, OP_LEAKY_RELU, x[i] > 0.0f ? x[i] : p0 * x[i], x[i] > 0.0f ? 1.0f : p0)
UNARY_OP(tanh, OP_TANH, tanhf(x[i]), 1.0f - y[i] * y[i])
UNARY_OP(sigmoid, OP_SIGMOID, 1.0f / (1.0f + expf(-x[i])), y[i] * (1.0f - y[i]))
UNARY_OP(exp, OP_EXP, expf(x[i]), y[i])
UNARY_OP(log, OP_LOG, logf(x[i]), 1.0f / x[i])
UNARY_OP(sqrt, OP_SQRT, sqrtf(x[i]), 0.5f / y[i])
UNARY_OP(pow, OP_POW, powf(x[i], p0), p0 * powf(x[i], p0 - 1.0f))

Tensor *op_scale(Ctx *ctx, Tensor *a, float s) { return scale_apply(ctx, a, s, 0.0f); }
Tensor *op_add_scalar(Ctx *ctx, Tensor *a, float s) { return add_scalar_apply(ctx, a, s, 0.0f); }
Tensor *op_square(Ctx *ctx, Tensor *a) { return square_apply(ctx, a, 0.0f, 0.0f); }
Tensor *op_clamp(Ctx *ctx, Tensor *a, float lo, float hi) { return clamp_apply(ctx, a, lo, hi); }
Tensor *op_relu(Ctx *ctx, Tensor *a) { return relu_apply(ctx, a, 0.0f, 0.0f); }
Tensor *op_leaky_relu(Ctx *ctx, Tensor *a, float slope) { return leaky_relu_apply(ctx, a, slope, 0.0f); }
Tensor *op_gelu(Ctx *ctx, Tensor *a) { return gelu_apply(ctx, a); }
Tensor *op_tanh(Ctx *ctx, Tensor *a) { return tanh_apply(ctx, a, 0.0f, 0.0f); }
Tensor *op_sigmoid(Ctx *ctx, Tensor *a) { return sigmoid_apply(ctx, a, 0.0f, 0.0f); }
Tensor *op_exp(Ctx *ctx, Tensor *a) { return exp_apply(ctx, a, 0.0f, 0.0f); }
Tensor *op_log(Ctx *ctx, Tensor *a) { return log_apply(ctx, a, 0.0f, 0.0f); }
Tensor *op_sqrt(Ctx *ctx, Tensor *a) { return sqrt_apply(ctx, a, 0.0f, 0.0f); }
Tensor *op_pow(Ctx *ctx, Tensor *a, float p) { return pow_apply(ctx, a, p, 0.0f); }

/* ---------------------------------------------------------------------------------------------- */
/* reductions over one axis (or all): a is viewed as (outer, R, inner) around the axis */

enum { RED_SUM, RED_MEAN, RED_MAX };
static const OpKind red_kinds[] = { OP_SUM, OP_MEAN, OP_MAX };
static const char *const red_names[] = { "op_sum", "op_mean", "op_max" };

static void reduce_backward(Ctx *ctx, Node *n)
{
	float *restrict ga = tape_grad_in(ctx, n->in[0]);
	if (!ga)
		return;
	size_t outer = (size_t)n->i[1], R = (size_t)n->i[2], inner = (size_t)n->i[3];
	const float *restrict g = n->out->grad;
	if (n->i[0] == RED_MAX) {
		const int *idx = n->saved;
		for (size_t o = 0; o < outer; o++)
			for (size_t j = 0; j < inner; j++)
				ga[(o * R + (size_t)idx[o * inner + j]) * inner + j] += g[o * inner + j];
		return;
	}
	const float s = n->i[0] == RED_MEAN ? 1.0f / (float)R : 1.0f;
	if (inner == 1) {
		for (size_t o = 0; o < outer; o++) {
			const float v = g[o] * s;
			float *restrict gr = ga + o * R;
			for (size_t r = 0; r < R; r++)
				gr[r] += v;
		}
		return;
	}
	for (size_t o = 0; o < outer; o++) {
		const float *restrict go = g + o * inner;
		for (size_t r = 0; r < R; r++) {
			float *restrict gr = ga + (o * R + r) * inner;
			for (size_t j = 0; j < inner; j++)
				gr[j] += go[j] * s;
		}
	}
}

static Tensor *reduce(Ctx *ctx, int kind, Tensor *a, int axis, int keepdim)
{
	size_t outer, R, inner;
	int nd = 0, shape[TENSOR_MAX_DIMS];
	if (axis == OP_ALL) {
		outer = 1, R = a->size, inner = 1;
		nd = keepdim ? a->ndim : 1;
		for (int d = 0; d < nd; d++)
			shape[d] = 1;
	} else {
		int ax = norm_axis(red_names[kind], a, axis);
		outer = dims_prod(a, 0, ax);
		R = (size_t)a->shape[ax];
		inner = dims_prod(a, ax + 1, a->ndim);
		for (int d = 0; d < a->ndim; d++) {
			if (d != ax)
				shape[nd++] = a->shape[d];
			else if (keepdim)
				shape[nd++] = 1;
		}
		if (nd == 0)
			shape[nd++] = 1;
	}
	if (R == 0)
		ops_fatal("%s: cannot reduce an empty axis", red_names[kind]);
	Tensor *out = ctx_tensor(ctx, nd, shape);
	float *restrict y = out->data;
	const float *restrict x = a->data;
	int *idx = NULL;
	if (kind == RED_MAX) {
		idx = ctx_alloc(ctx, out->size * sizeof(int));
		for (size_t o = 0; inner == 1 && o < outer; o++) {
			/* rows: a vectorizable max, then the first index that holds it */
			const float *restrict xo = x + o * R;
			const float m = row_max(xo, R);
			size_t r = 0;
			while (r < R - 1 && !(xo[r] == m))
				r++;
			y[o] = m;
			idx[o] = (int)r;
		}
		for (size_t o = 0; inner > 1 && o < outer; o++) {
			float *restrict yo = y + o * inner;
			int *restrict io = idx + o * inner;
			const float *restrict xo = x + o * R * inner;
			for (size_t j = 0; j < inner; j++) {
				yo[j] = xo[j];
				io[j] = 0;
			}
			for (size_t r = 1; r < R; r++) {
				const float *restrict xr = xo + r * inner;
				for (size_t j = 0; j < inner; j++) {
					if (xr[j] > yo[j]) {
						yo[j] = xr[j];
						io[j] = (int)r;
					}
				}
			}
		}
	} else {
		const float s = kind == RED_MEAN ? 1.0f / (float)R : 1.0f;
		for (size_t o = 0; o < outer; o++) {
			const float *restrict xo = x + o * R * inner;
			float *restrict yo = y + o * inner;
			if (inner == 1) {
				yo[0] = row_sum(xo, R) * s;
				continue;
			}
			memcpy(yo, xo, inner * sizeof(float));
			for (size_t r = 1; r < R; r++) {
				const float *restrict xr = xo + r * inner;
				for (size_t j = 0; j < inner; j++)
					yo[j] += xr[j];
			}
			if (s != 1.0f)
				for (size_t j = 0; j < inner; j++)
					yo[j] *= s;
		}
	}
	Node *n = record(ctx, red_kinds[kind], reduce_backward, out, &a, 1);
	if (n) {
		n->i[0] = kind;
		n->i[1] = (int)outer;
		n->i[2] = (int)R;
		n->i[3] = (int)inner;
		n->saved = idx;
	}
	return out;
}

Tensor *op_sum(Ctx *ctx, Tensor *a, int axis, int keepdim) { return reduce(ctx, RED_SUM, a, axis, keepdim); }
Tensor *op_mean(Ctx *ctx, Tensor *a, int axis, int keepdim) { return reduce(ctx, RED_MEAN, a, axis, keepdim); }
Tensor *op_max(Ctx *ctx, Tensor *a, int axis, int keepdim) { return reduce(ctx, RED_MAX, a, axis, keepdim); }

/* ---------------------------------------------------------------------------------------------- */
/* softmax and log-softmax over the last axis, max-subtracted so large logits do not overflow */

static void softmax_backward(Ctx *ctx, Node *n)
{
	float *ga = tape_grad_in(ctx, n->in[0]);
	if (!ga)
		return;
	size_t D = (size_t)n->i[0], rows = n->out->size / D;
	for (size_t r = 0; r < rows; r++) {
		const float *restrict g = n->out->grad + r * D, *restrict y = n->out->data + r * D;
		float *restrict gr = ga + r * D;
		const float dot = row_dot(g, y, D);
		for (size_t j = 0; j < D; j++)
			gr[j] += y[j] * (g[j] - dot);
	}
}

static void log_softmax_backward(Ctx *ctx, Node *n)
{
	float *ga = tape_grad_in(ctx, n->in[0]);
	if (!ga)
		return;
	size_t D = (size_t)n->i[0], rows = n->out->size / D;
	for (size_t r = 0; r < rows; r++) {
		const float *restrict g = n->out->grad + r * D, *restrict y = n->out->data + r * D;
		float *restrict gr = ga + r * D;
		const float gs = row_sum(g, D);
		for (size_t j = 0; j < D; j++)
			gr[j] += g[j] - expf(y[j]) * gs;
	}
}

static Tensor *softmax_impl(Ctx *ctx, Tensor *a, int logsm)
{
	Tensor *out = ctx_tensor_like(ctx, a);
	size_t D = (size_t)a->shape[a->ndim - 1], rows = a->size / D;
	for (size_t r = 0; r < rows; r++) {
		const float *restrict x = a->data + r * D;
		float *restrict y = out->data + r * D;
		const float m = row_max(x, D);
		float s = 0.0f;
		if (logsm) {
			for (size_t j = 0; j < D; j++)
				s += expf(x[j] - m);
			const float lse = m + logf(s);
			for (size_t j = 0; j < D; j++)
				y[j] = x[j] - lse;
		} else {
			for (size_t j = 0; j < D; j++) {
				y[j] = expf(x[j] - m);
				s += y[j];
			}
			const float inv = 1.0f / s;
			for (size_t j = 0; j < D; j++)
				y[j] *= inv;
		}
	}
	Node *n = record(ctx, logsm ? OP_LOG_SOFTMAX : OP_SOFTMAX,
	                 logsm ? log_softmax_backward : softmax_backward, out, &a, 1);
	if (n)
		n->i[0] = (int)D;
	return out;
}

Tensor *op_softmax(Ctx *ctx, Tensor *a) { return softmax_impl(ctx, a, 0); }
Tensor *op_log_softmax(Ctx *ctx, Tensor *a) { return softmax_impl(ctx, a, 1); }

/* ---------------------------------------------------------------------------------------------- */
/* reshape and detach: views that share the input's data; reshape has its own gradient */

static void reshape_backward(Ctx *ctx, Node *n)
{
	if (tape_grad_pass(ctx, n->in[0], n->out))
		return;
	float *restrict ga = tape_grad_in(ctx, n->in[0]);
	if (!ga)
		return;
	const float *restrict g = n->out->grad;
	for (size_t i = 0, len = n->out->size; i < len; i++)
		ga[i] += g[i];
}

Tensor *op_reshape(Ctx *ctx, Tensor *a, int ndim, const int *shape)
{
	char s1[64];
	int s[TENSOR_MAX_DIMS], infer = -1;
	size_t known = 1;
	if (ndim < 1 || ndim > TENSOR_MAX_DIMS)
		ops_fatal("op_reshape: %d dimensions requested for %s (1..%d allowed)", ndim,
		          SHAPE(a, s1), TENSOR_MAX_DIMS);
	for (int d = 0; d < ndim; d++) {
		s[d] = shape[d];
		if (s[d] == -1 && infer < 0) {
			infer = d;
			continue;
		}
		if (s[d] < 0)
			ops_fatal("op_reshape: bad dimension %d at %d for %s", s[d], d, SHAPE(a, s1));
		known *= (size_t)s[d];
	}
	if (infer >= 0 && known > 0 && a->size % known == 0)
		s[infer] = (int)(a->size / known), known *= (size_t)s[infer];
	if (known != a->size || (infer >= 0 && s[infer] < 0)) {
		Tensor want = { 0 };
		char s2[64];
		tensor_set_shape(&want, ndim, shape);
		ops_fatal("op_reshape: cannot reshape %s to %s", SHAPE(a, s1), SHAPE(&want, s2));
	}
	Tensor *out = ctx_wrap(ctx, a->data, ndim, s);
	record(ctx, OP_RESHAPE, reshape_backward, out, &a, 1);
	return out;
}

Tensor *op_detach(Ctx *ctx, Tensor *a)
{
	return ctx_wrap(ctx, a->data, a->ndim, a->shape);
}

/* ---------------------------------------------------------------------------------------------- */
/* permute: dst is written contiguously while src is read through reordered strides. The forward
 * walks the output; the backward walks a's layout (the inverse permutation) and accumulates, so
 * both write sequentially. When the innermost source stride is not 1 (a transpose) the last two
 * dims go in small tiles: 8 keeps the strided lines of a power-of-two matrix within L1's ways. */

#define PERM_TILE 8

// e: dst extents (4-D, leading ones), st: src stride of each dst dim; acc: dst += instead of =
static void permute_walk(const float *restrict src, float *restrict dst, const int *e,
                         const size_t *st, int acc)
{
	size_t o = 0, plane = (size_t)e[2] * e[3];
	for (int i0 = 0; i0 < e[0]; i0++)
		for (int i1 = 0; i1 < e[1]; i1++, o += plane) {
			const size_t base = i0 * st[0] + i1 * st[1];
			if (st[3] == 1) {
				for (int i2 = 0; i2 < e[2]; i2++) {
					const float *restrict s = src + base + i2 * st[2];
					float *restrict d = dst + o + (size_t)i2 * e[3];
					if (acc)
						for (int i3 = 0; i3 < e[3]; i3++)
							d[i3] += s[i3];
					else
						memcpy(d, s, (size_t)e[3] * sizeof(float));
				}
				continue;
			}
			for (int t2 = 0; t2 < e[2]; t2 += PERM_TILE)
				for (int t3 = 0; t3 < e[3]; t3 += PERM_TILE) {
					const int m2 = t2 + PERM_TILE < e[2] ? t2 + PERM_TILE : e[2];
					const int m3 = t3 + PERM_TILE < e[3] ? t3 + PERM_TILE : e[3];
					for (int i2 = t2; i2 < m2; i2++) {
						const float *restrict s = src + base + i2 * st[2];
						float *restrict d = dst + o + (size_t)i2 * e[3];
						if (acc)
							for (int i3 = t3; i3 < m3; i3++)
								d[i3] += s[i3 * st[3]];
						else
							for (int i3 = t3; i3 < m3; i3++)
								d[i3] = s[i3 * st[3]];
					}
				}
		}
}

typedef struct PermWalk {
	int e[4];      /* a's extents, padded */
	size_t st[4];  /* the output's stride for each of a's dims */
} PermWalk;

/* every element of a's gradient is written once: a buffer nothing has written yet is stored, not
 * zeroed and added to */
static void permute_backward(Ctx *ctx, Node *n)
{
	int fresh;
	float *ga = tape_grad_in_fresh(ctx, n->in[0], &fresh);
	if (!ga)
		return;
	const PermWalk *w = n->saved;
	permute_walk(n->out->grad, ga, w->e, w->st, !fresh);
}

Tensor *op_permute(Ctx *ctx, Tensor *a, const int *perm)
{
	int nd = a->ndim, seen = 0, shape[TENSOR_MAX_DIMS] = { 1, 1, 1, 1 };
	for (int d = 0; d < nd; d++) {
		if (perm[d] < 0 || perm[d] >= nd || (seen & (1 << perm[d]))) {
			char s1[64];
			ops_fatal("op_permute: perm is not a permutation of the %d dims of %s", nd,
			          SHAPE(a, s1));
		}
		seen |= 1 << perm[d];
		shape[d] = a->shape[perm[d]];
	}
	Tensor *out = ctx_tensor(ctx, nd, shape);
	size_t astride[TENSOR_MAX_DIMS], ostride[TENSOR_MAX_DIMS], ca = 1, co = 1;
	for (int d = nd - 1; d >= 0; d--) {
		astride[d] = ca;
		ostride[d] = co;
		ca *= (size_t)a->shape[d];
		co *= (size_t)shape[d];
	}
	int e[4], pad = 4 - nd;
	size_t st[4];
	for (int k = 0; k < 4; k++) {
		e[k] = k < pad ? 1 : shape[k - pad];
		st[k] = k < pad ? 0 : astride[perm[k - pad]];
	}
	permute_walk(a->data, out->data, e, st, 0);
	Node *n = record(ctx, OP_PERMUTE, permute_backward, out, &a, 1);
	if (n) {
		PermWalk *w = ctx_alloc(ctx, sizeof *w);
		for (int k = 0; k < 4; k++) {
			w->e[k] = k < pad ? 1 : a->shape[k - pad];
			w->st[k] = 0;
		}
		for (int k = 0; k < nd; k++) /* out dim k is a's dim perm[k] */
			w->st[pad + perm[k]] = ostride[k];
		n->saved = w;
	}
	return out;
}

Tensor *op_transpose(Ctx *ctx, Tensor *a, int d0, int d1)
{
	int x = norm_axis("op_transpose", a, d0), y = norm_axis("op_transpose", a, d1);
	int perm[TENSOR_MAX_DIMS];
	for (int d = 0; d < a->ndim; d++)
		perm[d] = d;
	perm[x] = y;
	perm[y] = x;
	return op_permute(ctx, a, perm);
}

/* ---------------------------------------------------------------------------------------------- */
/* concat and slice: both are (outer, chunk) copies around the axis */

static void concat_backward(Ctx *ctx, Node *n)
{
	Tensor **ts = n->saved;
	int cnt = n->i[0];
	size_t outer = (size_t)n->i[1], inner = (size_t)n->i[2], total = (size_t)n->i[3];
	size_t off = 0;
	const float *g = n->out->grad;
	for (int k = 0; k < cnt; k++) {
		size_t chunk = (size_t)ts[k]->shape[n->i[4]] * inner;
		float *gk = tape_grad_in(ctx, ts[k]);
		if (gk)
			for (size_t o = 0; o < outer; o++) {
				float *restrict dst = gk + o * chunk;
				const float *restrict src = g + o * total * inner + off;
				for (size_t j = 0; j < chunk; j++)
					dst[j] += src[j];
			}
		off += chunk;
	}
}

Tensor *op_concat(Ctx *ctx, Tensor *const *ts, int n, int axis)
{
	char s1[64], s2[64];
	if (n < 1)
		ops_fatal("op_concat: no tensors to concatenate");
	Tensor *t0 = ts[0];
	int ax = norm_axis("op_concat", t0, axis);
	int total = 0;
	for (int k = 0; k < n; k++) {
		int ok = ts[k]->ndim == t0->ndim;
		for (int d = 0; ok && d < t0->ndim; d++)
			ok = d == ax || ts[k]->shape[d] == t0->shape[d];
		if (!ok)
			ops_fatal("op_concat: shapes %s and %s do not match outside axis %d",
			          SHAPE(t0, s1), SHAPE(ts[k], s2), ax);
		total += ts[k]->shape[ax];
	}
	int shape[TENSOR_MAX_DIMS];
	memcpy(shape, t0->shape, sizeof shape);
	shape[ax] = total;
	Tensor *out = ctx_tensor(ctx, t0->ndim, shape);
	size_t outer = dims_prod(t0, 0, ax), inner = dims_prod(t0, ax + 1, t0->ndim);
	size_t off = 0;
	for (int k = 0; k < n; k++) {
		size_t chunk = (size_t)ts[k]->shape[ax] * inner;
		for (size_t o = 0; o < outer; o++)
			memcpy(out->data + o * (size_t)total * inner + off, ts[k]->data + o * chunk,
			       chunk * sizeof(float));
		off += chunk;
	}
	if (tape_wants_grad(ctx, ts, n)) {
		/* the node holds at most NODE_MAX_IN inputs; the full list lives in saved */
		Tensor **all = ctx_alloc(ctx, (size_t)n * sizeof *all);
		memcpy(all, ts, (size_t)n * sizeof *all);
		Node *nd = tape_record(ctx, OP_CONCAT, concat_backward, out, ts,
		                       n < NODE_MAX_IN ? n : NODE_MAX_IN);
		nd->saved = all;
		nd->i[0] = n;
		nd->i[1] = (int)outer;
		nd->i[2] = (int)inner;
		nd->i[3] = total;
		nd->i[4] = ax;
	}
	return out;
}

static void slice_backward(Ctx *ctx, Node *n)
{
	float *ga = tape_grad_in(ctx, n->in[0]);
	if (!ga)
		return;
	size_t outer = (size_t)n->i[0], chunk = (size_t)n->i[1], stride = (size_t)n->i[2];
	size_t off = (size_t)n->i[3];
	const float *g = n->out->grad;
	for (size_t o = 0; o < outer; o++) {
		float *restrict dst = ga + o * stride + off;
		const float *restrict src = g + o * chunk;
		for (size_t j = 0; j < chunk; j++)
			dst[j] += src[j];
	}
}

Tensor *op_slice(Ctx *ctx, Tensor *a, int axis, int start, int len)
{
	int ax = norm_axis("op_slice", a, axis);
	if (start < 0 || len < 1 || start + len > a->shape[ax]) {
		char s1[64];
		ops_fatal("op_slice: [%d, %d) out of range on axis %d of %s", start, start + len, ax,
		          SHAPE(a, s1));
	}
	int shape[TENSOR_MAX_DIMS];
	memcpy(shape, a->shape, sizeof shape);
	shape[ax] = len;
	Tensor *out = ctx_tensor(ctx, a->ndim, shape);
	size_t outer = dims_prod(a, 0, ax), inner = dims_prod(a, ax + 1, a->ndim);
	size_t chunk = (size_t)len * inner, stride = (size_t)a->shape[ax] * inner;
	size_t off = (size_t)start * inner;
	for (size_t o = 0; o < outer; o++)
		memcpy(out->data + o * chunk, a->data + o * stride + off, chunk * sizeof(float));
	Node *n = record(ctx, OP_SLICE, slice_backward, out, &a, 1);
	if (n) {
		n->i[0] = (int)outer;
		n->i[1] = (int)chunk;
		n->i[2] = (int)stride;
		n->i[3] = (int)off;
	}
	return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* gather_rows and embedding: row copies by index; the backward scatters (adds, so repeated
 * indices accumulate) */

static void gather_backward(Ctx *ctx, Node *n)
{
	float *ga = tape_grad_in(ctx, n->in[0]);
	if (!ga)
		return;
	const int *idx = n->saved;
	size_t row = (size_t)n->i[1];
	const float *g = n->out->grad;
	for (int k = 0; k < n->i[0]; k++) {
		float *restrict dst = ga + (size_t)idx[k] * row;
		const float *restrict src = g + (size_t)k * row;
		for (size_t j = 0; j < row; j++)
			dst[j] += src[j];
	}
}

static Tensor *gather(Ctx *ctx, OpKind kind, const char *name, Tensor *a, const int *idx, int n)
{
	char s1[64];
	if (n < 1)
		ops_fatal("%s: no rows requested from %s", name, SHAPE(a, s1));
	int R = a->shape[0];
	size_t row = a->size / (size_t)R;
	int shape[TENSOR_MAX_DIMS];
	memcpy(shape, a->shape, sizeof shape);
	shape[0] = n;
	Tensor *out = ctx_tensor(ctx, a->ndim, shape);
	for (int k = 0; k < n; k++) {
		if (idx[k] < 0 || idx[k] >= R)
			ops_fatal("%s: index %d (at %d) out of range for %s", name, idx[k], k, SHAPE(a, s1));
		memcpy(out->data + (size_t)k * row, a->data + (size_t)idx[k] * row, row * sizeof(float));
	}
	Node *nd = record(ctx, kind, gather_backward, out, &a, 1);
	if (nd) {
		int *copy = ctx_alloc(ctx, (size_t)n * sizeof(int)); /* the caller's ids may not live */
		memcpy(copy, idx, (size_t)n * sizeof(int));
		nd->saved = copy;
		nd->i[0] = n;
		nd->i[1] = (int)row;
	}
	return out;
}

Tensor *op_gather_rows(Ctx *ctx, Tensor *a, const int *idx, int n)
{
	return gather(ctx, OP_GATHER_ROWS, "op_gather_rows", a, idx, n);
}

Tensor *op_embedding(Ctx *ctx, Tensor *table, const int *ids, int n)
{
	if (table->ndim != 2) {
		char s1[64];
		ops_fatal("op_embedding: table %s must be 2-D (V,D)", SHAPE(table, s1));
	}
	return gather(ctx, OP_EMBEDDING, "op_embedding", table, ids, n);
}

/* ---------------------------------------------------------------------------------------------- */
/* l2_normalize: y = x / max(||x||, eps) per row of the last axis (PyTorch F.normalize) */

static void l2n_backward(Ctx *ctx, Node *n)
{
	float *ga = tape_grad_in(ctx, n->in[0]);
	if (!ga)
		return;
	const float *den = n->saved, eps = n->f[0];
	size_t D = (size_t)n->i[0], rows = n->out->size / D;
	for (size_t r = 0; r < rows; r++) {
		const float *restrict g = n->out->grad + r * D, *restrict y = n->out->data + r * D;
		float *restrict gr = ga + r * D;
		const float inv = 1.0f / den[r];
		/* the norm is live; below eps the denominator is a constant */
		const float dot = den[r] > eps ? row_dot(g, y, D) : 0.0f;
		for (size_t j = 0; j < D; j++)
			gr[j] += (g[j] - y[j] * dot) * inv;
	}
}

Tensor *op_l2_normalize(Ctx *ctx, Tensor *a, float eps)
{
	Tensor *out = ctx_tensor_like(ctx, a);
	size_t D = (size_t)a->shape[a->ndim - 1], rows = a->size / D;
	Tensor *in[1] = { a };
	int want = tape_wants_grad(ctx, in, 1);
	float *den = want ? ctx_alloc(ctx, rows * sizeof(float)) : NULL;
	for (size_t r = 0; r < rows; r++) {
		const float *restrict x = a->data + r * D;
		float *restrict y = out->data + r * D;
		const float ss = row_dot(x, x, D);
		const float d = fmaxf(sqrtf(ss), eps), inv = 1.0f / d;
		for (size_t j = 0; j < D; j++)
			y[j] = x[j] * inv;
		if (den)
			den[r] = d;
	}
	if (want) {
		Node *n = tape_record(ctx, OP_L2_NORMALIZE, l2n_backward, out, in, 1);
		n->i[0] = (int)D;
		n->f[0] = eps;
		n->saved = den;
	}
	return out;
}
