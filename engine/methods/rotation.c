/* rotation.c - rotation prediction (Gidaris et al. 2018): every image of the batch is shown at
 * 0, 90, 180 and 270 degrees (exact quarter turns, aug_rotate90) and the encoder plus a small head
 * "head" classifies which rotation was applied (4-way cross-entropy). The four copies of an image
 * share one batch, as in the paper, so a step sees 4B images.
 *
 * It deliberately does not rotate by other angles (interpolation artefacts would give the answer
 * away) and needs square images for the odd quarter turns.
 */
#include "method.h"

#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "../data/augment.h"
#include "../ops.h"
#include "decoder.h"

#define EVAL_BATCH 256
#define GRID_N 12

typedef struct RotationConfig {
	int head_hidden;
} RotationConfig;
METHOD_CONFIG_FITS(RotationConfig);

static const ParamDef rotation_params[] = {
	{ "head_hidden", PARAM_INTEGER, .def = 256, .min = 0, .max = 8192,
	  .help = "hidden width of the rotation classifier (0 = a linear head)",
	  PARAM_AT(RotationConfig, head_hidden) },
};

typedef struct Rotation {
	Encoder *encoder;
	Mlp *head;
	int c, h, w;
} Rotation;

static void rotation_destroy(void *state)
{
	Rotation *r = state;
	if (!r)
		return;
	encoder_free(r->encoder);
	mlp_free(r->head);
	eng_free(r);
}

static int rotation_create(const MethodEnv *env, ParamSet *ps, void **state, char *err,
                           size_t errlen)
{
	if (env->in_h != env->in_w) {
		snprintf(err, errlen, "rotation: needs square images to turn by 90 degrees, got %dx%d",
		         env->in_h, env->in_w);
		return -1;
	}
	Rotation *r = eng_calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errlen, "rotation: out of memory");
		return -1;
	}
	r->c = env->in_c;
	r->h = env->in_h;
	r->w = env->in_w;
	int rc = encoder_new(env->encoder, ps, "encoder", env->in_c, env->in_h, env->in_w, env->rng,
	                     &r->encoder, err, errlen);
	if (rc < 0)
		goto fail;
	int hidden = ((const RotationConfig *)env->config)->head_hidden;
	int dims[3] = { encoder_out_dim(r->encoder), hidden, 4 };
	int n = hidden > 0 ? 3 : 2;
	if (hidden <= 0)
		dims[1] = 4;
	if ((rc = mlp_new(ps, "head", dims, n, 1, env->rng, &r->head)) < 0) {
		snprintf(err, errlen, "rotation: cannot build the head %d-%d-4", dims[0], hidden);
		goto fail;
	}
	*state = r;
	return 0;
fail:
	rotation_destroy(r);
	return rc;
}

static Encoder *rotation_encoder(void *state)
{
	return ((Rotation *)state)->encoder;
}

/* x (B,C,H,W) -> out (4B,C,H,W): image i turned by k quarter turns at row k*B + i; labels[k*B+i]=k. */
static void rotate_all(const Rotation *r, const float *x, int B, float *out, int *labels)
{
	size_t per = (size_t)r->c * r->h * r->w;
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < B; i++) {
			aug_rotate90(x + (size_t)i * per, out + ((size_t)k * B + i) * per, r->c, r->h, r->w, k);
			if (labels)
				labels[k * B + i] = k;
		}
}

// x (B,C,H,W) -> logits (4B,4), labels (4B)
static Tensor *rotation_logits(Ctx *ctx, Rotation *r, const float *x, int B, int **labels)
{
	Tensor *xr = ctx_tensor(ctx, 4, (int[]){ 4 * B, r->c, r->h, r->w });
	*labels = ctx_alloc(ctx, (size_t)4 * B * sizeof(int));
	rotate_all(r, x, B, xr->data, *labels);
	return mlp_forward(ctx, r->head, encoder_forward(ctx, r->encoder, xr));
}

