#!/usr/bin/env bash
# End-to-end tests of the native syslog listeners (CONTRACT D39, D56, D57) with real senders:
# util-linux `logger` over UDP and TCP in RFC 3164 and RFC 5424 (LF and octet-counted framing),
# a python sender for streams split across reads and messages over 64 KiB, and Redis outages
# during TCP intake (the sender is held, nothing lost) and UDP intake (drops counted, still up).
# Never binds 514 (D54): the ports are free ephemeral ones. Needs: Redis (services.sh), logger,
# python3, MUTT_BIN. Run through tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
QUEUE=mutt:ingest_queue
UDP_PORT=$(free_port)
TCP_PORT=$(free_port)
TLS_PORT=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 -keyout "$E2E_TMP/tls.key" \
    -out "$E2E_TMP/tls.crt" >/dev/null 2>&1 || t_fail "openssl req failed"
e2e_config "$CONF" SYSLOG_UDP_PORT="$UDP_PORT" SYSLOG_TCP_PORT="$TCP_PORT" MAX_INGEST_QUEUE_SIZE=10000000 \
    SYSLOG_TLS_PORT="$TLS_PORT" SYSLOG_TLS_CERT_FILE="$E2E_TMP/tls.crt" SYSLOG_TLS_KEY_FILE="$E2E_TMP/tls.key"
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
llen() { rcli llen "$QUEUE"; }
metric() { # metric 'name{labels}' -> value (0 when absent)
    curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" | awk -v k="$1" '$1 == k {printf "%d", $2; f=1} END {if (!f) print 0}'
}
lm() { metric "mutt_listener_messages_total{listener=\"$1\",result=\"$2\"}"; }
# the queued event whose message contains TEXT (newest first), as JSON
find_event() { rcli lrange "$QUEUE" 0 -1 | grep -F -- "$1" | head -n 1; }
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"; }

start_mutt "$CONF" ingest

check_common() { # EVENT_JSON PROGRAM: the D57 fields every syslog event has
    local ev=$1
    [ -n "$ev" ] || t_fail "event not queued"
    assert_eq syslog "$(jget "$ev" source)" "source"
    assert_eq 127.0.0.1 "$(jget "$ev" source_ip)" "source_ip"
    assert_eq "$2" "$(jget "$ev" program)" "program"
    assert_eq "$(hostname)" "$(jget "$ev" hostname)" "hostname"
    assert_eq 20 "$(jget "$ev" facility)" "facility (local4)"
    assert_eq local4 "$(jget "$ev" facility_text)" "facility_text"
    assert_eq 3 "$(jget "$ev" syslog_severity)" "syslog_severity (err)"
    [ -n "$(jget "$ev" _event_id)" ] || t_fail "no _event_id: not stamped by ingest"
}

test_logger_udp_rfc3164_and_rfc5424() {
    local tag=e2eudp$RANDOM ev a0
    a0=$(lm syslog_udp accepted)
    logger -d -n 127.0.0.1 -P "$UDP_PORT" --rfc3164 -t "$tag" -p local4.err "udp bsd message $tag"
    logger -d -n 127.0.0.1 -P "$UDP_PORT" --rfc5424 -t "$tag" -p local4.err --msgid M42 --sd-id "meta@32473" \
        --sd-param 'zone="eu"' "udp 5424 message $tag"
    wait_until 10 eval '[ -n "$(find_event "udp 5424 message $tag")" ] && [ -n "$(find_event "udp bsd message $tag")" ]' ||
        t_fail "UDP messages not queued"
    ev=$(find_event "udp bsd message $tag")
    check_common "$ev" "$tag"
    ev=$(find_event "udp 5424 message $tag")
    check_common "$ev" "$tag"
    assert_eq "udp 5424 message $tag" "$(jget "$ev" message)" "5424 message"
    assert_eq M42 "$(jget "$ev" msgid)" "msgid"
    # logger adds its own timeQuality element: check ours is there as an object
    assert_eq '{"zone": "eu"}' "$(jget "$(jget "$ev" structured_data)" meta@32473)" "structured_data object"
    assert_eq $((a0 + 2)) "$(lm syslog_udp accepted)" "accepted counted"
}

