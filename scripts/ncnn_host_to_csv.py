import csv, re, sys, glob
sys.dont_write_bytecode = True
sys.path.insert(0, '/work/main/scripts')
from parse_ncnn_benchmarks import FIELDS, KEEP_MODELS, RES_RE
COMMIT = "a4d2ea1d4422c9e849f166fd7a4aefb52f942f6a"; CDATE = "2026-07-22"
model_name = [l.split(":",1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')][0]
rows = []
for path in sorted(glob.glob('/tmp/hostbench/t*_*.txt')):
    txt = open(path).read().split('\n')
    meta = {m.group(1): m.group(2).strip() for m in (re.match(r'^# (\w+):? (.*)', l) for l in txt) if m}
    la_b = re.search(r'load average: (.*)', meta['uptime_before']).group(1)
    la_a = re.search(r'load average: (.*)', meta['uptime_after']).group(1)
    mhz = meta['mhz_before'].split()[0]
    t = int(re.search(r'num_threads = (\d+)', '\n'.join(txt)).group(1))
    tag = path.split('_')[-1][0]
    for ln in txt:
        m = RES_RE.match(ln)
        if not m or m.group(1) not in KEEP_MODELS: continue
        rows.append(dict(source="this host, benchncnn built from ncnn " + COMMIT[:7],
            device="this host", soc="AMD EPYC (KVM guest; cpuinfo family 23 model 49 = Zen 2 'Rome')",
            isa="x86_64", cluster="all", core_type=model_name, mixed_core_types=0,
            core_ghz=round(float(mhz)/1000, 4), core_ghz_min=round(float(mhz)/1000, 4), cluster_cores=2,
            cluster_layout="%s@%sMHz(cpuinfo) x2" % (model_name, mhz),
            core_info_source="/proc/cpuinfo (model name, cpu MHz = nominal in KVM; turbo state unknown)",
            threads=t, powersave=0, cpu_mask="", loop_count=50, cooling_down=0,
            run_index=ord(tag) - ord('a') + 1, model=m.group(1), min_ms=float(m.group(2)),
            avg_ms=float(m.group(4)), max_ms=float(m.group(3)), ncnn_commit=COMMIT, ncnn_commit_date=CDATE,
            readme_line="", section_added_commit="", section_added_date="", result_line_commit="",
            result_line_date=meta['start'][:10],
            load_avg="before: %s | after: %s" % (la_b, la_a),
            notes=("CONTENDED (avg/min %.2f > 1.3: another process shared the 2 vCPUs during this net; do not use); " % (float(m.group(4)) / float(m.group(2))) if float(m.group(4)) / float(m.group(2)) > 1.3 else "") + "run %s..%s UTC; cmd: %s; build: Release, NCNN_VULKAN=OFF, NCNN_RUNTIME_CPU=OFF, AVX2+FMA+F16C, gcc" % (meta['start'], meta['end'], meta['cmd'])))
with open('/work/main/device-profiles/data/public_latency/ncnn_host.csv', 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=FIELDS); w.writeheader(); w.writerows(rows)
print(len(rows))
