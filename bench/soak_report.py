#!/usr/bin/env python3
"""Drift report of bench/soak.sh: the samples over time (one line a minute) and PASS/FAIL per
target, with the numbers.

  soak_report.py --samples NDJSON --accepted FILE --sink-out FILE --start-ms EPOCH_MS --sent N
                 --dlq N [--baseline-min 5] [--summary-json FILE]

Targets (issue 11), all measured against the first BASELINE minutes of the run:
  - RSS growth < 5 MB after the baseline: mutt's RSS at the end (median of the last 3 samples)
    minus its RSS at the end of the baseline;
  - no fd growth: mutt's open fds at the end (median of the last 3 samples) not above the most
    seen during the baseline;
  - p99 within 2x of the baseline: the ingest -> sink p99 of the alerts sent in each later
    5-minute block (a last partial block counts when it spans >= 1 minute) at most twice the
    p99 of the alerts sent during the baseline;
  - zero loss: every event sent answered 200, every forwarding one delivered exactly once,
    nothing else delivered, both DLQs empty.
The first three need samples after the baseline (>= 3, i.e. 30 s); with fewer they say "not
enough samples" and count neither as PASS nor as FAIL. Exit 1 when a target FAILs.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_check  # noqa: E402  (same directory)

MB = 1024.0


def slope_per_hour(points):
    """Least-squares slope of (t_s, value) in value units per hour, or None."""
    if len(points) < 2:
        return None
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return None if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 3600


def main():
    ap = argparse.ArgumentParser()
    for a in ("--samples", "--accepted", "--sink-out"):
        ap.add_argument(a, required=True)
    for a in ("--start-ms", "--sent", "--dlq"):
        ap.add_argument(a, required=True, type=int)
    ap.add_argument("--baseline-min", type=float, default=5)
    ap.add_argument("--summary-json")
    a = ap.parse_args()
    base_s = a.baseline_min * 60

    samples = []
    with open(a.samples) as f:
        for line in f:
            if line.strip():
                samples.append(json.loads(line))
    print(f"== samples: {len(samples)} (NDJSON: {os.path.basename(a.samples)}); one line a minute:")
    print("     t  mutt RSS MB  fds thr  CPU s | sink RSS MB fds | redis MB | ingest_q alert_q retry processing"
          " | window alerts p50 ms  p99 ms")
    for i, s in enumerate(samples):
        if i % 6 != 5 and i != len(samples) - 1:
            continue
        m, k, qd, w = s["mutt"], s.get("sink") or {}, s["queues"], s["window"]
        print(f"  {s['t_s']:5.0f}  {m['rss_kb'] / MB:10.1f} {m['fds']:4d} {m['threads']:3d} {m['cpu_s']:6.1f} |"
              f" {k.get('rss_kb', 0) / MB:11.1f} {k.get('fds', 0):3d} | {qd.get('redis_used_memory_kb', 0) / MB:8.1f} |"
              f" {qd.get('ingest_queue', -1):8d} {qd.get('alert_queue', -1):7d} {qd.get('retry_moog', -1):5d}"
              f" {qd.get('processing', -1):10d} | {w['alerts']:13d} {w['p50_ms'] or 0:6.1f} {w['p99_ms'] or 0:7.1f}")

    base = [s for s in samples if s["t_s"] <= base_s]
    after = [s for s in samples if s["t_s"] > base_s]
    enough = len(base) >= 3 and len(after) >= 3
    short = (f"{len(after)} samples after the first {a.baseline_min:g} minutes, 3 needed: a run of at least "
             f"{a.baseline_min + 1:g} minutes")
    first = f"the first {a.baseline_min:g} minutes"
    results = {}

    def verdict(name, ok, text):
        word = "not enough samples" if ok is None else ("PASS" if ok else "FAIL")
        results[name] = {"verdict": word, "detail": text}
        print(f"{name}: {word}" + (f" ({text})" if text else ""))

    print(f"== targets (baseline = the first {a.baseline_min:g} minutes: {len(base)} samples; after it: "
          f"{len(after)} samples)")
    if enough:
        ref = base[-1]["mutt"]["rss_kb"]
        end = statistics.median(s["mutt"]["rss_kb"] for s in samples[-3:])
        top = max(s["mutt"]["rss_kb"] for s in after)
        sl = slope_per_hour([(s["t_s"], s["mutt"]["rss_kb"] / MB) for s in after])
        verdict(f"RSS growth after {first} < 5 MB", (end - ref) / MB < 5,
                f"{ref / MB:.1f} MB at {base[-1]['t_s']:.0f} s, {end / MB:.1f} MB at the end, growth "
                f"{(end - ref) / MB:+.1f} MB, max after {top / MB:.1f} MB, slope "
                + ("n/a" if sl is None else f"{sl:+.2f} MB/h"))
        bmax = max(s["mutt"]["fds"] for s in base)
        fend = statistics.median(s["mutt"]["fds"] for s in samples[-3:])
        verdict("no fd growth", fend <= bmax,
                f"most during the baseline {bmax}, at the end {fend:.0f}, most after "
                f"{max(s['mutt']['fds'] for s in after)}")
    else:
        verdict(f"RSS growth after {first} < 5 MB", None, short)
        verdict("no fd growth", None, short)

    print("== deliveries (reading the sink's output)")
    acc = e2e_check.load_accepted(a.accepted)
    d = e2e_check.Deliveries(a.sink_out)
    t0 = a.start_ms
    lat_base = sorted(lat for t, lat in d.by_sent if t - t0 < base_s * 1000)
    p99_base = e2e_check.quantile(lat_base, 0.99)
    blocks = {}
    for t, lat in d.by_sent:
        rel = (t - t0) / 1000
        if rel >= base_s:
            blocks.setdefault(int((rel - base_s) // 300), []).append((rel, lat))
    rows, worst = [], 0.0
    for b in sorted(blocks):
        span = max(r for r, _ in blocks[b]) - min(r for r, _ in blocks[b])
        if span < 60:
            continue
        v = sorted(lat for _, lat in blocks[b])
        p99 = e2e_check.quantile(v, 0.99)
        worst = max(worst, p99 / p99_base if p99_base > 0 else float("inf"))
        lo = base_s + b * 300
        rows.append(f"{lo / 60:g}-{(lo + 300) / 60:g} min {p99:.1f} ms ({p99 / p99_base:.2f}x, {len(v)} alerts)")
    if lat_base and rows:
        verdict(f"p99 within 2x of {first}", worst <= 2.0,
                f"baseline p99 {p99_base:.1f} ms over {len(lat_base)} alerts; " + "; ".join(rows))
    else:
        verdict(f"p99 within 2x of {first}", None,
                short + (f"; baseline p99 {p99_base:.1f} ms over {len(lat_base)} alerts" if lat_base else ""))
    allv = sorted(lat for _, lat in d.by_sent)
    print(f"ingest -> sink latency over the whole run ({len(allv)} alerts): p50 {e2e_check.quantile(allv, 0.5):.2f} ms,"
          f" p99 {e2e_check.quantile(allv, 0.99):.2f} ms, max {allv[-1] if allv else float('nan'):.2f} ms")

    r = e2e_check.loss(acc, d)
    e2e_check.print_loss(r)
    verdict("zero loss", r["ok"] and r["accepted"] == a.sent and a.dlq == 0,
            f"sent {a.sent}, answered 200 {r['accepted']}, expected deliveries {r['expected']}, delivered "
            f"{r['delivered_lines']}, missing {r['missing']}, duplicates {r['duplicate_seqs']}, unexpected "
            f"{r['unexpected']}, DLQ items {a.dlq}")

    failed = [n for n, v in results.items() if v["verdict"] == "FAIL"]
    open_ = [n for n, v in results.items() if v["verdict"] == "not enough samples"]
    print("soak verdict:", "FAIL (" + ", ".join(failed) + ")" if failed else
          "PASS" + (f" ({len(open_)} target(s) not evaluated: not enough samples)" if open_ else ""))
    if a.summary_json:
        with open(a.summary_json, "w") as f:
            json.dump({"samples": len(samples), "baseline_min": a.baseline_min, "targets": results}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
