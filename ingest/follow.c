/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/follow.c: the follow source. inotify (IN_CLOSE_WRITE, IN_MOVED_TO, new directories,
 * recursively) marks files ready; a periodic rescan is the fallback that also catches writers
 * that never close (a file is ready once its size and mtime held for one interval). Ready files
 * are decoded whole, then appended to the checkpoint ("size mtime_ns relpath\n", fsynced). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest/follow.h"
#include "ingest/split.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF)
#define CK_LINE_MAX 8192 /* longest checkpoint line accepted at load */

enum cand_state {
	CAND_NONE = 0,  /* not pending (done, or never seen) */
	CAND_WAIT = 1,  /* seen by a scan: waiting for its size/mtime to hold one interval */
	CAND_READY = 2, /* complete: in the ready queue */
};

/* One file known by relative path: its checkpointed state and its pending state. */
struct entry {
	char *rel;          /* path relative to the followed directory (owned) */
	uint64_t hash;      /* hash of rel */
	int done;           /* in the checkpoint with done_size/done_mtime */
	int64_t done_size;  /* size when checkpointed */
	int64_t done_mtime; /* mtime (ns) when checkpointed */
	int state;          /* enum cand_state */
	int64_t cand_size;  /* size when last seen by a scan */
	int64_t cand_mtime; /* mtime (ns) when last seen by a scan */
	int64_t cand_seen;  /* monotonic ms when that size/mtime was first seen */
};

/* One inotify watch. */
struct watch {
	int wd;    /* watch descriptor; -1 once removed */
	char *rel; /* directory relative to the root ("" for the root; owned) */
};

struct tw_follow {
	char *dir;                /* the followed directory (owned) */
	char *ckpath;             /* checkpoint path (owned) */
	int ckfd;                 /* checkpoint, O_APPEND */
	int ifd;                  /* inotify descriptor, -1 when inotify is unavailable */
	struct tw_follow_opts opts; /* with defaults filled in */
	struct entry **tab;       /* open-addressing hash table of entries by rel */
	size_t tabcap;            /* slots in tab (power of two) */
	size_t nent;              /* entries in tab */
	struct entry **ready;     /* FIFO of ready entries: ready[rhead..rtail) */
	size_t rhead;             /* first ready entry */
	size_t rtail;             /* one past the last */
	size_t rcap;              /* slots in ready */
	struct watch *w;          /* watches, sorted by wd (wds grow) */
	size_t nw;                /* entries in w */
	size_t wcap;              /* slots in w */
	int64_t next_rescan;      /* monotonic ms of the next full rescan */
	struct tw_follow_counters c; /* counters */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mtime_ns(const struct stat *sb)
{
	return (int64_t)sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Whether a name (the last component) is one to follow. */
static int name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || name[0] == '.' || strchr(name, '\n'))
		return 0;
	if (n >= 4 && !strcmp(name + n - 4, ".tmp"))
		return 0;
	if (n >= 5 && !strcmp(name + n - 5, ".part"))
		return 0;
	return 1;
}

/* ---- the entry table --------------------------------------------------------------------------- */

static struct entry *tab_find(struct tw_follow *f, const char *rel, uint64_t h)
{
	size_t m = f->tabcap - 1;
	for (size_t i = h & m;; i = (i + 1) & m) {
		struct entry *e = f->tab[i];
		if (!e)
			return NULL;
		if (e->hash == h && !strcmp(e->rel, rel))
			return e;
	}
}

static enum tw_rc tab_grow(struct tw_follow *f, struct tw_err *err)
{
	size_t ncap = f->tabcap ? f->tabcap * 2 : 1024;
	struct entry **nt = calloc(ncap, sizeof *nt);

	if (!nt)
		return tw_err_set(err, TW_ENOMEM, "follow %s: out of memory for %zu files", f->dir, f->nent);
	for (size_t i = 0; i < f->tabcap; i++) {
		struct entry *e = f->tab[i];
		if (!e)
			continue;
		size_t j = e->hash & (ncap - 1);
		while (nt[j])
			j = (j + 1) & (ncap - 1);
		nt[j] = e;
	}
	free(f->tab);
	f->tab = nt;
	f->tabcap = ncap;
	return TW_OK;
}

/* Finds or adds the entry of rel. */
static enum tw_rc tab_get(struct tw_follow *f, const char *rel, struct entry **out, struct tw_err *err)
{
	uint64_t h = hash_str(rel);
	struct entry *e = tab_find(f, rel, h);
	size_t i;

