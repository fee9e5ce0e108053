/* modality.h - what one sample is: the dataset modalities that formats produce and that methods
 * and encoders state they accept, as bits of a mask. One definition for engine/data/ (formats),
 * engine/encoders/ and engine/methods/. An encoder that fits DATA_IMAGES also takes the images of
 * an image + caption dataset and spectrograms (one-channel images).
 */
#ifndef SSLD_ENGINE_MODALITY_H
#define SSLD_ENGINE_MODALITY_H

enum {
	DATA_IMAGES = 1,          /* (C,H,W) images */
	DATA_VECTORS = 2,         /* (D) feature vectors */
	DATA_TEXT = 4,            /* bytes: a stream or labelled records */
	DATA_CAPTIONS = 8,        /* image + caption pairs */
	DATA_AUDIO = 16,          /* audio as (1, n_mels, frames) log-mel spectrograms */
};
#define DATA_MODALITY_COUNT 5

#endif
