/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/firstseen.c: the first-seen detectors (the model is described in firstseen.h).
 *
 * Invariants:
 *  1. A value is reported at most once per principal: it enters the set when first seen (learning
 *     or not), and only values not in the set are reported.
 *  2. A full set neither learns nor reports (saturated).
 *  3. A principal is in the hash table and the LRU list together; an evicted principal's open
 *     groups are emitted first (nothing reported is lost).
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/detect_int.h"
#include "alerts/firstseen.h"
#include "core/time.h"

#define STATE_MAGIC "TWFSEEN1"
#define STATE_VERSION 1u

static const char *const detectors[TW_FS__COUNT] = { "first_seen_api", "first_seen_region", "first_seen_ip",
						     "first_seen_user_agent", "console_login_new_ip" };

/* The values seen of one kind: sorted fingerprints. */
struct vset {
	uint32_t *v;   /* sorted */
	uint8_t *c;    /* times each value was seen (saturates at 255) */
	uint32_t n;    /* used */
	uint32_t cap;  /* allocated */
	uint32_t full; /* 1 once n reached max_values */
	uint32_t n1;   /* values seen exactly once (Good-Turing) */
	uint64_t nobs; /* events that had a value of this kind */
};

/* An open group: the finding being built, and the set size before it. */
struct group {
	struct tw_anomaly a; /* the finding */
	uint32_t known;      /* values of the kind known before the group */
	double expect;       /* new values expected in the group's events (sum of Good-Turing p_new) */
	uint64_t nobs;       /* events of the kind known before the group */
	uint32_t n1;         /* values seen once, before the group */
};

struct prin {
	uint64_t h;               /* hash of s */
	struct prin *hnext;       /* hash chain */
	struct prin *prev, *next; /* LRU: head = most recently seen */
	char *s;                  /* the principal (normalised) */
	int64_t first_ms;         /* first event */
	struct vset set[TW_FS__COUNT];  /* values seen */
	struct group *g[TW_FS__COUNT];  /* open groups, NULL when none */
};

struct tw_firstseen {
	struct tw_firstseen_opts o;   /* options */
	struct prin **tab;            /* buckets */
	size_t nbuckets;              /* power of two */
	size_t n;                     /* principals */
	struct prin *head, *tail;     /* LRU */
	int64_t start_ms;             /* first event ever (INT64_MIN: none) */
	size_t ngroups;               /* open groups */
	struct tw_firstseen_stats st; /* counters */
};

void tw_firstseen_opts_default(struct tw_firstseen_opts *o)
{
	o->learn_ms = 12 * 3600 * 1000LL;
	o->group_ms = 10 * 60 * 1000LL;
	o->max_principals = 20000;
	o->max_values = 256;
	o->alpha = 1e-3;
}

const char *tw_firstseen_detector(enum tw_fs_kind k)
{
	return (unsigned)k < TW_FS__COUNT ? detectors[k] : "?";
}

struct tw_str tw_firstseen_principal_key(struct tw_str p)
{
	static const char ar[] = ":assumed-role/";
	const char *m = p.n ? memmem(p.p, p.n, ar, sizeof ar - 1) : NULL;
	const char *role, *slash, *end = p.p + p.n;

	if (!m)
		return p;
	role = m + sizeof ar - 1;
	slash = memchr(role, '/', (size_t)(end - role));
	if (!slash)
		return p;
	if ((size_t)(slash - role) >= 15 && !memcmp(role, "AWSReservedSSO_", 15))
		return p; /* the session is the person */
	return (struct tw_str){ p.p, (size_t)(slash - p.p) };
}

int tw_firstseen_ip_prefix(struct tw_str ip, char *out)
{
	char buf[64];
	unsigned char a[16];

	if (!ip.n || ip.n >= sizeof buf)
		return -1;
	memcpy(buf, ip.p, ip.n);
	buf[ip.n] = 0;
	if (inet_pton(AF_INET, buf, a) == 1) { /* "%u.%u.%u.0/24", without printf */
		char *o = out;
		for (int i = 0; i < 3; i++) {
			if (a[i] >= 100)
				*o++ = (char)('0' + a[i] / 100);
			if (a[i] >= 10)
				*o++ = (char)('0' + a[i] / 10 % 10);
			*o++ = (char)('0' + a[i] % 10);
			*o++ = '.';
		}
		memcpy(o, "0/24", 5);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, a) == 1) {
		memset(a + 6, 0, 10);
		if (!inet_ntop(AF_INET6, a, buf, sizeof buf))
			return -1;
		snprintf(out, 64, "%.56s/48", buf);
		return 0;
	}
	return -1;
}

