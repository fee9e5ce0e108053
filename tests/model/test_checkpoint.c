/* test_checkpoint.c - safetensors checkpoints: bit-exact round trips (weights, optimizer moments,
 * step, RNG, metadata), resume equivalence, prefix export and transfer loads, and the failure
 * paths: every truncation length, every single-byte corruption, foreign and malformed files,
 * wrong names and shapes, and write faults (missing directory, rename onto a directory, a file
 * size limit hit mid-write) - each must end in the named error with nothing half-done.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "checkpoint.h"
#include "optim.h"
#include "params.h"
#include "rng.h"
#include "check.h"
#include "support.h"

static char *dir; /* scratch directory (test_tmpdir) */

static const char *path_in(const char *name) { return test_path(dir, name); }

/* Random bit patterns: NaN payloads, infinities, denormals and -0 must all survive. */
static void fill_bits(Tensor *t, Rng *r)
{
	for (size_t i = 0; i < t->size; i++) {
		uint32_t u = (uint32_t)rng_u64(r);
		memcpy(&t->data[i], &u, 4);
	}
}

static void fill_normal(Tensor *t, Rng *r, float scale)
{
	for (size_t i = 0; i < t->size; i++)
		t->data[i] = scale * rng_normal(r);
}

/* A small model: online/target encoders with a BatchNorm buffer, and a head. */
static ParamSet *make_model(int fc_out)
{
	ParamSet *ps = paramset_new();
	const char *pre[2] = { "online.encoder.", "target.encoder." };
	char name[128];
	for (int k = 0; k < 2; k++) {
		snprintf(name, sizeof name, "%sconv1.weight", pre[k]);
		paramset_add(ps, name, 4, (int[]){ 4, 1, 3, 3 }, PARAM_DECAY);
		snprintf(name, sizeof name, "%sconv1.bias", pre[k]);
		paramset_add(ps, name, 1, (int[]){ 4 }, 0);
		snprintf(name, sizeof name, "%sbn1.running_mean", pre[k]);
		paramset_add(ps, name, 1, (int[]){ 4 }, PARAM_BUFFER);
		snprintf(name, sizeof name, "%sfc.weight", pre[k]);
		paramset_add(ps, name, 2, (int[]){ fc_out, 4 }, PARAM_DECAY);
	}
	paramset_add(ps, "head.weight", 2, (int[]){ 3, fc_out }, PARAM_DECAY);
	return ps;
}

static int same_bits(const Tensor *a, const Tensor *b)
{
	return tensor_same_shape(a, b) && memcmp(a->data, b->data, a->size * sizeof(float)) == 0;
}

static int sets_equal(const ParamSet *a, const ParamSet *b)
{
	if (paramset_count(a) != paramset_count(b))
		return 0;
	for (int i = 0; i < paramset_count(a); i++) {
		const Tensor *x = paramset_at(a, i), *y = paramset_find(b, x->name);
		if (!y || !same_bits(x, y))
			return 0;
	}
	return 1;
}

/* A hand-made safetensors file: header JSON then raw data. */
static void write_st(const char *p, const char *header, const void *data, size_t n)
{
	FILE *f = fopen(p, "wb");
	uint64_t len = strlen(header);
	unsigned char lb[8];
	for (int i = 0; i < 8; i++)
		lb[i] = (unsigned char)(len >> (8 * i));
	fwrite(lb, 1, 8, f);
	fwrite(header, 1, len, f);
	if (n)
		fwrite(data, 1, n, f);
	fclose(f);
}

static int no_temp_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ok = 1;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			ok = 0;
	closedir(d);
	return ok;
}

static int step_training(ParamSet *ps, Optim *o, Rng *r, int steps)
{
	for (int s = 0; s < steps; s++) {
		for (int i = 0; i < paramset_count(ps); i++) {
			Tensor *t = paramset_at(ps, i);
			if (t->grad)
				for (size_t j = 0; j < t->size; j++)
					t->grad[j] = 0.1f * rng_normal(r);
		}
		optim_step(o, 0.01f);
		optim_ema(ps, "target.", ps, "online.", 0.9f);
	}
	return 0;
}

/* ---- round trips ---------------------------------------------------------------------------- */

