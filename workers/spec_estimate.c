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
#include <sys/stat.h>
#include <zlib.h>

#include "method_catalog.h"

/* Width of a CSV row (columns minus the label): its first line's commas. 0 when unreadable. */
static int64_t csv_width(const char *path)
{
	FILE *f = path ? fopen(path, "rb") : NULL;
	if (!f)
		return 0;
	int64_t cols = 1;
	int c, n = 0;
	while ((c = fgetc(f)) != EOF && c != '\n' && n++ < (1 << 20))
		cols += c == ',';
	fclose(f);
	return cols > 1 ? cols - 1 : 1;
}

static int64_t be32(const unsigned char *b)
{
	return (int64_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
}

/* An IDX image file's count and (rows, cols) from its header (gzip or raw: zlib reads both). */
static int idx_dims(const char *path, int64_t *count, int *h, int *w)
{
	gzFile f = path ? gzopen(path, "rb") : NULL;
	if (!f)
		return 0;
	unsigned char b[16];
	int n = gzread(f, b, sizeof b);
	gzclose(f);
	if (n != 16 || b[0] || b[1] || b[2] != 0x08 || b[3] < 3)
		return 0;
	*count = be32(b + 4);
	*h = (int)be32(b + 8);
	*w = (int)be32(b + 12);
	return *h > 0 && *w > 0;
}

/* Training samples when the spec and file headers or sizes say (runner.c plan_steps counts the
 * same way: a text stream is cut into context-sized windows), else -1. */
static int64_t train_samples(const JobSpec *js)
{
	const DatasetSpec *ds = &js->dataset;
	int64_t n = -1;
	int h, w;
	switch (ds->kind) {
	case DATASET_FASHION_MNIST:
	case DATASET_CAPTIONS: n = 60000; break;
	case DATASET_IDX:
		if (!idx_dims(ds->train_images, &n, &h, &w))
			n = -1;
		break;
	case DATASET_TEXT: {
		int64_t bytes = 0;
		for (int i = 0; i < ds->n_text_files; i++) {
			struct stat st;
			if (stat(ds->text_files[i], &st) < 0)
				return -1;
			bytes += (int64_t)st.st_size;
		}
		if (js->encoder.context > 0)
			n = (int64_t)((double)bytes * (1.0 - ds->test_fraction)) / js->encoder.context;
		break;
	}
	default: break;
	}
	if (ds->limit_train > 0 && (n < 0 || ds->limit_train < n))
		n = ds->limit_train;
	return n;
}

int jobspec_sample_shape(const JobSpec *js, int *c, int *h, int *w)
{
	*c = 1, *h = 1, *w = 1;
	switch (js->dataset.kind) {
	case DATASET_FASHION_MNIST:
	case DATASET_CAPTIONS: *h = *w = 28; return 1;
	case DATASET_IDX: {
		int64_t n;
		return idx_dims(js->dataset.train_images, &n, h, w);
	}
	case DATASET_CSV: {
		int64_t cols = csv_width(js->dataset.csv_train);
		*w = (int)cols;
		return cols > 0;
	}
	case DATASET_TEXT: *w = js->encoder.context; return 1;
	case DATASET_TEXT_RECORDS: *w = js->dataset.max_record_bytes; return 1;
	}
	return 0;
}

static void sample_shape(const JobSpec *js, int64_t *c, int64_t *h, int64_t *w)
{
	int ci, hi, wi;
	if (!jobspec_sample_shape(js, &ci, &hi, &wi) && js->dataset.kind == DATASET_IDX)
		hi = wi = 28;   /* unreadable header: the common size, for an estimate only */
	*c = ci, *h = hi, *w = wi;
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
