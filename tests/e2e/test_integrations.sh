#!/usr/bin/env bash
# Integrations (issue 8, D32): the snmptrapd traphandle (conf/snmptrapd/mutt-traphandle) fed by
# hand and by Debian's real snmptrapd + snmptrap when installed (packages snmptrapd, snmp; not a
# test dependency: skipped with a note otherwise), what rsyslog omhttp's newline batches send,
# and `mutt relay` (the omprog path). mutt runs with the ingest role only, so events stay in
# mutt:ingest_queue where the tests read them back with redis-cli.
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF"
HANDLER="$E2E_ROOT/conf/snmptrapd/mutt-traphandle"
QUEUE=mutt:ingest_queue
rraw() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" --raw "$@" 2>/dev/null; }
qlen() { rraw LLEN "$QUEUE"; }
qlen_above() { [ "$(qlen)" -gt "$1" ]; } # for wait_until (its arguments are expanded once)
# The queued event (newest first) whose JSON contains $1, or nothing.
queued_with() { rraw LRANGE "$QUEUE" 0 -1 | grep -F -- "$1" | head -n 1; }
jq_get() { jq -r "$1" <<<"$2"; }

start_mutt "$CONF" ingest
URL="http://127.0.0.1:$INGEST_PORT/ingest"

test_traphandle_posts_a_numeric_trap_with_oid_and_variables() {
    local before ev
    before=$(qlen)
    printf '%s\n' 'router7.example.net' 'UDP: [192.0.2.7]:40412->[127.0.0.1]:162' \
        '.1.3.6.1.2.1.1.3.0 0:0:10:05.00' \
        '.1.3.6.1.6.3.1.1.4.1.0 .1.3.6.1.6.3.1.1.5.3' \
        '.1.3.6.1.2.1.2.2.1.1.3 3' \
        '.1.3.6.1.2.1.2.2.1.2.3 "Gi0/3 \"uplink\""' |
        MUTT_INGEST_URL=$URL MUTT_INGEST_API_KEY=$INGEST_KEY sh "$HANDLER" /nonexistent ||
        t_fail "traphandle exited $?"
    assert_eq $((before + 1)) "$(qlen)" "queue length after one trap"
    ev=$(queued_with '"trap_oid":".1.3.6.1.6.3.1.1.5.3"')
    [ -n "$ev" ] || t_fail "trap not in $QUEUE"
    assert_eq "router7.example.net" "$(jq_get .hostname "$ev")"
    assert_eq "192.0.2.7" "$(jq_get .source_ip "$ev")"
    assert_eq "0:0:10:05.00" "$(jq_get .uptime "$ev")"
    assert_eq 2 "$(jq_get '.variables | length' "$ev")" "variables (sysUpTime and snmpTrapOID are not variables)"
    assert_eq ".1.3.6.1.2.1.2.2.1.1.3=3" "$(jq_get '.variables[0] | "\(.oid)=\(.value)"' "$ev")"
    assert_eq 'Gi0/3 \"uplink\"' "$(jq_get '.variables[1].value' "$ev")"
    # CONTRACT D9: ingest built the message from trap_oid and variables
    assert_contains "$(jq_get .message "$ev")" "SNMP trap .1.3.6.1.6.3.1.1.5.3"
}

test_traphandle_uses_the_source_ip_when_the_host_is_unknown() {
    local ev
    printf '%s\n' '<UNKNOWN>' 'UDP: [198.51.100.9]:1024->[127.0.0.1]:162' \
        'DISMAN-EVENT-MIB::sysUpTimeInstance 0:0:00:01.00' \
        'SNMPv2-MIB::snmpTrapOID.0 SNMPv2-SMI::enterprises.9.9.41.2.0.1' \
        'SNMPv2-SMI::enterprises.9.9.41.1.2.3.1.5.1 "link flap"' |
        MUTT_INGEST_URL=$URL MUTT_INGEST_API_KEY=$INGEST_KEY sh "$HANDLER" /nonexistent || t_fail "traphandle exited $?"
    ev=$(queued_with 'enterprises.9.9.41.2.0.1')
    [ -n "$ev" ] || t_fail "symbolic trap not queued"
    assert_eq "198.51.100.9" "$(jq_get .hostname "$ev")"
    assert_eq "link flap" "$(jq_get '.variables[0].value' "$ev")"
}

