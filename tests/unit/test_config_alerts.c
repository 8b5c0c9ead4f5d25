/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_config_alerts.c: the alerting sections of the configuration (metrics, rules,
 * alarms, cis_alarms, notifier) in core/config.c: every default, the new value types (numbers,
 * booleans, name=value objects, filter policies kept as JSON text, secrets), each type and
 * cross-check error with its key path, the normalized output's round trip, and the sample.
 * Expected values come from the task's specification and by hand (4h = 4 * 3600 * 1000 ms, the
 * sorted compact JSON written out key by key), not from our own output. Inputs are written with
 * ' for " (see Q) to keep them readable. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alerts/alarm.h"
#include "alerts/filter.h"
#include "alerts/notify.h"
#include "core/config.h"
#include "tests/helpers/helpers.h"

/* A valid config with one files source; `extra` is spliced in at the top level (", ..." or ""). */
#define MINIMAL(extra) "{'store': {'dir': '/tmp/s'}, 'sources': [{'type': 'files', " \
		       "'files': {'paths': ['a.json']}}]" extra "}"
/* A notifier with the topics "security" and "ops" and no subscriptions. */
#define TOPICS "'notifier': {'topics': [{'name': 'security'}, {'name': 'ops'}]}"

/* text with every ' turned into " (owned). */
static char *q(const char *text)
{
	char *s = strdup(text);

	cr_assert_not_null(s);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	return s;
}

static struct tw_config *parse_ok(const char *text)
{
	struct tw_config *cfg = NULL;
	struct tw_err err;
	char *t = q(text);

	tw_err_clear(&err);
	cr_assert_eq(tw_config_parse(t, strlen(t), "c.json", &cfg, &err), TW_OK, "%s\n%s", err.msg, t);
	cr_assert_not_null(cfg);
	free(t);
	return cfg;
}

static void parse_bad(const char *text, const char *msg)
{
	struct tw_config *cfg = (struct tw_config *)0x1;
	struct tw_err err;
	char *t = q(text);

	tw_err_clear(&err);
	cr_assert_eq(tw_config_parse(t, strlen(t), "c.json", &cfg, &err), TW_EPARSE, "accepted: %s (%s)", t, err.msg);
	cr_assert_str_eq(err.msg, msg);
	cr_assert_eq(cfg, (struct tw_config *)0x1, "*out written on failure");
	free(t);
}

Test(config_alerts, defaults_of_every_alerting_section)
{
	struct tw_config *cfg = parse_ok(MINIMAL(""));

	cr_assert_eq(cfg->metrics.period_ms, 60 * 1000);
	cr_assert_eq(cfg->metrics.lateness_ms, 5 * 60 * 1000);
	cr_assert_eq(cfg->metrics.max_values, 1000);
	cr_assert_eq(cfg->metrics.cis, 1);
	cr_assert_eq(cfg->metrics.nfilters, 0);
	cr_assert_null(cfg->metrics.filters);
	cr_assert_eq(cfg->nrules, 0);
	cr_assert_null(cfg->rules);
	cr_assert_eq(cfg->nalarms, 0);
	cr_assert_null(cfg->alarms);
	cr_assert_eq(cfg->cis_alarms.enabled, 0);
	cr_assert_eq(cfg->cis_alarms.nactions, 1);
	cr_assert_str_eq(cfg->cis_alarms.actions[0], "alarms");
	cr_assert_str_eq(cfg->cis_alarms.severity, "high");
	cr_assert_eq(cfg->notifier.present, 0);
	cr_assert_null(cfg->notifier.state_dir);
	cr_assert_eq(cfg->notifier.workers, 2);
	cr_assert_eq(cfg->notifier.ngroup_by, 1);
	cr_assert_str_eq(cfg->notifier.group_by[0], "alarm");
	cr_assert_eq(cfg->notifier.group_wait_ms, 30 * 1000);
	cr_assert_eq(cfg->notifier.group_interval_ms, 5 * 60 * 1000);
	cr_assert_eq(cfg->notifier.repeat_interval_ms, 4LL * 3600 * 1000);
	cr_assert_eq(cfg->notifier.ntopics, 0);
	cr_assert_eq(cfg->notifier.nsubscriptions, 0);
	cr_assert_eq(cfg->nsecrets, 0);
	tw_config_free(cfg);

	/* An empty notifier section is present, with the same defaults. */
	cfg = parse_ok(MINIMAL(", 'notifier': {}"));
	cr_assert_eq(cfg->notifier.present, 1);
	cr_assert_eq(cfg->notifier.workers, 2);
	cr_assert_eq(cfg->notifier.repeat_interval_ms, 4LL * 3600 * 1000);
	tw_config_free(cfg);
}

Test(config_alerts, metric_filters_values_and_defaults)
{
	struct tw_config *cfg = parse_ok(MINIMAL(
		", 'metrics': {'period': '30s', 'lateness': '2m', 'max_values': 7, 'cis': false, 'filters': ["
		"{'name': 'all', 'pattern': ''},"
		"{'name': 'bytes', 'pattern': '{ $.bytes > 0 }', 'value': '$.bytes', 'default': 0.5},"
		"{'name': 'denied', 'pattern': '{ $.errorCode = AccessDenied }', 'value': '-2.5e3',"
		" 'dimensions': ['$.userIdentity.arn', '$.eventSource', '$.awsRegion']}]}"));
	const struct tw_config_metric_filter *f = cfg->metrics.filters;

	cr_assert_eq(cfg->metrics.period_ms, 30000);
	cr_assert_eq(cfg->metrics.lateness_ms, 120000);
	cr_assert_eq(cfg->metrics.max_values, 7);
	cr_assert_eq(cfg->metrics.cis, 0);
	cr_assert_eq(cfg->metrics.nfilters, 3);
	cr_assert_str_eq(f[0].name, "all");
	cr_assert_str_eq(f[0].pattern, ""); /* "" matches every event: allowed here only */
	cr_assert_str_eq(f[0].value, "1");
	cr_assert_eq(f[0].has_default, 0);
	cr_assert_eq(f[0].ndimensions, 0);
	cr_assert_str_eq(f[1].value, "$.bytes");
	cr_assert_eq(f[1].has_default, 1);
	cr_assert_eq(f[1].default_value, 0.5);
	cr_assert_str_eq(f[2].value, "-2.5e3");
	cr_assert_eq(f[2].ndimensions, 3);
	cr_assert_str_eq(f[2].dimensions[0], "$.userIdentity.arn");
	cr_assert_str_eq(f[2].dimensions[2], "$.awsRegion");
	tw_config_free(cfg);
}

