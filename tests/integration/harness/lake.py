"""Lakehouse format tests' tools: the lake_write helper (cdc's Parquet and
Iceberg writers), the independent readers in tests/js run with node
(hyparquet, DuckDB, icebird, avsc), s3rver, and a SigV4-checking proxy in
front of it.  Missing readers FAIL the tests: nothing is skipped."""

# flake8: noqa: F401,F403,F405
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .common import *  # noqa: F401,F403
from .cdc import cdc_bin, CdcNotFound

JS_DIR = os.path.join(REPO_ROOT, "tests", "js")
JS_PACKAGES = ("hyparquet", "hyparquet-compressors", "icebird", "@duckdb/node-api", "avsc",
               "s3rver")


def require_js():
    """Fails (never skips) when node or the pinned readers are missing."""
    if not shutil.which("node"):
        raise AssertionError("node is not installed: run scripts/install-deps.sh")
    missing = [p for p in JS_PACKAGES
               if not os.path.isdir(os.path.join(JS_DIR, "node_modules", p))]
    if missing:
        raise AssertionError("tests/js/node_modules lacks %s: run scripts/install-deps.sh "
                             "(npm ci --prefix tests/js)" % ", ".join(missing))


def lake_bin():
    path = os.path.join(os.path.dirname(cdc_bin()), "tests", "lake_write")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise CdcNotFound("helper not found: %s (build it with `make helpers`, same VARIANT as "
                          "the cdc binary)" % os.path.relpath(path, REPO_ROOT))
    return path


