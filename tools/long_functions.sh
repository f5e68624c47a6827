#!/usr/bin/env bash
# Lists the N longest C functions under src/ (default 10), longest first, as
# "<lines> <file>:<line> <function>". Lines are counted from the line of the function's
# name to its closing brace, inclusive (Universal Ctags' "end:" field).
# Usage: tools/long_functions.sh [N] [dir]   (run from the repo root or anywhere inside it)
set -eu
n=${1:-10}
cd "$(dirname "$0")/.."
dir=${2:-src}
if ! ctags --version 2>/dev/null | grep -q 'Universal Ctags'; then
    echo "long_functions: needs Universal Ctags (for the end: field)" >&2
    exit 2
fi
find "$dir" -name '*.c' -print0 | sort -z |
    xargs -0 ctags --languages=C --c-kinds=f --fields=+ne -o - |
    awk -F'\t' '{
        line = ""; end = ""
        for (i = 4; i <= NF; i++) {
            if ($i ~ /^line:/) line = substr($i, 6)
            else if ($i ~ /^end:/) end = substr($i, 5)
        }
        if (line != "" && end != "") printf "%d %s:%d %s\n", end - line + 1, $2, line, $1
    }' |
    sort -k1,1nr -k2,2 | head -n "$n"
