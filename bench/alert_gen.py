#!/usr/bin/env python3
"""Data for bench/alert.sh: writes the rules SQL and the Redis protocol that preloads the ingest
queue, and prints the expected counts. Deterministic (seeded). Rule mix per D13: 70 % contains,
25 % OID prefix, 5 % regex. Usage: alert_gen.py EVENTS RULES OUTDIR"""
import json, random, sys, uuid

n_events, n_rules, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(42)
n_contains = n_rules * 70 // 100
n_oid = n_rules * 25 // 100
n_regex = n_rules - n_contains - n_oid

rules = []  # (kind, key, forwards)
with open(f"{out}/rules.sql", "w") as f:
    f.write("BEGIN;\n")
    for i in range(n_rules):
        if i < n_contains:
            kind, ms, oid, mt = "contains", f"KEYWORD-{i:04d}", None, "contains"
        elif i < n_contains + n_oid:
            k = i - n_contains
            kind, ms, oid, mt = "oid", None, f".1.3.6.1.4.1.{9000 + k}", "oid_prefix"
        else:
            k = i - n_contains - n_oid
            kind, ms, oid, mt = "regex", f"LINK-(UP|DOWN)-{k:03d}\\b", None, "regex"
        fwd = i % 5 != 0  # 80 % of the rules page or ticket, the rest Ignore (audited, not forwarded)
        prod = "Page_and_ticket" if fwd else "Ignore"
        q = lambda s: "NULL" if s is None else "'" + s.replace("'", "''") + "'"
        f.write(f"INSERT INTO alert_rules (match_string, trap_oid, match_type, priority, prod_handling, dev_handling,"
                f" team_assignment) VALUES ({q(ms)}, {q(oid)}, '{mt}', {100 + i % 50}, '{prod}', 'Ignore', 'NETO');\n")
        rules.append((kind, ms if ms else oid, fwd, i))
    f.write("COMMIT;\n")

contains = [r for r in rules if r[0] == "contains"]
oids = [r for r in rules if r[0] == "oid"]
regexes = [r for r in rules if r[0] == "regex"]
matched = forwarded = 0
with open(f"{out}/events.resp", "wb") as f:
    batch = []
    def flush():
        if not batch:
            return
        args = [b"LPUSH", b"mutt:ingest_queue"] + batch
        f.write(b"*%d\r\n" % len(args))
        for a in args:
            f.write(b"$%d\r\n%s\r\n" % (len(a), a))
        batch.clear()
    for e in range(n_events):
        x = rnd.random()
        ev = {"hostname": f"host-{rnd.randrange(1000):04d}.example.com",
              "timestamp": "2025-11-25T10:%02d:%02d.%03dZ" % (e // 60000 % 60, e // 1000 % 60, e % 1000),
              "syslog_severity": rnd.randrange(8), "source": "bench"}
        if x < 0.60:
            r = rnd.choice(contains)
            ev["message"] = f"%LINEPROTO-5-UPDOWN: {r[1]} interface Gi0/{rnd.randrange(48)} changed state"
        elif x < 0.80:
            r = rnd.choice(oids)
            ev["trap_oid"] = f"{r[1]}.{rnd.randrange(10)}"
            ev["message"] = f"SNMP trap {ev['trap_oid']} 1.3.6.1.2.1.2.2.1.1={rnd.randrange(100)}"
        elif x < 0.85:
            r = rnd.choice(regexes)
            k = int(r[3]) - len(contains) - len(oids)
            ev["message"] = f"%LINK-3-UPDOWN: LINK-DOWN-{k:03d} port {rnd.randrange(48)} went down"
        else:
            r = None
            ev["message"] = f"kernel: eth{rnd.randrange(4)} watchdog timeout after {rnd.randrange(10000)} ms"
        if r is not None:
            matched += 1
            forwarded += 1 if r[2] else 0
        ev["_correlation_id"] = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        ev["_event_id"] = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        batch.append(json.dumps(ev, separators=(",", ":")).encode())
        if len(batch) == 1000:
            flush()
    flush()
print(f"{matched} {forwarded}")
