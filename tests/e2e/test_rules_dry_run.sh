#!/usr/bin/env bash
# End-to-end test of the rule dry-run (issue 16 §1, D41, D47, D62): one `mutt --roles=ingest,alert,web`
# against the harness Redis and PostgreSQL. Events go in through POST /ingest, the alert stage
# fills mutt:sample_events; POST /api/v{1,2}/rules/dry-run answers every count from that sample
# (a new rule, an edit), validates the body as POST /rules does (400, 404), is allowed to the
# read-only key and writes nothing; `mutt rules dry-run FILE.json` prints the same as a table;
# sample_events caps the list and 0 stops it; an active maintenance window shows as decision
# Maintenance (held_by_maintenance). Needs: Redis + PostgreSQL (services.sh), MUTT_BIN,
# curl, jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || { echo "jq is required (tests/harness/deps.sh installs it)" >&2; exit 1; }

for _ in $(seq 1 50); do
    WEB_PORT=$(free_port)
    [ "$WEB_PORT" -lt 32768 ] && break
done
CONF="$E2E_TMP/mutt.conf"
RO_KEY=e2e-readonly-key-0123456789abcdef0123456789
e2e_config "$CONF" WEBUI_READONLY_API_KEY=$RO_KEY
API="http://127.0.0.1:$WEB_PORT/api/v2"
API1="http://127.0.0.1:$WEB_PORT/api/v1"
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
sql() { PGPASSWORD=$MUTT_TEST_PG_PASS psql -qtA -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" \
    -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB" -c "$1"; }
jqb() { jq -r "$1" <<<"$HTTP_BODY"; }
# dry KEY BODY [BASE]: POST BASE/rules/dry-run with KEY
dry() { http POST "${3:-$API}/rules/dry-run" -H "X-API-KEY: $1" -H 'Content-Type: application/json' --data-binary "$2"; }

NEW_DOWN='{"match_string":"down","priority":15,"prod_handling":"Page_only","dev_handling":"Ignore","team_assignment":"OPS"}'
EDIT_2='{"rule_id":2,"match_string":"down","priority":5}'

rcli FLUSHALL >/dev/null
# nothing consumes mutt:alert_queue here: keep backpressure (W17) out of the way
rcli SET mutt:config:alerter_queue_warn_threshold 100000000 >/dev/null
rcli SET mutt:config:alerter_queue_shed_threshold 100000000 >/dev/null
"$MUTT_BIN" --config "$CONF" migrate >/dev/null
sql "TRUNCATE config_audit_log, alert_rules, development_hosts, device_teams, event_audit_log, maintenance_windows RESTART IDENTITY"
# 1 disk (p10), 2 link down (p20), 3 fan (p1, inactive); dev1 is a development host
sql "INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling, team_assignment, is_active)
     VALUES ('disk', 'contains', 10, 'Page_and_ticket', 'Ignore', 'NETO', true),
            ('link down', 'contains', 20, 'Ticket_only', 'Ignore', 'NET', true),
            ('fan', 'contains', 1, 'Page_only', 'Ignore', 'HW', false)"
sql "INSERT INTO development_hosts (hostname) VALUES ('dev1')"

start_mutt "$CONF" ingest,alert,web
wait_until 30 eval 'http GET "$API/rules" -H "X-API-KEY: $WEB_KEY"; [ "$HTTP_STATUS" = 200 ]' ||
    t_fail "web routes did not answer within 30 s"

ingest() { # ingest HOST MESSAGE
    http POST "http://127.0.0.1:$INGEST_PORT/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" \
        -H 'Content-Type: application/json' \
        -d "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"$1\",\"message\":\"$2\"}"
    assert_status 200 "ingest $2"
}
# today: rule 1, rule 2, unhandled (rule 3 is inactive), unhandled, rule 1 (before 2), unhandled
ingest web1 "disk full on /var"
ingest web2 "link down eth0"
ingest dev1 "fan failure"
ingest web1 "all fine"
ingest dev1 "disk link down"
ingest dev1 "system down"
wait_until 30 eval '[ "$(rcli LLEN mutt:sample_events)" = 6 ]' ||
    t_fail "the alert stage did not sample 6 events within 30 s (LLEN $(rcli LLEN mutt:sample_events))"

