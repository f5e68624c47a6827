#!/usr/bin/env bash
# End-to-end tests of event lineage (D41, D63): one `mutt` with ingest, alert, forward, remediate
# and web against the harness Redis and PostgreSQL and a real webhook sink. Each test sends events
# with its own X-Correlation-ID, then reads their timelines through GET /api/v2/events?correlation_id=
# and GET /api/v1|v2/events/{id} (read-only key): delivery, a retry after one 5xx, the DLQ and back
# by the web replay, by remediation and by `mutt dlq replay`, ignored and unhandled events, 404
# for an unknown id, the TTL on every key, `mutt trace`, and LINEAGE_ENABLED=false writing nothing.
# Needs: Redis + PostgreSQL (services.sh), MUTT_BIN, mutt-sink, curl, jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "jq is required (tests/harness/deps.sh installs it)" >&2; exit 1; }

CONF="$E2E_TMP/mutt.conf"
RO_KEY=e2e-readonly-key-0123456789abcdef0123456789
TTL=3600
e2e_config "$CONF" WEBUI_READONLY_API_KEY=$RO_KEY MOOG_RATE_LIMIT=1000000 MOOG_RETRY_BASE_DELAY=0.05 \
    MOOG_RETRY_MAX_DELAY=0.2 MOOG_MAX_RETRIES=3 CIRCUIT_BREAKER_THRESHOLD=50 REMEDIATION_ENABLED=false \
    REMEDIATION_INTERVAL=1 LINEAGE_TTL_SECONDS=$TTL UNHANDLED_THRESHOLD=1000
API="http://127.0.0.1:$WEB_PORT/api/v1"
API2="http://127.0.0.1:$WEB_PORT/api/v2"
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
set_dyn() {
    if [ -n "$2" ]; then rcli set "mutt:config:$1" "$2" >/dev/null; else rcli del "mutt:config:$1" >/dev/null; fi
    rcli publish mutt:config:updates "$1" >/dev/null
}
sink_ctl() { curl -sf -m 2 -X POST "http://127.0.0.1:$SINK_PORT/control?$1" >/dev/null; }
sink_received() { curl -sf -m 2 "http://127.0.0.1:$SINK_PORT/count" | sed -n 's/.*"received":\([0-9]*\).*/\1/p'; }
jqb() { jq -r "$1" <<<"$HTTP_BODY"; }
_out_eq() { [ "$("${@:2}")" = "$1" ]; }
wait_eq() { local s=$1; shift; wait_until "$s" _out_eq "$@"; }

# send CID MESSAGE [HOST]: one event through POST /api/v2/ingest with that correlation id
send() {
    http POST "http://127.0.0.1:$INGEST_PORT/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" \
        -H 'Content-Type: application/json' -H "X-Correlation-ID: $1" \
        -d "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"${3:-lin-host}\",\"message\":\"$2\",\"syslog_severity\":3}"
    assert_status 200 "ingest of $1"
}
# by_cid CID: GET /events?correlation_id= with the read-only key (sets HTTP_*)
by_cid() { http GET "$API2/events?correlation_id=$1" -H "X-API-KEY: $RO_KEY"; }
# state_of CID: the first event's state (runs in a subshell: call by_cid again to read the body)
state_of() { by_cid "$1" >/dev/null 2>&1; [ "$HTTP_STATUS" = 200 ] && jqb '.events[0].state' || echo "http $HTTP_STATUS"; }
whats() { jqb '[.events[0].timeline[] | .stage + "/" + .what] | join(",")'; }

rcli flushdb >/dev/null
start_sink
start_mutt "$CONF" ingest,alert,forward,remediate,web
wait_until 15 eval 'http GET "$API/rules"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "web routes did not appear within 15 s" >&2; exit 1; }
http POST "$API/rules" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' \
    -d '{"match_string":"LIN-DOWN","prod_handling":"Page_and_ticket","dev_handling":"Ticket_only","team_assignment":"NetOps","priority":5,"reason":"e2e"}'
assert_status 201 "rule LIN-DOWN"
RULE_FWD=$(jqb '.id // .rule.id')
http POST "$API/rules" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' \
    -d '{"match_string":"LIN-QUIET","prod_handling":"Ignore","dev_handling":"Ignore","team_assignment":"Quiet","priority":6,"reason":"e2e"}'
