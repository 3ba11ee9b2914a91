"""Constants and small helpers every part of the harness uses."""

# flake8: noqa: F401,F403,F405
import base64
import collections
import contextlib
import decimal
import hashlib
import hmac
import io
import json
import math
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psycopg2
import psycopg2.extras


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PG_SCRIPT = os.path.join(REPO_ROOT, "scripts", "pg-throwaway.sh")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres"
UNCHANGED = "__debezium_unavailable_value"
OPS = {"INSERT": "c", "UPDATE": "u", "DELETE": "d", "TRUNCATE": "t"}

# Lines that mean a sanitizer found something (ASan, LSan, UBSan, TSan).
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "ERROR: ThreadSanitizer",
)


class CdcNotFound(Exception):
    """The cdc binary is missing: the test cannot run."""


# --------------------------------------------------------------------------
# small helpers


def lsn_to_int(text):
    hi, lo = text.strip().split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def int_to_lsn(n):
    return "%X/%X" % (n >> 32, n & 0xFFFFFFFF)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qident(name):
    return '"' + name.replace('"', '""') + '"'


def qtable(table):
    """'schema.table' -> quoted "schema"."table"."""
    schema, _, name = table.partition(".")
    return qident(schema) + "." + qident(name)


def wait_for(predicate, timeout, what, interval=0.1):
    """Polls predicate() until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def short(value, limit=120):
    s = value if isinstance(value, str) else repr(value)
    if len(s) > limit:
        s = s[: limit - 30] + "…(%d chars)…" % len(s) + s[-20:]
    return s


def tail(text, n=25):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------
# YAML writer (block style) for configs given as dicts


# a scalar written without quotes ("{" would open a flow mapping)
_PLAIN = re.compile(r"^[A-Za-z0-9_/.$][A-Za-z0-9_/.${}:@+-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _looks_numeric(s):
    try:
        float(s)
        return True
    except ValueError:
        return s.lower().startswith(("0x", "0o", ".inf", "-.inf", ".nan"))


def yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict) and not v:
        return "{}"
    if isinstance(v, list) and not v:
        return "[]"
    s = str(v)
    if (
        _PLAIN.match(s)
        and s.lower() not in _RESERVED
        and not _looks_numeric(s)
        and not s.endswith(":")
    ):
        return s
    return json.dumps(s, ensure_ascii=False)


def to_yaml(obj):
    out = []

    def emit(o, ind):
        pad = " " * ind
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, (dict, list)) and v:
                    out.append("%s%s:" % (pad, k))
                    emit(v, ind + 2)
                else:
                    out.append("%s%s: %s" % (pad, k, yaml_scalar(v)))
        elif isinstance(o, list):
            for item in o:
                if isinstance(item, (dict, list)) and item:
                    start = len(out)
                    emit(item, ind + 2)
                    out[start] = pad + "- " + out[start][ind + 2 :]
                else:
                    out.append("%s- %s" % (pad, yaml_scalar(item)))
        else:
            out.append(pad + yaml_scalar(o))

    emit(obj, 0)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# PostgreSQL cluster