static int count_correct(const Tensor *logits, const int *labels)
{
	int n = logits->shape[0], correct = 0;
	for (int i = 0; i < n; i++) {
		const float *l = logits->data + (size_t)i * 4;
		int best = 0;
		for (int k = 1; k < 4; k++)
			if (l[k] > l[best])
				best = k;
		correct += best == labels[i];
	}
	return correct;
}

/* views[0] (B,C,H,W). */
static Tensor *rotation_loss(Ctx *ctx, void *state, Tensor *const *views, const Batch *batch,
                             const MetricSink *sink)
{
	Rotation *r = state;
	int B = views[0]->shape[0], *labels;
	Tensor *logits = rotation_logits(ctx, r, views[0]->data, B, &labels);
	Tensor *loss = op_cross_entropy(ctx, logits, labels, 0.0f);
	if (sink)
		metric_put(sink, "rotation_accuracy", (double)count_correct(logits, labels) / (4.0 * B));
	(void)batch;
	return loss;
}

/* test_rotation_accuracy and test_rotation_loss over all four turns of every test image. */
static int rotation_evaluate(void *state, Ctx *ctx, const Dataset *ds, const MetricSink *sink)
{
	Rotation *r = state;
	int n = ds->test.n;
	if (n <= 0)
		return 0;
	EvalMode m = eval_mode_enter(ctx);
	long correct = 0;
	double loss = 0;
	for (int s = 0; s < n; s += EVAL_BATCH) {
		int nb = n - s < EVAL_BATCH ? n - s : EVAL_BATCH, *labels;
		ctx_reset(ctx);
		Tensor *logits = rotation_logits(ctx, r, ds->test.x + (size_t)s * ds->sample_floats, nb,
		                                 &labels);
		correct += count_correct(logits, labels);
		loss += (double)op_cross_entropy(ctx, logits, labels, 0.0f)->data[0] * 4 * nb;
	}
	eval_mode_leave(ctx, m);
	metric_put(sink, "test_rotation_accuracy", (double)correct / (4.0 * n));
	metric_put(sink, "test_rotation_loss", loss / (4.0 * n));
	return 0;
}

/* rotations.png: 12 test images (columns) at 0, 90, 180 and 270 degrees (rows), as the network
 * sees them. */
static int rotation_artifacts(void *state, Ctx *ctx, const Dataset *ds, const char *dir,
                              void (*add)(void *user, const char *name), void *user, char *err,
                              size_t errlen)
{
	Rotation *r = state;
	int n = ds->test.n < GRID_N ? ds->test.n : GRID_N;
	if (n <= 0)
		return 0;
	size_t per = ds->sample_floats;
	float *buf = eng_malloc((size_t)4 * n * per * sizeof(float));
	if (!buf) {
		snprintf(err, errlen, "rotation: out of memory writing artifacts");
		return -1;
	}
	rotate_all(r, ds->test.x, n, buf, NULL);
	const float *rows[4];
	for (int k = 0; k < 4; k++)
		rows[k] = buf + (size_t)k * n * per;
	int rc = artifact_png_rows(dir, "rotations.png", rows, 4, n, r->c, r->h, r->w, add, user,
	                           err, errlen);
	eng_free(buf);
	(void)ctx;
	return rc < 0 ? rc : 0;
}

const PretextMethod method_rotation = {
	.name = "rotation",
	.family = "self-predictive",
	.summary = "rotation prediction: each image at 0, 90, 180 and 270 degrees, the encoder and "
	           "a small head classify the rotation (4-way cross-entropy)",
	.default_encoder = ENC_CNN,
	.datasets = DATA_IMAGES,
	.views = 1,
	.default_augment = "none",
	.example = "rotation-fashion-mnist.json",
	.params = rotation_params,
	.n_params = (int)(sizeof rotation_params / sizeof rotation_params[0]),
	.config_size = sizeof(RotationConfig),
	.create = rotation_create,
	.loss = rotation_loss,
	.encoder = rotation_encoder,
	.artifacts = rotation_artifacts,
	.evaluate = rotation_evaluate,
	.destroy = rotation_destroy,
};
