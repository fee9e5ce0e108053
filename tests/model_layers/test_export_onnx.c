/* test_export_onnx.c - the ONNX round trip: build small encoders (mlp, cnn, vit, transformer, and
 * resnet18/resnet50 at small widths with each stem and 1 or 3 input channels) with random weights and
 * BatchNorm statistics away from 0/1, compute features in eval mode, write the weights and config
 * as a run does, export them with `ssld export --format onnx`, check the model with python3-onnx's
 * onnx.checker (full check, with shape inference), run it in ONNX Runtime (onnxruntime-node) on
 * the same input, and compare: max |ssld - onnxruntime| < 1e-4 absolute (features here are O(1):
 * the test also requires max |y| > 1e-3 so a zero output cannot pass).
 * Usage: test_export_onnx SSLD PYTHON3 NODE NODE_PROJECT_DIR (where node_modules/onnxruntime-node
 * is: tests/browser, whose setup.sh installs it).
 * Exit 77 when python3-onnx, node or onnxruntime-node is missing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "ctx.h"
#include "model.h"
#include "params.h"
#include "check.h"
#include "support.h"

enum { B = 3 };

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* BatchNorm running statistics and the affine parameters of BatchNorm and LayerNorm away from
 * their 0/1 initial values. */
static void perturb_norms(ParamSet *ps, Rng *r)
{
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		int bn = strstr(t->name, ".bn") != NULL || strstr(t->name, "norm") != NULL ||
		         strstr(t->name, ".downsample.1.") != NULL;
		for (size_t j = 0; bn && j < t->size; j++) {
			if (ends_with(t->name, ".running_var"))
				t->data[j] = rng_uniform_range(r, 0.5f, 2.0f);
			else if (ends_with(t->name, ".running_mean"))
				t->data[j] = 0.3f * rng_normal(r);
			else
				t->data[j] += 0.3f * rng_normal(r);
		}
	}
}

typedef struct Case {
	const char *label;
	EncoderKind kind;
	int in_c, in_h, in_w;
	const char *input_shape;   /* --input-shape, or NULL (inferred from the weights) */
	const char *run_shape;     /* the input dims given to onnxruntime */
	int config_beside;         /* 1: config.json beside the weights, not in the metadata; 2: and
	                              with the sample's "in_shape", as `ssld run` writes it */
	int pool_grid, batchnorm, out_dim;
	int pool;                  /* vit, transformer: 0 mean over tokens, 1 the CLS/first token */
	int causal;                /* transformer */
	int stem;                  /* resnet: 0 cifar, 1 imagenet (3x3 max-pool with padding 1) */
	float width;               /* resnet */
} Case;

