/* test_selfpred.c - the self-predictive image methods (autoencoder, denoising_autoencoder, vae, mae,
 * rotation) on real Fashion-MNIST through the job runner, small and seeded.
 *
 *   unit         every method (and the MLP/conv, BCE, noise, CLS-token variants) runs a few steps
 *                end to end: pretext metrics in results.json, artifacts that read back as PNGs of
 *                the right size, VAE generation through runner_generate, bit-identical resume for
 *                the methods that draw randomness in the step (dae, vae with KL warm-up, mae),
 *                no heap allocation in a steady-state step, spec-level rejections.
 *   autoencoder  32-d bottleneck: test reconstruction MSE below PCA with 32 components fitted on
 *                the same training images (LAPACK dsyev from OpenBLAS, in this process).
 *   denoising    on noisy test images: MSE(output, clean) <= MSE(noisy, clean) / 2, for gaussian,
 *                masking and salt-and-pepper noise.
 *   vae          the held-out negative ELBO falls during training; test_neg_elbo_nats reported;
 *                samples through runner_generate.
 *   mae          masked-patch loss falls; reconstructions of masked test images written.
 *   rotation     test rotation accuracy >= 90%.
 * Every quality case also checks that the linear probe at 1% and 100% of the (limited) labels
 * beats the same architecture with random weights probed the same way (method "none").
 *
 * Usage: test_selfpred unit|autoencoder|denoising|vae|mae|rotation
 */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../engine/alloc.h"
#include "../../engine/ctx.h"
#include "../../engine/data/dataset.h"
#include "../../engine/data/png_grid.h"
#include "../../engine/methods/method.h"
#include "../../engine/optim.h"
#include "jobspec.h"
#include "runner.h"
#include "check.h"
#include "support.h"
#include "job.h"

/* ---- running jobs ----------------------------------------------------------------------------- */

typedef struct Point {
	int64_t step;
	char key[48];
	double value;
} Point;

typedef struct Capture {
	Point *pts;
	int n, cap;
	int64_t stop_at;      /* ask for a requeue-stop once this many steps are done (0 = never) */
	int64_t steps_seen;
} Capture;

static void on_metric(void *user, int64_t step, const char *key, double v)
{
	Capture *c = user;
	if (strcmp(key, "loss") == 0)
		c->steps_seen = step;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 1024;
		c->pts = realloc(c->pts, (size_t)c->cap * sizeof *c->pts);
		if (!c->pts) {
			fprintf(stderr, "out of memory\n");
			abort();
		}
	}
	Point *p = &c->pts[c->n++];
	p->step = step;
	snprintf(p->key, sizeof p->key, "%s", key);
	p->value = v;
}

static int should_stop(void *user)
{
	Capture *c = user;
	return c->stop_at > 0 && c->steps_seen >= c->stop_at ? RUNNER_STOP_REQUEUE : RUNNER_CONTINUE;
}

/* Values of one key in order; returns the count (at most max). */
static int series(const Capture *c, const char *key, double *out, int64_t *steps, int max)
{
	int n = 0;
	for (int i = 0; i < c->n && n < max; i++)
		if (strcmp(c->pts[i].key, key) == 0) {
			if (steps)
				steps[n] = c->pts[i].step;
			out[n++] = c->pts[i].value;
		}
	return n;
}

/* Mean of the first and of the last eighth of a series. */
static void first_last(const Capture *c, const char *key, double *first, double *last)
{
	static double v[100000];
	int n = series(c, key, v, NULL, 100000), w = n / 8 > 0 ? n / 8 : 1;
	*first = *last = NAN;
	if (n == 0)
		return;
	*first = *last = 0;
	for (int i = 0; i < w; i++) {
		*first += v[i] / w;
		*last += v[n - 1 - i] / w;
	}
}

typedef struct Job {
	char *dir;
	Capture cap;
	cJSON *results;
	int rc;
} Job;

/* Runs spec in a fresh directory (or `dir` when given, e.g. to resume). */
static void job_run(Job *j, const char *spec)
{
	RunnerHooks h = { .user = &j->cap, .on_metric = on_metric, .should_stop = should_stop };
	j->rc = test_job_run(spec, "selfpred", &h, &j->dir, &j->results);
}

static void job_close(Job *j)
{
	test_job_close(&j->dir, &j->results);
	free(j->cap.pts);
	memset(j, 0, sizeof *j);
}

