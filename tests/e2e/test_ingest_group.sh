#!/usr/bin/env bash
# End-to-end tests of ingest's group commit (CONTRACT D49, D50, D7) against the harness Redis:
# requests that arrive in one loop turn share one script call, each gets its own verdict in
# arrival order, and that call goes on ingest's own Redis connection. To make N requests arrive
# in one loop turn without any timing, the client opens N keep-alive connections, stops mutt
# (SIGSTOP), writes the N requests, and resumes it (SIGCONT): the next epoll_wait returns every
# socket at once. MONITOR shows which connection sent which command.
# Needs: Redis (services.sh), python3, MUTT_BIN. Run through tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
QUEUE=mutt:ingest_queue
# Heartbeats far apart: the paused-connection test needs the shared connection to have no write
# of its own queued while Redis holds writes back. The command timeout (D48) outlasts the ingest
# deadline, so a push answered 503 by its deadline still runs once Redis lets it.
e2e_config "$CONF" INGEST_TIMEOUT_MS=8000 REDIS_COMMAND_TIMEOUT_MS=20000 HEARTBEAT_INTERVAL=3600 \
    HEARTBEAT_EXPIRY=7200
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
set_dyn() { # set_dyn KEY VALUE|"" : writes (or deletes) mutt:config:KEY and announces it
    if [ -n "$2" ]; then rcli set "mutt:config:$1" "$2" >/dev/null; else rcli del "mutt:config:$1" >/dev/null; fi
    rcli publish mutt:config:updates "$1" >/dev/null
}
calls() { # mutt_ingest_script_calls_total
    curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" |
        awk '$1 == "mutt_ingest_script_calls_total" {printf "%d", $2; f=1} END {if (!f) print 0}'
}
POD=$(awk -F= '$1 == "POD_NAME" {print $2}' "$CONF")
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"

# group_post SPEC_JSON OUT_JSON: SPEC is [{"cid":..,"body":..},..]; OUT gets [{"status":..,
# "body":..},..] in the same order. The requests are written while mutt is stopped.
cat >"$E2E_TMP/group_post.py" <<'EOF'
import json, os, signal, socket, sys

port, key, pid, spec_path, out_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
spec = json.load(open(spec_path))

def request(body, cid=None, with_key=True):
    head = "POST /api/v2/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if with_key:
        head += "X-API-KEY: %s\r\n" % key
    if cid:
        head += "X-Correlation-ID: %s\r\n" % cid
    data = body.encode()
    return (head + "Content-Length: %d\r\n\r\n" % len(data)).encode() + data

def response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed before the headers")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed in the body")
        rest += chunk
    return status, rest[:length].decode()

socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in spec]
for s in socks:  # every connection accepted and idle (a 401 never reaches Redis)
    s.sendall(request("{}", with_key=False))
    st, _ = response(s)
    if st != 401:
        raise SystemExit("warm-up answered %d" % st)
os.kill(pid, signal.SIGSTOP)
# kill() returns before the signal is acted on: wait until the process is really stopped, or the
# first request may be read (and pushed alone) before the stop takes effect
import time
deadline = time.time() + 5
while open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "T":
    if time.time() > deadline:
        os.kill(pid, signal.SIGCONT)
        raise SystemExit("mutt did not stop within 5 s")
    time.sleep(0.001)
try:
    for s, r in zip(socks, spec):
        s.sendall(request(r["body"], r["cid"]))
finally:
    os.kill(pid, signal.SIGCONT)
out = []
for s in socks:
    st, body = response(s)
    out.append({"status": st, "body": body})
json.dump(out, open(out_path, "w"))
EOF

# monitor_start / monitor_stop: MONITOR into a fresh $MON while a group runs (each t_run is a
# subshell: the file name must not come from a counter).
monitor_start() {
    MON_N=$RANDOM$RANDOM
    MON="$E2E_TMP/monitor.$MON_N.txt"
    : >"$MON"
    redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" monitor >>"$MON" 2>&1 &
    MON_PID=$!
    wait_until 5 grep -q OK "$MON" || t_fail "MONITOR did not start"
}
monitor_stop() {
    local mark=monitor-end-$MON_N
    rcli echo "$mark" >/dev/null # the monitor has seen everything before this
    wait_until 5 grep -q "$mark" "$MON" || t_fail "MONITOR did not catch up"
    kill "$MON_PID" 2>/dev/null || true
    wait "$MON_PID" 2>/dev/null || true
}

