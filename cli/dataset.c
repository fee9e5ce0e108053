/* dataset.c - `ssld dataset push|ls|show|rm`: datasets uploaded to the server (/v1/datasets).
 *
 * push sends a tar, tar.gz or zip as it is, or packs a directory into a tar.gz first (libarchive,
 * in a temp file removed afterwards; symlinks and special files are left out, the server would
 * refuse them). The archive is mapped, not read into memory, and its progress goes to stderr. A
 * push that fails leaves nothing on the server, so running it again is the way to resume.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "client.h"
#include "commands.h"
#include "format.h"

/* ---- packing a directory -------------------------------------------------------------------- */

/* dir -> a tar.gz at out (paths relative to dir). 0, or -1 after printing why. */
static int pack_dir(const char *dir, const char *out, long long *files)
{
	struct archive *disk = archive_read_disk_new(), *w = archive_write_new();
	int rc = -1;
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/') dl--;
	*files = 0;
	if (!disk || !w) {
		fprintf(stderr, "ssld dataset push: out of memory\n");
		goto out;
	}
	archive_read_disk_set_standard_lookup(disk);
	archive_read_disk_set_symlink_physical(disk);
	archive_write_add_filter_gzip(w);
	archive_write_set_format_pax_restricted(w);
	if (archive_write_open_filename(w, out) != ARCHIVE_OK || archive_read_disk_open(disk, dir) != ARCHIVE_OK) {
		fprintf(stderr, "ssld dataset push: %s\n", archive_error_string(w) ? archive_error_string(w) : archive_error_string(disk));
		goto out;
	}
	char buf[65536];
	for (;;) {
		struct archive_entry *e = archive_entry_new();
		int r = archive_read_next_header2(disk, e);
		if (r == ARCHIVE_EOF) {
			archive_entry_free(e);
			break;
		}
		if (r < ARCHIVE_WARN) {
			fprintf(stderr, "ssld dataset push: %s: %s\n", dir, archive_error_string(disk));
			archive_entry_free(e);
			goto out;
		}
		archive_read_disk_descend(disk);
		char path[4096];
		snprintf(path, sizeof path, "%s", archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
		mode_t type = archive_entry_filetype(e);
		if (strlen(path) <= dl || (type != AE_IFREG && type != AE_IFDIR)) {
			if (strlen(path) > dl) fprintf(stderr, "ssld dataset push: leaving out %s (not a file or directory)\n", path);
			archive_entry_free(e);
			continue;
		}
		char rel[4096];
		snprintf(rel, sizeof rel, "%s", path + dl + 1);
		archive_entry_set_pathname(e, rel);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_uname(e, "");
		archive_entry_set_gname(e, "");
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			fprintf(stderr, "ssld dataset push: %s: %s\n", path, archive_error_string(w));
			archive_entry_free(e);
			goto out;
		}
		if (type == AE_IFREG) {
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t n = 0;
			while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0) archive_write_data(w, buf, (size_t)n);
			if (fd < 0 || n < 0) {
				fprintf(stderr, "ssld dataset push: %s: %s\n", path, strerror(errno));
				if (fd >= 0) close(fd);
				archive_entry_free(e);
				goto out;
			}
			close(fd);
			(*files)++;
		}
		archive_entry_free(e);
	}
	if (archive_write_close(w) != ARCHIVE_OK) {
		fprintf(stderr, "ssld dataset push: %s: %s\n", out, archive_error_string(w));
		goto out;
	}
	rc = 0;
out:
	if (disk) archive_read_free(disk);
	if (w) archive_write_free(w);
	return rc;
}

/* ---- push ----------------------------------------------------------------------------------- */

static void progress(void *user, size_t sent, size_t total)
{
	int *last = user;
	int pct = total ? (int)(100.0 * (double)sent / (double)total) : 100;
	if (pct == *last) return;
	*last = pct;
	fprintf(stderr, "\rssld dataset push: %.1f of %.1f MB sent (%d%%)%s", (double)sent / 1e6, (double)total / 1e6, pct,
	        sent == total ? "\n" : "");
}

