/* embed_map.c - the embedding map artifact (see embed_map.h): sample, encode, map, write.
 *
 * Not here: the t-SNE itself (../tsne.c) and anything about jobs' state or the web page.
 */
#include "embed_map.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../alloc.h"
#include "../ctx.h"
#include "../data/png_grid.h"
#include "../rng.h"
#include "../tsne.h"
#include "eval.h"
#include "../../common/monotime.h"

#define EMBED_MAP_TEXT_BYTES 200

void embed_map_config_default(EmbedMapConfig *c)
{
	*c = (EmbedMapConfig){ .enabled = 0, .points = 2000, .perplexity = 30.0f, .iterations = 1000 };
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* The sampled images (n,C,H,W) box-averaged by `f` into (n,C,H/f,W/f) for the sprite sheet. */
static float *sprite_cells(const Dataset *ds, const int *idx, int n, int f, int *ch, int *cw)
{
	int c = ds->c, h = ds->h, w = ds->w, oh = h / f, ow = w / f;
	float *out = eng_malloc((size_t)n * c * oh * ow * sizeof(float));
	if (!out)
		return NULL;
	for (int i = 0; i < n; i++) {
		const float *src = ds->test.x + (size_t)idx[i] * ds->sample_floats;
		float *dst = out + (size_t)i * c * oh * ow;
		for (int k = 0; k < c; k++)
			for (int y = 0; y < oh; y++)
				for (int x = 0; x < ow; x++) {
					float s = 0.0f;
					for (int dy = 0; dy < f; dy++)
						for (int dx = 0; dx < f; dx++)
							s += src[((size_t)k * h + y * f + dy) * w + x * f + dx];
					dst[((size_t)k * oh + y) * ow + x] = s / (float)(f * f);
				}
	}
	*ch = oh;
	*cw = ow;
	return out;
}

static int write_text(const char *dir, const char *name, const char *text, char *err, size_t errlen)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
	if (f)
		ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* The mapped points' embeddings as a NumPy .npy file (n,d) float32, row i = map point i, so other
 * tools (scikit-learn's t-SNE in bench/embed_map.py) can work on exactly what was mapped. */
static int write_npy(const char *dir, const float *x, int n, int d, char *err, size_t errlen)
{
	char path[4096], tmp[4200], hdr[128];
	snprintf(path, sizeof path, "%s/" EMBED_MAP_FEATURES, dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }",
	                   n, d);
	int total = 10 + len + 1, padded = (total + 63) / 64 * 64;
	FILE *f = fopen(tmp, "wb");
	int ok = f != NULL;
	if (ok) {
		unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
		                          (unsigned char)((padded - 10) & 0xff), (unsigned char)((padded - 10) >> 8) };
		ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
		for (int i = total; ok && i < padded; i++)
			ok = fputc(' ', f) != EOF;
		ok = ok && fputc('\n', f) != EOF &&   /* little-endian hosts only: x86-64, aarch64 */
		     fwrite(x, sizeof(float), (size_t)n * d, f) == (size_t)n * d;
		ok = fclose(f) == 0 && ok;
	}
	if (!ok || rename(tmp, path) != 0) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

static cJSON *int_array(const int *v, int n)
{
	return cJSON_CreateIntArray(v, n);
}

static cJSON *rounded_array(const float *y, int n, int stride)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber(round((double)y[(size_t)i * stride] * 1e3) / 1e3));
	return a;
}

/* The record's first bytes as text (JSON is UTF-8: a cut character is the browser's to replace). */
static cJSON *record_texts(const Dataset *ds, const int *idx, int n)
{
	cJSON *a = cJSON_CreateArray();
	char buf[EMBED_MAP_TEXT_BYTES + 1];
	for (int i = 0; a && i < n; i++) {
		int len = ds->rec_test_len ? ds->rec_test_len[idx[i]] : 0;
		if (len > EMBED_MAP_TEXT_BYTES)
			len = EMBED_MAP_TEXT_BYTES;
		const uint8_t *r = ds->rec_test + (size_t)idx[i] * ds->record_bytes;
		for (int b = 0; b < len; b++)
			buf[b] = r[b] ? (char)r[b] : ' ';
		buf[len] = 0;
		cJSON_AddItemToArray(a, cJSON_CreateString(buf));
	}
	return a;
}

