/* method_catalog.c - the table of pretext methods and evaluation protocols the job spec accepts.
 *
 * This file is data plus lookups: names, families, parameters (type, default, range, help), the
 * dataset modalities and encoders each method accepts, and a complete example job per method.
 * It deliberately does not validate JSON (workers/jobspec.c does, driven by these tables) and
 * does not train anything (engine/methods/ does). Adding a method = one entry in methods[].
 */
#include "method_catalog.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Pretext methods                                                                                 */

static const MethodInfo methods[] = {
	{
		.name = "simclr",
		.family = "contrastive",
		.summary = "SimCLR: two augmented views of each image, NT-Xent loss pulls the pair together "
		           "and pushes the other 2B-2 samples of the batch away",
		.default_encoder = ENC_CNN,
		.datasets = DATA_IMAGES,
		.views = 2,
		.default_augment = "simclr",
		.params = {
			{ "temperature", PARAM_NUMBER, .def = 0.5, .min = 0, .max = 10,
			  .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "NT-Xent softmax temperature (lower = harder negatives)" },
			{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
			  .help = "hidden width of the projection head (BN + ReLU)" },
			{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
			  .help = "output size of the projection head, where the loss is computed" },
		},
		.example =
			"{\n"
			"  \"name\": \"simclr-fmnist\",\n"
			"  \"method\": \"simclr\",\n"
			"  \"params\": {\"temperature\": 0.5, \"proj_hidden\": 512, \"proj_dim\": 128},\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": {\"encoder\": \"cnn\"},\n"
			"  \"augment\": \"simclr\",\n"
			"  \"pretrain\": {\"epochs\": 10, \"batch_size\": 256,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.001},\n"
			"               \"schedule\": {\"name\": \"cosine\", \"warmup_epochs\": 1}},\n"
			"  \"evaluations\": [\n"
			"    {\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1.0]},\n"
			"    {\"protocol\": \"knn\", \"k\": 20},\n"
			"    {\"protocol\": \"supervised\", \"label_fractions\": [0.01]}\n"
			"  ],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	{
		.name = "none",
		.family = "baseline",
		.summary = "no pretraining: run only the evaluations (a supervised baseline, or probes of a "
		           "randomly initialised or init_from encoder)",
		.default_encoder = ENC_CNN,
		.datasets = DATA_IMAGES | DATA_VECTORS | DATA_TEXT | DATA_CAPTIONS,
		.views = 0,
		.default_augment = "none",
		.example =
			"{\n"
			"  \"name\": \"supervised-baseline\",\n"
			"  \"method\": \"none\",\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"evaluations\": [\n"
			"    {\"protocol\": \"supervised\", \"label_fractions\": [0.01, 0.1], \"epochs\": 30},\n"
			"    {\"protocol\": \"linear_probe\", \"label_fractions\": [0.01]}\n"
			"  ]\n"
			"}\n",
	},
};

/* ---------------------------------------------------------------------------------------------- */
/* Evaluation protocols. Common keys of evaluations[i] (protocol, label_fractions, labels_per_class,
 * label_rule) are handled by jobspec.c; the keys here are the protocol-specific ones.              */

#define KEY_EPOCHS(d) { "epochs", PARAM_INTEGER, .def = (d), .min = 1, .max = 10000, \
                        .help = "passes over the labelled subset (linear_probe: optimiser iterations)" }
#define KEY_BATCH(d) { "batch_size", PARAM_INTEGER, .def = (d), .min = 1, .max = 8192, \
                       .help = "minibatch size" }

