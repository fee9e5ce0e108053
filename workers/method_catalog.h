/* method_catalog.h - what the job spec may ask for: pretext methods and downstream protocols.
 *
 * The catalogue is data: one MethodInfo per pretext method (its parameters with types, defaults,
 * ranges and help, the datasets and encoders it accepts, an example job) and one ProtocolInfo per
 * evaluation protocol. workers/jobspec.c validates "params" and "evaluations[i]" against it and
 * jobspec_catalog_json() / jobspec_print_catalog() publish it (`GET /v1/methods`, `ssld methods`).
 *
 * Adding a method is one entry in the methods[] table of method_catalog.c (plus its engine file
 * in engine/methods/ registered in method_registry.c):
 *
 *   {
 *       .name = "rotation", .family = "self-predictive", .summary = "predict the applied rotation",
 *       .default_encoder = ENC_CNN, .datasets = DATA_IMAGES, .views = 1,
 *       .default_augment = "none",
 *       .params = {
 *           { "head_hidden", PARAM_INTEGER, .def = 256, .min = 1, .max = 8192,
 *             .help = "hidden width of the rotation classifier" },
 *       },
 *       .example = "{\"method\":\"rotation\",\"dataset\":\"fashion-mnist\"}",
 *   },
 *
 *   const MethodInfo *m = method_catalog_find("simclr");
 *   const ParamDef *t = method_param_def(m, "temperature");   // t->def == 0.5
 */
#ifndef SSLD_WORKERS_METHOD_CATALOG_H
#define SSLD_WORKERS_METHOD_CATALOG_H

#include "jobspec.h"

#define METHOD_MAX_PARAMS 24
#define PROTOCOL_MAX_KEYS 12

typedef enum ParamType {
	PARAM_NUMBER,     /* finite double */
	PARAM_INTEGER,    /* whole number (1.5 rejected) */
	PARAM_BOOLEAN,    /* JSON true/false, stored as 1/0 */
	PARAM_STRING,     /* free text (1..max chars, max 0 = 256) */
	PARAM_ENUM,       /* one of the '|'-separated choices */
} ParamType;

enum {
	PARAM_MIN_EXCLUSIVE = 1,   /* value must be > min instead of >= min */
	PARAM_MAX_EXCLUSIVE = 2,   /* value must be < max instead of <= max */
	PARAM_NO_MIN = 4,          /* no lower bound */
	PARAM_NO_MAX = 8,          /* no upper bound */
	PARAM_DEFAULT_AUTO = 16,   /* absent = chosen at run time ("auto"); def is the stored
	                              stand-in for it and need not lie in the range */
};

/* One typed, documented parameter: a method parameter or a protocol key. A zero-initialised
 * entry (name NULL) ends a list. For numbers and integers the range is [min, max] unless flags
 * say otherwise; the default lies in it, unless PARAM_DEFAULT_AUTO says it is chosen at run time. */
typedef struct ParamDef {
	const char *name;
	ParamType type;
	double def;               /* number / integer / boolean default */
	const char *def_str;      /* string / enum default */
	double min, max;
	unsigned flags;
	const char *choices;      /* PARAM_ENUM: "mean|cls" */
	const char *help;         /* one line */
} ParamDef;

/* Dataset modalities (DatasetKind grouped by what a sample is). */
enum {
	DATA_IMAGES = 1,          /* fashion-mnist, idx: (C,H,W) images */
	DATA_VECTORS = 2,         /* csv: (D) feature vectors */
	DATA_TEXT = 4,            /* text (bytes), text_records (labelled records) */
	DATA_CAPTIONS = 8,        /* image + caption pairs */
};

/* Encoder kinds as a bit mask (1u << EncoderKind); 0 in MethodInfo.encoders = any that suits the
 * dataset. */
#define ENC_BIT(k) (1u << (unsigned)(k))

typedef struct MethodInfo {
	const char *name;              /* catalogue name used in the spec: "simclr" */
	const char *family;            /* "contrastive", "non-contrastive", "self-predictive",
	                                  "multimodal", "baseline" */
	const char *summary;           /* one line */
	EncoderKind default_encoder;   /* used when the spec gives no model.encoder (and it suits the
	                                  dataset; otherwise the dataset's natural encoder) */
	unsigned encoders;             /* allowed encoder kinds (ENC_BIT mask), 0 = any */
	unsigned datasets;             /* DATA_* mask of accepted dataset modalities */
	int views;                     /* augmented views per sample: 0 = no pretraining, 1, 2 */
	int needs_labels;              /* pretext uses labels (none of the SSL methods do) */
	int causal;                    /* transformer encoder runs causally (autoregressive) */
	const char *default_augment;   /* preset used when the spec has no "augment" */
	ParamDef params[METHOD_MAX_PARAMS];   /* ended by a zero entry */
	const char *example;           /* a complete, valid job JSON (tests parse every one) */
	/* Optional cross-field checks after the spec is filled (e.g. "proj_dim <= proj_hidden").
	 * Return < 0 and fill err (code, field, message, http_status) to reject the spec. */
	int (*validate)(const JobSpec *js, SpecError *err);
} MethodInfo;

typedef struct ProtocolInfo {
	const char *name;              /* "linear_probe" */
	EvalProtocol protocol;
	const char *summary;
	int needs_labels;
	ParamDef keys[PROTOCOL_MAX_KEYS];   /* protocol-specific keys of evaluations[i], zero-ended */
} ProtocolInfo;

int method_catalog_count(void);
const MethodInfo *method_catalog_at(int i);            /* NULL when out of range */
const MethodInfo *method_catalog_find(const char *name);/* NULL when unknown */
const ParamDef *method_param_def(const MethodInfo *m, const char *name);
int method_param_count(const MethodInfo *m);

int protocol_catalog_count(void);
const ProtocolInfo *protocol_catalog_at(int i);
const ProtocolInfo *protocol_catalog_find(const char *name);
const ProtocolInfo *protocol_catalog_get(EvalProtocol p);
const ParamDef *protocol_key_def(const ProtocolInfo *p, const char *name);

const char *catalog_param_type_name(ParamType t);    /* "number", "integer", ... */
/* The DATA_* mask as "images, text" into buf; returns buf. */
const char *catalog_data_names(unsigned mask, char *buf, size_t len);

#endif
