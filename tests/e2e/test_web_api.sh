#!/usr/bin/env bash
# End-to-end tests of the management API (role web, CONTRACT §7, D18-D22): one `mutt --roles=web`
# against the harness Redis and PostgreSQL. Covers auth (admin, read-only -> 403, query key off by
# default), versioning headers / negotiation / deprecation headers, every endpoint's success and
# error paths (rules, dev hosts, teams, config + history + rollback, audit, audit-logs, metrics,
# dlq + replay, version, slo), an audit row for every kind of change, injection attempts in every
# filter (400 or empty, never 500), PG down -> 503 without driver text, and the seed's curl
# examples. Needs: Redis + PostgreSQL (services.sh), MUTT_BIN, curl, jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "jq is required (tests/harness/deps.sh installs it)" >&2; exit 1; }

CONF="$E2E_TMP/mutt.conf"
# A listening port below the kernel's ephemeral range (32768+), so no outgoing connection on this
# busy machine can already hold it when mutt binds.
for _ in $(seq 1 50); do
    WEB_PORT=$(free_port)
    [ "$WEB_PORT" -lt 32768 ] && break
done
RO_KEY=e2e-readonly-key-0123456789abcdef0123456789
e2e_config "$CONF" WEBUI_READONLY_API_KEY=$RO_KEY METRICS_CACHE_TTL=0
API="http://127.0.0.1:$WEB_PORT/api/v1"
API2="http://127.0.0.1:$WEB_PORT/api/v2"
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
psql_q() { PGPASSWORD=$MUTT_TEST_PG_PASS psql -qtA -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB" -c "$1"; }
header() { grep -i "^$1:" "$HTTP_HEADERS" | head -n 1 | cut -d: -f2- | sed -e 's/^ *//' -e 's/\r$//'; }
jqb() { jq -r "$1" <<<"$HTTP_BODY"; }

# adm METHOD PATH [JSON]: request with the admin key (PATH after /api/v1)
adm() {
    local m=$1 p=$2
    if [ $# -ge 3 ]; then
        http "$m" "$API$p" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' --data-binary "$3"
    else
        http "$m" "$API$p" -H "X-API-KEY: $WEB_KEY"
    fi
}
# An error body per D18: error text, correlation id, and the field when given.
assert_error() {
    assert_status "$1" "${3:-}"
    assert_eq "$(jqb 'has("error") and has("correlation_id")')" true "D18 body: $HTTP_BODY"
    [ -z "${2:-}" ] || assert_eq "$2" "$(jqb '.field')" "field named"
}
audit_count() { # audit_count TABLE OPERATION [record_key|record_id=value SQL]
    psql_q "SELECT count(*) FROM config_audit_log WHERE table_name='$1' AND operation='$2' ${3:+AND $3}"
}
RULE='{"match_string":"LINK-DOWN","prod_handling":"Page_and_ticket","dev_handling":"Ticket_only","team_assignment":"NetOps","priority":5,"reason":"e2e"}'

# The harness hands every script a fresh database and an empty Redis; when run by hand twice, start
# from the same empty state anyway.
rcli flushdb >/dev/null
psql_q "DO \$\$ BEGIN IF to_regclass('config_audit_log') IS NOT NULL THEN
        TRUNCATE config_audit_log, alert_rules, development_hosts, device_teams, event_audit_log RESTART IDENTITY;
        END IF; END \$\$" >/dev/null
start_mutt "$CONF" web
wait_until 15 eval 'http GET "$API/rules"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "web routes did not appear within 15 s (last status $HTTP_STATUS)" >&2; exit 1; }

# ------------------------------------------------------------------------------ seed examples
test_seed_curl_examples() {
    http POST "$API/rules" -H "X-API-KEY: $WEB_KEY" -H "Content-Type: application/json" -d "$RULE"
    assert_status 201
    assert_eq "Rule created successfully" "$(jqb .message)"
    local id
    id=$(jqb .id)
    http GET "$API/audit?table_name=alert_rules" -H "X-API-KEY: $WEB_KEY"
    assert_status 200
    assert_eq "$id" "$(jqb "[.logs[] | select(.operation==\"CREATE\")][0].record_id")" "audit row of the new rule"
    [[ "$(jqb '.logs[0].changed_at')" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]] ||
        t_fail "changed_at is not ISO 8601 UTC with ms: $(jqb '.logs[0].changed_at')"
    http GET "$API/version"
    assert_status 200
    assert_eq 2.0 "$(jqb .current_version)"
    assert_eq '["2.0","1.0"]' "$(jq -c .supported_versions <<<"$HTTP_BODY")"
    local head
    head=$(curl -sS -I "$API/version")
    assert_contains "$head" "x-api-version: 2.0"
    assert_contains "$head" "x-api-supported-versions: 2.0, 1.0"
}

# ------------------------------------------------------------------------------------- auth
test_auth_missing_or_wrong_key_is_401_with_d18_body() {
    http GET "$API/rules"
    assert_error 401
    assert_eq "2.0" "$(header x-api-version)" "401 carries the version header"
    http GET "$API/rules" -H "X-API-KEY: wrong"
    assert_error 401
    http GET "$API/rules?api_key=$WEB_KEY" # W34: off by default
    assert_error 401
}

test_readonly_key_reads_but_cannot_write() {
    http GET "$API/rules" -H "X-API-KEY: $RO_KEY"
    assert_status 200
    http POST "$API/rules" -H "X-API-KEY: $RO_KEY" -H 'Content-Type: application/json' -d "$RULE"
    assert_error 403
    http PUT "$API/config/ingest_max_rate" -H "X-API-KEY: $RO_KEY" -H 'Content-Type: application/json' -d '{"value":5}'
    assert_error 403
}

test_changed_by_is_key_hash_and_x_actor_is_ignored() {
    local want
    want="webui_api:$(printf '%s' "$WEB_KEY" | sha256sum | cut -c1-8)"
    adm POST /dev-hosts '{"hostname":"actor-a"}'
    assert_status 201
    assert_eq "$want" "$(psql_q "SELECT changed_by FROM config_audit_log WHERE record_key='actor-a'")"
    assert_not_contains "$want" "${WEB_KEY:0:8}" "no part of the key"
    # D46: X-Actor is no longer honoured; the name still comes from the key
    http POST "$API/dev-hosts" -H "X-API-KEY: $WEB_KEY" -H 'X-Actor: alice@example.com' \
        -H 'Content-Type: application/json' -d '{"hostname":"actor-b"}'
    assert_status 201
    assert_eq "$want" "$(psql_q "SELECT changed_by FROM config_audit_log WHERE record_key='actor-b'")"
    # an X-Actor the old code refused (control character) changes nothing either
    http POST "$API/dev-hosts" -H "X-API-KEY: $WEB_KEY" -H "X-Actor: $(printf 'a\tb')" \
        -H 'Content-Type: application/json' -d '{"hostname":"actor-c"}'
    assert_status 201
    assert_eq "$want" "$(psql_q "SELECT changed_by FROM config_audit_log WHERE record_key='actor-c'")"
}

# ------------------------------------------------------------------------------- versioning
test_versioning_negotiation_and_deprecation_headers() {
    http GET "$API2/teams" -H "X-API-KEY: $WEB_KEY" -H 'Accept-Version: 1.0'
    assert_status 200
    assert_eq 1.0 "$(header x-api-version)"
    assert_contains "$(header x-api-deprecated)" "Deprecated in version 2.0"
    assert_eq 2026-01-01 "$(header x-api-sunset)"
    http GET "$API/teams?api_version=1.0" -H "X-API-KEY: $WEB_KEY" -H 'X-API-Version: 2.5'
    assert_eq 2.0 "$(header x-api-version)" "X-API-Version beats the query; 2.5 reads as 2.0"
    http GET "$API/teams?api_version=1.0" -H "X-API-KEY: $WEB_KEY"
    assert_eq 1.0 "$(header x-api-version)"
    http GET "$API/teams" -H "X-API-KEY: $WEB_KEY" -H 'Accept-Version: 9.9'
    assert_eq 2.0 "$(header x-api-version)" "unsupported -> default"
    assert_eq "" "$(header x-api-deprecated)"
}

test_unknown_api_path_is_404_and_wrong_method_405_with_headers() {
    adm GET /no-such-thing
    assert_error 404
    assert_eq 2.0 "$(header x-api-version)"
    adm DELETE /rules
    assert_error 405
    assert_eq "GET, POST" "$(header allow)"
}

# ------------------------------------------------------------------------------------ rules
test_rules_crud_with_audit_and_publish() {
    local sub id
    sub="$E2E_TMP/rules.sub"
    (timeout 10 redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" subscribe mutt:rules:updates >"$sub" 2>&1 &)
    wait_until 5 grep -q subscribe "$sub"
    adm POST /rules '{"trap_oid":".1.3.6.1.4.1.9.9.41.2","match_type":"oid_prefix","prod_handling":"Page_only","dev_handling":"Ignore","team_assignment":"NetOps","reason":"oid rule"}'
    assert_status 201
    id=$(jqb .id)
    wait_until 5 grep -q alert_rules "$sub" || t_fail "no PUBLISH on mutt:rules:updates"
    adm GET "/rules/$id"
    assert_status 200
    assert_eq oid_prefix "$(jqb .match_type)"
    assert_eq 100 "$(jqb .priority)" "default priority"
    adm PUT "/rules/$id" '{"priority":3,"is_active":false,"reason":"tune"}'
    assert_status 200
    assert_eq 3 "$(jqb .rule.priority)"
    assert_eq false "$(jqb .rule.is_active)"
    assert_eq 1 "$(audit_count alert_rules UPDATE "record_id=$id AND (old_values->>'priority')='100' AND (new_values->>'priority')='3' AND reason='tune'")"
    adm GET /rules
    assert_status 200
    assert_eq "$id" "$(jqb "[.rules[] | select(.id==$id)][0].id")"
    # rules with history can be deleted (W31): an event audit row points at it
    psql_q "INSERT INTO event_audit_log (event_timestamp, event_id, hostname, matched_rule_id, handling_decision) VALUES (now(), 'e2e-$id', 'h', $id, 'Page_only')" >/dev/null
    http DELETE "$API/rules/$id" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' -d '{"reason":"cleanup"}'
    assert_status 200
    assert_eq 1 "$(audit_count alert_rules DELETE "record_id=$id AND reason='cleanup' AND new_values IS NULL")"
    adm GET "/rules/$id"
    assert_error 404
    adm DELETE "/rules/$id"
    assert_error 404
    adm PUT "/rules/$id" '{"priority":1}'
    assert_error 404
    adm GET /rules/abc
    assert_error 400 id
}

test_rule_validation_names_the_field() {
    local base='"prod_handling":"P","dev_handling":"D","team_assignment":"T"'
    adm POST /rules "{\"match_string\":\"x\",$base,\"match_type\":\"fuzzy\"}"
    assert_error 400 match_type
    adm POST /rules "{\"match_string\":\"x\",$base,\"syslog_severity\":8}"
    assert_error 400 syslog_severity
    adm POST /rules "{\"match_string\":\"x\",$base,\"syslog_severity\":\"3\"}"
    assert_error 400 syslog_severity
    adm POST /rules "{\"match_string\":\"(oops\",$base,\"match_type\":\"regex\"}"
    assert_error 400 match_string
    adm POST /rules "{$base}"
    assert_error 400 match_string
    adm POST /rules "{\"match_string\":\"x\",$base,\"priority\":\"high\"}"
    assert_error 400 priority
    adm POST /rules "{\"match_string\":\"x\",\"prod_handling\":\"\",\"dev_handling\":\"D\",\"team_assignment\":\"T\"}"
    assert_error 400 prod_handling
    adm POST /rules "{\"match_string\":\"x\",\"prod_handling\":\"P\",\"dev_handling\":\"D\"}"
    assert_error 400 team_assignment
    adm POST /rules 'not json'
    assert_error 400
    adm POST /rules '[1,2]'
    assert_error 400
    adm POST /rules "{\"trap_oid\":\"1..2\",$base,\"match_type\":\"oid_prefix\"}"
    assert_error 400
    adm POST /rules "{\"match_string\":\"ok\",$base}"
    assert_status 201
    local id
    id=$(jqb .id)
    adm PUT "/rules/$id" '{"unknown_field":1}'
    assert_error 400
    adm PUT "/rules/$id" '{"match_type":"regex","match_string":"[z-a]"}'
    assert_error 400 match_string
    adm PUT "/rules/$id" '{"match_string":null}'
    assert_error 400 match_string
}

# --------------------------------------------------------------------------- dev hosts, teams
test_dev_hosts_crud_409_404_and_audit() {
    adm POST /dev-hosts '{"hostname":"dev-router1","reason":"lab"}'
    assert_status 201
    adm POST /dev-hosts '{"hostname":"dev-router1"}'
    assert_error 409
    adm POST /dev-hosts '{}'
    assert_error 400 hostname
    adm GET /dev-hosts
    assert_status 200
    assert_eq dev-router1 "$(jqb '[.hosts[].hostname | select(.=="dev-router1")][0]')"
    adm DELETE /dev-hosts/dev-router1
    assert_status 200
    adm DELETE /dev-hosts/dev-router1
    assert_error 404
    assert_eq 1 "$(audit_count development_hosts CREATE "record_key='dev-router1' AND reason='lab'")"
    assert_eq 1 "$(audit_count development_hosts DELETE "record_key='dev-router1'")"
}

# Path parameters are decoded exactly once (issue 11 item 4): `%2541` addresses the literal
# `host%41` (not `hostA`), `%2F` a hostname with a slash, `%2500` the literal `%00`, and `%00`
# is a 400 naming the parameter, never a truncated name.
dev_host_exists() { psql_q "SELECT count(*) FROM development_hosts WHERE hostname = '$1'"; }
test_path_parameters_are_decoded_exactly_once() {
    local h
    for h in hostA 'host%41' 'rack/host1' 'x%00y'; do
        adm POST /dev-hosts "{\"hostname\":\"$h\"}"
        assert_status 201 "create $h"
    done
    adm DELETE /dev-hosts/host%2541
    assert_status 200 "DELETE host%2541"
    assert_eq 0 "$(dev_host_exists 'host%41')" "the literal host%41 is deleted"
    assert_eq 1 "$(dev_host_exists hostA)" "hostA is untouched"
    adm DELETE /dev-hosts/rack%2Fhost1
    assert_status 200 "DELETE rack%2Fhost1"
    assert_eq 0 "$(dev_host_exists 'rack/host1')" "rack/host1 is deleted"
    adm DELETE /dev-hosts/hostA%00.evil
    assert_error 400 hostname
    assert_contains "$(jqb .error)" "NUL"
    assert_eq 1 "$(dev_host_exists hostA)" "a NUL never truncates to hostA"
    adm DELETE /dev-hosts/x%2500y
    assert_status 200 "DELETE x%2500y"
    assert_eq 0 "$(dev_host_exists 'x%00y')" "the literal x%00y is deleted"
    adm DELETE /dev-hosts/hostA
    assert_status 200
    # the same for teams, where a GET-able resource shows the addressed row
    adm POST /teams '{"hostname":"core/sw1","team_assignment":"NetOps"}'
    assert_status 201
    adm PUT /teams/core%2Fsw1 '{"team_assignment":"Security"}'
    assert_status 200 "PUT /teams/core%2Fsw1"
    adm GET /teams
    assert_eq Security "$(jqb '[.teams[] | select(.hostname=="core/sw1")][0].team_assignment')"
    adm DELETE /teams/core%2Fsw1
    assert_status 200
}

test_teams_crud_409_404_and_audit() {
    adm POST /teams '{"hostname":"router1.prod","team_assignment":"NetOps"}'
    assert_status 201
    adm POST /teams '{"hostname":"router1.prod","team_assignment":"Other"}'
    assert_error 409
    adm POST /teams '{"hostname":"x"}'
    assert_error 400 team_assignment
    adm PUT /teams/router1.prod '{"team_assignment":"Security","reason":"moved"}'
    assert_status 200
    adm PUT /teams/router1.prod '{}'
    assert_error 400 team_assignment
    adm PUT /teams/nope.prod '{"team_assignment":"X"}'
    assert_error 404
    adm GET /teams
    assert_eq Security "$(jqb '[.teams[] | select(.hostname=="router1.prod")][0].team_assignment')"
    adm DELETE /teams/router1.prod
    assert_status 200
    adm DELETE /teams/router1.prod
    assert_error 404
    assert_eq 1 "$(audit_count device_teams UPDATE "record_key='router1.prod' AND old_values->>'team_assignment'='NetOps' AND new_values->>'team_assignment'='Security'")"
    assert_eq 1 "$(audit_count device_teams CREATE "record_key='router1.prod'")"
    assert_eq 1 "$(audit_count device_teams DELETE "record_key='router1.prod'")"
}

# ----------------------------------------------------------------------------------- config
test_config_get_put_history_rollback() {
    adm GET /config
    assert_status 200
    assert_eq int "$(jqb '.keys.ingest_max_rate.type')"
    assert_eq "$(jqb '.config.ingest_max_rate')" "$(jqb '.keys.ingest_max_rate.value')"
    assert_eq true "$(jqb '.keys.ingest_max_rate | has("source") and has("default") and has("min") and has("max") and has("description")')"
    adm GET /config/nope
    assert_error 404
    adm PUT /config/nope '{"value":"1"}'
    assert_error 400 key
    adm PUT /config/ingest_max_rate '{"value":"abc"}'
    assert_error 400 value
    adm PUT /config/ingest_max_rate '{"reason":"no value"}'
    assert_error 400 value
    adm PUT /config/ingest_max_rate '{"value":2500,"reason":"load test"}'
    assert_status 200
    local create_id
    create_id=$(jqb .audit_id)
    assert_eq 2500 "$(rcli get mutt:config:ingest_max_rate)"
    adm PUT /config/ingest_max_rate '{"value":"3000","reason":"more"}'
    assert_status 200
    local update_id
    update_id=$(jqb .audit_id)
    assert_eq 2500 "$(jqb .old_value)"
    adm GET /config/ingest_max_rate
    assert_eq 3000 "$(jqb .value)"
    assert_eq redis "$(jqb .source)"
    adm GET "/config/history?key=ingest_max_rate"
    assert_status 200
    assert_eq 2 "$(jqb '.pagination.total')"
    assert_eq UPDATE "$(jqb '.history[0].operation')"
    # rollback of the UPDATE restores 2500; rollback of the CREATE deletes the key (D19)
    adm POST /config/rollback "{\"audit_id\":$update_id,\"reason\":\"undo\"}"
    assert_status 200
    assert_eq 2500 "$(rcli get mutt:config:ingest_max_rate)"
    adm POST /config/rollback "{\"audit_id\":$create_id}"
    assert_status 200
    assert_eq 0 "$(rcli exists mutt:config:ingest_max_rate)"
    assert_eq 2 "$(audit_count dynamic_config ROLLBACK "record_key='ingest_max_rate'")"
    adm POST /config/rollback '{"audit_id":999999}'
    assert_error 404
    adm POST /config/rollback '{"audit_id":"x"}'
    assert_error 400 audit_id
    local rule_audit
    rule_audit=$(psql_q "SELECT min(id) FROM config_audit_log WHERE table_name='alert_rules'")
    adm POST /config/rollback "{\"audit_id\":$rule_audit}"
    assert_error 400 audit_id
}

# ------------------------------------------------------------------------------------ audit
test_audit_filters_paging_and_bad_values() {
    adm GET "/audit?operation=CREATE&limit=1"
    assert_status 200
    assert_eq 1 "$(jqb '.logs | length')"
    assert_eq 1 "$(jqb .pagination.limit)"
    [ "$(jqb .pagination.pages)" = "$(jqb .pagination.total)" ] || t_fail "pages with limit 1 = total"
    adm GET "/audit?limit=5000"
    assert_status 200
    assert_eq 200 "$(jqb .pagination.limit)" "limit clamped (D18)"
    adm GET "/audit?page=0"
    assert_error 400 page
    adm GET "/audit?page=abc"
    assert_error 400 page
    adm GET "/audit?limit=-1"
    assert_error 400 limit
    adm GET "/audit?operation=create"
    assert_error 400 operation
    adm GET "/audit?table_name=users"
    assert_error 400 table_name
    adm GET "/audit?record_id=1x"
    assert_error 400 record_id
    adm GET "/audit?start_date=yesterday"
    assert_error 400 start_date
    adm GET "/audit?start_date=2020-01-01T00:00:00Z&end_date=2999-01-01T00:00:00Z&table_name=alert_rules"
    assert_status 200
    [ "$(jqb .pagination.total)" -ge 1 ] || t_fail "date range finds rows"
    adm GET "/audit?page=9999"
    assert_status 200
    assert_eq 0 "$(jqb '.logs | length')"
}

test_audit_logs_event_audit() {
    psql_q "INSERT INTO event_audit_log (event_timestamp, event_id, correlation_id, hostname, matched_rule_id, handling_decision, forwarded_to_moog, raw_message) VALUES ('2026-01-02T03:04:05.678Z', 'ev-1', 'c-1', 'host-ea', 42, 'Page_only', true, '{\"m\":1}')" >/dev/null
    adm GET "/audit-logs?hostname=host-ea&rule_id=42"
    assert_status 200
    assert_eq 1 "$(jqb .pagination.total)"
    assert_eq "2026-01-02T03:04:05.678Z" "$(jqb '.logs[0].event_timestamp')"
    assert_eq '{"m":1}' "$(jqb '.logs[0].raw_message')"
    adm GET "/audit-logs?rule_id=x"
    assert_error 400 rule_id
    adm GET "/audit-logs?end_date=2026-13-01"
    assert_error 400 end_date
}

# Every filter with injection attempts: 400 or an empty result, never a 5xx, and the table intact.
test_filter_injection_attempts_are_harmless() {
    local before p v code
    before=$(psql_q "SELECT count(*) FROM config_audit_log")
    for p in changed_by operation table_name record_id start_date end_date page limit; do
        for v in "' OR 1=1 --" "%" "%25" "w_bui" "\\" "ü%C3%A9✓" "1;DROP TABLE config_audit_log"; do
            code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-KEY: $WEB_KEY" -G "$API/audit" --data-urlencode "$p=$v")
            case "$code" in
            400) ;;
            200)
                local n
                n=$(curl -s -H "X-API-KEY: $WEB_KEY" -G "$API/audit" --data-urlencode "$p=$v" | jq '.logs | length')
                [ "$n" = 0 ] || t_fail "$p=[$v] returned $n rows"
                ;;
            *) t_fail "$p=[$v] answered $code" ;;
            esac
        done
    done
    for p in hostname rule_id start_date end_date page limit; do
        for v in "' OR 1=1 --" "%" "ü✓"; do
            code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-KEY: $WEB_KEY" -G "$API/audit-logs" --data-urlencode "$p=$v")
            [ "$code" = 400 ] || [ "$code" = 200 ] || t_fail "audit-logs $p=[$v] answered $code"
        done
    done
    # % and _ in changed_by match only themselves (ILIKE escaping, D18): "webui%api" and
    # "w_bui" would match "webui_api:..." as patterns, the literal "webui_api" does match
    http GET "$API/audit?changed_by=webui%25api" -H "X-API-KEY: $WEB_KEY"
    assert_status 200
    assert_eq 0 "$(jqb '.logs | length')"
    http GET "$API/audit?changed_by=WEBUI_API" -H "X-API-KEY: $WEB_KEY"
    assert_status 200
    [ "$(jqb '.logs | length')" -gt 0 ] || t_fail "the literal (any case) matches"
    assert_eq "$before" "$(psql_q "SELECT count(*) FROM config_audit_log")"
}

# ---------------------------------------------------------------------------------- ops
test_metrics_summary_chart_and_depths() {
    local minute hour
    minute=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M)
    hour=$(date -u +%Y-%m-%dT%H)
    rcli set "mutt:metrics:1m:$minute" 120 >/dev/null
    rcli set "mutt:metrics:1h:$hour" 600 >/dev/null
    rcli rpush mutt:alert_queue a b c >/dev/null
    adm GET /metrics
    assert_status 200
    assert_eq 120 "$(jqb '.summary.current_rate_1m')"
    assert_eq 8 "$(jqb '.summary.avg_rate_15m')"
    assert_eq 24 "$(jqb '.chart_24h.labels | length')"
    assert_eq 10 "$(jqb '.chart_24h.data[23]')"
    assert_eq "$(date -u +%H):00" "$(jqb '.chart_24h.labels[23]')"
    assert_eq 3 "$(jqb '.queues.alert')"
    assert_eq CLOSED "$(jqb '.breaker.state')"
    rcli del mutt:alert_queue >/dev/null
}

