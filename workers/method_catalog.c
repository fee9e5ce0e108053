/* method_catalog.c - the table of pretext methods and evaluation protocols the job spec accepts.
 *
 * This file is data plus lookups: names, families, parameters (type, default, range, help), the
 * dataset modalities and encoders each method accepts, and a complete example job per method.
 * It deliberately does not validate JSON (workers/jobspec.c does, driven by these tables) and
 * does not train anything (engine/methods/ does). Adding a method = one entry in methods[].
 */
#include "method_catalog.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Pretext methods                                                                                 */

/* The SSL health keys every contrastive / non-contrastive / multimodal method takes
 * (engine/methods/ssl_health.h; the runner reads knn_every). */
#define SSL_HEALTH_KEYS                                                                          \
	{ "health_every", PARAM_INTEGER, .def = 50, .min = 0, .max = 1000000,                          \
	  .help = "steps between embedding health metrics (std, effective rank, alignment, "           \
	          "uniformity, collapsed); 0 = off" },                                                  \
	{ "knn_every", PARAM_INTEGER, .def = 250, .min = 0, .max = 1000000,                            \
	  .help = "steps between online kNN accuracies on a small labelled slice of the training "      \
	          "split (health/knn_accuracy); 0 = off" }

/* masked_lm: the two replacement shares must leave a non-negative share of kept bytes. */
static int masked_lm_validate(const JobSpec *js, SpecError *err)
{
	double m = jobspec_param(js, "mask_token_prob"), r = jobspec_param(js, "random_token_prob");
	if (m + r <= 1.0 + 1e-9)
		return 0;
	snprintf(err->code, sizeof err->code, "invalid_field");
	snprintf(err->field, sizeof err->field, "params.random_token_prob");
	snprintf(err->message, sizeof err->message,
	         "params.random_token_prob: mask_token_prob (%g) + random_token_prob (%g) must be at "
	         "most 1", m, r);
	err->http_status = 400;
	return -1;
}

