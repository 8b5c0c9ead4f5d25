/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/insight.c: the call-rate and error-rate insights (the model is described in insight.h).
 *
 * Invariants:
 *  1. Per key, periods are closed in increasing order, each exactly once: cur_p is the period being
 *     counted, every period < cur_p is closed (last_p is the newest closed one), and the ring holds
 *     the counts of periods last_p-15 .. last_p (zeros included).
 *  2. A track's run exists while it has an elevated minute in the last RUN_GAP closed periods or an
 *     open insight; an insight is open only inside a run.
 *  3. Baseline updates skip every period of an open insight.
 *  4. Keys are in the hash table and in the LRU list (most recent event first) together.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/detect_int.h"
#include "alerts/insight.h"
#include "core/time.h"

#define RING 16           /* closed periods remembered per key (>= the longest window) */
#define RUN_GAP 15        /* quiet periods that end an elevated run */
#define SK_SLOTS 8        /* slots of a space-saving sketch */
#define CLOSE_W 5         /* window of the closing test */
#define NTRACK 2          /* calls, errors */
#define STATE_MAGIC "TWINSIG1"
#define STATE_VERSION 1u

static const unsigned windows[] = { 1, 5, 15 };

/* One slot of a space-saving sketch. */
struct slot {
	uint64_t h;   /* hash of the bytes s was made from */
	uint64_t n;   /* count (upper bound) */
	char *s;      /* the value (malloc'd) */
	uint32_t len; /* strlen(s) */
	int nul;      /* s was cut at a NUL byte of its value: h is not the hash of s[0..len) */
};

/* Space-saving sketch of each contributor kind. */
struct sk3 {
	struct slot k[TW_ANOMALY_C__COUNT][SK_SLOTS]; /* per kind; s == NULL: free slot */
};

/* The elevated run of a track, and its insight once open. */
struct run {
	int64_t start_p;    /* first elevated period */
	int64_t last_hot_p; /* newest elevated period */
	int64_t opened_p;   /* period at which the insight opened */
	uint64_t count;     /* events from start_p through the last closed period */
	uint64_t count_hot; /* events from start_p through last_hot_p */
	int open;           /* 1 while the insight is open */
	double base_m;      /* baseline per period when it opened */
	double peak_z;      /* largest z seen */
	struct sk3 sk;      /* contributors since start_p */
	char ev[TW_ANOMALY_EVIDENCE][64]; /* evidence */
	unsigned nev;       /* entries of ev */
};

/* The current period's contributors and evidence (allocated while it has events). */
struct cur {
	struct sk3 sk;                      /* contributors */
	char ev[TW_ANOMALY_EVIDENCE][64];   /* first event ids */
	unsigned nev;                       /* entries of ev */
};

/* One metric (calls or errors) of a key. */
struct track {
	double m, s;           /* baseline mean and mean absolute deviation per period */
	uint32_t ring[RING];   /* counts of the last closed periods, index p % RING */
	uint32_t cur;          /* count in the key's cur_p */
	struct cur *c;         /* contributors of cur_p, NULL when none */
	struct sk3 *base;      /* baseline contributors, NULL until the first */
	int64_t base_halved_p; /* period of the last halving of base */
	struct run *run;       /* elevated run / insight, NULL when none */
	int64_t floor_p;       /* windows start here: periods of the last closed insight are not counted again */
};

/* One key: (account, region, eventSource, eventName). */
struct key {
	uint64_t h;               /* hash of the four strings */
	struct key *hnext;        /* hash chain */
	struct key *prev, *next;  /* LRU list: head = most recent */
	char *acct, *region, *src, *name; /* into one allocation (acct) */
	size_t lacct, lregion, lsrc, lname; /* their strlen */
	int64_t cur_p;            /* period being counted (INT64_MIN: none yet) */
	int64_t last_p;           /* newest closed period (INT64_MIN: none) */
	double n;                 /* periods learned (capped at tau) */
	struct track t[NTRACK];   /* calls, errors */
};

struct tw_insight {
	struct tw_insight_opts o;   /* options */
	struct key **tab;           /* hash buckets */
	size_t nbuckets;            /* power of two */
	size_t nkeys;               /* keys held */
	struct key *head, *tail;    /* LRU */
	int64_t first_p;            /* first period ever observed (INT64_MIN: none) */
	int64_t closed;             /* closed mark (ms) */
	struct tw_insight_stats st; /* counters */
	struct tw_anomaly a;        /* scratch finding */
};

