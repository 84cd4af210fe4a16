#!/usr/bin/env bash
# tierforge beside its peers on this CPU, in one command:
#
#   scripts/bench_vs_peers.sh                  # training steps + every variant of runs/full-bundle
#   QUICK=1 scripts/bench_vs_peers.sh          # inference only
#   BUNDLE=runs/demo/tiers/bundle scripts/bench_vs_peers.sh
#
# 1. creates .venv-bench (python3 -m venv) and pip-installs torch, numpy, onnx, onnxruntime and
#    onnxscript from PyPI, unless the venv already imports them (re-runs skip the install);
# 2. builds tierforge in release (or uses $TIERFORGE);
# 3. training (skipped with QUICK=1): a sandwich step and a progressive-shrinking step at batch 64,
#    tierforge beside the same supernet in PyTorch (NCHW and channels-last), by
#    scripts/bench_vs_pytorch.sh (INFER=0; its own tables land in $OUT/train/results.md);
# 4. inference of every variant of $BUNDLE at batch 1 and 64: tierforge writes the inputs once
#    (the first Fashion-MNIST test images, preprocessed as the runtime does) with its logits
#    (`tierforge bench infer --bundle B --dump-inputs $OUT/inputs --dry-run`); then, back to
#    back at each thread count, `tierforge bench infer --bundle` (engines burn and fast) and
#    scripts/peers_infer.py (PyTorch NCHW, PyTorch channels-last, and ONNX Runtime on the model
#    exported from PyTorch; the same weights read from the variant's safetensors, the same inputs)
#    time the call from a preprocessed f32 NCHW buffer to logits; every peer's logits are
#    compared with tierforge's;
# 5. prints one table (tierforge ms ÷ peer ms per peer, max |Δ logits|), the machine, load and
#    versions, and writes it to $OUT/results.md.
#
# Knobs (environment): BUNDLE=runs/full-bundle  THREADS="1 2"  ROUNDS=1 (>1: repeat, keep each
#   side's best median)  QUICK=1 (no training steps)  SUMMARY_ONLY=1 (only print the table again
#   from the results already in $OUT)  BATCHES=1,64  INFER_ITERS=200 (timed calls at batch 1;
#   batch B gets ITERS·6/B, at least 5)  INFER_WARMUP=10  ENGINES=burn,fast (tierforge's)
#   PEERS=pytorch,pytorch-cl,onnxruntime  VARIANTS=id,id (default all)  TIERFORGE=path/to/binary
#   VENV=.venv-bench  OUT=target/bench-vs-peers; training: METHODS BATCH STEPS WARMUP SPACE (see
#   scripts/bench_vs_pytorch.sh).
# OpenMP's (PyTorch's) and ONNX Runtime's worker threads spin between ops; when other processes
# keep the cores busy that makes their multi-threaded runs much slower, so this script sets
# OMP_WAIT_POLICY=PASSIVE unless it is set (peers_infer.py then turns ORT's spinning off too);
# OMP_WAIT_POLICY=ACTIVE gives both their defaults. The header says which.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-$ROOT/.venv-bench}
THREADS=${THREADS:-"1 2"}
ROUNDS=${ROUNDS:-1}
QUICK=${QUICK:-0}
SUMMARY_ONLY=${SUMMARY_ONLY:-0}
BATCHES=${BATCHES:-1,64}
INFER_ITERS=${INFER_ITERS:-200}
INFER_WARMUP=${INFER_WARMUP:-10}
ENGINES=${ENGINES:-}
PEERS=${PEERS:-pytorch,pytorch-cl,onnxruntime}
VARIANTS=${VARIANTS:-}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET_DIR/bench-vs-peers}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
PY="$VENV/bin/python"
PY_PKGS="torch numpy onnx onnxruntime onnxscript"

say() { printf '\n== %s\n' "$*" >&2; }

if [ -z "${BUNDLE:-}" ]; then
    BUNDLE=runs/full-bundle
    if [ ! -f "$BUNDLE/manifest.json" ] && [ -f runs/demo/tiers/bundle/manifest.json ]; then
        BUNDLE=runs/demo/tiers/bundle
        say "runs/full-bundle is absent; using the demo's bundle $BUNDLE"
    fi
