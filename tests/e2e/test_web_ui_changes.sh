#!/usr/bin/env bash
# Browser test of the dashboard's Changes tab (issue 17): alice files a change that needs
# approval through the API, bob approves it in headless Chromium (tests/e2e/browser/changes.mjs),
# and the value is then in Redis with APPROVE audited under bob's name. Needs what
# test_web_ui.sh needs; skips (exit 77, reason no-browser) when node or chromium is missing.
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
export PGPASSWORD=$MUTT_TEST_PG_PASS
sql() { psql -X -qtA -v ON_ERROR_STOP=1 -h "$MUTT_TEST_PG_HOST" -p "$MUTT_TEST_PG_PORT" -U "$MUTT_TEST_PG_USER" "$MUTT_TEST_PG_DB" -c "$1"; }

ALICE_KEY=alice-key-0123456789abcdef0123456789abcdef
BOB_KEY=bob-key-0123456789abcdef0123456789abcdef01
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
USERS="$E2E_TMP/users"
printf 'alice admin %s\nbob approver %s\n' "$(sha "$ALICE_KEY")" "$(sha "$BOB_KEY")" >"$USERS"
CONF="$E2E_TMP/mutt.conf"
for _ in $(seq 1 50); do
    WEB_PORT=$(free_port)
    [ "$WEB_PORT" -lt 32768 ] && break
done
e2e_config "$CONF" "WEBUI_USERS_FILE=$USERS" "APPROVAL_REQUIRED=config"
redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" del mutt:config:moog_rate_limit >/dev/null
start_mutt "$CONF" web
WEB="http://127.0.0.1:$WEB_PORT"

test_changes_tab_approves_a_request() {
    http PUT "$WEB/api/v2/config/moog_rate_limit" -H "X-API-KEY: $ALICE_KEY" -H 'Content-Type: application/json' \
        -H 'X-Change-Impact: forwarder rate' --data-binary '{"value":71,"reason":"browser approval"}'
    assert_status 202
    local id
    id=$(echo "$HTTP_BODY" | jq -r .id)
    CHROMIUM_BIN=$CHROMIUM_BIN timeout 120 node "$BROWSER_DIR/changes.mjs" "$WEB" "$BOB_KEY" "$id" "$ARTIFACTS"
    assert_eq 71 "$(redis-cli -h "$MUTT_TEST_REDIS_HOST" -p "$MUTT_TEST_REDIS_PORT" get mutt:config:moog_rate_limit)"
    assert_eq "webui_api:bob|approved in the browser" \
        "$(sql "SELECT changed_by || '|' || reason FROM config_audit_log WHERE operation = 'APPROVE' AND record_id = $id")"
}

t_run "Changes tab: an approver approves another user's request in the browser" test_changes_tab_approves_a_request
stop_mutt
t_summary
