#!/usr/bin/env bash
# Ingest benchmark (`make bench-ingest`; not a timed test). Starts its own redis-server
# (appendonly yes, appendfsync everysec: the production setting D2 documents) and one
# `mutt --roles=ingest`, then drives POST /api/v2/ingest with wrk (2 threads, 64 keep-alive
# connections, bench/post.lua):
#   1. single: one ~300-byte syslog event per request -> req/s, p50, p99, non-2xx
#   2. batch:  a JSON array of 100 such events per request -> events/s
# and, per mode, the Redis commands per event (INFO commandstats after CONFIG RESETSTAT; Lua's
# inner commands count, the bench's own INFO/CONFIG/LLEN do not).
# Each mode starts from an empty queue and byte counter (D52: a DEL of the queue alone would
# leave the counter where the last mode left it, and max_ingest_queue_bytes would refuse early).
# After each mode it checks that LLEN of the queue equals the number of events mutt acknowledged (mutt_ingest_events_total{result="accepted"} on /metrics): zero loss.
# The report is also written to bench/results/ingest-<UTC time>.txt, with wrk's raw output.
# Env: MUTT_BIN (default ./mutt), DURATION (10), THREADS (2), CONNS (64), BATCH (100),
#      REDIS_FSYNC (everysec), INSTANCES (1; >1 runs that many reuseport processes, D11),
#      REPLICA (0; 1 also starts a redis-server --replicaof the bench's Redis), MIN_REPLICAS
#      (0; INGEST_MIN_REPLICAS, D37), MODES ("single batch"),
#      KEEP=1 keeps the work dir. Exit status 1 when an LLEN check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
BATCH=${BATCH:-100}
REDIS_FSYNC=${REDIS_FSYNC:-everysec}
INSTANCES=${INSTANCES:-1}
REPLICA=${REPLICA:-0}
MIN_REPLICAS=${MIN_REPLICAS:-0}
MODES=${MODES:-single batch}
KEY=bench-ingest-key-0123456789abcdef0123456789
QUEUE=mutt:ingest_queue

