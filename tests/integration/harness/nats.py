"""NATS JetStream: a throwaway nats-server (Debian's package) and a reader of
its streams that speaks the NATS protocol itself (text lines over TCP, the
JetStream API as requests on $JS.API.*), so nothing of cdc's or of libnats
judges what cdc's nats sink published."""

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess

from .common import free_port, tail, wait_for


def require_nats_server():
    path = shutil.which("nats-server")
    if not path:
        raise AssertionError("nats-server is missing: run scripts/install-deps.sh")
    return path


class NatsServer:
    """nats-server with JetStream (unless jetstream is False) on 127.0.0.1,
    its store in the test's directory (file storage: it survives a restart
    of the server)."""

    def __init__(self, ctx, name="nats", jetstream=True, user=None, password=None):
        self.ctx = ctx
        self.jetstream = jetstream
        self.user, self.password = user, password
        self.dir = ctx.tmpdir(name)
        self.port = free_port()
        self.proc = None
        ctx.defer(self.stop)

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, timeout=20, extra=()):
        argv = [require_nats_server(), "-a", "127.0.0.1", "-p", str(self.port),
                "-l", os.path.join(self.dir, "log")]
        if self.jetstream:
            argv += ["-js", "-sd", os.path.join(self.dir, "store")]
        if self.user:
            argv += ["--user", self.user, "--pass", self.password]
        self.proc = subprocess.Popen(argv + list(extra), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited %d:\n%s" % (self.proc.returncode,
                                                                     self.log()))
            try:
                self.client().close()
                return True
            except OSError:
                return False
        wait_for(up, timeout, "nats-server to answer", interval=0.05)
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return tail(f.read(), 30)
        except OSError:
            return ""

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def client(self):
        return NatsClient(self.port, user=self.user, password=self.password)


class NatsMsg:
    def __init__(self, subject, seq, headers, data):
        self.subject, self.seq, self.headers, self.data = subject, seq, headers, data

    @property
    def doc(self):
        return json.loads(self.data) if self.data else None


def _parse_headers(raw):
    """b"NATS/1.0\\r\\nKey: value\\r\\n\\r\\n" -> {key: value} (last wins)."""
    lines = raw.decode().split("\r\n")
    if not lines[0].startswith("NATS/1.0"):
        raise AssertionError("bad header block %r" % raw[:80])
    out = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