assert_status 201 "rule LIN-QUIET"
sleep 1 # the alert stage reloads its rules on the publish

test_a_delivered_event_has_its_whole_timeline() {
    send lin-deliv-1 "LIN-DOWN port 1"
    wait_eq 15 delivered state_of lin-deliv-1 || { by_cid lin-deliv-1; t_fail "not delivered: $HTTP_BODY"; }
    by_cid lin-deliv-1
    assert_eq "ingest/accepted,alert/handled,forward/delivered" "$(whats)" "timeline"
    assert_eq 1 "$(jqb '.events | length')" "one event"
    assert_eq lin-deliv-1 "$(jqb '.events[0].correlation_id')"
    assert_eq "$(conf_get "$CONF" POD_NAME)" "$(jqb '.events[0].timeline[0].pod')" "accepted: pod"
    assert_eq mutt:ingest_queue "$(jqb '.events[0].timeline[0].queue')" "accepted: queue"
    assert_eq "$RULE_FWD" "$(jqb '.events[0].timeline[1].rule_id')" "decision: rule id"
    assert_eq Page_and_ticket "$(jqb '.events[0].timeline[1].handling')" "decision: handling"
    assert_eq NetOps "$(jqb '.events[0].timeline[1].team')" "decision: team"
    assert_eq 200 "$(jqb '.events[0].timeline[2].status')" "attempt: HTTP status"
    assert_eq 1 "$(jqb '.events[0].timeline[2].attempt')" "attempt number"
    assert_eq number "$(jqb '.events[0].timeline[2].latency_ms | type')" "attempt: latency"
    [[ "$(jqb '.events[0].timeline[0].at')" =~ ^20[0-9-]{8}T[0-9:.]{12}Z$ ]] || t_fail "at: $(jqb '.events[0].timeline[0].at')"
    local id
    id=$(jqb '.events[0].event_id')
    # the same answer by id, on both path prefixes, with the read-only key
    http GET "$API/events/$id" -H "X-API-KEY: $RO_KEY"
    assert_status 200 "GET /api/v1/events/{id}"
    assert_eq "$id" "$(jqb '.events[0].event_id')"
    assert_eq delivered "$(jqb '.events[0].state')"
    http GET "$API2/events/$id" -H "X-API-KEY: $WEB_KEY"
    assert_status 200 "GET /api/v2/events/{id}"
    # one hash per event and the correlation index, both with the TTL
    local t
    t=$(rcli ttl "mutt:lineage:$id")
    [ "$t" -gt $((TTL - 60)) ] && [ "$t" -le "$TTL" ] || t_fail "event hash TTL $t"
    t=$(rcli ttl "mutt:lineage:c:lin-deliv-1")
    [ "$t" -gt $((TTL - 60)) ] && [ "$t" -le "$TTL" ] || t_fail "index TTL $t"
}

test_a_retry_after_one_5xx_shows_both_attempts() {
    local r0
    r0=$(sink_received)
    sink_ctl "status=503"
    send lin-retry-1 "LIN-DOWN port 2"
    wait_until 15 eval '[ "$(sink_received)" -gt "$r0" ]' || t_fail "the sink saw no attempt"
    sink_ctl "status=200"
    wait_eq 15 delivered state_of lin-retry-1 || { by_cid lin-retry-1; t_fail "not delivered after the retry: $HTTP_BODY"; }
    by_cid lin-retry-1
    assert_eq "ingest/accepted,alert/handled,forward/retry,forward/delivered" "$(whats)" "timeline"
    assert_eq 503 "$(jqb '.events[0].timeline[2].status')" "failed attempt's status"
    assert_eq 1 "$(jqb '.events[0].timeline[2].attempt')"
    assert_eq number "$(jqb '.events[0].timeline[2].retry_in_ms | type')" "retry delay"
    assert_eq 2 "$(jqb '.events[0].timeline[3].attempt')" "second attempt delivered"
}

