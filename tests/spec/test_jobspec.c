/* test_jobspec.c - the job spec: bad specs fail with the exact field and a clear message, good
 * specs get the documented defaults, every catalogue example parses, and the resolved spec
 * round-trips. Paths are checked against real files in a temp dir (data roots, `..`, symlinks).
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobspec.h"
#include "examples_embedded.h"
#include "method_catalog.h"
#include "../engine/methods/decoder.h"
#include "../engine/methods/ssl_health.h"
#include "check.h"
#include "spec_json.h"
#include "spec_table.h"

static const JobSpecOptions plain = { .check_files = 1 };

/* An example whose data a tool generates (the audio words of tools/make_audio_words.py) may be
 * absent here: then it must parse without the file checks, and only a missing dataset excuses it. */
static int parse_example(const char *text, size_t len, JobSpec **js, SpecError *e)
{
	int rc = jobspec_parse(text, len, &plain, js, e);
	if (rc < 0 && e->http_status == 404 && strstr(text, "\"audio-words/")) {
		static const JobSpecOptions no_files = { .check_files = 0 };
		printf("example %.60s...: its generated dataset is absent; checked without files\n",
		       strstr(text, "\"name\"") ? strstr(text, "\"name\"") : text);
		rc = jobspec_parse(text, len, &no_files, js, e);
	}
	return rc;
}
static char tmp[256];           /* temp dir for path tests */

static JobSpec *parse_ok(const char *json, const JobSpecOptions *o, int line)
{
	JobSpec *js = NULL;
	SpecError e;
	int rc = jobspec_parse(json, strlen(json), o ? o : &plain, &js, &e);
	if (rc < 0 || !js) {
		fprintf(stderr, "FAIL line %d: expected a valid spec, got %d %s [%s] field '%s'\n  spec: %s\n",
		        line, rc, e.message, e.code, e.field, json);
		failures++;
		return NULL;
	}
	checks++;
	return js;
}
#define PARSE_OK(json, o) parse_ok(json, o, __LINE__)

/* A bad spec must fail with exactly this field, a message containing fragment, and (when given)
 * this code and HTTP status. */
static void bad(int line, const char *json, const JobSpecOptions *o, const char *field,
                const char *fragment, const char *code, int status)
{
	JobSpec *js = NULL;
	SpecError e;
	int rc = jobspec_parse(json, strlen(json), o ? o : &plain, &js, &e);
	checks++;
	if (rc >= 0) {
		fprintf(stderr, "FAIL line %d: accepted a bad spec (wanted %s: %s)\n  spec: %s\n", line,
		        field, fragment, json);
		failures++;
		jobspec_free(js);
		return;
	}
	if (js) {
		fprintf(stderr, "FAIL line %d: *out set on failure\n", line);
		failures++;
	}
	int ok = strcmp(e.field, field) == 0 && strstr(e.message, fragment) != NULL &&
	         (!code || strcmp(e.code, code) == 0) && (!status || e.http_status == status);
	/* the message starts with the field it names */
	if (field[0] && strncmp(e.message, field, strlen(field)) != 0)
		ok = 0;
	if (e.http_status == 400 && rc != -EINVAL)
		ok = 0;
	if (!ok) {
		fprintf(stderr,
		        "FAIL line %d:\n  spec:  %s\n  want:  field '%s', message ~ '%s', code %s, status %d\n"
		        "  got:   field '%s', message '%s', code %s, status %d, rc %d\n",
		        line, json, field, fragment, code ? code : "*", status, e.field, e.message, e.code,
		        e.http_status, rc);
		failures++;
	}
}
#define BAD(json, field, frag) bad(__LINE__, json, NULL, field, frag, NULL, 0)
#define BAD_CODE(json, o, field, frag, code, status) bad(__LINE__, json, o, field, frag, code, status)

static void write_file(const char *path, const char *content, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fwrite(content, 1, len, f);
	fclose(f);
}

static char *tpath(const char *name)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, PATH_MAX, "%s/%s", tmp, name);
	return b;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	static char bufs[4][8192];
	static int next;
	char *b = bufs[next++ % 4];
	va_list ap;
	va_start(ap, f);
	vsnprintf(b, sizeof bufs[0], f, ap);
	va_end(ap);
	return b;
}

/* ---------------------------------------------------------------------------------------------- */

/* "distributed": off when absent; without MPI in the build every use is one 400 on the key; with
 * it, processes must divide the global batch, hosts are host names only, and the resolved spec
 * keeps both. */
static void test_distributed(void)
{
	JobSpec *js = PARSE_OK("{\"method\": \"simclr\"}", NULL);
	if (js) {
		CHECK(!js->distributed.enabled, "absent: one process");
		char *j = jobspec_to_json(js);
		CHECK(j && !strstr(j, "distributed"), "an absent key stays absent in the resolved spec");
		free(j);
		jobspec_free(js);
	}
#ifndef SSLD_HAVE_MPI
	BAD("{\"method\": \"simclr\", \"distributed\": {\"processes\": 2}}", "distributed",
	    "this ssld was built without MPI (meson -Dmpi=enabled)");
#else
	js = PARSE_OK("{\"method\": \"simclr\", \"pretrain\": {\"batch_size\": 96}, "
	              "\"distributed\": {\"processes\": 3, \"hosts\": [\"node-1.lan:2\", \"n2\"]}}", NULL);
	if (js) {
		CHECK(js->distributed.enabled && js->distributed.processes == 3 && js->distributed.n_hosts == 2 &&
		      strcmp(js->distributed.hosts[0], "node-1.lan:2") == 0);
		char *j = jobspec_to_json(js);
		JobSpec *back = j ? PARSE_OK(j, NULL) : NULL;
		CHECK(back && back->distributed.processes == 3 && back->distributed.n_hosts == 2 &&
		      strcmp(back->distributed.hosts[1], "n2") == 0, "the resolved spec keeps it");
		jobspec_free(back);
		free(j);
		jobspec_free(js);
	}
	js = PARSE_OK("{\"method\": \"simclr\", \"distributed\": {}}", NULL);
	if (js) {
		CHECK(js->distributed.enabled && js->distributed.processes == 1 && js->distributed.n_hosts == 0);
		jobspec_free(js);
	}
	BAD("{\"method\": \"simclr\", \"distributed\": {\"processes\": 3}}", "distributed.processes",
	    "must divide pretrain.batch_size (the global batch, 256) into equal shards per rank, got 3 (2 or 4 would");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"processes\": 0}}", "distributed.processes", ">= 1");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"processes\": 257}}", "distributed.processes", "<= 256");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": [\"a;reboot\"]}}", "distributed.hosts[0]",
	    "got ';'");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": [\"a b\"]}}", "distributed.hosts[0]", "got ' '");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": [\"-oProxyCommand=x\"]}}",
	    "distributed.hosts[0]", "starts with a letter or digit");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": [\"a:0\"]}}", "distributed.hosts[0]",
	    "slots after ':' must be 1..256");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": [\"a:2:3\"]}}", "distributed.hosts[0]",
	    "slots");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": []}}", "distributed.hosts", "1..64 entries");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": \"a\"}}", "distributed.hosts",
	    "must be an array");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"hosts\": [7]}}", "distributed.hosts[0]", "must be a string");
	BAD("{\"method\": \"simclr\", \"distributed\": {\"procs\": 2}}", "distributed.procs", "unknown key");
#endif
	BAD("{\"method\": \"simclr\", \"distributed\": 2}", "distributed", "must be an object");
}

/* "embedding_map": off when absent, on with the table's defaults for {}, typed and range-checked,
 * kept by the resolved spec only when on. */
static void test_embedding_map(void)
{
	JobSpec *js = PARSE_OK("{\"method\": \"simclr\"}", NULL);
	if (js) {
		CHECK(!js->embed_map.enabled, "absent: no map");
		char *j = jobspec_to_json(js);
		CHECK(j && !strstr(j, "embedding_map"), "an absent map stays absent in the resolved spec");
		free(j);
		jobspec_free(js);
	}
	js = PARSE_OK("{\"method\": \"simclr\", \"embedding_map\": {}}", NULL);
	if (js) {
		CHECK(js->embed_map.enabled && js->embed_map.points == 2000 &&
		      js->embed_map.perplexity == 30.0f && js->embed_map.iterations == 1000,
		      "defaults: %d %d %g %d", js->embed_map.enabled, js->embed_map.points,
		      (double)js->embed_map.perplexity, js->embed_map.iterations);
		jobspec_free(js);
	}
	js = PARSE_OK("{\"method\": \"simclr\", \"embedding_map\": {\"points\": 500, \"perplexity\": 20, "
	              "\"iterations\": 400}}", NULL);
	if (js) {
		CHECK(js->embed_map.points == 500 && js->embed_map.perplexity == 20.0f &&
		      js->embed_map.iterations == 400);
		char *j = jobspec_to_json(js);
		JobSpec *back = j ? PARSE_OK(j, NULL) : NULL;
		CHECK(back && back->embed_map.enabled && back->embed_map.points == 500 &&
		      back->embed_map.perplexity == 20.0f && back->embed_map.iterations == 400,
		      "the resolved spec keeps the map");
		jobspec_free(back);
		free(j);
		jobspec_free(js);
	}
	BAD("{\"method\": \"simclr\", \"embedding_map\": true}", "embedding_map", "must be an object, got true");
	BAD("{\"method\": \"simclr\", \"embedding_map\": {\"points\": 9}}", "embedding_map.points",
	    "must be >= 10");
	BAD("{\"method\": \"simclr\", \"embedding_map\": {\"points\": 100.5}}", "embedding_map.points",
	    "integer");
	BAD("{\"method\": \"simclr\", \"embedding_map\": {\"perplexity\": \"30\"}}",
	    "embedding_map.perplexity", "must be a number");
	BAD("{\"method\": \"simclr\", \"embedding_map\": {\"points\": 50, \"perplexity\": 30}}",
	    "embedding_map.perplexity", "must be <= (embedding_map.points - 2) / 3 = 16.0, got 30");
	BAD("{\"method\": \"simclr\", \"embedding_map\": {\"iteration\": 500}}", "embedding_map.iteration",
	    "did you mean \"iterations\"?");
}