static int run_case(const Case *k, const char *ssld, const char *python, const char *node,
                    const char *project, const char *top)
{
	char err[512], dir[512], path_w[600], path_cfg[600], path_x[600], path_y[600], path_m[600];
	char js[1024];
	int rc = 1;
	Rng r;
	rng_seed(&r, 7 + (uint64_t)k->kind * 31 + (uint64_t)k->pool_grid);
	EncoderConfig c;
	encoder_config_default(&c, k->kind);
	c.batchnorm = k->batchnorm;
	c.out_dim = k->out_dim;
	if (k->kind == ENC_MLP) {
		c.n_hidden = 2;
		c.hidden[0] = 48;
		c.hidden[1] = 32;
	} else if (k->kind == ENC_TRANSFORMER) {
		c.dim = 16, c.depth = 2, c.heads = 2, c.mlp_ratio = 2, c.context = 16;
		c.pool = k->pool;
		c.causal = k->causal;
	} else if (k->kind == ENC_VIT) {
		c.dim = 16, c.depth = 2, c.heads = 2, c.mlp_ratio = 2, c.patch = 4;
		c.pool = k->pool;
	} else if (k->width > 0) {
		c.stem = k->stem;
		c.width = k->width;
	} else {
		c.n_channels = 3;
		c.channels[0] = 6, c.channels[1] = 12, c.channels[2] = 16;
		c.pool_grid = k->pool_grid;
	}
	snprintf(dir, sizeof dir, "%s/%s", top, k->label);
	snprintf(path_w, sizeof path_w, "%s/encoder.safetensors", dir);
	snprintf(path_cfg, sizeof path_cfg, "%s/config.json", dir);
	snprintf(path_x, sizeof path_x, "%s/x.f32", dir);
	snprintf(path_y, sizeof path_y, "%s/y.f32", dir);
	snprintf(path_m, sizeof path_m, "%s/encoder.onnx", dir);
	ParamSet *ps = paramset_new();
	Ctx *ctx = ctx_new(11);
	Encoder *e = NULL;
	if (mkdir(dir, 0755) < 0) {
		fprintf(stderr, "FAIL %s: cannot create %s\n", k->label, dir);
		goto out;
	}
	if (encoder_new(&c, ps, "encoder", k->in_c, k->in_h, k->in_w, &r, &e, err, sizeof err) < 0) {
		fprintf(stderr, "FAIL %s: encoder_new: %s\n", k->label, err);
		goto out;
	}
	perturb_norms(ps, &r);
	Tensor *x = ctx_tensor(ctx, 4, (int[]){ B, k->in_c, k->in_h, k->in_w });
	for (size_t i = 0; i < x->size; i++)   /* text: byte ids, as floats */
		x->data[i] = k->kind == ENC_TRANSFORMER ? (float)rng_below(&r, (uint32_t)c.vocab)
		                                        : rng_normal(&r);
	ctx_set_training(ctx, 0);
	ctx_set_grad_enabled(ctx, 0);
	Tensor *out = encoder_forward(ctx, e, x);
	int O = encoder_out_dim(e);
	size_t ny = (size_t)B * (size_t)O;

	if (encoder_config_to_json(&c, js, sizeof js) < 0) {
		fprintf(stderr, "FAIL %s: config JSON does not fit\n", k->label);
		goto out;
	}
	if (checkpoint_export_prefix(path_w, ps, "encoder.", "encoder.", k->config_beside == 1 ? NULL : js,
	                             err, sizeof err) < 0) {
		fprintf(stderr, "FAIL %s: checkpoint_export_prefix: %s\n", k->label, err);
		goto out;
	}
	if (k->config_beside == 2)   /* `ssld run`'s config.json: the config, then the sample shape */
		snprintf(js + strlen(js) - 1, sizeof js - strlen(js) + 1, ",\"in_shape\":[%d,%d,%d]}",
		         k->in_c, k->in_h, k->in_w);
	if ((k->config_beside && test_write_file(path_cfg, js, strlen(js)) < 0) ||
	    test_write_file(path_x, x->data, x->size * sizeof(float)) < 0) {
		fprintf(stderr, "FAIL %s: cannot write the inputs under %s\n", k->label, dir);
		goto out;
	}
	/* ssld export DIR [--input-shape S]: the model lands beside the weights. */
	const char *av_export[8] = { ssld, "export", dir, "--format", "onnx" };
	if (k->input_shape)
		av_export[5] = "--input-shape", av_export[6] = k->input_shape;
	int st = test_run(av_export);
	if (st != 0 || access(path_m, R_OK) != 0) {
		fprintf(stderr, "FAIL %s: ssld export exited with %d (model %s)\n", k->label, st,
		        access(path_m, R_OK) == 0 ? "written" : "missing");
		goto out;
	}
	const char *av_check[] = { python, "-c",
		                       "import onnx, sys; m = onnx.load(sys.argv[1]); "
		                       "onnx.checker.check_model(m, full_check=True); "
		                       "assert m.opset_import[0].version >= 13",
		                       path_m, NULL };
	if ((st = test_run(av_check)) != 0) {
		fprintf(stderr, "FAIL %s: onnx.checker rejected %s (status %d)\n", k->label, path_m, st);
		goto out;
	}
	char script[700];
	snprintf(script, sizeof script, "%s/onnx_run.mjs", SSLD_TEST_DIR);
	const char *av_run[] = { node, script, project, path_m, path_x, k->run_shape, path_y, NULL };
	if ((st = test_run(av_run)) != 0) {
		fprintf(stderr, "FAIL %s: onnxruntime could not run %s (status %d)\n", k->label, path_m, st);
		goto out;
	}
	float md, mag;
	if (test_diff_floats(path_y, out->data, ny, k->label, "onnxruntime", &md, &mag) < 0)
		goto out;
	printf("%-10s input (%s) -> (%d,%d): max |ssld - onnxruntime| = %.3g (max |y| %.3g)\n",
	       k->label, k->run_shape, B, O, (double)md, (double)mag);
	if (md < 1e-4f && mag > 1e-3f)
		rc = 0;
	else
		fprintf(stderr, "FAIL %s: max abs difference %g (limit 1e-4), max |y| %g\n", k->label,
		        (double)md, (double)mag);
out:
	encoder_free(e);
	ctx_free(ctx);
	paramset_free(ps);
	return rc;
}

