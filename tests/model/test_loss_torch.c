/* test_loss_torch.c - loss values and gradients of ops_loss.c against PyTorch.
 *
 * The gradcheck suite proves each backward matches its own forward; this test proves the forward
 * means what the field means by the name: the same inputs go through the engine and through the
 * usual PyTorch formulation (F.cross_entropy with label_smoothing and ignore_index, the SimCLR
 * NT-Xent with the diagonal masked, MoCo/CLIP InfoNCE, ...) in check_losses_torch.py, and the loss
 * values and input gradients must agree. Exit 77 when python3 or torch is missing.
 *
 * usage: test_loss_torch PYTHON3 SCRIPT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "ops.h"
#include "rng.h"
#include "check.h"
#include "support.h"

static FILE *out;
static int ncase;

static void put_floats(const float *v, size_t n)
{
	fputc('[', out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%.9g", i ? "," : "", (double)v[i]);
	fputc(']', out);
}

static void put_tensor(const char *name, const Tensor *t, int first)
{
	fprintf(out, "%s\"%s\":{\"shape\":[", first ? "" : ",", name);
	for (int d = 0; d < t->ndim; d++)
		fprintf(out, "%s%d", d ? "," : "", t->shape[d]);
	fprintf(out, "],\"data\":");
	put_floats(t->data, t->size);
	if (t->requires_grad && t->grad) {
		fprintf(out, ",\"grad\":");
		put_floats(t->grad, t->size);
	}
	fputc('}', out);
}

static Tensor *input(Ctx *ctx, Rng *r, int ndim, const int *shape, float scale, int grad)
{
	Tensor *t = ctx_tensor(ctx, ndim, shape);
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = scale * rng_normal(r);
	t->requires_grad = (uint8_t)grad;
	return t;
}

/* Runs backward from loss and writes one case: kind, options (a JSON fragment), tensors. */
static void emit(Ctx *ctx, const char *kind, const char *opts, Tensor *loss, Tensor **ts,
                 const char **names, int n)
{
	if (ctx_backward(ctx, loss) != 0) {
		fprintf(stderr, "FAIL: backward of %s\n", kind);
		exit(1);
	}
	fprintf(out, "%s\n{\"kind\":\"%s\",\"opts\":{%s},\"loss\":%.9g,\"tensors\":{", ncase++ ? "," : "",
	        kind, opts, (double)loss->data[0]);
	for (int i = 0; i < n; i++)
		put_tensor(names[i], ts[i], i == 0);
	fprintf(out, "}}");
	ctx_reset(ctx); /* the next case starts with an empty tape */
}

