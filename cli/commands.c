/* commands.c - the command table and the dispatch through it (see commands.h).
 *
 * The usage texts live here, in the rows, so that the help, `ssld CMD --help` and the error of
 * a mistyped command cannot disagree. Not here: what a command does (its own file).
 */
#include "commands.h"

#include <stdio.h>
#include <string.h>

#include "../daemon/serve.h"
#include "args.h"
#include "suggest.h"

#ifndef SSLD_VERSION
#define SSLD_VERSION "unknown"
#endif
#ifndef SSLD_SYSCONFDIR
#define SSLD_SYSCONFDIR "/etc"
#endif

/* The options every command that talks to a server takes (client.c reads them). */
#define CLIENT_OPTIONS \
	"  --server URL     the daemon (default: $SSLD_SERVER, else 'server = URL' in\n" \
	"                   ~/.config/ssld/client.conf, else http://127.0.0.1:8080)\n" \
	"  --token TOKEN    an API token (default: $SSLD_TOKEN, else 'token = TOKEN' in client.conf)\n"

static int serve_command(int argc, char **argv)
{
	return serve_main(argc - 1, argv + 1);
}

static int version_command(int argc, char **argv);
static int help_command(int argc, char **argv);

const CliCommand cli_commands[] = {
	{ "serve", "run the training service: HTTP API, dashboard, workers",
	  "usage: ssld serve [--config FILE] [--listen ADDR:PORT] [--state-dir DIR] [flags]\n",
	  serve_command },
	{ "run", "run one job in the foreground, no daemon",
	  "usage: ssld run JOB.json [--out DIR] [--quiet] [--restart | --resume]\n"
	  "  Runs a job in the foreground; DIR (default ./runs/<job name>) receives\n"
	  "  results.json, checkpoint.safetensors, encoder.safetensors and artifacts.\n"
	  "  Ctrl-C checkpoints and stops; the same command resumes. A finished run is\n"
	  "  not run again, and a checkpoint of a different spec is not resumed:\n"
	  "  --restart  start over; DIR's old contents are moved to DIR.old-<time>\n"
	  "  --resume   resume DIR's checkpoint even though the spec changed\n"
	  "  --quiet    no progress, only warnings, errors and the results\n",
	  cli_run_main },
	{ "check", "every error of a job file, or its resolved spec and cost estimate",
	  "usage: ssld check JOB.json [--json]   (- reads standard input)\n"
	  "  Validates a job file as the server would (paths are checked to exist) and prints every\n"
	  "  error, field first; for a valid file the resolved spec and the estimate (parameters, peak\n"
	  "  memory of a training step, steps). Exit 0 valid, 1 invalid.\n"
	  "  --json   the object POST /v1/jobs?dry_run=1 answers\n",
	  cli_check_main },
	{ "schema", "the JSON Schema of a job file, for editors",
	  "usage: ssld schema [--markdown]\n"
	  "  Prints the job spec's JSON Schema (draft 2020-12; the same as GET /v1/schema):\n"
	  "    ssld schema > ssld-job.schema.json\n"
	  "  --markdown   the reference for people instead (docs/spec.md)\n",
	  cli_schema_main },
	{ "methods", "pretext methods, their parameters, and the evaluation protocols",
	  "usage: ssld methods [--output json]\n"
	  "  Lists every pretext method with its parameters (type, default, range) and every\n"
	  "  evaluation protocol: the catalogue GET /v1/methods serves (no server needed).\n"
	  "  --output json     that catalogue's JSON (--json is the same)\n",
	  cli_methods_main },
	{ "export", "a run's encoder as an ONNX model or under torchvision's names",
	  "usage: ssld export JOB_DIR|encoder.safetensors [--format onnx|torchvision] [--out FILE]\n"
	  "                   [--input-shape C,H,W|D|T]\n"
	  "  Writes the encoder of a run (JOB_DIR/encoder.safetensors and its config) as an ONNX\n"
	  "  model (opset 17): input \"input\" float32 (N,C,H,W), (N,D) for an mlp on vectors or\n"
	  "  (N,T) token ids for a transformer; output \"features\" (N,D): the encoder's forward\n"
	  "  pass in eval mode. docs/export.md has the details.\n"
	  "  --format onnx       the ONNX model (default)\n"
	  "  --format torchvision  a resnet's weights as safetensors under torchvision.models\n"
	  "                      state-dict names (no fc.*), for torchvision or another job's init_from\n"
	  "  --out FILE          default: encoder.onnx (encoder.torchvision.safetensors) beside the\n"
	  "                      weights\n"
	  "  --input-shape S     one sample's shape C,H,W, D or T (default: config.json's in_shape,\n"
	  "                      else what the weights fix; an mlp given C,H,W flattens images)\n",
	  cli_export_main },
	{ "submit", "queue a job on a server; prints its id",
	  "usage: ssld submit JOB.json [--set KEY=VALUE]... [--watch [--interval SECONDS]]   (- reads stdin)\n"
	  "       ssld submit --from ID [--set KEY=VALUE]... [--watch]\n"
	  "  --from ID         start from job ID's spec on the server (every default filled in): run it again\n"
	  "  --set KEY=VALUE   change one field first, by its dotted path (pretrain.optimizer.lr=3e-3,\n"
	  "                    seed=2, evaluations.0.label_fractions=[0.01,0.1]); VALUE is read as JSON,\n"
	  "                    else taken as a string (name=rerun); repeat it for several fields\n"
	  "  --watch           follow the job as `ssld watch` does; exit 0 if it succeeded\n"
	  "  --interval S      seconds between polls while watching (default 1)\n"
	  "  The server validates the result as any submission: an error names the field.\n"
	  CLIENT_OPTIONS,
	  cli_submit_main },
	{ "ls", "list a server's jobs",
	  "usage: ssld ls [--state S,..] [--owner NAME] [--group ID] [--limit N] [--output json]\n"
	  "  AGE is the time since submission, TIME how long the job ran; RESULT is the headline gain\n"
	  "  over the from-scratch baseline (+7.9 pts @1% labels) when the job has one, else its best\n"
	  "  test accuracy and the label fraction it was reached at.\n"
	  "  --state S,..      only jobs in these states (queued, running, succeeded, failed, cancelled)\n"
	  "  --owner NAME      only this token owner's jobs\n"
	  "  --group ID        only the jobs of this sweep (a sweep's job shows [group ID] after its name)\n"
	  "  --limit N         at most N jobs, newest first (1..1000, default 50)\n"
	  OUTPUT_USAGE
	  CLIENT_OPTIONS,
	  cli_ls_main },
	{ "show", "one job: state, progress, latest metrics, error",
	  "usage: ssld show ID [--output json]\n"
	  OUTPUT_USAGE
	  CLIENT_OPTIONS,
	  cli_show_main },
	{ "watch", "follow a job: progress bar with ETA and loss, then its results",
	  "usage: ssld watch ID [--interval SECONDS]\n"
	  "  A bar redrawn in place on a terminal, plain lines otherwise; the results table at the end.\n"
	  "  Exit 0 if the job succeeded, 1 otherwise.\n"
	  "  --interval S      seconds between polls (0.05..3600, default 1)\n"
	  CLIENT_OPTIONS,
	  cli_watch_main },
	{ "logs", "a job's event log; --follow until it ends",
	  "usage: ssld logs ID [--follow [--interval SECONDS]] [--output json]\n"
	  "  The job's events (start, data and model, checkpoints, evaluations, outcome), oldest first.\n"
	  "  --follow          keep printing new events until the job has ended\n"
	  "  --interval S      seconds between polls while following (0.05..3600, default 1)\n"
	  "  --output json     the server's answer with every event (with --follow: one event object\n"
	  "                    per line as they come; --json is the same)\n"
	  CLIENT_OPTIONS,
	  cli_logs_main },
	{ "metrics", "a job's metric history: a summary per key, or all of it as CSV",
	  "usage: ssld metrics ID [--csv] [--keys K,...] [-o FILE] [--output json]\n"
	  "  Without --csv: one line per metric key (points, last step, last value, min, max).\n"
	  "  --csv             every point as step,key,value rows (GET /v1/jobs/{id}/metrics.csv)\n"
	  "  --keys K,...      only these metric keys\n"
	  "  -o FILE           write the CSV to FILE instead of standard output\n"
	  OUTPUT_USAGE
	  CLIENT_OPTIONS,
	  cli_metrics_main },
	{ "group", "a sweep's jobs and its results per setting (mean +- std over seeds)",
	  "usage: ssld group ID [--cancel] [--output json]\n"
	  "  A job spec with a \"sweep\" (docs/API.md) queues a group; this shows its jobs' states and, per\n"
	  "  setting, each evaluation's mean and sample std over seeds, the best setting marked *.\n"
	  "  --cancel          cancel the group's queued and running jobs\n"
	  OUTPUT_USAGE
	  CLIENT_OPTIONS,
	  cli_group_main },
	{ "dataset", "upload a dataset to the server, list, show or delete uploaded datasets",
	  "usage: ssld dataset push DIR|FILE NAME | ls [--owner OWNER] | show [OWNER/]NAME | rm [OWNER/]NAME\n"
	  "  push   uploads FILE (.tar, .tar.gz/.tgz, .zip) or DIR (packed as a tar.gz first) as NAME,\n"
	  "         progress on stderr; a job then names it \"dataset:OWNER/NAME\" (docs/API.md).\n"
	  "         A failed push leaves nothing on the server: run it again\n"
	  "  ls     the datasets on the server (--owner: one owner's)\n"
	  "  show   format, files per class and split, bytes\n"
	  "  rm     delete (its owner or an admin; refused while a queued or running job uses it)\n"
	  OUTPUT_USAGE
	  CLIENT_OPTIONS,
	  cli_dataset_main },
	{ "cancel", "cancel a queued or running job",
	  "usage: ssld cancel ID\n"
	  "  A queued job is cancelled at once; a running one stops within a training step.\n"
	  CLIENT_OPTIONS,
	  cli_cancel_main },
	{ "results", "the evaluation table of a finished job",
	  "usage: ssld results ID [--output json]\n"
	  "  The headline (the gain over the from-scratch baseline) when the job has one, the pretext\n"
	  "  figures, then one row per evaluation; accuracies in percent. A job without results says why.\n"
	  "  --output json     the job's results object as the server sends it (--json is the same)\n"
	  CLIENT_OPTIONS,
	  cli_results_main },
	{ "artifacts", "list a job's files on the server, or download one",
	  "usage: ssld artifacts ID [--output json]\n"
	  "       ssld artifacts ID --get NAME [-o FILE]\n"
	  "  Lists the files the job keeps (checkpoint, encoder, results, sample grids) with their sizes.\n"
	  "  --get NAME        download artifact NAME, checked against the SHA-256 the server lists\n"
	  "  -o FILE           where to write it (default: NAME's base name here; - for stdout)\n"
	  OUTPUT_USAGE
	  CLIENT_OPTIONS,
	  cli_artifacts_main },
	{ "generate", "continue a prompt or draw samples from a job's checkpoint",
	  "usage: ssld generate ID [options] [-o FILE]               (a job on the server)\n"
	  "       ssld generate JOBDIR [--spec JOB.json] [options]\n"
	  "       ssld generate --spec JOB.json [options]      (JOBDIR = runs/<job name>)\n"
	  "  Continues --prompt with a trained language model (autoregressive_lm), or draws\n"
	  "  samples from a generative image method, using the job's last checkpoint: on the server\n"
	  "  (POST /v1/jobs/ID/generate, its limits apply), or JOBDIR/checkpoint.safetensors here.\n"
	  "  -o FILE              a server job's image grid goes here (default: its artifact name,\n"
	  "                       samples-generated-K.png, here; - for stdout); a JOBDIR's goes into it\n"
	  "  --prompt TEXT        text to continue (default empty)\n"
	  "  --max-tokens N       bytes to generate (default 200)\n"
	  "  --temperature T      softmax temperature, 0 = greedy (default 1.0)\n"
	  "  --top-k K            sample among the K most likely bytes, 0 = all (default 0)\n"
	  "  --top-p P            nucleus sampling, 1 = off (default 1.0)\n"
	  "  --n N                image methods: how many samples (default 64)\n"
	  "  --seed S             sampling seed (default 0)\n"
	  "  --output json        print the JSON object the HTTP API returns (--json is the same)\n"
	  "  --server URL, --token TOKEN   as for the other server commands (ssld help submit)\n",
	  cli_generate_main },
	{ "token", "API tokens on the server: create, list, revoke, off",
	  "usage: ssld token create NAME [--admin]   print a new token once (stored only as its SHA-256)\n"
	  "       ssld token list                    names, roles and creation times\n"
	  "       ssld token revoke NAME             the token stops working at the next request\n"
	  "       ssld token off                     turn authentication off (no tokens may remain): the API\n"
	  "                                          becomes open to anyone who can connect\n"
	  "  --state-dir DIR (the daemon's state directory) or --config FILE (its state-dir);\n"
	  "  default: the state-dir of " SSLD_SYSCONFDIR "/ssld/ssld.conf, else $STATE_DIRECTORY, else\n"
	  "  /var/lib/ssld (first, when that file exists: the installed service) or an existing ./state.\n"
	  "Run it where ssld runs, as root or the service user (root drops to the owner of the state directory).\n"
	  "Once any token exists, POSTs to the API need 'Authorization: Bearer TOKEN'; the token's NAME is\n"
	  "recorded as the owner of the jobs it submits; --admin tokens may cancel anyone's jobs. Revoking\n"
	  "the last token does not open the API: writes are refused until a token exists or `ssld token off`.\n",
	  cli_token_main },
	{ "migrate", "copy a single node's SQLite queue and history into PostgreSQL (several nodes)",
	  "usage: ssld migrate --from STATE_DIR/ssld.db --to postgresql://USER@HOST/DBNAME\n"
	  "  Copies every job (queued ones stay queued, with their ids), sweep group, metric point, event,\n"
	  "  artifact record, token and uploaded dataset record into an empty PostgreSQL database, in one\n"
	  "  transaction; a database that already holds jobs, groups, tokens or datasets is refused.\n"
	  "  Stop the daemon first; then start it (and other nodes) with --database set to that URL.\n"
	  "  Job directories stay where they are: on several nodes, put them on the shared directory.\n",
	  cli_migrate_main },
	{ "version", "print the version",
	  "usage: ssld version   (or ssld --version)\n",
	  version_command },
	{ "help", "this list, or one command's usage",
	  "usage: ssld help [COMMAND]\n",
	  help_command },
};
const int cli_n_commands = (int)(sizeof cli_commands / sizeof cli_commands[0]);

