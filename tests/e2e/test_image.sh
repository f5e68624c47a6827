#!/usr/bin/env bash
# The container image as a tested artefact (issue 11, bug 8): builds conf/Dockerfile with podman,
# runs README's `docker run` shapes (--roles=ingest,web; --roles=alert,forward,remediate;
# --roles=all) against the harness's Redis and PostgreSQL, and checks in each that the image's
# HEALTHCHECK command exits 0, that the process runs as uid 10001, and (front + worker, then all)
# that an event reaches the webhook sink. Then brings conf/compose.yaml up with podman-compose
# (Redis and PostgreSQL from local stand-in images, tests/image/) and sends an event through it.
# The base image debian:bookworm-slim is made locally when missing (tests/harness/base-image.sh)
# and kept by podman, as are the build's layers, so repeated runs are quick.
# Skips (D60): no-podman when podman cannot run containers here, no-base-image when the base
# image is missing and debootstrap cannot make it; no-podman-compose for the compose part.
# Environment: MUTT_PODMAN_ARGS (podman's global flags; default "--runtime runc --cgroup-manager
# cgroupfs" when runc is installed), MUTT_PODMAN_LIMITS (run/build flags; default nofile and
# nproc ulimits of 4096, which unprivileged sandboxes need).
. "$(dirname "$0")/lib.sh"

skip_all() {
    echo "skip-reason: $1: $2"
    exit "$E2E_SKIP_RC"
}
command -v podman >/dev/null 2>&1 || skip_all no-podman "podman is not installed (apt-get install podman runc podman-compose debootstrap)"
if [ -n "${MUTT_PODMAN_ARGS+set}" ]; then
    read -ra PODMAN_ARGS <<<"$MUTT_PODMAN_ARGS"
elif command -v runc >/dev/null 2>&1; then
    PODMAN_ARGS=(--runtime runc --cgroup-manager cgroupfs)
else
    PODMAN_ARGS=(--cgroup-manager cgroupfs)
fi
read -ra LIMITS <<<"${MUTT_PODMAN_LIMITS:---ulimit nofile=4096:4096 --ulimit nproc=4096:4096}"
pm() { podman "${PODMAN_ARGS[@]}" "$@"; }

[ "$(id -u)" = 0 ] || skip_all no-podman "the image test runs rootful podman (and debootstrap): not root"
rc=0
bash "$E2E_ROOT/tests/harness/base-image.sh" "${PODMAN_ARGS[@]}" || rc=$?
[ $rc -ne 3 ] || skip_all no-base-image "debian:bookworm-slim is missing and debootstrap cannot make it"
[ $rc -eq 0 ] || { echo "FAIL: could not make the base image debian:bookworm-slim"; exit 1; }
probe=$(pm run --rm "${LIMITS[@]}" --network host localhost/debian:bookworm-slim true 2>&1) ||
    skip_all no-podman "podman cannot run a container here: ${probe:0:300}"

IMAGE=localhost/mutt:e2e-$$ # one tag per run: concurrent runs must not swap images; layers are shared
CTRS="$E2E_TMP/containers"
: >"$CTRS"
COMPOSE_UP="mutt-e2e-$$" # the compose project
img_cleanup() {
    local c
    # compose's containers by label: `down` would need the variables the test exported
    pm ps -a -q --filter "label=io.podman.compose.project=$COMPOSE_UP" | while read -r c; do
        pm rm -f -t 5 "$c" >/dev/null 2>&1
    done
    pm network rm -f "${COMPOSE_UP}_default" >/dev/null 2>&1
    while read -r c; do
        [ -n "$c" ] && pm rm -f -t 5 "$c" >/dev/null 2>&1
    done <"$CTRS"
    pm rmi "$IMAGE" >/dev/null 2>&1 # the tag; the layers stay as the next build's cache
    e2e_cleanup
}
trap img_cleanup EXIT
# podman-compose with this host's podman flags; see tests/image/podman-for-compose.sh for --podman-path
compose() {
    (cd "$E2E_ROOT" && podman-compose --podman-path "$E2E_ROOT/tests/image/podman-for-compose.sh" \
        --podman-args "${PODMAN_ARGS[*]}" --podman-run-args "${LIMITS[*]}" -p "$COMPOSE_UP" -f conf/compose.yaml "$@")
}
compose_down() {
    compose down
    pm network rm -f "${COMPOSE_UP}_default" >/dev/null 2>&1 || true # made by podman-compose, unused
}

echo "e2e: building $IMAGE from conf/Dockerfile (the first build compiles mutt)"
pm build --format docker --network host "${LIMITS[@]}" -f "$E2E_ROOT/conf/Dockerfile" \
    --build-arg GIT_REV="$(git -C "$E2E_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    -t "$IMAGE" "$E2E_ROOT" >"$E2E_TMP/build.log" 2>&1 ||
    { tail -n 40 "$E2E_TMP/build.log"; echo "FAIL: podman build -f conf/Dockerfile"; exit 1; }

