/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_ingest_follow.c: the follow source (ingest/follow.c) on a temporary directory.
 * Files are written the ways real writers do (write+close, .tmp then rename, grow without close,
 * new subdirectories); a counting sink records every eventID, so "read once" is checked on the
 * events themselves. Waits are short polls bounded by deadlines, no sleeps. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest/follow.h"
#include "tests/helpers/helpers.h"

#define RESCAN_MS 150
#define MAXID 64

/* Counts deliveries of each eventID "fw-<n>". */
struct seen {
	int count[MAXID]; /* deliveries of fw-<n> */
	int other;        /* events with another id */
	int batches;      /* batches received */
};

static enum tw_rc count_batch(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	struct seen *s = ctx;
	(void)err;
	s->batches++;
	for (size_t i = 0; i < batch->n; i++) {
		struct tw_str id = batch->ev[i].f[TW_F_EVENT_ID];
		char tmp[32];
		int n;
		if (id.n > 3 && id.n < sizeof tmp && !memcmp(id.p, "fw-", 3)) {
			memcpy(tmp, id.p, id.n);
			tmp[id.n] = 0;
			n = atoi(tmp + 3);
			if (n >= 0 && n < MAXID) {
				s->count[n]++;
				continue;
			}
		}
		s->other++;
	}
	return TW_OK;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One CloudTrail record with eventID fw-<id>. */
static int record(char *buf, size_t cap, int id)
{
	return snprintf(buf, cap,
			"{\"Records\":[{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":"
			"\"arn:aws:iam::123456789012:user/alice\",\"userName\":\"alice\"},\"eventTime\":"
			"\"2024-03-01T12:00:%02dZ\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"GetUser\","
			"\"awsRegion\":\"us-east-1\",\"eventID\":\"fw-%d\",\"recipientAccountId\":\"123456789012\"}]}\n",
			id % 60, id);
}

static void put(const char *dir, const char *name, int id)
{
	char buf[1024], *p = tw_test_join(dir, name);
	int n = record(buf, sizeof buf, id);
	tw_test_write_file(p, buf, (size_t)n);
	free(p);
}

/* The test's world: a followed dir, a checkpoint beside it, a sink. */
struct world {
	char *tmp;          /* tw_test_tmpdir */
	char *dir;          /* tmp/in: followed */
	char *ck;           /* tmp/ck: checkpoint */
	struct tw_follow *f; /* the source */
	struct seen s;      /* what the sink saw */
	struct tw_sink sink; /* count_batch */
	struct tw_ingest_limits lim; /* defaults */
	struct tw_ingest_stats st;   /* counters */
};

static void w_open(struct world *w)
{
	struct tw_follow_opts o = { RESCAN_MS, 0 };
	struct tw_err err;

	tw_err_clear(&err);
	cr_assert_eq(tw_ingest_follow_open(w->dir, w->ck, &o, &w->f, &err), TW_OK, "%s", err.msg);
}

static void w_init(struct world *w)
{
	memset(w, 0, sizeof *w);
	w->tmp = tw_test_tmpdir();
	w->dir = tw_test_join(w->tmp, "in");
	w->ck = tw_test_join(w->tmp, "ck");
	cr_assert_eq(mkdir(w->dir, 0755), 0);
	w->sink.on_batch = count_batch;
	w->sink.ctx = &w->s;
	tw_ingest_limits_default(&w->lim);
	w->lim.threads = 1;
}

static void w_free(struct world *w)
{
	tw_ingest_follow_close(w->f);
	free(w->dir);
	free(w->ck);
	tw_test_tmpdir_free(w->tmp);
}

/* Polls until event fw-<id> was seen (or ms pass); returns whether it was. */
static int until_seen(struct world *w, int id, int ms)
{
	int64_t end = mono_ms() + ms;
	struct tw_err err;

	while (!w->s.count[id] && mono_ms() < end) {
		tw_err_clear(&err);
		cr_assert_eq(tw_ingest_follow_poll(w->f, &w->lim, &w->sink, &w->st, 30, &err), TW_OK, "%s", err.msg);
	}
	return w->s.count[id] > 0;
}

/* Polls for ms, whatever happens. */
static void poll_for(struct world *w, int ms)
{
	int64_t end = mono_ms() + ms;
	struct tw_err err;

	while (mono_ms() < end) {
		tw_err_clear(&err);
		cr_assert_eq(tw_ingest_follow_poll(w->f, &w->lim, &w->sink, &w->st, 20, &err), TW_OK, "%s", err.msg);
	}
}

static int total(const struct seen *s)
{
	int n = s->other;
	for (int i = 0; i < MAXID; i++)
		n += s->count[i];
	return n;
}

Test(ingest_follow, closed_files_are_read_at_once_by_inotify)
{
	struct world w;
	int64_t t0;

	w_init(&w);
	w_open(&w);
	t0 = mono_ms();
	put(w.dir, "a.json", 1);
	put(w.dir, "b.json", 2);
	cr_assert(until_seen(&w, 1, 3000));
	cr_assert(until_seen(&w, 2, 3000));
	/* inotify, not the rescan fallback (which needs two rescans, >= 2 * RESCAN_MS) */
	cr_expect_lt(mono_ms() - t0, 2 * RESCAN_MS, "took %lld ms", (long long)(mono_ms() - t0));
	poll_for(&w, 2 * RESCAN_MS + 50);
	cr_assert_eq(w.s.count[1], 1);
	cr_assert_eq(w.s.count[2], 1);
	cr_assert_eq(total(&w.s), 2);
	w_free(&w);
}

Test(ingest_follow, tmp_file_is_read_only_after_rename)
{
	struct world w;
	char *from, *to;

	w_init(&w);
	w_open(&w);
	put(w.dir, "c.json.tmp", 3);
	put(w.dir, ".d.json", 4);
	put(w.dir, "e.json.part", 5);
	poll_for(&w, 3 * RESCAN_MS);
	cr_assert_eq(total(&w.s), 0, "ignored names were read");
	from = tw_test_join(w.dir, "c.json.tmp");
	to = tw_test_join(w.dir, "c.json");
	cr_assert_eq(rename(from, to), 0);
	cr_assert(until_seen(&w, 3, 3000));
	poll_for(&w, 2 * RESCAN_MS + 50);
	cr_assert_eq(w.s.count[3], 1);
	cr_assert_eq(total(&w.s), 1);
	free(from);
	free(to);
	w_free(&w);
}

Test(ingest_follow, growing_file_is_read_once_it_stops_growing)
{
	struct world w;
	char buf[1024], *p;
	int n, fd;
	int64_t t_last;

	w_init(&w);
	w_open(&w);
	n = record(buf, sizeof buf, 6);
	p = tw_test_join(w.dir, "grow.json");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644); /* never closed while it grows */
	cr_assert_geq(fd, 0);
	/* write it a few bytes at a time for 4 rescan intervals: nothing may be read meanwhile */
	for (int off = 0; off < n;) {
		int chunk = n - off < 64 ? n - off : 64;
		cr_assert_eq(write(fd, buf + off, (size_t)chunk), chunk);
		off += chunk;
		if (off < n)
			poll_for(&w, 4 * RESCAN_MS * 64 / n + 1);
		cr_assert_eq(total(&w.s), 0, "read while growing (at %d of %d bytes)", off, n);
	}
	t_last = mono_ms();
	cr_assert(until_seen(&w, 6, 3000));
	/* only after it held still for one rescan interval */
	cr_assert_geq(mono_ms() - t_last, RESCAN_MS - 10);
	cr_assert_eq(close(fd), 0);
	poll_for(&w, 2 * RESCAN_MS + 50);
	cr_assert_eq(w.s.count[6], 1);
	cr_assert_eq(total(&w.s), 1);
	free(p);
	w_free(&w);
}

