/* SPDX-License-Identifier: Apache-2.0 */
/* core/config.c: the configuration file: a declarative schema walked against a jansson document.
 * The same tables drive validation (with key paths in every message), defaults, freeing and the
 * normalized output of `trailwatch config check`. Never prints; never holds a secret's value
 * (tw_secret_load reads it into the caller's buffer on demand).
 *
 * Invariants:
 *  1. Every key of every object is in its schema, else TW_EPARSE "unknown key PATH" (with the
 *     closest known key when one is within edit distance 2).
 *  2. A field's default is written as text in the table and parsed by the field's own parser, so
 *     the table documents what a user may write, and a bad default fails every test.
 *  3. A property whose name looks secret ("password", "secret" in it) cannot be a literal: it
 *     must be {"file": PATH} or {"env": NAME}. Values are never quoted in messages.
 *  4. Only the first error is reported; *out is written only on success. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/time.h"

/* ---- the schema ---------------------------------------------------------------------------- */

enum ftype {
	F_STRING,   /* char *: a non-empty string */
	F_SIZE,     /* uint64_t: a number of bytes or "64M" (K, M, G, T: binary) */
	F_DURATION, /* int64_t ms: "90s", "5m", "400d" (core/time.h tw_duration_parse) */
	F_UINT,     /* uint64_t: an integer in [min, max] */
	F_ENUM,     /* int: the index of a string in choices */
	F_STRINGS,  /* char ** + size_t count: an array of non-empty strings */
	F_OBJECT,   /* an embedded struct described by sub */
	F_OBJECTS,  /* a pointer to sub->size-byte elements + size_t count: an array of objects */
	F_PROPS,    /* struct tw_config_prop * + size_t count: an object of strings or secrets */
};

struct schema;

/* One key of an object. */
struct field {
	const char *key;            /* the JSON key */
	enum ftype type;            /* how its value is read and stored */
	int required;               /* 1: missing is an error */
	const char *def;            /* default as the user would write it; NULL = none (zero);
	                               for F_OBJECT "{}" walks an empty object when absent */
	size_t off;                 /* offset of the value in the parent struct */
	size_t off_n;               /* F_STRINGS, F_OBJECTS, F_PROPS: offset of the count */
	const struct schema *sub;   /* F_OBJECT, F_OBJECTS: the member's schema */
	const char *const *choices; /* F_ENUM: allowed strings, NULL-terminated */
	uint64_t min, max;          /* F_UINT: range; F_STRINGS, F_OBJECTS: min, max entries */
	const char *doc;            /* one line for the documentation */
};

