/* SPDX-License-Identifier: Apache-2.0 */
/* index/segment.c: writes and reads immutable segment files (index/segment.h): records in
 * column-wise compressed blocks, a block table, postings per indexed field, an
 * event-id index, a section table and a footer. The reader mmaps the file and trusts no length
 * or offset in it.
 *
 * Byte layout, version 4 (integers little-endian; the full text is in index/FORMAT.md):
 *
 *   header, 16 bytes:  magic "TWSEG\r\n\x1a" | u32 version = 4 | u32 flags = 0
 *   blocks:            back to back from offset 16; each is a fields frame, an id frame, then a
 *                      raw frame (so a reader that needs no raw JSON skips most of the bytes)
 *     fields frame:    21 varint column lengths, then the columns: head (kind | readOnly << 4, a
 *                      byte each), time (zigzag delta varints), 18 field columns (varint 0
 *                      absent, 1 same as the previous record, c >= 2 then c-1 bytes), resources
 *                      (count, then length + bytes each)
 *     id frame:        per record varint length (0 = none) + eventID bytes
 *     raw frame:       per record varint at, varint len, bytes: at >= 1 means the eventID was
 *                      cut out of raw at at-1
 *   sections:          anywhere between the last block and the section table, each with a CRC
 *     block table:     u32 nblocks | u32 0 | nblocks x 80-byte entry:
 *                      u32 first | u32 count | i64 tmin | i64 tmax | u64 offset (of the fields
 *                      frame), then per frame (fields, id, raw) u32 clen | u32 ulen | u32 codec |
 *                      u32 crc32c   (codec 0 raw, 1 deflate, 2 zstd)
 *     postings (one per field of enum tw_ix but eventID):
 *                      u32 codec (0 raw, 2 zstd) | u32 field | u64 ulen | body (stored form)
 *                      body: varint nvalues, then per value in byte order: varint vlen >= 1,
 *                      value bytes, varint count >= 1, u8 enc, varint plen, plen bytes of ids:
 *                      enc 0 delta: varint first id, count-1 varint gaps >= 1
 *                      enc 1 runs: pairs (varint skip, varint length-1); a run starts at skip,
 *                            later ones at previous run's last id + 2 + skip
 *                      enc 2 bitmap: varint first id f, bytes: bit j of byte b = id f+8b+j
 *                      (the writer takes the smallest; ties to the lower enc)
 *     id index:        u64 n | u8 k | u8 w | u16 0 | u32 0 | (2^k+1) x u32 bucket starts |
 *                      n x u16 fingerprint | n x w-bit block, packed LSB first into
 *                      ceil(n w / 8) bytes; bucket = hash >> (64-k),
 *                      fingerprint = next 16 bits; sorted by (bucket, fingerprint, block)
 *   section table:     u32 nsections | u32 0 | nsections x 32-byte entry:
 *                      u32 kind (1 block table, 2 postings, 3 id index) | u32 field |
 *                      u64 offset | u64 length | u32 crc32c(section bytes) | u32 0
 *   footer, 72 bytes:  u64 sectab_off | u64 sectab_len | u32 sectab_crc | u32 nblocks |
 *                      u64 records | i64 tmin | i64 tmax | u64 raw_bytes | u32 0 |
 *                      u32 crc32c(footer bytes 0..59) | magic "TWSEG\r\n\x1a"
 *
 * Reading a block decompresses its fields and id frames into tw_seg_blockbuf.data and fills offs
 * with REC_SLOTS u32 per record (see S_*) in one checked pass; the raw frame only when a raw
 * record is asked for: into tw_seg_blockbuf.raw, where one pass checks and locates every record's
 * entry (up to the first bad one) and a record that needs its event id put back is rebuilt after
 * the frame only when tw_seg_get asks for it.
 *
 * Bounds: a stored blob of length c never claims ulen > 1024 c + 65536 (the writer stores raw
 * instead), block ulen <= 1 GiB; so the reader never allocates beyond what the file justifies. */
#include "index/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "index/evcodec.h"
#include "index/segment_int.h"
#include "index/wal.h"

static const char seg_magic[8] = { 'T', 'W', 'S', 'E', 'G', '\r', '\n', 0x1a };

enum { SEC_BLOCKS = 1, SEC_POSTINGS = 2, SEC_IDS = 3 };

/* Encodings of one posting list (the byte before its length). */
enum { POST_DELTA = 0, POST_RUNS = 1, POST_BITMAP = 2 };

/* ---- small helpers ------------------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t get16z(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static enum tw_rc put_varint(struct tw_buf *b, uint64_t v, struct tw_err *err)
{
	uint8_t t[10];

	return tw_buf_append(b, t, tw_evcodec_varint_put(t, v), err);
}

/* Reads a minimal LEB128 varint; 0 on truncation or a non-canonical form. */
static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	for (int i = 0; i < 10; i++) {
		if (p >= end)
			return 0;
		uint8_t c = *p++;
		if (i == 9 && c > 1)
			return 0;
		r |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			if (c == 0 && i > 0)
				return 0;
			*pp = p;
			*v = r;
			return 1;
		}
	}
	return 0;
}

static int str_cmp(struct tw_str a, struct tw_str b)
{
	size_t m = a.n < b.n ? a.n : b.n;
	int c = m ? memcmp(a.p, b.p, m) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	return a.n < b.n ? -1 : a.n > b.n;
}

int tw_seg_order(const struct tw_event *a, const struct tw_event *b)
{
	int c = str_cmp(a->f[TW_F_PRINCIPAL], b->f[TW_F_PRINCIPAL]);
	if (!c)
		c = str_cmp(a->f[TW_F_EVENT_SOURCE], b->f[TW_F_EVENT_SOURCE]);
	if (!c)
		c = str_cmp(a->f[TW_F_EVENT_NAME], b->f[TW_F_EVENT_NAME]);
	if (!c && a->time_ms != b->time_ms)
		c = a->time_ms < b->time_ms ? -1 : 1;
	if (!c)
		c = str_cmp(a->f[TW_F_EVENT_ID], b->f[TW_F_EVENT_ID]);
	return c;
}

/* FNV-1a over the bytes, then a xor-shift-multiply finish so every bit mixes into the top. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 31;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 29;
	h *= 0xa0761d6478bd642full;
	h ^= h >> 32;
	return h;
}

static uint64_t default_id_hash(struct tw_str id)
{
	return hash_bytes(0xcbf29ce484222325ull, id.p, id.n);
}

static uint64_t (*id_hash_fn)(struct tw_str) = default_id_hash;

uint64_t tw_seg_id_hash(struct tw_str id)
{
	return id_hash_fn(id);
}

void tw_seg_test_set_id_hash(uint64_t (*fn)(struct tw_str id))
{
	id_hash_fn = fn ? fn : default_id_hash;
}

/* ---- indexed fields ----------------------------------------------------------------------- */

/* enum tw_field of each indexed field, or -1 for the ones computed otherwise. */
static const int ix_field[TW_IX__COUNT] = {
	[TW_IX_EVENT_NAME] = TW_F_EVENT_NAME,     [TW_IX_EVENT_SOURCE] = TW_F_EVENT_SOURCE,
	[TW_IX_REGION] = TW_F_REGION,             [TW_IX_ACCOUNT] = TW_F_ACCOUNT,
	[TW_IX_PRINCIPAL] = TW_F_PRINCIPAL,       [TW_IX_IDENTITY_TYPE] = TW_F_IDENTITY_TYPE,
	[TW_IX_USER_NAME] = TW_F_USER_NAME,       [TW_IX_ACCESS_KEY] = TW_F_ACCESS_KEY,
	[TW_IX_SSO_USER] = TW_F_SSO_USER,         [TW_IX_SESSION_ISSUER] = TW_F_SESSION_ISSUER,
	[TW_IX_SOURCE_IP] = TW_F_SOURCE_IP,       [TW_IX_ERROR_CODE] = TW_F_ERROR_CODE,
	[TW_IX_READ_ONLY] = -1,                   [TW_IX_RESOURCE] = -1,
	[TW_IX_LOG_GROUP] = TW_F_LOG_GROUP,       [TW_IX_LOG_STREAM] = TW_F_LOG_STREAM,
	[TW_IX_KIND] = -1,                        [TW_IX_EVENT_ID] = TW_F_EVENT_ID,
};

const char *tw_ix_name(enum tw_ix f)
{
	switch (f) {
	case TW_IX_READ_ONLY: return "readOnly";
	case TW_IX_RESOURCE: return "resource";
	case TW_IX_KIND: return "kind";
	case TW_IX__COUNT: break;
	default:
		if ((unsigned)f < TW_IX__COUNT)
			return tw_field_name((enum tw_field)ix_field[f]);
	}
	return "?";
}

int tw_ix_lookup(const char *name, size_t n)
{
	for (int f = 0; f < TW_IX__COUNT; f++) {
		const char *s = tw_ix_name((enum tw_ix)f);
		if (strlen(s) == n && memcmp(s, name, n) == 0)
			return f;
	}
	if (n == 9 && memcmp(name, "resources", 9) == 0)
		return TW_IX_RESOURCE;
	int fld = tw_field_lookup(name, n);
	if (fld < 0)
		return -1;
	for (int f = 0; f < TW_IX__COUNT; f++)
		if (ix_field[f] == fld)
			return f;
	return -1;
}

/* Calls fn for each value of indexed field f in ev (not eventID); duplicates are skipped. */
static int ix_values(const struct tw_event *ev, int f, void (*fn)(void *ctx, struct tw_str v),
		     void *ctx)
{
	if (f == TW_IX_READ_ONLY) {
		if (ev->read_only == 1)
			fn(ctx, TW_STR_LIT("true"));
		else if (ev->read_only == 0)
			fn(ctx, TW_STR_LIT("false"));
	} else if (f == TW_IX_KIND) {
		const char *k = tw_kind_name(ev->kind);
		fn(ctx, (struct tw_str){ k, strlen(k) });
	} else if (f == TW_IX_RESOURCE) {
		for (uint32_t i = 0; i < ev->nresources; i++) {
			struct tw_str r = ev->resources[i];
			if (!r.n)
				continue;
			int dup = 0;
			for (uint32_t j = 0; j < i && !dup; j++)
				dup = str_cmp(ev->resources[j], r) == 0;
			if (!dup)
				fn(ctx, r);
		}
	} else if (ev->f[ix_field[f]].n) {
		fn(ctx, ev->f[ix_field[f]]);
	}
	return 0;
}

/* ---- block columns ------------------------------------------------------------------------ */

/* String fields stored as block columns, in column order (eventID has its own frame). Part of the
 * format: append only, never reorder. */
static const enum tw_field col_field[] = {
	TW_F_EVENT_NAME,  TW_F_EVENT_SOURCE,   TW_F_REGION,     TW_F_ACCOUNT,       TW_F_PRINCIPAL,
	TW_F_IDENTITY_TYPE, TW_F_USER_NAME,    TW_F_ACCESS_KEY, TW_F_SESSION_ISSUER, TW_F_SSO_USER,
	TW_F_SOURCE_IP,   TW_F_USER_AGENT,     TW_F_ERROR_CODE, TW_F_ERROR_MESSAGE, TW_F_EVENT_TYPE,
	TW_F_LOG_GROUP,   TW_F_LOG_STREAM,     TW_F_MESSAGE,
};
#define NSF ((int)(sizeof col_field / sizeof col_field[0]))
_Static_assert(sizeof col_field / sizeof col_field[0] + 1 == TW_F__COUNT,
	       "a field was added to enum tw_field: append it to col_field[] (a new format version)");

/* Column ids: the order of the directory at the start of a block's fields frame (the first NFCOL);
 * the raw column is the whole raw frame. */
enum { COL_HEAD = 0, COL_TIME = 1, COL_F0 = 2, COL_RES = COL_F0 + 18, COL_RAW, NCOL };
enum { NFCOL = COL_RAW }; /* columns of the fields frame */
_Static_assert(COL_RES == COL_F0 + NSF, "column ids out of step with col_field[]");

/* Frames of a block, in file order. */
enum { FR_FIELDS = 0, FR_ID = 1, FR_RAW = 2, NFRAME };

/* Frames a tw_seg_blockbuf holds (its frames bits). */
enum { BB_FIELDS = 1, BB_RAW = 2 };

/* Field-column codes: 0 absent, 1 the same value as the previous record of the block, n >= 2 a
 * value of n - 1 bytes follows. */
enum { FC_ABSENT = 0, FC_SAME = 1, FC_LIT = 2 };

/* Per-record slots of struct tw_seg_blockbuf.offs once a block is parsed: the head byte, the time
 * (two halves), offset + length into data of every tw_field (eventID too), of raw (into raw, set
 * once the raw frame is loaded: its full length, and where its bytes are), the offset of the first
 * resource entry + the resource count, and S_RAT: 0 when raw's bytes are the whole record, else
 * the record still needs its event id put back at S_RAT - 1 (done on its first tw_seg_get). */
enum { S_HEAD = 0, S_TLO = 1, S_THI = 2, S_F = 3, S_RAW = S_F + 2 * TW_F__COUNT, S_RES = S_RAW + 2,
       S_RAT = S_RES + 2, REC_SLOTS = S_RAT + 1 };

/* ---- compression -------------------------------------------------------------------------- */

static pthread_key_t dctx_key;
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;
static int dctx_key_ok;

static void dctx_free(void *p)
{
	ZSTD_freeDCtx(p);
}
static void dctx_init(void)
{
	dctx_key_ok = pthread_key_create(&dctx_key, dctx_free) == 0;
}
/* The calling thread's zstd decompression context (created once per thread). */
static ZSTD_DCtx *thread_dctx(void)
{
	pthread_once(&dctx_once, dctx_init);
	if (!dctx_key_ok)
		return NULL;
	ZSTD_DCtx *d = pthread_getspecific(dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d && pthread_setspecific(dctx_key, d) != 0) {
			ZSTD_freeDCtx(d);
			d = NULL;
		}
	}
	return d;
}

