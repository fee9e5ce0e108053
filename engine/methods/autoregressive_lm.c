/* autoregressive_lm.c - GPT-style byte-level language model: a causal Transformer decoder over byte
 * tokens (vocabulary 256) trained with next-byte cross-entropy, the LM head tied to the byte
 * embedding (logits = h wte^T). Reports bits per byte on the training batches and, after training,
 * on the whole held-out test text; samples continuations (temperature, top-k, top-p) one byte at a
 * time with a KV cache.
 *
 * It draws its own batches through make_batch (random windows of the byte stream, or whole records
 * of a text_records dataset, one seeded permutation per epoch) from (seed, step) only, so a
 * resumed run trains on exactly the batches it would have seen. It deliberately does not tokenise
 * beyond bytes and does not decode UTF-8: the bytes it samples may split a multi-byte character,
 * and whoever turns them into JSON text (runner_generate) makes them valid UTF-8.
 */
#include "method.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../layers.h"
#include "../ops.h"
#include "byte_lm.h"
#include "decoder.h"

#define EVAL_WINDOWS 32   /* test windows per forward pass */

typedef struct ArLm {
	ByteLm lm;             /* first: the encoder, B, T and the batch draw (byte_lm.h) */
	int *x, *y;            /* (B*T) inputs and next-byte targets (-1 = no target) */
} ArLm;

/* ---- create / destroy ----------------------------------------------------------------------- */

static void arlm_destroy(void *state)
{
	ArLm *s = state;
	if (!s)
		return;
	byte_lm_close(&s->lm);
	eng_free(s->x);
	eng_free(s->y);
	eng_free(s);
}

static int arlm_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	ArLm *s = eng_calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "autoregressive_lm: out of memory");
		return -ENOMEM;
	}
	/* a decoder, whatever the spec layer filled in */
	int rc = byte_lm_init(&s->lm, "autoregressive_lm", 0x61726c6dULL, 1, env, ps, err, errlen);
	if (rc < 0) {
		arlm_destroy(s);
		return rc;
	}
	size_t n = (size_t)s->lm.B * (size_t)s->lm.T;
	s->x = eng_malloc(n * sizeof *s->x);
	s->y = eng_malloc(n * sizeof *s->y);
	if (!s->x || !s->y) {
		snprintf(err, errlen, "autoregressive_lm: out of memory for a batch of %d x %d", s->lm.B,
		         s->lm.T);
		arlm_destroy(s);
		return -ENOMEM;
	}
	*state = s;
	return 0;
}

/* ---- batches -------------------------------------------------------------------------------- */

static int arlm_make_batch(void *state, const Dataset *ds, uint64_t seed, int64_t step, Batch *b,
                           char *err, size_t errlen)
{
	ArLm *s = state;
	Rng rng;
	int rc = byte_lm_draw(&s->lm, ds, seed, step, &rng, s->x, s->y, err, errlen);
	if (rc < 0)
		return rc;
	memset(b, 0, sizeof *b);
	b->n = s->lm.B;
	b->T = s->lm.T;
	b->tokens = s->x;
	return 0;
}

/* ---- loss ------------------------------------------------------------------------------------ */

// ids (B*T) -> logits (B*T, V) through the tied head
static Tensor *arlm_logits(Ctx *ctx, ArLm *s, const int *ids, int B, int T)
{
	Tensor *h = encoder_forward_tokens(ctx, s->lm.encoder, ids, B, T);     // (B,T,D)
	h = op_reshape(ctx, h, 2, (int[]){ B * T, s->lm.tf->dim });
	return op_matmul(ctx, h, s->lm.tf->wte.weight, 0, 1);                  // (B*T,V)
}

static Tensor *arlm_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                         const MetricSink *sink)
{
	ArLm *s = state;
	(void)views;
	(void)batch;   /* the batch is s->x / s->y, filled by arlm_make_batch */
	Tensor *logits = arlm_logits(ctx, s, s->x, s->lm.B, s->lm.T);
	Tensor *loss = op_cross_entropy(ctx, logits, s->y, 0.0f);
	metric_put(sink, "bits_per_byte", loss->data[0] / M_LN2);
	return loss;
}

/* ---- test bits per byte ------------------------------------------------------------------------ */

typedef struct EvalAcc {
	double nats;
	size_t n;
} EvalAcc;

/* Adds -log p(target) of the rows of logits (rows, V) whose target is >= 0. */
static void score_rows(const Tensor *logits, const int *target, int rows, EvalAcc *acc)
{
	int V = logits->shape[1];
	for (int i = 0; i < rows; i++) {
		if (target[i] < 0)
			continue;
		const float *l = logits->data + (size_t)i * V;
		float mx = l[0];
		for (int j = 1; j < V; j++)
			mx = l[j] > mx ? l[j] : mx;
		double sum = 0.0;
		for (int j = 0; j < V; j++)
			sum += expf(l[j] - mx);
		acc->nats += log(sum) + mx - l[target[i]];
		acc->n++;
	}
}

