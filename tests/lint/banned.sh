#!/usr/bin/env bash
# banned.sh - functions connwatch does not use (see STYLE.md "banned functions"):
# unbounded string writes, conversions without error detection, thread-unsafe
# libc calls, and shelling out; and no assignment inside an if condition
# (STYLE.md, errors rule 2; tests/lint/conditions.py). Both rules hold for
# every C file of the tree: the programs (exporter/, collectors/, alerts/),
# the tests (tests/) and the benchmarks (bench/).
set -euo pipefail
root=${CW_SOURCE_ROOT:?}
cd "$root"
banned='sprintf|vsprintf|strcpy|strcat|strncpy|strtok|gets|atoi|atol|atof|localtime|gmtime|strerror|system|popen|asctime|ctime'
mapfile -t files < <(git ls-files -co --exclude-standard -- 'exporter/*.[ch]' 'collectors/*.[ch]' 'alerts/*.[ch]' \
    'tests/*.[ch]' 'bench/*.[ch]' 2>/dev/null)
[[ ${#files[@]} -gt 0 ]] || { echo "no C files found"; exit 1; }
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
existing=()
for f in "${files[@]}"; do
    [ -f "$f" ] && existing+=("$f")
done
python3 "$root/tests/lint/conditions.py" "${existing[@]}" || bad=1
[ "$bad" = 0 ] && echo "no banned functions, no assignment in an if condition (${#existing[@]} files)"
exit "$bad"