void tw_insight_opts_default(struct tw_insight_opts *o)
{
	o->period_ms = 60000;
	o->tau_periods = 10080;
	o->warmup_periods = 30;
	o->min_count = 10;
	o->min_ratio = 3;
	o->z_open = 6;
	o->z_close = 2;
	o->max_open_ms = 6 * 3600 * 1000LL;
	o->max_keys = 20000;
	o->per_source = 1;
	o->errors = 1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- sketches -------------------------------------------------------------------------------- */

/* The hash sk_add keys a value by (0 for an empty value, which sk_add ignores). */
static uint64_t sk_hash(struct tw_str v)
{
	return v.n ? tw_dh_bytes(TW_DH_SEED, v.p, v.n) : 0;
}

/* Counts value v (hash h = sk_hash(v)) by `by` in sk's kind. take: NULL, or a malloc'd copy of v
 * the sketch may keep instead of copying v (then *take is set to NULL). */
static void sk_put(struct sk3 *sk, int kind, struct tw_str v, uint64_t h, uint64_t by, char **take)
{
	struct slot *sl = sk->k[kind], *min = NULL, *free_slot = NULL, *to;
	char *s;

	if (!v.n || !by)
		return;
	for (int i = 0; i < SK_SLOTS; i++) {
		if (!sl[i].s) {
			if (!free_slot)
				free_slot = &sl[i];
			continue;
		}
		if (sl[i].h == h && sl[i].len == v.n && !memcmp(sl[i].s, v.p, v.n)) {
			sl[i].n += by;
			return;
		}
		if (!min || sl[i].n < min->n)
			min = &sl[i];
	}
	if (take && *take) {
		s = *take;
		*take = NULL;
	} else {
		if (!(s = malloc(v.n + 1)))
			return; /* a contributor less; the counts stay right */
		memcpy(s, v.p, v.n);
		s[v.n] = 0;
	}
	if (free_slot) {
		to = free_slot;
		to->n = by;
	} else { /* space-saving: the new value takes the smallest slot and inherits its count */
		to = min;
		free(to->s);
		to->n += by;
	}
	to->s = s;
	to->h = h;
	to->len = (uint32_t)strlen(s);
	to->nul = to->len != v.n;
}

static void sk_clear(struct sk3 *sk)
{
	for (int k = 0; k < TW_ANOMALY_C__COUNT; k++)
		for (int i = 0; i < SK_SLOTS; i++) {
			free(sk->k[k][i].s);
			sk->k[k][i].s = NULL;
			sk->k[k][i].n = 0;
		}
}

/* Adds src's counts to dst, then empties src (its strings move to dst where dst needs them). */
static void sk_merge(struct sk3 *dst, struct sk3 *src)
{
	for (int k = 0; k < TW_ANOMALY_C__COUNT; k++)
		for (int i = 0; i < SK_SLOTS; i++) {
			struct slot *sl = &src->k[k][i];
			if (sl->s) {
				struct tw_str v = { sl->s, sl->len };
				sk_put(dst, k, v, sl->nul ? sk_hash(v) : sl->h, sl->n, &sl->s);
			}
		}
	sk_clear(src);
}

static void sk_halve(struct sk3 *sk)
{
	for (int k = 0; k < TW_ANOMALY_C__COUNT; k++)
		for (int i = 0; i < SK_SLOTS; i++)
			if (sk->k[k][i].s && !(sk->k[k][i].n /= 2)) {
				free(sk->k[k][i].s);
				sk->k[k][i].s = NULL;
			}
}

static void sk_top(const struct sk3 *sk, struct tw_anomaly_top *top)
{
	for (int k = 0; k < TW_ANOMALY_C__COUNT; k++) {
		const struct slot *order[SK_SLOTS];
		unsigned n = 0;
		for (int i = 0; i < SK_SLOTS; i++)
			if (sk && sk->k[k][i].s) {
				/* insertion sort: count desc, then value */
				unsigned j = n++;
				while (j > 0 && (order[j - 1]->n < sk->k[k][i].n ||
						 (order[j - 1]->n == sk->k[k][i].n && strcmp(order[j - 1]->s, sk->k[k][i].s) > 0))) {
					order[j] = order[j - 1];
					j--;
				}
				order[j] = &sk->k[k][i];
			}
		top[k].n = 0;
		for (unsigned i = 0; i < n && i < TW_ANOMALY_TOPK; i++) {
			tw_anomaly_strcpy(top[k].c[i].key, sizeof top[k].c[i].key, order[i]->s, strlen(order[i]->s));
			top[k].c[i].n = order[i]->n;
			top[k].n++;
		}
	}
}

/* ---- keys ------------------------------------------------------------------------------------ */

static void track_free(struct track *t)
{
	if (t->c) {
		sk_clear(&t->c->sk);
		free(t->c);
		t->c = NULL;
	}
	if (t->base) {
		sk_clear(t->base);
		free(t->base);
		t->base = NULL;
	}
	if (t->run) {
		sk_clear(&t->run->sk);
		free(t->run);
		t->run = NULL;
	}
}

static void key_free(struct key *k)
{
	for (int i = 0; i < NTRACK; i++)
		track_free(&k->t[i]);
	free(k->acct);
	free(k);
}

static void lru_unlink(struct tw_insight *ins, struct key *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		ins->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		ins->tail = k->prev;
	k->prev = k->next = NULL;
}

static void lru_front(struct tw_insight *ins, struct key *k)
{
	k->next = ins->head;
	k->prev = NULL;
	if (ins->head)
		ins->head->prev = k;
	ins->head = k;
	if (!ins->tail)
		ins->tail = k;
}

static void key_remove(struct tw_insight *ins, struct key *k)
{
	struct key **pp = &ins->tab[tw_dh_mix(k->h) & (ins->nbuckets - 1)];
	while (*pp && *pp != k)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = k->hnext;
	lru_unlink(ins, k);
	for (int i = 0; i < NTRACK; i++)
		if (k->t[i].run && k->t[i].run->open && ins->st.open)
			ins->st.open--;
	key_free(k);
	ins->nkeys--;
}

static enum tw_rc grow(struct tw_insight *ins, struct tw_err *err)
{
	size_t nb = ins->nbuckets * 2;
	struct key **t = calloc(nb, sizeof *t);
	if (!t)
		return tw_err_set(err, TW_ENOMEM, "insight: out of memory");
	for (size_t i = 0; i < ins->nbuckets; i++)
		for (struct key *k = ins->tab[i], *nx; k; k = nx) {
			nx = k->hnext;
			k->hnext = t[tw_dh_mix(k->h) & (nb - 1)];
			t[tw_dh_mix(k->h) & (nb - 1)] = k;
		}
	free(ins->tab);
	ins->tab = t;
	ins->nbuckets = nb;
	return TW_OK;
}

static uint64_t key_hash(struct tw_str a, struct tw_str r, struct tw_str s, struct tw_str n)
{
	uint64_t h = tw_dh_bytes(TW_DH_SEED, a.p, a.n);
	h = tw_dh_bytes(h, r.p, r.n);
	h = tw_dh_bytes(h, s.p, s.n);
	return tw_dh_bytes(h, n.p, n.n);
}

static int seq(const char *c, size_t n, struct tw_str s)
{
	return n == s.n && (!s.n || !memcmp(c, s.p, s.n));
}

/* Copies s NUL-terminated to b; returns the byte after the NUL (s.p may be NULL when s.n is 0). */
static char *put_str(char *b, struct tw_str s)
{
	if (s.n)
		memcpy(b, s.p, s.n);
	b[s.n] = 0;
	return b + s.n + 1;
}

/* Creates a key (strings copied) with the learned zero history (see insight.h). */
static struct key *key_make(struct tw_insight *ins, uint64_t h, struct tw_str a, struct tw_str r, struct tw_str s,
			    struct tw_str n, int64_t p, struct tw_err *err)
{
	struct key *k = calloc(1, sizeof *k);
	char *b;

	if (!k || !(b = malloc(a.n + r.n + s.n + n.n + 4))) {
		free(k);
		tw_err_set(err, TW_ENOMEM, "insight: out of memory");
		return NULL;
	}
	k->acct = b;
	b = put_str(b, a);
	k->region = b;
	b = put_str(b, r);
	k->src = b;
	b = put_str(b, s);
	k->name = b;
	(void)put_str(b, n);
	k->lacct = strlen(k->acct);
	k->lregion = strlen(k->region);
	k->lsrc = strlen(k->src);
	k->lname = strlen(k->name);
	k->h = h;
	k->cur_p = INT64_MIN;
	k->last_p = p - 1;
	k->n = ins->first_p == INT64_MIN || p < ins->first_p ? 0 : (double)(p - ins->first_p);
	if (k->n > ins->o.tau_periods)
		k->n = ins->o.tau_periods;
	for (int i = 0; i < NTRACK; i++) {
		k->t[i].base_halved_p = p;
		k->t[i].floor_p = INT64_MIN;
	}
	return k;
}

static void key_insert(struct tw_insight *ins, struct key *k)
{
	size_t b = tw_dh_mix(k->h) & (ins->nbuckets - 1);
	k->hnext = ins->tab[b];
	ins->tab[b] = k;
	lru_front(ins, k);
	ins->nkeys++;
}

static void evict(struct tw_insight *ins)
{
	struct key *k = ins->tail;
	for (int steps = 0; k && steps < 64; steps++, k = k->prev)
		if (!(k->t[0].run && k->t[0].run->open) && !(k->t[1].run && k->t[1].run->open))
			break;
	if (!k)
		k = ins->tail;
	if (k) {
		key_remove(ins, k);
		ins->st.evicted++;
	}
}

/* ---- findings -------------------------------------------------------------------------------- */

static void hhmm(int64_t ms, int with_date, char *out, size_t cap)
{
	char t[TW_TIME_BUFSZ];
	tw_time_format(ms, t);
	/* 2026-11-04T05:58:00Z */
	if (with_date)
		snprintf(out, cap, "%.10s %.5s", t, t + 11);
	else
		snprintf(out, cap, "%.5s", t + 11);
}

static void emit_finding(struct tw_insight *ins, struct key *k, int tr, const char *phase, int64_t end_p,
			 uint64_t count, tw_insight_emit_fn emit, void *ctx)
{
	struct tw_anomaly *a = &ins->a;
	struct track *t = &k->t[tr];
	struct run *r = t->run;
	int64_t pm = ins->o.period_ms;
	double periods = (double)(end_p - r->start_p);
	char what[300], from[40], to[40], obs[32], base[32], tail[600];
	const char *unit = tr ? "errors" : "calls";

	memset(a, 0, sizeof *a);
	snprintf(a->detector, sizeof a->detector, "%s", tr ? "api_error_rate" : "api_call_rate");
	snprintf(a->phase, sizeof a->phase, "%s", phase);
	a->start_ms = r->start_p * pm;
	a->end_ms = end_p * pm;
	tw_anomaly_strcpy(a->account, sizeof a->account, k->acct, strlen(k->acct));
	tw_anomaly_strcpy(a->region, sizeof a->region, k->region, strlen(k->region));
	tw_anomaly_strcpy(a->event_source, sizeof a->event_source, k->src, strlen(k->src));
	tw_anomaly_strcpy(a->event_name, sizeof a->event_name, k->name, strlen(k->name));
	a->baseline = r->base_m * 60000.0 / (double)pm;
	a->observed = periods > 0 ? (double)count / periods * 60000.0 / (double)pm : 0;
	a->observed_count = count;
	a->score = r->peak_z;
	sk_top(t->base, a->top[0]);
	sk_top(&r->sk, a->top[1]);
	if (a->top[1][TW_ANOMALY_C_PRINCIPAL].n)
		memcpy(a->principal, a->top[1][TW_ANOMALY_C_PRINCIPAL].c[0].key, sizeof a->principal);
	for (unsigned i = 0; i < r->nev; i++)
		memcpy(a->evidence[i], r->ev[i], sizeof a->evidence[i]);
	a->nevidence = r->nev;
	if (!strcmp(k->name, "*"))
		snprintf(what, sizeof what, "%.200s %s (all APIs)", k->src, unit);
	else
		snprintf(what, sizeof what, "%.200s %s", k->name, unit);
	hhmm(a->start_ms, 1, from, sizeof from);
	hhmm(a->end_ms, floor_div(a->start_ms, 86400000) != floor_div(a->end_ms, 86400000), to, sizeof to);
	tw_anomaly_fmt_rate(a->observed, obs);
	tw_anomaly_fmt_rate(a->baseline, base);
	tail[0] = 0;
	if (tr && a->top[1][TW_ANOMALY_C_ERROR_CODE].n)
		snprintf(tail, sizeof tail, "; top error %s (%llu of %llu)", a->top[1][TW_ANOMALY_C_ERROR_CODE].c[0].key,
			 (unsigned long long)a->top[1][TW_ANOMALY_C_ERROR_CODE].c[0].n, (unsigned long long)count);
	if (a->top[1][TW_ANOMALY_C_PRINCIPAL].n)
		snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "; top principal %.250s (%llu of %llu)",
			 a->top[1][TW_ANOMALY_C_PRINCIPAL].c[0].key,
			 (unsigned long long)a->top[1][TW_ANOMALY_C_PRINCIPAL].c[0].n, (unsigned long long)count);
	snprintf(a->summary, sizeof a->summary, "%.250s in %.64s/%.64s %s %s/min from %s to %s against a baseline of %s/min%.400s",
		 what, k->acct, k->region, strcmp(phase, "start") ? "averaged" : "rose to", obs, from, to, base, tail);
	tw_anomaly_set_id(a);
	if (emit)
		emit(ctx, a);
}

