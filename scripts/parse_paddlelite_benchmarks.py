#!/usr/bin/env python3
"""Extract Paddle-Lite's published fp32 ARM CPU latencies into CSV.

Inputs (git show of the Paddle-Lite repo):
  A = HEAD:docs/performance/benchmark.md   (release/v2.11 data; 1 thread, bound to big core)
  B = 490e1031d5:docs/benchmark/benchmark.md (release/v2.9 data; threads 1/2/4, armv8 columns)
Usage: parse_paddlelite.py A.md A_COMMIT A_DATE B.md B_COMMIT B_DATE OUT.csv
"""
import csv, re, sys

# SoC -> (device, clusters [(core, ghz, n)]) exactly as listed in the docs' test-machine lists
SOC = {
    "骁龙 865": ("Xiaomi MI10, Snapdragon 865", [("A77", 2.84, 1), ("A77", 2.42, 3), ("A55", 1.8, 4)]),
    "骁龙 855": ("Xiaomi MI9, Snapdragon 855", [("A76", 2.84, 1), ("A76", 2.42, 3), ("A55", 1.78, 4)]),
    # the doc writes "4xA75 @2.8GHz + 4xA75 @1.7GHz"; the 1.7 GHz cluster of SD845 is the
    # A55-derived Kryo385 Silver, recorded as A55 (only matters for the multi-thread rows)
    "骁龙 845": ("Xiaomi MI8, Snapdragon 845", [("A75", 2.8, 4), ("A55", 1.7, 4)]),
    "骁龙 835": ("Xiaomi mi6, Snapdragon 835", [("A73", 2.45, 4), ("A53", 1.9, 4)]),
    "骁龙 625": ("Xiaomi Redmi6 Pro, Snapdragon 625", [("A53", 1.8, 4), ("A53", 1.6, 4)]),
    "麒麟 990": ("Huawei Mate 30, Kirin 990", [("A76", 2.86, 2), ("A76", 2.09, 2), ("A55", 1.86, 4)]),
    "麒麟 980": ("Huawei Mate 20, Kirin 980", [("A76", 2.6, 2), ("A76", 1.92, 2), ("A55", 1.8, 4)]),
    "RK3399": ("RK3399 dev board", [("A72", 1.8, 2), ("A53", 1.4, 4)]),
}
# v2.9 doc lists 855 (mi9, 1@2.84 + 3@2.4 A76 + 4xA55@1.78), 845 (mi8, 2.8 big / 1.7 little), 835 (mix2, 2.45/1.9)
SOC_B = {
    "骁龙855": ("Xiaomi mi9, Snapdragon 855", [("A76", 2.84, 1), ("A76", 2.4, 3), ("A55", 1.78, 4)]),
    # v2.9 doc gives clocks only for 845/835; core names taken from the v2.11 doc's list for the same SoC
    "骁龙845": ("Xiaomi mi8, Snapdragon 845", [("A75", 2.8, 4), ("A55", 1.7, 4)]),
    "骁龙835": ("Xiaomi mix2, Snapdragon 835", [("A73", 2.45, 4), ("A53", 1.9, 4)]),
}
MODEL_MAP = {"MobileNetV1": "mobilenet", "MobileNetV2": "mobilenet_v2",
             "MobileNetV3_large_x1_0": "mobilenet_v3_large", "MobileNetV3_small_x1_0": "mobilenet_v3_small",
             "ResNet50": "resnet50", "mobilenet_v1": "mobilenet", "mobilenet_v2": "mobilenet_v2",
             "shufflenet_v2": "shufflenet_v2", "squeezenet": "squeezenet_v1.1", "mnasnet": "mnasnet"}
FIELDS = ["source", "device", "soc", "isa", "cluster", "core_type", "mixed_core_types", "core_ghz",
          "core_ghz_min", "cluster_cores", "cluster_layout", "core_info_source", "threads", "powersave",
          "cpu_mask", "loop_count", "cooling_down", "run_index", "model", "source_model_name", "min_ms",
          "avg_ms", "max_ms", "framework_version", "doc_commit", "doc_commit_date", "doc_path", "doc_line", "notes"]