Test(config_alerts, comparison_and_missing_names_in_their_documented_order)
{
	static const char *const cmp[] = {
		"GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold",
		"LessThanLowerOrGreaterThanUpperThreshold", "GreaterThanUpperThreshold", "LessThanLowerThreshold",
	};
	static const char *const missing[] = { "missing", "notBreaching", "breaching", "ignore" };
	char text[1024];

	for (int i = 0; i < 7; i++)
		cr_assert_str_eq(tw_config_comparisons[i], cmp[i]);
	cr_assert_null(tw_config_comparisons[7]);
	for (int i = 0; i < 4; i++)
		cr_assert_str_eq(tw_config_missing[i], missing[i]);
	cr_assert_null(tw_config_missing[4]);
	/* Each name parses to its index (a threshold for the first four, the band for the others). */
	for (int i = 0; i < 7; i++) {
		struct tw_config *cfg;
		snprintf(text, sizeof text,
			 MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'comparison': '%s'%s, 'treat_missing_data': '%s'}]"),
			 cmp[i], i < 4 ? ", 'threshold': 1" : "", missing[i % 4]);
		cfg = parse_ok(text);
		cr_assert_eq(cfg->alarms[0].comparison, i);
		cr_assert_eq(cfg->alarms[0].missing, i % 4);
		cr_assert_eq(cfg->alarms[0].has_threshold, i < 4);
		tw_config_free(cfg);
	}
}

Test(config_alerts, alarm_values_and_defaults)
{
	struct tw_config *cfg = parse_ok(MINIMAL(
		", 'alarms': ["
		"{'name': 'plain', 'metric': 'm', 'threshold': 1},"
		"{'name': 'full', 'description': 'd', 'metric': 'AccessDenied', 'dimensions': {'account': '123456789012',"
		" 'region': 'eu-west-1'}, 'statistic': 'Average', 'period': '10m', 'evaluation_periods': 5,"
		" 'datapoints_to_alarm': 3, 'threshold': -0.25, 'comparison': 'LessThanThreshold',"
		" 'treat_missing_data': 'breaching', 'alarm_actions': ['alarms'], 'ok_actions': ['alarms'],"
		" 'insufficient_data_actions': ['alarms'], 'actions_enabled': false, 'severity': 'low',"
		" 'labels': {'team': 'secops', 'runbook': 'https://wiki/x=y'}},"
		"{'name': 'n3', 'metric': 'm', 'threshold': 1e300, 'evaluation_periods': 3},"
		"{'name': 'band', 'metric': 'anomalies', 'comparison': 'GreaterThanUpperThreshold', 'band': 3.5},"
		"{'name': 'both', 'rule': 'ALARM(plain) OR ALARM(full)', 'alarm_actions': ['alarms']}]"));
	const struct tw_config_alarm *a = cfg->alarms;

	cr_assert_eq(cfg->nalarms, 5);
	/* plain: every default */
	cr_assert_str_eq(a[0].name, "plain");
	cr_assert_null(a[0].description);
	cr_assert_str_eq(a[0].metric, "m");
	cr_assert_eq(a[0].ndimensions, 0);
	cr_assert_str_eq(a[0].statistic, "Sum");
	cr_assert_eq(a[0].period_ms, 5 * 60 * 1000);
	cr_assert_eq(a[0].evaluation_periods, 1);
	cr_assert_eq(a[0].datapoints_to_alarm, 1);
	cr_assert_eq(a[0].has_threshold, 1);
	cr_assert_eq(a[0].threshold, 1.0);
	cr_assert_eq(a[0].comparison, 0);
	cr_assert_eq(a[0].band, 2.0);
	cr_assert_eq(a[0].missing, 0);
	cr_assert_null(a[0].rule);
	cr_assert_eq(a[0].nalarm_actions + a[0].nok_actions + a[0].ninsufficient_actions, 0);
	cr_assert_eq(a[0].actions_enabled, 1);
	cr_assert_str_eq(a[0].severity, "medium");
	cr_assert_eq(a[0].nlabels, 0);
	/* full */
	cr_assert_str_eq(a[1].description, "d");
	cr_assert_eq(a[1].ndimensions, 2);
	cr_assert_str_eq(a[1].dimensions[0], "account=123456789012");
	cr_assert_str_eq(a[1].dimensions[1], "region=eu-west-1");
	cr_assert_str_eq(a[1].statistic, "Average");
	cr_assert_eq(a[1].period_ms, 600000);
	cr_assert_eq(a[1].evaluation_periods, 5);
	cr_assert_eq(a[1].datapoints_to_alarm, 3);
	cr_assert_eq(a[1].threshold, -0.25);
	cr_assert_eq(a[1].comparison, 2);
	cr_assert_eq(a[1].missing, 2);
	cr_assert_eq(a[1].nalarm_actions, 1);
	cr_assert_str_eq(a[1].alarm_actions[0], "alarms");
	cr_assert_eq(a[1].nok_actions, 1);
	cr_assert_eq(a[1].ninsufficient_actions, 1);
	cr_assert_str_eq(a[1].insufficient_actions[0], "alarms");
	cr_assert_eq(a[1].actions_enabled, 0);
	cr_assert_str_eq(a[1].severity, "low");
	cr_assert_eq(a[1].nlabels, 2);
	cr_assert_str_eq(a[1].labels[0], "team=secops");
	cr_assert_str_eq(a[1].labels[1], "runbook=https://wiki/x=y"); /* split at the first '=' */
	/* datapoints_to_alarm defaults to evaluation_periods */
	cr_assert_eq(a[2].evaluation_periods, 3);
	cr_assert_eq(a[2].datapoints_to_alarm, 3);
	cr_assert_eq(a[2].threshold, 1e300);
	/* band comparisons need no threshold */
	cr_assert_eq(a[3].has_threshold, 0);
	cr_assert_eq(a[3].comparison, 5);
	cr_assert_eq(a[3].band, 3.5);
	/* composite */
	cr_assert_str_eq(a[4].rule, "ALARM(plain) OR ALARM(full)");
	cr_assert_null(a[4].metric);
	cr_assert_eq(a[4].has_threshold, 0);
	tw_config_free(cfg);
}

Test(config_alerts, rules_and_cis_alarms)
{
	struct tw_config *cfg = parse_ok(MINIMAL(
		", 'rules': [{'name': 'stop', 'pattern': '{ $.eventName = StopLogging }', 'topic': 'security'},"
		" {'name': 'del', 'pattern': '{ $.eventName = DeleteTrail }', 'topic': 'ops', 'severity': 'critical'}],"
		" 'cis_alarms': {'enabled': true, 'actions': ['security', 'ops'], 'severity': 'medium'}, " TOPICS));

	cr_assert_eq(cfg->nrules, 2);
	cr_assert_str_eq(cfg->rules[0].name, "stop");
	cr_assert_str_eq(cfg->rules[0].pattern, "{ $.eventName = StopLogging }");
	cr_assert_str_eq(cfg->rules[0].topic, "security");
	cr_assert_str_eq(cfg->rules[0].severity, "high");
	cr_assert_str_eq(cfg->rules[1].severity, "critical");
	cr_assert_eq(cfg->cis_alarms.enabled, 1);
	cr_assert_eq(cfg->cis_alarms.nactions, 2);
	cr_assert_str_eq(cfg->cis_alarms.actions[1], "ops");
	cr_assert_str_eq(cfg->cis_alarms.severity, "medium");
	cr_assert_eq(cfg->notifier.present, 1);
	cr_assert_eq(cfg->notifier.ntopics, 2);
	tw_config_free(cfg);
}

