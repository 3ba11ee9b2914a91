"""The command line: help and usage errors, options a verb does not take,
validate's summary, deploy / undeploy against a real server, and SIGTERM
during streaming (exit 0, slot confirmed past everything delivered, a
restart continues without loss or duplicates)."""

import re

import harness as h

DDL = """
CREATE TABLE public.customers (id int PRIMARY KEY, email text);
CREATE TABLE public.order_lines (order_id int, line_no int, sku text, qty int,
                                 PRIMARY KEY (order_id, line_no));
CREATE TABLE public.third (id int PRIMARY KEY, v text);
"""


def _cluster(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", DDL)
    return cl


def test_help_and_usage_errors(ctx):
    cdc = ctx.cdc("pipeline_id: x\n")
    for args in (["--help"], ["run", "--help"]):
        r = cdc.command(args, timeout=30).expect_rc(0)
        assert (r.stdout + r.stderr).strip(), "`cdc %s` printed nothing" % " ".join(args)
        assert "run" in r.stdout + r.stderr, "`cdc %s` does not mention run" % " ".join(args)
    r = cdc.command(["frobnicate"], timeout=30)
    r.expect_rc(2)
    assert r.stderr.strip(), "an unknown command must say something on stderr"


# options that take a value, and a value for each
OPTION_VALUES = {"--platform-config": "platform.yaml", "--stop-at-lsn": "0/1", "--table": "public.t",
                 "--url": "http://127.0.0.1:1", "--sink": "s", "--id": "1", "--max-events": "1",
                 "--topic": "t", "--sink-id": "s", "--snapshot-id": "1", "--limit": "1"}


def _help_options(cdc, args):
    r = cdc.command(args + ["--help"], timeout=30).expect_rc(0)
    return r.stdout, set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", r.stdout)) - {"--help"}


def test_every_verb_refuses_options_not_its_own(ctx):
    """`cdc validate P --yes` is a mistake, not a no-op: each verb (and each
    dlq subcommand) refuses, with exit 2 and the option named, every option
    it does not list in its help; short -y is no --yes; every usage line
    names the options its help describes."""
    dead = h.free_port()
    cdc = ctx.cdc({"pipeline_id": "opts",
                   "source": {"host": "127.0.0.1", "port": dead, "database": "src",
                              "tables": ["public.t"]},
                   "sinks": [h.file_sink(ctx.tmpdir("out") + "/e.jsonl")]},
                  h.platform_config(ctx.tmpdir("state"), health_enabled=False))
    top = cdc.command(["--help"], timeout=30).expect_rc(0).stdout
    verbs = re.findall(r"^  ([a-z]+)\s{2,}\S", top.split("commands:")[1], re.M)
    assert "validate" in verbs and "dlq" in verbs, top
    calls = {}  # argv prefix -> options it takes
    for verb in verbs:
        text, opts = _help_options(cdc, [verb])
        usage = text.splitlines()[0]
        if "not implemented" in text:
            continue  # says so whatever it is given
        subs = re.match(r"usage: cdc %s ([a-z]+(?:\|[a-z]+)+) " % verb, usage)
        if not subs:
            missing = [o for o in sorted(opts) if o not in usage]
            assert not missing, "`cdc %s --help`: the usage line lacks %s:\n%s" % (
                verb, missing, usage)
            calls[verb] = opts
            continue
        for sub in subs.group(1).split("|"):
            line = re.search(r"^  %s .*$" % sub, text, re.M).group(0)
            calls[verb + " " + sub] = set(re.findall(r"--[a-z][a-z-]*", line)) | {
                "--platform-config"}
    everything = set(OPTION_VALUES) | {o for opts in calls.values() for o in opts}
    problems = []
    for prefix, opts in sorted(calls.items()):
        for opt in sorted(everything - opts) + ["-y"]:
            argv = prefix.split() + [cdc.pipeline_path, opt]
            if opt in OPTION_VALUES:
                argv.append(OPTION_VALUES[opt])
            r = cdc.command(argv, timeout=30)
            if r.rc != 2 or opt not in r.stderr or len(r.error_lines) != 1:
                problems.append("cdc %s: exit %s, stderr %r" % (" ".join(argv[:len(
                    prefix.split())] + ["P"] + argv[len(prefix.split()) + 1:]), r.rc,
                    r.stderr.strip()[:160]))
    assert not problems, "options accepted by verbs that do not take them:\n  " + \
        "\n  ".join(problems)
    ctx.log("%d verbs and subcommands refuse the options they do not list" % len(calls))


def test_validate_prints_summary(ctx):
    secret = "Validate-S3cret-pw"
    pipeline = {
        "pipeline_id": "vtest",
        "topic_prefix": "cdc",
        "source": {
            "host": "127.0.0.1", "port": 5432, "database": "src", "username": "someone",
            "password": secret, "tables": ["public.customers", "public.order_lines"],
            "slot_name": "v_slot", "publication_name": "v_pub", "snapshot_mode": "never",
        },
        "sinks": [
            {"sink_id": "jsonl_out", "sink_type": "file", "file": {"path": "/nonexistent/x.jsonl"}},
            {"sink_id": "the_mirror", "sink_type": "postgres",
             "postgres": {"host": "127.0.0.1", "port": 5432, "database": "mirror",
                          "username": "someone", "password": secret, "mode": "replica"}},
        ],
    }
    cdc = ctx.cdc(pipeline, h.platform_config(ctx.tmpdir("state")), secrets_=[secret])
    r = cdc.validate().expect_rc(0)
    for word in ("vtest", "public.customers", "public.order_lines"):
        assert word in r.stdout, "validate's summary lacks %r:\n%s" % (word, r.stdout)
    for sid, typ in (("jsonl_out", "file"), ("the_mirror", "postgres")):
        assert any(sid in l and typ in l for l in r.stdout.splitlines()), \
            "no summary line names sink %s with its type %s:\n%s" % (sid, typ, r.stdout)
    assert not r.error_lines, r.describe()


def _slots(cl):
    return cl.execute("postgres", "SELECT slot_name, plugin, slot_type, database FROM pg_replication_slots")


def _pub_tables(cl, pub):
    rows = cl.execute("src", "SELECT schemaname || '.' || tablename FROM pg_publication_tables "
                             "WHERE pubname = %s", (pub,))
    return sorted(r[0] for r in rows)


def _pub_exists(cl, pub):
    return bool(cl.execute("src", "SELECT 1 FROM pg_publication WHERE pubname = %s", (pub,)))


def test_deploy_is_idempotent_and_undeploy_needs_yes(ctx):
    cl = _cluster(ctx)
    tables = ["public.customers", "public.order_lines"]
    mk = lambda t: h.pipeline_config(cl, t, [h.file_sink(ctx.tmpdir("out") + "/e.jsonl")],  # noqa: E731
                                     pipeline_id="dep", slot="dep_slot", publication="dep_pub")
    cdc = ctx.cdc(mk(tables), cluster=cl)
    # the publication also carries the snapshot signal table (created by deploy)
    signal = "public.cdc_signal"
    for i in (1, 2):
        cdc.deploy().expect_rc(0)
        assert _slots(cl) == [("dep_slot", "pgoutput", "logical", "src")], \
            "after deploy #%d: slots %s" % (i, _slots(cl))
        assert _pub_tables(cl, "dep_pub") == sorted(tables + [signal]), _pub_tables(cl, "dep_pub")

    cdc.write_pipeline(mk(["public.customers", "public.third"]))
    cdc.deploy().expect_rc(0)
    assert _pub_tables(cl, "dep_pub") == sorted(["public.customers", "public.third", signal]), \
        "publication not altered: %s" % _pub_tables(cl, "dep_pub")
    assert _slots(cl) == [("dep_slot", "pgoutput", "logical", "src")], _slots(cl)

    r = cdc.undeploy(yes=False)
    r.expect_rc(2)
    assert "yes" in r.stderr.lower(), "undeploy without --yes must say why:\n" + r.stderr
    assert cl.slot("dep_slot") is not None and _pub_exists(cl, "dep_pub"), \
        "undeploy without --yes dropped something"

    cdc.undeploy(yes=True).expect_rc(0)
    assert cl.slot("dep_slot") is None, "slot still there after undeploy --yes"
    assert not _pub_exists(cl, "dep_pub"), "publication still there after undeploy --yes"


def test_sigterm_flushes_confirms_and_resumes(ctx):
    cl = _cluster(ctx)
    tables = ["public.customers", "public.order_lines"]
    jsonl = ctx.tmpdir("out") + "/events.jsonl"
    cdc = ctx.cdc(
        h.pipeline_config(cl, tables, [h.file_sink(jsonl), h.pg_sink(cl, "replica")],
                          pipeline_id="term", slot="term_slot", publication="term_pub"),
        h.platform_config(ctx.tmpdir("state")),
        cluster=cl,
    )
    proc = cdc.start()  # `run` deploys by itself
    h.wait_for(lambda: cl.slot("term_slot") or (proc.poll() is not None and proc.wait(1)),
               60, "cdc run to create its slot")
    if proc.poll() is not None:
        raise AssertionError("cdc run exited early; " + proc.result().describe())
    oracle = h.Oracle(cl, "src").create()
    src = cl.connect("src")

    def burst(start, n):
        with src.cursor() as cur:
            for i in range(start, start + n):
                cur.execute("BEGIN")
                cur.execute("INSERT INTO customers VALUES (%s, %s)", (i, "c%d@x" % i))
                cur.execute("INSERT INTO order_lines VALUES (%s, 1, 'a', 1), (%s, 2, 'b', 2)", (i, i))
                cur.execute("UPDATE customers SET email = email || '!' WHERE id = %s", (i,))
                cur.execute("COMMIT")

    burst(1, 50)
    h.wait_for(lambda: h.count_lines(jsonl) >= 200 or proc.poll() is not None, 90,
               "the first 200 changes in the file")
    if proc.poll() is not None:
        raise AssertionError("cdc exited while streaming; " + proc.result().describe())
    burst(51, 50)
    proc.terminate()
    res = proc.wait(60)
    res.expect_rc(0)
    assert not res.error_lines, res.describe()
    records = h.read_jsonl(jsonl)
    last = max(r["source"]["lsn"] for r in records)

    def confirmed():
        s = cl.slot("term_slot")
        return s and not s["active"] and h.lsn_to_int(s["confirmed_flush_lsn"]) > last

    h.wait_for(confirmed, 10, "confirmed_flush_lsn to pass the last delivered change %s (slot: %s)"
               % (h.int_to_lsn(last), cl.slot("term_slot")))
    ctx.log("SIGTERM after %d lines; slot confirmed %s > last change %s" % (
        len(records), cl.slot("term_slot")["confirmed_flush_lsn"], h.int_to_lsn(last)))

    burst(101, 20)
    stop = cl.current_lsn("src")
    cdc.run_to(stop, timeout=120)
    txns = oracle.read(tables, stop)
    records = h.read_jsonl(jsonl)
    n = h.check_jsonl_against_oracle(records, txns, pipeline_id="term")
    mirror = cl.connect("mirror")
    for t in tables:
        h.compare_tables(src, mirror, t)
    ctx.log("after a restart: %d changes exactly once, mirror equal" % n)
