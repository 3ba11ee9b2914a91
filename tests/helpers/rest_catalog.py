#!/usr/bin/python3
"""A TEST FAKE of an Iceberg REST catalog server, for cdc's REST catalog
client tests.  It is not a catalog to run anything on: one process, tables
kept in memory (metadata files written under the warehouse directory, as a
real server would), only the calls cdc makes, and only the requirement and
update types cdc sends.

    rest_catalog.py --port N --warehouse file:///dir [--prefix P]

Endpoints (apache/iceberg open-api/rest-catalog-open-api.yaml):
  GET  /v1/config                                 -> {"overrides":{"prefix":P}}
  POST /v1/{P}/namespaces                         create (409 if it exists)
  POST /v1/{P}/namespaces/{ns}/tables             create a table (409 if it exists)
  GET  /v1/{P}/namespaces/{ns}/tables/{t}         LoadTableResult (404 if none)
  POST /v1/{P}/namespaces/{ns}/tables/{t}         commit: requirements
       assert-table-uuid, assert-ref-snapshot-id, assert-current-schema-id,
       assert-last-assigned-field-id (409 when one fails); updates
       add-snapshot, set-snapshot-ref, remove-snapshots, set-properties,
       add-schema, set-current-schema
  POST /test/fail-next-commit                     the next commit answers 503
       after applying (a "commit state unknown" for the client to handle)
Prints "listening PORT" once ready.  Stops on SIGTERM.
"""

import argparse
import json
import os
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
TABLES = {}  # (ns, name) -> (metadata_location, metadata)
NAMESPACES = set()
STATE = {"fail_next_commit": False}


def now_ms():
    return int(time.time() * 1000)


def write_metadata(meta, version):
    loc = "%s/metadata/%05d-%s.metadata.json" % (meta["location"], version, uuid.uuid4())
    path = urllib.parse.urlparse(loc).path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(meta, f)
    return loc


def error(handler, code, kind, msg):
    body = json.dumps({"error": {"message": msg, "type": kind, "code": code}}).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def reply(handler, obj):
    body = json.dumps(obj).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def check_requirements(meta, reqs):
    for r in reqs:
        t = r.get("type")
        if t == "assert-table-uuid":
            if meta["table-uuid"] != r["uuid"]:
                return "table uuid differs"
        elif t == "assert-current-schema-id":
            if meta["current-schema-id"] != r["current-schema-id"]:
                return "current schema is %s, not %s" % (meta["current-schema-id"],
                                                         r["current-schema-id"])
        elif t == "assert-last-assigned-field-id":
            if meta["last-column-id"] != r["last-assigned-field-id"]:
                return "last column id is %s, not %s" % (meta["last-column-id"],
                                                         r["last-assigned-field-id"])
        elif t == "assert-ref-snapshot-id":
            ref = meta.get("refs", {}).get(r["ref"])
            want = r.get("snapshot-id")
            have = ref["snapshot-id"] if ref else None
            if have != want:
                return "ref %s is at %s, not %s" % (r["ref"], have, want)
        else:
            return "requirement %s is not supported by this fake" % t
    return None


def apply_updates(meta, updates):
    for u in updates:
        a = u.get("action")
        if a == "add-snapshot":
            s = u["snapshot"]
            meta["snapshots"].append(s)
            meta["last-sequence-number"] = max(meta["last-sequence-number"], s["sequence-number"])
        elif a == "set-snapshot-ref":
            meta.setdefault("refs", {})[u["ref-name"]] = {"snapshot-id": u["snapshot-id"],
                                                         "type": u["type"]}
            if u["ref-name"] == "main":
                meta["current-snapshot-id"] = u["snapshot-id"]
                meta.setdefault("snapshot-log", []).append(
                    {"snapshot-id": u["snapshot-id"], "timestamp-ms": now_ms()})
        elif a == "remove-snapshots":
            gone = set(u["snapshot-ids"])
            meta["snapshots"] = [s for s in meta["snapshots"] if s["snapshot-id"] not in gone]
            meta["snapshot-log"] = [e for e in meta.get("snapshot-log", [])
                                    if e["snapshot-id"] not in gone]
        elif a == "add-schema":
            meta["schemas"].append(u["schema"])
            meta["last-column-id"] = max(meta["last-column-id"], u.get("last-column-id", 0))
        elif a == "set-current-schema":
            sid = u["schema-id"]
            meta["current-schema-id"] = meta["schemas"][-1]["schema-id"] if sid == -1 else sid
        elif a == "set-properties":
            meta.setdefault("properties", {}).update(u["updates"])
        else:
            raise ValueError("update %s is not supported by this fake" % a)