/* An object: its keys and the size of the struct it fills. */
struct schema {
	const struct field *fields; /* the keys, in output order */
	size_t nfields;             /* entries in fields */
	size_t size;                /* sizeof the struct (array elements) */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define SCHEMA(f, type) { f, N(f), sizeof(type) }

static const char *const source_types[] = { "kafka", "follow", "files", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

#define S struct tw_config_store
static const struct field store_fields[] = {
	{ "dir", F_STRING, 1, NULL, offsetof(S, dir), 0, NULL, NULL, 0, 0,
	  "directory of the store (created if missing)" },
	{ "seal_size", F_SIZE, 0, "64M", offsetof(S, seal_bytes), 0, NULL, NULL, 0, 0,
	  "seal the WAL into a segment past this size" },
	{ "seal_age", F_DURATION, 0, "5m", offsetof(S, seal_age_ms), 0, NULL, NULL, 0, 0,
	  "... or when its oldest batch is this old" },
	{ "retain", F_DURATION, 0, NULL, offsetof(S, retain_ms), 0, NULL, NULL, 0, 0,
	  "drop segments older than this (absent: keep forever)" },
};
#undef S
static const struct schema store_schema = SCHEMA(store_fields, struct tw_config_store);

#define S struct tw_config_kafka
static const struct field kafka_fields[] = {
	{ "brokers", F_STRING, 1, NULL, offsetof(S, brokers), 0, NULL, NULL, 0, 0,
	  "bootstrap servers, \"host:port,host:port\"" },
	{ "group", F_STRING, 1, NULL, offsetof(S, group), 0, NULL, NULL, 0, 0,
	  "consumer group id (offsets are committed to it)" },
	{ "client_id", F_STRING, 0, "trailwatch", offsetof(S, client_id), 0, NULL, NULL, 0, 0,
	  "client.id" },
	{ "topics", F_STRINGS, 1, NULL, offsetof(S, topics), offsetof(S, ntopics), NULL, NULL, 1, 1000,
	  "topics to subscribe to" },
	{ "properties", F_PROPS, 0, NULL, offsetof(S, props), offsetof(S, nprops), NULL, NULL, 0, 0,
	  "librdkafka properties; secrets as {\"file\": PATH} or {\"env\": NAME}" },
	{ "dead_letter_topic", F_STRING, 0, NULL, offsetof(S, dead_letter_topic), 0, NULL, NULL, 0, 0,
	  "topic for undecodable messages (absent: none)" },
	{ "batch_max_events", F_UINT, 0, "4096", offsetof(S, batch_max_events), 0, NULL, NULL, 1, 10000000,
	  "a batch closes at this many events" },
	{ "batch_max_bytes", F_SIZE, 0, "16M", offsetof(S, batch_max_bytes), 0, NULL, NULL, 0, 0,
	  "... or this many payload bytes" },
	{ "batch_max_wait", F_DURATION, 0, "500ms", offsetof(S, batch_max_wait_ms), 0, NULL, NULL, 0, 0,
	  "... or this long after its first message" },
};
#undef S
static const struct schema kafka_schema = SCHEMA(kafka_fields, struct tw_config_kafka);

#define S struct tw_config_follow
static const struct field follow_fields[] = {
	{ "path", F_STRING, 1, NULL, offsetof(S, path), 0, NULL, NULL, 0, 0,
	  "directory to watch for new files (S3 layout or flat)" },
	{ "rescan", F_DURATION, 0, "1s", offsetof(S, rescan_ms), 0, NULL, NULL, 0, 0,
	  "how often the directory is rescanned" },
};
#undef S
static const struct schema follow_schema = SCHEMA(follow_fields, struct tw_config_follow);

#define S struct tw_config_files
static const struct field files_fields[] = {
	{ "paths", F_STRINGS, 1, NULL, offsetof(S, paths), offsetof(S, npaths), NULL, NULL, 1, 100000,
	  "files or directories, read once" },
};
#undef S
static const struct schema files_schema = SCHEMA(files_fields, struct tw_config_files);

/* The members kafka, follow and files are walked only when present: source_check ties them to type. */
#define S struct tw_config_source
static const struct field source_fields[] = {
	{ "type", F_ENUM, 1, NULL, offsetof(S, type), 0, NULL, source_types, 0, 0,
	  "kafka, follow or files: names the member below that is used" },
	{ "kafka", F_OBJECT, 0, NULL, offsetof(S, kafka), 0, &kafka_schema, NULL, 0, 0, "type kafka" },
	{ "follow", F_OBJECT, 0, NULL, offsetof(S, follow), 0, &follow_schema, NULL, 0, 0, "type follow" },
	{ "files", F_OBJECT, 0, NULL, offsetof(S, files), 0, &files_schema, NULL, 0, 0, "type files" },
};
#undef S
static const struct schema source_schema = SCHEMA(source_fields, struct tw_config_source);

#define S struct tw_config_limits
static const struct field limits_fields[] = {
	{ "max_record", F_SIZE, 0, "8M", offsetof(S, max_record), 0, NULL, NULL, 0, 0, "largest record" },
	{ "max_inflated", F_SIZE, 0, "16G", offsetof(S, max_inflated), 0, NULL, NULL, 0, 0,
	  "largest decompressed size of one file or message" },
	{ "threads", F_UINT, 0, "0", offsetof(S, threads), 0, NULL, NULL, 0, 1024, "decode threads; 0 = one per core" },
};
#undef S
static const struct schema limits_schema = SCHEMA(limits_fields, struct tw_config_limits);

#define S struct tw_config_log
static const struct field log_fields[] = {
	{ "file", F_STRING, 0, NULL, offsetof(S, file), 0, NULL, NULL, 0, 0, "log file (absent: stderr)" },
	{ "level", F_ENUM, 0, "info", offsetof(S, level), 0, NULL, log_levels, 0, 0, "error, warn, info or debug" },
};
#undef S
static const struct schema log_schema = SCHEMA(log_fields, struct tw_config_log);

#define S struct tw_config
static const struct field top_fields[] = {
	{ "store", F_OBJECT, 1, NULL, offsetof(S, store), 0, &store_schema, NULL, 0, 0, "the store" },
	{ "sources", F_OBJECTS, 1, NULL, offsetof(S, sources), offsetof(S, nsources), &source_schema, NULL, 1, 64,
	  "where events come from" },
	{ "limits", F_OBJECT, 0, "{}", offsetof(S, limits), 0, &limits_schema, NULL, 0, 0, "decoding limits" },
	{ "log", F_OBJECT, 0, "{}", offsetof(S, log), 0, &log_schema, NULL, 0, 0, "logging" },
};
#undef S
static const struct schema top_schema = SCHEMA(top_fields, struct tw_config);

/* Properties trailwatch sets itself from other keys (or must keep: commits are the source's job). */
static const char *const reserved_props[][2] = {
	{ "bootstrap.servers", "kafka.brokers" },
	{ "metadata.broker.list", "kafka.brokers" },
	{ "group.id", "kafka.group" },
	{ "client.id", "kafka.client_id" },
	{ "enable.auto.commit", NULL },
};

/* 1 when a property's value is a secret and must not be written in the file. */
static int secret_key(const char *key)
{
	return strcasestr(key, "password") || strcasestr(key, "secret") || !strcmp(key, "ssl.key.pem") ||
	       !strcmp(key, "sasl.oauthbearer.config");
}

/* ---- the walk ------------------------------------------------------------------------------ */

/* State of one validation. */
struct walk {
	const char *name;   /* the file, for messages */
	char path[200];     /* "$.sources[1].kafka" */
	size_t plen;        /* bytes in path */
	size_t nsecrets;    /* secrets seen */
	struct tw_err *err; /* where the first error goes */
};

static int is_ident(const char *k)
{
	if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_'))
		return 0;
	for (k++; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '_'))
			return 0;
	return 1;
}

/* Appends ".key", "[\"odd.key\"]" or "[i]" to the path; returns the old length for path_pop. */
static size_t path_push(struct walk *w, const char *key, size_t idx)
{
	size_t old = w->plen, room = sizeof w->path - w->plen;
	int n;

	if (!key)
		n = snprintf(w->path + w->plen, room, "[%zu]", idx);
	else if (is_ident(key))
		n = snprintf(w->path + w->plen, room, ".%s", key);
	else
		n = snprintf(w->path + w->plen, room, "[\"%s\"]", key);
	if (n > 0)
		w->plen += (size_t)n < room ? (size_t)n : room - 1;
	return old;
}

static void path_pop(struct walk *w, size_t old)
{
	w->plen = old;
	w->path[old] = '\0';
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "a number";
	case JSON_REAL: return "a number";
	case JSON_TRUE: return "true";
	case JSON_FALSE: return "false";
	case JSON_NULL: return "null";
	}
	return "something else";
}

