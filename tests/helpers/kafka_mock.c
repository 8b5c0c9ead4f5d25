/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/kafka_mock.c: the mock Kafka cluster, producer and readers of kafka_mock.h.
 * Everything runs on 127.0.0.1 inside the test process; librdkafka's logs are silenced. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/helpers/kafka_mock.h"

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	(void)level;
	(void)fac;
	(void)buf;
}

static void quiet_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
	(void)rk;
	(void)code;
	(void)reason;
	(void)opaque;
}

static rd_kafka_conf_t *conf_for(const char *brokers)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];
	if (brokers)
		cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr),
			     RD_KAFKA_CONF_OK, "%s", errstr);
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	rd_kafka_conf_set_error_cb(conf, quiet_error);
	return conf;
}

static void dr_fail(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	int *failed = rd_kafka_opaque(rk);
	(void)opaque;
	if (m->err)
		(*failed)++;
}

static int g_dr_failed; /* delivery failures of the test producer (one test per process) */

void tw_test_kafka_start(struct tw_test_kafka *tk, int nbrokers)
{
	char errstr[256];
	rd_kafka_conf_t *conf;

	memset(tk, 0, sizeof *tk);
	tk->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf_for(NULL), errstr, sizeof errstr);
	cr_assert_not_null(tk->host, "%s", errstr);
	tk->mc = rd_kafka_mock_cluster_new(tk->host, nbrokers);
	cr_assert_not_null(tk->mc, "mock cluster");
	snprintf(tk->brokers, sizeof tk->brokers, "%s", rd_kafka_mock_cluster_bootstraps(tk->mc));
	cr_assert(strncmp(tk->brokers, "127.0.0.1:", 10) == 0, "mock listens on %s", tk->brokers);
	conf = conf_for(tk->brokers);
	cr_assert_eq(rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr), RD_KAFKA_CONF_OK);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_fail);
	rd_kafka_conf_set_opaque(conf, &g_dr_failed);
	tk->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	cr_assert_not_null(tk->prod, "%s", errstr);
}

void tw_test_kafka_stop(struct tw_test_kafka *tk)
{
	if (tk->prod)
		rd_kafka_destroy(tk->prod);
	if (tk->mc)
		rd_kafka_mock_cluster_destroy(tk->mc);
	if (tk->host)
		rd_kafka_destroy(tk->host);
	memset(tk, 0, sizeof *tk);
}

void tw_test_kafka_topic(struct tw_test_kafka *tk, const char *topic, int npart)
{
	cr_assert_eq(rd_kafka_mock_topic_create(tk->mc, topic, npart, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
}

void tw_test_kafka_produce(struct tw_test_kafka *tk, const char *topic, int32_t partition, const void *p,
			   size_t n)
{
	rd_kafka_resp_err_t e;
	for (;;) {
		e = rd_kafka_producev(tk->prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)p, n),
				      RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(tk->prod, 50);
	}
	cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
}

void tw_test_kafka_flush(struct tw_test_kafka *tk)
{
	g_dr_failed = 0;
	cr_assert_eq(rd_kafka_flush(tk->prod, 8000), RD_KAFKA_RESP_ERR_NO_ERROR, "flush timed out");
	cr_assert_eq(g_dr_failed, 0, "%d deliveries failed", g_dr_failed);
}

static rd_kafka_t *consumer_for(struct tw_test_kafka *tk, const char *group)
{
	char errstr[256];
	rd_kafka_conf_t *conf = conf_for(tk->brokers);
	rd_kafka_t *rk;
	cr_assert_eq(rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
	cr_assert_eq(rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr),
		     RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
	cr_assert_not_null(rk, "%s", errstr);
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

static void copy_msg(struct tw_test_kmsg *k, const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *h = NULL;
	size_t i, len = 1;
	const char *name;
	const void *v;
	size_t vn;

	k->n = m->len;
	k->offset = m->offset;
	k->value = malloc(m->len + 1);
	cr_assert_not_null(k->value);
	if (m->len)
		memcpy(k->value, m->payload, m->len);
	k->value[m->len] = 0;
	if (rd_kafka_message_headers(m, &h))
		h = NULL;
	for (i = 0; h && !rd_kafka_header_get_all(h, i, &name, &v, &vn); i++)
		len += strlen(name) + vn + 2;
	k->headers = malloc(len);
	cr_assert_not_null(k->headers);
	k->headers[0] = 0;
	len = 0;
	for (i = 0; h && !rd_kafka_header_get_all(h, i, &name, &v, &vn); i++)
		len += (size_t)sprintf(k->headers + len, "%s=%.*s\n", name, (int)vn, (const char *)v);
}

void tw_test_kmsg_free(struct tw_test_kmsg *m)
{
	free(m->value);
	free(m->headers);
	memset(m, 0, sizeof *m);
}

size_t tw_test_kafka_read(struct tw_test_kafka *tk, const char *topic, int32_t partition,
			  struct tw_test_kmsg *out, size_t max, int timeout_ms)
{
	rd_kafka_t *rk = consumer_for(tk, "tw-test-reader");
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	size_t n = 0;
	int waited = 0;

	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
	cr_assert_eq(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(l);
	while (n < max && waited < timeout_ms) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		waited += 100;
		if (!m)
			continue;
		if (!m->err)
			copy_msg(&out[n++], m);
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return n;
}

int64_t tw_test_kafka_committed(struct tw_test_kafka *tk, const char *group, const char *topic, int32_t partition)
{
	rd_kafka_t *rk = consumer_for(tk, group);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t e;
	int64_t off;

	rd_kafka_topic_partition_list_add(l, topic, partition);
	e = rd_kafka_committed(rk, l, 5000);
	cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "committed: %s", rd_kafka_err2str(e));
	cr_assert_eq(l->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR, "committed: %s", rd_kafka_err2str(l->elems[0].err));
	off = l->elems[0].offset >= 0 ? l->elems[0].offset : -1;
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return off;
}

char *tw_test_kafka_header(const struct tw_test_kmsg *m, const char *name)
{
	size_t nl = strlen(name);
	const char *p = m->headers;

	while (p && *p) {
		const char *e = strchr(p, '\n');
		if (!e)
			break;
		if (!strncmp(p, name, nl) && p[nl] == '=')
			return strndup(p + nl + 1, (size_t)(e - p - nl - 1));
		p = e + 1;
	}
	return NULL;
}
