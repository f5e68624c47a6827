#!/usr/bin/env bash
# End-to-end tests of the ingest role (CONTRACT §3, D1, D2, D6-D10): one `mutt --roles=ingest`
# against the harness Redis (no PostgreSQL, no sink). Covers the seed's curl example, both demo
# data files, batches and NDJSON, the bad-input corpus (every case a documented 4xx, never a 5xx,
# the process stays up, the queue holds exactly the accepted events), the rate limit (429 +
# Retry-After), the queue cap (503 + Retry-After), the dashboard counters' TTLs, the deadline
# (CLIENT PAUSE -> 503 in time, the late push counted as "in doubt") and the Redis fault drill
# under load. Needs: Redis (services.sh), MUTT_BIN. Run through tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

DATA_DIR=${MUTT_DEMO_DATA:-}
for d in "$E2E_ROOT/../shared/data" /work/shared/data; do
    [ -z "$DATA_DIR" ] && [ -f "$d/demo_syslog_events.json" ] && DATA_DIR=$d
done

CONF="$E2E_TMP/mutt.conf"
NEXT_KEY=e2e-ingest-next-key-abcdef0123456789abcdef01
QUEUE=mutt:ingest_queue
e2e_config "$CONF" INGEST_API_KEY_NEXT=$NEXT_KEY RATE_LIMIT_ENABLED=true INGEST_MAX_RATE=1000000000 \
    INGEST_TIMEOUT_MS=1000
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
llen() { rcli llen "$QUEUE"; }
squash() { tr -d ' \n\t' <<<"$1"; }
EV='{"timestamp":"2026-01-01T00:00:00Z","hostname":"e2e-host","message":"e2e event","syslog_severity":6}'

# post BODY [CURL ARGS...]: POST with the key and JSON content type.
post() {
    local body=$1
    shift
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "$body" "$@"
}
header() { grep -i "^$1:" "$HTTP_HEADERS" | head -n 1 | cut -d: -f2- | tr -d ' \r'; }
metric() { # metric 'name{labels}' -> value (0 when absent)
    curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" | awk -v k="$1" '$1 == k {printf "%d", $2; f=1} END {if (!f) print 0}'
}
# A 4xx with the ingest error body (CONTRACT §3).
assert_json_error() {
    assert_status "$1" "${2:-}"
    assert_contains "$(squash "$HTTP_BODY")" '"status":"error"' "${2:-} body"
    assert_contains "$HTTP_BODY" '"correlation_id"' "${2:-} body"
}
set_dyn() { # set_dyn KEY VALUE|"" : writes (or deletes) mutt:config:KEY and announces it
    if [ -n "$2" ]; then rcli set "mutt:config:$1" "$2" >/dev/null; else rcli del "mutt:config:$1" >/dev/null; fi
    rcli publish mutt:config:updates "$1" >/dev/null
}

start_mutt "$CONF" ingest
# /health/live answers as soon as the listener is up; the ingest route exists once the stage has
# started (after the pod identity is acquired). Until then the path is a 404.
wait_until 15 eval 'http POST "$URL" -H "Content-Type: application/json" -d "{}"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "ingest route did not appear within 15 s (last status $HTTP_STATUS)" >&2; exit 1; }

