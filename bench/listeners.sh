#!/usr/bin/env bash
# Native listener benchmark (`make bench-listeners`, issue 15; not a timed test). One run, side by
# side, against its own redis-server (appendonly yes, appendfsync everysec, as D2 documents) and
# one `mutt --roles=ingest` with SYSLOG_UDP_PORT, SYSLOG_TCP_PORT and SNMP_TRAP_PORT set:
#   1. syslog over UDP into mutt:ingest_queue at offered rates UDP_RATES (bench/listen_sender.c,
#      ~250-byte RFC 5424 datagrams, DURATION s each): queued, lost, kernel drops of the socket
#      (/proc/net/udp, D61) and the listener's own drops -> the loss curve;
#   2. the same datagrams through the rsyslog chain (imudp -> conf/rsyslog/60-mutt-omprog.conf as
#      shipped -> `mutt relay` -> POST /api/v2/ingest of the same mutt) at CHAIN_RATES;
#   3. syslog over TCP, octet-counted, TCP_CONNS senders, TCP_TOTAL messages: msgs/s, loss;
#   4. SNMP v2c traps (the datagram of tests/fuzz/corpus/fuzz_snmp_trap/v2c_trap) natively at
#      TRAP_RATES, and TRAP_CHAIN_N traps through snmptrapd + conf/snmptrapd/mutt-traphandle;
# then the ratios native / chain. Throughput = events queued / (time of the last queue growth -
# start of sending); a step waits until the queue has not grown for SETTLE s (at most MAX_WAIT).
# The report also goes to bench/results/listeners-<UTC>.txt.
# Env: MUTT_BIN, SENDER_BIN, DURATION (5), UDP_RATES, CHAIN_RATES, TCP_CONNS (10), TCP_TOTAL,
#      TRAP_RATES, TRAP_CHAIN_N, TRAP_CHAIN_RATE, SETTLE (3), MAX_WAIT (180), KEEP=1 keeps the work dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
SENDER_BIN=${SENDER_BIN:-$ROOT/build/bench/listen_sender}
DURATION=${DURATION:-5}
UDP_RATES=${UDP_RATES:-25000 50000 75000 100000 150000 200000}
CHAIN_RATES=${CHAIN_RATES:-5000 10000 20000 40000}
TCP_CONNS=${TCP_CONNS:-10}
TCP_TOTAL=${TCP_TOTAL:-500000}
TRAP_RATES=${TRAP_RATES:-10000 20000 40000}
TRAP_CHAIN_N=${TRAP_CHAIN_N:-200}
TRAP_CHAIN_RATE=${TRAP_CHAIN_RATE:-50}
SETTLE=${SETTLE:-3}
MAX_WAIT=${MAX_WAIT:-180}
KEY=bench-ingest-key-0123456789abcdef0123456789
QUEUE=mutt:ingest_queue
TRAP_FILE=$ROOT/tests/fuzz/corpus/fuzz_snmp_trap/v2c_trap
# D61: caps that would shape the result, raised and printed
CAPS="MAX_INGEST_QUEUE_SIZE=1000000000 MAX_INGEST_QUEUE_BYTES=17179869184 INGEST_MAX_RATE=1000000000"

for b in "$MUTT_BIN" "$SENDER_BIN"; do [ -x "$b" ] || { echo "bench: $b not built" >&2; exit 1; }; done
command -v redis-server >/dev/null || { echo "bench: redis-server missing (make deps)" >&2; exit 1; }
RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
SNMPTRAPD=$(command -v snmptrapd || echo /usr/sbin/snmptrapd)