test_logger_tcp_lf_and_octet_counted() {
    local tag=e2etcp$RANDOM ev a0
    a0=$(lm syslog_tcp accepted)
    logger -T -n 127.0.0.1 -P "$TCP_PORT" --rfc3164 -t "$tag" -p local4.err "tcp lf bsd $tag"
    logger -T -n 127.0.0.1 -P "$TCP_PORT" --rfc5424 -t "$tag" -p local4.err "tcp lf 5424 $tag"
    logger -T --octet-count -n 127.0.0.1 -P "$TCP_PORT" --rfc3164 -t "$tag" -p local4.err "tcp oc bsd $tag"
    logger -T --octet-count -n 127.0.0.1 -P "$TCP_PORT" --rfc5424 -t "$tag" -p local4.err --sd-id "x@1" \
        --sd-param 'k="v"' "tcp oc 5424 $tag"
    wait_until 10 eval '[ "$(lm syslog_tcp accepted)" -ge $((a0 + 4)) ]' || t_fail "TCP messages not all accepted"
    for m in "tcp lf bsd" "tcp lf 5424" "tcp oc bsd" "tcp oc 5424"; do
        ev=$(find_event "$m $tag")
        check_common "$ev" "$tag"
    done
    assert_eq "tcp oc 5424 $tag" "$(jget "$(find_event "tcp oc 5424 $tag")" message)"
    assert_eq '{"k": "v"}' "$(jget "$(jget "$(find_event "tcp oc 5424 $tag")" structured_data)" x@1)" "structured_data"
}

# sender.py PORT MODE N [PREFIX]: MODE split = N octet-counted and N LF frames on two connections,
# written in 7-byte pieces with TCP_NODELAY (frames split across reads); long = one 100,000-byte
# message per framing, each followed by a short one; stream = N octet-counted messages written as
# fast as the socket takes them; prints "blocked" once a 2 s send timeout expires, "sent N" at the end.
cat >"$E2E_TMP/sender.py" <<'EOF'
import socket, sys, time
port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
prefix = sys.argv[4] if len(sys.argv) > 4 else "m"
def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def oc(msg):
    b = msg.encode()
    return str(len(b)).encode() + b" " + b
if mode == "split":
    for framing in ("oc", "lf"):
        s = conn()
        data = b"".join(oc("<165>1 2026-01-01T00:00:00Z h app - - - %s %s %d" % (prefix, framing, i)) if framing == "oc"
                        else ("<165>Jan  1 00:00:00 h app: %s %s %d\n" % (prefix, framing, i)).encode() for i in range(n))
        for k in range(0, len(data), 7):
            s.sendall(data[k:k + 7])
            if k % 700 == 0:
                time.sleep(0.001)
        s.close()
elif mode == "long":
    big = "x" * 100000
    s = conn()
    s.sendall(oc("<165>1 2026-01-01T00:00:00Z h app - - - %s oc-big %s" % (prefix, big)) + oc("<165>1 - h app - - - %s oc-after" % prefix))
    s.close()
    s = conn()
    s.sendall(("<165>Jan  1 00:00:00 h app: %s lf-big %s\n<165>Jan  1 00:00:00 h app: %s lf-after\n" % (prefix, big, prefix)).encode())
    s.close()
elif mode == "tls":
    import ssl
    ctx = ssl.create_default_context(cafile=sys.argv[5])
    ctx.check_hostname = False
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    data = b"".join(oc("<165>1 - h app - - - %s %d" % (prefix, i)) for i in range(n))
    for k in range(0, len(data), 1000):
        s.sendall(data[k:k + 1000])
    s.unwrap()
    s.close()
elif mode == "stream":
    s = conn()
    s.settimeout(2)
    pad = "p" * 150
    data = b"".join(oc("<165>1 - h app - - - %s %d %s" % (prefix, i, pad)) for i in range(n))
    off, told = 0, False
    while off < len(data):
        try:
            off += s.send(data[off:off + 65536])
        except socket.timeout:
            if not told:
                print("blocked", flush=True)
                told = True
            s.settimeout(None)
    s.close()
    print("sent %d" % n, flush=True)
EOF

