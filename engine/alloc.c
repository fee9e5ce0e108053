/* alloc.c - counting wrappers around the C heap (see alloc.h). Does no pooling of its own: the
 * arena in ctx.c is what keeps the step loop allocation-free. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t alloc_count;

void *eng_malloc(size_t n)
{
	atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
	return malloc(n ? n : 1);
}

void *eng_calloc(size_t count, size_t size)
{
	atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
	return calloc(count ? count : 1, size ? size : 1);
}

void *eng_realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
	return realloc(p, n ? n : 1);
}

void *eng_aligned_alloc_to(size_t n, size_t align)
{
	atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
	void *p = NULL;
	if (posix_memalign(&p, align, n ? n : align) != 0)
		return NULL;
	return p;
}

void *eng_aligned_alloc(size_t n)
{
	return eng_aligned_alloc_to(n, 64);
}

char *eng_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = eng_malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

void eng_free(void *p)
{
	free(p);
}

uint64_t eng_alloc_count(void)
{
	return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}
