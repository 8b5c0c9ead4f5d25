/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_core_config.c: core/config.c: every error class with its exact message (key
 * paths through arrays and nested objects, unknown keys, wrong types, missing keys, bad sizes and
 * durations, JSON syntax with line and column), defaults, secrets from files and the environment,
 * the warnings, and that the normalized output never holds a secret's value. Expected numbers
 * are worked out by hand in the comments (64M = 64 * 2^20...), not copied from our output. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "tests/helpers/helpers.h"

/* A valid config with one files source; `extra` is spliced in at the top level (", ..." or ""). */
#define MINIMAL(extra) "{\"store\": {\"dir\": \"/tmp/s\"}, \"sources\": [{\"type\": \"files\", " \
		       "\"files\": {\"paths\": [\"a.json\"]}}]" extra "}"

static struct tw_config *parse_ok(const char *text)
{
	struct tw_config *cfg = NULL;
	struct tw_err err;

	tw_err_clear(&err);
	cr_assert_eq(tw_config_parse(text, strlen(text), "c.json", &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_not_null(cfg);
	return cfg;
}

static void parse_bad(const char *text, const char *msg)
{
	struct tw_config *cfg = (struct tw_config *)0x1;
	struct tw_err err;

	tw_err_clear(&err);
	cr_assert_eq(tw_config_parse(text, strlen(text), "c.json", &cfg, &err), TW_EPARSE, "accepted: %s", text);
	cr_assert_str_eq(err.msg, msg);
	cr_assert_eq(cfg, (struct tw_config *)0x1, "*out written on failure");
}

Test(core_config, defaults_fill_every_unset_key)
{
	struct tw_config *cfg = parse_ok(MINIMAL(""));

	cr_assert_str_eq(cfg->store.dir, "/tmp/s");
	cr_assert_eq(cfg->store.seal_bytes, 64ull * 1024 * 1024);
	cr_assert_eq(cfg->store.seal_age_ms, 5 * 60 * 1000);
	cr_assert_eq(cfg->store.retain_ms, 0);
	cr_assert_eq(cfg->nsources, 1);
	cr_assert_eq(cfg->sources[0].type, TW_CONFIG_SRC_FILES);
	cr_assert_eq(cfg->sources[0].files.npaths, 1);
	cr_assert_str_eq(cfg->sources[0].files.paths[0], "a.json");
	cr_assert_eq(cfg->limits.max_record, 8ull << 20);
	cr_assert_eq(cfg->limits.max_inflated, 16ull << 30);
	cr_assert_eq(cfg->limits.threads, 0);
	cr_assert_null(cfg->log.file);
	cr_assert_eq(cfg->log.level, TW_CONFIG_LOG_INFO);
	cr_assert_eq(cfg->nsecrets, 0);
	tw_config_free(cfg);
}

Test(core_config, kafka_source_values_and_defaults)
{
	struct tw_config *cfg = parse_ok(
		"{\"store\": {\"dir\": \"d\", \"seal_size\": 1000, \"seal_age\": \"90s\", \"retain\": \"400d\"},"
		" \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b:9092\", \"group\": \"g\","
		" \"topics\": [\"t1\", \"t2\"], \"properties\": {\"security.protocol\": \"SASL_SSL\","
		" \"sasl.password\": {\"env\": \"PW\"}}}},"
		" {\"type\": \"follow\", \"follow\": {\"path\": \"/in\", \"rescan\": \"1500ms\"}}],"
		" \"limits\": {\"max_record\": \"1K\", \"threads\": 3}, \"log\": {\"level\": \"debug\", \"file\": \"l\"}}");
	const struct tw_config_kafka *k = &cfg->sources[0].kafka;

	cr_assert_eq(cfg->store.seal_bytes, 1000);
	cr_assert_eq(cfg->store.seal_age_ms, 90000);
	cr_assert_eq(cfg->store.retain_ms, 400LL * 86400 * 1000);
	cr_assert_eq(cfg->nsources, 2);
	cr_assert_eq(cfg->sources[0].type, TW_CONFIG_SRC_KAFKA);
	cr_assert_str_eq(k->brokers, "b:9092");
	cr_assert_str_eq(k->group, "g");
	cr_assert_str_eq(k->client_id, "trailwatch");
	cr_assert_eq(k->ntopics, 2);
	cr_assert_str_eq(k->topics[1], "t2");
	cr_assert_eq(k->nprops, 2);
	cr_assert_str_eq(k->props[0].key, "security.protocol");
	cr_assert_str_eq(k->props[0].value, "SASL_SSL");
	cr_assert_eq(k->props[0].secret.from, TW_SECRET_NONE);
	cr_assert_str_eq(k->props[1].key, "sasl.password");
	cr_assert_null(k->props[1].value);
	cr_assert_eq(k->props[1].secret.from, TW_SECRET_ENV);
	cr_assert_str_eq(k->props[1].secret.ref, "PW");
	cr_assert_null(k->dead_letter_topic);
	cr_assert_eq(k->batch_max_events, 4096);
	cr_assert_eq(k->batch_max_bytes, 16ull << 20);
	cr_assert_eq(k->batch_max_wait_ms, 500);
	cr_assert_eq(cfg->sources[1].type, TW_CONFIG_SRC_FOLLOW);
	cr_assert_str_eq(cfg->sources[1].follow.path, "/in");
	cr_assert_eq(cfg->sources[1].follow.rescan_ms, 1500);
	cr_assert_eq(cfg->limits.max_record, 1024);
	cr_assert_eq(cfg->limits.threads, 3);
	cr_assert_eq(cfg->log.level, TW_CONFIG_LOG_DEBUG);
	cr_assert_str_eq(cfg->log.file, "l");
	cr_assert_eq(cfg->nsecrets, 1);
	tw_config_free(cfg);
}

Test(core_config, syntax_error_names_line_and_column)
{
	/* The '}' after the trailing comma is on line 4, column 3. */
	parse_bad("{\n  \"store\": {\n    \"dir\": \"x\",\n  }\n}",
		  "c.json: line 4, column 3: string or '}' expected near '}'");
	parse_bad("{\"store\": {}, \"store\": {}}", "c.json: line 1, column 21: duplicate object key near '\"store\"'");
}

Test(core_config, wrong_types_name_the_key_path)
{
	parse_bad("[]", "c.json: $: expected an object, got an array");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"files\", \"files\": {\"paths\": [\"a\"]}},"
		  " {\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b\", \"group\": \"g\", \"topics\": 5}}]}",
		  "c.json: $.sources[1].kafka.topics: expected an array of strings, got a number");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b\","
		  " \"group\": \"g\", \"topics\": [\"a\", {}]}}]}",
		  "c.json: $.sources[0].kafka.topics[1]: expected a string, got an object");
	parse_bad("{\"store\": {\"dir\": 7}}", "c.json: $.store.dir: expected a string, got a number");
	parse_bad("{\"store\": \"d\"}", "c.json: $.store: expected an object, got a string");
	parse_bad("{\"store\": {\"dir\": \"\"}}", "c.json: $.store.dir: must not be empty");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": {}}",
		  "c.json: $.sources: expected an array of objects, got an object");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [true]}",
		  "c.json: $.sources[0]: expected an object, got true");
	parse_bad(MINIMAL(", \"limits\": {\"threads\": \"4\"}"), "c.json: $.limits.threads: expected an integer, got a string");
	parse_bad(MINIMAL(", \"limits\": {\"threads\": 5000}"), "c.json: $.limits.threads: 5000 is out of range [0, 1024]");
	parse_bad(MINIMAL(", \"log\": {\"level\": \"loud\"}"),
		  "c.json: $.log.level: \"loud\" is not one of \"error\", \"warn\", \"info\", \"debug\"");
	parse_bad(MINIMAL(", \"log\": {\"level\": null}"),
		  "c.json: $.log.level: expected one of \"error\", \"warn\", \"info\", \"debug\", got null");
}