static void test_round_trip(void)
{
	char err[512];
	Rng r;
	rng_seed(&r, 7);
	ParamSet *ps = make_model(5);
	for (int i = 0; i < paramset_count(ps); i++)
		fill_bits(paramset_at(ps, i), &r);
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	Optim *o;
	optim_new(&oc, ps, &o);
	for (int k = 0; k < optim_state_count(o); k++)
		fill_bits(optim_state_at(o, k, NULL), &r);
	optim_set_steps(o, 123456789012LL);
	Rng saved_rng;
	rng_seed(&saved_rng, 99);
	rng_u64(&saved_rng);
	const char *cfg = "{\"kind\":\"cnn\",\"note\":\"quote \\\" backslash \\\\ tab\\t \xc3\xa9\"}";
	CheckpointState st = { .step = 4242, .epoch = 17, .elapsed_s = 12.625, .rng = saved_rng,
		                   .method = "simclr", .encoder_config_json = cfg };
	const char *p = path_in("rt.safetensors");
	int rc = checkpoint_save(p, ps, o, &st, err, sizeof err);
	CHECK(rc == 0, "save: %s", err);

	ParamSet *ps2 = make_model(5);
	Optim *o2;
	optim_new(&oc, ps2, &o2);
	CheckpointState back;
	rc = checkpoint_load(p, ps2, o2, &back, NULL, err, sizeof err);
	CHECK(rc == paramset_count(ps), "load returned %d: %s", rc, err);
	CHECK(sets_equal(ps, ps2), "weights differ after the round trip");
	for (int k = 0; k < optim_state_count(o); k++)
		CHECK(same_bits(optim_state_at(o, k, NULL), optim_state_at(o2, k, NULL)),
		      "optimizer tensor %d differs", k);
	CHECK(optim_steps(o2) == 123456789012LL, "optimizer steps %lld", (long long)optim_steps(o2));
	CHECK(back.step == 4242 && back.epoch == 17 && back.elapsed_s == 12.625, "step/epoch/time");
	CHECK(memcmp(&back.rng, &saved_rng, sizeof saved_rng) == 0, "RNG state differs");
	CHECK(back.method && strcmp(back.method, "simclr") == 0, "method");
	CHECK(back.encoder_config_json && strcmp(back.encoder_config_json, cfg) == 0,
	      "encoder config: %s", back.encoder_config_json ? back.encoder_config_json : "(null)");
	checkpoint_state_free(&back);
	checkpoint_state_free(&back); /* idempotent */

	/* the low-level view agrees */
	Checkpoint *ck;
	rc = checkpoint_open(p, 0, &ck, err, sizeof err);
	CHECK(rc == 0, "open: %s", err);
	if (rc == 0) {
		CHECK(checkpoint_count(ck) == paramset_count(ps) + optim_state_count(o), "count %d",
		      checkpoint_count(ck));
		const Tensor *t = checkpoint_find(ck, "optim.adam.v.head.weight");
		CHECK(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 5, "optim tensor view");
		CHECK(((uintptr_t)checkpoint_tensor_at(ck, 0)->data & 7) == 0, "data not aligned");
		CHECK(checkpoint_meta(ck, "ssld.data_crc32") && checkpoint_meta(ck, "ssld.format"),
		      "metadata keys");
		CHECK(checkpoint_find(ck, "nope") == NULL, "find of a missing name");
		checkpoint_close(ck);
	}
	checkpoint_close(NULL);

	/* the data section starts 8-byte aligned */
	size_t n;
	uint8_t *img = test_read_file(p, &n);
	uint64_t hl = 0;
	for (int i = 0; i < 8; i++)
		hl |= (uint64_t)img[i] << (8 * i);
	CHECK((8 + hl) % 8 == 0, "header length %llu leaves the data unaligned", (unsigned long long)hl);
	free(img);

	/* a checkpoint without state or optimizer loads with zeroed state */
	const char *p2 = path_in("plain.safetensors");
	CHECK(checkpoint_save(p2, ps, NULL, NULL, err, sizeof err) == 0, "plain save: %s", err);
	rc = checkpoint_load(p2, ps2, NULL, &back, NULL, err, sizeof err);
	CHECK(rc > 0 && back.step == 0 && back.method == NULL && back.rng.s[0] == 0,
	      "plain load: %s", err);
	checkpoint_state_free(&back);
	/* ... but not when the caller wants optimizer state */
	rc = checkpoint_load(p2, ps2, o2, NULL, NULL, err, sizeof err);
	CHECK(rc == CKPT_EMISMATCH && strstr(err, "no optimizer state"), "rc %d: %s", rc, err);

	/* saving over an existing file replaces it and leaves no temporary behind */
	fill_bits(paramset_at(ps, 0), &r);
	CHECK(checkpoint_save(p, ps, o, &st, err, sizeof err) == 0, "overwrite: %s", err);
	CHECK(checkpoint_load(p, ps2, o2, NULL, NULL, err, sizeof err) > 0, "reload: %s", err);
	CHECK(sets_equal(ps, ps2), "overwritten checkpoint differs");
	CHECK(no_temp_files(), "temporary files left in %s", dir);

	optim_free(o);
	optim_free(o2);
	paramset_free(ps);
	paramset_free(ps2);
}