test_dlq_list_and_replay_is_atomic_and_audited() {
    rcli del mutt:dlq:alerter mutt:dlq:dead mutt:ingest_queue mutt:alert_queue >/dev/null
    rcli lpush mutt:dlq:alerter '{"hostname":"h1","_dlq_reason":"x","_replay_count":1}' '{"hostname":"h2"}' 'not json' >/dev/null
    rcli lpush mutt:dlq:dead '{"hostname":"d1","_origin":"alert"}' '{"hostname":"d2","_origin":"mars"}' >/dev/null
    adm GET /dlq
    assert_status 200
    assert_eq 3 "$(jqb .dlqs.alerter.depth)"
    assert_eq h2 "$(jqb '.dlqs.alerter.items[1].hostname')"
    adm POST /dlq/alerter/replay '{"count":10,"reason":"fixed"}'
    assert_status 200
    assert_eq 2 "$(jqb .replayed)"
    assert_eq 1 "$(jqb .skipped)"
    assert_eq 2 "$(rcli llen mutt:ingest_queue)"
    assert_eq 1 "$(rcli llen mutt:dlq:alerter)" "the unreadable item stays in the DLQ"
    assert_eq 2 "$(rcli lrange mutt:ingest_queue 0 -1 | jq -s 'map(select(.hostname=="h1"))[0]._replay_count')"
    assert_eq 0 "$(rcli keys 'mutt:processing:web:*' | grep -c . || true)"
    adm POST /dlq/dead/replay
    assert_status 200
    assert_eq 1 "$(rcli llen mutt:alert_queue)"
    assert_eq 1 "$(rcli llen mutt:dlq:dead)"
    adm POST /dlq/nope/replay
    assert_error 404 name
    adm POST /dlq/alerter/replay '{"count":0}'
    assert_error 400 count
    assert_eq 1 "$(audit_count dlq REPLAY "record_key='alerter' AND reason='fixed' AND (new_values->>'replayed')='2'")"
    rcli del mutt:dlq:alerter mutt:dlq:dead mutt:ingest_queue mutt:alert_queue >/dev/null
}

