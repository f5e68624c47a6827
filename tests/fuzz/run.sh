#!/usr/bin/env bash
# Runs the libFuzzer binaries `make fuzz` built, one after the other, each for FUZZ_SECONDS,
# as one process (no -jobs/-workers: one core, the machine is shared). The committed corpus
# (tests/fuzz/corpus/<target>) is read, never written: new inputs go to
# $FUZZ_BUILD/corpus/<target>, crashes to $FUZZ_BUILD/crashes/<target>/. Prints one line per
# target (execs, crashes) and appends it to $FUZZ_BUILD/history.tsv, the source of the totals
# in tests/fuzz/README.md. Exits 1 when any target crashed.
#   run.sh [TARGET...]   TARGET = fuzz_<name> or a substring of it; default all
# FUZZ_ARGS adds libFuzzer flags, e.g. "-fork=1 -ignore_crashes=1" to go on past a known crash.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}

targets=()
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    if [ $# -gt 0 ]; then
        keep=0
        for f in "$@"; do [[ "$t" == *"$f"* ]] && keep=1; done
        [ $keep = 1 ] || continue
    fi
    targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no target matches $*" >&2; exit 2; }

failed=0
summary=()
for t in "${targets[@]}"; do
    bin="$FUZZ_BUILD/fuzzers/$t"
    [ -x "$bin" ] || { echo "fuzz: $bin is missing (make fuzz builds it)" >&2; exit 2; }
    work="$FUZZ_BUILD/corpus/$t" crashes="$FUZZ_BUILD/crashes/$t" log="$FUZZ_BUILD/logs/$t.log"
    mkdir -p "$work" "$crashes" "$(dirname "$log")" "tests/fuzz/corpus/$t"
    before=$(find "$crashes" -type f | wc -l)
    echo "fuzz: $t for ${SECONDS_EACH}s (log $log)"
    start=$(date +%s)
    # leak-detection is on (ASan's default); -timeout flags an input that runs over 10 s
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        ${FUZZ_ARGS:-} -artifact_prefix="$crashes/" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    crashed=$(($(find "$crashes" -type f | wc -l) - before))
    line="$t	${execs:-0}	$took	$crashed	$(date -u +%FT%TZ)	$(git rev-parse --short HEAD 2>/dev/null)"
    printf '%s\n' "$line" >>"$FUZZ_BUILD/history.tsv"
    summary+=("$(printf '%-24s %12s execs %5ss  %s crash(es)' "$t" "${execs:-0}" "$took" "$crashed")")
    if [ "$rc" -ne 0 ] || [ "$crashed" -gt 0 ]; then
        failed=1
        grep -aE '^(==[0-9]+==ERROR|SUMMARY|fuzz property broken|.*runtime error)' "$log" | head -n 5 | sed 's/^/    /'
        ls "$crashes" | sed 's/^/    crash: /'
    fi
done
echo
echo "==== fuzz summary ($SECONDS_EACH s per target) ===="
printf '%s\n' "${summary[@]}"
exit $failed
