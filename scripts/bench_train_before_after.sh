#!/usr/bin/env bash
# Training step speed of two tierforge binaries (before and after a change) beside PyTorch, in one
# run: for each space, method and thread count, back to back, `BEFORE bench train-step`,
# `AFTER bench train-step`, PyTorch NCHW and PyTorch channels-last (scripts/torch_supernet.py) on
# the same sub-nets. Results as JSON lines in $OUT (tierforge.jsonl has a "bin" field: before or
# after), then a table on stdout. Issue 13 in BENCHMARKS.md was measured with it.
#
#   BEFORE=/path/to/old/tierforge AFTER=target/release/tierforge scripts/bench_train_before_after.sh
#
# Knobs: SPACES="small default"  METHODS="sandwich progressive"  THREADS="1 2"  STEPS=10  WARMUP=2
#   VENV=.venv-bench (create it with scripts/bench_vs_pytorch.sh)  OUT=target/bench-before-after
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
: "${BEFORE:?set BEFORE to the old tierforge binary}"
AFTER=${AFTER:-$ROOT/target/release/tierforge}
PY=${VENV:-$ROOT/.venv-bench}/bin/python
OUT=${OUT:-$ROOT/target/bench-before-after}
SPACES=${SPACES:-"small default"}; METHODS=${METHODS:-"sandwich progressive"}; THREADS=${THREADS:-"1 2"}
STEPS=${STEPS:-10}; WARMUP=${WARMUP:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
mkdir -p "$OUT"; rm -f "$OUT"/*.jsonl
load() { cut -d' ' -f1-3 /proc/loadavg; }
for sp in $SPACES; do for m in $METHODS; do
  spec="$OUT/spec-$sp-$m.json"
  "$AFTER" bench train-step --method "$m" --batch 64 --steps "$STEPS" --warmup "$WARMUP" --space "$sp" \
      --archs-out "$spec" --space-out "$OUT/space-$sp.json" --dry-run
  for t in $THREADS; do
    echo "{\"method\":\"$m\",\"threads\":$t,\"load_before\":\"$(load)\"}" >> "$OUT/load-$sp.jsonl"
    for side in before after; do
      bin=$BEFORE; [ "$side" = after ] && bin=$AFTER
      RAYON_NUM_THREADS=$t "$bin" --threads "$t" bench train-step --method "$m" --batch 64 --steps "$STEPS" \
          --warmup "$WARMUP" --space "$sp" --json | sed "s/^{/{\"bin\":\"$side\",/" >> "$OUT/tierforge-$sp.jsonl"
    done
    for cl in "" --channels-last; do
      OMP_NUM_THREADS=$t "$PY" scripts/torch_supernet.py train-step "$spec" --threads "$t" $cl --json >> "$OUT/pytorch-$sp.jsonl"
    done
    echo "{\"method\":\"$m\",\"threads\":$t,\"load_after\":\"$(load)\"}" >> "$OUT/load-$sp.jsonl"
  done
done; done
"$PY" - "$OUT" $SPACES <<'PYEOF'
import json, os, sys
out, spaces = sys.argv[1], sys.argv[2:]
rd = lambda n: [json.loads(l) for l in open(os.path.join(out, n))]
print('| space | method (sub-nets/step) | threads | before ms (img/s) | after ms (img/s) | speed-up '
      '| PyTorch NCHW ms | PyTorch CL ms | before ÷ CL img/s | after ÷ CL img/s | load before → after |')
print('|---|---|---|---|---|---|---|---|---|---|---|')
for sp in spaces:
    tf, pt, ld = rd(f'tierforge-{sp}.jsonl'), rd(f'pytorch-{sp}.jsonl'), rd(f'load-{sp}.jsonl')
    for r in (x for x in tf if x['bin'] == 'after'):
        k = (r['method'], r['threads'])
        same = lambda x: (x['method'], x['threads']) == k
        b = next(x for x in tf if x['bin'] == 'before' and same(x))
        n = next(x for x in pt if same(x) and not x['channels_last'])['median_ms']
        c = next(x for x in pt if same(x) and x['channels_last'])['median_ms']
        lb = next(x['load_before'] for x in ld if same(x) and 'load_before' in x).split()[0]
        la = next(x['load_after'] for x in ld if same(x) and 'load_after' in x).split()[0]
        bm, am = b['median_ms'], r['median_ms']
        print(f"| {r['space']} | {r['method']} ({r['subnets_per_step']}) | {r['threads']} | {bm:.0f} ({64e3/bm:.0f}) "
              f"| {am:.0f} ({64e3/am:.0f}) | {bm/am:.2f}× | {n:.0f} | {c:.0f} | {c/bm:.2f}× | {c/am:.2f}× | {lb} → {la} |")
PYEOF