test_slo_from_per_minute_counters() {
    local minute
    minute=$(date -u +%Y-%m-%dT%H:%M)
    rcli hset "mutt:slo:ingestor_availability:$minute" good 990 total 1000 >/dev/null
    adm GET /slo
    assert_status 200
    assert_eq 6 "$(jqb '.slos | length')"
    local s='.slos[] | select(.slo_name=="ingestor_availability")'
    assert_eq 1000 "$(jqb "$s | .total")"
    assert_eq critical "$(jqb "$s | .status")" "1% errors against a 0.1% budget burns 10x"
    assert_eq no_data "$(jqb '.slos[] | select(.slo_name=="forwarder_availability") | .status')"
}

# ------------------------------------------------------------------------------- failures
test_postgres_down_is_503_without_driver_text() {
    bash "$SERVICES" stop-pg >/dev/null 2>&1
    adm GET /rules
    local st=$HTTP_STATUS body=$HTTP_BODY
    adm POST /dev-hosts '{"hostname":"while-down"}'
    local st2=$HTTP_STATUS
    bash "$SERVICES" start-pg >/dev/null 2>&1
    HTTP_STATUS=$st HTTP_BODY=$body
    assert_error 503
    assert_eq "database unavailable" "$(jqb .error)"
    assert_eq 503 "$st2"
    wait_until 20 eval 'adm GET /rules; [ "$HTTP_STATUS" = 200 ]' || t_fail "API did not recover after PostgreSQL came back"
}