static void test_bad_specs(void)
{
	/* the document */
	BAD_CODE("{\"method\": \"simclr\",", NULL, "", "invalid JSON at line 1", "invalid_json", 400);
	BAD_CODE("[1, 2]", NULL, "", "must be a JSON object", "invalid_json", 400);
	BAD_CODE("{\"method\": \"simclr\"} trailing", NULL, "", "unexpected text after", "invalid_json", 400);
	BAD_CODE("{}", NULL, "method", "required (available: simclr", "missing_field", 400);
	BAD_CODE("{\"method\": \"simclr\", \"seed\": 1, \"seed\": 2}", NULL, "seed", "duplicate key",
	         "duplicate_key", 400);
	BAD_CODE("{\"method\": \"simclr\", \"pretrian\": {}}", NULL, "pretrian",
	         "unknown key; did you mean \"pretrain\"?", "unknown_key", 400);
	BAD("{\"method\": \"simclr\", \"zzzzzzzz\": 1}", "zzzzzzzz", "unknown key (allowed: name, method");
	BAD("{\"method\": \"simclr\", \"name\": \"x\\u0000y\"}", "name", "must not contain NUL characters");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\"}, {\"protocol\": \"k\\u0000nn\"}]}",
	    "evaluations[1].protocol", "must not contain NUL characters");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"proto\\u0000col\": \"knn\"}]}",
	    "evaluations[0]", "must not contain NUL characters");
	{
		static const char raw[] = "{\"method\": \"sim\0clr\"}";
		SpecError e;
		JobSpec *js = NULL;
		CHECK(jobspec_parse(raw, sizeof raw - 1, &plain, &js, &e) == -EINVAL && !js &&
		      strcmp(e.code, "invalid_json") == 0 && strstr(e.message, "NUL byte"), "raw NUL: %s", e.message);
	}

	/* method */
	BAD_CODE("{\"method\": \"simcrl\"}", NULL, "method",
	         "unknown method \"simcrl\"; did you mean \"simclr\"? (available: simclr, autoencoder, ", "unknown_method",
	         400);
	BAD("{\"method\": \"quantum\"}", "method", "unknown method \"quantum\" (available: ");
	BAD("{\"method\": 5}", "method", "must be a string, got 5");

	/* name and top-level scalars */
	BAD("{\"method\": \"simclr\", \"name\": \"bad/name\"}", "name", "must be 1..100 characters");
	BAD(fmt("{\"method\": \"simclr\", \"name\": \"%0101d\"}", 0), "name",
	    "must be at most 100 characters, got 101");
	BAD("{\"method\": \"simclr\", \"name\": \"\"}", "name", "must not be empty");
	BAD("{\"method\": \"simclr\", \"threads\": 0}", "threads", "must be >= 1, got 0");
	BAD("{\"method\": \"simclr\", \"threads\": 65}", "threads", "must be <= 64, got 65");
	BAD("{\"method\": \"simclr\", \"priority\": 101}", "priority", "must be <= 100, got 101");
	BAD("{\"method\": \"simclr\", \"seed\": -1}", "seed", "must be >= 0, got -1");
	BAD("{\"method\": \"simclr\", \"seed\": 2.5}", "seed", "must be an integer, got 2.5");
	BAD("{\"method\": \"simclr\", \"checkpoint_interval_s\": 0.5}", "checkpoint_interval_s",
	    "must be >= 1, got 0.5");
	BAD("{\"method\": \"simclr\", \"checkpoint_interval_s\": \"soon\"}", "checkpoint_interval_s",
	    "must be a number, got \"soon\"");

	/* params */
	BAD_CODE("{\"method\": \"simclr\", \"params\": {\"temprature\": 0.1}}", NULL, "params.temprature",
	         "did you mean \"temperature\"?", "unknown_key", 400);
	BAD("{\"method\": \"simclr\", \"params\": {\"temperature\": 0}}", "params.temperature",
	    "must be > 0, got 0");
	BAD("{\"method\": \"simclr\", \"params\": {\"temperature\": 11}}", "params.temperature",
	    "must be <= 10, got 11");
	BAD("{\"method\": \"simclr\", \"params\": {\"proj_dim\": true}}", "params.proj_dim",
	    "must be an integer, got true");
	BAD("{\"method\": \"simclr\", \"params\": {\"proj_dim\": 64.5}}", "params.proj_dim",
	    "must be an integer, got 64.5");
	BAD("{\"method\": \"simclr\", \"params\": [1]}", "params", "must be an object, got an array");
	BAD("{\"method\": \"none\", \"params\": {\"temperature\": 1}, \"evaluations\": [{\"protocol\": \"knn\"}]}",
	    "params.temperature", "method \"none\" has none");

	/* pretrain: types, ranges, finiteness, optimizer variants */
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"batch_size\": \"big\"}}", "pretrain.batch_size",
	    "must be an integer, got \"big\"");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"batch_size\": 1.5}}", "pretrain.batch_size",
	    "must be an integer, got 1.5");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"batch_size\": 1}}", "pretrain.batch_size",
	    "must be >= 2, got 1");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"batch_size\": 8193}}", "pretrain.batch_size",
	    "must be <= 8192, got 8193");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"epochs\": -1}}", "pretrain.epochs",
	    "must be >= 0, got -1");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"lr\": -1}}}", "pretrain.optimizer.lr",
	    "must be > 0, got -1");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"lr\": 1e999}}}",
	    "pretrain.optimizer.lr", "must be a finite number");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"weight_decay\": 8.8e67}}}",
	    "pretrain.optimizer.weight_decay", "must be at most 3.4e+38 in magnitude, got 8.8e+67");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"name\": \"adam\"}}}",
	    "pretrain.optimizer.name", "did you mean \"adamw\"?");
	BAD_CODE("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"momentum\": 0.9}}}", NULL,
	         "pretrain.optimizer.momentum", "only valid for optimizer \"sgd\" or \"lars\"", "unknown_key",
	         400);
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"name\": \"sgd\", \"betas\": [0.9, 0.99]}}}",
	    "pretrain.optimizer.betas", "only valid for optimizer \"adamw\"");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"name\": \"sgd\", \"momentum\": 1}}}",
	    "pretrain.optimizer.momentum", "must be < 1, got 1");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"betas\": [0.9, 1.0]}}}",
	    "pretrain.optimizer.betas[1]", "must be < 1, got 1");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"betas\": [0.9]}}}",
	    "pretrain.optimizer.betas", "must have exactly 2 entries, got 1");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"lr\": 0.01}, \"schedule\": {\"min_lr\": 0.1}}}",
	    "pretrain.schedule.min_lr", "must be <= pretrain.optimizer.lr");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"schedule\": {\"name\": \"step\"}}}",
	    "pretrain.schedule.name", "must be one of \"constant\" or \"cosine\", got \"step\"");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": \"adamw\"}}", "pretrain.optimizer",
	    "must be an object, got \"adamw\"");
	BAD("{\"method\": \"simclr\", \"pretrain\": {\"grad_clip\": -0.5}}", "pretrain.grad_clip",
	    "must be >= 0, got -0.5");
	BAD("{\"method\": \"none\", \"pretrain\": {}, \"evaluations\": [{\"protocol\": \"knn\"}]}", "pretrain",
	    "method \"none\" does not pretrain");

	/* model */
	BAD("{\"method\": \"simclr\", \"model\": {\"patch\": 4}}", "model.patch",
	    "only valid for encoder \"vit\" (this encoder is \"cnn\")");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"vit\", \"channels\": [8]}}", "model.channels",
	    "only valid for encoder \"cnn\"");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"vit\", \"pool_grid\": 2}}", "model.pool_grid",
	    "only valid for encoder \"cnn\"");
	BAD("{\"method\": \"simclr\", \"model\": {\"pool_grid\": 0}}", "model.pool_grid", "");
	/* the engine's rule (engine/model.c): a 28x28 image through cnn [32,64,128] ends as 7x7 */
	BAD("{\"method\": \"simclr\", \"model\": {\"pool_grid\": 4}}", "model.pool_grid",
	    "4 does not split the last 7x7 feature map");
	BAD("{\"method\": \"simclr\", \"model\": {\"channels\": [8, 16], \"pool_grid\": 4}}", "model.pool_grid",
	    "4 does not split the last 14x14 feature map");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"vit\", \"patch\": 5}}", "model.patch",
	    "must be 4 or 7, got 5");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"vit\", \"dim\": 100, \"heads\": 3}}", "model.heads",
	    "3 does not divide model.dim 100");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"transformer\"}}", "model.encoder",
	    "does not fit a fashion-mnist dataset");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"resnet\"}}", "model.encoder",
	    "\"resnet34\" or \"resnet50\", got \"resnet\"; did you mean \"resnet18\"?");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"resnet18\", \"width\": 0}}",
	    "model.width", "must be > 0, got 0");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"resnet50\", \"width\": 9}}",
	    "model.width", "must be <= 8, got 9");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"resnet34\", \"stem\": \"tiny\"}}",
	    "model.stem", "\"cifar\" or \"imagenet\"");
	BAD("{\"method\": \"simclr\", \"model\": {\"encoder\": \"resnet18\", \"channels\": [8]}}",
	    "model.channels", "resnet18");
	BAD("{\"method\": \"mae\", \"model\": {\"encoder\": \"resnet18\"}}", "model.encoder",
	    "resnet18");
	BAD("{\"method\": \"simclr\", \"model\": {\"channels\": []}}", "model.channels", "must not be empty");
	BAD("{\"method\": \"simclr\", \"model\": {\"channels\": [1,2,3,4,5,6,7,8,9]}}", "model.channels",
	    "must have at most 8 entries, got 9");
	BAD("{\"method\": \"simclr\", \"model\": {\"channels\": [32, 0]}}", "model.channels[1]",
	    "must be >= 1, got 0");
	BAD("{\"method\": \"simclr\", \"model\": {\"dropout\": 0.95}}", "model.dropout", "must be <= 0.9, got 0.95");
	BAD("{\"method\": \"simclr\", \"model\": {\"chanels\": [8]}}", "model.chanels",
	    "unknown key; did you mean \"channels\"?");

	/* augment */
	BAD_CODE("{\"method\": \"simclr\", \"augment\": {\"crop\": {\"scle\": [0.5, 1]}}}", NULL,
	         "augment.crop.scle", "unknown key; did you mean \"scale\"?", "unknown_key", 400);
	BAD("{\"method\": \"simclr\", \"augment2\": {\"blurr\": {}}}", "augment2.blurr",
	    "did you mean \"blur\"?");
	BAD("{\"method\": \"simclr\", \"augment\": \"simcrl\"}", "augment",
	    "unknown preset \"simcrl\"; did you mean \"simclr\"?");
	BAD("{\"method\": \"simclr\", \"augment\": {\"crop\": {\"scale\": [0.9, 0.2]}}}", "augment.crop.scale",
	    "min <= max, got [0.9, 0.2]");
	BAD("{\"method\": \"simclr\", \"augment\": {\"crop\": {\"scale\": 0.5}}}", "augment.crop.scale",
	    "must be an array of 2 numbers, got 0.5");
	BAD("{\"method\": \"simclr\", \"augment\": {\"flip\": {\"p\": 1.5}}}", "augment.flip.p",
	    "must be <= 1, got 1.5");
	BAD("{\"method\": \"simclr\", \"augment\": {\"flip\": true}}", "augment.flip",
	    "must be an object such as {\"p\": 0.5}, got true");
	BAD("{\"method\": \"simclr\", \"augment\": {\"rotate\": {\"multiples_of_90\": 1}}}",
	    "augment.rotate.multiples_of_90", "must be true or false, got 1");
	BAD("{\"method\": \"none\", \"augment\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\"}]}",
	    "augment", "method \"none\" has no pretraining views");
	BAD("{\"method\": \"simclr\", \"augment\": 3}", "augment", "must be a preset name");

	/* evaluations */
	BAD("{\"method\": \"simclr\", \"evaluations\": {}}", "evaluations", "must be an array, got an object");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{}]}", "evaluations[0].protocol", "required (one of:");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"linear_prob\"}]}",
	    "evaluations[0].protocol", "did you mean \"linear_probe\"?");
	BAD("{\"method\": \"simclr\", \"evaluations\": [3]}", "evaluations[0]", "must be an object");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"epochs\": 3}]}",
	    "evaluations[0].epochs",
	    "only valid for protocol \"linear_probe\", \"finetune\", \"supervised\", \"random_init\" or \"pixel_probe\" (this protocol "
	    "is \"knn\")");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"linear_probe\", \"k\": 5}]}",
	    "evaluations[0].k", "only valid for protocol \"knn\"");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"augment\": true}]}",
	    "evaluations[0].augment", "only valid for protocol \"finetune\" or \"supervised\"");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"label_fractions\": []}]}",
	    "evaluations[0].label_fractions", "must not be empty");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"label_fractions\": [0]}]}",
	    "evaluations[0].label_fractions[0]", "must be > 0, got 0");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"label_fractions\": [0.1, 1.5]}]}",
	    "evaluations[0].label_fractions[1]", "must be <= 1, got 1.5");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"label_fractions\": [1e999]}]}",
	    "evaluations[0].label_fractions[0]", "must be a finite number");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"label_fractions\": "
	    "[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9]}]}",
	    "evaluations[0].label_fractions", "must have at most 8 entries, got 9");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"label_fractions\": [0.1], "
	    "\"labels_per_class\": 10}]}",
	    "evaluations[0].labels_per_class", "not both");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\"}, {\"protocol\": \"knn\", "
	    "\"temperature\": 0}]}",
	    "evaluations[1].temperature", "must be > 0, got 0");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"knn\", \"k\": 0}]}", "evaluations[0].k",
	    "must be >= 1, got 0");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"finetune\", \"encoder_lr_scale\": 1.5}]}",
	    "evaluations[0].encoder_lr_scale", "must be <= 1, got 1.5");
	BAD("{\"method\": \"simclr\", \"evaluations\": [{\"protocol\": \"linear_probe\", \"label_rule\": \"last\"}]}",
	    "evaluations[0].label_rule", "must be one of \"first\" or \"random\"");
	{
		char buf[2048] = "{\"method\": \"simclr\", \"evaluations\": [";
		for (int i = 0; i < 17; i++)
			strcat(buf, i ? ", {\"protocol\": \"knn\"}" : "{\"protocol\": \"knn\"}");
		strcat(buf, "]}");
		BAD(buf, "evaluations", "must have at most 16 entries, got 17");
	}
	BAD("{\"method\": \"none\"}", "evaluations", "give at least one");
	BAD("{\"method\": \"none\", \"evaluations\": []}", "evaluations", "give at least one");

	/* dataset (no file system involved) */
	BAD("{\"method\": \"simclr\", \"dataset\": \"fashion_mnist\"}", "dataset",
	    "unknown dataset \"fashion_mnist\"; did you mean \"fashion-mnist\"?");
	BAD("{\"method\": \"simclr\", \"dataset\": 7}", "dataset", "must be a dataset name or an object, got 7");
	BAD("{\"method\": \"simclr\", \"dataset\": {\"name\": \"fashion-mnist\", \"format\": \"idx\"}}",
	    "dataset.name", "not both");
	BAD("{\"method\": \"simclr\", \"dataset\": {}}", "dataset.format", "required");
	BAD("{\"method\": \"none\", \"dataset\": {\"format\": \"text_records\", \"dir\": \"/nonexistent\", \"records\": \"csv\"}, "
	    "\"evaluations\": [{\"protocol\": \"knn\"}]}", "dataset.records", "must be one of \"percent\" or \"tsv\"");
	BAD("{\"method\": \"simclr\", \"dataset\": {\"format\": \"parquet\"}}", "dataset.format",
	    "must be one of \"idx\", \"csv\", \"text\", \"text_records\", \"captions\", \"image_folder\"");
	BAD("{\"method\": \"simclr\", \"dataset\": {\"name\": \"fashion-mnist\", \"limit_train\": -5}}",
	    "dataset.limit_train", "must be >= 0, got -5");
	BAD("{\"method\": \"simclr\", \"dataset\": {\"name\": \"fashion-mnist\", \"train\": \"x.csv\"}}",
	    "dataset.train", "only valid for format \"csv\"");
	BAD("{\"method\": \"simclr\", \"dataset\": {\"format\": \"idx\", \"train\": \"x.csv\"}}",
	    "dataset.train", "only valid for format \"csv\", \"image_folder\" or \"audio_folder\" (this format is \"idx\")");

	/* init_from */
	BAD("{\"method\": \"simclr\", \"init_from\": 0}", "init_from", "must be >= 1, got 0");
	BAD("{\"method\": \"simclr\", \"init_from\": 1.5}", "init_from", "must be an integer, got 1.5");
	BAD("{\"method\": \"simclr\", \"init_from\": true}", "init_from", "must be a checkpoint path or a job id");
	BAD_CODE("{\"method\": \"simclr\", \"init_from\": \"/nonexistent/ckpt.safetensors\"}", NULL, "init_from",
	         "/nonexistent/ckpt.safetensors: no such file", "checkpoint_not_found", 404);
}

