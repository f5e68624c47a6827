#!/usr/bin/env bash
# Forward-stage benchmark (`make bench-forward`; not a timed test). Starts its own redis-server
# (appendonly yes, appendfsync everysec: the production setting of D2) and a webhook sink
# (tests/harness/sink.c) answering 200 at once, preloads ALERTS alert items into mutt:alert_queue,
# then runs one `mutt --roles=forward` with the shared rate limit out of the way
# (moog_rate_limit = 1,000,000/s, the schema's max) and the breaker on, and times it: from start
# until the sink has counted every alert and the queue, the processing list and the retry set
# are empty. Prints alerts/s and the p50/p99 per-alert latency (pop -> durable completion, from
# mutt_moog_processing_latency_seconds, interpolated within its buckets), checks that the sink
# saw each alert exactly once and that nothing reached the DLQ. Report: bench/results/forward-*.txt.
# Env: MUTT_BIN (./mutt), SINK_BIN (build/tests/mutt-sink), ALERTS (100000), INFLIGHT (64),
#      KEEP=1 keeps the work dir. Exit 1 when a check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
SINK_BIN=${SINK_BIN:-$ROOT/build/tests/mutt-sink}
ALERTS=${ALERTS:-100000}
INFLIGHT=${INFLIGHT:-64}
[ -x "$MUTT_BIN" ] || { echo "bench: $MUTT_BIN not built (make)" >&2; exit 1; }
[ -x "$SINK_BIN" ] || { echo "bench: $SINK_BIN not built (make $SINK_BIN)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mutt-bench-forward.XXXXXX)
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/forward-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$RESULT") 2>&1
port() { echo $((20000 + RANDOM % 30000)); }
REDIS_PORT=$(port)
SINK_PORT=$(port)
HEALTH_PORT=$(port)
MUTT_PID= SINK_PID= REDIS_UP=
rc() { redis-cli -p "$REDIS_PORT" "$@"; }
cleanup() {
    [ -n "$MUTT_PID" ] && kill -TERM "$MUTT_PID" 2>/dev/null && wait "$MUTT_PID" 2>/dev/null || true
    [ -n "$SINK_PID" ] && kill -TERM "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null || true
    [ -n "$REDIS_UP" ] && rc shutdown nosave >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --appendonly yes --appendfsync everysec \
    --save '' --daemonize yes --logfile "$WORK/redis.log" --pidfile "$WORK/redis.pid"
REDIS_UP=1
for _ in $(seq 1 50); do rc ping >/dev/null 2>&1 && break; sleep 0.1; done
"$SINK_BIN" --port "$SINK_PORT" --out /dev/null 2>"$WORK/sink.log" &
SINK_PID=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$SINK_PORT/health" >/dev/null && break; sleep 0.1; done

cat >"$WORK/mutt.conf" <<CONF
REDIS_HOST=127.0.0.1
REDIS_PORT=$REDIS_PORT
HEALTH_PORT=$HEALTH_PORT
BIND_ADDR=127.0.0.1
POD_NAME=bench-forward
LOG_LEVEL=WARNING
MOOG_WEBHOOK_URL=http://127.0.0.1:$SINK_PORT/events
MOOG_API_KEY=bench-moog-key
MOOG_RATE_LIMIT=1000000
MOOG_MAX_INFLIGHT=$INFLIGHT
CONF

echo "== machine: $(nproc) cpu, $(uname -r), $(redis-server --version | awk '{print $3}')"
echo "== commit $(git -C "$ROOT" rev-parse --short HEAD), binary $MUTT_BIN, MOOG_MAX_INFLIGHT=$INFLIGHT"
# RESP for ALERTS LPUSHes of a typical alert item (~420 bytes, as the alert stage writes them)
python3 - "$ALERTS" >"$WORK/alerts.resp" <<'PY'
import json, sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    a = {"hostname": "bench-host-%d" % (i % 500), "signature": "bench-host-%d" % (i % 500),
         "source_hostname": "bench-host-%d" % (i % 500), "team_assignment": "netops", "severity": "Major",
         "message_body": "%%LINK-3-UPDOWN: Interface GigabitEthernet0/%d, changed state to down" % (i % 48),
         "raw_json": {"hostname": "bench-host-%d" % (i % 500), "message": "link down", "syslog_severity": 3},
         "handling_decision": "Page_and_ticket", "rule_id": 42, "environment": "prod",
         "_correlation_id": "bench-%d" % i, "_event_id": "bench-ev-%08d" % i}
    s = json.dumps(a, separators=(",", ":")).encode()
    out.write(b"*3\r\n$5\r\nLPUSH\r\n$16\r\nmutt:alert_queue\r\n$%d\r\n%s\r\n" % (len(s), s))
PY
rc --pipe <"$WORK/alerts.resp" >/dev/null
echo "== preloaded: $(rc LLEN mutt:alert_queue) alerts"

now_ms() { date +%s%3N; }
sink_count() { curl -sf -m 2 "http://127.0.0.1:$SINK_PORT/count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
redis_cpu() { rc INFO cpu | awk -F: '/used_cpu_(sys|user):/{s+=$2} END{printf "%.2f", s}'; }
R0=$(redis_cpu)
S0=$(cpu_of "$SINK_PID")
T0=$(now_ms)
"$MUTT_BIN" --config "$WORK/mutt.conf" --roles=forward 2>"$WORK/mutt.log" &
MUTT_PID=$!
DEADLINE=$((T0 + 300000))
while :; do
    sleep 0.1
    [ "$(now_ms)" -lt "$DEADLINE" ] || { echo "bench: timed out"; tail -20 "$WORK/mutt.log"; exit 1; }
    [ "$(sink_count)" -ge "$ALERTS" ] || continue
    [ "$(rc LLEN mutt:alert_queue)" = 0 ] && [ "$(rc LLEN mutt:processing:moog:bench-forward)" = 0 ] &&
        [ "$(rc ZCARD mutt:retry:moog)" = 0 ] && break
done
T1=$(now_ms)
METRICS=$(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics")
MUTT_CPU=$(cpu_of "$MUTT_PID")
SINK_CPU=$(echo "$(cpu_of "$SINK_PID") - $S0" | bc)
R1=$(redis_cpu)
kill -TERM "$MUTT_PID"; wait "$MUTT_PID" || true; MUTT_PID=
DELIVERED=$(sink_count)
RECEIVED=$(curl -sf "http://127.0.0.1:$SINK_PORT/count" | sed -n 's/.*"received":\([0-9]*\).*/\1/p')
DLQ=$(rc LLEN mutt:dlq:moog)

# quantile from the cumulative histogram buckets (linear within the bucket)
quantile() {
    echo "$METRICS" | awk -v q="$1" -F'[{}" ]+' '
        /^mutt_moog_processing_latency_seconds_bucket/ { le[n] = ($3 == "+Inf") ? 1e9 : $3; c[n++] = $NF }
        END { total = c[n-1]; want = q * total; prev_le = 0; prev_c = 0
              for (i = 0; i < n; i++) { if (c[i] >= want) { f = (c[i] > prev_c) ? (want - prev_c) / (c[i] - prev_c) : 0
                    printf "%.2f ms", 1000 * (prev_le + f * (le[i] - prev_le)); exit }
                  prev_le = le[i]; prev_c = c[i] } }'
}
ms=$((T1 - T0))
echo "== results ($ALERTS alerts, sink answering 200, rate limit 1,000,000/s, breaker on)"
echo "all delivered and acknowledged: ${ms} ms (process start included) -> $((ALERTS * 1000 / (ms > 0 ? ms : 1))) alerts/s"
echo "per-alert latency pop -> durable completion: p50 $(quantile 0.50), p99 $(quantile 0.99)"
echo "sink: delivered $DELIVERED, received $RECEIVED; DLQ $DLQ"
echo "CPU seconds during the run: mutt $MUTT_CPU, redis-server $(echo "$R1 - $R0" | bc), sink $SINK_CPU"
echo "$METRICS" | grep -E '^mutt_moog_(requests_total|alerts_processed_total|rate_limit_hits_total|processing_latency_seconds_(sum|count))'
FAIL=0
[ "$DELIVERED" = "$ALERTS" ] && [ "$RECEIVED" = "$ALERTS" ] || { echo "CHECK FAILED: sink saw $RECEIVED posts, $DELIVERED delivered, want $ALERTS"; FAIL=1; }
[ "$DLQ" = 0 ] || { echo "CHECK FAILED: DLQ not empty"; FAIL=1; }
[ $FAIL = 0 ] && echo "checks: ok"
exit $FAIL
