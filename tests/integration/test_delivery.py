"""The delivery engine with a per-key sink (webhook) beside serial ones (file,
PostgreSQL mirror and event log).

test_per_key_order_across_sinks: a random workload on three tables, eight
partitions, a receiver answering after random delays: the webhook gets every
change once, each key's changes in commit order while keys overtake each
other; the file has commit order; the mirror equals the source.

test_webhook_outage: the receiver refuses connections for 30 s and then hangs
for 30 s under a continuous workload, with max_buffered_bytes 16 MiB.  The
file and the mirror keep progressing during the outage, the slot's confirmed
position never passes a change the webhook has not received, cdc's peak RSS
(optimized build) stays below its idle RSS plus the buffer budget, and once
the receiver is back every change reaches it.

test_kill9_with_webhook: test_crash's kill -9 loop with all four sinks and
eight partitions: afterwards the mirror equals the source, the event log
and the file hold every change exactly once, and every change reached the
webhook at least once."""

import os
import random
import time

import harness as h

KILLS = int(os.environ.get("CDC_TEST_KILLS", "20"))
TABLES = h.STANDARD_TABLES


def _setup(ctx, name, webhook, partitions=8, **platform):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    recv = h.Receiver(ctx).start()
    sinks = [h.file_sink(jsonl), h.pg_sink(cl, "replica")]
    if name == "crash":
        sinks.append(h.pg_sink(cl, "events"))
    sinks.append(h.webhook_sink(recv.url(), **webhook))
    slot = name + "_slot"
    cdc = ctx.cdc(h.pipeline_config(cl, TABLES, sinks, pipeline_id=name, slot=slot,
                                    publication=name + "_pub"),
                  h.platform_config(ctx.tmpdir("state"), partitions=partitions, **platform),
                  cluster=cl)
    cdc.deploy().expect_rc(0)
    oracle = h.Oracle(cl, "src").create()
    return cl, src, jsonl, recv, cdc, oracle, slot


def test_per_key_order_across_sinks(ctx):
    cl, src, jsonl, recv, cdc, oracle, slot = _setup(
        ctx, "ord", {"batch_size": 3, "max_in_flight": 8}, partitions=8)
    recv.control(delay=0.03, jitter=True)
    w = ctx.workload(cl, "src", max_txns=500, pause=0, bulk_ratio=0.01)
    ctx.log("seed %d" % w.seed)
    w.start()
    w.join(120)
    w.stop()
    stop = cl.current_lsn("src")
    res = cdc.run_to(stop, timeout=150)
    txns = oracle.read(TABLES, stop)
    assert {t.xid: len(t.changes) for t in txns} == dict(w.committed), \
        "the oracle disagrees with the workload's own count"
    metas = {t: h.TableMeta(src, t) for t in TABLES}

    mirror = cl.connect("mirror")
    for t in TABLES:
        h.compare_tables(src, mirror, t)
    records = h.read_jsonl(jsonl)
    n = h.check_jsonl_against_oracle(records, txns, pipeline_id="ord")
    h.check_per_key_order(records, metas, "file")
    h.check_replay_equals_source(records, src, TABLES)

    got = recv.records()
    assert all(r["status"] == 200 for r in got), "the receiver answered something else than 200"
    envs = [e for _, e in h.webhook_deliveries(got)]
    h.check_webhook_against_oracle(envs, txns, pipeline_id="ord")
    keys = h.check_per_key_order(envs, metas, "webhook")
    inversions = h.count_inversions(envs)
    ctx.log("%d changes in %.1fs: file in commit order, mirror equal, webhook %d requests, %d keys "
            "each in commit order, %d times a later change overtook an earlier one"
            % (n, res.duration, len(got), keys, inversions))
    assert inversions > 0, "the webhook got every change in global commit order: no parallel lanes?"


OUTAGE_REFUSE = 30
OUTAGE_HANG = 30
BUDGET = 16 * 1024 * 1024


def _first_missing(txns, delivered_at, t):
    """The first oracle transaction with a change that had not reached the
    webhook (answered 2xx) by time t, or None."""
    for txn in txns:
        for c in txn.changes:
            when = delivered_at.get(c.key())
            if when is None or when > t:
                return txn
    return None


