/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/test_hostile_paths.c: hostile trees and names, through the real binary ($TW_BIN):
 * symbolic link loops, dangling links, FIFOs, sockets and links to devices inside a walked
 * directory (`decode DIR`) and inside a followed one (`run --follow`): no hang (each run has a
 * wall-clock limit), no loop, every regular file decoded, the bad entries named. The caps of
 * `run --config` (limits.max_record, limits.max_inflated) reach the decoder. Names from input
 * ("../" in eventIDs, log groups, digest S3 keys, file names) never become paths outside the
 * store. Peak RSS is measured as in test_hostile_input.c. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/helpers/helpers.h"
#include "tests/helpers/hostile.h"

#define REC(id, extra)                                                                                   \
	"{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"eventSource\":\"s3.amazonaws.com\"," \
	"\"eventName\":\"GetObject\",\"eventID\":\"" id "\"" extra "}"

static char *path2(const char *a, const char *b)
{
	return tw_test_join(a, b);
}

/* Builds the hostile tree under dir/tree: two regular files (events t1, t2) and around them a
 * symlink to "..", self and mutual symlink loops, a dangling link, a FIFO, a UNIX socket and
 * links to /dev/zero and /dev/null. Returns the tree's path (malloc'd). */
static char *hostile_tree(const char *dir)
{
	char *tree = path2(dir, "tree"), *p;
	struct sockaddr_un sa;
	int fd;

	cr_assert_eq(mkdir(tree, 0700), 0);
	p = path2(tree, "a");
	cr_assert_eq(mkdir(p, 0700), 0);
	free(p);
	p = path2(tree, "a/one.json");
	tw_test_write_file(p, REC("t1", "") "\n", sizeof(REC("t1", "") "\n") - 1);
	free(p);
	p = path2(tree, "z.json");
	tw_test_write_file(p, REC("t2", "") "\n", sizeof(REC("t2", "") "\n") - 1);
	free(p);
	static const char *const links[][2] = {
		{ "..", "a/up" },	    { "../..", "a/up2" },	  { "self", "self" },
		{ "loop2", "loop1" },	    { "loop1", "loop2" },	  { "nowhere", "dangling.json" },
		{ "/dev/zero", "zero.json" }, { "/dev/null", "null.json" }, { ".", "dot" },
	};
	for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
		p = path2(tree, links[i][1]);
		cr_assert_eq(symlink(links[i][0], p), 0, "symlink %s: %s", p, strerror(errno));
		free(p);
	}
	p = path2(tree, "a/fifo.json");
	cr_assert_eq(mkfifo(p, 0600), 0);
	free(p);
	p = path2(tree, "a/sock.json");
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	cr_assert_lt(strlen(p), sizeof sa.sun_path);
	strcpy(sa.sun_path, p);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "bind: %s", strerror(errno));
	close(fd);
	free(p);
	return tree;
}

/* `decode DIR` on the hostile tree: each special file and each bad link is named on stderr and
 * quarantined with its reason; both regular files are decoded once (the ".." links are walked at
 * most once: directories are remembered by device and inode); exit 1. */
Test(hostile_paths, walked_directory_with_loops_fifos_sockets_and_devices, .timeout = 60)
{
	char *dir = tw_test_tmpdir();
	char *tree = hostile_tree(dir);
	char *q = path2(dir, "q.jsonl"), *qt;
	const char *argv[] = { tw_test_bin(), "decode", "--quiet", "--quarantine", q, tree, NULL };
	struct tw_hostile_run r;
	size_t qn;

	tw_hostile_run(&r, argv, NULL, 022, 30);
	cr_assert(!r.timed_out, "decode hung on the tree: %s", r.err);
	cr_assert_eq(r.status, 1, "exit %d, stderr: %s", r.status, r.err);
	cr_expect_eq(tw_test_count_lines(r.out, r.nout), 2, "t1 and t2 once each: %s", r.out);
	cr_expect(tw_test_contains(r.out, r.nout, "\"eventID\":\"t1\"") &&
		  tw_test_contains(r.out, r.nout, "\"eventID\":\"t2\""), "%s", r.out);
	static const char *const named[] = { "fifo.json: ", "sock.json: ", "zero.json: ", "null.json: ",
					     "tree/self: ", "tree/loop1: ", "tree/loop2: ", "dangling.json: " };
	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
		cr_expect(tw_test_contains(r.err, r.nerr, named[i]), "%s not named: %s", named[i], r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "not a regular file"), "%s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "symbolic link loops"), "%s", r.err);
	cr_expect(tw_test_contains(r.err, r.nerr, "symbolic link leads nowhere"), "%s", r.err);
	qt = tw_test_read_file(q, &qn);
	cr_assert_not_null(qt);
	cr_expect_eq(tw_test_count_lines(qt, qn), 8, "eight entries quarantined: %s", qt);
	cr_expect(tw_test_contains(qt, qn, "loop1\",\"line\":0") || tw_test_contains(qt, qn, "loop1\""), "%s", qt);
	tw_hostile_log("walked directory: loops, FIFO, socket, devices", &r, "");
	cr_expect_leq(r.maxrss_kb, tw_hostile_cap_kb(48), "peak RSS %ld KiB", r.maxrss_kb);
	free(qt);
	tw_hostile_run_free(&r);
	free(q);
	free(tree);
	tw_test_tmpdir_free(dir);
}

