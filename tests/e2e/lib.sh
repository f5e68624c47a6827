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
#   spawn_helper / helper_signal / stop_helper   any other background process the test needs
#                                    (see "helpers" below: abnormal deaths fail the script)
#   http METHOD URL [CURL ARGS...]   sets HTTP_STATUS, HTTP_BODY, HTTP_HEADERS (file)
#   assert_eq / assert_ne / assert_contains / assert_not_contains / assert_status / wait_until
#   t_run NAME FUNCTION ; t_summary
#   t_skip CODE DETAIL               ends the current test as skipped (CODE from tests/skips.list)
#   skip_note CODE DETAIL            a part of a test that could not run here; the test goes on
# Exit status of a script: 0 passed, 1 a test failed, 77 every test skipped (E2E_SKIP_RC).
set -u -o pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUTT_BIN=${MUTT_BIN:-$E2E_ROOT/mutt}
MUTT_SINK_BIN=${MUTT_SINK_BIN:-$E2E_ROOT/build/tests/mutt-sink}
SERVICES="$E2E_ROOT/tests/harness/services.sh"
E2E_TMP=$(mktemp -d /tmp/mutt-e2e.XXXXXX)
T_PASSED=0
T_FAILED=0
T_SKIPPED=0
E2E_SKIP_RC=77
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
    local pid rc=$? helpers_failed=0
    # A script that ends without t_summary (an early exit) still answers for its helpers; when
    # it was interrupted or timed out, only briefly (the runner's kill follows in 10 s).
    if [ ! -f "$E2E_TMP/helpers/finished" ] && ! helpers_finish "$([ "$rc" -ge 128 ] && echo 3 || echo 30)"; then
        echo "e2e: failing the script: a helper process ended abnormally (see above)" >&2
        helpers_failed=1
    fi
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
    [ "$helpers_failed" = 0 ] || exit 1 # inside the EXIT trap: the script's status becomes 1
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

# ------------------------------------------------------------------------------------ helpers
# A helper is a background process a test depends on (mutt, mutt-sink, vault-standin...). Each
# runs under a wrapper subshell that records its exit status, and lib.sh records every signal the
# test sends it (helper_signal). A helper that ends by a signal the test did not send (an abort, a
# crash) or whose log holds a sanitizer report fails the script: its log is copied to
# $MUTT_BUILD/test-logs/ (E2E_TMP is deleted at exit) and one line
#   e2e: helper NAME (pid N) FAILED: why; log kept: PATH
# names it. State lives in files under $E2E_TMP/helpers/, so every test subshell sees it.
#
#   spawn_helper NAME LOG CMD...  starts CMD (stdout+stderr appended to LOG); HELPER_PID, HELPER_DIR
#   helper_signal SIG PID         sends SIG (name or number) and records it as sent by the test
#   stop_helper PID [SECONDS]     SIGTERM, waits (30 s), checks; t_fail when the helper failed
#   helper_check PID              1 (and the report) when the helper failed, else 0
#   helpers_finish                SIGTERM to every helper still running, then checks them all
#                                 (t_summary and the exit trap call it)
E2E_SANITIZER_RE='ERROR: (AddressSanitizer|LeakSanitizer)|LeakSanitizer: detected|: runtime error: '
mkdir -p "$E2E_TMP/helpers"
: >"$E2E_TMP/helpers/index"

spawn_helper() {
    local name=$1 log=$2 dir
    shift 2
    dir=$(mktemp -d "$E2E_TMP/helpers/h.XXXXXX")
    echo "$name" >"$dir/name"
    echo "$log" >"$dir/log"
    : >"$dir/sent"
    (
        set +e # t_run's set -e would end this wrapper at a non-zero wait, before rc is written
        "$@" >>"$log" 2>&1 &
        echo $! >"$dir/pid.tmp"
        mv "$dir/pid.tmp" "$dir/pid"
        wait $!
        echo $? >"$dir/rc.tmp"
        mv "$dir/rc.tmp" "$dir/rc"
    ) </dev/null >/dev/null 2>&1 &
    wait_until 5 test -s "$dir/pid" || t_fail "$name did not start"
    HELPER_PID=$(cat "$dir/pid")
    HELPER_DIR=$dir
    echo "$HELPER_PID" >>"$E2E_TMP/pids"
    echo "$HELPER_PID $dir" >>"$E2E_TMP/helpers/index"
}

# Registry directory of a helper pid (the latest, should the pid have been reused), or nothing.
helper_dir() { awk -v p="$1" '$1 == p {d = $2} END {if (d != "") print d}' "$E2E_TMP/helpers/index"; }

