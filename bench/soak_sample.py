#!/usr/bin/env python3
"""Sampler of bench/soak.sh: every INTERVAL seconds, one NDJSON line with mutt's RSS, open fds and
threads, the sink's RSS and fds, Redis memory, the queue depths, and the ingest -> sink latency of
the alerts the sink received since the previous sample (read incrementally from its --stamp
output). Runs until STOP_FILE exists or mutt is gone. Redis is asked through redis-cli (a few
calls per sample). Not a test; a bench tool only.

  soak_sample.py --out FILE --mutt-pid P --sink-pid P --redis-port N --sink-out FILE
                 --start-ms EPOCH_MS --stop-file FILE [--interval 10]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

SENT = re.compile(rb'"bench_sent_ms":([0-9.]+)')
QUEUES = ["mutt:ingest_queue", "mutt:alert_queue", "mutt:audit:pending", "mutt:dlq:alerter", "mutt:dlq:moog",
          "mutt:dlq:dead"]


def proc(pid):
    """RSS (KiB), threads, open fds and CPU seconds of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        hz = os.sysconf("SC_CLK_TCK")
        return {"rss_kb": int(st["VmRSS"].split()[0]), "threads": int(st["Threads"]), "fds": fds,
                "cpu_s": round((int(fields[11]) + int(fields[12])) / hz, 2)}
    except (OSError, KeyError, ValueError, IndexError):
        return None


def redis(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    return out.stdout


def redis_sample(port):
    r = {}
    try:
        for q in QUEUES:
            r[q.replace("mutt:", "").replace(":", "_")] = int(redis(port, "LLEN", q).strip() or 0)
        r["retry_moog"] = int(redis(port, "ZCARD", "mutt:retry:moog").strip() or 0)
        processing = [k for k in redis(port, "--scan", "--pattern", "mutt:processing:*").split() if k]
        r["processing"] = sum(int(redis(port, "LLEN", k).strip() or 0) for k in processing)
        info = dict(line.split(":", 1) for line in redis(port, "INFO", "memory").splitlines() if ":" in line)
        r["redis_used_memory_kb"] = int(info.get("used_memory", "0")) // 1024
        r["redis_rss_kb"] = int(info.get("used_memory_rss", "0")) // 1024
    except (subprocess.SubprocessError, ValueError, OSError) as e:
        r["redis_error"] = str(e)
    return r


class Tail:
    """New complete lines of the sink's output since the last call: latency of each delivery."""

    def __init__(self, path):
        self.path, self.offset, self.partial, self.total = path, 0, b"", 0

    def latencies(self):
        lat = []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return lat
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            stamp, _, body = line.partition(b" ")
            m = SENT.search(body)
            self.total += 1
            if m:
                try:
                    lat.append(float(stamp) - float(m.group(1)))
                except ValueError:
                    pass
        return lat


def q(v, x):
    return round(v[min(len(v) - 1, int(x * len(v)))], 2) if v else None


def main():
    ap = argparse.ArgumentParser()
    for a in ("--out", "--sink-out", "--stop-file"):
        ap.add_argument(a, required=True)
    for a in ("--mutt-pid", "--sink-pid", "--redis-port", "--start-ms"):
        ap.add_argument(a, required=True, type=int)
    ap.add_argument("--interval", type=float, default=10)
    a = ap.parse_args()
    tail = Tail(a.sink_out)
    next_at = time.time() + a.interval
    with open(a.out, "a") as out:
        while not os.path.exists(a.stop_file):
            time.sleep(max(0.0, min(0.5, next_at - time.time())))
            if time.time() < next_at:
                continue
            next_at += a.interval
            m = proc(a.mutt_pid)
            if m is None:
                print("soak_sample: mutt is gone", file=sys.stderr)
                break
            lat = sorted(tail.latencies())
            s = {"t_s": round(time.time() - a.start_ms / 1000, 1), "mutt": m, "sink": proc(a.sink_pid),
                 "queues": redis_sample(a.redis_port), "delivered": tail.total,
                 "window": {"alerts": len(lat), "p50_ms": q(lat, 0.5), "p99_ms": q(lat, 0.99),
                            "max_ms": round(lat[-1], 2) if lat else None}}
            out.write(json.dumps(s, separators=(",", ":")) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