/* Every error of a spec comes at once, each naming its field, in document order. */
static void test_all_errors(void)
{
	static const char byol[] =
		"{\"method\": \"byol\", \"params\": {\"tau_base\": 2}, \"model\": {\"dropout\": 0.95},"
		" \"pretrain\": {\"batch_size\": 1, \"optimizer\": {\"lr\": -1}}}";
	SpecErrors *errs = malloc(sizeof *errs);
	if (!errs)
		return;
	int rc = jobspec_parse_all(byol, strlen(byol), &plain, NULL, errs);
	CHECK(rc == -EINVAL && errs->n == 4, "byol: %d errors (rc %d), first %s", errs->n, rc, errs->e[0].message);
	static const char *const want[] = { "params.tau_base", "model.dropout", "pretrain.batch_size",
	                                    "pretrain.optimizer.lr" };
	for (int i = 0; i < errs->n && i < 4; i++)
		CHECK(strcmp(errs->e[i].field, want[i]) == 0 && errs->e[i].http_status == 400 &&
		      strncmp(errs->e[i].message, want[i], strlen(want[i])) == 0,
		      "error %d: %s (%s)", i, errs->e[i].field, errs->e[i].message);
	/* the single-error entry point reports the first of them */
	SpecError e;
	CHECK(jobspec_parse(byol, strlen(byol), &plain, NULL, &e) == -EINVAL && strcmp(e.field, "params.tau_base") == 0,
	      "first error %s", e.field);
	/* every bad parameter is reported (an unknown one and a bad value), then the next section's */
	static const char params[] =
		"{\"method\": \"simclr\", \"params\": {\"temprature\": 0.1, \"proj_dim\": true},"
		" \"pretrain\": {\"epoch\": 3}}";
	rc = jobspec_parse_all(params, strlen(params), &plain, NULL, errs);
	static const char *const want3[] = { "params.temprature", "params.proj_dim", "pretrain.epoch" };
	CHECK(rc == -EINVAL && errs->n == 3, "params: %d errors (rc %d)", errs->n, rc);
	for (int i = 0; i < errs->n && i < 3; i++)
		CHECK(strcmp(errs->e[i].field, want3[i]) == 0 && errs->e[i].http_status == 400,
		      "params error %d: %s (%s)", i, errs->e[i].field, errs->e[i].message);
	CHECK(errs->n >= 2 && strcmp(errs->e[0].code, "unknown_key") == 0 && strstr(errs->e[0].message, "\"temperature\"") &&
	      strcmp(errs->e[1].code, "invalid_field") == 0, "params codes: %s (%s), %s", errs->e[0].code,
	      errs->e[0].message, errs->e[1].code);
	/* keys of one level, and keys of several evaluations */
	static const char many[] =
		"{\"method\": \"simclr\", \"sed\": 1, \"threads\": 0, \"priority\": 500,"
		" \"evaluations\": [{\"protocol\": \"knn\", \"k\": 0}, {\"protocol\": \"linear_probe\", \"epochs\": -1}]}";
	rc = jobspec_parse_all(many, strlen(many), &plain, NULL, errs);
	static const char *const want2[] = { "sed", "threads", "priority", "evaluations[0].k",
	                                     "evaluations[1].epochs" };
	CHECK(rc == -EINVAL && errs->n == 5, "many: %d errors", errs->n);
	for (int i = 0; i < errs->n && i < 5; i++)
		CHECK(strcmp(errs->e[i].field, want2[i]) == 0, "error %d: %s", i, errs->e[i].message);
	/* a subtree of the wrong type is one error, not one per key below it */
	static const char wrong[] = "{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": 3, \"epochs\": -2}}";
	rc = jobspec_parse_all(wrong, strlen(wrong), &plain, NULL, errs);
	CHECK(rc == -EINVAL && errs->n == 2 && strcmp(errs->e[0].field, "pretrain.optimizer") == 0 &&
	      strcmp(errs->e[1].field, "pretrain.epochs") == 0, "wrong type: %d errors, %s", errs->n, errs->e[0].field);
	/* "$schema" is for editors: accepted and ignored */
	static const char schema[] = "{\"$schema\": \"http://127.0.0.1:8080/v1/schema\", \"method\": \"simclr\"}";
	CHECK(jobspec_parse_all(schema, strlen(schema), &plain, NULL, errs) == 0, "$schema: %s",
	      errs->n ? errs->e[0].message : "");
	free(errs);
}

/* A default lies inside its own range and among its own choices, for every row of the key table
 * (per variant), every method parameter and every protocol key; "automatic" is said, not a value
 * outside the range. */