start_mutt "$CONF" ingest,web
wait_until 15 eval 'http POST "$URL" -H "Content-Type: application/json" -d "{}"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "ingest route did not appear within 15 s (last status $HTTP_STATUS)" >&2; exit 1; }

# ------------------------------------------------------------------------------------ tests
test_one_loop_turn_of_single_events_is_one_script_call_with_a_verdict_each() {
    local n=16 run=grp$RANDOM$RANDOM before calls0
    before=$(rcli llen "$QUEUE")
    calls0=$(calls)
    python3 - "$run" "$n" >"$E2E_TMP/spec.json" <<'EOF'
import json, sys
run, n = sys.argv[1], int(sys.argv[2])
print(json.dumps([{"cid": "%s-%d" % (run, i),
                   "body": json.dumps({"timestamp": "2026-01-01T00:00:00Z", "hostname": "%s-host-%d" % (run, i),
                                       "message": "group event %d" % i})} for i in range(n)]))
EOF
    monitor_start
    python3 "$E2E_TMP/group_post.py" "$INGEST_PORT" "$INGEST_KEY" "$MUTT_PID" "$E2E_TMP/spec.json" "$E2E_TMP/out.json" ||
        t_fail "group client failed"
    monitor_stop
    # each request its own 200, its own correlation id, one event
    python3 - "$run" "$n" "$E2E_TMP/out.json" <<'EOF' || t_fail "verdicts"
import json, sys
run, n, out = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
assert len(out) == n, out
for i, r in enumerate(out):
    assert r["status"] == 200, (i, r)
    b = json.loads(r["body"])
    assert b["accepted"] == 1 and b["correlation_id"] == "%s-%d" % (run, i), (i, b)
EOF
    assert_eq $((before + n)) "$(rcli llen "$QUEUE")" "queue grew by the group"
    assert_eq $((calls0 + 1)) "$(calls)" "mutt_ingest_script_calls_total after the group"
    # exactly one EVALSHA carried the group, and it carried every event
    local calls line
    calls=$(grep -c "\"EVALSHA\".*$run-host-" "$MON" || true)
    assert_eq 1 "$calls" "EVALSHA calls carrying the group's events (MONITOR)"
    line=$(grep "\"EVALSHA\".*$run-host-" "$MON")
    local i
    for i in $(seq 0 $((n - 1))); do
        assert_contains "$line" "$run-host-$i\\\"" "event $i in the group's call"
    done
    # every queued event has its own _event_id and its own request's correlation id
    rcli lrange "$QUEUE" 0 $((n - 1)) >"$E2E_TMP/queued.txt"
    python3 - "$run" "$n" "$E2E_TMP/queued.txt" <<'EOF' || t_fail "queued events"
import json, sys
run, n = sys.argv[1], int(sys.argv[2])
evs = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
mine = [e for e in evs if e["hostname"].startswith(run + "-host-")]
assert len(mine) == n, len(mine)
assert len({e["_event_id"] for e in mine}) == n
for e in mine:
    i = e["hostname"].rsplit("-", 1)[1]
    assert e["_correlation_id"] == "%s-%s" % (run, i), e
EOF
}

test_the_group_call_goes_on_the_ingest_connection_not_the_shared_one() {
    local run=conn$RANDOM$RANDOM addr
    wait_until 15 eval 'rcli client list | grep -q "name=mutt:$POD:ingest"' ||
        t_fail "no Redis connection named mutt:$POD:ingest: $(rcli client list)"
    monitor_start
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' \
        --data-binary "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"$run\",\"message\":\"m\"}"
    assert_status 200
    monitor_stop
    # MONITOR lines: <time> [<db> <addr>] "EVALSHA" ...
    addr=$(grep "\"EVALSHA\".*$run" "$MON" | head -n 1 | sed -n 's/^[0-9.]* \[[0-9]* \([^]]*\)\].*/\1/p')
    [ -n "$addr" ] || t_fail "the ingest EVALSHA is not in MONITOR"
    local client
    client=$(rcli client list | grep " addr=$addr " || true)
    assert_contains "$client" "name=mutt:$POD:ingest" "connection that sent the push"
}

