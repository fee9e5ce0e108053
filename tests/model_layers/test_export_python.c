/* test_export_python.c - the PyTorch round trip: build each encoder kind with random weights (and
 * non-trivial BatchNorm statistics), run it forward in eval mode, export the weights with the
 * checkpoint module plus the config JSON, and have python/ssld_torch.py rebuild the same network in
 * PyTorch, load the file strictly and compute features on the same inputs. The max abs difference
 * must stay below 1e-4. Inputs and outputs travel as raw float32 files in a temp directory.
 * Usage: test_export_python PYTHON3 path/to/ssld_torch.py. Exit 77 when python3 or torch is missing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "ctx.h"
#include "model.h"
#include "params.h"
#include "check.h"
#include "support.h"

/* Make the BatchNorm statistics and affine parameters non-trivial, so eval mode is tested. */
static void perturb_norms(ParamSet *ps, Rng *r)
{
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		const char *n = t->name;
		size_t len = strlen(n);
#define ENDS(s) (len >= strlen(s) && strcmp(n + len - strlen(s), s) == 0)
		for (size_t j = 0; j < t->size; j++) {
			if (ENDS(".running_var"))
				t->data[j] = rng_uniform_range(r, 0.5f, 2.0f);
			else if (ENDS(".running_mean"))
				t->data[j] = 0.2f * rng_normal(r);
			else if (t->ndim == 1 && (strstr(n, ".bn") || strstr(n, "norm") ||
			                          strstr(n, ".downsample.1.")))
				t->data[j] += 0.2f * rng_normal(r);
		}
#undef ENDS
	}
}

typedef struct Case {
	const char *label;
	EncoderKind kind;
	int in_c, in_h, in_w;
	int config_in_metadata;   /* 1: python reads the config from the safetensors metadata */
	int pool_grid;            /* cnn: 0 = the default global pooling */
	int stem;                 /* resnet: 0 cifar, 1 imagenet */
	float width;              /* resnet */
} Case;