const CliCommand *cli_command_find(const char *name)
{
	for (int i = 0; i < cli_n_commands; i++)
		if (strcmp(cli_commands[i].name, name) == 0) return &cli_commands[i];
	return NULL;
}

void cli_command_usage(const char *name, FILE *f)
{
	const CliCommand *c = cli_command_find(name);
	if (c) fputs(c->usage, f);
}

static void print_table(FILE *f)
{
	fputs("usage: ssld COMMAND [ARGS]   (`ssld COMMAND --help` shows a command's usage)\n\ncommands:\n", f);
	for (int i = 0; i < cli_n_commands; i++) fprintf(f, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
	fputs("\nTo start the service: ssld serve (`ssld serve --help` lists its flags and configuration file).\n", f);
}

/* "did you mean" for a word that is not a command; returns the usage exit status. */
static int unknown_command(const char *word)
{
	const char *near = cli_suggest(word, &cli_commands[0].name, sizeof cli_commands[0], (size_t)cli_n_commands);
	fprintf(stderr, "ssld: unknown command '%s'", word);
	if (near) fprintf(stderr, "; did you mean '%s'?", near);
	fprintf(stderr, "\n(`ssld help` lists the commands)\n");
	return 2;
}

static int version_command(int argc, char **argv)
{
	CliOpt none[1] = { { 0 } };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, none, 0, pos, 0, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	printf("ssld %s\n", SSLD_VERSION);
	return 0;
}

static int help_command(int argc, char **argv)
{
	CliOpt none[1] = { { 0 } };
	const char *pos[1];
	int npos, rc = cli_args_parse(argv[0], argc, argv, none, 0, pos, 1, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	if (npos == 0) {
		print_table(stdout);
		return 0;
	}
	if (!cli_command_find(pos[0])) return unknown_command(pos[0]);
	cli_command_usage(pos[0], stdout);
	return 0;
}

int cli_dispatch(int argc, char **argv)
{
	if (argc < 2) {
		print_table(stdout);
		return 0;
	}
	const char *word = argv[1];
	if (strcmp(word, "--version") == 0) return version_command(1, argv + 1);
	if (strcmp(word, "-h") == 0 || strcmp(word, "--help") == 0) {
		print_table(stdout);
		return 0;
	}
	if (word[0] == '-') {
		/* A serve flag given without a command: say where such flags go. */
		fprintf(stderr, "ssld: unknown option '%s' (flags come after a command; to serve: `ssld serve %s ...`)\n"
		        "(`ssld help` lists the commands)\n", word, word);
		return 2;
	}
	const CliCommand *c = cli_command_find(word);
	if (!c) return unknown_command(word);
	return c->main(argc - 1, argv + 1);
}
