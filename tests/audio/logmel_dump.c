/* logmel_dump.c - prints the log-mel spectrogram (logmel.h) of a sine, one value per line, for
 * test_logmel.py to compare with its numpy reference.
 * Usage: logmel_dump RATE N_FFT HOP N_MELS FREQ AMP SAMPLES
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../engine/data/logmel.h"

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: logmel_dump RATE N_FFT HOP N_MELS FREQ AMP SAMPLES\n");
		return 2;
	}
	int rate = atoi(argv[1]), n_fft = atoi(argv[2]), hop = atoi(argv[3]), mels = atoi(argv[4]);
	double freq = atof(argv[5]), amp = atof(argv[6]);
	int n = atoi(argv[7]);
	char err[256];
	LogMel *lm;
	if (logmel_new(rate, n_fft, hop, mels, &lm, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	float *x = malloc(sizeof(float) * (size_t)n);
	int frames = logmel_frames(n, hop);
	float *spec = malloc(sizeof(float) * (size_t)mels * frames);
	if (!x || !spec)
		return 1;
	for (int i = 0; i < n; i++)
		x[i] = (float)(amp * sin(2 * M_PI * freq * i / rate));
	logmel_compute(lm, x, n, spec);
	printf("%d %d\n", mels, frames);
	for (int i = 0; i < mels * frames; i++)
		printf("%.7g\n", spec[i]);
	logmel_free(lm);
	free(x);
	free(spec);
	return 0;
}
