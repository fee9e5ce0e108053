/* mpi_launch.c - a distributed job as a child process tree (see mpi_launch.h).
 *
 * The worker thread spawns mpirun in a session of its own (posix_spawn, no shell: every argument
 * is a word, the hostfile is written here), reads rank 0's report lines from a pipe and turns
 * them into runner hooks, and polls should_stop between reads. It does not know MPI: the ranks
 * are `ssld run`, which does the data-parallel work. Cleanup always ends with SIGKILL to every
 * process left in the child's session, before the child is reaped.
 */
#include "mpi_launch.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "workdir.h"
#include "../common/monotime.h"

extern char **environ;

#define MAX_ARGS 96
#define LINE_MAX_BYTES (1 << 20)   /* a results object fits; a longer line is dropped */

static int write_text(const char *path, const char *text, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int bad = fputs(text, f) < 0;
	bad |= fclose(f) != 0;
	if (bad)
		snprintf(err, errlen, "%s: write failed", path);
	return bad ? -1 : 0;
}

/* ---- the child's session ---------------------------------------------------------------------- */

/* 1 while pid is a process that has not finished exiting (a zombie has no command line left). */
static int alive(long pid)
{
	char path[64], c;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, &c, 1);
	close(fd);
	return n == 1;
}

/* Signal every process whose session is sid (mpirun and the ranks it started on this host);
 * returns how many of them were still alive. */
static int kill_session(pid_t sid, int sig)
{
	DIR *d = opendir("/proc");
	if (!d) {
		kill(-sid, sig);
		return 0;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (getsid((pid_t)pid) == sid && alive(pid)) {
			kill((pid_t)pid, sig);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* SIGKILL the session and wait (bounded: 10 s) until none of its processes is still running, so
 * that a job reported ended or requeued has no rank left that could write into its directory. */
static void end_session(pid_t sid)
{
	for (int i = 0; i < 500 && kill_session(sid, SIGKILL) > 0; i++)
		usleep(20000);
}

/* A tree an earlier daemon left behind (it was killed before it could end it): every process of
 * the session recorded in JOBDIR/mpirun.pid that still names job_dir on its command line. */
static void kill_leftover(const char *pid_path, const char *job_dir)
{
	FILE *f = fopen(pid_path, "r");
	long sid = 0;
	if (!f)
		return;
	if (fscanf(f, "%ld", &sid) != 1)
		sid = 0;
	fclose(f);
	DIR *d = sid > 1 ? opendir("/proc") : NULL;
	if (!d)
		return;
	size_t jl = strlen(job_dir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end, path[64], cmd[8192];
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || getsid((pid_t)pid) != (pid_t)sid)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, cmd, sizeof cmd) : -1;
		if (fd >= 0)
			close(fd);
		for (ssize_t i = 0; n > 0 && i + (ssize_t)jl <= n; i++)
			if (memcmp(cmd + i, job_dir, jl) == 0) {
				kill((pid_t)pid, SIGKILL);
				break;
			}
	}
	closedir(d);
}

/* 1 once the child has exited (not reaped yet: its pid, hence its session id, stays ours). */
static int exited(pid_t pid)
{
	siginfo_t si = { 0 };
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* ---- report lines ----------------------------------------------------------------------------- */

typedef struct Report {
	const RunnerHooks *h;
	char *results;          /* the "end" line's results, printed */
	char status[16];        /* the "end" line's status, "" before it */
	char error[512];
	char buf[8192];         /* a partial line */
	char *big;              /* a line longer than buf, growing */
	size_t len, big_len;
	int overflow;
} Report;

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void handle_line(Report *r, const char *line)
{
	if (line[0] != '{')
		return;
	cJSON *o = cJSON_Parse(line);
	const char *t = o ? str(o, "t") : NULL;
	const RunnerHooks *h = r->h;
	if (!t) {
		cJSON_Delete(o);
		return;
	}
	if (strcmp(t, "metric") == 0 && str(o, "key") && h->on_metric) {
		h->on_metric(h->user, (int64_t)num(o, "step"), str(o, "key"), num(o, "value"));
	} else if (strcmp(t, "progress") == 0 && h->on_progress) {
		RunnerProgress p = { .step = (int64_t)num(o, "step"), .total = (int64_t)num(o, "total"),
		                     .stage = str(o, "stage") ? str(o, "stage") : "", .fraction = num(o, "fraction"),
		                     .eta_s = num(o, "eta_s") };
		h->on_progress(h->user, &p);
	} else if (strcmp(t, "event") == 0 && str(o, "message") && h->on_event) {
		int l = (int)num(o, "level");
		h->on_event(h->user, l >= RUNNER_ERR && l <= RUNNER_INFO ? (RunnerLevel)l : RUNNER_INFO, str(o, "message"));
	} else if (strcmp(t, "artifact") == 0 && str(o, "name") && str(o, "path") && h->on_artifact) {
		h->on_artifact(h->user, str(o, "name"), str(o, "path"));
	} else if (strcmp(t, "checkpoint") == 0 && h->on_checkpoint) {
		h->on_checkpoint(h->user, (int64_t)num(o, "step"), str(o, "path") ? str(o, "path") : "");
	} else if (strcmp(t, "end") == 0 && str(o, "status")) {
		snprintf(r->status, sizeof r->status, "%s", str(o, "status"));
		snprintf(r->error, sizeof r->error, "%s", str(o, "error") ? str(o, "error") : "");
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "results");
		free(r->results);
		r->results = cJSON_IsObject(res) ? cJSON_PrintUnformatted(res) : NULL;
	}
	cJSON_Delete(o);
}

/* Split what was read into lines; each whole line is handled in order. */
static void feed(Report *r, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = data[i];
		if (c == '\n') {
			if (r->big) {
				if (!r->overflow) {
					r->big[r->big_len] = 0;
					handle_line(r, r->big);
				}
				free(r->big);
				r->big = NULL;
				r->big_len = 0;
			} else if (!r->overflow) {
				r->buf[r->len] = 0;
				handle_line(r, r->buf);
			}
			r->len = 0;
			r->overflow = 0;
			continue;
		}
		if (r->overflow)
			continue;
		if (!r->big && r->len + 1 < sizeof r->buf) {
			r->buf[r->len++] = c;
			continue;
		}
		if (!r->big) {   /* a long line (results): move it to the heap */
			r->big = malloc(LINE_MAX_BYTES + 1);
			if (!r->big) {
				r->overflow = 1;
				continue;
			}
			memcpy(r->big, r->buf, r->len);
			r->big_len = r->len;
		}
		if (r->big_len + 1 >= LINE_MAX_BYTES)
			r->overflow = 1;
		else
			r->big[r->big_len++] = c;
	}
}