static enum tw_rc expected(struct walk *w, const char *what, const json_t *v)
{
	return tw_err_set(w->err, TW_EPARSE, "%s: %s: expected %s, got %s", w->name, w->path, what, json_kind(v));
}

static enum tw_rc oom(struct walk *w)
{
	return tw_err_set(w->err, TW_ENOMEM, "%s: out of memory reading %s", w->name, w->path);
}

/* Edit distance of a and b (both short keys), capped at 9. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65], i, j;

	if (la > 64 || lb > 64)
		return 9;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb] < 9 ? row[lb] : 9;
}

/* Parses "123", "64K", "8M", "1G", "2T" (binary; also "64KB", "64KiB", "512B") into bytes. */
static int parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; p++; break;
	case 'm': case 'M': mult = 1ull << 20; p++; break;
	case 'g': case 'G': mult = 1ull << 30; p++; break;
	case 't': case 'T': mult = 1ull << 40; p++; break;
	case 'b': case 'B': break;
	default: return -1;
	}
	if (*p && strcasecmp(p, "b") && !(mult > 1 && !strcasecmp(p, "ib")))
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p)
		memcpy(p, s, n);
	return p;
}

static enum tw_rc walk_object(struct walk *w, const struct schema *sc, const json_t *obj, void *base);

static enum tw_rc read_string(struct walk *w, const json_t *v, char **dst, const char *what)
{
	if (!json_is_string(v))
		return expected(w, what, v);
	if (!json_string_length(v))
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: must not be empty", w->name, w->path);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: contains a NUL character", w->name, w->path);
	if (!(*dst = xstrdup(json_string_value(v))))
		return oom(w);
	return TW_OK;
}

static enum tw_rc read_secret(struct walk *w, const json_t *v, struct tw_secret *s)
{
	static const char what[] = "{\"file\": PATH} or {\"env\": NAME}";
	const char *k;
	json_t *x;
	enum tw_rc rc;

	if (!json_is_object(v) || json_object_size(v) != 1)
		return expected(w, what, v);
	json_object_foreach((json_t *)v, k, x) {
		size_t old = path_push(w, k, 0);
		if (!strcmp(k, "file"))
			s->from = TW_SECRET_FILE;
		else if (!strcmp(k, "env"))
			s->from = TW_SECRET_ENV;
		else {
			rc = tw_err_set(w->err, TW_EPARSE, "%s: unknown key %s (a secret is %s)", w->name, w->path, what);
			path_pop(w, old);
			return rc;
		}
		rc = read_string(w, x, &s->ref, "a string");
		path_pop(w, old);
		if (rc)
			return rc;
	}
	w->nsecrets++;
	return TW_OK;
}

static enum tw_rc read_props(struct walk *w, const json_t *v, struct tw_config_prop **dst, size_t *n)
{
	const char *k;
	json_t *x;
	enum tw_rc rc = TW_OK;

