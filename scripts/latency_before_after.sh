#!/usr/bin/env bash
# Batch-1 latency per variant of a bundle, an older tierforge against this one, interleaved in one
# sitting on one thread (this machine is noisy: quote the median of the rounds and the min).
#   BEFORE=/path/to/old/tierforge BUNDLE=runs/demo/tiers/bundle scripts/latency_before_after.sh
# Needs `cargo build --release` and `cargo build --profile mobile -p runtime --bin variant_latency`.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUNDLE:-runs/demo/tiers/bundle}
: "${BEFORE:?set BEFORE to the older tierforge binary}"
for round in 1 2 3; do
  echo "== round $round $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  for bin in "$BEFORE" target/release/tierforge; do
    echo "-- $bin bench infer --engine fast"
    RAYON_NUM_THREADS=1 "$bin" bench infer --bundle "$B" --engine fast --batch 1 --iters 3000 \
      --warmup 300 --threads 1 2>&1 | grep "^tierforge/fast"
  done
  echo "-- target/mobile/variant_latency (the library an app links)"
  RAYON_NUM_THREADS=1 target/mobile/variant_latency "$B" 3000
done
