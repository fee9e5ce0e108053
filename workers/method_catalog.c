/* method_catalog.c - the spec layer's view of the method and protocol registries: the dataset
 * modality names and each method's example job, found among the examples/ files embedded at
 * build time (examples_embedded.h). Methods and protocols themselves are described only where
 * they run, in engine/methods/.
 */
#include "method_catalog.h"

#include <stdio.h>
#include <string.h>

#include "examples_embedded.h"

const char *method_catalog_example(const MethodInfo *m)
{
	if (!m || !m->example)
		return NULL;
	for (int i = 0; i < embedded_example_count; i++)
		if (strcmp(embedded_examples[i].name, m->example) == 0)
			return embedded_examples[i].text;
	return NULL;
}

unsigned method_catalog_encoders(const MethodInfo *m)
{
	unsigned mask = 0;
	for (int k = 0; k < encoder_count(); k++)
		if ((!m->encoders || (m->encoders & ENC_BIT(k))) && (encoder_fits((EncoderKind)k) & m->datasets))
			mask |= ENC_BIT(k);
	return mask;
}

const char *catalog_encoder_names(unsigned mask, char *buf, size_t len)
{
	size_t at = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (int k = 0; k < encoder_count(); k++) {
		if (!(mask & ENC_BIT(k)))
			continue;
		int n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", encoder_kind_name((EncoderKind)k));
		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
	}
	return buf;
}

const char *catalog_data_names(unsigned mask, char *buf, size_t len)
{
	size_t at = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (int i = 0; i < DATA_MODALITY_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		int n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "", dataset_modality_name(1u << i));
		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
	}
	return buf;
}