/* ---- the model ------------------------------------------------------------------------------- */

static double var1(const struct track *t)
{
	double v = t->m, d = 1.2533 * t->s;
	if (d * d > v)
		v = d * d;
	if (v < 1.0 / 1440)
		v = 1.0 / 1440;
	return v;
}

static uint64_t ring_sum(const struct track *t, int64_t p, unsigned w)
{
	uint64_t c = 0;
	if (w > RING) /* the ring holds RING periods (and a run starting after p asks for ~2^32) */
		w = RING;
	for (unsigned i = 0; i < w && p - (int64_t)i >= t->floor_p; i++)
		c += t->ring[(uint64_t)(p - i) % RING];
	return c;
}

static void learn(struct tw_insight *ins, struct key *k, struct track *t, double x)
{
	double a = 1.0 / (k->n + 1), sd = sqrt(var1(t)), cap = t->m + 4 * sd + 1;
	if (a < 1.0 / ins->o.tau_periods)
		a = 1.0 / ins->o.tau_periods;
	if (x > cap && k->n >= ins->o.warmup_periods) /* no clipping while the mean is being learned */
		x = cap;
	t->s = (1 - a) * t->s + a * fabs(x - t->m);
	t->m = (1 - a) * t->m + a * x;
}

/* Closes period p of track tr with count x (its contributors in t->c). */
static void close_track(struct tw_insight *ins, struct key *k, int tr, int64_t p, uint32_t x, tw_insight_emit_fn emit,
			void *ctx)
{
	struct track *t = &k->t[tr];
	double v, sd;
	int hot;
	struct run *r = t->run;
	int64_t max_open = ins->o.max_open_ms / ins->o.period_ms;

	if (!x && !r && !t->c && t->m == 0 && t->s == 0) {
		/* a track that never learned a call: the general path below would only write the zero,
		 * learn 0 into m = s = 0 (they stay +0) and halve the baseline sketch when due */
		t->ring[(uint64_t)p % RING] = 0;
		if (t->base && p - t->base_halved_p >= (int64_t)ins->o.tau_periods) {
			sk_halve(t->base);
			t->base_halved_p = p;
		}
		t->cur = 0;
		return;
	}
	v = var1(t);
	sd = sqrt(v);
	hot = x >= 1 && (double)x > t->m + 2 * sd;

	t->ring[(uint64_t)p % RING] = x;
	if (hot && !r) {
		if (!(r = t->run = calloc(1, sizeof *r)))
			hot = 0; /* no memory: treated as an ordinary minute */
		else
			r->start_p = p;
	}
	if (r && hot && !r->open && p - r->start_p >= RUN_GAP) {
		/* a run older than the longest window that did not open: start it again here */
		if (!t->base)
			t->base = calloc(1, sizeof *t->base);
		if (t->base)
			sk_merge(t->base, &r->sk);
		sk_clear(&r->sk);
		memset(r, 0, sizeof *r);
		r->start_p = p;
	}
	if (r) {
		r->count += x;
		if (hot) {
			r->last_hot_p = p;
			r->count_hot = r->count;
		}
		if (t->c && hot) {
			sk_merge(&r->sk, &t->c->sk);
			for (unsigned i = 0; i < t->c->nev && r->nev < TW_ANOMALY_EVIDENCE; i++)
				memcpy(r->ev[r->nev++], t->c->ev[i], sizeof r->ev[0]);
		}
	}
	if (r && r->open) {
		uint64_t c5 = ring_sum(t, p, CLOSE_W);
		double e5 = CLOSE_W * t->m, z5 = ((double)c5 - e5) / sqrt(CLOSE_W * v + 1);
		double zz = ((double)x - t->m) / sqrt(v + 1);
		if (zz > r->peak_z)
			r->peak_z = zz;
		if (z5 < ins->o.z_close || (double)c5 < ins->o.min_count / 2.0 || p - r->start_p >= max_open) {
			int shift = p - r->start_p >= max_open && z5 >= ins->o.z_close;
			emit_finding(ins, k, tr, "end", r->last_hot_p + 1, r->count_hot, emit, ctx);
			ins->st.closed++;
			ins->st.open--;
			if (shift) { /* a new normal: the baseline takes the insight's level */
				double per = (double)r->count_hot / (double)(r->last_hot_p + 1 - r->start_p);
				t->s = t->s * (per / (t->m > 0 ? t->m : per));
				t->m = per;
			}
			sk_clear(&r->sk);
			free(r);
			t->run = NULL;
			t->floor_p = p + 1;
		}
		goto done; /* invariant 3 */
	}
	/* not open: may it open? */
	if (r && k->n >= ins->o.warmup_periods) {
		for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
			unsigned w = windows[i];
			uint64_t c = ring_sum(t, p, w);
			double e = w * t->m, z;
			if (c < ins->o.min_count || (double)c < ins->o.min_ratio * e)
				continue; /* (tested before z: most quiet minutes stop here without a sqrt) */
			z = ((double)c - e) / sqrt(w * v + 1);
			if (z >= ins->o.z_open) {
				if (r->start_p < p - RUN_GAP) /* a long quiet-ish run: the burst is the window */
					r->start_p = p - w + 1;
				r->open = 1;
				r->opened_p = p;
				r->base_m = t->m;
				r->peak_z = z;
				r->count = ring_sum(t, p, (unsigned)(p - r->start_p + 1 <= RING ? p - r->start_p + 1 : RING));
				r->count_hot = r->count;
				r->last_hot_p = p;
				emit_finding(ins, k, tr, "start", p + 1, r->count, emit, ctx);
				ins->st.opened++;
				ins->st.open++;
				goto done;
			}
		}
	}
	if (r && !hot && p - r->last_hot_p >= RUN_GAP) { /* the run is over: it was normal */
		if (!t->base)
			t->base = calloc(1, sizeof *t->base);
		if (t->base)
			sk_merge(t->base, &r->sk);
		sk_clear(&r->sk);
		free(r);
		t->run = NULL;
	}
	learn(ins, k, t, x);
	if (t->c && !hot) {
		if (!t->base)
			t->base = calloc(1, sizeof *t->base);
		if (t->base)
			sk_merge(t->base, &t->c->sk);
	}
	if (t->base && p - t->base_halved_p >= (int64_t)ins->o.tau_periods) {
		sk_halve(t->base);
		t->base_halved_p = p;
	}
