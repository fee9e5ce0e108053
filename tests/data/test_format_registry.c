/* test_format_registry.c - walks the dataset format registry (engine/data/format_registry.c) and
 * checks that everything derived from it holds for every format: its key table is consistent
 * (param_table_check), its keys appear in the JSON Schema under its own variant only, the
 * catalogue (GET /v1/methods) publishes its modality and labels, each method lists exactly the
 * formats whose samples it takes, and the format loads a tiny file written here, both directly
 * through its keys and through a job spec. A format without a fixture below fails the test, so a
 * new format comes with its fixture.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../../engine/data/format.h"
#include "../../workers/jobspec.h"
#include "../../workers/method_catalog.h"
#include "../../workers/spec_schema.h"
#include "../../workers/spec_table.h"
#include "check.h"
#include "img_fixtures.h"

#include <sndfile.h>

static char tmpdir[] = "/tmp/ssld_formats_XXXXXX";

static const char *tp(const char *name)
{
	static char bufs[8][512];
	static int at;
	char *b = bufs[at++ % 8];
	snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
	return b;
}

/* The JSON type a key's values take: paths, folders and choices are all strings. */
static const char *json_kind(ParamType t)
{
	switch (t) {
	case PARAM_NUMBER: return "number";
	case PARAM_INTEGER: return "integer";
	case PARAM_BOOLEAN: return "boolean";
	case PARAM_INT_LIST:
	case PARAM_PATH_LIST: return "array";
	default: return "string";
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Fixtures: tiny files of every format                                                           */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An IDX file of n images h x w (magic 0x803) or n labels (h = 0), gzip when gz. */
static int write_idx(const char *path, int n, int h, int w, int classes, int gz)
{
	size_t head = h ? 16 : 8, body = (size_t)n * (h ? (size_t)h * (size_t)w : 1);
	uint8_t *b = calloc(1, head + body);
	if (!b)
		return -1;
	put32(b, h ? 0x803 : 0x801);
	put32(b + 4, (uint32_t)n);
	if (h) {
		put32(b + 8, (uint32_t)h);
		put32(b + 12, (uint32_t)w);
	}
	for (size_t i = 0; i < body; i++)
		b[head + i] = h ? (uint8_t)(i * 37 % 256) : (uint8_t)(i % (size_t)classes);
	int rc = 0;
	if (gz) {
		gzFile g = gzopen(path, "wb");
		rc = g && gzwrite(g, b, (unsigned)(head + body)) == (int)(head + body) ? 0 : -1;
		if (g)
			gzclose(g);
	} else {
		FILE *f = fopen(path, "wb");
		rc = f && fwrite(b, 1, head + body, f) == head + body ? 0 : -1;
		if (f)
			fclose(f);
	}
	free(b);
	return rc;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static unsigned fx_colour(int x, int y, int ch) { return (unsigned)(x * 20 + y * 7 + ch * 60) & 255; }

/* n records of rec bytes, each led by its label bytes (label i % classes) and filled with i. */
static int write_records(const char *path, int n, int label_bytes, int classes, size_t pixels)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = 1;
	for (int i = 0; i < n && ok; i++) {
		for (int k = 0; k < label_bytes; k++)
			ok &= fputc(i % classes, f) != EOF;
		for (size_t k = 0; k < pixels && ok; k++)
			ok &= fputc((int)((i + k) & 255), f) != EOF;
	}
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* STL-10: n images (column-major planes) and their labels 1..10. */
static int write_stl(const char *xpath, const char *ypath, int n)
{
	int rc = write_records(xpath, n, 0, 1, 3 * 96 * 96);
	FILE *f = fopen(ypath, "wb");
	if (!f)
		return -1;
	for (int i = 0; i < n; i++)
		rc |= fputc(1 + i % 10, f) == EOF;
	return (fclose(f) == 0 ? 0 : -1) | rc;
}

static int make_image_fixtures(void)
{
	int rc = mkdir(tp("img"), 0700) | mkdir(tp("img/cat"), 0700) | mkdir(tp("img/dog"), 0700) |
	         mkdir(tp("flat"), 0700);
	char path[64];
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "img/cat/%d.png", i);
		rc |= fx_png(tp(path), 12 + i, 10, PNG_COLOR_TYPE_RGB, 8, 0, fx_colour);
		snprintf(path, sizeof path, "img/dog/%d.png", i);
		rc |= fx_png(tp(path), 10, 12 + i, PNG_COLOR_TYPE_GRAY, 8, 0, fx_colour);
		snprintf(path, sizeof path, "flat/%d.png", i);
		rc |= fx_png(tp(path), 9, 9, PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, fx_colour);
	}
	rc |= mkdir(tp("c10"), 0700) | mkdir(tp("c100"), 0700) | mkdir(tp("stl"), 0700);
	for (int b = 1; b <= 5; b++) {
		snprintf(path, sizeof path, "c10/data_batch_%d.bin", b);
		rc |= write_records(tp(path), 2, 1, 10, 3072);
	}
	rc |= write_records(tp("c10/test_batch.bin"), 3, 1, 10, 3072);
	rc |= write_records(tp("c100/train.bin"), 8, 2, 20, 3072);
	rc |= write_records(tp("c100/test.bin"), 4, 2, 20, 3072);
	rc |= write_stl(tp("stl/train_X.bin"), tp("stl/train_y.bin"), 4);
	rc |= write_stl(tp("stl/test_X.bin"), tp("stl/test_y.bin"), 2);
	rc |= write_records(tp("stl/unlabeled_X.bin"), 3, 0, 1, 3 * 96 * 96);
	return rc;
}

/* 2 classes x 3 WAV files of a tenth of a second. */
static int make_audio_fixtures(void)
{
	int rc = mkdir(tp("snd"), 0700) | mkdir(tp("snd/hum"), 0700) | mkdir(tp("snd/hiss"), 0700);
	char path[64];
	short pcm[800];
	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof path, "snd/%s/%d.wav", i % 2 ? "hiss" : "hum", i / 2);
		for (int k = 0; k < 800; k++)
			pcm[k] = (short)(i % 2 ? (k * 7919 % 8000) - 4000 : (k % 40 < 20 ? 3000 : -3000));
		SF_INFO info = { .samplerate = 8000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16 };
		SNDFILE *f = sf_open(tp(path), SFM_WRITE, &info);
		rc |= !f || sf_writef_short(f, pcm, 800) != 800;
		if (f)
			sf_close(f);
	}
	return rc;
}