def lake_write(ctx, args, spec=None, expect_rc=0, timeout=300):
    """Runs lake_write with args (a spec dict is written to a file and its
    path appended); returns the parsed JSON it printed (or the process when
    expect_rc is not 0)."""
    argv = [lake_bin()] + list(args)
    if spec is not None:
        path = os.path.join(ctx.tmpdir("spec"), "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        if args[0] == "parquet":
            argv.insert(2, path)  # lake_write parquet SPEC OUT
        else:
            argv.append(path)  # lake_write table SPEC
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    for marker in SANITIZER_MARKERS:
        assert marker not in r.stderr, "lake_write: sanitizer report:\n%s" % tail(r.stderr, 40)
    if expect_rc != 0:
        assert r.returncode == expect_rc, "lake_write exited %d, expected %d: %s" % (
            r.returncode, expect_rc, r.stderr)
        return r
    assert r.returncode == 0, "lake_write %s failed (%d): %s" % (args[0], r.returncode, r.stderr)
    return json.loads(r.stdout)


def node(script, *args, env=None, timeout=300):
    """Runs tests/js/<script> and returns the JSON it printed."""
    require_js()
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(["node", os.path.join(JS_DIR, script)] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=JS_DIR,
                       timeout=timeout, env=e)
    assert r.returncode == 0, "node %s %s failed (%d):\n%s" % (script, " ".join(map(str, args)),
                                                            r.returncode, tail(r.stderr, 30))
    return json.loads(r.stdout)


def file_path(uri):
    assert uri.startswith("file://"), uri
    return urllib.parse.unquote(uri[len("file://"):])


# --------------------------------------------------------------------------
# reading Iceberg tables back (icebird, avsc, hyparquet, DuckDB)


def schema(*fields, ident=()):
    return {"type": "struct", "schema-id": 0, "identifier-field-ids": list(ident),
            "fields": [{"id": i + 1, "name": n, "required": r, "type": t}
                       for i, (n, t, r) in enumerate(fields)]}


KV = schema(("id", "long", True), ("v", "string", False), ident=(1,))


def read_table(url, *args, env=None):
    rows = node("read_iceberg.mjs", url, *args, env=env)["rows"]
    return sorted((int(r["id"]), r["v"]) for r in rows)


def avro(*paths):
    return {f["file"]: f for f in node("read_avro.mjs", *paths)}


def check_avro_fields(schema_json):
    """Every record field carries a field-id, every array an element-id or
    key/value records with ids (PyIceberg refuses files without them)."""
    def walk(t):
        if isinstance(t, list):
            for x in t:
                walk(x)
        elif isinstance(t, dict):
            if t.get("type") == "record":
                for f in t["fields"]:
                    assert "field-id" in f, "Avro field %s has no field-id" % f["name"]
                    walk(f["type"])
            elif t.get("type") == "array":
                items = t["items"]
                assert "element-id" in t or (isinstance(items, dict) and
                                             items.get("type") == "record"), t
                walk(items)
    walk(schema_json)


def check_table_files(meta, expect_seq):
    """avsc reads every manifest list and manifest of every snapshot: header
    keys and field values against the metadata JSON and the files on disk.
    Returns {data file path: entry} of the current snapshot's live files."""
    live = {}
    for s in meta["snapshots"]:
        lpath = file_path(s["manifest-list"])
        ml = avro(lpath)[lpath]
        assert ml["codec"] == "null" and ml["meta"]["avro.codec"] == "null"
        assert ml["meta"]["snapshot-id"] == str(s["snapshot-id"])
        assert ml["meta"]["parent-snapshot-id"] == str(s.get("parent-snapshot-id", "null"))
        assert ml["meta"]["sequence-number"] == str(s["sequence-number"])
        assert ml["meta"]["format-version"] == "2"
        check_avro_fields(json.loads(ml["meta"]["avro.schema"]))
        for m in ml["records"]:
            mpath = file_path(m["manifest_path"])
            assert m["manifest_length"] == os.path.getsize(mpath), m
            assert m["sequence_number"] <= s["sequence-number"] and \
                m["min_sequence_number"] <= m["sequence_number"], m
            # a manifest is added by this snapshot or carried over from an
            # ancestor (which expiry may have removed since)
            assert m["added_snapshot_id"] == s["snapshot-id"] or \
                m["sequence_number"] < s["sequence-number"], m
            mf = avro(mpath)[mpath]
            hdr = mf["meta"]
            assert hdr["format-version"] == "2" and hdr["avro.codec"] == "null"
            assert hdr["content"] == ("deletes" if m["content"] == 1 else "data"), hdr
            assert hdr["partition-spec-id"] == "0" and hdr["schema-id"] == "0"
            assert json.loads(hdr["partition-spec"]) == meta["partition-specs"][0]["fields"]
            assert json.loads(hdr["schema"])["fields"] == meta["schemas"][0]["fields"]
            check_avro_fields(json.loads(hdr["avro.schema"]))
            counts = {0: 0, 1: 0, 2: 0}
            for e in mf["records"]:
                counts[e["status"]] += 1
                df = e["data_file"]
                assert df["content"] in ((0,) if m["content"] == 0 else (1, 2)), df
                assert df["file_format"] == "PARQUET"
                if e["status"] == 1:  # added: numbers inherited from the list,
                    # or an older data sequence number kept by compaction
                    assert e["snapshot_id"] == m["added_snapshot_id"], e
                    assert e["sequence_number"] is None or \
                        e["sequence_number"] < m["sequence_number"], e
                else:
                    assert e["sequence_number"] is not None and e["file_sequence_number"] is not None
                path = file_path(df["file_path"])
                if s["snapshot-id"] == meta["current-snapshot-id"] and e["status"] != 2:
                    live[path] = dict(e, seq=e["sequence_number"] or m["sequence_number"])
                    assert os.path.getsize(path) == df["file_size_in_bytes"], df
                    assert df["split_offsets"] == [4], df
                if df["content"] == 2:
                    assert df["equality_ids"] == [1], df
                else:
                    assert df["equality_ids"] is None, df
                if df["content"] == 1:
                    assert df["referenced_data_file"] and df["sort_order_id"] is None, df
            assert (counts[1], counts[0], counts[2]) == (
                m["added_files_count"], m["existing_files_count"], m["deleted_files_count"]), m
    seqs = [s["sequence-number"] for s in meta["snapshots"]]
    assert seqs == expect_seq, seqs
    return live


def check_live_parquet(live):
    """Each live data or delete file: both readers, field ids, and the
    manifest's record count, value counts and id bounds."""
    for path, e in live.items():
        df = e["data_file"]
        got = node("read_parquet.mjs", path)
        rows = got["duckdb"]["rows"]
        assert len(rows) == df["record_count"] == len(got["hyparquet"]["rows"]), (path, df)
        ids = [int(f["field_id"]) for f in got["duckdb"]["schema"][1:]]
        if df["content"] == 1:
            assert ids == [2147483546, 2147483545], ids
            assert {r["file_path"] for r in rows} == {df["referenced_data_file"]}
        elif df["content"] == 2:
            assert ids == [1], ids
        else:
            assert ids == [1, 2], ids
        vc = {x["key"]: x["value"] for x in df["value_counts"]}
        assert vc[ids[0]] == len(rows), (vc, len(rows))
        if df["content"] != 1:
            keys = [int(r["id"]) for r in rows]
            lo = {x["key"]: x["value"]["hex"] for x in df["lower_bounds"]}
            hi = {x["key"]: x["value"]["hex"] for x in df["upper_bounds"]}
            assert lo[1] == struct.pack("<q", min(keys)).hex() and \
                hi[1] == struct.pack("<q", max(keys)).hex(), (lo, hi)


# --------------------------------------------------------------------------
# S3: s3rver, and a proxy that checks every signed request independently


def _sigv4_check(method, path, query, headers, body, secret):
    """Recomputes the AWS SigV4 signature of a request (our own reading of
    the spec, in Python) and returns None when it matches, else the reason."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "no SigV4 Authorization header"
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    cred = fields["Credential"].split("/")
    date, region, service = cred[1], cred[2], cred[3]
    signed = fields["SignedHeaders"].split(";")
    payload = headers.get("x-amz-content-sha256", "")
    if payload != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 %s is not the SHA-256 of the body" % payload
    enc = lambda s, safe: urllib.parse.quote(s, safe=safe)  # noqa: E731
    canon_uri = enc(urllib.parse.unquote(path), "/~")
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    canon_query = "&".join("%s=%s" % (enc(k, "~"), enc(v, "~")) for k, v in pairs)
    canon_headers = "".join("%s:%s\n" % (h, " ".join(headers.get(h, "").split()))
                            for h in signed)
    creq = "\n".join([method, canon_uri, canon_query, canon_headers, ";".join(signed), payload])
    amz_date = headers.get("x-amz-date", "")
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(cred[1:]),
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if want != fields["Signature"]:
        return "signature mismatch (canonical request %r)" % creq
    return None


class S3Proxy:
    """Forwards to s3rver after checking SigV4 (requests without an
    Authorization header are the readers' anonymous GETs and pass as they
    are).  Also does what s3rver does not: a PUT with If-None-Match: * on an
    existing key answers 412.  Records every request."""

    def __init__(self, upstream_port, secret):
        self.upstream = upstream_port
        self.secret = secret
        self.log = []  # (method, path, query, signed, problem)
        self.port = free_port()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                signed = "authorization" in hdrs
                problem = (_sigv4_check(self.command, u.path, u.query, hdrs, body, proxy.secret)
                           if signed else None)
                proxy.log.append((self.command, u.path, u.query, signed, problem))
                if problem:
                    return self.answer(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
                if (self.command == "PUT" and hdrs.get("if-none-match") == "*" and not u.query
                        and proxy.exists(u.path)):
                    return self.answer(412, b"<Error><Code>PreconditionFailed</Code></Error>")
                c = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=60)
                fwd = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "content-length", "connection")}
                c.request(self.command, self.path, body=body, headers=fwd)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                # a HEAD answer carries the object's length, not the body's
                length = r.getheader("Content-Length") if self.command == "HEAD" else len(data)
                self.send_header("Content-Length", str(length or 0))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                c.close()

            def answer(self, code, data):
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def exists(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=30)
        c.request("HEAD", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status == 200

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def start_s3(ctx, bucket="lake"):
    """s3rver on a free loopback port with one bucket, behind an S3Proxy.
    Returns (proxy, endpoint URL)."""
    require_js()
    port = free_port()
    d = ctx.tmpdir("s3")
    log = open(os.path.join(d, "s3rver.log"), "w")
    p = subprocess.Popen(["node", os.path.join(JS_DIR, "node_modules", "s3rver", "bin",
                                               "s3rver.js"),
                          "-d", d, "-a", "127.0.0.1", "-p", str(port), "--configure-bucket", bucket,
                          "--silent"], stdout=log, stderr=subprocess.STDOUT, cwd=JS_DIR)

    def stop():
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
    ctx.defer(stop)

    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_for(up, 30, "s3rver to listen")
    proxy = S3Proxy(port, "S3RVER")
    ctx.defer(proxy.stop)
    return proxy, "http://127.0.0.1:%d" % proxy.port


def start_rest_catalog(ctx, warehouse, prefix="cat"):
    """The REST catalog test fake (tests/helpers/rest_catalog.py)."""
    port = free_port()
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO_ROOT, "tests", "helpers",
                                                            "rest_catalog.py"),
                          "--port", str(port), "--warehouse", warehouse, "--prefix", prefix],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop():
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    ctx.defer(stop)
    line = p.stdout.readline()
    assert line.startswith("listening"), "REST catalog fake did not start: %r" % line
    return "http://127.0.0.1:%d" % port
