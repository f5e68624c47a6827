#!/usr/bin/env bash
# Smoke test of the built binary (CONTRACT §1, §2, §3, §10, D17): one `mutt --roles=all` against
# the harness's Redis and PostgreSQL with a webhook sink; health on both listeners, metrics, CLI
# exit codes, the Redis fault drill (503 while Redis is down, 200 again without a restart), and a
# clean SIGTERM. Run through tests/harness/run-tests.sh (it exports MUTT_TEST_*).
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF"
start_sink
start_mutt "$CONF" all
# JSON from any encoder: compare without whitespace.
squash() { tr -d ' \n\t' <<<"$1"; }

test_health_on_ingest_and_web_ports() {
    local port
    for port in "$INGEST_PORT" "$WEB_PORT"; do
        http GET "http://127.0.0.1:$port/health"
        assert_status 200 "GET /health on $port"
        assert_contains "$(squash "$HTTP_BODY")" '"status":"healthy"'
        assert_contains "$(squash "$HTTP_BODY")" '"redis":"connected"'
        assert_contains "$(squash "$HTTP_BODY")" '"database":"connected"'
        http GET "http://127.0.0.1:$port/health/ready"
        assert_status 200 "GET /health/ready on $port"
    done
}

test_health_live_says_alive() {
    http GET "http://127.0.0.1:$INGEST_PORT/health/live"
    assert_status 200
    assert_eq '{"status":"alive"}' "$(squash "$HTTP_BODY")" "/health/live body"
}

test_metrics_are_prometheus_text() {
    local port
    for port in "$INGEST_PORT" "$WEB_PORT"; do
        http GET "http://127.0.0.1:$port/metrics"
        assert_status 200 "GET /metrics on $port"
        assert_contains "$HTTP_BODY" "# TYPE"
    done
}

test_ingest_accepts_a_first_event() {
    http POST "http://127.0.0.1:$INGEST_PORT/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" \
        -H 'Content-Type: application/json' \
        -d '{"timestamp":"2026-01-01T00:00:00Z","hostname":"test-server","message":"Installation test event","syslog_severity":6}'
    assert_status 200 "first event"
    assert_contains "$(squash "$HTTP_BODY")" '"status":"accepted"'
    http POST "http://127.0.0.1:$INGEST_PORT/api/v2/ingest" -H 'X-API-KEY: wrong' \
        -H 'Content-Type: application/json' -d '{"hostname":"h"}'
    assert_status 401 "wrong API key"
}

test_version_exits_0() {
    local out rc=0
    out=$("$MUTT_BIN" --version 2>&1) || rc=$?
    assert_eq 0 "$rc" "mutt --version exit status"
    local want
    want=$(sed -n 's/^#define MUTT_VERSION "\(.*\)"/\1/p' "$E2E_ROOT/include/mutt/version.h")
    assert_contains "$out" "$want" "--version prints the version"
}

test_check_config_on_a_bad_config_exits_2() {
    local bad="$E2E_TMP/bad.conf" out rc=0
    e2e_config "$bad" INGESTOR_PORT=70000 REDIS_PORT=not-a-port
    out=$("$MUTT_BIN" --config "$bad" --check-config 2>&1) || rc=$?
    assert_eq 2 "$rc" "--check-config exit status on a bad config"
    assert_contains "$out" "config error: INGESTOR_PORT=70000"
    assert_contains "$out" "config error: REDIS_PORT=not-a-port"
}

test_unknown_role_exits_2_naming_the_valid_roles() {
    local out rc=0 role
    out=$("$MUTT_BIN" --config "$CONF" --roles=bogus 2>&1) || rc=$?
    assert_eq 2 "$rc" "--roles=bogus exit status"
    assert_contains "$out" "bogus"
    for role in ingest alert forward remediate web retention; do
        assert_contains "$out" "$role" "valid roles listed"
    done
}

test_redis_down_gives_503_and_recovers_without_restart() {
    local pid=$MUTT_PID
    bash "$SERVICES" stop-redis
    wait_until 2 http_status_is 503 GET "http://127.0.0.1:$INGEST_PORT/health" ||
        t_fail "/health not 503 within 2 s of Redis stopping (got $HTTP_STATUS: ${HTTP_BODY:0:300})"
    assert_contains "$(squash "$HTTP_BODY")" '"status":"unhealthy"'
    assert_contains "$(squash "$HTTP_BODY")" '"redis":"disconnected"'
    bash "$SERVICES" start-redis
    wait_until 30 http_status_is 200 GET "http://127.0.0.1:$INGEST_PORT/health" ||
        t_fail "/health not 200 within 30 s of Redis coming back (got $HTTP_STATUS: ${HTTP_BODY:0:300})"
    assert_contains "$(squash "$HTTP_BODY")" '"redis":"connected"'
    alive "$pid" || t_fail "mutt was restarted or died"
}

test_sigterm_exits_0() {
    stop_mutt 0
}

t_run "health on the ingest and web ports" test_health_on_ingest_and_web_ports
t_run "/health/live says alive" test_health_live_says_alive
t_run "/metrics is Prometheus text" test_metrics_are_prometheus_text
t_run "ingest accepts a first event" test_ingest_accepts_a_first_event
t_run "mutt --version exits 0" test_version_exits_0
t_run "--check-config on a bad config exits 2" test_check_config_on_a_bad_config_exits_2
t_run "--roles=bogus exits 2 naming the valid roles" test_unknown_role_exits_2_naming_the_valid_roles
t_run "Redis down: 503, then 200 without a restart" test_redis_down_gives_503_and_recovers_without_restart
bash "$SERVICES" start-redis >/dev/null 2>&1 || true # whatever the drill left behind
t_run "SIGTERM exits 0" test_sigterm_exits_0
t_summary
