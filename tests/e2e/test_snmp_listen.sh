#!/usr/bin/env bash
# The native SNMP trap listener (issue 15 item 2, CONTRACT D39, D57, D58) with real senders from
# Debian's `snmp` package: snmptrap v1 (generic and enterprise-specific) and v2c, snmpinform v2c
# (answered: snmpinform exits 0), a wrong community dropped and counted, and the golden comparison
# with the shipped chain (real snmptrapd + conf/snmptrapd/mutt-traphandle -> POST /ingest) for the
# same traps. mutt runs the ingest role only, so events stay in mutt:ingest_queue. Test ports are
# free high ports, never 162 (D54).
. "$(dirname "$0")/lib.sh"

for d in snmptrap snmpinform; do
    command -v "$d" >/dev/null 2>&1 || t_skip no-snmptrapd "$d not installed (Debian package snmp)"
done
command -v jq >/dev/null 2>&1 || { echo "jq missing (tests/harness/deps.sh installs it)"; exit 1; }

CONF="$E2E_TMP/mutt.conf"
SNMP_PORT=$(free_port)
e2e_config "$CONF" SNMP_TRAP_PORT="$SNMP_PORT" "SNMP_COMMUNITIES=public, ops"
HANDLER="$E2E_ROOT/conf/snmptrapd/mutt-traphandle"
QUEUE=mutt:ingest_queue
rraw() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" --raw "$@" 2>/dev/null; }
qlen() { rraw LLEN "$QUEUE"; }
qlen_above() { [ "$(qlen)" -gt "$1" ]; }
queued_with() { rraw LRANGE "$QUEUE" 0 -1 | grep -F -- "$1" | head -n 1; }
newest() { rraw LINDEX "$QUEUE" 0; }
jq_get() { jq -r "$1" <<<"$2"; }
metric() { # metric RESULT: mutt_listener_messages_total{listener="snmp",result=RESULT}
    curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" |
        awk -v k="mutt_listener_messages_total{listener=\"snmp\",result=\"$1\"}" '$1 == k {printf "%d", $2; f=1} END {if (!f) print 0}'
}
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
set_dyn() { # set_dyn KEY VALUE|"" : writes (or deletes) mutt:config:KEY and announces it
    if [ -n "$2" ]; then rcli set "mutt:config:$1" "$2" >/dev/null; else rcli del "mutt:config:$1" >/dev/null; fi
    rcli publish mutt:config:updates "$1" >/dev/null
}
# probe_status_is CODE: an HTTP ingest of one event is answered CODE
probe_status_is() {
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' \
        --data-binary '{"hostname":"probe","message":"cap probe","timestamp":"2026-01-01T00:00:00Z"}'
    [ "$HTTP_STATUS" = "$1" ]
}
# cap_at_depth: max_ingest_queue_size = the queue's length, and in force (a probe is refused)
cap_at_depth() { set_dyn max_ingest_queue_size "$(qlen)"; probe_status_is 503; }
metric_above() { [ "$(metric "$1")" -gt "$2" ]; }
# Numeric OIDs only: no MIB is needed on either side.
trap_to() { snmptrap -On "$@" 2>"$E2E_TMP/snmptrap.err"; }

start_mutt "$CONF" ingest
URL="http://127.0.0.1:$INGEST_PORT/ingest"
grep -q "snmp: receiving v1/v2c traps" "$MUTT_LOG" || t_fail "listener did not start: $(tail -n 5 "$MUTT_LOG")"

