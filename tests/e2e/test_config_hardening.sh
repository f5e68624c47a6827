#!/usr/bin/env bash
# Configuration hardening of the built binary (CONTRACT §9, D18, D46): credentials inside URLs
# (MOOG_WEBHOOK_URL, `mutt relay --url`, config errors) never reach a log line or stderr, only
# `user:***@` and `token=***` do; equal admin and read-only web keys are refused at start and by
# --check-config with one `config error:` line naming both keys (exit 2); the CLI verifies the
# TLS certificate of a listener on a non-loopback address (TLS_CA_FILE), not on loopback;
# DB_TLS_VERIFY against the harness PostgreSQL switched to ssl=on with a certificate made here
# (full refuses a name mismatch that ca accepts; ca refuses a foreign CA). Needs:
# Redis (harness), redis-cli, openssl, MUTT_BIN, MUTT_SINK_BIN. Run through
# tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

PW=Pa55w0rd-e2e-XYZ
TOKEN=T0ken-e2e-XYZ
rcli() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }

test_credentialed_webhook_url_never_reaches_the_log() {
    local conf="$E2E_TMP/cred.conf" log
    e2e_config "$conf"
    start_sink
    # the sink answers any path; user:password and ?token= travel to it, never into the log
    echo "MOOG_WEBHOOK_URL=http://moog:$PW@127.0.0.1:$SINK_PORT/events?token=$TOKEN&page=1" >>"$conf"
    rcli del mutt:alert_queue mutt:dlq:moog mutt:retry:moog >/dev/null
    start_mutt "$conf" forward
    rcli lpush mutt:alert_queue '{"hostname":"host-red","signature":"host-red","source_hostname":"host-red",'\
'"team_assignment":"netops","severity":"Critical","message_body":"redaction","raw_json":{"message":"x"},'\
'"handling_decision":"Page_only","rule_id":7,"environment":"prod","_correlation_id":"cid-red",'\
'"_event_id":"red-1"}' >/dev/null
    wait_until 20 test "$(sink_count)" -ge 1 || t_fail "the alert did not reach the sink"
    stop_mutt
    stop_sink
    log=$(cat "$MUTT_LOG")
    # the start-up line names the destination: proves the URL was logged, redacted
    assert_contains "$log" "http://moog:***@127.0.0.1:$SINK_PORT/events?token=***&page=1"
    assert_not_contains "$log" "$PW" "webhook password in the log"
    assert_not_contains "$log" "$TOKEN" "webhook token in the log"
}

test_invalid_credentialed_url_is_redacted_in_config_errors() {
    local conf="$E2E_TMP/badurl.conf" rc=0 out
    e2e_config "$conf" "MOOG_WEBHOOK_URL=ftp://moog:$PW@moog.example/x?api_key=$TOKEN"
    out=$("$MUTT_BIN" --config "$conf" --check-config 2>&1) || rc=$?
    assert_eq 2 "$rc" "--check-config on an invalid URL (output: ${out:0:400})"
    assert_contains "$out" "MOOG_WEBHOOK_URL=ftp://moog:***@moog.example/x?api_key=***"
    assert_not_contains "$out" "$PW"
    assert_not_contains "$out" "$TOKEN"
}

test_relay_never_prints_url_credentials() {
    local conf="$E2E_TMP/relay.conf" rc=0 out port
    e2e_config "$conf"
    port=$(free_port) # nothing listens: the POST fails and the relay reports it
    out=$(echo '<13>Dec  4 10:00:00 host-r app: hello' |
        "$MUTT_BIN" --config "$conf" relay --url "http://relay:$PW@127.0.0.1:$port/api/v2/ingest?token=$TOKEN" \
            --max-retries 0 --flush-ms 0 2>&1) || rc=$?
    assert_contains "$out" "http://relay:***@127.0.0.1:$port/api/v2/ingest?token=***"
    assert_not_contains "$out" "$PW" "relay password on stderr"
    assert_not_contains "$out" "$TOKEN" "relay token on stderr"
}

test_equal_admin_and_readonly_keys_are_refused() {
    local conf="$E2E_TMP/samekeys.conf" rc out lines
    e2e_config "$conf"
    echo "WEBUI_READONLY_API_KEY=$WEB_KEY" >>"$conf"
    for mode in start check; do
        rc=0
        if [ $mode = start ]; then
            out=$(timeout 20 "$MUTT_BIN" --config "$conf" --roles=web 2>&1) || rc=$?
        else
            out=$(timeout 20 "$MUTT_BIN" --config "$conf" --check-config 2>&1) || rc=$?
        fi
        assert_eq 2 "$rc" "$mode with equal keys (output: ${out:0:400})"
        lines=$(grep -c 'config error:' <<<"$out" || true)
        assert_eq 1 "$lines" "$mode: one config error line (output: ${out:0:400})"
        assert_contains "$(grep 'config error:' <<<"$out")" "WEBUI_READONLY_API_KEY"
        assert_contains "$(grep 'config error:' <<<"$out")" "WEBUI_API_KEY"
        assert_not_contains "$out" "$WEB_KEY" "the key itself"
    done
}

