/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify_local.c: deliveries that stay on this machine: `file` (one JSON line appended
 * and fsynced), `maildir` (the mail written into tmp/, fsynced, renamed into new/, the standard
 * Maildir way) and `exec` (a program run without a shell, the JSON on its stdin, exit 0 =
 * delivered, killed with its process group when it outlives the timeout). Runs on a worker
 * thread with SIGPIPE blocked (notify.c drains it). */
#include "alerts/notify_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

enum tw_notify_outcome tw_notify_file_deliver(struct tw_notify_attempt *a)
{
	const char *path = a->s->c.endpoint;
	char *line = malloc(a->m->nsns + 1);
	int fd, e;

	if (!line) {
		snprintf(a->error, sizeof a->error, "out of memory");
		return TW_NOTIFY_TRANSIENT;
	}
	memcpy(line, a->m->sns, a->m->nsns);
	line[a->m->nsns] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, line, a->m->nsns + 1) || fdatasync(fd)) {
		e = errno;
		snprintf(a->error, sizeof a->error, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		free(line);
		return TW_NOTIFY_TRANSIENT;
	}
	free(line);
	if (close(fd)) {
		snprintf(a->error, sizeof a->error, "%s: close: %s", path, strerror(errno));
		return TW_NOTIFY_TRANSIENT;
	}
	return TW_NOTIFY_OK;
}

/* ---- maildir ------------------------------------------------------------------------------------ */

static uint32_t fnv32(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int ensure_dir(const char *p)
{
	return mkdir(p, 0700) && errno != EEXIST ? -1 : 0;
}

/* 1 when NAME is already in new/ or (renamed by a reader to NAME:2,FLAGS) in cur/. */
static int already_there(const char *dir, const char *name)
{
	char p[4200];
	struct stat st;
	DIR *d;
	struct dirent *de;
	size_t len = strlen(name);
	int found = 0;

	snprintf(p, sizeof p, "%s/new/%s", dir, name);
	if (!stat(p, &st))
		return 1;
	snprintf(p, sizeof p, "%s/cur", dir);
	d = opendir(p);
	if (!d)
		return 0;
	while (!found && (de = readdir(d)))
		if (!strncmp(de->d_name, name, len) && (de->d_name[len] == ':' || de->d_name[len] == 0))
			found = 1;
	closedir(d);
	return found;
}

enum tw_notify_outcome tw_notify_maildir_deliver(struct tw_notify_attempt *a)
{
	const char *dir = a->s->c.endpoint;
	char host[256], name[512], tmp[4200], dst[4200], sub[4200];
	struct tw_buf mail;
	struct tw_err err = { 0 };
	int fd = -1, e;
	size_t k = 0;

	/* The unique part of the name is the message id and the subscription: a redelivery after a
	 * crash finds the first copy and stops (exactly once for Maildir). Host name with '/' and
	 * ':' escaped as the Maildir convention says. */
	if (gethostname(host, sizeof host))
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = 0;
	k = (size_t)snprintf(name, sizeof name, "%lld.%s_%08x.", (long long)(a->m->ts / 1000), a->m->id,
			     (unsigned)fnv32(a->s->name));
	for (const char *h = host; *h && k + 5 < sizeof name; h++) {
		if (*h == '/' || *h == ':')
			k += (size_t)snprintf(name + k, sizeof name - k, "\\%03o", (unsigned char)*h);
		else
			name[k++] = *h;
	}
	name[k] = 0;
	for (int i = 0; i < 4; i++) {
		snprintf(sub, sizeof sub, "%s%s", dir, i == 0 ? "" : i == 1 ? "/tmp" : i == 2 ? "/new" : "/cur");
		if (ensure_dir(sub)) {
			snprintf(a->error, sizeof a->error, "%.180s: mkdir: %s", sub, strerror(errno));
			return TW_NOTIFY_TRANSIENT;
		}
	}
	if (already_there(dir, name))
		return TW_NOTIFY_OK;
	tw_buf_init(&mail, (size_t)64 << 20);
	if (tw_notify_mail_build(a->m, a->s, 0, &mail, &err)) {
		snprintf(a->error, sizeof a->error, "building the mail: %.200s", err.msg);
		tw_buf_free(&mail);
		return TW_NOTIFY_PERMANENT;
	}
	snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
	snprintf(dst, sizeof dst, "%s/new/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, mail.p, mail.n) || fsync(fd) || close(fd) || rename(tmp, dst)) {
		e = errno;
		snprintf(a->error, sizeof a->error, "%.180s: %s", fd < 0 ? tmp : dst, strerror(e));
		unlink(tmp);
		tw_buf_free(&mail);
		return TW_NOTIFY_TRANSIENT;
	}
	tw_buf_free(&mail);
	snprintf(sub, sizeof sub, "%s/new", dir);
	fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd)) {
		snprintf(a->error, sizeof a->error, "%.180s: fsync: %s", sub, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TW_NOTIFY_TRANSIENT;
	}
	close(fd);
	return TW_NOTIFY_OK;
}

