/* suggest.h - "did you mean": the known word nearest to a mistyped one, for an unknown command,
 * subcommand, option or setting.
 *
 *   static const char *const subs[] = { "create", "list", "revoke", "off" };
 *   const char *near = cli_suggest("craete", subs, sizeof subs[0], 4);   // "create"
 */
#ifndef SSLD_CLI_SUGGEST_H
#define SSLD_CLI_SUGGEST_H

#include <stddef.h>

/* The candidate closest to word by edit distance (a swap of two neighbours counts once), or NULL
 * when none is close enough to be a likely typo. The n candidates are `const char *` fields
 * stride bytes apart: an array of structs (stride = sizeof the struct, cands = &a[0].name) or
 * of strings (stride = sizeof(char *)); NULL entries are skipped. */
const char *cli_suggest(const char *word, const void *cands, size_t stride, size_t n);

#endif
