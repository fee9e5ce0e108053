/* registry.c - the list of encoders (see encoder.h); EncoderKind is the index in it.
 *
 * Each encoder is one file in engine/encoders/ exporting one EncoderDesc: its name, the data it
 * fits, its keys (ParamDef rows bound to EncoderConfig), its checks, code and estimate. The job
 * spec's model.* rows, the JSON Schema, docs/spec.md, `ssld methods`, GET /v1/methods (which
 * encoders fit which data) and the memory estimate are all derived from the descriptors.
 *
 * Adding an encoder (say resnet18) is:
 *   1. engine/encoders/resnet.c with `const EncoderDesc encoder_desc_resnet18` (copy cnn.c: a key
 *      table with PARAM_AT / PARAM_LIST_AT rows on EncoderConfig fields - add a field to
 *      EncoderConfig in model.h if no existing one fits -, check, build, forward, destroy,
 *      estimate, and .fits = the DATA_* it takes);
 *   2. one extern line and one entry at the end of registry[] below, and the file in
 *      engine/meson.build;
 *   3. `build/daemon/ssld schema --markdown > docs/spec.md`.
 *   4. optionally .export_onnx (cnn.c's with the helpers of export_onnx.h) and a case in
 *      tests/model_layers/test_export_onnx.c, for `ssld export --format onnx`.
 * Methods that work with any encoder of their data pick it up; a method restricted to a list
 * (PretextMethod.encoders) names it there if it should. tests/model_layers/test_encoder_registry
 * checks the new descriptor (its keys, the schema, a default build and a forward pass).
 */
#include "encoder.h"

#include <errno.h>
#include <string.h>

extern const EncoderDesc encoder_desc_mlp;
extern const EncoderDesc encoder_desc_cnn;
extern const EncoderDesc encoder_desc_vit;
extern const EncoderDesc encoder_desc_transformer;
extern const EncoderDesc encoder_desc_resnet18;
extern const EncoderDesc encoder_desc_resnet34;
extern const EncoderDesc encoder_desc_resnet50;

/* Indexed by EncoderKind. */
static const EncoderDesc *const registry[] = {
	[ENC_MLP] = &encoder_desc_mlp,
	[ENC_CNN] = &encoder_desc_cnn,
	[ENC_VIT] = &encoder_desc_vit,
	[ENC_TRANSFORMER] = &encoder_desc_transformer,
	[ENC_RESNET18] = &encoder_desc_resnet18,
	[ENC_RESNET34] = &encoder_desc_resnet34,
	[ENC_RESNET50] = &encoder_desc_resnet50,
};

const ParamDef encoder_common_keys[] = {
	{ "dropout", PARAM_NUMBER, .def = 0, .min = 0, .max = 0.9,
	  .help = "dropout probability, 0..0.9 (used by the transformer blocks of vit and transformer)",
	  PARAM_AT(EncoderConfig, dropout) },
};
const int encoder_common_key_count = (int)(sizeof encoder_common_keys / sizeof encoder_common_keys[0]);

int encoder_count(void)
{
	return (int)(sizeof registry / sizeof registry[0]);
}

const EncoderDesc *encoder_desc(EncoderKind kind)
{
	return (int)kind >= 0 && (int)kind < encoder_count() ? registry[kind] : NULL;
}

const char *encoder_kind_name(EncoderKind kind)
{
	const EncoderDesc *d = encoder_desc(kind);
	return d ? d->name : "unknown";
}

int encoder_kind_parse(const char *name, EncoderKind *out)
{
	for (int i = 0; name && i < encoder_count(); i++) {
		if (strcmp(name, registry[i]->name) == 0) {
			*out = (EncoderKind)i;
			return 0;
		}
	}
	return -EINVAL;
}

unsigned encoder_fits(EncoderKind kind)
{
	const EncoderDesc *d = encoder_desc(kind);
	if (!d)
		return 0;
	return d->fits | (d->fits & DATA_IMAGES ? DATA_CAPTIONS | DATA_AUDIO : 0u);
}

int encoder_fits_data(EncoderKind kind, unsigned data)
{
	return (encoder_fits(kind) & data) != 0;
}

int encoder_natural_for(unsigned data)
{
	if (data == DATA_CAPTIONS || data == DATA_AUDIO)
		data = DATA_IMAGES;
	for (int i = 0; i < encoder_count(); i++)
		if (registry[i]->natural_for & data)
			return i;
	return -1;
}
