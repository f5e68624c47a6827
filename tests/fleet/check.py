#!/usr/bin/env python3
"""Verdict of one fleet drill (tests/fleet/fleet.sh): what the driver got, what PostgreSQL
audited and what the webhook sink received, for the events of that drill only.

  check.py --first F --last L --driver-log LOG --audit AUDIT --sink SINK_OUT --fault-ms T
           [--dup-cap N] [--quiet-missing] [--slow-ms 1000]

LOG    one line "seq status done_ms" per request (bench/e2e_driver --log).
AUDIT  one line "seq count lag_ms at_ms" per bench_seq in event_audit_log (psql -At -F' '): rows,
       the latest row's created_at minus the event's bench_sent_ms, and that created_at.
SINK   mutt-sink --stamp lines: "<receive epoch ms> <body>"; body.custom_info.raw_event.bench_seq.

Checks (exit 1 when one fails):
  - every event answered 200 that a rule matches has exactly one audit row (D12: only matched
    events are audited); no event, answered 200 or not, has two;
  - every event answered 200 whose rule forwards was delivered at least once; nothing that no rule
    forwards was delivered; duplicates are counted and, with --dup-cap, must not exceed it.
Prints the time from the fault (--fault-ms) to full recovery: the last moment something was
still wrong (a request not answered 200, or a delivery or an audit row of an accepted event more
than --slow-ms after it was sent), measured from the fault. With --quiet-missing only "missing N" is printed
(fleet.sh polls it until the deliveries are all in).
"""
import argparse
import collections
import json
import sys

# The driver's mix (bench/e2e_driver.c kind_of/forwards): by seq % 20, 0-7 contains (even rule
# forwards), 8-11 OID prefix (every fifth rule Ignore), 12-13 regex (all forward), 14-19 no rule.
N_CONTAINS, N_OID, N_REGEX = 60, 25, 15


def kind(seq):
    k, r = seq % 20, seq // 20
    if k < 8:
        return "contains", r % N_CONTAINS
    if k < 12:
        return "oid", r % N_OID
    if k < 14:
        return "regex", r % N_REGEX
    return "none", 0


def matched(seq):
    return kind(seq)[0] != "none"


