/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/notifyt.h: what the notifier's tests share: a collector of delivery outcomes
 * (the on_result / on_dead callbacks), waiting for files to appear, reading JSON files and
 * parsing mails with the independent Python reader (tests/tools/parse_mail.py). */
#ifndef TW_TEST_NOTIFYT_H
#define TW_TEST_NOTIFYT_H

#include <jansson.h>
#include <pthread.h>

#include "alerts/notify.h"

/* Outcomes seen through the callbacks. */
struct tw_test_notes {
	pthread_mutex_t mu;   /* guards the fields below */
	unsigned delivered;   /* DELIVERED results */
	unsigned retrying;    /* RETRYING results */
	unsigned dead;        /* DEAD results (on_result) */
	unsigned dead_cb;     /* on_dead calls */
	char last_error[256]; /* error of the last non-delivered result */
	char last_sub[256];   /* subscription of the last result */
	unsigned last_attempts; /* attempts of the last result */
};

void tw_test_notes_init(struct tw_test_notes *t);
/* Sets cfg's on_result and on_dead to record into t. */
void tw_test_notes_attach(struct tw_test_notes *t, struct tw_notify_config *cfg);
/* A copy of the counters (taken under the lock). */
struct tw_test_notes tw_test_notes_get(struct tw_test_notes *t);

/* Files in dir whose names end in suffix. */
unsigned tw_test_count_files(const char *dir, const char *suffix);
/* Waits up to timeout_ms for at least n such files; returns the count. */
unsigned tw_test_wait_files(const char *dir, const char *suffix, unsigned n, int timeout_ms);
/* Reads and parses a JSON file (fails the test when it cannot). */
json_t *tw_test_json_file(const char *path);
/* Parses a mail file with tests/tools/parse_mail.py; returns its JSON. */
json_t *tw_test_mail_parse(const char *path);
/* Sleeps ms milliseconds. */
void tw_test_sleep_ms(int ms);

#endif