# ------------------------------------------------------------------------------------ accepted
test_seed_curl_example_is_accepted_and_queued() {
    local before
    before=$(llen)
    http POST "http://127.0.0.1:$INGEST_PORT/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" \
        -H "Content-Type: application/json" \
        -d '{"timestamp":"2026-01-01T12:00:00Z","hostname":"test-server","message":"Installation test event","syslog_severity":6}'
    assert_status 200
    local b
    b=$(squash "$HTTP_BODY")
    assert_contains "$b" '{"status":"accepted","queued":true,"accepted":1,'
    assert_contains "$b" "\"queue_depth\":$((before + 1))"
    assert_not_contains "$b" '"rejected"'
    local cid
    cid=$(header x-correlation-id)
    assert_ne "" "$cid" "X-Correlation-ID response header"
    assert_contains "$b" "\"correlation_id\":\"$cid\""
    assert_eq $((before + 1)) "$(llen)" "LLEN after one 200"
    local item
    item=$(rcli lindex "$QUEUE" 0)
    assert_contains "$item" '"hostname":"test-server"'
    assert_contains "$item" "\"_correlation_id\":\"$cid\""
    [[ "$item" =~ \"_event_id\":\"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\" ]] ||
        t_fail "no UUIDv4 _event_id in $item"
}

test_aliases_next_key_and_correlation_id_header() {
    local before p
    before=$(llen)
    for p in /api/v1/ingest /ingest; do
        http POST "http://127.0.0.1:$INGEST_PORT$p" -H "x-api-key: $INGEST_KEY" -H 'Content-Type: application/json' -d "$EV"
        assert_status 200 "POST $p"
    done
    http POST "$URL" -H "X-API-KEY: $NEXT_KEY" -H 'Content-Type: application/json; charset=utf-8' \
        -H 'X-Correlation-ID: e2e-corr-42' -d "$EV"
    assert_status 200 "INGEST_API_KEY_NEXT during rotation"
    assert_eq e2e-corr-42 "$(header x-correlation-id)" "correlation id echoed"
    assert_contains "$HTTP_BODY" '"correlation_id":"e2e-corr-42"'
    assert_contains "$(rcli lindex "$QUEUE" 0)" '"_correlation_id":"e2e-corr-42"'
    assert_eq $((before + 3)) "$(llen)"
    http GET "$URL" -H "X-API-KEY: $INGEST_KEY"
    assert_status 405 "GET on the ingest path"
}

test_batch_array_and_ndjson_share_a_correlation_id_with_distinct_event_ids() {
    local before
    before=$(llen)
    post "[$EV,$EV,$EV]" -H 'X-Correlation-ID: e2e-batch-1'
    assert_status 200
    assert_contains "$(squash "$HTTP_BODY")" '"accepted":3,'
    local ids
    ids=$(rcli lrange "$QUEUE" 0 2 | grep -o '"_event_id":"[^"]*"' | sort -u | wc -l)
    assert_eq 3 "$ids" "distinct _event_id per event"
    assert_eq 3 "$(rcli lrange "$QUEUE" 0 2 | grep -c '"_correlation_id":"e2e-batch-1"')" "shared correlation id"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/x-ndjson' \
        --data-binary "$(printf '%s\n%s\n' "$EV" "$EV")"
    assert_status 200 "NDJSON"
    assert_contains "$(squash "$HTTP_BODY")" '"accepted":2,'
    assert_eq $((before + 5)) "$(llen)"
}

test_partly_invalid_batch_queues_the_valid_events_and_lists_the_rest() {
    local before b
    before=$(llen)
    post "[$EV,{\"hostname\":\"h\",\"timestamp\":\"2026-01-01T00:00:00Z\"},7,$EV]"
    assert_status 200
    b=$(squash "$HTTP_BODY")
    assert_contains "$b" '"accepted":2,'
    assert_contains "$b" '"rejected":[{"index":1,"error":"missingrequiredfield:message"},{"index":2,'
    assert_eq $((before + 2)) "$(llen)"
    # none valid -> 400 with the same list, naming the field
    post '[{"hostname":"h","message":"m","timestamp":"yesterday"}]'
    assert_json_error 400
    assert_contains "$HTTP_BODY" 'timestamp'
    assert_contains "$(squash "$HTTP_BODY")" '"rejected":[{"index":0,'
    assert_eq $((before + 2)) "$(llen)"
}

test_demo_data_files_are_accepted_in_full() {
    [ -n "$DATA_DIR" ] || t_fail "demo data not found (set MUTT_DEMO_DATA)"
    local f n before
    for f in demo_syslog_events.json demo_snmp_traps.json; do
        before=$(llen)
        n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1], encoding='utf-8-sig'))))" "$DATA_DIR/$f")
        http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "@$DATA_DIR/$f"
        assert_status 200 "$f"
        assert_contains "$(squash "$HTTP_BODY")" "\"accepted\":$n," "$f: every event accepted"
        assert_not_contains "$HTTP_BODY" '"rejected"' "$f"
        assert_eq $((before + n)) "$(llen)" "$f: LLEN"
    done
    # traps: hostname from source_ip, message built from trap_oid and variables (D9)
    local trap
    trap=$(rcli lindex "$QUEUE" 0)
    assert_contains "$trap" '"hostname":"192.168.'
    assert_contains "$trap" '"message":"SNMP trap '
}