/* `ssld export ARGS` with stderr captured: 0 when it exits with `status` and stderr holds `want`. */
static int expect_error(const char *ssld, const char *top, const char *args, int status,
                        const char *want)
{
	char cmd[2048], path[600], text[2048] = "";
	snprintf(path, sizeof path, "%s/stderr.txt", top);
	snprintf(cmd, sizeof cmd, "'%s' export %s >/dev/null 2>'%s'", ssld, args, path);
	int st = system(cmd);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
	text[n] = 0;
	if (f)
		fclose(f);
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == status && strstr(text, want)) {
		printf("ssld export %s -> %d: %s", args, status, text);
		return 0;
	}
	fprintf(stderr, "FAIL: ssld export %s: status %d, stderr \"%s\"; expected %d and \"%s\"\n",
	        args, st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1, text, status, want);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s SSLD PYTHON3 NODE NODE_PROJECT_DIR\n", argv[0]);
		return 2;
	}
	const char *ssld = argv[1], *python = argv[2], *node = argv[3], *project = argv[4];
	char probe[1200];
	snprintf(probe, sizeof probe, "'%s' -c 'import onnx.checker' >/dev/null 2>&1", python);
	if (access(python, X_OK) != 0 || system(probe) != 0)
		return check_skip("%s with python3-onnx is not available", python);
	snprintf(probe, sizeof probe, "%s/node_modules/onnxruntime-node/package.json", project);
	if (!*node || access(node, X_OK) != 0 || access(probe, R_OK) != 0)
		return check_skip("node or %s is missing (tests/browser/setup.sh installs onnxruntime-node)",
		                  probe);
	char *top = test_tmpdir("onnx");
	if (!top)
		return 1;
	const Case cases[] = {
		/* label, kind, sample, --input-shape, run shape, config beside, grid, bn, out_dim, pool,
		 * causal, stem, width */
		{ "mlp", ENC_MLP, 1, 1, 20, NULL, "3,20", 0, 0, 1, 8, 0, 0, 0, 0 },
		{ "mlp-image", ENC_MLP, 2, 5, 4, "2,5,4", "3,2,5,4", 1, 0, 1, 0, 0, 0, 0, 0 },
		{ "cnn", ENC_CNN, 3, 12, 12, NULL, "3,3,12,12", 0, 1, 1, 0, 0, 0, 0, 0 },
		{ "cnn-proj", ENC_CNN, 1, 16, 16, "1,16,16", "3,1,16,16", 1, 1, 0, 10, 0, 0, 0, 0 },
		{ "cnn-grid2", ENC_CNN, 1, 28, 28, "1,28,28", "3,1,28,28", 0, 2, 1, 0, 0, 0, 0, 0 },
		{ "cnn-grid3", ENC_CNN, 2, 24, 24, NULL, "3,2,24,24", 2, 3, 1, 0, 0, 0, 0, 0 },
		{ "vit", ENC_VIT, 1, 12, 12, NULL, "3,1,12,12", 0, 0, 1, 0, 0, 0, 0, 0 },
		{ "vit-cls", ENC_VIT, 3, 8, 8, NULL, "3,3,8,8", 1, 0, 1, 12, 1, 0, 0, 0 },
		{ "text", ENC_TRANSFORMER, 1, 1, 8, NULL, "3,8", 0, 0, 1, 0, 0, 1, 0, 0 },
		{ "text-first", ENC_TRANSFORMER, 1, 1, 16, NULL, "3,16", 1, 0, 1, 6, 1, 0, 0, 0 },
		/* ResNets at small widths: basic blocks with the cifar stem (the config and in_shape of
		 * `ssld run`'s config.json), one input channel with the imagenet stem (its padded
		 * max-pool), bottlenecks with each stem */
		{ "resnet18", ENC_RESNET18, 3, 16, 16, NULL, "3,3,16,16", 2, 0, 1, 0, 0, 0, 0, 0.125f },
		{ "resnet18-in", ENC_RESNET18, 1, 33, 33, NULL, "3,1,33,33", 0, 0, 1, 0, 0, 0, 1, 0.125f },
		{ "resnet50", ENC_RESNET50, 3, 8, 8, "3,8,8", "3,3,8,8", 1, 0, 1, 0, 0, 0, 0, 0.0625f },
		{ "resnet50-in", ENC_RESNET50, 3, 32, 32, NULL, "3,3,32,32", 0, 0, 1, 0, 0, 0, 1, 0.0625f },
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		fails += run_case(&cases[i], ssld, python, node, project, top);
	/* What is refused, and how it is named. */
	char args[800];
	snprintf(args, sizeof args, "'%s/cnn' --format torchscript", top);
	fails += expect_error(ssld, top, args, 2, "--format: \"torchscript\" is not a format");
	snprintf(args, sizeof args, "'%s/cnn' --format torchvision", top);
	fails += expect_error(ssld, top, args, 1, "the cnn encoder under torchvision names: ");
	snprintf(args, sizeof args, "'%s/cnn-grid2'", top);   /* pool_grid 2: the size matters */
	fails += expect_error(ssld, top, args, 1, "give --input-shape C,H,W");
	snprintf(args, sizeof args, "'%s/text' --input-shape 1,1,8", top);
	fails += expect_error(ssld, top, args, 1, "takes token ids (N,T): give T");
	snprintf(args, sizeof args, "'%s/cnn' --input-shape 1,x,3", top);
	fails += expect_error(ssld, top, args, 2, "--input-shape: \"1,x,3\" is not C,H,W or D");
	/* Configs whose keys do not fit (resnet50 reads the config.json beside it). */
	char cfg_path[700];
	snprintf(cfg_path, sizeof cfg_path, "%s/resnet50/config.json", top);
	static const char *const bad_cfg[][2] = {
		{ "{\"kind\":\"resnet50\",\"stem\":\"tiny\",\"width\":0.0625}",
		  "the encoder config's \"stem\" is not a valid enum: cifar|imagenet" },
		{ "{\"kind\":\"resnet50\",\"stem\":\"cifar\",\"width\":9}",
		  "model.width: 9 must be in (0, 8]" },
		{ "{\"kind\":\"resnet50\",\"width\":1e300}",
		  "the encoder config's \"width\" is not a valid number" },
	};
	snprintf(args, sizeof args, "'%s/resnet50' --input-shape 3,8,8", top);
	for (size_t i = 0; i < sizeof bad_cfg / sizeof bad_cfg[0]; i++) {
		if (test_write_file(cfg_path, bad_cfg[i][0], strlen(bad_cfg[i][0])) < 0) {
			fprintf(stderr, "FAIL: cannot write %s\n", cfg_path);
			fails++;
			continue;
		}
		fails += expect_error(ssld, top, args, 1, bad_cfg[i][1]);
	}
	snprintf(args, sizeof args, "'%s/none'", top);
	fails += expect_error(ssld, top, args, 1, "none: cannot open");
	snprintf(args, sizeof args, "'%s/cnn' --out '%s/none/x.onnx'", top, top);
	fails += expect_error(ssld, top, args, 1, "none/x.onnx");
	test_rmtree(top);
	free(top);
	if (fails) {
		fprintf(stderr, "test_export_onnx: %d case(s) failed\n", fails);
		return 1;
	}
	printf("test_export_onnx: every encoder matches onnxruntime\n");
	return 0;
}
