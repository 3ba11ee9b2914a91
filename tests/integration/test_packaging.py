"""Packaging, checked without servers: the license, the CLI reference
(docs/cli.md), the man page generated from it and the shell completions
against what `cdc --help` and `cdc COMMAND --help` print (so none of them
can drift as commands and options are added), `make install`, every
example through `cdc validate`, the Dockerfile's runtime packages against
the libraries the binary links, the systemd unit (systemd-analyze), the
Helm chart (YAML of every template, the values it references, probes), and
shellcheck and yamllint.

What cannot run here: building or starting the image (no container
engine), `helm template`/`helm lint` and a Kubernetes schema check (no
helm or validator in Debian), starting the unit under systemd."""

import glob
import os
import re
import secrets
import shutil
import subprocess

import yaml

import harness as h

ROOT = h.REPO_ROOT


def _path(*parts):
    return os.path.join(ROOT, *parts)


def _read(*parts):
    with open(_path(*parts), encoding="utf-8") as f:
        return f.read()


def _run(argv, timeout=120, **kw):
    kw.setdefault("cwd", ROOT)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def _tool(name):
    path = shutil.which(name)
    assert path, "%s is not installed (scripts/install-deps.sh installs it)" % name
    return path


# --------------------------------------------------------------------------
# what the binary says about itself

def cli_surface():
    """{"verbs": {verb: {"options": set, "subs": {sub: set(options)}}},
    "top": set(options)} from `cdc --help` and `cdc VERB --help`."""
    binary = h.require_bin(h.cdc_bin())
    top = _run([binary, "--help"])
    assert top.returncode == 0, "cdc --help: exit %d\n%s" % (top.returncode, top.stderr)
    verbs = {}
    in_commands = False
    for line in top.stdout.splitlines():
        if line.strip() == "commands:":
            in_commands = True
            continue
        m = re.match(r"^  ([a-z][a-z-]*)\s{2,}\S", line)
        if in_commands and m:
            verbs[m.group(1)] = None
        elif in_commands and line.strip() and not m:
            in_commands = False
    assert len(verbs) >= 5, "cannot find the commands in `cdc --help`:\n" + top.stdout
    for verb in verbs:
        r = _run([binary, verb, "--help"])
        assert r.returncode == 0, "cdc %s --help: exit %d\n%s" % (verb, r.returncode, r.stderr)
        usage = r.stdout.splitlines()[0]
        assert usage.startswith("usage: cdc %s" % verb), "cdc %s --help: %s" % (verb, usage)
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", r.stdout)) | {"--help"}
        subs = {}
        first = (usage.split()[3:] or [""])[0]
        if re.fullmatch(r"[a-z]+(\|[a-z]+)+", first):
            subs = {s: set() for s in first.split("|")}
        for line in r.stdout.splitlines():   # "  list PIPELINE [--sink S] ..." lines
            m = re.match(r"^  ([a-z]+) ", line)
            if m and m.group(1) in subs:
                subs[m.group(1)] |= set(re.findall(r"--[a-z][a-z-]*", line))
        verbs[verb] = {"options": options, "subs": subs}
    return {"verbs": verbs, "top": set(re.findall(r"--[a-z][a-z-]*", top.stdout)) | {"--version"}}


def _sections(text, heading_re):
    """{title: body} for the parts of text that start with a heading line."""
    out = {}
    title = None
    for line in text.splitlines():
        m = re.match(heading_re, line)
        if m:
            title = m.group(1).strip()
            out[title] = []
        elif title is not None:
            out[title].append(line)
    return {t: "\n".join(b) for t, b in out.items()}


def _check_reference(what, sections, whole, surface, quote):
    """Every verb has a section naming each of its options and subcommands."""
    missing = []
    for verb, info in surface["verbs"].items():
        body = sections.get("cdc " + verb)
        if body is None:
            missing.append("no section for `cdc %s`" % verb)
            continue
        for opt in sorted(info["options"] - {"--help"}):
            if not re.search(re.escape(quote + opt) + r"(?![\w-])", body):
                missing.append("cdc %s: option %s" % (verb, opt))
        for sub in info["subs"]:
            if not re.search(r"(cdc %s %s\b|%s%s%s)" % (verb, sub, quote, sub, quote), body):
                missing.append("cdc %s: subcommand %s" % (verb, sub))
    for opt in sorted(surface["top"]):
        if quote + opt not in whole:
            missing.append("top-level option %s" % opt)
    assert not missing, "%s does not describe what the binary's help lists:\n  %s" % (
        what, "\n  ".join(missing))