# ----------------------------------------------------------------------------- bad-input corpus
test_bad_input_corpus_gets_4xx_and_queues_nothing() {
    local before pid=$MUTT_PID f
    before=$(llen)
    f="$E2E_TMP/corpus"
    mkdir -p "$f"

    post ''
    assert_json_error 400 "empty body"
    post 'null'
    assert_json_error 400 "null"
    for s in '1' '"text"' 'true' '-2.5' '[]' '[1,2]'; do
        post "$s"
        assert_json_error 400 "scalar/array body $s"
    done
    python3 -c "print('['*1000 + ']'*1000)" >"$f/deep1"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "@$f/deep1"
    assert_json_error 400 "arrays nested 1000 deep"
    python3 -c "print('{\"a\":'*1000 + '1' + '}'*1000)" >"$f/deep2"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "@$f/deep2"
    assert_json_error 400 "objects nested 1000 deep"
    printf '{"timestamp":"2026-01-01T00:00:00Z","hostname":"h\xff\xfe","message":"m"}' >"$f/utf8"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "@$f/utf8"
    assert_json_error 400 "invalid UTF-8"
    post '{"hostname":"h","message":"m","timestamp":"2026-01-01T00:00:00Z","n":123456789012345678901234567890}'
    assert_json_error 400 "integer beyond int64"
    post '{"hostname":"h", "message":'
    assert_json_error 400 "truncated JSON"

    head -c 10485760 /dev/zero | tr '\0' ' ' >"$f/10mb"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "@$f/10mb"
    assert_status 413 "10 MB body (h2o's plain body, D10)"
    python3 -c "import sys; e=sys.argv[1]; print('[' + ','.join([e]*2000) + ']')" "$EV" >"$f/2000"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "@$f/2000"
    assert_json_error 413 "2000-event batch over MAX_BATCH_EVENTS"

    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: text/plain' -d "$EV"
    assert_json_error 415 "text/plain"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -d "$EV"
    assert_json_error 415 "form content type (curl's default)"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type:' -d "$EV"
    assert_json_error 415 "no content type"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' -H 'Content-Type: text/plain' -d "$EV"
    assert_json_error 415 "two content types"

    http POST "$URL" -H 'Content-Type: application/json' -d "$EV"
    assert_json_error 401 "missing key"
    http POST "$URL" -H 'X-API-KEY: wrong-key' -H 'Content-Type: application/json' -d "$EV"
    assert_json_error 401 "wrong key"
    assert_eq '{"status":"error","message":"Unauthorized","correlation_id":"'"$(header x-correlation-id)"'"}' "$HTTP_BODY"
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' -d "$EV"
    assert_json_error 401 "duplicate X-API-KEY"
    http POST "$URL?api_key=$INGEST_KEY" -H 'Content-Type: application/json' -d "$EV"
    assert_json_error 401 "key in the query string"
    http POST "$URL" -H "X-API-KEY: ${INGEST_KEY}x" -H 'Content-Type: application/json' -d "$EV"
    assert_json_error 401 "key with a suffix"
    # auth comes first (D6): a bad key with a bad body is still 401
    http POST "$URL" -H 'X-API-KEY: nope' -H 'Content-Type: text/plain' -d 'garbage'
    assert_json_error 401 "401 before 415"

    post "$EV" -H 'X-Correlation-ID: has spaces and ; semicolons'
    assert_json_error 400 "unsafe correlation id"
    assert_contains "$HTTP_BODY" "X-Correlation-ID"
    post "$EV" -H "X-Correlation-ID: $(head -c 65 /dev/zero | tr '\0' a)"
    assert_json_error 400 "65-character correlation id"
    post "$EV" -H 'X-Correlation-ID: a' -H 'X-Correlation-ID: b'
    assert_json_error 400 "duplicate correlation id"
    # oversized headers: the key and correlation id ones are ours to judge, a 1 MB one is h2o's
    http POST "$URL" -H "X-API-KEY: $(head -c 20000 /dev/zero | tr '\0' k)" -H 'Content-Type: application/json' -d "$EV"
    assert_json_error 401 "20 KB X-API-KEY"
    post "$EV" -H "X-Correlation-ID: $(head -c 20000 /dev/zero | tr '\0' c)"
    assert_json_error 400 "20 KB X-Correlation-ID"
    printf 'X-Big: %s\r\n' "$(head -c 1000000 /dev/zero | tr '\0' a)" >"$f/bighdr"
    post "$EV" -H "@$f/bighdr"
    assert_status 400 "1 MB header (h2o's plain body, D10)"
    local hostname256
    hostname256=$(head -c 256 /dev/zero | tr '\0' h)
    post "{\"hostname\":\"$hostname256\",\"message\":\"m\",\"timestamp\":\"2026-01-01T00:00:00Z\"}"
    assert_json_error 400 "hostname over 255 bytes"
    assert_contains "$HTTP_BODY" hostname

    alive "$pid" || t_fail "mutt died during the corpus"
    assert_eq "$before" "$(llen)" "the corpus queued nothing"
    post "$EV"
    assert_status 200 "still serving after the corpus"
    assert_eq $((before + 1)) "$(llen)"
    [ "$(metric 'mutt_ingest_requests_total{status="fail",reason="auth"}')" -ge 6 ] || t_fail "auth failures not counted"
}

