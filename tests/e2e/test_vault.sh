#!/usr/bin/env bash
# End-to-end tests of secrets from Vault (CONTRACT §9, D26, W37): `mutt --roles=ingest,web` with
# VAULT_ADDR pointing at the Vault API stand-in (tests/harness/vault-standin.c) and the harness
# Redis/PostgreSQL. Rotates INGEST_API_KEY while traffic flows (NEXT first, then CURRENT: no
# failed request, old key refused afterwards, no restart), the PostgreSQL password (ALTER USER +
# stand-in, forced reconnect) and the Redis password (CONFIG SET requirepass + stand-in, forced
# reconnect); /health's "vault" through an outage; a bad secret id (403) keeps the stages from
# starting and reports "disconnected"; no secret value ever reaches the log.
# The harness passwords are restored on exit (Redis: none; PostgreSQL: MUTT_TEST_PG_PASS).
# Needs: Redis + PostgreSQL (services.sh), MUTT_BIN, vault-standin (MUTT_VAULT_STANDIN_BIN, else
# next to MUTT_SINK_BIN). Run through tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

STANDIN_BIN=${MUTT_VAULT_STANDIN_BIN:-$(dirname "$MUTT_SINK_BIN")/vault-standin}
[ -x "$STANDIN_BIN" ] || { echo "vault-standin not built: $STANDIN_BIN" >&2; exit 1; }
[ -n "${MUTT_TEST_REDIS_PORT:-}" ] || { echo "MUTT_TEST_* not set: run through tests/harness/run-tests.sh" >&2; exit 1; }

OLD_INGEST=vault-ingest-key-one-0123456789abcdef0123
NEW_INGEST=vault-ingest-key-two-fedcba9876543210fedc
WEB_VKEY=vault-webui-key-0123456789abcdef0123456789
RP1=vault-redis-pass-one-0123456789
RP2=vault-redis-pass-two-9876543210
PG_OLD=$MUTT_TEST_PG_PASS
PG_NEW=vault-pg-pass-new-0123456789
SECRET_ID=e2e-secret-id-0123456789abcdef
DAVE_KEY=vault-dave-key-0123456789abcdef0123456789

rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" --no-auth-warning "$@"; }
# psql as the harness superuser with the password PostgreSQL has right now
pg_now=$PG_OLD
psql_do() { PGPASSWORD=$pg_now psql -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" \
    -d "$MUTT_TEST_PG_DB" -qtAX -v ON_ERROR_STOP=1 -c "$1"; }

# Puts the harness back as the other scripts expect it: Redis without a password, PostgreSQL with
# MUTT_TEST_PG_PASS. Tries every password this script may have set.
restore_services() {
    local p
    # redis-cli exits 0 on an error reply too: look at the answer
    for p in "$RP2" "$RP1"; do
        [ "$(rcli -a "$p" config set requirepass "" 2>/dev/null)" = OK ] && break
    done
    [ "$(rcli ping 2>/dev/null)" = PONG ] || echo "test_vault: could not restore Redis without a password" >&2
    for p in "$PG_OLD" "$PG_NEW"; do
        PGPASSWORD=$p psql -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" -d postgres \
            -qtAX -c "ALTER USER $MUTT_TEST_PG_USER PASSWORD '$PG_OLD'" >/dev/null 2>&1 && break
    done
}
trap 'restore_services; e2e_cleanup' EXIT

# ------------------------------------------------------------------------------- the stand-in
VAULT_PORT=$(free_port)
VAULT_URL="http://127.0.0.1:$VAULT_PORT"
spawn_helper vault-standin "$E2E_TMP/standin.log" env ASAN_OPTIONS=detect_leaks=0 "$STANDIN_BIN" --port "$VAULT_PORT" \
    --ttl 4 --role-id mutt-e2e-role --secret-id "$SECRET_ID" --mount secret --path mutt/e2e \
    --secret "INGEST_API_KEY=$OLD_INGEST" --secret "WEBUI_API_KEY=$WEB_VKEY" --secret "MOOG_API_KEY=vault-moog" \
    --secret "REDIS_PASS_CURRENT=$RP1" --secret "DB_PASS_CURRENT=$PG_OLD" --secret "DB_USER=$MUTT_TEST_PG_USER" \
    --secret "WEBUI_USERS=dave readonly $(printf '%s' "$DAVE_KEY" | sha256sum | cut -d' ' -f1)"
wait_until 10 curl -sf -m 1 "$VAULT_URL/_control/stats" || { cat "$E2E_TMP/standin.log" >&2; exit 1; }
vctl() { curl -sf -m 5 -X POST "$VAULT_URL/_control/$1" >/dev/null; }
vstat() { curl -sf -m 5 "$VAULT_URL/_control/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
vstat_ge() { [ "$(vstat "$1")" -ge "$2" ]; } # for wait_until: re-reads the stats each time
log_count_ge() { [ "$(grep -c -- "$1" "$MUTT_LOG")" -ge "$2" ]; }

printf '%s\n' "$SECRET_ID" >"$E2E_TMP/secret_id"
chmod 600 "$E2E_TMP/secret_id"

# The file keeps the lib's keys and passwords: Vault's values must win over them.
CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF" VAULT_ADDR="$VAULT_URL" VAULT_ROLE_ID=mutt-e2e-role VAULT_SECRET_ID_FILE="$E2E_TMP/secret_id" \
    VAULT_SECRETS_PATH=secret/mutt/e2e SECRETS_REFRESH_INTERVAL=1 VAULT_RENEW_CHECK_INTERVAL=1 \
    VAULT_TOKEN_RENEW_THRESHOLD=3 REDIS_RECONNECT_MAX_MS=500
URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest"
WEB="http://127.0.0.1:$WEB_PORT/api/v1"
EV='{"timestamp":"2026-01-01T00:00:00Z","hostname":"vault-e2e","message":"vault e2e event","syslog_severity":6}'
post_with() { http POST "$URL" -H "X-API-KEY: $1" -H 'Content-Type: application/json' --data-binary "$EV"; }
ingest_status_is() { post_with "$2"; [ "$HTTP_STATUS" = "$1" ]; }
health_field() { curl -s -m 5 "http://127.0.0.1:$INGEST_PORT/health" | jq -r ".$1"; }
health_field_is() { [ "$(health_field "$1")" = "$2" ]; }
rules_ok() { http GET "$WEB/rules" -H "X-API-KEY: $WEB_VKEY"; [ "$HTTP_STATUS" = 200 ]; }

# Redis starts with the password Vault hands out as CURRENT.
rcli config set requirepass "$RP1" >/dev/null
start_mutt "$CONF" ingest,web
MUTT_FIRST_PID=$MUTT_PID

# Traffic: a background loop posting one event at a time with the key in $E2E_TMP/client_key,
# one status code per line in $E2E_TMP/traffic.codes, until $E2E_TMP/traffic.stop exists.
start_traffic() {
    : >"$E2E_TMP/traffic.codes"
    rm -f "$E2E_TMP/traffic.stop"
    (
        while [ ! -f "$E2E_TMP/traffic.stop" ]; do
            curl -s -m 5 -o /dev/null -w '%{http_code}\n' -X POST "$URL" -H "X-API-KEY: $(cat "$E2E_TMP/client_key")" \
                -H 'Content-Type: application/json' --data-binary "$EV" >>"$E2E_TMP/traffic.codes" || true
            sleep 0.02 # pacing, not synchronisation
        done
    ) &
    TRAFFIC_PID=$!
    echo "$TRAFFIC_PID" >>"$E2E_TMP/pids"
}
# traffic_advances N: waits (bounded) until the background client got N more answers.
traffic_advances() {
    local n0
    n0=$(wc -l <"$E2E_TMP/traffic.codes")
    wait_for 30 "$1 more answers to the background traffic (had $n0)" lines_ge "$E2E_TMP/traffic.codes" $((n0 + $1))
}
stop_traffic() {
    touch "$E2E_TMP/traffic.stop"
    wait "$TRAFFIC_PID" 2>/dev/null || true
}

# -------------------------------------------------------------------------------------- tests
test_vault_values_win_and_health_reports_connected() {
    assert_eq connected "$(health_field vault)" "/health vault"
    post_with "$OLD_INGEST"
    assert_status 200 "Vault's INGEST_API_KEY"
    post_with "$INGEST_KEY"
    assert_status 401 "the config file's key is overridden by Vault"
    rules_ok || t_fail "web API with Vault's WEBUI_API_KEY: $HTTP_STATUS"
    [ "$(vstat logins)" -ge 1 ] || t_fail "no AppRole login reached the stand-in"
    [ "$(vstat reads)" -ge 1 ] || t_fail "no KV read reached the stand-in"
    # issue 17: named users come from the Vault path too (WEBUI_USERS, same lines as the file)
    http GET "$WEB/rules" -H "X-API-KEY: $DAVE_KEY"
    assert_status 200 "Vault's WEBUI_USERS user reads"
    http POST "$WEB/dev-hosts" -H "X-API-KEY: $DAVE_KEY" -H 'Content-Type: application/json' --data-binary '{"hostname":"x"}'
    assert_status 403 "a readonly user from Vault cannot write"
}

test_token_is_renewed_below_the_threshold() {
    # TTL 4 s, threshold 3 s, checked every second: renewals, no second login needed
    wait_until 15 vstat_ge renewals 2 || t_fail "no token renewal seen (stats: $(vstat renewals))"
    assert_eq connected "$(health_field vault)"
}

test_ingest_key_rotation_under_traffic_needs_no_restart() {
    echo "$OLD_INGEST" >"$E2E_TMP/client_key"
    start_traffic
    traffic_advances 10 # under way with the old key
    vctl "set?INGEST_API_KEY_NEXT=$NEW_INGEST"
    wait_until 10 ingest_status_is 200 "$NEW_INGEST" || t_fail "NEXT key not accepted within 10 s: $HTTP_STATUS"
    echo "$NEW_INGEST" >"$E2E_TMP/client_key" # clients move over
    traffic_advances 10 # some of it with the NEXT key before it is promoted
    vctl "set?INGEST_API_KEY=$NEW_INGEST"
    vctl "unset?INGEST_API_KEY_NEXT"
    wait_until 10 ingest_status_is 401 "$OLD_INGEST" || t_fail "old key still accepted 10 s after the rotation"
    traffic_advances 10 # and after the promotion
    stop_traffic
    local total bad
    total=$(wc -l <"$E2E_TMP/traffic.codes")
    bad=$(grep -vc '^200$' "$E2E_TMP/traffic.codes" || true)
    [ "$total" -ge 20 ] || t_fail "too little traffic during the rotation: $total requests"
    assert_eq 0 "$bad" "failed requests during the rotation (of $total): $(sort "$E2E_TMP/traffic.codes" | uniq -c | tr '\n' ' ')"
    post_with "$NEW_INGEST"
    assert_status 200 "new key after the rotation"
    assert_eq "$MUTT_FIRST_PID" "$MUTT_PID" "same process"
    alive "$MUTT_PID" || t_fail "mutt is gone"
    assert_eq 1 "$(grep -c 'running as pod' "$MUTT_LOG")" "stages started once"
}

test_db_password_rotation_next_then_current_after_reconnects() {
    vctl "set?DB_PASS_NEXT=$PG_NEW"
    wait_until 10 grep -q 'changed DB_PASS_NEXT' "$MUTT_LOG" || t_fail "DB_PASS_NEXT not picked up"
    psql_do "ALTER USER $MUTT_TEST_PG_USER PASSWORD '$PG_NEW'" >/dev/null
    pg_now=$PG_NEW
    # force every pooled connection to reconnect: CURRENT is refused now, NEXT works
    psql_do "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mutt'" >/dev/null
    wait_until 20 rules_ok || t_fail "web API did not recover with DB_PASS_NEXT: $HTTP_STATUS $HTTP_BODY"
    wait_until 10 health_field_is database connected || t_fail "database not connected"
    [ "$(psql_do "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mutt'")" -ge 1 ] ||
        t_fail "no mutt connection after the reconnect"

    vctl "set?DB_PASS_CURRENT=$PG_NEW"
    vctl "unset?DB_PASS_NEXT"
    wait_until 10 grep -q 'changed DB_PASS_CURRENT' "$MUTT_LOG" || t_fail "DB_PASS_CURRENT not picked up"
    psql_do "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mutt'" >/dev/null
    wait_until 20 rules_ok || t_fail "web API did not recover with the promoted DB_PASS_CURRENT: $HTTP_STATUS"

    # back to the harness password, the same way
    vctl "set?DB_PASS_CURRENT=$PG_OLD"
    wait_until 10 log_count_ge 'changed DB_PASS_CURRENT' 2 ||
        t_fail "second DB_PASS_CURRENT change not picked up"
    psql_do "ALTER USER $MUTT_TEST_PG_USER PASSWORD '$PG_OLD'" >/dev/null
    pg_now=$PG_OLD
    psql_do "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mutt'" >/dev/null
    wait_until 20 rules_ok || t_fail "web API did not recover with the restored password: $HTTP_STATUS"
    assert_eq "$MUTT_FIRST_PID" "$MUTT_PID" "same process"
}

# Vault-issued database credentials rotate the user with the password: new connections log in as
# the new role without a restart.
test_db_user_rotation_applies_to_new_connections() {
    psql_do "DROP ROLE IF EXISTS mutt_rotated" >/dev/null 2>&1
    psql_do "CREATE ROLE mutt_rotated LOGIN SUPERUSER PASSWORD 'rotated-pw-0123456789'" >/dev/null
    vctl "set?DB_PASS_NEXT=rotated-pw-0123456789"
    vctl "set?DB_USER=mutt_rotated"
    wait_until 10 grep -q 'changed.*DB_USER' "$MUTT_LOG" || t_fail "DB_USER not picked up"
    psql_do "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mutt'" >/dev/null
    wait_until 20 rules_ok || t_fail "web API did not recover as the rotated user: $HTTP_STATUS $HTTP_BODY"
    rotated_sessions() { [ "$(psql_do "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mutt' AND usename = 'mutt_rotated'")" -ge 1 ]; }
    wait_until 10 rotated_sessions ||
        t_fail "no mutt connection logged in as mutt_rotated"
    # back to the harness user
    vctl "set?DB_USER=$MUTT_TEST_PG_USER"
    vctl "unset?DB_PASS_NEXT"
    wait_until 10 log_count_ge 'changed.*DB_USER' 2 || t_fail "second DB_USER change not picked up"
    psql_do "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mutt'" >/dev/null
    wait_until 20 rules_ok || t_fail "web API did not recover as the harness user: $HTTP_STATUS"
    psql_do "DROP ROLE IF EXISTS mutt_rotated" >/dev/null 2>&1 || true
    assert_eq "$MUTT_FIRST_PID" "$MUTT_PID" "same process"
}

test_redis_password_rotation_next_then_current_after_reconnects() {
    vctl "set?REDIS_PASS_NEXT=$RP2"
    wait_until 10 grep -q 'changed REDIS_PASS_NEXT' "$MUTT_LOG" || t_fail "REDIS_PASS_NEXT not picked up"
    rcli -a "$RP1" config set requirepass "$RP2" >/dev/null
    # force reconnects: CURRENT (RP1) is refused now, NEXT (RP2) works
    rcli -a "$RP2" client kill type normal >/dev/null
    rcli -a "$RP2" client kill type pubsub >/dev/null || true
    wait_until 20 ingest_status_is 200 "$NEW_INGEST" || t_fail "ingest did not recover with REDIS_PASS_NEXT: $HTTP_STATUS"
    wait_until 10 health_field_is redis connected || t_fail "redis not connected"

    vctl "set?REDIS_PASS_CURRENT=$RP2"
    vctl "unset?REDIS_PASS_NEXT"
    wait_until 10 grep -q 'changed REDIS_PASS_CURRENT' "$MUTT_LOG" || t_fail "REDIS_PASS_CURRENT not picked up"
    rcli -a "$RP2" client kill type normal >/dev/null
    wait_until 20 ingest_status_is 200 "$NEW_INGEST" || t_fail "ingest did not recover with the promoted password"
    [ "$(rcli -a "$RP2" client list | grep -c .)" -ge 2 ] || t_fail "mutt has no Redis connections"
    assert_eq "$MUTT_FIRST_PID" "$MUTT_PID" "same process"
}

test_health_vault_goes_disconnected_during_an_outage_and_back() {
    vctl "outage?status=503"
    wait_until 10 health_field_is vault disconnected || t_fail "vault not disconnected during the outage"
    post_with "$NEW_INGEST"
    assert_status 200 "secrets are kept through a Vault outage"
    vctl "outage?status=0"
    wait_until 15 health_field_is vault connected || t_fail "vault not connected again after the outage"
}

test_token_expiry_leads_to_a_new_login() {
    local before
    before=$(vstat logins)
    vctl expire-tokens
    wait_until 10 vstat_ge logins $((before + 1)) || t_fail "no new login after the tokens expired"
    wait_until 10 health_field_is vault connected || t_fail "vault not connected after the re-login"
}

test_no_secret_value_reaches_the_log() {
    local v
    for v in "$OLD_INGEST" "$NEW_INGEST" "$WEB_VKEY" "$DAVE_KEY" "$RP1" "$RP2" "$PG_NEW" "$SECRET_ID" vault-moog hvs.standin; do
        if grep -qF -- "$v" "$MUTT_LOG"; then
            t_fail "a secret value appears in the log: ${v:0:6}..."
        fi
    done
}

test_bad_secret_id_is_refused_with_403_and_stages_wait() {
    local conf="$E2E_TMP/bad.conf" log="$E2E_TMP/mutt.bad.log" pid port
    printf 'not-the-secret-id\n' >"$E2E_TMP/bad_secret_id"
    INGEST_PORT='' WEB_PORT='' HEALTH_PORT='' e2e_config "$conf" VAULT_ADDR="$VAULT_URL" VAULT_ROLE_ID=mutt-e2e-role \
        VAULT_SECRET_ID_FILE="$E2E_TMP/bad_secret_id" VAULT_SECRETS_PATH=secret/mutt/e2e
    port=$(conf_get "$conf" INGESTOR_PORT)
    spawn_helper mutt "$log" env REDIS_PASS_CURRENT="$RP2" "$MUTT_BIN" --config "$conf" --roles=ingest
    pid=$HELPER_PID
    wait_until 15 curl -sf -m 1 "http://127.0.0.1:$port/health/live" || t_fail "the bad-secret-id mutt is not live"
    wait_until 10 grep -q 'HTTP 403' "$log" || t_fail "no 403 logged: $(tail -n 5 "$log")"
    local body
    body=$(curl -s -m 5 "http://127.0.0.1:$port/health")
    assert_eq disconnected "$(jq -r .vault <<<"$body")" "/health vault with a bad secret id"
    http POST "http://127.0.0.1:$port/api/v2/ingest" -H "X-API-KEY: $NEW_INGEST" -H 'Content-Type: application/json' \
        --data-binary "$EV"
    assert_status 503 "ingest before the secrets arrived"
    grep -q 'running as pod' "$log" && t_fail "stages started without secrets"
    grep -qF 'not-the-secret-id' "$log" && t_fail "the secret id was logged"
    stop_helper "$pid" 15
}

t_run "Vault values win over the file; /health vault connected" test_vault_values_win_and_health_reports_connected
t_run "token renewed below the threshold" test_token_is_renewed_below_the_threshold
t_run "INGEST_API_KEY rotation under traffic: no failure, old key refused, no restart" \
    test_ingest_key_rotation_under_traffic_needs_no_restart
t_run "DB password rotation (NEXT, then CURRENT) after forced reconnects" \
    test_db_password_rotation_next_then_current_after_reconnects
t_run "DB user rotation applies to new connections, no restart" test_db_user_rotation_applies_to_new_connections
t_run "Redis password rotation (NEXT, then CURRENT) after forced reconnects" \
    test_redis_password_rotation_next_then_current_after_reconnects
t_run "/health vault: disconnected during an outage, connected after" \
    test_health_vault_goes_disconnected_during_an_outage_and_back
t_run "token expiry leads to a new login" test_token_expiry_leads_to_a_new_login
t_run "bad secret id: 403, vault disconnected, stages wait" test_bad_secret_id_is_refused_with_403_and_stages_wait
t_run "no secret value reaches the log" test_no_secret_value_reaches_the_log
t_run "SIGTERM exits 0" stop_mutt
restore_services
t_summary
