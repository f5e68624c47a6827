#!/usr/bin/env bash
# End-to-end test of the SLO counters (D22): `mutt --roles=ingest,web` counts every ingest
# request that passed auth into mutt:slo:<name>:<minute> (flushed once a second), and GET
# /api/v1/slo (web key) reads them back; a request refused 401 counts nowhere; the counts of
# the last second before SIGTERM reach Redis. Needs: Redis + PostgreSQL (services.sh, web role),
# MUTT_BIN, redis-cli, jq. Run through tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF"
INGEST_URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
SLO_URL="http://127.0.0.1:$WEB_PORT/api/v1/slo"
EV='{"timestamp":"2026-01-01T00:00:00Z","hostname":"e2e-slo","message":"slo event","syslog_severity":6}'
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }

post_events() { # post_events N [KEY]: N single-event requests; each must get 200 (or 401 with a bad key)
    local n=$1 key=${2:-$INGEST_KEY} want=200 i
    [ "$key" = "$INGEST_KEY" ] || want=401
    for i in $(seq 1 "$n"); do
        http POST "$INGEST_URL" -H "X-API-KEY: $key" -H 'Content-Type: application/json' --data-binary "$EV"
        assert_status "$want" "ingest request $i"
    done
}

# slo_field NAME FIELD: FIELD of the SLO NAME in GET /api/v1/slo (empty when absent).
slo_field() {
    http GET "$SLO_URL" -H "X-API-KEY: $WEB_KEY"
    [ "$HTTP_STATUS" = 200 ] || return 1
    echo "$HTTP_BODY" | jq -r --arg n "$1" --arg f "$2" '.slos[] | select(.slo_name == $n) | .[$f]'
}
total_at_least() { local t; t=$(slo_field ingestor_availability total) && [ "${t:-0}" -ge "$1" ]; }

# Sum of FIELD over this minute's and the previous minute's key of SLO NAME (straight from Redis).
redis_sum() {
    local name=$1 field=$2 now m sum=0 v
    now=$(date -u +%s)
    for m in $((now - 60)) "$now"; do
        v=$(rcli hget "mutt:slo:$name:$(date -u -d "@$m" +%Y-%m-%dT%H:%M)" "$field")
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

start_mutt "$CONF" ingest,web
wait_until 15 eval 'http POST "$INGEST_URL" -H "Content-Type: application/json" -d "{}"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "ingest route did not appear within 15 s" >&2; exit 1; }
# The SLO accumulator is empty (mutt_slo_pending_minutes counts minutes recorded and not yet
# acknowledged by Redis): the baseline below sees every count made so far.
slo_nothing_pending() {
    [ "$(curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" |
        awk '$1 == "mutt_slo_pending_minutes" {printf "%d", $2; f=1} END {if (!f) print "absent"}')" = 0 ]
}
wait_until 15 slo_nothing_pending || { echo "SLO counts still pending after 15 s" >&2; exit 1; }

test_slo_endpoint_reports_ingest_availability_from_the_counters() {
    local before good total
    before=$(slo_field ingestor_availability total)
    post_events 20
    post_events 3 wrong-key-0123456789abcdef0123456789abcdef
    wait_until 5 total_at_least $((before + 20)) ||
        t_fail "ingestor_availability total did not reach $((before + 20)): $(slo_field ingestor_availability total)"
    # every request above was answered, so anything it counted (a 401 must not have been) is in
    # the accumulator; once that is empty it is all in Redis and the API shows it
    wait_for 15 "the SLO accumulator to reach Redis" slo_nothing_pending
    total=$(slo_field ingestor_availability total)
    good=$(slo_field ingestor_availability good)
    assert_eq $((before + 20)) "$total" "ingestor_availability total (401s excluded)"
    assert_eq "$total" "$good" "every request answered 200 is good"
    assert_eq ok "$(slo_field ingestor_availability status)" "status"
    assert_eq 1 "$(slo_field ingestor_availability actual_value)" "actual_value"
    assert_eq "$total" "$(slo_field ingestor_latency_p99 total)" "latency total"
    assert_eq no_data "$(slo_field forwarder_availability status)" "no forward role, no data"
    http GET "$SLO_URL" -H "X-API-KEY: $WEB_KEY"
    assert_status 200 "GET /api/v1/slo"
    assert_eq 6 "$(echo "$HTTP_BODY" | jq '.slos | length')" "six SLOs"
}

test_slo_keys_carry_a_ttl_beyond_the_longest_window() {
    local key ttl before
    before=$(redis_sum ingestor_availability total)
    post_events 1
    wait_until 5 eval '[ "$(redis_sum ingestor_availability total)" -gt "$before" ]' || t_fail "count not written"
    key="mutt:slo:ingestor_availability:$(date -u +%Y-%m-%dT%H:%M)"
    [ "$(rcli exists "$key")" = 1 ] || key="mutt:slo:ingestor_availability:$(date -u -d '-60 sec' +%Y-%m-%dT%H:%M)"
    ttl=$(rcli ttl "$key")
    [ "$ttl" -gt $((7 * 86400)) ] || t_fail "TTL of $key is $ttl s, not beyond 7 days"
}

# /slo reads up to 8640 minute keys per request; any key may ask in a loop, so the body is reused
# for 1 s. Each computed body has its own "timestamp": six requests in a row may show at most one
# distinct timestamp per second they took (plus one), where every request used to compute anew.
test_slo_is_computed_at_most_once_a_second() {
    local t0 t1 stamps="" i distinct elapsed_s
    t0=$(date +%s%N)
    for i in 1 2 3 4 5 6; do
        http GET "$SLO_URL" -H "X-API-KEY: $WEB_KEY"
        assert_status 200 "GET /slo $i"
        stamps+="$(echo "$HTTP_BODY" | jq -r .timestamp)"$'\n'
    done
    t1=$(date +%s%N)
    distinct=$(printf '%s' "$stamps" | sort -u | grep -c .)
    elapsed_s=$(( (t1 - t0 + 999999999) / 1000000000 ))
    [ "$distinct" -le $((elapsed_s + 1)) ] ||
        t_fail "$distinct distinct SLO bodies in ${elapsed_s} s: not cached: $(printf '%s' "$stamps" | tr '\n' ' ')"
}

test_sigterm_writes_the_last_second_of_counts() {
    local before after
    before=$(redis_sum ingestor_availability total)
    post_events 5
    stop_mutt 0 # at once: these five are at most in the accumulator, not in Redis yet
    after=$(redis_sum ingestor_availability total)
    assert_eq $((before + 5)) "$after" "counts in Redis after SIGTERM"
}

t_run "GET /api/v1/slo reports ingestor availability from the counters" test_slo_endpoint_reports_ingest_availability_from_the_counters
t_run "SLO minute keys carry a TTL beyond the longest window" test_slo_keys_carry_a_ttl_beyond_the_longest_window
t_run "GET /slo is computed at most once a second" test_slo_is_computed_at_most_once_a_second
t_run "SIGTERM writes the last second of counts" test_sigterm_writes_the_last_second_of_counts
t_summary
