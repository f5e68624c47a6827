#!/usr/bin/env bash
# Throw-away redis-server + PostgreSQL 15 for integration and e2e tests, on free loopback ports, in
# a state dir ($MUTT_TEST_STATE, created by `start` when unset). Everything a later call needs
# (ports, paths) is kept in that dir, so tests can stop and restart one service mid-run on the
# same port with its data kept (tests/support/testenv.c: mutt_test_service()).
#
#   services.sh start              start both; prints the state dir; writes <state>/env
#   services.sh stop               stop both; removes the state dir unless KEEP_STATE=1
#   services.sh stop-redis | start-redis | stop-pg | start-pg
#   services.sh pause-redis MS     CLIENT PAUSE for MS milliseconds
#   services.sh reset              both running, Redis flushed, test database recreated
#   services.sh status
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_USER=postgres
PG_PASS=mutt-test-pw
PG_DB=mutt_test
WAIT_S=${MUTT_SERVICES_WAIT_S:-30}
MARKER=.mutt-test-state

die() { echo "services: $*" >&2; exit 1; }
log() { echo "services: $*" >&2; }

# Prints the last lines of a log file to stderr (for every "did not come up" error).
tail_log() {
    if [ -f "$1" ]; then
        echo "---- last lines of $1 ----" >&2
        tail -n 25 "$1" >&2 || true
        echo "----" >&2
    fi
}

# True when something accepts TCP connections on 127.0.0.1:$1 (or ss lists it as listening).
port_busy() {
    local p=$1
    if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

# A random port in 20000..59999 that nothing listens on. Another run may take it before we bind,
# so starters retry with a new port when the bind fails.
pick_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_busy "$p" || { echo "$p"; return 0; }
    done
    die "no free loopback port found"
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        # From /: the postgres user may not be allowed into the current directory.
        (cd / && runuser -u "$PG_USER" -- "$@")
    else
        "$@"
    fi
}

need_state() {
    [ -n "${MUTT_TEST_STATE:-}" ] || die "MUTT_TEST_STATE is not set (run 'services.sh start' first)"
    [ -f "$MUTT_TEST_STATE/$MARKER" ] || die "$MUTT_TEST_STATE is not a services.sh state dir"
    STATE=$MUTT_TEST_STATE
    REDIS_PORT= PG_PORT=
    # shellcheck disable=SC1091
    [ ! -f "$STATE/ports" ] || . "$STATE/ports"
}

save_ports() {
    printf 'REDIS_PORT=%s\nPG_PORT=%s\n' "$REDIS_PORT" "$PG_PORT" >"$STATE/ports.tmp"
    mv "$STATE/ports.tmp" "$STATE/ports"
}

write_env() {
    cat >"$STATE/env" <<EOF
export MUTT_TEST_REDIS_HOST=127.0.0.1 MUTT_TEST_REDIS_PORT=$REDIS_PORT MUTT_TEST_PG_HOST=127.0.0.1 MUTT_TEST_PG_PORT=$PG_PORT MUTT_TEST_PG_USER=$PG_USER MUTT_TEST_PG_PASS=$PG_PASS MUTT_TEST_PG_DB=$PG_DB MUTT_TEST_STATE=$STATE MUTT_TEST_ROOT=$ROOT
EOF
}

# True while pid runs. A zombie counts as gone: a daemonized server is re-parented to PID 1, which
# here may take a second or more to reap it.
proc_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null || true)
    [ -n "$st" ] && [ "$st" != Z ]
}

# ------------------------------------------------------------------------------------------ redis
redis_pid() { cat "$STATE/redis/redis.pid" 2>/dev/null || true; }

redis_running() {
    local pid
    pid=$(redis_pid)
    [ -n "$pid" ] && proc_alive "$pid"
}

