/* test_encoders.c - walks the encoder registry (engine/encoders/registry.c) and checks that each
 * encoder is fully wired by its descriptor alone: its key table is consistent, its keys are model.*
 * rows of the spec and of the JSON Schema under its variant only, its default config builds and
 * runs forward on a sample of a modality it fits, its estimate counts the parameters it builds, and
 * the catalogue offers a method exactly the encoders the server accepts for that method's data.
 * A new encoder is covered here without editing this file.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/encoders/encoder.h"
#include "check.h"
#include "jobspec.h"
#include "method_catalog.h"
#include "spec_schema.h"
#include "spec_table.h"


static const ParamDef *own_key(const EncoderDesc *d, const char *name)
{
	for (int k = 0; k < d->n_keys; k++)
		if (strcmp(d->keys[k].name, name) == 0)
			return &d->keys[k];
	return NULL;
}

static int common_key(const char *name)
{
	for (int k = 0; k < encoder_common_key_count; k++)
		if (strcmp(encoder_common_keys[k].name, name) == 0)
			return 1;
	return 0;
}

/* The schema's "then" properties for model.encoder == name, or NULL. */
static const cJSON *schema_variant(const cJSON *schema, const char *name)
{
	const cJSON *model = cJSON_GetObjectItem(cJSON_GetObjectItem(schema, "properties"), "model");
	const cJSON *rule;
	cJSON_ArrayForEach(rule, cJSON_GetObjectItem(model, "allOf")) {
		const cJSON *enc = cJSON_GetObjectItem(
			cJSON_GetObjectItem(cJSON_GetObjectItem(rule, "if"), "properties"), "encoder");
		const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(enc, "const"));
		if (c && strcmp(c, name) == 0)
			return cJSON_GetObjectItem(cJSON_GetObjectItem(rule, "then"), "properties");
	}
	return NULL;
}

static void test_keys(const cJSON *schema)
{
	char err[256];
	CHECK(param_table_check(encoder_common_keys, encoder_common_key_count, sizeof(EncoderConfig),
	                        err, sizeof err) == 0, "common keys: %s", err);
	for (int e = 0; e < encoder_count(); e++) {
		const EncoderDesc *d = encoder_desc((EncoderKind)e);
		CHECK(d && d->name && d->summary && d->fits && d->build && d->forward && d->estimate,
		      "encoder %d: descriptor incomplete", e);
		if (!d)
			continue;
		EncoderKind back;
		CHECK(encoder_kind_parse(d->name, &back) == 0 && back == (EncoderKind)e, "%s: name", d->name);
		CHECK(param_table_check(d->keys, d->n_keys, sizeof(EncoderConfig), err, sizeof err) == 0,
		      "%s: key table: %s", d->name, err);
		const cJSON *then = schema_variant(schema, d->name);
		CHECK(then != NULL, "%s: the schema has no rule for encoder %s", d->name, d->name);
		for (int k = 0; k < d->n_keys; k++) {
			const ParamDef *p = &d->keys[k];
			char path[96];
			snprintf(path, sizeof path, "model.%s", p->name);
			const SpecKey *r = spec_key_find(path, d->name);
			CHECK(r && r->off == offsetof(JobSpec, encoder) + p->offset && spec_key_fits(r, d->name),
			      "%s: %s is not its spec row", d->name, path);
			const cJSON *s = then ? cJSON_GetObjectItem(then, p->name) : NULL;
			CHECK(s && cJSON_IsObject(s), "%s: schema lacks %s under its variant", d->name, path);
			CHECK(!common_key(p->name), "%s: %s is both its own and common", d->name, p->name);
		}
		/* every other encoder's key is refused for this one (spec rows and schema) */
		for (int o = 0; o < encoder_count(); o++) {
			const EncoderDesc *od = encoder_desc((EncoderKind)o);
			for (int k = 0; o != e && k < od->n_keys; k++) {
				const char *name = od->keys[k].name;
				if (own_key(d, name))
					continue;
				char path[96];
				snprintf(path, sizeof path, "model.%s", name);
				CHECK(spec_key_find(path, d->name) == NULL, "%s: spec accepts %s's key %s", d->name,
				      od->name, path);
				const cJSON *s = then ? cJSON_GetObjectItem(then, name) : NULL;
				CHECK(s && cJSON_IsFalse(s), "%s: schema does not refuse %s's key %s", d->name,
				      od->name, name);
			}
		}
	}
	/* every model.* row belongs to some encoder (or to all) */
	for (int i = 0; i < spec_key_count(); i++) {
		const SpecKey *r = spec_key_at(i);
		const char *leaf = spec_key_leaf(r, "model");
		if (!leaf || strcmp(leaf, "encoder") == 0)
			continue;
		int owned = common_key(leaf);
		for (int e = 0; e < encoder_count(); e++)
			owned |= own_key(encoder_desc((EncoderKind)e), leaf) != NULL &&
			         spec_key_fits(r, encoder_kind_name((EncoderKind)e));
		CHECK(owned, "spec row %s (%s) belongs to no encoder", r->path, r->variant ? r->variant : "any");
	}
}

