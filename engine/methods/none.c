/* none.c - the "method" of a job that does not pretrain: it runs only its evaluations (a supervised
 * baseline, or probes of a randomly initialised or init_from encoder). It is a registry entry so
 * the spec and the catalogue treat it like any method; it has no parameters and no code, and the
 * runner builds the bare encoder itself when create is NULL.
 */
#include "method.h"

const PretextMethod method_none = {
	.name = "none",
	.family = "baseline",
	.summary = "no pretraining: run only the evaluations (a supervised baseline, or probes of a "
	           "randomly initialised or init_from encoder)",
	.default_encoder = ENC_CNN,
	.datasets = DATA_IMAGES | DATA_VECTORS | DATA_TEXT | DATA_CAPTIONS | DATA_AUDIO,
	.views = 0,
	.default_augment = "none",
	.example = "supervised-baseline-fashion-mnist.json",
};