# ------------------------------------------------------------------------------------- tests
test_new_rule_counts_every_bucket() {
    dry "$WEB_KEY" "$NEW_DOWN"
    assert_status 200
    assert_eq 6 "$(jqb .examined)" examined
    assert_eq 2 "$(jqb .would_match)" "would_match: link down eth0, system down"
    assert_eq 2 "$(jqb .newly_matched)" newly_matched
    assert_eq '{"2":1}' "$(jq -c .taken_from <<<"$HTTP_BODY")" "taken from rule 2 (priority 20 > 15)"
    assert_eq 1 "$(jqb .unhandled_now_handled)" "system down was unhandled"
    assert_eq 2 "$(jqb '.examples | length')" examples
    local web2 dev1
    web2=$(jq -c '.examples[] | select(.event.hostname == "web2")' <<<"$HTTP_BODY")
    assert_eq '{"rule_id":null,"handling_decision":"Page_only","environment":"production","forwarded":true,"team_assignment":"OPS"}' \
        "$(jq -c .decision <<<"$web2")" "production host: prod_handling"
    assert_eq '{"rule_id":2,"handling_decision":"Ticket_only"}' "$(jq -c .current <<<"$web2")" "current decision"
    dev1=$(jq -c '.examples[] | select(.event.hostname == "dev1")' <<<"$HTTP_BODY")
    assert_eq "system down" "$(jq -r .event.message <<<"$dev1")"
    assert_eq '["Ignore","development",false]' \
        "$(jq -c '.decision | [.handling_decision, .environment, .forwarded]' <<<"$dev1")" "dev host: dev_handling"
    assert_eq null "$(jq -c .current.rule_id <<<"$dev1")" "unhandled today"
}

test_edit_counts_only_what_changes() {
    dry "$WEB_KEY" "$EDIT_2"
    assert_status 200
    assert_eq 6 "$(jqb .examined)"
    assert_eq 3 "$(jqb .would_match)" "link down eth0, disk link down, system down"
    assert_eq 2 "$(jqb .newly_matched)" "link down eth0 is rule 2's already"
    assert_eq '{"1":1}' "$(jq -c .taken_from <<<"$HTTP_BODY")" "disk link down leaves rule 1 (p10 > 5)"
    assert_eq 1 "$(jqb .unhandled_now_handled)"
    assert_eq 2 "$(jqb '[.examples[].decision.rule_id] | unique | .[0]')" "an edit keeps its id"
    # activating the inactive rule 3 as it is stored takes "fan failure" from the unhandled
    dry "$WEB_KEY" '{"rule_id":3,"is_active":true}'
    assert_status 200
    assert_eq 1 "$(jqb .would_match)"
    assert_eq 1 "$(jqb .unhandled_now_handled)"
    assert_eq "fan failure" "$(jqb '.examples[0].event.message')"
}

test_dry_run_writes_nothing() {
    local before after
    before=$(sql "SELECT count(*) || '/' || max(updated_at)::text FROM alert_rules")
    dry "$WEB_KEY" "$EDIT_2"
    assert_status 200
    dry "$WEB_KEY" "$NEW_DOWN"
    assert_status 200
    after=$(sql "SELECT count(*) || '/' || max(updated_at)::text FROM alert_rules")
    assert_eq "$before" "$after" "alert_rules unchanged"
    assert_eq "link down" "$(sql "SELECT match_string FROM alert_rules WHERE id = 2")"
    assert_eq 0 "$(sql "SELECT count(*) FROM config_audit_log")" "no audit row"
}

test_readonly_key_may_dry_run_on_v1_and_v2() {
    dry "$RO_KEY" "$NEW_DOWN"
    assert_status 200 "read-only key, v2"
    assert_eq 2 "$(jqb .would_match)"
    dry "$RO_KEY" "$NEW_DOWN" "$API1"
    assert_status 200 "read-only key, v1"
    assert_eq 2 "$(jqb .newly_matched)"
    # still a read-only key: the real write is refused
    http POST "$API/rules" -H "X-API-KEY: $RO_KEY" -H 'Content-Type: application/json' --data-binary "$NEW_DOWN"
    assert_status 403 "POST /rules with the read-only key"
    http POST "$API/rules/dry-run" -H 'Content-Type: application/json' --data-binary "$NEW_DOWN"
    assert_status 401 "no key"
}

