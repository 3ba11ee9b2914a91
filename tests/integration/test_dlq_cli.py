"""`cdc dlq list|show|replay|purge` against a state store filled by the
dlq_seed helper (built by `make helpers` next to the cdc binary under test),
which dead-letters realistic change events as a sink thread would and prints
each stored entry with its envelope.

The file sink case checks that replay appends exactly the stored envelopes,
marks them resolved (read back with Python's own sqlite3, not through cdc)
and that a second replay does nothing; it also covers the listing formats,
the sink filter, unknown and disabled sinks, a corrupted stored event, purge
semantics and usage errors.  The PostgreSQL case replays into a `replica`
sink while `cdc run` of the same pipeline is running, and checks that the
rows arrive with the envelope's values and that the sink's checkpoint row is
untouched."""

import json
import os
import sqlite3

import harness as h

SECRET = "Dlq-S3cret-pw-never-printed"


def seed(ctx, db_path, sink_id, n, *args):
    """Dead-letters n events for sink_id; returns the entries it printed."""
    out = h.dlq_seed(db_path, sink_id, n, *args)
    ctx.log("seeded %d entries for %s: ids %s" % (n, sink_id, [e["id"] for e in out]))
    return out


def entry_rows(db_path):
    """id -> (sink_id, status, resolved_us), read with Python's sqlite3."""
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return {r[0]: r[1:] for r in
                conn.execute("SELECT id, sink_id, status, resolved_us FROM dlq ORDER BY id")}
    finally:
        conn.close()


def listed(res):
    """(entry lines split into columns, the count line) of `dlq list`."""
    lines = res.stdout.splitlines()
    entries = [l.split() for l in lines if l.split() and l.split()[0].isdigit()]
    rest = [l for l in lines if not (l.split() and l.split()[0].isdigit())]
    assert len(rest) == 1, "expected exactly one count line:\n%s" % res.stdout
    return entries, rest[0]


def file_pipeline(out_dir, state_dir):
    pipeline = {
        "pipeline_id": "dlqt",
        "source": {
            "host": "127.0.0.1", "port": 1, "database": "shop", "username": "cdc",
            "password": SECRET, "tables": ["public.items"], "snapshot_mode": "never",
        },
        "sinks": [
            h.file_sink(os.path.join(out_dir, "main.jsonl"), "jsonl"),
            h.file_sink(os.path.join(out_dir, "other.jsonl"), "other"),
            dict(h.file_sink(os.path.join(out_dir, "off.jsonl"), "off"), enabled=False),
        ],
    }
    return pipeline, h.platform_config(state_dir)