def big(clusters):
    # "big" = cores whose clock >= (min + max) / 2 (same split rule ncnn uses;
    # Paddle-Lite's DeviceInfo also splits big/little by max frequency)
    fmax = max(c[1] for c in clusters); fmin = min(c[1] for c in clusters)
    mid = (fmax + fmin) / 2
    return [c for c in clusters if c[1] >= mid]

def desc(sel):
    types = []
    for c in sel:
        if c[0] not in types: types.append(c[0])
    return dict(core_type="+".join(types), mixed_core_types=int(len(types) > 1),
                core_ghz=max(c[1] for c in sel), core_ghz_min=min(c[1] for c in sel),
                cluster_cores=sum(c[2] for c in sel),
                cluster_layout=" + ".join("%s@%sGHz x%d" % c for c in sel))

rows = []
def add(soc_key, table, model_src, ms, threads, cluster_sel, cluster_name, version, commit, date, path, line, notes):
    dev, clusters = table[soc_key]
    sel = cluster_sel(clusters)
    soc_en = soc_key.replace("骁龙", "Snapdragon ").replace("麒麟", "Kirin ").replace("  ", " ")
    r = dict(source="Paddle-Lite " + path, device=dev, soc=soc_en, isa="arm", cluster=cluster_name,
             core_info_source="doc test-machine list", threads=threads, powersave="", cpu_mask="",
             loop_count="", cooling_down="", run_index=1, model=MODEL_MAP[model_src],
             source_model_name=model_src, min_ms="", avg_ms=ms, max_ms="", framework_version=version,
             doc_commit=commit, doc_commit_date=date, doc_path=path, doc_line=line, notes=notes)
    r.update(desc(sel))
    rows.append(r)

def main():
    a, ac, ad, b, bc, bd, out = sys.argv[1:8]
    # --- A: first fp32 dense ARMV8 table after "#### ARMV8 CPU 数据"
    L = open(a, encoding="utf-8").read().split("\n")
    i = next(k for k, l in enumerate(L) if l.startswith("#### ARMV8 CPU"))
    i = next(k for k in range(i, len(L)) if L[k].startswith("|模型|"))
    hdr = [h.strip() for h in L[i].strip("|").split("|")][1:]
    k = i + 2
    while L[k].startswith("|"):
        cells = [c.strip() for c in L[k].strip().strip("|").split("|")]
        if cells[0] in MODEL_MAP:
            for soc, v in zip(hdr, cells[1:]):
                add(soc, SOC, cells[0], float(v), 1, big, "big (bound)", "release/v2.11 (4a3bdbe)",
                    ac, ad, "docs/performance/benchmark.md", k + 1,
                    "armv8; ndk-r22b; 1 thread bound to big core; warmup=20 repeats=600; avg ms")
        k += 1
    # --- B: '#### paddlepaddle model' tables, armv8 columns (last three), threads 1/2/4
    L = open(b, encoding="utf-8").read().split("\n")
    s = next(k for k, l in enumerate(L) if l.startswith("#### paddlepaddle model"))
    e = next(k for k in range(s + 1, len(L)) if L[k].startswith("####"))
    cur = None
    for k in range(s, e):
        l = L[k]
        m = re.match(r"^(骁龙\d+)\|", l)
        if m:
            cur = m.group(1); cols = [c.strip() for c in l.split("|")][1:]; continue
        if l.startswith("threads num"):
            thr = [c.strip() for c in l.split("|")][1:]; continue
        cells = [c.strip() for c in l.strip().split("|")]
        if cur and cells and cells[0] in MODEL_MAP:
            for arch, t, v in zip(cols, thr, cells[1:]):
                if arch != "armv8" or not v: continue
                t = int(t)
                if t == 1:
                    add(cur, SOC_B, cells[0], float(v), 1, big, "big (LITE_POWER_HIGH)", "release/v2.9",
                        bc, bd, "docs/benchmark/benchmark.md", k + 1,
                        "armv8; ndk-r17c; warmup=10 repeats=100; avg ms")
                else:
                    add(cur, SOC_B, cells[0], float(v), t, lambda c: c, "all (LITE_POWER_NO_BIND)",
                        "release/v2.9", bc, bd, "docs/benchmark/benchmark.md", k + 1,
                        "armv8; ndk-r17c; no core binding, OS picks cores; warmup=10 repeats=100; avg ms")
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS); w.writeheader(); w.writerows(rows)
    print("rows", len(rows), file=sys.stderr)

main()