static double pretext(const Job *j, const char *key) { return test_job_pretext(j->results, key); }

/* test_accuracy of the linear probe at `fraction`, or NAN. */
static double probe(const Job *j, double fraction)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(j->results, "evaluations"))
	{
		const cJSON *f = cJSON_GetObjectItem(e, "label_fraction");
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "protocol")), "linear_probe") == 0 &&
		    cJSON_IsNumber(f) && fabs(f->valuedouble - fraction) < 1e-9)
			return cJSON_GetNumberValue(cJSON_GetObjectItem(e, "test_accuracy"));
	}
	return NAN;
}

/* The PNG artifact exists, decodes, and has the size of a grid of rows x cols 28x28 cells. */
static void check_png(const Job *j, const char *name, int rows, int cols)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", j->dir, name);
	float *img = NULL;
	int c, h, w, gw, gh;
	char err[512];
	int rc = png_read(path, 1, &img, &c, &h, &w, err, sizeof err);
	CHECK(rc == 0, "%s: %s", name, err);
	if (rc == 0 && rows > 0) {
		png_grid_size(rows * cols, cols, 28, 28, 1, &gw, &gh);
		CHECK(w == gw && h == gh, "%s is %dx%d, expected %dx%d (%d rows of %d)", name, w, h, gw,
		      gh, rows, cols);
		/* not blank: some spread of grey levels inside the cells */
		double s = 0, ss = 0;
		for (int i = 0; i < w * h; i++) {
			s += img[i];
			ss += img[i] * img[i];
		}
		double var = ss / (w * h) - (s / (w * h)) * (s / (w * h));
		CHECK(var > 1e-3, "%s looks blank (variance %g)", name, var);
	}
	eng_free(img);
}

#define DATA(ntr, nte) \
	"\"dataset\":{\"name\":\"fashion-mnist\",\"limit_train\":" #ntr ",\"limit_test\":" #nte "}"
#define PROBES "\"evaluations\":[{\"protocol\":\"linear_probe\",\"label_fractions\":[0.01,1.0]}]"

/* Runs `method` with params/model/pretrain, and "none" with the same model and probes; checks
 * that both probes of the pretrained encoder beat the random-init ones. */
static void compare_probes(const char *what, const Job *ssl, const char *model, const char *data)
{
	char spec[2048];
	snprintf(spec, sizeof spec,
	         "{\"name\":\"random-init\",\"method\":\"none\",%s,\"model\":%s," PROBES
	         ",\"seed\":3,\"threads\":2}", data, model);
	Job rnd = { 0 };
	job_run(&rnd, spec);
	CHECK(rnd.rc == RUNNER_OK, "random-init run failed");
	double s1 = probe(ssl, 0.01), s100 = probe(ssl, 1.0), r1 = probe(&rnd, 0.01),
	       r100 = probe(&rnd, 1.0);
	printf("%s: linear probe 1%%: %.4f (random init %.4f); 100%%: %.4f (random init %.4f)\n",
	       what, s1, r1, s100, r100);
	CHECK(s1 > r1, "%s: 1%% probe %.4f does not beat random init %.4f", what, s1, r1);
	CHECK(s100 > r100, "%s: 100%% probe %.4f does not beat random init %.4f", what, s100, r100);
	job_close(&rnd);
}

/* ---- PCA baseline ----------------------------------------------------------------------------- */

/* LAPACK from OpenBLAS (Fortran ABI, with the hidden lengths of the character arguments). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info, size_t, size_t);

/* Test MSE per pixel of reconstructing `te` from the top-k principal components of `tr`;
 * *clipped: the same with reconstructions clipped to [0,1]. 0 or -1. */