static int in_range(double x, double min, double max, unsigned flags)
{
	if (!(flags & PARAM_NO_MIN) && ((flags & PARAM_MIN_EXCLUSIVE) ? !(x > min) : !(x >= min)))
		return 0;
	if (!(flags & PARAM_NO_MAX) && ((flags & PARAM_MAX_EXCLUSIVE) ? !(x < max) : !(x <= max)))
		return 0;
	return 1;
}

static void check_param_default(const char *owner, const ParamDef *d)
{
	if (d->flags & PARAM_DEFAULT_AUTO)
		return;
	if (d->type == PARAM_NUMBER || d->type == PARAM_INTEGER)
		CHECK(in_range(d->def, d->min, d->max, d->flags), "%s.%s: default %g outside its range [%g, %g]", owner,
		      d->name, d->def, d->min, d->max);
	if (d->type == PARAM_ENUM)
		CHECK(d->def_str && d->choices && spec_choice_index(d->choices, d->def_str) >= 0, "%s.%s: default %s not a choice",
		      owner, d->name, d->def_str ? d->def_str : "(none)");
}

static void test_defaults_in_range(void)
{
	int rows = 0;
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *k = spec_key_at(i);
		char level[96], v[32];
		const char *dot = strrchr(k->path, '.');
		snprintf(level, sizeof level, "%.*s", dot ? (int)(dot - k->path) : 0, k->path);
		const SpecLevel *lv = spec_level_find(level);
		const char *variants = k->variant ? k->variant : lv && lv->variants ? lv->variants : "";
		for (int c = 0; c == 0 || spec_choice_at(variants, c, v, sizeof v); c++) {
			const char *var = spec_choice_at(variants, c, v, sizeof v);
			cJSON *d = spec_key_default_json(k, var);
			CHECK(d != NULL, "%s: no default", k->path);
			if (!d)
				continue;
			rows++;
			int numeric = k->type == SPEC_INT || k->type == SPEC_I64 || k->type == SPEC_U64 ||
			              k->type == SPEC_FLOAT || k->type == SPEC_DOUBLE;
			if (numeric && !(k->flags & SPEC_HAND_PARSED) && cJSON_IsNumber(d))
				CHECK(in_range(d->valuedouble, k->min, k->max, k->flags), "%s (%s): default %g outside [%g, %g]",
				      k->path, var ? var : "-", d->valuedouble, k->min, k->max);
			if (numeric && !(k->flags & (SPEC_DEF_NONE | SPEC_HAND_PARSED)))
				CHECK(cJSON_IsNumber(d), "%s: numeric row without a default", k->path);
			if (k->type == SPEC_ENUM && k->choices && cJSON_IsString(d))
				CHECK(spec_choice_index(k->choices, d->valuestring) >= 0, "%s: default %s not a choice", k->path,
				      d->valuestring);
			if (cJSON_IsArray(d) && (k->type == SPEC_INT_LIST || k->type == SPEC_DOUBLE_LIST ||
			                         k->type == SPEC_FLOAT_PAIR)) {
				cJSON *e;
				cJSON_ArrayForEach(e, d)
					CHECK(in_range(e->valuedouble, k->min, k->max, k->flags & 15u), "%s: default entry %g outside",
					      k->path, e->valuedouble);
			}
			cJSON_Delete(d);
			if (!var)
				break;
		}
	}
	CHECK(rows > 80, "walked %d rows", rows);
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		for (int k = 0; k < method_param_count(m); k++)
			check_param_default(m->name, &m->params[k]);
	}
	for (int i = 0; i < protocol_catalog_count(); i++) {
		const ProtocolInfo *pi = protocol_catalog_at(i);
		for (int k = 0; k < pi->n_keys; k++)
			check_param_default(pi->name, &pi->keys[k]);
	}
	/* `ssld methods` says "auto" for the linear probe's lr, not "default 0 (0, 10]" */
	FILE *f = tmpfile();
	if (f) {
		jobspec_print_catalog(f);
		long n = ftell(f);
		rewind(f);
		char *txt = calloc(1, (size_t)n + 1);
		if (txt && fread(txt, 1, (size_t)n, f) == (size_t)n) {
			const char *lp = strstr(txt, "\nlinear_probe");
			const char *lr = lp ? strstr(lp, "    lr ") : NULL;
			CHECK(lr && strncmp(lr, "    lr                 number   default auto ", 45) == 0, "linear_probe lr: %.80s",
			      lr ? lr : "(missing)");
		}
		free(txt);
		fclose(f);
	}
}

/* Depth: 32 levels are parsed (and fail on type), 33 are refused before parsing, naming where. */
static void test_depth(void)
{
	char buf[4096], want[256];
	for (int levels = 30; levels <= 31; levels++) {
		/* root(1) + model(2) + `levels` arrays */
		int at = snprintf(buf, sizeof buf, "{\"method\": \"simclr\", \"model\": {\"channels\": ");
		for (int i = 0; i < levels; i++)
			buf[at++] = '[';
		for (int i = 0; i < levels; i++)
			buf[at++] = ']';
		snprintf(buf + at, sizeof buf - (size_t)at, "}}");
		if (levels == 30) {
			/* depth exactly 32: parsed, then rejected as not an integer */
			BAD(buf, "model.channels[0]", "must be an integer, got an array");
		} else {
			at = snprintf(want, sizeof want, "model.channels");
			for (int i = 0; i < 30; i++)
				at += snprintf(want + at, sizeof want - (size_t)at, "[0]");
			BAD_CODE(buf, NULL, want, "JSON nested deeper than 32 levels", "too_deep", 400);
		}
	}
	/* far deeper than cJSON's own limit: refused, no recursion */
	static char deep[200000];
	int at = snprintf(deep, sizeof deep, "{\"params\": {\"x\": ");
	for (int i = 0; i < 50000; i++)
		deep[at++] = '[';
	deep[at] = '\0';
	BAD_CODE(deep, NULL, "params.x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]",
	         "nested deeper", "too_deep", 400);
}

/* ---------------------------------------------------------------------------------------------- */

/* A parameter of js's method as stored in its config struct (read through the method's table). */
static double spec_param(const JobSpec *js, const char *name)
{
	const ParamDef *d = method_param_def(method_catalog_find(js->method), name);
	return d ? param_load(d, js->method_config) : NAN;
}

