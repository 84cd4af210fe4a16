#!/usr/bin/env python3
"""Parse ncnn's benchmark/README.md into a per-device fp32 CPU latency CSV.

Usage:
  python3 scripts/parse_ncnn_benchmarks.py README.md OUT.csv \
      [--commit SHA] [--commit-date DATE] [--git-dir DIR] [--x86-out X86.csv]

With --git-dir (an ncnn git dir whose COMMIT:benchmark/README.md is the file
given), two provenance columns are filled: section_added_* (earliest commit
whose diff adds the exact "### title" line, `git log -S`) and result_line_*
(git blame of each result line: when those numbers were last written).

The README holds sections "### <device title>" followed by fenced blocks of
`benchncnn` output:

    ./benchncnn LOOP THREADS POWERSAVE GPU COOLING
    loop_count = 8
    num_threads = 4
    powersave = 2
    gpu_device = -1
    cooling_down = 1
              mobilenet  min =   34.09  max =   36.88  avg =   35.93

Kept: runs with gpu_device == -1 (older runs print no gpu_device line; those
predate the Vulkan backend and are CPU runs), models in KEEP_MODELS (fp32
only, never *_int8), sections on ARM CPUs whose core type can be determined.

The cluster that ran is derived with ncnn's own rule (src/cpu.cpp,
initialize_cpu_thread_affinity_mask on Linux/Android): a core is "big" when
its max clock >= (min_max_clock + max_max_clock) / 2, otherwise "little";
when all cores share one max clock there is no little cluster and big == all.
powersave 0 = all cores (no affinity), 1 = little, 2 = big.

Core type/clock/count per cluster come from the section title.  Titles that
use Qualcomm "Kryo" brand names (no Cortex name) or put the info in the
section text are resolved with the explicit CLUSTERS table below; the column
core_info_source says which ("title", "title+kryo_map", "section_text").
Sections whose core type cannot be determined are dropped and counted.
"""
import argparse
import csv
import datetime
import re
import subprocess
import sys
from collections import Counter, defaultdict

KEEP_MODELS = [
    "mobilenet", "mobilenet_v2", "mobilenet_v3", "mnasnet", "proxylessnasnet",
    "shufflenet", "shufflenet_v2", "squeezenet", "efficientnet_b0",
    "regnety_400m", "blazeface", "googlenet", "resnet18",
]