# ------------------------------------------------------------------------------ CLI TLS
# ca_and_cert DIR SAN...: DIR/ca.pem, and per SAN a key and certificate DIR/<n>.{key,pem} signed by it.
ca_and_cert() {
    local dir=$1 n=0 san
    shift
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=mutt-e2e-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    for san in "$@"; do
        n=$((n + 1))
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=mutt-e2e \
            -keyout "$dir/$n.key" -out "$dir/$n.csr" 2>/dev/null
        printf 'subjectAltName=%s\n' "$san" >"$dir/$n.ext"
        openssl x509 -req -in "$dir/$n.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
            -days 2 -extfile "$dir/$n.ext" -out "$dir/$n.pem" 2>/dev/null
    done
}

# tls_mutt CONF ADDR: starts `mutt` (MUTT_ROLES from CONF) with TLS on ADDR; waits for it.
tls_mutt() {
    MUTT_LOG="$E2E_TMP/mutt.$RANDOM.log"
    "$MUTT_BIN" --config "$1" >>"$MUTT_LOG" 2>&1 &
    MUTT_PID=$!
    echo "$MUTT_PID" >>"$E2E_TMP/pids"
    local host=$2
    [[ $host == *:* ]] && host="[$host]"
    wait_until 30 sh -c "curl -sk -m 1 -o /dev/null -w '%{http_code}' https://$host:$INGEST_PORT/health/live | grep -q 200 &&
        grep -q 'running as pod' '$MUTT_LOG'" || { tail -n 20 "$MUTT_LOG" >&2; t_fail "mutt with TLS did not start"; }
}
tls_mutt_stop() { # SIGTERM must end the process (a TLS client connection once kept it alive for ever)
    kill -TERM "$MUTT_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 75); do kill -0 "$MUTT_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$MUTT_PID" 2>/dev/null; then
        kill -KILL "$MUTT_PID" 2>/dev/null || true
        wait "$MUTT_PID" 2>/dev/null || true
        tail -n 5 "$MUTT_LOG" >&2
        t_fail "mutt did not exit within 15 s of SIGTERM"
    fi
    wait "$MUTT_PID" 2>/dev/null || true
}
health() { RC=0; OUT=$("$MUTT_BIN" --config "$1" health 2>&1) || RC=$?; }

test_cli_verifies_tls_off_loopback_and_not_on_it() {
    local ip dir="$E2E_TMP/tls" conf="$E2E_TMP/tls.conf"
    ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | grep -v '^127\.' | head -n 1)
    [ -n "$ip" ] || t_fail "this host has no non-loopback IPv4 address to bind the listener to"
    ca_and_cert "$dir" "IP:$ip" "DNS:elsewhere.example"
    # 1: certificate for the address; the CLI must verify it
    e2e_config "$conf" MUTT_ROLES=ingest "BIND_ADDR=$ip" "TLS_CERT_FILE=$dir/1.pem" "TLS_KEY_FILE=$dir/1.key"
    tls_mutt "$conf" "$ip"
    health "$conf"
    assert_eq 1 "$RC" "health without TLS_CA_FILE: the private CA is unknown (output: ${OUT:0:400})"
    assert_contains "$OUT" "no answer"
    assert_contains "$OUT" "certificate"
    echo "TLS_CA_FILE=$dir/ca.pem" >>"$conf"
    health "$conf"
    assert_eq 0 "$RC" "health with TLS_CA_FILE (output: ${OUT:0:400})"
    assert_contains "$OUT" "https://$ip:$INGEST_PORT/health: 200"
    tls_mutt_stop
    # 2: signed by the CA but for another name: refused although the CA is trusted
    e2e_config "$conf" MUTT_ROLES=ingest "BIND_ADDR=$ip" "TLS_CERT_FILE=$dir/2.pem" "TLS_KEY_FILE=$dir/2.key" \
        "TLS_CA_FILE=$dir/ca.pem"
    tls_mutt "$conf" "$ip"
    health "$conf"
    assert_eq 1 "$RC" "health against a certificate naming another host (output: ${OUT:0:400})"
    assert_contains "$OUT" "no answer"
    tls_mutt_stop
    # 3: on loopback the same certificate is accepted unverified (the traffic stays on the host)
    e2e_config "$conf" MUTT_ROLES=ingest BIND_ADDR=127.0.0.1 "TLS_CERT_FILE=$dir/2.pem" "TLS_KEY_FILE=$dir/2.key"
    tls_mutt "$conf" 127.0.0.1
    health "$conf"
    assert_eq 0 "$RC" "health on loopback (output: ${OUT:0:400})"
    tls_mutt_stop
}

