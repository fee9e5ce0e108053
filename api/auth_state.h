/* auth_state.h - whether a state directory requires authentication, kept beside the database.
 *
 * Once tokens have been configured for a state directory (`ssld token create`, or a daemon that
 * started with tokens), writes keep needing a bearer token even after the last token is revoked:
 * losing the last token must not open the API. Only `ssld token off` turns authentication off.
 * The state is the file STATE_DIR/auth-required; the daemon also records in it the tokens file
 * it runs with, so `ssld token list` can say what is in force.
 *
 *   if (auth_state_required(dir) == 1) ... every write needs a token ...
 *   auth_state_set(dir, "/etc/ssld/tokens", 1, err, sizeof err);   // the daemon, at start
 *   auth_state_set(dir, NULL, 0, err, sizeof err);                 // `ssld token create`
 */
#ifndef SSLD_API_AUTH_STATE_H
#define SSLD_API_AUTH_STATE_H

#include <stddef.h>

/* 1 when authentication is required, 0 when it is not, < 0 (-errno) when that cannot be told
 * (the caller should then treat it as required). */
int auth_state_required(const char *state_dir);
/* Require authentication. rewrite = 0 keeps an existing file as it is; rewrite = 1 replaces it,
 * recording tokens_file (NULL = none). 0, or -errno with err filled. */
int auth_state_set(const char *state_dir, const char *tokens_file, int rewrite, char *err, size_t errlen);
/* Stop requiring authentication. 0 (also when it was not required), or -errno with err filled. */
int auth_state_clear(const char *state_dir, char *err, size_t errlen);
/* The tokens file the daemon last started with, recorded by auth_state_set: 1 with out filled,
 * 0 when none is recorded. */
int auth_state_tokens_file(const char *state_dir, char *out, size_t cap);

#endif