test_traphandle_reads_the_key_from_its_config_file_and_fails_on_a_wrong_one() {
    local f="$E2E_TMP/traphandle.conf" kf="$E2E_TMP/key" before rc=0
    printf '%s\n' "$INGEST_KEY" >"$kf"
    printf 'MUTT_INGEST_URL=%s\nMUTT_INGEST_API_KEY_FILE=%s\n' "$URL" "$kf" >"$f"
    before=$(qlen)
    printf '%s\n' h 'UDP: [192.0.2.1]:1->[127.0.0.1]:162' '.1.3.6.1.2.1.1.3.0 1' '.1.3.6.1.6.3.1.1.4.1.0 .1.3.6.1.4.1.99.0.1' |
        env -u MUTT_INGEST_API_KEY sh "$HANDLER" "$f" || t_fail "traphandle with a key file exited $?"
    assert_eq $((before + 1)) "$(qlen)"
    printf '%s\n' h 'UDP: [192.0.2.1]:1->[127.0.0.1]:162' '.1.3.6.1.2.1.1.3.0 1' '.1.3.6.1.6.3.1.1.4.1.0 .1.3.6.1.4.1.99.0.2' |
        MUTT_INGEST_API_KEY=wrong-key sh "$HANDLER" "$f" 2>/dev/null || rc=$?
    assert_eq 1 "$rc" "exit status with a refused key"
    assert_eq $((before + 1)) "$(qlen)" "nothing queued with a wrong key"
}

test_real_snmptrapd_and_snmptrap_queue_a_trap() {
    local d
    for d in snmptrapd snmptrap; do
        command -v "$d" >/dev/null 2>&1 || [ -x "/usr/sbin/$d" ] || {
            t_skip no-snmptrapd "$d not installed (Debian packages snmptrapd and snmp)"
        }
    done
    local port conf="$E2E_TMP/snmptrapd.conf" log="$E2E_TMP/snmptrapd.log" before
    port=$(free_port)
    # the shipped configuration, with a test port and this checkout's handler (wrapped to keep
    # its stderr: snmptrapd discards it)
    local wrap="$E2E_TMP/traphandle-wrap.sh"
    printf '#!/bin/sh\nexec sh %s "$@" 2>>%s\n' "$HANDLER" "$E2E_TMP/traphandle.err" >"$wrap"
    chmod +x "$wrap"
    sed -e "s|^snmpTrapdAddr .*|snmpTrapdAddr udp:127.0.0.1:$port|" \
        -e "s|/usr/local/libexec/mutt/mutt-traphandle /etc/mutt/traphandle.conf|$wrap /nonexistent|" \
        "$E2E_ROOT/conf/snmptrapd/snmptrapd.conf" >"$conf"
    grep -q "traphandle default $wrap" "$conf" || t_fail "could not point the shipped config at the handler"
    MUTT_INGEST_URL=$URL MUTT_INGEST_API_KEY=$INGEST_KEY \
        "$(command -v snmptrapd || echo /usr/sbin/snmptrapd)" -f -C -c "$conf" -Lf "$log" -p "$E2E_TMP/snmptrapd.pid" &
    echo $! >>"$E2E_TMP/pids"
    wait_until 10 grep -q 'NET-SNMP version' "$log" || { cat "$log" >&2; t_fail "snmptrapd did not start"; }
    before=$(qlen)
    snmptrap -v 2c -c public "127.0.0.1:$port" '' .1.3.6.1.4.1.8072.2.3.0.1 \
        .1.3.6.1.4.1.8072.2.3.2.1 i 4242 .1.3.6.1.2.1.2.2.1.2.1 s "eth0 down" || t_fail "snmptrap failed"
    wait_until 15 qlen_above "$before" ||
        { grep -v 'MIB\|Cannot\|Did not\|Unlinked\|Undefined' "$log" >&2; cat "$E2E_TMP/traphandle.err" >&2; t_fail "trap not queued within 15 s"; }
    local ev
    ev=$(queued_with '.1.3.6.1.4.1.8072.2.3.0.1')
    [ -n "$ev" ] || t_fail "queued event lacks the trap OID"
    assert_eq ".1.3.6.1.4.1.8072.2.3.0.1" "$(jq_get .trap_oid "$ev")"
    assert_eq "127.0.0.1" "$(jq_get .source_ip "$ev")"
    assert_eq "4242" "$(jq_get '.variables[] | select(.oid == ".1.3.6.1.4.1.8072.2.3.2.1") | .value' "$ev" | sed 's/^INTEGER: //')"
    assert_contains "$(jq_get '.variables[] | select(.oid == ".1.3.6.1.2.1.2.2.1.2.1") | .value' "$ev")" "eth0 down"
}

