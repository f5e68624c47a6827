#!/usr/bin/env bash
# `make run`: a complete local MUTT on fixed loopback ports, state kept in ./var between runs.
#   redis-server 127.0.0.1:16379 (var/redis, appendonly everysec), PostgreSQL 15 127.0.0.1:15432
#   (var/pg, database mutt, user mutt_user), webhook sink 127.0.0.1:18099 (var/sink/events.log),
#   then `./mutt --config var/mutt.dev.conf --roles=all` in the foreground.
# Ctrl-C stops mutt, the sink, Redis and PostgreSQL; the data stays for the next run.
# Environment: MUTT_BIN (./mutt), MUTT_BUILD (build: where mutt-sink is).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
VAR="$ROOT/var"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
REDIS_PORT=16379
PG_PORT=15432
SINK_PORT=18099
BUILD=${MUTT_BUILD:-build}
MUTT_BIN=${MUTT_BIN:-./mutt}
case "$MUTT_BIN" in */*) ;; *) MUTT_BIN="./$MUTT_BIN" ;; esac
SINK_BIN="$BUILD/tests/mutt-sink"
CONF="$VAR/mutt.dev.conf"

die() { echo "make run: $*" >&2; exit 1; }
say() { echo "make run: $*" >&2; }

port_busy() {
    if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; then
        return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null)" != Z ]
}

as_pg() {
    # From /: the postgres user may not be allowed into the current directory.
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

tail_log() { [ -f "$1" ] && { echo "---- $1 ----" >&2; tail -n 20 "$1" >&2; }; return 0; }

[ -x "$MUTT_BIN" ] || die "$MUTT_BIN not built (make run builds it; did the build fail?)"
[ -x "$SINK_BIN" ] || die "$SINK_BIN not built"
mkdir -p "$VAR/redis" "$VAR/sink"

# ----------------------------------------------------------------------------- shutdown on exit
MUTT_PID=
SINK_PID=
REDIS_STARTED=0
PG_STARTED=0
stop_all() {
    trap - INT TERM EXIT
    if [ -n "$MUTT_PID" ] && alive "$MUTT_PID"; then
        kill -TERM "$MUTT_PID" 2>/dev/null || true
        wait "$MUTT_PID" 2>/dev/null || true
    fi
    if [ -n "$SINK_PID" ]; then
        kill -TERM "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
        rm -f "$VAR/sink/sink.pid"
    fi
    if [ "$REDIS_STARTED" = 1 ] && [ -f "$VAR/redis/redis.pid" ]; then
        local pid i
        pid=$(cat "$VAR/redis/redis.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
    fi
    if [ "$PG_STARTED" = 1 ]; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 ||
            say "pg_ctl stop failed; see $PGDIR/server.log"
    fi
    say "stopped (data kept in $VAR)"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------- redis
redis_ours() {
    local pid
    pid=$(cat "$VAR/redis/redis.pid" 2>/dev/null) || return 1
    alive "$pid" && redis-cli -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid"
}
if redis_ours; then
    say "redis already running on $REDIS_PORT (pid $(cat "$VAR/redis/redis.pid")); using it"
else
    port_busy "$REDIS_PORT" && die "port $REDIS_PORT (Redis) is taken by another program; stop it and retry"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" --appendonly yes \
        --appendfsync everysec --save '' --daemonize yes --pidfile "$VAR/redis/redis.pid" \
        --logfile "$VAR/redis/redis.log" >/dev/null
    REDIS_STARTED=1
    for i in $(seq 1 200); do redis_ours && break; sleep 0.05; done
    redis_ours || { tail_log "$VAR/redis/redis.log"; die "redis-server did not come up on $REDIS_PORT"; }
fi

# ------------------------------------------------------------------------------------- postgres
# PostgreSQL runs as the postgres user, which must be able to reach var/pg. When the checkout
# sits under a directory it cannot enter (a 0700 home), the data goes to /var/tmp instead (D31).
if [ ! -e "$VAR/pg" ]; then
    if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$VAR"; then
        alt="/var/tmp/mutt-dev-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
        mkdir -p "$alt"
        ln -s "$alt" "$VAR/pg"
        say "the postgres user cannot reach $VAR (a parent directory is private);"
        say "PostgreSQL data lives in $alt (var/pg links to it)"
    else
        mkdir -p "$VAR/pg"
    fi
fi
PGDIR=$(readlink -f "$VAR/pg")
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PGDIR"
    runuser -u postgres -- test -x "$PGDIR" ||
        die "the postgres user cannot reach $PGDIR; remove var/pg and run again"
fi
chmod 700 "$PGDIR"
if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
    say "initialising PostgreSQL in $PGDIR/data"
    # Local (socket) logins: peer when we are root and act as postgres; otherwise trust, which
    # only the owner can use because the socket lives in the 0700 data directory's parent.
    auth_local=trust
    [ "$(id -u)" -ne 0 ] || auth_local=peer
    as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth-local=$auth_local --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 || { tail_log "$PGDIR/initdb.log"; die "initdb failed"; }
fi
if as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
    say "PostgreSQL already running on $PG_PORT; using it"
else
    port_busy "$PG_PORT" && die "port $PG_PORT (PostgreSQL) is taken by another program; stop it and retry"
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
        -o "-p $PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1" start >/dev/null ||
        { tail_log "$PGDIR/server.log"; die "PostgreSQL did not start on $PG_PORT"; }
    PG_STARTED=1
fi
for i in $(seq 1 200); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.05; done
pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || { tail_log "$PGDIR/server.log"; die "PostgreSQL not ready on $PG_PORT"; }

# ------------------------------------------------------------------------------- config + db user
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
if [ ! -f "$CONF" ]; then
    umask 077
    cat >"$CONF" <<EOF
# Development config written by \`make run\` (tests/harness/run-dev.sh); edit freely, it is kept.
# Every key and its default: mutt.conf.example.
MUTT_ENV=development
BIND_ADDR=127.0.0.1
INGESTOR_PORT=8080
WEBUI_PORT=8090
HEALTH_PORT=8081
REDIS_HOST=127.0.0.1
REDIS_PORT=$REDIS_PORT
DB_HOST=127.0.0.1
DB_PORT=$PG_PORT
DB_NAME=mutt
DB_USER=mutt_user
DB_PASS_CURRENT=dev-$(rand_hex 12)
INGEST_API_KEY=dev-ingest-$(rand_hex 16)
WEBUI_API_KEY=dev-webui-$(rand_hex 16)
MOOG_WEBHOOK_URL=http://127.0.0.1:$SINK_PORT/events
MOOG_API_KEY=dev-moog-$(rand_hex 8)
MIGRATE_ON_START=true
LOG_LEVEL=INFO
EOF
    umask 022
    say "wrote $CONF"
fi
conf() { grep -E "^$1=" "$CONF" | tail -n 1 | cut -d= -f2-; }
DB_PASS=$(conf DB_PASS_CURRENT)
[ -n "$DB_PASS" ] || DB_PASS=$(conf DB_PASS)
DB_USER=$(conf DB_USER)
DB_NAME=$(conf DB_NAME)
[[ "$DB_USER" =~ ^[a-z_][a-z0-9_]*$ && "$DB_NAME" =~ ^[a-z_][a-z0-9_]*$ ]] || die "DB_USER/DB_NAME in $CONF must be plain identifiers"
psql_admin() { as_pg psql -h "$PGDIR" -p "$PG_PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 "$@"; }
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" ]; then
    psql_admin -c "CREATE ROLE $DB_USER LOGIN" >/dev/null
    say "created database user $DB_USER"
fi
# Always: the password in the config is the one that counts (the config may have been rewritten).
psql_admin -c "ALTER ROLE $DB_USER PASSWORD '${DB_PASS//\'/\'\'}'" >/dev/null
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null
    say "created database $DB_NAME"
    # a fresh database gets the schema and the reference's sample rules, dev hosts and teams, so
    # a first CRITICAL event travels all the way to the sink
    "$MUTT_BIN" --config "$CONF" migrate >/dev/null || die "mutt migrate failed"
    as_pg psql -h "$PGDIR" -p "$PG_PORT" -U postgres -d "$DB_NAME" -qAt -v ON_ERROR_STOP=1 \
        -f "$ROOT/conf/seed.sql" >/dev/null || die "loading conf/seed.sql failed"
    say "loaded the sample rules (conf/seed.sql)"
fi

# ------------------------------------------------------------------------------------------ sink
if [ -f "$VAR/sink/sink.pid" ]; then # left behind by a run that was killed hard
    old=$(cat "$VAR/sink/sink.pid")
    if alive "$old" && grep -q mutt-sink "/proc/$old/cmdline" 2>/dev/null; then kill -TERM "$old"; sleep 0.2; fi
    rm -f "$VAR/sink/sink.pid"
fi
port_busy "$SINK_PORT" && die "port $SINK_PORT (webhook sink) is taken by another program; stop it and retry"
"$SINK_BIN" --port "$SINK_PORT" --out "$VAR/sink/events.log" 2>>"$VAR/sink/sink.log" &
SINK_PID=$!
echo "$SINK_PID" >"$VAR/sink/sink.pid"

# ------------------------------------------------------------------------------------------ mutt
INGEST_PORT=$(conf INGESTOR_PORT)
WEB_PORT=$(conf WEBUI_PORT)
for p in "${INGEST_PORT:-8080}" "${WEB_PORT:-8090}"; do
    port_busy "$p" && die "port $p is taken by another program (a MUTT still running?); stop it or change INGESTOR_PORT/WEBUI_PORT in $CONF"
done
cat <<EOF

  MUTT development instance
  -------------------------
  Redis 127.0.0.1:$REDIS_PORT   PostgreSQL 127.0.0.1:$PG_PORT (db $DB_NAME, user $DB_USER)
  Webhook sink http://127.0.0.1:$SINK_PORT/events  -> $VAR/sink/events.log
  Config $CONF

  Send a first event:
    curl -sS -X POST http://127.0.0.1:${INGEST_PORT:-8080}/api/v2/ingest -H 'X-API-KEY: $(conf INGEST_API_KEY)' -H 'Content-Type: application/json' -d '{"timestamp":"2026-01-01T00:00:00Z","hostname":"test-server","message":"Installation test event","syslog_severity":6}'
  and one that a sample rule (CRITICAL -> Page_and_ticket) forwards to the sink:
    curl -sS -X POST http://127.0.0.1:${INGEST_PORT:-8080}/api/v2/ingest -H 'X-API-KEY: $(conf INGEST_API_KEY)' -H 'Content-Type: application/json' -d '{"timestamp":"2026-01-01T00:00:00Z","hostname":"router1","message":"CRITICAL: power supply failed","syslog_severity":2}'
    tail -f $VAR/sink/events.log

  Dashboard: http://127.0.0.1:${WEB_PORT:-8090}/   (API key: $(conf WEBUI_API_KEY))
  Health:    curl -sS http://127.0.0.1:${INGEST_PORT:-8080}/health

  Ctrl-C stops everything; data stays in var/.

EOF
"$MUTT_BIN" --config "$CONF" --roles=all &
MUTT_PID=$!
rc=0
wait "$MUTT_PID" || rc=$?
MUTT_PID=
exit "$rc"