test_invalid_bodies_are_400_as_post_rules() {
    local body want
    # the same body gets the same 400 from POST /rules and from the dry-run
    for body in '{"match_string":"(","match_type":"regex","prod_handling":"Page_only","dev_handling":"Ignore","team_assignment":"O"}' \
        '{"prod_handling":"Page_only","dev_handling":"Ignore","team_assignment":"O"}' \
        '{"match_string":"x","match_type":"glob","prod_handling":"Page_only","dev_handling":"Ignore","team_assignment":"O"}' \
        '{"match_string":"x","priority":"high","prod_handling":"Page_only","dev_handling":"Ignore","team_assignment":"O"}'; do
        http POST "$API/rules" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' --data-binary "$body"
        assert_status 400 "POST /rules $body"
        want=$(jq -c '{error, field}' <<<"$HTTP_BODY")
        dry "$WEB_KEY" "$body"
        assert_status 400 "dry-run $body"
        assert_eq "$want" "$(jq -c '{error, field}' <<<"$HTTP_BODY")" "same 400 as POST /rules"
    done
    dry "$WEB_KEY" 'not json'
    assert_status 400 "not JSON"
    dry "$WEB_KEY" '{"rule_id":"2","match_string":"x"}'
    assert_status 400 "rule_id as a string"
    assert_eq rule_id "$(jqb .field)"
    dry "$WEB_KEY" '{"rule_id":2,"match_type":"regex","match_string":"("}'
    assert_status 400 "an edit validated as PUT"
    assert_eq match_string "$(jqb .field)"
    dry "$WEB_KEY" '{"rule_id":999,"match_string":"x"}'
    assert_status 404 "unknown rule_id"
    http GET "$API/rules/dry-run" -H "X-API-KEY: $WEB_KEY"
    assert_status 405 "GET is not a dry-run"
}

test_cli_prints_the_table() {
    local out rc=0
    printf '%s' "$NEW_DOWN" >"$E2E_TMP/new.json"
    out=$("$MUTT_BIN" --config "$CONF" rules dry-run "$E2E_TMP/new.json") || rc=$?
    assert_eq 0 "$rc" "exit status"
    assert_contains "$out" "Dry-run of a new rule"
    [[ "$out" =~ examined\ +6 ]] || t_fail "examined 6 not in: $out"
    [[ "$out" =~ would\ match\ +2 ]] || t_fail "would match 2 not in: $out"
    [[ "$out" =~ newly\ matched\ +2 ]] || t_fail "newly matched 2 not in: $out"
    [[ "$out" =~ unhandled\ now\ handled\ +1 ]] || t_fail "unhandled now handled 1 not in: $out"
    [[ "$out" =~ taken\ from\ rule\ 2\ +1 ]] || t_fail "taken from rule 2 not in: $out"
    assert_contains "$out" "HOSTNAME"
    [[ "$out" =~ web2\ +production\ +Page_only\ +yes\ +2\ +link\ down\ eth0 ]] || t_fail "web2 row not in: $out"
    [[ "$out" =~ dev1\ +development\ +Ignore\ +no\ +unhandled\ +system\ down ]] || t_fail "dev1 row not in: $out"
    # --json is the API's answer
    printf '%s' "$EDIT_2" >"$E2E_TMP/edit.json"
    out=$("$MUTT_BIN" --config "$CONF" rules dry-run --json "$E2E_TMP/edit.json")
    dry "$WEB_KEY" "$EDIT_2"
    assert_eq "$(jq -cS 'del(.examples)' <<<"$HTTP_BODY")" "$(jq -cS 'del(.examples)' <<<"$out")" "CLI --json = API"
    assert_eq "$(jq -c '[.examples[].event.message]' <<<"$HTTP_BODY")" "$(jq -c '[.examples[].event.message]' <<<"$out")"
    # an invalid body: exit 2, the API's message
    printf '%s' '{"match_string":"x","match_type":"glob","prod_handling":"P","dev_handling":"I","team_assignment":"O"}' \
        >"$E2E_TMP/bad.json"
    rc=0
    out=$("$MUTT_BIN" --config "$CONF" rules dry-run "$E2E_TMP/bad.json" 2>&1) || rc=$?
    assert_eq 2 "$rc" "invalid rule exit status"
    assert_contains "$out" "invalid rule"
    assert_contains "$out" "match_type"
}

