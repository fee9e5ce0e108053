/* tensor.c - shape helpers for Tensor (see tensor.h). Memory is never owned here. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

size_t tensor_set_shape(Tensor *t, int ndim, const int *shape)
{
	size_t n = 1;
	t->ndim = ndim;
	for (int i = 0; i < TENSOR_MAX_DIMS; i++) {
		t->shape[i] = i < ndim ? shape[i] : 1;
		if (i < ndim)
			n *= (size_t)shape[i];
	}
	t->size = n;
	return n;
}

int tensor_same_shape(const Tensor *a, const Tensor *b)
{
	if (a->ndim != b->ndim)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return 0;
	return 1;
}

const char *tensor_shape_str(const Tensor *t, char *buf, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, len - o, "(");
	for (int i = 0; i < t->ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, i ? ",%d" : "%d", t->shape[i]);
	if (o < len)
		snprintf(buf + o, len - o, ")");
	return buf;
}

int tensor_dim(const Tensor *t, int d)
{
	if (d < 0)
		d += t->ndim;
	return t->shape[d];
}
