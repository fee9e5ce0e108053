/* metrics_csv.h - GET /v1/jobs/{id}/metrics.csv: a job's whole metric history as CSV, for pandas
 * and spreadsheets.
 *
 * One row per point, "step,key,value", in the order the points were recorded (so the rows of one
 * key are in step order; a null value is an empty field). The answer is streamed page by page
 * from the database with the metrics API's cursor, so a history of any length costs one page of
 * memory, and a job still running gives the points recorded when each page was read. Query
 * `keys=a,b` limits it to those keys (as GET /metrics does).
 */
#ifndef SSLD_API_METRICS_CSV_H
#define SSLD_API_METRICS_CSV_H

#include <stdint.h>

#include "internal.h"

enum MHD_Result job_metrics_csv(Req *r, int64_t id);

#endif
