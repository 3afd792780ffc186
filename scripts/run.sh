#!/usr/bin/env bash
# run.sh: what `make run` does until the control plane exists.
#
# Starts a node (laminard node) on loopback, pings it from a second node
# to show two processes exchanging messages, runs the quick runtime
# benchmark, stops the node with SIGTERM, and runs a demo SQL pipeline:
# Nexmark query 5 (the auctions with the most bids in each sliding window)
# over a million generated events, printing its plan and its results as
# JSON lines. Later issues replace this with the standalone system.
#
#   scripts/run.sh BIN_DIR        (LAMINAR_RUN_PORT picks the port; 6669)
set -euo pipefail

bin=${1:-build/bin}
port=${LAMINAR_RUN_PORT:-6669}
url="tcp://127.0.0.1:${port}"
log=$(mktemp /tmp/laminar-run.XXXXXX.log)

echo "== starting a node: $bin/laminard node (log: $log)"
"$bin/laminard" node --set node.id=1 --set "worker.rpc_url=${url}" >"$log" 2>&1 &
node=$!
trap 'kill -TERM $node 2>/dev/null || true; wait $node 2>/dev/null || true' EXIT

for _ in $(seq 1 50); do
  if grep -q "serving at" "$log"; then break; fi
  if ! kill -0 "$node" 2>/dev/null; then
    echo "the node did not start:"; cat "$log"; exit 1
  fi
  sleep 0.1
done
grep "serving at" "$log"

echo
echo "== a second node pings node 1 at $url"
"$bin/laminard" ping 1 "$url" --count 20000

echo
echo "== the runtime benchmark (quick run; 'make bench' for the full one)"
"$bin/lm-bench-runtime" --quick 2>/dev/null

echo
echo "== stopping the node (SIGTERM)"
kill -TERM "$node"
wait "$node" || true
trap - EXIT
tail -n 3 "$log"
rm -f "$log"

echo
echo "== a SQL pipeline: Nexmark q5, hot items, over 1,000,000 events at parallelism 2"
echo "   (scripts/nexmark/sql/q5.sql with its sink made stdout; its plan first)"
sql=$(mktemp /tmp/laminar-q5.XXXXXX.sql)
sed -e "s/'connector' = 'blackhole'/'connector' = 'stdout'/" \
    -e "s/'events.num' = '10000000'/'events.num' = '1000000'/" scripts/nexmark/sql/q5.sql >"$sql"
"$bin/laminard" explain "$sql" -p 2 | sed -n '/physical plan/,$p' | grep -v '^ *config'
out=$(mktemp /tmp/laminar-q5.XXXXXX.out)
"$bin/laminard" run "$sql" -p 2 -s logging.level=warn >"$out"
head -n 10 "$out"
echo "   ... $(wc -l <"$out") rows: {auction, num} for the top auctions of each window"
rm -f "$sql" "$out"
