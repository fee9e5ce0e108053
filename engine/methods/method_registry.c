/* method_registry.c - the list of pretext methods (see method.h), "none" included.
 *
 * Each method is one file in engine/methods/ exporting one PretextMethod descriptor: its catalogue
 * entry (family, summary, datasets, encoders, views, default augmentation, example file), its
 * parameter table bound to its own config struct, and its code. Adding a method is:
 *   1. engine/methods/<method>.c with the descriptor (copy simclr.c: a config struct,
 *      METHOD_CONFIG_FITS, a ParamDef table with PARAM_AT rows, create/loss/encoder/destroy);
 *   2. one extern line and one entry in registry[] below, and the file in meson.build;
 *   3. examples/<method>-<dataset>.json, named by the descriptor's .example (it is embedded in
 *      the binary and served as the catalogue's example; tests/spec checks it parses).
 * The job spec, `ssld methods`, GET /v1/methods and the runner all read the descriptor; nothing
 * else lists methods.
 */
#include "method.h"

#include <string.h>

extern const PretextMethod method_simclr;
extern const PretextMethod method_autoencoder;
extern const PretextMethod method_denoising_autoencoder;
extern const PretextMethod method_vae;
extern const PretextMethod method_gan;
extern const PretextMethod method_mae;
extern const PretextMethod method_rotation;
extern const PretextMethod method_colorization;
extern const PretextMethod method_inpainting;
extern const PretextMethod method_masked_lm;
extern const PretextMethod method_autoregressive_lm;
extern const PretextMethod method_moco;
extern const PretextMethod method_byol;
extern const PretextMethod method_barlow_twins;
extern const PretextMethod method_vicreg;
extern const PretextMethod method_clip;
extern const PretextMethod method_contrastive_audio;
extern const PretextMethod method_masked_spectrogram;
extern const PretextMethod method_none;

/* Catalogue order: what `ssld methods` lists first. */
static const PretextMethod *const registry[] = {
	&method_simclr,
	&method_autoencoder,
	&method_denoising_autoencoder,
	&method_vae,
	&method_gan,
	&method_mae,
	&method_rotation,
	&method_colorization,
	&method_inpainting,
	&method_masked_lm,
	&method_autoregressive_lm,
	&method_moco,
	&method_byol,
	&method_barlow_twins,
	&method_vicreg,
	&method_clip,
	&method_contrastive_audio,
	&method_masked_spectrogram,
	&method_none,
};

int method_count(void)
{
	return (int)(sizeof registry / sizeof registry[0]);
}

const PretextMethod *method_at(int i)
{
	return i >= 0 && i < method_count() ? registry[i] : NULL;
}

const PretextMethod *method_find(const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < method_count(); i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const ParamDef *method_param(const PretextMethod *m, const char *name)
{
	for (int i = 0; m && name && i < m->n_params; i++)
		if (strcmp(m->params[i].name, name) == 0)
			return &m->params[i];
	return NULL;
}

int method_config_default(const PretextMethod *m, void *config)
{
	if (m->config_size > METHOD_CONFIG_MAX)
		return -1;
	return param_fill_defaults(m->params, m->n_params, config, METHOD_CONFIG_MAX);
}