	if (!json_is_object(v))
		return expected(w, "an object", v);
	if (!json_object_size(v))
		return TW_OK;
	if (!(*dst = calloc(json_object_size(v), sizeof **dst)))
		return oom(w);
	json_object_foreach((json_t *)v, k, x) {
		struct tw_config_prop *p = &(*dst)[*n];
		size_t old = path_push(w, k, 0);

		for (size_t i = 0; i < N(reserved_props); i++) {
			if (strcmp(k, reserved_props[i][0]))
				continue;
			if (reserved_props[i][1])
				rc = tw_err_set(w->err, TW_EPARSE, "%s: %s: set by %s, not here", w->name, w->path,
						reserved_props[i][1]);
			else
				rc = tw_err_set(w->err, TW_EPARSE, "%s: %s: not allowed (trailwatch commits offsets itself)",
						w->name, w->path);
			break;
		}
		if (!rc && !(p->key = xstrdup(k)))
			rc = oom(w);
		(*n)++;
		if (!rc && json_is_object(x))
			rc = read_secret(w, x, &p->secret);
		else if (!rc && json_is_string(x) && secret_key(k))
			rc = tw_err_set(w->err, TW_EPARSE,
					"%s: %s: a secret must come from {\"file\": PATH} or {\"env\": NAME}, not the config file",
					w->name, w->path);
		else if (!rc)
			rc = read_string(w, x, &p->value, "a string, {\"file\": PATH} or {\"env\": NAME}");
		path_pop(w, old);
		if (rc)
			return rc;
	}
	return TW_OK;
}

static enum tw_rc read_strings(struct walk *w, const struct field *f, const json_t *v, char ***dst, size_t *n)
{
	size_t i;
	json_t *x;

	if (!json_is_array(v))
		return expected(w, "an array of strings", v);
	if (json_array_size(v) < f->min || json_array_size(v) > f->max)
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: expected %llu to %llu strings, got %zu", w->name, w->path,
				  (unsigned long long)f->min, (unsigned long long)f->max, json_array_size(v));
	if (!json_array_size(v))
		return TW_OK;
	if (!(*dst = calloc(json_array_size(v), sizeof **dst)))
		return oom(w);
	json_array_foreach(v, i, x) {
		size_t old = path_push(w, NULL, i);
		enum tw_rc rc = read_string(w, x, &(*dst)[i], "a string");
		path_pop(w, old);
		if (rc)
			return rc;
		*n = i + 1;
	}
	return TW_OK;
}

static enum tw_rc read_objects(struct walk *w, const struct field *f, const json_t *v, void **dst, size_t *n)
{
	size_t i;
	json_t *x;

	if (!json_is_array(v))
		return expected(w, "an array of objects", v);
	if (json_array_size(v) < f->min || json_array_size(v) > f->max)
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: expected %llu to %llu entries, got %zu", w->name, w->path,
				  (unsigned long long)f->min, (unsigned long long)f->max, json_array_size(v));
	if (!json_array_size(v))
		return TW_OK;
	if (!(*dst = calloc(json_array_size(v), f->sub->size)))
		return oom(w);
	json_array_foreach(v, i, x) {
		size_t old = path_push(w, NULL, i);
		enum tw_rc rc;

		*n = i + 1; /* counted before walking: a half-filled element is freed too */
		rc = walk_object(w, f->sub, x, (char *)*dst + i * f->sub->size);
		path_pop(w, old);
		if (rc)
			return rc;
	}
	return TW_OK;
}

/* Reads v (present or the parsed default) into the field at base. */
static enum tw_rc read_field(struct walk *w, const struct field *f, const json_t *v, void *base)
{
	char *at = (char *)base + f->off;
	size_t *n = (size_t *)((char *)base + f->off_n);

	switch (f->type) {
	case F_STRING:
		return read_string(w, v, (char **)at, "a string");
	case F_SIZE:
		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			*(uint64_t *)at = (uint64_t)json_integer_value(v);
			return TW_OK;
		}
		if (json_is_number(v))
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: a size must be a whole, non-negative number of bytes",
					  w->name, w->path);
		if (!json_is_string(v))
			return expected(w, "a size (a number of bytes or a string like \"64M\")", v);
		if (parse_size(json_string_value(v), (uint64_t *)at))
			return tw_err_set(w->err, TW_EPARSE,
					  "%s: %s: bad size \"%s\": expected a number with an optional K, M, G or T suffix",
					  w->name, w->path, json_string_value(v));
		return TW_OK;
	case F_DURATION: {
		struct tw_err terr;
		if (!json_is_string(v))
			return expected(w, "a duration string (\"90s\", \"5m\", \"400d\")", v);
		if (tw_duration_parse(json_string_value(v), (int64_t *)at, &terr))
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: %s", w->name, w->path, terr.msg);
		return TW_OK;
	}
	case F_UINT:
		if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < f->min ||
		    (uint64_t)json_integer_value(v) > f->max) {
			if (json_is_integer(v))
				return tw_err_set(w->err, TW_EPARSE, "%s: %s: %lld is out of range [%llu, %llu]", w->name,
						  w->path, (long long)json_integer_value(v), (unsigned long long)f->min,
						  (unsigned long long)f->max);
			return expected(w, "an integer", v);
		}
		*(uint64_t *)at = (uint64_t)json_integer_value(v);
		return TW_OK;
	case F_ENUM: {
		char list[160];
		size_t len = 0;
		for (int i = 0; f->choices[i]; i++) {
			if (json_is_string(v) && !strcmp(json_string_value(v), f->choices[i])) {
				*(int *)at = i;
				return TW_OK;
			}
			len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "", f->choices[i]);
			if (len >= sizeof list)
				len = sizeof list - 1;
		}
		if (!json_is_string(v))
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: expected one of %s, got %s", w->name, w->path, list,
					  json_kind(v));
		return tw_err_set(w->err, TW_EPARSE, "%s: %s: \"%s\" is not one of %s", w->name, w->path,
				  json_string_value(v), list);
	}
	case F_STRINGS:
		return read_strings(w, f, v, (char ***)at, n);
	case F_OBJECT:
		return walk_object(w, f->sub, v, at);
	case F_OBJECTS:
		return read_objects(w, f, v, (void **)at, n);
	case F_PROPS:
		return read_props(w, v, (struct tw_config_prop **)at, n);
	}
	return tw_err_set(w->err, TW_EINVAL, "%s: %s: bad schema", w->name, w->path);
}

