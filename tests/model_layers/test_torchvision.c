/* test_torchvision.c - the torchvision round trip of the ResNet encoders, both ways, through
 * python/torchvision_resnet.py:
 *   export: ssld builds a ResNet (random weights, non-trivial BatchNorm weights and statistics),
 *           writes it with tv_resnet_save, and torchvision.models.resnetN() loads the file with
 *           load_state_dict(strict=False) missing only fc.* and computes the same features in
 *           eval mode; in training mode the features too, and the input gradients of
 *           sum(f * W), ssld's and torch's, each against the float64 gradient (below);
 *   import: torchvision writes its own state dict (fc.* and I64 num_batches_tracked included),
 *           tv_resnet_load reads it into ssld's ResNet, and the eval features agree.
 * Plus the refusals: a deeper ResNet's file, a different width, a non-ResNet parameter.
 *
 * Bounds: both sides compute in float32 with different summation orders; each feature comes
 * through ~20 layers of reductions over a few hundred to a few thousand products, so the two
 * disagree by a few float32 ulps of the magnitudes that flow: measured 2-3e-6 for resnet18
 * (features up to ~8) and 2e-5 for resnet50 (features up to ~35), i.e. about 6e-7 of the largest
 * feature. The features must agree within the absolute 1e-4 the export promises (5x above the
 * worst case here).
 * The input gradient is compared with torchvision's network run in float64, not with torch's
 * float32 (which computes its convolutions with oneDNN, not OpenBLAS, so it does not move with
 * OPENBLAS_CORETYPE while ssld does). A ReLU makes it discontinuous: a pre-activation within
 * float32 rounding of 0 may take either branch, and then the float32 gradient is the exact one
 * of the network with that unit switched (one unit of layer3 moves this case's gradient by
 * 8.3e-4 normwise under the SkylakeX and Sandybridge kernels). The script finds those units
 * (python/torchvision_resnet.py) and takes, for each float32 gradient, the float64 one on the
 * branches that fit it there. What is left is rounding: each of the convolutions on the forward
 * and backward paths sums K <= 9 * 512 terms and adds about U * sqrt(K) relative to the values
 * flowing, and with batch norm keeping each layer's gain near 1 these add up, so the normwise
 * bound is 2 * CONVS * U * sqrt(9 * 512) = 1.6e-4 (measured: 2e-6 for both).
 * Usage: test_torchvision PYTHON3 path/to/torchvision_resnet.py. Exit 77 when python3, torch or
 * torchvision is missing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "ctx.h"
#include "export_torchvision.h"
#include "ops.h"
#include "params.h"
#include "resnet.h"
#include "check.h"
#include "support.h"

static const char *python, *script;
static char dir[] = "/tmp/ssld_tv_XXXXXX";


static char *path_in(const char *name)
{
	static char buf[8][512];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

/* BatchNorm weights/biases and running statistics away from their init, so eval mode, the
 * residual branches (zero-initialised) and the statistics all matter. */
static void perturb_norms(ParamSet *ps, Rng *r)
{
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		if (t->ndim != 1)
			continue;
		const char *n = t->name;
		size_t len = strlen(n);
#define ENDS(s) (len >= strlen(s) && strcmp(n + len - strlen(s), s) == 0)
		for (size_t j = 0; j < t->size; j++) {
			if (ENDS(".running_var"))
				t->data[j] = rng_uniform_range(r, 0.5f, 2.0f);
			else if (ENDS(".running_mean"))
				t->data[j] = 0.2f * rng_normal(r);
			else if (ENDS(".weight"))
				t->data[j] = rng_uniform_range(r, 0.5f, 1.5f);
			else if (ENDS(".bias"))
				t->data[j] = rng_uniform_range(r, -0.2f, 0.2f);
		}
#undef ENDS
	}
}

static double max_abs(const float *a, size_t n)
{
	double m = 0.0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(a[i]));
	return m;
}

/* ||a - b||_2 / ||b||_2: the normwise relative error of a against the reference b. */
static double rel_l2(const float *a, const float *b, size_t n)
{
	double num = 0.0, den = 0.0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - (double)b[i];
		num += d * d;
		den += (double)b[i] * b[i];
	}
	return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static double max_diff(const float *a, const float *b, size_t n)
{
	double m = 0.0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs((double)a[i] - (double)b[i]));
	return m;
}

