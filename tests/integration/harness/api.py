"""A running pipeline's HTTP endpoints: requests with or without a bearer
token, the status document, and a strict parser of the Prometheus text
format (0.0.4) written here, independent of cdc: HELP and TYPE lines, metric
and label syntax, families kept together, counters, and histograms whose
buckets rise with `le` up to a +Inf bucket equal to the count."""

import json
import math
import re
import urllib.error
import urllib.request

from .common import wait_for


def request(method, url, token=None, body=None, timeout=10, headers=None):
    """(status, headers dict with lower-case names, body text); status 0 if
    nothing answers."""
    if method == "POST" and body is None:
        body = b""
    req = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0, {}, ""


# --------------------------------------------------------------------------
# the Prometheus text format

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LABEL_VALUE = r'"((?:[^"\\\n]|\\[\\"n])*)"'
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def _unescape(v):
    return re.sub(r'\\([\\"n])', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def _parse_labels(text, where):
    """'a="x",b="y"' -> {a: x, b: y}; strict about syntax and repeats."""
    labels, pos = {}, 0
    while pos < len(text):
        m = re.compile(r"(%s)=%s" % (_LABEL_NAME, _LABEL_VALUE)).match(text, pos)
        if not m:
            raise AssertionError("%s: bad label syntax at %r" % (where, text[pos:pos + 40]))
        if m.group(1) in labels:
            raise AssertionError("%s: label %s repeated" % (where, m.group(1)))
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise AssertionError("%s: expected ',' between labels at %r" % (where, text[pos:]))
            pos += 1
    return labels


def _parse_value(v, where):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    if not re.fullmatch(r"[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)", v):
        raise AssertionError("%s: value %r is not a number" % (where, v))
    return float(v)


def _family_of(name, types):
    """The family a sample name belongs to (histogram parts included)."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return None


class Metrics:
    """A parsed /metrics text: types {family: type}, helps {family: text},
    samples {(name, frozenset(labels.items())): value} and histograms
    {family: {frozenset(labels without le): {"buckets": [(le, count)],
    "sum": s, "count": n}}}."""

    def __init__(self, text):
        self.types, self.helps, self.samples, self.histograms = {}, {}, {}, {}
        self._parse(text)
        self._check_histograms()

    def _parse(self, text):
        if not text.endswith("\n"):
            raise AssertionError("metrics text does not end with a newline")
        done, current = set(), None  # families finished, the one being written
        for n, line in enumerate(text.split("\n")[:-1], 1):
            where = "metrics line %d" % n
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                parts = line.split(" ", 3)
                if len(parts) < 4 or not re.fullmatch(_NAME, parts[2]):
                    raise AssertionError("%s: bad %s line: %r" % (where, parts[1], line))
                fam = parts[2]
                if fam != current:
                    if fam in done or (current and fam in self.types):
                        raise AssertionError("%s: family %s is split: %r" % (where, fam, line))
                    if current:
                        done.add(current)
                    current = fam
                if parts[1] == "HELP":
                    if fam in self.helps:
                        raise AssertionError("%s: repeated HELP: %r" % (where, line))
                    self.helps[fam] = parts[3]
                else:
                    if parts[3] not in _TYPES or fam in self.types:
                        raise AssertionError("%s: bad or repeated TYPE: %r" % (where, line))
                    self.types[fam] = parts[3]
                continue
            if line.startswith("#") or not line.strip():
                continue
            m = re.match(r"^(%s)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$" % _NAME, line)
            if not m:
                raise AssertionError("%s is not a sample: %r" % (where, line))
            name = m.group(1)
            fam = _family_of(name, self.types)
            if fam is None:
                raise AssertionError("%s: sample of %s before its TYPE" % (where, name))
            if fam != current:
                raise AssertionError("%s: sample of %s outside its family's block" % (where, name))
            labels = _parse_labels(m.group(2) or "", where)
            value = _parse_value(m.group(3), where)
            if math.isnan(value):
                raise AssertionError("%s: NaN in %r" % (where, line))
            key = (name, frozenset(labels.items()))
            if key in self.samples:
                raise AssertionError("%s: duplicate sample %r" % (where, line))
            typ = self.types[fam]
            if typ == "counter" and (value < 0 or not name.endswith("_total")):
                raise AssertionError("%s: bad counter sample %r" % (where, line))
            if typ == "histogram":
                self._histogram_sample(fam, name, labels, value, where)
            self.samples[key] = value

    def _histogram_sample(self, fam, name, labels, value, where):
        if name == fam:
            raise AssertionError("%s: a histogram sample needs _bucket, _sum or _count" % where)
        le = labels.pop("le", None)
        if (le is None) == name.endswith("_bucket"):
            raise AssertionError("%s: le belongs to _bucket samples only" % where)
        h = self.histograms.setdefault(fam, {}).setdefault(
            frozenset(labels.items()), {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            h["buckets"].append((_parse_value(le, where), value))
        else:
            h[name[len(fam) + 1:]] = value

    def _check_histograms(self):
        for fam, series in self.histograms.items():
            for labels, h in series.items():
                what = "histogram %s%s" % (fam, dict(labels))
                les = [le for le, _ in h["buckets"]]
                if les != sorted(les) or len(set(les)) != len(les):
                    raise AssertionError("%s: buckets not in rising le order: %s" % (what, les))
                if not les or les[-1] != math.inf:
                    raise AssertionError("%s: no le=\"+Inf\" bucket" % what)
                counts = [c for _, c in h["buckets"]]
                if any(b < a for a, b in zip(counts, counts[1:])):
                    raise AssertionError("%s: cumulative counts fall: %s" % (what, counts))
                if h["count"] is None or h["sum"] is None:
                    raise AssertionError("%s: _sum or _count missing" % what)
                if counts[-1] != h["count"]:
                    raise AssertionError("%s: +Inf bucket %s != count %s" % (what, counts[-1], h["count"]))
                if h["sum"] < 0:
                    raise AssertionError("%s: negative sum" % what)

    def value(self, name, **labels):
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            raise AssertionError("no sample %s%s in /metrics" % (name, labels or ""))
        return self.samples[key]

    def histogram(self, name, **labels):
        h = self.histograms.get(name, {}).get(frozenset(labels.items()))
        if h is None:
            raise AssertionError("no histogram %s%s in /metrics" % (name, labels or ""))
        return h


def parse_prometheus(text):
    return Metrics(text)


class Endpoint:
    """A pipeline's HTTP server at 127.0.0.1:port (token: for the control
    API)."""

    def __init__(self, port, token=None):
        self.base = "http://127.0.0.1:%d" % port
        self.token = token

    def get(self, path, token=None):
        return request("GET", self.base + path, token)

    def post(self, path, token=None, body=None, headers=None):
        return request("POST", self.base + path, token, body=body, headers=headers)

    def metrics(self):
        st, hdr, body = self.get("/metrics")
        assert st == 200, "/metrics answered %d: %s" % (st, body[:300])
        ctype = hdr.get("content-type", "")
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, \
            "/metrics Content-Type is %r" % ctype
        return parse_prometheus(body)

    def status(self):
        st, _, body = self.get("/status")
        assert st == 200, "/status answered %d: %s" % (st, body[:300])
        return json.loads(body)

    def control(self, method, path, want=200):
        """A control API call with the endpoint's token: the JSON answer."""
        st, _, body = request(method, self.base + path, self.token)
        assert st == want, "%s %s answered %d, want %d: %s" % (method, path, st, want, body[:300])
        return json.loads(body) if body.strip() else None


def wait_http(proc, ep, path, want, timeout, what):
    """Polls path until it answers `want`; fails early if cdc exits."""
    last = [None]

    def ok():
        if proc.poll() is not None:
            raise AssertionError("cdc exited while waiting for %s; %s" % (what, proc.result().describe()))
        st, _, body = ep.get(path)
        last[0] = (st, body[:400])
        return st == want
    try:
        wait_for(ok, timeout, what)
    except AssertionError as e:
        if last[0] and last[0][0] == 0:
            raise AssertionError("%s: nothing answers on %s (is the health server started by "
                                 "`cdc run` when health_enabled is true?)" % (e, ep.base))
        raise AssertionError("%s; last answer: %r" % (e, last[0]))