def test_license_and_notice(ctx):
    with open("/usr/share/common-licenses/Apache-2.0", encoding="utf-8") as f:
        apache = f.read()
    assert _read("LICENSE") == apache, "LICENSE is not the Apache License 2.0 text Debian ships"
    notice = _read("NOTICE")
    assert notice.splitlines()[0] == "cdc" and "Apache License, Version 2.0" in notice, notice


def test_cli_reference_describes_every_command_and_option(ctx):
    surface = cli_surface()
    text = _read("docs", "cli.md")
    _check_reference("docs/cli.md", _sections(text, r"^### (.*)$"), text, surface, "`")


def _man_page(ctx):
    out = os.path.join(ctx.tmpdir("man"), "cdc.1")
    r = _run(["/usr/bin/python3", "scripts/md2man.py", "--version", "test", "docs/cli.md"])
    assert r.returncode == 0, "md2man failed: %s" % r.stderr
    with open(out, "w") as f:
        f.write(r.stdout)
    return out, r.stdout


def _roff_text(s):
    s = re.sub(r"\\f[BIRP]", "", s)
    for a, b in (("\\-", "-"), ("\\(aq", "'"), ("\\(dq", '"'), ("\\&", ""), ("\\e", "\\")):
        s = s.replace(a, b)
    return s


def test_man_page_renders_cleanly_and_covers_help(ctx):
    surface = cli_surface()
    path, roff = _man_page(ctx)
    groff = _run([_tool("groff"), "-man", "-Tutf8", "-ww", "-z", path])
    assert groff.returncode == 0 and not groff.stderr.strip(), \
        "groff -ww warns about the generated page:\n" + groff.stderr
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
    man = _run([_tool("man"), "--warnings", "-l", path], env=env)
    assert man.returncode == 0 and not man.stderr.strip(), "man -l: %s" % man.stderr
    shown = re.sub(r".\x08", "", man.stdout)
    for leftover in ("`", "**", "](", "\\f", "\\-"):
        assert leftover not in shown, "markup %r left in the rendered page" % leftover
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT",
                    "FILES"):
        assert re.search(r"^%s$" % heading, shown, re.M), "the page has no %s section" % heading
    sections = {_roff_text(t).strip('"'): _roff_text(b)
                for t, b in _sections(roff, r"^\.SS (.*)$").items()}
    _check_reference("the man page", sections, _roff_text(roff), surface, "")


def test_md2man_refuses_what_it_cannot_convert(ctx):
    d = ctx.tmpdir("md")
    good = "# x(1) - t\n\nx - a tool\n\n## Options\n\n- `--a B`: text\n"
    cases = {
        "table": good + "\n| a | b |\n|---|---|\n",
        "nested list": good + "- `--c`: x\n  - inner\n",
        "unbalanced code": good + "\nsome `code\n",
        "html": good + "\n<div>x</div>\n",
        "indented code": good + "\n    indented\n",
    }
    for name, text in cases.items():
        p = os.path.join(d, "in.md")
        with open(p, "w") as f:
            f.write(text)
        r = _run(["/usr/bin/python3", _path("scripts", "md2man.py"), p])
        assert r.returncode == 1 and re.search(r"in\.md:\d+:", r.stderr), \
            "md2man accepted a %s (exit %d): %s" % (name, r.returncode, r.stderr or r.stdout)
    with open(os.path.join(d, "in.md"), "w") as f:
        f.write(good + "\n.leading dot and a \\ backslash\n")
    r = _run(["/usr/bin/python3", _path("scripts", "md2man.py"), os.path.join(d, "in.md")])
    assert r.returncode == 0 and "\\&.leading" in r.stdout and "\\e" in r.stdout, r.stdout


# --------------------------------------------------------------------------
# shell completion