/* Decompresses stored (n bytes, codec) into exactly ulen bytes at out; 0 on any mismatch. */
static int unpack(int codec, const uint8_t *stored, size_t n, uint8_t *out, size_t ulen)
{
	if (codec == TW_SEG_RAW) {
		if (n != ulen)
			return 0;
		if (n)
			memcpy(out, stored, n);
		return 1;
	}
	if (codec == TW_SEG_DEFLATE) {
		uLongf dl = ulen;
		if (ulen > ULONG_MAX || n > ULONG_MAX)
			return 0;
		return uncompress(out, &dl, stored, n) == Z_OK && dl == ulen;
	}
	if (codec == TW_SEG_ZSTD) {
		ZSTD_DCtx *d = thread_dctx();
		size_t r;
		if (d)
			r = ZSTD_decompressDCtx(d, out, ulen, stored, n);
		else
			r = ZSTD_decompress(out, ulen, stored, n);
		return !ZSTD_isError(r) && r == ulen;
	}
	return 0;
}

static int ulen_ok(uint64_t stored, uint64_t ulen)
{
	return ulen <= stored * TW_SEG_MAX_RATIO + 65536;
}

/* ---- writer ------------------------------------------------------------------------------- */

/* One distinct (field, value) being collected, with its growing record-id list. */
struct pent {
	uint32_t field; /* enum tw_ix */
	uint32_t vlen;  /* value length */
	size_t voff;    /* value bytes at vals.p + voff */
	uint64_t hash;  /* hash of (field, value) */
	uint32_t *ids;  /* record ids, ascending */
	uint32_t n;     /* ids in use */
	uint32_t cap;   /* ids allocated */
};

/* One frame of a block as the block table describes it. */
struct frame {
	uint32_t clen, ulen;  /* stored / uncompressed bytes */
	uint32_t codec, crc;  /* codec and CRC32C of the stored bytes */
};

/* One block written, as it goes into the block table. */
struct wblk {
	uint32_t first, count;    /* record range */
	int64_t tmin, tmax;       /* time range */
	uint64_t off;             /* file offset of the fields frame (the id, then raw frame follow) */
	struct frame fr[NFRAME];  /* fields, id, raw frame */
};

/* One id-index entry. */
struct identry {
	uint64_t hash;  /* tw_seg_id_hash(eventID); at finish, the kept bits (bucket + fingerprint) */
	uint32_t block; /* block holding the record */
};

struct tw_segw {
	char *path;               /* final path */
	char *tmp;                /* path.tmp being written */
	int fd;                   /* open on tmp, or -1 */
	struct tw_seg_opts opts;  /* options, defaults filled in */
	ZSTD_CCtx *cctx;          /* reused zstd context */
	struct tw_buf col[NCOL];  /* the current block's columns */
	struct tw_buf idcol;      /* the current block's event ids (varint length + bytes each) */
	size_t prev_off[18];      /* per field column: offset in col of the previous record's value */
	size_t prev_len[18];      /* its length (0: absent, or none yet in this block) */
	int64_t prev_time;        /* the previous record's time in this block (0 at block start) */
	size_t blk_bytes;         /* bytes of all columns of the current block */
	struct tw_buf blk;        /* the fields frame being assembled (directory + columns) */
	struct tw_buf cbuf;       /* compression scratch */
	uint32_t blk_count;       /* records in the current block */
	int64_t blk_tmin, blk_tmax; /* their time range */
	uint64_t off;             /* bytes written to the file so far */
	struct wblk *blocks;      /* blocks written */
	size_t nblocks, cap_blocks; /* in use / allocated */
	uint64_t records;         /* records added */
	int64_t tmin, tmax;       /* time range of all records */
	uint64_t raw_bytes;       /* sum of raw lengths */
	struct tw_buf prev_id;    /* the previous record's eventID (the last key of the order) */
	int64_t last_time;        /* the previous record's time (order check) */
	uint32_t last_ent[TW_IX__COUNT]; /* per single-valued indexed field: entry index + 1 of the
	                          * previous record's value, 0 when it had none */
	int8_t col_ix[18];        /* per field column: its enum tw_ix, or -1 when not indexed */
	struct tw_buf vals;       /* value bytes of the postings entries */
	struct pent *ents;        /* postings entries */
	size_t nents, cap_ents;   /* in use / allocated */
	uint32_t *slots;          /* hash table of entry index + 1 (0 = empty) */
	size_t nslots;            /* power of two */
	struct identry *ids;      /* id index entries */
	size_t nids, cap_ids;     /* in use / allocated */
	enum tw_rc sticky;        /* first failure; later calls return it */
	struct tw_err sticky_err; /* its message */
};

void tw_seg_opts_default(struct tw_seg_opts *o)
{
	o->codec = TW_SEG_ZSTD;
	o->level = 0;
	o->block_bytes = 1u << 20;
	o->fsync = 1;
}

static enum tw_rc write_all(struct tw_segw *w, const void *p, size_t n, struct tw_err *err)
{
	const char *s = p;
	while (n) {
		ssize_t k = write(w->fd, s, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return tw_err_set(err, TW_EIO, "%s: write: %s", w->tmp,
					  k < 0 ? strerror(errno) : "no progress");
		s += k;
		n -= (size_t)k;
		w->off += (uint64_t)k;
	}
	return TW_OK;
}

enum tw_rc tw_segw_open(const char *path, const struct tw_seg_opts *opts, struct tw_segw **out,
			struct tw_err *err)
{
	struct tw_segw *w = calloc(1, sizeof(*w));
	if (!w)
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", path);
	w->fd = -1;
	tw_seg_opts_default(&w->opts);
	if (opts) {
		w->opts = *opts;
		if (!w->opts.block_bytes)
			w->opts.block_bytes = 1u << 20;
	}
	if (w->opts.codec != TW_SEG_RAW && w->opts.codec != TW_SEG_DEFLATE &&
	    w->opts.codec != TW_SEG_ZSTD) {
		free(w);
		return tw_err_set(err, TW_EINVAL, "%s: unknown segment codec %d", path, (int)opts->codec);
	}
	if (w->opts.block_bytes > TW_SEG_MAX_BLOCK / 2)
		w->opts.block_bytes = TW_SEG_MAX_BLOCK / 2;
	tw_buf_init(&w->blk, TW_SEG_MAX_BLOCK);
	for (int c = 0; c < NCOL; c++)
		tw_buf_init(&w->col[c], TW_SEG_MAX_BLOCK);
	tw_buf_init(&w->idcol, TW_SEG_MAX_BLOCK);
	tw_buf_init(&w->cbuf, SIZE_MAX / 2);
	tw_buf_init(&w->prev_id, SIZE_MAX / 2);
	for (int i = 0; i < NSF; i++) {
		w->col_ix[i] = -1;
		for (int f = 0; f < TW_IX__COUNT; f++)
			if (f != TW_IX_EVENT_ID && ix_field[f] == (int)col_field[i])
				w->col_ix[i] = (int8_t)f;
	}
	tw_buf_init(&w->vals, SIZE_MAX / 2);
	w->tmin = INT64_MAX;
	w->tmax = INT64_MIN;
	w->path = strdup(path);
	w->tmp = malloc(strlen(path) + 5);
	w->nslots = 1024;
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	if (w->opts.codec == TW_SEG_ZSTD)
		w->cctx = ZSTD_createCCtx();
	if (!w->path || !w->tmp || !w->slots || (w->opts.codec == TW_SEG_ZSTD && !w->cctx)) {
		tw_segw_abort(w);
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", path);
	}
	sprintf(w->tmp, "%s.tmp", path);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		enum tw_rc rc = tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: open: %s",
					   w->tmp, strerror(errno));
		free(w->tmp);
		w->tmp = NULL; /* nothing to remove */
		tw_segw_abort(w);
		return rc;
	}
	uint8_t h[TW_SEG_HEADER_SIZE];
	memcpy(h, seg_magic, 8);
	put32(h + 8, TW_SEG_VERSION);
	put32(h + 12, 0);
	enum tw_rc rc = write_all(w, h, sizeof(h), err);
	if (rc) {
		tw_segw_abort(w);
		return rc;
	}
	*out = w;
	return TW_OK;
}

/* Compresses src with the writer's codec into w->cbuf; falls back to raw when the codec fails
 * to shrink it or the ratio would exceed what readers accept. *codec gets what was used. */
static enum tw_rc pack(struct tw_segw *w, int want, int level, const void *src, size_t n,
		       const void **stored, size_t *sn, int *codec, struct tw_err *err)
{
	enum tw_rc rc;
	*codec = TW_SEG_RAW;
	*stored = src;
	*sn = n;
	if (want == TW_SEG_ZSTD) {
		size_t bound = ZSTD_compressBound(n);
		tw_buf_reset(&w->cbuf);
		if ((rc = tw_buf_reserve(&w->cbuf, bound, err)))
			return rc;
		if (!w->cctx && !(w->cctx = ZSTD_createCCtx()))
			return tw_err_set(err, TW_ENOMEM, "%s: out of memory", w->tmp);
		ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_and_parameters);
		ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level ? level : 1);
		/* a window over the whole block (level 1 alone uses 512 KiB): -1% of the file */
		int wl = 20;
		while (wl < 27 && ((size_t)1 << wl) < n)
			wl++;
		ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_windowLog, wl);
		size_t r = ZSTD_compress2(w->cctx, w->cbuf.p, bound, src, n);
		if (ZSTD_isError(r))
			return tw_err_set(err, TW_EIO, "%s: zstd: %s", w->tmp, ZSTD_getErrorName(r));
		if (r < n && ulen_ok(r, n)) {
			*codec = TW_SEG_ZSTD;
			*stored = w->cbuf.p;
			*sn = r;
		}
	} else if (want == TW_SEG_DEFLATE) {
		uLongf bound = compressBound(n);
		tw_buf_reset(&w->cbuf);
		if ((rc = tw_buf_reserve(&w->cbuf, bound, err)))
			return rc;
		int zr = compress2((Bytef *)w->cbuf.p, &bound, src, n, level ? level : 6);
		if (zr != Z_OK)
			return tw_err_set(err, TW_EIO, "%s: zlib compress2 failed (%d)", w->tmp, zr);
		if (bound < n && ulen_ok(bound, n)) {
			*codec = TW_SEG_DEFLATE;
			*stored = w->cbuf.p;
			*sn = bound;
		}
	}
	return TW_OK;
}

/* Compresses n bytes at src with the writer's codec, appends them to the file and describes them
 * in *fr. */
static enum tw_rc write_frame(struct tw_segw *w, const void *src, size_t n, struct frame *fr,
			      struct tw_err *err)
{
	const void *stored;
	size_t sn;
	int codec;
	enum tw_rc rc = pack(w, w->opts.codec, w->opts.level, src, n, &stored, &sn, &codec, err);
	if (rc)
		return rc;
	fr->clen = (uint32_t)sn;
	fr->ulen = (uint32_t)n;
	fr->codec = (uint32_t)codec;
	fr->crc = tw_wal_crc32c(0, stored, sn);
	return write_all(w, stored, sn, err);
}

static enum tw_rc flush_block(struct tw_segw *w, struct tw_err *err)
{
	if (!w->blk_count)
		return TW_OK;
	enum tw_rc rc;
	/* fields frame: the column directory, then the columns (all but raw) */
	tw_buf_reset(&w->blk);
	for (int c = 0; c < NFCOL; c++)
		if ((rc = put_varint(&w->blk, w->col[c].n, err)))
			return rc;
	for (int c = 0; c < NFCOL; c++)
		if ((rc = tw_buf_append(&w->blk, w->col[c].p, w->col[c].n, err)))
			return rc;
	if (w->nblocks == w->cap_blocks) {
		size_t nc = w->cap_blocks ? 2 * w->cap_blocks : 16;
		struct wblk *nb = realloc(w->blocks, nc * sizeof(*nb));
		if (!nb)
			return tw_err_set(err, TW_ENOMEM, "%s: out of memory", w->tmp);
		w->blocks = nb;
		w->cap_blocks = nc;
	}
	struct wblk *b = &w->blocks[w->nblocks];
	b->first = (uint32_t)(w->records - w->blk_count);
	b->count = w->blk_count;
	b->tmin = w->blk_tmin;
	b->tmax = w->blk_tmax;
	b->off = w->off;
	if ((rc = write_frame(w, w->blk.p, w->blk.n, &b->fr[FR_FIELDS], err)) ||
	    (rc = write_frame(w, w->idcol.p, w->idcol.n, &b->fr[FR_ID], err)) ||
	    (rc = write_frame(w, w->col[COL_RAW].p, w->col[COL_RAW].n, &b->fr[FR_RAW], err)))
		return rc;
	w->nblocks++;
	w->blk_count = 0;
	for (int c = 0; c < NCOL; c++)
		tw_buf_reset(&w->col[c]);
	tw_buf_reset(&w->idcol);
	memset(w->prev_len, 0, sizeof(w->prev_len));
	w->prev_time = 0;
	w->blk_bytes = 0;
	return TW_OK;
}

/* Makes room for more bytes in b: the common case (room left) without a call. */
static inline enum tw_rc room(struct tw_buf *b, size_t more, struct tw_err *err)
{
	return b->n + more < b->cap ? TW_OK : tw_buf_reserve(b, more, err);
}

/* Appends varint v then n bytes at p to b (room for both made first). */
static enum tw_rc put_len_bytes(struct tw_buf *b, uint64_t v, const void *p, size_t n, struct tw_err *err)
{
	enum tw_rc rc = room(b, 10 + n, err);
	if (rc)
		return rc;
	b->n += tw_evcodec_varint_put((uint8_t *)b->p + b->n, v);
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return TW_OK;
}

/* The value of each single-valued indexed field of ev (all but resource and eventID; the others
 * get { NULL, 0 }), as ix_values gives them. */
static void single_values(const struct tw_event *ev, struct tw_str *v)
{
	for (int f = 0; f < TW_IX__COUNT; f++)
		v[f] = ix_field[f] >= 0 && f != TW_IX_EVENT_ID ? ev->f[ix_field[f]] : (struct tw_str){ NULL, 0 };
	if (ev->read_only == 1)
		v[TW_IX_READ_ONLY] = TW_STR_LIT("true");
	else if (ev->read_only == 0)
		v[TW_IX_READ_ONLY] = TW_STR_LIT("false");
	const char *k = tw_kind_name(ev->kind);
	v[TW_IX_KIND] = (struct tw_str){ k, strlen(k) };
}

/* Appends ev to the current block's columns; same[f] says that indexed field f has the previous
 * record's value. On failure the caller restores the columns. */
