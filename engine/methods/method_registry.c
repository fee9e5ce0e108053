/* method_registry.c - the list of implemented pretext methods (see method.h). Adding a method is
 * one extern line and one table entry here, plus its catalogue entry in workers/method_catalog.c. */
#include "method.h"

#include <string.h>

extern const PretextMethod method_simclr;
extern const PretextMethod method_masked_lm;
extern const PretextMethod method_autoregressive_lm;
extern const PretextMethod method_autoencoder;
extern const PretextMethod method_denoising_autoencoder;
extern const PretextMethod method_vae;
extern const PretextMethod method_mae;
extern const PretextMethod method_rotation;
extern const PretextMethod method_moco;
extern const PretextMethod method_byol;
extern const PretextMethod method_barlow_twins;
extern const PretextMethod method_vicreg;
extern const PretextMethod method_clip;

static const PretextMethod *const registry[] = {
	&method_simclr,
	&method_masked_lm,
	&method_autoregressive_lm,
	&method_autoencoder,
	&method_denoising_autoencoder,
	&method_vae,
	&method_mae,
	&method_rotation,
	&method_moco,
	&method_byol,
	&method_barlow_twins,
	&method_vicreg,
	&method_clip,
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
	for (int i = 0; i < method_count(); i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}