static int pca_mse(const Split *tr, const Split *te, int d, int k, double *mse, double *clipped)
{
	int n = tr->n, rc = -1;
	float *xc = malloc((size_t)n * d * sizeof(float)), *cov = calloc((size_t)d * d, sizeof(float));
	double *a = malloc((size_t)d * d * sizeof(double)), *w = malloc((size_t)d * sizeof(double));
	double *mu = calloc((size_t)d, sizeof(double)), *coef = malloc((size_t)k * sizeof(double));
	double *work = NULL;
	if (!xc || !cov || !a || !w || !mu || !coef)
		goto out;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			mu[j] += tr->x[(size_t)i * d + j];
	for (int j = 0; j < d; j++)
		mu[j] /= n;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < d; j++)
			xc[(size_t)i * d + j] = (float)(tr->x[(size_t)i * d + j] - mu[j]);
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0f / n, xc, d, 0.0f, cov, d);
	for (int i = 0; i < d; i++)
		for (int j = 0; j < d; j++)
			a[(size_t)i * d + j] = j >= i ? cov[(size_t)i * d + j] : cov[(size_t)j * d + i];
	int lwork = -1, info = 0;
	double q;
	dsyev_("V", "U", &d, a, &d, w, &q, &lwork, &info, 1, 1);
	lwork = (int)q;
	if (info != 0 || !(work = malloc((size_t)lwork * sizeof(double))))
		goto out;
	dsyev_("V", "U", &d, a, &d, w, work, &lwork, &info, 1, 1);
	if (info != 0) {
		fprintf(stderr, "dsyev failed: info %d\n", info);
		goto out;
	}
	/* Eigenvalues ascending; eigenvector i is row i of `a` (column-major result of a symmetric
	 * matrix read row-major). The top k are the last k rows. */
	double se = 0, sec = 0;
	for (int i = 0; i < te->n; i++) {
		const float *x = te->x + (size_t)i * d;
		for (int c = 0; c < k; c++) {
			const double *v = a + (size_t)(d - 1 - c) * d;
			double s = 0;
			for (int j = 0; j < d; j++)
				s += (x[j] - mu[j]) * v[j];
			coef[c] = s;
		}
		for (int j = 0; j < d; j++) {
			double r = mu[j];
			for (int c = 0; c < k; c++)
				r += coef[c] * a[(size_t)(d - 1 - c) * d + j];
			double rc_ = r < 0 ? 0 : r > 1 ? 1 : r;
			se += (r - x[j]) * (r - x[j]);
			sec += (rc_ - x[j]) * (rc_ - x[j]);
		}
	}
	*mse = se / ((double)te->n * d);
	*clipped = sec / ((double)te->n * d);
	rc = 0;
out:
	free(xc);
	free(cov);
	free(a);
	free(w);
	free(mu);
	free(coef);
	free(work);
	return rc;
}

/* ---- quality cases ---------------------------------------------------------------------------- */

#define AE_MODEL "{\"encoder\":\"mlp\",\"hidden\":[256],\"out_dim\":32}"
#define AE_TRAIN "\"pretrain\":{\"epochs\":8,\"batch_size\":64,\"optimizer\":{\"name\":\"adamw\",\"lr\":0.003}}"

static void test_autoencoder(void)
{
	const char *data = DATA(8192, 2000);
	char spec[2048];
	snprintf(spec, sizeof spec,
	         "{\"name\":\"q-ae\",\"method\":\"autoencoder\",\"params\":{\"latent_dim\":32},%s,"
	         "\"model\":" AE_MODEL "," AE_TRAIN "," PROBES ",\"seed\":3,\"threads\":2}", data);
	Job ae = { 0 };
	job_run(&ae, spec);
	CHECK(ae.rc == RUNNER_OK, "autoencoder run failed");
	if (ae.rc != RUNNER_OK)
		return;
	DatasetSpec ds_spec = { .kind = DATASET_FASHION_MNIST, .limit_train = 8192, .limit_test = 2000 };
	Dataset *ds = NULL;
	char err[512];
	double pca = NAN, pca_clip = NAN;
	CHECK(dataset_load(&ds_spec, &ds, err, sizeof err) == 0, "%s", err);
	if (ds)
		CHECK(pca_mse(&ds->train, &ds->test, (int)ds->sample_floats, 32, &pca, &pca_clip) == 0,
		      "PCA failed");
	dataset_free(ds);
	double mse = pretext(&ae, "test_recon_mse"), first, last;
	first_last(&ae.cap, "loss_recon_mse", &first, &last);
	printf("autoencoder: %lld steps, train recon MSE %.5f -> %.5f; test recon MSE %.5f vs PCA-32 "
	       "%.5f (clipped to [0,1]: %.5f)\n", (long long)ae.cap.steps_seen, first, last, mse, pca,
	       pca_clip);
	CHECK(last < first, "reconstruction loss did not fall: %.5f -> %.5f", first, last);
	CHECK(mse < pca_clip && mse < pca, "autoencoder test MSE %.5f does not beat PCA-32 %.5f "
	      "(clipped %.5f)", mse, pca, pca_clip);
	check_png(&ae, "reconstructions.png", 2, 16);
	compare_probes("autoencoder", &ae, AE_MODEL, data);
	job_close(&ae);
}

