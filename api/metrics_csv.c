/* metrics_csv.c - the metric history as streamed CSV (see metrics_csv.h). */
#include "metrics_csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/log.h"

#define CSV_PAGE_ROWS 20000   /* points per key one page reads */
#define CSV_MAX_KEYS 64

typedef struct CsvStream {
	Store *st;
	int64_t job, cursor;
	char *keybuf;                    /* the keys= list, split in place; NULL = every key */
	const char *keys[CSV_MAX_KEYS];
	int nkeys;
	Sbuf out;                        /* formatted rows not yet handed to MHD */
	size_t sent;                     /* bytes of out already handed */
	int done;                        /* the last page was read */
} CsvStream;

/* A key as a CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
static void csv_field(Sbuf *b, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		sb_puts(b, s);
		return;
	}
	sb_putn(b, "\"", 1);
	for (const char *p = s; *p; p++) {
		if (*p == '"') sb_putn(b, "\"", 1);
		sb_putn(b, p, 1);
	}
	sb_putn(b, "\"", 1);
}

/* The points of one page, merged across keys by point id (the order they were recorded). */
static void format_page(Sbuf *b, const MetricSet *ms)
{
	size_t at[256] = { 0 };
	int n = ms->n < 256 ? ms->n : 256;
	for (;;) {
		int best = -1;
		for (int i = 0; i < n; i++)
			if (at[i] < ms->series[i].n &&
			    (best < 0 || ms->series[i].pts[at[i]].id < ms->series[best].pts[at[best]].id))
				best = i;
		if (best < 0) return;
		const MetricPoint *p = &ms->series[best].pts[at[best]++];
		sb_printf(b, "%lld,", (long long)p->step);
		csv_field(b, ms->series[best].key);
		sb_putn(b, ",", 1);
		if (p->value == p->value) sb_printf(b, "%.9g", p->value);
		sb_putn(b, "\n", 1);
	}
}

/* Reads the next page into s->out. 0, or < 0 with err (STORE_ENOTFOUND for a missing job). */
static int next_page(CsvStream *s, char *err, size_t errlen)
{
	MetricSet ms;
	int rc = store_metrics_read(s->st, s->job, s->cursor, s->nkeys ? s->keys : NULL, s->nkeys, CSV_PAGE_ROWS,
	                            &ms, err, errlen);
	if (rc < 0) return rc;
	format_page(&s->out, &ms);
	if (!ms.truncated || ms.cursor == s->cursor) s->done = 1;
	s->cursor = ms.cursor;
	metric_set_clear(&ms);
	if (s->out.oom) {
		snprintf(err, errlen, "out of memory formatting metrics");
		return -1;
	}
	return 0;
}

static ssize_t csv_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	CsvStream *s = cls;
	while (s->sent == s->out.n) {
		if (s->done) return MHD_CONTENT_READER_END_OF_STREAM;
		s->out.n = 0;
		s->sent = 0;
		char err[512];
		if (next_page(s, err, sizeof err) < 0) {
			slog(LOG_ERR, s->job, "metrics.csv: %s", err);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	size_t k = s->out.n - s->sent;
	if (k > max) k = max;
	memcpy(buf, s->out.p + s->sent, k);
	s->sent += k;
	return (ssize_t)k;
}

static void csv_free(void *cls)
{
	CsvStream *s = cls;
	free(s->out.p);
	free(s->keybuf);
	free(s);
}

enum MHD_Result job_metrics_csv(Req *r, int64_t id)
{
	static const char *const allowed[] = { "keys", NULL };
	if (check_query(r, allowed) < 0) return MHD_YES;
	CsvStream *s = calloc(1, sizeof *s);
	if (!s) return reply_error(r, 503, "out_of_memory", NULL, "cannot start the answer");
	s->st = r->api->cfg.store;
	s->job = id;
	const char *ks = query(r, "keys");
	if (ks && *ks) {
		if (strlen(ks) > 4095 || !(s->keybuf = strdup(ks))) {
			csv_free(s);
			return reply_error(r, 400, "invalid_parameter", "keys", "keys: the list is too long (at most 4095 bytes)");
		}
		char *save = NULL;
		for (char *t = strtok_r(s->keybuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (s->nkeys == CSV_MAX_KEYS) {
				csv_free(s);
				return reply_error(r, 400, "invalid_parameter", "keys", "keys: at most %d keys", CSV_MAX_KEYS);
			}
			s->keys[s->nkeys++] = t;
		}
	}
	sb_puts(&s->out, "step,key,value\n");
	/* The first page is read here, so a missing job or a failing database is a proper error
	 * status rather than a cut stream. */
	char err[512];
	int rc = next_page(s, err, sizeof err);
	if (rc < 0) {
		csv_free(s);
		if (rc == STORE_ENOTFOUND) return reply_error(r, 404, "not_found", NULL, "%s", err);
		slog(LOG_ERR, 0, "%s %s: %s", r->method, r->url, err);
		return reply_error(r, 503, "storage_error", NULL, "%s", err);
	}
	char name[64];
	snprintf(name, sizeof name, "job-%lld-metrics.csv", (long long)id);
	return reply_stream(r, csv_read, s, csv_free, "text/csv; charset=utf-8", name);
}
