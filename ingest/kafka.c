/* SPDX-License-Identifier: Apache-2.0 */
/* ingest/kafka.c: the Kafka source (librdkafka high-level consumer). One poll = one batch:
 * consume, decode every message with tw_ingest_buffer, hand the events to the sink once, and
 * only then commit. Must not commit anything the sink has not accepted, and must not keep a
 * pointer into a message after rd_kafka_message_destroy (events are copied into our batch).
 *
 * Invariants:
 *  1. Between two calls of tw_ingest_kafka_poll the batch is empty: every batch is either
 *     delivered and committed, or abandoned and the consumer rewound (seek) to its first offsets.
 *  2. Offsets committed = for each partition of the batch, last consumed offset + 1, in one
 *     synchronous rd_kafka_commit per batch, after sink->on_batch returned TW_OK and the
 *     dead-letter producer confirmed every dead letter of the batch.
 *  3. Revoke (rebalance) during a poll: the rebalance callback runs inside rd_kafka_consumer_poll,
 *     i.e. inside our poll, so it finishes the current batch there (sink, DLT, commit) before the
 *     partitions are given up; if that fails, the batch is abandoned uncommitted (the new owner
 *     re-reads it from the group's committed offsets). Lost partitions (session timeout): the
 *     batch is abandoned without delivery, since a commit could no longer succeed.
 *  4. Assign (rebalance): partitions start at the group's committed offsets (librdkafka's
 *     default for RD_KAFKA_OFFSET_INVALID), else auto.offset.reset.
 *  5. Connection state: DOWN on RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN; UP again when a message
 *     arrives, a commit succeeds or a lag query answers. Each change is reported once.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "ingest/kafka.h"

#define DEF_MAX_EVENTS 4096
#define DEF_MAX_BYTES (16u * 1024 * 1024)
#define DEF_MAX_WAIT_MS 500
#define DLT_FLUSH_MS 10000
#define SEEK_MS 5000

/* A reject held until we know whether its message gave any event. */
struct held_reject {
	struct tw_reject rej; /* strings point into tw_kafka.rej_arena */
};

/* A message waiting for the dead-letter topic (sent after the sink accepted the batch). */
struct dead_letter {
	struct tw_str value;  /* payload copy (in dlt_arena) */
	struct tw_str key;    /* key copy (in dlt_arena); n == 0 when none */
	const char *topic;    /* source topic (in dlt_arena) */
	int32_t partition;    /* source partition */
	int64_t offset;       /* source offset */
	const char *reason;   /* first reject's reason (in dlt_arena) */
};

struct tw_kafka {
	rd_kafka_t *rk;              /* the consumer; NULL while half-built */
	rd_kafka_t *dlt;             /* dead-letter producer; NULL without a DLT */
	char *dlt_topic;             /* copy of opts->dlt_topic */
	char *name;                  /* "kafka/<group>", the batch's source name */
	size_t max_events;           /* batch limit: events */
	size_t max_bytes;            /* batch limit: payload bytes */
	int max_wait_ms;             /* batch limit: ms after the first message */
	void (*on_state)(void *, enum tw_kafka_state, const char *); /* opts->on_state */
	void (*on_log)(void *, int, const char *, const char *);     /* opts->on_log */
	void *ctx;                   /* opts->ctx */
	int down;                    /* 1 after a DOWN report, until the UP report */
	int fatal;                   /* a fatal client error was seen */
	char fatal_msg[200];         /* its text */
	struct tw_kafka_counters cnt; /* counters */
	uint64_t dlt_failed;         /* DLT delivery failures in the current flush */
	char dlt_errmsg[160];        /* the first failure's reason */

	/* The batch being built (empty between polls, invariant 1). */
	struct tw_batch batch;       /* events copied out of messages */
	rd_kafka_topic_partition_list_t *first; /* per partition: first offset of the batch */
	rd_kafka_topic_partition_list_t *next;  /* per partition: last offset + 1 */
	size_t nmsgs;                /* messages in the batch */
	struct tw_arena dlt_arena;   /* dead letters' bytes */
	struct dead_letter *dl;      /* dead letters of the batch */
	size_t ndl, capdl;           /* in use, allocated */

