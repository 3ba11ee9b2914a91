"""Self-checks of the harness, without cdc: the oracle agrees with what the
workload did, compare_tables accepts an exact copy and rejects a corrupted
one, and the JSONL checkers accept a correct change stream (built here from
test_decoding's output by a tiny reference decoder) and reject a stream with
a change missing, duplicated, reordered or altered.  If these fail, the other
tests' verdicts cannot be trusted."""

import ast
import collections
import copy
import glob
import json
import os
import re

import harness as h


def test_modules_define_distinct_names(ctx):
    """harness/__init__.py imports every module's names into one namespace:
    a name defined in two modules would silently replace the first (a plain
    read_jsonl once replaced the one that keeps -0 apart from 0)."""
    where = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(os.path.dirname(h.__file__), "*.py"))):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            names = []
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for name in names:
                if not name.startswith("_"):
                    where[name].append(os.path.basename(path))
    twice = {k: v for k, v in where.items() if len(v) > 1}
    assert not twice, "names defined in several harness modules: %s" % twice
    ctx.log("%d public names, each defined once" % len(where))


def _workload_db(ctx, txns=300):
    cl = ctx.cluster()
    cl.createdb("src")
    src = cl.connect("src")
    h.Workload.create_tables(src)
    oracle = h.Oracle(cl, "src").create()
    w = ctx.workload(cl, "src", max_txns=txns, pause=0, seed=12345)
    w.start()
    w.join(300)
    w.stop()
    return cl, src, oracle, w


