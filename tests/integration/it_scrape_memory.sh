#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_scrape_memory: scrapes of a large body while checks publish do not pile
# up memory. 2,000 tcp checks (a closed loopback port, run once an hour)
# make a body of ~3 MB, and one check every 100 ms makes every scrape render
# it again. After two warm-up scrapes (the cached plain and gzip parts are
# kept by design), 20 more scrapes, plain and gzip in turn, may add less than
# one body's size to VmRSS. Before the allocator was bounded
# (cw_cli_tune_malloc) and the cache took the rendered buffer instead of a
# copy, they added about three: glibc raised its mmap threshold to the
# largest block freed and kept every later body in heap it never gave back.
# The bound is glibc's: under ASan or TSan (their own allocators) only the
# bodies are checked.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_tmpdir
d=$CW_TMP
closed=$(cw_free_port)
{
    echo "global: {interval: 1h, timeout: 1s}"
    echo "host: {enabled: false}"
    echo "services:"
    echo "  - name: big"
    echo "    checks:"
    for ((i = 0; i < 2000; i++)); do
        echo "      - tcp: {target: \"127.0.0.1:$closed\", name: \"c$i\"}"
    done
    echo "  - name: tick"
    echo "    checks:"
    echo "      - tcp: {target: \"127.0.0.1:$closed\", interval: 100ms, timeout: 50ms}"
} >"$d/connwatch.yml"
cw_start_connwatch "$d/connwatch.yml"
cw_wait_ready 60

rss()
{
    awk '$1 == "VmRSS:" { print $2 * 1024 }' "/proc/$CW_PID/status"
}
scrape()
{
    curl -sS --max-time $((10 * CW_SLOW)) "$@" -o "$d/body" -w '%{size_download}' \
        "http://$CW_ADDR/metrics" || cw_fail "a scrape failed"
}

plain=$(scrape)
gz=$(scrape -H 'Accept-Encoding: gzip')
((plain > 2000000)) || cw_fail "the body is $plain bytes, expected more than 2 MB"
before=$(rss)
for ((i = 0; i < 10; i++)); do
    n=$(scrape)
    # Within 1 %: the tick check's figures change between scrapes.
    ((n > plain * 99 / 100 && n < plain * 101 / 100)) || cw_fail "plain scrape $i: $n bytes, not ~$plain"
    n=$(scrape -H 'Accept-Encoding: gzip')
    ((n > gz / 2 && n < gz * 2)) || cw_fail "gzip scrape $i: $n bytes, not ~$gz"
done
gzip -t <"$d/body" || cw_fail "the last gzip body is not one valid gzip stream"
after=$(rss)
grow=$((after - before))
cw_note "body $plain bytes ($gz gzip); VmRSS $before -> $after bytes over 20 scrapes (+$grow)"
if ((CW_SLOW == 1)); then
    ((grow < plain)) || cw_fail "20 scrapes added $grow bytes of VmRSS, more than one body ($plain bytes)"
fi
cw_stop
echo "ok: 20 scrapes of a $plain-byte body added $grow bytes of VmRSS"