/* Runs the script; returns its exit status (3 = torchvision missing), -1 if it did not run. */
static int run_script(const char *args)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "%s %s %s", python, script, args);
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* The input gradients against their float64 references (g64.f32: torch's, then ssld's). */
static void check_gradients(const char *label, const float *gs, size_t nx)
{
	enum { CONVS = 20 }; /* resnet18: the stem, 16 in the blocks, 3 downsamples */
	const double bound = 2.0 * CONVS * 0x1p-24 * sqrt(9.0 * 512.0);
	float *g64 = malloc(2 * nx * sizeof *g64), *gt = malloc(nx * sizeof *gt);
	long got64 = test_read_floats(path_in("g64.f32"), g64, 2 * nx);
	long got = test_read_floats(path_in("gx.f32"), gt, nx);
	CHECK(got64 == (long)(2 * nx) && got == (long)nx, "%s: %ld reference and %ld torch "
	      "gradient values back, expected %zu and %zu", label, got64, got, 2 * nx, nx);
	if (got64 == (long)(2 * nx) && got == (long)nx) {
		const char *who[2] = { "torch", "ssld" };
		const float *g[2] = { gt, gs };
		for (int k = 0; k < 2; k++) {
			const float *r = g64 + k * nx;
			double rel = rel_l2(g[k], r, nx);
			printf("%-36s d/dx %-5s vs float64: max |diff| %.2e (max |g| %.3g), normwise "
			       "%.2e (bound %.1e)\n", label, who[k], max_diff(g[k], r, nx), max_abs(r, nx),
			       rel, bound);
			CHECK(rel < bound, "%s: %s's input gradient differs from the float64 one by %.3g "
			      "normwise (bound %.3g)", label, who[k], rel, bound);
		}
	}
	free(g64);
	free(gt);
}

typedef struct Case {
	const char *arch;
	int depth;
	ResnetStem stem;
	int in_c, hw, batch;
	int training;
} Case;