static const char *content_type(const char *file)
{
	size_t n = strlen(file);
	if (n > 4 && strcmp(file + n - 4, ".zip") == 0) return "application/zip";
	if (n > 4 && strcmp(file + n - 4, ".tar") == 0) return "application/x-tar";
	if ((n > 3 && strcmp(file + n - 3, ".gz") == 0) || (n > 4 && strcmp(file + n - 4, ".tgz") == 0)) return "application/gzip";
	return "application/octet-stream";
}

static void print_dataset(const cJSON *d)
{
	printf("dataset %s/%s: %s, %lld files, %.1f MB\n", cli_json_str(d, "owner", "?"), cli_json_str(d, "name", "?"),
	       cli_json_str(d, "format", "?"), (long long)cli_json_num(d, "files", 0), cli_json_num(d, "bytes", 0) / 1e6);
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(d, "classes")) {
		const char *split = cli_json_str(c, "split", NULL);
		printf("  %s%s%-24s %lld files\n", split ? split : "", split ? "/" : "", cli_json_str(c, "name", "?"),
		       (long long)cli_json_num(c, "files", 0));
	}
	const cJSON *use = cJSON_GetObjectItemCaseSensitive(d, "use");
	char *u = use ? cJSON_PrintUnformatted(use) : NULL;
	if (u) printf("in a job: \"dataset\": %s\n", u);
	cJSON_free(u);
}

static int push(Client *c, const char *src, const char *name)
{
	for (const char *p = name; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p)) {
			fprintf(stderr, "ssld dataset push: \"%s\" is not a dataset name (A-Z a-z 0-9 . _ -)\n", name);
			return 2;
		}
	struct stat st;
	if (stat(src, &st) < 0) {
		fprintf(stderr, "ssld dataset push: %s: %s\n", src, strerror(errno));
		return 1;
	}
	const char *file = src;
	int rc = 1;
	if (S_ISDIR(st.st_mode)) {
		const char *td = getenv("TMPDIR");
		char tpl[4096];
		snprintf(tpl, sizeof tpl, "%s/ssld-push-XXXXXX", td && *td ? td : "/tmp");
		int tfd = mkstemp(tpl);
		if (tfd < 0) {
			fprintf(stderr, "ssld dataset push: %s: %s\n", tpl, strerror(errno));
			return 1;
		}
		close(tfd);
		long long files;
		fprintf(stderr, "ssld dataset push: packing %s\n", src);
		if (pack_dir(src, tpl, &files) < 0) {
			unlink(tpl);
			return 1;
		}
		fprintf(stderr, "ssld dataset push: %lld files packed\n", files);
		file = strdup(tpl);
		if (!file) {
			unlink(tpl);
			return 1;
		}
		c->content_type = "application/gzip";
	} else {
		c->content_type = content_type(src);
	}
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	void *map = MAP_FAILED;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "ssld dataset push: %s: %s\n", file, strerror(errno));
		goto out;
	}
	if (st.st_size == 0) {
		fprintf(stderr, "ssld dataset push: %s is empty\n", file);
		goto out;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "ssld dataset push: %s: %s\n", file, strerror(errno));
		goto out;
	}
	int last = -1;
	c->progress = progress;
	c->progress_user = &last;
	char path[160], err[512];
	snprintf(path, sizeof path, "/v1/datasets?name=%s", name);
	ClientResp r;
	if (client_http(c, "POST", path, map, (size_t)st.st_size, &r, err, sizeof err) < 0) {
		fprintf(stderr, "\nssld dataset push: %s (nothing was kept; run the same command again)\n", err);
		goto out;
	}
	if (r.status != 201) {
		rc = client_server_error("dataset push", &r);
	} else {
		cJSON *d = cJSON_Parse(r.body);
		if (d) print_dataset(d);
		cJSON_Delete(d);
		rc = 0;
	}
	free(r.body);
out:
	if (map != MAP_FAILED) munmap(map, (size_t)st.st_size);
	if (fd >= 0) close(fd);
	if (file != src) {
		unlink(file);
		free((char *)file);
	}
	return rc;
}

/* ---- ls, show, rm --------------------------------------------------------------------------- */

