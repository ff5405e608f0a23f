#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_debian_package.sh - the Debian packages, end to end, as root on a
# machine without systemd running:
#   1. the version of debian/changelog is meson.build's; dpkg-buildpackage
#      builds connwatch and connwatch-relay once from a copy of the tree
#      (DEB_BUILD_OPTIONS="nocheck parallel=2"); lintian reports no error
#      or warning
#   2. dpkg -i: files where the README says, conffiles, the system users,
#      the relay's spool; systemd-analyze verify is clean and the
#      --offline=true security exposure of each unit is <= 2.0
#   3. the installed binaries run with their unit's ExecStart (and
#      /etc/default ARGS) under the unit's user and capabilities (setpriv:
#      User=, Group=, AmbientCapabilities=, CapabilityBoundingSet=,
#      NoNewPrivileges=): connwatch's shipped configuration scrapes with the
#      host, icmp and tcp checks succeeding; the relay takes a webhook and
#      delivers it to the shipped receiver's URL; started as root, connwatch
#      switches to the package's user
#   4. an upgrade to a rebuilt package (the same .deb repacked with a higher
#      version: the build is not run twice) keeps locally edited conffiles
#   5. dpkg --purge leaves no file, directory, user or group behind.
# The EXIT trap purges whatever the test installed, so a failure leaves the
# machine as it was. It refuses to run where either package is installed or
# either user exists (it would remove them).
. "$CW_SOURCE_ROOT/tests/lib/common.sh"
[[ $(id -u) -eq 0 ]] || cw_skip "needs root (dpkg -i)"
cw_require dpkg-buildpackage dh lintian pandoc systemd-analyze setpriv curl python3 git
cw_tmpdir
chmod 755 "$CW_TMP"
pkgs=(connwatch connwatch-relay)
for p in "${pkgs[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed\|config-files'; then
        cw_fail "package $p is already on this machine: not touching it"
    fi
    getent passwd "$p" >/dev/null && cw_fail "user $p already exists: not touching it"
done

installed=0
pkg_cleanup()
{
    local p i
    for p in "${cw_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${cw_pids[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    cw_pids=()
    if [[ $installed -eq 1 ]]; then
        DEBIAN_FRONTEND=noninteractive dpkg --purge "${pkgs[@]}" >/dev/null 2>&1 </dev/null || true
    fi
}
_pkg_exit()
{
    local rc=$?
    pkg_cleanup || true
    set +e
    (exit "$rc")
    _cw_cleanup
}
trap _pkg_exit EXIT

# --- 1. build --------------------------------------------------------------------------
version=$(sed -n "s/^  version : '\([^']*\)',/\1/p" "$CW_SOURCE_ROOT/meson.build")
deb_version=$(dpkg-parsechangelog -l "$CW_SOURCE_ROOT/debian/changelog" -S Version)
[[ -n $version && $deb_version == "$version" ]] ||
    cw_fail "debian/changelog says $deb_version, meson.build says $version"
cw_pass "debian/changelog's version is the project's ($version)"

src=$CW_TMP/src/connwatch-$version
mkdir -p "$src"
# The tree as committed plus local changes, without build directories.
git -C "$CW_SOURCE_ROOT" ls-files -co --exclude-standard -z |
    (cd "$CW_SOURCE_ROOT" && tar --null -T - -cf -) | tar -xf - -C "$src"
t0=$SECONDS
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b \
    >"$CW_TMP/build.log" 2>&1) || { tail -n 30 "$CW_TMP/build.log" >&2; cw_fail "dpkg-buildpackage failed"; }
deb=$CW_TMP/src/connwatch_${version}_$(dpkg --print-architecture).deb
rdeb=$CW_TMP/src/connwatch-relay_${version}_$(dpkg --print-architecture).deb
[[ -f $deb && -f $rdeb ]] || cw_fail "no .deb files: $(ls "$CW_TMP/src")"
cw_pass "dpkg-buildpackage built both packages in $((SECONDS - t0)) s"

rc=0
lintian --fail-on error,warning "$CW_TMP/src"/connwatch_*.changes >"$CW_TMP/lintian.out" 2>&1 || rc=$?
if [[ $rc -ne 0 ]] || grep -E '^[EW]: ' "$CW_TMP/lintian.out"; then
    cw_fail "lintian (exit $rc): $(cat "$CW_TMP/lintian.out")"
