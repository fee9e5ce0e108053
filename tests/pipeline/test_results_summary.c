/* test_results_summary.c - the results' headline, baselines and label notes
 * (workers/results_summary.h) on hand-made results: the smallest label fraction an SSL protocol
 * reached wins, the best protocol there, scratch before the random-init probe before a feature
 * baseline, gain = accuracy - baseline_accuracy; a class short of its share is reported. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "../../workers/results_summary.h"
#include "../check.h"

static cJSON *headline_of(const char *results, cJSON **root)
{
	*root = cJSON_Parse(results);
	results_add_headline(*root);
	return cJSON_GetObjectItem(*root, "headline");
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_headline(void)
{
	cJSON *root;
	const cJSON *h = headline_of(
	    "{\"pretext\":{\"bag_of_bytes_probe@0.01\":0.5},\"evaluations\":["
	    "{\"protocol\":\"linear_probe\",\"label_fraction\":0.1,\"test_accuracy\":0.9},"
	    "{\"protocol\":\"knn\",\"label_fraction\":0.01,\"test_accuracy\":0.7},"
	    "{\"protocol\":\"linear_probe\",\"label_fraction\":0.01,\"test_accuracy\":0.812},"
	    "{\"protocol\":\"random_init\",\"label_fraction\":0.01,\"test_accuracy\":0.6},"
	    "{\"protocol\":\"supervised\",\"label_fraction\":0.01,\"test_accuracy\":0.733}]}", &root);
	CHECK(!strcmp(str(h, "protocol"), "linear_probe") && num(h, "label_fraction") == 0.01 &&
	      num(h, "accuracy") == 0.812, "the best SSL protocol at 1%%");
	CHECK(!strcmp(str(h, "baseline"), "scratch") && num(h, "baseline_accuracy") == 0.733,
	      "scratch first: %s", str(h, "baseline"));
	CHECK(fabs(num(h, "gain") - 0.079) < 1e-12, "gain %g", num(h, "gain"));
	CHECK(!strcmp(str(h, "summary"), "+7.9 points over scratch at 1 % labels"), "%s", str(h, "summary"));
	const cJSON *b = cJSON_GetObjectItem(root, "baselines");
	CHECK(cJSON_GetArraySize(b) == 3 && !strcmp(str(cJSON_GetArrayItem(b, 2), "kind"), "bag_of_bytes"),
	      "baselines: scratch, random init and the pretext's bag-of-bytes");
	const cJSON *ev = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "evaluations"), 3);
	CHECK(!strcmp(str(ev, "baseline"), "random_init"), "a baseline evaluation is marked");
	cJSON_Delete(root);

	h = headline_of("{\"pretext\":{\"bag_of_bytes_probe@0.1\":0.13},\"evaluations\":["
	                "{\"protocol\":\"linear_probe\",\"label_fraction\":0.1,\"test_accuracy\":0.12}]}",
	                &root);
	CHECK(!strcmp(str(h, "baseline"), "bag_of_bytes") && fabs(num(h, "gain") + 0.01) < 1e-12 &&
	      !strcmp(str(h, "summary"), "-1.0 points against bag-of-bytes at 10 % labels"),
	      "a feature baseline when nothing else ran: %s", str(h, "summary"));
	cJSON_Delete(root);

	h = headline_of("{\"evaluations\":[{\"protocol\":\"supervised\",\"label_fraction\":0.1,"
	                "\"test_accuracy\":0.8}]}", &root);
	CHECK(cJSON_IsNull(h), "no SSL protocol: headline null");
	cJSON_Delete(root);
}

static void test_label_note(void)
{
	int y[] = { 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2 };   /* 12 samples, 3 unbalanced classes */
	Split sp = { .n = 12, .y = y };
	cJSON *note = NULL;
	char msg[300];
	CHECK(results_label_note(&sp, 3, 0.75, 0, &note, msg, sizeof msg) == 1, "class 1 is short");
	CHECK(num(note, "requested_per_class") == 3 && num(note, "requested") == 9 &&
	      num(note, "used") == 8 && num(note, "classes_short") == 1, "note");
	const cJSON *per = cJSON_GetObjectItem(note, "used_per_class");
	CHECK(cJSON_GetArraySize(per) == 3 && cJSON_GetArrayItem(per, 1)->valuedouble == 2, "per class");
	CHECK(strstr(msg, "9 in all") && strstr(msg, "8 labels are used"), "%s", msg);
	cJSON_Delete(note);
	CHECK(results_label_note(&sp, 3, 1.0, 0, &note, msg, sizeof msg) == 0 && num(note, "used") == 12 &&
	      !cJSON_GetObjectItem(note, "used_per_class"), "every label: nothing short");
	cJSON_Delete(note);
}

int main(void)
{
	test_headline();
	test_label_note();
	return check_exit("results_summary");
}