static void test_denoising(void)
{
	const char *data = DATA(8192, 2000);
	static const char *const noise[] = { "gaussian", "masking", "salt_pepper" };
	static const double level[] = { 0.3, 0.5, 0.2 };
	for (int i = 0; i < 3; i++) {
		char spec[2048];
		/* the probes only for the first kind: the others check the denoising criterion */
		snprintf(spec, sizeof spec,
		         "{\"name\":\"q-dae\",\"method\":\"denoising_autoencoder\",\"params\":{\"latent_dim\":"
		         "32,\"noise\":\"%s\",\"noise_level\":%g},%s,\"model\":" AE_MODEL ","
		         "\"pretrain\":{\"epochs\":%d,\"batch_size\":64,\"optimizer\":{\"name\":\"adamw\","
		         "\"lr\":0.003}}%s,\"seed\":3,\"threads\":2}", noise[i], level[i], data,
		         i == 0 ? 8 : 3, i == 0 ? "," PROBES : "");
		Job j = { 0 };
		job_run(&j, spec);
		CHECK(j.rc == RUNNER_OK, "denoising run (%s) failed", noise[i]);
		if (j.rc != RUNNER_OK)
			continue;
		double noisy = pretext(&j, "test_noisy_mse"), den = pretext(&j, "test_denoise_mse");
		printf("denoising (%s %.2f): test MSE(noisy, clean) %.5f, MSE(output, clean) %.5f, "
		       "ratio %.3f\n", noise[i], level[i], noisy, den, den / noisy);
		CHECK(den <= noisy / 2, "%s: denoised MSE %.5f is not <= half the noisy MSE %.5f",
		      noise[i], den, noisy);
		check_png(&j, "reconstructions.png", 3, 16);
		if (i == 0)
			compare_probes("denoising_autoencoder", &j, AE_MODEL, data);
		job_close(&j);
	}
}

#define VAE_MODEL "{\"encoder\":\"mlp\",\"hidden\":[256],\"out_dim\":128}"

static void test_vae(void)
{
	const char *data = DATA(8192, 2000);
	char spec[2048];
	snprintf(spec, sizeof spec,
	         "{\"name\":\"q-vae\",\"method\":\"vae\",\"params\":{\"latent_dim\":16,\"kl_warmup\":0.1},"
	         "%s,\"model\":" VAE_MODEL ",\"pretrain\":{\"epochs\":8,\"batch_size\":64,"
	         "\"optimizer\":{\"name\":\"adamw\",\"lr\":0.002}}," PROBES ",\"seed\":3,\"threads\":2}",
	         data);
	Job v = { 0 };
	job_run(&v, spec);
	CHECK(v.rc == RUNNER_OK, "vae run failed");
	if (v.rc != RUNNER_OK)
		return;
	double h[64];
	int64_t st[64];
	int n = series(&v.cap, "heldout_neg_elbo_nats", h, st, 64);
	printf("vae: held-out negative ELBO (nats/image) by step:");
	for (int i = 0; i < n; i++)
		printf(" %lld:%.1f", (long long)st[i], h[i]);
	double t = pretext(&v, "test_neg_elbo_nats");
	printf("\nvae: test negative ELBO %.2f nats (recon %.2f + KL %.2f)\n", t,
	       pretext(&v, "test_recon_nats"), pretext(&v, "test_kl_nats"));
	CHECK(n >= 8, "expected a held-out bound per epoch, got %d", n);
	if (n >= 2) {
		CHECK(h[n - 1] < h[0] - 50, "held-out bound did not fall: %.1f -> %.1f", h[0], h[n - 1]);
		CHECK(h[n - 1] < h[1], "held-out bound did not keep falling after epoch 1: %.1f -> %.1f",
		      h[1], h[n - 1]);
	}
	CHECK(isfinite(t) && t > 0 && t < h[0], "test_neg_elbo_nats %.2f is not a trained bound", t);
	check_png(&v, "samples.png", 8, 8);
	check_png(&v, "interpolation.png", 6, 12);
	check_png(&v, "reconstructions.png", 2, 16);
	GenerateRequest req = { .n = 16, .seed = 9 };
	char err[512], *out = NULL;
	int rc = runner_generate(spec, v.dir, &req, &out, err, sizeof err);
	CHECK(rc == 0, "runner_generate: %s", err);
	if (rc == 0) {
		printf("vae: generate -> %s\n", out);
		check_png(&v, "samples-9.png", 4, 4);
	}
	free(out);
	compare_probes("vae", &v, VAE_MODEL, data);
	job_close(&v);
}

