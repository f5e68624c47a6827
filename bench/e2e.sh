#!/usr/bin/env bash
# Pipeline benchmark, ingest -> webhook (`make bench-e2e`, issue 5; not a timed test). Starts its
# own redis-server and PostgreSQL (tests/harness/services.sh in a temp state dir; Redis switched
# to appendfsync everysec, the production setting of D2), migrates a database, loads the 100
# rules of bench/e2e_driver.c (60 contains, 25 OID prefix, 15 regex; 65 of them Page_and_ticket),
# starts the webhook sink with --stamp (receive time per delivered body) and one
# `mutt --roles=all`, then drives ingest at RATE single-event requests/s for DURATION s
# (bench/e2e_driver: libcurl multi, paced, keep-alive). Every event carries bench_seq and
# bench_sent_ms; the sink's lines give the ingest -> sink latency of every delivered alert
# (custom_info.raw_event.bench_sent_ms vs the receive stamp). Checks zero loss: every accepted
# event whose rule forwards is delivered exactly once (by bench_seq and by external_id), nothing
# else is delivered, nothing reaches a DLQ. Report: bench/results/e2e-*.txt.
# Env: MUTT_BIN (./mutt), SINK_BIN, DRIVER_BIN, RATE (5000), DURATION (60 s), CONNS (64),
#      INFLIGHT (MOOG_MAX_INFLIGHT, 32 = the default), EXTRA_CONF ("KEY=VALUE ..." appended to
#      the config), KEEP=1 keeps the work dir. Exit 1 when a check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
SINK_BIN=${SINK_BIN:-$ROOT/build/tests/mutt-sink}
DRIVER_BIN=${DRIVER_BIN:-$ROOT/build/bench/e2e_driver}
RATE=${RATE:-5000}
DURATION=${DURATION:-60}
CONNS=${CONNS:-64}
INFLIGHT=${INFLIGHT:-32}
for b in "$MUTT_BIN" "$SINK_BIN" "$DRIVER_BIN"; do
    [ -x "$b" ] || { echo "bench: $b not built (make bench-e2e builds it)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/mutt-bench-e2e.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/e2e-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$RESULT") 2>&1
