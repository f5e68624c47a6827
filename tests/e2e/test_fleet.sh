#!/usr/bin/env bash
# The fleet drills (tests/fleet/fleet.sh, issue 14 item 4, CONTRACT D54) at the `make test` size:
# 200 events/s, HEARTBEAT_EXPIRY=5, JANITOR_INTERVAL=1, a 10 s partition. Each "host" is a network
# namespace of its own (Redis primary + two replicas + three sentinels, PostgreSQL primary +
# streaming standby, an ingest,web front and two workers); the four drills run one at a time and
# each must keep every acknowledged event audited exactly once and every forwarding one delivered.
# The harness's Redis and PostgreSQL are not used. Skips (no-netns, tests/skips.list) only when
# this machine cannot create network namespaces; `make test-fleet` is the 2,000 events/s, 30 s run.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FLEET_RATE=200 FLEET_PARTITION_S=10 FLEET_HB_EXPIRY=5 FLEET_JANITOR=1 FLEET_SETTLE_S=60 \
    exec bash "$ROOT/tests/fleet/fleet.sh"