static const ProtocolInfo protocols[] = {
	{
		.name = "linear_probe",
		.protocol = EVAL_LINEAR_PROBE,
		.summary = "frozen encoder features -> multinomial logistic regression on the labels",
		.needs_labels = 1,
		.keys = {
			KEY_EPOCHS(100),
			KEY_BATCH(256),
			{ "lr", PARAM_NUMBER, .def = 0, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "learning rate (default 0 = automatic)" },
			{ "weight_decay", PARAM_NUMBER, .def = 0, .min = 0, .max = 1,
			  .help = "L2 penalty (default 0 = chosen on a validation slice of the labels)" },
		},
	},
	{
		.name = "finetune",
		.protocol = EVAL_FINETUNE,
		.summary = "encoder + linear head trained on the labels, encoder at a reduced learning rate",
		.needs_labels = 1,
		.keys = {
			KEY_EPOCHS(30),
			KEY_BATCH(64),
			{ "lr", PARAM_NUMBER, .def = 1e-3, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "learning rate of the head" },
			{ "encoder_lr_scale", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 1,
			  .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "encoder learning rate = lr * encoder_lr_scale" },
			{ "weight_decay", PARAM_NUMBER, .def = 1e-4, .min = 0, .max = 1,
			  .help = "weight decay" },
			{ "augment", PARAM_BOOLEAN, .def = 1,
			  .help = "light augmentation (small shifts, flips) of the labelled images" },
		},
	},
	{
		.name = "knn",
		.protocol = EVAL_KNN,
		.summary = "cosine k-nearest-neighbours on frozen features, temperature-weighted votes",
		.needs_labels = 1,
		.keys = {
			{ "k", PARAM_INTEGER, .def = 20, .min = 1, .max = 1000,
			  .help = "neighbours that vote" },
			{ "temperature", PARAM_NUMBER, .def = 0.07, .min = 0, .max = 100,
			  .flags = PARAM_MIN_EXCLUSIVE, .help = "vote weight exp(similarity / temperature)" },
		},
	},
	{
		.name = "supervised",
		.protocol = EVAL_SUPERVISED,
		.summary = "the same architecture trained from random initialisation on the same labels: "
		           "the baseline an SSL result is compared against",
		.needs_labels = 1,
		.keys = {
			KEY_EPOCHS(30),
			KEY_BATCH(64),
			{ "lr", PARAM_NUMBER, .def = 1e-3, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "learning rate" },
			{ "weight_decay", PARAM_NUMBER, .def = 1e-4, .min = 0, .max = 1,
			  .help = "weight decay" },
			{ "augment", PARAM_BOOLEAN, .def = 1,
			  .help = "light augmentation (small shifts, flips) of the labelled images" },
		},
	},
};

/* ---------------------------------------------------------------------------------------------- */
/* Lookups                                                                                         */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

int method_catalog_count(void)
{
	return COUNT(methods);
}

const MethodInfo *method_catalog_at(int i)
{
	return i >= 0 && i < COUNT(methods) ? &methods[i] : NULL;
}

const MethodInfo *method_catalog_find(const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < COUNT(methods); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

int method_param_count(const MethodInfo *m)
{
	int n = 0;
	while (n < METHOD_MAX_PARAMS && m->params[n].name)
		n++;
	return n;
}

const ParamDef *method_param_def(const MethodInfo *m, const char *name)
{
	for (int i = 0; i < METHOD_MAX_PARAMS && m->params[i].name; i++)
		if (strcmp(m->params[i].name, name) == 0)
			return &m->params[i];
	return NULL;
}

int protocol_catalog_count(void)
{
	return COUNT(protocols);
}

const ProtocolInfo *protocol_catalog_at(int i)
{
	return i >= 0 && i < COUNT(protocols) ? &protocols[i] : NULL;
}

const ProtocolInfo *protocol_catalog_find(const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < COUNT(protocols); i++)
		if (strcmp(protocols[i].name, name) == 0)
			return &protocols[i];
	return NULL;
}

const ProtocolInfo *protocol_catalog_get(EvalProtocol p)
{
	for (int i = 0; i < COUNT(protocols); i++)
		if (protocols[i].protocol == p)
			return &protocols[i];
	return NULL;
}

const ParamDef *protocol_key_def(const ProtocolInfo *p, const char *name)
{
	for (int i = 0; i < PROTOCOL_MAX_KEYS && p->keys[i].name; i++)
		if (strcmp(p->keys[i].name, name) == 0)
			return &p->keys[i];
	return NULL;
}

const char *catalog_param_type_name(ParamType t)
{
	switch (t) {
	case PARAM_NUMBER: return "number";
	case PARAM_INTEGER: return "integer";
	case PARAM_BOOLEAN: return "boolean";
	case PARAM_STRING: return "string";
	case PARAM_ENUM: return "enum";
	}
	return "?";
}

const char *catalog_data_names(unsigned mask, char *buf, size_t len)
{
	static const char *const names[] = { "images", "vectors", "text", "captions" };
	size_t at = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (int i = 0; i < COUNT(names); i++) {
		if (!(mask & (1u << i)))
			continue;
		int n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", names[i]);
		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
	}
	return buf;
}
