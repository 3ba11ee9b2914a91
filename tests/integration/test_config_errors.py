"""Malformed configurations and runtime failures.

Every case must end cleanly (no signal, no sanitizer report) with exactly
one `error: ` line on stderr and the documented exit code: 2 for config
errors, 1 for runtime failures.  A config error names the file as given on
the command line, the line, and the key path:
    error: conf/pipeline.yaml:14: sinks[1].postgres.port: …
A runtime error names the unreachable host:port or the missing table.  The
configured passwords never appear on stdout or stderr.

Each config case is run through both `cdc validate` and `cdc run`.

Keys of the reference that cdc accepts without acting on them are not
errors: `cdc validate` prints one `warning:` line per key with FILE:LINE and
exits 0, and `cdc run` logs the same when it starts."""

import os
import re

import harness as h

SECRET = "Lit3ral-S3cret-Zq9x"
SECRET2 = "An0ther-S3cret-Wv4k"

BASE = """\
pipeline_id: cfgtest
topic_prefix: cdc
source:
  host: 127.0.0.1
  port: @PORT@
  database: src
  username: @USER@
  password: @PW@
  tables:
    - public.customers
  slot_name: cfg_slot
  publication_name: cfg_pub
  snapshot_mode: never
sinks:
  - sink_id: jsonl
    sink_type: file
    file:
      path: @OUT@/events.jsonl
  - sink_id: mirror
    sink_type: postgres
    postgres:
      host: 127.0.0.1
      port: @PORT@
      database: mirror
      username: @USER@
      password: @PW@
      mode: replica
"""

PLATFORM = """\
state_dir: @STATE@
health_enabled: false
"""


def edit(text, old, new, count=1):
    assert old in text, "test bug: %r not in the base config" % old
    return text.replace(old, new, count)


def nth_replace(text, old, new, n):
    """Replaces the n-th (0-based) occurrence of old."""
    parts = text.split(old)
    assert len(parts) > n + 1, "test bug: fewer than %d occurrences of %r" % (n + 1, old)
    return old.join(parts[: n + 1]) + new + old.join(parts[n + 1:])


# (name, transform(base) -> pipeline text, platform transform or None, key path or None)
# Lines marked with "#!" are where the error may be reported.
CONFIG_CASES = [
    ("unknown key",
     lambda b: edit(b, "  database: src\n", "  database: src\n  databse: src  #!\n"), None,
     "source.databse"),
    ("duplicate key",
     lambda b: edit(edit(b, "  host: 127.0.0.1\n", "  host: 127.0.0.1  #!\n"),
                    "  database: src\n", "  database: src\n  host: 127.0.0.2  #!\n"), None,
     "source.host"),
    ("wrong type (port \"abc\")",
     lambda b: edit(b, "      port: @PORT@\n", "      port: abc  #!\n"), None,
     "sinks[1].postgres.port"),
    ("port out of range",
     lambda b: edit(b, "  host: 127.0.0.1\n  port: @PORT@\n", "  host: 127.0.0.1\n  port: 70000  #!\n"),
     None, "source.port"),
    ("bad enum value (snapshot_mode)",
     lambda b: edit(b, "  snapshot_mode: never\n", "  snapshot_mode: sometimes  #!\n"), None,
     "source.snapshot_mode"),
    ("bad enum value (postgres.mode)",
     lambda b: edit(b, "      mode: replica\n", "      mode: replika  #!\n"), None,
     "sinks[1].postgres.mode"),
    ("missing source.database",
     lambda b: edit(edit(b, "  database: src\n", ""), "source:\n  host: 127.0.0.1\n",
                    "source:  #!\n  host: 127.0.0.1  #!\n"), None,
     "source.database"),
    ("unset ${VAR}",
     lambda b: nth_replace(b, "  password: @PW@\n",
                           "  password: ${CDC_TEST_UNSET_VARIABLE}  #!\n", 0), None,
     "source.password"),
    ("bad YAML syntax",
     lambda b: edit(b, "  host: 127.0.0.1\n", "  host: 127.0.0.1: 80  #!\n"), None,
     None),
    ("platform key (dlq) in pipeline.yaml",
     lambda b: edit(b, "topic_prefix: cdc\n", "topic_prefix: cdc\ndlq:  #!\n  enabled: true\n"), None,
     "dlq"),
    ("duplicate sink_id",
     lambda b: edit(b, "  - sink_id: mirror\n", "  - sink_id: jsonl  #!\n"), None,
     "sinks[1].sink_id"),
    ("no sinks",
     lambda b: b[: b.index("sinks:")] + "sinks: []  #!\n", None,
     "sinks"),
    ("duplicate password (secret values)",
     lambda b: nth_replace(b, "  password: @PW@\n",
                           "  password: @PW@  #!\n  password: %s  #!\n" % SECRET2, 0), None,
     "source.password"),
    ("unknown key in platform.yaml",
     None, lambda p: p + "helth_port: 8081  #!\n",
     "helth_port"),
    ("a transport of the reference not implemented (pubsub)",
     None, lambda p: p + "pubsub:  #!\n  project_id: demo\n",
     "pubsub"),
    ("open control API (health_bind 0.0.0.0 without control_token)",
     None, lambda p: edit(p, "health_enabled: false\n", "health_bind: 0.0.0.0  #!\n"),
     None),
]


