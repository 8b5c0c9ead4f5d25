/* SPDX-License-Identifier: Apache-2.0 */
/* cli/rejects.c: what every command that reads inputs does with a rejected record: one line on
 * stderr naming the source, the line (or offset) and the reason (the first few, then a count), and
 * one JSON line in the quarantine file when there is one; and the exit code of a run over inputs.
 * Shared by decode, ingest and filter test. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/json.h"

#define QUARANTINE_BYTES_MAX (64 * 1024) /* bytes of a rejected record kept in the quarantine file */

void tw_cli_put_clean(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		fputc(c < 0x20 || c == 0x7f ? '?' : c, stderr);
	}
}

int tw_cli_rejects_open(struct tw_cli_rejects *r, const char *quar_path, struct tw_cli_progress *pg)
{
	memset(r, 0, sizeof *r);
	r->pg = pg;
	r->quar_path = quar_path;
	r->show_max = 20;
	tw_buf_init(&r->qline, 8 * QUARANTINE_BYTES_MAX + 64 * 1024);
	pthread_mutex_init(&r->mu, NULL);
	if (quar_path) {
		/* 0600: rejected records are audit data like the rest of the store. */
		int fd = open(quar_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		r->quar = fd >= 0 ? fdopen(fd, "a") : NULL;
		if (!r->quar) {
			if (fd >= 0)
				close(fd);
			fprintf(stderr, "trailwatch: %s: cannot open quarantine file: %s\n", quar_path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Appends one quarantine JSON line for rej to r->qline. */
static enum tw_rc quarantine_line(struct tw_cli_rejects *r, const struct tw_reject *rej, struct tw_err *err)
{
	struct tw_buf *q = &r->qline;
	size_t keep = rej->bytes.n;
	int truncated = 0;
	enum tw_rc rc;

	if (keep > QUARANTINE_BYTES_MAX) {
		keep = QUARANTINE_BYTES_MAX;
		/* Cut at a UTF-8 character boundary so the kept prefix does not end in U+FFFD. */
		for (int back = 0; back < 3 && keep > 0 && ((unsigned char)rej->bytes.p[keep] & 0xC0) == 0x80; back++)
			keep--;
		truncated = 1;
	}
	tw_buf_reset(q);
	if ((rc = tw_buf_append(q, "{\"source\":", 10, err)) ||
	    (rc = tw_json_write_str(q, rej->source, strlen(rej->source), err)) ||
	    (rc = tw_buf_printf(q, err, ",\"line\":%llu,\"index\":%llu,\"offset\":%llu,\"reason\":",
				(unsigned long long)rej->line, (unsigned long long)rej->index,
				(unsigned long long)rej->offset)) ||
	    (rc = tw_json_write_str(q, rej->reason, strlen(rej->reason), err)) ||
	    (rc = tw_buf_append(q, ",\"bytes\":", 9, err)) ||
	    (rc = tw_json_write_str(q, rej->bytes.p ? rej->bytes.p : "", keep, err)) ||
	    (rc = tw_buf_printf(q, err, ",\"truncated\":%s}\n", truncated ? "true" : "false")))
		return rc;
	return TW_OK;
}

enum tw_rc tw_cli_rejects_add(struct tw_cli_rejects *r, const struct tw_reject *rej, struct tw_err *err)
{
	enum tw_rc rc = TW_OK;

	pthread_mutex_lock(&r->mu);
	r->n++;
	if (r->n <= r->show_max) {
		if (r->pg)
			tw_cli_progress_clear(r->pg);
		fputs("trailwatch: ", stderr);
		tw_cli_put_clean(rej->source, strlen(rej->source));
		if (rej->line)
			fprintf(stderr, ": line %llu", (unsigned long long)rej->line);
		else
			fprintf(stderr, ": offset %llu", (unsigned long long)rej->offset);
		fprintf(stderr, " (record %llu): ", (unsigned long long)rej->index + 1);
		tw_cli_put_clean(rej->reason, strlen(rej->reason));
		fputc('\n', stderr);
	}
	if (r->quar) {
		if ((rc = quarantine_line(r, rej, err)) != TW_OK) {
			r->failed = 1;
		} else if (fwrite(r->qline.p, 1, r->qline.n, r->quar) != r->qline.n) {
			r->quar_errno = errno ? errno : EIO;
			r->failed = 1;
			rc = tw_err_set(err, TW_EIO, "%s: write error: %s", r->quar_path, strerror(r->quar_errno));
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void tw_cli_rejects_report_hidden(const struct tw_cli_rejects *r)
{
	char n[32];

	if (r->n <= r->show_max)
		return;
	fprintf(stderr, "trailwatch: %s more rejected records not shown%s%s%s\n",
		tw_cli_fmt_count(r->n - r->show_max, n, sizeof n),
		r->quar ? " (all are in " : " (keep them with --quarantine FILE)", r->quar ? r->quar_path : "",
		r->quar ? ")" : "");
}

int tw_cli_rejects_close(struct tw_cli_rejects *r)
{
	int rc = 0;

	if (r->quar) {
		if (fclose(r->quar) && !r->failed) {
			fprintf(stderr, "trailwatch: %s: write error: %s\n", r->quar_path, strerror(errno));
			rc = -1;
		}
		r->quar = NULL;
	}
	tw_buf_free(&r->qline);
	pthread_mutex_destroy(&r->mu);
	return r->failed ? -1 : rc;
}

int tw_cli_inputs_exit(enum tw_rc rc, const struct tw_err *err, int partial)
{
	if (rc == TW_ENOMEM) {
		fprintf(stderr, "trailwatch: %s\n", err->msg);
		return TW_EXIT_FAIL;
	}
	if (rc != TW_OK) {
		/* A path the source could not read (its message names it); the others were read. */
		fputs("trailwatch: ", stderr);
		tw_cli_put_clean(err->msg, strlen(err->msg));
		fputc('\n', stderr);
		return TW_EXIT_PARTIAL;
	}
	return partial ? TW_EXIT_PARTIAL : TW_EXIT_OK;
}
