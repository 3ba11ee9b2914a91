"""Webhooks: the test receiver process, webhook sink configs, per-key order."""

# flake8: noqa: F401,F403,F405
import base64
import collections
import contextlib
import decimal
import hashlib
import hmac
import io
import json
import math
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psycopg2
import psycopg2.extras

from .common import *  # noqa: F401,F403
from .pg import *  # noqa: F401,F403
from .cdc import *  # noqa: F401,F403
from .oracle import *  # noqa: F401,F403
from .compare import *  # noqa: F401,F403

# --------------------------------------------------------------------------
# webhooks: the test receiver, webhook sink configs, the dead-letter queue,
# per-key order and memory


RECEIVER_SCRIPT = os.path.join(REPO_ROOT, "tests", "integration", "receiver.py")
SYSTEM_PYTHON = "/usr/bin/python3"


class Receiver:
    """tests/integration/receiver.py in its own process, stopped when the test
    ends.  url() is what a webhook sink posts to; control() steers it (the
    keys of its POST /__control, see the receiver's docstring); records()
    returns every request it got, in arrival order."""

    def __init__(self, ctx, name="receiver"):
        self.ctx = ctx
        self.dir = ctx.tmpdir(name)
        self.proc = None
        self.port = None
        self.control_port = None

    def start(self, timeout=20):
        self.stderr_path = os.path.join(self.dir, "stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([SYSTEM_PYTHON, RECEIVER_SCRIPT], stdout=subprocess.PIPE,
                                         stderr=err, stdin=subprocess.DEVNULL, cwd=self.dir)
        self.ctx.defer(self.stop)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if r else b""
        if not line:
            raise AssertionError("the webhook receiver did not start:\n" + self.stderr())
        info = json.loads(line)
        self.port, self.control_port = info["port"], info["control_port"]
        return self

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return tail(f.read(), 30)
        except OSError:
            return ""

    def url(self, path="/hook", userinfo=""):
        return "http://%s127.0.0.1:%d%s" % (userinfo, self.port, path)

    def _call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.control_port, path),
                                     data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise AssertionError("receiver %s %s: HTTP %d %s" % (method, path, e.code,
                                                                   e.read()[:300]))
        except OSError as e:
            raise AssertionError("receiver %s %s failed (%s); its stderr:\n%s"
                                 % (method, path, e, self.stderr()))

    def control(self, **cmd):
        """Steers the receiver, e.g. control(fail={"status": 500, "count": 3})."""
        return self._call("POST", "/__control", cmd)

    def records(self, raw=False):
        """Every request so far (see the receiver's docstring for the fields)."""
        if raw:
            return self._call("GET", "/__received?raw=1")
        # Fetch only what may have changed since the last call: the records
        # from the first one the receiver was still answering.
        cache = getattr(self, "_cache", [])
        start = next((i for i, r in enumerate(cache) if not r["final"]), len(cache))
        self._cache = cache[:start] + self._call("GET", "/__received?since=%d" % start)
        return list(self._cache)

    def stats(self):
        return self._call("GET", "/__stats")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()


def webhook_sink(url, sink_id="hook", retry=None, **webhook):
    """A webhook sink block; webhook holds the keys of `webhook:` besides url."""
    w = {"url": url}
    w.update(webhook)
    s = {"sink_id": sink_id, "sink_type": "webhook", "webhook": w}
    if retry is not None:
        s["retry"] = retry
    return s


def record_envelopes(rec):
    """The envelopes one received request carried: the body itself, or the
    items of an array."""
    body = rec.get("body")
    if isinstance(body, list):
        return body
    return [] if body is None else [body]


def webhook_deliveries(records, path=None):
    """[(record, envelope)] of the requests answered 2xx (the deliveries), in
    arrival order and, within a request, array order; optionally only those
    sent to path."""
    out = []
    for rec in records:
        if rec["status"] is None or not 200 <= rec["status"] < 300:
            continue
        if path is not None and rec["path"] != path:
            continue
        for env in record_envelopes(rec):
            out.append((rec, env))
    return out


