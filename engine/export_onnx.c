/* export_onnx.c - builds an ONNX ModelProto (protobuf-c, from engine/onnx/onnx.proto) out of an
 * encoder and writes it to a file. See export_onnx.h.
 *
 * Every allocation of one export is recorded in the graph and released together at the end, so
 * the helpers need no ownership rules of their own. The weights are referenced, not copied, until
 * the model is packed. It knows no encoder: each writes its nodes through its export_onnx hook.
 */
#include "export_onnx.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoders/encoder.h"
#include "onnx.pb-c.h"

struct OnnxGraph {
	void **allocs;
	size_t n_allocs, cap_allocs;
	Onnx__NodeProto **nodes;
	size_t n_nodes, cap_nodes;
	Onnx__TensorProto **inits;
	size_t n_inits, cap_inits;
	int next_id;
	int failed;
};

/* ---- memory ---------------------------------------------------------------------------------- */

static void *g_alloc(OnnxGraph *g, size_t n)
{
	if (g->failed)
		return NULL;
	if (g->n_allocs == g->cap_allocs) {
		size_t cap = g->cap_allocs ? 2 * g->cap_allocs : 64;
		void **a = realloc(g->allocs, cap * sizeof *a);
		if (!a) {
			g->failed = 1;
			return NULL;
		}
		g->allocs = a;
		g->cap_allocs = cap;
	}
	void *p = calloc(1, n ? n : 1);
	if (!p) {
		g->failed = 1;
		return NULL;
	}
	g->allocs[g->n_allocs++] = p;
	return p;
}

