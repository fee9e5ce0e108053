/* strbuf.c - the growable text buffer and the UTF-8 check (see strbuf.h). It builds text only;
 * reading JSON is cJSON's job. */
#include "strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_putn(Sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

void sb_puts(Sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_printf(Sbuf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		sb_putn(b, tmp, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb_putn(b, big, (size_t)n);
	free(big);
}

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	unsigned char lo = 0x80, hi = 0xbf;   /* the second byte's range: no overlongs, surrogates, > U+10FFFF */
	if (c == 0xe0) lo = 0xa0;
	if (c == 0xed) hi = 0x9f;
	if (c == 0xf0) lo = 0x90;
	if (c == 0xf4) hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int utf8_valid(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

void sb_json_str(Sbuf *b, const char *s)
{
	if (!s) {
		sb_puts(b, "null");
		return;
	}
	sb_putn(b, "\"", 1);
	const char *run = s;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80) {
			size_t n = utf8_seq_len(p, strnlen((const char *)p, 4));
			if (n > 0) {
				p += n - 1;
				continue;
			}
			sb_putn(b, run, (size_t)((const char *)p - run));
			sb_puts(b, "\xef\xbf\xbd");
			run = (const char *)p + 1;
			continue;
		}
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		sb_putn(b, run, (size_t)((const char *)p - run));
		if (*p == '"') sb_puts(b, "\\\"");
		else if (*p == '\\') sb_puts(b, "\\\\");
		else if (*p == '\n') sb_puts(b, "\\n");
		else if (*p == '\t') sb_puts(b, "\\t");
		else sb_printf(b, "\\u%04x", *p);
		run = (const char *)p + 1;
	}
	sb_puts(b, run);
	sb_putn(b, "\"", 1);
}

void sb_num(Sbuf *b, double v)
{
	if (!isfinite(v)) {
		sb_puts(b, "null");
		return;
	}
	sb_printf(b, "%.7g", v);
}

void sb_url_path(Sbuf *b, const char *s)
{
	static const char hx[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p)) {
			sb_putn(b, (const char *)p, 1);
		} else {
			char e[3] = { '%', hx[*p >> 4], hx[*p & 15] };
			sb_putn(b, e, 3);
		}
	}
}

void sb_free(Sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}