static enum tw_rc walk_object(struct walk *w, const struct schema *sc, const json_t *obj, void *base)
{
	const char *k;
	json_t *v;
	enum tw_rc rc;
	size_t i;

	if (!json_is_object(obj))
		return expected(w, "an object", obj);
	/* 1. Unknown keys, in document order. */
	json_object_foreach((json_t *)obj, k, v) {
		const char *best = NULL;
		size_t bestd = 3, old;

		for (i = 0; i < sc->nfields; i++) {
			size_t d;
			if (!strcmp(sc->fields[i].key, k))
				break;
			d = edit_distance(sc->fields[i].key, k);
			if (d < bestd && d < strlen(k)) {
				bestd = d;
				best = sc->fields[i].key;
			}
		}
		if (i < sc->nfields)
			continue;
		old = path_push(w, k, 0);
		if (best)
			rc = tw_err_set(w->err, TW_EPARSE, "%s: unknown key %s (did you mean %s?)", w->name, w->path, best);
		else
			rc = tw_err_set(w->err, TW_EPARSE, "%s: unknown key %s", w->name, w->path);
		path_pop(w, old);
		return rc;
	}
	/* 2. The schema's keys, in table order: present, required, defaulted or left zero. */
	for (i = 0; i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		json_t *dv = NULL;
		size_t old = path_push(w, f->key, 0);

		v = json_object_get(obj, f->key);
		if (!v && f->required) {
			rc = tw_err_set(w->err, TW_EPARSE, "%s: missing required key %s", w->name, w->path);
		} else if (!v && f->def) {
			if (f->type == F_OBJECT)
				dv = json_object();
			else if (f->type == F_UINT)
				dv = json_integer(strtoll(f->def, NULL, 10));
			else
				dv = json_string(f->def);
			rc = dv ? read_field(w, f, dv, base) : oom(w);
			json_decref(dv);
		} else if (v) {
			rc = read_field(w, f, v, base);
		} else {
			rc = TW_OK;
		}
		path_pop(w, old);
		if (rc)
			return rc;
	}
	return TW_OK;
}

/* A source's member must match its type; the others must be absent. */
static enum tw_rc source_check(struct walk *w, const json_t *src)
{
	const char *type = json_string_value(json_object_get(src, "type"));

	for (int i = 0; source_types[i]; i++) {
		int present = json_object_get(src, source_types[i]) != NULL;
		if (!strcmp(type, source_types[i]) && !present)
			return tw_err_set(w->err, TW_EPARSE, "%s: %s: type \"%s\" needs a \"%s\" object", w->name,
					  w->path, type, type);
		if (strcmp(type, source_types[i]) && present)
			return tw_err_set(w->err, TW_EPARSE, "%s: %s.%s: not allowed with type \"%s\"", w->name, w->path,
					  source_types[i], type);
	}
	return TW_OK;
}

/* ---- freeing: the same tables ---------------------------------------------------------------- */

static void free_object(const struct schema *sc, void *base)
{
	for (size_t i = 0; i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		char *at = (char *)base + f->off;
		size_t n = f->off_n ? *(size_t *)((char *)base + f->off_n) : 0, j;

		switch (f->type) {
		case F_STRING:
			free(*(char **)at);
			break;
		case F_SIZE: case F_DURATION: case F_UINT: case F_ENUM:
			break;
		case F_STRINGS:
			for (j = 0; j < n && *(char ***)at; j++)
				free((*(char ***)at)[j]);
			free(*(char ***)at);
			break;
		case F_OBJECT:
			free_object(f->sub, at);
			break;
		case F_OBJECTS:
			for (j = 0; j < n && *(void **)at; j++)
				free_object(f->sub, (char *)*(void **)at + j * f->sub->size);
			free(*(void **)at);
			break;
		case F_PROPS:
			for (j = 0; j < n && *(struct tw_config_prop **)at; j++) {
				struct tw_config_prop *p = &(*(struct tw_config_prop **)at)[j];
				free(p->key);
				free(p->value);
				free(p->secret.ref);
			}
			free(*(void **)at);
			break;
		}
	}
}

void tw_config_free(struct tw_config *cfg)
{
	if (!cfg)
		return;
	free_object(&top_schema, cfg);
	free(cfg->path);
	free(cfg);
}

