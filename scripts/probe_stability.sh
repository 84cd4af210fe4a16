#!/usr/bin/env bash
# Probe stability: N fresh `tierforge profile --json` processes, CV of the score and of each figure.
# Usage: scripts/probe_stability.sh [BINARY] [N] [--busy]
#   --busy: one other CPU-bound process (a shell busy loop) runs during the measurement.
set -euo pipefail
bin=${1:-target/release/tierforge}
n=${2:-10}
busy=${3:-}
pid=
if [[ "$busy" == "--busy" ]]; then
  (while :; do :; done) &
  pid=$!
  trap 'kill $pid 2>/dev/null' EXIT
  sleep 0.5
fi
echo "# $(date -u +%FT%TZ) $(uptime | sed 's/.*load/load/') binary=$bin runs=$n ${busy:-idle}"
for _ in $(seq "$n"); do
  "$bin" profile --json 2>/dev/null
  echo
done | python3 -c '
import json, sys, statistics as st
rows = []
dec = json.JSONDecoder()
text = sys.stdin.read()
i = 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    obj, i = dec.raw_decode(text, i)
    rows.append(obj)
def get(o, *keys):
    for k in keys:
        o = o.get(k, {}) if isinstance(o, dict) else {}
    return o if isinstance(o, (int, float)) else None
def cv(xs):
    xs = [x for x in xs if x is not None]
    return (st.mean(xs), 100 * st.pstdev(xs) / st.mean(xs)) if xs else (float("nan"), float("nan"))
for name, path in [("score", ("score",)), ("gemm_1t", ("measured", "gemm_gflops_1t")),
                   ("gemm_mt", ("measured", "gemm_gflops_mt")), ("dwconv", ("measured", "dwconv_gflops")),
                   ("mem_bw", ("measured", "mem_bw_gbps")), ("bench_ms", ("measured", "bench_ms"))]:
    vals = [get(r.get("host", r), *path) for r in rows]
    m, c = cv(vals)
    lo = min(v for v in vals if v is not None); hi = max(v for v in vals if v is not None)
    print(f"{name:9s} mean {m:8.2f}  CV {c:5.1f}%  range {lo:.2f}..{hi:.2f}")
'