/* `run --follow` on the same tree: the follow source takes regular files only and never follows
 * a symbolic link (documented in ingest/follow.h), so it neither blocks on the FIFO nor loops;
 * both events are stored and the run ends by itself (--exit-at-end) with exit 0. */
Test(hostile_paths, followed_directory_with_loops_and_fifos_does_not_hang, .timeout = 60)
{
	char *dir = tw_test_tmpdir();
	char *tree = hostile_tree(dir);
	char *store = path2(dir, "store");
	const char *argv[] = { tw_test_bin(), "run", "--store", store, "--follow", tree, "--exit-at-end", NULL };
	const char *stats[] = { tw_test_bin(), "store", "stats", store, "--format", "json", NULL };
	struct tw_hostile_run r;
	struct tw_test_run s;
	char *fifo = path2(tree, "a/fifo.json");
	int fd;

	tw_hostile_run(&r, argv, NULL, 022, 30);
	cr_assert(!r.timed_out, "run --follow hung on the tree: %s", r.err);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	tw_test_run(&s, NULL, stats);
	cr_assert_eq(s.status, 0, "%s", s.err);
	cr_expect(tw_test_contains(s.out, s.nout, "\"records\":2"), "two records stored: %s", s.out);
	tw_test_run_free(&s);
	/* nobody holds the FIFO open for reading: a writer finds no reader */
	fd = open(fifo, O_WRONLY | O_NONBLOCK);
	cr_expect(fd < 0 && errno == ENXIO, "the FIFO has a reader");
	if (fd >= 0)
		close(fd);
	tw_hostile_log("followed directory: loops, FIFO, socket, devices", &r, "");
	cr_expect_leq(r.maxrss_kb, tw_hostile_cap_kb(64), "peak RSS %ld KiB", r.maxrss_kb);
	tw_hostile_run_free(&r);
	free(fifo);
	free(store);
	free(tree);
	tw_test_tmpdir_free(dir);
}

/* One gzip member of n bytes c, appended to f. */
static void gz_fill(FILE *f, int c, size_t n)
{
	z_stream z;
	unsigned char in[65536], out[65536];

	memset(in, c, sizeof in);
	memset(&z, 0, sizeof z);
	cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_RLE), Z_OK);
	for (size_t done = 0;;) {
		size_t k = n - done < sizeof in ? n - done : sizeof in;
		int flush = done + k == n ? Z_FINISH : Z_NO_FLUSH, ret;
		z.next_in = in;
		z.avail_in = (uInt)k;
		done += k;
		do {
			z.next_out = out;
			z.avail_out = sizeof out;
			ret = deflate(&z, flush);
			cr_assert_neq(ret, Z_STREAM_ERROR);
			cr_assert_eq(fwrite(out, 1, sizeof out - z.avail_out, f), sizeof out - z.avail_out);
		} while (z.avail_out == 0);
		if (flush == Z_FINISH)
			break;
	}
	deflateEnd(&z);
}

static void gz_text(FILE *f, const char *text)
{
	size_t n;
	unsigned char *z = tw_test_deflate(text, strlen(text), 31, &n);
	cr_assert_eq(fwrite(z, 1, n, f), n);
	free(z);
}

/* The caps of the config file: limits.max_inflated "64M" stops a 512 MiB bomb, limits.max_record
 * "1M" rejects a 4 MiB record; the quarantine (STORE/quarantine.jsonl) names both caps in bytes,
 * and the good records are stored. */
