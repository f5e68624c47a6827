#!/usr/bin/env bash
# Stages meet only in Redis (README, issue 12): no stage includes another stage's header. A stage
# is src/stages/<stage>*.c|h (ingest, alert, forward, remediate, retention) or src/web/*; its
# headers are include/mutt/<stage>.h and its own *_internal.h. A stage may include its own
# header; the stage table (stages.c, wherever it lives) is the one file that includes them all.
# Shared key names and scripts live in include/mutt/keys.h and redis_scripts.h.
# Exits 1 naming each offending file and include; run from the repo root (make test does).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STAGES="ingest alert forward remediate retention web"

stage_of_file() { # src path -> stage name, or nothing
    local f=$1 base
    case "$f" in src/web/*) echo web; return ;; esac
    case "$f" in src/stages/*) ;; *) return ;; esac
    base=$(basename "$f")
    for s in $STAGES; do
        case "$base" in "$s".* | "$s"_*) echo "$s"; return ;; esac
    done
}

stage_of_header() { # include path -> stage name, or nothing
    local h=$1 base
    base=$(basename "$h")
    for s in $STAGES; do
        case "$base" in "$s.h" | "${s}_internal.h") echo "$s"; return ;; esac
    done
}

bad=0
while IFS= read -r f; do
    case "$(basename "$f")" in stages.c) continue ;; esac
    own=$(stage_of_file "$f")
    [ -n "$own" ] || continue
    while IFS= read -r line; do
        inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$line")
        other=$(stage_of_header "$inc")
        if [ -n "$other" ] && [ "$other" != "$own" ]; then
            echo "check_stage_includes: $f includes $inc (stage $own must not include stage $other's header)" >&2
            bad=1
        fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$f")
done < <(find src/stages src/web -name '*.[ch]' 2>/dev/null | sort)

exit $bad
