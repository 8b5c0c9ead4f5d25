/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/pyserver.h: runs one of the Python test servers of tests/tools/ (the SMTP server
 * on aiosmtpd, the scripted HTTP receiver) with /usr/bin/python3 on 127.0.0.1, and stops it.
 * Also a free port on 127.0.0.1 and a self-signed certificate made with openssl. */
#ifndef TW_TEST_PYSERVER_H
#define TW_TEST_PYSERVER_H

#include <sys/types.h>

/* A running server. */
struct tw_test_server {
	pid_t pid; /* the python process */
	int in;    /* write end of its stdin: closing it stops the server */
	int port;  /* the port it printed */
};

/* Skips the current test unless /usr/bin/python3 can import module (e.g. "aiosmtpd"). */
void tw_test_need_python(const char *module);
/* Starts $TW_SRC/tests/tools/SCRIPT with args (NULL-terminated) and waits (5 s at most) for the
 * port on its stdout; fails the test otherwise. */
void tw_test_server_start(struct tw_test_server *s, const char *script, const char *const *args);
/* Stops it (SIGTERM) and reaps it. Safe to call twice. */
void tw_test_server_stop(struct tw_test_server *s);
/* A port on 127.0.0.1 nobody listens on right now. */
int tw_test_free_port(void);
/* Writes a self-signed certificate for 127.0.0.1/localhost into dir/cert.pem and dir/key.pem. */
void tw_test_make_cert(const char *dir);

#endif
