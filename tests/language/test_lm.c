/* test_lm.c - unit tests of the language-model methods (engine/methods/masked_lm.c,
 * autoregressive_lm.c) and of their path through the runner:
 *   batches:  make_batch is a function of (seed, step) alone (what exact resume needs); windows and
 *             records are what they should be; BERT corruption selects ~mask_prob of the real bytes,
 *             never the padding, and replaces them 80/10/10;
 *   kvcache:  the KV-cache step gives the logits of the full causal forward at every position,
 *             across the window refills sampling does past the context; greedy generate_text
 *             equals greedy decoding by full forwards;
 *   sampling: top_k 1 and a tiny top_p are greedy; top_k restricts and samples in proportion to
 *             the renormalised softmax; seeded runs repeat; no NUL byte is produced;
 *   pipeline: a tiny autoregressive job and a tiny masked-LM job (labelled records, linear probe)
 *             through runner_run; runner_generate answers valid UTF-8 JSON for any prompt bytes;
 *   resume:   a text job stopped at step k and resumed has the loss curve of an uninterrupted run.
 * Usage: test_lm batches | kvcache | sampling | pipeline | resume
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "data/dataset.h"
#include "layers.h"
#include "methods/method.h"
#include "ops.h"
#include "runner.h"
#include "check.h"
#include "support.h"
#include "lm_config.h"

static const char corpus[] =
	"A day for firm decisions!!!!!  Or is it?\n%\nA few hours grace before the madness begins "
	"again.\n%\nA gift of a flower will soon be made to you.\n%\nA long-forgotten loved one will "
	"appear soon.  Buy the negatives at any price.\n%\nA tall, dark stranger will have more fun than "
	"you.\n%\nAbility is a poor man's wealth.\n%\nAccent on helpful side of your nature.  Drain the "
	"moat.\n%\nAll the troubles you have will pass away very quickly.\n%\n";

/* ---- fixtures ---------------------------------------------------------------------------------- */

/* A method's config (lm_config.h) with this test's masking probability, 0.15. */
static const void *method_config(const PretextMethod *m, unsigned char *cfg)
{
	if (lm_method_config(m, cfg, 0.15) < 0)
		exit(1);
	return cfg;
}

static void text_dataset(Dataset *ds)
{
	memset(ds, 0, sizeof *ds);
	ds->kind = DATASET_TEXT;
	size_t n = sizeof corpus - 1, nt = n / 10;
	ds->text_train = (uint8_t *)corpus;
	ds->text_train_len = n - nt;
	ds->text_test = (uint8_t *)corpus + (n - nt);
	ds->text_test_len = nt;
}

/* A records dataset in memory: 6 train records of at most RB bytes, 0-padded. */
#define RB 24
static uint8_t rec_bytes[6 * RB];
static int rec_len[6];
static int rec_y[6];

static void records_dataset(Dataset *ds)
{
	static const char *const recs[6] = { "A gift of a flower.", "Buy the negatives.",
	                                     "Ability is wealth.", "Drain the moat.", "x",
	                                     "All the troubles will pass away." };
	memset(ds, 0, sizeof *ds);
	memset(rec_bytes, 0, sizeof rec_bytes);
	ds->kind = DATASET_TEXT_RECORDS;
	for (int r = 0; r < 6; r++) {
		int len = (int)strlen(recs[r]);
		if (len > RB)
			len = RB;
		memcpy(rec_bytes + r * RB, recs[r], (size_t)len);
		rec_len[r] = len;
		rec_y[r] = r % 2;
	}
	ds->record_bytes = RB;
	ds->rec_train = ds->rec_test = rec_bytes;
	ds->rec_train_len = ds->rec_test_len = rec_len;
	ds->train.n = ds->test.n = 6;
	ds->train.y = ds->test.y = rec_y;
	ds->num_classes = 2;
}

typedef struct Model {
	const PretextMethod *m;
	void *st;
	ParamSet *ps;
	EncoderConfig ec;
} Model;

