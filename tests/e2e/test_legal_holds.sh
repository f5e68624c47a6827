#!/usr/bin/env bash
# Legal holds over the API, the config-audit report and full-text search (issue 17, CONTRACT
# D40 D44 D46) with the built binary's web role against the harness's PostgreSQL and Redis:
# create/list/get/delete a hold (admin only, audited, D18 errors), the hold keeping rows through
# a retention run, GET /audit/report and `mutt audit report` counting seeded rows, and q= on
# /audit. Needs: PostgreSQL, Redis (harness), psql, jq, curl.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "jq is required (tests/harness/deps.sh installs it)" >&2; exit 1; }

CONF="$E2E_TMP/mutt.conf"
RO_KEY=e2e-readonly-key-0123456789abcdef0123456789
e2e_config "$CONF" WEBUI_READONLY_API_KEY=$RO_KEY
API="http://127.0.0.1:$WEB_PORT/api/v1"
API2="http://127.0.0.1:$WEB_PORT/api/v2"
export PGPASSWORD=$MUTT_TEST_PG_PASS
sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB" -c "$1"; }
jqb() { jq -r "$1" <<<"$HTTP_BODY"; }
adm() { # METHOD URL [BODY]
    if [ $# -ge 3 ]; then
        http "$1" "$2" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' --data-binary "$3"
    else
        http "$1" "$2" -H "X-API-KEY: $WEB_KEY"
    fi
}
cli() {
    RC=0
    OUT=$("$MUTT_BIN" --config "$CONF" "$@" 2>&1) || RC=$?
}

"$MUTT_BIN" --config "$CONF" migrate >/dev/null || { echo "FAIL: mutt migrate"; exit 1; }
sql "TRUNCATE config_audit_log, event_audit_log, legal_holds RESTART IDENTITY" >/dev/null
start_mutt "$CONF" web

test_legal_hold_create_list_get_delete_audited_admin_only() {
    sql "DELETE FROM legal_holds; DELETE FROM config_audit_log" >/dev/null
    local body='{"table":"event_audit_log","from":"2020-03-01","to":"2020-03-31","hostname":"db-01","reason":"case 7"}'
    http POST "$API2/legal-holds" -H "X-API-KEY: $RO_KEY" -H 'Content-Type: application/json' --data-binary "$body"
    assert_status 403 "the read-only key cannot place a hold"
    adm POST "$API2/legal-holds" "$body"
    assert_status 201
    local id
    id=$(jqb .id)
    assert_eq "event_audit_log|2020-03-01T00:00:00.000Z|2020-03-31T23:59:59.999Z|db-01|null|case 7" \
        "$(jqb '[.table,.from,.to,.hostname,(.changed_by|tostring),.reason]|join("|")')" "D44 object"
    assert_contains "$(jqb .created_by)" "webui_api:"
    assert_ne "null" "$(jqb .created_at)"
    assert_eq "1" "$(sql "SELECT count(*) FROM config_audit_log WHERE table_name = 'legal_holds' AND operation = 'CREATE' AND record_key = '$id' AND reason = 'case 7'")" \
        "the create is audited"
    # the same under /api/v1, and reads with the read-only key
    http GET "$API/legal-holds" -H "X-API-KEY: $RO_KEY"
    assert_status 200
    assert_eq "1" "$(jqb '.legal_holds|length')"
    assert_eq "$id" "$(jqb '.legal_holds[0].id')"
    http GET "$API/legal-holds/$id" -H "X-API-KEY: $RO_KEY"
    assert_status 200
    assert_eq "db-01" "$(jqb .hostname)"
    # D18 errors
    adm POST "$API2/legal-holds" '{"table":"alert_rules","from":"2020-01-01","to":"2020-02-01","reason":"x"}'
    assert_status 400
    assert_eq "table" "$(jqb .field)"
    adm POST "$API2/legal-holds" '{"table":"config_audit_log","from":"2020-03-01","to":"2020-02-01","reason":"x"}'
    assert_status 400
    assert_eq "from" "$(jqb .field)"
    adm POST "$API2/legal-holds" '{"table":"config_audit_log","from":"yesterday","to":"2020-02-01","reason":"x"}'
    assert_status 400
    assert_eq "from" "$(jqb .field)"
    adm POST "$API2/legal-holds" '{"table":"config_audit_log","from":"2020-01-01","to":"2020-02-01"}'
    assert_status 400
    assert_eq "reason" "$(jqb .field)"
    http DELETE "$API2/legal-holds/$id" -H "X-API-KEY: $RO_KEY"
    assert_status 403 "the read-only key cannot lift a hold"
    adm DELETE "$API2/legal-holds/$id?reason=case%20closed"
    assert_status 200
    assert_contains "$(jqb .message)" "deleted"
    assert_eq "1" "$(sql "SELECT count(*) FROM config_audit_log WHERE table_name = 'legal_holds' AND operation = 'DELETE' AND record_key = '$id' AND reason = 'case closed' AND old_values->>'hostname' = 'db-01'")" \
        "the delete is audited with the old hold"
    adm DELETE "$API2/legal-holds/$id"
    assert_status 404
    adm GET "$API2/legal-holds/999999"
    assert_status 404
    adm GET "$API2/legal-holds/abc"
    assert_status 404
}

test_a_hold_placed_over_the_api_survives_retention() {
    sql "TRUNCATE event_audit_log; DELETE FROM legal_holds;
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname)
              SELECT '2019-07-02 00:00+00'::timestamptz + g * interval '1 minute', 'd' || g,
                     CASE WHEN g % 2 = 0 THEN 'db-01' ELSE 'web-01' END FROM generate_series(1, 100) g" >/dev/null
    adm POST "$API2/legal-holds" '{"table":"event_audit_log","from":"2019-07-01","to":"2019-07-31","hostname":"db-01","reason":"e2e"}'
    assert_status 201
    redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" del mutt:retention:last_run >/dev/null
    cli retention --dry-run
    assert_eq 0 "$RC" "dry run: $OUT"
    assert_contains "$OUT" "held: config_audit=0 event_audit=50"
    cli retention
    assert_eq 0 "$RC" "retention: $OUT"
    assert_eq "50" "$(sql "SELECT count(*) FROM event_audit_log WHERE hostname = 'db-01'")" "held rows stay"
    assert_eq "0" "$(sql "SELECT count(*) FROM event_audit_log WHERE hostname = 'web-01'")" "the others go"
}

