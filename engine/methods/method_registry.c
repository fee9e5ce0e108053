/* method_registry.c - the list of implemented pretext methods (see method.h). Adding a method is
 * one extern line and one table entry here, plus its catalogue entry in workers/method_catalog.c. */
#include "method.h"

#include <string.h>

extern const PretextMethod method_simclr;

static const PretextMethod *const registry[] = {
	&method_simclr,
};

int method_count(void)
{
	return (int)(sizeof registry / sizeof registry[0]);
}

const PretextMethod *method_at(int i)
{
	return i >= 0 && i < method_count() ? registry[i] : NULL;
}

const PretextMethod *method_find(const char *name)
{
	for (int i = 0; i < method_count(); i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}
