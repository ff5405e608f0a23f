#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run.sh FUZZER SEED-CORPUS - runs one libFuzzer binary (ASan+UBSan, built by
# -Dfuzz=true) for CW_FUZZ_SECONDS (default 30) seconds, suite fuzz-run.
#
# The fuzzer starts from the committed seeds (read only) and writes what it
# finds into a scratch corpus under the build directory, wiped at every run,
# so a run never changes the source tree. It runs in a scratch working
# directory (fuzz_config may name files). Any crash, sanitizer report,
# leak, input slower than 25 s or memory over 2 GiB ends libFuzzer with a
# non-zero status and fails the test; the input is kept as
# BUILD/tests/fuzz-artifacts/NAME/crash-* (or leak-, timeout-, oom-) and the
# message says how to replay it. A fixed bug's input belongs in the seed
# corpus (tests/fuzz/corpus/NAME/), so that fuzz-replay keeps it fixed.
set -euo pipefail

fuzzer=$(readlink -f "${1:?fuzzer binary}")
seeds=${2:?seed corpus directory}
secs=${CW_FUZZ_SECONDS:-30}
name=$(basename "$fuzzer")
name=${name#fuzz_}
build=${CW_BUILD_ROOT:?}
work=$build/tests/fuzz-work/$name
artifacts=$build/tests/fuzz-artifacts/$name

[[ -x $fuzzer ]] || { echo "run.sh: $fuzzer is not built (meson setup with -Dfuzz=true)"; exit 1; }
[[ -d $seeds ]] || { echo "run.sh: no seed corpus $seeds"; exit 1; }
rm -rf "$work" "$artifacts"
mkdir -p "$work/corpus" "$work/cwd" "$artifacts"
cd "$work/cwd"
export TMPDIR=$work/cwd # fuzz_relay_spool's scratch directory
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

rc=0
"$fuzzer" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work/corpus" "$seeds" >"$work/log" 2>&1 || rc=$?
grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$work/log" || true
if [[ $rc -ne 0 ]]; then
    echo "fuzz_$name: libFuzzer exited $rc; its log ($work/log) ends:"
    tail -n 60 "$work/log"
    for a in "$artifacts"/*; do
        [[ -e $a ]] || continue
        echo "fuzz_$name: failing input kept as $a"
        echo "  replay: $build/tests/fuzz_${name}_replay $a"
        echo "  once fixed: cp $a $seeds/"
    done
    exit 1
fi
echo "fuzz_$name: $(find "$work/corpus" -type f | wc -l) new corpus inputs in ${secs}s, no crash"