static char *g_strf(OnnxGraph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *g_strf(OnnxGraph *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = n >= 0 ? g_alloc(g, (size_t)n + 1) : NULL;
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* Appends p to a growable array of pointers (the array itself lives outside the arena). */
static int push(OnnxGraph *g, void ***arr, size_t *n, size_t *cap, void *p)
{
	if (!p || g->failed)
		return -1;
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 32;
		void **a = realloc(*arr, c * sizeof *a);
		if (!a) {
			g->failed = 1;
			return -1;
		}
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = p;
	return 0;
}

static void graph_free(OnnxGraph *g)
{
	for (size_t i = 0; i < g->n_allocs; i++)
		free(g->allocs[i]);
	free(g->allocs);
	free(g->nodes);
	free(g->inits);
}

/* ---- nodes and initializers ------------------------------------------------------------------ */

const char *onnx_node(OnnxGraph *g, const char *op_type, const char *const *inputs, int n_in,
                      const OnnxAttr *attrs, int n_attrs)
{
	for (int i = 0; i < n_in; i++)
		if (!inputs[i])
			return NULL;
	Onnx__NodeProto *n = g_alloc(g, sizeof *n);
	char **in = g_alloc(g, (size_t)(n_in > 0 ? n_in : 1) * sizeof *in);
	char **out = g_alloc(g, sizeof *out);
	Onnx__AttributeProto **at = g_alloc(g, (size_t)(n_attrs > 0 ? n_attrs : 1) * sizeof *at);
	if (!n || !in || !out || !at)
		return NULL;
	onnx__node_proto__init(n);
	int id = g->next_id++;
	for (int i = 0; i < n_in; i++)
		in[i] = g_strf(g, "%s", inputs[i]);
	out[0] = g_strf(g, "%s_%d", op_type, id);
	n->name = g_strf(g, "n%d_%s", id, op_type);
	n->op_type = g_strf(g, "%s", op_type);
	n->n_input = (size_t)n_in;
	n->input = in;
	n->n_output = 1;
	n->output = out;
	for (int i = 0; i < n_attrs; i++) {
		Onnx__AttributeProto *a = g_alloc(g, sizeof *a);
		if (!a)
			return NULL;
		onnx__attribute_proto__init(a);
		a->name = g_strf(g, "%s", attrs[i].name);
		a->has_type = 1;
		if (attrs[i].ints) {
			a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
			a->ints = g_alloc(g, (size_t)attrs[i].n_ints * sizeof *a->ints);
			if (!a->ints)
				return NULL;
			memcpy(a->ints, attrs[i].ints, (size_t)attrs[i].n_ints * sizeof *a->ints);
			a->n_ints = (size_t)attrs[i].n_ints;
		} else if (attrs[i].is_float) {
			a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
			a->has_f = 1;
			a->f = attrs[i].f;
		} else {
			a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
			a->has_i = 1;
			a->i = attrs[i].i;
		}
		at[i] = a;
	}
	n->n_attribute = (size_t)n_attrs;
	n->attribute = at;
	if (g->failed || push(g, (void ***)&g->nodes, &g->n_nodes, &g->cap_nodes, n) < 0)
		return NULL;
	return out[0];
}

const char *onnx_node1(OnnxGraph *g, const char *op_type, const char *x, const OnnxAttr *attrs,
                       int n_attrs)
{
	return onnx_node(g, op_type, &x, 1, attrs, n_attrs);
}

/* An initializer over data (borrowed when copy is 0). */
static const char *add_init(OnnxGraph *g, const char *name, int type, const void *data,
                            size_t bytes, const int64_t *dims, int ndim, int copy)
{
	Onnx__TensorProto *t = g_alloc(g, sizeof *t);
	int64_t *d = g_alloc(g, (size_t)(ndim > 0 ? ndim : 1) * sizeof *d);
	void *buf = copy ? g_alloc(g, bytes) : (void *)data;
	char *nm = g_strf(g, "%s", name);
	if (!t || !d || !buf || !nm)
		return NULL;
	if (copy)
		memcpy(buf, data, bytes);
	onnx__tensor_proto__init(t);
	if (ndim > 0)
		memcpy(d, dims, (size_t)ndim * sizeof *d);
	t->n_dims = (size_t)ndim;
	t->dims = d;
	t->has_data_type = 1;
	t->data_type = type;
	t->name = nm;
	t->has_raw_data = 1;   /* raw_data is little-endian, as x86-64 and aarch64 store it */
	t->raw_data.len = bytes;
	t->raw_data.data = buf;
	if (push(g, (void ***)&g->inits, &g->n_inits, &g->cap_inits, t) < 0)
		return NULL;
	return nm;
}

const char *onnx_weight(OnnxGraph *g, const Tensor *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < g->n_inits; i++)
		if (strcmp(g->inits[i]->name, t->name) == 0)
			return g->inits[i]->name;
	int64_t dims[TENSOR_MAX_DIMS];
	for (int i = 0; i < t->ndim; i++)
		dims[i] = t->shape[i];
	return add_init(g, t->name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t->data,
	                t->size * sizeof(float), dims, t->ndim, 0);
}

const char *onnx_const_f32(OnnxGraph *g, const float *data, const int64_t *dims, int ndim)
{
	size_t n = 1;
	for (int i = 0; i < ndim; i++)
		n *= (size_t)dims[i];
	char name[32];
	snprintf(name, sizeof name, "const_%d", g->next_id++);
	return add_init(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, data, n * sizeof *data, dims,
	                ndim, 1);
}

const char *onnx_const_i64(OnnxGraph *g, const int64_t *v, int n)
{
	char name[32];
	snprintf(name, sizeof name, "const_%d", g->next_id++);
	int64_t dim = n;   /* n 0: one value, a scalar */
	return add_init(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, v,
	                (size_t)(n > 0 ? n : 1) * sizeof *v, &dim, n > 0 ? 1 : 0, 1);
}

/* ---- layers ---------------------------------------------------------------------------------- */

// x (..., in) -> (..., out): Gemm on 2-D inputs would need the rank; MatMul with W^T works on any.
const char *onnx_linear(OnnxGraph *g, const Linear *l, const char *x)
{
	if (!x || g->failed)
		return NULL;
	float *wt = g_alloc(g, (size_t)l->in * (size_t)l->out * sizeof *wt);
	if (!wt)
		return NULL;
	for (int o = 0; o < l->out; o++)
		for (int i = 0; i < l->in; i++)
			wt[(size_t)i * l->out + o] = l->weight->data[(size_t)o * l->in + i];
	char name[LAYER_NAME_MAX + 8];
	snprintf(name, sizeof name, "%s.T", l->weight->name);
	const char *w = add_init(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, wt,
	                         (size_t)l->in * (size_t)l->out * sizeof *wt,
	                         (int64_t[]){ l->in, l->out }, 2, 0);
	const char *y = onnx_node(g, "MatMul", (const char *[]){ x, w }, 2, NULL, 0);
	if (l->bias)
		y = onnx_node(g, "Add", (const char *[]){ y, onnx_weight(g, l->bias) }, 2, NULL, 0);
	return y;
}

const char *onnx_conv2d(OnnxGraph *g, const Conv2d *c, const char *x)
{
	const OnnxAttr at[] = {
		{ "kernel_shape", .ints = (int64_t[]){ c->k, c->k }, .n_ints = 2 },
		{ "strides", .ints = (int64_t[]){ c->stride, c->stride }, .n_ints = 2 },
		{ "pads", .ints = (int64_t[]){ c->pad, c->pad, c->pad, c->pad }, .n_ints = 4 },
	};
	const char *in[3] = { x, onnx_weight(g, c->weight), c->bias ? onnx_weight(g, c->bias) : NULL };
	return onnx_node(g, "Conv", in, c->bias ? 3 : 2, at, 3);
}

const char *onnx_batchnorm(OnnxGraph *g, const BatchNorm *bn, const char *x)
{
	const OnnxAttr at[] = { { "epsilon", .f = bn->eps, .is_float = 1 } };
	const char *in[5] = { x, onnx_weight(g, bn->weight), onnx_weight(g, bn->bias),
		                  onnx_weight(g, bn->running_mean), onnx_weight(g, bn->running_var) };
	return onnx_node(g, "BatchNormalization", in, 5, at, 1);
}

const char *onnx_layernorm(OnnxGraph *g, const LayerNorm *ln, const char *x)
{
	const OnnxAttr at[] = { { "axis", .i = -1 }, { "epsilon", .f = ln->eps, .is_float = 1 } };
	const char *in[3] = { x, onnx_weight(g, ln->weight), onnx_weight(g, ln->bias) };
	return onnx_node(g, "LayerNormalization", in, 3, at, 2);
}

const char *onnx_relu(OnnxGraph *g, const char *x)
{
	return onnx_node1(g, "Relu", x, NULL, 0);
}

static const char *scalar(OnnxGraph *g, float v)
{
	return onnx_const_f32(g, &v, NULL, 0);
}

static const char *binary(OnnxGraph *g, const char *op, const char *a, const char *b)
{
	return onnx_node(g, op, (const char *[]){ a, b }, 2, NULL, 0);
}

// gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh form op_gelu computes
const char *onnx_gelu(OnnxGraph *g, const char *x)
{
	const char *x3 = binary(g, "Mul", binary(g, "Mul", x, x), x);
	const char *in = binary(g, "Add", x, binary(g, "Mul", x3, scalar(g, 0.044715f)));
	const char *t = onnx_node1(g, "Tanh", binary(g, "Mul", in, scalar(g, 0.7978845608028654f)),
	                           NULL, 0);
	const char *h = binary(g, "Mul", x, scalar(g, 0.5f));
	return binary(g, "Mul", h, binary(g, "Add", t, scalar(g, 1.0f)));
}

/* The causal mask of x (N,T,D): (T,T), -1e9 above the diagonal, 0 elsewhere. Built from T at run
 * time (Trilu), so no context x context constant lands in the file. */
static const char *causal_mask(OnnxGraph *g, const char *x)
{
	const OnnxAttr t_only[] = { { "start", .i = 1 }, { "end", .i = 2 } };
	const char *t = onnx_node1(g, "Shape", x, t_only, 2);
	const char *tt = onnx_node(g, "Concat", (const char *[]){ t, t }, 2,
	                           (const OnnxAttr[]){ { "axis", .i = 0 } }, 1);
	const char *full = binary(g, "Expand", scalar(g, -1e9f), tt);
	const char *one = onnx_const_i64(g, (int64_t[]){ 1 }, 0);
	return onnx_node(g, "Trilu", (const char *[]){ full, one }, 2,
	                 (const OnnxAttr[]){ { "upper", .i = 1 } }, 1);
}

// x (N,T,D) -> (N,T,D): softmax(q k^T / sqrt(Dh) [+ causal mask]) v per head, as attention_forward
const char *onnx_attention(OnnxGraph *g, const Attention *a, const char *x)
{
	const char *qkv = onnx_linear(g, &a->qkv, x);   /* (N,T,3D): q, k, v, each head-major */
	const char *shape5 = onnx_const_i64(g, (int64_t[]){ 0, 0, 3, a->heads, a->head_dim }, 5);
	const char *r = onnx_node(g, "Reshape", (const char *[]){ qkv, shape5 }, 2, NULL, 0);
	const OnnxAttr perm[] = { { "perm", .ints = (int64_t[]){ 2, 0, 3, 1, 4 }, .n_ints = 5 } };
	r = onnx_node1(g, "Transpose", r, perm, 1);        /* (3,N,H,T,Dh) */
	const char *part[3];
	for (int i = 0; i < 3; i++) {
		const OnnxAttr axis[] = { { "axis", .i = 0 } };
		const char *idx = onnx_const_i64(g, (int64_t[]){ i }, 0);
		part[i] = onnx_node(g, "Gather", (const char *[]){ r, idx }, 2, axis, 1);
	}
	const OnnxAttr kt[] = { { "perm", .ints = (int64_t[]){ 0, 1, 3, 2 }, .n_ints = 4 } };
	const char *s = binary(g, "MatMul", part[0], onnx_node1(g, "Transpose", part[1], kt, 1));
	s = binary(g, "Mul", s, scalar(g, 1.0f / sqrtf((float)a->head_dim)));
	if (a->causal)
		s = binary(g, "Add", s, causal_mask(g, x));
	const OnnxAttr last[] = { { "axis", .i = -1 } };
	const char *o = binary(g, "MatMul", onnx_node1(g, "Softmax", s, last, 1), part[2]);
	const OnnxAttr back[] = { { "perm", .ints = (int64_t[]){ 0, 2, 1, 3 }, .n_ints = 4 } };
	o = onnx_node1(g, "Transpose", o, back, 1);        /* (N,T,H,Dh) */
	const char *shape3 = onnx_const_i64(g, (int64_t[]){ 0, 0, a->dim }, 3);
	o = onnx_node(g, "Reshape", (const char *[]){ o, shape3 }, 2, NULL, 0);
	return onnx_linear(g, &a->proj, o);
}

// x (N,T,D) -> (N,T,D): block_forward in eval mode (no dropout)
const char *onnx_block(OnnxGraph *g, const Block *b, const char *x)
{
	x = binary(g, "Add", x, onnx_attention(g, &b->attn, onnx_layernorm(g, &b->norm1, x)));
	const char *h = onnx_layernorm(g, &b->norm2, x);
	h = onnx_linear(g, &b->fc2, onnx_gelu(g, onnx_linear(g, &b->fc1, h)));
	return binary(g, "Add", x, h);
}

// t (N,T,D) -> (N,D): the mean over tokens (pool 0) or the first token, as encoder_pool_tokens
const char *onnx_pool_tokens(OnnxGraph *g, const Encoder *e, const char *t)
{
	if (e->cfg.pool == 1) {
		const char *zero = onnx_const_i64(g, (int64_t[]){ 0 }, 0);
		return onnx_node(g, "Gather", (const char *[]){ t, zero }, 2,
		                 (const OnnxAttr[]){ { "axis", .i = 1 } }, 1);
	}
	const OnnxAttr mean[] = { { "axes", .ints = (int64_t[]){ 1 }, .n_ints = 1 }, { "keepdims", .i = 0 } };
	return onnx_node1(g, "ReduceMean", t, mean, 2);
}

const char *onnx_flatten(OnnxGraph *g, const char *x)
{
	const OnnxAttr at[] = { { "axis", .i = 1 } };
	return onnx_node1(g, "Flatten", x, at, 1);
}

/* ---- the model ------------------------------------------------------------------------------- */

static Onnx__ValueInfoProto *value_info(OnnxGraph *g, const char *name, const int64_t *dims,
                                        const char *const *params, int ndim)
{
	Onnx__ValueInfoProto *v = g_alloc(g, sizeof *v);
	Onnx__TypeProto *ty = g_alloc(g, sizeof *ty);
	Onnx__TypeProto__Tensor *tt = g_alloc(g, sizeof *tt);
	Onnx__TensorShapeProto *sh = g_alloc(g, sizeof *sh);
	Onnx__TensorShapeProto__Dimension **dv = g_alloc(g, (size_t)ndim * sizeof *dv);
	if (!v || !ty || !tt || !sh || !dv)
		return NULL;
	onnx__value_info_proto__init(v);
	onnx__type_proto__init(ty);
	onnx__type_proto__tensor__init(tt);
	onnx__tensor_shape_proto__init(sh);
	for (int i = 0; i < ndim; i++) {
		Onnx__TensorShapeProto__Dimension *d = g_alloc(g, sizeof *d);
		if (!d)
			return NULL;
		onnx__tensor_shape_proto__dimension__init(d);
		if (dims[i] > 0) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = dims[i];
		} else {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = g_strf(g, "%s", params[i]);
		}
		dv[i] = d;
	}
	sh->n_dim = (size_t)ndim;
	sh->dim = dv;
	tt->has_elem_type = 1;
	tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
	tt->shape = sh;
	ty->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	ty->tensor_type = tt;
	v->name = g_strf(g, "%s", name);
	v->type = ty;
	return g->failed ? NULL : v;
}

