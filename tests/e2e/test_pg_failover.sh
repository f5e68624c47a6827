#!/usr/bin/env bash
# End-to-end tests of PostgreSQL multi-host (issue 14 item 3, CONTRACT D38, D55) with the built
# binary against a primary and a streaming standby this script makes itself (initdb, then
# `pg_basebackup -R` from the primary), so stopping and promoting them never touches the
# harness's PostgreSQL. Redis is the harness's. Covers:
#   (a) DB_HOST=standby,primary: the read-write default finds the primary; /health, `mutt health`
#       and --check-config name it;
#   (b) a first host that accepts TCP and never answers: after DB_CONNECT_TIMEOUT_MS the next
#       host is used;
#   (c) primary stopped, standby promoted: mutt follows, the web API answers 503 (never 500)
#       in between, audit rows written meanwhile wait in Redis and arrive exactly once;
#   (d) the host in use turns read-only (25006): the pool reconnects to the read-write host, no
#       audit row goes to a DLQ and no API write answers 500.
# Needs: MUTT_TEST_* (services.sh), MUTT_BIN, the PostgreSQL 15 server binaries, jq, python3.
source "$(dirname "$0")/lib.sh"

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
command -v jq >/dev/null || { echo "jq is required (tests/harness/deps.sh installs it)" >&2; exit 1; }
[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_basebackup" ] ||
    { echo "PostgreSQL server binaries not found in $PGBIN" >&2; exit 1; }

PGFO="$E2E_TMP/pgfo"
PG_RUN=() # prefix that runs a command as the postgres user (the servers refuse to run as root)
mkdir -p "$PGFO"
if [ "$(id -u)" -eq 0 ]; then
    chmod 711 "$E2E_TMP"
    chown "$MUTT_TEST_PG_USER:" "$PGFO"
    PG_RUN=(setpriv --reuid="$MUTT_TEST_PG_USER" --regid="$MUTT_TEST_PG_USER" --init-groups)
fi
pg_as() { (cd / && "${PG_RUN[@]}" "$@"); }
P_PORT=$(free_port)
S_PORT=$(free_port)
rc() { redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" "$@"; }
sql_on() { # sql_on PORT SQL [DB]
    PGPASSWORD=$MUTT_TEST_PG_PASS PGCONNECT_TIMEOUT=5 psql -qAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" \
        -U "$MUTT_TEST_PG_USER" -d "${3:-$MUTT_TEST_PG_DB}" -c "$2"
}

# pg_up NAME DATADIR PORT: runs the server in the foreground as a helper (PG_PID_<NAME>).
pg_up() {
    spawn_helper "pg-$1" "$PGFO/$1.log" "${PG_RUN[@]}" "$PGBIN/postgres" -D "$2" -p "$3" -k "$PGFO" \
        -c listen_addresses=127.0.0.1 -c fsync=off
    printf -v "PG_PID_$1" '%s' "$HELPER_PID"
    wait_until 30 pg_isready -q -h 127.0.0.1 -p "$3" -t 1 ||
        { tail -n 20 "$PGFO/$1.log" >&2; t_fail "PostgreSQL $1 did not start on $3"; }
}

# pg_down NAME: fast shutdown (what `pg_ctl stop -m fast` sends), waits until it has exited.
pg_down() {
    local pid_var="PG_PID_$1"
    helper_signal INT "${!pid_var}"
    wait_until 30 eval '! alive '"${!pid_var}" || t_fail "PostgreSQL $1 did not stop"
}

make_clusters() {
    printf '%s\n' "$MUTT_TEST_PG_PASS" >"$PGFO/pwfile"
    [ "$(id -u)" -ne 0 ] || chown "$MUTT_TEST_PG_USER:" "$PGFO/pwfile"
    pg_as "$PGBIN/initdb" -D "$PGFO/p" -U "$MUTT_TEST_PG_USER" -A scram-sha-256 --pwfile="$PGFO/pwfile" \
        -E UTF8 --locale=C.UTF-8 --no-sync >"$PGFO/initdb.log" 2>&1 ||
        { tail -n 20 "$PGFO/initdb.log" >&2; t_fail "initdb failed"; }
    pg_up p "$PGFO/p" "$P_PORT"
    sql_on "$P_PORT" "CREATE DATABASE $MUTT_TEST_PG_DB" postgres >/dev/null
    # the schema before the copy, so the standby has it too
    e2e_config "$E2E_TMP/migrate.conf" DB_HOST=127.0.0.1 DB_PORT="$P_PORT"
    "$MUTT_BIN" --config "$E2E_TMP/migrate.conf" migrate >"$PGFO/migrate.log" 2>&1 ||
        { cat "$PGFO/migrate.log" >&2; t_fail "migrate on the primary failed"; }
    sql_on "$P_PORT" "INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling,
        team_assignment) VALUES ('CRITICAL', 'contains', 10, 'Page_and_ticket', 'Ticket_only', 'NETO')" >/dev/null
    PGPASSWORD=$MUTT_TEST_PG_PASS pg_as "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P_PORT" -U "$MUTT_TEST_PG_USER" \
        -D "$PGFO/s" -R -X stream --no-sync >"$PGFO/basebackup.log" 2>&1 ||
        { tail -n 20 "$PGFO/basebackup.log" >&2; t_fail "pg_basebackup failed"; }
    pg_up s "$PGFO/s" "$S_PORT"
    assert_eq t "$(sql_on "$S_PORT" 'SELECT pg_is_in_recovery()')" "the copy is a streaming standby"
}

# push_events N PREFIX: N events straight into mutt:ingest_queue, as ingest writes them.
push_events() {
    python3 - "$1" "$2" <<'EOF' | rc --pipe >/dev/null
import json, sys, uuid
n, prefix = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
for i in range(n):
    ev = json.dumps({"hostname": "host-%d" % (i % 20), "message": "CRITICAL %s %d" % (prefix, i),
                     "timestamp": "2025-11-25T10:00:00.000Z", "_correlation_id": "%s-%d" % (prefix, i),
                     "_event_id": str(uuid.uuid4())}, separators=(",", ":")).encode()
    args = [b"LPUSH", b"mutt:ingest_queue", ev]
    out.write(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
EOF
}
claimed() {
    local s=0 k
    for k in $(rc --scan --pattern 'mutt:audit:processing:*'); do s=$((s + $(rc LLEN "$k"))); done
    echo "$s"
}
dlq_rows() {
    local s=0 k
    for k in $(rc --scan --pattern 'mutt:dlq:*'); do s=$((s + $(rc LLEN "$k"))); done
    echo "$s"
}
rows_on() { sql_on "$1" "SELECT count(*) FROM event_audit_log"; }
distinct_on() { sql_on "$1" "SELECT count(DISTINCT event_id) FROM event_audit_log"; }
# every event handled and its audit row committed on the server at PORT (N rows there)
settled_on() {
    [ "$(rc LLEN mutt:ingest_queue)" = 0 ] && [ "$(rc LLEN mutt:audit:pending)" = 0 ] &&
        [ -z "$(rc --scan --pattern 'mutt:audit:processing:*')" ] && [ "$(rows_on "$1")" = "$2" ]
}
health_host() { curl -s -m 2 "http://127.0.0.1:$WEB_PORT/health" | jq -r '.database_host // empty'; }
health_host_is() { [ "$(health_host)" = "$1" ]; }
API() { echo "http://127.0.0.1:$WEB_PORT/api/v1$1"; }
post_dev_host() { http POST "$(API /dev-hosts)" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' \
    --data-binary "{\"hostname\":\"$1\"}"; }

rc FLUSHALL >/dev/null
rc SET mutt:config:alerter_queue_warn_threshold 100000000 >/dev/null
rc SET mutt:config:alerter_queue_shed_threshold 100000000 >/dev/null
make_clusters # at the top level: the servers' helper pids outlive each test's subshell

WEB_PORT=$(free_port)
e2e_config "$E2E_TMP/mutt.conf" POD_NAME=pgfo DB_HOST=127.0.0.1,127.0.0.1 DB_PORT="$S_PORT,$P_PORT" \
    DB_CONNECT_TIMEOUT_MS=2000 DB_QUERY_TIMEOUT_MS=2000 MIGRATE_ON_START=false METRICS_CACHE_TTL=0

# One mutt for (a), (c) and (d), started here so every test's subshell sees it.
start_mutt "$E2E_TMP/mutt.conf" alert,web

test_a_standby_first_in_the_list_the_primary_is_used() {
    wait_until 15 health_host_is "127.0.0.1:$P_PORT" || t_fail "/health database_host: [$(health_host)]"
    local out
    out=$("$MUTT_BIN" --config "$E2E_TMP/mutt.conf" health --roles=web 2>&1) || true
    assert_contains "$out" "database: connected 127.0.0.1:$P_PORT" "mutt health names the host in use"
    out=$("$MUTT_BIN" --config "$E2E_TMP/mutt.conf" --roles=alert,web --check-config 2>&1) || true
    assert_contains "$out" "database: ok 127.0.0.1:$P_PORT/$MUTT_TEST_PG_DB" "--check-config names the primary"
    push_events 200 before
    wait_until 30 settled_on "$P_PORT" 200 || t_fail "first 200 not audited: $(rows_on "$P_PORT") rows"
    assert_eq 200 "$(distinct_on "$P_PORT")"
    post_dev_host before-failover
    assert_status 201 "a write through the pool"
    # replicated before the primary goes (the drill below counts rows on the standby)
    wait_until 15 eval '[ "$(rows_on "$S_PORT")" = 200 ]' || t_fail "standby did not replay the rows"
}

test_b_a_host_that_never_answers_is_left_after_the_connect_timeout() {
    local hang conf out
    hang=$(free_port)
    spawn_helper blackhole "$E2E_TMP/blackhole.log" python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)   # the kernel completes handshakes; nothing ever reads or answers
print("listening", flush=True)
time.sleep(300)
' "$hang"
    local bh=$HELPER_PID
    wait_until 10 grep -q listening "$E2E_TMP/blackhole.log" || t_fail "blackhole listener did not start"
    conf="$E2E_TMP/b.conf"
    WEB_PORT=$(free_port) # this subshell's own mutt; the main one keeps running meanwhile
    e2e_config "$conf" POD_NAME=pgfo-b DB_HOST=127.0.0.1,127.0.0.1 DB_PORT="$hang,$P_PORT" \
        DB_CONNECT_TIMEOUT_MS=1000 MIGRATE_ON_START=false
    start_mutt "$conf" web
    wait_until 15 health_host_is "127.0.0.1:$P_PORT" || t_fail "/health database_host: [$(health_host)]"
    grep -q "127.0.0.1:$hang failed (connect timeout); trying the next host" "$MUTT_LOG" ||
        t_fail "no connect timeout on the first host logged: $(grep pg "$MUTT_LOG" | tail -n 5)"
    http GET "$(API /rules)" -H "X-API-KEY: $WEB_KEY"
    assert_status 200
    stop_mutt
    stop_helper "$bh"
}

test_c_primary_stopped_standby_promoted_mutt_follows() {
    pg_down p
    local i st statuses=""
    push_events 300 outage
    for i in $(seq 1 10); do
        http GET "$(API /rules)" -H "X-API-KEY: $WEB_KEY"
        statuses="$statuses $HTTP_STATUS"
        post_dev_host "during-outage-$i"
        statuses="$statuses $HTTP_STATUS"
        sleep 0.2
    done
    e2e_log "API during the outage:$statuses"
    assert_not_contains "$statuses" "500" "never 500 while no primary is up"
    assert_contains "$statuses" "503" "503 while no primary is up"
    wait_until 20 eval '[ "$(rc LLEN mutt:ingest_queue)" = 0 ]' || t_fail "events not handled during the outage"
    local waiting=$(($(rc LLEN mutt:audit:pending) + $(claimed)))
    assert_eq 300 "$waiting" "audit rows wait in Redis"
    pg_as "$PGBIN/pg_ctl" -D "$PGFO/s" -w -t 30 promote >/dev/null || t_fail "promote failed"
    wait_until 30 health_host_is "127.0.0.1:$S_PORT" || t_fail "/health database_host: [$(health_host)]"
    wait_until 60 settled_on "$S_PORT" 500 ||
        t_fail "rows on the new primary: $(rows_on "$S_PORT") of 500, pending $(rc LLEN mutt:audit:pending)"
    assert_eq 500 "$(distinct_on "$S_PORT")" "each audit row exactly once"
    assert_eq 0 "$(dlq_rows)" "nothing in a DLQ"
    wait_until 15 eval 'post_dev_host after-promote; [ "$HTTP_STATUS" = 201 ]' ||
        t_fail "API write after the promotion: $HTTP_STATUS $HTTP_BODY"
}

test_d_host_turned_read_only_reconnects_to_the_writable_one() {
    # the old primary comes back on its own timeline (writable); the host in use turns read-only
    pg_up p "$PGFO/p" "$P_PORT"
    local before i statuses=""
    before=$(rows_on "$P_PORT")
    sql_on "$S_PORT" "ALTER SYSTEM SET default_transaction_read_only = on" postgres >/dev/null
    sql_on "$S_PORT" "SELECT pg_reload_conf()" postgres >/dev/null
    sleep 0.5 # the reload reaches every backend
    # the API write first: the pool's connections are all on the host that just turned read-only
    for i in $(seq 1 20); do
        post_dev_host "read-only-$i"
        statuses="$statuses $HTTP_STATUS"
        [ "$HTTP_STATUS" = 201 ] && break
        sleep 0.3
    done
    e2e_log "API writes after the host turned read-only:$statuses"
    assert_not_contains "$statuses" "500" "25006 is not an internal error"
    assert_eq 201 "$HTTP_STATUS" "a write lands on the writable host"
    assert_contains "$statuses" "503" "the write that met 25006 answered 503"
    push_events 100 readonly
    wait_until 20 health_host_is "127.0.0.1:$P_PORT" || t_fail "/health database_host: [$(health_host)]"
    wait_until 60 settled_on "$P_PORT" $((before + 100)) ||
        t_fail "rows on the writable host: $(rows_on "$P_PORT") of $((before + 100))"
    assert_eq $((before + 100)) "$(distinct_on "$P_PORT")" "each audit row exactly once"
    assert_eq 0 "$(dlq_rows)" "no audit row refused into a DLQ"
    assert_eq 1 "$(sql_on "$P_PORT" "SELECT count(*) FROM development_hosts WHERE hostname = 'read-only-$i'")"
    grep -q "says 25006" "$MUTT_LOG" || t_fail "no 25006 reconnect logged"
}

t_run "(a) DB_HOST=standby,primary: read-write finds the primary; health and --check-config name it" \
    test_a_standby_first_in_the_list_the_primary_is_used
t_run "(b) a first host that never answers is left after DB_CONNECT_TIMEOUT_MS" \
    test_b_a_host_that_never_answers_is_left_after_the_connect_timeout
t_run "(c) primary stopped, standby promoted: 503 meanwhile, audit rows exactly once" \
    test_c_primary_stopped_standby_promoted_mutt_follows
t_run "(d) host in use turns read-only (25006): reconnect to the writable host, no DLQ, no 500" \
    test_d_host_turned_read_only_reconnects_to_the_writable_one
stop_mutt
t_summary