Test(core_config, unknown_keys_are_errors_with_a_suggestion)
{
	parse_bad("{\"store\": {\"dri\": \"d\"}}", "c.json: unknown key $.store.dri (did you mean dir?)");
	parse_bad(MINIMAL(", \"bogus_section\": {}"), "c.json: unknown key $.bogus_section");
	parse_bad(MINIMAL(", \"limits\": {\"max_records\": 1}"),
		  "c.json: unknown key $.limits.max_records (did you mean max_record?)");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"follow\", \"follow\": {\"path\": \"p\","
		  " \"resacn\": \"1s\"}}]}",
		  "c.json: unknown key $.sources[0].follow.resacn (did you mean rescan?)");
	/* Keys that are not identifiers are quoted in the path. */
	parse_bad("{\"store\": {\"dir\": \"d\", \"a.b\": 1}}", "c.json: unknown key $.store[\"a.b\"]");
}

Test(core_config, missing_required_keys)
{
	parse_bad("{}", "c.json: missing required key $.store");
	parse_bad("{\"store\": {}}", "c.json: missing required key $.store.dir");
	parse_bad("{\"store\": {\"dir\": \"d\"}}", "c.json: missing required key $.sources");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": []}", "c.json: $.sources: expected 1 to 64 entries, got 0");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b\","
		  " \"topics\": [\"t\"]}}]}",
		  "c.json: missing required key $.sources[0].kafka.group");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"files\": {\"paths\": [\"a\"]}}]}",
		  "c.json: missing required key $.sources[0].type");
}