/* Save mid-training, continue; load into fresh objects, continue: identical bits. */
static void test_resume_equivalence(void)
{
	char err[512];
	const OptimKind kinds[3] = { OPT_SGD, OPT_ADAMW, OPT_LARS };
	for (int k = 0; k < 3; k++) {
		Rng init;
		rng_seed(&init, 11);
		ParamSet *a = make_model(6);
		for (int i = 0; i < paramset_count(a); i++)
			fill_normal(paramset_at(a, i), &init, 0.5f);
		OptimConfig oc;
		optim_config_default(&oc, kinds[k]);
		oc.nesterov = 1;
		Optim *oa;
		optim_new(&oc, a, &oa);
		Rng grads;
		rng_seed(&grads, 5);
		step_training(a, oa, &grads, 3);
		CheckpointState st = { .step = 3, .rng = grads };
		const char *p = path_in("resume.safetensors");
		CHECK(checkpoint_save(p, a, oa, &st, err, sizeof err) == 0, "save: %s", err);
		step_training(a, oa, &grads, 4);

		ParamSet *b = make_model(6);
		Optim *ob;
		optim_new(&oc, b, &ob);
		CheckpointState back;
		CHECK(checkpoint_load(p, b, ob, &back, NULL, err, sizeof err) > 0, "load: %s", err);
		Rng g2 = back.rng;
		step_training(b, ob, &g2, 4);
		CHECK(sets_equal(a, b), "optimizer %d: resumed training diverged from the original", k);
		CHECK(optim_steps(oa) == optim_steps(ob), "steps %lld vs %lld",
		      (long long)optim_steps(oa), (long long)optim_steps(ob));
		checkpoint_state_free(&back);
		optim_free(oa);
		optim_free(ob);
		paramset_free(a);
		paramset_free(b);
	}
}

/* ---- export and transfer -------------------------------------------------------------------- */