test_v2c_trap_is_queued_in_the_traphandle_shape() {
    local before ev
    before=$(qlen)
    trap_to -v 2c -c public "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.9.9.41.2.0.1 \
        .1.3.6.1.4.1.9.9.41.1.2.3.1.5.1 s "link flap" .1.3.6.1.4.1.9.9.41.1.2.3.1.2.1 i 3 ||
        t_fail "snmptrap failed: $(cat "$E2E_TMP/snmptrap.err")"
    wait_until 10 qlen_above "$before" || t_fail "trap not queued within 10 s: $(tail -n 5 "$MUTT_LOG")"
    ev=$(queued_with '"trap_oid":".1.3.6.1.4.1.9.9.41.2.0.1"')
    [ -n "$ev" ] || t_fail "trap not in $QUEUE"
    assert_eq "127.0.0.1" "$(jq_get .source_ip "$ev")"
    assert_eq "127.0.0.1" "$(jq_get .hostname "$ev")" "hostname (no reverse DNS: the sender's address)"
    assert_eq "snmptrapd" "$(jq_get .source "$ev")"
    assert_eq 2 "$(jq_get '.variables | length' "$ev")" "variables (sysUpTime and snmpTrapOID are not variables)"
    assert_eq ".1.3.6.1.4.1.9.9.41.1.2.3.1.5.1=link flap" "$(jq_get '.variables[0] | "\(.oid)=\(.value)"' "$ev")"
    assert_eq ".1.3.6.1.4.1.9.9.41.1.2.3.1.2.1=3" "$(jq_get '.variables[1] | "\(.oid)=\(.value)"' "$ev")"
    [[ "$(jq_get .uptime "$ev")" =~ ^[0-9]+:[0-9]+:[0-9]{2}:[0-9]{2}\.[0-9]{2}$ ]] || t_fail "uptime: $(jq_get .uptime "$ev")"
    [[ "$(jq_get .timestamp "$ev")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] || t_fail "timestamp: $(jq_get .timestamp "$ev")"
    assert_contains "$(jq_get .message "$ev")" "SNMP trap .1.3.6.1.4.1.9.9.41.2.0.1" "message built at ingest (D9)"
    [ -n "$(jq_get ._event_id "$ev")" ] || t_fail "no _event_id"
    [ "$(metric accepted)" -ge 1 ] || t_fail "accepted not counted"
}

test_v1_generic_trap_gets_its_rfc3584_trap_oid() {
    local before ev
    before=$(qlen)
    # linkUp (generic 3) from agent 192.0.2.5, second community of the list
    trap_to -v 1 -c ops "127.0.0.1:$SNMP_PORT" .1.3.6.1.4.1.9 192.0.2.5 3 0 1234 .1.3.6.1.2.1.2.2.1.1.7 i 7 ||
        t_fail "snmptrap -v 1 failed: $(cat "$E2E_TMP/snmptrap.err")"
    wait_until 10 qlen_above "$before" || t_fail "v1 trap not queued"
    ev=$(queued_with '.1.3.6.1.2.1.2.2.1.1.7')
    assert_eq ".1.3.6.1.6.3.1.1.5.4" "$(jq_get .trap_oid "$ev")" "generic 3 -> snmpTraps.4"
    assert_eq "0:0:00:12.34" "$(jq_get .uptime "$ev")"
    assert_eq "192.0.2.5" "$(jq_get '.variables[] | select(.oid == ".1.3.6.1.6.3.18.1.3.0") | .value' "$ev")" "snmpTrapAddress.0"
    assert_eq "ops" "$(jq_get '.variables[] | select(.oid == ".1.3.6.1.6.3.18.1.4.0") | .value' "$ev")" "snmpTrapCommunity.0"
    assert_eq ".1.3.6.1.4.1.9" "$(jq_get '.variables[] | select(.oid == ".1.3.6.1.6.3.1.1.4.3.0") | .value' "$ev")" "snmpTrapEnterprise.0"
}

test_v1_enterprise_specific_trap_maps_to_enterprise_0_specific() {
    local before ev
    before=$(qlen)
    trap_to -v 1 -c public "127.0.0.1:$SNMP_PORT" .1.3.6.1.4.1.2636 192.0.2.9 6 17 99 .1.3.6.1.4.1.2636.3.1 s v1-specific ||
        t_fail "snmptrap -v 1 failed"
    wait_until 10 qlen_above "$before" || t_fail "v1 enterprise trap not queued"
    ev=$(queued_with 'v1-specific')
    assert_eq ".1.3.6.1.4.1.2636.0.17" "$(jq_get .trap_oid "$ev")" "enterprise.0.specific"
}

test_v2c_inform_is_answered_and_queued() {
    local before ev rc=0
    before=$(qlen)
    snmpinform -On -t 5 -r 0 -v 2c -c public "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.8072.2.3.0.2 \
        .1.3.6.1.4.1.8072.2.3.2.1 s inform-body >/dev/null 2>"$E2E_TMP/inform.err" || rc=$?
    assert_eq 0 "$rc" "snmpinform exit status (no Response PDU?): $(cat "$E2E_TMP/inform.err")"
    ev=$(queued_with 'inform-body')
    [ -n "$ev" ] || t_fail "inform answered but not queued"
    assert_eq ".1.3.6.1.4.1.8072.2.3.0.2" "$(jq_get .trap_oid "$ev")"
    assert_eq $((before + 1)) "$(qlen)"
}

test_wrong_community_is_dropped_and_counted() {
    local before bad0 rc=0
    bad0=$(metric bad_community)
    before=$(qlen)
    trap_to -v 2c -c private "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.99.0.1 .1.3.6.1.4.1.99.1 s wrong-community ||
        t_fail "snmptrap failed"
    # an inform with a wrong community gets no answer
    snmpinform -On -t 1 -r 0 -v 2c -c Public "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.99.0.2 \
        .1.3.6.1.4.1.99.1 s wrong-inform >/dev/null 2>&1 || rc=$?
    assert_ne 0 "$rc" "snmpinform with a wrong community must time out"
    # a good trap after them: once it is queued, the wrong ones have been read too
    trap_to -v 2c -c public "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.99.0.3 .1.3.6.1.4.1.99.1 s right-after ||
        t_fail "snmptrap failed"
    wait_until 10 qlen_above "$before" || t_fail "marker trap not queued"
    [ -z "$(queued_with wrong-community)" ] || t_fail "a trap with a wrong community was queued"
    [ -z "$(queued_with wrong-inform)" ] || t_fail "an inform with a wrong community was queued"
    assert_eq $((before + 1)) "$(qlen)"
    assert_eq $((bad0 + 2)) "$(metric bad_community)" "bad_community count"
}

test_garbage_datagram_is_counted_as_malformed() {
    local m0
    m0=$(metric malformed)
    printf 'not snmp at all' >/dev/udp/127.0.0.1/"$SNMP_PORT"
    wait_until 10 metric_above malformed "$m0" || t_fail "malformed datagram not counted"
    alive "$MUTT_PID" || t_fail "mutt died on a garbage datagram"
}

# UDP cannot push back: with the queue at its cap a trap is dropped and counted, an inform gets no
# Response (its sender would retry), and the process stays healthy; once there is room again the
# next trap is queued.
test_full_queue_drops_and_counts_and_informs_stay_unanswered() {
    local before d0 rc=0
    d0=$(metric dropped)
    wait_until 10 cap_at_depth || t_fail "dynamic cap not in force"
    before=$(qlen)
    trap_to -v 2c -c public "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.99.0.9 .1.3.6.1.4.1.99.1 s over-the-cap ||
        t_fail "snmptrap failed"
    wait_until 10 metric_above dropped "$d0" || t_fail "drop not counted: $(tail -n 5 "$MUTT_LOG")"
    snmpinform -On -t 1 -r 0 -v 2c -c public "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.99.0.10 \
        .1.3.6.1.4.1.99.1 s inform-over-the-cap >/dev/null 2>&1 || rc=$?
    assert_ne 0 "$rc" "an inform that could not be queued must not be answered"
    assert_eq "$before" "$(qlen)" "nothing queued over the cap"
    grep -q "snmp: .* dropped" "$MUTT_LOG" || t_fail "no drop summary in the log"
    http GET "http://127.0.0.1:$INGEST_PORT/health/live"
    assert_status 200 "live while dropping"
    set_dyn max_ingest_queue_size ""
    wait_until 10 probe_status_is 200 || t_fail "dynamic cap not lifted"
    before=$(qlen)
    trap_to -v 2c -c public "127.0.0.1:$SNMP_PORT" '' .1.3.6.1.4.1.99.0.11 .1.3.6.1.4.1.99.1 s room-again ||
        t_fail "snmptrap failed"
    wait_until 10 qlen_above "$before" || t_fail "trap not queued once there is room again"
    [ -z "$(queued_with over-the-cap)" ] || t_fail "the dropped trap was queued"
}

# D57: the native event equals what snmptrapd + the shipped traphandle post for the same trap,
# except timestamp and ids, and hostname: snmptrapd names the sender by a blocking reverse DNS
# lookup per trap ("localhost" here; with -n it even posts its transport string), the listener by
# its address (README, "SNMP traps"). snmptrapd runs the shipped configuration on a test port.
test_golden_native_equals_the_snmptrapd_chain() {
    local d
    for d in snmptrapd; do
        command -v "$d" >/dev/null 2>&1 || [ -x "/usr/sbin/$d" ] ||
            t_skip no-snmptrapd "$d not installed (Debian package snmptrapd)"
    done
    local port conf="$E2E_TMP/snmptrapd.conf" log="$E2E_TMP/snmptrapd.log"
    port=$(free_port)
    local wrap="$E2E_TMP/traphandle-wrap.sh"
    printf '#!/bin/sh\nexec sh %s "$@" 2>>%s\n' "$HANDLER" "$E2E_TMP/traphandle.err" >"$wrap"
    chmod +x "$wrap"
    sed -e "s|^snmpTrapdAddr .*|snmpTrapdAddr udp:127.0.0.1:$port|" \
        -e "s|/usr/local/libexec/mutt/mutt-traphandle /etc/mutt/traphandle.conf|$wrap /nonexistent|" \
        "$E2E_ROOT/conf/snmptrapd/snmptrapd.conf" >"$conf"
    grep -q "traphandle default $wrap" "$conf" || t_fail "could not point the shipped config at the handler"
    MUTT_INGEST_URL=$URL MUTT_INGEST_API_KEY=$INGEST_KEY \
        "$(command -v snmptrapd || echo /usr/sbin/snmptrapd)" -f -C -c "$conf" -Lf "$log" -p "$E2E_TMP/snmptrapd.pid" &
    echo $! >>"$E2E_TMP/pids"
    wait_until 10 grep -q 'NET-SNMP version' "$log" || { cat "$log" >&2; t_fail "snmptrapd did not start"; }

    local i before chain native strip='del(.timestamp, ._event_id, ._correlation_id, .hostname)'
    for i in 1 2 3; do
        before=$(qlen)
        golden_trap "$i" "127.0.0.1:$port" || t_fail "snmptrap (chain, trap $i) failed: $(cat "$E2E_TMP/snmptrap.err")"
        wait_until 15 qlen_above "$before" ||
            { cat "$E2E_TMP/traphandle.err" >&2; t_fail "trap $i not queued through snmptrapd within 15 s"; }
        chain=$(newest)
        before=$(qlen)
        golden_trap "$i" "127.0.0.1:$SNMP_PORT" || t_fail "snmptrap (native, trap $i) failed"
        wait_until 10 qlen_above "$before" || t_fail "trap $i not queued by the listener"
        native=$(newest)
        [ "$(jq -r .trap_oid <<<"$chain")" != null ] || t_fail "trap $i: chain event without trap_oid: $chain"
        assert_eq "$(jq -S -c "$strip" <<<"$chain")" "$(jq -S -c "$strip" <<<"$native")" "trap $i: native event vs the snmptrapd chain"
        assert_eq "127.0.0.1" "$(jq -r .hostname <<<"$native")" "trap $i: native hostname is the sender's address"
        [ -n "$(jq -r .hostname <<<"$chain")" ] || t_fail "trap $i: chain event without hostname"
    done
}
# golden_trap N HOST:PORT: the same trap for both receivers; every value type snmptrap can send,
# quotes, a backslash, a tab, an empty string, v1 generic and enterprise-specific.
golden_trap() {
    case $1 in
    1) trap_to -v 2c -c public "$2" 4242 .1.3.6.1.4.1.8072.2.3.0.1 .1.3.6.1.4.1.8072.2.3.2.1 i -17 \
        .1.3.6.1.4.1.8072.2.3.2.2 s "$(printf 'a"b\\c\ttab')" .1.3.6.1.4.1.8072.2.3.2.3 x 0aff00 \
        .1.3.6.1.4.1.8072.2.3.2.4 o .1.3.6.1.4.1.9.9 .1.3.6.1.4.1.8072.2.3.2.5 a 10.1.2.3 \
        .1.3.6.1.4.1.8072.2.3.2.6 t 500 .1.3.6.1.4.1.8072.2.3.2.7 c 7 .1.3.6.1.4.1.8072.2.3.2.8 u 8 \
        .1.3.6.1.4.1.8072.2.3.2.9 s "" .1.3.6.1.4.1.8072.2.3.2.10 s "two words" ;;
    2) trap_to -v 1 -c public "$2" .1.3.6.1.4.1.9 192.0.2.5 2 0 1234 .1.3.6.1.2.1.2.2.1.1.3 i 3 ;;
    3) trap_to -v 1 -c public "$2" .1.3.6.1.4.1.2636 198.51.100.1 6 42 777 .1.3.6.1.4.1.2636.3.9 s enterprise ;;
    esac
}

