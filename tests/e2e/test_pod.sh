#!/usr/bin/env bash
# Pod identity (CONTRACT terms, D16): a POD_NAME held by a live instance is refused (exit 2,
# naming the pod); one left behind by a crashed instance (kill -9) is taken over; a graceful stop
# deletes the key. Needs the harness Redis (and PostgreSQL for MIGRATE_ON_START), redis-cli.
. "$(dirname "$0")/lib.sh"

RCLI=(redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT")
POD=e2e-pod-$$
KEY=mutt:pod:$POD

# each instance gets its own ports; the pod name is what they share
conf_for() { # conf_for FILE
    INGEST_PORT= WEB_PORT= HEALTH_PORT= SINK_PORT=
    unset INGEST_PORT WEB_PORT HEALTH_PORT SINK_PORT
    e2e_config "$1" "POD_NAME=$POD" "HEARTBEAT_INTERVAL=2" "HEARTBEAT_EXPIRY=8"
}

test_second_instance_with_the_same_name_exits_2() {
    conf_for "$E2E_TMP/a.conf"
    start_mutt "$E2E_TMP/a.conf" ingest
    FIRST_PID=$MUTT_PID
    assert_ne "" "$("${RCLI[@]}" GET "$KEY")" "pod key written"
    conf_for "$E2E_TMP/b.conf"
    local rc=0 out
    out=$(timeout 30 "$MUTT_BIN" --config "$E2E_TMP/b.conf" --roles=ingest 2>&1) || rc=$?
    assert_eq 2 "$rc" "second instance exit status (output: ${out: -400})"
    assert_contains "$out" "POD_NAME=$POD is in use by another running instance"
    # the first one is untouched and still holds the key
    kill -0 "$FIRST_PID" || t_fail "the first instance died"
    assert_ne "" "$("${RCLI[@]}" GET "$KEY")" "pod key still held"

    # --- the first instance crashes: its name is taken over, not refused
    helper_signal KILL "$FIRST_PID"
    wait_until 5 bash -c "! kill -0 $FIRST_PID 2>/dev/null" || t_fail "first instance did not die"
    local ttl
    ttl=$("${RCLI[@]}" TTL "$KEY")
    [ "$ttl" -gt 0 ] || t_fail "the crashed instance's key should still be there (ttl $ttl)"
    conf_for "$E2E_TMP/c.conf"
    local t0=$SECONDS
    start_mutt "$E2E_TMP/c.conf" ingest
    grep -q "taking over POD_NAME=$POD" "$MUTT_LOG" || t_fail "no takeover logged"
    # taken over by watching one refresh period, not by waiting for the key to expire
    [ $((SECONDS - t0)) -lt 8 ] || t_fail "takeover took $((SECONDS - t0)) s"
    local token
    token=$("${RCLI[@]}" GET "$KEY")
    assert_ne "" "$token" "key held by the new instance"

    # --- a graceful stop deletes the key
    stop_mutt 0
    assert_eq 0 "$("${RCLI[@]}" EXISTS "$KEY")" "pod key after SIGTERM"
}

# one scenario: each step needs the processes of the one before (t_run runs tests in subshells)
t_run "POD_NAME: live holder -> exit 2; kill -9'd holder -> taken over; SIGTERM -> key deleted" \
    test_second_instance_with_the_same_name_exits_2
t_summary
