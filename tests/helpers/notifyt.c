/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/notifyt.c: outcome collector, file waits, JSON and mail readers for the
 * notifier's tests. Test-only: fails the current test on surprises from the machine. */
#include "tests/helpers/notifyt.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tests/helpers/helpers.h"

void tw_test_notes_init(struct tw_test_notes *t)
{
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
}

static void on_result(void *ctx, const struct tw_notify_result *r)
{
	struct tw_test_notes *t = ctx;

	pthread_mutex_lock(&t->mu);
	if (r->state == TW_NOTIFY_DELIVERED)
		t->delivered++;
	else if (r->state == TW_NOTIFY_RETRYING)
		t->retrying++;
	else if (r->state == TW_NOTIFY_DEAD)
		t->dead++;
	if (r->state != TW_NOTIFY_DELIVERED)
		snprintf(t->last_error, sizeof t->last_error, "%s", r->error);
	snprintf(t->last_sub, sizeof t->last_sub, "%s", r->sub);
	t->last_attempts = r->attempts;
	pthread_mutex_unlock(&t->mu);
}

static void on_dead(void *ctx, const struct tw_notify_result *r)
{
	struct tw_test_notes *t = ctx;

	(void)r;
	pthread_mutex_lock(&t->mu);
	t->dead_cb++;
	pthread_mutex_unlock(&t->mu);
}

void tw_test_notes_attach(struct tw_test_notes *t, struct tw_notify_config *cfg)
{
	cfg->on_result = on_result;
	cfg->on_result_ctx = t;
	cfg->on_dead = on_dead;
	cfg->on_dead_ctx = t;
}

struct tw_test_notes tw_test_notes_get(struct tw_test_notes *t)
{
	struct tw_test_notes c;

	pthread_mutex_lock(&t->mu);
	c = *t;
	pthread_mutex_unlock(&t->mu);
	return c;
}

unsigned tw_test_count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;
	size_t ls = strlen(suffix);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] != '.' && l >= ls && !strcmp(de->d_name + l - ls, suffix))
			n++;
	}
	closedir(d);
	return n;
}

void tw_test_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

unsigned tw_test_wait_files(const char *dir, const char *suffix, unsigned n, int timeout_ms)
{
	unsigned have = 0;

	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if ((have = tw_test_count_files(dir, suffix)) >= n)
			break;
		tw_test_sleep_ms(20);
	}
	return have;
}

json_t *tw_test_json_file(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);

	cr_assert_not_null(j, "%s: %s (line %d)", path, je.text, je.line);
	return j;
}

json_t *tw_test_mail_parse(const char *path)
{
	struct tw_test_run r;
	char script[1024];
	json_error_t je;
	json_t *j;

	snprintf(script, sizeof script, "%s/tests/tools/parse_mail.py", tw_test_src());
	const char *argv[] = { "/usr/bin/python3", script, path, NULL };
	tw_test_run(&r, NULL, argv);
	cr_assert_eq(r.status, 0, "parse_mail.py %s: %s", path, r.err);
	j = json_loads(r.out, 0, &je);
	cr_assert_not_null(j, "parse_mail.py printed no JSON: %s", je.text);
	tw_test_run_free(&r);
	return j;
}