static int is_ip(struct tw_str ip)
{
	char buf[64];
	unsigned char a[16];
	if (!ip.n || ip.n >= sizeof buf)
		return 0;
	memcpy(buf, ip.p, ip.n);
	buf[ip.n] = 0;
	return inet_pton(AF_INET, buf, a) == 1 || inet_pton(AF_INET6, buf, a) == 1;
}

/* ---- sets ------------------------------------------------------------------------------------ */

static int vset_find(const struct vset *s, uint32_t v, uint32_t *pos)
{
	uint32_t lo = 0, hi = s->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->v[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return lo < s->n && s->v[lo] == v;
}

/* 1 inserted, 0 full, -1 no memory */
static int vset_insert(struct vset *s, uint32_t v, uint32_t pos, unsigned max)
{
	if (s->n >= max) {
		s->full = 1;
		return 0;
	}
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 4;
		uint32_t *nv;
		uint8_t *nc;
		if (cap > max)
			cap = max;
		if (!(nv = realloc(s->v, cap * sizeof *nv)))
			return -1;
		s->v = nv;
		if (!(nc = realloc(s->c, cap)))
			return -1;
		s->c = nc;
		s->cap = cap;
	}
	memmove(s->v + pos + 1, s->v + pos, (s->n - pos) * sizeof *s->v);
	memmove(s->c + pos + 1, s->c + pos, s->n - pos);
	s->v[pos] = v;
	s->c[pos] = 1;
	s->n1++;
	if (++s->n >= max)
		s->full = 1;
	return 1;
}

/* ---- principals ------------------------------------------------------------------------------ */

static void lru_unlink(struct tw_firstseen *fs, struct prin *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		fs->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		fs->tail = p->prev;
	p->prev = p->next = NULL;
}

static void lru_front(struct tw_firstseen *fs, struct prin *p)
{
	p->next = fs->head;
	p->prev = NULL;
	if (fs->head)
		fs->head->prev = p;
	fs->head = p;
	if (!fs->tail)
		fs->tail = p;
}

static void hhmm(int64_t ms, char *out, size_t cap)
{
	char t[TW_TIME_BUFSZ];
	tw_time_format(ms, t);
	snprintf(out, cap, "%.10s %.5s", t, t + 11);
}

double tw_firstseen_poisson_tail(unsigned k, double lambda)
{
	double lt, sum = 0;

	if (k == 0)
		return 1;
	if (lambda <= 0)
		return 0;
	if (lambda >= k) { /* 1 - P(X < k) */
		double t = exp(-lambda), acc = 0;
		for (unsigned i = 0; i < k; i++) {
			acc += t;
			t *= lambda / (i + 1);
		}
		return acc >= 1 ? 0 : 1 - acc;
	}
	lt = -lambda + k * log(lambda) - lgamma((double)k + 1);
	for (unsigned i = k; i < k + 400; i++) {
		double t = exp(lt);
		sum += t;
		if (t < sum * 1e-12)
			break;
		lt += log(lambda) - log((double)i + 1);
	}
	return sum > 1 ? 1 : sum;
}

