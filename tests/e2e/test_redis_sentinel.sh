#!/usr/bin/env bash
# End-to-end test of Redis Sentinel (issue 14 item 1, CONTRACT D37, D53) with the built binary
# against servers this script starts on free loopback ports in its temp dir (never 26379, D54):
# a primary, one replica and three sentinels (quorum 2). The harness's Redis is not used.
#   (a) REDIS_SENTINELS set (a dead sentinel first, the next one by host name, resolved off the
#       loop, REDIS_HOST unreachable): mutt finds the
#       primary, ingest writes to it, /health and `mutt health` name it, the sentinels are
#       "degraded" (one of them is down), --check-config finds the primary through them;
#   (b) kill -9 of the primary: the sentinels promote the replica and mutt's ingest answers 200
#       again, writing to the new primary, and /health names it (bounded polls, no sleeps as
#       synchronisation);
#   (c) the old primary comes back (the sentinels make it a replica) and an operator's SENTINEL
#       FAILOVER moves the primary back to it: mutt hears +switch-master and /health names the
#       new primary with no write needed to notice, and ingest writes there.
# Needs: MUTT_TEST_* (services.sh), MUTT_BIN, redis-server with --sentinel, redis-cli, jq.
source "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "jq is required (tests/harness/deps.sh installs it)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is required" >&2; exit 1; }

RS="$E2E_TMP/sentinel"
mkdir -p "$RS"
pick_port() { # a free port other than 26379 (the system sentinel's, D54)
    local p
    while :; do p=$(free_port); [ "$p" != 26379 ] && { echo "$p"; return; }; done
}
P_PORT=$(pick_port)
R_PORT=$(pick_port)
S1=$(pick_port)
S2=$(pick_port)
S3=$(pick_port)
DEAD=$(pick_port) # nothing listens there
QUEUE=mutt:ingest_queue
rcli() { local port=$1; shift; redis-cli -h 127.0.0.1 -p "$port" "$@"; }

redis_up() { # NAME PORT [ARGS...]: a data server in the foreground as a helper (RPID_<NAME>)
    local name=$1 port=$2
    shift 2
    mkdir -p "$RS/$name"
    spawn_helper "redis-$name" "$RS/$name.log" redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$RS/$name" --protected-mode no "$@"
    printf -v "RPID_$name" '%s' "$HELPER_PID"
    wait_until 15 rcli "$port" ping || t_fail "redis $name did not start on $port"
}

sentinel_up() { # NAME PORT
    local name=$1 port=$2
    cat >"$RS/$name.conf" <<CONF
port $port
bind 127.0.0.1
protected-mode no
dir $RS
sentinel monitor mymaster 127.0.0.1 $P_PORT 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 3000
sentinel parallel-syncs mymaster 1
CONF
    spawn_helper "sentinel-$name" "$RS/$name.log" redis-server "$RS/$name.conf" --sentinel
    wait_until 15 rcli "$port" ping || t_fail "sentinel $name did not start on $port"
}

# Every sentinel sees the replica and the two other sentinels (a failover needs both).
sentinels_settled() {
    local s v
    for s in "$S1" "$S2" "$S3"; do
        v=$(rcli "$s" sentinel master mymaster | paste - - | awk -F'\t' '$1=="num-slaves"{a=$2} $1=="num-other-sentinels"{b=$2} END{print a" "b}')
        [ "$v" = "1 2" ] || return 1
    done
}

redis_up p "$P_PORT"
redis_up r "$R_PORT" --replicaof 127.0.0.1 "$P_PORT"
wait_until 30 eval '[ "$(rcli "$R_PORT" info replication | tr -d "\r" | grep -c "^master_link_status:up")" = 1 ]' ||
    t_fail "the replica did not sync"
sentinel_up s1 "$S1"
sentinel_up s2 "$S2"
sentinel_up s3 "$S3"
wait_until 60 sentinels_settled || t_fail "sentinels did not discover each other and the replica"

e2e_config "$E2E_TMP/mutt.conf" REDIS_HOST=192.0.2.1 REDIS_PORT=1 \
    "REDIS_SENTINELS=127.0.0.1:$DEAD,localhost:$S1,127.0.0.1:$S2,127.0.0.1:$S3" \
    REDIS_CONNECT_TIMEOUT_MS=500 REDIS_RECONNECT_MAX_MS=1000 INGEST_TIMEOUT_MS=1500
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
EV='{"timestamp":"2026-01-01T00:00:00Z","hostname":"sentinel-host","message":"sentinel event","syslog_severity":6}'
post() { http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "$EV"; }
post_ok() { HTTP_TIMEOUT=3 post; [ "$HTTP_STATUS" = 200 ]; }
health() { curl -s -m 2 "http://127.0.0.1:$INGEST_PORT/health" | jq -r ".$1 // empty"; }
health_is() { [ "$(health "$1")" = "$2" ]; }