test_a_group_against_the_cap_accepts_the_first_that_fit_in_arrival_order() {
    local run=cap$RANDOM$RANDOM depth
    local nine
    nine=$(python3 -c 'import json; print(json.dumps([{"timestamp": "2026-01-01T00:00:00Z", "hostname": "probe", "message": "m"}] * 9))')
    set_dyn max_ingest_queue_size 8
    # in force once a 9-event batch is refused against the empty queue
    wait_until 10 eval 'rcli del "$QUEUE" >/dev/null; http POST "$URL" -H "X-API-KEY: $INGEST_KEY" \
        -H "Content-Type: application/json" --data-binary "$nine"; [ "$HTTP_STATUS" = 503 ]' ||
        t_fail "cap 8 not in force (a 9-event batch got $HTTP_STATUS)"
    rcli rpush "$QUEUE" x1 x2 x3 >/dev/null # room for 5 events
    # A: 4 events, B: 3 events, C: 1, D: 1 (sent in this order)
    python3 - "$run" >"$E2E_TMP/spec.json" <<'EOF'
import json, sys
run = sys.argv[1]
def batch(name, k):
    return json.dumps([{"timestamp": "2026-01-01T00:00:00Z", "hostname": "%s-%s-%d" % (run, name, j),
                        "message": "m"} for j in range(k)])
print(json.dumps([{"cid": "%s-%s" % (run, n), "body": batch(n, k)} for n, k in (("A", 4), ("B", 3), ("C", 1), ("D", 1))]))
EOF
    monitor_start
    python3 "$E2E_TMP/group_post.py" "$INGEST_PORT" "$INGEST_KEY" "$MUTT_PID" "$E2E_TMP/spec.json" "$E2E_TMP/out.json" ||
        t_fail "group client failed"
    monitor_stop
    set_dyn max_ingest_queue_size ""
    local line
    line=$(grep "\"EVALSHA\".*$run-" "$MON" || true)
    [ "$(grep -c . <<<"$line")" = 1 ] || t_fail "one EVALSHA for the group expected, MONITOR saw: $(cut -c1-200 <<<"$line"; grep -o '"[0-9]*","[A-Z][^"]*' <<<"$line" | head)"
    # The rule (D50): in the order the script received them, each request is accepted whole when
    # its events fit in the room the accepted ones before it left, else refused whole (503 queue
    # full) taking nothing. Sent A, B, C, D with room 5: A (4) in, B (3) out, C (1) in, D (1) out.
    python3 - "$run" "$E2E_TMP/out.json" "$line" <<'EOF' || t_fail "verdicts against the cap"
import json, sys
run, out, line = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
sizes = {"A": 4, "B": 3, "C": 1, "D": 1}
order = sorted(sizes, key=lambda n: line.index("%s-%s-0" % (run, n)))
room, want = 5, {}
for n in order:
    want[n] = 200 if sizes[n] <= room else 503
    if want[n] == 200:
        room -= sizes[n]
got = {n: r["status"] for n, r in zip(("A", "B", "C", "D"), out)}
assert got == want, (order, got, want)
for n, r in zip(("A", "B", "C", "D"), out):
    b = json.loads(r["body"])
    assert b["correlation_id"] == "%s-%s" % (run, n), b
    if r["status"] == 503:
        assert b["message"] == "queue full" and b["queue_limit"] == 8, b
    else:
        assert b["accepted"] == sizes[n], b
if order == ["A", "B", "C", "D"]:
    assert want == {"A": 200, "B": 503, "C": 200, "D": 503}
print("order", order, "verdicts", got)
EOF
    depth=$(rcli llen "$QUEUE")
    assert_eq 8 "$depth" "queue filled to the cap by the accepted requests only"
    rcli del "$QUEUE" >/dev/null
}

# SLO requests counted in Redis so far (the once-a-second flush of the ingest SLO, D22).
slo_total() {
    local k t=0 v
    for k in $(rcli --scan --pattern 'mutt:slo:ingestor_availability:*'); do
        v=$(rcli hget "$k" total)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

test_a_held_ingest_push_does_not_hold_the_web_stage_or_health() {
    local run=pause$RANDOM$RANDOM i before
    # settle: every answered ingest request flushed to the SLO keys (no write left pending on the
    # shared connection), then Redis holds every write back (ingest's script included) while
    # reads go on
    for i in 1 2 3; do
        http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' \
            --data-binary '{"timestamp":"2026-01-01T00:00:00Z","hostname":"warm","message":"m"}'
        assert_status 200
    done
    before=$(curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/metrics" |
        awk '$1 ~ /^mutt_ingest_requests_total\{/ && $1 !~ /reason="auth"/ && $1 !~ /reason="shutdown"/ {t += $2} END {printf "%d", t}')
    wait_until 10 eval '[ "$(slo_total)" -ge "$before" ]' || t_fail "SLO counts not flushed ($(slo_total) of $before)"
    rcli client pause 20000 write >/dev/null
    curl -s -o "$E2E_TMP/held.body" -w '%{http_code}' -m 30 -X POST "$URL" -H "X-API-KEY: $INGEST_KEY" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"$run\",\"message\":\"m\"}" \
        >"$E2E_TMP/held.code" &
    local held=$!
    wait_until 10 eval 'rcli client list | grep -q "flags=b"' ||
        { rcli client unpause >/dev/null; t_fail "the ingest push was not held by the pause: $(rcli client list)"; }
    # the web stage reads Redis on the shared connection: answered while the push is held
    http GET "http://127.0.0.1:$WEB_PORT/api/v1/metrics" -H "X-API-KEY: $WEB_KEY"
    local web=$HTTP_STATUS
    http GET "http://127.0.0.1:$INGEST_PORT/health" # health shares the ingest listener here
    local health=$HTTP_STATUS
    local still=no
    kill -0 "$held" 2>/dev/null && still=yes
    rcli client unpause >/dev/null
    wait "$held" || true
    assert_eq 200 "$web" "GET /api/v1/metrics while ingest's push is held"
    assert_eq 200 "$health" "GET /health while ingest's push is held"
    assert_eq yes "$still" "the ingest request was still waiting when the web stage answered"
    assert_eq 200 "$(cat "$E2E_TMP/held.code")" "the held push once Redis let it run"
}

t_run "one loop turn of single events: one EVALSHA, a 200 and ids each" \
    test_one_loop_turn_of_single_events_is_one_script_call_with_a_verdict_each
t_run "D49: the push goes on the connection named mutt:<pod>:ingest" \
    test_the_group_call_goes_on_the_ingest_connection_not_the_shared_one
t_run "D50: against the cap, the first that fit in arrival order; a batch refused whole" \
    test_a_group_against_the_cap_accepts_the_first_that_fit_in_arrival_order
# D2 for a group: every request whose deadline answered 503 before the group's call ran is
# counted in doubt, each with its own events.
test_a_group_answered_503_by_its_deadline_counts_each_request_in_doubt() {
    local run=doubt$RANDOM$RANDOM before doubt0 metric_url="http://127.0.0.1:$INGEST_PORT/metrics"
    doubt() { curl -s -m 5 "$metric_url" | awk '$1 == "mutt_ingest_events_in_doubt_total" {printf "%d", $2; f=1} END {if (!f) print 0}'; }
    before=$(rcli llen "$QUEUE")
    doubt0=$(doubt)
    python3 - "$run" >"$E2E_TMP/spec.json" <<'EOF2'
import json, sys
run = sys.argv[1]
print(json.dumps([{"cid": "%s-%d" % (run, i),
                   "body": json.dumps([{"timestamp": "2026-01-01T00:00:00Z", "hostname": "%s-%d-%d" % (run, i, j),
                                        "message": "m"} for j in range(i + 1)])} for i in range(3)]))
EOF2
    rcli client pause 30000 write >/dev/null
    python3 "$E2E_TMP/group_post.py" "$INGEST_PORT" "$INGEST_KEY" "$MUTT_PID" "$E2E_TMP/spec.json" "$E2E_TMP/out.json" ||
        { rcli client unpause >/dev/null; t_fail "group client failed"; }
    rcli client unpause >/dev/null
    python3 - "$E2E_TMP/out.json" <<'EOF2' || t_fail "deadline answers"
import json, sys
for r in json.load(open(sys.argv[1])):
    assert r["status"] == 503 and "Redis unavailable" in r["body"], r
EOF2
    # the group's call ran once Redis let it: 1 + 2 + 3 events queued without a 200, all in doubt
    wait_until 10 eval '[ "$(doubt)" -ge $((doubt0 + 6)) ]' || t_fail "in doubt: $(doubt), expected $((doubt0 + 6))"
    assert_eq $((doubt0 + 6)) "$(doubt)" "events counted in doubt"
    assert_eq $((before + 6)) "$(rcli llen "$QUEUE")" "acked <= LLEN <= acked + in doubt"
}

t_run "D2: a group answered 503 by its deadline counts each request in doubt" \
    test_a_group_answered_503_by_its_deadline_counts_each_request_in_doubt
t_run "D49: a held ingest push holds neither the web stage nor /health" \
    test_a_held_ingest_push_does_not_hold_the_web_stage_or_health
t_summary
