#!/usr/bin/env bash
# Training speed of tierforge beside PyTorch on this CPU, in one command:
#
#   scripts/bench_vs_pytorch.sh
#
# 1. creates .venv-bench (python3 -m venv) and pip-installs torch + numpy from PyPI, unless the
#    venv already imports them (re-runs skip the install);
# 2. builds tierforge in release (or uses $TIERFORGE);
# 3. for each method (sandwich, progressive) writes the benchmark definition with
#    `tierforge bench train-step --archs-out` (space, batch, loss and optimizer settings, every
#    step's sampled sub-nets) and runs, back to back at each thread count, tierforge and the same
#    supernet in PyTorch (scripts/torch_supernet.py, NCHW and channels-last) on the same sub-nets;
# 4. optionally (INFER=1, the default) times inference of the largest sub-net at batch 1 and 64;
# 5. prints a table (tierforge img/s ÷ PyTorch img/s), the machine, load and versions, and writes
#    it to $OUT/results.md.
#
# Knobs (environment): THREADS="1 2"  METHODS="sandwich progressive"  BATCH=64  STEPS=10  WARMUP=2
#   SPACE=default (or small, tiny, FILE.json)  ROUNDS=1 (>1: repeat, keep each side's best median)
#   INFER=1  TIERFORGE=path/to/binary  VENV=.venv-bench  OUT=target/bench-vs-pytorch
#   SUMMARY_ONLY=1 (only print the table again from the results already in $OUT)
# PyTorch's OpenMP threads spin between ops; when other processes keep the cores busy that makes
# its multi-threaded runs several times slower, so this script sets OMP_WAIT_POLICY=PASSIVE unless
# it is already set (OMP_WAIT_POLICY=ACTIVE gives PyTorch's default; the header says which).
# scripts/bench_vs_peers.sh runs this (INFER=0) and adds every bundle variant's inference beside
# PyTorch and ONNX Runtime.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv-bench}
THREADS=${THREADS:-"1 2"}
METHODS=${METHODS:-"sandwich progressive"}
BATCH=${BATCH:-64}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
SPACE=${SPACE:-default}
ROUNDS=${ROUNDS:-1}
INFER=${INFER:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET_DIR/bench-vs-pytorch}
SUMMARY_ONLY=${SUMMARY_ONLY:-0}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
mkdir -p "$OUT"
PY="$VENV/bin/python"

say() { printf '\n== %s\n' "$*" >&2; }