t_run "v2c trap queued in the traphandle's shape" test_v2c_trap_is_queued_in_the_traphandle_shape
t_run "v1 generic trap -> snmpTraps.(g+1)" test_v1_generic_trap_gets_its_rfc3584_trap_oid
t_run "v1 enterprise-specific -> enterprise.0.specific" test_v1_enterprise_specific_trap_maps_to_enterprise_0_specific
t_run "v2c inform answered and queued" test_v2c_inform_is_answered_and_queued
t_run "wrong community dropped and counted" test_wrong_community_is_dropped_and_counted
t_run "garbage datagram counted as malformed" test_garbage_datagram_is_counted_as_malformed
t_run "full queue: trap dropped and counted, inform unanswered" test_full_queue_drops_and_counts_and_informs_stay_unanswered
t_run "golden: native event = snmptrapd chain's" test_golden_native_equals_the_snmptrapd_chain
stop_mutt 0

# D56: with INGEST_REUSEPORT=true the trap socket is opened with SO_REUSEPORT, so another
# process may bind the same port with it (and only with it).
test_reuseport_lets_a_second_socket_share_the_trap_port() {
    python3 - "$SNMP_PORT" <<'PY' || t_fail "SO_REUSEPORT sharing of the trap port"
import socket, sys
port = int(sys.argv[1])
plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    plain.bind(("127.0.0.1", port))
    sys.exit("a socket without SO_REUSEPORT could bind the port: mutt is not listening on it")
except OSError:
    pass
shared = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
shared.bind(("127.0.0.1", port))  # raises EADDRINUSE unless mutt's socket has SO_REUSEPORT too
PY
}
CONF2="$E2E_TMP/mutt-reuse.conf"
e2e_config "$CONF2" SNMP_TRAP_PORT="$SNMP_PORT" INGEST_REUSEPORT=true
start_mutt "$CONF2" ingest
t_run "INGEST_REUSEPORT: the trap port is shared with SO_REUSEPORT" test_reuseport_lets_a_second_socket_share_the_trap_port
stop_mutt 0
t_summary
