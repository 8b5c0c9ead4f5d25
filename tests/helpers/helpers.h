/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/helpers.h: what every test file shares: a private temporary directory per test,
 * reading and writing files, running the trailwatch binary ($TW_BIN) with captured output, and
 * golden-file comparison (TW_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing).
 * Helpers fail the current Criterion test themselves (cr_assert) when the machine lets them down. */
#ifndef TW_TEST_HELPERS_H
#define TW_TEST_HELPERS_H

#include <stddef.h>

/* Creates a fresh directory /tmp/tw-test-XXXXXX; returns its path (malloc'd). */
char *tw_test_tmpdir(void);
/* Removes a directory tree made by tw_test_tmpdir and frees the path. NULL is ignored. */
void tw_test_tmpdir_free(char *dir);
/* "dir/name" (malloc'd). */
char *tw_test_join(const char *dir, const char *name);

/* Writes n bytes to path (created or truncated). */
void tw_test_write_file(const char *path, const void *p, size_t n);
/* Writes a NUL-terminated string to dir/name; returns the path (malloc'd). */
char *tw_test_write_str(const char *dir, const char *name, const char *s);
/* Writes gzip(p, n) to path (through zlib). */
void tw_test_write_gzip(const char *path, const void *p, size_t n);
/* Compresses p[0..n) with zlib: wbits 31 = gzip, 15 = zlib, -15 = raw deflate. Returns malloc'd
 * bytes and *outn. */
unsigned char *tw_test_deflate(const void *p, size_t n, int wbits, size_t *outn);
/* Reads a whole file (malloc'd, NUL-terminated; *n may be NULL); NULL when it cannot be opened. */
char *tw_test_read_file(const char *path, size_t *n);

/* $TW_SRC (the source tree) or "." when unset. */
const char *tw_test_src(void);
/* $TW_BIN; skips the current test when it is unset or not executable. */
const char *tw_test_bin(void);

/* The result of running a program. */
struct tw_test_run {
	int status;  /* exit code, or 128 + signal number when killed by a signal */
	char *out;   /* stdout (malloc'd, NUL-terminated) */
	size_t nout; /* bytes in out */
	char *err;   /* stderr (malloc'd, NUL-terminated) */
	size_t nerr; /* bytes in err */
};

/* Runs argv (argv[0] is the program path; NULL-terminated) with stdin from stdin_path (NULL:
 * /dev/null), capturing stdout and stderr through files in a private temporary directory. */
void tw_test_run(struct tw_test_run *r, const char *stdin_path, const char *const *argv);
/* Same, with stdout sent to stdout_path (e.g. /dev/full) instead of captured (r->out is then ""). */
void tw_test_run_to(struct tw_test_run *r, const char *stdin_path, const char *stdout_path,
		    const char *const *argv);
void tw_test_run_free(struct tw_test_run *r);

/* Compares actual with $TW_SRC/tests/golden/<name>. With TW_UPDATE_GOLDEN=1 it writes the file and
 * passes. On a mismatch the test fails with the first differing line of each. */
void tw_test_golden(const char *name, const char *actual, size_t n);

/* 1 if the NUL-terminated needle occurs in the n bytes at hay. */
int tw_test_contains(const char *hay, size_t n, const char *needle);
/* Number of lines (newline-terminated) in p[0..n). */
size_t tw_test_count_lines(const char *p, size_t n);

#endif