# Explicit per-section cluster table: title prefix -> (soc, [(core, ghz, count)], source).
# Core names: Cortex cores as "A53", "A76", "X1", ...; non-Cortex ARM cores
# by their vendor name.  Clocks and counts are as written in the section
# title (or section text where noted); only the Kryo->Cortex mapping of the
# Qualcomm titles is outside knowledge (Qualcomm/Arm public spec sheets).
C = lambda core, ghz, n: (core, ghz, n)
CLUSTERS = [
    ("NVIDIA Jetson AGX Orin (", "Jetson AGX Orin", [C("A78AE", 2.2, 12)], "title"),
    ("Qualcomm SM8150-AC Snapdragon 855+", "Snapdragon 855+ (SM8150-AC)",
     [C("A76", 2.96, 1), C("A76", 2.42, 3), C("A55", 1.80, 4)], "title+kryo_map (Kryo485 = A76 + A55)"),
    ("Qualcomm MSM6150 Snapdragon 675", "Snapdragon 675 (SM6150)",
     [C("A76", 2.0, 2), C("A55", 1.7, 6)], "title+kryo_map (Kryo460 = A76 + A55)"),
    ("Kirin 970", "Kirin 970", [C("A73", 2.4, 4), C("A53", 1.8, 4)], "title"),
    ("Qualcomm MSM8998 Snapdragon 835", "Snapdragon 835 (MSM8998)",
     [C("A73", 2.45, 4), C("A53", 1.9, 4)], "title+kryo_map (Kryo280 = A73/A53 derived)"),
    ("Qualcomm SDM765G Snapdragon 765G", "Snapdragon 765G (SDM765G)",
     [C("A55", 1.8, 6), C("A76", 2.2, 2)], "title+kryo_map (Kryo475 = A76 + A55)"),
    ("Qualcomm SDM660 Snapdragon 660", "Snapdragon 660 (SDM660)",
     [C("A73", 2.2, 4), C("A53", 1.84, 4)], "title+kryo_map (Kryo260 = A73/A53 derived)"),
    ("Qualcomm MSM8996 Pro Snapdragon 821", "Snapdragon 821 (MSM8996 Pro)",
     [C("Kryo", 2.35, 2), C("Kryo", 2.19, 2)], "title (custom Qualcomm Kryo core, not Cortex)"),
    ("Qualcomm MSM8994 Snapdragon 810", "Snapdragon 810 (MSM8994)",
     [C("A57", 2.0, 4), C("A53", 1.55, 4)], "title"),
    ("Qualcomm MSM8916 Snapdragon 410", "Snapdragon 410 (MSM8916)", [C("A53", 1.2, 4)], "title"),
    ("Qualcomm Snapdragon 888", "Snapdragon 888",
     [C("X1", 2.84, 1), C("A78", 2.4, 3), C("A55", 1.8, 4)], "title"),
    ("Qualcomm Snapdragon X Elite", "Snapdragon X Elite (X1E78100)", [C("Oryon", 3.4, 12)], "title"),
    ("Raspberry Pi 3 Model B+", "BCM2837B0", [C("A53", 1.4, 4)], "title"),
    ("Raspberry Pi 4 Model B", "BCM2711B0", [C("A72", 1.8, 4)], "title"),
    ("Raspberry Pi 5 Broadcom BCM2712, Cortex-A76", "BCM2712", [C("A76", 2.4, 4)], "title"),
    ("Raspberry Pi 5 Broadcom BCM2712 Overclock to 2.9Ghz", "BCM2712 (overclocked)",
     [C("A76", 2.9, 4)], "title (core type from the Pi 5 section above)"),
    ("Raspberry Pi Zero 2 W", "BCM2710A1", [C("A53", 1.0, 4)], "title"),
    ("Banana Pi M2 Zero 2", "Allwinner H2+", [C("A7", 1.2, 4)], "title"),
    # Orion O6: title gives only the big cluster clock; ncnn's powersave=2 picks
    # the big cores; medium/little clocks are not in the title (set None).
    ("Radxa Orion O6", "CIX P1 (Radxa Orion O6)",
     [C("A720", 2.6, 4), C("A720", None, 4), C("A520", None, 4)], "title"),
    ("Radxa Zero 3W", "RK3566 (Radxa Zero 3W)", [C("A55", 1.416, 4)], "title"),
    ("Avaota Aim T527", "Allwinner T527", [C("A55", 2.2, 4), C("A55", 1.8, 4)], "title"),
    ("Khadas VIM3, Amlogic A311D", "Amlogic A311D", [C("A73", 2.2, 4), C("A53", 1.8, 2)], "title"),
    ("Rockchip RK3588 (Cortex-A76", "RK3588", [C("A76", 2.4, 4), C("A55", 1.8, 4)], "title"),
    ("Station-M3/ROC-RK3588S-PC", "RK3588S", [C("A76", 2.4, 4), C("A55", 1.8, 4)], "title"),
    ("Station P2, Rockchip RK3568", "RK3568", [C("A55", 2.0, 4)], "title"),
    ("Rock3A, Rockchip RK3568", "RK3568", [C("A55", 2.0, 4)], "title"),
    ("Station-M2/ROC-RK3566-PC", "RK3566", [C("A55", 1.8, 4)], "title"),
    ("Rockchip RK3399 (", "RK3399", [C("A72", 1.8, 2), C("A53", 1.5, 4)], "title"),
    ("MYIR RemiPi", "Renesas RZ/G2L", [C("A55", 1.5, 2)], "title"),
    ("OrangePi Zero 2, Allwinner H616", "Allwinner H616", [C("A53", 1.5, 4)], "title"),
    ("OrangePi4 LTS, Rockchip RK3399", "RK3399", [C("A72", 1.8, 2), C("A53", 1.5, 4)], "title"),
    ("OrangePicm4, Rockchip Rk3566", "RK3566", [C("A55", 1.8, 4)], "title"),
    ("OrangePi5, Rockchip RK3588s", "RK3588S", [C("A76", 2.4, 4), C("A55", 1.8, 4)], "title"),
    ("OrangePi5 Plus, Rockchip RK3588", "RK3588", [C("A76", 2.4, 4), C("A55", 1.8, 4)], "title"),
    ("RDK X3 Module", "Horizon Sunrise X3 (RDK X3)", [C("A53", 1.5, 4)], "title"),
    ("NanoPi R2S, Rockchip RK3328", "RK3328", [C("A53", 1.3, 4)], "title"),
    ("EAIDK 310, Rockchip RK3228H", "RK3228H", [C("A53", 1.3, 4)], "title"),
    ("NVIDIA Jetson TX2 NX", "Tegra X2 (Jetson TX2 NX)",
     [C("Denver2", 2.0, 2), C("A57", 2.0, 4)], "title"),
    ("Rockchip RK3288-CG.W", "RK3288", [C("A17", 1.8, 4)], "title"),
    ("HiSilicon Hi3519V101", "Hi3519V101", [C("A17", 1.2, 1)], "title"),
    ("iPhone 5S", "Apple A7", [C("Apple-Cyclone", 1.3, 2)], "title (Apple A7 = Cyclone core)"),
    ("Freescale i.MX7 Dual", "i.MX7 Dual", [C("A7", 1.0, 2)], "title"),
    ("Z7-Lite 7020", "Xilinx Zynq XC7Z020", [C("A9", 0.766, 2)], "title"),
    ("Phytium FT-2000/4", "Phytium FT-2000/4", [C("FTC663", 2.2, 4)], "title"),
    ("Phytium FT-2000+/64", "Phytium FT-2000+/64", [C("FTC662", 2.4, 8)], "title"),
    ("NVIDIA Jetson AGX Xavier", "Jetson AGX Xavier", [C("Carmel", 2.2, 8)], "title"),
    ("AXERA AX620A", "AXERA AX620A", [C("A7", 1.0, 4)], "title"),
    ("Rockchip RK3588 (Quad Core A76", "RK3588", [C("A76", 2.4, 4), C("A55", 1.8, 4)], "title"),
    ("Amlogic S805", "Amlogic S805", [C("A5", 1.536, 4)], "title"),
    ("Qualcomm SM8550-AB Snapdragon 8 Gen 2", "Snapdragon 8 Gen 2 (SM8550-AB)",
     [C("X3", 3.2, 1), C("A715", 2.8, 2), C("A710", 2.8, 2), C("A510", 2.0, 3)],
     "title+kryo_map (Kryo = X3 + A715 + A710 + A510)"),
    ("MediaTek Dimensity 9300", "Dimensity 9300 (MT6989)",
     [C("X4", 3.25, 1), C("X4", 2.85, 3), C("A720", 2.0, 4)], "title"),
    ("PhytiumPi, Phytium E2000", "Phytium E2000", [C("FTC664", 1.8, 2), C("FTC310", 1.5, 2)], "title"),
    ("AXERA AX630C", "AXERA AX630C", [C("A53", 1.2, 2)], "title"),
    ("Arduino UNO Q - QRB2210", "Qualcomm QRB2210", [C("A53", 2.0, 4)], "title"),
    ("Microsoft Azure Standard D64ps v6", "Azure Cobalt 100",
     [C("Neoverse-N2", 3.4, 64)], "section_text (\"Azure Cobalt 100 (Neoverse-N2) @ 3.4GHz\")"),
]