/* "OWNER/NAME", or NAME when exactly one owner has a dataset of that name. 0 or 1 after printing. */
static int resolve(Client *c, const char *cmd, const char *arg, char *out, size_t cap)
{
	if (strchr(arg, '/')) {
		snprintf(out, cap, "%s", arg);
		return 0;
	}
	cJSON *l = client_get_json(c, cmd, "/v1/datasets", NULL);
	if (!l) return 1;
	int n = 0;
	const cJSON *d;
	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(l, "datasets"))
		if (strcmp(cli_json_str(d, "name", ""), arg) == 0 && n++ == 0)
			snprintf(out, cap, "%s/%s", cli_json_str(d, "owner", ""), arg);
	cJSON_Delete(l);
	if (n == 1) return 0;
	fprintf(stderr, "ssld %s: %s\n", cmd, n ? "several owners have a dataset of that name; give OWNER/NAME"
	                                         : "no dataset of that name (ssld dataset ls lists them)");
	return 1;
}

int cli_dataset_main(int argc, char **argv)
{
	enum { O_OWNER, O_OUTPUT, O_CLIENT = O_OUTPUT + 2 };
	CliOpt opts[] = { { "--owner", "OWNER", NULL, 0 }, OUTPUT_OPTS, CLIENT_OPTS };
	const char *pos[3];
	int npos, rc = cli_args_parse(argv[0], argc, argv, opts, 5, pos, 3, &npos);
	if (rc != CLI_ARGS_OK) return rc == CLI_ARGS_HELP ? 0 : 2;
	int json = cli_output_json("dataset", &opts[O_OUTPUT]);
	if (json < 0) return 2;
	const char *sub = npos ? pos[0] : "";
	int want = strcmp(sub, "push") == 0 ? 3 : strcmp(sub, "ls") == 0 ? 1 : strcmp(sub, "show") == 0 || strcmp(sub, "rm") == 0 ? 2 : -1;
	if (want < 0 || npos != want) {
		cli_command_usage("dataset", stderr);
		return 2;
	}
	Client c;
	if (client_init(&c, "dataset", &opts[O_CLIENT]) != 0) return 2;
	if (want == 3) return push(&c, pos[1], pos[2]);
	char path[256], which[160];
	if (want == 1) {
		snprintf(path, sizeof path, "/v1/datasets%s%s", opts[O_OWNER].given ? "?owner=" : "",
		         opts[O_OWNER].given ? opts[O_OWNER].value : "");
		cJSON *l = client_get_json(&c, "dataset ls", path, NULL);
		if (!l) return 1;
		if (json) client_print_json(l);
		else {
			printf("%-32s %-13s %8s %8s %10s\n", "DATASET", "FORMAT", "CLASSES", "FILES", "MB");
			const cJSON *d;
			cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(l, "datasets")) {
				char id[160];
				snprintf(id, sizeof id, "%s/%s", cli_json_str(d, "owner", "?"), cli_json_str(d, "name", "?"));
				printf("%-32s %-13s %8lld %8lld %10.1f\n", id, cli_json_str(d, "format", "?"),
				       (long long)cli_json_num(d, "classes", 0), (long long)cli_json_num(d, "files", 0),
				       cli_json_num(d, "bytes", 0) / 1e6);
			}
		}
		cJSON_Delete(l);
		return 0;
	}
	if ((rc = resolve(&c, strcmp(sub, "rm") == 0 ? "dataset rm" : "dataset show", pos[1], which, sizeof which)) != 0) return rc;
	snprintf(path, sizeof path, "/v1/datasets/%s", which);
	if (strcmp(sub, "show") == 0) {
		cJSON *d = client_get_json(&c, "dataset show", path, NULL);
		if (!d) return 1;
		if (json) client_print_json(d);
		else print_dataset(d);
		cJSON_Delete(d);
		return 0;
	}
	ClientResp r;
	char err[512];
	if (client_http(&c, "DELETE", path, NULL, 0, &r, err, sizeof err) < 0) {
		fprintf(stderr, "ssld dataset rm: %s\n", err);
		return 1;
	}
	rc = r.status == 200 ? 0 : client_server_error("dataset rm", &r);
	if (rc == 0) printf("dataset %s deleted\n", which);
	free(r.body);
	return rc;
}