def test_file_sink_list_show_replay_purge(ctx):
    out = ctx.tmpdir("out")
    state = ctx.tmpdir("state")
    pipeline, platform = file_pipeline(out, state)
    cdc = ctx.cdc(pipeline, platform, secrets_=[SECRET])
    db_path = os.path.join(state, "dlqt", "state.db")
    main_file = os.path.join(out, "main.jsonl")
    other_file = os.path.join(out, "other.jsonl")

    def dlq(*args, rc=0):
        res = cdc.command(["dlq"] + list(args[:1]) + [cdc.pipeline_path] + list(args[1:])
                          + cdc.platform_args(), timeout=60)
        return res.expect_rc(rc)

    # No state file yet: nothing to list or replay, and nothing is created.
    r = dlq("list")
    assert "no dead-letter entries" in r.stdout, r.describe()
    r = dlq("replay")
    assert "no dead-letter entries" in r.stdout, r.describe()
    assert not os.path.exists(db_path), "list/replay created the state file"
    dlq("show", "1", rc=2)

    main = seed(ctx, db_path, "jsonl", 5, "--pipeline", "dlqt", "--db", "shop")
    other = seed(ctx, db_path, "other", 2, "--pipeline", "dlqt", "--db", "shop",
                 "--first-id", 100, "--lsn", "0/5000000", "--ops", "insert")
    gone = seed(ctx, db_path, "gone", 1, "--first-id", 200)
    off = seed(ctx, db_path, "off", 1, "--first-id", 300)
    by_id = {e["id"]: (sink, e) for sink, es in
             (("jsonl", main), ("other", other), ("gone", gone), ("off", off)) for e in es}

    # list: one line per pending entry, id first, oldest first, with the
    # row's table and key; a count line.
    entries, count = listed(dlq("list"))
    assert [int(e[0]) for e in entries] == sorted(by_id), entries
    for cols in entries:
        sink, e = by_id[int(cols[0])]
        assert cols[1] == sink and cols[2] == e["position"], (cols, sink, e["position"])
        assert cols[3] == "public.items" and cols[4] == e["envelope"]["op"], cols
        assert json.loads(cols[5]) == e["key"], (cols, e["key"])
        assert "pending" in cols, cols
    assert count == "entries: %d pending" % len(by_id), count
    entries, count = listed(dlq("list", "--sink", "jsonl"))
    assert [int(e[0]) for e in entries] == [e["id"] for e in main], entries

    # list --json: one object per line, nothing else.
    r = dlq("list", "--json")
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert [o["id"] for o in objs] == sorted(by_id), r.stdout
    for o in objs:
        sink, e = by_id[o["id"]]
        assert o["sink_id"] == sink and o["position"] == e["position"], o
        assert o["status"] == "pending" and o["resolved_us"] is None, o
        assert o["op"] == e["envelope"]["op"] and o["topic"] == "cdc.public.items", o
        assert o["table"] == "public.items" and o["key"] == e["key"], (o, e["key"])
        assert o["error"] and o["error_class"] in ("permanent", "retryable"), o

    # show: the entry with its key and value.
    first = main[0]
    r = dlq("show", str(first["id"]))
    assert "pending" in r.stdout and first["position"] in r.stdout, r.stdout
    assert json.dumps(first["key"], separators=(",", ":")) in r.stdout, r.stdout
    assert "seeded failure" in r.stdout, r.stdout
    value = r.stdout[r.stdout.index("\nvalue"):].split("\n", 2)[2]
    assert json.loads(value) == first["envelope"], "show's value is not the stored envelope"
    dlq("show", "99999", rc=2)
    dlq("show", "abc", rc=2)

    # replay one sink: exactly its envelopes appended, in order; resolved.
    r = dlq("replay", "--sink", "jsonl")
    for e in main:
        assert "replayed id %d to jsonl" % e["id"] in r.stdout, r.describe()
    records = h.read_jsonl(main_file)
    assert records == [e["envelope"] for e in main], \
        "the file does not hold exactly the dead-lettered envelopes:\n%s" % records
    rows = entry_rows(db_path)
    for e in main:
        assert rows[e["id"]][1] == "resolved" and rows[e["id"]][2] > 0, rows[e["id"]]
    for sink, es in (("other", other), ("gone", gone), ("off", off)):
        for e in es:
            assert rows[e["id"]][1] == "pending", (sink, rows[e["id"]])
    assert not os.path.exists(other_file), "replay --sink jsonl wrote to another sink"
    ctx.log("replayed %d envelopes into the file, resolved" % len(main))

    # A second replay of that sink does nothing.
    size = os.path.getsize(main_file)
    r = dlq("replay", "--sink", "jsonl")
    assert "replayed id" not in r.stdout, r.describe()
    assert os.path.getsize(main_file) == size, "a second replay changed the file"

    # Replay everything: other succeeds; an unknown and a disabled sink fail
    # (exit 1, one error line each, entries stay pending).
    r = dlq("replay", rc=1)
    assert h.read_jsonl(other_file) == [e["envelope"] for e in other]
    errs = r.error_lines
    assert len(errs) == 2, r.describe()
    assert any("gone" in l for l in errs) and any("off" in l and "disabled" in l for l in errs), errs
    assert not os.path.exists(os.path.join(out, "off.jsonl")), "a disabled sink was written"
    assert os.path.getsize(main_file) == size
    rows = entry_rows(db_path)
    assert rows[gone[0]["id"]][1] == "pending" and rows[off[0]["id"]][1] == "pending", rows

    # A corrupted stored event: one clear error, no crash, stays pending.
    bad = seed(ctx, db_path, "jsonl", 1, "--first-id", 400)[0]
    conn = sqlite3.connect(db_path, timeout=10)
    conn.execute("UPDATE dlq SET event = x'4345563101' WHERE id = ?", (bad["id"],))
    conn.commit()
    conn.close()
    r = dlq("replay", "--id", str(bad["id"]), rc=1)
    assert len(r.error_lines) == 1 and "decoded" in r.error_lines[0], r.describe()
    assert os.path.getsize(main_file) == size
    r = dlq("show", str(bad["id"]))
    assert "cannot be decoded" in r.stdout, r.stdout
    assert entry_rows(db_path)[bad["id"]][1] == "pending"

    # Already resolved with --id: nothing to do.
    r = dlq("replay", "--id", str(main[0]["id"]))
    assert "already resolved" in r.stdout and os.path.getsize(main_file) == size, r.describe()

    # list --all shows resolved entries too.
    entries, count = listed(dlq("list", "--all"))
    assert len(entries) == len(by_id) + 1, entries
    assert count == "entries: %d (%d pending, %d resolved)" % (
        len(by_id) + 1, 3, len(main) + len(other)), count
    assert sum("resolved" in e for e in entries) == len(main) + len(other), entries

    # purge: refuses without --yes, then deletes resolved only, then all.
    r = dlq("purge", rc=2)
    assert r.error_lines and "--yes" in r.stderr, r.describe()
    assert len(entry_rows(db_path)) == len(by_id) + 1
    r = dlq("purge", "--yes")
    assert "deleted %d" % (len(main) + len(other)) in r.stdout, r.stdout
    left = entry_rows(db_path)
    assert sorted(left) == sorted([gone[0]["id"], off[0]["id"], bad["id"]]), left
    dlq("purge", "--all", rc=2)
    r = dlq("purge", "--all", "--yes")
    assert "deleted 3" in r.stdout, r.stdout
    assert entry_rows(db_path) == {}
    r = dlq("list", "--all")
    assert "no dead-letter entries" in r.stdout, r.stdout