/* One sample shape of a modality the encoder fits. */
static void sample_for(const EncoderDesc *d, int *c, int *h, int *w)
{
	if (d->fits & DATA_IMAGES)
		*c = 1, *h = 28, *w = 28;
	else if (d->fits & DATA_VECTORS)
		*c = 1, *h = 1, *w = 16;
	else
		*c = 1, *h = 1, *w = 32;   /* text: 32 byte ids */
}

static void test_build_forward(void)
{
	char err[256];
	Rng r;
	rng_seed(&r, 5);
	Ctx *ctx = ctx_new(1);
	for (int e = 0; e < encoder_count(); e++) {
		const EncoderDesc *d = encoder_desc((EncoderKind)e);
		EncoderConfig c;
		encoder_config_default(&c, (EncoderKind)e);
		CHECK(c.kind == (EncoderKind)e, "%s: default kind", d->name);
		for (int k = 0; k < d->n_keys; k++) {   /* the defaults are the key table's */
			const ParamDef *p = &d->keys[k];
			if (p->type == PARAM_INT_LIST) {
				const int *v = NULL;
				int n = param_load_list(p, &c, &v);
				CHECK(n == p->def_n && (n == 0 || memcmp(v, p->def_list, (size_t)n * sizeof *v) == 0),
				      "%s: default of %s", d->name, p->name);
			} else {
				double want = p->type == PARAM_ENUM ? param_choice_index(p->choices, p->def_str) : p->def;
				CHECK(param_load(p, &c) == (double)(float)want, "%s: default of %s is %g, not %g",
				      d->name, p->name, param_load(p, &c), want);
			}
		}
		int in_c, in_h, in_w;
		sample_for(d, &in_c, &in_h, &in_w);
		CHECK(encoder_config_check(&c, in_c, in_h, in_w, err, sizeof err) == 0, "%s: check: %s",
		      d->name, err);
		/* the estimate counts what is built, also off the defaults (no BN, CLS token, projection) */
		for (int v = 0; v < 2; v++) {
			EncoderConfig alt = c;
			alt.batchnorm = v;
			alt.pool = 1 - v;
			if (!d->own_out_dim)
				alt.out_dim = 8 * v;
			ParamSet *ps = paramset_new();
			Encoder *enc = NULL;
			int64_t params = 0, acts = 0;
			if (encoder_new(&alt, ps, "encoder", in_c, in_h, in_w, &r, &enc, err, sizeof err) == 0) {
				encoder_estimate(&alt, in_c, in_h, in_w, &params, &acts);
				CHECK(params == (int64_t)paramset_numel(ps, 1), "%s (variant %d): estimate %lld "
				      "parameters, built %zu", d->name, v, (long long)params, paramset_numel(ps, 1));
			} else {
				CHECK(0, "%s (variant %d) does not build: %s", d->name, v, err);
			}
			encoder_free(enc);
			paramset_free(ps);
		}
		ParamSet *ps = paramset_new();
		Encoder *enc = NULL;
		int rc = encoder_new(&c, ps, "encoder", in_c, in_h, in_w, &r, &enc, err, sizeof err);
		CHECK(rc == 0 && enc, "%s: default config does not build: %s", d->name, err);
		if (rc == 0) {
			int64_t params = 0, acts = 0;
			encoder_estimate(&c, in_c, in_h, in_w, &params, &acts);
			CHECK(params == (int64_t)paramset_numel(ps, 1) && acts > 0,
			      "%s: estimate %lld parameters, built %zu", d->name, (long long)params,
			      paramset_numel(ps, 1));
			enum { B = 2 };
			ctx_reset(ctx);
			ctx_set_training(ctx, 0);
			Tensor *x = in_h == 1 ? ctx_tensor(ctx, 2, (int[]){ B, in_w })
			                      : ctx_tensor(ctx, 4, (int[]){ B, in_c, in_h, in_w });
			for (size_t i = 0; i < x->size; i++)
				x->data[i] = (d->fits & (DATA_IMAGES | DATA_VECTORS)) ? rng_uniform(&r)
				                                                     : (float)rng_below(&r, 256);
			Tensor *f = encoder_forward(ctx, enc, x);
			int finite = f != NULL;
			for (size_t i = 0; f && i < f->size; i++)
				finite &= isfinite(f->data[i]) != 0;
			CHECK(f && f->ndim == 2 && f->shape[0] == B && f->shape[1] == encoder_out_dim(enc) && finite,
			      "%s: forward gives no finite (B, out_dim) features", d->name);
		}
		encoder_free(enc);
		paramset_free(ps);
	}
	ctx_free(ctx);
}