def test_oracle_sees_exactly_the_workload(ctx):
    cl, src, oracle, w = _workload_db(ctx)
    with src.cursor() as cur:
        cur.execute("TRUNCATE public.accounts, public.lines")
    txns = oracle.read(h.STANDARD_TABLES, cl.current_lsn("src"))
    got = {t.xid: len(t.changes) for t in txns[:-1]}
    want = dict(w.committed)
    assert got == want, "oracle transactions differ from the workload's: %d vs %d txns; e.g. %s" % (
        len(got), len(want), sorted(set(got.items()) ^ set(want.items()))[:5])
    last = txns[-1]
    assert [(c.table, c.op) for c in last.changes] == [
        ("public.accounts", "t"), ("public.lines", "t")], last.changes
    assert last.changes[0].lsn == last.changes[1].lsn
    prev = 0
    for t in txns:
        lsns = [c.lsn for c in t.changes]
        assert lsns == sorted(lsns), "change LSNs not ascending in xid %d" % t.xid
        assert t.commit_lsn is not None, "pg_waldump gave no commit LSN for xid %d" % t.xid
        assert lsns[-1] < t.commit_lsn < t.end_lsn
        assert t.commit_lsn > prev, "commit LSNs not ascending"
        prev = t.commit_lsn
    assert w.rolled_back > 0, "the workload never rolled back"
    ops = {(c.table, c.op) for c in h.Oracle.flatten(txns)}
    assert len(ops) == 11, sorted(ops)  # 3 tables x c/u/d, plus 2 truncates
    ctx.log("workload: %d committed txns (%d changes), %d rolled back; seed %d"
            % (len(w.committed), w.changes, w.rolled_back, w.seed))
    sample = txns[len(txns) // 2]
    ctx.log("sample oracle txn xid=%d commit=%s end=%s:" % (
        sample.xid, h.int_to_lsn(sample.commit_lsn), h.int_to_lsn(sample.end_lsn)))
    for c in sample.changes[:6]:
        ctx.log("  %r dco=%d" % (c, c.dco))


def test_compare_tables_detects_differences(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("dst")
    ddl = ("CREATE TABLE public.t (id int, j json, b bytea, f float8, ts timestamptz, "
           "a text[], s text)")
    src, dst = cl.connect("src"), cl.connect("dst")
    for c in (src, dst):
        with c.cursor() as cur:
            cur.execute(ddl)
    with src.cursor() as cur:
        cur.execute("INSERT INTO t SELECT g, json_build_object('g', g), decode(md5(g::text), 'hex'), "
                    "g / 3.0, now() + g * interval '1 min', ARRAY['x', g::text], "
                    "repeat('tab\tnew\nline', g % 3) FROM generate_series(1, 500) g")
        cur.execute("INSERT INTO t SELECT * FROM t WHERE id <= 3")  # duplicates
        cur.execute("INSERT INTO t (id) VALUES (NULL), (NULL)")
    h.copy_table(src, dst, "public.t")
    n = h.compare_tables(src, dst, "public.t")
    assert n == 505, n
    # set the mirror's time zone elsewhere: text forms are compared in UTC
    cl.execute("postgres", "ALTER DATABASE dst SET timezone TO 'Asia/Kathmandu'")
    dst2 = cl.connect("dst")
    h.compare_tables(src, dst2, "public.t")

    def must_fail(sql, *expect):
        with dst.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(sql)
            try:
                h.compare_tables(src, dst, "public.t")
            except AssertionError as e:
                msg = str(e)
            else:
                raise AssertionError("compare_tables missed: " + sql)
            finally:
                cur.execute("ROLLBACK")
        for x in expect:
            assert x in msg, "diff lacks %r:\n%s" % (x, msg)
        return msg

    msg = must_fail("UPDATE t SET s = 'corrupted' WHERE id = 250", "row id=250 differs", "corrupted")
    ctx.log("diff for one corrupted row:\n      " + msg.replace("\n", "\n      "))
    must_fail("DELETE FROM t WHERE ctid = (SELECT min(ctid) FROM t WHERE id = 2)",
              "1 rows only in source")
    must_fail("INSERT INTO t (id, s) VALUES (9999, 'extra')", "only in mirror", "9999")
    must_fail("UPDATE t SET f = f + 1e-12 WHERE id = 7", "f: source")
    must_fail("UPDATE t SET ts = ts + interval '1 microsecond' WHERE id = 8", "ts: source")
    must_fail("UPDATE t SET id = 1 WHERE id IS NULL AND ctid = (SELECT min(ctid) FROM t WHERE id IS NULL)")
    must_fail("ALTER TABLE t DROP COLUMN a", "lacks columns")
    try:
        h.compare_tables(src, dst, "public.t", dst_table="public.nope")
        raise AssertionError("missing mirror table not detected")
    except AssertionError as e:
        assert "does not exist" in str(e), e


# ---- a tiny reference decoder over test_decoding's text, to feed the checkers

_FIELD = re.compile(r"([^\s\[]+)\[([^\]]+)\]:('(?:[^']|'')*'|\S+)")
_TD_TYPES = {"integer": "int", "bigint": "int", "smallint": "int"}


def _tuple(text):
    row = {}
    for name, typ, val in _FIELD.findall(text):
        if val == "null":
            v = None
        elif val == "unchanged-toast-datum":
            v = h.UNCHANGED
        elif val.startswith("'"):
            v = val[1:-1].replace("''", "'")
        else:
            v = int(val) if _TD_TYPES.get(typ) == "int" else val
        row[name] = v
    return row


def _reference_stream(cl, oracle, tables, metas, upto):
    """Envelopes for every change, built from test_decoding's values."""
    conn = cl.connect("src")
    with conn.cursor() as cur:
        cur.execute("SELECT lsn::text, xid::text, data FROM pg_logical_slot_peek_changes("
                    "%s, %s::pg_lsn, NULL, 'include-xids', '1', 'skip-empty-xacts', '1')",
                    (oracle.slot, upto))
        rows = cur.fetchall()
    txns = oracle.read(tables, upto)
    flat = iter(h.Oracle.flatten(txns))
    out = []
    for lsn, _, data in rows:
        m = h._CHANGE.match(data)
        if not m:
            continue
        kind = m.group(2)
        names = [n for n in m.group(1).split(", ") if n in tables]
        rest = data[m.end():]
        for name in names:
            c = next(flat)
            meta = metas[name]
            before = after = None
            if kind == "INSERT":
                after = _tuple(rest)
            elif kind == "UPDATE":
                if "old-key:" in rest:
                    old, new = rest.split("new-tuple:")
                    before, after = _tuple(old), _tuple(new)
                else:
                    after = _tuple(rest)
                    before = {k: after[k] for k in meta.key}
            elif kind == "DELETE":
                before = _tuple(rest)
            if before is not None:
                before = {k: before.get(k) for k in meta.names}
            schema, table = name.split(".")
            commit = c.txn.commit_lsn
            out.append({
                "before": before, "after": after, "op": h.OPS[kind], "ts_ms": 1,
                "source": {"version": "0.1.0", "connector": "postgresql", "name": "t1",
                           "ts_ms": 1, "snapshot": "false", "db": "src",
                           "sequence": json.dumps([str(commit), str(c.lsn)]),
                           "schema": schema, "table": table, "txId": c.xid, "lsn": c.lsn,
                           "xmin": None},
                "transaction": {"id": "%d:%d" % (c.xid, commit), "total_order": c.index + 1,
                                "data_collection_order": c.dco},
            })
    return txns, out


def test_checkers_accept_good_and_reject_bad_streams(ctx):
    cl, src, oracle, w = _workload_db(ctx, txns=250)
    with src.cursor() as cur:  # TOAST: a big note left unchanged by an update
        cur.execute("INSERT INTO accounts VALUES (-1, 'big', 0, %s)",
                    (h.base64.b64encode(w.rng.randbytes(9000)).decode(),))
        cur.execute("UPDATE accounts SET balance = 5 WHERE id = -1")
    upto = cl.current_lsn("src")
    tables = h.STANDARD_TABLES
    metas = {t: h.TableMeta(src, t) for t in tables}
    txns, good = _reference_stream(cl, oracle, tables, metas, upto)
    assert any(r["after"] and r["after"].get("note") == h.UNCHANGED for r in good), \
        "no unchanged-TOAST update in the stream"
    n = h.check_jsonl_against_oracle(good, txns)
    h.check_replay_equals_source(good, src, tables)
    ctx.log("reference stream of %d changes accepted" % n)

    def must_fail(name, recs, check, expect):
        try:
            check(recs)
        except AssertionError as e:
            assert expect in str(e), "%s: unexpected message: %s" % (name, e)
            return
        raise AssertionError("checker accepted a stream with " + name)

    oracle_check = lambda r: h.check_jsonl_against_oracle(r, txns)  # noqa: E731
    replay_check = lambda r: h.check_replay_equals_source(r, src, tables)  # noqa: E731
    i = len(good) // 2
    must_fail("a missing change", good[:i] + good[i + 1:], oracle_check, "missing")
    must_fail("a missing change", good[:i] + good[i + 1:], replay_check, "")
    must_fail("a duplicate", good[:i] + [good[i]] + good[i:], oracle_check, "more than once")
    must_fail("a duplicate", good[:i] + [good[i]] + good[i:], replay_check, "")
    j = next(k for k in range(i, len(good)) if good[k]["source"]["txId"] != good[i]["source"]["txId"])
    swapped = good[:i] + [good[j]] + good[i:j] + good[j + 1:]
    must_fail("reordered transactions", swapped, oracle_check, "not in commit order")
    bad = copy.deepcopy(good)
    bad[i]["transaction"]["id"] = "%d:%d" % (bad[i]["source"]["txId"], 12345)
    bad[i]["source"]["sequence"] = json.dumps(["12345", str(bad[i]["source"]["lsn"])])
    must_fail("a wrong commit LSN", bad, oracle_check, "commit lsn")
    bad = copy.deepcopy(good)
    k = max(x for x, r in enumerate(bad) if r["op"] == "c" and r["source"]["table"] == "lines")
    bad[k]["after"]["qty"] = bad[k]["after"]["qty"] + 1
    must_fail("an altered value", bad, replay_check, "qty")
    bad = copy.deepcopy(good)
    bad[k]["after"]["qty"] = str(bad[k]["after"]["qty"])
    must_fail("an integer encoded as a string", bad, replay_check, "qty")
    bad = copy.deepcopy(good)
    bad[k]["transaction"]["total_order"] += 1
    must_fail("a wrong total_order", bad, oracle_check, "")
