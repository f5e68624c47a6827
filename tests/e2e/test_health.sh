#!/usr/bin/env bash
# Readiness at start-up (CONTRACT D34): from process start until every enabled stage accepts
# work, /health and /health/ready answer 503 with the role `starting`; /health/live is 200; the
# first 200 of /health/ready means an ingest POST is accepted, and systemd READY is sent no
# earlier than that. The start-up window is made long on purpose: a stale pod key of the same
# name (a crashed predecessor) is watched for one HEARTBEAT_INTERVAL before it is taken over.
# Needs the harness Redis and PostgreSQL, redis-cli, python3 (fake systemd socket).
. "$(dirname "$0")/lib.sh"

RCLI=(redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT")
POD=e2e-health-$$
CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF" "POD_NAME=$POD" "HEARTBEAT_INTERVAL=2" "HEARTBEAT_EXPIRY=30"

EVENT='{"hostname":"h1","message":"ready probe","timestamp":"2026-01-01T00:00:00Z"}'

test_ready_is_never_200_before_ingest_accepts_and_sd_ready_follows_it() {
    command -v python3 >/dev/null 2>&1 || { echo "skip: python3 not installed (fake systemd socket)"; return 0; }
    local sock="$E2E_TMP/notify.sock" got="$E2E_TMP/notify.got"
    : >"$got"
    python3 - "$sock" "$got" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(60)
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        try: d = s.recv(4096).decode()
        except socket.timeout: break
        f.write(d.replace("\n", " ") + "\n")
        if "STOPPING=1" in d: break
PY
    echo $! >>"$E2E_TMP/pids"
    wait_until 5 test -S "$sock" || t_fail "fake systemd socket not created"
    # a crashed predecessor's key: the new process watches it for one refresh period first
    "${RCLI[@]}" SET "mutt:pod:$POD" crashed-token EX 30 >/dev/null
    local log="$E2E_TMP/mutt.health.log"
    NOTIFY_SOCKET=$sock "$MUTT_BIN" --config "$CONF" --roles=ingest >>"$log" 2>&1 &
    MUTT_PID=$!
    echo "$MUTT_PID" >>"$E2E_TMP/pids"
    local url="http://127.0.0.1:$INGEST_PORT" seen_starting=0 seen_live=0 ready=0 i sd_before
    HTTP_TIMEOUT=2
    for i in $(seq 1 600); do
        alive "$MUTT_PID" || { tail -n 20 "$log" >&2; t_fail "mutt exited during start-up"; }
        sd_before=0
        grep -qx 'READY=1' "$got" && sd_before=1
        http GET "$url/health/ready"
        case "$HTTP_STATUS" in
        000) ;; # not listening yet
        200)
            # ready must mean "accepts work": the very next POST is taken
            http POST "$url/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' \
                --data-binary "$EVENT"
            assert_status 200 "POST right after /health/ready said 200"
            ready=1
            break
            ;;
        503)
            # before Redis first answers, the missing dependency is the more useful word: the role
            # reads `down` (503 as well); once Redis is up and until the stage takes work, `starting`
            case "$HTTP_BODY" in
            *'"redis":"disconnected"'*) assert_contains "$HTTP_BODY" '"ingest":"down"' "503 before Redis answers" ;;
            *) assert_contains "$HTTP_BODY" '"ingest":"starting"' "503 from /health/ready before start" ;;
            esac
            assert_eq 0 "$sd_before" "systemd READY was sent while /health/ready still answered 503"
            case "$HTTP_BODY" in *'"ingest":"starting"'*) seen_starting=$((seen_starting + 1)) ;; esac
            # the same moment: /health agrees, /health/live is 200, and ingest refuses
            http GET "$url/health"
            [ "$HTTP_STATUS" = 200 ] || case "$HTTP_BODY" in
            *'"redis":"disconnected"'*) ;;
            *) assert_contains "$HTTP_BODY" '"ingest":"starting"' "/health while starting" ;;
            esac
            http GET "$url/health/live"
            assert_status 200 "/health/live while starting"
            seen_live=1
            ;;
        *) t_fail "/health/ready answered $HTTP_STATUS: $HTTP_BODY" ;;
        esac
        sleep 0.02
    done
    assert_eq 1 "$ready" "/health/ready never became 200"
    [ "$seen_starting" -ge 3 ] || t_fail "the start-up window was not observed (starting answers: $seen_starting)"
    assert_eq 1 "$seen_live" "/health/live was not checked while starting"
    wait_until 10 grep -qx 'READY=1' "$got" || t_fail "no READY=1 once ready: $(cat "$got")"
    http GET "$url/health"
    assert_status 200 "/health once ready"
    assert_contains "$HTTP_BODY" '"ingest":"ok"'
    kill -TERM "$MUTT_PID"
    wait_until 30 bash -c "! kill -0 $MUTT_PID 2>/dev/null" || t_fail "mutt did not stop"
}

PSQL=(env PGPASSWORD="$MUTT_TEST_PG_PASS" psql -qAt -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST"
      -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" -d "$MUTT_TEST_PG_DB")

# The alert stage takes no work before its first rules load: with the rules table unreadable it
# is `starting` (503), not `degraded` (which would count as ready); it turns ok once it loads.
test_alert_is_starting_until_its_rules_load() {
    "${MUTT_BIN}" --config "$CONF" migrate >/dev/null || t_fail "migrate failed"
    "${PSQL[@]}" -c "ALTER TABLE alert_rules RENAME TO alert_rules_hidden" || t_fail "rename failed"
    local conf2="$E2E_TMP/mutt.alert.conf"
    sed -e "s/^POD_NAME=.*/POD_NAME=$POD-alert/" "$CONF" >"$conf2"
    echo "CACHE_RELOAD_INTERVAL=1" >>"$conf2"
    start_mutt "$conf2" alert
    local url="http://127.0.0.1:$MUTT_PORT"
    wait_for 10 "a failed rules load in the log" grep -q "rules cache reload failed" "$MUTT_LOG"
    http GET "$url/health/ready"
    assert_status 503 "/health/ready while the rules cache has never loaded"
    assert_contains "$HTTP_BODY" '"alert":"starting"' "alert role before its first rules load"
    http GET "$url/health/live"
    assert_status 200 "/health/live while starting"
    "${PSQL[@]}" -c "ALTER TABLE alert_rules_hidden RENAME TO alert_rules" || t_fail "rename back failed"
    wait_for 15 "/health/ready 200 once the rules load" http_status_is 200 GET "$url/health/ready"
    http GET "$url/health"
    assert_contains "$HTTP_BODY" '"alert":"ok"' "alert role once its rules loaded"
    stop_mutt
}

t_run "/health/ready: 503 starting until ingest accepts; READY=1 only after" \
    test_ready_is_never_200_before_ingest_accepts_and_sd_ready_follows_it
t_run "/health/ready: alert is starting until its first rules load" test_alert_is_starting_until_its_rules_load
t_summary