def _bash_complete(words):
    """What the bash completion offers for `words` (the last one is the word
    being completed), from an empty directory."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
              '_cdc; printf "%s\\n" "${COMPREPLY[@]}"')
    r = _run(["bash", "-c", script, "bash", _path("packaging", "completion", "cdc.bash")] + words,
             cwd="/")
    assert r.returncode == 0, "bash completion failed: %s" % r.stderr
    return set(r.stdout.split())


def test_bash_completion_offers_every_command_and_option(ctx):
    surface = cli_surface()
    missing = []
    offered = _bash_complete(["cdc", ""])
    for word in sorted(set(surface["verbs"]) | surface["top"]):
        if word not in offered:
            missing.append("`cdc <TAB>`: %s" % word)
    for verb, info in surface["verbs"].items():
        if info["subs"]:
            offered = _bash_complete(["cdc", verb, ""])
            missing += ["`cdc %s <TAB>`: %s" % (verb, s) for s in info["subs"] if s not in offered]
            union = set()
            for sub, sub_opts in info["subs"].items():
                got = _bash_complete(["cdc", verb, sub, "pipeline.yaml", "--"])
                union |= got
                missing += ["`cdc %s %s --<TAB>`: %s" % (verb, sub, o) for o in sub_opts - got]
            missing += ["`cdc %s SUB --<TAB>`: %s" % (verb, o) for o in info["options"] - union]
        else:
            got = _bash_complete(["cdc", verb, "--"])
            missing += ["`cdc %s --<TAB>`: %s" % (verb, o) for o in info["options"] - got]
    assert not missing, "the bash completion misses:\n  " + "\n  ".join(missing)
    # files: a pipeline argument completes YAML files, a value is left alone
    d = ctx.tmpdir("files")
    for name in ("p.yaml", "q.yml", "notes.txt"):
        open(os.path.join(d, name), "w").close()
    script = ('source "$1"; cd "$2"; COMP_WORDS=(cdc run ""); COMP_CWORD=2; _cdc; '
              'printf "%s\\n" "${COMPREPLY[@]}"; COMP_WORDS=(cdc run --url ""); COMP_CWORD=3; '
              '_cdc; echo "url:${#COMPREPLY[@]}"')
    r = _run(["bash", "-c", script, "bash", _path("packaging", "completion", "cdc.bash"), d])
    assert r.stdout.split() == ["p.yaml", "q.yml", "url:0"], r.stdout + r.stderr


def test_zsh_completion_lists_every_command_and_option(ctx):
    surface = cli_surface()
    path = _path("packaging", "completion", "_cdc")
    r = _run([_tool("zsh"), "-n", path])
    assert r.returncode == 0, "zsh -n %s: %s" % (path, r.stderr)
    lines = _read("packaging", "completion", "_cdc").splitlines()
    assert lines[0] == "#compdef cdc", "the zsh completion must start with #compdef cdc"
    arm = re.compile(r"^(\s*)([a-z|]+)\)\s*$")
    # the arms of `case $words[1] in`: the indentation of the arm naming validate
    indent = next(arm.match(l).group(1) for l in lines
                  if arm.match(l) and "validate" in arm.match(l).group(2).split("|"))
    bodies, current = {}, None
    for line in lines:
        m = arm.match(line)
        if m and m.group(1) == indent:
            current = m.group(2).split("|")
            for v in current:
                bodies[v] = []
            continue
        if current and (line.startswith(indent + "esac") or
                        (line.strip() and len(line) - len(line.lstrip()) < len(indent))):
            current = None
        if current:
            for v in current:
                bodies[v].append(line)
    text = "\n".join(lines)
    missing = []
    for verb, info in surface["verbs"].items():
        if not re.search(r"'%s:" % verb, text):
            missing.append("command %s in the command list" % verb)
        body = "\n".join(bodies.get(verb, []))
        if not body:
            missing.append("no case arm for %s" % verb)
        wanted = (info["options"] - {"--help"}) | set(info["subs"])
        common = "--platform-config" in text and "$common" in body
        for w in sorted(wanted):
            if w == "--platform-config" and common:
                continue
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(w), body):
                missing.append("%s: %s" % (verb, w))
    assert not missing, "the zsh completion misses:\n  " + "\n  ".join(missing)


# --------------------------------------------------------------------------
# make install

def test_make_install_into_destdir(ctx):
    dest = ctx.tmpdir("destdir")
    r = _run(["make", "-s", "install", "DESTDIR=" + dest, "PREFIX=/usr/local"], timeout=900)
    assert r.returncode == 0, "make install failed:\n%s%s" % (r.stdout, r.stderr)
    want = {
        "usr/local/bin/cdc": 0o755,
        "usr/local/share/man/man1/cdc.1": 0o644,
        "usr/local/share/bash-completion/completions/cdc": 0o644,
        "usr/local/share/zsh/site-functions/_cdc": 0o644,
    }
    found = sorted(os.path.relpath(os.path.join(d, f), dest)
                   for d, _, files in os.walk(dest) for f in files)
    assert found == sorted(want), "installed %s, expected %s" % (found, sorted(want))
    for rel, mode in want.items():
        got = os.stat(os.path.join(dest, rel)).st_mode & 0o777
        assert got == mode, "%s has mode %o, expected %o" % (rel, got, mode)
    r = _run([os.path.join(dest, "usr/local/bin/cdc"), "--version"])
    assert r.returncode == 0 and r.stdout.startswith("cdc "), r.stdout + r.stderr
    version = r.stdout.split()[1]
    with open(os.path.join(dest, "usr/local/share/man/man1/cdc.1")) as f:
        th = f.readline()
    assert th.startswith('.TH "CDC" "1"') and ('"cdc %s"' % version) in th, \
        "the installed page's title line lacks the binary's version %s: %s" % (version, th)
    env = dict(os.environ, MANPATH=os.path.join(dest, "usr/local/share/man"), MANWIDTH="80")
    r = _run(["man", "cdc"], env=env)
    assert r.returncode == 0 and "cdc dlq" in r.stdout, "man cdc from MANPATH: %s" % r.stderr


# --------------------------------------------------------------------------
# optional modules

KAFKA_PIPELINE = """\
pipeline_id: nokafka
source:
  database: src
  tables: [public.t]