static int make_fixtures(void)
{
	int rc = 0;
	rc |= mkdir(tp("fm"), 0700) | mkdir(tp("idx"), 0700) | mkdir(tp("rec"), 0700);
	rc |= write_idx(tp("fm/train-images-idx3-ubyte.gz"), 20, 28, 28, 10, 1);
	rc |= write_idx(tp("fm/train-labels-idx1-ubyte.gz"), 20, 0, 0, 10, 1);
	rc |= write_idx(tp("fm/t10k-images-idx3-ubyte.gz"), 10, 28, 28, 10, 1);
	rc |= write_idx(tp("fm/t10k-labels-idx1-ubyte.gz"), 10, 0, 0, 10, 1);
	rc |= write_idx(tp("idx/tri"), 6, 2, 3, 2, 0);
	rc |= write_idx(tp("idx/trl"), 6, 0, 0, 2, 0);
	rc |= write_idx(tp("idx/tei"), 4, 2, 3, 2, 0);
	rc |= write_idx(tp("idx/tel"), 4, 0, 0, 2, 0);
	rc |= write_text(tp("t.csv"), "1,2,a\n3,4,b\n5,6,a\n7,8,b\n9,10,a\n11,12,b\n13,14,a\n15,16,b\n"
	                              "17,18,a\n19,20,b\n");
	char text[2048] = "";
	for (int i = 0; i < 40; i++)
		strcat(text, "the quick brown fox jumps. ");
	rc |= write_text(tp("a.txt"), text);
	rc |= write_text(tp("rec/cats.txt"), "a cat\n%\nanother cat\n%\nthe third cat\n%\ncat four\n");
	rc |= write_text(tp("rec/dogs.txt"), "a dog\n%\nanother dog\n%\nthe third dog\n%\ndog four\n");
	rc |= write_text(tp("cap.jsonl"), "{\"image\": 0, \"caption\": \"a boot\"}\n"
	                                  "{\"image\": 1, \"caption\": \"a shirt\"}\n"
	                                  "{\"image\": 2, \"caption\": \"a bag\"}\n");
	rc |= make_image_fixtures();
	rc |= make_audio_fixtures();
	return rc;
}

