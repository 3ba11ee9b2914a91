"""The schema history against a real PostgreSQL.

Every captured table's shape is versioned as the stream shows it: ADD COLUMN
(nullable, and NOT NULL with a default) and a widened type are compatible
versions, DROP, RENAME and a narrowed type incompatible ones; each version
is recorded with the position where it took effect, listed by `cdc schema`
(text and --json, without the database password) and by GET /v1/schema, and
every envelope carries its table's version in source.schema_version.  A
restart re-announcing the same shapes records nothing new.

stop_on_incompatible_schema: true stops the pipeline (exit 1, a message
naming the table, the column and the change) before delivering the first
change of an incompatible version, confirming nothing past it; a restart
with the setting still on stops again; with it off, the run delivers every
change exactly once.  A kill -9 after a version was recorded and before its
first change reached every sink loses and doubles nothing, and the restart
records no further version."""

import json

import harness as h

DDL = """
CREATE TABLE public.items (id int PRIMARY KEY, qty int, name varchar(10), note text,
                           code varchar(20));
"""

# (statements, what the version they make must say: (compatible, [(column, change)]))
STEPS = [
    (["INSERT INTO items VALUES (1, 1, 'a', 'n', 'c1')"], None),
    (["ALTER TABLE items ADD COLUMN extra int",
      "INSERT INTO items (id, qty, name, note, code, extra) VALUES (2, 2, 'b', 'n', 'c2', 2)"],
     (True, [("extra", "added")])),
    (["ALTER TABLE items ADD COLUMN flag boolean NOT NULL DEFAULT false",
      "INSERT INTO items (id, qty, name, note, code) VALUES (3, 3, 'c', 'n', 'c3')"],
     (True, [("flag", "added")])),
    (["ALTER TABLE items ALTER COLUMN qty TYPE bigint, ALTER COLUMN name TYPE varchar(50)",
      "INSERT INTO items (id, qty, name, note, code) VALUES (4, 40000000000, 'dddddddddddd', 'n', 'c4')"],
     (True, [("qty", "widened"), ("name", "widened")])),
    (["ALTER TABLE items DROP COLUMN note",
      "INSERT INTO items (id, qty, name, code) VALUES (5, 5, 'e', 'c5')"],
     (False, [("note", "dropped")])),
    (["ALTER TABLE items RENAME COLUMN code TO sku",
      "INSERT INTO items (id, qty, name, sku) VALUES (6, 6, 'f', 'c6')"],
     (False, [("code", "renamed")])),
    (["UPDATE items SET name = left(name, 5)",
      "ALTER TABLE items ALTER COLUMN name TYPE varchar(5)",
      "INSERT INTO items (id, qty, name, sku) VALUES (7, 7, 'g', 'c7')"],
     (False, [("name", "narrowed")])),
]


def _setup(ctx, name, platform_extra=None, sinks=None):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.execute("src", DDL)
    state = ctx.tmpdir("state")
    jsonl = ctx.tmpdir("out") + "/e.jsonl"
    cdc = ctx.cdc(h.pipeline_config(cl, ["public.items"], sinks or [h.file_sink(jsonl)],
                                    pipeline_id=name, slot=name + "_slot",
                                    publication=name + "_pub"),
                  h.platform_config(state, **(platform_extra or {})), cluster=cl)
    cdc.deploy().expect_rc(0)
    return cl, cdc, state, jsonl


def _schema_json(cdc, *extra):
    """`cdc schema --json` with the password's variable unset."""
    env = dict(cdc.env)
    env.pop("PGPW", None)
    saved, cdc.env = cdc.env, env
    try:
        res = cdc.command(["schema", cdc.pipeline_path, "--json"] + cdc.platform_args() +
                          list(extra), 30).expect_rc(0)
    finally:
        cdc.env = saved
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def _by_id(jsonl):
    """The inserts in the file, by id."""
    out = {}
    for env in h.read_jsonl(jsonl):
        if env.get("op") == "c":
            out.setdefault(env["after"]["id"], []).append(env)
    return out