Test(core_config, source_member_must_match_its_type)
{
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafka\"}]}",
		  "c.json: $.sources[0]: type \"kafka\" needs a \"kafka\" object");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"files\", \"files\": {\"paths\": [\"a\"]},"
		  " \"follow\": {\"path\": \"p\"}}]}",
		  "c.json: $.sources[0].follow: not allowed with type \"files\"");
	parse_bad("{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafak\"}]}",
		  "c.json: $.sources[0].type: \"kafak\" is not one of \"kafka\", \"follow\", \"files\"");
}

Test(core_config, bad_sizes_and_durations)
{
	parse_bad("{\"store\": {\"dir\": \"d\", \"seal_size\": \"64Q\"}}",
		  "c.json: $.store.seal_size: bad size \"64Q\": expected a number with an optional K, M, G or T suffix");
	parse_bad("{\"store\": {\"dir\": \"d\", \"seal_size\": -1}}",
		  "c.json: $.store.seal_size: a size must be a whole, non-negative number of bytes");
	parse_bad("{\"store\": {\"dir\": \"d\", \"seal_size\": 1.5}}",
		  "c.json: $.store.seal_size: a size must be a whole, non-negative number of bytes");
	parse_bad("{\"store\": {\"dir\": \"d\", \"seal_size\": []}}",
		  "c.json: $.store.seal_size: expected a size (a number of bytes or a string like \"64M\"), got an array");
	parse_bad("{\"store\": {\"dir\": \"d\", \"seal_age\": \"5x\"}}",
		  "c.json: $.store.seal_age: bad duration \"5x\": unit must be ms, s, m, h, d or w");
	parse_bad("{\"store\": {\"dir\": \"d\", \"retain\": 400}}",
		  "c.json: $.store.retain: expected a duration string (\"90s\", \"5m\", \"400d\"), got a number");
}