export MUTT_TEST_STATE="$WORK/svc"
MUTT_PID= SINK_PID=
cleanup() {
    [ -n "$MUTT_PID" ] && kill -TERM "$MUTT_PID" 2>/dev/null && wait "$MUTT_PID" 2>/dev/null || true
    [ -n "$SINK_PID" ] && kill -TERM "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null || true
    bash "$ROOT/tests/harness/services.sh" stop >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

bash "$ROOT/tests/harness/services.sh" start >/dev/null
# shellcheck disable=SC1091
source "$MUTT_TEST_STATE/env"
rc() { redis-cli -p "$MUTT_TEST_REDIS_PORT" "$@"; }
psql_b() { PGPASSWORD=$MUTT_TEST_PG_PASS psql -qAt -h 127.0.0.1 -p "$MUTT_TEST_PG_PORT" -U postgres -d mutt_bench "$@"; }
rc CONFIG SET appendfsync everysec >/dev/null
PGPASSWORD=$MUTT_TEST_PG_PASS psql -q -h 127.0.0.1 -p "$MUTT_TEST_PG_PORT" -U postgres -c "CREATE DATABASE mutt_bench"

free_port() {
    local p
    while :; do
        # below the ephemeral range (32768+), where an outgoing connection could hold it
        p=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
INGEST_PORT=$(free_port)
WEB_PORT=$(free_port)
SINK_PORT=$(free_port)
INGEST_KEY=bench-ingest-key-0123456789abcdef0123456789
cat >"$WORK/mutt.conf" <<CONF
REDIS_HOST=127.0.0.1
REDIS_PORT=$MUTT_TEST_REDIS_PORT
DB_HOST=127.0.0.1
DB_PORT=$MUTT_TEST_PG_PORT
DB_NAME=mutt_bench
DB_USER=postgres
DB_PASS_CURRENT=$MUTT_TEST_PG_PASS
BIND_ADDR=127.0.0.1
INGESTOR_PORT=$INGEST_PORT
WEBUI_PORT=$WEB_PORT
POD_NAME=bench-e2e
LOG_LEVEL=WARNING
INGEST_API_KEY=$INGEST_KEY
WEBUI_API_KEY=bench-webui-key-0123456789abcdef0123456789
RATE_LIMIT_ENABLED=false
MOOG_WEBHOOK_URL=http://127.0.0.1:$SINK_PORT/events
MOOG_API_KEY=bench-moog-key
MOOG_RATE_LIMIT=1000000
UNHANDLED_THRESHOLD=1000000000
MOOG_MAX_INFLIGHT=$INFLIGHT
CONF
for kv in ${EXTRA_CONF:-}; do echo "$kv" >>"$WORK/mutt.conf"; done
"$MUTT_BIN" --config "$WORK/mutt.conf" migrate
"$DRIVER_BIN" --rules-sql >"$WORK/rules.sql"
psql_b -f "$WORK/rules.sql" >/dev/null

"$SINK_BIN" --port "$SINK_PORT" --out "$WORK/sink.out" --stamp 2>"$WORK/sink.log" &
SINK_PID=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$SINK_PORT/health" >/dev/null && break; sleep 0.1; done

echo "== machine: $(nproc) cpu ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/Mem:/{print $2}') GiB," \
     "$(uname -r), redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(psql --version)"
echo "== commit $(git -C "$ROOT" rev-parse --short HEAD), binary $MUTT_BIN, roles all, MOOG_MAX_INFLIGHT=$INFLIGHT${EXTRA_CONF:+, $EXTRA_CONF}"
echo "== rules: $(psql_b -c 'SELECT count(*) FROM alert_rules') ($(psql_b -c "SELECT count(*) FROM alert_rules WHERE prod_handling <> 'Ignore'") forwarding)"

"$MUTT_BIN" --config "$WORK/mutt.conf" --roles=all 2>"$WORK/mutt.log" &
MUTT_PID=$!
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
for _ in $(seq 1 300); do # 401 without a key = the ingest stage is up (503 while starting)
    kill -0 "$MUTT_PID" 2>/dev/null || { echo "bench: mutt exited during start-up"; tail -5 "$WORK/mutt.log"; exit 1; }
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' "$URL")" = 401 ] && break
    sleep 0.1
done

now_ms() { date +%s%3N; }
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
redis_cpu() { rc INFO cpu | awk -F: '/used_cpu_(sys|user):/{s+=$2} END{printf "%.2f", s}'; }
sink_count() { curl -sf -m 2 "http://127.0.0.1:$SINK_PORT/count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }
R0=$(redis_cpu)
M0=$(cpu_of "$MUTT_PID")
echo "== driving $RATE events/s for $DURATION s over $CONNS connections"
( # queue depths twice a second: where a backlog forms (ingest queue = alert stage behind,
  # alert queue = forward stage behind)
    while kill -0 "$MUTT_PID" 2>/dev/null; do
        echo "$(now_ms) $(rc LLEN mutt:ingest_queue) $(rc LLEN mutt:alert_queue)"
        sleep 0.5
    done >"$WORK/depths.txt" 2>/dev/null
) &
"$DRIVER_BIN" --url "$URL" --key "$INGEST_KEY" --rate "$RATE" --seconds "$DURATION" --conns "$CONNS" \
    --accepted "$WORK/accepted.txt"
EXPECTED=$(awk '$2 == 1' "$WORK/accepted.txt" | wc -l)
T_END=$(now_ms)
DEADLINE=$((T_END + 120000))
while :; do # the tail: everything accepted is processed and delivered
    [ "$(now_ms)" -lt "$DEADLINE" ] || { echo "bench: deliveries did not complete within 120 s"; break; }
    if [ "$(sink_count)" -ge "$EXPECTED" ] && [ "$(rc LLEN mutt:ingest_queue)" = 0 ] &&
        [ "$(rc LLEN mutt:alert_queue)" = 0 ] && [ "$(rc ZCARD mutt:retry:moog)" = 0 ]; then
        break
    fi
    sleep 0.2
done
echo "== drained $(( $(now_ms) - T_END )) ms after the driver ended"
MUTT_CPU=$(echo "$(cpu_of "$MUTT_PID") - $M0" | bc)
REDIS_CPU=$(echo "$(redis_cpu) - $R0" | bc)
sleep 1.5 # a late duplicate would show up here
kill -TERM "$MUTT_PID"; wait "$MUTT_PID" || true; MUTT_PID=
kill -TERM "$SINK_PID"; wait "$SINK_PID" || true; SINK_PID=
DLQ_A=$(rc LLEN mutt:dlq:alerter)
DLQ_M=$(rc LLEN mutt:dlq:moog)
AUDIT=$(psql_b -c "SELECT count(*) FROM event_audit_log")
echo "CPU seconds while driving and draining: mutt $MUTT_CPU, redis-server $REDIS_CPU"
echo "DLQ: alerter $DLQ_A, moog $DLQ_M; audit rows $AUDIT"
awk 'NR == 1 {t0 = $1} { w = int(($1 - t0) / 10000); if ($2 > qi[w]) qi[w] = $2; if ($3 > qa[w]) qa[w] = $3; n = w }
     END { for (w = 0; w <= n; w++) printf "  %3d-%3d s: max depth ingest_queue %6d, alert_queue %6d\n", w * 10, w * 10 + 10, qi[w], qa[w] }' \
    "$WORK/depths.txt"

FAIL=0
python3 - "$WORK/accepted.txt" "$WORK/sink.out" <<'PY' || FAIL=1
import collections, json, sys
acc = {}
with open(sys.argv[1]) as f:
    for line in f:
        s, fwd = line.split()
        acc[int(s)] = fwd == "1"
expected = {s for s, f in acc.items() if f}
seen, ext, lat, by_sent, bad = collections.Counter(), collections.Counter(), [], [], 0
with open(sys.argv[2]) as f:
    for line in f:
        stamp, _, body = line.partition(" ")
        try:
            p = json.loads(body)
            raw = p["custom_info"]["raw_event"]
            seq, sent = int(raw["bench_seq"]), float(raw["bench_sent_ms"])
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        seen[seq] += 1
        ext[p.get("external_id")] += 1
        lat.append(float(stamp) - sent)
        by_sent.append((sent, float(stamp) - sent))
def q(x, v=None):
    v = lat if v is None else v
    return v[min(len(v) - 1, int(x * len(v)))] if v else float("nan")
by_sent.sort()
t0 = by_sent[0][0] if by_sent else 0
windows = collections.defaultdict(list)
for t, l in by_sent:
    windows[int((t - t0) // 10000)].append(l)
for w in sorted(windows):
    v = sorted(windows[w])
    print(f"  sent at {w * 10:3d}-{w * 10 + 10:3d} s: {len(v):6d} alerts, p50 {q(0.5, v):7.2f} ms, "
          f"p99 {q(0.99, v):7.2f} ms, max {v[-1]:7.2f} ms")
steady = sorted(l for t, l in by_sent if t - t0 >= 5000)
print(f"after the first 5 s ({len(steady)} alerts): p50 {q(0.5, steady):.2f} ms, p99 {q(0.99, steady):.2f} ms")
lat.sort()
missing = expected - seen.keys()
dups = sum(c - 1 for c in seen.values() if c > 1)
ext_dups = sum(c - 1 for c in ext.values() if c > 1)
unexpected = seen.keys() - expected
print(f"accepted {len(acc)}, expected deliveries {len(expected)}, delivered lines {sum(seen.values()) + bad}")
print(f"ingest -> sink latency over {len(lat)} alerts: p50 {q(0.50):.2f} ms, p90 {q(0.90):.2f} ms, "
      f"p99 {q(0.99):.2f} ms, p99.9 {q(0.999):.2f} ms, max {lat[-1] if lat else float('nan'):.2f} ms")
print(f"missing {len(missing)}, duplicate seqs {dups}, duplicate external_ids {ext_dups}, "
      f"unexpected {len(unexpected)}, unparseable lines {bad}")
ok = not missing and not dups and not ext_dups and not unexpected and not bad and len(expected) > 0
print("p99 target (< 50 ms):", "met" if q(0.99) < 50 else "MISSED")
print("zero loss, exactly once:", "ok" if ok else "CHECK FAILED")
sys.exit(0 if ok else 1)
PY
[ "$DLQ_A" = 0 ] && [ "$DLQ_M" = 0 ] || { echo "CHECK FAILED: DLQ not empty"; FAIL=1; }
grep -E '"level":"(ERROR|CRITICAL)"|ERROR|CRITICAL' "$WORK/mutt.log" | head -5 || true
[ $FAIL = 0 ] && echo "checks: ok"
exit $FAIL
