# Helpers for the shell end-to-end tests (tests/e2e/test_*.sh): they drive the built binary
# ($MUTT_BIN) against the harness's real Redis/PostgreSQL (MUTT_TEST_* from services.sh) and a
# webhook sink ($MUTT_SINK_BIN). Source it, write test functions, run them with `t_run`, end with
# `t_summary`. Each test runs in a subshell with `set -e`, so the first failing command or assert
# ends that test only; processes started by any test are tracked in files and stopped at exit.
#
#   e2e_config FILE [KEY=VALUE...]   config for the harness services; sets INGEST_PORT WEB_PORT
#                                    HEALTH_PORT SINK_PORT (free ports) and the API keys
#   start_sink [ARGS...]             mutt-sink on $SINK_PORT (sets SINK_URL); stop_sink
#   start_mutt CONF [ROLES]          runs mutt in the background, waits until its stages run
#   stop_mutt                        SIGTERM, waits, asserts exit status 0
#   http METHOD URL [CURL ARGS...]   sets HTTP_STATUS, HTTP_BODY, HTTP_HEADERS (file)
#   assert_eq / assert_ne / assert_contains / assert_not_contains / assert_status / wait_until
#   t_run NAME FUNCTION ; t_summary
set -u -o pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUTT_BIN=${MUTT_BIN:-$E2E_ROOT/mutt}
MUTT_SINK_BIN=${MUTT_SINK_BIN:-$E2E_ROOT/build/tests/mutt-sink}
SERVICES="$E2E_ROOT/tests/harness/services.sh"
E2E_TMP=$(mktemp -d /tmp/mutt-e2e.XXXXXX)
T_PASSED=0
T_FAILED=0
T_FAILED_NAMES=()
: >"$E2E_TMP/pids"
: >"$E2E_TMP/ports"

e2e_log() { echo "e2e: $*" >&2; }

# Ends the current test (the subshell of t_run) with a message.
t_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------- processes
e2e_cleanup() {
    local pid
    while read -r pid; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done <"$E2E_TMP/pids"
    sleep 0.2
    while read -r pid; do
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    done <"$E2E_TMP/pids"
    if [ "${KEEP_STATE:-0}" = 1 ]; then
        e2e_log "kept $E2E_TMP"
    else
        rm -rf "$E2E_TMP"
    fi
}
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port, never one already handed out by this script.
free_port() {
    local p i
    for i in $(seq 1 200); do
        # below the kernel's ephemeral range (32768+), where outgoing connections could take it
        p=$((10000 + (RANDOM * 32768 + RANDOM) % 22000))
        grep -qx "$p" "$E2E_TMP/ports" && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        echo "$p" >>"$E2E_TMP/ports"
        echo "$p"
        return 0
    done
    t_fail "no free port"
}

# True while pid runs (a zombie counts as gone).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null)" != Z ]
}

# wait_until SECONDS CMD...: polls CMD every 50 ms until it succeeds; fails after SECONDS.
wait_until() {
    local limit=$1 start
    shift
    start=$(date +%s%N)
    until "$@" >/dev/null 2>&1; do
        [ $(( ($(date +%s%N) - start) / 1000000 )) -lt $((limit * 1000)) ] || return 1
        sleep 0.05
    done
}

# ---- waiting on something observable (h12 tests block: keep these together) -----------------
# Tests never sleep to let async work happen: they wait (bounded) for its effect: a log line,
# a Redis key, a metric, a sink line count. A timeout fails the test and says what never came.
# wait_for SECONDS WHAT CMD...: wait_until, then t_fail "timed out after SECONDS s: WHAT".
wait_for() {
    local limit=$1 what=$2
    shift 2
    wait_until "$limit" "$@" || t_fail "timed out after $limit s waiting for: $what"
}
# lines_ge FILE N: FILE has at least N lines (a sink's output, a traffic log, a mutt log).
lines_ge() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
# ---- end of the h12 tests block ------------------------------------------------------------------

# ------------------------------------------------------------------------------------------ http
# http METHOD URL [CURL ARGS...]: HTTP_STATUS ("000" when nothing answered), HTTP_BODY, and
# HTTP_HEADERS (the path of a file holding the response headers).
http() {
    local method=$1 url=$2
    shift 2
    HTTP_HEADERS="$E2E_TMP/last.headers"
    HTTP_STATUS=$(curl -sS -m "${HTTP_TIMEOUT:-10}" -X "$method" -o "$E2E_TMP/last.body" -D "$HTTP_HEADERS" \
        -w '%{http_code}' "$@" "$url" 2>"$E2E_TMP/last.curlerr") || true
    [ -n "$HTTP_STATUS" ] || HTTP_STATUS=000
    HTTP_BODY=$(cat "$E2E_TMP/last.body" 2>/dev/null || true)
}