/* ssld -> torchvision. Returns 3 when torchvision is missing. */
static int export_case(const Case *c)
{
	char label[128];
	snprintf(label, sizeof label, "%s %s %dx%dx%d %s", c->arch, resnet_stem_name(c->stem), c->in_c,
	         c->hw, c->hw, c->training ? "train" : "eval");
	ResnetConfig rc;
	resnet_config_preset(&rc, c->depth);
	rc.stem = c->stem;
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 100 + (uint64_t)c->depth);
	Resnet *r = NULL;
	char err[512] = "";
	int rv = 0;
	if (resnet_new(&rc, ps, "encoder", c->in_c, c->hw, c->hw, &rng, &r, err, sizeof err) < 0) {
		CHECK(0, "%s: %s", label, err);
		paramset_free(ps);
		return 0;
	}
	perturb_norms(ps, &rng);
	const int B = c->batch, D = resnet_out_dim(r);
	const size_t nx = (size_t)B * c->in_c * c->hw * c->hw;
	const size_t nref = nx > (size_t)B * D ? nx : (size_t)B * D;
	float *xs = malloc(nx * sizeof *xs), *gx = calloc(nx, sizeof *gx);
	float *ref = malloc(nref * sizeof *ref);
	float *w = malloc((size_t)B * D * sizeof *w), *feat = malloc((size_t)B * D * sizeof *feat);
	for (size_t i = 0; i < nx; i++)
		xs[i] = rng_normal(&rng);
	for (int i = 0; i < B * D; i++)
		w[i] = rng_uniform_range(&rng, -1.0f, 1.0f);

	Ctx *ctx = ctx_new(1);
	ctx_set_training(ctx, c->training);
	ctx_set_grad_enabled(ctx, c->training);
	Tensor xt;
	memset(&xt, 0, sizeof xt);
	tensor_set_shape(&xt, 4, (int[]){ B, c->in_c, c->hw, c->hw });
	xt.data = xs;
	xt.grad = gx;
	xt.requires_grad = c->training;
	xt.is_param = c->training;
	/* the export first: a training forward moves the running statistics */
	CHECK(tv_resnet_save(path_in("enc.safetensors"), ps, "encoder", NULL, err, sizeof err) == 0,
	      "%s: save: %s", label, err);
	Tensor *f = resnet_forward(ctx, r, &xt);
	memcpy(feat, f->data, (size_t)B * D * sizeof *feat);
	if (c->training) {
		Tensor *wt = ctx_wrap(ctx, w, 2, (int[]){ B, D });
		CHECK(ctx_backward(ctx, op_sum(ctx, op_mul(ctx, f, wt), OP_ALL, 0)) == 0, "backward");
	}
	CHECK(test_write_file(path_in("x.f32"), xs, nx * sizeof *xs) == 0, "write x");
	CHECK(test_write_file(path_in("w.f32"), w, (size_t)B * D * sizeof *w) == 0, "write w");
	CHECK(!c->training || test_write_file(path_in("gs.f32"), gx, nx * sizeof *gx) == 0,
	      "write the gradient");
	char args[2048], train[1024] = "";
	if (c->training)
		snprintf(train, sizeof train, "--train --grad-weights %s --grad-output %s "
		         "--grad-reference %s --grad-candidates %s", path_in("w.f32"), path_in("gx.f32"),
		         path_in("g64.f32"), path_in("gs.f32"));
	snprintf(args, sizeof args, "compare --arch %s --stem %s --weights %s --input %s "
	         "--shape %d,%d,%d,%d --output %s %s", c->arch, resnet_stem_name(c->stem),
	         path_in("enc.safetensors"), path_in("x.f32"), B, c->in_c, c->hw, c->hw,
	         path_in("y.f32"), train);
	int st = run_script(args);
	if (st == 3) {
		rv = 3;
		goto out;
	}
	CHECK(st == 0, "%s: torchvision_resnet.py compare exited %d", label, st);
	if (st == 0) {
		long got = test_read_floats(path_in("y.f32"), ref, nref);
		CHECK(got == (long)B * D, "%s: %ld features back, expected %d", label, got, B * D);
		if (got == (long)B * D) {
			double d = max_diff(feat, ref, (size_t)B * D), m = max_abs(feat, (size_t)B * D);
			double bound = 1e-4;
			printf("%-36s features max |diff| %.2e (max |f| %.3g, bound %.1e)\n", label, d, m,
			       bound);
			CHECK(d < bound, "%s: features differ from torchvision by %.3g (bound %.3g)", label,
			      d, bound);
		}
		if (c->training)
			check_gradients(label, gx, nx);
	}
out:
	ctx_free(ctx);
	resnet_free(r);
	paramset_free(ps);
	free(xs);
	free(gx);
	free(ref);
	free(w);
	free(feat);
	return rv;
}