def envelope_position(env):
    """(commit LSN, index in the transaction): the change's position."""
    return (rec_commit_lsn(env), env["transaction"]["total_order"] - 1)


def idempotency_key(pipeline_id, sink_id, body):
    """The Idempotency-Key the webhook sink sends for a request whose body is
    one streamed change's envelope, or a list of them (a batch): the
    change's position, or for several changes the SHA-256 of their keys,
    each followed by a NUL.  (Snapshot rows are keyed by their snapshot id,
    which the envelope does not carry: not computable here.)"""
    envs = body if isinstance(body, list) else [body]
    keys = []
    for env in envs:
        if env["source"].get("snapshot") not in (None, "false"):
            raise ValueError("the key of a snapshot row cannot be derived from its envelope")
        commit, idx = envelope_position(env)
        keys.append("%s:%s:%d:%d" % (pipeline_id, sink_id, commit, idx))
    if len(keys) == 1:
        return keys[0]
    digest = hashlib.sha256("".join(k + "\0" for k in keys).encode()).hexdigest()
    return "%s:%s:batch:%d:%s" % (pipeline_id, sink_id, len(keys), digest)


def hmac_signature(secret, raw):
    """The X-CDC-Signature value for a body (text as received)."""
    return "sha256=" + hmac.new(secret.encode(), raw.encode("utf-8"), hashlib.sha256).hexdigest()


def envelope_row_key(env, metas):
    """(table, key values) of the row an envelope changes: the primary-key
    columns of after (c, u, r) or before (d), as the engine routes them;
    (table, None) for truncates and keyless tables."""
    table = rec_table(env)
    m = metas.get(table)
    row = env.get("after") if env.get("after") is not None else env.get("before")
    if m is None or not m.key or not isinstance(row, dict):
        return (table, None)
    return (table, tuple(json.dumps(row.get(k), sort_keys=True) for k in m.key))


def check_per_key_order(envs, metas, what):
    """envs: envelopes in the order a destination received them.  For every
    key, its changes must arrive in commit order, each position once.
    Returns the number of keys."""
    last = {}
    problems = []
    for i, env in enumerate(envs):
        k = envelope_row_key(env, metas)
        pos = envelope_position(env)
        prev = last.get(k)
        if prev is not None and pos <= prev[0] and len(problems) < 10:
            problems.append("%s: key %s: change at %s (#%d) arrived after %s (#%d)" % (
                what, k, "%s:%d" % (int_to_lsn(pos[0]), pos[1]), i,
                "%s:%d" % (int_to_lsn(prev[0][0]), prev[0][1]), prev[1]))
        last[k] = (pos, i)
    if problems:
        raise AssertionError("not in per-key commit order:\n  " + "\n  ".join(problems))
    return len(last)


def count_inversions(envs):
    """How many adjacent pairs arrived out of commit order (across keys):
    proof that deliveries ran in parallel."""
    pos = [envelope_position(e) for e in envs]
    return sum(1 for a, b in zip(pos, pos[1:]) if b < a)


def check_webhook_against_oracle(envs, txns, pipeline_id="t1", db="src", exactly_once=True):
    """Every envelope must be a well-formed envelope of an oracle change at its
    right position, and every oracle change must be there: exactly once, or
    (exactly_once=False, after crashes) at least once.  Order is not checked
    here (check_per_key_order does).  Returns the number of changes."""
    items = []
    seen = set()
    for i, env in enumerate(envs, 1):
        p = envelope_problems(env, pipeline_id, db)
        if p:
            raise AssertionError("webhook envelope %d is not valid: %s\n  %s"
                                 % (i, "; ".join(p), short(json.dumps(env), 400)))
        key = rec_key(env)
        if not exactly_once:
            if key in seen:
                continue
            seen.add(key)
        s, t = env["source"], env["transaction"]
        items.append((key, rec_commit_lsn(env), s["lsn"], rec_table(env), env["op"],
                      t["total_order"], t["data_collection_order"],
                      "envelope %d (%s %s xid=%d #%d)" % (i, env["op"], rec_table(env), s["txId"],
                                                         t["total_order"])))
    return check_against_oracle(items, txns, "webhook", ordered=False)
