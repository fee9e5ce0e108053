/* eval_pixels.c - the raw-pixel baseline: the linear probe's logistic regression (eval_linear.c,
 * same cross-validated penalty, same labelled subset) on the input pixels themselves, with no
 * encoder at all. It is the floor every representation has to clear: a pretrained encoder whose
 * probe does not beat it has learned nothing a linear model could not read off the pixels.
 *
 * It reads the dataset's samples as they are stored (images in [0,1], (C,H,W) flattened); the
 * features are standardised inside the probe like any others. It does not touch the encoder.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"
#include "eval_internal.h"

static int eval_pixel_run(const EvalEnv *env, const EvalConfig *cfg, const int *idx, int n,
                          EvalResult *out, char *err, size_t errlen)
{
	const Dataset *ds = env->ds;
	size_t d = ds->sample_floats;
	if (!ds->train.x || !ds->test.x || d == 0) {
		snprintf(err, errlen, "eval pixel_probe: the dataset has no pixel or feature samples "
		         "(text is read as tokens)");
		return -EINVAL;
	}
	float *xtr = eng_malloc((size_t)n * d * sizeof(float));
	int *ytr = eng_malloc((size_t)n * sizeof(int));
	int rc;
	if (!xtr || !ytr) {
		snprintf(err, errlen, "eval pixel_probe: out of memory for %d samples of %zu floats", n, d);
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		memcpy(xtr + (size_t)i * d, ds->train.x + (size_t)idx[i] * d, d * sizeof(float));
		ytr[i] = ds->train.y[idx[i]];
	}
	rc = eval_linear_core(env, xtr, ytr, n, ds->test.x, ds->test.y, ds->test.n, (int)d,
	                      ds->num_classes, cfg, env->seed, out, NULL, NULL, err, errlen);
out:
	eng_free(xtr);
	eng_free(ytr);
	return rc;
}

static const ParamDef pixel_probe_keys[] = {
	EVAL_KEY_EPOCHS(100, "L-BFGS iterations per fit (each one full pass over the pixels)"),
	EVAL_KEY_BATCH(256, "unused (L-BFGS fits all labelled samples at once); accepted like the "
	                    "other protocols' batch_size"),
	{ "weight_decay", PARAM_NUMBER, .def = 0, .min = 0, .max = 1, .flags = PARAM_DEFAULT_AUTO,
	  .help = "L2 penalty (default: chosen by 5-fold cross-validation on the labels, as the "
	          "linear probe)", PARAM_AT(EvalConfig, weight_decay) },
};

const EvalProtocolDef eval_protocol_pixel_probe = {
	.name = "pixel_probe",
	.protocol = EVAL_PROTO_PIXEL_PROBE,
	.summary = "baseline: multinomial logistic regression on the raw pixels, no encoder",
	.needs_labels = 1,
	.baseline = "raw_pixels",
	.keys = pixel_probe_keys,
	.n_keys = EVAL_KEY_COUNT(pixel_probe_keys),
	.run = eval_pixel_run,
};
