/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify_smtp.c: the mail a notification becomes (RFC 5322 headers, RFC 2047 subjects,
 * RFC 2045 quoted-printable bodies) and its delivery over SMTP with libcurl (STARTTLS required,
 * opportunistic or off on smtp://, implicit TLS on smtps://, AUTH with a password loaded per
 * attempt and wiped after). Never logs a password; reply codes 5xx are permanent failures,
 * everything else (4xx, connection errors, timeouts) transient. */
#include "alerts/notify_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/time.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void tw_notify_curl_init(void)
{
	pthread_once(&curl_once, curl_init_once);
}

static int progress_cb(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const volatile int *stop = ctx;

	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return *stop ? 1 : 0;
}

void tw_notify_curl_common(void *c, const struct tw_notify_attempt *a, char *ebuf)
{
	const struct tw_notify_s *s = a->s;

	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->c.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->c.timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)a->stop);
}

/* ---- building the mail -------------------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static enum tw_rc b64(const unsigned char *p, size_t n, struct tw_buf *out, struct tw_err *err)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		char q[4] = { B64[v >> 18 & 63], B64[v >> 12 & 63], i + 1 < n ? B64[v >> 6 & 63] : '=',
			      i + 2 < n ? B64[v & 63] : '=' };
		if (tw_buf_append(out, q, 4, err))
			return err->rc;
	}
	return TW_OK;
}

enum tw_rc tw_notify_header_encode(const char *s, const char *fold, struct tw_buf *out, struct tw_err *err)
{
	size_t n = strlen(s), i = 0;
	int plain = 1;

	for (size_t k = 0; k < n; k++)
		if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] > 0x7e)
			plain = 0;
	if (plain)
		return tw_buf_append(out, s, n, err);
	/* Encoded words of at most 75 characters: 45 bytes of UTF-8 give 60 of base64, plus 12 of
	 * "=?UTF-8?B?" "?=". A word never splits a UTF-8 sequence (RFC 2047 section 5). */
	while (i < n) {
		size_t take = n - i > 45 ? 45 : n - i;
		while (take < n - i && take > 1 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		if ((i && tw_buf_printf(out, err, "%s", fold)) || tw_buf_append(out, "=?UTF-8?B?", 10, err) ||
		    b64((const unsigned char *)s + i, take, out, err) || tw_buf_append(out, "?=", 2, err))
			return err->rc;
		i += take;
	}
	return TW_OK;
}

enum tw_rc tw_notify_qp_encode(const char *p, size_t n, int crlf, struct tw_buf *out, struct tw_err *err)
{
	const char *nl = crlf ? "\r\n" : "\n";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char tok[4];
		size_t tl;
		int eol;
		if (c == '\n' || (c == '\r' && i + 1 < n && p[i + 1] == '\n')) {
			if (c == '\r')
				i++;
			if (tw_buf_printf(out, err, "%s", nl))
				return err->rc;
			col = 0;
			continue;
		}
		eol = i + 1 == n || p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n');
		if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol)) {
			tok[0] = (char)c;
			tl = 1;
		} else {
			snprintf(tok, sizeof tok, "=%02X", c);
			tl = 3;
		}
		/* Lines of at most 76 characters: a soft break "=" once 75 would be passed. */
		if (col + tl > 75) {
			if (tw_buf_printf(out, err, "=%s", nl))
				return err->rc;
			col = 0;
		}
		if (tw_buf_append(out, tok, tl, err))
			return err->rc;
		col += tl;
	}
	return TW_OK;
}

/* Appends p[0..n) with every line break made CRLF (or LF). */
static enum tw_rc put_lines(const char *p, size_t n, int crlf, struct tw_buf *out, struct tw_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		if (p[i] == '\n') {
			if (tw_buf_append(out, crlf ? "\r\n" : "\n", crlf ? 2 : 1, err))
				return err->rc;
		} else if (tw_buf_putc(out, p[i], err)) {
			return err->rc;
		}
	}
	return TW_OK;
}