test_dashboard_pages_are_embedded_and_self_contained() {
    local page
    for page in / /audit /ui/app.js /ui/app.css /ui/dashboard.js /ui/audit.js; do
        http GET "http://127.0.0.1:$WEB_PORT$page"
        assert_status 200 "$page"
        assert_not_contains "$HTTP_BODY" "cdn." "$page loads nothing from a CDN (W39)"
    done
    http GET "http://127.0.0.1:$WEB_PORT/"
    assert_contains "$(header content-type)" "text/html"
    assert_contains "$HTTP_BODY" "MUTT Message Rate Dashboard"
    assert_not_contains "$HTTP_BODY" "$WEB_KEY" "no key in the page"
    http GET "http://127.0.0.1:$WEB_PORT/ui/nope.js"
    assert_status 404
    http GET "http://127.0.0.1:$WEB_PORT/ui/../mutt"
    assert_status 404
}

t_run "seed curl examples (create rule, audit by table, version, -I headers)" test_seed_curl_examples
t_run "auth: no/wrong/query key -> 401 (D18 body)" test_auth_missing_or_wrong_key_is_401_with_d18_body
t_run "auth: read-only key reads, writes -> 403" test_readonly_key_reads_but_cannot_write
t_run "changed_by = webui_api:<sha256 8 hex>; X-Actor ignored (D46)" test_changed_by_is_key_hash_and_x_actor_is_ignored
t_run "versioning: negotiation order, deprecation and sunset for 1.0" test_versioning_negotiation_and_deprecation_headers
t_run "unknown /api path 404, wrong method 405 + Allow, with version headers" test_unknown_api_path_is_404_and_wrong_method_405_with_headers
t_run "rules CRUD: audit rows, publish, delete with history, 404s" test_rules_crud_with_audit_and_publish
t_run "rule validation: 400 naming the field" test_rule_validation_names_the_field
t_run "dev hosts: CRUD, 409, 404, audit" test_dev_hosts_crud_409_404_and_audit
t_run "path parameters: decoded once (%2541, %2F, %2500), %00 -> 400" test_path_parameters_are_decoded_exactly_once
t_run "teams: CRUD, 409, 404, audit" test_teams_crud_409_404_and_audit
t_run "config: GET shape, PUT validation, history, rollback (update and create)" test_config_get_put_history_rollback
t_run "audit: filters, limit clamp, page rules, bad values 400" test_audit_filters_paging_and_bad_values
t_run "audit-logs: event audit filters and ISO timestamps" test_audit_logs_event_audit
t_run "filter injection attempts: 400 or empty, never 5xx" test_filter_injection_attempts_are_harmless
t_run "metrics: summary, 24 h chart, queue depths, breaker" test_metrics_summary_chart_and_depths
t_run "dlq: list, replay (atomic moves, _replay_count, origin), audit" test_dlq_list_and_replay_is_atomic_and_audited
t_run "slo: computed from per-minute counters" test_slo_from_per_minute_counters
t_run "dashboard: /, /audit and /ui/* embedded, no CDN" test_dashboard_pages_are_embedded_and_self_contained
t_run "PostgreSQL down: 503 database unavailable, recovery" test_postgres_down_is_503_without_driver_text

stop_mutt
t_summary
