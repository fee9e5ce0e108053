/* spec_estimate.c - the cost of a job from its resolved spec, without building anything.
 *
 * Building the model on a throwaway ParamSet would allocate every weight (an MLP of 65,536 x 4 is
 * 16 GiB), so the counts are computed from the encoder config instead, layer by layer as
 * engine/model.c builds it. Only the encoder is counted: a method's heads (projector, predictor,
 * decoder) are method code and usually small beside it; the decoders of the autoencoders mirror
 * the encoder, which the factor below does not see. The figures are an estimate for admission
 * control and planning, not an accounting.
 *
 * Activations: reverse-mode autodiff keeps each op's output (and inputs it needs) on the tape
 * until backward, so one step holds, per sample and per view, every intermediate tensor of the
 * forward pass. We count per layer: MLP - linear out, BN out, ReLU out (3 x width); CNN - the
 * im2col buffer (cin * 9 * H * W), conv out, BN out, ReLU out (3 x cout * H * W); transformer
 * blocks - LN, QKV (3d), attention scores and softmax (2 x heads x T x T), attention out,
 * projection, residuals, LN, MLP hidden before and after GELU (2 x r x d), MLP out: about
 * (10 + 2r) x T x d + 2 x heads x T^2 floats. Backward's gradients of activations are freed op by
 * op and are not added. Two-view methods put 2 x batch samples through the encoder.
 * For scale: examples/simclr-fashion-mnist.json (cnn, batch 256, two views) is estimated at
 * 440 MiB; `ssld run` of it on a 2,048-image slice peaked at 551 MiB resident (the process, BLAS
 * buffers and the data come on top).
 */
#include "spec_estimate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../engine/data/format.h"
#include "method_catalog.h"

/* What the dataset's format can tell from headers or file sizes (engine/data/format.h). */
static DatasetShape format_shape(const JobSpec *js)
{
	DatasetShape sh = { .train_samples = -1, .c = 1, .h = 1, .w = 1 };
	const DatasetFormat *fmt = dataset_format_for(js->dataset.kind);
	if (fmt && fmt->estimate)
		fmt->estimate(&js->dataset, js->encoder.context, &sh);
	return sh;
}

/* Training samples when the spec and file headers or sizes say (runner.c plan_steps counts the
 * same way: a text stream is cut into context-sized windows), else -1. */
static int64_t train_samples(const JobSpec *js)
{
	const DatasetSpec *ds = &js->dataset;
	int64_t n = format_shape(js).train_samples;
	if (ds->limit_train > 0 && (n < 0 || ds->limit_train < n))
		n = ds->limit_train;
	return n;
}

int jobspec_sample_shape(const JobSpec *js, int *c, int *h, int *w)
{
	DatasetShape sh = format_shape(js);
	*c = sh.c, *h = sh.h, *w = sh.w;
	return sh.known;
}

/* The shape for the estimate: an unreadable header gives the format's stand-in shape. */
static void sample_shape(const JobSpec *js, int64_t *c, int64_t *h, int64_t *w)
{
	DatasetShape sh = format_shape(js);
	*c = sh.c, *h = sh.h, *w = sh.w;
}

void jobspec_estimate(const JobSpec *js, JobEstimate *e)
{
	const EncoderConfig *c = &js->encoder;
	memset(e, 0, sizeof *e);
	int64_t C, H, W, P = 0, A = 0;   /* A: activation floats per sample */
	sample_shape(js, &C, &H, &W);
	encoder_estimate(c, (int)C, (int)H, (int)W, &P, &A);   /* the encoder's own estimate */
	const MethodInfo *m = method_catalog_find(js->method);
	int views = m && m->views > 1 ? m->views : 1;
	int64_t batch = m && m->views == 0 ? 0 : js->pretrain.batch_size;
	for (int i = 0; i < js->n_evals; i++)   /* evaluations that train the encoder */
		if ((js->evals[i].protocol == EVAL_PROTO_FINETUNE || js->evals[i].protocol == EVAL_PROTO_SUPERVISED) &&
		    js->evals[i].batch_size > batch * views)
			batch = js->evals[i].batch_size, views = 1;
	e->params = P;
	e->param_bytes = 4 * P;
	e->grad_bytes = 4 * P;
	e->optim_bytes = (js->pretrain.optim.kind == OPT_ADAMW ? 8 : 4) * P;
	/* in double: the largest specs (context 65,536, batch 8,192) pass 2^63 bytes */
	double act = 4.0 * (double)A * (double)batch * views;
	e->activation_bytes = act > 1e18 ? (int64_t)1e18 : (int64_t)act;
	e->peak_bytes = e->param_bytes + e->grad_bytes + e->optim_bytes + e->activation_bytes;
	e->driver = e->activation_bytes > e->param_bytes + e->grad_bytes + e->optim_bytes
	                    ? "pretrain.batch_size" : "model";

	e->train_samples = train_samples(js);
	e->steps_per_epoch = -1;
	e->steps = -1;
	if (m && m->views == 0) {
		e->steps = 0;
		return;
	}
	if (e->train_samples >= 0 && js->pretrain.batch_size > 0) {   /* runner.c: at least one step */
		e->steps_per_epoch = e->train_samples / js->pretrain.batch_size;   /* the last partial batch is dropped */
		if (e->steps_per_epoch < 1)
			e->steps_per_epoch = 1;
		e->steps = e->steps_per_epoch * js->pretrain.epochs;
	}
	if (js->pretrain.max_steps > 0 && (e->steps < 0 || js->pretrain.max_steps < e->steps))
		e->steps = js->pretrain.max_steps;
}

const char *jobspec_bytes_text(int64_t bytes, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

cJSON *jobspec_estimate_json(const JobEstimate *e)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "params", (double)e->params);
	cJSON *m = cJSON_AddObjectToObject(o, "memory_bytes");
	cJSON_AddNumberToObject(m, "params", (double)e->param_bytes);
	cJSON_AddNumberToObject(m, "grads", (double)e->grad_bytes);
	cJSON_AddNumberToObject(m, "optimizer", (double)e->optim_bytes);
	cJSON_AddNumberToObject(m, "activations", (double)e->activation_bytes);
	cJSON_AddNumberToObject(m, "peak", (double)e->peak_bytes);
	cJSON_AddStringToObject(o, "memory_driver", e->driver);
	if (e->train_samples >= 0)
		cJSON_AddNumberToObject(o, "train_samples", (double)e->train_samples);
	else
		cJSON_AddNullToObject(o, "train_samples");
	if (e->steps_per_epoch >= 0)
		cJSON_AddNumberToObject(o, "steps_per_epoch", (double)e->steps_per_epoch);
	else
		cJSON_AddNullToObject(o, "steps_per_epoch");
	if (e->steps >= 0)
		cJSON_AddNumberToObject(o, "steps", (double)e->steps);
	else
		cJSON_AddNullToObject(o, "steps");
	return o;
}
