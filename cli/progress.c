/* SPDX-License-Identifier: Apache-2.0 */
/* cli/progress.c: one progress line on stderr, redrawn in place with '\r' about five times a
 * second while a long command runs, and erased before any other stderr output and at the end.
 * Only shown on a terminal: logs and pipes never get carriage returns. */
#include <stdio.h>

#include "cli/cli.h"

void tw_cli_progress_init(struct tw_cli_progress *pg, int enabled)
{
	pg->enabled = enabled;
	pg->shown = 0;
	pg->started = tw_cli_now();
	pg->last = pg->started;
	pg->interval = 0.2;
}

void tw_cli_progress_update(struct tw_cli_progress *pg, uint64_t files, uint64_t events, uint64_t bytes,
			    int force)
{
	char ev[32], rate[32], mb[32];
	double now, secs;

	if (!pg->enabled)
		return;
	now = tw_cli_now();
	if (!force && now - pg->last < pg->interval)
		return;
	pg->last = now;
	secs = now - pg->started;
	tw_cli_fmt_count(events, ev, sizeof ev);
	tw_cli_fmt_count(secs > 0 ? (uint64_t)((double)events / secs) : 0, rate, sizeof rate);
	tw_cli_fmt_bytes(bytes, mb, sizeof mb);
	/* \033[K erases what a longer previous line left behind. */
	fprintf(stderr, "\r  files %llu  events %s  %s events/s  %s read\033[K", (unsigned long long)files, ev,
		rate, mb);
	fflush(stderr);
	pg->shown = 1;
}

void tw_cli_progress_clear(struct tw_cli_progress *pg)
{
	if (pg->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		pg->shown = 0;
	}
}