/* torchvision -> ssld: its state dict (with fc.* and I64 num_batches_tracked) read back. */
static void import_case(const Case *c)
{
	char label[128], err[512] = "";
	snprintf(label, sizeof label, "import %s %s", c->arch, resnet_stem_name(c->stem));
	ResnetConfig rc;
	resnet_config_preset(&rc, c->depth);
	rc.stem = c->stem;
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 7);
	Resnet *r = NULL;
	if (resnet_new(&rc, ps, "encoder", c->in_c, c->hw, c->hw, &rng, &r, err, sizeof err) < 0) {
		CHECK(0, "%s: %s", label, err);
		paramset_free(ps);
		return;
	}
	const int B = c->batch, D = resnet_out_dim(r);
	const size_t nx = (size_t)B * c->in_c * c->hw * c->hw;
	float *xs = malloc(nx * sizeof *xs), *ref = malloc((size_t)B * D * sizeof *ref);
	for (size_t i = 0; i < nx; i++)
		xs[i] = rng_normal(&rng);
	CHECK(test_write_file(path_in("x.f32"), xs, nx * sizeof *xs) == 0, "write x");
	char args[2048];
	snprintf(args, sizeof args, "export --arch %s --stem %s --weights %s --input %s "
	         "--shape %d,%d,%d,%d --output %s --seed 5", c->arch, resnet_stem_name(c->stem),
	         path_in("tv.safetensors"), path_in("x.f32"), B, c->in_c, c->hw, c->hw,
	         path_in("ty.f32"));
	int st = run_script(args);
	CHECK(st == 0, "%s: torchvision_resnet.py export exited %d", label, st);
	int n = st == 0 ? tv_resnet_load(path_in("tv.safetensors"), ps, "encoder", err, sizeof err)
	                : -1;
	CHECK(n == paramset_count(ps), "%s: loaded %d of %d tensors: %s", label, n,
	      paramset_count(ps), err);
	if (n == paramset_count(ps) && test_read_floats(path_in("ty.f32"), ref, (size_t)B * D) == B * D) {
		Ctx *ctx = ctx_new(1);
		ctx_set_training(ctx, 0);
		ctx_set_grad_enabled(ctx, 0);
		Tensor *x = ctx_wrap(ctx, xs, 4, (int[]){ B, c->in_c, c->hw, c->hw });
		Tensor *f = resnet_forward(ctx, r, x);
		double d = max_diff(f->data, ref, (size_t)B * D), m = max_abs(ref, (size_t)B * D);
		double bound = 1e-4;
		printf("%-36s features max |diff| %.2e (max |f| %.3g, bound %.1e)\n", label, d, m, bound);
		CHECK(d < bound, "%s: features differ from torchvision by %.3g (bound %.3g)", label, d,
		      bound);
		ctx_free(ctx);
	}

	/* the same file into a resnet34 (it lacks layer1.2...) and into width 0.5 (shapes) */
	ParamSet *ps2 = paramset_new();
	Resnet *r2 = NULL;
	ResnetConfig rc2;
	resnet_config_preset(&rc2, 34);
	rc2.stem = c->stem;
	if (resnet_new(&rc2, ps2, "encoder", c->in_c, c->hw, c->hw, &rng, &r2, err, sizeof err) == 0) {
		n = tv_resnet_load(path_in("tv.safetensors"), ps2, "encoder", err, sizeof err);
		CHECK(n == CKPT_EMISMATCH && strstr(err, "layer1.2."), "resnet34 from a resnet18 file: "
		      "%d %s", n, err);
	}
	resnet_free(r2);
	paramset_free(ps2);
	ps2 = paramset_new();
	rc.width = 0.5f;
	if (resnet_new(&rc, ps2, "encoder", c->in_c, c->hw, c->hw, &rng, &r2, err, sizeof err) == 0) {
		Tensor *w0 = paramset_find(ps2, "encoder.conv1.weight");
		float keep = w0->data[0];
		n = tv_resnet_load(path_in("tv.safetensors"), ps2, "encoder", err, sizeof err);
		CHECK(n == CKPT_EMISMATCH && strstr(err, "conv1.weight\" has shape (64,"),
		      "width 0.5 from a width-1 file: %d %s", n, err);
		CHECK(w0->data[0] == keep, "a refused load changed the parameters");
	}
	resnet_free(r2);
	paramset_free(ps2);
	/* a name outside the ResNet under the prefix cannot be exported */
	CHECK(paramset_add(ps, "encoder.fc.weight", 2, (int[]){ 2, 2 }, 0) != NULL, "add fc");
	CHECK(tv_resnet_save(path_in("bad.safetensors"), ps, "encoder", NULL, err, sizeof err) ==
	      CKPT_EINVAL && strstr(err, "encoder.fc.weight"), "export of a non-ResNet name: %s",
	      err);
	CHECK(access(path_in("bad.safetensors"), F_OK) != 0, "a refused export wrote a file");
	resnet_free(r);
	paramset_free(ps);
	free(xs);
	free(ref);
}

