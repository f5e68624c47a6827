#!/usr/bin/env bash
# End-to-end tests of "acknowledged means replicated, when asked" (CONTRACT D37, D49): with
# INGEST_MIN_REPLICAS=1 ingest sends WAIT after each group's push on its own connection and
# answers 200 only once a replica confirmed it, 503 not_replicated (events in doubt) otherwise;
# with the default 0 it never sends WAIT. The script runs its own Redis primary and one replica
# (redis-server --replicaof) on free loopback ports in its temp dir; mutt points at the primary.
# The harness PostgreSQL is still used. A stopped replica (SIGSTOP) keeps its link open but
# acknowledges nothing, so WAIT runs into its timeout.
# Needs: redis-server, redis-cli, PostgreSQL (services.sh), MUTT_BIN. Run through run-tests.sh.
. "$(dirname "$0")/lib.sh"

command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; exit 1; }
P1=$(free_port)
P2=$(free_port)
QUEUE=mutt:ingest_queue
REPLICA_TIMEOUT_MS=400
INGEST_TIMEOUT_MS=4000
r1() { redis-cli -h 127.0.0.1 -p "$P1" "$@"; }
r2() { redis-cli -h 127.0.0.1 -p "$P2" "$@"; }

mkdir -p "$E2E_TMP/r1" "$E2E_TMP/r2"
spawn_helper redis-primary "$E2E_TMP/r1/log" redis-server --port "$P1" --bind 127.0.0.1 --dir "$E2E_TMP/r1" \
    --save "" --appendonly no
R1_PID=$HELPER_PID
wait_until 10 r1 ping || { echo "primary did not start" >&2; exit 1; }
start_replica() {
    spawn_helper redis-replica "$E2E_TMP/r2/log" redis-server --port "$P2" --bind 127.0.0.1 --dir "$E2E_TMP/r2" \
        --save "" --appendonly no --replicaof 127.0.0.1 "$P1"
    R2_PID=$HELPER_PID
    wait_until 20 eval 'r2 info replication | grep -q "master_link_status:up"' || t_fail "replica did not sync"
    wait_until 10 eval '[ "$(r1 info replication | tr -d "\r" | awk -F: "/^connected_slaves/ {print \$2}")" = 1 ]' ||
        t_fail "primary does not see its replica"
}
start_replica

CONF="$E2E_TMP/mutt.conf"
# later lines win: mutt talks to this script's primary, not the harness Redis
e2e_config "$CONF" REDIS_HOST=127.0.0.1 REDIS_PORT="$P1" INGEST_MIN_REPLICAS=1 \
    INGEST_REPLICA_TIMEOUT_MS=$REPLICA_TIMEOUT_MS INGEST_TIMEOUT_MS=$INGEST_TIMEOUT_MS
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
metric() { # metric NAME: its value on the ingest port (0 when absent)
    curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" |
        awk -v n="$1" '$1 == n {printf "%d", $2; f=1} END {if (!f) print 0}'
}
wait_calls() { # WAIT calls the primary has run since its last CONFIG RESETSTAT
    r1 info commandstats | tr -d '\r' | sed -n 's/^cmdstat_wait:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}
post() { # post TAG: one event
    http POST "$URL" -H "Content-Type: application/json" -H "X-API-KEY: $INGEST_KEY" \
        -d "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"repl-$1\",\"message\":\"replicated $1\"}"
}

start_mutt "$CONF" ingest
wait_until 15 eval 'http POST "$URL" -H "Content-Type: application/json" -d "{}"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "ingest route did not appear within 15 s (last status $HTTP_STATUS)" >&2; exit 1; }

# ------------------------------------------------------------------------------------ tests
test_with_a_live_replica_every_200_is_already_on_the_replica() {
    local i before n=5
    r1 config resetstat >/dev/null
    before=$(r1 llen "$QUEUE")
    for i in $(seq 1 $n); do
        post "ok-$i"
        assert_status 200 "POST $i with the replica connected"
        assert_contains "$HTTP_BODY" '"accepted":1'
        # WAIT returned before the 200: the replica holds every acknowledged event right now
        assert_eq $((before + i)) "$(r2 llen "$QUEUE")" "replica LLEN after 200 number $i"
    done
    assert_eq $((before + n)) "$(r1 llen "$QUEUE")" "primary LLEN"
    [ "$(wait_calls)" -ge 1 ] || t_fail "no WAIT reached the primary"
    assert_eq 0 "$(metric mutt_ingest_not_replicated_total)" "not_replicated answers"
}

test_a_push_retried_as_eval_after_noscript_is_waited_for_again() {
    # SCRIPT FLUSH: the group's EVALSHA gets NOSCRIPT and is re-sent as EVAL behind the WAIT,
    # so that WAIT answers before the push ran; ingest must WAIT again before its 200
    local before
    before=$(r1 llen "$QUEUE")
    r1 script flush >/dev/null
    r1 config resetstat >/dev/null
    post flushed
    assert_status 200 "POST after SCRIPT FLUSH"
    assert_eq $((before + 1)) "$(r2 llen "$QUEUE")" "replica LLEN at the 200"
    local cs
    cs=$(r1 info commandstats | tr -d '\r')
    assert_eq 2 "$(wait_calls)" "WAIT calls: the early one and the one after the push"
    assert_contains "$cs" "cmdstat_eval:calls=1," "the push ran as EVAL"
}

test_without_a_replica_ack_the_answer_is_503_not_replicated_and_in_doubt() {
    local before doubt0 nr0 t0 ms
    before=$(r1 llen "$QUEUE")
    doubt0=$(metric mutt_ingest_events_in_doubt_total)
    nr0=$(metric mutt_ingest_not_replicated_total)
    helper_signal STOP "$R2_PID"
    t0=$(date +%s%N)
    post stopped
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    helper_signal CONT "$R2_PID"
    assert_status 503 "POST with the replica stopped"
    assert_contains "$HTTP_BODY" '"reason":"not_replicated"'
    assert_contains "$HTTP_BODY" '"message":"not replicated"'
    assert_contains "$HTTP_BODY" '"status":"error"'
    grep -qi '^retry-after: [0-9]' "$HTTP_HEADERS" || t_fail "no Retry-After on the 503"
    # the WAIT answered, not the request's own deadline (that one says "Redis unavailable")
    [ "$ms" -lt "$INGEST_TIMEOUT_MS" ] || t_fail "503 took $ms ms (INGEST_TIMEOUT_MS=$INGEST_TIMEOUT_MS)"
    # pushed on the primary all the same: in doubt, counted
    assert_eq $((before + 1)) "$(r1 llen "$QUEUE")" "primary LLEN after the not-replicated push"
    assert_eq $((doubt0 + 1)) "$(metric mutt_ingest_events_in_doubt_total)" "events in doubt"
    assert_eq $((nr0 + 1)) "$(metric mutt_ingest_not_replicated_total)" "not_replicated answers"
    assert_contains "$(curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/health")" '"ingest":"degraded"' \
        "health while the last WAIT fell short"
    # the replica catches up once it runs again, and the next request is a plain 200
    wait_until 10 eval '[ "$(r2 llen "$QUEUE")" = "$(r1 llen "$QUEUE")" ]' || t_fail "replica did not catch up"
    post after
    assert_status 200 "POST once the replica runs again"
    assert_not_contains "$(curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/health")" '"ingest":"degraded"' \
        "health once a WAIT confirmed again"
}

