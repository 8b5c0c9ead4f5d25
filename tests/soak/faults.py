#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/soak/faults.py: the fault runs of `make soak` that need more than a unit test.
#   1. Disk full: the store on an 8 MB tmpfs (mount needs root: skipped otherwise). `trailwatch run`
#      follows a directory of 40 files (20,000 records, ~11 MB of WAL) and must stop with a clear
#      error (exit 3, "No space left on device" naming the file); every file its checkpoint
#      acknowledged must be whole in the store; after the filesystem grows (remount, as if space
#      were freed) a restart ingests the rest: every record exactly once, `store verify` clean.
#   2. A hanging SMTP endpoint: the same ingest (a rule matching 1 record in 20, each published to
#      an SMTP subscription) once with the SMTP test server and once with an endpoint that accepts
#      and never answers: the time to store everything must be about the same (delivery runs on
#      the notifier's threads; publishing only writes the outbox).
#   /usr/bin/python3 tests/soak/faults.py build/trailwatch
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def record(eid, minute, sec, name="GetObject"):
    return json.dumps({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/u%d" % (minute % 17),
                         "userName": "u%d" % (minute % 17)},
        "eventTime": "2026-02-%02dT%02d:%02d:%02dZ" % (1 + minute // 1440, minute // 60 % 24, minute % 60, sec),
        "eventSource": "s3.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": "10.1.%d.%d" % (sec, minute % 250), "userAgent": "faults/%d" % eid,
        "requestParameters": {"bucketName": "b%d" % (eid % 97), "key": "k/%08x" % (eid * 2654435761 % 2**32)},
        "eventID": "f-%d" % eid, "recipientAccountId": "123456789012"}, separators=(",", ":"))


def write_files(d, nfiles, per, rule_every=0):
    os.makedirs(d, exist_ok=True)
    eid = 0
    for f in range(nfiles):
        lines = []
        for i in range(per):
            minute, sec = eid // 30, eid % 30
            name = "StopLogging" if rule_every and eid % rule_every == 0 else "GetObject"
            lines.append(record(eid, minute, sec, name))
            eid += 1
        with open(os.path.join(d, ".tmp"), "w") as fh:
            fh.write("\n".join(lines) + "\n")
        os.rename(os.path.join(d, ".tmp"), os.path.join(d, "f%03d.jsonl" % f))
    return eid