# -------------------------------------------------------------------------- rate limit and cap
test_rate_limit_answers_429_with_retry_after_and_counts_accepted_events_only() {
    local before i
    rcli --scan --pattern 'mutt:rate_limit:ingestor:*' | while read -r k; do rcli del "$k" >/dev/null; done
    set_dyn ingest_rate_window 86400
    set_dyn ingest_max_rate 3
    # wait until the pod sees the limit: a 4-event batch can never fit in 3 tokens
    wait_until 5 eval 'post "[$EV,$EV,$EV,$EV]"; [ "$HTTP_STATUS" = 429 ]' || t_fail "limit not applied within 5 s"
    rcli --scan --pattern 'mutt:rate_limit:ingestor:*' | while read -r k; do rcli del "$k" >/dev/null; done
    before=$(llen)
    post "[$EV,$EV]"
    assert_status 200 "2 of 3 tokens"
    post "[$EV,$EV]"
    assert_json_error 429 "a batch that does not fit is refused whole (D7)"
    assert_contains "$HTTP_BODY" '"retry_after":'
    local ra
    ra=$(header retry-after)
    [[ "$ra" =~ ^[0-9]+$ ]] && [ "$ra" -ge 1 ] || t_fail "Retry-After not whole seconds >= 1: [$ra]"
    assert_eq $((before + 2)) "$(llen)" "nothing of the refused batch queued"
    post "$EV"
    assert_status 200 "the last token"
    post "$EV"
    assert_json_error 429 "over the limit"
    # invalid events take no tokens: still 400, not 429 (D6 order)
    post '{"hostname":"h"}'
    assert_json_error 400 "validation before the rate limit"
    assert_eq $((before + 3)) "$(llen)"
    [ "$(metric mutt_ingest_rate_limit_hits_total)" -ge 2 ] || t_fail "rate limit hits not counted"
    set_dyn ingest_max_rate ""
    set_dyn ingest_rate_window ""
    wait_until 5 eval 'post "$EV"; [ "$HTTP_STATUS" = 200 ]' || t_fail "limit not lifted within 5 s"
}

test_queue_cap_answers_503_queue_full_with_retry_after() {
    post "$EV"
    assert_status 200
    set_dyn max_ingest_queue_size 1
    wait_until 5 eval 'post "$EV"; [ "$HTTP_STATUS" = 503 ]' || t_fail "cap not applied within 5 s"
    local b depth
    depth=$(llen)
    b=$(squash "$HTTP_BODY")
    assert_contains "$b" '"status":"error","message":"queuefull"'
    assert_contains "$b" "\"queue_depth\":$depth,\"queue_limit\":1"
    [ "$(header retry-after)" -ge 1 ] || t_fail "no Retry-After on 503 queue full"
    post "$EV"
    assert_status 503
    assert_eq "$depth" "$(llen)" "a full queue takes nothing"
    rcli del "$QUEUE" >/dev/null
    post "[$EV,$EV]"
    assert_status 503 "a batch over the cap is refused whole (D7)"
    assert_eq 0 "$(llen)"
    post "$EV"
    assert_status 200 "fits exactly"
    post "$EV"
    assert_status 503 "now full"
    assert_eq 1 "$(llen)"
    set_dyn max_ingest_queue_size ""
    wait_until 5 eval 'post "$EV"; [ "$HTTP_STATUS" = 200 ]' || t_fail "cap not lifted within 5 s"
}