Test(hostile_paths, config_limits_cap_bombs_in_run, .timeout = 90)
{
	char *dir = tw_test_tmpdir();
	char *in = path2(dir, "in"), *store = path2(dir, "store");
	char *bomb = path2(in, "bomb.json.gz"), *big = path2(in, "big.json.gz"), *qpath, *qt, cfgtext[2048], *cfg;
	const char *argv[4 + 2] = { tw_test_bin(), "run", "--config", NULL, "--exit-at-end", NULL };
	const char *stats[] = { tw_test_bin(), "store", "stats", store, "--format", "json", NULL };
	struct tw_hostile_run r;
	struct tw_test_run s;
	size_t qn;
	FILE *f;

	cr_assert_eq(mkdir(in, 0700), 0);
	f = fopen(bomb, "wb");
	cr_assert_not_null(f);
	gz_text(f, REC("b1", "") "\n");
	gz_fill(f, '\n', (size_t)512 << 20);
	gz_text(f, REC("b-never", "") "\n");
	fclose(f);
	f = fopen(big, "wb");
	cr_assert_not_null(f);
	gz_text(f, REC("c1", "") "\n{\"eventName\":\"x\",\"padding\":\"");
	gz_fill(f, 'a', (size_t)4 << 20);
	gz_text(f, "\"}\n" REC("c3", "") "\n");
	fclose(f);
	snprintf(cfgtext, sizeof cfgtext,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"files\",\"files\":{\"paths\":[\"%s\"]}}],"
		 "\"limits\":{\"max_record\":\"1M\",\"max_inflated\":\"64M\"}}",
		 store, in);
	cfg = tw_test_write_str(dir, "tw.json", cfgtext);
	chmod(cfg, 0600);
	argv[3] = cfg;
	tw_hostile_run(&r, argv, NULL, 022, 60);
	cr_assert(!r.timed_out, "run hung: %s", r.err);
	cr_assert_lt(r.status, 2, "exit %d: %s", r.status, r.err);
	qpath = path2(store, "quarantine.jsonl");
	qt = tw_test_read_file(qpath, &qn);
	cr_assert_not_null(qt, "no quarantine: %s", r.err);
	cr_expect(tw_test_contains(qt, qn, "inflated size exceeds 67108864 bytes"), "%.400s", qt);
	cr_expect(tw_test_contains(qt, qn, "\"reason\":\"record exceeds 1048576 bytes\""), "%.400s", qt);
	cr_expect(tw_test_contains(qt, qn, "bomb.json.gz") && tw_test_contains(qt, qn, "big.json.gz"), "%.400s", qt);
	tw_test_run(&s, NULL, stats);
	cr_expect(tw_test_contains(s.out, s.nout, "\"records\":3"), "b1, c1, c3 stored: %s", s.out);
	tw_test_run_free(&s);
	tw_hostile_log("run --config: limits.max_inflated 64M, max_record 1M", &r, "");
	cr_expect_leq(r.maxrss_kb, tw_hostile_cap_kb(96), "peak RSS %ld KiB", r.maxrss_kb);
	tw_hostile_run_free(&r);
	free(qt);
	free(qpath);
	free(cfg);
	free(bomb);
	free(big);
	free(in);
	free(store);
	tw_test_tmpdir_free(dir);
}

/* Walks dir recursively; fails the test on any entry whose name contains "escape" or whose real
 * path leaves root. */
static void no_escape(const char *root, const char *dir, int *nfiles)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	cr_assert_not_null(d, "%s", dir);
	while ((e = readdir(d))) {
		char *p;
		struct stat sb;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = path2(dir, e->d_name);
		cr_expect(!strstr(e->d_name, "escape"), "a path made from input: %s", p);
		if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
			no_escape(root, p, nfiles);
		else
			(*nfiles)++;
		free(p);
	}
	closedir(d);
}

/* Input that names paths: eventIDs, log groups and streams with "../", a CloudTrail digest whose
 * digestS3Object and file name climb out, an event rule publishing the records to a maildir. After
 * `ingest` (digests kept under STORE/digests/) and `run --config` (into a second store), no file outside the store and the
 * maildir exists: the tree around them holds only what the test made, nothing is named after input,
 * and nothing was written next to the temporary directory. */