static void emit_group(struct tw_firstseen *fs, struct prin *p, int k, tw_firstseen_emit_fn emit, void *ctx)
{
	static const char *const what[TW_FS__COUNT] = { "used the API", "made calls in the region",
							"called from the address range", "used a client of the family",
							"signed in to the console from" };
	static const char *const unit[TW_FS__COUNT] = { "APIs", "regions", "address ranges", "client families",
							"addresses" };
	struct group *g = p->g[k];
	struct tw_anomaly *a = &g->a;
	char at[40], since[40], more[240] = "", exp_s[32];
	double pv = tw_firstseen_poisson_tail(a->nvalues, g->expect);

	if (k != TW_FS_LOGIN_IP && pv >= fs->o.alpha) { /* as many new values as its history predicts */
		fs->st.suppressed++;
		free(g);
		p->g[k] = NULL;
		fs->ngroups--;
		return;
	}
	a->baseline = g->expect;
	a->observed = a->nvalues;
	a->score = pv > 0 ? -log10(pv) : 300;
	tw_anomaly_fmt_rate(g->expect, exp_s);

	hhmm(a->start_ms, at, sizeof at);
	hhmm(p->first_ms, since, sizeof since);
	if (a->nvalues > 1) {
		size_t o = (size_t)snprintf(more, sizeof more, "; %u new %s within %lld min:", a->nvalues, unit[k],
					    (long long)(fs->o.group_ms / 60000));
		for (unsigned i = 1; i < a->nvalues && i < TW_ANOMALY_VALUES && o < sizeof more; i++)
			o += (size_t)snprintf(more + o, sizeof more - o, "%s %.40s", i > 1 ? "," : "", a->values[i]);
		if (a->nvalues > TW_ANOMALY_VALUES && o < sizeof more)
			snprintf(more + o, sizeof more - o, " and %u more", a->nvalues - TW_ANOMALY_VALUES);
	}
	if (g->known && k == TW_FS_LOGIN_IP)
		snprintf(a->summary, sizeof a->summary,
			 "%.256s %s %.200s for the first time at %s (expected one of the %u %s it signed in from since %s)%s",
			 a->principal, what[k], a->value, at, g->known, unit[k], since, more);
	else if (g->known)
		snprintf(a->summary, sizeof a->summary,
			 "%.256s %s %.200s for the first time at %s (expected one of the %u %s it used since %s: %s new "
			 "expected from its history of %llu events, %u new seen)%s",
			 a->principal, what[k], a->value, at, g->known, unit[k], since, exp_s, (unsigned long long)g->nobs,
			 a->nvalues, more);
	else
		snprintf(a->summary, sizeof a->summary, "%.256s %s %.200s at %s, with no %s seen for it before%s",
			 a->principal, what[k], a->value, at,
			 k == TW_FS_LOGIN_IP ? "console sign-in" : k == TW_FS_API ? "API call" : unit[k], more);
	tw_anomaly_set_id(a);
	fs->st.findings++;
	if (emit)
		emit(ctx, a);
	free(g);
	p->g[k] = NULL;
	fs->ngroups--;
}

static void prin_free(struct prin *p)
{
	for (int k = 0; k < TW_FS__COUNT; k++) {
		free(p->set[k].v);
		free(p->set[k].c);
		free(p->g[k]);
	}
	free(p->s);
	free(p);
}

static void prin_remove(struct tw_firstseen *fs, struct prin *p, tw_firstseen_emit_fn emit, void *ctx)
{
	struct prin **pp = &fs->tab[tw_dh_mix(p->h) & (fs->nbuckets - 1)];
	for (int k = 0; k < TW_FS__COUNT; k++)
		if (p->g[k]) {
			if (emit)
				emit_group(fs, p, k, emit, ctx);
			else {
				free(p->g[k]);
				p->g[k] = NULL;
				fs->ngroups--;
			}
		}
	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	lru_unlink(fs, p);
	prin_free(p);
	fs->n--;
}

static enum tw_rc grow(struct tw_firstseen *fs, struct tw_err *err)
{
	size_t nb = fs->nbuckets * 2;
	struct prin **t = calloc(nb, sizeof *t);
	if (!t)
		return tw_err_set(err, TW_ENOMEM, "first-seen: out of memory");
	for (size_t i = 0; i < fs->nbuckets; i++)
		for (struct prin *p = fs->tab[i], *nx; p; p = nx) {
			nx = p->hnext;
			p->hnext = t[tw_dh_mix(p->h) & (nb - 1)];
			t[tw_dh_mix(p->h) & (nb - 1)] = p;
		}
	free(fs->tab);
	fs->tab = t;
	fs->nbuckets = nb;
	return TW_OK;
}

static struct prin *prin_find(const struct tw_firstseen *fs, struct tw_str key, uint64_t h)
{
	for (struct prin *p = fs->tab[tw_dh_mix(h) & (fs->nbuckets - 1)]; p; p = p->hnext)
		if (p->h == h && strlen(p->s) == key.n && !memcmp(p->s, key.p, key.n))
			return p;
	return NULL;
}