/* patch 7 (16 patches, 4 visible) keeps the case fast; the full example uses patch 4 */
#define MAE_MODEL "{\"encoder\":\"vit\",\"patch\":7,\"dim\":64,\"depth\":2,\"heads\":4}"

static void test_mae(void)
{
	const char *data = DATA(8192, 2000);
	char spec[2048];
	snprintf(spec, sizeof spec,
	         "{\"name\":\"q-mae\",\"method\":\"mae\",\"params\":{\"mask_ratio\":0.75,"
	         "\"decoder_dim\":64,\"decoder_depth\":1},%s,\"model\":" MAE_MODEL ","
	         "\"pretrain\":{\"epochs\":4,\"batch_size\":128,\"optimizer\":{\"name\":\"adamw\","
	         "\"lr\":0.002}}," PROBES ",\"seed\":3,\"threads\":2}", data);
	Job m = { 0 };
	job_run(&m, spec);
	CHECK(m.rc == RUNNER_OK, "mae run failed");
	if (m.rc != RUNNER_OK)
		return;
	double first, last, t = pretext(&m, "test_masked_loss");
	first_last(&m.cap, "loss_masked", &first, &last);
	printf("mae: %lld steps, masked-patch loss %.5f -> %.5f; test masked-patch MSE %.5f\n",
	       (long long)m.cap.steps_seen, first, last, t);
	CHECK(last < 0.7 * first, "masked-patch loss did not fall enough: %.5f -> %.5f", first, last);
	CHECK(t < 0.7 * first, "test masked loss %.5f is not below the early training loss %.5f", t,
	      first);
	check_png(&m, "reconstructions.png", 4, 12);
	compare_probes("mae", &m, MAE_MODEL, data);
	job_close(&m);
}

#define ROT_MODEL "{\"encoder\":\"cnn\",\"channels\":[16,32,64]}"

static void test_rotation(void)
{
	const char *data = DATA(8192, 2000);
	char spec[2048];
	snprintf(spec, sizeof spec,
	         "{\"name\":\"q-rot\",\"method\":\"rotation\",\"params\":{\"head_hidden\":128},%s,"
	         "\"model\":" ROT_MODEL ",\"pretrain\":{\"epochs\":2,\"batch_size\":64,"
	         "\"optimizer\":{\"name\":\"adamw\",\"lr\":0.003}}," PROBES ",\"seed\":3,\"threads\":2}",
	         data);
	Job r = { 0 };
	job_run(&r, spec);
	CHECK(r.rc == RUNNER_OK, "rotation run failed");
	if (r.rc != RUNNER_OK)
		return;
	double first, last, acc = pretext(&r, "test_rotation_accuracy");
	first_last(&r.cap, "rotation_accuracy", &first, &last);
	printf("rotation: %lld steps, train rotation accuracy %.3f -> %.3f; test %.4f\n",
	       (long long)r.cap.steps_seen, first, last, acc);
	CHECK(acc >= 0.90, "test rotation accuracy %.4f < 0.90", acc);
	check_png(&r, "rotations.png", 4, 12);
	compare_probes("rotation", &r, ROT_MODEL, data);
	job_close(&r);
}

/* ---- unit ------------------------------------------------------------------------------------- */

typedef struct Variant {
	const char *method, *params, *model;
	const char *metrics[4];
	const char *pngs[3];
	int png_rows[3], png_cols[3];
} Variant;

