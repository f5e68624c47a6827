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
# else is delivered, nothing reaches a DLQ. Cost per event (issue 13, bench/redis_cost.py): Redis
# commands (INFO commandstats deltas, Lua-inner commands included), Redis and mutt CPU (/proc),
# the fleet ceiling. Report: bench/results/e2e-*.txt.
# Env: MUTT_BIN (./mutt), SINK_BIN, DRIVER_BIN, RATE (5000), DURATION (60 s), CONNS (64),
#      INFLIGHT (MOOG_MAX_INFLIGHT, 32 = the default), EXTRA_CONF ("KEY=VALUE ..." appended to
#      the config), KEEP=1 keeps the work dir, PERF=1 profiles mutt while driving and draining
#      (perf record -e cpu-clock -g; the top of perf report goes into the report). Exit 1 when a
#      check fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RATE=${RATE:-5000}
DURATION=${DURATION:-60}
CONNS=${CONNS:-64}

bench_init e2e
bench_start_services
bench_write_conf
bench_load_rules
bench_start_sink
bench_print_header
bench_start_mutt

R0=$(redis_cpu)
M0=$(cpu_of "$MUTT_PID")
rc INFO commandstats >"$WORK/cmdstats0.txt"
PERF_PID=
if [ "${PERF:-0}" = 1 ]; then # software clock: this box has no hardware counters
    perf record -q -e cpu-clock -g -p "$MUTT_PID" -o "$WORK/perf.data" 2>"$WORK/perf.log" &
    PERF_PID=$!
fi
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
bench_wait_drained "$EXPECTED" 120 || true
echo "== drained $(( $(now_ms) - T_END )) ms after the driver ended"
MUTT_CPU=$(echo "$(cpu_of "$MUTT_PID") - $M0" | bc)
REDIS_CPU=$(echo "$(redis_cpu) - $R0" | bc)
rc INFO commandstats >"$WORK/cmdstats1.txt"
if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" || true; fi
sleep 1.5 # a late duplicate would show up here
bench_stop
DLQ_A=$(rc LLEN mutt:dlq:alerter)
DLQ_M=$(rc LLEN mutt:dlq:moog)
AUDIT=$(psql_b -c "SELECT count(*) FROM event_audit_log")
echo "CPU seconds while driving and draining: mutt $MUTT_CPU, redis-server $REDIS_CPU"
echo "DLQ: alerter $DLQ_A, moog $DLQ_M; audit rows $AUDIT"
awk 'NR == 1 {t0 = $1} { w = int(($1 - t0) / 10000); if ($2 > qi[w]) qi[w] = $2; if ($3 > qa[w]) qa[w] = $3; n = w }
     END { for (w = 0; w <= n; w++) printf "  %3d-%3d s: max depth ingest_queue %6d, alert_queue %6d\n", w * 10, w * 10 + 10, qi[w], qa[w] }' \
    "$WORK/depths.txt"

python3 "$ROOT/bench/redis_cost.py" "$WORK/cmdstats0.txt" "$WORK/cmdstats1.txt" "$(wc -l <"$WORK/accepted.txt")" \
    "$REDIS_CPU" "$MUTT_CPU"
if [ -n "$PERF_PID" ]; then # (into files first: head closing a pipe must not end the bench)
    perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,symbol >"$WORK/perf.self" 2>/dev/null || true
    perf report -i "$WORK/perf.data" --stdio --children --sort symbol -g none >"$WORK/perf.children" 2>/dev/null || true
    echo "== perf (mutt, cpu-clock, self time by library and symbol):"
    grep -E '^ +[0-9.]+%' "$WORK/perf.self" | sed -n 1,40p || true
    echo "== perf (mutt, cpu-clock, including callees):"
    grep -E '^ +[0-9.]+%' "$WORK/perf.children" | sed -n 1,50p || true
fi

FAIL=0
python3 "$ROOT/bench/e2e_check.py" "$WORK/accepted.txt" "$WORK/sink.out" || FAIL=1
[ "$DLQ_A" = 0 ] && [ "$DLQ_M" = 0 ] || { echo "CHECK FAILED: DLQ not empty"; FAIL=1; }
grep -E '"level":"(ERROR|CRITICAL)"|ERROR|CRITICAL' "$WORK/mutt.log" | head -5 || true
[ $FAIL = 0 ] && echo "checks: ok"
exit $FAIL