# D52: max_ingest_queue_bytes caps the bytes queued (the counter <queue>:bytes kept by the push
# script); over it the same 503 as the item cap, naming the byte cap; a batch is all-or-nothing.
queue_bytes() { # exact bytes of every item in the queue
    rcli eval "local s = 0 for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do s = s + #v end return s" 1 "$QUEUE"
}
test_queue_byte_cap_answers_503_naming_the_byte_cap() {
    local ok=0 i b depth counter
    rcli del "$QUEUE" "$QUEUE:bytes" >/dev/null
    set_dyn max_ingest_queue_bytes 1000
    for i in $(seq 1 40); do # until the new cap is in force (within 1 s) and reached
        post "$EV"
        [ "$HTTP_STATUS" = 200 ] || break
        ok=$((ok + 1))
    done
    assert_json_error 503 "over the byte cap"
    b=$(squash "$HTTP_BODY")
    assert_contains "$b" '"message":"queuefull:max_ingest_queue_bytesreached"'
    assert_contains "$b" '"queue_bytes_limit":1000'
    [ "$(header retry-after)" -ge 1 ] || t_fail "no Retry-After on 503 over the byte cap"
    depth=$(llen)
    assert_eq "$ok" "$depth" "the queue holds exactly the accepted events"
    counter=$(rcli get "$QUEUE:bytes")
    assert_eq "$(queue_bytes)" "$counter" "the counter is the bytes queued"
    [ "$counter" -le 1000 ] || t_fail "counter $counter over the cap"
    assert_contains "$b" "\"queue_bytes\":$counter"
    assert_contains "$(curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/health")" '"ingest":"degraded"' "health while over the byte cap"
    # a batch that would cross the cap is refused whole (D7), even when one event would fit
    rcli del "$QUEUE" "$QUEUE:bytes" >/dev/null
    post "[$EV,$EV,$EV,$EV,$EV,$EV,$EV,$EV]"
    assert_status 503 "a batch over the byte cap is refused whole"
    assert_eq 0 "$(llen)"
    post "[$EV,$EV]"
    assert_status 200 "a batch under the byte cap"
    assert_eq 2 "$(llen)"
    assert_eq "$(queue_bytes)" "$(rcli get "$QUEUE:bytes")"
    [ "$(metric 'mutt_ingest_requests_total{status="fail",reason="queue_full"}')" -ge 2 ] || t_fail "not counted as queue_full"
    set_dyn max_ingest_queue_bytes ""
    rcli del "$QUEUE" "$QUEUE:bytes" >/dev/null
    wait_until 5 eval 'post "[$EV,$EV,$EV,$EV,$EV,$EV,$EV,$EV]"; [ "$HTTP_STATUS" = 200 ]' || t_fail "byte cap not lifted within 5 s"
}

# ------------------------------------------------------------------------------ dashboard keys
test_dashboard_counters_get_their_ttls_even_when_a_key_had_none() {
    local minute k1m ttl v i
    for i in 1 2 3; do # retried when the minute turns between the SET and the POST
        minute=$(date -u +%Y-%m-%dT%H:%M)
        k1m="mutt:metrics:1m:$minute"
        rcli set "$k1m" 40 >/dev/null # no TTL: what EXPIRE NX on Redis < 7 left behind (W28)
        post "[$EV,$EV]"
        assert_status 200
        [ "$(date -u +%Y-%m-%dT%H:%M)" = "$minute" ] && break
    done
    assert_eq 42 "$(rcli get "$k1m")" "1m counter counts events"
    ttl=$(rcli ttl "$k1m")
    [ "$ttl" -gt 7000 ] && [ "$ttl" -le 7200 ] || t_fail "1m TTL $ttl, want ~7200"
    ttl=$(rcli ttl "mutt:metrics:1h:${minute%:*}")
    [ "$ttl" -gt 172000 ] && [ "$ttl" -le 172800 ] || t_fail "1h TTL $ttl, want ~172800"
    ttl=$(rcli ttl "mutt:metrics:24h:${minute%T*}")
    [ "$ttl" -gt 2591000 ] && [ "$ttl" -le 2592000 ] || t_fail "24h TTL $ttl, want ~2592000"
}

test_metrics_expose_the_ingest_families() {
    http GET "http://127.0.0.1:$INGEST_PORT/metrics"
    assert_status 200
    local m
    for m in 'mutt_ingest_requests_total{status="success",reason=""}' 'mutt_ingest_events_total{result="accepted"}' \
        'mutt_ingest_events_total{result="rejected"}' 'mutt_ingest_queue_depth ' 'mutt_ingest_latency_seconds_bucket{le="0.005"}' \
        'mutt_ingest_rate_limit_hits_total ' 'mutt_ingest_requests_total{status="fail",reason="queue_full"}'; do
        assert_contains "$HTTP_BODY" "$m"
    done
}

