#!/usr/bin/env bash
# Soak (`make bench-soak`, issue 11; a bench, never part of `make test`): the whole pipeline of
# `make bench-e2e` (bench/lib.sh: own Redis and PostgreSQL, the 100 rules, mutt-sink --stamp, one
# `mutt --roles=all`, bench/e2e_driver pacing single-event POSTs) at RATE events/s for
# SOAK_MINUTES. Every 10 s bench/soak_sample.py records mutt's RSS, open fds and threads, the
# sink's RSS and fds, Redis memory, the queue depths and the ingest -> sink p50/p99 of that
# window. At the end bench/soak_report.py prints the drift report: PASS/FAIL per target (RSS
# growth < 5 MB after the first 5 minutes, no fd growth, p99 within 2x of the first 5 minutes,
# zero loss), with the numbers; targets that need samples after the first 5 minutes say "not
# enough samples" on shorter runs.
# Output: bench/results/soak-<UTC>.txt (this report), soak-<UTC>.ndjson (one line per sample),
# soak-<UTC>.summary.json (the verdicts).
# Env: SOAK_MINUTES (30), RATE (2000), CONNS (64), SOAK_BASELINE_MINUTES (5), plus bench/lib.sh's
#      MUTT_BIN SINK_BIN DRIVER_BIN INFLIGHT EXTRA_CONF KEEP. Exit 1 when a target FAILs.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
SOAK_MINUTES=${SOAK_MINUTES:-30}
RATE=${RATE:-2000}
CONNS=${CONNS:-64}
BASELINE_MIN=${SOAK_BASELINE_MINUTES:-5}
SECONDS_TOTAL=$(awk -v m="$SOAK_MINUTES" 'BEGIN {printf "%d", m * 60}')
[ "$SECONDS_TOTAL" -gt 0 ] || { echo "bench: SOAK_MINUTES must be > 0" >&2; exit 2; }

bench_init soak
SAMPLES="$ROOT/bench/results/soak-$BENCH_STAMP.ndjson"
SUMMARY="$ROOT/bench/results/soak-$BENCH_STAMP.summary.json"
SAMPLER_PID=
stop_sampler() {
    [ -n "$SAMPLER_PID" ] || return 0
    touch "$WORK/sampler.stop"
    wait "$SAMPLER_PID" || true
    SAMPLER_PID=
}
trap 'stop_sampler; bench_cleanup' EXIT

bench_start_services
bench_write_conf
bench_load_rules
bench_start_sink
bench_print_header
bench_start_mutt

echo "== soak: $RATE events/s for $SOAK_MINUTES min over $CONNS connections; a sample every 10 s;" \
     "baseline = the first $BASELINE_MIN min"
START_MS=$(now_ms)
python3 "$ROOT/bench/soak_sample.py" --out "$SAMPLES" --mutt-pid "$MUTT_PID" --sink-pid "$SINK_PID" \
    --redis-port "$MUTT_TEST_REDIS_PORT" --sink-out "$WORK/sink.out" --start-ms "$START_MS" \
    --stop-file "$WORK/sampler.stop" --interval 10 &
SAMPLER_PID=$!
"$DRIVER_BIN" --url "$URL" --key "$INGEST_KEY" --rate "$RATE" --seconds "$SECONDS_TOTAL" --conns "$CONNS" \
    --accepted "$WORK/accepted.txt"
stop_sampler
SENT=$(awk -v r="$RATE" -v s="$SECONDS_TOTAL" 'BEGIN {printf "%d", r * s}') # the driver sends exactly rate x seconds
EXPECTED=$(awk '$2 == 1' "$WORK/accepted.txt" | wc -l)
T_END=$(now_ms)
bench_wait_drained "$EXPECTED" 120 || true
echo "== drained $(( $(now_ms) - T_END )) ms after the driver ended"
sleep 1.5 # a late duplicate would show up here
MUTT_ALIVE=yes
kill -0 "$MUTT_PID" 2>/dev/null || MUTT_ALIVE="NO (it died during the run)"
bench_stop
DLQ=$(( $(rc LLEN mutt:dlq:alerter) + $(rc LLEN mutt:dlq:moog) ))
echo "mutt alive until the end: $MUTT_ALIVE; DLQ items (alerter + moog): $DLQ;" \
     "audit rows $(psql_b -c 'SELECT count(*) FROM event_audit_log')"
grep -E '"level":"(ERROR|CRITICAL)"|ERROR|CRITICAL' "$WORK/mutt.log" | head -5 || true

FAIL=0
python3 "$ROOT/bench/soak_report.py" --samples "$SAMPLES" --accepted "$WORK/accepted.txt" \
    --sink-out "$WORK/sink.out" --start-ms "$START_MS" --sent "$SENT" --dlq "$DLQ" \
    --baseline-min "$BASELINE_MIN" --summary-json "$SUMMARY" || FAIL=1
[ "$MUTT_ALIVE" = yes ] || FAIL=1
echo "== files: $RESULT, $SAMPLES, $SUMMARY"
exit $FAIL
