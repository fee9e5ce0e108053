/* checkpoint.c - safetensors checkpoints for ParamSets, optimizer state and training state (see
 * checkpoint.h).
 *
 * Writing builds the JSON header from the tensors, computes two CRC-32s (the data section, and a
 * canonical serialisation of the header so a flipped byte in a name, shape or metadata value is
 * caught too), and writes the file atomically. Reading pulls the whole file into one aligned
 * image, parses the header with cJSON (after a pass over its bytes for what cJSON lets through:
 * NUL, control characters in strings, \u0000), validates every offset, shape, dtype and name
 * (including duplicate keys, which cJSON keeps), verifies the checksums, and only then
 * copies into the ParamSet. It deliberately supports only F32 tensors and does not mmap: files
 * are small next to the training run, and a private copy cannot change under us.
 *
 * Canonical header (what ssld.header_crc32 covers): for each tensor in data order, name NUL
 * dtype NUL then ndim, each dim, begin, end as little-endian u64; then every metadata pair except
 * ssld.header_crc32, sorted by key bytes, as key NUL value NUL.
 */
#include "checkpoint.h"

#include "../common/strbuf.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "fault.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes tensors as raw little-endian floats; add byte swapping for this host"
#endif

#define CK_MAX_DIMS 8                   /* parsed; more than TENSOR_MAX_DIMS is rejected later */
#define CK_MAX_HEADER (100u << 20)      /* the safetensors reference limit */
#define CK_MAX_NAME 1024
#define CK_JSON_DEPTH 32
#define CK_OPTIM_PREFIX "optim."
#define CK_KEY_HEADER_CRC "ssld.header_crc32"
#define CK_KEY_DATA_CRC "ssld.data_crc32"

const char *checkpoint_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case CKPT_EIO: return "I/O error";
	case CKPT_EFORMAT: return "not a valid safetensors file";
	case CKPT_ECORRUPT: return "checksum mismatch";
	case CKPT_EMISMATCH: return "does not match the model";
	case CKPT_ENOMEM: return "out of memory";
	case CKPT_EINVAL: return "invalid argument";
	}
	return "unknown checkpoint error";
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

