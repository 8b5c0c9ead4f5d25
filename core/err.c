/* SPDX-License-Identifier: Apache-2.0 */
/* core/err.c: error codes and messages. No I/O here: cli/ decides what to print. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum tw_rc tw_err_set(struct tw_err *err, enum tw_rc rc, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->rc = rc;
	}
	return rc;
}

void tw_err_prefix(struct tw_err *err, const char *fmt, ...)
{
	char old[sizeof err->msg];
	va_list ap;
	int n;

	if (!err)
		return;
	memcpy(old, err->msg, sizeof old);
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof err->msg - 3)
		return;
	/* Append ": old", truncating the old message if the whole does not fit. */
	err->msg[n++] = ':';
	err->msg[n++] = ' ';
	memcpy(err->msg + n, old, sizeof err->msg - (size_t)n - 1);
	err->msg[sizeof err->msg - 1] = '\0';
}

void tw_err_clear(struct tw_err *err)
{
	if (err) {
		err->rc = TW_OK;
		err->msg[0] = '\0';
	}
}

const char *tw_rc_str(enum tw_rc rc)
{
	switch (rc) {
	case TW_OK: return "OK";
	case TW_ENOMEM: return "ENOMEM";
	case TW_EINVAL: return "EINVAL";
	case TW_EIO: return "EIO";
	case TW_EPARSE: return "EPARSE";
	case TW_ECORRUPT: return "ECORRUPT";
	case TW_ELIMIT: return "ELIMIT";
	case TW_ENOENT: return "ENOENT";
	case TW_EBUSY: return "EBUSY";
	case TW_EUNSUP: return "EUNSUP";
	case TW_ESTOP: return "ESTOP";
	}
	return "E?";
}