	/* Per message decoding. */
	struct tw_arena rej_arena;   /* held rejects' bytes, reset per message */
	struct held_reject *rj;      /* held rejects of the current message */
	size_t nrj, caprj;           /* in use, allocated */
	size_t msg_events;           /* events the current message gave */
	enum tw_rc copy_rc;          /* failure while copying into the batch */
	struct tw_err copy_err;      /* its message */

	/* Set during tw_ingest_kafka_poll for the rebalance callback (invariant 3). */
	struct tw_sink *sink;        /* the caller's sink; NULL outside poll */
	enum tw_rc rb_rc;            /* result of a batch finished by the rebalance callback */
	struct tw_err rb_err;        /* its message */
	int rb_done;                 /* the callback finished or abandoned the batch */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_state(struct tw_kafka *k, int down, const char *detail)
{
	if (k->down == down)
		return;
	k->down = down;
	if (k->on_state)
		k->on_state(k->ctx, down ? TW_KAFKA_DOWN : TW_KAFKA_UP, detail);
}

/* ---- librdkafka callbacks (error, log, commit: served from our thread except log) ----------- */

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
	struct tw_kafka *k = opaque;
	if (code == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, k->fatal_msg, sizeof k->fatal_msg);
		k->fatal = 1;
		return;
	}
	if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		set_state(k, 1, reason);
	if (k->on_log)
		k->on_log(k->ctx, 4, rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct tw_kafka *k = rd_kafka_opaque(rk);
	if (k && k->on_log)
		k->on_log(k->ctx, level, fac, buf);
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *offsets,
		      void *opaque)
{
	struct tw_kafka *k = opaque;
	(void)rk;
	(void)offsets;
	if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
		k->cnt.commits_acked++;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct tw_kafka *k = opaque;
	(void)rk;
	if (m->err) {
		if (!k->dlt_failed++)
			snprintf(k->dlt_errmsg, sizeof k->dlt_errmsg, "%s", rd_kafka_err2str(m->err));
	} else {
		k->cnt.dead_letters++;
	}
}

/* ---- the batch ------------------------------------------------------------------------------ */

static enum tw_rc lists_new(struct tw_kafka *k, struct tw_err *err)
{
	k->first = rd_kafka_topic_partition_list_new(4);
	k->next = rd_kafka_topic_partition_list_new(4);
	if (!k->first || !k->next)
		return tw_err_set(err, TW_ENOMEM, "kafka: out of memory");
	return TW_OK;
}

/* Forgets the batch (invariant 1): events, dead letters, offsets. */
static void batch_clear(struct tw_kafka *k)
{
	tw_batch_reset(&k->batch);
	tw_arena_reset(&k->dlt_arena);
	k->ndl = 0;
	k->nmsgs = 0;
	if (k->first)
		rd_kafka_topic_partition_list_destroy(k->first);
	if (k->next)
		rd_kafka_topic_partition_list_destroy(k->next);
	k->first = rd_kafka_topic_partition_list_new(4);
	k->next = rd_kafka_topic_partition_list_new(4);
}

/* Seeks every partition of the batch back to its first offset so the batch is consumed again. */
static void rewind_batch(struct tw_kafka *k)
{
	rd_kafka_error_t *e;
	if (k->rk && k->first && k->first->cnt) {
		e = rd_kafka_seek_partitions(k->rk, k->first, SEEK_MS);
		if (e)
			rd_kafka_error_destroy(e);
		/* Partitions no longer assigned report their own error in the list: nothing to do,
		 * their new owner starts from the committed offset. */
	}
	batch_clear(k);
}

/* Copies s into the batch arena; slices of src_raw are re-pointed into dst_raw. */
static enum tw_rc copy_str(struct tw_kafka *k, struct tw_str s, struct tw_str src_raw, const char *dst_raw,
			   struct tw_str *out)
{
	if (!s.p || !s.n) {
		*out = s;
		return TW_OK;
	}
	if (dst_raw && s.p >= src_raw.p && s.p + s.n <= src_raw.p + src_raw.n) {
		out->p = dst_raw + (s.p - src_raw.p);
		out->n = s.n;
		return TW_OK;
	}
	return tw_arena_dup(&k->batch.arena, s, out, &k->copy_err);
}