# Sections that are not ARM CPUs (x86, LoongArch/MIPS, RISC-V, sw_64, GPUs).
NON_ARM_PAT = re.compile(
    r"AMD |Intel|NVIDIA Quadro|RTX|GeForce|Tesla|Radeon|Loongson|Sunway|VisionFive|"
    r"T-Head|CVITEK|Spacemit|Xeon|Ingenic|AWS c5|Azure Standard D64s v6|"
    r"Azure Standard D64as v7|MacBook Pro \(15-inch, 2019\)|Hyper-V", re.I)

# ARM sections we know of whose core type/clock is not in the title or text.
# (Listed only for the record; anything not in CLUSTERS is dropped.)

LEVEL_NAMES = {0: "all", 1: "little", 2: "big"}

RES_RE = re.compile(r"^\s*(\S+)\s+min =\s*([\d.]+)\s+max =\s*([\d.]+)\s+avg =\s*([\d.]+)")
PARAM_RE = re.compile(r"^\s*(loop_count|num_threads|powersave|gpu_device|cooling_down) = (-?\d+)")
INV_RE = re.compile(r"benchncnn\s+(\d+)(?:\s+(\d+))?(?:\s+(-?\d+))?(?:\s+(-?\d+))?(?:\s+(-?\d+))?")
TASKSET_RE = re.compile(r"taskset\s+(?:-c\s+)?(\S+)\s+\S*benchncnn")


