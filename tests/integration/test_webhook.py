"""The webhook sink end to end, against the test receiver (receiver.py).

test_receiver_and_checkers: the receiver and the order checks themselves.

test_requests_and_envelopes: every change arrives once as a request whose body
is exactly the file's envelope (or an array of them), with the configured
method, headers, bearer token, idempotency key and HMAC signature, in
per-key commit order.

test_lane_backlog_drains_without_idling: a lane's backlog goes out request
after request once the log is read to its end.

test_retries_and_dead_letters: the receiver fails in every way a receiver can
(5xx and 408 for a few requests, 429 with Retry-After in seconds and as a
date, 503 until retries run out, hanging past the timeout, refusing
connections, rejecting one key with 400).  The numbers of requests,
deliveries and dead-letter entries must be exactly what the retry policy
predicts; `cdc dlq list/show/replay` then show and redeliver the
dead-lettered changes exactly once."""

import email.utils
import json
import re
import time
import types
import urllib.error
import urllib.request

import harness as h

DDL = """
CREATE TABLE public.items (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL DEFAULT 0);
CREATE TABLE public.pairs (a int, b int, v text, PRIMARY KEY (a, b));
"""
TABLES = ["public.items", "public.pairs"]
TOKEN = "tok-" + "9f8e7d6c5b4a"
SECRET = "whsec-" + "0a1b2c3d4e5f"