# ----------------------------------------------------------------------- PostgreSQL TLS
pg_admin() {
    PGPASSWORD=$MUTT_TEST_PG_PASS psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" \
        -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" -d postgres "$@"
}
pg_ssl_off() {
    pg_admin -c "ALTER SYSTEM RESET ssl" -c "ALTER SYSTEM RESET ssl_cert_file" -c "ALTER SYSTEM RESET ssl_key_file" \
        -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
}
migrate_with() { # migrate_with KEY=VALUE...: `mutt migrate` with DB TLS settings; sets RC, OUT
    local conf="$E2E_TMP/pgtls.conf"
    e2e_config "$conf" "$@"
    RC=0
    OUT=$("$MUTT_BIN" --config "$conf" migrate 2>&1) || RC=$?
}

test_db_tls_verify_full_checks_the_name_and_ca_checks_the_issuer() {
    # under the harness state dir: the server (user postgres when we are root) must read the files
    local dir="$MUTT_TEST_STATE/pgtls.$$"
    rm -rf "$dir"
    ca_and_cert "$dir" "DNS:elsewhere.example"      # trusted CA, wrong name for 127.0.0.1
    ca_and_cert "$dir/foreign" "IP:127.0.0.1"       # right name, CA nobody trusts
    chmod 755 "$dir"
    chmod 600 "$dir/1.key"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/1.key" "$dir/1.pem"
    pg_admin -c "ALTER SYSTEM SET ssl_cert_file = '$dir/1.pem'" -c "ALTER SYSTEM SET ssl_key_file = '$dir/1.key'" \
        -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
    wait_until 10 sh -c "PGPASSWORD='$MUTT_TEST_PG_PASS' psql -X -q -A -t -c 'SELECT 1' \
        'host=$MUTT_TEST_PG_HOST port=$MUTT_TEST_PG_PORT user=$MUTT_TEST_PG_USER dbname=postgres sslmode=require' \
        >/dev/null 2>&1" || { pg_ssl_off; t_fail "PostgreSQL did not turn ssl on"; }
    local ok=0
    (
        set -e
        migrate_with DB_TLS_ENABLED=true "DB_TLS_CA_CERT_PATH=$dir/ca.pem" DB_TLS_VERIFY=full
        assert_eq 1 "$RC" "verify=full against a certificate for another name (output: ${OUT:0:400})"
        assert_contains "$OUT" "does not match host name"
        migrate_with DB_TLS_ENABLED=true "DB_TLS_CA_CERT_PATH=$dir/ca.pem" DB_TLS_VERIFY=ca
        assert_eq 0 "$RC" "verify=ca: the issuer is trusted, the name is not checked (output: ${OUT:0:400})"
        migrate_with DB_TLS_ENABLED=true "DB_TLS_CA_CERT_PATH=$dir/ca.pem"
        assert_eq 0 "$RC" "a CA file alone means verify=ca (output: ${OUT:0:400})"
        migrate_with DB_TLS_ENABLED=true "DB_TLS_CA_CERT_PATH=$dir/foreign/ca.pem" DB_TLS_VERIFY=ca
        assert_eq 1 "$RC" "verify=ca against a certificate from another CA (output: ${OUT:0:400})"
        assert_contains "$OUT" "certificate verify failed"
        migrate_with DB_TLS_ENABLED=true "DB_TLS_CA_CERT_PATH=$dir/foreign/ca.pem" DB_TLS_VERIFY=none
        assert_eq 0 "$RC" "verify=none encrypts without checking (output: ${OUT:0:400})"
    ) || ok=1
    pg_ssl_off
    rm -rf "$dir"
    [ $ok = 0 ] || t_fail "DB_TLS_VERIFY checks failed (see above)"
}

t_run "credentialed MOOG_WEBHOOK_URL never reaches the log" test_credentialed_webhook_url_never_reaches_the_log
t_run "invalid credentialed URL is redacted in config errors" test_invalid_credentialed_url_is_redacted_in_config_errors
t_run "relay never prints --url credentials" test_relay_never_prints_url_credentials
t_run "equal admin and read-only keys: exit 2, one line" test_equal_admin_and_readonly_keys_are_refused
t_run "CLI verifies TLS off loopback (TLS_CA_FILE), not on it" test_cli_verifies_tls_off_loopback_and_not_on_it
t_run "DB_TLS_VERIFY: full checks the name, ca the issuer" test_db_tls_verify_full_checks_the_name_and_ca_checks_the_issuer
t_summary
