/* SPDX-License-Identifier: Apache-2.0 */
/* bench/kafka_cluster.c: hosts librdkafka's mock cluster (a Kafka-protocol broker on 127.0.0.1)
 * for the end-to-end Kafka benchmark and fills a topic with the lines of a JSON-lines file (gzip or
 * not), one event per message, round-robin over the partitions; then keeps the cluster up until
 * stdin reaches end of file. Built by `make bench`.
 *
 * The mock broker keeps only ~5 MB per partition (older message sets are deleted, as retention
 * would), so a 1.25 GB file cannot sit in a 4-partition topic at once. With --group G the producer
 * therefore stays at most --window bytes ahead of G's committed offset on each partition: the
 * consumer under test sets the pace, and nothing is deleted before it was read and committed.
 *
 *   build/bench/kafka_cluster [--topic T] [--partitions N] [--group G] [--window BYTES] FILE
 *   stdout: "brokers 127.0.0.1:PORT" at once, "produced N" once every message is acknowledged
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static void die(const char *what, const char *why)
{
	fprintf(stderr, "kafka_cluster: %s: %s\n", what, why);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Keeps the producer at most window bytes ahead of a group's committed offsets, per partition. */
struct pacer {
	rd_kafka_t *c;          /* a consumer handle of the group, only to ask committed offsets */
	const char *topic;      /* the topic */
	int npart;              /* its partitions */
	long long window;       /* bytes allowed between the committed offset and the last produced */
	long long *nmsg;        /* per partition: messages produced */
	long long **cum;        /* per partition: cum[p][i] = bytes of messages 0..i-1 */
	long long *cap;         /* per partition: room in cum[p] */
	long long *committed;   /* per partition: last committed offset seen */
};

static void pacer_init(struct pacer *pc, const char *brokers, const char *group, const char *topic, int npart,
		       long long window)
{
	char errstr[512];
	rd_kafka_conf_t *conf;

	memset(pc, 0, sizeof *pc);
	pc->topic = topic;
	pc->npart = npart;
	pc->window = window;
	if (!group)
		return;
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
		die("pacer", errstr);
	if (!(pc->c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr)))
		die("pacer", errstr);
	pc->nmsg = calloc((size_t)npart, sizeof *pc->nmsg);
	pc->cum = calloc((size_t)npart, sizeof *pc->cum);
	pc->cap = calloc((size_t)npart, sizeof *pc->cap);
	pc->committed = calloc((size_t)npart, sizeof *pc->committed);
	if (!pc->nmsg || !pc->cum || !pc->cap || !pc->committed)
		die("pacer", "out of memory");
}

static void pacer_refresh(struct pacer *pc)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(pc->npart);
	for (int p = 0; p < pc->npart; p++)
		rd_kafka_topic_partition_list_add(l, pc->topic, p);
	if (!rd_kafka_committed(pc->c, l, 5000))
		for (int i = 0; i < l->cnt; i++)
			if (l->elems[i].offset >= 0 && !l->elems[i].err)
				pc->committed[l->elems[i].partition] = l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
}

/* Waits until a message of n bytes may go to partition p, then accounts for it. */
static void pacer_wait(struct pacer *pc, rd_kafka_t *prod, int p, size_t n)
{
	long long i;

	if (!pc->c)
		return;
	i = pc->nmsg[p];
	if (i + 1 >= pc->cap[p]) {
		long long cap = pc->cap[p] ? 2 * pc->cap[p] : 1 << 16;
		long long *q = realloc(pc->cum[p], (size_t)cap * sizeof *q);
		if (!q)
			die("pacer", "out of memory");
		if (!pc->cap[p])
			q[0] = 0;
		pc->cum[p] = q;
		pc->cap[p] = cap;
	}
	pc->cum[p][i + 1] = pc->cum[p][i] + (long long)n;
	while (pc->cum[p][i + 1] - pc->cum[p][pc->committed[p] < i ? pc->committed[p] : i] > pc->window) {
		struct timespec ts = { 0, 1000000L };
		rd_kafka_poll(prod, 0);
		rd_kafka_flush(prod, 10); /* what is held back must reach the broker for the consumer */
		nanosleep(&ts, NULL);
		pacer_refresh(pc);
	}
	pc->nmsg[p]++;
}

