/* strbuf.h - one growable text buffer for hand-built text and JSON (HTTP answers, checkpoint
 * headers), and the UTF-8 check that keeps such JSON valid.
 *
 *   Sbuf b = { 0 };
 *   sb_puts(&b, "{\"name\":");
 *   sb_json_str(&b, name);           // quoted and escaped; invalid UTF-8 becomes U+FFFD
 *   sb_printf(&b, ",\"step\":%lld}", (long long)step);
 *   if (b.oom) { sb_free(&b); return -1; }
 *   use(b.p, b.n);                   // NUL-terminated; the caller owns b.p (free() it)
 *
 * After the first allocation failure the buffer sets oom and ignores further appends, so a
 * builder checks once at the end. It never aborts.
 */
#ifndef SSLD_COMMON_STRBUF_H
#define SSLD_COMMON_STRBUF_H

#include <stddef.h>

typedef struct Sbuf {
	char *p;        /* NUL-terminated text, malloc'd; NULL while empty */
	size_t n, cap;  /* bytes of text (without the NUL), bytes allocated */
	int oom;        /* an append failed: the text is incomplete */
} Sbuf;

void sb_putn(Sbuf *b, const char *s, size_t n);
void sb_puts(Sbuf *b, const char *s);
__attribute__((format(printf, 2, 3))) void sb_printf(Sbuf *b, const char *fmt, ...);
/* A quoted, escaped JSON string, or null for s == NULL. A byte that does not start well-formed
 * UTF-8 becomes U+FFFD, so the answer is always valid JSON. */
void sb_json_str(Sbuf *b, const char *s);
/* A JSON number (%.7g), or null for NaN and infinities. */
void sb_num(Sbuf *b, double v);
/* Percent-encodes s for a URL path: keeps '/' and the unreserved characters. */
void sb_url_path(Sbuf *b, const char *s);
/* Frees the text and empties the buffer (a zeroed Sbuf is a no-op). */
void sb_free(Sbuf *b);

/* Bytes of the well-formed UTF-8 sequence at s[0..n) (1 to 4), or 0 if none starts there
 * (overlong forms, surrogates and code points above U+10FFFF are not well-formed). */
size_t utf8_seq_len(const unsigned char *s, size_t n);
/* 1 if the NUL-terminated s is well-formed UTF-8 throughout. */
int utf8_valid(const char *s);

#endif