def forwards(seq):
    k, r = kind(seq)
    return (k == "contains" and r % 2 == 0) or (k == "oid" and r % 5 != 0) or k == "regex"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--last", type=int, required=True)
    ap.add_argument("--driver-log", required=True)
    ap.add_argument("--audit")
    ap.add_argument("--sink", required=True)
    ap.add_argument("--fault-ms", type=float, default=0)
    ap.add_argument("--heal-ms", type=float, default=0)
    ap.add_argument("--dup-cap", type=int, default=-1)
    ap.add_argument("--slow-ms", type=float, default=1000)
    ap.add_argument("--quiet-missing", action="store_true")
    a = ap.parse_args()
    inside = range(a.first, a.last + 1)

    status, done = {}, {}
    with open(a.driver_log) as f:
        for line in f:
            p = line.split()
            if len(p) != 3:
                continue
            s = int(p[0])
            status[s], done[s] = int(p[1]), float(p[2])
    ok = {s for s, st in status.items() if st == 200}

    seen = collections.Counter()
    first_at = {}
    sent_at = {}
    bad_lines = 0
    with open(a.sink) as f:
        for line in f:
            stamp, _, body = line.partition(" ")
            try:
                raw = json.loads(body)["custom_info"]["raw_event"]
                s, sent = int(raw["bench_seq"]), float(raw["bench_sent_ms"])
            except (ValueError, KeyError, TypeError):
                bad_lines += 1
                continue
            if s not in inside:
                continue
            seen[s] += 1
            t = float(stamp)
            if s not in first_at or t < first_at[s]:
                first_at[s], sent_at[s] = t, sent
    want = {s for s in ok if forwards(s)}
    missing = want - seen.keys()
    if a.quiet_missing:
        print(f"missing {len(missing)}")
        return 0

    audit = collections.Counter()
    audit_late = []  # created_at of audit rows written more than --slow-ms after their event
    with open(a.audit) as f:
        for line in f:
            p = line.split()
            if len(p) == 4 and p[0].isdigit() and int(p[0]) in inside:
                audit[int(p[0])] += int(p[1])
                if float(p[2]) > a.slow_ms and float(p[3]) >= a.fault_ms:
                    audit_late.append(float(p[3]))

    fails = []
    unaudited = [s for s in ok if matched(s) and audit[s] == 0]
    twice = [s for s, c in audit.items() if c > 1]
    unexpected = [s for s in seen if not forwards(s)]
    dups = sum(c - 1 for c in seen.values() if c > 1)
    in_doubt_audited = sum(1 for s in audit if s not in ok)
    in_doubt_delivered = sum(1 for s in seen if s not in ok)
    codes = collections.Counter(status.values())
    print(f"  requests {len(status)}: " + ", ".join(f"{c if c else 'no answer'}: {n}" for c, n in sorted(codes.items())))
    print(f"  answered 200 {len(ok)}, matched {sum(1 for s in ok if matched(s))}, forwarding {len(want)}")
    print(f"  audit rows {sum(audit.values())}: unaudited 200s {len(unaudited)}, events audited twice {len(twice)}, "
          f"audited without a 200 (in doubt) {in_doubt_audited}")
    print(f"  deliveries {sum(seen.values())}: missing {len(missing)}, duplicates {dups}"
          f"{'' if a.dup_cap < 0 else f' (cap {a.dup_cap})'}, unexpected {len(unexpected)}, "
          f"delivered without a 200 (in doubt) {in_doubt_delivered}, unparseable sink lines {bad_lines}")
    if unaudited:
        fails.append(f"{len(unaudited)} events answered 200 have no audit row (e.g. {sorted(unaudited)[:5]})")
    if twice:
        fails.append(f"{len(twice)} events have more than one audit row (e.g. {sorted(twice)[:5]})")
    if missing:
        fails.append(f"{len(missing)} forwarding events answered 200 were never delivered (e.g. {sorted(missing)[:5]})")
    if unexpected:
        fails.append(f"{len(unexpected)} deliveries of events no rule forwards")
    if a.dup_cap >= 0 and dups > a.dup_cap:
        fails.append(f"{dups} duplicate deliveries, more than the in-flight caps allow ({a.dup_cap})")
    if len(want) == 0:
        fails.append("no forwarding event was answered 200: the drill measured nothing")

    if a.fault_ms:
        bad = []  # when something was still wrong after the fault
        last_bad = a.fault_ms
        refused = [done[s] for s, st in status.items() if st != 200 and done[s] >= a.fault_ms]
        if refused:
            last_bad = max(last_bad, max(refused))
            bad += refused
            print(f"  ingest: {len(refused)} requests not answered 200 after the fault, the last "
                  f"{(max(refused) - a.fault_ms) / 1000:.1f} s after it")
        slow = [first_at[s] for s in first_at if first_at[s] >= a.fault_ms and s in ok
                and first_at[s] - sent_at[s] > a.slow_ms]
        if slow:
            last_bad = max(last_bad, max(slow))
            bad += slow
            print(f"  deliveries: {len(slow)} arrived more than {a.slow_ms / 1000:.0f} s after they were sent, the "
                  f"last {(max(slow) - a.fault_ms) / 1000:.1f} s after the fault")
        if audit_late:
            last_bad = max(last_bad, max(audit_late))
            bad += audit_late
            print(f"  audit: {len(audit_late)} rows written more than {a.slow_ms / 1000:.0f} s after their event was "
                  f"sent, the last {(max(audit_late) - a.fault_ms) / 1000:.1f} s after the fault")
        if a.heal_ms:
            # a fault with a duration (a partition): how long the rest of the fleet took to cover
            # for it, and how long the heal itself disturbed things
            during = [t for t in bad if t < a.heal_ms]
            after = [t for t in bad if t >= a.heal_ms]
            print(f"  during the fault: the last problem {((max(during) if during else a.fault_ms) - a.fault_ms) / 1000:.1f} s "
                  f"after it began; after the heal: the last problem "
                  f"{((max(after) if after else a.heal_ms) - a.heal_ms) / 1000:.1f} s after it")
        print(f"  time from fault to full recovery: {(last_bad - a.fault_ms) / 1000:.1f} s")
    for f in fails:
        print(f"  FAIL: {f}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
