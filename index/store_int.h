/* SPDX-License-Identifier: Apache-2.0 */
/* index/store_int.h: private to index/store.c and its tests. A crash hook: the writer stops in the
 * middle of a seal, compaction or retention exactly where a crash could, so tests can reopen the
 * directory as it would be left and check that nothing was lost or duplicated. */
#ifndef TW_INDEX_STORE_INT_H
#define TW_INDEX_STORE_INT_H

#include <stddef.h>

/* Points where tw_store_test_crash_at makes the writer stop (as if killed) and fail with TW_EIO. */
enum tw_store_crash {
	TW_STORE_CRASH_NONE = 0,
	TW_STORE_CRASH_SEAL_SEGMENT = 1,     /* seal: the segment file is in place, MANIFEST is old */
	TW_STORE_CRASH_SEAL_MANIFEST = 2,    /* seal: MANIFEST lists the segment, WAL not reset yet */
	TW_STORE_CRASH_COMPACT_SEGMENT = 3,  /* compaction: merged segment written, MANIFEST old */
	TW_STORE_CRASH_COMPACT_MANIFEST = 4, /* compaction: MANIFEST swapped, old files not unlinked */
	TW_STORE_CRASH_RETAIN_MANIFEST = 5,  /* retention: MANIFEST swapped, old files not unlinked */
	TW_STORE_CRASH_ROTATE_RENAMED = 6,   /* seal: wal renamed to wal.sealing, no new wal yet */
	TW_STORE_CRASH_ROTATE_DONE = 7,      /* seal: new wal in place, wal.sealing not sealed yet */
};

/* Test hook: the crash point the next writer operation stops at (then reset to NONE). Not
 * thread-safe; tests only. */
extern enum tw_store_crash tw_store_test_crash_at;

/* Test hook: the most segments one compaction pass merges at once (its fan-in); 0 = the built-in
 * default (16). A larger group is merged in several passes, each output an input of a later one. */
extern size_t tw_store_test_merge_fanin;

/* Test probe: the most merge inputs (each with its decompressed-block buffer) alive at once in any
 * compaction since the process started; tests reset it to 0 before compacting. */
extern size_t tw_store_test_merge_peak;

#endif