/* Inner sink of tw_ingest_buffer: copies the events into the batch of the poll. */
static enum tw_rc collect_batch(void *ctx, struct tw_batch *in, struct tw_err *err)
{
	struct tw_kafka *k = ctx;
	size_t i, j;
	(void)err;

	for (i = 0; i < in->n; i++) {
		const struct tw_event *src = &in->ev[i];
		struct tw_event *dst = tw_batch_push(&k->batch, &k->copy_err);
		struct tw_str raw;
		if (!dst)
			goto fail;
		*dst = *src;
		dst->resources = NULL;
		dst->nresources = 0;
		if (tw_arena_dup(&k->batch.arena, src->raw, &raw, &k->copy_err))
			goto fail_pop;
		dst->raw = raw;
		for (j = 0; j < TW_F__COUNT; j++)
			if (copy_str(k, src->f[j], src->raw, raw.p, &dst->f[j]))
				goto fail_pop;
		if (src->nresources) {
			dst->resources = tw_arena_alloc(&k->batch.arena, src->nresources * sizeof(struct tw_str),
							&k->copy_err);
			if (!dst->resources)
				goto fail_pop;
			for (j = 0; j < src->nresources; j++)
				if (copy_str(k, src->resources[j], src->raw, raw.p, &dst->resources[j]))
					goto fail_pop;
			dst->nresources = src->nresources;
		}
		k->msg_events++;
	}
	return TW_OK;
fail_pop:
	tw_batch_pop(&k->batch);
fail:
	k->copy_rc = k->copy_err.rc ? k->copy_err.rc : TW_ENOMEM;
	return k->copy_rc;
}

/* Inner sink of tw_ingest_buffer: holds rejects until the message is decoded. */
static enum tw_rc collect_reject(void *ctx, const struct tw_reject *rej, struct tw_err *err)
{
	struct tw_kafka *k = ctx;
	struct held_reject *h;
	struct tw_str s;
	(void)err;

	if (k->nrj == k->caprj) {
		size_t cap = k->caprj ? k->caprj * 2 : 8;
		struct held_reject *p = realloc(k->rj, cap * sizeof *p);
		if (!p)
			goto nomem;
		k->rj = p;
		k->caprj = cap;
	}
	h = &k->rj[k->nrj];
	h->rej = *rej;
	if (tw_arena_dup(&k->rej_arena, (struct tw_str){ rej->source, strlen(rej->source) + 1 }, &s, &k->copy_err))
		goto fail;
	h->rej.source = s.p;
	if (tw_arena_dup(&k->rej_arena, (struct tw_str){ rej->reason, strlen(rej->reason) + 1 }, &s, &k->copy_err))
		goto fail;
	h->rej.reason = s.p;
	if (tw_arena_dup(&k->rej_arena, rej->bytes, &h->rej.bytes, &k->copy_err))
		goto fail;
	k->nrj++;
	return TW_OK;
nomem:
	tw_err_set(&k->copy_err, TW_ENOMEM, "kafka: out of memory holding a reject");
fail:
	k->copy_rc = k->copy_err.rc ? k->copy_err.rc : TW_ENOMEM;
	return k->copy_rc;
}

static enum tw_rc hold_dead_letter(struct tw_kafka *k, const rd_kafka_message_t *m, const char *reason,
				   struct tw_err *err)
{
	struct dead_letter *d;
	const char *topic = rd_kafka_topic_name(m->rkt);
	struct tw_str s;