done:
	if (t->c) {
		sk_clear(&t->c->sk);
		free(t->c);
		t->c = NULL;
	}
	t->cur = 0;
}

/* k periods without events for a track with no run: the closed form of k zero updates. */
static void zeros_fast(struct tw_insight *ins, struct key *k, struct track *t, int64_t nz)
{
	double a = 1.0 / (k->n + 1), q, qk;
	if (a < 1.0 / ins->o.tau_periods)
		a = 1.0 / ins->o.tau_periods;
	if (t->m == 0 && t->s == 0)
		return; /* stays 0 (the formula below gives +0 for any finite pow) */
	q = 1 - a;
	qk = pow(q, (double)nz);
	/* s_k = q^k s + a k m q^(k-1); m_k = q^k m (s uses the m before each step) */
	t->s = qk * t->s + a * (double)nz * t->m * pow(q, (double)(nz - 1));
	t->m = qk * t->m;
}

/* Closes every period of k before p. */
static void close_until(struct tw_insight *ins, struct key *k, int64_t p, tw_insight_emit_fn emit, void *ctx)
{
	if (k->cur_p != INT64_MIN && k->cur_p < p) {
		/* periods between last_p and cur_p were closed as zeros when cur_p began */
		for (int i = 0; i < NTRACK; i++)
			close_track(ins, k, i, k->cur_p, k->t[i].cur, emit, ctx);
		k->n = k->n + 1 > ins->o.tau_periods ? ins->o.tau_periods : k->n + 1;
		k->last_p = k->cur_p;
		k->cur_p = INT64_MIN;
	}
	/* zero periods last_p+1 .. p-1 */
	while (k->last_p < p - 1) {
		int busy = (k->t[0].run != NULL) || (k->t[1].run != NULL);
		if (!busy) {
			int64_t nz = p - 1 - k->last_p;
			for (int i = 0; i < NTRACK; i++) {
				zeros_fast(ins, k, &k->t[i], nz);
				memset(k->t[i].ring, 0, sizeof k->t[i].ring);
			}
			k->n = k->n + (double)nz > ins->o.tau_periods ? ins->o.tau_periods : k->n + (double)nz;
			k->last_p = p - 1;
			break;
		}
		k->last_p++;
		for (int i = 0; i < NTRACK; i++)
			close_track(ins, k, i, k->last_p, 0, emit, ctx);
		k->n = k->n + 1 > ins->o.tau_periods ? ins->o.tau_periods : k->n + 1;
	}
}

