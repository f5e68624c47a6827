#!/usr/bin/env bash
# Fleet benchmark (`make bench-fleet`, issue 13; not a timed test): the load of bench-e2e driven
# through one `mutt --roles=ingest,web` and 1, 2 and 4 `mutt --roles=alert,forward` processes
# against one Redis (the set-up of bench/lib.sh: own redis-server and PostgreSQL, the driver's
# 100 rules, mutt-sink --stamp). For each fleet size it prints the delivered events/s, Redis CPU
# and commands per event (bench/redis_cost.py): where adding processes stops helping, because
# every one of them shares the one Redis. Zero loss is checked per size (bench/e2e_check.py).
# Report: bench/results/fleet-*.txt.
# Env: as bench/e2e.sh (RATE 5000, DURATION 20 s per size, CONNS 64, INFLIGHT, EXTRA_CONF),
#      FLEET ("1 2 4": the alert,forward process counts). Exit 1 when a check fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RATE=${RATE:-5000}
DURATION=${DURATION:-20}
CONNS=${CONNS:-64}
FLEET=${FLEET:-1 2 4}

bench_init fleet
bench_start_services
bench_write_conf
bench_load_rules
bench_print_header
echo "== fleet: one --roles=ingest,web + N --roles=alert,forward for N in $FLEET; $RATE events/s for $DURATION s each"

WORKERS=()
fleet_stop() {
    local p
    for p in "${WORKERS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${WORKERS[@]}"; do wait "$p" || true; done
    WORKERS=()
    bench_stop
}
trap 'fleet_stop >/dev/null 2>&1 || true; bench_cleanup' EXIT

FAIL=0
SUMMARY=()
for N in $FLEET; do
    echo
    echo "==== $N x --roles=alert,forward"
    rc FLUSHALL >/dev/null
    rm -f "$WORK/sink.out"
    bench_start_sink
    # the ingest,web process is bench_start_mutt's MUTT_PID; the workers get their own pod names
    # and health ports (CONTRACT: one HEALTH_PORT per process on a host)
    sed -e "s/^POD_NAME=.*/POD_NAME=bench-fleet-ingest/" "$WORK/mutt.conf" >"$WORK/ingest.conf"
    "$MUTT_BIN" --config "$WORK/ingest.conf" --roles=ingest,web 2>"$WORK/mutt.log" &
    MUTT_PID=$!
    for i in $(seq 1 "$N"); do
        sed -e "s/^POD_NAME=.*/POD_NAME=bench-fleet-w$i/" "$WORK/mutt.conf" >"$WORK/w$i.conf"
        echo "HEALTH_PORT=$(free_port)" >>"$WORK/w$i.conf"
        "$MUTT_BIN" --config "$WORK/w$i.conf" --roles=alert,forward 2>"$WORK/w$i.log" &
        WORKERS+=($!)
    done
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d '{}' "$URL")" = 401 ] && break
        sleep 0.1
    done
    sleep 1
    R0=$(redis_cpu)
    M0=$(cpu_of "$MUTT_PID")
    for p in "${WORKERS[@]}"; do M0=$(echo "$M0 + $(cpu_of "$p")" | bc); done
    rc INFO commandstats >"$WORK/cmdstats0.txt"
    T0=$(now_ms)
    "$DRIVER_BIN" --url "$URL" --key "$INGEST_KEY" --rate "$RATE" --seconds "$DURATION" --conns "$CONNS" \
        --accepted "$WORK/accepted.txt"
    EXPECTED=$(awk '$2 == 1' "$WORK/accepted.txt" | wc -l)
    ACCEPTED=$(wc -l <"$WORK/accepted.txt")
    bench_wait_drained "$EXPECTED" 120 || FAIL=1
    T1=$(now_ms)
    M1=$(cpu_of "$MUTT_PID")
    for p in "${WORKERS[@]}"; do M1=$(echo "$M1 + $(cpu_of "$p")" | bc); done
    REDIS_CPU=$(echo "$(redis_cpu) - $R0" | bc)
    MUTT_CPU=$(echo "$M1 - $M0" | bc)
    rc INFO commandstats >"$WORK/cmdstats1.txt"
    sleep 1.5 # a late duplicate would show up here
    fleet_stop
    EPS=$((ACCEPTED * 1000 / (T1 - T0)))
    echo "$ACCEPTED events accepted and processed in $((T1 - T0)) ms (driving + draining): $EPS events/s;" \
         "CPU s: redis-server $REDIS_CPU, mutt (all processes) $MUTT_CPU"
    python3 "$ROOT/bench/redis_cost.py" "$WORK/cmdstats0.txt" "$WORK/cmdstats1.txt" "$ACCEPTED" "$REDIS_CPU" \
        "$MUTT_CPU" "$N x alert,forward" | tee "$WORK/cost.txt"
    python3 "$ROOT/bench/e2e_check.py" "$WORK/accepted.txt" "$WORK/sink.out" | tail -4 || FAIL=1
    [ "$(rc LLEN mutt:dlq:alerter)" = 0 ] && [ "$(rc LLEN mutt:dlq:moog)" = 0 ] || { echo "CHECK FAILED: DLQ not empty"; FAIL=1; }
    SUMMARY+=("$(printf '%2d x alert,forward: %6d events/s, redis-server %6.2f CPU-s, %s' "$N" "$EPS" "$REDIS_CPU" \
        "$(awk '/Redis commands per event/{print $5 " commands/event"} /Redis CPU per event/{print $5 " us Redis/event"}' \
            "$WORK/cost.txt" | paste -sd, -)")")
done
echo
echo "== fleet summary (offered $RATE events/s)"
printf '%s\n' "${SUMMARY[@]}"
[ $FAIL = 0 ] && echo "checks: ok"
exit $FAIL