	if (k->ndl == k->capdl) {
		size_t cap = k->capdl ? k->capdl * 2 : 8;
		struct dead_letter *p = realloc(k->dl, cap * sizeof *p);
		if (!p)
			return tw_err_set(err, TW_ENOMEM, "kafka: out of memory holding a dead letter");
		k->dl = p;
		k->capdl = cap;
	}
	d = &k->dl[k->ndl];
	memset(d, 0, sizeof *d);
	if (tw_arena_dup(&k->dlt_arena, (struct tw_str){ m->payload, m->len }, &d->value, err) ||
	    tw_arena_dup(&k->dlt_arena, (struct tw_str){ m->key, m->key_len }, &d->key, err) ||
	    tw_arena_dup(&k->dlt_arena, (struct tw_str){ topic, strlen(topic) + 1 }, &s, err))
		return err->rc;
	d->topic = s.p;
	if (tw_arena_dup(&k->dlt_arena, (struct tw_str){ reason, strlen(reason) + 1 }, &s, err))
		return err->rc;
	d->reason = s.p;
	d->partition = m->partition;
	d->offset = m->offset;
	k->ndl++;
	return TW_OK;
}

/* Records the message's offset in the batch's offset lists. */
static enum tw_rc note_offset(struct tw_kafka *k, const rd_kafka_message_t *m, struct tw_err *err)
{
	const char *topic = rd_kafka_topic_name(m->rkt);
	rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(k->next, topic, m->partition);

	if (!p) {
		rd_kafka_topic_partition_t *f = rd_kafka_topic_partition_list_add(k->first, topic, m->partition);
		p = rd_kafka_topic_partition_list_add(k->next, topic, m->partition);
		if (!f || !p)
			return tw_err_set(err, TW_ENOMEM, "kafka: out of memory");
		f->offset = m->offset;
	}
	p->offset = m->offset + 1;
	return TW_OK;
}

/* Decodes one message into the batch (events), the sink (rejects) or the dead letters. */
static enum tw_rc take_message(struct tw_kafka *k, const rd_kafka_message_t *m, const struct tw_ingest_limits *lim,
			       struct tw_sink *sink, struct tw_ingest_stats *st, struct tw_err *err)
{
	struct tw_sink inner = { collect_batch, collect_reject, k };
	char source[400];
	const char *why = NULL;
	struct tw_err derr;
	enum tw_rc rc;
	size_t i;

	snprintf(source, sizeof source, "%s/%d@%lld", rd_kafka_topic_name(m->rkt), (int)m->partition,
		 (long long)m->offset);
	k->msg_events = 0;
	k->nrj = 0;
	k->copy_rc = TW_OK;
	tw_err_clear(&k->copy_err);
	tw_arena_reset(&k->rej_arena);
	rc = tw_ingest_buffer(source, m->payload ? m->payload : "", m->payload ? m->len : 0, lim, &inner, NULL, st,
			      &derr);
	if (k->copy_rc) {
		*err = k->copy_err;
		return k->copy_rc;
	}
	if (rc == TW_ENOMEM) {
		*err = derr;
		return rc;
	}
	if (rc)
		why = derr.msg; /* the blob as a whole could not be decoded */
	else if (k->msg_events == 0 && k->nrj)
		why = k->rj[0].rej.reason;
	if (why) {
		k->cnt.undecodable++;
		if (k->dlt) { /* its rejects never reach the sink: not quarantined */
			st->quarantined -= k->nrj;
			return hold_dead_letter(k, m, why, err);
		}
		if (rc && sink->on_reject) {
			struct tw_reject r = { source, 0, 0, (uint64_t)m->offset, why,
					       { m->payload, m->payload ? m->len : 0 } };
			st->quarantined++;
			if ((rc = sink->on_reject(sink->ctx, &r, err)))
				return rc;
		}
	}
	for (i = 0; i < k->nrj && sink->on_reject; i++) {
		k->rj[i].rej.offset = (uint64_t)m->offset;
		if ((rc = sink->on_reject(sink->ctx, &k->rj[i].rej, err))) {
			if (err->rc == TW_OK)
				tw_err_set(err, rc, "%s: sink refused a reject (%s)", source, tw_rc_str(rc));
			return rc;
		}
	}
	return TW_OK;
}

/* Produces the batch's dead letters and waits for their delivery. */
static enum tw_rc send_dead_letters(struct tw_kafka *k, struct tw_err *err)
{
	size_t i;
	char pbuf[16], obuf[24];