def test_webhook_outage(ctx):
    cl, src, jsonl, recv, cdc, oracle, slot = _setup(
        ctx, "out", {"batch_size": 10, "max_in_flight": 8, "timeout_seconds": 1.0},
        partitions=8, max_buffered_bytes=BUDGET,
        retry={"max_attempts": 3, "initial_wait_seconds": 0.2, "max_wait_seconds": 2.0,
               "multiplier": 2.0, "jitter": True})
    recv.control(keep_raw=False, strip=["note", "payload"])
    mirror = cl.connect("mirror")

    proc = cdc.start(release=True)
    h.wait_for(lambda: (cl.slot(slot) or {}).get("active"), 30, "cdc to stream")
    time.sleep(3)
    baseline = h.proc_status_kb(proc.pid, "VmRSS")
    assert baseline, "cannot read cdc's RSS"
    ctx.log("idle RSS %.1f MiB" % (baseline / 1024.0))

    # few changes (the receiver must take them all back), many bytes: every
    # account gets a large note, so the outage backlog outgrows the budget
    w = ctx.workload(cl, "src", pause=0.02, big_note_ratio=1.0, bulk_ratio=0.005)
    ctx.log("seed %d" % w.seed)
    first_lsn = h.lsn_to_int(cl.current_lsn("src"))
    w.start()
    time.sleep(5)

    samples = []  # (time, file lines, mirror checkpoint, slot confirmed LSN)

    def sample():
        s = cl.slot(slot)
        samples.append((time.time(), h.count_lines(jsonl),
                        h.sink_checkpoint(mirror, "out", "mirror"),
                        h.lsn_to_int(s["confirmed_flush_lsn"])))

    recv.control(refuse={"seconds": OUTAGE_REFUSE})
    t_out = time.time()
    sample()
    hung = False
    while time.time() < t_out + OUTAGE_REFUSE + OUTAGE_HANG:
        if w.error is not None:
            w.stop()
        if proc.poll() is not None:
            raise AssertionError("cdc exited during the outage; %s" % proc.result().describe())
        if not hung and time.time() >= t_out + OUTAGE_REFUSE:
            recv.control(hang={"seconds": t_out + OUTAGE_REFUSE + OUTAGE_HANG - time.time()})
            hung = True
        time.sleep(2)
        sample()
    recv.control(normal=True)
    t_back = time.time()
    time.sleep(3)
    w.stop()
    stop = cl.current_lsn("src")
    txns = oracle.read(TABLES, stop)
    want = {c.key() for t in txns for c in t.changes}
    ctx.log("workload: %d txns, %d changes, %.0f MiB of WAL; receiver back at +%.0fs" % (
        len(w.committed), w.changes, (h.lsn_to_int(stop) - first_lsn) / 1048576.0, t_back - t_out))

    # the running process catches up by itself
    def caught_up():
        got = {h.rec_key(e) for _, e in h.webhook_deliveries(recv.records())}
        return want <= got

    h.wait_for(caught_up, 60, "the webhook to receive every change after the outage", interval=1)
    ctx.log("webhook caught up %.0fs after the receiver came back" % (time.time() - t_back))
    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    cl.wait_slot_inactive(slot)
    cdc.run_to(stop, timeout=120, release=True)

    # the other sinks progressed during the outage
    first, last = samples[0], samples[-1]
    assert last[1] > first[1], "the file did not grow during the outage (%d lines)" % first[1]
    assert first[2] is not None and last[2] is not None and last[2] > first[2], \
        "the mirror's checkpoint did not move during the outage: %s -> %s" % (first[2], last[2])
    ctx.log("during the outage the file grew %d -> %d lines, the mirror's checkpoint %s -> %s" % (
        first[1], last[1], first[2], last[2]))

    # the slot never passed what the webhook had
    delivered_at = {}
    for rec, env in h.webhook_deliveries(recv.records()):
        k = h.rec_key(env)
        if k not in delivered_at:
            delivered_at[k] = rec["time"]
    behind = 0
    for t, _, _, confirmed in samples:
        txn = _first_missing(txns, delivered_at, t)
        if txn is None:
            continue
        behind += 1
        assert confirmed < txn.end_lsn, \
            "at +%.0fs the slot was confirmed at %s, but transaction %d (ending %s) had not " \
            "reached the webhook" % (t - t_out, h.int_to_lsn(confirmed), txn.xid,
                                      h.int_to_lsn(txn.end_lsn))
    assert behind, "the webhook was never behind during the outage: was there an outage?"

    # every change arrived (at least once), the file and the mirror are exact
    envs = [e for _, e in h.webhook_deliveries(recv.records())]
    n = h.check_webhook_against_oracle(envs, txns, pipeline_id="out", exactly_once=False)
    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="out")
    for t in TABLES:
        h.compare_tables(src, mirror, t)
    ctx.log("all %d changes reached the webhook (%d envelopes in all); file exact, mirror "
            "equal" % (n, len(envs)))

    # memory: the buffer budget on top of the idle process
    peak = res.peak_rss_kb
    ctx.log("peak RSS %.1f MiB = idle %.1f MiB + %.1f MiB (budget %d MiB)" % (
        peak / 1024.0, baseline / 1024.0, (peak - baseline) / 1024.0, BUDGET >> 20))
    assert peak <= baseline + BUDGET // 1024, \
        "peak RSS %.1f MiB exceeds idle %.1f MiB + max_buffered_bytes %d MiB" % (
            peak / 1024.0, baseline / 1024.0, BUDGET >> 20)


