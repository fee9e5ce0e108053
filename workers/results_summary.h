/* results_summary.h - what a job's results say first: the headline (the best SSL protocol at the
 * smallest label fraction against its baseline), every baseline marked as one, and the labels a
 * fraction really got when a class could not supply its share.
 *
 *   cJSON *root = ...;              // {"pretext":{...}, "evaluations":[...]} as the runner builds it
 *   results_add_headline(root);     // adds "headline" (null when nothing to compare) and "baselines"
 *
 *   cJSON *note = NULL;
 *   if (results_label_note(&ds->train, ds->num_classes, 0.1, 0, &note) > 0) ...  // short: warn
 */
#ifndef SSLD_WORKERS_RESULTS_SUMMARY_H
#define SSLD_WORKERS_RESULTS_SUMMARY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "../engine/data/dataset.h"

/* Marks each baseline evaluation ("baseline": "scratch" / "random_init"), then adds to root
 * "baselines" (those and the pretext's feature baselines such as bag_of_bytes_probe@0.1) and
 * "headline": {"protocol", "label_fraction" (or "labels_per_class"), "accuracy", "baseline",
 * "baseline_accuracy", "gain" (accuracy - baseline_accuracy), "summary"} with baseline and gain
 * null when no baseline ran at that fraction; "headline": null when no SSL protocol ran. */
void results_add_headline(cJSON *root);

/* The labelled subset (fraction, labels_per_class) draws from split, as dataset_label_subset does:
 * *out = {"label_fraction" | "labels_per_class", "requested", "used", "requested_per_class",
 * "classes", "classes_short"} plus "used_per_class" when short. Returns 1 when some class had fewer
 * samples than its share (fewer labels are used than asked for), 0 when not, < 0 out of memory.
 * msg (may be NULL) gets a sentence for the event log when short. */
int results_label_note(const Split *split, int num_classes, double fraction, int labels_per_class,
                       cJSON **out, char *msg, size_t msglen);

#endif