http_status_is() { # for wait_until: http_status_is CODE METHOD URL [ARGS...]
    local want=$1
    shift
    http "$@"
    [ "$HTTP_STATUS" = "$want" ]
}

# ------------------------------------------------------------------------------------- asserts
assert_eq() { [ "$1" = "$2" ] || t_fail "${3:-values differ}: expected [$1], got [$2]"; }
assert_ne() { [ "$1" != "$2" ] || t_fail "${3:-values equal}: both [$1]"; }
assert_contains() { [[ "$1" == *"$2"* ]] || t_fail "${3:-missing text}: [$2] not in [${1:0:600}]"; }
assert_not_contains() { [[ "$1" != *"$2"* ]] || t_fail "${3:-unexpected text}: [$2] in [${1:0:600}]"; }
assert_status() { [ "$HTTP_STATUS" = "$1" ] || t_fail "${2:-HTTP status}: expected $1, got $HTTP_STATUS; body: ${HTTP_BODY:0:600}"; }

# --------------------------------------------------------------------------------------- config
# e2e_config FILE [KEY=VALUE...]: a config pointing at the harness services, on fresh free ports.
# Later KEY=VALUE arguments override earlier lines (the file is read top to bottom).
e2e_config() {
    local file=$1
    shift
    [ -n "${MUTT_TEST_REDIS_PORT:-}" ] || t_fail "MUTT_TEST_* not set: run through tests/harness/run-tests.sh"
    : "${INGEST_PORT:=$(free_port)}" "${WEB_PORT:=$(free_port)}" "${HEALTH_PORT:=$(free_port)}" "${SINK_PORT:=$(free_port)}"
    INGEST_KEY=${INGEST_KEY:-e2e-ingest-key-0123456789abcdef0123456789}
    WEB_KEY=${WEB_KEY:-e2e-webui-key-0123456789abcdef01234567890}
    SINK_URL="http://127.0.0.1:$SINK_PORT/events"
    {
        echo "# written by tests/e2e/lib.sh"
        echo "POD_NAME=e2e-$$-$RANDOM"
        echo "BIND_ADDR=127.0.0.1"
        echo "INGESTOR_PORT=$INGEST_PORT"
        echo "WEBUI_PORT=$WEB_PORT"
        echo "HEALTH_PORT=$HEALTH_PORT"
        echo "REDIS_HOST=$MUTT_TEST_REDIS_HOST"
        echo "REDIS_PORT=$MUTT_TEST_REDIS_PORT"
        echo "DB_HOST=$MUTT_TEST_PG_HOST"
        echo "DB_PORT=$MUTT_TEST_PG_PORT"
        echo "DB_NAME=$MUTT_TEST_PG_DB"
        echo "DB_USER=$MUTT_TEST_PG_USER"
        echo "DB_PASS_CURRENT=$MUTT_TEST_PG_PASS"
        echo "INGEST_API_KEY=$INGEST_KEY"
        echo "WEBUI_API_KEY=$WEB_KEY"
        echo "MOOG_WEBHOOK_URL=$SINK_URL"
        echo "MOOG_API_KEY=e2e-moog-key"
        echo "MIGRATE_ON_START=true"
        echo "LOG_LEVEL=INFO"
        echo "HEARTBEAT_INTERVAL=1"
        local kv
        for kv in "$@"; do echo "$kv"; done
    } >"$file"
}

# Value of KEY in a config file (last one wins), or $3.
conf_get() {
    local v
    v=$(grep -E "^$2=" "$1" | tail -n 1 | cut -d= -f2-)
    echo "${v:-$3}"
}

# ----------------------------------------------------------------------------------------- sink
start_sink() {
    [ -x "$MUTT_SINK_BIN" ] || t_fail "mutt-sink not built: $MUTT_SINK_BIN"
    : "${SINK_PORT:=$(free_port)}"
    SINK_OUT="$E2E_TMP/sink.$SINK_PORT.out"
    # The sink is a test tool: its own leaks at exit are not what an ASan run is about.
    ASAN_OPTIONS=detect_leaks=0 "$MUTT_SINK_BIN" --port "$SINK_PORT" --out "$SINK_OUT" "$@" \
        >>"$E2E_TMP/sink.log" 2>&1 &
    SINK_PID=$!
    echo "$SINK_PID" >>"$E2E_TMP/pids"
    wait_until 10 curl -sf -m 1 "http://127.0.0.1:$SINK_PORT/health" ||
        { tail -n 20 "$E2E_TMP/sink.log" >&2; t_fail "mutt-sink did not answer on $SINK_PORT"; }
}

stop_sink() {
    [ -n "${SINK_PID:-}" ] || return 0
    kill -TERM "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=
}