def fill(text, **kw):
    for k, v in kw.items():
        text = text.replace("@%s@" % k.upper(), str(v))
    return text


def marked_lines(text):
    return [i for i, line in enumerate(text.splitlines(), 1) if "#!" in line]


def check_one(cdc, args, file_given, lines, keypath, expect_rc, what, timeout=15):
    """Returns a list of problems with one invocation."""
    try:
        # raises on a timeout, a sanitizer report or a leaked password
        res = cdc.command(args, timeout=timeout)
    except AssertionError as e:
        return ["`cdc %s`: %s" % (args[0], e)]
    probs = []
    if res.rc != expect_rc:
        probs.append("exit %s, want %d" % (res.rc, expect_rc))
    errs = res.error_lines
    if len(errs) != 1:
        probs.append("%d lines start with 'error: ', want exactly 1" % len(errs))
    if errs:
        e = errs[0]
        if file_given is not None:
            # a YAML syntax error has no key path; a column after the line is fine there
            col = r"(?::\d+)?" if keypath is None else ""
            m = re.match(r"^error: (.+?):(\d+)%s: (.*)$" % col, e)
            if not m or m.group(1) != file_given:
                probs.append("does not start with 'error: %s:LINE: '" % file_given)
            else:
                if int(m.group(2)) not in lines:
                    probs.append("line %s, want %s" % (m.group(2), " or ".join(map(str, lines))))
                if keypath is not None and not m.group(3).startswith(keypath + ": "):
                    probs.append("key path: want %r" % (keypath + ": …"))
        for s in what:
            if s not in e:
                probs.append("does not mention %r" % s)
    if probs:
        return ["`cdc %s`: %s\n      stderr: %s" % (
            args[0], "; ".join(probs), h.tail(res.stderr, 6).replace("\n", "\n              "))]
    return []


def test_config_errors(ctx):
    cl = ctx.cluster()
    cl.createdb("src")
    cl.createdb("mirror")
    cl.execute("src", "CREATE TABLE public.customers (id int PRIMARY KEY, email text)")
    out = ctx.tmpdir("out")
    state = ctx.tmpdir("state")
    problems = []
    for name, pipe_fn, plat_fn, keypath in CONFIG_CASES:
        pipe = fill(pipe_fn(BASE) if pipe_fn else BASE, port=cl.port, user=cl.role, pw=SECRET, out=out)
        plat = fill(plat_fn(PLATFORM) if plat_fn else PLATFORM, state=state)
        cdc = ctx.cdc("# placeholder\n", name="case", secrets_=[SECRET, SECRET2, cl.role_password])
        os.makedirs(os.path.join(cdc.dir, "conf"))
        for fn, text in (("pipeline.yaml", pipe), ("platform.yaml", plat)):
            with open(os.path.join(cdc.dir, "conf", fn), "w") as f:
                f.write(text)
        bad_file = "conf/platform.yaml" if plat_fn else "conf/pipeline.yaml"
        lines = marked_lines(plat if plat_fn else pipe)
        assert lines, "test bug: no #! marker in case %r" % name
        for verb in ("validate", "run"):
            args = [verb, "conf/pipeline.yaml", "--platform-config", "conf/platform.yaml"]
            extra = ["CDC_TEST_UNSET_VARIABLE"] if "${" in pipe else []
            for p in check_one(cdc, args, bad_file, lines, keypath, 2, extra):
                problems.append("%s: %s" % (name, p))
    ctx.log("%d config cases x (validate, run) checked" % len(CONFIG_CASES))

    # runtime failures: exit 1
    def runtime_case(name, port, tables, what):
        base = edit(BASE, "    - public.customers\n", "".join("    - %s\n" % t for t in tables))
        base = fill(base, port=port, user=cl.role, pw="${PGPW}", out=out)
        cdc = ctx.cdc(base, fill(PLATFORM, state=state), cluster=cl, name="runtime",
                      secrets_=[SECRET])
        args = ["run", cdc.pipeline_path, "--platform-config", cdc.platform_path]
        for p in check_one(cdc, args, None, None, None, 1, what, timeout=60):
            problems.append("%s: %s" % (name, p))

    dead = h.free_port()
    runtime_case("unreachable database", dead, ["public.customers"], ["127.0.0.1", str(dead)])
    runtime_case("table does not exist", cl.port, ["public.customers", "public.no_such_table"],
                 ["no_such_table"])
    if problems:
        raise AssertionError("%d problems:\n  %s" % (len(problems), "\n  ".join(problems)))