static void test_defaults(void)
{
	JobSpec *js = PARSE_OK("{\"method\": \"simclr\"}", NULL);
	if (!js)
		return;
	CHECK(strcmp(js->name, "simclr-fashion-mnist") == 0, "name %s", js->name);
	CHECK(strcmp(js->method, "simclr") == 0, "method %s", js->method);
	CHECK(method_catalog_find("simclr")->n_params == 5, "simclr params %d",
	      method_catalog_find("simclr")->n_params);
	CHECK(spec_param(js, "temperature") == 0.5, "temperature %g", spec_param(js, "temperature"));
	CHECK(spec_param(js, "proj_hidden") == 512, "proj_hidden");
	CHECK(spec_param(js, "proj_dim") == 128, "proj_dim");
	CHECK(spec_param(js, "knn_every") == 250 && spec_param(js, "health_every") == 50, "health");
	CHECK(method_param_def(method_catalog_find("simclr"), "nope") == NULL, "unknown param");
	CHECK(js->dataset.kind == DATASET_FASHION_MNIST && js->dataset.dir == NULL, "dataset");
	CHECK(js->dataset_name && strcmp(js->dataset_name, "fashion-mnist") == 0, "dataset_name");
	CHECK(js->dataset.limit_train == 0 && js->dataset.limit_test == 0, "limits");
	EncoderConfig ec;
	encoder_config_default(&ec, ENC_CNN);
	CHECK(js->encoder.kind == ENC_CNN, "encoder kind %d", js->encoder.kind);
	CHECK(js->encoder.n_channels == ec.n_channels &&
	      memcmp(js->encoder.channels, ec.channels, sizeof ec.channels) == 0, "channels");
	CHECK(js->encoder.out_dim == ec.out_dim && js->encoder.batchnorm == ec.batchnorm, "cnn defaults");
	AugConfig simclr;
	aug_config_default_simclr(&simclr);
	CHECK(memcmp(&js->augment[0], &simclr, sizeof simclr) == 0, "augment = simclr preset");
	CHECK(memcmp(&js->augment[1], &simclr, sizeof simclr) == 0, "augment2 = augment");
	CHECK(js->pretrain.epochs == 10, "epochs %d", js->pretrain.epochs);
	CHECK(js->pretrain.batch_size == 256, "batch");
	CHECK(js->pretrain.time_budget_s == 0 && js->pretrain.max_steps == 0, "no budget");
	CHECK(js->pretrain.warmup_epochs == 1.0f, "warmup %g", (double)js->pretrain.warmup_epochs);
	const OptimConfig *oc = &js->pretrain.optim;
	CHECK(oc->kind == OPT_ADAMW && oc->lr == 1e-3f && oc->weight_decay == 1e-6f, "adamw lr/wd %g %g",
	      (double)oc->lr, (double)oc->weight_decay);
	CHECK(oc->beta1 == 0.9f && oc->beta2 == 0.999f && oc->eps == 1e-8f, "betas/eps");
	CHECK(oc->schedule == SCHED_COSINE && oc->min_lr == 0 && oc->grad_clip == 0 && oc->warmup_steps == 0,
	      "schedule");
	CHECK(js->n_evals == 0, "evals %d", js->n_evals);
	CHECK(js->seed == 0 && js->threads == 2 && js->checkpoint_interval_s == 120 && js->priority == 0,
	      "scalars");
	CHECK(js->init_from == NULL && js->init_from_job == 0, "init_from");
	jobspec_free(js);

	/* sgd and lars defaults */
	js = PARSE_OK("{\"method\": \"simclr\", \"pretrain\": {\"optimizer\": {\"name\": \"sgd\"}}}", NULL);
	if (js) {
		oc = &js->pretrain.optim;
		CHECK(oc->kind == OPT_SGD && oc->momentum == 0.9f && oc->nesterov == 0 && oc->lr == 0.05f &&
		      oc->weight_decay == 5e-4f, "sgd defaults");
		jobspec_free(js);
	}
	js = PARSE_OK("{\"method\": \"simclr\", \"pretrain\": {\"grad_clip\": 1, \"optimizer\": {\"name\": \"lars\", "
	              "\"lr\": 0.5, \"trust_coef\": 0.02}, \"schedule\": {\"name\": \"constant\", "
	              "\"warmup_epochs\": 0.5, \"min_lr\": 0.1}}}", NULL);
	if (js) {
		oc = &js->pretrain.optim;
		CHECK(oc->kind == OPT_LARS && oc->momentum == 0.9f && oc->trust_coef == 0.02f && oc->lr == 0.5f,
		      "lars");
		CHECK(oc->grad_clip == 1.0f, "grad_clip kept across optimizer %g", (double)oc->grad_clip);
		CHECK(oc->schedule == SCHED_CONSTANT && js->pretrain.warmup_epochs == 0.5f && oc->min_lr == 0.1f,
		      "schedule");
		jobspec_free(js);
	}

	/* per-protocol defaults */
	js = PARSE_OK("{\"method\": \"none\", \"evaluations\": [{\"protocol\": \"linear_probe\"}, "
	              "{\"protocol\": \"finetune\"}, {\"protocol\": \"knn\"}, {\"protocol\": \"supervised\", "
	              "\"labels_per_class\": 10, \"label_rule\": \"random\"}]}", NULL);
	if (js) {
		CHECK(js->n_evals == 4, "n_evals %d", js->n_evals);
		const EvalSpec *e = js->evals;
		CHECK(e[0].protocol == EVAL_PROTO_LINEAR_PROBE && e[0].epochs == 100 && e[0].batch_size == 256 &&
		      e[0].lr == 0 && e[0].weight_decay == 0 && e[0].augment == 0, "linear_probe defaults");
		CHECK(e[0].n_fractions == 1 && e[0].fractions[0] == 1.0 && e[0].labels_per_class == 0 &&
		      e[0].label_rule == LABELS_FIRST, "fractions default");
		CHECK(e[1].protocol == EVAL_PROTO_FINETUNE && e[1].epochs == 30 && e[1].lr == 1e-3f &&
		      e[1].encoder_lr_scale == 0.1f && e[1].augment == 1 && e[1].batch_size == 64 &&
		      e[1].weight_decay == 1e-4f, "finetune defaults");
		CHECK(e[2].protocol == EVAL_PROTO_KNN && e[2].k == 20 && e[2].temperature == 0.07f, "knn defaults");
		CHECK(e[3].protocol == EVAL_PROTO_SUPERVISED && e[3].epochs == 30 && e[3].lr == 1e-3f &&
		      e[3].augment == 1 && e[3].labels_per_class == 10 && e[3].label_rule == LABELS_RANDOM &&
		      e[3].batch_size == 64 && e[3].weight_decay == 1e-4f, "supervised");
		CHECK(strcmp(js->name, "none-fashion-mnist") == 0, "name %s", js->name);
		AugConfig none;
		aug_config_none(&none);
		CHECK(memcmp(&js->augment[0], &none, sizeof none) == 0, "method none: no augmentation");
		CHECK(strcmp(eval_protocol_name(EVAL_PROTO_KNN), "knn") == 0, "protocol name");
		jobspec_free(js);
	}

	/* explicit values land where they should */
	js = PARSE_OK("{\"name\": \"my run 1.0_x-y\", \"method\": \"simclr\", \"params\": {\"temperature\": 0.2, "
	              "\"proj_dim\": 64}, \"model\": {\"encoder\": \"vit\", \"dim\": 64, \"heads\": 2, "
	              "\"depth\": 2, \"patch\": 7, \"pool\": \"cls\", \"dropout\": 0.1}, \"seed\": 42, "
	              "\"threads\": 4, \"priority\": -3, \"checkpoint_interval_s\": 30, \"init_from\": 17, "
	              "\"pretrain\": {\"epochs\": 0, \"max_steps\": 100, \"time_budget_s\": 60.5}, "
	              "\"evaluations\": [{\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1], "
	              "\"lr\": 0.1, \"weight_decay\": 1e-4}]}", NULL);
	if (js) {
		CHECK(strcmp(js->name, "my run 1.0_x-y") == 0, "name");
		CHECK(spec_param(js, "temperature") == 0.2f && spec_param(js, "proj_dim") == 64 &&
		      spec_param(js, "proj_hidden") == 512, "params");
		CHECK(js->encoder.kind == ENC_VIT && js->encoder.dim == 64 && js->encoder.heads == 2 &&
		      js->encoder.depth == 2 && js->encoder.patch == 7 && js->encoder.pool == 1 &&
		      js->encoder.dropout == 0.1f, "vit");
		CHECK(js->seed == 42 && js->threads == 4 && js->priority == -3 &&
		      js->checkpoint_interval_s == 30 && js->init_from_job == 17 && !js->init_from, "scalars");
		CHECK(js->pretrain.epochs == 0 && js->pretrain.max_steps == 100 &&
		      js->pretrain.time_budget_s == 60.5, "pretrain");
		CHECK(js->evals[0].n_fractions == 3 && js->evals[0].fractions[0] == 0.01 &&
		      js->evals[0].fractions[2] == 1.0 && js->evals[0].lr == 0.1f &&
		      js->evals[0].weight_decay == 1e-4f, "eval");
		jobspec_free(js);
	}

	/* a resnet: its keys stored, cifar stem and width 1 by default */
	js = PARSE_OK("{\"method\": \"byol\", \"model\": {\"encoder\": \"resnet50\", \"stem\": "
	              "\"imagenet\", \"width\": 0.5}}", NULL);
	if (js) {
		CHECK(js->encoder.kind == ENC_RESNET50 && js->encoder.stem == 1 &&
		      js->encoder.width == 0.5f, "resnet50 keys");
		jobspec_free(js);
	}
	js = PARSE_OK("{\"method\": \"simclr\", \"model\": {\"encoder\": \"resnet18\"}}", NULL);
	if (js) {
		CHECK(js->encoder.kind == ENC_RESNET18 && js->encoder.stem == 0 &&
		      js->encoder.width == 1.0f, "resnet18 defaults");
		jobspec_free(js);
	}

	/* augment object: a preset modified, a transform enabled with defaults, augment2 separate */
	js = PARSE_OK("{\"method\": \"simclr\", \"augment\": {\"preset\": \"simclr\", \"blur\": {\"p\": 0}, "
	              "\"rotate\": {\"degrees\": 30}, \"crop\": {\"scale\": [0.5, 1]}}, "
	              "\"augment2\": {\"noise\": {\"std\": 0.1}, \"clamp\": false}}", NULL);
	if (js) {
		const AugConfig *a = &js->augment[0], *b = &js->augment[1];
		CHECK(a->blur.p == 0 && a->crop.p == simclr.crop.p && a->crop.scale_min == 0.5f &&
		      a->hflip.p == simclr.hflip.p && a->jitter.p == simclr.jitter.p, "augment preset edits");
		CHECK(a->rotate.p == 0.5f && a->rotate.max_degrees == 30.0f, "rotate enabled with defaults");
		CHECK(b->crop.p == 0 && b->hflip.p == 0 && b->noise.p == 0.5f && b->noise.std == 0.1f &&
		      b->clamp == 0, "augment2 from none");
		jobspec_free(js);
	}
	js = PARSE_OK("{\"method\": \"simclr\", \"augment\": \"light\"}", NULL);
	if (js) {
		AugConfig light;
		aug_config_default_light(&light);
		CHECK(memcmp(&js->augment[0], &light, sizeof light) == 0 &&
		      memcmp(&js->augment[1], &light, sizeof light) == 0, "light preset both views");
		jobspec_free(js);
	}

	/* validate-only, NULL err, NULL opts */
	const char *ok = "{\"method\": \"simclr\"}";
	CHECK(jobspec_validate(ok, strlen(ok), NULL, NULL) == 0, "validate ok");
	CHECK(jobspec_validate("{}", 2, NULL, NULL) == -EINVAL, "validate bad");
	SpecError e;
	CHECK(jobspec_parse(NULL, 0, NULL, NULL, &e) < 0 && strcmp(e.code, "invalid_json") == 0, "NULL text");
	jobspec_free(NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Files, data roots, `..` and symlink escapes                                                     */

static void test_paths(void)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/root", tmp);
	mkdir(p, 0755);
	mkdir(tpath("root/texts"), 0755);
	mkdir(tpath("root/sub"), 0755);
	write_file(tpath("secret.csv"), "1,2,0\n", 6);
	write_file(tpath("root/train.csv"), "a,b,label\n1,2,0\n3,4,1\n", 22);
	write_file(tpath("root/texts/b_poems"), "roses\n%\nviolets\n", 16);
	write_file(tpath("root/texts/a_jokes"), "knock knock\n%\nwho\n", 18);
	write_file(tpath("root/texts/a_jokes.dat"), "\0\0\0\2binary", 10);
	write_file(tpath("root/texts/.hidden"), "x\n", 2);
	if (symlink(tpath("root/texts/a_jokes"), tpath("root/texts/c_link")) < 0 ||
	    symlink(tpath("secret.csv"), tpath("root/link.csv")) < 0 ||
	    symlink(tmp, tpath("root/sub/up")) < 0) {
		perror("symlink");
		failures++;
		return;
	}
	char root[PATH_MAX];
	snprintf(root, sizeof root, "%s/root", tmp);
	const char *roots[] = { root };
	JobSpecOptions ro = { .data_roots = roots, .n_data_roots = 1, .check_files = 1 };

	/* IDX images: the engine's encoder rules apply to the size the header gives (32 x 32: a cnn
	 * [32,64,128] ends at 8 x 8, which 4 splits and 3 does not) */
	{
		static const unsigned char hdr[16] = { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 32, 0, 0, 0, 32 };
		static const unsigned char lab[9] = { 0, 0, 8, 1, 0, 0, 0, 1, 3 };
		static unsigned char img[16 + 32 * 32];
		memcpy(img, hdr, sizeof hdr);
		write_file(tpath("root/img32"), (const char *)img, sizeof img);
		write_file(tpath("root/lab32"), (const char *)lab, sizeof lab);
		const char *idx = fmt("{\"format\": \"idx\", \"train_images\": \"%s\", \"train_labels\": \"%s\", "
		                      "\"test_images\": \"%s\", \"test_labels\": \"%s\"}", tpath("root/img32"),
		                      tpath("root/lab32"), tpath("root/img32"), tpath("root/lab32"));
		char spec[2048];
		snprintf(spec, sizeof spec, "{\"method\": \"simclr\", \"dataset\": %s, \"model\": {\"pool_grid\": 4}}", idx);
		JobSpec *ok = PARSE_OK(spec, &ro);
		jobspec_free(ok);
		snprintf(spec, sizeof spec, "{\"method\": \"simclr\", \"dataset\": %s, \"model\": {\"pool_grid\": 3}}", idx);
		bad(__LINE__, spec, &ro, "model.pool_grid", "3 does not split the last 8x8 feature map", "invalid_field", 400);
		snprintf(spec, sizeof spec, "{\"method\": \"simclr\", \"dataset\": %s, \"model\": {\"encoder\": \"vit\", "
		         "\"patch\": 7}}", idx);
		bad(__LINE__, spec, &ro, "model.patch", "7 does not divide the image height 32", "invalid_field", 400);
	}

	/* csv inside the root: the default encoder becomes mlp (vectors), method none */
	JobSpec *js = PARSE_OK(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s\", "
	                           "\"header\": true, \"test_fraction\": 0.2}, \"evaluations\": [{\"protocol\": "
	                           "\"linear_probe\"}]}", tpath("root/train.csv")), &ro);
	if (js) {
		char real[PATH_MAX];
		CHECK(realpath(tpath("root/train.csv"), real) && strcmp(js->dataset.csv_train, real) == 0,
		      "resolved csv path %s", js->dataset.csv_train);
		CHECK(js->dataset.kind == DATASET_CSV && js->dataset.csv_header == 1 &&
		      js->dataset.csv_label_column == -1 && js->dataset.test_fraction == 0.2f &&
		      js->dataset.csv_test == NULL, "csv fields");
		CHECK(js->encoder.kind == ENC_MLP, "csv -> mlp encoder, got %d", js->encoder.kind);
		CHECK(strcmp(js->name, "none-csv") == 0, "name %s", js->name);
		jobspec_free(js);
	}
	/* relative paths are relative to the first root */
	js = PARSE_OK("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"train.csv\"}, "
	              "\"evaluations\": [{\"protocol\": \"knn\"}]}", &ro);
	if (js) {
		CHECK(strstr(js->dataset.csv_train, "/root/train.csv") != NULL, "relative %s", js->dataset.csv_train);
		jobspec_free(js);
	}
	/* `..` out of the root */
	BAD_CODE(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s/root/../secret.csv\"}, "
	             "\"evaluations\": [{\"protocol\": \"knn\"}]}", tmp), &ro,
	         "dataset.train", "is outside the allowed data roots", "forbidden_path", 403);
	BAD_CODE("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"../secret.csv\"}, "
	         "\"evaluations\": [{\"protocol\": \"knn\"}]}", &ro,
	         "dataset.train", fmt("../secret.csv is outside the allowed data roots (%s)", root), "forbidden_path", 403);
	/* `..` to a file that does not exist: still 403, not 404 (no probing outside the roots) */
	BAD_CODE("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"../../../etc/nope\"}, "
	         "\"evaluations\": [{\"protocol\": \"knn\"}]}", &ro,
	         "dataset.train", "outside the allowed data roots", "forbidden_path", 403);
	/* a symlink inside the root pointing out */
	BAD_CODE(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s\"}, "
	             "\"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/link.csv")), &ro,
	         "dataset.train", fmt("%s is outside the allowed data roots (%s)", tpath("root/link.csv"), root),
	         "forbidden_path", 403);
	/* a symlinked directory inside the root pointing out, to a file that does not exist: the same
	 * 403 as an existing one (existence outside the roots is not observable) */
	BAD_CODE("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"sub/up/nope.csv\"}, "
	         "\"evaluations\": [{\"protocol\": \"knn\"}]}", &ro,
	         "dataset.train", fmt("sub/up/nope.csv is outside the allowed data roots (%s)", root), "forbidden_path", 403);
	/* confined with no data roots at all: no file is allowed */
	{
		const char *none[] = { NULL };
		JobSpecOptions no_roots = { .data_roots = none, .n_data_roots = 0, .check_files = 1 };
		BAD_CODE(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s\"}, "
		             "\"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/train.csv")), &no_roots,
		         "dataset.train", "no data roots are configured", "forbidden_path", 403);
	}
	/* a symlinked directory inside the root pointing out */
	BAD_CODE("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"sub/up/secret.csv\"}, "
	         "\"evaluations\": [{\"protocol\": \"knn\"}]}", &ro,
	         "dataset.train", "outside the allowed data roots", "forbidden_path", 403);
	/* an absolute path elsewhere */
	BAD_CODE("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"/etc/passwd\"}, "
	         "\"evaluations\": [{\"protocol\": \"knn\"}]}", &ro,
	         "dataset.train", fmt("/etc/passwd is outside the allowed data roots (%s)", root),
	         "forbidden_path", 403);
	/* the built-in dataset directory is a path too */
	BAD_CODE("{\"method\": \"simclr\"}", &ro, "dataset", "is outside the allowed data roots",
	         "forbidden_path", 403);
	/* init_from is checked like a dataset path */
	BAD_CODE("{\"method\": \"simclr\", \"dataset\": {\"format\": \"idx\", \"train_images\": \"train.csv\", "
	         "\"train_labels\": \"train.csv\", \"test_images\": \"train.csv\", \"test_labels\": \"train.csv\"}, "
	         "\"init_from\": \"/etc/passwd\"}", &ro,
	         "init_from", "outside the allowed data roots", "forbidden_path", 403);
	/* missing and non-regular files */
	BAD_CODE(fmt("{\"method\": \"simclr\", \"dataset\": {\"format\": \"idx\", \"train_images\": \"%s\", "
	             "\"train_labels\": \"%s\", \"test_images\": \"%s\", \"test_labels\": \"%s\"}}",
	             tpath("root/train.csv"), tpath("root/nope.gz"), tpath("root/train.csv"), tpath("root/train.csv")),
	         NULL, "dataset.train_labels", fmt("%s: no such file", tpath("root/nope.gz")), "dataset_not_found",
	         404);
	BAD_CODE(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s\"}, "
	             "\"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root")), NULL,
	         "dataset.train", "is not a regular file", "dataset_not_found", 404);
	BAD_CODE(fmt("{\"method\": \"simclr\", \"dataset\": {\"format\": \"idx\", \"train_images\": \"%s\", "
	             "\"train_labels\": \"%s\", \"test_images\": \"%s\"}}",
	             tpath("root/train.csv"), tpath("root/train.csv"), tpath("root/train.csv")),
	         NULL, "dataset.test_labels", "required for format \"idx\"", "missing_field", 400);
	BAD_CODE("{\"method\": \"simclr\", \"dataset\": {\"name\": \"fashion-mnist\", \"dir\": \"/nonexistent-dir\"}}",
	         NULL, "dataset.dir", "no such directory", "dataset_not_found", 404);
	/* check_files = 0: missing files pass (no roots) */
	JobSpecOptions nocheck = { .check_files = 0 };
	js = PARSE_OK("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"/nonexistent/a.csv\"}, "
	              "\"evaluations\": [{\"protocol\": \"knn\"}]}", &nocheck);
	jobspec_free(js);

	/* text_records from a directory: regular, non-hidden, non-binary files, sorted; symlinks skipped */
	js = PARSE_OK("{\"method\": \"none\", \"dataset\": {\"format\": \"text_records\", \"dir\": \"texts\", "
	              "\"record_bytes\": 64}, \"evaluations\": [{\"protocol\": \"knn\"}]}", &ro);
	if (js) {
		CHECK(js->dataset.kind == DATASET_TEXT_RECORDS && js->dataset.n_text_files == 2, "n files %d",
		      js->dataset.n_text_files);
		if (js->dataset.n_text_files == 2)
			CHECK(strstr(js->dataset.text_files[0], "/a_jokes") && strstr(js->dataset.text_files[1], "/b_poems"),
			      "sorted files %s %s", js->dataset.text_files[0], js->dataset.text_files[1]);
		CHECK(js->dataset.max_record_bytes == 64 && js->encoder.kind == ENC_TRANSFORMER &&
		      js->dataset.text_label_field == 0, "records");
		jobspec_free(js);
	}
	BAD(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"text_records\", \"dir\": \"%s\", "
	        "\"files\": [\"%s\"]}, \"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/texts"),
	        tpath("root/texts/a_jokes")),
	    "dataset.dir", "give either \"files\" or \"dir\", not both");
	BAD(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"text_records\", \"dir\": \"%s\", "
	        "\"record_bytes\": 4096}, \"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/texts")),
	    "dataset.record_bytes", "must be <= model.context");
	/* unlabelled text: evaluations refused; image methods refused; augmentations refused */
	const char *text_ds = fmt("{\"format\": \"text\", \"files\": [\"%s\", \"%s\"]}", tpath("root/texts/a_jokes"),
	                          tpath("root/texts/b_poems"));
	char textds[1024];
	snprintf(textds, sizeof textds, "%s", text_ds);
	BAD(fmt("{\"method\": \"none\", \"dataset\": %s, \"evaluations\": [{\"protocol\": \"linear_probe\"}]}", textds),
	    "evaluations[0].protocol", "\"linear_probe\" needs labels, but the text dataset is unlabelled");
	BAD(fmt("{\"method\": \"simclr\", \"dataset\": %s}", textds), "dataset",
	    "method \"simclr\" works on images; the text dataset holds text");
	/* a map the data cannot give is the runner's warning, not a refusal (every job has the key) */
	JobSpec *tjs = PARSE_OK(fmt("{\"method\": \"autoregressive_lm\", \"dataset\": %s, \"embedding_map\": {}}",
	                            textds), NULL);
	CHECK(tjs && tjs->embed_map.enabled);
	jobspec_free(tjs);
	BAD(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"text\", \"files\": [\"%s\", 3]}, "
	        "\"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/texts/a_jokes")),
	    "dataset.files[1]", "must be a path string, got 3");
	BAD(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"text\", \"files\": [\"%s\"], \"dir\": \"x\"}, "
	        "\"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/texts/a_jokes")),
	    "dataset.dir", "only valid for format \"named\", \"captions\", \"text_records\", \"cifar10\"");
	BAD(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s\", \"test\": \"%s\", "
	        "\"test_fraction\": 0.2}, \"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/train.csv"),
	        tpath("root/train.csv")),
	    "dataset.test_fraction", "only used without \"test\"");
	BAD(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s\"}, \"model\": "
	        "{\"encoder\": \"cnn\"}, \"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/train.csv")),
	    "model.encoder", "encoder \"cnn\" does not fit a csv dataset (use \"mlp\")");
	BAD(fmt("{\"method\": \"none\", \"dataset\": {\"format\": \"csv\", \"train\": \"%s\", \"header\": \"yes\"}, "
	        "\"evaluations\": [{\"protocol\": \"knn\"}]}", tpath("root/train.csv")),
	    "dataset.header", "must be \"auto\", true or false, got \"yes\"");
}

