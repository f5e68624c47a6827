#!/usr/bin/env bash
# The operator CLI of the built binary (CONTRACT §10, §11, D5, D18, D20, D25, D27, D28) against
# the harness's Redis and PostgreSQL: every sub-command's success and error paths with their exit
# codes (0 ok, 1 runtime failure, 2 usage/config error), the backup -> wipe -> restore round trip,
# retention (dry run changes nothing; old rows across partitions and DEFAULT and old DLQ items
# go, newer ones stay), the retention role's own run and metrics, and the production compliance
# gate. Needs: redis-server, PostgreSQL (harness), psql, redis-cli, tar. Run through
# tests/harness/run-tests.sh.
. "$(dirname "$0")/lib.sh"

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF"
RCLI=(redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT")
export PGPASSWORD=$MUTT_TEST_PG_PASS
PSQL=(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB")
sql() { "${PSQL[@]}" -c "$1"; }
USER_NAME=$(id -un)

# cli ARGS...: runs mutt with the test config; sets OUT (stdout+stderr) and RC.
cli() {
    RC=0
    OUT=$("$MUTT_BIN" --config "$CONF" "$@" 2>&1) || RC=$?
}
expect_rc() { assert_eq "$1" "$RC" "${2:-exit status} (output: ${OUT:0:400})"; }

"$MUTT_BIN" --config "$CONF" migrate >/dev/null || { echo "FAIL: mutt migrate"; exit 1; }

# ------------------------------------------------------------------------------------ usage
test_unknown_command_and_bad_usage_exit_2() {
    cli bogus-command
    expect_rc 2 "unknown command"
    assert_contains "$OUT" "unknown command"
    cli config
    expect_rc 2 "config without a sub-command"
    assert_contains "$OUT" "usage"
    cli dlq replay
    expect_rc 2 "dlq replay without a name"
    cli retention --bogus
    expect_rc 2 "retention with an unknown flag"
    cli backup
    expect_rc 2 "backup without a file"
    cli health extra
    expect_rc 2 "health with an argument"
    cli health --roles
    expect_rc 2 "health --roles without a list"
}

test_unreachable_redis_is_a_runtime_failure() {
    local bad="$E2E_TMP/noredis.conf"
    e2e_config "$bad" "REDIS_PORT=$(free_port)"
    RC=0
    OUT=$("$MUTT_BIN" --config "$bad" config list 2>&1) || RC=$?
    expect_rc 1 "config list with Redis unreachable"
    assert_contains "$OUT" "unreachable"
    RC=0
    OUT=$("$MUTT_BIN" --config "$bad" retention 2>&1) || RC=$?
    expect_rc 1 "retention with Redis unreachable"
}

# ----------------------------------------------------------------------------------- config
test_config_list_get_show_effective_values_and_sources() {
    cli config list
    expect_rc 0
    assert_contains "$OUT" "max_ingest_queue_size=1000000"
    assert_contains "$OUT" "(default)"
    cli config get max_ingest_queue_size
    expect_rc 0
    assert_eq "1000000" "$OUT" "config get of an unset key shows the default"
    cli config get no_such_key
    expect_rc 2 "config get of an unknown key"
    assert_contains "$OUT" "unknown key 'no_such_key'"
}

test_config_set_validates_writes_publishes_and_audits() {
    local sub="$E2E_TMP/sub.out"
    timeout 20 "${RCLI[@]}" subscribe mutt:config:updates >"$sub" 2>&1 &
    local subpid=$!
    echo "$subpid" >>"$E2E_TMP/pids"
    wait_until 5 grep -q subscribe "$sub" || t_fail "redis-cli subscribe did not start"

    cli config set max_ingest_queue_size abc
    expect_rc 2 "a bad value is refused"
    assert_contains "$OUT" "max_ingest_queue_size=abc"
    cli config set no_such_key 1
    expect_rc 2 "an unknown key is refused"
    assert_eq "" "$("${RCLI[@]}" get mutt:config:max_ingest_queue_size)" "nothing written for a refused value"

    cli config set unhandled_threshold 7 --no-publish
    expect_rc 0 "set --no-publish"
    cli config set max_ingest_queue_size 5000 --reason "capacity test"
    expect_rc 0 "set"
    assert_contains "$OUT" "max_ingest_queue_size=5000 (was unset)"
    assert_eq "5000" "$("${RCLI[@]}" get mutt:config:max_ingest_queue_size)"
    cli config get max_ingest_queue_size
    assert_eq "5000" "$OUT"
    cli config set max_ingest_queue_size 6000
    expect_rc 0 "second set"

    wait_until 5 grep -qx max_ingest_queue_size "$sub" || t_fail "no PUBLISH of max_ingest_queue_size"
    if grep -qx unhandled_threshold "$sub"; then t_fail "--no-publish published"; fi
    assert_eq "7" "$("${RCLI[@]}" get mutt:config:unhandled_threshold)" "--no-publish still writes"
    kill "$subpid" 2>/dev/null || true

    local rows
    rows=$(sql "SELECT changed_by, operation, record_key, coalesce(old_values->>'value',''), new_values->>'value', coalesce(reason,'')
                FROM config_audit_log WHERE table_name = 'dynamic_config' AND record_key = 'max_ingest_queue_size' ORDER BY id")
    assert_eq "cli:$USER_NAME|CREATE|max_ingest_queue_size||5000|capacity test
cli:$USER_NAME|UPDATE|max_ingest_queue_size|5000|6000|" "$rows" "audit rows of config set"
}

# -------------------------------------------------------------------------------------- dlq
test_dlq_list_and_replay_move_items_atomically_and_audit() {
    "${RCLI[@]}" del mutt:dlq:alerter mutt:dlq:moog mutt:dlq:dead mutt:ingest_queue mutt:ingest_queue:bytes \
        mutt:alert_queue >/dev/null
    "${RCLI[@]}" lpush mutt:dlq:alerter '{"hostname":"a1","_origin":"ingest","_retry_count":3}' \
        '{"hostname":"a2","_origin":"ingest"}' >/dev/null
    "${RCLI[@]}" lpush mutt:dlq:moog '{"hostname":"m1","_origin":"alert","_replay_count":2,"_moog_retry_count":5}' >/dev/null
    "${RCLI[@]}" lpush mutt:dlq:dead '{"hostname":"d1","_origin":"alert"}' '{"hostname":"d2","_origin":"ingest"}' >/dev/null

    cli dlq list
    expect_rc 0
    assert_contains "$OUT" "alerter	mutt:dlq:alerter	2"
    assert_contains "$OUT" "moog	mutt:dlq:moog	1"
    assert_contains "$OUT" "dead	mutt:dlq:dead	2"
    cli dlq list alerter --count 1
    expect_rc 0
    assert_contains "$OUT" '"hostname":"a2"' "newest item listed"
    assert_not_contains "$OUT" '"hostname":"a1"' "--count 1 lists one item"

    cli dlq replay alerter --count 1
    expect_rc 0
    assert_contains "$OUT" "replayed 1 item"
    assert_eq 1 "$("${RCLI[@]}" llen mutt:dlq:alerter)" "one item left in the alerter DLQ"
    local item
    item=$("${RCLI[@]}" lindex mutt:ingest_queue 0)
    assert_contains "$item" '"hostname":"a1"' "the oldest item is replayed first"
    assert_contains "$item" '"_replay_count":1'
    assert_not_contains "$item" '_retry_count' "a manual replay gets fresh attempts"

    cli dlq replay moog
    expect_rc 0
    item=$("${RCLI[@]}" lindex mutt:alert_queue 0)
    assert_contains "$item" '"_replay_count":3'
    cli dlq replay dead
    expect_rc 0
    assert_contains "$OUT" "replayed 2 item"
    assert_eq 0 "$("${RCLI[@]}" llen mutt:dlq:dead)"
    assert_contains "$("${RCLI[@]}" lrange mutt:ingest_queue 0 -1)" '"hostname":"d2"' "dead item with _origin ingest"
    assert_eq "$("${RCLI[@]}" eval "local s = 0 for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do s = s + #v end return s" 1 mutt:ingest_queue)" "$("${RCLI[@]}" get mutt:ingest_queue:bytes)" "D52: replays counted their bytes"
    assert_contains "$("${RCLI[@]}" lrange mutt:alert_queue 0 -1)" '"hostname":"d1"' "dead item with _origin alert"

    "${RCLI[@]}" lpush mutt:dlq:dead '{"_raw":"x","_origin":"audit"}' >/dev/null
    cli dlq replay dead
    expect_rc 1 "an item without a replay target"
    assert_contains "$OUT" "stays there"
    assert_eq 1 "$("${RCLI[@]}" llen mutt:dlq:dead)" "the item is kept"

    cli dlq replay nosuch
    expect_rc 2 "unknown DLQ name"
    cli dlq replay alerter --count 0
    expect_rc 2 "bad --count"

    assert_eq "3" "$(sql "SELECT count(*) FROM config_audit_log WHERE operation = 'REPLAY' AND table_name = 'dlq'
                          AND changed_by = 'cli:$USER_NAME'")" "one REPLAY/dlq audit row per replay that moved items"
    assert_eq "2" "$(sql "SELECT new_values->>'replayed' FROM config_audit_log WHERE operation = 'REPLAY'
                          AND record_key = 'dead' ORDER BY id DESC LIMIT 1")"
}

# ---------------------------------------------------------------------------- backup/restore
snapshot() {
    sql "SELECT coalesce(json_agg(t ORDER BY id), '[]') FROM alert_rules t;
         SELECT coalesce(json_agg(t ORDER BY hostname), '[]') FROM development_hosts t;
         SELECT coalesce(json_agg(t ORDER BY hostname), '[]') FROM device_teams t;
         SELECT nextval(pg_get_serial_sequence('alert_rules', 'id')) > max(id) FROM alert_rules"
    local k
    for k in $("${RCLI[@]}" --scan --pattern 'mutt:config:*' | sort); do
        echo "$k=$("${RCLI[@]}" get "$k")"
    done
}

test_backup_wipe_restore_round_trip_is_equal() {
    sql "DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams;
         INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling, team_assignment)
              VALUES ('disk full', 'contains', 10, 'Page_only', 'Ticket_only', 'storage'),
                     ('^link (up|down)', 'regex', 20, 'Ticket_only', 'Ignore', 'network');
         INSERT INTO alert_rules (trap_oid, match_type, syslog_severity, prod_handling, dev_handling, team_assignment, is_active)
              VALUES ('1.3.6.1.4.1.9', 'oid_prefix', 3, 'Page_and_ticket', 'Ignore', 'network', false);
         INSERT INTO development_hosts VALUES ('dev-1'), ('dev-2');
         INSERT INTO device_teams VALUES ('router-1', 'network'), ('db-1', 'dba');"
    "${RCLI[@]}" set mutt:config:alerter_shed_mode dlq >/dev/null
    "${RCLI[@]}" set mutt:config:ingest_max_rate 250 >/dev/null
    local before after file="$E2E_TMP/backup.tar.gz"
    before=$(snapshot)

    cli backup "$file"
    expect_rc 0 "backup"
    local members
    members=$(tar tzf "$file" | sort | tr '\n' ' ')
    assert_eq "dev_hosts.json dynamic_config.json manifest.json mutt.conf rules.json teams.json " "$members"
    local conf manifest
    conf=$(tar xzOf "$file" mutt.conf)
    assert_contains "$conf" "REDIS_PORT=$MUTT_TEST_REDIS_PORT"
    assert_not_contains "$conf" "$INGEST_KEY" "no secret in mutt.conf"
    assert_not_contains "$conf" "$MUTT_TEST_PG_PASS" "no password in mutt.conf"
    assert_not_contains "$conf" "API_KEY=" "no key lines"
    manifest=$(tar xzOf "$file" manifest.json)
    # the schema version the archive was taken at: the newest applied migration
    assert_contains "$manifest" "\"schema_version\": $(sql "SELECT max(version) FROM schema_migrations")"
    assert_contains "$manifest" '"pod": "'
    assert_contains "$manifest" '"created_at": "'

    # wipe, and change things the restore must undo
    sql "DELETE FROM alert_rules; DELETE FROM development_hosts; DELETE FROM device_teams;
         INSERT INTO device_teams VALUES ('stray', 'x');"
    "${RCLI[@]}" del mutt:config:alerter_shed_mode >/dev/null
    "${RCLI[@]}" set mutt:config:ingest_max_rate 9 >/dev/null
    "${RCLI[@]}" set mutt:config:unhandled_threshold 3 >/dev/null

    cli restore "$file"
    expect_rc 0 "restore"
    after=$(snapshot)
    assert_eq "$before" "$after" "state after restore equals state at backup"
    assert_eq "1" "$(sql "SELECT count(*) FROM config_audit_log WHERE operation = 'RESTORE' AND table_name = 'backup'
                          AND changed_by = 'cli:$USER_NAME'")" "one RESTORE/backup audit row"
}

test_restore_refuses_newer_schema_and_foreign_files() {
    local dir="$E2E_TMP/forged" file="$E2E_TMP/good.tar.gz"
    cli backup "$file"
    expect_rc 0
    local rules_before
    rules_before=$(sql "SELECT count(*) FROM alert_rules")
    mkdir -p "$dir"
    tar xzf "$file" -C "$dir"
    sed -i 's/"schema_version": [0-9]*/"schema_version": 999/' "$dir/manifest.json"
    sql "INSERT INTO development_hosts VALUES ('must-stay')"
    tar czf "$E2E_TMP/newer.tar.gz" -C "$dir" manifest.json mutt.conf dynamic_config.json rules.json dev_hosts.json teams.json
    cli restore "$E2E_TMP/newer.tar.gz"
    expect_rc 2 "a newer schema is refused"
    assert_contains "$OUT" "schema version 999"
    assert_eq "1" "$(sql "SELECT count(*) FROM development_hosts WHERE hostname = 'must-stay'")" "nothing restored"

    rm "$dir/rules.json"
    sed -i 's/"schema_version": 999/"schema_version": 1/' "$dir/manifest.json"
    tar czf "$E2E_TMP/partial.tar.gz" -C "$dir" manifest.json mutt.conf dynamic_config.json dev_hosts.json teams.json
    cli restore "$E2E_TMP/partial.tar.gz"
    expect_rc 2 "an archive without rules.json"
    assert_contains "$OUT" "no rules.json"

    echo "not an archive" >"$E2E_TMP/garbage.tar.gz"
    cli restore "$E2E_TMP/garbage.tar.gz"
    expect_rc 2 "a file that is not a tar.gz"
    cli restore "$E2E_TMP/does-not-exist.tar.gz"
    expect_rc 1 "a missing file"
    cli backup "$E2E_TMP/no/such/dir/b.tar.gz"
    expect_rc 1 "backup into a missing directory"
    assert_eq "$rules_before" "$(sql "SELECT count(*) FROM alert_rules")"
}

test_backup_never_follows_or_clobbers_what_sits_at_its_temp_path() {
    local file="$E2E_TMP/excl.tar.gz" victim="$E2E_TMP/victim.txt" stale
    echo "precious" >"$victim"
    # The temporary name is FILE.tmp.<pid>; `exec` keeps the shell's pid, so $$ names it.
    RC=0
    OUT=$(bash -c 'ln -s "$1" "$2.tmp.$$" && exec "$3" --config "$4" backup "$2"' _ \
        "$victim" "$file" "$MUTT_BIN" "$CONF" 2>&1) || RC=$?
    expect_rc 1 "backup with a symlink at its temporary path"
    assert_contains "$OUT" "cannot create"
    assert_eq "precious" "$(cat "$victim")" "the symlink's target is untouched"
    [ ! -e "$file" ] && [ ! -L "$file" ] || t_fail "no backup file may appear at $file"
    stale=$(ls "$file".tmp.* 2>/dev/null | head -n 1)
    [ -L "$stale" ] || t_fail "the planted symlink must stay where it was"
    rm -f "$stale"
    # a regular file at the temporary path: neither truncated nor removed
    RC=0
    OUT=$(bash -c 'echo stale >"$1.tmp.$$" && exec "$2" --config "$3" backup "$1"' _ \
        "$file" "$MUTT_BIN" "$CONF" 2>&1) || RC=$?
    expect_rc 1 "backup with a file at its temporary path"
    stale=$(ls "$file".tmp.* 2>/dev/null | head -n 1)
    assert_eq "stale" "$(cat "$stale")" "the existing file keeps its content"
    rm -f "$stale"
    # and with nothing in the way it works, owner-only, with URL credentials masked in mutt.conf
    local credconf="$E2E_TMP/credurl.conf" conf
    e2e_config "$credconf" "MOOG_WEBHOOK_URL=http://moog:PwXYZ123@127.0.0.1:1/events?token=TkXYZ123"
    RC=0
    OUT=$("$MUTT_BIN" --config "$credconf" backup "$file" 2>&1) || RC=$?
    expect_rc 0 "backup"
    assert_eq "600" "$(stat -c %a "$file")" "backup is owner-only"
    conf=$(tar xzOf "$file" mutt.conf)
    assert_contains "$conf" "MOOG_WEBHOOK_URL=http://moog:***@127.0.0.1:1/events?token=***"
    assert_not_contains "$conf" "PwXYZ123"
    assert_not_contains "$conf" "TkXYZ123"
}

test_restore_refuses_an_archive_expanding_beyond_max_bytes() {
    local dir="$E2E_TMP/bomb" file="$E2E_TMP/bomb-src.tar.gz" before
    cli backup "$file"
    expect_rc 0
    mkdir -p "$dir"
    tar xzf "$file" -C "$dir"
    sql "INSERT INTO development_hosts VALUES ('bomb-must-stay') ON CONFLICT DO NOTHING"
    "${RCLI[@]}" set mutt:config:unhandled_threshold 4242 >/dev/null # a marker the backup lacks
    before=$(snapshot)
    # 80 MiB of zeros (a sparse file, gzip makes it ~80 KB), in a member restore skips
    truncate -s 80M "$dir/padding.bin"
    tar czf "$E2E_TMP/bomb.tar.gz" -C "$dir" manifest.json mutt.conf dynamic_config.json rules.json \
        dev_hosts.json teams.json padding.bin
    cli restore "$E2E_TMP/bomb.tar.gz"
    expect_rc 2 "an archive expanding beyond the 64 MiB default"
    assert_contains "$OUT" "--max-bytes=67108864"
    assert_contains "$OUT" "nothing was restored"
    # the same as a GNU sparse entry: the header declares 80 MiB, the file holds none of it
    tar czSf "$E2E_TMP/sparse.tar.gz" -C "$dir" manifest.json mutt.conf dynamic_config.json rules.json \
        dev_hosts.json teams.json padding.bin
    cli restore "$E2E_TMP/sparse.tar.gz"
    expect_rc 2 "a sparse entry declaring 80 MiB"
    assert_contains "$OUT" "--max-bytes=67108864"
    # a small cap refuses even a genuine backup, naming the cap
    cli restore --max-bytes 1000 "$file"
    expect_rc 2 "a genuine backup above --max-bytes 1000"
    assert_contains "$OUT" "--max-bytes=1000"
    assert_eq "$before" "$(snapshot)" "nothing was applied by any refused restore"
    cli restore --max-bytes 0 "$file"
    expect_rc 2 "--max-bytes 0 is a usage error"
    cli restore --max-bytes 12x "$file"
    expect_rc 2 "--max-bytes 12x is a usage error"
    # raising the cap lets the padded archive through
    cli restore --max-bytes 200000000 "$E2E_TMP/bomb.tar.gz"
    expect_rc 0 "the padded archive under a raised cap"
    # the archive predates the marker host and key: a real restore removes both
    assert_eq "0" "$(sql "SELECT count(*) FROM development_hosts WHERE hostname = 'bomb-must-stay'")" \
        "the raised-cap restore was applied"
    assert_ne "4242" "$("${RCLI[@]}" get mutt:config:unhandled_threshold)"
}

# ---------------------------------------------------------------------------------- retention
# Old and new rows: a month partition wholly past the cutoff, a straddling month (the current
# one), DEFAULT (a month with no partition), and config audit rows; DLQ items old and new.
seed_retention_data() {
    sql "TRUNCATE event_audit_log; DELETE FROM config_audit_log;
         SELECT mutt_ensure_partitions(3);
         CREATE TABLE IF NOT EXISTS event_audit_log_2020_03 PARTITION OF event_audit_log
              FOR VALUES FROM ('2020-03-01 00:00+00') TO ('2020-04-01 00:00+00');
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname)
              SELECT '2020-03-02 00:00+00'::timestamptz + g * interval '1 minute', 'p' || g, 'h' FROM generate_series(1, 1500) g;
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname)
              SELECT '2019-07-02 00:00+00'::timestamptz + g * interval '1 minute', 'd' || g, 'h' FROM generate_series(1, 1700) g;
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname)
              SELECT now() - interval '200 days' + g * interval '1 second', 'o' || g, 'h' FROM generate_series(1, 300) g;
         INSERT INTO event_audit_log (event_timestamp, event_id, hostname)
              SELECT now() - interval '10 days' + g * interval '1 second', 'n' || g, 'h' FROM generate_series(1, 400) g;
         INSERT INTO config_audit_log (changed_at, changed_by, operation, table_name)
              SELECT now() - interval '400 days', 'old', 'CREATE', 'alert_rules' FROM generate_series(1, 2100);
         INSERT INTO config_audit_log (changed_at, changed_by, operation, table_name)
              SELECT now() - interval '5 days', 'new', 'CREATE', 'alert_rules' FROM generate_series(1, 30);" >/dev/null 2>&1
    assert_eq "2000" "$(sql "SELECT count(*) FROM event_audit_log_default WHERE event_timestamp < now() - interval '90 days'")" \
        "seeded old rows in DEFAULT"
    "${RCLI[@]}" del mutt:dlq:alerter mutt:dlq:moog mutt:dlq:dead mutt:retention:last_run >/dev/null
    local old new
    old=$(date -u -d '-40 days' +%Y-%m-%dT%H:%M:%S.000Z)
    new=$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%S.000Z)
    "${RCLI[@]}" lpush mutt:dlq:alerter "{\"hostname\":\"old1\",\"_failed_at\":\"$old\"}" \
        "{\"hostname\":\"new1\",\"_failed_at\":\"$new\"}" "{\"hostname\":\"old2\",\"_failed_at\":\"$old\"}" \
        '{"hostname":"undated"}' 'not json' >/dev/null
    "${RCLI[@]}" lpush mutt:dlq:moog "{\"hostname\":\"old3\",\"_failed_at\":\"$old\"}" >/dev/null
    "${RCLI[@]}" lpush mutt:dlq:dead "{\"hostname\":\"new2\",\"_failed_at\":\"$new\"}" \
        "{\"hostname\":\"old4\",\"_failed_at\":\"$old\"}" >/dev/null
}