helper_signal() {
    local sig=$1 pid=$2 dir num
    case "$sig" in
    [0-9]*) num=$sig ;;
    *) num=$(kill -l "${sig#SIG}") || t_fail "helper_signal: unknown signal $sig" ;;
    esac
    dir=$(helper_dir "$pid")
    [ -z "$dir" ] || echo "$num" >>"$dir/sent"
    kill "-$num" "$pid" 2>/dev/null || true
}

# Where a failed helper's log is kept: beside the runner's logs, named after the script.
helper_keep_log() { # NAME PID LOG -> prints the kept path
    local dest=${E2E_KEPT_LOGS:-}
    if [ -z "$dest" ]; then
        dest=${MUTT_BUILD:-build}
        case "$dest" in /*) ;; *) dest="$E2E_ROOT/$dest" ;; esac
        dest="$dest/test-logs"
    fi
    mkdir -p "$dest"
    dest="$dest/e2e_$(basename "$0" .sh).$1.$2.log"
    cp "$3" "$dest" 2>/dev/null || echo "(the helper's log $3 was missing)" >"$dest"
    echo "$dest"
}

# helper_check_dir DIR [EXTRA REASON]: the verdict on a helper (see helper_check). The report is
# printed once; later calls return 1 quietly.
helper_check_dir() {
    local dir=$1 why=${2:-} name log pid rc sig sent kept
    [ ! -f "$dir/failed" ] || return 1
    [ -f "$dir/rc" ] || [ -n "$why" ] || return 0
    name=$(cat "$dir/name")
    log=$(cat "$dir/log")
    pid=$(cat "$dir/pid")
    rc=$(cat "$dir/rc" 2>/dev/null || echo running)
    if [ "$rc" != running ] && [ "$rc" -gt 128 ] && ! grep -qx "$((rc - 128))" "$dir/sent"; then
        sig=$((rc - 128))
        sent=$(sort -u "$dir/sent" | while read -r n; do printf 'SIG%s ' "$(kill -l "$n")"; done)
        why="${why:+$why; }died by signal $sig (SIG$(kill -l "$sig" 2>/dev/null || echo "?")), the test sent ${sent:-none}"
        why=${why% }
    fi
    if grep -qaE "$E2E_SANITIZER_RE" "$log" 2>/dev/null; then
        why="${why:+$why; }sanitizer report in its log"
    fi
    [ -n "$why" ] || return 0
    kept=$(helper_keep_log "$name" "$pid" "$log")
    echo "e2e: helper $name (pid $pid) FAILED: $why; log kept: $kept" | tee "$dir/failed" >&2
    grep -aE -m 3 "$E2E_SANITIZER_RE|Assertion|Aborted" "$log" 2>/dev/null | sed 's/^/    /' >&2 || true
    return 1
}

helper_check() {
    local dir
    dir=$(helper_dir "$1")
    [ -n "$dir" ] || return 0
    helper_check_dir "$dir"
}

stop_helper() {
    local pid=$1 limit=${2:-30} dir
    dir=$(helper_dir "$pid")
    [ -n "$dir" ] || t_fail "stop_helper: $pid is not a helper"
    [ -f "$dir/rc" ] || helper_signal TERM "$pid"
    if ! wait_until "$limit" test -f "$dir/rc"; then
        helper_signal KILL "$pid"
        wait_until 5 test -f "$dir/rc" || true
        helper_check_dir "$dir" "did not exit within $limit s of SIGTERM (killed)" || true
    fi
    helper_check_dir "$dir" || t_fail "$(sed 's/^e2e: //' "$dir/failed")"
}

# helpers_finish [SECONDS]: SIGTERM to every helper still running, then SECONDS (30) for all of
# them together; one still running then is killed and counts as failed. Checks each (reports
# once). HELPER_FAILURES gets the report lines of failures not reported before; returns 1 when
# any helper failed, whenever that was reported.
helpers_finish() {
    local limit=${1:-30} pid dir start left failed=0 newly
    HELPER_FAILURES=()
    [ -f "$E2E_TMP/helpers/index" ] || return 0
    touch "$E2E_TMP/helpers/finished"
    while read -r pid dir; do
        [ -f "$dir/rc" ] || helper_signal TERM "$pid"
    done <"$E2E_TMP/helpers/index"
    start=$SECONDS
    while :; do
        left=0
        while read -r pid dir; do [ -f "$dir/rc" ] || left=$((left + 1)); done <"$E2E_TMP/helpers/index"
        [ "$left" -gt 0 ] && [ $((SECONDS - start)) -lt "$limit" ] || break
        sleep 0.05
    done
    while read -r pid dir; do
        newly=1
        [ ! -f "$dir/failed" ] || newly=0
        if [ ! -f "$dir/rc" ]; then
            helper_signal KILL "$pid"
            wait_until 5 test -f "$dir/rc" || true
            helper_check_dir "$dir" "did not exit within $limit s of SIGTERM (killed)" || true
        fi
        if ! helper_check_dir "$dir"; then
            failed=1
            [ "$newly" = 0 ] || HELPER_FAILURES+=("$(sed 's/^e2e: //' "$dir/failed")")
        fi
    done <"$E2E_TMP/helpers/index"
    return "$failed"
}

# D60: every skip names a reason code of tests/skips.list; run-tests.sh lists and checks them.
skip_note() {
    local code=$1
    shift
    echo "skip-reason: $code: $*"
}
t_skip() {
    skip_note "$@"
    exit "$E2E_SKIP_RC"
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
        echo "ARCHIVE_DIR=$E2E_TMP/archive"
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
    SINK_LOG="$E2E_TMP/sink.$SINK_PORT.$RANDOM.log"
    # The sink is a test tool: its own leaks at exit are not what an ASan run is about (its
    # other sanitizer reports are: they fail the script, see helpers).
    spawn_helper mutt-sink "$SINK_LOG" env ASAN_OPTIONS=detect_leaks=0 \
        "$MUTT_SINK_BIN" --port "$SINK_PORT" --out "$SINK_OUT" "$@"
    SINK_PID=$HELPER_PID
    wait_until 10 curl -sf -m 1 "http://127.0.0.1:$SINK_PORT/health" ||
        { tail -n 20 "$SINK_LOG" >&2; helper_check "$SINK_PID" || true; t_fail "mutt-sink did not answer on $SINK_PORT"; }
}

# SIGTERM, wait until it has exited (its port is free again), fail the test if it died abnormally.
stop_sink() {
    [ -n "${SINK_PID:-}" ] || return 0
    local pid=$SINK_PID
    SINK_PID=
    stop_helper "$pid" 10
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
    MUTT_PORT=$(mutt_port "$conf" "$roles")
    spawn_helper mutt "$MUTT_LOG" "$MUTT_BIN" --config "$conf" --roles="$roles" "$@"
    MUTT_PID=$HELPER_PID
    MUTT_RC_FILE="$HELPER_DIR/rc"
    local i
    for i in $(seq 1 300); do
        if [ -f "$MUTT_RC_FILE" ]; then
            tail -n 30 "$MUTT_LOG" >&2
            helper_check "$MUTT_PID" || true
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
    helper_signal TERM "$MUTT_PID"
    if ! wait_until 30 test -f "$MUTT_RC_FILE"; then
        helper_signal KILL "$MUTT_PID"
        tail -n 30 "$MUTT_LOG" >&2
        t_fail "mutt did not exit within 30 s of SIGTERM"
    fi
    rc=$(cat "$MUTT_RC_FILE")
    local pid=$MUTT_PID
    MUTT_PID=
    helper_check "$pid" || { tail -n 30 "$MUTT_LOG" >&2; t_fail "$(sed 's/^e2e: //' "$(helper_dir "$pid")/failed")"; }
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
    elif [ $rc -eq "$E2E_SKIP_RC" ]; then
        echo "skip $name"
        T_SKIPPED=$((T_SKIPPED + 1))
    else
        echo "FAIL $name"
        T_FAILED=$((T_FAILED + 1))
        T_FAILED_NAMES+=("$name")
    fi
}

# Prints the closing line and exits 1 when a test failed.
t_summary() {
    local n f
    # Helpers still running are stopped and every helper is judged before the closing line: one
    # that died abnormally (or left a sanitizer report) fails the script even if its tests passed.
    helpers_finish || true
    for n in ${HELPER_FAILURES[@]+"${HELPER_FAILURES[@]}"}; do
        T_FAILED=$((T_FAILED + 1))
        T_FAILED_NAMES+=("$n")
    done
    # A failed test's evidence: the end of every mutt log of this script.
    if [ "$T_FAILED" -gt 0 ]; then
        for f in "$E2E_TMP"/mutt.*.log; do
            [ -f "$f" ] || continue
            echo "---- last lines of $(basename "$f") ----"
            tail -n 40 "$f"
        done
    fi
    for n in ${T_FAILED_NAMES[@]+"${T_FAILED_NAMES[@]}"}; do echo "failed: $n"; done
    echo "$T_PASSED passed, $T_FAILED failed, $T_SKIPPED skipped"
    [ "$T_FAILED" -eq 0 ] || exit 1
    [ "$T_PASSED" -gt 0 ] && exit 0
    [ "$T_SKIPPED" -gt 0 ] && exit "$E2E_SKIP_RC"
    exit 1
}