/* ---------------------------------------------------------------------------------------------- */
/* The catalogue                                                                                   */

static void test_catalogue(void)
{
	CHECK(method_catalog_count() >= 2, "methods");
	CHECK(method_catalog_find("simclr") && method_catalog_find("none"), "simclr and none");
	CHECK(protocol_catalog_count() == EVAL_PROTO_COUNT && EVAL_PROTO_COUNT == 6, "protocols");
	const MethodInfo *s = method_catalog_find("simclr");
	if (s) {
		const ParamDef *t = method_param_def(s, "temperature");
		CHECK(t && t->type == PARAM_NUMBER && t->def == 0.5 && t->max == 10 &&
		      (t->flags & PARAM_MIN_EXCLUSIVE), "temperature def");
		CHECK(s->views == 2 && s->default_encoder == ENC_CNN && !s->needs_labels &&
		      (s->datasets & DATA_IMAGES), "simclr entry");
	}
	/* every example parses, its resolved JSON parses back to the same resolved JSON */
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		CHECK(m->name && m->family && m->summary && m->example, "entry %d complete", i);
		CHECK(strlen(m->name) > 0 && m->config_size <= METHOD_CONFIG_MAX, "entry %d", i);
		for (int k = 0; k < method_param_count(m); k++) {
			const ParamDef *d = &m->params[k];
			CHECK(d->help && d->help[0], "%s.%s has help", m->name, d->name);
		}
		const char *example = method_catalog_example(m);
		CHECK(example != NULL, "%s: examples/%s is embedded", m->name, m->example);
		if (!example)
			continue;
		SpecError e;
		JobSpec *js = NULL;
		int rc = parse_example(example, strlen(example), &js, &e);
		CHECK(rc == 0, "example of %s: %s", m->name, e.message);
		if (rc < 0)
			continue;
		CHECK(strcmp(js->method, m->name) == 0, "example method");
		char *j1 = jobspec_to_json(js);
		JobSpec *js2 = NULL;
		rc = j1 ? parse_example(j1, strlen(j1), &js2, &e) : -1;
		CHECK(rc == 0, "resolved spec of %s reparses: %s\n%s", m->name, e.message, j1 ? j1 : "(null)");
		if (rc == 0) {
			char *j2 = jobspec_to_json(js2);
			CHECK(j2 && strcmp(j1, j2) == 0, "round trip of %s stable:\n%s\n---\n%s", m->name, j1, j2);
			CHECK(memcmp(&js->encoder, &js2->encoder, sizeof js->encoder) == 0 &&
			      memcmp(js->augment, js2->augment, sizeof js->augment) == 0 &&
			      memcmp(&js->pretrain.optim, &js2->pretrain.optim, sizeof js->pretrain.optim) == 0,
			      "round trip of %s: same structs", m->name);
			free(j2);
			jobspec_free(js2);
		}
		free(j1);
		jobspec_free(js);
	}
	/* a rich spec round-trips too (sgd, augment2, lpc, init_from id) */
	JobSpec *js = PARSE_OK("{\"method\": \"simclr\", \"augment\": {\"preset\": \"simclr\", \"rotate\": {\"p\": 0.3}}, "
	                       "\"augment2\": \"light\", \"pretrain\": {\"optimizer\": {\"name\": \"sgd\", "
	                       "\"nesterov\": true, \"lr\": 0.1}, \"grad_clip\": 2}, \"model\": {\"channels\": [8, 16], "
	                       "\"out_dim\": 32}, \"evaluations\": [{\"protocol\": \"finetune\", \"labels_per_class\": 5, "
	                       "\"augment\": false}], \"init_from\": 3, \"seed\": 7}", NULL);
	if (js) {
		char *j1 = jobspec_to_json(js);
		SpecError e;
		JobSpec *js2 = NULL;
		int rc = j1 ? jobspec_parse(j1, strlen(j1), &plain, &js2, &e) : -1;
		CHECK(rc == 0, "rich reparse: %s", e.message);
		if (rc == 0) {
			char *j2 = jobspec_to_json(js2);
			CHECK(j2 && strcmp(j1, j2) == 0, "rich round trip:\n%s\n---\n%s", j1, j2);
			CHECK(memcmp(js->augment, js2->augment, sizeof js->augment) == 0 &&
			      js2->evals[0].labels_per_class == 5 && js2->evals[0].augment == 0 &&
			      js2->pretrain.optim.nesterov == 1 && js2->init_from_job == 3, "rich fields");
			free(j2);
			jobspec_free(js2);
		}
		free(j1);
		jobspec_free(js);
	}

	/* catalogue JSON */
	char *cat = jobspec_catalog_json();
	CHECK(cat != NULL, "catalog json");
	cJSON *root = cat ? cJSON_Parse(cat) : NULL;
	CHECK(root != NULL, "catalog json parses");
	if (root) {
		cJSON *ms = cJSON_GetObjectItem(root, "methods");
		cJSON *ps = cJSON_GetObjectItem(root, "protocols");
		cJSON *ks = cJSON_GetObjectItem(root, "spec_keys");
		CHECK(cJSON_GetArraySize(ms) == method_catalog_count(), "methods in json");
		CHECK(cJSON_GetArraySize(ps) == EVAL_PROTO_COUNT, "protocols in json");
		CHECK(cJSON_GetArraySize(ks) > 60, "spec_keys %d", cJSON_GetArraySize(ks));
		cJSON *m0 = cJSON_GetArrayItem(ms, 0);
		cJSON *ex = cJSON_GetObjectItem(m0, "example");
		CHECK(cJSON_IsObject(ex), "example is an object");
		cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(m0, "params"), 0);
		CHECK(p0 && cJSON_IsString(cJSON_GetObjectItem(p0, "name")) &&
		      cJSON_IsString(cJSON_GetObjectItem(p0, "type")) && cJSON_GetObjectItem(p0, "default") &&
		      cJSON_GetObjectItem(p0, "min") && cJSON_GetObjectItem(p0, "max") &&
		      cJSON_IsString(cJSON_GetObjectItem(p0, "help")), "param shape");
		int found_lr = 0, found_aug = 0, found_ch = 0;
		cJSON *k;
		cJSON_ArrayForEach(k, ks) {
			const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(k, "path"));
			CHECK(path && cJSON_GetObjectItem(k, "type") && cJSON_GetObjectItem(k, "default") &&
			      cJSON_GetObjectItem(k, "help"), "spec key shape");
			if (!path)
				continue;
			found_lr |= strcmp(path, "pretrain.optimizer.lr") == 0;
			found_aug |= strcmp(path, "augment.crop.scale") == 0 &&
			             cJSON_GetArraySize(cJSON_GetObjectItem(k, "default")) == 2;
			found_ch |= strcmp(path, "model.channels") == 0 &&
			            cJSON_IsArray(cJSON_GetObjectItem(k, "default"));
			if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(k, "type")), "enum") == 0)
				CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(k, "enum")) >= 1, "%s lists its choices", path);
		}
		CHECK(found_lr && found_aug && found_ch, "spec keys %d %d %d", found_lr, found_aug, found_ch);
		cJSON_Delete(root);
	}
	free(cat);

	/* the printed catalogue */
	FILE *f = tmpfile();
	if (f) {
		CHECK(jobspec_print_catalog(f) == 0, "print");
		long n = ftell(f);
		rewind(f);
		char *txt = calloc(1, (size_t)n + 1);
		if (txt && fread(txt, 1, (size_t)n, f) == (size_t)n) {
			CHECK(strstr(txt, "simclr  [contrastive]") && strstr(txt, "temperature") &&
			      strstr(txt, "example:") && strstr(txt, "linear_probe") && strstr(txt, "(0, 10]"),
			      "printed catalogue:\n%s", txt);
		}
		free(txt);
		fclose(f);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* The registries: tables bound to the structs the engine reads, published defaults = used ones. */

static void test_registry_tables(void)
{
	char err[256];
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		int rc = param_table_check(m->params, m->n_params, m->config_size, err, sizeof err);
		CHECK(rc == 0, "method %s: %s", m->name, err);
		CHECK(m->n_params == 0 || m->create, "%s has parameters but no code", m->name);
		_Alignas(max_align_t) unsigned char cfg[METHOD_CONFIG_MAX];
		CHECK(method_config_default(m, cfg) == 0, "%s defaults", m->name);
		for (int k = 0; k < m->n_params; k++) {
			const ParamDef *d = &m->params[k];
			char buf[64];
			if (d->type == PARAM_ENUM) {
				const char *t = param_load_text(d, cfg, buf, sizeof buf);
				CHECK(t && strcmp(t, d->def_str) == 0, "%s.%s default \"%s\" stored as \"%s\"",
				      m->name, d->name, d->def_str, t ? t : "(null)");
			} else if (d->type != PARAM_STRING) {
				double x = param_load(d, cfg);
				CHECK(x == d->def || (float)x == (float)d->def, "%s.%s default %g stored as %g",
				      m->name, d->name, d->def, x);
			}
		}
		if (m->ssl_health) {
			const SslHealthConfig *h = ssl_health_config(m, cfg);
			CHECK(h && h->health_every == SSL_HEALTH_EVERY && h->knn_every == SSL_HEALTH_KNN_EVERY,
			      "%s: health config at its offset", m->name);
		}
	}
	for (int i = 0; i < protocol_catalog_count(); i++) {
		const ProtocolInfo *pi = protocol_catalog_at(i);
		int rc = param_table_check(pi->keys, pi->n_keys, sizeof(EvalConfig), err, sizeof err);
		CHECK(rc == 0, "protocol %s: %s", pi->name, err);
		CHECK(protocol_catalog_get(pi->protocol) == pi, "%s: found by its enum", pi->name);
	}
	/* an enum parameter is stored as the C enum its choices follow */
	JobSpec *js = PARSE_OK("{\"method\": \"autoencoder\", \"params\": {\"loss\": \"bce\", "
	                       "\"decoder\": \"conv\"}, \"model\": {\"encoder\": \"cnn\"}}", NULL);
	if (js) {
		CHECK(spec_param(js, "loss") == 1 && spec_param(js, "decoder") == DEC_CONV,
		      "enums: loss %g decoder %g", spec_param(js, "loss"), spec_param(js, "decoder"));
		jobspec_free(js);
	}
	/* cross-field rules live next to their table */
	BAD("{\"method\": \"mae\", \"params\": {\"decoder_dim\": 64, \"decoder_heads\": 5}}",
	    "params.decoder_heads", "decoder_heads (5) must divide decoder_dim (64)");
	char text_path[PATH_MAX], json[PATH_MAX + 256];
	snprintf(text_path, sizeof text_path, "%s/registry.txt", tmp);
	FILE *tf = fopen(text_path, "w");
	CHECK(tf != NULL, "write %s", text_path);
	if (tf) {
		for (int i = 0; i < 200; i++)
			fprintf(tf, "line %d of a small text for the masked language model\n", i);
		fclose(tf);
		snprintf(json, sizeof json, "{\"method\": \"masked_lm\", \"dataset\": {\"format\": "
		         "\"text\", \"files\": [\"%s\"]}, \"params\": {\"mask_token_prob\": 0.7, "
		         "\"random_token_prob\": 0.4}}", text_path);
		BAD(json, "params.random_token_prob",
		    "mask_token_prob (0.7) + random_token_prob (0.4) must be at most 1");
	}
}