Test(config_alerts, notifier_values_and_defaults)
{
	struct tw_config *cfg = parse_ok(MINIMAL(
		", 'notifier': {'state_dir': '/var/n', 'workers': 8, 'group_by': ['alarm', 'severity'],"
		" 'group_wait': '10s', 'group_interval': '1m', 'repeat_interval': '0s',"
		" 'topics': [{'name': 'security', 'display_name': 'Security'}, {'name': 'a-b_C9'}],"
		" 'subscriptions': ["
		"{'topic': 'security', 'protocol': 'email', 'endpoint': 'x@example.com',"
		" 'smtp': {'url': 'smtps://mail:465', 'from': 'tw@example.com', 'to': ['a@example.com', 'b@example.com'],"
		" 'user': 'tw', 'password': {'file': '/etc/tw/smtp.pw'}, 'starttls': 'opportunistic',"
		" 'ca_file': '/etc/ca.pem', 'insecure': true}},"
		"{'name': 'hook', 'topic': 'a-b_C9', 'protocol': 'https', 'endpoint': 'https://h/x',"
		" 'filter_policy': {'severity': ['high']}, 'http': {'headers': ['X-A: 1'], 'insecure': true},"
		" 'connect_timeout': '2s', 'timeout': '5s',"
		" 'retry': {'num_retries': 10, 'num_no_delay': 1, 'num_min_delay': 2, 'num_max_delay': 3,"
		" 'min_delay': '1s', 'max_delay': '1m', 'backoff': 'geometric', 'jitter': 50, 'max_age': '1h'}},"
		"{'topic': 'security', 'protocol': 'exec', 'endpoint': '/bin/page', 'argv': ['/bin/page', '-q'],"
		" 'retry': {'num_retries': 0}},"
		"{'topic': 'security', 'protocol': 'maildir', 'endpoint': '/var/mail/tw', 'smtp': {'starttls': 'none'}},"
		"{'topic': 'security', 'protocol': 'email-json', 'endpoint': 'y@example.com',"
		" 'smtp': {'url': 'smtp://m', 'from': 'f@example.com'}},"
		"{'topic': 'security', 'protocol': 'http', 'endpoint': 'http://127.0.0.1:9/'},"
		"{'topic': 'security', 'protocol': 'file', 'endpoint': '/var/log/tw.jsonl'}]}"));
	const struct tw_config_notifier *n = &cfg->notifier;
	const struct tw_config_subscription *s = n->subscriptions;

	cr_assert_eq(n->present, 1);
	cr_assert_str_eq(n->state_dir, "/var/n");
	cr_assert_eq(n->workers, 8);
	cr_assert_eq(n->ngroup_by, 2);
	cr_assert_str_eq(n->group_by[1], "severity");
	cr_assert_eq(n->group_wait_ms, 10000);
	cr_assert_eq(n->group_interval_ms, 60000);
	cr_assert_eq(n->repeat_interval_ms, 0);
	cr_assert_eq(n->ntopics, 2);
	cr_assert_str_eq(n->topics[0].display_name, "Security");
	cr_assert_null(n->topics[1].display_name);
	cr_assert_eq(n->nsubscriptions, 7);
	/* 0: email, everything of smtp */
	cr_assert_null(s[0].name);
	cr_assert_eq(s[0].protocol, 1);
	cr_assert_str_eq(s[0].endpoint, "x@example.com");
	cr_assert_null(s[0].filter_policy);
	cr_assert_eq(s[0].nargv, 0);
	cr_assert_str_eq(s[0].smtp.url, "smtps://mail:465");
	cr_assert_str_eq(s[0].smtp.from, "tw@example.com");
	cr_assert_eq(s[0].smtp.nto, 2);
	cr_assert_str_eq(s[0].smtp.to[1], "b@example.com");
	cr_assert_str_eq(s[0].smtp.user, "tw");
	cr_assert_eq(s[0].smtp.password.from, TW_SECRET_FILE);
	cr_assert_str_eq(s[0].smtp.password.ref, "/etc/tw/smtp.pw");
	cr_assert_eq(s[0].smtp.starttls, 1);
	cr_assert_str_eq(s[0].smtp.ca_file, "/etc/ca.pem");
	cr_assert_eq(s[0].smtp.insecure, 1);
	cr_assert_eq(s[0].connect_timeout_ms, 10000);
	cr_assert_eq(s[0].timeout_ms, 30000);
	cr_assert_eq(s[0].retry.present, 0);
	/* 1: https with every retry key */
	cr_assert_str_eq(s[1].name, "hook");
	cr_assert_eq(s[1].protocol, 4);
	cr_assert_str_eq(s[1].filter_policy, "{\"severity\":[\"high\"]}");
	cr_assert_eq(s[1].http.nheaders, 1);
	cr_assert_str_eq(s[1].http.headers[0], "X-A: 1");
	cr_assert_null(s[1].http.ca_file);
	cr_assert_eq(s[1].http.insecure, 1);
	cr_assert_eq(s[1].connect_timeout_ms, 2000);
	cr_assert_eq(s[1].timeout_ms, 5000);
	cr_assert_eq(s[1].retry.present, 1);
	cr_assert_eq(s[1].retry.num_retries, 10);
	cr_assert_eq(s[1].retry.num_no_delay, 1);
	cr_assert_eq(s[1].retry.num_min_delay, 2);
	cr_assert_eq(s[1].retry.num_max_delay, 3);
	cr_assert_eq(s[1].retry.min_delay_ms, 1000);
	cr_assert_eq(s[1].retry.max_delay_ms, 60000);
	cr_assert_eq(s[1].retry.backoff, 2);
	cr_assert_eq(s[1].retry.jitter_pct, 50);
	cr_assert_eq(s[1].retry.max_age_ms, 3600000);
	/* 2: exec, argv, retry defaults */
	cr_assert_eq(s[2].protocol, 7);
	cr_assert_eq(s[2].nargv, 2);
	cr_assert_str_eq(s[2].argv[1], "-q");
	cr_assert_eq(s[2].retry.present, 1);
	cr_assert_eq(s[2].retry.num_retries, 0);
	cr_assert_eq(s[2].retry.num_no_delay + s[2].retry.num_min_delay + s[2].retry.num_max_delay, 0);
	cr_assert_eq(s[2].retry.min_delay_ms, 20000);
	cr_assert_eq(s[2].retry.max_delay_ms, 20000);
	cr_assert_eq(s[2].retry.backoff, 0);
	cr_assert_eq(s[2].retry.jitter_pct, 0);
	cr_assert_eq(s[2].retry.max_age_ms, 0);
	/* 3..6: maildir (smtp defaults), email-json, http, file */
	cr_assert_eq(s[3].protocol, 6);
	cr_assert_eq(s[3].smtp.starttls, 2);
	cr_assert_eq(s[3].smtp.insecure, 0);
	cr_assert_eq(s[3].smtp.password.from, TW_SECRET_NONE);
	cr_assert_eq(s[4].protocol, 2);
	cr_assert_eq(s[4].smtp.starttls, 0);
	cr_assert_eq(s[5].protocol, 3);
	cr_assert_eq(s[6].protocol, 5);
	cr_assert_eq(cfg->nsecrets, 1);
	tw_config_free(cfg);
}

