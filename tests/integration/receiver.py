#!/usr/bin/python3
"""A webhook receiver for cdc's integration tests (Python 3 standard library only).

Run it as its own process:

    /usr/bin/python3 tests/integration/receiver.py [--host 127.0.0.1] [--port 0] [--control-port 0]

It prints one JSON line on stdout once both ports listen, e.g.
``{"port": 41233, "control_port": 41234}``, then serves until killed.

Two ports
---------
``port`` is the webhook endpoint cdc delivers to: any method, any path.
Its behaviour can be steered (below), including closing it altogether.
``control_port`` only serves the two control paths and is never steered,
so a test can always reach it.  The control paths also answer on ``port``
while it accepts connections.

Every request to ``port`` outside the control paths is recorded
----------------------------------------------------------------
``GET /__received`` returns the records as a JSON list, in arrival order;
``GET /__received?since=N`` returns the records from index N on, and
``?raw=1`` includes every body's exact text (for signatures).  A record:

    {"seq": 0,                  index in the list
     "time": 1718150400.123,    arrival (time.time(), after the body was read)
     "conn": 3,                 connection number (1, 2, ... in accept order)
     "method": "POST", "path": "/hook",
     "headers": {"content-type": "application/json", ...},   names lowercased
     "body": <the parsed JSON body, or null>,
     "raw": <the body as text (UTF-8, invalid bytes replaced) when it is
             not JSON or the listing asked for ?raw=1, else null>,
     "json": true when the body parsed as JSON,
     "status": 200,             what was answered; null if never answered
     "answered": 1718150400.125 when the answer was sent; null if never}

``GET /__stats`` returns ``{"requests": n, "statuses": {"200": n, ...},
"connections": n, "unanswered": n}``.

Steering: ``POST /__control`` with a JSON object
------------------------------------------------
Keys may be combined in one call; each applies from the moment of the call.
Durations are in seconds (floats allowed).

``{"normal": true}``
    Respond normally again: cancels failures, delays, hanging, refusing
    and rejection (applied before the other keys of the same call).
``{"fail": {"status": 500, "count": 3}}``
    Answer the next 3 requests with HTTP 500.
``{"fail": {"status": 503, "seconds": 5, "retry_after": "2"}}``
    Answer every request for 5 seconds with 503 and ``Retry-After: 2``
    (any string: delta-seconds or an HTTP-date).
``{"fail": [rule, rule, ...]}``
    Rules apply one after the other; a time rule's clock starts when the
    rule before it is used up.  A new ``fail`` replaces the queued rules.
``{"delay": 0.2}``, ``{"delay": 0.2, "jitter": true}``, ``{"delay": 0.2, "seconds": 10}``
    Answer each request after 0.2 s (jitter: a uniform random delay between
    0 and 0.2 s), for 10 seconds or until changed.  ``{"delay": 0}`` ends it.
``{"hang": {"seconds": 30}}``
    Accept connections and read requests, but never answer one that
    arrives in the next 30 seconds: its connection is closed without an
    answer once the 30 seconds are over (or the client gave up earlier).
``{"refuse": {"seconds": 30}}``
    Stop listening on ``port`` for 30 seconds (connection attempts are
    refused) and close the connections that are open there (send this one
    to ``control_port``: a control request on ``port`` loses its answer).
``{"reject": {"key": 7}}``
    Answer 400 to every request whose body holds an envelope whose row
    (``after``, or ``before``) has column ``id`` equal to 7.  Options:
    ``"column": "order_id"`` compares another column; a key given as an
    object, ``{"order_id": 3, "line_no": 1}``, must match all of its
    columns (the primary key of a composite-key table); ``"table":
    "public.lines"`` restricts it to one table; ``"status": 422`` answers
    another status.  ``{"reject": null}`` stops rejecting.
``{"status": 204}``
    The status of a normal answer (default 200).
``{"keep_raw": false}``, ``{"strip": ["note", "payload"]}``
    Memory savers for long tests: do not keep the bodies' exact text (JSON
    bodies only), and leave these columns out of the stored before/after
    rows.  Rejection still sees the whole body.

Precedence for a request: hang, then the delay, then a ``fail`` rule in
force, then ``reject``, then the normal answer.  The answer to
``/__control`` is the resulting settings as JSON.
"""