/* mpirun's own words on why the run ended: the line naming the rank that died, else the last
 * failure a rank wrote, else its last "ssld run:" line, else the log's last line since `from`. */
static void log_reason(const char *log_path, long from, char *out, size_t n)
{
	out[0] = 0;
	FILE *f = fopen(log_path, "r");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long end = ftell(f), start = end - 16384 > from ? end - 16384 : from;
	fseek(f, start > 0 ? start : 0, SEEK_SET);
	char line[1024], last[1024] = "", said[1024] = "", failed[1024] = "", noticed[1024] = "";
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		const char *s = line + strspn(line, " \t");
		if (!*s || strspn(s, "-=*") == strlen(s))
			continue;
		snprintf(last, sizeof last, "%s", s);
		if (strstr(s, "noticed that process rank") || strstr(s, "exited on signal"))
			snprintf(noticed, sizeof noticed, "%s", s);
		if (strncmp(s, "ssld run: job failed", 20) == 0 || strncmp(s, "error: ", 7) == 0)
			snprintf(failed, sizeof failed, "%s", s);
		else if (strncmp(s, "ssld run: ", 10) == 0)
			snprintf(said, sizeof said, "%s", s);
	}
	fclose(f);
	/* A rank's own failure first: the others were then stopped by mpirun ("ssld run: stopped"). */
	snprintf(out, n, "%s", noticed[0] ? noticed : failed[0] ? failed : said[0] ? said : last);
}

/* ---- the run ---------------------------------------------------------------------------------- */

/* The spec the ranks run: the job's own, with an init_from job id turned into its checkpoint. */
static int write_spec(JobSpec *js, const char *path, runner_resolve_job_cb resolve_job, void *user,
                      char *err, size_t errlen)
{
	char *text = jobspec_to_json(js);
	cJSON *o = text ? cJSON_Parse(text) : NULL;
	free(text);
	if (!o) {
		snprintf(err, errlen, "out of memory writing the ranks' job spec");
		return -1;
	}
	if (js->init_from_job > 0) {
		char ck[4096];
		if (!resolve_job || resolve_job(user, js->init_from_job, ck, sizeof ck) < 0) {
			snprintf(err, errlen, "init_from: job %lld has no checkpoint to start from",
			         (long long)js->init_from_job);
			cJSON_Delete(o);
			return -1;
		}
		cJSON_ReplaceItemInObject(o, "init_from", cJSON_CreateString(ck));
	}
	text = cJSON_Print(o);
	cJSON_Delete(o);
	int rc = text ? write_text(path, text, err, errlen) : -1;
	if (!text)
		snprintf(err, errlen, "out of memory writing the ranks' job spec");
	free(text);
	return rc;
}