/* The protocol defaults the catalogue publishes (GET /v1/methods) are the ones the engine runs
 * with: a job's evaluation without keys is exactly eval_config_default(), which is also what the
 * masked-LM bag-of-bytes baseline and the tests use. */
static void test_protocol_defaults(void)
{
	char *cat = jobspec_catalog_json();
	cJSON *root = cat ? cJSON_Parse(cat) : NULL;
	CHECK(root != NULL, "catalog json");
	cJSON *pj, *protocols = root ? cJSON_GetObjectItem(root, "protocols") : NULL;
	int seen = 0;
	cJSON_ArrayForEach(pj, protocols) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(pj, "name"));
		const ProtocolInfo *pi = protocol_catalog_find(name);
		CHECK(pi != NULL, "published protocol %s is in the registry", name ? name : "?");
		if (!pi)
			continue;
		seen++;
		EvalConfig engine;
		eval_config_default(&engine, pi->protocol);
		cJSON *kj;
		int keys = 0;
		cJSON_ArrayForEach(kj, cJSON_GetObjectItem(pj, "keys")) {
			const char *kn = cJSON_GetStringValue(cJSON_GetObjectItem(kj, "name"));
			const ParamDef *d = protocol_key_def(pi, kn);
			CHECK(d != NULL, "%s.%s is a key of the registry", name, kn ? kn : "?");
			if (!d)
				continue;
			keys++;
			cJSON *def = cJSON_GetObjectItem(kj, "default");
			double used = param_load(d, &engine);
			if (d->flags & PARAM_DEFAULT_AUTO) {   /* published as automatic, no number */
				CHECK(!cJSON_IsNumber(def) && used == d->def, "%s.%s: automatic default published as "
				      "a value, or the engine does not start from its stand-in %g", name, kn, d->def);
				continue;
			}
			double pub = cJSON_IsBool(def) ? cJSON_IsTrue(def) : cJSON_GetNumberValue(def);
			CHECK((float)pub == (float)used, "%s.%s: published default %g, engine uses %g", name,
			      kn, pub, used);
		}
		CHECK(keys == pi->n_keys, "%s: %d keys published, %d in the registry", name, keys,
		      pi->n_keys);
		/* a job's evaluation without keys is the engine's default config */
		char json[160];
		snprintf(json, sizeof json, "{\"method\": \"none\", \"evaluations\": [{\"protocol\": \"%s\"}]}",
		         name);
		JobSpec *js = PARSE_OK(json, NULL);
		if (js) {
			CHECK(memcmp(&js->evals[0], &engine, sizeof engine) == 0,
			      "%s: the spec's default evaluation is eval_config_default()", name);
			jobspec_free(js);
		}
	}
	CHECK(seen == EVAL_PROTO_COUNT, "protocols published: %d", seen);
	/* the two values that had drifted: one each */
	EvalConfig c;
	eval_config_default(&c, EVAL_PROTO_LINEAR_PROBE);
	CHECK(c.epochs == 100, "linear probe budget %d", c.epochs);
	eval_config_default(&c, EVAL_PROTO_FINETUNE);
	CHECK(c.lr == 1e-3f && c.encoder_lr_scale == 0.1f, "finetune lr %g", c.lr);
	eval_config_default(&c, EVAL_PROTO_SUPERVISED);
	CHECK(c.lr == 1e-3f && c.encoder_lr_scale == 1.0f, "supervised lr %g", c.lr);
	cJSON_Delete(root);
	free(cat);
}