def test_reading_the_queue_needs_no_passwords(ctx):
    """list, show and purge read the state store only: a password variable
    missing from the environment does not stop them (nor is it printed);
    replay, which delivers, still needs it and names it."""
    out = ctx.tmpdir("out")
    state = ctx.tmpdir("state")
    pipeline, platform = file_pipeline(out, state)
    pipeline["source"]["password"] = "${CDC_TEST_SOURCE_PASSWORD}"
    cdc = ctx.cdc(pipeline, platform, secrets_=[SECRET])
    cdc.env.pop("CDC_TEST_SOURCE_PASSWORD", None)
    db_path = os.path.join(state, "dlqt", "state.db")
    seeded = seed(ctx, db_path, "jsonl", 2, "--pipeline", "dlqt", "--db", "shop")
    p, pl = cdc.pipeline_path, cdc.platform_args()
    r = cdc.command(["dlq", "list", p, "--json"] + pl).expect_rc(0)
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert [(o["id"], o["table"], o["key"]) for o in objs] == \
        [(e["id"], "public.items", e["key"]) for e in seeded], r.stdout
    r = cdc.command(["dlq", "show", p, str(seeded[0]["id"])] + pl).expect_rc(0)
    assert "public.items" in r.stdout, r.stdout
    cdc.command(["dlq", "purge", p, "--yes"] + pl).expect_rc(0)
    r = cdc.command(["dlq", "replay", p] + pl).expect_rc(2)
    assert any("CDC_TEST_SOURCE_PASSWORD" in l for l in r.error_lines), r.describe()
    assert len(entry_rows(db_path)) == 2, "purge --yes deleted pending entries"


