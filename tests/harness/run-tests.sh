#!/usr/bin/env bash
# Runs every test that `make tests-build` produced (it builds nothing itself):
#   1. unit binaries        $MUTT_BUILD/tests/unit/test_*         (no services)
#      fuzz corpus replays  $MUTT_BUILD/tests/fuzz/fuzz_* tests/fuzz/corpus/fuzz_*  (no services)
#   2. integration binaries $MUTT_BUILD/tests/integration/test_*  (harness services, env sourced)
#   3. e2e scripts          tests/e2e/test_*.sh  (MUTT_BIN, MUTT_SINK_BIN, harness services)
# Each runs from the repo root, with 2>&1, under `timeout`. Redis is flushed and the test database
# recreated before every integration binary and e2e script, so they cannot see each other's data.
# Ends with every runner's summary lines again, every skip with its reason, and a final
# `N passed, N failed, N skipped` (counting binaries/scripts); exits 1 if any failed.
#
# Skips (CONTRACT D60): a test skips only with a reason code of tests/skips.list, printed as
# "skip-reason: CODE: detail" (cmocka MUTT_SKIP, e2e t_skip/skip_note; a script that skips as a
# whole exits 77). A runner FAILS when one of its tests skipped without a reason, with a code not
# in the list, or with a "harness" code while this run has the harness services up. A cmocka binary
# whose tests all skipped, or a script exiting 77, counts as SKIP.
#
#   run-tests.sh [--unit-only] [NAME...]   NAME = substring of a test name (e.g. redis, e2e/smoke)
# Environment: MUTT_BUILD (build), MUTT_BIN (<root>/mutt), MUTT_SINK_BIN, MUTT_TEST_TIMEOUT (300 s),
# KEEP_STATE=1 (keep the services' state dir), MUTT_TEST_STATE (reuse services already started).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SERVICES="$ROOT/tests/harness/services.sh"

UNIT_ONLY=0
FILTERS=()
for a in "$@"; do
    case "$a" in
    --unit-only) UNIT_ONLY=1 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) FILTERS+=("$a") ;;
    esac
done

