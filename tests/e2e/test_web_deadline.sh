#!/usr/bin/env bash
# Web writes cut by the request deadline (issue 11 item 5, D62): the client gets 503
# {"error":"deadline exceeded"}, and the write still completes as a whole afterwards (audit row +
# Redis value + PUBLISH), or leaves no trace. PostgreSQL is slowed by holding a lock on
# config_audit_log past the deadline (REQUEST_TIMEOUT_MS=300). A DLQ replay cut by the deadline
# strands nothing and writes the REPLAY row for what it moved. Processing lists named for dead
# web and remediate pods (no pod key) are returned by the janitor; a live pod's list is not.
# Needs: Redis + PostgreSQL (services.sh), MUTT_BIN, redis-cli, psql, curl, jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "jq is required (tests/harness/deps.sh installs it)" >&2; exit 1; }

rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
psql_q() { PGPASSWORD=$MUTT_TEST_PG_PASS psql -qtA -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB" -c "$1"; }
jqb() { jq -r "$1" <<<"$HTTP_BODY"; }

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF" REQUEST_TIMEOUT_MS=300 JANITOR_INTERVAL=1
API="http://127.0.0.1:$WEB_PORT/api/v1"
POD=$(conf_get "$CONF" POD_NAME)
adm() { # adm METHOD PATH [JSON]
    if [ $# -ge 3 ]; then
        http "$1" "$API$2" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' --data-binary "$3"
    else
        http "$1" "$API$2" -H "X-API-KEY: $WEB_KEY"
    fi
}

rcli flushdb >/dev/null
start_mutt "$CONF" web
wait_until 15 eval 'http GET "$API/rules"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "web routes did not appear within 15 s" >&2; exit 1; }

# Holds an ACCESS EXCLUSIVE lock on config_audit_log for MS milliseconds, in the background;
# returns once the lock is held.
LOCK_PID=
hold_audit_lock() {
    PGPASSWORD=$MUTT_TEST_PG_PASS psql -qtA -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" \
        "$MUTT_TEST_PG_DB" -c "BEGIN; LOCK TABLE config_audit_log IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep($1 / 1000.0); COMMIT;" \
        >/dev/null 2>&1 &
    LOCK_PID=$!
    echo "$LOCK_PID" >>"$E2E_TMP/pids"
    lock_held() {
        [ "$(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                     WHERE c.relname = 'config_audit_log' AND l.mode = 'AccessExclusiveLock' AND l.granted")" -ge 1 ]
    }
    wait_until 10 lock_held || t_fail "could not take the lock on config_audit_log"
}

# Records every message on the two change channels into FILE (background).
subscribe() {
    rcli SUBSCRIBE mutt:config:updates mutt:rules:updates >"$1" 2>&1 &
    echo $! >>"$E2E_TMP/pids"
    wait_until 5 grep -q 'mutt:rules:updates' "$1" || t_fail "SUBSCRIBE did not start"
}

test_config_put_cut_by_the_deadline_still_writes_audit_redis_and_publish() {
    local sub="$E2E_TMP/sub.config" before
    subscribe "$sub"
    before=$(psql_q "SELECT count(*) FROM config_audit_log WHERE record_key = 'unhandled_threshold'")
    hold_audit_lock 1500
    adm PUT /config/unhandled_threshold '{"value":4242,"reason":"deadline e2e"}'
    assert_status 503 "PUT while the audit insert waits for the lock"
    assert_eq "deadline exceeded" "$(jqb .error)"
    # after the lock goes: the audit row, the Redis value and the notice all happen
    wait_until 15 eval '[ "$(rcli GET mutt:config:unhandled_threshold)" = 4242 ]' ||
        t_fail "the Redis value was never written (got [$(rcli GET mutt:config:unhandled_threshold)])"
    assert_eq $((before + 1)) "$(psql_q "SELECT count(*) FROM config_audit_log WHERE record_key = 'unhandled_threshold'")" \
        "one audit row for the change"
    wait_until 10 grep -qx unhandled_threshold "$sub" || t_fail "no PUBLISH mutt:config:updates: $(cat "$sub")"
}

test_rule_write_cut_by_the_deadline_still_publishes() {
    local sub="$E2E_TMP/sub.rules"
    subscribe "$sub"
    hold_audit_lock 1500
    adm POST /rules '{"match_string":"DEADLINE-E2E","prod_handling":"Page_only","dev_handling":"Ticket_only","team_assignment":"NetOps","priority":7}'
    assert_status 503 "POST /rules while the audit insert waits for the lock"
    assert_eq "deadline exceeded" "$(jqb .error)"
    wait_until 15 eval '[ "$(psql_q "SELECT count(*) FROM alert_rules WHERE match_string = '"'DEADLINE-E2E'"'")" = 1 ]' ||
        t_fail "the rule was never written"
    assert_eq 1 "$(psql_q "SELECT count(*) FROM config_audit_log WHERE table_name = 'alert_rules' AND new_values->>'match_string' = 'DEADLINE-E2E'")" \
        "its audit row"
    wait_until 10 grep -qx alert_rules "$sub" || t_fail "no PUBLISH mutt:rules:updates for the rule: $(cat "$sub")"
}

test_dlq_replay_cut_by_the_deadline_strands_nothing_and_audits_what_moved() {
    local n=10000 proc="mutt:processing:web:$POD:alerter"
    rcli DEL mutt:dlq:alerter mutt:ingest_queue >/dev/null
    rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('LPUSH', KEYS[1], '{\"hostname\":\"h' .. i .. '\",\"message\":\"m\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"_origin\":\"ingest\"}') end return 1" \
        1 mutt:dlq:alerter "$n" >/dev/null
    # 10,000 items one at a time take far longer than the 300 ms deadline
    adm POST /dlq/alerter/replay "{\"count\":$n,\"reason\":\"deadline e2e\"}"
    assert_status 503 "a 10,000 item replay is cut by the deadline"
    assert_eq "deadline exceeded" "$(jqb .error)"
    audited() { [ "$(psql_q "SELECT count(*) FROM config_audit_log WHERE operation = 'REPLAY' AND reason = 'deadline e2e'")" = 1 ]; }
    wait_until 20 audited || t_fail "no REPLAY row for the replay cut by the deadline"
    local moved dlq ingest
    moved=$(psql_q "SELECT (new_values->>'replayed')::int FROM config_audit_log WHERE operation = 'REPLAY' AND reason = 'deadline e2e'")
    assert_eq 0 "$(rcli LLEN "$proc")" "items stranded in $proc"
    dlq=$(rcli LLEN mutt:dlq:alerter)
    ingest=$(rcli LLEN mutt:ingest_queue)
    assert_eq "$moved" "$ingest" "the REPLAY row counts what reached the ingest queue"
    assert_eq "$n" $((dlq + ingest)) "no item lost or duplicated"
    [ "$moved" -lt "$n" ] || t_fail "the replay was not cut ($moved of $n moved)"
}

test_janitor_returns_dead_web_and_remediate_pods_lists_only() {
    rcli DEL mutt:dlq:alerter mutt:dlq:moog >/dev/null
    local dead="e2e-dead-pod-$$" live="e2e-live-pod-$$"
    rcli RPUSH "mutt:processing:web:$dead:alerter" '{"hostname":"w1","_origin":"ingest"}' >/dev/null
    rcli RPUSH "mutt:processing:web:$dead:moog" '{"hostname":"w2","_origin":"alert"}' >/dev/null
    rcli RPUSH "mutt:processing:remediate:$dead" '{"hostname":"r1","_origin":"alert"}' '{"hostname":"r2","_origin":"ingest"}' >/dev/null
    rcli SET "mutt:pod:$live" token EX 120 >/dev/null
    rcli RPUSH "mutt:processing:web:$live:alerter" '{"hostname":"keep"}' >/dev/null
    rcli RPUSH "mutt:processing:remediate:$live" '{"hostname":"keep2"}' >/dev/null
    local conf2="$E2E_TMP/janitor.conf"
    INGEST_PORT= WEB_PORT= HEALTH_PORT=
    unset INGEST_PORT WEB_PORT HEALTH_PORT
    e2e_config "$conf2" JANITOR_INTERVAL=1
    rcli SET mutt:config:remediation_enabled false >/dev/null # only the janitor may move items
    stop_mutt 0
    start_mutt "$conf2" web,remediate
    gone() { [ "$(rcli EXISTS "mutt:processing:web:$dead:alerter" "mutt:processing:web:$dead:moog" "mutt:processing:remediate:$dead")" = 0 ]; }
    wait_until 15 gone || t_fail "dead pods' lists still there: $(rcli KEYS 'mutt:processing:*')"
    assert_eq 2 "$(rcli LLEN mutt:dlq:alerter)" "alerter DLQ: w1 (web list) and r2 (remediate, _origin ingest)"
    assert_eq 2 "$(rcli LLEN mutt:dlq:moog)" "moog DLQ: w2 (web list) and r1 (remediate, _origin alert)"
    assert_contains "$(rcli LRANGE mutt:dlq:moog 0 -1)" '"r1"'
    assert_contains "$(rcli LRANGE mutt:dlq:alerter 0 -1)" '"r2"'
    assert_eq 1 "$(rcli LLEN "mutt:processing:web:$live:alerter")" "a live pod's web list is untouched"
    assert_eq 1 "$(rcli LLEN "mutt:processing:remediate:$live")" "a live pod's remediate list is untouched"
    stop_mutt 0
}

t_run "PUT /config cut by the deadline: 503, then audit row + Redis + PUBLISH" \
    test_config_put_cut_by_the_deadline_still_writes_audit_redis_and_publish
t_run "POST /rules cut by the deadline: 503, then the row, its audit and PUBLISH" \
    test_rule_write_cut_by_the_deadline_still_publishes
t_run "DLQ replay cut by the deadline: nothing stranded, REPLAY row for what moved" \
    test_dlq_replay_cut_by_the_deadline_strands_nothing_and_audits_what_moved
t_run "janitor: dead web/remediate pods' processing lists return to their DLQs" \
    test_janitor_returns_dead_web_and_remediate_pods_lists_only
t_summary
