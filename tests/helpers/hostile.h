/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/hostile.h: running the trailwatch binary on hostile input and measuring it: the
 * child's peak resident set (wait4's ru_maxrss), a wall-clock limit after which it is killed (a
 * hang on a FIFO must fail the test, not the suite), a umask and extra environment variables. */
#ifndef TW_TEST_HOSTILE_H
#define TW_TEST_HOSTILE_H

#include <stddef.h>
#include <sys/types.h>

/* What one run gave. */
struct tw_hostile_run {
	int status;       /* exit code, or 128 + signal number when killed by a signal */
	int timed_out;    /* 1 if the child was killed after the time limit */
	long maxrss_kb;   /* peak resident set of the child, KiB (getrusage/wait4 ru_maxrss) */
	double seconds;   /* wall-clock time of the run */
	char *out;        /* stdout (malloc'd, NUL-terminated; at most the first 1 MiB) */
	size_t nout;      /* bytes in out */
	char *err;        /* stderr (malloc'd, NUL-terminated; at most the first 1 MiB) */
	size_t nerr;      /* bytes in err */
};

/* Runs argv (argv[0] the program; NULL-terminated) with stdin from /dev/null, the umask `mask`,
 * env (NULL or a NULL-terminated list of "NAME=value") added to the environment, killing it
 * (SIGKILL) after timeout_s seconds. Fails the current test only when the machine lets it down. */
void tw_hostile_run(struct tw_hostile_run *r, const char *const *argv, const char *const *env, mode_t mask,
		    int timeout_s);
/* The same with a file size limit (RLIMIT_FSIZE, `ulimit -f`) of fsize_bytes on the child (0: none):
 * a write past it fails with EFBIG, as a full disk fails with ENOSPC, without root. */
void tw_hostile_run_fsize(struct tw_hostile_run *r, const char *const *argv, const char *const *env, mode_t mask,
			  int timeout_s, long fsize_bytes);
void tw_hostile_run_free(struct tw_hostile_run *r);

/* The memory cap a test asserts, in KiB: `mib` MiB for the plain build; under a sanitizer build
 * (TW_BIN under build/asan/, or TW_ASAN set) 3 x mib + 512 MiB (ASan's shadow memory and its
 * 256 MiB quarantine of freed blocks). */
long tw_hostile_cap_kb(long mib);

/* Peak RSS of a run of the binary on a tiny valid input (`trailwatch decode` of one record), KiB:
 * the baseline printed next to each case's figure. Measured once per process. */
long tw_hostile_baseline_kb(void);

/* Appends "case<TAB>peak RSS KiB<TAB>seconds<TAB>note" to $TW_RSS_LOG when set (for the README). */
void tw_hostile_log(const char *name, const struct tw_hostile_run *r, const char *note);

#endif