WORK=$(mktemp -d /tmp/mutt-bench-listen.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/listeners-$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$RESULT") 2>&1
PIDS=()
cleanup() {
    local p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
    for p in ${PIDS[@]+"${PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
    [ -s "$WORK/redis.pid" ] && kill -TERM "$(cat "$WORK/redis.pid")" 2>/dev/null || true
    sleep 0.3
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
    local p
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
REDIS_PORT=$(free_port) INGEST_PORT=$(free_port) UDP_PORT=$(free_port) TCP_PORT=$(free_port)
TRAP_PORT=$(free_port) RSYSLOG_PORT=$(free_port) SNMPTRAPD_PORT=$(free_port)
rc() { redis-cli -p "$REDIS_PORT" "$@"; }
llen() { rc llen "$QUEUE"; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$WORK" --pidfile "$WORK/redis.pid" \
    --logfile "$WORK/redis.log" --save '' --appendonly yes --appendfsync everysec >/dev/null
for _ in $(seq 1 100); do [ -s "$WORK/redis.pid" ] && rc ping >/dev/null 2>&1 && break; sleep 0.05; done

{
    echo "POD_NAME=bench-listen-$$"
    echo "BIND_ADDR=127.0.0.1"
    echo "INGESTOR_PORT=$INGEST_PORT"
    echo "REDIS_HOST=127.0.0.1"
    echo "REDIS_PORT=$REDIS_PORT"
    echo "INGEST_API_KEY=$KEY"
    echo "LOG_LEVEL=WARNING"
    echo "SYSLOG_UDP_PORT=$UDP_PORT"
    echo "SYSLOG_TCP_PORT=$TCP_PORT"
    echo "SNMP_TRAP_PORT=$TRAP_PORT"
    tr ' ' '\n' <<<"$CAPS"
} >"$WORK/mutt.conf"
"$MUTT_BIN" --config "$WORK/mutt.conf" --roles=ingest >"$WORK/mutt.log" 2>&1 &
MUTT_PID=$!
PIDS+=("$MUTT_PID")
for _ in $(seq 1 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$INGEST_PORT/health/ready" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$INGEST_PORT/health/ready" || { tail -n 20 "$WORK/mutt.log" >&2; exit 1; }

metric() { # metric 'name{labels}'
    curl -s "http://127.0.0.1:$INGEST_PORT/metrics" | awk -v k="$1" '$1 == k {printf "%d", $2; f=1} END {if (!f) print 0}'
}
lm() { metric "mutt_listener_messages_total{listener=\"$1\",result=\"$2\"}"; }
# kernel drops of the UDP socket bound to PORT (/proc/net/udp: local address hex, drops last)
udp_drops() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'NR > 1 && substr($2, length($2) - 4) == p {d += $NF} END {print d + 0}' /proc/net/udp
}
# settle START: waits until the queue has not grown for SETTLE s; sets QUEUED and ELAPSED (s from
# START, a date +%s.%N, to the last growth)
settle() {
    local start=$1 last n last_t now
    last=-1 last_t=$(date +%s.%N)
    while :; do
        n=$(llen)
        now=$(date +%s.%N)
        if [ "$n" != "$last" ]; then
            last=$n last_t=$now
        elif awk -v a="$now" -v b="$last_t" -v s="$SETTLE" 'BEGIN {exit !(a - b >= s)}'; then
            break
        fi
        awk -v a="$now" -v b="$start" -v m="$MAX_WAIT" 'BEGIN {exit !(a - b >= m)}' && break
        sleep 0.2
    done
    QUEUED=$last
    ELAPSED=$(awk -v a="$last_t" -v b="$start" 'BEGIN {printf "%.2f", a - b}')
}
reset_queue() { rc del "$QUEUE" "$QUEUE:bytes" >/dev/null; }
sent_of() { awk '/^sent/ {print $2}' "$1"; }
rate_of() { awk -v q="$1" -v e="$2" 'BEGIN {printf "%d", (e > 0 ? q / e : 0)}'; }

echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); $("$MUTT_BIN" --version 2>&1 | head -n 1)"
echo "machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "redis $(redis-server --version | awk '{print $3}') appendfsync everysec; rsyslogd $("$RSYSLOGD" -v 2>/dev/null | head -n 1 | awk '{print $2}' | tr -d ,); net.core.rmem_max=$(cat /proc/sys/net/core/rmem_max)"
echo "caps raised (D61): $CAPS"
echo

# ---- 1. syslog UDP, native -------------------------------------------------------------------
udp_step() { # udp_step LABEL PORT RATE [PAYLOAD] -> one table row; sets STEP_RATE STEP_LOST
    local label=$1 port=$2 rate=$3 payload=${4:-} k0 k1 start sent lost
    reset_queue
    k0=$(udp_drops "$port")
    start=$(date +%s.%N)
    "$SENDER_BIN" udp "$port" "$rate" "$DURATION" $payload >"$WORK/sender.out"
    settle "$start"
    k1=$(udp_drops "$port")
    sent=$(sent_of "$WORK/sender.out")
    lost=$((sent - QUEUED))
    STEP_RATE=$(rate_of "$QUEUED" "$ELAPSED")
    STEP_LOST=$lost
    printf '%-22s %9d %9d %9d %8d %7.2f%% %9d %10d\n' "$label" "$rate" "$sent" "$QUEUED" "$lost" \
        "$(awk -v l="$lost" -v s="$sent" 'BEGIN {print (s ? 100 * l / s : 0)}')" $((k1 - k0)) "$STEP_RATE"
}
hdr() { printf '%-22s %9s %9s %9s %8s %8s %9s %10s\n' "path" "offered/s" "sent" "queued" "lost" "lost%" "kern.drop" "queued/s"; }

echo "== 1. syslog over UDP, native listener (DURATION=${DURATION}s per rate)"
hdr
NATIVE_UDP_ZERO=0 NATIVE_UDP_MAX=0
for r in $UDP_RATES; do
    d0=$(lm syslog_udp dropped)
    udp_step "native udp" "$UDP_PORT" "$r"
    echo "    listener drops (mutt_listener_messages_total{syslog_udp,dropped}): $(($(lm syslog_udp dropped) - d0))"
    [ "$STEP_LOST" -eq 0 ] && [ "$STEP_RATE" -gt "$NATIVE_UDP_ZERO" ] && NATIVE_UDP_ZERO=$STEP_RATE
    [ "$STEP_RATE" -gt "$NATIVE_UDP_MAX" ] && NATIVE_UDP_MAX=$STEP_RATE
done
echo

# ---- 2. syslog UDP through rsyslog + omprog + mutt relay --------------------------------------
CHAIN_UDP_ZERO=0 CHAIN_UDP_MAX=0
if [ -x "$RSYSLOGD" ]; then
    mkdir -p "$WORK/rsyslog"
    {
        echo "global(workDirectory=\"$WORK/rsyslog\")"
        echo "module(load=\"imudp\")"
        echo "input(type=\"imudp\" address=\"127.0.0.1\" port=\"$RSYSLOG_PORT\")"
        sed -e "s|/usr/local/bin/mutt --config /etc/mutt/mutt.conf relay|$MUTT_BIN --config $WORK/mutt.conf relay|" \
            -e "s|/var/log/rsyslog-mutt-relay.log|$WORK/relay.log|" "$ROOT/conf/rsyslog/60-mutt-omprog.conf"
    } >"$WORK/rsyslog.conf"
    grep -q "$WORK/mutt.conf relay" "$WORK/rsyslog.conf" || { echo "bench: could not point the omprog config at mutt" >&2; exit 1; }
    "$RSYSLOGD" -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslog.pid" >"$WORK/rsyslog.out" 2>&1 &
    PIDS+=($!)
    sleep 1
    echo "== 2. the same datagrams through rsyslog imudp -> 60-mutt-omprog.conf -> mutt relay -> POST /api/v2/ingest"
    hdr
    for r in $CHAIN_RATES; do
        udp_step "rsyslog chain" "$RSYSLOG_PORT" "$r"
        [ "$STEP_LOST" -eq 0 ] && [ "$STEP_RATE" -gt "$CHAIN_UDP_ZERO" ] && CHAIN_UDP_ZERO=$STEP_RATE
        [ "$STEP_RATE" -gt "$CHAIN_UDP_MAX" ] && CHAIN_UDP_MAX=$STEP_RATE
    done
else
    echo "== 2. rsyslogd not installed: chain not measured"
fi
echo

# ---- 3. syslog TCP, octet-counted, TCP_CONNS senders ------------------------------------------
echo "== 3. syslog over TCP, octet-counted, $TCP_CONNS connections, $TCP_TOTAL messages"
reset_queue
start=$(date +%s.%N)
"$SENDER_BIN" tcp "$TCP_PORT" "$TCP_CONNS" "$TCP_TOTAL" >"$WORK/sender.out"
settle "$start"
TCP_RATE=$(rate_of "$QUEUED" "$ELAPSED")
echo "sender: $(cat "$WORK/sender.out"); queued $QUEUED in ${ELAPSED}s = $TCP_RATE msgs/s; lost $((TCP_TOTAL - QUEUED))"
echo

# ---- 4. SNMP v2c traps --------------------------------------------------------------------------
echo "== 4. SNMP v2c traps ($(stat -c %s "$TRAP_FILE")-byte datagram), native listener"
hdr
NATIVE_TRAP_MAX=0 NATIVE_TRAP_ZERO=0
for r in $TRAP_RATES; do
    udp_step "native snmp" "$TRAP_PORT" "$r" "$TRAP_FILE"
    [ "$STEP_LOST" -eq 0 ] && [ "$STEP_RATE" -gt "$NATIVE_TRAP_ZERO" ] && NATIVE_TRAP_ZERO=$STEP_RATE
    [ "$STEP_RATE" -gt "$NATIVE_TRAP_MAX" ] && NATIVE_TRAP_MAX=$STEP_RATE
done
CHAIN_TRAP=0
if [ -x "$SNMPTRAPD" ]; then
    sed -e "s|^snmpTrapdAddr .*|snmpTrapdAddr udp:127.0.0.1:$SNMPTRAPD_PORT|" \
        -e "s|/usr/local/libexec/mutt/mutt-traphandle /etc/mutt/traphandle.conf|$ROOT/conf/snmptrapd/mutt-traphandle /nonexistent|" \
        "$ROOT/conf/snmptrapd/snmptrapd.conf" >"$WORK/snmptrapd.conf"
    MUTT_INGEST_URL="http://127.0.0.1:$INGEST_PORT/api/v2/ingest" MUTT_INGEST_API_KEY=$KEY \
        "$SNMPTRAPD" -f -C -c "$WORK/snmptrapd.conf" -Lf "$WORK/snmptrapd.log" -p "$WORK/snmptrapd.pid" &
    PIDS+=($!)
    sleep 1
    echo "-- $TRAP_CHAIN_N traps at $TRAP_CHAIN_RATE/s through snmptrapd + conf/snmptrapd/mutt-traphandle (one fork of sh + curl per trap)"
    hdr
    DURATION_SAVED=$DURATION
    DURATION=$(awk -v n="$TRAP_CHAIN_N" -v r="$TRAP_CHAIN_RATE" 'BEGIN {printf "%.3f", n / r}')
    udp_step "snmptrapd chain" "$SNMPTRAPD_PORT" "$TRAP_CHAIN_RATE" "$TRAP_FILE"
    DURATION=$DURATION_SAVED
    CHAIN_TRAP=$STEP_RATE
else
    echo "-- snmptrapd not installed: chain not measured"
fi
echo

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1fx", a / b; else print "n/a"}'; }
echo "== summary"
echo "syslog UDP native: best zero-loss $NATIVE_UDP_ZERO msgs/s, best queued $NATIVE_UDP_MAX msgs/s"
echo "syslog UDP rsyslog chain: best zero-loss $CHAIN_UDP_ZERO msgs/s, best queued $CHAIN_UDP_MAX msgs/s"
echo "ratio native/chain (best queued): $(ratio "$NATIVE_UDP_MAX" "$CHAIN_UDP_MAX"); (best zero-loss): $(ratio "$NATIVE_UDP_ZERO" "$CHAIN_UDP_ZERO")"
echo "syslog TCP octet-counted, $TCP_CONNS senders: $TCP_RATE msgs/s"
echo "traps native: best zero-loss $NATIVE_TRAP_ZERO/s, best queued $NATIVE_TRAP_MAX/s; snmptrapd chain: $CHAIN_TRAP/s; ratio $(ratio "$NATIVE_TRAP_MAX" "$CHAIN_TRAP")"
echo "mutt CPU: $(awk '{printf "%.1f s user+sys", ($14 + $15) / 100}' "/proc/$MUTT_PID/stat"); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