int embed_map_write(const EmbedMapEnv *env, const EmbedMapConfig *cfg, const char *dir,
                    EmbedMapResult *out, char *err, size_t errlen)
{
	const Dataset *ds = env->ds;
	double t0 = mono_seconds();
	memset(out, 0, sizeof *out);
	int total = ds->test.n;
	int is_records = ds->kind == DATASET_TEXT_RECORDS && ds->rec_test;
	if (ds->kind == DATASET_TEXT) {
		snprintf(err, errlen, "embedding_map: a byte-stream text dataset has no test samples to map "
		         "(a text_records dataset has)");
		return -EINVAL;
	}
	if (total < 4 || (!ds->test.x && !is_records)) {
		snprintf(err, errlen, "embedding_map: the dataset has %d test samples to map; it needs at "
		         "least 4", total);
		return -EINVAL;
	}
	int n = cfg->points < total ? cfg->points : total;
	TsneConfig tc;
	tsne_config_default(&tc);
	tc.perplexity = cfg->perplexity;
	if (tc.perplexity > tsne_max_perplexity(n))
		tc.perplexity = tsne_max_perplexity(n);   /* small test splits: the largest it supports */
	tc.iterations = cfg->iterations;
	tc.seed = env->seed;
	tc.on_progress = env->on_progress;
	tc.should_stop = env->should_stop;
	tc.user = env->user;

	int rc = -ENOMEM;
	int *perm = eng_malloc((size_t)total * sizeof(int));
	int *nb = eng_malloc((size_t)n * EMBED_MAP_NEIGHBOURS * sizeof(int));
	float *y = eng_malloc((size_t)n * 2 * sizeof(float));
	float *feat = NULL, *cells = NULL;
	Ctx *ctx = ctx_new(env->seed);
	cJSON *o = NULL;
	char *text = NULL;
	if (!perm || !nb || !y || !ctx)
		goto out;
	ctx_set_threads(ctx, env->threads > 0 ? env->threads : 1);
	/* A seeded sample of the test split, in file order. */
	Rng rng;
	rng_seed(&rng, env->seed ^ 0x6d61702d73616d70ull);
	rng_permutation(&rng, perm, total);
	qsort(perm, (size_t)n, sizeof *perm, cmp_int);
	feat = eval_features(env->enc, ds, &ds->test, perm, n, 256, env->seed);
	if (!feat)
		goto out;
	int d = encoder_out_dim(env->enc);
	double t_map = mono_seconds();
	if ((rc = tsne_run(ctx, feat, n, d, &tc, y, err, errlen)) < 0)
		goto done;
	t_map = mono_seconds() - t_map;
	if ((rc = tsne_knn(ctx, feat, n, d, EMBED_MAP_NEIGHBOURS < n ? EMBED_MAP_NEIGHBOURS : n - 1, nb,
	                   NULL)) < 0)
		goto out;
	int kn = EMBED_MAP_NEIGHBOURS < n ? EMBED_MAP_NEIGHBOURS : n - 1;
	double trust = 2 * EMBED_MAP_TRUST_K < n ? tsne_trustworthiness(feat, n, d, y, 2, EMBED_MAP_TRUST_K)
	                                          : -1.0;

	o = cJSON_CreateObject();
	if (!o)
		goto out;
	cJSON_AddStringToObject(o, "algorithm", "tsne");
	cJSON_AddNumberToObject(o, "points", n);
	cJSON_AddNumberToObject(o, "test_samples", total);
	cJSON_AddNumberToObject(o, "perplexity", round(tc.perplexity * 100) / 100);
	cJSON_AddNumberToObject(o, "iterations", tc.iterations);
	cJSON_AddNumberToObject(o, "seed", (double)env->seed);
	cJSON_AddNumberToObject(o, "dim", d);
	cJSON_AddStringToObject(o, "neighbour_metric", "l2");
	cJSON_AddNumberToObject(o, "tsne_seconds", round(t_map * 100) / 100);
	cJSON_AddStringToObject(o, "features", EMBED_MAP_FEATURES);
	if (trust >= 0) {
		cJSON_AddNumberToObject(o, "trustworthiness", round(trust * 1e4) / 1e4);
		cJSON_AddNumberToObject(o, "trustworthiness_k", EMBED_MAP_TRUST_K);
	}
	cJSON *cls = cJSON_AddArrayToObject(o, "classes");
	for (int c = 0; c < ds->num_classes; c++) {
		char name[32];
		snprintf(name, sizeof name, "%d", c);
		cJSON_AddItemToArray(cls, cJSON_CreateString(ds->class_names && ds->class_names[c]
		                                                  ? ds->class_names[c] : name));
	}
	int *lab = eng_malloc((size_t)n * sizeof(int));
	if (!lab)
		goto out;
	for (int i = 0; i < n; i++)
		lab[i] = ds->test.y ? ds->test.y[perm[i]] : -1;
	cJSON_AddItemToObject(o, "x", rounded_array(y, n, 2));
	cJSON_AddItemToObject(o, "y", rounded_array(y + 1, n, 2));
	cJSON_AddItemToObject(o, "label", int_array(lab, n));
	cJSON_AddItemToObject(o, "index", int_array(perm, n));
	eng_free(lab);
	cJSON *nbs = cJSON_AddArrayToObject(o, "neighbours");
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(nbs, int_array(nb + (size_t)i * kn, kn));
	if (is_records) {
		cJSON_AddItemToObject(o, "text", record_texts(ds, perm, n));
	} else if ((ds->c == 1 || ds->c == 3) && ds->h > 1) {   /* images; not CSV feature rows */
		int f = 1, side = ds->h > ds->w ? ds->h : ds->w;
		while (side / f > EMBED_MAP_SPRITE_CELL)
			f++;
		int ch, cw, cols = (int)ceil(sqrt((double)n));
		if (!(cells = sprite_cells(ds, perm, n, f, &ch, &cw)))
			goto out;
		char path[4096];
		snprintf(path, sizeof path, "%s/" EMBED_MAP_SPRITE, dir);
		if ((rc = png_grid_write(path, cells, n, ds->c, ch, cw, cols, 0, 0.0f, 1.0f, err,
		                         errlen)) < 0)
			goto done;
		cJSON *sp = cJSON_AddObjectToObject(o, "sprite");
		cJSON_AddStringToObject(sp, "file", EMBED_MAP_SPRITE);
		cJSON_AddNumberToObject(sp, "cols", cols);
		cJSON_AddNumberToObject(sp, "w", cw);
		cJSON_AddNumberToObject(sp, "h", ch);
		out->sprite = 1;
	}
	if ((rc = write_npy(dir, feat, n, d, err, errlen)) < 0)
		goto done;
	rc = -ENOMEM;
	if (!(text = cJSON_PrintUnformatted(o)))
		goto out;
	if ((rc = write_text(dir, EMBED_MAP_JSON, text, err, errlen)) < 0)
		goto done;
	out->points = n;
	out->trustworthiness = trust;
	out->seconds = mono_seconds() - t0;
	rc = 0;
	goto done;
out:
	rc = -ENOMEM;
	snprintf(err, errlen, "embedding_map: out of memory for %d points", n);
done:
	free(text);
	cJSON_Delete(o);
	ctx_free(ctx);
	eng_free(perm);
	eng_free(nb);
	eng_free(y);
	eng_free(feat);
	eng_free(cells);
	return rc;
}