/* Each format's keys for its fixture, as the JSON members of "dataset" (%s = the temp dir). */
typedef struct Fixture {
	const char *format;
	const char *json;
	int train_n;            /* training samples after loading (0: a byte stream) */
} Fixture;

static const Fixture fixtures[] = {
	{ "fashion-mnist", "\"name\": \"fashion-mnist\", \"dir\": \"%s/fm\"", 20 },
	{ "idx", "\"format\": \"idx\", \"train_images\": \"%s/idx/tri\", \"train_labels\": \"%s/idx/trl\", "
	         "\"test_images\": \"%s/idx/tei\", \"test_labels\": \"%s/idx/tel\"", 6 },
	{ "csv", "\"format\": \"csv\", \"train\": \"%s/t.csv\", \"test_fraction\": 0.2", 8 },
	{ "text", "\"format\": \"text\", \"files\": [\"%s/a.txt\"]", 0 },
	{ "text_records", "\"format\": \"text_records\", \"dir\": \"%s/rec\", \"record_bytes\": 16, "
	                  "\"test_fraction\": 0.25", 6 },
	{ "captions", "\"format\": \"captions\", \"file\": \"%s/cap.jsonl\", \"dir\": \"%s/fm\"", 3 },
	/* 2 classes x 3 PNGs, one per class held out */
	{ "image_folder", "\"format\": \"image_folder\", \"train\": \"%s/img\", \"image_size\": 8, "
	                  "\"test_fraction\": 0.34", 4 },
	{ "cifar10", "\"format\": \"cifar10\", \"dir\": \"%s/c10\"", 10 },
	{ "cifar100", "\"format\": \"cifar100\", \"dir\": \"%s/c100\", \"coarse_labels\": true", 8 },
	{ "stl10", "\"format\": \"stl10\", \"dir\": \"%s/stl\", \"unlabeled_images\": 2", 6 },
	{ "audio_folder", "\"format\": \"audio_folder\", \"train\": \"%s/snd\", \"sample_rate\": 8000, "
	                  "\"clip_seconds\": 0.1, \"n_mels\": 16, \"test_fraction\": 0.34", 4 },
};

static const Fixture *fixture_of(const char *name)
{
	for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
		if (strcmp(fixtures[i].format, name) == 0)
			return &fixtures[i];
	return NULL;
}

/* The fixture's "dataset" object with the temp dir filled in. */
static cJSON *fixture_json(const Fixture *fx)
{
	char body[2048], text[4096];
	const char *d = tmpdir;
	snprintf(body, sizeof body, fx->json, d, d, d, d);
	snprintf(text, sizeof text, "{%s}", body);
	return cJSON_Parse(text);
}

/* ---------------------------------------------------------------------------------------------- */
/* The descriptors themselves                                                                     */

