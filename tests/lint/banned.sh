#!/usr/bin/env bash
# banned.sh - functions connwatch does not use (see STYLE.md "banned functions"):
# unbounded string writes, conversions without error detection, thread-unsafe
# libc calls, and shelling out.
set -euo pipefail
root=${CW_SOURCE_ROOT:?}
cd "$root"
banned='sprintf|vsprintf|strcpy|strcat|strncpy|strtok|gets|atoi|atol|atof|localtime|gmtime|strerror|system|popen|asctime|ctime'
mapfile -t files < <(git ls-files -co --exclude-standard -- 'exporter/*.c' 'exporter/*.h' 'collectors/*.c' 'collectors/*.h' 'alerts/*.c' 'alerts/*.h' 2>/dev/null)
bad=0
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    # Strip comments and string literals roughly, then look for calls.
    if hits=$(sed -e 's://.*$::' -e 's:/\*.*\*/::g' -e 's/^[[:space:]]*\*.*$//' -e 's/"[^"]*"//g' "$f" |
        grep -nE "(^|[^A-Za-z0-9_.>])($banned)[[:space:]]*\(" ); then
        while IFS= read -r line; do
            echo "$f:$line"
        done <<<"$hits"
        bad=1
    fi
done
[ "$bad" = 0 ] && echo "no banned functions"
exit "$bad"
