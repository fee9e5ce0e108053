/* test_lm_quality.c - small seeded language-model trainings on the Debian fortunes (suite quality),
 * through the runner exactly as `ssld run` drives them:
 *   ar:   a 2-layer, 64-wide causal Transformer, 800 steps on the byte stream of every fortunes
 *         file (last 10% held out): its test bits per byte must fall well below the unigram
 *         model's (4.87 bits/byte on this split), below 3.7; a 400-byte sample (temperature 0.8)
 *         must look like English text: printable, mostly letters and spaces, words of sensible
 *         length, and common English words among them.
 *   mlm:  a 2-layer, 64-wide bidirectional Transformer, 4800 masked-LM steps of 8 records on
 *         fortune records: masked-byte accuracy on held-out records well above the unigram
 *         baseline (always guess the most frequent byte; 0.168), and its encoder's linear probe on
 *         the fortune-file classification at 10% of the labels above the bag-of-bytes logistic
 *         regression. A byte-level masked LM sits on the unigram plateau until its attention
 *         learns to read the neighbouring bytes (the masked position itself carries no byte, unlike
 *         the causal model whose current byte gives bigram statistics for free); at this size that
 *         takes ~600-900 steps, so 500 steps ended on the plateau (accuracy 0.188). Why batch 8 at
 *         lr 1e-3 (the example's recipe): the same tokens as 1200 steps of 32 at lr 3e-3, which
 *         reached a higher masked accuracy (0.339) but a probe only level with bag-of-bytes
 *         (0.129 vs 0.126); batch 8 gives 0.292 and a probe of 0.146 (bag-of-bytes 0.126).
 * Skipped (77) when the fortunes package is not installed. Usage: test_lm_quality ar | mlm
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "check.h"
#include "support.h"

#define FORTUNES "/usr/share/games/fortunes"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The fortunes files as a JSON array of paths, sorted (what the example lists). */
static int fortunes_files(char *out, size_t len)
{
	DIR *d = opendir(FORTUNES);
	if (!d)
		return -1;
	char *names[128];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 128) {
		const char *s = e->d_name;
		size_t l = strlen(s);
		if (s[0] == '.' || (l > 4 && strcmp(s + l - 4, ".dat") == 0) ||
		    (l > 3 && strcmp(s + l - 3, ".u8") == 0))
			continue;
		names[n++] = strdup(s);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof *names, cmp_str);
	size_t at = (size_t)snprintf(out, len, "[");
	for (int i = 0; i < n; i++) {
		at += (size_t)snprintf(out + at, at < len ? len - at : 0, "%s\"%s/%s\"", i ? "," : "",
		                       FORTUNES, names[i]);
		free(names[i]);
	}
	snprintf(out + at, at < len ? len - at : 0, "]");
	return n > 0 && at < len ? 0 : -1;
}

/* scratch directories (support.h) */
static char *make_dir(void) { return test_tmpdir("lmq"); }
static void rm_dir(const char *d) { test_rmtree(d); }

static void on_event(void *user, RunnerLevel level, const char *msg)
{
	(void)user;
	if (level <= RUNNER_NOTICE)
		fprintf(stderr, "  runner: %s\n", msg);
}

static cJSON *run_job(const char *spec, const char *dir)
{
	RunnerHooks h = { .on_event = on_event };
	char *results = NULL, err[1024];
	int rc = runner_run(spec, dir, &h, NULL, &results, err, sizeof err);
	if (rc != 0) {
		fprintf(stderr, "FAIL: job failed (%d): %s\n", rc, err);
		failures++;
		return NULL;
	}
	cJSON *r = cJSON_Parse(results);
	free(results);
	return r;
}

static double metric(const cJSON *res, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "pretext"), key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ---- autoregressive ------------------------------------------------------------------------------ */

static int is_common_word(const char *w)
{
	static const char *const common[] = { "the", "of", "and", "to", "a", "in", "is", "you",
	                                      "that", "it", "he", "was", "for", "on", "are", "as",
	                                      "with", "his", "they", "i", "at", "be", "this", "have",
	                                      "not", "but", "what", "all", "your", "if", "or", "no",
	                                      "my", "we", "an", "by", "one", "do", "so", "me", "can" };
	for (size_t i = 0; i < sizeof common / sizeof *common; i++)
		if (strcmp(w, common[i]) == 0)
			return 1;
	return 0;
}

/* Crude but honest signs of English: printable, letters and spaces dominate, words of sensible
 * length, and some of the commonest English words occur. Fills a summary line. */
static int looks_english(const char *s, char *why, size_t len)
{
	size_t n = strlen(s), printable = 0, alpha_space = 0, words = 0, word_chars = 0, common = 0;
	char w[64];
	size_t wl = 0;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i < n) {
			printable += isprint(c) || c == '\n' || c == '\t';
			alpha_space += isalpha(c) || c == ' ' || c == '\n';
		}
		if (i < n && isalpha(c)) {
			if (wl < sizeof w - 1)
				w[wl] = (char)tolower(c);
			wl++;
		} else if (wl > 0) {
			w[wl < sizeof w ? wl : sizeof w - 1] = 0;
			words++;
			word_chars += wl;
			common += is_common_word(w);
			wl = 0;
		}
	}
	double p = n ? (double)printable / n : 0, a = n ? (double)alpha_space / n : 0;
	double mean_len = words ? (double)word_chars / words : 0;
	snprintf(why, len, "%zu bytes: %.0f%% printable, %.0f%% letters/spaces, %zu words of mean "
	         "length %.1f, %zu common English words", n, 100 * p, 100 * a, words, mean_len, common);
	return p > 0.97 && a > 0.75 && mean_len > 2.5 && mean_len < 8 && common >= 5;
}

