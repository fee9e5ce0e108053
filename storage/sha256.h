/* sha256.h - SHA-256 (FIPS 180-4) for artifact checksums and hashed API tokens.
 *
 *   char hex[65];
 *   sha256_hex("abc", 3, hex);                 // "ba7816bf..."
 *   if (sha256_file("/path", hex, &size, err, sizeof err) < 0) ...
 */
#ifndef SSLD_STORAGE_SHA256_H
#define SSLD_STORAGE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct Sha256 {
	uint32_t h[8];
	uint64_t len;          /* bytes hashed so far */
	uint8_t buf[64];
	size_t nbuf;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t out[32]);
/* Hex digest of a buffer (out: 65 bytes, NUL-terminated). */
void sha256_hex(const void *data, size_t n, char out[65]);
/* Hex digest and size of a file. 0, or -errno with err naming the file. */
int sha256_file(const char *path, char out[65], int64_t *size, char *err, size_t errlen);

#endif