	if (!k->ndl)
		return TW_OK;
	k->dlt_failed = 0;
	for (i = 0; i < k->ndl; i++) {
		const struct dead_letter *d = &k->dl[i];
		rd_kafka_headers_t *h = rd_kafka_headers_new(4);
		rd_kafka_resp_err_t e;
		snprintf(pbuf, sizeof pbuf, "%d", (int)d->partition);
		snprintf(obuf, sizeof obuf, "%lld", (long long)d->offset);
		rd_kafka_header_add(h, "tw.topic", -1, d->topic, -1);
		rd_kafka_header_add(h, "tw.partition", -1, pbuf, -1);
		rd_kafka_header_add(h, "tw.offset", -1, obuf, -1);
		rd_kafka_header_add(h, "tw.reason", -1, d->reason, -1);
		e = rd_kafka_producev(k->dlt, RD_KAFKA_V_TOPIC(k->dlt_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_VALUE((void *)d->value.p, d->value.n),
				      RD_KAFKA_V_KEY(d->key.n ? (void *)d->key.p : NULL, d->key.n),
				      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
		if (e) {
			rd_kafka_headers_destroy(h);
			return tw_err_set(err, TW_EIO, "kafka: dead-letter topic %s: %s (message %s/%d@%lld)",
					  k->dlt_topic, rd_kafka_err2str(e), d->topic, (int)d->partition,
					  (long long)d->offset);
		}
	}
	if (rd_kafka_flush(k->dlt, DLT_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return tw_err_set(err, TW_EIO, "kafka: dead-letter topic %s: delivery not confirmed within %d ms",
				  k->dlt_topic, DLT_FLUSH_MS);
	if (k->dlt_failed)
		return tw_err_set(err, TW_EIO, "kafka: dead-letter topic %s: %llu deliveries failed: %s", k->dlt_topic,
				  (unsigned long long)k->dlt_failed, k->dlt_errmsg);
	return TW_OK;
}

/* Delivers the batch, sends its dead letters, commits (invariant 2). On failure, rewinds. */
static enum tw_rc finish_batch(struct tw_kafka *k, struct tw_sink *sink, struct tw_err *err)
{
	rd_kafka_resp_err_t e;
	enum tw_rc rc;

	if (!k->nmsgs)
		return TW_OK;
	if (k->batch.n) {
		k->batch.source = k->name;
		rc = sink->on_batch(sink->ctx, &k->batch, err);
		if (rc) {
			if (err->rc == TW_OK)
				tw_err_set(err, rc, "kafka: sink refused the batch (%s)", tw_rc_str(rc));
			rewind_batch(k);
			return rc;
		}
	}
	if ((rc = send_dead_letters(k, err))) {
		rewind_batch(k);
		return rc;
	}
	e = rd_kafka_commit(k->rk, k->next, 0);
	if (e) {
		tw_err_set(err, TW_EIO, "kafka: commit of %d partition(s) failed: %s", k->next->cnt, rd_kafka_err2str(e));
		rewind_batch(k);
		return TW_EIO;
	}
	k->cnt.commits++;
	k->cnt.batches++;
	set_state(k, 0, "commit succeeded");
	batch_clear(k);
	return TW_OK;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	struct tw_kafka *k = opaque;
	int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	rd_kafka_error_t *ee = NULL;

	if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (coop)
			ee = rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
	} else {
		/* Invariant 3: finish (or abandon) the batch before giving partitions up. */
		if (k->nmsgs && k->sink) {
			if (rd_kafka_assignment_lost(rk)) {
				batch_clear(k);
				k->rb_rc = TW_OK;
			} else {
				tw_err_clear(&k->rb_err);
				k->rb_rc = finish_batch(k, k->sink, &k->rb_err);
			}
			k->rb_done = 1;
		}
		if (coop)
			ee = rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
	}
	if (ee)
		rd_kafka_error_destroy(ee);
}

/* ---- public --------------------------------------------------------------------------------- */

static enum tw_rc conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, struct tw_err *err)
{
	char errstr[256];
	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
		return tw_err_set(err, TW_EINVAL, "kafka: property %s: %s", key, errstr);
	return TW_OK;
}

/* The configuration shared by the consumer and the DLT producer. */
static enum tw_rc conf_common(struct tw_kafka *k, const struct tw_kafka_opts *opts, rd_kafka_conf_t *conf,
			      struct tw_err *err)
{
	size_t i;
	if (conf_set(conf, "bootstrap.servers", opts->brokers, err) ||
	    conf_set(conf, "client.id", opts->client_id ? opts->client_id : "trailwatch", err))
		return err->rc;
	for (i = 0; i < opts->nprops; i++) {
		if (!opts->props[i].key || !opts->props[i].value)
			return tw_err_set(err, TW_EINVAL, "kafka: property %zu has no key or value", i);
		if (conf_set(conf, opts->props[i].key, opts->props[i].value, err))
			return err->rc;
	}
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	return TW_OK;
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static enum tw_rc open_dlt(struct tw_kafka *k, const struct tw_kafka_opts *opts, struct tw_err *err)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];

	if (!conf)
		return tw_err_set(err, TW_ENOMEM, "kafka: out of memory");
	if (conf_set(conf, "acks", "all", err) || conf_common(k, opts, conf, err)) {
		rd_kafka_conf_destroy(conf);
		return err->rc;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	k->dlt = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
	if (!k->dlt) {
		rd_kafka_conf_destroy(conf);
		return tw_err_set(err, TW_EIO, "kafka: dead-letter producer: %s", errstr);
	}
	return TW_OK;
}

static enum tw_rc start_consuming(struct tw_kafka *k, const struct tw_kafka_opts *opts, struct tw_err *err)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t e;
	size_t i;

	l = rd_kafka_topic_partition_list_new(opts->assign ? (int)opts->nassign : (int)opts->ntopics);
	if (!l)
		return tw_err_set(err, TW_ENOMEM, "kafka: out of memory");
	if (opts->assign) {
		for (i = 0; i < opts->nassign; i++)
			rd_kafka_topic_partition_list_add(l, opts->assign[i].topic, opts->assign[i].partition)->offset =
				opts->assign[i].offset;
		e = rd_kafka_assign(k->rk, l);
	} else {
		for (i = 0; i < opts->ntopics; i++)
			rd_kafka_topic_partition_list_add(l, opts->topics[i], RD_KAFKA_PARTITION_UA);
		e = rd_kafka_subscribe(k->rk, l);
	}
	rd_kafka_topic_partition_list_destroy(l);
	if (e)
		return tw_err_set(err, TW_EIO, "kafka: %s: %s", opts->assign ? "assign" : "subscribe",
				  rd_kafka_err2str(e));
	return TW_OK;
}

enum tw_rc tw_ingest_kafka_open(const struct tw_kafka_opts *opts, struct tw_kafka **out, struct tw_err *err)
{
	struct tw_kafka *k;
	rd_kafka_conf_t *conf = NULL;
	char errstr[512];
	size_t n;
	struct tw_err local;

