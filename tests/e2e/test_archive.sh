#!/usr/bin/env bash
# Archival before deletion and legal holds (issue 17, CONTRACT D44 D64) with the built binary
# against the harness's Redis and PostgreSQL: retention archives every row it deletes (gzip'd
# NDJSON per table per day, manifests that `mutt archive verify` and sha256sum accept), a failing
# ARCHIVE_COMMAND deletes nothing, verify names a corrupted file, `mutt archive restore` loads
# rows back idempotently under a hold named after the file, and a hold survives a retention run
# and keeps its partition from being dropped. Needs: PostgreSQL, Redis (harness), psql, zcat,
# sha256sum. Run through tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF"
ARCH="$E2E_TMP/archive"
RCLI=(redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT")
export PGPASSWORD=$MUTT_TEST_PG_PASS
PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB")
sql() { "${PSQL[@]}" -c "$1"; }

cli() {
    RC=0
    OUT=$("$MUTT_BIN" --config "$CONF" "$@" 2>&1) || RC=$?
}
expect_rc() { assert_eq "$1" "$RC" "${2:-exit status} (output: ${OUT:0:600})"; }

"$MUTT_BIN" --config "$CONF" migrate >/dev/null || { echo "FAIL: mutt migrate"; exit 1; }

# 600 old config rows over three UTC days, 20 new ones; 1500 old event rows in a month
# partition (hosts h and keep), 200 in DEFAULT, 50 new ones.
seed() {
    rm -rf "$ARCH"
    sql "TRUNCATE event_audit_log; DELETE FROM config_audit_log; DELETE FROM legal_holds;
         SELECT mutt_ensure_partitions(3);
         CREATE TABLE IF NOT EXISTS event_audit_log_2020_03 PARTITION OF event_audit_log
              FOR VALUES FROM ('2020-03-01 00:00+00') TO ('2020-04-01 00:00+00');
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname, raw_message)
              SELECT '2020-03-02 00:00+00'::timestamptz + g * interval '1 minute', 'p' || g,
                     CASE WHEN g <= 100 THEN 'keep' ELSE 'h' END, 'line ' || g || E' with \"quotes\" and \\\\ tab\t'
              FROM generate_series(1, 1500) g;
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname)
              SELECT '2019-07-02 00:00+00'::timestamptz + g * interval '1 minute', 'd' || g, 'h' FROM generate_series(1, 200) g;
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname)
              SELECT now() - interval '10 days' + g * interval '1 second', 'n' || g, 'h' FROM generate_series(1, 50) g;
         INSERT INTO config_audit_log (changed_at, changed_by, operation, table_name, record_key, new_values, reason)
              SELECT date_trunc('day', now() - interval '400 days') + (g % 3) * interval '1 day' + interval '1 hour',
                     'old', 'CREATE', 'alert_rules', 'r' || g, jsonb_build_object('n', g), 'seed ' || g
              FROM generate_series(1, 600) g;
         INSERT INTO config_audit_log (changed_at, changed_by, operation, table_name)
              SELECT now() - interval '5 days', 'new', 'CREATE', 'alert_rules' FROM generate_series(1, 20);" >/dev/null
    "${RCLI[@]}" del mutt:retention:last_run mutt:retention:lock >/dev/null
}

archived_lines() { # TABLE -> rows in every archive file of the table
    find "$ARCH/$1" -name '*.ndjson.gz' -print0 2>/dev/null | xargs -0 -r zcat | wc -l
}