/* Byte stream: windows of T bytes every T/2 bytes; each window scores only the targets no earlier
 * window scored, so every byte after the first half-window is predicted from at least T/2 bytes of
 * context (the usual strided evaluation). Every test byte but the first is scored exactly once. */
static void eval_stream(Ctx *ctx, ArLm *s, const uint8_t *text, size_t len, int *x, int *y,
                        EvalAcc *acc)
{
	if (len < 2)
		return;
	int T = len - 1 < (size_t)s->lm.T ? (int)(len - 1) : s->lm.T;
	size_t stride = T / 2 > 0 ? (size_t)(T / 2) : 1, last = len - 1 - (size_t)T;
	size_t next = 1;   /* first target not yet scored */
	size_t start = 0;
	int done = 0;
	while (!done) {
		int nw = 0;
		for (; nw < EVAL_WINDOWS && !done; nw++) {
			if (start >= last) {
				start = last;
				done = 1;
			}
			int *wx = x + (size_t)nw * T, *wy = y + (size_t)nw * T;
			for (int t = 0; t < T; t++) {
				size_t tgt = start + (size_t)t + 1;
				wx[t] = text[start + (size_t)t];
				wy[t] = tgt >= next ? text[tgt] : -1;
			}
			next = start + (size_t)T + 1;
			start += stride;
		}
		ctx_reset(ctx);
		score_rows(arlm_logits(ctx, s, x, nw, T), y, nw * T, acc);
	}
}

static void eval_records(Ctx *ctx, ArLm *s, const Dataset *ds, int *x, int *y, EvalAcc *acc)
{
	int T = s->lm.T;
	for (int r0 = 0; r0 < ds->test.n; r0 += EVAL_WINDOWS) {
		int nw = ds->test.n - r0 < EVAL_WINDOWS ? ds->test.n - r0 : EVAL_WINDOWS;
		for (int i = 0; i < nw; i++)
			byte_lm_record(ds, &ds->test, r0 + i, T, x + (size_t)i * T, y + (size_t)i * T);
		ctx_reset(ctx);
		score_rows(arlm_logits(ctx, s, x, nw, T), y, nw * T, acc);
	}
}

static int arlm_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	ArLm *s = state;
	size_t n = (size_t)EVAL_WINDOWS * (size_t)s->lm.T;
	int *x = eng_malloc(n * sizeof *x), *y = eng_malloc(n * sizeof *y);
	if (!x || !y) {
		eng_free(x);
		eng_free(y);
		return -ENOMEM;
	}
	EvalMode em = eval_mode_enter(ctx);
	EvalAcc acc = { 0 };
	if (ds->kind == DATASET_TEXT)
		eval_stream(ctx, s, ds->text_test, ds->text_test_len, x, y, &acc);
	else
		eval_records(ctx, s, ds, x, y, &acc);
	ctx_reset(ctx);
	eval_mode_leave(ctx, em);
	eng_free(x);
	eng_free(y);
	if (acc.n == 0)
		return 0;
	metric_put(sink, "test_loss", acc.nats / (double)acc.n);
	metric_put(sink, "test_bits_per_byte", acc.nats / (double)acc.n / M_LN2);
	metric_put(sink, "test_bytes", (double)acc.n);
	return 0;
}

/* ---- sampling ------------------------------------------------------------------------------- */

/* One byte from logits (V): greedy when temperature <= 0, else softmax(logits / temperature)
 * restricted to the top_k most likely bytes (0 = all) and to the smallest set whose probability
 * reaches top_p (1 = all). Byte 0 (NUL) is never produced: it is not text. */
static int sample_byte(const float *logits, int V, float temperature, int top_k, float top_p,
                       Rng *rng)
{
	int best = 1;
	for (int j = 2; j < V; j++)
		if (logits[j] > logits[best])
			best = j;
	if (!(temperature > 0.0f))
		return best;
	double p[256];
	int order[256];
	int n = 0;
	double sum = 0.0;
	for (int j = 1; j < V && j < 256; j++) {
		p[j] = exp((double)(logits[j] - logits[best]) / temperature);
		sum += p[j];
		/* insertion into `order`, most likely first */
		int k = n++;
		while (k > 0 && p[order[k - 1]] < p[j]) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = j;
	}
	int keep = n;
	if (top_k > 0 && top_k < keep)
		keep = top_k;
	if (top_p > 0.0f && top_p < 1.0f) {
		double c = 0.0;
		for (int i = 0; i < keep; i++) {
			c += p[order[i]] / sum;
			if (c >= top_p) {
				keep = i + 1;
				break;
			}
		}
	}
	double total = 0.0;
	for (int i = 0; i < keep; i++)
		total += p[order[i]];
	double u = rng_uniform(rng) * total;
	for (int i = 0; i < keep; i++) {
		u -= p[order[i]];
		if (u < 0.0)
			return order[i];
	}
	return order[keep - 1];
}

