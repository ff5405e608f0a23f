#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# install-deps.sh - install the Debian 12 packages connwatch needs, by group.
#
#   packaging/install-deps.sh [build|test|bench]...     (default: build)
#
# Groups are cumulative: test = build + the servers and tools the test suite
# starts; bench = test + the peers the benchmark compares against.
# Only missing packages are installed. When everything is present this is a
# fast no-op that touches neither the network nor apt's lists. Runs as root,
# or through sudo when not root.
set -euo pipefail

build_pkgs=(
    gcc pkg-config meson ninja-build
    libmicrohttpd-dev libcurl4-openssl-dev libmariadb-dev libhiredis-dev libyaml-dev
    libgnutls28-dev libssl-dev zlib1g-dev libcrypt-dev check git ca-certificates
    libjansson-dev
)
# "a|b": the first one apt can install; either one satisfies the group.
test_pkgs=(
    prometheus curl python3 valgrind clang 'libclang-rt-14-dev|libclang-rt-dev' clang-format
    cppcheck clang-tidy # lint_static_analysis (tests/lint/static.sh)
    iproute2 nftables procps openssl gzip
    nginx-light faketime # it_http.sh, it_tls.sh
    prometheus-alertmanager python3-aiosmtpd
    dnsmasq-base util-linux # it_dns.sh (dnsmasq), it_tcp.sh (nsenter, unshare)
    redis-server redis-tools # it_redis.sh, it_redis_cluster.sh
    mariadb-server mariadb-client # it_mysql.sh (mariadbd, mariadb-install-db, mariadb)
    python3-yaml # it_promql.sh, it_alerts_e2e.sh, lint_alert_rules, alerts/*/gen_*.py
    wrk # it_http_flood.sh
    chromium fonts-wqy-microhei # it_health_page.sh (headless browser, CJK glyphs in the screenshot)
    pandoc man-db # the man pages (packaging/man/mkman.sh), lint_man (man --warnings, lexgrog)
    dpkg-dev debhelper lintian adduser systemd # it_debian_package.sh: dpkg-buildpackage, lintian,
    # the packages' maintainer scripts, systemd-analyze verify/security (systemd is not started)
    strace # it_unit_sandbox.sh: the syscalls and address families each kind uses
)
bench_pkgs=(prometheus-node-exporter wrk hyperfine prometheus-blackbox-exporter fping iputils-ping prometheus-smokeping-prober
    prometheus-redis-exporter prometheus-mysqld-exporter)

usage()
{
    echo "usage: $0 [build|test|bench]..." >&2
    exit 2
}

# installed[PKG]=1 for every wanted package that dpkg has installed; one
# dpkg-query call for all of them keeps the no-op case fast.
declare -A installed=()
load_installed()
{
    local name status
    while read -r name status; do
        if [[ $status == "install ok installed" ]]; then
            installed[${name%%:*}]=1
        fi
    done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
}

want=()
add_group()
{
    case "$1" in
    build) want+=("${build_pkgs[@]}") ;;
    test) add_group build; want+=("${test_pkgs[@]}") ;;
    bench) add_group test; want+=("${bench_pkgs[@]}") ;;
    -h | --help) usage ;;
    *) echo "$0: unknown group \"$1\"" >&2; usage ;;
    esac
}

if [[ $# -eq 0 ]]; then
    set -- build
fi
for g in "$@"; do
    add_group "$g"
done

all_names=()
for entry in "${want[@]}"; do
    IFS='|' read -r -a alts <<<"$entry"
    all_names+=("${alts[@]}")
done
load_installed "${all_names[@]}"

# Entries still missing (alternatives kept as "a|b" until apt is asked).
missing=()
declare -A seen=()
for entry in "${want[@]}"; do
    [[ -n ${seen[$entry]:-} ]] && continue
    seen[$entry]=1
    ok=0
    IFS='|' read -r -a alts <<<"$entry"
    for p in "${alts[@]}"; do
        if [[ -n ${installed[$p]:-} ]]; then
            ok=1
            break
        fi
    done
    if [[ $ok -eq 0 ]]; then
        missing+=("$entry")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "$0: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq

pkgs=()
for entry in "${missing[@]}"; do
    if [[ $entry != *'|'* ]]; then
        pkgs+=("$entry")
        continue
    fi
    IFS='|' read -r -a alts <<<"$entry"
    pick=""
    for p in "${alts[@]}"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
        if [[ -n $cand && $cand != "(none)" ]]; then
            pick=$p
            break
        fi
    done
    pkgs+=("${pick:-${alts[0]}}")
done

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