/* What count_in needs of an event beyond the observation, computed once for both its keys. */
struct obx {
	struct tw_str fam;      /* user-agent family */
	uint64_t h_principal;   /* sk_hash of the principal */
	uint64_t h_fam;         /* ... of fam */
	uint64_t h_error;       /* ... of the error code */
};

/* h: key_hash(account, region, event_source, name). */
static enum tw_rc count_in(struct tw_insight *ins, struct tw_str name, uint64_t h, const struct tw_insight_obs *ob,
			   const struct obx *x, int64_t p, tw_insight_emit_fn emit, void *ctx, struct tw_err *err)
{
	struct key *k;
	int ntr = ins->o.errors && ob->error_code.n ? 2 : 1;

	for (k = ins->tab[tw_dh_mix(h) & (ins->nbuckets - 1)]; k; k = k->hnext)
		if (k->h == h && seq(k->acct, k->lacct, ob->account) && seq(k->region, k->lregion, ob->region) &&
		    seq(k->src, k->lsrc, ob->event_source) && seq(k->name, k->lname, name))
			break;
	if (!k) {
		if (ins->nkeys >= ins->o.max_keys)
			evict(ins);
		if (ins->nkeys >= ins->nbuckets && grow(ins, err))
			return err->rc;
		if (!(k = key_make(ins, h, ob->account, ob->region, ob->event_source, name, p, err)))
			return err->rc;
		key_insert(ins, k);
	} else if (ins->head != k) {
		lru_unlink(ins, k);
		lru_front(ins, k);
	}
	if (k->cur_p == INT64_MIN || p > k->cur_p) {
		close_until(ins, k, p, emit, ctx);
		k->cur_p = p;
	}
	for (int i = 0; i < ntr; i++) {
		struct track *t = &k->t[i];
		t->cur++;
		if (!t->c && !(t->c = calloc(1, sizeof *t->c)))
			continue;
		sk_put(&t->c->sk, TW_ANOMALY_C_PRINCIPAL, ob->principal, x->h_principal, 1, NULL);
		sk_put(&t->c->sk, TW_ANOMALY_C_USER_AGENT, x->fam, x->h_fam, 1, NULL);
		sk_put(&t->c->sk, TW_ANOMALY_C_ERROR_CODE, ob->error_code, x->h_error, 1, NULL);
		if (t->c->nev < TW_ANOMALY_EVIDENCE && ob->event_id.n)
			tw_anomaly_strcpy(t->c->ev[t->c->nev++], 64, ob->event_id.p, ob->event_id.n);
	}
	return TW_OK;
}

