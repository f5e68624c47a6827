#!/usr/bin/env bash
# Include-direction check: every `#include "mutt/X.h"` in src/ and include/mutt/ must point down
# (or sideways within a tier). The tiers, bottom to top (README "Architecture"):
#   base    src/base/     error, log, random, backoff, redact, urlpath: needs nothing of ours
#   io      src/io/       Redis, PostgreSQL, HTTP client/server, relq
#   core    src/core/     config, dynconfig, secrets, metrics, pod, migrate, adapter options
#   domain  src/domain/   pure logic: includes base and domain headers only
#   stages  src/stages/ src/web/   each stage includes no other stage's header (they meet in Redis)
#   cli     src/cli/ (and src/cli_relay.c until it moves there)
#   app     src/app/      main, the orchestrator, the stage table, health aggregation
# A header belongs to the tier of its module: the source file named like it (X.c), else the
# files named X_*.c (ratelimit.h -> ratelimit_lua.c), else the table below.
# Known violations that are being removed are listed in tools/layers.allow, one per line with a
# comment saying why it is there; an entry that no longer matches is reported so it gets deleted.
# Usage: tools/check_layers.sh [repo root]   (exit 0 clean, 1 violations, 2 cannot check)
set -u
cd "${1:-$(dirname "$0")/..}" || exit 2
ALLOW=tools/layers.allow

# Headers with no source file of their own name.
declare -A HEADER_TIER=(
    [ctx]=core      # the stage interface and the process context handed to stages
    [version]=base  # a constant
    [http]=io       # implemented by io/http_server.c
    [web]=stages    # the web stage (src/web/api*.c)
    [ingest_intake]=stages # implemented by stages/ingest_intake.c (the listeners' entry to its group commit)
)
declare -A HEADER_GROUP=([web]=web)

declare -A RANK=([base]=0 [io]=1 [core]=2 [domain]=3 [stages]=4 [cli]=5 [app]=6)

# Sets TIER to the tier of a source path (src/...), "" when it is outside the tiers.
path_tier() {
    case "$1" in
    src/base/*) TIER=base ;; src/io/*) TIER=io ;; src/core/*) TIER=core ;;
    src/domain/*) TIER=domain ;; src/stages/* | src/web/*) TIER=stages ;;
    src/cli/* | src/cli_relay.c) TIER=cli ;; src/app/* | src/main.c) TIER=app ;;
    *) TIER="" ;;
    esac
}

# Sets GROUP to the stage a stages-tier path belongs to: src/web/* is "web",
# src/stages/alert_audit.c is "alert".
path_group() {
    case "$1" in
    src/web/*) GROUP=web ;;
    src/stages/*) GROUP=${1##*/}; GROUP=${GROUP%%[_.]*} ;;
    *) GROUP="" ;;
    esac
}

# Tier and stage of every public header, from its owning source file.
SOURCES=$(find src -name '*.c' | sort)
declare -A HT HG
for hf in include/mutt/*.h; do
    h=${hf##*/}
    h=${h%.h}
    if [[ -n ${HEADER_TIER[$h]+x} ]]; then
        HT[$h]=${HEADER_TIER[$h]}
        HG[$h]=${HEADER_GROUP[$h]-}
        continue
    fi
    owner=$(grep -m1 -E "/$h\.c$" <<<"$SOURCES" || grep -m1 -E "/${h}_[^/]*\.c$" <<<"$SOURCES")
    [[ -n $owner ]] || continue
    path_tier "$owner"
    path_group "$owner"
    HT[$h]=$TIER
    HG[$h]=$GROUP
done

declare -A ALLOWED ALLOW_USED
if [[ -f $ALLOW ]]; then
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        if [[ ! $line =~ ^([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]+#[[:space:]]*[^[:space:]] ]]; then
            echo "check-layers: $ALLOW:$n: want \"<file> <header> # why\", got: $line" >&2
            exit 2
        fi
        ALLOWED["${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"]=$n
    done <"$ALLOW"
fi

bad=0
unknown=0
while IFS= read -r f; do
    if [[ $f == include/mutt/* ]]; then
        h=${f##*/}
        h=${h%.h}
        ft=${HT[$h]-}
        fg=${HG[$h]-}
    else
        path_tier "$f"
        path_group "$f"
        ft=$TIER
        fg=$GROUP
    fi
    [[ -n $ft ]] || continue
    fr=${RANK[$ft]}
    while IFS= read -r h; do
        [[ -n $h ]] || continue
        ht=${HT[$h]-}
        if [[ -z $ht ]]; then
            echo "check-layers: $f includes mutt/$h.h, whose tier is unknown (no src/**/$h.c): add it to HEADER_TIER in $0" >&2
            unknown=1
            continue
        fi
        why=""
        if ((RANK[$ht] > fr)); then
            why="$ft includes $ht (a higher tier)"
        elif [[ $ft == domain && $ht != base && $ht != domain ]]; then
            why="domain is pure: it includes base and domain only, not $ht"
        elif [[ $ft == stages && $ht == stages ]]; then
            hg=${HG[$h]-}
            [[ -n $fg && -n $hg && $fg != "$hg" ]] && why="stage $fg includes stage $hg (stages meet only in Redis)"
        fi
        [[ -n $why ]] || continue
        key="$f mutt/$h.h"
        if [[ -n ${ALLOWED[$key]+x} ]]; then
            ALLOW_USED[$key]=1
            continue
        fi
        echo "check-layers: $f: #include \"mutt/$h.h\": $why"
        bad=1
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"mutt\/\([A-Za-z0-9_]*\)\.h".*/\1/p' "$f")
done < <(find src include/mutt -name '*.[ch]' | sort)

for key in "${!ALLOWED[@]}"; do
    [[ -n ${ALLOW_USED[$key]+x} ]] ||
        echo "check-layers: $ALLOW:${ALLOWED[$key]}: \"$key\" is no longer a violation: delete the entry" >&2
done

if ((bad || unknown)); then
    ((bad)) && echo "check-layers: includes must point down the tiers (README \"Architecture\"); see $0" >&2
    exit $((unknown ? 2 : 1))
fi
echo "check-layers: ok"
