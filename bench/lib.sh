# Shared parts of the pipeline benches (bench/e2e.sh, bench/soak.sh); sourced, never run. One
# bench = its own redis-server and PostgreSQL (tests/harness/services.sh in a temp state dir,
# Redis at appendfsync everysec as D2's production setting), a database with the 100 rules of
# bench/e2e_driver.c, mutt-sink --stamp, one `mutt --roles=all`, and bench/e2e_driver pacing
# single-event POSTs. Every process it starts is stopped by the EXIT trap.
#
#   bench_init NAME            ROOT WORK RESULT (bench/results/NAME-<UTC>.txt; stdout+stderr go there too)
#   bench_start_services       rc (redis-cli), psql_b; database mutt_bench
#   bench_write_conf           INGEST_PORT WEB_PORT SINK_PORT INGEST_KEY URL, $WORK/mutt.conf (+ EXTRA_CONF)
#   bench_load_rules           migrate + the driver's rules
#   bench_start_sink           SINK_PID (out: $WORK/sink.out, one stamped line per delivery)
#   bench_start_mutt           MUTT_PID; returns once the ingest stage answers
#   bench_print_header         machine, commit, settings, caps raised (D61), rules
#   bench_wait_drained N S     until the sink counted N and the queues are empty, at most S seconds
#   bench_stop                 SIGTERM mutt then the sink, waits for both
# Env: MUTT_BIN SINK_BIN DRIVER_BIN, INFLIGHT (MOOG_MAX_INFLIGHT, 32), EXTRA_CONF ("K=V ..."),
#      KEEP=1 keeps the work dir.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
SINK_BIN=${SINK_BIN:-$ROOT/build/tests/mutt-sink}
DRIVER_BIN=${DRIVER_BIN:-$ROOT/build/bench/e2e_driver}
INFLIGHT=${INFLIGHT:-32}
# D61: caps that would otherwise shape the result, raised for every pipeline bench and printed.
# The forward stage's shared limit defaults to 50 alerts/s; the ingest queue cap to 1,000,000
# (a pipeline that falls behind must show as a growing queue, not as 503s).
BENCH_CAPS="MOOG_RATE_LIMIT=1000000 MAX_INGEST_QUEUE_SIZE=1000000000"

bench_init() {
    local name=$1 b
    BENCH_NAME=$name
    for b in "$MUTT_BIN" "$SINK_BIN" "$DRIVER_BIN"; do
        [ -x "$b" ] || { echo "bench: $b not built (make bench-$name builds it)" >&2; exit 1; }
    done
    WORK=$(mktemp -d "/tmp/mutt-bench-$name.XXXXXX")
    chmod 755 "$WORK"
    mkdir -p "$ROOT/bench/results"
    BENCH_STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    RESULT="$ROOT/bench/results/$name-$BENCH_STAMP.txt"
    exec > >(tee "$RESULT") 2>&1
    export MUTT_TEST_STATE="$WORK/svc"
    MUTT_PID= SINK_PID=
    trap bench_cleanup EXIT
}

bench_cleanup() {
    bench_stop >/dev/null 2>&1 || true
    bash "$ROOT/tests/harness/services.sh" stop >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}

bench_start_services() {
    bash "$ROOT/tests/harness/services.sh" start >/dev/null
    # shellcheck disable=SC1091
    source "$MUTT_TEST_STATE/env"
    rc CONFIG SET appendfsync everysec >/dev/null
    PGPASSWORD=$MUTT_TEST_PG_PASS psql -q -h 127.0.0.1 -p "$MUTT_TEST_PG_PORT" -U postgres -c "CREATE DATABASE mutt_bench"
}
rc() { redis-cli -p "$MUTT_TEST_REDIS_PORT" "$@"; }
psql_b() { PGPASSWORD=$MUTT_TEST_PG_PASS psql -qAt -h 127.0.0.1 -p "$MUTT_TEST_PG_PORT" -U postgres -d mutt_bench "$@"; }

