/* masked_lm.c - BERT-style masked language model on bytes: a bidirectional Transformer encoder
 * over byte tokens (vocabulary 256); BERT corruption (mask_prob of the positions selected, of those
 * 80% -> the mask byte 0, 10% -> a random byte, 10% kept); cross-entropy on the selected positions
 * only, through a small head (dense + GELU + LayerNorm, then the decoder tied to the byte embedding
 * plus a bias). Reports masked-byte accuracy and loss during training and, after training, on the
 * held-out test text beside the unigram baseline (always the most frequent training byte); on a
 * labelled text_records dataset also the bag-of-bytes logistic-regression baseline the encoder's
 * linear probe is compared with.
 *
 * Batches come from make_batch: whole records (one seeded permutation per epoch) or random windows
 * of a byte stream, corrupted with a stream seeded by (seed, step), so resume is exact. Only the
 * encoder ("encoder.*") transfers; the head ("mlm_head.*") stays behind. This file does not run the
 * downstream probes on the encoder itself (eval.c does, on mean-pooled token states).
 */
#include "method.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../data/text_mask.h"
#include "../layers.h"
#include "../ops.h"
#include "byte_lm.h"
#include "decoder.h"
#include "eval.h"

#define EVAL_SEQS 32            /* test sequences per forward pass */
#define EVAL_MASK_SEED 0x6d6c6dULL

typedef struct MaskedLmConfig {
	float mask_prob;
	float mask_token_prob;
	float random_token_prob;
} MaskedLmConfig;
METHOD_CONFIG_FITS(MaskedLmConfig);

static const ParamDef masked_lm_params[] = {
	{ "mask_prob", PARAM_NUMBER, .def = 0.15, .min = 0, .max = 1,
	  .flags = PARAM_MIN_EXCLUSIVE | PARAM_MAX_EXCLUSIVE,
	  .help = "share of the byte positions selected as prediction targets",
	  PARAM_AT(MaskedLmConfig, mask_prob) },
	{ "mask_token_prob", PARAM_NUMBER, .def = 0.8, .min = 0, .max = 1,
	  .help = "of the selected positions: the share replaced by the mask byte (0)",
	  PARAM_AT(MaskedLmConfig, mask_token_prob) },
	{ "random_token_prob", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 1,
	  .help = "of the selected positions: the share replaced by a random byte (the rest keep "
	          "their byte); mask_token_prob + random_token_prob <= 1",
	  PARAM_AT(MaskedLmConfig, random_token_prob) },
};

/* The two replacement shares must leave a non-negative share of kept bytes. */
static int masked_lm_validate(const void *config, char *field, size_t fieldlen, char *msg,
                              size_t msglen)
{
	const MaskedLmConfig *c = config;
	double m = c->mask_token_prob, r = c->random_token_prob;
	if (m + r <= 1.0 + 1e-6)
		return 0;
	snprintf(field, fieldlen, "random_token_prob");
	snprintf(msg, msglen, "mask_token_prob (%g) + random_token_prob (%g) must be at most 1", m, r);
	return -1;
}

typedef struct MaskedLm {
	ByteLm lm;                /* first: the encoder (its wte is the tied decoder), B, T and the
	                             batch draw (byte_lm.h) */
	Linear dense;             /* mlm_head.dense (D,D) */
	LayerNorm norm;           /* mlm_head.norm */
	Tensor *bias;             /* mlm_head.bias (V) */
	TextMaskConfig mc;
	int *ids, *x, *tgt;       /* (B*T) original bytes, corrupted input, targets (-1 elsewhere) */
	int *rows, *labels;       /* (B*T) flat positions of the selected bytes and their originals */
	int n_sel;
} MaskedLm;

/* ---- create / destroy ----------------------------------------------------------------------- */

static void mlm_destroy(void *state)
{
	MaskedLm *s = state;
	if (!s)
		return;
	byte_lm_close(&s->lm);
	eng_free(s->ids);
	eng_free(s->x);
	eng_free(s->tgt);
	eng_free(s->rows);
	eng_free(s->labels);
	eng_free(s);
}