Test(config_alerts, filter_policy_is_kept_as_compact_sorted_json)
{
	struct tw_config *cfg = parse_ok(MINIMAL(
		", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'file',"
		" 'endpoint': '/f', 'filter_policy': {'severity': ['high', {'prefix': 'crit'}],"
		"   'alarm': [{'anything-but': ['x']}], 'count': [{'numeric': ['>', 2.5, '<=', 10]}]}}]}"));

	/* Keys sorted (alarm < count < severity), no spaces, arrays kept in order; by hand. */
	cr_assert_str_eq(cfg->notifier.subscriptions[0].filter_policy,
			 "{\"alarm\":[{\"anything-but\":[\"x\"]}],\"count\":[{\"numeric\":[\">\",2.5,\"<=\",10]}],"
			 "\"severity\":[\"high\",{\"prefix\":\"crit\"}]}");
	tw_config_free(cfg);
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't',"
			  " 'protocol': 'file', 'endpoint': '/f', 'filter_policy': '{}'}]}"),
		  "c.json: $.notifier.subscriptions[0].filter_policy: expected an object, got a string");
}

Test(config_alerts, type_errors_name_the_key_path)
{
	parse_bad(MINIMAL(", 'metrics': {'cis': 'yes'}"), "c.json: $.metrics.cis: expected true or false, got a string");
	parse_bad(MINIMAL(", 'metrics': {'period': '0s'}"), "c.json: $.metrics.period: must be longer than 0");
	parse_bad(MINIMAL(", 'metrics': {'max_values': 0}"), "c.json: $.metrics.max_values: 0 is out of range [1, 100000]");
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'x', 'pattern': '', 'default': '0'}]}"),
		  "c.json: $.metrics.filters[0].default: expected a number, got a string");
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'x', 'pattern': '', 'dimensions': ['$.a', 'b']}]}"),
		  "c.json: $.metrics.filters[0].dimensions[1]: expected a \"$.field\" selector, got \"b\"");
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'x', 'pattern': '',"
			  " 'dimensions': ['$.a', '$.b', '$.c', '$.d']}]}"),
		  "c.json: $.metrics.filters[0].dimensions: expected 0 to 3 strings, got 4");
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'x', 'pattern': '', 'value': 'bytes'}]}"),
		  "c.json: $.metrics.filters[0].value: expected a number or a \"$.field\" selector, got \"bytes\"");
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'x', 'pattern': '', 'default': 0, 'dimensions': ['$.a']}]}"),
		  "c.json: $.metrics.filters[0].default: not allowed with \"dimensions\" (a default is for a metric "
		  "without dimensions)");
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'x'}]}"), "c.json: missing required key $.metrics.filters[0].pattern");
	parse_bad(MINIMAL(", 'rules': [{'name': 'r', 'pattern': '', 'topic': 'alarms'}]"),
		  "c.json: $.rules[0].pattern: must not be empty");
	parse_bad(MINIMAL(", 'rules': {}"), "c.json: $.rules: expected an array of objects, got an object");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1},"
			  " {'name': 'b', 'metric': 'm', 'threshold': '5'}]"),
		  "c.json: $.alarms[1].threshold: expected a number, got a string");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'statistic': 'Avg'}]"),
		  "c.json: $.alarms[0].statistic: \"Avg\" is not one of \"Sum\", \"Average\", \"Minimum\", \"Maximum\", "
		  "\"SampleCount\"");
	/* The comparisons' list does not fit in a message: the closest name instead. */
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'comparison': 'GreaterThanTreshold'}]"),
		  "c.json: $.alarms[0].comparison: \"GreaterThanTreshold\" is not a valid value (did you mean "
		  "GreaterThanThreshold?)");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'treat_missing_data': 'zero'}]"),
		  "c.json: $.alarms[0].treat_missing_data: \"zero\" is not one of \"missing\", \"notBreaching\", "
		  "\"breaching\", \"ignore\"");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'evaluation_periods': 0}]"),
		  "c.json: $.alarms[0].evaluation_periods: 0 is out of range [1, 1440]");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'comparison': 'LessThanLowerThreshold', 'band': 0}]"),
		  "c.json: $.alarms[0].band: must be greater than 0");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'dimensions': {'account': 12}}]"),
		  "c.json: $.alarms[0].dimensions.account: expected a string, got a number");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'labels': ['team=x']}]"),
		  "c.json: $.alarms[0].labels: expected an object of strings, got an array");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'labels': {'a=b': 'c'}}]"),
		  "c.json: $.alarms[0].labels[\"a=b\"]: a name must not be empty nor hold '='");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'actions_enabled': 1}]"),
		  "c.json: $.alarms[0].actions_enabled: expected true or false, got a number");
	parse_bad(MINIMAL(", 'cis_alarms': {'actions': 'alarms'}"),
		  "c.json: $.cis_alarms.actions: expected an array of strings, got a string");
	parse_bad(MINIMAL(", 'notifier': {'workers': 65}"), "c.json: $.notifier.workers: 65 is out of range [1, 64]");
	parse_bad(MINIMAL(", 'notifier': {'repeat_interval': 0}"),
		  "c.json: $.notifier.repeat_interval: expected a duration string (\"90s\", \"5m\", \"400d\"), got a number");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 'a.b'}]}"),
		  "c.json: $.notifier.topics[0].name: \"a.b\" is not 1 to 256 letters, digits, '-' or '_'");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'sms',"
			  " 'endpoint': 'x'}]}"),
		  "c.json: $.notifier.subscriptions[0].protocol: \"sms\" is not one of \"email\", \"email-json\", \"http\", "
		  "\"https\", \"file\", \"maildir\", \"exec\"");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'file'}]}"),
		  "c.json: missing required key $.notifier.subscriptions[0].endpoint");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'http',"
			  " 'endpoint': 'http://h', 'retry': {'num_retries': 3, 'jitter': 51}}]}"),
		  "c.json: $.notifier.subscriptions[0].retry.jitter: 51 is out of range [0, 50]");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'http',"
			  " 'endpoint': 'http://h', 'retry': {'backoff': 'linear'}}]}"),
		  "c.json: missing required key $.notifier.subscriptions[0].retry.num_retries");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'http',"
			  " 'endpoint': 'http://h', 'http': {'headers': ['X-A 1']}}]}"),
		  "c.json: $.notifier.subscriptions[0].http.headers[0]: expected \"Name: value\" on one line");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'email',"
			  " 'endpoint': 'a@b', 'smtp': {'url': 'smtp://m', 'from': 'f@b', 'starttls': 'always'}}]}"),
		  "c.json: $.notifier.subscriptions[0].smtp.starttls: \"always\" is not one of \"required\", "
		  "\"opportunistic\", \"none\"");
}

