/* test_checkpoint_python.c - interoperability of engine checkpoints with NumPy and PyTorch.
 *
 * Writes a checkpoint (weights with awkward bit patterns, AdamW moments, state, an encoder config
 * with characters that need JSON escaping) and an encoder export, plus a side file with the
 * expected bits of every tensor and the metadata; runs check_safetensors.py (json + numpy, then
 * torch) on them; finally loads the safetensors file that script wrote, as a PyTorch user would
 * hand one over. Exit 77 (skipped) when python3, numpy or torch is missing.
 *
 * usage: test_checkpoint_python PYTHON3 SCRIPT
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "optim.h"
#include "params.h"
#include "rng.h"
#include "check.h"
#include "support.h"

static char *dir; /* scratch directory (test_tmpdir) */

static const char *path_in(const char *name) { return test_path(dir, name); }

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_tensor(FILE *f, const char *name, const Tensor *t, int *first)
{
	fprintf(f, "%s\n  ", *first ? "" : ",");
	*first = 0;
	json_str(f, name);
	fprintf(f, ": {\"shape\": [");
	for (int d = 0; d < t->ndim; d++)
		fprintf(f, "%s%d", d ? ", " : "", t->shape[d]);
	fprintf(f, "], \"bits\": [");
	for (size_t i = 0; i < t->size; i++) {
		uint32_t u;
		memcpy(&u, &t->data[i], 4);
		fprintf(f, "%s\"%08x\"", i ? "," : "", u);
	}
	fprintf(f, "]}");
}