sinks:
  - sink_id: out
    sink_type: kafka
    kafka:
      bootstrap_servers: 127.0.0.1:9
"""


def test_build_without_optional_libraries(ctx):
    """`make PKG_DISABLE=...` leaves the optional modules out (as a machine
    without librdkafka, libmariadb and libnats would): the build succeeds into a
    directory of its own, links neither library, and the binary refuses a
    kafka sink and `cdc consume` as not available in this build, not as
    unknown, while the full build takes the same pipeline."""
    disable = "PKG_DISABLE=rdkafka libmariadb libnats"
    r = _run(["make", "-s", disable, "modules"])
    assert r.returncode == 0, r.stderr
    info = dict(l.split(": ", 1) for l in r.stdout.splitlines() if ": " in l)
    assert info.get("left out") == "libmariadb rdkafka libnats", r.stdout
    build = info["build directory"]
    assert build != "build/release", "a variant must not overwrite the default build"
    r = _run(["make", "-s", "-j2", "WERROR=1", disable, "all"], timeout=1800)
    assert r.returncode == 0, "make %s all failed:\n%s%s" % (disable, r.stdout, r.stderr[-3000:])
    binary = _path(build, "cdc")
    linked = _run(["ldd", binary]).stdout
    for lib in ("librdkafka", "libmariadb", "libnats"):
        assert lib not in linked, "the build without it still links %s:\n%s" % (lib, linked)

    d = ctx.tmpdir("nokafka")
    pipeline = os.path.join(d, "pipeline.yaml")
    with open(pipeline, "w") as f:
        f.write(KAFKA_PIPELINE)
    r = _run([binary, "validate", pipeline], cwd=d)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    assert r.returncode == 2 and errors == [
        "error: %s:6: sinks[0].sink_type: sink type kafka is not available in this build "
        "(built without librdkafka)" % pipeline], "validate: exit %d\n%s" % (r.returncode, r.stderr)
    r = _run([binary, "run", pipeline], cwd=d)
    assert r.returncode == 2 and "not available in this build" in r.stderr, r.stderr
    r = _run([binary, "consume", pipeline], cwd=d)
    assert r.returncode == 2 and r.stderr.startswith(
        "error: cdc consume is not available in this build (built without librdkafka)"), r.stderr
    r = _run([binary, "consume", "--help"], cwd=d)
    assert r.returncode == 0 and r.stdout.startswith("usage: cdc consume"), r.stdout
    # a type nobody knows is still "unknown", with the same choices
    with open(pipeline, "w") as f:
        f.write(KAFKA_PIPELINE.replace("sink_type: kafka", "sink_type: kafak"))
    r = _run([binary, "validate", pipeline], cwd=d)
    assert r.returncode == 2 and "expected one of file|postgres|webhook|iceberg|kafka|nats, got " \
        "\"kafak\"" in r.stderr, r.stderr
    # the other sinks work as ever; the full build takes the kafka sink
    with open(pipeline, "w") as f:
        f.write(KAFKA_PIPELINE.replace("sink_type: kafka", "sink_type: file").replace(
            "kafka:\n      bootstrap_servers: 127.0.0.1:9", "file:\n      path: out.jsonl"))
    r = _run([binary, "validate", pipeline], cwd=d)
    assert r.returncode == 0 and "config ok" in r.stdout, r.stdout + r.stderr
    with open(pipeline, "w") as f:
        f.write(KAFKA_PIPELINE)
    r = _run([h.require_bin(h.cdc_bin()), "validate", pipeline], cwd=d)
    assert r.returncode == 0 and "config ok" in r.stdout, r.stdout + r.stderr
    ctx.log("%s: no librdkafka, no libmariadb; kafka refused as not built" % build)


# --------------------------------------------------------------------------
# examples

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _example_files():
    files = sorted(glob.glob(_path("examples", "**", "*.yaml"), recursive=True))
    pipelines, platforms = [], []
    for f in files:
        with open(f) as fh:
            doc = yaml.safe_load(fh)
        (pipelines if "pipeline_id" in doc else platforms).append((f, doc))
    return pipelines, platforms


def test_every_example_validates(ctx):
    pipelines, platforms = _example_files()
    assert pipelines and platforms, "no examples found"
    # dummies for the variables the examples reference without a default
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CDC_"))}
    secret_values = []
    for f, _ in pipelines + platforms:
        with open(f) as fh:
            for name, default in VAR.findall(fh.read()):
                if default or name in env:
                    continue
                if name.endswith("_URL"):
                    env[name] = "https://hooks.example.invalid/cdc"
                else:
                    env[name] = "dummy-%s-%s" % (name.lower(), secrets.token_hex(4))
                    if re.search(r"PASSWORD|TOKEN|SECRET", name):
                        secret_values.append(env[name])
    binary = h.require_bin(h.cdc_bin())
    cwd = ctx.tmpdir("validate")
    runs = 0
    for f, _ in pipelines:
        for plat in [None] + [p for p, _ in platforms]:
            argv = [binary, "validate", f] + (["--platform-config", plat] if plat else [])
            r = _run(argv, cwd=cwd, env=env)
            shown = " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a for a in argv[1:])
            assert r.returncode == 0 and "config ok" in r.stdout, \
                "cdc %s: exit %d\n%s%s" % (shown, r.returncode, r.stdout, r.stderr)
            leaked = [s for s in secret_values if s in r.stdout + r.stderr]
            assert not leaked, "cdc %s printed a secret" % shown
            runs += 1
    assert not os.listdir(cwd), "validate wrote files: %s" % os.listdir(cwd)
    ctx.log("%d validations of %d pipelines" % (runs, len(pipelines)))


def test_examples_cover_every_sink_type(ctx):
    pipelines, _ = _example_files()
    have = set()
    for f, doc in pipelines:
        for s in doc.get("sinks", []):
            if "/examples/sinks/" in f:
                have.add(s["sink_type"])
                if s["sink_type"] == "postgres":
                    have.add("postgres:" + s["postgres"].get("mode", "events"))
    implemented = {os.path.basename(d) for d in glob.glob(_path("src", "sink", "*"))
                   if os.path.isdir(d)}
    assert implemented, "no sink folders under src/sink"
    wanted = implemented | {"postgres:events", "postgres:replica"}
    assert wanted <= have, "examples/sinks/ has no pipeline for: %s" % sorted(wanted - have)


def test_kubernetes_platform_file_and_chart_agree(ctx):
    with open(_path("examples", "platform-kubernetes.yaml")) as f:
        kube = yaml.safe_load(f)
    assert kube["health_bind"] == "0.0.0.0" and kube["health_enabled"] is True, kube
    assert VAR.fullmatch(str(kube.get("control_token"))), \
        "control_token must come from the environment: %r" % kube.get("control_token")
    assert kube["state_dir"] == "/var/lib/cdc", kube
    with open(_path("deploy", "helm", "cdc", "values.yaml")) as f:
        values = yaml.safe_load(f)
    chart_set = {"health_bind", "health_port", "state_dir"}
    expected = {k: v for k, v in kube.items() if k not in chart_set}
    assert values["platform"] == expected, \
        "values.yaml's platform differs from examples/platform-kubernetes.yaml:\n%s\n%s" % (
            values["platform"], expected)
    helpers = _read("deploy", "helm", "cdc", "templates", "_helpers.tpl")
    for key, val in (("health_bind", '"0.0.0.0"'), ("state_dir", '"/var/lib/cdc"'),
                     ("health_port", "(int .Values.healthPort)")):
        assert '"%s" %s' % (key, val) in helpers, "the chart does not set %s to %s" % (key, val)


# --------------------------------------------------------------------------
# Dockerfile

def _dockerfile_stages():
    text = re.sub(r"\\\n", " ", _read("Dockerfile"))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append({"from": rest.split()[0], "lines": []})
        stages[-1]["lines"].append((word.upper(), rest.strip()))
    return stages


def _apt_installs(stage):
    pkgs = []
    for word, rest in stage["lines"]:
        if word != "RUN":
            continue
        for part in re.split(r"&&|;", rest):
            toks = part.split()
            if "apt-get" in toks and "install" in toks:
                pkgs += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
    return pkgs


def _dpkg_index():
    """{package: (priority, essential, [dependency groups], [provides])} of
    this machine's installed packages."""
    r = _run(["dpkg-query", "-W", "-f",
              "${Package}\t${Priority}\t${Essential}\t${Pre-Depends}, ${Depends}\t${Provides}\t"
              "${db:Status-Abbrev}\n"])
    idx, provides = {}, {}
    for line in r.stdout.splitlines():
        pkg, prio, ess, deps, prov, status = line.split("\t")
        if not status.startswith("ii"):
            continue
        groups = []
        for g in deps.split(","):
            alts = [re.sub(r"[\s(].*|:any", "", a.strip()) for a in g.split("|")]
            alts = [a for a in alts if a]
            if alts:
                groups.append(alts)
        idx[pkg] = (prio, ess == "yes", groups)
        for p in prov.split(","):
            p = re.sub(r"[\s(].*", "", p.strip())
            if p:
                provides.setdefault(p, []).append(pkg)
    return idx, provides