def lookup_clusters(title):
    for prefix, soc, clusters, src in CLUSTERS:
        if title.startswith(prefix):
            return soc, clusters, src
    return None


def select_cluster(clusters, powersave):
    """ncnn's big/little split by max clock (see module docstring)."""
    known = [c for c in clusters if c[1] is not None]
    if powersave == 0 or not known:
        return list(clusters), "all"
    if len(known) < len(clusters):
        # some cluster clocks are not in the title (Radxa Orion O6): the core
        # type of the fastest cluster is taken as "big", the slowest-listed
        # (last) cluster as "little"; the exact big/medium split is unknown.
        top = max(known, key=lambda c: c[1])[0]
        if powersave == 2:
            return [c for c in clusters if c[0] == top], "big(clock split unknown)"
        if powersave == 1:
            return [c for c in clusters if c[0] == clusters[-1][0]], "little(clock split unknown)"
    fmax = max(c[1] for c in known)
    fmin = min(c[1] for c in known)
    mid = (fmin + fmax) / 2
    if abs(mid - fmax) < 1e-9:  # one clock for all cores: no little cluster
        return list(clusters), "all(no little cluster)"
    if powersave == 2:
        return [c for c in known if c[1] >= mid], "big"
    if powersave == 1:
        return [c for c in known if c[1] < mid], "little"
    return list(clusters), "all"


def describe(sel):
    types = []
    for c in sel:
        if c[0] not in types:
            types.append(c[0])
    ghz = [c[1] for c in sel if c[1] is not None]
    return {
        "core_type": "+".join(types),
        "mixed_core_types": int(len(types) > 1),
        "core_ghz": max(ghz) if ghz else "",
        "core_ghz_min": min(ghz) if ghz else "",
        "cluster_cores": sum(c[2] for c in sel),
        "cluster_layout": " + ".join(
            "%s@%sGHz x%d" % (c[0], c[1] if c[1] is not None else "?", c[2]) for c in sel),
    }


def section_dates(git_dir, titles):
    """Earliest commit whose diff adds the exact header line (git log -S)."""
    out = {}
    if not git_dir:
        return out
    for t in titles:
        hdr = "### " + t
        try:
            r = subprocess.run(
                ["git", "--git-dir", git_dir, "log", "--reverse", "--format=%H %cs",
                 "-S", hdr, "HEAD", "--", "benchmark/README.md"],
                capture_output=True, text=True, timeout=60)
            first = r.stdout.strip().split("\n")[0].split()
            if len(first) == 2:
                out[t] = (first[0], first[1])
        except Exception as e:  # noqa: BLE001
            print("warn: git log -S failed for %r: %s" % (t, e), file=sys.stderr)
    return out