test_a_the_sentinels_name_the_primary() {
    wait_until 20 post_ok || t_fail "ingest did not answer 200: $HTTP_STATUS $HTTP_BODY"
    local before
    before=$(rcli "$P_PORT" llen "$QUEUE")
    post_ok || t_fail "ingest: $HTTP_STATUS $HTTP_BODY"
    assert_eq $((before + 1)) "$(rcli "$P_PORT" llen "$QUEUE")" "the event is on the primary"
    wait_until 10 health_is redis_primary "127.0.0.1:$P_PORT" || t_fail "/health redis_primary: [$(health redis_primary)]"
    assert_eq degraded "$(health redis_sentinels)" "one of four sentinels is down"
    local out
    out=$("$MUTT_BIN" --config "$E2E_TMP/mutt.conf" health --roles=ingest 2>&1) || true
    assert_contains "$out" "redis: primary 127.0.0.1:$P_PORT, sentinels degraded" "mutt health names the primary"
    out=$("$MUTT_BIN" --config "$E2E_TMP/mutt.conf" --roles=ingest --check-config 2>&1) || true
    assert_contains "$out" "name 127.0.0.1:$P_PORT as the primary of mymaster" "--check-config asks the sentinels"
    assert_contains "$out" "redis: ok 127.0.0.1:$P_PORT" "--check-config reaches the primary"
    # D53: SEC_002 judges the primary the sentinels announce (loopback here), not the ignored
    # REDIS_HOST (192.0.2.1, which alone would be critical)
    out=$("$MUTT_BIN" --config "$E2E_TMP/mutt.conf" check-config --environment production 2>&1) || true
    assert_contains "$out" "compliance: SEC_001" "the production profile was checked"
    assert_not_contains "$out" "SEC_002" "a loopback announced primary is not a violation"
    # no sentinel answers: said as a warning, never silently passed
    e2e_config "$E2E_TMP/nosentinel.conf" REDIS_HOST=127.0.0.1 "REDIS_SENTINELS=127.0.0.1:$DEAD" \
        REDIS_CONNECT_TIMEOUT_MS=500
    out=$("$MUTT_BIN" --config "$E2E_TMP/nosentinel.conf" check-config --environment production 2>&1) || true
    assert_contains "$out" "compliance: SEC_002 warning REDIS_SENTINELS: no sentinel named the primary"
}

test_b_kill_9_of_the_primary_mutt_follows_the_promoted_replica() {
    local t0 before
    helper_signal KILL "$RPID_p"
    t0=$(date +%s%N)
    # the sentinels promote the replica (down-after 1 s + election); mutt must follow by itself
    wait_until 60 eval '[ "$(rcli "$R_PORT" role | head -n 1)" = master ]' || t_fail "the replica was not promoted"
    wait_until 30 post_ok || t_fail "ingest did not recover after the failover: $HTTP_STATUS $HTTP_BODY"
    e2e_log "ingest answered 200 again $(( ($(date +%s%N) - t0) / 1000000 )) ms after kill -9 of the primary"
    before=$(rcli "$R_PORT" llen "$QUEUE")
    post_ok || t_fail "ingest: $HTTP_STATUS $HTTP_BODY"
    assert_eq $((before + 1)) "$(rcli "$R_PORT" llen "$QUEUE")" "the event is on the new primary"
    wait_until 10 health_is redis_primary "127.0.0.1:$R_PORT" || t_fail "/health redis_primary: [$(health redis_primary)]"
    grep -q "as the primary of mymaster (was 127.0.0.1:$P_PORT)" "$MUTT_LOG" || t_fail "the move was not logged"
}

start_mutt "$E2E_TMP/mutt.conf" ingest
test_c_sentinel_failover_is_heard_through_switch_master() {
    local before
    redis_up p "$P_PORT"
    # the sentinels turn the returning server into a replica of the current primary
    wait_until 60 eval '[ "$(rcli "$P_PORT" info replication | tr -d "\r" | grep -c "^master_link_status:up")" = 1 ]' ||
        t_fail "the old primary did not become a replica"
    wait_until 30 eval '[ "$(rcli "$S1" sentinel master mymaster | paste - - | awk -F"\t" "\$1==\"num-slaves\"{print \$2}")" = 1 ]' ||
        t_fail "the sentinels do not see the returned replica"
    wait_until 30 eval 'rcli "$S2" sentinel failover mymaster | grep -q OK' || t_fail "SENTINEL FAILOVER refused"
    wait_until 30 health_is redis_primary "127.0.0.1:$P_PORT" || t_fail "/health redis_primary: [$(health redis_primary)]"
    wait_until 10 grep -q "+switch-master mymaster from 127.0.0.1:$R_PORT to 127.0.0.1:$P_PORT" "$MUTT_LOG" ||
        t_fail "no +switch-master heard"
    wait_until 30 post_ok || t_fail "ingest after the switch: $HTTP_STATUS $HTTP_BODY"
    before=$(rcli "$P_PORT" llen "$QUEUE")
    post_ok || t_fail "ingest: $HTTP_STATUS $HTTP_BODY"
    assert_eq $((before + 1)) "$(rcli "$P_PORT" llen "$QUEUE")" "the event is on the primary the switch named"
}

t_run "(a) REDIS_SENTINELS: the primary is found, named by /health, mutt health and --check-config" \
    test_a_the_sentinels_name_the_primary
t_run "(b) kill -9 of the primary: mutt follows the promoted replica" \
    test_b_kill_9_of_the_primary_mutt_follows_the_promoted_replica
t_run "(c) SENTINEL FAILOVER back to the returned server: +switch-master moves mutt" \
    test_c_sentinel_failover_is_heard_through_switch_master
stop_mutt
t_summary