# Starts redis-server on $REDIS_PORT. Returns 0 when our process answers PING, 2 when the port was
# taken (the caller may pick another), 1 on any other failure.
redis_start_once() {
    mkdir -p "$STATE/redis"
    rm -f "$STATE/redis/redis.pid"
    : >>"$STATE/redis/redis.log"
    local mark
    mark=$(wc -l <"$STATE/redis/redis.log")
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" \
        --appendonly yes --appendfsync always --save '' --daemonize yes \
        --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log" >/dev/null ||
        { tail_log "$STATE/redis/redis.log"; return 1; }
    local deadline=$((SECONDS + WAIT_S)) pid info
    while [ $SECONDS -lt $deadline ]; do
        pid=$(redis_pid)
        if [ -n "$pid" ] && proc_alive "$pid"; then
            # The answer must come from our process, not from whoever else holds the port.
            info=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' || true)
            if grep -qx "process_id:$pid" <<<"$info"; then
                return 0
            fi
        elif tail -n +"$((mark + 1))" "$STATE/redis/redis.log" | grep -q 'Address already in use'; then
            return 2
        elif tail -n +"$((mark + 1))" "$STATE/redis/redis.log" | grep -qE "Failed|Fatal|FATAL|Can.t |Bad directive"; then
            log "redis-server failed to start on port $REDIS_PORT"
            tail_log "$STATE/redis/redis.log"
            return 1
        fi
        sleep 0.05
    done
    log "redis-server on port $REDIS_PORT did not answer PING within ${WAIT_S}s"
    tail_log "$STATE/redis/redis.log"
    return 1
}

start_redis() {
    if redis_running; then
        [ -n "${QUIET:-}" ] || log "redis already running (pid $(redis_pid))"
        return 0
    fi
    local rc=0
    redis_start_once || rc=$?
    [ $rc -ne 2 ] || { tail_log "$STATE/redis/redis.log"; die "start-redis: port $REDIS_PORT is taken by another process"; }
    [ $rc -eq 0 ] || die "start-redis failed (port $REDIS_PORT)"
}

stop_redis() {
    local pid
    pid=$(redis_pid)
    if [ -z "$pid" ] || ! proc_alive "$pid"; then
        rm -f "$STATE/redis/redis.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + WAIT_S))
    while proc_alive "$pid"; do
        if [ $SECONDS -ge $deadline ]; then
            log "redis-server (pid $pid) ignored SIGTERM for ${WAIT_S}s; killing it"
            tail_log "$STATE/redis/redis.log"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.02
    done
    rm -f "$STATE/redis/redis.pid"
}

# --------------------------------------------------------------------------------------- postgres
pg_init() {
    mkdir -p "$STATE/pg"
    chmod 700 "$STATE/pg"
    printf '%s\n' "$PG_PASS" >"$STATE/pg/pwfile"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$PG_USER:" "$STATE/pg"
        # initdb runs as postgres: every directory above the state dir must be reachable (D31).
        runuser -u "$PG_USER" -- test -x "$STATE/pg" ||
            die "user $PG_USER cannot reach $STATE/pg (a parent directory is not searchable)"
    fi
    as_pg "$PGBIN/initdb" -D "$STATE/pg/data" -U "$PG_USER" -A scram-sha-256 \
        --pwfile="$STATE/pg/pwfile" -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$STATE/pg/initdb.log" 2>&1 || { tail_log "$STATE/pg/initdb.log"; die "initdb failed"; }
    rm -f "$STATE/pg/pwfile"
}

pg_running() {
    [ -d "$STATE/pg/data" ] && as_pg "$PGBIN/pg_ctl" -D "$STATE/pg/data" status >/dev/null 2>&1
}

# Returns 0 when the server is ready, 2 when the port was taken, 1 otherwise.
pg_start_once() {
    : >>"$STATE/pg/server.log"
    [ "$(id -u)" -ne 0 ] || chown "$PG_USER:" "$STATE/pg/server.log"
    local mark
    mark=$(wc -l <"$STATE/pg/server.log")
    if ! as_pg "$PGBIN/pg_ctl" -D "$STATE/pg/data" -l "$STATE/pg/server.log" -w -t "$WAIT_S" \
        -o "-p $PG_PORT -k $STATE/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1; then
        if tail -n +"$((mark + 1))" "$STATE/pg/server.log" | grep -q 'could not bind\|Address already in use'; then
            return 2
        fi
        log "PostgreSQL did not start on port $PG_PORT within ${WAIT_S}s"
        tail_log "$STATE/pg/server.log"
        return 1
    fi
    local deadline=$((SECONDS + WAIT_S))
    until pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 1; do
        if [ $SECONDS -ge $deadline ]; then
            log "pg_isready on port $PG_PORT failed for ${WAIT_S}s"
            tail_log "$STATE/pg/server.log"
            return 1
        fi
        sleep 0.05
    done
}

start_pg() {
    if pg_running; then
        [ -n "${QUIET:-}" ] || log "PostgreSQL already running"
        return 0
    fi
    local rc=0
    pg_start_once || rc=$?
    [ $rc -ne 2 ] || { tail_log "$STATE/pg/server.log"; die "start-pg: port $PG_PORT is taken by another process"; }
    [ $rc -eq 0 ] || die "start-pg failed (port $PG_PORT)"
}