test_stream_split_across_reads_arrives_whole_and_in_order() {
    local p=split$RANDOM n=300 got
    python3 "$E2E_TMP/sender.py" "$TCP_PORT" split $n "$p"
    wait_until 20 eval '[ "$(rcli lrange "$QUEUE" 0 -1 | grep -c -F "$p ")" -ge $((2 * n)) ]' ||
        t_fail "not every split frame arrived: $(rcli lrange "$QUEUE" 0 -1 | grep -c -F "$p ")"
    for f in oc lf; do
        # LPUSH: newest first; reversed, the messages must be 0..n-1 in order, each exactly once
        got=$(rcli lrange "$QUEUE" 0 -1 | grep -F "$p $f " | tac | python3 -c '
import json, sys
print(",".join(json.loads(l)["message"].rsplit(" ", 1)[1] for l in sys.stdin))')
        assert_eq "$(seq -s, 0 $((n - 1)))" "$got" "$f frames whole and in order"
    done
}

test_message_over_64k_is_truncated_and_counted() {
    local p=long$RANDOM t0 ev
    t0=$(lm syslog_tcp truncated)
    python3 "$E2E_TMP/sender.py" "$TCP_PORT" long 0 "$p"
    wait_until 10 eval '[ -n "$(find_event "$p lf-after")" ] && [ -n "$(find_event "$p oc-after")" ]' ||
        t_fail "messages after the long ones lost"
    assert_eq $((t0 + 2)) "$(lm syslog_tcp truncated)" "both long messages counted truncated"
    for f in oc lf; do
        ev=$(find_event "$p $f-big")
        [ -n "$ev" ] || t_fail "$f long message not queued"
        assert_eq true "$(jget "$ev" truncated)" "$f: truncated flag"
        [ "${#ev}" -le 65536 ] || t_fail "$f: stored event is ${#ev} bytes, over MAX_EVENT_BYTES"
        [ "${#ev}" -ge 60000 ] || t_fail "$f: cut far more than needed (${#ev} bytes)"
        local want="$p $f-after"
        [ $f = lf ] && want="app: $want" # RFC 3164: the message keeps its TAG
        assert_eq "$want" "$(jget "$(find_event "$p $f-after")" message)" "$f: next frame intact"
    done
}

set_dyn() { # set_dyn KEY VALUE|"" : writes (or deletes) mutt:config:KEY and announces it
    if [ -n "$2" ]; then rcli set "mutt:config:$1" "$2" >/dev/null; else rcli del "mutt:config:$1" >/dev/null; fi
    rcli publish mutt:config:updates "$1" >/dev/null
}
probe_status_is() { # an HTTP ingest of one event is answered CODE
    http POST "http://127.0.0.1:$INGEST_PORT/ingest" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' \
        --data-binary '{"hostname":"probe","message":"cap probe","timestamp":"2026-01-01T00:00:00Z"}'
    [ "$HTTP_STATUS" = "$1" ]
}
cap_at_depth() { set_dyn max_ingest_queue_size "$(llen)"; probe_status_is 503; }

# Queue full (the dynamic cap at the queue's depth): the TCP sender is held, not dropped, and
# everything arrives once there is room; a datagram meanwhile is dropped and counted.
test_full_queue_holds_the_tcp_sender_and_drops_udp() {
    local p=full$RANDOM n=100000 depth d0 spid
    wait_until 10 cap_at_depth || t_fail "dynamic cap not in force"
    depth=$(llen)
    d0=$(lm syslog_udp dropped)
    python3 "$E2E_TMP/sender.py" "$TCP_PORT" stream $n "$p" >"$E2E_TMP/full.out" &
    spid=$!
    wait_until 30 grep -q blocked "$E2E_TMP/full.out" || t_fail "the sender was never held with the queue full"
    grep -q "sent" "$E2E_TMP/full.out" && t_fail "the sender finished while the queue was full"
    logger -d -n 127.0.0.1 -P "$UDP_PORT" -t "$p" "udp over the cap $p"
    wait_until 10 eval '[ "$(lm syslog_udp dropped)" -gt '"$d0"' ]' || t_fail "datagram over the cap not counted dropped"
    assert_eq "$depth" "$(llen)" "nothing queued over the cap"
    set_dyn max_ingest_queue_size ""
    wait_until 10 probe_status_is 200 || t_fail "dynamic cap not lifted"
    wait "$spid" || t_fail "sender failed"
    wait_until 60 eval '[ "$(rcli lrange "$QUEUE" 0 -1 | grep -c -F "$p ")" -ge $n ]' ||
        t_fail "only $(rcli lrange "$QUEUE" 0 -1 | grep -c -F "$p ") of $n queued after the cap was lifted"
    assert_eq "$n" "$(rcli lrange "$QUEUE" 0 -1 | grep -F "$p " | sort -u | wc -l)" "sent = queued, each once"
    [ -z "$(find_event "udp over the cap $p")" ] || t_fail "the dropped datagram was queued"
}

test_redis_outage_holds_the_tcp_sender_and_loses_nothing() {
    local p=hold$RANDOM n=100000 before
    rcli del "$QUEUE" >/dev/null
    bash "$SERVICES" stop-redis
    python3 "$E2E_TMP/sender.py" "$TCP_PORT" stream $n "$p" >"$E2E_TMP/stream.out" &
    local spid=$!
    wait_until 30 grep -q blocked "$E2E_TMP/stream.out" || t_fail "the sender was never held while Redis was down"
    grep -q "sent" "$E2E_TMP/stream.out" && t_fail "the sender finished while Redis was down"
    alive "$MUTT_PID" || t_fail "mutt died during the outage"
    bash "$SERVICES" start-redis
    wait "$spid" || t_fail "sender failed"
    grep -q "sent $n" "$E2E_TMP/stream.out" || t_fail "sender did not finish"
    wait_until 60 eval '[ "$(llen)" -ge $n ]' || t_fail "only $(llen) of $n queued after Redis returned"
    assert_eq "$n" "$(llen)" "sent = queued (nothing lost, nothing twice)"
    assert_eq "$n" "$(rcli lrange "$QUEUE" 0 -1 | grep -F "$p " | sort -u | wc -l)" "distinct messages"
}

test_redis_outage_during_udp_intake_drops_and_counts() {
    local tag=drop$RANDOM d0 i
    d0=$(lm syslog_udp dropped)
    bash "$SERVICES" stop-redis
    wait_until 20 eval '! curl -s -m 2 "http://127.0.0.1:$INGEST_PORT/health" | grep -q "\"redis\":\"up\""' || true
    for i in $(seq 1 50); do
        logger -d -n 127.0.0.1 -P "$UDP_PORT" -t "$tag" "dropped $i"
    done
    wait_until 10 eval '[ "$(lm syslog_udp dropped)" -ge $((d0 + 50)) ]' || t_fail "drops not counted: $(lm syslog_udp dropped)"
    assert_eq $((d0 + 50)) "$(lm syslog_udp dropped)" "every datagram sent while Redis was down dropped and counted"
    http_status_is 200 GET "http://127.0.0.1:$INGEST_PORT/health/live" || t_fail "process not live"
    grep -q "syslog UDP: .* dropped" "$MUTT_LOG" || t_fail "no drop summary in the log"
    bash "$SERVICES" start-redis
    wait_until 30 eval 'logger -d -n 127.0.0.1 -P "$UDP_PORT" -t "$tag" "after outage"; [ -n "$(find_event "after outage")" ]' ||
        t_fail "UDP intake did not resume after Redis returned"
    alive "$MUTT_PID" || t_fail "mutt died or was restarted"
}

test_tls_with_openssl_s_client_and_a_python_stream() {
    local p=tls$RANDOM a0 n=2000 ev
    a0=$(lm syslog_tls accepted)
    printf '%s' "$(python3 -c 'import sys
for m in sys.argv[1:]:
    b = m.encode(); sys.stdout.write("%d %s" % (len(b), m))' \
        "<163>1 2026-01-01T00:00:00Z - $p-app 77 ID1 [o@1 a=\"b\"] $p first" "<163>1 - - $p-app - - - $p second")" |
        openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$TLS_PORT" -CAfile "$E2E_TMP/tls.crt" >/dev/null 2>&1 ||
        true # s_client exits non-zero when the server closes after EOF; the events below decide
    wait_until 10 eval '[ -n "$(find_event "$p second")" ]' || t_fail "s_client messages not queued"
    ev=$(find_event "$p first")
    assert_eq 127.0.0.1 "$(jget "$ev" source_ip)" "source_ip"
    assert_eq "$p-app" "$(jget "$ev" program)" "program"
    assert_eq 77 "$(jget "$ev" procid)" "procid"
    assert_eq '{"a": "b"}' "$(jget "$(jget "$ev" structured_data)" o@1)" "structured_data"
    assert_eq 3 "$(jget "$ev" syslog_severity)" "severity"
    python3 "$E2E_TMP/sender.py" "$TLS_PORT" tls $n "$p-s" "$E2E_TMP/tls.crt" || t_fail "python TLS sender failed"
    wait_until 20 eval '[ "$(rcli lrange "$QUEUE" 0 -1 | grep -c -F "$p-s ")" -ge $n ]' ||
        t_fail "only $(rcli lrange "$QUEUE" 0 -1 | grep -c -F "$p-s ") of $n TLS messages queued"
    assert_eq $((a0 + 2 + n)) "$(lm syslog_tls accepted)" "TLS accepted counted"
}

test_sigterm_exits_0() {
    stop_mutt 0
}

t_run "logger over UDP: RFC 3164 and RFC 5424 with the D57 fields" test_logger_udp_rfc3164_and_rfc5424
t_run "logger over TCP: LF and octet-counted, both formats" test_logger_tcp_lf_and_octet_counted
t_run "TCP stream split across reads: whole and in order" test_stream_split_across_reads_arrives_whole_and_in_order
t_run "message over 64 KiB: truncated, counted, next frame intact" test_message_over_64k_is_truncated_and_counted
t_run "TLS: openssl s_client and a python stream" test_tls_with_openssl_s_client_and_a_python_stream
t_run "queue full: TCP sender held and nothing lost, UDP dropped and counted" test_full_queue_holds_the_tcp_sender_and_drops_udp
t_run "Redis outage during TCP intake: sender held, nothing lost" test_redis_outage_holds_the_tcp_sender_and_loses_nothing
bash "$SERVICES" start-redis >/dev/null 2>&1 || true
t_run "Redis outage during UDP intake: drops counted, still live" test_redis_outage_during_udp_intake_drops_and_counts
bash "$SERVICES" start-redis >/dev/null 2>&1 || true
t_run "SIGTERM exits 0" test_sigterm_exits_0
t_summary