test_into_the_dlq_and_back_by_the_web_replay() {
    sink_ctl "status=400"
    send lin-dlq-1 "LIN-DOWN port 3"
    wait_eq 15 in_dlq state_of lin-dlq-1 || { by_cid lin-dlq-1; t_fail "not in the DLQ: $HTTP_BODY"; }
    by_cid lin-dlq-1
    assert_eq "ingest/accepted,alert/handled,forward/dlq" "$(whats)" "timeline"
    assert_eq 400 "$(jqb '.events[0].timeline[2].status')"
    assert_eq mutt:dlq:moog "$(jqb '.events[0].timeline[2].dlq')"
    assert_contains "$(jqb '.events[0].timeline[2].reason')" "400" "reason"
    sink_ctl "status=200"
    http POST "$API2/dlq/moog/replay" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' \
        -d '{"count":10,"reason":"sink fixed"}'
    assert_status 200 "replay"
    wait_eq 30 delivered state_of lin-dlq-1 || { by_cid lin-dlq-1; t_fail "not delivered after the replay: $HTTP_BODY"; }
    by_cid lin-dlq-1
    assert_eq "ingest/accepted,alert/handled,forward/dlq,remediate/replay,forward/delivered" "$(whats)" "timeline"
    assert_eq web "$(jqb '.events[0].timeline[3].by')"
    assert_eq mutt:alert_queue "$(jqb '.events[0].timeline[3].to')"
}

test_into_the_dlq_and_back_by_remediation() {
    sink_ctl "status=400"
    send lin-dlq-2 "LIN-DOWN port 4"
    wait_eq 15 in_dlq state_of lin-dlq-2 || { by_cid lin-dlq-2; t_fail "not in the DLQ: $HTTP_BODY"; }
    by_cid lin-dlq-2
    sink_ctl "status=200"
    set_dyn remediation_enabled true
    wait_eq 20 delivered state_of lin-dlq-2 || { by_cid lin-dlq-2; t_fail "not delivered after remediation: $HTTP_BODY"; }
    by_cid lin-dlq-2
    set_dyn remediation_enabled false
    assert_eq "ingest/accepted,alert/handled,forward/dlq,remediate/replay,forward/delivered" "$(whats)" "timeline"
    assert_eq remediate "$(jqb '.events[0].timeline[3].by')"
    assert_eq mutt:dlq:moog "$(jqb '.events[0].timeline[3].from')"
}

test_into_the_dlq_and_back_by_mutt_dlq_replay() {
    sink_ctl "status=400"
    send lin-dlq-3 "LIN-DOWN port 5"
    wait_eq 15 in_dlq state_of lin-dlq-3 || { by_cid lin-dlq-3; t_fail "not in the DLQ: $HTTP_BODY"; }
    sink_ctl "status=200"
    local out rc=0
    out=$("$MUTT_BIN" --config "$CONF" dlq replay moog 2>&1) || rc=$?
    assert_eq 0 "$rc" "mutt dlq replay: $out"
    wait_eq 30 delivered state_of lin-dlq-3 || { by_cid lin-dlq-3; t_fail "not delivered after the CLI replay: $HTTP_BODY"; }
    by_cid lin-dlq-3
    assert_eq "ingest/accepted,alert/handled,forward/dlq,remediate/replay,forward/delivered" "$(whats)" "timeline"
    assert_eq cli "$(jqb '.events[0].timeline[3].by')"
}

test_ignored_and_unhandled_events_end_there() {
    send lin-quiet-1 "LIN-QUIET nothing to see"
    wait_eq 15 ignored state_of lin-quiet-1 || { by_cid lin-quiet-1; t_fail "not ignored: $HTTP_BODY"; }
    by_cid lin-quiet-1
    assert_eq "ingest/accepted,alert/handled" "$(whats)"
    assert_eq false "$(jqb '.events[0].timeline[1].forwarded')"
    assert_eq Ignore "$(jqb '.events[0].timeline[1].handling')"
    send lin-none-1 "no rule matches this text"
    wait_eq 15 unhandled state_of lin-none-1 || { by_cid lin-none-1; t_fail "not unhandled: $HTTP_BODY"; }
    by_cid lin-none-1
    assert_eq "ingest/accepted,alert/unhandled" "$(whats)"
}

