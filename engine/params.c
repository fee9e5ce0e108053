/* params.c - a named set of parameters and buffers (see params.h).
 *
 * Each tensor owns a 64-byte aligned data buffer and, unless it is a buffer (PARAM_BUFFER), a
 * grad buffer of the same size; both persist for the life of the set. Names are found through a
 * small open-addressing hash table so per-step lookups (EMA between prefixes) stay cheap.
 * It deliberately does not initialise values (layers do, with the context's RNG) and does not
 * know about optimizers or files (optim.c, checkpoint.c).
 */
#include "params.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"

typedef struct ParamEntry {
	Tensor t;
	int flags;
} ParamEntry;

struct ParamSet {
	ParamEntry **items;  /* in insertion order */
	int n, cap;
	int *table;          /* hash slots holding index+1, 0 = empty; size hcap (power of two) */
	int hcap;
};

/* ---------------------------------------------------------------------------------------------- */

static uint32_t name_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* Slot of `name` (length len) in the table, or of the empty slot where it would go. */
static int slot_of(const ParamSet *ps, const char *name, size_t len)
{
	uint32_t mask = (uint32_t)ps->hcap - 1;
	uint32_t i = name_hash(name, len) & mask;
	for (;;) {
		int v = ps->table[i];
		if (v == 0)
			return (int)i;
		const char *other = ps->items[v - 1]->t.name;
		if (strncmp(other, name, len) == 0 && other[len] == '\0')
			return (int)i;
		i = (i + 1) & mask;
	}
}