/* Feed win[0..n) into an emptied cache; returns the last position's hidden state (1,D). */
static Tensor *refill(Ctx *ctx, const Transformer *tf, KVCache *kv, const int *win, int n)
{
	kvcache_clear(kv);
	Tensor *h = NULL;
	for (int i = 0; i < n; i++)
		h = transformer_step_cached(ctx, tf, kv, &win[i], 1);
	return h;
}

/* The model conditions on a window of at most `context` bytes held in the KV cache. When the
 * window is full, it keeps its last context/2 - 1 bytes, appends the new one and refills the cache
 * (learned absolute positions rule out sliding the cache itself). */
static int arlm_generate(void *state, Ctx *ctx, const uint8_t *prompt, int len, int max_tokens,
                         float temperature, int top_k, float top_p, Rng *rng, uint8_t *out,
                         int *out_len, char *err, size_t errlen)
{
	ArLm *s = state;
	const Transformer *tf = s->lm.tf;
	int C = tf->context, V = tf->vocab < 256 ? tf->vocab : 256, D = tf->dim;
	int keep = C / 2 > 1 ? C / 2 : 1;
	*out_len = 0;
	if (max_tokens <= 0)
		return 0;
	KVCache kv;
	int *win = eng_malloc((size_t)C * sizeof *win);
	float *logits = eng_malloc((size_t)tf->vocab * sizeof *logits);
	if (!win || !logits || kvcache_init(&kv, tf, 1) < 0) {
		eng_free(win);
		eng_free(logits);
		snprintf(err, errlen, "autoregressive_lm: out of memory for the KV cache");
		return -ENOMEM;
	}
	EvalMode em = eval_mode_enter(ctx);
	int n = 0;
	if (len <= 0) {
		win[n++] = '\n';   /* an empty prompt starts at a line break, as a fortune does */
	} else {
		int from = len > C ? len - C : 0;
		for (int i = from; i < len; i++)
			win[n++] = prompt[i];
	}
	ctx_reset(ctx);
	Tensor *h = refill(ctx, tf, &kv, win, n);
	int rc = 0;
	for (int g = 0; g < max_tokens; g++) {
		if (ctx_should_stop(ctx))
			break;   /* cancelled or out of time: *out_len bytes so far */
		if (!h) {
			snprintf(err, errlen, "autoregressive_lm: KV-cache step failed at byte %d", g);
			rc = -EINVAL;
			break;
		}
		/* logits (V) = h (1,D) . wte (V,D)^T */
		const float *hv = h->data, *w = tf->wte.weight->data;
		for (int j = 0; j < V; j++) {
			float a = 0.0f;
			for (int d = 0; d < D; d++)
				a += hv[d] * w[(size_t)j * D + d];
			logits[j] = a;
		}
		int tok = sample_byte(logits, V, temperature, top_k, top_p, rng);
		out[(*out_len)++] = (uint8_t)tok;
		if (g + 1 == max_tokens)
			break;
		ctx_reset(ctx);
		if (n == C) {
			memmove(win, win + n - (keep - 1), (size_t)(keep - 1) * sizeof *win);
			n = keep - 1;
			win[n++] = tok;
			h = refill(ctx, tf, &kv, win, n);
		} else {
			win[n++] = tok;
			h = transformer_step_cached(ctx, tf, &kv, &tok, 1);
		}
	}
	ctx_reset(ctx);
	eval_mode_leave(ctx, em);
	kvcache_close(&kv);
	eng_free(win);
	eng_free(logits);
	return rc;
}

const PretextMethod method_autoregressive_lm = {
	.name = "autoregressive_lm",
	.family = "self-predictive",
	.summary = "GPT-style language model on bytes: a causal Transformer predicts the next byte; "
	           "reports test bits per byte and continues prompts (ssld generate, "
	           "POST /v1/jobs/{id}/generate) with temperature, top-k and top-p sampling",
	.default_encoder = ENC_TRANSFORMER,
	.encoders = ENC_BIT(ENC_TRANSFORMER),
	.datasets = DATA_TEXT,
	.views = 1,   /* pretrains; its batches come from make_batch, not the loader */
	.causal = 1,
	.default_augment = "none",
	.example = "autoregressive-lm-fortunes.json",
	.create = arlm_create,
	.loss = arlm_loss,
	.encoder = byte_lm_encoder,
	.evaluate = arlm_evaluate,
	.generate_text = arlm_generate,
	.make_batch = arlm_make_batch,
	.destroy = arlm_destroy,
};
