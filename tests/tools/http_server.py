#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/tools/http_server.py: an HTTP receiver for the notifier's tests, on 127.0.0.1. Prints its
# port once listening, serves until stdin closes or SIGTERM. Answers requests by a script:
#   --script 500,hang,200   the Nth request gets the Nth entry (a status, or "hang": no answer
#                           for 30 s); after the list, the last entry repeats
#   --port N                listen on N (default: a free port)
#   --tls CERT KEY          serve HTTPS with this certificate
# Every request that got a 2xx is saved as OUT/NNNN.json: {"method","path","headers","body"}.
# OUT/log.txt gets one line per request: its number and what it was answered.
import argparse, json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--script", default="200")
ap.add_argument("--tls", nargs=2)
args = ap.parse_args()
script = args.script.split(",")
lock = threading.Lock()
state = {"req": 0, "ok": 0}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            i = state["req"]
            state["req"] += 1
            act = script[min(i, len(script) - 1)]
            with open(os.path.join(args.out, "log.txt"), "a") as f:
                f.write("%d %s\n" % (i + 1, act))
        if act == "hang":
            time.sleep(30)
            return
        code = int(act)
        if 200 <= code < 300:
            with lock:
                state["ok"] += 1
                n = state["ok"]
            rec = {"method": "POST", "path": self.path,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8")}
            p = os.path.join(args.out, "%04d.json" % n)
            with open(p + ".tmp", "w") as f:
                json.dump(rec, f)
            os.rename(p + ".tmp", p)
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class S(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    # The TLS handshake runs on the connection's own thread: wrapping the listening socket would
    # run it inside accept(), where one client that never finishes its handshake stops the server
    # from accepting anyone else (and from shutting down).
    def finish_request(self, request, client_address):
        if self.tls is None:
            return super().finish_request(request, client_address)
        request.settimeout(10)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            return
        try:
            conn.settimeout(None)
            super().finish_request(conn, client_address)
        finally:
            conn.close()


srv = S(("127.0.0.1", args.port), H)
if args.tls:
    import ssl
    srv.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    srv.tls.load_cert_chain(args.tls[0], args.tls[1])
print(srv.server_address[1], flush=True)
threading.Thread(target=srv.serve_forever, daemon=True).start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
done.wait()