def test_versions_recorded_classified_listed_and_kept_across_restarts(ctx):
    cl, cdc, state, jsonl = _setup(ctx, "sh1")
    for stmts, _ in STEPS:
        for sql in stmts:
            cl.execute("src", sql)
    res = cdc.run_to(cl.current_lsn("src"), 120)

    # every change once, carrying its table's version
    got = _by_id(jsonl)
    assert sorted(got) == list(range(1, 8)), sorted(got)
    assert all(len(v) == 1 for v in got.values()), "a change was delivered twice"
    assert [got[i][0]["source"]["schema_version"] for i in range(1, 8)] == list(range(1, 8))

    versions = _schema_json(cdc)
    assert [(v["table"], v["version"]) for v in versions] == [("public.items", n) for n in range(1, 8)]
    for v, (_, want) in zip(versions, STEPS):
        if want is None:
            assert v["compatible"] is None and v["changes"] == [], v
            continue
        compatible, changes = want
        assert v["compatible"] is compatible and v["held"] is False, v
        assert [(c["column"], c["change"]) for c in v["changes"]] == changes, v
    # the position is the first change that had the version: the insert of the step
    for v, i in zip(versions, range(1, 8)):
        env = got[i][0]
        commit_lsn = int(json.loads(env["source"]["sequence"])[0])
        assert (v["lsn"], v["index"]) == (commit_lsn, env["transaction"]["total_order"] - 1), \
            (v, env["source"], env["transaction"])
    assert [c["name"] for c in versions[-1]["columns"]] == ["id", "qty", "name", "sku", "extra", "flag"]
    assert versions[3]["changes"][0]["from"] == "integer" and versions[3]["changes"][0]["to"] == "bigint"
    # logged: one schema.version_changed per change, naming the versions
    logged = h.log_events(res.stderr, "schema.version_changed")
    assert [(e["old_version"], e["new_version"], e["compatible"]) for e in logged] == \
        [(str(n), str(n + 1), "true" if n < 4 else "false") for n in range(1, 7)], logged
    assert "dropped" in logged[3]["changes"] and "note" in logged[3]["changes"]

    # the text listing, one table
    env = dict(cdc.env)
    env.pop("PGPW", None)
    saved, cdc.env = cdc.env, env
    try:
        text = cdc.command(["schema", cdc.pipeline_path, "--table", "public.items"] +
                           cdc.platform_args(), 30).expect_rc(0).stdout
        none = cdc.command(["schema", cdc.pipeline_path, "--table", "public.other"] +
                           cdc.platform_args(), 30).expect_rc(0).stdout
    finally:
        cdc.env = saved
    lines = [l for l in text.splitlines() if l.startswith("public.items")]
    assert len(lines) == 7 and "column note dropped" in lines[4] and " no " in lines[4], text
    assert "columns: id integer key" in text, text
    assert "no schema versions recorded" in none, none

    # a restart re-announces the same shape: no new version; /v1/schema lists the same
    cl.execute("src", "INSERT INTO items (id, qty, name, sku) VALUES (8, 8, 'h', 'c8')")
    port = h.free_port()
    cdc2 = ctx.cdc(h.pipeline_config(cl, ["public.items"], [h.file_sink(jsonl)], pipeline_id="sh1",
                                     slot="sh1_slot", publication="sh1_pub"),
                   h.platform_config(state, health_enabled=True, health_port=port), cluster=cl,
                   name="cdc2")
    proc = cdc2.start()
    h.wait_for(lambda: 8 in _by_id(jsonl), 60, "the row inserted after the restart")
    ep = h.Endpoint(port)
    doc = ep.control("GET", "/v1/schema")
    assert doc["count"] == 7 and doc["versions"] == versions, doc
    one = ep.control("GET", "/v1/schema?table=items")
    assert one["count"] == 7
    proc.terminate()
    res2 = proc.wait(60)
    res2.expect_rc(0)
    assert not h.log_events(res2.stderr, "schema.version_changed"), res2.describe()
    assert _by_id(jsonl)[8][0]["source"]["schema_version"] == 7
    assert len(_schema_json(cdc)) == 7