state_counts() {
    sql "SELECT count(*) FROM event_audit_log; SELECT count(*) FROM event_audit_log_default;
         SELECT count(*) FROM config_audit_log; SELECT count(*) FROM pg_inherits WHERE inhparent = 'event_audit_log'::regclass" | tr '\n' ' '
    "${RCLI[@]}" llen mutt:dlq:alerter
    "${RCLI[@]}" llen mutt:dlq:moog
    "${RCLI[@]}" llen mutt:dlq:dead
    "${RCLI[@]}" exists mutt:retention:last_run
}

test_retention_dry_run_only_counts() {
    seed_retention_data
    local before
    before=$(state_counts)
    cli retention --dry-run
    expect_rc 0 "retention --dry-run"
    assert_contains "$OUT" "would delete config_audit=2100 event_audit=3500"
    assert_contains "$OUT" "partitions to drop: 1"
    assert_contains "$OUT" "dlq=4"
    assert_eq "$before" "$(state_counts)" "a dry run changes nothing"
    # RETENTION_DRY_RUN=true in the config does the same
    RC=0
    OUT=$(RETENTION_DRY_RUN=true "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0
    assert_contains "$OUT" "dry run"
    assert_eq "$before" "$(state_counts)" "RETENTION_DRY_RUN=true changes nothing"
}

test_retention_deletes_old_rows_and_dlq_items_in_batches() {
    seed_retention_data
    RC=0
    OUT=$(RETENTION_BATCH_SIZE=250 "$MUTT_BIN" --config "$CONF" retention 2>&1) || RC=$?
    expect_rc 0 "retention"
    assert_contains "$OUT" "deleted config_audit=2100 event_audit=3500"
    assert_contains "$OUT" "partitions dropped: 1"
    assert_contains "$OUT" "dlq=4"
    assert_eq "400" "$(sql "SELECT count(*) FROM event_audit_log")" "newer event rows stay"
    assert_eq "0" "$(sql "SELECT count(*) FROM event_audit_log WHERE event_timestamp < now() - interval '90 days'")"
    assert_eq "0" "$(sql "SELECT count(*) FROM event_audit_log_default WHERE event_timestamp < now() - interval '90 days'")" \
        "old rows in DEFAULT are deleted (D28)"
    assert_eq "" "$(sql "SELECT to_regclass('event_audit_log_2020_03')")" "the old month partition is dropped"
    assert_eq "30" "$(sql "SELECT count(*) FROM config_audit_log")" "newer config audit rows stay"
    local alerter
    alerter=$("${RCLI[@]}" lrange mutt:dlq:alerter 0 -1)
    assert_eq 3 "$("${RCLI[@]}" llen mutt:dlq:alerter)"
    assert_contains "$alerter" "new1"
    assert_contains "$alerter" "undated" "items without _failed_at are kept"
    assert_contains "$alerter" "not json" "unparseable items are kept"
    assert_not_contains "$alerter" "old1"
    assert_eq 0 "$("${RCLI[@]}" llen mutt:dlq:moog)"
    assert_eq "$("${RCLI[@]}" lrange mutt:dlq:dead 0 -1 | grep -c new2)" 1
    assert_eq 1 "$("${RCLI[@]}" llen mutt:dlq:dead)"
    assert_eq 1 "$("${RCLI[@]}" exists mutt:retention:last_run)" "a live run records its time"
    # partitions ahead exist (current month + 3)
    local m
    m=$(date -u -d "$(date -u +%Y-%m-15) +3 months" +%Y_%m)
    assert_eq "event_audit_log_$m" "$(sql "SELECT to_regclass('event_audit_log_$m')")" "partitions kept ahead"
}

test_retention_refuses_while_another_host_holds_the_lock() {
    "${RCLI[@]}" set mutt:retention:lock other-host PX 60000 >/dev/null
    cli retention
    "${RCLI[@]}" del mutt:retention:lock >/dev/null
    expect_rc 1 "retention while the lock is held"
    assert_contains "$OUT" "another host"
}

test_retention_role_runs_at_start_and_exports_metrics() {
    seed_retention_data
    start_mutt "$CONF" retention
    # eval: the check must run again on every try (a plain "$(...)" argument is expanded once,
    # before the run at start has had time to finish)
    wait_until 20 eval '[ "$("${RCLI[@]}" exists mutt:retention:last_run)" = 1 ]' || t_fail "the role did not run at start"
    assert_eq "400" "$(sql "SELECT count(*) FROM event_audit_log")"
    assert_eq 3 "$("${RCLI[@]}" llen mutt:dlq:alerter)"
    http GET "http://127.0.0.1:$HEALTH_PORT/metrics"
    assert_status 200
    assert_contains "$HTTP_BODY" 'mutt_retention_cleanup_records_deleted_total{type="event_audit"} 3500'
    assert_contains "$HTTP_BODY" 'mutt_retention_cleanup_records_deleted_total{type="config_audit"} 2100'
    assert_contains "$HTTP_BODY" 'mutt_retention_cleanup_records_deleted_total{type="dlq"} 4'
    assert_contains "$HTTP_BODY" 'mutt_retention_policy_days{type="event_audit"} 90'
    assert_contains "$HTTP_BODY" 'mutt_retention_policy_days{type="dlq"} 30'
    assert_contains "$HTTP_BODY" 'mutt_retention_cleanup_last_run_timestamp_seconds 1'
    stop_mutt 0
    # a second start within a day does not run again
    sql "INSERT INTO config_audit_log (changed_at, changed_by, operation, table_name)
         SELECT now() - interval '400 days', 'old', 'CREATE', 'alert_rules' FROM generate_series(1, 5)"
    start_mutt "$CONF" retention
    wait_until 20 grep -q "next run at" "$MUTT_LOG" || t_fail "the role did not check the last run"
    http GET "http://127.0.0.1:$HEALTH_PORT/metrics"
    assert_contains "$HTTP_BODY" 'mutt_retention_cleanup_records_deleted_total{type="config_audit"} 0'
    stop_mutt 0
    assert_eq "35" "$(sql "SELECT count(*) FROM config_audit_log")" "no second run within a day"
}

# --------------------------------------------------------------------- health and send-event
# Fresh ports and pod name for a health test: a mutt left running by an earlier failed test must
# not answer for "nothing running" (a bare `mutt health` asks whatever listens on the ports).
own_ports_config() {
    INGEST_PORT= WEB_PORT= HEALTH_PORT=
    CONF="$E2E_TMP/health-$RANDOM.conf"
    e2e_config "$CONF"
}

test_health_and_send_event_against_a_running_instance() {
    own_ports_config
    cli health
    expect_rc 1 "health with nothing running"
    assert_contains "$OUT" "no answer"
    cli send-event
    expect_rc 1 "send-event with nothing running"

    "${RCLI[@]}" del mutt:ingest_queue >/dev/null
    start_mutt "$CONF" ingest
    RC=0
    OUT=$(MUTT_ROLES=ingest "$MUTT_BIN" --config "$CONF" health 2>&1) || RC=$?
    expect_rc 0 "health of a running instance"
    assert_contains "$OUT" "200 healthy"
    cli send-event --message "hello from the cli test" --host cli-test-host
    expect_rc 0 "send-event"
    assert_contains "$OUT" "accepted"
    local item
    item=$("${RCLI[@]}" lindex mutt:ingest_queue 0)
    assert_contains "$item" '"hostname":"cli-test-host"'
    assert_contains "$item" '"message":"hello from the cli test"'
    RC=0
    OUT=$(INGEST_API_KEY=wrong-key-0123456789abcdef0123456789 "$MUTT_BIN" --config "$CONF" send-event 2>&1) || RC=$?
    expect_rc 1 "send-event with a wrong key"
    assert_contains "$OUT" "401"
    cli send-event --bogus
    expect_rc 2
    stop_mutt 0
}

# `docker run IMAGE --roles=ingest` runs the image's HEALTHCHECK as a bare `mutt health`, which
# must not probe the web port that those roles never open (issue 11, bug 8).
test_health_probes_only_the_listeners_of_the_roles() {
    own_ports_config
    start_mutt "$CONF" ingest
    cli health
    expect_rc 0 "bare health of an ingest-only process"
    assert_contains "$OUT" ":$INGEST_PORT/health: 200 healthy"
    assert_not_contains "$OUT" ":$WEB_PORT/"
    cli health --roles=ingest
    expect_rc 0 "health --roles=ingest"
    cli health --roles ingest,web
    expect_rc 1 "health --roles ingest,web while the web port is closed"
    assert_contains "$OUT" ":$WEB_PORT/health: no answer"
    RC=0
    OUT=$(MUTT_ROLES=web "$MUTT_BIN" --config "$CONF" health 2>&1) || RC=$?
    expect_rc 1 "MUTT_ROLES=web names the closed web port"
    cli health --roles=bogus
    expect_rc 2 "an unknown role"
    stop_mutt 0

    start_mutt "$CONF" alert,forward,remediate
    cli health
    expect_rc 0 "bare health of a worker (health port only)"
    assert_contains "$OUT" ":$HEALTH_PORT/health: 200 healthy"
    assert_not_contains "$OUT" ":$INGEST_PORT/"
    stop_mutt 0
}

# ------------------------------------------------------------------------- check-config, D25
test_check_config_production_reports_violations_and_exits_1() {
    cli check-config
    expect_rc 0 "check-config"
    assert_contains "$OUT" "compliance: not checked"
    cli check-config --environment production
    expect_rc 1 "check-config --environment production on a dev config"
    assert_contains "$OUT" "compliance: SEC_001 critical DB_TLS_ENABLED"
    assert_contains "$OUT" "compliance: SEC_003 critical MOOG_WEBHOOK_URL"
    assert_contains "$OUT" "compliance: SEC_005 critical INGEST_API_KEY"
    assert_not_contains "$OUT" "SEC_002" "loopback Redis is not a violation"
    assert_not_contains "$OUT" "$INGEST_KEY" "no secret printed"
    cli check-config --environment
    expect_rc 2 "--environment without a value"
}

test_production_refuses_to_start_on_a_critical_violation() {
    RC=0
    OUT=$(MUTT_ENV=production timeout 20 "$MUTT_BIN" --config "$CONF" --roles=ingest 2>&1) || RC=$?
    expect_rc 2 "MUTT_ENV=production start-up"
    assert_contains "$OUT" "compliance: SEC_001 critical"
    assert_contains "$OUT" "refusing to start"
}

t_run "unknown command and bad usage exit 2" test_unknown_command_and_bad_usage_exit_2
t_run "unreachable Redis is a runtime failure (1)" test_unreachable_redis_is_a_runtime_failure
t_run "config list/get show effective values and sources" test_config_list_get_show_effective_values_and_sources
t_run "config set validates, writes, publishes and audits" test_config_set_validates_writes_publishes_and_audits
t_run "dlq list and replay (atomic moves, _origin, audit)" test_dlq_list_and_replay_move_items_atomically_and_audit
t_run "backup -> wipe -> restore round trip is equal" test_backup_wipe_restore_round_trip_is_equal
t_run "restore refuses a newer schema and foreign files" test_restore_refuses_newer_schema_and_foreign_files
t_run "backup never follows or clobbers its temp path (O_EXCL)" test_backup_never_follows_or_clobbers_what_sits_at_its_temp_path
t_run "restore refuses an archive beyond --max-bytes" test_restore_refuses_an_archive_expanding_beyond_max_bytes
t_run "retention dry run only counts" test_retention_dry_run_only_counts
t_run "retention deletes old rows and DLQ items in batches" test_retention_deletes_old_rows_and_dlq_items_in_batches
t_run "retention refuses while another host holds the lock" test_retention_refuses_while_another_host_holds_the_lock
t_run "retention role runs at start and exports metrics" test_retention_role_runs_at_start_and_exports_metrics
t_run "health and send-event against a running instance" test_health_and_send_event_against_a_running_instance
t_run "health probes only the listeners of the roles" test_health_probes_only_the_listeners_of_the_roles
t_run "check-config --environment production exits 1 on critical" test_check_config_production_reports_violations_and_exits_1
t_run "MUTT_ENV=production refuses to start on a critical violation" test_production_refuses_to_start_on_a_critical_violation
t_summary
