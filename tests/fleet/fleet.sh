#!/usr/bin/env bash
# Fleet drills (issue 14 item 4, CONTRACT D54): MUTT across "hosts" that are network namespaces,
# each with its own address on a veth to a bridge that lives in a namespace of its own (the root
# namespace gets no address, no route and no bridged traffic: nothing leaves the test's net).
#
#   mflt-r1 .11  redis primary  + sentinel      mflt-pg1 .21  PostgreSQL primary
#   mflt-r2 .12  redis replica  + sentinel      mflt-pg2 .22  PostgreSQL standby (pg_basebackup -R)
#   mflt-r3 .13  redis replica  + sentinel      mflt-front .31  mutt --roles=ingest,web
#   mflt-cli .50 load driver + webhook sink     mflt-w1 .41   mutt --roles=alert,forward,remediate,retention
#   mflt-sw      the bridge                     mflt-w2 .42   mutt --roles=alert,forward,remediate
#
# The driver (bench/e2e_driver) posts RATE events/s to the front with INGEST_MIN_REPLICAS=1; its
# mix matches 70 % and forwards 46 % of them. Drills, one at a time, each under its own load:
#   redis      kill -9 of the Redis primary (the sentinels promote a replica; it comes back later
#              as a replica, so every drill starts with a primary and two replicas)
#   pg         the PostgreSQL primary stopped, the standby promoted (pg_ctl promote)
#   worker     kill -9 of worker w2 (restarted once the drill is judged)
#   partition  w2's veth down for PARTITION seconds, then up again
# After each (tests/fleet/check.py): every event answered 200 that a rule matches is audited
# exactly once, every forwarding one delivered at least once (duplicates counted, bounded by the
# in-flight caps after a worker drill; after a Redis failover by the replication lag, D53, so
# reported only), no processing list holds anything, and the time from fault to full recovery.
#
# Env: FLEET_RATE (2000), FLEET_PARTITION_S (30), FLEET_HB_EXPIRY (5), FLEET_JANITOR (1),
#      FLEET_DRILLS ("redis pg worker partition"), FLEET_SETTLE_S (120: bound on each wait for
#      the pipeline to drain), MUTT_BIN, MUTT_SINK_BIN, DRIVER_BIN, KEEP_STATE=1 keeps the work dir.
# Exit: 0 every drill passed, 1 one failed, 77 (skip-reason no-netns) when namespaces cannot be made.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${MUTT_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
SINK_BIN=${MUTT_SINK_BIN:-$BUILD/tests/mutt-sink}
DRIVER_BIN=${DRIVER_BIN:-$BUILD/bench/e2e_driver}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RATE=${FLEET_RATE:-2000}
PARTITION=${FLEET_PARTITION_S:-30}
HB_EXPIRY=${FLEET_HB_EXPIRY:-5}
JANITOR=${FLEET_JANITOR:-1}
DRILLS=${FLEET_DRILLS:-redis pg worker partition}
SETTLE=${FLEET_SETTLE_S:-120}
PRE=5  # seconds of load before each fault
POST=10 # seconds of load after the fault is over
NET=10.213.14
NS=mflt
SPORT=26380 # sentinels: never 26379 (the system sentinel's, D54)
# 1 s let a newly promoted primary, busy with every client reconnecting at 2,000 events/s on a
# 2-core box, miss its pings: the sentinels failed over a second time, and the first primary,
# demoted late, needed a full resync before WAIT 1 could answer again (18 s of 503s). 3 s is
# still far below the 30 s default.
DOWN_AFTER_MS=${FLEET_DOWN_AFTER_MS:-3000}
HOSTS="r1 r2 r3 pg1 pg2 front w1 w2 cli"
declare -A IP=([r1]=11 [r2]=12 [r3]=13 [pg1]=21 [pg2]=22 [front]=31 [w1]=41 [w2]=42 [cli]=50)
INGEST_KEY=fleet-ingest-key-0123456789abcdef0123456789
WEB_KEY=fleet-webui-key-0123456789abcdef01234567890
PGPASS=fleet-pg-$RANDOM$RANDOM
ALERTER_CONCURRENCY=64
MOOG_MAX_INFLIGHT=32