static enum tw_rc add_columns(struct tw_segw *w, const struct tw_event *ev, const uint8_t *same,
			      struct tw_err *err)
{
	enum tw_rc rc;
	unsigned ro = (unsigned)(ev->read_only < 0 ? 0 : ev->read_only + 1);
	struct tw_buf *b = &w->col[COL_HEAD];
	if ((rc = room(b, 1, err)))
		return rc;
	b->p[b->n++] = (char)((unsigned)ev->kind | ro << 4);
	uint64_t d = (uint64_t)ev->time_ms - (uint64_t)w->prev_time;
	int64_t sd;
	memcpy(&sd, &d, sizeof(sd));
	b = &w->col[COL_TIME];
	if ((rc = room(b, 10, err)))
		return rc;
	b->n += tw_evcodec_varint_put((uint8_t *)b->p + b->n, tw_evcodec_zigzag(sd));
	for (int i = 0; i < NSF; i++) {
		struct tw_str v = ev->f[col_field[i]];
		int ix = w->col_ix[i];
		b = &w->col[COL_F0 + i];
		if (!v.n || (w->prev_len[i] == v.n &&
			     (ix >= 0 ? same[ix] : memcmp(b->p + w->prev_off[i], v.p, v.n) == 0))) {
			if ((rc = room(b, 1, err)))
				return rc;
			b->p[b->n++] = v.n ? FC_SAME : FC_ABSENT;
			if (!v.n)
				w->prev_len[i] = 0;
			continue;
		}
		if ((rc = room(b, 10 + v.n, err)))
			return rc;
		b->n += tw_evcodec_varint_put((uint8_t *)b->p + b->n, (uint64_t)v.n + 1);
		w->prev_off[i] = b->n;
		w->prev_len[i] = v.n;
		memcpy(b->p + b->n, v.p, v.n);
		b->n += v.n;
	}
	b = &w->col[COL_RES];
	if ((rc = room(b, 10, err)))
		return rc;
	b->n += tw_evcodec_varint_put((uint8_t *)b->p + b->n, ev->nresources);
	for (uint32_t i = 0; i < ev->nresources; i++)
		if ((rc = put_len_bytes(b, ev->resources[i].n, ev->resources[i].p, ev->resources[i].n, err)))
			return rc;
	/* raw without its first copy of the event id (the id frame has it): position + 1, or 0 */
	struct tw_str id = ev->f[TW_F_EVENT_ID], raw = ev->raw;
	const char *at = id.n && raw.n ? memmem(raw.p, raw.n, id.p, id.n) : NULL;
	size_t pos = at ? (size_t)(at - raw.p) : 0;
	b = &w->col[COL_RAW];
	if ((rc = room(b, 20 + raw.n, err)))
		return rc;
	b->n += tw_evcodec_varint_put((uint8_t *)b->p + b->n, at ? pos + 1 : 0);
	b->n += tw_evcodec_varint_put((uint8_t *)b->p + b->n, at ? raw.n - id.n : raw.n);
	if (at) {
		memcpy(b->p + b->n, raw.p, pos);
		memcpy(b->p + b->n + pos, at + id.n, raw.n - pos - id.n);
		b->n += raw.n - id.n;
	} else if (raw.n) {
		memcpy(b->p + b->n, raw.p, raw.n);
		b->n += raw.n;
	}
	if ((rc = put_len_bytes(&w->idcol, id.n, id.p, id.n, err)))
		return rc;
	w->prev_time = ev->time_ms;
	return TW_OK;
}

/* What tw_evcodec_encode refuses: the same rules hold for a segment's records. */
static enum tw_rc check_event(const struct tw_segw *w, const struct tw_event *ev, struct tw_err *err)
{
	if ((int)ev->kind < 1 || (int)ev->kind > TW_KIND_MAX || ev->read_only < -1 || ev->read_only > 1)
		return tw_err_set(err, TW_EINVAL, "%s: record has kind %d read_only %d", w->path,
				  (int)ev->kind, ev->read_only);
	for (int i = 0; i < TW_F__COUNT; i++)
		if (ev->f[i].n && !ev->f[i].p)
			return tw_err_set(err, TW_EINVAL, "%s: field %s has a length and no bytes", w->path,
					  tw_field_name((enum tw_field)i));
	if ((ev->nresources && !ev->resources) || (ev->raw.n && !ev->raw.p))
		return tw_err_set(err, TW_EINVAL, "%s: record has a length and no bytes", w->path);
	for (uint32_t i = 0; i < ev->nresources; i++)
		if (ev->resources[i].n && !ev->resources[i].p)
			return tw_err_set(err, TW_EINVAL, "%s: resource %u has a length and no bytes",
					  w->path, i);
	return TW_OK;
}

static uint64_t load64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}
static uint64_t load32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}
/* memcmp(a, b, n) == 0 for n >= 1, inline: most values are short and most compare equal. */
static inline int bytes_eq(const char *a, const char *b, size_t n)
{
	if (n >= 8) {
		for (size_t i = 0; i + 8 < n; i += 8)
			if (load64(a + i) != load64(b + i))
				return 0;
		return load64(a + n - 8) == load64(b + n - 8);
	}
	if (n >= 4)
		return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
	return a[0] == b[0] && a[n >> 1] == b[n >> 1] && a[n - 1] == b[n - 1];
}