def _closure(roots, idx, provides):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        for cand in [p] + provides.get(p, []):
            if cand in idx and cand not in seen:
                seen.add(cand)
                for alts in idx[cand][2]:
                    todo += alts
    return seen


def _owners(paths):
    """{path: the Debian package that ships it} (merged /usr aware), in one
    dpkg-query call; paths no package ships are left out."""
    cands = {}
    for path in paths:
        c = [path, os.path.realpath(path)]
        c += [x[4:] if x.startswith("/usr/") else "/usr" + x for x in list(c)]
        cands[path] = c
    r = _run(["dpkg-query", "-S"] + sorted({c for cs in cands.values() for c in cs}))
    shipped = {}
    for line in r.stdout.splitlines():
        pkgs, _, f = line.partition(": ")
        shipped[f.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    return {p: next(shipped[c] for c in cs if c in shipped)
            for p, cs in cands.items() if any(c in shipped for c in cs)}


def test_dockerfile_runtime_stage_provides_every_linked_library(ctx):
    with open("/etc/os-release") as f:
        osr = f.read()
    assert "VERSION_CODENAME=bookworm" in osr, \
        "this check maps libraries to Debian bookworm packages; this machine is:\n" + osr
    stages = _dockerfile_stages()
    assert [s["from"] for s in stages] == ["debian:bookworm", "debian:bookworm-slim"], \
        [s["from"] for s in stages]
    build, runtime = stages
    build_text = " ".join(r for _, r in build["lines"])
    assert "scripts/install-deps.sh --build-only" in build_text and "make" in build_text
    instr = {w: r for w, r in runtime["lines"]}
    assert re.match(r"^\d+(:\d+)?$", instr.get("USER", "")) and \
        not instr["USER"].startswith("0"), "the runtime must run as a numeric non-root USER"
    assert "/healthz" in instr.get("HEALTHCHECK", ""), "HEALTHCHECK must ask /healthz"
    assert instr.get("ENTRYPOINT") == '["cdc"]', instr.get("ENTRYPOINT")
    assert "/var/lib/cdc" in instr.get("VOLUME", ""), "the state directory must be a VOLUME"
    runtime_pkgs = _apt_installs(runtime)
    assert runtime_pkgs and not [p for p in runtime_pkgs if p.endswith("-dev")], runtime_pkgs
    assert "curl" in runtime_pkgs, "the HEALTHCHECK runs curl"

    idx, provides = _dpkg_index()
    unknown = [p for p in runtime_pkgs if p not in idx]
    assert not unknown, "runtime packages not installed on this (bookworm) machine, " \
        "so their names cannot be checked: %s" % unknown
    base = [p for p, (prio, ess, _) in idx.items() if prio == "required" or ess] + ["apt"]
    in_base = _closure(base, idx, provides)
    have = _closure(runtime_pkgs, idx, provides) | in_base
    binary = h.require_bin(h.cdc_bin(release=True), "CDC_BIN_RELEASE")
    ldd = _run(["ldd", binary])
    assert ldd.returncode == 0, ldd.stderr
    needed = set(re.findall(r"NEEDED.*\[(.*)\]", _run(["readelf", "-d", binary]).stdout))
    libs = [m.groups() for m in re.finditer(r"^\s*(\S+) => (/\S+)", ldd.stdout, re.M)]
    owners = _owners([path for _, path in libs])
    problems = []
    for lib, path in libs:
        pkg = owners.get(path)
        if pkg is None:
            problems.append("%s (%s): no Debian package ships it" % (lib, path))
        elif pkg not in have:
            problems.append("%s: package %s is not installed by the runtime stage" % (lib, pkg))
        elif lib in needed and pkg not in runtime_pkgs and pkg not in in_base:
            problems.append("%s: the binary links it directly; list %s in the runtime stage"
                            % (lib, pkg))
    assert not problems, "Dockerfile runtime stage:\n  " + "\n  ".join(problems)
    ctx.log("%d libraries, %d listed packages" % (len(ldd.stdout.splitlines()), len(runtime_pkgs)))

    # the build stage: a -dev package for every pkg-config module the Makefile uses
    mk = _read("Makefile")
    modules = re.search(r"^PKGS\s*:=\s*(.*)$", mk, re.M).group(1).split()
    deps_script = _read("scripts", "install-deps.sh")
    build_list = re.search(r"BUILD_PKGS=\((.*?)\)", deps_script, re.S).group(1)
    build_pkgs = set(re.sub(r"#.*", "", build_list).split())
    for mod in modules:
        pc = _run(["pkg-config", "--variable=pcfiledir", mod]).stdout.strip()
        pcfile = os.path.join(pc, mod + ".pc")
        owner = _owners([pcfile]).get(pcfile)
        assert owner in build_pkgs, \
            "pkg-config module %s comes from %s, which --build-only does not install" % (mod, owner)

    # the build context: every COPY source passes .dockerignore
    ignore = [l.strip() for l in _read(".dockerignore").splitlines()
              if l.strip() and not l.startswith("#")]
    assert ignore[0] == "*", ".dockerignore should exclude everything, then allow what is used"
    allowed = [p[1:].rstrip("/") for p in ignore[1:] if p.startswith("!")]
    for stage in stages:
        for word, rest in stage["lines"]:
            if word == "COPY" and not rest.startswith("--from"):
                for src in rest.split()[:-1]:
                    src = src.rstrip("/")
                    assert any(src == a or src.startswith(a + "/") for a in allowed), \
                        "COPY %s: .dockerignore leaves it out of the build context" % src
                    assert os.path.exists(_path(src)), "COPY %s: no such file" % src


# --------------------------------------------------------------------------
# systemd

def test_systemd_unit_verifies(ctx):
    unit = _read("packaging", "systemd", "cdc@.service")
    settings = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            settings.setdefault(k.strip(), []).append(v.strip())
    for key, val in (("Restart", "on-failure"), ("RestartPreventExitStatus", "2"),
                     ("StateDirectory", "cdc"), ("ProtectSystem", "strict"),
                     ("NoNewPrivileges", "yes"), ("EnvironmentFile", "-/etc/cdc/%i.env")):
        assert val in settings.get(key, []), "the unit lacks %s=%s" % (key, val)
    assert "RestartSec" in settings, "the unit must pause before restarting"
    stop = int(re.match(r"(\d+)s?$", settings["TimeoutStopSec"][0]).group(1))
    assert stop > 30, "TimeoutStopSec must exceed the default shutdown_timeout_seconds (30)"
    assert "%i.yaml" in settings["ExecStart"][0], settings["ExecStart"]

    # systemd-analyze verify: the instance, with the binary and the page installed
    dest = ctx.tmpdir("root")
    r = _run(["make", "-s", "install", "DESTDIR=" + dest], timeout=900)
    assert r.returncode == 0, r.stderr
    d = ctx.tmpdir("units")
    with open(os.path.join(d, "cdc@.service"), "w") as f:
        f.write(unit.replace("/usr/local/bin/cdc", os.path.join(dest, "usr/local/bin/cdc")))
    env = dict(os.environ, MANPATH=os.path.join(dest, "usr/local/share/man"))
    r = _run([_tool("systemd-analyze"), "verify", os.path.join(d, "cdc@orders.service")],
             env=env, cwd=d)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), \
        "systemd-analyze verify:\n%s%s" % (r.stdout, r.stderr)