	if (!err)
		err = &local;
	tw_err_clear(err);
	if (!opts || !out || !opts->brokers || !*opts->brokers || !opts->group_id || !*opts->group_id)
		return tw_err_set(err, TW_EINVAL, "kafka: brokers and group id are required");
	if (!opts->assign && (!opts->ntopics || !opts->topics))
		return tw_err_set(err, TW_EINVAL, "kafka: no topic to subscribe to and no partition to assign");
	if (opts->dlt_topic && !*opts->dlt_topic)
		return tw_err_set(err, TW_EINVAL, "kafka: empty dead-letter topic name");
	k = calloc(1, sizeof *k);
	if (!k)
		return tw_err_set(err, TW_ENOMEM, "kafka: out of memory");
	tw_batch_init(&k->batch);
	tw_arena_init(&k->dlt_arena, 64 * 1024, 0);
	tw_arena_init(&k->rej_arena, 16 * 1024, 0);
	k->max_events = opts->batch_max_events ? opts->batch_max_events : DEF_MAX_EVENTS;
	k->max_bytes = opts->batch_max_bytes ? opts->batch_max_bytes : DEF_MAX_BYTES;
	k->max_wait_ms = opts->batch_max_wait_ms > 0 ? opts->batch_max_wait_ms : DEF_MAX_WAIT_MS;
	k->on_state = opts->on_state;
	k->on_log = opts->on_log;
	k->ctx = opts->ctx;
	n = strlen(opts->group_id) + 7;
	if (!(k->name = malloc(n)))
		goto nomem;
	snprintf(k->name, n, "kafka/%s", opts->group_id);
	if (lists_new(k, err))
		goto fail;
	if (opts->dlt_topic) {
		if (!(k->dlt_topic = dupstr(opts->dlt_topic)))
			goto nomem;
		if (open_dlt(k, opts, err))
			goto fail;
	}
	if (!(conf = rd_kafka_conf_new()))
		goto nomem;
	if (conf_set(conf, "enable.auto.offset.store", "false", err) ||
	    conf_set(conf, "auto.offset.reset", "earliest", err) ||
	    conf_set(conf, "enable.partition.eof", "false", err) ||
	    /* librdkafka prefetches up to 64 MB by default; a batch never needs more than 16 MB and the
	     * daemon's memory must stay bounded (the user's properties, applied next, may override) */
	    conf_set(conf, "queued.max.messages.kbytes", "16384", err) || conf_common(k, opts, conf, err) ||
	    conf_set(conf, "group.id", opts->group_id, err) || conf_set(conf, "enable.auto.commit", "false", err))
		goto fail;
	rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
	if (!opts->assign)
		rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
	if (!k->rk) {
		tw_err_set(err, TW_EIO, "kafka: consumer: %s", errstr);
		goto fail;
	}
	conf = NULL; /* owned by k->rk now */
	rd_kafka_poll_set_consumer(k->rk);
	if (start_consuming(k, opts, err))
		goto fail;
	*out = k;
	return TW_OK;
nomem:
	tw_err_set(err, TW_ENOMEM, "kafka: out of memory");
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	tw_ingest_kafka_close(k);
	return err->rc;
}

enum tw_rc tw_ingest_kafka_poll(struct tw_kafka *k, const struct tw_ingest_limits *lim, struct tw_sink *sink,
				struct tw_ingest_stats *st, int timeout_ms, struct tw_err *err)
{
	struct tw_ingest_limits deflim;
	struct tw_err local;
	int64_t start, deadline;
	size_t bytes = 0;
	enum tw_rc rc = TW_OK;