seed_report() {
    sql "DELETE FROM config_audit_log;
         INSERT INTO config_audit_log (changed_at, changed_by, operation, table_name, record_key, reason, new_values) VALUES
           ('2026-01-10 10:00+00', 'cli:alice', 'CREATE', 'alert_rules', '1', 'add the link-down rule', '{\"match_string\":\"LINK-DOWN\"}'),
           ('2026-01-10 11:00+00', 'cli:alice', 'UPDATE', 'alert_rules', '1', 'raise priority', '{\"priority\":5}'),
           ('2026-01-11 09:00+00', 'webui_api:bob', 'UPDATE', 'alert_rules', '1', 'tune', '{\"priority\":6}'),
           ('2026-01-11 09:30+00', 'webui_api:bob', 'CREATE', 'development_hosts', 'lab-router-7', 'lab box', '{\"hostname\":\"lab-router-7\"}'),
           ('2026-01-12 23:59+00', 'cli:alice', 'UPDATE', 'dynamic_config', 'alerter_queue_warn', 'capacity planning', '{\"value\":\"900\"}'),
           ('2026-02-01 00:00+00', 'cli:carol', 'DELETE', 'alert_rules', '2', 'outside the range', NULL)" >/dev/null
}

test_audit_report_counts_seeded_rows() {
    seed_report
    adm GET "$API2/audit/report?from=2026-01-10&to=2026-01-31"
    assert_status 200
    assert_eq "5" "$(jqb .total)"
    assert_eq '{"CREATE":2,"UPDATE":3}' "$(jq -c .by_operation <<<"$HTTP_BODY")"
    assert_eq '{"cli:alice":3,"webui_api:bob":2}' "$(jq -c .by_user <<<"$HTTP_BODY")"
    assert_eq '{"alert_rules":3,"development_hosts":1,"dynamic_config":1}' "$(jq -c .by_table <<<"$HTTP_BODY")"
    assert_eq '{"2026-01-10":2,"2026-01-11":2,"2026-01-12":1}' "$(jq -c .by_day <<<"$HTTP_BODY")"
    assert_eq "alert_rules|1|3" "$(jqb '.top_records[0] | [.table_name,.record,.changes] | join("|")')"
    assert_eq "3" "$(jqb '.top_records|length')"
    assert_eq "2026-01-10T00:00:00.000Z" "$(jqb .from)"
    assert_eq "2026-01-31T23:59:59.999Z" "$(jqb .to)"
    http GET "$API/audit/report?from=2026-01-11T00:00:00Z&to=2026-01-11T23:00:00Z" -H "X-API-KEY: $RO_KEY"
    assert_status 200
    assert_eq "2" "$(jqb .total)" "v1 path and read-only key"
    adm GET "$API2/audit/report?from=nope"
    assert_status 400
    assert_eq "from" "$(jqb .field)"
    adm GET "$API2/audit/report?from=2026-02-01&to=2026-01-01"
    assert_status 400
    # the CLI gives the same numbers
    cli audit report --from 2026-01-10 --to 2026-01-31 --format json
    assert_eq 0 "$RC" "audit report json: $OUT"
    assert_eq "5" "$(jq -r .total <<<"$OUT")"
    cli audit report --from 2026-01-10 --to 2026-01-31 --format csv
    assert_eq 0 "$RC"
    assert_contains "$OUT" "section,key,count"
    assert_contains "$OUT" "user,cli:alice,3"
    assert_contains "$OUT" "record,alert_rules:1,3"
    cli audit report --from 2026-01-10 --to 2026-01-31
    assert_eq 0 "$RC"
    assert_contains "$OUT" "Total: 5 changes"
    cli audit report --format xml
    assert_eq 2 "$RC" "unknown format"
}

