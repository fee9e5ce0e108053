/* loader.c - seeded per-epoch shuffling, batching, augmentation and prefetching (see loader.h).
 *
 * Determinism: epoch e's order comes from rng_seed(seed ^ e); the augmentation randomness of the
 * sample at position p of epoch e comes from its own stream seeded from (seed, e, p). A batch is
 * therefore the same whatever the prefetch depth, the number of augmentation threads, or where a
 * resumed run seeks to.
 * Threads: with prefetch > 0 one producer thread fills a ring of `depth` slots ahead of the
 * consumer (the slot the consumer holds is one of them); with aug_threads > 1 the producer and
 * aug_threads - 1 helpers split each batch's samples in chunks. Every buffer is allocated in
 * loader_new: loader_next never allocates. The consumer's waits are timed with CLOCK_MONOTONIC.
 * It does not cache augmented views across epochs and does not reorder batches.
 */
#include "loader.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../alloc.h"
#include "../../common/monotime.h"

#define LOADER_CHUNK 8           /* samples per work grab when several threads augment */
#define LOADER_MAX_THREADS 64
#define LOADER_MAX_DEPTH 8

typedef struct Slot {
	Batch b;
	uint64_t gen;
} Slot;

typedef struct Pool {
	pthread_t *threads;
	int n;                       /* helper threads (aug_threads - 1) */
	pthread_mutex_t mu;
	pthread_cond_t start, done;
	uint64_t seq;                /* bumped per job */
	int active;                  /* helpers still working on the current job */
	int quit;
	Slot *job;
	atomic_int next;             /* next sample index to claim */
	float **scratch;             /* per helper */
} Pool;

struct Loader {
	LoaderConfig cfg;
	const Split *split;
	int n;                       /* samples per epoch */
	int bpe;                     /* batches per epoch */
	size_t sf;                   /* floats per sample */
	int c, h, w;
	/* TEXT_RECORDS splits: token rows instead of floats */
	const uint8_t *rec;
	const int *rec_len;
	int T;

	int *order;                  /* (n) this epoch's permutation (producer only) */
	int order_epoch;
	int first, take;             /* this shard's positions in a global batch: [first, first + take) */
	float *scratch;              /* producer's augmentation scratch */

	Slot *slots;
	int depth;
	/* ring state, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv_ready, cv_space;
	int q_start, q_len, held;
	int prod_epoch, prod_batch;  /* next batch the producer makes */
	int cons_epoch;              /* epoch the consumer is in */
	uint64_t gen;
	int stop;
	pthread_t thread;
	int thread_started;
	double wait_s;

	Pool pool;
	int pool_started;
};

static uint64_t sample_seed(uint64_t seed, int epoch, int pos)
{
	uint64_t z = seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(uint32_t)(epoch + 1));
	z ^= 0xbf58476d1ce4e5b9ULL * (uint64_t)(uint32_t)(pos + 1);
	z = (z ^ (z >> 31)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 29);
}

/* ---------------------------------------------------------------------------------------------- */
/* Filling one batch                                                                               */

static void ensure_order(Loader *ld, int epoch)
{
	if (ld->order_epoch == epoch)
		return;
	if (ld->cfg.shuffle) {
		Rng r;
		rng_seed(&r, ld->cfg.seed ^ (uint64_t)(uint32_t)epoch);
		rng_permutation(&r, ld->order, ld->n);
	} else {
		for (int i = 0; i < ld->n; i++)
			ld->order[i] = i;
	}
	ld->order_epoch = epoch;
}

/* Samples [i0, i1) of slot s (its idx/epoch/index already set). */
static void fill_range(Loader *ld, Slot *s, int i0, int i1, float *scratch)
{
	Batch *b = &s->b;
	const Split *sp = ld->split;
	for (int i = i0; i < i1; i++) {
		int k = b->idx[i];
		b->y[i] = sp->y ? sp->y[k] : -1;
		if (ld->rec) {
			const uint8_t *r = ld->rec + (size_t)k * ld->T;
			int *t = b->tokens + (size_t)i * ld->T;
			for (int j = 0; j < ld->T; j++)
				t[j] = r[j];
			b->tokens_len[i] = ld->rec_len[k];
			continue;
		}
		const float *x = sp->x + (size_t)k * ld->sf;
		if (ld->cfg.views == 0) {
			memcpy(b->view[0] + (size_t)i * ld->sf, x, ld->sf * sizeof(float));
			continue;
		}
		Rng r;
		rng_seed(&r, sample_seed(ld->cfg.seed, b->epoch, b->index * ld->cfg.batch + ld->first + i));
		aug_apply(ld->cfg.aug[0], &r, x, b->view[0] + (size_t)i * ld->sf, ld->c, ld->h, ld->w,
		          scratch);
		if (ld->cfg.views == 2)
			aug_apply(ld->cfg.aug[1], &r, x, b->view[1] + (size_t)i * ld->sf, ld->c, ld->h, ld->w,
			          scratch);
	}
}