static struct prin *prin_add(struct tw_firstseen *fs, struct tw_str key, uint64_t h, int64_t t,
			     tw_firstseen_emit_fn emit, void *ctx, struct tw_err *err)
{
	struct prin *p;
	size_t b;

	if (fs->n >= fs->o.max_principals && fs->tail) {
		prin_remove(fs, fs->tail, emit, ctx);
		fs->st.evicted++;
	}
	if (fs->n >= fs->nbuckets && grow(fs, err))
		return NULL;
	if (!(p = calloc(1, sizeof *p)) || !(p->s = malloc(key.n + 1))) {
		free(p);
		tw_err_set(err, TW_ENOMEM, "first-seen: out of memory");
		return NULL;
	}
	memcpy(p->s, key.p, key.n);
	p->s[key.n] = 0;
	p->h = h;
	p->first_ms = t;
	b = tw_dh_mix(h) & (fs->nbuckets - 1);
	p->hnext = fs->tab[b];
	fs->tab[b] = p;
	lru_front(fs, p);
	fs->n++;
	return p;
}

/* ---- observe --------------------------------------------------------------------------------- */

static void put(char *dst, size_t cap, struct tw_str s)
{
	tw_anomaly_strcpy(dst, cap, s.p, s.n);
}

static enum tw_rc report(struct tw_firstseen *fs, struct prin *p, int k, const char *value,
			 const struct tw_firstseen_obs *ob, uint32_t known, struct tw_err *err)
{
	struct group *g = p->g[k];
	struct tw_anomaly *a;

	if (!g) {
		if (!(g = p->g[k] = calloc(1, sizeof *g)))
			return tw_err_set(err, TW_ENOMEM, "first-seen: out of memory");
		fs->ngroups++;
		g->known = known;
		a = &g->a;
		snprintf(a->detector, sizeof a->detector, "%s", detectors[k]);
		snprintf(a->phase, sizeof a->phase, "event");
		a->start_ms = ob->t_ms;
		put(a->account, sizeof a->account, ob->account);
		put(a->region, sizeof a->region, ob->region);
		put(a->event_source, sizeof a->event_source, ob->event_source);
		put(a->event_name, sizeof a->event_name, ob->event_name);
		tw_anomaly_strcpy(a->principal, sizeof a->principal, p->s, strlen(p->s));
		tw_anomaly_strcpy(a->value, sizeof a->value, value, strlen(value));
	}
	a = &g->a;
	a->end_ms = ob->t_ms;
	a->observed_count++;
	if (a->nvalues < TW_ANOMALY_VALUES)
		tw_anomaly_strcpy(a->values[a->nvalues], sizeof a->values[0], value, strlen(value));
	a->nvalues++;
	if (a->nevidence < TW_ANOMALY_EVIDENCE && ob->event_id.n)
		put(a->evidence[a->nevidence++], sizeof a->evidence[0], ob->event_id);
	fs->st.reported++;
	return TW_OK;
}

