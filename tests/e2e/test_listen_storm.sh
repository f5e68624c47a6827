#!/usr/bin/env bash
# Per-source storm control of the native listeners (issue 15 item 3, CONTRACT D39
# LISTENER_SOURCE_MAX_RATE): a sender over its rate has the excess dropped and counted
# (mutt_listener_messages_total{result="rate_limited"}) on syslog UDP, syslog TCP and the SNMP
# trap listener, a TCP connection loses only the suppressed frames (nothing twice), and each
# sender's suppressions come back as one summary event per minute in the ingest queue. The bursts
# are sent far faster than the 5/s allowed; the only bound relied on is that 200 messages reach
# the listener within 19 s. Waits about a minute for the summaries. Never binds 514/162 (D54).
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
QUEUE=mutt:ingest_queue
UDP_PORT=$(free_port)
TCP_PORT=$(free_port)
SNMP_PORT=$(free_port)
RATE=5
N=200
e2e_config "$CONF" SYSLOG_UDP_PORT="$UDP_PORT" SYSLOG_TCP_PORT="$TCP_PORT" SNMP_TRAP_PORT="$SNMP_PORT" \
    LISTENER_SOURCE_MAX_RATE=$RATE MAX_INGEST_QUEUE_SIZE=10000000
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
metric() {
    curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" | awk -v k="$1" '$1 == k {printf "%d", $2; f=1} END {if (!f) print 0}'
}
lm() { metric "mutt_listener_messages_total{listener=\"$1\",result=\"$2\"}"; }
queued_with() { rcli lrange "$QUEUE" 0 -1 | grep -c -F -- "$1" || true; }
# summed 'suppressed' of the queued summary events of LISTENER from 127.0.0.1
suppressed_sum() {
    rcli lrange "$QUEUE" 0 -1 | python3 -c 'import json, sys
t = 0
for l in sys.stdin:
    try: e = json.loads(l)
    except ValueError: continue
    if e.get("source") == "mutt-listener" and e.get("listener") == sys.argv[1] and e.get("hostname") == "127.0.0.1":
        t += e["suppressed"]
print(t)' "$1"
}

# burst.py udp|tcp|raw PORT N PREFIX [FILE]: N syslog datagrams, N octet-counted frames on one TCP
# connection, or FILE's bytes as N datagrams, as fast as they go
cat >"$E2E_TMP/burst.py" <<'PY'
import socket, sys, time
mode, port, n, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        s.sendto(("<165>1 - h app - - - %s %d" % (prefix, i)).encode(), ("127.0.0.1", port))
        if i % 20 == 19:
            time.sleep(0.002) # the socket buffer is not what is tested
elif mode == "tcp":
    s = socket.create_connection(("127.0.0.1", port))
    out = b""
    for i in range(n):
        m = ("<165>1 - h app - - - %s %d" % (prefix, i)).encode()
        out += str(len(m)).encode() + b" " + m
    s.sendall(out)
    s.close()
else:
    data = open(sys.argv[5], "rb").read()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        s.sendto(data, ("127.0.0.1", port))
        if i % 20 == 19:
            time.sleep(0.002)
PY

start_mutt "$CONF" ingest

# burst_is_shaped LISTENER: of N sent, all were judged, at least the burst passed, most did not
burst_is_shaped() {
    local l=$1 a r
    wait_until 20 eval '[ $(( $(lm '"$l"' accepted) + $(lm '"$l"' rate_limited) )) -ge $N ]' ||
        t_fail "$l: only $(lm "$l" accepted) accepted + $(lm "$l" rate_limited) rate_limited of $N"
    a=$(lm "$l" accepted)
    r=$(lm "$l" rate_limited)
    assert_eq $N $((a + r)) "$l: every message accepted or rate_limited"
    [ "$a" -ge $RATE ] || t_fail "$l: the one-second burst ($RATE) did not pass: $a accepted"
    [ "$a" -lt $((N / 2)) ] || t_fail "$l: $a of $N accepted at $RATE/s: not shaped"
    assert_eq 0 "$(lm "$l" dropped)" "$l: nothing dropped for another reason"
}