Test(ingest_follow, new_subdirectories_are_followed)
{
	struct world w;
	char *d1, *d2, *d3;

	w_init(&w);
	w_open(&w);
	d1 = tw_test_join(w.dir, "AWSLogs");
	d2 = tw_test_join(d1, "123456789012");
	d3 = tw_test_join(d2, "2024");
	cr_assert_eq(mkdir(d1, 0755), 0);
	cr_assert_eq(mkdir(d2, 0755), 0);
	cr_assert_eq(mkdir(d3, 0755), 0);
	put(d3, "x.json", 7);
	cr_assert(until_seen(&w, 7, 3000));
	put(d3, "y.json", 8); /* the subdirectory is watched now */
	put(d2, "z.json", 9);
	cr_assert(until_seen(&w, 8, 3000));
	cr_assert(until_seen(&w, 9, 3000));
	poll_for(&w, 2 * RESCAN_MS + 50);
	cr_assert_eq(total(&w.s), 3);
	free(d1);
	free(d2);
	free(d3);
	w_free(&w);
}

Test(ingest_follow, restart_reads_nothing_twice)
{
	struct world w;
	struct tw_follow_counters c;

	w_init(&w);
	put(w.dir, "before.json", 10); /* present at open: taken once stable */
	w_open(&w);
	put(w.dir, "a.json", 11);
	cr_assert(until_seen(&w, 10, 3000));
	cr_assert(until_seen(&w, 11, 3000));
	tw_ingest_follow_close(w.f);
	w.f = NULL;

	put(w.dir, "while_down.json", 12);
	w_open(&w);
	tw_ingest_follow_counters(w.f, &c);
	cr_assert_eq(c.checkpointed, 2);
	put(w.dir, "after.json", 13);
	cr_assert(until_seen(&w, 12, 3000));
	cr_assert(until_seen(&w, 13, 3000));
	poll_for(&w, 2 * RESCAN_MS + 50);
	for (int i = 10; i <= 13; i++)
		cr_assert_eq(w.s.count[i], 1, "fw-%d read %d times", i, w.s.count[i]);
	cr_assert_eq(total(&w.s), 4);
	w_free(&w);
}