static void test_export_transfer(void)
{
	char err[512];
	Rng r;
	rng_seed(&r, 3);
	ParamSet *ps = make_model(5);
	for (int i = 0; i < paramset_count(ps); i++)
		fill_normal(paramset_at(ps, i), &r, 1.0f);
	const char *p = path_in("encoder.safetensors");
	int rc = checkpoint_export_prefix(p, ps, "online.encoder.", "encoder.", "{\"kind\":\"cnn\"}",
	                                  err, sizeof err);
	CHECK(rc == 0, "export: %s", err);
	Checkpoint *ck;
	rc = checkpoint_open(p, 0, &ck, err, sizeof err);
	CHECK(rc == 0, "open export: %s", err);
	if (rc == 0) {
		CHECK(checkpoint_count(ck) == 4, "export holds %d tensors, expected 4",
		      checkpoint_count(ck));
		CHECK(checkpoint_find(ck, "encoder.fc.weight") && !checkpoint_find(ck, "head.weight"),
		      "export names");
		const char *c = checkpoint_meta(ck, "ssld.encoder_config");
		CHECK(c && strcmp(c, "{\"kind\":\"cnn\"}") == 0, "export config");
		checkpoint_close(ck);
	}
	CHECK(checkpoint_export_prefix(p, ps, "nothing.", "x.", NULL, err, sizeof err) == CKPT_EINVAL,
	      "export of an empty selection must fail");

	/* downstream model: "encoder.*" plus a fresh classifier */
	ParamSet *down = paramset_new();
	Tensor *w = paramset_add(down, "encoder.conv1.weight", 4, (int[]){ 4, 1, 3, 3 }, PARAM_DECAY);
	paramset_add(down, "encoder.conv1.bias", 1, (int[]){ 4 }, 0);
	paramset_add(down, "encoder.bn1.running_mean", 1, (int[]){ 4 }, PARAM_BUFFER);
	paramset_add(down, "encoder.fc.weight", 2, (int[]){ 5, 4 }, PARAM_DECAY);
	Tensor *cls = paramset_add(down, "classifier.weight", 2, (int[]){ 10, 5 }, PARAM_DECAY);
	cls->data[0] = 42.0f;
	rc = checkpoint_load(p, down, NULL, NULL, "encoder.", err, sizeof err);
	CHECK(rc == 4, "subset load returned %d: %s", rc, err);
	CHECK(same_bits(w, paramset_find(ps, "online.encoder.conv1.weight")), "exported weights");
	CHECK(cls->data[0] == 42.0f, "a parameter outside the prefix was touched");
	/* loading everything from the export fails: the classifier is not in it */
	rc = checkpoint_load(p, down, NULL, NULL, NULL, err, sizeof err);
	CHECK(rc == CKPT_EMISMATCH && strstr(err, "classifier.weight"), "rc %d: %s", rc, err);

	/* straight from a full pretraining checkpoint, with a prefix rewrite */
	const char *full = path_in("full.safetensors");
	CHECK(checkpoint_save(full, ps, NULL, NULL, err, sizeof err) == 0, "save: %s", err);
	memset(w->data, 0, w->size * sizeof(float));
	rc = checkpoint_load_prefix(full, down, "target.encoder.", "encoder.", 0, NULL, err,
	                            sizeof err);
	CHECK(rc == 4, "transfer load returned %d: %s", rc, err);
	CHECK(same_bits(w, paramset_find(ps, "target.encoder.conv1.weight")), "transfer weights");

	/* strictness: a file tensor under the prefix that the model lacks */
	Tensor *extra = paramset_add(ps, "online.encoder.fc.bias", 1, (int[]){ 5 }, 0);
	extra->data[0] = 1.0f;
	CHECK(checkpoint_save(full, ps, NULL, NULL, err, sizeof err) == 0, "save: %s", err);
	rc = checkpoint_load_prefix(full, down, "online.encoder.", "encoder.", 0, NULL, err,
	                            sizeof err);
	CHECK(rc == CKPT_EMISMATCH && strstr(err, "online.encoder.fc.bias"), "rc %d: %s", rc, err);
	rc = checkpoint_load_prefix(full, down, "online.encoder.", "encoder.", CKPT_ALLOW_UNUSED,
	                            NULL, err, sizeof err);
	CHECK(rc == 4, "ALLOW_UNUSED: %d %s", rc, err);
	/* ... and a model parameter the file lacks */
	paramset_add(down, "encoder.fc2.weight", 2, (int[]){ 2, 2 }, PARAM_DECAY);
	rc = checkpoint_load_prefix(full, down, "online.encoder.", "encoder.", CKPT_ALLOW_UNUSED,
	                            NULL, err, sizeof err);
	CHECK(rc == CKPT_EMISMATCH && strstr(err, "online.encoder.fc2.weight"), "rc %d: %s", rc,
	      err);
	rc = checkpoint_load_prefix(full, down, "online.encoder.", "encoder.",
	                            CKPT_ALLOW_UNUSED | CKPT_ALLOW_MISSING, NULL, err, sizeof err);
	CHECK(rc == 4, "ALLOW_MISSING: %d %s", rc, err);
	paramset_free(down);
	paramset_free(ps);
}

/* ---- mismatches ----------------------------------------------------------------------------- */

