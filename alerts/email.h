/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/email.h: renders an alarm notice as email content: the subject (raw UTF-8), the plain
 * text, and a complete MIME entity (multipart/alternative: text/plain quoted-printable, and
 * multipart/related with text/html and the chart as image/png referenced by cid:). Produces no
 * message headers (From, To, Subject, Date, Message-ID, MIME-Version): the sender adds them.
 * No I/O and no global state. */
#ifndef TW_ALERTS_EMAIL_H
#define TW_ALERTS_EMAIL_H

#include <stddef.h>

#include "alerts/notice.h"
#include "core/buf.h"
#include "core/err.h"

/* Renders nt. Appends to the caller's buffers (each initialised by the caller with its cap):
 *   subject: one line, no newline, raw UTF-8, e.g. `ALARM: "name" in 123456789012/us-east-1`
 *            (control characters in the name become spaces: no header injection). May be NULL.
 *   text:    the plain-text body, LF line endings (what the text/plain part carries). May be NULL.
 *   mime:    the MIME entity, CRLF line endings, starting with its own Content-Type header line;
 *            body lines at most 76 characters. May be NULL.
 * Strings in the notice are sanitized: invalid UTF-8 bytes become '?', control characters
 * become spaces; HTML output escapes & < > " '. Only http(s) links become hyperlinks.
 * Errors: TW_EINVAL (nt or alarm_name missing), TW_ELIMIT (a buffer's cap), TW_ENOMEM, TW_EIO
 * (zlib). On error every buffer is cut back to its length before the call.
 * Borrowed arguments; thread-safe. */
enum tw_rc tw_email_render(const struct tw_alarm_notice *nt, struct tw_buf *subject, struct tw_buf *text,
			   struct tw_buf *mime, struct tw_err *err);

/* The HTML body alone (a full document, inline styles only); the chart is referenced as
 * <img src="cid:CID">, or left out when cid is NULL. Appends to html. */
enum tw_rc tw_email_render_html(const struct tw_alarm_notice *nt, const char *cid, struct tw_buf *html,
				struct tw_err *err);

/* Quoted-printable (RFC 2045 6.7) of p[0..n): LF or CRLF in the input become CRLF hard breaks;
 * lines are at most 76 characters including the '=' of a soft break; '=', non-ASCII, controls,
 * whitespace before a break and a '.' starting a line are encoded. Appends to out. */
enum tw_rc tw_email_qp_encode(const char *p, size_t n, struct tw_buf *out, struct tw_err *err);

/* Base64 (RFC 2045 6.8) of p[0..n) in lines of 76 characters ending in CRLF. Appends to out. */
enum tw_rc tw_email_base64_encode(const void *p, size_t n, struct tw_buf *out, struct tw_err *err);

/* Appends s (NUL-terminated, may be NULL) sanitized as described above and HTML-escaped. */
enum tw_rc tw_email_html_escape(const char *s, struct tw_buf *out, struct tw_err *err);

#endif