/* 64 x 64 -> 128-bit multiply folded to 64 bits. */
static uint64_t mul_fold(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Hash of (field, value) for the in-memory postings table only (never written): 16 bytes a step. */
static uint64_t post_hash(uint32_t fld, const char *p, size_t n)
{
	const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull, k2 = 0x8ebc6af09c88c6e3ull;
	uint64_t h = k0 ^ ((uint64_t)fld << 40) ^ n, a = 0, b = 0;
	size_t i = n;
	while (i > 16) {
		h = mul_fold(load64(p) ^ k1, load64(p + 8) ^ h);
		p += 16;
		i -= 16;
	}
	if (i >= 8) {
		a = load64(p);
		b = load64(p + i - 8);
	} else if (i >= 4) {
		a = load32(p);
		b = load32(p + i - 4);
	} else if (i) {
		a = (uint64_t)(uint8_t)p[0] << 16 | (uint64_t)(uint8_t)p[i >> 1] << 8 | (uint8_t)p[i - 1];
	}
	return mul_fold(k1 ^ n, mul_fold(a ^ k1, b ^ h) ^ k2);
}

/* The entry of (fld, v) (v.n >= 1), created with no ids when new; *idx gets its index. */
static enum tw_rc post_find(struct tw_segw *w, uint32_t fld, struct tw_str v, size_t *idx,
			    struct tw_err *err)
{
	uint64_t h = post_hash(fld, v.p, v.n);
	size_t mask = w->nslots - 1, i = h & mask;
	while (w->slots[i]) {
		const struct pent *c = &w->ents[w->slots[i] - 1];
		if (c->hash == h && c->field == fld && c->vlen == v.n &&
		    memcmp(w->vals.p + c->voff, v.p, v.n) == 0) {
			*idx = w->slots[i] - 1;
			return TW_OK;
		}
		i = (i + 1) & mask;
	}
	if (v.n > UINT32_MAX || w->nents >= UINT32_MAX - 1)
		return tw_err_set(err, TW_ELIMIT, "%s: too many or too long values", w->tmp);
	if (w->nents == w->cap_ents) {
		size_t nc = w->cap_ents ? 2 * w->cap_ents : 256;
		struct pent *ne = realloc(w->ents, nc * sizeof(*ne));
		if (!ne)
			goto nomem;
		w->ents = ne;
		w->cap_ents = nc;
	}
	size_t voff = w->vals.n;
	enum tw_rc rc = tw_buf_append(&w->vals, v.p, v.n, err);
	if (rc)
		return rc;
	w->ents[w->nents] = (struct pent){ fld, (uint32_t)v.n, voff, h, NULL, 0, 0 };
	*idx = w->nents;
	w->slots[i] = (uint32_t)(++w->nents);
	if (w->nents * 2 > w->nslots) { /* grow and rehash */
		size_t ns = w->nslots * 2;
		uint32_t *sl = calloc(ns, sizeof(*sl));
		if (!sl)
			goto nomem;
		for (size_t k = 0; k < w->nents; k++) {
			size_t j = w->ents[k].hash & (ns - 1);
			while (sl[j])
				j = (j + 1) & (ns - 1);
			sl[j] = (uint32_t)(k + 1);
		}
		free(w->slots);
		w->slots = sl;
		w->nslots = ns;
	}
	return TW_OK;
nomem:
	return tw_err_set(err, TW_ENOMEM, "%s: out of memory building postings", w->tmp);
}

/* Appends record rec to entry idx's ids (once). */
static enum tw_rc post_push(struct tw_segw *w, size_t idx, uint32_t rec, struct tw_err *err)
{
	struct pent *e = &w->ents[idx];
	if (e->n && e->ids[e->n - 1] == rec)
		return TW_OK;
	if (e->n == e->cap) {
		uint32_t nc = e->cap ? 2 * e->cap : 4;
		uint32_t *ni = realloc(e->ids, nc * sizeof(*ni));
		if (!ni)
			return tw_err_set(err, TW_ENOMEM, "%s: out of memory building postings", w->tmp);
		e->ids = ni;
		e->cap = nc;
	}
	e->ids[e->n++] = rec;
	return TW_OK;
}

/* The previous record's value of single-valued indexed field f ({ NULL, 0 } when none). */
static struct tw_str last_value(const struct tw_segw *w, int f)
{
	if (!w->last_ent[f])
		return (struct tw_str){ NULL, 0 };
	const struct pent *e = &w->ents[w->last_ent[f] - 1];
	return (struct tw_str){ w->vals.p + e->voff, e->vlen };
}

/* tw_seg_order(previous record, ev), reusing same[] for the fields equal to the previous ones. */
static int order_vs_last(const struct tw_segw *w, const struct tw_event *ev, const uint8_t *same)
{
	static const int key[3] = { TW_IX_PRINCIPAL, TW_IX_EVENT_SOURCE, TW_IX_EVENT_NAME };
	for (int k = 0; k < 3; k++) {
		int c = same[key[k]] ? 0 : str_cmp(last_value(w, key[k]), ev->f[ix_field[key[k]]]);
		if (c)
			return c;
	}
	if (w->last_time != ev->time_ms)
		return w->last_time < ev->time_ms ? -1 : 1;
	return str_cmp((struct tw_str){ w->prev_id.p, w->prev_id.n }, ev->f[TW_F_EVENT_ID]);
}

enum tw_rc tw_segw_add(struct tw_segw *w, const struct tw_event *ev, struct tw_err *err)
{
	enum tw_rc rc;
	if (w->sticky) {
		if (err)
			*err = w->sticky_err;
		return w->sticky;
	}
	if ((rc = check_event(w, ev, err)))
		return rc;
	/* single-valued indexed fields equal to the previous record's: the common case in
	 * tw_seg_order, answered once here for the order check, the columns and the postings */
	struct tw_str val[TW_IX__COUNT];
	uint8_t same[TW_IX__COUNT];
	single_values(ev, val);
	for (int f = 0; f < TW_IX__COUNT; f++) {
		struct tw_str last = last_value(w, f);
		same[f] = val[f].n && last.n == val[f].n && bytes_eq(last.p, val[f].p, last.n);
	}
	if (w->records && order_vs_last(w, ev, same) > 0)
		return tw_err_set(err, TW_EINVAL, "%s: record %llu is out of segment order", w->path,
				  (unsigned long long)w->records);
	if (w->records >= UINT32_MAX - 1)
		return tw_err_set(err, TW_ELIMIT, "%s: too many records for one segment", w->path);
	{
		size_t mark[NCOL], idmark = w->idcol.n, poff[18], plen[18];
		int64_t ptime = w->prev_time;
		for (int c = 0; c < NCOL; c++)
			mark[c] = w->col[c].n;
		memcpy(poff, w->prev_off, sizeof(poff));
		memcpy(plen, w->prev_len, sizeof(plen));
		rc = add_columns(w, ev, same, err);
		size_t added = w->idcol.n - idmark;
		for (int c = 0; c < NCOL; c++)
			added += w->col[c].n - mark[c];
		if (!rc && w->blk_bytes + added > TW_SEG_MAX_BLOCK - 16 * NCOL)
			rc = tw_err_set(err, TW_ELIMIT, "%s: record %llu is too large for a block",
					w->path, (unsigned long long)w->records);
		if (rc) { /* nothing kept: the writer stays usable */
			for (int c = 0; c < NCOL; c++)
				w->col[c].n = mark[c];
			w->idcol.n = idmark;
			memcpy(w->prev_off, poff, sizeof(poff));
			memcpy(w->prev_len, plen, sizeof(plen));
			w->prev_time = ptime;
			return rc;
		}
		w->blk_bytes += added;
	}
	struct tw_str id = ev->f[TW_F_EVENT_ID];
	tw_buf_reset(&w->prev_id);
	if ((rc = tw_buf_append(&w->prev_id, id.p, id.n, err)))
		goto fail;
	w->last_time = ev->time_ms;
	uint32_t rec = (uint32_t)w->records;
	for (int f = 0; f < TW_IX__COUNT; f++) {
		size_t idx;
		if (f == TW_IX_EVENT_ID)
			continue;
		if (f == TW_IX_RESOURCE) {
			for (uint32_t i = 0; i < ev->nresources; i++) {
				struct tw_str r = ev->resources[i];
				if (!r.n)
					continue;
				if ((rc = post_find(w, (uint32_t)f, r, &idx, err)) ||
				    (rc = post_push(w, idx, rec, err)))
					goto fail;
			}
			continue;
		}
		if (!val[f].n) {
			w->last_ent[f] = 0;
			continue;
		}
		if (same[f])
			idx = w->last_ent[f] - 1;
		else if ((rc = post_find(w, (uint32_t)f, val[f], &idx, err)))
			goto fail;
		if ((rc = post_push(w, idx, rec, err)))
			goto fail;
		w->last_ent[f] = (uint32_t)idx + 1;
	}
	if (id.n) {
		if (w->nids == w->cap_ids) {
			size_t nc = w->cap_ids ? 2 * w->cap_ids : 1024;
			struct identry *ni = realloc(w->ids, nc * sizeof(*ni));
			if (!ni) {
				rc = tw_err_set(err, TW_ENOMEM, "%s: out of memory", w->tmp);
				goto fail;
			}
			w->ids = ni;
			w->cap_ids = nc;
		}
		w->ids[w->nids++] = (struct identry){ tw_seg_id_hash(id), (uint32_t)w->nblocks };
	}
	if (!w->blk_count || ev->time_ms < w->blk_tmin)
		w->blk_tmin = ev->time_ms;
	if (!w->blk_count || ev->time_ms > w->blk_tmax)
		w->blk_tmax = ev->time_ms;
	if (ev->time_ms < w->tmin)
		w->tmin = ev->time_ms;
	if (ev->time_ms > w->tmax)
		w->tmax = ev->time_ms;
	w->raw_bytes += ev->raw.n;
	w->records++;
	w->blk_count++;
	if (w->blk_bytes >= w->opts.block_bytes && (rc = flush_block(w, err)))
		goto fail;
	return TW_OK;
fail:
	/* postings may be half updated: the writer cannot go on */
	w->sticky = rc;
	if (err)
		w->sticky_err = *err;
	else
		tw_err_set(&w->sticky_err, rc, "%s: earlier failure", w->path);
	return rc;
}

static const struct tw_segw *sort_w; /* qsort context: entries compare by value bytes */
static int pent_cmp(const void *a, const void *b)
{
	const struct pent *x = a, *y = b;
	if (x->field != y->field)
		return x->field < y->field ? -1 : 1;
	struct tw_str sx = { sort_w->vals.p + x->voff, x->vlen }, sy = { sort_w->vals.p + y->voff, y->vlen };
	return str_cmp(sx, sy);
}
static int id_cmp(const void *a, const void *b)
{
	const struct identry *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->block < y->block ? -1 : x->block > y->block;
}

/* Sorts w->ids by (hash, block) where hash has `bits` bits: a stable LSD radix sort on the hash
 * (11 bits a pass), since the ids were added with blocks ascending. */
static enum tw_rc sort_ids(struct tw_segw *w, unsigned bits, struct tw_err *err)
{
	size_t n = w->nids;
	if (n < 2)
		return TW_OK;
	if (n < 256) {
		qsort(w->ids, n, sizeof(*w->ids), id_cmp);
		return TW_OK;
	}
	struct identry *tmp = malloc(n * sizeof(*tmp)), *src = w->ids, *dst = tmp;
	if (!tmp)
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory sorting event ids", w->tmp);
	for (unsigned shift = 0; shift < bits; shift += 11) {
		size_t cnt[2048] = { 0 };
		for (size_t i = 0; i < n; i++)
			cnt[src[i].hash >> shift & 2047]++;
		size_t sum = 0;
		for (size_t d = 0; d < 2048; d++) {
			size_t c = cnt[d];
			cnt[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[src[i].hash >> shift & 2047]++] = src[i];
		struct identry *t = src;
		src = dst;
		dst = t;
	}
	if (src != w->ids)
		memcpy(w->ids, src, n * sizeof(*src));
	free(tmp);
	return TW_OK;
}

/* Writes the ascending, distinct ids[0..n) (n >= 1) into out in whichever of the POST_*
 * encodings is smallest (ties go to the lower number); *encp gets the encoding. */
static enum tw_rc encode_list(const uint32_t *ids, uint32_t n, struct tw_buf *out, int *encp,
			      struct tw_err *err)
{
	enum tw_rc rc;
	size_t sz_delta = tw_evcodec_varint_len(ids[0]), sz_runs = 0;
	uint32_t start = ids[0], prev_end = 0; /* current run's first id; previous run's end + 1 */
	int first_run = 1;
	for (uint32_t i = 1; i <= n; i++) {
		if (i < n)
			sz_delta += tw_evcodec_varint_len(ids[i] - ids[i - 1]);
		if (i < n && ids[i] == ids[i - 1] + 1)
			continue;
		/* the run [start, ids[i-1]] ends here */
		sz_runs += tw_evcodec_varint_len(first_run ? start : start - prev_end - 1) +
			   tw_evcodec_varint_len(ids[i - 1] - start);
		prev_end = ids[i - 1] + 1;
		first_run = 0;
		if (i < n)
			start = ids[i];
	}
	uint64_t span = (uint64_t)ids[n - 1] - ids[0] + 1;
	size_t sz_bits = tw_evcodec_varint_len(ids[0]) + (size_t)((span + 7) / 8);
	int enc = POST_DELTA;
	size_t best = sz_delta;
	if (sz_runs < best)
		enc = POST_RUNS, best = sz_runs;
	if (sz_bits < best)
		enc = POST_BITMAP, best = sz_bits;
	*encp = enc;
	if ((rc = tw_buf_reserve(out, best, err)))
		return rc;
	if (enc == POST_DELTA) {
		for (uint32_t i = 0; i < n; i++)
			if ((rc = put_varint(out, i ? ids[i] - ids[i - 1] : ids[0], err)))
				return rc;
	} else if (enc == POST_RUNS) {
		first_run = 1;
		start = ids[0];
		for (uint32_t i = 1; i <= n; i++) {
			if (i < n && ids[i] == ids[i - 1] + 1)
				continue;
			if ((rc = put_varint(out, first_run ? start : start - prev_end - 1, err)) ||
			    (rc = put_varint(out, ids[i - 1] - start, err)))
				return rc;
			prev_end = ids[i - 1] + 1;
			first_run = 0;
			if (i < n)
				start = ids[i];
		}
	} else {
		if ((rc = put_varint(out, ids[0], err)))
			return rc;
		uint8_t *bm = (uint8_t *)out->p + out->n;
		size_t nb = (size_t)((span + 7) / 8);
		memset(bm, 0, nb);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t d = ids[i] - ids[0];
			bm[d >> 3] |= (uint8_t)(1u << (d & 7));
		}
		out->n += nb;
	}
	return TW_OK;
}

/* A section as it goes into the section table. */
struct wsec {
	uint32_t kind, field;  /* SEC_*, enum tw_ix */
	uint64_t off, len;     /* where */
	uint32_t crc;          /* CRC32C of its bytes */
};

static enum tw_rc write_section(struct tw_segw *w, struct wsec *s, uint32_t kind, uint32_t field,
				const void *p, size_t n, struct tw_err *err)
{
	s->kind = kind;
	s->field = field;
	s->off = w->off;
	s->len = n;
	s->crc = tw_wal_crc32c(0, p, n);
	return write_all(w, p, n, err);
}

static enum tw_rc fsync_dir(const char *path, struct tw_err *err)
{
	char *d = strdup(path);
	if (!d)
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", path);
	char *sl = strrchr(d, '/');
	const char *dir = ".";
	if (sl) {
		*sl = 0;
		dir = sl == d ? "/" : d;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum tw_rc rc = TW_OK;
	if (fd < 0 || fsync(fd) != 0)
		rc = tw_err_set(err, TW_EIO, "%s: fsync of directory: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(d);
	return rc;
}

static enum tw_rc finish(struct tw_segw *w, struct tw_seg_info *info, struct tw_err *err)
{
	enum tw_rc rc;
	struct tw_buf sec, body;
	struct wsec secs[TW_IX__COUNT + 2];
	size_t nsec = 0;
	uint64_t bytes_post = 0, bytes_blocks = 0;
	tw_buf_init(&sec, SIZE_MAX / 2);
	tw_buf_init(&body, SIZE_MAX / 2);
	if (w->sticky) {
		if (err)
			*err = w->sticky_err;
		rc = w->sticky;
		goto out;
	}
	if ((rc = flush_block(w, err)))
		goto out;
	/* block table */
	if ((rc = tw_buf_reserve(&sec, 8 + w->nblocks * TW_SEG_BLOCK_ENTRY, err)))
		goto out;
	put32((uint8_t *)sec.p, (uint32_t)w->nblocks);
	put32((uint8_t *)sec.p + 4, 0);
	for (size_t i = 0; i < w->nblocks; i++) {
		uint8_t *e = (uint8_t *)sec.p + 8 + i * TW_SEG_BLOCK_ENTRY;
		const struct wblk *b = &w->blocks[i];
		put32(e, b->first);
		put32(e + 4, b->count);
		put64(e + 8, (uint64_t)b->tmin);
		put64(e + 16, (uint64_t)b->tmax);
		put64(e + 24, b->off);
		for (int k = 0; k < NFRAME; k++) {
			uint8_t *fe = e + 32 + 16 * k;
			put32(fe, b->fr[k].clen);
			put32(fe + 4, b->fr[k].ulen);
			put32(fe + 8, b->fr[k].codec);
			put32(fe + 12, b->fr[k].crc);
			bytes_blocks += b->fr[k].clen;
		}
	}
	sec.n = 8 + w->nblocks * TW_SEG_BLOCK_ENTRY;
	if ((rc = write_section(w, &secs[nsec++], SEC_BLOCKS, 0, sec.p, sec.n, err)))
		goto out;
	/* postings, one section per field */
	sort_w = w;
	if (w->nents)
		qsort(w->ents, w->nents, sizeof(*w->ents), pent_cmp);
	size_t k = 0;
	for (uint32_t f = 0; f < TW_IX__COUNT; f++) {
		if (f == TW_IX_EVENT_ID)
			continue;
		size_t j = k;
		while (j < w->nents && w->ents[j].field == f)
			j++;
		tw_buf_reset(&body);
		if ((rc = put_varint(&body, j - k, err)))
			goto out;
		for (size_t e = k; e < j; e++) {
			const struct pent *p = &w->ents[e];
			size_t mark;
			if ((rc = put_varint(&body, p->vlen, err)) ||
			    (rc = tw_buf_append(&body, w->vals.p + p->voff, p->vlen, err)) ||
			    (rc = put_varint(&body, p->n, err)))
				goto out;
			tw_buf_reset(&sec);
			int enc;
			if ((rc = encode_list(p->ids, p->n, &sec, &enc, err)))
				goto out;
			uint8_t eb = (uint8_t)enc;
			mark = sec.n;
			if ((rc = tw_buf_append(&body, &eb, 1, err)) || (rc = put_varint(&body, mark, err)) ||
			    (rc = tw_buf_append(&body, sec.p, sec.n, err)))
				goto out;
		}
		k = j;
		const void *stored;
		size_t sn;
		int codec;
		if ((rc = pack(w, TW_SEG_ZSTD, 9, body.p, body.n, &stored, &sn, &codec, err)))
			goto out;
		tw_buf_reset(&sec);
		uint8_t h[16];
		put32(h, (uint32_t)codec);
		put32(h + 4, f);
		put64(h + 8, body.n);
		if ((rc = tw_buf_append(&sec, h, 16, err)) || (rc = tw_buf_append(&sec, stored, sn, err)))
			goto out;
		if ((rc = write_section(w, &secs[nsec++], SEC_POSTINGS, f, sec.p, sec.n, err)))
			goto out;
		bytes_post += sec.n;
	}
	/* id index: 2^k buckets of 16-bit fingerprints, each with its block (bw bits, packed) */
	{
		unsigned kb = 0, bw = 1;
		while (kb < TW_SEG_IDS_MAX_BITS && ((uint64_t)8 << (kb + 1)) <= w->nids)
			kb++;
		while (bw < 32 && w->nblocks > ((uint64_t)1 << bw))
			bw++;
		for (size_t i = 0; i < w->nids; i++)
			w->ids[i].hash >>= 48 - kb; /* bucket (k bits) then fingerprint (16 bits) */
		if ((rc = sort_ids(w, 16 + kb, err)))
			goto out;
		size_t nb = (size_t)1 << kb, len = TW_SEG_IDS_HEADER + 4 * (nb + 1) + w->nids * 2 +
						   (size_t)(((uint64_t)w->nids * bw + 7) / 8);
		tw_buf_reset(&sec);
		if ((rc = tw_buf_reserve(&sec, len, err)))
			goto out;
		uint8_t *p = (uint8_t *)sec.p;
		memset(p, 0, TW_SEG_IDS_HEADER);
		put64(p, w->nids);
		p[8] = (uint8_t)kb;
		p[9] = (uint8_t)bw;
		uint8_t *tab = p + TW_SEG_IDS_HEADER, *fps = tab + 4 * (nb + 1), *blks = fps + 2 * w->nids;
		size_t j = 0;
		for (size_t bk = 0; bk <= nb; bk++) {
			while (j < w->nids && (w->ids[j].hash >> 16) < bk)
				j++;
			put32(tab + 4 * bk, (uint32_t)j);
		}
		memset(blks, 0, len - (size_t)(blks - p));
		for (size_t i = 0; i < w->nids; i++) {
			fps[2 * i] = (uint8_t)w->ids[i].hash;
			fps[2 * i + 1] = (uint8_t)(w->ids[i].hash >> 8);
			uint64_t bit = (uint64_t)i * bw; /* block < 2^bw: a byte at a time */
			uint64_t v = (uint64_t)w->ids[i].block << (bit & 7);
			for (size_t at = (size_t)(bit >> 3), nbits = bw + (bit & 7); nbits;
			     at++, v >>= 8, nbits = nbits > 8 ? nbits - 8 : 0)
				blks[at] |= (uint8_t)v;
		}
		sec.n = len;
		if ((rc = write_section(w, &secs[nsec++], SEC_IDS, 0, sec.p, sec.n, err)))
			goto out;
		bytes_post += sec.n;
	}
	/* section table + footer */
	tw_buf_reset(&sec);
	if ((rc = tw_buf_reserve(&sec, 8 + nsec * TW_SEG_SECTION_ENTRY, err)))
		goto out;
	memset(sec.p, 0, 8 + nsec * TW_SEG_SECTION_ENTRY);
	put32((uint8_t *)sec.p, (uint32_t)nsec);
	for (size_t i = 0; i < nsec; i++) {
		uint8_t *e = (uint8_t *)sec.p + 8 + i * TW_SEG_SECTION_ENTRY;
		put32(e, secs[i].kind);
		put32(e + 4, secs[i].field);
		put64(e + 8, secs[i].off);
		put64(e + 16, secs[i].len);
		put32(e + 24, secs[i].crc);
	}
	sec.n = 8 + nsec * TW_SEG_SECTION_ENTRY;
	uint8_t ft[TW_SEG_FOOTER_SIZE];
	memset(ft, 0, sizeof(ft));
	put64(ft, w->off);
	put64(ft + 8, sec.n);
	put32(ft + 16, tw_wal_crc32c(0, sec.p, sec.n));
	put32(ft + 20, (uint32_t)w->nblocks);
	put64(ft + 24, w->records);
	put64(ft + 32, (uint64_t)(w->records ? w->tmin : 1));
	put64(ft + 40, (uint64_t)(w->records ? w->tmax : 0));
	put64(ft + 48, w->raw_bytes);
	put32(ft + 60, tw_wal_crc32c(0, ft, 60));
	memcpy(ft + 64, seg_magic, 8);
	if ((rc = write_all(w, sec.p, sec.n, err)) || (rc = write_all(w, ft, sizeof(ft), err)))
		goto out;
	if (w->opts.fsync && fsync(w->fd) != 0) {
		rc = tw_err_set(err, TW_EIO, "%s: fsync: %s", w->tmp, strerror(errno));
		goto out;
	}
	if (close(w->fd) != 0) {
		w->fd = -1;
		rc = tw_err_set(err, TW_EIO, "%s: close: %s", w->tmp, strerror(errno));
		goto out;
	}
	w->fd = -1;
	if (rename(w->tmp, w->path) != 0) {
		rc = tw_err_set(err, TW_EIO, "%s: rename to %s: %s", w->tmp, w->path, strerror(errno));
		goto out;
	}
	free(w->tmp);
	w->tmp = NULL; /* renamed: abort must not remove it */
	if (w->opts.fsync && (rc = fsync_dir(w->path, err)))
		goto out;
	if (info) {
		memset(info, 0, sizeof(*info));
		info->records = w->records;
		info->blocks = (uint32_t)w->nblocks;
		info->tmin = w->records ? w->tmin : 1;
		info->tmax = w->records ? w->tmax : 0;
		info->raw_bytes = w->raw_bytes;
		info->bytes_blocks = bytes_blocks;
		info->bytes_postings = bytes_post;
		info->bytes_total = w->off;
	}
out:
	tw_buf_free(&sec);
	tw_buf_free(&body);
	return rc;
}

enum tw_rc tw_segw_finish(struct tw_segw *w, struct tw_seg_info *info, struct tw_err *err)
{
	enum tw_rc rc = finish(w, info, err);
	tw_segw_abort(w);
	return rc;
}

void tw_segw_abort(struct tw_segw *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp)
		unlink(w->tmp);
	free(w->tmp);
	free(w->path);
	ZSTD_freeCCtx(w->cctx);
	tw_buf_free(&w->blk);
	for (int c = 0; c < NCOL; c++)
		tw_buf_free(&w->col[c]);
	tw_buf_free(&w->idcol);
	tw_buf_free(&w->cbuf);
	tw_buf_free(&w->prev_id);
	tw_buf_free(&w->vals);
	for (size_t i = 0; i < w->nents; i++)
		free(w->ents[i].ids);
	free(w->ents);
	free(w->slots);
	free(w->ids);
	free(w->blocks);
	free(w);
}

static int ev_cmp(const void *a, const void *b)
{
	return tw_seg_order(a, b);
}

enum tw_rc tw_seg_write(const char *path, struct tw_event *ev, size_t n, const struct tw_seg_opts *opts,
			struct tw_seg_info *info, struct tw_err *err)
{
	struct tw_segw *w;
	enum tw_rc rc;
	size_t i = 1;
	while (i < n && tw_seg_order(&ev[i - 1], &ev[i]) <= 0) /* often sorted already */
		i++;
	if (i < n)
		qsort(ev, n, sizeof(*ev), ev_cmp);
	if ((rc = tw_segw_open(path, opts, &w, err)))
		return rc;
	for (i = 0; i < n; i++)
		if ((rc = tw_segw_add(w, &ev[i], err))) {
			tw_segw_abort(w);
			return rc;
		}
	return tw_segw_finish(w, info, err);
}

/* ---- reader ------------------------------------------------------------------------------- */

/* One value of a postings dictionary, parsed. */
struct dval {
	const uint8_t *v;    /* value bytes */
	uint32_t vn;         /* value length */
	uint32_t count;      /* ids in its list */
	uint32_t enc;        /* POST_* encoding of the list */
	const uint8_t *post; /* the encoded list */
	size_t plen;         /* bytes of the list */
};

/* A section of the file and what its first use found. */
struct rsec {
	int present;          /* listed in the section table */
	uint64_t off, len;    /* where */
	uint32_t crc;         /* expected CRC32C */
	int state;            /* 0 unchecked, 1 good, 2 bad */
	char why[200];        /* the problem when bad */
	uint8_t *owned;       /* decompressed body (postings) */
	struct dval *dict;    /* parsed dictionary (postings) */
	size_t nvals;         /* entries of dict */
};

/* One block-table entry, parsed and checked. */
struct rblk {
	uint32_t first, count;     /* record range */
	int64_t tmin, tmax;        /* time range */
	uint64_t off[NFRAME];      /* file offset of each frame (back to back from the fields frame) */
	struct frame fr[NFRAME];   /* fields, id, raw frame */
};

struct tw_seg {
	char *path;                     /* as opened */
	const uint8_t *map;             /* the whole file */
	size_t size;                    /* its size */
	struct tw_seg_info info;        /* from the footer and the sections */
	struct rblk *blocks;            /* info.blocks entries */
	struct rsec post[TW_IX__COUNT]; /* postings sections by field */
	struct rsec ids;                /* id index */
	unsigned ids_bits, ids_bw;      /* id index: bucket bits, bits per block number */
	pthread_mutex_t mu;             /* guards first use of sections */
	pthread_mutex_t idmu;           /* guards the id frame cache below */
	uint32_t id_block;              /* block whose id frame is in id_buf, or UINT32_MAX */
	struct tw_buf id_buf;           /* that frame, decompressed */
};

const struct tw_seg_info *tw_seg_get_info(const struct tw_seg *s)
{
	return &s->info;
}
const char *tw_seg_path(const struct tw_seg *s)
{
	return s->path;
}

void tw_seg_close(struct tw_seg *s)
{
	if (!s)
		return;
	if (s->map)
		munmap((void *)s->map, s->size);
	for (int f = 0; f < TW_IX__COUNT; f++) {
		free(s->post[f].owned);
		free(s->post[f].dict);
	}
	free(s->blocks);
	free(s->path);
	tw_buf_free(&s->id_buf);
	pthread_mutex_destroy(&s->idmu);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static enum tw_rc corrupt(const struct tw_seg *s, struct tw_err *err, const char *what)
{
	return tw_err_set(err, TW_ECORRUPT, "%s: %s", s->path, what);
}

static enum tw_rc load_blocks(struct tw_seg *s, uint64_t off, uint64_t len, uint32_t crc,
			      uint64_t data_end, struct tw_err *err)
{
	const uint8_t *p = s->map + off;
	uint32_t c = tw_wal_crc32c(0, p, len);
	if (c != crc)
		return tw_err_set(err, TW_ECORRUPT, "%s: section block table: crc %08x != %08x",
				  s->path, c, crc);
	if (len < 8 || get32(p) != s->info.blocks || len != 8 + (uint64_t)s->info.blocks * TW_SEG_BLOCK_ENTRY)
		return corrupt(s, err, "section block table: size does not match the block count");
	s->blocks = calloc(s->info.blocks ? s->info.blocks : 1, sizeof(*s->blocks));
	if (!s->blocks)
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", s->path);
	uint64_t next = 0, pos = TW_SEG_HEADER_SIZE;
	for (uint32_t i = 0; i < s->info.blocks; i++) {
		const uint8_t *e = p + 8 + (size_t)i * TW_SEG_BLOCK_ENTRY;
		struct rblk *b = &s->blocks[i];
		b->first = get32(e);
		b->count = get32(e + 4);
		b->tmin = (int64_t)get64(e + 8);
		b->tmax = (int64_t)get64(e + 16);
		b->off[FR_FIELDS] = get64(e + 24);
		uint64_t total = 0;
		int codec_ok = 1, bad_size = -1; /* bad_size: the first frame with impossible sizes */
		/* fewest uncompressed bytes per record of each frame */
		static const unsigned min_per_rec[NFRAME] = { TW_SEG_MIN_RECORD, 1, TW_SEG_MIN_RAW };
		for (int k = 0; k < NFRAME; k++) {
			const uint8_t *fe = e + 32 + 16 * k;
			struct frame *fr = &b->fr[k];
			fr->clen = get32(fe);
			fr->ulen = get32(fe + 4);
			fr->codec = get32(fe + 8);
			fr->crc = get32(fe + 12);
			if (k)
				b->off[k] = b->off[k - 1] + b->fr[k - 1].clen;
			total += fr->clen;
			codec_ok &= fr->codec <= TW_SEG_ZSTD;
			if (bad_size < 0 && (fr->ulen > TW_SEG_MAX_BLOCK || !ulen_ok(fr->clen, fr->ulen) ||
					     (uint64_t)b->count * min_per_rec[k] > fr->ulen))
				bad_size = k;
		}
		char why[120];
		why[0] = 0;
		if (b->first != next || b->count == 0)
			snprintf(why, sizeof(why), "record range does not follow the previous block");
		else if (b->off[0] < pos || b->off[0] > data_end || total > data_end - b->off[0])
			snprintf(why, sizeof(why), "offset %llu length %u+%u+%u outside the block area",
				 (unsigned long long)b->off[0], b->fr[0].clen, b->fr[1].clen,
				 b->fr[2].clen);
		else if (!codec_ok)
			snprintf(why, sizeof(why), "unknown codec %u/%u/%u", b->fr[0].codec,
				 b->fr[1].codec, b->fr[2].codec);
		else if (bad_size >= 0)
			snprintf(why, sizeof(why), "impossible sizes (%u records, %s frame %u -> %u bytes)",
				 b->count, bad_size == FR_FIELDS ? "fields" : bad_size == FR_ID ? "id" : "raw",
				 b->fr[bad_size].clen, b->fr[bad_size].ulen);
		else if (b->tmin > b->tmax || b->tmin < s->info.tmin || b->tmax > s->info.tmax)
			snprintf(why, sizeof(why), "time range outside the segment's");
		if (why[0])
			return tw_err_set(err, TW_ECORRUPT, "%s: section block table: block %u: %s",
					  s->path, i, why);
		next += b->count;
		pos = b->off[0] + total;
	}
	if (next != s->info.records)
		return corrupt(s, err, "section block table: block counts do not add up to the records");
	return TW_OK;
}

enum tw_rc tw_seg_open(const char *path, struct tw_seg **out, struct tw_err *err)
{
	struct tw_seg *s = calloc(1, sizeof(*s));
	enum tw_rc rc = TW_OK;
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory", path);
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->idmu, NULL);
	s->id_block = UINT32_MAX;
	tw_buf_init(&s->id_buf, TW_SEG_MAX_BLOCK);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "%s: open: %s", path,
				strerror(errno));
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = tw_err_set(err, TW_EIO, "%s: stat: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	if ((uint64_t)st.st_size < TW_SEG_HEADER_SIZE + TW_SEG_FOOTER_SIZE) {
		close(fd);
		rc = corrupt(s, err, "too short for a segment");
		goto fail;
	}
	s->size = (size_t)st.st_size;
	void *m = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		rc = tw_err_set(err, TW_EIO, "%s: mmap: %s", path, strerror(errno));
		goto fail;
	}
	s->map = m;
	const uint8_t *h = s->map;
	if (memcmp(h, seg_magic, 8) != 0) {
		rc = corrupt(s, err, "header: not a segment file (bad magic)");
		goto fail;
	}
	if (get32(h + 8) != TW_SEG_VERSION || get32(h + 12) != 0) {
		rc = tw_err_set(err, TW_EUNSUP, "%s: header: segment version %u flags %u not supported",
				path, get32(h + 8), get32(h + 12));
		goto fail;
	}
	const uint8_t *ft = s->map + s->size - TW_SEG_FOOTER_SIZE;
	uint32_t c = tw_wal_crc32c(0, ft, 60);
	if (memcmp(ft + 64, seg_magic, 8) != 0) {
		rc = corrupt(s, err, "footer: bad magic (truncated?)");
		goto fail;
	}
	if (c != get32(ft + 60)) {
		rc = tw_err_set(err, TW_ECORRUPT, "%s: footer: crc %08x != %08x", path, c, get32(ft + 60));
		goto fail;
	}
	uint64_t st_off = get64(ft), st_len = get64(ft + 8);
	uint64_t end = s->size - TW_SEG_FOOTER_SIZE;
	s->info.blocks = get32(ft + 20);
	s->info.records = get64(ft + 24);
	s->info.tmin = (int64_t)get64(ft + 32);
	s->info.tmax = (int64_t)get64(ft + 40);
	s->info.raw_bytes = get64(ft + 48);
	s->info.bytes_total = s->size;
	if (st_off < TW_SEG_HEADER_SIZE || st_off > end || st_len != end - st_off || st_len < 8 ||
	    s->info.records > UINT32_MAX - 1 || s->info.blocks > s->info.records ||
	    (s->info.records && s->info.tmin > s->info.tmax) || get32(ft + 56) != 0) {
		rc = corrupt(s, err, "footer: impossible values");
		goto fail;
	}
	const uint8_t *tab = s->map + st_off;
	c = tw_wal_crc32c(0, tab, st_len);
	if (c != get32(ft + 16)) {
		rc = tw_err_set(err, TW_ECORRUPT, "%s: section table: crc %08x != %08x", path, c,
				get32(ft + 16));
		goto fail;
	}
	uint32_t nsec = get32(tab);
	if (st_len != 8 + (uint64_t)nsec * TW_SEG_SECTION_ENTRY) {
		rc = corrupt(s, err, "section table: size does not match its count");
		goto fail;
	}
	uint64_t first_sec = st_off, bt_off = 0, bt_len = 0;
	uint32_t bt_crc = 0;
	int have_bt = 0;
	for (uint32_t i = 0; i < nsec; i++) {
		const uint8_t *e = tab + 8 + (size_t)i * TW_SEG_SECTION_ENTRY;
		uint32_t kind = get32(e), field = get32(e + 4);
		uint64_t off = get64(e + 8), len = get64(e + 16);
		if (off < TW_SEG_HEADER_SIZE || off > st_off || len > st_off - off) {
			rc = tw_err_set(err, TW_ECORRUPT, "%s: section table: entry %u outside the file",
					path, i);
			goto fail;
		}
		if (off < first_sec)
			first_sec = off;
		struct rsec *r = NULL;
		if (kind == SEC_BLOCKS) {
			if (have_bt++)
				goto dup;
			bt_off = off;
			bt_len = len;
			bt_crc = get32(e + 24);
			continue;
		} else if (kind == SEC_POSTINGS && field < TW_IX__COUNT && field != TW_IX_EVENT_ID) {
			r = &s->post[field];
		} else if (kind == SEC_IDS) {
			r = &s->ids;
		} else {
			continue; /* a later version's section: ignored */
		}
		if (r->present)
			goto dup;
		r->present = 1;
		r->off = off;
		r->len = len;
		r->crc = get32(e + 24);
		continue;
dup:
		rc = tw_err_set(err, TW_ECORRUPT, "%s: section table: entry %u duplicates a section",
				path, i);
		goto fail;
	}
	if (!have_bt) {
		rc = corrupt(s, err, "section table: no block table");
		goto fail;
	}
	if ((rc = load_blocks(s, bt_off, bt_len, bt_crc, first_sec, err)))
		goto fail;
	for (uint32_t i = 0; i < s->info.blocks; i++)
		for (int k = 0; k < NFRAME; k++)
			s->info.bytes_blocks += s->blocks[i].fr[k].clen;
	for (int f = 0; f < TW_IX__COUNT; f++)
		s->info.bytes_postings += s->post[f].len;
	s->info.bytes_postings += s->ids.len;
	*out = s;
	return TW_OK;
fail:
	tw_seg_close(s);
	return rc;
}

