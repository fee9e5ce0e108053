/* export_torchvision.c - ResNet weights under torchvision's state-dict names (see the header).
 *
 * It deliberately writes and reads through checkpoint.h (one safetensors implementation): the
 * save copies the encoder's tensors into a scratch ParamSet under their torchvision names, the
 * load opens the file with checkpoint_open and copies after every name and shape has matched.
 * It knows the names of a torchvision ResNet and, for checks that must not build one, the shapes
 * resnet.h's layout gives them; nothing of other architectures.
 */
#include "export_torchvision.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "checkpoint.h"

/* ---------------------------------------------------------------------------------------------- */
/* Names */

static int is_bn_field(const char *s)
{
	return strcmp(s, "weight") == 0 || strcmp(s, "bias") == 0 ||
	       strcmp(s, "running_mean") == 0 || strcmp(s, "running_var") == 0;
}

/* A decimal number without sign or leading zeros at *s; advances *s. -1 if there is none. */
static long read_index(const char **s)
{
	const char *p = *s;
	if (!isdigit((unsigned char)*p) || (p[0] == '0' && isdigit((unsigned char)p[1])))
		return -1;
	char *end;
	long v = strtol(p, &end, 10);
	if (v > 1000)
		return -1;
	*s = end;
	return v;
}

int tv_resnet_name_ok(const char *s)
{
	if (strcmp(s, "conv1.weight") == 0)
		return 1;
	if (strncmp(s, "bn1.", 4) == 0)
		return is_bn_field(s + 4);
	if (strncmp(s, "layer", 5) != 0)
		return 0;
	s += 5;
	long stage = read_index(&s);
	if (stage < 1 || stage > 4 || *s++ != '.' || read_index(&s) < 0 || *s++ != '.')
		return 0;
	if (strncmp(s, "conv", 4) == 0 && s[4] >= '1' && s[4] <= '3')
		return strcmp(s + 5, ".weight") == 0;
	if (strncmp(s, "bn", 2) == 0 && s[2] >= '1' && s[2] <= '3' && s[3] == '.')
		return is_bn_field(s + 4);
	if (strcmp(s, "downsample.0.weight") == 0)
		return 1;
	if (strncmp(s, "downsample.1.", 13) == 0)
		return is_bn_field(s + 13);
	return 0;
}

/* The name without "<prefix>.", or NULL when it is not under the prefix. */
static const char *strip_prefix(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (pl == 0)
		return name;
	if (strncmp(name, prefix, pl) != 0 || name[pl] != '.')
		return NULL;
	return name + pl + 1;
}

