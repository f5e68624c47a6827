#!/usr/bin/env bash
# The podman that tests/e2e/test_image.sh hands to podman-compose (--podman-path). Debian 12's
# podman-compose 1.0.3 adds "--net <project>_default --network-alias <service>" to every container,
# even one with network_mode: host, and podman refuses a second network beside host. For a
# container on the host's network this drops those two options; anything else passes unchanged.
prev=
host=0
for a in "$@"; do
    [ "$prev" = --network ] && [ "$a" = host ] && host=1
    prev=$a
done
[ "$host" = 1 ] || exec podman "$@"
args=()
drop=0
for a in "$@"; do
    if [ "$drop" = 1 ]; then
        drop=0
        continue
    fi
    case "$a" in --net | --network-alias) drop=1 ;; *) args+=("$a") ;; esac
done
exec podman "${args[@]}"