import argparse
import json
import random
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


class State:
    """Everything the handlers share, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records = []
        self.nconns = 0  # connections accepted on either port (numbers them)
        self.ndata_conns = 0  # on the data port
        self.host, self.port = None, None
        self.lsock = None  # the data port's listening socket; None while refusing
        self.data_conns = set()  # open sockets on the data port
        self.ok_status = 200
        self.fail_rules = []  # each {"status", "count"|"seconds", "retry_after"?, "until"?}
        self.delay = 0.0
        self.jitter = False
        self.delay_until = None
        self.hang_until = 0.0
        self.refuse_until = 0.0
        self.reject = None
        self.keep_raw = True
        self.strip = ()  # columns left out of stored rows

    # ---- the data port (callers hold the lock)

    def close_data_locked(self):
        if self.lsock is not None:
            # shutdown first: another thread's select() keeps the socket alive
            # past close(), but a shut down listener stops accepting at once
            try:
                self.lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.lsock.close()
            self.lsock = None
        for c in list(self.data_conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def open_data_locked(self):
        if self.lsock is None:
            try:
                self.lsock = _listen(self.host, self.port)
            except OSError:
                pass  # the port is not free yet: the accept loop tries again

    # ---- steering

    def _activate_head(self, now):
        if self.fail_rules and "seconds" in self.fail_rules[0] and "until" not in self.fail_rules[0]:
            self.fail_rules[0]["until"] = now + float(self.fail_rules[0]["seconds"])

    def control(self, cmd):
        if not isinstance(cmd, dict):
            raise ValueError("expected a JSON object")
        known = {"normal", "fail", "delay", "jitter", "seconds", "hang", "refuse", "reject", "status",
                 "keep_raw", "strip"}
        unknown = set(cmd) - known
        if unknown:
            raise ValueError("unknown keys %s" % sorted(unknown))
        now = time.monotonic()
        with self.lock:
            if cmd.get("normal"):
                self.fail_rules = []
                self.delay, self.jitter, self.delay_until = 0.0, False, None
                self.hang_until = 0.0
                self.refuse_until = 0.0
                self.reject = None
            if "status" in cmd:
                self.ok_status = int(cmd["status"])
            if "keep_raw" in cmd:
                self.keep_raw = bool(cmd["keep_raw"])
            if "strip" in cmd:
                self.strip = tuple(cmd["strip"] or ())
            if "fail" in cmd:
                rules = cmd["fail"]
                if rules is None:
                    rules = []
                if isinstance(rules, dict):
                    rules = [rules]
                checked = []
                for r in rules:
                    if not isinstance(r, dict) or "status" not in r or \
                            ("count" in r) == ("seconds" in r):
                        raise ValueError("a fail rule needs status and one of count, seconds: %r" % (r,))
                    rule = {"status": int(r["status"])}
                    if "count" in r:
                        rule["count"] = int(r["count"])
                    else:
                        rule["seconds"] = float(r["seconds"])
                    if r.get("retry_after") is not None:
                        rule["retry_after"] = str(r["retry_after"])
                    checked.append(rule)
                self.fail_rules = checked
                self._activate_head(now)
            if "delay" in cmd:
                self.delay = float(cmd["delay"])
                self.jitter = bool(cmd.get("jitter", False))
                self.delay_until = now + float(cmd["seconds"]) if cmd.get("seconds") else None
            if "hang" in cmd:
                self.hang_until = now + float((cmd["hang"] or {}).get("seconds", 0))
            if "refuse" in cmd:
                self.refuse_until = now + float((cmd["refuse"] or {}).get("seconds", 0))
            if self.refuse_until > now:
                self.close_data_locked()  # at once: nothing is accepted after this answer
            else:
                self.open_data_locked()
            if "reject" in cmd:
                r = cmd["reject"]
                if r is not None and (not isinstance(r, dict) or "key" not in r):
                    raise ValueError("reject needs a key: %r" % (r,))
                self.reject = None if r is None else {
                    "key": r["key"], "column": r.get("column", "id"), "table": r.get("table"),
                    "status": int(r.get("status", 400))}
            return self.settings_locked(now)

    def settings_locked(self, now):
        return {
            "status": self.ok_status,
            "fail": [dict(r, until=None) if "until" not in r else
                     dict(r, until=max(0.0, r["until"] - now)) for r in self.fail_rules],
            "delay": self.delay if self.delay_until is None or self.delay_until > now else 0.0,
            "jitter": self.jitter,
            "hang_left": max(0.0, self.hang_until - now),
            "refuse_left": max(0.0, self.refuse_until - now),
            "reject": self.reject,
            "keep_raw": self.keep_raw,
            "strip": list(self.strip),
        }

    def refusing(self):
        with self.lock:
            return self.refuse_until > time.monotonic()

    def hanging(self):
        with self.lock:
            return self.hang_until > time.monotonic()

    # ---- deciding an answer

    @staticmethod
    def _matches(env, rule):
        if not isinstance(env, dict):
            return False
        if rule["table"]:
            src = env.get("source") or {}
            if "%s.%s" % (src.get("schema"), src.get("table")) != rule["table"]:
                return False
        key = rule["key"]
        for row in (env.get("after"), env.get("before")):
            if not isinstance(row, dict):
                continue
            if isinstance(key, dict):
                if key and all(c in row and row[c] == v for c, v in key.items()):
                    return True
            elif rule["column"] in row and row[rule["column"]] == key:
                return True
        return False

    def decide(self, body):
        """(hang, status, retry_after, delay) for a request with this body."""
        now = time.monotonic()
        with self.lock:
            if self.hang_until > now:
                return True, None, None, 0.0
            delay = 0.0
            if self.delay and (self.delay_until is None or self.delay_until > now):
                delay = random.uniform(0, self.delay) if self.jitter else self.delay
            while self.fail_rules:
                r = self.fail_rules[0]
                if "count" in r:
                    if r["count"] > 0:
                        r["count"] -= 1
                        return False, r["status"], r.get("retry_after"), delay
                elif now < r["until"]:
                    return False, r["status"], r.get("retry_after"), delay
                self.fail_rules.pop(0)
                self._activate_head(now)
            if self.reject is not None:
                envs = body if isinstance(body, list) else [body]
                if any(self._matches(e, self.reject) for e in envs):
                    return False, self.reject["status"], None, delay
            return False, self.ok_status, None, delay

    def stored_body(self, body):
        """What is kept of a body: the rows without the stripped columns."""
        if not self.strip:
            return body

        def trim(env):
            if not isinstance(env, dict):
                return env
            env = dict(env)
            for side in ("before", "after"):
                if isinstance(env.get(side), dict):
                    env[side] = {c: v for c, v in env[side].items() if c not in self.strip}
            return env

        return [trim(e) for e in body] if isinstance(body, list) else trim(body)

    def record(self, rec):
        with self.lock:
            rec["seq"] = len(self.records)
            self.records.append(rec)
            return rec

    def stats(self):
        with self.lock:
            statuses = {}
            unanswered = 0
            for r in self.records:
                if r["status"] is None:
                    unanswered += 1
                else:
                    statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
            return {"requests": len(self.records), "statuses": statuses,
                    "connections": self.ndata_conns, "unanswered": unanswered}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cdc-test-receiver"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        if status != 204 and status >= 200:
            self.send_header("Content-Type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)) if status != 204 else "0")
        self.end_headers()
        if body and status != 204:
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status, obj):
        self._send(status, json.dumps(obj).encode())

    def _serve(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        if url.path.startswith("/__"):
            return self._control(st, url, raw)
        if self.server.control_only:
            return self._json(404, {"error": "the control port serves only /__ paths"})
        text = raw.decode("utf-8", "replace")
        try:
            body, parsed = json.loads(text), True
        except ValueError:
            body, parsed = None, False
        arrived = time.time()
        hang, status, retry_after, delay = st.decide(body)
        with st.lock:
            keep_raw = st.keep_raw or not parsed
            stored = st.stored_body(body)
        rec = st.record({
            "time": arrived, "conn": self.conn_id, "method": self.command,
            "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": stored, "raw": text if keep_raw else None, "json": parsed, "status": None,
            "answered": None, "retry_after": None, "final": False,
        })
        if hang:
            # never answer: wait out the hang (or the client's giving up), then close
            rec["final"] = True
            while st.hanging():
                r, _, _ = select.select([self.connection], [], [], 0.05)
                if r:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        break  # the client gave up
                    time.sleep(0.05)
            self.close_connection = True
            return
        try:
            if delay:
                time.sleep(delay)
            headers = [("Retry-After", retry_after)] if retry_after is not None else []
            rec["retry_after"] = retry_after
            ok = 200 <= status < 300
            reply = b'{"ok":true}' if ok else json.dumps(
                {"error": "status %d from the test receiver" % status}).encode()
            # Recorded before the answer goes out: a client that has read it
            # may ask for the records at once.  Taken back if it never left.
            rec["status"], rec["answered"] = status, time.time()
            try:
                self._send(status, reply, headers)
            except OSError:
                rec["status"] = rec["answered"] = None
                raise
        finally:
            rec["final"] = True  # answered, or the client left before the answer

    def _control(self, st, url, raw):
        if url.path == "/__received" and self.command == "GET":
            q = parse_qs(url.query)
            since = int(q.get("since", ["0"])[0])
            with_raw = q.get("raw", ["0"])[0] == "1"
            with st.lock:
                snap = [r if with_raw or not r["json"] else dict(r, raw=None)
                        for r in st.records[since:]]
            return self._send(200, json.dumps(snap).encode())
        if url.path == "/__stats" and self.command == "GET":
            return self._json(200, st.stats())
        if url.path == "/__control" and self.command == "POST":
            try:
                settings = st.control(json.loads(raw.decode("utf-8") or "null"))
            except (ValueError, TypeError, AttributeError) as e:
                return self._json(400, {"error": str(e)})
            return self._json(200, settings)
        return self._json(404, {"error": "unknown control path %s" % url.path})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class Listener:
    """What handlers see as their server."""

    def __init__(self, state, control_only):
        self.state = state
        self.control_only = control_only


def _listen(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(128)
    s.setblocking(False)  # accept only after select said so, and never block under the lock
    return s


def _handle(conn, addr, listener, conn_id, track):
    st = listener.state
    try:
        h = Handler.__new__(Handler)
        h.conn_id = conn_id
        Handler.__init__(h, conn, addr, listener)
    except (OSError, ValueError):
        pass
    finally:
        if track:
            with st.lock:
                st.data_conns.discard(conn)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


def _accept_one(lsock, listener, track):
    st = listener.state
    with st.lock:
        if track and st.lsock is not lsock:
            return  # closed meanwhile: refusing
        try:
            conn, addr = lsock.accept()
        except OSError:
            return
        conn.setblocking(True)
        # An answer is two writes (headers, body): with Nagle the body would
        # wait for the client's delayed ACK, 40 ms per request.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        st.nconns += 1
        conn_id = st.nconns
        if track:
            st.ndata_conns += 1
            st.data_conns.add(conn)
    threading.Thread(target=_handle, args=(conn, addr, listener, conn_id, track), daemon=True).start()


def serve_data(listener):
    """The steerable port: closed while refusing, reopened afterwards."""
    st = listener.state
    while True:
        with st.lock:
            if st.refuse_until > time.monotonic():
                st.close_data_locked()
            elif st.lsock is None:
                st.open_data_locked()
            lsock = st.lsock
        if lsock is None:
            time.sleep(0.02)
            continue
        try:
            r, _, _ = select.select([lsock], [], [], 0.05)
        except (OSError, ValueError):
            continue
        if r:
            _accept_one(lsock, listener, True)


def serve_control(lsock, listener):
    while True:
        r, _, _ = select.select([lsock], [], [], 1.0)
        if r:
            _accept_one(lsock, listener, False)


def main():
    ap = argparse.ArgumentParser(description="webhook receiver for cdc's tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    args = ap.parse_args()
    st = State()
    data = _listen(args.host, args.port)
    ctl = _listen(args.host, args.control_port)
    st.host, st.port, st.lsock = args.host, data.getsockname()[1], data
    threading.Thread(target=serve_data, args=(Listener(st, False),), daemon=True).start()
    threading.Thread(target=serve_control, args=(ctl, Listener(st, True)), daemon=True).start()
    print(json.dumps({"port": st.port, "control_port": ctl.getsockname()[1]}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