test_retention_archives_every_row_before_deleting_it() {
    seed
    RC=0
    OUT=$(RETENTION_BATCH_SIZE=250 "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention"
    assert_contains "$OUT" "deleted config_audit=600 event_audit=1700"
    assert_contains "$OUT" "partitions dropped: 1"
    assert_eq "20" "$(sql "SELECT count(*) FROM config_audit_log")" "old config rows gone, new ones stay"
    assert_eq "50" "$(sql "SELECT count(*) FROM event_audit_log")" "old event rows gone, new ones stay"
    assert_eq "" "$(sql "SELECT to_regclass('event_audit_log_2020_03')")" "the emptied old partition is dropped"
    assert_eq "600" "$(archived_lines config_audit_log)" "every deleted config row is in an archive"
    assert_eq "1700" "$(archived_lines event_audit_log)" "every deleted event row is in an archive"
    # per table per day: three config days, each with its manifest
    assert_eq "3" "$(find "$ARCH/config_audit_log" -mindepth 1 -maxdepth 1 -type d | wc -l)" "one directory per day"
    local d
    for d in "$ARCH"/config_audit_log/*/; do
        [ -f "$d/MANIFEST.sha256" ] || t_fail "no manifest in $d"
        (cd "$d" && sha256sum -c --quiet MANIFEST.sha256) || t_fail "sha256sum rejects $d/MANIFEST.sha256"
    done
    assert_eq "" "$(find "$ARCH" -name '.*.tmp')" "no temporary file is left"
    # rows are whole and JSON: the tricky raw_message survives
    local one
    one=$(find "$ARCH/event_audit_log" -name '*.ndjson.gz' -print0 | xargs -0 zcat | jq -r 'select(.event_id == "p7") | .raw_message')
    assert_eq "$(printf 'line 7 with "quotes" and \\ tab\t')" "$one" "raw_message round-trips"
    cli archive verify "$ARCH"
    expect_rc 0 "archive verify"
    assert_contains "$OUT" "every file matches"
}

test_archive_command_failure_deletes_nothing_and_success_hands_the_file_over() {
    seed
    RC=0
    OUT=$(ARCHIVE_COMMAND=false "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 1 "retention with a failing ARCHIVE_COMMAND"
    assert_contains "$OUT" "ARCHIVE_COMMAND failed"
    assert_eq "620" "$(sql "SELECT count(*) FROM config_audit_log")" "nothing deleted"
    assert_eq "1750" "$(sql "SELECT count(*) FROM event_audit_log")" "nothing deleted"
    local dest="$E2E_TMP/offsite"
    mkdir -p "$dest"
    RC=0
    OUT=$(ARCHIVE_COMMAND="cp -t $dest" "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention with a working ARCHIVE_COMMAND"
    assert_eq "20" "$(sql "SELECT count(*) FROM config_audit_log")"
    assert_eq "600" "$(find "$dest" -name 'config_audit_log_*.ndjson.gz' -print0 | xargs -0 zcat | wc -l)" \
        "the command received every config row"
    assert_eq "" "$(find "$ARCH/.outgoing" -type f)" "handed-over files are not kept locally"
}

archived_ids() { # DIR GLOB -> sorted event ids in the matching archive files
    find "$1" -name "$2" -print0 2>/dev/null | xargs -0 -r zcat | jq -r '.event_id' | sort
}

test_an_old_partition_without_holds_is_archived_whole_and_dropped() {
    seed
    local before
    before=$(sql "SELECT event_id FROM event_audit_log_2020_03 ORDER BY event_id")
    RC=0
    OUT=$(RETENTION_BATCH_SIZE=250 "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention"
    assert_contains "$OUT" "dropped partition event_audit_log_2020_03 after archiving its 1500 rows whole"
    assert_contains "$OUT" "deleted config_audit=600 event_audit=1700"
    assert_contains "$OUT" "partitions dropped: 1"
    assert_eq "" "$(sql "SELECT to_regclass('event_audit_log_2020_03')")" "the partition is gone"
    assert_eq "50" "$(sql "SELECT count(*) FROM event_audit_log")" "new rows stay"
    # every row that was in the partition is archived, once (its days are 2020-03-02 and -03)
    assert_eq "$before" "$(archived_ids "$ARCH/event_audit_log" 'event_audit_log_2020-03-*.ndjson.gz')" \
        "the archive holds exactly the partition's rows"
    # read whole, not in batches of 250: one file per day
    assert_eq "2" "$(find "$ARCH/event_audit_log" -name 'event_audit_log_2020-03-*.ndjson.gz' | wc -l)" \
        "one file per day for the whole partition"
    assert_eq "200" "$(archived_ids "$ARCH/event_audit_log" 'event_audit_log_2019-*.ndjson.gz' | wc -l)" \
        "DEFAULT rows still go batch by batch"
    local d
    for d in "$ARCH"/event_audit_log/*/; do
        (cd "$d" && sha256sum -c --quiet MANIFEST.sha256) || t_fail "sha256sum rejects $d/MANIFEST.sha256"
    done
    cli archive verify "$ARCH"
    expect_rc 0 "archive verify"
}

test_archive_command_failure_leaves_the_old_partition_intact() {
    seed
    local dest="$E2E_TMP/offsite-p" cmd="$E2E_TMP/archive-cmd-p.sh"
    rm -rf "$dest" && mkdir -p "$dest"
    # config files go through, the partition's files fail
    cat >"$cmd" <<SH
#!/bin/sh
case "\$(basename "\$1")" in event_audit_log_2020-03-*) exit 3 ;; esac
cp "\$1" "$dest/"
SH
    chmod +x "$cmd"
    RC=0
    OUT=$(ARCHIVE_COMMAND="$cmd" "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 1 "retention with an ARCHIVE_COMMAND failing for the partition"
    assert_contains "$OUT" "ARCHIVE_COMMAND failed (exit 3)"
    assert_eq "event_audit_log_2020_03" "$(sql "SELECT to_regclass('event_audit_log_2020_03')")" "the partition stays"
    assert_eq "1500" "$(sql "SELECT count(*) FROM event_audit_log_2020_03")" "with every row"
    assert_eq "1750" "$(sql "SELECT count(*) FROM event_audit_log")" "no event row deleted"
    assert_eq "20" "$(sql "SELECT count(*) FROM config_audit_log")" "config rows archived before went"
}

test_a_row_added_while_archiving_sends_the_partition_row_by_row() {
    seed
    local dest="$E2E_TMP/offsite-r" cmd="$E2E_TMP/archive-cmd-r.sh" mark="$E2E_TMP/late-inserted"
    rm -rf "$dest" "$mark" && mkdir -p "$dest"
    # a late audit row with an old timestamp lands in the partition after it was read
    cat >"$cmd" <<SH
#!/bin/sh
set -e
case "\$(basename "\$1")" in
event_audit_log_2020-03-*)
    if [ ! -e "$mark" ]; then
        touch "$mark"
        PGPASSWORD='$MUTT_TEST_PG_PASS' psql -X -q -h '$MUTT_TEST_PG_HOST' -p '$MUTT_TEST_PG_PORT' -U '$MUTT_TEST_PG_USER' '$MUTT_TEST_PG_DB' \
            -c "INSERT INTO event_audit_log (event_timestamp, event_id, hostname) VALUES ('2020-03-20 00:00+00', 'late-1', 'h')" >/dev/null
    fi ;;
esac
cp "\$1" "$dest/"
SH
    chmod +x "$cmd"
    RC=0
    OUT=$(ARCHIVE_COMMAND="$cmd" "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention"
    [ -e "$mark" ] || t_fail "the late row was never inserted"
    assert_eq "late-1" "$(archived_ids "$dest" 'event_audit_log_2020-03-20_*.ndjson.gz')" \
        "the late row was archived before it was deleted"
    assert_eq "" "$(sql "SELECT to_regclass('event_audit_log_2020_03')")" "emptied row by row, then dropped"
    assert_contains "$OUT" "partition event_audit_log_2020_03 changed while it was archived"
    assert_eq "1500" "$(archived_ids "$dest" 'event_audit_log_2020-03-0*.ndjson.gz' | sort -u | wc -l)" \
        "every row of the partition is archived"
    assert_eq "50" "$(sql "SELECT count(*) FROM event_audit_log")" "new rows stay"
}

test_a_hold_created_while_archiving_keeps_its_rows() {
    seed
    local cmd="$E2E_TMP/archive-cmd-h.sh" mark="$E2E_TMP/hold-inserted"
    rm -f "$mark"
    # a hold on the partition's host 'keep' arrives after the partition was read
    cat >"$cmd" <<SH
#!/bin/sh
set -e
case "\$(basename "\$1")" in
event_audit_log_2020-03-*)
    if [ ! -e "$mark" ]; then
        touch "$mark"
        PGPASSWORD='$MUTT_TEST_PG_PASS' psql -X -q -h '$MUTT_TEST_PG_HOST' -p '$MUTT_TEST_PG_PORT' -U '$MUTT_TEST_PG_USER' '$MUTT_TEST_PG_DB' \
            -c "INSERT INTO legal_holds (table_name, from_ts, to_ts, hostname, reason, created_by) VALUES ('event_audit_log', '2020-03-01', '2020-03-31', 'keep', 'late hold', 'test')" >/dev/null
    fi ;;
esac
exit 0
SH
    chmod +x "$cmd"
    RC=0
    OUT=$(ARCHIVE_COMMAND="$cmd" "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention"
    [ -e "$mark" ] || t_fail "the hold was never created"
    assert_eq "100" "$(sql "SELECT count(*) FROM event_audit_log_2020_03 WHERE hostname = 'keep'")" "held rows stay"
    assert_eq "0" "$(sql "SELECT count(*) FROM event_audit_log_2020_03 WHERE hostname <> 'keep'")" \
        "the rest is emptied row by row"
    assert_contains "$OUT" "partition event_audit_log_2020_03 changed while it was archived"
}

test_archive_verify_names_a_corrupted_file() {
    seed
    RC=0
    OUT=$(RETENTION_BATCH_SIZE=1000 "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention"
    local f
    f=$(find "$ARCH/config_audit_log" -name '*.ndjson.gz' | sort | head -1)
    printf 'X' | dd of="$f" bs=1 seek=20 conv=notrunc status=none
    cli archive verify "$ARCH"
    expect_rc 1 "verify of a corrupted archive"
    assert_contains "$OUT" "$f"
    assert_contains "$OUT" "checksum mismatch"
    cli archive restore "$f"
    expect_rc 1 "restore refuses a file its manifest disowns"
    cli archive verify "$E2E_TMP/nothing-here"
    expect_rc 1 "verify of a directory without manifests"
}

test_archive_restore_loads_rows_back_under_a_hold() {
    seed
    RC=0
    OUT=$("$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention"
    local f base n
    f=$(find "$ARCH/config_audit_log" -name '*.ndjson.gz' | sort | head -1)
    base=$(basename "$f")
    n=$(zcat "$f" | wc -l)
    [ "$n" -gt 0 ] || t_fail "empty archive $f"
    cli archive restore "$f"
    expect_rc 0 "archive restore"
    assert_eq "$((20 + n + 1))" "$(sql "SELECT count(*) FROM config_audit_log")" "the rows are back (and the hold's audit row)"
    assert_eq "$n" "$(sql "SELECT count(*) FROM config_audit_log WHERE changed_by = 'old'")"
    assert_eq "1" "$(sql "SELECT count(*) FROM legal_holds WHERE table_name = 'config_audit_log' AND reason = 'restored from archive $base'")" \
        "a hold named after the file"
    assert_eq "1" "$(sql "SELECT count(*) FROM config_audit_log WHERE table_name = 'legal_holds' AND operation = 'CREATE'")" \
        "the hold is audited"
    cli archive restore "$f"
    expect_rc 0 "restoring twice"
    assert_contains "$OUT" "0 of $n rows restored"
    assert_eq "$((20 + n + 1))" "$(sql "SELECT count(*) FROM config_audit_log")" "idempotent on the primary key"
    assert_eq "1" "$(sql "SELECT count(*) FROM legal_holds")" "one hold per file"
    # the next retention run keeps what the hold covers
    "${RCLI[@]}" del mutt:retention:last_run >/dev/null
    RC=0
    OUT=$("$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention after restore"
    assert_eq "$n" "$(sql "SELECT count(*) FROM config_audit_log WHERE changed_by = 'old'")" "restored rows stay held"
    cli archive restore "$E2E_TMP/not_an_archive.gz"
    expect_rc 2 "restore of a file that is not an archive name"
}

test_a_hold_survives_retention_and_keeps_its_partition() {
    seed
    sql "INSERT INTO legal_holds (table_name, from_ts, to_ts, hostname, reason, created_by)
         VALUES ('event_audit_log', '2020-03-01', '2020-03-31', 'keep', 'litigation 42', 'test'),
                ('config_audit_log', now() - interval '10 years', now(), NULL, 'r', 'test')" >/dev/null
    sql "UPDATE legal_holds SET changed_by = 'nobody' WHERE table_name = 'config_audit_log'" >/dev/null
    cli retention --dry-run
    expect_rc 0 "dry run"
    assert_contains "$OUT" "would delete config_audit=600 event_audit=1600"
    assert_contains "$OUT" "held: config_audit=0 event_audit=100"
    assert_contains "$OUT" "partitions to drop: 0"
    cli retention
    expect_rc 0 "retention with a hold"
    assert_contains "$OUT" "deleted config_audit=600 event_audit=1600"
    assert_contains "$OUT" "partitions kept for held rows: 1"
    assert_contains "$OUT" "partition event_audit_log_2020_03 has rows under legal hold: emptying it row by row"
    assert_eq "100" "$(sql "SELECT count(*) FROM event_audit_log_2020_03 WHERE hostname = 'keep'")" "held rows stay"
    assert_eq "0" "$(sql "SELECT count(*) FROM event_audit_log_2020_03 WHERE hostname <> 'keep'")" \
        "the partition is emptied row by row around them"
    assert_eq "0" "$(zcat "$ARCH"/event_audit_log/*/*.ndjson.gz | jq -r 'select(.hostname == "keep") | .event_id' | wc -l)" \
        "held rows are not archived either"
    # without the hold, the next run archives them and drops the partition
    sql "DELETE FROM legal_holds" >/dev/null
    "${RCLI[@]}" del mutt:retention:last_run >/dev/null
    cli retention
    expect_rc 0
    assert_contains "$OUT" "event_audit=100"
    assert_eq "" "$(sql "SELECT to_regclass('event_audit_log_2020_03')")" "dropped once nothing is held"
}

# ------------------------------------------------------------------------ full backups (#17 item 6)
full_snapshot() {
    sql "SELECT md5(string_agg(row_to_json(t)::text, '|' ORDER BY id)) FROM config_audit_log t WHERE table_name <> 'backup';
         SELECT md5(string_agg(row_to_json(t)::text, '|' ORDER BY id)) FROM event_audit_log t;
         SELECT md5(string_agg(row_to_json(t)::text, '|' ORDER BY id)) FROM legal_holds t;
         SELECT count(*) FROM alert_rules" | tr '\n' ' '
    local k
    for k in mutt:dlq:alerter mutt:dlq:moog mutt:dlq:dead; do
        "${RCLI[@]}" --no-raw lrange "$k" 0 -1 | md5sum | cut -c1-32
    done
    "${RCLI[@]}" get mutt:config:ingest_max_rate
}

test_backup_full_with_audit_wipe_restore_verify() {
    seed
    sql "DELETE FROM alert_rules;
         INSERT INTO alert_rules (match_string, prod_handling, dev_handling, team_assignment)
              VALUES ('disk full', 'Page_only', 'Ticket_only', 'storage');
         INSERT INTO legal_holds (table_name, from_ts, to_ts, reason, created_by)
              VALUES ('event_audit_log', '2020-03-01', '2020-03-02', 'case 9', 'test')" >/dev/null
    "${RCLI[@]}" del mutt:dlq:alerter mutt:dlq:moog mutt:dlq:dead >/dev/null
    "${RCLI[@]}" set mutt:config:ingest_max_rate 321 >/dev/null
    "${RCLI[@]}" rpush mutt:dlq:alerter '{"hostname":"a1","_failed_at":"2026-01-01T00:00:00Z"}' 'not json' >/dev/null
    printf 'bin\xff\x00ary' | "${RCLI[@]}" -x rpush mutt:dlq:alerter >/dev/null
    "${RCLI[@]}" rpush mutt:dlq:dead "$(printf 'line\nbreak \u00e9')" >/dev/null
    local before file="$E2E_TMP/full.tar.gz"
    before=$(full_snapshot)
    cli backup --with-audit "$file"
    expect_rc 2 "--with-audit needs --full"
    cli backup --full --with-audit "$file"
    expect_rc 0 "backup --full --with-audit"
    local members
    members=$(tar tzf "$file" | sort | tr '\n' ' ')
    assert_eq "audit/config_audit_log.ndjson audit/event_audit_log.ndjson audit/legal_holds.ndjson dev_hosts.json dlq/alerter.ndjson dlq/dead.ndjson dlq/moog.ndjson dynamic_config.json manifest.json mutt.conf rules.json teams.json " "$members"
    assert_eq "620" "$(tar xzOf "$file" audit/config_audit_log.ndjson | wc -l)" "every config audit row"
    assert_eq "3" "$(tar xzOf "$file" manifest.json | jq '.lines["dlq/alerter.ndjson"]')"
    cli restore --verify "$file"
    expect_rc 0 "restore --verify"
    assert_contains "$OUT" "every checksum matches"
    assert_contains "$OUT" "nothing was applied"
    # wipe everything the archive holds
    sql "TRUNCATE config_audit_log, event_audit_log, legal_holds; DELETE FROM alert_rules" >/dev/null
    "${RCLI[@]}" del mutt:dlq:alerter mutt:dlq:moog mutt:dlq:dead mutt:config:ingest_max_rate >/dev/null
    assert_ne "$before" "$(full_snapshot)" "the wipe changed something"
    cli restore --max-stream-bytes 1000 "$file"
    expect_rc 2 "the streamed members have their own cap"
    assert_contains "$OUT" "max-stream-bytes"
    assert_eq "0" "$(sql "SELECT count(*) FROM event_audit_log")" "nothing applied past the cap"
    cli restore "$file"
    expect_rc 0 "restore of a full backup"
    assert_eq "$before" "$(full_snapshot)" "audit tables, holds, DLQs (binary items too) and config are back"
    # ids continue after the restored ones
    sql "INSERT INTO legal_holds (table_name, from_ts, to_ts, reason, created_by) VALUES ('event_audit_log', now(), now(), 'x', 't')" >/dev/null
    # a tampered member is named by --verify, and restore refuses it
    local x="$E2E_TMP/x"
    rm -rf "$x" && mkdir -p "$x"
    tar xzf "$file" -C "$x"
    echo '{"id":999999,"table_name":"event_audit_log"}' >>"$x/audit/legal_holds.ndjson"
    (cd "$x" && tar czf "$E2E_TMP/bad.tar.gz" manifest.json mutt.conf dynamic_config.json rules.json dev_hosts.json teams.json dlq audit)
    cli restore --verify "$E2E_TMP/bad.tar.gz"
    expect_rc 2 "verify of a tampered archive"
    assert_contains "$OUT" "audit/legal_holds.ndjson"
    assert_contains "$OUT" "checksum"
    cli restore "$E2E_TMP/bad.tar.gz"
    expect_rc 2 "restore of a tampered archive"
    assert_eq "0" "$(sql "SELECT count(*) FROM legal_holds WHERE id = 999999")"
    # a plain backup still verifies, without checksums
    cli backup "$E2E_TMP/plain.tar.gz"
    expect_rc 0
    cli restore --verify "$E2E_TMP/plain.tar.gz"
    expect_rc 0
    assert_contains "$OUT" "no checksums"
}

t_run test_retention_archives_every_row_before_deleting_it test_retention_archives_every_row_before_deleting_it
t_run test_archive_command_failure_deletes_nothing_and_success_hands_the_file_over test_archive_command_failure_deletes_nothing_and_success_hands_the_file_over
t_run test_an_old_partition_without_holds_is_archived_whole_and_dropped test_an_old_partition_without_holds_is_archived_whole_and_dropped
t_run test_archive_command_failure_leaves_the_old_partition_intact test_archive_command_failure_leaves_the_old_partition_intact
t_run test_a_row_added_while_archiving_sends_the_partition_row_by_row test_a_row_added_while_archiving_sends_the_partition_row_by_row
t_run test_a_hold_created_while_archiving_keeps_its_rows test_a_hold_created_while_archiving_keeps_its_rows
t_run test_archive_verify_names_a_corrupted_file test_archive_verify_names_a_corrupted_file
t_run test_archive_restore_loads_rows_back_under_a_hold test_archive_restore_loads_rows_back_under_a_hold
t_run test_a_hold_survives_retention_and_keeps_its_partition test_a_hold_survives_retention_and_keeps_its_partition
t_run test_backup_full_with_audit_wipe_restore_verify test_backup_full_with_audit_wipe_restore_verify
t_summary