/* For every method and each of its dataset modalities, the server refuses exactly the encoders the
 * catalogue does not offer or that do not fit that modality, on model.encoder with the message the
 * descriptor's fits implies. */
static void test_catalogue_agrees(void)
{
	static const struct { unsigned data; const char *json; } sets[] = {
		{ DATA_IMAGES, "\"fashion-mnist\"" },
		{ DATA_VECTORS, "{\"format\": \"csv\", \"train\": \"/nonexistent/rows.csv\"}" },
		{ DATA_TEXT, "{\"format\": \"text\", \"files\": [\"/nonexistent/a.txt\"]}" },
		{ DATA_CAPTIONS, "{\"format\": \"captions\"}" },
		{ DATA_AUDIO, "{\"format\": \"audio_folder\", \"train\": \"/nonexistent/words\"}" },
	};
	char *cat = jobspec_catalog_json();
	cJSON *root = cat ? cJSON_Parse(cat) : NULL;
	CHECK(root != NULL, "catalogue json");
	/* the published encoders and the data each fits */
	const cJSON *encs = cJSON_GetObjectItem(root, "encoders");
	CHECK(cJSON_GetArraySize(encs) == encoder_count(), "GET /v1/methods lists %d encoders",
	      cJSON_GetArraySize(encs));
	for (int e = 0; e < encoder_count() && encs; e++) {
		const cJSON *o = cJSON_GetArrayItem(encs, e);
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(o, "name"));
		CHECK(name && strcmp(name, encoder_kind_name((EncoderKind)e)) == 0, "encoder %d name", e);
		unsigned fits = 0;
		const cJSON *f;
		cJSON_ArrayForEach(f, cJSON_GetObjectItem(o, "fits")) {
			const char *s = cJSON_GetStringValue(f);
			fits |= !s ? 0u : !strcmp(s, "images") ? DATA_IMAGES : !strcmp(s, "vectors") ? DATA_VECTORS
			      : !strcmp(s, "text") ? DATA_TEXT : 0x100u;
		}
		CHECK(fits == encoder_desc((EncoderKind)e)->fits, "%s: published fits", name ? name : "?");
	}
	const JobSpecOptions opts = { .check_files = 0 };
	for (int i = 0; i < method_catalog_count(); i++) {
		const MethodInfo *m = method_catalog_at(i);
		const cJSON *mj = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "methods"), i);
		unsigned listed = 0;
		const cJSON *n;
		cJSON_ArrayForEach(n, cJSON_GetObjectItem(mj, "encoders")) {
			EncoderKind k;
			if (cJSON_GetStringValue(n) && encoder_kind_parse(cJSON_GetStringValue(n), &k) == 0)
				listed |= ENC_BIT(k);
		}
		CHECK(listed == method_catalog_encoders(m), "%s: catalogue encoders", m->name);
		unsigned accepted_somewhere = 0;
		for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
			if (!(m->datasets & sets[s].data))
				continue;
			for (int e = 0; e < encoder_count(); e++) {
				const char *kn = encoder_kind_name((EncoderKind)e);
				char json[512];
				snprintf(json, sizeof json, "{\"method\": \"%s\", \"dataset\": %s, \"model\": "
				         "{\"encoder\": \"%s\"}, \"evaluations\": [{\"protocol\": \"knn\"}]}",
				         m->name, sets[s].json, kn);
				SpecErrors errs;
				JobSpec *js = NULL;
				jobspec_parse_all(json, strlen(json), &opts, &js, &errs);
				jobspec_free(js);
				const SpecError *bad = NULL;
				for (int k = 0; k < errs.n; k++)
					if (strcmp(errs.e[k].field, "model.encoder") == 0)
						bad = &errs.e[k];
				int want = (listed & ENC_BIT(e)) && encoder_fits_data((EncoderKind)e, sets[s].data);
				CHECK(want == !bad, "%s on %s with %s: catalogue says %s, server says %s", m->name,
				      sets[s].json, kn, want ? "yes" : "no", bad ? bad->message : "yes");
				if (bad && (listed & ENC_BIT(e)))
					CHECK(strstr(bad->message, "does not fit") != NULL, "%s: %s", kn, bad->message);
				if (!bad)
					accepted_somewhere |= ENC_BIT(e);
			}
		}
		CHECK(accepted_somewhere == listed, "%s: every listed encoder fits one of its datasets",
		      m->name);
	}
	cJSON_Delete(root);
	free(cat);
}

int main(void)
{
	char *text = jobspec_schema_json();
	cJSON *schema = text ? cJSON_Parse(text) : NULL;
	CHECK(schema != NULL, "schema parses");
	test_keys(schema);
	test_build_forward();
	test_catalogue_agrees();
	cJSON_Delete(schema);
	free(text);
	printf("%d checks, %d failures\n", checks, failures);
	return failures ? 1 : 0;
}