static void rfc5322_date(int64_t ms, char *out, size_t outsz)
{
	static const char *const wd[] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
	static const char *const mn[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int64_t days = ms / 86400000, rem = ms % 86400000, y;
	unsigned m, d;

	tw_civil_from_days(days, &y, &m, &d);
	snprintf(out, outsz, "%s, %02u %s %04lld %02d:%02d:%02d +0000", wd[days % 7], d, mn[m - 1], (long long)y,
		 (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60));
}

enum tw_rc tw_notify_mail_build(const struct tw_notify_m *m, const struct tw_notify_s *s, int crlf, struct tw_buf *out,
				struct tw_err *err)
{
	const struct tw_notify_smtp *sm = &s->c.smtp;
	const char *nl = crlf ? "\r\n" : "\n";
	const char *from = sm->from ? sm->from : "trailwatch@localhost";
	const char *dom = strchr(from, '@') + 1;
	const char *fold = crlf ? "\r\n " : "\n ";
	char date[64];

	/* From: "Display Name" <address>, the name quoted or encoded. */
	if (tw_buf_printf(out, err, "From: "))
		return err->rc;
	if (s->display_name && *s->display_name) {
		int plain = 1;
		for (const char *c = s->display_name; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				plain = 0;
		if (plain) {
			if (tw_buf_putc(out, '"', err))
				return err->rc;
			for (const char *c = s->display_name; *c; c++)
				if ((*c == '"' || *c == '\\') ? tw_buf_putc(out, '\\', err) || tw_buf_putc(out, *c, err)
							      : tw_buf_putc(out, *c, err))
					return err->rc;
			if (tw_buf_putc(out, '"', err))
				return err->rc;
		} else if (tw_notify_header_encode(s->display_name, fold, out, err)) {
			return err->rc;
		}
		if (tw_buf_printf(out, err, " <%s>%s", from, nl))
			return err->rc;
	} else if (tw_buf_printf(out, err, "%s%s", from, nl)) {
		return err->rc;
	}
	if (sm->nrecipients || s->c.proto != TW_NOTIFY_MAILDIR) {
		if (tw_buf_printf(out, err, "To: "))
			return err->rc;
		if (!sm->nrecipients && tw_buf_printf(out, err, "%s", s->c.endpoint))
			return err->rc;
		for (size_t i = 0; i < sm->nrecipients; i++)
			if (tw_buf_printf(out, err, "%s%s", i ? "," : "", sm->recipients[i]) ||
			    (i + 1 < sm->nrecipients && tw_buf_printf(out, err, "%s", fold)))
				return err->rc;
		if (tw_buf_printf(out, err, "%s", nl))
			return err->rc;
	}
	if (tw_buf_printf(out, err, "Subject: ") ||
	    tw_notify_header_encode(m->subject ? m->subject : "(no subject)", fold, out, err))
		return err->rc;
	rfc5322_date(m->ts, date, sizeof date);
	if (tw_buf_printf(out, err, "%sDate: %s%sMessage-ID: <%s@%s>%sMIME-Version: 1.0%s", nl, date, nl, m->id, dom, nl,
			  nl) ||
	    tw_buf_printf(out, err, "X-Trailwatch-Topic: %s%s", m->topic, nl))
		return err->rc;
	if (m->mime && s->c.proto != TW_NOTIFY_EMAIL_JSON)
		return put_lines(m->mime, strlen(m->mime), crlf, out, err);
	/* email-json too is text/plain, as SNS sends it: mail clients show it, scripts parse it. */
	if (tw_buf_printf(out, err, "Content-Type: text/plain; charset=UTF-8%sContent-Transfer-Encoding: quoted-printable%s%s",
			  nl, nl, nl))
		return err->rc;
	if (s->c.proto == TW_NOTIFY_EMAIL_JSON)
		return tw_notify_qp_encode(m->sns, m->nsns, crlf, out, err) || tw_buf_printf(out, err, "%s", nl) ? err->rc
														 : TW_OK;
	if (tw_notify_qp_encode(m->message, strlen(m->message), crlf, out, err))
		return err->rc;
	if (m->message[strlen(m->message) - 1] != '\n' && tw_buf_printf(out, err, "%s", nl))
		return err->rc;
	return TW_OK;
}

/* ---- SMTP ---------------------------------------------------------------------------------------- */

/* The upload's reading position. */
struct reader {
	const char *p; /* the mail */
	size_t n, off; /* its size and how much was sent */
};

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *ctx)
{
	struct reader *r = ctx;
	size_t k = size * nmemb;

	if (k > r->n - r->off)
		k = r->n - r->off;
	memcpy(dst, r->p + r->off, k);
	r->off += k;
	return k;
}

enum tw_notify_outcome tw_notify_smtp_deliver(struct tw_notify_attempt *a)
{
	const struct tw_notify_s *s = a->s;
	const struct tw_notify_smtp *sm = &s->c.smtp;
	struct tw_buf mail;
	struct tw_err err = { 0 };
	struct curl_slist *rcpt = NULL;
	struct reader rd;
	char ebuf[CURL_ERROR_SIZE] = "", from[300], pw[TW_SECRET_MAX];
	enum tw_notify_outcome out = TW_NOTIFY_TRANSIENT;
	long code = 0;
	CURLcode cc;
	CURL *c;

	tw_buf_init(&mail, (size_t)64 << 20);
	if (tw_notify_mail_build(a->m, s, 1, &mail, &err)) {
		snprintf(a->error, sizeof a->error, "building the mail: %.200s", err.msg);
		tw_buf_free(&mail);
		return TW_NOTIFY_PERMANENT;
	}
	c = curl_easy_init();
	if (!c) {
		snprintf(a->error, sizeof a->error, "libcurl: cannot start a transfer");
		tw_buf_free(&mail);
		return TW_NOTIFY_TRANSIENT;
	}
	for (size_t i = 0; i < (sm->nrecipients ? sm->nrecipients : 1); i++) {
		char r[300];
		struct curl_slist *nr;
		snprintf(r, sizeof r, "<%s>", sm->nrecipients ? sm->recipients[i] : s->c.endpoint);
		if (!(nr = curl_slist_append(rcpt, r))) {
			snprintf(a->error, sizeof a->error, "out of memory");
			goto done;
		}
		rcpt = nr;
	}
	snprintf(from, sizeof from, "<%s>", sm->from);
	rd.p = mail.p;
	rd.n = mail.n;
	rd.off = 0;
	curl_easy_setopt(c, CURLOPT_URL, sm->url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &rd);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)mail.n);
	tw_notify_curl_common(c, a, ebuf);
	if (!strncmp(sm->url, "smtps://", 8))
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	else if (sm->starttls == TW_NOTIFY_STARTTLS_REQUIRED)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	else if (sm->starttls == TW_NOTIFY_STARTTLS_OPPORTUNISTIC)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	if (sm->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, sm->ca_file);
	if (sm->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (sm->user) {
		if (tw_secret_load(&sm->password, pw, sizeof pw, NULL, &err)) {
			snprintf(a->error, sizeof a->error, "smtp password: %.200s", err.msg);
			goto done;
		}
		curl_easy_setopt(c, CURLOPT_USERNAME, sm->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, pw); /* libcurl keeps its own copy */
		explicit_bzero(pw, sizeof pw);
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_OK) {
		out = TW_NOTIFY_OK;
	} else if (cc == CURLE_ABORTED_BY_CALLBACK && *a->stop) {
		out = TW_NOTIFY_ABORTED;
	} else {
		/* 5xx replies are permanent (RFC 5321 4.2.1); a refused login too (535). */
		out = code >= 500 && code < 600 ? TW_NOTIFY_PERMANENT : TW_NOTIFY_TRANSIENT;
		if (code)
			snprintf(a->error, sizeof a->error, "%.100s: server replied %ld: %.120s", sm->url, code,
				 ebuf[0] ? ebuf : curl_easy_strerror(cc));
		else
			snprintf(a->error, sizeof a->error, "%.100s: %.140s", sm->url, ebuf[0] ? ebuf : curl_easy_strerror(cc));
	}
done:
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	tw_buf_free(&mail);
	return out;
}