static void test_ar(void)
{
	char files[8192], spec[12288];
	if (fortunes_files(files, sizeof files) < 0) {
		printf("SKIP: %s not installed (Debian package fortunes)\n", FORTUNES);
		exit(77);
	}
	snprintf(spec, sizeof spec,
	         "{\"name\":\"lm-quality-ar\",\"method\":\"autoregressive_lm\","
	         "\"dataset\":{\"format\":\"text\",\"files\":%s,\"test_fraction\":0.1},"
	         "\"model\":{\"encoder\":\"transformer\",\"dim\":64,\"depth\":2,\"heads\":4,"
	         "\"context\":64},"
	         "\"pretrain\":{\"max_steps\":800,\"batch_size\":16,\"grad_clip\":1.0,"
	         "\"optimizer\":{\"name\":\"adamw\",\"lr\":0.004,\"weight_decay\":0.01,"
	         "\"betas\":[0.9,0.99]},"
	         "\"schedule\":{\"name\":\"cosine\",\"warmup_epochs\":0.02}},"
	         "\"seed\":1,\"threads\":2}", files);
	char *dir = make_dir();
	cJSON *res = dir ? run_job(spec, dir) : NULL;
	if (res) {
		double bpb = metric(res, "test_bits_per_byte");
		printf("autoregressive_lm 2x64, 800 steps: test %.3f bits/byte (unigram 4.87)\n", bpb);
		CHECK(bpb < 3.7, "test bits per byte %.3f, expected < 3.7 (unigram model: 4.87)", bpb);
		GenerateRequest req = { .prompt = "The ", .max_tokens = 400, .temperature = 0.8f,
		                        .top_p = 1.0f, .seed = 1 };
		char *out = NULL, err[1024];
		CHECK(runner_generate(spec, dir, &req, &out, err, sizeof err) == 0, "generate: %s", err);
		if (out) {
			cJSON *o = cJSON_Parse(out);
			const cJSON *t = cJSON_GetObjectItem(o, "text");
			if (cJSON_IsString(t)) {
				char why[256];
				int ok = looks_english(t->valuestring, why, sizeof why);
				printf("sample: %s\n---\nThe %s\n---\n", why, t->valuestring);
				CHECK(ok, "the sample does not look like English text: %s", why);
			} else {
				CHECK(0, "generate answered %s", out);
			}
			cJSON_Delete(o);
			free(out);
		}
		cJSON_Delete(res);
	}
	if (dir) {
		rm_dir(dir);
		free(dir);
	}
}

/* ---- masked LM ----------------------------------------------------------------------------------- */

static void test_mlm(void)
{
	struct stat sb;
	if (stat(FORTUNES, &sb) != 0) {
		printf("SKIP: %s not installed (Debian package fortunes)\n", FORTUNES);
		exit(77);
	}
	char spec[4096];
	snprintf(spec, sizeof spec,
	         "{\"name\":\"lm-quality-mlm\",\"method\":\"masked_lm\","
	         "\"dataset\":{\"format\":\"text_records\",\"dir\":\"%s\",\"record_bytes\":64},"
	         "\"model\":{\"encoder\":\"transformer\",\"dim\":64,\"depth\":2,\"heads\":4,"
	         "\"context\":64},"
	         "\"pretrain\":{\"max_steps\":4800,\"batch_size\":8,\"grad_clip\":1.0,"
	         "\"optimizer\":{\"name\":\"adamw\",\"lr\":0.001,\"weight_decay\":0.01,"
	         "\"betas\":[0.9,0.99]},"
	         "\"schedule\":{\"name\":\"cosine\",\"warmup_epochs\":0.1}},"
	         "\"evaluations\":[{\"protocol\":\"linear_probe\",\"label_fractions\":[0.1]}],"
	         "\"seed\":1,\"threads\":2}", FORTUNES);
	char *dir = make_dir();
	cJSON *res = dir ? run_job(spec, dir) : NULL;
	if (res) {
		double acc = metric(res, "test_masked_accuracy"), uni = metric(res, "unigram_accuracy");
		double bob = metric(res, "bag_of_bytes_probe@0.1");
		const cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "evaluations"), 0);
		const cJSON *pv = cJSON_GetObjectItem(e0, "test_accuracy");
		double probe = cJSON_IsNumber(pv) ? pv->valuedouble : NAN;
		printf("masked_lm 2x64, 4800 steps of 8: masked-byte accuracy %.3f (unigram %.3f); "
		       "probe at 10%% labels %.3f (bag of bytes %.3f)\n", acc, uni, probe, bob);
		CHECK(acc > uni + 0.08, "masked accuracy %.3f is not well above the unigram %.3f", acc,
		      uni);
		CHECK(probe > bob, "linear probe %.3f does not beat bag-of-bytes %.3f at 10%% labels",
		      probe, bob);
		cJSON_Delete(res);
	}
	if (dir) {
		rm_dir(dir);
		free(dir);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "ar") != 0 && strcmp(argv[1], "mlm") != 0)) {
		fprintf(stderr, "usage: test_lm_quality ar | mlm\n");
		return 2;
	}
	if (strcmp(argv[1], "ar") == 0)
		test_ar();
	else
		test_mlm();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