static void check_descriptors(void)
{
	CHECK(dataset_format_count() >= 6, "%d formats", dataset_format_count());
	for (int i = 0; i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		char err[256] = "";
		CHECK(param_table_check(f->keys, f->n_keys, sizeof(DatasetSpec), err, sizeof err) == 0,
		      "%s: %s", f->name, err);
		CHECK(f->load && f->estimate && f->summary && f->summary[0], "%s: load, estimate, summary", f->name);
		CHECK(dataset_modality_name(f->modality) != NULL, "%s: modality %u is not one DATA_* bit",
		      f->name, f->modality);
		CHECK(dataset_format_find(f->name) == f && dataset_format_for(f->kind) == f,
		      "%s: name and kind must each find this format only", f->name);
		if (f->width_key)
			CHECK(dataset_format_key(f, f->width_key) != NULL, "%s: width_key %s is not a key",
			      f->name, f->width_key);
		CHECK(f->n_keys <= DATASET_FORMAT_MAX_KEYS, "%s: %d keys, at most %d", f->name, f->n_keys,
		      DATASET_FORMAT_MAX_KEYS);
		for (int k = 0; k < f->n_keys; k++) {
			char path[96];
			snprintf(path, sizeof path, "dataset.%s", f->keys[k].name);
			const SpecKey *row = spec_key_find(path, f->named ? "named" : f->name);
			CHECK(row && strcmp(row->help, f->keys[k].help) == 0, "%s: key %s is not a row of the spec table",
			      f->name, f->keys[k].name);
		}
		for (int k = 0; k < f->n_keys; k++)
			CHECK(strcmp(f->keys[k].name, "name") && strcmp(f->keys[k].name, "format") &&
			      strncmp(f->keys[k].name, "limit_", 6),
			      "%s: \"%s\" is a key every dataset has", f->name, f->keys[k].name);
	}
	/* One key name means one type in every format: the JSON Schema lists each dataset key once
	 * for all file formats, and docs/spec.md one row per name and type. */
	for (int i = 0; i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		for (int j = i + 1; j < dataset_format_count(); j++) {
			const DatasetFormat *g = dataset_format_at(j);
			for (int k = 0; k < f->n_keys; k++) {
				const ParamDef *o = dataset_format_key(g, f->keys[k].name);
				CHECK(!o || json_kind(o->type) == json_kind(f->keys[k].type),
				      "dataset.%s is a %s in %s but a %s in %s",
				      f->keys[k].name, param_type_name(f->keys[k].type), f->name,
				      param_type_name(o->type), g->name);
			}
		}
	}
	CHECK(dataset_format_find("no-such-format") == NULL, "unknown name");
}

/* ---------------------------------------------------------------------------------------------- */
/* The JSON Schema: a format's keys under its variant, and only there                             */

/* The "then" of the dataset branch that applies to variant. */
static const cJSON *schema_branch(const cJSON *dataset_obj, const DatasetFormat *f)
{
	const cJSON *all = cJSON_GetObjectItem(dataset_obj, "allOf");
	for (const cJSON *r = all ? all->child : NULL; r; r = r->next) {
		const cJSON *cond = cJSON_GetObjectItem(r, "if"), *then = cJSON_GetObjectItem(r, "then");
		if (!cond || !then || !cJSON_GetObjectItem(then, "properties"))
			continue;
		const cJSON *fmt = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cond, "properties"),
		                                                           "format"), "const");
		const cJSON *req = cJSON_GetObjectItem(cond, "required");
		int named = req && req->child && cJSON_IsString(req->child) &&
		            strcmp(req->child->valuestring, "name") == 0;
		if (f->named ? named : (cJSON_IsString(fmt) && strcmp(fmt->valuestring, f->name) == 0))
			return then;
	}
	return NULL;
}

static int has_key(const DatasetFormat *f, const char *name)
{
	return dataset_format_key(f, name) != NULL;
}

