/* alloc.h - the engine's single door to the heap.
 *
 * Every engine allocation goes through eng_malloc/eng_calloc/eng_realloc/eng_free so that a test
 * can count them: the steady-state training step must perform zero heap allocations (activations
 * live in the per-step arena, see ctx.h). The counter is a process-wide atomic.
 *
 *   uint64_t before = eng_alloc_count();
 *   train_step(...);
 *   assert(eng_alloc_count() == before);
 */
#ifndef SSLD_ENGINE_ALLOC_H
#define SSLD_ENGINE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *eng_malloc(size_t n);                 /* NULL on failure; counted */
void *eng_calloc(size_t count, size_t size);/* NULL on failure; counted */
void *eng_realloc(void *p, size_t n);       /* NULL on failure (p untouched); counted */
void *eng_aligned_alloc(size_t n);          /* 64-byte aligned, free with eng_free; counted */
void *eng_aligned_alloc_to(size_t n, size_t align); /* `align`-aligned (a power of two >= 8) */
char *eng_strdup(const char *s);            /* counted */
void eng_free(void *p);                     /* eng_free(NULL) is a no-op */

uint64_t eng_alloc_count(void);             /* allocations performed so far, process-wide */

#endif
