#!/usr/bin/env bash
# Alert-stage benchmark (`make bench-alert`; not a timed test). Starts its own redis-server and
# PostgreSQL (tests/harness/services.sh in a temp state dir; Redis switched to appendfsync
# everysec, the production setting of D2), migrates a database, loads RULES rules (D13 mix: 70 %
# contains, 25 % OID prefix, 5 % regex; bench/alert_gen.py), preloads EVENTS events into
# mutt:ingest_queue, then runs one `mutt --roles=alert` and times it end to end: from start until
# the ingest queue and our processing list are empty, mutt:audit:pending is empty and
# event_audit_log holds one row per matched event. Prints events/s and checks the counts
# (audit rows = matched events, alerts = forwarded matches). Report: bench/results/alert-*.txt.
# Env: MUTT_BIN (./mutt), EVENTS (200000), RULES (1000), CONCURRENCY (64), AUDIT_BATCH (1000),
#      KEEP=1 keeps the work dir. Exit 1 when a count check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
EVENTS=${EVENTS:-200000}
RULES=${RULES:-1000}
CONCURRENCY=${CONCURRENCY:-64}
AUDIT_BATCH=${AUDIT_BATCH:-1000}
[ -x "$MUTT_BIN" ] || { echo "bench: $MUTT_BIN not built (make)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mutt-bench-alert.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/alert-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$RESULT") 2>&1
export MUTT_TEST_STATE="$WORK/svc"
MUTT_PID=
cleanup() {
    [ -n "$MUTT_PID" ] && kill -TERM "$MUTT_PID" 2>/dev/null && wait "$MUTT_PID" 2>/dev/null || true
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
# nothing consumes the alert queue here: keep backpressure (W17) out of the measurement
rc SET mutt:config:alerter_queue_warn_threshold 1000000000 >/dev/null
rc SET mutt:config:alerter_queue_shed_threshold 1000000000 >/dev/null
PGPASSWORD=$MUTT_TEST_PG_PASS psql -q -h 127.0.0.1 -p "$MUTT_TEST_PG_PORT" -U postgres -c "CREATE DATABASE mutt_bench"

free_port() {
    local p
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
HEALTH_PORT=$(free_port)
cat >"$WORK/mutt.conf" <<CONF
REDIS_HOST=127.0.0.1
REDIS_PORT=$MUTT_TEST_REDIS_PORT
DB_HOST=127.0.0.1
DB_PORT=$MUTT_TEST_PG_PORT
DB_NAME=mutt_bench
DB_USER=postgres
DB_PASS_CURRENT=$MUTT_TEST_PG_PASS
HEALTH_PORT=$HEALTH_PORT
POD_NAME=bench-alert
LOG_LEVEL=WARNING
ALERTER_CONCURRENCY=$CONCURRENCY
AUDIT_BATCH_SIZE=$AUDIT_BATCH
UNHANDLED_THRESHOLD=1000000000
CONF
"$MUTT_BIN" --config "$WORK/mutt.conf" migrate

echo "== machine: $(nproc) cpu, $(uname -r), $(redis-server --version | awk '{print $3}'), $(psql --version)"
echo "== commit $(git -C "$ROOT" rev-parse --short HEAD), binary $MUTT_BIN"
read -r MATCHED FORWARDED < <(python3 "$ROOT/bench/alert_gen.py" "$EVENTS" "$RULES" "$WORK")
psql_b -f "$WORK/rules.sql" >/dev/null
rc --pipe <"$WORK/events.resp" >/dev/null
echo "== preloaded: $(rc LLEN mutt:ingest_queue) events, $(psql_b -c 'SELECT count(*) FROM alert_rules') rules;" \
     "expected: $MATCHED matched (audit rows), $FORWARDED alerts"

now_ms() { date +%s%3N; }
redis_cpu() { rc INFO cpu | awk -F: '/used_cpu_(sys|user):/{s+=$2} END{printf "%.2f", s}'; }
rc CONFIG RESETSTAT >/dev/null # commandstats below count this run only (Lua-inner commands included)
R0=$(redis_cpu)
T0=$(now_ms)
"$MUTT_BIN" --config "$WORK/mutt.conf" --roles=alert 2>"$WORK/mutt.log" &
MUTT_PID=$!
T_REDIS=
DEADLINE=$((T0 + 300000))
while :; do
    sleep 0.1
    NOW=$(now_ms)
    [ "$NOW" -lt "$DEADLINE" ] || { echo "bench: timed out"; tail -20 "$WORK/mutt.log"; exit 1; }
    Q=$(rc LLEN mutt:ingest_queue)
    P=$(rc LLEN mutt:processing:alerter:bench-alert)
    if [ -z "$T_REDIS" ] && [ "$Q" = 0 ] && [ "$P" = 0 ]; then T_REDIS=$NOW; fi
    [ -n "$T_REDIS" ] || continue
    [ "$(rc LLEN mutt:audit:pending)" = 0 ] || continue
    ROWS=$(psql_b -c "SELECT count(*) FROM event_audit_log")
    [ "$ROWS" -ge "$MATCHED" ] && break
done
T1=$(now_ms)
ALERTS=$(rc LLEN mutt:alert_queue)
DLQ=$(rc LLEN mutt:dlq:alerter)
METRICS=$(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics")
MUTT_CPU=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$MUTT_PID/stat")
R1=$(redis_cpu)
CMDSTATS=$(rc INFO commandstats)
kill -TERM "$MUTT_PID"; wait "$MUTT_PID" || true; MUTT_PID=
ROWS=$(psql_b -c "SELECT count(*) FROM event_audit_log")
DISTINCT=$(psql_b -c "SELECT count(DISTINCT event_id) FROM event_audit_log")

ms_redis=$((T_REDIS - T0)); ms_all=$((T1 - T0))
echo "== results ($EVENTS events, $RULES rules, ALERTER_CONCURRENCY=$CONCURRENCY, AUDIT_BATCH_SIZE=$AUDIT_BATCH)"
echo "ingest queue drained:         ${ms_redis} ms  -> $((EVENTS * 1000 / (ms_redis > 0 ? ms_redis : 1))) events/s"
echo "end to end (audit committed): ${ms_all} ms  -> $((EVENTS * 1000 / (ms_all > 0 ? ms_all : 1))) events/s"
echo "audit rows $ROWS (distinct event ids $DISTINCT), expected $MATCHED"
echo "alerts $ALERTS, expected $FORWARDED; DLQ $DLQ"
echo "CPU seconds during the run: mutt $MUTT_CPU, redis-server $(echo "$R1 - $R0" | bc)"
echo "$METRICS" | grep -E '^mutt_alerter_(events_processed_total|alerts_forwarded_total|rules_match_seconds_(sum|count)|processing_latency_seconds_(sum|count))|^mutt_db_write_latency_ms_(sum|count)'
# per event; the bench's own polling (3 LLEN, a GET-less psql count per 100 ms) is in LLEN
echo "Redis commands per event (INFO commandstats, Lua-inner included; top 12):"
echo "$CMDSTATS" | tr -d '\r' | awk -F'[:=,]' -v n="$EVENTS" '/^cmdstat_/{sub("cmdstat_","",$1); t+=$3; printf "%s %.3f %.2f\n", $1, $3/n, $5/n}
    END{printf "TOTAL %.3f\n", t/n}' | sort -k2 -rn | awk '{if ($1=="TOTAL") tot=$0; else if (++i<=12) printf "  %-16s %7s calls  %6s usec\n", $1, $2, $3} END{split(tot,a," "); printf "  %-16s %7s calls\n", "total", a[2]}'
FAIL=0
[ "$ROWS" = "$MATCHED" ] && [ "$DISTINCT" = "$MATCHED" ] || { echo "CHECK FAILED: audit rows"; FAIL=1; }
[ "$ALERTS" = "$FORWARDED" ] || { echo "CHECK FAILED: alerts"; FAIL=1; }
[ "$DLQ" = 0 ] || { echo "CHECK FAILED: DLQ not empty"; FAIL=1; }
[ $FAIL = 0 ] && echo "checks: ok"
exit $FAIL
