#!/usr/bin/env bash
# Makes sure podman has debian:bookworm-slim, the base of conf/Dockerfile, without an image
# registry: when it is missing, builds a minimal Debian 12 root file system with
# `debootstrap --variant=minbase` from the mirror this host's apt already uses, and imports it.
# Podman keeps it, so later runs find it at once. Needs root, podman and debootstrap.
#   base-image.sh [PODMAN ARGS...]   (e.g. --runtime runc --cgroup-manager cgroupfs)
set -euo pipefail
IMAGE=localhost/debian:bookworm-slim
podman "$@" image exists "$IMAGE" && exit 0
command -v debootstrap >/dev/null 2>&1 || { echo "base-image: debootstrap is not installed" >&2; exit 3; }

# The first Debian mirror of this host's apt sources (deb822 .sources files or sources.list).
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}')
[ -n "$mirror" ] || mirror=$(grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$2 !~ /security/ {print $2; exit}')
[ -n "$mirror" ] || { echo "base-image: no Debian mirror in /etc/apt" >&2; exit 3; }

root=$(mktemp -d /tmp/mutt-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap --variant=minbase bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1 ||
    { tail -n 20 "$root/debootstrap.log" >&2; exit 1; }
# what the slim image leaves out: package lists and caches
rm -rf "$root/fs/var/lib/apt/lists/"* "$root/fs/var/cache/apt/"*.bin "$root/fs/var/cache/apt/archives/"*.deb
tar -C "$root/fs" -c . | podman "$@" import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "base-image: imported $IMAGE" >&2