static void check_schema(void)
{
	char *text = jobspec_schema_json();
	cJSON *s = text ? cJSON_Parse(text) : NULL;
	free(text);
	CHECK(s != NULL, "schema parses");
	const cJSON *any = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "properties"),
	                                                           "dataset"), "anyOf");
	const cJSON *obj = NULL;
	for (const cJSON *a = any ? any->child : NULL; a; a = a->next)
		if (cJSON_GetObjectItem(a, "allOf"))
			obj = a;
	CHECK(obj != NULL, "the dataset object's schema");
	for (int i = 0; obj && i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		const cJSON *then = schema_branch(obj, f);
		CHECK(then != NULL, "%s: no branch of its own in the schema", f->name);
		if (!then)
			continue;
		const cJSON *props = cJSON_GetObjectItem(then, "properties");
		for (int k = 0; k < f->n_keys; k++) {
			const cJSON *p = cJSON_GetObjectItem(props, f->keys[k].name);
			CHECK(p && !cJSON_IsFalse(p), "%s: key %s missing or forbidden in its branch", f->name,
			      f->keys[k].name);
			const cJSON *req = cJSON_GetObjectItem(then, "required");
			int listed = 0;
			for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
				listed |= strcmp(r->valuestring, f->keys[k].name) == 0;
			CHECK(listed == !!(f->keys[k].flags & PARAM_REQUIRED), "%s: key %s required %d in schema",
			      f->name, f->keys[k].name, listed);
		}
		/* every other format's key that this format does not have is refused here */
		for (int j = 0; j < dataset_format_count(); j++) {
			const DatasetFormat *g = dataset_format_at(j);
			for (int k = 0; k < g->n_keys; k++) {
				if (has_key(f, g->keys[k].name) || (f->named && g->named))
					continue;
				const cJSON *p = cJSON_GetObjectItem(props, g->keys[k].name);
				CHECK(cJSON_IsFalse(p), "%s: key %s of %s is not refused in its branch", f->name,
				      g->keys[k].name, g->name);
			}
		}
	}
	cJSON_Delete(s);
}

/* ---------------------------------------------------------------------------------------------- */
/* The catalogue                                                                                  */

static void check_catalogue(void)
{
	char *text = jobspec_catalog_json();
	cJSON *c = text ? cJSON_Parse(text) : NULL;
	free(text);
	CHECK(c != NULL, "catalogue parses");
	const cJSON *fs = cJSON_GetObjectItem(c, "formats");
	CHECK(cJSON_GetArraySize(fs) == dataset_format_count(), "catalogue lists %d formats",
	      cJSON_GetArraySize(fs));
	for (int i = 0; i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		const cJSON *e = cJSON_GetArrayItem(fs, i);
		const cJSON *n = cJSON_GetObjectItem(e, "name"), *m = cJSON_GetObjectItem(e, "modality");
		CHECK(cJSON_IsString(n) && strcmp(n->valuestring, f->name) == 0, "formats[%d] name", i);
		CHECK(cJSON_IsString(m) && strcmp(m->valuestring, dataset_modality_name(f->modality)) == 0,
		      "%s: modality", f->name);
		CHECK(cJSON_IsBool(cJSON_GetObjectItem(e, "labelled")) &&
		      cJSON_IsTrue(cJSON_GetObjectItem(e, "labelled")) == f->labelled, "%s: labelled", f->name);
		CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(e, "keys")) == f->n_keys, "%s: keys", f->name);
	}
	const cJSON *ms = cJSON_GetObjectItem(c, "methods");
	for (const cJSON *m = ms ? ms->child : NULL; m; m = m->next) {
		const MethodInfo *mi = method_catalog_find(cJSON_GetObjectItem(m, "name")->valuestring);
		const cJSON *mf = cJSON_GetObjectItem(m, "formats");
		CHECK(mi && cJSON_IsArray(mf), "method formats");
		for (int i = 0; mi && mf && i < dataset_format_count(); i++) {
			const DatasetFormat *f = dataset_format_at(i);
			int want = (mi->datasets & f->modality) && (!mi->needs_labels || f->labelled), got = 0;
			for (const cJSON *x = mf->child; x; x = x->next)
				got |= strcmp(x->valuestring, f->name) == 0;
			CHECK(got == want, "method %s lists format %s: %d, want %d", mi->name, f->name, got, want);
		}
	}
	cJSON_Delete(c);
}