static const Variant variants[] = {
	{ "autoencoder", "{\"latent_dim\":8}", "{\"encoder\":\"mlp\",\"hidden\":[32]}",
	  { "test_recon_mse" }, { "reconstructions.png" }, { 2 }, { 16 } },
	{ "autoencoder", "{\"latent_dim\":8,\"loss\":\"bce\"}", "{\"encoder\":\"cnn\",\"channels\":[4,8,8]}",
	  { "test_recon_mse" }, { "reconstructions.png" }, { 2 }, { 16 } },
	{ "autoencoder", "{\"latent_dim\":8,\"decoder\":\"mlp\"}",
	  "{\"encoder\":\"vit\",\"dim\":16,\"depth\":1,\"heads\":2,\"patch\":7}",
	  { "test_recon_mse" }, { "reconstructions.png" }, { 2 }, { 16 } },
	{ "denoising_autoencoder", "{\"noise\":\"masking\",\"noise_level\":0.5}",
	  "{\"encoder\":\"mlp\",\"hidden\":[32],\"out_dim\":32}",
	  { "test_noisy_mse", "test_denoise_mse", "test_denoise_ratio", "test_recon_mse" },
	  { "reconstructions.png" }, { 3 }, { 16 } },
	{ "denoising_autoencoder", "{\"noise\":\"salt_pepper\",\"noise_level\":0.1}",
	  "{\"encoder\":\"cnn\",\"channels\":[4,8],\"batchnorm\":false}",
	  { "test_noisy_mse", "test_denoise_mse" }, { "reconstructions.png" }, { 3 }, { 16 } },
	{ "vae", "{\"latent_dim\":4,\"kl_warmup\":0.5}", "{\"encoder\":\"cnn\",\"channels\":[4,8,8]}",
	  { "test_neg_elbo_nats", "test_recon_nats", "test_kl_nats", "test_recon_mse" },
	  { "samples.png", "interpolation.png", "reconstructions.png" }, { 8, 6, 2 }, { 8, 12, 16 } },
	{ "mae", "{\"norm_pix_loss\":true,\"decoder_dim\":16,\"decoder_depth\":1,\"decoder_heads\":2}",
	  "{\"encoder\":\"vit\",\"dim\":16,\"depth\":1,\"heads\":2,\"patch\":7,\"pool\":\"cls\"}",
	  { "test_masked_loss", "test_masked_pixel_mse" }, { "reconstructions.png" }, { 4 }, { 12 } },
	{ "rotation", "{\"head_hidden\":0}", "{\"encoder\":\"mlp\",\"hidden\":[32]}",
	  { "test_rotation_accuracy", "test_rotation_loss" }, { "rotations.png" }, { 4 }, { 12 } },
};

#define UNIT_DATA DATA(256, 64)

static void unit_variants(void)
{
	for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
		const Variant *t = &variants[v];
		char spec[2048];
		snprintf(spec, sizeof spec,
		         "{\"name\":\"u\",\"method\":\"%s\",\"params\":%s,%s,\"model\":%s,"
		         "\"pretrain\":{\"epochs\":1,\"max_steps\":4,\"batch_size\":32},"
		         "\"evaluations\":[{\"protocol\":\"linear_probe\",\"labels_per_class\":2}],"
		         "\"seed\":1,\"threads\":1}", t->method, t->params, UNIT_DATA, t->model);
		Job j = { 0 };
		job_run(&j, spec);
		CHECK(j.rc == RUNNER_OK, "%s %s %s: run failed", t->method, t->params, t->model);
		if (j.rc != RUNNER_OK) {
			job_close(&j);
			continue;
		}
		CHECK(pretext(&j, "steps") == 4, "%s: %g steps, expected 4", t->method,
		      pretext(&j, "steps"));
		for (int k = 0; k < 4 && t->metrics[k]; k++) {
			double x = pretext(&j, t->metrics[k]);
			CHECK(isfinite(x), "%s %s: results.json pretext lacks %s", t->method, t->params,
			      t->metrics[k]);
			/* also streamed as a metric */
			double s;
			CHECK(series(&j.cap, t->metrics[k], &s, NULL, 1) == 1, "%s: %s not streamed",
			      t->method, t->metrics[k]);
		}
		for (int k = 0; k < 3 && t->pngs[k]; k++)
			check_png(&j, t->pngs[k], t->png_rows[k], t->png_cols[k]);
		printf("unit: %-22s %-60s ok\n", t->method, t->params);
		job_close(&j);
	}
}