static int run_case(const Case *k, const char *python, const char *script, const char *dir)
{
	enum { B = 4 };
	char err[512], path_w[512], path_cfg[512], path_x[512], path_y[512], js[1024];
	int rc = 1;
	Rng r;
	rng_seed(&r, 100 + (uint64_t)k->kind);
	EncoderConfig c;
	encoder_config_default(&c, k->kind);
	if (k->pool_grid)
		c.pool_grid = k->pool_grid;
	if (k->kind == ENC_VIT) {
		c.depth = 2;
		c.pool = 1;
		c.out_dim = 64;
	}
	if (k->width > 0) {
		c.stem = k->stem;
		c.width = k->width;
	}
	if (k->kind == ENC_TRANSFORMER) {
		c.depth = 2;
		c.context = 32;
		c.causal = 1;
	}
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(5);
	Encoder *e = NULL;
	if (encoder_new(&c, ps, "encoder", k->in_c, k->in_h, k->in_w, &r, &e, err, sizeof err) < 0) {
		fprintf(stderr, "FAIL %s: encoder_new: %s\n", k->label, err);
		goto out;
	}
	perturb_norms(ps, &r);

	Tensor *x = ctx_tensor(ctx, 4, (int[]){ B, k->in_c, k->in_h, k->in_w });
	for (size_t i = 0; i < x->size; i++)
		x->data[i] = k->kind == ENC_TRANSFORMER ? (float)rng_below(&r, (uint32_t)c.vocab)
		                                        : rng_uniform(&r);
	ctx_set_training(ctx, 0);
	ctx_set_grad_enabled(ctx, 0);
	Tensor *out = encoder_forward(ctx, e, x);
	int O = encoder_out_dim(e);
	size_t ny = (size_t)B * (size_t)O;

	if (encoder_config_to_json(&c, js, sizeof js) < 0) {
		fprintf(stderr, "FAIL %s: config JSON does not fit\n", k->label);
		goto out;
	}
	snprintf(path_w, sizeof path_w, "%s/%s.safetensors", dir, k->label);
	snprintf(path_cfg, sizeof path_cfg, "%s/%s.json", dir, k->label);
	snprintf(path_x, sizeof path_x, "%s/%s.x.f32", dir, k->label);
	snprintf(path_y, sizeof path_y, "%s/%s.y.f32", dir, k->label);
	if (checkpoint_export_prefix(path_w, ps, "encoder.", "encoder.", js, err, sizeof err) < 0) {
		fprintf(stderr, "FAIL %s: checkpoint_export_prefix: %s\n", k->label, err);
		goto out;
	}
	if (test_write_file(path_cfg, js, strlen(js)) < 0 ||
	    test_write_file(path_x, x->data, x->size * sizeof(float)) < 0) {
		fprintf(stderr, "FAIL %s: cannot write the inputs under %s\n", k->label, dir);
		goto out;
	}
	char shape[64];
	snprintf(shape, sizeof shape, "%d,%d,%d,%d", B, k->in_c, k->in_h, k->in_w);
	const char *av[16] = { python, script, "--weights", path_w, "--prefix", "encoder", "--input", path_x,
		                   "--shape", shape, "--output", path_y };
	if (!k->config_in_metadata)
		av[12] = "--config", av[13] = path_cfg;
	int st = test_run(av);
	if (st != 0) {
		fprintf(stderr, "FAIL %s: %s %s exited with status %d\n", k->label, python, script, st);
		goto out;
	}
	float md, mag;
	if (test_diff_floats(path_y, out->data, ny, k->label, "python", &md, &mag) < 0)
		goto out;
	printf("%-12s input (%d,%d,%d,%d) -> (%d,%d): max |ssld - torch| = %.3g (max |y| %.3g)%s\n",
	       k->label, B, k->in_c, k->in_h, k->in_w, B, O, (double)md, (double)mag,
	       k->config_in_metadata ? " [config from metadata]" : "");
	if (md < 1e-4f && mag > 1e-3f)
		rc = 0;
	else
		fprintf(stderr, "FAIL %s: max abs difference %g (limit 1e-4), max |y| %g\n", k->label,
		        (double)md, (double)mag);
out:
	unlink(path_w);
	unlink(path_cfg);
	unlink(path_x);
	unlink(path_y);
	encoder_free(e);
	ctx_free(ctx);
	paramset_free(ps);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PYTHON3 ssld_torch.py\n", argv[0]);
		return 2;
	}
	const char *python = argv[1], *script = argv[2];
	char probe[1024];
	snprintf(probe, sizeof probe, "'%s' -c 'import torch' >/dev/null 2>&1", python);
	if (access(python, X_OK) != 0 || system(probe) != 0)
		return check_skip("%s with torch is not available", python);
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "FAIL: %s is not readable\n", script);
		return 1;
	}
	char *dir = test_tmpdir("export");
	if (!dir)
		return 1;
	const Case cases[] = {
		{ "cnn", ENC_CNN, 1, 28, 28, 0, 0, 0, 0 },
		{ "cnn-grid2", ENC_CNN, 1, 28, 28, 0, 2, 0, 0 },   /* 7x7 map -> 2x2 cells of 4x4, step 3 */
		{ "cnn-grid3", ENC_CNN, 1, 28, 28, 1, 3, 0, 0 },   /* 3x3 cells of 3x3, step 2 */
		{ "mlp", ENC_MLP, 1, 28, 28, 1, 0, 0, 0 },
		{ "vit", ENC_VIT, 1, 28, 28, 0, 0, 0, 0 },
		{ "transformer", ENC_TRANSFORMER, 1, 1, 32, 1, 0, 0, 0 },
		{ "resnet18", ENC_RESNET18, 3, 16, 16, 1, 0, 0, 0.125f },
		{ "resnet50-in", ENC_RESNET50, 1, 33, 33, 0, 0, 1, 0.0625f },   /* the padded max-pool */
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		fails += run_case(&cases[i], python, script, dir);
	test_rmtree(dir);
	free(dir);
	if (fails) {
		fprintf(stderr, "test_export_python: %d case(s) failed\n", fails);
		return 1;
	}
	printf("test_export_python: all encoders match PyTorch\n");
	return 0;
}
