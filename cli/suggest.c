/* suggest.c - "did you mean": the nearest of a few known words to a mistyped one (see suggest.h).
 * It depends on nothing else of ssld, so the serve configuration (daemon/config.c) uses it too. */
#include "suggest.h"

#include <string.h>

/* Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours ("sumbit" -> "submit" is 1). Words longer than 63 bytes are never typos of ours. */
static int edit_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n > 63 || m > 63) return 64;
	int d[64][64];
	for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
	for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
	for (size_t i = 1; i <= n; i++)
		for (size_t j = 1; j <= m; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	return d[n][m];
}

const char *cli_suggest(const char *word, const void *cands, size_t stride, size_t n)
{
	/* Close enough: one edit in a short word, two from six letters on, never all of it ("ls" is not "rm"). */
	size_t len = strlen(word);
	int limit = len >= 6 ? 2 : 1;
	const char *best = NULL;
	int best_d = limit + 1;
	for (size_t i = 0; i < n; i++) {
		const char *c = *(const char *const *)((const char *)cands + i * stride);
		if (!c) continue;
		int dist = edit_distance(word, c);
		if (dist < best_d && (size_t)dist < len) {
			best = c;
			best_d = dist;
		}
	}
	return best;
}
