#!/usr/bin/env python3
"""Cost per event of a pipeline bench (issue 13): Redis commands, Redis CPU, mutt CPU, fleet ceiling.

  redis_cost.py BEFORE AFTER EVENTS REDIS_CPU_S MUTT_CPU_S [LABEL]

BEFORE/AFTER: `redis-cli INFO commandstats` snapshots taken around the run. Commands run by a
Lua script are counted in commandstats under their own names as well as the EVAL/EVALSHA that
ran them, so "commands per event" counts every command Redis executed, script calls and their
inner commands alike; the EVAL/EVALSHA share is shown apart. usec: commandstats time; a
script's usec includes its inner commands' usec, so the script part and the rest are shown apart.
EVENTS: accepted events. REDIS_CPU_S / MUTT_CPU_S: process CPU seconds (utime + stime, /proc)
over the same span. The fleet ceiling is 1 s of Redis CPU divided by Redis CPU per event: the
events/s one Redis core carries, however many mutt processes share it.
"""
import sys

SCRIPTS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")


def load(path):
    stats = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("cmdstat_"):
                continue
            name, _, rest = line.partition(":")
            kv = dict(p.split("=", 1) for p in rest.split(","))
            stats[name[len("cmdstat_"):]] = (int(kv.get("calls", 0)), int(kv.get("usec", 0)))
    return stats


def main(argv):
    if len(argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    before, after = load(argv[1]), load(argv[2])
    events = int(argv[3])
    redis_cpu, mutt_cpu = float(argv[4]), float(argv[5])
    label = argv[6] if len(argv) > 6 else ""
    delta = {}
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if calls - c0 > 0:
            delta[name] = (calls - c0, usec - u0)
    if events <= 0:
        print("cost per event: no events")
        return 0
    calls = sum(c for c, _ in delta.values())
    script_calls = sum(delta.get(s, (0, 0))[0] for s in SCRIPTS)
    usec_all = sum(u for _, u in delta.values())
    usec_scripts = sum(delta.get(s, (0, 0))[1] for s in SCRIPTS)
    redis_us = redis_cpu * 1e6 / events
    head = f"== cost per event{' (' + label + ')' if label else ''} over {events} accepted events"
    print(head)
    print(f"  Redis commands per event: {calls / events:.2f} (Lua-inner commands included; "
          f"{script_calls / events:.2f} of them EVAL/EVALSHA calls)")
    print(f"  Redis CPU per event: {redis_us:.1f} us (redis-server {redis_cpu:.2f} CPU-s, /proc)")
    print(f"  Redis commandstats usec per event: {(usec_all - usec_scripts) / events:.1f} us outside scripts + "
          f"{usec_scripts / events:.1f} us in scripts (inner commands count in both)")
    print(f"  mutt CPU per event: {mutt_cpu * 1e6 / events:.1f} us (mutt {mutt_cpu:.2f} CPU-s, /proc)")
    if redis_us > 0:
        print(f"  fleet ceiling: {1e6 / redis_us:,.0f} events/s (1 s of Redis CPU / {redis_us:.1f} us per event)")
    print("  top commands per event (calls, usec):")
    for name, (c, u) in sorted(delta.items(), key=lambda kv: -kv[1][0])[:15]:
        print(f"    {name:24s} {c / events:7.3f}  {u / events:7.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
