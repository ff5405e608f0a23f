#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# man.sh - the generated man pages (packaging/man/) render without a groff or
# man warning at 80 columns, as lintian reads them, and have a whatis line
# (lexgrog). Arguments: the pages.
set -euo pipefail

[[ $# -gt 0 ]] || { echo "SKIP: no man pages built (pandoc missing)"; exit 77; }
if ! command -v man >/dev/null || ! command -v lexgrog >/dev/null; then
    echo "SKIP: man-db is not installed"
    exit 77
fi
fail=0
for page in "$@"; do
    warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
    if [[ -n $warn ]]; then
        echo "FAIL: $page: $warn"
        fail=1
    fi
    if ! lexgrog "$page" >/dev/null; then
        echo "FAIL: $page: lexgrog finds no NAME line"
        fail=1
    fi
    [[ $(wc -l <"$page") -gt 100 ]] || { echo "FAIL: $page: too short"; fail=1; }
done
[[ $fail -eq 0 ]] && echo "ok: $# man pages, no warnings"
exit "$fail"
