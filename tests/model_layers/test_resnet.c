/* test_resnet.c - the ResNet backbones (engine/resnet.h): parameter counts and names equal to
 * torchvision's resnet18/34/50 without fc (counts taken from torchvision 0.14), feature sizes
 * over stems, widths and 1/3 input channels, zero-initialised residual BNs (a fresh block is
 * relu(x + shortcut)), config errors naming the key, eval mode using the running statistics,
 * and a few SGD steps on random data through a linear head that drive the loss down.
 * The finite-difference check of the whole network is test_resnet_gradcheck.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "layers.h"
#include "ops.h"
#include "optim.h"
#include "params.h"
#include "resnet.h"
#include "check.h"


static void fill_rand(Tensor *t, Rng *r, float scale)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = scale * rng_normal(r);
}

static size_t count_buffers(const ParamSet *ps)
{
	size_t n = 0;
	for (int i = 0; i < paramset_count(ps); i++)
		if (paramset_flags_at(ps, i) & PARAM_BUFFER)
			n += paramset_at(ps, i)->size;
	return n;
}

/* torchvision.models.resnetN(): parameters and buffers (num_batches_tracked and fc excluded). */
static void test_torchvision_sizes(void)
{
	static const struct {
		int depth;
		size_t params, buffers;
		int tensors, out_dim;
	} want[] = {
		{ 18, 11176512, 9600, 100, 512 },
		{ 34, 21284672, 17024, 180, 512 },
		{ 50, 23508032, 53120, 265, 2048 },
	};
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		ResnetConfig c;
		CHECK(resnet_config_preset(&c, want[k].depth) == 0, "preset %d", want[k].depth);
		ParamSet *ps = paramset_new();
		Rng rng;
		rng_seed(&rng, 1);
		Resnet *r = NULL;
		char err[256] = "";
		int rc = resnet_new(&c, ps, "encoder", 3, 224, 224, &rng, &r, err, sizeof err);
		CHECK(rc == 0, "resnet%d: %s", want[k].depth, err);
		if (rc == 0) {
			size_t p = paramset_numel(ps, 1), b = count_buffers(ps);
			CHECK(p == want[k].params, "resnet%d: %zu parameters, torchvision has %zu",
			      want[k].depth, p, want[k].params);
			CHECK(b == want[k].buffers, "resnet%d: %zu buffer elements, torchvision has %zu",
			      want[k].depth, b, want[k].buffers);
			CHECK(paramset_count(ps) == want[k].tensors, "resnet%d: %d tensors, expected %d",
			      want[k].depth, paramset_count(ps), want[k].tensors);
			CHECK(resnet_out_dim(r) == want[k].out_dim && resnet_config_out_dim(&c) ==
			      want[k].out_dim, "resnet%d: out_dim %d", want[k].depth, resnet_out_dim(r));
			int64_t ep = 0, ea = 0;
			int64_t od = resnet_estimate(&c, 3, 224, 224, &ep, &ea);
			CHECK(ep == (int64_t)want[k].params && od == want[k].out_dim,
			      "resnet%d: estimate %lld parameters, out %lld", want[k].depth, (long long)ep,
			      (long long)od);
			CHECK(ea > 3 * 224 * 224 && ea < 400000000, "resnet%d: %lld activation floats",
			      want[k].depth, (long long)ea);
		}
		resnet_free(r);
		paramset_free(ps);
	}
}

