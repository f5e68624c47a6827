#!/usr/bin/env bash
# Self-test of tests/e2e/lib.sh's helper supervision: a background helper that dies by a signal
# the test did not send, or that leaves a sanitizer report in its log, must fail the script and
# keep its log in $MUTT_BUILD/test-logs/; helpers stopped the normal way must not. Each case runs
# a small script that sources lib.sh in a child bash (its own E2E_TMP, MUTT_BUILD pointing into
# ours) and asserts on that child's exit status, output and kept logs. The "helpers" are sh -c
# one-liners, so nothing here needs MUTT, Redis or PostgreSQL.
. "$(dirname "$0")/lib.sh"

LIB="$E2E_ROOT/tests/e2e/lib.sh"
# Aborts itself, as mutt-sink did (h2o's assertion on SIGTERM); no core file.
ABORTER='ulimit -c 0; echo "aborter: about to abort"; kill -ABRT $$'

# child NAME BODY: runs BODY (after sourcing lib.sh) in a child bash; CHILD_RC, CHILD_OUT, and
# CHILD_KEPT (its MUTT_BUILD/test-logs directory).
child() {
    local name=$1 body=$2
    mkdir -p "$E2E_TMP/$name/build"
    printf '. "%s"\n%s\n' "$LIB" "$body" >"$E2E_TMP/$name/$name.sh"
    CHILD_KEPT="$E2E_TMP/$name/build/test-logs"
    CHILD_RC=0
    CHILD_OUT=$(cd "$E2E_TMP/$name" && MUTT_BUILD="$E2E_TMP/$name/build" E2E_KEPT_LOGS='' \
        timeout 120 bash "./$name.sh" 2>&1) || CHILD_RC=$?
}

out_tail() { printf '%s' "$CHILD_OUT" | tail -c 800; }
kept_logs() { find "$CHILD_KEPT" -name "$1" 2>/dev/null; }

test_stop_helper_fails_the_test_on_an_abort_and_keeps_the_log() {
    child abort_in_test '
aborted() {
    spawn_helper aborter "$E2E_TMP/aborter.log" sh -c '"'$ABORTER'"'
    wait_until 10 test -f "$HELPER_DIR/rc"
    stop_helper "$HELPER_PID"
}
t_run "stop an aborted helper" aborted
t_summary'
    assert_eq 1 "$CHILD_RC" "exit status of a script whose helper aborted (output: $(out_tail))"
    assert_contains "$CHILD_OUT" "FAIL stop an aborted helper" "the test that stopped it fails"
    [[ "$CHILD_OUT" =~ e2e:\ helper\ aborter\ \(pid\ [0-9]+\)\ FAILED:\ died\ by\ signal\ 6\ \(SIGABRT\),\ the\ test\ sent\ none\;\ log\ kept:\ $CHILD_KEPT/e2e_abort_in_test\.aborter\.[0-9]+\.log ]] ||
        t_fail "no report line naming the helper, the signal and the kept log: $(out_tail)"
    local kept
    kept=$(kept_logs 'e2e_abort_in_test.aborter.*.log')
    [ -n "$kept" ] || t_fail "log not kept in $CHILD_KEPT"
    assert_contains "$(cat "$kept")" "aborter: about to abort" "the kept log is the helper's log"
    assert_contains "$CHILD_OUT" "0 passed, 1 failed" "closing line"
}

test_a_helper_dying_unstopped_fails_a_script_whose_tests_pass() {
    child abort_unstopped '
spawn_helper aborter "$E2E_TMP/aborter.log" sh -c '"'$ABORTER'"'
wait_until 10 test -f "$HELPER_DIR/rc"
passes() { true; }
t_run "a passing test" passes
t_summary'
    assert_eq 1 "$CHILD_RC" "exit status (output: $(out_tail))"
    assert_contains "$CHILD_OUT" "ok   a passing test" "the test itself passed"
    [[ "$CHILD_OUT" =~ failed:\ helper\ aborter\ \(pid\ [0-9]+\)\ FAILED:\ died\ by\ signal\ 6 ]] ||
        t_fail "t_summary does not name the helper: $(out_tail)"
    assert_contains "$CHILD_OUT" "1 passed, 1 failed" "the helper counts as a failure"
    [ -n "$(kept_logs 'e2e_abort_unstopped.aborter.*.log')" ] || t_fail "log not kept"
}

