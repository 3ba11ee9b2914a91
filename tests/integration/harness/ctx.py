"""Ctx: what every test function gets (temp dirs, clusters, cleanups)."""

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

from .common import *  # noqa: F401,F403
from .pg import *  # noqa: F401,F403
from .cdc import *  # noqa: F401,F403
from .workload import *  # noqa: F401,F403
from .mysql import *  # noqa: F401,F403
from .kafka import KafkaMock
from .nats import NatsServer

class Ctx:
    """Handed to every test function: temp dirs, clusters, cdc installations,
    and cleanups run in reverse order when the test ends (pass or fail)."""

    def __init__(self, name, keep=False, verbose=True):
        self.name = name
        self.keep = keep
        self.verbose = verbose
        self.failed = False
        self.root = tempfile.mkdtemp(prefix="cdc-it-%s-" % re.sub(r"\W", "_", name)[:40])
        self._cleanups = []
        self._n = 0

    def log(self, msg):
        if self.verbose:
            print("    " + msg, flush=True)

    def defer(self, fn):
        self._cleanups.append(fn)

    def tmpdir(self, name="tmp"):
        self._n += 1
        path = os.path.join(self.root, "%02d-%s" % (self._n, name))
        os.makedirs(path)
        return path

    def cluster(self):
        c = PgCluster(self.tmpdir("pg"))
        self.defer(c.stop)
        c.start()
        return c

    def mariadb(self, **kw):
        """A throwaway MariaDB server (harness.mysql.MariaDB), stopped when
        the test ends."""
        m = MariaDB(self.tmpdir("mariadb"), **kw)
        self.defer(m.stop)
        m.start()
        return m

    def cdc(self, pipeline, platform=None, env=None, name="cdc", cluster=None, secrets_=()):
        """A Cdc whose environment has PGPW = the cluster role's password (and
        which treats that password as a secret)."""
        env = dict(env or {})
        sec = list(secrets_)
        if cluster is not None:
            env.setdefault("PGPW", cluster.role_password)
            sec.append(cluster.role_password)
        return Cdc(self, pipeline, platform, env, name, sec)

    def kafka(self, topics=None, brokers=3):
        """A mock Kafka cluster with topics {name: partitions}, stopped when
        the test ends."""
        return KafkaMock(self, brokers).start(topics)

    def nats(self):
        """A nats-server with JetStream, stopped when the test ends."""
        return NatsServer(self).start()

    def workload(self, cluster, dbname, **kw):
        w = Workload(cluster, dbname, **kw)
        self.defer(lambda: w.is_alive() and (w._halt.set() or w.join(30)))
        return w

    def close(self):
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning up
                print("    (cleanup error: %r)" % (e,), flush=True)
        self._cleanups = []
        if self.keep and self.failed:
            print("    kept %s" % self.root, flush=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
