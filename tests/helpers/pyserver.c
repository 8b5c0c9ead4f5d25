/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/pyserver.c: starting and stopping the Python test servers; free ports;
 * self-signed certificates. Test-only: fails the current test when the machine lets it down. */
#include "tests/helpers/pyserver.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers/helpers.h"

#define PY "/usr/bin/python3"

void tw_test_need_python(const char *module)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, PY " -c 'import %s' >/dev/null 2>&1", module);
	if (access(PY, X_OK) || system(cmd) != 0)
		cr_skip_test("%s cannot import %s (install python3-%s)", PY, module, module);
}

void tw_test_server_start(struct tw_test_server *s, const char *script, const char *const *args)
{
	const char *argv[32];
	char path[1024], line[32];
	int in[2], out[2];
	size_t k = 0, n = 0;

	snprintf(path, sizeof path, "%s/tests/tools/%s", tw_test_src(), script);
	argv[k++] = PY;
	argv[k++] = path;
	for (size_t i = 0; args && args[i] && k < 31; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	cr_assert(pipe(in) == 0 && pipe(out) == 0);
	fflush(NULL);
	s->pid = fork();
	cr_assert(s->pid >= 0, "fork: %s", strerror(errno));
	if (s->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(in[0], 0);
		dup2(out[1], 1);
		/* Server tracebacks (a refused TLS handshake is expected in some tests) stay quiet
		 * unless TW_TEST_VERBOSE is set. */
		if (!getenv("TW_TEST_VERBOSE") && devnull >= 0)
			dup2(devnull, 2);
		close(in[1]);
		close(out[0]);
		execv(PY, (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->in = in[1];
	while (n < sizeof line - 1) {
		struct pollfd pf = { out[0], POLLIN, 0 };
		ssize_t r;
		cr_assert(poll(&pf, 1, 5000) == 1, "%s did not print its port within 5 s", script);
		r = read(out[0], line + n, 1);
		cr_assert(r == 1, "%s exited before printing its port", script);
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	close(out[0]);
	s->port = atoi(line);
	cr_assert(s->port > 0, "%s printed \"%s\", not a port", script, line);
}

void tw_test_server_stop(struct tw_test_server *s)
{
	if (s->pid <= 0)
		return;
	close(s->in);
	kill(s->pid, SIGTERM);
	/* bounded: a server stuck in a TLS handshake with a client that went away once ignored the
	 * SIGTERM and hung make check for good; after 5 s it is killed */
	for (int i = 0; i < 500; i++) {
		pid_t w = waitpid(s->pid, NULL, WNOHANG);
		if (w == s->pid || (w < 0 && errno != EINTR)) {
			s->pid = 0;
			return;
		}
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
	}
	s->pid = 0;
}

int tw_test_free_port(void)
{
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	cr_assert(fd >= 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

void tw_test_make_cert(const char *dir)
{
	char cmd[2048];

	snprintf(cmd, sizeof cmd,
		 "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
		 "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
		 dir, dir);
	cr_assert(system(cmd) == 0, "openssl req failed: %s", cmd);
}