/* A few names and shapes, spelled as torchvision spells them. */
static void test_names(void)
{
	ResnetConfig c;
	resnet_config_preset(&c, 50);
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 2);
	Resnet *r = NULL;
	char err[256] = "";
	CHECK(resnet_new(&c, ps, "encoder", 3, 64, 64, &rng, &r, err, sizeof err) == 0, "%s", err);
	static const struct {
		const char *name;
		int ndim, shape[4];
	} want[] = {
		{ "encoder.conv1.weight", 4, { 64, 3, 7, 7 } },
		{ "encoder.bn1.running_var", 1, { 64 } },
		{ "encoder.layer1.0.conv1.weight", 4, { 64, 64, 1, 1 } },
		{ "encoder.layer1.0.downsample.0.weight", 4, { 256, 64, 1, 1 } },
		{ "encoder.layer1.0.downsample.1.running_mean", 1, { 256 } },
		{ "encoder.layer2.0.conv2.weight", 4, { 128, 128, 3, 3 } },
		{ "encoder.layer3.5.bn3.weight", 1, { 1024 } },
		{ "encoder.layer4.2.conv3.weight", 4, { 2048, 512, 1, 1 } },
	};
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		Tensor *t = paramset_find(ps, want[k].name);
		CHECK(t != NULL, "%s missing", want[k].name);
		if (!t)
			continue;
		int ok = t->ndim == want[k].ndim;
		for (int d = 0; ok && d < t->ndim; d++)
			ok = t->shape[d] == want[k].shape[d];
		CHECK(ok, "%s has the wrong shape", want[k].name);
	}
	CHECK(paramset_find(ps, "encoder.layer1.1.downsample.0.weight") == NULL,
	      "a block without a stride or channel change has no downsample");
	CHECK(paramset_find(ps, "encoder.fc.weight") == NULL, "no fc head");
	resnet_free(r);
	paramset_free(ps);

	/* the 18: layer1 keeps 64 channels (no downsample), layer2.0 halves the map */
	resnet_config_preset(&c, 18);
	c.stem = RESNET_STEM_CIFAR;
	ps = paramset_new();
	CHECK(resnet_new(&c, ps, "", 1, 28, 28, &rng, &r, err, sizeof err) == 0, "%s", err);
	Tensor *w = paramset_find(ps, "conv1.weight");
	CHECK(w && w->shape[1] == 1 && w->shape[2] == 3, "cifar stem conv1 is 3x3 over 1 channel");
	CHECK(!paramset_find(ps, "layer1.0.downsample.0.weight"), "resnet18 layer1.0 has no downsample");
	CHECK(paramset_find(ps, "layer2.0.downsample.0.weight"), "resnet18 layer2.0 downsamples");
	resnet_free(r);
	paramset_free(ps);
}

/* Output sizes over stems, widths and channels; eval and training mode agree on shape. */
static void test_shapes(void)
{
	static const struct {
		int depth;
		ResnetStem stem;
		float width;
		int in_c, hw, out_dim;
	} cases[] = {
		{ 18, RESNET_STEM_CIFAR, 0.5f, 3, 32, 256 },
		{ 18, RESNET_STEM_IMAGENET, 0.25f, 1, 28, 128 },
		{ 34, RESNET_STEM_CIFAR, 0.125f, 1, 12, 64 },
		{ 50, RESNET_STEM_CIFAR, 0.0625f, 3, 16, 128 },
		{ 18, RESNET_STEM_IMAGENET, 0.01f, 3, 9, 5 },   /* round(5.12) = 5 channels */
	};
	Ctx *ctx = ctx_new(3);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		ResnetConfig c;
		resnet_config_preset(&c, cases[k].depth);
		c.stem = cases[k].stem;
		c.width = cases[k].width;
		ParamSet *ps = paramset_new();
		Rng rng;
		rng_seed(&rng, 4);
		Resnet *r = NULL;
		char err[256] = "";
		int rc = resnet_new(&c, ps, "enc", cases[k].in_c, cases[k].hw, cases[k].hw, &rng, &r,
		                    err, sizeof err);
		CHECK(rc == 0, "case %zu: %s", k, err);
		if (rc < 0) {
			paramset_free(ps);
			continue;
		}
		CHECK(resnet_out_dim(r) == cases[k].out_dim, "case %zu: out_dim %d, expected %d", k,
		      resnet_out_dim(r), cases[k].out_dim);
		for (int training = 0; training < 2; training++) {
			ctx_reset(ctx);
			ctx_set_training(ctx, training);
			Tensor *x = ctx_tensor(ctx, 4, (int[]){ 2, cases[k].in_c, cases[k].hw, cases[k].hw });
			fill_rand(x, &rng, 1.0f);
			Tensor *f = resnet_forward(ctx, r, x);
			CHECK(f->ndim == 2 && f->shape[0] == 2 && f->shape[1] == cases[k].out_dim,
			      "case %zu: features (%d,%d)", k, f->shape[0], f->shape[1]);
			int finite = 1;
			for (size_t i = 0; i < f->size; i++)
				finite &= isfinite(f->data[i]);
			CHECK(finite, "case %zu: non-finite features", k);
		}
		resnet_free(r);
		paramset_free(ps);
	}
	ctx_free(ctx);
}

/* Every block's last BN weight starts at 0 (bottleneck bn3, basic bn2), so a residual branch
 * starts silent: changing a conv inside one leaves the eval features unchanged, while changing
 * the stem does not. */
