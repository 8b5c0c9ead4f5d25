/* SPDX-License-Identifier: Apache-2.0 */
/* cli/main.c: the trailwatch program: parses the subcommand and hands off. Only cli/ exits. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help")) {
		printf("usage: trailwatch COMMAND [ARGS]\n");
		return 0;
	}
	fprintf(stderr, "trailwatch: unknown command '%s'\n", argv[1]);
	return 2;
}
