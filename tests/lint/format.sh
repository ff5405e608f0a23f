#!/usr/bin/env bash
# format.sh - every C file in the tree is formatted with the repository's .clang-format.
set -euo pipefail
root=${CW_SOURCE_ROOT:?}
command -v clang-format >/dev/null || { echo "clang-format not installed"; exit 77; }
cd "$root"
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null || find exporter collectors alerts tests bench -name '*.[ch]')
bad=0
for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f (run: clang-format -i $f)"
        bad=1
    fi
done
exit "$bad"
