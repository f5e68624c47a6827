#!/usr/bin/env bash
# End-to-end tests of the forward and remediate roles (CONTRACT §5, §6, D4 D5 D15 D33; W13-W19):
# `mutt --roles=forward,remediate` against the harness Redis and a real webhook sink
# (tests/harness/sink.c). Alerts are LPUSHed straight onto mutt:alert_queue. Covers the payload
# and headers at the sink, 2xx = delivered, 500 then 200 delivers once, 400 -> DLQ with its
# reason, 429 + Retry-After honoured, retries exhausted -> DLQ after 1 + MOOG_MAX_RETRIES
# attempts, the sink down under load (breaker opens, consumption stops, nothing in the DLQ, each
# alert delivered exactly once after recovery), the shared rate limit across two pods, kill -9
# mid-flight (janitor redelivers, at most in-flight duplicates), and remediation (stale list
# recovered at start, replay paused while the destination is unhealthy, DLQ items replayed,
# poison items to mutt:dlq:dead). Needs: Redis (services.sh), MUTT_BIN, MUTT_SINK_BIN.
# FWD_OUTAGE_S (default 60) sets how long the sink stays down in the breaker test.
. "$(dirname "$0")/lib.sh"

OUTAGE_S=${FWD_OUTAGE_S:-60}
CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF" MOOG_RATE_LIMIT=1000000 MOOG_RETRY_BASE_DELAY=0.05 MOOG_RETRY_MAX_DELAY=0.2 \
    CIRCUIT_BREAKER_THRESHOLD=5 CIRCUIT_BREAKER_TIMEOUT=2 HEARTBEAT_EXPIRY=3 JANITOR_INTERVAL=1 \
    REMEDIATION_ENABLED=false REMEDIATION_INTERVAL=1 MOOG_TIMEOUT=5
POD=$(conf_get "$CONF" POD_NAME)
AQ=mutt:alert_queue
DLQ=mutt:dlq:moog
RETRY=mutt:retry:moog
BRK=mutt:circuit_breaker:moogsoft

rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
set_dyn() { # set_dyn KEY VALUE|"" : writes (or deletes) mutt:config:KEY and announces it
    if [ -n "$2" ]; then rcli set "mutt:config:$1" "$2" >/dev/null; else rcli del "mutt:config:$1" >/dev/null; fi
    rcli publish mutt:config:updates "$1" >/dev/null
}
sink_ctl() { curl -sf -m 2 -X POST "http://127.0.0.1:$SINK_PORT/control?$1" >/dev/null; }
sink_received() { curl -sf -m 2 "http://127.0.0.1:$SINK_PORT/count" | sed -n 's/.*"received":\([0-9]*\).*/\1/p'; }
# Deliveries (2xx answers) recorded by the sink whose external_id starts with $1: all / distinct.
sink_ids() { grep -o "\"external_id\":\"$1[^\"]*\"" "$SINK_OUT" 2>/dev/null || true; }
delivered() { sink_ids "$1" | wc -l; }
# Receive times (epoch ms, mutt-sink --stamp) of the deliveries whose external_id starts with $1, sorted.
sink_stamps() { grep "\"external_id\":\"$1" "$SINK_OUT" 2>/dev/null | cut -d' ' -f1 | cut -d. -f1 | sort -n; }
delivered_unique() { sink_ids "$1" | sort -u | wc -l; }
metric() { # metric 'name{labels}' [PORT] -> value (0 when absent)
    curl -s -m 5 "http://127.0.0.1:${2:-$HEALTH_PORT}/metrics" |
        awk -v k="$1" '$1 == k {printf "%d", $2; f=1} END {if (!f) print 0}'
}
# alert ID [EXTRA FIELDS]: one alert-queue item as the alert stage writes it (D15).
alert() {
    printf '{"hostname":"host-%s","signature":"host-%s","source_hostname":"host-%s","team_assignment":"netops",' "$1" "$1" "$1"
    printf '"severity":"Critical","message_body":"link down %s","raw_json":{"message":"link down"},' "$1"
    printf '"handling_decision":"Page_only","rule_id":7,"environment":"prod","_correlation_id":"cid-%s",' "$1"
    printf '"_event_id":"%s"%s}' "$1" "${2:+,$2}"
}
push() { rcli lpush "$AQ" "$(alert "$@")" >/dev/null; }
# push_many PREFIX N: N alerts PREFIX-1..PREFIX-N in one pipe.
push_many() {
    local i
    for i in $(seq 1 "$2"); do printf "LPUSH %s '%s'\n" "$AQ" "$(alert "$1-$i")"; done | rcli >/dev/null
}
clean() {
    rcli del "$AQ" "$DLQ" "$RETRY" mutt:dlq:alerter mutt:dlq:dead mutt:ingest_queue mutt:ingest_queue:bytes \
        "$BRK:state" "$BRK:failures" "$BRK:open_time" "$BRK:probe" mutt:rate_limit:moog >/dev/null
    sink_ctl "status=200&delay_ms=0&retry_after=0&reset=1"
}
queues_empty() {
    [ "$(rcli llen "$AQ")" = 0 ] && [ "$(rcli zcard "$RETRY")" = 0 ] &&
        [ "$(rcli llen "mutt:processing:moog:$POD")" = 0 ]
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_eq SECONDS WANT CMD... / wait_ge: polls until CMD's output equals / reaches WANT (CMD runs
# again at every poll: `wait_until N test "$(cmd)" = x` would expand it only once)
_out_eq() { [ "$("${@:2}")" = "$1" ]; }
_out_ge() { local v; v=$("${@:2}"); [ -n "$v" ] && [ "$v" -ge "$1" ]; }
wait_eq() { local s=$1; shift; wait_until "$s" _out_eq "$@"; }
wait_ge() { local s=$1; shift; wait_until "$s" _out_ge "$@"; }
# fence NAME: pushes a marker alert behind everything else and waits until the sink has it. Checks
# that "nothing more happens" (no second delivery, no retry) come after a fence instead of a
# fixed sleep: by then the stage has taken and finished later work. The sink must answer 2xx.
fence() {
    push "fence-$1"
    wait_for 20 "fence alert fence-$1 at the sink" _out_eq 1 delivered "fence-$1"
}
# the forward stage's own view of the breaker (the gauge is written only by that view)
breaker_gauge() { metric 'mutt_circuit_breaker_state{name="moogsoft"}'; }

# A stale remediate processing list (a crashed predecessor of this pod) is in place before start.
rcli lpush "mutt:processing:remediate:$POD" \
    '{"hostname":"stale","_event_id":"stale-1","_origin":"alert","_dlq_reason":"http_500"}' >/dev/null
start_sink --stamp # each delivered line starts with its receive time (ms): the rate test reads it
start_mutt "$CONF" forward,remediate

# ---------------------------------------------------------------------------------- delivery
test_payload_fields_and_headers_at_the_sink() {
    clean
    push pay-1 '"api_key":"legacy-secret"'
    wait_eq 10 1 delivered pay-1 || t_fail "not delivered"
    http GET "http://127.0.0.1:$SINK_PORT/last"
    local b auth ctype
    b=$HTTP_BODY
    auth=$(grep -i '^x-last-authorization:' "$HTTP_HEADERS" | cut -d: -f2- | sed 's/^ *//' | tr -d '\r')
    ctype=$(grep -i '^x-last-content-type:' "$HTTP_HEADERS" | cut -d: -f2- | tr -d ' \r')
    assert_eq "Bearer e2e-moog-key" "$auth" "Authorization header"
    assert_eq "application/json" "$ctype" "Content-Type"
    for kv in '"signature":"host-pay-1"' '"source_id":"host-pay-1"' '"external_id":"pay-1"' '"manager":"MUTT"' \
        '"source":"host-pay-1"' '"class":"netops"' '"type":"Alert"' '"severity":5' \
        '"description":"link down pay-1"' '"agent_location":"Alerter Service"' '"rule_id":7' \
        '"handling_decision":"Page_only"' '"environment":"prod"' '"correlation_id":"cid-pay-1"' \
        '"event_id":"pay-1"' '"raw_event":{"message":"link down"}' '"agent":"MUTT '; do
        assert_contains "$b" "$kv" "payload field"
    done
    assert_contains "$b" '"agent_time":' "payload field"
    assert_not_contains "$b" "legacy-secret" "D33: api_key never forwarded"
    assert_not_contains "$b" "api_key" "D33: api_key never forwarded"
    wait_until 5 queues_empty || t_fail "item left behind"
    assert_eq 0 "$(rcli llen "$DLQ")" "DLQ"
}

test_legacy_item_without_event_id_gets_one() {
    clean
    rcli lpush "$AQ" '{"hostname":"legacy-host","message_body":"old","team_assignment":"t","severity":"Major","api_key":"k","_correlation_id":"legacy-cid"}' >/dev/null
    wait_eq 10 1 sink_received || t_fail "not delivered"
    http GET "http://127.0.0.1:$SINK_PORT/last"
    [[ "$HTTP_BODY" =~ \"external_id\":\"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\" ]] ||
        t_fail "external_id is not a generated UUIDv4: $HTTP_BODY"
    assert_contains "$HTTP_BODY" '"signature":"legacy-host"' "signature falls back to hostname"
    assert_contains "$HTTP_BODY" '"severity":4' "Major -> 4"
    assert_not_contains "$HTTP_BODY" '"api_key"' "D33"
}

test_202_and_204_count_as_delivered() {
    clean
    local before
    before=$(metric 'mutt_moog_alerts_processed_total{status="success"}')
    sink_ctl "status=202"
    push acc-202
    wait_eq 10 1 delivered acc-202 || t_fail "202 not delivered"
    sink_ctl "status=204"
    push acc-204
    wait_eq 10 1 delivered acc-204 || t_fail "204 not delivered"
    wait_until 5 queues_empty || t_fail "item left behind"
    wait_eq 5 $((before + 2)) metric 'mutt_moog_alerts_processed_total{status="success"}' ||
        t_fail "success metric"
    assert_eq 2 "$(sink_received)" "exactly one attempt each"
    assert_eq 0 "$(rcli llen "$DLQ")" "DLQ"
}

test_500_then_200_delivers_once() {
    clean
    sink_ctl "status=500"
    push five-1
    wait_ge 10 1 sink_received || t_fail "no attempt"
    sink_ctl "status=200"
    wait_eq 10 1 delivered five-1 || t_fail "not delivered after the 500"
    wait_until 5 queues_empty || t_fail "item left behind"
    fence five
    assert_eq 1 "$(delivered five-1)" "delivered once"
    assert_eq 0 "$(rcli llen "$DLQ")" "DLQ"
    [ "$(metric 'mutt_moog_requests_total{status="fail",reason="http"}')" -ge 1 ] || t_fail "fail metric"
}

test_400_goes_to_the_dlq_with_its_reason() {
    clean
    sink_ctl "status=400"
    push bad-1
    wait_eq 10 1 rcli llen "$DLQ" || t_fail "not in the DLQ"
    local item
    item=$(rcli lindex "$DLQ" 0)
    assert_contains "$item" '"_dlq_reason":"http_400"' "reason"
    assert_contains "$item" '"_origin":"alert"' "D5 origin"
    assert_contains "$item" '"_event_id":"bad-1"' "the alert itself"
    [[ "$item" =~ \"_failed_at\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\" ]] ||
        t_fail "_failed_at not ISO 8601: $item"
    sink_ctl "status=200" # a retry of bad-1 would now be delivered, and visible
    fence bad
    assert_eq 2 "$(sink_received)" "a 4xx is not retried (its one attempt, then the fence)"
    assert_eq 0 "$(delivered bad-1)" "a 4xx is not retried"
    wait_until 5 queues_empty || t_fail "item left behind"
}

test_429_with_retry_after_is_retried_after_2s() {
    clean
    sink_ctl "status=429&retry_after=2"
    push ra-1
    wait_ge 10 1 sink_received || t_fail "no attempt"
    local t0 member score
    t0=$(now_ms)
    sink_ctl "status=200&retry_after=0"
    wait_eq 2 1 rcli zcard "$RETRY" || t_fail "not in the retry set"
    member=$(rcli zrange "$RETRY" 0 0)
    score=$(rcli zscore "$RETRY" "$member")
    [[ "$member" =~ ^[0-9a-f-]{36}\|\{ ]] || t_fail "member is not <uuid>|<json>: $member"
    assert_contains "$member" '"_moog_retry_count":1' "retry counter"
    # due = attempt + 2000 ms, and the attempt happened before t0
    [ $((${score%.*} - t0)) -ge 1800 ] || t_fail "due in $((${score%.*} - t0)) ms, Retry-After asked for 2 s"
    # nothing is attempted again before the 2 s are over (t0 >= attempt time)
    # the 2 s wait is what is under test: poll through it for an early retry
    while [ $(($(now_ms) - t0)) -lt 1850 ]; do
        [ "$(delivered ra-1)" = 0 ] || t_fail "retried after $(($(now_ms) - t0)) ms"
        sleep 0.05
    done
    wait_eq 5 1 delivered ra-1 || t_fail "not delivered after Retry-After"
    [ "$(metric 'mutt_moog_requests_total{status="fail",reason="rate_limit"}')" -ge 1 ] || t_fail "429 metric"
}

test_retries_exhausted_go_to_the_dlq_after_six_attempts() {
    clean
    set_dyn circuit_breaker_threshold 1000 # keep the breaker out of this one
    sink_ctl "status=503"
    push ex-1
    wait_eq 15 1 rcli llen "$DLQ" || t_fail "not in the DLQ"
    assert_eq 6 "$(sink_received)" "1 attempt + MOOG_MAX_RETRIES (5) retries"
    assert_contains "$(rcli lindex "$DLQ" 0)" 'retries exhausted' "reason"
    [ "$(metric 'mutt_moog_requests_total{status="fail",reason="retry_exhausted"}')" -ge 1 ] || t_fail "metric"
    set_dyn circuit_breaker_threshold ""
    rcli del "$BRK:failures" >/dev/null
}

# ------------------------------------------------------------------------------- the breaker
breaker_state() { rcli get "$BRK:state"; }

test_sink_down_under_load_opens_the_breaker_and_loses_nothing() {
    clean
    local n=300 q1 q2 t
    stop_sink
    push_many down "$n"
    wait_eq 15 OPEN breaker_state || t_fail "breaker did not open (state $(breaker_state))"
    http GET "http://127.0.0.1:$HEALTH_PORT/health"
    assert_status 200 "an OPEN breaker is degraded, not down (D17)"
    assert_contains "$HTTP_BODY" '"forward":"degraded"' "/health role"
    assert_contains "$HTTP_BODY" 'circuit breaker moogsoft' "/health details"
    assert_eq 2 "$(metric 'mutt_circuit_breaker_state{name="moogsoft"}')" "state gauge"
    [ "$(metric 'mutt_circuit_breaker_state_changes_total{name="moogsoft",from_state="CLOSED",to_state="OPEN"}')" -ge 1 ] ||
        t_fail "transition counter"
    grep -q 'CLOSED -> OPEN' "$MUTT_LOG" || t_fail "no operational log line"
    # consumption stops: the queue keeps (almost) everything; only one probe per 2 s is taken
    q1=$(rcli llen "$AQ")
    [ "$q1" -ge $((n - 40)) ] || t_fail "only $q1 of $n alerts still queued after the breaker opened"
    # the outage's length is what is under test: poll the DLQ through all of it
    t=0
    while [ $t -lt "$OUTAGE_S" ]; do
        sleep 1
        t=$((t + 1))
        [ "$(rcli llen "$DLQ")" = 0 ] || t_fail "an alert reached the DLQ while the sink was down"
    done
    q2=$(( $(rcli llen "$AQ") + $(rcli zcard "$RETRY") ))
    [ "$q2" -ge $((n - 40)) ] || t_fail "alerts were consumed while OPEN: $q2 left of $n"
    start_sink --stamp # same port, same output file
    wait_eq 60 "$n" delivered_unique down- ||
        t_fail "only $(delivered_unique down-) of $n delivered after recovery"
    wait_until 10 queues_empty || t_fail "items left behind"
    fence down
    assert_eq "$n" "$(delivered down-)" "each alert delivered exactly once"
    assert_eq 0 "$(rcli llen "$DLQ")" "nothing in the DLQ"
    wait_eq 5 CLOSED breaker_state || t_fail "breaker not closed"
    http GET "http://127.0.0.1:$HEALTH_PORT/health"
    assert_contains "$HTTP_BODY" '"forward":"ok"' "/health after recovery"
}

# ---------------------------------------------------------------------------- the rate limit
test_rate_limit_is_shared_by_two_pods() {
    clean
    local conf2="$E2E_TMP/mutt2.conf" port2 n=600 t1 t2 rate1000 log1=$MUTT_LOG fence_val
    port2=$(free_port)
    sed -e "s/^POD_NAME=.*/POD_NAME=$POD-b/" -e "s/^HEALTH_PORT=.*/HEALTH_PORT=$port2/" "$CONF" >"$conf2"
    start_mutt "$conf2" forward # MUTT_PID is the second pod inside this test's subshell only
    set_dyn moog_rate_limit 50
    # Both pods must run with the new limit before the load starts. A reload reads every key at
    # once, so a reload that sees a later, refused value also saw the limit: each pod logs the
    # refusal. Announced again at each poll, in case the new pod subscribed after the first one.
    fence_val="fence-$RANDOM"
    rcli set mutt:config:circuit_breaker_threshold "$fence_val" >/dev/null
    both_reloaded() {
        rcli publish mutt:config:updates circuit_breaker_threshold >/dev/null
        grep -q 'ignoring mutt:config:circuit_breaker_threshold' "$log1" &&
            grep -q 'ignoring mutt:config:circuit_breaker_threshold' "$MUTT_LOG"
    }
    wait_for 20 "both pods to reload the dynamic config (refusal of $fence_val logged by each)" both_reloaded
    set_dyn circuit_breaker_threshold ""
    push_many rate "$n"
    wait_ge 10 50 delivered rate- || t_fail "first window not delivered"
    wait_ge 30 "$n" delivered rate- || t_fail "only $(delivered rate-) of $n delivered"
    # the sink's receive times of the 50th and the last delivery (lines are in arrival order),
    # not the times this script's polls noticed them: a loaded machine delays the polls
    t1=$(grep '"external_id":"rate-' "$SINK_OUT" | sed -n '50s/^\([0-9]*\)\..*/\1/p')
    t2=$(grep '"external_id":"rate-' "$SINK_OUT" | sed -n "${n}s/^\\([0-9]*\\)\\..*/\\1/p")
    [ -n "$t1" ] && [ -n "$t2" ] || t_fail "no receive times in the sink output"
    # after the first full window, the remaining 550 need 11 windows of 1 s: 50/s +-10 %
    rate1000=$(( (n - 50) * 1000 * 1000 / (t2 - t1) ))
    e2e_log "rate: $((n - 50)) alerts in $((t2 - t1)) ms = $((rate1000 / 1000)).$((rate1000 % 1000 / 100))/s"
    [ "$rate1000" -ge 45000 ] && [ "$rate1000" -le 55000 ] || t_fail "rate $((rate1000 / 1000))/s, want 50 +- 10 %"
    [ "$(metric 'mutt_moog_alerts_processed_total{status="success"}' "$port2")" -gt 0 ] ||
        t_fail "the second pod delivered nothing"
    [ "$(metric 'mutt_moog_rate_limit_hits_total')" -gt 0 ] || t_fail "no limiter denial counted"
    assert_eq "$n" "$(delivered_unique rate-)" "each once"
    assert_eq 0 "$(rcli llen "$DLQ")" "denied alerts wait, never dropped (W13)"
    set_dyn moog_rate_limit ""
    stop_mutt
}

# ----------------------------------------------------------------------------------- crashes
test_kill9_mid_flight_janitor_redelivers() {
    clean
    local conf3="$E2E_TMP/mutt3.conf" port3 n=100 dups inflight
    sink_ctl "delay_ms=3000"
    port3=$(free_port)
    sed -e "s/^POD_NAME=.*/POD_NAME=$POD-k/" -e "s/^HEALTH_PORT=.*/HEALTH_PORT=$port3/" "$CONF" >"$conf3"
    start_mutt "$conf3" forward
    local victim=$MUTT_PID
    # the main pod is stopped for this test: the victim is alone on the queue
    push_many kill "$n"
    wait_ge 10 1 rcli llen "mutt:processing:moog:$POD-k" || t_fail "victim took nothing"
    wait_ge 10 1 sink_received || t_fail "nothing in flight"
    inflight=$(rcli llen "mutt:processing:moog:$POD-k")
    helper_signal KILL "$victim"
    e2e_log "killed $victim with $inflight alerts in its processing list"
    sink_ctl "delay_ms=0"
    # another pod takes over: once the victim's heartbeat expires (3 s) its janitor (every 1 s)
    # returns the victim's list to the queue
    start_mutt "$CONF" forward
    wait_eq 30 0 rcli llen "mutt:processing:moog:$POD-k" || t_fail "the dead pod's list was not recovered"
    wait_eq 60 "$n" delivered_unique kill- ||
        t_fail "only $(delivered_unique kill-) of $n delivered; victim list $(rcli llen "mutt:processing:moog:$POD-k")"
    wait_until 10 queues_empty || t_fail "items left behind"
    fence kill
    dups=$(( $(delivered kill-) - n ))
    e2e_log "duplicates after kill -9: $dups (in flight at the kill: <= $inflight)"
    [ "$dups" -le "$inflight" ] || t_fail "$dups duplicates, more than the $inflight in flight"
    stop_mutt
}

# ------------------------------------------------------------------------------- remediation
test_remediate_returns_a_stale_processing_list_at_start() {
    wait_eq 10 0 rcli llen "mutt:processing:remediate:$POD" || t_fail "stale list not recovered"
    # it went back to the moog DLQ (its _origin) and, remediation being off, stayed there
    assert_contains "$(rcli lrange "$DLQ" 0 -1)" '"_event_id":"stale-1"' "recovered into its DLQ"
    grep -q "returned 1 item(s) left in mutt:processing:remediate:$POD" "$MUTT_LOG" || t_fail "no recovery logged"
}

test_remediation_waits_while_the_destination_is_unhealthy() {
    clean
    rcli set "$BRK:state" OPEN >/dev/null
    rcli set "$BRK:open_time" "$(( $(now_ms) + 600000 ))" >/dev/null # no probe during this test
    rcli lpush "$DLQ" '{"hostname":"h","_event_id":"unh-1","_dlq_reason":"http_500","_origin":"alert"}' >/dev/null
    set_dyn remediation_enabled true
    wait_ge 10 2 metric mutt_remediation_loops_total || t_fail "no remediation pass"
    assert_eq 1 "$(rcli llen "$DLQ")" "no replay while the breaker is OPEN (no MOOG_HEALTH_URL)"
    assert_eq 0 "$(metric mutt_remediation_moog_health)" "health gauge"
    assert_eq 0 "$(sink_received)" "W19: no fake event sent"
    set_dyn remediation_enabled false
    rcli del "$BRK:state" "$BRK:open_time" >/dev/null
}

test_remediation_replays_dlq_items_and_parks_poison() {
    clean
    # the previous test forced the breaker OPEN in Redis; the forward stage sees it CLOSED again
    # at its next 1 s poll
    wait_for 15 "the forward stage's breaker view CLOSED (gauge 0)" _out_eq 0 breaker_gauge
    rcli lpush "$DLQ" '{"hostname":"h","_event_id":"rem-a","_dlq_reason":"http_500","_failed_at":"2026-01-01T00:00:00.000Z","_origin":"alert","_moog_retry_count":6}' >/dev/null
    rcli lpush "$DLQ" '{"hostname":"h","_event_id":"rem-p","_dlq_reason":"http_500","_origin":"alert","_replay_count":3}' >/dev/null
    rcli lpush mutt:dlq:alerter '{"hostname":"h","message":"m","timestamp":"2026-01-01T00:00:00Z","_event_id":"rem-b","_retry_count":4,"_dlq_reason":"x"}' >/dev/null
    rcli lpush mutt:dlq:alerter '{"hostname":"h","message":"m","_event_id":"rem-q","_replay_count":5}' >/dev/null
    rcli lpush mutt:dlq:alerter 'not json at all' >/dev/null
    local poison0 success0
    poison0=$(metric mutt_remediation_poison_messages_total)
    success0=$(metric mutt_remediation_replay_success_total)
    set_dyn remediation_enabled true
    wait_eq 15 1 delivered rem-a || t_fail "moog DLQ item not replayed and delivered"
    wait_eq 5 3 rcli llen mutt:dlq:dead || t_fail "dead list: $(rcli lrange mutt:dlq:dead 0 -1)"
    assert_eq 0 "$(rcli llen "$DLQ")" "moog DLQ drained"
    assert_eq 0 "$(rcli llen mutt:dlq:alerter)" "alerter DLQ drained"
    assert_eq 1 "$(rcli llen mutt:ingest_queue)" "alerter item replayed to the ingest queue"
    assert_eq "$(rcli eval "local s = 0 for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do s = s + #v end return s" 1 mutt:ingest_queue)" "$(rcli get mutt:ingest_queue:bytes)" "D52: the replay counted its bytes"
    local b dead
    b=$(rcli lindex mutt:ingest_queue 0)
    assert_contains "$b" '"_event_id":"rem-b"' "replayed item"
    assert_contains "$b" '"_replay_count":1' "_replay_count"
    assert_not_contains "$b" '_retry_count' "fresh attempts"
    assert_not_contains "$b" '_dlq_reason' "fresh attempts"
    dead=$(rcli lrange mutt:dlq:dead 0 -1)
    assert_contains "$dead" '"_event_id":"rem-p"' "poison moog item"
    assert_contains "$dead" '"_event_id":"rem-q"' "poison alerter item"
    assert_contains "$dead" '"_origin":"ingest"' "D5 origin set for the alerter item"
    assert_contains "$dead" 'not json at all' "unparseable item parked, not dropped"
    assert_contains "$dead" '_dead_reason' "reason"
    assert_eq 0 "$(rcli llen "mutt:processing:remediate:$POD")" "nothing left in the remediate list"
    [ "$(metric mutt_remediation_poison_messages_total)" -ge $((poison0 + 3)) ] || t_fail "poison metric"
    [ "$(metric mutt_remediation_replay_success_total)" -ge $((success0 + 2)) ] || t_fail "success metric"
    assert_eq 1 "$(metric mutt_remediation_moog_health)" "health gauge"
    set_dyn remediation_enabled false
}

t_run "stale remediate list is recovered at start" test_remediate_returns_a_stale_processing_list_at_start
t_run "payload fields and headers at the sink" test_payload_fields_and_headers_at_the_sink
t_run "legacy item without _event_id gets one (D33)" test_legacy_item_without_event_id_gets_one
t_run "202 and 204 count as delivered" test_202_and_204_count_as_delivered
t_run "500 then 200 delivers once" test_500_then_200_delivers_once
t_run "400 goes to the DLQ with its reason" test_400_goes_to_the_dlq_with_its_reason
t_run "429 with Retry-After: 2 is retried after >= 2 s" test_429_with_retry_after_is_retried_after_2s
t_run "retries exhausted: DLQ after 6 attempts" test_retries_exhausted_go_to_the_dlq_after_six_attempts
t_run "sink down under load: breaker opens, nothing lost" test_sink_down_under_load_opens_the_breaker_and_loses_nothing
t_run "rate limit shared by two pods within 10 %" test_rate_limit_is_shared_by_two_pods
t_run "remediation waits while the destination is unhealthy" test_remediation_waits_while_the_destination_is_unhealthy
t_run "remediation replays DLQ items, poison to mutt:dlq:dead" test_remediation_replays_dlq_items_and_parks_poison
stop_mutt
t_run "kill -9 mid-flight: janitor redelivers" test_kill9_mid_flight_janitor_redelivers
t_summary
