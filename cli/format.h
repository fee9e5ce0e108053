/* format.h - how the commands print numbers, durations, progress bars and results, so that
 * `ssld run`, `ssld watch`, `ssld results` and `ssld ls` show a job the same way. Accuracies are
 * fractions in the API and percentages with two decimals on the terminal ("70.45%"), everywhere.
 *
 *   char eta[16];
 *   cli_fmt_duration(75, eta, sizeof eta);        // "1:15"
 *   cli_print_results(stdout, results);           // headline, pretext values, one row per evaluation
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
/* A job's results object (results.json, or "results" of GET /v1/jobs/{id}): its headline when it
 * has one, the pretext values on one line, then PROTOCOL FRACTION LABELS TEST_ACCURACY OTHER. */
void cli_print_results(FILE *f, const cJSON *results);

/* An accuracy (a fraction) as a percentage: 0.70451 -> "70.45%"; NaN -> "-". */
void cli_fmt_pct(double fraction, char *out, size_t cap);
/* A label fraction: 0.01 -> "1%", 0.005 -> "0.5%", 1 -> "100%"; NaN -> "-". */
void cli_fmt_label_fraction(double fraction, char *out, size_t cap);
/* One number of a results object or a metric: accuracies (keys ending in "accuracy", and the
 * evaluation metrics "eval/<protocol>@<fraction>") as cli_fmt_pct, others "%.4g". */
void cli_fmt_result_value(const char *key, double v, char *out, size_t cap);
/* The one result a job is scanned for: the headline ("+7.9 pts @1%", the gain over its baseline
 * at that label fraction) when the results carry one, else the best SSL evaluation
 * ("70.45% @10%"), else the pretext's figure ("6.88 bit/B", "mse 0.169", "loss 3.91"), else "-". */
void cli_fmt_key_result(const cJSON *results, char *out, size_t cap);
/* Seconds as the largest whole unit: 42 -> "42s", 300 -> "5m", 7200 -> "2h", 200000 -> "2d". */
void cli_fmt_age(double seconds, char *out, size_t cap);
/* "2025-01-31T12:00:00.123Z" -> seconds since the epoch; -1 for NULL or another shape. */
double cli_parse_time(const char *iso);

/* o[key] as a string / as a number; def when it is absent or of another type. */
const char *cli_json_str(const cJSON *o, const char *key, const char *def);
double cli_json_num(const cJSON *o, const char *key, double def);

#endif
