/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/replay_main.c: replays every file of tests/fuzz/corpus/<target>/ through the matching
 * fuzz target with a plain main(), so gcc and sanitizer builds keep fuzz finds as regression tests.
 * Each fuzz_<target>.c defines tw_fuzz_<target>(); tests/fuzz/targets.h lists them. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/targets.h"

#define TW_REPLAY_MAX (4u << 20)

static int replay_dir(const char *root, const char *name, int (*fn)(const uint8_t *, size_t))
{
	char path[4096];
	DIR *dir;
	struct dirent *de;
	int n = 0;
	uint8_t *buf = malloc(TW_REPLAY_MAX);

	snprintf(path, sizeof path, "%s/%s", root, name);
	dir = opendir(path);
	if (!dir || !buf) {
		free(buf);
		if (dir)
			closedir(dir);
		return 0;
	}
	while ((de = readdir(dir))) {
		char file[8192];
		FILE *f;
		size_t len;
		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof file, "%s/%s", path, de->d_name);
		f = fopen(file, "rb");
		if (!f)
			continue;
		len = fread(buf, 1, TW_REPLAY_MAX, f);
		fclose(f);
		fn(buf, len);
		n++;
	}
	closedir(dir);
	free(buf);
	printf("fuzz-replay: %s: %d inputs\n", name, n);
	return n;
}

int main(int argc, char **argv)
{
	const char *root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
	for (size_t i = 0; i < tw_fuzz_ntargets; i++)
		replay_dir(root, tw_fuzz_targets[i].name, tw_fuzz_targets[i].fn);
	return 0;
}