# conf/Dockerfile's base for the stand-ins too; each tagged by its files' hash, so built once.
standin() { # standin NAME -> image reference
    local name=$1 hash tag
    hash=$(cat "$E2E_ROOT/tests/image/$name.Containerfile" "$E2E_ROOT/tests/image/pg-entrypoint.sh" | sha256sum | cut -c1-12)
    tag="localhost/mutt-test-$name:$hash"
    pm image exists "$tag" || pm build --network host "${LIMITS[@]}" -f "$E2E_ROOT/tests/image/$name.Containerfile" \
        -t "$tag" "$E2E_ROOT" >"$E2E_TMP/build-$name.log" 2>&1 ||
        { tail -n 30 "$E2E_TMP/build-$name.log" >&2; return 1; }
    echo "$tag"
}

CONF="$E2E_TMP/mutt.conf"
e2e_config "$CONF"
start_sink
API_KEY_ENV=(-e "INGEST_API_KEY=$INGEST_KEY" -e "WEBUI_API_KEY=$WEB_KEY")

# run_ctr ROLES: README's `docker run -d` with the harness's services (host network: the harness
# listens on loopback) on fresh ports; sets CTR, C_INGEST, C_WEB, C_HEALTH.
run_ctr() {
    CTR="mutt-e2e-$$-${1//,/-}" # t_run's subshells cannot share a counter
    C_INGEST=$(free_port) C_WEB=$(free_port) C_HEALTH=$(free_port)
    echo "$CTR" >>"$CTRS"
    pm run -d --name "$CTR" "${LIMITS[@]}" --network host \
        -e REDIS_HOST="$MUTT_TEST_REDIS_HOST" -e REDIS_PORT="$MUTT_TEST_REDIS_PORT" \
        -e DB_HOST="$MUTT_TEST_PG_HOST" -e DB_PORT="$MUTT_TEST_PG_PORT" -e DB_NAME="$MUTT_TEST_PG_DB" \
        -e DB_USER="$MUTT_TEST_PG_USER" -e DB_PASS_CURRENT="$MUTT_TEST_PG_PASS" "${API_KEY_ENV[@]}" \
        -e MOOG_WEBHOOK_URL="$SINK_URL" -e MOOG_API_KEY=e2e-moog-key -e MIGRATE_ON_START=true \
        -e INGESTOR_PORT="$C_INGEST" -e WEBUI_PORT="$C_WEB" -e HEALTH_PORT="$C_HEALTH" -e POD_NAME="$CTR" \
        "$IMAGE" --roles="$1" >/dev/null || t_fail "podman run --roles=$1"
}

# The image's own HEALTHCHECK command (`mutt health`), as the engine runs it; exit 0 = healthy.
healthy() { pm healthcheck run "$1" >/dev/null 2>&1; }
expect_healthy() {
    wait_until 90 healthy "$1" || {
        pm logs "$1" 2>&1 | tail -n 30
        pm exec "$1" mutt health || true
        t_fail "HEALTHCHECK of $1 did not pass within 90 s"
    }
}
expect_uid_10001() {
    local pid uid
    pid=$(pm inspect -f '{{.State.Pid}}' "$1")
    uid=$(awk '/^Uid:/{print $2}' "/proc/$pid/status")
    assert_eq 10001 "$uid" "uid of the mutt process in $1"
}
stop_ctr() { # SIGTERM drain, then exit status 0
    pm stop -t 30 "$1" >/dev/null
    assert_eq 0 "$(pm inspect -f '{{.State.ExitCode}}' "$1")" "exit status of $1 after stop"
}
post_rule() {
    http POST "http://127.0.0.1:$1/api/v1/rules" -H "X-API-KEY: $WEB_KEY" -H 'Content-Type: application/json' \
        -d "{\"match_string\":\"$2\",\"prod_handling\":\"Page_and_ticket\",\"dev_handling\":\"Ticket_only\",\"team_assignment\":\"NetOps\",\"priority\":5,\"reason\":\"image test\"}"
    [ "$HTTP_STATUS" != 503 ] # the web stage may still be starting: try again
}
add_rule() { # add_rule WEB_PORT MATCH
    wait_until 30 post_rule "$1" "$2" || true
    assert_status 201 "rule $2"
}
send_and_expect_at_sink() { # send_and_expect_at_sink INGEST_PORT HOSTNAME MATCH
    http POST "http://127.0.0.1:$1/api/v2/ingest" -H "X-API-KEY: $INGEST_KEY" -H 'Content-Type: application/json' \
        -d "{\"timestamp\":\"2026-01-01T00:00:00Z\",\"hostname\":\"$2\",\"message\":\"$3 on port 1\",\"syslog_severity\":2}"
    assert_status 200 "ingest"
    wait_until 60 grep -q "$2" "$SINK_OUT" || t_fail "no alert for $2 at the sink within 60 s"
}

