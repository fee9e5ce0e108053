/* schema.h - `ssld schema [--markdown]`: print the job spec's JSON Schema (draft 2020-12) for
 * editors, or its reference for people (docs/spec.md). */
#ifndef SSLD_CLI_SCHEMA_H
#define SSLD_CLI_SCHEMA_H

/* argv[0] is "schema". Returns the exit status (0, 1 when writing failed, 2 usage). */
int cli_schema_main(int argc, char **argv);

#endif