def test_kill9_with_webhook(ctx):
    cl, src, jsonl, recv, cdc, oracle, slot = _setup(
        ctx, "crash", {"batch_size": 4, "max_in_flight": 8}, partitions=8)
    recv.control(keep_raw=False, strip=["note", "payload"], delay=0.01, jitter=True)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    w = ctx.workload(cl, "src", seed=seed, pause=0.02, bulk_ratio=0.01)
    ctx.log("seed %d" % seed)
    w.start()
    t0 = time.monotonic()
    proc = cdc.start()
    kills = 0
    while kills < KILLS:
        time.sleep(rng.uniform(0.3, 3.0))
        if w.error is not None:
            w.stop()
        if proc.poll() is not None:
            raise AssertionError("cdc exited on its own during the kill phase (kill %d); %s"
                                 % (kills, proc.result().describe()))
        proc.kill9()
        kills += 1
        cl.wait_slot_inactive(slot)
        proc = cdc.start()
    time.sleep(rng.uniform(0.3, 3.0))
    w.stop()
    if proc.poll() is not None:
        raise AssertionError("cdc exited on its own; %s" % proc.result().describe())
    proc.kill9()
    kills += 1
    ctx.log("%d kills in %.0fs; workload: %d txns, %d changes, %d rolled back" % (
        kills, time.monotonic() - t0, len(w.committed), w.changes, w.rolled_back))
    stop = cl.current_lsn("src")
    cl.wait_slot_inactive(slot)
    res = cdc.run_to(stop, timeout=300)
    ctx.log("final run to %s took %.1fs" % (stop, res.duration))

    txns = oracle.read(TABLES, stop)
    assert {t.xid: len(t.changes) for t in txns} == dict(w.committed), \
        "the oracle disagrees with the workload's own count"
    mirror = cl.connect("mirror")
    for t in TABLES:
        h.compare_tables(src, mirror, t)
    rows = h.read_events(mirror)
    n = h.check_events_against_oracle(rows, txns, pipeline_id="crash")
    records = h.read_jsonl(jsonl)
    h.check_jsonl_against_oracle(records, txns, pipeline_id="crash")
    h.check_replay_equals_source(records, src, TABLES)
    ctx.log("mirror equal; event log and file: all %d changes exactly once" % n)

    got = recv.records()
    deliveries = h.webhook_deliveries(got)
    envs = [e for _, e in deliveries]
    h.check_webhook_against_oracle(envs, txns, pipeline_id="crash", exactly_once=False)
    for rec, env in deliveries:
        if env is h.record_envelopes(rec)[0]:
            want = h.idempotency_key("crash", "hook", rec["body"])
            assert rec["headers"].get("idempotency-key") == want, \
                "request %d: Idempotency-Key %r does not name its changes (%r)" % (
                    rec["seq"], rec["headers"].get("idempotency-key"), want)
    distinct = len({h.rec_key(e) for e in envs})
    ctx.log("webhook: every change at least once (%d envelopes for %d changes, %d requests)" % (
        len(envs), distinct, len(got)))
