/* export_onnx.h - an encoder written as an ONNX model (opset 17), so ONNX runtimes can compute the
 * same features as ssld's encoder_forward in eval mode.
 *
 * The generic part (export_onnx.c) owns the model: the graph input "input" (N,C,H,W) float32
 * (dims given as 0 are symbolic), the nodes, the initializers (the encoder's tensors under their
 * dotted names), the projection model.c adds (Encoder.fc), the output "features" (N,D), and the
 * protobuf-c serialization of onnx.proto (engine/onnx/onnx.proto). Each encoder file writes its
 * own nodes through EncoderDesc.export_onnx with the layer helpers below; an encoder without the
 * hook cannot be exported (ONNX_EUNSUPPORTED names it).
 *
 *   // in an encoder file: x (N,C,H,W) -> features
 *   static const char *cnn_export(OnnxGraph *g, const Encoder *e, const char *x)
 *   {
 *       x = onnx_conv2d(g, &n->conv[0], x);
 *       x = onnx_relu(g, onnx_batchnorm(g, &n->bn[0], x));
 *       return onnx_flatten(g, onnx_node1(g, "GlobalAveragePool", x, NULL, 0));
 *   }
 *   // the caller
 *   if (onnx_export_encoder(e, (int[]){ 1, 0, 0 }, 3, "enc.onnx", err, sizeof err) < 0) ...
 *
 * Helpers return the name of the value they produce (owned by the graph) or NULL once the graph
 * has failed (out of memory); a NULL input makes them return NULL, so a hook can chain them and
 * check only its result. Tensors passed in are borrowed until onnx_export_encoder returns.
 * It does not export training-time behaviour (dropout, batch statistics).
 */
#ifndef SSLD_ENGINE_EXPORT_ONNX_H
#define SSLD_ENGINE_EXPORT_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "layers.h"
#include "model.h"
#include "tensor.h"

#define ONNX_OPSET 17

enum {
	ONNX_EIO = -1,           /* the file could not be written (errno text in the message) */
	ONNX_ENOMEM = -2,
	ONNX_EUNSUPPORTED = -3,  /* the encoder has no export hook */
};

typedef struct OnnxGraph OnnxGraph;

/* One node attribute: an int (n_ints 0, ints NULL, is_float 0), a float (is_float 1) or a list of
 * ints (ints non-NULL). */
typedef struct OnnxAttr {
	const char *name;
	int64_t i;
	float f;
	int is_float;
	const int64_t *ints;
	int n_ints;
} OnnxAttr;

/* Writes e as an ONNX model to path. in_shape is one sample, (C,H,W) (in_ndim 3: input
 * (N,C,H,W)) or (D) (in_ndim 1: input (N,D)); a 0 dim is symbolic, the batch dim always is ("N").
 * Returns 0 or ONNX_E* with err set. */
int onnx_export_encoder(const Encoder *e, const int *in_shape, int in_ndim, const char *path,
                        char *err, size_t errlen);

/* ---- for encoder files' export hooks ------------------------------------------------------- */
/* A node op_type(inputs...) with one output; inputs may contain "" for an absent optional one. */
const char *onnx_node(OnnxGraph *g, const char *op_type, const char *const *inputs, int n_in,
                      const OnnxAttr *attrs, int n_attrs);
const char *onnx_node1(OnnxGraph *g, const char *op_type, const char *x, const OnnxAttr *attrs,
                       int n_attrs);
/* t as an initializer under its own name (once per tensor). */
const char *onnx_weight(OnnxGraph *g, const Tensor *t);
/* A float32 initializer holding data (copied) with the given dims (ndim 0: a scalar). */
const char *onnx_const_f32(OnnxGraph *g, const float *data, const int64_t *dims, int ndim);
/* A 1-D int64 initializer of n values (shapes for Reshape), or with n 0 the scalar v[0]. */
const char *onnx_const_i64(OnnxGraph *g, const int64_t *v, int n);

const char *onnx_linear(OnnxGraph *g, const Linear *l, const char *x);      /* x (..., in) */
const char *onnx_conv2d(OnnxGraph *g, const Conv2d *c, const char *x);      /* x (N,C,H,W) */
const char *onnx_batchnorm(OnnxGraph *g, const BatchNorm *bn, const char *x); /* running stats */
const char *onnx_layernorm(OnnxGraph *g, const LayerNorm *ln, const char *x); /* last axis */
const char *onnx_relu(OnnxGraph *g, const char *x);
const char *onnx_gelu(OnnxGraph *g, const char *x);                          /* tanh form */
const char *onnx_attention(OnnxGraph *g, const Attention *a, const char *x); /* (N,T,D) */
const char *onnx_block(OnnxGraph *g, const Block *b, const char *x);         /* (N,T,D) */
const char *onnx_flatten(OnnxGraph *g, const char *x);                       /* -> (N, rest) */
/* (N,T,D) -> (N,D) as model.c's encoder_pool_tokens: mean, or the first token (cfg.pool 1). */
const char *onnx_pool_tokens(OnnxGraph *g, const Encoder *e, const char *t);

#endif