Test(core_config, secret_properties_must_not_be_literal)
{
	const char *pre = "{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b\","
			  " \"group\": \"g\", \"topics\": [\"t\"], \"properties\": ";
	char text[512];

	snprintf(text, sizeof text, "%s{\"sasl.password\": \"hunter2\"}}}]}", pre);
	parse_bad(text, "c.json: $.sources[0].kafka.properties[\"sasl.password\"]: a secret must come from "
			"{\"file\": PATH} or {\"env\": NAME}, not the config file");
	snprintf(text, sizeof text, "%s{\"ssl.key.password\": {\"vault\": \"x\"}}}}]}", pre);
	parse_bad(text, "c.json: unknown key $.sources[0].kafka.properties[\"ssl.key.password\"].vault "
			"(a secret is {\"file\": PATH} or {\"env\": NAME})");
	snprintf(text, sizeof text, "%s{\"sasl.password\": {\"env\": 3}}}}]}", pre);
	parse_bad(text, "c.json: $.sources[0].kafka.properties[\"sasl.password\"].env: expected a string, got a number");
	snprintf(text, sizeof text, "%s{\"fetch.max.bytes\": 5}}}]}", pre);
	parse_bad(text, "c.json: $.sources[0].kafka.properties[\"fetch.max.bytes\"]: expected a string, "
			"{\"file\": PATH} or {\"env\": NAME}, got a number");
	snprintf(text, sizeof text, "%s{\"group.id\": \"x\"}}}]}", pre);
	parse_bad(text, "c.json: $.sources[0].kafka.properties[\"group.id\"]: set by kafka.group, not here");
	snprintf(text, sizeof text, "%s{\"enable.auto.commit\": \"true\"}}}]}", pre);
	parse_bad(text, "c.json: $.sources[0].kafka.properties[\"enable.auto.commit\"]: not allowed "
			"(trailwatch commits offsets itself)");
}

Test(core_config, secret_from_env)
{
	struct tw_secret s = { TW_SECRET_ENV, (char *)"TW_TEST_CFG_PW" };
	char buf[64], d[64];
	size_t n = 0;
	struct tw_err err;

	unsetenv("TW_TEST_CFG_PW");
	cr_assert_eq(tw_secret_available(&s), 0);
	cr_assert_eq(tw_secret_load(&s, buf, sizeof buf, &n, &err), TW_ENOENT);
	cr_assert_str_eq(err.msg, "secret from env TW_TEST_CFG_PW: the variable is not set");
	setenv("TW_TEST_CFG_PW", "s3cr3t-value", 1);
	cr_assert_eq(tw_secret_available(&s), 1);
	cr_assert_eq(tw_secret_load(&s, buf, sizeof buf, &n, &err), TW_OK);
	cr_assert_str_eq(buf, "s3cr3t-value");
	cr_assert_eq(n, 12);
	/* Too long for the buffer: an error that does not quote the value. */
	cr_assert_eq(tw_secret_load(&s, buf, 5, &n, &err), TW_ELIMIT);
	cr_assert_null(strstr(err.msg, "s3cr"));
	cr_assert_str_eq(tw_secret_describe(&s, d, sizeof d), "<from env TW_TEST_CFG_PW>");
}

Test(core_config, secret_from_file)
{
	char *dir = tw_test_tmpdir();
	char *path = tw_test_write_str(dir, "pw", "file-secret-42\n");
	char *missing = tw_test_join(dir, "nope");
	struct tw_secret s = { TW_SECRET_FILE, path };
	char buf[64], d[256], want[256];
	size_t n = 0;
	struct tw_err err;

	cr_assert_eq(tw_secret_load(&s, buf, sizeof buf, &n, &err), TW_OK, "%s", err.msg);
	cr_assert_str_eq(buf, "file-secret-42"); /* the trailing newline is dropped */
	cr_assert_eq(n, 14);
	cr_assert_eq(tw_secret_load(&s, buf, 8, &n, &err), TW_ELIMIT);
	cr_assert_null(strstr(err.msg, "file-sec"));
	cr_assert_eq(buf[0], '\0', "buffer not wiped after a failure");
	snprintf(want, sizeof want, "<from file %s>", path);
	cr_assert_str_eq(tw_secret_describe(&s, d, sizeof d), want);
	s.ref = missing;
	cr_assert_eq(tw_secret_available(&s), 0);
	cr_assert_eq(tw_secret_load(&s, buf, sizeof buf, &n, &err), TW_ENOENT);
	snprintf(want, sizeof want, "secret file %s: No such file or directory", missing);
	cr_assert_str_eq(err.msg, want);
	free(missing);
	free(path);
	tw_test_tmpdir_free(dir);
}

