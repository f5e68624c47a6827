#!/bin/sh
# First start: initdb with POSTGRES_USER/POSTGRES_PASSWORD and create POSTGRES_DB, as the official
# image's entrypoint does; then runs the server (CMD "postgres" plus its arguments) in the
# foreground. Listens on 127.0.0.1 only (compose runs it on the host's network) and PGPORT.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=/usr/lib/postgresql/15/bin
user=${POSTGRES_USER:-postgres}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    pw=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" >"$pw"
    "$BIN/initdb" -D "$PGDATA" -U "$user" --pwfile="$pw" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pw"
    "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
    db=${POSTGRES_DB:-$user}
    [ "$db" = postgres ] || PGPASSWORD=$POSTGRES_PASSWORD "$BIN/psql" -h /tmp -U "$user" -d postgres -qc "CREATE DATABASE \"$db\""
    "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
[ "${1:-postgres}" = postgres ] && shift || true
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 -k /tmp "$@"