BUILD=${MUTT_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export MUTT_BIN=${MUTT_BIN:-$ROOT/mutt}
export MUTT_SINK_BIN=${MUTT_SINK_BIN:-$BUILD/tests/mutt-sink}
TIMEOUT=${MUTT_TEST_TIMEOUT:-300}
# Harmless for binaries built without sanitizers; decisive for `make test-asan`.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/harness/lsan.supp:print_suppressions=0}
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"

PASSED=0
FAILED=0
SKIPPED=0
HARNESS_UP=0          # 1 once start_services has the services up
SKIPS_LIST="$ROOT/tests/skips.list"
declare -a SKIP_LINES=()   # "name: CODE: detail" of every skip, for the summary
declare -A SKIP_CLASS=()   # code -> class, from tests/skips.list
while read -r code class _; do
    case "$code" in '' | \#*) continue ;; esac
    SKIP_CLASS[$code]=$class
done <"$SKIPS_LIST"
declare -a RESULTS=()   # one "STATUS name" per runner
declare -A SUMMARY=()   # name -> summary lines of its output
OWN_SERVICES=0

cleanup() {
    if [ "$OWN_SERVICES" = 1 ] && [ -n "${MUTT_TEST_STATE:-}" ]; then
        bash "$SERVICES" stop || echo "run-tests: stopping the services failed" >&2
        OWN_SERVICES=0
    fi
}
trap cleanup EXIT
trap 'echo "run-tests: interrupted" >&2; exit 130' INT
trap 'echo "run-tests: terminated" >&2; exit 143' TERM

selected() {
    [ ${#FILTERS[@]} -eq 0 ] && return 0
    local f
    for f in "${FILTERS[@]}"; do
        [[ "$1" == *"$f"* ]] && return 0
    done
    return 1
}

# The skips in a runner's log, one "test<TAB>code<TAB>detail" line each: every reason line
# (attributed to the test running then: cmocka "[ RUN ]", e2e "---- name"), and a "none" line for
# each skipped test that printed no reason (cmocka's first "[  SKIPPED ] name", e2e "skip name").
skips_in_log() {
    awk '
        /^\[ RUN      \] / { cur = $4; next }
        /^---- / { cur = substr($0, 6); next }
        /^skip-reason: / {
            rest = substr($0, 14); i = index(rest, ": ")
            code = i ? substr(rest, 1, i - 1) : rest; detail = i ? substr(rest, i + 2) : ""
            print (cur == "" ? "-" : cur) "\t" code "\t" detail; why[cur] = 1; next
        }
        /^\[==========\] .* run\./ { listed = 1; next }
        /^\[  SKIPPED \] test_/ && !listed { if (!why[$4]) print $4 "\tnone\tskipped without a reason"; next }
        /^skip / { n = substr($0, 6); if (!why[n]) print n "\tnone\tskipped without a reason"; next }
    ' "$1"
}

# skip_problems NAME LOG: prints what makes the skips of LOG unacceptable (D60), one per line.
skip_problems() {
    local name=$1 log=$2 test code detail class
    while IFS=$'\t' read -r test code detail; do
        class=${SKIP_CLASS[$code]:-}
        if [ "$code" = none ]; then
            echo "$test skipped without a reason"
        elif [ -z "$class" ]; then
            echo "$test skipped for '$code', which tests/skips.list does not list"
        elif [ "$class" = harness ] && [ "$HARNESS_UP" = 1 ]; then
            echo "$test skipped for '$code' while the harness services are up"
        fi
    done < <(skips_in_log "$log")
}

# run_one NAME CMD...: runs one test binary/script, records its status and summary lines.
run_one() {
    local name=$1 log rc status bad
    shift
    log="$LOGDIR/${name//\//_}.log"
    echo
    echo "==== $name ===="
    timeout -k 10 "$TIMEOUT" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    bad=$(skip_problems "$name" "$log")
    if [ "$rc" -eq 77 ] && [ -z "$(skips_in_log "$log")" ]; then
        bad="exit status 77 (skipped) without a skip-reason line"
    fi
    while IFS=$'\t' read -r t c d; do SKIP_LINES+=("$name $t: $c: $d"); done < <(skips_in_log "$log")
    if [ -n "$bad" ]; then
        status="FAIL (bad skip: $(head -n 1 <<<"$bad"))"
        echo "$bad" | sed 's/^/run-tests: D60: /'
        FAILED=$((FAILED + 1))
    elif [ "$rc" -eq 77 ] && [ "$name" != "${name#e2e/}" ]; then
        status=SKIP
        SKIPPED=$((SKIPPED + 1))
    elif [ "$rc" -eq 0 ] && grep -aqE '^\[  PASSED  \] 0 test\(s\)\.' "$log" && grep -aqE '^\[  SKIPPED \] [0-9]+ test' "$log"; then
        status=SKIP   # a cmocka binary whose tests all skipped
        SKIPPED=$((SKIPPED + 1))
    elif [ "$rc" -eq 0 ]; then
        status=PASS
        PASSED=$((PASSED + 1))
    else
        case "$rc" in
        124 | 137) status="FAIL (timeout after ${TIMEOUT}s)" ;;
        *) [ "$rc" -gt 128 ] && status="FAIL (signal $((rc - 128)))" || status="FAIL (exit $rc)" ;;
        esac
        FAILED=$((FAILED + 1))
    fi
    echo "---- $name: $status"
    RESULTS+=("$status $name")
    # cmocka's closing lines, the plain line of our shell tests, sanitizer verdicts (a leak
    # fails a binary whose tests all passed), e2e helpers that died abnormally (lib.sh), and the
    # fuzz corpus replays' counts.
    SUMMARY[$name]=$(grep -aE '^\[  (PASSED|FAILED|SKIPPED)  \]|^\[  SKIPPED \] [0-9]|^\[==========\] .* run\.|FAILED TEST\(S\)|^[0-9]+ passed, [0-9]+ failed|^SUMMARY: [A-Za-z]+Sanitizer|runtime error:|^e2e: helper .* FAILED|^replay: [0-9]+ inputs, ' "$log" | head -n 40 || true)
}

# Test binaries of a tier: executables named test_* (or PREFIX*) whose source still exists (a
# stale binary of a deleted test is reported and skipped).
list_bins() {
    local tier=$1 prefix=${2:-test_} b n
    [ -d "$BUILD/tests/$tier" ] || return 0
    for b in "$BUILD/tests/$tier"/"$prefix"*; do
        [ -f "$b" ] && [ -x "$b" ] || continue
        n=$(basename "$b")
        case "$n" in *.*) continue ;; esac
        if [ ! -f "tests/$tier/$n.c" ]; then
            echo "run-tests: skipping stale $b (no tests/$tier/$n.c)" >&2
            continue
        fi
        echo "$b"
    done
}

