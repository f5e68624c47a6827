#!/usr/bin/env python3
"""Delivery check of the pipeline benches (bench/e2e.sh, bench/soak.sh): zero loss, exactly once,
and ingest -> sink latency.

  e2e_check.py ACCEPTED SINK_OUT     the bench-e2e report; exit 1 when the check fails

ACCEPTED: one line "seq forwards(0|1)" per event answered 200 (bench/e2e_driver --accepted).
SINK_OUT: one line per delivered alert, "<receive epoch ms> <body>" (mutt-sink --stamp). Each
body's custom_info.raw_event carries bench_seq and bench_sent_ms (set by the driver), so every
alert's latency is the receive stamp minus bench_sent_ms. An event whose rule forwards must be
delivered exactly once (by bench_seq and by external_id), nothing else may be delivered.
"""
import collections
import json
import sys


def load_accepted(path):
    acc = {}
    with open(path) as f:
        for line in f:
            s, fwd = line.split()
            acc[int(s)] = fwd == "1"
    return acc


class Deliveries:
    """What the sink received: per-seq and per-external_id counts, (sent_ms, latency_ms) pairs."""

    def __init__(self, path):
        self.seen = collections.Counter()
        self.ext = collections.Counter()
        self.by_sent = []
        self.bad = 0
        with open(path) as f:
            for line in f:
                stamp, _, body = line.partition(" ")
                try:
                    p = json.loads(body)
                    raw = p["custom_info"]["raw_event"]
                    seq, sent = int(raw["bench_seq"]), float(raw["bench_sent_ms"])
                except (ValueError, KeyError, TypeError):
                    self.bad += 1
                    continue
                self.seen[seq] += 1
                self.ext[p.get("external_id")] += 1
                self.by_sent.append((sent, float(stamp) - sent))
        self.by_sent.sort()


def quantile(sorted_values, x):
    v = sorted_values
    return v[min(len(v) - 1, int(x * len(v)))] if v else float("nan")


def loss(acc, d):
    """The zero-loss verdict: a dict with the counts and "ok"."""
    expected = {s for s, f in acc.items() if f}
    missing = expected - d.seen.keys()
    r = {
        "accepted": len(acc),
        "expected": len(expected),
        "delivered_lines": sum(d.seen.values()) + d.bad,
        "missing": len(missing),
        "duplicate_seqs": sum(c - 1 for c in d.seen.values() if c > 1),
        "duplicate_external_ids": sum(c - 1 for c in d.ext.values() if c > 1),
        "unexpected": len(d.seen.keys() - expected),
        "unparseable": d.bad,
    }
    r["ok"] = (not r["missing"] and not r["duplicate_seqs"] and not r["duplicate_external_ids"]
               and not r["unexpected"] and not r["unparseable"] and r["expected"] > 0)
    return r


def print_loss(r):
    print(f"accepted {r['accepted']}, expected deliveries {r['expected']}, delivered lines {r['delivered_lines']}")
    print(f"missing {r['missing']}, duplicate seqs {r['duplicate_seqs']}, duplicate external_ids "
          f"{r['duplicate_external_ids']}, unexpected {r['unexpected']}, unparseable lines {r['unparseable']}")


def main(argv):
    acc = load_accepted(argv[1])
    d = Deliveries(argv[2])
    t0 = d.by_sent[0][0] if d.by_sent else 0
    windows = collections.defaultdict(list)
    for t, lat in d.by_sent:
        windows[int((t - t0) // 10000)].append(lat)
    for w in sorted(windows):
        v = sorted(windows[w])
        print(f"  sent at {w * 10:3d}-{w * 10 + 10:3d} s: {len(v):6d} alerts, p50 {quantile(v, 0.5):7.2f} ms, "
              f"p99 {quantile(v, 0.99):7.2f} ms, max {v[-1]:7.2f} ms")
    steady = sorted(lat for t, lat in d.by_sent if t - t0 >= 5000)
    print(f"after the first 5 s ({len(steady)} alerts): p50 {quantile(steady, 0.5):.2f} ms, "
          f"p99 {quantile(steady, 0.99):.2f} ms")
    lat = sorted(lat for _, lat in d.by_sent)
    r = loss(acc, d)
    print(f"accepted {r['accepted']}, expected deliveries {r['expected']}, delivered lines {r['delivered_lines']}")
    print(f"ingest -> sink latency over {len(lat)} alerts: p50 {quantile(lat, 0.50):.2f} ms, p90 "
          f"{quantile(lat, 0.90):.2f} ms, p99 {quantile(lat, 0.99):.2f} ms, p99.9 {quantile(lat, 0.999):.2f} ms, "
          f"max {lat[-1] if lat else float('nan'):.2f} ms")
    print(f"missing {r['missing']}, duplicate seqs {r['duplicate_seqs']}, duplicate external_ids "
          f"{r['duplicate_external_ids']}, unexpected {r['unexpected']}, unparseable lines {r['unparseable']}")
    print("p99 target (< 50 ms):", "met" if quantile(lat, 0.99) < 50 else "MISSED")
    print("zero loss, exactly once:", "ok" if r["ok"] else "CHECK FAILED")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