enum tw_rc tw_firstseen_observe(struct tw_firstseen *fs, const struct tw_firstseen_obs *ob, tw_firstseen_emit_fn emit,
				void *ctx, struct tw_err *err)
{
	struct tw_str key = tw_firstseen_principal_key(ob->principal);
	uint64_t h;
	struct prin *p;
	char vals[TW_FS__COUNT][TW_ANOMALY_STR];
	int have[TW_FS__COUNT] = { 0 };
	int reporting, login_expected = 0;

	if (!key.n)
		return TW_OK;
	fs->st.events++;
	if (fs->start_ms == INT64_MIN)
		fs->start_ms = ob->t_ms;
	reporting = ob->t_ms - fs->start_ms >= fs->o.learn_ms;
	h = tw_dh_bytes(TW_DH_SEED, key.p, key.n);
	if (!(p = prin_find(fs, key, h))) {
		if (!(p = prin_add(fs, key, h, ob->t_ms, emit, ctx, err)))
			return err->rc;
	} else if (fs->head != p) {
		lru_unlink(fs, p);
		lru_front(fs, p);
	}
	/* the values of this event */
	if (ob->event_name.n) {
		/* "%.*s:%.*s" with 120 bytes of each at most (and, as %.*s, up to a NUL), without printf */
		size_t a = ob->event_source.p ? strnlen(ob->event_source.p, ob->event_source.n > 120 ? 120 : ob->event_source.n) : 0;
		size_t b = strnlen(ob->event_name.p, ob->event_name.n > 120 ? 120 : ob->event_name.n);
		memcpy(vals[TW_FS_API], ob->event_source.p ? ob->event_source.p : "", a);
		vals[TW_FS_API][a] = ':';
		memcpy(vals[TW_FS_API] + a + 1, ob->event_name.p, b);
		vals[TW_FS_API][a + 1 + b] = 0;
		have[TW_FS_API] = 1;
	}
	if (ob->region.n) {
		put(vals[TW_FS_REGION], sizeof vals[0], ob->region);
		have[TW_FS_REGION] = 1;
	}
	have[TW_FS_IP] = tw_firstseen_ip_prefix(ob->source_ip, vals[TW_FS_IP]) == 0;
	{
		struct tw_str fam = tw_anomaly_ua_family(ob->user_agent);
		if (fam.n) {
			put(vals[TW_FS_UA], sizeof vals[0], fam);
			have[TW_FS_UA] = 1;
		}
	}
	if (tw_str_eq(ob->event_name, "ConsoleLogin") && is_ip(ob->source_ip)) {
		put(vals[TW_FS_LOGIN_IP], sizeof vals[0], ob->source_ip);
		have[TW_FS_LOGIN_IP] = 1;
	}
	if (have[TW_FS_LOGIN_IP] && have[TW_FS_IP]) {
		/* a sign-in from a range the principal calls APIs from is not news */
		uint32_t fp = (uint32_t)tw_dh_mix(tw_dh_bytes(TW_DH_SEED, vals[TW_FS_IP], strlen(vals[TW_FS_IP]))), pos;
		if (vset_find(&p->set[TW_FS_IP], fp, &pos))
			login_expected = 1;
	}
	for (int k = 0; k < TW_FS__COUNT; k++) {
		struct vset *vs = &p->set[k];
		uint32_t fp, pos;
		int ins;
		/* Good-Turing: the chance that this event shows a value never seen before */
		double pnew = (double)(vs->n1 + 1) / (double)(vs->nobs + 1);
		if (p->g[k] && ob->t_ms >= p->g[k]->a.start_ms + fs->o.group_ms)
			emit_group(fs, p, k, emit, ctx);
		if (!have[k])
			continue;
		if (pnew > 1)
			pnew = 1;
		if (p->g[k])
			p->g[k]->expect += pnew;
		fp = (uint32_t)tw_dh_mix(tw_dh_bytes(TW_DH_SEED, vals[k], strlen(vals[k])));
		if (vset_find(vs, fp, &pos)) {
			if (vs->c[pos] == 1)
				vs->n1--;
			if (vs->c[pos] < 255)
				vs->c[pos]++;
			vs->nobs++;
			continue;
		}
		if (vs->full) {
			fs->st.saturated++;
			continue;
		}
		if (k == TW_FS_LOGIN_IP && login_expected) {
			fs->st.suppressed++;
		} else if (reporting && !p->g[k]) {
			if (report(fs, p, k, vals[k], ob, vs->n, err))
				return err->rc;
			p->g[k]->expect = pnew;
			p->g[k]->nobs = vs->nobs;
			p->g[k]->n1 = vs->n1;
		} else if (reporting && report(fs, p, k, vals[k], ob, p->g[k]->known, err))
			return err->rc;
		vs->nobs++;
		if ((ins = vset_insert(vs, fp, pos, fs->o.max_values)) < 0)
			return tw_err_set(err, TW_ENOMEM, "first-seen: out of memory");
		if (!ins)
			fs->st.saturated++;
	}
	return TW_OK;
}

void tw_firstseen_advance(struct tw_firstseen *fs, int64_t closed_until, int flush_all, tw_firstseen_emit_fn emit,
			  void *ctx)
{
	if (!fs->ngroups)
		return;
	for (struct prin *p = fs->head; p && fs->ngroups; p = p->next)
		for (int k = 0; k < TW_FS__COUNT; k++)
			if (p->g[k] && (flush_all || p->g[k]->a.start_ms + fs->o.group_ms <= closed_until))
				emit_group(fs, p, k, emit, ctx);
}

