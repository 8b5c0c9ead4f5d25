/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/scratch.h: a per-process scratch directory for fuzz targets whose parser reads a
 * file (WAL, segment, outbox): on /dev/shm when it is there (tmpfs: no disk I/O per execution),
 * else $TMPDIR or /tmp; emptied and removed at exit. Header-only: each fuzz binary holds one
 * target, the replayer all of them. */
#ifndef TW_FUZZ_SCRATCH_H
#define TW_FUZZ_SCRATCH_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TW_FUZZ_MAX_DIRS 16

static char tw_fuzz_dirs[TW_FUZZ_MAX_DIRS][256]; /* scratch directories made by this process */
static int tw_fuzz_ndirs;                        /* entries of tw_fuzz_dirs in use */

/* Removes the files of dir (one level: scratch directories hold no subdirectories). */
static inline void tw_fuzz_empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	if (!d)
		return;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
}

static inline void tw_fuzz_scratch_cleanup(void)
{
	for (int i = 0; i < tw_fuzz_ndirs; i++) {
		tw_fuzz_empty_dir(tw_fuzz_dirs[i]);
		rmdir(tw_fuzz_dirs[i]);
	}
	tw_fuzz_ndirs = 0;
}

/* A new empty directory named after tag, or NULL (then the target skips its input). */
static inline const char *tw_fuzz_scratch(const char *tag)
{
	const char *base = getenv("TMPDIR");
	struct stat sb;
	char *d;

	if (tw_fuzz_ndirs == TW_FUZZ_MAX_DIRS)
		return NULL;
	if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	else if (!base || !*base)
		base = "/tmp";
	d = tw_fuzz_dirs[tw_fuzz_ndirs];
	snprintf(d, sizeof tw_fuzz_dirs[0], "%s/tw-fuzz-%s-XXXXXX", base, tag);
	if (!mkdtemp(d))
		return NULL;
	if (tw_fuzz_ndirs++ == 0)
		atexit(tw_fuzz_scratch_cleanup);
	return d;
}

/* Writes p[0..n) as the whole file path (mode 0600). 0 on success. */
static inline int tw_fuzz_write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *c = p;

	if (fd < 0)
		return -1;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return close(fd);
}

static inline uint32_t tw_fuzz_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t tw_fuzz_get64(const uint8_t *p)
{
	return (uint64_t)tw_fuzz_get32(p) | (uint64_t)tw_fuzz_get32(p + 4) << 32;
}

static inline void tw_fuzz_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void tw_fuzz_put64(uint8_t *p, uint64_t v)
{
	tw_fuzz_put32(p, (uint32_t)v);
	tw_fuzz_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