static void test_zero_init(void)
{
	ResnetConfig c;
	resnet_config_preset(&c, 50);
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 5);
	Resnet *r = NULL;
	char err[256] = "";
	CHECK(resnet_new(&c, ps, "e", 3, 32, 32, &rng, &r, err, sizeof err) == 0, "%s", err);
	int zero = 0, nonzero = 0;
	for (int i = 0; i < paramset_count(ps); i++) {
		const Tensor *t = paramset_at(ps, i);
		const char *n = t->name;
		size_t len = strlen(n);
		if (len < 11 || strcmp(n + len - 11, ".bn3.weight") != 0)
			continue;
		for (size_t j = 0; j < t->size; j++)
			*(t->data[j] == 0.0f ? &zero : &nonzero) += 1;
	}
	CHECK(zero > 0 && nonzero == 0, "bottleneck bn3 weights: %d zero, %d not", zero, nonzero);
	CHECK(paramset_find(ps, "e.layer1.0.bn2.weight")->data[0] == 1.0f, "bn2 of a bottleneck is 1");
	resnet_free(r);
	paramset_free(ps);

	/* Perturbing a conv inside a residual branch (before its zeroed BN) leaves the features
	 * unchanged in eval mode; perturbing the stem changes them. */
	resnet_config_preset(&c, 18);
	c.stem = RESNET_STEM_CIFAR;
	c.width = 0.125f;
	ps = paramset_new();
	CHECK(resnet_new(&c, ps, "e", 3, 8, 8, &rng, &r, err, sizeof err) == 0, "%s", err);
	Ctx *ctx = ctx_new(6);
	ctx_set_training(ctx, 0);
	ctx_set_grad_enabled(ctx, 0);
	Tensor *x = ctx_tensor(ctx, 4, (int[]){ 2, 3, 8, 8 });
	fill_rand(x, &rng, 1.0f);
	float base[128], after[128];
	Tensor *f = resnet_forward(ctx, r, x);
	memcpy(base, f->data, f->size * sizeof(float));
	fill_rand(paramset_find(ps, "e.layer2.1.conv1.weight"), &rng, 1.0f);
	f = resnet_forward(ctx, r, x);
	memcpy(after, f->data, f->size * sizeof(float));
	CHECK(memcmp(base, after, f->size * sizeof(float)) == 0,
	      "a branch behind a zero BN weight changed the features");
	fill_rand(paramset_find(ps, "e.conv1.weight"), &rng, 1.0f);
	f = resnet_forward(ctx, r, x);
	CHECK(memcmp(base, f->data, f->size * sizeof(float)) != 0, "the stem does not reach the output");
	ctx_free(ctx);
	resnet_free(r);
	paramset_free(ps);
}

static void test_config_errors(void)
{
	ResnetConfig c;
	char err[256];
	CHECK(resnet_config_preset(&c, 101) == -EINVAL, "no resnet101 preset");
	resnet_config_preset(&c, 18);
	c.width = 0.0f;
	CHECK(resnet_config_check(&c, 3, 32, 32, err, sizeof err) < 0 &&
	      strstr(err, "model.width"), "width 0: %s", err);
	c.width = 9.0f;
	CHECK(resnet_config_check(&c, 3, 32, 32, err, sizeof err) < 0 &&
	      strstr(err, "model.width"), "width 9: %s", err);
	c.width = NAN;
	CHECK(resnet_config_check(&c, 3, 32, 32, err, sizeof err) < 0, "width NaN: %s", err);
	resnet_config_preset(&c, 18);
	c.blocks[2] = 0;
	CHECK(resnet_config_check(&c, 3, 32, 32, err, sizeof err) < 0 &&
	      strstr(err, "model.blocks[2]"), "blocks: %s", err);
	resnet_config_preset(&c, 18);
	c.stem = (ResnetStem)7;
	CHECK(resnet_config_check(&c, 3, 32, 32, err, sizeof err) < 0 && strstr(err, "model.stem"),
	      "stem: %s", err);
	resnet_config_preset(&c, 18);
	CHECK(resnet_config_check(&c, 0, 32, 32, err, sizeof err) < 0, "no channels: %s", err);

	ResnetStem s;
	CHECK(resnet_stem_parse("cifar", &s) == 0 && s == RESNET_STEM_CIFAR, "parse cifar");
	CHECK(resnet_stem_parse("imagenet", &s) == 0 && s == RESNET_STEM_IMAGENET, "parse imagenet");
	CHECK(resnet_stem_parse("tiny", &s) == -EINVAL, "parse tiny");
	CHECK(strcmp(resnet_stem_name(RESNET_STEM_CIFAR), "cifar") == 0, "stem name");

	/* the same prefix twice */
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 7);
	Resnet *a = NULL, *b = NULL;
	CHECK(resnet_new(&c, ps, "enc", 3, 32, 32, &rng, &a, err, sizeof err) == 0, "%s", err);
	CHECK(resnet_new(&c, ps, "enc", 3, 32, 32, &rng, &b, err, sizeof err) == -EEXIST &&
	      b == NULL && strstr(err, "already exist"), "duplicate prefix: %s", err);
	resnet_free(a);
	paramset_free(ps);
}

