#!/usr/bin/env bash
# The full run behind BENCHMARKS.md ("Full run"): train the family on all 60 000 Fashion-MNIST
# training images, evaluate five sub-nets, slice it into tiers with a 500-sample predictor,
# bundle (f32 + int8), verify, and QA the bundle on every catalog phone.
# Resumable: rerun after an interruption (training continues from its last checkpoint, the
# predictor's samples are cached). Seed 42. Nothing here is committed (runs/ is ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/full}
cargo build --release
tf=target/release/tierforge
$tf train --data data/fashion-mnist --out "$OUT" --config configs/fmnist-full.json --resume
for a in min configs/archs/small-a.json configs/archs/mid-b.json configs/archs/large-c.json max; do
  $tf eval --checkpoint "$OUT" --arch "$a" --json
done | tee "$OUT-evals.jsonl"
$tf search --checkpoint "$OUT" --out "$OUT-search" --samples "${SAMPLES:-500}"
$tf bundle --checkpoint "$OUT" --search "$OUT-search" --out "$OUT-bundle" --int8
$tf bundle verify "$OUT-bundle"
$tf qa --bundle "$OUT-bundle" --out "$OUT-qa" || echo "qa: some phone failed (exit $?)"