test_audit_full_text_search_over_reasons_and_values() {
    seed_report
    adm GET "$API2/audit?q=priority"
    assert_status 200
    assert_eq "2" "$(jqb '.logs|length')" "reason 'raise priority' and the value key priority"
    adm GET "$API2/audit?q=lab-router-7"
    assert_status 200
    assert_eq "1" "$(jqb '.logs|length')"
    assert_eq "development_hosts" "$(jqb '.logs[0].table_name')"
    adm GET "$API2/audit?q=capacity%20planning&changed_by=alice"
    assert_eq "1" "$(jqb '.pagination.total')" "q combines with the other filters"
    adm GET "$API2/audit?q=nothing-like-this"
    assert_eq "0" "$(jqb '.pagination.total')"
    # PostgreSQL can answer it from the GIN index on the same expression
    local plan
    plan=$(sql "SET enable_seqscan = off; EXPLAIN SELECT * FROM config_audit_log WHERE mutt_config_audit_tsv(reason, old_values, new_values) @@ plainto_tsquery('simple', 'priority')")
    assert_contains "$plan" "idx_config_audit_log_fts"
}

t_run "legal hold create/list/get/delete, audited, admin only" test_legal_hold_create_list_get_delete_audited_admin_only
t_run "a hold placed over the API survives retention" test_a_hold_placed_over_the_api_survives_retention
t_run "audit report counts seeded rows (API and CLI)" test_audit_report_counts_seeded_rows
t_run "audit full-text search over reasons and values" test_audit_full_text_search_over_reasons_and_values
stop_mutt
t_summary
