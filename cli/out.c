/* SPDX-License-Identifier: Apache-2.0 */
/* cli/out.c: the stdout writer of bulk output (decoded events, later query results): callers
 * append to one large buffer and it goes out in big write(2) calls. EPIPE (the reader closed the
 * pipe: `| head`) is remembered so the command can stop quietly; SIGPIPE is ignored in main. */
#include <errno.h>
#include <unistd.h>

#include "cli/cli.h"

void tw_cli_out_init(struct tw_cli_out *o, int fd, size_t flush_at, size_t max)
{
	o->fd = fd;
	tw_buf_init(&o->buf, max);
	o->flush_at = flush_at;
	o->broken = 0;
	o->err_no = 0;
}

int tw_cli_out_flush(struct tw_cli_out *o)
{
	size_t off = 0;

	if (o->err_no)
		return -1;
	while (off < o->buf.n) {
		ssize_t w = write(o->fd, o->buf.p + off, o->buf.n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			o->err_no = errno;
			o->broken = errno == EPIPE;
			o->buf.n = 0;
			return -1;
		}
		off += (size_t)w;
	}
	o->buf.n = 0;
	return 0;
}

int tw_cli_out_maybe_flush(struct tw_cli_out *o)
{
	return o->buf.n >= o->flush_at ? tw_cli_out_flush(o) : (o->err_no ? -1 : 0);
}

void tw_cli_out_free(struct tw_cli_out *o)
{
	tw_buf_free(&o->buf);
}
