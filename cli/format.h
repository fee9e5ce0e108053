/* format.h - how the commands print numbers, durations, progress bars and results, so that
 * `ssld run`, `ssld watch` and `ssld results` show a job the same way.
 *
 *   char eta[16];
 *   cli_fmt_duration(75, eta, sizeof eta);        // "1:15"
 *   cli_print_results(stdout, results);           // pretext values, then one row per evaluation
 */
#ifndef SSLD_CLI_FORMAT_H
#define SSLD_CLI_FORMAT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

/* 75 -> "1:15", 4000 -> "1:06:40"; negative or absurd -> "--:--". */
void cli_fmt_duration(double seconds, char *out, size_t cap);
/* "2025-01-31T12:00:00.123Z" -> "2025-01-31 12:00:00" (UTC, as the server sends it); NULL -> "-". */
void cli_fmt_time(const char *iso, char *out, size_t cap);
/* "[#####-----]" of width cells for a fraction in [0, 1] (clamped; negative: empty). out holds
 * width + 3 bytes. */
void cli_fmt_bar(double fraction, int width, char *out, size_t cap);
/* "62% pretrain" from a job's "progress" object (GET /v1/jobs/{id}), "-" without one. */
void cli_fmt_progress(const cJSON *job, char *out, size_t cap);
/* A job's results object (results.json, or "results" of GET /v1/jobs/{id}): the pretext values
 * on one line, then PROTOCOL FRACTION LABELS TEST_ACCURACY OTHER, accuracy as a fraction (0.8123). */
void cli_print_results(FILE *f, const cJSON *results);

/* o[key] as a string / as a number; def when it is absent or of another type. */
const char *cli_json_str(const cJSON *o, const char *key, const char *def);
double cli_json_num(const cJSON *o, const char *key, double def);

#endif
