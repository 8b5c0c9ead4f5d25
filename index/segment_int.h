/* SPDX-License-Identifier: Apache-2.0 */
/* index/segment_int.h: private to index/segment.c and its tests: the event-id hash and a test
 * hook that replaces it (to force hash collisions), and the fixed sizes of the file layout. */
#ifndef TW_INDEX_SEGMENT_INT_H
#define TW_INDEX_SEGMENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define TW_SEG_VERSION 4
#define TW_SEG_HEADER_SIZE 16   /* magic, version, flags */
#define TW_SEG_FOOTER_SIZE 72   /* see the layout at the top of segment.c */
#define TW_SEG_BLOCK_ENTRY 80   /* bytes of one block-table entry */
#define TW_SEG_SECTION_ENTRY 32 /* bytes of one section-table entry */
#define TW_SEG_IDS_HEADER 16    /* bytes before the bucket table of the id index */
#define TW_SEG_IDS_MAX_BITS 24  /* cap on the id index's bucket bits */
#define TW_SEG_MIN_RECORD 21    /* fewest bytes one record takes in a block's fields frame */
#define TW_SEG_MIN_RAW 2        /* fewest bytes one record takes in a block's raw frame */
#define TW_SEG_MAX_RATIO 1024   /* a stored blob never expands by more than this (+64 KiB) */
#define TW_SEG_MAX_BLOCK (1u << 30) /* cap on a block's uncompressed bytes */

/* The 64-bit hash of an event id; the id index keeps its top (bucket bits + 16) bits (FNV-1a
 * with a final mix). */
uint64_t tw_seg_id_hash(struct tw_str id);

/* Test hook: replaces the id hash for this process (NULL restores it). Writers and readers then
 * agree on the replaced hash; files written with it are only meaningful to this process. */
void tw_seg_test_set_id_hash(uint64_t (*fn)(struct tw_str id));

#endif