/* "name" or "name:slots" per host (jobspec.c checked the characters) as hostfile lines. */
static int write_hosts(const JobSpec *js, const char *path, char *err, size_t errlen)
{
	char text[JOBSPEC_MAX_HOSTS * 280];
	size_t at = 0;
	text[0] = 0;
	for (int i = 0; i < js->distributed.n_hosts && at < sizeof text; i++) {
		const char *h = js->distributed.hosts[i], *colon = strchr(h, ':');
		int w = colon ? snprintf(text + at, sizeof text - at, "%.*s slots=%s\n", (int)(colon - h), h, colon + 1)
		              : snprintf(text + at, sizeof text - at, "%s\n", h);
		if (w > 0)
			at += (size_t)w;
	}
	return write_text(path, text, err, errlen);
}

int mpi_launch_run(const MpiLaunchConfig *cfg, JobSpec *js, const char *job_dir, const char *job_key,
                   const RunnerHooks *hooks, runner_resolve_job_cb resolve_job, char **results_json,
                   char *err, size_t errlen)
{
	char spec_path[4200], hosts_path[4200], log_path[4200], pid_path[4200], self[4096], np[16], words[1024];
	const char *argv[MAX_ARGS + 1];
	int argc = 0, rc = -1, out_fd = -1;
	pid_t pid = -1;
	char **envp = NULL;
	Report r = { .h = hooks };
	*results_json = NULL;
	err[0] = 0;
	snprintf(spec_path, sizeof spec_path, "%s/" MPI_LAUNCH_SPEC_FILE, job_dir);
	snprintf(hosts_path, sizeof hosts_path, "%s/" MPI_LAUNCH_HOSTS_FILE, job_dir);
	snprintf(log_path, sizeof log_path, "%s/" MPI_LAUNCH_LOG_FILE, job_dir);
	snprintf(pid_path, sizeof pid_path, "%s/" MPI_LAUNCH_PID_FILE, job_dir);
	kill_leftover(pid_path, job_dir);
	snprintf(np, sizeof np, "%d", js->distributed.processes);
	snprintf(words, sizeof words, "%s", cfg->extra_args ? cfg->extra_args : "");
	const char *ssld = cfg->ssld;
	if (!ssld) {
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0) {
			snprintf(err, errlen, "cannot find the ssld executable for the ranks: %s", strerror(errno));
			goto out;
		}
		self[n] = 0;
		ssld = self;
	}
	/* The directory is this job's before anything is written into it: the ranks' runner would
	 * otherwise take the launch files for another job's state and move them aside. */
	if (job_key) {
		char moved[4200];
		int c = workdir_claim(job_dir, job_key, moved, sizeof moved, err, errlen);
		if (c < 0)
			goto out;
		if (c == 1 && hooks->on_event) {
			char msg[4400];
			snprintf(msg, sizeof msg, "%s held state this job did not create; moved it aside to %s",
			         job_dir, moved);
			hooks->on_event(hooks->user, RUNNER_WARNING, msg);
		}
	}
	if (write_spec(js, spec_path, resolve_job, hooks->user, err, errlen) < 0)
		goto out;
	const char *hostfile = cfg->hostfile && cfg->hostfile[0] ? cfg->hostfile : NULL;
	if (js->distributed.n_hosts > 0) {
		if (write_hosts(js, hosts_path, err, errlen) < 0)
			goto out;
		hostfile = hosts_path;
	}

	argv[argc++] = cfg->mpirun && cfg->mpirun[0] ? cfg->mpirun : "mpirun";
	argv[argc++] = "-np";
	argv[argc++] = np;
	if (hostfile) {
		argv[argc++] = "--hostfile";
		argv[argc++] = hostfile;
	}
	for (char *save = NULL, *w = strtok_r(words, " \t", &save); w && argc < MAX_ARGS - 12;
	     w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	const char *tail[] = { ssld, "run", spec_path, "--out", job_dir, "--report-fd", "1", "--quiet" };
	for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
		argv[argc++] = tail[i];
	if (job_key) {
		argv[argc++] = "--job-key";
		argv[argc++] = job_key;
	}
	argv[argc] = NULL;

	/* OpenMPI refuses to start as root unless told twice; the daemon runs as its own user
	 * under systemd, but a root daemon (containers, CI) must still run distributed jobs. */
	size_t ne = 0;
	while (environ[ne])
		ne++;
	if (!(envp = calloc(ne + 3, sizeof *envp))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memcpy(envp, environ, ne * sizeof *envp);
	if (geteuid() == 0) {
		envp[ne++] = "OMPI_ALLOW_RUN_AS_ROOT=1";
		envp[ne++] = "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1";
	}

	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	long log_from = 0;
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log_fd >= 0)
		log_from = (long)lseek(log_fd, 0, SEEK_END);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	if (log_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	int sp = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pfd[1]);
	if (log_fd >= 0)
		close(log_fd);
	if (sp != 0) {
		close(pfd[0]);
		pid = -1;
		snprintf(err, errlen, "cannot start %s: %s (set the daemon's --mpirun to OpenMPI's mpirun)",
		         argv[0], strerror(sp));
		goto out;
	}
	out_fd = pfd[0];
	char pid_text[32];
	snprintf(pid_text, sizeof pid_text, "%ld\n", (long)pid);
	write_text(pid_path, pid_text, err, errlen);   /* best effort: only a crashed daemon needs it */
	err[0] = 0;
	if (hooks->on_event) {
		char msg[600];
		snprintf(msg, sizeof msg, "running on %s MPI processes%s%.300s (%.200s)", np, hostfile ? " from " : "",
		         hostfile ? hostfile : "", argv[0]);
		hooks->on_event(hooks->user, RUNNER_INFO, msg);
	}

	/* Read until the child is gone; stop or cancel it when should_stop says so. */
	int asked = RUNNER_CONTINUE, termed = 0;
	double asked_at = 0, grace = cfg->stop_grace_s > 0 ? cfg->stop_grace_s : 60;
	for (;;) {
		if (out_fd >= 0) {
			struct pollfd pf = { .fd = out_fd, .events = POLLIN };
			if (poll(&pf, 1, 200) > 0) {
				char chunk[16384];
				ssize_t n = read(out_fd, chunk, sizeof chunk);
				if (n > 0)
					feed(&r, chunk, (size_t)n);
				else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
					close(out_fd);
					out_fd = -1;
				}
			}
		} else {
			usleep(50000);
		}
		if (exited(pid)) {
			end_session(pid);             /* a rank mpirun left behind */
			if (out_fd < 0)
				break;
			continue;                     /* drain what the ranks wrote before they died */
		}
		int want = hooks->should_stop ? hooks->should_stop(hooks->user) : RUNNER_CONTINUE;
		if (want == RUNNER_STOP_CANCEL && asked != RUNNER_STOP_CANCEL) {
			asked = RUNNER_STOP_CANCEL;   /* mpirun ends its ranks, here and on other hosts */
			asked_at = mono_seconds();
			kill(pid, SIGTERM);
			termed = 1;
		} else if (want == RUNNER_STOP_REQUEUE && asked == RUNNER_CONTINUE) {
			asked = RUNNER_STOP_REQUEUE;  /* mpirun forwards SIGUSR1: the ranks checkpoint, stop */
			asked_at = mono_seconds();
			kill(pid, SIGUSR1);
		}
		double waited = asked != RUNNER_CONTINUE ? mono_seconds() - asked_at : 0;
		if (asked == RUNNER_STOP_REQUEUE && !termed && waited > grace) {
			kill(pid, SIGTERM);
			termed = 1;
		}
		if (termed && waited > (asked == RUNNER_STOP_CANCEL ? 5 : grace + 5))
			(void)kill_session(pid, SIGKILL);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
	pid = -1;

	if (asked == RUNNER_STOP_CANCEL) {
		rc = RUNNER_CANCELLED;
	} else if (strcmp(r.status, "succeeded") == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		*results_json = r.results ? r.results : strdup("{}");
		r.results = NULL;
		rc = RUNNER_OK;
	} else if (asked == RUNNER_STOP_REQUEUE ||
	           (strcmp(r.status, "stopped") == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		/* Requeued: it resumes from its last checkpoint. A "stopped" the daemon did not ask for
		 * with mpirun failing is a rank's death (mpirun SIGTERMs the others): that fails below. */
		rc = RUNNER_STOPPED;
	} else if (strcmp(r.status, "failed") == 0 && r.error[0]) {
		snprintf(err, errlen, "%s", r.error);
	} else {
		char why[1024];
		log_reason(log_path, log_from, why, sizeof why);
		char how[64];
		if (WIFSIGNALED(status))
			snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
		else
			snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
		snprintf(err, errlen, "the MPI run %s before rank 0 reported a result%s%s (%s)", how,
		         why[0] ? ": " : "", why, MPI_LAUNCH_LOG_FILE);
	}
out:
	if (pid > 0) {
		end_session(pid);
		waitpid(pid, NULL, 0);
	}
	if (out_fd >= 0)
		close(out_fd);
	free(r.results);
	free(r.big);
	free(envp);
	jobspec_free(js);
	return rc;
}
