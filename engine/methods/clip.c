/* clip.c - CLIP (Radford et al. 2021) at Fashion-MNIST scale: an image encoder (the job's encoder)
 * and a text encoder map image-caption pairs into one embedding space; a symmetric InfoNCE over
 * the batch's image-text similarity matrix (images -> captions and captions -> images) with a
 * learnable temperature, stored as logit_scale = log(1/T), initialised to log(1/0.07) and clamped
 * to at most log(max_logit_scale) after every step (as CLIP does).
 *
 * The text encoder is a bag of hashed byte n-grams, not a Transformer: every word of the lowercased
 * caption contributes one word token and the byte trigrams of "<word>" (boundary-marked), each
 * hashed (FNV-1a) into text_buckets embedding rows; the rows are averaged, then an MLP
 * (text_dim -> text_dim -> embed_dim, ReLU) projects them. Trigrams let an unseen inflection
 * ("sneakers") share rows with a seen one.
 *
 * Zero-shot classification (the `evaluate` hook, on the labelled test split): each class gets the
 * mean embedding of prompts "a photo of a {class}." ... built from prompt templates that are held
 * out from training - a template whose text before the class slot starts any training caption
 * counts as seen and is skipped (if every template is seen, all are used and
 * "zero_shot_held_out_templates" reports 0). Reports "zero_shot_accuracy".
 *
 * Captions come from the dataset (DATASET_CAPTIONS: ds->captions[i] belongs to training image i;
 * tools/make_captions.py writes a synthetic caption file). Data, optimizer and schedule belong to
 * the runner.
 */
#include "method.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../layers.h"
#include "../ops.h"
#include "decoder.h"
#include "ssl_health.h"

#define CLIP_MAX_TOKENS 96       /* tokens per caption (longer captions are truncated) */
#define CLIP_ZS_BATCH 500        /* test images per zero-shot forward */

/* Zero-shot prompt templates ("{}" = class name; "a {}" becomes "an {}" before a vowel). Chosen
 * from CLIP's ImageNet prompt list; tools/make_captions.py never uses the word "photo". */
static const char *const zs_templates[] = {
	"a photo of a {}.",
	"a photo of the {}.",
	"a black and white photo of a {}.",
	"a low resolution photo of a {}.",
	"a blurry photo of a {}.",
	"a close-up photo of a {}.",
	"a cropped photo of the {}.",
	"a photo of one {}.",
};
#define N_TEMPLATES ((int)(sizeof zs_templates / sizeof zs_templates[0]))

typedef struct ClipConfig {
	int embed_dim;
	int text_dim;
	int text_buckets;
	double temperature_init;
	double max_logit_scale;
	SslHealthConfig health;
} ClipConfig;
METHOD_CONFIG_FITS(ClipConfig);

static const ParamDef clip_params[] = {
	{ "embed_dim", PARAM_INTEGER, .def = 128, .min = 2, .max = 4096,
	  .help = "size of the shared image-text embedding space", PARAM_AT(ClipConfig, embed_dim) },
	{ "text_dim", PARAM_INTEGER, .def = 256, .min = 2, .max = 4096,
	  .help = "width of the text encoder (n-gram embeddings and its hidden layer)",
	  PARAM_AT(ClipConfig, text_dim) },
	{ "text_buckets", PARAM_INTEGER, .def = 8192, .min = 16, .max = 1048576,
	  .help = "hash buckets for the caption's words and byte trigrams",
	  PARAM_AT(ClipConfig, text_buckets) },
	{ "temperature_init", PARAM_NUMBER, .def = 0.07, .min = 0, .max = 10,
	  .flags = PARAM_MIN_EXCLUSIVE,
	  .help = "initial temperature T (learned as logit_scale = log(1/T))",
	  PARAM_AT(ClipConfig, temperature_init) },
	{ "max_logit_scale", PARAM_NUMBER, .def = 100, .min = 1, .max = 10000,
	  .help = "clamp on 1/T after every step", PARAM_AT(ClipConfig, max_logit_scale) },
	SSL_HEALTH_PARAMS(ClipConfig, health),
};

typedef struct Clip {
	Encoder *encoder;
	Linear img_proj;             /* (E,F), no bias */
	Embedding text_emb;          /* (V,Dt) */
	Linear text_fc1, text_fc2;   /* Dt -> Dt -> E */
	Tensor *logit_scale;         /* (1) log(1/T) */
	int buckets, E;
	float max_logit_scale;       /* log(max) */
	int cap;                     /* texts a forward can take */
	int *ids;                    /* (cap, CLIP_MAX_TOKENS) */
	float *w;                    /* (cap, CLIP_MAX_TOKENS) 1/count or 0 */
	const char **texts;          /* (cap) this forward's captions (borrowed) */
	const Dataset *ds;           /* captions of the training images (borrowed, outlives us) */
	SslMonitor *health;
} Clip;