/* ---- exec --------------------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps the last bytes the program printed, for the error message. */
static void keep_tail(char *tail, size_t cap, size_t *n, const char *p, size_t k)
{
	if (k >= cap - 1) {
		memcpy(tail, p + k - (cap - 1), cap - 1);
		*n = cap - 1;
	} else {
		if (*n + k > cap - 1) {
			size_t drop = *n + k - (cap - 1);
			memmove(tail, tail + drop, *n - drop);
			*n -= drop;
		}
		memcpy(tail + *n, p, k);
		*n += k;
	}
	tail[*n] = 0;
}

static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			*s = ' ';
}

enum tw_notify_outcome tw_notify_exec_deliver(struct tw_notify_attempt *a)
{
	const struct tw_notify_s *s = a->s;
	const char *one[2] = { s->c.endpoint, NULL };
	char *const *argv = (char *const *)(s->c.argv ? s->c.argv : one);
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, st = 0, killed = 0, e;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	pid_t pid;
	size_t off = 0, ntail = 0;
	char tail[160] = "";
	int64_t deadline = mono_ms() + s->c.timeout_ms;

	if (pipe2(in, O_CLOEXEC) || pipe2(outp, O_CLOEXEC)) {
		e = errno;
		snprintf(a->error, sizeof a->error, "pipe: %s", strerror(e));
		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0)
				close(in[i]);
			if (outp[i] >= 0)
				close(outp[i]);
		}
		return TW_NOTIFY_TRANSIENT;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	e = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in[0]);
	close(outp[1]);
	if (e) {
		close(in[1]);
		close(outp[0]);
		snprintf(a->error, sizeof a->error, "%s: cannot run: %s", argv[0], strerror(e));
		return e == ENOENT || e == EACCES || e == ENOEXEC ? TW_NOTIFY_PERMANENT : TW_NOTIFY_TRANSIENT;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	while (in[1] >= 0 || outp[0] >= 0) {
		struct pollfd pf[2];
		int np = 0;
		int64_t left = deadline - mono_ms();
		if (left <= 0 || *a->stop) {
			killed = 1;
			break;
		}
		if (in[1] >= 0)
			pf[np++] = (struct pollfd){ in[1], POLLOUT, 0 };
		if (outp[0] >= 0)
			pf[np++] = (struct pollfd){ outp[0], POLLIN, 0 };
		if (poll(pf, (nfds_t)np, left > 100 ? 100 : (int)left) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < np; i++) {
			if (!pf[i].revents)
				continue;
			if (pf[i].fd == in[1]) {
				ssize_t w = write(in[1], a->m->sns + off, a->m->nsns - off);
				if (w > 0)
					off += (size_t)w;
				if ((w < 0 && errno != EAGAIN && errno != EINTR) || off == a->m->nsns) {
					close(in[1]); /* all written, or the program stopped reading (EPIPE) */
					in[1] = -1;
				}
			} else {
				char buf[4096];
				ssize_t r = read(outp[0], buf, sizeof buf);
				if (r > 0) {
					keep_tail(tail, sizeof tail, &ntail, buf, (size_t)r);
				} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
					close(outp[0]);
					outp[0] = -1;
				}
			}
		}
	}
	/* Output closed (or given up on): wait for the exit until the deadline. */
	while (!killed) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			killed = 1;
			break;
		}
		if (mono_ms() >= deadline || *a->stop) {
			killed = 1;
			break;
		}
		poll(NULL, 0, 5);
	}
	if (in[1] >= 0)
		close(in[1]);
	if (outp[0] >= 0)
		close(outp[0]);
	if (killed) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
		}
		if (*a->stop)
			return TW_NOTIFY_ABORTED;
		snprintf(a->error, sizeof a->error, "%s: killed after the timeout of %lld ms", argv[0],
			 (long long)s->c.timeout_ms);
		return TW_NOTIFY_TRANSIENT;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return TW_NOTIFY_OK;
	printable(tail);
	if (WIFEXITED(st))
		snprintf(a->error, sizeof a->error, "%s: exit status %d%s%s", argv[0], WEXITSTATUS(st), ntail ? ": " : "",
			 tail);
	else
		snprintf(a->error, sizeof a->error, "%s: killed by signal %d", argv[0], WTERMSIG(st));
	return TW_NOTIFY_TRANSIENT;
}
