/* client.h - what the commands that talk to a running daemon share (submit, ls, show, watch,
 * logs, cancel, results): where the server and the token come from, one HTTP/1.1 request, the server's
 * error shown as it is.
 *
 * The server and token come from --server URL / --token TOKEN, else SSLD_SERVER / SSLD_TOKEN,
 * else "server = ..." / "token = ..." lines in $XDG_CONFIG_HOME/ssld/client.conf (default
 * ~/.config/ssld/client.conf), else http://127.0.0.1:8080 and no token.
 *
 *   CliOpt opts[] = { { "--json", NULL }, CLIENT_OPTS };
 *   ... cli_args_parse(...) ...
 *   Client c;
 *   if (client_init(&c, "show", &opts[1]) != 0) return 2;
 *   cJSON *job = client_get_json(&c, "show", "/v1/jobs/3", NULL);
 */
#ifndef SSLD_CLI_CLIENT_H
#define SSLD_CLI_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "args.h"

/* The two options every client command takes, in this order, last in its option array (a read
 * command has OUTPUT_OPTS of args.h just before them). */
#define CLIENT_OPTS { "--server", "URL", NULL, 0 }, { "--token", "TOKEN", NULL, 0 }

typedef struct Client {
	char server[512];   /* as given, for messages */
	char host[256], port[16];
	char token[512];
	const char *content_type;   /* of request bodies; NULL = application/json */
	/* Called as a request body goes out (sent of total bytes); NULL = none. */
	void (*progress)(void *user, size_t sent, size_t total);
	void *progress_user;
} Client;

typedef struct ClientResp {
	int status;
	char *body;         /* NUL-terminated; the caller frees */
	size_t len;
} ClientResp;

/* Resolves the server and token; flags are the two CLIENT_OPTS entries. 0, or 2 after printing
 * what is wrong (a bad client.conf, a server that is not http://HOST:PORT). */
int client_init(Client *c, const char *cmd, const CliOpt flags[2]);
/* One request (body may be NULL). 0 with *out filled (any HTTP status), or -1 with err (no answer). */
int client_http(const Client *c, const char *method, const char *path, const char *body, size_t blen,
                ClientResp *out, char *err, size_t errlen);
/* Receives a downloaded body piece by piece: 0, or -1 to stop (a write failed). */
typedef int (*client_sink_cb)(void *user, const void *data, size_t n);
/* GET path, a 200 answer's body streamed to sink (any size; out->len counts it, out->body is NULL);
 * another status's body is read into out->body as client_http does. 0 with *out filled, or -1
 * with err (no answer, a short body, or the sink refused). */
int client_download(const Client *c, const char *path, client_sink_cb sink, void *user, ClientResp *out, char *err,
                    size_t errlen);
/* GET path (an artifact's URL) into file ("-": standard output). The file is written beside
 * itself as FILE.part and renamed once whole, so a failed download leaves no half file. When
 * sha256 (hex) is given the bytes must have it. 0 (*size set when given), or 1 after printing why
 * (the server's error, a short or altered body, a write error). */
int client_save(const Client *c, const char *cmd, const char *path, const char *file, const char *sha256,
                long long *size);
/* Prints the server's error ("ssld cancel: HTTP 403 forbidden: job 3 belongs to 'bob'", every
 * error of a refused spec, a hint for 401) and returns 1. */
int client_server_error(const char *cmd, const ClientResp *r);
/* GET path -> parsed JSON (the caller deletes), or NULL after printing why; *status (if given)
 * is the HTTP status, 0 when there was no answer. */
cJSON *client_get_json(const Client *c, const char *cmd, const char *path, int *status);
/* A job id argument: 0, or -1 after printing what was expected. */
int client_parse_id(const char *cmd, const char *s, long long *id);
/* The start of a command that reads one job, `ssld CMD ID [--output json]` (argv[0] is CMD): parses
 * the arguments and GETs /v1/jobs/ID. The job's JSON (the caller deletes), or NULL with *status the
 * exit status (0 after --help, 1 no answer or a refusal, 2 usage). */
cJSON *client_fetch_job(int argc, char **argv, long long *id, int *json, int *status);
/* Pretty-printed JSON on stdout (--json). */
void client_print_json(const cJSON *j);

/* watch.c: follows job id until it ends; 0 if it succeeded (submit --watch uses it too). */
int client_watch(const Client *c, long long id, double interval);

#endif