def test_stop_on_incompatible_schema_stops_before_the_change(ctx):
    cl, cdc, state, jsonl = _setup(ctx, "sh2", {"stop_on_incompatible_schema": True})
    cl.execute("src", "INSERT INTO items VALUES (1, 1, 'a', 'n', 'c1'), (2, 2, 'b', 'n', 'c2')")
    cl.execute("src", "ALTER TABLE items ADD COLUMN extra int")
    cl.execute("src", "INSERT INTO items (id, qty) VALUES (3, 3)")
    before_drop = cl.current_lsn("src")
    # one transaction: a change of the compatible version, then the drop and changes after it
    cl.execute("src", "BEGIN; INSERT INTO items (id, qty) VALUES (40, 40); "
                      "ALTER TABLE items DROP COLUMN note; "
                      "INSERT INTO items (id, qty) VALUES (4, 4), (5, 5); COMMIT")
    cl.execute("src", "INSERT INTO items (id, qty) VALUES (6, 6)")
    end = cl.current_lsn("src")

    for attempt in range(2):
        res = cdc.start(end).wait(120)
        res.expect_rc(1)
        errs = res.error_lines
        assert errs and "public.items" in errs[-1] and "note" in errs[-1] and "dropped" in errs[-1] \
            and "stop_on_incompatible_schema" in errs[-1], res.describe()
        ids = _by_id(jsonl)
        assert not {4, 5, 6} & set(ids), "a change of the refused version was delivered: %s" % sorted(ids)
        assert {1, 2, 3} <= set(ids), sorted(ids)
        slot = cl.slot("sh2_slot")
        assert h.lsn_to_int(slot["confirmed_flush_lsn"]) <= h.lsn_to_int(before_drop) + 4096 and \
            h.lsn_to_int(slot["confirmed_flush_lsn"]) < h.lsn_to_int(end), slot
        versions = _schema_json(cdc)
        assert [(v["version"], v["compatible"], v["held"]) for v in versions] == \
            [(1, None, False), (2, True, False), (3, False, True)], (attempt, versions)
        if attempt == 0:
            assert h.log_events(res.stderr, "schema.incompatible_change_detected"), res.describe()

    # the operator lets it through: every change exactly once
    cdc._write(cdc.platform_path, h.to_yaml(h.platform_config(state, stop_on_incompatible_schema=False)))
    res = cdc.run_to(end, 120)
    assert h.log_events(res.stderr, "schema.version_accepted"), res.describe()
    ids = _by_id(jsonl)
    assert sorted(ids) == [1, 2, 3, 4, 5, 6, 40], sorted(ids)
    assert all(len(v) == 1 for v in ids.values()), {k: len(v) for k, v in ids.items()}
    assert [ids[i][0]["source"]["schema_version"] for i in (1, 3, 40, 4, 6)] == [1, 2, 2, 3, 3]
    versions = _schema_json(cdc)
    assert [(v["version"], v["held"]) for v in versions] == [(1, False), (2, False), (3, False)]


def test_kill9_between_a_version_and_its_delivery(ctx):
    recv = h.Receiver(ctx).start()
    retry = {"max_attempts": 1000000, "initial_wait_seconds": 0.1, "max_wait_seconds": 0.5,
             "multiplier": 2.0, "jitter": False}
    jsonl_dir = ctx.tmpdir("files")
    jsonl = jsonl_dir + "/e.jsonl"
    cl, cdc, state, _ = _setup(ctx, "sh3", sinks=[h.file_sink(jsonl),
                                                  h.webhook_sink(recv.url(), retry=retry)])
    proc = cdc.start()
    before = h.lsn_to_int(cl.current_lsn("src"))
    cl.execute("src", "INSERT INTO items SELECT g, g, 'x', 'n', 'c' FROM generate_series(1, 20) g")
    h.wait_for(lambda: len(h.webhook_deliveries(recv.records())) >= 20, 60, "the first rows delivered")
    # and confirmed to the slot: a webhook is delivered to at least once, and
    # a kill before the confirmation would send these rows again
    h.wait_for(lambda: (h.slot_confirmed_lsn(cl, "sh3_slot") or 0) > before, 60,
               "the first rows confirmed")
    # the webhook stops answering: nothing after this is confirmed
    recv.control(fail={"status": 503, "count": 1000000})
    cl.execute("src", "ALTER TABLE items ADD COLUMN extra int")
    cl.execute("src", "INSERT INTO items SELECT g, g, 'y', 'n', 'c', g FROM generate_series(21, 60) g")
    h.wait_log_event(proc, "schema.version_changed", 60)
    proc.kill9()
    delivered = {env["after"]["id"] for _, env in h.webhook_deliveries(recv.records())}
    assert delivered == set(range(1, 21)), "a change of the new version was delivered before the kill"

    recv.control(normal=True)
    end = cl.current_lsn("src")
    res = cdc.run_to(end, 120)
    assert not h.log_events(res.stderr, "schema.version_changed"), res.describe()
    ids = _by_id(jsonl)
    assert sorted(ids) == list(range(1, 61)), sorted(ids)
    assert all(len(v) == 1 for v in ids.values()), "the file sink holds a change twice"
    hook = {}
    for _, env in h.webhook_deliveries(recv.records()):
        hook.setdefault(env["after"]["id"], []).append(env)
    assert sorted(hook) == list(range(1, 61)), sorted(hook)
    assert all(len(v) == 1 for v in hook.values()), "the webhook got a change twice"
    assert {e["source"]["schema_version"] for i in range(21, 61) for e in ids[i] + hook[i]} == {2}
    assert [(v["version"], v["compatible"]) for v in _schema_json(cdc)] == [(1, None), (2, True)]