static int model_new(Model *md, const char *method, const Dataset *ds, int context, int batch)
{
	memset(md, 0, sizeof *md);
	encoder_config_default(&md->ec, ENC_TRANSFORMER);
	md->ec.dim = 16;
	md->ec.depth = 2;
	md->ec.heads = 2;
	md->ec.mlp_ratio = 2;
	md->ec.context = context;
	md->ec.causal = strcmp(method, "autoregressive_lm") == 0;
	Rng rng;
	rng_seed(&rng, 21);
	md->m = method_find(method);
	_Alignas(max_align_t) unsigned char cfg[METHOD_CONFIG_MAX];
	MethodEnv env = { .encoder = &md->ec, .in_c = 1, .in_h = 1, .in_w = context, .ds = ds,
	                  .config = method_config(md->m, cfg), .rng = &rng, .total_steps = 10,
	                  .batch_size = batch };
	md->ps = paramset_new();
	char err[256];
	if (!md->m || md->m->create(&env, md->ps, &md->st, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", method, md->m ? err : "not registered");
		return -1;
	}
	return 0;
}

static void model_free(Model *md)
{
	if (md->m && md->st)
		md->m->destroy(md->st);
	paramset_free(md->ps);
}

/* ---- batches ----------------------------------------------------------------------------------- */

static void copy_batch(const Batch *b, int *out)
{
	memcpy(out, b->tokens, (size_t)b->n * b->T * sizeof(int));
}

static int same_ints(const int *a, const int *b, size_t n)
{
	return memcmp(a, b, n * sizeof(int)) == 0;
}

static void test_batches(void)
{
	char err[256];
	Dataset text, recs;
	text_dataset(&text);
	records_dataset(&recs);
	static int a[64 * 64], b2[64 * 64];

	/* the same (seed, step) gives the same batch, whatever was drawn in between */
	const char *const names[2] = { "autoregressive_lm", "masked_lm" };
	for (int mi = 0; mi < 2; mi++) {
		for (int di = 0; di < 2; di++) {
			const Dataset *ds = di ? &recs : &text;
			Model md;
			if (model_new(&md, names[mi], ds, di ? RB : 32, 8) < 0) {
				failures++;
				continue;
			}
			Batch b;
			CHECK(md.m->make_batch(md.st, ds, 5, 3, &b, err, sizeof err) == 0, "%s", err);
			size_t n = (size_t)b.n * b.T;
			CHECK(b.n == 8 && b.T == (di ? RB : 32) && b.tokens, "%s: batch %d x %d", names[mi],
			      b.n, b.T);
			copy_batch(&b, a);
			md.m->make_batch(md.st, ds, 5, 4, &b, err, sizeof err);
			md.m->make_batch(md.st, ds, 5, 100, &b, err, sizeof err);
			md.m->make_batch(md.st, ds, 5, 3, &b, err, sizeof err);
			CHECK(same_ints(a, b.tokens, n), "%s on %s: step 3 drawn twice differs", names[mi],
			      di ? "records" : "text");
			md.m->make_batch(md.st, ds, 6, 3, &b, err, sizeof err);
			copy_batch(&b, b2);
			CHECK(!same_ints(a, b2, n), "%s on %s: seeds 5 and 6 give the same batch", names[mi],
			      di ? "records" : "text");
			/* inputs are bytes of the data (corrupted ones are still bytes) */
			for (size_t i = 0; i < n; i++)
				CHECK(a[i] >= 0 && a[i] < 256, "token %d out of range", a[i]);
			model_free(&md);
		}
	}

	/* autoregressive windows: consecutive bytes of the training text */
	{
		Model md;
		if (model_new(&md, "autoregressive_lm", &text, 32, 8) == 0) {
			Batch b;
			md.m->make_batch(md.st, &text, 1, 0, &b, err, sizeof err);
			for (int i = 0; i < b.n; i++) {
				const int *w = b.tokens + (size_t)i * b.T;
				int found = 0;
				for (size_t s = 0; s + (size_t)b.T <= text.text_train_len && !found; s++) {
					int ok = 1;
					for (int t = 0; t < b.T && ok; t++)
						ok = text.text_train[s + (size_t)t] == w[t];
					found = ok;
				}
				CHECK(found, "window %d is not a substring of the training text", i);
			}
		}
		model_free(&md);
	}

	/* records: every record once per epoch (6 records, batch 2 -> 3 steps per epoch) */
	{
		Model md;
		if (model_new(&md, "autoregressive_lm", &recs, RB, 2) == 0) {
			int seen[6] = { 0 };
			for (int step = 0; step < 3; step++) {
				Batch b;
				md.m->make_batch(md.st, &recs, 9, step, &b, err, sizeof err);
				for (int i = 0; i < b.n; i++) {
					for (int r = 0; r < 6; r++) {
						int eq = 1;
						for (int t = 0; t < RB && eq; t++)
							eq = b.tokens[(size_t)i * RB + t] == rec_bytes[r * RB + t];
						seen[r] += eq;
					}
				}
			}
			for (int r = 0; r < 6; r++)
				CHECK(seen[r] == 1, "record %d seen %d times in one epoch", r, seen[r]);
		}
		model_free(&md);
	}

	/* masking statistics on a large records batch: ~15% of the real bytes, never padding,
	 * replaced 80% by the mask byte 0, ~10% randomly, ~10% kept */
	{
		Model md;
		if (model_new(&md, "masked_lm", &recs, RB, 64) == 0) {
			long real = 0, sel = 0, masked = 0, pad_sel = 0;
			for (int step = 0; step < 40; step++) {
				Batch b;
				md.m->make_batch(md.st, &recs, 2, step, &b, err, sizeof err);
				/* recover originals: records are whole, in the epoch's order; compare with each */
				for (int i = 0; i < b.n; i++) {
					const int *x = b.tokens + (size_t)i * RB;
					int best = -1, best_eq = -1;
					for (int r = 0; r < 6; r++) {
						int eq = 0;
						for (int t = 0; t < RB; t++)
							eq += x[t] == rec_bytes[r * RB + t];
						if (eq > best_eq)
							best_eq = eq, best = r;
					}
					const uint8_t *orig = rec_bytes + best * RB;
					for (int t = 0; t < RB; t++) {
						if (t >= rec_len[best]) {
							pad_sel += x[t] != 0;
							continue;
						}
						real++;
						if (x[t] == 0) {
							masked++;
							sel++;
						} else if (x[t] != orig[t]) {
							sel++;
						}
					}
				}
			}
			/* selected-and-changed = 15% * (80% + ~10% * 255/256) */
			double changed = (double)sel / real, mask_share = (double)masked / real;
			CHECK(fabs(mask_share - 0.15 * 0.8) < 0.02, "mask byte at %.3f of real bytes, "
			      "expected 0.12", mask_share);
			CHECK(fabs(changed - 0.15 * 0.9) < 0.025, "changed bytes %.3f, expected ~0.135",
			      changed);
			CHECK(pad_sel == 0, "%ld padding positions were corrupted", pad_sel);
			printf("masking: %ld real bytes, %.3f masked, %.3f changed, 0 padding touched\n", real,
			       mask_share, changed);
		}
		model_free(&md);
	}
}

/* ---- KV cache == full forward -------------------------------------------------------------------- */

/* logits (V) of the last row of transformer_forward over win[0..n) through the tied head */
static void full_logits(Ctx *ctx, const Transformer *tf, const int *win, int n, float *out)
{
	ctx_reset(ctx);
	Tensor *h = transformer_forward(ctx, tf, win, 1, n);              // (1,n,D)
	const float *row = h->data + (size_t)(n - 1) * tf->dim;
	for (int j = 0; j < tf->vocab; j++) {
		double a = 0;
		for (int d = 0; d < tf->dim; d++)
			a += row[d] * tf->wte.weight->data[(size_t)j * tf->dim + d];
		out[j] = (float)a;
	}
}

static void head_logits(const Transformer *tf, const float *h, float *out)
{
	for (int j = 0; j < tf->vocab; j++) {
		double a = 0;
		for (int d = 0; d < tf->dim; d++)
			a += h[d] * tf->wte.weight->data[(size_t)j * tf->dim + d];
		out[j] = (float)a;
	}
}

static int argmax_nonzero(const float *l, int V, float *gap)
{
	int best = 1, second = 2;
	if (l[2] > l[1])
		best = 2, second = 1;
	for (int j = 3; j < V; j++) {
		if (l[j] > l[best])
			second = best, best = j;
		else if (l[j] > l[second])
			second = j;
	}
	*gap = l[best] - l[second];
	return best;
}

static void test_kvcache(void)
{
	Dataset text;
	text_dataset(&text);
	Model md;
	const int C = 16, N = 50;
	if (model_new(&md, "autoregressive_lm", &text, C, 4) < 0) {
		failures++;
		return;
	}
	Encoder *enc = md.m->encoder(md.st);
	Transformer *tf = encoder_transformer(enc);
	/* spread the logits so greedy decisions are far from ties */
	Rng rng;
	rng_seed(&rng, 3);
	for (size_t i = 0; i < tf->wte.weight->size; i++)
		tf->wte.weight->data[i] += rng_normal(&rng) * 0.5f;
	Ctx *ctx = ctx_new(1);
	ctx_set_training(ctx, 0);
	ctx_set_grad_enabled(ctx, 0);

	/* 1. step-by-step logits == full-forward logits, through two refills (the method's rule:
	 *    when the window is full keep its last C/2 - 1 bytes, then append) */
	KVCache kv;
	CHECK(kvcache_init(&kv, tf, 1) == 0, "kvcache_init");
	int win[64], n = 0, keep = C / 2;
	float lc[256], lf[256];
	double worst = 0;
	const char *src = "The quick brown fox jumps over the lazy dog; pack my box with five dozen.";
	for (int i = 0; i < N; i++) {
		int tok = (uint8_t)src[i];
		ctx_reset(ctx);
		Tensor *h;
		if (n == C) {
			memmove(win, win + n - (keep - 1), (size_t)(keep - 1) * sizeof *win);
			n = keep - 1;
			win[n++] = tok;
			kvcache_clear(&kv);
			h = NULL;
			for (int j = 0; j < n; j++)
				h = transformer_step_cached(ctx, tf, &kv, &win[j], 1);
		} else {
			win[n++] = tok;
			h = transformer_step_cached(ctx, tf, &kv, &tok, 1);
		}
		CHECK(h != NULL, "step_cached returned NULL at %d", i);
		if (!h)
			break;
		head_logits(tf, h->data, lc);
		full_logits(ctx, tf, win, n, lf);
		for (int j = 0; j < tf->vocab; j++)
			worst = fmax(worst, fabs(lc[j] - lf[j]));
	}
	CHECK(worst < 1e-4, "KV-cache logits differ from the full forward by %g", worst);
	printf("kv cache: %d positions (context %d, 2 refills), max |logit difference| %.2e\n", N, C,
	       worst);
	kvcache_close(&kv);

	/* 2. greedy generate_text == greedy decoding by full forwards over the same windows */
	const char *prompt = "Fortune favours";
	int plen = (int)strlen(prompt);
	uint8_t out[64];
	int out_len = 0;
	char err[256];
	Rng srng;
	rng_seed(&srng, 1);
	CHECK(md.m->generate_text(md.st, ctx, (const uint8_t *)prompt, plen, 40, 0.0f, 0, 1.0f, &srng,
	                          out, &out_len, err, sizeof err) == 0, "generate: %s", err);
	CHECK(out_len == 40, "generated %d bytes, asked 40", out_len);
	n = 0;
	for (int i = 0; i < plen; i++)
		win[n++] = (uint8_t)prompt[i];
	float min_gap = 1e9f;
	int agree = 1;
	for (int g = 0; g < out_len && agree; g++) {
		full_logits(ctx, tf, win, n, lf);
		float gap;
		int tok = argmax_nonzero(lf, tf->vocab, &gap);
		min_gap = fminf(min_gap, gap);
		if (tok != out[g]) {
			CHECK(0, "greedy byte %d: generate_text %d, full forward %d (logit gap %g)", g, out[g],
			      tok, gap);
			agree = 0;
		}
		if (n == C) {
			memmove(win, win + n - (keep - 1), (size_t)(keep - 1) * sizeof *win);
			n = keep - 1;
		}
		win[n++] = tok;
	}
	printf("greedy generate_text == full-forward greedy over %d bytes (smallest logit gap %.3g)\n",
	       out_len, min_gap);
	ctx_free(ctx);
	model_free(&md);
}

/* ---- sampling ---------------------------------------------------------------------------------- */

static void test_sampling(void)
{
	Dataset text;
	text_dataset(&text);
	Model md;
	if (model_new(&md, "autoregressive_lm", &text, 16, 4) < 0) {
		failures++;
		return;
	}
	Transformer *tf = encoder_transformer(md.m->encoder(md.st));
	Rng rng;
	rng_seed(&rng, 4);
	for (size_t i = 0; i < tf->wte.weight->size; i++)
		tf->wte.weight->data[i] += rng_normal(&rng) * 0.3f;
	Ctx *ctx = ctx_new(1);
	char err[256];
	const uint8_t *p = (const uint8_t *)"Luck";
	uint8_t g[80], a[80], b[80];
	int ng, na, nb;
	Rng r1;

	rng_seed(&r1, 1);
	md.m->generate_text(md.st, ctx, p, 4, 60, 0.0f, 0, 1.0f, &r1, g, &ng, err, sizeof err);
	rng_seed(&r1, 2);
	md.m->generate_text(md.st, ctx, p, 4, 60, 1.0f, 1, 1.0f, &r1, a, &na, err, sizeof err);
	CHECK(na == ng && memcmp(a, g, (size_t)ng) == 0, "top_k 1 is not greedy");
	rng_seed(&r1, 3);
	md.m->generate_text(md.st, ctx, p, 4, 60, 1.0f, 0, 1e-6f, &r1, a, &na, err, sizeof err);
	CHECK(na == ng && memcmp(a, g, (size_t)ng) == 0, "top_p 1e-6 is not greedy");

	/* seeded sampling repeats; another seed differs; no NUL byte ever */
	rng_seed(&r1, 7);
	md.m->generate_text(md.st, ctx, p, 4, 60, 1.0f, 0, 1.0f, &r1, a, &na, err, sizeof err);
	rng_seed(&r1, 7);
	md.m->generate_text(md.st, ctx, p, 4, 60, 1.0f, 0, 1.0f, &r1, b, &nb, err, sizeof err);
	CHECK(na == 60 && nb == 60 && memcmp(a, b, 60) == 0, "the same seed sampled differently");
	rng_seed(&r1, 8);
	md.m->generate_text(md.st, ctx, p, 4, 60, 1.0f, 0, 1.0f, &r1, b, &nb, err, sizeof err);
	CHECK(memcmp(a, b, 60) != 0, "seeds 7 and 8 sampled the same 60 bytes");
	CHECK(memchr(a, 0, 60) == NULL && memchr(b, 0, 60) == NULL, "a NUL byte was sampled");

	/* empty prompt and a prompt longer than the context */
	rng_seed(&r1, 9);
	CHECK(md.m->generate_text(md.st, ctx, p, 0, 20, 0.8f, 40, 0.9f, &r1, a, &na, err,
	                          sizeof err) == 0 && na == 20, "empty prompt: %s", err);
	const char *longp = "a prompt much longer than the sixteen bytes of context";
	CHECK(md.m->generate_text(md.st, ctx, (const uint8_t *)longp, (int)strlen(longp), 20, 0.8f, 0,
	                          1.0f, &r1, a, &na, err, sizeof err) == 0 && na == 20,
	      "long prompt: %s", err);

	/* top_k 3 at temperature 0.7: the first byte is always one of the 3 most likely, drawn in
	 * proportion to their renormalised probabilities (chi-square over 3000 draws) */
	KVCache kv;
	kvcache_init(&kv, tf, 1);
	ctx_set_grad_enabled(ctx, 0);
	ctx_reset(ctx);
	Tensor *h = NULL;
	for (int i = 0; i < 4; i++) {
		int t = p[i];
		h = transformer_step_cached(ctx, tf, &kv, &t, 1);
	}
	float l[256];
	head_logits(tf, h->data, l);
	kvcache_close(&kv);
	int top[3] = { -1, -1, -1 };
	for (int k = 0; k < 3; k++) {
		for (int j = 1; j < 256; j++) {
			if (j == top[0] || j == top[1])
				continue;
			if (top[k] < 0 || l[j] > l[top[k]])
				top[k] = j;
		}
	}
	double pr[3], z = 0;
	for (int k = 0; k < 3; k++)
		z += pr[k] = exp((l[top[k]] - l[top[0]]) / 0.7);
	int count[3] = { 0 }, outside = 0;
	const int draws = 3000;
	for (int d = 0; d < draws; d++) {
		rng_seed(&r1, 1000 + (uint64_t)d);
		md.m->generate_text(md.st, ctx, p, 4, 1, 0.7f, 3, 1.0f, &r1, a, &na, err, sizeof err);
		int k = a[0] == top[0] ? 0 : a[0] == top[1] ? 1 : a[0] == top[2] ? 2 : -1;
		if (k < 0)
			outside++;
		else
			count[k]++;
	}
	double chi = 0;
	for (int k = 0; k < 3; k++) {
		double e = draws * pr[k] / z;
		chi += (count[k] - e) * (count[k] - e) / e;
	}
	CHECK(outside == 0, "%d draws outside the top 3", outside);
	CHECK(chi < 13.8, "top-k draws %d/%d/%d do not follow p = %.3f/%.3f/%.3f (chi2 %.1f, 2 dof)",
	      count[0], count[1], count[2], pr[0] / z, pr[1] / z, pr[2] / z, chi);
	printf("sampling: top-k 3 draws %d/%d/%d for p %.3f/%.3f/%.3f (chi2 %.2f)\n", count[0],
	       count[1], count[2], pr[0] / z, pr[1] / z, pr[2] / z, chi);
	ctx_free(ctx);
	model_free(&md);
}

/* ---- through the runner ------------------------------------------------------------------------ */

/* scratch directories (support.h) */
static char *make_dir(void) { return test_tmpdir("lm"); }
static void rm_dir(const char *d) { test_rmtree(d); }

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* 1 when s[0..n) is valid UTF-8 */
static int valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
		          : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (!len || i + (size_t)len > n)
			return 0;
		for (int k = 1; k < len; k++)
			if ((s[i + (size_t)k] & 0xc0) != 0x80)
				return 0;
		if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) ||
		    (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] > 0x8f))
			return 0;
		i += (size_t)len;
	}
	return 1;
}