def test_inert_reference_keys_warn(ctx):
    out = ctx.tmpdir("out")
    state = ctx.tmpdir("state")
    dead = h.free_port()
    pipe = fill(edit(BASE, "  snapshot_mode: never\n", "  snapshot_mode: never\n  auth_source: admin\n"),
                port=dead, user="cdc", pw=SECRET, out=out)
    plat = fill(PLATFORM, state=state) + ("dlq:\n  enabled: true\n  topic_suffix: dead\n"
                                          "connector:\n  connect_url: http://connect:8083\n"
                                          "lag_monitor_interval_seconds: 5\n")
    cdc = ctx.cdc("# placeholder\n", name="inert", secrets_=[SECRET])
    os.makedirs(os.path.join(cdc.dir, "conf"))
    for fn, text in (("pipeline.yaml", pipe), ("platform.yaml", plat)):
        with open(os.path.join(cdc.dir, "conf", fn), "w") as f:
            f.write(text)
    args = ["conf/pipeline.yaml", "--platform-config", "conf/platform.yaml"]
    r = cdc.command(["validate"] + args, timeout=30).expect_rc(0)
    warnings = [l for l in r.stderr.splitlines() if l.startswith("warning: ")]
    want = [
        ("conf/pipeline.yaml", pipe, "  auth_source: admin", "source.auth_source"),
        ("conf/platform.yaml", plat, "  topic_suffix: dead", "dlq.topic_suffix"),
        ("conf/platform.yaml", plat, "  connect_url: http://connect:8083", "connector.connect_url"),
        ("conf/platform.yaml", plat, "lag_monitor_interval_seconds: 5", "lag_monitor_interval_seconds"),
    ]
    assert len(warnings) == len(want), r.describe()
    for line, (fn, text, src_line, key) in zip(warnings, want):
        n = text.splitlines().index(src_line) + 1
        prefix = "warning: %s:%d: accepted, has no effect: %s (" % (fn, n, key)
        assert line.startswith(prefix), "want %r..., got %r" % (prefix, line)
    assert "config ok" in r.stdout and not r.error_lines, r.describe()
    # cdc run says the same in its log when it starts (then fails: nothing listens)
    r = cdc.command(["run"] + args, timeout=60).expect_rc(1)
    logged = h.log_events(r.stderr, "config.no_effect")
    assert len(logged) == len(want), r.describe()
    assert all("accepted, has no effect" in e["detail"] for e in logged), logged
    # what the reference has and cdc does not implement says so
    for key in ("pubsub", "kinesis", "wal_reader"):
        with open(os.path.join(cdc.dir, "conf", "platform.yaml"), "w") as f:
            f.write(fill(PLATFORM, state=state) + "%s:\n  region: x\n" % key)
        r = cdc.command(["validate"] + args, timeout=30).expect_rc(2)
        assert len(r.error_lines) == 1 and "%s: not implemented in this version of cdc" % key \
            in r.error_lines[0], r.describe()