static int mlm_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	MaskedLm *s = eng_calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "masked_lm: out of memory");
		return -ENOMEM;
	}
	int rc = byte_lm_init(&s->lm, "masked_lm", 0x6d6c6dULL, 0, env, ps, err, errlen);
	if (rc < 0)
		goto fail;
	text_mask_config_default(&s->mc);
	const MaskedLmConfig *mcfg = env->config;
	s->mc.select_p = mcfg->mask_prob;
	s->mc.p_mask = mcfg->mask_token_prob;
	s->mc.p_random = mcfg->random_token_prob;
	s->mc.pad_id = 0;         /* record padding is never a target (byte 0 is not text) */
	rc = -EINVAL;
	if (!(s->mc.select_p > 0.0f && s->mc.select_p < 1.0f) || !(s->mc.p_mask >= 0.0f) ||
	    !(s->mc.p_random >= 0.0f) || s->mc.p_mask + s->mc.p_random > 1.0f + 1e-6f) {
		snprintf(err, errlen, "masked_lm: params: mask_prob %g must be in (0,1) and "
		         "mask_token_prob %g + random_token_prob %g at most 1", (double)s->mc.select_p,
		         (double)s->mc.p_mask, (double)s->mc.p_random);
		goto fail;
	}
	int D = s->lm.tf->dim;
	if ((rc = linear_init(&s->dense, ps, "mlm_head.dense", D, D, 1, env->rng)) < 0 ||
	    (rc = layernorm_init(&s->norm, ps, "mlm_head.norm", D)) < 0 ||
	    !(s->bias = paramset_add(ps, "mlm_head.bias", 1, (int[]){ s->lm.tf->vocab }, 0))) {
		snprintf(err, errlen, "masked_lm: cannot build the prediction head (%d)", rc);
		rc = rc < 0 ? rc : -ENOMEM;
		goto fail;
	}
	size_t n = (size_t)s->lm.B * (size_t)s->lm.T;
	s->ids = eng_malloc(n * sizeof(int));
	s->x = eng_malloc(n * sizeof(int));
	s->tgt = eng_malloc(n * sizeof(int));
	s->rows = eng_malloc(n * sizeof(int));
	s->labels = eng_malloc(n * sizeof(int));
	if (!s->ids || !s->x || !s->tgt || !s->rows || !s->labels) {
		snprintf(err, errlen, "masked_lm: out of memory for a batch of %d x %d", s->lm.B,
		         s->lm.T);
		rc = -ENOMEM;
		goto fail;
	}
	*state = s;
	return 0;
fail:
	mlm_destroy(s);
	return rc;
}

/* ---- batches -------------------------------------------------------------------------------- */

/* Corrupt ids (n) into x / tgt and list the selected positions. Returns how many. */
static int corrupt(const TextMaskConfig *mc, Rng *rng, const int *ids, int n, int *x, int *tgt,
                   int *rows, int *labels)
{
	text_mask_apply(mc, rng, ids, n, x, tgt, NULL);
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (tgt[i] >= 0) {
			rows[m] = i;
			labels[m++] = tgt[i];
		}
	}
	return m;
}

static int mlm_make_batch(void *state, const Dataset *ds, uint64_t seed, int64_t step, Batch *b,
                          char *err, size_t errlen)
{
	MaskedLm *s = state;
	Rng rng;   /* the batch's draw, then its masks */
	/* tgt is scratch for the next bytes the draw also writes */
	int rc = byte_lm_draw(&s->lm, ds, seed, step, &rng, s->ids, s->tgt, err, errlen);
	if (rc < 0)
		return rc;
	int B = s->lm.B, T = s->lm.T;
	s->n_sel = corrupt(&s->mc, &rng, s->ids, B * T, s->x, s->tgt, s->rows, s->labels);
	memset(b, 0, sizeof *b);
	b->n = B;
	b->T = T;
	b->tokens = s->x;
	return 0;
}

/* ---- loss ------------------------------------------------------------------------------------ */

// corrupted x (B*T), selected rows (m) -> logits (m, V) at those positions
static Tensor *mlm_logits(Ctx *ctx, MaskedLm *s, const int *x, int B, const int *rows, int m)
{
	Tensor *h = encoder_forward_tokens(ctx, s->lm.encoder, x, B, s->lm.T);  // (B,T,D)
	h = op_reshape(ctx, h, 2, (int[]){ B * s->lm.T, s->lm.tf->dim });
	h = op_gather_rows(ctx, h, rows, m);                                 // (m,D)
	Tensor *z = op_gelu(ctx, linear_forward(ctx, &s->dense, h));
	z = layernorm_forward(ctx, &s->norm, z);
	return op_add(ctx, op_matmul(ctx, z, s->lm.tf->wte.weight, 0, 1), s->bias);   // (m,V)
}

static int argmax_row(const float *l, int V)
{
	int best = 0;
	for (int j = 1; j < V; j++)
		if (l[j] > l[best])
			best = j;
	return best;
}

