/* attention_ref.h - scaled dot-product attention in double precision with an error bound for each
 * output and gradient of the float32 engine op (engine/ops_nn.c op_attention), for test_ops_nn
 * and test_threads_nn.
 *
 * Softmax is not a sum of products, so tolerance.h's k * eps * sum|term| does not apply directly;
 * the bounds here follow each float32 stage of the engine (running error analysis, first order,
 * with FLT_EPSILON = 2u per rounding, which leaves a factor 2 for the terms neglected):
 *   s_j  = scale * q . k_j          err es_j <= (Dh + 3) eps * scale * sum_t |q_t k_jt|
 *                                   (Dh products and sums, the scale and its own rounding)
 *   e_j  = expf(s_j - max)          rel err  <= 2 max_j es_j + eps |s_j - max| + eps
 *   p_j  = e_j / sum_l e_l          rel err  rp <= 2 (that) + (Tk + 2) eps
 *   o_t  = sum_j p_j v_jt           err <= (rp + (Tk + 1) eps) * sum_j p_j |v_jt|
 * and backward with dO given (dv = P^T dO, dP = dO v^T, dS = P (dP - rowsum(P dP)) scale,
 * dq = dS k, dk = dS^T q), each stage adding the propagated error of its inputs to its own
 * rounding bound. An element out of its bound therefore means a wrong value, whatever summation
 * order the sgemm inside used.
 *
 * When q, k, v are themselves results of float32 computations, err (three arrays shaped like
 * q, k, v, each NULL when exact) bounds how far each input may be from the exact value; the
 * output bound then includes its first-order effect (scores through q and k, o through v). The
 * gradient bounds assume exact inputs.
 *
 *   AttnRef r;
 *   attention_ref(q, k, v, NULL, dO, B * H, Tq, Tk, Dh, causal, &r);   // dO NULL: forward only
 *   failures += tol_check_bound("attention", o->data, r.o, r.bo, o->size);
 *   attention_ref_free(&r);
 */
#ifndef SSLD_TESTS_ATTENTION_REF_H
#define SSLD_TESTS_ATTENTION_REF_H

#include <float.h>
#include <math.h>
#include <stdlib.h>

typedef struct AttnRef {
	double *o, *bo;     /* (BH,Tq,Dh) output and its bound */
	double *dq, *bdq;   /* (BH,Tq,Dh) */
	double *dk, *bdk;   /* (BH,Tk,Dh) */
	double *dv, *bdv;   /* (BH,Tk,Dh) */
} AttnRef;

static void attention_ref_free(AttnRef *r)
{
	double **p[] = { &r->o, &r->bo, &r->dq, &r->bdq, &r->dk, &r->bdk, &r->dv, &r->bdv };
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
		free(*p[i]);
		*p[i] = NULL;
	}
}

/* q (BH,Tq,Dh), k and v (BH,Tk,Dh), err NULL or the inputs' error bounds (above), dO
 * (BH,Tq,Dh) or NULL (then no gradients). Fills r with calloc'ed arrays (free with
 * attention_ref_free); returns 0, or -1 when out of memory. */