fi
mkdir -p "$OUT"

if [ "$SUMMARY_ONLY" != 1 ]; then
if [ ! -f "$BUNDLE/manifest.json" ]; then
    echo "error: no bundle at $BUNDLE (no manifest.json there). Build one with" >&2
    echo "  cargo run --release -- demo        # writes runs/demo/tiers/bundle" >&2
    echo "and run again (BUNDLE=runs/demo/tiers/bundle, or BUNDLE=DIR for another bundle)." >&2
    exit 1
fi
rm -f "$OUT"/infer-*.jsonl "$OUT"/load-infer.jsonl
rm -rf "$OUT/inputs"

# 1. Python side (CPU use of whatever wheels PyPI serves).
if [ -x "$PY" ] && "$PY" -c 'import torch, numpy, onnx, onnxruntime, onnxscript' 2>/dev/null; then
    say "using $VENV (torch $("$PY" -c 'import torch; print(torch.__version__)'), onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)'))"
else
    say "installing $PY_PKGS into $VENV from PyPI (several GB the first time)"
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install --upgrade pip >&2
    # shellcheck disable=SC2086
    "$PY" -m pip install $PY_PKGS >&2
fi

# 2. tierforge
if [ -z "${TIERFORGE:-}" ]; then
    say "building tierforge (release)"
    cargo build --release --bin tierforge >&2
    TIERFORGE="$TARGET_DIR/release/tierforge"
fi
if ! "$TIERFORGE" bench infer --help 2>/dev/null | grep -q -- '--dump-inputs'; then
    echo "error: $TIERFORGE has no 'bench infer --bundle/--dump-inputs' (rebuild it: cargo build --release)" >&2
    exit 1
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
others() {
    # processes using more than 20% of a core over the last second (this script runs nothing then)
    top -b -n 2 -d 1 -w 200 2>/dev/null \
        | awk '/^top -/ {n++} n == 2 && $1 ~ /^[0-9]+$/ && $9 + 0 > 20 {printf "%s(%s%%) ", $12, $9}' | head -c 300 || true
}

# 3. training steps (the PyTorch comparison script, without its inference part)
if [ "$QUICK" != 1 ]; then
    say "training steps (scripts/bench_vs_pytorch.sh)"
    mkdir -p "$OUT/train"
    OUT="$OUT/train" INFER=0 TIERFORGE="$TIERFORGE" VENV="$VENV" THREADS="$THREADS" ROUNDS="$ROUNDS" \
        SUMMARY_ONLY=0 scripts/bench_vs_pytorch.sh > "$OUT/train/table.md"
else
    rm -f "$OUT"/train/*.jsonl
fi

# 4. inference of every variant
common=(bench infer --bundle "$BUNDLE" --batch "$BATCHES" --iters "$INFER_ITERS" --warmup "$INFER_WARMUP")
[ -n "$VARIANTS" ] && common+=(--variants "$VARIANTS")
say "writing the inputs and tierforge's reference logits to $OUT/inputs"
"$TIERFORGE" "${common[@]}" --dump-inputs "$OUT/inputs" --dry-run
tf_args=("${common[@]}" --json)
[ -n "$ENGINES" ] && tf_args+=(--engine "$ENGINES")
py_args=("$OUT/inputs/inputs.json" --impl "$PEERS" --json)
[ -n "$VARIANTS" ] && py_args+=(--variants "$VARIANTS")
for ((round = 1; round <= ROUNDS; round++)); do
    for t in $THREADS; do
        busy=$(others); before=$(load)
        say "round $round: inference, $t thread(s); load before: $before; busy: $busy"
        echo "{\"load_before\": \"$before\", \"others\": \"$busy\", \"threads\": $t}" >> "$OUT/load-infer.jsonl"
        RAYON_NUM_THREADS=$t "$TIERFORGE" --threads "$t" "${tf_args[@]}" | tee -a "$OUT/infer-tierforge.jsonl" >&2 \
            || say "warning: tierforge reported a logits mismatch between its engines (see above)"
        OMP_NUM_THREADS=$t "$PY" scripts/peers_infer.py "${py_args[@]}" --threads "$t" \
            --onnx-dir "$OUT/inputs/onnx" | tee -a "$OUT/infer-peers.jsonl" >&2
        echo "{\"load_after\": \"$(load)\", \"threads\": $t}" >> "$OUT/load-infer.jsonl"
    done
done

fi # SUMMARY_ONLY

# 5. the table
if [ ! -x "$PY" ]; then
    echo "error: $PY is missing; run without SUMMARY_ONLY=1 first" >&2
    exit 1
fi
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
SOCK_CORES=$(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1)
TPC=$(lscpu | sed -n 's/^Thread(s) per core: *//p' | head -1)
RUSTC=$(rustc -V 2>/dev/null || echo "rustc ?")
BURN=$(grep -A1 '^name = "burn"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p' | head -1)
"$PY" - "$OUT" "$CPU" "$(nproc)" "${SOCK_CORES:-?}" "${TPC:-?}" "$RUSTC" "${BURN:-?}" "$BUNDLE" \
    "${OMP_WAIT_POLICY:-}" "$(load 2>/dev/null || cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, os, platform, sys