	if (e) {
		*out = e;
		return TW_OK;
	}
	if ((f->nent + 1) * 4 > f->tabcap * 3 && tab_grow(f, err) != TW_OK)
		return err ? err->rc : TW_ENOMEM;
	e = calloc(1, sizeof *e);
	if (!e || !(e->rel = strdup(rel))) {
		free(e);
		return tw_err_set(err, TW_ENOMEM, "follow %s: out of memory", f->dir);
	}
	e->hash = h;
	for (i = h & (f->tabcap - 1); f->tab[i]; i = (i + 1) & (f->tabcap - 1))
		;
	f->tab[i] = e;
	f->nent++;
	*out = e;
	return TW_OK;
}

static enum tw_rc ready_push(struct tw_follow *f, struct entry *e, struct tw_err *err)
{
	if (e->state == CAND_READY)
		return TW_OK;
	if (f->rtail == f->rcap) {
		if (f->rhead) { /* slide down */
			memmove(f->ready, f->ready + f->rhead, (f->rtail - f->rhead) * sizeof *f->ready);
			f->rtail -= f->rhead;
			f->rhead = 0;
		}
		if (f->rtail == f->rcap) {
			size_t ncap = f->rcap ? f->rcap * 2 : 64;
			struct entry **nr = realloc(f->ready, ncap * sizeof *nr);
			if (!nr)
				return tw_err_set(err, TW_ENOMEM, "follow %s: out of memory", f->dir);
			f->ready = nr;
			f->rcap = ncap;
		}
	}
	f->ready[f->rtail++] = e;
	e->state = CAND_READY;
	return TW_OK;
}

/* ---- watches ----------------------------------------------------------------------------------- */

static struct watch *watch_find(struct tw_follow *f, int wd)
{
	size_t lo = 0, hi = f->nw;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->w[mid].wd < wd)
			lo = mid + 1;
		else if (f->w[mid].wd == wd)
			return &f->w[mid];
		else
			hi = mid;
	}
	return NULL;
}

/* Watches directory rel (no error when inotify cannot: the rescan still covers it). */
static enum tw_rc watch_add(struct tw_follow *f, const char *rel, struct tw_err *err)
{
	char path[4096];
	struct watch *w;
	int wd;

	if (f->ifd < 0)
		return TW_OK;
	snprintf(path, sizeof path, "%s%s%s", f->dir, *rel ? "/" : "", rel);
	wd = inotify_add_watch(f->ifd, path, WATCH_MASK | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0) {
		f->c.watch_failures++;
		return TW_OK;
	}
	if ((w = watch_find(f, wd)) != NULL) {
		if (!w->rel || strcmp(w->rel, rel)) { /* renamed or re-watched: this is its name now */
			char *r = strdup(rel);
			if (!r)
				return tw_err_set(err, TW_ENOMEM, "follow %s: out of memory", f->dir);
			free(w->rel);
			w->rel = r;
		}
		return TW_OK;
	}
	if (f->nw == f->wcap) {
		size_t ncap = f->wcap ? f->wcap * 2 : 16;
		struct watch *nw = realloc(f->w, ncap * sizeof *nw);
		if (!nw)
			return tw_err_set(err, TW_ENOMEM, "follow %s: out of memory", f->dir);
		f->w = nw;
		f->wcap = ncap;
	}
	/* wds are handed out increasing; keep the array sorted in case one is reused */
	size_t i = f->nw;
	while (i > 0 && f->w[i - 1].wd > wd)
		i--;
	memmove(f->w + i + 1, f->w + i, (f->nw - i) * sizeof *f->w);
	f->w[i].wd = wd;
	f->w[i].rel = strdup(rel);
	f->nw++;
	if (!f->w[i].rel) {
		return tw_err_set(err, TW_ENOMEM, "follow %s: out of memory", f->dir);
	}
	return TW_OK;
}

/* ---- scanning ---------------------------------------------------------------------------------- */

/* A file seen with sb: ready now (inotify said it is complete) or after holding still. */
static enum tw_rc saw_file(struct tw_follow *f, const char *rel, const struct stat *sb, int complete, int64_t now,
			   struct tw_err *err)
{
	struct entry *e;
	enum tw_rc rc;
	int64_t sz = (int64_t)sb->st_size, mt = mtime_ns(sb);