/* Each method's catalogue example is its file in examples/, byte for byte (embedded at build
 * time), and every example file is embedded. */
static void test_examples_embedded(void)
{
	const char *dir = getenv("SSLD_EXAMPLES_DIR");
	if (!dir)
		return;
	char *cat = jobspec_catalog_json();
	cJSON *root = cat ? cJSON_Parse(cat) : NULL;
	CHECK(root != NULL, "catalog json");
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", dir, m->example ? m->example : "(none)");
		FILE *f = fopen(path, "rb");
		CHECK(f != NULL, "method %s: example file %s exists", m->name, path);
		if (!f)
			continue;
		static char text[65536];
		size_t len = fread(text, 1, sizeof text - 1, f);
		fclose(f);
		text[len] = '\0';
		const char *emb = method_catalog_example(m);
		CHECK(emb && strlen(emb) == len && memcmp(emb, text, len) == 0,
		      "method %s: the embedded example is not %s byte for byte (meson setup --reconfigure "
		      "after adding an example)", m->name, path);
		cJSON *file = cJSON_Parse(text);
		CHECK(file != NULL, "%s parses", path);
		cJSON *mj = root ? cJSON_GetArrayItem(cJSON_GetObjectItem(root, "methods"), i) : NULL;
		CHECK(mj && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(mj, "name")), m->name) == 0,
		      "catalogue order");
		CHECK(file && mj && cJSON_Compare(cJSON_GetObjectItem(mj, "example"), file, 1),
		      "GET /v1/methods example of %s is %s", m->name, path);
		CHECK(file && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(file, "method")), m->name) == 0,
		      "%s is an example of %s", path, m->name);
		cJSON_Delete(file);
	}
	/* and nothing in examples/ is left out of the build */
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		int found = 0;
		for (int i = 0; i < embedded_example_count; i++)
			found |= strcmp(embedded_examples[i].name, de->d_name) == 0;
		CHECK(found, "examples/%s is embedded (meson setup --reconfigure)", de->d_name);
	}
	if (d)
		closedir(d);
	cJSON_Delete(root);
	free(cat);
}

/* ---------------------------------------------------------------------------------------------- */
/* Every examples/ *.json is a valid job (they are documented as runnable as they are).            */

static void test_examples_dir(void)
{
	const char *dir = getenv("SSLD_EXAMPLES_DIR");
	if (!dir)
		return;
	DIR *d = opendir(dir);
	CHECK(d != NULL, "examples dir %s", dir);
	if (!d)
		return;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		static char text[65536];
		size_t len = fread(text, 1, sizeof text - 1, f);
		fclose(f);
		text[len] = '\0';
		SpecError e;
		JobSpec *js = NULL;
		int rc = parse_example(text, len, &js, &e);
		CHECK(rc == 0, "examples/%s: %s", de->d_name, e.message);
		jobspec_free(js);
		n++;
	}
	closedir(d);
	printf("examples: %d parsed\n", n);
}

/* ---------------------------------------------------------------------------------------------- */
/* Seeded mutations of the examples: every outcome is a valid spec that round-trips, or an error  */
/* with a code, a status and a message that starts with its field. Nothing crashes or leaks.      */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t next_rand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static void test_mutations(void)
{
	static const char alphabet[] = "{}[]\",:0123456789.-+eE truefalsnul\\/_abcxyz";
	const JobSpecOptions nocheck = { .check_files = 0 };
	int valid = 0, invalid = 0;
	char buf[8192];
	for (int i = 0; i < method_catalog_count(); i++) {
		const char *ex = method_catalog_example(method_catalog_at(i));
		if (!ex || strlen(ex) >= sizeof buf - 64)
			continue;
		for (int iter = 0; iter < 3000; iter++) {
			size_t len = strlen(ex);
			memcpy(buf, ex, len);
			int nmut = 1 + (int)(next_rand() % 4);
			for (int m = 0; m < nmut && len > 2 && len < sizeof buf - 64; m++) {
				size_t at = next_rand() % len;
				switch (next_rand() % 4) {
				case 0: buf[at] = alphabet[next_rand() % (sizeof alphabet - 1)]; break;
				case 1: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
				case 2:
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = alphabet[next_rand() % (sizeof alphabet - 1)];
					len++;
					break;
				default: {   /* duplicate a slice (duplicate keys, nested values) */
					size_t from = next_rand() % len, n = 1 + next_rand() % 24;
					if (from + n > len)
						n = len - from;
					memmove(buf + at + n, buf + at, len - at);
					memmove(buf + at, buf + (from >= at ? from + n : from), n);
					len += n;
					break;
				}
				}
			}
			buf[len] = '\0';
			const JobSpecOptions *o = iter % 2 ? &plain : &nocheck;
			SpecError e;
			JobSpec *js = NULL;
			int rc = jobspec_parse(buf, len, o, &js, &e);
			if (rc == 0) {
				valid++;
				char *j1 = jobspec_to_json(js);
				JobSpec *js2 = NULL;
				int rc2 = j1 ? jobspec_parse(j1, strlen(j1), o, &js2, &e) : -1;
				char *j2 = rc2 == 0 ? jobspec_to_json(js2) : NULL;
				CHECK(rc2 == 0 && j2 && strcmp(j1, j2) == 0, "mutant round trip: %s\n%s\n%s", e.message, buf,
				      j1 ? j1 : "");
				free(j1);
				free(j2);
				jobspec_free(js2);
				jobspec_free(js);
			} else {
				invalid++;
				int ok = js == NULL && e.code[0] && e.message[0] &&
				         (e.http_status == 400 || e.http_status == 403 || e.http_status == 404) &&
				         strncmp(e.message, e.field, strlen(e.field)) == 0;
				CHECK(ok, "mutant error: [%s] %d '%s' '%s'\n%s", e.code, e.http_status, e.field, e.message, buf);
			}
		}
	}
	CHECK(valid > 100 && invalid > 1000, "mutations: %d valid, %d invalid", valid, invalid);
	printf("mutations: %d valid, %d invalid\n", valid, invalid);
}

static void rm_tree(void)
{
	static const char *const files[] = { "root/texts/c_link", "root/texts/.hidden", "root/texts/a_jokes.dat",
	                                     "root/texts/a_jokes", "root/texts/b_poems", "root/link.csv",
	                                     "root/sub/up", "root/train.csv", "secret.csv" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(tpath(files[i]));
	rmdir(tpath("root/texts"));
	rmdir(tpath("root/sub"));
	rmdir(tpath("root"));
	rmdir(tmp);
}

int main(void)
{
	const char *fm = getenv("SSLD_FASHION_MNIST_DIR");
	char probe[PATH_MAX];
	snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", fm ? fm : "/usr/share/datasets/fashion-mnist");
	if (access(probe, R_OK) != 0) {
		printf("SKIP: Fashion-MNIST not installed (%s); the default dataset cannot be validated\n", probe);
		return 77;
	}
	snprintf(tmp, sizeof tmp, "/tmp/ssld-spec-XXXXXX");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_bad_specs();
	test_embedding_map();
	test_distributed();
	test_all_errors();
	test_defaults_in_range();
	test_depth();
	test_defaults();
	test_paths();
	test_catalogue();
	test_examples_dir();
	test_registry_tables();
	test_protocol_defaults();
	test_examples_embedded();
	test_mutations();
	rm_tree();
	printf("%d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