def test_usage_errors(ctx):
    out = ctx.tmpdir("out")
    pipeline, platform = file_pipeline(out, ctx.tmpdir("state"))
    cdc = ctx.cdc(pipeline, platform, secrets_=[SECRET])
    p = cdc.pipeline_path
    pl = cdc.platform_args()
    r = cdc.command(["dlq", "--help"]).expect_rc(0)
    for word in ("list", "show", "replay", "purge", "--sink", "--json"):
        assert word in r.stdout, "dlq --help lacks %s:\n%s" % (word, r.stdout)
    for args in (["dlq"], ["dlq", "frobnicate", p], ["dlq", "list"], ["dlq", "show", p],
                 ["dlq", "show", p, "0"], ["dlq", "show", p, "12x"], ["dlq", "list", p, "extra"],
                 ["dlq", "replay", p, "--json"], ["dlq", "list", p, "--yes"],
                 ["dlq", "replay", p, "--id", "-3"], ["dlq", "replay", p, "--sink", "nosuch"],
                 ["dlq", "purge", p]):
        r = cdc.command(args + pl)
        r.expect_rc(2)
        assert r.error_lines, "`cdc %s` printed no error line: %s" % (" ".join(args), r.describe())


def test_postgres_replica_replay_keeps_checkpoint(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", "CREATE TABLE public.items (id int PRIMARY KEY, name text, "
                      "price numeric(10,2), active boolean, created_at timestamptz, tags text[])")
    state = ctx.tmpdir("state")
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], [h.pg_sink(cl, "replica")],
                                    pipeline_id="dlqpg", slot="dlq_slot", publication="dlq_pub"),
                  h.platform_config(state), cluster=cl)
    cdc.deploy().expect_rc(0)
    src = cl.connect("src")
    with src.cursor() as cur:
        cur.execute("INSERT INTO items VALUES (1, 'streamed', 1.50, true, now(), '{a}')")
    cdc.run_to(cl.current_lsn("src"), timeout=120)
    mirror = cl.connect("mirror")
    h.compare_tables(src, mirror, "public.items")

    def checkpoint():
        return cl.execute("mirror", "SELECT pipeline_id, sink_id, commit_lsn, event_index, "
                                    "updated_at FROM public.cdc_checkpoints ORDER BY 1, 2")

    before = checkpoint()
    assert len(before) == 1 and before[0][2] > 0, "no checkpoint after the run: %s" % before

    # Replay while the pipeline runs (idle: nothing moves its checkpoint).
    proc = cdc.start()
    h.wait_for(lambda: (cl.slot("dlq_slot") or {}).get("active") or proc.poll() is not None,
               60, "cdc run to attach to its slot")
    if proc.poll() is not None:
        raise AssertionError("cdc run exited early; " + proc.result().describe())
    db_path = os.path.join(state, "dlqpg", "state.db")
    seeded = seed(ctx, db_path, "mirror", 3, "--pipeline", "dlqpg", "--db", "src",
                  "--first-id", 1001, "--ops", "insert")
    res = cdc.command(["dlq", "replay", cdc.pipeline_path] + cdc.platform_args(), timeout=120)
    res.expect_rc(0)
    for e in seeded:
        assert "replayed id %d to mirror" % e["id"] in res.stdout, res.describe()
    meta = h.TableMeta(mirror, "public.items")
    rows = {r["id"]: r for r in meta.rows_text(mirror)}
    for e in seeded:
        after = e["envelope"]["after"]
        row = rows.get(str(after["id"]))
        assert row is not None, "replayed row %s missing from the mirror" % after["id"]
        bad = h.row_mismatches(meta, after, row)
        assert not bad, "mirror row %s differs from the envelope: %s" % (after["id"], bad)
    assert checkpoint() == before, "replay moved the checkpoint: %s -> %s" % (before, checkpoint())
    assert all(r[1] == "resolved" for r in entry_rows(db_path).values())
    proc.terminate()
    r = proc.wait(60)
    r.expect_rc(0)
    assert checkpoint() == before, "checkpoint changed: %s -> %s" % (before, checkpoint())
    ctx.log("%d rows replayed into the mirror while cdc run ran; checkpoint unchanged %s"
            % (len(seeded), before[0][2:4]))