static void test_mismatch(void)
{
	char err[512];
	Rng r;
	rng_seed(&r, 4);
	ParamSet *ps = make_model(5);
	for (int i = 0; i < paramset_count(ps); i++)
		fill_normal(paramset_at(ps, i), &r, 1.0f);
	OptimConfig oc;
	optim_config_default(&oc, OPT_ADAMW);
	Optim *o;
	optim_new(&oc, ps, &o);
	const char *p = path_in("mm.safetensors");
	CHECK(checkpoint_save(p, ps, o, NULL, err, sizeof err) == 0, "save: %s", err);

	/* wrong shape: fc (6,4) instead of (5,4); nothing may change */
	ParamSet *other = make_model(6);
	Tensor *c1 = paramset_find(other, "online.encoder.conv1.weight");
	c1->data[0] = 77.0f;
	int rc = checkpoint_load(p, other, NULL, NULL, NULL, err, sizeof err);
	CHECK(rc == CKPT_EMISMATCH, "wrong shape rc %d", rc);
	CHECK(strstr(err, p) && strstr(err, "fc.weight") && strstr(err, "(5,4)") &&
	          strstr(err, "(6,4)"),
	      "wrong shape message: %s", err);
	CHECK(c1->data[0] == 77.0f, "a failed load modified the model");

	/* wrong optimizer */
	ParamSet *same = make_model(5);
	OptimConfig sc;
	optim_config_default(&sc, OPT_SGD);
	Optim *so;
	optim_new(&sc, same, &so);
	rc = checkpoint_load(p, same, so, NULL, NULL, err, sizeof err);
	CHECK(rc == CKPT_EMISMATCH && strstr(err, "optimizer"), "optimizer mismatch rc %d: %s", rc,
	      err);
	CHECK(paramset_find(same, "head.weight")->data[0] == 0.0f, "modified on optimizer mismatch");
	optim_free(so);

	/* a name the model lacks */
	ParamSet *fewer = paramset_new();
	paramset_add(fewer, "online.encoder.conv1.weight", 4, (int[]){ 4, 1, 3, 3 }, PARAM_DECAY);
	rc = checkpoint_load(p, fewer, NULL, NULL, NULL, err, sizeof err);
	CHECK(rc == CKPT_EMISMATCH && strstr(err, "no parameter"), "unused tensor rc %d: %s", rc,
	      err);
	CHECK(strcmp(checkpoint_strerror(CKPT_EMISMATCH), "does not match the model") == 0,
	      "strerror");
	paramset_free(fewer);
	paramset_free(same);
	paramset_free(other);
	optim_free(o);
	paramset_free(ps);
}

/* ---- damaged files -------------------------------------------------------------------------- */

static void test_truncation_and_flips(void)
{
	char err[512];
	Rng r;
	rng_seed(&r, 8);
	ParamSet *ps = paramset_new();
	paramset_add(ps, "enc.w", 2, (int[]){ 3, 4 }, PARAM_DECAY);
	paramset_add(ps, "enc.b", 1, (int[]){ 3 }, 0);
	for (int i = 0; i < paramset_count(ps); i++)
		fill_normal(paramset_at(ps, i), &r, 1.0f);
	CheckpointState st = { .step = 12, .epoch = 1, .rng = r, .method = "mae",
		                   .encoder_config_json = "{\"dim\":64}" };
	const char *p = path_in("dmg.safetensors");
	CHECK(checkpoint_save(p, ps, NULL, &st, err, sizeof err) == 0, "save: %s", err);
	size_t n;
	uint8_t *img = test_read_file(p, &n);
	const char *q = path_in("damaged.safetensors");
	ParamSet *dst = paramset_new();
	Tensor *dw = paramset_add(dst, "enc.w", 2, (int[]){ 3, 4 }, PARAM_DECAY);
	paramset_add(dst, "enc.b", 1, (int[]){ 3 }, 0);

	/* every truncation length is refused, and the message names the file */
	int bad = 0;
	for (size_t len = 0; len < n; len++) {
		test_write_file(q, img, len);
		dw->data[0] = 5.0f;
		int rc = checkpoint_load(q, dst, NULL, NULL, NULL, err, sizeof err);
		if (rc != CKPT_EFORMAT || !strstr(err, q) || dw->data[0] != 5.0f) {
			if (bad++ < 3)
				fprintf(stderr, "  truncated to %zu: rc %d: %s\n", len, rc, err);
		}
	}
	CHECK(bad == 0, "%d truncation lengths were not refused with CKPT_EFORMAT", bad);
	test_write_file(q, img, 5);
	checkpoint_load(q, dst, NULL, NULL, NULL, err, sizeof err);
	CHECK(strstr(err, "too short"), "short file message: %s", err);
	test_write_file(q, img, n - 1);
	checkpoint_load(q, dst, NULL, NULL, NULL, err, sizeof err);
	CHECK(strstr(err, "truncated"), "truncated data message: %s", err);

	/* every single-bit corruption (two bit positions per byte) is detected */
	bad = 0;
	int corrupt_data = 0;
	uint64_t hl = 0;
	for (int i = 0; i < 8; i++)
		hl |= (uint64_t)img[i] << (8 * i);
	for (size_t pos = 0; pos < n; pos++) {
		for (int b = 0; b < 2; b++) {
			uint8_t mask = b ? 0x80 : 0x01;
			img[pos] ^= mask;
			test_write_file(q, img, n);
			img[pos] ^= mask;
			dw->data[0] = 5.0f;
			int rc = checkpoint_load(q, dst, NULL, NULL, NULL, err, sizeof err);
			int ok = rc < 0 && strstr(err, q) && dw->data[0] == 5.0f;
			if (pos >= 8 + hl) {
				ok = ok && rc == CKPT_ECORRUPT && strstr(err, "data checksum mismatch");
				corrupt_data += ok;
			}
			if (!ok && bad++ < 5)
				fprintf(stderr, "  byte %zu ^ %02x not detected properly: rc %d: %s\n", pos,
				        mask, rc, err);
		}
	}
	CHECK(bad == 0, "%d of %zu single-bit corruptions were not detected", bad, 2 * n);
	CHECK(corrupt_data == (int)(2 * (n - 8 - hl)), "data corruption detections %d", corrupt_data);
	/* a changed metadata value that stays well-formed is caught by the header checksum */
	char *hdr = (char *)img + 8;
	char *stp = strstr(hdr, "\"ssld.step\":\"12\"");
	CHECK(stp != NULL, "step key not found in the header");
	if (stp) {
		stp[14] = '3';
		test_write_file(q, img, n);
		stp[14] = '2';
		int rc = checkpoint_load(q, dst, NULL, NULL, NULL, err, sizeof err);
		CHECK(rc == CKPT_ECORRUPT && strstr(err, "header checksum mismatch"), "rc %d: %s", rc,
		      err);
	}
	free(img);
	paramset_free(dst);
	paramset_free(ps);
}

