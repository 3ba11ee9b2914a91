"""The webhook sink's drain measurement: the receiver (bench/webhook_rx.c)
and the sink's config.  A part of class Bench (bench.py)."""

import os
import re
import signal
import subprocess
import time
import urllib.request

from bench_procs import Proc, kv
from bench_settings import FORCE_WEBHOOK, PASSWORD, WEBHOOK_BATCH


class Webhook:
    def webhook_sink(self, port):
        return ["  - sink_id: hook", "    sink_type: webhook", "    webhook:",
                "      url: http://127.0.0.1:%d/cdc" % port,
                "      batch_size: %d" % WEBHOOK_BATCH]

    def check_webhook(self):
        path, plat = self.pipeline("webhook_check", self.webhook_sink(9))
        r = subprocess.run([self.cdc, "validate", path, "--platform-config", plat],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dict(os.environ, BENCH_PW=PASSWORD), cwd=self.work)
        if r.returncode == 0 or FORCE_WEBHOOK:
            return None
        if "not implemented" in r.stdout:
            return "n/a (webhook sink not implemented)"
        errs = [l for l in r.stdout.splitlines() if "error" in l.lower()]
        return "n/a (cdc validate rejects the webhook sink: %s)" % (
            errs[0].strip() if errs else "exit %d" % r.returncode)

    def start_receiver(self, name):
        rx = Proc(self, [self.helper("webhook_rx")], name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = re.search(r"port=(\d+)", rx.stdout())
            if m:
                return rx, int(m.group(1))
            time.sleep(0.02)
        raise RuntimeError("webhook receiver did not start")

    def stop_receiver(self, rx):
        rx.signal(signal.SIGTERM)
        rx.wait(30)
        lines = [l for l in rx.stdout().splitlines() if l.startswith("requests=")]
        return kv(lines[-1]) if lines else {}

    @staticmethod
    def receiver_events(port):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/stats" % port, timeout=5) as r:
                return int(kv(r.read().decode()).get("events", -1))
        except (OSError, ValueError):
            return -1

    def m_webhook(self, bl):
        slot = self.copy_slot(bl)
        rx, port = self.start_receiver(slot + ".rx")
        pipe, plat = self.pipeline(slot, self.webhook_sink(port))
        self.checkpoint()
        holder = {}

        def count(proc):
            holder.update(self.stop_receiver(rx))
            return int(holder.get("events", -1))

        res, _ = self.timed(bl, "webhook", slot,
                            lambda: self.cdc_proc(pipe, plat, slot + ".webhook", bl["end"]),
                            bl["rows"], count)
        if rx.alive():
            self.stop_receiver(rx)
        res["requests"] = holder.get("requests")
        self.show(res)
        self.drop_slot(slot)
        return res
