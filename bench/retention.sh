#!/usr/bin/env bash
# Retention data-volume run (D30: too long for `make test`). Starts throw-away Redis and
# PostgreSQL with tests/harness/services.sh, applies the schema, seeds 1,000,000 event_audit_log
# rows older than RETENTION_EVENT_AUDIT_DAYS (half in five old monthly partitions, half in
# DEFAULT, D28) plus NEW_ROWS newer rows, then times
# `mutt retention` (since issue 17 every row is archived to ARCHIVE_DIR first: old partitions
# without held rows are archived whole and dropped, DEFAULT goes RETENTION_BATCH_SIZE rows per
# transaction) and
# checks that every old row is gone and every newer one is still there. The report goes to bench/results/retention-<UTC>.txt.
# Env: MUTT_BIN (default ./mutt), OLD_ROWS (1000000), NEW_ROWS (100000), BATCH (1000),
#      HELD_ROWS (0): a legal hold on the HELD_ROWS oldest DEFAULT rows, which must stay,
#      KEEP=1 keeps the services' state dir. Exit status 1 when a check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
OLD_ROWS=${OLD_ROWS:-1000000}
NEW_ROWS=${NEW_ROWS:-100000}
BATCH=${BATCH:-1000}
HELD_ROWS=${HELD_ROWS:-0}
[ -x "$MUTT_BIN" ] || { echo "bench: $MUTT_BIN not built (make)" >&2; exit 1; }

mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/retention-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$RESULT") 2>&1

unset MUTT_TEST_STATE
STATE=$(bash "$ROOT/tests/harness/services.sh" start)
cleanup() { MUTT_TEST_STATE=$STATE bash "$ROOT/tests/harness/services.sh" stop || true; }
trap cleanup EXIT
# shellcheck disable=SC1091
. "$STATE/env"
export PGPASSWORD=$MUTT_TEST_PG_PASS
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" \
        "$MUTT_TEST_PG_DB" -c "$1"; }

CONF="$STATE/bench-retention.conf"
cat >"$CONF" <<CONF
REDIS_HOST=$MUTT_TEST_REDIS_HOST
REDIS_PORT=$MUTT_TEST_REDIS_PORT
DB_HOST=$MUTT_TEST_PG_HOST
DB_PORT=$MUTT_TEST_PG_PORT
DB_NAME=$MUTT_TEST_PG_DB
DB_USER=$MUTT_TEST_PG_USER
DB_PASS_CURRENT=$MUTT_TEST_PG_PASS
RETENTION_BATCH_SIZE=$BATCH
ARCHIVE_DIR=$STATE/archive
CONF

echo "== retention bench: $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "   $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "   old rows $OLD_ROWS, new rows $NEW_ROWS, batch $BATCH, held rows $HELD_ROWS"
"$MUTT_BIN" --config "$CONF" migrate

half=$((OLD_ROWS / 2))
per_part=$((half / 5))
t0=$(date +%s.%N)
for m in 01 02 03 04 05; do
    sql "CREATE TABLE event_audit_log_2021_$m PARTITION OF event_audit_log
           FOR VALUES FROM ('2021-$m-01 00:00+00') TO (('2021-$m-01 00:00+00'::timestamptz + interval '1 month'));
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname, raw_message)
           SELECT '2021-$m-01 00:00+00'::timestamptz + g * interval '2 seconds', 'p$m-' || g, 'host-' || (g % 500),
                  'bench row ' || g FROM generate_series(1, $per_part) g;"
done
default_rows=$((OLD_ROWS - 5 * per_part))
sql "INSERT INTO event_audit_log (event_timestamp, event_id, hostname, raw_message)
       SELECT now() - interval '100 days' - g * interval '20 seconds', 'd-' || g, 'host-' || (g % 500), 'bench row ' || g
       FROM generate_series(1, $default_rows) g;
     INSERT INTO event_audit_log (event_timestamp, event_id, hostname, raw_message)
       SELECT now() - interval '1 day' + (g % 80000) * interval '1 second', 'n-' || g, 'host-' || (g % 500), 'bench row ' || g
       FROM generate_series(1, $NEW_ROWS) g;
     ANALYZE event_audit_log;"
if [ "$HELD_ROWS" -gt 0 ]; then
    sql "INSERT INTO legal_holds (table_name, from_ts, to_ts, reason, created_by)
           SELECT 'event_audit_log', min(event_timestamp), max(event_timestamp), 'bench', 'bench'
           FROM (SELECT event_timestamp FROM event_audit_log_default ORDER BY event_timestamp LIMIT $HELD_ROWS) s" >/dev/null
fi
t1=$(date +%s.%N)
echo "seeded in $(echo "$t1 - $t0" | bc) s: $(sql "SELECT count(*) FROM event_audit_log") rows," \
     "$(sql "SELECT count(*) FROM event_audit_log_default") in DEFAULT"

t0=$(date +%s.%N)
"$MUTT_BIN" --config "$CONF" retention
t1=$(date +%s.%N)
elapsed=$(echo "$t1 - $t0" | bc)
left_old=$(sql "SELECT count(*) FROM event_audit_log WHERE event_timestamp < now() - interval '90 days'")
left_new=$(sql "SELECT count(*) FROM event_audit_log WHERE event_timestamp >= now() - interval '90 days'")
echo "retention: $elapsed s for $OLD_ROWS old rows ($(echo "$OLD_ROWS / $elapsed" | bc) rows/s);" \
     "old rows left $left_old, newer rows left $left_new of $NEW_ROWS"
echo "archive: $(du -sh "$STATE/archive" | cut -f1) in $(find "$STATE/archive" -name '*.ndjson.gz' | wc -l) files"
rc=0
[ "$left_old" = "$HELD_ROWS" ] || { echo "FAIL: $left_old old rows remain, $HELD_ROWS held"; rc=1; }
[ "$left_new" = "$NEW_ROWS" ] || { echo "FAIL: newer rows were deleted"; rc=1; }
echo "report: $RESULT"
exit $rc