static const MethodInfo methods[] = {
	{
		.name = "simclr",
		.family = "contrastive",
		.summary = "SimCLR: two augmented views of each image, NT-Xent loss pulls the pair together "
		           "and pushes the other 2B-2 samples of the batch away",
		.default_encoder = ENC_CNN,
		.datasets = DATA_IMAGES,
		.views = 2,
		.default_augment = "simclr",
		.params = {
			{ "temperature", PARAM_NUMBER, .def = 0.5, .min = 0, .max = 10,
			  .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "NT-Xent softmax temperature (lower = harder negatives)" },
			{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
			  .help = "hidden width of the projection head (BN + ReLU)" },
			{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
			  .help = "output size of the projection head, where the loss is computed" },
		},
		.example =
			"{\n"
			"  \"name\": \"simclr-fmnist\",\n"
			"  \"method\": \"simclr\",\n"
			"  \"params\": {\"temperature\": 0.5, \"proj_hidden\": 512, \"proj_dim\": 128},\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": {\"encoder\": \"cnn\"},\n"
			"  \"augment\": \"simclr\",\n"
			"  \"pretrain\": {\"epochs\": 10, \"batch_size\": 256,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.001},\n"
			"               \"schedule\": {\"name\": \"cosine\", \"warmup_epochs\": 1}},\n"
			"  \"evaluations\": [\n"
			"    {\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1.0]},\n"
			"    {\"protocol\": \"knn\", \"k\": 20},\n"
			"    {\"protocol\": \"supervised\", \"label_fractions\": [0.01]}\n"
			"  ],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	/* ---- self-predictive image methods (engine/methods/autoencoder.c, vae.c, mae.c, rotation.c) */
	{
		.name = "autoencoder",
		.family = "self-predictive",
		.summary = "autoencoder: encoder -> latent_dim bottleneck -> decoder (MLP or transposed "
		           "convolutions, following the encoder), trained to reproduce its input",
		.default_encoder = ENC_MLP,
		.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 1,
		.default_augment = "none",
		.params = {
			{ "latent_dim", PARAM_INTEGER, .def = 32, .min = 1, .max = 4096,
			  .help = "size of the bottleneck code; the encoder output is the code when "
			          "model.out_dim equals it, else a linear layer \"bottleneck\" maps to it" },
			{ "loss", PARAM_ENUM, .def = 0, .def_str = "mse", .choices = "mse|bce",
			  .help = "reconstruction loss: mse of sigmoid outputs, or binary cross-entropy" },
			{ "decoder", PARAM_ENUM, .def = 0, .def_str = "auto", .choices = "auto|mlp|conv",
			  .help = "decoder kind; auto = conv for a cnn encoder, mlp otherwise" },
		},
		.example =
			"{\n"
			"  \"name\": \"autoencoder-fmnist\",\n"
			"  \"method\": \"autoencoder\",\n"
			"  \"params\": {\"latent_dim\": 32, \"loss\": \"mse\"},\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": {\"encoder\": \"mlp\", \"hidden\": [512, 256], \"out_dim\": 32},\n"
			"  \"pretrain\": {\"epochs\": 10, \"batch_size\": 128,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.002}},\n"
			"  \"evaluations\": [{\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 1.0]}],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	{
		.name = "denoising_autoencoder",
		.family = "self-predictive",
		.summary = "denoising autoencoder: the autoencoder fed a corrupted input (gaussian, masking "
		           "or salt-and-pepper noise) and trained to output the clean image",
		.default_encoder = ENC_MLP,
		.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 1,
		.default_augment = "none",
		.params = {
			{ "latent_dim", PARAM_INTEGER, .def = 32, .min = 1, .max = 4096,
			  .help = "size of the bottleneck code; the encoder output is the code when "
			          "model.out_dim equals it, else a linear layer \"bottleneck\" maps to it" },
			{ "loss", PARAM_ENUM, .def = 0, .def_str = "mse", .choices = "mse|bce",
			  .help = "reconstruction loss: mse of sigmoid outputs, or binary cross-entropy" },
			{ "decoder", PARAM_ENUM, .def = 0, .def_str = "auto", .choices = "auto|mlp|conv",
			  .help = "decoder kind; auto = conv for a cnn encoder, mlp otherwise" },
			{ "noise", PARAM_ENUM, .def = 0, .def_str = "gaussian",
			  .choices = "gaussian|masking|salt_pepper",
			  .help = "corruption: additive gaussian (clamped to [0,1]), masking (pixels set to "
			          "0) or salt-and-pepper (pixels set to 0 or 1)" },
			{ "noise_level", PARAM_NUMBER, .def = 0.3, .min = 0, .max = 1,
			  .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "gaussian: standard deviation; masking / salt_pepper: share of pixels hit" },
		},
		.example =
			"{\n"
			"  \"name\": \"denoising-autoencoder-fmnist\",\n"
			"  \"method\": \"denoising_autoencoder\",\n"
			"  \"params\": {\"latent_dim\": 64, \"noise\": \"gaussian\", \"noise_level\": 0.3},\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": {\"encoder\": \"mlp\", \"hidden\": [512, 256], \"out_dim\": 64},\n"
			"  \"pretrain\": {\"epochs\": 10, \"batch_size\": 128,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.002}},\n"
			"  \"evaluations\": [{\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 1.0]}],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	{
		.name = "vae",
		.family = "self-predictive",
		.summary = "variational autoencoder: encoder -> (mu, log sigma^2), reparameterised sample, "
		           "decoder; loss = Bernoulli reconstruction + beta * KL; reports the negative "
		           "ELBO in nats per image and samples new images",
		.default_encoder = ENC_MLP,
		.encoders = ENC_BIT(ENC_MLP) | ENC_BIT(ENC_CNN) | ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 1,
		.default_augment = "none",
		.params = {
			{ "latent_dim", PARAM_INTEGER, .def = 16, .min = 1, .max = 4096,
			  .help = "size of the latent z" },
			{ "beta", PARAM_NUMBER, .def = 1.0, .min = 0, .max = 100,
			  .help = "weight of the KL term (1 = the ELBO; > 1 = beta-VAE)" },
			{ "kl_warmup", PARAM_NUMBER, .def = 0, .min = 0, .max = 1,
			  .help = "share of the planned steps over which beta ramps up linearly from 0 "
			          "(0 = no warm-up)" },
			{ "decoder", PARAM_ENUM, .def = 0, .def_str = "auto", .choices = "auto|mlp|conv",
			  .help = "decoder kind; auto = conv for a cnn encoder, mlp otherwise" },
		},
		.example =
			"{\n"
			"  \"name\": \"vae-fmnist\",\n"
			"  \"method\": \"vae\",\n"
			"  \"params\": {\"latent_dim\": 16, \"beta\": 1.0, \"kl_warmup\": 0.1},\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": {\"encoder\": \"mlp\", \"hidden\": [512, 256], \"out_dim\": 128},\n"
			"  \"pretrain\": {\"epochs\": 10, \"batch_size\": 128,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.001}},\n"
			"  \"evaluations\": [{\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 1.0]}],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	{
		.name = "mae",
		.family = "self-predictive",
		.summary = "masked autoencoder: a ViT encodes a random (1 - mask_ratio) share of the "
		           "patches; a light Transformer decoder predicts the pixels of the masked ones",
		.default_encoder = ENC_VIT,
		.encoders = ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 1,
		.default_augment = "none",
		.params = {
			{ "mask_ratio", PARAM_NUMBER, .def = 0.75, .min = 0, .max = 1,
			  .flags = PARAM_MIN_EXCLUSIVE | PARAM_MAX_EXCLUSIVE,
			  .help = "share of the patches hidden from the encoder" },
			{ "decoder_dim", PARAM_INTEGER, .def = 64, .min = 8, .max = 2048,
			  .help = "width of the decoder's tokens" },
			{ "decoder_depth", PARAM_INTEGER, .def = 2, .min = 1, .max = 16,
			  .help = "Transformer blocks in the decoder" },
			{ "decoder_heads", PARAM_INTEGER, .def = 4, .min = 1, .max = 64,
			  .help = "attention heads of the decoder (must divide decoder_dim)" },
			{ "norm_pix_loss", PARAM_BOOLEAN, .def = 0,
			  .help = "targets are each patch normalised by its own mean and std" },
		},
		.example =
			"{\n"
			"  \"name\": \"mae-fmnist\",\n"
			"  \"method\": \"mae\",\n"
			"  \"params\": {\"mask_ratio\": 0.75, \"decoder_dim\": 64, \"decoder_depth\": 2},\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": {\"encoder\": \"vit\", \"patch\": 4, \"dim\": 128, \"depth\": 4, "
			"\"heads\": 4},\n"
			"  \"pretrain\": {\"epochs\": 10, \"batch_size\": 256,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.001}},\n"
			"  \"evaluations\": [{\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 1.0]}],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	{
		.name = "rotation",
		.family = "self-predictive",
		.summary = "rotation prediction: each image at 0, 90, 180 and 270 degrees, the encoder and "
		           "a small head classify the rotation (4-way cross-entropy)",
		.default_encoder = ENC_CNN,
		.datasets = DATA_IMAGES,
		.views = 1,
		.default_augment = "none",
		.params = {
			{ "head_hidden", PARAM_INTEGER, .def = 256, .min = 0, .max = 8192,
			  .help = "hidden width of the rotation classifier (0 = a linear head)" },
		},
		.example =
			"{\n"
			"  \"name\": \"rotation-fmnist\",\n"
			"  \"method\": \"rotation\",\n"
			"  \"params\": {\"head_hidden\": 256},\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": {\"encoder\": \"cnn\"},\n"
			"  \"pretrain\": {\"epochs\": 5, \"batch_size\": 128,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.002}},\n"
			"  \"evaluations\": [{\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 1.0]}],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	/* ---- language models on bytes (issue 7: engine/methods/masked_lm.c, autoregressive_lm.c) */
	{
		.name = "masked_lm",
		.family = "self-predictive",
		.summary = "BERT-style masked language model on bytes: a bidirectional Transformer predicts "
		           "the original byte at mask_prob of the positions (80% masked, 10% random, 10% "
		           "kept); reports masked-byte accuracy beside the unigram baseline",
		.default_encoder = ENC_TRANSFORMER,
		.encoders = ENC_BIT(ENC_TRANSFORMER),
		.datasets = DATA_TEXT,
		.views = 1,
		.default_augment = "none",
		.params = {
			{ "mask_prob", PARAM_NUMBER, .def = 0.15, .min = 0, .max = 1,
			  .flags = PARAM_MIN_EXCLUSIVE | PARAM_MAX_EXCLUSIVE,
			  .help = "share of the byte positions selected as prediction targets" },
			{ "mask_token_prob", PARAM_NUMBER, .def = 0.8, .min = 0, .max = 1,
			  .help = "of the selected positions: the share replaced by the mask byte (0)" },
			{ "random_token_prob", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 1,
			  .help = "of the selected positions: the share replaced by a random byte (the rest "
			          "keep their byte); mask_token_prob + random_token_prob <= 1" },
		},
		.validate = masked_lm_validate,
		.example =
			"{\n"
			"  \"name\": \"masked-lm-fortunes\",\n"
			"  \"method\": \"masked_lm\",\n"
			"  \"params\": {\"mask_prob\": 0.15, \"mask_token_prob\": 0.8, \"random_token_prob\": 0.1},\n"
			"  \"dataset\": {\"format\": \"text_records\", \"dir\": \"/usr/share/games/fortunes\", "
			"\"record_bytes\": 64, \"test_fraction\": 0.1},\n"
			"  \"model\": {\"encoder\": \"transformer\", \"dim\": 128, \"depth\": 2, \"heads\": 4, "
			"\"context\": 64},\n"
			"  \"pretrain\": {\"epochs\": 20, \"max_steps\": 24000, \"batch_size\": 8, "
			"\"grad_clip\": 1.0,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.001, \"weight_decay\": 0.01, "
			"\"betas\": [0.9, 0.99]},\n"
			"               \"schedule\": {\"name\": \"cosine\", \"warmup_epochs\": 0.1}},\n"
			"  \"evaluations\": [{\"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1.0]}],\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	{
		.name = "autoregressive_lm",
		.family = "self-predictive",
		.summary = "GPT-style language model on bytes: a causal Transformer predicts the next byte; "
		           "reports test bits per byte and continues prompts (ssld generate, "
		           "POST /v1/jobs/{id}/generate) with temperature, top-k and top-p sampling",
		.default_encoder = ENC_TRANSFORMER,
		.encoders = ENC_BIT(ENC_TRANSFORMER),
		.datasets = DATA_TEXT,
		.views = 1,
		.causal = 1,
		.default_augment = "none",
		.example =
			"{\n"
			"  \"name\": \"autoregressive-lm-fortunes\",\n"
			"  \"method\": \"autoregressive_lm\",\n"
			"  \"dataset\": {\"format\": \"text\", \"files\": [\"/usr/share/games/fortunes/fortunes\", "
			"\"/usr/share/games/fortunes/wisdom\"]},\n"
			"  \"model\": {\"encoder\": \"transformer\", \"dim\": 128, \"depth\": 4, \"heads\": 4, "
			"\"context\": 128},\n"
			"  \"pretrain\": {\"epochs\": 5, \"time_budget_s\": 300, \"batch_size\": 8,\n"
			"               \"optimizer\": {\"name\": \"adamw\", \"lr\": 0.001},\n"
			"               \"schedule\": {\"name\": \"cosine\", \"warmup_epochs\": 0.2}},\n"
			"  \"seed\": 1\n"
			"}\n",
	},
	/* ---- contrastive, non-contrastive and multimodal methods (issue 8: engine/methods/moco.c,
	 * byol.c, barlow_twins.c, vicreg.c, clip.c; health metrics in ssl_health.c) */
	{
		.name = "moco",
		.family = "contrastive",
		.summary = "MoCo v2: a query encoder and a momentum (EMA) key encoder; InfoNCE of each "
		           "query against its key and a queue of past keys as negatives",
		.default_encoder = ENC_CNN,
		.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 2,
		.default_augment = "simclr",
		.params = {
			{ "temperature", PARAM_NUMBER, .def = 0.2, .min = 0, .max = 10,
			  .flags = PARAM_MIN_EXCLUSIVE, .help = "InfoNCE softmax temperature" },
			{ "queue_size", PARAM_INTEGER, .def = 4096, .min = 1, .max = 1048576,
			  .help = "negative keys kept in the queue (4096 is ~7% of Fashion-MNIST's 60000)" },
			{ "momentum", PARAM_NUMBER, .def = 0.99, .min = 0, .max = 1,
			  .help = "key-encoder EMA momentum m at the start (key = m*key + (1-m)*query)" },
			{ "momentum_cosine", PARAM_BOOLEAN, .def = 1,
			  .help = "raise the momentum from `momentum` to 1 on a cosine schedule (false = "
			          "constant)" },
			{ "symmetric", PARAM_BOOLEAN, .def = 1,
			  .help = "both views serve as queries and keys; the loss is the mean of both "
			          "directions" },
			{ "key_bn_groups", PARAM_INTEGER, .def = 4, .min = 1, .max = 64,
			  .help = "shuffle BN: the key batch is shuffled and normalised in this many groups" },
			{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
			  .help = "hidden width of the MLP head (fc-ReLU-fc, as MoCo v2)" },
			{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
			  .help = "embedding size of queries, keys and the queue" },
			SSL_HEALTH_KEYS,
		},
		.example =
			"{\n"
			"  \"name\": \"moco-fashion-mnist\",\n"
			"  \"method\": \"moco\",\n"
			"  \"params\": { \"temperature\": 0.2, \"queue_size\": 4096, \"momentum\": 0.99, \"momentum_cosine\": true,\n"
			"              \"symmetric\": true, \"key_bn_groups\": 4, \"proj_hidden\": 512, \"proj_dim\": 128,\n"
			"              \"health_every\": 50, \"knn_every\": 250 },\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": { \"encoder\": \"cnn\", \"channels\": [32, 64, 128], \"batchnorm\": true },\n"
			"  \"augment\": \"simclr\",\n"
			"  \"pretrain\": {\n"
			"    \"epochs\": 30,\n"
			"    \"time_budget_s\": 480,\n"
			"    \"batch_size\": 256,\n"
			"    \"optimizer\": { \"name\": \"adamw\", \"lr\": 0.002, \"weight_decay\": 0.000001 },\n"
			"    \"schedule\": { \"name\": \"cosine\", \"warmup_epochs\": 1 }\n"
			"  },\n"
			"  \"evaluations\": [\n"
			"    { \"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"knn\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"supervised\", \"label_fractions\": [0.01] }\n"
			"  ],\n"
			"  \"seed\": 1,\n"
			"  \"threads\": 2,\n"
			"  \"checkpoint_interval_s\": 60\n"
			"}\n",
	},
	{
		.name = "byol",
		.family = "non-contrastive",
		.summary = "BYOL: an online network with projector and predictor regresses the projection "
		           "of the other view by a target network that is an EMA of the online one",
		.default_encoder = ENC_CNN,
		.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 2,
		.default_augment = "simclr",
		.params = {
			{ "tau_base", PARAM_NUMBER, .def = 0.99, .min = 0, .max = 1,
			  .help = "target EMA rate at the start; rises to 1 on a cosine schedule (paper: 0.996 "
			          "for long runs, 0.99 for short ones)" },
			{ "predictor", PARAM_BOOLEAN, .def = 1,
			  .help = "use the predictor MLP (false makes BYOL collapse: a demonstration of the "
			          "collapse flag)" },
			{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
			  .help = "hidden width of the projector and the predictor (BN + ReLU)" },
			{ "proj_dim", PARAM_INTEGER, .def = 128, .min = 1, .max = 4096,
			  .help = "output size of the projector and the predictor" },
			SSL_HEALTH_KEYS,
		},
		.example =
			"{\n"
			"  \"name\": \"byol-fashion-mnist\",\n"
			"  \"method\": \"byol\",\n"
			"  \"params\": { \"tau_base\": 0.99, \"predictor\": true, \"proj_hidden\": 512, \"proj_dim\": 128,\n"
			"              \"health_every\": 50, \"knn_every\": 250 },\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": { \"encoder\": \"cnn\", \"channels\": [32, 64, 128], \"batchnorm\": true },\n"
			"  \"augment\": { \"preset\": \"simclr\", \"blur\": { \"p\": 1.0 } },\n"
			"  \"augment2\": { \"preset\": \"simclr\", \"blur\": { \"p\": 0.1 }, \"solarize\": { \"p\": 0.2 } },\n"
			"  \"pretrain\": {\n"
			"    \"epochs\": 30,\n"
			"    \"time_budget_s\": 480,\n"
			"    \"batch_size\": 256,\n"
			"    \"optimizer\": { \"name\": \"adamw\", \"lr\": 0.002, \"weight_decay\": 0.000001 },\n"
			"    \"schedule\": { \"name\": \"cosine\", \"warmup_epochs\": 1 }\n"
			"  },\n"
			"  \"evaluations\": [\n"
			"    { \"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"knn\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"supervised\", \"label_fractions\": [0.01] }\n"
			"  ],\n"
			"  \"seed\": 1,\n"
			"  \"threads\": 2,\n"
			"  \"checkpoint_interval_s\": 60\n"
			"}\n",
	},
	{
		.name = "barlow_twins",
		.family = "non-contrastive",
		.summary = "Barlow Twins: the cross-correlation of the two views' batch-standardised "
		           "embeddings is driven to the identity (redundancy reduction)",
		.default_encoder = ENC_CNN,
		.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 2,
		.default_augment = "simclr",
		.params = {
			{ "lambda", PARAM_NUMBER, .def = 0.005, .min = 0, .max = 10,
			  .help = "weight of the off-diagonal (redundancy) terms" },
			{ "proj_hidden", PARAM_INTEGER, .def = 1024, .min = 1, .max = 8192,
			  .help = "width of the projector's two hidden layers (BN + ReLU)" },
			{ "proj_dim", PARAM_INTEGER, .def = 1024, .min = 2, .max = 8192,
			  .help = "embedding size D: the cross-correlation matrix is D x D" },
			SSL_HEALTH_KEYS,
		},
		.example =
			"{\n"
			"  \"name\": \"barlow-twins-fashion-mnist\",\n"
			"  \"method\": \"barlow_twins\",\n"
			"  \"params\": { \"lambda\": 0.005, \"proj_hidden\": 1024, \"proj_dim\": 1024,\n"
			"              \"health_every\": 50, \"knn_every\": 250 },\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": { \"encoder\": \"cnn\", \"channels\": [32, 64, 128], \"batchnorm\": true },\n"
			"  \"augment\": \"simclr\",\n"
			"  \"pretrain\": {\n"
			"    \"epochs\": 30,\n"
			"    \"time_budget_s\": 480,\n"
			"    \"batch_size\": 256,\n"
			"    \"optimizer\": { \"name\": \"adamw\", \"lr\": 0.002, \"weight_decay\": 0.000001 },\n"
			"    \"schedule\": { \"name\": \"cosine\", \"warmup_epochs\": 1 }\n"
			"  },\n"
			"  \"evaluations\": [\n"
			"    { \"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"knn\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"supervised\", \"label_fractions\": [0.01] }\n"
			"  ],\n"
			"  \"seed\": 1,\n"
			"  \"threads\": 2,\n"
			"  \"checkpoint_interval_s\": 60\n"
			"}\n",
	},
	{
		.name = "vicreg",
		.family = "non-contrastive",
		.summary = "VICReg: invariance (MSE between views), variance (a hinge keeping each "
		           "dimension's std >= 1) and covariance (decorrelated dimensions) terms",
		.default_encoder = ENC_CNN,
		.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT),
		.datasets = DATA_IMAGES,
		.views = 2,
		.default_augment = "simclr",
		.params = {
			{ "sim_weight", PARAM_NUMBER, .def = 25, .min = 0, .max = 1000,
			  .help = "weight of the invariance term (lambda)" },
			{ "var_weight", PARAM_NUMBER, .def = 25, .min = 0, .max = 1000,
			  .help = "weight of the variance term (mu)" },
			{ "cov_weight", PARAM_NUMBER, .def = 1, .min = 0, .max = 1000,
			  .help = "weight of the covariance term (nu)" },
			{ "proj_hidden", PARAM_INTEGER, .def = 512, .min = 1, .max = 8192,
			  .help = "width of the expander's two hidden layers (BN + ReLU)" },
			{ "proj_dim", PARAM_INTEGER, .def = 512, .min = 2, .max = 8192,
			  .help = "embedding size D where the three terms are computed" },
			SSL_HEALTH_KEYS,
		},
		.example =
			"{\n"
			"  \"name\": \"vicreg-fashion-mnist\",\n"
			"  \"method\": \"vicreg\",\n"
			"  \"params\": { \"sim_weight\": 25, \"var_weight\": 25, \"cov_weight\": 1,\n"
			"              \"proj_hidden\": 512, \"proj_dim\": 512, \"health_every\": 50, \"knn_every\": 250 },\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"model\": { \"encoder\": \"cnn\", \"channels\": [32, 64, 128], \"batchnorm\": true },\n"
			"  \"augment\": \"simclr\",\n"
			"  \"pretrain\": {\n"
			"    \"epochs\": 30,\n"
			"    \"time_budget_s\": 480,\n"
			"    \"batch_size\": 256,\n"
			"    \"optimizer\": { \"name\": \"adamw\", \"lr\": 0.002, \"weight_decay\": 0.000001 },\n"
			"    \"schedule\": { \"name\": \"cosine\", \"warmup_epochs\": 1 }\n"
			"  },\n"
			"  \"evaluations\": [\n"
			"    { \"protocol\": \"linear_probe\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"knn\", \"label_fractions\": [0.01, 0.1, 1.0] },\n"
			"    { \"protocol\": \"supervised\", \"label_fractions\": [0.01] }\n"
			"  ],\n"
			"  \"seed\": 1,\n"
			"  \"threads\": 2,\n"
			"  \"checkpoint_interval_s\": 60\n"
			"}\n",
	},
	{
		.name = "clip",
		.family = "multimodal",
		.summary = "CLIP: an image encoder and a text encoder (hashed byte n-grams + MLP) aligned by "
		           "a symmetric InfoNCE with a learnable temperature; zero-shot classification of "
		           "the test images from held-out prompt templates",
		.default_encoder = ENC_CNN,
		.encoders = ENC_BIT(ENC_CNN) | ENC_BIT(ENC_MLP) | ENC_BIT(ENC_VIT),
		.datasets = DATA_CAPTIONS,
		.views = 1,
		.default_augment = "light",
		.params = {
			{ "embed_dim", PARAM_INTEGER, .def = 128, .min = 2, .max = 4096,
			  .help = "size of the shared image-text embedding space" },
			{ "text_dim", PARAM_INTEGER, .def = 256, .min = 2, .max = 4096,
			  .help = "width of the text encoder (n-gram embeddings and its hidden layer)" },
			{ "text_buckets", PARAM_INTEGER, .def = 8192, .min = 16, .max = 1048576,
			  .help = "hash buckets for the caption's words and byte trigrams" },
			{ "temperature_init", PARAM_NUMBER, .def = 0.07, .min = 0, .max = 10,
			  .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "initial temperature T (learned as logit_scale = log(1/T))" },
			{ "max_logit_scale", PARAM_NUMBER, .def = 100, .min = 1, .max = 10000,
			  .help = "clamp on 1/T after every step" },
			SSL_HEALTH_KEYS,
		},
		.example =
			"{\n"
			"  \"name\": \"clip-fashion-mnist\",\n"
			"  \"method\": \"clip\",\n"
			"  \"params\": { \"embed_dim\": 128, \"text_dim\": 256, \"text_buckets\": 8192, \"temperature_init\": 0.07,\n"
			"              \"max_logit_scale\": 100, \"health_every\": 50, \"knn_every\": 250 },\n"
			"  \"dataset\": { \"format\": \"captions\" },\n"
			"  \"model\": { \"encoder\": \"cnn\", \"channels\": [32, 64, 128], \"batchnorm\": true },\n"
			"  \"augment\": \"light\",\n"
			"  \"pretrain\": {\n"
			"    \"epochs\": 10,\n"
			"    \"time_budget_s\": 300,\n"
			"    \"batch_size\": 256,\n"
			"    \"optimizer\": { \"name\": \"adamw\", \"lr\": 0.002, \"weight_decay\": 0.000001 },\n"
			"    \"schedule\": { \"name\": \"cosine\", \"warmup_epochs\": 1 }\n"
			"  },\n"
			"  \"evaluations\": [\n"
			"    { \"protocol\": \"linear_probe\", \"label_fractions\": [0.01] }\n"
			"  ],\n"
			"  \"seed\": 1,\n"
			"  \"threads\": 2,\n"
			"  \"checkpoint_interval_s\": 60\n"
			"}\n",
	},
	{
		.name = "none",
		.family = "baseline",
		.summary = "no pretraining: run only the evaluations (a supervised baseline, or probes of a "
		           "randomly initialised or init_from encoder)",
		.default_encoder = ENC_CNN,
		.datasets = DATA_IMAGES | DATA_VECTORS | DATA_TEXT | DATA_CAPTIONS,
		.views = 0,
		.default_augment = "none",
		.example =
			"{\n"
			"  \"name\": \"supervised-baseline\",\n"
			"  \"method\": \"none\",\n"
			"  \"dataset\": \"fashion-mnist\",\n"
			"  \"evaluations\": [\n"
			"    {\"protocol\": \"supervised\", \"label_fractions\": [0.01, 0.1], \"epochs\": 30},\n"
			"    {\"protocol\": \"linear_probe\", \"label_fractions\": [0.01]}\n"
			"  ]\n"
			"}\n",
	},
};

/* ---------------------------------------------------------------------------------------------- */
/* Evaluation protocols. Common keys of evaluations[i] (protocol, label_fractions, labels_per_class,
 * label_rule) are handled by jobspec.c; the keys here are the protocol-specific ones.              */

#define KEY_EPOCHS(d) { "epochs", PARAM_INTEGER, .def = (d), .min = 1, .max = 10000, \
                        .help = "passes over the labelled subset (linear_probe: optimiser iterations)" }
#define KEY_BATCH(d) { "batch_size", PARAM_INTEGER, .def = (d), .min = 1, .max = 8192, \
                       .help = "minibatch size" }

static const ProtocolInfo protocols[] = {
	{
		.name = "linear_probe",
		.protocol = EVAL_LINEAR_PROBE,
		.summary = "frozen encoder features -> multinomial logistic regression on the labels",
		.needs_labels = 1,
		.keys = {
			KEY_EPOCHS(100),
			KEY_BATCH(256),
			{ "lr", PARAM_NUMBER, .def = 0, .min = 0, .max = 10,
			  .flags = PARAM_MIN_EXCLUSIVE | PARAM_DEFAULT_AUTO,
			  .help = "learning rate (default: automatic)" },
			{ "weight_decay", PARAM_NUMBER, .def = 0, .min = 0, .max = 1, .flags = PARAM_DEFAULT_AUTO,
			  .help = "L2 penalty (default: chosen by 5-fold cross-validation on the labels; one fold above 2000 labels)" },
		},
	},
	{
		.name = "finetune",
		.protocol = EVAL_FINETUNE,
		.summary = "encoder + linear head trained on the labels, encoder at a reduced learning rate",
		.needs_labels = 1,
		.keys = {
			KEY_EPOCHS(30),
			KEY_BATCH(64),
			{ "lr", PARAM_NUMBER, .def = 1e-3, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "learning rate of the head" },
			{ "encoder_lr_scale", PARAM_NUMBER, .def = 0.1, .min = 0, .max = 1,
			  .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "encoder learning rate = lr * encoder_lr_scale" },
			{ "weight_decay", PARAM_NUMBER, .def = 1e-4, .min = 0, .max = 1,
			  .help = "weight decay" },
			{ "augment", PARAM_BOOLEAN, .def = 1,
			  .help = "light augmentation (small shifts, flips) of the labelled images" },
		},
	},
	{
		.name = "knn",
		.protocol = EVAL_KNN,
		.summary = "cosine k-nearest-neighbours on frozen features, temperature-weighted votes",
		.needs_labels = 1,
		.keys = {
			{ "k", PARAM_INTEGER, .def = 20, .min = 1, .max = 1000,
			  .help = "neighbours that vote" },
			{ "temperature", PARAM_NUMBER, .def = 0.07, .min = 0, .max = 100,
			  .flags = PARAM_MIN_EXCLUSIVE, .help = "vote weight exp(similarity / temperature)" },
		},
	},
	{
		.name = "supervised",
		.protocol = EVAL_SUPERVISED,
		.summary = "the same architecture trained from random initialisation on the same labels: "
		           "the baseline an SSL result is compared against",
		.needs_labels = 1,
		.keys = {
			KEY_EPOCHS(30),
			KEY_BATCH(64),
			{ "lr", PARAM_NUMBER, .def = 1e-3, .min = 0, .max = 10, .flags = PARAM_MIN_EXCLUSIVE,
			  .help = "learning rate" },
			{ "weight_decay", PARAM_NUMBER, .def = 1e-4, .min = 0, .max = 1,
			  .help = "weight decay" },
			{ "augment", PARAM_BOOLEAN, .def = 1,
			  .help = "light augmentation (small shifts, flips) of the labelled images" },
		},
	},
};

/* ---------------------------------------------------------------------------------------------- */
/* Lookups                                                                                         */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

int method_catalog_count(void)
{
	return COUNT(methods);
}

const MethodInfo *method_catalog_at(int i)
{
	return i >= 0 && i < COUNT(methods) ? &methods[i] : NULL;
}

const MethodInfo *method_catalog_find(const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < COUNT(methods); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

int method_param_count(const MethodInfo *m)
{
	int n = 0;
	while (n < METHOD_MAX_PARAMS && m->params[n].name)
		n++;
	return n;
}

const ParamDef *method_param_def(const MethodInfo *m, const char *name)
{
	for (int i = 0; i < METHOD_MAX_PARAMS && m->params[i].name; i++)
		if (strcmp(m->params[i].name, name) == 0)
			return &m->params[i];
	return NULL;
}

int protocol_catalog_count(void)
{
	return COUNT(protocols);
}

const ProtocolInfo *protocol_catalog_at(int i)
{
	return i >= 0 && i < COUNT(protocols) ? &protocols[i] : NULL;
}

const ProtocolInfo *protocol_catalog_find(const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < COUNT(protocols); i++)
		if (strcmp(protocols[i].name, name) == 0)
			return &protocols[i];
	return NULL;
}

const ProtocolInfo *protocol_catalog_get(EvalProtocol p)
{
	for (int i = 0; i < COUNT(protocols); i++)
		if (protocols[i].protocol == p)
			return &protocols[i];
	return NULL;
}

const ParamDef *protocol_key_def(const ProtocolInfo *p, const char *name)
{
	for (int i = 0; i < PROTOCOL_MAX_KEYS && p->keys[i].name; i++)
		if (strcmp(p->keys[i].name, name) == 0)
			return &p->keys[i];
	return NULL;
}

const char *catalog_param_type_name(ParamType t)
{
	switch (t) {
	case PARAM_NUMBER: return "number";
	case PARAM_INTEGER: return "integer";
	case PARAM_BOOLEAN: return "boolean";
	case PARAM_STRING: return "string";
	case PARAM_ENUM: return "enum";
	}
	return "?";
}

const char *catalog_data_names(unsigned mask, char *buf, size_t len)
{
	static const char *const names[] = { "images", "vectors", "text", "captions" };
	size_t at = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (int i = 0; i < COUNT(names); i++) {
		if (!(mask & (1u << i)))
			continue;
		int n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", names[i]);
		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
	}
	return buf;
}