free_port() {
    local p
    while :; do
        # below the ephemeral range (32768+), where an outgoing connection could hold it
        p=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

bench_write_conf() {
    local kv
    INGEST_PORT=$(free_port)
    WEB_PORT=$(free_port)
    SINK_PORT=$(free_port)
    INGEST_KEY=bench-ingest-key-0123456789abcdef0123456789
    URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
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
POD_NAME=bench-$BENCH_NAME
LOG_LEVEL=WARNING
INGEST_API_KEY=$INGEST_KEY
WEBUI_API_KEY=bench-webui-key-0123456789abcdef0123456789
RATE_LIMIT_ENABLED=false
MOOG_WEBHOOK_URL=http://127.0.0.1:$SINK_PORT/events
MOOG_API_KEY=bench-moog-key
UNHANDLED_THRESHOLD=1000000000
MOOG_MAX_INFLIGHT=$INFLIGHT
CONF
    for kv in $BENCH_CAPS ${EXTRA_CONF:-}; do echo "$kv" >>"$WORK/mutt.conf"; done
}

bench_load_rules() {
    "$MUTT_BIN" --config "$WORK/mutt.conf" migrate
    "$DRIVER_BIN" --rules-sql >"$WORK/rules.sql"
    psql_b -f "$WORK/rules.sql" >/dev/null
}

bench_start_sink() {
    "$SINK_BIN" --port "$SINK_PORT" --out "$WORK/sink.out" --stamp 2>"$WORK/sink.log" &
    SINK_PID=$!
    local _
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$SINK_PORT/health" >/dev/null && return 0; sleep 0.1; done
    echo "bench: the sink did not start"; cat "$WORK/sink.log"; exit 1
}

bench_print_header() {
    echo "== machine: $(nproc) cpu ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/Mem:/{print $2}') GiB," \
         "$(uname -r), redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(psql --version);" \
         "load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
    echo "== commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' (+ uncommitted changes)')," \
         "binary $MUTT_BIN, roles all, MOOG_MAX_INFLIGHT=$INFLIGHT${EXTRA_CONF:+, $EXTRA_CONF}"
    echo "== caps raised for the bench (D61): $BENCH_CAPS (defaults MOOG_RATE_LIMIT=50, MAX_INGEST_QUEUE_SIZE=1000000);" \
         "RATE_LIMIT_ENABLED=false (ingest rate limit off, its default)"
    echo "== rules: $(psql_b -c 'SELECT count(*) FROM alert_rules') ($(psql_b -c "SELECT count(*) FROM alert_rules WHERE prod_handling <> 'Ignore'") forwarding)"
}

bench_start_mutt() {
    "$MUTT_BIN" --config "$WORK/mutt.conf" --roles=all 2>"$WORK/mutt.log" &
    MUTT_PID=$!
    local _
    for _ in $(seq 1 300); do # 401 without a key = the ingest stage is up (503 while starting)
        kill -0 "$MUTT_PID" 2>/dev/null || { echo "bench: mutt exited during start-up"; tail -5 "$WORK/mutt.log"; exit 1; }
        [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' "$URL")" = 401 ] && return 0
        sleep 0.1
    done
    echo "bench: the ingest stage did not come up in 30 s"; tail -5 "$WORK/mutt.log"; exit 1
}

now_ms() { date +%s%3N; }
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# redis-server's CPU seconds from /proc (its pid from INFO server)
redis_pid() { rc INFO server | awk -F: '/^process_id:/{print $2+0}'; }
redis_cpu() { cpu_of "$(redis_pid)"; }
sink_count() { curl -sf -m 2 "http://127.0.0.1:$SINK_PORT/count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }

# bench_wait_drained EXPECTED SECONDS: the tail, everything accepted is processed and delivered.
bench_wait_drained() {
    local expected=$1 deadline=$(($(now_ms) + $2 * 1000))
    while :; do
        [ "$(now_ms)" -lt "$deadline" ] || { echo "bench: deliveries did not complete within $2 s"; return 1; }
        if [ "$(sink_count)" -ge "$expected" ] && [ "$(rc LLEN mutt:ingest_queue)" = 0 ] &&
            [ "$(rc LLEN mutt:alert_queue)" = 0 ] && [ "$(rc ZCARD mutt:retry:moog)" = 0 ]; then
            return 0
        fi
        sleep 0.2
    done
}

bench_stop() {
    if [ -n "$MUTT_PID" ]; then kill -TERM "$MUTT_PID" 2>/dev/null || true; wait "$MUTT_PID" || true; MUTT_PID=; fi
    if [ -n "$SINK_PID" ]; then kill -TERM "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" || true; SINK_PID=; fi
}
