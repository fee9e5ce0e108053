/* export_torchvision.h - a ResNet encoder's weights under torchvision's state-dict names, both
 * ways, as safetensors.
 *
 * ssld registers a ResNet as "<prefix>." + torchvision's names (resnet.h), so the mapping is the
 * prefix, checked against the set of names a torchvision ResNet has. The written file loads into
 * torchvision.models.resnet18/34/50() with load_state_dict(strict=False), missing only fc.*:
 *
 *   from safetensors.torch import load_file      # or any safetensors reader
 *   m = torchvision.models.resnet18(); m.fc = torch.nn.Identity()
 *   m.load_state_dict(load_file("encoder.safetensors"), strict=False)
 *
 * (a width other than 1, or a cifar stem / 1-channel input, needs the matching torchvision
 * modules replaced first). Every BatchNorm also gets "<bn>.num_batches_tracked", stored as F32
 * of shape (1) holding 0: ssld does not count batches, torch reads only F32 from this writer and
 * converts it on load; the count matters only to a BatchNorm with momentum=None.
 *
 *   if (tv_resnet_save("encoder.safetensors", ps, "encoder", cfg_json, err, sizeof err) < 0) ...
 *   int n = tv_resnet_load("resnet18.safetensors", ps, "encoder", err, sizeof err);
 *
 * Errors are negative codes of checkpoint.h (CKPT_*) with err naming the file and the tensor.
 */
#ifndef SSLD_ENGINE_EXPORT_TORCHVISION_H
#define SSLD_ENGINE_EXPORT_TORCHVISION_H

#include <stddef.h>

#include "params.h"
#include "resnet.h"

/* The torchvision name of an ssld parameter: name without "<prefix>." when the rest is a
 * torchvision ResNet state-dict name (conv1.weight, bn1.running_var, layer3.1.conv2.weight,
 * layer2.0.downsample.1.bias, ...). 0, or -EINVAL (not under the prefix, or not a ResNet name),
 * -ENAMETOOLONG (out too small). prefix "" means names are already bare. */
int tv_resnet_name(const char *name, const char *prefix, char *out, size_t len);
/* 1 when a bare name is a torchvision ResNet state-dict entry ssld keeps (so neither fc.* nor
 * num_batches_tracked), else 0. */
int tv_resnet_name_ok(const char *bare);

/* Write every tensor of ps under "<prefix>." with its torchvision name (plus num_batches_tracked
 * per BatchNorm). config_json (may be NULL) is stored as metadata ssld.encoder_config. Fails,
 * writing nothing, if a tensor under the prefix is not a ResNet parameter or none is there. */
int tv_resnet_save(const char *path, const ParamSet *ps, const char *prefix,
                   const char *config_json, char *err, size_t errlen);

/* Read a safetensors state dict with torchvision names (from torch, or tv_resnet_save) into the
 * tensors of ps under "<prefix>.": every one must be in the file with the same shape; the file's
 * fc.*, num_batches_tracked and other non-F32 entries are ignored; any other tensor in the file
 * the set lacks is an error (a deeper ResNet, or not a ResNet). Checksums are not required.
 * Nothing changes unless everything matches. Returns the number of tensors loaded. */
int tv_resnet_load(const char *path, ParamSet *ps, const char *prefix, char *err, size_t errlen);

/* Every tensor tv_resnet_load wants for a ResNet of config c on in_c-channel input, without
 * building it: cb(user, torchvision name, ndim, shape) in resnet_new's order; a non-zero return
 * of cb ends the walk and is returned, else 0. For checking a file's header before a job runs
 * (workers/init_from.c); a test holds it to resnet_new's parameters. */
typedef int (*tv_resnet_param_cb)(void *user, const char *name, int ndim, const int *shape);
int tv_resnet_each_param(const ResnetConfig *c, int in_c, tv_resnet_param_cb cb, void *user);

#endif