static Tensor *mlm_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                        const MetricSink *sink)
{
	MaskedLm *s = state;
	(void)views;
	(void)batch;   /* the batch is s->x / s->rows / s->labels, filled by mlm_make_batch */
	Tensor *logits = mlm_logits(ctx, s, s->x, s->lm.B, s->rows, s->n_sel);
	Tensor *loss = op_cross_entropy(ctx, logits, s->labels, 0.0f);
	if (sink) {
		int V = logits->shape[1], correct = 0;
		for (int i = 0; i < s->n_sel; i++)
			correct += argmax_row(logits->data + (size_t)i * V, V) == s->labels[i];
		metric_put(sink, "masked_accuracy", (double)correct / s->n_sel);
	}
	return loss;
}

/* ---- held-out evaluation -------------------------------------------------------------------- */

typedef struct MlmEval {
	double nats, uni_nats;
	long correct, uni_correct, n;
	double logp_uni[256];     /* log unigram probabilities of the training bytes (add-one) */
	int top;                  /* the most frequent training byte */
} MlmEval;

static void unigram_fit(const Dataset *ds, MlmEval *e)
{
	double count[256] = { 0 };
	if (ds->kind == DATASET_TEXT) {
		for (size_t i = 0; i < ds->text_train_len; i++)
			count[ds->text_train[i]] += 1;
	} else {
		for (int r = 0; r < ds->train.n; r++)
			for (int t = 0; t < ds->rec_train_len[r]; t++)
				count[ds->rec_train[(size_t)r * ds->record_bytes + t]] += 1;
	}
	double total = 0;
	e->top = 1;
	for (int j = 1; j < 256; j++) {
		total += count[j] + 1;
		if (count[j] > count[e->top])
			e->top = j;
	}
	e->logp_uni[0] = -INFINITY;
	for (int j = 1; j < 256; j++)
		e->logp_uni[j] = log((count[j] + 1) / total);
}

/* Score one batch of B sequences (ids), masked with rng. */
static void eval_batch(Ctx *ctx, MaskedLm *s, const int *ids, int B, Rng *rng, int *x, int *tgt,
                       int *rows, int *labels, MlmEval *e)
{
	int m = corrupt(&s->mc, rng, ids, B * s->lm.T, x, tgt, rows, labels);
	ctx_reset(ctx);
	Tensor *logits = mlm_logits(ctx, s, x, B, rows, m);
	int V = logits->shape[1];
	for (int i = 0; i < m; i++) {
		const float *l = logits->data + (size_t)i * V;
		int best = argmax_row(l, V);
		double sum = 0.0;
		for (int j = 0; j < V; j++)
			sum += exp((double)(l[j] - l[best]));
		e->nats += log(sum) + l[best] - l[labels[i]];
		e->correct += best == labels[i];
		e->uni_nats -= e->logp_uni[labels[i]];
		e->uni_correct += labels[i] == e->top;
		e->n++;
	}
}

/* Bag-of-bytes features: each record's byte frequencies (n, 256). */
static float *bag_of_bytes(const Dataset *ds, const Split *split, const int *idx, int n)
{
	float *f = eng_calloc((size_t)n * 256, sizeof *f);
	if (!f)
		return NULL;
	const uint8_t *rec = split == &ds->test ? ds->rec_test : ds->rec_train;
	const int *len = split == &ds->test ? ds->rec_test_len : ds->rec_train_len;
	for (int i = 0; i < n; i++) {
		int r = idx ? idx[i] : i;
		float *row = f + (size_t)i * 256;
		for (int t = 0; t < len[r]; t++)
			row[rec[(size_t)r * ds->record_bytes + t]] += 1.0f;
		for (int j = 0; j < 256 && len[r] > 0; j++)
			row[j] /= (float)len[r];
	}
	return f;
}

/* The baseline the masked LM's linear probe must beat: logistic regression on bag-of-bytes
 * features of the same labelled subsets (the first k per class, as the probe's default rule),
 * with the linear_probe protocol's defaults (eval_linear.c's table), so it gets the same L-BFGS
 * budget as a job's probe that does not set its own. */