def _cluster(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", DDL)
    return cl


def _sql(cl, statements):
    """Each statement in its own transaction."""
    conn = cl.connect("src")
    with conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
    conn.close()


def _post(url, body, timeout=10):
    """(status, headers) of a POST; raises OSError when there is no answer.
    The whole answer is read: the receiver records a request as answered only
    once its body went out, and the next control command may close the
    connection of a client that left after the headers."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return resp.status, resp.headers
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, e.headers


def _env(table, row, commit, idx, op="c"):
    schema, _, name = table.partition(".")
    return {"before": None, "after": row, "op": op,
            "source": {"schema": schema, "table": name, "txId": commit, "lsn": commit + idx},
            "transaction": {"id": "%d:%d" % (commit, commit), "total_order": idx + 1,
                            "data_collection_order": idx + 1}}


def test_receiver_and_checkers(ctx):
    """The tools the other tests judge with (no cdc needed): the receiver does
    what its control API says, and the per-key order checks reject
    misordered input."""
    recv = h.Receiver(ctx).start()
    url = recv.url()
    assert _post(url, {"after": {"id": 1}})[0] == 200
    recv.control(fail={"status": 503, "count": 2, "retry_after": "7"})
    got = [_post(url, {"after": {"id": 2}}) for _ in range(3)]
    assert [g[0] for g in got] == [503, 503, 200], [g[0] for g in got]
    assert got[0][1]["Retry-After"] == "7"
    recv.control(reject={"key": 5, "table": "public.items"})
    items5 = {"source": {"schema": "public", "table": "items"}, "after": {"id": 5}}
    other5 = {"source": {"schema": "public", "table": "pairs"}, "after": {"id": 5}}
    assert _post(url, items5)[0] == 400
    assert _post(url, [other5, {"source": items5["source"], "before": {"id": 5}}])[0] == 400
    assert _post(url, [other5, {"source": items5["source"], "after": {"id": 6}}])[0] == 200
    recv.control(reject={"key": {"a": 1, "b": 2}, "status": 422})
    assert _post(url, {"source": {}, "after": {"a": 1, "b": 2, "v": "x"}})[0] == 422
    assert _post(url, {"source": {}, "after": {"a": 1, "b": 3}})[0] == 200
    recv.control(normal=True, refuse={"seconds": 1})
    t0 = time.time()
    try:
        _post(url, {"after": {"id": 3}})
        raise AssertionError("the receiver answered while refusing")
    except OSError:
        pass
    h.wait_for(lambda: time.time() > t0 + 1.05, 5, "the refusal to end", interval=0.05)
    assert _post(url, {"after": {"id": 3}})[0] == 200
    recv.control(hang={"seconds": 1})
    try:
        _post(url, {"after": {"id": 4}}, timeout=0.3)
        raise AssertionError("the receiver answered while hanging")
    except OSError:
        pass
    recv.control(normal=True, delay=0.3)  # normal ends the hang at once
    t0 = time.time()
    assert _post(url, {"after": {"id": 4}})[0] == 200
    assert time.time() - t0 >= 0.29
    recs = recv.records()
    assert [r["status"] for r in recs] == \
        [200, 503, 503, 200, 400, 400, 200, 422, 200, 200, None, 200], [r["status"] for r in recs]
    assert recs[10]["final"] and recs[0]["headers"]["content-type"] == "application/json"
    assert recs[7]["body"]["after"] == {"a": 1, "b": 2, "v": "x"}
    assert recv.stats()["requests"] == len(recs)

    metas = {"public.items": types.SimpleNamespace(key=["id"])}
    a0, a1 = _env("public.items", {"id": 1}, 100, 0), _env("public.items", {"id": 1}, 100, 1)
    b0 = _env("public.items", {"id": 2}, 90, 0)
    assert h.check_per_key_order([a0, b0, a1], metas, "t") == 2
    assert h.count_inversions([a0, b0, a1]) == 1
    for bad in ([a1, a0], [a0, b0, a0]):
        try:
            h.check_per_key_order(bad, metas, "t")
        except AssertionError:
            continue
        raise AssertionError("check_per_key_order accepted %s" % [h.envelope_position(e) for e in bad])
    assert h.idempotency_key("p", "s", a1) == "p:s:100:1"


def test_requests_and_envelopes(ctx):
    cl = _cluster(ctx)
    recv = h.Receiver(ctx).start()
    out = ctx.tmpdir("out")
    jsonl = out + "/events.jsonl"
    sinks = [
        h.file_sink(jsonl),
        h.webhook_sink(recv.url("/one"), sink_id="one", auth_token=TOKEN, signing_secret=SECRET,
                       headers={"X-Team": "data", "X-Trace": "on"}, batch_size=1),
        h.webhook_sink(recv.url("/batch"), sink_id="batch", method="PUT", batch_size=4,
                       max_in_flight=2),
    ]
    cdc = ctx.cdc(h.pipeline_config(cl, TABLES, sinks, pipeline_id="wh", slot="wh_slot",
                                    publication="wh_pub"),
                  h.platform_config(ctx.tmpdir("state"), partitions=4),
                  cluster=cl, secrets_=[TOKEN, SECRET])
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    _sql(cl, [
        "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 40) g",
        "INSERT INTO pairs SELECT g % 5, g, 'p' FROM generate_series(1, 20) g",
        "UPDATE items SET n = n + 1 WHERE id % 3 = 0",
        "UPDATE items SET v = E'line\\nbreak \"quoted\" é' WHERE id = 7",
        "UPDATE items SET id = 1000 WHERE id = 8",
        "DELETE FROM items WHERE id BETWEEN 30 AND 35",
        "UPDATE pairs SET v = 'q' WHERE a = 2",
        "DELETE FROM pairs WHERE a = 4",
        "UPDATE items SET n = n + 10 WHERE id < 10",
    ])
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)

    txns = oracle.read(TABLES, stop)
    src = cl.connect("src")
    metas = {t: h.TableMeta(src, t) for t in TABLES}
    records = h.read_jsonl(jsonl)
    n = h.check_jsonl_against_oracle(records, txns, pipeline_id="wh")
    with open(jsonl, encoding="utf-8") as f:
        line_of = {h.rec_key(r): line.rstrip("\n") for r, line in zip(records, f)}
    got = recv.records(raw=True)
    assert all(r["status"] == 200 for r in got), "the receiver answered something else than 200"

    # sink "one": one POST per change, the body is exactly the file's line
    one = [r for r in got if r["path"] == "/one"]
    deliveries = h.webhook_deliveries(one)
    h.check_webhook_against_oracle([e for _, e in deliveries], txns, pipeline_id="wh")
    assert len(one) == n, "sink one sent %d requests for %d changes" % (len(one), n)
    for rec in one:
        env = rec["body"]
        where = "request %d (%s)" % (rec["seq"], h.short(rec["raw"], 100))
        assert rec["method"] == "POST", "%s: method %s" % (where, rec["method"])
        assert isinstance(env, dict), "%s: body is not one envelope" % where
        assert rec["raw"] == line_of[h.rec_key(env)], \
            "%s: body differs from the file's envelope:\n  %s\n  %s" % (
                where, h.short(rec["raw"], 300), h.short(line_of[h.rec_key(env)], 300))
        want = {
            "content-type": "application/json",
            "x-team": "data",
            "x-trace": "on",
            "authorization": "Bearer " + TOKEN,
            "idempotency-key": h.idempotency_key("wh", "one", env),
            "x-cdc-event-count": "1",
            "x-cdc-topic": "cdc." + h.rec_table(env),
            "x-cdc-signature": h.hmac_signature(SECRET, rec["raw"]),
        }
        for k, v in want.items():
            assert rec["headers"].get(k) == v, "%s: header %s is %r, want %r" % (
                where, k, rec["headers"].get(k), v)
    keys = h.check_per_key_order([e for _, e in deliveries], metas, "sink one")
    ctx.log("sink one: %d requests, one per change, headers and signatures right, %d keys in "
            "order" % (len(one), keys))

    # sink "batch": PUT arrays of at most 4, in per-key order
    batch = [r for r in got if r["path"] == "/batch"]
    deliveries = h.webhook_deliveries(batch)
    h.check_webhook_against_oracle([e for _, e in deliveries], txns, pipeline_id="wh")
    sizes = []
    for rec in batch:
        body = rec["body"]
        where = "request %d" % rec["seq"]
        assert rec["method"] == "PUT", "%s: method %s" % (where, rec["method"])
        assert isinstance(body, list) and 1 <= len(body) <= 4, \
            "%s: body is not an array of 1..4 envelopes: %s" % (where, h.short(rec["raw"], 200))
        hd = rec["headers"]
        assert hd.get("x-cdc-event-count") == str(len(body)), where
        assert hd.get("idempotency-key") == h.idempotency_key("wh", "batch", body), where
        assert ("x-cdc-topic" in hd) == (len(body) == 1), "%s: X-CDC-Topic %r" % (
            where, hd.get("x-cdc-topic"))
        assert "authorization" not in hd and "x-cdc-signature" not in hd, where
        sizes.append(len(body))
    h.check_per_key_order([e for _, e in deliveries], metas, "sink batch")
    assert max(sizes) > 1, "sink batch never sent more than one envelope per request"
    ctx.log("sink batch: %d requests for %d changes (largest %d)" % (len(batch), n, max(sizes)))


# --------------------------------------------------------------------------
# retries and the dead-letter queue

MAX_ATTEMPTS = 4
RETRY = {"max_attempts": MAX_ATTEMPTS, "initial_wait_seconds": 0.2, "max_wait_seconds": 1.0,
         "multiplier": 2.0, "jitter": False}
# backoff before attempt k+1 after k failures (no jitter): 0.2, 0.4, 0.8, 1.0, ...
BACKOFF = [min(0.2 * 2 ** i, 1.0) for i in range(20)]
SLACK = 0.05  # seconds of timing tolerance


class Phases:
    """One `cdc run --stop-at-lsn` per phase: steer the receiver, write, run
    until everything is delivered or dead-lettered, and return what the
    receiver saw for exactly this phase's changes."""

    def __init__(self, ctx, cl, cdc, recv, oracle):
        self.ctx, self.cl, self.cdc, self.recv, self.oracle = ctx, cl, cdc, recv, oracle
        self.seen = 0
        self.dlq = 0

    def run(self, name, control, statements):
        self.recv.control(normal=True)
        if control:
            self.recv.control(**control)
        t0 = time.time()
        start = h.lsn_to_int(self.cl.current_lsn("src"))
        _sql(self.cl, statements)
        stop = self.cl.current_lsn("src")
        res = self.cdc.run_to(stop, timeout=120)
        txns = [t for t in self.oracle.read(TABLES, stop) if t.end_lsn > start]
        recs = self.recv.records()
        new, self.seen = recs[self.seen:], len(recs)
        changes = h.Oracle.flatten(txns)
        assert changes, "%s: the workload changed nothing" % name
        keys = {c.key() for c in changes}
        stray = [r for r in new for e in h.record_envelopes(r) if h.rec_key(e) not in keys]
        assert not stray, "%s: the receiver got changes of other phases: %s" % (
            name, h.short(json.dumps(stray[0]["body"]), 300))
        per = {}
        for r in new:
            for e in h.record_envelopes(r):
                per.setdefault(h.rec_key(e), []).append(r)
        missing = [c for c in changes if c.key() not in per]
        assert not missing, "%s: %d changes never reached the receiver, e.g. %s" % (
            name, len(missing), missing[:3])
        self.ctx.log("%s: %d changes, %d requests, cdc ran %.1fs" % (
            name, len(changes), len(new), res.duration))
        return changes, new, per, t0

    def dlq_count(self):
        return len(h.dlq_entries(self.cdc, sink="hook"))


def _pos_text(env):
    commit, idx = h.envelope_position(env)
    return "%s:%d" % (h.int_to_lsn(commit), idx)


def _statuses(recs):
    return [r["status"] for r in recs]


def _ok(recs):
    return [r for r in recs if r["status"] is not None and 200 <= r["status"] < 300]


def _check_gaps(name, recs, waits):
    """Attempt i+1 arrives at least waits[i] after attempt i was answered (or
    arrived, if never answered)."""
    for i, (a, b) in enumerate(zip(recs, recs[1:])):
        t = a["answered"] or a["time"]
        assert b["time"] - t >= waits[i] - SLACK, \
            "%s: attempt %d came %.3fs after attempt %d ended; the backoff is %.3fs" % (
                name, i + 2, b["time"] - t, i + 1, waits[i])


def test_retries_and_dead_letters(ctx):
    cl = _cluster(ctx)
    recv = h.Receiver(ctx).start()
    cdc = ctx.cdc(h.pipeline_config(cl, TABLES,
                                    [h.webhook_sink(recv.url(), retry=RETRY, timeout_seconds=1.0,
                                                    max_in_flight=4)],
                                    pipeline_id="rt", slot="rt_slot", publication="rt_pub"),
                  h.platform_config(ctx.tmpdir("state"), partitions=4),
                  cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    ph = Phases(ctx, cl, cdc, recv, oracle)
    dead = {}  # oracle key -> (error class, HTTP status, attempts, position text)

    # 1. a few 5xx and a 408, fewer than max_attempts in all: every change is
    #    delivered exactly once, after exactly 3 extra requests
    changes, recs, per, _ = ph.run("transient 500/500/408", {"fail": [
        {"status": 500, "count": 2}, {"status": 408, "count": 1}]},
        ["INSERT INTO items VALUES (%d, 'a')" % i for i in range(1, 13)] +
        ["UPDATE items SET n = n + 1 WHERE id IN (2, 5, 9)"])
    assert sorted(_statuses(recs)) == sorted([200] * len(changes) + [500, 500, 408]), \
        "want %d deliveries and 3 failures, got statuses %s" % (len(changes), _statuses(recs))
    for k, rs in per.items():
        assert len(_ok(rs)) == 1, "change %s delivered %d times" % (k, len(_ok(rs)))
        _check_gaps("change %s" % (k,), rs, BACKOFF)
    assert ph.dlq_count() == 0, "transient failures were dead-lettered"

    # 2. 429 with Retry-After (seconds, then an HTTP-date): the advice is
    #    longer than the backoff and must be waited out
    at = int(time.time()) + 3
    changes, recs, per, t0 = ph.run("429 + Retry-After", {"fail": [
        {"status": 429, "count": 2, "retry_after": "1"},
        {"status": 429, "count": 1, "retry_after": email.utils.formatdate(at, usegmt=True)}]},
        ["INSERT INTO items VALUES (%d, 'b')" % i for i in range(20, 26)])
    assert sorted(_statuses(recs)) == sorted([200] * len(changes) + [429] * 3), _statuses(recs)
    assert [r["retry_after"] for r in recs if r["status"] == 429][-1].endswith("GMT")
    for k, rs in per.items():
        assert len(_ok(rs)) == 1, "change %s delivered %d times" % (k, len(_ok(rs)))
        for a, b in zip(rs, rs[1:]):
            ra = a["retry_after"]
            wait = float(ra) if ra.isdigit() else at - a["answered"]
            assert b["time"] - a["answered"] >= max(wait, BACKOFF[0]) - SLACK, \
                "change %s retried %.2fs after a 429 with Retry-After: %s" % (
                    k, b["time"] - a["answered"], ra)
    assert ph.dlq_count() == 0, "429s were dead-lettered"

    # 3. 503 for max_attempts requests in a row: dead-lettered after exactly
    #    max_attempts attempts, with the backoff between them
    changes, recs, per, _ = ph.run("503 until retries run out", {"fail": {
        "status": 503, "count": MAX_ATTEMPTS}}, ["INSERT INTO items VALUES (500, 'dead')"])
    assert len(changes) == 1
    assert _statuses(recs) == [503] * MAX_ATTEMPTS, \
        "want %d attempts answered 503, got %s" % (MAX_ATTEMPTS, _statuses(recs))
    _check_gaps("item 500", recs, BACKOFF)
    assert ph.dlq_count() == 1, "the change was not dead-lettered after %d attempts" % MAX_ATTEMPTS
    dead[changes[0].key()] = ("retryable", 503, MAX_ATTEMPTS, _pos_text(recs[0]["body"]))

    # 4. the receiver hangs past the timeout more than max_attempts times:
    #    unreachable, retried until it answers, never dead-lettered
    changes, recs, per, t0 = ph.run("hang 9s (timeout 1s)", {"hang": {"seconds": 9}},
                                    ["INSERT INTO items VALUES (600, 'late')"])
    hung = [r for r in recs if r["status"] is None]
    assert len(hung) >= MAX_ATTEMPTS and len(recs) == len(hung) + 1 and recs[-1]["status"] == 200, \
        "want >= %d unanswered attempts then one delivery, got %s" % (MAX_ATTEMPTS, _statuses(recs))
    assert recs[-1]["time"] >= t0 + 9 - SLACK
    assert ph.dlq_count() == 1, "a timeout was dead-lettered"

    # 5. connections refused for 5 s: retried until it listens again
    changes, recs, per, t0 = ph.run("refuse 5s", {"refuse": {"seconds": 5}},
                                    ["INSERT INTO items VALUES (700, 'refused')"])
    assert _statuses(recs) == [200], "want one delivery, got %s" % _statuses(recs)
    assert recs[0]["time"] >= t0 + 5 - SLACK, "delivered while refusing?"
    assert ph.dlq_count() == 1, "a refused connection was dead-lettered"

    # 6. one key rejected with 400: each of its changes dead-lettered at the
    #    first answer, every other change delivered once, in per-key order
    changes, recs, per, _ = ph.run("reject id 77 with 400", {
        "reject": {"key": 77, "table": "public.items"}}, [
        "INSERT INTO items SELECT g, 'k' FROM generate_series(70, 80) g",
        "UPDATE items SET n = n + 1 WHERE id IN (75, 77)",
        "UPDATE items SET v = 'again' WHERE id = 77",
        "INSERT INTO pairs VALUES (77, 1, 'not items')",
        "INSERT INTO items VALUES (81, 'after')",
    ])
    src = cl.connect("src")
    metas = {t: h.TableMeta(src, t) for t in TABLES}
    poison = [k for k, rs in per.items()
              if any(h.rec_table(e) == "public.items" and (e.get("after") or e.get("before"))["id"] == 77
                     for r in rs for e in h.record_envelopes(r))]
    assert len(poison) == 3, "want 3 changes of items 77, found %d" % len(poison)
    for k, rs in per.items():
        if k in poison:
            assert _statuses(rs) == [400], "rejected change %s: statuses %s, want one 400" % (
                k, _statuses(rs))
            dead[k] = ("permanent", 400, 1, _pos_text(rs[0]["body"]))
        else:
            assert _statuses(rs) == [200], "change %s: statuses %s, want one 200" % (k, _statuses(rs))
    h.check_per_key_order([e for _, e in h.webhook_deliveries(recs)], metas, "webhook")
    entries = h.dlq_entries(cdc, sink="hook")
    assert len(entries) == 4, "want 4 pending dead-letter entries, got:\n%s" % "\n".join(
        e["line"] for e in entries)

    # what `dlq show` says about each
    by_id = {}
    for e in entries:
        text = h.dlq_show(cdc, e["id"]).stdout
        hits = [k for k, d in dead.items() if d[3] in text]
        assert len(hits) == 1, "dlq show %d names none of the dead-lettered positions %s:\n%s" % (
            e["id"], [d[3] for d in dead.values()], text)
        cls, status, attempts, _ = dead[hits[0]]
        by_id[e["id"]] = hits[0]
        assert "HTTP %d" % status in text, "dlq show %d does not quote the HTTP %d answer:\n%s" % (
            e["id"], status, text)
        assert cls in text, "dlq show %d lacks the error class %s:\n%s" % (e["id"], cls, text)
        m = re.search(r"attempts\D{0,20}?(\d+)", text)
        assert m and int(m.group(1)) == attempts, "dlq show %d: want %d attempts:\n%s" % (
            e["id"], attempts, text)
    assert set(by_id.values()) == set(dead)
    ctx.log("dead-letter queue: %d entries, as predicted" % len(entries))

    # 7. replay: the receiver accepts everything again; each dead-lettered
    #    change is delivered exactly once more, and nothing stays pending
    recv.control(normal=True)
    before = len(recv.records())
    first = min(by_id)
    r = h.dlq_replay(cdc, entry_id=first)
    assert r.rc == 0, r.describe()
    got = recv.records()[before:]
    assert _statuses(got) == [200], "replay --id %d: statuses %s" % (first, _statuses(got))
    assert h.rec_key(got[0]["body"]) == by_id[first], "replay --id %d sent another change" % first
    assert len(h.dlq_entries(cdc, sink="hook")) == 3
    r = h.dlq_replay(cdc, sink="hook")
    assert r.rc == 0, r.describe()
    got = recv.records()[before:]
    assert _statuses(got) == [200] * 4, "replay: statuses %s" % _statuses(got)
    replayed = {h.rec_key(r["body"]): r for r in got}
    assert set(replayed) == set(dead), "replayed %s, dead-lettered %s" % (
        sorted(replayed), sorted(dead))
    for k, rec in replayed.items():
        first_try = [x for x in recv.records()[:before] for e in h.record_envelopes(x)
                     if h.rec_key(e) == k][0]
        assert rec["headers"]["idempotency-key"] == first_try["headers"]["idempotency-key"], \
            "the replay of %s carries another Idempotency-Key" % (k,)
        assert rec["body"] == first_try["body"] or \
            {x: y for x, y in rec["body"].items() if not x.startswith("ts_")} == \
            {x: y for x, y in first_try["body"].items() if not x.startswith("ts_")}, \
            "the replay of %s is not the same envelope" % (k,)
    assert h.dlq_entries(cdc, sink="hook") == [], "entries still pending after the replay"
    everything = h.dlq_entries(cdc, include_resolved=True)
    assert len(everything) == 4 and all(e["status"] == "resolved" for e in everything), \
        "after the replay `dlq list --all` shows:\n%s" % "\n".join(e["line"] for e in everything)
    r = h.dlq_replay(cdc, sink="hook")
    assert r.rc == 0, r.describe()
    assert len(recv.records()) == before + 4, "a second replay sent something again"

    # over the whole test: every change delivered exactly once
    stop = cl.current_lsn("src")
    txns = oracle.read(TABLES, stop)
    deliveries = h.webhook_deliveries(recv.records())
    n = h.check_webhook_against_oracle([e for _, e in deliveries], txns, pipeline_id="rt")
    ctx.log("all %d changes delivered exactly once (4 of them by the replay)" % n)


# --------------------------------------------------------------------------
# a backlog held in a lane


def test_lane_backlog_drains_without_idling(ctx):
    """Once the log is read to its end, what a lane still holds goes out
    request after request: the runner waits for the log only when it has
    nothing to send.  (It once waited 50 ms for new changes before each
    request of a lane whose log was read: these 300 requests took 15 s, not
    1.)  The test judges the pauses between one answer and the next
    request, not the total time."""
    cl = _cluster(ctx)
    recv = h.Receiver(ctx).start()
    hook = h.webhook_sink(recv.url("/lane"), batch_size=10)
    hook["ordering"] = "transaction"  # one lane: the requests follow one another
    cdc = ctx.cdc(h.pipeline_config(cl, TABLES, [hook], pipeline_id="ln", slot="ln_slot",
                                    publication="ln_pub"),
                  h.platform_config(ctx.tmpdir("state")),
                  cluster=cl)
    cdc.deploy().expect_rc(0)
    rows = 3000
    _sql(cl, ["INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, %d) g" % rows])
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)

    recs = recv.records()
    ids = sorted(e["after"]["id"] for _, e in h.webhook_deliveries(recs))
    assert ids == list(range(1, rows + 1)), "the receiver got %d of %d rows" % (len(ids), rows)
    assert len(recs) == rows // 10, "%d requests for %d rows in tens" % (len(recs), rows)
    gaps = sorted(b["time"] - a["answered"] for a, b in zip(recs, recs[1:]))
    long = [g for g in gaps if g >= 0.04]
    ctx.log("%d requests; from one answer to the next request: median %.2f ms, slowest %.1f ms, "
            "%d of 40 ms or more" % (len(recs), 1000 * gaps[len(gaps) // 2], 1000 * gaps[-1],
                                     len(long)))
    assert len(long) <= len(gaps) // 20, \
        "the runner paused 40 ms or more before %d of %d requests (the longest %.0f ms) with " \
        "the lane's backlog ready" % (len(long), len(gaps), 1000 * gaps[-1])