void tw_firstseen_get_stats(const struct tw_firstseen *fs, struct tw_firstseen_stats *st)
{
	*st = fs->st;
	st->principals = fs->n;
}

long tw_firstseen_count(const struct tw_firstseen *fs, struct tw_str principal, enum tw_fs_kind k)
{
	struct tw_str key = tw_firstseen_principal_key(principal);
	struct prin *p = prin_find(fs, key, tw_dh_bytes(TW_DH_SEED, key.p, key.n));
	return p && (unsigned)k < TW_FS__COUNT ? (long)p->set[k].n : -1;
}

enum tw_rc tw_firstseen_new(const struct tw_firstseen_opts *opts, struct tw_firstseen **out, struct tw_err *err)
{
	struct tw_firstseen *fs = calloc(1, sizeof *fs);
	if (!fs)
		return tw_err_set(err, TW_ENOMEM, "first-seen: out of memory");
	if (opts)
		fs->o = *opts;
	else
		tw_firstseen_opts_default(&fs->o);
	if (fs->o.max_principals < 1 || fs->o.max_values < 1 || fs->o.learn_ms < 0 || fs->o.group_ms < 0) {
		free(fs);
		return tw_err_set(err, TW_EINVAL, "first-seen: bad options");
	}
	fs->nbuckets = 1024;
	if (!(fs->tab = calloc(fs->nbuckets, sizeof *fs->tab))) {
		free(fs);
		return tw_err_set(err, TW_ENOMEM, "first-seen: out of memory");
	}
	fs->start_ms = INT64_MIN;
	*out = fs;
	return TW_OK;
}

static void clear_all(struct tw_firstseen *fs)
{
	while (fs->head)
		prin_remove(fs, fs->head, NULL, NULL);
	fs->ngroups = 0;
}

void tw_firstseen_free(struct tw_firstseen *fs)
{
	if (!fs)
		return;
	clear_all(fs);
	free(fs->tab);
	free(fs);
}

/* ---- state ----------------------------------------------------------------------------------- */
/* Layout (after magic "TWFSEEN1" and version 1), native byte order:
 *   i64 start_ms, u64 findings, u64 n, then n principals, least recently seen first:
 *     str principal, i64 first_ms,
 *     5 x (u32 n, u32 full, u32 n1, u64 nobs, n x u32 fingerprint, n x u8 count),
 *     u32 group mask, per set bit: u32 known, u32 n1, u64 nobs, f64 expect, str finding (JSON line)
 *   u32 CRC-32 of everything before. */

enum tw_rc tw_firstseen_save(const struct tw_firstseen *fs, struct tw_buf *b, struct tw_err *err)
{
	size_t start = b->n;
	struct tw_err e;
	struct tw_buf line;

	tw_err_clear(&e);
	tw_buf_init(&line, 1 << 16);
	tw_dw_begin(b, STATE_MAGIC, STATE_VERSION, &e);
	tw_dw_i64(b, fs->start_ms, &e);
	tw_dw_u64(b, fs->st.findings, &e);
	tw_dw_u64(b, fs->n, &e);
	for (const struct prin *p = fs->tail; p && !e.rc; p = p->prev) {
		uint32_t mask = 0;
		tw_dw_str(b, p->s, &e);
		tw_dw_i64(b, p->first_ms, &e);
		for (int k = 0; k < TW_FS__COUNT; k++) {
			tw_dw_u32(b, p->set[k].n, &e);
			tw_dw_u32(b, p->set[k].full, &e);
			tw_dw_u32(b, p->set[k].n1, &e);
			tw_dw_u64(b, p->set[k].nobs, &e);
			tw_dw(b, p->set[k].v, p->set[k].n * sizeof(uint32_t), &e);
			tw_dw(b, p->set[k].c, p->set[k].n, &e);
			mask |= p->g[k] ? 1u << k : 0;
		}
		tw_dw_u32(b, mask, &e);
		for (int k = 0; k < TW_FS__COUNT; k++)
			if (p->g[k]) {
				line.n = 0;
				tw_dw_u32(b, p->g[k]->known, &e);
				tw_dw_u32(b, p->g[k]->n1, &e);
				tw_dw_u64(b, p->g[k]->nobs, &e);
				tw_dw_f64(b, p->g[k]->expect, &e);
				if (!e.rc)
					(void)tw_anomaly_write_json(&p->g[k]->a, &line, &e);
				tw_dw_str(b, tw_buf_cstr(&line), &e);
			}
	}
	tw_dw_end(b, start, &e);
	tw_buf_free(&line);
	if (e.rc) {
		b->n = start;
		*err = e;
		return e.rc;
	}
	return TW_OK;
}