test_active_window_shows_maintenance_not_a_page() {
    # issue 16 §3: the alert stage would hold web2's page, so the dry-run must not promise one.
    # A window for another team, and a window that ended, hold nothing.
    local now other held out
    now=$(date +%s)
    iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S.000Z; }
    http POST "$API/maintenance-windows" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' \
        --data-binary "{\"hostname_pattern\":\"web*\",\"team\":\"OTHER\",\"ends_at\":\"$(iso $((now + 3600)))\"}"
    assert_status 201 "window for team OTHER"
    other=$(jqb .id)
    dry "$WEB_KEY" "$NEW_DOWN"
    assert_status 200
    assert_eq 0 "$(jqb .held_by_maintenance)" "a window for team OTHER does not hold team OPS's page"
    assert_eq Page_only "$(jqb '.examples[] | select(.event.hostname == "web2") | .decision.handling_decision')"
    http POST "$API/maintenance-windows" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' \
        --data-binary "{\"hostname_pattern\":\"WEB2\",\"ends_at\":\"$(iso $((now + 3600)))\"}"
    assert_status 201 "window for web2, any team"
    held=$(jqb .id)
    dry "$WEB_KEY" "$NEW_DOWN"
    assert_status 200
    assert_eq 2 "$(jqb .would_match)" "matching is unchanged by a window"
    assert_eq 2 "$(jqb .newly_matched)"
    assert_eq 1 "$(jqb .held_by_maintenance)" "web2 is held"
    local web2 dev1
    web2=$(jq -c '.examples[] | select(.event.hostname == "web2")' <<<"$HTTP_BODY")
    assert_eq "{\"rule_id\":null,\"handling_decision\":\"Maintenance\",\"environment\":\"production\",\"forwarded\":false,\"team_assignment\":\"OPS\",\"maintenance_window\":$held}" \
        "$(jq -c .decision <<<"$web2")" "held by the window: Maintenance, not forwarded"
    assert_eq '{"rule_id":2,"handling_decision":"Maintenance"}' "$(jq -c .current <<<"$web2")" \
        "today's rule 2 (Ticket_only) is held too"
    dev1=$(jq -c '.examples[] | select(.event.hostname == "dev1")' <<<"$HTTP_BODY")
    assert_eq '["Ignore",false]' "$(jq -c '.decision | [.handling_decision, .forwarded]' <<<"$dev1")" "dev1 untouched"
    # the CLI reads the same snapshot
    printf '%s' "$NEW_DOWN" >"$E2E_TMP/new.json"
    out=$("$MUTT_BIN" --config "$CONF" rules dry-run "$E2E_TMP/new.json")
    [[ "$out" =~ held\ by\ maintenance\ +1 ]] || t_fail "held by maintenance 1 not in: $out"
    [[ "$out" =~ web2\ +production\ +Maintenance\ +no\ +2\ +link\ down\ eth0 ]] || t_fail "web2 row not in: $out"
    out=$("$MUTT_BIN" --config "$CONF" rules dry-run --json "$E2E_TMP/new.json")
    assert_eq "$(jq -cS . <<<"$HTTP_BODY")" "$(jq -cS . <<<"$out")" "CLI --json = API"
    # ending the window (DELETE of an active one) ends the hold
    http DELETE "$API/maintenance-windows/$held" -H "X-API-KEY: $WEB_KEY"
    assert_status 200 "end the window"
    http DELETE "$API/maintenance-windows/$other" -H "X-API-KEY: $WEB_KEY"
    assert_status 200
    dry "$WEB_KEY" "$NEW_DOWN"
    assert_eq 0 "$(jqb .held_by_maintenance)" "an ended window holds nothing"
    assert_eq true "$(jqb '.examples[] | select(.event.hostname == "web2") | .decision.forwarded')"
}

