/* image_bench.c - decode + resize throughput of engine/data/image_decode.h on one thread.
 *
 * Usage: image_bench LIST SIZE ROUNDS   (LIST: one image path per line)
 * Decodes every file of LIST to RGB and resizes it to SIZE x SIZE (shorter side, then the centre)
 * ROUNDS times, printing one line per round: "round K: N images in S s" (S in CPU seconds). bench/image_bench.py
 * drives it beside PIL on the same files; the page cache is warmed by a first untimed pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/data/image_decode.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);   /* per core: CPU time, not wall */
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: image_bench LIST SIZE ROUNDS\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	int size = atoi(argv[2]), rounds = atoi(argv[3]);
	char **paths = NULL, line[4096];
	int n = 0, cap = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			paths = realloc(paths, sizeof(char *) * cap);
		}
		paths[n++] = strdup(line);
	}
	fclose(f);
	uint8_t *dst = malloc((size_t)3 * size * size);
	char err[1024];
	int failed = 0;
	for (int r = -1; r < rounds; r++) {
		double t0 = now();
		int ok = 0;
		for (int i = 0; i < n; i++) {
			if (img_load_file(paths[i], 3, IMG_RESIZE_SHORTER_SIDE, size, dst, err, sizeof err) == 0)
				ok++;
			else if (r < 0 && failed++ < 5)
				fprintf(stderr, "%s\n", err);
		}
		double t = now() - t0;
		if (r >= 0)
			printf("round %d: %d images in %.4f s\n", r, ok, t);
	}
	for (int i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(dst);
	return 0;
}
