/* lm_config.c - the language tests' method config (see lm_config.h). */
#include "lm_config.h"

#include <stdio.h>

int lm_method_config(const PretextMethod *m, unsigned char *cfg, double mask_prob)
{
	const struct { const char *name; double value; } set[] = {
		{ "mask_prob", mask_prob },
		{ "mask_token_prob", 0.8 },
		{ "random_token_prob", 0.1 },
	};
	int rc = m ? method_config_default(m, cfg) : -1;
	for (size_t i = 0; rc == 0 && m->n_params > 0 && i < sizeof set / sizeof set[0]; i++) {
		const ParamDef *d = method_param(m, set[i].name);
		rc = d ? param_store(d, cfg, set[i].value, NULL) : -1;
	}
	if (rc < 0)
		fprintf(stderr, "%s: cannot fill its config\n", m ? m->name : "method");
	return rc < 0 ? -1 : 0;
}