	if (!err)
		err = &local;
	tw_err_clear(err);
	if (!k || !k->rk || !sink || !sink->on_batch || !st)
		return tw_err_set(err, TW_EINVAL, "kafka: poll: missing source, sink or stats");
	if (!k->first || !k->next)
		return tw_err_set(err, TW_ENOMEM, "kafka: out of memory");
	if (!lim) {
		tw_ingest_limits_default(&deflim);
		lim = &deflim;
	}
	if (timeout_ms < 0)
		timeout_ms = 0;
	start = now_ms();
	deadline = start + timeout_ms;
	k->sink = sink;
	k->rb_done = 0;
	for (;;) {
		int64_t left = deadline - now_ms();
		rd_kafka_message_t *m;

		if (k->fatal) {
			rc = tw_err_set(err, TW_EIO, "kafka: fatal error: %s", k->fatal_msg);
			rewind_batch(k);
			break;
		}
		m = rd_kafka_consumer_poll(k->rk, left > 0 ? (int)left : 0);
		if (k->rb_done) { /* a revoke finished or abandoned the batch (invariant 3) */
			if (m) { /* not part of the finished batch: re-read it next time */
				if (!m->err)
					rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
				rd_kafka_message_destroy(m);
			}
			rc = k->rb_rc;
			if (rc)
				*err = k->rb_err;
			break;
		}
		if (m && m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				k->cnt.consumer_errors++;
				if (k->on_log)
					k->on_log(k->ctx, 4, "CONSUME", rd_kafka_message_errstr(m));
			}
			rd_kafka_message_destroy(m);
			m = NULL;
		}
		if (m) {
			if (!k->nmsgs) {
				int64_t d = now_ms() + k->max_wait_ms;
				if (d < deadline)
					deadline = d;
			}
			set_state(k, 0, "message received");
			k->cnt.messages++;
			k->nmsgs++;
			bytes += m->len;
			rc = note_offset(k, m, err);
			if (rc == TW_OK)
				rc = take_message(k, m, lim, sink, st, err);
			rd_kafka_message_destroy(m); /* nothing points into it any more */
			if (rc) {
				rewind_batch(k);
				break;
			}
			if (k->batch.n >= k->max_events || bytes >= k->max_bytes) {
				rc = finish_batch(k, sink, err);
				break;
			}
		}
		if (now_ms() >= deadline) {
			rc = finish_batch(k, sink, err);
			break;
		}
	}
	k->sink = NULL;
	return rc;
}