/* ---------------------------------------------------------------------------------------------- */
/* Text: hashed byte n-grams                                                                      */

static uint32_t fnv1a(uint32_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* Token ids of one caption into ids (max entries); returns the count (>= 1: an empty caption
 * gets one id for the empty string). */
static int clip_tokenize(const char *text, int buckets, int *ids, int max)
{
	char word[64 + 2];
	int n = 0;
	const char *p = text;
	while (*p && n < max) {
		while (*p && !isalnum((unsigned char)*p))
			p++;
		int len = 0;
		while (isalnum((unsigned char)*p)) {
			if (len < 64)
				word[1 + len++] = (char)tolower((unsigned char)*p);
			p++;
		}
		if (len == 0)
			break;
		ids[n++] = (int)(fnv1a(2166136261u ^ 0x77u, word + 1, (size_t)len) % (uint32_t)buckets);
		word[0] = '<';
		word[len + 1] = '>';
		for (int i = 0; i + 3 <= len + 2 && n < max; i++)
			ids[n++] = (int)(fnv1a(2166136261u, word + i, 3) % (uint32_t)buckets);
	}
	if (n == 0)
		ids[n++] = (int)(fnv1a(2166136261u, "", 0) % (uint32_t)buckets);
	return n;
}

/* texts[0..n) -> embeddings (n,E), not normalised. */
static Tensor *clip_text_forward(Ctx *ctx, Clip *s, const char *const *texts, int n)
{
	const int L = CLIP_MAX_TOKENS;
	for (int i = 0; i < n; i++) {
		int *id = s->ids + (size_t)i * L;
		float *w = s->w + (size_t)i * L;
		int c = clip_tokenize(texts[i] ? texts[i] : "", s->buckets, id, L);
		for (int j = 0; j < L; j++) {
			w[j] = j < c ? 1.0f / (float)c : 0.0f;
			if (j >= c)
				id[j] = 0;
		}
	}
	int Dt = s->text_emb.d;
	Tensor *e = embedding_forward(ctx, &s->text_emb, s->ids, n * L);      /* (n*L,Dt) */
	e = op_reshape(ctx, e, 3, (int[]){ n, L, Dt });
	Tensor *w = ctx_wrap(ctx, s->w, 3, (int[]){ n, L, 1 });
	Tensor *pooled = op_sum(ctx, op_mul(ctx, e, w), 1, 0);                 /* (n,Dt) */
	Tensor *h = op_relu(ctx, linear_forward(ctx, &s->text_fc1, pooled));
	return linear_forward(ctx, &s->text_fc2, h);                           /* (n,E) */
}

/* ---------------------------------------------------------------------------------------------- */
/* Loss                                                                                           */

// img, txt (N,E) unit rows, logit_scale (1) = log(1/T) -> mean of the image->text and
// text->image InfoNCE (targets on the diagonal)
Tensor *clip_loss(Ctx *ctx, Tensor *img, Tensor *txt, Tensor *logit_scale)
{
	Tensor *inv_t = op_exp(ctx, logit_scale);
	Tensor *a = op_infonce(ctx, img, txt, NULL, 1.0f, inv_t);
	Tensor *b = op_infonce(ctx, txt, img, NULL, 1.0f, inv_t);
	return op_scale(ctx, op_add(ctx, a, b), 0.5f);
}

static void clip_destroy(void *state)
{
	Clip *s = state;
	if (!s)
		return;
	encoder_free(s->encoder);
	ssl_monitor_free(s->health);
	eng_free(s->ids);
	eng_free(s->w);
	eng_free(s->texts);
	eng_free(s);
}

static int clip_create(const MethodEnv *env, ParamSet *ps, void **state, char *err, size_t errlen)
{
	if (!env->ds || !env->ds->captions || env->ds->n_captions < env->ds->train.n) {
		snprintf(err, errlen, "clip: the dataset has no captions (use dataset.format \"captions\")");
		return -1;
	}
	Clip *s = eng_calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "clip: out of memory");
		return -1;
	}
	s->ds = env->ds;
	const ClipConfig *cfg = env->config;
	s->E = cfg->embed_dim;
	s->buckets = cfg->text_buckets;
	int Dt = cfg->text_dim;
	double t0 = cfg->temperature_init;
	s->max_logit_scale = (float)log(cfg->max_logit_scale);
	int rc = encoder_new(env->encoder, ps, "encoder", env->in_c, env->in_h, env->in_w, env->rng,
	                     &s->encoder, err, errlen);
	if (rc < 0)
		goto fail;
	rc = -1;
	if (linear_init(&s->img_proj, ps, "img_proj", encoder_out_dim(s->encoder), s->E, 0,
	                env->rng) < 0 ||
	    embedding_init(&s->text_emb, ps, "text.embed", s->buckets, Dt, 0.02f, env->rng) < 0 ||
	    linear_init(&s->text_fc1, ps, "text.fc1", Dt, Dt, 1, env->rng) < 0 ||
	    linear_init(&s->text_fc2, ps, "text.fc2", Dt, s->E, 1, env->rng) < 0) {
		snprintf(err, errlen, "clip: cannot build the projections (embed_dim %d, text_dim %d)",
		         s->E, Dt);
		goto fail;
	}
	s->logit_scale = paramset_add(ps, "logit_scale", 1, (int[]){ 1 }, 0);
	if (!s->logit_scale) {
		snprintf(err, errlen, "clip: cannot add logit_scale");
		goto fail;
	}
	s->logit_scale->data[0] = (float)log(1.0 / t0);
	s->cap = env->batch_size > 16 * N_TEMPLATES ? env->batch_size : 16 * N_TEMPLATES;
	s->ids = eng_malloc((size_t)s->cap * CLIP_MAX_TOKENS * sizeof(int));
	s->w = eng_malloc((size_t)s->cap * CLIP_MAX_TOKENS * sizeof(float));
	s->texts = eng_malloc((size_t)s->cap * sizeof(char *));
	if (!s->ids || !s->w || !s->texts ||
	    ssl_monitor_new(s->cap, s->E, cfg->health.health_every, &s->health) < 0) {
		snprintf(err, errlen, "clip: out of memory");
		goto fail;
	}
	*state = s;
	return 0;