/* Collects warnings into one string. */
static void collect(void *ctx, const char *msg)
{
	char *all = ctx;
	size_t n = strlen(all);
	snprintf(all + n, 4096 - n, "%s\n", msg);
}

Test(core_config, warns_when_a_config_naming_secrets_is_world_readable)
{
	char *dir = tw_test_tmpdir();
	char *pwfile = tw_test_write_str(dir, "pw", "x\n");
	char text[1024], want[512];
	char *path, *all = calloc(1, 4096);
	struct tw_config *cfg = NULL;
	struct tw_err err;

	cr_assert_not_null(all);
	snprintf(text, sizeof text,
		 "{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b\","
		 " \"group\": \"g\", \"topics\": [\"t\"], \"properties\": {\"sasl.password\": {\"file\": \"%s\"}}}}]}",
		 pwfile);
	path = tw_test_write_str(dir, "c.json", text);
	cr_assert_eq(chmod(pwfile, 0600), 0);

	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(tw_config_load(path, &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(cfg->mode & 0777, 0644);
	cr_assert_eq(tw_config_warnings(cfg, collect, all), 1, "%s", all);
	snprintf(want, sizeof want, "%s is readable by every user (mode 0644) and names 1 secret: chmod o-r %s\n", path,
		 path);
	cr_assert_str_eq(all, want);
	tw_config_free(cfg);

	/* Not world-readable: no warning. */
	all[0] = '\0';
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(tw_config_load(path, &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_config_warnings(cfg, collect, all), 0, "%s", all);
	tw_config_free(cfg);

	/* The secret file itself world-readable. */
	cr_assert_eq(chmod(pwfile, 0604), 0);
	cr_assert_eq(tw_config_load(path, &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_config_warnings(cfg, collect, all), 1, "%s", all);
	snprintf(want, sizeof want, "secret file %s is readable by every user (mode 0604): chmod o-r %s\n", pwfile, pwfile);
	cr_assert_str_eq(all, want);
	tw_config_free(cfg);

	/* A world-readable config without secrets is fine. */
	all[0] = '\0';
	free(path);
	path = tw_test_write_str(dir, "plain.json", MINIMAL(""));
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(tw_config_load(path, &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(tw_config_warnings(cfg, collect, all), 0, "%s", all);
	tw_config_free(cfg);

	free(all);
	free(path);
	free(pwfile);
	tw_test_tmpdir_free(dir);
}

Test(core_config, warns_when_a_secret_env_is_not_set)
{
	char all[4096] = "";
	struct tw_config *cfg = parse_ok(
		"{\"store\": {\"dir\": \"d\"}, \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b\","
		" \"group\": \"g\", \"topics\": [\"t\"], \"properties\": {\"sasl.password\": {\"env\": \"TW_TEST_UNSET_PW\"}}}}]}");

	unsetenv("TW_TEST_UNSET_PW");
	cr_assert_eq(tw_config_warnings(cfg, collect, all), 1);
	cr_assert_str_eq(all, "secret from env TW_TEST_UNSET_PW is NOT set\n");
	tw_config_free(cfg);
}

Test(core_config, load_errors)
{
	char *dir = tw_test_tmpdir();
	char *missing = tw_test_join(dir, "none.json");
	char *bad = tw_test_write_str(dir, "bad.json", "{\"store\": {\"dir\": \"d\", \"seal_size\": \"1X\"}}");
	struct tw_config *cfg = NULL;
	struct tw_err err;
	char want[512];

	cr_assert_eq(tw_config_load(missing, &cfg, &err), TW_ENOENT);
	snprintf(want, sizeof want, "%s: No such file or directory", missing);
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(tw_config_load(bad, &cfg, &err), TW_EPARSE);
	snprintf(want, sizeof want, "%s: $.store.seal_size: bad size \"1X\": expected a number with an optional K, M, G or T suffix", bad);
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(tw_config_load(dir, &cfg, &err), TW_EIO);
	cr_assert_null(cfg);
	free(missing);
	free(bad);
	tw_test_tmpdir_free(dir);
}

Test(core_config, normalized_output_names_secrets_and_round_trips)
{
	struct tw_config *cfg, *again;
	struct tw_buf text, json, text2;
	struct tw_err err;

	setenv("TW_TEST_RT_PW", "never-print-me", 1);
	cfg = parse_ok("{\"store\": {\"dir\": \"d\", \"seal_size\": 1048576, \"seal_age\": \"120s\"},"
		       " \"sources\": [{\"type\": \"kafka\", \"kafka\": {\"brokers\": \"b\", \"group\": \"g\","
		       " \"topics\": [\"t\"], \"properties\": {\"sasl.password\": {\"env\": \"TW_TEST_RT_PW\"}}}}]}");
	tw_buf_init(&text, 1 << 20);
	tw_buf_init(&json, 1 << 20);
	tw_buf_init(&text2, 1 << 20);
	cr_assert_eq(tw_config_format(cfg, TW_CONFIG_FMT_TEXT, &text, &err), TW_OK);
	cr_assert_eq(tw_config_format(cfg, TW_CONFIG_FMT_JSON, &json, &err), TW_OK);
	tw_buf_cstr(&text);
	tw_buf_cstr(&json);
	/* 1048576 = 1M; 120s = 2m (the largest exact unit). */
	cr_assert(tw_test_contains(text.p, text.n, "store.seal_size = 1M\n"), "%s", text.p);
	cr_assert(tw_test_contains(text.p, text.n, "store.seal_age = 2m\n"), "%s", text.p);
	cr_assert(tw_test_contains(text.p, text.n, "store.retain = (none)\n"), "%s", text.p);
	cr_assert(tw_test_contains(text.p, text.n, "sources[0].kafka.batch_max_wait = 500ms\n"), "%s", text.p);
	cr_assert(tw_test_contains(text.p, text.n,
				   "sources[0].kafka.properties[\"sasl.password\"] = <from env TW_TEST_RT_PW> (set)\n"),
		  "%s", text.p);
	cr_assert(tw_test_contains(json.p, json.n, "\"env\": \"TW_TEST_RT_PW\""), "%s", json.p);
	cr_assert(!tw_test_contains(text.p, text.n, "never-print-me"));
	cr_assert(!tw_test_contains(json.p, json.n, "never-print-me"));

	/* The JSON output is a valid config with the same settings. */
	again = parse_ok(json.p);
	cr_assert_eq(tw_config_format(again, TW_CONFIG_FMT_TEXT, &text2, &err), TW_OK);
	tw_buf_cstr(&text2);
	cr_assert_str_eq(text2.p, text.p);
	cr_assert_eq(again->store.seal_bytes, 1u << 20);
	tw_config_free(again);
	tw_config_free(cfg);
	tw_buf_free(&text);
	tw_buf_free(&json);
	tw_buf_free(&text2);
}

Test(core_config, sample_config_validates)
{
	char path[4096];
	struct tw_config *cfg = NULL;
	struct tw_err err;

	snprintf(path, sizeof path, "%s/samples/config/trailwatch.json", tw_test_src());
	cr_assert_eq(tw_config_load(path, &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(cfg->nsources, 2);
	cr_assert_eq(cfg->sources[0].type, TW_CONFIG_SRC_KAFKA);
	cr_assert_eq(cfg->nsecrets, 2); /* the Kafka and the SMTP passwords */
	cr_assert_eq(cfg->store.retain_ms, 400LL * 86400000);
	tw_config_free(cfg);
}
