/* fuzz_safetensors.c - libFuzzer harness for the safetensors checkpoint reader
 * (engine/checkpoint.h).
 *
 * Input: one control byte, then the file. Bit 0 asks for the ssld checksums (most mutations then
 * fail there, as they should; without it the structural checks behind them get fuzzed). Every
 * file that opens is walked (tensors, metadata, training state) and then loaded into a small
 * ParamSet ("fc.weight" (3,2), "fc.bias" (3), "bn.mean" (3)) with the relaxations that bits 1-3
 * pick, under a prefix that bit 4 picks: a load must validate everything and either fill the set
 * or change nothing.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/checkpoint.h"
#include "../../engine/params.h"
#include "fuzz_common.h"

static ParamSet *ps;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	ps = paramset_new();
	if (!ps || !paramset_add(ps, "fc.weight", 2, (const int[]){ 3, 2 }, 0) ||
	    !paramset_add(ps, "fc.bias", 1, (const int[]){ 3 }, 0) ||
	    !paramset_add(ps, "bn.mean", 1, (const int[]){ 3 }, 0))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int ctl = data[0];
	const char *p = fuzz_write("in.safetensors", data + 1, size - 1, 0);
	int flags = ((ctl & 1) ? 0 : CKPT_ALLOW_UNCHECKED) | ((ctl & 32) ? CKPT_SKIP_OTHER_DTYPES : 0);
	Checkpoint *ck = NULL;
	char err[512] = "";
	int rc = checkpoint_open(p, flags, &ck, err, sizeof err);
	if (rc < 0) {
		if (!err[0] || ck)
			abort();
		return 0;
	}
	double sum = 0;
	int n = checkpoint_count(ck);
	for (int i = 0; i < n; i++) {
		const Tensor *t = checkpoint_tensor_at(ck, i);
		if (!t)
			abort();
		size_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= (size_t)t->shape[d];
		if (numel)
			sum += t->data[numel - 1];
	}
	const char *m = checkpoint_meta(ck, "ssld.method");
	if (m)
		sum += (double)strlen(m);
	CheckpointState st;
	if (checkpoint_get_state(ck, &st, err, sizeof err) == 0)
		checkpoint_state_free(&st);
	checkpoint_close(ck);
	fuzz_sink = sum;

	/* Loads: nothing is modified unless everything validates. */
	for (int i = 0; i < paramset_count(ps); i++) {
		Tensor *t = paramset_at(ps, i);
		for (int k = 0; k < 3 * (t->ndim > 1 ? 2 : 1); k++)
			t->data[k] = 7.0f;
	}
	int lflags = flags | ((ctl & 2) ? CKPT_ALLOW_MISSING : 0) | ((ctl & 4) ? CKPT_ALLOW_UNUSED : 0);
	const char *src = (ctl & 16) ? "online." : NULL;
	rc = (ctl & 8) ? checkpoint_load_prefix(p, ps, src, NULL, lflags, &st, err, sizeof err)
	               : checkpoint_load(p, ps, NULL, &st, src, err, sizeof err);
	if (rc >= 0) {
		checkpoint_state_free(&st);
	} else {
		if (!err[0])
			abort();
		for (int i = 0; i < paramset_count(ps); i++) {
			Tensor *t = paramset_at(ps, i);
			for (int k = 0; k < 3 * (t->ndim > 1 ? 2 : 1); k++)
				if (t->data[k] != 7.0f)
					abort();   /* a failed load changed the set */
		}
	}
	return 0;
}