void tw_seg_block_meta(const struct tw_seg *s, uint32_t block, struct tw_seg_block *meta)
{
	memset(meta, 0, sizeof(*meta));
	if (block >= s->info.blocks) {
		meta->tmin = 1;
		return;
	}
	const struct rblk *b = &s->blocks[block];
	meta->first = b->first;
	meta->count = b->count;
	meta->tmin = b->tmin;
	meta->tmax = b->tmax;
	meta->codec = (enum tw_seg_codec)b->fr[FR_FIELDS].codec;
}

uint32_t tw_seg_block_of(const struct tw_seg *s, uint32_t rec)
{
	uint32_t lo = 0, hi = s->info.blocks;
	if (rec >= s->info.records)
		return UINT32_MAX;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->blocks[mid].first <= rec)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void tw_ids_free(struct tw_ids *ids)
{
	free(ids->v);
	ids->v = NULL;
	ids->n = ids->cap = 0;
}

/* Checks and parses postings section f on first use. Returns TW_OK or TW_ECORRUPT with the
 * section's problem (the same one every time). */
static enum tw_rc load_postings(struct tw_seg *s, int f, struct tw_err *err)
{
	struct rsec *r = &s->post[f];
	pthread_mutex_lock(&s->mu);
	if (r->state == 0) {
		const uint8_t *p = s->map + r->off;
		uint32_t c = r->present ? tw_wal_crc32c(0, p, r->len) : 0;
		uint64_t ulen = 0;
		const uint8_t *body = NULL, *end;
		r->state = 2;
		if (!r->present)
			snprintf(r->why, sizeof(r->why), "missing");
		else if (c != r->crc)
			snprintf(r->why, sizeof(r->why), "crc %08x != %08x", c, r->crc);
		else if (r->len < 16 || get32(p + 4) != (uint32_t)f ||
			 (get32(p) != TW_SEG_RAW && get32(p) != TW_SEG_ZSTD) ||
			 !ulen_ok(r->len - 16, ulen = get64(p + 8)) || ulen > SIZE_MAX / 2)
			snprintf(r->why, sizeof(r->why), "bad header");
		else if (get32(p) == TW_SEG_RAW && ulen != r->len - 16)
			snprintf(r->why, sizeof(r->why), "bad length");
		else if (get32(p) == TW_SEG_RAW)
			body = p + 16, r->state = 1;
		else if (!(r->owned = malloc(ulen ? ulen : 1)))
			snprintf(r->why, sizeof(r->why), "out of memory");
		else if (!unpack(TW_SEG_ZSTD, p + 16, r->len - 16, r->owned, ulen))
			snprintf(r->why, sizeof(r->why), "does not decompress");
		else
			body = r->owned, r->state = 1;
		if (r->state == 1) {
			uint64_t nv, prevn = 0;
			const uint8_t *prevv = NULL;
			end = body + ulen;
			r->state = 2;
			/* every list's count is checked below against what the records can hold: one
			 * value per record, except resources (each costs >= 1 byte of its block) */
			uint64_t total = 0, cap = s->info.records;
			if (f == TW_IX_RESOURCE)
				for (uint32_t bi = 0; bi < s->info.blocks; bi++)
					cap += s->blocks[bi].fr[FR_FIELDS].ulen;
			if (!get_varint(&body, end, &nv) || nv > (uint64_t)(end - body) / 6 ||
			    nv > s->info.records * 64 + 64) {
				snprintf(r->why, sizeof(r->why), "bad value count");
			} else if (!(r->dict = calloc(nv ? nv : 1, sizeof(*r->dict)))) {
				snprintf(r->why, sizeof(r->why), "out of memory");
			} else {
				uint64_t i;
				for (i = 0; i < nv; i++) {
					uint64_t vn, cnt, pl;
					struct dval *d = &r->dict[i];
					if (!get_varint(&body, end, &vn) || vn == 0 || vn > (uint64_t)(end - body))
						break;
					d->v = body;
					d->vn = (uint32_t)vn;
					body += vn;
					if (!get_varint(&body, end, &cnt) || cnt == 0 || cnt > s->info.records ||
					    (total += cnt) > cap || body == end || *body > POST_BITMAP)
						break;
					d->enc = *body++;
					if (!get_varint(&body, end, &pl) || pl > (uint64_t)(end - body) ||
					    (d->enc == POST_DELTA && pl < cnt) ||
					    (d->enc == POST_RUNS && pl < 2) ||
					    (d->enc == POST_BITMAP && (pl < 2 || cnt > 8 * (pl - 1))))
						break;
					d->count = (uint32_t)cnt;
					d->post = body;
					d->plen = pl;
					body += pl;
					struct tw_str a = { (const char *)prevv, prevn },
						      b = { (const char *)d->v, d->vn };
					if (i && str_cmp(a, b) >= 0)
						break;
					prevv = d->v;
					prevn = d->vn;
				}
				if (i != nv || body != end)
					snprintf(r->why, sizeof(r->why), "dictionary entry %llu is malformed",
						 (unsigned long long)i);
				else
					r->nvals = nv, r->state = 1;
			}
		}
	}
	int state = r->state;
	pthread_mutex_unlock(&s->mu);
	if (state != 1)
		return tw_err_set(err, TW_ECORRUPT, "%s: section postings[%s]: %s", s->path,
				  tw_ix_name((enum tw_ix)f), r->why);
	return TW_OK;
}