/* ---------------------------------------------------------------------------------------------- */
/* Loading: through the keys directly, and through a job spec                                     */

/* Fill s from the fixture's JSON through the format's rows (paths stored as given). */
static int spec_from_fixture(const DatasetFormat *f, const cJSON *o, DatasetSpec *s, const char **list)
{
	if (dataset_format_defaults(f, s) < 0)
		return -1;
	for (const cJSON *v = o->child; v; v = v->next) {
		if (!strcmp(v->string, "name") || !strcmp(v->string, "format"))
			continue;
		const ParamDef *d = dataset_format_key(f, v->string);
		if (!d)
			return -1;
		if (d->type == PARAM_PATH_LIST) {
			int n = 0;
			for (const cJSON *e = v->child; e && n < 8; e = e->next)
				list[n++] = e->valuestring;
			memcpy((char *)s + d->offset, &list, sizeof list);
			memcpy((char *)s + d->count_offset, &n, sizeof n);
		} else if (d->type == PARAM_DIR && (d->flags & PARAM_DIR_LISTS)) {
			/* the directory's files, as the spec layer lists them */
			const DatasetFormat *self = f;
			const ParamDef *ld = NULL;
			for (int k = 0; k < self->n_keys; k++)
				if (self->keys[k].type == PARAM_PATH_LIST)
					ld = &self->keys[k];
			if (!ld)
				return -1;
			static char a[512], b[512];
			snprintf(a, sizeof a, "%s/cats.txt", v->valuestring);
			snprintf(b, sizeof b, "%s/dogs.txt", v->valuestring);
			list[0] = a, list[1] = b;
			int n = 2;
			memcpy((char *)s + ld->offset, &list, sizeof list);
			memcpy((char *)s + ld->count_offset, &n, sizeof n);
		} else if (cJSON_IsString(v)) {
			if (param_store(d, s, 0, v->valuestring) < 0)
				return -1;
		} else if (param_store(d, s, v->valuedouble, NULL) < 0) {
			return -1;
		}
	}
	return 0;
}

static void check_loaded(const DatasetFormat *f, const Fixture *fx, const Dataset *ds, const char *how)
{
	CHECK(ds->kind == f->kind, "%s (%s): kind %d", f->name, how, (int)ds->kind);
	if (fx->train_n)
		CHECK(ds->train.n == fx->train_n, "%s (%s): %d training samples, want %d", f->name, how,
		      ds->train.n, fx->train_n);
	else
		CHECK(ds->text_train_len > 0, "%s (%s): no training bytes", f->name, how);
	CHECK(!f->labelled || ds->num_classes >= 2, "%s (%s): labelled, %d classes", f->name, how,
	      ds->num_classes);
	if (f->modality == DATA_CAPTIONS)
		CHECK(ds->captions && ds->n_captions == ds->train.n, "%s (%s): captions", f->name, how);
}