class Handler(BaseHTTPRequestHandler):
    prefix = ""
    warehouse = ""

    def log_message(self, fmt, *args):
        pass

    def parts(self):
        path = urllib.parse.urlparse(self.path).path
        segs = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        if segs[:1] != ["v1"]:
            return None
        segs = segs[1:]
        if self.prefix and segs[:1] == [self.prefix]:
            segs = segs[1:]
        return segs

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        if urllib.parse.urlparse(self.path).path == "/v1/config":
            return reply(self, {"defaults": {}, "overrides": {"prefix": self.prefix}})
        p = self.parts()
        if p and len(p) == 4 and p[0] == "namespaces" and p[2] == "tables":
            key = (p[1].replace("\x1f", "."), p[3])
            with LOCK:
                t = TABLES.get(key)
            if not t:
                return error(self, 404, "NoSuchTableException", "no table %s.%s" % key)
            return reply(self, {"metadata-location": t[0], "metadata": t[1]})
        return error(self, 404, "NotFound", self.path)

    def do_POST(self):
        if self.path == "/test/fail-next-commit":
            STATE["fail_next_commit"] = True
            return reply(self, {})
        p = self.parts()
        req = self.body()
        if p == ["namespaces"]:
            ns = ".".join(req["namespace"])
            with LOCK:
                if ns in NAMESPACES:
                    return error(self, 409, "AlreadyExistsException", "namespace exists")
                NAMESPACES.add(ns)
            return reply(self, {"namespace": req["namespace"], "properties": {}})
        if p and len(p) == 3 and p[0] == "namespaces" and p[2] == "tables":
            return self.create(p[1].replace("\x1f", "."), req)
        if p and len(p) == 4 and p[0] == "namespaces" and p[2] == "tables":
            return self.commit((p[1].replace("\x1f", "."), p[3]), req)
        return error(self, 404, "NotFound", self.path)

    def create(self, ns, req):
        key = (ns, req["name"])
        spec = req.get("partition-spec") or {"spec-id": 0, "fields": []}
        fields = spec.get("fields", [])
        meta = {
            "format-version": 2, "table-uuid": str(uuid.uuid4()),
            "location": req.get("location") or "%s/%s/%s" % (self.warehouse, ns, req["name"]),
            "last-sequence-number": 0, "last-updated-ms": now_ms(),
            "last-column-id": max([f["id"] for f in req["schema"]["fields"]] or [0]),
            "current-schema-id": req["schema"].get("schema-id", 0), "schemas": [req["schema"]],
            "default-spec-id": spec.get("spec-id", 0), "partition-specs": [spec],
            "last-partition-id": max([f["field-id"] for f in fields] or [999]),
            "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}],
            "properties": req.get("properties", {}), "current-snapshot-id": -1, "refs": {},
            "snapshots": [], "snapshot-log": [], "metadata-log": [],
        }
        with LOCK:
            if key in TABLES:
                return error(self, 409, "AlreadyExistsException", "table exists")
            loc = write_metadata(meta, 0)
            TABLES[key] = (loc, meta)
        return reply(self, {"metadata-location": loc, "metadata": meta})

    def commit(self, key, req):
        with LOCK:
            t = TABLES.get(key)
            if not t:
                return error(self, 404, "NoSuchTableException", "no table %s.%s" % key)
            loc, meta = t
            why = check_requirements(meta, req.get("requirements", []))
            if why:
                return error(self, 409, "CommitFailedException", why)
            new = json.loads(json.dumps(meta))
            try:
                apply_updates(new, req.get("updates", []))
            except ValueError as e:
                return error(self, 400, "BadRequestException", str(e))
            new["metadata-log"] = new.get("metadata-log", []) + [
                {"metadata-file": loc, "timestamp-ms": meta["last-updated-ms"]}]
            new["last-updated-ms"] = now_ms()
            version = int(os.path.basename(loc).split("-")[0]) + 1
            newloc = write_metadata(new, version)
            TABLES[key] = (newloc, new)
            if STATE["fail_next_commit"]:
                STATE["fail_next_commit"] = False
                return error(self, 503, "ServiceUnavailable", "applied, but answering 503")
        return reply(self, {"metadata-location": newloc, "metadata": new})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--warehouse", required=True)
    ap.add_argument("--prefix", default="")
    a = ap.parse_args()
    Handler.prefix = a.prefix
    Handler.warehouse = a.warehouse.rstrip("/")
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print("listening %d" % a.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
