#!/usr/bin/env bash
# run.sh: what `make run` does: starts the embedded standalone system and
# submits a demo pipeline to it.
#
# Starts `laminard standalone` in the background (REST API on
# 127.0.0.1:$LAMINAR_RUN_PORT, default 8001; SQLite metadata, checkpoints
# and logs under build/demo), submits Nexmark query 5 (the auctions with the
# most bids in each sliding window) over an endless stream of generated
# events at 20,000 events/s, with a file sink, waits until the first
# windows are written, and shows the pipeline, its job and its output.
# The system keeps running: the script ends by saying where to look and
# how to stop it. A system an earlier run left is stopped first.
#
#   scripts/run.sh BIN_DIR
set -euo pipefail

bin=${1:-build/bin}
port=${LAMINAR_RUN_PORT:-8001}
demo=$(pwd)/build/demo
api="http://127.0.0.1:${port}"
ctl() { "$bin/laminarctl" --server "$api" "$@"; }

mkdir -p "$demo"
if [ -f "$demo/laminard.pid" ] && kill -0 "$(cat "$demo/laminard.pid")" 2>/dev/null; then
  echo "== stopping the system an earlier 'make run' left (pid $(cat "$demo/laminard.pid"))"
  old=$(cat "$demo/laminard.pid")
  kill -TERM "$old"
  for _ in $(seq 1 150); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$old" 2>/dev/null; then
    echo "   it did not stop within 15 s of SIGTERM: SIGKILL"
    kill -KILL "$old" 2>/dev/null || true
  fi
fi
rm -rf "$demo/data" "$demo/out"

echo "== starting the standalone system: laminard standalone (log: $demo/laminard.log)"
"$bin/laminard" standalone --data-dir "$demo/data" --set "api.port=${port}" \
  >"$demo/laminard.log" 2>&1 &
pid=$!
echo "$pid" >"$demo/laminard.pid"
for _ in $(seq 1 100); do
  if ctl health >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "laminard did not start:"; cat "$demo/laminard.log"; exit 1
  fi
  sleep 0.1
done
ctl health

echo
echo "== submitting Nexmark q5 (hot items) at parallelism 2: laminarctl submit"
sql="$demo/hot_items.sql"
sed -e "s|'connector' = 'blackhole'|'connector' = 'filesystem', 'path' = '$demo/out', 'format' = 'json'|" \
    -e "s/'events.num' = '10000000'/'events.num' = '0', 'emit.rate' = '20000'/" \
    scripts/nexmark/sql/q5.sql >"$sql"
ctl submit "$sql" --name hot_items --parallelism 2

echo
echo "== waiting for the first windows (one every 2 s of event time)"
for _ in $(seq 1 150); do
  if cat "$demo"/out/*.jsonl 2>/dev/null | grep -q .; then break; fi
  sleep 0.2
done
sleep 2
ctl list
echo
ctl status 1
echo
echo "== the first rows: {auction, num}, the auctions with the most bids per window"
cat "$demo"/out/*.jsonl 2>/dev/null | head -n 5

cat <<EOF

The system is running (pid $pid) with the REST API at $api/api/v1.
  output:         $demo/out/*.jsonl (grows as windows close)
  pipeline:       $bin/laminarctl --server $api status 1
  job history:    $bin/laminarctl --server $api events 1
  stop the job:   $bin/laminarctl --server $api cancel 1
  stop it all:    kill $pid        (or run 'make run' again to start afresh)
EOF
