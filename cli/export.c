/* export.c - `ssld export JOB_DIR|encoder.safetensors --format onnx|torchvision`: a run's encoder
 * as an ONNX model, for ONNX runtimes, or a resnet under torchvision's state-dict names.
 *
 *   ssld export runs/simclr-fmnist --format onnx            # -> runs/simclr-fmnist/encoder.onnx
 *   ssld export enc.safetensors --input-shape 1,28,28 --out enc.onnx
 *
 * It rebuilds the encoder from its config (the file's ssld.encoder_config metadata, else the
 * config.json beside it, as `ssld run` writes both: every key of the encoder registry), loads the
 * weights strictly, and hands it to engine/export_onnx.c, or with --format torchvision (ResNets)
 * to engine/export_torchvision.c:
 *
 *   ssld export runs/resnet --format torchvision   # -> runs/resnet/encoder.torchvision.safetensors
 *
 * The input shape: --input-shape, else config.json's "in_shape" (the run's
 * sample shape), else what the weights fix (mlp: (N,D); cnn: (N,C,H,W) with H and W symbolic
 * under global pooling; vit: the square image of its position embeddings); text is (N,T) token
 * ids with T symbolic; a resnet: (N,C,H,W), C from its conv1, H and W symbolic. It does not train
 * or modify anything in the run. The config reader takes the keys from the encoder registry and
 * the few fields that are no key (strides, vocab, causal) as encoder_config_to_json writes them.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../engine/checkpoint.h"
#include "../engine/encoders/encoder.h"
#include "../engine/export_onnx.h"
#include "../engine/export_torchvision.h"
#include "../engine/model.h"
#include "../engine/params.h"
#include "../engine/rng.h"
#include "../workers/job_files.h"
#include "args.h"
#include "commands.h"

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ssld export: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int int_list(const cJSON *j, const char *key, int *v, int *n)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
	if (!a)
		return 0;
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > MODEL_MAX_LAYERS)
		return -1;
	*n = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, a) {
		if (!cJSON_IsNumber(x))
			return -1;
		v[(*n)++] = x->valueint;
	}
	return 0;
}

/* One key of an encoder's table (encoder.h) from the config object j into c. 0 when absent or
 * stored, -1 with err naming the key when the value does not fit the key's type. Ranges are
 * encoder_new's to check: a method may set a field beyond its key's range (an mlp's out_dim 0). */
static int read_key(const cJSON *j, const ParamDef *d, EncoderConfig *c, char *err, size_t errlen)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, d->name);
	if (!x || cJSON_IsNull(x))
		return 0;
	int ok = 0;
	switch (d->type) {
	case PARAM_NUMBER:
	case PARAM_INTEGER:   /* within what an int holds, so the store converts safely */
		ok = cJSON_IsNumber(x) && fabs(x->valuedouble) <= 1e9 &&
		     param_store(d, c, x->valuedouble, NULL) == 0;
		break;
	case PARAM_BOOLEAN:
		ok = (cJSON_IsBool(x) || cJSON_IsNumber(x)) &&
		     param_store(d, c, cJSON_IsBool(x) ? cJSON_IsTrue(x) : x->valuedouble, NULL) == 0;
		break;
	case PARAM_ENUM: {
		int i = cJSON_IsString(x) ? param_choice_index(d->choices, x->valuestring) : -1;
		ok = i >= 0 && param_store(d, c, i, NULL) == 0;
		break;
	}
	case PARAM_INT_LIST: {
		int v[MODEL_MAX_LAYERS], n = 0;
		ok = int_list(j, d->name, v, &n) == 0 && param_store_list(d, c, v, n) == 0;
		break;
	}
	default:   /* no encoder has text or path keys */
		return 0;
	}
	if (!ok)
		snprintf(err, errlen, "the encoder config's \"%s\" is not a valid %s%s%s", d->name,
		         param_type_name(d->type), d->type == PARAM_ENUM ? ": " : "",
		         d->type == PARAM_ENUM ? d->choices : "");
	return ok ? 0 : -1;
}

/* The object encoder_config_to_json (model.c) writes, back into c: every key of every encoder in
 * the registry (a field may matter to an encoder without being its key: the projection's out_dim
 * of a vit), the kind's own keys last, then the fields that are no key but shape the weights
 * (strides, vocab, causal). */