/* Stopped at step 5 and resumed: the loss curve is the uninterrupted one, bit for bit. */
static void unit_resume(void)
{
	static const char *const specs[] = {
		"{\"method\":\"denoising_autoencoder\",\"model\":{\"encoder\":\"mlp\",\"hidden\":[32]},",
		"{\"method\":\"vae\",\"params\":{\"kl_warmup\":0.8},\"model\":{\"encoder\":\"mlp\","
		"\"hidden\":[32]},",
		"{\"method\":\"mae\",\"model\":{\"encoder\":\"vit\",\"dim\":16,\"depth\":1,\"heads\":2,"
		"\"patch\":7},\"params\":{\"decoder_dim\":16,\"decoder_heads\":2},",
	};
	static const char *const names[] = { "denoising_autoencoder", "vae (KL warm-up)", "mae" };
	for (int s = 0; s < 3; s++) {
		char spec[2048];
		snprintf(spec, sizeof spec,
		         "%s\"name\":\"resume\",%s,\"pretrain\":{\"epochs\":2,\"batch_size\":32},"
		         "\"seed\":5,\"threads\":1,\"checkpoint_interval_s\":1000}", specs[s], UNIT_DATA);
		Job a = { 0 }, b = { 0 };
		job_run(&a, spec);
		b.cap.stop_at = 5;
		job_run(&b, spec);
		CHECK(b.rc == RUNNER_STOPPED, "stop request not honoured (rc %d)", b.rc);
		b.cap.stop_at = 0;
		int before = b.cap.n;
		job_run(&b, spec);
		CHECK(a.rc == RUNNER_OK && b.rc == RUNNER_OK, "resume runs failed");
		double la[64], lb[64];
		int64_t sa[64], sb[64];
		int na = series(&a.cap, "loss", la, sa, 64);
		Capture tail = { .pts = b.cap.pts + before, .n = b.cap.n - before };
		int nb = series(&tail, "loss", lb, sb, 64);
		CHECK(na == 16 && nb == 11, "step counts %d / %d, expected 16 / 11", na, nb);
		int same = na == 16 && nb == 11;
		for (int i = 0; same && i < nb; i++)
			if (la[5 + i] != lb[i] || sa[5 + i] != sb[i]) {
				fprintf(stderr, "step %lld: uninterrupted %.9g, resumed %.9g\n",
				        (long long)sa[5 + i], la[5 + i], lb[i]);
				same = 0;
			}
		CHECK(same, "%s: resumed loss curve differs", names[s]);
		printf("unit: %s stopped at step 5 and resumed: steps 6..16 identical: %s\n", names[s],
		       same ? "yes" : "no");
		job_close(&a);
		job_close(&b);
	}
}

