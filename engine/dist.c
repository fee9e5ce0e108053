/* dist.c - what data-parallel training does with a ParamSet (dist.h): the gradient sum over the
 * ranks before each optimizer step, and rank 0's state to every rank before the first one. The
 * collectives underneath are dist_mpi.c or, without MPI, the one-process dist_none.c. */
#include "dist.h"

#include <string.h>

#include "alloc.h"

/* Trainable: has a gradient the optimizer reads (not a buffer, not frozen). */
static int trainable(const ParamSet *ps, int i)
{
	const Tensor *t = paramset_at(ps, i);
	return t->grad && !(paramset_flags_at(ps, i) & (PARAM_BUFFER | PARAM_FROZEN));
}

/* Gradients are packed into one buffer (many small tensors - biases, norms - would each be a
 * message of their own), summed in buckets, and unpacked. The buffer is kept between steps. */
static float *pack;
static size_t pack_cap;

int dist_allreduce_grads(ParamSet *ps)
{
	if (dist_size() <= 1)
		return dist_error() ? -1 : 0;
	int np = paramset_count(ps);
	size_t n = 0;
	for (int i = 0; i < np; i++)
		if (trainable(ps, i))
			n += paramset_at(ps, i)->size;
	if (n > pack_cap) {
		float *p = eng_realloc(pack, n * sizeof *p);
		if (!p)
			return -1;
		pack = p;
		pack_cap = n;
	}
	size_t off = 0;
	for (int i = 0; i < np; i++)
		if (trainable(ps, i)) {
			const Tensor *t = paramset_at(ps, i);
			memcpy(pack + off, t->grad, t->size * sizeof(float));
			off += t->size;
		}
	if (dist_allreduce_sum_f32(pack, n, "allreduce of the gradients") < 0)
		return -1;
	off = 0;
	for (int i = 0; i < np; i++)
		if (trainable(ps, i)) {
			Tensor *t = paramset_at(ps, i);
			memcpy(t->grad, pack + off, t->size * sizeof(float));
			off += t->size;
		}
	return 0;
}

void dist__free_buffers(void)
{
	eng_free(pack);
	pack = NULL;
	pack_cap = 0;
}

int dist_bcast_params(ParamSet *ps, Optim *opt)
{
	if (dist_size() <= 1)
		return dist_error() ? -1 : 0;
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		if (dist_bcast(t->data, t->size * sizeof(float), "broadcast of the parameters") < 0)
			return -1;
	}
	if (!opt)
		return 0;
	for (int i = 0; i < optim_state_count(opt); i++) {
		Tensor *t = optim_state_at(opt, i, NULL);
		if (dist_bcast(t->data, t->size * sizeof(float), "broadcast of the optimizer state") < 0)
			return -1;
	}
	int64_t steps = optim_steps(opt);
	if (dist_bcast(&steps, sizeof steps, "broadcast of the optimizer state") < 0)
		return -1;
	optim_set_steps(opt, steps);
	return 0;
}