static void pacer_free(struct pacer *pc)
{
	if (!pc->c)
		return;
	rd_kafka_destroy(pc->c);
	for (int p = 0; p < pc->npart; p++)
		free(pc->cum[p]);
	free(pc->cum);
	free(pc->nmsg);
	free(pc->cap);
	free(pc->committed);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "topic", required_argument, NULL, 't' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "group", required_argument, NULL, 'g' },
		{ "window", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *topic = "cloudtrail", *group = NULL;
	long long window = 3 << 20;
	struct pacer pc;
	int npart = 4, c;
	char errstr[512], *line = NULL;
	size_t cap = 1 << 20;
	long long produced = 0;
	rd_kafka_conf_t *conf;
	rd_kafka_t *host, *prod;
	rd_kafka_mock_cluster_t *mc;
	gzFile in;
	double t0;

	while ((c = getopt_long(argc, argv, "t:p:g:w:", opts, NULL)) != -1) {
		if (c == 't')
			topic = optarg;
		else if (c == 'p')
			npart = atoi(optarg);
		else if (c == 'g')
			group = optarg;
		else if (c == 'w')
			window = strtoll(optarg, NULL, 10);
		else
			return 2;
	}
	if (optind != argc - 1 || npart < 1 || npart > 1024) {
		fprintf(stderr, "usage: kafka_cluster [--topic T] [--partitions N] FILE\n");
		return 2;
	}
	if (!(in = gzopen(argv[optind], "rb")))
		die(argv[optind], "cannot open");
	gzbuffer(in, 1 << 20);

	/* the cluster lives inside a handle of its own; the producer is a second, ordinary client */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
		die("test.mock.num.brokers", errstr);
	if (!(host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr)))
		die("mock cluster", errstr);
	mc = rd_kafka_handle_mock_cluster(host);
	if (!mc)
		die("mock cluster", "not available in this librdkafka");
	if (rd_kafka_mock_topic_create(mc, topic, npart, 1))
		die(topic, "cannot create the topic");

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc), errstr,
			      sizeof errstr) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "linger.ms", "50", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", errstr, sizeof errstr) !=
		    RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "batch.size", "262144", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
		die("producer", errstr);
	if (!(prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr)))
		die("producer", errstr);

	if (!(line = malloc(cap)))
		die("memory", "out of memory");
	printf("brokers %s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	pacer_init(&pc, rd_kafka_mock_cluster_bootstraps(mc), group, topic, npart, window);
	t0 = now_s();
	while (gzgets(in, line, (int)cap)) {
		size_t n = strlen(line);
		rd_kafka_resp_err_t e;
		if (n && line[n - 1] == '\n')
			n--;
		if (!n)
			continue;
		pacer_wait(&pc, prod, (int)(produced % npart), n);
		for (;;) {
			e = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic),
					      RD_KAFKA_V_PARTITION((int32_t)(produced % npart)),
					      RD_KAFKA_V_VALUE(line, n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_END);
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			rd_kafka_poll(prod, 100);
		}
		if (e)
			die("produce", rd_kafka_err2str(e));
		produced++;
		if (produced % 10000 == 0)
			rd_kafka_poll(prod, 0);
	}
	gzclose(in);
	free(line);
	if (rd_kafka_flush(prod, 600 * 1000))
		die("flush", "messages still in flight after 10 minutes");
	fprintf(stderr, "kafka_cluster: produced %lld messages into %s (%d partitions) in %.1f s\n", produced, topic,
		npart, now_s() - t0);
	printf("produced %lld\n", produced);
	fflush(stdout);
	rd_kafka_destroy(prod);
	pacer_free(&pc);

	/* serve until whoever started us closes our stdin */
	while ((c = getchar()) != EOF)
		;
	rd_kafka_destroy(host);
	return 0;
}