class NatsClient:
    """Just enough of the NATS protocol for requests: CONNECT, SUB to an
    inbox, PUB with a reply subject, MSG/HMSG back, PING/PONG."""

    def __init__(self, port, timeout=10, user=None, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        info = self._line()
        if not info.startswith(b"INFO "):
            raise AssertionError("not a NATS server: %r" % info[:80])
        self.inbox = "_INBOX.cdctest%d_%s" % (os.getpid(), secrets.token_hex(6))
        self.n = 0
        opts = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                "protocol": 1, "lang": "python", "version": "0"}
        if user:
            opts.update(user=user, pass_=password)
        connect = json.dumps(opts).replace('"pass_"', '"pass"')
        self._send(b"CONNECT " + connect.encode() + b"\r\n"
                   b"SUB " + self.inbox.encode() + b".* 1\r\nPING\r\n")
        while True:
            line = self._line()
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                raise AssertionError("NATS refused the connection: %r" % line)

    def close(self):
        self.sock.close()

    def _send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise OSError("the NATS server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _take(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _next_msg(self):
        """The next message on our inbox: (reply-to subject, headers, data)."""
        while True:
            line = self._line()
            if line == b"PING":
                self._send(b"PONG\r\n")
                continue
            if line in (b"PONG", b"+OK") or not line or line.startswith(b"INFO "):
                continue
            if line.startswith(b"-ERR"):
                raise AssertionError("NATS error: %r" % line)
            parts = line.decode().split()
            if parts[0] == "MSG":
                body = self._take(int(parts[-1]))
                return parts[1], {}, body
            if parts[0] == "HMSG":
                hlen, total = int(parts[-2]), int(parts[-1])
                raw = self._take(total)
                return parts[1], _parse_headers(raw[:hlen]), raw[hlen:]
            raise AssertionError("unexpected NATS line %r" % line)

    def requests(self, subject_payloads):
        """Sends every (subject, payload) request at once; returns their
        answers' (headers, data), in order."""
        base = self.n
        out = bytearray()
        for i, (subj, payload) in enumerate(subject_payloads):
            out += b"PUB %s %s.%d %d\r\n" % (subj.encode(), self.inbox.encode(), base + i,
                                              len(payload))
            out += payload + b"\r\n"
        self.n += len(subject_payloads)
        self._send(bytes(out))
        answers = {}
        while len(answers) < len(subject_payloads):
            subj, hdrs, data = self._next_msg()
            idx = int(subj.rsplit(".", 1)[1]) - base
            if 0 <= idx < len(subject_payloads):
                answers[idx] = (hdrs, data)
        return [answers[i] for i in range(len(subject_payloads))]

    def js(self, api, obj=None):
        """One JetStream API request; its JSON answer (raises on an error)."""
        ((hdrs, data),) = self.requests([("$JS.API." + api, json.dumps(obj or {}).encode())])
        if not data:
            raise AssertionError("$JS.API.%s: no answer (%s)" % (api, hdrs))
        doc = json.loads(data)
        if "error" in doc:
            raise AssertionError("$JS.API.%s: %s" % (api, doc["error"]))
        return doc

    def add_stream(self, name, subjects, duplicate_window_s=600, **extra):
        cfg = {"name": name, "subjects": subjects, "storage": "file", "retention": "limits",
               "num_replicas": 1, "duplicate_window": int(duplicate_window_s * 1e9)}
        cfg.update(extra)
        return self.js("STREAM.CREATE." + name, cfg)

    def stream_info(self, name):
        return self.js("STREAM.INFO." + name)

    def _get(self, stream, seqs):
        """The stored messages at seqs (a deleted one left out)."""
        reqs = [("$JS.API.STREAM.MSG.GET." + stream, json.dumps({"seq": s}).encode())
                for s in seqs]
        out = []
        for hdrs, data in self.requests(reqs):
            doc = json.loads(data)
            if "error" in doc:
                if doc["error"].get("err_code") == 10037:  # deleted: none here
                    continue
                raise AssertionError("STREAM.MSG.GET: %s" % doc["error"])
            m = doc["message"]
            raw_h = base64.b64decode(m["hdrs"]) if m.get("hdrs") else b""
            out.append(NatsMsg(m["subject"], m["seq"], _parse_headers(raw_h) if raw_h else {},
                               base64.b64decode(m.get("data", ""))))
        return out

    def message(self, stream, seq):
        """The stored message at seq."""
        (m,) = self._get(stream, [seq])
        return m

    def messages(self, stream, batch=500):
        """Every message the stream holds, in its order."""
        st = self.stream_info(stream)["state"]
        if st["messages"] == 0:
            return []
        first, last = st["first_seq"], st["last_seq"]
        out = []
        for seq in range(first, last + 1, batch):
            out += self._get(stream, range(seq, min(last, seq + batch - 1) + 1))
        return out


def nats_sink(url, sink_id="nats", **extra):
    n = {"url": url}
    n.update(extra)
    return {"sink_id": sink_id, "sink_type": "nats", "nats": n}


def strip_times(doc):
    """An envelope without its processing time (the one field two deliveries
    of a change may differ in)."""
    return {k: v for k, v in doc.items() if k not in ("ts_ms", "ts_us", "ts_ns")}


class NatsCheck:
    pass


def check_nats_stream(msgs, file_records, keys, prefix="cdc", exactly_once=True):
    """The stream against the file sink's records of the same pipeline
    (which the caller judged against the oracle): every change, in commit
    order, its envelope equal to the file's but for processing time, on
    subject prefix.schema.table; Nats-Msg-Id names one change and each change
    has one; Cdc-Op is the envelope's op and Cdc-Key the JSON of the key
    columns (keys: {table: [columns]}, none for a keyless table).  Exactly
    once: no change twice; else repeats are counted (res.duplicates) and
    first occurrences still come in commit order."""
    res = NatsCheck()
    want = [json.dumps(strip_times(r), sort_keys=True) for r in file_records]
    seen, ids_of, order = {}, {}, []
    res.duplicates = 0
    for m in msgs:
        env = m.doc
        text = json.dumps(strip_times(env), sort_keys=True)
        mid = m.headers.get("Nats-Msg-Id")
        assert mid, "message %d has no Nats-Msg-Id" % m.seq
        if ids_of.setdefault(mid, text) != text:
            raise AssertionError("Nats-Msg-Id %s names two changes:\n  %s\n  %s"
                                 % (mid, ids_of[mid][:300], text[:300]))
        if text in seen:
            if seen[text] != mid:
                raise AssertionError("a change came under two Nats-Msg-Ids: %s and %s"
                                     % (seen[text], mid))
            res.duplicates += 1
            continue
        seen[text] = mid
        order.append(text)
        src = env["source"]
        table = "%s.%s" % (src["schema"], src["table"])
        assert m.subject == "%s.%s.%s" % (prefix, src["schema"], src["table"]), \
            "message %d of %s on subject %s" % (m.seq, table, m.subject)
        assert m.headers.get("Cdc-Op") == env["op"], (m.seq, m.headers, env["op"])
        cols = keys.get(table) or []
        if cols and env["op"] != "t":
            row = env["after"] if env["op"] != "d" else env["before"]
            assert json.loads(m.headers.get("Cdc-Key", "null")) == {c: row[c] for c in cols}, \
                "message %d: Cdc-Key %r, the row's key %r" % (
                    m.seq, m.headers.get("Cdc-Key"), {c: row[c] for c in cols})
        else:
            assert "Cdc-Key" not in m.headers, (m.seq, m.headers)
    if exactly_once:
        assert res.duplicates == 0, "%d changes stored twice" % res.duplicates
    missing = [w for w in want if w not in seen]
    assert not missing, "%d changes of the file are not in the stream, first: %s" % (
        len(missing), missing[0][:400])
    wanted = set(want)
    extra = [o for o in order if o not in wanted]
    assert not extra, "%d messages the file does not have, first: %s" % (len(extra),
                                                                        extra[0][:400])
    assert order == want, "the stream's changes are not in the file's (commit) order"
    res.changes = len(order)
    res.messages = len(msgs)
    return res