# What rsyslog's omhttp sends with batch="on" batch.format="newline" and the template of
# conf/rsyslog/60-mutt.conf: one rendered object per line, Content-Type application/json.
test_omhttp_newline_batch_is_accepted_as_one_batch() {
    local before body
    before=$(qlen)
    body=$(printf '%s\n%s\n%s' \
        '{"timestamp":"2026-01-01T00:00:00+00:00","hostname":"web01","source_ip":"10.0.0.1","program":"nginx","facility":"daemon","syslog_severity":3,"message":"upstream timed out"}' \
        '{"timestamp":"2026-01-01T00:00:01+00:00","hostname":"web02","source_ip":"10.0.0.2","program":"kernel","facility":"kern","syslog_severity":2,"message":"Out of memory: Killed process 123"}' \
        '{"timestamp":"2026-01-01T00:00:02+00:00","hostname":"db01","source_ip":"10.0.0.3","program":"postgres","facility":"local0","syslog_severity":4,"message":"checkpoints are occurring too frequently"}')
    http POST "$URL" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' --data-binary "$body"
    assert_status 200 "omhttp batch"
    assert_eq 3 "$(jq -r .accepted <<<"$HTTP_BODY")" "accepted"
    assert_eq $((before + 3)) "$(qlen)"
    [ -n "$(queued_with '"program":"postgres"')" ] || t_fail "batch event not queued"
    if command -v rsyslogd >/dev/null 2>&1; then
        rsyslogd -N1 -f "$E2E_ROOT/conf/rsyslog/60-mutt-omprog.conf" >/dev/null 2>&1 || t_fail "rsyslogd -N1 rejects 60-mutt-omprog.conf"
    else
        skip_note no-rsyslogd "rsyslogd not installed; the configs' syntax is not checked"
    fi
}

test_relay_through_the_binary_queues_syslog_lines() {
    "$MUTT_BIN" relay --help >/dev/null 2>&1 || t_fail "mutt relay --help fails"
    local before rc=0 out
    before=$(qlen)
    out=$(printf '%s\n' '<11>1 2026-01-01T00:00:00Z relayhost app - - - relayed five-424' \
        '<12>Jan  1 00:00:00 relayhost app: relayed three-164' \
        '{"hostname":"relayhost","message":"relayed json","timestamp":"2026-01-01T00:00:00Z"}' |
        "$MUTT_BIN" --config "$CONF" relay --batch 2 2>&1) || rc=$?
    assert_eq 0 "$rc" "relay exit status ($out)"
    assert_eq $((before + 3)) "$(qlen)"
    local ev
    ev=$(queued_with 'relayed five-424')
    assert_eq 3 "$(jq_get .syslog_severity "$ev")"
    assert_eq relayhost "$(jq_get .hostname "$ev")"
    # a refused key: exit 1, nothing queued
    rc=0
    printf 'x\n' | INGEST_API_KEY=wrong-key-0123456789abcdef0123456789 "$MUTT_BIN" --config "$CONF" relay >/dev/null 2>&1 || rc=$?
    assert_eq 1 "$rc" "relay with a refused key"
    assert_eq $((before + 3)) "$(qlen)"
}

command -v jq >/dev/null 2>&1 || { echo "jq missing (tests/harness/deps.sh installs it)"; exit 1; }
t_run "traphandle: numeric trap queued with trap_oid and variables" test_traphandle_posts_a_numeric_trap_with_oid_and_variables
t_run "traphandle: unknown host -> source_ip" test_traphandle_uses_the_source_ip_when_the_host_is_unknown
t_run "traphandle: key file; wrong key exits 1" test_traphandle_reads_the_key_from_its_config_file_and_fails_on_a_wrong_one
t_run "snmptrapd + snmptrap: trap queued" test_real_snmptrapd_and_snmptrap_queue_a_trap
t_run "rsyslog omhttp newline batch accepted" test_omhttp_newline_batch_is_accepted_as_one_batch
t_run "mutt relay queues syslog lines" test_relay_through_the_binary_queues_syslog_lines
stop_mutt 0
t_summary