static int run_python(const char *python, const char *script)
{
	const char *argv[] = { python, script, path_in("ckpt.safetensors"), path_in("encoder.safetensors"),
		                   path_in("expected.json"), path_in("from_python.safetensors"), NULL };
	return test_run(argv);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PYTHON3 SCRIPT\n", argv[0]);
		return 1;
	}
	if (access(argv[1], X_OK) != 0)
		return check_skip("%s is not available", argv[1]);
	if (!(dir = test_tmpdir("ckpt-py")))
		return 1;
	char err[512];
	int rc = 1;

	/* model: 1-D to 4-D tensors, a buffer, and a head outside the exported encoder */
	ParamSet *ps = paramset_new();
	paramset_add(ps, "online.encoder.conv1.weight", 4, (int[]){ 4, 1, 3, 3 }, PARAM_DECAY);
	paramset_add(ps, "online.encoder.conv1.bias", 1, (int[]){ 4 }, 0);
	paramset_add(ps, "online.encoder.bn1.running_mean", 1, (int[]){ 4 }, PARAM_BUFFER);
	paramset_add(ps, "online.encoder.fc.weight", 2, (int[]){ 5, 4 }, PARAM_DECAY);
	paramset_add(ps, "online.encoder.fc.bias", 1, (int[]){ 5 }, 0);
	paramset_add(ps, "projector.tokens", 3, (int[]){ 2, 3, 5 }, PARAM_DECAY);
	Rng r;
	rng_seed(&r, 2024);
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		for (size_t j = 0; j < t->size; j++)
			t->data[j] = rng_normal(&r);
	}
	Tensor *w = paramset_find(ps, "projector.tokens");
	w->data[0] = -0.0f, w->data[1] = INFINITY, w->data[2] = -INFINITY, w->data[3] = 1e-42f;
	w->data[4] = NAN, w->data[5] = 3.4028235e38f;
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	Optim *o;
	optim_new(&oc, ps, &o);
	for (int s = 0; s < 3; s++) {
		for (int i = 0; i < paramset_count(ps); i++) {
			Tensor *t = paramset_at(ps, i);
			if (t->grad)
				for (size_t j = 0; j < t->size; j++)
					t->grad[j] = 0.1f * rng_normal(&r);
		}
		optim_step(o, 1e-3f);
	}
	const char *cfg = "{\"kind\":\"cnn\",\"channels\":[32,64],\"note\":\"a \\\"quoted\\\" \\\\ "
	                  "caf\xc3\xa9\\n\"}";
	CheckpointState st = { .step = 3, .epoch = 2, .elapsed_s = 1.5, .rng = r, .method = "byol",
		                   .encoder_config_json = cfg };
	if (checkpoint_save(path_in("ckpt.safetensors"), ps, o, &st, err, sizeof err) < 0 ||
	    checkpoint_export_prefix(path_in("encoder.safetensors"), ps, "online.encoder.",
	                             "encoder.", cfg, err, sizeof err) < 0) {
		fprintf(stderr, "FAIL: %s\n", err);
		goto out;
	}

	FILE *f = fopen(path_in("expected.json"), "w");
	if (!f) {
		fprintf(stderr, "FAIL: cannot write the side file: %s\n", strerror(errno));
		goto out;
	}
	fprintf(f, "{\"tensors\": {");
	int first = 1;
	for (int i = 0; i < paramset_count(ps); i++)
		json_tensor(f, paramset_at(ps, i)->name, paramset_at(ps, i), &first);
	for (int k = 0; k < optim_state_count(o); k++) {
		const char *sn;
		const Tensor *t = optim_state_at(o, k, &sn);
		char name[256];
		snprintf(name, sizeof name, "optim.%s", sn);
		json_tensor(f, name, t, &first);
	}
	char rngs[80];
	snprintf(rngs, sizeof rngs, "%016llx,%016llx,%016llx,%016llx", (unsigned long long)r.s[0],
	         (unsigned long long)r.s[1], (unsigned long long)r.s[2], (unsigned long long)r.s[3]);
	fprintf(f, "\n}, \"meta\": {\"ssld.step\": \"3\", \"ssld.epoch\": \"2\", "
	           "\"ssld.method\": \"byol\", \"ssld.optim_steps\": \"3\", \"ssld.rng\": \"%s\", "
	           "\"ssld.encoder_config\": ",
	        rngs);
	json_str(f, cfg);
	fprintf(f, "}}\n");
	fclose(f);

	int py = run_python(argv[1], argv[2]);
	if (py != 0 && py != 77) {
		fprintf(stderr, "FAIL: %s exited with %d\n", argv[2], py);
		goto out;
	}

	/* the file Python wrote, read as a foreign (unchecked) safetensors file */
	ParamSet *in = paramset_new();
	Tensor *xw = paramset_add(in, "x.weight", 2, (int[]){ 3, 4 }, PARAM_DECAY);
	Tensor *xb = paramset_add(in, "x.bias", 1, (int[]){ 3 }, 0);
	int n = checkpoint_load_prefix(path_in("from_python.safetensors"), in, NULL, NULL,
	                               CKPT_ALLOW_UNCHECKED, NULL, err, sizeof err);
	int ok = n == 2;
	for (int i = 0; ok && i < 12; i++)
		ok = xw->data[i] == 0.5f * (float)i - 1.0f;
	ok = ok && xb->data[0] == 0.0f && signbit(xb->data[0]) && xb->data[1] == 1e-40f &&
	     xb->data[2] == 3.25f;
	if (!ok)
		fprintf(stderr, "FAIL: reading the file written by Python: %d %s\n", n, err);
	else
		printf("engine reads the safetensors file written by Python\n");
	/* and it is refused without the unchecked flag, naming the missing checksum */
	int strict = checkpoint_load(path_in("from_python.safetensors"), in, NULL, NULL, NULL, err,
	                             sizeof err);
	if (strict != CKPT_ECORRUPT || !strstr(err, "ssld.header_crc32")) {
		fprintf(stderr, "FAIL: strict load of a foreign file: %d %s\n", strict, err);
		ok = 0;
	}
	paramset_free(in);
	rc = ok ? py : 1;
	if (py == 77)
		printf("SKIP: torch part skipped (see above); numpy part and read-back passed\n");
out:
	optim_free(o);
	paramset_free(ps);
	test_rmtree(dir);
	free(dir);
	return rc;
}