/* ---- loading ---------------------------------------------------------------------------------- */

static enum tw_rc parse_doc(const char *text, size_t n, const char *name, unsigned mode, struct tw_config **out,
			    struct tw_err *err)
{
	struct walk w = { .name = name, .path = "$", .plen = 1, .err = err };
	struct tw_config *cfg;
	json_error_t jerr;
	json_t *doc;
	enum tw_rc rc;

	doc = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return tw_err_set(err, TW_EPARSE, "%s: line %d, column %d: %s", name, jerr.line, jerr.column, jerr.text);
	if (!(cfg = calloc(1, sizeof *cfg)) || !(cfg->path = xstrdup(name))) {
		free(cfg);
		json_decref(doc);
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", name);
	}
	cfg->mode = mode;
	rc = walk_object(&w, &top_schema, doc, cfg);
	for (size_t i = 0; !rc && i < cfg->nsources; i++) {
		size_t old = path_push(&w, "sources", 0);
		path_push(&w, NULL, i);
		rc = source_check(&w, json_array_get(json_object_get(doc, "sources"), i));
		path_pop(&w, old);
	}
	json_decref(doc);
	if (rc) {
		tw_config_free(cfg);
		return rc;
	}
	cfg->nsecrets = w.nsecrets;
	*out = cfg;
	return TW_OK;
}

enum tw_rc tw_config_parse(const char *text, size_t n, const char *name, struct tw_config **out, struct tw_err *err)
{
	return parse_doc(text, n, name, 0, out, err);
}

enum tw_rc tw_config_load(const char *path, struct tw_config **out, struct tw_err *err)
{
	struct stat st;
	char *text = NULL;
	size_t n = 0;
	enum tw_rc rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		rc = tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = tw_err_set(err, TW_EIO, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)TW_CONFIG_MAX_FILE) {
		rc = tw_err_set(err, TW_ELIMIT, "%s: larger than %u bytes", path, TW_CONFIG_MAX_FILE);
		goto out;
	}
	if (!(text = malloc((size_t)st.st_size + 1))) {
		rc = tw_err_set(err, TW_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, text + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = tw_err_set(err, TW_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	rc = parse_doc(text, n, path, (unsigned)st.st_mode, out, err);
out:
	free(text);
	close(fd);
	return rc;
}

/* ---- secrets --------------------------------------------------------------------------------- */

enum tw_rc tw_secret_load(const struct tw_secret *s, char *buf, size_t cap, size_t *len, struct tw_err *err)
{
	size_t n = 0;

	if (!cap)
		return tw_err_set(err, TW_ELIMIT, "secret buffer of 0 bytes");
	buf[0] = '\0';
	if (s->from == TW_SECRET_ENV) {
		const char *v = getenv(s->ref);
		if (!v)
			return tw_err_set(err, TW_ENOENT, "secret from env %s: the variable is not set", s->ref);
		n = strlen(v);
		if (n >= cap)
			return tw_err_set(err, TW_ELIMIT, "secret from env %s: longer than %zu bytes", s->ref, cap - 1);
		memcpy(buf, v, n + 1);
	} else if (s->from == TW_SECRET_FILE) {
		int fd = open(s->ref, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "secret file %s: %s", s->ref,
					  strerror(errno));
		for (;;) {
			ssize_t r = read(fd, buf + n, cap - n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				int e = errno;
				close(fd);
				memset(buf, 0, cap);
				return tw_err_set(err, TW_EIO, "secret file %s: %s", s->ref, strerror(e));
			}
			if (r == 0)
				break;
			n += (size_t)r;
			if (n == cap) {
				close(fd);
				memset(buf, 0, cap);
				return tw_err_set(err, TW_ELIMIT, "secret file %s: longer than %zu bytes", s->ref, cap - 1);
			}
		}
		close(fd);
		if (n && buf[n - 1] == '\n')
			n--;
		if (n && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
	} else {
		return tw_err_set(err, TW_EINVAL, "not a secret");
	}
	if (len)
		*len = n;
	return TW_OK;
}

int tw_secret_available(const struct tw_secret *s)
{
	if (s->from == TW_SECRET_ENV)
		return getenv(s->ref) != NULL;
	if (s->from == TW_SECRET_FILE)
		return access(s->ref, R_OK) == 0;
	return 0;
}

char *tw_secret_describe(const struct tw_secret *s, char *out, size_t outsz)
{
	snprintf(out, outsz, "<from %s %s>", s->from == TW_SECRET_FILE ? "file" : "env", s->ref ? s->ref : "?");
	return out;
}

/* ---- warnings -------------------------------------------------------------------------------- */

/* Calls fn(ctx, secret) for every secret in cfg. */
static void each_secret(const struct tw_config *cfg, void (*fn)(void *ctx, const struct tw_secret *s), void *ctx)
{
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct tw_config_kafka *k = &cfg->sources[i].kafka;
		for (size_t j = 0; j < k->nprops; j++)
			if (k->props[j].secret.from != TW_SECRET_NONE)
				fn(ctx, &k->props[j].secret);
	}
}

/* What secret_warn needs. */
struct warn_ctx {
	void (*warn)(void *ctx, const char *msg); /* the caller's callback */
	void *ctx;                                /* its context */
	size_t n;                                 /* warnings reported */
};

static void secret_warn(void *arg, const struct tw_secret *s)
{
	struct warn_ctx *wc = arg;
	char msg[512];
	struct stat st;

	if (!tw_secret_available(s)) {
		if (s->from == TW_SECRET_ENV)
			snprintf(msg, sizeof msg, "secret from env %s is NOT set", s->ref);
		else
			snprintf(msg, sizeof msg, "secret file %s cannot be read: %s", s->ref, strerror(errno));
		wc->warn(wc->ctx, msg);
		wc->n++;
	}
	if (s->from == TW_SECRET_FILE && !stat(s->ref, &st) && (st.st_mode & S_IROTH)) {
		snprintf(msg, sizeof msg, "secret file %s is readable by every user (mode %04o): chmod o-r %s", s->ref,
			 (unsigned)(st.st_mode & 07777), s->ref);
		wc->warn(wc->ctx, msg);
		wc->n++;
	}
}

size_t tw_config_warnings(const struct tw_config *cfg, void (*warn)(void *ctx, const char *msg), void *ctx)
{
	struct warn_ctx wc = { warn, ctx, 0 };
	char msg[512];

	if (cfg->nsecrets && (cfg->mode & S_IROTH)) {
		snprintf(msg, sizeof msg,
			 "%s is readable by every user (mode %04o) and names %zu secret%s: chmod o-r %s", cfg->path,
			 cfg->mode & 07777, cfg->nsecrets, cfg->nsecrets == 1 ? "" : "s", cfg->path);
		warn(ctx, msg);
		wc.n++;
	}
	each_secret(cfg, secret_warn, &wc);
	return wc.n;
}

/* ---- normalized output ------------------------------------------------------------------------ */

/* "64M" for 64 MiB, "1000" when no binary unit divides. */
static void fmt_size(uint64_t v, char *out, size_t outsz)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && v && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, outsz, "%llu", (unsigned long long)v);
	else
		snprintf(out, outsz, "%llu%c", (unsigned long long)v, units[u]);
}

