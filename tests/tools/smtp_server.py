#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# tests/tools/smtp_server.py: a real SMTP server for the notifier's tests (aiosmtpd, Debian's
# python3-aiosmtpd), on 127.0.0.1. Prints its port on stdout once it accepts connections, then
# serves until stdin closes or SIGTERM. Each accepted message is saved as OUT/NNNN.eml with a
# OUT/NNNN.json beside it: envelope sender and recipients, whether STARTTLS and AUTH were used.
#   --out DIR          where messages go (required)
#   --port N           listen on N (default: a free port)
#   --tls CERT KEY     offer STARTTLS with this certificate
#   --require-tls      refuse MAIL before STARTTLS
#   --implicit-tls     TLS from the first byte (smtps://) with the --tls certificate
#   --auth USER:PASS   require AUTH (LOGIN or PLAIN) with these credentials
#   --fail N CODE      answer the first N DATA commands with CODE (e.g. 451 or 550)
import argparse, json, os, signal, socket, ssl, sys, threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--tls", nargs=2)
ap.add_argument("--require-tls", action="store_true")
ap.add_argument("--implicit-tls", action="store_true")
ap.add_argument("--auth")
ap.add_argument("--fail", nargs=2, type=int)
args = ap.parse_args()

lock = threading.Lock()
state = {"n": 0, "failed": 0}
logins = {}


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            if args.fail and state["failed"] < args.fail[0]:
                state["failed"] += 1
                code = args.fail[1]
                return "%d %d.0.0 test failure %d" % (code, code // 100, state["failed"])
            state["n"] += 1
            n = state["n"]
        base = os.path.join(args.out, "%04d" % n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth": session.authenticated,
            "login": logins.get(id(session)),
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 OK queued as %04d" % n


def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    user, pw = args.auth.split(":", 1)
    ok = auth_data.login.decode() == user and auth_data.password.decode() == pw
    if ok:
        logins[id(session)] = user
    return AuthResult(success=ok, handled=False)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


kw = {}
ctl_kw = {}
if args.tls and args.implicit_tls:
    ictx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ictx.load_cert_chain(args.tls[0], args.tls[1])
    ctl_kw["ssl_context"] = ictx
elif args.tls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls[0], args.tls[1])
    kw["tls_context"] = ctx
    kw["require_starttls"] = args.require_tls
if args.auth:
    kw["authenticator"] = authenticator
    kw["auth_required"] = True
    kw["auth_require_tls"] = bool(args.tls) and not args.implicit_tls
port = args.port or free_port()
ctl = Controller(Handler(), hostname="127.0.0.1", port=port, **ctl_kw, **kw)
ctl.start()
print(port, flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
done.wait()
# Controller.stop() waits for the event loop's thread, which a connection stuck in its TLS
# handshake can hold: stopping is bounded, then the process leaves whatever is left.
stopper = threading.Thread(target=ctl.stop, daemon=True)
stopper.start()
stopper.join(5)
sys.stdout.flush()
os._exit(0)