/* Eval mode normalises with the running statistics: after training-mode forwards have moved
 * them, eval features differ from what the initial statistics give. */
static void test_eval_uses_running_stats(void)
{
	ResnetConfig c;
	resnet_config_preset(&c, 18);
	c.stem = RESNET_STEM_CIFAR;
	c.width = 0.125f;
	c.blocks[0] = c.blocks[1] = c.blocks[2] = c.blocks[3] = 1;
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, 8);
	Resnet *r = NULL;
	char err[256] = "";
	CHECK(resnet_new(&c, ps, "e", 3, 8, 8, &rng, &r, err, sizeof err) == 0, "%s", err);
	Ctx *ctx = ctx_new(9);
	Tensor *x = ctx_tensor(ctx, 4, (int[]){ 4, 3, 8, 8 });
	fill_rand(x, &rng, 1.0f);
	for (size_t i = 0; i < x->size; i++)
		x->data[i] += 2.0f;   /* a mean far from the initial running mean 0 */
	ctx_set_training(ctx, 0);
	float before[256];
	Tensor *f = resnet_forward(ctx, r, x);
	memcpy(before, f->data, f->size * sizeof(float));
	const float rm0 = paramset_find(ps, "e.bn1.running_mean")->data[0];
	ctx_set_training(ctx, 1);
	for (int i = 0; i < 5; i++)
		resnet_forward(ctx, r, x);
	CHECK(paramset_find(ps, "e.bn1.running_mean")->data[0] != rm0,
	      "training forward did not update bn1.running_mean");
	ctx_set_training(ctx, 0);
	f = resnet_forward(ctx, r, x);
	CHECK(memcmp(before, f->data, f->size * sizeof(float)) != 0,
	      "eval features ignore the running statistics");
	ctx_free(ctx);
	resnet_free(r);
	paramset_free(ps);
}

/* A ResNet on (C, hw, hw) inputs with a linear head of K classes, both in one fresh ParamSet. */
static ParamSet *resnet_with_head(const ResnetConfig *c, int C, int hw, int K, uint64_t seed,
                                  Resnet **r, Linear *head)
{
	ParamSet *ps = paramset_new();
	Rng rng;
	rng_seed(&rng, seed);
	char err[256] = "";
	*r = NULL;
	CHECK(resnet_new(c, ps, "encoder", C, hw, hw, &rng, r, err, sizeof err) == 0, "%s", err);
	CHECK(*r && linear_init(head, ps, "head", resnet_out_dim(*r), K, 1, &rng) == 0, "head");
	return ps;
}

/* Random images, random labels, a linear head, SGD: the loss must fall well below its start. */
static void test_training_loss_falls(void)
{
	const int B = 8, C = 3, HW = 8, K = 4, steps = 40;
	ResnetConfig c;
	resnet_config_preset(&c, 18);
	c.stem = RESNET_STEM_CIFAR;
	c.width = 0.125f;
	Resnet *r = NULL;
	Linear head;
	ParamSet *ps = resnet_with_head(&c, C, HW, K, 10, &r, &head);
	Rng rng;
	rng_seed(&rng, 110);
	OptimConfig oc;
	optim_config_default(&oc, OPT_SGD);
	oc.lr = 0.05f;
	oc.momentum = 0.9f;
	Optim *opt = NULL;
	CHECK(optim_new(&oc, ps, &opt) == 0, "optim_new");
	float *xs = malloc((size_t)B * C * HW * HW * sizeof *xs);
	int labels[8];
	for (int i = 0; i < B * C * HW * HW; i++)
		xs[i] = rng_normal(&rng);
	for (int i = 0; i < B; i++)
		labels[i] = i % K;
	Ctx *ctx = ctx_new(11);
	ctx_set_training(ctx, 1);
	float first = 0.0f, last = 0.0f;
	for (int s = 0; s < steps && opt; s++) {
		ctx_reset(ctx);
		paramset_zero_grad(ps);
		Tensor *x = ctx_wrap(ctx, xs, 4, (int[]){ B, C, HW, HW });
		Tensor *loss = op_cross_entropy(ctx, linear_forward(ctx, &head, resnet_forward(ctx, r, x)),
		                                labels, 0.0f);
		if (s == 0)
			first = loss->data[0];
		last = loss->data[0];
		CHECK(ctx_backward(ctx, loss) == 0, "backward");
		optim_step(opt, oc.lr);
	}
	CHECK(isfinite(last) && last < 0.25f * first, "loss %.4f -> %.4f in %d steps", first, last,
	      steps);
	printf("training: loss %.4f -> %.4f in %d steps\n", first, last, steps);
	/* every trainable tensor received a gradient on the last step */
	int without = 0;
	for (int i = 0; i < paramset_count(ps); i++) {
		const Tensor *t = paramset_at(ps, i);
		if (paramset_flags_at(ps, i) & PARAM_BUFFER)
			continue;
		double g = 0.0;
		for (size_t j = 0; j < t->size; j++)
			g += fabs(t->grad[j]);
		if (g == 0.0 && without++ < 3)
			fprintf(stderr, "no gradient reached %s\n", t->name);
	}
	CHECK(without == 0, "%d parameters got no gradient", without);
	free(xs);
	ctx_free(ctx);
	optim_free(opt);
	resnet_free(r);
	paramset_free(ps);
}

