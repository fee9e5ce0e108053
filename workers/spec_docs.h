/* spec_docs.h - docs/spec.md, the reference of every job-spec key, method parameter and protocol
 * key, generated from the key table and the catalogue (`ssld schema --markdown > docs/spec.md`;
 * the jobspec test fails when the committed file differs). */
#ifndef SSLD_WORKERS_SPEC_DOCS_H
#define SSLD_WORKERS_SPEC_DOCS_H

/* The Markdown text (malloc'd; NULL on out of memory). */
char *jobspec_docs_markdown(void);

#endif
