#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# mkman.sh - one man page from the repository's Markdown, with pandoc:
#
#   packaging/man/mkman.sh SRCROOT VERSION PAGE OUTPUT
#
# PAGE is connwatch.1, connwatch-relay.1, connwatch.yml.5 or
# connwatch-relay.yml.5. Each page is its header (packaging/man/PAGE.md:
# NAME and what the Markdown does not say) followed by sections taken
# whole from README.md, collectors/*.md and alerts/relay/relay.md, so that
# the pages never drift from them. Run by meson at build time (man/).
set -euo pipefail

[[ $# -eq 4 ]] || { echo "usage: $0 SRCROOT VERSION PAGE OUTPUT" >&2; exit 2; }
src=$1 version=$2 page=$3 out=$4

# section FILE TITLE [LEVEL] prints the section whose heading text is TITLE
# (from its heading to the next heading of the same or a higher level, code
# blocks skipped), its heading at LEVEL (default 1) and its subsections
# shifted with it. TITLE "" takes the whole file.
section()
{
    awk -v want="$2" -v to="${3:-1}" '
        /^```/ { fence = !fence }
        !fence && /^#+ / {
            lvl = index($0, " ") - 1
            text = substr($0, lvl + 2)
            if (on && lvl <= level) on = 0
            if (!on && !done && (want == "" || text == want)) { on = 1; done = 1; level = lvl }
            if (on) {
                n = lvl - level + to
                h = ""
                for (i = 0; i < n; i++) h = h "#"
                print h " " text
                next
            }
        }
        on { print }
        END { if (!done) { print "mkman: no section \"" want "\" in " FILENAME > "/dev/stderr"; exit 1 } }
    ' "$1"
}

# Relative links of the repository mean nothing in a man page: keep the text.
unlink_md()
{
    sed -E 's/\[([^]]*)\]\(([^)#:]*\.md|[^):]*\.(png|yml|json|c|h))(#[^)]*)?\)/\1/g; /^!\[/d'
}

body()
{
    case $page in
    connwatch.1)
        section "$src/README.md" "Running it"
        section "$src/README.md" "\`connwatch diagnose\`: which layer broke, now"
        section "$src/README.md" "Metrics"
        section "$src/README.md" "Reliability"
        ;;
    connwatch.yml.5)
        section "$src/README.md" "Configuration"
        echo "# CHECK KINDS"
        for k in host icmp tcp dns http tls tls_file mysql redis; do
            section "$src/collectors/$k.md" "" 2
        done
        ;;
    connwatch-relay.1)
        section "$src/alerts/relay/relay.md" "Synopsis"
        section "$src/alerts/relay/relay.md" "Guarantees"
        section "$src/alerts/relay/relay.md" "Dead letters"
        section "$src/alerts/relay/relay.md" "Reliability"
        section "$src/alerts/relay/relay.md" "Metrics"
        ;;
    connwatch-relay.yml.5)
        section "$src/alerts/relay/relay.md" "Configuration"
        section "$src/alerts/relay/relay.md" "Templates"
        section "$src/alerts/relay/relay.md" "Example: DingTalk with an SMS fallback"
        ;;
    *)
        echo "mkman: unknown page $page" >&2
        exit 2
        ;;
    esac
}

name=${page%.*}
sec=${page##*.}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
    cat "$src/packaging/man/$page.md"
    echo
    body | unlink_md
    echo
    echo "# SEE ALSO"
    echo
    echo "**connwatch**(1), **connwatch.yml**(5), **connwatch-relay**(1), **connwatch-relay.yml**(5);"
    echo "/usr/share/doc/connwatch/ and /usr/share/connwatch/ (alert rules, Grafana dashboards)."
} >"$tmp"
pandoc --from=markdown-smart --to=man --standalone \
    --metadata=title="$name" --metadata=section="$sec" \
    --metadata=header="connwatch manual" --metadata=footer="connwatch $version" \
    --metadata=date="" --lua-filter="$src/packaging/man/tables.lua" -o "$out" "$tmp"