/* The activation estimate (resnet_estimate, what `ssld check` and admission control use) against
 * the arena's high-water mark of a real training step (forward, loss, backward) at 28, 32 and
 * 64 px, both stems, basic and bottleneck blocks: within [0.8, 1.5] of what the step used. The
 * batch is large enough for the per-sample terms to dominate the per-layer scratch, as they do at
 * the batches jobs use. */
static void test_estimate_covers_step(void)
{
	static const struct { int depth, stem, hw; float width; } cases[] = {
		{ 18, RESNET_STEM_CIFAR, 32, 0.5f },
		{ 18, RESNET_STEM_CIFAR, 28, 0.25f },
		{ 34, RESNET_STEM_IMAGENET, 64, 0.25f },
		{ 50, RESNET_STEM_CIFAR, 32, 0.125f },
	};
	const int B = 32, C = 3, K = 4;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		ResnetConfig c;
		resnet_config_preset(&c, cases[k].depth);
		c.stem = cases[k].stem;
		c.width = cases[k].width;
		const int hw = cases[k].hw;
		Resnet *r = NULL;
		Linear head;
		ParamSet *ps = resnet_with_head(&c, C, hw, K, 12, &r, &head);
		if (!r) {
			paramset_free(ps);
			continue;
		}
		Rng rng;
		rng_seed(&rng, 112);
		int64_t params = 0, acts = 0;
		resnet_estimate(&c, C, hw, hw, &params, &acts);
		Ctx *ctx = ctx_new(13);
		ctx_set_training(ctx, 1);
		ctx_reset(ctx);
		Tensor *x = ctx_tensor(ctx, 4, (int[]){ B, C, hw, hw });
		fill_rand(x, &rng, 1.0f);
		int labels[32];
		for (int i = 0; i < B; i++)
			labels[i] = i % K;
		Tensor *loss = op_cross_entropy(ctx, linear_forward(ctx, &head, resnet_forward(ctx, r, x)),
		                                labels, 0.0f);
		CHECK(ctx_backward(ctx, loss) == 0, "backward");
		const double used = (double)ctx_arena_used(ctx);
		const double est = 4.0 * (double)acts * B;
		printf("estimate: resnet%d stem %d %dpx width %g: %.2f MiB estimated, %.2f MiB used (%.2f)\n",
		       cases[k].depth, cases[k].stem, hw, (double)c.width, est / 1048576.0,
		       used / 1048576.0, est / used);
		CHECK(est >= 0.8 * used && est <= 1.5 * used, "resnet%d %dpx width %g: estimate %.1f MiB "
		      "for a step that used %.1f MiB", cases[k].depth, hw, (double)c.width,
		      est / 1048576.0, used / 1048576.0);
		ctx_free(ctx);
		resnet_free(r);
		paramset_free(ps);
	}
}

int main(void)
{
	eng_set_threads(1);
	test_torchvision_sizes();
	test_names();
	test_shapes();
	test_zero_init();
	test_config_errors();
	test_eval_uses_running_stats();
	test_training_loss_falls();
	test_estimate_covers_step();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("all resnet checks passed\n");
	return 0;
}
