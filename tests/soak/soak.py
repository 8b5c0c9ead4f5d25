#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/soak/soak.py: the crash soak (`make soak`, not part of `make test`). `trailwatch run` consumes
# a topic of librdkafka's mock cluster (build/bench/kafka_cluster, fed with kcat) and a followed
# directory (files renamed in while it runs), evaluates an event rule and a metric alarm that mail
# an SMTP server on 127.0.0.1 (tests/tools/smtp_server.py), and is killed with SIGKILL SOAK_KILLS
# times at random moments: while starting or joining the group, at a random point of the stream,
# and by the run's hooks between a durable append and the acknowledgement (TRAILWATCH_TEST_KILL_
# AFTER_STORE=N: after the Nth append and its rules; TRAILWATCH_TEST_KILL_BEFORE_FEED=N: right after
# the append, before the metrics and the event rules see it). After
# a last run with --exit-at-end it checks, independently of trailwatch's own counters:
#   - every produced event id is in the store exactly once (query 'fields eventID'), the store's
#     record count equals the produced count, and `store verify` is clean;
#   - every StopLogging event raised exactly one rule mail, every planted AccessDenied burst raised
#     its alarm, and each notification the outbox published was delivered (one Message-ID at the
#     SMTP server) or dead-lettered with a reason; a Message-ID received twice is a redelivery (the
#     documented at-least-once window), two Message-IDs for one event or incident a duplicate.
# Prints a summary (kills, events, duplicates, lost, notifications, peak RSS); exits 1 on a failure.
#
#   /usr/bin/python3 tests/soak/soak.py build/trailwatch build/bench/kafka_cluster
#   SOAK_KILLS=100  SOAK_SEED=N  SOAK_KEEP=1 (keep the work directory)  SOAK_VERBOSE=1
import datetime, email, email.policy, json, os, random, re, resource, shutil, signal, subprocess
import sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
T0 = int(datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
ROUND_S = 120  # event time covered by one round's events
ACCOUNT = "123456789012"


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(eid, t, name="GetObject", source="s3.amazonaws.com", error=None, user="alice"):
    r = {"eventVersion": "1.08",
         "userIdentity": {"type": "IAMUser", "principalId": "AIDA" + user.upper(),
                          "arn": "arn:aws:iam::%s:user/%s" % (ACCOUNT, user), "accountId": ACCOUNT,
                          "userName": user},
         "eventTime": iso(t), "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
         "sourceIPAddress": "10.0.%d.%d" % (t % 7, t % 250), "userAgent": "soak",
         "requestParameters": {"bucketName": "soak-bucket"}, "responseElements": None,
         "eventID": eid, "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT}
    if error:
        r["errorCode"] = error
        r["errorMessage"] = "soak: denied"
    return json.dumps(r, separators=(",", ":"))


class Soak:
    def __init__(self, bin_, cluster):
        self.bin = os.path.abspath(bin_)
        self.cluster = os.path.abspath(cluster)
        self.kills = int(os.environ.get("SOAK_KILLS", "100"))
        self.seed = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
        self.rng = random.Random(self.seed)
        self.verbose = bool(os.environ.get("SOAK_VERBOSE"))
        self.tmp = tempfile.mkdtemp(prefix="tw-soak.")
        self.store = os.path.join(self.tmp, "store")
        self.follow = os.path.join(self.tmp, "follow")
        self.mail = os.path.join(self.tmp, "mail")
        os.makedirs(self.follow)
        os.makedirs(self.mail)
        self.produced = set()       # every event id produced
        self.stoplogging = set()    # event ids of StopLogging records (the rule's matches)
        self.incidents = []         # minute start (epoch s) of each planted AccessDenied burst
        self.peak_rss_kb = 0        # largest ru_maxrss of a trailwatch run
        self.modes = {"startup": 0, "stream": 0, "hook": 0, "hook-missed": 0, "exited": 0}
        self.procs = []

    # ---- helpers ------------------------------------------------------------------------------
    def start_helper(self, argv, ready):
        """Starts a helper whose stdin we hold; returns (proc, first stdout line matching ready)."""
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=open(os.path.join(self.tmp, os.path.basename(argv[1 if argv[0].endswith("python3") else 0]) + ".err"), "w"))
        self.procs.append(p)
        line = p.stdout.readline().decode().strip()
        if not re.match(ready, line):
            raise SystemExit("soak: %s did not start (said %r)" % (argv[0], line))
        return p, line

    def records(self):
        r = subprocess.run([self.bin, "store", "stats", "--format", "json", self.store],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if r.returncode:
            return 0
        try:
            return json.loads(r.stdout)["records"]
        except (ValueError, KeyError):
            return 0

    def produce(self, k):
        """Round k's events: some to Kafka (kcat), some into a followed file."""
        base = T0 + k * ROUND_S
        nk = self.rng.randint(40, 160)
        nf = self.rng.randint(0, 60) if k % 2 == 0 else 0
        kl, fl = [], []
        for i in range(nk):
            eid = "soak-%d-k%d" % (k, i)
            kl.append(record(eid, base + i * 100 // nk))
            self.produced.add(eid)
        for i in range(nf):
            eid = "soak-%d-f%d" % (k, i)
            fl.append(record(eid, base + i * 100 // max(nf, 1), name="ListBuckets"))
            self.produced.add(eid)
        if k % 3 == 1:  # the event rule's match: CloudTrail switched off
            eid = "soak-%d-stop" % k
            line = record(eid, base + 30, name="StopLogging", source="cloudtrail.amazonaws.com", user="mallory")
            (kl if k % 2 else fl).append(line)
            self.produced.add(eid)
            self.stoplogging.add(eid)
        if k % 5 == 3:  # an incident: 8 AccessDenied in the round's second minute (alarm at >= 5)
            minute = base + 60
            self.incidents.append(minute)
            for i in range(8):
                eid = "soak-%d-deny%d" % (k, i)
                line = record(eid, minute + 5 * i, name="GetSecretValue", source="secretsmanager.amazonaws.com",
                              error="AccessDenied", user="eve")
                (kl if i % 2 else fl).append(line)
                self.produced.add(eid)
        if kl:
            r = subprocess.run(["kcat", "-P", "-b", self.brokers, "-t", "cloudtrail"],
                               input=("\n".join(kl) + "\n").encode(), stderr=subprocess.PIPE)
            if r.returncode:
                raise SystemExit("soak: kcat failed: %s" % r.stderr.decode(errors="replace"))
        if fl:
            tmp = os.path.join(self.follow, ".r%03d.tmp" % k)
            with open(tmp, "w") as f:
                f.write("\n".join(fl) + "\n")
            os.rename(tmp, os.path.join(self.follow, "r%03d.jsonl" % k))

    def spawn(self, extra=(), env=None):
        e = dict(os.environ)
        e.pop("TRAILWATCH_TEST_KILL_AFTER_STORE", None)
        e.pop("TRAILWATCH_TEST_KILL_BEFORE_FEED", None)
        if env:
            e.update(env)
        return subprocess.Popen([self.bin, "run", "--config", self.config, "--status-interval", "3600"] + list(extra),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(self.tmp, "run.err"), "a"), env=e)

    def reap(self, p, block=True):
        """Reaps a trailwatch run with its rusage (peak RSS); None while it runs (block=False)."""
        if p.returncode is not None:
            return p.returncode
        pid, status, ru = os.wait4(p.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return None
        p.returncode = status  # raw wait status; Popen never waits for it again
        self.peak_rss_kb = max(self.peak_rss_kb, ru.ru_maxrss)
        return status

    # ---- the soak -----------------------------------------------------------------------------
    def setup(self):
        self.smtp, line = self.start_helper(["/usr/bin/python3", os.path.join(SRC, "tests/tools/smtp_server.py"),
                                             "--out", self.mail], r"^\d+$")
        self.smtp_port = int(line)
        empty = os.path.join(self.tmp, "empty.jsonl")
        open(empty, "w").close()
        self.kc, line = self.start_helper([self.cluster, "--topic", "cloudtrail", "--partitions", "2", empty],
                                          r"^brokers ")
        self.brokers = line.split()[1]
        cfg = {
            "store": {"dir": self.store, "seal_size": "256K", "seal_age": "3s"},
            "sources": [
                {"type": "kafka", "kafka": {
                    "brokers": self.brokers, "group": "soak", "topics": ["cloudtrail"],
                    "batch_max_events": 50, "batch_max_wait": "100ms",
                    "properties": {"session.timeout.ms": "4000", "heartbeat.interval.ms": "500"}}},
                {"type": "follow", "follow": {"path": self.follow, "rescan": "200ms"}},
            ],
            "log": {"file": os.path.join(self.tmp, "run.log")},
            "metrics": {"period": "1m", "lateness": "40m", "filters": [
                {"name": "denied", "pattern": "{ $.errorCode = \"AccessDenied\" }"}]},
            "rules": [{"name": "trail-stopped", "pattern": "{ $.eventName = StopLogging }", "topic": "alarms"}],
            "alarms": [{"name": "denied-burst", "metric": "denied", "period": "1m", "threshold": 5,
                        "treat_missing_data": "notBreaching", "alarm_actions": ["alarms"]}],
            "notifier": {
                "group_wait": "0s", "group_interval": "1m", "repeat_interval": "0s",
                "topics": [{"name": "alarms"}],
                "subscriptions": [{
                    "name": "mail", "topic": "alarms", "protocol": "email", "endpoint": "soc@example.com",
                    "smtp": {"url": "smtp://127.0.0.1:%d" % self.smtp_port, "from": "trailwatch@localhost",
                             "starttls": "none"},
                    "connect_timeout": "2s", "timeout": "5s",
                    "retry": {"num_retries": 3, "num_no_delay": 3}}]},
        }
        self.config = os.path.join(self.tmp, "config.json")
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)
        os.chmod(self.config, 0o600)
        r = subprocess.run([self.bin, "config", "check", self.config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode not in (0, 1):
            raise SystemExit("soak: config check: %s" % r.stdout.decode(errors="replace"))

    def round(self, k):
        self.produce(k)
        before = self.records()
        x = self.rng.random()
        if x < 0.2:  # the store -> acknowledgement window, by the run's own hooks
            n = self.rng.randint(1, 4)
            # after the append and its rules/metrics, or right after the append, before them
            hook = "TRAILWATCH_TEST_KILL_AFTER_STORE" if self.rng.random() < 0.5 else "TRAILWATCH_TEST_KILL_BEFORE_FEED"
            self.modes[hook] = self.modes.get(hook, 0) + 1
            p = self.spawn(env={hook: str(n)})
            end = time.monotonic() + 15
            while time.monotonic() < end and self.reap(p, False) is None:
                time.sleep(0.05)
            mode = "hook"
            if p.returncode is None:
                mode = "hook-missed"  # fewer than n batches to take: killed from outside instead
        elif x < 0.45:  # while starting: opening the store, refeeding metrics, joining the group
            p = self.spawn()
            time.sleep(self.rng.uniform(0, 3.0))
            mode = "startup"
        else:  # at a random point of the stream
            total = len(self.produced)
            target = before + max(1, int(self.rng.random() * (total - before)))
            p = self.spawn()
            end = time.monotonic() + 15
            while time.monotonic() < end and self.reap(p, False) is None and self.records() < target:
                time.sleep(0.05)
            time.sleep(self.rng.uniform(0, 0.3))
            mode = "stream"
        if p.returncode is None:
            os.kill(p.pid, signal.SIGKILL)
        status = self.reap(p)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if not killed:
            mode = "exited"
            log("soak: round %d: the run exited by itself (status %d): see %s/run.log" % (k, status, self.tmp))
        self.modes[mode] += 1
        if self.verbose:
            log("round %3d: %-11s store %d -> %d of %d produced" % (k, mode, before, self.records(), len(self.produced)))
        return killed

    def final(self):
        p = self.spawn(["--exit-at-end"])
        end = time.monotonic() + 300
        while time.monotonic() < end and self.reap(p, False) is None:
            time.sleep(0.2)
        if self.reap(p, False) is None:
            p.kill()
            raise SystemExit("soak: the last run did not end within 300 s (see %s/run.log)" % self.tmp)
        return p.returncode

    # ---- checks -------------------------------------------------------------------------------
    def check_events(self):
        r = subprocess.run([self.bin, "query", "--store", self.store, "--format", "json", "fields eventID"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode:
            raise SystemExit("soak: query failed: %s" % r.stderr.decode(errors="replace"))
        seen = {}
        for line in r.stdout.decode().splitlines():
            eid = json.loads(line).get("eventID")
            seen[eid] = seen.get(eid, 0) + 1
        dups = sum(n - 1 for n in seen.values() if n > 1)
        lost = sorted(self.produced - set(seen))
        extra = sorted(set(seen) - self.produced)
        verify = subprocess.run([self.bin, "store", "verify", self.store], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        return {"checked": len(seen), "dups": dups, "lost": lost, "extra": extra, "records": self.records(),
                "verify": verify.returncode, "verify_out": verify.stdout.decode(errors="replace")}

    def check_mail(self):
        mails = []
        for name in sorted(os.listdir(self.mail)):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(self.mail, name), "rb") as f:
                m = email.message_from_binary_file(f, policy=email.policy.default)
            body = m.get_body(preferencelist=("plain",))
            mails.append({"id": m["Message-ID"], "subject": str(m["Subject"]),
                          "text": body.get_content() if body else ""})
        by_id = {}
        for m in mails:
            by_id.setdefault(m["id"], []).append(m)
        redelivered = sum(len(v) - 1 for v in by_id.values())
        uniq = [v[0] for v in by_id.values()]
        rule_mails, alarm_mails, other = {}, [], []
        for m in uniq:
            if m["subject"].startswith("RULE:"):
                ids = re.findall(r"event id\s+(\S+)", m["text"])
                rule_mails.setdefault(ids[0] if ids else "?", []).append(m["id"])
            elif "denied-burst" in m["subject"]:
                alarm_mails.append(m)
            else:
                other.append(m)
        # the outbox's own account and the dead letters
        st = subprocess.run([self.bin, "notify", "status", "--state", os.path.join(self.store, "notify")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        status = {}
        for key, pat in (("published", r"^published\s+(\d+)"), ("delivered", r"^delivered\s+(\d+)"),
                         ("dead", r"^dead-lettered\s+(\d+)"), ("pending", r"^pending\s+(\d+)")):
            mt = re.search(pat, st.stdout.decode(errors="replace"), re.M)
            if mt:
                status[key] = int(mt.group(1))
        dead, dead_noreason = [], 0
        dpath = os.path.join(self.store, "notify", "dead-letters.jsonl")
        if os.path.exists(dpath):
            for line in open(dpath):
                d = json.loads(line)
                dead.append(d)
                if not (d.get("error") or d.get("reason")):
                    dead_noreason += 1
        return {"mails": len(mails), "unique": len(uniq), "redelivered": redelivered, "rule": rule_mails,
                "alarm": alarm_mails, "other": other, "status": status, "dead": dead,
                "dead_noreason": dead_noreason}

    def alarm_history(self):
        r = subprocess.run([self.bin, "alarms", "history", "--store", self.store, "--format", "json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = []
        for line in r.stdout.decode().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def run(self):
        t0 = time.monotonic()
        self.setup()
        log("soak: %d kills, seed %d, work dir %s" % (self.kills, self.seed, self.tmp))
        for k in range(self.kills):
            self.round(k)
            if not self.verbose and (k + 1) % 10 == 0:
                log("soak: %d/%d kills, %d events produced, %.0f s" % (k + 1, self.kills, len(self.produced),
                                                                      time.monotonic() - t0))
        kill_s = time.monotonic() - t0
        verify_mid = subprocess.run([self.bin, "store", "verify", self.store], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
        rc = self.final()
        ev = self.check_events()
        ml = self.check_mail()
        fails = []
        if verify_mid.returncode:
            fails.append("store verify after the kills (before any clean run): %s" % verify_mid.stdout.decode()[-400:])
        if rc:
            fails.append("the last run (--exit-at-end) exited %d" % rc)
        if ev["dups"] or ev["lost"] or ev["extra"] or ev["records"] != len(self.produced):
            fails.append("events: %d duplicates, %d lost (%s), %d unknown, store records %d != produced %d" %
                         (ev["dups"], len(ev["lost"]), " ".join(ev["lost"][:10]), len(ev["extra"]), ev["records"],
                          len(self.produced)))
        if ev["verify"]:
            fails.append("store verify: %s" % ev["verify_out"][-400:])
        dead_ids = {d.get("message_id") or d.get("id") for d in ml["dead"]}
        rule_lost = sorted(e for e in self.stoplogging if e not in ml["rule"])
        rule_dup = sorted(e for e, v in ml["rule"].items() if len(v) > 1)
        if rule_lost:
            fails.append("rule notifications missing for %d StopLogging events: %s" % (len(rule_lost), " ".join(rule_lost[:10])))
        if rule_dup:
            fails.append("rule notifications sent as distinct messages twice: %s" % " ".join(rule_dup[:10]))
        alarm_times = []
        for m in ml["alarm"]:
            alarm_times.append(m["subject"])
        st = ml["status"]
        published = st.get("published")
        delivered = st.get("delivered")
        deadn = st.get("dead")
        pending = st.get("pending")
        if published is not None and published != ml["unique"] + len(ml["dead"]):
            fails.append("outbox published %s messages, SMTP server got %d distinct Message-IDs and %d are dead" %
                         (published, ml["unique"], len(ml["dead"])))
        if pending:
            fails.append("%s deliveries still pending in the outbox" % pending)
        if ml["dead_noreason"]:
            fails.append("%d dead letters without a reason" % ml["dead_noreason"])
        if len(ml["alarm"]) != len(self.incidents):
            fails.append("denied-burst: %d alarm mails for %d planted incidents" % (len(ml["alarm"]), len(self.incidents)))

        total_s = time.monotonic() - t0
        log("")
        log("soak summary (seed %d, %.0f s, %.0f s of them killing):" % (self.seed, total_s, kill_s))
        log("  kills              %d (%d while starting, %d mid-stream, %d by the hooks in the store->ack window "
            "(%d rounds after the append's rules, %d right after the append), %d hook rounds killed from outside; "
            "%d runs exited by themselves)" %
            (sum(self.modes[m] for m in ("startup", "stream", "hook", "hook-missed")), self.modes["startup"],
             self.modes["stream"], self.modes["hook"], self.modes.get("TRAILWATCH_TEST_KILL_AFTER_STORE", 0),
             self.modes.get("TRAILWATCH_TEST_KILL_BEFORE_FEED", 0), self.modes["hook-missed"], self.modes["exited"]))
        log("  events             %d produced (Kafka + followed files), %d distinct in the store, "
            "%d records; %d duplicates, %d lost" % (len(self.produced), ev["checked"], ev["records"], ev["dups"],
                                                   len(ev["lost"])))
        log("  store verify       %s after the kills, %s at the end" % ("clean" if not verify_mid.returncode else "PROBLEMS",
                                                                      "clean" if not ev["verify"] else "PROBLEMS"))
        log("  rule mails         %d StopLogging events, %d with a mail, %d missing, %d sent twice as distinct messages" %
            (len(self.stoplogging), len(set(ml["rule"]) & self.stoplogging), len(rule_lost), len(rule_dup)))
        log("  alarm mails        %d planted AccessDenied bursts, %d denied-burst mails; %d other mails" %
            (len(self.incidents), len(ml["alarm"]), len(ml["other"])))
        log("  notifications      outbox published %s, delivered %s, dead %s, pending %s; SMTP server: %d mails, "
            "%d distinct Message-IDs, %d redeliveries of a Message-ID (at-least-once window)" %
            (published, delivered, deadn, pending, ml["mails"], ml["unique"], ml["redelivered"]))
        log("  peak RSS           %.1f MB (largest trailwatch run)" % (self.peak_rss_kb / 1024))
        for f in fails:
            log("FAIL: " + f)
        if not fails:
            log("soak: OK")
        return 1 if fails else 0

    def cleanup(self):
        for p in self.procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if os.environ.get("SOAK_KEEP"):
            log("soak: kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: soak.py TRAILWATCH KAFKA_CLUSTER\n")
        return 2
    s = Soak(sys.argv[1], sys.argv[2])
    try:
        rc = s.run()
    finally:
        s.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