def blame_lines(git_dir, commit):
    """final line number -> (commit, committer date) of the last change to that line."""
    out = {}
    if not git_dir:
        return out
    r = subprocess.run(["git", "--git-dir", git_dir, "blame", "--line-porcelain",
                        commit or "HEAD", "--", "benchmark/README.md"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print("warn: git blame failed: %s" % r.stderr.strip(), file=sys.stderr)
        return out
    cur_sha, cur_line = None, None
    for ln in r.stdout.split("\n"):
        m = re.match(r"^([0-9a-f]{40}) \d+ (\d+)", ln)
        if m:
            cur_sha, cur_line = m.group(1), int(m.group(2))
        elif ln.startswith("committer-time ") and cur_line is not None:
            t = int(ln.split()[1])
            out[cur_line] = (cur_sha, datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d"))
    return out


FIELDS = [
    "source", "device", "soc", "isa", "cluster", "core_type", "mixed_core_types",
    "core_ghz", "core_ghz_min", "cluster_cores", "cluster_layout", "core_info_source",
    "threads", "powersave", "cpu_mask", "loop_count", "cooling_down", "run_index",
    "model", "min_ms", "avg_ms", "max_ms",
    "ncnn_commit", "ncnn_commit_date", "readme_line", "section_added_commit",
    "section_added_date", "result_line_commit", "result_line_date", "load_avg", "notes",
]


def parse_runs(lines):
    """Yield (section_title, header_line_no, run dict, results list)."""
    title, title_line = None, None
    run = None
    pending_inv = None
    pending_mask = None
    runs = []
    for i, line in enumerate(lines, 1):
        if line.startswith("### "):
            title, title_line = line[4:].strip(), i
            run, pending_inv, pending_mask = None, None, None
            continue
        if title is None:
            continue
        m = INV_RE.search(line)
        if m and "benchncnn" in line and not line.strip().startswith("./benchncnn [loop"):
            pending_inv = m.groups()
            tm = TASKSET_RE.search(line)
            pending_mask = ("taskset " + tm.group(1)) if tm else ""
            run = None
            continue
        m = PARAM_RE.match(line)
        if m:
            k, v = m.group(1), int(m.group(2))
            if k == "loop_count" or run is None or run.get("_done"):
                run = {"loop_count": None, "num_threads": None, "powersave": 0,
                       "gpu_device": -1, "cooling_down": "", "line": i,
                       "cpu_mask": pending_mask or "", "inv": pending_inv}
                runs.append((title, title_line, run, []))
                pending_inv, pending_mask = None, None
            run[k] = v
            continue
        m = RES_RE.match(line)
        if m:
            if run is None:
                # results without printed params: fall back on the invocation line
                inv = pending_inv or (None,) * 5
                run = {"loop_count": int(inv[0]) if inv[0] else None,
                       "num_threads": int(inv[1]) if inv[1] else None,
                       "powersave": int(inv[2]) if inv[2] else 0,
                       "gpu_device": int(inv[3]) if inv[3] else -1,
                       "cooling_down": int(inv[4]) if inv[4] else "",
                       "line": i, "cpu_mask": pending_mask or "", "inv": inv}
                runs.append((title, title_line, run, []))
                pending_inv, pending_mask = None, None
            run["_done"] = True
            runs[-1][3].append((m.group(1), float(m.group(2)), float(m.group(3)),
                                float(m.group(4)), i))
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("readme")
    ap.add_argument("out_csv")
    ap.add_argument("--commit", default="")
    ap.add_argument("--commit-date", default="")
    ap.add_argument("--git-dir", default="", help="ncnn git dir, for section-added dates")
    ap.add_argument("--x86-out", default="", help="also write published x86 CPU rows here")
    a = ap.parse_args()

    lines = open(a.readme, encoding="utf-8").read().split("\n")
    runs = parse_runs(lines)

    titles = []
    for t, _, _, _ in runs:
        if t not in titles:
            titles.append(t)
    dates = section_dates(a.git_dir, titles)
    blame = {}
    if a.git_dir:
        shown = subprocess.run(["git", "--git-dir", a.git_dir, "show",
                                (a.commit or "HEAD") + ":benchmark/README.md"],
                               capture_output=True, text=True).stdout
        if shown.split("\n") == lines:
            blame = blame_lines(a.git_dir, a.commit)
        else:
            print("warn: README differs from %s:benchmark/README.md; no blame dates"
                  % (a.commit or "HEAD"), file=sys.stderr)

    rows, x86_rows = [], []
    stats = Counter()
    dropped_sections = Counter()
    run_counter = defaultdict(int)
    for title, tline, run, results in runs:
        if run.get("gpu_device", -1) != -1:
            stats["runs_skipped_gpu"] += 1
            continue
        if run.get("num_threads") is None:
            stats["runs_skipped_no_threads"] += 1
            continue
        kept = [r for r in results if r[0] in KEEP_MODELS]
        if not kept:
            continue
        key = (title, tline, run["num_threads"], run["powersave"])
        run_counter[key] += 1
        base = {
            "source": "ncnn benchmark/README.md",
            "device": title,
            "threads": run["num_threads"],
            "powersave": run["powersave"],
            "cpu_mask": run["cpu_mask"],
            "loop_count": run["loop_count"] if run["loop_count"] is not None else "",
            "cooling_down": run["cooling_down"],
            "run_index": run_counter[key],
            "ncnn_commit": a.commit,
            "ncnn_commit_date": a.commit_date,
            "readme_line": run["line"],
            "section_added_commit": dates.get(title, ("", ""))[0],
            "section_added_date": dates.get(title, ("", ""))[1],
            "load_avg": "",
            "notes": "",
        }
        info = lookup_clusters(title)
        if info is None:
            if NON_ARM_PAT.search(title):
                stats["rows_non_arm"] += len(kept)
                base.update({"soc": "", "isa": "non-arm", "cluster": LEVEL_NAMES.get(run["powersave"], "?"),
                             "core_type": "", "mixed_core_types": "", "core_ghz": "", "core_ghz_min": "",
                             "cluster_cores": "", "cluster_layout": "", "core_info_source": ""})
                for name, mn, mx, av, ln in kept:
                    b = blame.get(ln, ("", ""))
                    x86_rows.append(dict(base, model=name, min_ms=mn, avg_ms=av, max_ms=mx,
                                         result_line_commit=b[0], result_line_date=b[1]))
            else:
                stats["rows_dropped_core_unknown"] += len(kept)
                dropped_sections[title] += len(kept)
            continue
        soc, clusters, src = info
        sel, cl = select_cluster(clusters, run["powersave"])
        d = describe(sel)
        notes = []
        if cl.startswith("all") and d["mixed_core_types"]:
            notes.append("powersave=0 on a heterogeneous SoC: OS picks the cores")
        if d["core_ghz"] != d["core_ghz_min"]:
            notes.append("cluster spans several clocks")
        if run["cpu_mask"]:
            notes.append(run["cpu_mask"])
        base.update({"soc": soc, "isa": "arm", "cluster": cl, "core_info_source": src,
                     "notes": "; ".join(notes)})
        base.update(d)
        for name, mn, mx, av, ln in kept:
            b = blame.get(ln, ("", ""))
            rows.append(dict(base, model=name, min_ms=mn, avg_ms=av, max_ms=mx,
                             result_line_commit=b[0], result_line_date=b[1]))

    with open(a.out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    if a.x86_out:
        with open(a.x86_out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(x86_rows)

    print("rows written: %d" % len(rows), file=sys.stderr)
    for k, v in sorted(stats.items()):
        print("%s: %d" % (k, v), file=sys.stderr)
    for t, n in dropped_sections.items():
        print("dropped (core type unknown): %r rows=%d" % (t, n), file=sys.stderr)
    per = defaultdict(lambda: [set(), set()])
    for r in rows:
        if r["mixed_core_types"]:
            continue
        per[r["core_type"]][0 if r["threads"] == 1 else 1].add(r["device"])
    print("devices per core type (single-core-type clusters): 1 thread / >1 thread",
          file=sys.stderr)
    for k in sorted(per):
        print("  %-14s %3d %3d" % (k, len(per[k][0]), len(per[k][1])), file=sys.stderr)


if __name__ == "__main__":
    main()