test_a_batch_shares_its_correlation_id() {
    http POST "http://127.0.0.1:$INGEST_PORT/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" \
        -H 'Content-Type: application/json' -H "X-Correlation-ID: lin-batch-1" \
        -d '[{"timestamp":"2026-01-01T00:00:00Z","hostname":"b1","message":"LIN-QUIET a"},
             {"timestamp":"2026-01-01T00:00:00Z","hostname":"b2","message":"LIN-QUIET b"}]'
    assert_status 200
    wait_until 15 eval 'by_cid lin-batch-1; [ "$(jqb "[.events[].state] | join(\",\")" 2>/dev/null)" = "ignored,ignored" ]' ||
        t_fail "batch: $HTTP_BODY"
    assert_eq 2 "$(jqb '[.events[].event_id] | unique | length')" "two distinct events"
}

test_unknown_ids_are_404() {
    http GET "$API2/events/00000000-0000-4000-8000-000000000000" -H "X-API-KEY: $RO_KEY"
    assert_status 404
    assert_eq "unknown or expired event" "$(jqb .error)"
    assert_eq true "$(jqb 'has("correlation_id")')" "D18 body"
    # the key of a correlation index is not an event's hash
    http GET "$API2/events/c:lin-deliv-1" -H "X-API-KEY: $RO_KEY"
    assert_status 404 "an index key read as an event"
    by_cid no-such-correlation-id
    assert_status 404
    assert_eq "unknown or expired event" "$(jqb .error)"
    http GET "$API2/events" -H "X-API-KEY: $RO_KEY"
    assert_status 400 "no correlation_id"
    assert_eq correlation_id "$(jqb .field)"
    http GET "$API2/events/x" 
    assert_status 401 "a key is needed"
}

test_mutt_trace_prints_the_timeline() {
    local out rc=0 id
    by_cid lin-deliv-1
    id=$(jqb '.events[0].event_id')
    out=$("$MUTT_BIN" --config "$CONF" trace "$id" 2>&1) || rc=$?
    assert_eq 0 "$rc" "mutt trace exit status: $out"
    assert_contains "$out" "$id"
    assert_contains "$out" "delivered"
    assert_contains "$out" "ingest"
    assert_contains "$out" "accepted"
    assert_contains "$out" "handled"
    out=$("$MUTT_BIN" --config "$CONF" trace lin-retry-1 2>&1) || rc=$?
    assert_eq 0 "$rc" "by correlation id: $out"
    assert_contains "$out" "retry"
    rc=0
    out=$("$MUTT_BIN" --config "$CONF" trace no-such-id 2>&1) || rc=$?
    assert_eq 1 "$rc" "unknown id exit status: $out"
    assert_contains "$out" "unknown or expired event"
}

test_lineage_disabled_writes_nothing() {
    stop_mutt
    local conf2="$E2E_TMP/off.conf" before after
    cp "$CONF" "$conf2"
    echo "LINEAGE_ENABLED=false" >>"$conf2"
    start_mutt "$conf2" ingest,alert,forward,web
    before=$(rcli --scan --pattern 'mutt:lineage:*' | wc -l)
    local r0
    r0=$(sink_received)
    send lin-off-1 "LIN-DOWN port 9"
    wait_until 15 eval '[ "$(sink_received)" -gt "$r0" ]' || t_fail "not delivered"
    sleep 0.5
    after=$(rcli --scan --pattern 'mutt:lineage:*' | wc -l)
    assert_eq "$before" "$after" "no lineage key written"
    by_cid lin-off-1
    assert_status 404
    stop_mutt
}

t_run "a delivered event has its whole timeline" test_a_delivered_event_has_its_whole_timeline
t_run "a retry after one 5xx shows both attempts" test_a_retry_after_one_5xx_shows_both_attempts
t_run "into the DLQ and back by the web replay" test_into_the_dlq_and_back_by_the_web_replay
t_run "into the DLQ and back by remediation" test_into_the_dlq_and_back_by_remediation
t_run "into the DLQ and back by mutt dlq replay" test_into_the_dlq_and_back_by_mutt_dlq_replay
t_run "ignored and unhandled events end there" test_ignored_and_unhandled_events_end_there
t_run "a batch shares its correlation id" test_a_batch_shares_its_correlation_id
t_run "unknown ids are 404" test_unknown_ids_are_404
t_run "mutt trace prints the timeline" test_mutt_trace_prints_the_timeline
t_run "LINEAGE_ENABLED=false writes nothing" test_lineage_disabled_writes_nothing
t_summary