static void bag_of_bytes_baseline(const Dataset *ds, const MetricSink *sink)
{
	static const double fractions[] = { 0.01, 0.1, 1.0 };
	float *xte = bag_of_bytes(ds, &ds->test, NULL, ds->test.n);
	if (!xte)
		return;
	for (int f = 0; f < 3; f++) {
		int *idx = NULL;
		char err[256];
		int n = dataset_label_subset(&ds->train, ds->num_classes, fractions[f], 0, LABELS_FIRST, 0,
		                             &idx, err, sizeof err);
		float *xtr = n > 0 ? bag_of_bytes(ds, &ds->train, idx, n) : NULL;
		int *ytr = n > 0 ? eng_malloc((size_t)n * sizeof *ytr) : NULL;
		if (xtr && ytr) {
			for (int i = 0; i < n; i++)
				ytr[i] = ds->train.y[idx[i]];
			EvalConfig cfg;
			eval_config_default(&cfg, EVAL_PROTO_LINEAR_PROBE);
			EvalResult res;
			if (eval_linear_probe_features(xtr, ytr, n, xte, ds->test.y, ds->test.n, 256,
			                               ds->num_classes, &cfg, 1, &res, err, sizeof err) == 0) {
				char key[64];
				snprintf(key, sizeof key, "bag_of_bytes_probe@%g", fractions[f]);
				metric_put(sink, key, res.test_accuracy);
			}
		}
		eng_free(xtr);
		eng_free(ytr);
		eng_free(idx);
	}
	eng_free(xte);
}

static int mlm_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	MaskedLm *s = state;
	int T = s->lm.T;
	size_t n = (size_t)EVAL_SEQS * (size_t)T;
	int *buf = eng_malloc(5 * n * sizeof *buf);
	MlmEval *e = eng_calloc(1, sizeof *e);
	if (!buf || !e) {
		eng_free(buf);
		eng_free(e);
		return -ENOMEM;
	}
	int *ids = buf, *x = buf + n, *tgt = buf + 2 * n, *rows = buf + 3 * n, *labels = buf + 4 * n;
	unigram_fit(ds, e);
	EvalMode em = eval_mode_enter(ctx);
	Rng rng;
	rng_seed(&rng, EVAL_MASK_SEED);   /* the same masks for every model and run */
	if (ds->kind == DATASET_TEXT) {
		/* non-overlapping windows of T bytes over the test text */
		for (size_t w = 0;; w += EVAL_SEQS) {
			int nw = text_windows_at(ds->text_test, ds->text_test_len, T, w, EVAL_SEQS, ids,
			                         tgt);
			if (nw <= 0)
				break;
			eval_batch(ctx, s, ids, nw, &rng, x, tgt, rows, labels, e);
			if (nw < EVAL_SEQS)
				break;
		}
	} else {
		for (int r0 = 0; r0 < ds->test.n; r0 += EVAL_SEQS) {
			int nw = ds->test.n - r0 < EVAL_SEQS ? ds->test.n - r0 : EVAL_SEQS;
			for (int i = 0; i < nw; i++)
				byte_lm_record(ds, &ds->test, r0 + i, T, ids + (size_t)i * T, NULL);
			eval_batch(ctx, s, ids, nw, &rng, x, tgt, rows, labels, e);
		}
	}
	ctx_reset(ctx);
	eval_mode_leave(ctx, em);
	if (e->n > 0) {
		metric_put(sink, "test_masked_accuracy", (double)e->correct / (double)e->n);
		metric_put(sink, "test_masked_loss", e->nats / (double)e->n);
		metric_put(sink, "unigram_accuracy", (double)e->uni_correct / (double)e->n);
		metric_put(sink, "unigram_loss", e->uni_nats / (double)e->n);
		metric_put(sink, "test_masked_bytes", (double)e->n);
	}
	eng_free(buf);
	eng_free(e);
	if (ds->kind == DATASET_TEXT_RECORDS && ds->num_classes >= 2 && ds->test.n > 0)
		bag_of_bytes_baseline(ds, sink);
	return 0;
}

const PretextMethod method_masked_lm = {
	.name = "masked_lm",
	.family = "self-predictive",
	.summary = "BERT-style masked language model on bytes: a bidirectional Transformer predicts "
	           "the original byte at mask_prob of the positions (80% masked, 10% random, 10% "
	           "kept); reports masked-byte accuracy beside the unigram baseline",
	.default_encoder = ENC_TRANSFORMER,
	.encoders = ENC_BIT(ENC_TRANSFORMER),
	.datasets = DATA_TEXT,
	.views = 1,   /* pretrains; its batches come from make_batch, not the loader */
	.default_augment = "none",
	.example = "masked-lm-fortunes.json",
	.params = masked_lm_params,
	.n_params = (int)(sizeof masked_lm_params / sizeof masked_lm_params[0]),
	.config_size = sizeof(MaskedLmConfig),
	.validate = masked_lm_validate,
	.create = mlm_create,
	.loss = mlm_loss,
	.encoder = byte_lm_encoder,
	.evaluate = mlm_evaluate,
	.make_batch = mlm_make_batch,
	.destroy = mlm_destroy,
};
