/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/fuzz_wal.c: index/wal.c and index/evcodec.c on a WAL file from someone else's disk.
 * The first input byte picks the mode, the rest is the file: bit 0 rewrites the header CRC and
 * every frame's seq and CRCs first (so the fuzzer reaches the payload decoder; a hostile file can
 * carry good CRCs), bit 1 also opens the file as the writer does (recovery, cut, one append), bit 2
 * with repair. Checks: the reader never crashes; every payload the reader returns either fails to
 * decode or re-encodes to exactly its bytes (the encoding is canonical); after a recovery the
 * reader finds exactly the frames the open kept plus the one appended (unless the sequence
 * numbers ran out: TW_ELIMIT), and no damage. */
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "index/evcodec.h"
#include "index/wal.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/scratch.h"

#define MAX_FRAMES (1u << 17) /* more than a 1 MiB input can hold (20-byte frames) */

/* Rewrites the header CRC and each complete frame header's seq, data CRC and header CRC. */
static void fix_crcs(uint8_t *f, size_t n)
{
	uint64_t seq;
	size_t off = TW_WAL_HEADER_SIZE;

	if (n < TW_WAL_HEADER_SIZE)
		return;
	tw_fuzz_put32(f + 28, tw_wal_crc32c(0, f, 28));
	seq = tw_fuzz_get64(f + 16);
	while (n - off >= TW_WAL_FRAME_HEADER_SIZE) {
		uint8_t *h = f + off;
		uint64_t len = tw_fuzz_get32(h + 8);
		tw_fuzz_put64(h, seq++);
		if (len <= n - off - TW_WAL_FRAME_HEADER_SIZE)
			tw_fuzz_put32(h + 12, tw_wal_crc32c(0, h + TW_WAL_FRAME_HEADER_SIZE, (size_t)len));
		tw_fuzz_put32(h + 16, tw_wal_crc32c(0, h, 16));
		if (len > n - off - TW_WAL_FRAME_HEADER_SIZE)
			break;
		off += TW_WAL_FRAME_HEADER_SIZE + (size_t)len;
	}
}

/* Reads every frame; decodes each payload and checks it re-encodes to itself. Returns the number
 * of frames read; *last gets the reader's final rc (TW_ENOENT at a clean end). */
static size_t read_all(const char *path, enum tw_rc *last)
{
	struct tw_wal_reader *r = NULL;
	struct tw_err err;
	struct tw_batch batch;
	struct tw_buf enc;
	const void *p;
	uint64_t seq;
	size_t n, frames = 0;
	enum tw_rc rc;

	if ((rc = tw_wal_reader_open(path, &r, &err)) != TW_OK) {
		*last = rc;
		return 0;
	}
	tw_batch_init(&batch);
	tw_buf_init(&enc, 64u << 20);
	while (frames < MAX_FRAMES && (rc = tw_wal_reader_next(r, &seq, &p, &n, &err)) == TW_OK) {
		frames++;
		tw_batch_reset(&batch);
		if (tw_evcodec_decode_batch(p, n, TW_EVCODEC_BORROW, &batch, &err) != TW_OK)
			continue;
		tw_buf_reset(&enc);
		if (tw_evcodec_encode_batch(&enc, batch.ev, batch.n, &err) != TW_OK || enc.n != n ||
		    memcmp(enc.p, p, n))
			abort(); /* an accepted encoding is exactly the encoding of what it decodes to */
	}
	*last = rc;
	tw_buf_free(&enc);
	tw_batch_free(&batch);
	tw_wal_reader_close(r);
	return frames;
}

TW_FUZZ_TARGET(wal)
{
	static const char *dir;
	static char path[512];
	uint8_t *f;
	unsigned mode;
	enum tw_rc last;

	if (!dir) {
		if (!(dir = tw_fuzz_scratch("wal")))
			return 0;
		snprintf(path, sizeof path, "%s/wal", dir);
	}
	if (size < 1)
		return 0;
	mode = data[0];
	f = malloc(size);
	if (!f)
		return 0;
	memcpy(f, data + 1, size - 1);
	if (mode & 1)
		fix_crcs(f, size - 1);
	if (tw_fuzz_write_file(path, f, size - 1) == 0) {
		read_all(path, &last);
		if (mode & 2) {
			struct tw_wal_opts o = { .repair = (mode & 4) != 0 };
			struct tw_wal_recovery rec;
			struct tw_wal *w = NULL;
			struct tw_err err;
			uint64_t seq;
			if (tw_wal_open(path, &o, &w, &rec, &err) == TW_OK) {
				size_t frames;
				enum tw_rc rc = tw_wal_append(w, "\0", 1, &seq, &err);
				/* TW_ELIMIT: a base_seq near 2^64 leaves no sequence number (a clear refusal) */
				if ((rc != TW_OK && rc != TW_ELIMIT) || (rc == TW_OK && seq != rec.next_seq))
					abort();
				tw_wal_close(w);
				frames = read_all(path, &last);
				if (frames != rec.frames + (rc == TW_OK) || last != TW_ENOENT)
					abort(); /* the recovered file reads back whole, with nothing damaged */
			}
		}
	}
	free(f);
	return 0;
}