static void cases(Ctx *ctx, Rng *r)
{
	{
		Tensor *t[2] = { input(ctx, r, 2, (int[]){ 4, 6 }, 1.0f, 1),
			             input(ctx, r, 2, (int[]){ 4, 6 }, 1.0f, 1) };
		const char *nm[2] = { "pred", "target" };
		emit(ctx, "mse", "", op_mse(ctx, t[0], t[1]), t, nm, 2);
	}
	{
		Tensor *t[2] = { input(ctx, r, 3, (int[]){ 2, 5, 4 }, 1.0f, 1),
			             input(ctx, r, 3, (int[]){ 2, 5, 4 }, 1.0f, 0) };
		static const float mask[10] = { 1, 0, 0, 1, 1, 0, 1, 0, 0, 1 };
		const char *nm[2] = { "pred", "target" };
		emit(ctx, "masked_mse", "\"mask\":[1,0,0,1,1,0,1,0,0,1]",
		     op_masked_mse(ctx, t[0], t[1], mask), t, nm, 2);
	}
	{
		Tensor *t[2] = { input(ctx, r, 2, (int[]){ 3, 7 }, 3.0f, 1),
			             input(ctx, r, 2, (int[]){ 3, 7 }, 1.0f, 0) };
		for (size_t i = 0; i < t[1]->size; i++)
			t[1]->data[i] = rng_uniform(r);
		const char *nm[2] = { "logits", "target" };
		emit(ctx, "bce_logits", "", op_bce_logits(ctx, t[0], t[1]), t, nm, 2);
	}
	{
		static const int labels[8] = { 3, 0, -1, 9, 5, 5, -1, 2 };
		const float smooth[2] = { 0.0f, 0.1f };
		for (int s = 0; s < 2; s++) {
			Tensor *t[1] = { input(ctx, r, 2, (int[]){ 8, 10 }, 2.0f, 1) };
			const char *nm[1] = { "logits" };
			char opts[128];
			snprintf(opts, sizeof opts, "\"labels\":[3,0,-1,9,5,5,-1,2],\"smoothing\":%g",
			         (double)smooth[s]);
			emit(ctx, "cross_entropy", opts, op_cross_entropy(ctx, t[0], labels, smooth[s]), t, nm,
			     1);
		}
	}
	{
		Tensor *t[1] = { input(ctx, r, 2, (int[]){ 12, 8 }, 1.0f, 1) };
		const char *nm[1] = { "z" };
		emit(ctx, "nt_xent", "\"temperature\":0.2", op_nt_xent(ctx, t[0], 0.2f), t, nm, 1);
	}
	{
		Tensor *t[3] = { input(ctx, r, 2, (int[]){ 6, 8 }, 0.4f, 1),
			             input(ctx, r, 2, (int[]){ 6, 8 }, 0.4f, 1),
			             input(ctx, r, 2, (int[]){ 16, 8 }, 0.4f, 1) };
		const char *nm[3] = { "q", "k", "neg" };
		emit(ctx, "infonce_moco", "\"temperature\":0.07",
		     op_infonce(ctx, t[0], t[1], t[2], 0.07f, NULL), t, nm, 3);
	}
	{
		Tensor *t[3] = { input(ctx, r, 2, (int[]){ 6, 8 }, 0.4f, 1),
			             input(ctx, r, 2, (int[]){ 6, 8 }, 0.4f, 1),
			             ctx_tensor(ctx, 1, (int[]){ 1 }) };
		t[2]->data[0] = 14.285f;
		t[2]->requires_grad = 1;
		const char *nm[3] = { "q", "k", "scale" };
		emit(ctx, "infonce_clip", "", op_infonce(ctx, t[0], t[1], NULL, 1.0f, t[2]), t, nm, 3);
	}
	{
		Tensor *t[2] = { input(ctx, r, 2, (int[]){ 5, 3 }, 1.0f, 1),
			             input(ctx, r, 2, (int[]){ 5, 3 }, 0.7f, 1) };
		const char *nm[2] = { "mu", "logvar" };
		emit(ctx, "kl_gaussian", "", op_kl_gaussian(ctx, t[0], t[1]), t, nm, 2);
	}
	{
		Tensor *t[3] = { input(ctx, r, 2, (int[]){ 5, 9 }, 1.0f, 1),
			             input(ctx, r, 2, (int[]){ 5, 9 }, 1.0f, 1),
			             input(ctx, r, 1, (int[]){ 5 }, 1.0f, 0) };
		const char *nm[3] = { "a", "b", "w" };
		Tensor *c = op_cosine_sim(ctx, t[0], t[1]);
		emit(ctx, "cosine_sim", "", op_sum(ctx, op_mul(ctx, c, t[2]), OP_ALL, 0), t, nm, 3);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PYTHON3 SCRIPT\n", argv[0]);
		return 1;
	}
	if (access(argv[1], X_OK) != 0)
		return check_skip("%s is not available", argv[1]);
	const char *tmp = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/ssld-loss-XXXXXX.json", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemps(path, 5);
	if (fd < 0 || !(out = fdopen(fd, "w"))) {
		fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
		return 1;
	}
	Ctx *ctx = ctx_new(1);
	Rng r;
	rng_seed(&r, 77);
	fprintf(out, "[");
	cases(ctx, &r);
	fprintf(out, "\n]\n");
	fclose(out);
	ctx_free(ctx);

	int rc = test_run((const char *const[]){ argv[1], argv[2], path, NULL });
	unlink(path);
	if (rc < 0)
		rc = 1;
	if (rc != 0 && rc != 77)
		fprintf(stderr, "FAIL: %s exited with %d\n", argv[2], rc);
	return rc;
}