sink_count() { curl -sf -m 2 "http://127.0.0.1:$SINK_PORT/count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p'; }

# ----------------------------------------------------------------------------------------- mutt
# Port whose /health answers for the given roles (CONTRACT §1).
mutt_port() {
    local conf=$1 roles=$2
    case ",$roles," in
    *,all,* | *,ingest,*) conf_get "$conf" INGESTOR_PORT 8080 ;;
    *,web,*) conf_get "$conf" WEBUI_PORT 8090 ;;
    *) conf_get "$conf" HEALTH_PORT 8081 ;;
    esac
}

# start_mutt CONF [ROLES] [EXTRA ARGS...]: MUTT_PID, MUTT_LOG, MUTT_PORT. A wrapper subshell waits
# for mutt and writes its exit status to a file, so stop_mutt works from any test's subshell.
start_mutt() {
    local conf=$1 roles=${2:-all}
    shift $(($# >= 2 ? 2 : 1))
    [ -x "$MUTT_BIN" ] || t_fail "mutt binary not found: $MUTT_BIN (run make)"
    MUTT_LOG="$E2E_TMP/mutt.$RANDOM.log"
    MUTT_RC_FILE="$MUTT_LOG.rc"
    MUTT_PORT=$(mutt_port "$conf" "$roles")
    (
        "$MUTT_BIN" --config "$conf" --roles="$roles" "$@" >>"$MUTT_LOG" 2>&1 &
        echo $! >"$MUTT_LOG.pid"
        wait $!
        echo $? >"$MUTT_RC_FILE.tmp"
        mv "$MUTT_RC_FILE.tmp" "$MUTT_RC_FILE"
    ) </dev/null >/dev/null 2>&1 &
    wait_until 5 test -s "$MUTT_LOG.pid" || t_fail "mutt did not start"
    MUTT_PID=$(cat "$MUTT_LOG.pid")
    echo "$MUTT_PID" >>"$E2E_TMP/pids"
    local i
    for i in $(seq 1 300); do
        if [ -f "$MUTT_RC_FILE" ]; then
            tail -n 30 "$MUTT_LOG" >&2
            t_fail "mutt exited with status $(cat "$MUTT_RC_FILE") during start-up"
        fi
        # live = the loop runs; "running as pod" = the pod identity is ours and the stages
        # have registered their routes (before that, API paths answer 503 "starting")
        if http_status_is 200 GET "http://127.0.0.1:$MUTT_PORT/health/live" &&
            grep -q "running as pod" "$MUTT_LOG"; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$MUTT_LOG" >&2
    t_fail "mutt: not running (live + stages started) on port $MUTT_PORT within 30 s"
}

# stop_mutt [EXPECTED_STATUS]: SIGTERM, wait up to 30 s, assert the exit status (default 0).
stop_mutt() {
    local want=${1:-0} rc
    [ -n "${MUTT_PID:-}" ] || t_fail "stop_mutt: mutt is not running"
    kill -TERM "$MUTT_PID" 2>/dev/null || true
    if ! wait_until 30 test -f "$MUTT_RC_FILE"; then
        kill -KILL "$MUTT_PID" 2>/dev/null || true
        tail -n 30 "$MUTT_LOG" >&2
        t_fail "mutt did not exit within 30 s of SIGTERM"
    fi
    rc=$(cat "$MUTT_RC_FILE")
    MUTT_PID=
    [ "$rc" = "$want" ] || { tail -n 30 "$MUTT_LOG" >&2; t_fail "mutt exited with $rc after SIGTERM, expected $want"; }
}

# ---------------------------------------------------------------------------------------- runner
# t_run NAME FUNCTION: runs FUNCTION in a subshell with set -e; counts the outcome.
t_run() {
    local name=$1 fn=$2 rc
    echo "---- $name"
    (
        set -e
        "$fn"
    )
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "ok   $name"
        T_PASSED=$((T_PASSED + 1))
    else
        echo "FAIL $name"
        T_FAILED=$((T_FAILED + 1))
        T_FAILED_NAMES+=("$name")
    fi
}

# Prints the closing line and exits 1 when a test failed.
t_summary() {
    local n f
    # A failed test's evidence: the end of every mutt log of this script.
    if [ "$T_FAILED" -gt 0 ]; then
        for f in "$E2E_TMP"/mutt.*.log; do
            [ -f "$f" ] || continue
            echo "---- last lines of $(basename "$f") ----"
            tail -n 40 "$f"
        done
    fi
    for n in ${T_FAILED_NAMES[@]+"${T_FAILED_NAMES[@]}"}; do echo "failed: $n"; done
    echo "$T_PASSED passed, $T_FAILED failed"
    [ "$T_FAILED" -eq 0 ] && [ "$T_PASSED" -gt 0 ] && exit 0
    exit 1
}