static void test_names(void)
{
	char out[256];
	static const char *ok[] = { "conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
		                        "layer4.2.bn3.bias", "layer2.0.downsample.0.weight",
		                        "layer3.12.downsample.1.running_var" };
	static const char *bad[] = { "fc.weight", "bn1.num_batches_tracked", "layer5.0.conv1.weight",
		                         "layer1.0.conv4.weight", "layer1.01.conv1.weight", "conv1.bias",
		                         "layer1.0.downsample.2.weight", "layer1.conv1.weight", "" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		CHECK(tv_resnet_name_ok(ok[i]), "%s should be a ResNet name", ok[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(!tv_resnet_name_ok(bad[i]), "\"%s\" should not be a ResNet name", bad[i]);
	CHECK(tv_resnet_name("encoder.layer1.0.bn2.weight", "encoder", out, sizeof out) == 0 &&
	      strcmp(out, "layer1.0.bn2.weight") == 0, "strip: %s", out);
	CHECK(tv_resnet_name("encoderx.conv1.weight", "encoder", out, sizeof out) == -EINVAL,
	      "another prefix");
	CHECK(tv_resnet_name("conv1.weight", "", out, sizeof out) == 0, "empty prefix");
	CHECK(tv_resnet_name("encoder.conv1.weight", "encoder", out, 4) == -ENAMETOOLONG, "short");
}

/* tv_resnet_each_param walks exactly resnet_new's parameters: names, order and shapes. */
typedef struct Walk {
	const ParamSet *ps;
	int i;
	const char *label;
} Walk;

static int walk_one(void *user, const char *name, int ndim, const int *shape)
{
	Walk *w = user;
	const Tensor *t = w->i < paramset_count(w->ps) ? paramset_at(w->ps, w->i) : NULL;
	int same = t && strcmp(t->name, name) == 0 && t->ndim == ndim;
	for (int d = 0; same && d < ndim; d++)
		same = t->shape[d] == shape[d];
	CHECK(same, "%s: tensor %d: the walk gives %s, resnet_new %s", w->label, w->i, name,
	      t ? t->name : "nothing");
	w->i++;
	return same ? 0 : 1;
}

static void test_layout_walk(void)
{
	static const struct { int depth; ResnetStem stem; float width; int in_c; } cfgs[] = {
		{ 18, RESNET_STEM_CIFAR, 0.5f, 1 }, { 34, RESNET_STEM_IMAGENET, 0.25f, 3 },
		{ 50, RESNET_STEM_IMAGENET, 0.125f, 3 }, { 50, RESNET_STEM_CIFAR, 0.3f, 2 },
	};
	for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
		ResnetConfig c;
		char err[256], label[64];
		resnet_config_preset(&c, cfgs[i].depth);
		c.stem = cfgs[i].stem;
		c.width = cfgs[i].width;
		snprintf(label, sizeof label, "resnet%d %s width %g", cfgs[i].depth,
		         resnet_stem_name(c.stem), (double)c.width);
		ParamSet *ps = paramset_new();
		Resnet *r = NULL;
		Rng rng;
		rng_seed(&rng, 3);
		CHECK(resnet_new(&c, ps, "", cfgs[i].in_c, 32, 32, &rng, &r, err, sizeof err) == 0,
		      "%s: %s", label, err);
		Walk w = { ps, 0, label };
		CHECK(tv_resnet_each_param(&c, cfgs[i].in_c, walk_one, &w) == 0 &&
		      w.i == paramset_count(ps), "%s: the walk gave %d of %d tensors", label, w.i,
		      paramset_count(ps));
		resnet_free(r);
		paramset_free(ps);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PYTHON3 torchvision_resnet.py\n", argv[0]);
		return 2;
	}
	python = argv[1];
	script = argv[2];
	eng_set_threads(1);
	test_names();
	test_layout_walk();
	if (access(python, X_OK) != 0) {
		printf("SKIP: %s is not executable\n", python);
		return failures ? 1 : 77;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	static const Case exports[] = {
		{ "resnet18", 18, RESNET_STEM_IMAGENET, 3, 64, 2, 0 },
		{ "resnet18", 18, RESNET_STEM_CIFAR, 3, 32, 2, 0 },
		{ "resnet18", 18, RESNET_STEM_CIFAR, 1, 16, 2, 0 },
		{ "resnet50", 50, RESNET_STEM_IMAGENET, 3, 32, 2, 0 },
		{ "resnet18", 18, RESNET_STEM_CIFAR, 3, 16, 4, 1 },
	};
	int skipped = 0;
	for (size_t i = 0; i < sizeof exports / sizeof exports[0] && !skipped; i++)
		skipped = export_case(&exports[i]) == 3;
	if (!skipped) {
		import_case(&(Case){ "resnet18", 18, RESNET_STEM_IMAGENET, 3, 64, 2, 0 });
		import_case(&(Case){ "resnet18", 18, RESNET_STEM_CIFAR, 3, 32, 2, 0 });
	}
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	if (skipped) {
		printf("SKIP: torch or torchvision is missing for %s (Debian: python3-torchvision)\n",
		       python);
		return 77;
	}
	printf("torchvision round trips passed\n");
	return 0;
}