/* "5m" for 300000, "1500ms"; in the largest unit tw_duration_parse reads back exactly. */
static void fmt_duration(int64_t ms, char *out, size_t outsz)
{
	static const struct { int64_t ms; const char *unit; } units[] = {
		{ 7 * 86400000LL, "w" }, { 86400000LL, "d" }, { 3600000LL, "h" }, { 60000LL, "m" }, { 1000LL, "s" },
	};

	for (size_t i = 0; ms && i < N(units); i++)
		if (ms % units[i].ms == 0) {
			snprintf(out, outsz, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	snprintf(out, outsz, "%lldms", (long long)ms);
}

/* State of one output walk. */
struct emit {
	struct tw_buf *out; /* text output */
	struct walk w;      /* path keeping (w.err gets the first error) */
};

static enum tw_rc text_object(struct emit *e, const struct schema *sc, const void *base, int skip_members);

static enum tw_rc text_line(struct emit *e, const char *value, int quote)
{
	const char *p = e->w.path + 2; /* without "$." */

	return tw_buf_printf(e->out, e->w.err, quote ? "%s = \"%s\"\n" : "%s = %s\n", p, value);
}

static enum tw_rc text_field(struct emit *e, const struct field *f, const void *base)
{
	const char *at = (const char *)base + f->off;
	size_t n = f->off_n ? *(const size_t *)((const char *)base + f->off_n) : 0;
	char v[64];
	enum tw_rc rc = TW_OK;

	switch (f->type) {
	case F_STRING:
		return *(char *const *)at ? text_line(e, *(char *const *)at, 1) : text_line(e, "(none)", 0);
	case F_SIZE:
		fmt_size(*(const uint64_t *)at, v, sizeof v);
		return text_line(e, v, 0);
	case F_DURATION:
		if (!*(const int64_t *)at)
			return text_line(e, f->def ? "0ms" : "(none)", 0);
		fmt_duration(*(const int64_t *)at, v, sizeof v);
		return text_line(e, v, 0);
	case F_UINT:
		snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t *)at);
		return text_line(e, v, 0);
	case F_ENUM:
		return text_line(e, f->choices[*(const int *)at], 0);
	case F_STRINGS:
		for (size_t j = 0; !rc && j < n; j++) {
			size_t old = path_push(&e->w, NULL, j);
			rc = text_line(e, (*(char **const *)at)[j], 1);
			path_pop(&e->w, old);
		}
		return rc;
	case F_OBJECT:
		return text_object(e, f->sub, at, 0);
	case F_OBJECTS:
		for (size_t j = 0; !rc && j < n; j++) {
			size_t old = path_push(&e->w, NULL, j);
			rc = text_object(e, f->sub, (const char *)*(void *const *)at + j * f->sub->size, 1);
			path_pop(&e->w, old);
		}
		return rc;
	case F_PROPS:
		for (size_t j = 0; !rc && j < n; j++) {
			const struct tw_config_prop *p = &(*(struct tw_config_prop *const *)at)[j];
			size_t old = path_push(&e->w, p->key, 0);
			if (p->secret.from != TW_SECRET_NONE) {
				char d[300];
				size_t dl;
				tw_secret_describe(&p->secret, d, sizeof d - 16);
				dl = strlen(d);
				snprintf(d + dl, sizeof d - dl, " (%s)", tw_secret_available(&p->secret) ? "set" : "NOT set");
				rc = text_line(e, d, 0);
			} else {
				rc = text_line(e, p->value, 1);
			}
			path_pop(&e->w, old);
		}
		return rc;
	}
	return TW_OK;
}

