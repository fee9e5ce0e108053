/* config.h - `ssld serve` configuration: defaults, then a config file, then flags (flags win).
 *
 * The file is "key = value" lines ('#' comments, values optionally in double quotes); keys are
 * the long flag names without "--" ('-' or '_' alike), data-root may repeat:
 *
 *   # /etc/ssld/ssld.conf
 *   listen = 127.0.0.1:8080
 *   state-dir = /var/lib/ssld
 *   data-root = /usr/share/datasets
 *   workers = 1
 *   # one of several nodes on one queue (docs/service.md, "Several boxes"):
 *   database = postgresql://ssld@db.example/ssld
 *   shared-dir = /mnt/ssld
 *   node = gpu-box-2
 *
 *   SsldConfig c;
 *   config_defaults(&c);
 *   if (config_from_args(&c, argc, argv, err, sizeof err) < 0) { usage error: exit 2 }
 */
#ifndef SSLD_DAEMON_CONFIG_H
#define SSLD_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_ROOTS 16

typedef struct SsldConfig {
	char config_file[1024];
	char listen[256];
	char state_dir[1024];
	/* Several boxes, one queue: every node names the same database and mounts the same shared
	 * directory; a node names itself in the jobs it claims. */
	char database[1024];         /* "" = STATE_DIR/ssld.db; a postgresql:// URL, or an SQLite file path */
	char shared_dir[1024];       /* job directories (checkpoints, artifacts); "" = state_dir */
	char node[256];              /* this node's name in the queue; "" = HOSTNAME:PORT once bound */
	double lease_s;              /* a claimed job's lease, renewed every third of it; default 30 */
	char data_roots[CONFIG_MAX_ROOTS][1024];
	int n_data_roots;
	char web_dir[1024];          /* "" = the default (installed datadir, else the source tree) */
	int workers;                 /* default: 1 per 2 cores, at least 1 */
	int job_threads;             /* cap on a job's BLAS threads; default cores / workers */
	int http_threads;            /* default 2 */
	size_t max_body;             /* bytes; default 1 MiB */
	uint64_t max_job_memory;     /* bytes: refuse specs whose estimated peak step memory exceeds it;
	                                0 = unlimited; default half of MemTotal divided by the workers */
	int max_queued;              /* 0 = unlimited */
	int max_queued_per_owner;    /* 0 = unlimited */
	int max_running_per_owner;   /* 0 = unlimited (up to `workers`) */
	int max_user_priority;       /* priorities above this need an admin token; default 0 */
	int max_attempts;            /* a job interrupted this often fails at start-up; default 3, 0 = no cap */
	int read_access;             /* ApiReadAccess: 0 loopback (default), 1 open, 2 token */
	char tokens_file[1024];      /* "" = none (tokens may still come from `ssld token create`) */
	char log_file[1024];         /* "" = stderr */
	int log_level;               /* syslog priority; default LOG_INFO */
	double flush_interval_s;     /* metric batches; default 0.5, at most 1 */
	double stop_timeout_s;       /* SIGTERM: wait this long for jobs to checkpoint; default 90 */
	/* Connections and generation: what one client can hold of the server (docs/service.md). */
	int max_connections;         /* HTTP connections at once; default 256 */
	int max_connections_per_ip;  /* of them from one client address; default 128, 0 = no limit */
	double request_deadline_s;   /* a request must arrive whole within this long; default 30, 0 = none */
	int generate_threads;        /* generations running at once; default 1 */
	int generate_queue;          /* generations waiting for a thread, more get 503; default 4 */
	double generate_max_seconds; /* text sampling stops after this long (truncated); default 60, 0 = none */
	int generate_max_tokens;     /* longer text requests are cut to this (truncated); default 4096 */
	char webhook[1024];          /* "" = none; else POST each ended job there (webhook.h) */
	/* Distributed jobs (workers/mpi_launch.h). */
	char mpirun[1024];           /* "" = "mpirun" on PATH */
	char mpirun_args[1024];      /* extra words after -np N, split on blanks: "--oversubscribe" */
	char mpi_hostfile[1024];     /* "" = this machine, unless a job lists hosts */
	/* Uploaded datasets (api/datasets.h); sizes in bytes, 0 = no limit. */
	uint64_t max_upload_bytes;   /* one upload's body; default 1 GiB */
	uint64_t max_dataset_bytes;  /* one dataset unpacked; default 4 GiB */
	int max_dataset_files;       /* members of one archive; default 50000 */
	int max_datasets_per_owner;  /* default 50 */
	uint64_t dataset_quota_bytes;/* all of one owner's datasets; default 20 GiB */
} SsldConfig;

void config_defaults(SsldConfig *c);
/* Applies one "key", "value" pair (from a file or a flag). 0, or -1 with err. */
int config_set(SsldConfig *c, const char *key, const char *value, char *err, size_t errlen);
/* One line of a "key = value" file (this one, and the client's client.conf): 1 with *key and
 * *value pointing into line (trimmed, double quotes stripped), 0 for a blank or comment ('#', ';')
 * line, -1 when there is no '='. */
int config_split_line(char *line, char **key, char **value);
int config_load_file(SsldConfig *c, const char *path, char *err, size_t errlen);
/* argv are the serve flags (argv[0] is the first flag). Loads --config first, then applies every
 * flag. 0; 1 if --help was asked; -1 with err on a bad flag or file. */
int config_from_args(SsldConfig *c, int argc, char **argv, char *err, size_t errlen);
/* Fills what is still unset from the environment and the machine (state dir, roots, web dir). */
void config_finish(SsldConfig *c);
void config_usage(void);
/* 1 when the database is named explicitly (other nodes may share it: jobs whose node died are
 * taken back after their lease, not at start-up), 0 when it is the state directory's own. */
int config_shared_database(const SsldConfig *c);
/* "" -> HOSTNAME:PORT, written into c->node. */
void config_default_node(SsldConfig *c, int port);
/* The database store_open is given: --database, else STATE_DIR/ssld.db. */
void config_database(const SsldConfig *c, char *out, size_t cap);

#endif