if [ "$SUMMARY_ONLY" != 1 ]; then
rm -f "$OUT"/*.jsonl

# 1. PyTorch (CPU use of whatever wheel PyPI serves; the default Linux wheel is the CUDA build,
#    which runs on the CPU all the same).
if [ -x "$PY" ] && "$PY" -c 'import torch, numpy' 2>/dev/null; then
    say "using $VENV (torch $("$PY" -c 'import torch; print(torch.__version__)'))"
else
    say "creating $VENV and installing torch + numpy from PyPI (several GB the first time)"
    python3 -m venv "$VENV"
    "$PY" -m pip install --upgrade pip >&2
    "$PY" -m pip install torch numpy >&2
fi

# 2. tierforge
if [ -z "${TIERFORGE:-}" ]; then
    say "building tierforge (release)"
    cargo build --release --bin tierforge >&2
    TIERFORGE="$TARGET_DIR/release/tierforge"
fi
if ! "$TIERFORGE" bench train-step --help >/dev/null 2>&1; then
    echo "error: $TIERFORGE has no 'bench train-step' command (is src/commands/bench.rs wired into main.rs?)" >&2
    exit 1
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
others() {
    # processes using more than 20% of a core over the last second (this script runs nothing then)
    top -b -n 2 -d 1 -w 200 2>/dev/null \
        | awk '/^top -/ {n++} n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 20 {printf "%s(%s%%) ", $12, $9}' | head -c 300 || true
}

# 3. training steps, back to back per thread count
for ((round = 1; round <= ROUNDS; round++)); do
    for m in $METHODS; do
        spec="$OUT/spec-$m.json"
        "$TIERFORGE" bench train-step --method "$m" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" \
            --space "$SPACE" --archs-out "$spec" --space-out "$OUT/space.json" --dry-run
        for t in $THREADS; do
            say "round $round: $m, $t thread(s); load before: $(load); busy: $(others)"
            echo "{\"load_before\": \"$(load)\", \"others\": \"$(others)\", \"method\": \"$m\", \"threads\": $t}" >> "$OUT/load.jsonl"
            RAYON_NUM_THREADS=$t "$TIERFORGE" --threads "$t" bench train-step --method "$m" --batch "$BATCH" \
                --steps "$STEPS" --warmup "$WARMUP" --space "$SPACE" --json | tee -a "$OUT/tierforge.jsonl" >&2
            OMP_NUM_THREADS=$t "$PY" scripts/torch_supernet.py train-step "$spec" --threads "$t" --json \
                | tee -a "$OUT/pytorch.jsonl" >&2
            OMP_NUM_THREADS=$t "$PY" scripts/torch_supernet.py train-step "$spec" --threads "$t" --channels-last --json \
                | tee -a "$OUT/pytorch.jsonl" >&2
            echo "{\"load_after\": \"$(load)\", \"method\": \"$m\", \"threads\": $t}" >> "$OUT/load.jsonl"
        done
    done
    # 4. inference of the largest sub-net
    if [ "$INFER" = 1 ]; then
        for t in $THREADS; do
            say "round $round: inference, $t thread(s); load before: $(load)"
            RAYON_NUM_THREADS=$t "$TIERFORGE" --threads "$t" bench infer --space "$SPACE" --json \
                | tee -a "$OUT/infer.jsonl" >&2
            OMP_NUM_THREADS=$t "$PY" scripts/torch_supernet.py infer "$OUT/space.json" --threads "$t" --json \
                | tee -a "$OUT/infer.jsonl" >&2
            OMP_NUM_THREADS=$t "$PY" scripts/torch_supernet.py infer "$OUT/space.json" --threads "$t" --channels-last --json \
                | tee -a "$OUT/infer.jsonl" >&2
        done
    fi
done

fi # SUMMARY_ONLY

# 5. the table
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
RUSTC=$(rustc -V)
BURN=$(grep -A1 '^name = "burn"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)
"$PY" - "$OUT" "$CPU" "$(nproc)" "$RUSTC" "${BURN:-0.22.1}" "$BATCH" "$STEPS" "$WARMUP" "$ROUNDS" "${OMP_WAIT_POLICY:-}" <<'EOF'
import json, sys, os, platform
out, cpu, ncpu, rustc, burn, batch, steps, warmup, rounds, omp_wait = sys.argv[1:]
import torch

def rows(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []

def best(rs, key):
    d = {}
    for r in rs:
        k = key(r)
        if k not in d or r["median_ms"] < d[k]["median_ms"]:
            d[k] = r
    return d

tf = best(rows("tierforge.jsonl"), lambda r: (r["method"], r["threads"]))
pt = best(rows("pytorch.jsonl"), lambda r: (r["method"], r["threads"], r["channels_last"]))
loads = rows("load.jsonl")
L = []
p = L.append
p(f"Machine: {cpu}, {ncpu} cores; {rustc}; burn {burn} (flex, mimalloc); torch {torch.__version__} "
  f"(PyPI wheel, CPU); Python {platform.python_version()}"
  + (f"; OMP_WAIT_POLICY={omp_wait}" if omp_wait else "") + ".")
p(f"Batch {batch}, 1×28×28 inputs, {steps} timed steps after {warmup} warm-up steps, median ms per step"
  + (f", best of {rounds} rounds" if int(rounds) > 1 else "") + "; img/s = batch ÷ median step time "
  "(each batch counted once, as the trainer counts it). Same sub-nets in the same order on both sides.")
p("")
p("| method (sub-nets/step) | threads | tierforge ms/step | tierforge img/s | PyTorch NCHW ms (img/s) "
  "| PyTorch channels-last ms (img/s) | ratio vs best PyTorch | ratio vs NCHW | load avg before → after |")
p("|---|---|---|---|---|---|---|---|---|")
for (m, t), r in sorted(tf.items()):
    a = pt.get((m, t, False)); b = pt.get((m, t, True))
    cands = [x for x in (a, b) if x]
    bp = min(cands, key=lambda x: x["median_ms"]) if cands else None
    lb = [l["load_before"] for l in loads if l.get("method") == m and l.get("threads") == t and "load_before" in l]
    la = [l["load_after"] for l in loads if l.get("method") == m and l.get("threads") == t and "load_after" in l]
    fmt = lambda x: f"{x['median_ms']:.1f} ({x['img_per_s']:.1f})" if x else "–"
    ratio = lambda x: f"{r['img_per_s'] / x['img_per_s']:.2f}×" if x else "–"
    p(f"| {m} ({r['subnets_per_step']}) | {t} | {r['median_ms']:.1f} | {r['img_per_s']:.1f} | {fmt(a)} | {fmt(b)} "
      f"| **{ratio(bp)}** | {ratio(a)} | {'; '.join(x.split()[0] for x in lb)} → {'; '.join(x.split()[0] for x in la)} |")
p("")
p("Fastest single step (min ms), which load from other processes disturbs least:")
p("")
p("| method | threads | tierforge min ms | PyTorch NCHW min ms | PyTorch channels-last min ms | ratio vs best PyTorch (min) |")
p("|---|---|---|---|---|---|")
for (m, t), r in sorted(tf.items()):
    a = pt.get((m, t, False)); b = pt.get((m, t, True))
    cands = [x["min_ms"] for x in (a, b) if x]
    mn = lambda x: f"{x['min_ms']:.1f}" if x else "–"
    p(f"| {m} | {t} | {r['min_ms']:.1f} | {mn(a)} | {mn(b)} | {min(cands) / r['min_ms']:.2f}× |" if cands else
      f"| {m} | {t} | {r['min_ms']:.1f} | – | – | – |")
p("")
p("Split of the median step, ms (data+resize / forward incl. losses / backward / optimizer):")
p("")
p("| method | threads | tierforge | PyTorch NCHW | PyTorch channels-last |")
p("|---|---|---|---|---|")
sp = lambda x: f"{x['data_ms']:.1f} / {x['fwd_ms']:.1f} / {x['bwd_ms']:.1f} / {x['optim_ms']:.1f}" if x else "–"
for (m, t), r in sorted(tf.items()):
    p(f"| {m} | {t} | {sp(r)} | {sp(pt.get((m, t, False)))} | {sp(pt.get((m, t, True)))} |")
inf = rows("infer.jsonl")
if inf:
    bi = {}
    for r in inf:
        k = (r["side"], r["threads"], r.get("channels_last", False))
        if k not in bi or r["b64_median_ms"] < bi[k]["b64_median_ms"]:
            bi[k] = r
    p("")
    p("Inference, largest sub-net, eval mode (ms per call, median):")
    p("")
    p("| threads | tierforge b1 | tierforge b64 | PyTorch NCHW b1 / b64 | PyTorch channels-last b1 / b64 |")
    p("|---|---|---|---|---|")
    for t in sorted({k[1] for k in bi}):
        r = bi.get(("tierforge", t, False)); a = bi.get(("pytorch", t, False)); b = bi.get(("pytorch", t, True))
        f2 = lambda x: f"{x['b1_median_ms']:.3f} / {x['b64_median_ms']:.2f}" if x else "–"
        p(f"| {t} | {r['b1_median_ms']:.3f} | {r['b64_median_ms']:.2f} | {f2(a)} | {f2(b)} |" if r else f"| {t} | – | – | {f2(a)} | {f2(b)} |")
others = sorted({l["others"].strip() for l in loads if l.get("others", "").strip()})
p("")
p("Other busy processes seen before the runs: " + ("; ".join(others) if others else "none") + ".")
text = "\n".join(L)
print(text)
open(os.path.join(out, "results.md"), "w").write(text + "\n")
EOF
echo >&2
echo "raw results: $OUT/{tierforge,pytorch,infer,load}.jsonl; table: $OUT/results.md" >&2