Test(config_alerts, alarm_cross_checks_name_the_key_path)
{
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'threshold': 1}]"),
		  "c.json: missing required key $.alarms[0].metric (an alarm without a \"rule\" watches a metric)");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1}, {'name': 'b', 'metric': 'm',"
			  " 'comparison': 'LessThanThreshold'}]"),
		  "c.json: missing required key $.alarms[1].threshold (comparison LessThanThreshold compares with it)");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'rule': 'ALARM(b)', 'metric': 'm'}]"),
		  "c.json: $.alarms[0].metric: not allowed in a composite alarm (it has a \"rule\")");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'rule': 'ALARM(b)', 'threshold': 3}]"),
		  "c.json: $.alarms[0].threshold: not allowed in a composite alarm (it has a \"rule\")");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'rule': 'ALARM(b)', 'period': '10m'}]"),
		  "c.json: $.alarms[0].period: not allowed in a composite alarm (it has a \"rule\")");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'comparison': 'GreaterThanUpperThreshold',"
			  " 'threshold': 3}]"),
		  "c.json: $.alarms[0].threshold: not used by comparison GreaterThanUpperThreshold (it compares with the band)");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 3, 'band': 1}]"),
		  "c.json: $.alarms[0].band: not used by comparison GreaterThanOrEqualToThreshold (it compares with the "
		  "threshold)");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'evaluation_periods': 3,"
			  " 'datapoints_to_alarm': 4}]"),
		  "c.json: $.alarms[0].datapoints_to_alarm: 4 is more than evaluation_periods (3)");
	/* metrics.period 1m: 90s is not a multiple; 0s is not positive; 2m is fine. */
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'period': '90s'}]"),
		  "c.json: $.alarms[0].period: 90s is not a positive multiple of metrics.period (1m)");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'period': '0m'}]"),
		  "c.json: $.alarms[0].period: 0ms is not a positive multiple of metrics.period (1m)");
	/* The default period (5m) against a metrics.period of 2m. */
	parse_bad(MINIMAL(", 'metrics': {'period': '2m'}, 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1}]"),
		  "c.json: $.alarms[0].period: 5m is not a positive multiple of metrics.period (2m)");
	tw_config_free(parse_ok(MINIMAL(", 'metrics': {'period': '30s'}, 'alarms': [{'name': 'a', 'metric': 'm',"
					" 'threshold': 1, 'period': '90s'}]")));
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1}, {'name': 'b', 'metric': 'm',"
			  " 'threshold': 1}, {'name': 'a', 'rule': 'ALARM(b)'}]"),
		  "c.json: $.alarms[2].name: duplicate alarm name \"a\" (also $.alarms[0])");
}

Test(config_alerts, names_are_unique_and_topics_configured)
{
	/* The earliest repeat is reported, whatever the alphabetical order of the names. */
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'z', 'pattern': ''}, {'name': 'b', 'pattern': ''},"
			  " {'name': 'b', 'pattern': ''}, {'name': 'z', 'pattern': ''}]}"),
		  "c.json: $.metrics.filters[2].name: duplicate metric name \"b\" (also $.metrics.filters[1])");
	parse_bad(MINIMAL(", 'rules': [{'name': 'r', 'pattern': 'x', 'topic': 'alarms'},"
			  " {'name': 'r', 'pattern': 'y', 'topic': 'alarms'}]"),
		  "c.json: $.rules[1].name: duplicate rule name \"r\" (also $.rules[0])");
	/* Without a notifier section the only topic is "alarms". */
	parse_bad(MINIMAL(", 'rules': [{'name': 'r', 'pattern': 'x', 'topic': 'security'}]"),
		  "c.json: $.rules[0].topic: unknown topic \"security\" (without a \"notifier\" section the only topic is "
		  "\"alarms\")");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'alarm_actions': ['alarms'],"
			  " 'ok_actions': ['alarms', 'pager']}]"),
		  "c.json: $.alarms[0].ok_actions[1]: unknown topic \"pager\" (without a \"notifier\" section the only "
		  "topic is \"alarms\")");
	/* With one, exactly its topics: "alarms" is no longer implicit. */
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1, 'insufficient_data_actions':"
			  " ['security', 'alarms']}], " TOPICS),
		  "c.json: $.alarms[0].insufficient_data_actions[1]: unknown topic \"alarms\" (not in $.notifier.topics)");
	parse_bad(MINIMAL(", 'cis_alarms': {'enabled': true}, " TOPICS),
		  "c.json: $.cis_alarms.actions[0]: unknown topic \"alarms\" (not in $.notifier.topics)");
	/* Disabled CIS alarms notify nobody: their default actions are not checked. */
	tw_config_free(parse_ok(MINIMAL(", " TOPICS)));
	tw_config_free(parse_ok(MINIMAL(", 'cis_alarms': {'enabled': true}, 'rules': [{'name': 'r', 'pattern': 'x',"
					" 'topic': 'alarms'}]")));
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 'a'}, {'name': 'b'}, {'name': 'a'}]}"),
		  "c.json: $.notifier.topics[2].name: duplicate topic name \"a\" (also $.notifier.topics[0])");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 'a'}], 'subscriptions': [{'topic': 'b', 'protocol': 'file',"
			  " 'endpoint': '/f'}]}"),
		  "c.json: $.notifier.subscriptions[0].topic: unknown topic \"b\" (not in $.notifier.topics)");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 'a'}], 'subscriptions': ["
			  "{'name': 's', 'topic': 'a', 'protocol': 'file', 'endpoint': '/f'},"
			  " {'name': 's', 'topic': 'a', 'protocol': 'file', 'endpoint': '/g'}]}"),
		  "c.json: $.notifier.subscriptions[1].name: duplicate subscription name \"s\" (also "
		  "$.notifier.subscriptions[0])");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 'a'}], 'subscriptions': ["
			  "{'topic': 'a', 'protocol': 'file', 'endpoint': '/f'}, {'topic': 'a', 'protocol': 'exec', 'endpoint': '/f'},"
			  " {'topic': 'a', 'protocol': 'file', 'endpoint': '/f'}]}"),
		  "c.json: $.notifier.subscriptions[2]: same protocol and endpoint as $.notifier.subscriptions[0] "
		  "(give one a \"name\")");
}