test_sample_costs_one_call_per_popped_batch_not_per_event() {
    # 1200 events land in the queue at once (one LPUSH): relq pops them in batches, and each batch
    # is sampled with one script call (one LTRIM). One call per event would make 1200. The web
    # stage then compares them over several loop turns (500 per slice): every one is examined.
    local before after
    before=$(rcli LLEN mutt:sample_events)
    rcli CONFIG RESETSTAT >/dev/null
    python3 - <<'EOF' | rcli --pipe >/dev/null
import json, sys
args = [b"LPUSH", b"mutt:ingest_queue"] + [
    json.dumps({"hostname": "bulk%d" % i, "message": "bulk %d" % i, "timestamp": "2026-01-01T00:00:00Z",
                "_event_id": "00000000-0000-4000-8000-%012d" % i}).encode() for i in range(1200)]
sys.stdout.buffer.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
EOF
    wait_until 60 eval '[ "$(rcli LLEN mutt:sample_events)" = $((before + 1200)) ]' ||
        t_fail "sample has $(rcli LLEN mutt:sample_events), expected $((before + 1200))"
    after=$(rcli INFO commandstats | sed -n 's/^cmdstat_ltrim:calls=\([0-9]*\).*/\1/p')
    [ -n "$after" ] && [ "$after" -ge 1 ] && [ "$after" -le 300 ] ||
        t_fail "LTRIM ran ${after:-0} times for 1200 events in one queue push (batches expected, <= 300)"
    dry "$WEB_KEY" "$NEW_DOWN"
    assert_eq $((before + 1200)) "$(jqb .examined)" "every sampled event examined"
}

test_sample_events_caps_and_zero_stops_the_sample() {
    http PUT "$API/config/sample_events" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' -d '{"value":3}'
    assert_status 200 "set sample_events 3"
    # the next batch trims the list; the web stage reads at most sample_events items
    local i=0
    wait_until 30 eval 'i=$((i + 1)); ingest web9 "cap probe $i"; [ "$(rcli LLEN mutt:sample_events)" = 3 ]' ||
        t_fail "LLEN did not come down to 3 (LLEN $(rcli LLEN mutt:sample_events))"
    assert_eq "cap probe $i" "$(rcli LINDEX mutt:sample_events 0 | jq -r .message)" "newest first"
    wait_until 10 eval 'dry "$WEB_KEY" "$NEW_DOWN"; [ "$(jqb .examined)" = 3 ]' ||
        t_fail "examined is not 3 under sample_events 3: $HTTP_BODY"
    http PUT "$API/config/sample_events" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' -d '{"value":0}'
    assert_status 200 "set sample_events 0"
    wait_until 10 eval 'dry "$WEB_KEY" "$NEW_DOWN"; [ "$(jqb .examined)" = 0 ]' ||
        t_fail "examined is not 0 under sample_events 0: $HTTP_BODY"
    local processed
    processed=$(sql "SELECT count(*) FROM event_audit_log")
    ingest web9 "disk after zero"
    # the matched event is audited (proof it was processed), and the sample did not take it
    wait_until 30 eval '[ "$(sql "SELECT count(*) FROM event_audit_log")" -gt "$processed" ]' ||
        t_fail "the event was not processed"
    assert_eq 3 "$(rcli LLEN mutt:sample_events)" "nothing sampled under 0"
    assert_ne "disk after zero" "$(rcli LINDEX mutt:sample_events 0 | jq -r .message)"
}

t_run "new rule: examined, would/newly matched, taken_from, unhandled, examples" test_new_rule_counts_every_bucket
t_run "edit (rule_id): counts only what changes; stored rule as it is" test_edit_counts_only_what_changes
t_run "dry-run writes no rule and no audit row" test_dry_run_writes_nothing
t_run "read-only key may dry-run (D47), on v1 and v2" test_readonly_key_may_dry_run_on_v1_and_v2
t_run "invalid bodies: the same 400 as POST /rules; 404 unknown rule_id" test_invalid_bodies_are_400_as_post_rules
t_run "mutt rules dry-run FILE.json prints the table; --json = API" test_cli_prints_the_table
t_run "an active maintenance window: decision Maintenance, held_by_maintenance" test_active_window_shows_maintenance_not_a_page
t_run "the sample costs one script call per popped batch" test_sample_costs_one_call_per_popped_batch_not_per_event
t_run "sample_events caps the list; 0 stops sampling" test_sample_events_caps_and_zero_stops_the_sample

stop_mutt
t_summary
