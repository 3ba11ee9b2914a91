#!/usr/bin/python3
"""Runs cdc's integration tests.

    tests/integration/run.py                     # every tests/integration/test_*.py
    tests/integration/run.py test_cli test_crash # some modules (name or path)
    tests/integration/run.py test_cli.py::test_help
    tests/integration/run.py -k crash            # tests whose id contains "crash"
    tests/integration/run.py --keep              # keep temp dirs and logs of failures
    tests/integration/run.py --list

A test is a function `test_*(ctx)` in a module; ctx is a harness.Ctx.  Prints
PASS/FAIL per test with its duration and the reason; exits 1 if any failed.
"""

import argparse
import importlib
import inspect
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

# quick checks first, the long ones last; other modules run after these
ORDER = ["test_harness", "test_config_errors", "test_cli", "test_capture", "test_types",
         "test_big_txn", "test_crash"]


def shown(path):
    return os.path.relpath(path, harness.REPO_ROOT) if path.startswith(harness.REPO_ROOT + os.sep) else path


def discover(selectors, substr):
    """[(test id, function)] in file order, then definition order."""
    wanted_modules = {}
    for sel in selectors:
        mod, _, func = sel.partition("::")
        mod = os.path.basename(mod)
        if mod.endswith(".py"):
            mod = mod[:-3]
        wanted_modules.setdefault(mod, set())
        if func:
            wanted_modules[mod].add(func)
    names = sorted((f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py")),
                   key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for mod in wanted_modules:
        if mod not in names:
            raise SystemExit("no test module %s in %s" % (mod, os.path.relpath(HERE)))
    tests = []
    for name in names:
        if wanted_modules and name not in wanted_modules:
            continue
        try:
            module = importlib.import_module(name)
        except Exception as e:  # report a broken module as a failing test
            def broken(ctx, e=e):
                raise e
            if not substr or substr in name:
                tests.append(("%s::<import>" % name, broken))
            continue
        funcs = [
            f for n, f in vars(module).items()
            if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == name
        ]
        funcs.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in funcs:
            tid = "%s::%s" % (name, f.__name__)
            if wanted_modules.get(name) and f.__name__ not in wanted_modules[name]:
                continue
            if substr and substr not in tid:
                continue
            tests.append((tid, f))
    return tests


def reason(exc):
    """A short, readable failure reason: the message, and where it was raised
    in the test code."""
    if isinstance(exc, harness.CdcNotFound):
        return str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    ours = [fr for fr in tb if os.path.dirname(os.path.abspath(fr.filename)) == HERE]
    where = ""
    if ours:
        where = " [" + " <- ".join(
            "%s:%d" % (os.path.basename(fr.filename), fr.lineno) for fr in reversed(ours[-4:])) + "]"
    msg = str(exc) or exc.__class__.__name__
    if not isinstance(exc, AssertionError):
        msg = "%s: %s" % (exc.__class__.__name__, msg)
        if not ours or len(ours) < len(tb):
            return msg + where + "\n" + "".join(traceback.format_exception(exc)[-12:])
    return msg + where


def main():
    ap = argparse.ArgumentParser(description="cdc integration tests")
    ap.add_argument("selectors", nargs="*", help="test modules (name or path), optionally ::function")
    ap.add_argument("-k", dest="substr", help="only tests whose id contains this")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs and cdc logs of failing tests")
    ap.add_argument("--list", action="store_true", help="list tests and exit")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress notes from the tests")
    args = ap.parse_args()

    tests = discover(args.selectors, args.substr)
    if args.list:
        for tid, _ in tests:
            print(tid)
        return 0
    if not tests:
        print("no tests selected")
        return 1
    print("cdc integration tests: CDC_BIN=%s CDC_BIN_RELEASE=%s" % (
        shown(harness.cdc_bin()), shown(harness.cdc_bin(True))), flush=True)
    results = []
    t_all = time.monotonic()
    for tid, func in tests:
        print("RUN  %s" % tid, flush=True)
        ctx = harness.Ctx(tid, keep=args.keep, verbose=not args.quiet)
        t0 = time.monotonic()
        err = None
        try:
            func(ctx)
        except KeyboardInterrupt:
            ctx.failed = True
            ctx.close()
            raise
        except BaseException as e:  # report and go on
            err = e
            ctx.failed = True
        ctx.close()
        dt = time.monotonic() - t0
        if err is None:
            print("PASS %s (%.1fs)" % (tid, dt), flush=True)
        else:
            text = reason(err).replace("\n", "\n     ")
            print("FAIL %s (%.1fs): %s" % (tid, dt, text), flush=True)
        results.append((tid, err, dt))
    failed = [r for r in results if r[1] is not None]
    print("\n%d passed, %d failed in %.0fs" % (len(results) - len(failed), len(failed),
                                               time.monotonic() - t_all))
    for tid, err, _ in failed:
        print("  FAIL %s: %s" % (tid, reason(err).splitlines()[0]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