test_a_sanitizer_report_fails_a_helper_that_exits_normally() {
    child sanitizer '
spawn_helper reporter "$E2E_TMP/reporter.log" sh -c "echo \"==42==ERROR: AddressSanitizer: heap-use-after-free on address 0x602\"; exec sleep 60"
spawn_helper ubsan "$E2E_TMP/ubsan.log" sh -c "echo \"sink.c:12:5: runtime error: signed integer overflow\"; exec sleep 60"
passes() { true; }
t_run "a passing test" passes
t_summary'
    assert_eq 1 "$CHILD_RC" "exit status (output: $(out_tail))"
    [[ "$CHILD_OUT" =~ helper\ reporter\ \(pid\ [0-9]+\)\ FAILED:\ sanitizer\ report\ in\ its\ log ]] ||
        t_fail "ASan report not flagged: $(out_tail)"
    [[ "$CHILD_OUT" =~ helper\ ubsan\ \(pid\ [0-9]+\)\ FAILED:\ sanitizer\ report\ in\ its\ log ]] ||
        t_fail "UBSan report not flagged: $(out_tail)"
    assert_contains "$CHILD_OUT" "1 passed, 2 failed" "both helpers count"
    assert_contains "$(cat "$(kept_logs 'e2e_sanitizer.reporter.*.log')")" "heap-use-after-free" "kept log"
}

test_helpers_stopped_by_the_test_pass_and_keep_nothing() {
    child clean '
spawn_helper stays "$E2E_TMP/stays.log" sleep 60
stopped() {
    spawn_helper stopped "$E2E_TMP/stopped.log" sleep 60
    stop_helper "$HELPER_PID"
    spawn_helper killed "$E2E_TMP/killed.log" sleep 60
    helper_signal KILL "$HELPER_PID"   # a kill -9 drill: the test sent it
    wait_until 10 test -f "$HELPER_DIR/rc"
    helper_check "$HELPER_PID"
}
t_run "helpers stopped by the test" stopped
t_summary'
    assert_eq 0 "$CHILD_RC" "exit status (output: $(out_tail))"
    assert_not_contains "$CHILD_OUT" "FAILED" "no helper reported"
    assert_contains "$CHILD_OUT" "1 passed, 0 failed" "closing line"
    assert_eq "" "$(kept_logs '*.log')" "nothing kept"
}

test_an_early_exit_still_answers_for_its_helpers() {
    child early_exit '
spawn_helper aborter "$E2E_TMP/aborter.log" sh -c '"'$ABORTER'"'
wait_until 10 test -f "$HELPER_DIR/rc"
exit 0   # no t_summary: the exit trap judges the helpers'
    assert_eq 1 "$CHILD_RC" "exit status (output: $(out_tail))"
    assert_contains "$CHILD_OUT" "helper aborter" "report"
    [ -n "$(kept_logs 'e2e_early_exit.aborter.*.log')" ] || t_fail "log not kept"
}

t_run "stop_helper: an aborted helper fails the test and its log is kept" \
    test_stop_helper_fails_the_test_on_an_abort_and_keeps_the_log
t_run "a helper that aborts on its own fails a script whose tests pass" \
    test_a_helper_dying_unstopped_fails_a_script_whose_tests_pass
t_run "a sanitizer report in a helper's log fails the script" test_a_sanitizer_report_fails_a_helper_that_exits_normally
t_run "helpers stopped or killed by the test: no failure, nothing kept" test_helpers_stopped_by_the_test_pass_and_keep_nothing
t_run "an early exit without t_summary still fails on an aborted helper" test_an_early_exit_still_answers_for_its_helpers
t_summary
