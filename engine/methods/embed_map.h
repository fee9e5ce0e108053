/* embed_map.h - a job's embedding map: a seeded sample of the test split, encoded by the trained
 * encoder, laid out in 2-D by t-SNE (../tsne.h), written as artifacts for the job page.
 *
 *   EmbedMapConfig mc; embed_map_config_default(&mc); mc.enabled = 1;
 *   EmbedMapEnv env = { .enc = enc, .ds = ds, .seed = 1, .threads = 2 };
 *   EmbedMapResult res;
 *   if (embed_map_write(&env, &mc, "/jobs/7", &res, err, sizeof err) == 0) ... res.trustworthiness
 *
 * dir/embedding_map.json holds, per mapped point i: x[i], y[i] (map coordinates), label[i] (-1 when
 * unknown), index[i] (the sample's index in the test split) and neighbours[i] (the 8 nearest other
 * mapped points in the encoder's space by L2 distance, nearest first, as positions in these
 * arrays); with "classes" (names), the map's trustworthiness at k = 10, and either "sprite" (the
 * sampled images as one PNG, dir/embedding_map_sprite.png: point i is cell i, row-major, in rows
 * of sprite.cols cells of sprite.w x sprite.h pixels) or "text" (each record's first 200 bytes);
 * feature rows (CSV) get neither.
 * dir/embedding_map_features.npy holds the mapped points' embeddings, (n,d) float32 in map order.
 *
 * Not here: when a job makes a map (the runner), how it is drawn (web/js/embedmap.js).
 */
#ifndef SSLD_METHODS_EMBED_MAP_H
#define SSLD_METHODS_EMBED_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "../data/dataset.h"
#include "../model.h"

#define EMBED_MAP_JSON "embedding_map.json"
#define EMBED_MAP_SPRITE "embedding_map_sprite.png"
#define EMBED_MAP_FEATURES "embedding_map_features.npy"
#define EMBED_MAP_NEIGHBOURS 8
#define EMBED_MAP_TRUST_K 10
#define EMBED_MAP_SPRITE_CELL 32   /* larger images are box-averaged down to at most this side */

/* The job spec's "embedding_map" (workers/spec_table.c binds its keys to these fields). */
typedef struct EmbedMapConfig {
	int enabled;        /* 0 = no map (the key is absent) */
	int points;         /* test samples mapped (fewer when the test split is smaller) */
	float perplexity;
	int iterations;
} EmbedMapConfig;

typedef struct EmbedMapEnv {
	Encoder *enc;              /* the trained encoder (borrowed) */
	const Dataset *ds;
	uint64_t seed;             /* the sample and the map's initial positions */
	int threads;
	/* Optional: t-SNE progress and cancellation (nonzero = stop, -ECANCELED). */
	void (*on_progress)(void *user, int iteration, int iterations);
	int (*should_stop)(void *user);
	void *user;
} EmbedMapEnv;

typedef struct EmbedMapResult {
	int points;
	double trustworthiness;    /* k = EMBED_MAP_TRUST_K */
	double seconds;            /* features, t-SNE and files */
	int sprite;                /* 1 when embedding_map_sprite.png was written */
} EmbedMapResult;

void embed_map_config_default(EmbedMapConfig *c);

/* Write dir/embedding_map.json (and the sprite for image data). 0, or a negative errno with err
 * naming the problem (a dataset without test samples, out of memory, cancelled, a write error). */
int embed_map_write(const EmbedMapEnv *env, const EmbedMapConfig *cfg, const char *dir,
                    EmbedMapResult *out, char *err, size_t errlen);

#endif