/* ---- CRC-32 (IEEE, zlib-compatible), slicing by 8 ------------------------------------------- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_tab[0][i] = c;
	}
	for (int i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

/* crc = crc_update(crc, ...) chains; start from 0 (same convention as zlib's crc32). */
static uint32_t crc_update(uint32_t crc, const void *data, size_t n)
{
	pthread_once(&crc_once, crc_init);
	const unsigned char *p = data;
	uint32_t c = ~crc;
	while (n && ((uintptr_t)p & 7)) {
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		n--;
	}
	while (n >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= c;
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
		    crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		    crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static uint32_t crc_u64(uint32_t crc, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	return crc_update(crc, b, 8);
}

/* ---- header model shared by the writer and the reader --------------------------------------- */

typedef struct CkEntry {
	const char *name;
	const char *dtype;
	int ndim;
	uint64_t dims[CK_MAX_DIMS];
	uint64_t begin, end;
	const Tensor *src;   /* writer: where the data comes from */
	Tensor view;         /* reader: the tensor over the file image */
} CkEntry;

typedef struct CkMeta {
	const char *key, *value;
} CkMeta;

static int cmp_meta(const void *a, const void *b)
{
	return strcmp(((const CkMeta *)a)->key, ((const CkMeta *)b)->key);
}

/* CRC of the canonical header; entries must be in data order. Sorts meta in place. */
static uint32_t header_digest(const CkEntry *e, int n, CkMeta *meta, int nmeta)
{
	uint32_t c = 0;
	for (int i = 0; i < n; i++) {
		c = crc_update(c, e[i].name, strlen(e[i].name) + 1);
		c = crc_update(c, e[i].dtype, strlen(e[i].dtype) + 1);
		c = crc_u64(c, (uint64_t)e[i].ndim);
		for (int d = 0; d < e[i].ndim; d++)
			c = crc_u64(c, e[i].dims[d]);
		c = crc_u64(c, e[i].begin);
		c = crc_u64(c, e[i].end);
	}
	if (nmeta > 1)
		qsort(meta, (size_t)nmeta, sizeof *meta, cmp_meta);
	for (int i = 0; i < nmeta; i++) {
		if (strcmp(meta[i].key, CK_KEY_HEADER_CRC) == 0)
			continue;
		c = crc_update(c, meta[i].key, strlen(meta[i].key) + 1);
		c = crc_update(c, meta[i].value, strlen(meta[i].value) + 1);
	}
	return c;
}

/* ==== reading ================================================================================= */

struct Checkpoint {
	char *path;
	unsigned char *image;  /* aligned: header at image+pad, data at image+pad+hlen (64-aligned) */
	const unsigned char *data;
	uint64_t data_len;
	char *pool;            /* decoded strings */
	size_t pool_used, pool_cap;
	CkEntry *e;            /* in data order after open */
	int n, cap;
	CkEntry **by_name;     /* sorted by name */
	CkMeta *meta;
	int nmeta, meta_cap;
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int ck_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CK_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* ---- header JSON (cJSON) --------------------------------------------------------------------- */

typedef struct Hp {
	Checkpoint *ck;
	char msg[256];
} Hp;

static int hp_fail(Hp *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int hp_fail(Hp *h, const char *fmt, ...)
{
	char what[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(h->msg, sizeof h->msg, "header JSON: %s", what);
	return -1;
}

/* What cJSON does not refuse but a header must not hold: a NUL byte, a control character inside
 * a string (JSON forbids it), a \u0000 escape (it would cut a name short). The bytes of the
 * header are walked once, tracking only whether they lie inside a string. */
static int hp_raw_check(Hp *h, const char *s, size_t n)
{
	int in_str = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0)
			return hp_fail(h, "NUL byte at byte %zu of the header", i);
		if (!in_str) {
			in_str = c == '"';
			continue;
		}
		if (c < 0x20)
			return hp_fail(h, "control character in a string at byte %zu of the header", i);
		if (c == '"') {
			in_str = 0;
		} else if (c == '\\' && i + 1 < n) {
			if (s[i + 1] == 'u' && n - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
				return hp_fail(h, "NUL character in a string at byte %zu of the header", i);
			i++;
		}
	}
	return 0;
}

/* Why cJSON stopped at byte `at` of the header (it says where, not why). */
static int hp_syntax(Hp *h, const char *hdr, size_t len, size_t at)
{
	size_t rest = at;
	while (rest < len && strchr(" \t\r\n", hdr[rest]))
		rest++;
	/* cJSON reports running out of input as the last byte */
	if (rest >= len || (at + 1 == len && strchr("}]", hdr[at])))
		return hp_fail(h, "unexpected end of the header");
	if (at + 1 < len && hdr[at] == '\\' && hdr[at + 1] == 'u')
		return hp_fail(h, "bad \\u escape (not four hex digits, or a lone surrogate) at byte %zu "
		               "of the header", at);
	return hp_fail(h, "syntax error at byte %zu of the header", at);
}

static int hp_depth(const cJSON *v, int depth)
{
	int most = depth;
	for (const cJSON *c = v->child; c; c = c->next) {
		int d = hp_depth(c, depth + 1);
		if (d > most)
			most = d;
	}
	return most;
}

/* A copy of s in the pool. The pool is as large as the header, and a decoded string plus its NUL
 * is never longer than its quoted form. */
static const char *hp_str(Hp *h, const char *s)
{
	Checkpoint *ck = h->ck;
	size_t n = strlen(s) + 1;
	if (n > ck->pool_cap - ck->pool_used) {
		hp_fail(h, "strings longer than the header");
		return NULL;
	}
	char *o = memcpy(ck->pool + ck->pool_used, s, n);
	ck->pool_used += n;
	return o;
}

/* A non-negative integer that a double holds exactly (< 2^53). */
static int hp_uint(Hp *h, const char *name, const char *what, const cJSON *v, uint64_t *out)
{
	if (!cJSON_IsNumber(v))
		return hp_fail(h, "tensor \"%.60s\": %s: expected a non-negative integer", name, what);
	double x = v->valuedouble;
	if (x < 0)
		return hp_fail(h, "tensor \"%.60s\": %s: expected a non-negative integer, got %g", name,
		               what, x);
	if (x != floor(x))
		return hp_fail(h, "tensor \"%.60s\": %s: expected an integer, got %g", name, what, x);
	if (x >= 9007199254740992.0)
		return hp_fail(h, "tensor \"%.60s\": %s: integer too large (%g)", name, what, x);
	*out = (uint64_t)x;
	return 0;
}

static int hp_uint_array(Hp *h, const char *name, const char *what, const cJSON *a, uint64_t *v,
                         int max, int *n)
{
	if (!cJSON_IsArray(a))
		return hp_fail(h, "tensor \"%.60s\": %s is not an array", name, what);
	*n = 0;
	for (const cJSON *c = a->child; c; c = c->next) {
		if (*n >= max)
			return hp_fail(h, "tensor \"%.60s\": %s: array longer than %d", name, what, max);
		if (hp_uint(h, name, what, c, &v[(*n)++]) < 0)
			return -1;
	}
	return 0;
}

/* 1 if a member of obj before c has c's key (cJSON keeps duplicate keys). */
static int hp_dup(const cJSON *obj, const cJSON *c)
{
	for (const cJSON *d = obj->child; d != c; d = d->next)
		if (strcmp(d->string, c->string) == 0)
			return 1;
	return 0;
}

/* The array v of *cap items with room for item n (doubling, from `first`), or NULL when out of
 * memory (v unchanged). */
static void *hp_room(Hp *h, void *v, int *cap, int n, size_t size, int first)
{
	if (n < *cap)
		return v;
	int c = *cap ? *cap * 2 : first;
	void *w = eng_realloc(v, (size_t)c * size);
	if (!w) {
		hp_fail(h, "out of memory");
		return NULL;
	}
	*cap = c;
	return w;
}

static int hp_meta(Hp *h, const cJSON *obj)
{
	Checkpoint *ck = h->ck;
	if (!cJSON_IsObject(obj))
		return hp_fail(h, "__metadata__ is not an object");
	for (const cJSON *c = obj->child; c; c = c->next) {
		if (!cJSON_IsString(c))
			return hp_fail(h, "__metadata__ value of \"%.60s\" is not a string", c->string);
		for (int i = 0; i < ck->nmeta; i++)
			if (strcmp(ck->meta[i].key, c->string) == 0)
				return hp_fail(h, "duplicate __metadata__ key \"%.60s\"", c->string);
		CkMeta *m = hp_room(h, ck->meta, &ck->meta_cap, ck->nmeta, sizeof *m, 16);
		if (!m)
			return -1;
		ck->meta = m;
		const char *k = hp_str(h, c->string), *v = k ? hp_str(h, c->valuestring) : NULL;
		if (!v)
			return -1;
		ck->meta[ck->nmeta++] = (CkMeta){ k, v };
	}
	return 0;
}

static int hp_entry(Hp *h, const cJSON *obj)
{
	Checkpoint *ck = h->ck;
	const char *name = obj->string;
	if (!ck_name_ok(name))
		return hp_fail(h, "bad tensor name \"%.60s\" (empty, too long or control characters)",
		               name);
	if (!cJSON_IsObject(obj))
		return hp_fail(h, "tensor \"%.60s\" is not an object", name);
	CkEntry *e = hp_room(h, ck->e, &ck->cap, ck->n, sizeof *e, 64);
	if (!e)
		return -1;
	ck->e = e;
	e = &ck->e[ck->n];
	memset(e, 0, sizeof *e);
	if (!(e->name = hp_str(h, name)))
		return -1;
	int have_dtype = 0, have_shape = 0, have_off = 0;
	for (const cJSON *c = obj->child; c; c = c->next) {
		if (hp_dup(obj, c))
			return hp_fail(h, "tensor \"%.60s\": duplicate key \"%.60s\"", name, c->string);
		if (strcmp(c->string, "dtype") == 0) {
			if (!cJSON_IsString(c))
				return hp_fail(h, "tensor \"%.60s\": dtype is not a string", name);
			if (!(e->dtype = hp_str(h, c->valuestring)))
				return -1;
			have_dtype = 1;
		} else if (strcmp(c->string, "shape") == 0) {
			if (hp_uint_array(h, name, "shape", c, e->dims, CK_MAX_DIMS, &e->ndim) < 0)
				return -1;
			have_shape = 1;
		} else if (strcmp(c->string, "data_offsets") == 0) {
			uint64_t off[2];
			int n;
			if (hp_uint_array(h, name, "data_offsets", c, off, 2, &n) < 0)
				return -1;
			if (n != 2)
				return hp_fail(h, "tensor \"%.60s\": data_offsets needs 2 numbers", name);
			e->begin = off[0];
			e->end = off[1];
			have_off = 1;
		}
	}
	if (!have_dtype || !have_shape || !have_off)
		return hp_fail(h, "tensor \"%.60s\" lacks %s", name,
		               !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
	ck->n++;
	return 0;
}

/* The header text hdr[0..len) into ck's entries and metadata; the checks on offsets, shapes and
 * names across entries are validate()'s. */
static int hp_header(Hp *h, const char *hdr, size_t len)
{
	if (hp_raw_check(h, hdr, len) < 0)
		return -1;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(hdr, len, &end, 0);
	if (!root)
		return hp_syntax(h, hdr, len, end && end >= hdr ? (size_t)(end - hdr) : len);
	int rc = -1;
	for (size_t at = (size_t)(end - hdr); at < len; at++)
		if (!strchr(" \t\r\n", hdr[at])) {
			hp_fail(h, "unexpected bytes after the header object at byte %zu of the header", at);
			goto out;
		}
	if (!cJSON_IsObject(root)) {
		hp_fail(h, "the header is not an object");
		goto out;
	}
	if (hp_depth(root, 1) > CK_JSON_DEPTH) {
		hp_fail(h, "nested deeper than %d", CK_JSON_DEPTH);
		goto out;
	}
	int have_meta = 0;
	for (const cJSON *c = root->child; c; c = c->next) {
		if (strcmp(c->string, "__metadata__") != 0) {
			if (hp_entry(h, c) < 0)
				goto out;
		} else if (have_meta++) {
			hp_fail(h, "duplicate __metadata__");
			goto out;
		} else if (hp_meta(h, c) < 0) {
			goto out;
		}
	}
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

/* ---- open and validate ---------------------------------------------------------------------- */

static int cmp_offset(const void *a, const void *b)
{
	const CkEntry *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return strcmp((*(CkEntry *const *)a)->name, (*(CkEntry *const *)b)->name);
}

void checkpoint_close(Checkpoint *ck)
{
	if (!ck)
		return;
	eng_free(ck->path);
	eng_free(ck->image);
	eng_free(ck->pool);
	eng_free(ck->e);
	eng_free(ck->by_name);
	eng_free(ck->meta);
	eng_free(ck);
}

static int read_full(int fd, void *buf, size_t n, off_t off, size_t *got)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

static int parse_hex32(const char *s, uint32_t *out)
{
	if (strlen(s) != 8)
		return -1;
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		int h = hexval((unsigned char)s[i]);
		if (h < 0)
			return -1;
		v = v << 4 | (uint32_t)h;
	}
	*out = v;
	return 0;
}

/* Bytes per element of a safetensors dtype, 0 for an unknown one. */
static unsigned dtype_size(const char *dtype)
{
	static const struct {
		const char *name;
		unsigned size;
	} t[] = { { "F32", 4 }, { "F64", 8 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 },
	          { "I16", 2 }, { "I8", 1 }, { "U8", 1 }, { "BOOL", 1 } };
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (strcmp(dtype, t[i].name) == 0)
			return t[i].size;
	return 0;
}

/* Structure of the parsed header: dtype, dims, offsets in range and contiguous, unique names.
 * With CKPT_SKIP_OTHER_DTYPES, tensors of another known dtype are checked and then dropped. */
static int validate(Checkpoint *ck, int flags, char *err, size_t errlen)
{
	const char *P = ck->path;
	for (int i = 0; i < ck->n; i++) {
		CkEntry *e = &ck->e[i];
		const unsigned esize = dtype_size(e->dtype);
		if (strcmp(e->dtype, "F32") != 0 && (!(flags & CKPT_SKIP_OTHER_DTYPES) || !esize))
			return fail(err, errlen, CKPT_EFORMAT,
			            "%s: tensor \"%s\" has dtype %.16s; only F32 is supported", P, e->name,
			            e->dtype);
		if (e->ndim > TENSOR_MAX_DIMS)
			return fail(err, errlen, CKPT_EFORMAT,
			            "%s: tensor \"%s\" has %d dimensions; at most %d are supported", P,
			            e->name, e->ndim, TENSOR_MAX_DIMS);
		uint64_t count = 1;
		for (int d = 0; d < e->ndim; d++) {
			if (e->dims[d] > (uint64_t)INT32_MAX)
				return fail(err, errlen, CKPT_EFORMAT, "%s: tensor \"%s\": dimension %d is %llu",
				            P, e->name, d, (unsigned long long)e->dims[d]);
			if (e->dims[d] && count > ck->data_len / e->dims[d])
				return fail(err, errlen, CKPT_EFORMAT,
				            "%s: tensor \"%s\": shape larger than the data section", P, e->name);
			count *= e->dims[d];
		}
		if (e->begin > e->end || e->end > ck->data_len)
			return fail(err, errlen, CKPT_EFORMAT,
			            "%s: tensor \"%s\": data_offsets [%llu,%llu] outside the data section "
			            "of %llu bytes (truncated file?)",
			            P, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
			            (unsigned long long)ck->data_len);
		if (e->end - e->begin != count * esize)
			return fail(err, errlen, CKPT_EFORMAT,
			            "%s: tensor \"%s\": %llu bytes for %llu %s elements of its shape", P,
			            e->name, (unsigned long long)(e->end - e->begin),
			            (unsigned long long)count, e->dtype);
	}
	if (ck->n > 1)
		qsort(ck->e, (size_t)ck->n, sizeof *ck->e, cmp_offset);
	uint64_t at = 0;
	for (int i = 0; i < ck->n; i++) {
		if (ck->e[i].begin != at)
			return fail(err, errlen, CKPT_EFORMAT,
			            "%s: tensor \"%s\" starts at byte %llu of the data, expected %llu "
			            "(tensors must be contiguous and not overlap)",
			            P, ck->e[i].name, (unsigned long long)ck->e[i].begin,
			            (unsigned long long)at);
		at = ck->e[i].end;
	}
	if (at != ck->data_len)
		return fail(err, errlen, CKPT_EFORMAT,
		            "%s: the tensors cover %llu bytes but the data section holds %llu", P,
		            (unsigned long long)at, (unsigned long long)ck->data_len);
	int kept = 0;
	for (int i = 0; i < ck->n; i++)
		if (strcmp(ck->e[i].dtype, "F32") == 0)
			ck->e[kept++] = ck->e[i];
	ck->n = kept;
	ck->by_name = eng_malloc((size_t)(ck->n ? ck->n : 1) * sizeof *ck->by_name);
	if (!ck->by_name)
		return fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", P);
	for (int i = 0; i < ck->n; i++) {
		CkEntry *e = &ck->e[i];
		ck->by_name[i] = e;
		memset(&e->view, 0, sizeof e->view);
		int shape[TENSOR_MAX_DIMS];
		for (int d = 0; d < e->ndim; d++)
			shape[d] = (int)e->dims[d];
		tensor_set_shape(&e->view, e->ndim, shape);
		e->view.data = (float *)(ck->data + e->begin);
		e->view.name = e->name;
	}
	qsort(ck->by_name, (size_t)ck->n, sizeof *ck->by_name, cmp_name_ptr);
	for (int i = 1; i < ck->n; i++)
		if (strcmp(ck->by_name[i - 1]->name, ck->by_name[i]->name) == 0)
			return fail(err, errlen, CKPT_EFORMAT, "%s: tensor \"%s\" appears twice", P,
			            ck->by_name[i]->name);
	return 0;
}

static int verify_checksums(Checkpoint *ck, int flags, char *err, size_t errlen)
{
	const char *P = ck->path;
	const char *hs = checkpoint_meta(ck, CK_KEY_HEADER_CRC);
	const char *ds = checkpoint_meta(ck, CK_KEY_DATA_CRC);
	if (!hs || !ds) {
		if (flags & CKPT_ALLOW_UNCHECKED)
			return 0;
		return fail(err, errlen, CKPT_ECORRUPT,
		            "%s: no %s in __metadata__: not written by ssld, or its header is damaged", P,
		            !hs ? CK_KEY_HEADER_CRC : CK_KEY_DATA_CRC);
	}
	uint32_t hstored, dstored;
	if (parse_hex32(hs, &hstored) < 0 || parse_hex32(ds, &dstored) < 0)
		return fail(err, errlen, CKPT_ECORRUPT, "%s: malformed checksum in __metadata__", P);
	/* header_digest sorts the metadata; lookups are linear so order does not matter */
	uint32_t h = header_digest(ck->e, ck->n, ck->meta, ck->nmeta);
	if (h != hstored)
		return fail(err, errlen, CKPT_ECORRUPT,
		            "%s: header checksum mismatch (stored %08x, computed %08x): names, shapes or "
		            "metadata corrupted",
		            P, hstored, h);
	uint32_t d = crc_update(0, ck->data, (size_t)ck->data_len);
	if (d != dstored)
		return fail(err, errlen, CKPT_ECORRUPT,
		            "%s: data checksum mismatch (stored %08x, computed %08x): file corrupted", P,
		            dstored, d);
	return 0;
}

int checkpoint_open(const char *path, int flags, Checkpoint **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!path)
		return fail(err, errlen, CKPT_EINVAL, "checkpoint: no path");
	int rc;
	Checkpoint *ck = eng_calloc(1, sizeof *ck);
	if (!ck || !(ck->path = eng_strdup(path))) {
		eng_free(ck);
		return fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: cannot open: %s", path, strerror(errno));
		goto out;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = fail(err, errlen, CKPT_EFORMAT, "%s: not a regular file", path);
		goto out;
	}
	uint64_t fsize = (uint64_t)sb.st_size;
	unsigned char lenb[8];
	size_t got;
	if (fsize < 8 || read_full(fd, lenb, 8, 0, &got) < 0 || got != 8) {
		rc = fail(err, errlen, CKPT_EFORMAT,
		          "%s: file is %llu bytes, too short for a safetensors header", path,
		          (unsigned long long)fsize);
		goto out;
	}
	uint64_t hlen = 0;
	for (int i = 0; i < 8; i++)
		hlen |= (uint64_t)lenb[i] << (8 * i);
	if (hlen < 2 || hlen > fsize - 8) {
		rc = fail(err, errlen, CKPT_EFORMAT,
		          "%s: header length %llu does not fit the file of %llu bytes (truncated, or not "
		          "a safetensors file)",
		          path, (unsigned long long)hlen, (unsigned long long)fsize);
		goto out;
	}
	if (hlen > CK_MAX_HEADER) {
		rc = fail(err, errlen, CKPT_EFORMAT, "%s: header length %llu exceeds the %u byte limit",
		          path, (unsigned long long)hlen, CK_MAX_HEADER);
		goto out;
	}
	ck->data_len = fsize - 8 - hlen;
	if (ck->data_len > SIZE_MAX - hlen - 128) {
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: too large", path);
		goto out;
	}
	size_t pad = (size_t)((64 - hlen % 64) % 64);
	ck->image = eng_aligned_alloc(pad + (size_t)hlen + (size_t)ck->data_len);
	ck->pool_cap = (size_t)hlen + 1;
	ck->pool = eng_malloc(ck->pool_cap);
	if (!ck->image || !ck->pool) {
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory reading %llu bytes", path,
		          (unsigned long long)fsize);
		goto out;
	}
	char *hdr = (char *)ck->image + pad;
	size_t want = (size_t)hlen + (size_t)ck->data_len;
	if (read_full(fd, hdr, want, 8, &got) < 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: read failed: %s", path, strerror(errno));
		goto out;
	}
	if (got != want) {
		rc = fail(err, errlen, CKPT_EIO, "%s: file shrank while reading (%zu of %zu bytes)", path,
		          got, want);
		goto out;
	}
	ck->data = (const unsigned char *)hdr + hlen;
	Hp hp = { .ck = ck };
	if (hdr[0] != '{') {
		rc = fail(err, errlen, CKPT_EFORMAT,
		          "%s: not a safetensors file (the header does not start with '{')", path);
		goto out;
	}
	if (hp_header(&hp, hdr, (size_t)hlen) < 0) {
		rc = fail(err, errlen, CKPT_EFORMAT, "%s: %s", path, hp.msg);
		goto out;
	}
	if ((rc = validate(ck, flags, err, errlen)) < 0)
		goto out;
	if ((rc = verify_checksums(ck, flags, err, errlen)) < 0)
		goto out;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		checkpoint_close(ck);
		return rc;
	}
	*out = ck;
	return 0;
}

int checkpoint_count(const Checkpoint *ck)
{
	return ck->n;
}

const Tensor *checkpoint_tensor_at(const Checkpoint *ck, int i)
{
	return i >= 0 && i < ck->n ? &ck->e[i].view : NULL;
}

const Tensor *checkpoint_find(const Checkpoint *ck, const char *name)
{
	int lo = 0, hi = ck->n - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		int c = strcmp(ck->by_name[mid]->name, name);
		if (c == 0)
			return &ck->by_name[mid]->view;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

const char *checkpoint_meta(const Checkpoint *ck, const char *key)
{
	for (int i = 0; i < ck->nmeta; i++)
		if (strcmp(ck->meta[i].key, key) == 0)
			return ck->meta[i].value;
	return NULL;
}

/* ---- state ---------------------------------------------------------------------------------- */

void checkpoint_state_free(CheckpointState *st)
{
	if (!st)
		return;
	eng_free((char *)st->method);
	eng_free((char *)st->encoder_config_json);
	eng_free((char *)st->job_key);
	eng_free((char *)st->spec_sha256);
	st->method = NULL;
	st->encoder_config_json = NULL;
	st->job_key = NULL;
	st->spec_sha256 = NULL;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

int checkpoint_get_state(const Checkpoint *ck, CheckpointState *st, char *err, size_t errlen)
{
	CheckpointState s;
	memset(&s, 0, sizeof s);
	memset(st, 0, sizeof *st);
	static const char *const ikeys[] = { "ssld.step", "ssld.epoch" };
	int64_t *ivals[] = { &s.step, &s.epoch };
	for (int i = 0; i < 2; i++) {
		const char *v = checkpoint_meta(ck, ikeys[i]);
		if (v && parse_i64(v, ivals[i]) < 0)
			return fail(err, errlen, CKPT_EFORMAT, "%s: %s is \"%.40s\", not an integer",
			            ck->path, ikeys[i], v);
	}
	const char *v = checkpoint_meta(ck, "ssld.elapsed_s");
	if (v) {
		char *end;
		s.elapsed_s = strtod(v, &end);
		if (end == v || *end || !isfinite(s.elapsed_s))
			return fail(err, errlen, CKPT_EFORMAT, "%s: ssld.elapsed_s is \"%.40s\"", ck->path, v);
	}
	v = checkpoint_meta(ck, "ssld.loss");
	if (v) {
		char *end;
		s.loss = strtod(v, &end);
		if (end == v || *end || !isfinite(s.loss))
			return fail(err, errlen, CKPT_EFORMAT, "%s: ssld.loss is \"%.40s\"", ck->path, v);
	}
	v = checkpoint_meta(ck, "ssld.rng");
	if (v) {
		const char *p = v;
		for (int i = 0; i < 4; i++) {
			uint64_t w = 0;
			for (int k = 0; k < 16; k++) {
				int h = hexval((unsigned char)*p++);
				if (h < 0)
					return fail(err, errlen, CKPT_EFORMAT,
					            "%s: ssld.rng is \"%.80s\", expected 4 hex words", ck->path, v);
				w = w << 4 | (uint64_t)h;
			}
			if (*p != (i < 3 ? ',' : '\0'))
				return fail(err, errlen, CKPT_EFORMAT,
				            "%s: ssld.rng is \"%.80s\", expected 4 hex words", ck->path, v);
			p++;
			s.rng.s[i] = w;
		}
	}
	const char *m = checkpoint_meta(ck, "ssld.method");
	const char *c = checkpoint_meta(ck, "ssld.encoder_config");
	if (m && !(s.method = eng_strdup(m)))
		goto oom;
	if (c && !(s.encoder_config_json = eng_strdup(c)))
		goto oom;
	const char *k = checkpoint_meta(ck, "ssld.job_key");
	const char *h = checkpoint_meta(ck, "ssld.spec_sha256");
	if (k && !(s.job_key = eng_strdup(k)))
		goto oom;
	if (h && !(s.spec_sha256 = eng_strdup(h)))
		goto oom;
	*st = s;
	return 0;
oom:
	checkpoint_state_free(&s);
	return fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", ck->path);
}

/* ---- load into a ParamSet / optimizer ------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* out = new_prefix + (name without old_prefix); 0, or -1 when it does not fit. */
static int rename_prefix(char *out, size_t len, const char *name, const char *old_prefix,
                         const char *new_prefix)
{
	int n = snprintf(out, len, "%s%s", new_prefix, name + strlen(old_prefix));
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int load_impl(const char *path, ParamSet *ps, Optim *opt, const char *src_prefix,
                     const char *dst_prefix, int flags, CheckpointState *st, char *err,
                     size_t errlen)
{
	if (st)
		memset(st, 0, sizeof *st);
	if (!path || !ps)
		return fail(err, errlen, CKPT_EINVAL, "checkpoint load: path and ParamSet are required");
	src_prefix = src_prefix ? src_prefix : "";
	dst_prefix = dst_prefix ? dst_prefix : "";
	Checkpoint *ck;
	int rc = checkpoint_open(path, flags, &ck, err, errlen);
	if (rc < 0)
		return rc;
	char name[CK_MAX_NAME + 64], sa[64], sb[64];
	int np = paramset_count(ps);
	int nst = opt ? optim_state_count(opt) : 0;
	const Tensor **from = eng_calloc((size_t)(np + nst + 1), sizeof *from);
	CheckpointState s;
	memset(&s, 0, sizeof s);
	if (!from) {
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	/* plan: every selected parameter, then every optimizer moment */
	int loaded = 0;
	for (int i = 0; i < np; i++) {
		const Tensor *t = paramset_at(ps, i);
		if (!starts_with(t->name, dst_prefix))
			continue;
		if (rename_prefix(name, sizeof name, t->name, dst_prefix, src_prefix) < 0) {
			rc = fail(err, errlen, CKPT_EMISMATCH, "%s: name \"%s\" too long", path, t->name);
			goto out;
		}
		const Tensor *f = checkpoint_find(ck, name);
		if (!f) {
			if (flags & CKPT_ALLOW_MISSING)
				continue;
			rc = fail(err, errlen, CKPT_EMISMATCH,
			          "%s: tensor \"%s\" (for parameter \"%s\") is missing from the file", path,
			          name, t->name);
			goto out;
		}
		if (!tensor_same_shape(f, t)) {
			tensor_shape_str(f, sa, sizeof sa);
			tensor_shape_str(t, sb, sizeof sb);
			rc = fail(err, errlen, CKPT_EMISMATCH,
			          "%s: tensor \"%s\" has shape %s in the file but the model's \"%s\" is %s",
			          path, name, sa, t->name, sb);
			goto out;
		}
		from[i] = f;
		loaded++;
	}
	if (!(flags & CKPT_ALLOW_UNUSED)) {
		for (int i = 0; i < ck->n; i++) {
			const char *fn = ck->e[i].name;
			if (!starts_with(fn, src_prefix) || starts_with(fn, CK_OPTIM_PREFIX))
				continue;
			if (rename_prefix(name, sizeof name, fn, src_prefix, dst_prefix) < 0 ||
			    !paramset_find(ps, name)) {
				rc = fail(err, errlen, CKPT_EMISMATCH,
				          "%s: file tensor \"%s\" has no parameter \"%s\" in the model (different "
				          "model configuration?)",
				          path, fn, name);
				goto out;
			}
		}
	}
	int64_t opt_steps = 0;
	if (opt) {
		const char *ms = checkpoint_meta(ck, "ssld.optim_steps");
		int64_t nfile = 0;
		if (!ms || parse_i64(ms, &opt_steps) < 0) {
			rc = fail(err, errlen, CKPT_EMISMATCH, "%s: holds no optimizer state", path);
			goto out;
		}
		for (int i = 0; i < ck->n; i++)
			nfile += starts_with(ck->e[i].name, CK_OPTIM_PREFIX);
		if (nfile != nst) {
			rc = fail(err, errlen, CKPT_EMISMATCH,
			          "%s: holds %lld optimizer tensors but the optimizer has %d (different "
			          "optimizer or model?)",
			          path, (long long)nfile, nst);
			goto out;
		}
		for (int k = 0; k < nst; k++) {
			const char *sn;
			const Tensor *t = optim_state_at(opt, k, &sn);
			snprintf(name, sizeof name, "%s%s", CK_OPTIM_PREFIX, sn);
			const Tensor *f = checkpoint_find(ck, name);
			if (!f) {
				rc = fail(err, errlen, CKPT_EMISMATCH,
				          "%s: optimizer tensor \"%s\" is missing (saved with another optimizer?)",
				          path, name);
				goto out;
			}
			if (!tensor_same_shape(f, t)) {
				tensor_shape_str(f, sa, sizeof sa);
				tensor_shape_str(t, sb, sizeof sb);
				rc = fail(err, errlen, CKPT_EMISMATCH,
				          "%s: optimizer tensor \"%s\" has shape %s, expected %s", path, name, sa,
				          sb);
				goto out;
			}
			from[np + k] = f;
		}
	}
	if ((rc = checkpoint_get_state(ck, &s, err, errlen)) < 0)
		goto out;
	/* everything validated: copy */
	for (int i = 0; i < np; i++)
		if (from[i]) {
			Tensor *t = paramset_at(ps, i);
			memcpy(t->data, from[i]->data, t->size * sizeof(float));
		}
	if (opt) {
		for (int k = 0; k < nst; k++) {
			Tensor *t = optim_state_at(opt, k, NULL);
			memcpy(t->data, from[np + k]->data, t->size * sizeof(float));
		}
		optim_set_steps(opt, opt_steps);
	}
	if (st) {
		*st = s;
		memset(&s, 0, sizeof s);
	}
	rc = loaded;
out:
	checkpoint_state_free(&s);
	eng_free(from);
	checkpoint_close(ck);
	return rc;
}

int checkpoint_load(const char *path, ParamSet *ps, Optim *opt, CheckpointState *st,
                    const char *prefix, char *err, size_t errlen)
{
	return load_impl(path, ps, opt, prefix, prefix, 0, st, err, errlen);
}

int checkpoint_load_prefix(const char *path, ParamSet *ps, const char *src_prefix,
                           const char *dst_prefix, int flags, CheckpointState *st, char *err,
                           size_t errlen)
{
	return load_impl(path, ps, NULL, src_prefix, dst_prefix, flags, st, err, errlen);
}

/* ==== writing ================================================================================= */

#define CK_MAX_META 16

typedef struct Writer {
	CkEntry *e;
	char **names;       /* owned stored names */
	int n;
	CkMeta meta[CK_MAX_META];
	char metabuf[CK_MAX_META][96];
	int nmeta;
	int (*may_commit)(void *user);   /* asked after the file is written, before it replaces path */
	void *commit_user;
} Writer;

static void writer_free(Writer *w)
{
	if (w->names)
		for (int i = 0; i < w->n; i++)
			eng_free(w->names[i]);
	eng_free(w->names);
	eng_free(w->e);
}

static int writer_add(Writer *w, const char *prefix, const char *name, const char *cut,
                      const Tensor *t)
{
	size_t len = strlen(prefix) + strlen(name) + 1;
	char *s = eng_malloc(len);
	if (!s)
		return -1;
	snprintf(s, len, "%s%s", prefix, name + (cut ? strlen(cut) : 0));
	CkEntry *e = &w->e[w->n];
	memset(e, 0, sizeof *e);
	w->names[w->n++] = s;
	e->name = s;
	e->dtype = "F32";
	e->ndim = t->ndim;
	for (int d = 0; d < t->ndim; d++)
		e->dims[d] = (uint64_t)t->shape[d];
	e->src = t;
	return 0;
}

/* A metadata pair; the value is borrowed until the file is written. */
static void writer_meta(Writer *w, const char *key, const char *value)
{
	if (w->nmeta < CK_MAX_META)
		w->meta[w->nmeta++] = (CkMeta){ key, value };
}

static void writer_metaf(Writer *w, const char *key, const char *fmt, ...)
{
	if (w->nmeta >= CK_MAX_META)
		return;
	char *buf = w->metabuf[w->nmeta];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof w->metabuf[0], fmt, ap);
	va_end(ap);
	writer_meta(w, key, buf);
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Offsets, checksums, the header text, and the atomic write. */
static int write_file(const char *path, Writer *w, char *err, size_t errlen)
{
	int rc = 0;
	if (w->nmeta > CK_MAX_META - 3)
		return fail(err, errlen, CKPT_EINVAL, "%s: too many metadata keys", path);
	Sbuf b = { 0 };
	char *tmp = NULL, *dir = NULL;
	FILE *f = NULL;
	int fd = -1;
	char **sorted = eng_malloc((size_t)(w->n ? w->n : 1) * sizeof *sorted);
	if (!sorted)
		return fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
	for (int i = 0; i < w->n; i++) {
		sorted[i] = w->names[i];
		if (!ck_name_ok(w->names[i]) || !utf8_valid(w->names[i]) || strcmp(w->names[i], "__metadata__") == 0) {
			eng_free(sorted);
			return fail(err, errlen, CKPT_EINVAL, "%s: cannot store a tensor named \"%s\"", path,
			            w->names[i]);
		}
	}
	qsort(sorted, (size_t)w->n, sizeof *sorted, cmp_str_ptr);
	for (int i = 1; i < w->n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0) {
			rc = fail(err, errlen, CKPT_EINVAL, "%s: two tensors would be stored as \"%s\"", path,
			          sorted[i]);
			eng_free(sorted);
			return rc;
		}
	eng_free(sorted);

	uint64_t off = 0;
	uint32_t dcrc = 0;
	for (int i = 0; i < w->n; i++) {
		w->e[i].begin = off;
		off += (uint64_t)w->e[i].src->size * 4;
		w->e[i].end = off;
		dcrc = crc_update(dcrc, w->e[i].src->data, w->e[i].src->size * sizeof(float));
	}
	writer_meta(w, "ssld.format", "1");
	writer_metaf(w, CK_KEY_DATA_CRC, "%08x", dcrc);
	uint32_t hcrc = header_digest(w->e, w->n, w->meta, w->nmeta);
	writer_metaf(w, CK_KEY_HEADER_CRC, "%08x", hcrc);

	sb_puts(&b, "{\"__metadata__\":{");
	for (int i = 0; i < w->nmeta; i++) {
		if (i)
			sb_puts(&b, ",");
		sb_json_str(&b, w->meta[i].key);
		sb_puts(&b, ":");
		sb_json_str(&b, w->meta[i].value);
	}
	sb_puts(&b, "}");
	for (int i = 0; i < w->n; i++) {
		const CkEntry *e = &w->e[i];
		sb_puts(&b, ",");
		sb_json_str(&b, e->name);
		sb_puts(&b, ":{\"dtype\":\"F32\",\"shape\":[");
		for (int d = 0; d < e->ndim; d++) {
			if (d)
				sb_puts(&b, ",");
			sb_printf(&b, "%llu", (unsigned long long)e->dims[d]);
		}
		sb_puts(&b, "],\"data_offsets\":[");
		sb_printf(&b, "%llu,%llu", (unsigned long long)e->begin, (unsigned long long)e->end);
		sb_puts(&b, "]}");
	}
	sb_puts(&b, "}");
	while ((8 + b.n) % 8)
		sb_puts(&b, " ");
	if (b.oom) {
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory building the header", path);
		goto out;
	}

	size_t pl = strlen(path);
	tmp = eng_malloc(pl + 16);
	dir = eng_malloc(pl + 2);
	if (!tmp || !dir || ssld_fault("checkpoint_alloc")) {   /* fault.h */
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, pl + 2, ".");
	else if (slash == path)
		snprintf(dir, pl + 2, "/");
	else
		snprintf(dir, pl + 2, "%.*s", (int)(slash - path), path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: cannot create a temporary file in %s: %s", path, dir,
		          strerror(errno));
		eng_free(tmp);
		tmp = NULL;
		goto out;
	}
	fchmod(fd, 0644);
	f = fdopen(fd, "wb");
	if (!f) {
		rc = fail(err, errlen, CKPT_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	unsigned char lenb[8];
	for (int i = 0; i < 8; i++)
		lenb[i] = (unsigned char)((uint64_t)b.n >> (8 * i));
	int ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(b.p, 1, b.n, f) == b.n;
	for (int i = 0; ok && i < w->n; i++) {
		const Tensor *t = w->e[i].src;
		ok = fwrite(t->data, sizeof(float), t->size, f) == t->size;
	}
	if (ok && ssld_fault("checkpoint_write")) {   /* fault.h: the disk is full */
		ok = 0;
		errno = ENOSPC;
	}
	if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: writing %s failed: %s", path, tmp, strerror(errno));
		goto out;
	}
	int cl = fclose(f);
	f = NULL;
	if (cl != 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
		goto out;
	}
	if (w->may_commit && !w->may_commit(w->commit_user)) {
		rc = 1;   /* refused: out unlinks tmp, path keeps what it had */
		goto out;
	}
	if (rename(tmp, path) != 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: rename from %s failed: %s", path, tmp,
		          strerror(errno));
		goto out;
	}
	eng_free(tmp);
	tmp = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		rc = fail(err, errlen, CKPT_EIO, "%s: fsync of directory %s failed: %s", path, dir,
		          strerror(errno));
	}
	if (dfd >= 0)
		close(dfd);
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		eng_free(tmp);
	}
	eng_free(dir);
	sb_free(&b);
	return rc;
}

static int writer_init(Writer *w, int n)
{
	memset(w, 0, sizeof *w);
	w->e = eng_calloc((size_t)(n ? n : 1), sizeof *w->e);
	w->names = eng_calloc((size_t)(n ? n : 1), sizeof *w->names);
	return w->e && w->names ? 0 : -1;
}

int checkpoint_save(const char *path, const ParamSet *ps, const Optim *opt,
                    const CheckpointState *st, char *err, size_t errlen)
{
	return checkpoint_save_guarded(path, ps, opt, st, NULL, NULL, err, errlen);
}

int checkpoint_save_guarded(const char *path, const ParamSet *ps, const Optim *opt,
                            const CheckpointState *st, int (*may_commit)(void *user), void *user,
                            char *err, size_t errlen)
{
	if (!path || !ps)
		return fail(err, errlen, CKPT_EINVAL, "checkpoint save: path and ParamSet are required");
	int np = paramset_count(ps), nst = opt ? optim_state_count(opt) : 0;
	Writer w;
	int rc;
	if (writer_init(&w, np + nst) < 0) {
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (int i = 0; i < np; i++) {
		const Tensor *t = paramset_at(ps, i);
		if (writer_add(&w, "", t->name, NULL, t) < 0) {
			rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
			goto out;
		}
	}
	for (int k = 0; k < nst; k++) {
		const char *sn;
		const Tensor *t = optim_state_at(opt, k, &sn);
		if (writer_add(&w, CK_OPTIM_PREFIX, sn, NULL, t) < 0) {
			rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
			goto out;
		}
	}
	if (opt) {
		writer_metaf(&w, "ssld.optim_steps", "%lld", (long long)optim_steps(opt));
		writer_metaf(&w, "ssld.optim_tensors", "%d", nst);
	}
	if (st) {
		writer_metaf(&w, "ssld.step", "%lld", (long long)st->step);
		writer_metaf(&w, "ssld.epoch", "%lld", (long long)st->epoch);
		writer_metaf(&w, "ssld.elapsed_s", "%.17g", isfinite(st->elapsed_s) ? st->elapsed_s : 0.0);
		if (st->loss != 0 && isfinite(st->loss))
			writer_metaf(&w, "ssld.loss", "%.9g", st->loss);
		const uint64_t *r = st->rng.s;
		if (r[0] | r[1] | r[2] | r[3])
			writer_metaf(&w, "ssld.rng", "%016llx,%016llx,%016llx,%016llx",
			             (unsigned long long)r[0], (unsigned long long)r[1],
			             (unsigned long long)r[2], (unsigned long long)r[3]);
		if (st->method)
			writer_meta(&w, "ssld.method", st->method);
		if (st->encoder_config_json)
			writer_meta(&w, "ssld.encoder_config", st->encoder_config_json);
		if (st->job_key)
			writer_meta(&w, "ssld.job_key", st->job_key);
		if (st->spec_sha256)
			writer_meta(&w, "ssld.spec_sha256", st->spec_sha256);
	}
	w.may_commit = may_commit;
	w.commit_user = user;
	rc = write_file(path, &w, err, errlen);
out:
	writer_free(&w);
	return rc;
}

int checkpoint_export_prefix(const char *path, const ParamSet *ps, const char *src_prefix,
                             const char *dst_prefix, const char *config_json, char *err,
                             size_t errlen)
{
	if (!path || !ps)
		return fail(err, errlen, CKPT_EINVAL, "checkpoint export: path and ParamSet are required");
	src_prefix = src_prefix ? src_prefix : "";
	dst_prefix = dst_prefix ? dst_prefix : "";
	int np = paramset_count(ps);
	Writer w;
	int rc;
	if (writer_init(&w, np) < 0) {
		rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	for (int i = 0; i < np; i++) {
		const Tensor *t = paramset_at(ps, i);
		if (!starts_with(t->name, src_prefix))
			continue;
		if (writer_add(&w, dst_prefix, t->name, src_prefix, t) < 0) {
			rc = fail(err, errlen, CKPT_ENOMEM, "%s: out of memory", path);
			goto out;
		}
	}
	if (w.n == 0) {
		rc = fail(err, errlen, CKPT_EINVAL, "%s: no parameter name starts with \"%s\"", path,
		          src_prefix);
		goto out;
	}
	if (config_json)
		writer_meta(&w, "ssld.encoder_config", config_json);
	rc = write_file(path, &w, err, errlen);
out:
	writer_free(&w);
	return rc;
}