enum tw_rc tw_insight_observe(struct tw_insight *ins, const struct tw_insight_obs *ob, tw_insight_emit_fn emit,
			      void *ctx, struct tw_err *err)
{
	int64_t p = floor_div(ob->t_ms, ins->o.period_ms);
	struct obx x;
	uint64_t h3;
	enum tw_rc rc;

	if (ins->closed != INT64_MIN && ob->t_ms < ins->closed) {
		ins->st.late++;
		return TW_OK;
	}
	ins->st.events++;
	if (ins->first_p == INT64_MIN || p < ins->first_p)
		ins->first_p = p;
	x.fam = tw_anomaly_ua_family(ob->user_agent);
	x.h_principal = sk_hash(ob->principal);
	x.h_fam = sk_hash(x.fam);
	x.h_error = sk_hash(ob->error_code);
	/* key_hash of both keys: the account, region and source part once */
	h3 = tw_dh_bytes(tw_dh_bytes(tw_dh_bytes(TW_DH_SEED, ob->account.p, ob->account.n), ob->region.p, ob->region.n),
			 ob->event_source.p, ob->event_source.n);
	if ((rc = count_in(ins, ob->event_name, tw_dh_bytes(h3, ob->event_name.p, ob->event_name.n), ob, &x, p, emit, ctx,
			   err)))
		return rc;
	if (ins->o.per_source)
		return count_in(ins, TW_STR_LIT("*"), tw_dh_bytes(h3, "*", 1), ob, &x, p, emit, ctx, err);
	return TW_OK;
}

enum tw_rc tw_insight_advance(struct tw_insight *ins, int64_t closed_until, tw_insight_emit_fn emit, void *ctx,
			      struct tw_err *err)
{
	int64_t p = floor_div(closed_until, ins->o.period_ms);
	(void)err;
	if (ins->closed != INT64_MIN && closed_until <= ins->closed)
		return TW_OK;
	for (struct key *k = ins->head; k; k = k->next)
		if ((k->cur_p != INT64_MIN && k->cur_p < p) || k->t[0].run || k->t[1].run)
			close_until(ins, k, p, emit, ctx);
	ins->closed = closed_until;
	return TW_OK;
}

int64_t tw_insight_closed(const struct tw_insight *ins)
{
	return ins->closed;
}

void tw_insight_get_stats(const struct tw_insight *ins, struct tw_insight_stats *st)
{
	*st = ins->st;
	st->keys = ins->nkeys;
}

enum tw_rc tw_insight_new(const struct tw_insight_opts *opts, struct tw_insight **out, struct tw_err *err)
{
	struct tw_insight *ins = calloc(1, sizeof *ins);

	if (!ins)
		return tw_err_set(err, TW_ENOMEM, "insight: out of memory");
	if (opts)
		ins->o = *opts;
	else
		tw_insight_opts_default(&ins->o);
	if (ins->o.period_ms <= 0 || ins->o.tau_periods < 1 || ins->o.max_keys < 1 || ins->o.min_ratio < 0) {
		free(ins);
		return tw_err_set(err, TW_EINVAL, "insight: bad options (period, tau, max_keys must be positive)");
	}
	ins->nbuckets = 1024;
	if (!(ins->tab = calloc(ins->nbuckets, sizeof *ins->tab))) {
		free(ins);
		return tw_err_set(err, TW_ENOMEM, "insight: out of memory");
	}
	ins->first_p = INT64_MIN;
	ins->closed = INT64_MIN;
	*out = ins;
	return TW_OK;
}

static void clear_all(struct tw_insight *ins)
{
	while (ins->head)
		key_remove(ins, ins->head);
	ins->st.open = 0;
}

