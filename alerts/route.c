/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/route.c: Alertmanager-like routing of alarm transitions: groups, timers, dedup and
 * silences. Driven entirely by the caller's clock (push, tick); never publishes, never sleeps.
 *
 * Invariants:
 *  1. A group is keyed by (topic, values of the group_by labels). Inside it, one alert per alarm:
 *     the latest transition replaces the previous one and is marked "changed".
 *  2. A group with changes is notified at created + group_wait the first time, then no sooner
 *     than last_notified + group_interval. A group with no changes but a standing ALARM is
 *     re-notified at last_notified + repeat_interval (when repeat_interval > 0).
 *  3. After a notification every alert is unchanged; alerts no longer in ALARM leave the group;
 *     an empty group is dropped.
 *  4. The same transition (alarm, time, new state) is routed once: a memory of the last 4096
 *     transition keys survives restarts in route.json, as do the groups and their times, so a
 *     restart never notifies sooner than the timers say.
 *  5. Silences are checked at notification time (Alertmanager's "muted"): a silenced alert is left
 *     out and recorded in the history as suppressed; the file is re-read when it changes, so a
 *     silence added by `trailwatch silence add` applies to a running daemon. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alerts/route.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"

#define DEDUP_KEYS 4096

struct ralert {
	char *alarm;             /* AlarmName */
	int old_state, state;    /* transition */
	int64_t time_ms;         /* when */
	char *reason;            /* StateReason */
	char *reason_data;       /* StateReasonData */
	char **labels;           /* "k=v" */
	size_t nlabels;          /* how many */
	int changed;             /* 1 until notified */
};

struct group {
	char *topic;             /* receiver */
	char *key;               /* group key text */
	char **glabels;          /* group_by labels with values */
	size_t nglabels;         /* how many */
	int64_t created_ms;      /* first alert */
	int64_t last_ms;         /* last notification, 0: never */
	struct ralert *alerts;   /* alerts */
	size_t nalerts;          /* how many */
};

struct tw_route {
	char *dir;               /* state directory */
	char **group_by;         /* label names */
	size_t ngroup_by;        /* how many */
	int64_t wait, interval, repeat; /* timers (ms) */
	int manual_commit;       /* ticks leave the saving to tw_route_commit */
	int dirty;               /* a tick changed the state and it is not saved yet */
	struct group *g;         /* groups */
	size_t ng;               /* how many */
	uint64_t dedup[DEDUP_KEYS]; /* ring of recent transition keys (0: empty) */
	size_t dedup_next;       /* next slot of the ring */
	struct tw_silence *sil;  /* silences as last read */
	size_t nsil;             /* how many */
	struct timespec sil_mtime; /* mtime of silences.json when read */
	off_t sil_size;          /* its size when read, -1: never read */
	ino_t sil_ino;           /* its inode when read (every save renames a new file in) */
	/* the last tick's output, owned */
	struct tw_route_notification *out;
	size_t nout;
	struct tw_route_alert **out_alerts; /* per notification, the alert views */
	struct group *out_groups;           /* snapshot copies behind the views */
};

/* ---- small helpers ----------------------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **strv_dup(const char *const *v, size_t n)
{
	char **d = calloc(n ? n : 1, sizeof *d);
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(d[i] = strdup(v[i] ? v[i] : ""))) {
			strv_free(d, i);
			return NULL;
		}
	return d;
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Value of label `name` in "k=v" labels, or "" when absent. */
static const char *label_value(char *const *labels, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (!strncmp(labels[i], name, nl) && labels[i][nl] == '=') {
			*vlen = strlen(labels[i] + nl + 1);
			return labels[i] + nl + 1;
		}
	*vlen = 0;
	return "";
}

static void ralert_free(struct ralert *a)
{
	free(a->alarm);
	free(a->reason);
	free(a->reason_data);
	strv_free(a->labels, a->nlabels);
}

static void group_free(struct group *g)
{
	free(g->topic);
	free(g->key);
	strv_free(g->glabels, g->nglabels);
	for (size_t i = 0; i < g->nalerts; i++)
		ralert_free(&g->alerts[i]);
	free(g->alerts);
}

static void out_free(struct tw_route *r)
{
	for (size_t i = 0; i < r->nout; i++) {
		free(r->out_alerts[i]);
		group_free(&r->out_groups[i]);
	}
	free(r->out);
	free(r->out_alerts);
	free(r->out_groups);
	r->out = NULL;
	r->out_alerts = NULL;
	r->out_groups = NULL;
	r->nout = 0;
}

/* ---- silences ---------------------------------------------------------------------------------- */

/* Splits "name<op>value": op 0 "=", 1 "!=", 2 "=~", 3 "!~". */
static int matcher_split(const char *m, size_t *nlen, int *op, const char **val)
{
	const char *p = m;
	while (*p && *p != '=' && *p != '!')
		p++;
	if (p == m || !*p)
		return -1;
	*nlen = (size_t)(p - m);
	for (const char *q = m; q < p; q++)
		if (!(*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')))
			return -1;
	if (p[0] == '=' && p[1] == '~') {
		*op = 2;
		*val = p + 2;
	} else if (p[0] == '!' && p[1] == '~') {
		*op = 3;
		*val = p + 2;
	} else if (p[0] == '!' && p[1] == '=') {
		*op = 1;
		*val = p + 2;
	} else if (p[0] == '=') {
		*op = 0;
		*val = p + 1;
	} else {
		return -1;
	}
	return 0;
}

static pcre2_code *compile_anchored(const char *re, struct tw_err *err)
{
	size_t l = strlen(re);
	char *pat = malloc(l + 8);
	int ec;
	PCRE2_SIZE off;
	pcre2_code *code;

	if (!pat) {
		tw_err_set(err, TW_ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(pat, "^(?:", 4);
	memcpy(pat + 4, re, l);
	memcpy(pat + 4 + l, ")$", 3);
	code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
	free(pat);
	if (!code) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(ec, msg, sizeof msg);
		tw_err_set(err, TW_EPARSE, "regex \"%s\": %s at offset %zu", re, (const char *)msg,
			   off >= 4 ? ((size_t)off - 4 < l ? (size_t)off - 4 : l) : 0);
	}
	return code;
}

enum tw_rc tw_silence_matcher_check(const char *m, struct tw_err *err)
{
	size_t nlen;
	int op;
	const char *val;
	pcre2_code *code;

	if (!m || matcher_split(m, &nlen, &op, &val))
		return tw_err_set(err, TW_EPARSE,
				  "matcher \"%s\": expected LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX or LABEL!~REGEX", m ? m : "");
	if (op >= 2) {
		if (!(code = compile_anchored(val, err))) {
			tw_err_prefix(err, "matcher \"%s\"", m);
			return err ? err->rc : TW_EPARSE;
		}
		pcre2_code_free(code);
	}
	return TW_OK;
}

static int matcher_match(const char *m, struct tw_alarm_strs labels)
{
	size_t nlen, vlen;
	int op, res = 0;
	const char *val, *have;
	char name[256];

	if (matcher_split(m, &nlen, &op, &val) || nlen >= sizeof name)
		return 0;
	memcpy(name, m, nlen);
	name[nlen] = '\0';
	have = label_value((char *const *)labels.v, labels.n, name, &vlen);
	if (op < 2) {
		res = !strcmp(have, val);
	} else {
		pcre2_code *code = compile_anchored(val, NULL);
		pcre2_match_data *md;
		if (!code)
			return 0;
		md = pcre2_match_data_create_from_pattern(code, NULL);
		res = md && pcre2_match(code, (PCRE2_SPTR)have, vlen, 0, 0, md, NULL) >= 0;
		pcre2_match_data_free(md);
		pcre2_code_free(code);
	}
	return (op == 1 || op == 3) ? !res : res;
}

int tw_silence_matches(const struct tw_silence *s, struct tw_alarm_strs labels, int64_t now_ms)
{
	if (now_ms < s->starts_ms || now_ms >= s->ends_ms || s->nmatchers == 0)
		return 0;
	for (size_t i = 0; i < s->nmatchers; i++)
		if (!matcher_match(s->matchers[i], labels))
			return 0;
	return 1;
}

void tw_silence_list_free(struct tw_silence *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		strv_free(v[i].matchers, v[i].nmatchers);
		free(v[i].creator);
		free(v[i].comment);
	}
	free(v);
}

static int sil_cmp(const void *x, const void *y)
{
	const struct tw_silence *a = x, *b = y;
	if (a->starts_ms != b->starts_ms)
		return a->starts_ms < b->starts_ms ? -1 : 1;
	return strcmp(a->id, b->id);
}

static void sil_path(const char *dir, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/silences.json", dir);
}

enum tw_rc tw_silence_list(const char *dir, struct tw_silence **out, size_t *n, struct tw_err *err)
{
	char path[4096];
	json_error_t je;
	json_t *j, *arr;
	struct tw_silence *v;
	size_t cnt, i;

	sil_path(dir, path, sizeof path);
	*out = NULL;
	*n = 0;
	j = json_load_file(path, 0, &je);
	if (!j) {
		FILE *f = fopen(path, "r");
		if (!f && errno == ENOENT)
			return TW_OK;
		if (f)
			fclose(f);
		return tw_err_set(err, TW_ECORRUPT, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
	}
	arr = json_object_get(j, "silences");
	if (!json_is_array(arr)) {
		json_decref(j);
		return tw_err_set(err, TW_ECORRUPT, "%s: expected {\"silences\": [...]}", path);
	}
	cnt = json_array_size(arr);
	v = calloc(cnt ? cnt : 1, sizeof *v);
	if (!v) {
		json_decref(j);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	for (i = 0; i < cnt; i++) {
		json_t *s = json_array_get(arr, i), *ms = json_object_get(s, "matchers");
		const char *id = json_string_value(json_object_get(s, "id"));
		size_t k, nm = json_array_size(ms);
		if (!id || !json_is_array(ms) || nm > TW_SILENCE_MAX_MATCHERS) {
			tw_silence_list_free(v, i);
			json_decref(j);
			return tw_err_set(err, TW_ECORRUPT, "%s: silence %zu: missing id or matchers", path, i + 1);
		}
		snprintf(v[i].id, sizeof v[i].id, "%s", id);
		v[i].matchers = calloc(nm ? nm : 1, sizeof *v[i].matchers);
		for (k = 0; v[i].matchers && k < nm; k++) {
			const char *m = json_string_value(json_array_get(ms, k));
			if (!(v[i].matchers[k] = strdup(m ? m : "")))
				break;
			v[i].nmatchers++;
		}
		v[i].starts_ms = (int64_t)json_integer_value(json_object_get(s, "starts_ms"));
		v[i].ends_ms = (int64_t)json_integer_value(json_object_get(s, "ends_ms"));
		v[i].created_ms = (int64_t)json_integer_value(json_object_get(s, "created_ms"));
		v[i].creator = strdup(json_string_value(json_object_get(s, "creator")) ? json_string_value(json_object_get(s, "creator")) : "");
		v[i].comment = strdup(json_string_value(json_object_get(s, "comment")) ? json_string_value(json_object_get(s, "comment")) : "");
		if (!v[i].matchers || v[i].nmatchers != nm || !v[i].creator || !v[i].comment) {
			tw_silence_list_free(v, i + 1);
			json_decref(j);
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		}
	}
	json_decref(j);
	qsort(v, cnt, sizeof *v, sil_cmp);
	*out = v;
	*n = cnt;
	return TW_OK;
}

static enum tw_rc sil_save(const char *dir, const struct tw_silence *v, size_t n, struct tw_err *err)
{
	char path[4096];
	json_t *j = json_object(), *arr = json_array();
	char *text;
	enum tw_rc rc;

	if (!j || !arr) {
		json_decref(j);
		json_decref(arr);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_object(), *ms = json_array();
		for (size_t k = 0; k < v[i].nmatchers; k++)
			json_array_append_new(ms, json_string(v[i].matchers[k]));
		json_object_set_new(s, "id", json_string(v[i].id));
		json_object_set_new(s, "matchers", ms);
		json_object_set_new(s, "starts_ms", json_integer(v[i].starts_ms));
		json_object_set_new(s, "ends_ms", json_integer(v[i].ends_ms));
		json_object_set_new(s, "created_ms", json_integer(v[i].created_ms));
		json_object_set_new(s, "creator", json_string(v[i].creator ? v[i].creator : ""));
		json_object_set_new(s, "comment", json_string(v[i].comment ? v[i].comment : ""));
		json_array_append_new(arr, s);
	}
	json_object_set_new(j, "silences", arr);
	text = json_dumps(j, JSON_INDENT(1));
	json_decref(j);
	if (!text)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	sil_path(dir, path, sizeof path);
	rc = tw_alarm_write_atomic(path, text, strlen(text), err);
	free(text);
	return rc;
}

enum tw_rc tw_silence_add(const char *dir, const char *const *matchers, size_t nmatchers, int64_t starts_ms,
			  int64_t ends_ms, const char *creator, const char *comment, int64_t now_ms, char *id_out,
			  struct tw_err *err)
{
	struct tw_silence *v, *nv;
	size_t n;
	enum tw_rc rc;
	uint64_t h = 14695981039346656037ULL;

	if (nmatchers == 0 || nmatchers > TW_SILENCE_MAX_MATCHERS)
		return tw_err_set(err, TW_EINVAL, "a silence needs 1 to %d matchers", TW_SILENCE_MAX_MATCHERS);
	for (size_t i = 0; i < nmatchers; i++)
		if ((rc = tw_silence_matcher_check(matchers[i], err)))
			return rc;
	if (ends_ms <= starts_ms)
		return tw_err_set(err, TW_EINVAL, "a silence must end after it starts");
	if ((rc = tw_silence_list(dir, &v, &n, err)))
		return rc;
	nv = realloc(v, (n + 1) * sizeof *nv);
	if (!nv) {
		tw_silence_list_free(v, n);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	v = nv;
	memset(&v[n], 0, sizeof v[n]);
	for (size_t i = 0; i < nmatchers; i++)
		h = fnv(matchers[i], strlen(matchers[i]) + 1, h);
	h = fnv(&now_ms, sizeof now_ms, h);
	h = fnv(&n, sizeof n, h);
	for (;;) { /* ids are unique in the file */
		int dup = 0;
		snprintf(v[n].id, sizeof v[n].id, "%016llx", (unsigned long long)h);
		for (size_t i = 0; i < n && !dup; i++)
			dup = !strcmp(v[i].id, v[n].id);
		if (!dup)
			break;
		h = fnv("+", 1, h);
	}
	v[n].matchers = strv_dup(matchers, nmatchers);
	v[n].nmatchers = v[n].matchers ? nmatchers : 0;
	v[n].starts_ms = starts_ms;
	v[n].ends_ms = ends_ms;
	v[n].created_ms = now_ms;
	v[n].creator = strdup(creator ? creator : "");
	v[n].comment = strdup(comment ? comment : "");
	if (!v[n].matchers || !v[n].creator || !v[n].comment)
		rc = tw_err_set(err, TW_ENOMEM, "out of memory");
	else
		rc = sil_save(dir, v, n + 1, err);
	if (!rc)
		memcpy(id_out, v[n].id, sizeof v[n].id);
	tw_silence_list_free(v, n + 1);
	return rc;
}

enum tw_rc tw_silence_expire(const char *dir, const char *id, int64_t now_ms, struct tw_err *err)
{
	struct tw_silence *v;
	size_t n, i;
	enum tw_rc rc;

	if ((rc = tw_silence_list(dir, &v, &n, err)))
		return rc;
	for (i = 0; i < n && strcmp(v[i].id, id); i++)
		;
	if (i == n) {
		tw_silence_list_free(v, n);
		return tw_err_set(err, TW_ENOENT, "no silence with id %s in %s", id, dir);
	}
	if (v[i].ends_ms > now_ms) {
		v[i].ends_ms = now_ms;
		if (v[i].starts_ms > now_ms)
			v[i].starts_ms = now_ms;
		rc = sil_save(dir, v, n, err);
	}
	tw_silence_list_free(v, n);
	return rc;
}

enum tw_rc tw_silence_gc(const char *dir, int64_t now_ms, int64_t keep_ms, size_t *removed, struct tw_err *err)
{
	struct tw_silence *v;
	size_t n, k = 0, gone = 0;
	enum tw_rc rc;

	if ((rc = tw_silence_list(dir, &v, &n, err)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (v[i].ends_ms < now_ms - keep_ms) {
			strv_free(v[i].matchers, v[i].nmatchers);
			free(v[i].creator);
			free(v[i].comment);
			gone++;
			continue;
		}
		v[k++] = v[i];
	}
	if (gone)
		rc = sil_save(dir, v, k, err);
	tw_silence_list_free(v, k);
	if (removed)
		*removed = gone;
	return rc;
}

/* Re-reads silences.json when its mtime or size changed. */
static enum tw_rc sil_refresh(struct tw_route *r, struct tw_err *err)
{
	char path[4096];
	struct stat st;
	enum tw_rc rc;

	sil_path(r->dir, path, sizeof path);
	if (stat(path, &st)) {
		if (errno != ENOENT)
			return tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		tw_silence_list_free(r->sil, r->nsil);
		r->sil = NULL;
		r->nsil = 0;
		r->sil_size = -1;
		return TW_OK;
	}
	if (st.st_size == r->sil_size && st.st_ino == r->sil_ino && st.st_mtim.tv_sec == r->sil_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == r->sil_mtime.tv_nsec)
		return TW_OK;
	tw_silence_list_free(r->sil, r->nsil);
	r->sil = NULL;
	r->nsil = 0;
	if ((rc = tw_silence_list(r->dir, &r->sil, &r->nsil, err)))
		return rc;
	r->sil_size = st.st_size;
	r->sil_ino = st.st_ino;
	r->sil_mtime = st.st_mtim;
	return TW_OK;
}

/* ---- persistence of the router ----------------------------------------------------------------- */

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static enum tw_rc route_save(struct tw_route *r, struct tw_err *err)
{
	char path[4096], hex[24];
	json_t *j = json_object(), *gs = json_array(), *dd = json_array();
	char *text;
	enum tw_rc rc;

	for (size_t i = 0; i < r->ng; i++) {
		struct group *g = &r->g[i];
		json_t *o = json_object(), *as = json_array();
		for (size_t k = 0; k < g->nalerts; k++) {
			struct ralert *a = &g->alerts[k];
			json_t *ao = json_object();
			json_object_set_new(ao, "alarm", json_string(a->alarm));
			json_object_set_new(ao, "old_state", json_string(tw_alarm_state_str(a->old_state)));
			json_object_set_new(ao, "state", json_string(tw_alarm_state_str(a->state)));
			json_object_set_new(ao, "time_ms", json_integer(a->time_ms));
			json_object_set_new(ao, "reason", json_string(a->reason));
			json_object_set_new(ao, "reason_data", json_string(a->reason_data));
			json_object_set_new(ao, "labels", strv_json(a->labels, a->nlabels));
			json_object_set_new(ao, "changed", json_boolean(a->changed));
			json_array_append_new(as, ao);
		}
		json_object_set_new(o, "topic", json_string(g->topic));
		json_object_set_new(o, "key", json_string(g->key));
		json_object_set_new(o, "labels", strv_json(g->glabels, g->nglabels));
		json_object_set_new(o, "created_ms", json_integer(g->created_ms));
		json_object_set_new(o, "last_ms", json_integer(g->last_ms));
		json_object_set_new(o, "alerts", as);
		json_array_append_new(gs, o);
	}
	for (size_t i = 0; i < DEDUP_KEYS; i++) {
		size_t k = (r->dedup_next + i) % DEDUP_KEYS;
		if (!r->dedup[k])
			continue;
		snprintf(hex, sizeof hex, "%016llx", (unsigned long long)r->dedup[k]);
		json_array_append_new(dd, json_string(hex));
	}
	json_object_set_new(j, "version", json_integer(1));
	json_object_set_new(j, "groups", gs);
	json_object_set_new(j, "seen", dd);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	snprintf(path, sizeof path, "%s/route.json", r->dir);
	rc = tw_alarm_write_atomic(path, text, strlen(text), err);
	if (rc == TW_OK)
		r->dirty = 0;
	free(text);
	return rc;
}

static char **json_strv(json_t *a, size_t *n)
{
	size_t cnt = json_array_size(a);
	char **v = calloc(cnt ? cnt : 1, sizeof *v);
	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < cnt; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!(v[i] = strdup(s ? s : ""))) {
			strv_free(v, i);
			return NULL;
		}
	}
	*n = cnt;
	return v;
}

static char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return strdup(s ? s : "");
}

static int jstate(json_t *o, const char *k)
{
	int s = tw_alarm_state_parse(json_string_value(json_object_get(o, k)));
	return s < 0 ? TW_ALARM_INSUFFICIENT : s;
}

static enum tw_rc route_load(struct tw_route *r, struct tw_err *err)
{
	char path[4096];
	json_error_t je;
	json_t *j, *gs, *dd;
	FILE *f;

	snprintf(path, sizeof path, "%s/route.json", r->dir);
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? TW_OK : tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
	j = json_loadf(f, 0, &je);
	fclose(f);
	if (!j)
		return tw_err_set(err, TW_ECORRUPT, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
	gs = json_object_get(j, "groups");
	dd = json_object_get(j, "seen");
	r->g = calloc(json_array_size(gs) + 1, sizeof *r->g);
	if (!r->g) {
		json_decref(j);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < json_array_size(gs); i++) {
		json_t *o = json_array_get(gs, i), *as = json_object_get(o, "alerts");
		struct group *g = &r->g[r->ng++];
		g->topic = jstr(o, "topic");
		g->key = jstr(o, "key");
		g->glabels = json_strv(json_object_get(o, "labels"), &g->nglabels);
		g->created_ms = (int64_t)json_integer_value(json_object_get(o, "created_ms"));
		g->last_ms = (int64_t)json_integer_value(json_object_get(o, "last_ms"));
		g->alerts = calloc(json_array_size(as) + 1, sizeof *g->alerts);
		if (!g->topic || !g->key || !g->glabels || !g->alerts) {
			json_decref(j);
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		}
		for (size_t k = 0; k < json_array_size(as); k++) {
			json_t *ao = json_array_get(as, k);
			struct ralert *a = &g->alerts[g->nalerts++];
			a->alarm = jstr(ao, "alarm");
			a->old_state = jstate(ao, "old_state");
			a->state = jstate(ao, "state");
			a->time_ms = (int64_t)json_integer_value(json_object_get(ao, "time_ms"));
			a->reason = jstr(ao, "reason");
			a->reason_data = jstr(ao, "reason_data");
			a->labels = json_strv(json_object_get(ao, "labels"), &a->nlabels);
			a->changed = json_is_true(json_object_get(ao, "changed"));
			if (!a->alarm || !a->reason || !a->reason_data || !a->labels) {
				json_decref(j);
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			}
		}
	}
	for (size_t i = 0; i < json_array_size(dd) && i < DEDUP_KEYS; i++) {
		const char *h = json_string_value(json_array_get(dd, i));
		r->dedup[r->dedup_next++ % DEDUP_KEYS] = h ? strtoull(h, NULL, 16) : 0;
	}
	r->dedup_next %= DEDUP_KEYS;
	json_decref(j);
	return TW_OK;
}

/* ---- the router -------------------------------------------------------------------------------- */

enum tw_rc tw_route_open(const struct tw_route_config *cfg, struct tw_route **out, struct tw_err *err)
{
	struct tw_route *r;
	enum tw_rc rc;

	if (!cfg->dir || !*cfg->dir || strlen(cfg->dir) > 3000)
		return tw_err_set(err, TW_EINVAL, "route: state directory empty or too long");
	if (cfg->group_wait_ms < 0 || cfg->group_interval_ms < 0 || cfg->repeat_interval_ms < 0)
		return tw_err_set(err, TW_EINVAL, "route: negative group_wait, group_interval or repeat_interval");
	r = calloc(1, sizeof *r);
	if (!r)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	r->sil_size = -1;
	r->dir = strdup(cfg->dir);
	r->group_by = strv_dup(cfg->group_by, cfg->ngroup_by);
	r->ngroup_by = r->group_by ? cfg->ngroup_by : 0;
	r->wait = cfg->group_wait_ms;
	r->interval = cfg->group_interval_ms;
	r->repeat = cfg->repeat_interval_ms;
	r->manual_commit = cfg->manual_commit;
	if (!r->dir || !r->group_by) {
		tw_route_close(r);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	if (mkdir(r->dir, 0700) && errno != EEXIST) {
		rc = tw_err_set(err, TW_EIO, "%s: %s", r->dir, strerror(errno));
		tw_route_close(r);
		return rc;
	}
	if ((rc = route_load(r, err))) {
		tw_route_close(r);
		return rc;
	}
	*out = r;
	return TW_OK;
}

void tw_route_close(struct tw_route *r)
{
	if (!r)
		return;
	out_free(r);
	for (size_t i = 0; i < r->ng; i++)
		group_free(&r->g[i]);
	free(r->g);
	strv_free(r->group_by, r->ngroup_by);
	tw_silence_list_free(r->sil, r->nsil);
	free(r->dir);
	free(r);
}

/* The group key and labels of a transition's labels for topic. */
static enum tw_rc group_key(const struct tw_route *r, const char *topic, struct tw_alarm_strs labels, struct tw_buf *key,
			    char ***gl, size_t *ngl, struct tw_err *err)
{
	int all = r->ngroup_by == 1 && !strcmp(r->group_by[0], "...");
	size_t n = all ? labels.n : r->ngroup_by, k = 0;
	char **v = calloc(n ? n : 1, sizeof *v);
	enum tw_rc rc;

	if (!v)
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	rc = tw_buf_printf(key, err, "%s{", topic);
	for (size_t i = 0; !rc && i < n; i++) {
		size_t vl;
		const char *val;
		char *lab;
		if (all) {
			lab = strdup(labels.v[i]);
		} else {
			val = label_value((char *const *)labels.v, labels.n, r->group_by[i], &vl);
			lab = malloc(strlen(r->group_by[i]) + vl + 2);
			if (lab)
				snprintf(lab, strlen(r->group_by[i]) + vl + 2, "%s=%s", r->group_by[i], val);
		}
		if (!lab) {
			rc = tw_err_set(err, TW_ENOMEM, "out of memory");
			break;
		}
		v[k++] = lab;
		rc = tw_buf_printf(key, err, "%s%s", i ? "," : "", lab);
	}
	if (!rc)
		rc = tw_buf_putc(key, '}', err);
	if (rc) {
		strv_free(v, k);
		return rc;
	}
	*gl = v;
	*ngl = k;
	return TW_OK;
}

static uint64_t tr_key(const struct tw_alarm_transition *tr)
{
	uint64_t h = fnv(tr->alarm, strlen(tr->alarm) + 1, 14695981039346656037ULL);
	h = fnv(&tr->time_ms, sizeof tr->time_ms, h);
	h = fnv(&tr->new_state, sizeof tr->new_state, h);
	return h ? h : 1;
}

enum tw_rc tw_route_push(struct tw_route *r, const struct tw_alarm_transition *tr, int64_t now_ms, int *accepted,
			 struct tw_err *err)
{
	uint64_t key = tr_key(tr);
	enum tw_rc rc = TW_OK;

	if (accepted)
		*accepted = 0;
	for (size_t i = 0; i < DEDUP_KEYS; i++)
		if (r->dedup[i] == key)
			return TW_OK;
	for (size_t t = 0; t < tr->actions.n; t++) {
		struct tw_buf kb;
		char **gl = NULL;
		size_t ngl = 0, gi, ai;
		struct group *g;
		struct ralert *a;

		tw_buf_init(&kb, 64 << 10);
		if ((rc = group_key(r, tr->actions.v[t], tr->labels, &kb, &gl, &ngl, err))) {
			tw_buf_free(&kb);
			return rc;
		}
		for (gi = 0; gi < r->ng && strcmp(r->g[gi].key, tw_buf_cstr(&kb)); gi++)
			;
		if (gi == r->ng) {
			struct group *ng = realloc(r->g, (r->ng + 1) * sizeof *ng);
			if (!ng) {
				strv_free(gl, ngl);
				tw_buf_free(&kb);
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			}
			r->g = ng;
			g = &r->g[r->ng++];
			memset(g, 0, sizeof *g);
			g->topic = strdup(tr->actions.v[t]);
			g->key = strdup(tw_buf_cstr(&kb));
			g->glabels = gl;
			g->nglabels = ngl;
			g->created_ms = now_ms;
			if (!g->topic || !g->key) {
				tw_buf_free(&kb);
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			}
		} else {
			g = &r->g[gi];
			strv_free(gl, ngl);
		}
		tw_buf_free(&kb);
		for (ai = 0; ai < g->nalerts && strcmp(g->alerts[ai].alarm, tr->alarm); ai++)
			;
		if (ai == g->nalerts) {
			struct ralert *na = realloc(g->alerts, (g->nalerts + 1) * sizeof *na);
			if (!na)
				return tw_err_set(err, TW_ENOMEM, "out of memory");
			g->alerts = na;
			memset(&na[g->nalerts], 0, sizeof *na);
			g->nalerts++;
		}
		a = &g->alerts[ai];
		ralert_free(a);
		memset(a, 0, sizeof *a);
		a->alarm = strdup(tr->alarm);
		a->old_state = tr->old_state;
		a->state = tr->new_state;
		a->time_ms = tr->time_ms;
		a->reason = strdup(tr->reason ? tr->reason : "");
		a->reason_data = strdup(tr->reason_data ? tr->reason_data : "");
		a->labels = strv_dup(tr->labels.v, tr->labels.n);
		a->nlabels = a->labels ? tr->labels.n : 0;
		a->changed = 1;
		if (!a->alarm || !a->reason || !a->reason_data || !a->labels)
			return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	r->dedup[r->dedup_next] = key;
	r->dedup_next = (r->dedup_next + 1) % DEDUP_KEYS;
	if (accepted)
		*accepted = 1;
	return route_save(r, err);
}

/* When group g is due next (INT64_MAX: never). */
static int64_t group_due(const struct tw_route *r, const struct group *g)
{
	int changed = 0, firing = 0;

	for (size_t i = 0; i < g->nalerts; i++) {
		changed |= g->alerts[i].changed;
		firing |= g->alerts[i].state == TW_ALARM_ALARM;
	}
	if (changed)
		return g->last_ms ? g->last_ms + r->interval : g->created_ms + r->wait;
	if (firing && r->repeat > 0 && g->last_ms)
		return g->last_ms + r->repeat;
	return INT64_MAX;
}

int64_t tw_route_next_ms(const struct tw_route *r)
{
	int64_t next = INT64_MAX;
	for (size_t i = 0; i < r->ng; i++) {
		int64_t d = group_due(r, &r->g[i]);
		if (d < next)
			next = d;
	}
	return next;
}

static enum tw_rc record(struct tw_route *r, const struct group *g, const struct ralert *a, int64_t now_ms,
			 const char *result, const char *silence, struct tw_err *err)
{
	struct tw_buf x;
	struct tw_alarm_hist h;
	enum tw_rc rc;

	tw_buf_init(&x, 1 << 20);
	rc = tw_buf_printf(&x, err, "\"topic\":");
	if (!rc)
		rc = tw_json_write_str(&x, g->topic, strlen(g->topic), err);
	if (!rc)
		rc = tw_buf_printf(&x, err, ",\"group\":");
	if (!rc)
		rc = tw_json_write_str(&x, g->key, strlen(g->key), err);
	if (!rc)
		rc = tw_buf_printf(&x, err, ",\"result\":\"%s\"", result);
	if (!rc && silence)
		rc = tw_buf_printf(&x, err, ",\"silence\":\"%s\"", silence);
	if (!rc) {
		h = (struct tw_alarm_hist){ .time_ms = now_ms, .alarm = a->alarm, .type = "Action",
					    .old_state = tw_alarm_state_str(a->old_state),
					    .new_state = tw_alarm_state_str(a->state), .reason = a->reason,
					    .reason_data = NULL, .extra = tw_buf_cstr(&x) };
		rc = tw_alarm_history_append(r->dir, &h, err);
	}
	tw_buf_free(&x);
	return rc;
}

static const struct tw_silence *silenced_by(const struct tw_route *r, const struct ralert *a, int64_t now_ms)
{
	struct tw_alarm_strs labels = { (const char *const *)a->labels, a->nlabels };
	for (size_t i = 0; i < r->nsil; i++)
		if (tw_silence_matches(&r->sil[i], labels, now_ms))
			return &r->sil[i];
	return NULL;
}

/* Copies alert a into the output snapshot sg. */
static int snap_alert(struct group *sg, const struct ralert *a)
{
	struct ralert *d = &sg->alerts[sg->nalerts];
	memset(d, 0, sizeof *d);
	d->alarm = strdup(a->alarm);
	d->reason = strdup(a->reason);
	d->reason_data = strdup(a->reason_data);
	d->labels = strv_dup((const char *const *)a->labels, a->nlabels);
	d->nlabels = d->labels ? a->nlabels : 0;
	d->old_state = a->old_state;
	d->state = a->state;
	d->time_ms = a->time_ms;
	sg->nalerts++;
	return d->alarm && d->reason && d->reason_data && d->labels ? 0 : -1;
}

enum tw_rc tw_route_commit(struct tw_route *r, struct tw_err *err)
{
	enum tw_rc rc;

	if (!r->dirty)
		return TW_OK;
	if ((rc = route_save(r, err)))
		return rc;
	r->dirty = 0;
	return TW_OK;
}

enum tw_rc tw_route_tick(struct tw_route *r, int64_t now_ms, const struct tw_route_notification **out, size_t *n,
			 struct tw_err *err)
{
	enum tw_rc rc;
	int dirty = 0;

	out_free(r);
	*out = NULL;
	*n = 0;
	if ((rc = sil_refresh(r, err)))
		return rc;
	r->out = calloc(r->ng + 1, sizeof *r->out);
	r->out_alerts = calloc(r->ng + 1, sizeof *r->out_alerts);
	r->out_groups = calloc(r->ng + 1, sizeof *r->out_groups);
	if (!r->out || !r->out_alerts || !r->out_groups) {
		out_free(r);
		return tw_err_set(err, TW_ENOMEM, "out of memory");
	}
	for (size_t gi = 0; gi < r->ng; gi++) {
		struct group *g = &r->g[gi];
		int64_t due = group_due(r, g);
		int changed = 0;
		struct group *sg;
		size_t k;

		if (due == INT64_MAX || now_ms < due)
			continue;
		for (k = 0; k < g->nalerts; k++)
			changed |= g->alerts[k].changed;
		sg = &r->out_groups[r->nout];
		sg->topic = strdup(g->topic);
		sg->key = strdup(g->key);
		sg->glabels = strv_dup((const char *const *)g->glabels, g->nglabels);
		sg->nglabels = sg->glabels ? g->nglabels : 0;
		sg->alerts = calloc(g->nalerts + 1, sizeof *sg->alerts);
		if (!sg->topic || !sg->key || !sg->glabels || !sg->alerts) {
			group_free(sg);
			memset(sg, 0, sizeof *sg);
			out_free(r);
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		}
		for (k = 0; k < g->nalerts; k++) {
			struct ralert *a = &g->alerts[k];
			const struct tw_silence *s;
			/* A repeat carries the standing ALARMs; a change carries every alert of the group. */
			if (!changed && a->state != TW_ALARM_ALARM)
				continue;
			s = silenced_by(r, a, now_ms);
			if (s) {
				if (a->changed && (rc = record(r, g, a, now_ms, "suppressed", s->id, err)))
					goto fail;
				continue;
			}
			if (snap_alert(sg, a)) {
				rc = tw_err_set(err, TW_ENOMEM, "out of memory");
				goto fail;
			}
			if ((rc = record(r, g, a, now_ms, changed ? "published" : "republished", NULL, err)))
				goto fail;
		}
		/* Invariant 3: everything is now notified (or muted); non-ALARM alerts leave. */
		g->last_ms = now_ms;
		for (k = 0; k < g->nalerts;) {
			g->alerts[k].changed = 0;
			if (g->alerts[k].state != TW_ALARM_ALARM) {
				ralert_free(&g->alerts[k]);
				g->alerts[k] = g->alerts[--g->nalerts];
				continue;
			}
			k++;
		}
		dirty = 1;
		if (sg->nalerts == 0) { /* everything silenced: nothing to publish */
			group_free(sg);
			memset(sg, 0, sizeof *sg);
			continue;
		}
		r->out_alerts[r->nout] = calloc(sg->nalerts, sizeof **r->out_alerts);
		if (!r->out_alerts[r->nout]) {
			group_free(sg);
			memset(sg, 0, sizeof *sg);
			out_free(r);
			return tw_err_set(err, TW_ENOMEM, "out of memory");
		}
		for (k = 0; k < sg->nalerts; k++) {
			struct ralert *a = &sg->alerts[k];
			r->out_alerts[r->nout][k] = (struct tw_route_alert){
				.alarm = a->alarm, .old_state = a->old_state, .state = a->state, .time_ms = a->time_ms,
				.reason = a->reason, .reason_data = a->reason_data,
				.labels = { (const char *const *)a->labels, a->nlabels },
			};
		}
		r->out[r->nout] = (struct tw_route_notification){
			.topic = sg->topic, .group_key = sg->key,
			.group_labels = { (const char *const *)sg->glabels, sg->nglabels },
			.alerts = r->out_alerts[r->nout], .nalerts = sg->nalerts, .repeat = !changed, .time_ms = now_ms,
		};
		r->nout++;
	}
	/* Drop empty groups. */
	for (size_t gi = 0; gi < r->ng;) {
		if (r->g[gi].nalerts == 0) {
			group_free(&r->g[gi]);
			r->g[gi] = r->g[--r->ng];
			dirty = 1;
			continue;
		}
		gi++;
	}
	if (dirty && r->manual_commit)
		r->dirty = 1;
	else if (dirty && (rc = route_save(r, err))) {
		out_free(r);
		return rc;
	}
	*out = r->out;
	*n = r->nout;
	return TW_OK;
fail:
	group_free(&r->out_groups[r->nout]);
	memset(&r->out_groups[r->nout], 0, sizeof r->out_groups[r->nout]);
	out_free(r);
	return rc;
}