static void test_foreign(void)
{
	char err[512];
	Checkpoint *ck;
	const char *q = path_in("foreign.bin");
	int rc;

	rc = checkpoint_open(path_in("does-not-exist"), 0, &ck, err, sizeof err);
	CHECK(rc == CKPT_EIO && strstr(err, "cannot open") && strstr(err, "does-not-exist"),
	      "missing file: %s", err);
	rc = checkpoint_open(dir, 0, &ck, err, sizeof err);
	CHECK(rc == CKPT_EFORMAT && strstr(err, "not a regular file"), "directory: %s", err);
	test_write_file(q, "", 0);
	rc = checkpoint_open(q, 0, &ck, err, sizeof err);
	CHECK(rc == CKPT_EFORMAT && strstr(err, "too short"), "empty file: %s", err);
	static const uint8_t png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
		                           'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0 };
	test_write_file(q, png, sizeof png);
	rc = checkpoint_open(q, 0, &ck, err, sizeof err);
	CHECK(rc == CKPT_EFORMAT && strstr(err, "does not fit"), "png: %s", err);
	const char *text = "this is a plain text file, not a checkpoint at all\n";
	test_write_file(q, text, strlen(text));
	rc = checkpoint_open(q, 0, &ck, err, sizeof err);
	CHECK(rc == CKPT_EFORMAT, "text: %s", err);
	Rng r;
	rng_seed(&r, 1);
	for (int t = 0; t < 200; t++) { /* random garbage never crashes */
		uint8_t junk[300];
		size_t len = rng_below(&r, sizeof junk);
		for (size_t i = 0; i < len; i++)
			junk[i] = (uint8_t)rng_u64(&r);
		if (len >= 8 && t % 2) { /* plausible length prefix */
			uint64_t hl = rng_below(&r, (uint32_t)(len - 7));
			for (int i = 0; i < 8; i++)
				junk[i] = (uint8_t)(hl >> (8 * i));
			if (len > 8)
				junk[8] = '{';
		}
		test_write_file(q, junk, len);
		rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED, &ck, err, sizeof err);
		CHECK(rc < 0, "garbage %d accepted", t);
	}

	/* a valid safetensors file as PyTorch would write it (no ssld checksums) */
	float vals[6] = { 1, 2, 3, 4, 5, 6 };
	write_st(q,
	         "{\"__metadata__\":{\"format\":\"pt\"},\"a.w\":{\"dtype\":\"F32\",\"shape\":[2,2],"
	         "\"data_offsets\":[0,16]},\"a.b\":{\"shape\":[2],\"dtype\":\"F32\",\"data_offsets\""
	         ":[16,24],\"extra\":{\"nested\":[1,2.5,true,null,\"s\"]}}}   ",
	         vals, sizeof vals);
	rc = checkpoint_open(q, 0, &ck, err, sizeof err);
	CHECK(rc == CKPT_ECORRUPT && strstr(err, "not written by ssld"), "unchecked: %s", err);
	rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED, &ck, err, sizeof err);
	CHECK(rc == 0, "pytorch-style file refused: %s", err);
	if (rc == 0) {
		const Tensor *b = checkpoint_find(ck, "a.b");
		CHECK(b && b->size == 2 && b->data[0] == 5.0f && b->data[1] == 6.0f, "a.b values");
		CHECK(strcmp(checkpoint_meta(ck, "format"), "pt") == 0, "format metadata");
		checkpoint_close(ck);
	}
	ParamSet *ps = paramset_new();
	Tensor *w = paramset_add(ps, "a.w", 2, (int[]){ 2, 2 }, PARAM_DECAY);
	paramset_add(ps, "a.b", 1, (int[]){ 2 }, 0);
	rc = checkpoint_load_prefix(q, ps, NULL, NULL, CKPT_ALLOW_UNCHECKED, NULL, err, sizeof err);
	CHECK(rc == 2 && w->data[3] == 4.0f, "load of a pytorch-style file: %d %s", rc, err);
	paramset_free(ps);

	/* a PyTorch state dict with an I64 entry (BatchNorm's num_batches_tracked): refused unless
	 * CKPT_SKIP_OTHER_DTYPES, which drops it and keeps the F32 tensors around it */
	uint8_t mixed[4 + 8 + 4] = { 0 };
	const float one = 1.5f, two = -2.0f;
	const int64_t nbt = 7;
	memcpy(mixed, &one, 4);
	memcpy(mixed + 4, &nbt, 8);
	memcpy(mixed + 12, &two, 4);
	write_st(q,
	         "{\"bn.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	         "\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[4,12]},"
	         "\"bn.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
	         mixed, sizeof mixed);
	rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED, &ck, err, sizeof err);
	CHECK(rc == CKPT_EFORMAT && strstr(err, "num_batches_tracked") && strstr(err, "I64"),
	      "I64 without the flag: %s", err);
	rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED | CKPT_SKIP_OTHER_DTYPES, &ck, err, sizeof err);
	CHECK(rc == 0, "I64 entry with CKPT_SKIP_OTHER_DTYPES: %s", err);
	if (rc == 0) {
		const Tensor *bw = checkpoint_find(ck, "bn.weight"), *bb = checkpoint_find(ck, "bn.bias");
		CHECK(checkpoint_count(ck) == 2 && !checkpoint_find(ck, "bn.num_batches_tracked"),
		      "the I64 entry is dropped (%d tensors)", checkpoint_count(ck));
		CHECK(bw && bb && bw->data[0] == 1.5f && bb->data[0] == -2.0f, "F32 values around it");
		checkpoint_close(ck);
	}
	/* a known dtype still has to fit its bytes, an unknown one is refused */
	write_st(q, "{\"n\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}", mixed, 8);
	rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED | CKPT_SKIP_OTHER_DTYPES, &ck, err, sizeof err);
	CHECK(rc == CKPT_EFORMAT && strstr(err, "8 bytes for 2 I64"), "short I64: %s", err);
	write_st(q, "{\"n\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,8]}}", mixed, 8);
	rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED | CKPT_SKIP_OTHER_DTYPES, &ck, err, sizeof err);
	CHECK(rc == CKPT_EFORMAT && strstr(err, "Q7"), "unknown dtype: %s", err);

	/* malformed headers: each refused with a specific message */
	static const struct {
		const char *header;
		size_t data;
		const char *expect;
	} cases[] = {
		{ "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "only F32" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "bytes for 2" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "contiguous" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "contiguous" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
		  "dimensions" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "unexpected end" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
		  "non-negative integer" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "integer" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks data_offsets" },
		{ "{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
		  "\"data_offsets\":[0,4]}}", 4, "not a string" },
		{ "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "bad tensor name" },
		{ "{\"a\\u0001\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "bad tensor name" },
		{ "{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "surrogate" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
		  "too large" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
		  4, "dimension" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":"
		  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", 4,
		  "nested deeper" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4,
		  "after the header" },
		{ "[1,2,3]", 0, "does not start with '{'" },
		{ "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "duplicate key \"dtype\"" },
		{ "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		  "NUL character" },
		{ "{\"__metadata__\":{\"k\":\"v\t\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
		  "\"data_offsets\":[0,4]}}", 4, "control character" },
		{ "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
		  "\"data_offsets\":[0,4]}}", 4, "duplicate __metadata__ key" },
		{ "{\"__metadata__\":{},\"__metadata__\":{},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
		  "\"data_offsets\":[0,4]}}", 4, "duplicate __metadata__" },
		{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9007199254740993]}}", 4,
		  "too large" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		float zero[2] = { 0, 0 };
		write_st(q, cases[i].header, zero, cases[i].data);
		rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED, &ck, err, sizeof err);
		CHECK(rc == CKPT_EFORMAT && strstr(err, cases[i].expect) && strstr(err, q),
		      "case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err, cases[i].expect);
		if (rc == 0)
			checkpoint_close(ck);
	}
	/* an empty header with no data is a valid (empty) file */
	write_st(q, "{}      ", NULL, 0);
	rc = checkpoint_open(q, CKPT_ALLOW_UNCHECKED, &ck, err, sizeof err);
	CHECK(rc == 0, "empty safetensors: %s", err);
	if (rc == 0) {
		CHECK(checkpoint_count(ck) == 0, "empty count");
		checkpoint_close(ck);
	}
}

/* ---- write faults --------------------------------------------------------------------------- */

static void test_write_faults(void)
{
	char err[512];
	ParamSet *ps = paramset_new();
	Tensor *w = paramset_add(ps, "w", 1, (int[]){ 4096 }, PARAM_DECAY);
	for (size_t i = 0; i < w->size; i++)
		w->data[i] = (float)i;
	int rc = checkpoint_save(path_in("no/such/dir/x.safetensors"), ps, NULL, NULL, err,
	                         sizeof err);
	CHECK(rc == CKPT_EIO && strstr(err, "no/such/dir") && strstr(err, "No such file"),
	      "missing directory: %d %s", rc, err);

	/* the target is a directory: rename fails, the temporary file is removed */
	const char *d = path_in("adir");
	mkdir(d, 0755);
	rc = checkpoint_save(d, ps, NULL, NULL, err, sizeof err);
	CHECK(rc == CKPT_EIO && strstr(err, "rename"), "rename onto a directory: %d %s", rc, err);
	CHECK(no_temp_files(), "temporary file left after a failed rename");
	rmdir(d);

	/* a file size limit hit mid-write: the old checkpoint survives intact */
	const char *p = path_in("limited.safetensors");
	CHECK(checkpoint_save(p, ps, NULL, NULL, err, sizeof err) == 0, "save: %s", err);
	w->data[0] = -1.0f;
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 4096;
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
		rc = checkpoint_save(p, ps, NULL, NULL, err, sizeof err);
		setrlimit(RLIMIT_FSIZE, &old);
		CHECK(rc == CKPT_EIO && strstr(err, "writing"), "write fault: %d %s", rc, err);
		CHECK(no_temp_files(), "temporary file left after a write fault");
		ParamSet *back = paramset_new();
		Tensor *bw = paramset_add(back, "w", 1, (int[]){ 4096 }, PARAM_DECAY);
		rc = checkpoint_load(p, back, NULL, NULL, NULL, err, sizeof err);
		CHECK(rc == 1 && bw->data[0] == 0.0f && bw->data[4095] == 4095.0f,
		      "old checkpoint damaged by a failed write: %d %s", rc, err);
		paramset_free(back);
	} else {
		fprintf(stderr, "note: setrlimit(RLIMIT_FSIZE) unavailable, write-fault case skipped\n");
	}
	signal(SIGXFSZ, SIG_DFL);

	/* names that cannot be stored */
	ParamSet *odd = paramset_new();
	paramset_add(odd, "__metadata__", 1, (int[]){ 1 }, 0);
	rc = checkpoint_save(path_in("odd.safetensors"), odd, NULL, NULL, err, sizeof err);
	CHECK(rc == CKPT_EINVAL && strstr(err, "__metadata__"), "reserved name: %d %s", rc, err);
	paramset_free(odd);
	paramset_free(ps);
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(void)
{
	if (!(dir = test_tmpdir("ckpt")))
		return 1;
	test_round_trip();
	test_resume_equivalence();
	test_export_transfer();
	test_mismatch();
	test_truncation_and_flips();
	test_foreign();
	test_write_faults();
	test_rmtree(dir);
	free(dir);
	return check_exit("test_checkpoint");
}