/* skip_members: a source, whose kafka/follow/files members are printed only for its type. */
static enum tw_rc text_object(struct emit *e, const struct schema *sc, const void *base, int skip_members)
{
	enum tw_rc rc = TW_OK;

	for (size_t i = 0; !rc && i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		size_t old;

		if (skip_members && sc == &source_schema && f->type == F_OBJECT &&
		    strcmp(f->key, source_types[((const struct tw_config_source *)base)->type]))
			continue;
		old = path_push(&e->w, f->key, 0);
		rc = text_field(e, f, base);
		path_pop(&e->w, old);
	}
	return rc;
}

static json_t *json_object_of(const struct schema *sc, const void *base);

static json_t *json_field(const struct field *f, const void *base)
{
	const char *at = (const char *)base + f->off;
	size_t n = f->off_n ? *(const size_t *)((const char *)base + f->off_n) : 0;
	char v[64];
	json_t *a;

	switch (f->type) {
	case F_STRING:
		return *(char *const *)at ? json_string(*(char *const *)at) : NULL;
	case F_SIZE:
		fmt_size(*(const uint64_t *)at, v, sizeof v);
		return json_string(v);
	case F_DURATION:
		if (!*(const int64_t *)at && !f->def)
			return NULL;
		fmt_duration(*(const int64_t *)at, v, sizeof v);
		return json_string(v);
	case F_UINT:
		return json_integer((json_int_t)*(const uint64_t *)at);
	case F_ENUM:
		return json_string(f->choices[*(const int *)at]);
	case F_STRINGS:
		a = json_array();
		for (size_t j = 0; a && j < n; j++)
			if (json_array_append_new(a, json_string((*(char **const *)at)[j]))) {
				json_decref(a);
				return NULL;
			}
		return a;
	case F_OBJECT:
		return json_object_of(f->sub, at);
	case F_OBJECTS:
		a = json_array();
		for (size_t j = 0; a && j < n; j++)
			if (json_array_append_new(a, json_object_of(f->sub, (const char *)*(void *const *)at + j * f->sub->size))) {
				json_decref(a);
				return NULL;
			}
		return a;
	case F_PROPS:
		a = json_object();
		for (size_t j = 0; a && j < n; j++) {
			const struct tw_config_prop *p = &(*(struct tw_config_prop *const *)at)[j];
			json_t *pv = p->secret.from == TW_SECRET_NONE
					     ? json_string(p->value)
					     : json_pack("{s:s}", p->secret.from == TW_SECRET_FILE ? "file" : "env", p->secret.ref);
			if (json_object_set_new(a, p->key, pv)) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	return NULL;
}

/* Members that may be legitimately absent (NULL from json_field) are left out. */
static json_t *json_object_of(const struct schema *sc, const void *base)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < sc->nfields; i++) {
		const struct field *f = &sc->fields[i];
		json_t *v;

		if (sc == &source_schema && f->type == F_OBJECT &&
		    strcmp(f->key, source_types[((const struct tw_config_source *)base)->type]))
			continue;
		if (f->type == F_STRING && !*(char *const *)((const char *)base + f->off))
			continue;
		if (f->type == F_DURATION && !f->def && !*(const int64_t *)((const char *)base + f->off))
			continue;
		if (f->type == F_PROPS && !*(const size_t *)((const char *)base + f->off_n))
			continue;
		v = json_field(f, base);
		if (!v || json_object_set_new(o, f->key, v)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

enum tw_rc tw_config_format(const struct tw_config *cfg, enum tw_config_format fmt, struct tw_buf *out,
			    struct tw_err *err)
{
	if (fmt == TW_CONFIG_FMT_JSON) {
		json_t *o = json_object_of(&top_schema, cfg);
		char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
		enum tw_rc rc;

		json_decref(o);
		if (!s)
			return tw_err_set(err, TW_ENOMEM, "out of memory formatting the configuration");
		rc = tw_buf_printf(out, err, "%s\n", s);
		free(s);
		return rc;
	} else {
		struct emit e = { .out = out, .w = { .name = cfg->path, .path = "$", .plen = 1, .err = err } };
		return text_object(&e, &top_schema, cfg, 0);
	}
}