Test(config_alerts, subscription_cross_checks)
{
	const char *pre = "{'store': {'dir': 'd'}, 'sources': [{'type': 'files', 'files': {'paths': ['a']}}],"
			  " 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', ";
	static const struct { const char *sub, *msg; } cases[] = {
		{ "'protocol': 'http', 'endpoint': 'https://h'",
		  "c.json: $.notifier.subscriptions[0].endpoint: protocol http needs an http:// URL" },
		{ "'protocol': 'https', 'endpoint': 'http://h'",
		  "c.json: $.notifier.subscriptions[0].endpoint: protocol https needs an https:// URL" },
		{ "'protocol': 'email', 'endpoint': 'a@b'",
		  "c.json: missing required key $.notifier.subscriptions[0].smtp.url (protocol email sends through an SMTP "
		  "server)" },
		{ "'protocol': 'email', 'endpoint': 'a@b', 'smtp': {'url': 'smtp://m'}",
		  "c.json: missing required key $.notifier.subscriptions[0].smtp.from (protocol email needs a From address)" },
		{ "'protocol': 'email-json', 'endpoint': 'a@b', 'smtp': {'from': 'f@b'}",
		  "c.json: missing required key $.notifier.subscriptions[0].smtp.url (protocol email sends through an SMTP "
		  "server)" },
		{ "'protocol': 'email', 'endpoint': 'a@b', 'smtp': {'url': 'http://m', 'from': 'f@b'}",
		  "c.json: $.notifier.subscriptions[0].smtp.url: expected smtp://HOST[:PORT] or smtps://HOST[:PORT]" },
		{ "'protocol': 'file', 'endpoint': '/f', 'argv': ['x']",
		  "c.json: $.notifier.subscriptions[0].argv: only for protocol exec, not file" },
		{ "'protocol': 'https', 'endpoint': 'https://h', 'smtp': {}",
		  "c.json: $.notifier.subscriptions[0].smtp: not used by protocol https" },
		{ "'protocol': 'maildir', 'endpoint': '/m', 'http': {}",
		  "c.json: $.notifier.subscriptions[0].http: not used by protocol maildir" },
		{ "'protocol': 'http', 'endpoint': 'http://h', 'retry': {'num_retries': 2, 'num_no_delay': 1, 'num_max_delay': 2}",
		  "c.json: $.notifier.subscriptions[0].retry.num_retries: 2 is less than num_no_delay + num_min_delay + "
		  "num_max_delay (3)" },
		{ "'protocol': 'http', 'endpoint': 'http://h', 'retry': {'num_retries': 2, 'max_delay': '10s'}",
		  "c.json: $.notifier.subscriptions[0].retry.min_delay: longer than max_delay" },
		{ "'protocol': 'email', 'endpoint': 'a@b', 'smtp': {'url': 'smtp://m', 'from': 'f@b', 'password': {'env': 'P'}}",
		  "c.json: $.notifier.subscriptions[0].smtp.password: needs \"user\" (the AUTH user)" },
	};
	char text[1024];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text, "%s%s}]}}", pre, cases[i].sub);
		parse_bad(text, cases[i].msg);
	}
}

Test(config_alerts, smtp_password_must_be_a_secret)
{
#define PRE MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't'," \
		    " 'protocol': 'email', 'endpoint': 'a@b', 'smtp': {'url': 'smtp://m', 'from': 'f@b'," \
		    " 'user': 'u', 'password': %s}}]}")
	char text[1024];
	struct tw_config *cfg;

	snprintf(text, sizeof text, PRE, "'hunter2'");
	parse_bad(text, "c.json: $.notifier.subscriptions[0].smtp.password: a secret must come from {\"file\": PATH} or "
			"{\"env\": NAME}, not the config file");
	snprintf(text, sizeof text, PRE, "{'vault': 'x'}");
	parse_bad(text, "c.json: unknown key $.notifier.subscriptions[0].smtp.password.vault (a secret is {\"file\": PATH} "
			"or {\"env\": NAME})");
	snprintf(text, sizeof text, PRE, "{'env': 'A', 'file': 'B'}");
	parse_bad(text, "c.json: $.notifier.subscriptions[0].smtp.password: expected {\"file\": PATH} or {\"env\": NAME}, "
			"got an object");
	snprintf(text, sizeof text, PRE, "{'env': 'TW_TEST_SMTP_PW'}");
	cfg = parse_ok(text);
	cr_assert_eq(cfg->notifier.subscriptions[0].smtp.password.from, TW_SECRET_ENV);
	cr_assert_str_eq(cfg->notifier.subscriptions[0].smtp.password.ref, "TW_TEST_SMTP_PW");
	cr_assert_eq(cfg->nsecrets, 1);
	tw_config_free(cfg);
#undef PRE
}

Test(config_alerts, unknown_keys_in_the_new_sections_suggest_the_closest)
{
	parse_bad(MINIMAL(", 'metrics': {'perod': '1m'}"), "c.json: unknown key $.metrics.perod (did you mean period?)");
	parse_bad(MINIMAL(", 'metrics': {'filters': [{'name': 'x', 'pattern': '', 'dimension': []}]}"),
		  "c.json: unknown key $.metrics.filters[0].dimension (did you mean dimensions?)");
	parse_bad(MINIMAL(", 'rules': [{'name': 'r', 'pattern': 'p', 'topic': 'alarms', 'severty': 'x'}]"),
		  "c.json: unknown key $.rules[0].severty (did you mean severity?)");
	parse_bad(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'treshold': 1}]"),
		  "c.json: unknown key $.alarms[0].treshold (did you mean threshold?)");
	parse_bad(MINIMAL(", 'cis_alarms': {'enable': true}"), "c.json: unknown key $.cis_alarms.enable (did you mean enabled?)");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocl': 'file'}]}"),
		  "c.json: unknown key $.notifier.subscriptions[0].protocl (did you mean protocol?)");
	parse_bad(MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'http',"
			  " 'endpoint': 'http://h', 'retry': {'num_retires': 3}}]}"),
		  "c.json: unknown key $.notifier.subscriptions[0].retry.num_retires (did you mean num_retries?)");
	parse_bad(MINIMAL(", 'notifer': {}"), "c.json: unknown key $.notifer (did you mean notifier?)");
}

/* Formats cfg in fmt into a NUL-terminated buffer (free with tw_buf_free). */
static void format(const struct tw_config *cfg, enum tw_config_format fmt, struct tw_buf *out)
{
	struct tw_err err;

	tw_buf_init(out, 4u << 20);
	cr_assert_eq(tw_config_format(cfg, fmt, out, &err), TW_OK, "%s", err.msg);
	tw_buf_cstr(out);
}

