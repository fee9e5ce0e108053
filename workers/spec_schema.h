/* spec_schema.h - the JSON Schema (draft 2020-12) of a job spec, generated from the key table
 * (spec_table.c) and the method catalogue, for `ssld schema` and `GET /v1/schema`.
 *
 * Editors validate and complete job files against it: a job file may name it in "$schema", which
 * the parser accepts and ignores. It rejects what the server rejects on types, ranges, choices,
 * unknown keys and keys of another variant (encoder, optimizer, format, protocol, method params);
 * rules that need files or several keys' values (dataset paths, heads dividing dim, pool_grid
 * splitting the feature map) are the server's alone.
 *
 *   char *s = jobspec_schema_json();   // malloc'd, pretty-printed; free()
 */
#ifndef SSLD_WORKERS_SPEC_SCHEMA_H
#define SSLD_WORKERS_SPEC_SCHEMA_H

/* The schema as JSON text (malloc'd; NULL on out of memory). */
char *jobspec_schema_json(void);

#endif