test_readme_docker_run_lines_are_the_tested_ones() {
    local r runs
    # README's docker run commands, continuation lines joined
    runs=$(sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$E2E_ROOT/README.md" | grep -E '^docker run ')
    for r in ingest,web alert,forward,remediate all; do
        grep -qE -- "--roles=$r( |\$)" <<<"$runs" || t_fail "README has no docker run line with --roles=$r"
    done
    assert_eq "10001:10001" "$(pm image inspect -f '{{.Config.User}}' "$IMAGE")" "USER of the image"
    assert_contains "$(pm image inspect -f '{{.Config.Healthcheck.Test}}' "$IMAGE")" "mutt health" "HEALTHCHECK of the image"
}

test_front_and_worker_containers_deliver_an_event() {
    run_ctr ingest,web
    local front=$CTR f_ingest=$C_INGEST f_web=$C_WEB
    expect_healthy "$front"
    expect_uid_10001 "$front"
    add_rule "$f_web" IMGFRONT
    run_ctr alert,forward,remediate
    local worker=$CTR
    expect_healthy "$worker"
    expect_uid_10001 "$worker"
    send_and_expect_at_sink "$f_ingest" "img-front-$$" "IMGFRONT"
    stop_ctr "$front"
    stop_ctr "$worker"
}

test_all_roles_container_delivers_an_event() {
    run_ctr all
    expect_healthy "$CTR"
    expect_uid_10001 "$CTR"
    add_rule "$C_WEB" IMGALL
    send_and_expect_at_sink "$C_INGEST" "img-all-$$" "IMGALL"
    stop_ctr "$CTR"
}

test_compose_file_comes_up_and_delivers_an_event() {
    command -v podman-compose >/dev/null 2>&1 || t_skip no-podman-compose "podman-compose is not installed"
    local redis_img pg_img project=$COMPOSE_UP c
    redis_img=$(standin redis) || t_fail "building the Redis stand-in image"
    pg_img=$(standin postgres) || t_fail "building the PostgreSQL stand-in image"
    export MUTT_IMAGE=$IMAGE MUTT_REDIS_IMAGE=$redis_img MUTT_PG_IMAGE=$pg_img MUTT_DB_PASSWORD=e2e-compose-pw-$$ \
        MUTT_REDIS_PORT=$(free_port) MUTT_PG_PORT=$(free_port) MUTT_INGEST_PORT=$(free_port) MUTT_WEB_PORT=$(free_port) \
        MUTT_FRONT_HEALTH_PORT=$(free_port) MUTT_WORKER_HEALTH_PORT=$(free_port) MUTT_BIND_ADDR=127.0.0.1 \
        INGEST_API_KEY=$INGEST_KEY WEBUI_API_KEY=$WEB_KEY MOOG_WEBHOOK_URL=$SINK_URL MOOG_API_KEY=e2e-moog-key
    compose up -d >"$E2E_TMP/compose.log" 2>&1 || { tail -n 30 "$E2E_TMP/compose.log"; t_fail "podman-compose up"; }
    # podman-compose 1.0.3 exits 0 even when a container could not be created: check each
    for c in redis postgres front worker; do
        pm container exists "${project}_${c}_1" || { tail -n 30 "$E2E_TMP/compose.log"; t_fail "compose made no $c container"; }
    done
    for c in front worker; do
        expect_healthy "${project}_${c}_1"
        expect_uid_10001 "${project}_${c}_1"
    done
    add_rule "$MUTT_WEB_PORT" IMGCOMPOSE
    send_and_expect_at_sink "$MUTT_INGEST_PORT" "img-compose-$$" "IMGCOMPOSE"
    compose_down >>"$E2E_TMP/compose.log" 2>&1 || t_fail "podman-compose down"
    pm container exists "${project}_front_1" && t_fail "podman-compose down left the front container"
    true
}

t_run "README's docker run lines; image USER and HEALTHCHECK" test_readme_docker_run_lines_are_the_tested_ones
t_run "front (ingest,web) + worker (alert,forward,remediate): healthy, uid 10001, event to the sink" \
    test_front_and_worker_containers_deliver_an_event
t_run "--roles=all: healthy, uid 10001, event to the sink" test_all_roles_container_delivers_an_event
t_run "conf/compose.yaml with podman-compose: healthy front and worker, event to the sink" \
    test_compose_file_comes_up_and_delivers_an_event
t_summary