Test(hostile_paths, dotdot_in_names_never_leaves_the_store, .timeout = 90)
{
	char *dir = tw_test_tmpdir();
	char *work = path2(dir, "w"), *in, *store, *istore, *mail, *cfg, cfgtext[4096];
	char *parent_probe, *digdir, *p;
	int nfiles = 0;
	FILE *f;

	/* everything lives two levels down so that "../../" of the store stays inside dir */
	cr_assert_eq(mkdir(work, 0700), 0);
	in = path2(work, "in");
	store = path2(work, "store");
	istore = path2(work, "istore");
	mail = path2(work, "mail");
	cr_assert_eq(mkdir(in, 0700), 0);
	digdir = path2(in, "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/01/01");
	{
		char cmd[8192];
		snprintf(cmd, sizeof cmd, "mkdir -p '%s'", digdir);
		cr_assert_eq(system(cmd), 0);
	}
	p = path2(digdir, "..escape..json");
	f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs("{\"awsAccountId\":\"111122223333\",\"digestStartTime\":\"2026-01-01T00:00:00Z\","
	      "\"digestEndTime\":\"2026-01-01T01:00:00Z\",\"digestS3Bucket\":\"b\","
	      "\"digestS3Object\":\"../../../../escape-digest.json.gz\",\"digestPublicKeyFingerprint\":\"f\","
	      "\"digestSignatureAlgorithm\":\"SHA256withRSA\",\"newestEventTime\":\"2026-01-01T00:59:00Z\","
	      "\"oldestEventTime\":\"2026-01-01T00:00:00Z\",\"previousDigestS3Bucket\":\"b\","
	      "\"previousDigestS3Object\":\"../../escape-prev\",\"logFiles\":[]}\n", f);
	fclose(f);
	free(p);
	p = path2(in, "records.json");
	f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(REC("../../../../escape-id", ",\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"../../escape-arn\","
					   "\"userName\":\"../../escape-user\"}") "\n", f);
	fputs("{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"../escape-owner\",\"logGroup\":\"../../../escape-group\","
	      "\"logStream\":\"/../../escape-stream\",\"subscriptionFilters\":[\"../escape\"],\"logEvents\":[{\"id\":"
	      "\"../../escape-cw\",\"timestamp\":1767225600000,\"message\":\"StopLogging ../../escape\"}]}\n", f);
	fputs(REC("../escape-rule", ",\"eventName\":\"StopLogging\"") "\n", f);
	fclose(f);
	free(p);

	/* ingest: digests are kept under STORE/digests/ by file name */
	{
		const char *argv[] = { tw_test_bin(), "ingest", "--store", istore, "--quiet", in, NULL };
		struct tw_hostile_run r;
		tw_hostile_run(&r, argv, NULL, 022, 60);
		cr_assert_lt(r.status, 2, "ingest: exit %d: %s", r.status, r.err);
		tw_hostile_run_free(&r);
	}
	/* run --config: an event rule on the records publishes them to a maildir */
	snprintf(cfgtext, sizeof cfgtext,
		 "{\"store\":{\"dir\":\"%s\"},\"sources\":[{\"type\":\"files\",\"files\":{\"paths\":[\"%s\"]}}],"
		 "\"rules\":[{\"name\":\"any\",\"pattern\":\"escape\",\"topic\":\"t\"}],"
		 "\"notifier\":{\"group_wait\":\"0s\",\"topics\":[{\"name\":\"t\"}],\"subscriptions\":[{\"topic\":\"t\","
		 "\"protocol\":\"maildir\",\"endpoint\":\"%s\"}]}}",
		 store, in, mail);
	cfg = tw_test_write_str(dir, "tw.json", cfgtext);
	{
		const char *argv[] = { tw_test_bin(), "run", "--config", cfg, "--exit-at-end", NULL };
		struct tw_hostile_run r;
		tw_hostile_run(&r, argv, NULL, 022, 60);
		cr_assert_lt(r.status, 2, "run: exit %d: %s", r.status, r.err);
		tw_hostile_run_free(&r);
	}
	/* the digest was kept inside the store, under a name from its file */
	p = path2(istore, "digests/..escape..json");
	cr_expect_eq(access(p, F_OK), 0, "digest kept as %s", p);
	free(p);
	/* the rule published: some mail exists (so the maildir path was exercised) */
	{
		char *newdir = path2(mail, "new");
		DIR *d = opendir(newdir);
		int n = 0;
		struct dirent *e;
		cr_assert_not_null(d, "no maildir at %s", newdir);
		while ((e = readdir(d)))
			n += e->d_name[0] != '.';
		closedir(d);
		cr_expect_gt(n, 0, "no mail delivered");
		free(newdir);
	}
	/* nothing named after input anywhere in dir but the digest we named ourselves */
	{
		char *keep = path2(istore, "digests/..escape..json"), *moved = path2(istore, "digests/digest-kept.json");
		cr_assert_eq(rename(keep, moved), 0);
		free(keep);
		free(moved);
	}
	p = path2(in, "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/01/01/..escape..json");
	unlink(p);
	free(p);
	no_escape(dir, dir, &nfiles);
	cr_expect_gt(nfiles, 3);
	/* and nothing beside the temporary directory */
	parent_probe = strdup(dir);
	*strrchr(parent_probe, '/') = 0;
	{
		DIR *d = opendir(parent_probe);
		struct dirent *e;
		cr_assert_not_null(d);
		while ((e = readdir(d)))
			cr_expect(!strstr(e->d_name, "escape"), "%s/%s written outside", parent_probe, e->d_name);
		closedir(d);
	}
	free(parent_probe);
	free(digdir);
	free(cfg);
	free(in);
	free(store);
	free(istore);
	free(mail);
	free(work);
	tw_test_tmpdir_free(dir);
}