enum tw_rc tw_ingest_kafka_lag(struct tw_kafka *k, struct tw_kafka_lag *out, size_t cap, size_t *n,
			       int timeout_ms, struct tw_err *err)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_resp_err_t e;
	enum tw_rc rc = TW_OK;
	struct tw_err local;
	int i;

	if (!err)
		err = &local;
	tw_err_clear(err);
	if (!k || !k->rk || !n || (cap && !out))
		return tw_err_set(err, TW_EINVAL, "kafka: lag: missing source or output");
	*n = 0;
	if ((e = rd_kafka_assignment(k->rk, &parts)))
		return tw_err_set(err, TW_EIO, "kafka: assignment: %s", rd_kafka_err2str(e));
	if (parts->cnt && (e = rd_kafka_committed(k->rk, parts, timeout_ms))) {
		rc = tw_err_set(err, TW_EIO, "kafka: committed offsets: %s", rd_kafka_err2str(e));
		goto out;
	}
	for (i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *p = &parts->elems[i];
		struct tw_kafka_lag *l;
		int64_t lo = 0, hi = 0;
		if (*n == cap) {
			rc = tw_err_set(err, TW_ELIMIT, "kafka: lag: %d partitions assigned, room for %zu", parts->cnt,
					cap);
			goto out;
		}
		e = rd_kafka_query_watermark_offsets(k->rk, p->topic, p->partition, &lo, &hi, timeout_ms);
		if (e) {
			rc = tw_err_set(err, TW_EIO, "kafka: watermarks of %s/%d: %s", p->topic, (int)p->partition,
					rd_kafka_err2str(e));
			goto out;
		}
		l = &out[(*n)++];
		snprintf(l->topic, sizeof l->topic, "%s", p->topic);
		l->partition = p->partition;
		l->committed = p->offset >= 0 ? p->offset : -1;
		l->high = hi;
		l->lag = l->committed >= 0 ? hi - l->committed : hi - lo;
		if (l->lag < 0)
			l->lag = 0;
	}
	/* With nothing assigned no broker was asked: librdkafka answers locally, so that says
	 * nothing about the cluster being reachable. */
	if (parts->cnt)
		set_state(k, 0, "lag query answered");
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

void tw_ingest_kafka_counters(const struct tw_kafka *k, struct tw_kafka_counters *out)
{
	if (!out)
		return;
	if (k)
		*out = k->cnt;
	else
		memset(out, 0, sizeof *out);
}

void tw_ingest_kafka_close(struct tw_kafka *k)
{
	if (!k)
		return;
	if (k->rk) {
		k->sink = NULL; /* a revoke during close has no batch to finish (invariant 1) */
		rd_kafka_consumer_close(k->rk);
		rd_kafka_destroy(k->rk);
	}
	if (k->dlt)
		rd_kafka_destroy(k->dlt);
	if (k->first)
		rd_kafka_topic_partition_list_destroy(k->first);
	if (k->next)
		rd_kafka_topic_partition_list_destroy(k->next);
	tw_batch_free(&k->batch);
	tw_arena_free(&k->dlt_arena);
	tw_arena_free(&k->rej_arena);
	free(k->dl);
	free(k->rj);
	free(k->dlt_topic);
	free(k->name);
	free(k);
}