fi
cw_pass "lintian: no error, no warning"

# --- 2. install ----------------------------------------------------------------------------
installed=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" "$rdeb" >"$CW_TMP/dpkg-i.log" 2>&1 </dev/null ||
    cw_fail "dpkg -i failed: $(cat "$CW_TMP/dpkg-i.log")"
for f in /usr/bin/connwatch /usr/bin/connwatch-relay; do
    [[ -x $f ]] || cw_fail "$f is not installed"
done
for f in /etc/connwatch/connwatch.yml /etc/connwatch/relay.yml /etc/default/connwatch \
    /etc/default/connwatch-relay /usr/share/connwatch/rules/connwatch.rules.yml \
    /usr/share/connwatch/dashboards/connwatch-overview.json \
    /usr/share/connwatch/dashboards/connwatch-target.json /usr/share/doc/connwatch/copyright \
    /usr/share/doc/connwatch/README.md.gz /usr/share/doc/connwatch-relay/relay.md.gz \
    /lib/systemd/system/connwatch.service /lib/systemd/system/connwatch-relay.service; do
    [[ -f $f ]] || cw_fail "$f is not installed"
done
for page in connwatch.1 connwatch-relay.1 connwatch.yml.5 connwatch-relay.yml.5; do
    man -w "${page%.*}" >/dev/null 2>&1 || man -w "${page##*.}" "${page%.*}" >/dev/null ||
        cw_fail "man page $page is not installed"
done
conf=$(dpkg-query -W -f='${Conffiles}\n' "${pkgs[@]}")
for f in /etc/connwatch/connwatch.yml /etc/connwatch/relay.yml /etc/default/connwatch; do
    grep -q " $f " <<<"$conf" || cw_fail "$f is not a conffile: $conf"
done
for u in "${pkgs[@]}"; do
    uid=$(id -u "$u") || cw_fail "no user $u"
    ((uid < 1000)) || cw_fail "user $u is not a system user (uid $uid)"
done
[[ $(stat -c '%U %a' /var/lib/connwatch-relay) == "connwatch-relay 700" ]] ||
    cw_fail "/var/lib/connwatch-relay: $(stat -c '%U %a' /var/lib/connwatch-relay)"
/usr/bin/connwatch --config.check --config.file=/etc/connwatch/connwatch.yml >/dev/null 2>&1 ||
    cw_fail "the shipped connwatch.yml does not pass --config.check"
/usr/bin/connwatch-relay --config.check --config.file=/etc/connwatch/relay.yml >/dev/null 2>&1 ||
    cw_fail "the shipped relay.yml does not pass --config.check"
cw_pass "dpkg -i: binaries, conffiles, defaults, units, man pages, docs, rules, dashboards, users, spool"

out=$(systemd-analyze verify /lib/systemd/system/connwatch.service \
    /lib/systemd/system/connwatch-relay.service 2>&1) || cw_fail "systemd-analyze verify: $out"