command -v wrk >/dev/null || bash "$ROOT/tests/harness/deps.sh" wrk
command -v redis-server >/dev/null || { echo "bench: redis-server missing (make deps)" >&2; exit 1; }
[ -x "$MUTT_BIN" ] || { echo "bench: $MUTT_BIN not built (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mutt-bench.XXXXXX)
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/ingest-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$RESULT") 2>&1
REDIS_PID=
REPLICA_PID=
MUTT_PIDS=()
HEALTH_PORTS=()
cleanup() {
    local p
    for p in ${MUTT_PIDS[@]+"${MUTT_PIDS[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
    for p in ${MUTT_PIDS[@]+"${MUTT_PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
    [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null || true
    [ -n "$REPLICA_PID" ] && kill -TERM "$REPLICA_PID" 2>/dev/null || true
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
if [ "$REPLICA" = 1 ]; then
    REPLICA_PORT=$(free_port)
    mkdir -p "$WORK/replica"
    redis-server --port "$REPLICA_PORT" --bind 127.0.0.1 --daemonize yes --dir "$WORK/replica" \
        --pidfile "$WORK/replica/redis.pid" --logfile "$WORK/replica/redis.log" --save '' \
        --appendonly yes --appendfsync "$REDIS_FSYNC" --replicaof 127.0.0.1 "$REDIS_PORT" >/dev/null
    for _ in $(seq 1 200); do
        redis-cli -p "$REPLICA_PORT" info replication 2>/dev/null | grep -q master_link_status:up && break
        sleep 0.05
    done
    REPLICA_PID=$(cat "$WORK/replica/redis.pid")
fi

for i in $(seq 1 "$INSTANCES"); do
    hp=$(free_port)
    HEALTH_PORTS+=("$hp")
    cat >"$WORK/mutt.$i.conf" <<EOF
POD_NAME=bench-$$-$i
BIND_ADDR=127.0.0.1
INGESTOR_PORT=$INGEST_PORT
HEALTH_PORT=$hp
INGEST_REUSEPORT=$([ "$INSTANCES" -gt 1 ] && echo true || echo false)
REDIS_HOST=127.0.0.1
REDIS_PORT=$REDIS_PORT
INGEST_API_KEY=$KEY
MAX_INGEST_QUEUE_SIZE=1000000000
MAX_INGEST_QUEUE_BYTES=8589934592
LOG_LEVEL=WARNING
INGEST_MIN_REPLICAS=$MIN_REPLICAS
EOF
    "$MUTT_BIN" --config "$WORK/mutt.$i.conf" --roles=ingest >"$WORK/mutt.$i.log" 2>&1 &
    MUTT_PIDS+=($!)
done
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
ready=0
for _ in $(seq 1 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL" -H "X-API-KEY: $KEY" \
        -H 'Content-Type: application/json' -d '{"hostname":"warmup","message":"warmup","timestamp":"2026-01-01T00:00:00Z"}' || true)
    [ "$code" = 200 ] && { ready=1; break; }
    sleep 0.1
done
[ "$ready" = 1 ] || { tail -n 20 "$WORK"/mutt.*.log >&2; echo "bench: mutt did not accept events" >&2; exit 1; }

# Events acknowledged so far, summed over every process (each answers /metrics on its health
# port when INSTANCES > 1, else on the ingest port).
accepted() {
    local ports=("$INGEST_PORT") p total=0 v
    [ "$INSTANCES" -gt 1 ] && ports=("${HEALTH_PORTS[@]}")
    for p in "${ports[@]}"; do
        v=$(curl -s "http://127.0.0.1:$p/metrics" |
            awk '/^mutt_ingest_events_total\{result="accepted"\}/ {printf "%d", $2; f=1} END {if (!f) print 0}')
        total=$((total + v))
    done
    echo "$total"
}
cpu_ticks() { # summed over the given pids
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t"
}

echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); $("$MUTT_BIN" --version 2>&1 | head -n 1)"
echo "machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "redis: $(redis-server --version | awk '{print $3}'), appendonly yes, appendfsync $REDIS_FSYNC; $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2); wrk -t$THREADS -c$CONNS -d${DURATION}s; mutt processes: $INSTANCES; replica: $REPLICA, INGEST_MIN_REPLICAS=$MIN_REPLICAS"

FAILED=0
# run_mode NAME BATCH_SIZE
run_mode() {
    local name=$1 batch=$2 before after llen out reqs p50 p99 non2xx errs dur mutt0 redis0
    rc del "$QUEUE" "$QUEUE:bytes" >/dev/null
    before=$(accepted)
    mutt0=$(cpu_ticks "${MUTT_PIDS[@]}")
    redis0=$(cpu_ticks "$REDIS_PID")
    rc config resetstat >/dev/null
    out=$(BATCH=$batch INGEST_KEY=$KEY wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$ROOT/bench/post.lua" "$URL")
    sleep 1 # answers still in flight when wrk stopped counting
    after=$(accepted)
    local cs
    cs=$(rc info commandstats)
    llen=$(rc llen "$QUEUE")
    echo "$out" >"$WORK/wrk.$name.txt"
    reqs=$(sed -n 's/^Requests\/sec: *//p' <<<"$out")
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *//p' <<<"$out")
    read -r p50 p99 errs dur < <(sed -n 's/^BENCH p50_us=\([0-9]*\) p99_us=\([0-9]*\) requests=[0-9]* duration_us=\([0-9]*\) errors=\([0-9]*\)/\1 \2 \4 \3/p' <<<"$out")
    local acked=$((after - before))
    local cpu_m=$(( ($(cpu_ticks "${MUTT_PIDS[@]}") - mutt0) )) cpu_r=$(( ($(cpu_ticks "$REDIS_PID") - redis0) ))
    printf '%-7s req/s %s  p50 %.2f ms  p99 %.2f ms  non-2xx %s  socket errors %s' "$name" "$reqs" \
        "$(awk -v v="$p50" 'BEGIN{print v/1000}')" "$(awk -v v="$p99" 'BEGIN{print v/1000}')" "${non2xx:-0}" "$errs"
    if [ "$batch" -gt 0 ]; then
        printf '  events/s %.0f' "$(awk -v a="$acked" -v d="$dur" 'BEGIN{print a/(d/1e6)}')"
    fi
    printf '\n        accepted %s, LLEN %s: %s; CPU s: mutt %.1f, redis %.1f\n' "$acked" "$llen" \
        "$([ "$acked" = "$llen" ] && echo 'equal (no loss)' || echo 'DIFFERENT')" \
        "$(awk -v t="$cpu_m" 'BEGIN{print t/100}')" "$(awk -v t="$cpu_r" 'BEGIN{print t/100}')"
    [ "$acked" = "$llen" ] || FAILED=1
    awk -v a="$acked" -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" && $1 !~ /^cmdstat_config/ {
            t += $3; if ($1 == "cmdstat_evalsha") e = $3; l = l sprintf(" %s %d", substr($1, 9), $3) }
        END { if (a > 0) printf "        Redis commands/event %.3f (EVALSHA/event %.4f):%s\n", t / a, e / a, l }' <<<"$cs"
    { echo "---- wrk output ($name)"; echo "$out"; } >>"$WORK/raw.txt"
}

for m in $MODES; do
    case "$m" in
    single) run_mode single 0 ;;
    batch) run_mode batch "$BATCH" ;;
    *) echo "bench: unknown mode $m" >&2; exit 1 ;;
    esac
done
rc del "$QUEUE" "$QUEUE:bytes" >/dev/null
cat "$WORK/raw.txt"
echo "report: $RESULT"
exit $FAILED