void tw_insight_free(struct tw_insight *ins)
{
	if (!ins)
		return;
	clear_all(ins);
	free(ins->tab);
	free(ins);
}

/* ---- state ----------------------------------------------------------------------------------- */
/* Layout (after magic "TWINSIG1" and version 1), native byte order:
 *   i64 first_p, i64 closed, u64 stats.opened, u64 stats.closed, u64 nkeys,
 *   nkeys x key, least recently used first:
 *     str acct, str region, str src, str name, i64 cur_p, i64 last_p, f64 n,
 *     2 x track: f64 m, f64 s, 16 x u32 ring, u32 cur, i64 base_halved_p, i64 floor_p,
 *                u32 flags (1 cur, 2 base, 4 run), [sk3 cur + u32 nev + nev x str],
 *                [sk3 base], [run: i64 start_p, last_hot_p, opened_p, u64 count, count_hot,
 *                u32 open, f64 base_m, f64 peak_z, sk3, u32 nev, nev x str]
 *   sk3: 3 kinds x u32 n, n x (u64 count, str value)
 *   u32 CRC-32 of everything before. */

static void save_sk(struct tw_buf *b, const struct sk3 *sk, struct tw_err *err)
{
	for (int k = 0; k < TW_ANOMALY_C__COUNT; k++) {
		uint32_t n = 0;
		for (int i = 0; i < SK_SLOTS; i++)
			n += sk->k[k][i].s != NULL;
		tw_dw_u32(b, n, err);
		for (int i = 0; i < SK_SLOTS; i++)
			if (sk->k[k][i].s) {
				tw_dw_u64(b, sk->k[k][i].n, err);
				tw_dw_str(b, sk->k[k][i].s, err);
			}
	}
}

static void load_sk(struct tw_dr *r, struct sk3 *sk)
{
	for (int k = 0; k < TW_ANOMALY_C__COUNT; k++) {
		uint32_t n = tw_dr_u32(r);
		if (n > SK_SLOTS) {
			r->bad = 1;
			return;
		}
		for (uint32_t i = 0; i < n && !r->bad; i++) {
			sk->k[k][i].n = tw_dr_u64(r);
			sk->k[k][i].s = tw_dr_str(r, 1 << 16);
			if (sk->k[k][i].s) {
				sk->k[k][i].len = (uint32_t)strlen(sk->k[k][i].s);
				sk->k[k][i].h = tw_dh_bytes(TW_DH_SEED, sk->k[k][i].s, sk->k[k][i].len);
			}
		}
	}
}

static void save_ev(struct tw_buf *b, char (*ev)[64], unsigned nev, struct tw_err *err)
{
	tw_dw_u32(b, nev, err);
	for (unsigned i = 0; i < nev; i++)
		tw_dw_str(b, ev[i], err);
}

static void load_ev(struct tw_dr *r, char (*ev)[64], unsigned *nev)
{
	uint32_t n = tw_dr_u32(r);
	if (n > TW_ANOMALY_EVIDENCE) {
		r->bad = 1;
		return;
	}
	for (*nev = 0; *nev < n && !r->bad; (*nev)++) {
		char *s = tw_dr_str(r, 63);
		if (s)
			snprintf(ev[*nev], 64, "%s", s);
		free(s);
	}
}

enum tw_rc tw_insight_save(const struct tw_insight *ins, struct tw_buf *b, struct tw_err *err)
{
	size_t start = b->n;
	struct tw_err e;

	tw_err_clear(&e);
	tw_dw_begin(b, STATE_MAGIC, STATE_VERSION, &e);
	tw_dw_i64(b, ins->first_p, &e);
	tw_dw_i64(b, ins->closed, &e);
	tw_dw_u64(b, ins->st.opened, &e);
	tw_dw_u64(b, ins->st.closed, &e);
	tw_dw_u64(b, ins->nkeys, &e);
	for (const struct key *k = ins->tail; k && !e.rc; k = k->prev) {
		tw_dw_str(b, k->acct, &e);
		tw_dw_str(b, k->region, &e);
		tw_dw_str(b, k->src, &e);
		tw_dw_str(b, k->name, &e);
		tw_dw_i64(b, k->cur_p, &e);
		tw_dw_i64(b, k->last_p, &e);
		tw_dw_f64(b, k->n, &e);
		for (int i = 0; i < NTRACK; i++) {
			const struct track *t = &k->t[i];
			tw_dw_f64(b, t->m, &e);
			tw_dw_f64(b, t->s, &e);
			tw_dw(b, t->ring, sizeof t->ring, &e);
			tw_dw_u32(b, t->cur, &e);
			tw_dw_i64(b, t->base_halved_p, &e);
			tw_dw_i64(b, t->floor_p, &e);
			tw_dw_u32(b, (t->c ? 1u : 0u) | (t->base ? 2u : 0u) | (t->run ? 4u : 0u), &e);
			if (t->c) {
				save_sk(b, &t->c->sk, &e);
				save_ev(b, t->c->ev, t->c->nev, &e);
			}
			if (t->base)
				save_sk(b, t->base, &e);
			if (t->run) {
				const struct run *r = t->run;
				tw_dw_i64(b, r->start_p, &e);
				tw_dw_i64(b, r->last_hot_p, &e);
				tw_dw_i64(b, r->opened_p, &e);
				tw_dw_u64(b, r->count, &e);
				tw_dw_u64(b, r->count_hot, &e);
				tw_dw_u32(b, (uint32_t)r->open, &e);
				tw_dw_f64(b, r->base_m, &e);
				tw_dw_f64(b, r->peak_z, &e);
				save_sk(b, &r->sk, &e);
				save_ev(b, (char(*)[64])r->ev, r->nev, &e);
			}
		}
	}
	tw_dw_end(b, start, &e);
	if (e.rc) {
		b->n = start;
		*err = e;
		return e.rc;
	}
	return TW_OK;
}