Test(ingest_follow, torn_checkpoint_line_is_ignored)
{
	struct world w;
	struct tw_follow_counters c;
	char *ckd;
	size_t n;

	w_init(&w);
	put(w.dir, "a.json", 20);
	put(w.dir, "b.json", 21);
	w_open(&w);
	cr_assert(until_seen(&w, 20, 3000));
	cr_assert(until_seen(&w, 21, 3000));
	tw_ingest_follow_close(w.f);
	w.f = NULL;

	/* cut the checkpoint in the middle of its last line: that file counts as not read */
	ckd = tw_test_read_file(w.ck, &n);
	cr_assert_eq(tw_test_count_lines(ckd, n), 2);
	cr_assert_eq(ckd[n - 1], '\n');
	cr_assert_eq(truncate(w.ck, (off_t)n - 4), 0);
	free(ckd);

	memset(&w.s, 0, sizeof w.s);
	w_open(&w);
	tw_ingest_follow_counters(w.f, &c);
	cr_assert_eq(c.checkpointed, 1);
	cr_assert_eq(c.torn_lines, 1);
	poll_for(&w, 3 * RESCAN_MS);
	/* exactly the file of the torn line is read again */
	cr_assert_eq(w.s.count[20] + w.s.count[21], 1);
	cr_assert_eq(total(&w.s), 1);
	tw_ingest_follow_close(w.f);
	w.f = NULL;

	/* the torn tail was cut, so the new line stands alone: two clean lines, nothing re-read */
	ckd = tw_test_read_file(w.ck, &n);
	cr_assert_eq(tw_test_count_lines(ckd, n), 2);
	free(ckd);
	memset(&w.s, 0, sizeof w.s);
	w_open(&w);
	tw_ingest_follow_counters(w.f, &c);
	cr_assert_eq(c.checkpointed, 2);
	cr_assert_eq(c.torn_lines, 0);
	poll_for(&w, 3 * RESCAN_MS);
	cr_assert_eq(total(&w.s), 0);
	w_free(&w);
}

static enum tw_rc refuse_batch(void *ctx, struct tw_batch *batch, struct tw_err *err)
{
	(void)ctx;
	(void)batch;
	return tw_err_set(err, TW_ESTOP, "refused");
}

Test(ingest_follow, refused_batch_is_not_checkpointed)
{
	struct world w;
	struct tw_sink bad = { refuse_batch, NULL, NULL };
	struct tw_err err;
	enum tw_rc rc = TW_OK;
	int64_t end;

	w_init(&w);
	w_open(&w);
	put(w.dir, "a.json", 30);
	end = mono_ms() + 3000;
	while (rc == TW_OK && mono_ms() < end) {
		tw_err_clear(&err);
		rc = tw_ingest_follow_poll(w.f, &w.lim, &bad, &w.st, 30, &err);
	}
	cr_assert_eq(rc, TW_ESTOP);
	/* the file is delivered again to a sink that accepts it, after a restart too */
	tw_ingest_follow_close(w.f);
	w.f = NULL;
	w_open(&w);
	cr_assert(until_seen(&w, 30, 3000));
	poll_for(&w, 2 * RESCAN_MS + 50);
	cr_assert_eq(w.s.count[30], 1);
	w_free(&w);
}