[[ -z $out ]] || cw_fail "systemd-analyze verify is not clean: $out"
for u in "${pkgs[@]}"; do
    exposure=$(systemd-analyze security --offline=true "/lib/systemd/system/$u.service" 2>&1 |
        sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    [[ -n $exposure ]] || cw_fail "no exposure figure for $u.service"
    awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || cw_fail "$u.service exposure $exposure > 2.0"
    cw_pass "$u.service: systemd-analyze security --offline=true exposure $exposure (<= 2.0)"
done
cw_pass "systemd-analyze verify: clean"

# --- 3. run as the units do ------------------------------------------------------------------
# unit_key UNIT KEY prints the value of KEY= in the installed unit.
unit_key()
{
    sed -n "s/^$2=//p" "/lib/systemd/system/$1.service" | tail -n 1
}
# as_unit UNIT LOG: start the unit's ExecStart ($ARGS from its EnvironmentFile)
# with its user, group and capabilities.
as_unit()
{
    local unit=$1 log=$2 user group caps args=() ARGS=""
    local -a priv
    local exec_start
    user=$(unit_key "$unit" User)
    group=$(unit_key "$unit" Group)
    caps=$(unit_key "$unit" AmbientCapabilities | tr '[:upper:]' '[:lower:]' | sed 's/cap_//g')
    # shellcheck disable=SC1090
    . "$(unit_key "$unit" EnvironmentFile | sed 's/^-//')"
    exec_start=$(unit_key "$unit" ExecStart)
    read -r -a exec_start <<<"${exec_start% \$ARGS}"
    read -r -a args <<<"$ARGS"
    priv=(setpriv --reuid="$user" --regid="$group" --clear-groups --no-new-privs)
    if [[ -n $caps ]]; then
        priv+=(--inh-caps="-all,+$caps" --ambient-caps="-all,+$caps" --bounding-set="-all,+$caps")
    else
        priv+=(--inh-caps=-all --bounding-set=-all)
    fi
    cw_note "as $unit.service: ${priv[*]} ${exec_start[*]} ${args[*]}"
    cw_spawn "$log" "${priv[@]}" "${exec_start[@]}" "${args[@]}"
}

# wait_http URL: until it answers 200 (10 s).
wait_http()
{
    local i
    for ((i = 0; i < 100; i++)); do
        curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# connwatch on its shipped configuration and default port (the TCP check
# probes it there).
(exec 3<>/dev/tcp/127.0.0.1/19367) 2>/dev/null && cw_fail "port 19367 is in use: cannot run the shipped configuration"
as_unit connwatch "$CW_TMP/cw.log"
CW_PID=$CW_LAST_PID
CW_LOG=$CW_TMP/cw.log
CW_ADDR=127.0.0.1:19367
wait_http "http://$CW_ADDR/-/healthy" || cw_fail "the installed connwatch does not answer"
[[ $(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$CW_PID/status") == "$(id -u connwatch)" ]] ||
    cw_fail "connwatch does not run as user connwatch"
for ((i = 0; i < 100; i++)); do
    cw_scrape >"$CW_TMP/m"
    ok=""
    for k in host icmp tcp; do
        ok+=$(cw_metric_in "$CW_TMP/m" connwatch_check_success "check=\"$k\"" || echo x)
    done
    [[ $ok == 111 ]] && break
    sleep 0.2
done
[[ $ok == 111 ]] || cw_fail "host, icmp, tcp success: $ok (want 111)"
cw_stop "$CW_PID"
cw_pass "installed connwatch, ExecStart as user connwatch with CAP_NET_RAW only: host, icmp and tcp checks succeed"

# Started as root with no --run-as-* flag: it switches to the package's user.
p=$(cw_free_port)
cw_spawn "$CW_TMP/root.log" /usr/bin/connwatch --config.file=/etc/connwatch/connwatch.yml \
    --web.listen-address="127.0.0.1:$p"
wait_http "http://127.0.0.1:$p/-/healthy" || cw_fail "connwatch started as root does not answer: $(cat "$CW_TMP/root.log")"
[[ $(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$CW_LAST_PID/status") == "$(id -u connwatch)" ]] ||
    cw_fail "connwatch started as root did not switch to user connwatch"
cw_stop "$CW_LAST_PID"
cw_pass "installed connwatch started as root switches to the package's user"

# The relay: its shipped receiver posts to 127.0.0.1:19370/alerts, a recorder here.
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"
(exec 3<>/dev/tcp/127.0.0.1/19369) 2>/dev/null && cw_fail "port 19369 is in use"
recorder_start "$CW_TMP/rec" webhook 19370
as_unit connwatch-relay "$CW_TMP/relay.log"
relay_pid=$CW_LAST_PID
wait_http http://127.0.0.1:19369/-/healthy || cw_fail "the installed relay does not answer: $(cat "$CW_TMP/relay.log")"
printf '{"version":"4","status":"firing","receiver":"am","groupKey":"{}:{alertname=\\"PkgTest\\"}","externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"PkgTest","severity":"critical"},"annotations":{"summary":"package test"},"startsAt":"2025-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"00000000000000aa"}]}' >"$CW_TMP/p.json"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    --data-binary "@$CW_TMP/p.json" http://127.0.0.1:19369/webhook/example)
[[ $code == 200 ]] || cw_fail "webhook post: HTTP $code: $(cat "$CW_TMP/relay.log")"
for ((i = 0; i < 100; i++)); do
    grep -q PkgTest "$CW_TMP/rec/requests.jsonl" 2>/dev/null && break
    sleep 0.1
done
grep -q PkgTest "$CW_TMP/rec/requests.jsonl" 2>/dev/null || cw_fail "the relay did not deliver: $(cat "$CW_TMP/relay.log")"
[[ -n $(find /var/lib/connwatch-relay -mindepth 1 -user connwatch-relay -print -quit) ]] ||
    cw_fail "the spool in /var/lib/connwatch-relay is not the relay user's"
cw_stop "$relay_pid"
cw_pass "installed connwatch-relay, ExecStart as user connwatch-relay, no capability: webhook taken (200) and delivered"

# --- 4. upgrade with edited conffiles ----------------------------------------------------
echo "# local edit $$" >>/etc/connwatch/connwatch.yml
sed -i 's/^  interval: 15s /  interval: 10s /' /etc/connwatch/connwatch.yml
echo "# local edit $$" >>/etc/connwatch/relay.yml
echo "ARGS=\"--log.level=debug\" # local edit $$" >>/etc/default/connwatch
new=$version+rebuild1
for d in "$deb" "$rdeb"; do
    rm -rf "$CW_TMP/x"
    dpkg-deb -R "$d" "$CW_TMP/x"
    sed -i "s/^Version: .*/Version: $new/" "$CW_TMP/x/DEBIAN/control"
    dpkg-deb --root-owner-group -b "$CW_TMP/x" "${d%_*_*}_${new}_up.deb" >/dev/null
done
DEBIAN_FRONTEND=noninteractive dpkg -i "$CW_TMP"/src/*_up.deb >"$CW_TMP/dpkg-up.log" 2>&1 </dev/null ||
    cw_fail "the upgrade failed: $(cat "$CW_TMP/dpkg-up.log")"
[[ $(dpkg-query -W -f='${Version}' connwatch) == "$new" ]] || cw_fail "connwatch was not upgraded"
for f in /etc/connwatch/connwatch.yml /etc/connwatch/relay.yml /etc/default/connwatch; do
    grep -q "local edit $$" "$f" || cw_fail "the edit of $f did not survive the upgrade"
done
grep -q '^  interval: 10s ' /etc/connwatch/connwatch.yml || cw_fail "the edited interval is gone"
leftover=$(find /etc/connwatch /etc/default -name '*.dpkg-*' 2>/dev/null)
[[ -z $leftover ]] || cw_fail "dpkg left $leftover"
/usr/bin/connwatch --config.check --config.file=/etc/connwatch/connwatch.yml >/dev/null 2>&1 ||
    cw_fail "the edited configuration is not valid after the upgrade"
cw_pass "upgrade to $new: edited conffiles kept, no prompt, no .dpkg-* files"

# --- 5. purge ---------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive dpkg --purge "${pkgs[@]}" >"$CW_TMP/purge.log" 2>&1 </dev/null ||
    cw_fail "dpkg --purge failed: $(cat "$CW_TMP/purge.log")"
installed=0
for f in /usr/bin/connwatch /usr/bin/connwatch-relay /etc/connwatch /etc/default/connwatch \
    /etc/default/connwatch-relay /usr/share/connwatch /usr/share/doc/connwatch \
    /usr/share/doc/connwatch-relay /var/lib/connwatch-relay /lib/systemd/system/connwatch.service \
    /lib/systemd/system/connwatch-relay.service /usr/share/man/man1/connwatch.1.gz; do
    [[ ! -e $f ]] || cw_fail "$f is left after the purge"
done
for u in "${pkgs[@]}"; do
    ! getent passwd "$u" >/dev/null || cw_fail "user $u is left after the purge"
    ! getent group "$u" >/dev/null || cw_fail "group $u is left after the purge"
    ! dpkg-query -W "$u" >/dev/null 2>&1 || cw_fail "dpkg still knows $u"
done
cw_pass "dpkg --purge: no file, directory, user or group left"