# D35 (issue 11 bug 3): a client's top-level `_` fields are MUTT's own. They used to be queued as
# sent, so {"_retry_count":99} sent the event straight to the alerter DLQ.
test_reserved_fields_are_stripped_counted_and_the_event_accepted() {
    local before after item b
    before=$(metric mutt_ingest_reserved_fields_stripped_total)
    rcli del "$QUEUE" >/dev/null
    post '{"timestamp":"2026-01-01T00:00:00Z","hostname":"e2e-res","message":"reserved","_retry_count":99,"_replay_count":5,"_origin":"ingest","_dlq_reason":"x","_failed_at":"2026-01-01T00:00:00Z","_event_id":"mine","nested":{"_keep":1}}'
    assert_status 200
    assert_contains "$(squash "$HTTP_BODY")" '"accepted":1'
    item=$(rcli lindex "$QUEUE" 0)
    assert_contains "$item" '"hostname":"e2e-res"'
    assert_contains "$item" '"nested":{"_keep":1}' "only top-level fields are MUTT's"
    local f
    for f in _retry_count _replay_count _origin _dlq_reason _failed_at; do
        assert_not_contains "$item" "\"$f\"" "$f stripped"
    done
    assert_not_contains "$item" '"_event_id":"mine"'
    after=$(metric mutt_ingest_reserved_fields_stripped_total)
    assert_eq $((before + 6)) "$after" "stripped fields counted"
    # the compact array shape the fast path takes: declined there, stripped by the general path
    post '[{"hostname":"e2e-res2","message":"m","timestamp":"2026-01-01T00:00:00Z","_retry_count":99}]'
    assert_status 200
    item=$(rcli lindex "$QUEUE" 0)
    assert_contains "$item" '"hostname":"e2e-res2"'
    assert_not_contains "$item" '"_retry_count"'
    assert_eq $((before + 7)) "$(metric mutt_ingest_reserved_fields_stripped_total)" "fast-shaped body counted"
}

