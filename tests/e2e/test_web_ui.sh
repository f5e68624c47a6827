#!/usr/bin/env bash
# Browser test of the embedded dashboard (issue 6, D30): headless Chromium from Debian
# (/usr/bin/chromium) driven by playwright-core from npm (pinned by tests/e2e/browser's lockfile;
# no browser download). Logs in with the key, tests a rule over a seeded dry-run sample (Test
# button), creates a rule and sees it in the table and the
# audit viewer, changes a config value with a reason, creates and ends a maintenance window, renders at 1280x800 and phone width;
# screenshots in tests/e2e/artifacts/. Needs: Redis + PostgreSQL (services.sh), MUTT_BIN, node,
# npm (first run: `npm ci`), chromium. Skips (exit 77, reason no-browser) when node or chromium is missing.
. "$(dirname "$0")/lib.sh"

BROWSER_DIR="$E2E_ROOT/tests/e2e/browser"
ARTIFACTS="$E2E_ROOT/tests/e2e/artifacts"
CHROMIUM_BIN=${CHROMIUM_BIN:-/usr/bin/chromium}
if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ ! -x "$CHROMIUM_BIN" ]; then
    echo "skip-reason: no-browser: the browser test needs node, npm and $CHROMIUM_BIN (apt-get install nodejs npm chromium)"
    exit 77
fi
if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
    (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund >/dev/null 2>&1) || { echo "npm ci failed in $BROWSER_DIR" >&2; exit 1; }
fi

CONF="$E2E_TMP/mutt.conf"
for _ in $(seq 1 50); do
    WEB_PORT=$(free_port)
    [ "$WEB_PORT" -lt 32768 ] && break
done
e2e_config "$CONF" METRICS_CACHE_TTL=0
# The harness gives every script fresh services; when run by hand twice, start empty anyway.
redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" flushdb >/dev/null
PGPASSWORD=$MUTT_TEST_PG_PASS psql -qtA -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB" \
    -c "DO \$\$ BEGIN IF to_regclass('config_audit_log') IS NOT NULL THEN TRUNCATE config_audit_log, alert_rules RESTART IDENTITY; END IF; END \$\$" >/dev/null
# the dry-run sample (issue 16): three recent events, two of them the Test button's rule catches
redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" LPUSH mutt:sample_events \
    '{"hostname":"web1","message":"browser-sample one"}' '{"hostname":"web2","message":"something else"}' \
    '{"hostname":"web3","message":"browser-sample two"}' >/dev/null
start_mutt "$CONF" web
wait_until 15 eval 'http GET "http://127.0.0.1:$WEB_PORT/api/v1/rules"; [ "$HTTP_STATUS" = 401 ]' ||
    { echo "web routes did not appear within 15 s" >&2; exit 1; }

test_dashboard_in_headless_chromium() {
    CHROMIUM_BIN=$CHROMIUM_BIN timeout 120 node "$BROWSER_DIR/dashboard.mjs" "http://127.0.0.1:$WEB_PORT" "$WEB_KEY" "$ARTIFACTS"
    local n
    n=$(PGPASSWORD=$MUTT_TEST_PG_PASS psql -qtA -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" \
        "$MUTT_TEST_PG_DB" -c "SELECT count(*) FROM config_audit_log WHERE table_name='dynamic_config' AND record_key='unhandled_threshold' AND reason='browser tuning'")
    assert_eq 1 "$n" "the config change made in the browser is audited with its reason"
    n=$(PGPASSWORD=$MUTT_TEST_PG_PASS psql -qtA -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" \
        "$MUTT_TEST_PG_DB" -c "SELECT string_agg(operation || ':' || COALESCE(reason, ''), ',' ORDER BY id) FROM config_audit_log
                               WHERE table_name='maintenance_windows'")
    assert_eq "CREATE:browser maintenance,DELETE:browser end" "$n" "the window made and ended in the browser is audited"
}

t_run "dashboard in headless Chromium (login, rule, audit, config, phone width)" test_dashboard_in_headless_chromium

# D63: the Trace tab reads what the stages write; the hashes are seeded here (this mutt runs web only).
test_trace_tab_in_headless_chromium() {
    local r="redis-cli -h $MUTT_TEST_REDIS_HOST -p $MUTT_TEST_REDIS_PORT" id1=11111111-2222-4333-8444-555555555555
    local id2=11111111-2222-4333-8444-666666666666
    $r hset "mutt:lineage:$id1" c browser-cid 1767225600000:a '{"pod":"browser-pod","queue":"mutt:ingest_queue"}'         1767225600001:h '{"rule_id":1,"handling":"Page_only","team":"NetOps","forwarded":true}'         1767225600002:s '{"attempt":1,"status":200,"latency_ms":3}' >/dev/null
    $r hset "mutt:lineage:$id2" c browser-cid 1767225601000:a '{"pod":"browser-pod"}' 1767225601001:n '{}' >/dev/null
    $r sadd mutt:lineage:c:browser-cid "$id1" "$id2" >/dev/null
    CHROMIUM_BIN=$CHROMIUM_BIN timeout 120 node "$BROWSER_DIR/trace.mjs" "http://127.0.0.1:$WEB_PORT" "$WEB_KEY" "$ARTIFACTS" \
        "$id1" browser-cid
}
t_run "trace tab in headless Chromium (event id, correlation id, unknown id)" test_trace_tab_in_headless_chromium
stop_mutt
t_summary
