#!/usr/bin/env bash
# Configuration drift (issue 7): `mutt config baseline save` snapshots the effective dynamic
# configuration; `mutt config drift` and GET /api/v1/config/drift list what changed since, what
# the schema added and what the baseline has that the schema no longer knows. Needs the harness
# Redis and PostgreSQL, redis-cli, curl, jq.
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF"
RCLI=(redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT")
cli() {
    RC=0
    OUT=$("$MUTT_BIN" --config "$CONF" "$@" 2>&1) || RC=$?
}
WEB="http://127.0.0.1:$(conf_get "$CONF" WEBUI_PORT)"
KEY=$(conf_get "$CONF" WEBUI_API_KEY)

test_drift_without_baseline_is_an_error() {
    "${RCLI[@]}" del mutt:config_baseline mutt:config_baseline:meta >/dev/null
    cli config drift
    assert_eq 1 "$RC" "drift with no baseline (output: $OUT)"
    assert_contains "$OUT" "no approved baseline"
    http GET "$WEB/api/v1/config/drift" -H "X-API-KEY: $KEY"
    assert_status 404
    assert_contains "$HTTP_BODY" "baseline save"
}

test_baseline_then_change_shows_drift_in_cli_and_api() {
    "${RCLI[@]}" del mutt:config:moog_rate_limit >/dev/null
    cli config baseline save --reason "approved by change board"
    assert_eq 0 "$RC" "baseline save (output: $OUT)"
    assert_contains "$OUT" "baseline saved"
    assert_eq "approved by change board" "$("${RCLI[@]}" hget mutt:config_baseline:meta reason)"
    cli config drift
    assert_eq 0 "$RC" "drift right after saving"
    assert_contains "$OUT" "drift: no"
    http GET "$WEB/api/v1/config/drift" -H "X-API-KEY: $KEY"
    assert_status 200
    assert_eq false "$(echo "$HTTP_BODY" | jq -r .drift)"
    # an operator changes a value outside change control, and a key disappears from the schema
    cli config set moog_rate_limit 77 --reason drift-test
    assert_eq 0 "$RC" "config set (output: $OUT)"
    "${RCLI[@]}" hset mutt:config_baseline retired_key 5 >/dev/null
    cli config drift
    assert_contains "$OUT" "changed moog_rate_limit: 50 -> 77"
    assert_contains "$OUT" "missing retired_key (baseline 5)"
    assert_contains "$OUT" "drift: yes"
    wait_until 3 bash -c "curl -s -H 'X-API-KEY: $KEY' $WEB/api/v1/config/drift | jq -e '.changed[0].current == \"77\"' >/dev/null" ||
        t_fail "the API did not see the change within 3 s"
    http GET "$WEB/api/v1/config/drift" -H "X-API-KEY: $KEY"
    assert_status 200
    assert_eq true "$(echo "$HTTP_BODY" | jq -r .drift)"
    assert_eq moog_rate_limit "$(echo "$HTTP_BODY" | jq -r '.changed[0].key')"
    assert_eq 50 "$(echo "$HTTP_BODY" | jq -r '.changed[0].baseline')"
    assert_eq retired_key "$(echo "$HTTP_BODY" | jq -r '.missing[0].key')"
    assert_contains "$(echo "$HTTP_BODY" | jq -r '.baseline.saved_by')" "cli:"
    # the same endpoint under /api/v2, and read-only keys may read it
    http GET "$WEB/api/v2/config/drift" -H "X-API-KEY: $KEY"
    assert_status 200
}

test_drift_endpoint_requires_a_key() {
    http GET "$WEB/api/v1/config/drift"
    assert_status 401
}

start_mutt "$CONF" web
t_run "drift without a baseline: CLI exit 1, API 404" test_drift_without_baseline_is_an_error
t_run "baseline save, then a change: drift in CLI and API" test_baseline_then_change_shows_drift_in_cli_and_api
t_run "drift endpoint needs the API key" test_drift_endpoint_requires_a_key
stop_mutt
t_summary
