/* SPDX-License-Identifier: Apache-2.0 */
/* alerts/notify_http.c: http/https delivery: a POST of the SNS JSON notification with SNS's
 * headers (x-amz-sns-message-type, -message-id, -topic-arn, -subscription-arn) and ours
 * (x-trailwatch-attempt), through libcurl. 2xx is delivered; 408, 429, 5xx, connection errors
 * and timeouts are transient; other statuses (3xx are not followed, 4xx) are permanent.
 * TLS certificates are verified unless the subscription says insecure. */
#include "alerts/notify_int.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t discard_cb(char *p, size_t size, size_t nmemb, void *ctx)
{
	size_t *seen = ctx;

	(void)p;
	*seen += size * nmemb;
	/* A peer streaming an endless answer is cut off (the status line is already known). */
	return *seen > (1u << 20) ? 0 : size * nmemb;
}

/* Appends "name: value" ("name:" alone when value is NULL: libcurl then sends no such header). */
static struct curl_slist *add(struct curl_slist *l, int *bad, const char *name, const char *v)
{
	char h[1024];
	struct curl_slist *nl;

	if (*bad)
		return l;
	if (v)
		snprintf(h, sizeof h, "%s: %s", name, v);
	else
		snprintf(h, sizeof h, "%s", name);
	nl = curl_slist_append(l, h);
	if (!nl) {
		*bad = 1;
		return l;
	}
	return nl;
}

enum tw_notify_outcome tw_notify_http_deliver(struct tw_notify_attempt *a)
{
	const struct tw_notify_s *s = a->s;
	const struct tw_notify_http *h = &s->c.http;
	struct curl_slist *hl = NULL;
	char ebuf[CURL_ERROR_SIZE] = "", arn[600], num[32];
	size_t seen = 0;
	long code = 0;
	int bad = 0;
	enum tw_notify_outcome out;
	CURLcode cc;
	CURL *c = curl_easy_init();

	if (!c) {
		snprintf(a->error, sizeof a->error, "libcurl: cannot start a transfer");
		return TW_NOTIFY_TRANSIENT;
	}
	snprintf(arn, sizeof arn, "%s%s", TW_NOTIFY_ARN_PREFIX, a->m->topic);
	snprintf(num, sizeof num, "%u", a->attempt);
	hl = add(hl, &bad, "Content-Type", "text/plain; charset=UTF-8");
	hl = add(hl, &bad, "x-amz-sns-message-type", "Notification");
	hl = add(hl, &bad, "x-amz-sns-message-id", a->m->id);
	hl = add(hl, &bad, "x-amz-sns-topic-arn", arn);
	snprintf(arn + strlen(arn), sizeof arn - strlen(arn), ":%s", s->name);
	hl = add(hl, &bad, "x-amz-sns-subscription-arn", arn);
	hl = add(hl, &bad, "x-trailwatch-attempt", num);
	hl = add(hl, &bad, "User-Agent", "trailwatch-notifier/1");
	hl = add(hl, &bad, "Expect:", NULL); /* no 100-continue round trip */
	for (size_t i = 0; i < h->nheaders; i++)
		hl = add(hl, &bad, h->headers[i], NULL);
	if (bad) {
		snprintf(a->error, sizeof a->error, "out of memory");
		curl_slist_free_all(hl);
		curl_easy_cleanup(c);
		return TW_NOTIFY_TRANSIENT;
	}
	curl_easy_setopt(c, CURLOPT_URL, s->c.endpoint);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->m->sns);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->m->nsns);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &seen);
	tw_notify_curl_common(c, a, ebuf);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, s->c.proto == TW_NOTIFY_HTTP ? "http" : "https");
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (h->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_ABORTED_BY_CALLBACK && *a->stop) {
		out = TW_NOTIFY_ABORTED;
	} else if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && code)) {
		out = TW_NOTIFY_TRANSIENT;
		snprintf(a->error, sizeof a->error, "%.120s: %.120s", s->c.endpoint, ebuf[0] ? ebuf : curl_easy_strerror(cc));
	} else if (code >= 200 && code < 300) {
		out = TW_NOTIFY_OK;
	} else {
		out = code == 408 || code == 429 || code >= 500 ? TW_NOTIFY_TRANSIENT : TW_NOTIFY_PERMANENT;
		snprintf(a->error, sizeof a->error, "%.200s: HTTP status %ld", s->c.endpoint, code);
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	return out;
}