run_tier() {
    local tier=$1 b n count=0
    shift
    for b in $(list_bins "$tier"); do
        n="$tier/$(basename "$b")"
        selected "$n" || continue
        count=$((count + 1))
        [ "$tier" = unit ] || reset_services
        run_one "$n" "$b"
    done
    [ $count -gt 0 ] || echo "run-tests: no $tier test binaries${FILTERS[0]:+ matching ${FILTERS[*]}} in $BUILD/tests/$tier"
}

# The fuzz targets' corpora, replayed by their gcc build (D59, tests/fuzz/README.md): named
# fuzz/<target>, unit tier (no services).
run_fuzz_replays() {
    local b n
    for b in $(list_bins fuzz fuzz_); do
        n="fuzz/$(basename "$b")"
        selected "$n" || continue
        run_one "$n" "$b" "tests/fuzz/corpus/$(basename "$b")"
    done
}

start_services() {
    if [ -n "${MUTT_TEST_STATE:-}" ] && [ -f "$MUTT_TEST_STATE/env" ]; then
        echo "run-tests: reusing services in $MUTT_TEST_STATE"
    else
        unset MUTT_TEST_STATE
        local state
        state=$(bash "$SERVICES" start) || { echo "run-tests: could not start the test services" >&2; exit 1; }
        export MUTT_TEST_STATE=$state
        OWN_SERVICES=1
    fi
    # shellcheck disable=SC1091
    . "$MUTT_TEST_STATE/env"
    HARNESS_UP=1
}

reset_services() {
    bash "$SERVICES" reset >/dev/null || echo "run-tests: warning: could not reset the services" >&2
}

echo "run-tests: build $BUILD, timeout ${TIMEOUT}s per test"
run_tier unit
run_fuzz_replays

if [ "$UNIT_ONLY" = 0 ]; then
    start_services
    run_tier integration
    count=0
    for s in tests/e2e/test_*.sh; do
        [ -f "$s" ] || continue
        n="e2e/$(basename "$s" .sh)"
        selected "$n" || continue
        count=$((count + 1))
        reset_services
        run_one "$n" bash "$s"
    done
    [ $count -gt 0 ] || echo "run-tests: no e2e scripts${FILTERS[0]:+ matching ${FILTERS[*]}} in tests/e2e"
fi

echo
echo "==== summary ($BUILD) ===="
for r in ${RESULTS[@]+"${RESULTS[@]}"}; do
    name=${r##* }
    echo "$r"
    [ -z "${SUMMARY[$name]:-}" ] || sed 's/^/    /' <<<"${SUMMARY[$name]}"
done
if [ ${#SKIP_LINES[@]} -gt 0 ]; then
    echo
    echo "==== skips (${#SKIP_LINES[@]}; reasons in tests/skips.list) ===="
    printf '%s\n' "${SKIP_LINES[@]}"
fi
[ $((PASSED + FAILED + SKIPPED)) -gt 0 ] || echo "run-tests: WARNING: no test ran"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
