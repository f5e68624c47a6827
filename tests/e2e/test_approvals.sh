#!/usr/bin/env bash
# Issue 17: named API users (WEBUI_USERS_FILE, D43/D46), the two-person rule (APPROVAL_REQUIRED,
# D47: 202 + change request, approve/reject by another approver, 403 self/read-only, 409 when
# not pending, emergency override, expiry), the CLI side (config set files a request, --emergency,
# `changes approve` refused), API usage metrics and /version/usage (D45, D62) and the legacy
# dynamic-config names (alerter_queue_warn / alerter_queue_shed). Needs the harness Redis and
# PostgreSQL, redis-cli, psql, curl, jq, sha256sum.
. "$(dirname "$0")/lib.sh"

RCLI=(redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT")
PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB")
export PGPASSWORD=$MUTT_TEST_PG_PASS
sql() { "${PSQL[@]}" -c "$1"; }

ALICE_KEY=alice-key-0123456789abcdef0123456789abcdef
BOB_KEY=bob-key-0123456789abcdef0123456789abcdef01
CAROL_KEY=carol-key-0123456789abcdef0123456789abcde
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
USERS="$E2E_TMP/users"
{
    echo "# name role sha256(key)"
    echo "alice admin $(sha "$ALICE_KEY")"
    echo "bob   approver $(sha "$BOB_KEY")   # the second person"
    echo "carol readonly $(sha "$CAROL_KEY")"
} >"$USERS"

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF" "WEBUI_USERS_FILE=$USERS" "APPROVAL_REQUIRED=config:moog_rate_limit, rules" \
    "APPROVAL_TTL_HOURS=72"
WEB="http://127.0.0.1:$(conf_get "$CONF" WEBUI_PORT)"
API="$WEB/api/v2"
cli() {
    RC=0
    OUT=$("$MUTT_BIN" --config "$CONF" "$@" 2>&1) || RC=$?
}
as() { # as KEY METHOD PATH [BODY] [CURL ARGS...]
    local key=$1 m=$2 p=$3
    shift 3
    if [ $# -gt 0 ] && [ "${1:0:1}" = "{" ]; then
        local body=$1
        shift
        http "$m" "$API$p" -H "X-API-KEY: $key" -H 'Content-Type: application/json' --data-binary "$body" "$@"
    else
        http "$m" "$API$p" -H "X-API-KEY: $key" "$@"
    fi
}
jqb() { echo "$HTTP_BODY" | jq -r "$1"; }
metric() { # metric 'name{labels}' -> value or 0
    curl -s -m 5 "$WEB/metrics" | awk -v k="$1" '$1 == k {printf "%d", $2; f=1} END {if (!f) print 0}'
}
reset_state() {
    "${RCLI[@]}" del mutt:config:moog_rate_limit mutt:config:unhandled_threshold mutt:config:alerter_queue_warn \
        mutt:config:alerter_queue_warn_threshold mutt:config:alerter_queue_shed \
        mutt:config:alerter_queue_shed_threshold >/dev/null
}

test_changed_by_names_the_user() {
    reset_state
    as "$ALICE_KEY" PUT /config/unhandled_threshold '{"value":150,"reason":"named"}' -H 'X-Actor: mallory'
    assert_status 200
    assert_eq "webui_api:alice" "$(sql "SELECT changed_by FROM config_audit_log WHERE id = $(jqb .audit_id)")"
    as "$WEB_KEY" PUT /config/unhandled_threshold '{"value":151}'
    assert_status 200
    local hex
    hex=$(sha "$WEB_KEY" | cut -c1-8)
    assert_eq "webui_api:$hex" "$(sql "SELECT changed_by FROM config_audit_log WHERE id = $(jqb .audit_id)")" \
        "a key the users file does not name keeps D18's hash name"
    as "$CAROL_KEY" PUT /config/unhandled_threshold '{"value":152}'
    assert_status 403
    as "$CAROL_KEY" GET /config/unhandled_threshold
    assert_status 200
    assert_eq 151 "$(jqb .value)"
    http GET "$API/config" -H "X-API-KEY: wrong-key"
    assert_status 401
}

test_config_change_needs_a_second_person() {
    reset_state
    as "$ALICE_KEY" PUT /config/moog_rate_limit '{"value":66,"reason":"more throughput"}' \
        -H 'X-Change-Impact: forwarder rate' -H 'X-Change-Rollback-Plan: set back to 50'
    assert_status 202
    assert_eq pending "$(jqb .status)"
    assert_eq webui_api:alice "$(jqb .requested_by)"
    local id
    id=$(jqb .id)
    assert_eq "" "$("${RCLI[@]}" get mutt:config:moog_rate_limit)" "nothing is written before approval"
    assert_eq "more throughput|forwarder rate|set back to 50" \
        "$(sql "SELECT justification || '|' || impact || '|' || rollback_plan FROM config_change_requests WHERE id = $id")"
    as "$ALICE_KEY" GET "/changes?status=pending"
    assert_status 200
    assert_eq "$id" "$(jqb "[.changes[] | select(.id == $id)][0].id")"
    # the requester and a read-only user may not decide
    as "$ALICE_KEY" POST "/changes/$id/approve"
    assert_status 403
    as "$CAROL_KEY" POST "/changes/$id/approve"
    assert_status 403
    local approvals
    approvals=$(metric 'mutt_api_requests_total{version="2.0",endpoint="/api/v2/changes/{id}/{action}",status="200"}')
    as "$BOB_KEY" POST "/changes/$id/approve" '{"reason":"looks right"}'
    assert_status 200
    assert_eq $((approvals + 1)) \
        "$(metric 'mutt_api_requests_total{version="2.0",endpoint="/api/v2/changes/{id}/{action}",status="200"}')" \
        "the approval is counted under its own route"
    assert_eq approved "$(jqb .status)"
    assert_eq webui_api:bob "$(jqb .decided_by)"
    assert_eq 66 "$("${RCLI[@]}" get mutt:config:moog_rate_limit)"
    assert_eq "webui_api:alice" "$(sql "SELECT changed_by FROM config_audit_log WHERE table_name = 'dynamic_config'
        AND record_key = 'moog_rate_limit' ORDER BY id DESC LIMIT 1")" "the change is audited as its requester's"
    assert_eq "webui_api:bob|looks right" "$(sql "SELECT changed_by || '|' || reason FROM config_audit_log
        WHERE operation = 'APPROVE' AND record_id = $id")"
    as "$BOB_KEY" POST "/changes/$id/approve"
    assert_status 409
    as "$ALICE_KEY" GET "/changes?status=approved"
    assert_eq approved "$(jqb "[.changes[] | select(.id == $id)][0].status")"
    # a key not listed in APPROVAL_REQUIRED is written at once
    as "$ALICE_KEY" PUT /config/unhandled_threshold '{"value":160}'
    assert_status 200
}

test_rule_change_rejected() {
    local before id
    before=$(sql "SELECT count(*) FROM alert_rules")
    as "$ALICE_KEY" POST /rules '{"match_string":"approval-test","prod_handling":"P","dev_handling":"D","team_assignment":"T"}'
    assert_status 202
    id=$(jqb .id)
    as "$BOB_KEY" POST "/changes/$id/reject" '{"reason":"not now"}'
    assert_status 200
    assert_eq rejected "$(jqb .status)"
    assert_eq "$before" "$(sql "SELECT count(*) FROM alert_rules")" "a rejected rule is not created"
    assert_eq "webui_api:bob" "$(sql "SELECT changed_by FROM config_audit_log WHERE operation = 'REJECT' AND record_id = $id")"
    as "$BOB_KEY" POST "/changes/$id/approve"
    assert_status 409
    as "$BOB_KEY" POST "/changes/999999/approve"
    assert_status 404
    # an approved rule is created by the same handler as a direct write (201 body inside)
    as "$ALICE_KEY" POST /rules '{"match_string":"approval-test-2","prod_handling":"P","dev_handling":"D","team_assignment":"T"}'
    id=$(jqb .id)
    as "$WEB_KEY" POST "/changes/$id/approve"
    assert_status 200
    assert_eq 201 "$(jqb .result_status)"
    assert_eq approval-test-2 "$(jqb .result.rule.match_string)"
    assert_eq 1 "$(sql "SELECT count(*) FROM alert_rules WHERE match_string = 'approval-test-2'")"
}

test_emergency_override() {
    reset_state
    as "$ALICE_KEY" PUT /config/moog_rate_limit '{"value":99}' -H 'X-Emergency-Reason: forwarder backlog, incident 42'
    assert_status 200
    assert_eq 99 "$("${RCLI[@]}" get mutt:config:moog_rate_limit)"
    local id
    id=$(grep -i '^x-change-request-id:' "$HTTP_HEADERS" | tr -d '\r' | awk '{print $2}')
    assert_ne "" "$id" "the answer names the change request"
    assert_eq "webui_api:alice|forwarder backlog, incident 42" "$(sql "SELECT changed_by || '|' || reason
        FROM config_audit_log WHERE operation = 'EMERGENCY' AND record_id = $id")"
    as "$CAROL_KEY" GET "/changes?status=emergency"
    assert_eq "$id" "$(jqb "[.changes[] | select(.id == $id)][0].id")" "listed for after-the-fact approval"
    as "$BOB_KEY" POST "/changes/$id/approve"
    assert_status 200
    assert_eq 99 "$("${RCLI[@]}" get mutt:config:moog_rate_limit)"
}

test_cli_files_requests_and_cannot_approve() {
    reset_state
    cli config set moog_rate_limit 55 --reason "cli change"
    assert_eq 0 "$RC" "config set (output: $OUT)"
    assert_contains "$OUT" "change request"
    assert_eq "" "$("${RCLI[@]}" get mutt:config:moog_rate_limit)"
    local id
    id=$(sql "SELECT max(id) FROM config_change_requests WHERE requested_by LIKE 'cli:%' AND status = 'pending'")
    cli changes list --status pending
    assert_eq 0 "$RC"
    assert_contains "$OUT" "cli:"
    cli changes approve "$id"
    assert_eq 2 "$RC" "the CLI cannot approve"
    assert_contains "$OUT" "cannot approve"
    as "$BOB_KEY" POST "/changes/$id/approve"
    assert_status 200
    assert_eq 55 "$("${RCLI[@]}" get mutt:config:moog_rate_limit)"
    assert_contains "$(sql "SELECT changed_by FROM config_audit_log WHERE table_name = 'dynamic_config'
        AND record_key = 'moog_rate_limit' ORDER BY id DESC LIMIT 1")" "cli:"
    cli config set moog_rate_limit 44 --emergency "pager storm"
    assert_eq 0 "$RC" "emergency set (output: $OUT)"
    assert_eq 44 "$("${RCLI[@]}" get mutt:config:moog_rate_limit)"
    assert_eq 1 "$(sql "SELECT count(*) FROM config_audit_log WHERE operation = 'EMERGENCY' AND reason = 'pager storm'
        AND changed_by LIKE 'cli:%'")"
}

test_cli_restore_is_one_change_request() {
    local archive="$E2E_TMP/backup.tar.gz" id
    "${RCLI[@]}" set mutt:config:moog_rate_limit 21 >/dev/null
    cli backup "$archive"
    assert_eq 0 "$RC" "backup (output: $OUT)"
    "${RCLI[@]}" set mutt:config:moog_rate_limit 22 >/dev/null
    cli restore "$archive"
    assert_eq 0 "$RC" "restore files a request (output: $OUT)"
    assert_contains "$OUT" "change request"
    assert_eq 22 "$("${RCLI[@]}" get mutt:config:moog_rate_limit)" "nothing restored before approval"
    id=$(sql "SELECT max(id) FROM config_change_requests WHERE change->>'kind' = 'restore'")
    cli restore --change "$id" "$archive"
    assert_eq 1 "$RC" "a pending request cannot be applied (output: $OUT)"
    as "$BOB_KEY" POST "/changes/$id/approve"
    assert_status 200
    assert_contains "$(jqb .message)" "mutt restore FILE --change $id"
    cli restore --change "$id" "$archive"
    assert_eq 0 "$RC" "approved restore (output: $OUT)"
    assert_eq 21 "$("${RCLI[@]}" get mutt:config:moog_rate_limit)"
    cli restore --change "$id" "$archive"
    assert_eq 1 "$RC" "an approved restore applies once (output: $OUT)"
}

test_version_metrics_and_usage() {
    local v1 v2
    v1=$(metric 'mutt_api_requests_total{version="1.0",endpoint="/api/v1/rules",status="200"}')
    v2=$(metric 'mutt_api_requests_total{version="2.0",endpoint="/api/v2/rules/{id}",status="404"}')
    http GET "$WEB/api/v1/rules" -H "X-API-KEY: $CAROL_KEY" -H 'Accept-Version: 1.0'
    assert_status 200
    http GET "$WEB/api/v2/rules/987654" -H "X-API-KEY: $CAROL_KEY"
    assert_status 404
    assert_eq $((v1 + 1)) "$(metric 'mutt_api_requests_total{version="1.0",endpoint="/api/v1/rules",status="200"}')"
    assert_eq $((v2 + 1)) "$(metric 'mutt_api_requests_total{version="2.0",endpoint="/api/v2/rules/{id}",status="404"}')"
    curl -s "$WEB/metrics" | grep '^mutt_api_requests_total' | grep -q '987654' &&
        t_fail "a raw path reached a label"
    # ingest counts too, under its one route pattern (D62)
    local ing
    ing=$(metric 'mutt_api_requests_total{version="2.0",endpoint="/api/v2/ingest",status="200"}')
    http POST "http://127.0.0.1:$INGEST_PORT/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" -H "Content-Type: application/json" \
        -d '{"timestamp":"2026-01-01T12:00:00Z","hostname":"usage-test","message":"usage","syslog_severity":6}'
    assert_status 200
    assert_eq $((ing + 1)) "$(metric 'mutt_api_requests_total{version="2.0",endpoint="/api/v2/ingest",status="200"}')"
    http GET "$API/version/usage"
    assert_status 401
    wait_until 3 bash -c "curl -s -H 'X-API-KEY: $CAROL_KEY' $API/version/usage |
        jq -e '.usage[] | select(.version == \"1.0\" and .endpoint == \"/api/v1/rules\" and .user == \"carol\")' >/dev/null" ||
        t_fail "usage row for 1.0 / carol not found"
    as "$CAROL_KEY" GET /version/usage
    assert_status 200
    assert_eq deprecated "$(jqb '.versions["1.0"].status')"
    [ "$(jqb '.versions["1.0"].requests')" -ge 1 ] || t_fail "1.0 requests not counted"
    assert_ne null "$(jqb '.versions["1.0"].last_seen')"
}

test_legacy_key_names() {
    reset_state
    "${RCLI[@]}" set mutt:config:alerter_queue_warn 1234 >/dev/null
    "${RCLI[@]}" publish mutt:config:updates alerter_queue_warn >/dev/null
    wait_until 5 bash -c "curl -s -H 'X-API-KEY: $ALICE_KEY' $API/config/alerter_queue_warn_threshold | jq -e '.value == \"1234\"' >/dev/null" ||
        t_fail "legacy value not read"
    grep -q "deprecated key mutt:config:alerter_queue_warn" "$MUTT_LOG" || t_fail "no deprecation line in the log"
    as "$ALICE_KEY" GET /config/alerter_queue_warn
    assert_status 200
    assert_eq alerter_queue_warn_threshold "$(jqb .key)"
    assert_eq alerter_queue_warn "$(jqb .deprecated_alias)"
    # the canonical key wins when both are set
    "${RCLI[@]}" set mutt:config:alerter_queue_warn_threshold 999 >/dev/null
    "${RCLI[@]}" publish mutt:config:updates alerter_queue_warn_threshold >/dev/null
    wait_until 5 bash -c "curl -s -H 'X-API-KEY: $ALICE_KEY' $API/config/alerter_queue_warn | jq -e '.value == \"999\"' >/dev/null" ||
        t_fail "canonical value did not win"
    # writing the legacy name writes the canonical key, audited with the deprecation
    as "$ALICE_KEY" PUT /config/alerter_queue_shed '{"value":3000,"reason":"old script"}'
    assert_status 200
    assert_eq 3000 "$("${RCLI[@]}" get mutt:config:alerter_queue_shed_threshold)"
    assert_eq "" "$("${RCLI[@]}" get mutt:config:alerter_queue_shed)"
    assert_eq "alerter_queue_shed_threshold|deprecated key name alerter_queue_shed (alias of alerter_queue_shed_threshold); old script" \
        "$(sql "SELECT record_key || '|' || reason FROM config_audit_log WHERE id = $(jqb .audit_id)")"
    cli config set alerter_queue_warn 1500
    assert_eq 0 "$RC" "cli set of a legacy name (output: $OUT)"
    assert_contains "$OUT" "deprecated"
    assert_eq 1500 "$("${RCLI[@]}" get mutt:config:alerter_queue_warn_threshold)"
    cli config get alerter_queue_warn
    assert_eq 1500 "$(echo "$OUT" | tail -n 1)"
}

test_pending_request_expires() {
    as "$ALICE_KEY" PUT /config/moog_rate_limit '{"value":33}'
    assert_status 202
    local id
    id=$(jqb .id)
    wait_until 15 bash -c "[ \"\$(${PSQL[*]} -c \"SELECT status FROM config_change_requests WHERE id = $id\")\" = expired ]" ||
        t_fail "change request $id did not expire"
    assert_eq "system:expiry" "$(sql "SELECT changed_by FROM config_audit_log WHERE operation = 'EXPIRE' AND record_id = $id")"
    as "$BOB_KEY" POST "/changes/$id/approve"
    assert_status 409
}

test_bad_users_file_is_a_start_error() {
    local bad="$E2E_TMP/users.bad" conf="$E2E_TMP/bad.conf"
    printf 'dave admin %s\nerin superuser %s\n' "$(sha dave)" "$(sha erin)" >"$bad"
    e2e_config "$conf" "WEBUI_USERS_FILE=$bad"
    RC=0
    OUT=$(timeout 20 "$MUTT_BIN" --config "$conf" --roles=web 2>&1) || RC=$?
    assert_ne 0 "$RC" "mutt started with a bad users file"
    assert_contains "$OUT" "line 2: role must be admin, approver or readonly"
    assert_eq 2 "$RC" "a config error exits 2"
    e2e_config "$conf" "APPROVAL_REQUIRED=config,secrets"
    RC=0
    OUT=$(timeout 20 "$MUTT_BIN" --config "$conf" --check-config 2>&1) || RC=$?
    assert_eq 2 "$RC" "check-config refuses an unknown APPROVAL_REQUIRED item (output: $OUT)"
    assert_contains "$OUT" "unknown item 'secrets'"
}

start_mutt "$CONF" web,ingest
t_run "changed_by names the user of the key (X-Actor ignored), read-only users read only" test_changed_by_names_the_user
t_run "a covered config write waits for a second person: 202, 403 self/read-only, 200 approve, 409 again" test_config_change_needs_a_second_person
t_run "a rule change rejected (not created), another approved (created)" test_rule_change_rejected
t_run "emergency override applies at once, audited EMERGENCY, listed for approval" test_emergency_override
t_run "CLI: config set files a request, cannot approve, --emergency applies" test_cli_files_requests_and_cannot_approve
t_run "CLI: mutt restore is one change request, applied once after approval" test_cli_restore_is_one_change_request
t_run "mutt_api_requests_total by version and route; /version/usage" test_version_metrics_and_usage
t_run "legacy names alerter_queue_warn/shed read and written as aliases" test_legacy_key_names
stop_mutt
e2e_config "$CONF" "WEBUI_USERS_FILE=$USERS" "APPROVAL_REQUIRED=config" "APPROVAL_TTL_HOURS=0.0005"
start_mutt "$CONF" web
t_run "a pending request expires after APPROVAL_TTL_HOURS (EXPIRE audit row, 409)" test_pending_request_expires
stop_mutt
t_run "a bad WEBUI_USERS_FILE line is a start-up error naming the line" test_bad_users_file_is_a_start_error
t_summary