/* A time a state may hold: |t| <= 2^53 ms (far beyond any event time), so that an event time minus
 * it never overflows; INT64_MIN (not started) is allowed where noted. */
static int time_ok(int64_t t)
{
	return t >= -(INT64_C(1) << 53) && t <= INT64_C(1) << 53;
}

enum tw_rc tw_firstseen_load(struct tw_firstseen *fs, const void *buf, size_t len, struct tw_err *err)
{
	struct tw_dr r = { 0 };
	uint64_t n;
	enum tw_rc rc;

	clear_all(fs);
	memset(&fs->st, 0, sizeof fs->st);
	fs->start_ms = INT64_MIN;
	if ((rc = tw_dr_begin(&r, buf, len, STATE_MAGIC, STATE_VERSION, "first-seen state", err)))
		return rc;
	fs->start_ms = tw_dr_i64(&r);
	if (fs->start_ms != INT64_MIN && !time_ok(fs->start_ms))
		r.bad = 1; /* the learning period's start: event times are subtracted from it */
	fs->st.findings = tw_dr_u64(&r);
	n = tw_dr_u64(&r);
	for (uint64_t i = 0; i < n && !r.bad; i++) {
		char *s = tw_dr_str(&r, 1 << 16);
		struct prin *p;
		uint32_t mask;
		if (!s)
			break;
		p = prin_add(fs, (struct tw_str){ s, strlen(s) }, tw_dh_bytes(TW_DH_SEED, s, strlen(s)), 0, NULL, NULL, err);
		free(s);
		if (!p) {
			r.bad = 1;
			break;
		}
		p->first_ms = tw_dr_i64(&r);
		if (!time_ok(p->first_ms)) {
			r.bad = 1;
			break;
		}
		for (int k = 0; k < TW_FS__COUNT && !r.bad; k++) {
			uint32_t cnt = tw_dr_u32(&r);
			p->set[k].full = tw_dr_u32(&r);
			p->set[k].n1 = tw_dr_u32(&r);
			p->set[k].nobs = tw_dr_u64(&r);
			if (cnt > fs->o.max_values && cnt > 1u << 20) {
				r.bad = 1;
				break;
			}
			if (cnt) {
				if (!(p->set[k].v = malloc(cnt * sizeof(uint32_t))) || !(p->set[k].c = malloc(cnt))) {
					r.bad = 1;
					break;
				}
				p->set[k].cap = p->set[k].n = cnt;
				tw_dr_get(&r, p->set[k].v, cnt * sizeof(uint32_t));
				tw_dr_get(&r, p->set[k].c, cnt);
			}
		}
		mask = tw_dr_u32(&r);
		for (int k = 0; k < TW_FS__COUNT && !r.bad; k++)
			if (mask & (1u << k)) {
				struct group *g = calloc(1, sizeof *g);
				char *line;
				struct tw_err e;
				if (!g) {
					r.bad = 1;
					break;
				}
				g->known = tw_dr_u32(&r);
				g->n1 = tw_dr_u32(&r);
				g->nobs = tw_dr_u64(&r);
				g->expect = tw_dr_f64(&r);
				line = tw_dr_str(&r, 1 << 16);
				if (!line || tw_anomaly_read_line(line, strlen(line), &g->a, &e)) {
					free(line);
					free(g);
					r.bad = 1;
					break;
				}
				free(line);
				p->g[k] = g;
				fs->ngroups++;
			}
	}
	if (r.bad || r.p != r.end) {
		clear_all(fs);
		fs->start_ms = INT64_MIN;
		if (err->rc == TW_ENOMEM)
			return TW_ENOMEM;
		return tw_err_set(err, TW_ECORRUPT, "first-seen state: truncated or malformed");
	}
	return TW_OK;
}