/* Where the parts of the id index are (valid once load_ids succeeded). */
static const uint8_t *ids_tab(const struct tw_seg *s)
{
	return s->map + s->ids.off + TW_SEG_IDS_HEADER;
}
static const uint8_t *ids_fps(const struct tw_seg *s)
{
	return ids_tab(s) + 4 * (((size_t)1 << s->ids_bits) + 1);
}
static uint32_t ids_block(const struct tw_seg *s, size_t i)
{
	const uint8_t *p = ids_fps(s) + 2 * s->ids.nvals;
	uint64_t bit = (uint64_t)i * s->ids_bw, v = 0;
	unsigned sh = (unsigned)(bit & 7), nbytes = (sh + s->ids_bw + 7) / 8; /* <= 5, all inside */
	p += bit >> 3;
	for (unsigned x = 0; x < nbytes; x++)
		v |= (uint64_t)p[x] << (8 * x);
	return (uint32_t)((v >> sh) & (((uint64_t)1 << s->ids_bw) - 1));
}

static enum tw_rc load_ids(struct tw_seg *s, struct tw_err *err)
{
	struct rsec *r = &s->ids;
	pthread_mutex_lock(&s->mu);
	if (r->state == 0) {
		const uint8_t *p = s->map + r->off;
		r->state = 2;
		if (!r->present) {
			snprintf(r->why, sizeof(r->why), "missing");
		} else {
			uint32_t c = tw_wal_crc32c(0, p, r->len);
			uint64_t n = r->len >= TW_SEG_IDS_HEADER ? get64(p) : 0;
			unsigned k = r->len >= TW_SEG_IDS_HEADER ? p[8] : 0, bw = r->len >= TW_SEG_IDS_HEADER ? p[9] : 0;
			if (c != r->crc)
				snprintf(r->why, sizeof(r->why), "crc %08x != %08x", c, r->crc);
			else if (r->len < TW_SEG_IDS_HEADER || k > TW_SEG_IDS_MAX_BITS || bw < 1 || bw > 32 ||
				 get16z(p + 10) || get32(p + 12) || n > s->info.records ||
				 r->len != TW_SEG_IDS_HEADER + 4 * (((uint64_t)1 << k) + 1) + n * 2 +
						   (n * bw + 7) / 8)
				snprintf(r->why, sizeof(r->why), "bad size");
			else {
				s->ids_bits = k;
				s->ids_bw = bw;
				r->nvals = n;
				const uint8_t *tab = ids_tab(s), *fps = ids_fps(s);
				size_t nb = (size_t)1 << k, bad = SIZE_MAX;
				if (get32(tab) != 0 || get32(tab + 4 * nb) != n)
					bad = 0;
				for (size_t bk = 0; bk < nb && bad == SIZE_MAX; bk++) {
					uint32_t lo = get32(tab + 4 * bk), hi = get32(tab + 4 * bk + 4);
					if (hi < lo || hi > n) {
						bad = lo;
						break;
					}
					for (uint32_t i = lo; i < hi; i++) {
						uint32_t fp = (uint32_t)fps[2 * i] | (uint32_t)fps[2 * i + 1] << 8;
						uint32_t pfp = i > lo ? (uint32_t)fps[2 * i - 2] | (uint32_t)fps[2 * i - 1] << 8 : 0;
						uint32_t blk = ids_block(s, i);
						if (blk >= s->info.blocks ||
						    (i > lo && (fp < pfp || (fp == pfp && blk < ids_block(s, i - 1))))) {
							bad = i;
							break;
						}
					}
				}
				if (bad != SIZE_MAX)
					snprintf(r->why, sizeof(r->why), "entry %zu out of order or range", bad);
				else
					r->state = 1;
			}
		}
	}
	int state = r->state;
	pthread_mutex_unlock(&s->mu);
	if (state != 1)
		return tw_err_set(err, TW_ECORRUPT, "%s: section id index: %s", s->path, r->why);
	return TW_OK;
}

static int check_field(int f)
{
	return (unsigned)f < TW_IX__COUNT && f != TW_IX_EVENT_ID;
}