static int rehash(ParamSet *ps, int hcap)
{
	int *table = eng_calloc((size_t)hcap, sizeof *table);
	if (!table)
		return -ENOMEM;
	eng_free(ps->table);
	ps->table = table;
	ps->hcap = hcap;
	for (int k = 0; k < ps->n; k++) {
		const char *nm = ps->items[k]->t.name;
		ps->table[slot_of(ps, nm, strlen(nm))] = k + 1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------- */

ParamSet *paramset_new(void)
{
	ParamSet *ps = eng_calloc(1, sizeof *ps);
	if (!ps)
		return NULL;
	if (rehash(ps, 64) < 0) {
		eng_free(ps);
		return NULL;
	}
	return ps;
}

static void entry_free(ParamEntry *e)
{
	if (!e)
		return;
	eng_free(e->t.data);
	eng_free(e->t.grad);
	eng_free((char *)e->t.name);
	eng_free(e);
}

void paramset_free(ParamSet *ps)
{
	if (!ps)
		return;
	for (int i = 0; i < ps->n; i++)
		entry_free(ps->items[i]);
	eng_free(ps->items);
	eng_free(ps->table);
	eng_free(ps);
}

static int flags_train(int flags)
{
	return !(flags & (PARAM_BUFFER | PARAM_FROZEN));
}

Tensor *paramset_add(ParamSet *ps, const char *name, int ndim, const int *shape, int flags)
{
	if (!ps || !name || !name[0] || ndim < 0 || ndim > TENSOR_MAX_DIMS)
		return NULL;
	for (int d = 0; d < ndim; d++)
		if (shape[d] <= 0)
			return NULL;
	size_t len = strlen(name);
	if (ps->table[slot_of(ps, name, len)] != 0)
		return NULL; /* duplicate */
	if ((ps->n + 1) * 2 > ps->hcap && rehash(ps, ps->hcap * 2) < 0)
		return NULL;
	if (ps->n == ps->cap) {
		int cap = ps->cap ? ps->cap * 2 : 32;
		ParamEntry **items = eng_realloc(ps->items, (size_t)cap * sizeof *items);
		if (!items)
			return NULL;
		ps->items = items;
		ps->cap = cap;
	}
	ParamEntry *e = eng_calloc(1, sizeof *e);
	if (!e)
		return NULL;
	size_t n = tensor_set_shape(&e->t, ndim, shape);
	e->flags = flags;
	e->t.name = eng_strdup(name);
	e->t.data = eng_aligned_alloc(n * sizeof(float));
	if (!(flags & PARAM_BUFFER))
		e->t.grad = eng_aligned_alloc(n * sizeof(float));
	if (!e->t.name || !e->t.data || (!(flags & PARAM_BUFFER) && !e->t.grad)) {
		entry_free(e);
		return NULL;
	}
	memset(e->t.data, 0, n * sizeof(float));
	if (e->t.grad)
		memset(e->t.grad, 0, n * sizeof(float));
	e->t.is_param = 1;
	e->t.requires_grad = (uint8_t)flags_train(flags);
	ps->items[ps->n++] = e;
	ps->table[slot_of(ps, name, len)] = ps->n;
	return &e->t;
}

int paramset_count(const ParamSet *ps)
{
	return ps ? ps->n : 0;
}

Tensor *paramset_at(const ParamSet *ps, int i)
{
	return i >= 0 && i < ps->n ? &ps->items[i]->t : NULL;
}

int paramset_flags_at(const ParamSet *ps, int i)
{
	return i >= 0 && i < ps->n ? ps->items[i]->flags : 0;
}

/* Freezing or unfreezing also switches requires_grad, so a frozen encoder records no tape nodes.
 * A buffer never gains a grad buffer: PARAM_BUFFER cannot be toggled after creation. */
void paramset_set_flags_at(ParamSet *ps, int i, int flags)
{
	if (i < 0 || i >= ps->n)
		return;
	ParamEntry *e = ps->items[i];
	flags = (flags & ~PARAM_BUFFER) | (e->flags & PARAM_BUFFER);
	e->flags = flags;
	e->t.requires_grad = (uint8_t)flags_train(flags);
}

Tensor *paramset_find(const ParamSet *ps, const char *name)
{
	if (!ps || !name)
		return NULL;
	int v = ps->table[slot_of(ps, name, strlen(name))];
	return v ? &ps->items[v - 1]->t : NULL;
}

void paramset_zero_grad(ParamSet *ps)
{
	for (int i = 0; i < ps->n; i++) {
		Tensor *t = &ps->items[i]->t;
		if (t->grad)
			memset(t->grad, 0, t->size * sizeof(float));
	}
}

size_t paramset_numel(const ParamSet *ps, int trainable_only)
{
	size_t n = 0;
	for (int i = 0; i < ps->n; i++)
		if (!trainable_only || flags_train(ps->items[i]->flags))
			n += ps->items[i]->t.size;
	return n;
}

/* Names longer than this cannot take part in prefix operations (no allocation per call). */
#define PARAM_NAME_MAX 512

int paramset_copy_prefix(ParamSet *dst, const char *dst_prefix, const ParamSet *src,
                         const char *src_prefix)
{
	if (!dst || !src)
		return -EINVAL;
	dst_prefix = dst_prefix ? dst_prefix : "";
	src_prefix = src_prefix ? src_prefix : "";
	size_t dl = strlen(dst_prefix), sl = strlen(src_prefix);
	char name[PARAM_NAME_MAX];
	int count = 0;
	for (int i = 0; i < src->n; i++) {
		const Tensor *s = &src->items[i]->t;
		if (strncmp(s->name, src_prefix, sl) != 0)
			continue;
		const char *rest = s->name + sl;
		size_t rl = strlen(rest);
		if (dl + rl + 1 > sizeof name)
			return -ENAMETOOLONG;
		memcpy(name, dst_prefix, dl);
		memcpy(name + dl, rest, rl + 1);
		Tensor *d = paramset_find(dst, name);
		if (!d)
			return -ENOENT;
		if (!tensor_same_shape(d, s))
			return -EINVAL;
		if (d != s)
			memcpy(d->data, s->data, s->size * sizeof(float));
		count++;
	}
	return count;
}