static void check_loading(void)
{
	for (int i = 0; i < dataset_format_count(); i++) {
		const DatasetFormat *f = dataset_format_at(i);
		const Fixture *fx = fixture_of(f->name);
		CHECK(fx != NULL, "format %s has no fixture in this test; add one", f->name);
		if (!fx)
			continue;
		cJSON *o = fixture_json(fx);
		CHECK(o != NULL, "%s: fixture JSON", f->name);
		if (!o)
			continue;

		/* directly through the descriptor's keys */
		DatasetSpec s;
		const char *list[8];
		char err[512] = "";
		Dataset *ds = NULL;
		CHECK(spec_from_fixture(f, o, &s, list) == 0, "%s: fixture keys are not the format's", f->name);
		int rc = dataset_load(&s, &ds, err, sizeof err);
		CHECK(rc == 0, "%s: load: %s", f->name, err);
		if (rc == 0) {
			check_loaded(f, fx, ds, "keys");
			DatasetShape sh;
			f->estimate(&s, 32, &sh);
			if (sh.known && (f->modality == DATA_IMAGES || f->modality == DATA_AUDIO))
				CHECK(sh.c == ds->c && sh.h == ds->h && sh.w == ds->w, "%s: estimate shape %dx%dx%d, "
				      "loaded %dx%dx%d", f->name, sh.c, sh.h, sh.w, ds->c, ds->h, ds->w);
		}
		dataset_free(ds);

		/* through a job spec: the method must be one that takes the format */
		const MethodInfo *m = NULL;   /* a pretext method if one takes it, else "none" */
		for (int pass = 0; pass < 2 && !m; pass++)
			for (int k = 0; k < method_catalog_count() && !m; k++) {
				const MethodInfo *c = method_catalog_at(k);
				if ((pass || c->create) && (c->datasets & f->modality) &&
				    (!c->needs_labels || f->labelled))
					m = c;
			}
		CHECK(m != NULL, "%s: no method takes it", f->name);
		if (!m) {
			cJSON_Delete(o);
			continue;
		}
		cJSON *job = cJSON_CreateObject();
		cJSON_AddStringToObject(job, "method", m->name);
		cJSON_AddItemToObject(job, "dataset", o);
		cJSON *evs = cJSON_AddArrayToObject(job, "evaluations");
		if (!m->create) {   /* "none" needs an evaluation, and one that uses labels */
			cJSON *ev = cJSON_CreateObject();
			cJSON_AddStringToObject(ev, "protocol", "knn");
			cJSON_AddItemToArray(evs, ev);
		}
		char *text = cJSON_PrintUnformatted(job);
		cJSON_Delete(job);
		JobSpecOptions opts = { .check_files = 1 };
		JobSpec *js = NULL;
		SpecError e = {0};
		rc = jobspec_parse(text, strlen(text), &opts, &js, &e);
		CHECK(rc == 0, "%s: spec %s refused: %s", f->name, text, e.message);
		if (rc == 0) {
			CHECK(js->dataset.kind == f->kind, "%s: spec kind", f->name);
			rc = dataset_load(&js->dataset, &ds, err, sizeof err);
			CHECK(rc == 0, "%s: load from spec: %s", f->name, err);
			if (rc == 0)
				check_loaded(f, fx, ds, "spec");
			dataset_free(ds);
			/* the resolved spec parses back to the same dataset */
			char *resolved = jobspec_to_json(js);
			JobSpec *back = NULL;
			rc = resolved ? jobspec_parse(resolved, strlen(resolved), &opts, &back, &e) : -1;
			CHECK(rc == 0, "%s: resolved spec %s refused: %s", f->name, resolved ? resolved : "", e.message);
			if (rc == 0)
				CHECK(back->dataset.kind == f->kind && back->dataset.n_text_files == js->dataset.n_text_files &&
				      back->dataset.test_fraction == js->dataset.test_fraction,
				      "%s: resolved spec differs", f->name);
			jobspec_free(back);
			free(resolved);
		}
		jobspec_free(js);
		free(text);
	}
}

