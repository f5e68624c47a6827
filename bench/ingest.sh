#!/usr/bin/env bash
# Ingest benchmark (`make bench-ingest`; not a timed test). Starts its own redis-server
# (appendonly yes, appendfsync everysec: the production setting D2 documents) and one
# `mutt --roles=ingest`, then drives POST /api/v2/ingest with wrk (2 threads, 64 keep-alive
# connections, bench/post.lua):
#   1. single: one ~300-byte syslog event per request -> req/s, p50, p99, non-2xx
#   2. batch:  a JSON array of 100 such events per request -> events/s
# After each mode it checks that LLEN of the queue equals the number of events mutt
# acknowledged (mutt_ingest_events_total{result="accepted"} on /metrics): zero loss.
# Env: MUTT_BIN (default ./mutt), DURATION (10), THREADS (2), CONNS (64), BATCH (100),
#      REDIS_FSYNC (everysec), KEEP=1 keeps the work dir. Exit status 1 when an LLEN check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
BATCH=${BATCH:-100}
REDIS_FSYNC=${REDIS_FSYNC:-everysec}
KEY=bench-ingest-key-0123456789abcdef0123456789
QUEUE=mutt:ingest_queue

command -v wrk >/dev/null || { echo "bench: installing wrk" >&2; apt-get install -y wrk >/dev/null; }
command -v redis-server >/dev/null || { echo "bench: redis-server missing (make deps)" >&2; exit 1; }
[ -x "$MUTT_BIN" ] || { echo "bench: $MUTT_BIN not built (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mutt-bench.XXXXXX)
REDIS_PID= MUTT_PID=
cleanup() {
    [ -n "$MUTT_PID" ] && kill -TERM "$MUTT_PID" 2>/dev/null && wait "$MUTT_PID" 2>/dev/null || true
    [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null || true
    sleep 0.3
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    local p
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
REDIS_PORT=$(free_port)
INGEST_PORT=$(free_port)
rc() { redis-cli -p "$REDIS_PORT" "$@"; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$WORK" --pidfile "$WORK/redis.pid" \
    --logfile "$WORK/redis.log" --save '' --appendonly yes --appendfsync "$REDIS_FSYNC" >/dev/null
for _ in $(seq 1 100); do [ -s "$WORK/redis.pid" ] && rc ping >/dev/null 2>&1 && break; sleep 0.05; done
REDIS_PID=$(cat "$WORK/redis.pid")

cat >"$WORK/mutt.conf" <<EOF
POD_NAME=bench-$$
BIND_ADDR=127.0.0.1
INGESTOR_PORT=$INGEST_PORT
REDIS_HOST=127.0.0.1
REDIS_PORT=$REDIS_PORT
INGEST_API_KEY=$KEY
MAX_INGEST_QUEUE_SIZE=1000000000
LOG_LEVEL=WARNING
EOF
"$MUTT_BIN" --config "$WORK/mutt.conf" --roles=ingest >"$WORK/mutt.log" 2>&1 &
MUTT_PID=$!
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
ready=0
for _ in $(seq 1 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL" -H "X-API-KEY: $KEY" \
        -H 'Content-Type: application/json' -d '{"hostname":"warmup","message":"warmup","timestamp":"2026-01-01T00:00:00Z"}' || true)
    [ "$code" = 200 ] && { ready=1; break; }
    sleep 0.1
done
[ "$ready" = 1 ] || { tail -n 20 "$WORK/mutt.log" >&2; echo "bench: mutt did not accept events" >&2; exit 1; }

accepted() {
    curl -s "http://127.0.0.1:$INGEST_PORT/metrics" |
        awk '/^mutt_ingest_events_total\{result="accepted"\}/ {printf "%d", $2; f=1} END {if (!f) print 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "redis: $(redis-server --version | awk '{print $3}'), appendonly yes, appendfsync $REDIS_FSYNC; wrk -t$THREADS -c$CONNS -d${DURATION}s"

FAILED=0
# run_mode NAME BATCH_SIZE
run_mode() {
    local name=$1 batch=$2 before after llen out reqs p50 p99 non2xx errs dur mutt0 redis0
    rc del "$QUEUE" >/dev/null
    before=$(accepted)
    mutt0=$(cpu_ticks "$MUTT_PID")
    redis0=$(cpu_ticks "$REDIS_PID")
    out=$(BATCH=$batch INGEST_KEY=$KEY wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$URL")
    sleep 1 # answers still in flight when wrk stopped counting
    after=$(accepted)
    llen=$(rc llen "$QUEUE")
    echo "$out" >"$WORK/wrk.$name.txt"
    reqs=$(sed -n 's/^Requests\/sec: *//p' <<<"$out")
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *//p' <<<"$out")
    read -r p50 p99 errs dur < <(sed -n 's/^BENCH p50_us=\([0-9]*\) p99_us=\([0-9]*\) requests=[0-9]* duration_us=\([0-9]*\) errors=\([0-9]*\)/\1 \2 \4 \3/p' <<<"$out")
    local acked=$((after - before))
    local cpu_m=$(( ($(cpu_ticks "$MUTT_PID") - mutt0) )) cpu_r=$(( ($(cpu_ticks "$REDIS_PID") - redis0) ))
    printf '%-7s req/s %s  p50 %.2f ms  p99 %.2f ms  non-2xx %s  socket errors %s' "$name" "$reqs" \
        "$(awk -v v="$p50" 'BEGIN{print v/1000}')" "$(awk -v v="$p99" 'BEGIN{print v/1000}')" "${non2xx:-0}" "$errs"
    if [ "$batch" -gt 0 ]; then
        printf '  events/s %.0f' "$(awk -v a="$acked" -v d="$dur" 'BEGIN{print a/(d/1e6)}')"
    fi
    printf '\n        accepted %s, LLEN %s: %s; CPU s: mutt %.1f, redis %.1f\n' "$acked" "$llen" \
        "$([ "$acked" = "$llen" ] && echo 'equal (no loss)' || echo 'DIFFERENT')" \
        "$(awk -v t="$cpu_m" 'BEGIN{print t/100}')" "$(awk -v t="$cpu_r" 'BEGIN{print t/100}')"
    [ "$acked" = "$llen" ] || FAILED=1
}

run_mode single 0
run_mode batch "$BATCH"
rc del "$QUEUE" >/dev/null
exit $FAILED