log() { echo "fleet: $*"; }
die() { echo "fleet: FAIL: $*"; exit 1; }
nsx() { local h=$1; shift; ip netns exec "$NS-$h" "$@"; }
# Background servers are started as `ip netns exec NS CMD &` (never through a function): ip execs
# CMD, so $! is the server's own pid and kill -9 reaches it, not a wrapper shell.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_until SECONDS CMD...: polls CMD every 100 ms, false after SECONDS.
wait_until() {
    local limit=$1 end
    shift
    end=$(($(date +%s) + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

for b in "$MUTT_BIN" "$SINK_BIN" "$DRIVER_BIN" "$PGBIN/initdb" "$PGBIN/pg_basebackup" "$PGBIN/postgres"; do
    [ -x "$b" ] || die "$b is missing (make tests-build builds mutt, the sink and the driver)"
done
for c in ip redis-server redis-cli psql pg_isready setpriv python3; do
    command -v "$c" >/dev/null || die "$c is missing"
done

# ---------------------------------------------------------------------------- namespaces
# Everything this script started runs inside its namespaces: ending it is killing what
# `ip netns pids` lists there (a crashed run leaves them, so this also runs before start).
teardown() {
    local n pids all="" i
    for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS-"); do
        all="$all $(ip netns pids "$n" 2>/dev/null)"
    done
    if [ -n "${all// /}" ]; then
        kill -TERM $all 2>/dev/null
        for i in $(seq 1 100); do # 10 s for a clean exit, then kill -9
            pids=""
            for n in $all; do ! kill -0 "$n" 2>/dev/null || pids="$pids $n"; done
            [ -n "$pids" ] || break
            sleep 0.1
        done
        [ -z "$pids" ] || kill -9 $pids 2>/dev/null
    fi
    for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NS-"); do
        ip netns del "$n" 2>/dev/null
    done
}

if ! ip netns add "$NS-probe" 2>/dev/null; then
    echo "skip-reason: no-netns: this machine cannot create network namespaces (not root, or no CAP_SYS_ADMIN)"
    exit 77
fi
ip netns del "$NS-probe"
# One run at a time on a machine: the names, the subnet and the clean-up before start are shared
# (a second run would tear the first one's namespaces down). Bounded wait.
exec 9>/tmp/mutt-fleet.lock
flock -w 900 9 || die "another fleet run held /tmp/mutt-fleet.lock for 15 minutes"
teardown

W=$(mktemp -d /tmp/mutt-fleet.XXXXXX)
chmod 755 "$W"
cleanup() {
    local rc=$?
    teardown
    if [ "${KEEP_STATE:-0}" = 1 ] || [ "$rc" != 0 ]; then
        log "work dir kept: $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS-sw" || die "ip netns add"
nsx sw ip link set lo up
nsx sw ip link add br0 type bridge
nsx sw ip link set br0 up
for h in $HOSTS; do
    ip netns add "$NS-$h" || die "ip netns add $NS-$h"
    nsx "$h" ip link set lo up
    # made in place: the pair never exists in the root namespace (names <= 15 characters)
    ip link add "v-$h" netns "$NS-sw" type veth peer name eth0 netns "$NS-$h" || die "veth for $h"
    nsx sw ip link set "v-$h" master br0
    nsx sw ip link set "v-$h" up
    nsx "$h" ip addr add "$NET.${IP[$h]}/24" dev eth0
    nsx "$h" ip link set eth0 up
done
addr() { echo "$NET.${IP[$1]}"; }
log "namespaces up: $HOSTS (bridge in $NS-sw, subnet $NET.0/24)"

# ------------------------------------------------------------------------------------ redis
# Every check from the cli host, through the sentinels (never from the root namespace).
rcli() { nsx cli redis-cli "$@"; }
redis_start() { # HOST [ARGS...]
    local h=$1
    shift
    mkdir -p "$W/$h"
    ip netns exec "$NS-$h" redis-server --port 6379 --bind "$(addr "$h")" --save '' --appendonly no --dir "$W/$h" \
        --protected-mode no --repl-diskless-sync-delay 0 "$@" >>"$W/$h.redis.log" 2>&1 &
    disown # no job notices: their ends are the drills' business
    echo $! >"$W/$h.redis.pid"
    wait_until 15 rcli -h "$(addr "$h")" ping || die "redis on $h did not start"
}
sentinel_start() {
    local h=$1
    cat >"$W/$h.sentinel.conf" <<CONF
port $SPORT
bind $(addr "$h")
protected-mode no
dir $W
sentinel resolve-hostnames no
sentinel monitor mymaster $(addr r1) 6379 2
sentinel down-after-milliseconds mymaster $DOWN_AFTER_MS
sentinel failover-timeout mymaster 3000
sentinel parallel-syncs mymaster 1
CONF
    ip netns exec "$NS-$h" redis-server "$W/$h.sentinel.conf" --sentinel >>"$W/$h.sentinel.log" 2>&1 &
    disown # no job notices: their ends are the drills' business
    wait_until 15 rcli -h "$(addr "$h")" -p "$SPORT" ping || die "sentinel on $h did not start"
}
primary() { rcli -h "$(addr r2)" -p "$SPORT" sentinel get-master-addr-by-name mymaster | head -n 1; }
rp() { rcli -h "$(primary)" "$@"; }
sentinels_settled() { # every sentinel sees two replicas and two other sentinels
    local h v
    for h in r1 r2 r3; do
        v=$(rcli -h "$(addr "$h")" -p "$SPORT" sentinel master mymaster | paste - - |
            awk -F'\t' '$1=="num-slaves"{a=$2} $1=="num-other-sentinels"{b=$2} $1=="flags"{f=$2} END{print a" "b" "f}')
        [ "$v" = "2 2 master" ] || return 1
    done
    # and the replicas the sentinels count are live and in sync
    [ "$(rp info replication | tr -d '\r' | grep -c '^slave[0-9]*:.*state=online')" = 2 ]
}

redis_start r1
redis_start r2 --replicaof "$(addr r1)" 6379
redis_start r3 --replicaof "$(addr r1)" 6379
for h in r1 r2 r3; do sentinel_start "$h"; done
wait_until 60 sentinels_settled || die "sentinels did not settle on a primary with two replicas"
log "redis: primary $(primary), two replicas, three sentinels (quorum 2)"

# ------------------------------------------------------------------------------- postgresql
pg_as() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
psql_on() { # HOST SQL [DB]
    nsx cli env PGPASSWORD="$PGPASS" PGCONNECT_TIMEOUT=3 psql -qAt -F' ' -v ON_ERROR_STOP=1 -h "$(addr "$1")" \
        -U mutt -d "${3:-mutt}" -c "$2"
}
pg_start() { # HOST
    local h=$1
    mkdir -p "$W/sock-$h"
    chown postgres: "$W/sock-$h"
    ip netns exec "$NS-$h" setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$W/$h" -p 5432 \
        -k "$W/sock-$h" -c listen_addresses="$(addr "$h")" -c fsync=off >>"$W/$h.pg.log" 2>&1 &
    disown # no job notices: their ends are the drills' business
    echo $! >"$W/$h.pg.pid"
    wait_until 30 nsx cli pg_isready -q -h "$(addr "$h")" -t 1 || { tail -n 20 "$W/$h.pg.log"; die "PostgreSQL on $h did not start"; }
}
pg_primary() { # the host whose server takes writes
    local h
    for h in pg1 pg2; do
        [ "$(psql_on "$h" 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ] && { echo "$h"; return 0; }
    done
    return 1
}

mkdir -p "$W/pg1" "$W/pg2"
chown postgres: "$W/pg1" "$W/pg2"
chmod 700 "$W/pg1" "$W/pg2"
printf '%s\n' "$PGPASS" >"$W/pwfile"
chown postgres: "$W/pwfile"
(cd / && pg_as "$PGBIN/initdb" -D "$W/pg1" -U mutt -A scram-sha-256 --pwfile="$W/pwfile" -E UTF8 --locale=C.UTF-8 \
    --no-sync) >"$W/initdb.log" 2>&1 || { tail -n 20 "$W/initdb.log"; die "initdb"; }
printf 'host all all %s.0/24 scram-sha-256\nhost replication all %s.0/24 scram-sha-256\n' "$NET" "$NET" >>"$W/pg1/pg_hba.conf"
pg_start pg1
psql_on pg1 "CREATE DATABASE mutt" postgres >/dev/null || die "CREATE DATABASE"
(cd / && nsx pg2 env PGPASSWORD="$PGPASS" setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PGBIN/pg_basebackup" -h "$(addr pg1)" -U mutt -D "$W/pg2" -R -X stream -c fast --no-sync) >"$W/basebackup.log" 2>&1 ||
    { tail -n 20 "$W/basebackup.log"; die "pg_basebackup"; }
pg_start pg2
[ "$(psql_on pg2 'SELECT pg_is_in_recovery()')" = t ] || die "pg2 is not a standby"
log "postgresql: primary on pg1, streaming standby on pg2"

# ------------------------------------------------------------------------------------- mutt
write_conf() { # HOST POD
    cat >"$W/$1.conf" <<CONF
POD_NAME=$2
BIND_ADDR=$(addr "$1")
INGESTOR_PORT=8080
WEBUI_PORT=8090
HEALTH_PORT=8081
REDIS_HOST=192.0.2.1
REDIS_PORT=1
REDIS_SENTINELS=$(addr r1):$SPORT,$(addr r2):$SPORT,$(addr r3):$SPORT
REDIS_TRUSTED_NETWORK=true
REDIS_CONNECT_TIMEOUT_MS=500
REDIS_RECONNECT_MAX_MS=1000
DB_HOST=$(addr pg1),$(addr pg2)
DB_PORT=5432
DB_NAME=mutt
DB_USER=mutt
DB_PASS_CURRENT=$PGPASS
DB_CONNECT_TIMEOUT_MS=2000
MIGRATE_ON_START=false
INGEST_API_KEY=$INGEST_KEY
WEBUI_API_KEY=$WEB_KEY
INGEST_MIN_REPLICAS=1
RATE_LIMIT_ENABLED=false
MAX_INGEST_QUEUE_SIZE=1000000000
MOOG_WEBHOOK_URL=http://$(addr cli):8099/events
MOOG_API_KEY=fleet-moog-key
MOOG_RATE_LIMIT=1000000
MOOG_MAX_INFLIGHT=$MOOG_MAX_INFLIGHT
ALERTER_CONCURRENCY=$ALERTER_CONCURRENCY
UNHANDLED_THRESHOLD=1000000000
HEARTBEAT_INTERVAL=1
HEARTBEAT_EXPIRY=$HB_EXPIRY
JANITOR_INTERVAL=$JANITOR
LOG_LEVEL=INFO
CONF
}
declare -A ROLES=([front]=ingest,web [w1]=alert,forward,remediate,retention [w2]=alert,forward,remediate)
declare -A HPORT=([front]=8080 [w1]=8081 [w2]=8081)
mutt_start() { # HOST
    local h=$1
    ip netns exec "$NS-$h" "$MUTT_BIN" --config "$W/$h.conf" --roles="${ROLES[$h]}" >>"$W/$h.mutt.log" 2>&1 &
    disown # no job notices: their ends are the drills' business
    echo $! >"$W/$h.mutt.pid"
    wait_until 30 eval "grep -q 'running as pod' '$W/$h.mutt.log' && nsx cli curl -sf -m 1 -o /dev/null http://$(addr "$h"):${HPORT[$h]}/health/ready" ||
        { tail -n 30 "$W/$h.mutt.log"; die "mutt on $h did not become ready"; }
}
for h in front w1 w2; do write_conf "$h" "fleet-$h"; done
nsx front "$MUTT_BIN" --config "$W/front.conf" migrate >"$W/migrate.log" 2>&1 || { tail -n 20 "$W/migrate.log"; die "migrate"; }
"$DRIVER_BIN" --rules-sql >"$W/rules.sql"
nsx cli env PGPASSWORD="$PGPASS" psql -qAt -v ON_ERROR_STOP=1 -h "$(addr pg1)" -U mutt -d mutt -f "$W/rules.sql" >/dev/null ||
    die "loading the rules"
# the defaults shed at 1,000 queued alerts: a drill's backlog must show as backlog, not as shedding
rp SET mutt:config:alerter_queue_warn_threshold 100000000 >/dev/null
rp SET mutt:config:alerter_queue_shed_threshold 100000000 >/dev/null
ip netns exec "$NS-cli" "$SINK_BIN" --port 8099 --bind "$(addr cli)" --out "$W/sink.out" --stamp >>"$W/sink.log" 2>&1 &
disown # no job notices: their ends are the drills' business
wait_until 10 nsx cli curl -sf -m 1 "http://$(addr cli):8099/health" || die "the sink did not start"
for h in front w1 w2; do mutt_start "$h"; done
log "mutt: front (ingest,web), w1 (alert,forward,remediate,retention), w2 (alert,forward,remediate)"
log "load: $RATE events/s, INGEST_MIN_REPLICAS=1, HEARTBEAT_EXPIRY=$HB_EXPIRY, JANITOR_INTERVAL=$JANITOR, partition $PARTITION s"

# ----------------------------------------------------------------------------------- drills
processing_items() { # items in every processing/claim list (none may remain once settled)
    local k s=0
    for k in $(rp --scan --pattern 'mutt:processing:*') $(rp --scan --pattern 'mutt:audit:processing:*'); do
        s=$((s + $(rp LLEN "$k")))
    done
    echo "$s"
}
drained() {
    [ "$(rp LLEN mutt:ingest_queue)" = 0 ] && [ "$(rp LLEN mutt:alert_queue)" = 0 ] &&
        [ "$(rp LLEN mutt:audit:pending)" = 0 ] && [ "$(processing_items)" = 0 ]
}
NEXT_SEQ=0
FAILED=()
PASSED=()
RESULTS=()

# run_drill NAME FAULT_FN HEAL_FN FAULT_SECONDS DUP_CAP
run_drill() {
    local name=$1 fault=$2 heal=$3 span=$4 cap=$5 secs first last dpid t_fault t_heal="" verdict rc=0
    secs=$((PRE + span + POST))
    first=$NEXT_SEQ
    last=$((first + RATE * secs - 1))
    NEXT_SEQ=$((last + 1000001 - (last + 1) % 1000000)) # each drill's seqs start at a fresh million
    echo
    log "==== drill $name: $secs s of load, fault after $PRE s$([ "$span" = 0 ] || echo ", lasting $span s") (seqs $first..$last)"
    nsx cli "$DRIVER_BIN" --url "http://$(addr front):8080/api/v2/ingest" --key "$INGEST_KEY" --rate "$RATE" \
        --seconds "$secs" --conns 64 --first-seq "$first" --accepted "$W/$name.accepted" --log "$W/$name.driver" \
        >"$W/$name.driver.out" 2>&1 &
    dpid=$!
    sleep "$PRE"
    t_fault=$(now_ms)
    "$fault" || { kill "$dpid" 2>/dev/null; wait "$dpid"; FAILED+=("$name (fault could not be made)"); return 1; }
    if [ "$span" -gt 0 ]; then
        sleep "$span"
        t_heal=$(now_ms)
        "$heal" || { kill "$dpid" 2>/dev/null; wait "$dpid"; FAILED+=("$name (heal failed)"); return 1; }
        log "healed after $(((t_heal - t_fault) / 1000)) s"
    fi
    # the driver ends by itself (its requests time out after 10 s): bounded
    wait "$dpid"
    sed 's/^/  /' "$W/$name.driver.out"
    [ "$span" -gt 0 ] || "$heal" || { FAILED+=("$name (restoring after the drill failed)"); return 1; }
    if ! wait_until "$SETTLE" drained; then
        log "not drained after $SETTLE s: ingest $(rp LLEN mutt:ingest_queue), alert $(rp LLEN mutt:alert_queue), audit pending $(rp LLEN mutt:audit:pending), processing $(processing_items)"
        rc=1
    fi
    # the last deliveries may still be on their way (a retry after a failed POST)
    wait_until 30 eval "python3 '$ROOT/tests/fleet/check.py' --first $first --last $last --driver-log '$W/$name.driver' --sink '$W/sink.out' --quiet-missing | grep -qx 'missing 0'" || true
    local pgh
    pgh=$(pg_primary) || { log "no writable PostgreSQL"; rc=1; }
    psql_on "${pgh:-pg2}" "SELECT j->>'bench_seq', count(*),
        round(max(extract(epoch FROM created_at) * 1000 - (j->>'bench_sent_ms')::float8)),
        round(max(extract(epoch FROM created_at) * 1000))
        FROM (SELECT raw_message::json AS j, created_at FROM event_audit_log) a
        WHERE (j->>'bench_seq')::bigint BETWEEN $first AND $last GROUP BY 1" >"$W/$name.audit" 2>&1 ||
        { log "audit query failed: $(head -n 3 "$W/$name.audit")"; rc=1; }
    log "processing lists hold $(processing_items) items; redis primary $(primary), postgresql primary ${pgh:-none}"
    python3 "$ROOT/tests/fleet/check.py" --first "$first" --last "$last" --driver-log "$W/$name.driver" \
        --audit "$W/$name.audit" --sink "$W/sink.out" --fault-ms "$t_fault" ${t_heal:+--heal-ms "$t_heal"} --dup-cap "$cap" | tee "$W/$name.verdict" || rc=1
    verdict=$(grep 'full recovery' "$W/$name.verdict" | sed 's/.*recovery: //')
    if [ "$rc" = 0 ]; then
        PASSED+=("$name")
        RESULTS+=("PASS $name: fault to full recovery ${verdict:-?}, $(grep -o 'duplicates [0-9]*' "$W/$name.verdict")")
    else
        FAILED+=("$name")
        RESULTS+=("FAIL $name")
    fi
    return "$rc"
}

# --- kill -9 of the Redis primary; the old primary rejoins as a replica afterwards
OLD_PRIMARY=
fault_redis() {
    local p h
    p=$(primary)
    for h in r1 r2 r3; do [ "$(addr "$h"):6379" = "${p%% *}:6379" ] && OLD_PRIMARY=$h; done
    [ -n "$OLD_PRIMARY" ] || return 1
    log "kill -9 of the redis primary on $OLD_PRIMARY ($p)"
    kill -9 "$(cat "$W/$OLD_PRIMARY.redis.pid")"
}
heal_redis() {
    wait_until 60 eval '[ "$(primary)" != "$(addr '"$OLD_PRIMARY"')" ]' || return 1
    log "sentinels promoted $(primary); $OLD_PRIMARY comes back as a replica"
    redis_start "$OLD_PRIMARY"
    wait_until 90 sentinels_settled || { log "sentinels did not see two replicas again"; return 1; }
}

# --- PostgreSQL primary stopped, standby promoted
fault_pg() {
    log "stopping the PostgreSQL primary (fast shutdown), promoting the standby"
    kill -INT "$(cat "$W/pg1.pg.pid")"
    wait_until 30 eval '! kill -0 $(cat "$W/pg1.pg.pid") 2>/dev/null' || return 1
    (cd / && nsx pg2 setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/pg_ctl" -D "$W/pg2" -w -t 30 promote) >/dev/null
}
heal_pg() { [ "$(pg_primary)" = pg2 ]; }

# --- kill -9 of a worker; it is started again once the drill is judged
fault_worker() {
    log "kill -9 of worker w2 (pid $(cat "$W/w2.mutt.pid"))"
    kill -9 "$(cat "$W/w2.mutt.pid")"
}
heal_worker() { :; }
restart_w2() {
    wait_until 10 eval '! kill -0 $(cat "$W/w2.mutt.pid")'
    mutt_start w2
}

# --- w2 cut off the network (its veth down on the bridge side), then back
fault_partition() {
    log "partition: w2's veth down for $PARTITION s"
    nsx sw ip link set v-w2 down
}
heal_partition() { nsx sw ip link set v-w2 up; }

CAP=$((ALERTER_CONCURRENCY + MOOG_MAX_INFLIGHT))
for d in $DRILLS; do
    case "$d" in
    redis) run_drill redis fault_redis heal_redis 0 -1 ;;
    pg) run_drill pg fault_pg heal_pg 0 "$CAP" ;;
    worker) run_drill worker fault_worker heal_worker 0 "$CAP"; restart_w2 ;;
    partition) run_drill partition fault_partition heal_partition "$PARTITION" "$CAP" ;;
    *) die "unknown drill $d" ;;
    esac
done

echo
log "==== summary"
printf 'fleet: %s\n' "${RESULTS[@]}"
# mutt stops cleanly (SIGTERM) before its logs are judged: an ASan build reports leaks at exit
for h in front w1 w2; do kill -TERM "$(cat "$W/$h.mutt.pid")" 2>/dev/null; done
for h in front w1 w2; do
    wait_until 30 eval '! kill -0 $(cat "$W/'"$h"'.mutt.pid") 2>/dev/null' || log "mutt on $h did not stop within 30 s of SIGTERM"
done
for h in front w1 w2; do
    if grep -qaE 'ERROR: (AddressSanitizer|LeakSanitizer)|LeakSanitizer: detected|runtime error:' "$W/$h.mutt.log"; then
        log "sanitizer report in the log of $h"
        FAILED+=("$h sanitizer")
    fi
done
log "${#PASSED[@]} drills passed, ${#FAILED[@]} failed${FAILED[0]:+: ${FAILED[*]}}"
[ "${#FAILED[@]}" = 0 ]