static int parse_config(const char *text, EncoderConfig *c, char *err, size_t errlen)
{
	cJSON *j = cJSON_Parse(text);
	int rc = -EINVAL;
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
	EncoderKind k;
	if (!cJSON_IsObject(j) || !cJSON_IsString(kind)) {
		snprintf(err, errlen, "the encoder config is not a JSON object with a \"kind\"");
		goto out;
	}
	if (encoder_kind_parse(kind->valuestring, &k) < 0) {
		snprintf(err, errlen, "the encoder config names an unknown encoder \"%s\"", kind->valuestring);
		goto out;
	}
	encoder_config_default(c, k);
	for (int i = 0; i <= encoder_count(); i++) {
		const EncoderDesc *d = encoder_desc(i < encoder_count() ? (EncoderKind)i : k);
		if (i < encoder_count() && d == encoder_desc(k))
			continue;
		for (int r = 0; r < d->n_keys; r++)
			if (read_key(j, &d->keys[r], c, err, errlen) < 0)
				goto out;
	}
	for (int r = 0; r < encoder_common_key_count; r++)
		if (read_key(j, &encoder_common_keys[r], c, err, errlen) < 0)
			goto out;
	if (int_list(j, "strides", c->strides, &c->n_strides) < 0) {
		snprintf(err, errlen, "the encoder config's \"strides\" is not a list of at most %d "
		         "integers", MODEL_MAX_LAYERS);
		goto out;
	}
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "vocab");
	if (cJSON_IsNumber(x))
		c->vocab = x->valueint;
	x = cJSON_GetObjectItemCaseSensitive(j, "causal");
	if (cJSON_IsBool(x) || cJSON_IsNumber(x))
		c->causal = cJSON_IsBool(x) ? cJSON_IsTrue(x) : x->valueint != 0;
	rc = 0;
out:
	cJSON_Delete(j);
	return rc;
}

/* "C,H,W" or "D" -> shape, *ndim 3 or 1. */
static int parse_shape(const char *s, int *shape, int *ndim)
{
	int v[4], n = 0;
	const char *p = s;
	while (n < 4) {
		char *end;
		long x = strtol(p, &end, 10);
		if (end == p || x < 1 || x > 1 << 20)
			return -1;
		v[n++] = (int)x;
		if (*end == 0)
			break;
		if (*end != ',')
			return -1;
		p = end + 1;
	}
	if (n != 1 && n != 3)
		return -1;
	memcpy(shape, v, (size_t)n * sizeof *v);
	*ndim = n;
	return 0;
}