static void work_chunks(Loader *ld, Slot *s, float *scratch)
{
	for (;;) {
		int i0 = atomic_fetch_add_explicit(&ld->pool.next, LOADER_CHUNK, memory_order_relaxed);
		if (i0 >= s->b.n)
			break;
		int i1 = i0 + LOADER_CHUNK < s->b.n ? i0 + LOADER_CHUNK : s->b.n;
		fill_range(ld, s, i0, i1, scratch);
	}
}

static void *helper_main(void *arg)
{
	Loader *ld = arg;
	Pool *p = &ld->pool;
	pthread_mutex_lock(&p->mu);
	int id = p->active++;          /* startup handshake: each helper takes an id */
	uint64_t seen = p->seq;
	pthread_cond_broadcast(&p->done);
	for (;;) {
		while (p->seq == seen && !p->quit)
			pthread_cond_wait(&p->start, &p->mu);
		if (p->quit)
			break;
		seen = p->seq;
		Slot *s = p->job;
		pthread_mutex_unlock(&p->mu);
		work_chunks(ld, s, p->scratch[id]);
		pthread_mutex_lock(&p->mu);
		if (--p->active == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Make batch (epoch, index) into slot s, using the helper pool when there is one. */
static void make_batch(Loader *ld, Slot *s, int epoch, int index)
{
	ensure_order(ld, epoch);
	Batch *b = &s->b;
	int p0 = index * ld->cfg.batch + ld->first;
	int n = ld->n - p0 < ld->take ? ld->n - p0 : ld->take;
	b->n = n;
	b->epoch = epoch;
	b->index = index;
	for (int i = 0; i < n; i++) {
		int pos = ld->order[p0 + i];
		b->idx[i] = ld->cfg.indices ? ld->cfg.indices[pos] : pos;
	}
	if (ld->pool.n == 0 || ld->cfg.views == 0) {
		fill_range(ld, s, 0, n, ld->scratch);
		return;
	}
	Pool *p = &ld->pool;
	pthread_mutex_lock(&p->mu);
	p->job = s;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	p->active = p->n;
	p->seq++;
	pthread_cond_broadcast(&p->start);
	pthread_mutex_unlock(&p->mu);
	work_chunks(ld, s, ld->scratch);
	pthread_mutex_lock(&p->mu);
	while (p->active > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

/* ---------------------------------------------------------------------------------------------- */
/* Producer thread                                                                                 */

static void normalize(const Loader *ld, int *epoch, int *batch)
{
	if (*batch >= ld->bpe) {
		*epoch += *batch / ld->bpe;
		*batch %= ld->bpe;
	}
}

static void *producer_main(void *arg)
{
	Loader *ld = arg;
	pthread_mutex_lock(&ld->mu);
	for (;;) {
		while (!ld->stop && ld->q_len >= ld->depth)
			pthread_cond_wait(&ld->cv_space, &ld->mu);
		if (ld->stop)
			break;
		int e = ld->prod_epoch, bi = ld->prod_batch;
		normalize(ld, &e, &bi);
		ld->prod_epoch = e;
		ld->prod_batch = bi + 1;
		uint64_t gen = ld->gen;
		Slot *s = &ld->slots[(ld->q_start + ld->q_len) % ld->depth];
		pthread_mutex_unlock(&ld->mu);
		make_batch(ld, s, e, bi);
		pthread_mutex_lock(&ld->mu);
		if (gen == ld->gen) {       /* not invalidated by a seek meanwhile */
			s->gen = gen;
			ld->q_len++;
			pthread_cond_signal(&ld->cv_ready);
		}
	}
	pthread_mutex_unlock(&ld->mu);
	return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Public                                                                                          */

static int fail(int rc, char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "loader: %s", msg);
	return rc;
}

int loader_new(const LoaderConfig *cfg, Loader **out, char *err, size_t errlen)
{
	char m[256];
	*out = NULL;
	if (!cfg->ds || !cfg->split)
		return fail(-EINVAL, err, errlen, "ds and split are required");
	if (cfg->batch <= 0)
		return fail(-EINVAL, err, errlen, "batch must be > 0");
	if (cfg->views < 0 || cfg->views > 2)
		return fail(-EINVAL, err, errlen, "views must be 0, 1 or 2");
	if (cfg->prefetch < 0 || cfg->prefetch > LOADER_MAX_DEPTH)
		return fail(-EINVAL, err, errlen, "prefetch must be 0 (synchronous) or a ring depth up to 8");
	const Dataset *ds = cfg->ds;
	const Split *sp = cfg->split;
	int n = cfg->indices ? cfg->n : sp->n;
	if (n <= 0)
		return fail(-EINVAL, err, errlen, "no samples to load (empty split or subset)");
	if (cfg->indices)
		for (int i = 0; i < n; i++)
			if (cfg->indices[i] < 0 || cfg->indices[i] >= sp->n) {
				snprintf(m, sizeof m, "indices[%d] = %d outside the split's 0..%d", i,
				         cfg->indices[i], sp->n - 1);
				return fail(-EINVAL, err, errlen, m);
			}
	const uint8_t *rec = NULL;
	const int *rec_len = NULL;
	if (!sp->x) {
		/* a record split (or a slice of one): find its rows through the label array */
		if (ds->rec_train && sp->y >= ds->train.y && sp->y < ds->train.y + ds->train.n) {
			size_t off = (size_t)(sp->y - ds->train.y);
			rec = ds->rec_train + off * ds->record_bytes;
			rec_len = ds->rec_train_len + off;
		} else if (ds->rec_test && sp->y >= ds->test.y && sp->y < ds->test.y + ds->test.n) {
			size_t off = (size_t)(sp->y - ds->test.y);
			rec = ds->rec_test + off * ds->record_bytes;
			rec_len = ds->rec_test_len + off;
		} else {
			return fail(-EINVAL, err, errlen, "the split has no samples (a byte-stream text dataset? "
			            "use text_windows)");
		}
		if (cfg->views != 0)
			return fail(-EINVAL, err, errlen, "text records cannot be augmented (views must be 0)");
	}
	int shards = cfg->shards > 1 ? cfg->shards : 1;
	if (shards > 1 && (!cfg->drop_last || cfg->batch % shards || cfg->shard < 0 ||
	                   cfg->shard >= shards)) {
		snprintf(m, sizeof m, "shard %d of %d needs drop_last and a batch (%d) divisible by %d",
		         cfg->shard, shards, cfg->batch, shards);
		return fail(-EINVAL, err, errlen, m);
	}
	int bpe = cfg->drop_last ? n / cfg->batch : (n + cfg->batch - 1) / cfg->batch;
	if (bpe == 0) {
		snprintf(m, sizeof m, "batch %d is larger than the %d samples and drop_last is set",
		         cfg->batch, n);
		return fail(-EINVAL, err, errlen, m);
	}

	Loader *ld = eng_calloc(1, sizeof *ld);
	if (!ld)
		return fail(-ENOMEM, err, errlen, "out of memory");
	ld->cfg = *cfg;
	ld->cfg.aug_threads = cfg->aug_threads < 1 ? 1 : (cfg->aug_threads > LOADER_MAX_THREADS ?
	                                                 LOADER_MAX_THREADS : cfg->aug_threads);
	ld->split = sp;
	ld->n = n;
	ld->bpe = bpe;
	ld->c = ds->c;
	ld->h = ds->h;
	ld->w = ds->w;
	ld->sf = rec ? 0 : ds->sample_floats;
	ld->rec = rec;
	ld->rec_len = rec_len;
	ld->T = rec ? ds->record_bytes : 0;
	ld->order_epoch = -1;
	ld->take = cfg->batch / shards;
	ld->first = shards > 1 ? cfg->shard * ld->take : 0;
	ld->depth = cfg->prefetch == 0 ? 1 : (cfg->prefetch < 2 ? 2 : cfg->prefetch);
	pthread_mutex_init(&ld->mu, NULL);
	pthread_cond_init(&ld->cv_ready, NULL);
	pthread_cond_init(&ld->cv_space, NULL);
	pthread_mutex_init(&ld->pool.mu, NULL);
	pthread_cond_init(&ld->pool.start, NULL);
	pthread_cond_init(&ld->pool.done, NULL);

	int rc = -ENOMEM;
	size_t B = (size_t)cfg->batch;
	size_t scratch_n = ld->sf ? aug_scratch_floats(ld->c, ld->h, ld->w) : 1;
	ld->order = eng_malloc((size_t)n * sizeof(int));
	ld->scratch = eng_aligned_alloc(scratch_n * sizeof(float));
	ld->slots = eng_calloc((size_t)ld->depth, sizeof(Slot));
	if (!ld->order || !ld->scratch || !ld->slots)
		goto fail_mem;
	for (int d = 0; d < ld->depth; d++) {
		Batch *b = &ld->slots[d].b;
		b->y = eng_malloc(B * sizeof(int));
		b->idx = eng_malloc(B * sizeof(int));
		if (!b->y || !b->idx)
			goto fail_mem;
		if (rec) {
			b->tokens = eng_malloc(B * ld->T * sizeof(int));
			b->tokens_len = eng_malloc(B * sizeof(int));
			b->T = ld->T;
			if (!b->tokens || !b->tokens_len)
				goto fail_mem;
		} else {
			int nv = cfg->views == 2 ? 2 : 1;
			for (int v = 0; v < nv; v++) {
				b->view[v] = eng_aligned_alloc(B * ld->sf * sizeof(float));
				if (!b->view[v])
					goto fail_mem;
			}
		}
	}
	if (ld->cfg.aug_threads > 1 && cfg->views > 0) {
		Pool *p = &ld->pool;
		int nh = ld->cfg.aug_threads - 1;
		p->threads = eng_calloc((size_t)nh, sizeof(pthread_t));
		p->scratch = eng_calloc((size_t)nh, sizeof(float *));
		if (!p->threads || !p->scratch)
			goto fail_mem;
		for (int i = 0; i < nh; i++) {
			p->scratch[i] = eng_aligned_alloc(scratch_n * sizeof(float));
			if (!p->scratch[i])
				goto fail_mem;
		}
		ld->pool_started = 1;
		for (int i = 0; i < nh; i++) {
			if (pthread_create(&p->threads[i], NULL, helper_main, ld) != 0) {
				rc = -EAGAIN;
				goto fail_mem;
			}
			p->n++;
		}
		/* wait until every helper registered its id, so active counts only real jobs later */
		pthread_mutex_lock(&p->mu);
		while (p->active < p->n)
			pthread_cond_wait(&p->done, &p->mu);
		p->active = 0;
		pthread_mutex_unlock(&p->mu);
	}
	if (cfg->prefetch > 0) {
		if (pthread_create(&ld->thread, NULL, producer_main, ld) != 0) {
			rc = -EAGAIN;
			goto fail_mem;
		}
		ld->thread_started = 1;
	}
	*out = ld;
	return 0;
fail_mem:
	loader_free(ld);
	return fail(rc, err, errlen, rc == -EAGAIN ? "cannot start a thread" : "out of memory");
}

const Batch *loader_next(Loader *ld)
{
	if (!ld->thread_started) {
		int e = ld->prod_epoch, bi = ld->prod_batch;
		normalize(ld, &e, &bi);
		ld->prod_epoch = e;
		ld->prod_batch = bi;
		if (e != ld->cons_epoch) {
			ld->cons_epoch = e;
			return NULL;
		}
		double t0 = mono_seconds();
		make_batch(ld, &ld->slots[0], e, bi);
		ld->wait_s += mono_seconds() - t0;
		ld->prod_batch = bi + 1;
		return &ld->slots[0].b;
	}
	pthread_mutex_lock(&ld->mu);
	if (ld->held) {
		ld->q_start = (ld->q_start + 1) % ld->depth;
		ld->q_len--;
		ld->held = 0;
		pthread_cond_signal(&ld->cv_space);
	}
	if (ld->q_len == 0) {
		double t0 = mono_seconds();
		while (ld->q_len == 0)
			pthread_cond_wait(&ld->cv_ready, &ld->mu);
		ld->wait_s += mono_seconds() - t0;
	}
	Slot *s = &ld->slots[ld->q_start];
	if (s->b.epoch != ld->cons_epoch) {
		ld->cons_epoch = s->b.epoch;
		pthread_mutex_unlock(&ld->mu);
		return NULL;
	}
	ld->held = 1;
	pthread_mutex_unlock(&ld->mu);
	return &s->b;
}

void loader_seek(Loader *ld, int epoch, int batch_index)
{
	if (epoch < 0)
		epoch = 0;
	if (batch_index < 0)
		batch_index = 0;
	normalize(ld, &epoch, &batch_index);
	pthread_mutex_lock(&ld->mu);
	ld->gen++;
	ld->q_start = 0;
	ld->q_len = 0;
	ld->held = 0;
	ld->prod_epoch = epoch;
	ld->prod_batch = batch_index;
	ld->cons_epoch = epoch;
	pthread_cond_broadcast(&ld->cv_space);
	pthread_mutex_unlock(&ld->mu);
}

int loader_batches_per_epoch(const Loader *ld)
{
	return ld->bpe;
}

double loader_wait_seconds(const Loader *ld)
{
	Loader *m = (Loader *)ld;   /* the lock is internal state, not the loader's value */
	pthread_mutex_lock(&m->mu);
	double w = ld->wait_s;
	pthread_mutex_unlock(&m->mu);
	return w;
}

void loader_free(Loader *ld)
{
	if (!ld)
		return;
	if (ld->thread_started) {
		pthread_mutex_lock(&ld->mu);
		ld->stop = 1;
		pthread_cond_broadcast(&ld->cv_space);
		pthread_mutex_unlock(&ld->mu);
		pthread_join(ld->thread, NULL);
	}
	Pool *p = &ld->pool;
	if (ld->pool_started) {
		pthread_mutex_lock(&p->mu);
		p->quit = 1;
		pthread_cond_broadcast(&p->start);
		pthread_mutex_unlock(&p->mu);
		for (int i = 0; i < p->n; i++)
			pthread_join(p->threads[i], NULL);
	}
	if (p->scratch)
		for (int i = 0; i < ld->cfg.aug_threads - 1; i++)
			eng_free(p->scratch[i]);
	eng_free(p->scratch);
	eng_free(p->threads);
	if (ld->slots)
		for (int d = 0; d < ld->depth; d++) {
			Batch *b = &ld->slots[d].b;
			eng_free(b->y);
			eng_free(b->idx);
			eng_free(b->view[0]);
			eng_free(b->view[1]);
			eng_free(b->tokens);
			eng_free(b->tokens_len);
		}
	eng_free(ld->slots);
	eng_free(ld->order);
	eng_free(ld->scratch);
	pthread_mutex_destroy(&ld->mu);
	pthread_cond_destroy(&ld->cv_ready);
	pthread_cond_destroy(&ld->cv_space);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->start);
	pthread_cond_destroy(&p->done);
	eng_free(ld);
}

/* ---------------------------------------------------------------------------------------------- */
/* Language-model windows                                                                          */

int text_windows(const uint8_t *text, size_t len, int B, int T, Rng *rng, int *x, int *y)
{
	if (B <= 0 || T <= 0 || len < (size_t)T + 1)
		return -EINVAL;
	size_t starts = len - (size_t)T;   /* valid start offsets: 0 .. len-T-1 */
	for (int b = 0; b < B; b++) {
		size_t s;
		if (starts <= UINT32_MAX)
			s = rng_below(rng, (uint32_t)starts);
		else
			s = (size_t)(rng_u64(rng) % starts);
		const uint8_t *w = text + s;
		int *xb = x + (size_t)b * T, *yb = y + (size_t)b * T;
		for (int t = 0; t < T; t++) {
			xb[t] = w[t];
			yb[t] = w[t + 1];
		}
	}
	return 0;
}

int text_windows_at(const uint8_t *text, size_t len, int T, size_t first, int B, int *x, int *y)
{
	if (B <= 0 || T <= 0)
		return -EINVAL;
	int n = 0;
	for (int b = 0; b < B; b++) {
		size_t s = (first + (size_t)b) * (size_t)T;
		if (s + (size_t)T + 1 > len)
			break;
		int *xb = x + (size_t)n * T, *yb = y + (size_t)n * T;
		for (int t = 0; t < T; t++) {
			xb[t] = text[s + t];
			yb[t] = text[s + t + 1];
		}
		n++;
	}
	return n;
}