static int write_all(const char *path, const uint8_t *buf, size_t n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ONNX_EIO;
	}
	size_t w = fwrite(buf, 1, n, f);
	int e = errno;
	if (fclose(f) != 0 || w != n) {
		snprintf(err, errlen, "%s: write failed: %s", path, strerror(w != n ? e : errno));
		return ONNX_EIO;
	}
	return 0;
}

int onnx_export_encoder(const Encoder *e, const int *in_shape, int in_ndim, const char *path,
                        char *err, size_t errlen)
{
	if (!e->desc->export_onnx) {
		snprintf(err, errlen, "the %s encoder has no ONNX export", e->desc->name);
		return ONNX_EUNSUPPORTED;
	}
	OnnxGraph g = { 0 };
	int rc = ONNX_ENOMEM;
	uint8_t *buf = NULL;
	int64_t in_dims[4] = { 0 };
	const char *const *in_params = in_ndim == 3 ? (const char *const[]){ "N", "C", "H", "W" }
	                               : encoder_fits(e->cfg.kind) & DATA_TEXT
	                                   ? (const char *const[]){ "N", "T" }
	                                   : (const char *const[]){ "N", "D" };
	for (int i = 0; i < in_ndim && i < 3; i++)
		in_dims[1 + i] = in_shape[i];
	const char *y = e->desc->export_onnx(&g, e, "input");
	if (y && e->has_fc)
		y = onnx_linear(&g, &e->fc, y);
	/* The output under a stable name, whatever node made it. */
	y = onnx_node1(&g, "Identity", y, NULL, 0);
	Onnx__NodeProto *last = g.n_nodes ? g.nodes[g.n_nodes - 1] : NULL;
	if (!y || !last || g.failed)
		goto fail;
	last->output[0] = g_strf(&g, "features");
	Onnx__ValueInfoProto *vin = value_info(&g, "input", in_dims, in_params, in_ndim == 1 ? 2 : 4);
	Onnx__ValueInfoProto *vout = value_info(&g, "features", (int64_t[]){ 0, e->out_dim },
	                                        (const char *const[]){ "N", "D" }, 2);
	if (!vout || !vin || !last->output[0])
		goto fail;

	Onnx__GraphProto gr;
	onnx__graph_proto__init(&gr);
	gr.name = g_strf(&g, "ssld_%s_encoder", e->desc->name);
	gr.n_node = g.n_nodes;
	gr.node = g.nodes;
	gr.n_initializer = g.n_inits;
	gr.initializer = g.inits;
	gr.n_input = 1;
	gr.input = &vin;
	gr.n_output = 1;
	gr.output = &vout;
	Onnx__OperatorSetIdProto op;
	onnx__operator_set_id_proto__init(&op);
	op.domain = "";
	op.has_version = 1;
	op.version = ONNX_OPSET;
	Onnx__OperatorSetIdProto *ops = &op;
	Onnx__ModelProto m;
	onnx__model_proto__init(&m);
	m.has_ir_version = 1;
	m.ir_version = 8;   /* the IR of opset 17 (ONNX 1.12) */
	m.n_opset_import = 1;
	m.opset_import = &ops;
	m.producer_name = "ssld";
	m.graph = &gr;
	if (!gr.name)
		goto fail;
	size_t n = onnx__model_proto__get_packed_size(&m);
	buf = malloc(n ? n : 1);
	if (!buf)
		goto fail;
	onnx__model_proto__pack(&m, buf);
	rc = write_all(path, buf, n, err, errlen);
	free(buf);
	graph_free(&g);
	return rc;
fail:
	snprintf(err, errlen, "the ONNX graph of the %s encoder: out of memory", e->desc->name);
	graph_free(&g);
	return rc;
}