static double pretext_metric(const char *results, const char *key)
{
	cJSON *r = cJSON_Parse(results);
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "pretext"), key);
	double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	cJSON_Delete(r);
	return x;
}

static void test_pipeline(void)
{
	char *dir = make_dir();
	if (!dir) {
		failures++;
		return;
	}
	char path[1024], spec[4096], err[1024];
	/* a text file with multi-byte UTF-8, so sampled bytes can split characters */
	snprintf(path, sizeof path, "%s/text.txt", dir);
	char text[8192] = "";
	for (int i = 0; i < 12; i++)
		strcat(text, "Ce n'est pas la fortune, c'est l'été \xc3\xa0 Z\xc3\xbcrich \xe2\x82\xac.\n");
	strcat(text, corpus);
	CHECK(write_file(path, text) == 0, "cannot write %s", path);
	snprintf(spec, sizeof spec,
	         "{\"name\":\"lm-pipe\",\"method\":\"autoregressive_lm\","
	         "\"dataset\":{\"format\":\"text\",\"files\":[\"%s\"]},"
	         "\"model\":{\"encoder\":\"transformer\",\"dim\":16,\"depth\":1,\"heads\":2,"
	         "\"context\":32},"
	         "\"pretrain\":{\"max_steps\":8,\"batch_size\":4},\"seed\":3,\"threads\":1}", path);
	char *results = NULL;
	char job[512];
	snprintf(job, sizeof job, "%s/ar", dir);
	CHECK(mkdir(job, 0700) == 0, "mkdir %s", job);
	int rc = runner_run(spec, job, NULL, NULL, &results, err, sizeof err);
	CHECK(rc == 0, "autoregressive job failed: %s", err);
	if (rc == 0) {
		double bpb = pretext_metric(results, "test_bits_per_byte");
		CHECK(bpb > 0 && bpb < 9, "test_bits_per_byte %g", bpb);
		CHECK(pretext_metric(results, "steps") == 8, "steps");
		printf("autoregressive job: 8 steps, test %.3f bits per byte\n", bpb);
		/* generation: prompts of any bytes come back as valid UTF-8 JSON */
		const char *prompts[3] = { "Ce n'est pas", "\xff\xfe broken \xc3", "" };
		for (int i = 0; i < 3; i++) {
			GenerateRequest req = { .prompt = prompts[i], .max_tokens = 120, .temperature = 1.5f,
			                        .top_p = 1.0f, .seed = (uint64_t)i };
			char *out = NULL;
			rc = runner_generate(spec, job, &req, &out, err, sizeof err);
			CHECK(rc == 0 && out, "generate: %s", err);
			if (!out)
				continue;
			CHECK(valid_utf8((const unsigned char *)out, strlen(out)), "generate answered "
			      "invalid UTF-8: %s", out);
			cJSON *o = cJSON_Parse(out);
			const cJSON *t = cJSON_GetObjectItem(o, "text");
			const cJSON *n = cJSON_GetObjectItem(o, "tokens");
			CHECK(cJSON_IsString(t) && cJSON_IsNumber(n) && n->valueint == 120,
			      "generate result %s", out);
			printf("generate (prompt %d): %.100s...\n", i, out);
			cJSON_Delete(o);
			free(out);
		}
	}
	free(results);
	results = NULL;

	/* masked LM on labelled records (two "fortune" files) with a linear probe */
	char rdir[512];
	snprintf(rdir, sizeof rdir, "%s/records", dir);
	CHECK(mkdir(rdir, 0700) == 0, "mkdir %s", rdir);
	char a[8192] = "", b[8192] = "";
	for (int i = 0; i < 30; i++) {
		char rec[160];
		snprintf(rec, sizeof rec, "The cat number %d sat on the mat and purred.\n%%\n", i);
		strcat(a, rec);
		snprintf(rec, sizeof rec, "SELECT %d FROM t WHERE x > %d; -- queries\n%%\n", i, i * 7);
		strcat(b, rec);
	}
	snprintf(path, sizeof path, "%s/cats", rdir);
	write_file(path, a);
	snprintf(path, sizeof path, "%s/sql", rdir);
	write_file(path, b);
	snprintf(spec, sizeof spec,
	         "{\"name\":\"mlm-pipe\",\"method\":\"masked_lm\","
	         "\"dataset\":{\"format\":\"text_records\",\"dir\":\"%s\",\"record_bytes\":48},"
	         "\"model\":{\"encoder\":\"transformer\",\"dim\":16,\"depth\":1,\"heads\":2,"
	         "\"context\":48},"
	         "\"pretrain\":{\"max_steps\":6,\"batch_size\":8},"
	         "\"evaluations\":[{\"protocol\":\"linear_probe\",\"label_fractions\":[1.0]}],"
	         "\"seed\":3,\"threads\":1}", rdir);
	snprintf(job, sizeof job, "%s/mlm", dir);
	mkdir(job, 0700);
	rc = runner_run(spec, job, NULL, NULL, &results, err, sizeof err);
	CHECK(rc == 0, "masked-LM job failed: %s", err);
	if (rc == 0) {
		double acc = pretext_metric(results, "test_masked_accuracy");
		double uni = pretext_metric(results, "unigram_accuracy");
		double bob = pretext_metric(results, "bag_of_bytes_probe@1");
		CHECK(acc >= 0 && acc <= 1, "test_masked_accuracy %g", acc);
		CHECK(uni >= 0 && uni <= 1, "unigram_accuracy %g", uni);
		CHECK(bob > 0.9, "bag-of-bytes probe on cats vs SQL: %g", bob);
		cJSON *r = cJSON_Parse(results);
		const cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "evaluations"), 0);
		const cJSON *ta = cJSON_GetObjectItem(e0, "test_accuracy");
		CHECK(cJSON_IsNumber(ta), "no linear-probe accuracy in %s", results);
		printf("masked-LM job: masked accuracy %.3f (unigram %.3f), bag-of-bytes probe %.3f, "
		       "encoder probe %.3f\n", acc, uni, bob, cJSON_IsNumber(ta) ? ta->valuedouble : NAN);
		cJSON_Delete(r);
	}
	free(results);
	rm_dir(dir);
	free(dir);
}

