/* SPDX-License-Identifier: Apache-2.0 */
/* index/wal.h: the store's write-ahead log, an append-only file of CRC32C-framed payloads (one
 * batch each, see index/evcodec.h), each fdatasynced before tw_wal_append returns. On open, a torn
 * tail is cut and everything before it recovered. Payloads are opaque bytes here: the WAL knows
 * nothing of events. Byte layout: index/FORMAT.md, "Write-ahead log". */
#ifndef TW_INDEX_WAL_H
#define TW_INDEX_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

#define TW_WAL_MAX_FRAME_DEFAULT (256u << 20) /* default cap on one frame's payload: 256 MiB */
#define TW_WAL_MAX_FRAME_LIMIT (1u << 30)     /* largest cap a WAL may be created with: 1 GiB */
#define TW_WAL_HEADER_SIZE 32                 /* bytes of the file header */
#define TW_WAL_FRAME_HEADER_SIZE 20           /* bytes before each frame's payload */

struct tw_wal;
struct tw_wal_reader;

/* I/O calls the writer makes, replaceable for fault tests (ENOSPC, EIO, short writes). A NULL
 * member means the real call (pwrite(2), fdatasync(2)). Used for every write and data sync of the
 * WAL file, including its creation, the cut at open and tw_wal_reset; directory fsyncs and reads
 * always use the real calls. Return values and errno as the real calls. */
struct tw_wal_io {
	ssize_t (*pwrite)(void *ctx, int fd, const void *p, size_t n, off_t off); /* may write less */
	int (*fdatasync)(void *ctx, int fd); /* 0, or -1 with errno */
	void *ctx;                           /* passed to both, borrowed */
};

/* Options for tw_wal_open; a NULL opts or a zero member means the default. */
struct tw_wal_opts {
	uint64_t max_frame;  /* payload cap written into a new file's header (and by tw_wal_reset);
			      * an existing file keeps its own; 0 = TW_WAL_MAX_FRAME_DEFAULT */
	uint64_t first_seq;  /* seq of the first frame of a newly created file; 0 = 1 */
	int repair;          /* 1: also cut at damage that is not at the tail (intact frames follow
			      * it, which are lost); 0: refuse such a file with TW_ECORRUPT */
	struct tw_wal_io io; /* fault-injection hooks; zeroed = the real calls */
};

/* What tw_wal_open found. */
struct tw_wal_recovery {
	int created;          /* 1 if the file did not exist (or was empty) and was initialised */
	int damaged_middle;   /* 1 if repair cut damage that intact frames followed */
	uint64_t frames;      /* valid frames kept */
	uint64_t first_seq;   /* seq of the first frame the file holds or will hold */
	uint64_t next_seq;    /* seq the next append gets */
	uint64_t cut_offset;  /* where the cut happened (end of the last valid frame), or the size */
	uint64_t cut_bytes;   /* bytes removed from the tail; 0 when the file was clean */
	char reason[160];     /* why the tail was cut ("" when nothing was cut) */
};

/* Opens the WAL at path for appending, creating it (mode 0600, atomically: header written to
 * path.tmp, synced, renamed, directory synced) if it does not exist or is empty. An existing file
 * is scanned frame by frame; a torn or corrupt tail (short frame header, short payload, length
 * over the file's cap, checksum or sequence mismatch) is cut (ftruncate + fdatasync) and
 * described in *rec (may be NULL). Damage followed by intact frames is not a torn tail: it is
 * refused with TW_ECORRUPT and the file left untouched, unless opts->repair.
 * The file is locked (flock, exclusive): a second writer gets TW_EBUSY.
 * Errors: TW_ENOENT (directory missing), TW_EIO, TW_ECORRUPT (bad magic or header checksum,
 * header shorter than 32 bytes, damage in the middle), TW_EUNSUP (other version), TW_EBUSY,
 * TW_EINVAL (max_frame over TW_WAL_MAX_FRAME_LIMIT), TW_ENOMEM. *out and *rec are written only
 * on success; close *out with tw_wal_close. opts and path are borrowed (the path is copied). */
enum tw_rc tw_wal_open(const char *path, const struct tw_wal_opts *opts, struct tw_wal **out,
		       struct tw_wal_recovery *rec, struct tw_err *err);

/* Appends payload[0..n) as one frame and fdatasyncs; on TW_OK the frame is durable and *seq_out
 * (may be NULL) is its sequence number (the previous one plus 1). Short writes and EINTR are
 * continued. Any write or sync failure is TW_EIO and makes the WAL stop: every later append (and
 * reset) fails with TW_EIO "WAL stopped after an earlier write error: <first error>", and nothing
 * is written after the tail that could not be written (the next open cuts it). A frame whose
 * append failed may still be found by the next open if its bytes did reach the disk.
 * Errors: TW_ELIMIT (n over the cap; the WAL is not stopped), TW_EIO. payload is borrowed.
 * Not thread-safe: one thread appends at a time. */
enum tw_rc tw_wal_append(struct tw_wal *w, const void *payload, size_t n, uint64_t *seq_out,
			 struct tw_err *err);

/* Empties the WAL (after its frames were sealed into a segment), keeping the sequence going: the
 * next append gets the seq it would have got. Done by writing a fresh header (the cap from opts)
 * to path.tmp, syncing it and renaming it over path, so a crash leaves either the old WAL or the
 * empty one, and readers that still hold the old file keep reading it whole (they must reopen to
 * see frames appended after the reset). Errors: TW_EIO (a failure before the rename leaves the
 * WAL as it was and usable; after it, the WAL stops), TW_ENOMEM. */
enum tw_rc tw_wal_reset(struct tw_wal *w, struct tw_err *err);

/* Bytes in the file: header plus the valid frames. */
uint64_t tw_wal_size(const struct tw_wal *w);
/* Sequence number the next append gets. */
uint64_t tw_wal_next_seq(const struct tw_wal *w);

/* Closes the file and frees w (NULL or half-opened objects are fine). Every TW_OK append is
 * already durable, so closing syncs nothing. */
void tw_wal_close(struct tw_wal *w);

/* Opens path for reading frames from the start; works while a writer appends. Does not cut or
 * change anything. Errors: TW_ENOENT, TW_EIO, TW_ECORRUPT / TW_EUNSUP (header), TW_ENOMEM. */
enum tw_rc tw_wal_reader_open(const char *path, struct tw_wal_reader **out, struct tw_err *err);

/* The next frame: *seq, *payload, *n (payload borrowed: valid until the next call or close).
 * Returns TW_ENOENT when no complete frame follows (the end, or a frame the writer has not
 * finished: calling again later returns it once it is complete), TW_ECORRUPT when a complete
 * frame fails its checks (the reader stays there), TW_EIO, TW_ENOMEM. Outputs only on TW_OK. */
enum tw_rc tw_wal_reader_next(struct tw_wal_reader *r, uint64_t *seq, const void **payload,
			      size_t *n, struct tw_err *err);

void tw_wal_reader_close(struct tw_wal_reader *r); /* NULL or half-opened objects are fine */

/* CRC-32C (Castagnoli, the iSCSI polynomial; check value of "123456789" is 0xe3069283), the
 * checksum of every WAL header and frame. Start with crc = 0; pass the previous result to
 * continue over more bytes. Hardware accelerated (ISA-L). */
uint32_t tw_wal_crc32c(uint32_t crc, const void *p, size_t n);

#endif