# Issue 11 bug 6: MAX_EVENT_BYTES applies to the stored (normalised) event. A trap whose message is
# built from its variables is under the limit as sent and over it once normalised.
test_event_over_max_event_bytes_after_normalisation_is_rejected() {
    local big body before
    big=$(head -c 40000 /dev/zero | tr '\0' 'A')
    body="{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"e2e-trap\",\"trap_oid\":\"1.3.6.1.4.1.9\",\"variables\":{\"1.3.6.1.2.1.1\":\"$big\"}}"
    [ ${#body} -lt 65536 ] || t_fail "test body must be under MAX_EVENT_BYTES as sent"
    before=$(llen)
    post "$body"
    assert_json_error 400 "normalised event over MAX_EVENT_BYTES"
    assert_contains "$HTTP_BODY" 'after normalisation, over MAX_EVENT_BYTES (65536)'
    assert_eq "$before" "$(llen)" "nothing queued"
    # in a batch only that event is rejected
    post "[$body,$EV]"
    assert_status 200
    assert_contains "$(squash "$HTTP_BODY")" '"accepted":1'
    assert_contains "$(squash "$HTTP_BODY")" '"rejected":[{"index":0,'
    assert_eq $((before + 1)) "$(llen)" "the valid event queued"
}

# One parser, one formatter (timefmt.h): what ingest accepts, the alert stage can format.
test_timestamp_the_alert_stage_cannot_format_is_refused() {
    post '{"timestamp":"9999-12-31T23:59:59-23:59","hostname":"e2e-ts","message":"far future"}'
    assert_json_error 400 "timestamp past 9999-12-31 UTC"
    assert_contains "$HTTP_BODY" 'timestamp'
    post '{"timestamp":"9999-12-31T23:59:59+23:59","hostname":"e2e-ts","message":"edge"}'
    assert_status 200
}

# ------------------------------------------------------------------------- deadline and faults
test_stalled_redis_gives_503_within_the_timeout_and_the_late_push_is_counted_in_doubt() {
    local before doubt0 t
    before=$(llen)
    doubt0=$(metric mutt_ingest_events_in_doubt_total)
    bash "$SERVICES" pause-redis 2500
    t=$(date +%s%N)
    post "$EV"
    t=$((($(date +%s%N) - t) / 1000000))
    assert_json_error 503 "stalled Redis"
    assert_contains "$HTTP_BODY" 'Redis unavailable'
    [ "$t" -lt 1900 ] || t_fail "503 took $t ms with INGEST_TIMEOUT_MS=1000"
    # D2: the script ran once Redis woke up; the event is queued without a 200 and counted
    wait_until 10 eval '[ "$(metric mutt_ingest_events_in_doubt_total)" -ge $((doubt0 + 1)) ]' ||
        t_fail "in-doubt push not counted"
    assert_eq $((before + 1)) "$(llen)" "acked <= LLEN <= acked + in doubt"
}

# Load from several clients while redis-server is stopped and started again.
load_worker() { # load_worker ID: posts until $E2E_TMP/stop exists; one "code seconds" line each
    local id=$1 i=0
    while [ ! -f "$E2E_TMP/stop" ]; do
        i=$((i + 1))
        curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' -X POST "$URL" -H "X-API-KEY: $INGEST_KEY" \
            -H 'Content-Type: application/json' \
            --data-binary "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"load-$id\",\"message\":\"n $i\"}" \
            >>"$E2E_TMP/load.$id" 2>/dev/null || echo "000 99" >>"$E2E_TMP/load.$id"
    done
}
count_code() { cat "$E2E_TMP"/load.* 2>/dev/null | awk -v c="$1" '$1 == c {n++} END {print n + 0}'; }

test_redis_fault_drill_under_load_loses_nothing_acknowledged() {
    local pid=$MUTT_PID w ok0 before
    rcli del "$QUEUE" >/dev/null
    rm -f "$E2E_TMP"/load.* "$E2E_TMP/stop"
    for w in 1 2 3 4; do load_worker "$w" & done
    wait_until 20 eval '[ "$(count_code 200)" -ge 100 ]' || t_fail "load did not start"
    bash "$SERVICES" stop-redis
    wait_until 20 eval '[ "$(count_code 503)" -ge 50 ]' || t_fail "no 503s while Redis was down"
    ok0=$(count_code 200)
    bash "$SERVICES" start-redis
    wait_until 30 eval '[ "$(count_code 200)" -ge $((ok0 + 100)) ]' || t_fail "200s did not resume after Redis came back"
    touch "$E2E_TMP/stop"
    wait
    alive "$pid" || t_fail "mutt died or was restarted"
    local acked n503 other slow llen
    acked=$(count_code 200)
    n503=$(count_code 503)
    other=$(cat "$E2E_TMP"/load.* | awk '$1 != 200 && $1 != 503 {n++} END {print n + 0}')
    slow=$(cat "$E2E_TMP"/load.* | awk '$2 > 2.5 {n++} END {print n + 0}')
    llen=$(llen)
    e2e_log "drill: $acked x 200, $n503 x 503, $other other, LLEN $llen"
    assert_eq 0 "$other" "only 200 and 503 (no hang, no 5xx other than 503)"
    assert_eq 0 "$slow" "answers slower than INGEST_TIMEOUT_MS + slack"
    [ "$llen" -ge "$acked" ] || t_fail "LLEN $llen < $acked acknowledged events: loss"
    [ "$llen" -le $((acked + n503)) ] || t_fail "LLEN $llen > acked $acked + 503s $n503"
}

test_sigterm_exits_0() {
    stop_mutt 0
}

# INGEST_INFLIGHT_BYTES: bodies waiting for a stalled Redis are capped per process; over the budget
# a request is refused at once with 503 + Retry-After instead of being held too.
test_inflight_budget_refuses_while_redis_is_stalled() {
    local conf="$E2E_TMP/inflight.conf" before first
    e2e_config "$conf" INGEST_INFLIGHT_BYTES=150 INGEST_TIMEOUT_MS=10000
    start_mutt "$conf" ingest
    wait_until 15 eval 'post "$EV"; [ "$HTTP_STATUS" = 200 ]' || t_fail "ingest not accepting"
    before=$(llen)
    bash "$SERVICES" pause-redis 3000
    (
        curl -s -o /dev/null -m 15 -w '%{http_code}' -X POST "$URL" -H "X-API-KEY: $INGEST_KEY" \
            -H 'Content-Type: application/json' --data-binary "$EV" >"$E2E_TMP/first.code"
    ) &
    first=$!
    wait_until 5 eval '[ "$(metric mutt_ingest_inflight_bytes)" -gt 0 ]' || t_fail "first request not held"
    post "$EV"
    assert_json_error 503 "over the in-flight budget"
    assert_contains "$HTTP_BODY" "INGEST_INFLIGHT_BYTES"
    [ "$(header retry-after)" -ge 1 ] || t_fail "no Retry-After on 503 overloaded"
    assert_eq 1 "$(metric 'mutt_ingest_requests_total{status="fail",reason="inflight_bytes"}')"
    wait "$first"
    assert_eq 200 "$(cat "$E2E_TMP/first.code")" "the held request is answered once Redis wakes"
    assert_eq 0 "$(metric mutt_ingest_inflight_bytes)" "budget released"
    post "$EV"
    assert_status 200 "budget free again"
    assert_eq $((before + 2)) "$(llen)" "the refused request queued nothing"
    stop_mutt 0
}

# D11: two `mutt --roles=ingest` share INGESTOR_PORT (SO_REUSEPORT), each with its own HEALTH_PORT.
test_two_reuseport_processes_share_the_ingest_port() {
    local ca="$E2E_TMP/a.conf" cb="$E2E_TMP/b.conf" ha hb pa pb i before na nb
    ha=$(free_port)
    hb=$(free_port)
    e2e_config "$ca" INGEST_REUSEPORT=true HEALTH_PORT="$ha"
    e2e_config "$cb" INGEST_REUSEPORT=true HEALTH_PORT="$hb"
    start_mutt "$ca" ingest
    pa=$MUTT_PID
    local rca=$MUTT_RC_FILE
    start_mutt "$cb" ingest
    pb=$MUTT_PID
    local rcb=$MUTT_RC_FILE
    wait_until 15 eval 'curl -sf -m 2 "http://127.0.0.1:$ha/health" && curl -sf -m 2 "http://127.0.0.1:$hb/health"' ||
        t_fail "health ports did not answer"
    wait_until 15 eval 'post "$EV"; [ "$HTTP_STATUS" = 200 ]' || t_fail "shared port not accepting"
    before=$(llen)
    for i in $(seq 1 40); do # a new connection each: the kernel spreads them over both sockets
        post "$EV"
        assert_status 200 "request $i on the shared port"
    done
    assert_eq $((before + 40)) "$(llen)"
    na=$(curl -s "http://127.0.0.1:$ha/metrics" | awk '$1 == "mutt_ingest_events_total{result=\"accepted\"}" {print int($2)}')
    nb=$(curl -s "http://127.0.0.1:$hb/metrics" | awk '$1 == "mutt_ingest_events_total{result=\"accepted\"}" {print int($2)}')
    e2e_log "reuseport: pod a accepted ${na:-0}, pod b ${nb:-0}"
    [ "${na:-0}" -gt 0 ] && [ "${nb:-0}" -gt 0 ] || t_fail "one process got no connection (a=$na b=$nb)"
    MUTT_PID=$pb MUTT_RC_FILE=$rcb
    stop_mutt 0
    MUTT_PID=$pa MUTT_RC_FILE=$rca
    stop_mutt 0
}

t_run "seed curl example is accepted and queued" test_seed_curl_example_is_accepted_and_queued
t_run "aliases, next key, correlation id header" test_aliases_next_key_and_correlation_id_header
t_run "batches and NDJSON: shared correlation id, distinct event ids" \
    test_batch_array_and_ndjson_share_a_correlation_id_with_distinct_event_ids
t_run "partly invalid batch: valid events queued, the rest listed" \
    test_partly_invalid_batch_queues_the_valid_events_and_lists_the_rest
t_run "demo data files accepted in full" test_demo_data_files_are_accepted_in_full
t_run "bad-input corpus: 4xx, nothing queued, still up" test_bad_input_corpus_gets_4xx_and_queues_nothing
t_run "rate limit: 429 + Retry-After, all-or-nothing" \
    test_rate_limit_answers_429_with_retry_after_and_counts_accepted_events_only
t_run "queue cap: 503 queue full + Retry-After" test_queue_cap_answers_503_queue_full_with_retry_after
t_run "queue byte cap: 503 naming max_ingest_queue_bytes, all-or-nothing" test_queue_byte_cap_answers_503_naming_the_byte_cap
t_run "dashboard counters get their TTLs" test_dashboard_counters_get_their_ttls_even_when_a_key_had_none
t_run "metrics expose the ingest families" test_metrics_expose_the_ingest_families
t_run "D35: reserved _ fields stripped, counted, event accepted" \
    test_reserved_fields_are_stripped_counted_and_the_event_accepted
t_run "MAX_EVENT_BYTES applies after normalisation" test_event_over_max_event_bytes_after_normalisation_is_rejected
t_run "a timestamp the alert stage cannot format is refused" test_timestamp_the_alert_stage_cannot_format_is_refused
t_run "stalled Redis: 503 in time, late push counted in doubt" \
    test_stalled_redis_gives_503_within_the_timeout_and_the_late_push_is_counted_in_doubt
t_run "Redis fault drill under load: nothing acknowledged lost" \
    test_redis_fault_drill_under_load_loses_nothing_acknowledged
bash "$SERVICES" start-redis >/dev/null 2>&1 || true # whatever the drill left behind
t_run "SIGTERM exits 0" test_sigterm_exits_0
t_run "D11: two reuseport processes share the ingest port" test_two_reuseport_processes_share_the_ingest_port
# last: it runs its own process on INGESTOR_PORT, which a failure would leave running
t_run "in-flight byte budget: 503 + Retry-After while Redis is stalled" test_inflight_budget_refuses_while_redis_is_stalled
t_summary