/* A period number a state may hold: |p| <= 2^53 (ms since the epoch over any period fits), so that
 * differences of periods never overflow. */
static int period_ok(int64_t p)
{
	return p >= -(INT64_C(1) << 53) && p <= INT64_C(1) << 53;
}

/* Invariants of a saved key the closing code relies on: periods in range, the open period after
 * the last closed one, and a run that started and was last hot in closed periods (a run "hot" in
 * the future would make tw_insight_advance step period by period up to the present, however far,
 * instead of skipping the idle periods at once). */
static int key_loaded_ok(const struct key *k)
{
	if (!period_ok(k->last_p) || (k->cur_p != INT64_MIN && (!period_ok(k->cur_p) || k->cur_p <= k->last_p)))
		return 0;
	for (int j = 0; j < NTRACK; j++) {
		const struct track *t = &k->t[j];
		const struct run *ru = t->run;
		if (!period_ok(t->base_halved_p) || (t->floor_p != INT64_MIN && !period_ok(t->floor_p)))
			return 0;
		if (ru && (!period_ok(ru->start_p) || !period_ok(ru->opened_p) || !period_ok(ru->last_hot_p) ||
			   ru->start_p > ru->last_hot_p || ru->last_hot_p > k->last_p))
			return 0;
	}
	return 1;
}

enum tw_rc tw_insight_load(struct tw_insight *ins, const void *p, size_t n, struct tw_err *err)
{
	struct tw_dr r = { 0 };
	uint64_t nkeys;
	enum tw_rc rc;

	clear_all(ins);
	memset(&ins->st, 0, sizeof ins->st);
	if ((rc = tw_dr_begin(&r, p, n, STATE_MAGIC, STATE_VERSION, "insight state", err)))
		return rc;
	ins->first_p = tw_dr_i64(&r);
	ins->closed = tw_dr_i64(&r);
	if (ins->first_p != INT64_MIN && !period_ok(ins->first_p))
		r.bad = 1;
	ins->st.opened = tw_dr_u64(&r);
	ins->st.closed = tw_dr_u64(&r);
	nkeys = tw_dr_u64(&r);
	for (uint64_t i = 0; i < nkeys && !r.bad; i++) {
		char *a = tw_dr_str(&r, 1 << 16), *rg = tw_dr_str(&r, 1 << 16), *s = tw_dr_str(&r, 1 << 16),
		     *nm = tw_dr_str(&r, 1 << 16);
		struct key *k = NULL;
		if (!r.bad) {
			struct tw_str A = { a, strlen(a) }, R = { rg, strlen(rg) }, S = { s, strlen(s) }, N = { nm, strlen(nm) };
			k = key_make(ins, key_hash(A, R, S, N), A, R, S, N, 0, err);
		}
		free(a), free(rg), free(s), free(nm);
		if (!k) {
			r.bad = 1;
			break;
		}
		k->cur_p = tw_dr_i64(&r);
		k->last_p = tw_dr_i64(&r);
		k->n = tw_dr_f64(&r);
		for (int j = 0; j < NTRACK; j++) {
			struct track *t = &k->t[j];
			uint32_t fl;
			t->m = tw_dr_f64(&r);
			t->s = tw_dr_f64(&r);
			tw_dr_get(&r, t->ring, sizeof t->ring);
			t->cur = tw_dr_u32(&r);
			t->base_halved_p = tw_dr_i64(&r);
			t->floor_p = tw_dr_i64(&r);
			fl = tw_dr_u32(&r);
			if ((fl & 1) && (t->c = calloc(1, sizeof *t->c))) {
				load_sk(&r, &t->c->sk);
				load_ev(&r, t->c->ev, &t->c->nev);
			} else if (fl & 1)
				r.bad = 1;
			if ((fl & 2) && (t->base = calloc(1, sizeof *t->base)))
				load_sk(&r, t->base);
			else if (fl & 2)
				r.bad = 1;
			if ((fl & 4) && (t->run = calloc(1, sizeof *t->run))) {
				struct run *ru = t->run;
				ru->start_p = tw_dr_i64(&r);
				ru->last_hot_p = tw_dr_i64(&r);
				ru->opened_p = tw_dr_i64(&r);
				ru->count = tw_dr_u64(&r);
				ru->count_hot = tw_dr_u64(&r);
				ru->open = (int)tw_dr_u32(&r);
				ru->base_m = tw_dr_f64(&r);
				ru->peak_z = tw_dr_f64(&r);
				load_sk(&r, &ru->sk);
				load_ev(&r, ru->ev, &ru->nev);
				if (ru->open)
					ins->st.open++;
			} else if (fl & 4)
				r.bad = 1;
		}
		if (!key_loaded_ok(k) || (ins->nkeys >= ins->nbuckets && grow(ins, err))) {
			key_free(k);
			r.bad = 1;
			break;
		}
		key_insert(ins, k); /* saved least recent first: each goes to the front */
	}
	if (r.bad || r.p != r.end) {
		clear_all(ins);
		ins->first_p = ins->closed = INT64_MIN;
		if (err->rc == TW_ENOMEM)
			return TW_ENOMEM;
		return tw_err_set(err, TW_ECORRUPT, "insight state: truncated or malformed");
	}
	return TW_OK;
}
