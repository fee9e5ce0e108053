/* test_job_progress.c - the whole job's fraction and ETA (workers/job_progress.h) on made-up
 * seconds: it never goes down across phases, a time budget caps pretraining's share, the
 * evaluations still to come are in the ETA, and a group's measured rate times its later phases. */
#include <math.h>

#include "../../workers/job_progress.h"
#include "../check.h"

static void test_phases(void)
{
	JobProgress p;
	jp_init(&p);
	int pre = jp_add(&p, 0, 1000, 0), e1 = jp_add(&p, 1, 500, 0), e2 = jp_add(&p, 1, 500, 0);
	double f, eta, last = 0;
	jp_begin(&p, pre);
	jp_update(&p, 0, 0, &f, &eta);
	CHECK(f == 0 && eta < 0, "nothing measured yet: %g, eta %g", f, eta);
	jp_update(&p, 0.5, 10, &f, &eta);   /* 500 units in 10 s: 0.02 s per unit */
	CHECK(fabs(eta - (10 + 10 + 10)) < 1e-9, "eta covers the evaluations: %g", eta);
	CHECK(fabs(f - 0.25) < 1e-9, "fraction %g", f);
	jp_end(&p, 1, 20);
	last = f;
	jp_begin(&p, e1);
	jp_update(&p, 0, 0, &f, &eta);
	CHECK(f >= last && fabs(f - 0.5) < 1e-9, "an evaluation does not restart at 0: %g", f);
	jp_update(&p, 0.5, 1, &f, &eta);   /* this evaluation runs 5x faster than pretraining */
	CHECK(f >= 0.5 && eta > 0, "fraction %g, eta %g", f, eta);
	jp_end(&p, 1, 2);
	jp_begin(&p, e2);
	jp_update(&p, 0, 0, &f, &eta);
	CHECK(fabs(eta - 2) < 1e-9, "the next evaluation timed by the evaluations' rate: %g", eta);
	jp_update(&p, 1, 5, &f, &eta);
	CHECK(f < 1, "below 1 until the job says it is done: %g", f);
}

static void test_budget(void)
{
	JobProgress p;
	jp_init(&p);
	int pre = jp_add(&p, 0, 7020, 900);   /* 7,020 steps, a 15-minute budget */
	jp_add(&p, 1, 100, 0);
	double f, eta;
	jp_begin(&p, pre);
	jp_update(&p, 295.0 / 7020, 90, &f, &eta);   /* 295 steps in 90 s: the budget binds */
	CHECK(fabs(eta - (810 + 100 * 90 / 295.0)) < 1e-6, "eta by the budget: %g", eta);
	CHECK(fabs(f - 90 / (90 + eta)) < 1e-9 && f > 0.09, "fraction by the budget: %g", f);
	jp_end(&p, 2950.0 / 7020, 900);
	jp_begin(&p, 1);
	jp_update(&p, 0, 0, &f, &eta);
	CHECK(fabs(eta - 100 * 900 / 2950.0) < 1e-6, "the rate learns from the steps really done: %g", eta);
}

int main(void)
{
	test_phases();
	test_budget();
	return check_exit("job_progress");
}
