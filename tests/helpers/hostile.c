/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/hostile.c: runs the trailwatch binary under a time limit, a umask and extra
 * environment variables, and reports its peak RSS (wait4). See hostile.h. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"
#include "tests/helpers/hostile.h"

#define CAPTURE_MAX (1u << 20) /* bytes of stdout/stderr kept */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The first CAPTURE_MAX bytes of path (malloc'd, NUL-terminated). */
static char *read_head(const char *path, size_t *n)
{
	char *p = malloc(CAPTURE_MAX + 1);
	int fd = open(path, O_RDONLY);
	size_t got = 0;

	cr_assert(p && fd >= 0, "cannot read %s", path);
	while (got < CAPTURE_MAX) {
		ssize_t k = read(fd, p + got, CAPTURE_MAX - got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	p[got] = 0;
	*n = got;
	return p;
}

void tw_hostile_run(struct tw_hostile_run *r, const char *const *argv, const char *const *env, mode_t mask,
		    int timeout_s)
{
	tw_hostile_run_fsize(r, argv, env, mask, timeout_s, 0);
}

void tw_hostile_run_fsize(struct tw_hostile_run *r, const char *const *argv, const char *const *env, mode_t mask,
			  int timeout_s, long fsize_bytes)
{
	char *dir = tw_test_tmpdir();
	char *out_path = tw_test_join(dir, "stdout"), *err_path = tw_test_join(dir, "stderr");
	struct rusage ru;
	double t0 = now_s();
	int st = 0;
	pid_t pid, got;

	memset(r, 0, sizeof *r);
	fflush(NULL);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		umask(mask);
		if (fsize_bytes > 0) {
			struct rlimit rl = { (rlim_t)fsize_bytes, (rlim_t)fsize_bytes };
			if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
				_exit(125);
		}
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (;;) {
		got = wait4(pid, &st, WNOHANG, &ru);
		if (got == pid)
			break;
		cr_assert(got == 0 || errno == EINTR, "wait4: %s", strerror(errno));
		if (now_s() - t0 > timeout_s) {
			kill(pid, SIGKILL);
			while (wait4(pid, &st, 0, &ru) < 0)
				cr_assert(errno == EINTR, "wait4: %s", strerror(errno));
			r->timed_out = 1;
			break;
		}
		{
			struct timespec ts = { 0, 5 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	r->seconds = now_s() - t0;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r->maxrss_kb = ru.ru_maxrss;
	r->out = read_head(out_path, &r->nout);
	r->err = read_head(err_path, &r->nerr);
	free(out_path);
	free(err_path);
	tw_test_tmpdir_free(dir);
}

void tw_hostile_run_free(struct tw_hostile_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

long tw_hostile_cap_kb(long mib)
{
	const char *bin = getenv("TW_BIN");
	int asan = getenv("TW_ASAN") || (bin && strstr(bin, "/asan/"));
	return (asan ? 3 * mib + 512 : mib) * 1024;
}

long tw_hostile_baseline_kb(void)
{
	static long kb;

	if (!kb) {
		char *dir = tw_test_tmpdir();
		char *f = tw_test_write_str(dir, "one.json",
					    "{\"eventVersion\":\"1.08\",\"eventTime\":\"2026-01-01T00:00:00Z\","
					    "\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\","
					    "\"eventID\":\"b0\"}\n");
		const char *argv[] = { tw_test_bin(), "decode", "--quiet", f, NULL };
		struct tw_hostile_run r;
		tw_hostile_run(&r, argv, NULL, 022, 60);
		cr_assert_eq(r.status, 0, "baseline decode: %s", r.err);
		kb = r.maxrss_kb;
		tw_hostile_run_free(&r);
		free(f);
		tw_test_tmpdir_free(dir);
	}
	return kb;
}

void tw_hostile_log(const char *name, const struct tw_hostile_run *r, const char *note)
{
	const char *path = getenv("TW_RSS_LOG");
	FILE *f;

	if (!path || !(f = fopen(path, "a")))
		return;
	fprintf(f, "%s\t%ld\t%.2f\t%s\n", name, r->maxrss_kb, r->seconds, note ? note : "");
	fclose(f);
}