	if ((rc = tab_get(f, rel, &e, err)) != TW_OK)
		return rc;
	if (e->done && e->done_size == sz && e->done_mtime == mt)
		return TW_OK;
	if (e->state == CAND_READY)
		return TW_OK;
	if (complete)
		return ready_push(f, e, err);
	if (e->state == CAND_WAIT && e->cand_size == sz && e->cand_mtime == mt) {
		if (now - e->cand_seen >= f->opts.rescan_ms)
			return ready_push(f, e, err);
		return TW_OK;
	}
	e->state = CAND_WAIT;
	e->cand_size = sz;
	e->cand_mtime = mt;
	e->cand_seen = now;
	return TW_OK;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Scans directory rel recursively (names in byte order), watching each directory. */
static enum tw_rc scan_dir(struct tw_follow *f, const char *rel, int depth, int64_t now, struct tw_err *err)
{
	char path[4096], sub[4096];
	struct dirent **list = NULL;
	enum tw_rc rc = TW_OK;
	int n;

	if (depth > 32)
		return TW_OK;
	if ((rc = watch_add(f, rel, err)) != TW_OK)
		return rc;
	snprintf(path, sizeof path, "%s%s%s", f->dir, *rel ? "/" : "", rel);
	n = scandir(path, &list, NULL, name_cmp);
	if (n < 0) {
		if (!*rel)
			return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "follow %s: %s", f->dir,
					  strerror(errno));
		return TW_OK; /* a subdirectory that went away */
	}
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		struct stat sb;
		int k;

		if (rc == TW_OK && name_ok(name)) {
			k = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", name);
			if (k > 0 && (size_t)k + strlen(f->dir) + 2 < sizeof path) {
				int k2 = snprintf(path, sizeof path, "%s/%s", f->dir, sub);
				if (k2 > 0 && (size_t)k2 < sizeof path && lstat(path, &sb) == 0) {
					if (S_ISDIR(sb.st_mode))
						rc = scan_dir(f, sub, depth + 1, now, err);
					else if (S_ISREG(sb.st_mode))
						rc = saw_file(f, sub, &sb, 0, now, err);
				}
			}
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

static enum tw_rc rescan(struct tw_follow *f, struct tw_err *err)
{
	int64_t now = now_ms();

	f->c.rescans++;
	f->next_rescan = now + f->opts.rescan_ms;
	return scan_dir(f, "", 0, now, err);
}

/* Reads what inotify has (without blocking). */
static enum tw_rc drain_inotify(struct tw_follow *f, struct tw_err *err)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	enum tw_rc rc = TW_OK;

	for (;;) {
		ssize_t n = read(f->ifd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return rc;
			return tw_err_set(err, TW_EIO, "follow %s: inotify read: %s", f->dir, strerror(errno));
		}
		if (n == 0)
			return rc;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			struct watch *w;
			char rel[4096], full[8192];
			struct stat sb;

			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				f->c.overflows++;
				f->next_rescan = 0;
				continue;
			}
			if (!(w = watch_find(f, ev->wd)))
				continue;
			if (ev->mask & IN_IGNORED) { /* kept in place (wds are not reused soon) */
				free(w->rel);
				w->rel = NULL;
				continue;
			}
			if (!ev->len || !name_ok(ev->name) || rc != TW_OK || !w->rel)
				continue;
			snprintf(rel, sizeof rel, "%s%s%s", w->rel, *w->rel ? "/" : "", ev->name);
			snprintf(full, sizeof full, "%s/%s", f->dir, rel);
			if (lstat(full, &sb) != 0)
				continue;
			if (S_ISDIR(sb.st_mode)) {
				if (ev->mask & (IN_CREATE | IN_MOVED_TO))
					rc = scan_dir(f, rel, 1, now_ms(), err);
			} else if (S_ISREG(sb.st_mode) && (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) {
				rc = saw_file(f, rel, &sb, 1, 0, err);
			}
		}
	}
}

/* ---- the checkpoint ---------------------------------------------------------------------------- */

/* Parses "size mtime rel" (no newline). Returns 0 or -1. */
static int ck_parse(char *line, int64_t *size, int64_t *mt, char **rel)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(line, &end, 10);
	if (errno || end == line || *end != ' ' || v < 0)
		return -1;
	*size = v;
	line = end + 1;
	v = strtoll(line, &end, 10);
	if (errno || end == line || *end != ' ')
		return -1;
	*mt = v;
	if (!end[1])
		return -1;
	*rel = end + 1;
	return 0;
}