fail:
	clip_destroy(s);
	return rc;
}

/* views[0] (B,C,H,W) with batch->idx naming the training images -> symmetric InfoNCE. */
static Tensor *clip_step_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                              const MetricSink *sink)
{
	Clip *s = state;
	Tensor *x = views[0];
	int B = x->shape[0];
	if (B > s->cap) {   /* never with the runner's batches; keep the buffers in bounds anyway */
		B = s->cap;
		x = op_slice(ctx, x, 0, 0, B);
	}
	for (int i = 0; i < B; i++) {
		int k = batch->idx[i];
		s->texts[i] = k >= 0 && k < s->ds->n_captions ? s->ds->captions[k] : "";
	}
	Tensor *img = op_l2_normalize(
		ctx, linear_forward(ctx, &s->img_proj, encoder_forward(ctx, s->encoder, x)), 1e-12f);
	Tensor *txt = op_l2_normalize(ctx, clip_text_forward(ctx, s, s->texts, B), 1e-12f);
	Tensor *loss = clip_loss(ctx, img, txt, s->logit_scale);          /* img, txt (B,E) */
	if (sink) {
		if (ssl_monitor_observe(s->health, img->data, txt->data, B, sink))
			metric_put(sink, "logit_scale", exp(s->logit_scale->data[0]));
	}
	return loss;
}

/* CLIP's clamp: 1/T never exceeds max_logit_scale. */
static void clip_after_step(void *state, int64_t step, int64_t total_steps)
{
	Clip *s = state;
	if (s->logit_scale->data[0] > s->max_logit_scale)
		s->logit_scale->data[0] = s->max_logit_scale;
	(void)step;
	(void)total_steps;
}

/* ---------------------------------------------------------------------------------------------- */
/* Zero-shot classification                                                                       */

/* Fill template t with a class name into out ("a {}" -> "an {}" before a vowel). */
static void fill_template(const char *t, const char *name, char *out, size_t cap)
{
	const char *slot = strstr(t, "{}");
	size_t pre = (size_t)(slot - t);
	int an = pre >= 2 && strncmp(slot - 2, "a ", 2) == 0 && (pre == 2 || slot[-3] == ' ') &&
	         strchr("aeiou", name[0]) != NULL;
	snprintf(out, cap, "%.*s%s%s%s", (int)(an ? pre - 1 : pre), t, an ? "n " : "", name,
	         slot + 2);
}

/* Does any training caption start with the template's text before its class slot? */
static int template_seen(const Dataset *ds, const char *t)
{
	size_t pre = (size_t)(strstr(t, "{}") - t);
	if (pre >= 2 && strncmp(t + pre - 2, "a ", 2) == 0)
		pre--;   /* "a photo of a" also covers "a photo of an" */
	for (int i = 0; i < ds->n_captions; i++)
		if (ds->captions[i] && strncasecmp(ds->captions[i], t, pre) == 0)
			return 1;
	return 0;
}

