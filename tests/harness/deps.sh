#!/usr/bin/env bash
# Installs (Debian 12, apt) only the packages MUTT needs to build, test and run that are missing.
# One dpkg-query for the whole list, so the common case (everything there) takes milliseconds;
# `apt-get update` only runs when something has to be installed. wrk is not here: bench/ installs it.
# The list is what a minimal Debian 12 (debootstrap --variant=minbase) lacks for `make test`, so a
# fresh machine needs only `apt-get install -y git make` first (README).
set -euo pipefail

PKGS=(gcc make pkg-config libuv1-dev libhiredis-dev libpq-dev libh2o-dev libcurl4-openssl-dev
      libcmocka-dev libjansson-dev libpcre2-dev libssl-dev libarchive-dev zlib1g-dev libsnmp-dev redis-server postgresql
      curl ca-certificates procps jq
      git iproute2 python3   # git: the build's revision; ss: port owners; python3: e2e helpers
      chromium nodejs    # browser test only (tests/e2e/test_web_ui.sh, D30)
      snmptrapd snmp     # real snmptrapd and senders in tests/e2e/test_integrations.sh, test_snmp_listen.sh
      prometheus)        # promtool check rules in tests/e2e/test_packaging.sh
# Debian's nodejs ships npm separately; NodeSource's bundles it (and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
# Extra packages a caller wants too (bench/ passes wrk): `deps.sh wrk`.
PKGS+=("$@")

missing=()
# dpkg-query prints a line for each known package; unknown ones only reach stderr.
declare -A have=()
while read -r name status; do
    [ "$status" = installed ] && have[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
for p in "${PKGS[@]}"; do
    [ -n "${have[$p]:-}" ] || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: not root; run this first:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps: installed ${missing[*]}" >&2
