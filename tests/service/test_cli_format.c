/* test_cli_format.c - unit tests of the command line's shared number formatting (cli/format.c):
 * one way to print an accuracy, a label fraction and an age, and the RESULT cell `ssld ls` shows
 * (the headline's gain when the results carry one, else the best SSL accuracy, else the pretext
 * figure), and the headline line `ssld results` leads with.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "check.h"

static void expect_cell(const char *results_json, const char *want)
{
	cJSON *r = cJSON_Parse(results_json);
	char out[64];
	cli_fmt_key_result(r, out, sizeof out);
	CHECK(strcmp(out, want) == 0, "%s -> '%s', want '%s'", results_json, out, want);
	cJSON_Delete(r);
}

int main(void)
{
	char b[64];
	cli_fmt_pct(0.70451, b, sizeof b);
	CHECK(strcmp(b, "70.45%") == 0, "%s", b);
	cli_fmt_pct(1, b, sizeof b);
	CHECK(strcmp(b, "100.00%") == 0, "%s", b);
	cli_fmt_pct(NAN, b, sizeof b);
	CHECK(strcmp(b, "-") == 0, "%s", b);
	cli_fmt_label_fraction(0.01, b, sizeof b);
	CHECK(strcmp(b, "1%") == 0, "%s", b);
	cli_fmt_label_fraction(0.005, b, sizeof b);
	CHECK(strcmp(b, "0.5%") == 0, "%s", b);
	cli_fmt_result_value("train_accuracy", 0.9, b, sizeof b);
	CHECK(strcmp(b, "90.00%") == 0, "%s", b);
	cli_fmt_result_value("eval/linear_probe@0.01", 0.5, b, sizeof b);
	CHECK(strcmp(b, "50.00%") == 0, "%s", b);
	cli_fmt_result_value("weight_decay", 0.03, b, sizeof b);
	CHECK(strcmp(b, "0.03") == 0, "%s", b);
	cli_fmt_age(42, b, sizeof b);
	CHECK(strcmp(b, "42s") == 0, "%s", b);
	cli_fmt_age(7300, b, sizeof b);
	CHECK(strcmp(b, "2h") == 0, "%s", b);
	cli_fmt_age(200000, b, sizeof b);
	CHECK(strcmp(b, "2d") == 0, "%s", b);
	CHECK(cli_parse_time("1970-01-02T00:00:01.500Z") == 86401.5, "%f", cli_parse_time("1970-01-02T00:00:01.500Z"));
	CHECK(cli_parse_time("yesterday") == -1 && cli_parse_time(NULL) == -1);

	/* The headline wins; its gain is the difference of the two accuracies it states. */
	expect_cell("{\"headline\":{\"protocol\":\"finetune\",\"label_fraction\":0.01,\"accuracy\":0.8308,"
	            "\"baseline\":\"supervised\",\"baseline_accuracy\":0.7518,\"gain\":0.079},"
	            "\"evaluations\":[{\"protocol\":\"knn\",\"label_fraction\":1,\"test_accuracy\":0.9}]}",
	            "+7.9 pts @1%");
	expect_cell("{\"headline\":{\"label_fraction\":0.1,\"gain\":-0.021}}", "-2.1 pts @10%");
	expect_cell("{\"headline\":{\"labels_per_class\":10,\"gain\":-0.035}}", "-3.5 pts @10/class");
	/* Else the best evaluation of the pretrained encoder; the baseline only when it is alone. */
	expect_cell("{\"evaluations\":[{\"protocol\":\"linear_probe\",\"label_fraction\":0.01,\"test_accuracy\":0.7045},"
	            "{\"protocol\":\"supervised\",\"label_fraction\":0.01,\"test_accuracy\":0.95},"
	            "{\"protocol\":\"knn\",\"label_fraction\":0.1,\"test_accuracy\":0.71}]}",
	            "71.00% @10%");
	expect_cell("{\"evaluations\":[{\"protocol\":\"supervised\",\"label_fraction\":1,\"test_accuracy\":0.5}]}",
	            "50.00% @100%");
	expect_cell("{\"pretext\":{\"final_loss\":4.774,\"test_bits_per_byte\":6.88}}", "6.88 bit/B");
	expect_cell("{\"pretext\":{}}", "-");

	/* `ssld results` leads with the headline. */
	cJSON *r = cJSON_Parse("{\"headline\":{\"protocol\":\"linear_probe\",\"label_fraction\":0.01,\"accuracy\":0.7045,"
	                       "\"baseline\":\"supervised\",\"baseline_accuracy\":0.6123,\"gain\":0.0922},"
	                       "\"evaluations\":[{\"protocol\":\"linear_probe\",\"label_fraction\":0.01,\"labels\":100,"
	                       "\"test_accuracy\":0.7045,\"train_accuracy\":1}]}");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cli_print_results(f, r);
	fclose(f);
	const char *head = "headline: +9.2 pts over supervised at 1% labels (linear_probe 70.45% vs 61.23%)\n";
	CHECK(text && strncmp(text, head, strlen(head)) == 0, "%s", text);
	CHECK(text && strstr(text, "\nlinear_probe          1%     100         70.45%  train_accuracy=100.00%\n"), "%s", text);
	free(text);
	/* A headline at labels per class, behind its baseline. */
	cJSON *r2 = cJSON_Parse("{\"headline\":{\"protocol\":\"finetune\",\"labels_per_class\":10,\"accuracy\":0.1348,"
	                        "\"baseline\":\"scratch\",\"baseline_accuracy\":0.1694,\"gain\":-0.0346}}");
	text = NULL;
	f = open_memstream(&text, &len);
	cli_print_results(f, r2);
	fclose(f);
	head = "headline: -3.5 pts against scratch at 10 labels per class (finetune 13.48% vs 16.94%)\n";
	CHECK(text && strncmp(text, head, strlen(head)) == 0, "%s", text);
	free(text);
	cJSON_Delete(r2);
	cJSON_Delete(r);
	return check_exit("cli_format");
}