/* After two warm-up steps, a training step (loss, backward, optimizer) allocates nothing. */
static void unit_no_alloc(void)
{
	static const char *const specs[] = {
		"{\"method\":\"autoencoder\",\"model\":{\"encoder\":\"cnn\",\"channels\":[4,8]},",
		"{\"method\":\"denoising_autoencoder\",\"model\":{\"encoder\":\"mlp\",\"hidden\":[32]},",
		"{\"method\":\"vae\",\"model\":{\"encoder\":\"mlp\",\"hidden\":[32]},",
		"{\"method\":\"mae\",\"model\":{\"encoder\":\"vit\",\"dim\":16,\"depth\":1,\"heads\":2},",
		"{\"method\":\"rotation\",\"model\":{\"encoder\":\"cnn\",\"channels\":[4,8]},",
	};
	for (int s = 0; s < 5; s++) {
		char text[1024], err[512];
		snprintf(text, sizeof text, "%s\"name\":\"a\",%s,\"pretrain\":{\"batch_size\":16}}",
		         specs[s], UNIT_DATA);
		JobSpec *js = NULL;
		SpecError se;
		JobSpecOptions opts = { .check_files = 1 };
		Dataset *ds = NULL;
		if (jobspec_parse(text, strlen(text), &opts, &js, &se) < 0 ||
		    dataset_load(&js->dataset, &ds, err, sizeof err) < 0) {
			CHECK(0, "setup failed: %s %s", se.message, err);
			jobspec_free(js);
			continue;
		}
		const PretextMethod *m = method_find(js->method);
		ParamSet *ps = paramset_new();
		Rng rng;
		rng_seed(&rng, 1);
		MethodEnv env = { .encoder = &js->encoder, .in_c = 1, .in_h = 28, .in_w = 28, .ds = ds,
		                  .config = js->method_config, .rng = &rng, .total_steps = 100,
		                  .batch_size = 16 };
		void *st = NULL;
		Ctx *ctx = ctx_new(1);
		Optim *opt = NULL;
		int ok = m && m->create(&env, ps, &st, err, sizeof err) == 0 &&
		         optim_new(&js->pretrain.optim, ps, &opt) == 0;
		CHECK(ok, "%s: create failed: %s", js->method, err);
		uint64_t allocs = 0;
		for (int step = 0; ok && step < 4; step++) {
			if (step == 2)
				allocs = eng_alloc_count();
			ctx_reset(ctx);
			ctx_set_training(ctx, 1);
			Batch b = { .n = 16, .view = { ds->train.x + (size_t)step * 16 * 784, NULL },
			            .y = ds->train.y, .epoch = 0, .index = step + 1 };
			Tensor *x = ctx_wrap(ctx, b.view[0], 4, (int[]){ 16, 1, 28, 28 });
			Tensor *vt[2] = { x, NULL };
			Tensor *loss = m->loss(ctx, st, vt, &b, NULL);
			ctx_backward(ctx, loss);
			optim_step(opt, 1e-3f);
			paramset_zero_grad(ps);
		}
		if (ok) {
			uint64_t d = eng_alloc_count() - allocs;
			CHECK(d == 0, "%s: %llu heap allocations in two steady-state steps", js->method,
			      (unsigned long long)d);
			printf("unit: %-22s steady-state step allocations: %llu\n", js->method,
			       (unsigned long long)d);
		}
		if (st)
			m->destroy(st);
		optim_free(opt);
		ctx_free(ctx);
		paramset_free(ps);
		dataset_free(ds);
		jobspec_free(js);
	}
}

/* The spec layer turns away what the methods cannot do. */
static void unit_rejections(void)
{
	static const struct {
		const char *spec, *field;
	} cases[] = {
		{ "{\"method\":\"mae\",\"dataset\":\"fashion-mnist\",\"model\":{\"encoder\":\"cnn\"}}",
		  "model" },
		{ "{\"method\":\"mae\",\"dataset\":\"fashion-mnist\",\"params\":{\"mask_ratio\":1}}",
		  "params.mask_ratio" },
		{ "{\"method\":\"denoising_autoencoder\",\"dataset\":\"fashion-mnist\","
		  "\"params\":{\"noise\":\"salt\"}}", "params.noise" },
		{ "{\"method\":\"vae\",\"dataset\":\"fashion-mnist\",\"params\":{\"beta\":-1}}",
		  "params.beta" },
		{ "{\"method\":\"autoencoder\",\"dataset\":\"fashion-mnist\",\"params\":{\"loss\":\"l1\"}}",
		  "params.loss" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		SpecError se;
		JobSpecOptions opts = { .check_files = 1 };
		int rc = jobspec_validate(cases[i].spec, strlen(cases[i].spec), &opts, &se);
		CHECK(rc < 0, "accepted: %s", cases[i].spec);
		if (rc < 0)
			CHECK(strncmp(se.field, cases[i].field, strlen(cases[i].field)) == 0,
			      "%s: error on field '%s' (%s), expected '%s'", cases[i].spec, se.field,
			      se.message, cases[i].field);
	}
	printf("unit: spec rejections checked\n");
}

int main(int argc, char **argv)
{
	if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
		printf("skipped: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)\n");
		return 77;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: test_selfpred unit|autoencoder|denoising|vae|mae|rotation\n");
		return 2;
	}
	const char *w = argv[1];
	if (strcmp(w, "unit") == 0) {
		unit_rejections();
		unit_no_alloc();
		unit_variants();
		unit_resume();
	} else if (strcmp(w, "autoencoder") == 0) {
		test_autoencoder();
	} else if (strcmp(w, "denoising") == 0) {
		test_denoising();
	} else if (strcmp(w, "vae") == 0) {
		test_vae();
	} else if (strcmp(w, "mae") == 0) {
		test_mae();
	} else if (strcmp(w, "rotation") == 0) {
		test_rotation();
	} else {
		fprintf(stderr, "unknown case %s\n", w);
		return 2;
	}
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