static int clip_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Clip *s = state;
	int C = ds->num_classes, E = s->E;
	if (C < 2 || !ds->class_names || ds->test.n == 0 || !ds->test.y)
		return 0;
	if (C > 16)
		C = 16;   /* the prompt buffer holds 16 classes x all templates */
	int use[N_TEMPLATES], nt = 0;
	for (int t = 0; t < N_TEMPLATES; t++)
		if (!template_seen(ds, zs_templates[t]))
			use[nt++] = t;
	int held_out = nt;
	if (nt == 0)
		for (int t = 0; t < N_TEMPLATES; t++)
			use[nt++] = t;
	EvalMode em = eval_mode_enter(ctx);
	float *cls = eng_calloc((size_t)C * E, sizeof(float));
	char *prompts = eng_malloc((size_t)C * nt * 128);
	int rc = -1;
	if (!cls || !prompts)
		goto out;
	/* Class embeddings: the normalised mean of the normalised prompt embeddings. */
	ctx_reset(ctx);
	for (int c = 0; c < C; c++) {
		char name[64];
		snprintf(name, sizeof name, "%s", ds->class_names[c]);
		for (char *q = name; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		for (int t = 0; t < nt; t++) {
			char *dst = prompts + ((size_t)c * nt + t) * 128;
			fill_template(zs_templates[use[t]], name, dst, 128);
			s->texts[c * nt + t] = dst;
		}
	}
	Tensor *pe = op_l2_normalize(ctx, clip_text_forward(ctx, s, s->texts, C * nt), 1e-12f);
	for (int c = 0; c < C; c++) {
		double nn = 0;
		for (int j = 0; j < E; j++) {
			double v = 0;
			for (int t = 0; t < nt; t++)
				v += pe->data[((size_t)c * nt + t) * E + j];
			cls[(size_t)c * E + j] = (float)v;
			nn += v * v;
		}
		for (int j = 0; j < E; j++)
			cls[(size_t)c * E + j] = (float)(cls[(size_t)c * E + j] / (sqrt(nn) + 1e-12));
	}
	/* Test images: nearest class embedding by cosine. */
	long correct = 0, total = 0;
	const Split *te = &ds->test;
	for (int at = 0; at < te->n; at += CLIP_ZS_BATCH) {
		int n = te->n - at < CLIP_ZS_BATCH ? te->n - at : CLIP_ZS_BATCH;
		ctx_reset(ctx);
		Tensor *x = ctx_wrap(ctx, te->x + (size_t)at * ds->sample_floats, 4,
		                     (int[]){ n, ds->c, ds->h, ds->w });
		Tensor *img = linear_forward(ctx, &s->img_proj, encoder_forward(ctx, s->encoder, x));
		for (int i = 0; i < n; i++) {
			const float *v = img->data + (size_t)i * E;
			int best = 0;
			double bs = -INFINITY;
			for (int c = 0; c < C; c++) {
				double d = 0;
				for (int j = 0; j < E; j++)
					d += (double)v[j] * cls[(size_t)c * E + j];
				if (d > bs) {
					bs = d;
					best = c;
				}
			}
			if (te->y[at + i] >= 0) {
				correct += best == te->y[at + i];
				total++;
			}
		}
	}
	ctx_reset(ctx);
	if (total > 0) {
		metric_put(sink, "zero_shot_accuracy", (double)correct / (double)total);
		metric_put(sink, "zero_shot_held_out_templates", held_out);
		metric_put(sink, "zero_shot_test_images", (double)total);
	}
	rc = 0;
out:
	eval_mode_leave(ctx, em);
	eng_free(cls);
	eng_free(prompts);
	return rc;
}

static Encoder *clip_encoder(void *state)
{
	return ((Clip *)state)->encoder;
}

const PretextMethod method_clip = {
	.name = "clip",
	.family = "multimodal",
	.summary = "CLIP: an image encoder and a text encoder (hashed byte n-grams + MLP) aligned by "
	           "a symmetric InfoNCE with a learnable temperature; zero-shot classification of "
	           "the test images from held-out prompt templates",
	.default_encoder = ENC_CNN,
	.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT) | ENC_RESNETS,
	.datasets = DATA_CAPTIONS,
	.views = 1,
	.default_augment = "light",
	.example = "clip-fashion-mnist.json",
	.params = clip_params,
	.n_params = (int)(sizeof clip_params / sizeof clip_params[0]),
	.config_size = sizeof(ClipConfig),
	.create = clip_create,
	.loss = clip_step_loss,
	.after_step = clip_after_step,
	.encoder = clip_encoder,
	.evaluate = clip_evaluate,
	.destroy = clip_destroy,
	.ssl_health = 1,
	.health_offset = offsetof(ClipConfig, health),
};