test_udp_burst_over_the_rate_is_counted_rate_limited() {
    python3 "$E2E_TMP/burst.py" udp "$UDP_PORT" $N stormudp
    burst_is_shaped syslog_udp
    wait_until 10 eval '[ "$(queued_with "stormudp ")" -eq "$(lm syslog_udp accepted)" ]' ||
        t_fail "queued $(queued_with "stormudp ") != accepted $(lm syslog_udp accepted)"
}

test_tcp_burst_loses_only_the_suppressed_frames() {
    sleep 1.2 # the UDP burst emptied 127.0.0.1's bucket (one per sender, all syslog listeners): a second refills it
    python3 "$E2E_TMP/burst.py" tcp "$TCP_PORT" $N stormtcp
    burst_is_shaped syslog_tcp
    wait_until 10 eval '[ "$(queued_with "stormtcp ")" -eq "$(lm syslog_tcp accepted)" ]' ||
        t_fail "queued $(queued_with "stormtcp ") != accepted $(lm syslog_tcp accepted)"
    assert_eq "$(lm syslog_tcp accepted)" "$(rcli lrange "$QUEUE" 0 -1 | grep -o 'stormtcp [0-9]*' | sort -u | wc -l)" \
        "each accepted frame queued once"
}

test_snmp_burst_over_the_rate_is_counted_rate_limited() {
    python3 "$E2E_TMP/burst.py" raw "$SNMP_PORT" $N x "$E2E_ROOT/tests/fuzz/corpus/fuzz_snmp_trap/v2c_trap"
    burst_is_shaped snmp
}

test_one_summary_event_per_source_carries_the_suppressed_count() {
    local want_syslog want_snmp
    want_syslog=$(( $(lm syslog_udp rate_limited) + $(lm syslog_tcp rate_limited) ))
    want_snmp=$(lm snmp rate_limited)
    [ "$want_syslog" -gt 0 ] && [ "$want_snmp" -gt 0 ] || t_fail "nothing was rate limited before"
    # the window closes a minute after the first suppression
    wait_until 90 eval '[ "$(suppressed_sum syslog)" -ge '"$want_syslog"' ] && [ "$(suppressed_sum snmp)" -ge '"$want_snmp"' ]' ||
        t_fail "summaries: syslog $(suppressed_sum syslog) of $want_syslog, snmp $(suppressed_sum snmp) of $want_snmp"
    assert_eq "$want_syslog" "$(suppressed_sum syslog)" "syslog summaries add up to the rate_limited count"
    assert_eq "$want_snmp" "$(suppressed_sum snmp)" "snmp summaries add up to the rate_limited count"
    local ev
    ev=$(rcli lrange "$QUEUE" 0 -1 | grep -F '"listener":"syslog"' | head -n 1)
    python3 -c 'import json, sys
e = json.loads(sys.argv[1])
assert e["source_ip"] == "127.0.0.1", e
assert "LISTENER_SOURCE_MAX_RATE=5/s" in e["message"], e
assert e["_event_id"], e' "$ev" || t_fail "summary event shape: $ev"
}

test_sigterm_exits_0() {
    stop_mutt 0
}

t_run "UDP burst over LISTENER_SOURCE_MAX_RATE: excess counted rate_limited" test_udp_burst_over_the_rate_is_counted_rate_limited
t_run "TCP burst: only the suppressed frames are lost, none twice" test_tcp_burst_loses_only_the_suppressed_frames
t_run "SNMP trap burst: excess counted rate_limited" test_snmp_burst_over_the_rate_is_counted_rate_limited
t_run "one summary event per source per minute with the suppressed count" test_one_summary_event_per_source_carries_the_suppressed_count
t_run "SIGTERM exits 0" test_sigterm_exits_0
t_summary
