/* examples_embedded.h - the job files of examples/, compiled into the binary at build time
 * (workers/embed_examples.c generates the table), so the method catalogue serves each method's
 * example file exactly as it is in examples/.
 *
 *   const EmbeddedExample *e = embedded_example_find("simclr-fashion-mnist.json");
 *   fwrite(e->text, 1, e->len, stdout);
 */
#ifndef SSLD_WORKERS_EXAMPLES_EMBEDDED_H
#define SSLD_WORKERS_EXAMPLES_EMBEDDED_H

typedef struct EmbeddedExample {
	const char *name;   /* base file name: "simclr-fashion-mnist.json" */
	const char *text;   /* the file's bytes, NUL-terminated */
	long len;
} EmbeddedExample;

extern const EmbeddedExample embedded_examples[];   /* ended by a zero entry */
extern const int embedded_example_count;

#endif