stop_pg() {
    pg_running || return 0
    as_pg "$PGBIN/pg_ctl" -D "$STATE/pg/data" -m fast -w -t "$WAIT_S" stop >/dev/null 2>&1 || {
        log "pg_ctl stop failed"
        tail_log "$STATE/pg/server.log"
        return 1
    }
}

create_db() {
    local out
    if ! out=$(PGPASSWORD=$PG_PASS PGCONNECT_TIMEOUT=10 createdb -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB" 2>&1); then
        grep -q 'already exists' <<<"$out" || { echo "$out" >&2; die "createdb $PG_DB failed"; }
    fi
}

# ------------------------------------------------------------------------------------------ start
# A start that fails half-way stops what it started and removes a state dir it created.
start_failed() {
    log "start failed; cleaning up"
    stop_redis || true
    [ ! -d "$STATE/pg/data" ] || stop_pg || true
    [ "$CREATED" = 0 ] || [ "${KEEP_STATE:-0}" = 1 ] || rm -rf "$STATE"
}

cmd_start() {
    CREATED=0
    if [ -z "${MUTT_TEST_STATE:-}" ]; then
        STATE=$(mktemp -d /tmp/mutt-test.XXXXXX)
        CREATED=1
    else
        STATE=$MUTT_TEST_STATE
        mkdir -p "$STATE"
    fi
    # 755: the postgres user must reach <state>/pg (D31); mktemp makes 0700.
    chmod 755 "$STATE"
    touch "$STATE/$MARKER"
    export MUTT_TEST_STATE=$STATE
    REDIS_PORT= PG_PORT=
    trap start_failed EXIT

    local try rc
    for try in 1 2 3 4 5; do
        REDIS_PORT=$(pick_port)
        rc=0
        redis_start_once || rc=$?
        [ $rc -eq 0 ] && break
        [ $rc -eq 2 ] || die "redis-server did not start (state $STATE)"
        log "port $REDIS_PORT was taken; trying another"
    done
    [ $rc -eq 0 ] || die "redis-server: no usable port after 5 tries"
    PG_PORT=
    save_ports

    pg_init
    for try in 1 2 3 4 5; do
        PG_PORT=$(pick_port)
        [ "$PG_PORT" != "$REDIS_PORT" ] || continue
        rc=0
        pg_start_once || rc=$?
        [ $rc -eq 0 ] && break
        [ $rc -eq 2 ] || die "PostgreSQL did not start (state $STATE)"
        log "port $PG_PORT was taken; trying another"
    done
    [ $rc -eq 0 ] || die "PostgreSQL: no usable port after 5 tries"
    save_ports
    create_db
    write_env
    trap - EXIT
    log "redis 127.0.0.1:$REDIS_PORT, postgres 127.0.0.1:$PG_PORT, state $STATE"
    echo "$STATE"
}

cmd_stop() {
    need_state
    local rc=0
    stop_redis || rc=1
    stop_pg || rc=1
    if [ "${KEEP_STATE:-0}" = 1 ]; then
        log "state kept in $STATE"
    else
        rm -rf "$STATE"
    fi
    return $rc
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
stop-redis) need_state; stop_redis ;;
start-redis) need_state; start_redis ;;
stop-pg) need_state; stop_pg ;;
start-pg) need_state; start_pg ;;
pause-redis)
    [ -n "${2:-}" ] || die "usage: services.sh pause-redis MS"
    need_state
    out=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" CLIENT PAUSE "$2" 2>&1)
    [ "$out" = OK ] || die "CLIENT PAUSE failed: $out"
    ;;
reset)
    # Between test binaries: both services up (a failed test may have left one stopped), Redis
    # empty, a fresh test database.
    need_state
    QUIET=1
    start_redis
    start_pg
    out=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" FLUSHALL 2>&1)
    [ "$out" = OK ] || die "FLUSHALL failed: $out"
    PGPASSWORD=$PG_PASS psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" >/dev/null ||
        die "could not recreate database $PG_DB"
    ;;
status)
    need_state
    if redis_running; then echo "redis: running on $REDIS_PORT"; else echo "redis: stopped"; fi
    if pg_running; then echo "postgres: running on $PG_PORT"; else echo "postgres: stopped"; fi
    ;;
*)
    echo "usage: services.sh start|stop|stop-redis|start-redis|stop-pg|start-pg|pause-redis MS|reset|status" >&2
    exit 2
    ;;
esac