/* Index of the first dictionary value >= v (by bytes). */
static size_t dict_lower(const struct rsec *r, struct tw_str v)
{
	size_t lo = 0, hi = r->nvals;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct tw_str m = { (const char *)r->dict[mid].v, r->dict[mid].vn };
		if (str_cmp(m, v) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static enum tw_rc ids_reserve(struct tw_ids *ids, size_t more, struct tw_err *err)
{
	if (ids->cap - ids->n >= more)
		return TW_OK;
	size_t nc = ids->cap ? ids->cap : 64;
	while (nc - ids->n < more)
		nc *= 2;
	uint32_t *nv = realloc(ids->v, nc * sizeof(*nv));
	if (!nv)
		return tw_err_set(err, TW_ENOMEM, "out of memory for %zu record ids", nc);
	ids->v = nv;
	ids->cap = nc;
	return TW_OK;
}

/* Decodes value i of field f's dictionary, appending its ids (checked: ascending, distinct,
 * below the record count, exactly count of them, no bytes left over) to ids. */
static enum tw_rc decode_list(struct tw_seg *s, int f, size_t i, struct tw_ids *ids,
			      struct tw_err *err)
{
	const struct dval *d = &s->post[f].dict[i];
	enum tw_rc rc = ids_reserve(ids, d->count, err);
	if (rc)
		return rc;
	const uint8_t *p = d->post, *end = d->post + d->plen;
	const uint64_t nrec = s->info.records;
	uint32_t *out = ids->v + ids->n;
	uint64_t cur = 0, got = 0;
	if (d->enc == POST_DELTA) {
		for (uint32_t k = 0; k < d->count; k++) {
			uint64_t g;
			if (!get_varint(&p, end, &g) || (k && g == 0) || g >= nrec || (cur += g) >= nrec)
				goto bad;
			out[k] = (uint32_t)cur;
		}
		got = d->count;
	} else if (d->enc == POST_RUNS) {
		/* pairs (skip, length - 1); a run starts skip ids after the previous run's end + 1 */
		while (p < end) {
			uint64_t skip, lm1;
			if (!get_varint(&p, end, &skip) || !get_varint(&p, end, &lm1) || skip >= nrec ||
			    lm1 >= nrec)
				goto bad;
			uint64_t start = got ? cur + 1 + skip : skip; /* cur: the previous run's end */
			if (start + lm1 >= nrec || lm1 >= d->count - got)
				goto bad;
			for (uint64_t k = 0; k <= lm1; k++)
				out[got++] = (uint32_t)(start + k);
			cur = start + lm1 + 1;
		}
		if (got != d->count)
			goto bad;
	} else { /* POST_BITMAP: varint first id, then bit j of byte b is id first + 8b + j */
		uint64_t base;
		if (!get_varint(&p, end, &base) || base >= nrec || p == end || !(p[0] & 1) || !end[-1])
			goto bad;
		for (size_t b = 0; p + b < end; b++) {
			unsigned x = p[b];
			while (x) {
				uint64_t id = base + 8 * (uint64_t)b + (unsigned)__builtin_ctz(x);
				if (id >= nrec || got == d->count)
					goto bad;
				out[got++] = (uint32_t)id;
				x &= x - 1;
			}
		}
		p = end;
		if (got != d->count)
			goto bad;
	}
	if (p != end)
		return tw_err_set(err, TW_ECORRUPT, "%s: section postings[%s]: list of value %zu has trailing bytes",
				  s->path, tw_ix_name((enum tw_ix)f), i);
	ids->n += got;
	return TW_OK;
bad:
	return tw_err_set(err, TW_ECORRUPT, "%s: section postings[%s]: list of value %zu is malformed",
			  s->path, tw_ix_name((enum tw_ix)f), i);
}

/* The loaded postings section of field f: what tw_seg_lookup, tw_seg_lookup_prefix and
 * tw_seg_values start with. TW_EINVAL when f has none, else load_postings' errors. */
static enum tw_rc postings_of(struct tw_seg *s, enum tw_ix f, const struct rsec **out, struct tw_err *err)
{
	enum tw_rc rc;
	if (!check_field(f))
		return tw_err_set(err, TW_EINVAL, "%s: field %d has no postings", s->path, (int)f);
	if ((rc = load_postings(s, f, err)))
		return rc;
	*out = &s->post[f];
	return TW_OK;
}

enum tw_rc tw_seg_lookup(struct tw_seg *s, enum tw_ix f, struct tw_str value, struct tw_ids *ids,
			 struct tw_err *err)
{
	const struct rsec *r = NULL;
	enum tw_rc rc = postings_of(s, f, &r, err);
	if (rc)
		return rc;
	size_t i = dict_lower(r, value);
	if (i == r->nvals || r->dict[i].vn != value.n ||
	    (value.n && memcmp(r->dict[i].v, value.p, value.n) != 0))
		return TW_OK;
	return decode_list(s, f, i, ids, err);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

enum tw_rc tw_seg_lookup_prefix(struct tw_seg *s, enum tw_ix f, struct tw_str prefix,
				struct tw_ids *ids, struct tw_err *err)
{
	const struct rsec *r = NULL;
	enum tw_rc rc = postings_of(s, f, &r, err);
	if (rc)
		return rc;
	size_t n0 = ids->n, lists = 0;
	for (size_t i = dict_lower(r, prefix); i < r->nvals; i++) {
		if (r->dict[i].vn < prefix.n || (prefix.n && memcmp(r->dict[i].v, prefix.p, prefix.n)))
			break;
		if ((rc = decode_list(s, f, i, ids, err))) {
			ids->n = n0;
			return rc;
		}
		lists++;
	}
	size_t got = ids->n - n0;
	uint64_t nrec = s->info.records;
	if (lists > 1 && got >= nrec / 32) {
		/* many ids: union through a bitmap of the records, linear in ids + records / 64 */
		uint64_t *bm = calloc((size_t)(nrec + 63) / 64, sizeof(*bm));
		if (!bm) {
			ids->n = n0;
			return tw_err_set(err, TW_ENOMEM, "%s: out of memory", s->path);
		}
		for (size_t i = n0; i < ids->n; i++)
			bm[ids->v[i] >> 6] |= (uint64_t)1 << (ids->v[i] & 63);
		size_t o = n0;
		for (size_t wi = 0; wi < (size_t)(nrec + 63) / 64; wi++)
			for (uint64_t x = bm[wi]; x; x &= x - 1)
				ids->v[o++] = (uint32_t)(wi * 64 + (unsigned)__builtin_ctzll(x));
		ids->n = o;
		free(bm);
	} else if (lists > 1) {
		qsort(ids->v + n0, got, sizeof(uint32_t), u32_cmp);
		size_t o = n0;
		for (size_t i = n0; i < ids->n; i++)
			if (i == n0 || ids->v[i] != ids->v[o - 1])
				ids->v[o++] = ids->v[i];
		ids->n = o;
	}
	return TW_OK;
}

enum tw_rc tw_seg_values(struct tw_seg *s, enum tw_ix f,
			 int (*fn)(void *ctx, struct tw_str value, uint32_t count), void *ctx,
			 struct tw_err *err)
{
	const struct rsec *r = NULL;
	enum tw_rc rc = postings_of(s, f, &r, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < r->nvals; i++) {
		struct tw_str v = { (const char *)r->dict[i].v, r->dict[i].vn };
		if (fn(ctx, v, r->dict[i].count))
			break;
	}
	return TW_OK;
}

/* ---- blocks ------------------------------------------------------------------------------- */

void tw_seg_blockbuf_init(struct tw_seg_blockbuf *bb)
{
	memset(bb, 0, sizeof(*bb));
	tw_buf_init(&bb->data, 2 * (size_t)TW_SEG_MAX_BLOCK + 16);
	tw_buf_init(&bb->raw, 3 * (size_t)TW_SEG_MAX_BLOCK + 16);
}

void tw_seg_blockbuf_free(struct tw_seg_blockbuf *bb)
{
	tw_buf_free(&bb->data);
	tw_buf_free(&bb->raw);
	free(bb->offs);
	memset(bb, 0, sizeof(*bb));
}

/* Checks the CRC of frame k (FR_*) of block bi and decompresses it to out (its ulen bytes). */
static enum tw_rc unpack_frame(const struct tw_seg *s, uint32_t bi, int k, uint8_t *out,
			       struct tw_err *err)
{
	const struct rblk *b = &s->blocks[bi];
	const struct frame *fr = &b->fr[k];
	const uint8_t *p = s->map + b->off[k];
	uint32_t c = tw_wal_crc32c(0, p, fr->clen);
	static const char *const what[NFRAME] = { "", " id frame", " raw frame" };
	if (c != fr->crc)
		return tw_err_set(err, TW_ECORRUPT, "%s: block %u%s: crc %08x != %08x", s->path, bi,
				  what[k], c, fr->crc);
	if (!unpack((int)fr->codec, p, fr->clen, out, fr->ulen))
		return tw_err_set(err, TW_ECORRUPT, "%s: block %u%s: does not decompress to %u bytes",
				  s->path, bi, what[k], fr->ulen);
	return TW_OK;
}

/* get_varint with the one- and two-byte cases (most column codes, lengths and time deltas)
 * inline; the same checks (a two-byte form ending in 0 is not minimal). */
static inline int vget(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	if (p < end && *p < 0x80) {
		*v = *p;
		*pp = p + 1;
		return 1;
	}
	if (end - p >= 2 && p[1] < 0x80) {
		if (!p[1])
			return 0;
		*v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
		*pp = p + 2;
		return 1;
	}
	return get_varint(pp, end, v);
}

/* Parses block b's fields frame then id frame (back to back at d) into offs (all slots but raw);
 * returns NULL or what is wrong. Checks everything tw_seg_get_fields relies on. One pass over the
 * records, each record's slots written together (the columns are read side by side). */
static const char *parse_fields(const struct rblk *b, const uint8_t *d, uint32_t *offs)
{
	const uint8_t *p = d, *end = d + b->fr[FR_FIELDS].ulen;
	const uint8_t *cs[NFCOL], *ce[NFCOL];
	uint64_t clen[NFCOL], v;
	uint32_t n = b->count;
	for (int c = 0; c < NFCOL; c++)
		if (!vget(&p, end, &clen[c]) || clen[c] > (uint64_t)(end - p))
			return "bad column directory";
	for (int c = 0; c < NFCOL; c++) {
		if (clen[c] > (uint64_t)(end - p))
			return "columns run past the end";
		cs[c] = p;
		ce[c] = p += clen[c];
	}
	if (p != end)
		return "bytes after the columns";
	if (clen[COL_HEAD] != n)
		return "kind column has the wrong length";
	int slot[NSF];
	uint32_t poff[NSF], plen[NSF];
	for (int f = 0; f < NSF; f++) {
		slot[f] = S_F + 2 * (int)col_field[f];
		poff[f] = plen[f] = 0;
	}
	const uint8_t *qt = cs[COL_TIME], *qr = cs[COL_RES], *qre = ce[COL_RES];
	const uint8_t *qi = end, *qie = end + b->fr[FR_ID].ulen;
	uint64_t t = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t *o = offs + (size_t)i * REC_SLOTS;
		uint8_t h = cs[COL_HEAD][i];
		if ((h & 15) < 1 || (h & 15) > TW_KIND_MAX || (h & 0xc0) || (h & 0x30) == 0x30)
			return "bad kind or readOnly";
		if (!vget(&qt, ce[COL_TIME], &v))
			return "time column truncated";
		t += (uint64_t)tw_evcodec_unzigzag(v);
		o[S_HEAD] = h;
		o[S_TLO] = (uint32_t)t;
		o[S_THI] = (uint32_t)(t >> 32);
		o[S_RAW] = o[S_RAW + 1] = o[S_RAT] = 0;
		for (int f = 0; f < NSF; f++) {
			const uint8_t *q = cs[COL_F0 + f], *qe = ce[COL_F0 + f];
			if (!vget(&q, qe, &v))
				return "field column truncated";
			if (v == FC_SAME) {
				if (!plen[f])
					return "field column repeats a missing value";
			} else if (v == FC_ABSENT) {
				poff[f] = plen[f] = 0;
			} else {
				if (v - 1 > (uint64_t)(qe - q))
					return "field value runs past its column";
				poff[f] = (uint32_t)(q - d);
				plen[f] = (uint32_t)(v - 1);
				q += plen[f];
			}
			cs[COL_F0 + f] = q;
			o[slot[f]] = poff[f];
			o[slot[f] + 1] = plen[f];
		}
		if (!vget(&qr, qre, &v) || v > (uint64_t)(qre - qr))
			return "resource column truncated";
		o[S_RES + 1] = (uint32_t)v;
		o[S_RES] = (uint32_t)(qr - d);
		for (uint64_t k = v; k; k--) {
			uint64_t l;
			if (!vget(&qr, qre, &l) || l > (uint64_t)(qre - qr))
				return "resource runs past its column";
			qr += l;
		}
		if (!vget(&qi, qie, &v) || v > (uint64_t)(qie - qi))
			return "id frame truncated";
		o[S_F + 2 * TW_F_EVENT_ID] = v ? (uint32_t)(qi - d) : 0;
		o[S_F + 2 * TW_F_EVENT_ID + 1] = (uint32_t)v;
		qi += v;
	}
	if (qt != ce[COL_TIME])
		return "time column has trailing bytes";
	for (int f = 0; f < NSF; f++)
		if (cs[COL_F0 + f] != ce[COL_F0 + f])
			return "field column has trailing bytes";
	if (qr != qre)
		return "resource column has trailing bytes";
	if (qi != qie)
		return "id frame has trailing bytes";
	return NULL;
}

/* Indexes block b's raw frame (at r; the id frame is parsed into offs already) without copying:
 * checks each record's entry (bounds, and that an id put back fits) and sets its raw slots: the
 * bytes in the frame, the full length and S_RAT (see there). Stops at the first bad record:
 * *ok gets the records before it. Returns NULL or what is wrong (with *ok == b->count when the
 * problem is after the last record). */
static const char *index_raw(const struct rblk *b, const uint8_t *r, uint32_t *offs, uint32_t *ok)
{
	const uint8_t *q = r, *qe = r + b->fr[FR_RAW].ulen;
	for (uint32_t i = 0; i < b->count; i++) {
		uint32_t *o = offs + (size_t)i * REC_SLOTS;
		uint64_t at, len;
		uint32_t idn = o[S_F + 2 * TW_F_EVENT_ID + 1];
		*ok = i;
		if (!vget(&q, qe, &at) || !vget(&q, qe, &len) || len > (uint64_t)(qe - q))
			return "raw frame truncated";
		if (at && (!idn || at - 1 > len))
			return "raw frame puts back an id that is not there";
		uint64_t full = len + (at ? idn : 0);
		if (full > UINT32_MAX)
			return "raw record too long";
		o[S_RAW] = (uint32_t)(q - r);
		o[S_RAW + 1] = (uint32_t)full;
		o[S_RAT] = (uint32_t)at;
		q += len;
	}
	*ok = b->count;
	if (q != qe)
		return "raw frame has trailing bytes";
	return NULL;
}

/* Rebuilds raw record o (indexed by index_raw) of the block bb holds, when it still lacks its
 * event id: after the frame and the records rebuilt before it, where index_raw's checks and the
 * room load_block reserved (the frame twice + the id frame) keep it. */
static void rebuild_raw(struct tw_seg_blockbuf *bb, uint32_t *o)
{
	if (!o[S_RAT])
		return;
	size_t pos = (size_t)o[S_RAT] - 1, full = o[S_RAW + 1];
	size_t idn = o[S_F + 2 * TW_F_EVENT_ID + 1];
	const char *q = bb->raw.p + o[S_RAW];
	char *out = bb->raw.p + bb->raw.n;
	memcpy(out, q, pos);
	memcpy(out + pos, bb->data.p + o[S_F + 2 * TW_F_EVENT_ID], idn);
	memcpy(out + pos + idn, q + pos, full - idn - pos);
	o[S_RAW] = (uint32_t)bb->raw.n;
	o[S_RAT] = 0;
	bb->raw.n += full;
}

/* Makes bb hold block bi of s: its fields and id frames (parsed into offs), and its raw frame too
 * when want_raw. Frames bb holds already for bi are not decompressed again, and loading the raw
 * frame leaves data (and so the strings handed out from it) where it is. */
static enum tw_rc load_block(struct tw_seg *s, uint32_t bi, struct tw_seg_blockbuf *bb, int want_raw,
			     struct tw_err *err)
{
	const struct rblk *b = &s->blocks[bi];
	enum tw_rc rc;
	if (bb->seg != s || bb->block != bi || !(bb->frames & BB_FIELDS)) {
		bb->seg = NULL;
		bb->frames = 0;
		bb->raw_ok = 0;
		bb->raw_why = NULL;
		tw_buf_reset(&bb->data);
		tw_buf_reset(&bb->raw);
		/* fields frame, then id frame */
		size_t fn = (size_t)b->fr[FR_FIELDS].ulen + b->fr[FR_ID].ulen;
		if ((rc = tw_buf_reserve(&bb->data, fn + 1, err)))
			return rc;
		uint8_t *d = (uint8_t *)bb->data.p;
		if ((rc = unpack_frame(s, bi, FR_FIELDS, d, err)) ||
		    (rc = unpack_frame(s, bi, FR_ID, d + b->fr[FR_FIELDS].ulen, err)))
			return rc;
		size_t need = (size_t)b->count * REC_SLOTS;
		if (bb->offs_cap < need) {
			uint32_t *no = realloc(bb->offs, need * sizeof(*no));
			if (!no)
				return tw_err_set(err, TW_ENOMEM, "%s: out of memory", s->path);
			bb->offs = no;
			bb->offs_cap = need;
		}
		const char *why = parse_fields(b, d, bb->offs);
		if (why)
			return tw_err_set(err, TW_ECORRUPT, "%s: block %u: %s", s->path, bi, why);
		bb->data.n = fn;
		bb->noffs = b->count;
		bb->seg = s;
		bb->block = bi;
		bb->frames = BB_FIELDS;
	}
	if (!want_raw || (bb->frames & BB_RAW))
		return TW_OK;
	/* raw frame, then room for the records rebuilt as they are asked for (one id each at most;
	 * reserved now so that raw strings handed out stay where they are) */
	tw_buf_reset(&bb->raw);
	if ((rc = tw_buf_reserve(&bb->raw, 2 * (size_t)b->fr[FR_RAW].ulen + b->fr[FR_ID].ulen + 1, err)))
		return rc;
	uint8_t *r = (uint8_t *)bb->raw.p;
	if ((rc = unpack_frame(s, bi, FR_RAW, r, err)))
		return rc;
	uint32_t ok = 0;
	const char *why = index_raw(b, r, bb->offs, &ok);
	if (why && ok == b->count) {
		/* the frame as a whole is wrong: no record of it; the fields stay usable */
		for (uint32_t i = 0; i < b->count; i++) {
			uint32_t *o = bb->offs + (size_t)i * REC_SLOTS;
			o[S_RAW] = o[S_RAW + 1] = o[S_RAT] = 0;
		}
		return tw_err_set(err, TW_ECORRUPT, "%s: block %u: %s", s->path, bi, why);
	}
	bb->raw.n = b->fr[FR_RAW].ulen;
	bb->raw_ok = ok;
	bb->raw_why = why;
	bb->frames |= BB_RAW;
	return TW_OK;
}

/* Fetches record rec into *ev, its raw JSON only when want_raw (see tw_seg_get). */
static enum tw_rc get_record(struct tw_seg *s, uint32_t rec, struct tw_seg_blockbuf *bb, int want_raw,
			     struct tw_event *ev, struct tw_arena *a, struct tw_err *err)
{
	if (rec >= s->info.records)
		return tw_err_set(err, TW_ENOENT, "%s: no record %u (%llu records)", s->path, rec,
				  (unsigned long long)s->info.records);
	uint32_t bi;
	if (bb->seg == s && bb->frames && rec - s->blocks[bb->block].first < s->blocks[bb->block].count)
		bi = bb->block; /* the block held already: no search */
	else
		bi = tw_seg_block_of(s, rec);
	enum tw_rc rc = load_block(s, bi, bb, want_raw, err);
	if (rc)
		return rc;
	uint32_t k = rec - s->blocks[bi].first;
	uint32_t *o = bb->offs + (size_t)k * REC_SLOTS;
	if (want_raw) {
		if (k >= bb->raw_ok)
			return tw_err_set(err, TW_ECORRUPT, "%s: block %u: %s (record %u)", s->path, bi,
					  bb->raw_why ? bb->raw_why : "raw frame malformed", rec);
		rebuild_raw(bb, o);
	}
	const char *d = bb->data.p;
	/* resources first: *ev is written only on success, and once (no copy of a whole event) */
	struct tw_str *r = NULL;
	uint32_t nr = o[S_RES + 1];
	if (nr) {
		r = tw_arena_alloc(a, (size_t)nr * sizeof(*r), err);
		if (!r)
			return err ? err->rc : TW_ENOMEM;
		const uint8_t *q = (const uint8_t *)d + o[S_RES], *qe = (const uint8_t *)d + bb->data.n;
		for (uint32_t i = 0; i < nr; i++) {
			uint64_t l = 0;
			vget(&q, qe, &l); /* checked by parse_fields */
			r[i] = (struct tw_str){ l ? (const char *)q : NULL, (size_t)l };
			q += l;
		}
	}
	struct tw_event *e = ev;
	memset(e, 0, sizeof(*e));
	e->kind = (enum tw_kind)(o[S_HEAD] & 15);
	e->read_only = (int8_t)((int)(o[S_HEAD] >> 4 & 3) - 1);
	e->time_ms = (int64_t)((uint64_t)o[S_TLO] | (uint64_t)o[S_THI] << 32);
	for (int f = 0; f < TW_F__COUNT; f++)
		if (o[S_F + 2 * f + 1])
			e->f[f] = (struct tw_str){ d + o[S_F + 2 * f], o[S_F + 2 * f + 1] };
	if (want_raw && o[S_RAW + 1])
		e->raw = (struct tw_str){ bb->raw.p + o[S_RAW], o[S_RAW + 1] };
	e->resources = r;
	e->nresources = nr;
	return TW_OK;
}

enum tw_rc tw_seg_get(struct tw_seg *s, uint32_t rec, struct tw_seg_blockbuf *bb, struct tw_event *ev,
		      struct tw_arena *a, struct tw_err *err)
{
	return get_record(s, rec, bb, 1, ev, a, err);
}

enum tw_rc tw_seg_get_fields(struct tw_seg *s, uint32_t rec, struct tw_seg_blockbuf *bb,
			     struct tw_event *ev, struct tw_arena *a, struct tw_err *err)
{
	return get_record(s, rec, bb, 0, ev, a, err);
}

/* Looks for id in block bi's id frame (cached in s); 1 found (*rec set), 0 not, -1 error. */
static int id_in_block(struct tw_seg *s, uint32_t bi, struct tw_str id, uint32_t *rec,
		       struct tw_err *err)
{
	const struct rblk *b = &s->blocks[bi];
	int found = 0;
	pthread_mutex_lock(&s->idmu);
	if (s->id_block != bi) {
		s->id_block = UINT32_MAX;
		tw_buf_reset(&s->id_buf);
		if (tw_buf_reserve(&s->id_buf, (size_t)b->fr[FR_ID].ulen + 1, err) ||
		    unpack_frame(s, bi, FR_ID, (uint8_t *)s->id_buf.p, err)) {
			pthread_mutex_unlock(&s->idmu);
			return -1;
		}
		s->id_buf.n = b->fr[FR_ID].ulen;
		s->id_block = bi;
	}
	const uint8_t *q = (const uint8_t *)s->id_buf.p, *qe = q + s->id_buf.n;
	uint32_t i;
	for (i = 0; i < b->count; i++) {
		uint64_t l;
		if (!get_varint(&q, qe, &l) || l > (uint64_t)(qe - q))
			break;
		if (l == id.n && memcmp(q, id.p, id.n) == 0) {
			if (rec)
				*rec = b->first + i;
			found = 1;
			break;
		}
		q += l;
	}
	if (!found && (i != b->count || q != qe)) {
		tw_err_set(err, TW_ECORRUPT, "%s: block %u id frame: malformed", s->path, bi);
		found = -1;
	}
	pthread_mutex_unlock(&s->idmu);
	return found;
}

/* Index range [*lo, *hi) of the id-index entries with the bits kept of hash h. */
static void ids_range(const struct tw_seg *s, uint64_t h, size_t *lo, size_t *hi)
{
	uint64_t key = h >> (48 - s->ids_bits);
	size_t bk = (size_t)(key >> 16);
	uint32_t fp = (uint32_t)(key & 0xffff);
	const uint8_t *tab = ids_tab(s), *fps = ids_fps(s);
	size_t a = get32(tab + 4 * bk), z = get32(tab + 4 * bk + 4);
	while (a < z && get16z(fps + 2 * a) < fp)
		a++;
	size_t e = a;
	while (e < z && get16z(fps + 2 * e) == fp)
		e++;
	*lo = a;
	*hi = e;
}

int tw_seg_has_id(struct tw_seg *s, struct tw_str id, uint32_t *rec, struct tw_err *err)
{
	if (!id.n || load_ids(s, err))
		return id.n ? -1 : 0;
	size_t lo, hi;
	ids_range(s, tw_seg_id_hash(id), &lo, &hi);
	int res = 0;
	uint32_t last = UINT32_MAX;
	for (size_t i = lo; i < hi; i++) {
		uint32_t bi = ids_block(s, i);
		if (bi == last)
			continue;
		last = bi;
		int r = id_in_block(s, bi, id, rec, err);
		if (r == 1)
			return 1;
		if (r < 0)
			res = -1; /* a damaged candidate block: the id may be there */
	}
	return res;
}

/* ---- verify ------------------------------------------------------------------------------- */

/* State of one verification run. */
struct vctx {
	void (*report)(void *ctx, const char *problem); /* caller's reporter (may be NULL) */
	void *ctx;      /* its context */
	size_t problems; /* reported so far */
	char first[256]; /* the first problem */
	uint64_t acc;   /* running sum for one record (ix_values callback) */
	int field;      /* field being summed */
};

static void vreport(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vreport(struct vctx *v, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!v->problems++)
		snprintf(v->first, sizeof(v->first), "%s", msg);
	if (v->report)
		v->report(v->ctx, msg);
}

/* The contribution of one (field, value) posting to a record's check sum. */
static uint64_t vhash(int f, const void *p, size_t n)
{
	return hash_bytes(0x84222325cbf29ce4ull + (uint64_t)f * 0x9e3779b97f4a7c15ull, p, n);
}

static void vsum(void *ctx, struct tw_str val)
{
	struct vctx *v = ctx;
	v->acc += vhash(v->field, val.p, val.n);
}

enum tw_rc tw_seg_verify(struct tw_seg *s, void (*report)(void *ctx, const char *problem), void *ctx,
			 struct tw_err *err)
{
	struct vctx v = { report, ctx, 0, "", 0, 0 };
	struct tw_err e2;
	int good[TW_IX__COUNT] = { 0 };
	uint64_t nrec = s->info.records;
	uint64_t *exp = calloc(nrec ? nrec : 1, sizeof(*exp)), *got = calloc(nrec ? nrec : 1, sizeof(*got));
	uint8_t *ok = calloc(nrec ? nrec : 1, 1); /* record decoded */
	if (!exp || !got || !ok) {
		free(exp);
		free(got);
		free(ok);
		return tw_err_set(err, TW_ENOMEM, "%s: out of memory verifying %llu records", s->path,
				  (unsigned long long)nrec);
	}
	for (int f = 0; f < TW_IX__COUNT; f++) {
		if (f == TW_IX_EVENT_ID)
			continue;
		if (load_postings(s, f, &e2))
			vreport(&v, "%s", e2.msg);
		else
			good[f] = 1;
	}
	int ids_good = load_ids(s, &e2) == TW_OK;
	if (!ids_good)
		vreport(&v, "%s", e2.msg);
	/* blocks: decode everything, check order and times, sum the field values */
	struct tw_seg_blockbuf bb;
	struct tw_arena a;
	struct tw_event prev, cur;
	struct tw_buf prevbuf;
	int have_prev = 0;
	uint64_t with_id = 0;
	tw_seg_blockbuf_init(&bb);
	tw_arena_init(&a, 1 << 16, 0);
	tw_buf_init(&prevbuf, SIZE_MAX / 2);
	for (uint32_t bi = 0; bi < s->info.blocks; bi++) {
		const struct rblk *b = &s->blocks[bi];
		tw_arena_reset(&a);
		if (load_block(s, bi, &bb, 1, &e2)) {
			vreport(&v, "%s", e2.msg);
			have_prev = 0;
			continue;
		}
		for (uint32_t k = 0; k < b->count; k++) {
			uint32_t rec = b->first + k;
			if (tw_seg_get(s, rec, &bb, &cur, &a, &e2)) {
				vreport(&v, "%s", e2.msg);
				have_prev = 0;
				continue;
			}
			ok[rec] = 1;
			if (cur.time_ms < b->tmin || cur.time_ms > b->tmax)
				vreport(&v, "%s: block %u: record %u: time %lld outside the block's range",
					s->path, bi, rec, (long long)cur.time_ms);
			if (have_prev && tw_seg_order(&prev, &cur) > 0)
				vreport(&v, "%s: block %u: record %u: out of order", s->path, bi, rec);
			for (int f = 0; f < TW_IX__COUNT; f++) {
				if (!good[f])
					continue;
				v.field = f;
				v.acc = 0;
				ix_values(&cur, f, vsum, &v);
				exp[rec] += v.acc;
			}
			if (cur.f[TW_F_EVENT_ID].n && ids_good) {
				with_id++;
				size_t lo, hi, i;
				ids_range(s, tw_seg_id_hash(cur.f[TW_F_EVENT_ID]), &lo, &hi);
				for (i = lo; i < hi && ids_block(s, i) != bi; i++)
					;
				if (i == hi)
					vreport(&v, "%s: section id index: record %u's event id is missing",
						s->path, rec);
			}
			/* keep the order key of cur for the next comparison (cur's memory is reused) */
			tw_buf_reset(&prevbuf);
			static const int kf[4] = { TW_F_PRINCIPAL, TW_F_EVENT_SOURCE, TW_F_EVENT_NAME,
						   TW_F_EVENT_ID };
			size_t tot = 0;
			for (int i = 0; i < 4; i++)
				tot += cur.f[kf[i]].n;
			if (tw_buf_reserve(&prevbuf, tot + 1, NULL) == TW_OK) {
				memset(&prev, 0, sizeof(prev));
				prev.time_ms = cur.time_ms;
				for (int i = 0; i < 4; i++) {
					prev.f[kf[i]] = (struct tw_str){ prevbuf.p + prevbuf.n, cur.f[kf[i]].n };
					tw_buf_append(&prevbuf, cur.f[kf[i]].p, cur.f[kf[i]].n, NULL);
				}
				have_prev = 1;
			} else {
				have_prev = 0;
			}
		}
	}
	if (ids_good && with_id != s->ids.nvals)
		vreport(&v, "%s: section id index: %zu entries for %llu records with an id", s->path,
			s->ids.nvals, (unsigned long long)with_id);
	/* postings: every list decodes, points at records, and sums to what the records hold */
	struct tw_ids ids = { 0 };
	for (int f = 0; f < TW_IX__COUNT; f++) {
		if (!good[f])
			continue;
		const struct rsec *r = &s->post[f];
		for (size_t i = 0; i < r->nvals; i++) {
			ids.n = 0;
			if (decode_list(s, f, i, &ids, &e2)) {
				vreport(&v, "%s", e2.msg);
				continue;
			}
			uint64_t h = vhash(f, r->dict[i].v, r->dict[i].vn);
			for (size_t k = 0; k < ids.n; k++)
				got[ids.v[k]] += h;
		}
	}
	size_t bad = 0;
	for (uint64_t rec = 0; rec < nrec; rec++)
		if (ok[rec] && exp[rec] != got[rec] && bad++ < 20)
			vreport(&v, "%s: postings: record %llu: the postings disagree with its fields",
				s->path, (unsigned long long)rec);
	tw_ids_free(&ids);
	tw_buf_free(&prevbuf);
	tw_arena_free(&a);
	tw_seg_blockbuf_free(&bb);
	free(exp);
	free(got);
	free(ok);
	if (v.problems)
		return tw_err_set(err, TW_ECORRUPT, "%s (%zu problems)", v.first, v.problems);
	return TW_OK;
}
