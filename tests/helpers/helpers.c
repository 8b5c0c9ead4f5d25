/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/helpers.c: temporary directories, files, running $TW_BIN, golden files.
 * Test-only code: it may assert (and so end the current test) on any failure of the machine. */
#include "tests/helpers/helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <zlib.h>

char *tw_test_tmpdir(void)
{
	char *dir = strdup("/tmp/tw-test-XXXXXX");

	cr_assert(dir != NULL);
	cr_assert(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	return dir;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tw_test_tmpdir_free(char *dir)
{
	if (!dir)
		return;
	/* Only ever our own directories: refuse anything else. */
	if (!strncmp(dir, "/tmp/tw-test-", 13))
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

char *tw_test_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	cr_assert(p != NULL);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

void tw_test_write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f != NULL, "%s: %s", path, strerror(errno));
	cr_assert(fwrite(p, 1, n, f) == n, "%s: short write", path);
	cr_assert(fclose(f) == 0, "%s: %s", path, strerror(errno));
}

char *tw_test_write_str(const char *dir, const char *name, const char *s)
{
	char *path = tw_test_join(dir, name);

	tw_test_write_file(path, s, strlen(s));
	return path;
}

void tw_test_write_gzip(const char *path, const void *p, size_t n)
{
	gzFile g = gzopen(path, "wb");

	cr_assert(g != NULL, "%s: gzopen failed", path);
	cr_assert(n == 0 || gzwrite(g, p, (unsigned)n) == (int)n, "%s: gzwrite failed", path);
	cr_assert(gzclose(g) == Z_OK, "%s: gzclose failed", path);
}

unsigned char *tw_test_deflate(const void *p, size_t n, int wbits, size_t *outn)
{
	z_stream zs;
	size_t cap = n + n / 10 + 1024;
	unsigned char *out = malloc(cap);

	cr_assert(out);
	memset(&zs, 0, sizeof zs);
	cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)(uintptr_t)p;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*outn = zs.total_out;
	deflateEnd(&zs);
	return out;
}

char *tw_test_read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t r;
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 65536;
			p = realloc(p, cap + 1);
			cr_assert(p != NULL);
		}
		r = fread(p + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	fclose(f);
	p[len] = '\0';
	if (n)
		*n = len;
	return p;
}

const char *tw_test_src(void)
{
	const char *s = getenv("TW_SRC");
	return s && *s ? s : ".";
}

const char *tw_test_bin(void)
{
	const char *b = getenv("TW_BIN");

	if (!b || !*b || access(b, X_OK))
		cr_skip_test("TW_BIN is not set to the trailwatch program");
	return b;
}

void tw_test_run(struct tw_test_run *r, const char *stdin_path, const char *const *argv)
{
	tw_test_run_to(r, stdin_path, NULL, argv);
}

void tw_test_run_to(struct tw_test_run *r, const char *stdin_path, const char *stdout_path,
		    const char *const *argv)
{
	char *dir = tw_test_tmpdir();
	char *out_path = tw_test_join(dir, "stdout"), *err_path = tw_test_join(dir, "stderr");
	const char *to = stdout_path ? stdout_path : out_path;
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
		int out = open(to, O_WRONLY | O_CREAT | (stdout_path ? 0 : O_TRUNC), 0600);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		cr_assert(errno == EINTR, "waitpid: %s", strerror(errno));
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (stdout_path) {
		r->out = strdup("");
		r->nout = 0;
	} else {
		r->out = tw_test_read_file(out_path, &r->nout);
	}
	r->err = tw_test_read_file(err_path, &r->nerr);
	cr_assert(r->out && r->err, "cannot read the captured output of %s", argv[0]);
	free(out_path);
	free(err_path);
	tw_test_tmpdir_free(dir);
}

void tw_test_run_free(struct tw_test_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* Copies line `k` (0-based) of p into out (truncated), for mismatch messages. */
static void line_at(const char *p, size_t n, size_t k, char *out, size_t outsz)
{
	size_t i = 0, len;

	for (size_t line = 0; line < k && i < n; i++)
		if (p[i] == '\n')
			line++;
	len = 0;
	while (i + len < n && p[i + len] != '\n')
		len++;
	snprintf(out, outsz, "%.*s", (int)len, p + i);
}

void tw_test_golden(const char *name, const char *actual, size_t n)
{
	char *dir = tw_test_join(tw_test_src(), "tests/golden");
	char *path = tw_test_join(dir, name);
	const char *upd = getenv("TW_UPDATE_GOLDEN");
	size_t gn = 0, line = 0, i;
	char *golden;
	char a[300], g[300];

	if (upd && !strcmp(upd, "1")) {
		tw_test_write_file(path, actual, n);
		cr_log_warn("golden file %s rewritten", path);
		free(dir);
		free(path);
		return;
	}
	golden = tw_test_read_file(path, &gn);
	cr_assert(golden != NULL, "golden file %s is missing: run with TW_UPDATE_GOLDEN=1 and review it", path);
	for (i = 0; i < n && i < gn && actual[i] == golden[i]; i++)
		if (actual[i] == '\n')
			line++;
	if (i < n || i < gn) {
		line_at(actual, n, line, a, sizeof a);
		line_at(golden, gn, line, g, sizeof g);
		cr_assert_fail("output differs from %s at line %zu:\n  got:  %s\n  want: %s\n"
			       "(TW_UPDATE_GOLDEN=1 rewrites it; review the diff)",
			       path, line + 1, a, g);
	}
	free(golden);
	free(dir);
	free(path);
}

int tw_test_contains(const char *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

size_t tw_test_count_lines(const char *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}