/* Loads the checkpoint, cutting a torn tail so the next append starts on a fresh line. */
static enum tw_rc ck_load(struct tw_follow *f, struct tw_err *err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	off_t good = 0;
	FILE *in;
	int fd = dup(f->ckfd);

	if (fd < 0 || !(in = fdopen(fd, "r"))) {
		if (fd >= 0)
			close(fd);
		return tw_err_set(err, TW_EIO, "follow checkpoint %s: %s", f->ckpath, strerror(errno));
	}
	rewind(in);
	while ((n = getline(&line, &cap, in)) > 0) {
		int64_t size, mt;
		char *rel;
		struct entry *e;

		if (line[n - 1] != '\n') { /* torn tail: dropped, cut below */
			f->c.torn_lines++;
			break;
		}
		good += n;
		line[n - 1] = 0;
		if (n > CK_LINE_MAX || ck_parse(line, &size, &mt, &rel)) {
			f->c.torn_lines++;
			continue;
		}
		if (tab_get(f, rel, &e, err) != TW_OK) {
			free(line);
			fclose(in);
			return err ? err->rc : TW_ENOMEM;
		}
		if (!e->done)
			f->c.checkpointed++;
		e->done = 1;
		e->done_size = size;
		e->done_mtime = mt;
	}
	free(line);
	if (ferror(in)) {
		fclose(in);
		return tw_err_set(err, TW_EIO, "follow checkpoint %s: read: %s", f->ckpath, strerror(errno));
	}
	fclose(in);
	if (lseek(f->ckfd, 0, SEEK_END) > good) {
		if (ftruncate(f->ckfd, good) != 0 || fsync(f->ckfd) != 0)
			return tw_err_set(err, TW_EIO, "follow checkpoint %s: cutting a torn line: %s", f->ckpath,
					  strerror(errno));
	}
	return TW_OK;
}

static enum tw_rc ck_append(struct tw_follow *f, const struct entry *e, int64_t size, int64_t mt,
			    struct tw_err *err)
{
	char line[CK_LINE_MAX];
	int k = snprintf(line, sizeof line, "%lld %lld %s\n", (long long)size, (long long)mt, e->rel);
	size_t off = 0;

	if (k < 0 || (size_t)k >= sizeof line)
		return tw_err_set(err, TW_ELIMIT, "follow checkpoint %s: path too long: %s", f->ckpath, e->rel);
	while (off < (size_t)k) {
		ssize_t w = write(f->ckfd, line + off, (size_t)k - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)w;
	}
	if (fdatasync(f->ckfd) != 0)
		goto fail;
	return TW_OK;
fail:
	{
		int e0 = errno;
		/* never append after a partial line: cut it (the load would also ignore it) */
		if (off) {
			off_t end = lseek(f->ckfd, 0, SEEK_END);
			if (end >= (off_t)off && ftruncate(f->ckfd, end - (off_t)off) != 0) { /* best effort */
			}
		}
		return tw_err_set(err, TW_EIO, "follow checkpoint %s: %s", f->ckpath, strerror(e0));
	}
}

/* ---- the API ----------------------------------------------------------------------------------- */

enum tw_rc tw_ingest_follow_open(const char *dir, const char *checkpoint_path, const struct tw_follow_opts *opts,
				 struct tw_follow **out, struct tw_err *err)
{
	struct tw_follow *f;
	struct stat sb;
	enum tw_rc rc;
	size_t dl;

	if (!dir || !*dir || !checkpoint_path || !out)
		return tw_err_set(err, TW_EINVAL, "follow: directory and checkpoint are required");
	if (stat(dir, &sb) != 0)
		return tw_err_set(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "follow %s: %s", dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return tw_err_set(err, TW_EINVAL, "follow %s: not a directory", dir);
	f = calloc(1, sizeof *f);
	if (!f)
		return tw_err_set(err, TW_ENOMEM, "follow %s: out of memory", dir);
	f->ckfd = -1;
	f->ifd = -1;
	if (opts)
		f->opts = *opts;
	if (f->opts.rescan_ms <= 0)
		f->opts.rescan_ms = 1000;
	if (!f->opts.poll_files)
		f->opts.poll_files = 16;
	f->dir = strdup(dir);
	f->ckpath = strdup(checkpoint_path);
	if (!f->dir || !f->ckpath) {
		rc = tw_err_set(err, TW_ENOMEM, "follow %s: out of memory", dir);
		goto fail;
	}
	dl = strlen(f->dir);
	while (dl > 1 && f->dir[dl - 1] == '/')
		f->dir[--dl] = 0;
	if ((rc = tab_grow(f, err)) != TW_OK)
		goto fail;
	f->ckfd = open(checkpoint_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (f->ckfd < 0) {
		rc = tw_err_set(err, TW_EIO, "follow checkpoint %s: %s", checkpoint_path, strerror(errno));
		goto fail;
	}
	if ((rc = ck_load(f, err)) != TW_OK)
		goto fail;
	f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC); /* -1: rescans only */
	if ((rc = rescan(f, err)) != TW_OK)
		goto fail;
	*out = f;
	return TW_OK;
fail:
	tw_ingest_follow_close(f);
	return rc;
}

enum tw_rc tw_ingest_follow_poll(struct tw_follow *f, const struct tw_ingest_limits *lim, struct tw_sink *sink,
				 struct tw_ingest_stats *st, int timeout_ms, struct tw_err *err)
{
	enum tw_rc rc;
	int64_t now = now_ms(), deadline = now + (timeout_ms > 0 ? timeout_ms : 0);
	struct tw_ingest_limits one; /* a file found here is read only if it is still a regular file */