int tv_resnet_name(const char *name, const char *prefix, char *out, size_t len)
{
	const char *bare = strip_prefix(name, prefix);
	if (!bare || !tv_resnet_name_ok(bare))
		return -EINVAL;
	int n = snprintf(out, len, "%s", bare);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The layout without the network */

/* "<block><conv>.weight" (out, in, k, k) and the four tensors of "<block><bn>" (out). */
static int each_conv_bn(tv_resnet_param_cb cb, void *user, const char *block, const char *conv,
                        const char *bn, int in, int out, int k)
{
	static const char *const fields[] = { "weight", "bias", "running_mean", "running_var" };
	char name[96];
	snprintf(name, sizeof name, "%s%s.weight", block, conv);
	int rc = cb(user, name, 4, (int[]){ out, in, k, k });
	for (size_t i = 0; rc == 0 && i < sizeof fields / sizeof fields[0]; i++) {
		snprintf(name, sizeof name, "%s%s.%s", block, bn, fields[i]);
		rc = cb(user, name, 1, (int[]){ out });
	}
	return rc;
}

int tv_resnet_each_param(const ResnetConfig *c, int in_c, tv_resnet_param_cb cb, void *user)
{
	const int imagenet = c->stem == RESNET_STEM_IMAGENET;
	int ch = resnet_stage_channels(c->width, 0);
	int rc = each_conv_bn(cb, user, "", "conv1", "bn1", in_c, ch, imagenet ? 7 : 3);
	for (int s = 0; rc == 0 && s < RESNET_STAGES; s++) {
		const int planes = resnet_stage_channels(c->width, s);
		const int out = planes * (c->bottleneck ? 4 : 1);
		for (int j = 0; rc == 0 && j < c->blocks[s]; j++) {
			char block[32];
			snprintf(block, sizeof block, "layer%d.%d.", s + 1, j);
			const int stride = (s > 0 && j == 0) ? 2 : 1;
			if (c->bottleneck) {
				rc = each_conv_bn(cb, user, block, "conv1", "bn1", ch, planes, 1);
				if (rc == 0)
					rc = each_conv_bn(cb, user, block, "conv2", "bn2", planes, planes, 3);
				if (rc == 0)
					rc = each_conv_bn(cb, user, block, "conv3", "bn3", planes, out, 1);
			} else {
				rc = each_conv_bn(cb, user, block, "conv1", "bn1", ch, planes, 3);
				if (rc == 0)
					rc = each_conv_bn(cb, user, block, "conv2", "bn2", planes, planes, 3);
			}
			if (rc == 0 && (stride != 1 || ch != out))
				rc = each_conv_bn(cb, user, block, "downsample.0", "downsample.1", ch, out, 1);
			ch = out;
		}
	}
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Save */

int tv_resnet_save(const char *path, const ParamSet *ps, const char *prefix,
                   const char *config_json, char *err, size_t errlen)
{
	if (!path || !ps || !prefix)
		return fail(err, errlen, CKPT_EINVAL, "torchvision export: path, ParamSet and prefix "
		            "are required");
	ParamSet *out = paramset_new();
	if (!out)
		return fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
	int rc = 0, n = 0;
	for (int i = 0; i < paramset_count(ps); i++) {
		const Tensor *t = paramset_at(ps, i);
		const char *bare = strip_prefix(t->name, prefix);
		if (!bare)
			continue;
		if (!tv_resnet_name_ok(bare)) {
			rc = fail(err, errlen, CKPT_EINVAL, "%s: \"%s\" is not a parameter of a torchvision "
			          "ResNet (only ResNet encoders export under torchvision names)", path,
			          t->name);
			goto out;
		}
		Tensor *c = paramset_add(out, bare, t->ndim, t->shape, 0);
		if (!c) {
			rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
			goto out;
		}
		memcpy(c->data, t->data, t->size * sizeof(float));
		n++;
		if (ends_with(bare, ".running_var")) {
			char nb[256];
			int k = snprintf(nb, sizeof nb, "%.*snum_batches_tracked",
			                 (int)(strlen(bare) - strlen("running_var")), bare);
			if (k < 0 || (size_t)k >= sizeof nb || !paramset_add(out, nb, 1, (int[]){ 1 }, 0)) {
				rc = fail(err, errlen, CKPT_ENOMEM, "%s: cannot add %s", path, nb);
				goto out;
			}
		}
	}
	if (n == 0) {
		rc = fail(err, errlen, CKPT_EINVAL, "%s: no parameter under \"%s.\"", path, prefix);
		goto out;
	}
	rc = checkpoint_export_prefix(path, out, "", "", config_json, err, errlen);
out:
	paramset_free(out);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Load */

static int shape_equal(const Tensor *a, const Tensor *b)
{
	if (a->ndim != b->ndim)
		return 0;
	for (int d = 0; d < a->ndim; d++)
		if (a->shape[d] != b->shape[d])
			return 0;
	return 1;
}

static void shape_str(const Tensor *t, char *buf, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(buf, len, "(");
	for (int d = 0; d < t->ndim && o < len; d++)
		o += (size_t)snprintf(buf + o, len - o, d ? ",%d" : "%d", t->shape[d]);
	if (o < len)
		snprintf(buf + o, len - o, ")");
}

int tv_resnet_load(const char *path, ParamSet *ps, const char *prefix, char *err, size_t errlen)
{
	if (!path || !ps || !prefix)
		return fail(err, errlen, CKPT_EINVAL, "torchvision import: path, ParamSet and prefix "
		            "are required");
	Checkpoint *ck = NULL;
	int rc = checkpoint_open(path, CKPT_ALLOW_UNCHECKED | CKPT_SKIP_OTHER_DTYPES, &ck, err,
	                         errlen);
	if (rc < 0)
		return rc;
	const int np = paramset_count(ps);
	const Tensor **src = eng_calloc((size_t)(np ? np : 1), sizeof *src);
	if (!src) {
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	int n = 0;
	for (int i = 0; i < np; i++) {
		const Tensor *t = paramset_at(ps, i);
		const char *bare = strip_prefix(t->name, prefix);
		if (!bare)
			continue;
		if (!tv_resnet_name_ok(bare)) {
			rc = fail(err, errlen, CKPT_EMISMATCH, "%s: \"%s\" is not a parameter of a "
			          "torchvision ResNet, so it cannot come from a torchvision state dict", path,
			          t->name);
			goto out;
		}
		const Tensor *f = checkpoint_find(ck, bare);
		if (!f) {
			rc = fail(err, errlen, CKPT_EMISMATCH, "%s: no tensor \"%s\" (for %s): not a "
			          "torchvision ResNet of this depth, or saved with a prefix", path, bare,
			          t->name);
			goto out;
		}
		if (!shape_equal(f, t)) {
			char a[64], b[64];
			shape_str(f, a, sizeof a);
			shape_str(t, b, sizeof b);
			rc = fail(err, errlen, CKPT_EMISMATCH, "%s: \"%s\" has shape %s, the encoder's %s "
			          "has %s (another width, stem or input channel count?)", path, bare, a,
			          t->name, b);
			goto out;
		}
		src[i] = f;
		n++;
	}
	if (n == 0) {
		rc = fail(err, errlen, CKPT_EINVAL, "%s: the parameter set has nothing under \"%s.\"",
		          path, prefix);
		goto out;
	}
	/* every file tensor but fc.* and num_batches_tracked must have been taken */
	for (int k = 0; k < checkpoint_count(ck); k++) {
		const Tensor *f = checkpoint_tensor_at(ck, k);
		if (strncmp(f->name, "fc.", 3) == 0 || ends_with(f->name, ".num_batches_tracked"))
			continue;
		int taken = 0;
		for (int i = 0; i < np && !taken; i++)
			taken = src[i] == f;
		if (!taken) {
			rc = fail(err, errlen, CKPT_EMISMATCH, "%s: tensor \"%s\" has no place in the "
			          "encoder under \"%s.\" (a deeper ResNet, or not a ResNet state dict)",
			          path, f->name, prefix);
			goto out;
		}
	}
	for (int i = 0; i < np; i++)
		if (src[i])
			memcpy(paramset_at(ps, i)->data, src[i]->data, src[i]->size * sizeof(float));
	rc = n;
out:
	eng_free(src);
	checkpoint_close(ck);
	return rc;
}