/* The JSON output parses back to a config whose text and JSON outputs are the same. */
static void assert_round_trip(const struct tw_config *cfg)
{
	struct tw_buf text, json, text2, json2;
	struct tw_config *again = NULL;
	struct tw_err err;

	format(cfg, TW_CONFIG_FMT_TEXT, &text);
	format(cfg, TW_CONFIG_FMT_JSON, &json);
	cr_assert_eq(tw_config_parse(json.p, json.n, "n.json", &again, &err), TW_OK, "%s\n%s", err.msg, json.p);
	format(again, TW_CONFIG_FMT_TEXT, &text2);
	format(again, TW_CONFIG_FMT_JSON, &json2);
	cr_assert_str_eq(text2.p, text.p);
	cr_assert_str_eq(json2.p, json.p);
	cr_assert_eq(again->nsecrets, cfg->nsecrets);
	cr_assert_eq(again->notifier.present, cfg->notifier.present);
	tw_config_free(again);
	tw_buf_free(&text);
	tw_buf_free(&json);
	tw_buf_free(&text2);
	tw_buf_free(&json2);
}

Test(config_alerts, normalized_output_round_trips_and_hides_secrets)
{
	struct tw_config *cfg;
	struct tw_buf text, json;

	setenv("TW_TEST_ALERT_PW", "never-print-this-pw", 1);
	cfg = parse_ok(MINIMAL(
		", 'metrics': {'period': '30s', 'filters': [{'name': 'f', 'pattern': '{ $.x = \\'q\\' }', 'default': 0.1},"
		" {'name': 'g', 'pattern': '', 'value': '$.n', 'dimensions': ['$.a']}]},"
		" 'rules': [{'name': 'r', 'pattern': 'p', 'topic': 't'}],"
		" 'alarms': [{'name': 'a', 'metric': 'f', 'threshold': 0.1, 'period': '90s', 'evaluation_periods': 4,"
		"  'dimensions': {'k.1': 'v'}, 'labels': {'team': 'x'}, 'alarm_actions': ['t'], 'actions_enabled': false},"
		"  {'name': 'b', 'metric': 'g', 'comparison': 'LessThanLowerThreshold', 'band': 1.5},"
		"  {'name': 'c', 'rule': 'ALARM(a) AND NOT ALARM(b)', 'ok_actions': ['t']},"
		"  {'name': 'd', 'metric': 'f', 'threshold': 0.30000000000000004}],"
		" 'cis_alarms': {'enabled': true, 'actions': ['t']},"
		" 'notifier': {'repeat_interval': '0s', 'topics': [{'name': 't', 'display_name': 'T'}], 'subscriptions': ["
		"  {'topic': 't', 'protocol': 'email', 'endpoint': 'a@b', 'filter_policy': {'z': [1], 'a': ['x']},"
		"   'smtp': {'url': 'smtp://m:587', 'from': 'f@b', 'user': 'u', 'password': {'env': 'TW_TEST_ALERT_PW'},"
		"   'starttls': 'opportunistic'}},"
		"  {'name': 'x', 'topic': 't', 'protocol': 'exec', 'endpoint': '/bin/true', 'argv': ['/bin/true', '-v'],"
		"   'retry': {'num_retries': 4, 'num_max_delay': 1, 'backoff': 'arithmetic', 'min_delay': '1500ms'}},"
		"  {'topic': 't', 'protocol': 'https', 'endpoint': 'https://h', 'http': {'headers': ['A: b']}}]}"));
	format(cfg, TW_CONFIG_FMT_TEXT, &text);
	format(cfg, TW_CONFIG_FMT_JSON, &json);
	/* A sample of the text lines, each written out by hand. */
	static const char *const lines[] = {
		"metrics.period = 30s\n",
		"metrics.filters[0].pattern = \"{ $.x = \\\"q\\\" }\"\n",
		"metrics.filters[0].default = 0.1\n",
		"metrics.filters[1].default = (none)\n",
		"alarms[0].threshold = 0.1\n",
		"alarms[0].period = 90s\n",
		"alarms[0].datapoints_to_alarm = 4\n",
		"alarms[0].dimensions[\"k.1\"] = \"v\"\n",
		"alarms[0].labels.team = \"x\"\n",
		"alarms[0].actions_enabled = false\n",
		"alarms[1].threshold = (none)\n",
		"alarms[1].comparison = LessThanLowerThreshold\n",
		"alarms[1].band = 1.5\n",
		"alarms[2].rule = \"ALARM(a) AND NOT ALARM(b)\"\n",
		"alarms[3].threshold = 0.30000000000000004\n", /* 0.1 + 0.2: 17 digits to read back exactly */
		"cis_alarms.enabled = true\n",
		"notifier.repeat_interval = 0ms\n",
		"notifier.subscriptions[0].protocol = email\n",
		"notifier.subscriptions[0].filter_policy = {\"a\":[\"x\"],\"z\":[1]}\n",
		"notifier.subscriptions[0].smtp.password = <from env TW_TEST_ALERT_PW> (set)\n",
		"notifier.subscriptions[0].smtp.starttls = opportunistic\n",
		"notifier.subscriptions[0].retry = (absent)\n",
		"notifier.subscriptions[1].argv[1] = \"-v\"\n",
		"notifier.subscriptions[1].retry.min_delay = 1500ms\n",
		"notifier.subscriptions[1].retry.backoff = arithmetic\n",
		"notifier.subscriptions[2].http.headers[0] = \"A: b\"\n",
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
		cr_assert(tw_test_contains(text.p, text.n, lines[i]), "no %s in\n%s", lines[i], text.p);
	/* Keys not in effect are not written: a threshold alarm's band, a composite's metric keys,
	 * smtp of a non-mail subscription. */
	cr_assert(!tw_test_contains(text.p, text.n, "alarms[0].band"), "%s", text.p);
	cr_assert(!tw_test_contains(text.p, text.n, "alarms[2].period"), "%s", text.p);
	cr_assert(!tw_test_contains(text.p, text.n, "subscriptions[2].smtp"), "%s", text.p);
	cr_assert(!tw_test_contains(text.p, text.n, "subscriptions[0].argv"), "%s", text.p);
	/* JSON: the secret by reference, the policy as an object, numbers as numbers. */
	cr_assert(tw_test_contains(json.p, json.n, "\"password\": {\n"), "%s", json.p);
	cr_assert(tw_test_contains(json.p, json.n, "\"env\": \"TW_TEST_ALERT_PW\""), "%s", json.p);
	cr_assert(tw_test_contains(json.p, json.n, "\"band\": 1.5"), "%s", json.p);
	cr_assert(tw_test_contains(json.p, json.n, "\"threshold\": 0.30000000000000004,"), "%s", json.p);
	cr_assert(tw_test_contains(json.p, json.n, "\"cis\": true"), "%s", json.p);
	cr_assert(!tw_test_contains(text.p, text.n, "never-print-this-pw"));
	cr_assert(!tw_test_contains(json.p, json.n, "never-print-this-pw"));
	assert_round_trip(cfg);
	tw_config_free(cfg);
	tw_buf_free(&text);
	tw_buf_free(&json);

	/* Without a notifier section, the output has none either (it would change the topics). */
	cfg = parse_ok(MINIMAL(", 'alarms': [{'name': 'a', 'metric': 'm', 'threshold': 1e300, 'alarm_actions': ['alarms']},"
			       " {'name': 'b', 'metric': 'm', 'threshold': 0.1}]"));
	format(cfg, TW_CONFIG_FMT_JSON, &json);
	/* The fewest digits that read back exactly (the whole document uses one precision). */
	cr_assert(tw_test_contains(json.p, json.n, "\"threshold\": 0.1,"), "%s", json.p);
	cr_assert(tw_test_contains(json.p, json.n, "\"threshold\": 1e300,"), "%s", json.p);
	cr_assert(!tw_test_contains(json.p, json.n, "\"notifier\""), "%s", json.p);
	cr_assert(tw_test_contains(json.p, json.n, "\"cis_alarms\": {"), "%s", json.p);
	tw_buf_free(&json);
	format(cfg, TW_CONFIG_FMT_TEXT, &text);
	cr_assert(tw_test_contains(text.p, text.n, "\nnotifier = (absent)\n"), "%s", text.p);
	cr_assert(tw_test_contains(text.p, text.n, "\nalarms[0].threshold = 1e+300\n"), "%s", text.p);
	tw_buf_free(&text);
	assert_round_trip(cfg);
	tw_config_free(cfg);
}

/* Collects warnings into one string of 4096 bytes. */
static void collect_warning(void *ctx, const char *msg)
{
	char *all = ctx;
	size_t n = strlen(all);

	snprintf(all + n, 4096 - n, "%s\n", msg);
}

Test(config_alerts, smtp_password_warnings)
{
	char *dir = tw_test_tmpdir();
	char *pwfile = tw_test_write_str(dir, "pw", "x\n");
	char text[1024], want[512], all[4096] = "";
	char *path;
	struct tw_config *cfg = NULL;
	struct tw_err err;
	char *t;

	snprintf(text, sizeof text,
		 MINIMAL(", 'notifier': {'topics': [{'name': 't'}], 'subscriptions': [{'topic': 't', 'protocol': 'email',"
			 " 'endpoint': 'a@b', 'smtp': {'url': 'smtp://m', 'from': 'f@b', 'user': 'u', 'password': {'file': '%s'}}},"
			 " {'topic': 't', 'protocol': 'email', 'endpoint': 'c@d', 'smtp': {'url': 'smtp://m', 'from': 'f@b',"
			 " 'user': 'u', 'password': {'env': 'TW_TEST_UNSET_SMTP_PW'}}}]}"),
		 pwfile);
	t = q(text);
	path = tw_test_write_str(dir, "c.json", t);
	free(t);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(chmod(pwfile, 0604), 0);
	unsetenv("TW_TEST_UNSET_SMTP_PW");
	cr_assert_eq(tw_config_load(path, &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(cfg->nsecrets, 2);
	/* The config names 2 secrets and is world-readable; the file secret too; the env one unset. */
	cr_assert_eq(tw_config_warnings(cfg, collect_warning, all), 3, "%s", all);
	snprintf(want, sizeof want, "%s is readable by every user (mode 0644) and names 2 secrets: chmod o-r %s\n"
		 "secret file %s is readable by every user (mode 0604): chmod o-r %s\n"
		 "secret from env TW_TEST_UNSET_SMTP_PW is NOT set\n", path, path, pwfile, pwfile);
	cr_assert_str_eq(all, want);
	tw_config_free(cfg);
	free(path);
	free(pwfile);
	tw_test_tmpdir_free(dir);
}

Test(config_alerts, sample_config_has_every_section)
{
	char path[4096];
	struct tw_config *cfg = NULL;
	struct tw_err err;
	const struct tw_config_subscription *s;

	snprintf(path, sizeof path, "%s/samples/config/trailwatch.json", tw_test_src());
	cr_assert_eq(tw_config_load(path, &cfg, &err), TW_OK, "%s", err.msg);
	cr_assert_eq(cfg->nsecrets, 2);
	cr_assert_eq(cfg->metrics.nfilters, 1);
	cr_assert_gt(cfg->metrics.filters[0].ndimensions, 0);
	cr_assert_eq(cfg->nrules, 1);
	cr_assert(tw_test_contains(cfg->rules[0].pattern, strlen(cfg->rules[0].pattern), "StopLogging"));
	cr_assert_str_eq(cfg->rules[0].topic, "security");
	cr_assert_eq(cfg->nalarms, 2);
	cr_assert_not_null(cfg->alarms[0].metric);
	cr_assert_null(cfg->alarms[0].rule);
	cr_assert_not_null(cfg->alarms[1].rule);
	cr_assert_eq(cfg->cis_alarms.enabled, 1);
	cr_assert_eq(cfg->cis_alarms.nactions, 1);
	cr_assert_str_eq(cfg->cis_alarms.actions[0], "security");
	cr_assert_eq(cfg->notifier.present, 1);
	cr_assert_eq(cfg->notifier.ntopics, 1);
	cr_assert_str_eq(cfg->notifier.topics[0].name, "security");
	cr_assert_eq(cfg->notifier.nsubscriptions, 2);
	s = &cfg->notifier.subscriptions[0];
	cr_assert_eq(s->protocol, 1); /* email */
	cr_assert_eq(s->smtp.starttls, 0);
	cr_assert_not_null(s->smtp.user);
	cr_assert_eq(s->smtp.password.from, TW_SECRET_ENV);
	cr_assert_str_eq(s->smtp.password.ref, "TRAILWATCH_SMTP_PASSWORD");
	cr_assert(cfg->notifier.subscriptions[1].protocol == 3 || cfg->notifier.subscriptions[1].protocol == 4);
	/* What the config keeps verbatim is accepted by the parsers that will read it. */
	for (size_t i = 0; i < cfg->metrics.nfilters + cfg->nrules; i++) {
		const char *pat = i < cfg->metrics.nfilters ? cfg->metrics.filters[i].pattern
							     : cfg->rules[i - cfg->metrics.nfilters].pattern;
		struct tw_filter *f = NULL;
		cr_assert_eq(tw_filter_compile(pat, strlen(pat), &f, &err), TW_OK, "%s: %s", pat, err.msg);
		tw_filter_free(f);
	}
	for (size_t i = 0; i < cfg->nalarms; i++) {
		struct tw_alarm_rule *r = NULL;
		if (!cfg->alarms[i].rule)
			continue;
		cr_assert_eq(tw_alarm_rule_parse(cfg->alarms[i].rule, &r, &err), TW_OK, "%s", err.msg);
		tw_alarm_rule_free(r);
	}
	for (size_t i = 0; i < cfg->notifier.nsubscriptions; i++) {
		const char *fp = cfg->notifier.subscriptions[i].filter_policy;
		struct tw_notify_policy *pol = NULL;
		if (!fp)
			continue;
		cr_assert_eq(tw_notify_policy_parse(fp, strlen(fp), &pol, &err), TW_OK, "%s", err.msg);
		tw_notify_policy_free(pol);
	}
	assert_round_trip(cfg);
	tw_config_free(cfg);
}