out, cpu, ncpu, cores, tpc, rustc, burn, bundle, omp_wait, load_now = sys.argv[1:]


def rows(name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return []
    res = []
    for line in open(p):
        line = line.strip()
        if line.startswith("{"):
            try:
                res.append(json.loads(line))
            except ValueError:
                pass
    return res


def best(rs, key):
    d = {}
    for r in rs:
        k = key(r)
        if k not in d or r["median_ms"] < d[k]["median_ms"]:
            d[k] = r
    return d


def version(mod):
    try:
        return __import__(mod).__version__
    except Exception:  # noqa: BLE001
        return "not installed"


# training
tr_tf = best(rows("train/tierforge.jsonl"), lambda r: (r["method"], r["threads"]))
tr_pt = best(rows("train/pytorch.jsonl"), lambda r: (r["method"], r["threads"], r["channels_last"]))
# inference
inf_tf = best(rows("infer-tierforge.jsonl"), lambda r: (r["variant"], r["batch"], r["threads"], r["engine"]))
inf_pe = best(rows("infer-peers.jsonl"), lambda r: (r["variant"], r["batch"], r["threads"], r["impl"]))
index = {}
ip = os.path.join(out, "inputs", "inputs.json")
if os.path.exists(ip):
    index = json.load(open(ip))
order = {v["id"]: i for i, v in enumerate(index.get("variants", []))}
loads = rows("load-infer.jsonl") + rows("train/load.jsonl")

L = []
p = L.append
p("# tierforge beside PyTorch and ONNX Runtime")
p("")
p(f"Machine: {cpu}, {ncpu} logical CPUs ({cores} cores/socket, {tpc} threads/core); {rustc}; burn {burn} "
  f"(flex, mimalloc); torch {version('torch')}; onnxruntime {version('onnxruntime')}; onnx {version('onnx')}; "
  f"numpy {version('numpy')}; Python {platform.python_version()}"
  + (f"; OMP_WAIT_POLICY={omp_wait}" if omp_wait else "") + ".")
lb = [l["load_before"].split()[0] for l in loads if "load_before" in l]
la = [l["load_after"].split()[0] for l in loads if "load_after" in l]
p(f"Load average (1 min) before each run: {', '.join(lb) or '–'}; after: {', '.join(la) or '–'}; at the end: {load_now}.")
others = sorted({l["others"].strip() for l in loads if l.get("others", "").strip()})
p("Other busy processes seen before the runs: " + ("; ".join(others) if others else "none") + ".")
if inf_tf or inf_pe:
    any_r = next(iter(inf_pe.values()), None) or next(iter(inf_tf.values()))
    exporters = sorted({r.get("exporter") for r in inf_pe.values() if r.get("exporter")})
    spin = sorted({str(r.get("ort_spinning")) for r in inf_pe.values() if "ort_spinning" in r})
    p(f"Bundle: {index.get('bundle', bundle)} ({index.get('bundle_id', any_r.get('bundle_id'))}); input: the first "
      f"{index.get('n', '?')} images of {any_r.get('input')} preprocessed as the runtime does, the same f32 NCHW "
      f"buffer on every side; ONNX exported by torch.onnx ({', '.join(exporters) or '–'}), ORT spinning "
      f"{', '.join(spin) or '–'}.")
p("")
p("ms = median per call (training: per step); ratio = tierforge ms ÷ peer ms (< 1: tierforge faster). "
  "Inference is timed from the preprocessed buffer to the logits in memory (tierforge: `Session::logits_preprocessed` "
  "for burn, `FastNet::forward` for fast; PyTorch: `model(torch.from_numpy(x)).numpy()` under inference_mode; "
  "ORT: `session.run`). max |Δ logits| = the largest difference of any peer's logits from tierforge burn's on the "
  "same images (for a `fast` row: fast's own difference from burn).")
p("")
p("| work | threads | tierforge ms | ORT ms | ÷ ORT | PyTorch ms | ÷ PyTorch | PyTorch CL ms | ÷ PyTorch CL | max \\|Δ logits\\| |")
p("|---|---|---|---|---|---|---|---|---|---|")
f3 = lambda x: "–" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")
ratio = lambda a, b: "–" if a is None or b is None else f"{a / b:.2f}×"
for (m, t), r in sorted(tr_tf.items()):
    a = tr_pt.get((m, t, False)); b = tr_pt.get((m, t, True))
    am = a["median_ms"] if a else None; bm = b["median_ms"] if b else None
    p(f"| train {m} step ({r['subnets_per_step']} sub-nets), space {r['space']}, batch {r['batch']} | {t} | {f3(r['median_ms'])} | – | – "
      f"| {f3(am)} | {ratio(r['median_ms'], am)} | {f3(bm)} | {ratio(r['median_ms'], bm)} | – |")
eng_order = {"burn": 0, "fast": 1}
for (v, bt, t, e), r in sorted(inf_tf.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][0], kv[0][1], kv[0][2],
                                                                  eng_order.get(kv[0][3], 9), kv[0][3])):
    peers = {i: inf_pe.get((v, bt, t, i)) for i in ("onnxruntime", "pytorch", "pytorch-cl")}
    pm = {i: (x["median_ms"] if x else None) for i, x in peers.items()}
    if e == "burn":
        ds = [x["max_abs_diff_vs_tierforge"] for x in peers.values() if x]
        diff = f"{max(ds):.1e}" if ds else "–"
    else:
        diff = f"{r['max_abs_diff_vs_burn']:.1e} (vs burn)"
    tm = r["median_ms"]
    p(f"| infer {v} ({r['dtype']}, r{r['resolution']}) b{bt} [{e}] | {t} | {f3(tm)} | {f3(pm['onnxruntime'])} "
      f"| {ratio(tm, pm['onnxruntime'])} | {f3(pm['pytorch'])} | {ratio(tm, pm['pytorch'])} | {f3(pm['pytorch-cl'])} "
      f"| {ratio(tm, pm['pytorch-cl'])} | {diff} |")
# peers without a tierforge row (e.g. a variant left out on the Rust side)
missing = sorted({k[:3] for k in inf_pe} - {k[:3] for k in inf_tf})
for v, bt, t in missing:
    pm = {i: (inf_pe[(v, bt, t, i)]["median_ms"] if (v, bt, t, i) in inf_pe else None)
          for i in ("onnxruntime", "pytorch", "pytorch-cl")}
    p(f"| infer {v} b{bt} [no tierforge run] | {t} | – | {f3(pm['onnxruntime'])} | – | {f3(pm['pytorch'])} | – "
      f"| {f3(pm['pytorch-cl'])} | – | – |")
if tr_tf:
    p("")
    p("Training: best-of-rounds split, fastest steps and loss per side in train/results.md.")
text = "\n".join(L)
print(text)
open(os.path.join(out, "results.md"), "w").write(text + "\n")
EOF
echo >&2
echo "raw results: $OUT/{infer-tierforge,infer-peers,load-infer}.jsonl, $OUT/train/; table: $OUT/results.md" >&2