/* A format's cross-field rules are the spec's: both of two conflicting keys is a 400 naming one. */
static void check_conflicts(void)
{
	char text[1024];
	snprintf(text, sizeof text,
	         "{\"method\": \"none\", \"dataset\": {\"format\": \"text_records\", \"dir\": \"%s/rec\", "
	         "\"files\": [\"%s/a.txt\"]}, \"evaluations\": [{\"protocol\": \"knn\"}]}", tmpdir, tmpdir);
	JobSpecOptions opts = { .check_files = 1 };
	JobSpec *js = NULL;
	SpecError e = {0};
	int rc = jobspec_parse(text, strlen(text), &opts, &js, &e);
	CHECK(rc < 0 && strcmp(e.field, "dataset.dir") == 0 && strstr(e.message, "not both"),
	      "files and dir: rc %d field %s: %s", rc, e.field, e.message);
	jobspec_free(js);
	snprintf(text, sizeof text,
	         "{\"method\": \"none\", \"dataset\": {\"format\": \"text_records\"}, "
	         "\"evaluations\": [{\"protocol\": \"knn\"}]}");
	js = NULL;
	rc = jobspec_parse(text, strlen(text), &opts, &js, &e);
	CHECK(rc < 0 && strcmp(e.field, "dataset.files") == 0 && strcmp(e.code, "missing_field") == 0,
	      "neither files nor dir: rc %d field %s code %s: %s", rc, e.field, e.code, e.message);
	jobspec_free(js);
}

static int parse_text(const char *text, JobSpec **js, SpecError *e)
{
	JobSpecOptions opts = { .check_files = 1 };
	*js = NULL;
	memset(e, 0, sizeof *e);
	return jobspec_parse(text, strlen(text), &opts, js, e);
}

/* An image folder without class subfolders is unlabelled: pretraining takes it, an evaluation
 * that needs labels is a 400 naming that evaluation; neither train nor manifest names train. */
static void check_image_labels(void)
{
	char text[1024];
	JobSpec *js;
	SpecError e;
	snprintf(text, sizeof text, "{\"method\": \"simclr\", \"dataset\": {\"format\": \"image_folder\", "
	         "\"train\": \"%s/flat\", \"image_size\": 8, \"test_fraction\": 0}, \"evaluations\": []}", tmpdir);
	int rc = parse_text(text, &js, &e);
	CHECK(rc == 0, "unlabelled folder, pretraining only: %s: %s", e.field, e.message);
	if (rc == 0) {
		Dataset *ds = NULL;
		char err[512] = "";
		rc = dataset_load(&js->dataset, &ds, err, sizeof err);
		CHECK(rc == 0 && ds->num_classes == 0 && ds->train.n == 3 && ds->train.y[0] == -1 && ds->c == 3,
		      "unlabelled folder loads without labels: rc %d %s", rc, err);
		dataset_free(ds);
	}
	jobspec_free(js);

	snprintf(text, sizeof text, "{\"method\": \"simclr\", \"dataset\": {\"format\": \"image_folder\", "
	         "\"train\": \"%s/flat\"}, \"evaluations\": [{\"protocol\": \"knn\"}]}", tmpdir);
	rc = parse_text(text, &js, &e);
	CHECK(rc < 0 && e.http_status == 400 && strstr(e.field, "evaluations") && strstr(e.message, "unlabelled"),
	      "knn on an unlabelled folder: rc %d status %d field %s: %s", rc, e.http_status, e.field, e.message);
	jobspec_free(js);

	snprintf(text, sizeof text, "{\"method\": \"simclr\", \"dataset\": {\"format\": \"image_folder\", "
	         "\"train\": \"%s/img\"}, \"evaluations\": [{\"protocol\": \"knn\"}]}", tmpdir);
	rc = parse_text(text, &js, &e);
	CHECK(rc == 0, "knn on a labelled folder: %s: %s", e.field, e.message);
	jobspec_free(js);

	rc = parse_text("{\"method\": \"simclr\", \"dataset\": {\"format\": \"image_folder\"}}", &js, &e);
	CHECK(rc < 0 && strcmp(e.field, "dataset.train") == 0 && strcmp(e.code, "missing_field") == 0,
	      "no train, no manifest: rc %d field %s code %s: %s", rc, e.field, e.code, e.message);
	jobspec_free(js);
}

static void cleanup(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	CHECK(make_fixtures() == 0, "writing the fixtures under %s", tmpdir);
	check_descriptors();
	check_schema();
	check_catalogue();
	check_loading();
	check_conflicts();
	check_image_labels();
	cleanup();
	return check_exit("format_registry");
}