int cli_export_main(int argc, char **argv)
{
	enum { O_FORMAT, O_OUT, O_SHAPE, O_COUNT };
	CliOpt opts[O_COUNT] = { { "--format", "onnx|torchvision", NULL, 0 }, { "--out", "FILE", NULL, 0 },
		                     { "--input-shape", "C,H,W|D", NULL, 0 } };
	const char *pos[1];
	int npos, rc = cli_args_parse("export", argc, argv, opts, O_COUNT, pos, 1, &npos);
	if (rc != CLI_ARGS_OK)
		return rc == CLI_ARGS_HELP ? 0 : 2;
	if (npos != 1) {
		fprintf(stderr, "ssld export: name a job directory or an encoder.safetensors\n");
		cli_command_usage("export", stderr);
		return 2;
	}
	const int tv = opts[O_FORMAT].value && strcmp(opts[O_FORMAT].value, "torchvision") == 0;
	if (opts[O_FORMAT].value && !tv && strcmp(opts[O_FORMAT].value, "onnx") != 0) {
		fprintf(stderr, "ssld export: --format: \"%s\" is not a format ssld exports (onnx, "
		        "torchvision)\n", opts[O_FORMAT].value);
		return 2;
	}
	int shape[3] = { 0 }, ndim = 0;
	if (opts[O_SHAPE].value && parse_shape(opts[O_SHAPE].value, shape, &ndim) < 0) {
		fprintf(stderr, "ssld export: --input-shape: \"%s\" is not C,H,W or D (positive integers)\n",
		        opts[O_SHAPE].value);
		return 2;
	}

	char weights[4096], out[4200], dir[4096], err[1024];
	struct stat st;
	int is_dir = stat(pos[0], &st) == 0 && S_ISDIR(st.st_mode);
	if (is_dir)
		snprintf(weights, sizeof weights, "%s/" JOB_FILE_ENCODER, pos[0]);
	else
		snprintf(weights, sizeof weights, "%s", pos[0]);
	const char *slash = strrchr(weights, '/');
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - weights) : 1, slash ? weights : ".");
	if (opts[O_OUT].value)
		snprintf(out, sizeof out, "%s", opts[O_OUT].value);
	else
		snprintf(out, sizeof out, "%s/%s", dir, tv ? "encoder.torchvision.safetensors"
		                                         : "encoder.onnx");

	Checkpoint *ck = NULL;
	ParamSet *ps = NULL;
	Encoder *e = NULL;
	char *cfg_text = NULL;
	rc = 1;
	if (checkpoint_open(weights, 0, &ck, err, sizeof err) < 0) {
		fail("%s", err);
		goto out;
	}
	const char *meta = checkpoint_meta(ck, "ssld.encoder_config");
	char cpath[4200];
	snprintf(cpath, sizeof cpath, "%s/" JOB_FILE_CONFIG, dir);
	char *beside = cli_read_file(cpath, NULL, err, sizeof err);
	if (meta) {
		cfg_text = strdup(meta);
	} else if (!beside) {
		fail("%s has no ssld.encoder_config metadata and %s", weights, err);
		goto out;
	}
	EncoderConfig c;
	if (parse_config(meta ? cfg_text : beside, &c, err, sizeof err) < 0) {
		fail("%s: %s", weights, err);
		free(beside);
		goto out;
	}
	/* Text: token ids (N,T), T symbolic unless given (at most the context). */
	if (encoder_fits(c.kind) & DATA_TEXT) {
		if (ndim == 3) {
			fail("--input-shape: the %s encoder takes token ids (N,T): give T, not C,H,W",
			     encoder_kind_name(c.kind));
			free(beside);
			goto out;
		}
		ndim = 1;
	}
	/* The sample shape `ssld run` records in config.json: (C,H,W), (1,1,D) for vectors. */
	if (ndim == 0 && beside) {
		cJSON *j = cJSON_Parse(beside);
		int v[MODEL_MAX_LAYERS], n = 0;
		if (int_list(j, "in_shape", v, &n) == 0 && n == 3 && v[0] > 0 && v[1] > 0 && v[2] > 0) {
			int vec = c.kind == ENC_MLP && v[0] == 1 && v[1] == 1;
			ndim = vec ? 1 : 3;
			memcpy(shape, vec ? v + 2 : v, (size_t)ndim * sizeof *v);
		}
		cJSON_Delete(j);
	}
	free(beside);

	if (!tv && !encoder_desc(c.kind)->export_onnx) {
		char have[256] = "";
		for (int i = 0; i < encoder_count(); i++)
			if (encoder_desc((EncoderKind)i)->export_onnx)
				snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", *have ? ", " : "",
				         encoder_kind_name((EncoderKind)i));
		fail("%s: the %s encoder has no ONNX export (%s have one)", weights,
		     encoder_kind_name(c.kind), have);
		goto out;
	}
	/* The sample shape: given, or fixed by the first layer's weights. */
	int in_c = 1, in_h = 1, in_w = 1;
	if (ndim == 0) {
		const Tensor *fc0 = checkpoint_find(ck, "encoder.fc0.weight");
		const Tensor *conv0 = checkpoint_find(ck, "encoder.conv0.weight");
		const Tensor *conv1 = checkpoint_find(ck, "encoder.conv1.weight");   /* resnets */
		const Tensor *proj = checkpoint_find(ck, "encoder.patch_embed.proj.weight");
		const Tensor *pe = checkpoint_find(ck, "encoder.pos_embed");
		/* vit: a square grid of patches, as `ssld run` builds for square images */
		int grid = 0;
		if (c.kind == ENC_VIT && proj && pe && proj->ndim == 4 && pe->ndim == 3) {
			int n = pe->shape[1] - (c.pool == 1);
			while ((grid + 1) * (grid + 1) <= n)
				grid++;
			if (grid * grid != n)
				grid = 0;
		}
		if (c.kind == ENC_MLP && fc0 && fc0->ndim == 2) {
			ndim = 1;
			shape[0] = fc0->shape[1];
		} else if (c.kind == ENC_CNN && conv0 && conv0->ndim == 4 && c.pool_grid <= 1) {
			ndim = 3;
			shape[0] = conv0->shape[1];   /* H, W symbolic: global pooling takes any size */
			in_c = shape[0];
			in_h = in_w = 32;
		} else if (encoder_desc(c.kind)->keys == encoder_desc(ENC_RESNET18)->keys /* a resnet */ &&
		           conv1 &&
		           conv1->ndim == 4) {
			ndim = 3;
			shape[0] = in_c = conv1->shape[1];   /* H, W symbolic: global pooling */
			in_h = in_w = 32;
		} else if (grid > 0) {
			ndim = 3;
			shape[0] = in_c = proj->shape[1];
			shape[1] = shape[2] = in_h = in_w = grid * proj->shape[2];
		} else {
			fail("%s: the input shape of this %s encoder is not fixed by its weights: give "
			     "--input-shape C,H,W", weights, encoder_kind_name(c.kind));
			goto out;
		}
	}
	if (ndim == 1)
		in_w = shape[0] > 0 ? shape[0] : 1;
	else if (shape[1] > 0)
		in_c = shape[0], in_h = shape[1], in_w = shape[2];

	Rng rng;
	rng_seed(&rng, 1);
	ps = paramset_new();
	if (!ps || encoder_new(&c, ps, "encoder", in_c, in_h, in_w, &rng, &e, err, sizeof err) < 0) {
		fail("%s: %s", weights, ps ? err : "out of memory");
		goto out;
	}
	if (checkpoint_load_prefix(weights, ps, "encoder.", "encoder.", 0, NULL, err, sizeof err) < 0) {
		fail("%s", err);
		goto out;
	}
	if (tv) {
		char js[2048];
		if (encoder_config_to_json(&c, js, sizeof js) < 0 ||
		    tv_resnet_save(out, ps, "encoder", js, err, sizeof err) < 0) {
			fail("the %s encoder under torchvision names: %s", encoder_kind_name(c.kind), err);
			goto out;
		}
		printf("%s: %s encoder (%d input channel%s, features %d) under torchvision.models.%s's "
		       "state-dict names\n", out, encoder_kind_name(c.kind), in_c, in_c == 1 ? "" : "s",
		       encoder_out_dim(e), encoder_kind_name(c.kind));
		rc = 0;
		goto out;
	}
	if ((rc = onnx_export_encoder(e, shape, ndim, out, err, sizeof err)) < 0) {
		if (rc == ONNX_EIO)
			fail("%s", err);   /* it names --out */
		else
			fail("%s: %s", weights, err);
		rc = 1;
		goto out;
	}
	if (ndim == 1 && shape[0] == 0)
		printf("%s: %s encoder, input (N,T) token ids as float32 -> features (N,%d), ONNX opset "
		       "%d\n", out, encoder_kind_name(c.kind), encoder_out_dim(e), ONNX_OPSET);
	else if (ndim == 1)
		printf("%s: %s encoder, input (N,%d) -> features (N,%d), ONNX opset %d\n", out,
		       encoder_kind_name(c.kind), shape[0], encoder_out_dim(e), ONNX_OPSET);
	else if (shape[1] > 0)
		printf("%s: %s encoder, input (N,%d,%d,%d) -> features (N,%d), ONNX opset %d\n", out,
		       encoder_kind_name(c.kind), shape[0], shape[1], shape[2], encoder_out_dim(e),
		       ONNX_OPSET);
	else
		printf("%s: %s encoder, input (N,%d,H,W) -> features (N,%d), ONNX opset %d\n", out,
		       encoder_kind_name(c.kind), shape[0], encoder_out_dim(e), ONNX_OPSET);
	rc = 0;
out:
	encoder_free(e);
	paramset_free(ps);
	checkpoint_close(ck);
	free(cfg_text);
	return rc;
}
