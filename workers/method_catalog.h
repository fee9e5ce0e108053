/* method_catalog.h - what the job spec may ask for, as seen from the spec layer: lookups derived
 * from the engine's registries. The methods are engine/methods/method_registry.c (one
 * PretextMethod descriptor per method file, with its parameter table); the protocols are the
 * EvalProtocolDef entries of engine/methods/eval*.c. Nothing here describes a method or a
 * protocol; this header only names the registries the way the spec layer reads them, and finds a
 * method's example job among the embedded examples/ files.
 *
 *   const MethodInfo *m = method_catalog_find("simclr");
 *   const ParamDef *t = method_param_def(m, "temperature");   // t->def == 0.5
 *   const char *ex = method_catalog_example(m);               // examples/simclr-fashion-mnist.json
 */
#ifndef SSLD_WORKERS_METHOD_CATALOG_H
#define SSLD_WORKERS_METHOD_CATALOG_H

#include <stddef.h>

#include "../engine/methods/eval.h"
#include "../engine/methods/method.h"

typedef PretextMethod MethodInfo;
typedef EvalProtocolDef ProtocolInfo;

static inline int method_catalog_count(void) { return method_count(); }
static inline const MethodInfo *method_catalog_at(int i) { return method_at(i); }
static inline const MethodInfo *method_catalog_find(const char *name) { return method_find(name); }
static inline int method_param_count(const MethodInfo *m) { return m->n_params; }
static inline const ParamDef *method_param_def(const MethodInfo *m, const char *name)
{
	return method_param(m, name);
}

static inline int protocol_catalog_count(void) { return eval_protocol_count(); }
static inline const ProtocolInfo *protocol_catalog_at(int i) { return eval_protocol_at(i); }
static inline const ProtocolInfo *protocol_catalog_find(const char *name)
{
	return eval_protocol_find(name);
}
static inline const ProtocolInfo *protocol_catalog_get(EvalProto p) { return eval_protocol_get(p); }
static inline const ParamDef *protocol_key_def(const ProtocolInfo *p, const char *name)
{
	return eval_protocol_key(p, name);
}

static inline const char *catalog_param_type_name(ParamType t) { return param_type_name(t); }
/* The DATA_* mask as "images, text" into buf; returns buf. */
const char *catalog_data_names(unsigned mask, char *buf, size_t len);
/* The encoders m may be given (ENC_BIT mask): those it works with that fit one of its datasets. */
unsigned method_catalog_encoders(const MethodInfo *m);
/* An ENC_BIT mask as "mlp, cnn" into buf; returns buf. */
const char *catalog_encoder_names(unsigned mask, char *buf, size_t len);
/* The text of m's example job (its examples/ file, embedded at build time); NULL when the build
 * holds no such file (a test fails on that). */
const char *method_catalog_example(const MethodInfo *m);

#endif
