#!/usr/bin/env bash
# End-to-end tests of the alert stage (CONTRACT §4, D3, D12, D14, W20, W32) with the built binary
# against the harness's Redis and PostgreSQL: the kill -9 drill (10,000 queued events, a second
# pod finishes: every event audited and alerted exactly once), a 30 s PostgreSQL outage under load
# (alerts keep flowing, pending audit rows flush afterwards, none lost or duplicated), a rule made
# by SQL + PUBLISH mutt:rules:updates taking effect within 1 s, SIGHUP reload, and the
# GET /api/v1/unhandled shape (D14). Needs MUTT_TEST_* (services.sh), MUTT_BIN.
source "$(dirname "$0")/lib.sh"

rc() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
sql() { PGPASSWORD=$MUTT_TEST_PG_PASS psql -qAt -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" \
    -U "$MUTT_TEST_PG_USER" -d "$MUTT_TEST_PG_DB" -c "$1"; }

# Fresh state for one test: empty Redis, schema applied, rule tables and audit rows emptied.
fresh() {
    rc FLUSHALL >/dev/null
    # nothing consumes mutt:alert_queue in these tests: keep backpressure (W17) out of the way
    rc SET mutt:config:alerter_queue_warn_threshold 100000000 >/dev/null
    rc SET mutt:config:alerter_queue_shed_threshold 100000000 >/dev/null
    e2e_config "$E2E_TMP/migrate.conf"
    "$MUTT_BIN" --config "$E2E_TMP/migrate.conf" migrate >/dev/null
    sql "TRUNCATE alert_rules, development_hosts, device_teams, event_audit_log RESTART IDENTITY"
    sql "INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling, team_assignment)
         VALUES ('CRITICAL', 'contains', 10, 'Page_and_ticket', 'Ticket_only', 'NETO')"
}

# push_events N PREFIX MESSAGE [HOSTS]: N events (over HOSTS hostnames, default 50) straight into
# mutt:ingest_queue, as ingest writes them.
push_events() {
    python3 - "$1" "$2" "$3" "${4:-50}" <<'EOF' | rc --pipe >/dev/null
import json, sys, uuid
n, prefix, msg, hosts = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
out = sys.stdout.buffer
for i in range(n):
    ev = json.dumps({"hostname": "host-%d" % (i % hosts), "message": "%s %d" % (msg, i),
                     "timestamp": "2025-11-25T10:00:00.000Z", "_correlation_id": "%s-%d" % (prefix, i),
                     "_event_id": str(uuid.uuid4())}, separators=(",", ":")).encode()
    args = [b"LPUSH", b"mutt:ingest_queue", ev]
    out.write(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
EOF
}

# Rows claimed by audit writers and not yet committed.
claimed() {
    local s=0 k
    for k in $(rc --scan --pattern 'mutt:audit:processing:*'); do s=$((s + $(rc LLEN "$k"))); done
    echo "$s"
}
audit_rows() { sql "SELECT count(*) FROM event_audit_log"; }
distinct_rows() { sql "SELECT count(DISTINCT event_id) FROM event_audit_log"; }
alert_ids_distinct() { rc LRANGE mutt:alert_queue 0 -1 | sed -n 's/.*"_event_id":"\([^"]*\)".*/\1/p' | sort -u | wc -l; }
# Everything settled: queues, processing lists, pending rows and claim lists all empty.
settled() {
    [ "$(rc LLEN mutt:ingest_queue)" = 0 ] && [ "$(rc LLEN mutt:audit:pending)" = 0 ] &&
        [ -z "$(rc --scan --pattern 'mutt:processing:alerter:*')" ] &&
        [ -z "$(rc --scan --pattern 'mutt:audit:processing:*')" ] && [ "$(audit_rows)" = "$1" ]
}

test_kill9_mid_stream_then_another_pod_finishes_exactly_once() {
    fresh
    push_events 10000 k9 "CRITICAL link down"
    rc SET mutt:ingest_queue:bytes 1 >/dev/null # D52: pushed around the counter, which drifts
    e2e_config "$E2E_TMP/a.conf" POD_NAME=alert-a HEARTBEAT_INTERVAL=1 HEARTBEAT_EXPIRY=3 JANITOR_INTERVAL=1 \
        ALERTER_CONCURRENCY=16 AUDIT_BATCH_SIZE=200
    start_mutt "$E2E_TMP/a.conf" alert
    local left=10000 i
    for i in $(seq 1 2000); do # poll hard: kill as soon as work is under way
        left=$(rc LLEN mutt:ingest_queue)
        [ "$left" -lt 9500 ] && break
    done
    helper_signal KILL "$MUTT_PID"
    e2e_log "killed pod alert-a with $left events still queued, $(rc LLEN mutt:processing:alerter:alert-a) in its" \
        "processing list, $(audit_rows) audit rows"
    [ "$left" -gt 0 ] || e2e_log "warning: the queue was already drained at the kill"
    MUTT_PID=
    e2e_config "$E2E_TMP/b.conf" POD_NAME=alert-b HEARTBEAT_INTERVAL=1 HEARTBEAT_EXPIRY=3 JANITOR_INTERVAL=1
    start_mutt "$E2E_TMP/b.conf" alert
    wait_until 60 settled 10000 || t_fail "not settled: queue $(rc LLEN mutt:ingest_queue), pending" \
        "$(rc LLEN mutt:audit:pending), rows $(audit_rows), keys $(rc --scan --pattern 'mutt:*processing*' | tr '\n' ' ')"
    assert_eq 10000 "$(distinct_rows)" "audit rows per event"
    assert_eq 10000 "$(rc LLEN mutt:alert_queue)" "alerts"
    assert_eq 10000 "$(alert_ids_distinct)" "distinct alerts"
    assert_eq 0 "$(rc LLEN mutt:dlq:alerter)" "DLQ"
    # D52: the janitor (every second here) reconciles the byte counter with the empty queue
    wait_until 10 eval '[ -z "$(rc GET mutt:ingest_queue:bytes)" ]' ||
        t_fail "byte counter not reconciled: $(rc GET mutt:ingest_queue:bytes)"
    stop_mutt
}

# The 30 s of load while PostgreSQL is down; writes the number of events pushed to $1.
outage_load() {
    local t0 pushed=500 a1 a2
    t0=$(date +%s)
    a1=$(rc LLEN mutt:alert_queue)
    while [ $(($(date +%s) - t0)) -lt 30 ]; do
        push_events 200 "down$pushed" "CRITICAL during outage"
        pushed=$((pushed + 200))
        echo "$pushed" >"$1"
        sleep 0.5 # pacing the load over the 30 s outage, not synchronisation
    done
    wait_until 10 eval '[ "$(rc LLEN mutt:ingest_queue)" = 0 ]' || t_fail "events not consumed during the outage"
    a2=$(rc LLEN mutt:alert_queue)
    assert_eq "$pushed" "$a2" "alerts queued while PostgreSQL was down"
    [ "$a2" -gt "$a1" ] || t_fail "no alerts during the outage"
    assert_eq $((pushed - 500)) "$(($(rc LLEN mutt:audit:pending) + $(claimed)))" "audit rows waiting in Redis"
}

test_pg_outage_alerts_keep_flowing_and_pending_rows_flush() {
    fresh
    e2e_config "$E2E_TMP/pg.conf" POD_NAME=alert-pg DB_QUERY_TIMEOUT_MS=2000
    start_mutt "$E2E_TMP/pg.conf" alert
    push_events 500 before "CRITICAL before"
    wait_until 20 settled 500 || t_fail "first 500 not settled"
    bash "$SERVICES" stop-pg >/dev/null
    local ok=0
    (set -e; outage_load "$E2E_TMP/pushed") || ok=1
    bash "$SERVICES" start-pg >/dev/null # the next tests need it, pass or fail
    [ $ok = 0 ] || t_fail "during the outage (see above)"
    local pushed
    pushed=$(cat "$E2E_TMP/pushed")
    wait_until 60 settled "$pushed" || t_fail "pending rows not flushed: rows $(audit_rows) of $pushed, pending" \
        "$(rc LLEN mutt:audit:pending)"
    assert_eq "$pushed" "$(distinct_rows)" "no row lost or duplicated"
    stop_mutt
}

test_rule_created_by_sql_and_published_applies_within_1s() {
    fresh
    e2e_config "$E2E_TMP/r.conf" POD_NAME=alert-r
    start_mutt "$E2E_TMP/r.conf" alert
    sql "INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling, team_assignment)
         VALUES ('FANFAIL', 'contains', 5, 'Ticket_only', 'Ignore', 'HW')"
    rc PUBLISH mutt:rules:updates alert_rules >/dev/null
    # the 1 s is the promise under test (nothing observable says "reloaded" sooner): the first
    # event sent a second after the PUBLISH must already meet the new rule
    sleep 1
    push_events 1 fan "FANFAIL tray"
    wait_until 10 settled 1 || t_fail "the new rule did not match within 1 s of the PUBLISH"
    assert_contains "$(rc LINDEX mutt:alert_queue 0)" '"team_assignment":"HW"'
    stop_mutt
}

test_sighup_reloads_rules() {
    fresh
    e2e_config "$E2E_TMP/h.conf" POD_NAME=alert-h
    start_mutt "$E2E_TMP/h.conf" alert
    sql "INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling, team_assignment)
         VALUES ('PSU', 'contains', 5, 'Page_only', 'Ignore', 'POWER')"
    kill -HUP "$MUTT_PID"
    wait_until 10 grep -q "rules cache loaded: 2 rules" "$MUTT_LOG" || t_fail "no reload after SIGHUP"
    push_events 1 psu "PSU failed"
    wait_until 10 settled 1 || t_fail "not matched after SIGHUP"
    assert_contains "$(rc LINDEX mutt:alert_queue 0)" '"team_assignment":"POWER"'
    stop_mutt
}

test_get_unhandled_lists_top_templates() {
    fresh
    rc SET mutt:config:unhandled_threshold 3 >/dev/null
    e2e_config "$E2E_TMP/u.conf" POD_NAME=alert-u
    start_mutt "$E2E_TMP/u.conf" alert,web
    push_events 5 un "fan speed 4200 rpm on tray" 1
    wait_until 10 eval '[ "$(rc LLEN mutt:ingest_queue)" = 0 ]' || t_fail "not consumed"
    wait_until 10 eval '[ "$(rc LLEN mutt:alert_queue)" = 1 ]' || t_fail "no meta-alert"
    # one host, one template, 5 events, threshold 3: exactly one meta-alert (>=, then suppressed)
    assert_contains "$(rc LINDEX mutt:alert_queue 0)" '"signature":"mutt-unhandled:host-0"'
    http GET "http://127.0.0.1:$WEB_PORT/api/v1/unhandled"
    assert_status 401
    http GET "http://127.0.0.1:$WEB_PORT/api/v1/unhandled" -H "X-API-KEY: $WEB_KEY"
    assert_status 200
    assert_contains "$HTTP_BODY" '{"unhandled":[{"hostname":"host-0","template":"fan speed <n> rpm on tray <n>","count":5,'
    assert_contains "$HTTP_BODY" '"sample":"fan speed 4200 rpm on tray 0","first_seen":"'
    grep -qi '^x-api-version: 2.0' "$HTTP_HEADERS" || t_fail "no X-API-Version on /unhandled"
    # D22: the alert stage feeds the processing and cache-reload SLOs (flushed once a second)
    slo_total() {
        curl -s -H "X-API-KEY: $WEB_KEY" "http://127.0.0.1:$WEB_PORT/api/v1/slo" |
            jq -r --arg n "$1" '.slos[] | select(.slo_name == $n) | .total'
    }
    wait_until 5 bash -c "[ \"\$(curl -s -H 'X-API-KEY: $WEB_KEY' http://127.0.0.1:$WEB_PORT/api/v1/slo | jq -r '.slos[] | select(.slo_name == \"alerter_processing_success\") | .total')\" -ge 5 ]" ||
        t_fail "alerter_processing_success total: $(slo_total alerter_processing_success)"
    [ "$(slo_total alerter_cache_reload_success)" -ge 1 ] ||
        t_fail "alerter_cache_reload_success total: $(slo_total alerter_cache_reload_success)"
    http GET "http://127.0.0.1:$WEB_PORT/api/v2/unhandled?limit=abc" -H "X-API-KEY: $WEB_KEY"
    assert_status 400
    assert_eq 1 "$(rc LLEN mutt:alert_queue)" "meta-alerts"
    stop_mutt
    # the data lives in Redis: a web-only pod (no alert role) answers the same
    e2e_config "$E2E_TMP/w.conf" POD_NAME=web-only
    start_mutt "$E2E_TMP/w.conf" web
    http GET "http://127.0.0.1:$WEB_PORT/api/v2/unhandled" -H "X-API-KEY: $WEB_KEY"
    assert_status 200
    assert_contains "$HTTP_BODY" '"template":"fan speed <n> rpm on tray <n>","count":5,'
    stop_mutt
}

t_run "kill -9 mid-stream, another pod finishes: exactly once" test_kill9_mid_stream_then_another_pod_finishes_exactly_once
t_run "PostgreSQL down 30 s under load: alerts flow, pending rows flush" test_pg_outage_alerts_keep_flowing_and_pending_rows_flush
t_run "rule by SQL + PUBLISH applies within 1 s" test_rule_created_by_sql_and_published_applies_within_1s
t_run "SIGHUP reloads rules" test_sighup_reloads_rules
t_run "GET /api/v1/unhandled lists top templates (D14)" test_get_unhandled_lists_top_templates
t_summary