def tw(bin_, *args):
    return subprocess.run([bin_] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def records(bin_, store):
    r = tw(bin_, "store", "stats", "--format", "json", store)
    try:
        return json.loads(r.stdout)["records"] if r.returncode == 0 else 0
    except ValueError:
        return 0


def event_ids(bin_, store):
    r = tw(bin_, "query", "--store", store, "--format", "json", "fields eventID")
    ids = {}
    for line in r.stdout.decode().splitlines():
        e = json.loads(line)["eventID"]
        ids[e] = ids.get(e, 0) + 1
    return ids, r.returncode


def disk_full(bin_, tmp):
    if os.geteuid() != 0:
        log("faults: disk full: SKIPPED (mounting a tmpfs needs root)")
        return None
    mnt = os.path.join(tmp, "small")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mnt], stderr=subprocess.PIPE)
    if r.returncode:
        log("faults: disk full: SKIPPED (mount refused: %s)" % r.stderr.decode().strip())
        return None
    fails = []
    try:
        store = os.path.join(mnt, "store")
        follow = os.path.join(tmp, "in")
        n = write_files(follow, 40, 500)
        cfg = os.path.join(tmp, "full.json")
        with open(cfg, "w") as f:
            json.dump({"store": {"dir": store}, "sources": [{"type": "follow", "follow": {"path": follow, "rescan": "200ms"}}],
                       "log": {"file": os.path.join(tmp, "full.log")}}, f)
        t0 = time.monotonic()
        p = subprocess.run([bin_, "run", "--config", cfg, "--exit-at-end"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        logtext = open(os.path.join(tmp, "full.log")).read()
        errline = next((l for l in logtext.splitlines() if "No space left" in l and ": error: " in l), "")
        if p.returncode != 3:
            fails.append("the full run exited %d (want 3)" % p.returncode)
        if not errline:
            fails.append("no 'No space left on device' in the log:\n" + logtext[-800:])
        ck = os.path.join(store, "follow-0.checkpoint")
        acked = []
        if os.path.exists(ck):
            for line in open(ck):
                m = re.search(r"f(\d{3})\.jsonl", line)
                if m:
                    acked.append(int(m.group(1)))
        ids, _ = event_ids(bin_, store)
        stored_full = len(ids)
        lost_acked = [f for f in acked if any("f-%d" % (f * 500 + i) not in ids for i in range(500))]
        if lost_acked:
            fails.append("files acknowledged in the checkpoint but not whole in the store: %s" % lost_acked)
        if not acked:
            fails.append("nothing was acknowledged before the disk filled (the test filled it too early)")
        # space freed: the filesystem grows; the restart takes the rest
        subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
        p2 = subprocess.run([bin_, "run", "--config", cfg, "--exit-at-end"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=120)
        ids, _ = event_ids(bin_, store)
        dups = sum(v - 1 for v in ids.values())
        lost = n - len(ids)
        verify = tw(bin_, "store", "verify", store)
        if p2.returncode:
            fails.append("the restart after freeing space exited %d: %s" % (p2.returncode, p2.stderr.decode()[-400:]))
        if dups or lost or records(bin_, store) != n:
            fails.append("after the restart: %d duplicates, %d lost, %d records of %d" % (dups, lost, records(bin_, store), n))
        if verify.returncode:
            fails.append("store verify: %s" % verify.stdout.decode()[-400:])
        log("faults: disk full (8 MB tmpfs, %d records in 40 files):" % n)
        log("  first run      exit %d after %.1f s: %s" % (p.returncode, time.monotonic() - t0,
                                                           errline.split(": error: ", 1)[-1][:200]))
        log("  acknowledged   %d files in the checkpoint, %d records in the store, none of them lost" %
            (len(acked), stored_full) if not lost_acked else "  acknowledged   LOST %s" % lost_acked)
        log("  after freeing  exit %d; %d records, %d duplicates, %d lost; store verify %s" %
            (p2.returncode, len(ids), dups, lost, "clean" if not verify.returncode else "PROBLEMS"))
    finally:
        subprocess.run(["umount", "-l", mnt])
    return fails


class Hang:
    """A TCP endpoint on 127.0.0.1 that accepts and never answers."""
    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(64)
        self.port = self.s.getsockname()[1]
        self.held = []
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        self.s.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.s.accept()
                self.held.append(c)
            except OSError:
                pass


def smtp_rate(bin_, tmp):
    follow_src = os.path.join(tmp, "rate-in")
    n = write_files(follow_src, 20, 1000, rule_every=20)
    mail = os.path.join(tmp, "rate-mail")
    os.makedirs(mail)
    srv = subprocess.Popen(["/usr/bin/python3", os.path.join(SRC, "tests/tools/smtp_server.py"), "--out", mail],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    good_port = int(srv.stdout.readline())
    hang = Hang()
    out = {}
    try:
        for label, port in (("SMTP server", good_port), ("hanging SMTP", hang.port), ("SMTP server again", good_port)):
            store = os.path.join(tmp, "rate-" + label.replace(" ", "-"))
            cfg = os.path.join(tmp, "rate.json")
            with open(cfg, "w") as f:
                json.dump({"store": {"dir": store},
                           "sources": [{"type": "follow", "follow": {"path": follow_src, "rescan": "100ms"}}],
                           "log": {"file": store + ".log"},
                           "rules": [{"name": "stopped", "pattern": "{ $.eventName = StopLogging }", "topic": "t"}],
                           "notifier": {"topics": [{"name": "t"}], "subscriptions": [{
                               "name": "mail", "topic": "t", "protocol": "email", "endpoint": "soc@example.com",
                               "smtp": {"url": "smtp://127.0.0.1:%d" % port, "from": "tw@localhost", "starttls": "none"},
                               "connect_timeout": "2s", "timeout": "3s"}]}}, f)
            t0 = time.monotonic()
            p = subprocess.Popen([bin_, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while records(bin_, store) < n and time.monotonic() - t0 < 120:
                time.sleep(0.05)
            dt = time.monotonic() - t0
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
            out[label] = (dt, records(bin_, store))
    finally:
        hang.stop = True
        srv.stdin.close()
        srv.wait(timeout=10)
    fails = []
    base = min(out["SMTP server"][0], out["SMTP server again"][0])
    log("faults: ingest with a hanging SMTP endpoint (%d records, a rule publishing 1 in 20 = %d notifications):" %
        (n, n // 20))
    for label, (dt, got) in out.items():
        log("  %-18s %6.2f s to store %d records (%.0f records/s)" % (label, dt, got, got / dt if dt else 0))
        if got != n:
            fails.append("%s: %d of %d records stored" % (label, got, n))
    ratio = out["hanging SMTP"][0] / base
    log("  ratio hanging / fastest normal run: %.2f" % ratio)
    if ratio > 1.5:
        fails.append("ingest with a hanging SMTP endpoint took %.2fx the normal time" % ratio)
    return fails


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: faults.py TRAILWATCH\n")
        return 2
    bin_ = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="tw-faults.")
    fails = []
    try:
        fails += disk_full(bin_, tmp) or []
        fails += smtp_rate(bin_, tmp)
    finally:
        if os.environ.get("SOAK_KEEP"):
            log("faults: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for f in fails:
        log("FAIL: " + f)
    if not fails:
        log("faults: OK")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
