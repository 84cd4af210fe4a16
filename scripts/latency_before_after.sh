#!/bin/bash
# Batch-1 latency per variant of the demo bundle, before (8aa3962) and after, one sitting, 1 thread.
B=/work/main/runs/demo/tiers/bundle
for round in 1 2 3; do
  echo "== round $round $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "-- before: 8aa3962 tierforge bench infer --engine fast (release)"
  RAYON_NUM_THREADS=1 /work/wt-before/target/release/tierforge bench infer --bundle $B --engine fast --batch 1 --iters 3000 --warmup 300 --threads 1 2>&1 | grep "^tierforge/fast"
  echo "-- after: tierforge bench infer --engine fast (release)"
  RAYON_NUM_THREADS=1 /work/main/target/release/tierforge bench infer --bundle $B --engine fast --batch 1 --iters 3000 --warmup 300 --threads 1 2>&1 | grep "^tierforge/fast"
  echo "-- after: variant_latency, mobile profile (Session::predict with preprocessing, as the C ABI runs it)"
  RAYON_NUM_THREADS=1 /work/main/target/mobile/variant_latency $B 3000
done