test_a_request_the_script_refuses_keeps_its_own_answer() {
    # a full queue: the script pushes nothing, so the WAIT's outcome must not turn it into
    # not_replicated (the replica is stopped: any pushed request would get that 503)
    local nr0 depth
    depth=$(r1 llen "$QUEUE")
    r1 set mutt:config:max_ingest_queue_size "$depth" >/dev/null
    r1 publish mutt:config:updates max_ingest_queue_size >/dev/null
    nr0=$(metric mutt_ingest_not_replicated_total)
    helper_signal STOP "$R2_PID"
    wait_until 10 eval 'post full; [ "$HTTP_STATUS" = 503 ] && [[ "$HTTP_BODY" == *"queue full"* ]]' ||
        { helper_signal CONT "$R2_PID"; t_fail "no queue-full answer: $HTTP_STATUS $HTTP_BODY"; }
    helper_signal CONT "$R2_PID"
    assert_not_contains "$HTTP_BODY" not_replicated
    assert_eq "$nr0" "$(metric mutt_ingest_not_replicated_total)" "not_replicated answers"
    r1 del mutt:config:max_ingest_queue_size >/dev/null
    r1 publish mutt:config:updates max_ingest_queue_size >/dev/null
    wait_until 10 eval 'post freed; [ "$HTTP_STATUS" = 200 ]' || t_fail "cap not lifted: $HTTP_STATUS $HTTP_BODY"
}

test_default_zero_replicas_never_sends_wait() {
    stop_mutt
    local conf0="$E2E_TMP/mutt0.conf" i before
    e2e_config "$conf0" REDIS_HOST=127.0.0.1 REDIS_PORT="$P1"
    grep -q INGEST_MIN_REPLICAS "$conf0" && t_fail "config sets INGEST_MIN_REPLICAS"
    start_mutt "$conf0" ingest
    wait_until 15 eval 'http POST "$URL" -H "Content-Type: application/json" -d "{}"; [ "$HTTP_STATUS" = 401 ]' ||
        t_fail "ingest route did not appear"
    r1 config resetstat >/dev/null
    before=$(r1 llen "$QUEUE")
    helper_signal STOP "$R2_PID" # no replica acknowledges: WAIT would show up as a 503
    for i in 1 2 3; do
        post "zero-$i"
        assert_status 200 "POST $i with INGEST_MIN_REPLICAS=0"
    done
    helper_signal CONT "$R2_PID"
    assert_eq $((before + 3)) "$(r1 llen "$QUEUE")" "primary LLEN"
    r1 info commandstats | tr -d '\r' | grep -q '^cmdstat_evalsha:' || t_fail "commandstats saw no push"
    assert_eq 0 "$(wait_calls)" "WAIT calls with INGEST_MIN_REPLICAS=0"
}

t_run "with a live replica every 200 is already on the replica" test_with_a_live_replica_every_200_is_already_on_the_replica
t_run "a push retried as EVAL after NOSCRIPT is waited for again" test_a_push_retried_as_eval_after_noscript_is_waited_for_again
t_run "without a replica ack the answer is 503 not_replicated and in doubt" test_without_a_replica_ack_the_answer_is_503_not_replicated_and_in_doubt
t_run "a request the script refuses keeps its own answer" test_a_request_the_script_refuses_keeps_its_own_answer
t_run "default INGEST_MIN_REPLICAS=0 never sends WAIT" test_default_zero_replicas_never_sends_wait
t_summary
