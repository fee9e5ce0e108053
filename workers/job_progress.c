/* job_progress.c - the whole job's fraction and ETA from its phases' costs (see job_progress.h).
 *
 * Pure arithmetic: the runner owns the clock and says how far each phase is; nothing here reads
 * time, so the tests can drive it with made-up seconds.
 */
#include "job_progress.h"

#include <math.h>
#include <string.h>

/* Below 1 until the runner says the job succeeded: writing the results is work too. */
#define JP_CEILING 0.999

void jp_init(JobProgress *p)
{
	memset(p, 0, sizeof *p);
	p->cur = -1;
}

int jp_add(JobProgress *p, int group, double units, double budget_s)
{
	if (p->n >= JOB_PROGRESS_MAX_PHASES)
		return -1;
	p->phase[p->n] = (JobPhase){ .group = group, .units = units > 0 && isfinite(units) ? units : 0,
	                             .budget_s = budget_s > 0 ? budget_s : 0 };
	return p->n++;
}

void jp_begin(JobProgress *p, int i)
{
	p->cur = i >= 0 && i < p->n ? i : -1;
}

static double clamp01(double x)
{
	return !(x > 0) ? 0 : x > 1 ? 1 : x;
}

/* Seconds per unit of a group's finished phases, else `rate` (the job's so far). */
static double group_rate(const JobProgress *p, int group, double rate)
{
	double units = 0, secs = 0;
	for (int i = 0; i < p->n; i++)
		if (p->phase[i].done && p->phase[i].group == group) {
			units += p->phase[i].units;
			secs += p->phase[i].seconds;
		}
	return units > 0 && secs > 0 ? secs / units : rate;
}

/* Seconds left of a phase that is `done` (0..1) after spent_s seconds. */
static double phase_left(const JobProgress *p, const JobPhase *ph, double done, double spent_s,
                         double rate)
{
	double left = (1 - done) * ph->units * group_rate(p, ph->group, rate);
	if (ph->budget_s > 0 && ph->budget_s - spent_s < left)
		left = ph->budget_s - spent_s > 0 ? ph->budget_s - spent_s : 0;
	return left;
}

void jp_update(JobProgress *p, double done, double spent_s, double *fraction, double *eta_s)
{
	done = clamp01(done);
	spent_s = spent_s > 0 ? spent_s : 0;
	double units_done = 0, secs_done = 0, units_all = 0;
	for (int i = 0; i < p->n; i++) {
		units_all += p->phase[i].units;
		if (p->phase[i].done) {
			units_done += p->phase[i].units;
			secs_done += p->phase[i].seconds;
		}
	}
	const JobPhase *c = p->cur >= 0 ? &p->phase[p->cur] : NULL;
	if (c) {
		units_done += done * c->units;
		secs_done += spent_s;
	}
	double rate = units_done > 0 && secs_done > 0 ? secs_done / units_done : 0;
	double f, eta = -1;
	if (rate > 0) {
		eta = c ? phase_left(p, c, done, spent_s, rate) : 0;
		for (int i = 0; i < p->n; i++)
			if (!p->phase[i].done && i != p->cur)
				eta += phase_left(p, &p->phase[i], 0, 0, rate);
		f = secs_done + eta > 0 ? secs_done / (secs_done + eta) : 0;
	} else {
		f = units_all > 0 ? units_done / units_all : 0;
	}
	if (f > JP_CEILING)
		f = JP_CEILING;
	if (f < p->last)
		f = p->last;
	p->last = f;
	*fraction = f;
	*eta_s = eta;
}

void jp_end(JobProgress *p, double done, double spent_s)
{
	if (p->cur < 0)
		return;
	JobPhase *c = &p->phase[p->cur];
	c->units *= clamp01(done);
	c->seconds = spent_s > 0 ? spent_s : 0;
	c->done = 1;
	p->cur = -1;
}