static int attention_ref(const float *q, const float *k, const float *v,
                         const double *const *err, const float *dO, int BH, int Tq, int Tk,
                         int Dh, int causal, AttnRef *r)
{
	const double eps = FLT_EPSILON, scale = 1.0 / sqrt((double)Dh);
	const size_t qn = (size_t)BH * Tq * Dh, kn = (size_t)BH * Tk * Dh;
	*r = (AttnRef){ 0 };
	r->o = calloc(qn, sizeof(double)), r->bo = calloc(qn, sizeof(double));
	if (dO) {
		r->dq = calloc(qn, sizeof(double)), r->bdq = calloc(qn, sizeof(double));
		r->dk = calloc(kn, sizeof(double)), r->bdk = calloc(kn, sizeof(double));
		r->dv = calloc(kn, sizeof(double)), r->bdv = calloc(kn, sizeof(double));
	}
	/* per (b,h): P and its absolute error, dP and its error, dS and its error */
	double *P = malloc((size_t)Tq * Tk * sizeof *P), *eP = malloc((size_t)Tq * Tk * sizeof *eP);
	double *dS = malloc((size_t)Tq * Tk * sizeof *dS), *edS = malloc((size_t)Tq * Tk * sizeof *edS);
	int ok = r->o && r->bo && P && eP && dS && edS &&
	         (!dO || (r->dq && r->bdq && r->dk && r->bdk && r->dv && r->bdv));
	for (int m = 0; ok && m < BH; m++) {
		const float *qm = q + (size_t)m * Tq * Dh, *km = k + (size_t)m * Tk * Dh;
		const float *vm = v + (size_t)m * Tk * Dh;
		const double *eq = err && err[0] ? err[0] + (size_t)m * Tq * Dh : NULL;
		const double *ek = err && err[1] ? err[1] + (size_t)m * Tk * Dh : NULL;
		const double *ev = err && err[2] ? err[2] + (size_t)m * Tk * Dh : NULL;
		for (int i = 0; i < Tq; i++) {
			const int len = causal ? i + 1 : Tk;
			double *p = P + (size_t)i * Tk, *ep = eP + (size_t)i * Tk;
			double mx = -INFINITY, es_max = 0.0, sum = 0.0;
			for (int j = 0; j < len; j++) {
				double s = 0.0, a = 0.0, ein = 0.0;
				for (int t = 0; t < Dh; t++) {
					s += (double)qm[i * Dh + t] * km[j * Dh + t];
					a += fabs((double)qm[i * Dh + t] * km[j * Dh + t]);
					if (eq)
						ein += eq[i * Dh + t] * fabsf(km[j * Dh + t]);
					if (ek)
						ein += fabsf(qm[i * Dh + t]) * ek[j * Dh + t];
				}
				p[j] = s * scale;
				es_max = fmax(es_max, (Dh + 3) * eps * scale * a + scale * ein);
				mx = fmax(mx, p[j]);
			}
			double spread = 0.0;
			for (int j = 0; j < len; j++) {
				spread = fmax(spread, mx - p[j]);
				p[j] = exp(p[j] - mx);
				sum += p[j];
			}
			const double rp = 2.0 * (2.0 * es_max + eps * spread + eps) + (Tk + 2) * eps;
			for (int j = 0; j < Tk; j++) {
				p[j] = j < len ? p[j] / sum : 0.0;
				ep[j] = rp * p[j];
			}
			for (int t = 0; t < Dh; t++) {
				double o = 0.0, a = 0.0, ein = 0.0;
				for (int j = 0; j < len; j++) {
					o += p[j] * vm[j * Dh + t];
					a += p[j] * fabs((double)vm[j * Dh + t]);
					if (ev)
						ein += p[j] * ev[j * Dh + t];
				}
				r->o[((size_t)m * Tq + i) * Dh + t] = o;
				r->bo[((size_t)m * Tq + i) * Dh + t] = (rp + (Tk + 1) * eps) * a + ein;
			}
		}
		if (!dO)
			continue;
		const float *gm = dO + (size_t)m * Tq * Dh;
		const size_t ko = (size_t)m * Tk * Dh, qo = (size_t)m * Tq * Dh;
		/* dv (Tk,Dh) = P^T dO, accumulated into the zeroed gradient */
		for (int j = 0; j < Tk; j++)
			for (int t = 0; t < Dh; t++) {
				double s = 0.0, a = 0.0, e = 0.0;
				for (int i = 0; i < Tq; i++) {
					const double g = gm[i * Dh + t];
					s += P[(size_t)i * Tk + j] * g;
					a += P[(size_t)i * Tk + j] * fabs(g);
					e += eP[(size_t)i * Tk + j] * fabs(g);
				}
				r->dv[ko + (size_t)j * Dh + t] = s;
				r->bdv[ko + (size_t)j * Dh + t] = e + (Tq + 1) * eps * a;
			}
		/* dS = P (dP - rowsum(P dP)) scale, dP = dO v^T */
		for (int i = 0; i < Tq; i++) {
			const double *p = P + (size_t)i * Tk, *ep = eP + (size_t)i * Tk;
			double *ds = dS + (size_t)i * Tk, *eds = edS + (size_t)i * Tk;
			double dot = 0.0, edot = 0.0, adot = 0.0;
			for (int j = 0; j < Tk; j++) {
				double s = 0.0, a = 0.0;
				for (int t = 0; t < Dh; t++) {
					s += (double)gm[i * Dh + t] * vm[j * Dh + t];
					a += fabs((double)gm[i * Dh + t] * vm[j * Dh + t]);
				}
				ds[j] = s;          /* dP for now */
				eds[j] = Dh * eps * a;  /* its error */
				dot += p[j] * s;
				adot += p[j] * fabs(s);
				edot += ep[j] * fabs(s) + p[j] * eds[j];
			}
			edot += (Tk + 1) * eps * adot;
			for (int j = 0; j < Tk; j++) {
				const double d = ds[j] - dot;
				eds[j] = scale * (ep[j] * fabs(d) + p[j] * (eds[j] + edot) +
				                  5 * eps * p[j] * fabs(d));
				ds[j] = scale * p[j] * d;
			}
		}
		/* dq (Tq,Dh) = dS k, dk (Tk,Dh) = dS^T q */
		for (int i = 0; i < Tq; i++)
			for (int t = 0; t < Dh; t++) {
				double s = 0.0, a = 0.0, e = 0.0;
				for (int j = 0; j < Tk; j++) {
					const double kv = km[j * Dh + t];
					s += dS[(size_t)i * Tk + j] * kv;
					a += fabs(dS[(size_t)i * Tk + j] * kv);
					e += edS[(size_t)i * Tk + j] * fabs(kv);
				}
				r->dq[qo + (size_t)i * Dh + t] = s;
				r->bdq[qo + (size_t)i * Dh + t] = e + (Tk + 1) * eps * a;
			}
		for (int j = 0; j < Tk; j++)
			for (int t = 0; t < Dh; t++) {
				double s = 0.0, a = 0.0, e = 0.0;
				for (int i = 0; i < Tq; i++) {
					const double qv = qm[i * Dh + t];
					s += dS[(size_t)i * Tk + j] * qv;
					a += fabs(dS[(size_t)i * Tk + j] * qv);
					e += edS[(size_t)i * Tk + j] * fabs(qv);
				}
				r->dk[ko + (size_t)j * Dh + t] = s;
				r->bdk[ko + (size_t)j * Dh + t] = e + (Tq + 1) * eps * a;
			}
	}
	free(P);
	free(eP);
	free(dS);
	free(edS);
	if (!ok) {
		attention_ref_free(r);
		return -1;
	}
	return 0;
}

#endif