	tw_ingest_limits_fill(&one, lim);
	one.regular_only = 1;
	/* wait for something: an inotify event, the rescan, or the deadline */
	while (f->rhead == f->rtail) {
		int64_t until = deadline < f->next_rescan ? deadline : f->next_rescan;
		int wait = until > now ? (int)(until - now) : 0;

		if (f->ifd >= 0) {
			struct pollfd pfd = { f->ifd, POLLIN, 0 };
			int pr = poll(&pfd, 1, wait);
			if (pr < 0 && errno != EINTR)
				return tw_err_set(err, TW_EIO, "follow %s: poll: %s", f->dir, strerror(errno));
			if (pr > 0 && (rc = drain_inotify(f, err)) != TW_OK)
				return rc;
		} else if (wait > 0) {
			struct timespec ts = { wait / 1000, (long)(wait % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
		now = now_ms();
		if (now >= f->next_rescan && (rc = rescan(f, err)) != TW_OK)
			return rc;
		if (now >= deadline)
			break;
	}
	if (f->ifd >= 0 && (rc = drain_inotify(f, err)) != TW_OK)
		return rc;
	if (now_ms() >= f->next_rescan && (rc = rescan(f, err)) != TW_OK)
		return rc;

	for (size_t k = 0; k < f->opts.poll_files && f->rhead < f->rtail; k++) {
		struct entry *e = f->ready[f->rhead];
		char full[8192];
		const char *paths[1];
		struct stat sb;

		snprintf(full, sizeof full, "%s/%s", f->dir, e->rel);
		if (lstat(full, &sb) != 0 || !S_ISREG(sb.st_mode)) { /* gone: forget it */
			f->rhead++;
			e->state = CAND_NONE;
			continue;
		}
		if (e->done && e->done_size == (int64_t)sb.st_size && e->done_mtime == mtime_ns(&sb)) {
			f->rhead++;
			e->state = CAND_NONE;
			continue;
		}
		paths[0] = full;
		rc = tw_ingest_paths(paths, 1, &one, sink, NULL, st, err);
		if (rc == TW_ESTOP)
			return rc; /* the sink refused: stays at the head of the queue */
		if (rc != TW_OK) {
			/* unreadable: wait for it to change or hold still for a rescan */
			f->rhead++;
			e->state = CAND_WAIT;
			e->cand_size = (int64_t)sb.st_size;
			e->cand_mtime = mtime_ns(&sb);
			e->cand_seen = now_ms();
			f->c.file_errors++;
			return rc;
		}
		if ((rc = ck_append(f, e, (int64_t)sb.st_size, mtime_ns(&sb), err)) != TW_OK)
			return rc; /* stays queued: decoded again (the store dedups) */
		f->rhead++;
		e->state = CAND_NONE;
		if (!e->done)
			f->c.checkpointed++;
		e->done = 1;
		e->done_size = (int64_t)sb.st_size;
		e->done_mtime = mtime_ns(&sb);
		f->c.files_done++;
	}
	if (f->rhead == f->rtail)
		f->rhead = f->rtail = 0;
	return TW_OK;
}

size_t tw_ingest_follow_pending(const struct tw_follow *f)
{
	size_t n = 0;
	for (size_t i = 0; i < f->tabcap; i++)
		n += f->tab[i] && f->tab[i]->state != CAND_NONE;
	return n;
}

void tw_ingest_follow_counters(const struct tw_follow *f, struct tw_follow_counters *c)
{
	*c = f->c;
}

void tw_ingest_follow_close(struct tw_follow *f)
{
	if (!f)
		return;
	if (f->ifd >= 0)
		close(f->ifd);
	if (f->ckfd >= 0)
		close(f->ckfd);
	for (size_t i = 0; i < f->tabcap; i++) {
		if (f->tab[i]) {
			free(f->tab[i]->rel);
			free(f->tab[i]);
		}
	}
	for (size_t i = 0; i < f->nw; i++)
		free(f->w[i].rel);
	free(f->tab);
	free(f->ready);
	free(f->w);
	free(f->dir);
	free(f->ckpath);
	free(f);
}
