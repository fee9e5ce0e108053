/* fuzz_audio.c - libFuzzer harness for the audio decoder and the log-mel front end
 * (engine/data/audio_decode.h: audio_decode_memory; logmel.h).
 *
 * Input: one control byte, then the file (WAV, FLAC, AIFF... whatever libsndfile recognises).
 * Control bits 0-1: output rate 8000, 16000, 22050 or 44100 Hz; bits 2-4: clip length
 * 1 + 97 * k samples. A decode must either fail with a message, or return a clip of finite samples
 * whose log-mel spectrogram is finite too.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/alloc.h"
#include "../../engine/data/audio_decode.h"
#include "../../engine/data/logmel.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const int rates[4] = { 8000, 16000, 22050, 44100 };
	AudioDecodeConfig c = { .sample_rate = rates[data[0] & 3],
	                        .clip_samples = 1 + 97 * ((data[0] >> 2) & 7) };
	float *clip = eng_malloc(sizeof(float) * (size_t)c.clip_samples);
	if (!clip)
		abort();
	char err[512] = "";
	if (audio_decode_memory(data + 1, size - 1, "fuzz", &c, clip, err, sizeof err) < 0) {
		if (!err[0])
			abort();
		eng_free(clip);
		return 0;
	}
	for (int i = 0; i < c.clip_samples; i++)
		if (!isfinite(clip[i]))
			abort();
	LogMel *lm;
	int hop = 40, frames = logmel_frames(c.clip_samples, hop);
	if (frames > 0) {
		if (logmel_new(c.sample_rate, 128, hop, 16, &lm, err, sizeof err) < 0)
			abort();
		float *spec = eng_malloc(sizeof(float) * 16 * (size_t)frames);
		if (!spec)
			abort();
		logmel_compute(lm, clip, c.clip_samples, spec);
		for (int i = 0; i < 16 * frames; i++)
			if (!isfinite(spec[i]))
				abort();
		eng_free(spec);
		logmel_free(lm);
	}
	eng_free(clip);
	return 0;
}