/* ---- resume ------------------------------------------------------------------------------------ */

#define MAX_STEPS 64

typedef struct Capture {
	double loss[MAX_STEPS];
	int64_t stop_at, seen;
} Capture;

static void on_metric(void *user, int64_t step, const char *key, double v)
{
	Capture *c = user;
	if (strcmp(key, "loss") == 0 && step >= 1 && step <= MAX_STEPS) {
		c->loss[step - 1] = v;
		c->seen = step;
	}
}

static int should_stop(void *user)
{
	Capture *c = user;
	return c->stop_at > 0 && c->seen >= c->stop_at ? RUNNER_STOP_REQUEUE : RUNNER_CONTINUE;
}

static void test_resume(void)
{
	char *dir = make_dir();
	if (!dir) {
		failures++;
		return;
	}
	char path[1024], spec[4096], err[1024];
	snprintf(path, sizeof path, "%s/text.txt", dir);
	write_file(path, corpus);
	const char *methods[2] = { "autoregressive_lm", "masked_lm" };
	for (int mi = 0; mi < 2; mi++) {
		snprintf(spec, sizeof spec,
		         "{\"name\":\"lm-resume\",\"method\":\"%s\","
		         "\"dataset\":{\"format\":\"text\",\"files\":[\"%s\"]},"
		         "\"model\":{\"encoder\":\"transformer\",\"dim\":16,\"depth\":1,\"heads\":2,"
		         "\"context\":24,\"dropout\":0.1},"
		         "\"pretrain\":{\"max_steps\":12,\"batch_size\":4},\"seed\":5,\"threads\":1}",
		         methods[mi], path);
		Capture straight = { .stop_at = 0 }, split = { .stop_at = 5 };
		char ja[512], jb[512];
		snprintf(ja, sizeof ja, "%s/%s-a", dir, methods[mi]);
		snprintf(jb, sizeof jb, "%s/%s-b", dir, methods[mi]);
		mkdir(ja, 0700);
		mkdir(jb, 0700);
		RunnerHooks ha = { .user = &straight, .on_metric = on_metric, .should_stop = should_stop };
		RunnerHooks hb = { .user = &split, .on_metric = on_metric, .should_stop = should_stop };
		char *res = NULL;
		CHECK(runner_run(spec, ja, &ha, NULL, &res, err, sizeof err) == 0, "%s", err);
		free(res);
		res = NULL;
		int rc = runner_run(spec, jb, &hb, NULL, &res, err, sizeof err);
		CHECK(rc == RUNNER_STOPPED, "%s: expected a requeue stop, got %d (%s)", methods[mi], rc,
		      err);
		free(res);
		res = NULL;
		split.stop_at = 0;
		CHECK(runner_run(spec, jb, &hb, NULL, &res, err, sizeof err) == 0, "%s", err);
		free(res);
		int same = straight.seen == 12 && split.seen == 12;
		for (int s = 0; s < 12 && same; s++)
			same = straight.loss[s] == split.loss[s];
		CHECK(same, "%s: resumed loss curve differs (step %d: %.9g vs %.9g)", methods[mi], 11,
		      straight.loss[11], split.loss[11]);
		printf("%s: stopped at step 5, resumed, 12 losses identical to an uninterrupted run: %s\n",
		       methods[mi], same ? "yes" : "no");
	}
	rm_dir(dir);
	free(dir);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_lm batches|kvcache|sampling|pipeline|resume\n");
		return 2;
	}
	eng_set_threads(1);
	if (strcmp(argv[1], "batches") == 0)
		test_batches();
	else if (strcmp(argv[1], "kvcache") == 0)
		test_kvcache();
	else if (strcmp(argv[1], "sampling") == 0)
		test_sampling();
	else if (strcmp(argv[1], "pipeline") == 0)
		test_pipeline();
	else if (strcmp(argv[1], "resume") == 0)
		test_resume();
	else {
		fprintf(stderr, "unknown test %s\n", argv[1]);
		return 2;
	}
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
