/* byte_lm.c - the checks and batches the byte-level language models share
 * (byte_lm.h). Nothing here knows a loss or a head. */
#include "byte_lm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../alloc.h"

int byte_lm_init(ByteLm *lm, const char *method, uint64_t salt, int causal, const MethodEnv *env,
                 ParamSet *ps, char *err, size_t errlen)
{
	memset(lm, 0, sizeof *lm);
	lm->method = method;
	lm->salt = salt;
	lm->perm_epoch = -1;
	const EncoderConfig *cfg = env->encoder;
	if (cfg->kind != ENC_TRANSFORMER) {
		snprintf(err, errlen, "%s: model.encoder must be \"transformer\", got \"%s\"", method,
		         encoder_kind_name(cfg->kind));
		return -EINVAL;
	}
	if (cfg->vocab < 256) {
		snprintf(err, errlen, "%s: the byte vocabulary needs model.vocab >= 256, got %d", method,
		         cfg->vocab);
		return -EINVAL;
	}
	const Dataset *ds = env->ds;
	if (!ds || (ds->kind != DATASET_TEXT && ds->kind != DATASET_TEXT_RECORDS)) {
		snprintf(err, errlen, "%s: needs a text or text_records dataset", method);
		return -EINVAL;
	}
	lm->B = env->batch_size;
	lm->T = ds->kind == DATASET_TEXT_RECORDS ? ds->record_bytes : cfg->context;
	if (lm->T > cfg->context) {
		snprintf(err, errlen, "%s: records of %d bytes exceed model.context %d", method, lm->T,
		         cfg->context);
		return -EINVAL;
	}
	if (ds->kind == DATASET_TEXT && ds->text_train_len < (size_t)lm->T + 1) {
		snprintf(err, errlen, "%s: the training text has %zu bytes, fewer than one window of "
		         "model.context + 1 = %d", method, ds->text_train_len, lm->T + 1);
		return -EINVAL;
	}
	EncoderConfig ec = *cfg;
	ec.causal = causal;
	int rc = encoder_new(&ec, ps, "encoder", 1, 1, lm->T, env->rng, &lm->encoder, err, errlen);
	if (rc < 0)
		return rc;
	lm->tf = encoder_transformer(lm->encoder);
	return 0;
}

void byte_lm_close(ByteLm *lm)
{
	encoder_free(lm->encoder);
	eng_free(lm->perm);
	lm->encoder = NULL;
	lm->tf = NULL;
	lm->perm = NULL;
}

Encoder *byte_lm_encoder(void *state)
{
	return ((ByteLm *)state)->encoder;
}

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void byte_lm_record(const Dataset *ds, const Split *split, int r, int T, int *x, int *y)
{
	const uint8_t *rec = (split == &ds->test ? ds->rec_test : ds->rec_train) +
	                     (size_t)r * ds->record_bytes;
	int len = (split == &ds->test ? ds->rec_test_len : ds->rec_train_len)[r];
	for (int t = 0; t < T; t++) {
		x[t] = rec[t];
		if (y)
			y[t] = t + 1 < len ? rec[t + 1] : -1;
	}
}

int byte_lm_draw(ByteLm *lm, const Dataset *ds, uint64_t seed, int64_t step, Rng *rng, int *x,
                 int *y, char *err, size_t errlen)
{
	rng_seed(rng, mix64(seed ^ lm->salt) ^ mix64((uint64_t)step));
	if (ds->kind == DATASET_TEXT) {
		if (text_windows(ds->text_train, ds->text_train_len, lm->B, lm->T, rng, x, y) < 0) {
			snprintf(err, errlen, "%s: %zu training bytes cannot hold a window of %d", lm->method,
			         ds->text_train_len, lm->T + 1);
			return -EINVAL;
		}
		return 0;
	}
	int n = ds->train.n;
	if (n <= 0) {
		snprintf(err, errlen, "%s: the training split has no records", lm->method);
		return -EINVAL;
	}
	/* Whole records in a seeded order per epoch (epoch = the step's share of n/B). */
	int per_epoch = n / lm->B > 0 ? n / lm->B : 1;
	int64_t epoch = step / per_epoch;
	if (epoch != lm->perm_epoch || seed != lm->perm_seed || lm->perm_n != n) {
		eng_free(lm->perm);
		lm->perm = eng_malloc((size_t)n * sizeof *lm->perm);
		if (!lm->perm) {
			snprintf(err, errlen, "%s: out of memory", lm->method);
			return -ENOMEM;
		}
		Rng prng;
		rng_seed(&prng, mix64(seed ^ 0x7065726dULL) ^ mix64((uint64_t)epoch));
		rng_permutation(&prng, lm->perm, n);
		lm->perm_n = n;
		lm->perm_epoch = epoch;
		lm->perm_seed = seed;
	}
	int first = (int)(step % per_epoch) * lm->B;
	for (int i = 0; i < lm->B; i++)
		byte_lm_record(ds, &ds->train, lm->perm[(first + i) % n], lm->T, x + (size_t)i * lm->T,
		               y ? y + (size_t)i * lm->T : NULL);
	return 0;
}