# --------------------------------------------------------------------------
# Helm chart

CHART = ("deploy", "helm", "cdc")
ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


def _values_paths(tree, prefix=""):
    out = set()
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.add(prefix + k)
            out |= _values_paths(v, prefix + k + ".")
    return out


def test_helm_chart_templates_parse_and_wire_probes(ctx):
    yamllint = _run([_tool("yamllint"), "-s", _path(*CHART, "Chart.yaml"),
                     _path(*CHART, "values.yaml")])
    assert yamllint.returncode == 0, yamllint.stdout + yamllint.stderr
    with open(_path(*CHART, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    assert chart["apiVersion"] == "v2" and chart["name"] == "cdc", chart
    with open(_path(*CHART, "values.yaml")) as f:
        values = yaml.safe_load(f)
    known = _values_paths(values)
    defined = set()
    docs = {}
    for path in sorted(glob.glob(_path(*CHART, "templates", "*"))):
        name = os.path.basename(path)
        with open(path) as f:
            text = f.read()
        actions = ACTION.findall(text)
        # blocks open and close in pairs
        depth = 0
        for a in actions:
            if re.match(r"(if|with|range|define)\b", a):
                depth += 1
            elif a == "end":
                depth -= 1
            assert depth >= 0, "%s: {{ end }} without a block" % name
        assert depth == 0, "%s: %d unclosed {{ if/with/range/define }}" % (name, depth)
        for a in actions:
            defined |= set(re.findall(r'define "([^"]+)"', a))
            for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", a):
                assert ref in known, "%s: .Values.%s is not in values.yaml" % (name, ref)
        if not name.endswith(".yaml"):
            continue
        # the YAML around the template actions: control lines dropped,
        # expressions replaced by a scalar
        lines = []
        for line in text.splitlines():
            if re.fullmatch(r"\s*\{\{-?\s*(if|else|end|with|range|define)\b.*?\}\}\s*", line) or \
               re.fullmatch(r"\s*\{\{-?\s*(include|toYaml)\b.*\|\s*nindent.*\}\}\s*", line):
                continue
            lines.append(ACTION.sub("TEMPLATE", line))
        try:
            docs[name] = yaml.safe_load("\n".join(lines))
        except yaml.YAMLError as e:
            raise AssertionError("%s is not YAML around its template actions: %s" % (name, e))
        lint = _run([_tool("yamllint"), "-s", "-"], input="\n".join(lines) + "\n")
        assert lint.returncode == 0, "%s: yamllint:\n%s" % (name, lint.stdout)
    for path in glob.glob(_path(*CHART, "templates", "*")):
        for inc in re.findall(r'include "([^"]+)"', open(path).read()):
            assert inc in defined, "%s includes undefined %s" % (os.path.basename(path), inc)
    assert {"deployment.yaml", "service.yaml", "configmap.yaml", "pvc.yaml"} <= set(docs)

    dep = docs["deployment.yaml"]
    assert dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 1, dep["spec"]
    assert dep["spec"]["strategy"]["type"] == "Recreate", "a second pod must never overlap"
    pod = dep["spec"]["template"]
    ann = pod["metadata"]["annotations"]
    assert ann.get("prometheus.io/path") == "/metrics" and "prometheus.io/scrape" in ann, ann
    c = pod["spec"]["containers"][0]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        got = c[probe]["httpGet"]
        assert got["path"] == path and got["port"] == "http", "%s: %s, expected %s on port http" % (
            probe, got, path)
    assert c["args"] == ["run", "/etc/cdc/pipeline.yaml", "--platform-config",
                         "/etc/cdc/platform.yaml"], c["args"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["state"] == "/var/lib/cdc" and mounts["config"] == "/etc/cdc", mounts
    assert values["podSecurityContext"]["runAsNonRoot"] and \
        values["securityContext"]["readOnlyRootFilesystem"]
    assert docs["configmap.yaml"]["data"].keys() == {"pipeline.yaml", "platform.yaml"}
    assert values["terminationGracePeriodSeconds"] > values["platform"]["shutdown_timeout_seconds"]
    assert "secretRef" in _read(*CHART, "templates", "deployment.yaml")
    assert "${CDC_CONTROL_TOKEN}" == values["platform"]["control_token"]


# --------------------------------------------------------------------------
# linters

def test_shellcheck_scripts(ctx):
    files = sorted(glob.glob(_path("scripts", "*.sh"))) + [_path("packaging", "completion",
                                                                 "cdc.bash")]
    r = _run([_tool("shellcheck"), "-s", "bash", "-S", "style"] + files)
    assert r.returncode == 0, "shellcheck:\n" + r.stdout + r.stderr


def test_yamllint(ctx):
    files = sorted(glob.glob(_path("examples", "**", "*.yaml"), recursive=True)) + [
        _path(*CHART, "Chart.yaml"), _path(*CHART, "values.yaml"), _path(".yamllint")]
    r = _run([_tool("yamllint"), "-s"] + files)
    assert r.returncode == 0, "yamllint:\n" + r.stdout + r.stderr
